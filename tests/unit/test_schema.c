/* Unit tests for schema/: types, literal conversion with Cassandra's exact
 * messages, validation, comparators, byte-comparable clustering keys
 * (property tests against sch_value_compare), formatting, the catalog's DDL
 * validation, persistence round trips, schema_version and system_schema rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "schema.h"

/* ---- helpers ---- */

static sch_types *g_types;

static int setup_types(void **state)
{
    (void)state;
    g_types = sch_types_create();
    return g_types ? 0 : -1;
}

static int teardown_types(void **state)
{
    (void)state;
    sch_types_destroy(g_types);
    g_types = NULL;
    return 0;
}

static const sch_type *N(sch_type_code c) { return sch_type_native(c); }

static const sch_type *T(const char *text)
{
    const sch_type *t = NULL;
    sib_err err;
    int rc = sch_type_parse(g_types, text, strlen(text), &t, &err);
    if (rc) fail_msg("parse %s: %s", text, err.msg);
    return t;
}

static char *hexs(const uint8_t *p, size_t n)
{
    static char buf[4096];
    size_t k = 0;
    for (size_t i = 0; i < n && k + 3 < sizeof buf; i++) k += (size_t)snprintf(buf + k, 3, "%02x", p[i]);
    buf[k] = 0;
    return buf;
}

static void lit_ok(const sch_type *t, sch_lit_kind k, const char *text, const char *want_hex)
{
    sib_buf b;
    sib_err err = { 0 };
    sib_buf_init(&b);
    int rc = sch_value_from_literal(t, k, text, strlen(text), "c", &b, &err);
    if (rc) fail_msg("literal '%s': unexpected error %s", text, err.msg);
    assert_string_equal(hexs(b.p, b.len), want_hex);
    sib_buf_free(&b);
}

static void lit_err(const sch_type *t, sch_lit_kind k, const char *text, const char *col, const char *msg)
{
    sib_buf b;
    sib_err err = { 0 };
    sib_buf_init(&b);
    int rc = sch_value_from_literal(t, k, text, strlen(text), col, &b, &err);
    assert_int_equal(rc, SIB_EINVAL);
    assert_string_equal(err.msg, msg);
    assert_int_equal(b.len, 0);
    sib_buf_free(&b);
}

/* Converts a literal into a fresh buffer (test helper, asserts success). */
static sib_buf val(const sch_type *t, sch_lit_kind k, const char *text)
{
    sib_buf b;
    sib_err err;
    sib_buf_init(&b);
    if (sch_value_from_literal(t, k, text, strlen(text), "c", &b, &err)) fail_msg("literal %s: %s", text, err.msg);
    return b;
}

static void fmt_is(const sch_type *t, sch_lit_kind k, const char *text, const char *want)
{
    sib_buf v = val(t, k, text), out;
    sib_buf_init(&out);
    sch_value_format(t, v.p, v.len, &out);
    sib_buf_u8(&out, 0);
    assert_string_equal((char *)out.p, want);
    sib_buf_free(&out);
    sib_buf_free(&v);
}

static int cmp_lit(const sch_type *t, sch_lit_kind ka, const char *a, sch_lit_kind kb, const char *b)
{
    sib_buf x = val(t, ka, a), y = val(t, kb, b);
    int c = sch_value_compare(t, x.p, x.len, y.p, y.len);
    sib_buf_free(&x);
    sib_buf_free(&y);
    return c;
}

static int sgn(int x) { return (x > 0) - (x < 0); }

static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return sgn(c);
    return alen < blen ? -1 : alen > blen;
}

/* ---- types ---- */

