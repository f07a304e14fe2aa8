/* test_gossip.c: the phi-accrual detector against hand-computed values, the
 * digest and merge rules, and real gossipers converging over loopback on
 * one libev loop (UP, conviction, GOSSIP_SHUTDOWN, cluster names). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <ev.h>
#include <math.h>
#include <stdlib.h>

#include "gossip.h"

#define S 1000000000LL /* ns per second */

/* ---- failure detector ---- */

static void phi_seed_is_twice_the_interval(void **state)
{
    gsp_arrival *a = gsp_arrival_create(2 * S, 2 * S);
    assert_true(gsp_arrival_phi(a, 5 * S) == 0.0); /* no report yet */
    gsp_arrival_report(a, 10 * S);
    assert_int_equal(gsp_arrival_count(a), 1);
    assert_true(gsp_arrival_mean_ns(a) == 2.0 * S);
    /* t = 2 s of silence over a mean of 2 s: phi = 1 / ln 10 */
    assert_true(fabs(gsp_arrival_phi(a, 12 * S) - 0.4342944819) < 1e-9);
    /* a 1 s interval: mean (2 + 1) / 2 = 1.5 s; 3 s of silence -> 2 / ln 10 */
    gsp_arrival_report(a, 11 * S);
    assert_int_equal(gsp_arrival_count(a), 2);
    assert_true(gsp_arrival_mean_ns(a) == 1.5 * S);
    assert_true(fabs(gsp_arrival_phi(a, 14 * S) - 0.8685889638) < 1e-9);
    gsp_arrival_destroy(a);
}

static void window_bound_and_max_interval(void **state)
{
    gsp_arrival *a = gsp_arrival_create(2 * S, 2 * S);
    int64_t t = S;
    for (int i = 0; i < 1500; i++, t += S / 2) gsp_arrival_report(a, t);
    assert_int_equal(gsp_arrival_count(a), GSP_FD_WINDOW);
    /* the 2 s seed has rotated out: 1000 intervals of 0.5 s */
    assert_true(gsp_arrival_mean_ns(a) == 0.5 * S);
    /* an interval above the max (2 s) is not learned */
    int64_t last = t - S / 2;
    gsp_arrival_report(a, last + 3 * S);
    assert_true(gsp_arrival_mean_ns(a) == 0.5 * S);
    /* but it still counts as the latest arrival */
    assert_true(gsp_arrival_phi(a, last + 3 * S) == 0.0);
    gsp_arrival_clear(a);
    assert_int_equal(gsp_arrival_count(a), 0);
    gsp_arrival_destroy(a);
}

static void conviction_at_threshold(void **state)
{
    /* Mean 1 s exactly: the seed 1 s (initial_ns) then 1 s intervals. */
    gsp_arrival *a = gsp_arrival_create(S, 2 * S);
    for (int i = 1; i <= 10; i++) gsp_arrival_report(a, i * S);
    assert_true(gsp_arrival_mean_ns(a) == 1.0 * S);
    /* threshold 8 is crossed after 8 ln 10 = 18.42 s of silence */
    double limit = 8.0 * log(10.0);
    assert_true(gsp_arrival_phi(a, 10 * S + (int64_t)((limit - 0.01) * S)) < 8.0);
    assert_true(gsp_arrival_phi(a, 10 * S + (int64_t)((limit + 0.01) * S)) > 8.0);
    gsp_arrival_destroy(a);
}

/* ---- digest and merge rules ---- */

static void digest_rules(void **state)
{
    assert_int_equal(gsp_digest_compare(false, 0, 0, 5, 9), GSP_REQUEST_ALL);
    assert_int_equal(gsp_digest_compare(true, 5, 100, 6, 1), GSP_REQUEST_ALL);   /* higher generation wins */
    assert_int_equal(gsp_digest_compare(true, 6, 1, 5, 100), GSP_SEND_ALL);
    assert_int_equal(gsp_digest_compare(true, 5, 10, 5, 20), GSP_REQUEST_NEWER); /* then higher version */
    assert_int_equal(gsp_digest_compare(true, 5, 20, 5, 10), GSP_SEND_NEWER);
    assert_int_equal(gsp_digest_compare(true, 5, 20, 5, 20), GSP_IN_SYNC);
}

