"""Selecting collection elements and slices: m['k'], m[?], s['x'],
m['a'..'f'], m[..'f'], m['a'..], on non-frozen and frozen maps and sets,
with aliases and bind markers; WRITETIME/TTL of one element; Cassandra's
refusals for lists and non-collections."""

import pytest

from cassandra.query import UNSET_VALUE
from conftest import refused


def rows(session, q, params=None):
    return [tuple(r) for r in session.execute(q, params)]


def prepared(session, q, params):
    return [tuple(r) for r in session.execute(session.prepare(q), params)]




@pytest.fixture
def t(session, ks):
    session.execute("CREATE TABLE %s.ce (k int, c int, m map<text, int>, fm frozen<map<text, int>>, "
                    "s set<text>, fs frozen<set<text>>, l list<int>, v int, im map<int, text>, "
                    "sm map<text, int> STATIC, PRIMARY KEY (k, c))" % ks)
    session.execute("INSERT INTO %s.ce (k, c, m, fm, s, fs, l, v, im) VALUES (0, 0, {'a': 1, 'b': 2, 'c': 3}, "
                    "{'a': 10, 'b': 20}, {'x', 'y', 'z'}, {'p', 'q'}, [1, 2], 5, {1: 'one', 22: 'two', 333: 'three'})"
                    % ks)
    session.execute("INSERT INTO %s.ce (k, c, m) VALUES (0, 1, {'z': 26})" % ks)
    session.execute("UPDATE %s.ce SET sm = {'s': 1} WHERE k = 0" % ks)
    return ks + ".ce"


def test_elements(session, t):
    assert rows(session, "SELECT c, m['b'], fm['a'], s['y'], fs['q'], sm['s'] FROM %s WHERE k = 0" % t) == \
        [(0, 2, 10, "y", "q", 1), (1, None, None, None, None, 1)]
    # missing element, missing collection -> null
    assert rows(session, "SELECT m['nope'], s['nope'], fm['nope'] FROM %s WHERE k = 0 AND c = 0" % t) == \
        [(None, None, None)]
    assert rows(session, "SELECT im[22], im[4] FROM %s WHERE k = 0 AND c = 0" % t) == [("two", None)]
    res = session.execute("SELECT m['b'] AS mb, m['a'], s['x'] FROM %s WHERE k = 0 AND c = 0" % t)
    assert res.column_names == ["mb", "m['a']", "s['x']"]
    assert [tuple(r) for r in res] == [(2, 1, "x")]


def test_slices(session, t):
    assert rows(session, "SELECT m['a'..'b'], m[..'b'], m['b'..], m['d'..'f'] FROM %s WHERE k = 0 AND c = 0" % t) == \
        [({"a": 1, "b": 2}, {"a": 1, "b": 2}, {"b": 2, "c": 3}, None)]
    # an empty slice of a frozen value is an empty collection, not null
    r = rows(session, "SELECT fm['c'..], fs['a'..'b'], fs['p'..'p'], s['y'..] FROM %s WHERE k = 0 AND c = 0" % t)[0]
    assert (dict(r[0]) if r[0] is not None else None, set(r[1] or ()), set(r[2]), set(r[3])) == \
        ({}, set(), {"p"}, {"y", "z"})
    assert r[0] is not None
    assert rows(session, "SELECT im[20..400] FROM %s WHERE k = 0 AND c = 0" % t) == [({22: "two", 333: "three"},)]
    assert rows(session, "SELECT im[1..22] FROM %s WHERE k = 0 AND c = 0" % t) == [({1: "one", 22: "two"},)]
    res = session.execute("SELECT s[''..'y'] FROM %s WHERE k = 0 AND c = 0" % t)
    assert res.column_names == ["s[''..'y']"]


def test_markers(session, t):
    q = "SELECT m[?], s[?], m[?..?], im[?..] FROM %s WHERE k = 0 AND c = 0" % t
    ps = session.prepare(q)
    assert [c.name for c in ps.column_metadata] == ["key(m)", "value(s)", "key(m)", "key(m)", "key(im)"]
    assert [c.type.typename for c in ps.column_metadata] == ["varchar", "varchar", "varchar", "varchar", "int"]
    assert prepared(session, q, ("c", "z", "b", "c", 22)) == [(3, "z", {"b": 2, "c": 3}, {22: "two", 333: "three"})]
    # an unset slice bound leaves that side open
    assert prepared(session, q, ("a", "x", UNSET_VALUE, "a", UNSET_VALUE))[0][2] == {"a": 1}


