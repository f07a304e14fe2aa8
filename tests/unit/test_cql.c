/* test_cql.c: the native protocol layer through its public header: codec,
 * request decoding, response encoding, and an in-process server on an
 * ephemeral 127.0.0.1 port driven over real sockets with a fake executor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cql.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <lz4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const sch_type t_int = {.code = SCH_T_INT};
static const sch_type t_text = {.code = SCH_T_VARCHAR};
static const sch_type t_bigint = {.code = SCH_T_BIGINT};
static const sch_type t_date = {.code = SCH_T_DATE};
static const sch_type t_duration = {.code = SCH_T_DURATION};
static const sch_type t_list_int = {.code = SCH_T_LIST, .sub = {&t_int}};
static const sch_type t_set_int = {.code = SCH_T_SET, .sub = {&t_int}};
static const sch_type t_map_text_set = {.code = SCH_T_MAP, .sub = {&t_text, &t_set_int}};
static const sch_type t_udt = {.code = SCH_T_UDT};
/* tuple<int, text> as schema/ chains it: element, then the rest */
static const sch_type t_tuple_tail = {.code = SCH_T_TUPLE, .frozen = true, .sub = {&t_text, NULL}};
static const sch_type t_tuple = {.code = SCH_T_TUPLE, .frozen = true, .sub = {&t_int, &t_tuple_tail}};
static const sch_type t_list_tuple = {.code = SCH_T_LIST, .sub = {&t_tuple}};

static void assert_bytes(const sib_buf *b, const void *exp, size_t n)
{
    assert_false(b->oom);
    assert_int_equal(b->len, n);
    assert_memory_equal(b->p, exp, n);
}

/* ====================================================================== */
/* codec                                                                  */
/* ====================================================================== */

static void test_header_roundtrip(void **state)
{
    cql_header h = {.version = 0x84, .flags = 0x05, .stream = -1, .opcode = CQL_OP_EVENT, .length = 0x01020304};
    uint8_t p[CQL_HEADER_LEN];
    cql_header_encode(p, &h);
    const uint8_t exp[] = {0x84, 0x05, 0xff, 0xff, 0x0c, 0x01, 0x02, 0x03, 0x04};
    assert_memory_equal(p, exp, sizeof exp);
    cql_header d;
    assert_int_equal(cql_header_decode(p, 9, &d), 0);
    assert_int_equal(d.version, 0x84);
    assert_int_equal(d.flags, 5);
    assert_int_equal(d.stream, -1);
    assert_int_equal(d.opcode, 0x0c);
    assert_int_equal(d.length, 0x01020304);
    assert_int_equal(cql_header_decode(p, 8, &d), SIB_EAGAIN);
    p[2] = 0x7f;
    p[3] = 0xff;
    cql_header_decode(p, 9, &d);
    assert_int_equal(d.stream, 32767);
}

static void test_frame_begin_end(void **state)
{
    sib_buf b;
    sib_buf_init(&b);
    size_t s = cql_frame_begin(&b, 0x84, 0, 7, CQL_OP_RESULT);
    cql_put_int(&b, CQL_RESULT_VOID);
    assert_int_equal(cql_frame_end(&b, s, false, NULL), 0);
    const uint8_t exp[] = {0x84, 0, 0, 7, 8, 0, 0, 0, 4, 0, 0, 0, 1};
    assert_bytes(&b, exp, sizeof exp);

    /* Compressed: flag set, body = BE prefix + block that decodes back. */
    sib_buf_reset(&b);
    s = cql_frame_begin(&b, 0x84, 0, 1, CQL_OP_RESULT);
    for (int i = 0; i < 100; i++) cql_put_int(&b, CQL_RESULT_VOID);
    assert_int_equal(cql_frame_end(&b, s, true, NULL), 0);
    assert_int_equal(b.p[1], CQL_FLAG_COMPRESSION);
    assert_int_equal(get_be32(b.p + 5), b.len - 9);
    assert_int_equal(get_be32(b.p + 9), 400);
    sib_buf out;
    sib_buf_init(&out);
    assert_int_equal(cql_lz4_decompress(b.p + 9, b.len - 9, 1 << 20, &out, NULL), 0);
    assert_int_equal(out.len, 400);
    assert_int_equal(get_be32(out.p + 396), 1);

    /* An empty body stays uncompressed. */
    sib_buf_reset(&b);
    s = cql_frame_begin(&b, 0x84, 0, 1, CQL_OP_READY);
    assert_int_equal(cql_frame_end(&b, s, true, NULL), 0);
    assert_int_equal(b.len, 9);
    assert_int_equal(b.p[1], 0);
    sib_buf_free(&out);
    sib_buf_free(&b);
}

static void test_notation_writers(void **state)
{
    sib_buf b;
    sib_buf_init(&b);
    cql_put_byte(&b, 0xab);
    cql_put_short(&b, 0x0102);
    cql_put_int(&b, -2);
    cql_put_long(&b, 0x0102030405060708LL);
    cql_put_string(&b, "hi", 2);
    cql_put_cstring(&b, NULL);
    cql_put_long_string(&b, "abc", 3);
    cql_put_bytes(&b, "x", 1);
    cql_put_bytes(&b, NULL, -1);
    cql_put_value(&b, NULL, CQL_VALUE_UNSET);
    cql_put_short_bytes(&b, "\x01\x02", 2);
    const uint8_t a4[4] = {127, 0, 0, 1};
    cql_put_inet(&b, a4, 4, 9042);
    const char *list[] = {"a", "bc"};
    cql_put_string_list(&b, list, 2);
    const char *kv[] = {"k", "v"};
    cql_put_string_map(&b, kv, 1);
    const uint8_t exp[] = {
        0xab, 0x01, 0x02, 0xff, 0xff, 0xff, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8,   /* byte short int long */
        0, 2, 'h', 'i', 0, 0,                                              /* strings */
        0, 0, 0, 3, 'a', 'b', 'c',                                          /* long string */
        0, 0, 0, 1, 'x', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,   /* bytes, null, unset */
        0, 2, 1, 2,                                                         /* short bytes */
        4, 127, 0, 0, 1, 0, 0, 0x23, 0x52,                                  /* inet */
        0, 2, 0, 1, 'a', 0, 2, 'b', 'c',                                    /* string list */
        0, 1, 0, 1, 'k', 0, 1, 'v',                                         /* string map */
    };
    assert_bytes(&b, exp, sizeof exp);
    sib_buf_free(&b);
}

static void test_notation_readers(void **state)
{
    sib_buf b;
    sib_buf_init(&b);
    cql_put_byte(&b, 9);
    cql_put_short(&b, 65535);
    cql_put_int(&b, INT32_MIN);
    cql_put_long(&b, -5);
    cql_put_string(&b, "str", 3);
    cql_put_long_string(&b, "long", 4);
    uint8_t u[16];
    for (int i = 0; i < 16; i++) u[i] = (uint8_t)i;
    cql_put_uuid(&b, u);
    cql_put_bytes(&b, "ab", 2);
    cql_put_bytes(&b, NULL, -1);
    cql_put_value(&b, NULL, CQL_VALUE_UNSET);
    cql_put_value(&b, NULL, CQL_VALUE_NULL);
    cql_put_short_bytes(&b, "id", 2);
    uint8_t a6[16] = {0};
    a6[15] = 1;
    cql_put_inet(&b, a6, 16, 7000);
    const char *list[] = {"x", "yy", "zzz"};
    cql_put_string_list(&b, list, 3);
    const char *kv[] = {"CQL_VERSION", "3.0.0", "COMPRESSION", "lz4"};
    cql_put_string_map(&b, kv, 2);

    sib_rd r;
    sib_rd_init(&r, b.p, b.len);
    uint8_t by;
    uint16_t sh;
    int32_t in;
    int64_t lo;
    cql_str s;
    cql_value v;
    assert_true(cql_get_byte(&r, &by) && by == 9);
    assert_true(cql_get_short(&r, &sh) && sh == 65535);
    assert_true(cql_get_int(&r, &in) && in == INT32_MIN);
    assert_true(cql_get_long(&r, &lo) && lo == -5);
    assert_true(cql_get_string(&r, &s) && cql_str_eq(s, "str"));
    assert_true(cql_get_long_string(&r, &s) && cql_str_eq(s, "long"));
    uint8_t u2[16];
    assert_true(cql_get_uuid(&r, u2));
    assert_memory_equal(u, u2, 16);
    assert_true(cql_get_bytes(&r, &v) && v.len == 2 && memcmp(v.p, "ab", 2) == 0);
    assert_true(cql_get_bytes(&r, &v) && v.len == CQL_VALUE_NULL);
    assert_true(cql_get_value(&r, &v) && v.len == CQL_VALUE_UNSET);
    assert_true(cql_get_value(&r, &v) && v.len == CQL_VALUE_NULL);
    assert_true(cql_get_short_bytes(&r, &v) && v.len == 2 && memcmp(v.p, "id", 2) == 0);
    uint8_t addr[16], alen;
    int32_t port;
    assert_true(cql_get_inet(&r, addr, &alen, &port));
    assert_int_equal(alen, 16);
    assert_int_equal(port, 7000);
    assert_int_equal(addr[15], 1);
    cql_str l[4];
    size_t n;
    assert_true(cql_get_string_list(&r, l, 4, &n));
    assert_int_equal(n, 3);
    assert_true(cql_str_eq(l[2], "zzz"));
    cql_str ks[2], vs[2];
    assert_true(cql_get_string_map(&r, ks, vs, 2, &n));
    assert_int_equal(n, 2);
    assert_true(cql_str_eq(ks[1], "COMPRESSION") && cql_str_eq(vs[1], "lz4"));
    assert_int_equal(sib_rd_left(&r), 0);
    assert_false(r.bad);

    /* Every prefix of the encoding fails somewhere, never reads beyond. */
    for (size_t cut = 0; cut < b.len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, b.p, cut);
        sib_rd_init(&r, copy, cut);
        bool ok = cql_get_byte(&r, &by) && cql_get_short(&r, &sh) && cql_get_int(&r, &in) && cql_get_long(&r, &lo) &&
                  cql_get_string(&r, &s) && cql_get_long_string(&r, &s) && cql_get_uuid(&r, u2) &&
                  cql_get_bytes(&r, &v) && cql_get_bytes(&r, &v) && cql_get_value(&r, &v) && cql_get_value(&r, &v) &&
                  cql_get_short_bytes(&r, &v) && cql_get_inet(&r, addr, &alen, &port) &&
                  cql_get_string_list(&r, l, 4, &n) && cql_get_string_map(&r, ks, vs, 2, &n);
        assert_false(ok);
        assert_true(r.bad);
        free(copy);
    }
    sib_buf_free(&b);
}

