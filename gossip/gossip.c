/* gossip.c: the gossiper (gossip.h): endpoint states, the round, the
 * SYN / ACK / ACK2 exchange, ECHO, GOSSIP_SHUTDOWN and convictions.
 *
 * Wire formats (payloads of messaging frames; integers big-endian,
 * str = u16 length + bytes, lstr = u32 length + bytes):
 *
 *   digest = str addr | u16 port | i32 generation | i32 max version
 *   state  = str addr | u16 port | i32 generation | i32 heartbeat version
 *          | u16 n | n x (u8 key | i32 version | lstr value)
 *   SYN    = str cluster name | str partitioner | u32 n | n x digest  (a request)
 *   ACK    = u32 n | n x digest (what the initiator should send)
 *          | u32 m | m x state (what the initiator lacks)       (SYN's response)
 *   ACK2   = u32 m | m x state                                  (one-way)
 *   ECHO   = empty request, empty response
 *   SHUTDOWN = empty, one-way; the sender is the HELLO's address
 *
 * "Send what is above version v" (Cassandra's getStateForVersionBiggerThan)
 * means every value with a version > v, plus the heartbeat whenever it is
 * above v; a state with neither is not sent.
 *
 * removenode (gsp_advertise_removed) rewrites a dead peer's state here:
 * generation + 1, every version renumbered from 1 (a shut-down peer's
 * versions are pinned at the top), STATUS `removed,<host id>,<expiry>`.
 * The higher generation makes every node take the whole state. Until the
 * expiry, a newer generation from that address with the same host id is
 * refused (apply_one); its SYN is answered with the removal, so the
 * restarted node learns why and logs it.
 *
 * Peers are endpoints too: endpoint 0 is this node. Endpoints are never
 * freed before the gossiper (Cassandra evicts long-dead ones after days; a
 * Sibyl node keeps them, which is only a memory question for clusters that
 * churn through thousands of addresses).
 */
#include "gossip.h"

#include <arpa/inet.h>
#include <ev.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>

#define PARTITIONER "org.apache.cassandra.dht.Murmur3Partitioner"
#define MAX_ENDPOINTS 4096
#define MAX_LOCAL_PAUSE_NS (5000LL * 1000000LL)

typedef struct vvalue {
    char *v; /* NULL = absent */
    int32_t ver;
} vvalue;

typedef struct endpoint {
    gossip *g;
    char addr[64];
    uint16_t port;
    int32_t gen, hb;
    vvalue st[GSP_NSTATES];
    bool alive;
    bool echo_pending;
    bool told_shutdown;   /* we sent it our GOSSIP_SHUTDOWN */
    int32_t refused_gen;  /* last generation refused as a removed node's (logged once) */
    gsp_arrival *fd;
} endpoint;

typedef struct seed_addr {
    char addr[64];
    uint16_t port;
} seed_addr;

struct gossip {
    struct ev_loop *loop;
    sib_log *log;
    msg_service *ms;
    char cluster[128];
    int interval_ms;
    double threshold;
    gsp_listener lis;
    endpoint **eps; /* eps[0] = self */
    size_t neps, cap;
    seed_addr *seeds;
    size_t nseeds, seeds_cap;
    int32_t version; /* the one counter of every local version */
    ev_timer round;
    bool started, stopping;
    bool told_removed;  /* this node heard it was removed (logged once) */
    sib_rng rng;
    int64_t last_interpret_ns, last_pause_ns;
};

static const char *const KEY_NAMES[GSP_NSTATES] = {
    [GSP_STATUS] = "STATUS", [GSP_LOAD] = "LOAD", [GSP_SCHEMA] = "SCHEMA", [GSP_DC] = "DC", [GSP_RACK] = "RACK",
    [GSP_RELEASE_VERSION] = "RELEASE_VERSION", [GSP_RPC_ADDRESS] = "RPC_ADDRESS", [GSP_NET_VERSION] = "NET_VERSION",
    [GSP_HOST_ID] = "HOST_ID", [GSP_TOKENS] = "TOKENS", [GSP_RPC_READY] = "RPC_READY",
    [GSP_NATIVE_ADDRESS_AND_PORT] = "NATIVE_ADDRESS_AND_PORT",
};

const char *gsp_key_name(int key) { return key >= 0 && key < GSP_NSTATES ? KEY_NAMES[key] : NULL; }

/* ---- endpoints ---- */

static int32_t max_version(const endpoint *e)
{
    int32_t m = e->hb;
    for (int k = 0; k < GSP_NSTATES; k++)
        if (e->st[k].v && e->st[k].ver > m) m = e->st[k].ver;
    return m;
}

