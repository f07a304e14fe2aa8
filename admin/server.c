/* server.c: the admin API: libmicrohttpd driven by the node's libev loop, and
 * what each endpoint answers (see admin.h for the list).
 *
 * MHD runs in "external select" mode with its epoll backend and no thread
 * of its own. The daemon keeps every socket (listener and connections) in
 * one epoll set and exposes that set's fd: it becomes readable when any of
 * them has work. The loop watches it with one ev_io and calls MHD_run(),
 * which accepts, reads, calls on_request (on the loop thread, so handlers
 * read node state without locks) and writes what fits, never blocking. MHD
 * also has timeouts (idle connections, and "work is ready now" after a
 * response was queued), which the ev_timer re-armed after every MHD_run
 * covers.
 *
 *   loop ── ev_io(epoll fd) ──▶ MHD_run ──▶ on_request ──▶ admin_route
 *        └─ ev_timer(MHD_get_timeout) ─┘
 *
 * Request bodies are ignored: every endpoint takes its arguments from the
 * path, and POST /flush, /compact or /removenode carry none.
 *
 * Handlers: each reads node state directly (it runs on the loop thread) and
 * builds a jansson tree that admin_route() serializes; a handler that fails sets
 * an HTTP status and an error string instead. Handlers only read: nothing
 * here writes to storage or the schema, so a scrape or a sibyltool call can
 * never change what clients see. The POST endpoints act only through the
 * node's hooks (flush, compaction, removenode).
 *
 * Units: sizes are bytes, times seconds unless a field name says _ms/_us,
 * tokens are JSON integers (int64, as Murmur3Partitioner gives them).
 * Members: /status, /ring, /gossipinfo and /describecluster list this node and every peer
 * gossip knows (its values as last gossiped: load, tokens, liveness from
 * the local failure detector). Ownership is computed over the union of
 * every member's tokens. Without a gossiper (unit tests) only this node.
 */
#include "admin_int.h"

#include <arpa/inet.h>
#include <ev.h>
#include <inttypes.h>
#include <jansson.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "coordinator.h"
#include "gossip.h"
#include "schema.h"
#include "storage.h"

struct admin_server {
    struct ev_loop *loop;
    sib_log *log;
    struct MHD_Daemon *mhd;
    ev_io io;        /* MHD's epoll fd: readable when a socket has work */
    ev_timer timer;  /* MHD's own timeouts (idle connections, pending work) */
    uint16_t port;
    storage *st;
    sch_catalog *cat;
    coord *co;
    gossip *gsp;          /* peers; NULL = this node only */
    admin_metrics *metrics;
    admin_node_info node; /* node.tokens points at tokens below */
    int64_t *tokens;      /* sorted copy */
    admin_hooks hooks;
    int64_t start_us;
    char bind_addr[64];
    char *token;          /* admin_auth_token or NULL */
    unsigned max_conns;
    double conn_timeout;
    admin_conns *conns;   /* guard.c */
};

/* ==== routes ==== */

#define MAX_SEGS 8
#define MAX_REPLICAS 64

typedef struct route_req {
    admin_server *s;
    const char *method;
    char *seg[MAX_SEGS]; /* path segments after the endpoint name */
    size_t nseg;
    int status;
    const char *error;   /* static or err.msg */
    sib_err err;
} route_req;

static json_t *fail(route_req *r, int status, const char *msg)
{
    r->status = status;
    r->error = msg;
    return NULL;
}

static json_t *fail_err(route_req *r, int status)
{
    r->status = status;
    r->error = r->err.msg;
    return NULL;
}

/* ---- shared facts about this node ---- */

static uint64_t load_bytes(admin_server *s)
{
    /* What the node holds: memtables plus live SSTables. */
    storage_stats ss;
    storage_get_stats(s->st, &ss);
    return ss.memtable_bytes + ss.sstable_bytes;
}

static const char *member_addr(admin_server *s, size_t member)
{
    return member == 0 ? s->node.listen_address : coord_member_addr(s->co, member);
}

static json_t *host_id_json(const uint8_t id[16])
{
    char buf[37];
    sib_uuid_format(id, buf);
    return json_string(buf);
}

static json_t *schema_version_json(admin_server *s)
{
    uint8_t v[16];
    sch_catalog_schema_version(s->cat, v);
    return host_id_json(v);
}

double admin_ring_owns(const int64_t *ring, size_t nring, const int64_t *mine, size_t n)
{
    if (!nring || !n) return 0.0;
    if (nring == n) return 1.0;
    /* Sum of (prev, t] for each of mine, in units of 2^-64 of the ring, in
     * long double so 2^64 fits and the wrap-around range is exact enough. */
    long double owned = 0;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        while (j < nring && ring[j] < mine[i]) j++;
        int64_t prev = j == 0 ? ring[nring - 1] : ring[j - 1];
        long double width = (long double)mine[i] - (long double)prev;
        if (width <= 0) width += 18446744073709551616.0L; /* wraps past the max token */
        owned += width;
    }
    return (double)(owned / 18446744073709551616.0L);
}

/* ---- the members: this node and what gossip knows ---- */

typedef struct amember {
    const char *addr, *dc, *rack;
    char host_id[37];
    bool up;
    char state;         /* N(ormal), L(eaving), J(oining), ? */
    double load;        /* bytes; < 0 unknown */
    int64_t *tokens;    /* sorted, malloc'd */
    size_t ntokens;
    double owns;        /* percent of the ring */
} amember;

typedef struct amembers {
    amember *m;
    size_t n;
    int64_t *ring;      /* every member's tokens, sorted */
    size_t nring;
} amembers;

