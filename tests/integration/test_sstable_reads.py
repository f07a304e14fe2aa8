"""Reads served from SSTables through the Python driver: data written,
flushed (admin API) and read back across a restart, and a corrupted Data
block answered as ReadFailure naming the file while other partitions are
still served."""

import glob
import json
import os
import time
import urllib.request

import pytest

from cassandra import ReadFailure

from sibyl_harness import flush



def fill(s, n, width=200):
    s.execute("CREATE KEYSPACE sst WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE sst.t (k int, c int, v text, PRIMARY KEY (k, c))")
    ins = s.prepare("INSERT INTO sst.t (k, c, v) VALUES (?, ?, ?)")
    for k in range(n):
        for c in range(10):
            # random hex: LZ4 cannot shrink it much, so the data spans blocks
            s.execute(ins, (k, c, os.urandom(width // 2).hex()))


def test_flushed_data_reads_back_after_restart(make_node, clusters):
    node = make_node()
    c, s = clusters.connect(node)
    fill(s, 40)
    s.execute("DELETE FROM sst.t WHERE k = 3")            # a tombstone in the memtable
    info = flush(node)
    assert info["sstables"] >= 1
    s.execute("DELETE FROM sst.t WHERE k = 4 AND c = 5")  # shadows a row in the SSTable
    c.shutdown()
    node.restart(kill=True)
    c, s = clusters.connect(node)
    rows = {(r.k, r.c) for r in s.execute("SELECT k, c FROM sst.t")}
    want = {(k, c) for k in range(40) for c in range(10)} - {(3, c) for c in range(10)} - {(4, 5)}
    assert rows == want
    desc = [r.c for r in s.execute("SELECT c FROM sst.t WHERE k = 7 ORDER BY c DESC")]
    assert desc == list(range(9, -1, -1))


def test_corrupted_block_is_a_read_failure_naming_the_file(make_node, clusters):
    node = make_node()
    c, s = clusters.connect(node)
    fill(s, 60, width=300)                                # ~180 KiB: several 16 KiB blocks
    flush(node)
    c.shutdown()
    node.stop()
    # The flush also wrote the node's own schema/local tables: the user
    # table's SSTable is by far the largest.
    data = sorted(glob.glob(os.path.join(node.datadir, "**", "*-Data.db"), recursive=True), key=os.path.getsize)
    assert data
    data = data[-1:]
    size = os.path.getsize(data[0])
    assert size > 64 * 1024
    with open(data[0], "r+b") as f:                       # flip one byte in a middle block
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0xFF]))
    node.start()
    c, s = clusters.connect(node)
    failed, served = [], []
    for k in range(60):
        try:
            rows = list(s.execute("SELECT k, c, v FROM sst.t WHERE k = %d" % k))
            assert len(rows) == 10
            served.append(k)
        except ReadFailure as e:
            assert "Data.db" in str(e), str(e)
            failed.append(k)
    assert failed, "no read touched the corrupted block"
    assert served, "the damage spread to every partition"
    # The node is still healthy for other work.
    s.execute("INSERT INTO sst.t (k, c, v) VALUES (1000, 0, 'fine')")
    assert s.execute("SELECT v FROM sst.t WHERE k = 1000").one().v == "fine"


def test_ttl_and_deletes_across_flushes_and_compaction(make_node, clusters):
    # A 1 MiB memtable: the writes below spread over several SSTables, with
    # expiring cells and tombstones in different ones from the data they hit.
    node = make_node(memtable_heap_space="1MiB")
    cl, s = clusters.connect(node)
    s.execute("CREATE KEYSPACE sst WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE sst.t (k int, c int, v text, PRIMARY KEY (k, c))")
    ins = s.prepare("INSERT INTO sst.t (k, c, v) VALUES (?, ?, ?)")
    ins_ttl = s.prepare("INSERT INTO sst.t (k, c, v) VALUES (?, ?, ?) USING TTL 3")
    pad = "p" * 200
    for k in range(60):
        for c in range(20):
            s.execute(ins_ttl if c % 4 == 0 else ins, (k, c, pad))
    s.execute("DELETE FROM sst.t WHERE k = 5")                       # partition tombstone
    s.execute("DELETE FROM sst.t WHERE k = 6 AND c >= 10")           # range tombstone
    s.execute("DELETE FROM sst.t WHERE k = 7 AND c = 1")             # row tombstone
    flush(node)
    info = json.loads(urllib.request.urlopen("http://%s:%d/info" % (node.host, node.admin_port), timeout=30).read())
    assert info["sstables"] >= 3, info                               # several flushes happened

    def expected():
        want = {(k, c) for k in range(60) for c in range(20) if c % 4 != 0}
        want -= {(5, c) for c in range(20)}
        want -= {(6, c) for c in range(10, 20)}
        want -= {(7, 1)}
        return want

    time.sleep(3.5)                                                  # the TTL'd rows expire
    assert {(r.k, r.c) for r in s.execute("SELECT k, c FROM sst.t")} == expected()
    req = urllib.request.Request("http://%s:%d/compact" % (node.host, node.admin_port), method="POST", data=b"")
    urllib.request.urlopen(req, timeout=30).read()
    for _ in range(600):                                             # bounded: 30 s
        stats = json.loads(urllib.request.urlopen("http://%s:%d/compactionstats" % (node.host, node.admin_port),
                                                  timeout=30).read())
        if stats["pending_tasks"] == 0:
            break
        time.sleep(0.05)
    assert {(r.k, r.c) for r in s.execute("SELECT k, c FROM sst.t")} == expected()
    cl.shutdown()
    node.restart(kill=True)
    cl, s = clusters.connect(node)
    assert {(r.k, r.c) for r in s.execute("SELECT k, c FROM sst.t")} == expected()


def test_tombstone_thresholds(make_node, clusters):
    node = make_node(tombstone_warn_threshold=20, tombstone_failure_threshold=100)
    cl, s = clusters.connect(node)
    s.execute("CREATE KEYSPACE sst WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE sst.t (k int, c int, v text, PRIMARY KEY (k, c))")
    for c in range(200):
        s.execute("INSERT INTO sst.t (k, c, v) VALUES (1, %d, 'x')" % c)
        s.execute("INSERT INTO sst.t (k, c, v) VALUES (2, %d, 'x')" % c)
    for c in range(50):                                   # 50 row tombstones: warn, not fail
        s.execute("DELETE FROM sst.t WHERE k = 1 AND c = %d" % c)
    for c in range(150):                                  # 150: over the failure threshold
        s.execute("DELETE FROM sst.t WHERE k = 2 AND c = %d" % c)
    assert len(list(s.execute("SELECT c FROM sst.t WHERE k = 1"))) == 150
    assert "scanned over 50 tombstones" in node.log_text()
    with pytest.raises(ReadFailure) as e:
        list(s.execute("SELECT c FROM sst.t WHERE k = 2"))
    assert "Scanned over 100 tombstones" in str(e.value)
    # The same data still reads once the rows are past the tombstones' slice.
    assert len(list(s.execute("SELECT c FROM sst.t WHERE k = 2 AND c >= 150"))) == 50