/* Cassandra's dead states: such an endpoint is never marked alive. */
static bool dead_state(const endpoint *e)
{
    const char *s = e->st[GSP_STATUS].v;
    if (!s) return false;
    static const char *const dead[] = {"LEFT", "removed", "removing", "hibernate", "shutdown"};
    for (size_t i = 0; i < SIB_ARRAY_LEN(dead); i++) {
        size_t n = strlen(dead[i]);
        if (!strncmp(s, dead[i], n) && (s[n] == ',' || !s[n])) return true;
    }
    return false;
}

static void view_of(const gossip *g, const endpoint *e, gsp_endpoint_view *v)
{
    memset(v, 0, sizeof *v);
    v->addr = e->addr;
    v->port = e->port;
    v->is_self = e == g->eps[0];
    v->alive = v->is_self ? !g->stopping : e->alive;
    v->generation = e->gen;
    v->heartbeat = e->hb;
    for (int k = 0; k < GSP_NSTATES; k++) {
        v->states[k] = e->st[k].v;
        v->versions[k] = e->st[k].ver;
    }
    v->phi = e->fd ? gsp_arrival_phi(e->fd, sib_mono_ns()) : 0.0;
}

static endpoint *ep_find(const gossip *g, const char *addr, uint16_t port)
{
    for (size_t i = 0; i < g->neps; i++)
        if (g->eps[i]->port == port && !strcmp(g->eps[i]->addr, addr)) return g->eps[i];
    return NULL;
}

static void ep_clear_values(endpoint *e)
{
    for (int k = 0; k < GSP_NSTATES; k++) {
        free(e->st[k].v);
        e->st[k] = (vvalue){0};
    }
}

static endpoint *ep_add(gossip *g, const char *addr, uint16_t port)
{
    if (g->neps >= MAX_ENDPOINTS || strlen(addr) >= sizeof g->eps[0]->addr) return NULL;
    if (!sib_grow((void **)&g->eps, &g->cap, g->neps + 1, sizeof *g->eps)) return NULL;
    endpoint *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->g = g;
    snprintf(e->addr, sizeof e->addr, "%s", addr);
    e->port = port;
    if (g->neps) { /* peers get a detector; this node never judges itself */
        int64_t initial = 2LL * g->interval_ms * 1000000LL;
        e->fd = gsp_arrival_create(initial, initial);
        if (!e->fd) { free(e); return NULL; }
    }
    g->eps[g->neps++] = e;
    return e;
}

static bool is_seed(const gossip *g, const endpoint *e)
{
    for (size_t i = 0; i < g->nseeds; i++)
        if (g->seeds[i].port == e->port && !strcmp(g->seeds[i].addr, e->addr)) return true;
    return false;
}

/* ---- liveness ---- */

static void mark_dead(gossip *g, endpoint *e, const char *why)
{
    if (!e->alive) return;
    e->alive = false;
    sib_log(g->log, SIB_INFO, "gossip: InetAddress /%s is now DOWN (%s)", e->addr, why);
    if (g->lis.down) {
        gsp_endpoint_view v;
        view_of(g, e, &v);
        g->lis.down(g->lis.ctx, &v);
    }
}

static void on_echo_reply(void *ctx, int rc, const msg_in *resp)
{
    endpoint *e = ctx;
    gossip *g = e->g;
    e->echo_pending = false;
    if (rc || e->alive || dead_state(e) || g->stopping) return;
    e->alive = true;
    sib_log(g->log, SIB_INFO, "gossip: InetAddress /%s is now UP", e->addr);
    if (g->lis.up) {
        gsp_endpoint_view v;
        view_of(g, e, &v);
        g->lis.up(g->lis.ctx, &v);
    }
}

/* Cassandra's markAlive: UP only once the endpoint answers an ECHO, so a
 * state relayed by others cannot make a node look alive by itself. */
static void mark_alive(gossip *g, endpoint *e)
{
    if (e->alive || e->echo_pending || dead_state(e) || g->stopping) return;
    sib_err err = {0};
    if (msg_request(g->ms, e->addr, e->port, GSP_VERB_ECHO, NULL, 0, 2 * g->interval_ms, on_echo_reply, e, &err) == 0)
        e->echo_pending = true;
    else
        sib_log(g->log, SIB_DEBUG, "gossip: echo to /%s: %s", e->addr, err.msg);
}

/* ---- encoding ---- */

static void put_str(sib_buf *b, const char *s)
{
    size_t n = strlen(s);
    sib_buf_be16(b, (uint16_t)n);
    sib_buf_append(b, s, n);
}

