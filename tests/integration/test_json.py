"""SELECT JSON and toJson() through the Python driver: one [json] text
column per row, keys as Cassandra writes them (a mixed-case name keeps its
CQL quotes), and each type's JSON text as its toJSONString gives it."""

import datetime
import decimal
import json
import uuid

import pytest

from conftest import refused


def rows(session, q, params=None):
    return [tuple(r) for r in session.execute(q, params)]


@pytest.fixture
def t(session, ks):
    session.execute('CREATE TABLE %s.j (k int, c text, "Mixed" int, bi bigint, f float, d double, dec decimal, '
                    'vi varint, b boolean, bl blob, ts timestamp, dt date, tm time, u uuid, ip inet, du duration, '
                    'l list<int>, s set<text>, m map<int, text>, mt map<text, frozen<list<int>>>, '
                    'PRIMARY KEY (k, c))' % ks)
    return ks + ".j"


def test_select_json_row(session, t):
    session.execute('INSERT INTO %s (k, c, "Mixed", bi, f, d, dec, vi, b, bl, ts, dt, tm, u, ip, du, l, s, m, mt) '
                    "VALUES (1, 'a\"b\\c\n', 7, -9000000000, 1.5, 1e10, 1.50, 123456789012345678901234567890, "
                    "true, 0x0102, '2011-02-03 04:05:06.789+0000', '2011-02-03', '04:05:06.000000123', "
                    "5a0c4f2e-9b2d-4a6c-8e1f-0123456789ab, '127.0.0.1', 1h2m, [1, 2], {'x', 'y'}, "
                    "{1: 'one', 2: 'two'}, {'p': [3]})" % t)
    rs = session.execute("SELECT JSON * FROM %s" % t)
    assert rs.column_names == ["[json]"]
    text = rs.one()[0]
    assert text == (
        '{"k": 1, "c": "a\\"b\\\\c\\n", "Mixed": 7, "b": true, "bi": -9000000000, "bl": "0x0102", "d": 1.0E10, '
        '"dec": 1.50, "dt": "2011-02-03", "du": "1h2m", "f": 1.5, "ip": "127.0.0.1", "l": [1, 2], '
        '"m": {"1": "one", "2": "two"}, "mt": {"p": [3]}, "s": ["x", "y"], "tm": "04:05:06.000000123", '
        '"ts": "2011-02-03 04:05:06.789Z", "u": "5a0c4f2e-9b2d-4a6c-8e1f-0123456789ab", '
        '"vi": 123456789012345678901234567890}').replace('"Mixed"', '"\\"Mixed\\""')
    assert json.loads(text)["m"] == {"1": "one", "2": "two"}


def test_selected_columns_nulls_and_aliases(session, t):
    session.execute("INSERT INTO %s (k, c, f) VALUES (2, 'x', 0.001)" % t)
    session.execute("INSERT INTO %s (k, c, f) VALUES (3, 'y', 12345678)" % t)
    assert rows(session, "SELECT JSON k, f, d AS dd, count(*) FROM %s WHERE k = 2" % t) == [
        ('{"k": 2, "f": 0.001, "dd": null, "count": 1}',)]
    assert rows(session, "SELECT JSON f FROM %s WHERE k = 3" % t) == [('{"f": 1.2345678E7}',)]
    # paging and prepared statements keep the single column
    ps = session.prepare("SELECT JSON k, c FROM %s WHERE k = ?" % t)
    assert [c[2] for c in ps.result_metadata] == ["[json]"]
    assert rows(session, ps, [2]) == [('{"k": 2, "c": "x"}',)]


def test_to_json(session, t):
    session.execute("INSERT INTO %s (k, c, l, m, d, ts) VALUES (4, 'z', [5], {3: 'c'}, -0.0, 0)" % t)
    rs = session.execute("SELECT toJson(l), toJson(m), toJson(c), toJson(d), toJson(ts), toJson(bi) "
                         "FROM %s WHERE k = 4" % t)
    assert rs.column_names == ["system.tojson(l)", "system.tojson(m)", "system.tojson(c)", "system.tojson(d)",
                               "system.tojson(ts)", "system.tojson(bi)"]
    assert tuple(rs.one()) == ("[5]", '{"3": "c"}', '"z"', "-0.0", '"1970-01-01 00:00:00.000Z"', "null")


