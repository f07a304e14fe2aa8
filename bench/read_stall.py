#!/usr/bin/python3
"""read_stall.py: how long point reads wait while another client scans.

    SIBYL_BIN=build-rel/node/sibyld /usr/bin/python3 bench/read_stall.py [ROWS]

Starts a fresh sibyld (the integration tests' harness), loads ROWS rows
(default 400000) into keyspace1.standard1 with sibyl-stress (next to
SIBYL_BIN, or $SIBYL_STRESS), flushes them, then runs SELECT COUNT(*) and a
paged full scan on one connection while another does point reads one after
the other, and prints how many point reads completed during the scan, their
p50 / p99 / max, and (when the node has it) the loop-lag metric's iterations
over 5 ms and 50 ms and its max. Works against any sibyld (a build from
before the read pool included: it just has no loop metric). The node is
stopped by pid at the end.
"""

import multiprocessing
import os
import random
import re
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from cassandra.cluster import Cluster, EXEC_PROFILE_DEFAULT  # noqa: E402
from cassandra.query import SimpleStatement  # noqa: E402

from conftest import default_profile  # noqa: E402
from sibyl_harness import SibylNode, find_binary, flush  # noqa: E402
from test_stress import find_stress, run_stress  # noqa: E402


def loop_metrics(node):
    with urllib.request.urlopen("http://%s:%d/metrics" % (node.host, node.admin_port), timeout=30) as r:
        text = r.read().decode()
    b = {m.group(1): int(m.group(2)) for m in
         re.finditer(r'^sibyl_loop_iteration_seconds_bucket\{loop="cql",le="([^"]+)"\} (\d+)$', text, re.M)}
    if not b:
        return None
    count = b["+Inf"]
    mx = float(re.search(r'^sibyl_loop_iteration_max_seconds\{loop="cql"\} (\S+)$', text, re.M).group(1))
    cpu = re.search(r'^sibyl_loop_iteration_cpu_max_seconds\{loop="cql"\} (\S+)$', text, re.M)
    return count - b["0.005000"], count - b["0.050000"], mx, float(cpu.group(1)) if cpu else float("nan")


def scan(host, port, q):
    prof = default_profile()
    prof.request_timeout = 600
    c = Cluster([host], port=port, execution_profiles={EXEC_PROFILE_DEFAULT: prof})
    try:
        s = c.connect()
        res = {}
        t0 = time.monotonic()
        res["count"] = s.execute("SELECT COUNT(*) FROM keyspace1.standard1").one()[0]
        res["count_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        st = SimpleStatement("SELECT key FROM keyspace1.standard1", fetch_size=5000)
        res["scanned"] = sum(1 for _ in s.execute(st))
        res["scan_s"] = time.monotonic() - t0
        q.put(res)
    finally:
        c.shutdown()


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 400000
    binary, stress = find_binary(), find_stress()
    if not binary or not stress:
        sys.exit("read_stall: set SIBYL_BIN (and build sibyl-stress next to it)")
    node = SibylNode(binary, tempfile.mkdtemp(prefix="sibyl-stall."))
    node.start()
    clusters = []
    try:
        run_stress(stress, node, "write", "n=%d" % rows, "cl=ONE", "-rate", "threads=2", "-conns", "2",
                   "-inflight", "32", "-col", "size=FIXED(64)", "-schema", "replication(factor=1)")
        flush(node)
        point_c = Cluster([node.host], port=node.port, execution_profiles={EXEC_PROFILE_DEFAULT: default_profile()})
        clusters += [point_c]
        point_s = point_c.connect()
        get = point_s.prepare('SELECT key, "C0" FROM keyspace1.standard1 WHERE key = ?')
        point_s.execute(get, [b"0000000001"])
        before = loop_metrics(node)
        # The scanning client is another process: in this one its page
        # decoding would hold the GIL and delay the point reads' clock.
        q = multiprocessing.Queue()
        t = multiprocessing.Process(target=scan, args=(node.host, node.port, q))
        rng = random.Random(7)
        lat = []
        t.start()
        while t.is_alive() and len(lat) < 10000000:
            key = ("%010d" % rng.randint(1, rows)).encode()
            t0 = time.monotonic()
            point_s.execute(get, [key]).one()
            lat.append(time.monotonic() - t0)
        t.join()
        res = q.get(timeout=10)
        after = loop_metrics(node)
        lat.sort()
        n = len(lat)
        print("rows %d: COUNT(*) = %d in %.2f s, full scan %d rows in %.2f s" %
              (rows, res["count"], res["count_s"], res["scanned"], res["scan_s"]))
        print("point reads during the scan: %d, p50 %.2f ms, p99 %.2f ms, max %.2f ms" %
              (n, lat[n // 2] * 1e3, lat[min(n - 1, int(n * 0.99))] * 1e3, lat[-1] * 1e3))
        if before and after:
            print("loop iterations during the scan over 5 ms: %d, over 50 ms: %d; longest since start %.1f ms"
                  " (most CPU in one iteration %.1f ms)" %
                  (after[0] - before[0], after[1] - before[1], after[2] * 1e3, after[3] * 1e3))
        else:
            print("(this sibyld has no loop-lag metric)")
    finally:
        for c in clusters:
            c.shutdown()
        node.shutdown()


if __name__ == "__main__":
    main()