static bool get_str(sib_rd *r, char *out, size_t cap)
{
    uint16_t n;
    const uint8_t *p;
    if (!sib_rd_be16(r, &n) || !sib_rd_bytes(r, n, &p) || n >= cap) return false;
    memcpy(out, p, n);
    out[n] = 0;
    return true;
}

static void put_digest(sib_buf *b, const char *addr, uint16_t port, int32_t gen, int32_t maxv)
{
    put_str(b, addr);
    sib_buf_be16(b, port);
    sib_buf_be32(b, (uint32_t)gen);
    sib_buf_be32(b, (uint32_t)maxv);
}

typedef struct digest {
    char addr[64];
    uint16_t port;
    int32_t gen, maxv;
} digest;

static bool get_digest(sib_rd *r, digest *d)
{
    uint32_t gen, maxv;
    if (!get_str(r, d->addr, sizeof d->addr) || !sib_rd_be16(r, &d->port) || !sib_rd_be32(r, &gen) ||
        !sib_rd_be32(r, &maxv))
        return false;
    d->gen = (int32_t)gen;
    d->maxv = (int32_t)maxv;
    return true;
}

/* Appends e's values above version `above` (and the heartbeat if above);
 * returns false (nothing appended) when there is none. */
static bool put_state_above(sib_buf *b, const endpoint *e, int32_t above)
{
    uint16_t n = 0;
    for (int k = 0; k < GSP_NSTATES; k++) n += e->st[k].v && e->st[k].ver > above;
    if (!n && e->hb <= above) return false;
    put_str(b, e->addr);
    sib_buf_be16(b, e->port);
    sib_buf_be32(b, (uint32_t)e->gen);
    sib_buf_be32(b, (uint32_t)e->hb);
    sib_buf_be16(b, n);
    for (int k = 0; k < GSP_NSTATES; k++) {
        if (!e->st[k].v || e->st[k].ver <= above) continue;
        size_t len = strlen(e->st[k].v);
        sib_buf_u8(b, (uint8_t)k);
        sib_buf_be32(b, (uint32_t)e->st[k].ver);
        sib_buf_be32(b, (uint32_t)len);
        sib_buf_append(b, e->st[k].v, len);
    }
    return true;
}

/* A decoded remote state; values point into the message. */
typedef struct rstate {
    char addr[64];
    uint16_t port;
    int32_t gen, hb;
    struct { const uint8_t *p; uint32_t len; int32_t ver; bool set; } st[GSP_NSTATES];
} rstate;

static bool get_state(sib_rd *r, rstate *s)
{
    memset(s, 0, sizeof *s);
    uint32_t gen, hb;
    uint16_t n;
    if (!get_str(r, s->addr, sizeof s->addr) || !sib_rd_be16(r, &s->port) || !sib_rd_be32(r, &gen) ||
        !sib_rd_be32(r, &hb) || !sib_rd_be16(r, &n))
        return false;
    s->gen = (int32_t)gen;
    s->hb = (int32_t)hb;
    for (uint16_t i = 0; i < n; i++) {
        uint8_t k;
        uint32_t ver, len;
        const uint8_t *p;
        if (!sib_rd_u8(r, &k) || !sib_rd_be32(r, &ver) || !sib_rd_be32(r, &len) || !sib_rd_bytes(r, len, &p))
            return false;
        if (k >= GSP_NSTATES) continue; /* a key from a newer release: skip it */
        s->st[k].p = p;
        s->st[k].len = len;
        s->st[k].ver = (int32_t)ver;
        s->st[k].set = true;
    }
    return true;
}

static int32_t rstate_max(const rstate *s)
{
    int32_t m = s->hb;
    for (int k = 0; k < GSP_NSTATES; k++)
        if (s->st[k].set && s->st[k].ver > m) m = s->st[k].ver;
    return m;
}

/* ---- applying remote states ---- */

static void notify_change(gossip *g, endpoint *e, int k)
{
    if (!g->lis.change) return;
    gsp_endpoint_view v;
    view_of(g, e, &v);
    g->lis.change(g->lis.ctx, &v, (gsp_key)k);
}

/* Copies the remote values newer than ours; returns a bit per changed key. */
static uint32_t merge_values(endpoint *e, const rstate *s)
{
    uint32_t changed = 0;
    for (int k = 0; k < GSP_NSTATES; k++) {
        if (!s->st[k].set || (e->st[k].v && s->st[k].ver <= e->st[k].ver)) continue;
        char *v = malloc(s->st[k].len + 1);
        if (!v) continue;
        memcpy(v, s->st[k].p, s->st[k].len);
        v[s->st[k].len] = 0;
        bool same = e->st[k].v && !strcmp(e->st[k].v, v);
        free(e->st[k].v);
        e->st[k] = (vvalue){v, s->st[k].ver};
        if (!same) changed |= 1u << k;
    }
    return changed;
}

