"""Bind markers wherever Cassandra takes them, the names PREPARE gives them,
and what an UNSET value means at each place: no limit for LIMIT / PER
PARTITION LIMIT, the table default for TTL, now for TIMESTAMP, 'leave the
column alone' in SET, an error in WHERE."""

import time

import pytest

from cassandra import InvalidRequest
from cassandra.query import UNSET_VALUE


def names(ps):
    return [c.name for c in ps.column_metadata]


def types(ps):
    return [c.type.typename for c in ps.column_metadata]


def rows(session, q, params=None):
    return [tuple(r) for r in session.execute(q, params)]


@pytest.fixture
def t(session, ks):
    session.execute("CREATE TABLE %s.bm (k int, c int, v int, b blob, m map<text, int>, l list<int>, s set<text>, "
                    "PRIMARY KEY (k, c)) WITH default_time_to_live = 5000" % ks)
    ins = session.prepare("INSERT INTO %s.bm (k, c, v) VALUES (?, ?, ?)" % ks)
    for k in range(3):
        for c in range(4):
            session.execute(ins, (k, c, k * 10 + c))
    return ks + ".bm"


def test_limits(session, t):
    ps = session.prepare("SELECT c FROM %s WHERE k = ? LIMIT ?" % t)
    assert names(ps) == ["k", "[limit]"] and types(ps) == ["int", "int"]
    assert [r.c for r in session.execute(ps, (1, 2))] == [0, 1]
    assert [r.c for r in session.execute(ps, (1, UNSET_VALUE))] == [0, 1, 2, 3]  # unset: no limit
    with pytest.raises(InvalidRequest, match="LIMIT must be strictly positive"):
        session.execute(ps, (1, 0))
    ps = session.prepare("SELECT k, c FROM %s PER PARTITION LIMIT ? LIMIT ?" % t)
    assert names(ps) == ["[per_partition_limit]", "[limit]"]
    got = list(session.execute(ps, (1, 100)))
    assert sorted(r.k for r in got) == [0, 1, 2] and all(r.c == 0 for r in got)
    assert len(list(session.execute(ps, (UNSET_VALUE, UNSET_VALUE)))) == 12
    # Cassandra words both limits' errors alike
    for args, msg in (((0, 1), "LIMIT must be strictly positive"), ((None, 1), "Invalid null value of limit"),
                      ((1, None), "Invalid null value of limit")):
        with pytest.raises(InvalidRequest) as e:
            session.execute(ps, args)
        assert 'message="%s"' % msg in str(e.value)


def test_ttl_timestamp(session, t):
    ps = session.prepare("INSERT INTO %s (k, c, v) VALUES (?, ?, ?) USING TTL ? AND TIMESTAMP ?" % t)
    assert names(ps) == ["k", "c", "v", "[ttl]", "[timestamp]"]
    assert types(ps) == ["int", "int", "int", "int", "bigint"]
    session.execute(ps, (9, 0, 1, 100, 123456))
    assert rows(session, "SELECT TTL(v), WRITETIME(v) FROM %s WHERE k = 9 AND c = 0" % t)[0][1] == 123456
    ttl = rows(session, "SELECT TTL(v) FROM %s WHERE k = 9 AND c = 0" % t)[0][0]
    assert 90 <= ttl <= 100
    before = int(time.time() * 1e6)
    session.execute(ps, (9, 1, 1, UNSET_VALUE, UNSET_VALUE))   # table default TTL, timestamp now
    ttl, wt = rows(session, "SELECT TTL(v), WRITETIME(v) FROM %s WHERE k = 9 AND c = 1" % t)[0]
    assert 4990 <= ttl <= 5000 and wt >= before - 5_000_000
    ps = session.prepare("UPDATE %s USING TTL ? SET v = ? WHERE k = ? AND c = ?" % t)
    assert names(ps) == ["[ttl]", "v", "k", "c"]
    ps = session.prepare("DELETE FROM %s USING TIMESTAMP ? WHERE k = ? AND c = ?" % t)
    assert names(ps) == ["[timestamp]", "k", "c"]


