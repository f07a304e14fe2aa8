"""Reads through the replicas (coordinator/read.c), on real clusters
(127.0.0.1..): a single-partition SELECT asks blockFor live replicas for
their unfiltered data, reconciles it (newest write wins, tombstones shadow
older data) and, with read_repair 'BLOCKING' (the default), sends the
reconciled state to the replicas that answered differently before it
replies; a scan (a range read) repairs each piece the same way.
Unavailable when too few replicas are alive, ReadTimeout (with the counts)
when a frozen replica never answers.

Each test creates its keyspace and table on the first node and waits until
the schema has reached every node. Every node is stopped by pid at teardown
(make_cluster).
"""

import os
import signal
import uuid

import pytest

from conftest import wait_until

from cassandra import ConsistencyLevel, ReadTimeout, Unavailable
from cassandra.query import SimpleStatement

from test_coordinator import FAST, session_on, wait_down

ONE, QUORUM, ALL = ConsistencyLevel.ONE, ConsistencyLevel.QUORUM, ConsistencyLevel.ALL


def create_schema(sessions, rf, table_id, options=""):
    s0 = sessions[0]
    s0.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': %d}" % rf)
    s0.execute("CREATE TABLE ks.t (k int, c int, v text, PRIMARY KEY (k, c)) WITH id = %s%s" % (table_id, options))
    q = "SELECT id FROM system_schema.tables WHERE keyspace_name = 'ks' AND table_name = 't'"
    for s in sessions:
        wait_until(lambda: (s.execute(q).one() or {}) and s.execute(q).one().id == table_id,
                   timeout=30, what="the table reaches every node")


def write(s, k, c, v, cl):
    s.execute(SimpleStatement("INSERT INTO ks.t (k, c, v) VALUES (%s, %s, %s)", consistency_level=cl), (k, c, v))


def read(s, k, cl):
    rows = s.execute(SimpleStatement("SELECT c, v FROM ks.t WHERE k = %s", consistency_level=cl), (k,))
    return [(r.c, r.v) for r in rows]


def cluster_with_table(make_cluster, clusters, rf, size=3, config=FAST, options=""):
    """A converged cluster, a session on each node, ks.t created on each."""
    c = make_cluster(size=size, config=config)
    c.wait_converged()
    ss = [session_on(clusters, n) for n in c]
    create_schema(ss, rf, uuid.uuid4(), options)
    return c, ss


def wait_up(c, observers, addr):
    for n in observers:
        wait_until(lambda: c.status(n).get(addr) == "UN", timeout=60, what="%s sees %s UP" % (n.host, addr))


def test_quorum_reads_through_every_node_and_levels_follow_liveness(make_cluster, clusters):
    c, ss = cluster_with_table(make_cluster, clusters, 3)
    for k in range(10):
        for ck in range(3):
            write(ss[0], k, ck, "v%d.%d" % (k, ck), QUORUM)
    want = {k: [(ck, "v%d.%d" % (k, ck)) for ck in range(3)] for k in range(10)}
    for s in ss:
        for k in range(10):
            assert read(s, k, QUORUM) == want[k]
    # slices, limits and paging go through the same path
    rows = ss[1].execute(SimpleStatement("SELECT c FROM ks.t WHERE k = 1 AND c >= 1 LIMIT 1",
                                         consistency_level=QUORUM))
    assert [r.c for r in rows] == [1]
    st = SimpleStatement("SELECT c FROM ks.t WHERE k = 2", consistency_level=ALL, fetch_size=1)
    assert [r.c for r in ss[2].execute(st)] == [0, 1, 2]

    c[2].kill9()
    wait_down(c, c[:2], c[2].host)
    for k in range(10):
        assert read(ss[0], k, QUORUM) == want[k]
        assert read(ss[1], k, QUORUM) == want[k]
    with pytest.raises(Unavailable) as e:
        read(ss[0], 1, ALL)
    assert e.value.required_replicas == 3 and e.value.alive_replicas == 2

    c[1].kill9()
    wait_down(c, c[:1], c[1].host)
    with pytest.raises(Unavailable) as e:
        read(ss[0], 1, QUORUM)
    assert e.value.required_replicas == 2 and e.value.alive_replicas == 1
    assert read(ss[0], 3, ONE) == want[3]


