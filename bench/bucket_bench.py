#!/usr/bin/python3
"""Figures for bucketed partition keys (README "Time series", docs/cql.md 9).

    SIBYL_BIN=build/node/sibyld /usr/bin/python3 bench/bucket_bench.py hotkey [--rows 6000]
    SIBYL_BIN=build/node/sibyld /usr/bin/python3 bench/bucket_bench.py range [--rows-per-hour 200]

hotkey: a 3-node cluster (127.0.0.1..3) at RF 1; one user takes half of the
  writes, the other half go to 1000 other users. The same writes go to a
  table keyed (user, event_id) and to one keyed ((user, SALT(8)), event_id).
  Each node's replica rows per table come from its /metrics
  (sibyl_table_rows: the memtable's rows; nothing flushes at these sizes):
  the figure is max/mean over the nodes (1.0 = even). At RF 3 on 3 nodes
  every node holds every partition, so salting could not show there.
range: one node; 24 hours of readings of one sensor, stored both in a table
  bucketed by the hour and in one wide partition; the same day-long range
  read (paged, fetch_size 5000) from each, timed over several rounds
  (median), after a warm-up.

Every node is stopped by pid at the end.
"""

import argparse
import os
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

from sibyl_harness import SibylCluster, SibylNode, find_binary  # noqa: E402

from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT  # noqa: E402
from cassandra.concurrent import execute_concurrent  # noqa: E402
from cassandra.policies import WhiteListRoundRobinPolicy  # noqa: E402
from cassandra.query import SimpleStatement  # noqa: E402

HOUR = 3600000


def session_on(node):
    p = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([node.host]), request_timeout=60)
    c = Cluster([node.host], port=node.port, execution_profiles={EXEC_PROFILE_DEFAULT: p},
                max_schema_agreement_wait=0)
    return c, c.connect()


def table_rows(node, ks, table):
    url = "http://%s:%d/metrics" % (node.host, node.admin_port)
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    m = re.search(r'^sibyl_table_rows\{keyspace="%s",table="%s"\} (\d+)$' % (ks, table), text, re.M)
    return int(m.group(1)) if m else 0


def wait_table(sessions, ks, table, timeout=60):
    deadline = time.monotonic() + timeout
    for s in sessions:
        while s.execute("SELECT id FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
                        (ks, table)).one() is None:
            if time.monotonic() > deadline:
                raise SystemExit("table %s.%s did not reach every node" % (ks, table))
            time.sleep(0.1)


def cmd_hotkey(args, binary, work):
    c = SibylCluster(binary, work, size=3, config={"gossip_interval_ms": 200})
    clusters = []
    try:
        c.start()
        c.wait_converged()
        conns = [session_on(n) for n in c]
        clusters = [x[0] for x in conns]
        ss = [x[1] for x in conns]
        s = ss[0]
        s.execute("CREATE KEYSPACE hk WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
        s.execute("CREATE TABLE hk.plain (user text, event_id int, v text, PRIMARY KEY (user, event_id))")
        s.execute("CREATE TABLE hk.salted (user text, event_id int, v text, PRIMARY KEY ((user, SALT(8)), event_id))")
        wait_table(ss, "hk", "plain")
        wait_table(ss, "hk", "salted")
        rng = random.Random(7)
        ins = [s.prepare("INSERT INTO hk.%s (user, event_id, v) VALUES (?, ?, ?)" % t) for t in ("plain", "salted")]
        writes = []
        for i in range(args.rows):
            user = "hot" if i % 2 == 0 else "u%d" % rng.randrange(1000)
            writes += [(st, (user, i, "x")) for st in ins]
        execute_concurrent(s, writes, concurrency=256)
        for t in ("plain", "salted"):
            per = [table_rows(n, "hk", t) for n in c]
            mean = sum(per) / len(per)
            print("hotkey rows=%d RF=1 nodes=3 table=%s: replica rows per node %s, max/mean %.2f" % (
                args.rows, t, per, max(per) / mean if mean else 0.0))
    finally:
        for cl in clusters:
            cl.shutdown()
        c.shutdown()


def timed_read(s, q, rounds):
    out = []
    n = 0
    for _ in range(rounds):
        t0 = time.monotonic()
        n = sum(1 for _ in s.execute(SimpleStatement(q, fetch_size=5000)))
        out.append(time.monotonic() - t0)
    return statistics.median(out), n


def cmd_range(args, binary, work):
    node = SibylNode(binary, os.path.join(work, "node"))
    cl = None
    try:
        node.start()
        cl, s = session_on(node)
        s.execute("CREATE KEYSPACE rb WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
        s.execute("CREATE TABLE rb.bucketed (sensor text, ts timestamp, v double, "
                  "PRIMARY KEY ((sensor, BUCKET(ts, 1h)), ts))")
        s.execute("CREATE TABLE rb.wide (sensor text, ts timestamp, v double, PRIMARY KEY (sensor, ts))")
        for t in ("bucketed", "wide"):
            st = s.prepare("INSERT INTO rb.%s (sensor, ts, v) VALUES (?, ?, ?)" % t)
            execute_concurrent(s, [(st, ("s1", h * HOUR + k * (HOUR // args.rows_per_hour), 1.5))
                                   for h in range(24) for k in range(args.rows_per_hour)], concurrency=256)
        qb = "SELECT ts, v FROM rb.bucketed WHERE sensor = 's1' AND ts >= 0 AND ts < %d" % (24 * HOUR)
        qw = "SELECT ts, v FROM rb.wide WHERE sensor = 's1' AND ts >= 0 AND ts < %d" % (24 * HOUR)
        timed_read(s, qb, 2)
        timed_read(s, qw, 2)
        tb, nb = timed_read(s, qb, args.rounds)
        tw, nw = timed_read(s, qw, args.rounds)
        print("range rows=%d: 24 buckets of 1h %.1f ms, one wide partition %.1f ms (median of %d; ratio %.2f)" % (
            nb, tb * 1000, tw * 1000, args.rounds, tb / tw if tw else 0.0))
        assert nb == nw == 24 * args.rows_per_hour
    finally:
        if cl:
            cl.shutdown()
        node.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("hotkey", "range"))
    ap.add_argument("--rows", type=int, default=6000)
    ap.add_argument("--rows-per-hour", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    binary = find_binary()
    if not binary:
        raise SystemExit("set SIBYL_BIN to a built sibyld")
    work = tempfile.mkdtemp(prefix="sibyl-bucket-bench-")
    try:
        (cmd_hotkey if args.what == "hotkey" else cmd_range)(args, binary, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    main()