static void merge_rules(void **state)
{
    int64_t now = 1700000000;
    assert_int_equal(gsp_apply_rule(false, 0, 0, (int32_t)now, 3, now), GSP_APPLY_NEW);
    assert_int_equal(gsp_apply_rule(true, 100, 50, 101, 1, now), GSP_APPLY_RESTART);
    assert_int_equal(gsp_apply_rule(true, 101, 1, 100, 50, now), GSP_APPLY_IGNORE);
    assert_int_equal(gsp_apply_rule(true, 100, 5, 100, 6, now), GSP_APPLY_MERGE);
    assert_int_equal(gsp_apply_rule(true, 100, 6, 100, 6, now), GSP_APPLY_IGNORE);
    assert_int_equal(gsp_apply_rule(true, 100, 6, 100, 5, now), GSP_APPLY_IGNORE);
    /* a generation more than a year ahead is corruption */
    assert_int_equal(gsp_apply_rule(true, 100, 6, (int32_t)(now + 400 * 86400), 1, now), GSP_APPLY_REJECT);
    assert_string_equal(gsp_key_name(GSP_STATUS), "STATUS");
    assert_string_equal(gsp_key_name(GSP_TOKENS), "TOKENS");
    assert_null(gsp_key_name(GSP_NSTATES));
}

static void tokens_value(void **state)
{
    int64_t t[3] = {INT64_MAX, -5, INT64_MIN + 1};
    char *v = gsp_format_tokens(t, 3);
    assert_string_equal(v, "9223372036854775807,-5,-9223372036854775807");
    int64_t *back;
    assert_int_equal(gsp_parse_tokens(v, &back), 3);
    assert_true(back[0] == INT64_MIN + 1 && back[1] == -5 && back[2] == INT64_MAX); /* sorted */
    free(back);
    free(v);
    assert_int_equal(gsp_parse_tokens("1,2,x,4", &back), 2); /* stops at the bad one */
    free(back);
    assert_int_equal(gsp_parse_tokens("", &back), 0);
    assert_null(back);
}

static void native_address_value(void **state)
{
    char host[64];
    int port = 0;
    assert_true(gsp_split_host_port("127.0.0.2:9042", host, sizeof host, &port));
    assert_string_equal(host, "127.0.0.2");
    assert_int_equal(port, 9042);
    assert_false(gsp_split_host_port(NULL, host, sizeof host, &port));
    assert_false(gsp_split_host_port("127.0.0.2", host, sizeof host, &port));
    assert_false(gsp_split_host_port("127.0.0.2:x", host, sizeof host, &port));
    assert_false(gsp_split_host_port(":9042", host, sizeof host, &port));
    assert_false(gsp_split_host_port("127.0.0.2:9042", host, 4, &port)); /* no room */
}

/* ---- live gossipers ---- */

typedef struct member {
    msg_service *ms;
    gossip *g;
    int ups, downs, changes;
    char last_down[64];
} member;

static void on_up(void *ctx, const gsp_endpoint_view *v) { ((member *)ctx)->ups++; }
static void on_down(void *ctx, const gsp_endpoint_view *v)
{
    member *m = ctx;
    m->downs++;
    snprintf(m->last_down, sizeof m->last_down, "%s:%u", v->addr, v->port);
}
static void on_change(void *ctx, const gsp_endpoint_view *v, gsp_key k) { ((member *)ctx)->changes++; }

/* A gossiper on 127.0.0.1:port (0 = any) with that generation; hid, when
 * given, is published as its HOST_ID. */
