"""Static columns: writes of the partition key and static columns only (no
clustering key), and how a partition holding only its static row reads back:
one row with null clustering and regular columns, through SELECT, LIMIT,
PER PARTITION LIMIT, ORDER BY, paging, COUNT, and after DELETE."""

import pytest

from cassandra import InvalidRequest
from cassandra.query import SimpleStatement


def rows(session, q, params=None, fetch_size=None):
    if fetch_size:
        return [tuple(r) for r in session.execute(SimpleStatement(q, fetch_size=fetch_size), params)]
    return [tuple(r) for r in session.execute(q, params)]


def invalid(session, q, msg, params=None):
    with pytest.raises(InvalidRequest) as e:
        session.execute(q, params)
    assert 'message="%s"' % msg in str(e.value), str(e.value)


@pytest.fixture
def t(session, ks):
    session.execute("CREATE TABLE %s.st (k int, c int, v int, s int STATIC, PRIMARY KEY (k, c))" % ks)
    return ks + ".st"


def test_insert_and_update_static_only(session, t):
    session.execute("INSERT INTO %s (k, s) VALUES (1, 10)" % t)
    session.execute(session.prepare("INSERT INTO %s (k, s) VALUES (?, ?)" % t), (2, 20))
    session.execute("UPDATE %s SET s = 30 WHERE k = 3" % t)
    for k, s in ((1, 10), (2, 20), (3, 30)):
        assert rows(session, "SELECT k, c, v, s FROM %s WHERE k = %d" % (t, k)) == [(k, None, None, s)]
        assert rows(session, "SELECT s FROM %s WHERE k = %d" % (t, k)) == [(s,)]
    # a clustering restriction excludes the static-only row
    assert rows(session, "SELECT * FROM %s WHERE k = 1 AND c = 0" % t) == []
    assert rows(session, "SELECT * FROM %s WHERE k = 1 AND c > 0" % t) == []
    # the key alone is not enough, and a regular column needs the clustering key
    invalid(session, "INSERT INTO %s (k) VALUES (4)" % t, "Some clustering keys are missing: c")
    invalid(session, "INSERT INTO %s (k, s, v) VALUES (4, 1, 1)" % t, "Some clustering keys are missing: c")
    invalid(session, "UPDATE %s SET s = 1 WHERE k = 4 AND c = 1" % t,
            "Invalid restrictions on clustering columns since the UPDATE statement modifies only static columns")


def test_static_then_rows(session, t):
    session.execute("INSERT INTO %s (k, s) VALUES (1, 10)" % t)
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 100)" % t)
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 2, 200)" % t)
    # once the partition has rows, the static value shows on each of them
    assert rows(session, "SELECT k, c, v, s FROM %s WHERE k = 1" % t) == [(1, 1, 100, 10), (1, 2, 200, 10)]
    assert rows(session, "SELECT k, c, v, s FROM %s WHERE k = 1 ORDER BY c DESC" % t) == \
        [(1, 2, 200, 10), (1, 1, 100, 10)]
    session.execute("DELETE FROM %s WHERE k = 1 AND c = 1" % t)
    session.execute("DELETE FROM %s WHERE k = 1 AND c = 2" % t)
    assert rows(session, "SELECT k, c, v, s FROM %s WHERE k = 1" % t) == [(1, None, None, 10)]
    # deleting the static column leaves nothing
    session.execute("DELETE s FROM %s WHERE k = 1" % t)
    assert rows(session, "SELECT * FROM %s WHERE k = 1" % t) == []


def test_limits_order_paging(session, t):
    ins = session.prepare("INSERT INTO %s (k, c, v) VALUES (?, ?, ?)" % t)
    for k in range(6):
        if k % 2:
            session.execute("INSERT INTO %s (k, s) VALUES (%d, %d)" % (t, k, k * 10))
        else:
            for c in range(3):
                session.execute(ins, (k, c, c))
    full = rows(session, "SELECT k, c, v, s FROM %s" % t)
    assert len(full) == 3 * 3 + 3
    statics = [r for r in full if r[1] is None]
    assert sorted(statics) == [(1, None, None, 10), (3, None, None, 30), (5, None, None, 50)]
    # paging with every page size gives the same rows in the same order
    for fs in (1, 2, 3, 5):
        assert rows(session, "SELECT k, c, v, s FROM %s" % t, fetch_size=fs) == full
    # LIMIT counts the static-only row as a row
    assert rows(session, "SELECT k, c, v, s FROM %s LIMIT 4" % t) == full[:4]
    assert rows(session, "SELECT k, c, v, s FROM %s WHERE k IN (1, 3) LIMIT 1" % t)[0][1] is None
    assert rows(session, "SELECT COUNT(*) FROM %s" % t) == [(12,)]
    assert rows(session, "SELECT COUNT(*) FROM %s WHERE k = 3" % t) == [(1,)]
    # PER PARTITION LIMIT 1: one row per partition, static-only ones included
    ppl = rows(session, "SELECT k, c FROM %s PER PARTITION LIMIT 1" % t)
    assert sorted(ppl, key=lambda r: r[0]) == [(0, 0), (1, None), (2, 0), (3, None), (4, 0), (5, None)]
    # reversed order on a static-only partition
    assert rows(session, "SELECT k, c, s FROM %s WHERE k = 3 ORDER BY c DESC" % t) == [(3, None, 30)]
    assert rows(session, "SELECT DISTINCT k, s FROM %s WHERE k IN (1, 2)" % t) == [(1, 10), (2, None)]


def test_static_only_with_ttl_and_batch(session, t):
    session.execute("BEGIN BATCH INSERT INTO %s (k, s) VALUES (7, 70); INSERT INTO %s (k, c, v) VALUES (8, 1, 1); "
                    "APPLY BATCH" % (t, t))
    assert rows(session, "SELECT k, c, s FROM %s WHERE k = 7" % t) == [(7, None, 70)]
    session.execute("INSERT INTO %s (k, s) VALUES (9, 90) USING TTL 1000" % t)
    ttl = rows(session, "SELECT TTL(s) FROM %s WHERE k = 9" % t)[0][0]
    assert 990 <= ttl <= 1000


def test_per_partition_limit_with_aggregate_refused(session, t):
    invalid(session, "SELECT COUNT(*) FROM %s PER PARTITION LIMIT 3" % t,
            "PER PARTITION LIMIT is not allowed with aggregate queries.")