def test_in_markers(session, t):
    ps = session.prepare("SELECT k, c FROM %s WHERE k IN ? AND c IN ?" % t)
    assert names(ps) == ["in(k)", "in(c)"] and types(ps) == ["list", "list"]
    assert sorted(tuple(r) for r in session.execute(ps, ([2, 0], [3, 1]))) == [(0, 1), (0, 3), (2, 1), (2, 3)]
    assert list(session.execute(ps, ([], [1]))) == []
    ps = session.prepare("SELECT k, c FROM %s WHERE k = ? AND c IN (?, ?)" % t)
    assert names(ps) == ["k", "c", "c"]
    assert [tuple(r) for r in session.execute(ps, (1, 3, 0))] == [(1, 0), (1, 3)]


def test_unset(session, t):
    ps = session.prepare("UPDATE %s SET v = ?, b = ? WHERE k = ? AND c = ?" % t)
    session.execute(ps, (UNSET_VALUE, b"x", 0, 0))           # v left alone
    assert rows(session, "SELECT v, b FROM %s WHERE k = 0 AND c = 0" % t) == [(0, b"x")]
    ps = session.prepare("INSERT INTO %s (k, c, v) VALUES (?, ?, ?)" % t)
    session.execute(ps, (0, 1, UNSET_VALUE))
    assert rows(session, "SELECT v FROM %s WHERE k = 0 AND c = 1" % t) == [(1,)]
    ps = session.prepare("SELECT * FROM %s WHERE k = ? AND c = ?" % t)
    with pytest.raises(InvalidRequest, match="Invalid unset value for column c"):
        session.execute(ps, (0, UNSET_VALUE))
    ps = session.prepare("SELECT * FROM %s WHERE k = ? AND c > ?" % t)
    with pytest.raises(InvalidRequest, match="Invalid unset value for column c"):
        session.execute(ps, (0, UNSET_VALUE))


def test_collection_markers(session, t):
    ps = session.prepare("UPDATE %s SET m[?] = ?, l = l + [?], s = s + {?} WHERE k = ? AND c = ?" % t)
    assert names(ps) == ["key(m)", "value(m)", "value(l)", "value(s)", "k", "c"]
    assert types(ps) == ["varchar", "int", "int", "varchar", "int", "int"]
    session.execute(ps, ("a", 1, 7, "z", 2, 2))
    assert rows(session, "SELECT m, l, s FROM %s WHERE k = 2 AND c = 2" % t) == [({"a": 1}, [7], {"z"})]
    ps = session.prepare("UPDATE %s SET m = m - ? WHERE k = ? AND c = ?" % t)
    assert types(ps)[0] == "set"
    session.execute(ps, ({"a"}, 2, 2))
    ps = session.prepare("DELETE m[?] FROM %s WHERE k = ? AND c = ?" % t)
    assert names(ps) == ["key(m)", "k", "c"]
    ps = session.prepare("UPDATE %s SET m = {?: ?} WHERE k = ? AND c = ?" % t)
    assert names(ps)[:2] == ["key(m)", "value(m)"]


def test_function_arguments(session, t):
    ps = session.prepare("UPDATE %s SET b = textAsBlob(?) WHERE k = ? AND c = ?" % t)
    assert names(ps)[0] == "arg0(system.textasblob)" and types(ps)[0] == "varchar"
    session.execute(ps, ("hello", 1, 1))
    assert rows(session, "SELECT b, blobAsText(b) FROM %s WHERE k = 1 AND c = 1" % t) == [(b"hello", "hello")]
    session.execute("UPDATE %s SET v = blobAsInt(0x0000002a) WHERE k = 1 AND c = 1" % t)
    assert rows(session, "SELECT v, intAsBlob(v) FROM %s WHERE k = 1 AND c = 1" % t) == [(42, b"\x00\x00\x00\x2a")]
    ps = session.prepare("SELECT k FROM %s WHERE token(k) >= token(?) AND token(k) <= token(?)" % t)
    assert names(ps) == ["k", "k"]
    assert sorted({r.k for r in session.execute(ps, (1, 1))}) == [1]
    with pytest.raises(InvalidRequest, match="Type error"):
        session.execute("UPDATE %s SET v = textAsBlob('a') WHERE k = 1 AND c = 1" % t)