static void member_open_at(member *m, struct ev_loop *loop, const char *cluster, const char *seeds, double threshold,
                           uint16_t port, int32_t generation, const char *hid)
{
    memset(m, 0, sizeof *m);
    msg_opts mo = {.loop = loop, .cluster_name = cluster, .bind_addr = "127.0.0.1", .port = port,
                   .backoff_min_ms = 20, .backoff_max_ms = 100};
    sib_err err = {0};
    m->ms = msg_service_create(&mo, &err);
    assert_non_null(m->ms);
    gsp_opts go = {.loop = loop, .ms = m->ms, .cluster_name = cluster, .addr = "127.0.0.1",
                   .port = msg_service_port(m->ms), .seeds = seeds, .interval_ms = 100,
                   .phi_convict_threshold = threshold, .generation = generation, .seed = 42,
                   .listener = {.ctx = m, .up = on_up, .down = on_down, .change = on_change}};
    m->g = gsp_create(&go, &err);
    assert_non_null(m->g);
    assert_int_equal(gsp_set_state(m->g, GSP_STATUS, "NORMAL,1"), 0);
    assert_int_equal(gsp_set_state(m->g, GSP_DC, "dc1"), 0);
    if (hid) assert_int_equal(gsp_set_state(m->g, GSP_HOST_ID, hid), 0);
    gsp_start(m->g);
}

static void member_open(member *m, struct ev_loop *loop, const char *cluster, const char *seeds, double threshold)
{
    member_open_at(m, loop, cluster, seeds, threshold, 0, 1000, NULL);
}

static void member_close(member *m)
{
    msg_service_destroy(m->ms);
    gsp_destroy(m->g);
    m->ms = NULL;
    m->g = NULL;
}

static void on_guard(struct ev_loop *loop, ev_timer *t, int revents) { ev_break(loop, EVBREAK_ALL); }

static void run_while(struct ev_loop *loop, bool (*pending)(void *), void *ctx, double secs)
{
    ev_timer guard;
    ev_timer_init(&guard, on_guard, secs, 0);
    ev_timer_start(loop, &guard);
    while (pending(ctx) && ev_is_active(&guard)) ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &guard);
}

typedef struct trio {
    member m[3];
} trio;

static bool not_converged(void *ctx)
{
    trio *t = ctx;
    for (int i = 0; i < 3; i++)
        if (t->m[i].g && gsp_live_count(t->m[i].g) < 2) return true;
    return false;
}

static bool a_not_down(void *ctx) { return ((trio *)ctx)->m[0].downs == 0; }

static char *seed_of(const member *m, char *buf)
{
    sprintf(buf, "127.0.0.1:%u", msg_service_port(m->ms));
    return buf;
}

static void three_converge_then_shutdown_and_kill(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    trio t;
    char seed[32];
    member_open(&t.m[0], loop, "C", "", 8.0); /* its own seed */
    seed_of(&t.m[0], seed);
    member_open(&t.m[1], loop, "C", seed, 8.0);
    member_open(&t.m[2], loop, "C", seed, 8.0);
    run_while(loop, not_converged, &t, 10.0);
    assert_false(not_converged(&t));
    /* every member knows all three, with the values each published */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(gsp_endpoint_count(t.m[i].g), 3);
        gsp_endpoint_view v;
        for (size_t k = 0; gsp_endpoint_at(t.m[i].g, k, &v); k++) {
            assert_string_equal(v.states[GSP_STATUS], "NORMAL,1");
            assert_string_equal(v.states[GSP_DC], "dc1");
            assert_int_equal(v.generation, 1000);
            assert_true(v.alive);
        }
        assert_true(t.m[i].ups >= 2); /* a stalled test machine may add a DOWN/UP */
    }
    /* graceful: member 2 announces its shutdown; the others mark it DOWN at
     * once (well before any phi conviction could) */
    char addr2[32];
    snprintf(addr2, sizeof addr2, "127.0.0.1:%u", msg_service_port(t.m[2].ms));
    t.m[0].downs = 0;
    assert_int_equal(gsp_announce_shutdown(t.m[2].g), 2);
    run_while(loop, a_not_down, &t, 0.2);
    assert_int_equal(t.m[0].downs, 1);
    assert_string_equal(t.m[0].last_down, addr2);
    member_close(&t.m[2]);
    /* kill: member 1 vanishes silently; member 0 convicts it by phi */
    char addr1[32];
    snprintf(addr1, sizeof addr1, "127.0.0.1:%u", msg_service_port(t.m[1].ms));
    member_close(&t.m[1]);
    t.m[0].downs = 0;
    run_while(loop, a_not_down, &t, 30.0);
    assert_int_equal(t.m[0].downs, 1);
    assert_string_equal(t.m[0].last_down, addr1);
    assert_int_equal(gsp_live_count(t.m[0].g), 0);
    member_close(&t.m[0]);
    ev_loop_destroy(loop);
}