static int cmp_tok(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static char state_char(const char *status)
{
    if (!status) return '?';
    if (!strncmp(status, "NORMAL", 6) || !strncmp(status, "shutdown", 8)) return 'N';
    if (!strncmp(status, "LEAVING", 7)) return 'L';
    if (!strncmp(status, "BOOT", 4)) return 'J';
    return '?';
}

/* Out of the ring for good: removed (removenode) or LEFT (decommission);
 * gossip keeps such a state for days, nodetool no longer lists the node. */
static bool gone_status(const char *st)
{
    return st && (!strncmp(st, "removed,", 8) || !strncmp(st, "LEFT,", 5));
}

/* This node first, then every peer gossip knows with tokens (and that has
 * not left the ring). */
static void members_collect(admin_server *s, amembers *ms)
{
    memset(ms, 0, sizeof *ms);
    size_t cap = 1 + (s->gsp ? gsp_endpoint_count(s->gsp) : 0);
    ms->m = calloc(cap, sizeof *ms->m);
    if (!ms->m) return;
    amember *me = &ms->m[ms->n++];
    me->addr = s->node.listen_address;
    me->dc = s->node.dc;
    me->rack = s->node.rack;
    sib_uuid_format(s->node.host_id, me->host_id);
    me->up = true;
    me->state = 'N';
    me->load = (double)load_bytes(s);
    me->tokens = malloc(sizeof(int64_t) * (s->node.ntokens ? s->node.ntokens : 1));
    if (me->tokens) {
        memcpy(me->tokens, s->tokens, sizeof(int64_t) * s->node.ntokens);
        me->ntokens = s->node.ntokens;
    }
    gsp_endpoint_view v;
    for (size_t i = 1; s->gsp && gsp_endpoint_at(s->gsp, i, &v); i++) {
        if (!v.states[GSP_TOKENS] || gone_status(v.states[GSP_STATUS])) continue;
        amember *m = &ms->m[ms->n++];
        m->addr = v.addr;
        m->dc = v.states[GSP_DC] ? v.states[GSP_DC] : "";
        m->rack = v.states[GSP_RACK] ? v.states[GSP_RACK] : "";
        snprintf(m->host_id, sizeof m->host_id, "%s", v.states[GSP_HOST_ID] ? v.states[GSP_HOST_ID] : "");
        m->up = v.alive;
        m->state = state_char(v.states[GSP_STATUS]);
        m->load = v.states[GSP_LOAD] ? strtod(v.states[GSP_LOAD], NULL) : -1;
        m->ntokens = gsp_parse_tokens(v.states[GSP_TOKENS], &m->tokens);
    }
    for (size_t i = 0; i < ms->n; i++) ms->nring += ms->m[i].ntokens;
    ms->ring = calloc(ms->nring ? ms->nring : 1, sizeof *ms->ring);
    if (!ms->ring) { ms->nring = 0; return; }
    size_t k = 0;
    for (size_t i = 0; i < ms->n; i++)
        for (size_t j = 0; j < ms->m[i].ntokens; j++) ms->ring[k++] = ms->m[i].tokens[j];
    qsort(ms->ring, ms->nring, sizeof *ms->ring, cmp_tok);
    for (size_t i = 0; i < ms->n; i++)
        ms->m[i].owns = 100.0 * admin_ring_owns(ms->ring, ms->nring, ms->m[i].tokens, ms->m[i].ntokens);
}

static void members_free(amembers *ms)
{
    for (size_t i = 0; i < ms->n; i++) free(ms->m[i].tokens);
    free(ms->m);
    free(ms->ring);
}

static json_t *member_json(const amember *m)
{
    json_t *o = json_object();
    char st[2] = {m->state, 0};
    json_object_set_new(o, "address", json_string(m->addr));
    json_object_set_new(o, "status", json_string(m->up ? "U" : "D"));
    json_object_set_new(o, "state", json_string(st));
    json_object_set_new(o, "load_bytes", m->load < 0 ? json_null() : json_integer((json_int_t)m->load));
    json_object_set_new(o, "tokens", json_integer((json_int_t)m->ntokens));
    json_object_set_new(o, "owns", json_real(m->owns));
    json_object_set_new(o, "host_id", json_string(m->host_id));
    json_object_set_new(o, "dc", json_string(m->dc));
    json_object_set_new(o, "rack", json_string(m->rack));
    return o;
}

/* ---- /status, /info, /ring ---- */

static json_t *h_status(route_req *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "cluster_name", json_string(r->s->node.cluster_name));
    json_t *nodes = json_array();
    amembers ms;
    members_collect(r->s, &ms);
    for (size_t i = 0; i < ms.n; i++) json_array_append_new(nodes, member_json(&ms.m[i]));
    members_free(&ms);
    json_object_set_new(o, "nodes", nodes);
    return o;
}

static json_t *client_limits_json(admin_server *s)
{
    admin_client_limits l = {0};
    s->hooks.client_limits(s->hooks.ctx, &l);
    json_t *o = json_object();
    json_object_set_new(o, "fd_limit", json_integer((json_int_t)l.fd_limit));
    json_object_set_new(o, "fd_reserved", json_integer((json_int_t)l.fd_reserved));
    json_object_set_new(o, "connections", json_integer((json_int_t)l.connections));
    json_object_set_new(o, "connection_limit", json_integer((json_int_t)l.connection_limit));
    json_object_set_new(o, "connections_refused", json_integer((json_int_t)l.refused));
    json_object_set_new(o, "connections_timed_out", json_integer((json_int_t)l.timed_out));
    json_object_set_new(o, "accept_backoffs", json_integer((json_int_t)l.accept_backoffs));
    json_object_set_new(o, "overloaded_answers", json_integer((json_int_t)l.overloaded));
    json_object_set_new(o, "bytes_in_flight", json_integer((json_int_t)l.bytes_in_flight));
    json_object_set_new(o, "bytes_in_flight_limit", json_integer((json_int_t)l.bytes_in_flight_limit));
    json_object_set_new(o, "backpressure", json_boolean(l.backpressure));
    json_object_set_new(o, "prepared_statements", json_integer((json_int_t)l.prepared));
    json_object_set_new(o, "prepared_statements_bytes", json_integer((json_int_t)l.prepared_bytes));
    json_object_set_new(o, "prepared_statements_cache_size", json_integer((json_int_t)l.prepared_bytes_limit));
    return o;
}

static json_t *h_info(route_req *r)
{
    admin_server *s = r->s;
    storage_stats ss;
    storage_get_stats(s->st, &ss);
    struct mallinfo2 mi = mallinfo2(); /* counters only: no system call */
    json_t *o = json_object();
    json_object_set_new(o, "id", host_id_json(s->node.host_id));
    json_object_set_new(o, "gossip_active", json_true());
    json_object_set_new(o, "native_transport_active", json_true());
    json_object_set_new(o, "load_bytes", json_integer((json_int_t)(ss.memtable_bytes + ss.sstable_bytes)));
    json_object_set_new(o, "sstables", json_integer((json_int_t)ss.sstables));
    json_object_set_new(o, "sstable_bytes", json_integer((json_int_t)ss.sstable_bytes));
    json_object_set_new(o, "flushes_pending", json_integer((json_int_t)ss.flushes_pending));
    json_object_set_new(o, "generation", json_integer(s->node.generation));
    json_object_set_new(o, "uptime_seconds", json_integer((sib_now_us() - s->start_us) / 1000000));
    json_object_set_new(o, "heap_used_bytes", json_integer((json_int_t)(mi.uordblks + mi.hblkhd)));
    json_object_set_new(o, "heap_total_bytes", json_integer((json_int_t)(mi.arena + mi.hblkhd)));
    json_object_set_new(o, "memtable_bytes", json_integer((json_int_t)ss.memtable_bytes));
    json_object_set_new(o, "dc", json_string(s->node.dc));
    json_object_set_new(o, "rack", json_string(s->node.rack));
    json_object_set_new(o, "cluster_name", json_string(s->node.cluster_name));
    json_object_set_new(o, "release_version", json_string(SIB_RELEASE_VERSION));
    json_object_set_new(o, "native_address", json_string(s->node.rpc_address));
    json_object_set_new(o, "native_port", json_integer(s->node.native_port));
    json_object_set_new(o, "errors", json_integer(s->metrics ? (json_int_t)admin_metrics_errors(s->metrics) : 0));
    json_t *cl = json_object();
    json_object_set_new(cl, "bytes_written", json_integer((json_int_t)ss.cl_bytes_written));
    json_object_set_new(cl, "entries", json_integer((json_int_t)ss.cl_entries));
    json_object_set_new(cl, "segments", json_integer((json_int_t)ss.cl_segments_live));
    json_object_set_new(cl, "segments_created", json_integer((json_int_t)ss.cl_segments_created));
    json_object_set_new(cl, "syncs", json_integer((json_int_t)ss.cl_syncs));
    json_object_set_new(cl, "pending", json_integer((json_int_t)ss.cl_pending));
    json_object_set_new(o, "commitlog", cl);
    if (s->hooks.client_limits) json_object_set_new(o, "client_limits", client_limits_json(s));
    json_t *toks = json_array();
    for (size_t i = 0; i < s->node.ntokens; i++) json_array_append_new(toks, json_integer(s->tokens[i]));
    json_object_set_new(o, "tokens", toks);
    return o;
}