static void test_notation_invalid(void **state)
{
    sib_rd r;
    cql_value v;
    cql_str s;
    const uint8_t minus3[] = {0xff, 0xff, 0xff, 0xfd};
    sib_rd_init(&r, minus3, 4);
    assert_false(cql_get_value(&r, &v));
    sib_rd_init(&r, minus3, 4);
    assert_true(cql_get_bytes(&r, &v) && v.len == CQL_VALUE_NULL); /* [bytes]: any negative is null */
    sib_rd_init(&r, minus3, 4);
    assert_false(cql_get_long_string(&r, &s));
    const uint8_t bad_inet[] = {5, 1, 2, 3, 4, 5, 0, 0, 0, 0};
    uint8_t addr[16], alen;
    int32_t port;
    sib_rd_init(&r, bad_inet, sizeof bad_inet);
    assert_false(cql_get_inet(&r, addr, &alen, &port));
    const uint8_t big_list[] = {0, 3, 0, 0, 0, 0, 0, 0};
    cql_str l[2];
    size_t n;
    sib_rd_init(&r, big_list, sizeof big_list);
    assert_false(cql_get_string_list(&r, l, 2, &n)); /* more than max */
    const uint8_t payload[] = {0, 1, 0, 1, 'k', 0, 0, 0, 1, 'v', 0xaa};
    sib_rd_init(&r, payload, sizeof payload);
    assert_true(cql_skip_bytes_map(&r));
    assert_int_equal(sib_rd_left(&r), 1);
    sib_rd_init(&r, payload, sizeof payload - 3);
    assert_false(cql_skip_bytes_map(&r));
}

static void test_lz4_roundtrip(void **state)
{
    uint8_t in[5000];
    for (size_t i = 0; i < sizeof in; i++) in[i] = (uint8_t)(i % 7 == 0 ? i : 'a');
    sib_buf z, out;
    sib_buf_init(&z);
    sib_buf_init(&out);
    assert_int_equal(cql_lz4_compress(in, sizeof in, &z, NULL), 0);
    /* u32 BIG-endian uncompressed length, then a raw block. */
    const uint8_t prefix[] = {0x00, 0x00, 0x13, 0x88};
    assert_memory_equal(z.p, prefix, 4);
    char raw[sizeof in];
    assert_int_equal(LZ4_decompress_safe((const char *)z.p + 4, raw, (int)z.len - 4, sizeof raw), sizeof in);
    assert_memory_equal(raw, in, sizeof in);
    assert_int_equal(cql_lz4_decompress(z.p, z.len, sizeof in, &out, NULL), 0);
    assert_int_equal(out.len, sizeof in);
    assert_memory_equal(out.p, in, sizeof in);

    sib_err err = {0};
    sib_buf_reset(&out);
    assert_int_equal(cql_lz4_decompress(z.p, z.len, sizeof in - 1, &out, &err), SIB_EPROTO); /* over max */
    assert_int_equal(cql_lz4_decompress(z.p, 3, 1 << 20, &out, &err), SIB_EPROTO);
    z.p[1] = 0x10; /* prefix lies about the size */
    assert_int_equal(cql_lz4_decompress(z.p, z.len, 1 << 24, &out, &err), SIB_EPROTO);
    z.p[1] = 0;
    for (size_t i = 4; i < z.len; i++) z.p[i] ^= 0x5a; /* garbage block */
    assert_int_equal(cql_lz4_decompress(z.p, z.len, 1 << 20, &out, &err), SIB_EPROTO);

    /* The python driver's form: python-lz4 block with the prefix reversed. */
    sib_buf_reset(&z);
    assert_int_equal(cql_lz4_compress((const uint8_t *)"", 0, &z, NULL), 0);
    sib_buf_reset(&out);
    assert_int_equal(cql_lz4_decompress(z.p, z.len, 16, &out, NULL), 0);
    assert_int_equal(out.len, 0);
    sib_buf_free(&z);
    sib_buf_free(&out);
}

static void test_put_type(void **state)
{
    sib_buf b;
    sib_buf_init(&b);
    assert_int_equal(cql_put_type(&b, &t_int, 4, NULL), 0);
    assert_int_equal(cql_put_type(&b, &t_list_int, 4, NULL), 0);
    assert_int_equal(cql_put_type(&b, &t_map_text_set, 4, NULL), 0);
    const uint8_t exp[] = {0, 9, 0, 0x20, 0, 9, 0, 0x21, 0, 0x0d, 0, 0x22, 0, 9};
    assert_bytes(&b, exp, sizeof exp);

    sib_buf_reset(&b);
    assert_int_equal(cql_put_type(&b, &t_duration, 4, NULL), 0);
    const char dcls[] = "org.apache.cassandra.db.marshal.DurationType";
    assert_int_equal(get_be16(b.p), 0);
    assert_int_equal(get_be16(b.p + 2), strlen(dcls));
    assert_memory_equal(b.p + 4, dcls, strlen(dcls));

    sib_buf_reset(&b);
    assert_int_equal(cql_put_type(&b, &t_date, 4, NULL), 0);
    const uint8_t date4[] = {0, 0x11};
    assert_bytes(&b, date4, 2);
    sib_buf_reset(&b);
    assert_int_equal(cql_put_type(&b, &t_date, 3, NULL), 0);
    assert_int_equal(get_be16(b.p), 0); /* custom in v3 */

    /* tuple: 0x0031, element count, element types (bind types of (a, b) = ? / IN ?) */
    sib_buf_reset(&b);
    assert_int_equal(cql_put_type(&b, &t_list_tuple, 4, NULL), 0);
    const uint8_t tup[] = {0, 0x20, 0, 0x31, 0, 2, 0, 9, 0, 0x0d};
    assert_bytes(&b, tup, sizeof tup);

    sib_err err = {0};
    assert_int_equal(cql_put_type(&b, &t_udt, 4, &err), SIB_EINVAL);
    assert_int_equal(cql_put_type(&b, NULL, 4, &err), SIB_EINVAL);
    const sch_type bad_list = {.code = SCH_T_LIST};
    assert_int_equal(cql_put_type(&b, &bad_list, 4, &err), SIB_EINVAL);
    sib_buf_free(&b);
}

static void test_names(void **state)
{
    assert_string_equal(cql_opcode_name(CQL_OP_BATCH), "BATCH");
    assert_string_equal(cql_opcode_name(0x04), "?");
    assert_string_equal(cql_opcode_name(200), "?");
    assert_string_equal(cql_cl_name(CQL_LOCAL_ONE), "LOCAL_ONE");
    assert_string_equal(cql_write_type_name(CQL_WRITE_CDC), "CDC");
    assert_string_equal(cql_write_type_name((cql_write_type)99), "SIMPLE");
    assert_string_equal(cql_change_name(CQL_CHANGE_DROPPED), "DROPPED");
    assert_string_equal(cql_target_name(CQL_TARGET_AGGREGATE), "AGGREGATE");
}

/* ====================================================================== */
/* request decoding                                                       */
/* ====================================================================== */

static void build_full_query(sib_buf *b)
{
    cql_put_long_string(b, "SELECT * FROM t WHERE k = ?", 27);
    cql_put_short(b, CQL_LOCAL_QUORUM);
    cql_put_byte(b, 0x7f);
    cql_put_short(b, 3);
    cql_put_cstring(b, "k");
    cql_put_value(b, "\x00\x00\x00\x01", 4);
    cql_put_cstring(b, "n");
    cql_put_value(b, NULL, CQL_VALUE_NULL);
    cql_put_cstring(b, "u");
    cql_put_value(b, NULL, CQL_VALUE_UNSET);
    cql_put_int(b, 5000);
    cql_put_bytes(b, "PS", 2);
    cql_put_short(b, CQL_LOCAL_SERIAL);
    cql_put_long(b, 1234567890123LL);
}

static void test_decode_query_all_flags(void **state)
{
    sib_buf b;
    sib_buf_init(&b);
    build_full_query(&b);
    sib_arena *a = sib_arena_create(0);
    cql_query_req q;
    sib_err err = {0};
    assert_int_equal(cql_decode_query(b.p, b.len, 4, a, &q, &err), 0);
    assert_true(cql_str_eq(q.query, "SELECT * FROM t WHERE k = ?"));
    assert_int_equal(q.params.consistency, CQL_LOCAL_QUORUM);
    assert_int_equal(q.params.flags, 0x7f);
    assert_int_equal(q.params.nvalues, 3);
    assert_non_null(q.params.names);
    assert_true(cql_str_eq(q.params.names[0], "k"));
    assert_true(cql_str_eq(q.params.names[2], "u"));
    assert_int_equal(q.params.values[0].len, 4);
    assert_int_equal(get_be32(q.params.values[0].p), 1);
    assert_int_equal(q.params.values[1].len, CQL_VALUE_NULL);
    assert_int_equal(q.params.values[2].len, CQL_VALUE_UNSET);
    assert_true(q.params.skip_metadata);
    assert_int_equal(q.params.page_size, 5000);
    assert_int_equal(q.params.paging_state.len, 2);
    assert_memory_equal(q.params.paging_state.p, "PS", 2);
    assert_int_equal(q.params.serial_consistency, CQL_LOCAL_SERIAL);
    assert_int_equal(q.params.timestamp, 1234567890123LL);

    /* v3 has no unset values. */
    assert_int_equal(cql_decode_query(b.p, b.len, 3, a, &q, &err), SIB_EPROTO);

    /* Every truncation is an error, never a crash. */
    for (size_t cut = 0; cut < b.len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, b.p, cut);
        assert_int_equal(cql_decode_query(copy, cut, 4, a, &q, &err), SIB_EPROTO);
        free(copy);
    }
    /* Trailing bytes too. */
    sib_buf_u8(&b, 0);
    assert_int_equal(cql_decode_query(b.p, b.len, 4, a, &q, &err), SIB_EPROTO);
    sib_arena_destroy(a);
    sib_buf_free(&b);
}

static void test_decode_query_minimal(void **state)
{
    const uint8_t body[] = {0, 0, 0, 3, 'U', 'S', 'E', 0, 1, 0};
    sib_arena *a = sib_arena_create(0);
    cql_query_req q;
    assert_int_equal(cql_decode_query(body, sizeof body, 4, a, &q, NULL), 0);
    assert_true(cql_str_eq(q.query, "USE"));
    assert_int_equal(q.params.consistency, CQL_ONE);
    assert_int_equal(q.params.nvalues, 0);
    assert_null(q.params.values);
    assert_null(q.params.names);
    assert_false(q.params.skip_metadata);
    assert_int_equal(q.params.page_size, -1);
    assert_int_equal(q.params.paging_state.len, CQL_VALUE_NULL);
    assert_int_equal(q.params.serial_consistency, CQL_SERIAL);
    assert_true(q.params.timestamp == INT64_MIN);

    /* Bad consistency, unknown flag bit, huge value count with no bytes. */
    sib_err err = {0};
    const uint8_t bad_cl[] = {0, 0, 0, 0, 0, 0x20, 0};
    assert_int_equal(cql_decode_query(bad_cl, sizeof bad_cl, 4, a, &q, &err), SIB_EPROTO);
    const uint8_t bad_flag[] = {0, 0, 0, 0, 0, 1, 0x80};
    assert_int_equal(cql_decode_query(bad_flag, sizeof bad_flag, 4, a, &q, &err), SIB_EPROTO);
    const uint8_t many[] = {0, 0, 0, 0, 0, 1, 1, 0xff, 0xff};
    assert_int_equal(cql_decode_query(many, sizeof many, 4, a, &q, &err), SIB_EPROTO);
    const uint8_t neg_len[] = {0xff, 0xff, 0xff, 0xff, 0, 1, 0};
    assert_int_equal(cql_decode_query(neg_len, sizeof neg_len, 4, a, &q, &err), SIB_EPROTO);
    /* page size <= 0 means no paging */
    const uint8_t page0[] = {0, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0};
    assert_int_equal(cql_decode_query(page0, sizeof page0, 4, a, &q, &err), 0);
    assert_int_equal(q.params.page_size, -1);
    sib_arena_destroy(a);
}

