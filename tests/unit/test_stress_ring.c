/* test_stress_ring.c: sibyl-stress's token ring (tools/stress/ring.c): which
 * node a token goes to (the first ring token >= it, wrapping), a single
 * node, tokens claimed twice, nodes told apart by host id or address, the
 * tokens cell of system.local / system.peers, and the routing key's token.
 *
 * The token vectors are the Python driver's Murmur3Token.hash_fn (an
 * implementation of Cassandra's Murmur3Partitioner independent of ours)
 * over the serialized keys; test_paging.py has text 'foo' from the server's
 * token(), and test_stress.py checks the server's token() of every row
 * sibyl-stress routes against the same function. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../tools/stress/stress.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t ID_A[16] = {0xa};
static const uint8_t ID_B[16] = {0xb};
static const uint8_t ID_C[16] = {0xc};

/* Nodes a (tokens -100, 0, 100) and b (-50, 50), added a first. */
static void two_nodes(stress_ring *r)
{
    ring_init(r);
    int a = ring_add_node(r, "127.0.0.1", 9042, ID_A, "dc1");
    int b = ring_add_node(r, "127.0.0.2", 9042, ID_B, "dc1");
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    const int64_t ta[] = {100, -100, 0}, tb[] = {50, -50};
    for (size_t i = 0; i < 3; i++) assert_int_equal(ring_add_token(r, a, ta[i]), 0);
    for (size_t i = 0; i < 2; i++) assert_int_equal(ring_add_token(r, b, tb[i]), 0);
    assert_int_equal(ring_finish(r), 0);
}

static void test_lookup_first_token_at_or_after(void **state)
{
    (void)state;
    stress_ring r;
    two_nodes(&r);
    assert_int_equal(r.ntokens, 5);
    for (size_t i = 1; i < r.ntokens; i++) assert_true(r.tokens[i - 1] < r.tokens[i]);
    /* A token equal to a ring token belongs to that token's node: ranges
     * are (previous, token]. */
    assert_int_equal(ring_lookup(&r, -100), 0);
    assert_int_equal(ring_lookup(&r, -50), 1);
    assert_int_equal(ring_lookup(&r, 0), 0);
    assert_int_equal(ring_lookup(&r, 50), 1);
    assert_int_equal(ring_lookup(&r, 100), 0);
    /* Between two tokens: the next one up. */
    assert_int_equal(ring_lookup(&r, -99), 1);
    assert_int_equal(ring_lookup(&r, -51), 1);
    assert_int_equal(ring_lookup(&r, -49), 0);
    assert_int_equal(ring_lookup(&r, 1), 1);
    assert_int_equal(ring_lookup(&r, 51), 0);
    ring_free(&r);
}

static void test_lookup_wraps_around(void **state)
{
    (void)state;
    stress_ring r;
    two_nodes(&r);
    /* Past the largest token the ring wraps to the smallest (-100: a). */
    assert_int_equal(ring_lookup(&r, 101), 0);
    assert_int_equal(ring_lookup(&r, INT64_MAX), 0);
    /* Below the smallest: the smallest. */
    assert_int_equal(ring_lookup(&r, INT64_MIN), 0);
    assert_int_equal(ring_lookup(&r, -101), 0);
    ring_free(&r);
    /* The same with b owning the smallest token. */
    ring_init(&r);
    int a = ring_add_node(&r, "a", 1, NULL, NULL), b = ring_add_node(&r, "b", 1, NULL, NULL);
    assert_int_equal(ring_add_token(&r, a, 10), 0);
    assert_int_equal(ring_add_token(&r, b, -10), 0);
    assert_int_equal(ring_finish(&r), 0);
    assert_int_equal(ring_lookup(&r, 11), b);
    assert_int_equal(ring_lookup(&r, INT64_MAX), b);
    assert_int_equal(ring_lookup(&r, -10), b);
    assert_int_equal(ring_lookup(&r, -9), a);
    ring_free(&r);
}

static void test_single_node_and_empty_ring(void **state)
{
    (void)state;
    stress_ring r;
    ring_init(&r);
    assert_int_equal(ring_finish(&r), 0);
    assert_int_equal(ring_lookup(&r, 0), -1); /* no tokens: nothing to route by */
    int n = ring_add_node(&r, "127.0.0.1", 9042, ID_A, "dc1");
    assert_int_equal(ring_lookup(&r, 0), -1);
    for (int64_t t = -4; t <= 4; t++) assert_int_equal(ring_add_token(&r, n, t * 1000), 0);
    assert_int_equal(ring_finish(&r), 0);
    const int64_t probes[] = {INT64_MIN, -4001, -4000, -1, 0, 1, 3999, 4000, 4001, INT64_MAX};
    for (size_t i = 0; i < SIB_ARRAY_LEN(probes); i++) assert_int_equal(ring_lookup(&r, probes[i]), n);
    assert_int_equal(ring_add_token(&r, 5, 1), SIB_EINVAL); /* no such node */
    ring_free(&r);
}

