/* schema_sync.c: schema agreement between nodes (Cassandra's migration
 * manager, simplified; docs/membership.md "Schema").
 *
 * What starts a pull from a peer:
 *   - gossip shows the peer UP with a SCHEMA version other than ours
 *     (node_schema_sync_peer, from the gossip listener), and
 *   - a check every second over the live peers, which retries failed or
 *     fruitless pulls with a back-off per peer (1 s doubling to 16 s; reset
 *     when the peer's version changes or a pull brought something);
 *   - node_schema_pull (the mutation path: unknown table id or another
 *     schema version), which always asks.
 * One background pull per peer at a time; every pull has a timeout
 * (msg_request), and messaging bounds the bytes and requests in flight.
 *
 * After a local DDL (the executor's schema listener) the version is
 * republished at once and the snapshot is pushed to every live peer; a
 * snapshot larger than PUSH_MAX_BYTES is not pushed (the peers pull it).
 *
 * A received snapshot goes to cql_exec_schema_merge, which persists the
 * winning rows; once they are durable the version is republished, so
 * drivers' schema agreement checks (system.local and system.peers
 * schema_version) see the new version one gossip round later.
 */
#include "node_int.h"

#include <ev.h>
#include <stdlib.h>

#include "cql_exec.h"
#include "gossip.h"
#include "messaging.h"
#include "schema.h"

#define CHECK_INTERVAL_S 1.0
#define BACKOFF_MIN_S 1.0
#define BACKOFF_MAX_S 16.0
#define PULL_TIMEOUT_MS 10000
#define PUSH_MAX_BYTES (8u << 20)
#define MAX_PEERS 1024

typedef struct peer {
    char addr[64];
    uint16_t port;
    bool inflight;       /* a background pull is waiting for its answer */
    double next_ok;      /* no background pull before (ev_now) */
    double backoff;
    char seen[40];       /* the peer's version when the back-off started */
} peer;

/* One pull: answered by the peer, then merged (possibly asynchronously). */
typedef struct pull {
    node_schema_sync *s;
    struct pull *prev, *next; /* s->pulls: freed on destroy if still pending */
    char addr[64];
    uint16_t port;
    bool background;          /* a check's pull: updates the peer's back-off */
    node_schema_done_fn done; /* NULL for background pulls */
    void *ctx;
} pull;

struct node_schema_sync {
    struct ev_loop *loop;
    sib_log *log;
    msg_service *ms;
    gossip *gsp;
    cql_exec *ex;
    sch_catalog *cat;
    int timeout_ms;
    ev_timer check;
    peer *peers;
    size_t npeers, cap;
    pull *pulls;
};

static peer *peer_get(node_schema_sync *s, const char *addr, uint16_t port)
{
    for (size_t i = 0; i < s->npeers; i++)
        if (s->peers[i].port == port && !strcmp(s->peers[i].addr, addr)) return &s->peers[i];
    if (s->npeers >= MAX_PEERS || !sib_grow((void **)&s->peers, &s->cap, s->npeers + 1, sizeof *s->peers)) return NULL;
    peer *p = &s->peers[s->npeers++];
    *p = (peer){.port = port, .backoff = BACKOFF_MIN_S};
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    return p;
}

static void our_version(node_schema_sync *s, char out[37])
{
    uint8_t v[16];
    sch_catalog_schema_version(s->cat, v);
    sib_uuid_format(v, out);
}

void node_schema_sync_publish(node_schema_sync *s)
{
    char v[37];
    our_version(s, v);
    gsp_set_state(s->gsp, GSP_SCHEMA, v);
}

static void pull_free(pull *p)
{
    node_schema_sync *s = p->s;
    if (p->prev) p->prev->next = p->next;
    else s->pulls = p->next;
    if (p->next) p->next->prev = p->prev;
    free(p);
}