static void test_decode_prepare_execute(void **state)
{
    sib_arena *a = sib_arena_create(0);
    sib_err err = {0};
    const uint8_t prep[] = {0, 0, 0, 8, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1'};
    cql_prepare_req p;
    assert_int_equal(cql_decode_prepare(prep, sizeof prep, 4, a, &p, &err), 0);
    assert_true(cql_str_eq(p.query, "SELECT 1"));
    assert_int_equal(cql_decode_prepare(prep, sizeof prep - 1, 4, a, &p, &err), SIB_EPROTO);

    sib_buf b;
    sib_buf_init(&b);
    cql_put_short_bytes(&b, "\x01\x02\x03", 3);
    cql_put_short(&b, CQL_QUORUM);
    cql_put_byte(&b, CQL_QF_VALUES | CQL_QF_SKIP_METADATA | CQL_QF_DEFAULT_TIMESTAMP);
    cql_put_short(&b, 2);
    cql_put_value(&b, "ab", 2);
    cql_put_value(&b, "", 0);
    cql_put_long(&b, -7);
    cql_execute_req e;
    assert_int_equal(cql_decode_execute(b.p, b.len, 4, a, &e, &err), 0);
    assert_int_equal(e.id.len, 3);
    assert_memory_equal(e.id.p, "\x01\x02\x03", 3);
    assert_int_equal(e.params.consistency, CQL_QUORUM);
    assert_int_equal(e.params.nvalues, 2);
    assert_null(e.params.names);
    assert_int_equal(e.params.values[1].len, 0);
    assert_true(e.params.skip_metadata);
    assert_int_equal(e.params.timestamp, -7);
    assert_int_equal(e.params.page_size, -1);
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(cql_decode_execute(b.p, cut, 4, a, &e, &err), SIB_EPROTO);
    const uint8_t empty_id[] = {0, 0, 0, 1, 0};
    assert_int_equal(cql_decode_execute(empty_id, sizeof empty_id, 4, a, &e, &err), SIB_EPROTO);
    sib_buf_free(&b);
    sib_arena_destroy(a);
}

/* Positional values, read off decode_values' local cursor: data, empty,
 * null and unset, more than the request's room, every truncation an error,
 * unset refused before v4, a length below -2 malformed. */
static void test_decode_execute_values(void **state)
{
    sib_arena *a = sib_arena_create(0);
    sib_err err = {0};
    sib_buf b;
    sib_buf_init(&b);
    cql_put_short_bytes(&b, "\x09", 1);
    cql_put_short(&b, CQL_ONE);
    cql_put_byte(&b, CQL_QF_VALUES | CQL_QF_PAGE_SIZE);
    cql_put_short(&b, 6);
    cql_put_value(&b, "abc", 3);
    cql_put_value(&b, NULL, CQL_VALUE_NULL);
    cql_put_value(&b, "", 0);
    cql_put_value(&b, NULL, CQL_VALUE_UNSET);
    cql_put_value(&b, "d", 1);
    cql_put_value(&b, "efgh", 4);
    cql_put_int(&b, 100);
    cql_execute_req e;
    assert_int_equal(cql_decode_execute(b.p, b.len, 4, a, &e, &err), 0);
    assert_int_equal(e.params.nvalues, 6);
    assert_null(e.params.names);
    const int32_t lens[] = {3, CQL_VALUE_NULL, 0, CQL_VALUE_UNSET, 1, 4};
    for (size_t i = 0; i < 6; i++) assert_int_equal(e.params.values[i].len, lens[i]);
    assert_memory_equal(e.params.values[0].p, "abc", 3);
    assert_null(e.params.values[1].p);
    assert_null(e.params.values[3].p);
    assert_memory_equal(e.params.values[5].p, "efgh", 4);
    assert_int_equal(e.params.page_size, 100);
    for (size_t cut = 0; cut < b.len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, b.p, cut);
        assert_int_equal(cql_decode_execute(copy, cut, 4, a, &e, &err), SIB_EPROTO);
        free(copy);
    }
    assert_int_equal(cql_decode_execute(b.p, b.len, 3, a, &e, &err), SIB_EPROTO);
    assert_string_equal(err.msg, "Invalid EXECUTE message: unset values need protocol v4");

    sib_buf_reset(&b);
    cql_put_short_bytes(&b, "\x09", 1);
    cql_put_short(&b, CQL_ONE);
    cql_put_byte(&b, CQL_QF_VALUES);
    cql_put_short(&b, 2);
    cql_put_value(&b, "a", 1);
    cql_put_int(&b, -3);
    assert_int_equal(cql_decode_execute(b.p, b.len, 4, a, &e, &err), SIB_EPROTO);
    assert_string_equal(err.msg, "Invalid EXECUTE message: truncated or malformed body");
    sib_buf_free(&b);
    sib_arena_destroy(a);
}

static void build_batch(sib_buf *b, bool named)
{
    cql_put_byte(b, CQL_BATCHTYPE_UNLOGGED);
    cql_put_short(b, 2);
    cql_put_byte(b, 0);
    cql_put_long_string(b, "INSERT INTO t (k) VALUES (?)", 28);
    cql_put_short(b, 1);
    if (named) cql_put_cstring(b, "k");
    cql_put_value(b, "\x00\x00\x00\x05", 4);
    cql_put_byte(b, 1);
    cql_put_short_bytes(b, "ID", 2);
    cql_put_short(b, 2);
    if (named) cql_put_cstring(b, "a");
    cql_put_value(b, NULL, CQL_VALUE_NULL);
    if (named) cql_put_cstring(b, "b");
    cql_put_value(b, "z", 1);
    cql_put_short(b, CQL_ALL);
    cql_put_byte(b, (uint8_t)(CQL_QF_SERIAL_CONSISTENCY | CQL_QF_DEFAULT_TIMESTAMP | (named ? 0x40 : 0)));
    cql_put_short(b, CQL_SERIAL);
    cql_put_long(b, 42);
}