def test_insert_json(session, t):
    session.execute('INSERT INTO %s JSON \'{"k": 10, "c": "a", "\\"Mixed\\"": 3, "bi": "42", "f": 2.5, '
                    '"dec": 1.25, "vi": 12345678901234567890123, "b": true, "bl": "0x0a0b", '
                    '"ts": "2011-02-03 04:05:06.789Z", "dt": "2011-02-03", "u": "5a0c4f2e-9b2d-4a6c-8e1f-0123456789ab", '
                    '"ip": "10.0.0.1", "l": [3, 1], "s": ["y", "x"], "m": {"2": "two", "1": "one"}, '
                    '"mt": {"p": [1, 2]}}\'' % t)
    r = session.execute('SELECT k, c, "Mixed", bi, f, dec, vi, b, bl, ts, dt, u, ip, l, s, m, mt FROM %s '
                        'WHERE k = 10' % t).one()
    assert tuple(r) == (10, "a", 3, 42, 2.5, decimal.Decimal("1.25"), 12345678901234567890123, True, b"\x0a\x0b",
                        datetime.datetime(2011, 2, 3, 4, 5, 6, 789000), r.dt,
                        uuid.UUID("5a0c4f2e-9b2d-4a6c-8e1f-0123456789ab"), "10.0.0.1", [3, 1], {"x", "y"},
                        {1: "one", 2: "two"}, {"p": [1, 2]})
    assert str(r.dt) == "2011-02-03"
    # round trip: what SELECT JSON writes, INSERT JSON reads
    row = session.execute("SELECT JSON * FROM %s WHERE k = 10" % t).one()[0]
    session.execute("DELETE FROM %s WHERE k = 10" % t)
    ps = session.prepare("INSERT INTO %s JSON ?" % t)
    assert [(c.name, c.type.typename) for c in ps.column_metadata] == [("[json]", "varchar")]
    session.execute(ps, [row])
    assert session.execute("SELECT JSON * FROM %s WHERE k = 10" % t).one()[0] == row


def test_insert_json_defaults(session, t):
    session.execute("INSERT INTO %s (k, c, bi, f) VALUES (11, 'a', 1, 1.0)" % t)
    # DEFAULT UNSET leaves the other columns alone; DEFAULT NULL (the default) clears them
    session.execute('INSERT INTO %s JSON \'{"k": 11, "c": "a", "bi": 2}\' DEFAULT UNSET' % t)
    assert rows(session, "SELECT bi, f FROM %s WHERE k = 11" % t) == [(2, 1.0)]
    session.execute('INSERT INTO %s JSON \'{"k": 11, "c": "a", "bi": 3}\'' % t)
    assert rows(session, "SELECT bi, f FROM %s WHERE k = 11" % t) == [(3, None)]
    # fromJson() in a term takes its type from the receiver
    session.execute("UPDATE %s SET l = fromJson('[7, 8]'), bi = fromJson('\"9\"') WHERE k = 11 AND c = 'a'" % t)
    assert rows(session, "SELECT l, bi FROM %s WHERE k = 11" % t) == [([7, 8], 9)]


def test_insert_json_refusals(session, t):
    refused(session, 'INSERT INTO %s JSON \'{"k": 1, "c": "a", "nope": 1}\'' % t,
            "JSON values map contains unrecognized column: nope")
    refused(session, 'INSERT INTO %s JSON \'{"k": 1, "c": "a", "bi": "x"}\'' % t,
            "Error decoding JSON value for bi: Unable to make long from 'x'")
    refused(session, 'INSERT INTO %s JSON \'{"k": 1, "c": "a", "bl": "0102"}\'' % t,
            "Error decoding JSON value for bl: String representation of blob is missing 0x prefix: 0102")
    refused(session, "SELECT fromJson('1') FROM %s" % t,
            "fromJson() cannot be used in the selection clause of a SELECT statement")
    with pytest.raises(Exception) as e:
        session.execute("INSERT INTO %s JSON '[1, 2]'" % t)
    assert "Could not decode JSON string as a map" in str(e.value)


def test_json_reader_edges(session, t):
    # escapes, including a surrogate pair, come back as the text they encode
    session.execute('INSERT INTO %s JSON \'{"k": 20, "c": "\\u00e9\\ud83d\\ude00\\t\\"x\\/"}\'' % t)
    assert rows(session, "SELECT c FROM %s WHERE k = 20" % t) == [("\u00e9\U0001F600\t\"x/",)]
    # nesting past the reader's depth, bad tokens and trailing text are refused, nothing written
    deep = "[" * 100 + "]" * 100
    for bad in ('{"k": 21, "c": "a", "l": %s}' % deep, '{"k": 21, "c": "a", "bi": tru}',
                '{"k": 21, "c": "a"} x', '{"k": 21, "c": "a", "bi": 1', '{"k": 21 "c": "a"}'):
        with pytest.raises(Exception) as e:
            session.execute("INSERT INTO %s JSON '%s'" % (t, bad))
        assert "Could not decode JSON string" in str(e.value), bad
    refused(session, 'INSERT INTO %s JSON \'{"k": 21, "c": "a", "l": [1, null]}\'' % t,
            "Error decoding JSON value for l: null is not supported inside collections")
    refused(session, 'INSERT INTO %s JSON \'{"k": 21, "c": "a", "bi": [1]}\'' % t,
            "Error decoding JSON value for bi: Expected a bigint value, but got a list: [1]")
    assert rows(session, "SELECT k FROM %s WHERE k = 21" % t) == []