typedef struct ring_row {
    int64_t token;
    const amember *m;
} ring_row;

static int cmp_ring_row(const void *a, const void *b) { return cmp_tok(&((const ring_row *)a)->token, &((const ring_row *)b)->token); }

static json_t *h_ring(route_req *r)
{
    amembers ms;
    members_collect(r->s, &ms);
    ring_row *rows = calloc(ms.nring ? ms.nring : 1, sizeof *rows);
    size_t n = 0;
    for (size_t i = 0; rows && i < ms.n; i++)
        for (size_t j = 0; j < ms.m[i].ntokens; j++) rows[n++] = (ring_row){ms.m[i].tokens[j], &ms.m[i]};
    qsort(rows, n, sizeof *rows, cmp_ring_row);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const amember *m = rows[i].m;
        json_t *e = json_object();
        json_object_set_new(e, "token", json_integer(rows[i].token));
        json_object_set_new(e, "endpoint", json_string(m->addr));
        json_object_set_new(e, "dc", json_string(m->dc));
        json_object_set_new(e, "rack", json_string(m->rack));
        json_object_set_new(e, "status", json_string(m->up ? "Up" : "Down"));
        json_object_set_new(e, "state", json_string(m->state == 'N' ? "Normal" : m->state == 'L' ? "Leaving"
                                                  : m->state == 'J' ? "Joining" : "Unknown"));
        json_object_set_new(e, "load_bytes", m->load < 0 ? json_null() : json_integer((json_int_t)m->load));
        json_object_set_new(e, "owns", json_real(m->owns));
        json_array_append_new(arr, e);
    }
    free(rows);
    members_free(&ms);
    json_t *o = json_object();
    json_object_set_new(o, "ring", arr);
    return o;
}

/* ---- keyspace replication, /describering, /endpoints ---- */

static int keyspace_repl(admin_server *s, const char *ks, coord_repl *out, sib_err *err)
{
    const sch_keyspace *k = sch_catalog_keyspace(s->cat, ks);
    if (!k) return sib_err_set(err, SIB_ENOTFOUND, "keyspace %s does not exist", ks);
    const sch_strmap *m = sch_keyspace_replication(k);
    const char *keys[COORD_MAX_DCS + 2], *vals[COORD_MAX_DCS + 2];
    size_t n = 0;
    for (; n < m->n && n < SIB_ARRAY_LEN(keys); n++) {
        keys[n] = m->kv[n].key;
        vals[n] = m->kv[n].value;
    }
    return coord_repl_parse(keys, vals, n, out, NULL, err);
}

static json_t *replicas_json(admin_server *s, const coord_repl *repl, int64_t token, json_t *details)
{
    size_t idx[MAX_REPLICAS];
    size_t n = coord_replicas(s->co, repl, token, idx, MAX_REPLICAS);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_string(member_addr(s, idx[i])));
        if (!details) continue;
        json_t *d = json_object();
        json_object_set_new(d, "host", json_string(member_addr(s, idx[i])));
        json_object_set_new(d, "datacenter", json_string(coord_member_dc(s->co, idx[i])));
        json_object_set_new(d, "rack", json_string(coord_member_rack(s->co, idx[i])));
        json_array_append_new(details, d);
    }
    return arr;
}

/* Every range of the whole ring (all members' tokens): range i is
 * (token i-1, token i], the first wrapping from the last. */
static json_t *h_describering(route_req *r)
{
    admin_server *s = r->s;
    if (r->nseg != 1) return fail(r, 400, "usage: /describering/<keyspace>");
    coord_repl repl;
    if (keyspace_repl(s, r->seg[0], &repl, &r->err)) return fail_err(r, r->err.code == SIB_ENOTFOUND ? 404 : 400);
    json_t *ranges = json_array();
    size_t n = coord_ring_size(s->co);
    for (size_t i = 0; i < n; i++) {
        int64_t start = coord_ring_token(s->co, (i + n - 1) % n), end = coord_ring_token(s->co, i);
        json_t *e = json_object();
        json_object_set_new(e, "start_token", json_integer(start));
        json_object_set_new(e, "end_token", json_integer(end));
        json_t *details = json_array();
        json_t *eps = replicas_json(s, &repl, end, details);
        json_object_set_new(e, "rpc_endpoints", json_deep_copy(eps));
        json_object_set_new(e, "endpoints", eps);
        json_object_set_new(e, "endpoint_details", details);
        json_array_append_new(ranges, e);
    }
    json_t *o = json_object();
    json_object_set_new(o, "keyspace", json_string(r->seg[0]));
    json_object_set_new(o, "schema_version", schema_version_json(s));
    json_object_set_new(o, "ranges", ranges);
    return o;
}

/* nodetool getendpoints converts the key with the column type's fromString;
 * the closest here is the CQL literal parser, tried with each literal kind
 * in turn (text, number, uuid, hex, ...) so `42`, `abc` and a uuid all work
 * without quoting. */
static int component_value(const sch_column *col, const char *text, size_t len, sib_buf *out, sib_err *err)
{
    static const sch_lit_kind kinds[] = {SCH_LIT_STRING, SCH_LIT_INTEGER, SCH_LIT_FLOAT, SCH_LIT_BOOLEAN,
                                         SCH_LIT_UUID, SCH_LIT_HEX, SCH_LIT_DURATION};
    sib_err first = {0};
    for (size_t i = 0; i < SIB_ARRAY_LEN(kinds); i++) {
        size_t mark = out->len;
        sib_err e = {0};
        if (!sch_value_from_literal(col->type, kinds[i], text, len, col->name, out, &e)) return 0;
        out->len = mark;
        /* Keep the message of a kind the type accepts ("Unable to make int
         * from 'x'") rather than "Invalid STRING constant". */
        if (!first.code || strstr(first.msg, "Invalid ")) first = e;
    }
    *err = first;
    return err->code ? err->code : SIB_EINVAL;
}

