"""INSERT / SELECT / UPDATE / DELETE through the python driver: composite
partition keys, clustering ranges and order, IN, LIMIT, PER PARTITION LIMIT,
COUNT(*), aliases, row/range/partition deletes and row markers."""

import datetime

import pytest

from cassandra import InvalidRequest


def vals(rows, *cols):
    return [tuple(getattr(r, c) for c in cols) for r in rows]


@pytest.fixture
def kc(session, ks):
    """Table ks.kc: k int, c int, v text, PRIMARY KEY (k, c); k in 1..3, c in 0..9."""
    session.execute("CREATE TABLE %s.kc (k int, c int, v text, PRIMARY KEY (k, c))" % ks)
    ins = session.prepare("INSERT INTO %s.kc (k, c, v) VALUES (?, ?, ?)" % ks)
    for k in (1, 2, 3):
        for c in range(10):
            session.execute(ins, (k, c, "v%d.%d" % (k, c)))
    return ks + ".kc"


def test_insert_select_update_delete(session, ks):
    session.execute("CREATE TABLE %s.users (id int PRIMARY KEY, name text, age int)" % ks)
    t = ks + ".users"
    session.execute("INSERT INTO %s (id, name, age) VALUES (1, 'ann', 30)" % t)
    session.execute("INSERT INTO %s (id, name, age) VALUES (2, 'bob', 40)" % t)
    r = session.execute("SELECT * FROM %s WHERE id = 1" % t).one()
    assert (r.id, r.name, r.age) == (1, "ann", 30)
    assert session.execute("SELECT name FROM %s WHERE id = 3" % t).one() is None

    session.execute("UPDATE %s SET age = 31 WHERE id = 1" % t)
    assert session.execute("SELECT age FROM %s WHERE id = 1" % t).one().age == 31
    # INSERT of an existing key overwrites; a column not given keeps its value.
    session.execute("INSERT INTO %s (id, name) VALUES (1, 'anna')" % t)
    r = session.execute("SELECT name, age FROM %s WHERE id = 1" % t).one()
    assert (r.name, r.age) == ("anna", 31)
    # UPDATE of a missing row creates it (upsert).
    session.execute("UPDATE %s SET name = 'cy' WHERE id = 3" % t)
    assert session.execute("SELECT name, age FROM %s WHERE id = 3" % t).one() == ("cy", None)
    # Setting null deletes the cell.
    session.execute("UPDATE %s SET age = null WHERE id = 2" % t)
    assert session.execute("SELECT age FROM %s WHERE id = 2" % t).one().age is None

    session.execute("DELETE FROM %s WHERE id = 1" % t)
    assert session.execute("SELECT * FROM %s WHERE id = 1" % t).one() is None
    assert sorted(r.id for r in session.execute("SELECT id FROM %s" % t)) == [2, 3]


def test_result_column_metadata(session, ks):
    session.execute("CREATE TABLE %s.m (k int PRIMARY KEY, b text, a int)" % ks)
    session.execute("INSERT INTO %s.m (k, a, b) VALUES (1, 2, 'x')" % ks)
    rs = session.execute("SELECT * FROM %s.m" % ks)
    # SELECT *: partition key, clustering, then the other columns by name.
    assert rs.column_names == ["k", "a", "b"]
    rs = session.execute("SELECT b, k FROM %s.m" % ks)
    assert rs.column_names == ["b", "k"]
    assert rs.one() == ("x", 1)
    # Rows metadata is complete even when no row matches.
    rs = session.execute("SELECT a, b FROM %s.m WHERE k = 99" % ks)
    assert rs.column_names == ["a", "b"]
    assert [t.typename for t in rs.column_types] == ["int", "varchar"]
    assert list(rs) == []


def test_quoted_and_case_folded_identifiers(session, ks):
    session.execute('CREATE TABLE %s."MixedCase" (k int PRIMARY KEY, "Value" text, other TEXT)' % ks)
    session.execute('INSERT INTO %s."MixedCase" (K, "Value", OTHER) VALUES (1, \'a\', \'b\')' % ks)
    rs = session.execute('SELECT k, "Value", other FROM %s."MixedCase"' % ks)
    assert rs.column_names == ["k", "Value", "other"]
    assert rs.one() == (1, "a", "b")


