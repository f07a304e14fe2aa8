"""Literals and sizes as Cassandra takes them: timestamp strings in every
pattern of its TimestampSerializer (zones after a space, tz database names),
keys over 65,535 bytes refused, and empty IN lists."""

import datetime

import pytest

from cassandra import InvalidRequest
from conftest import refused
from sibyl_harness import flush




UTC = datetime.timezone.utc

TIMESTAMPS = [
    ("2011-02-03", datetime.datetime(2011, 2, 3, tzinfo=UTC)),
    ("2011-02-03 UTC", datetime.datetime(2011, 2, 3, tzinfo=UTC)),
    ("2011-02-03+0100", datetime.datetime(2011, 2, 2, 23, tzinfo=UTC)),
    ("2011-02-03 04:05", datetime.datetime(2011, 2, 3, 4, 5, tzinfo=UTC)),
    ("2011-02-03 04:05 PST", datetime.datetime(2011, 2, 3, 12, 5, tzinfo=UTC)),
    ("2011-02-03 04:05:06", datetime.datetime(2011, 2, 3, 4, 5, 6, tzinfo=UTC)),
    ("2011-02-03T04:05:06", datetime.datetime(2011, 2, 3, 4, 5, 6, tzinfo=UTC)),
    ("2011-02-03 04:05:06.789", datetime.datetime(2011, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)),
    ("2011-02-03T04:05:06.789Z", datetime.datetime(2011, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)),
    ("2011-02-03 04:05:06-0800", datetime.datetime(2011, 2, 3, 12, 5, 6, tzinfo=UTC)),
    ("2011-02-03 04:05:06+02:00", datetime.datetime(2011, 2, 3, 2, 5, 6, tzinfo=UTC)),
    ("2011-02-03 04:05:06 GMT+01:00", datetime.datetime(2011, 2, 3, 3, 5, 6, tzinfo=UTC)),
    ("2011-02-03 04:05:06 Europe/Paris", datetime.datetime(2011, 2, 3, 3, 5, 6, tzinfo=UTC)),
    ("2011-07-03 04:05:06 Europe/Paris", datetime.datetime(2011, 7, 3, 2, 5, 6, tzinfo=UTC)),
    ("2011-02-03T04:05:06.5 America/New_York", datetime.datetime(2011, 2, 3, 9, 5, 6, 5000, tzinfo=UTC)),
    # SSS counts milliseconds, however many digits spell the count (Java's parse)
    ("2011-02-03 04:05:06.000999+0000", datetime.datetime(2011, 2, 3, 4, 5, 6, 999000, tzinfo=UTC)),
]


@pytest.mark.parametrize("text,want", TIMESTAMPS, ids=[t for t, _ in TIMESTAMPS])
def test_timestamp_formats(session, ks, text, want):
    session.execute("CREATE TABLE IF NOT EXISTS %s.ts (k int PRIMARY KEY, t timestamp)" % ks)
    session.execute("INSERT INTO %s.ts (k, t) VALUES (1, '%s')" % (ks, text))
    got = session.execute("SELECT t FROM %s.ts WHERE k = 1" % ks).one().t
    assert got.replace(tzinfo=UTC) == want


def test_timestamp_refusals(session, ks):
    session.execute("CREATE TABLE %s.tsr (k int PRIMARY KEY, t timestamp)" % ks)
    for bad in ("2011-02-03 Mars/Olympus", "2011-02-30", "2011-02-03 25:00",
                "2011-02-03 04:05:06.1234", "2011-02-03 04:05:06.123000+0000"):
        refused(session, "INSERT INTO %s.tsr (k, t) VALUES (1, '%s')" % (ks, bad),
                "Unable to coerce '%s' to a formatted date (long)" % bad)


def test_key_lengths(node, session, ks):
    session.execute("CREATE TABLE %s.kl (a text, b text, c text, d text, v int, PRIMARY KEY ((a, b), c, d))" % ks)
    big, half = "x" * 70000, "y" * 40000
    ins = "INSERT INTO %s.kl (a, b, c, d, v) VALUES (?, ?, ?, ?, 1)" % ks
    refused(session, ins, "Key length of 70000 is longer than maximum of 65535", ("a", "b", big, ""))
    # composites: the sum counts (a partition key component costs 3 more bytes)
    refused(session, ins, "Key length of 80006 is longer than maximum of 65535", (half, half, "c", "d"))
    refused(session, ins, "Key length of 80000 is longer than maximum of 65535", ("a", "b", half, half))
    refused(session, "UPDATE %s.kl SET v = 1 WHERE a = 'a' AND b = 'b' AND (c, d) = (?, ?)" % ks,
            "Key length of 80000 is longer than maximum of 65535", (half, half))
    refused(session, "SELECT * FROM %s.kl WHERE a = ? AND b = ?" % ks,
            "Key length of 80006 is longer than maximum of 65535", (half, half))
    # nothing was written, and a large key under the limit is fine
    assert list(session.execute("SELECT * FROM %s.kl" % ks)) == []
    session.execute(session.prepare(ins), ("a", "b", "z" * 60000, ""))
    assert len(list(session.execute("SELECT c FROM %s.kl WHERE a = 'a' AND b = 'b'" % ks))) == 1
    # exactly at the limit: accepted, although the stored (byte-comparable)
    # form of a text full of zero bytes is twice as long; and it reads back
    # after a flush, from the SSTable
    at_limit = "\0" * 65535
    session.execute(session.prepare(ins), ("z", "z", at_limit, ""))
    session.execute(session.prepare(ins), ("z", "z", "", "w" * 65535))
    refused(session, ins, "Key length of 65536 is longer than maximum of 65535", ("z", "z", at_limit, "w"))
    flush(node)
    rows = list(session.execute("SELECT c, d FROM %s.kl WHERE a = 'z' AND b = 'z'" % ks))
    assert sorted((len(r.c), len(r.d)) for r in rows) == [(0, 65535), (65535, 0)]
    assert [r.c for r in rows if r.c] == [at_limit]


def test_cast_in_terms(session, ks):
    session.execute("CREATE TABLE %s.ct (k int PRIMARY KEY, v int, t text, d double)" % ks)
    session.execute("INSERT INTO %s.ct (k, v, t, d) VALUES (1, CAST((double)3.75 AS int), CAST((int)42 AS text), "
                    "CAST((int)7 AS double))" % ks)
    assert tuple(session.execute("SELECT v, t, d FROM %s.ct WHERE k = 1" % ks).one()) == (3, "42", 7.0)
    session.execute("UPDATE %s.ct SET v = CAST(5 AS int) WHERE k = 1" % ks)
    assert session.execute("SELECT v FROM %s.ct WHERE k = 1" % ks).one().v == 5
    refused(session, "UPDATE %s.ct SET v = CAST((int)5 AS bigint) WHERE k = 1" % ks,
            "Type error: cannot assign result of function system.castasbigint (type bigint) to v (type int)")


def test_relation_refusals(session, ks):
    session.execute("CREATE TABLE %s.rr (k int, c int, v int, PRIMARY KEY (k, c))" % ks)
    refused(session, "SELECT * FROM %s.rr WHERE k = 0 AND v != 5 ALLOW FILTERING" % ks,
            'Unsupported "!=" relation: v != 5')
    from cassandra.query import UNSET_VALUE
    with pytest.raises(InvalidRequest, match="Invalid unset value for column c"):
        session.execute(session.prepare("SELECT * FROM %s.rr WHERE k = 0 AND c IN ?" % ks), (UNSET_VALUE,))