int admin_parse_key(sch_catalog *cat, const char *ks, const char *table, const char *key, sib_buf *out, sib_err *err)
{
    if (!sch_catalog_keyspace(cat, ks)) return sib_err_set(err, SIB_ENOTFOUND, "keyspace %s does not exist", ks);
    const sch_table *t = sch_catalog_table(cat, ks, table);
    if (!t) return sib_err_set(err, SIB_ENOTFOUND, "table %s.%s does not exist", ks, table);
    size_t npk = sch_table_pk_count(t);
    if (npk > 16) return sib_err_set(err, SIB_EINVAL, "partition key has too many columns");
    sib_buf comp[16];
    const uint8_t *vals[16];
    size_t lens[16];
    int rc = 0;
    size_t done = 0;
    const char *p = key;
    for (; done < npk && !rc; done++) {
        /* The last column takes the rest, so a text key may contain ':'. */
        const char *colon = done + 1 < npk ? strchr(p, ':') : NULL;
        if (done + 1 < npk && !colon) {
            rc = sib_err_set(err, SIB_EINVAL, "key '%s' has fewer than the %zu components of the partition key", key,
                             npk);
            break;
        }
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        sib_buf_init(&comp[done]);
        rc = component_value(sch_table_pk(t, done), p, len, &comp[done], err);
        vals[done] = comp[done].p ? comp[done].p : (const uint8_t *)"";
        lens[done] = comp[done].len;
        p = colon ? colon + 1 : p + len;
    }
    if (!rc) rc = sch_pk_encode(t, vals, lens, npk, out, err);
    for (size_t i = 0; i < done; i++) sib_buf_free(&comp[i]);
    return rc;
}

static json_t *h_endpoints(route_req *r)
{
    admin_server *s = r->s;
    if (r->nseg != 3) return fail(r, 400, "usage: /endpoints/<keyspace>/<table>/<key>");
    coord_repl repl;
    if (keyspace_repl(s, r->seg[0], &repl, &r->err)) return fail_err(r, r->err.code == SIB_ENOTFOUND ? 404 : 400);
    sib_buf pk;
    sib_buf_init(&pk);
    if (admin_parse_key(s->cat, r->seg[0], r->seg[1], r->seg[2], &pk, &r->err)) {
        sib_buf_free(&pk);
        return fail_err(r, r->err.code == SIB_ENOTFOUND ? 404 : 400);
    }
    int64_t token = sib_murmur3_token(pk.p ? pk.p : (const uint8_t *)"", pk.len);
    sib_buf_free(&pk);
    json_t *o = json_object();
    json_object_set_new(o, "keyspace", json_string(r->seg[0]));
    json_object_set_new(o, "table", json_string(r->seg[1]));
    json_object_set_new(o, "key", json_string(r->seg[2]));
    json_object_set_new(o, "token", json_integer(token));
    json_object_set_new(o, "endpoints", replicas_json(s, &repl, token, NULL));
    return o;
}

/* ---- /flush, /compact, /compactionstats ---- */

static json_t *run_hook(route_req *r, int (*fn)(void *, const char *, const char *, sib_err *), const char *what)
{
    if (strcmp(r->method, "POST")) return fail(r, 405, "use POST");
    if (r->nseg > 2) return fail(r, 400, "usage: POST /<op>[/<keyspace>[/<table>]]");
    const char *ks = r->nseg > 0 ? r->seg[0] : NULL, *table = r->nseg > 1 ? r->seg[1] : NULL;
    if (ks && !sch_catalog_keyspace(r->s->cat, ks)) {
        sib_err_set(&r->err, SIB_ENOTFOUND, "keyspace %s does not exist", ks);
        return fail_err(r, 404);
    }
    if (table && !sch_catalog_table(r->s->cat, ks, table)) {
        sib_err_set(&r->err, SIB_ENOTFOUND, "table %s.%s does not exist", ks, table);
        return fail_err(r, 404);
    }
    if (!fn) {
        /* Documented behaviour (admin.h): an operation the node wires no
         * hook for (compaction, until storage compacts) answers 501. */
        sib_err_set(&r->err, SIB_ESERVER, "%s is not supported by this node yet", what);
        return fail_err(r, 501);
    }
    if (fn(r->s->hooks.ctx, ks, table, &r->err)) return fail_err(r, 500);
    json_t *o = json_object();
    json_object_set_new(o, "result", json_string("ok"));
    return o;
}

/* nodetool removenode: a dead member leaves the ring (the node's hook
 * gossips the removal; nothing is streamed). */
static json_t *h_removenode(route_req *r)
{
    if (strcmp(r->method, "POST")) return fail(r, 405, "use POST");
    if (r->nseg != 1) return fail(r, 400, "usage: POST /removenode/<host id>");
    if (!r->s->hooks.removenode) return fail(r, 501, "removenode is not supported by this node yet");
    int rc = r->s->hooks.removenode(r->s->hooks.ctx, r->seg[0], &r->err);
    if (rc) return fail_err(r, rc == SIB_ENOTFOUND ? 404 : rc == SIB_EINVAL ? 400 : 500);
    json_t *o = json_object();
    json_object_set_new(o, "result", json_string("ok"));
    return o;
}

static json_t *h_flush(route_req *r) { return run_hook(r, r->s->hooks.flush, "flush"); }
static json_t *h_compact(route_req *r) { return run_hook(r, r->s->hooks.compact, "compaction"); }

/* Running and queued compactions with their progress (nodetool
 * compactionstats). The id is the table's id: one task per table runs at a
 * time. */
static json_t *h_compactionstats(route_req *r)
{
    admin_server *s = r->s;
    st_compaction_info info[64];
    size_t n = storage_compaction_progress(s->st, info, SIB_ARRAY_LEN(info));
    json_t *o = json_object(), *arr = json_array();
    json_object_set_new(o, "pending_tasks", json_integer((json_int_t)n));
    for (size_t i = 0; i < n && i < SIB_ARRAY_LEN(info); i++) {
        const sch_table *t = sch_catalog_table_by_id(s->cat, info[i].table_id);
        char id[37];
        sib_uuid_format(info[i].table_id, id);
        json_t *c = json_object();
        json_object_set_new(c, "id", json_string(id));
        json_object_set_new(c, "type", json_string(info[i].major ? "Compaction (major)"
                                                   : info[i].tombstone ? "Tombstone compaction" : "Compaction"));
        json_object_set_new(c, "keyspace", json_string(t ? sch_table_keyspace(t) : "?"));
        json_object_set_new(c, "table", json_string(t ? sch_table_name(t) : "?"));
        json_object_set_new(c, "completed", json_integer((json_int_t)info[i].bytes_done));
        json_object_set_new(c, "total", json_integer((json_int_t)info[i].bytes_total));
        json_object_set_new(c, "unit", json_string("bytes"));
        json_array_append_new(arr, c);
    }
    json_object_set_new(o, "compactions", arr);
    return o;
}

/* ---- /expiredblockers ---- */

static json_t *brief_json(const st_sst_brief *b)
{
    json_t *o = json_object();
    json_object_set_new(o, "sstable", b->data_path ? json_string(b->data_path) : json_string("memtable"));
    json_object_set_new(o, "min_ts", json_integer((json_int_t)b->min_ts));
    json_object_set_new(o, "max_ts", json_integer((json_int_t)b->max_ts));
    json_object_set_new(o, "max_ldt", json_integer((json_int_t)b->max_ldt));
    json_object_set_new(o, "disk_size", json_integer((json_int_t)b->disk_bytes));
    return o;
}