/* The removal marker of e, when it is still in force (not expired). */
static bool removal_active(const endpoint *e, char hid[37])
{
    int64_t expiry;
    return e && gsp_status_removed(e->st[GSP_STATUS].v, hid, &expiry) && sib_now_us() / 1000 < expiry;
}

/* A newer generation of a removed endpoint that still carries the removed
 * host id (or none): the removed node restarted with its old data. It
 * stays out; a node with another host id at that address is new. */
static bool refuse_removed(gossip *g, endpoint *e, const rstate *s)
{
    char hid[37];
    if (!e || s->gen <= e->gen || !removal_active(e, hid)) return false;
    const char *rhid = (const char *)s->st[GSP_HOST_ID].p;
    if (s->st[GSP_HOST_ID].set && (s->st[GSP_HOST_ID].len != 36 || strncasecmp(hid, rhid, 36))) return false;
    if (e->refused_gen != s->gen) {
        e->refused_gen = s->gen;
        sib_log(g->log, SIB_WARN, "gossip: refusing /%s (generation %d): host id %s was removed from the cluster "
                "(removenode); it stays out of the ring. To bring the machine back, clear its data directory and "
                "start it as a new node", s->addr, s->gen, hid);
    }
    return true;
}

/* The state others hold about this node says it was removed. */
static void check_self_removed(gossip *g, const rstate *s)
{
    const char *mine = g->eps[0]->st[GSP_HOST_ID].v;
    if (g->told_removed || !mine || !s->st[GSP_STATUS].set || s->st[GSP_STATUS].len < 8 + 36 ||
        memcmp(s->st[GSP_STATUS].p, "removed,", 8) || strncasecmp((const char *)s->st[GSP_STATUS].p + 8, mine, 36))
        return;
    g->told_removed = true;
    sib_log(g->log, SIB_ERROR, "gossip: a peer says this node (/%s, host id %s) was removed from the cluster by "
            "removenode: the other nodes refuse its gossip and it is not part of their ring. Clear this node's data "
            "directory and start it as a new node to rejoin", s->addr, mine);
}

static void apply_one(gossip *g, const rstate *s)
{
    endpoint *e = ep_find(g, s->addr, s->port);
    if (e == g->eps[0]) { /* nothing about this node is learned from others */
        check_self_removed(g, s);
        return;
    }
    if (refuse_removed(g, e, s)) return;
    int32_t rmax = rstate_max(s);
    gsp_apply_action a =
        gsp_apply_rule(e != NULL, e ? e->gen : 0, e ? max_version(e) : 0, s->gen, rmax, sib_now_us() / 1000000);
    int64_t now = sib_mono_ns();
    switch (a) {
    case GSP_APPLY_IGNORE: return;
    case GSP_APPLY_REJECT:
        sib_log(g->log, SIB_WARN, "gossip: ignoring /%s: generation %d is more than a year ahead", s->addr, s->gen);
        return;
    case GSP_APPLY_NEW:
        if (!(e = ep_add(g, s->addr, s->port))) return;
        sib_log(g->log, SIB_INFO, "gossip: new endpoint /%s (generation %d)", s->addr, s->gen);
        gsp_arrival_report(e->fd, now);
        break;
    case GSP_APPLY_RESTART:
        sib_log(g->log, SIB_INFO, "gossip: /%s has restarted (generation %d -> %d)", s->addr, e->gen, s->gen);
        /* History of the old process says nothing about the new one. */
        if (!e->alive) gsp_arrival_clear(e->fd);
        gsp_arrival_report(e->fd, now);
        /* Cassandra marks a restarted node dead until it answers an ECHO. */
        if (e->alive) {
            e->alive = false;
            e->echo_pending = false;
        }
        ep_clear_values(e);
        break;
    case GSP_APPLY_MERGE:
        if (s->hb > max_version(e)) gsp_arrival_report(e->fd, now);
        break;
    }
    e->gen = s->gen;
    if (s->hb > e->hb || a != GSP_APPLY_MERGE) e->hb = s->hb;
    uint32_t changed = merge_values(e, s);
    for (int k = 0; k < GSP_NSTATES; k++)
        if (changed & (1u << k)) notify_change(g, e, k);
    if (dead_state(e)) mark_dead(g, e, e->st[GSP_STATUS].v);
    else mark_alive(g, e);
}

