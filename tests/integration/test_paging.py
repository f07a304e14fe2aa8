"""Paging: result_page_size + paging_state within a partition, across
partitions, full-table scans in token order, with LIMIT, and resumed from a
saved paging state."""

import struct

import pytest

from cassandra.metadata import Murmur3Token
from cassandra.query import SimpleStatement


def token_of(*components):
    """Murmur3 token of a partition key from (type-format, value) pairs."""
    parts = [struct.pack(fmt, v) if fmt else v for fmt, v in components]
    if len(parts) == 1:
        key = parts[0]
    else:  # composite: u16 length + bytes + 0x00 per component
        key = b"".join(struct.pack(">H", len(p)) + p + b"\x00" for p in parts)
    return Murmur3Token.from_key(key).value


def pages(session, query, fetch_size, params=None):
    """Run a query page by page; returns the list of pages (lists of rows)."""
    st = SimpleStatement(query, fetch_size=fetch_size) if isinstance(query, str) else query
    rs = session.execute(st, params)
    out = [list(rs.current_rows)]
    n = 0
    while rs.has_more_pages:
        n += 1
        assert n < 10000, "paging does not end"
        rs.fetch_next_page()
        out.append(list(rs.current_rows))
    return out


@pytest.fixture
def wide(session, ks):
    """ks.wide: partitions k = 0..5, 23 rows each (c = 0..22)."""
    session.execute("CREATE TABLE %s.wide (k int, c int, v text, PRIMARY KEY (k, c))" % ks)
    ins = session.prepare("INSERT INTO %s.wide (k, c, v) VALUES (?, ?, ?)" % ks)
    futures = [session.execute_async(ins, (k, c, "x" * (c % 7))) for k in range(6) for c in range(23)]
    for f in futures:
        f.result()
    return ks + ".wide"


def test_paging_within_partition(session, wide):
    ps = pages(session, "SELECT c FROM %s WHERE k = 2" % wide, 10)
    assert [len(p) for p in ps[:3]] == [10, 10, 3]
    assert all(len(p) == 0 for p in ps[3:])             # at most a trailing empty page
    assert [r.c for p in ps for r in p] == list(range(23))


def test_paging_reversed(session, wide):
    ps = pages(session, "SELECT c FROM %s WHERE k = 2 ORDER BY c DESC" % wide, 4)
    assert len(ps) >= 6
    assert [r.c for p in ps for r in p] == list(range(22, -1, -1))


def test_paging_exact_multiple(session, wide):
    ps = pages(session, "SELECT c FROM %s WHERE k = 1 AND c < 20" % wide, 5)
    rows = [r.c for p in ps for r in p]
    assert rows == list(range(20))
    assert all(len(p) <= 5 for p in ps)


def test_paging_with_limit(session, wide):
    ps = pages(session, "SELECT c FROM %s WHERE k = 3 LIMIT 13" % wide, 5)
    assert [r.c for p in ps for r in p] == list(range(13))
    ps = pages(session, "SELECT k, c FROM %s LIMIT 50" % wide, 7)
    assert sum(len(p) for p in ps) == 50


def test_paging_clustering_range(session, wide):
    ps = pages(session, "SELECT c FROM %s WHERE k = 4 AND c > 3 AND c <= 17" % wide, 3)
    assert [r.c for p in ps for r in p] == list(range(4, 18))


def test_full_scan_pages_across_partitions_in_token_order(session, wide):
    ps = pages(session, "SELECT k, c FROM %s" % wide, 10)
    assert len(ps) >= 14
    rows = [(r.k, r.c) for p in ps for r in p]
    assert len(rows) == 6 * 23 and len(set(rows)) == len(rows)
    # Partitions come in token order; rows of a partition in clustering order.
    keys = []
    for k, _ in rows:
        if not keys or keys[-1] != k:
            keys.append(k)
    assert sorted(keys) == list(range(6)), "a partition was split or repeated: %r" % keys
    assert keys == sorted(range(6), key=lambda k: token_of((">i", k)))
    for k in range(6):
        assert [c for kk, c in rows if kk == k] == list(range(23))