/* Cassandra's sstableexpiredblockers, on the live set: each SSTable (or
 * the memtables) keeping expired SSTables from being dropped whole, with
 * them. sstable_count lets the tool say "No sstables for ..." as Cassandra's. */
static json_t *h_expiredblockers(route_req *r)
{
    admin_server *s = r->s;
    if (r->nseg != 2) return fail(r, 400, "usage: /expiredblockers/<keyspace>/<table>");
    const sch_table *t = sch_catalog_table(s->cat, r->seg[0], r->seg[1]);
    if (!t) {
        sib_err_set(&r->err, SIB_ENOTFOUND, "Unknown table: %s.%s", r->seg[0], r->seg[1]);
        return fail_err(r, 404);
    }
    st_table *stt = storage_table_find(s->st, sch_table_id(t));
    st_expiry_blocker *b = NULL;
    size_t n = 0;
    if (stt && st_table_expired_blockers(stt, time(NULL), &b, &n, &r->err)) return fail_err(r, 500);
    st_table_stats ts = {0};
    if (stt) st_table_get_stats(stt, &ts);
    json_t *o = json_object(), *arr = json_array();
    json_object_set_new(o, "sstable_count", json_integer((json_int_t)ts.sstables));
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_object(), *blocked = json_array();
        json_object_set_new(x, "blocker", brief_json(&b[i].blocker));
        for (size_t k = 0; k < b[i].nblocked; k++) json_array_append_new(blocked, brief_json(&b[i].blocked[k]));
        json_object_set_new(x, "blocks", blocked);
        json_array_append_new(arr, x);
    }
    json_object_set_new(o, "blockers", arr);
    st_expiry_blockers_free(b, n);
    return o;
}

/* ---- /tablestats ---- */

/* A bucket's upper bound as JSON; the open last bucket reads as "more than
 * the bound before it". */
static json_int_t spr_bound(size_t b)
{
    return st_spr_bound(b) == UINT32_MAX ? (json_int_t)st_spr_bound(b - 1) + 1 : (json_int_t)st_spr_bound(b);
}

/* SSTables per partition read: mean, and the bucket bounds holding the
 * 99th percentile and the maximum. */
static void spr_json(json_t *o, const st_table_stats *ts)
{
    uint64_t reads = 0, cum = 0;
    size_t p99 = 0, max = 0;
    for (size_t b = 0; b < ST_SPR_BUCKETS; b++) reads += ts->spr[b];
    for (size_t b = 0; b < ST_SPR_BUCKETS; b++) {
        if (!ts->spr[b]) continue;
        if ((double)cum < 0.99 * (double)reads) p99 = b;
        cum += ts->spr[b];
        max = b;
    }
    json_object_set_new(o, "sstables_per_read_mean", json_real(reads ? (double)ts->spr_sum / (double)reads : 0.0));
    json_object_set_new(o, "sstables_per_read_p99", json_integer(spr_bound(p99)));
    json_object_set_new(o, "sstables_per_read_max", json_integer(spr_bound(max)));
}

static json_t *table_json(admin_server *s, const sch_table *t)
{
    st_table_stats ts = {0};
    st_table *stt = storage_table_find(s->st, sch_table_id(t));
    if (stt) st_table_get_stats(stt, &ts);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(sch_table_name(t)));
    json_object_set_new(o, "sstable_count", json_integer((json_int_t)ts.sstables));
    json_object_set_new(o, "space_used_live", json_integer((json_int_t)ts.sstable_bytes));
    json_object_set_new(o, "space_used_total", json_integer((json_int_t)ts.sstable_bytes));
    json_object_set_new(o, "flushes", json_integer((json_int_t)ts.flushes));
    json_object_set_new(o, "flush_bytes", json_integer((json_int_t)ts.flush_bytes));
    json_object_set_new(o, "compactions", json_integer((json_int_t)ts.compactions));
    json_object_set_new(o, "compaction_bytes_read", json_integer((json_int_t)ts.compaction_bytes_read));
    json_object_set_new(o, "compaction_bytes_written", json_integer((json_int_t)ts.compaction_bytes_written));
    json_object_set_new(o, "tombstones_purged", json_integer((json_int_t)ts.tombstones_purged));
    json_object_set_new(o, "sstables_damaged", json_integer((json_int_t)ts.sstables_damaged));
    json_object_set_new(o, "sstables_suspect", json_integer((json_int_t)ts.sstables_suspect));
    spr_json(o, &ts);
    if (ts.leveled) {
        json_t *lv = json_array();
        for (size_t l = 0; l < ST_MAX_LEVELS; l++) json_array_append_new(lv, json_integer((json_int_t)ts.levels[l]));
        json_object_set_new(o, "sstables_in_each_level", lv);
        json_object_set_new(o, "fanout_size", json_integer((json_int_t)ts.fanout));
    }
    if (ts.unified) { /* density levels of UnifiedCompactionStrategy */
        json_t *lv = json_array(), *ov = json_array();
        for (size_t l = 0; l < ST_MAX_LEVELS; l++) {
            json_array_append_new(lv, json_integer((json_int_t)ts.levels[l]));
            json_array_append_new(ov, json_integer((json_int_t)ts.max_overlap[l]));
        }
        json_object_set_new(o, "sstables_in_each_level", lv);
        json_object_set_new(o, "max_overlap_in_each_level", ov);
    }
    json_object_set_new(o, "number_of_partitions", json_integer((json_int_t)ts.partitions));
    json_object_set_new(o, "memtable_cell_count", json_integer((json_int_t)ts.cells));
    json_object_set_new(o, "memtable_row_count", json_integer((json_int_t)ts.rows));
    json_object_set_new(o, "memtable_data_size", json_integer((json_int_t)ts.memtable_bytes));
    json_object_set_new(o, "memtable_switch_count", json_integer((json_int_t)ts.flushes));
    json_object_set_new(o, "bloom_filter_false_positives", json_integer(0));
    json_object_set_new(o, "droppable_tombstone_ratio", json_real(0.0));
    admin_table_ops ops;
    admin_metrics_table_ops(s->metrics, sch_table_id(t), &ops);
    json_object_set_new(o, "local_read_count", json_integer((json_int_t)ops.reads));
    json_object_set_new(o, "local_write_count", json_integer((json_int_t)ops.writes));
    json_object_set_new(o, "local_read_latency_ms", json_real(ops.reads ? ops.read_latency.sum_us / 1000.0 / (double)ops.reads : 0.0));
    json_object_set_new(o, "local_write_latency_ms", json_real(ops.writes ? ops.write_latency.sum_us / 1000.0 / (double)ops.writes : 0.0));
    json_object_set_new(o, "local_read_p50_ms", json_real((double)admin_hist_quantile(&ops.read_latency, 0.5) / 1000.0));
    json_object_set_new(o, "local_read_p99_ms", json_real((double)admin_hist_quantile(&ops.read_latency, 0.99) / 1000.0));
    json_object_set_new(o, "local_write_p50_ms", json_real((double)admin_hist_quantile(&ops.write_latency, 0.5) / 1000.0));
    json_object_set_new(o, "local_write_p99_ms", json_real((double)admin_hist_quantile(&ops.write_latency, 0.99) / 1000.0));
    return o;
}

