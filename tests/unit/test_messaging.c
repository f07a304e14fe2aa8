/* test_messaging.c: internode frames, and real services talking over
 * loopback on one libev loop: correlation, timeouts, bounds, refusal of
 * another cluster, reconnection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "messaging.h"

/* ---- frames ---- */

static void frame_roundtrip(void **state)
{
    sib_buf b;
    sib_buf_init(&b);
    msg_frame_encode(&b, 7, MSG_FLAG_RESPONSE, 0x0102030405060708ULL, "hello", 5);
    assert_int_equal(b.len, MSG_HEADER_LEN + 5 + MSG_TRAILER_LEN);
    msg_header h;
    const uint8_t *p;
    sib_err err = {0};
    /* every prefix is "need more", never an error */
    for (size_t n = 0; n < b.len; n++) assert_int_equal(msg_frame_decode(b.p, n, 1024, &h, &p, &err), 0);
    assert_int_equal(msg_frame_decode(b.p, b.len, 1024, &h, &p, &err), (long)b.len);
    assert_int_equal(h.verb, 7);
    assert_int_equal(h.flags, MSG_FLAG_RESPONSE);
    assert_true(h.id == 0x0102030405060708ULL);
    assert_int_equal(h.len, 5);
    assert_memory_equal(p, "hello", 5);
    sib_buf_free(&b);
}

static void frame_checksum_failure(void **state)
{
    sib_buf b;
    sib_buf_init(&b);
    msg_frame_encode(&b, 3, 0, 9, "payload", 7);
    b.p[MSG_HEADER_LEN + 2] ^= 0x40; /* one bit of the payload */
    msg_header h;
    const uint8_t *p;
    sib_err err = {0};
    assert_int_equal(msg_frame_decode(b.p, b.len, 1024, &h, &p, &err), SIB_ECORRUPT);
    assert_non_null(strstr(err.msg, "checksum"));
    sib_buf_free(&b);
}

static void frame_version_and_magic(void **state)
{
    sib_buf b;
    sib_buf_init(&b);
    msg_frame_encode(&b, 3, 0, 9, "x", 1);
    msg_header h;
    const uint8_t *p;
    sib_err err = {0};
    b.p[4] = MSG_VERSION + 1;
    assert_int_equal(msg_frame_decode(b.p, b.len, 1024, &h, &p, &err), SIB_EPROTO);
    assert_non_null(strstr(err.msg, "version"));
    b.p[4] = MSG_VERSION;
    b.p[0] = 'X';
    assert_int_equal(msg_frame_decode(b.p, b.len, 1024, &h, &p, &err), SIB_EPROTO);
    sib_buf_free(&b);
}

static void frame_too_big(void **state)
{
    sib_buf b;
    sib_buf_init(&b);
    char big[100] = {0};
    msg_frame_encode(&b, 3, 0, 9, big, sizeof big);
    msg_header h;
    const uint8_t *p;
    sib_err err = {0};
    /* refused from the header alone, before the payload arrives */
    assert_int_equal(msg_frame_decode(b.p, MSG_HEADER_LEN, 99, &h, &p, &err), SIB_ETOOBIG);
    sib_buf_free(&b);
}

/* ---- live services ---- */

typedef struct world {
    struct ev_loop *loop;
    msg_service *a, *b;
    int handled;      /* requests b's handler saw */
    int answered;     /* responses a got */
    int timeouts;
    char last[64];
    uint64_t ctx_sum;
} world;

static msg_service *service(world *w, const char *cluster, uint16_t port, size_t max_queued, size_t max_pending)
{
    msg_opts o = {.loop = w->loop, .cluster_name = cluster, .bind_addr = "127.0.0.1", .port = port,
                  .max_queued_bytes = max_queued, .max_pending = max_pending, .backoff_min_ms = 20,
                  .backoff_max_ms = 100};
    sib_err err = {0};
    msg_service *ms = msg_service_create(&o, &err);
    assert_non_null(ms);
    return ms;
}

/* Verb 5 answers with the request's payload upper-cased; verb 6 never answers. */
static void echo_upper(void *ctx, msg_service *ms, const msg_in *m)
{
    world *w = ctx;
    w->handled++;
    assert_string_equal(m->from, "127.0.0.1");
    char buf[64];
    size_t n = SIB_MIN(m->len, sizeof buf);
    for (size_t i = 0; i < n; i++) buf[i] = (char)(m->payload[i] >= 'a' && m->payload[i] <= 'z' ? m->payload[i] - 32 : m->payload[i]);
    assert_int_equal(msg_reply(ms, m, buf, (uint32_t)n, NULL), 0);
}