static bool apply_states(gossip *g, sib_rd *r)
{
    uint32_t n;
    if (!sib_rd_be32(r, &n) || n > MAX_ENDPOINTS) return false;
    for (uint32_t i = 0; i < n; i++) {
        rstate s;
        if (!get_state(r, &s)) return false;
        apply_one(g, &s);
    }
    return true;
}

/* ---- SYN / ACK / ACK2 ---- */

static void on_syn(void *ctx, msg_service *ms, const msg_in *m)
{
    gossip *g = ctx;
    if (g->stopping) return;
    sib_rd r;
    sib_rd_init(&r, m->payload, m->len);
    char cluster[128], part[128];
    uint32_t n;
    if (!get_str(&r, cluster, sizeof cluster) || !get_str(&r, part, sizeof part) || !sib_rd_be32(&r, &n) ||
        n > MAX_ENDPOINTS) {
        sib_log(g->log, SIB_WARN, "gossip: malformed SYN from /%s", m->from);
        return;
    }
    if (strcmp(cluster, g->cluster) || strcmp(part, PARTITIONER)) {
        sib_log(g->log, SIB_WARN, "gossip: ClusterName mismatch from /%s: '%s' != '%s'", m->from, cluster, g->cluster);
        return;
    }
    sib_buf reqs, states;
    sib_buf_init(&reqs);
    sib_buf_init(&states);
    uint32_t nreq = 0, nst = 0;
    for (uint32_t i = 0; i < n; i++) {
        digest d;
        if (!get_digest(&r, &d)) break;
        endpoint *e = ep_find(g, d.addr, d.port);
        int32_t lmax = e ? max_version(e) : 0;
        char hid[37];
        /* a removed node that restarted: tell it (check_self_removed) */
        if (e && e != g->eps[0] && d.gen > e->gen && removal_active(e, hid)) nst += put_state_above(&states, e, 0);
        switch (gsp_digest_compare(e != NULL, e ? e->gen : 0, lmax, d.gen, d.maxv)) {
        case GSP_REQUEST_ALL: put_digest(&reqs, d.addr, d.port, d.gen, 0); nreq++; break;
        case GSP_REQUEST_NEWER: put_digest(&reqs, d.addr, d.port, d.gen, lmax); nreq++; break;
        case GSP_SEND_ALL: nst += put_state_above(&states, e, 0); break;
        case GSP_SEND_NEWER: nst += put_state_above(&states, e, d.maxv); break;
        case GSP_IN_SYNC: break;
        }
    }
    sib_buf ack;
    sib_buf_init(&ack);
    sib_buf_be32(&ack, nreq);
    sib_buf_append(&ack, reqs.p, reqs.len);
    sib_buf_be32(&ack, nst);
    sib_buf_append(&ack, states.p, states.len);
    sib_err err = {0};
    if (!ack.oom && msg_reply(ms, m, ack.p, (uint32_t)ack.len, &err))
        sib_log(g->log, SIB_DEBUG, "gossip: ACK to /%s: %s", m->from, err.msg);
    sib_buf_free(&ack);
    sib_buf_free(&reqs);
    sib_buf_free(&states);
}

static void on_ack(void *ctx, int rc, const msg_in *m)
{
    gossip *g = ctx;
    if (rc || g->stopping) return; /* an unanswered SYN is retried next round, maybe elsewhere */
    sib_rd r;
    sib_rd_init(&r, m->payload, m->len);
    uint32_t nreq;
    if (!sib_rd_be32(&r, &nreq) || nreq > MAX_ENDPOINTS) return;
    digest *reqs = calloc(nreq ? nreq : 1, sizeof *reqs);
    if (!reqs) return;
    uint32_t got = 0;
    while (got < nreq && get_digest(&r, &reqs[got])) got++;
    if (got == nreq && !apply_states(g, &r))
        sib_log(g->log, SIB_WARN, "gossip: malformed ACK from /%s", m->from);
    sib_buf ack2;
    sib_buf_init(&ack2);
    sib_buf_be32(&ack2, 0);
    uint32_t nst = 0;
    for (uint32_t i = 0; i < got; i++) {
        endpoint *e = ep_find(g, reqs[i].addr, reqs[i].port);
        if (e) nst += put_state_above(&ack2, e, reqs[i].maxv);
    }
    free(reqs);
    if (nst && !ack2.oom) {
        put_be32(ack2.p, nst);
        sib_err err = {0};
        if (msg_send(g->ms, m->from, m->from_port, GSP_VERB_ACK2, ack2.p, (uint32_t)ack2.len, &err))
            sib_log(g->log, SIB_DEBUG, "gossip: ACK2 to /%s: %s", m->from, err.msg);
    }
    sib_buf_free(&ack2);
}