static json_t *keyspace_json(admin_server *s, const sch_keyspace *k, const char *only_table)
{
    json_t *tables = json_array();
    for (size_t i = 0; i < sch_keyspace_table_count(k); i++) {
        const sch_table *t = sch_keyspace_table_at(k, i);
        if (only_table && strcmp(sch_table_name(t), only_table)) continue;
        json_array_append_new(tables, table_json(s, t));
    }
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(sch_keyspace_name(k)));
    json_object_set_new(o, "tables", tables);
    return o;
}

static json_t *h_tablestats(route_req *r)
{
    admin_server *s = r->s;
    if (r->nseg > 2) return fail(r, 400, "usage: /tablestats[/<keyspace>[/<table>]]");
    const char *ks = r->nseg > 0 ? r->seg[0] : NULL, *table = r->nseg > 1 ? r->seg[1] : NULL;
    json_t *arr = json_array();
    if (ks) {
        const sch_keyspace *k = sch_catalog_keyspace(s->cat, ks);
        if (!k) { json_decref(arr); sib_err_set(&r->err, SIB_ENOTFOUND, "Unknown keyspace: %s", ks); return fail_err(r, 404); }
        if (table && !sch_catalog_table(s->cat, ks, table)) {
            json_decref(arr);
            sib_err_set(&r->err, SIB_ENOTFOUND, "Unknown table: %s.%s", ks, table);
            return fail_err(r, 404);
        }
        json_array_append_new(arr, keyspace_json(s, k, table));
    } else {
        for (size_t i = 0; i < sch_catalog_keyspace_count(s->cat); i++)
            json_array_append_new(arr, keyspace_json(s, sch_catalog_keyspace_at(s->cat, i), NULL));
    }
    json_t *o = json_object();
    json_object_set_new(o, "keyspaces", arr);
    return o;
}

/* ---- /gossipinfo ---- */

static json_t *h_gossipinfo_local(admin_server *s)
{
    char buf[128];
    json_t *st = json_object();
    snprintf(buf, sizeof buf, "NORMAL,%" PRId64, s->node.ntokens ? s->tokens[0] : 0);
    json_object_set_new(st, "STATUS", json_string(buf));
    snprintf(buf, sizeof buf, "%" PRIu64, load_bytes(s));
    json_object_set_new(st, "LOAD", json_string(buf));
    json_object_set_new(st, "SCHEMA", schema_version_json(s));
    json_object_set_new(st, "DC", json_string(s->node.dc));
    json_object_set_new(st, "RACK", json_string(s->node.rack));
    json_object_set_new(st, "RELEASE_VERSION", json_string(SIB_RELEASE_VERSION));
    json_object_set_new(st, "RPC_ADDRESS", json_string(s->node.rpc_address));
    snprintf(buf, sizeof buf, "%s:%d", s->node.rpc_address, s->node.native_port);
    json_object_set_new(st, "NATIVE_ADDRESS_AND_PORT", json_string(buf));
    json_object_set_new(st, "NET_VERSION", json_string("12"));
    json_object_set_new(st, "HOST_ID", host_id_json(s->node.host_id));
    json_object_set_new(st, "RPC_READY", json_string("true"));
    json_object_set_new(st, "TOKENS", json_string("<hidden>"));
    json_t *ep = json_object();
    json_object_set_new(ep, "endpoint", json_string(s->node.listen_address));
    json_object_set_new(ep, "generation", json_integer(s->node.generation));
    json_object_set_new(ep, "heartbeat", json_integer((sib_now_us() - s->start_us) / 1000000));
    json_object_set_new(ep, "states", st);
    return ep;
}

/* nodetool gossipinfo: every endpoint's heartbeat and values (TOKENS shown
 * as <hidden>, as nodetool does), with the local view of its liveness. */
static json_t *h_gossipinfo(route_req *r)
{
    admin_server *s = r->s;
    json_t *arr = json_array();
    if (!s->gsp) json_array_append_new(arr, h_gossipinfo_local(s));
    gsp_endpoint_view v;
    for (size_t i = 0; s->gsp && gsp_endpoint_at(s->gsp, i, &v); i++) {
        json_t *st = json_object();
        for (int k = 0; k < GSP_NSTATES; k++) {
            if (!v.states[k] || !gsp_key_name(k)) continue;
            json_object_set_new(st, gsp_key_name(k), json_string(k == GSP_TOKENS ? "<hidden>" : v.states[k]));
        }
        json_t *ep = json_object();
        json_object_set_new(ep, "endpoint", json_string(v.addr));
        json_object_set_new(ep, "port", json_integer(v.port));
        json_object_set_new(ep, "generation", json_integer(v.generation));
        json_object_set_new(ep, "heartbeat", json_integer(v.heartbeat));
        json_object_set_new(ep, "alive", json_boolean(v.alive));
        if (!v.is_self) json_object_set_new(ep, "phi", json_real(v.phi));
        json_object_set_new(ep, "states", st);
        json_array_append_new(arr, ep);
    }
    json_t *o = json_object();
    json_object_set_new(o, "endpoints", arr);
    return o;
}

/* ---- /describecluster ---- */

/* Adds addr to the list of `version` in o (created on first use). */
static void version_add(json_t *o, const char *version, const char *addr)
{
    json_t *arr = json_object_get(o, version);
    if (!arr) {
        arr = json_array();
        json_object_set_new(o, version, arr);
    }
    json_array_append_new(arr, json_string(addr));
}

/* nodetool describecluster: the cluster's name, snitch and partitioner, and
 * the schema versions with the endpoints on each: this node's own version,
 * each live peer's as gossip last brought it, and the peers the failure
 * detector holds down under "UNREACHABLE" (their version is not current). */
static json_t *h_describecluster(route_req *r)
{
    admin_server *s = r->s;
    json_t *versions = json_object();
    char own[37];
    uint8_t v16[16];
    sch_catalog_schema_version(s->cat, v16);
    sib_uuid_format(v16, own);
    version_add(versions, own, s->node.listen_address);
    gsp_endpoint_view v;
    for (size_t i = 1; s->gsp && gsp_endpoint_at(s->gsp, i, &v); i++) {
        const char *peer_version = v.states[GSP_SCHEMA];
        version_add(versions, v.alive && peer_version ? peer_version : "UNREACHABLE", v.addr);
    }
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(s->node.cluster_name));
    json_object_set_new(o, "snitch", json_string("org.apache.cassandra.locator.SimpleSnitch"));
    json_object_set_new(o, "partitioner", json_string("org.apache.cassandra.dht.Murmur3Partitioner"));
    json_object_set_new(o, "schema_versions", versions);
    return o;
}

/* ---- /metrics ---- */

