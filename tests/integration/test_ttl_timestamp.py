"""WRITETIME / TTL, TTL expiry (short TTLs, bounded waits), default_time_to_live,
USING TIMESTAMP ordering and Cassandra's last-write-wins tie rules, and the
client-side default timestamp the driver sends."""

import time

import pytest

from cassandra import InvalidRequest

from conftest import wait_until

MAX_TTL = 630720000


@pytest.fixture
def t(session, ks):
    session.execute("CREATE TABLE %s.t (k int, c int, v text, w int, PRIMARY KEY (k, c))" % ks)
    return ks + ".t"


def get(session, t, k=1, c=1, cols="v"):
    return session.execute("SELECT %s FROM %s WHERE k = %d AND c = %d" % (cols, t, k, c)).one()


def test_writetime_and_ttl_values(session, t):
    session.execute("INSERT INTO %s (k, c, v, w) VALUES (1, 1, 'a', 1) USING TIMESTAMP 1234567" % t)
    r = get(session, t, cols="WRITETIME(v), WRITETIME(w), TTL(v)")
    assert tuple(r) == (1234567, 1234567, None)
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 2, 'b') USING TTL 1000 AND TIMESTAMP 99" % t)
    r = get(session, t, c=2, cols="WRITETIME(v), TTL(v)")
    assert r[0] == 99
    assert 990 <= r[1] <= 1000
    # The other order of USING options.
    session.execute("UPDATE %s USING TIMESTAMP 77 AND TTL 500 SET v = 'u' WHERE k = 1 AND c = 3" % t)
    r = get(session, t, c=3, cols="WRITETIME(v), TTL(v)")
    assert r[0] == 77 and 490 <= r[1] <= 500
    # A null cell has no writetime.
    r = get(session, t, c=2, cols="WRITETIME(w), TTL(w)")
    assert tuple(r) == (None, None)


def test_client_default_timestamp_is_used(node, clusters, ks, session):
    # The driver sends DEFAULT_TIMESTAMP (µs) on every request; the server must
    # use it as the write time.
    session.execute("CREATE TABLE %s.ct (k int PRIMARY KEY, v text)" % ks)
    c1, s1 = clusters.connect(node, protocol_version=4, timestamp_generator=lambda: 5000)
    s1.execute("INSERT INTO %s.ct (k, v) VALUES (1, 'from-5000')" % ks)
    assert s1.execute("SELECT WRITETIME(v) FROM %s.ct WHERE k = 1" % ks).one()[0] == 5000
    # An older client timestamp loses against it, a newer one wins.
    c2, s2 = clusters.connect(node, protocol_version=4, timestamp_generator=lambda: 4999)
    s2.execute("INSERT INTO %s.ct (k, v) VALUES (1, 'from-4999')" % ks)
    assert s1.execute("SELECT v FROM %s.ct WHERE k = 1" % ks).one().v == "from-5000"
    c3, s3 = clusters.connect(node, protocol_version=4, timestamp_generator=lambda: 5001)
    s3.execute("INSERT INTO %s.ct (k, v) VALUES (1, 'from-5001')" % ks)
    assert s1.execute("SELECT v FROM %s.ct WHERE k = 1" % ks).one().v == "from-5001"
    # USING TIMESTAMP overrides the client timestamp.
    s3.execute("INSERT INTO %s.ct (k, v) VALUES (2, 'x') USING TIMESTAMP 42" % ks)
    assert s1.execute("SELECT WRITETIME(v) FROM %s.ct WHERE k = 2" % ks).one()[0] == 42


def test_default_write_time_is_microseconds_now(session, t):
    before = int(time.time() * 1e6)
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'now')" % t)
    after = int(time.time() * 1e6)
    wt = get(session, t, cols="WRITETIME(v)")[0]
    # Unit check (µs since the epoch), not a speed check: one minute of slack.
    assert before - 60_000_000 <= wt <= after + 60_000_000


def test_using_timestamp_older_loses(session, t):
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'new') USING TIMESTAMP 2000" % t)
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'old') USING TIMESTAMP 1000" % t)
    assert get(session, t).v == "new"
    session.execute("UPDATE %s USING TIMESTAMP 1999 SET v = 'older' WHERE k = 1 AND c = 1" % t)
    assert get(session, t).v == "new"
    session.execute("UPDATE %s USING TIMESTAMP 2001 SET v = 'newer' WHERE k = 1 AND c = 1" % t)
    assert get(session, t).v == "newer"
    # A delete older than the data does nothing; a newer one removes it.
    session.execute("DELETE FROM %s USING TIMESTAMP 1500 WHERE k = 1 AND c = 1" % t)
    assert get(session, t).v == "newer"
    session.execute("DELETE FROM %s USING TIMESTAMP 2500 WHERE k = 1 AND c = 1" % t)
    assert get(session, t) is None
    # Writes older than the tombstone stay invisible, newer ones come back.
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'zombie') USING TIMESTAMP 2400" % t)
    assert get(session, t) is None
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'alive') USING TIMESTAMP 2600" % t)
    assert get(session, t).v == "alive"