static void test_decode_batch(void **state)
{
    sib_arena *a = sib_arena_create(0);
    sib_err err = {0};
    for (int named = 0; named < 2; named++) {
        sib_buf b;
        sib_buf_init(&b);
        build_batch(&b, named);
        cql_batch_req bt;
        assert_int_equal(cql_decode_batch(b.p, b.len, 4, a, &bt, &err), 0);
        assert_int_equal(bt.type, CQL_BATCHTYPE_UNLOGGED);
        assert_int_equal(bt.nstmts, 2);
        assert_false(bt.stmts[0].prepared);
        assert_true(cql_str_eq(bt.stmts[0].query, "INSERT INTO t (k) VALUES (?)"));
        assert_int_equal(bt.stmts[0].nvalues, 1);
        assert_int_equal(get_be32(bt.stmts[0].values[0].p), 5);
        assert_true(bt.stmts[1].prepared);
        assert_int_equal(bt.stmts[1].id.len, 2);
        assert_memory_equal(bt.stmts[1].id.p, "ID", 2);
        assert_int_equal(bt.stmts[1].nvalues, 2);
        assert_int_equal(bt.stmts[1].values[0].len, CQL_VALUE_NULL);
        assert_int_equal(bt.stmts[1].values[1].len, 1);
        if (named) {
            assert_non_null(bt.stmts[1].names);
            assert_true(cql_str_eq(bt.stmts[1].names[1], "b"));
        } else {
            assert_null(bt.stmts[1].names);
        }
        assert_int_equal(bt.consistency, CQL_ALL);
        assert_int_equal(bt.serial_consistency, CQL_SERIAL);
        assert_int_equal(bt.timestamp, 42);
        for (size_t cut = 0; cut < b.len; cut++) {
            uint8_t *copy = malloc(cut ? cut : 1);
            memcpy(copy, b.p, cut);
            assert_int_equal(cql_decode_batch(copy, cut, 4, a, &bt, &err), SIB_EPROTO);
            free(copy);
        }
        sib_buf_free(&b);
    }
    const uint8_t bad_kind[] = {0, 0, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    cql_batch_req bt;
    assert_int_equal(cql_decode_batch(bad_kind, sizeof bad_kind, 4, a, &bt, &err), SIB_EPROTO);
    const uint8_t bad_type[] = {3, 0, 0, 0, 1, 0};
    assert_int_equal(cql_decode_batch(bad_type, sizeof bad_type, 4, a, &bt, &err), SIB_EPROTO);
    const uint8_t empty[] = {0, 0, 0, 0, 1, 0};
    assert_int_equal(cql_decode_batch(empty, sizeof empty, 4, a, &bt, &err), 0);
    assert_int_equal(bt.nstmts, 0);
    assert_true(bt.timestamp == INT64_MIN);
    const uint8_t huge_n[] = {0, 0xff, 0xff, 0, 0, 1, 0};
    assert_int_equal(cql_decode_batch(huge_n, sizeof huge_n, 4, a, &bt, &err), SIB_EPROTO);
    sib_arena_destroy(a);
}

/* ====================================================================== */
/* response encoding                                                      */
/* ====================================================================== */

static void test_error_bodies(void **state)
{
    sib_buf b;
    sib_buf_init(&b);
    cql_error_extra x = {.consistency = CQL_QUORUM, .required = 2, .alive = 1};
    cql_encode_error(&b, 4, CQL_ERR_UNAVAILABLE, "m", &x);
    const uint8_t unavail[] = {0, 0, 0x10, 0, 0, 1, 'm', 0, 4, 0, 0, 0, 2, 0, 0, 0, 1};
    assert_bytes(&b, unavail, sizeof unavail);

    sib_buf_reset(&b);
    x = (cql_error_extra){.consistency = CQL_ONE, .received = 0, .blockfor = 1, .write_type = CQL_WRITE_BATCH_LOG};
    cql_encode_error(&b, 4, CQL_ERR_WRITE_TIMEOUT, "", &x);
    const uint8_t wto[] = {0, 0, 0x11, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1,
                           0, 9, 'B', 'A', 'T', 'C', 'H', '_', 'L', 'O', 'G'};
    assert_bytes(&b, wto, sizeof wto);

    sib_buf_reset(&b);
    x = (cql_error_extra){.consistency = CQL_ALL, .received = 1, .blockfor = 3, .data_present = true};
    cql_encode_error(&b, 4, CQL_ERR_READ_TIMEOUT, "", &x);
    const uint8_t rto[] = {0, 0, 0x12, 0, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 3, 1};
    assert_bytes(&b, rto, sizeof rto);

    sib_buf_reset(&b);
    x = (cql_error_extra){.consistency = CQL_ONE, .received = 0, .blockfor = 1, .numfailures = 1};
    cql_encode_error(&b, 4, CQL_ERR_READ_FAILURE, "", &x);
    const uint8_t rf[] = {0, 0, 0x13, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0};
    assert_bytes(&b, rf, sizeof rf);

    sib_buf_reset(&b);
    x = (cql_error_extra){.consistency = CQL_ONE, .received = 0, .blockfor = 1, .numfailures = 2,
                          .write_type = CQL_WRITE_CAS};
    cql_encode_error(&b, 4, CQL_ERR_WRITE_FAILURE, "", &x);
    const uint8_t wf[] = {0, 0, 0x15, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 3, 'C', 'A', 'S'};
    assert_bytes(&b, wf, sizeof wf);

    /* v3 has no failure codes: Server error with no extras. */
    sib_buf_reset(&b);
    cql_encode_error(&b, 3, CQL_ERR_WRITE_FAILURE, "", &x);
    const uint8_t v3[] = {0, 0, 0, 0, 0, 0};
    assert_bytes(&b, v3, sizeof v3);

    sib_buf_reset(&b);
    x = (cql_error_extra){.ks = "ks", .table = ""};
    cql_encode_error(&b, 4, CQL_ERR_ALREADY_EXISTS, "", &x);
    const uint8_t ae[] = {0, 0, 0x24, 0, 0, 0, 0, 2, 'k', 's', 0, 0};
    assert_bytes(&b, ae, sizeof ae);

    sib_buf_reset(&b);
    x = (cql_error_extra){.id = (const uint8_t *)"\xaa\xbb", .id_len = 2};
    cql_encode_error(&b, 4, CQL_ERR_UNPREPARED, "", &x);
    const uint8_t up[] = {0, 0, 0x25, 0, 0, 0, 0, 2, 0xaa, 0xbb};
    assert_bytes(&b, up, sizeof up);

    sib_buf_reset(&b);
    const char *args[] = {"int"};
    x = (cql_error_extra){.ks = "k", .function = "f", .arg_types = args, .nargs = 1};
    cql_encode_error(&b, 4, CQL_ERR_FUNCTION_FAILURE, "", &x);
    const uint8_t ff[] = {0, 0, 0x14, 0, 0, 0, 0, 1, 'k', 0, 1, 'f', 0, 1, 0, 3, 'i', 'n', 't'};
    assert_bytes(&b, ff, sizeof ff);

    sib_buf_reset(&b);
    cql_encode_error(&b, 4, CQL_ERR_SYNTAX, "line 1", NULL);
    const uint8_t se[] = {0, 0, 0x20, 0, 0, 6, 'l', 'i', 'n', 'e', ' ', '1'};
    assert_bytes(&b, se, sizeof se);
    sib_buf_free(&b);

    assert_int_equal(cql_errcode_from_sib(SIB_ESYNTAX), 0x2000);
    assert_int_equal(cql_errcode_from_sib(SIB_EINVAL), 0x2200);
    assert_int_equal(cql_errcode_from_sib(SIB_ETOOBIG), 0x2200);
    assert_int_equal(cql_errcode_from_sib(SIB_EEXIST), 0x2400);
    assert_int_equal(cql_errcode_from_sib(SIB_ECONFIG), 0x2300);
    assert_int_equal(cql_errcode_from_sib(SIB_EUNAVAIL), 0x1000);
    assert_int_equal(cql_errcode_from_sib(SIB_EUNPREPARED), 0x2500);
    assert_int_equal(cql_errcode_from_sib(SIB_EPROTO), 0x000A);
    assert_int_equal(cql_errcode_from_sib(SIB_EREADFAIL), 0x1300);
    assert_int_equal(cql_errcode_from_sib(SIB_EWRITEFAIL), 0x1500);
    assert_int_equal(cql_errcode_from_sib(SIB_EIO), 0x0000);
    assert_int_equal(cql_errcode_from_sib(SIB_ENOMEM), 0x0000);
}

static void test_schema_change_body(void **state)
{
    sib_buf b;
    sib_buf_init(&b);
    cql_encode_schema_change(&b, CQL_CHANGE_CREATED, CQL_TARGET_KEYSPACE, "ks", "ignored", NULL, 0);
    const uint8_t ks[] = {0, 7, 'C', 'R', 'E', 'A', 'T', 'E', 'D', 0, 8, 'K', 'E', 'Y', 'S', 'P', 'A', 'C', 'E',
                          0, 2, 'k', 's'};
    assert_bytes(&b, ks, sizeof ks);
    sib_buf_reset(&b);
    cql_encode_schema_change(&b, CQL_CHANGE_DROPPED, CQL_TARGET_TABLE, "k", "t", NULL, 0);
    const uint8_t tb[] = {0, 7, 'D', 'R', 'O', 'P', 'P', 'E', 'D', 0, 5, 'T', 'A', 'B', 'L', 'E',
                          0, 1, 'k', 0, 1, 't'};
    assert_bytes(&b, tb, sizeof tb);
    sib_buf_reset(&b);
    const char *args[] = {"int", "text"};
    cql_encode_schema_change(&b, CQL_CHANGE_UPDATED, CQL_TARGET_FUNCTION, "k", "f", args, 2);
    assert_int_equal(get_be16(b.p + b.len - 13), 2); /* [string list] of 2 after the name */
    sib_buf_free(&b);
}

static void test_rows_builder(void **state)
{
    sib_buf b;
    sib_buf_init(&b);
    const char *names[] = {"k", "v"};
    const sch_type *types[] = {&t_int, &t_text};
    cql_rows_meta m = {.ks = "ks", .table = "t", .ncols = 2, .names = names, .types = types};
    cql_rows rw;
    assert_int_equal(cql_rows_begin(&rw, &b, 4, &m, NULL), 0);
    cql_rows_cell(&rw, "\x00\x00\x00\x01", 4);
    cql_rows_cell(&rw, "a", 1);
    cql_rows_cell(&rw, "\x00\x00\x00\x02", 4);
    cql_rows_cell(&rw, NULL, CQL_VALUE_NULL);
    uint8_t *p = cql_rows_cell_reserve(&rw, 4);
    put_be32(p, 3);
    memcpy(cql_rows_cell_reserve(&rw, 2), "cc", 2);
    assert_int_equal(cql_rows_finish(&rw, NULL), 0);
    const uint8_t exp[] = {
        0, 0, 0, 2,                  /* kind Rows */
        0, 0, 0, 1, 0, 0, 0, 2,      /* flags GLOBAL, 2 cols */
        0, 2, 'k', 's', 0, 1, 't',   /* global spec */
        0, 1, 'k', 0, 9, 0, 1, 'v', 0, 0x0d,
        0, 0, 0, 3,                  /* 3 rows */
        0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 1, 'a',
        0, 0, 0, 4, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff,
        0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 2, 'c', 'c',
    };
    assert_bytes(&b, exp, sizeof exp);

    /* NO_METADATA + paging state: no specs, ncols kept, HAS_MORE_PAGES. */
    sib_buf_reset(&b);
    m.flags = CQL_ROWS_NO_METADATA;
    m.paging_state = (const uint8_t *)"P";
    m.paging_state_len = 1;
    assert_int_equal(cql_rows_begin(&rw, &b, 4, &m, NULL), 0);
    assert_int_equal(cql_rows_finish(&rw, NULL), 0);
    const uint8_t nm[] = {0, 0, 0, 2, 0, 0, 0, 6, 0, 0, 0, 2, 0, 0, 0, 1, 'P', 0, 0, 0, 0};
    assert_bytes(&b, nm, sizeof nm);

    /* A partial row is an error. */
    sib_buf_reset(&b);
    m.flags = 0;
    m.paging_state = NULL;
    sib_err err = {0};
    assert_int_equal(cql_rows_begin(&rw, &b, 4, &m, NULL), 0);
    cql_rows_cell(&rw, "x", 1);
    assert_int_equal(cql_rows_finish(&rw, &err), SIB_ESERVER);
    /* An undescribable type fails at begin. */
    const sch_type *bad[] = {&t_int, &t_udt};
    m.types = bad;
    sib_buf_reset(&b);
    assert_int_equal(cql_rows_begin(&rw, &b, 4, &m, &err), SIB_EINVAL);
    sib_buf_free(&b);
}

static void test_prepared_body(void **state)
{
    sib_buf b;
    sib_buf_init(&b);
    const char *bn[] = {"k", "[limit]"};
    const sch_type *bt[] = {&t_int, &t_int};
    const uint16_t pk[] = {0};
    cql_prepared_meta bind = {.ks = "k", .table = "t", .nbind = 2, .names = bn, .types = bt, .npk = 1, .pk_index = pk};
    const char *rn[] = {"v"};
    const sch_type *rt[] = {&t_bigint};
    cql_rows_meta res = {.ks = "k", .table = "t", .ncols = 1, .names = rn, .types = rt};
    assert_int_equal(cql_encode_prepared(&b, 4, (const uint8_t *)"ID", 2, &bind, &res, NULL), 0);
    const uint8_t exp4[] = {
        0, 2, 'I', 'D',
        0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, /* flags, nbind, pk_count, pk_index */
        0, 1, 'k', 0, 1, 't',
        0, 1, 'k', 0, 9, 0, 7, '[', 'l', 'i', 'm', 'i', 't', ']', 0, 9,
        0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 'k', 0, 1, 't', 0, 1, 'v', 0, 2,
    };
    assert_bytes(&b, exp4, sizeof exp4);

    /* v3: no pk indexes. DML: result NO_METADATA with 0 columns. */
    sib_buf_reset(&b);
    bind.nbind = 1;
    assert_int_equal(cql_encode_prepared(&b, 3, (const uint8_t *)"ID", 2, &bind, NULL, NULL), 0);
    const uint8_t exp3[] = {
        0, 2, 'I', 'D', 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 'k', 0, 1, 't', 0, 1, 'k', 0, 9,
        0, 0, 0, 4, 0, 0, 0, 0,
    };
    assert_bytes(&b, exp3, sizeof exp3);

    /* No bind markers at all. */
    sib_buf_reset(&b);
    assert_int_equal(cql_encode_prepared(&b, 4, (const uint8_t *)"I", 1, NULL, NULL, NULL), 0);
    const uint8_t none[] = {0, 1, 'I', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0};
    assert_bytes(&b, none, sizeof none);

    /* A pk index past the markers is a bug in the caller. */
    sib_buf_reset(&b);
    const uint16_t badpk[] = {5};
    bind.pk_index = badpk;
    sib_err err = {0};
    assert_int_equal(cql_encode_prepared(&b, 4, (const uint8_t *)"I", 1, &bind, NULL, &err), SIB_EINVAL);
    sib_buf_free(&b);
}

/* ====================================================================== */
/* server over sockets                                                    */
/* ====================================================================== */

typedef struct deferred {
    ev_timer t;
    cql_request *req;
    struct fake_exec *fx;
    cql_rows *split; /* "split": a rows reply left open, its cell half written */
    bool used;
} deferred;

typedef struct fake_exec {
    cql_executor base; /* first */
    cql_server *srv;
    struct ev_loop *loop;
    deferred pending[32];
    int closed_sessions;
    int orphan_replies;
    int requests;
    int traces_done; /* trace_done calls of the "traced" queries */
} fake_exec;

static void reply_text_row(cql_request *req, const char *col, const char *val, size_t n)
{
    const char *names[] = {col};
    const sch_type *types[] = {&t_text};
    cql_rows_meta m = {.ks = "test", .table = "fake", .ncols = 1, .names = names, .types = types};
    cql_value cell = {(const uint8_t *)val, (int32_t)n};
    cql_reply_rows(req, &m, &cell, 1);
}

static void on_deferred(struct ev_loop *loop, ev_timer *t, int revents)
{
    deferred *d = (deferred *)t;
    cql_request *req = d->req;
    d->used = false;
    if (cql_request_orphaned(req)) d->fx->orphan_replies++;
    if (d->split) {
        cql_rows_cells_raw(d->split, "done", 4, 1);
        d->split = NULL;
        cql_reply_rows_end(req);
        return;
    }
    const cql_query_req *q = &req->u.query;
    reply_text_row(req, "echo", q->query.p, q->query.len);
}

static void fake_trace_done(cql_request *req) { ((fake_exec *)req->trace_data)->traces_done++; }

static void fake_query(fake_exec *fx, cql_request *req)
{
    cql_str q = req->u.query.query;
    char text[128];
    snprintf(text, sizeof text, "%.*s", (int)SIB_MIN(q.len, sizeof text - 1), q.p);
    bool split = strncmp(text, "split ", 6) == 0;
    if (strncmp(text, "defer ", 6) == 0 || split) {
        int ms = atoi(text + 6);
        for (size_t i = 0; i < SIB_ARRAY_LEN(fx->pending); i++) {
            deferred *d = &fx->pending[i];
            if (d->used) continue;
            d->used = true;
            d->req = req;
            d->fx = fx;
            d->split = NULL;
            if (split) { /* the rows reply stays open until the timer: the cell "split-done" */
                const char *names[] = {"split"};
                const sch_type *types[] = {&t_text};
                cql_rows_meta m = {.ks = "test", .table = "fake", .ncols = 1, .names = names, .types = types};
                d->split = cql_reply_rows_begin(req, &m);
                uint8_t part[4 + 6];
                put_be32(part, 10);
                memcpy(part + 4, "split-", 6);
                cql_rows_cells_raw(d->split, part, sizeof part, 0);
            }
            ev_timer_init(&d->t, on_deferred, ms / 1000.0, 0.);
            ev_timer_start(fx->loop, &d->t);
            return;
        }
        cql_reply_error(req, CQL_ERR_OVERLOADED, "too many deferred", NULL);
    } else if (strncmp(text, "traced", 6) == 0) { /* what the real executor does for a TRACING request */
        for (int i = 0; i < 16; i++) req->trace_id[i] = (uint8_t)(0xA0 + i);
        req->trace_data = fx;
        req->trace_done = fake_trace_done;
        if (strcmp(text, "traced error") == 0) cql_reply_error(req, CQL_ERR_INVALID, "bad", NULL);
        else cql_reply_void(req);
    } else if (strncmp(text, "USE ", 4) == 0) {
        cql_reply_set_keyspace(req, text + 4);
    } else if (strcmp(text, "ks") == 0) {
        reply_text_row(req, "keyspace", req->session->keyspace, strlen(req->session->keyspace));
    } else if (strcmp(text, "broadcast") == 0) {
        cql_server_broadcast_schema_change(fx->srv, CQL_CHANGE_CREATED, CQL_TARGET_TABLE, "ks", "t");
        cql_reply_schema_change(req, CQL_CHANGE_CREATED, CQL_TARGET_TABLE, "ks", "t");
    } else if (strcmp(text, "params") == 0) {
        const cql_params *p = &req->u.query.params;
        char out[128];
        int n = snprintf(out, sizeof out, "cl=%u nv=%u ps=%d ts=%lld", p->consistency, p->nvalues, p->page_size,
                         (long long)p->timestamp);
        reply_text_row(req, "params", out, (size_t)n);
    } else if (strncmp(text, "big ", 4) == 0) {
        size_t n = (size_t)atoi(text + 4);
        char *val = malloc(n);
        memset(val, 'b', n);
        reply_text_row(req, "big", val, n);
        free(val);
    } else if (strcmp(text, "unavailable") == 0) {
        sib_err e = {0};
        sib_err_set(&e, SIB_EUNAVAIL, "Cannot achieve consistency level QUORUM");
        e.ex[0] = CQL_QUORUM;
        e.ex[1] = 2;
        e.ex[2] = 1;
        cql_reply_sib_err(req, &e, NULL);
    } else {
        cql_reply_void(req);
    }
}

static void fake_request(cql_executor *ex, cql_request *req)
{
    fake_exec *fx = (fake_exec *)ex;
    fx->requests++;
    switch (req->opcode) {
    case CQL_OP_QUERY: fake_query(fx, req); break;
    case CQL_OP_PREPARE: {
        const char *bn[] = {"k"};
        const sch_type *bt[] = {&t_int};
        const uint16_t pk[] = {0};
        cql_prepared_meta bind = {.ks = "ks", .table = "t", .nbind = 1, .names = bn, .types = bt, .npk = 1, .pk_index = pk};
        cql_reply_prepared(req, (const uint8_t *)"abc", 3, &bind, NULL);
        break;
    }
    case CQL_OP_EXECUTE:
        if (req->u.execute.id.len == 3 && memcmp(req->u.execute.id.p, "abc", 3) == 0) {
            cql_reply_void(req);
        } else {
            cql_error_extra x = {.id = req->u.execute.id.p, .id_len = (uint16_t)req->u.execute.id.len};
            cql_reply_error(req, CQL_ERR_UNPREPARED, "unknown id", &x);
        }
        break;
    case CQL_OP_BATCH: {
        char out[32];
        int n = snprintf(out, sizeof out, "batch %u", req->u.batch.nstmts);
        reply_text_row(req, "batch", out, (size_t)n);
        break;
    }
    default: cql_reply_error(req, CQL_ERR_SERVER, "unexpected", NULL); break;
    }
}

static void fake_session_closed(cql_executor *ex, cql_session *s) { ((fake_exec *)ex)->closed_sessions++; }

typedef struct harness {
    struct ev_loop *loop;
    cql_server *srv;
    fake_exec fx;
    ev_async stop;
    pthread_t th;
} harness;

static void on_stop(struct ev_loop *loop, ev_async *w, int revents) { ev_break(loop, EVBREAK_ALL); }

static void *loop_main(void *arg)
{
    harness *h = arg;
    ev_run(h->loop, 0);
    return NULL;
}

static int harness_setup(void **state)
{
    harness *h = calloc(1, sizeof *h);
    h->loop = ev_loop_new(EVFLAG_AUTO);
    h->fx.base.request = fake_request;
    h->fx.base.session_closed = fake_session_closed;
    h->fx.loop = h->loop;
    cql_server_opts o = {.bind_addr = "127.0.0.1", .port = 0, .max_frame_size = 1 << 20, .max_inflight = 8};
    sib_err err = {0};
    h->srv = cql_server_create(h->loop, &o, &h->fx.base, &err);
    if (!h->srv) {
        fprintf(stderr, "server: %s\n", err.msg);
        return -1;
    }
    h->fx.srv = h->srv;
    ev_async_init(&h->stop, on_stop);
    ev_async_start(h->loop, &h->stop);
    pthread_create(&h->th, NULL, loop_main, h);
    *state = h;
    return 0;
}

static int harness_teardown(void **state)
{
    harness *h = *state;
    ev_async_send(h->loop, &h->stop);
    pthread_join(h->th, NULL);
    cql_server_destroy(h->srv);
    /* Requests still deferred are now orphans: answering them must be safe. */
    for (size_t i = 0; i < SIB_ARRAY_LEN(h->fx.pending); i++) {
        deferred *d = &h->fx.pending[i];
        if (!d->used) continue;
        ev_timer_stop(h->loop, &d->t);
        on_deferred(h->loop, &d->t, 0);
    }
    ev_loop_destroy(h->loop);
    free(h);
    return 0;
}

/* Runs fn on the loop thread and waits (for reading server state safely). */
typedef struct probe {
    ev_async a;
    harness *h;
    int closed_sessions, orphan_replies, requests, traces_done;
    size_t conns;
    cql_server_stats stats;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} probe;

static void on_probe(struct ev_loop *loop, ev_async *w, int revents)
{
    probe *p = (probe *)w;
    /* Stopped before `done` is signalled: p lives on the waiting thread's
     * stack and is gone once it wakes (stopping it after was a
     * use-after-scope that killed Release builds of this suite). */
    ev_async_stop(loop, w);
    pthread_mutex_lock(&p->mu);
    p->closed_sessions = p->h->fx.closed_sessions;
    p->orphan_replies = p->h->fx.orphan_replies;
    p->requests = p->h->fx.requests;
    p->traces_done = p->h->fx.traces_done;
    p->conns = cql_server_conn_count(p->h->srv);
    cql_server_get_stats(p->h->srv, &p->stats);
    p->done = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void probe_run(harness *h, probe *p)
{
    memset(p, 0, sizeof *p);
    p->h = h;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    ev_async_init(&p->a, on_probe);
    /* Starting a watcher must happen on the loop thread; hand it over by
     * stopping the loop briefly. */
    ev_async_send(h->loop, &h->stop);
    pthread_join(h->th, NULL);
    ev_async_start(h->loop, &p->a);
    ev_async_send(h->loop, &p->a);
    pthread_create(&h->th, NULL, loop_main, h);
    pthread_mutex_lock(&p->mu);
    while (!p->done) pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
}

static int connect_to(harness *h)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(cql_server_port(h->srv))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
    const uint8_t *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        assert_true(w > 0);
        c += w;
        n -= (size_t)w;
    }
}