typedef struct pair {
    member *a, *b;
} pair;

static void removed_status_value(void **state)
{
    char hid[37];
    int64_t exp = 0;
    assert_true(gsp_status_removed("removed,5c096c55-84bc-4bb9-8992-3a94a20326b6,1796898746832", hid, &exp));
    assert_string_equal(hid, "5c096c55-84bc-4bb9-8992-3a94a20326b6");
    assert_int_equal(exp, 1796898746832LL);
    assert_false(gsp_status_removed("NORMAL,1", hid, &exp));
    assert_false(gsp_status_removed("removed,5c096c55,1", hid, &exp));
    assert_false(gsp_status_removed("removed,5c096c55-84bc-4bb9-8992-3a94a20326b6,", hid, &exp));
    assert_false(gsp_status_removed("removed,5c096c55-84bc-4bb9-8992-3a94a20326b6,12x", hid, &exp));
    assert_false(gsp_status_removed(NULL, hid, &exp));
}

/* The state member `at` holds about the gossiper on `port`. */
static bool view_of_port(member *at, uint16_t port, gsp_endpoint_view *v)
{
    for (size_t i = 1; gsp_endpoint_at(at->g, i, v); i++)
        if (v->port == port) return true;
    return false;
}

typedef struct removal {
    trio *t;
    uint16_t port;
    const char *want; /* STATUS prefix member 1 should hold */
} removal;

static bool b_lacks_status(void *ctx)
{
    removal *r = ctx;
    gsp_endpoint_view v;
    return !view_of_port(&r->t->m[1], r->port, &v) || !v.states[GSP_STATUS] ||
           strncmp(v.states[GSP_STATUS], r->want, strlen(r->want));
}

static bool both_not_down(void *ctx) { return ((trio *)ctx)->m[0].downs == 0 || ((trio *)ctx)->m[1].downs == 0; }

static bool always(void *ctx) { return true; }

#define HID2 "00000000-0000-4000-8000-000000000002"

static void removal_spreads_and_keeps_the_removed_out(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    trio t;
    char seed[32];
    member_open_at(&t.m[0], loop, "C", "", 8.0, 0, 1000, "00000000-0000-4000-8000-000000000000");
    seed_of(&t.m[0], seed);
    member_open_at(&t.m[1], loop, "C", seed, 8.0, 0, 1000, "00000000-0000-4000-8000-000000000001");
    member_open_at(&t.m[2], loop, "C", seed, 8.0, 0, 1000, HID2);
    run_while(loop, not_converged, &t, 10.0);
    assert_false(not_converged(&t));
    uint16_t p1 = msg_service_port(t.m[1].ms), p2 = msg_service_port(t.m[2].ms),
             p0 = msg_service_port(t.m[0].ms);
    /* refused: a live peer, this node, an unknown one */
    sib_err err = {0};
    assert_int_equal(gsp_advertise_removed(t.m[0].g, "127.0.0.1", p1, &err), SIB_EINVAL);
    assert_non_null(strstr(err.msg, "is alive and owns this ID. Use decommission command"));
    assert_int_equal(gsp_advertise_removed(t.m[0].g, "127.0.0.1", p0, &err), SIB_EINVAL);
    assert_string_equal(err.msg, "Cannot remove self");
    assert_int_equal(gsp_advertise_removed(t.m[0].g, "127.0.0.9", 7000, &err), SIB_ENOTFOUND);
    /* member 2 dies; once both others hold it DOWN, member 0 removes it
     * and member 1 learns it through gossip, in a new generation */
    member_close(&t.m[2]);
    t.m[0].downs = t.m[1].downs = 0;
    run_while(loop, both_not_down, &t, 30.0);
    assert_false(both_not_down(&t));
    int changes = t.m[0].changes;
    assert_int_equal(gsp_advertise_removed(t.m[0].g, "127.0.0.1", p2, &err), 0);
    assert_true(t.m[0].changes > changes); /* the local listener heard it at once */
    removal r = {&t, p2, "removed," HID2 ","};
    run_while(loop, b_lacks_status, &r, 10.0);
    gsp_endpoint_view v;
    assert_true(view_of_port(&t.m[1], p2, &v));
    assert_int_equal(v.generation, 1001);
    assert_false(v.alive);
    assert_string_equal(v.states[GSP_DC], "dc1"); /* the rest of its state came too */
    /* it restarts with its old host id: nobody takes it back */
    int ups0 = t.m[0].ups, ups1 = t.m[1].ups;
    member_open_at(&t.m[2], loop, "C", seed, 8.0, p2, 1100, HID2);
    run_while(loop, always, NULL, 1.5); /* 15 rounds */
    assert_int_equal(t.m[0].ups, ups0);
    assert_int_equal(t.m[1].ups, ups1);
    assert_true(view_of_port(&t.m[0], p2, &v));
    assert_int_equal(v.generation, 1001);
    assert_non_null(strstr(v.states[GSP_STATUS], "removed,"));
    /* a new node at that address (new host id) is a member again */
    member_close(&t.m[2]);
    member_open_at(&t.m[2], loop, "C", seed, 8.0, p2, 1200, "00000000-0000-4000-8000-000000000003");
    r.want = "NORMAL";
    run_while(loop, b_lacks_status, &r, 10.0);
    assert_false(b_lacks_status(&r));
    for (int i = 0; i < 3; i++) member_close(&t.m[i]);
    ev_loop_destroy(loop);
}