/* The end of a pull: back-off bookkeeping, then the caller's callback. */
static void pull_finish(pull *p, int rc, bool changed)
{
    node_schema_sync *s = p->s;
    if (p->background) {
        peer *pe = peer_get(s, p->addr, p->port);
        if (pe) {
            pe->inflight = false;
            if (!rc && changed) pe->backoff = BACKOFF_MIN_S;
            pe->next_ok = ev_now(s->loop) + pe->backoff;
            if (rc || !changed) pe->backoff = SIB_MIN(pe->backoff * 2, BACKOFF_MAX_S);
        }
    }
    if (changed && !rc) node_schema_sync_publish(s);
    if (p->done) p->done(p->ctx, rc);
    pull_free(p);
}

static void on_pull_merged(void *ctx, int rc) { pull_finish(ctx, rc, true); }

static void on_push_merged(void *ctx, int rc)
{
    if (!rc) node_schema_sync_publish(ctx);
}

/* Merges a snapshot; for a pull, p finishes now or once the rows are durable. */
static void merge_snapshot(node_schema_sync *s, pull *p, const char *from, const uint8_t *snap, size_t len)
{
    sib_err err = {0};
    int rc = len ? cql_exec_schema_merge(s->ex, snap, len, p ? on_pull_merged : on_push_merged, p ? (void *)p : s, &err)
                 : sib_err_set(&err, SIB_EIO, "the peer could not build its schema");
    if (rc < 0) sib_log(s->log, SIB_WARN, "schema: snapshot from /%s not merged: %s", from, err.msg);
    else if (rc > 0) sib_log(s->log, SIB_INFO, "schema: merged %d definitions from /%s", rc, from);
    if (p && rc <= 0) pull_finish(p, rc, false);
}

static void on_pull_answer(void *ctx, int rc, const msg_in *resp)
{
    pull *p = ctx;
    if (rc) {
        sib_log(p->s->log, SIB_DEBUG, "schema: pull from /%s failed (%d)", p->addr, rc);
        pull_finish(p, rc, false);
        return;
    }
    merge_snapshot(p->s, p, p->addr, resp->payload, resp->len);
}

static int start_pull(node_schema_sync *s, const char *host, uint16_t port, bool background, node_schema_done_fn done,
                      void *ctx, sib_err *err)
{
    pull *p = calloc(1, sizeof *p);
    if (!p) return sib_err_set(err, SIB_ENOMEM, "schema pull");
    *p = (pull){.s = s, .port = port, .background = background, .done = done, .ctx = ctx, .next = s->pulls};
    snprintf(p->addr, sizeof p->addr, "%s", host);
    int rc = msg_request(s->ms, host, port, NODE_VERB_SCHEMA_PULL, "", 0, s->timeout_ms, on_pull_answer, p, err);
    if (rc) { free(p); return rc; }
    if (s->pulls) s->pulls->prev = p;
    s->pulls = p;
    return 0;
}

int node_schema_sync_pull(node_schema_sync *s, const char *host, uint16_t port, node_schema_done_fn done, void *ctx,
                          sib_err *err)
{
    return start_pull(s, host, port, false, done, ctx, err);
}

/* A background pull when the peer is live, publishes another version and
 * is out of its back-off. */
static void check_peer(node_schema_sync *s, const gsp_endpoint_view *v, bool version_news)
{
    const char *theirs = v->states[GSP_SCHEMA];
    if (v->is_self || !v->alive || !theirs) return;
    char ours[37];
    our_version(s, ours);
    if (!strcmp(ours, theirs)) return;
    peer *pe = peer_get(s, v->addr, v->port);
    if (!pe || pe->inflight) return;
    if (version_news || strcmp(pe->seen, theirs)) {
        pe->backoff = BACKOFF_MIN_S;
        pe->next_ok = 0;
        snprintf(pe->seen, sizeof pe->seen, "%s", theirs);
    }
    if (ev_now(s->loop) < pe->next_ok) return;
    sib_err err = {0};
    if (start_pull(s, v->addr, v->port, true, NULL, NULL, &err)) {
        pe->next_ok = ev_now(s->loop) + pe->backoff;
        pe->backoff = SIB_MIN(pe->backoff * 2, BACKOFF_MAX_S);
        return;
    }
    pe->inflight = true;
    sib_log(s->log, SIB_DEBUG, "schema: /%s has version %s, ours is %s: pulling", v->addr, theirs, ours);
}