static void send_raw_frame(int fd, uint8_t version, uint8_t flags, int16_t stream, uint8_t op, const sib_buf *body)
{
    sib_buf f;
    sib_buf_init(&f);
    size_t s = cql_frame_begin(&f, version, flags, stream, op);
    if (body && body->len) sib_buf_append(&f, body->p, body->len);
    assert_int_equal(cql_frame_end(&f, s, false, NULL), 0);
    write_all(fd, f.p, f.len);
    sib_buf_free(&f);
}

/* Reads exactly n bytes; false on EOF/timeout. */
static bool read_exact(int fd, uint8_t *p, size_t n)
{
    while (n) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 5000) <= 0) return false;
        ssize_t r = read(fd, p, n);
        if (r <= 0) return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

/* Receives a frame; its (decompressed) body replaces *body. */
static bool recv_frame(int fd, cql_header *h, sib_buf *body)
{
    uint8_t hdr[CQL_HEADER_LEN];
    if (!read_exact(fd, hdr, sizeof hdr)) return false;
    cql_header_decode(hdr, sizeof hdr, h);
    sib_buf_reset(body);
    uint8_t *p = sib_buf_reserve(body, h->length + 1);
    if (!read_exact(fd, p, h->length)) return false;
    body->len = h->length;
    if (h->flags & CQL_FLAG_COMPRESSION) {
        sib_buf out;
        sib_buf_init(&out);
        assert_int_equal(cql_lz4_decompress(body->p, body->len, 1 << 26, &out, NULL), 0);
        sib_buf_free(body);
        *body = out;
    }
    return true;
}

static bool peer_closed(int fd)
{
    uint8_t c;
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, 5000) <= 0) return false;
    return read(fd, &c, 1) == 0;
}

