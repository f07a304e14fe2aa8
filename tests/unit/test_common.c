/* Unit tests for common/: murmur3 tokens against the Python driver's vectors,
 * CRC32C against the standard check value, varints, buffers and uuids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <unistd.h>

#include "common.h"

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static void test_murmur3_vectors(void **state)
{
    (void)state;
    /* From docs/protocol.md section 10 (cassandra.cmurmur3). */
    static const struct { const char *hex; int64_t h1; } v[] = {
        {"", 0},
        {"666f6f", -2129773440516405919LL},
        {"68656c6c6f20776f726c64", 5998619086395760910LL},
        {"00000001", -4069959284402364209LL},
        {"0000000000000001", 6292367497774912474LL},
        {"ffffff", -9154616442117352147LL},
        {"000102030405060708090a0b0c0d0e0f10111213", -6642154758453422773LL},
        {"000400000001000003666f6f00", -5247490290428947122LL},
        {"0004000000010000040000000200", 4881097376275569167LL},
    };
    for (size_t i = 0; i < SIB_ARRAY_LEN(v); i++) {
        uint8_t buf[64];
        size_t n = unhex(v[i].hex, buf);
        assert_int_equal(sib_murmur3_h1(buf, n), v[i].h1);
    }
    assert_true(sib_murmur3_token("", 0) == INT64_MIN);
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(sib_crc32c(0, "123456789", 9), 0xE3069283u);
    /* Incremental equals one-shot. */
    uint32_t c = sib_crc32c(0, "1234", 4);
    assert_int_equal(sib_crc32c(c, "56789", 5), 0xE3069283u);
    /* Hardware and table versions agree on every length and alignment. */
    uint8_t buf[300];
    sib_rng r;
    sib_rng_seed(&r);
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)sib_rng_next(&r);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += 7)
            assert_int_equal(sib_crc32c(17, buf + off, n), sib_crc32c_portable(17, buf + off, n));
    /* The pair is the two one-shot crcs. */
    for (size_t n = 0; n + 4 <= sizeof buf; n += 13) {
        uint32_t ca, cb;
        sib_crc32c_pair(buf + 1, 4, &ca, buf + 4, n, &cb);
        assert_int_equal(ca, sib_crc32c(0, buf + 1, 4));
        assert_int_equal(cb, sib_crc32c_portable(0, buf + 4, n));
    }
}

static void test_varint_and_reader(void **state)
{
    (void)state;
    sib_buf b;
    sib_buf_init(&b);
    uint64_t vals[] = {0, 1, 127, 128, 300, UINT64_MAX};
    for (size_t i = 0; i < SIB_ARRAY_LEN(vals); i++) sib_buf_uvarint(&b, vals[i]);
    sib_buf_be32(&b, 0xdeadbeef);
    sib_rd r;
    sib_rd_init(&r, b.p, b.len);
    for (size_t i = 0; i < SIB_ARRAY_LEN(vals); i++) {
        uint64_t v;
        assert_true(sib_rd_uvarint(&r, &v));
        assert_true(v == vals[i]);
    }
    uint32_t x;
    assert_true(sib_rd_be32(&r, &x));
    assert_int_equal(x, 0xdeadbeef);
    assert_false(sib_rd_u8(&r, (uint8_t *)&x)); /* past the end fails, never reads */
    assert_true(r.bad);
    assert_int_equal(zigzag_dec(zigzag_enc(-5)), -5);
    sib_buf_free(&b);
}

/* The varint codec as the format defines it, a byte at a time: what the
 * word-at-a-time paths of put_uvarint/get_uvarint must match. */
static size_t ref_put_uvarint(uint8_t *p, uint64_t v)
{
    size_t i = 0;
    while (v >= 0x80) { p[i++] = (uint8_t)(v | 0x80); v >>= 7; }
    p[i++] = (uint8_t)v;
    return i;
}

static size_t ref_get_uvarint(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) { *out = v; return i + 1; }
    }
    return 0;
}