void node_schema_sync_peer(node_schema_sync *s, const gsp_endpoint_view *v) { check_peer(s, v, true); }

static void on_check(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    node_schema_sync *s = w->data;
    gsp_endpoint_view v;
    for (size_t i = 1; gsp_endpoint_at(s->gsp, i, &v); i++) check_peer(s, &v, false);
}

/* ---- the verbs ---- */

static void on_pull_request(void *ctx, msg_service *ms, const msg_in *m)
{
    node_schema_sync *s = ctx;
    sib_buf b;
    sib_buf_init(&b);
    sib_err err = {0};
    bool ok = cql_exec_schema_snapshot(s->ex, &b) == 0 && b.len <= UINT32_MAX;
    if (!ok) sib_log(s->log, SIB_WARN, "schema: cannot answer /%s's pull (snapshot of %zu bytes)", m->from, b.len);
    /* an empty answer tells the peer to try again later */
    if (msg_reply(ms, m, ok ? b.p : NULL, ok ? (uint32_t)b.len : 0, &err))
        sib_log(s->log, SIB_DEBUG, "schema: answer to /%s dropped: %s", m->from, err.msg);
    sib_buf_free(&b);
}

static void on_push(void *ctx, msg_service *ms, const msg_in *m)
{
    (void)ms;
    node_schema_sync *s = ctx;
    merge_snapshot(s, NULL, m->from, m->payload, m->len);
}

/* A local DDL is durable: republish, and push to every live peer. */
static void on_local_change(void *ctx)
{
    node_schema_sync *s = ctx;
    node_schema_sync_publish(s);
    sib_buf b;
    sib_buf_init(&b);
    if (cql_exec_schema_snapshot(s->ex, &b) || b.len > PUSH_MAX_BYTES) {
        sib_log(s->log, SIB_INFO, "schema: not pushed (snapshot of %zu bytes); peers will pull it", b.len);
        sib_buf_free(&b);
        return;
    }
    gsp_endpoint_view v;
    for (size_t i = 1; gsp_endpoint_at(s->gsp, i, &v); i++) {
        if (!v.alive) continue;
        sib_err err = {0};
        if (msg_send(s->ms, v.addr, v.port, NODE_VERB_SCHEMA_PUSH, b.p, (uint32_t)b.len, &err))
            sib_log(s->log, SIB_DEBUG, "schema: push to /%s failed: %s", v.addr, err.msg);
    }
    sib_buf_free(&b);
}

node_schema_sync *node_schema_sync_create(const node_schema_sync_opts *o)
{
    node_schema_sync *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    *s = (node_schema_sync){.loop = o->loop, .log = o->log, .ms = o->ms, .gsp = o->gsp, .ex = o->ex, .cat = o->cat,
                            .timeout_ms = o->pull_timeout_ms ? o->pull_timeout_ms : PULL_TIMEOUT_MS};
    msg_set_handler(s->ms, NODE_VERB_SCHEMA_PULL, on_pull_request, s);
    msg_set_handler(s->ms, NODE_VERB_SCHEMA_PUSH, on_push, s);
    cql_exec_set_schema_listener(s->ex, on_local_change, s);
    ev_timer_init(&s->check, on_check, CHECK_INTERVAL_S, CHECK_INTERVAL_S);
    s->check.data = s;
    return s;
}

void node_schema_sync_start(node_schema_sync *s) { ev_timer_start(s->loop, &s->check); }

void node_schema_sync_destroy(node_schema_sync *s)
{
    if (!s) return;
    ev_timer_stop(s->loop, &s->check);
    while (s->pulls) pull_free(s->pulls);
    free(s->peers);
    free(s);
}
