"""Native aggregates min, max, sum, avg and count through the Python driver:
the result types and arithmetic of Cassandra's AggregateFcts (sums wrap in
their own integer type, avg of integers truncates an exact sum, decimal and
varint are exact, float/double use a compensated double sum), nulls skipped,
the single row over no input, plain columns beside aggregates, aliases and
column names, and the refusals with Cassandra's messages."""

import uuid
from decimal import Decimal

import pytest

from conftest import refused


def one(session, q, params=None):
    return tuple(session.execute(q, params).one())


@pytest.fixture
def t(session, ks):
    session.execute("CREATE TABLE %s.a (k int, c int, i int, ti tinyint, si smallint, bi bigint, "
                    "f float, d double, dec decimal, vi varint, txt text, tu timeuuid, "
                    "PRIMARY KEY (k, c))" % ks)
    return ks + ".a"


def test_integer_sums_wrap_and_averages_truncate(session, t):
    session.execute("INSERT INTO %s (k, c, i, ti, si, bi) VALUES (0, 0, 2147483647, 100, 32767, "
                    "9223372036854775807)" % t)
    session.execute("INSERT INTO %s (k, c, i, ti, si, bi) VALUES (0, 1, 2147483647, 100, 32767, "
                    "9223372036854775807)" % t)
    # Java arithmetic in the column's own type: the sum wraps...
    assert one(session, "SELECT sum(i), sum(ti), sum(si), sum(bi) FROM %s" % t) == (-2, -56, -2, -2)
    # ... while avg divides an exact (wider) sum
    assert one(session, "SELECT avg(i), avg(ti), avg(si), avg(bi) FROM %s" % t) == (
        2147483647, 100, 32767, 9223372036854775807)
    session.execute("INSERT INTO %s (k, c, i) VALUES (1, 0, -1)" % t)
    session.execute("INSERT INTO %s (k, c, i) VALUES (1, 1, -2)" % t)
    # -3 / 2 truncates toward zero
    assert one(session, "SELECT avg(i), sum(i), min(i), max(i) FROM %s WHERE k = 1" % t) == (-1, -3, -2, -1)


def test_floating_point(session, t):
    for c, f, d in ((0, 1.5, 0.1), (1, 2.5, 0.2), (2, 3.0, 0.3)):
        session.execute("INSERT INTO %s (k, c, f, d) VALUES (0, %d, %r, %r)" % (t, c, f, d))
    s_f, a_f, s_d, a_d = one(session, "SELECT sum(f), avg(f), sum(d), avg(d) FROM %s" % t)
    assert s_f == 7.0 and a_f == pytest.approx(7.0 / 3, rel=1e-6)
    # Kahan compensation: 0.6, where a plain double sum gives 0.6000000000000001
    assert s_d == 0.6
    assert a_d == 0.6 / 3
    assert one(session, "SELECT min(d), max(d), min(f), max(f) FROM %s" % t) == (0.1, 0.3, 1.5, 3.0)


def test_decimal_and_varint_are_exact(session, t):
    session.execute("INSERT INTO %s (k, c, dec, vi) VALUES (0, 0, 1.10, 1180591620717411303424)" % t)
    session.execute("INSERT INTO %s (k, c, dec, vi) VALUES (0, 1, 2.255, 1180591620717411303424)" % t)
    session.execute("INSERT INTO %s (k, c, dec, vi) VALUES (0, 2, -0.005, -7)" % t)
    # the sum has the largest scale met; varint goes past 64 bits
    assert one(session, "SELECT sum(dec), sum(vi) FROM %s" % t) == (
        Decimal("3.350"), 2 * 1180591620717411303424 - 7)
    assert one(session, "SELECT min(dec), max(dec), min(vi), max(vi) FROM %s" % t) == (
        Decimal("-0.005"), Decimal("2.255"), -7, 1180591620717411303424)
    # varint avg truncates toward zero
    session.execute("INSERT INTO %s (k, c, vi) VALUES (1, 0, -7)" % t)
    session.execute("INSERT INTO %s (k, c, vi) VALUES (1, 1, 0)" % t)
    assert one(session, "SELECT avg(vi) FROM %s WHERE k = 1" % t) == (-3,)


