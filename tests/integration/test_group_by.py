"""GROUP BY on a prefix of the primary key through the Python driver:
aggregates per group, the first row of each group without aggregates,
skipping key columns restricted by equality, LIMIT and PER PARTITION LIMIT
counting groups, ORDER BY (also with IN), paging by groups (a group is never
split between pages), and Cassandra's messages for what it refuses."""

import pytest
from cassandra.query import SimpleStatement

from conftest import refused

ROWS = {1: [(1, 1, 10), (1, 2, 20), (2, 1, 30), (3, 1, 40), (3, 2, 50)],
        2: [(1, 1, 5), (2, 1, 6)],
        3: [(1, 1, 7)]}


def rows(session, q, fetch_size=None):
    return [tuple(r) for r in session.execute(SimpleStatement(q, fetch_size=fetch_size))]


@pytest.fixture
def t(session, ks):
    session.execute("CREATE TABLE %s.g (a int, b int, c int, d int, e int, PRIMARY KEY (a, b, c))" % ks)
    for a, rs in ROWS.items():
        for b, c, d in rs:
            session.execute("INSERT INTO %s.g (a, b, c, d) VALUES (%d, %d, %d, %d)" % (ks, a, b, c, d))
    return ks + ".g"


def token_order(session, t):
    return [r.a for r in session.execute("SELECT DISTINCT a FROM %s" % t)]


def test_aggregates_per_group(session, t):
    expect = [(1, 1, 2, 30, 2), (1, 2, 1, 30, 1), (1, 3, 2, 90, 2)]
    assert rows(session, "SELECT a, b, count(*), sum(d), max(c) FROM %s WHERE a = 1 GROUP BY a, b" % t) == expect
    # a is restricted by equality, so the group may leave it out
    assert rows(session, "SELECT a, b, count(*), sum(d), max(c) FROM %s WHERE a = 1 GROUP BY b" % t) == expect
    # by partition, over the whole table (token order)
    per_a = {1: (1, 5, 150), 2: (2, 2, 11), 3: (3, 1, 7)}
    assert rows(session, "SELECT a, count(*), sum(d) FROM %s GROUP BY a" % t) == [
        per_a[a] for a in token_order(session, t)]
    # the full key: a group per row
    assert len(rows(session, "SELECT a, b, c, count(*) FROM %s GROUP BY a, b, c" % t)) == 8
    # no matching row: no group at all
    assert rows(session, "SELECT a, count(*) FROM %s WHERE a = 9 GROUP BY a" % t) == []


def test_first_row_of_each_group_without_aggregates(session, t):
    assert rows(session, "SELECT a, b, c, d FROM %s WHERE a = 1 GROUP BY a, b" % t) == [
        (1, 1, 1, 10), (1, 2, 1, 30), (1, 3, 1, 40)]
    assert rows(session, "SELECT * FROM %s WHERE a = 2 GROUP BY a" % t) == [(2, 1, 1, 5, None)]


def test_limits_count_groups(session, t):
    assert rows(session, "SELECT a, b, count(*) FROM %s WHERE a = 1 GROUP BY a, b LIMIT 2" % t) == [
        (1, 1, 2), (1, 2, 1)]
    firsts = {1: (1, 1, 2), 2: (2, 1, 1), 3: (3, 1, 1)}
    assert rows(session, "SELECT a, b, count(*) FROM %s GROUP BY a, b PER PARTITION LIMIT 1" % t) == [
        firsts[a] for a in token_order(session, t)]
    two = rows(session, "SELECT a, b, count(*) FROM %s GROUP BY a, b PER PARTITION LIMIT 2 LIMIT 3" % t)
    assert len(two) == 3 and [r[0] for r in two] == sorted([r[0] for r in two], key=token_order(session, t).index)


def test_order_by_and_in(session, t):
    # reversed: each group's first row is its last in clustering order
    assert rows(session, "SELECT a, b, c, d, count(*) FROM %s WHERE a = 1 GROUP BY a, b ORDER BY b DESC" % t) == [
        (1, 3, 2, 50, 2), (1, 2, 1, 30, 1), (1, 1, 2, 20, 2)]
    # IN + ORDER BY: the groups of all partitions sorted by clustering, then LIMIT
    assert rows(session, "SELECT a, b, c, d FROM %s WHERE a IN (1, 2) GROUP BY a, b ORDER BY b DESC LIMIT 3" % t) == [
        (1, 3, 2, 50), (1, 2, 1, 30), (2, 2, 1, 6)]


@pytest.mark.parametrize("fetch_size", [1, 2, 3])
def test_paging_never_splits_a_group(session, t, fetch_size):
    for q in ("SELECT a, b, count(*), sum(d) FROM %s GROUP BY a, b" % t,
              "SELECT a, count(*), min(d) FROM %s GROUP BY a" % t,
              "SELECT a, b, c FROM %s WHERE a = 1 GROUP BY a, b" % t,
              "SELECT a, b, count(*) FROM %s GROUP BY a, b LIMIT 4" % t,
              "SELECT a, b, count(*) FROM %s GROUP BY a, b PER PARTITION LIMIT 2" % t):
        whole = rows(session, q)
        rs = session.execute(SimpleStatement(q, fetch_size=fetch_size))
        first = list(rs.current_rows)
        assert len(first) <= fetch_size
        assert [tuple(r) for r in rs] == whole, q
        if len(whole) > fetch_size:
            assert len(first) == fetch_size


def test_refusals(session, t, ks):
    refused(session, "SELECT a, b, d, count(b), max(c) FROM %s WHERE a = 1 GROUP BY a, d" % t,
            "Group by is currently only supported on the columns of the PRIMARY KEY, got d")
    order = "Group by currently only support groups of columns following their declared order in the PRIMARY KEY"
    refused(session, "SELECT a, b, d, count(b), max(c) FROM %s WHERE a = 1 GROUP BY c" % t, order)
    refused(session, "SELECT a, b, d, count(b), max(c) FROM %s WHERE a = 1 GROUP BY a, c, b" % t, order)
    refused(session, "SELECT a, b, d, count(b), max(c) FROM %s WHERE a = 1 GROUP BY a, a" % t, order)
    refused(session, "SELECT a, count(*) FROM %s GROUP BY b" % t, order)
    refused(session, "SELECT a FROM %s GROUP BY zz" % t, "Undefined column name zz")
    refused(session, "SELECT DISTINCT a FROM %s GROUP BY a, b" % t,
            "Grouping on clustering columns is not allowed for SELECT DISTINCT queries")
    session.execute("CREATE TABLE %s.cp (a1 int, a2 int, b int, v int, PRIMARY KEY ((a1, a2), b))" % ks)
    refused(session, "SELECT a1, count(*) FROM %s.cp GROUP BY a1" % ks,
            "Group by is not supported on only a part of the partition key")
    assert rows(session, "SELECT a1, a2, count(*) FROM %s.cp GROUP BY a1, a2" % ks) == []


def test_system_table(session, t):
    counts = {}
    for r in session.execute("SELECT keyspace_name, table_name FROM system_schema.columns"):
        counts[r.keyspace_name] = counts.get(r.keyspace_name, 0) + 1
    got = rows(session, "SELECT keyspace_name, count(*) FROM system_schema.columns GROUP BY keyspace_name")
    assert dict(got) == counts and len(got) == len(counts)
    paged = rows(session, "SELECT keyspace_name, count(*) FROM system_schema.columns GROUP BY keyspace_name", 1)
    assert paged == got