static void on_ack2(void *ctx, msg_service *ms, const msg_in *m)
{
    gossip *g = ctx;
    if (g->stopping) return;
    sib_rd r;
    sib_rd_init(&r, m->payload, m->len);
    if (!apply_states(g, &r)) sib_log(g->log, SIB_WARN, "gossip: malformed ACK2 from /%s", m->from);
}

static void on_echo(void *ctx, msg_service *ms, const msg_in *m)
{
    gossip *g = ctx;
    if (g->stopping) return; /* a node going away does not claim to be alive */
    msg_reply(ms, m, NULL, 0, NULL);
}

/* GOSSIP_SHUTDOWN: the sender stops now. Its heartbeat and STATUS are
 * pinned at the highest versions so no gossip still in flight about the
 * same generation can bring it back; only a restart (a new generation) can. */
static void on_shutdown(void *ctx, msg_service *ms, const msg_in *m)
{
    gossip *g = ctx;
    endpoint *e = ep_find(g, m->from, m->from_port);
    if (!e || e == g->eps[0]) return;
    char *v = strdup("shutdown,true");
    if (v) {
        free(e->st[GSP_STATUS].v);
        e->st[GSP_STATUS] = (vvalue){v, INT32_MAX - 1};
    }
    e->hb = INT32_MAX;
    e->echo_pending = false;
    mark_dead(g, e, "announced its shutdown");
    notify_change(g, e, GSP_STATUS);
}

/* ---- the round ---- */

static endpoint *pick(gossip *g, bool want_alive)
{
    size_t n = 0;
    for (size_t i = 1; i < g->neps; i++) n += g->eps[i]->alive == want_alive;
    if (!n) return NULL;
    size_t k = (size_t)(sib_rng_next(&g->rng) % n);
    for (size_t i = 1; i < g->neps; i++)
        if (g->eps[i]->alive == want_alive && k-- == 0) return g->eps[i];
    return NULL;
}

static double coin(gossip *g) { return (double)(sib_rng_next(&g->rng) >> 11) / 9007199254740992.0; }

static void send_syn(gossip *g, const char *addr, uint16_t port, const sib_buf *syn)
{
    sib_err err = {0};
    if (msg_request(g->ms, addr, port, GSP_VERB_SYN, syn->p, (uint32_t)syn->len, 2 * g->interval_ms, on_ack, g, &err))
        sib_log(g->log, SIB_DEBUG, "gossip: SYN to /%s: %s", addr, err.msg);
}