def test_composite_partition_key(session, ks):
    session.execute("CREATE TABLE %s.readings (sensor text, day date, ts timestamp, value double, "
                    "PRIMARY KEY ((sensor, day), ts))" % ks)
    t = ks + ".readings"
    base = datetime.datetime(2024, 3, 1, 0, 0, 0)
    ins = session.prepare("INSERT INTO %s (sensor, day, ts, value) VALUES (?, ?, ?, ?)" % t)
    assert ins.routing_key_indexes == [0, 1]     # pk_indexes in the Prepared result
    for sensor in ("s1", "s2"):
        for d in (1, 2):
            for i in range(5):
                ts = base + datetime.timedelta(days=d - 1, minutes=i)
                session.execute(ins, (sensor, datetime.date(2024, 3, d), ts, float(i) + d))
    rows = list(session.execute("SELECT ts, value FROM %s WHERE sensor = 's1' AND day = '2024-03-02'" % t))
    assert len(rows) == 5
    assert [r.value for r in rows] == [2.0, 3.0, 4.0, 5.0, 6.0]
    assert [r.ts for r in rows] == sorted(r.ts for r in rows)
    # Only one component of the partition key: refused.
    with pytest.raises(InvalidRequest):
        session.execute("SELECT * FROM %s WHERE sensor = 's1'" % t)
    # Clustering range inside the bucket.
    rows = list(session.execute(
        "SELECT value FROM %s WHERE sensor = 's2' AND day = '2024-03-01' "
        "AND ts >= '2024-03-01 00:01:00+0000' AND ts < '2024-03-01 00:03:00+0000'" % t))
    assert [r.value for r in rows] == [2.0, 3.0]
    assert session.execute("SELECT COUNT(*) FROM %s" % t).one().count == 20


def test_clustering_ranges(session, kc):
    q = "SELECT c FROM %s WHERE k = 2 AND " % kc
    assert [r.c for r in session.execute(q + "c > 6")] == [7, 8, 9]
    assert [r.c for r in session.execute(q + "c >= 6")] == [6, 7, 8, 9]
    assert [r.c for r in session.execute(q + "c < 2")] == [0, 1]
    assert [r.c for r in session.execute(q + "c <= 2")] == [0, 1, 2]
    assert [r.c for r in session.execute(q + "c > 3 AND c <= 5")] == [4, 5]
    assert [r.c for r in session.execute(q + "c > 5 AND c < 5")] == []
    assert [r.c for r in session.execute(q + "c = 4")] == [4]
    assert [r.c for r in session.execute(q + "c IN (7, 1, 4)")] == [1, 4, 7]


def test_order_by_reversed(session, kc):
    rows = session.execute("SELECT c FROM %s WHERE k = 1 ORDER BY c DESC" % kc)
    assert [r.c for r in rows] == list(range(9, -1, -1))
    rows = session.execute("SELECT c FROM %s WHERE k = 1 AND c >= 3 AND c < 7 ORDER BY c DESC" % kc)
    assert [r.c for r in rows] == [6, 5, 4, 3]
    rows = session.execute("SELECT c FROM %s WHERE k = 1 ORDER BY c ASC LIMIT 3" % kc)
    assert [r.c for r in rows] == [0, 1, 2]
    rows = session.execute("SELECT c FROM %s WHERE k = 1 ORDER BY c DESC LIMIT 2" % kc)
    assert [r.c for r in rows] == [9, 8]


def test_clustering_order_desc(session, ks):
    session.execute("CREATE TABLE %s.events (k int, ts int, v int, PRIMARY KEY (k, ts)) "
                    "WITH CLUSTERING ORDER BY (ts DESC)" % ks)
    t = ks + ".events"
    for ts in (5, 1, 9, 3, 7):
        session.execute("INSERT INTO %s (k, ts, v) VALUES (1, %d, %d)" % (t, ts, ts * 10))
    assert [r.ts for r in session.execute("SELECT ts FROM %s WHERE k = 1" % t)] == [9, 7, 5, 3, 1]
    assert [r.ts for r in session.execute("SELECT ts FROM %s WHERE k = 1 ORDER BY ts ASC" % t)] == [1, 3, 5, 7, 9]
    assert [r.ts for r in session.execute("SELECT ts FROM %s WHERE k = 1 AND ts > 2 AND ts <= 7" % t)] == [7, 5, 3]
    assert [r.ts for r in session.execute("SELECT ts FROM %s WHERE k = 1 LIMIT 2" % t)] == [9, 7]
    assert [r.ts for r in session.execute(
        "SELECT ts FROM %s WHERE k = 1 AND ts < 6 ORDER BY ts ASC" % t)] == [1, 3, 5]


