"""Scans through the replicas (coordinator/range.c), on real 3-node clusters
(127.0.0.1..3): a SELECT without a whole partition key walks the ring's
ranges in token order, asks blockFor live replicas of each for their
unfiltered partitions and reconciles them, so every row comes back exactly
once whichever node coordinates. Paging states work on any node; LIMIT,
PER PARTITION LIMIT, COUNT(*), DISTINCT, token() ranges and ALLOW FILTERING
go through the same path; Unavailable when a range has too few live
replicas; short-read protection when replicas hold different tombstones.

Expected results are computed here, with the driver's own murmur3 for the
token order. Every node is stopped by pid at teardown (make_cluster).
"""

import os
import signal
import struct

import pytest

from cassandra import ConsistencyLevel, ReadTimeout, Unavailable
from cassandra.murmur3 import murmur3
from cassandra.query import SimpleStatement

from sibyl_harness import flush
from conftest import wait_until
from test_coordinator import FAST, session_on, wait_down
from test_reads import cluster_with_table, wait_up

ONE, QUORUM, ALL = ConsistencyLevel.ONE, ConsistencyLevel.QUORUM, ConsistencyLevel.ALL


def token(k):
    return murmur3(struct.pack(">i", k))


def q(s, text, cl, fetch_size=None, paging_state=None, params=None):
    st = SimpleStatement(text, consistency_level=cl, fetch_size=fetch_size)
    return s.execute(st, params, paging_state=paging_state)


def fill(s, nparts, nrows, cl, first=0):
    ins = s.prepare("INSERT INTO ks.t (k, c, v) VALUES (?, ?, ?)")
    ins.consistency_level = cl
    for k in range(first, nparts):
        for c in range(nrows):
            s.execute(ins, (k, c, "v%d" % ((k + c) % 3)))


def ordered(rows):
    """(k, c, v) tuples in scan order: token of k, then c."""
    return sorted(rows, key=lambda r: (token(r[0]), r[1]))


def scan(s, cl, text="SELECT k, c, v FROM ks.t", fetch_size=None):
    return [(r.k, r.c, r.v) for r in q(s, text, cl, fetch_size=fetch_size)]


def paged_across(sessions, text, cl, fetch_size):
    """Reads every page of `text`, each page through the next node."""
    out, state, i = [], None, 0
    for _ in range(10000):
        rs = q(sessions[i % len(sessions)], text, cl, fetch_size=fetch_size, paging_state=state)
        page = list(rs.current_rows)
        assert len(page) <= fetch_size
        out += [(r.k, r.c, r.v) for r in page]
        state = rs.paging_state
        i += 1
        if state is None:
            return out, i
    raise AssertionError("paging did not end")