static void metrics_text(admin_server *s, sib_buf *out)
{
    storage_stats ss;
    storage_get_stats(s->st, &ss);
    st_read_stats rs;
    storage_read_stats(s->st, &rs);
    admin_gauges g = {
        .clients = s->hooks.client_count ? s->hooks.client_count(s->hooks.ctx) : 0,
        .memtable_bytes = ss.memtable_bytes,
        .sstables = ss.sstables, .sstable_bytes = ss.sstable_bytes, .flushes_pending = ss.flushes_pending,
        .cl_bytes_written = ss.cl_bytes_written, .cl_segments_live = ss.cl_segments_live,
        .cl_syncs = ss.cl_syncs, .cl_pending = ss.cl_pending,
        .reads_inline = rs.inline_reads, .reads_pool = rs.pool_reads, .reads_queued = rs.queued,
        .reads_running = rs.running,
        .uptime_s = (sib_now_us() - s->start_us) / 1000000,
    };
    if (s->co) {
        coord_read_stats crs;
        coord_read_stats_get(s->co, &crs);
        g.read_rounds = crs.rounds;
        g.reads_coalesced = crs.coalesced;
        g.read_repair_writes = crs.repair_writes;
        coord_batchlog_stats bs;
        coord_batchlog_stats_get(s->co, &bs);
        g.bl_writes = bs.writes;
        g.bl_stored = bs.stored;
        g.bl_removed = bs.removed;
        g.bl_replayed = bs.replayed;
        g.bl_replay_failures = bs.replay_failures;
        g.bl_entries = bs.entries;
    }
    uint8_t v[16];
    sch_catalog_schema_version(s->cat, v);
    sib_uuid_format(v, g.schema_version);
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < sch_catalog_keyspace_count(s->cat); i++)
        cap += sch_keyspace_table_count(sch_catalog_keyspace_at(s->cat, i));
    admin_table_gauge *tg = calloc(cap ? cap : 1, sizeof *tg);
    for (size_t i = 0; tg && i < sch_catalog_keyspace_count(s->cat); i++) {
        const sch_keyspace *k = sch_catalog_keyspace_at(s->cat, i);
        for (size_t j = 0; j < sch_keyspace_table_count(k); j++) {
            const sch_table *t = sch_keyspace_table_at(k, j);
            st_table *stt = storage_table_find(s->st, sch_table_id(t));
            admin_table_gauge *e = &tg[n++];
            e->ks = sch_keyspace_name(k);
            e->table = sch_table_name(t);
            admin_table_ops ops;
            admin_metrics_table_ops(s->metrics, sch_table_id(t), &ops);
            e->reads = ops.reads;
            e->writes = ops.writes;
            if (!stt) continue;
            st_table_stats ts;
            st_table_get_stats(stt, &ts);
            e->partitions = ts.partitions;
            e->rows = ts.rows;
            e->cells = ts.cells;
            e->memtable_bytes = ts.memtable_bytes;
            e->sstables = ts.sstables;
            e->sstable_bytes = ts.sstable_bytes;
            e->flush_bytes = ts.flush_bytes;
            e->compaction_bytes_read = ts.compaction_bytes_read;
            e->compaction_bytes_written = ts.compaction_bytes_written;
            e->compactions_running = ts.compactions_running;
            e->compactions = ts.compactions;
            e->sstables_damaged = ts.sstables_damaged;
            e->sstables_suspect = ts.sstables_suspect;
            _Static_assert(ADMIN_SPR_BUCKETS == ST_SPR_BUCKETS, "one histogram layout");
            for (size_t b = 0; b < ADMIN_SPR_BUCKETS; b++) {
                e->spr[b] = ts.spr[b];
                e->spr_le[b] = st_spr_bound(b);
            }
            e->spr_sum = ts.spr_sum;
        }

    }
    g.tables = tg;
    g.ntables = tg ? n : 0;
    admin_metrics_render(s->metrics, &g, out);
    free(tg);
}

/* ---- routing ---- */

typedef struct route {
    const char *name;
    const char *method; /* NULL: the handler checks */
    json_t *(*fn)(route_req *r);
    size_t max_segs;
} route;

static const route ROUTES[] = {
    {"status", "GET", h_status, 0},
    {"info", "GET", h_info, 0},
    {"ring", "GET", h_ring, 0},
    {"describering", "GET", h_describering, 1},
    {"endpoints", "GET", h_endpoints, 3},
    {"flush", NULL, h_flush, 2},
    {"compact", NULL, h_compact, 2},
    {"removenode", NULL, h_removenode, 1},
    {"compactionstats", "GET", h_compactionstats, 0},
    {"tablestats", "GET", h_tablestats, 2},
    {"expiredblockers", "GET", h_expiredblockers, 2},
    {"gossipinfo", "GET", h_gossipinfo, 0},
    {"describecluster", "GET", h_describecluster, 0},
};

static void json_error(sib_buf *body, const char *msg)
{
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(msg));
    char *txt = json_dumps(o, JSON_COMPACT);
    if (txt) sib_buf_printf(body, "%s\n", txt);
    free(txt);
    json_decref(o);
}

/* Splits "/name/a/b/rest..." in place: the last allowed segment takes the
 * rest of the path, so a partition key may contain '/'. */
static const route *split(char *path, route_req *r)
{
    while (*path == '/') path++;
    char *slash = strchr(path, '/');
    if (slash) *slash = 0;
    const route *rt = NULL;
    for (size_t i = 0; i < SIB_ARRAY_LEN(ROUTES); i++)
        if (!strcmp(ROUTES[i].name, path)) rt = &ROUTES[i];
    if (!rt) return NULL;
    char *p = slash ? slash + 1 : NULL;
    while (p && *p && r->nseg < MAX_SEGS) {
        r->seg[r->nseg++] = p;
        if (r->nseg == rt->max_segs) break;
        char *next = strchr(p, '/');
        if (next) *next++ = 0;
        p = next;
    }
    return rt;
}

static void admin_route(admin_server *s, const char *method, const char *url, int *status, sib_buf *body,
                 const char **ctype)
{
    *ctype = "application/json";
    if (!strcmp(url, "/metrics")) {
        *ctype = "text/plain; version=0.0.4; charset=utf-8";
        *status = strcmp(method, "GET") ? 405 : 200;
        if (*status == 200) metrics_text(s, body);
        else sib_buf_printf(body, "use GET\n");
        return;
    }
    route_req r = {.s = s, .method = method, .status = 200};
    char *path = strdup(url);
    if (!path) { *status = 500; json_error(body, "out of memory"); return; }
    const route *rt = split(path, &r);
    json_t *res = NULL;
    if (!rt) fail(&r, 404, "no such endpoint (try /status, /info, /ring, /tablestats, /metrics)");
    else if (rt->method && strcmp(rt->method, method)) fail(&r, 405, "method not allowed");
    else res = rt->fn(&r);
    free(path);
    *status = r.status;
    if (!res) {
        json_error(body, r.error ? r.error : "internal error");
        return;
    }
    char *txt = json_dumps(res, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(res);
    if (!txt) { *status = 500; json_error(body, "out of memory"); return; }
    sib_buf_printf(body, "%s\n", txt);
    free(txt);
}

/* ==== HTTP daemon ==== */

/* MHD calls this once the request line and headers are in (first call, no
 * body yet), once per body chunk, and a last time with no more body: only
 * then is the reply queued, as MHD requires for requests with a body. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    admin_server *s = cls;
    if (!*req_cls) {
        *req_cls = s; /* any non-NULL value: "headers seen" */
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    int status = 500;
    const char *ctype = "application/json";
    sib_buf body;
    sib_buf_init(&body);
    admin_req_headers h = {
        .host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
        .origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"),
        .sec_fetch_site = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-Fetch-Site"),
        .authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
    };
    admin_guard g = {.bind_addr = s->bind_addr, .token = s->token};
    const char *why = NULL;
    int refused = admin_check_request(&g, &h, &why);
    if (refused) {
        status = refused;
        json_error(&body, why);
        sib_log(s->log, SIB_DEBUG, "admin: %s %s refused (%d): %s", method, url, refused, why);
    } else {
        admin_route(s, method, url, &status, &body, &ctype);
    }
    if (body.oom) {
        sib_buf_free(&body);
        return MHD_NO; /* MHD closes the connection */
    }
    size_t len = 0;
    uint8_t *p = sib_buf_take(&body, &len);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, p, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(p);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (refused == 401) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    if (s->conns) admin_conns_answered(s->conns, conn);
    return ret;
}