static void startup_body(sib_buf *b, const char *compression)
{
    const char *kv[] = {"CQL_VERSION", "3.0.0", "COMPRESSION", compression, "DRIVER_NAME", "test"};
    sib_buf_reset(b);
    if (compression) {
        cql_put_string_map(b, kv, 3);
    } else {
        const char *kv2[] = {"CQL_VERSION", "3.4.5"};
        cql_put_string_map(b, kv2, 1);
    }
}

static void query_body(sib_buf *b, const char *q)
{
    sib_buf_reset(b);
    cql_put_long_string(b, q, strlen(q));
    cql_put_short(b, CQL_ONE);
    cql_put_byte(b, 0);
}

/* QUERY frames for qs[0..n) on streams first, first + 1, ..., in one write. */
static void write_queries(int fd, const char *const *qs, int n, int16_t first)
{
    sib_buf b, all;
    sib_buf_init(&b);
    sib_buf_init(&all);
    for (int i = 0; i < n; i++) {
        query_body(&b, qs[i]);
        size_t s = cql_frame_begin(&all, 4, 0, (int16_t)(first + i), CQL_OP_QUERY);
        sib_buf_append(&all, b.p, b.len);
        cql_frame_end(&all, s, false, NULL);
    }
    write_all(fd, all.p, all.len);
    sib_buf_free(&b);
    sib_buf_free(&all);
}

static void expect_error(int fd, int16_t stream, int32_t code, const char *substr)
{
    cql_header h;
    sib_buf b;
    sib_buf_init(&b);
    assert_true(recv_frame(fd, &h, &b));
    assert_int_equal(h.opcode, CQL_OP_ERROR);
    assert_int_equal(h.stream, stream);
    assert_int_equal(h.version, 0x84);
    sib_rd r;
    sib_rd_init(&r, b.p, b.len);
    int32_t c;
    cql_str msg;
    assert_true(cql_get_int(&r, &c) && cql_get_string(&r, &msg));
    assert_int_equal(c, code);
    if (substr) {
        char m[512];
        snprintf(m, sizeof m, "%.*s", (int)msg.len, msg.p);
        if (!strstr(m, substr)) fail_msg("error '%s' lacks '%s'", m, substr);
    }
    sib_buf_free(&b);
}

/* Expects a one-column text Rows reply and returns the cell. */
static void expect_text_row(int fd, int16_t stream, const char *want)
{
    cql_header h;
    sib_buf b;
    sib_buf_init(&b);
    assert_true(recv_frame(fd, &h, &b));
    if (h.opcode == CQL_OP_ERROR) fail_msg("error reply: %.*s", (int)(b.len > 6 ? b.len - 6 : 0), b.p + 6);
    assert_int_equal(h.opcode, CQL_OP_RESULT);
    assert_int_equal(h.stream, stream);
    sib_rd r;
    sib_rd_init(&r, b.p, b.len);
    int32_t kind = 0, flags = 0, ncols = 0, nrows = 0;
    cql_str s;
    uint16_t type;
    cql_value cell;
    assert_true(cql_get_int(&r, &kind) && kind == CQL_RESULT_ROWS);
    assert_true(cql_get_int(&r, &flags) && cql_get_int(&r, &ncols) && ncols == 1);
    if (!(flags & CQL_ROWS_NO_METADATA)) {
        assert_true(cql_get_string(&r, &s) && cql_get_string(&r, &s) && cql_get_string(&r, &s));
        assert_true(cql_get_short(&r, &type) && type == SCH_T_VARCHAR);
    }
    assert_true(cql_get_int(&r, &nrows) && nrows == 1);
    assert_true(cql_get_bytes(&r, &cell));
    assert_int_equal(cell.len, strlen(want));
    assert_memory_equal(cell.p, want, cell.len);
    assert_int_equal(sib_rd_left(&r), 0);
    sib_buf_free(&b);
}

static void handshake(int fd, const char *compression)
{
    sib_buf b;
    sib_buf_init(&b);
    startup_body(&b, compression);
    send_raw_frame(fd, 4, 0, 0, CQL_OP_STARTUP, &b);
    cql_header h;
    assert_true(recv_frame(fd, &h, &b));
    assert_int_equal(h.opcode, CQL_OP_READY);
    assert_int_equal(h.flags, 0); /* READY is never compressed */
    assert_int_equal(h.length, 0);
    sib_buf_free(&b);
}

static void test_server_options_startup_query(void **state)
{
    harness *h = *state;
    int fd = connect_to(h);
    sib_buf b;
    sib_buf_init(&b);
    cql_header hd;

    /* OPTIONS -> SUPPORTED with the three keys. */
    send_raw_frame(fd, 4, 0, 3, CQL_OP_OPTIONS, NULL);
    assert_true(recv_frame(fd, &hd, &b));
    assert_int_equal(hd.version, 0x84);
    assert_int_equal(hd.stream, 3);
    assert_int_equal(hd.opcode, CQL_OP_SUPPORTED);
    sib_rd r;
    sib_rd_init(&r, b.p, b.len);
    uint16_t n = 0, m = 0;
    assert_true(cql_get_short(&r, &n) && n == 3);
    const char *want[][3] = {{"CQL_VERSION", "3.4.5", NULL}, {"COMPRESSION", "lz4", NULL}, {"PROTOCOL_VERSIONS", "3/v3", "4/v4"}};
    for (int i = 0; i < 3; i++) {
        cql_str k, v;
        assert_true(cql_get_string(&r, &k) && cql_str_eq(k, want[i][0]));
        assert_true(cql_get_short(&r, &m));
        for (uint16_t j = 0; j < m; j++) assert_true(cql_get_string(&r, &v) && cql_str_eq(v, want[i][1 + j]));
    }
    assert_int_equal(sib_rd_left(&r), 0);

    /* QUERY before STARTUP is a protocol error, connection stays usable. */
    query_body(&b, "void");
    send_raw_frame(fd, 4, 0, 4, CQL_OP_QUERY, &b);
    expect_error(fd, 4, CQL_ERR_PROTOCOL, "expecting STARTUP or OPTIONS");

    handshake(fd, NULL);
    /* A second STARTUP is refused. */
    startup_body(&b, NULL);
    send_raw_frame(fd, 4, 0, 5, CQL_OP_STARTUP, &b);
    expect_error(fd, 5, CQL_ERR_PROTOCOL, "already initialized");

    query_body(&b, "void");
    send_raw_frame(fd, 4, 0, 6, CQL_OP_QUERY, &b);
    assert_true(recv_frame(fd, &hd, &b));
    assert_int_equal(hd.opcode, CQL_OP_RESULT);
    assert_int_equal(hd.stream, 6);
    const uint8_t vd[] = {0, 0, 0, 1};
    assert_bytes(&b, vd, 4);

    /* USE sets the session keyspace. */
    query_body(&b, "USE myks");
    send_raw_frame(fd, 4, 0, 7, CQL_OP_QUERY, &b);
    assert_true(recv_frame(fd, &hd, &b));
    const uint8_t sk[] = {0, 0, 0, 3, 0, 4, 'm', 'y', 'k', 's'};
    assert_bytes(&b, sk, sizeof sk);
    query_body(&b, "ks");
    send_raw_frame(fd, 4, 0, 8, CQL_OP_QUERY, &b);
    expect_text_row(fd, 8, "myks");

    /* Params decoded through the server. */
    sib_buf_reset(&b);
    cql_put_long_string(&b, "params", 6);
    cql_put_short(&b, CQL_LOCAL_ONE);
    cql_put_byte(&b, CQL_QF_VALUES | CQL_QF_PAGE_SIZE | CQL_QF_DEFAULT_TIMESTAMP);
    cql_put_short(&b, 1);
    cql_put_value(&b, "x", 1);
    cql_put_int(&b, 100);
    cql_put_long(&b, 99);
    send_raw_frame(fd, 4, 0, 9, CQL_OP_QUERY, &b);
    expect_text_row(fd, 9, "cl=10 nv=1 ps=100 ts=99");

    /* PREPARE / EXECUTE / unknown id / BATCH. */
    sib_buf_reset(&b);
    cql_put_long_string(&b, "SELECT", 6);
    send_raw_frame(fd, 4, 0, 10, CQL_OP_PREPARE, &b);
    assert_true(recv_frame(fd, &hd, &b));
    assert_int_equal(hd.opcode, CQL_OP_RESULT);
    assert_int_equal(get_be32(b.p), CQL_RESULT_PREPARED);
    sib_buf_reset(&b);
    cql_put_short_bytes(&b, "abc", 3);
    cql_put_short(&b, CQL_ONE);
    cql_put_byte(&b, 0);
    send_raw_frame(fd, 4, 0, 11, CQL_OP_EXECUTE, &b);
    assert_true(recv_frame(fd, &hd, &b));
    assert_int_equal(hd.stream, 11);
    /* the VOID result stored whole in the write buffer (reply_void_direct) */
    assert_int_equal(hd.version, 4 | CQL_VERSION_RESPONSE);
    assert_int_equal(hd.flags, 0);
    assert_int_equal(hd.opcode, CQL_OP_RESULT);
    assert_int_equal(b.len, 4);
    assert_int_equal(get_be32(b.p), CQL_RESULT_VOID);
    sib_buf_reset(&b);
    cql_put_short_bytes(&b, "zz", 2);
    cql_put_short(&b, CQL_ONE);
    cql_put_byte(&b, 0);
    send_raw_frame(fd, 4, 0, 12, CQL_OP_EXECUTE, &b);
    assert_true(recv_frame(fd, &hd, &b));
    const uint8_t unp[] = {0, 0, 0x25, 0, 0, 10, 'u', 'n', 'k', 'n', 'o', 'w', 'n', ' ', 'i', 'd', 0, 2, 'z', 'z'};
    assert_bytes(&b, unp, sizeof unp);
    sib_buf_reset(&b);
    build_batch(&b, false);
    send_raw_frame(fd, 4, 0, 13, CQL_OP_BATCH, &b);
    expect_text_row(fd, 13, "batch 2");

    /* A sib_err with extras becomes Unavailable with its layout. */
    query_body(&b, "unavailable");
    send_raw_frame(fd, 4, 0, 14, CQL_OP_QUERY, &b);
    assert_true(recv_frame(fd, &hd, &b));
    assert_int_equal(get_be32(b.p), CQL_ERR_UNAVAILABLE);
    assert_int_equal(get_be16(b.p + b.len - 10), CQL_QUORUM);
    assert_int_equal(get_be32(b.p + b.len - 8), 2);
    assert_int_equal(get_be32(b.p + b.len - 4), 1);

    /* OPTIONS works at any time (driver heartbeat). */
    send_raw_frame(fd, 4, 0, 15, CQL_OP_OPTIONS, NULL);
    assert_true(recv_frame(fd, &hd, &b));
    assert_int_equal(hd.opcode, CQL_OP_SUPPORTED);

    sib_buf_free(&b);
    close(fd);
}

