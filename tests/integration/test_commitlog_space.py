"""commitlog_total_space through a real node and driver: with a memtable
bound the writes never reach, the commitlog's own bound makes the tables
holding its oldest segment flush, so the live segments stay near the bound
instead of growing with the data -- and nothing is lost across kill -9."""

import glob
import json
import os
import time
import urllib.request

from cassandra.concurrent import execute_concurrent_with_args


def info(node):
    with urllib.request.urlopen("http://%s:%d/info" % (node.host, node.admin_port), timeout=30) as r:
        return json.loads(r.read().decode())


def segments(node):
    return len(glob.glob(os.path.join(node.commitlog_dir, "CommitLog-*.log")))


def test_commitlog_total_space_bounds_the_commitlog(make_node, clusters):
    node = make_node(commitlog_segment_size="1MiB", commitlog_total_space="3MiB",
                     memtable_heap_space="1024MiB")
    c, s = clusters.connect(node)
    s.execute("CREATE KEYSPACE cls WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE cls.t (k int PRIMARY KEY, v text)")
    ins = s.prepare("INSERT INTO cls.t (k, v) VALUES (?, ?)")
    n = 6000                                   # about 12 MB of commitlog: 12 segments unbounded
    rows = [(k, os.urandom(1000).hex()) for k in range(n)]
    for ok, res in execute_concurrent_with_args(s, ins, rows, concurrency=50):
        assert ok, res
    st = {}
    for _ in range(600):                       # bounded: 30 s for flushes in flight to finish
        st = info(node)
        if st["flushes_pending"] == 0:
            break
        time.sleep(0.05)
    assert st["flushes_pending"] == 0
    assert st["sstables"] >= 1                 # the commitlog bound alone flushed (the memtable bound is 1 GiB)
    # 3 segments of 1 MiB, plus the one being written, two spares and what
    # flushes in flight let pass; about 14 without the bound
    assert segments(node) <= 9, segments(node)
    c.shutdown()
    node.restart(kill=True)
    c, s = clusters.connect(node)
    got = {r.k: r.v for r in s.execute("SELECT k, v FROM cls.t")}
    assert got == dict(rows)
    c.shutdown()