static void build_syn(gossip *g, sib_buf *b)
{
    put_str(b, g->cluster);
    put_str(b, PARTITIONER);
    sib_buf_be32(b, (uint32_t)g->neps);
    /* Digests in random order, so a large state never starves the ones
     * that come after it when a peer answers only part of them. */
    size_t *order = malloc(g->neps * sizeof *order);
    for (size_t i = 0; order && i < g->neps; i++) order[i] = i;
    for (size_t i = g->neps; order && i > 1; i--) {
        size_t j = (size_t)(sib_rng_next(&g->rng) % i), t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    for (size_t i = 0; i < g->neps; i++) {
        const endpoint *e = g->eps[order ? order[i] : i];
        put_digest(b, e->addr, e->port, e->gen, max_version(e));
    }
    free(order);
}

/* Cassandra's doStatusCheck, convictions only. A loop that itself stalled
 * for more than 5 s (a pause, a swap storm) convicts nobody for 5 s: the
 * silence it measured was its own. */
static void status_check(gossip *g)
{
    int64_t now = sib_mono_ns();
    int64_t since = now - g->last_interpret_ns;
    g->last_interpret_ns = now;
    if (since > MAX_LOCAL_PAUSE_NS) {
        sib_log(g->log, SIB_WARN, "gossip: not marking nodes down due to local pause of %lld ms", (long long)(since / 1000000));
        g->last_pause_ns = now;
        return;
    }
    if (g->last_pause_ns && now - g->last_pause_ns < MAX_LOCAL_PAUSE_NS) return;
    for (size_t i = 1; i < g->neps; i++) {
        endpoint *e = g->eps[i];
        if (!e->alive) continue;
        double phi = gsp_arrival_phi(e->fd, now);
        if (phi > g->threshold) {
            char why[64];
            snprintf(why, sizeof why, "phi %.1f > %.1f", phi, g->threshold);
            mark_dead(g, e, why);
        }
    }
}

static void on_round(struct ev_loop *loop, ev_timer *w, int revents)
{
    gossip *g = w->data;
    endpoint *self = g->eps[0];
    self->hb = ++g->version;
    sib_buf syn;
    sib_buf_init(&syn);
    build_syn(g, &syn);
    if (syn.oom) { sib_buf_free(&syn); return; }
    size_t live = gsp_live_count(g), unreachable = g->neps - 1 - live;
    endpoint *target = pick(g, true);
    if (target) send_syn(g, target->addr, target->port, &syn);
    if (unreachable && coin(g) < (double)unreachable / (double)(live + 1)) {
        endpoint *u = pick(g, false);
        if (u) send_syn(g, u->addr, u->port, &syn);
    }
    /* A seed, so clusters that came up in pieces still join into one. */
    bool self_only_seed = g->nseeds == 1 && g->seeds[0].port == self->port && !strcmp(g->seeds[0].addr, self->addr);
    if (g->nseeds && !self_only_seed && (!target || !is_seed(g, target) || live < g->nseeds)) {
        double p = live == 0 ? 1.0 : (double)g->nseeds / (double)(live + unreachable);
        if (coin(g) <= p) {
            const seed_addr *s = &g->seeds[sib_rng_next(&g->rng) % g->nseeds];
            if (s->port != self->port || strcmp(s->addr, self->addr)) send_syn(g, s->addr, s->port, &syn);
        }
    }
    sib_buf_free(&syn);
    status_check(g);
}

/* ---- public ---- */

static int parse_seeds(gossip *g, const char *list, uint16_t port, sib_err *err)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list && *list ? list : g->eps[0]->addr);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ') *--end = 0;
        if (!*tok) continue;
        seed_addr s = {.port = port};
        char *colon = strchr(tok, ':');
        if (colon) {
            *colon = 0;
            long p = strtol(colon + 1, &end, 10);
            if (*end || p <= 0 || p > 65535) return sib_err_set(err, SIB_ECONFIG, "seed_provider: bad port in '%s'", tok);
            s.port = (uint16_t)p;
        }
        struct in_addr ia;
        if (strlen(tok) >= sizeof s.addr || inet_pton(AF_INET, tok, &ia) != 1)
            return sib_err_set(err, SIB_ECONFIG, "seed_provider: '%s' is not an IPv4 address", tok);
        snprintf(s.addr, sizeof s.addr, "%s", tok);
        if (!sib_grow((void **)&g->seeds, &g->seeds_cap, g->nseeds + 1, sizeof *g->seeds))
            return sib_err_set(err, SIB_ENOMEM, "seeds");
        g->seeds[g->nseeds++] = s;
    }
    return 0;
}

gossip *gsp_create(const gsp_opts *o, sib_err *err)
{
    gossip *g = calloc(1, sizeof *g);
    if (!g) { sib_err_set(err, SIB_ENOMEM, "gossip"); return NULL; }
    g->loop = o->loop;
    g->log = o->log;
    g->ms = o->ms;
    g->lis = o->listener;
    g->interval_ms = o->interval_ms > 0 ? o->interval_ms : 1000;
    g->threshold = o->phi_convict_threshold > 0 ? o->phi_convict_threshold : 8.0;
    snprintf(g->cluster, sizeof g->cluster, "%s", o->cluster_name);
    if (o->seed) g->rng = (sib_rng){{o->seed, o->seed ^ 0x9e3779b97f4a7c15ULL}};
    else sib_rng_seed(&g->rng);
    endpoint *self = ep_add(g, o->addr, o->port);
    if (!self) { gsp_destroy(g); sib_err_set(err, SIB_ENOMEM, "gossip"); return NULL; }
    self->gen = o->generation;
    self->alive = true;
    if (parse_seeds(g, o->seeds, o->port, err)) { gsp_destroy(g); return NULL; }
    ev_timer_init(&g->round, on_round, 0, g->interval_ms / 1000.0);
    g->round.data = g;
    g->last_interpret_ns = sib_mono_ns();
    msg_set_handler(g->ms, GSP_VERB_SYN, on_syn, g);
    msg_set_handler(g->ms, GSP_VERB_ACK2, on_ack2, g);
    msg_set_handler(g->ms, GSP_VERB_SHUTDOWN, on_shutdown, g);
    msg_set_handler(g->ms, GSP_VERB_ECHO, on_echo, g);
    return g;
}