static void test_server_version_negotiation(void **state)
{
    harness *h = *state;
    /* python driver's first try: DSE_V2 (0x42). */
    int fd = connect_to(h);
    sib_buf b;
    sib_buf_init(&b);
    send_raw_frame(fd, 0x42, 0, 0, CQL_OP_OPTIONS, NULL);
    cql_header hd;
    assert_true(recv_frame(fd, &hd, &b));
    const char msg[] = "Invalid or unsupported protocol version (66); supported versions are (3/v3, 4/v4)";
    uint8_t exp[9 + 6 + sizeof msg - 1] = {0x84, 0, 0, 0, 0};
    put_be32(exp + 5, 6 + sizeof msg - 1);
    put_be32(exp + 9, CQL_ERR_PROTOCOL);
    put_be16(exp + 13, sizeof msg - 1);
    memcpy(exp + 15, msg, sizeof msg - 1);
    uint8_t hdr[9];
    cql_header_encode(hdr, &hd);
    assert_memory_equal(hdr, exp, 9);
    assert_int_equal(b.len, sizeof exp - 9);
    assert_memory_equal(b.p, exp + 9, b.len);
    assert_true(peer_closed(fd));
    close(fd);

    /* v5 with a body and a non-zero stream; the body is not read first. */
    fd = connect_to(h);
    query_body(&b, "void");
    send_raw_frame(fd, 5, 0, 0x1234, CQL_OP_QUERY, &b);
    expect_error(fd, 0x1234, CQL_ERR_PROTOCOL, "Invalid or unsupported protocol version (5)");
    assert_true(peer_closed(fd));
    close(fd);

    /* v1: 8-byte header with a one-byte stream. */
    fd = connect_to(h);
    const uint8_t v1[] = {0x01, 0x00, 0x07, 0x05, 0, 0, 0, 0};
    write_all(fd, v1, sizeof v1);
    expect_error(fd, 7, CQL_ERR_PROTOCOL, "Invalid or unsupported protocol version (1)");
    assert_true(peer_closed(fd));
    close(fd);

    /* v3 is spoken: responses carry 0x83. */
    fd = connect_to(h);
    send_raw_frame(fd, 3, 0, 1, CQL_OP_OPTIONS, NULL);
    assert_true(recv_frame(fd, &hd, &b));
    assert_int_equal(hd.version, 0x83);
    assert_int_equal(hd.opcode, CQL_OP_SUPPORTED);
    /* Switching versions mid-connection is refused, not fatal. */
    send_raw_frame(fd, 4, 0, 2, CQL_OP_OPTIONS, NULL);
    assert_true(recv_frame(fd, &hd, &b));
    assert_int_equal(hd.opcode, CQL_OP_ERROR);
    assert_int_equal(hd.version, 0x83);
    send_raw_frame(fd, 3, 0, 3, CQL_OP_OPTIONS, NULL);
    assert_true(recv_frame(fd, &hd, &b));
    assert_int_equal(hd.opcode, CQL_OP_SUPPORTED);
    close(fd);
    sib_buf_free(&b);
}

static void test_server_bad_frames(void **state)
{
    harness *h = *state;
    int other = connect_to(h);
    handshake(other, NULL);
    int fd = connect_to(h);
    handshake(fd, NULL);
    sib_buf b;
    sib_buf_init(&b);
    cql_header hd;

    send_raw_frame(fd, 4, 0, 1, 0x04, NULL); /* opcode 4 does not exist */
    expect_error(fd, 1, CQL_ERR_PROTOCOL, "opcode");
    send_raw_frame(fd, 4, 0, 2, CQL_OP_RESULT, NULL); /* a response opcode */
    expect_error(fd, 2, CQL_ERR_PROTOCOL, NULL);
    send_raw_frame(fd, 0x84, 0, 3, CQL_OP_OPTIONS, NULL); /* response direction */
    expect_error(fd, 3, CQL_ERR_PROTOCOL, "direction");
    sib_buf_reset(&b);
    cql_put_long_string(&b, "SELECT", 6); /* no params */
    send_raw_frame(fd, 4, 0, 4, CQL_OP_QUERY, &b);
    expect_error(fd, 4, CQL_ERR_PROTOCOL, "QUERY");
    sib_buf_reset(&b);
    sib_buf_append(&b, "\xff\xff\xff\x00garbage", 11);
    send_raw_frame(fd, 4, 0, 5, CQL_OP_BATCH, &b);
    expect_error(fd, 5, CQL_ERR_PROTOCOL, NULL);
    send_raw_frame(fd, 4, CQL_FLAG_COMPRESSION, 6, CQL_OP_OPTIONS, NULL); /* not negotiated */
    expect_error(fd, 6, CQL_ERR_PROTOCOL, "compression");
    sib_buf_reset(&b);
    sib_buf_append(&b, "\x00\x05", 2); /* bad REGISTER list */
    send_raw_frame(fd, 4, 0, 7, CQL_OP_REGISTER, &b);
    expect_error(fd, 7, CQL_ERR_PROTOCOL, "REGISTER");
    const char *ev[] = {"BOGUS_EVENT"};
    sib_buf_reset(&b);
    cql_put_string_list(&b, ev, 1);
    send_raw_frame(fd, 4, 0, 8, CQL_OP_REGISTER, &b);
    expect_error(fd, 8, CQL_ERR_PROTOCOL, "BOGUS_EVENT");
    /* Custom payload is skipped; tracing flag is accepted. */
    sib_buf_reset(&b);
    cql_put_short(&b, 1);
    cql_put_cstring(&b, "k");
    cql_put_bytes(&b, "v", 1);
    cql_put_long_string(&b, "ks", 2);
    cql_put_short(&b, CQL_ONE);
    cql_put_byte(&b, 0);
    send_raw_frame(fd, 4, CQL_FLAG_CUSTOM_PAYLOAD | CQL_FLAG_TRACING, 9, CQL_OP_QUERY, &b);
    expect_text_row(fd, 9, "");

    /* Still alive. Now an oversized frame: error, then close. */
    const uint8_t huge[] = {4, 0, 0, 10, CQL_OP_QUERY, 0x7f, 0, 0, 0};
    write_all(fd, huge, sizeof huge);
    expect_error(fd, 10, CQL_ERR_PROTOCOL, "too big");
    assert_true(peer_closed(fd));
    close(fd);

    /* Pure garbage on a fresh connection. */
    fd = connect_to(h);
    write_all(fd, "GET / HTTP/1.1\r\n\r\n", 18);
    assert_true(recv_frame(fd, &hd, &b)); /* 'G' = 0x47: unsupported version */
    assert_int_equal(hd.opcode, CQL_OP_ERROR);
    assert_true(peer_closed(fd));
    close(fd);

    /* A client that vanishes mid-frame. */
    fd = connect_to(h);
    const uint8_t partial[] = {4, 0, 0, 1, CQL_OP_QUERY, 0, 0, 1, 0, 'x'};
    write_all(fd, partial, sizeof partial);
    close(fd);

    /* The other connection was never disturbed. */
    query_body(&b, "ks");
    send_raw_frame(other, 4, 0, 1, CQL_OP_QUERY, &b);
    expect_text_row(other, 1, "");
    close(other);
    sib_buf_free(&b);
}

static void test_server_lz4(void **state)
{
    harness *h = *state;
    int fd = connect_to(h);
    sib_buf b, f;
    sib_buf_init(&b);
    sib_buf_init(&f);
    cql_header hd;

    /* Unknown algorithm. */
    startup_body(&b, "snappy");
    send_raw_frame(fd, 4, 0, 1, CQL_OP_STARTUP, &b);
    expect_error(fd, 1, CQL_ERR_PROTOCOL, "snappy");

    handshake(fd, "lz4");
    /* A compressed QUERY, a compressed reply. */
    query_body(&b, "big 3000");
    size_t s = cql_frame_begin(&f, 4, 0, 2, CQL_OP_QUERY);
    sib_buf_append(&f, b.p, b.len);
    assert_int_equal(cql_frame_end(&f, s, true, NULL), 0);
    write_all(fd, f.p, f.len);
    uint8_t hdr[9];
    assert_true(read_exact(fd, hdr, 9));
    cql_header_decode(hdr, 9, &hd);
    assert_int_equal(hd.flags & CQL_FLAG_COMPRESSION, CQL_FLAG_COMPRESSION);
    assert_true(hd.length < 3000);
    sib_buf_reset(&b);
    uint8_t *p = sib_buf_reserve(&b, hd.length);
    assert_true(read_exact(fd, p, hd.length));
    b.len = hd.length;
    sib_buf out;
    sib_buf_init(&out);
    assert_int_equal(cql_lz4_decompress(b.p, b.len, 1 << 20, &out, NULL), 0);
    assert_int_equal(get_be32(out.p), CQL_RESULT_ROWS);
    assert_int_equal(out.p[out.len - 1], 'b');

    /* Uncompressed requests are still fine; a corrupt block is an error. */
    query_body(&b, "ks");
    send_raw_frame(fd, 4, 0, 3, CQL_OP_QUERY, &b);
    expect_text_row(fd, 3, "");
    /* A VOID result is compressed too (not stored as the plain 13 bytes). */
    query_body(&b, "void");
    send_raw_frame(fd, 4, 0, 3, CQL_OP_QUERY, &b);
    assert_true(recv_frame(fd, &hd, &b));
    assert_int_equal(hd.flags, CQL_FLAG_COMPRESSION);
    assert_int_equal(b.len, 4);
    assert_int_equal(get_be32(b.p), CQL_RESULT_VOID);
    /* Replies to requests read together: each compressed where it starts
     * in the connection's write buffer. */
    const char *qs[] = {"big 3000", "ks", "big 2000"};
    write_queries(fd, qs, 3, 10);
    char big[3001];
    memset(big, 'b', 3000);
    big[3000] = 0;
    expect_text_row(fd, 10, big);
    expect_text_row(fd, 11, "");
    big[2000] = 0;
    expect_text_row(fd, 12, big);
    sib_buf_reset(&b);
    sib_buf_append(&b, "\x00\x00\x00\x20\xff\xff\xff", 7);
    send_raw_frame(fd, 4, CQL_FLAG_COMPRESSION, 4, CQL_OP_QUERY, &b);
    expect_error(fd, 4, CQL_ERR_PROTOCOL, "lz4");
    send_raw_frame(fd, 4, 0, 5, CQL_OP_OPTIONS, NULL);
    assert_true(recv_frame(fd, &hd, &b));
    assert_int_equal(hd.opcode, CQL_OP_SUPPORTED);
    assert_int_equal(hd.flags, CQL_FLAG_COMPRESSION);
    sib_buf_free(&out);
    sib_buf_free(&b);
    sib_buf_free(&f);
    close(fd);
}