static void silent(void *ctx, msg_service *ms, const msg_in *m) { ((world *)ctx)->handled++; }

typedef struct call {
    world *w;
    const char *expect;
    uint64_t tag;
} call;

static void on_resp(void *ctx, int rc, const msg_in *resp)
{
    call *c = ctx;
    if (rc == SIB_ETIMEDOUT) { c->w->timeouts++; return; }
    assert_int_equal(rc, 0);
    assert_int_equal(resp->len, strlen(c->expect));
    assert_memory_equal(resp->payload, c->expect, resp->len);
    c->w->answered++;
    c->w->ctx_sum += c->tag;
}

static void on_guard(struct ev_loop *loop, ev_timer *t, int revents) { ev_break(loop, EVBREAK_ALL); }

/* Runs the loop until *counter reaches want or `secs` pass. */
static void run_until(world *w, const int *counter, int want, double secs)
{
    ev_timer guard;
    ev_timer_init(&guard, on_guard, secs, 0);
    ev_timer_start(w->loop, &guard);
    while (*counter < want && ev_is_active(&guard)) ev_run(w->loop, EVRUN_ONCE);
    ev_timer_stop(w->loop, &guard);
}

static void setup_pair(world *w, const char *cluster_b)
{
    memset(w, 0, sizeof *w);
    w->loop = ev_loop_new(EVFLAG_AUTO);
    w->a = service(w, "C", 0, 0, 0);
    w->b = service(w, cluster_b, 0, 0, 0);
    msg_set_handler(w->b, 5, echo_upper, w);
    msg_set_handler(w->b, 6, silent, w);
}

static void teardown_pair(world *w)
{
    msg_service_destroy(w->a);
    msg_service_destroy(w->b);
    ev_loop_destroy(w->loop);
}

static void request_correlation(void **state)
{
    world w;
    setup_pair(&w, "C");
    uint16_t pb = msg_service_port(w.b);
    call c[3] = {{&w, "ONE", 1}, {&w, "TWO", 10}, {&w, "THREE", 100}};
    const char *req[3] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(msg_request(w.a, "127.0.0.1", pb, 5, req[i], (uint32_t)strlen(req[i]), 5000, on_resp, &c[i], NULL), 0);
    assert_int_equal(msg_pending_requests(w.a), 3);
    run_until(&w, &w.answered, 3, 5.0);
    assert_int_equal(w.answered, 3);
    assert_int_equal(w.ctx_sum, 111); /* each answer reached its own caller */
    assert_int_equal(msg_pending_requests(w.a), 0);
    assert_true(msg_connected(w.a, "127.0.0.1", pb));
    teardown_pair(&w);
}

static void request_timeout(void **state)
{
    world w;
    setup_pair(&w, "C");
    call c = {&w, "", 0};
    assert_int_equal(msg_request(w.a, "127.0.0.1", msg_service_port(w.b), 6, "x", 1, 50, on_resp, &c, NULL), 0);
    run_until(&w, &w.timeouts, 1, 5.0);
    assert_int_equal(w.timeouts, 1);
    assert_int_equal(w.handled, 1); /* it arrived; nobody answered */
    assert_int_equal(msg_pending_requests(w.a), 0);
    teardown_pair(&w);
}

static void bounded_queue_fails_fast(void **state)
{
    world w;
    memset(&w, 0, sizeof w);
    w.loop = ev_loop_new(EVFLAG_AUTO);
    /* A peer that is not listening: nothing drains the queue. */
    msg_service *gone = service(&w, "C", 0, 0, 0);
    uint16_t port = msg_service_port(gone);
    msg_service_destroy(gone);
    w.a = service(&w, "C", 0, 4096, 2);
    char payload[1000] = {0};
    int rc = 0, sent = 0;
    sib_err err = {0};
    while (sent < 100 && (rc = msg_send(w.a, "127.0.0.1", port, 5, payload, sizeof payload, &err)) == 0) sent++;
    assert_int_equal(rc, SIB_EOVERLOADED);
    assert_true(sent >= 2 && sent <= 4);
    assert_true(msg_queued_bytes(w.a, NULL, 0) <= 4096);
    assert_int_equal(msg_queued_bytes(w.a, "127.0.0.1", port), msg_queued_bytes(w.a, NULL, 0));
    assert_int_equal(msg_queued_bytes(w.a, "127.0.0.1", (uint16_t)(port + 1)), 0);
    /* and requests awaiting answers are bounded too */
    msg_service *b = service(&w, "C", 0, 0, 0);
    call c = {&w, "", 0};
    assert_int_equal(msg_request(w.a, "127.0.0.1", msg_service_port(b), 6, "x", 1, 1000, on_resp, &c, NULL), 0);
    assert_int_equal(msg_request(w.a, "127.0.0.1", msg_service_port(b), 6, "x", 1, 1000, on_resp, &c, NULL), 0);
    assert_int_equal(msg_request(w.a, "127.0.0.1", msg_service_port(b), 6, "x", 1, 1000, on_resp, &c, &err),
                     SIB_EOVERLOADED);
    msg_service_destroy(b);
    msg_service_destroy(w.a);
    ev_loop_destroy(w.loop);
}