static void test_duplicate_tokens(void **state)
{
    (void)state;
    stress_ring r;
    ring_init(&r);
    int a = ring_add_node(&r, "127.0.0.1", 9042, ID_A, NULL);
    int b = ring_add_node(&r, "127.0.0.2", 9042, ID_B, NULL);
    int c = ring_add_node(&r, "127.0.0.3", 9042, ID_C, NULL);
    /* 20 claimed by c then b then a, in that order: a (added first) keeps
     * it whatever the order the tokens came in; 30 twice by the same node
     * is one entry. */
    assert_int_equal(ring_add_token(&r, c, 20), 0);
    assert_int_equal(ring_add_token(&r, b, 20), 0);
    assert_int_equal(ring_add_token(&r, b, 30), 0);
    assert_int_equal(ring_add_token(&r, b, 30), 0);
    assert_int_equal(ring_add_token(&r, a, 20), 0);
    assert_int_equal(ring_add_token(&r, c, 40), 0);
    assert_int_equal(ring_finish(&r), 0);
    assert_int_equal(r.ntokens, 3);
    assert_int_equal(r.tokens[0], 20);
    assert_int_equal(r.tokens[1], 30);
    assert_int_equal(r.tokens[2], 40);
    assert_int_equal(ring_lookup(&r, 15), a);
    assert_int_equal(ring_lookup(&r, 20), a);
    assert_int_equal(ring_lookup(&r, 25), b);
    assert_int_equal(ring_lookup(&r, 35), c);
    assert_int_equal(ring_lookup(&r, 41), a);
    /* finish twice changes nothing */
    assert_int_equal(ring_finish(&r), 0);
    assert_int_equal(r.ntokens, 3);
    ring_free(&r);
}

static void test_nodes_told_apart(void **state)
{
    (void)state;
    stress_ring r;
    ring_init(&r);
    /* The same host id is the same node, whatever address it was found at
     * (a contact point listed twice, or a contact point and a peer). */
    assert_int_equal(ring_add_node(&r, "localhost", 9042, ID_A, "dc1"), 0);
    assert_int_equal(ring_add_node(&r, "127.0.0.1", 9042, ID_A, "dc1"), 0);
    assert_string_equal(r.nodes[0].host, "localhost");
    /* Without host ids: the address and port. */
    assert_int_equal(ring_add_node(&r, "10.0.0.1", 9042, NULL, NULL), 1);
    assert_int_equal(ring_add_node(&r, "10.0.0.1", 9043, NULL, NULL), 2);
    assert_int_equal(ring_add_node(&r, "10.0.0.1", 9042, NULL, NULL), 1);
    assert_int_equal(ring_add_node(&r, "::1", 9042, ID_B, "dc2"), 3);
    assert_int_equal(r.nnodes, 4);
    assert_string_equal(r.nodes[0].name, "localhost:9042");
    assert_string_equal(r.nodes[2].name, "10.0.0.1:9043");
    assert_string_equal(r.nodes[3].name, "[::1]:9042");
    assert_string_equal(r.nodes[3].dc, "dc2");
    assert_true(r.nodes[3].has_id && !r.nodes[1].has_id);
    /* Full ring / over-long address: -1. */
    char host[STRESS_HOST_LEN + 1];
    memset(host, 'h', sizeof(host) - 1);
    host[sizeof(host) - 1] = 0;
    assert_int_equal(ring_add_node(&r, host, 1, NULL, NULL), -1);
    for (int i = (int)r.nnodes; i < STRESS_RING_MAX; i++) {
        char h[32];
        snprintf(h, sizeof(h), "10.1.0.%d", i);
        assert_int_equal(ring_add_node(&r, h, 9042, NULL, NULL), i);
    }
    assert_int_equal(ring_add_node(&r, "10.2.0.1", 9042, NULL, NULL), -1);
    ring_free(&r);
}

/* A set<text> cell as the protocol carries it: [int n] n x [bytes]. */
static size_t set_cell(uint8_t *out, const char *const *items, int n)
{
    size_t len = 0;
    put_be32(out, (uint32_t)n);
    len += 4;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(items[i]);
        put_be32(out + len, (uint32_t)l);
        memcpy(out + len + 4, items[i], l);
        len += 4 + l;
    }
    return len;
}