static void test_varint_word_paths(void **state)
{
    (void)state;
    sib_rng rng;
    sib_rng_seed(&rng);
    for (int i = 0; i < 20000; i++) {
        /* every bit length, each edge of a byte count, random bits */
        int bits = i % 65;
        uint64_t v = bits == 64 ? sib_rng_next(&rng) : sib_rng_next(&rng) & ((1ull << bits) - 1);
        if (i % 7 == 0 && bits) v = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
        if (i % 11 == 0 && bits && bits < 64) v = 1ull << (bits - 1);
        uint8_t a[16], b[16];
        memset(a, 0xee, sizeof a);
        size_t na = put_uvarint(a, v), nb = ref_put_uvarint(b, v);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na);
        if (bits <= 56 && v < (1ull << 56)) { /* the inline word writer */
            memset(a, 0xee, sizeof a);
            assert_int_equal(put_uvarint_word(a, v), nb);
            assert_memory_equal(a, b, nb);
        }
        /* decoded from exactly its bytes, with more after, and truncated */
        for (size_t room = 0; room <= 12; room++) {
            uint8_t c[16];
            memset(c, 0, sizeof c);
            memcpy(c, b, nb);
            for (size_t k = nb; k < sizeof c; k++) c[k] = (uint8_t)sib_rng_next(&rng);
            uint64_t x = 7, y = 7;
            size_t gx = get_uvarint(c, room, &x), gy = ref_get_uvarint(c, room, &y);
            assert_int_equal(gx, gy);
            assert_true(gx == 0 || x == y);
            if (room >= nb) assert_true(gx == nb && x == v);
        }
    }
    /* random bytes: continuation bits anywhere, overlong runs */
    for (int i = 0; i < 20000; i++) {
        uint8_t c[12];
        uint64_t m = sib_rng_next(&rng), w = sib_rng_next(&rng);
        for (size_t k = 0; k < sizeof c; k++) c[k] = (uint8_t)(w >> (8 * (k % 8))) | ((m >> k) & 1 ? 0x80 : 0);
        if (i % 5 == 0) memset(c, 0xff, sizeof c);
        for (size_t room = 0; room <= sizeof c; room++) {
            uint64_t x = 7, y = 7;
            size_t gx = get_uvarint(c, room, &x), gy = ref_get_uvarint(c, room, &y);
            assert_int_equal(gx, gy);
            assert_true(gx == 0 || x == y);
        }
        /* the inline word reader: the same varint when it ends within the
         * word, else 0 */
        uint64_t x = 7, y = 7;
        size_t gx = get_uvarint_word(c, &x), gy = ref_get_uvarint(c, sizeof c, &y);
        assert_int_equal(gx, gy <= 8 ? gy : 0);
        assert_true(gx == 0 || x == y);
    }
}

static void test_uuid_roundtrip(void **state)
{
    (void)state;
    uint8_t u[16], u2[16];
    char s[37];
    sib_rng r;
    sib_rng_seed(&r);
    sib_uuid_v4(&r, u);
    sib_uuid_format(u, s);
    assert_int_equal(strlen(s), 36);
    assert_true(sib_uuid_parse(s, 36, u2));
    assert_memory_equal(u, u2, 16);
    assert_int_equal(u[6] >> 4, 4);
    sib_timeuuid_gen g;
    sib_timeuuid_init(&g);
    uint8_t a[16], b2[16];
    sib_timeuuid_next(&g, a);
    sib_timeuuid_next(&g, b2);
    assert_int_equal(a[6] >> 4, 1);
    assert_false(sib_uuid_parse("not-a-uuid", 10, u2));
}

static void test_arena(void **state)
{
    (void)state;
    sib_arena *a = sib_arena_create(128);
    char *s = sib_arena_strdup(a, "hello");
    void *big = sib_arena_alloc(a, 10000);
    assert_non_null(big);
    assert_string_equal(s, "hello");
    assert_true(((uintptr_t)sib_arena_alloc(a, 3) & 7) == 0);
    sib_arena_destroy(a);

    /* The inline bump and the new-chunk path: allocations of every small
     * size, zero included, across many chunks, stay aligned, distinct and
     * intact, after a clear and after a reset too. */
    a = sib_arena_create(256);
    for (int round = 0; round < 3; round++) {
        uint8_t *ps[400];
        size_t ns[400];
        for (size_t i = 0; i < 400; i++) {
            ns[i] = i % 70 == 69 ? 200 : i % 41; /* now and then a big one, behind the head */
            ps[i] = sib_arena_alloc(a, ns[i]);
            assert_non_null(ps[i]);
            assert_true(((uintptr_t)ps[i] & 7) == 0);
            memset(ps[i], (int)(i & 0xff), ns[i]);
        }
        for (size_t i = 0; i < 400; i++)
            for (size_t k = 0; k < ns[i]; k++) assert_int_equal(ps[i][k], (uint8_t)(i & 0xff));
        assert_true(sib_arena_used(a) >= 256);
        if (round == 0) sib_arena_clear(a);
        else sib_arena_reset(a);
    }
    assert_non_null(sib_arena_alloc(a, 0)); /* no chunk yet: still not NULL */
    sib_arena_destroy(a);
}

/* Cassandra's heap formula: between min(RAM/2, 1 GiB) and 8 GiB. */
static void test_memory_budget(void **state)
{
    (void)state;
    uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE), g = (uint64_t)1 << 30;
    uint64_t b = sib_memory_budget();
    assert_true(b >= SIB_MIN(ram / 2, g));
    assert_true(b <= 8 * g && b <= ram);
    assert_true(b == SIB_MAX(SIB_MIN(ram / 2, g), SIB_MIN(ram / 4, 8 * g)));
}

/* ---- LRU by bytes ---- */

typedef struct freed_log {
    int n;
    int last;
} freed_log;

