"""Every native type of the subset round-trips through CQL literals, through
bound values (prepared) and through driver-formatted simple statements;
now(), uuid(), toTimestamp(now())."""

import datetime
import math
import uuid
from decimal import Decimal

import pytest

from cassandra import InvalidRequest
from cassandra.util import Date, Time, datetime_from_uuid1

# (column, CQL type, CQL literal, python value the driver returns)
TYPES = [
    ("a_ascii", "ascii", "'plain ascii ~'", "plain ascii ~"),
    ("a_text", "text", "'h\u00e9llo w\u00f6rld \u2603 ''q'''", "h\u00e9llo w\u00f6rld \u2603 'q'"),
    ("a_varchar", "varchar", "$$dollar 'quoted'$$", "dollar 'quoted'"),
    ("a_blob", "blob", "0x00ff10", b"\x00\xff\x10"),
    ("a_boolean", "boolean", "true", True),
    ("a_tinyint", "tinyint", "-128", -128),
    ("a_smallint", "smallint", "32767", 32767),
    ("a_int", "int", "-2147483648", -2147483648),
    ("a_bigint", "bigint", "9223372036854775807", 9223372036854775807),
    ("a_varint", "varint", "-1180591620717411303424", -2 ** 70),
    ("a_float", "float", "1.5", 1.5),
    ("a_double", "double", "3.141592653589793", 3.141592653589793),
    ("a_decimal", "decimal", "-12345.678900", Decimal("-12345.678900")),
    ("a_timestamp", "timestamp", "'2024-02-29 12:34:56.789+0000'", datetime.datetime(2024, 2, 29, 12, 34, 56, 789000)),
    ("a_date", "date", "'2024-02-29'", Date(datetime.date(2024, 2, 29))),
    ("a_time", "time", "'12:34:56.123456789'", Time("12:34:56.123456789")),
    ("a_uuid", "uuid", "123e4567-e89b-42d3-a456-426614174000", uuid.UUID("123e4567-e89b-42d3-a456-426614174000")),
    ("a_timeuuid", "timeuuid", "d2177dd0-eaa2-11de-a572-001b779c76e3", uuid.UUID("d2177dd0-eaa2-11de-a572-001b779c76e3")),
    ("a_inet4", "inet", "'192.168.1.10'", "192.168.1.10"),
    ("a_inet6", "inet", "'2001:db8::ff00:42:8329'", "2001:db8::ff00:42:8329"),
]

# Edge values for the bound path: (column, python value)
EDGES = [
    ("a_text", ""), ("a_blob", b""), ("a_boolean", False),
    ("a_tinyint", 127), ("a_smallint", -32768), ("a_int", 2147483647), ("a_bigint", -2 ** 63),
    ("a_varint", 0), ("a_varint", 127), ("a_varint", 128), ("a_varint", -129), ("a_varint", 2 ** 200),
    ("a_float", -0.25), ("a_double", -1e308), ("a_double", 5e-324),
    ("a_decimal", Decimal("0")), ("a_decimal", Decimal("1E+10")), ("a_decimal", Decimal("-0.000000000000000001")),
    ("a_timestamp", datetime.datetime(1960, 1, 1, 0, 0, 0, 1000)),
    ("a_date", Date(datetime.date(1900, 1, 1))), ("a_date", Date(datetime.date(2999, 12, 31))),
    ("a_time", Time(0)), ("a_time", Time(86399999999999)),
    ("a_inet6", "::1"),
]


@pytest.fixture
def t(session, ks):
    cols = ", ".join("%s %s" % (c, ty) for c, ty, _, _ in TYPES)
    session.execute("CREATE TABLE %s.types (k int PRIMARY KEY, %s)" % (ks, cols))
    return ks + ".types"


def names():
    return [c for c, _, _, _ in TYPES]


def check_row(row, expected):
    for col, want in expected.items():
        got = getattr(row, col)
        assert got == want, "%s: got %r, want %r" % (col, got, want)
        assert type(got) is type(want), "%s: got type %s" % (col, type(got).__name__)