/* A peer that accepts the connection but never reads (a SIGSTOPped node):
 * the kernel buffers fill, then our bounded queue, then sends fail fast. */
static void frozen_peer_fails_fast(void **state)
{
    world w;
    memset(&w, 0, sizeof w);
    w.loop = ev_loop_new(EVFLAG_AUTO);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 4), 0);
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    uint16_t port = ntohs(sa.sin_port);
    w.a = service(&w, "C", 0, 64 * 1024, 0);
    static char payload[4096];
    int rc = 0;
    long sent = 0;
    /* the kernel takes a few MiB first; bounded at 64 MiB either way */
    while (sent < 16384 && (rc = msg_send(w.a, "127.0.0.1", port, 5, payload, sizeof payload, NULL)) == 0) {
        sent++;
        ev_run(w.loop, EVRUN_NOWAIT);
    }
    assert_int_equal(rc, SIB_EOVERLOADED);
    assert_true(msg_connected(w.a, "127.0.0.1", port));
    assert_true(msg_queued_bytes(w.a, NULL, 0) <= 64 * 1024);
    msg_service_destroy(w.a);
    close(lfd);
    ev_loop_destroy(w.loop);
}

static void other_cluster_refused(void **state)
{
    world w;
    setup_pair(&w, "Other");
    call c = {&w, "X", 0};
    assert_int_equal(msg_request(w.a, "127.0.0.1", msg_service_port(w.b), 5, "x", 1, 300, on_resp, &c, NULL), 0);
    run_until(&w, &w.timeouts, 1, 5.0);
    assert_int_equal(w.timeouts, 1);
    assert_int_equal(w.handled, 0); /* the handler never saw it */
    assert_int_equal(w.answered, 0);
    teardown_pair(&w);
}

static void reconnects_after_peer_restart(void **state)
{
    world w;
    setup_pair(&w, "C");
    uint16_t pb = msg_service_port(w.b);
    call c = {&w, "A", 1};
    assert_int_equal(msg_request(w.a, "127.0.0.1", pb, 5, "a", 1, 5000, on_resp, &c, NULL), 0);
    run_until(&w, &w.answered, 1, 5.0);
    assert_int_equal(w.answered, 1);
    /* the peer goes away and comes back on the same port */
    msg_service_destroy(w.b);
    w.b = service(&w, "C", pb, 0, 0);
    msg_set_handler(w.b, 5, echo_upper, &w);
    /* Keep asking until the back-off lets a new connection through; each
     * attempt either answers or times out, never both. */
    for (int i = 0; i < 40 && w.answered < 2; i++) {
        int before = w.answered + w.timeouts;
        assert_int_equal(msg_request(w.a, "127.0.0.1", pb, 5, "a", 1, 200, on_resp, &c, NULL), 0);
        int target = before + 1;
        int done = 0;
        ev_timer guard;
        ev_timer_init(&guard, on_guard, 2.0, 0);
        ev_timer_start(w.loop, &guard);
        while ((done = w.answered + w.timeouts) < target && ev_is_active(&guard)) ev_run(w.loop, EVRUN_ONCE);
        ev_timer_stop(w.loop, &guard);
    }
    assert_int_equal(w.answered, 2);
    teardown_pair(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frame_roundtrip),
        cmocka_unit_test(frame_checksum_failure),
        cmocka_unit_test(frame_version_and_magic),
        cmocka_unit_test(frame_too_big),
        cmocka_unit_test(request_correlation),
        cmocka_unit_test(request_timeout),
        cmocka_unit_test(bounded_queue_fails_fast),
        cmocka_unit_test(frozen_peer_fails_fast),
        cmocka_unit_test(other_cluster_refused),
        cmocka_unit_test(reconnects_after_peer_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