def test_empty_in_writes_nothing(session, t):
    session.execute("UPDATE %s SET v = 99 WHERE k IN () AND c = 0" % t)
    session.execute("UPDATE %s SET v = 99 WHERE k = 0 AND c IN ()" % t)
    session.execute("DELETE FROM %s WHERE k = 0 AND c IN ()" % t)
    session.execute("DELETE FROM %s WHERE k IN ()" % t)
    ps = session.prepare("DELETE FROM %s WHERE k = ? AND c IN ?" % t)
    session.execute(ps, (1, []))
    assert len(rows(session, "SELECT * FROM %s" % t)) == 12
    assert 99 not in [r[0] for r in rows(session, "SELECT v FROM %s" % t)]
    assert rows(session, "SELECT * FROM %s WHERE k = 0 AND c IN ()" % t) == []


def test_type_hints_in_selection(session, t):
    res = session.execute("SELECT c, (int)42, (text)'x', (bigint) 7 FROM %s WHERE k = 1 AND c = 1" % t)
    assert res.column_names == ["c", "(int)42", "(text)'x'", "(bigint)7"]
    assert [tuple(r) for r in res] == [(1, 42, "x", 7)]
    ps = session.prepare("SELECT (int)? FROM %s WHERE k = ? AND c = ?" % t)
    assert names(ps) == ["[selection]", "k", "c"]
    assert [tuple(r) for r in session.execute(ps, (5, 1, 1))] == [(5,)]
    with pytest.raises(InvalidRequest, match="Cannot infer type for term 42 in selection clause"):
        session.execute("SELECT 42 FROM %s" % t)


def test_unset_in_where_of_writes_and_in_markers(session, t):
    # (an unset partition key never leaves the Python driver: it refuses to
    # build the routing key, so these use the clustering column)
    for q, args in (("UPDATE %s SET v = ? WHERE k = ? AND c = ?", (5, 0, UNSET_VALUE)),
                    ("DELETE FROM %s WHERE k = ? AND c = ?", (0, UNSET_VALUE)),
                    ("DELETE v FROM %s WHERE k = ? AND c = ?", (0, UNSET_VALUE)),
                    ("SELECT * FROM %s WHERE k = 0 AND c IN ?", (UNSET_VALUE,)),
                    ("SELECT * FROM %s WHERE k = 0 AND (c) = (?)", (UNSET_VALUE,))):
        with pytest.raises(InvalidRequest, match="Invalid unset value for column c"):
            session.execute(session.prepare(q % t), args)
    with pytest.raises(InvalidRequest, match="Invalid unset value for column k"):
        session.execute(session.prepare("SELECT * FROM %s WHERE k IN ?" % t), (UNSET_VALUE,))
    with pytest.raises(InvalidRequest, match="Invalid unset value for column v"):
        session.execute(session.prepare("SELECT * FROM %s WHERE k = 0 AND v = ? ALLOW FILTERING" % t), (UNSET_VALUE,))
    assert len(rows(session, "SELECT * FROM %s WHERE k = 0" % t)) == 4   # nothing written or deleted


def test_cast_of_a_plain_literal(session, t):
    # Cassandra types a CAST's argument on its own, and a bare literal has no
    # type of its own, so it refuses it as it refuses the bare literal
    for lit in ("3", "3.5", "'a'"):
        with pytest.raises(InvalidRequest) as e:
            session.execute("SELECT CAST(%s AS text) FROM %s WHERE k = 0" % (lit, t))
        assert ("Cannot infer type for term %s in selection clause (try using a cast to force a type)" % lit
                in str(e.value))
    # a typed argument is cast
    assert rows(session, "SELECT CAST(c AS text), CAST((int)3 AS text) FROM %s WHERE k = 0 AND c = 1" % t) == [("1", "3")]