def check_scans(ss, want, cl):
    """Every query shape through every node, against `want` (all live rows)."""
    keys = sorted({r[0] for r in want}, key=token)
    for s in ss:
        assert scan(s, cl) == want
        assert q(s, "SELECT COUNT(*) FROM ks.t", cl).one()[0] == len(want)
        assert [r.k for r in q(s, "SELECT DISTINCT k FROM ks.t", cl)] == keys
        assert scan(s, cl, "SELECT k, c, v FROM ks.t LIMIT 7") == want[:7]
        ppl = [r for r in want if r[1] == min(x[1] for x in want if x[0] == r[0])]
        assert scan(s, cl, "SELECT k, c, v FROM ks.t PER PARTITION LIMIT 1") == ppl
        assert scan(s, cl, "SELECT k, c, v FROM ks.t WHERE v = 'v1' ALLOW FILTERING") == \
            [r for r in want if r[2] == "v1"]
        # a token range in the middle of the ring, bounds on partitions
        lo, hi = token(keys[len(keys) // 4]), token(keys[3 * len(keys) // 4])
        got = scan(s, cl, "SELECT k, c, v FROM ks.t WHERE token(k) > %d AND token(k) <= %d" % (lo, hi))
        assert got == [r for r in want if lo < token(r[0]) <= hi]
        got = scan(s, cl, "SELECT k, c, v FROM ks.t WHERE token(k) >= %d LIMIT 5" % lo)
        assert got == [r for r in want if token(r[0]) >= lo][:5]
    # pages of 7 rows, each page through another node than the one before
    got, pages = paged_across(ss, "SELECT k, c, v FROM ks.t", cl, 7)
    assert got == want and pages == (len(want) + 6) // 7
    got, _ = paged_across(ss[::-1], "SELECT k, c, v FROM ks.t WHERE v = 'v2' ALLOW FILTERING", cl, 5)
    assert got == [r for r in want if r[2] == "v2"]


def all_rows(nparts, nrows):
    return ordered([(k, c, "v%d" % ((k + c) % 3)) for k in range(nparts) for c in range(nrows)])


def test_rf1_scans_see_every_node(make_cluster, clusters):
    c, ss = cluster_with_table(make_cluster, clusters, 1, config=FAST)
    fill(ss[0], 30, 3, ONE)
    flush(c[1])  # one node reads part of its scan from an SSTable
    fill(ss[0], 60, 3, ONE, first=30)
    want = all_rows(60, 3)
    check_scans(ss, want, ONE)

    # a node down: its ranges have no live replica
    ring = sorted((int(t), i) for i, s in enumerate(ss) for t in q(s, "SELECT tokens FROM system.local", ONE).one()[0])
    c[2].kill9()
    wait_down(c, c[:2], c[2].host)
    with pytest.raises(Unavailable) as e:
        scan(ss[0], ONE)
    assert e.value.required_replicas == 1 and e.value.alive_replicas == 0
    with pytest.raises(Unavailable):
        q(ss[1], "SELECT COUNT(*) FROM ks.t", ONE)
    # ... but a token range the live nodes own still reads: (previous token, T]
    for j in range(1, len(ring)):
        if ring[j][1] != 2:
            lo, hi = ring[j - 1][0], ring[j][0]
            got = scan(ss[0], ONE, "SELECT k, c, v FROM ks.t WHERE token(k) > %d AND token(k) <= %d" % (lo, hi))
            assert got == [r for r in want if lo < token(r[0]) <= hi]


def test_rf3_scans_and_levels_follow_liveness(make_cluster, clusters):
    c, ss = cluster_with_table(make_cluster, clusters, 3, config=FAST)
    fill(ss[1], 40, 2, ALL)
    want = all_rows(40, 2)
    check_scans(ss, want, QUORUM)
    assert scan(ss[2], ALL) == want and scan(ss[0], ONE) == want

    c[2].kill9()
    wait_down(c, c[:2], c[2].host)
    with pytest.raises(Unavailable) as e:
        scan(ss[0], ALL)
    assert e.value.required_replicas == 3 and e.value.alive_replicas == 2
    assert scan(ss[1], QUORUM) == want
    got, _ = paged_across(ss[:2], "SELECT k, c, v FROM ks.t", QUORUM, 9)
    assert got == want

    c[1].kill9()
    wait_down(c, c[:1], c[1].host)
    with pytest.raises(Unavailable) as e:
        q(ss[0], "SELECT COUNT(*) FROM ks.t", QUORUM)
    assert e.value.required_replicas == 2 and e.value.alive_replicas == 1
    assert scan(ss[0], ONE) == want


def restart(c, i):
    c[i].start()
    others = [n for j, n in enumerate(c) if j != i]
    wait_up(c, others, c[i].host)
    wait_up(c, [c[i]], others[0].host)
    wait_up(c, [c[i]], others[1].host)


def test_short_read_protection(make_cluster, clusters):
    """Replicas hold different tombstones (each deletion made at ONE while
    one node was stopped, so no hint and no repair reaches it); a scan with
    LIMIT at QUORUM / ALL still returns exactly the first live rows and
    partitions, whichever node coordinates."""
    c, ss = cluster_with_table(make_cluster, clusters, 3, config=FAST)
    nparts, nrows = 24, 4
    fill(ss[0], nparts, nrows, ALL)
    for n in c:  # the rows in SSTables, the deletions below in memtables
        flush(n)
    order = sorted(range(nparts), key=token)
    # partitions deleted while node 3 was down, rows while node 2 was down,
    # each chosen at the front of the token order so every LIMIT meets them
    gone_parts = set(order[0:6]) | set(order[10:13])
    gone_rows = {(k, cc) for k in order[6:10] + order[13:16] for cc in range(nrows - 1)}

    c[2].stop()
    wait_down(c, c[:2], c[2].host)
    for k in gone_parts:
        q(ss[0], "DELETE FROM ks.t WHERE k = %s", ONE, params=(k,))
    restart(c, 2)
    c[1].stop()
    wait_down(c, [c[0], c[2]], c[1].host)
    s3 = session_on(clusters, c[2])  # node 3 restarted: a new connection
    for k, cc in gone_rows:
        q(s3, "DELETE FROM ks.t WHERE k = %s AND c = %s", ONE, params=(k, cc))
    restart(c, 1)
    ss = [session_on(clusters, n) for n in c]

    want = [r for r in all_rows(nparts, nrows) if r[0] not in gone_parts and (r[0], r[1]) not in gone_rows]
    live_keys = [k for k in order if k not in gone_parts]
    # each replica still holds rows another one deleted: ONE on node 2 shows them
    assert len(scan(ss[1], ONE)) > len(want) or len(scan(ss[2], ONE)) > len(want)
    for cl in (QUORUM, ALL):
        for s in ss:
            for n in (1, 3, 5, 11):
                assert scan(s, cl, "SELECT k, c, v FROM ks.t LIMIT %d" % n) == want[:n]
                got = [r.k for r in q(s, "SELECT DISTINCT k FROM ks.t LIMIT %d" % n, cl)]
                assert got == live_keys[:n]
            assert q(s, "SELECT COUNT(*) FROM ks.t", cl).one()[0] == len(want)
        got, _ = paged_across(ss, "SELECT k, c, v FROM ks.t", cl, 4)
        assert got == want


def test_scan_of_an_empty_and_a_fresh_table(make_cluster, clusters):
    c, ss = cluster_with_table(make_cluster, clusters, 2, config=FAST)
    for s in ss:
        assert scan(s, QUORUM) == []
        assert q(s, "SELECT COUNT(*) FROM ks.t", ALL).one()[0] == 0
    q(ss[0], "INSERT INTO ks.t (k, c, v) VALUES (1, 1, 'x')", ONE)
    for s in ss:
        assert scan(s, ALL) == [(1, 1, "x")]


def test_frozen_replica_range_read_timeout(make_cluster, clusters):
    c, ss = cluster_with_table(make_cluster, clusters, 3,
                               config={"gossip_interval_ms": 200, "phi_convict_threshold": 16,
                                       "range_request_timeout": "1s"})
    fill(ss[0], 10, 1, ALL)
    pid = c[2].proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(ReadTimeout) as e:
            scan(ss[0], ALL)
        assert e.value.received_responses == 2 and e.value.required_responses == 3
        assert e.value.consistency == ALL
        assert len(scan(ss[1], ONE)) == 10  # the local replica answers ONE
    finally:
        os.kill(pid, signal.SIGCONT)


def test_static_columns_and_distinct_across_nodes(make_cluster, clusters):
    """A partition with only its static row still shows as one row (the
    clustering and regular columns null), and DISTINCT sees every node's
    partitions, through the replicas as on one node."""
    c, ss = cluster_with_table(make_cluster, clusters, 2, config=FAST)  # QUORUM: both replicas merged
    ss[0].execute("CREATE TABLE ks.st (k int, c int, s text STATIC, v int, PRIMARY KEY (k, c))")
    q_id = "SELECT id FROM system_schema.tables WHERE keyspace_name = 'ks' AND table_name = 'st'"
    for s in ss:
        wait_until(lambda: s.execute(q_id).one() is not None, timeout=30, what="the table reaches every node")
    for k in range(20):
        q(ss[0], "INSERT INTO ks.st (k, s) VALUES (%s, %s)", ALL, params=(k, "s%d" % k))
        if k % 2:
            q(ss[0], "INSERT INTO ks.st (k, c, v) VALUES (%s, 1, %s)", ALL, params=(k, k))
    keys = sorted(range(20), key=token)
    want = [(k, 1 if k % 2 else None, "s%d" % k, k if k % 2 else None) for k in keys]
    for s in ss:
        for cl in (ONE, QUORUM):
            assert [(r.k, r.c, r.s, r.v) for r in q(s, "SELECT k, c, s, v FROM ks.st", cl)] == want
            assert [(r.k, r.s) for r in q(s, "SELECT DISTINCT k, s FROM ks.st", cl)] == \
                [(k, "s%d" % k) for k in keys]