static void test_tokens_cell(void **state)
{
    (void)state;
    stress_ring r;
    ring_init(&r);
    int n = ring_add_node(&r, "127.0.0.1", 9042, ID_A, NULL);
    uint8_t buf[256];
    const char *toks[] = {"-9223372036854775808", "0", "9223372036854775807", "-2129773440516405919"};
    size_t len = set_cell(buf, toks, 4);
    assert_int_equal(ring_add_tokens_cell(&r, n, (cql_value){buf, (int32_t)len}), 0);
    assert_int_equal(r.nodes[n].ntokens, 4);
    assert_int_equal(ring_finish(&r), 0);
    assert_int_equal(r.tokens[0], INT64_MIN);
    assert_int_equal(r.tokens[1], -2129773440516405919LL);
    assert_int_equal(r.tokens[3], INT64_MAX);
    /* null: a node with no tokens (not joined) */
    assert_int_equal(ring_add_tokens_cell(&r, n, (cql_value){NULL, -1}), 0);
    /* malformed: not a number, out of range, truncated, negative count */
    const char *bad1[] = {"12x"}, *bad2[] = {"9223372036854775808"}, *bad3[] = {""};
    len = set_cell(buf, bad1, 1);
    assert_int_equal(ring_add_tokens_cell(&r, n, (cql_value){buf, (int32_t)len}), SIB_EPROTO);
    len = set_cell(buf, bad2, 1);
    assert_int_equal(ring_add_tokens_cell(&r, n, (cql_value){buf, (int32_t)len}), SIB_EPROTO);
    len = set_cell(buf, bad3, 1);
    assert_int_equal(ring_add_tokens_cell(&r, n, (cql_value){buf, (int32_t)len}), SIB_EPROTO);
    len = set_cell(buf, toks, 2);
    assert_int_equal(ring_add_tokens_cell(&r, n, (cql_value){buf, (int32_t)len - 1}), SIB_EPROTO);
    put_be32(buf, 0xffffffffu);
    assert_int_equal(ring_add_tokens_cell(&r, n, (cql_value){buf, 4}), SIB_EPROTO);
    ring_free(&r);
}

static cql_value val(const void *p, size_t len)
{
    return (cql_value){p, (int32_t)len};
}

static void test_routing_token_vectors(void **state)
{
    (void)state;
    sib_buf scratch;
    sib_buf_init(&scratch);
    int64_t t;
    const uint16_t first[] = {0};
    /* text 'foo' (test_paging.py's vector from the server's token()) */
    cql_value v[3] = {val("foo", 3)};
    assert_true(stress_routing_token(v, 1, first, 1, &scratch, &t));
    assert_int_equal(t, -2129773440516405919LL);
    /* The built-in workloads' blob key of index 1: "0000000001" */
    uint8_t key[STRESS_KEY_LEN];
    stress_key(1, key);
    assert_memory_equal(key, "0000000001", STRESS_KEY_LEN);
    v[0] = val("value", 5);
    v[1] = val(key, sizeof(key));
    const uint16_t second[] = {1};
    assert_true(stress_routing_token(v, 2, second, 1, &scratch, &t));
    assert_int_equal(t, 8358321750318573859LL);
    /* bigint 42: its 8 big-endian bytes */
    uint8_t big[8];
    put_be64(big, 42);
    v[0] = val(big, 8);
    assert_true(stress_routing_token(v, 1, first, 1, &scratch, &t));
    assert_int_equal(t, 8623491988607824794LL);
    /* (sensor text, day int) = ('sensor000001', 20001), bound in the
     * statement's order day, x, sensor: pk_index puts them in key order. */
    uint8_t day[4];
    put_be32(day, 20001);
    v[0] = val(day, 4);
    v[1] = val("x", 1);
    v[2] = val("sensor000001", 12);
    const uint16_t composite[] = {2, 0};
    assert_true(stress_routing_token(v, 3, composite, 2, &scratch, &t));
    assert_int_equal(t, 4987056492704418830LL);
    /* Not routable: no key, a null or unset component, an index past the values. */
    assert_false(stress_routing_token(v, 3, composite, 0, &scratch, &t));
    v[0].len = -1;
    assert_false(stress_routing_token(v, 3, composite, 2, &scratch, &t));
    v[0].len = -2;
    assert_false(stress_routing_token(v, 3, composite, 2, &scratch, &t));
    assert_false(stress_routing_token(v, 2, composite, 2, &scratch, &t));
    sib_buf_free(&scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_first_token_at_or_after),
        cmocka_unit_test(test_lookup_wraps_around),
        cmocka_unit_test(test_single_node_and_empty_ring),
        cmocka_unit_test(test_duplicate_tokens),
        cmocka_unit_test(test_nodes_told_apart),
        cmocka_unit_test(test_tokens_cell),
        cmocka_unit_test(test_routing_token_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