def test_writetime_ttl_of_element(session, t):
    # (timestamps after the INSERT's, which replaced the whole collections)
    session.execute("UPDATE %s USING TTL 1000 AND TIMESTAMP 4000000000000000 SET m['t'] = 9 WHERE k = 0 AND c = 0" % t)
    session.execute("UPDATE %s USING TIMESTAMP 4000000000000099 SET s = s + {'w'} WHERE k = 0 AND c = 0" % t)
    r = rows(session, "SELECT WRITETIME(m['t']), TTL(m['t']), TTL(m['a']), WRITETIME(s['w']), WRITETIME(m['nope']) "
                      "FROM %s WHERE k = 0 AND c = 0" % t)[0]
    assert r[0] == 4000000000000000 and 990 <= r[1] <= 1000 and r[2] is None and r[3] == 4000000000000099
    assert r[4] is None
    res = session.execute("SELECT writetime(m['t']) FROM %s WHERE k = 0 AND c = 0" % t)
    assert res.column_names == ["writetime(m['t'])"]


def test_refusals(session, t):
    refused(session, "SELECT l[0] FROM %s" % t, "Element selection is only allowed on sets and maps, but l is a list")
    refused(session, "SELECT l[0..1] FROM %s" % t, "Slice selection is only allowed on sets and maps, but l is a list")
    refused(session, "SELECT v[0] FROM %s" % t, "Invalid element selection: v is of type int is not a collection")
    refused(session, "SELECT v[0..1] FROM %s" % t, "Invalid slice selection: v of type int is not a collection")
    refused(session, "SELECT m[1] FROM %s" % t, 'Invalid INTEGER constant (1) for "key(m)" of type text')
    refused(session, "SELECT WRITETIME(l[0]) FROM %s" % t,
            "Element selection is only allowed on sets and maps, but l is a list")


T1, T2 = 4000000000000001, 4000000000000002   # after the fixture's writes


def times(session, t, sel, where="k = 0 AND c = 0"):
    return tuple(session.execute("SELECT WRITETIME(%s), MAXWRITETIME(%s), TTL(%s) FROM %s WHERE %s"
                                 % (sel, sel, sel, t, where)).one())


def test_writetime_ttl_of_collections_and_slices(session, ks):
    """5.0: WRITETIME/TTL of a non-frozen collection is a list (an entry per
    element, null TTL entries for elements without one), MAXWRITETIME the
    largest; subscripts and slices select elements; a frozen value has one
    timestamp, reported when the subscript selects something in it."""
    # the driver's Cython decoder refuses null list elements; the pure-Python one reads them
    import cassandra.protocol
    original = session.client_protocol_handler
    session.client_protocol_handler = cassandra.protocol._ProtocolHandler
    try:
        check_collection_times(session, ks)
    finally:
        session.client_protocol_handler = original


def check_collection_times(session, ks):
    t = ks + ".wt"
    session.execute("CREATE TABLE %s (k int, c int, s set<int>, m map<int, int>, fs frozen<set<int>>, "
                    "l list<int>, PRIMARY KEY (k, c))" % t)
    session.execute("INSERT INTO %s (k, c) VALUES (0, 0)" % t)
    assert times(session, t, "s") == (None, None, None)
    assert times(session, t, "s[1]") == (None, None, None)
    session.execute("INSERT INTO %s (k, c, s, m, fs, l) VALUES (0, 0, {1}, {1: 10}, {1}, [1]) USING TIMESTAMP %d"
                    % (t, T1))
    session.execute("UPDATE %s USING TIMESTAMP %d AND TTL 20000 SET s = s + {2}, m = m + {2: 20}, l = l + [2] "
                    "WHERE k = 0 AND c = 0" % (t, T2))
    wt, mx, ttl = times(session, t, "s")
    assert wt == [T1, T2] and mx == T2 and ttl[0] is None and 19000 < ttl[1] <= 20000
    assert times(session, t, "l")[:2] == ([T1, T2], T2)
    assert times(session, t, "m[1]") == (T1, T1, None)
    assert times(session, t, "m[2]")[:2] == (T2, T2)
    assert times(session, t, "m[3]") == (None, None, None)
    assert times(session, t, "s[..1]") == ([T1], T1, [None])
    assert times(session, t, "s[2..]")[:2] == ([T2], T2)
    assert times(session, t, "s[3..4]") == (None, None, None)
    assert times(session, t, "m[0..5]")[:2] == ([T1, T2], T2)
    # frozen: one cell
    assert times(session, t, "fs") == (T1, T1, None)
    assert times(session, t, "fs[1]") == (T1, T1, None)
    assert times(session, t, "fs[2]") == (None, None, None)
    assert times(session, t, "fs[0..1]") == (T1, T1, None)
    assert times(session, t, "fs[2..3]") == (None, None, None)
    res = session.execute("SELECT WRITETIME(s[..1]), TTL(m[2]) FROM %s" % t)
    assert res.column_names == ["writetime(s[..1])", "ttl(m[2])"]
    refused(session, "SELECT WRITETIME(l[0]) FROM %s" % t,
            "Element selection is only allowed on sets and maps, but l is a list")
    refused(session, "SELECT TTL(l[0..1]) FROM %s" % t,
            "Slice selection is only allowed on sets and maps, but l is a list")
    refused(session, "SELECT WRITETIME(k) FROM %s" % t, "Cannot use selection function writeTime on PRIMARY KEY part k")
