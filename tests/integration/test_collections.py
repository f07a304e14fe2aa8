"""Non-frozen collections through the Python driver: whole-value writes,
element-wise updates (set/map add and remove, list append/prepend, map
entry put/delete), nulls, TTL on elements, and frozen collections in keys."""

import pytest

from cassandra import InvalidRequest


@pytest.fixture
def t(session, ks):
    session.execute("CREATE TABLE %s.c (k int PRIMARY KEY, s set<text>, l list<int>, m map<text, int>)" % ks)
    return "%s.c" % ks


def row(session, t, k=1):
    return session.execute("SELECT s, l, m FROM %s WHERE k = %d" % (t, k)).one()


def test_whole_values_round_trip(session, t):
    session.execute("INSERT INTO %s (k, s, l, m) VALUES (1, {'b', 'a', 'b'}, [3, 1, 3], {'x': 1, 'a': 2})" % t)
    r = row(session, t)
    assert r.s == {"a", "b"} and r.l == [3, 1, 3] and r.m == {"a": 2, "x": 1}
    ps = session.prepare("INSERT INTO %s (k, s, l, m) VALUES (?, ?, ?, ?)" % t)
    session.execute(ps, (2, {"z"}, [9], {"q": 7}))
    r = row(session, t, 2)
    assert r.s == {"z"} and r.l == [9] and r.m == {"q": 7}
    # Assigning a whole collection replaces the old one.
    session.execute("UPDATE %s SET m = {'only': 0}, s = {'new'} WHERE k = 1" % t)
    r = row(session, t)
    assert r.m == {"only": 0} and r.s == {"new"}


def test_element_updates(session, t):
    session.execute("INSERT INTO %s (k, s, l, m) VALUES (1, {'a'}, [2], {'a': 1})" % t)
    session.execute("UPDATE %s SET s = s + {'b', 'c'}, m = m + {'b': 2}, l = l + [3] WHERE k = 1" % t)
    session.execute("UPDATE %s SET l = [1] + l WHERE k = 1" % t)
    session.execute("UPDATE %s SET s = s - {'a'}, m['c'] = 3 WHERE k = 1" % t)
    r = row(session, t)
    assert r.s == {"b", "c"} and r.l == [1, 2, 3] and r.m == {"a": 1, "b": 2, "c": 3}
    session.execute("UPDATE %s SET m = m - {'a'} WHERE k = 1" % t)
    session.execute("DELETE m['b'] FROM %s WHERE k = 1" % t)
    assert row(session, t).m == {"c": 3}


def test_null_and_delete_whole_collection(session, t):
    session.execute("INSERT INTO %s (k, s, m) VALUES (1, {'a'}, {'a': 1})" % t)
    session.execute("UPDATE %s SET s = null WHERE k = 1" % t)
    session.execute("DELETE m FROM %s WHERE k = 1" % t)
    r = row(session, t)
    assert r.s is None and r.m is None
    # The row lives on through its INSERT marker.
    assert session.execute("SELECT k FROM %s WHERE k = 1" % t).one().k == 1


def test_element_ttl(session, t):
    import time
    session.execute("UPDATE %s USING TTL 1 SET m = m + {'t': 1} WHERE k = 1" % t)
    session.execute("UPDATE %s SET m = m + {'keep': 2} WHERE k = 1" % t)
    assert row(session, t).m == {"keep": 2, "t": 1}
    time.sleep(2.2)                                       # the TTL'd entry expires alone
    assert row(session, t).m == {"keep": 2}


def test_invalid_operations_are_clear_errors(session, t):
    # (list operations that read first are in test_list_ops.py)
    session.execute("INSERT INTO %s (k, l) VALUES (1, [1, 2])" % t)
    with pytest.raises(InvalidRequest) as e:
        session.execute("UPDATE %s SET s[0] = 'x' WHERE k = 1" % t)
    assert "Invalid operation (s[0] = 'x') for set column s" in str(e.value)
    assert row(session, t).l == [1, 2]


def test_delete_set_element(session, t):
    session.execute("INSERT INTO %s (k, s) VALUES (1, {'a', 'b'})" % t)
    session.execute("DELETE s['a'] FROM %s WHERE k = 1" % t)
    assert row(session, t).s == {"b"}
    with pytest.raises(InvalidRequest) as e:
        session.execute(session.prepare("DELETE s[?] FROM %s WHERE k = 1" % t), (None,))
    assert "Invalid null set element" in str(e.value)


def test_frozen_collection_in_primary_key(session, ks):
    session.execute("CREATE TABLE %s.f (k frozen<list<int>>, c frozen<set<text>>, v int, PRIMARY KEY (k, c))" % ks)
    session.execute("INSERT INTO %s.f (k, c, v) VALUES ([1, 2], {'b', 'a'}, 1)" % ks)
    session.execute("INSERT INTO %s.f (k, c, v) VALUES ([1, 2], {'a'}, 2)" % ks)
    rows = list(session.execute("SELECT c, v FROM %s.f WHERE k = [1, 2]" % ks))
    assert [(r.c, r.v) for r in rows] == [({"a"}, 2), ({"a", "b"}, 1)]


def test_unset_keys_and_elements(session, t):
    from cassandra.query import UNSET_VALUE
    session.execute("INSERT INTO %s (k, s, m) VALUES (1, {'a', 'b'}, {'x': 1})" % t)
    for q, args in (("UPDATE %s SET m[?] = 5 WHERE k = 1", (UNSET_VALUE,)),
                    ("DELETE m[?] FROM %s WHERE k = 1", (UNSET_VALUE,))):
        with pytest.raises(InvalidRequest) as e:
            session.execute(session.prepare(q % t), args)
        assert "Invalid unset map key" in str(e.value)
    session.execute(session.prepare("UPDATE %s SET m['x'] = ? WHERE k = 1" % t), (UNSET_VALUE,))  # value unset: nothing
    session.execute(session.prepare("DELETE s[?] FROM %s WHERE k = 1" % t), (UNSET_VALUE,))       # nothing
    session.execute(session.prepare("UPDATE %s SET s = s + ? WHERE k = 1" % t), (UNSET_VALUE,))
    session.execute(session.prepare("UPDATE %s SET s = s - ? WHERE k = 1" % t), (UNSET_VALUE,))
    r = row(session, t)
    assert r.s == {"a", "b"} and r.m == {"x": 1}