static void note_free(void *ctx, void *value)
{
    freed_log *f = ctx;
    f->n++;
    f->last = *(int *)value;
}

static void key_of(int i, uint8_t k[16])
{
    memset(k, 0, 16);
    put_be32(k, (uint32_t)i * 2654435761u);
    put_be32(k + 12, (uint32_t)i);
}

static void test_lru_evicts_least_recently_used_by_bytes(void **state)
{
    (void)state;
    freed_log f = {0};
    int vals[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    sib_lru *l = sib_lru_create(100, note_free, &f);
    assert_non_null(l);
    uint8_t k[16];
    for (int i = 0; i < 3; i++) {
        key_of(i, k);
        assert_int_equal(sib_lru_put(l, k, &vals[i], 30), 0);
    }
    assert_int_equal(sib_lru_weight(l), 90);
    key_of(0, k);
    assert_ptr_equal(sib_lru_get(l, k), &vals[0]); /* 0 is now the most recent; 1 the least */
    key_of(3, k);
    assert_int_equal(sib_lru_put(l, k, &vals[3], 30), 0);
    assert_int_equal(f.n, 1);
    assert_int_equal(f.last, 1);
    key_of(1, k);
    assert_null(sib_lru_get(l, k));
    assert_int_equal(sib_lru_count(l), 3);
    assert_int_equal(sib_lru_weight(l), 90);
    /* A heavy value pushes out as many as it needs, oldest first (2, 0). */
    key_of(4, k);
    assert_int_equal(sib_lru_put(l, k, &vals[4], 65), 0);
    assert_int_equal(f.n, 3);
    assert_int_equal(sib_lru_weight(l), 95);
    key_of(3, k);
    assert_ptr_equal(sib_lru_get(l, k), &vals[3]);
    /* Heavier than the whole cache: refused, nothing changes. */
    key_of(5, k);
    assert_int_equal(sib_lru_put(l, k, &vals[5], 101), SIB_ETOOBIG);
    assert_int_equal(sib_lru_count(l), 2);
    assert_int_equal(sib_lru_evictions(l), 3);
    sib_lru_destroy(l); /* frees the remaining two */
    assert_int_equal(f.n, 5);
}

static void test_lru_many_entries(void **state)
{
    (void)state;
    freed_log f = {0};
    static int v[5000];
    sib_lru *l = sib_lru_create(1000 * 16, note_free, &f);
    uint8_t k[16];
    for (int i = 0; i < 5000; i++) {
        v[i] = i;
        key_of(i, k);
        assert_int_equal(sib_lru_put(l, k, &v[i], 16), 0);
    }
    assert_int_equal(sib_lru_count(l), 1000);
    assert_int_equal(f.n, 4000);
    for (int i = 0; i < 5000; i++) {
        key_of(i, k);
        if (i < 4000) assert_null(sib_lru_get(l, k));
        else assert_ptr_equal(sib_lru_get(l, k), &v[i]);
    }
    sib_lru_destroy(l);
}

/* ---- descriptor budget and rate limiting ---- */

static void test_fd_budget(void **state)
{
    (void)state;
    sib_fd_budget b = {.limit = 1024, .base = 80, .sstables = 0, .internode = 0};
    assert_int_equal(sib_fd_reserve(&b), 80);
    assert_int_equal(sib_fd_client_max(&b), 944);
    b.sstables = 100; /* two descriptors each */
    assert_int_equal(sib_fd_reserve(&b), 280);
    assert_int_equal(sib_fd_client_max(&b), 744);
    b.internode = 12;
    assert_int_equal(sib_fd_client_max(&b), 732);
    b.limit = 200; /* the reserve takes everything: no client at all */
    assert_int_equal(sib_fd_client_max(&b), 0);
    uint64_t soft, hard;
    sib_err err = {0};
    assert_int_equal(sib_fd_limit_raise(&soft, &hard, &err), 0);
    assert_true(soft == hard);
}

static void test_ratelimit(void **state)
{
    (void)state;
    sib_ratelimit r;
    sib_ratelimit_init(&r, 1000);
    uint64_t dropped = 99;
    assert_true(sib_ratelimit_allow(&r, 5, &dropped));
    assert_int_equal(dropped, 0);
    for (int i = 0; i < 7; i++) assert_false(sib_ratelimit_allow(&r, 6 + i, &dropped));
    assert_true(sib_ratelimit_allow(&r, 1005, &dropped));
    assert_int_equal(dropped, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur3_vectors),
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_varint_and_reader),
        cmocka_unit_test(test_varint_word_paths),
        cmocka_unit_test(test_uuid_roundtrip),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_memory_budget),
        cmocka_unit_test(test_lru_evicts_least_recently_used_by_bytes),
        cmocka_unit_test(test_lru_many_entries),
        cmocka_unit_test(test_fd_budget),
        cmocka_unit_test(test_ratelimit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
