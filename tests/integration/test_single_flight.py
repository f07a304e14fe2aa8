"""Single-flight reads (coordinator/read.c): concurrent identical reads of
one partition at one coordinator share one replica round, formed by the
first read and sent at the end of the loop iteration it arrived in. A read
joins only a round not yet sent, so it still sees every write acknowledged
before it arrived. /metrics counts the reads that joined another's round
(sibyl_coordinator_reads_coalesced_total).

A 3-node cluster, RF 3 (every node a replica, so the coordinator's own
replica is read through its read pool); the driver talks to one node only,
so that node coordinates every read. Every node is stopped by pid at
teardown (make_cluster).
"""

import threading
import time
import urllib.request

from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement

from sibyl_harness import flush
from test_coordinator import FAST
from test_reads import cluster_with_table, write

QUORUM = ConsistencyLevel.QUORUM


def metric(node, name):
    url = "http://%s:%d/metrics" % (node.host, node.admin_port)
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError("%s not in /metrics" % name)


COALESCED = "sibyl_coordinator_reads_coalesced_total"
ROUNDS = "sibyl_coordinator_read_rounds_total"


def test_concurrent_reads_of_one_key_share_rounds(make_cluster, clusters):
    c, ss = cluster_with_table(make_cluster, clusters, 3, config=FAST)
    s = ss[0]
    want = [(ck, "v%d" % ck) for ck in range(5)]
    for ck, v in want:
        write(s, 1, ck, v, QUORUM)
    write(s, 2, 0, "other", QUORUM)
    # from SSTables: the coordinator's own replica is read on its read pool
    for n in c:
        assert flush(n)["sstables"] >= 1
    pool0 = metric(c[0], "sibyl_reads_pool_total")
    sel = s.prepare("SELECT c, v FROM ks.t WHERE k = ?")
    sel.consistency_level = QUORUM
    before, rounds0 = metric(c[0], COALESCED), metric(c[0], ROUNDS)
    total = 0
    # Hundreds in flight at once: the node reads many of them from its
    # socket in one loop iteration. Bounded: at most 5 bursts.
    for _ in range(5):
        futures = [s.execute_async(sel, (1,)) for _ in range(300)]
        futures += [s.execute_async(sel, (2,)) for _ in range(20)]
        for i, f in enumerate(futures):
            rows = [(r.c, r.v) for r in f.result()]
            assert rows == (want if i < 300 else [(0, "other")])
        total += len(futures)
        if metric(c[0], COALESCED) > before:
            break
    coalesced = metric(c[0], COALESCED) - before
    rounds = metric(c[0], ROUNDS) - rounds0
    assert coalesced > 0
    # every read either formed a round or joined one
    assert rounds + coalesced == total
    # the other nodes coordinated none of these reads
    assert metric(c[1], COALESCED) == 0
    assert metric(c[0], "sibyl_reads_pool_total") > pool0


def test_read_after_acknowledged_write_sees_it_with_concurrent_readers(make_cluster, clusters):
    c, ss = cluster_with_table(make_cluster, clusters, 3, config=FAST)
    s = ss[0]
    write(s, 7, 0, "0", QUORUM)
    sel = s.prepare("SELECT c, v FROM ks.t WHERE k = ?")
    sel.consistency_level = QUORUM
    stop = threading.Event()
    seen, errors = [], []

    def readers():
        # Identical reads of the same key on the same coordinator, so the
        # checked read below keeps meeting rounds it could join.
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                futures = [s.execute_async(sel, (7,)) for _ in range(40)]
                for f in futures:
                    seen.append(int(f.result().one().v))
            except Exception as e:  # reported by the main thread
                errors.append(e)
                return

    t = threading.Thread(target=readers)
    t.start()
    before = metric(c[0], COALESCED)
    try:
        for i in range(1, 201):
            write(s, 7, 0, str(i), QUORUM)
            # acknowledged: a read that arrives now must see it
            row = s.execute(SimpleStatement("SELECT c, v FROM ks.t WHERE k = 7", consistency_level=QUORUM)).one()
            assert row.v == str(i), "read after the write of %d saw %s" % (i, row.v)
            rows = s.execute(sel, (7,)).one()
            assert rows.v == str(i)
    finally:
        stop.set()
        t.join(timeout=60)
    assert not t.is_alive()
    assert not errors, errors
    assert seen and all(0 <= v <= 200 for v in seen)
    assert metric(c[0], COALESCED) > before
