/* Unit tests for coordinator/: replication option parsing, replica walks and
 * consistency arithmetic (Cassandra's blockFor and Unavailable extras). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "coordinator.h"

static coord *one_node(void)
{
    int64_t toks[4] = {-100, 0, 100, 5000};
    coord_member_opts o = {.addr = "127.0.0.1", .dc = "datacenter1", .rack = "rack1", .tokens = toks, .ntokens = 4};
    return coord_create(&o, NULL);
}

static void test_repl_parse(void **state)
{
    (void)state;
    coord_repl r;
    sib_err err;
    const char *cls;
    const char *k1[] = {"class", "replication_factor"}, *v1[] = {"SimpleStrategy", "3"};
    assert_int_equal(coord_repl_parse(k1, v1, 2, &r, &cls, &err), 0);
    assert_int_equal(r.kind, REPL_SIMPLE);
    assert_int_equal(r.rf, 3);
    assert_string_equal(cls, "org.apache.cassandra.locator.SimpleStrategy");

    const char *k2[] = {"class", "datacenter1", "dc2"}, *v2[] = {"NetworkTopologyStrategy", "2", "1"};
    assert_int_equal(coord_repl_parse(k2, v2, 3, &r, &cls, &err), 0);
    assert_int_equal(coord_repl_total(&r), 3);

    const char *k3[] = {"class"}, *v3[] = {"SimpleStrategy"};
    assert_int_equal(coord_repl_parse(k3, v3, 1, &r, &cls, &err), SIB_ECONFIG);
    assert_string_equal(err.msg, "SimpleStrategy requires a replication_factor strategy option.");

    const char *v4[] = {"NoSuchStrategy"};
    assert_int_equal(coord_repl_parse(k3, v4, 1, &r, &cls, &err), SIB_ECONFIG);
    const char *v5[] = {"SimpleStrategy", "x"};
    assert_int_equal(coord_repl_parse(k1, v5, 2, &r, &cls, &err), SIB_ECONFIG);
}

static void test_block_for_and_check(void **state)
{
    (void)state;
    coord *c = one_node();
    coord_repl rf1 = {.kind = REPL_SIMPLE, .rf = 1}, rf3 = {.kind = REPL_SIMPLE, .rf = 3};
    sib_err err;
    assert_int_equal(coord_block_for(c, &rf3, CL_QUORUM), 2);
    assert_int_equal(coord_block_for(c, &rf3, CL_ALL), 3);
    assert_int_equal(coord_check(c, &rf1, CL_ALL, true, 42, &err), 0);
    assert_int_equal(coord_check(c, &rf1, CL_QUORUM, false, 42, &err), 0);
    assert_int_equal(coord_check(c, &rf3, CL_ONE, true, 42, &err), 0);
    assert_int_equal(coord_check(c, &rf3, CL_QUORUM, true, 42, &err), SIB_EUNAVAIL);
    assert_int_equal(err.ex[0], CL_QUORUM);
    assert_int_equal(err.ex[1], 2);
    assert_int_equal(err.ex[2], 1);
    assert_int_equal(coord_check(c, &rf1, CL_ANY, false, 42, &err), SIB_EINVAL);
    assert_int_equal(coord_check(c, &rf1, CL_SERIAL, true, 42, &err), SIB_EINVAL);
    coord_repl nts = {.kind = REPL_NTS, .ndcs = 1};
    strcpy(nts.dcs[0].dc, "otherdc");
    nts.dcs[0].rf = 1;
    assert_int_equal(coord_check(c, &nts, CL_ONE, true, 42, &err), SIB_EUNAVAIL);
    coord_destroy(c);
}

static void test_replicas_unique(void **state)
{
    (void)state;
    coord *c = one_node();
    coord_repl rf3 = {.kind = REPL_SIMPLE, .rf = 3};
    size_t out[8];
    assert_int_equal(coord_replicas(c, &rf3, 7, out, 8), 1);
    assert_int_equal(out[0], 0);
    sib_rng rng;
    sib_rng_seed(&rng);
    int64_t t[16];
    coord_random_tokens(&rng, t, 16);
    for (int i = 1; i < 16; i++) assert_true(t[i - 1] < t[i]);
    coord_destroy(c);
}

/* Peers learned from gossip join the ring; their liveness counts in
 * Unavailable checks; a token already owned stays with its first owner. */
static void test_members_from_gossip(void **state)
{
    (void)state;
    coord *c = one_node(); /* local tokens -100, 0, 100, 5000 */
    int64_t p1[2] = {50, 200};
    coord_member_opts o = {.addr = "127.0.0.2", .dc = "datacenter1", .rack = "rack1", .tokens = p1, .ntokens = 2};
    assert_int_equal(coord_member_update(c, &o), 0);
    assert_int_equal(coord_members(c), 2);
    assert_string_equal(coord_member_addr(c, 1), "127.0.0.2");
    assert_false(coord_member_alive(c, 1)); /* down until gossip says UP */
    coord_repl rf1 = {.kind = REPL_SIMPLE, .rf = 1}, rf2 = {.kind = REPL_SIMPLE, .rf = 2};
    size_t out[4];
    assert_int_equal(coord_replicas(c, &rf1, 10, out, 4), 1);
    assert_int_equal(out[0], 1);                 /* (0, 50] belongs to the peer */
    assert_int_equal(coord_replicas(c, &rf2, 150, out, 4), 2);
    assert_int_equal(out[0], 1);                 /* 200 first, then 5000 (local) */
    assert_int_equal(out[1], 0);
    sib_err err = {0};
    assert_int_equal(coord_check(c, &rf1, CL_ONE, true, 10, &err), SIB_EUNAVAIL);
    coord_member_set_alive(c, "127.0.0.2", true);
    assert_int_equal(coord_check(c, &rf1, CL_ONE, true, 10, &err), 0);
    /* new tokens replace the old ones; a collision with a local token is skipped */
    int64_t p2[2] = {100, 300};
    o.tokens = p2;
    assert_int_equal(coord_member_update(c, &o), 0);
    assert_int_equal(coord_members(c), 2);
    assert_int_equal(coord_replicas(c, &rf1, 10, out, 4), 1);
    assert_int_equal(out[0], 0);                 /* 50 is gone: (0, 100] is local */
    assert_int_equal(coord_replicas(c, &rf1, 250, out, 4), 1);
    assert_int_equal(out[0], 1);
    /* the local member is never replaced from outside */
    strcpy(o.addr, "127.0.0.1");
    assert_int_equal(coord_member_update(c, &o), SIB_EINVAL);
    coord_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repl_parse),
        cmocka_unit_test(test_block_for_and_check),
        cmocka_unit_test(test_replicas_unique),
        cmocka_unit_test(test_members_from_gossip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