static bool seen_nobody(void *ctx)
{
    pair *p = ctx;
    return gsp_endpoint_count(p->a->g) == 1 && gsp_endpoint_count(p->b->g) == 1;
}

static void bad_seeds_are_refused(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    msg_opts mo = {.loop = loop, .cluster_name = "C", .bind_addr = "127.0.0.1"};
    sib_err err = {0};
    msg_service *ms = msg_service_create(&mo, &err);
    assert_non_null(ms);
    static const char *bad[] = {"localhost", "127.0.0.1:0", "127.0.0.1:99999", "1.2.3"};
    for (size_t i = 0; i < SIB_ARRAY_LEN(bad); i++) {
        gsp_opts go = {.loop = loop, .ms = ms, .cluster_name = "C", .addr = "127.0.0.1", .port = 7000,
                       .seeds = bad[i], .generation = 1};
        memset(&err, 0, sizeof err);
        assert_null(gsp_create(&go, &err));
        assert_int_equal(err.code, SIB_ECONFIG);
        assert_non_null(strstr(err.msg, "seed_provider"));
    }
    gsp_opts go = {.loop = loop, .ms = ms, .cluster_name = "C", .addr = "127.0.0.1", .port = 7000,
                   .seeds = " 127.0.0.1 , 127.0.0.2:7100,", .generation = 1};
    gossip *g = gsp_create(&go, &err);
    assert_non_null(g);
    msg_service_destroy(ms);
    gsp_destroy(g);
    ev_loop_destroy(loop);
}

static void other_cluster_does_not_merge(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    member a, b;
    char seed[32];
    member_open(&a, loop, "Alpha", "", 8.0);
    member_open(&b, loop, "Beta", seed_of(&a, seed), 8.0);
    pair p = {&a, &b};
    run_while(loop, seen_nobody, &p, 1.0); /* 10 rounds */
    assert_int_equal(gsp_endpoint_count(a.g), 1);
    assert_int_equal(gsp_endpoint_count(b.g), 1);
    assert_int_equal(a.ups + b.ups, 0);
    member_close(&a);
    member_close(&b);
    ev_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(phi_seed_is_twice_the_interval),
        cmocka_unit_test(window_bound_and_max_interval),
        cmocka_unit_test(conviction_at_threshold),
        cmocka_unit_test(digest_rules),
        cmocka_unit_test(merge_rules),
        cmocka_unit_test(tokens_value),
        cmocka_unit_test(native_address_value),
        cmocka_unit_test(three_converge_then_shutdown_and_kill),
        cmocka_unit_test(bad_seeds_are_refused),
        cmocka_unit_test(other_cluster_does_not_merge),
        cmocka_unit_test(removed_status_value),
        cmocka_unit_test(removal_spreads_and_keeps_the_removed_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