def test_decimal_average_rounds_half_even_per_value(session, t):
    # Cassandra updates avg += (x - avg) / count, rounding HALF_EVEN at the
    # scale of x - avg: decimals 1 and 2 (scale 0) average to 1 ...
    session.execute("INSERT INTO %s (k, c, dec) VALUES (0, 0, 1)" % t)
    session.execute("INSERT INTO %s (k, c, dec) VALUES (0, 1, 2)" % t)
    assert one(session, "SELECT avg(dec) FROM %s WHERE k = 0" % t) == (Decimal("1"),)
    # ... and 1.0 and 2.0 (scale 1) to 1.5
    session.execute("INSERT INTO %s (k, c, dec) VALUES (1, 0, 1.0)" % t)
    session.execute("INSERT INTO %s (k, c, dec) VALUES (1, 1, 2.0)" % t)
    assert one(session, "SELECT avg(dec) FROM %s WHERE k = 1" % t) == (Decimal("1.5"),)
    session.execute("INSERT INTO %s (k, c, dec) VALUES (2, 0, 1.00)" % t)
    session.execute("INSERT INTO %s (k, c, dec) VALUES (2, 1, 2.00)" % t)
    session.execute("INSERT INTO %s (k, c, dec) VALUES (2, 2, 4.00)" % t)
    # 1.00, then 1.00 + 0.50 = 1.50, then 1.50 + round(2.50 / 3) = 1.50 + 0.83
    assert one(session, "SELECT avg(dec), sum(dec) FROM %s WHERE k = 2" % t) == (Decimal("2.33"), Decimal("7.00"))


def test_min_max_by_the_type_comparator(session, t):
    u1, u2 = uuid.uuid1(), uuid.uuid1()
    session.execute("INSERT INTO %s (k, c, txt, tu) VALUES (0, 0, 'b', %s)" % (t, u2))
    session.execute("INSERT INTO %s (k, c, txt, tu) VALUES (0, 1, 'a', %s)" % (t, u1))
    session.execute("INSERT INTO %s (k, c, txt) VALUES (0, 2, 'c')" % t)
    assert one(session, "SELECT min(txt), max(txt), min(tu), max(tu), min(c), max(c) FROM %s" % t) == (
        'a', 'c', u1, u2, 0, 2)


def test_nulls_skipped_and_empty_input(session, t):
    session.execute("INSERT INTO %s (k, c, i) VALUES (0, 0, 5)" % t)
    session.execute("INSERT INTO %s (k, c) VALUES (0, 1)" % t)
    assert one(session, "SELECT count(*), count(i), sum(i), avg(i), min(txt), max(i) FROM %s" % t) == (
        2, 1, 5, 5, None, 5)
    # no row at all: one row, counts and sums 0, the rest null
    assert one(session, "SELECT count(*), count(i), sum(i), avg(i), sum(d), avg(dec), sum(vi), min(i), max(txt), k "
                        "FROM %s WHERE k = 9" % t) == (0, 0, 0, 0, 0.0, Decimal(0), 0, None, None, None)