def test_literals(session, t):
    session.execute("INSERT INTO %s (k, %s) VALUES (1, %s)"
                    % (t, ", ".join(names()), ", ".join(lit for _, _, lit, _ in TYPES)))
    row = session.execute("SELECT * FROM %s WHERE k = 1" % t).one()
    check_row(row, {c: v for c, _, _, v in TYPES})


def test_result_metadata_types(session, t):
    rs = session.execute("SELECT %s FROM %s WHERE k = 0" % (", ".join(names()), t))
    got = [ct.typename for ct in rs.column_types]
    want = [ty for _, ty, _, _ in TYPES]
    want = ["varchar" if w in ("text", "varchar") else w for w in want]
    assert got == want


def test_bound_values(session, t):
    ps = session.prepare("INSERT INTO %s (k, %s) VALUES (?, %s)"
                         % (t, ", ".join(names()), ", ".join("?" for _ in TYPES)))
    session.execute(ps, [2] + [v for _, _, _, v in TYPES])
    sel = session.prepare("SELECT * FROM %s WHERE k = ?" % t)
    check_row(session.execute(sel, (2,)).one(), {c: v for c, _, _, v in TYPES})


def test_driver_formatted_literals(session, t):
    # Simple statements with parameters: the driver renders CQL literals itself.
    session.execute("INSERT INTO %s (k, %s) VALUES (%%s, %s)"
                    % (t, ", ".join(names()), ", ".join("%s" for _ in TYPES)),
                    [3] + [v for _, _, _, v in TYPES])
    check_row(session.execute("SELECT * FROM %s WHERE k = 3" % t).one(), {c: v for c, _, _, v in TYPES})


@pytest.mark.parametrize("col,value", EDGES, ids=lambda x: repr(x)[:30])
def test_edge_values_bound(session, t, col, value):
    ps = session.prepare("INSERT INTO %s (k, %s) VALUES (?, ?)" % (t, col))
    session.execute(ps, (10, value))
    got = session.execute("SELECT %s FROM %s WHERE k = 10" % (col, t)).one()[0]
    assert got == value and type(got) is type(value)


def test_nulls(session, t):
    session.execute("INSERT INTO %s (k) VALUES (4)" % t)
    row = session.execute("SELECT * FROM %s WHERE k = 4" % t).one()
    assert all(getattr(row, c) is None for c in names())
    ps = session.prepare("INSERT INTO %s (k, %s) VALUES (?, %s)"
                         % (t, ", ".join(names()), ", ".join("?" for _ in TYPES)))
    session.execute(ps, [5] + [None] * len(TYPES))
    row = session.execute("SELECT * FROM %s WHERE k = 5" % t).one()
    assert row is not None and all(getattr(row, c) is None for c in names())


def test_float_specials(session, t):
    session.execute("INSERT INTO %s (k, a_double, a_float) VALUES (6, NaN, -Infinity)" % t)
    r = session.execute("SELECT a_double, a_float FROM %s WHERE k = 6" % t).one()
    assert math.isnan(r.a_double) and r.a_float == float("-inf")
    session.execute("INSERT INTO %s (k, a_double) VALUES (7, Infinity)" % t)
    assert session.execute("SELECT a_double FROM %s WHERE k = 7" % t).one()[0] == float("inf")


def test_other_literal_forms(session, t):
    # Integer literals for timestamp (ms) and date/time strings without zone/fraction.
    session.execute("INSERT INTO %s (k, a_timestamp, a_time, a_float, a_double, a_decimal, a_varint) "
                    "VALUES (8, 1700000000123, '01:02:03', 2, 1e3, 5, 12345678901234567890123)" % t)
    r = session.execute("SELECT a_timestamp, a_time, a_float, a_double, a_decimal, a_varint "
                        "FROM %s WHERE k = 8" % t).one()
    assert r.a_timestamp == datetime.datetime(2023, 11, 14, 22, 13, 20, 123000)
    assert r.a_time == Time("01:02:03")
    assert (r.a_float, r.a_double, r.a_decimal, r.a_varint) == (2.0, 1000.0, Decimal(5), 12345678901234567890123)
    session.execute("INSERT INTO %s (k, a_timestamp) VALUES (9, '2024-01-02')" % t)
    assert session.execute("SELECT a_timestamp FROM %s WHERE k = 9" % t).one()[0] == datetime.datetime(2024, 1, 2)