def test_multiple_clustering_columns(session, ks):
    session.execute("CREATE TABLE %s.mc (k int, a int, b text, v int, PRIMARY KEY (k, a, b)) "
                    "WITH CLUSTERING ORDER BY (a ASC, b DESC)" % ks)
    t = ks + ".mc"
    for a in (1, 2, 3):
        for b in ("x", "y", "z"):
            session.execute("INSERT INTO %s (k, a, b, v) VALUES (0, %d, '%s', %d)" % (t, a, b, a))
    rows = session.execute("SELECT a, b FROM %s WHERE k = 0" % t)
    assert vals(rows, "a", "b") == [(a, b) for a in (1, 2, 3) for b in ("z", "y", "x")]
    rows = session.execute("SELECT a, b FROM %s WHERE k = 0 AND a = 2 AND b >= 'y'" % t)
    assert vals(rows, "a", "b") == [(2, "z"), (2, "y")]
    rows = session.execute("SELECT a, b FROM %s WHERE k = 0 AND a IN (1, 3) AND b = 'x'" % t)
    assert vals(rows, "a", "b") == [(1, "x"), (3, "x")]
    rows = session.execute("SELECT a, b FROM %s WHERE k = 0 AND a > 1" % t)
    assert len(list(rows)) == 6
    rows = session.execute("SELECT a, b FROM %s WHERE k = 0 ORDER BY a DESC, b ASC LIMIT 4" % t)
    assert vals(rows, "a", "b") == [(3, "x"), (3, "y"), (3, "z"), (2, "x")]
    # A clustering column restricted while the one before it is not.
    with pytest.raises(InvalidRequest) as e:
        session.execute("SELECT * FROM %s WHERE k = 0 AND b = 'x'" % t)
    assert 'PRIMARY KEY column "b" cannot be restricted as preceding column "a" is not restricted' in str(e.value)


def test_in_on_partition_key(session, kc):
    rows = list(session.execute("SELECT k, c FROM %s WHERE k IN (3, 1) AND c < 2" % kc))
    assert sorted(vals(rows, "k", "c")) == [(1, 0), (1, 1), (3, 0), (3, 1)]
    # Within each partition, clustering order holds.
    for k in (1, 3):
        assert [r.c for r in rows if r.k == k] == [0, 1]
    rows = list(session.execute("SELECT k FROM %s WHERE k IN (1, 42)" % kc))
    assert {r.k for r in rows} == {1} and len(rows) == 10
    rows = list(session.execute("SELECT k, c FROM %s WHERE k IN (1, 2) AND c IN (5, 0)" % kc))
    assert sorted(vals(rows, "k", "c")) == [(1, 0), (1, 5), (2, 0), (2, 5)]


def test_limit(session, kc):
    assert len(list(session.execute("SELECT * FROM %s WHERE k = 1 LIMIT 4" % kc))) == 4
    assert len(list(session.execute("SELECT * FROM %s LIMIT 25" % kc))) == 25
    assert len(list(session.execute("SELECT * FROM %s WHERE k = 1 LIMIT 100" % kc))) == 10
    with pytest.raises(InvalidRequest) as e:
        session.execute("SELECT * FROM %s WHERE k = 1 LIMIT 0" % kc)
    assert "LIMIT must be strictly positive" in str(e.value)


