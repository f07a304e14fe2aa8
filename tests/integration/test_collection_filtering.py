"""Filtering on collection columns with ALLOW FILTERING through the Python
driver: CONTAINS (list, set, map values), CONTAINS KEY (map keys), map-entry
equality m[key] = value, on non-frozen and frozen collections and with bind
markers; Cassandra's messages without ALLOW FILTERING, on the wrong column
kind, with null values and in UPDATE/DELETE."""

import pytest

from conftest import refused

FILTERING = ("Cannot execute this query as it might involve data filtering and thus may have unpredictable "
             "performance. If you want to execute this query despite the performance unpredictability, use "
             "ALLOW FILTERING")


def ks_of(session, q, params=None):
    return sorted(tuple(r)[0] for r in session.execute(q, params))


@pytest.fixture
def t(session, ks):
    session.execute("CREATE TABLE %s.cf (k int, c int, l list<int>, s set<text>, m map<text, int>, "
                    "fm frozen<map<int, int>>, fs frozen<set<int>>, v int, PRIMARY KEY (k, c))" % ks)
    rows = [(0, 0, "[1, 2]", "{'a', 'b'}", "{'x': 1, 'y': 2}", "{1: 6}", "{1, 2}"),
            (1, 0, "[3, 2]", "{'b'}", "{'x': 2}", "{3: 2}", "{2}"),
            (2, 0, "[]", "{}", "{}", "{}", "{}"),
            (3, 0, "[4]", "{'c'}", "{'z': 1}", "{1: 2}", "{4}")]
    for r in rows:
        session.execute("INSERT INTO %s.cf (k, c, l, s, m, fm, fs) VALUES (%d, %d, %s, %s, %s, %s, %s)"
                        % ((ks,) + r))
    return ks + ".cf"


def test_contains(session, t):
    assert ks_of(session, "SELECT k FROM %s WHERE l CONTAINS 2 ALLOW FILTERING" % t) == [0, 1]
    assert ks_of(session, "SELECT k FROM %s WHERE s CONTAINS 'b' ALLOW FILTERING" % t) == [0, 1]
    # a map's values
    assert ks_of(session, "SELECT k FROM %s WHERE m CONTAINS 1 ALLOW FILTERING" % t) == [0, 3]
    assert ks_of(session, "SELECT k FROM %s WHERE fm CONTAINS 2 ALLOW FILTERING" % t) == [1, 3]
    assert ks_of(session, "SELECT k FROM %s WHERE fs CONTAINS 2 ALLOW FILTERING" % t) == [0, 1]
    assert ks_of(session, "SELECT k FROM %s WHERE l CONTAINS 9 ALLOW FILTERING" % t) == []
    # several restrictions on one column, and with a partition key
    assert ks_of(session, "SELECT k FROM %s WHERE l CONTAINS 2 AND l CONTAINS 1 ALLOW FILTERING" % t) == [0]
    assert ks_of(session, "SELECT k FROM %s WHERE k = 1 AND s CONTAINS 'b' ALLOW FILTERING" % t) == [1]


def test_contains_key_and_map_entries(session, t):
    assert ks_of(session, "SELECT k FROM %s WHERE m CONTAINS KEY 'x' ALLOW FILTERING" % t) == [0, 1]
    assert ks_of(session, "SELECT k FROM %s WHERE fm CONTAINS KEY 1 ALLOW FILTERING" % t) == [0, 3]
    assert ks_of(session, "SELECT k FROM %s WHERE m['x'] = 1 ALLOW FILTERING" % t) == [0]
    assert ks_of(session, "SELECT k FROM %s WHERE m['x'] = 2 ALLOW FILTERING" % t) == [1]
    assert ks_of(session, "SELECT k FROM %s WHERE m['q'] = 2 ALLOW FILTERING" % t) == []
    # k = 0: key 'x' and the value 2 (under 'y'): both hold, not necessarily in one entry
    assert ks_of(session, "SELECT k FROM %s WHERE m CONTAINS KEY 'x' AND m CONTAINS 2 ALLOW FILTERING" % t) == [0, 1]
    assert ks_of(session, "SELECT k FROM %s WHERE m CONTAINS KEY 'y' AND m CONTAINS 1 ALLOW FILTERING" % t) == [0]


def test_bind_markers(session, t):
    ps = session.prepare("SELECT k FROM %s WHERE m[?] = ? AND l CONTAINS ? AND m CONTAINS KEY ? ALLOW FILTERING" % t)
    assert [(c.name, c.type.typename) for c in ps.column_metadata] == [
        ("key(m)", "varchar"), ("value(m)", "int"), ("value(l)", "int"), ("key(m)", "varchar")]
    assert ks_of(session, ps, ["x", 1, 2, "y"]) == [0]
    ps = session.prepare("SELECT k FROM %s WHERE s CONTAINS ? ALLOW FILTERING" % t)
    assert ps.column_metadata[0].name == "value(s)"
    assert ks_of(session, ps, ["c"]) == [3]


def test_refusals(session, t):
    refused(session, "SELECT k FROM %s WHERE l CONTAINS 2" % t, FILTERING)
    refused(session, "SELECT k FROM %s WHERE k = 0 AND m CONTAINS KEY 'x'" % t, FILTERING)
    refused(session, "SELECT k FROM %s WHERE m['x'] = 1" % t, FILTERING)
    refused(session, "SELECT k FROM %s WHERE v CONTAINS 2 ALLOW FILTERING" % t,
            "Cannot use CONTAINS on non-collection column v")
    refused(session, "SELECT k FROM %s WHERE l CONTAINS KEY 2 ALLOW FILTERING" % t,
            "Cannot use CONTAINS KEY on non-map column l")
    refused(session, "SELECT k FROM %s WHERE l[0] = 2 ALLOW FILTERING" % t,
            "Indexes on list entries (l[index] = value) are not currently supported.")
    refused(session, "SELECT k FROM %s WHERE v[0] = 2 ALLOW FILTERING" % t, "Column v cannot be used as a map")
    refused(session, "SELECT k FROM %s WHERE fm[1] = 6 ALLOW FILTERING" % t,
            "Map-entry equality predicates on frozen map column fm are not supported")
    refused(session, "SELECT k FROM %s WHERE m['x'] > 1 ALLOW FILTERING" % t,
            "Only EQ relations are supported on map entries")
    refused(session, "SELECT k FROM %s WHERE l CONTAINS null ALLOW FILTERING" % t, "Unsupported null value for column l")
    refused(session, "SELECT k FROM %s WHERE m['x'] = null ALLOW FILTERING" % t,
            "Unsupported null map value for column m")
    refused(session, "SELECT k FROM %s WHERE l CONTAINS 'a' ALLOW FILTERING" % t,
            "Invalid STRING constant (a) for \"value(l)\" of type int")
    refused(session, "DELETE FROM %s WHERE k = 0 AND c = 0 AND m CONTAINS 1" % t,
            "Non PRIMARY KEY columns found in where clause: m ")
    refused(session, "UPDATE %s SET v = 1 WHERE k = 0 AND c = 0 AND m['x'] = 1" % t,
            "Non PRIMARY KEY columns found in where clause: m ")