def read_all(s, keys, cl, scan):
    """Every row of keys, by partition: one SELECT per key, or (scan) one
    paged SELECT of the whole table, a range read through the replicas."""
    if not scan:
        return {k: read(s, k, cl) for k in keys}
    got = {k: [] for k in keys}
    st = SimpleStatement("SELECT k, c, v FROM ks.t", consistency_level=cl, fetch_size=4)
    for r in s.execute(st):
        got.setdefault(r.k, []).append((r.c, r.v))
    return got


def repair_scenario(make_cluster, clusters, options, scan=False):
    """2 nodes RF 2; node 2 misses writes (and a deletion) made at ONE while
    it is stopped; then every row is read at ALL through node 1 (per key, or
    with scan by a paged range read). Returns what those reads returned and
    node 2's own answers (ONE) once node 1 is stopped."""
    c, ss = cluster_with_table(make_cluster, clusters, 2, size=2, options=options)
    for k in range(5):
        write(ss[0], k, 0, "old", ALL)  # both have it
    c[1].stop()
    wait_down(c, c[:1], c[1].host)
    for k in range(5, 15):
        write(ss[0], k, 0, "new%d" % k, ONE)
    ss[0].execute(SimpleStatement("DELETE FROM ks.t WHERE k = 0 AND c = 0", consistency_level=ONE))
    write(ss[0], 1, 0, "newer", ONE)
    c[1].start()
    wait_up(c, c[:1], c[1].host)
    wait_up(c, c[1:], c[0].host)
    s1 = session_on(clusters, c[0])
    seen = read_all(s1, range(15), ALL, scan)
    c[0].stop()
    wait_down(c, c[1:], c[0].host)
    s2 = session_on(clusters, c[1])
    alone = read_all(s2, range(15), ONE, scan)
    return seen, alone


EXPECTED = {0: [], 1: [(0, "newer")]}
EXPECTED.update({k: [(0, "old")] for k in range(2, 5)})
EXPECTED.update({k: [(0, "new%d" % k)] for k in range(5, 15)})


@pytest.mark.parametrize("scan", [False, True], ids=["point", "range"])
def test_blocking_read_repair(make_cluster, clusters, scan):
    seen, alone = repair_scenario(make_cluster, clusters, "", scan)
    assert seen == EXPECTED  # reconciled: the deleted row stays deleted
    assert alone == EXPECTED  # node 2 got every row (and the tombstone) from the repair


@pytest.mark.parametrize("scan", [False, True], ids=["point", "range"])
def test_read_repair_none(make_cluster, clusters, scan):
    seen, alone = repair_scenario(make_cluster, clusters, " AND read_repair = 'NONE'", scan)
    assert seen == EXPECTED  # still reconciled
    # node 2 did not get what it missed: its own old state
    stale = {k: [(0, "old")] for k in range(5)}
    stale.update({k: [] for k in range(5, 15)})
    assert alone == stale


def test_frozen_replica_read_timeout(make_cluster, clusters):
    c, ss = cluster_with_table(make_cluster, clusters, 3,
                               config={"gossip_interval_ms": 200, "phi_convict_threshold": 16,
                                       "read_request_timeout": "1s"})
    write(ss[0], 1, 1, "x", ALL)
    pid = c[2].proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(ReadTimeout) as e:
            read(ss[0], 1, ALL)
        assert e.value.received_responses == 2 and e.value.required_responses == 3
        assert e.value.consistency == ALL
    finally:
        os.kill(pid, signal.SIGCONT)

    def all_read():
        try:
            return read(ss[0], 1, ALL) == [(1, "x")]
        except ReadTimeout:
            return False
    wait_until(all_read, timeout=20, what="an ALL read once the replica thawed")


def test_reads_through_a_node_that_is_not_a_replica(make_cluster, clusters):
    # RF 2 on 3 nodes: every node coordinates reads of partitions it does
    # not hold (every replica asked is remote: data from one, a digest from
    # the other at QUORUM).
    c, ss = cluster_with_table(make_cluster, clusters, 2)
    for k in range(30):
        write(ss[0], k, 0, "v%d" % k, QUORUM)
    for s in ss:
        for k in range(30):
            assert read(s, k, QUORUM) == [(0, "v%d" % k)]
            assert read(s, k, ONE) == [(0, "v%d" % k)]
    # an IN over partitions on different replicas, in the key values' order
    rows = ss[2].execute(SimpleStatement("SELECT k, v FROM ks.t WHERE k IN (7, 3, 21)", consistency_level=QUORUM))
    assert [(r.k, r.v) for r in rows] == [(3, "v3"), (7, "v7"), (21, "v21")]