void gsp_destroy(gossip *g)
{
    if (!g) return;
    ev_timer_stop(g->loop, &g->round);
    for (size_t i = 0; i < g->neps; i++) {
        ep_clear_values(g->eps[i]);
        gsp_arrival_destroy(g->eps[i]->fd);
        free(g->eps[i]);
    }
    free(g->eps);
    free(g->seeds);
    free(g);
}

int gsp_set_state(gossip *g, gsp_key key, const char *value)
{
    if ((int)key < 0 || key >= GSP_NSTATES) return SIB_EINVAL;
    endpoint *self = g->eps[0];
    if (self->st[key].v && !strcmp(self->st[key].v, value)) return 0;
    char *v = strdup(value);
    if (!v) return SIB_ENOMEM;
    free(self->st[key].v);
    self->st[key] = (vvalue){v, ++g->version};
    return 0;
}

void gsp_start(gossip *g)
{
    if (g->started) return;
    g->started = true;
    g->last_interpret_ns = sib_mono_ns();
    ev_timer_start(g->loop, &g->round);
}

size_t gsp_announce_shutdown(gossip *g)
{
    if (g->stopping) return 0;
    gsp_set_state(g, GSP_STATUS, "shutdown,true");
    ev_timer_stop(g->loop, &g->round);
    size_t told = 0;
    for (size_t i = 1; i < g->neps; i++) {
        endpoint *e = g->eps[i];
        if (!e->alive) continue;
        sib_err err = {0};
        if (msg_send(g->ms, e->addr, e->port, GSP_VERB_SHUTDOWN, NULL, 0, &err) == 0) {
            e->told_shutdown = true;
            told++;
        }
    }
    g->stopping = true;
    sib_log(g->log, SIB_INFO, "gossip: announced shutdown to %zu live peers", told);
    return told;
}

bool gsp_shutdown_sent(const gossip *g)
{
    for (size_t i = 1; i < g->neps; i++)
        if (g->eps[i]->told_shutdown && msg_queued_bytes(g->ms, g->eps[i]->addr, g->eps[i]->port)) return false;
    return true;
}

bool gsp_status_removed(const char *status, char hid[37], int64_t *expiry_ms)
{
    if (!status || strncmp(status, "removed,", 8)) return false;
    const char *p = status + 8, *comma = strchr(p, ',');
    if (!comma || comma - p != 36 || !comma[1]) return false;
    char *end;
    long long x = strtoll(comma + 1, &end, 10);
    if (*end) return false;
    memcpy(hid, p, 36);
    hid[36] = 0;
    *expiry_ms = x;
    return true;
}

int gsp_advertise_removed(gossip *g, const char *addr, uint16_t port, sib_err *err)
{
    endpoint *e = ep_find(g, addr, port);
    if (!e) return sib_err_set(err, SIB_ENOTFOUND, "Host ID not found.");
    if (e == g->eps[0]) return sib_err_set(err, SIB_EINVAL, "Cannot remove self");
    if (e->alive)
        return sib_err_set(err, SIB_EINVAL,
                           "Node /%s:%u is alive and owns this ID. Use decommission command to remove it from the ring",
                           addr, port);
    const char *hid = e->st[GSP_HOST_ID].v;
    if (!hid || strlen(hid) != 36) return sib_err_set(err, SIB_ENOTFOUND, "Host ID not found.");
    char buf[96];
    snprintf(buf, sizeof buf, "removed,%s,%lld", hid, (long long)(sib_now_us() / 1000 + GSP_REMOVED_EXPIRY_MS));
    char *v = strdup(buf);
    if (!v) return sib_err_set(err, SIB_ENOMEM, "gossip");
    /* A new generation starts its versions over: 1 for what it keeps, 2
     * for the STATUS, so a peer shut down with pinned versions is covered. */
    e->gen++;
    e->hb = 1;
    for (int k = 0; k < GSP_NSTATES; k++)
        if (e->st[k].v) e->st[k].ver = 1;
    free(e->st[GSP_STATUS].v);
    e->st[GSP_STATUS] = (vvalue){v, 2};
    sib_log(g->log, SIB_INFO, "gossip: completing removal of /%s (STATUS %s, generation %d)", addr, v, e->gen);
    notify_change(g, e, GSP_STATUS);
    return 0;
}

size_t gsp_endpoint_count(const gossip *g) { return g->neps; }

bool gsp_endpoint_at(const gossip *g, size_t i, gsp_endpoint_view *out)
{
    if (i >= g->neps) return false;
    view_of(g, g->eps[i], out);
    return true;
}

size_t gsp_live_count(const gossip *g)
{
    size_t n = 0;
    for (size_t i = 1; i < g->neps; i++) n += g->eps[i]->alive;
    return n;
}
