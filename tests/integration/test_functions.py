"""Native scalar functions through the Python driver: minTimeuuid and
maxTimeuuid (in SELECT and in WHERE, bounding a timeuuid clustering range),
dateOf / unixTimestampOf, and the typeAsBlob / blobAsType family with a
literal or marker argument typed by the function's only signature."""

import datetime
import uuid

import pytest

from conftest import refused

UTC = datetime.timezone.utc


def rows(session, q, params=None):
    return [tuple(r) for r in session.execute(q, params)]


def ms_of(u):
    return (u.time - 0x01B21DD213814000) // 10000


@pytest.fixture
def t(session, ks):
    session.execute("CREATE TABLE %s.f (k int, tu timeuuid, ts timestamp, v int, PRIMARY KEY (k, tu))" % ks)
    return ks + ".f"


def test_min_max_timeuuid_values(session, t):
    session.execute("INSERT INTO %s (k, tu, ts) VALUES (0, now(), '2013-02-02 10:00:00+0000')" % t)
    lo, hi = rows(session, "SELECT minTimeuuid(ts), maxTimeuuid(ts) FROM %s" % t)[0]
    ms = int(datetime.datetime(2013, 2, 2, 10, tzinfo=UTC).timestamp() * 1000)
    assert (lo.int >> 76) & 0xf == 1 and (hi.int >> 76) & 0xf == 1
    # the millisecond's first and last 100 ns tick; clock and node 0x80... / 0x7f...
    assert lo.time == ms * 10000 + 0x01B21DD213814000
    assert hi.time == (ms + 1) * 10000 + 0x01B21DD213814000 - 1
    assert lo.bytes[8:] == b"\x80" * 8 and hi.bytes[8:] == b"\x7f" * 8
    # a literal argument is typed as a timestamp by the only signature
    assert rows(session, "SELECT minTimeuuid('2013-02-02 10:00:00+0000') FROM %s" % t) == [(lo,)]
    assert rows(session, "SELECT maxTimeuuid(1359799200000) FROM %s" % t) == [(hi,)]
    rs = session.execute("SELECT minTimeuuid(ts) AS m, maxTimeuuid(ts) FROM %s" % t)
    assert rs.column_names == ["m", "system.maxtimeuuid(ts)"]


def test_timeuuid_range_in_where(session, t):
    base = datetime.datetime(2020, 5, 1, tzinfo=UTC)
    for i in range(5):
        ms = int((base + datetime.timedelta(minutes=i)).timestamp() * 1000)
        # a timeuuid inside minute i (not at its bound)
        u = uuid.UUID(int=((ms * 10000 + 0x01B21DD213814000 + 5) & 0xffffffff) << 96 |
                      (((ms * 10000 + 0x01B21DD213814000 + 5) >> 32) & 0xffff) << 80 |
                      (0x1000 | (((ms * 10000 + 0x01B21DD213814000 + 5) >> 48) & 0x0fff)) << 64 |
                      0x8000000000000001)
        session.execute("INSERT INTO %s (k, tu, v) VALUES (1, %s, %d)" % (t, u, i))
    got = rows(session, "SELECT v FROM %s WHERE k = 1 AND tu > maxTimeuuid('2020-05-01 00:01:00+0000') "
                        "AND tu < minTimeuuid('2020-05-01 00:04:00+0000')" % t)
    assert got == [(2,), (3,)]
    ps = session.prepare("SELECT v FROM %s WHERE k = 1 AND tu >= minTimeuuid(?) AND tu <= maxTimeuuid(?)" % t)
    assert rows(session, ps, [base + datetime.timedelta(minutes=1), base + datetime.timedelta(minutes=2)]) == [
        (1,), (2,)]


def test_date_of_and_unix_timestamp_of(session, t):
    session.execute("INSERT INTO %s (k, tu) VALUES (2, now())" % t)
    tu, d, u = rows(session, "SELECT tu, dateOf(tu), unixTimestampOf(tu) FROM %s WHERE k = 2" % t)[0]
    assert u == ms_of(tu)
    assert d == datetime.datetime.fromtimestamp(u / 1000, UTC).replace(tzinfo=None)
    refused(session, "SELECT dateOf(ts) FROM %s" % t,
            "Type error: ts cannot be passed as argument 0 of function system.dateof of type timeuuid")


def test_blob_conversions_type_their_literal(session, t):
    assert rows(session, "SELECT bigintAsBlob(3), intAsBlob(-1), textAsBlob('ab'), booleanAsBlob(true) "
                         "FROM system.local") == [(b"\x00" * 7 + b"\x03", b"\xff" * 4, b"ab", b"\x01")]
    rs = session.execute("SELECT bigintAsBlob(3) FROM system.local")
    assert rs.column_names == ["system.bigintasblob(3)"]
    assert rows(session, "SELECT blobAsInt(0x0000002a), blobAsText(0x6869) FROM system.local") == [(42, "hi")]
    assert rows(session, "SELECT blobAsBigint(bigintAsBlob(7)) FROM system.local") == [(7,)]
    # a marker gets the signature's type and Cassandra's name for it
    ps = session.prepare("SELECT intAsBlob(?) FROM system.local")
    assert [(c.name, c.type.typename) for c in ps.column_metadata] == [("arg0(system.intasblob)", "int")]
    assert rows(session, ps, [5]) == [(b"\x00\x00\x00\x05",)]
    refused(session, "SELECT bigintAsBlob('x') FROM system.local",
            "Type error: 'x' cannot be passed as argument 0 of function system.bigintasblob of type bigint")
    refused(session, "SELECT minTimeuuid(true) FROM system.local",
            "Type error: true cannot be passed as argument 0 of function system.mintimeuuid of type timestamp")
    refused(session, "SELECT blobAsInt(0x01) FROM system.local",
            "Expected 4 or 0 byte int (1)")