@pytest.mark.parametrize("col,literal", [
    ("a_tinyint", "128"), ("a_smallint", "-32769"), ("a_int", "2147483648"),
    ("a_bigint", "9223372036854775808"), ("a_boolean", "'true'"), ("a_blob", "'abc'"),
    ("a_blob", "0x123"), ("a_uuid", "'not-a-uuid'"), ("a_timeuuid", "123e4567-e89b-42d3-a456-426614174000"),
    ("a_inet4", "'300.1.1.1'"), ("a_date", "'2024-02-30'"), ("a_time", "'25:00:00'"),
    ("a_timestamp", "'yesterday'"), ("a_int", "1.0"), ("a_text", "0x00"),
])
def test_bad_literals(session, t, col, literal):
    with pytest.raises(InvalidRequest):
        session.execute("INSERT INTO %s (k, %s) VALUES (11, %s)" % (t, col, literal))
    assert session.execute("SELECT * FROM %s WHERE k = 11" % t).one() is None


def test_now_uuid_totimestamp(session, t):
    before = datetime.datetime.utcnow()
    session.execute("INSERT INTO %s (k, a_timeuuid, a_uuid, a_timestamp) "
                    "VALUES (12, now(), uuid(), toTimestamp(now()))" % t)
    session.execute("INSERT INTO %s (k, a_timeuuid, a_uuid) VALUES (13, now(), uuid())" % t)
    r1 = session.execute("SELECT a_timeuuid, a_uuid, a_timestamp FROM %s WHERE k = 12" % t).one()
    r2 = session.execute("SELECT a_timeuuid, a_uuid FROM %s WHERE k = 13" % t).one()
    assert r1.a_timeuuid.version == 1 and r1.a_uuid.version == 4
    assert r1.a_timeuuid != r2.a_timeuuid and r1.a_uuid != r2.a_uuid
    # Clock sanity, not speed: within ten minutes of the test's clock.
    slack = datetime.timedelta(minutes=10)
    assert before - slack <= r1.a_timestamp <= before + slack
    tu_time = datetime_from_uuid1(r1.a_timeuuid)
    assert before - slack <= tu_time <= before + slack
    # timeuuids from now() on one node increase.
    assert datetime_from_uuid1(r2.a_timeuuid) >= tu_time


def test_now_in_where_and_prepared(session, ks):
    session.execute("CREATE TABLE %s.ev (k int, id timeuuid, PRIMARY KEY (k, id))" % ks)
    ps = session.prepare("INSERT INTO %s.ev (k, id) VALUES (?, now())" % ks)
    for _ in range(5):
        session.execute(ps, (1,))
    ids = [r.id for r in session.execute("SELECT id FROM %s.ev WHERE k = 1" % ks)]
    assert len(ids) == 5 and len(set(ids)) == 5
    assert len(list(session.execute("SELECT id FROM %s.ev WHERE k = 1 AND id < now()" % ks))) == 5


def test_text_key_unicode_and_blob_key(session, ks):
    session.execute("CREATE TABLE %s.tk (k text, b blob, v int, PRIMARY KEY (k, b))" % ks)
    keys = ["a", "\u00e9", "\u2603", "\U0001F600", "a" * 300]
    ps = session.prepare("INSERT INTO %s.tk (k, b, v) VALUES (?, ?, ?)" % ks)
    for i, k in enumerate(keys):
        session.execute(ps, (k, b"\x00" + bytes([i]), i))
        session.execute(ps, (k, b"", i))
    for i, k in enumerate(keys):
        rows = list(session.execute("SELECT b, v FROM %s.tk WHERE k = %%s" % ks, [k]))
        assert [r.b for r in rows] == [b"", b"\x00" + bytes([i])]     # blobs sort bytewise