def test_per_partition_limit(session, kc):
    rows = list(session.execute("SELECT k, c FROM %s PER PARTITION LIMIT 2" % kc))
    assert len(rows) == 6
    for k in (1, 2, 3):
        assert [r.c for r in rows if r.k == k] == [0, 1]
    rows = list(session.execute("SELECT k, c FROM %s WHERE k IN (1, 2) PER PARTITION LIMIT 3 LIMIT 4" % kc))
    assert len(rows) == 4
    per = {k: [r.c for r in rows if r.k == k] for k in (1, 2)}
    assert sorted(len(v) for v in per.values()) == [1, 3]
    for cs in per.values():
        assert cs == [0, 1, 2][:len(cs)]
    rows = list(session.execute("SELECT c FROM %s WHERE k = 2 PER PARTITION LIMIT 1" % kc))
    assert [r.c for r in rows] == [0]


def test_count(session, kc, ks):
    assert session.execute("SELECT COUNT(*) FROM %s" % kc).one()[0] == 30
    assert session.execute("SELECT COUNT(*) FROM %s WHERE k = 2" % kc).one()[0] == 10
    assert session.execute("SELECT COUNT(*) FROM %s WHERE k = 2 AND c >= 7" % kc).one()[0] == 3
    assert session.execute("SELECT COUNT(*) FROM %s WHERE k = 77" % kc).one()[0] == 0
    rs = session.execute("SELECT COUNT(*) FROM %s WHERE k IN (1, 3)" % kc)
    assert rs.column_names == ["count"]
    assert rs.column_types[0].typename == "bigint"
    assert rs.one().count == 20
    session.execute("CREATE TABLE %s.empty (k int PRIMARY KEY)" % ks)
    assert list(session.execute("SELECT COUNT(*) FROM %s.empty" % ks)) == [(0,)]


def test_aliases(session, kc):
    rs = session.execute("SELECT c AS cc, v AS value, WRITETIME(v) AS wt, TTL(v) AS t "
                         "FROM %s WHERE k = 1 AND c = 0" % kc)
    assert rs.column_names == ["cc", "value", "wt", "t"]
    r = rs.one()
    assert (r.cc, r.value, r.t) == (0, "v1.0", None)
    assert isinstance(r.wt, int) and r.wt > 0
    rs = session.execute("SELECT COUNT(*) AS n FROM %s WHERE k = 1" % kc)
    assert rs.column_names == ["n"] and rs.one().n == 10
    rs = session.execute("SELECT WRITETIME(v), TTL(v) FROM %s WHERE k = 1 AND c = 0" % kc)
    assert rs.column_names == ["writetime(v)", "ttl(v)"]


def test_row_and_partition_deletes(session, kc):
    session.execute("DELETE FROM %s WHERE k = 1 AND c = 5" % kc)
    assert [r.c for r in session.execute("SELECT c FROM %s WHERE k = 1" % kc)] == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    session.execute("DELETE FROM %s WHERE k = 2" % kc)
    assert list(session.execute("SELECT * FROM %s WHERE k = 2" % kc)) == []
    assert session.execute("SELECT COUNT(*) FROM %s" % kc).one()[0] == 19
    session.execute("DELETE FROM %s WHERE k IN (1, 3)" % kc)
    assert session.execute("SELECT COUNT(*) FROM %s" % kc).one()[0] == 0
    # A deleted partition can be written again.
    session.execute("INSERT INTO %s (k, c, v) VALUES (2, 1, 'again')" % kc)
    assert vals(session.execute("SELECT c, v FROM %s WHERE k = 2" % kc), "c", "v") == [(1, "again")]


def test_range_deletes(session, kc):
    session.execute("DELETE FROM %s WHERE k = 1 AND c >= 3 AND c < 6" % kc)
    assert [r.c for r in session.execute("SELECT c FROM %s WHERE k = 1" % kc)] == [0, 1, 2, 6, 7, 8, 9]
    session.execute("DELETE FROM %s WHERE k = 1 AND c > 7" % kc)
    assert [r.c for r in session.execute("SELECT c FROM %s WHERE k = 1" % kc)] == [0, 1, 2, 6, 7]
    session.execute("DELETE FROM %s WHERE k = 1 AND c <= 1" % kc)
    assert [r.c for r in session.execute("SELECT c FROM %s WHERE k = 1" % kc)] == [2, 6, 7]
    # Other partitions are untouched.
    assert session.execute("SELECT COUNT(*) FROM %s WHERE k = 2" % kc).one()[0] == 10
    # Rows written after the range tombstone are visible again.
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 4, 'new')" % kc)
    assert [r.c for r in session.execute("SELECT c FROM %s WHERE k = 1" % kc)] == [2, 4, 6, 7]
    # A range delete naming columns is refused.
    with pytest.raises(InvalidRequest) as e:
        session.execute("DELETE v FROM %s WHERE k = 1 AND c > 3" % kc)
    assert "Range deletions are not supported for specific columns" in str(e.value)