static void rearm(admin_server *s)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;
    ev_timer_stop(s->loop, &s->timer);
    if (MHD_get_timeout(s->mhd, &ms) != MHD_YES) return; /* nothing timed */
    ev_timer_set(&s->timer, (double)ms / 1000.0, 0.0);
    ev_timer_start(s->loop, &s->timer);
}

static void drive(admin_server *s)
{
    MHD_run(s->mhd);
    rearm(s);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents) { drive(w->data); }
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents) { drive(w->data); }

/* MHD's own diagnostics (bind failures, broken connections) go to the node
 * log instead of stderr. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    admin_server *s = cls;
    if (!sib_log_enabled(s->log, SIB_WARN)) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    sib_logf(s->log, SIB_WARN, "admin: %s", msg);
}

static void on_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                           enum MHD_ConnectionNotificationCode code)
{
    admin_server *s = cls;
    admin_conns_notify(s->conns, conn, socket_ctx, (int)code);
}

static int copy_node(admin_server *s, const admin_node_info *n, sib_err *err)
{
    s->node = *n;
    s->tokens = malloc(sizeof(int64_t) * (n->ntokens ? n->ntokens : 1));
    if (!s->tokens) return sib_err_set(err, SIB_ENOMEM, "admin tokens");
    if (n->ntokens) memcpy(s->tokens, n->tokens, sizeof(int64_t) * n->ntokens);
    /* Insertion sort: a node has tens of tokens, and they arrive sorted. */
    for (size_t i = 1; i < n->ntokens; i++)
        for (size_t j = i; j > 0 && s->tokens[j - 1] > s->tokens[j]; j--) {
            int64_t t = s->tokens[j];
            s->tokens[j] = s->tokens[j - 1];
            s->tokens[j - 1] = t;
        }
    s->node.tokens = s->tokens;
    return 0;
}

static int start_daemon(admin_server *s, const char *addr, uint16_t port, sib_err *err)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        return sib_err_set(err, SIB_ECONFIG, "admin: admin_address %s is not an IPv4 address", addr);
    s->conns = admin_conns_create(s->loop, s->log, s->max_conns, s->conn_timeout);
    if (!s->conns) return sib_err_set(err, SIB_ENOMEM, "admin connections");
    /* No MHD thread: MHD_USE_EPOLL without MHD_USE_INTERNAL_POLLING_THREAD
     * is the external-select mode with an epoll fd we can watch. MHD's
     * default SO_REUSEADDR lets a restart bind at once; no SO_REUSEPORT
     * (MHD_OPTION_LISTENING_ADDRESS_REUSE), with which a second node given
     * the same admin address and port would start and the kernel would
     * spread admin requests over both nodes. */
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    /* The logger goes first so MHD routes every later message through it. */
    s->mhd = MHD_start_daemon(flags, port, NULL, NULL, on_request, s,
                              MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                              MHD_OPTION_NOTIFY_CONNECTION, on_conn_notify, s,
                              /* MHD's idle timeout backs up guard.c's deadline; its limit
                               * leaves room for connections guard.c shut but MHD has not
                               * reaped yet (the reserve counts it: node.c). */
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(s->conn_timeout + 0.999),
                              MHD_OPTION_CONNECTION_LIMIT, 2 * s->max_conns,
                              MHD_OPTION_END);
    if (!s->mhd) return sib_err_set(err, SIB_EIO, "admin: cannot serve HTTP on %s:%u (port in use?)", addr, port);
    const union MHD_DaemonInfo *ep = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *bp = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    if (!ep || ep->epoll_fd < 0) return sib_err_set(err, SIB_EIO, "admin: no epoll fd from libmicrohttpd");
    s->port = bp ? bp->port : port;
    ev_io_init(&s->io, on_io, ep->epoll_fd, EV_READ);
    s->io.data = s;
    ev_io_start(s->loop, &s->io);
    ev_init(&s->timer, on_timer);
    s->timer.data = s;
    rearm(s);
    return 0;
}

admin_server *admin_server_create(const admin_opts *o, sib_err *err)
{
    admin_server *s = calloc(1, sizeof *s);
    if (!s) { sib_err_set(err, SIB_ENOMEM, "admin server"); return NULL; }
    s->loop = o->loop;
    s->log = o->log;
    s->st = o->st;
    s->cat = o->cat;
    s->co = o->co;
    s->gsp = o->gsp;
    s->metrics = o->metrics;
    s->hooks = o->hooks;
    s->start_us = sib_now_us();
    s->max_conns = o->max_connections ? o->max_connections : 16;
    s->conn_timeout = o->connection_timeout > 0 ? o->connection_timeout : 10.0;
    const char *addr = o->bind_addr && *o->bind_addr ? o->bind_addr : "127.0.0.1";
    snprintf(s->bind_addr, sizeof s->bind_addr, "%s", addr);
    if (o->auth_token && *o->auth_token && !(s->token = strdup(o->auth_token))) {
        sib_err_set(err, SIB_ENOMEM, "admin token");
        admin_server_destroy(s);
        return NULL;
    }
    if (copy_node(s, o->node, err) || (o->loop && start_daemon(s, addr, o->port, err))) {
        admin_server_destroy(s);
        return NULL;
    }
    if (o->loop)
        sib_log(s->log, SIB_INFO, "admin: serving HTTP admin API and /metrics on %s:%u (%s, at most %u connections)",
                addr, s->port, s->token ? "token required" : "no token", s->max_conns);
    return s;
}

void admin_server_destroy(admin_server *s)
{
    if (!s) return;
    if (s->mhd) {
        ev_io_stop(s->loop, &s->io);
        ev_timer_stop(s->loop, &s->timer);
        MHD_stop_daemon(s->mhd);
    }
    admin_conns_destroy(s->conns);
    free(s->token);
    free(s->tokens);
    free(s);
}

uint16_t admin_server_port(const admin_server *s) { return s->port; }

int admin_server_handle(admin_server *s, const char *method, const char *url, int *status, sib_buf *body)
{
    const char *ctype;
    admin_route(s, method, url, status, body, &ctype);
    return body->oom ? SIB_ENOMEM : 0;
}