def test_plain_columns_names_aliases_and_writetime(session, t):
    session.execute("INSERT INTO %s (k, c, i) VALUES (0, 0, 5) USING TIMESTAMP 1000" % t)
    session.execute("INSERT INTO %s (k, c, i) VALUES (0, 1, 7) USING TIMESTAMP 3000" % t)
    session.execute("INSERT INTO %s (k, c, i) VALUES (0, 2, 6) USING TIMESTAMP 2000" % t)
    rs = session.execute("SELECT k, c, max(i), min(i) AS lo, max(writetime(i)), sum(cast(i as bigint)) FROM %s" % t)
    assert rs.column_names == ['k', 'c', 'system.max(i)', 'lo', 'system.max(writetime(i))',
                               'system.sum(cast(i as bigint))']
    # plain columns take the first row's values
    assert tuple(rs.one()) == (0, 0, 7, 5, 3000, 18)
    # prepared: the metadata matches the rows
    ps = session.prepare("SELECT max(i), avg(i) FROM %s WHERE k = ?" % t)
    assert tuple(session.execute(ps, [0]).one()) == (7, 6)


def test_refusals(session, t):
    sigs = ", ".join("system.sum : (%s) -> %s" % (x, x) for x in
                     ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal", "varint", "counter"))
    refused(session, "SELECT sum(txt) FROM %s" % t,
            "Invalid call to function sum, none of its type signatures match (known type signatures: %s)" % sigs)
    refused(session, "SELECT avg(tu) FROM %s" % t,
            "Invalid call to function avg, none of its type signatures match (known type signatures: %s)"
            % sigs.replace("sum", "avg"))
    refused(session, "SELECT max(i, c) FROM %s" % t,
            "Invalid number of arguments in call to function system.max: 1 required but 2 provided")
    refused(session, "SELECT max(min(i)) FROM %s" % t,
            "aggregate functions cannot be used as arguments of aggregate functions")
    refused(session, "SELECT sum(cast(count(*) as int)) FROM %s" % t,
            "aggregate functions cannot be used as arguments of aggregate functions")
    refused(session, "SELECT min(nope) FROM %s" % t, "Undefined column name nope")
    refused(session, "SELECT max(i) FROM %s PER PARTITION LIMIT 1" % t,
            "PER PARTITION LIMIT is not allowed with aggregate queries.")


def test_system_table(session):
    # system tables aggregate through the same path
    n = one(session, "SELECT count(*), min(keyspace_name), max(keyspace_name) FROM system_schema.keyspaces")
    names = sorted(r.keyspace_name for r in session.execute("SELECT keyspace_name FROM system_schema.keyspaces"))
    assert n == (len(names), names[0], names[-1])


def test_decimal_scales_far_apart_are_refused(session, t):
    session.execute("INSERT INTO %s (k, c, dec) VALUES (0, 0, 1E-200000)" % t)
    session.execute("INSERT INTO %s (k, c, dec) VALUES (0, 1, 1)" % t)
    refused(session, "SELECT sum(dec) FROM %s" % t,
            "decimal scales too far apart to add exactly (0 and 200000)")
    # min and max only compare
    assert one(session, "SELECT min(dec), max(dec) FROM %s" % t) == (Decimal("1E-200000"), Decimal(1))


def test_scalar_functions_over_aggregates(session, t):
    for c, i in ((0, 5), (1, 7), (2, 6)):
        session.execute("INSERT INTO %s (k, c, i) VALUES (%d, %d, %d)" % (t, c // 2, c, i))
    rs = session.execute("SELECT intAsBlob(max(i)), cast(count(*) as text), toJson(sum(i)), k FROM %s" % t)
    assert rs.column_names == ["system.intasblob(system.max(i))", "cast(count as text)",
                               "system.tojson(system.sum(i))", "k"]
    assert tuple(rs.one())[:3] == (b"\x00\x00\x00\x07", "3", "18")
    # per group, and over no row at all
    assert [tuple(r) for r in session.execute(
        "SELECT k, cast(max(i) as bigint), blobAsInt(intAsBlob(min(i))) FROM %s GROUP BY k" % t)] in (
        [(0, 7, 5), (1, 6, 6)], [(1, 6, 6), (0, 7, 5)])
    assert one(session, "SELECT cast(count(*) as text), intAsBlob(max(i)) FROM %s WHERE k = 9" % t) == ("0", None)