static void test_tuple_type(void **state)
{
    (void)state;
    sib_err err;
    const sch_type *e2[] = {N(SCH_T_INT), N(SCH_T_VARCHAR)};
    const sch_type *t = sch_type_tuple(g_types, e2, 2);
    assert_non_null(t);
    assert_ptr_equal(t, sch_type_tuple(g_types, e2, 2)); /* interned */
    assert_ptr_not_equal(t, sch_type_tuple(g_types, e2, 1));
    assert_int_equal(sch_type_tuple_size(t), 2);
    assert_ptr_equal(sch_type_tuple_elem(t, 0), N(SCH_T_INT));
    assert_ptr_equal(sch_type_tuple_elem(t, 1), N(SCH_T_VARCHAR));
    assert_null(sch_type_tuple_elem(t, 2));
    sib_buf b;
    sib_buf_init(&b);
    sch_type_cql_name(t, &b);
    sib_buf_u8(&b, 0);
    assert_string_equal((const char *)b.p, "frozen<tuple<int, text>>");
    sib_buf_free(&b);
    /* (1, 'a'), (1, null), (1) and a truncated / overlong value */
    static const uint8_t ok1[] = {0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 1, 'a'};
    static const uint8_t ok2[] = {0, 0, 0, 4, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t ok3[] = {0, 0, 0, 4, 0, 0, 0, 1};
    static const uint8_t bad1[] = {0, 0, 0, 4, 0, 0, 0};
    static const uint8_t bad2[] = {0, 0, 0, 3, 0, 0, 1};
    static const uint8_t bad3[] = {0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 1, 'a', 7};
    assert_int_equal(sch_value_validate(t, ok1, sizeof ok1, &err), 0);
    assert_int_equal(sch_value_validate(t, ok2, sizeof ok2, &err), 0);
    assert_int_equal(sch_value_validate(t, ok3, sizeof ok3, &err), 0);
    assert_int_equal(sch_value_validate(t, bad1, sizeof bad1, &err), SIB_EINVAL);
    assert_int_equal(sch_value_validate(t, bad2, sizeof bad2, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Expected 4 or 0 byte int (3)");
    assert_int_equal(sch_value_validate(t, bad3, sizeof bad3, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Invalid remaining data after end of tuple value");
    /* blob and varint take any bytes without the call (the inline check);
     * a tuple element of either goes the same way */
    static const uint8_t any[] = {0xff, 0x80, 0};
    assert_int_equal(sch_value_validate(N(SCH_T_BLOB), any, sizeof any, &err), 0);
    assert_int_equal(sch_value_validate(N(SCH_T_BLOB), NULL, 0, &err), 0);
    assert_int_equal(sch_value_validate(N(SCH_T_VARINT), any, sizeof any, &err), 0);
    assert_int_equal(sch_value_validate(N(SCH_T_INT), any, sizeof any, &err), SIB_EINVAL);
    const sch_type *eb[] = {N(SCH_T_BLOB)};
    static const uint8_t tb[] = {0, 0, 0, 3, 0xff, 0x80, 0};
    assert_int_equal(sch_value_validate(sch_type_tuple(g_types, eb, 1), tb, sizeof tb, &err), 0);
}

static void test_types(void **state)
{
    (void)state;
    sib_err err;
    const sch_type *t;
    assert_ptr_equal(N(SCH_T_INT), N(SCH_T_INT));
    assert_null(sch_type_native(SCH_T_LIST));
    assert_ptr_equal(sch_type_list(g_types, N(SCH_T_INT), false), sch_type_list(g_types, N(SCH_T_INT), false));
    assert_ptr_not_equal(sch_type_list(g_types, N(SCH_T_INT), false), sch_type_list(g_types, N(SCH_T_INT), true));
    assert_int_equal(sch_type_resolve(g_types, "VARCHAR", 7, NULL, 0, &t, &err), 0);
    assert_ptr_equal(t, N(SCH_T_VARCHAR));
    assert_int_equal(sch_type_resolve(g_types, "foo", 3, NULL, 0, &t, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Unknown type foo");
    const sch_type *sub[1] = { N(SCH_T_INT) };
    assert_int_equal(sch_type_resolve(g_types, "frozen", 6, sub, 1, &t, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "frozen<> is only allowed on collections, tuples, and user-defined types (got int)");

    static const struct { const char *in, *out; } names[] = {
        { "int", "int" }, { "varchar", "text" }, { "frozen<list<int>>", "frozen<list<int>>" },
        { "map<varchar,int>", "map<text, int>" }, { "set<text>", "set<text>" },
        { "frozen<map<text, frozen<list<int>>>>", "frozen<map<text, frozen<list<int>>>>" },
        { "frozen<list<list<int>>>", "frozen<list<frozen<list<int>>>>" }, { "timeuuid", "timeuuid" },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        sib_buf b;
        sib_buf_init(&b);
        sch_type_cql_name(T(names[i].in), &b);
        sib_buf_u8(&b, 0);
        assert_string_equal((char *)b.p, names[i].out);
        assert_ptr_equal(T((char *)b.p), T(names[i].in)); /* round trip to the same interned type */
        sib_buf_free(&b);
    }
    assert_int_equal(sch_type_check_column(T("list<list<int>>"), &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Non-frozen collections are not allowed inside collections: list<list<int>>");
    assert_int_equal(sch_type_check_column(T("set<counter>"), &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Counters are not allowed inside collections: set<counter>");
    assert_int_equal(sch_type_check_column(T("set<duration>"), &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Durations are not allowed inside sets: set<duration>");
    assert_int_equal(sch_type_check_column(T("map<duration, int>"), &err), SIB_EINVAL);
    assert_int_equal(sch_type_check_column(T("frozen<list<list<int>>>"), &err), 0);
    assert_int_equal(sch_type_check_column(T("map<text, frozen<set<int>>>"), &err), 0);
    assert_true(sch_type_is_multicell(T("list<int>")));
    assert_false(sch_type_is_multicell(T("frozen<list<int>>")));
    assert_int_equal(sch_type_fixed_len(N(SCH_T_UUID)), 16);
    assert_int_equal(sch_type_fixed_len(N(SCH_T_VARCHAR)), 0);
    assert_string_equal(sch_type_java_class(SCH_T_DURATION), "org.apache.cassandra.db.marshal.DurationType");
    assert_int_equal(sch_type_parse(g_types, "list<int", 8, &t, &err), SIB_ESYNTAX);
}

/* ---- literals ---- */

static void test_literal_ints(void **state)
{
    (void)state;
    lit_ok(N(SCH_T_INT), SCH_LIT_INTEGER, "1", "00000001");
    lit_ok(N(SCH_T_INT), SCH_LIT_INTEGER, "-2147483648", "80000000");
    lit_err(N(SCH_T_INT), SCH_LIT_INTEGER, "3000000000", "c", "Unable to make int from '3000000000'");
    lit_err(N(SCH_T_INT), SCH_LIT_STRING, "a", "k", "Invalid STRING constant (a) for \"k\" of type int");
    lit_err(N(SCH_T_INT), SCH_LIT_FLOAT, "1.5", "k", "Invalid FLOAT constant (1.5) for \"k\" of type int");
    lit_ok(N(SCH_T_TINYINT), SCH_LIT_INTEGER, "-128", "80");
    lit_err(N(SCH_T_TINYINT), SCH_LIT_INTEGER, "128", "c", "Unable to make byte from '128'");
    lit_ok(N(SCH_T_SMALLINT), SCH_LIT_INTEGER, "-2", "fffe");
    lit_err(N(SCH_T_SMALLINT), SCH_LIT_INTEGER, "40000", "c", "Unable to make short from '40000'");
    lit_ok(N(SCH_T_BIGINT), SCH_LIT_INTEGER, "-9223372036854775808", "8000000000000000");
    lit_err(N(SCH_T_BIGINT), SCH_LIT_INTEGER, "9223372036854775808", "c", "Unable to make long from '9223372036854775808'");
    lit_ok(N(SCH_T_COUNTER), SCH_LIT_INTEGER, "5", "0000000000000005");
    lit_ok(N(SCH_T_VARINT), SCH_LIT_INTEGER, "0", "00");
    lit_ok(N(SCH_T_VARINT), SCH_LIT_INTEGER, "128", "0080");
    lit_ok(N(SCH_T_VARINT), SCH_LIT_INTEGER, "-1", "ff");
    lit_ok(N(SCH_T_VARINT), SCH_LIT_INTEGER, "-128", "80");
    lit_ok(N(SCH_T_VARINT), SCH_LIT_INTEGER, "-129", "ff7f");
    lit_ok(N(SCH_T_VARINT), SCH_LIT_INTEGER, "18446744073709551616", "010000000000000000");
    lit_ok(N(SCH_T_VARINT), SCH_LIT_INTEGER, "-18446744073709551616", "ff0000000000000000");
    lit_ok(N(SCH_T_DECIMAL), SCH_LIT_FLOAT, "1.50", "00000002" "0096");
    lit_ok(N(SCH_T_DECIMAL), SCH_LIT_FLOAT, "-0.001", "00000003" "ff");
    lit_ok(N(SCH_T_DECIMAL), SCH_LIT_FLOAT, "1e10", "fffffff6" "01");
    lit_ok(N(SCH_T_DECIMAL), SCH_LIT_INTEGER, "12", "00000000" "0c");
    lit_err(N(SCH_T_DECIMAL), SCH_LIT_FLOAT, "NaN", "c", "unable to make BigDecimal from 'NaN'");
    lit_err(N(SCH_T_DECIMAL), SCH_LIT_BOOLEAN, "true", "d", "Invalid BOOLEAN constant (true) for \"d\" of type decimal");
}

static void test_literal_floats_bools(void **state)
{
    (void)state;
    lit_ok(N(SCH_T_FLOAT), SCH_LIT_FLOAT, "1.5", "3fc00000");
    lit_ok(N(SCH_T_FLOAT), SCH_LIT_INTEGER, "2", "40000000");
    lit_ok(N(SCH_T_FLOAT), SCH_LIT_FLOAT, "NaN", "7fc00000");
    lit_ok(N(SCH_T_FLOAT), SCH_LIT_FLOAT, "-Infinity", "ff800000");
    lit_ok(N(SCH_T_DOUBLE), SCH_LIT_FLOAT, "-2.5E-3", "bf647ae147ae147b");
    lit_ok(N(SCH_T_DOUBLE), SCH_LIT_FLOAT, "Infinity", "7ff0000000000000");
    lit_err(N(SCH_T_DOUBLE), SCH_LIT_STRING, "1.0", "x", "Invalid STRING constant (1.0) for \"x\" of type double");
    lit_ok(N(SCH_T_BOOLEAN), SCH_LIT_BOOLEAN, "TRUE", "01");
    lit_ok(N(SCH_T_BOOLEAN), SCH_LIT_BOOLEAN, "false", "00");
    lit_err(N(SCH_T_BOOLEAN), SCH_LIT_STRING, "true", "b", "Invalid STRING constant (true) for \"b\" of type boolean");
    lit_err(N(SCH_T_BOOLEAN), SCH_LIT_INTEGER, "1", "b", "Invalid INTEGER constant (1) for \"b\" of type boolean");
}

static void test_literal_strings_blobs_uuids(void **state)
{
    (void)state;
    lit_ok(N(SCH_T_VARCHAR), SCH_LIT_STRING, "héllo", "68c3a96c6c6f");
    lit_ok(N(SCH_T_VARCHAR), SCH_LIT_STRING, "", "");
    lit_ok(N(SCH_T_ASCII), SCH_LIT_STRING, "ab", "6162");
    lit_err(N(SCH_T_ASCII), SCH_LIT_STRING, "h\xc3\xa9", "c", "Invalid ASCII character in string literal: h\xc3\xa9");
    lit_err(N(SCH_T_VARCHAR), SCH_LIT_INTEGER, "1", "t", "Invalid INTEGER constant (1) for \"t\" of type text");
    lit_err(N(SCH_T_VARCHAR), SCH_LIT_UUID, "5c5c1f7e-0000-4000-8000-000000000000", "t",
            "Invalid UUID constant (5c5c1f7e-0000-4000-8000-000000000000) for \"t\" of type text");
    lit_ok(N(SCH_T_BLOB), SCH_LIT_HEX, "0xCAfe00", "cafe00");
    lit_ok(N(SCH_T_BLOB), SCH_LIT_HEX, "0x", "");
    lit_err(N(SCH_T_BLOB), SCH_LIT_HEX, "0xabc", "c", "cannot parse 'abc' as hex bytes");
    lit_err(N(SCH_T_BLOB), SCH_LIT_STRING, "ab", "b", "Invalid STRING constant (ab) for \"b\" of type blob");
    lit_ok(N(SCH_T_UUID), SCH_LIT_UUID, "550E8400-e29b-41d4-a716-446655440000", "550e8400e29b41d4a716446655440000");
    lit_err(N(SCH_T_UUID), SCH_LIT_STRING, "550e8400-e29b-41d4-a716-446655440000", "u",
            "Invalid STRING constant (550e8400-e29b-41d4-a716-446655440000) for \"u\" of type uuid");
    lit_ok(N(SCH_T_TIMEUUID), SCH_LIT_UUID, "e7e5a6b0-b1a3-11ee-8000-000000000001", "e7e5a6b0b1a311ee8000000000000001");
    lit_err(N(SCH_T_TIMEUUID), SCH_LIT_UUID, "550e8400-e29b-41d4-a716-446655440000", "c",
            "TimeUUID supports only version 1 UUIDs");
    lit_ok(N(SCH_T_INET), SCH_LIT_STRING, "127.0.0.1", "7f000001");
    lit_ok(N(SCH_T_INET), SCH_LIT_STRING, "::1", "00000000000000000000000000000001");
    lit_err(N(SCH_T_INET), SCH_LIT_STRING, "300.1.1.1", "c", "Unable to make inet address from '300.1.1.1'");
    lit_err(T("list<int>"), SCH_LIT_INTEGER, "1", "l", "Invalid INTEGER constant (1) for \"l\" of type list<int>");
    lit_err(T("frozen<map<text, int>>"), SCH_LIT_STRING, "x", "m",
            "Invalid STRING constant (x) for \"m\" of type frozen<map<text, int>>");
}

/* Which constant kinds a type takes at all (what types a function's literal
 * argument, Cassandra's testAssignment). */
static void test_literal_accepted(void **state)
{
    (void)state;
    assert_true(sch_literal_accepted(SCH_T_BIGINT, SCH_LIT_INTEGER));
    assert_false(sch_literal_accepted(SCH_T_BIGINT, SCH_LIT_STRING));
    assert_true(sch_literal_accepted(SCH_T_TIMESTAMP, SCH_LIT_STRING));
    assert_true(sch_literal_accepted(SCH_T_TIMESTAMP, SCH_LIT_INTEGER));
    assert_false(sch_literal_accepted(SCH_T_TIMESTAMP, SCH_LIT_BOOLEAN));
    assert_true(sch_literal_accepted(SCH_T_DECIMAL, SCH_LIT_FLOAT));
    assert_false(sch_literal_accepted(SCH_T_INT, SCH_LIT_FLOAT));
    assert_true(sch_literal_accepted(SCH_T_BLOB, SCH_LIT_HEX));
    assert_false(sch_literal_accepted(SCH_T_VARCHAR, SCH_LIT_HEX));
    assert_true(sch_literal_accepted(SCH_T_TIMEUUID, SCH_LIT_UUID));
}

static void test_literal_temporal(void **state)
{
    (void)state;
    const sch_type *ts = N(SCH_T_TIMESTAMP);
    lit_ok(ts, SCH_LIT_STRING, "1970-01-01", "0000000000000000");
    lit_ok(ts, SCH_LIT_STRING, "2024-01-02 03:04:05", "0000018cc820d888");
    lit_ok(ts, SCH_LIT_STRING, "2024-01-02T03:04:05.123Z", "0000018cc820d903");
    lit_ok(ts, SCH_LIT_STRING, "2024-01-02 04:04:05.123+0100", "0000018cc820d903");
    lit_ok(ts, SCH_LIT_STRING, "2024-01-02 04:04:05.123+01:00", "0000018cc820d903");
    lit_ok(ts, SCH_LIT_STRING, "2024-01-02 03:04", "0000018cc820c500");
    lit_ok(ts, SCH_LIT_INTEGER, "-1", "ffffffffffffffff");
    lit_ok(ts, SCH_LIT_STRING, "1000", "00000000000003e8");
    lit_err(ts, SCH_LIT_STRING, "2024-13-01", "c", "Unable to coerce '2024-13-01' to a formatted date (long)");
    lit_err(ts, SCH_LIT_STRING, "yesterday", "c", "Unable to coerce 'yesterday' to a formatted date (long)");
    /* zones after a space (Java's " z"): abbreviations, GMT offsets, RFC 822, tzdata ids */
    lit_ok(ts, SCH_LIT_STRING, "2011-02-03 UTC", "0000012de8d18000");
    lit_ok(ts, SCH_LIT_STRING, "2011-02-03 04:05:00 Europe/Paris", "0000012de97adf60");
    lit_ok(ts, SCH_LIT_STRING, "2011-07-03 04:05:00 Europe/Paris", "00000130edbdd8e0");
    lit_ok(ts, SCH_LIT_STRING, "2011-02-03 04:05 PST", "0000012deb6941e0");
    lit_ok(ts, SCH_LIT_STRING, "2011-02-03 04:05:00 GMT+01:00", "0000012de97adf60");
    lit_ok(ts, SCH_LIT_STRING, "2011-02-03 04:05 -0800", "0000012deb6941e0");
    lit_ok(ts, SCH_LIT_STRING, "2011-02-03T04:05:00.5Z", "0000012de9b1cde5");
    lit_ok(ts, SCH_LIT_STRING, "2011-02-03T04:05:00.123 America/New_York", "0000012deac476db");
    lit_ok(ts, SCH_LIT_STRING, "2011-02-03 04:05:00.000123+0000", "0000012de9b1ce5b");
    lit_err(ts, SCH_LIT_STRING, "2011-02-03 04:05:00.123456+0000", "c",
            "Unable to coerce '2011-02-03 04:05:00.123456+0000' to a formatted date (long)");
    lit_err(ts, SCH_LIT_STRING, "2011-02-03 04:05:00.1000", "c",
            "Unable to coerce '2011-02-03 04:05:00.1000' to a formatted date (long)");
    lit_err(ts, SCH_LIT_STRING, "2011-02-03 Nowhere/Zone", "c",
            "Unable to coerce '2011-02-03 Nowhere/Zone' to a formatted date (long)");
    lit_err(ts, SCH_LIT_STRING, "2011-02-03 ../../etc/passwd", "c",
            "Unable to coerce '2011-02-03 ../../etc/passwd' to a formatted date (long)");
    lit_err(ts, SCH_LIT_FLOAT, "1.5", "t", "Invalid FLOAT constant (1.5) for \"t\" of type timestamp");
    const sch_type *d = N(SCH_T_DATE);
    lit_ok(d, SCH_LIT_STRING, "1970-01-01", "80000000");
    lit_ok(d, SCH_LIT_STRING, "1969-12-31", "7fffffff");
    lit_ok(d, SCH_LIT_STRING, "2024-02-29", "80004d46");
    lit_ok(d, SCH_LIT_INTEGER, "2147483648", "80000000");
    lit_err(d, SCH_LIT_STRING, "2023-02-29", "c", "Unable to coerce '2023-02-29' to a formatted date (long)");
    lit_err(d, SCH_LIT_INTEGER, "-1", "c", "Unable to make unsigned int (for date) from: '-1'");
    const sch_type *tm = N(SCH_T_TIME);
    lit_ok(tm, SCH_LIT_STRING, "00:00:01", "000000003b9aca00");
    lit_ok(tm, SCH_LIT_STRING, "01:02:03.5", "00000362f1e51300");
    lit_ok(tm, SCH_LIT_INTEGER, "1", "0000000000000001");
    lit_err(tm, SCH_LIT_STRING, "25:00:00", "c", "(TimeType) Unable to coerce '25:00:00' to a formatted time (long)");
    lit_err(tm, SCH_LIT_INTEGER, "86400000000000", "c", "Unable to make long (for time) from: '86400000000000'");
}

static void test_literal_duration(void **state)
{
    (void)state;
    const sch_type *d = N(SCH_T_DURATION);
    /* 1h30m = 5400e9 ns; zigzag 10800e9 = 0x9d29229e000 needs a 6-byte vint */
    lit_ok(d, SCH_LIT_DURATION, "1h30m", "0000" "fc09d29229e000");
    lit_ok(d, SCH_LIT_DURATION, "12mo", "1800" "00");
    lit_ok(d, SCH_LIT_DURATION, "1y2mo3w4d", "1c" "32" "00");
    lit_ok(d, SCH_LIT_DURATION, "-2d", "00" "03" "00");
    lit_ok(d, SCH_LIT_DURATION, "P1Y2M3DT4H5M6S", "1c06fc1ac003cfe800");
    lit_ok(d, SCH_LIT_DURATION, "P2W", "00" "1c" "00");
    lit_ok(d, SCH_LIT_DURATION, "P0001-02-03T00:00:01", "1c" "06" "f077359400");
    lit_err(d, SCH_LIT_DURATION, "1m1h", "c", "Unable to convert '1m1h' to a duration");
    lit_err(d, SCH_LIT_INTEGER, "5", "c", "Unable to convert '5' to a duration");
    lit_err(d, SCH_LIT_STRING, "1h", "x", "Invalid STRING constant (1h) for \"x\" of type duration");
}

/* ---- validation ---- */

static void validate_err(const sch_type *t, const char *hex, const char *msg)
{
    uint8_t b[64];
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        b[i] = (uint8_t)v;
    }
    sib_err err = { 0 };
    int rc = sch_value_validate(t, b, n, &err);
    if (!msg) {
        if (rc) fail_msg("validate %s: %s", hex, err.msg);
        return;
    }
    assert_int_equal(rc, SIB_EINVAL);
    assert_string_equal(err.msg, msg);
}

static void test_validate(void **state)
{
    (void)state;
    validate_err(N(SCH_T_INT), "000001", "Expected 4 or 0 byte int (3)");
    validate_err(N(SCH_T_INT), "", NULL);
    validate_err(N(SCH_T_INT), "00000001", NULL);
    validate_err(N(SCH_T_BIGINT), "0000000001", "Expected 8 or 0 byte long (5)");
    validate_err(N(SCH_T_SMALLINT), "01", "Expected 2 bytes for a smallint (1)");
    validate_err(N(SCH_T_TINYINT), "", "Expected 1 byte for a tinyint (0)");
    validate_err(N(SCH_T_FLOAT), "01", "Expected 4 or 0 byte value for a float (1)");
    validate_err(N(SCH_T_DOUBLE), "01", "Expected 8 or 0 byte value for a double (1)");
    validate_err(N(SCH_T_BOOLEAN), "0101", "Expected 1 or 0 byte value (2)");
    validate_err(N(SCH_T_TIMESTAMP), "01", "Expected 8 or 0 byte long for date (1)");
    validate_err(N(SCH_T_DATE), "01", "Expected 4 byte long for date (1)");
    validate_err(N(SCH_T_TIME), "01", "Expected 8 byte long for time (1)");
    validate_err(N(SCH_T_UUID), "0102", "UUID should be 16 or 0 bytes (2)");
    validate_err(N(SCH_T_TIMEUUID), "550e8400e29b41d4a716446655440000", "Invalid version for TimeUUID type.");
    validate_err(N(SCH_T_TIMEUUID), "e7e5a6b0b1a311ee8000000000000001", NULL);
    validate_err(N(SCH_T_INET), "010203", "Expected 4 or 16 byte inetaddress; got 3 bytes");
    validate_err(N(SCH_T_VARCHAR), "c328", "String didn't validate.");
    validate_err(N(SCH_T_VARCHAR), "68c3a9", NULL);
    validate_err(N(SCH_T_ASCII), "80", "Invalid byte for ascii: -128");
    validate_err(N(SCH_T_DECIMAL), "0001", "Expected 0 or at least 4 bytes (2)");
    validate_err(N(SCH_T_DURATION), "0001", "Expected at least 3 bytes for a duration (2)");
    validate_err(N(SCH_T_DURATION), "020300", "The duration months, days and nanoseconds must be all of the same sign (1, -2, 0)");
    validate_err(T("list<int>"), "00000001" "00000004" "000000", "Not enough bytes to read a list");
    validate_err(T("list<int>"), "00000001" "00000003" "000000", "Expected 4 or 0 byte int (3)");
    validate_err(T("list<int>"), "00000001" "ffffffff", "null is not supported inside collections");
    validate_err(T("map<text, int>"), "00000001" "00000001" "61" "00000004" "00000001", NULL);
}

/* ---- comparison ---- */

static void test_compare(void **state)
{
    (void)state;
    assert_true(cmp_lit(N(SCH_T_INT), SCH_LIT_INTEGER, "-1", SCH_LIT_INTEGER, "1") < 0);
    assert_true(cmp_lit(N(SCH_T_TINYINT), SCH_LIT_INTEGER, "-128", SCH_LIT_INTEGER, "127") < 0);
    assert_true(cmp_lit(N(SCH_T_VARCHAR), SCH_LIT_STRING, "ab", SCH_LIT_STRING, "b") < 0);
    assert_true(cmp_lit(N(SCH_T_VARCHAR), SCH_LIT_STRING, "a", SCH_LIT_STRING, "ab") < 0);
    assert_true(cmp_lit(N(SCH_T_VARCHAR), SCH_LIT_STRING, "é", SCH_LIT_STRING, "z") > 0); /* bytewise */
    assert_true(cmp_lit(N(SCH_T_BLOB), SCH_LIT_HEX, "0xff", SCH_LIT_HEX, "0x01") > 0);
    assert_true(cmp_lit(N(SCH_T_DATE), SCH_LIT_STRING, "1969-01-01", SCH_LIT_STRING, "1970-01-01") < 0);
    assert_true(cmp_lit(N(SCH_T_TIMESTAMP), SCH_LIT_INTEGER, "-5", SCH_LIT_INTEGER, "3") < 0);
    assert_true(cmp_lit(N(SCH_T_FLOAT), SCH_LIT_FLOAT, "-0.0", SCH_LIT_FLOAT, "0.0") < 0);
    assert_true(cmp_lit(N(SCH_T_FLOAT), SCH_LIT_FLOAT, "NaN", SCH_LIT_FLOAT, "Infinity") > 0);
    assert_int_equal(cmp_lit(N(SCH_T_DOUBLE), SCH_LIT_FLOAT, "NaN", SCH_LIT_FLOAT, "-NaN"), 0);
    assert_true(cmp_lit(N(SCH_T_DOUBLE), SCH_LIT_FLOAT, "-Infinity", SCH_LIT_FLOAT, "-1e308") < 0);
    assert_int_equal(cmp_lit(N(SCH_T_DECIMAL), SCH_LIT_FLOAT, "1.5", SCH_LIT_FLOAT, "1.50"), 0);
    assert_true(cmp_lit(N(SCH_T_DECIMAL), SCH_LIT_FLOAT, "-1.5", SCH_LIT_FLOAT, "-1.25") < 0);
    assert_true(cmp_lit(N(SCH_T_DECIMAL), SCH_LIT_FLOAT, "0.001", SCH_LIT_FLOAT, "1e-4") > 0);
    assert_true(cmp_lit(N(SCH_T_DECIMAL), SCH_LIT_FLOAT, "10", SCH_LIT_FLOAT, "9.99") > 0);
    assert_true(cmp_lit(N(SCH_T_VARINT), SCH_LIT_INTEGER, "-129", SCH_LIT_INTEGER, "-128") < 0);
    assert_true(cmp_lit(N(SCH_T_VARINT), SCH_LIT_INTEGER, "256", SCH_LIT_INTEGER, "255") > 0);
    assert_true(cmp_lit(N(SCH_T_BOOLEAN), SCH_LIT_BOOLEAN, "false", SCH_LIT_BOOLEAN, "true") < 0);
    /* UUIDType: version first (v1 < v4 although the v1 bytes are larger) */
    assert_true(cmp_lit(N(SCH_T_UUID), SCH_LIT_UUID, "ffffffff-ffff-1fff-8000-000000000000", SCH_LIT_UUID,
                        "00000000-0000-4000-8000-000000000000") < 0);
    /* v1: timestamp order (time_hi before time_low) */
    assert_true(cmp_lit(N(SCH_T_UUID), SCH_LIT_UUID, "ffffffff-0000-1000-8000-000000000000", SCH_LIT_UUID,
                        "00000000-0000-1001-8000-000000000000") < 0);
    /* TimeUUIDType: lsb compared as signed bytes: 0x80 < 0x7f */
    assert_true(cmp_lit(N(SCH_T_TIMEUUID), SCH_LIT_UUID, "00000000-0000-1000-8000-000000000000", SCH_LIT_UUID,
                        "00000000-0000-1000-7f00-000000000000") < 0);
    assert_true(cmp_lit(N(SCH_T_UUID), SCH_LIT_UUID, "00000000-0000-1000-8000-000000000000", SCH_LIT_UUID,
                        "00000000-0000-1000-7f00-000000000000") > 0);
    assert_true(cmp_lit(N(SCH_T_INET), SCH_LIT_STRING, "10.0.0.1", SCH_LIT_STRING, "9.0.0.1") > 0);
    /* empty sorts first */
    uint8_t one[4] = { 0, 0, 0, 1 };
    assert_true(sch_value_compare(N(SCH_T_INT), one, 0, one, 4) < 0);
}

/* ---- formatting ---- */

static void test_format(void **state)
{
    (void)state;
    fmt_is(N(SCH_T_TIMESTAMP), SCH_LIT_STRING, "2024-01-02 03:04:05", "2024-01-02 03:04:05.000000+0000");
    fmt_is(N(SCH_T_TIMESTAMP), SCH_LIT_INTEGER, "-1", "1969-12-31 23:59:59.999000+0000");
    fmt_is(N(SCH_T_DATE), SCH_LIT_STRING, "2024-02-29", "2024-02-29");
    fmt_is(N(SCH_T_TIME), SCH_LIT_STRING, "01:02:03.5", "01:02:03.500000000");
    fmt_is(N(SCH_T_UUID), SCH_LIT_UUID, "550E8400-E29B-41D4-A716-446655440000", "550e8400-e29b-41d4-a716-446655440000");
    fmt_is(N(SCH_T_BLOB), SCH_LIT_HEX, "0xCAFE", "0xcafe");
    fmt_is(N(SCH_T_VARCHAR), SCH_LIT_STRING, "it's", "it's");
    fmt_is(N(SCH_T_BOOLEAN), SCH_LIT_BOOLEAN, "true", "True");
    fmt_is(N(SCH_T_FLOAT), SCH_LIT_FLOAT, "1.5", "1.5");
    fmt_is(N(SCH_T_FLOAT), SCH_LIT_FLOAT, "3.14159265", "3.14159");
    fmt_is(N(SCH_T_DOUBLE), SCH_LIT_FLOAT, "3.14159265", "3.14159265");
    fmt_is(N(SCH_T_DOUBLE), SCH_LIT_FLOAT, "1e20", "1e+20");
    fmt_is(N(SCH_T_DOUBLE), SCH_LIT_FLOAT, "NaN", "NaN");
    fmt_is(N(SCH_T_DOUBLE), SCH_LIT_FLOAT, "-Infinity", "-Infinity");
    fmt_is(N(SCH_T_VARINT), SCH_LIT_INTEGER, "-123456789012345678901234567890", "-123456789012345678901234567890");
    fmt_is(N(SCH_T_VARINT), SCH_LIT_INTEGER, "-128", "-128");
    fmt_is(N(SCH_T_DECIMAL), SCH_LIT_FLOAT, "1.50", "1.50");
    fmt_is(N(SCH_T_DECIMAL), SCH_LIT_FLOAT, "-0.001", "-0.001");
    fmt_is(N(SCH_T_DECIMAL), SCH_LIT_FLOAT, "1e10", "1E+10");
    fmt_is(N(SCH_T_DECIMAL), SCH_LIT_FLOAT, "0.00000001", "1E-8");
    fmt_is(N(SCH_T_INET), SCH_LIT_STRING, "::1", "::1");
    fmt_is(N(SCH_T_DURATION), SCH_LIT_DURATION, "1y2mo3w4d5h6m7s8ms9us10ns", "1y2mo25d5h6m7s8ms9us10ns");
    fmt_is(N(SCH_T_DURATION), SCH_LIT_DURATION, "-1h30m", "-1h30m");
    fmt_is(N(SCH_T_SMALLINT), SCH_LIT_INTEGER, "-7", "-7");
    /* CQL literal form reads back through sch_value_from_literal */
    static const struct { sch_type_code t; sch_lit_kind k; const char *in, *cql; } cq[] = {
        { SCH_T_VARCHAR, SCH_LIT_STRING, "it's", "'it''s'" },
        { SCH_T_TIMESTAMP, SCH_LIT_INTEGER, "0", "'1970-01-01T00:00:00.000Z'" },
        { SCH_T_DOUBLE, SCH_LIT_FLOAT, "0.1", "0.1" },
        { SCH_T_FLOAT, SCH_LIT_FLOAT, "0.1", "0.1" },
        { SCH_T_BOOLEAN, SCH_LIT_BOOLEAN, "false", "false" },
        { SCH_T_BLOB, SCH_LIT_HEX, "0x00ff", "0x00ff" },
        { SCH_T_DATE, SCH_LIT_STRING, "2020-05-06", "'2020-05-06'" },
    };
    for (size_t i = 0; i < sizeof cq / sizeof *cq; i++) {
        sib_buf v = val(N(cq[i].t), cq[i].k, cq[i].in), out;
        sib_buf_init(&out);
        sch_value_format_cql(N(cq[i].t), v.p, v.len, &out);
        sib_buf_u8(&out, 0);
        assert_string_equal((char *)out.p, cq[i].cql);
        sib_buf_free(&out);
        sib_buf_free(&v);
    }
    sib_buf l = val(N(SCH_T_INET), SCH_LIT_STRING, "::ffff:1.2.3.4");
    assert_string_equal(hexs(l.p, l.len), "01020304");
    sib_buf_free(&l);
}

/* ---- collections ---- */

static void test_collections(void **state)
{
    (void)state;
    sib_buf a = val(N(SCH_T_VARCHAR), SCH_LIT_STRING, "b"), b = val(N(SCH_T_VARCHAR), SCH_LIT_STRING, "a");
    sch_val e[3] = { { a.p, (int32_t)a.len }, { b.p, (int32_t)b.len }, { a.p, (int32_t)a.len } };
    sib_buf out, txt;
    sib_err err;
    sib_buf_init(&out);
    sib_buf_init(&txt);
    assert_int_equal(sch_coll_build(T("set<text>"), e, 3, &out, &err), 0);
    assert_string_equal(hexs(out.p, out.len), "00000002" "00000001" "61" "00000001" "62");
    sch_value_format(T("set<text>"), out.p, out.len, &txt);
    sib_buf_u8(&txt, 0);
    assert_string_equal((char *)txt.p, "{'a', 'b'}");
    sib_buf_reset(&out);
    assert_int_equal(sch_coll_build(T("list<text>"), e, 3, &out, &err), 0);
    sib_buf_reset(&txt);
    sch_value_format(T("list<text>"), out.p, out.len, &txt);
    sib_buf_u8(&txt, 0);
    assert_string_equal((char *)txt.p, "['b', 'a', 'b']");
    /* map: sorted by key, last duplicate wins */
    sib_buf one = val(N(SCH_T_INT), SCH_LIT_INTEGER, "1"), two = val(N(SCH_T_INT), SCH_LIT_INTEGER, "2");
    sch_val m[6] = { { a.p, 1 }, { one.p, 4 }, { b.p, 1 }, { two.p, 4 }, { a.p, 1 }, { two.p, 4 } };
    sib_buf_reset(&out);
    assert_int_equal(sch_coll_build(T("map<text, int>"), m, 3, &out, &err), 0);
    sib_buf_reset(&txt);
    sch_value_format(T("map<text, int>"), out.p, out.len, &txt);
    sib_buf_u8(&txt, 0);
    assert_string_equal((char *)txt.p, "{'a': 2, 'b': 2}");
    sch_coll_iter it;
    assert_int_equal(sch_coll_iter_init(&it, T("map<text, int>"), out.p, out.len), 2);
    sch_val k, v;
    assert_true(sch_coll_next(&it, &k, &v));
    assert_int_equal(k.len, 1);
    assert_int_equal(k.p[0], 'a');
    assert_true(sch_coll_next(&it, &k, &v));
    assert_false(sch_coll_next(&it, &k, &v));
    /* normalize an unsorted set coming from a driver */
    uint8_t unsorted[] = { 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 9, 0, 0, 0, 4, 0, 0, 0, 3 };
    sib_buf_reset(&out);
    assert_int_equal(sch_coll_normalize(T("set<int>"), unsorted, sizeof unsorted, &out, &err), 0);
    assert_string_equal(hexs(out.p, out.len), "00000002" "00000004" "00000003" "00000004" "00000009");
    sch_val nul = { NULL, -1 };
    assert_int_equal(sch_coll_build(T("list<int>"), &nul, 1, &out, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "null is not supported inside collections");
    sib_buf_free(&a);
    sib_buf_free(&b);
    sib_buf_free(&one);
    sib_buf_free(&two);
    sib_buf_free(&out);
    sib_buf_free(&txt);
}

/* ---- random values for the byte-comparable property tests ---- */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}
static unsigned rndn(unsigned n) { return (unsigned)(rnd() % n); }

static void gen_literal(const sch_type *t, sch_lit_kind k, const char *text, sib_buf *out)
{
    sib_err err;
    if (sch_value_from_literal(t, k, text, strlen(text), "c", out, &err)) fail_msg("gen %s: %s", text, err.msg);
}

static void gen(const sch_type *t, sib_buf *out)
{
    uint8_t b[16];
    char s[64];
    for (int i = 0; i < 16; i++) b[i] = (uint8_t)rnd();
    bool small = rndn(2);
    int64_t sv = (int64_t)rndn(7) - 3;
    switch (t->code) {
    case SCH_T_TINYINT: sib_buf_u8(out, small ? (uint8_t)sv : b[0]); break;
    case SCH_T_SMALLINT: sib_buf_be16(out, small ? (uint16_t)sv : get_be16(b)); break;
    case SCH_T_INT: sib_buf_be32(out, small ? (uint32_t)sv : get_be32(b)); break;
    case SCH_T_BIGINT: case SCH_T_TIMESTAMP: sib_buf_be64(out, small ? (uint64_t)sv : get_be64(b)); break;
    case SCH_T_TIME: sib_buf_be64(out, small ? (uint64_t)(sv + 3) : get_be64(b) % 86400000000000ull); break;
    case SCH_T_DATE: sib_buf_be32(out, small ? (uint32_t)(0x80000000u + sv) : get_be32(b)); break;
    case SCH_T_BOOLEAN: sib_buf_u8(out, (uint8_t)rndn(2)); break;
    case SCH_T_FLOAT: {
        static const uint32_t sp[] = { 0x7fc00000, 0xffc00001, 0x7f800000, 0xff800000, 0, 0x80000000, 0x3f800000, 0xbf800000 };
        sib_buf_be32(out, small ? sp[rndn(8)] : get_be32(b));
        break;
    }
    case SCH_T_DOUBLE: {
        static const uint64_t sp[] = { 0x7ff8000000000000ull, 0xfff8000000000001ull, 0x7ff0000000000000ull,
                                       0xfff0000000000000ull, 0, 0x8000000000000000ull, 0x3ff0000000000000ull };
        sib_buf_be64(out, small ? sp[rndn(7)] : get_be64(b));
        break;
    }
    case SCH_T_UUID: case SCH_T_TIMEUUID: {
        static const int vers[] = { 1, 4, 0, 2, 15 };
        int ver = t->code == SCH_T_TIMEUUID ? 1 : vers[rndn(5)];
        if (small) for (int i = 0; i < 16; i++) b[i] = (uint8_t)(rndn(3) * 0x7f);
        b[6] = (uint8_t)((b[6] & 0x0F) | ver << 4);
        sib_buf_append(out, b, 16);
        break;
    }
    case SCH_T_VARCHAR: case SCH_T_ASCII: case SCH_T_BLOB: {
        static const char *const pieces_text[] = { "", "a", "b", "\xc3\xa9", "ab" };
        size_t n = rndn(5);
        for (size_t i = 0; i < n; i++) {
            if (t->code == SCH_T_BLOB) {
                static const uint8_t alpha[] = { 0x00, 0x01, 0x61, 0xFE, 0xFF };
                sib_buf_u8(out, alpha[rndn(5)]);
            } else if (rndn(3) == 0) {
                sib_buf_u8(out, 0);
            } else {
                const char *p = pieces_text[rndn(t->code == SCH_T_ASCII ? 3 : 5)];
                sib_buf_append(out, p, strlen(p));
            }
        }
        break;
    }
    case SCH_T_INET:
        if (rndn(2)) { b[0] = (uint8_t)rndn(3); sib_buf_append(out, b, 4); }
        else { b[0] = (uint8_t)rndn(3); sib_buf_append(out, b, 16); }
        break;
    case SCH_T_VARINT: {
        size_t n = 1 + rndn(small ? 2 : 25);
        size_t k = 0;
        if (rndn(2)) s[k++] = '-';
        for (size_t i = 0; i < n; i++) s[k++] = (char)('0' + rndn(10));
        s[k] = 0;
        gen_literal(t, SCH_LIT_INTEGER, s, out);
        break;
    }
    case SCH_T_DECIMAL: {
        size_t n = 1 + rndn(small ? 2 : 12), k = 0;
        if (rndn(2)) s[k++] = '-';
        for (size_t i = 0; i < n; i++) s[k++] = (char)('0' + (rndn(3) ? rndn(10) : 0));
        if (rndn(2)) {
            s[k++] = '.';
            size_t f = rndn(4);
            for (size_t i = 0; i < f; i++) s[k++] = (char)('0' + (rndn(2) ? rndn(10) : 0));
        }
        if (rndn(3) == 0) k += (size_t)snprintf(s + k, 12, "e%d", (int)rndn(41) - 20);
        s[k] = 0;
        gen_literal(t, strchr(s, '.') || strchr(s, 'e') ? SCH_LIT_FLOAT : SCH_LIT_INTEGER, s, out);
        break;
    }
    case SCH_T_LIST: case SCH_T_SET: case SCH_T_MAP: {
        size_t n = rndn(4), stride = t->code == SCH_T_MAP ? 2 : 1;
        sib_buf parts[8];
        sch_val e[8] = { { NULL, 0 } };
        for (size_t i = 0; i < n * stride; i++) {
            sib_buf_init(&parts[i]);
            gen(t->sub[i % stride], &parts[i]);
        }
        for (size_t i = 0; i < n * stride; i++) e[i] = (sch_val){ parts[i].p, (int32_t)parts[i].len };
        sib_err err;
        if (sch_coll_build(t, e, n, out, &err)) fail_msg("coll build: %s", err.msg);
        for (size_t i = 0; i < n * stride; i++) sib_buf_free(&parts[i]);
        break;
    }
    default: fail_msg("no generator for type 0x%x", t->code);
    }
}

/* ---- catalog helpers ---- */

static sch_catalog *mk_catalog(void)
{
    sch_catalog *c = sch_catalog_create();
    assert_non_null(c);
    const char *keys[] = { "class", "replication_factor" }, *vals[] = { "SimpleStrategy", "1" };
    sch_prop p = { .name = "replication", .is_map = true, .keys = keys, .values = vals, .n = 2 };
    sib_err err;
    if (sch_catalog_create_keyspace(c, "ks", &p, 1, false, &err)) fail_msg("create ks: %s", err.msg);
    return c;
}

/* Creates ks.<name> (k int, c1 t1, c2 t2, ..., v int) with the given clustering orders. */
static const sch_table *mk_table(sch_catalog *c, const char *name, const sch_type *const *ct, const bool *desc,
                                 size_t nck)
{
    sch_coldef cols[8];
    const char *ck[8];
    sch_orderdef ord[8];
    static char names[8][24]; /* "c" + a size_t always fits */
    cols[0] = (sch_coldef){ "k", N(SCH_T_INT), false };
    for (size_t i = 0; i < nck; i++) {
        snprintf(names[i], sizeof names[i], "c%zu", i + 1);
        cols[i + 1] = (sch_coldef){ names[i], ct[i], false };
        ck[i] = names[i];
        ord[i] = (sch_orderdef){ names[i], desc[i] };
    }
    cols[nck + 1] = (sch_coldef){ "v", N(SCH_T_INT), false };
    const char *pk[] = { "k" };
    sch_table_spec s = { .keyspace = "ks", .name = name, .cols = cols, .ncols = nck + 2, .npk_decls = 1,
                         .pk = pk, .npk = 1, .ck = ck, .nck = nck, .order = ord, .norder = nck };
    const sch_table *t;
    sib_err err;
    if (sch_catalog_create_table(c, &s, &t, &err)) fail_msg("create table %s: %s", name, err.msg);
    return t;
}

static const char *const ck_types[] = {
    "tinyint", "smallint", "int", "bigint", "timestamp", "time", "date", "boolean", "float", "double", "uuid",
    "timeuuid", "text", "ascii", "blob", "inet", "varint", "decimal", "frozen<list<int>>", "frozen<set<text>>",
    "frozen<map<int, text>>", "frozen<list<frozen<list<varint>>>>", "frozen<map<decimal, uuid>>",
};

#define NV 120

static void test_ck_single_column_order(void **state)
{
    (void)state;
    sch_catalog *c = mk_catalog();
    sch_types *ts = sch_catalog_types(c);
    for (size_t ti = 0; ti < sizeof ck_types / sizeof ck_types[0]; ti++) {
        const sch_type *t;
        sib_err err;
        assert_int_equal(sch_type_parse(ts, ck_types[ti], strlen(ck_types[ti]), &t, &err), 0);
        for (int d = 0; d < 2; d++) {
            char tn[32];
            snprintf(tn, sizeof tn, "t%zu_%d", ti, d);
            bool desc = d;
            const sch_table *tab = mk_table(c, tn, &t, &desc, 1);
            sib_buf v[NV], e[NV], dec[1];
            sib_buf_init(&dec[0]);
            for (int i = 0; i < NV; i++) {
                sib_buf_init(&v[i]);
                sib_buf_init(&e[i]);
                gen(t, &v[i]);
                const uint8_t *vp[1] = { v[i].p ? v[i].p : (const uint8_t *)"" };
                size_t vl[1] = { v[i].len };
                bool fixed_empty = sch_type_fixed_len(t) && !v[i].len;
                int rc = sch_ck_encode(tab, vp, vl, 1, &e[i], &err);
                if (fixed_empty) { assert_int_equal(rc, SIB_EINVAL); continue; }
                if (rc) fail_msg("%s: encode %s: %s", ck_types[ti], hexs(v[i].p, v[i].len), err.msg);
                size_t nv;
                if (sch_ck_decode(tab, e[i].p, e[i].len, dec, &nv, &err))
                    fail_msg("%s: decode %s: %s", ck_types[ti], hexs(v[i].p, v[i].len), err.msg);
                assert_int_equal(nv, 1);
                if (sch_value_compare(t, dec[0].p, dec[0].len, v[i].p, v[i].len))
                    fail_msg("%s: decode mismatch %s", ck_types[ti], hexs(v[i].p, v[i].len));
                bool exact = t->code != SCH_T_DECIMAL && t->code != SCH_T_FLOAT && t->code != SCH_T_DOUBLE &&
                             !strstr(ck_types[ti], "decimal");
                if (exact && (dec[0].len != v[i].len || (v[i].len && memcmp(dec[0].p, v[i].p, v[i].len))))
                    fail_msg("%s: decode not exact", ck_types[ti]);
            }
            for (int i = 0; i < NV; i++)
                for (int j = 0; j < NV; j++) {
                    if (!e[i].len || !e[j].len) continue;
                    int want = sgn(sch_value_compare(t, v[i].p, v[i].len, v[j].p, v[j].len));
                    if (desc) want = -want;
                    int got = bytes_cmp(e[i].p, e[i].len, e[j].p, e[j].len);
                    if (want != got) {
                        char a[200];
                        if (snprintf(a, sizeof a, "%s", hexs(v[i].p, v[i].len)) >= (int)sizeof a) a[sizeof a - 1] = 0;
                        fail_msg("%s %s: %s vs %s: compare %d, memcmp %d", ck_types[ti], desc ? "DESC" : "ASC", a,
                                 hexs(v[j].p, v[j].len), want, got);
                    }
                }
            for (int i = 0; i < NV; i++) {
                sib_buf_free(&v[i]);
                sib_buf_free(&e[i]);
            }
            sib_buf_free(&dec[0]);
        }
    }
    sch_catalog_destroy(c);
}

typedef struct {
    sib_buf v[3];
    sib_buf enc;
} ckrow;

static int tuple_cmp(const sch_table *t, const ckrow *a, const ckrow *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const sch_column *col = sch_table_clustering(t, i);
        int c = sgn(sch_value_compare(col->type, a->v[i].p, a->v[i].len, b->v[i].p, b->v[i].len));
        if (col->order == SCH_ORDER_DESC) c = -c;
        if (c) return c;
    }
    return 0;
}

static void test_ck_composite_prefix_successor(void **state)
{
    (void)state;
    sch_catalog *c = mk_catalog();
    const sch_type *types[3] = { N(SCH_T_INT), N(SCH_T_VARCHAR), N(SCH_T_TIMEUUID) };
    bool desc[3] = { true, false, true };
    const sch_table *t = mk_table(c, "comp", types, desc, 3);
    assert_int_equal(sch_table_clustering_count(t), 3);
    enum { NR = 150 };
    ckrow *rows = calloc(NR, sizeof *rows);
    sib_err err;
    for (int i = 0; i < NR; i++) {
        for (int k = 0; k < 3; k++) {
            sib_buf_init(&rows[i].v[k]);
            if (k == 0) sib_buf_be32(&rows[i].v[k], (uint32_t)((int)rndn(5) - 2));
            else if (k == 1) {
                static const char *const texts[] = { "", "a", "ab", "b" };
                const char *p = texts[rndn(4)];
                sib_buf_append(&rows[i].v[k], p, strlen(p));
            }
            else gen(types[2], &rows[i].v[k]);
        }
        sib_buf_init(&rows[i].enc);
        const uint8_t *vp[3] = { rows[i].v[0].p, rows[i].v[1].p ? rows[i].v[1].p : (const uint8_t *)"", rows[i].v[2].p };
        size_t vl[3] = { rows[i].v[0].len, rows[i].v[1].len, rows[i].v[2].len };
        assert_int_equal(sch_ck_encode(t, vp, vl, 3, &rows[i].enc, &err), 0);
        sib_buf dec[3];
        size_t nv;
        for (int k = 0; k < 3; k++) sib_buf_init(&dec[k]);
        assert_int_equal(sch_ck_decode(t, rows[i].enc.p, rows[i].enc.len, dec, &nv, &err), 0);
        assert_int_equal(nv, 3);
        for (int k = 0; k < 3; k++) {
            assert_int_equal(dec[k].len, rows[i].v[k].len);
            if (dec[k].len) assert_memory_equal(dec[k].p, rows[i].v[k].p, dec[k].len);
            sib_buf_free(&dec[k]);
        }
    }
    for (int i = 0; i < NR; i++)
        for (int j = 0; j < NR; j++)
            assert_int_equal(bytes_cmp(rows[i].enc.p, rows[i].enc.len, rows[j].enc.p, rows[j].enc.len),
                             tuple_cmp(t, &rows[i], &rows[j], 3));
    /* prefixes: enc(prefix) <= every extension < successor(enc(prefix)) <= every greater row */
    for (int i = 0; i < NR; i++)
        for (size_t plen = 1; plen <= 2; plen++) {
            sib_buf p;
            sib_buf_init(&p);
            const uint8_t *vp[2] = { rows[i].v[0].p, rows[i].v[1].p ? rows[i].v[1].p : (const uint8_t *)"" };
            size_t vl[2] = { rows[i].v[0].len, rows[i].v[1].len };
            assert_int_equal(sch_ck_encode(t, vp, vl, plen, &p, &err), 0);
            sib_buf succ;
            sib_buf_init(&succ);
            sib_buf_append(&succ, p.p, p.len);
            bool has = sch_ck_successor(&succ);
            assert_true(has);
            for (int j = 0; j < NR; j++) {
                int pc = tuple_cmp(t, &rows[j], &rows[i], plen);
                const sib_buf *e = &rows[j].enc;
                if (pc == 0) {
                    assert_true(bytes_cmp(p.p, p.len, e->p, e->len) <= 0);
                    assert_true(bytes_cmp(succ.p, succ.len, e->p, e->len) > 0);
                } else if (pc > 0) {
                    assert_true(bytes_cmp(succ.p, succ.len, e->p, e->len) <= 0);
                } else {
                    assert_true(bytes_cmp(p.p, p.len, e->p, e->len) > 0);
                }
            }
            /* a prefix decodes to its components */
            sib_buf dec[3];
            size_t nv;
            for (int k = 0; k < 3; k++) sib_buf_init(&dec[k]);
            assert_int_equal(sch_ck_decode(t, p.p, p.len, dec, &nv, &err), 0);
            assert_int_equal(nv, plen);
            for (int k = 0; k < 3; k++) sib_buf_free(&dec[k]);
            sib_buf_free(&p);
            sib_buf_free(&succ);
        }
    for (int i = 0; i < NR; i++) {
        for (int k = 0; k < 3; k++) sib_buf_free(&rows[i].v[k]);
        sib_buf_free(&rows[i].enc);
    }
    free(rows);
    /* successor edge cases */
    sib_buf b;
    sib_buf_init(&b);
    sib_buf_append(&b, "\x01\xff\xff", 3);
    assert_true(sch_ck_successor(&b));
    assert_string_equal(hexs(b.p, b.len), "02");
    sib_buf_reset(&b);
    sib_buf_append(&b, "\xff", 1);
    assert_false(sch_ck_successor(&b));
    assert_int_equal(b.len, 0);
    sib_buf_free(&b);
    /* errors */
    const uint8_t *vp[1] = { (const uint8_t *)"" };
    size_t vl[1] = { 0 };
    sib_buf_init(&b);
    assert_int_equal(sch_ck_encode(t, vp, vl, 1, &b, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Invalid empty value for clustering column c1 of type int");
    vp[0] = NULL;
    assert_int_equal(sch_ck_encode(t, vp, vl, 1, &b, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Invalid null value for clustering key part c1");
    sib_buf dbuf[3];
    for (int k = 0; k < 3; k++) sib_buf_init(&dbuf[k]);
    assert_int_equal(sch_ck_decode(t, (const uint8_t *)"\x01", 1, dbuf, &vl[0], &err), SIB_ECORRUPT);
    for (int k = 0; k < 3; k++) sib_buf_free(&dbuf[k]);
    sib_buf_free(&b);
    sch_catalog_destroy(c);
}

static void test_pk_encode(void **state)
{
    (void)state;
    sch_catalog *c = mk_catalog();
    sch_coldef cols[] = { { "a", N(SCH_T_INT), false }, { "b", N(SCH_T_VARCHAR), false } };
    const char *pk[] = { "a", "b" };
    sch_table_spec s = { .keyspace = "ks", .name = "p2", .cols = cols, .ncols = 2, .npk_decls = 1, .pk = pk, .npk = 2 };
    const sch_table *t;
    sib_err err;
    assert_int_equal(sch_catalog_create_table(c, &s, &t, &err), 0);
    const uint8_t *vp[2] = { (const uint8_t *)"\0\0\0\1", (const uint8_t *)"foo" };
    size_t vl[2] = { 4, 3 };
    sib_buf b;
    sib_buf_init(&b);
    assert_int_equal(sch_pk_encode(t, vp, vl, 2, &b, &err), 0);
    /* docs/protocol.md section 10 vector */
    assert_string_equal(hexs(b.p, b.len), "000400000001000003666f6f00");
    assert_int_equal(sib_murmur3_token(b.p, b.len), -5247490290428947122LL);
    sch_val out[2];
    assert_int_equal(sch_pk_decode(t, b.p, b.len, out, 2, &err), 0);
    assert_int_equal(out[1].len, 3);
    assert_memory_equal(out[1].p, "foo", 3);
    assert_int_equal(sch_pk_decode(t, b.p, b.len - 1, out, 2, &err), SIB_ECORRUPT);
    /* the view: a composite key is appended after what out holds */
    sch_val key;
    assert_int_equal(sch_pk_encode_view(t, vp, vl, 2, false, &b, &key, &err), 0);
    assert_int_equal(b.len, 26);
    assert_ptr_equal(key.p, b.p + 13);
    assert_string_equal(hexs(key.p, (size_t)key.len), "000400000001000003666f6f00");
    /* unchecked values are validated (a 3-byte int), checked ones are not */
    vl[0] = 3;
    assert_int_equal(sch_pk_encode_view(t, vp, vl, 2, false, &b, &key, &err), SIB_EINVAL);
    assert_int_equal(sch_pk_encode(t, vp, vl, 2, &b, &err), SIB_EINVAL);
    assert_int_equal(b.len, 26);
    assert_int_equal(sch_pk_encode_view(t, vp, vl, 2, true, &b, &key, &err), 0);
    assert_int_equal(key.len, 12);
    vl[0] = 4;
    sib_buf_free(&b);
    sch_coldef c1[] = { { "k", N(SCH_T_VARCHAR), false } };
    const char *pk1[] = { "k" };
    sch_table_spec s1 = { .keyspace = "ks", .name = "p1", .cols = c1, .ncols = 1, .npk_decls = 1, .pk = pk1, .npk = 1 };
    assert_int_equal(sch_catalog_create_table(c, &s1, &t, &err), 0);
    sib_buf_init(&b);
    vl[0] = 0;
    vp[0] = (const uint8_t *)"";
    assert_int_equal(sch_pk_encode(t, vp, vl, 1, &b, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Key may not be empty");
    assert_int_equal(sch_pk_encode_view(t, vp, vl, 1, true, &b, &key, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Key may not be empty");
    /* a one-column key is its value, nothing copied */
    vl[0] = 3;
    vp[0] = (const uint8_t *)"bar";
    assert_int_equal(sch_pk_encode_view(t, vp, vl, 1, true, &b, &key, &err), 0);
    assert_ptr_equal(key.p, vp[0]);
    assert_int_equal(key.len, 3);
    assert_int_equal(b.len, 0);
    assert_int_equal(sch_pk_encode(t, vp, vl, 1, &b, &err), 0);
    assert_memory_equal(b.p, "bar", 3);
    sib_buf_free(&b);
    sch_catalog_destroy(c);
}

/* ---- catalog DDL ---- */

static sch_prop repl_prop(const char *const *keys, const char *const *vals, size_t n)
{
    return (sch_prop){ .name = "replication", .is_map = true, .keys = keys, .values = vals, .n = n };
}

/* Replication prepared against the cluster's datacenters and
 * default_keyspace_rf (Cassandra's strategies' prepareOptions / validate). */
static void test_keyspace_replication_env(void **state)
{
    (void)state;
    sch_catalog *c = mk_catalog();
    sib_err err = { 0 };
    const char *dcs[] = { "dc1", "dc2" };
    sch_ks_env env = { .dcs = dcs, .ndcs = 2, .default_rf = 3 };
    const sch_strmap *m;
    /* NTS without a factor: default_keyspace_rf in every known datacenter */
    const char *k1[] = { "class" }, *v1[] = { "NetworkTopologyStrategy" };
    sch_prop p1 = repl_prop(k1, v1, 1);
    assert_int_equal(sch_catalog_create_keyspace_env(c, "a", &p1, 1, false, &env, &err), 0);
    m = sch_keyspace_replication(sch_catalog_keyspace(c, "a"));
    assert_string_equal(sch_strmap_get(m, "dc1"), "3");
    assert_string_equal(sch_strmap_get(m, "dc2"), "3");
    assert_null(sch_strmap_get(m, "replication_factor"));
    /* replication_factor fills the datacenters not named; "0" drops one */
    const char *k2[] = { "class", "replication_factor", "dc2" }, *v2[] = { "NetworkTopologyStrategy", "2", "0" };
    sch_prop p2 = repl_prop(k2, v2, 3);
    assert_int_equal(sch_catalog_create_keyspace_env(c, "b", &p2, 1, false, &env, &err), 0);
    m = sch_keyspace_replication(sch_catalog_keyspace(c, "b"));
    assert_string_equal(sch_strmap_get(m, "dc1"), "2");
    assert_null(sch_strmap_get(m, "dc2"));
    /* unknown datacenters, another spelling of replication_factor, nothing left */
    const char *k3[] = { "class", "dc9" }, *v3[] = { "NetworkTopologyStrategy", "1" };
    sch_prop p3 = repl_prop(k3, v3, 2);
    assert_int_equal(sch_catalog_create_keyspace_env(c, "x", &p3, 1, false, &env, &err), SIB_ECONFIG);
    assert_string_equal(err.msg, "Unrecognized strategy option {dc9} passed to NetworkTopologyStrategy for keyspace x");
    k3[1] = "Replication_Factor";
    assert_int_equal(sch_catalog_create_keyspace_env(c, "x", &p3, 1, false, &env, &err), SIB_ECONFIG);
    assert_string_equal(err.msg,
                        "Unrecognized strategy option {Replication_Factor} passed to NetworkTopologyStrategy for keyspace x");
    k3[1] = "dc1";
    v3[1] = "0";
    assert_int_equal(sch_catalog_create_keyspace_env(c, "x", &p3, 1, false, &env, &err), SIB_ECONFIG);
    assert_string_equal(err.msg, "Configuration for at least one datacenter must be present");
    /* a key twice */
    const char *k4[] = { "class", "dc1", "dc1" }, *v4[] = { "NetworkTopologyStrategy", "1", "2" };
    sch_prop p4 = repl_prop(k4, v4, 3);
    assert_int_equal(sch_catalog_create_keyspace_env(c, "x", &p4, 1, false, &env, &err), SIB_ESYNTAX);
    assert_string_equal(err.msg, "Multiple definition for property dc1");
    assert_null(sch_catalog_keyspace(c, "x"));
    /* SimpleStrategy without a factor; ALTER to NTS keeps it */
    const char *v5[] = { "SimpleStrategy" };
    sch_prop p5 = repl_prop(k1, v5, 1);
    assert_int_equal(sch_catalog_create_keyspace_env(c, "s", &p5, 1, false, &env, &err), 0);
    assert_string_equal(sch_strmap_get(sch_keyspace_replication(sch_catalog_keyspace(c, "s")), "replication_factor"), "3");
    env.default_rf = 1;
    assert_int_equal(sch_catalog_alter_keyspace_env(c, "s", &p1, 1, false, &env, &err), 0);
    m = sch_keyspace_replication(sch_catalog_keyspace(c, "s"));
    assert_string_equal(sch_strmap_get(m, "dc1"), "3");
    assert_string_equal(sch_strmap_get(m, "dc2"), "3");
    /* ALTER with replication_factor keeps the factors already there */
    const char *k6[] = { "class", "replication_factor" }, *v6[] = { "NetworkTopologyStrategy", "5" };
    sch_prop p6 = repl_prop(k6, v6, 2);
    assert_int_equal(sch_catalog_alter_keyspace_env(c, "b", &p6, 1, false, &env, &err), 0);
    m = sch_keyspace_replication(sch_catalog_keyspace(c, "b"));
    assert_string_equal(sch_strmap_get(m, "dc1"), "2");
    assert_string_equal(sch_strmap_get(m, "dc2"), "5");
    sch_catalog_destroy(c);
}

static void test_keyspace_ddl(void **state)
{
    (void)state;
    sch_catalog *c = sch_catalog_create();
    sib_err err;
    const char *k1[] = { "class", "replication_factor" }, *v1[] = { "SimpleStrategy", "3" };
    sch_prop p = repl_prop(k1, v1, 2);
    assert_int_equal(sch_catalog_create_keyspace(c, "ks1", NULL, 0, false, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Missing mandatory option 'replication'");
    assert_int_equal(sch_catalog_create_keyspace(c, "ks1", &p, 1, false, &err), 0);
    const sch_keyspace *ks = sch_catalog_keyspace(c, "ks1");
    assert_non_null(ks);
    assert_string_equal(sch_keyspace_strategy(ks), "org.apache.cassandra.locator.SimpleStrategy");
    assert_string_equal(sch_strmap_get(sch_keyspace_replication(ks), "replication_factor"), "3");
    assert_true(sch_keyspace_durable_writes(ks));
    assert_int_equal(sch_catalog_create_keyspace(c, "ks1", &p, 1, false, &err), SIB_EEXIST);
    assert_string_equal(err.msg, "Cannot add existing keyspace \"ks1\"");
    assert_int_equal(sch_catalog_create_keyspace(c, "ks1", &p, 1, true, &err), 1);
    {
        const char *bk[] = { "class" }, *bv[] = { "Bogus" };
        sch_prop bp = repl_prop(bk, bv, 1);
        assert_int_equal(sch_catalog_create_keyspace(c, "ks1", &bp, 1, true, &err), 1);
    }
    assert_int_equal(sch_catalog_create_keyspace(c, "bad-name", &p, 1, false, &err), SIB_ECONFIG);
    assert_string_equal(err.msg, "Keyspace name must not be empty, more than 48 characters long, or contain "
                                 "non-alphanumeric-underscore characters (got \"bad-name\")");
    assert_int_equal(sch_catalog_create_keyspace(c, "system", &p, 1, false, &err), SIB_EINVAL);
    const char *k2[] = { "class" }, *v2[] = { "FooStrategy" };
    sch_prop p2 = repl_prop(k2, v2, 1);
    assert_int_equal(sch_catalog_create_keyspace(c, "ks2", &p2, 1, false, &err), SIB_ECONFIG);
    assert_string_equal(err.msg, "Unable to find replication strategy class 'org.apache.cassandra.locator.FooStrategy'");
    const char *v3[] = { "SimpleStrategy" };
    sch_prop p3 = repl_prop(k2, v3, 1);
    assert_int_equal(sch_catalog_create_keyspace(c, "ks2", &p3, 1, false, &err), SIB_ECONFIG);
    assert_string_equal(err.msg, "SimpleStrategy requires a replication_factor strategy option.");
    const char *k4[] = { "class", "datacenter1" }, *v4[] = { "NetworkTopologyStrategy", "x" };
    sch_prop p4 = repl_prop(k4, v4, 2);
    assert_int_equal(sch_catalog_create_keyspace(c, "ks2", &p4, 1, false, &err), SIB_ECONFIG);
    assert_string_equal(err.msg, "Replication factor must be numeric; found x");
    v4[1] = "2";
    sch_prop props[2] = { repl_prop(k4, v4, 2), { .name = "durable_writes", .kind = SCH_LIT_BOOLEAN, .value = "false" } };
    assert_int_equal(sch_catalog_create_keyspace(c, "ks2", props, 2, false, &err), 0);
    assert_false(sch_keyspace_durable_writes(sch_catalog_keyspace(c, "ks2")));
    sch_prop bogus = { .name = "foo", .value = "1" };
    assert_int_equal(sch_catalog_create_keyspace(c, "ks3", &bogus, 1, false, &err), SIB_ESYNTAX);
    assert_string_equal(err.msg, "Unknown property 'foo'");
    /* alter */
    sch_prop dw = { .name = "durable_writes", .kind = SCH_LIT_BOOLEAN, .value = "true" };
    assert_int_equal(sch_catalog_alter_keyspace(c, "ks2", &dw, 1, false, &err), 0);
    assert_true(sch_keyspace_durable_writes(sch_catalog_keyspace(c, "ks2")));
    assert_string_equal(sch_strmap_get(sch_keyspace_replication(sch_catalog_keyspace(c, "ks2")), "datacenter1"), "2");
    assert_int_equal(sch_catalog_alter_keyspace(c, "nope", &dw, 1, false, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Keyspace 'nope' doesn't exist");
    /* name order iteration, system keyspaces included */
    const char *want[] = { "ks1", "ks2", "system", "system_schema", "system_traces", "system_virtual_schema" };
    assert_int_equal(sch_catalog_keyspace_count(c), 6);
    for (size_t i = 0; i < 6; i++) assert_string_equal(sch_keyspace_name(sch_catalog_keyspace_at(c, i)), want[i]);
    /* drop */
    assert_int_equal(sch_catalog_drop_keyspace(c, "ks1", false, &err), 0);
    assert_null(sch_catalog_keyspace(c, "ks1"));
    assert_int_equal(sch_catalog_drop_keyspace(c, "ks1", false, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Keyspace 'ks1' doesn't exist");
    assert_int_equal(sch_catalog_drop_keyspace(c, "ks1", true, &err), 1);
    assert_int_equal(sch_catalog_drop_keyspace(c, "system_schema", false, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "System keyspace 'system_schema' is not user-modifiable");
    sch_catalog_destroy(c);
}

/* A CREATE TABLE spec builder for the error tests. */
typedef struct {
    sch_coldef cols[8];
    const char *pk[4], *ck[4];
    sch_orderdef ord[4];
    sch_table_spec s;
} spec_b;

static void spec_init(spec_b *b, const char *name)
{
    memset(b, 0, sizeof *b);
    b->s.keyspace = "ks";
    b->s.name = name;
    b->s.cols = b->cols;
    b->s.pk = b->pk;
    b->s.ck = b->ck;
    b->s.order = b->ord;
    b->s.npk_decls = 1;
}

static void spec_col(spec_b *b, const char *name, const sch_type *t, bool st)
{
    b->cols[b->s.ncols++] = (sch_coldef){ name, t, st };
}

static void create_err(sch_catalog *c, spec_b *b, int code, const char *msg)
{
    sib_err err = { 0 };
    int rc = sch_catalog_create_table(c, &b->s, NULL, &err);
    if (rc != code) fail_msg("expected %d, got %d (%s) for [%s]", code, rc, err.msg, msg);
    assert_string_equal(err.msg, msg);
}

static void test_table_ddl_errors(void **state)
{
    (void)state;
    sch_catalog *c = mk_catalog();
    spec_b b;
    spec_init(&b, "t");
    spec_col(&b, "k", N(SCH_T_INT), false);
    spec_col(&b, "k", N(SCH_T_INT), false);
    b.pk[b.s.npk++] = "k";
    b.s.display_name = "ks.t";
    create_err(c, &b, SIB_EINVAL, "Duplicate column 'k' declaration for table 'ks.t'");

    spec_init(&b, "t");
    spec_col(&b, "k", N(SCH_T_INT), false);
    b.s.npk_decls = 0;
    create_err(c, &b, SIB_EINVAL, "No PRIMARY KEY specifed for table 't' (exactly one required)");
    b.s.npk_decls = 2;
    b.pk[b.s.npk++] = "k";
    create_err(c, &b, SIB_EINVAL, "Multiple PRIMARY KEY specified for table 't' (exactly one required)");

    spec_init(&b, "t");
    spec_col(&b, "k", N(SCH_T_INT), false);
    b.pk[b.s.npk++] = "x";
    create_err(c, &b, SIB_EINVAL, "Unknown column 'x' referenced in PRIMARY KEY for table 't'");
    b.pk[0] = "k";
    b.ck[b.s.nck++] = "k";
    create_err(c, &b, SIB_EINVAL, "Duplicate column 'k' in PRIMARY KEY clause for table 't'");

    spec_init(&b, "t");
    spec_col(&b, "k", T("list<int>"), false);
    b.pk[b.s.npk++] = "k";
    create_err(c, &b, SIB_EINVAL, "Invalid non-frozen collection type list<int> for PRIMARY KEY column 'k'");
    b.cols[0].type = N(SCH_T_COUNTER);
    create_err(c, &b, SIB_EINVAL, "counter type is not supported for PRIMARY KEY column 'k'");
    b.cols[0].type = N(SCH_T_DURATION);
    create_err(c, &b, SIB_EINVAL, "duration type is not supported for PRIMARY KEY column 'k'");
    b.cols[0].type = N(SCH_T_INT);
    b.cols[0].is_static = true;
    create_err(c, &b, SIB_EINVAL, "Static column 'k' cannot be part of the PRIMARY KEY");

    spec_init(&b, "t");
    spec_col(&b, "k", N(SCH_T_INT), false);
    spec_col(&b, "s", N(SCH_T_INT), true);
    b.pk[b.s.npk++] = "k";
    create_err(c, &b, SIB_EINVAL,
               "Static columns are only useful (and thus allowed) if the table has at least one clustering column");

    spec_init(&b, "t");
    spec_col(&b, "k", N(SCH_T_INT), false);
    spec_col(&b, "a", N(SCH_T_INT), false);
    spec_col(&b, "b", N(SCH_T_INT), false);
    spec_col(&b, "v", N(SCH_T_INT), false);
    b.pk[b.s.npk++] = "k";
    b.ck[b.s.nck++] = "a";
    b.ck[b.s.nck++] = "b";
    b.ord[b.s.norder++] = (sch_orderdef){ "b", true };
    b.ord[b.s.norder++] = (sch_orderdef){ "a", true };
    create_err(c, &b, SIB_EINVAL,
               "The order of columns in the CLUSTERING ORDER directive must match that of the clustering columns (a must appear before b)");
    b.s.norder = 1;
    create_err(c, &b, SIB_EINVAL, "Missing CLUSTERING ORDER for column a");
    b.ord[0] = (sch_orderdef){ "v", true };
    create_err(c, &b, SIB_EINVAL, "Only clustering columns can be defined in CLUSTERING ORDER directive");
    b.ord[0] = (sch_orderdef){ "a", true };
    b.ord[1] = (sch_orderdef){ "a", false };
    b.s.norder = 2;
    create_err(c, &b, SIB_EINVAL, "Duplicate column 'a' in CLUSTERING ORDER BY clause for table 't'");
    b.s.norder = 0;
    b.cols[3].type = N(SCH_T_COUNTER);
    spec_col(&b, "w", N(SCH_T_INT), false);
    create_err(c, &b, SIB_EINVAL, "Cannot mix counter and non counter columns in the same table");

    spec_init(&b, "t");
    spec_col(&b, "k", N(SCH_T_INT), false);
    spec_col(&b, "v", T("list<set<int>>"), false);
    b.pk[b.s.npk++] = "k";
    create_err(c, &b, SIB_EINVAL, "Non-frozen collections are not allowed inside collections: list<set<int>>");
    b.cols[1].type = N(SCH_T_INT);
    b.s.keyspace = "nope";
    create_err(c, &b, SIB_EINVAL, "Keyspace 'nope' doesn't exist");
    b.s.keyspace = "ks";
    b.s.name = "bad-name";
    create_err(c, &b, SIB_ECONFIG,
               "Table name must not be empty, more than 48 characters long, or contain non-alphanumeric-underscore characters (got \"bad-name\")");
    b.s.name = "t";
    sch_prop bad = { .name = "gc_grace_seconds", .kind = SCH_LIT_INTEGER, .value = "-1" };
    b.s.props = &bad;
    b.s.nprops = 1;
    create_err(c, &b, SIB_ECONFIG, "gc_grace_seconds must be greater than or equal to 0 (got -1)");
    sch_prop unk = { .name = "foo", .value = "1" };
    b.s.props = &unk;
    create_err(c, &b, SIB_ESYNTAX, "Unknown property 'foo'");
    b.s.nprops = 0;
    sib_err err;
    assert_int_equal(sch_catalog_create_table(c, &b.s, NULL, &err), 0);
    create_err(c, &b, SIB_EEXIST, "Cannot add already existing table \"t\" to keyspace \"ks\"");
    b.s.if_not_exists = true;
    assert_int_equal(sch_catalog_create_table(c, &b.s, NULL, &err), 1);
    assert_int_equal(sch_catalog_drop_table(c, "ks", "t", false, &err), 0);
    assert_int_equal(sch_catalog_drop_table(c, "ks", "t", false, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Table 'ks.t' doesn't exist");
    assert_int_equal(sch_catalog_drop_table(c, "ks", "t", true, &err), 1);
    sch_catalog_destroy(c);
}

static const sch_table *mk_users(sch_catalog *c)
{
    spec_b b;
    spec_init(&b, "users");
    spec_col(&b, "id", N(SCH_T_UUID), false);
    spec_col(&b, "ts", N(SCH_T_TIMESTAMP), false);
    spec_col(&b, "name", N(SCH_T_VARCHAR), false);
    spec_col(&b, "tags", T("set<text>"), false);
    spec_col(&b, "age", N(SCH_T_INT), false);
    spec_col(&b, "bucket", N(SCH_T_VARCHAR), false);
    spec_col(&b, "s", N(SCH_T_INT), true);
    b.pk[b.s.npk++] = "id";
    b.pk[b.s.npk++] = "bucket";
    b.ck[b.s.nck++] = "ts";
    b.ord[b.s.norder++] = (sch_orderdef){ "ts", true };
    const char *ck[] = { "class" }, *cv[] = { "LeveledCompactionStrategy" };
    sch_prop props[2] = {
        { .name = "comment", .kind = SCH_LIT_STRING, .value = "people" },
        { .name = "compaction", .is_map = true, .keys = ck, .values = cv, .n = 1 },
    };
    b.s.props = props;
    b.s.nprops = 2;
    const sch_table *t;
    sib_err err;
    if (sch_catalog_create_table(c, &b.s, &t, &err)) fail_msg("users: %s", err.msg);
    return t;
}

static void test_table_layout_and_alter(void **state)
{
    (void)state;
    sch_catalog *c = mk_catalog();
    const sch_table *t = mk_users(c);
    /* SELECT * order: pk, clustering, static, regular, each group by name */
    const char *want[] = { "id", "bucket", "ts", "s", "age", "name", "tags" };
    assert_int_equal(sch_table_column_count(t), 7);
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(sch_table_column(t, i)->name, want[i]);
        assert_int_equal(sch_table_column(t, i)->index, i);
    }
    assert_int_equal(sch_table_pk_count(t), 2);
    assert_string_equal(sch_table_pk(t, 1)->name, "bucket");
    assert_int_equal(sch_table_pk(t, 1)->position, 1);
    assert_int_equal(sch_table_clustering(t, 0)->order, SCH_ORDER_DESC);
    assert_int_equal(sch_table_column_by_name(t, "age")->position, -1);
    assert_int_equal(sch_table_column_by_name(t, "s")->kind, SCH_COL_STATIC);
    assert_true(sch_table_has_static(t));
    const sch_table_opts *o = sch_table_options(t);
    assert_string_equal(o->comment, "people");
    assert_int_equal(o->gc_grace_seconds, 864000);
    assert_string_equal(sch_strmap_get(&o->compaction, "class"), "org.apache.cassandra.db.compaction.LeveledCompactionStrategy");
    assert_string_equal(sch_strmap_get(&o->compaction, "max_threshold"), "32");
    assert_string_equal(sch_strmap_get(&o->compression, "class"), "org.apache.cassandra.io.compress.LZ4Compressor");
    assert_ptr_equal(sch_catalog_table_by_id(c, sch_table_id(t)), t);
    uint32_t age_id = sch_table_column_by_name(t, "age")->id;

    sib_err err;
    sch_coldef add[] = { { "email", N(SCH_T_VARCHAR), false } };
    assert_int_equal(sch_catalog_alter_add(c, "ks", "users", add, 1, false, &err), 0);
    t = sch_catalog_table(c, "ks", "users");
    assert_non_null(sch_table_column_by_name(t, "email"));
    assert_int_equal(sch_catalog_alter_add(c, "ks", "users", add, 1, false, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Column with name 'email' already exists");
    assert_int_equal(sch_catalog_alter_add(c, "ks", "users", add, 1, true, &err), 1);
    sch_coldef cnt[] = { { "n", N(SCH_T_COUNTER), false } };
    assert_int_equal(sch_catalog_alter_add(c, "ks", "users", cnt, 1, false, &err), SIB_ECONFIG);
    assert_string_equal(err.msg, "Cannot add a counter column (n) in a non counter table");

    const char *drop[] = { "age" };
    assert_int_equal(sch_catalog_alter_drop(c, "ks", "users", drop, 1, 1700000000000000LL, false, &err), 0);
    t = sch_catalog_table(c, "ks", "users");
    assert_null(sch_table_column_by_name(t, "age"));
    assert_int_equal(sch_table_dropped_count(t), 1);
    assert_string_equal(sch_table_dropped(t, 0)->name, "age");
    assert_int_equal(sch_table_dropped(t, 0)->dropped_time_us, 1700000000000000LL);
    assert_int_equal(sch_catalog_alter_drop(c, "ks", "users", drop, 1, 0, false, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Column age was not found in table 'ks.users'");
    const char *droppk[] = { "ts" };
    assert_int_equal(sch_catalog_alter_drop(c, "ks", "users", droppk, 1, 0, false, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Cannot drop PRIMARY KEY column ts");
    sch_coldef readd_bad[] = { { "age", N(SCH_T_VARCHAR), false } };
    assert_int_equal(sch_catalog_alter_add(c, "ks", "users", readd_bad, 1, false, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Cannot re-add previously dropped column 'age' of type text, incompatible with previous type int");
    sch_coldef readd[] = { { "age", N(SCH_T_INT), false } };
    assert_int_equal(sch_catalog_alter_add(c, "ks", "users", readd, 1, false, &err), 0);
    t = sch_catalog_table(c, "ks", "users");
    assert_true(sch_table_column_by_name(t, "age")->id > age_id); /* ids are never reused */

    const char *from[] = { "ts" }, *to[] = { "when" };
    assert_int_equal(sch_catalog_alter_rename(c, "ks", "users", from, to, 1, &err), 0);
    t = sch_catalog_table(c, "ks", "users");
    assert_string_equal(sch_table_clustering(t, 0)->name, "when");
    const char *from2[] = { "name" }, *to2[] = { "nm" };
    assert_int_equal(sch_catalog_alter_rename(c, "ks", "users", from2, to2, 1, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Cannot rename non PRIMARY KEY column name");
    const char *from3[] = { "when" }, *to3[] = { "id" };
    assert_int_equal(sch_catalog_alter_rename(c, "ks", "users", from3, to3, 1, &err), SIB_EINVAL);

    sch_prop ttl = { .name = "default_time_to_live", .kind = SCH_LIT_INTEGER, .value = "3600" };
    assert_int_equal(sch_catalog_alter_options(c, "ks", "users", &ttl, 1, &err), 0);
    assert_int_equal(sch_table_options(sch_catalog_table(c, "ks", "users"))->default_time_to_live, 3600);
    sch_prop bad = { .name = "bloom_filter_fp_chance", .kind = SCH_LIT_FLOAT, .value = "0" };
    assert_int_equal(sch_catalog_alter_options(c, "ks", "users", &bad, 1, &err), SIB_ECONFIG);
    assert_int_equal(sch_catalog_alter_options(c, "ks", "nope", &ttl, 1, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Table 'ks.nope' doesn't exist");
    assert_int_equal(sch_catalog_alter_options(c, "system", "local", &ttl, 1, &err), SIB_EINVAL);

    /* counter tables */
    spec_b b;
    spec_init(&b, "cnt");
    spec_col(&b, "k", N(SCH_T_INT), false);
    spec_col(&b, "n", N(SCH_T_COUNTER), false);
    b.pk[b.s.npk++] = "k";
    const sch_table *ct;
    assert_int_equal(sch_catalog_create_table(c, &b.s, &ct, &err), 0);
    assert_true(sch_table_is_counter(ct));
    assert_int_equal(sch_catalog_alter_options(c, "ks", "cnt", &ttl, 1, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Cannot set default_time_to_live on a table with counters");
    sch_catalog_destroy(c);
}

/* ---- persistence and schema version ---- */

static void test_persist_and_version(void **state)
{
    (void)state;
    sch_catalog *c = mk_catalog();
    mk_users(c);
    sib_err err;
    const char *drop[] = { "age" };
    assert_int_equal(sch_catalog_alter_drop(c, "ks", "users", drop, 1, 42, false, &err), 0);
    uint8_t v1[16], v2[16], v3[16];
    sch_catalog_schema_version(c, v1);
    sch_catalog_schema_version(c, v2);
    assert_memory_equal(v1, v2, 16);
    assert_int_equal(v1[6] >> 4, 3);

    sib_buf kb, tb;
    sib_buf_init(&kb);
    sib_buf_init(&tb);
    assert_int_equal(sch_catalog_serialize_keyspace(sch_catalog_keyspace(c, "ks"), &kb), 0);
    assert_int_equal(sch_catalog_serialize_table(sch_catalog_table(c, "ks", "users"), &tb), 0);

    sch_catalog *d = sch_catalog_create();
    uint8_t empty_v[16];
    sch_catalog_schema_version(d, empty_v);
    assert_int_equal(sch_catalog_load_table(d, tb.p, tb.len, &err), SIB_ENOTFOUND);
    assert_int_equal(sch_catalog_load_keyspace(d, kb.p, kb.len, &err), 0);
    assert_int_equal(sch_catalog_load_table(d, tb.p, tb.len, &err), 0);
    sch_catalog_schema_version(d, v3);
    assert_memory_equal(v1, v3, 16); /* same schema -> same version */
    const sch_table *a = sch_catalog_table(c, "ks", "users"), *b = sch_catalog_table(d, "ks", "users");
    assert_memory_equal(sch_table_id(a), sch_table_id(b), 16);
    assert_int_equal(sch_table_column_count(a), sch_table_column_count(b));
    for (size_t i = 0; i < sch_table_column_count(a); i++) {
        const sch_column *x = sch_table_column(a, i), *y = sch_table_column(b, i);
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->kind, y->kind);
        assert_int_equal(x->position, y->position);
        assert_int_equal(x->order, y->order);
        assert_int_equal(x->id, y->id);
        sib_buf n1, n2;
        sib_buf_init(&n1);
        sib_buf_init(&n2);
        sch_type_cql_name(x->type, &n1);
        sch_type_cql_name(y->type, &n2);
        assert_int_equal(n1.len, n2.len);
        assert_memory_equal(n1.p, n2.p, n1.len);
        sib_buf_free(&n1);
        sib_buf_free(&n2);
    }
    assert_int_equal(sch_table_dropped_count(b), 1);
    assert_int_equal(sch_table_dropped(b, 0)->dropped_time_us, 42);
    assert_string_equal(sch_table_options(b)->comment, "people");
    /* re-serializing gives identical bytes */
    sib_buf tb2;
    sib_buf_init(&tb2);
    sch_catalog_serialize_table(b, &tb2);
    assert_int_equal(tb.len, tb2.len);
    assert_memory_equal(tb.p, tb2.p, tb.len);
    /* loading the same table again replaces it */
    assert_int_equal(sch_catalog_load_table(d, tb.p, tb.len, &err), 0);
    assert_int_equal(sch_keyspace_table_count(sch_catalog_keyspace(d, "ks")), 1);

    /* corrupt input: every truncation and every single-byte flip fails cleanly or loads something consistent */
    for (size_t n = 0; n < tb.len; n++) {
        sch_catalog *e = sch_catalog_create();
        sch_catalog_load_keyspace(e, kb.p, kb.len, &err);
        assert_int_not_equal(sch_catalog_load_table(e, tb.p, n, &err), 0);
        sch_catalog_destroy(e);
    }
    for (size_t n = 0; n < tb.len; n++) {
        sch_catalog *e = sch_catalog_create();
        sch_catalog_load_keyspace(e, kb.p, kb.len, &err);
        tb.p[n] ^= 0x5A;
        sch_catalog_load_table(e, tb.p, tb.len, &err);
        tb.p[n] ^= 0x5A;
        sch_catalog_destroy(e);
    }
    assert_int_equal(sch_catalog_load_keyspace(d, (const uint8_t *)"SIBX", 4, &err), SIB_ECORRUPT);

    /* version changes on DDL, and changes back when the schema does */
    sch_coldef add[] = { { "x", N(SCH_T_INT), false } };
    assert_int_equal(sch_catalog_alter_add(d, "ks", "users", add, 1, false, &err), 0);
    sch_catalog_schema_version(d, v3);
    assert_memory_not_equal(v1, v3, 16);
    sch_prop cm = { .name = "comment", .kind = SCH_LIT_STRING, .value = "other" };
    uint8_t v4[16];
    assert_int_equal(sch_catalog_alter_options(d, "ks", "users", &cm, 1, &err), 0);
    sch_catalog_schema_version(d, v4);
    assert_memory_not_equal(v3, v4, 16);
    assert_int_equal(sch_catalog_drop_keyspace(d, "ks", false, &err), 0);
    sch_catalog_schema_version(d, v4);
    assert_memory_equal(v4, empty_v, 16);
    /* a failed DDL changes nothing */
    sch_catalog_schema_version(c, v2);
    assert_int_equal(sch_catalog_alter_add(c, "ks", "users", add, 1, false, &err), 0);
    sch_catalog_schema_version(c, v3);
    assert_int_equal(sch_catalog_alter_add(c, "ks", "users", add, 1, false, &err), SIB_EINVAL);
    sch_catalog_schema_version(c, v4);
    assert_memory_equal(v3, v4, 16);
    sib_buf_free(&kb);
    sib_buf_free(&tb);
    sib_buf_free(&tb2);
    sch_catalog_destroy(c);
    sch_catalog_destroy(d);
}

/* ---- system tables and rows ---- */

typedef struct {
    const sch_table *t;
    int nrows;
    char text[512][256]; /* formatted rows (selected columns) */
    const char *cols[8];
    int ncols;
} collect;

static int collect_row(void *ctx, const sch_val *vals, size_t n)
{
    collect *c = ctx;
    assert_int_equal(n, sch_table_column_count(c->t));
    sib_buf b;
    sib_buf_init(&b);
    for (int i = 0; i < c->ncols; i++) {
        const sch_column *col = sch_table_column_by_name(c->t, c->cols[i]);
        assert_non_null(col);
        const sch_val *v = &vals[col->index];
        if (i) sib_buf_append(&b, " | ", 3);
        if (v->len < 0) sib_buf_append(&b, "null", 4);
        else sch_value_format(col->type, v->p, (size_t)v->len, &b);
    }
    sib_buf_u8(&b, 0);
    if (c->nrows < 512) snprintf(c->text[c->nrows], sizeof c->text[0], "%s", (char *)b.p);
    c->nrows++;
    sib_buf_free(&b);
    return 0;
}

static bool has_row(const collect *c, const char *row)
{
    for (int i = 0; i < c->nrows && i < 512; i++)
        if (!strcmp(c->text[i], row)) return true;
    return false;
}

static void rows_of(const sch_catalog *cat, const char *ks, const char *tn, collect *c, const char **cols, int ncols)
{
    memset(c, 0, sizeof *c);
    c->t = sch_catalog_table(cat, ks, tn);
    assert_non_null(c->t);
    for (int i = 0; i < ncols; i++) c->cols[i] = cols[i];
    c->ncols = ncols;
    sib_err err;
    assert_int_equal(sch_catalog_system_rows(cat, c->t, collect_row, c, &err), 0);
}

static void test_system_tables(void **state)
{
    (void)state;
    sch_catalog *c = mk_catalog();
    mk_users(c);
    sib_err err;
    const char *drop[] = { "age" };
    assert_int_equal(sch_catalog_alter_drop(c, "ks", "users", drop, 1, 1700000000000000LL, false, &err), 0);

    const sch_table *local = sch_catalog_table(c, "system", "local");
    assert_non_null(local);
    assert_int_equal(sch_table_kind_of(local), SCH_TABLE_LOCAL_SYSTEM);
    static const char *local_cols[] = { "key", "bootstrapped", "broadcast_address", "broadcast_port", "cluster_name",
                                        "cql_version", "data_center", "gossip_generation", "host_id", "listen_address",
                                        "listen_port", "native_protocol_version", "partitioner", "rack",
                                        "release_version", "rpc_address", "rpc_port", "schema_version", "tokens",
                                        "truncated_at" };
    for (size_t i = 0; i < sizeof local_cols / sizeof *local_cols; i++)
        assert_non_null(sch_table_column_by_name(local, local_cols[i]));
    assert_string_equal(sch_table_column(local, 0)->name, "key");
    assert_int_equal(sch_table_kind_of(sch_catalog_table(c, "system_traces", "events")), SCH_TABLE_LOCAL_SYSTEM);
    const sch_table *p2 = sch_catalog_table(c, "system", "peers_v2");
    assert_int_equal(sch_table_clustering_count(p2), 1);
    assert_string_equal(sch_table_clustering(p2, 0)->name, "peer_port");
    assert_int_equal(sch_catalog_system_rows(c, local, collect_row, NULL, &err), SIB_EINVAL);
    static const char *schema_tables[] = { "keyspaces", "tables", "columns", "types", "functions", "aggregates",
                                           "triggers", "indexes", "views", "dropped_columns" };
    for (size_t i = 0; i < sizeof schema_tables / sizeof *schema_tables; i++) {
        const sch_table *t = sch_catalog_table(c, "system_schema", schema_tables[i]);
        assert_non_null(t);
        assert_int_equal(sch_table_kind_of(t), SCH_TABLE_VIRTUAL_SCHEMA);
    }
    assert_string_equal(sch_keyspace_strategy(sch_catalog_keyspace(c, "system")),
                        "org.apache.cassandra.locator.LocalStrategy");

    collect r;
    const char *kc[] = { "keyspace_name", "durable_writes", "replication" };
    rows_of(c, "system_schema", "keyspaces", &r, kc, 3);
    assert_int_equal(r.nrows, 4);
    assert_string_equal(r.text[0],
                        "ks | True | {'class': 'org.apache.cassandra.locator.SimpleStrategy', 'replication_factor': '1'}");
    assert_string_equal(r.text[1], "system | True | {'class': 'org.apache.cassandra.locator.LocalStrategy'}");
    assert_string_equal(r.text[2], "system_schema | True | {'class': 'org.apache.cassandra.locator.LocalStrategy'}");
    assert_string_equal(r.text[3], "system_traces | True | {'class': 'org.apache.cassandra.locator.LocalStrategy'}");

    const char *tc[] = { "keyspace_name", "table_name", "flags", "comment", "gc_grace_seconds", "compaction",
                         "bloom_filter_fp_chance", "speculative_retry" };
    rows_of(c, "system_schema", "tables", &r, tc, 8);
    assert_string_equal(r.text[0],
                        "ks | users | {'compound'} | people | 864000 | {'class': "
                        "'org.apache.cassandra.db.compaction.LeveledCompactionStrategy', 'max_threshold': '32', "
                        "'min_threshold': '4'} | 0.01 | 99p");
    assert_true(has_row(&r, "system | local | {'compound'} | information about the local node | 0 | {'class': "
                            "'org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy', 'max_threshold': "
                            "'32', 'min_threshold': '4'} | 0.01 | 99p"));
    assert_int_equal(r.nrows, 1 + 3 + 10 + 2);

    const char *cc[] = { "keyspace_name", "table_name", "column_name", "clustering_order", "kind", "position", "type" };
    rows_of(c, "system_schema", "columns", &r, cc, 7);
    assert_string_equal(r.text[0], "ks | users | bucket | none | partition_key | 1 | text");
    assert_string_equal(r.text[1], "ks | users | id | none | partition_key | 0 | uuid");
    assert_string_equal(r.text[2], "ks | users | name | none | regular | -1 | text");
    assert_string_equal(r.text[3], "ks | users | s | none | static | -1 | int");
    assert_string_equal(r.text[4], "ks | users | tags | none | regular | -1 | set<text>");
    assert_string_equal(r.text[5], "ks | users | ts | desc | clustering | 0 | timestamp");
    assert_true(has_row(&r, "system | peers_v2 | peer_port | asc | clustering | 0 | int"));
    /* system_traces: Cassandra 4.0's TraceKeyspace columns */
    assert_true(has_row(&r, "system_traces | sessions | session_id | none | partition_key | 0 | uuid"));
    assert_true(has_row(&r, "system_traces | sessions | parameters | none | regular | -1 | map<text, text>"));
    assert_true(has_row(&r, "system_traces | sessions | coordinator_port | none | regular | -1 | int"));
    assert_true(has_row(&r, "system_traces | events | event_id | asc | clustering | 0 | timeuuid"));
    assert_true(has_row(&r, "system_traces | events | source_elapsed | none | regular | -1 | int"));
    assert_true(has_row(&r, "system_schema | keyspaces | replication | none | regular | -1 | frozen<map<text, text>>"));

    const char *dc[] = { "keyspace_name", "table_name", "column_name", "dropped_time", "kind", "type" };
    rows_of(c, "system_schema", "dropped_columns", &r, dc, 6);
    assert_int_equal(r.nrows, 1);
    assert_string_equal(r.text[0], "ks | users | age | 2023-11-14 22:13:20.000000+0000 | regular | int");

    const char *ec[] = { "keyspace_name" };
    rows_of(c, "system_schema", "types", &r, ec, 1);
    assert_int_equal(r.nrows, 0);
    rows_of(c, "system_virtual_schema", "keyspaces", &r, ec, 1);
    assert_int_equal(r.nrows, 1);
    assert_string_equal(r.text[0], "system_virtual_schema");
    const char *vc[] = { "keyspace_name", "table_name", "column_name", "kind" };
    rows_of(c, "system_virtual_schema", "columns", &r, vc, 4);
    assert_true(has_row(&r, "system_virtual_schema | tables | comment | regular"));
    sch_catalog_destroy(c);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(sch_name_valid("abc_1"));
    assert_false(sch_name_valid(""));
    assert_false(sch_name_valid("a-b"));
    assert_false(sch_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 49 */
    static const struct { const char *in, *out; } q[] = {
        { "abc", "abc" }, { "MyCol", "\"MyCol\"" }, { "select", "\"select\"" }, { "a\"b", "\"a\"\"b\"" },
        { "1a", "\"1a\"" }, { "text", "text" },
    };
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
        sib_buf b;
        sib_buf_init(&b);
        sch_ident_quote(q[i].in, &b);
        sib_buf_u8(&b, 0);
        assert_string_equal((char *)b.p, q[i].out);
        sib_buf_free(&b);
    }
}

/* ---- schema rows and their merge (merge.c) ---- */

/* The definition bytes of ks.<name> (k int PRIMARY KEY, <col> int) with the given id. */
static void def_table_bytes(const char *name, const char *col, uint8_t idbyte, sib_buf *out)
{
    sch_catalog *c = mk_catalog();
    spec_b b;
    uint8_t id[16];
    memset(id, 0, sizeof id);
    id[0] = idbyte;
    id[6] = 0x40;
    spec_init(&b, name);
    spec_col(&b, "k", N(SCH_T_INT), false);
    spec_col(&b, col, N(SCH_T_INT), false);
    b.pk[b.s.npk++] = "k";
    b.s.id = id;
    const sch_table *t;
    sib_err err;
    if (sch_catalog_create_table(c, &b.s, &t, &err)) fail_msg("table: %s", err.msg);
    assert_int_equal(sch_catalog_serialize_table(t, out), 0);
    sch_catalog_destroy(c);
}

static sch_def tdef(const char *name, int64_t ts, const sib_buf *v)
{
    return (sch_def){.kind = SCH_DEF_TABLE, .ks = "ks", .name = name, .ts = ts, .val = v->p, .len = v->len};
}

static void test_def_lww_rule(void **state)
{
    (void)state;
    sib_buf a, b, tomb;
    sib_buf_init(&a);
    sib_buf_init(&b);
    sib_buf_init(&tomb);
    def_table_bytes("t", "x", 0x10, &a);
    def_table_bytes("t", "y", 0x20, &b);
    uint8_t id[16];
    sch_def da = tdef("t", 100, &a), db = tdef("t", 100, &b);
    assert_true(sch_def_table_id(&da, id));
    assert_int_equal(id[0], 0x10);
    /* later timestamp wins, whatever the ids */
    da.ts = 101;
    assert_true(sch_def_compare(&da, &db) > 0);
    assert_true(sch_def_compare(&db, &da) < 0);
    /* same timestamp: the greater table id wins */
    da.ts = 100;
    assert_true(sch_def_compare(&db, &da) > 0);
    assert_int_equal(sch_def_compare(&da, &da), 0);
    /* a DROP wins over a create of the same microsecond, loses to a later one */
    assert_int_equal(sch_def_tombstone(SCH_DEF_TABLE, id, &tomb), 0);
    sch_def dt = tdef("t", 100, &tomb);
    assert_true(sch_def_is_tombstone(&dt) && !sch_def_is_tombstone(&db));
    assert_true(sch_def_compare(&dt, &db) > 0);
    db.ts = 99;
    assert_true(sch_def_compare(&dt, &db) > 0);
    db.ts = 101;
    assert_true(sch_def_compare(&dt, &db) < 0);
    uint8_t tid[16];
    assert_true(sch_def_table_id(&dt, tid));
    assert_memory_equal(tid, id, 16);
    sib_buf_free(&a);
    sib_buf_free(&b);
    sib_buf_free(&tomb);
}

static void test_defs_merge(void **state)
{
    (void)state;
    sib_buf ks, t_old, t_new, u, tomb, kst;
    sib_buf_init(&ks); sib_buf_init(&t_old); sib_buf_init(&t_new); sib_buf_init(&u);
    sib_buf_init(&tomb); sib_buf_init(&kst);
    sch_catalog *c = mk_catalog();
    assert_int_equal(sch_catalog_serialize_keyspace(sch_catalog_keyspace(c, "ks"), &ks), 0);
    sch_catalog_destroy(c);
    def_table_bytes("t", "x", 1, &t_old);
    def_table_bytes("t", "x2", 1, &t_new);
    def_table_bytes("u", "x", 2, &u);
    assert_int_equal(sch_def_tombstone(SCH_DEF_TABLE, NULL, &tomb), 0);
    assert_int_equal(sch_def_tombstone(SCH_DEF_KEYSPACE, NULL, &kst), 0);

    sch_defs *local = sch_defs_create(), *remote = sch_defs_create();
    sch_def k = {.kind = SCH_DEF_KEYSPACE, .ks = "ks", .name = "", .ts = 10, .val = ks.p, .len = ks.len};
    assert_int_equal(sch_defs_put(local, &k), 0);
    sch_def e = tdef("t", 20, &t_new);
    assert_int_equal(sch_defs_put(local, &e), 0);      /* local t is newer */
    e = tdef("u", 30, &tomb);
    assert_int_equal(sch_defs_put(local, &e), 0);      /* u dropped here at 30 */
    assert_int_equal(sch_defs_count(local), 3);
    assert_non_null(sch_defs_get(local, SCH_DEF_KEYSPACE, "ks", NULL));
    assert_null(sch_defs_get(local, SCH_DEF_TABLE, "ks", "nope"));

    /* remote: older t, u created before the drop, a new keyspace with a table,
     * and another keyspace dropped */
    e = tdef("t", 15, &t_old);
    assert_int_equal(sch_defs_put(remote, &e), 0);
    e = tdef("u", 25, &u);
    assert_int_equal(sch_defs_put(remote, &e), 0);
    sch_def k2 = {.kind = SCH_DEF_KEYSPACE, .ks = "ks", .name = "", .ts = 10, .val = ks.p, .len = ks.len};
    assert_int_equal(sch_defs_put(remote, &k2), 0);    /* identical: no winner */
    sch_def gone = {.kind = SCH_DEF_KEYSPACE, .ks = "gone", .name = "", .ts = 5, .val = kst.p, .len = kst.len};
    assert_int_equal(sch_defs_put(remote, &gone), 0);
    const sch_def **w;
    size_t n;
    assert_int_equal(sch_defs_merge(local, remote, &w, &n), 0);
    assert_int_equal(n, 1);                            /* only the unknown keyspace tombstone */
    assert_string_equal(w[0]->ks, "gone");
    free(w);

    /* the other way round: local's newer t and u's tombstone win there */
    assert_int_equal(sch_defs_merge(remote, local, &w, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(w[0]->name, "t");
    assert_int_equal(w[0]->ts, 20);
    assert_string_equal(w[1]->name, "u");
    assert_true(sch_def_is_tombstone(w[1]));
    free(w);

    /* order: keyspace definitions, then tables, then keyspace drops */
    sch_defs *empty = sch_defs_create();
    sch_def ks_drop = {.kind = SCH_DEF_KEYSPACE, .ks = "aaa", .name = "", .ts = 1, .val = kst.p, .len = kst.len};
    assert_int_equal(sch_defs_put(local, &ks_drop), 0);
    assert_int_equal(sch_defs_merge(empty, local, &w, &n), 0);
    assert_int_equal(n, 4);
    assert_true(w[0]->kind == SCH_DEF_KEYSPACE && !sch_def_is_tombstone(w[0]));
    assert_true(w[1]->kind == SCH_DEF_TABLE && w[2]->kind == SCH_DEF_TABLE);
    assert_true(w[3]->kind == SCH_DEF_KEYSPACE && sch_def_is_tombstone(w[3]));
    free(w);
    assert_int_equal(sch_defs_merge(local, empty, &w, &n), 0);
    assert_int_equal(n, 0);
    assert_null(w);

    /* put replaces whatever the timestamp (callers decide) */
    e = tdef("t", 1, &t_old);
    assert_int_equal(sch_defs_put(local, &e), 0);
    assert_int_equal(sch_defs_get(local, SCH_DEF_TABLE, "ks", "t")->ts, 1);

    sch_defs_destroy(empty);
    sch_defs_destroy(local);
    sch_defs_destroy(remote);
    sib_buf_free(&ks); sib_buf_free(&t_old); sib_buf_free(&t_new); sib_buf_free(&u);
    sib_buf_free(&tomb); sib_buf_free(&kst);
}

static void test_defs_snapshot(void **state)
{
    (void)state;
    sib_buf ks, t, tomb, snap, again;
    sib_buf_init(&ks); sib_buf_init(&t); sib_buf_init(&tomb); sib_buf_init(&snap); sib_buf_init(&again);
    sch_catalog *c = mk_catalog();
    assert_int_equal(sch_catalog_serialize_keyspace(sch_catalog_keyspace(c, "ks"), &ks), 0);
    sch_catalog_destroy(c);
    def_table_bytes("t", "x", 7, &t);
    assert_int_equal(sch_def_tombstone(SCH_DEF_TABLE, NULL, &tomb), 0);
    sch_defs *d = sch_defs_create();
    sch_def k = {.kind = SCH_DEF_KEYSPACE, .ks = "ks", .name = "", .ts = 3, .val = ks.p, .len = ks.len};
    sch_def e1 = tdef("t", -5, &t), e2 = tdef("gone", 9, &tomb);
    assert_int_equal(sch_defs_put(d, &e1), 0);
    assert_int_equal(sch_defs_put(d, &k), 0);
    assert_int_equal(sch_defs_put(d, &e2), 0);
    assert_int_equal(sch_defs_encode(d, &snap), 0);

    sib_err err;
    sch_defs *back;
    assert_int_equal(sch_defs_decode(&back, snap.p, snap.len, &err), 0);
    assert_int_equal(sch_defs_count(back), 3);
    const sch_def *x = sch_defs_get(back, SCH_DEF_TABLE, "ks", "t");
    assert_non_null(x);
    assert_int_equal(x->ts, -5);
    assert_int_equal(x->len, t.len);
    assert_memory_equal(x->val, t.p, t.len);
    assert_int_equal(sch_defs_encode(back, &again), 0);
    assert_int_equal(again.len, snap.len);
    assert_memory_equal(again.p, snap.p, snap.len);   /* sorted, so deterministic */
    sch_defs_destroy(back);

    /* every truncation is refused and leaves nothing */
    for (size_t cut = 0; cut < snap.len; cut++) {
        back = (sch_defs *)1;
        assert_int_equal(sch_defs_decode(&back, snap.p, cut, &err), SIB_ECORRUPT);
        assert_null(back);
    }
    /* trailing bytes, another version */
    sib_buf_u8(&snap, 0);
    assert_int_equal(sch_defs_decode(&back, snap.p, snap.len, &err), SIB_ECORRUPT);
    snap.len--;
    snap.p[4] = 2;
    assert_int_equal(sch_defs_decode(&back, snap.p, snap.len, &err), SIB_ECORRUPT);
    snap.p[4] = 1;

    /* a definition filed under another name, a bad name, a repeated key */
    sch_defs *bad = sch_defs_create();
    sch_def wrong = tdef("other", 1, &t);
    assert_int_equal(sch_defs_put(bad, &wrong), 0);
    sib_buf_reset(&again);
    assert_int_equal(sch_defs_encode(bad, &again), 0);
    assert_int_equal(sch_defs_decode(&back, again.p, again.len, &err), SIB_ECORRUPT);
    sch_defs_destroy(bad);
    bad = sch_defs_create();
    sch_def badname = tdef("no-dash", 1, &tomb);
    assert_int_equal(sch_defs_put(bad, &badname), 0);
    sib_buf_reset(&again);
    assert_int_equal(sch_defs_encode(bad, &again), 0);
    assert_int_equal(sch_defs_decode(&back, again.p, again.len, &err), SIB_ECORRUPT);
    sch_defs_destroy(bad);
    bad = sch_defs_create();
    assert_int_equal(sch_defs_put(bad, &e2), 0);
    sib_buf_reset(&again);
    assert_int_equal(sch_defs_encode(bad, &again), 0);
    again.p[5] = 2;                                    /* claim two entries, repeat the one */
    sib_buf_append(&again, again.p + 6, again.len - 6);
    assert_int_equal(sch_defs_decode(&back, again.p, again.len, &err), SIB_ECORRUPT);
    sch_defs_destroy(bad);

    sch_defs_destroy(d);
    sib_buf_free(&ks); sib_buf_free(&t); sib_buf_free(&tomb); sib_buf_free(&snap); sib_buf_free(&again);
}


/* ---- bucketed partition keys (derive.c) ---- */

static void test_bucket_math(void **state)
{
    (void)state;
    int64_t s;
    /* floor from the epoch: negative values go down, not towards zero */
    assert_true(sch_bucket_floor(0, 86400000, &s));
    assert_int_equal(s, 0);
    assert_true(sch_bucket_floor(86399999, 86400000, &s));
    assert_int_equal(s, 0);
    assert_true(sch_bucket_floor(86400000, 86400000, &s));
    assert_int_equal(s, 86400000);
    assert_true(sch_bucket_floor(-1, 86400000, &s));
    assert_int_equal(s, -86400000);
    assert_true(sch_bucket_floor(-86400000, 86400000, &s));
    assert_int_equal(s, -86400000);
    assert_true(sch_bucket_floor(-86400001, 86400000, &s));
    assert_int_equal(s, -172800000);
    assert_true(sch_bucket_floor(17, 5, &s));
    assert_int_equal(s, 15);
    assert_true(sch_bucket_floor(-17, 5, &s));
    assert_int_equal(s, -20);
    assert_false(sch_bucket_floor(INT64_MIN, 7, &s)); /* the start would be below INT64_MIN */
    assert_true(sch_bucket_floor(INT64_MAX, 1000, &s));
    assert_false(sch_bucket_floor(5, 0, &s));

    /* units of each type and back */
    sib_err err;
    int64_t u;
    uint8_t ts[8], d[4], i4[4], i2[2], i1[1];
    put_be64(ts, (uint64_t)(int64_t)-5);
    assert_int_equal(sch_bucket_units(N(SCH_T_TIMESTAMP), ts, 8, &u, &err), 0);
    assert_int_equal(u, -5);
    put_be32(d, (1u << 31) - 3); /* 1969-12-29 */
    assert_int_equal(sch_bucket_units(N(SCH_T_DATE), d, 4, &u, &err), 0);
    assert_int_equal(u, -3);
    put_be32(i4, (uint32_t)-70);
    assert_int_equal(sch_bucket_units(N(SCH_T_INT), i4, 4, &u, &err), 0);
    assert_int_equal(u, -70);
    i2[0] = 0xff; i2[1] = 0xfe;
    assert_int_equal(sch_bucket_units(N(SCH_T_SMALLINT), i2, 2, &u, &err), 0);
    assert_int_equal(u, -2);
    i1[0] = 0x80;
    assert_int_equal(sch_bucket_units(N(SCH_T_TINYINT), i1, 1, &u, &err), 0);
    assert_int_equal(u, -128);
    assert_int_equal(sch_bucket_units(N(SCH_T_INT), i4, 0, &u, &err), SIB_EINVAL); /* empty */
    assert_int_equal(sch_bucket_units(N(SCH_T_VARCHAR), i4, 4, &u, &err), SIB_EINVAL);

    sib_buf b;
    sib_buf_init(&b);
    assert_int_equal(sch_bucket_value(N(SCH_T_DATE), -7, &b, &err), 0);
    assert_int_equal(b.len, 4);
    assert_int_equal(get_be32(b.p), (1u << 31) - 7);
    sib_buf_reset(&b);
    assert_int_equal(sch_bucket_value(N(SCH_T_TINYINT), -130, &b, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "The bucket starting at -130 is out of range for tinyint");
    assert_int_equal(sch_bucket_value(N(SCH_T_INT), (int64_t)INT32_MIN - 1, &b, &err), SIB_EINVAL);
    sib_buf_reset(&b);
    assert_int_equal(sch_bucket_value(N(SCH_T_SMALLINT), -300, &b, &err), 0);
    assert_int_equal(sch_bucket_units(N(SCH_T_SMALLINT), b.p, b.len, &u, &err), 0);
    assert_int_equal(u, -300);
    sib_buf_free(&b);
}

static void test_salt_hash(void **state)
{
    (void)state;
    /* deterministic, in range, spread over every salt */
    unsigned hits[8] = {0};
    for (uint32_t i = 0; i < 800; i++) {
        uint8_t ck[4];
        put_be32(ck, i);
        uint32_t s = sch_salt_of(8, ck, 4);
        assert_true(s < 8);
        assert_int_equal(s, sch_salt_of(8, ck, 4));
        hits[s]++;
    }
    for (int i = 0; i < 8; i++) assert_true(hits[i] > 50);
    assert_int_equal(sch_salt_of(1, (const uint8_t *)"x", 1), 0);
    /* the hash is murmur3's h1: pinned so stored rows keep their salt */
    uint64_t h = (uint64_t)sib_murmur3_h1("abc", 3);
    assert_int_equal(sch_salt_of(5, (const uint8_t *)"abc", 3), (uint32_t)(h % 5));
}

/* ks.<name> (sensor text, ts <type>, v int, PRIMARY KEY ((sensor, BUCKET(ts, w)[, SALT(n)]), ts)) */
static int mk_bucketed(sch_catalog *c, const char *name, const sch_type *tt, sch_lit_kind wk, const char *w,
                       const char *salt, const sch_table **out, sib_err *err)
{
    spec_b b;
    spec_init(&b, name);
    spec_col(&b, "sensor", N(SCH_T_VARCHAR), false);
    spec_col(&b, "ts", tt, false);
    spec_col(&b, "v", N(SCH_T_INT), false);
    b.pk[b.s.npk++] = "sensor";
    if (w) b.pk[b.s.npk++] = "ts_bucket";
    if (salt) b.pk[b.s.npk++] = "salt";
    b.ck[b.s.nck++] = "ts";
    sch_derive_spec d = {.bucket_column = w ? "ts" : NULL, .bucket_width_kind = wk, .bucket_width = w,
                         .salt_count = salt};
    b.s.derive = &d;
    return sch_catalog_create_table(c, &b.s, out, err);
}

static void test_bucket_tables(void **state)
{
    (void)state;
    sch_catalog *c = mk_catalog();
    sib_err err;
    const sch_table *t;
    assert_int_equal(mk_bucketed(c, "m", N(SCH_T_TIMESTAMP), SCH_LIT_DURATION, "1d", "8", &t, &err), 0);
    assert_int_equal(sch_table_pk_count(t), 3);
    assert_string_equal(sch_table_pk(t, 1)->name, "ts_bucket");
    assert_ptr_equal(sch_table_pk(t, 1)->type, N(SCH_T_TIMESTAMP));
    assert_string_equal(sch_table_pk(t, 2)->name, "salt");
    assert_ptr_equal(sch_table_pk(t, 2)->type, N(SCH_T_INT));
    sch_bucket bk;
    sch_salt sl;
    assert_true(sch_table_bucket(t, &bk));
    assert_int_equal(bk.pk_pos, 1);
    assert_int_equal(bk.width, 86400000);
    assert_string_equal(bk.source->name, "ts");
    assert_true(sch_table_salt(t, &sl));
    assert_int_equal(sl.count, 8);
    assert_int_equal(sl.pk_pos, 2);
    assert_true(sch_column_is_derived(t, sch_table_pk(t, 1)));
    assert_false(sch_column_is_derived(t, sch_table_pk(t, 0)));
    sib_buf b;
    sib_buf_init(&b);
    sch_bucket_cql(t, &b);
    sch_salt_cql(t, &b);
    sib_buf_u8(&b, 0);
    assert_string_equal((const char *)b.p, "BUCKET(ts, 1d)SALT(8)");
    /* bucket of a value */
    uint8_t ts[8];
    put_be64(ts, (uint64_t)(int64_t)-1);
    sib_buf_reset(&b);
    assert_int_equal(sch_bucket_of(&bk, ts, 8, &b, &err), 0);
    assert_int_equal((int64_t)get_be64(b.p), -86400000);

    /* persisted with the definition, and loaded back */
    sib_buf tb, kb;
    sib_buf_init(&tb);
    sib_buf_init(&kb);
    assert_int_equal(sch_catalog_serialize_table(t, &tb), 0);
    assert_int_equal(sch_catalog_serialize_keyspace(sch_catalog_keyspace(c, "ks"), &kb), 0);
    sch_catalog *d = sch_catalog_create();
    assert_int_equal(sch_catalog_load_keyspace(d, kb.p, kb.len, &err), 0);
    assert_int_equal(sch_catalog_load_table(d, tb.p, tb.len, &err), 0);
    const sch_table *t2 = sch_catalog_table(d, "ks", "m");
    assert_non_null(t2);
    assert_true(sch_table_bucket(t2, &bk));
    assert_int_equal(bk.width, 86400000);
    assert_string_equal(bk.width_text, "1d");
    assert_true(sch_table_salt(t2, &sl));
    assert_int_equal(sl.count, 8);
    /* a truncated or altered trailer is corrupt */
    assert_int_equal(sch_catalog_load_table(d, tb.p, tb.len - 1, &err), SIB_ECORRUPT);
    sib_buf_u8(&tb, 0);
    assert_int_equal(sch_catalog_load_table(d, tb.p, tb.len, &err), SIB_ECORRUPT);
    sch_catalog_destroy(d);
    sib_buf_free(&tb);
    sib_buf_free(&kb);

    /* other widths and types */
    assert_int_equal(mk_bucketed(c, "h", N(SCH_T_TIMESTAMP), SCH_LIT_DURATION, "1h30m", NULL, &t, &err), 0);
    assert_true(sch_table_bucket(t, &bk));
    assert_int_equal(bk.width, 5400000);
    assert_false(sch_table_salt(t, &sl));
    assert_int_equal(mk_bucketed(c, "d", N(SCH_T_DATE), SCH_LIT_DURATION, "7d", NULL, &t, &err), 0);
    assert_true(sch_table_bucket(t, &bk));
    assert_int_equal(bk.width, 7);
    assert_int_equal(mk_bucketed(c, "i", N(SCH_T_BIGINT), SCH_LIT_INTEGER, "1000", NULL, &t, &err), 0);
    assert_true(sch_table_bucket(t, &bk));
    assert_int_equal(bk.width, 1000);
    assert_int_equal(mk_bucketed(c, "s", N(SCH_T_TIMESTAMP), SCH_LIT_DURATION, NULL, "4", &t, &err), 0);
    assert_false(sch_table_bucket(t, &bk));
    assert_true(sch_table_salt(t, &sl));

    /* refusals */
    assert_int_equal(mk_bucketed(c, "x", N(SCH_T_TIMESTAMP), SCH_LIT_DURATION, "1mo", NULL, NULL, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Invalid width 1mo in BUCKET(ts, 1mo): a timestamp column takes a duration without months, e.g. 1h or 1d");
    assert_int_equal(mk_bucketed(c, "x", N(SCH_T_TIMESTAMP), SCH_LIT_INTEGER, "10", NULL, NULL, &err), SIB_EINVAL);
    assert_int_equal(mk_bucketed(c, "x", N(SCH_T_DATE), SCH_LIT_DURATION, "12h", NULL, NULL, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Invalid width 12h in BUCKET(ts, 12h): a date column takes whole days, e.g. 7d");
    assert_int_equal(mk_bucketed(c, "x", N(SCH_T_INT), SCH_LIT_INTEGER, "0", NULL, NULL, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Invalid width 0 in BUCKET(ts, 0): a int column takes a positive integer width");
    assert_int_equal(mk_bucketed(c, "x", N(SCH_T_VARCHAR), SCH_LIT_INTEGER, "10", NULL, NULL, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "BUCKET(ts, 10): ts must be a timestamp, date or integer column");
    assert_int_equal(mk_bucketed(c, "x", N(SCH_T_TIMESTAMP), SCH_LIT_DURATION, "1d", "0", NULL, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Invalid salt count 0 in SALT(0): it must be between 1 and 1024");

    spec_b sb;
    spec_init(&sb, "y");
    spec_col(&sb, "k", N(SCH_T_INT), false);
    spec_col(&sb, "ts", N(SCH_T_TIMESTAMP), false);
    spec_col(&sb, "c", N(SCH_T_INT), false);
    sb.pk[sb.s.npk++] = "k";
    sb.pk[sb.s.npk++] = "ts_bucket";
    sb.ck[sb.s.nck++] = "c";
    sb.ck[sb.s.nck++] = "ts";
    sch_derive_spec dd = {.bucket_column = "ts", .bucket_width_kind = SCH_LIT_DURATION, .bucket_width = "1d"};
    sb.s.derive = &dd;
    create_err(c, &sb, SIB_EINVAL,
               "BUCKET(ts, 1d) needs ts as the first clustering column, so that bucket order is clustering order");
    spec_init(&sb, "y");
    spec_col(&sb, "k", N(SCH_T_INT), false);
    spec_col(&sb, "v", N(SCH_T_INT), false);
    sb.pk[sb.s.npk++] = "k";
    sb.pk[sb.s.npk++] = "salt";
    sch_derive_spec ds = {.salt_count = "8"};
    sb.s.derive = &ds;
    create_err(c, &sb, SIB_EINVAL, "SALT(8) needs at least one clustering column: the salt is a hash of the clustering key");
    sb.ck[sb.s.nck++] = "v";
    spec_col(&sb, "st", N(SCH_T_INT), true);
    create_err(c, &sb, SIB_EINVAL, "SALT(8) cannot be used with static columns (st): a static row would split across salts");

    /* derived columns and the bucket's source cannot be dropped, renamed; no static column on a salted table */
    const char *drop[] = {"ts_bucket"}, *src[] = {"ts"}, *to[] = {"t2"}, *salt[] = {"salt"};
    assert_int_equal(sch_catalog_alter_drop(c, "ks", "m", drop, 1, 1, false, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Cannot drop column ts_bucket of table ks.m: it is derived by BUCKET(ts, 1d) in the partition key");
    assert_int_equal(sch_catalog_alter_rename(c, "ks", "m", src, to, 1, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Cannot rename column ts of table ks.m: the partition key's BUCKET(ts, 1d) derives from it");
    assert_int_equal(sch_catalog_alter_rename(c, "ks", "m", salt, to, 1, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Cannot rename column salt of table ks.m: it is derived by SALT(8) in the partition key");
    sch_coldef st = {"st", N(SCH_T_INT), true};
    assert_int_equal(sch_catalog_alter_add(c, "ks", "m", &st, 1, false, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Cannot add static column st to a table with SALT(8): a static row would split across salts");
    assert_int_equal(sch_catalog_alter_add(c, "ks", "h", &st, 1, false, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Cannot add static column st to a table with BUCKET(...): a static row would be one per "
                                 "bucket, not one per natural partition");
    spec_init(&sb, "y");
    spec_col(&sb, "k", N(SCH_T_INT), false);
    spec_col(&sb, "ts", N(SCH_T_TIMESTAMP), false);
    spec_col(&sb, "st", N(SCH_T_INT), true);
    sb.pk[sb.s.npk++] = "k";
    sb.pk[sb.s.npk++] = "ts_bucket";
    sb.ck[sb.s.nck++] = "ts";
    sb.s.derive = &dd;
    create_err(c, &sb, SIB_EINVAL, "BUCKET(ts, 1d) cannot be used with static columns (st): a static row would be one "
                                   "per bucket, not one per natural partition");
    sib_buf_free(&b);
    sch_catalog_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_tuple_type),
        cmocka_unit_test(test_literal_ints),
        cmocka_unit_test(test_literal_floats_bools),
        cmocka_unit_test(test_literal_strings_blobs_uuids),
        cmocka_unit_test(test_literal_accepted),
        cmocka_unit_test(test_literal_temporal),
        cmocka_unit_test(test_literal_duration),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_collections),
        cmocka_unit_test(test_ck_single_column_order),
        cmocka_unit_test(test_ck_composite_prefix_successor),
        cmocka_unit_test(test_pk_encode),
        cmocka_unit_test(test_keyspace_ddl),
        cmocka_unit_test(test_keyspace_replication_env),
        cmocka_unit_test(test_table_ddl_errors),
        cmocka_unit_test(test_table_layout_and_alter),
        cmocka_unit_test(test_persist_and_version),
        cmocka_unit_test(test_def_lww_rule),
        cmocka_unit_test(test_defs_merge),
        cmocka_unit_test(test_defs_snapshot),
        cmocka_unit_test(test_system_tables),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_bucket_math),
        cmocka_unit_test(test_salt_hash),
        cmocka_unit_test(test_bucket_tables),
    };
    return cmocka_run_group_tests(tests, setup_types, teardown_types);
}