def test_timestamp_ties(session, t):
    # Same timestamp, two live values: the greater value wins, whatever the
    # order of arrival.
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'b') USING TIMESTAMP 100" % t)
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'a') USING TIMESTAMP 100" % t)
    assert get(session, t).v == "b"
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'c') USING TIMESTAMP 100" % t)
    assert get(session, t).v == "c"
    # Same timestamp, tombstone vs live cell: the tombstone wins.
    session.execute("DELETE v FROM %s USING TIMESTAMP 100 WHERE k = 1 AND c = 1" % t)
    r = get(session, t, cols="v")
    assert r is not None and r.v is None                 # the row marker of the INSERT stays
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'z') USING TIMESTAMP 100" % t)
    assert get(session, t).v is None
    # Row tombstone at the same timestamp as the row.
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 2, 'x') USING TIMESTAMP 300" % t)
    session.execute("DELETE FROM %s USING TIMESTAMP 300 WHERE k = 1 AND c = 2" % t)
    assert get(session, t, c=2) is None
    # Partition tombstone vs later rows and earlier rows.
    session.execute("INSERT INTO %s (k, c, v) VALUES (2, 1, 'p1') USING TIMESTAMP 10" % t)
    session.execute("INSERT INTO %s (k, c, v) VALUES (2, 2, 'p2') USING TIMESTAMP 30" % t)
    session.execute("DELETE FROM %s USING TIMESTAMP 20 WHERE k = 2" % t)
    assert [r.c for r in session.execute("SELECT c FROM %s WHERE k = 2" % t)] == [2]


def test_ttl_expiry(session, t):
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'short') USING TTL 1" % t)
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 2, 'long') USING TTL 1000" % t)
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 3, 'forever')" % t)
    wait_until(lambda: get(session, t, c=1) is None, timeout=10, interval=0.2, what="TTL 1 expiry")
    assert get(session, t, c=2).v == "long"
    assert [r.c for r in session.execute("SELECT c FROM %s WHERE k = 1" % t)] == [2, 3]
    assert session.execute("SELECT COUNT(*) FROM %s WHERE k = 1" % t).one()[0] == 2


def test_ttl_on_single_cell(session, t):
    session.execute("INSERT INTO %s (k, c, v, w) VALUES (1, 1, 'keep', 1)" % t)
    session.execute("UPDATE %s USING TTL 1 SET w = 2 WHERE k = 1 AND c = 1" % t)
    r = get(session, t, cols="w, TTL(w), TTL(v)")
    assert r.w == 2 and 0 < r[1] <= 1 and r[2] is None
    wait_until(lambda: get(session, t, cols="w").w is None, timeout=10, interval=0.2, what="cell expiry")
    # Only the cell expired; the row (marker, v) lives on.
    assert get(session, t, cols="v").v == "keep"


def test_ttl_row_marker_expires_with_insert(session, t):
    session.execute("INSERT INTO %s (k, c, v) VALUES (5, 5, 'gone') USING TTL 2" % t)
    r = get(session, t, k=5, c=5, cols="v, TTL(v)")
    assert r.v == "gone" and 0 < r[1] <= 2
    wait_until(lambda: get(session, t, k=5, c=5, cols="*") is None, timeout=10, interval=0.2,
               what="row expiry")


def test_default_time_to_live(session, ks):
    session.execute("CREATE TABLE %s.d (k int PRIMARY KEY, v text) WITH default_time_to_live = 1" % ks)
    session.execute("INSERT INTO %s.d (k, v) VALUES (1, 'tmp')" % ks)
    session.execute("INSERT INTO %s.d (k, v) VALUES (2, 'kept') USING TTL 0" % ks)   # 0 = no expiry
    session.execute("INSERT INTO %s.d (k, v) VALUES (3, 'longer') USING TTL 1000" % ks)
    r = session.execute("SELECT TTL(v) FROM %s.d WHERE k = 3" % ks).one()
    assert 990 <= r[0] <= 1000
    wait_until(lambda: session.execute("SELECT * FROM %s.d WHERE k = 1" % ks).one() is None,
               timeout=10, interval=0.2, what="default_time_to_live expiry")
    assert session.execute("SELECT v FROM %s.d WHERE k = 2" % ks).one().v == "kept"
    assert session.execute("SELECT v FROM %s.d WHERE k = 3" % ks).one().v == "longer"


def test_prepared_ttl_and_timestamp_markers(session, t):
    ps = session.prepare("INSERT INTO %s (k, c, v) VALUES (?, ?, ?) USING TTL ? AND TIMESTAMP ?" % t)
    assert [c.name for c in ps.column_metadata] == ["k", "c", "v", "[ttl]", "[timestamp]"]
    session.execute(ps, (1, 1, "p", 300, 4242))
    r = get(session, t, cols="v, TTL(v), WRITETIME(v)")
    assert r.v == "p" and 290 <= r[1] <= 300 and r[2] == 4242


def test_ttl_bounds(session, t):
    with pytest.raises(InvalidRequest) as e:
        session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'x') USING TTL -1" % t)
    assert "A TTL must be greater or equal to 0, but was -1" in str(e.value)
    with pytest.raises(InvalidRequest) as e:
        session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'x') USING TTL %d" % (t, MAX_TTL + 1))
    assert "ttl is too large. requested (%d) maximum (%d)" % (MAX_TTL + 1, MAX_TTL) in str(e.value)
    assert get(session, t) is None                      # nothing written
    # MAX_TTL itself: from 2018 on, now + 20 years passes 2038, which
    # Cassandra 4.x refuses by its expiration-overflow policy (REJECT).
    with pytest.raises(InvalidRequest) as e:
        session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'x') USING TTL %d" % (t, MAX_TTL))
    assert "exceeds maximum supported expiration date of 2038-01-19T03:14:06+00:00" in str(e.value)
    assert get(session, t) is None
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'x') USING TTL 31536000" % t)
    r = get(session, t, cols="v, TTL(v)")
    assert r.v == "x" and 31535000 <= r[1] <= 31536000