static void test_server_async_and_pipelining(void **state)
{
    harness *h = *state;
    int fd = connect_to(h);
    handshake(fd, NULL);
    sib_buf b, all;
    sib_buf_init(&b);
    sib_buf_init(&all);
    /* Three pipelined requests in one write; the first is answered last. */
    const char *qs[] = {"defer 150", "defer 20", "ks"};
    write_queries(fd, qs, 3, 100);
    expect_text_row(fd, 102, "");
    expect_text_row(fd, 101, "defer 20");
    expect_text_row(fd, 100, "defer 150");

    /* A rows reply left open while others are answered (a reply built in
     * the connection's write buffer moves out of the way): first while the
     * next request is parsed in the same read, then across loop iterations
     * (the flush at each one's end). */
    const char *qs2[] = {"split 100", "ks", "defer 20"};
    write_queries(fd, qs2, 3, 200);
    expect_text_row(fd, 201, "");
    expect_text_row(fd, 202, "defer 20");
    expect_text_row(fd, 200, "split-done");
    query_body(&b, "split 50");
    send_raw_frame(fd, 4, 0, 203, CQL_OP_QUERY, &b);
    usleep(10 * 1000);
    query_body(&b, "ks");
    send_raw_frame(fd, 4, 0, 204, CQL_OP_QUERY, &b);
    expect_text_row(fd, 204, "");
    expect_text_row(fd, 203, "split-done");

    /* More than max_inflight (8) deferred requests: all answered anyway. */
    sib_buf_reset(&all);
    for (int i = 0; i < 20; i++) {
        query_body(&b, "defer 10");
        size_t s = cql_frame_begin(&all, 4, 0, (int16_t)i, CQL_OP_QUERY);
        sib_buf_append(&all, b.p, b.len);
        cql_frame_end(&all, s, false, NULL);
    }
    write_all(fd, all.p, all.len);
    bool seen[20] = {false};
    for (int i = 0; i < 20; i++) {
        cql_header hd;
        assert_true(recv_frame(fd, &hd, &b));
        assert_int_equal(hd.opcode, CQL_OP_RESULT);
        assert_true(hd.stream >= 0 && hd.stream < 20 && !seen[hd.stream]);
        seen[hd.stream] = true;
    }

    /* The client leaves while a reply is pending: the reply is dropped. */
    query_body(&b, "defer 100");
    send_raw_frame(fd, 4, 0, 1, CQL_OP_QUERY, &b);
    usleep(20 * 1000);
    close(fd);
    usleep(300 * 1000);
    probe p;
    probe_run(h, &p);
    assert_int_equal(p.orphan_replies, 1);
    assert_int_equal(p.conns, 0);
    assert_true(p.closed_sessions >= 1);
    sib_buf_free(&b);
    sib_buf_free(&all);
}

static void test_server_write_backpressure(void **state)
{
    harness *h = *state;
    int fd = connect_to(h);
    handshake(fd, NULL);
    sib_buf b, all;
    sib_buf_init(&b);
    sib_buf_init(&all);
    /* ~9 MB of replies to a client that reads nothing for a while: the
     * server must queue, wait for EV_WRITE, and pause reading past WQ_HIGH. */
    for (int i = 0; i < 3; i++) {
        query_body(&b, "big 3000000");
        size_t s = cql_frame_begin(&all, 4, 0, (int16_t)(i + 1), CQL_OP_QUERY);
        sib_buf_append(&all, b.p, b.len);
        cql_frame_end(&all, s, false, NULL);
    }
    query_body(&b, "ks");
    size_t s = cql_frame_begin(&all, 4, 0, 4, CQL_OP_QUERY);
    sib_buf_append(&all, b.p, b.len);
    cql_frame_end(&all, s, false, NULL);
    write_all(fd, all.p, all.len);
    usleep(200 * 1000);
    for (int i = 0; i < 3; i++) {
        cql_header hd;
        assert_true(recv_frame(fd, &hd, &b));
        assert_int_equal(hd.stream, i + 1);
        assert_int_equal(hd.opcode, CQL_OP_RESULT);
        assert_true(b.len > 3000000);
        assert_int_equal(b.p[b.len - 1], 'b');
    }
    expect_text_row(fd, 4, "");
    close(fd);
    sib_buf_free(&b);
    sib_buf_free(&all);
}

static void test_server_events(void **state)
{
    harness *h = *state;
    int listener = connect_to(h);
    handshake(listener, "lz4");
    int plain = connect_to(h);
    handshake(plain, NULL);
    sib_buf b;
    sib_buf_init(&b);
    cql_header hd;
    const char *ev[] = {"TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"};
    cql_put_string_list(&b, ev, 3);
    send_raw_frame(listener, 4, 0, 1, CQL_OP_REGISTER, &b);
    assert_true(recv_frame(listener, &hd, &b));
    assert_int_equal(hd.opcode, CQL_OP_READY);

    query_body(&b, "broadcast");
    send_raw_frame(plain, 4, 0, 2, CQL_OP_QUERY, &b);
    assert_true(recv_frame(plain, &hd, &b));
    assert_int_equal(hd.opcode, CQL_OP_RESULT);
    assert_int_equal(get_be32(b.p), CQL_RESULT_SCHEMA_CHANGE);

    assert_true(recv_frame(listener, &hd, &b));
    assert_int_equal(hd.opcode, CQL_OP_EVENT);
    assert_int_equal(hd.stream, -1);
    assert_int_equal(hd.flags, CQL_FLAG_COMPRESSION);
    const uint8_t exp[] = {0, 13, 'S', 'C', 'H', 'E', 'M', 'A', '_', 'C', 'H', 'A', 'N', 'G', 'E',
                           0, 7, 'C', 'R', 'E', 'A', 'T', 'E', 'D', 0, 5, 'T', 'A', 'B', 'L', 'E',
                           0, 2, 'k', 's', 0, 1, 't'};
    assert_bytes(&b, exp, sizeof exp);
    /* The connection that did not register got no event. */
    struct pollfd pf = {.fd = plain, .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 100), 0);
    close(listener);
    close(plain);
    sib_buf_free(&b);
}

/* A traced reply (protocol spec 2.2): the TRACING flag, the executor's
 * session id first in the body, then the message; trace_done runs once per
 * traced request, for errors too. A TRACING request the executor does not
 * trace gets a plain reply. */
/* Out of descriptors, accept fails with EMFILE on a listener that stays
 * readable: the server must rest instead of spinning, then accept the
 * waiting connection once descriptors are back. */
static void test_server_accept_backs_off_on_emfile(void **state)
{
    harness *h = *state;
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = dup(0); /* the lowest free descriptor */
    assert_true(lowest >= 0);
    close(lowest);
    /* Room for exactly one more descriptor: the client's socket. */
    struct rlimit tight = {.rlim_cur = (rlim_t)lowest + 1, .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
    int fd = connect_to(h);
    probe p;
    for (int i = 0; i < 100; i++) { /* bounded: 2 s */
        usleep(20000);
        probe_run(h, &p);
        if (p.stats.accept_backoffs >= 1) break;
    }
    /* A spinning loop would retry thousands of times in the same period;
     * with 100 ms rests it is a handful. */
    usleep(300000);
    probe_run(h, &p);
    uint64_t backoffs = p.stats.accept_backoffs;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_true(backoffs >= 1 && backoffs <= 30);
    assert_int_equal(p.conns, 0);
    for (int i = 0; i < 100 && p.conns == 0; i++) {
        usleep(20000);
        probe_run(h, &p);
    }
    assert_int_equal(p.conns, 1); /* accepted once descriptors were back */
    close(fd);
}

static void test_server_tracing(void **state)
{
    harness *h = *state;
    int fd = connect_to(h);
    sib_buf b;
    sib_buf_init(&b);
    cql_header hd;
    startup_body(&b, NULL);
    send_raw_frame(fd, 4, 0, 1, CQL_OP_STARTUP, &b);
    assert_true(recv_frame(fd, &hd, &b));
    assert_int_equal(hd.opcode, CQL_OP_READY);

    query_body(&b, "traced");
    send_raw_frame(fd, 4, CQL_FLAG_TRACING, 2, CQL_OP_QUERY, &b);
    assert_true(recv_frame(fd, &hd, &b));
    assert_int_equal(hd.opcode, CQL_OP_RESULT);
    assert_int_equal(hd.flags, CQL_FLAG_TRACING);
    assert_int_equal(b.len, 16 + 4);
    for (int i = 0; i < 16; i++) assert_int_equal(b.p[i], 0xA0 + i);
    assert_int_equal(get_be32(b.p + 16), CQL_RESULT_VOID);

    query_body(&b, "traced error");
    send_raw_frame(fd, 4, CQL_FLAG_TRACING, 3, CQL_OP_QUERY, &b);
    assert_true(recv_frame(fd, &hd, &b));
    assert_int_equal(hd.opcode, CQL_OP_ERROR);
    assert_int_equal(hd.flags, CQL_FLAG_TRACING);
    assert_true(b.len > 16 + 4);
    assert_int_equal(b.p[15], 0xAF);
    assert_int_equal(get_be32(b.p + 16), CQL_ERR_INVALID);

    query_body(&b, "params");
    send_raw_frame(fd, 4, CQL_FLAG_TRACING, 4, CQL_OP_QUERY, &b);
    assert_true(recv_frame(fd, &hd, &b));
    assert_int_equal(hd.opcode, CQL_OP_RESULT);
    assert_int_equal(hd.flags, 0);
    assert_int_equal(get_be32(b.p), CQL_RESULT_ROWS);

    probe p;
    probe_run(h, &p);
    assert_int_equal(p.traces_done, 2);
    sib_buf_free(&b);
    close(fd);
}

static void test_server_two_addresses(void **state)
{
    /* Two servers on 127.0.0.1 and 127.0.0.2 with the same port. */
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    fake_exec fx = {.base = {.request = fake_request}, .loop = loop};
    sib_err err = {0};
    cql_server_opts o = {.bind_addr = "127.0.0.1"};
    cql_server *a = cql_server_create(loop, &o, &fx.base, &err);
    assert_non_null(a);
    o.bind_addr = "127.0.0.2";
    o.port = cql_server_port(a);
    cql_server *b = cql_server_create(loop, &o, &fx.base, &err);
    if (!b) fprintf(stderr, "(127.0.0.2 unavailable here: %s)\n", err.msg);
    o.bind_addr = "127.0.0.1";
    cql_server *c = cql_server_create(loop, &o, &fx.base, &err);
    assert_null(c); /* the same address twice is refused */
    o.bind_addr = "not-an-ip";
    assert_null(cql_server_create(loop, &o, &fx.base, &err));
    assert_int_equal(err.code, SIB_ECONFIG);
    cql_server_destroy(b);
    cql_server_destroy(a);
    ev_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_roundtrip),
        cmocka_unit_test(test_frame_begin_end),
        cmocka_unit_test(test_notation_writers),
        cmocka_unit_test(test_notation_readers),
        cmocka_unit_test(test_notation_invalid),
        cmocka_unit_test(test_lz4_roundtrip),
        cmocka_unit_test(test_put_type),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_decode_query_all_flags),
        cmocka_unit_test(test_decode_query_minimal),
        cmocka_unit_test(test_decode_prepare_execute),
        cmocka_unit_test(test_decode_execute_values),
        cmocka_unit_test(test_decode_batch),
        cmocka_unit_test(test_error_bodies),
        cmocka_unit_test(test_schema_change_body),
        cmocka_unit_test(test_rows_builder),
        cmocka_unit_test(test_prepared_body),
        cmocka_unit_test_setup_teardown(test_server_options_startup_query, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_server_version_negotiation, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_server_bad_frames, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_server_lz4, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_server_async_and_pipelining, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_server_write_backpressure, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_server_events, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_server_tracing, harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_server_accept_backs_off_on_emfile, harness_setup, harness_teardown),
        cmocka_unit_test(test_server_two_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