def test_token_order_many_partitions(session, ks):
    session.execute("CREATE TABLE %s.many (k bigint PRIMARY KEY, v int)" % ks)
    ins = session.prepare("INSERT INTO %s.many (k, v) VALUES (?, ?)" % ks)
    keys = list(range(-100, 100, 3))
    for f in [session.execute_async(ins, (k, 0)) for k in keys]:
        f.result()
    got = [r.k for p in pages(session, "SELECT k FROM %s.many" % ks, 9) for r in p]
    assert got == sorted(keys, key=lambda k: token_of((">q", k)))


def test_token_order_composite_partition_key(session, ks):
    session.execute("CREATE TABLE %s.cp (a int, b text, c int, PRIMARY KEY ((a, b), c))" % ks)
    ins = session.prepare("INSERT INTO %s.cp (a, b, c) VALUES (?, ?, ?)" % ks)
    parts = [(a, b) for a in range(5) for b in ("x", "yy", "zzz")]
    for a, b in parts:
        session.execute(ins, (a, b, 1))
        session.execute(ins, (a, b, 2))
    got = [(r.a, r.b) for p in pages(session, "SELECT a, b, c FROM %s.cp" % ks, 4) for r in p]
    want = sorted(parts, key=lambda ab: token_of((">i", ab[0]), (None, ab[1].encode())))
    assert got == [p for p in want for _ in (1, 2)]


def test_token_function(session, ks):
    session.execute("CREATE TABLE %s.tk (k text PRIMARY KEY)" % ks)
    session.execute("INSERT INTO %s.tk (k) VALUES ('foo')" % ks)
    r = session.execute("SELECT token(k) FROM %s.tk WHERE k = 'foo'" % ks).one()
    assert r[0] == -2129773440516405919              # docs/protocol.md vector for 'foo'


def test_resume_from_paging_state(session, wide):
    st = SimpleStatement("SELECT c FROM %s WHERE k = 5" % wide, fetch_size=6)
    rs = session.execute(st)
    first = [r.c for r in rs.current_rows]
    assert first == list(range(6)) and rs.has_more_pages
    state = rs.paging_state
    assert state
    # A new request with the saved state continues where the page ended,
    # twice in a row (the state is not consumed).
    for _ in range(2):
        rs2 = session.execute(st, paging_state=state)
        assert [r.c for r in rs2.current_rows] == list(range(6, 12))


def test_paging_prepared(session, wide):
    ps = session.prepare("SELECT c FROM %s WHERE k = ?" % wide)
    ps.fetch_size = 4
    got = [r.c for p in pages(session, ps.bind((0,)), 4) for r in p]
    assert got == list(range(23))


def test_paging_in_on_partition_key(session, wide):
    got = [(r.k, r.c) for p in pages(session, "SELECT k, c FROM %s WHERE k IN (1, 3)" % wide, 5) for r in p]
    assert sorted(got) == [(k, c) for k in (1, 3) for c in range(23)]
    assert len(got) == len(set(got))


def test_paging_per_partition_limit(session, wide):
    got = [(r.k, r.c) for p in pages(session, "SELECT k, c FROM %s PER PARTITION LIMIT 3" % wide, 4) for r in p]
    assert sorted(got) == [(k, c) for k in range(6) for c in range(3)]


def test_count_is_not_paged(session, wide):
    st = SimpleStatement("SELECT COUNT(*) FROM %s" % wide, fetch_size=5)
    rs = session.execute(st)
    assert [tuple(r) for r in rs] == [(138,)]


def test_iterating_result_set_fetches_all_pages(session, wide):
    st = SimpleStatement("SELECT k, c FROM %s" % wide, fetch_size=17)
    assert len(list(session.execute(st))) == 138