def test_range_delete_on_multiple_clustering_columns(session, ks):
    session.execute("CREATE TABLE %s.rd (k int, a int, b int, PRIMARY KEY (k, a, b))" % ks)
    t = ks + ".rd"
    for a in range(3):
        for b in range(3):
            session.execute("INSERT INTO %s (k, a, b) VALUES (0, %d, %d)" % (t, a, b))
    session.execute("DELETE FROM %s WHERE k = 0 AND a = 1" % t)           # prefix delete
    session.execute("DELETE FROM %s WHERE k = 0 AND a = 2 AND b > 0" % t)  # slice under a prefix
    rows = session.execute("SELECT a, b FROM %s WHERE k = 0" % t)
    assert vals(rows, "a", "b") == [(0, 0), (0, 1), (0, 2), (2, 0)]


def test_cell_delete_and_row_marker(session, kc):
    # INSERT writes a row marker: deleting the only regular cell keeps the row.
    session.execute("DELETE v FROM %s WHERE k = 3 AND c = 0" % kc)
    assert vals(session.execute("SELECT c, v FROM %s WHERE k = 3 AND c = 0" % kc), "c", "v") == [(0, None)]
    # UPDATE writes no row marker: once its cell is gone the row is gone.
    session.execute("UPDATE %s SET v = 'u' WHERE k = 4 AND c = 0" % kc)
    assert session.execute("SELECT v FROM %s WHERE k = 4 AND c = 0" % kc).one().v == "u"
    session.execute("DELETE v FROM %s WHERE k = 4 AND c = 0" % kc)
    assert session.execute("SELECT * FROM %s WHERE k = 4 AND c = 0" % kc).one() is None
    assert list(session.execute("SELECT * FROM %s WHERE k = 4" % kc)) == []


def test_static_free_table_with_only_primary_key(session, ks):
    session.execute("CREATE TABLE %s.keys (k int, c int, PRIMARY KEY (k, c))" % ks)
    session.execute("INSERT INTO %s.keys (k, c) VALUES (1, 1)" % ks)
    session.execute("INSERT INTO %s.keys (k, c) VALUES (1, 2)" % ks)
    assert vals(session.execute("SELECT * FROM %s.keys" % ks), "k", "c") == [(1, 1), (1, 2)]


def test_full_scan_without_partition_key(session, kc):
    rows = list(session.execute("SELECT k, c FROM %s" % kc))
    assert len(rows) == 30
    assert sorted(vals(rows, "k", "c")) == [(k, c) for k in (1, 2, 3) for c in range(10)]
    # Rows of one partition are contiguous and in clustering order.
    seen = []
    for r in rows:
        if not seen or seen[-1] != r.k:
            assert r.k not in seen
            seen.append(r.k)
    for k in (1, 2, 3):
        assert [r.c for r in rows if r.k == k] == list(range(10))


def test_use_statement(session, ks):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int)" % ks)
    session.execute("USE %s" % ks)
    assert session.keyspace == ks            # the Set_keyspace result
    session.execute("INSERT INTO t (k, v) VALUES (1, 2)")
    assert session.execute("SELECT v FROM t WHERE k = 1").one().v == 2
    assert session.execute("SELECT v FROM %s.t WHERE k = 1" % ks).one().v == 2
    with pytest.raises(InvalidRequest) as e:
        session.execute("USE no_such_keyspace")
    assert "no_such_keyspace" in str(e.value)


def test_no_keyspace_specified(session):
    with pytest.raises(InvalidRequest) as e:
        session.execute("SELECT * FROM t")
    assert "No keyspace has been specified" in str(e.value)
