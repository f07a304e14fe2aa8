/* exec_system.c: SELECT on system tables (system.local, system.peers*,
 * system_traces.sessions/events and the virtual system_schema tables).
 *
 * System tables are small, so their rows are materialised first (vrows, in
 * the request arena): system.local is built from the node info, peers and
 * peers_v2 from gossip (every other endpoint with tokens that is NORMAL or
 * shut down, as Cassandra keeps a stopped node in system.peers), system_traces rows come from the executor's ring of
 * kept trace sessions (exec_trace.c), system_schema rows come from the catalog. Each WHERE
 * relation becomes a filter on its column, and the rows then go through the
 * same pipeline as user tables (on_row, reply_rows in exec_select.c), paged
 * by row index (paging state kind 2).
 *
 * Kept apart from exec_select.c because none of it touches storage: it only
 * feeds rows to the shared run.
 */
#include "exec_select_int.h"

#include <arpa/inet.h>
#include <inttypes.h>

#include "gossip.h"

#define STORAGE_PORT(n) ((n)->storage_port ? (n)->storage_port : 7000)

typedef struct vrows {
    exec_ctx *c;
    sch_val **rows;
    size_t n, cap, ncols;
} vrows;

static int vrows_add(void *ctx, const sch_val *vals, size_t nvals)
{
    vrows *v = ctx;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        sch_val **rows = sib_arena_alloc(v->c->arena, sizeof(*rows) * cap);
        if (!rows) return SIB_ENOMEM;
        if (v->n) memcpy(rows, v->rows, sizeof(*rows) * v->n);
        v->rows = rows;
        v->cap = cap;
    }
    sch_val *row = sib_arena_alloc(v->c->arena, sizeof(*row) * (v->ncols ? v->ncols : 1));
    if (!row) return SIB_ENOMEM;
    for (size_t i = 0; i < v->ncols; i++) {
        row[i] = i < nvals ? vals[i] : val_null();
        if (row[i].len > 0 && !(row[i].p = sib_arena_memdup(v->c->arena, row[i].p, (size_t)row[i].len)))
            return SIB_ENOMEM;
    }
    v->rows[v->n++] = row;
    return 0;
}

static int set_text(vrows *v, sch_val *row, const sch_table *t, const char *col, const char *s)
{
    const sch_column *c = sch_table_column_by_name(t, col);
    if (c) row[c->index] = val_of(s, strlen(s));
    return 0;
}

static int set_bytes(vrows *v, sch_val *row, const sch_table *t, const char *col, const void *p, size_t n)
{
    const sch_column *c = sch_table_column_by_name(t, col);
    if (!c) return 0;
    void *q = sib_arena_memdup(v->c->arena, p, n ? n : 1);
    if (!q) return SIB_ENOMEM;
    row[c->index] = val_of(q, n);
    return 0;
}

static int set_int(vrows *v, sch_val *row, const sch_table *t, const char *col, int64_t x)
{
    uint8_t b[4];
    put_be32(b, (uint32_t)x);
    return set_bytes(v, row, t, col, b, 4);
}

static int set_inet(vrows *v, sch_val *row, const sch_table *t, const char *col, const char *addr)
{
    uint8_t a[16];
    if (inet_pton(AF_INET, addr, a) == 1) return set_bytes(v, row, t, col, a, 4);
    if (inet_pton(AF_INET6, addr, a) == 1) return set_bytes(v, row, t, col, a, 16);
    return 0;
}

/* A row of v's width, every column null (arena memory). */
static sch_val *new_row(vrows *v)
{
    sch_val *row = sib_arena_alloc(v->c->arena, sizeof(*row) * (v->ncols ? v->ncols : 1));
    for (size_t i = 0; row && i < v->ncols; i++) row[i] = val_null();
    return row;
}

/* tokens set<text> from n elements (arena strings). */
static int set_token_set(vrows *v, sch_val *row, const sch_table *t, sch_val *el, size_t n, sib_err *err)
{
    const sch_column *col = sch_table_column_by_name(t, "tokens");
    if (!col || !n) return 0;
    sib_buf b;
    sib_buf_init(&b);
    int rc = sch_coll_build(col->type, el, n, &b, err);
    if (!rc && b.oom) rc = oom(err);
    if (!rc) rc = set_bytes(v, row, t, "tokens", b.p, b.len);
    sib_buf_free(&b);
    return rc;
}

static int set_tokens(vrows *v, sch_val *row, const sch_table *t, sib_err *err)
{
    const cql_exec *ex = v->c->ex;
    if (!ex->node.ntokens) return 0;
    sch_val *el = sib_arena_alloc(v->c->arena, sizeof(*el) * ex->node.ntokens);
    if (!el) return oom(err);
    for (size_t i = 0; i < ex->node.ntokens; i++) {
        const char *s = arena_printf(v->c, "%" PRId64, ex->tokens[i]);
        if (!s) return oom(err);
        el[i] = val_of(s, strlen(s));
    }
    return set_token_set(v, row, t, el, ex->node.ntokens, err);
}

/* gossip's TOKENS value is "t1,t2,..." (decimal): each becomes an element. */
static int set_gossip_tokens(vrows *v, sch_val *row, const sch_table *t, const char *list, sib_err *err)
{
    size_t n = 1;
    for (const char *p = list; *p; p++) n += *p == ',';
    sch_val *el = sib_arena_alloc(v->c->arena, sizeof(*el) * n);
    if (!el) return oom(err);
    size_t k = 0;
    for (const char *p = list; *p && k < n;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        el[k++] = val_of(p, len);
        p += len + (e != NULL);
    }
    return set_token_set(v, row, t, el, k, err);
}

static int set_uuid_text(vrows *v, sch_val *row, const sch_table *t, const char *col, const char *s)
{
    uint8_t u[16];
    if (!s || !sib_uuid_parse(s, strlen(s), u)) return 0;
    return set_bytes(v, row, t, col, u, 16);
}

/* One row per other endpoint that owns tokens and is NORMAL (or stopped
 * after being NORMAL): what drivers build their host list and token map
 * from. */
static int peer_rows(vrows *v, const sch_table *t, sib_err *err)
{
    const gossip *g = v->c->ex->gsp;
    gsp_endpoint_view ep;
    for (size_t i = 1; g && gsp_endpoint_at(g, i, &ep); i++) {
        const char *st = ep.states[GSP_STATUS], *toks = ep.states[GSP_TOKENS];
        if (!st || !toks || (strncmp(st, "NORMAL", 6) && strncmp(st, "shutdown", 8))) continue;
        sch_val *row = new_row(v);
        if (!row) return oom(err);
        char host[64] = "";
        int port = 0;
        if (!gsp_split_host_port(ep.states[GSP_NATIVE_ADDRESS_AND_PORT], host, sizeof host, &port)) host[0] = 0;
        const char *rpc = ep.states[GSP_RPC_ADDRESS] ? ep.states[GSP_RPC_ADDRESS] : host;
        if (ep.states[GSP_DC]) set_text(v, row, t, "data_center", ep.states[GSP_DC]);
        if (ep.states[GSP_RACK]) set_text(v, row, t, "rack", ep.states[GSP_RACK]);
        if (ep.states[GSP_RELEASE_VERSION]) set_text(v, row, t, "release_version", ep.states[GSP_RELEASE_VERSION]);
        int rc = set_inet(v, row, t, "peer", ep.addr) || set_int(v, row, t, "peer_port", ep.port) ||
                 set_inet(v, row, t, "rpc_address", rpc) || set_inet(v, row, t, "native_address", host) ||
                 (port && set_int(v, row, t, "native_port", port)) ||
                 set_uuid_text(v, row, t, "host_id", ep.states[GSP_HOST_ID]) ||
                 set_uuid_text(v, row, t, "schema_version", ep.states[GSP_SCHEMA]);
        if (rc) return oom(err);
        if ((rc = set_gossip_tokens(v, row, t, toks, err))) return rc;
        if (vrows_add(v, row, v->ncols)) return oom(err);
    }
    return 0;
}

/* system.local: the one row describing this node (docs/protocol.md 8.3). */
static int local_row(vrows *v, const sch_table *t, sib_err *err)
{
    exec_ctx *c = v->c;
    const cql_exec_node_info *n = &c->ex->node;
    sch_val *row = new_row(v);
    if (!row) return oom(err);
    uint8_t sv[16];
    sch_catalog_schema_version(c->ex->cat, sv);
    set_text(v, row, t, "key", "local");
    set_text(v, row, t, "bootstrapped", "COMPLETED");
    set_text(v, row, t, "cluster_name", n->cluster_name);
    set_text(v, row, t, "cql_version", EXEC_CQL_VERSION);
    set_text(v, row, t, "data_center", n->dc);
    set_text(v, row, t, "rack", n->rack);
    set_text(v, row, t, "native_protocol_version", "4");
    set_text(v, row, t, "partitioner", "org.apache.cassandra.dht.Murmur3Partitioner");
    set_text(v, row, t, "release_version", SIB_RELEASE_VERSION);
    set_text(v, row, t, "thrift_version", "20.1.0");
    int rc = set_inet(v, row, t, "broadcast_address", n->listen_address) ||
             set_inet(v, row, t, "listen_address", n->listen_address) ||
             set_inet(v, row, t, "rpc_address", n->rpc_address) || set_int(v, row, t, "broadcast_port", STORAGE_PORT(n)) ||
             set_int(v, row, t, "listen_port", STORAGE_PORT(n)) || set_int(v, row, t, "rpc_port", n->native_port) ||
             set_int(v, row, t, "gossip_generation", n->gossip_generation) ||
             set_bytes(v, row, t, "host_id", n->host_id, 16) || set_bytes(v, row, t, "schema_version", sv, 16);
    if (rc) return oom(err);
    if ((rc = set_tokens(v, row, t, err))) return rc;
    return vrows_add(v, row, v->ncols) ? oom(err) : 0;
}

/* ---- system_traces: the kept trace sessions (exec_trace.c) ---- */

typedef struct trace_rows {
    vrows *v;
    const sch_table *t;
    bool events; /* system_traces.events, else sessions */
    sib_err *err;
} trace_rows;

static int set_params(vrows *v, sch_val *row, const sch_table *t, const exec_trace_session *s, sib_err *err)
{
    const sch_column *col = sch_table_column_by_name(t, "parameters");
    if (!col || s->nparams == 0) return 0;
    sch_val el[2 * EXEC_TRACE_MAX_PARAMS];
    for (size_t i = 0; i < s->nparams; i++) {
        el[2 * i] = val_of(s->param_keys[i], strlen(s->param_keys[i]));
        el[2 * i + 1] = val_of(s->param_vals[i], strlen(s->param_vals[i]));
    }
    sib_buf b;
    sib_buf_init(&b);
    int rc = sch_coll_build(col->type, el, s->nparams, &b, err);
    if (!rc && b.oom) rc = oom(err);
    if (!rc) rc = set_bytes(v, row, t, "parameters", b.p, b.len);
    sib_buf_free(&b);
    return rc;
}

static int session_row(trace_rows *tr, const exec_trace_session *s)
{
    vrows *v = tr->v;
    const sch_table *t = tr->t;
    const cql_exec_node_info *n = &v->c->ex->node;
    sch_val *row = new_row(v);
    if (!row) return oom(tr->err);
    uint8_t ts[8];
    put_be64(ts, (uint64_t)s->started_at_ms);
    set_text(v, row, t, "command", s->command);
    set_text(v, row, t, "request", s->request);
    int rc = set_bytes(v, row, t, "session_id", s->session_id, 16) ||
             set_inet(v, row, t, "coordinator", n->listen_address) || set_int(v, row, t, "coordinator_port", STORAGE_PORT(n)) ||
             set_bytes(v, row, t, "started_at", ts, 8) ||
             (s->client_len && set_bytes(v, row, t, "client", s->client, s->client_len)) ||
             (s->duration_us >= 0 && set_int(v, row, t, "duration", s->duration_us));
    if (rc) return oom(tr->err);
    if ((rc = set_params(v, row, t, s, tr->err))) return rc;
    return vrows_add(v, row, v->ncols) ? oom(tr->err) : 0;
}

static int event_rows(trace_rows *tr, const exec_trace_session *s)
{
    vrows *v = tr->v;
    const sch_table *t = tr->t;
    const cql_exec_node_info *n = &v->c->ex->node;
    for (size_t i = 0; i < s->nevents; i++) {
        const exec_trace_event *e = &s->events[i];
        sch_val *row = new_row(v);
        if (!row) return oom(tr->err);
        set_text(v, row, t, "activity", e->activity);
        set_text(v, row, t, "thread", s->thread);
        if (set_bytes(v, row, t, "session_id", s->session_id, 16) ||
            set_bytes(v, row, t, "event_id", e->event_id, 16) || set_inet(v, row, t, "source", n->listen_address) ||
            set_int(v, row, t, "source_elapsed", e->source_elapsed) || set_int(v, row, t, "source_port", STORAGE_PORT(n)) ||
            vrows_add(v, row, v->ncols))
            return oom(tr->err);
    }
    return 0;
}

static int trace_row(void *ctx, const exec_trace_session *s)
{
    trace_rows *tr = ctx;
    return tr->events ? event_rows(tr, s) : session_row(tr, s);
}

/* `session_id = <uuid>` (what drivers and cqlsh ask) picks one session
 * instead of materialising the whole ring; the filter still applies. */
static const uint8_t *wanted_session(const sel_run *run)
{
    for (size_t i = 0; i < run->nfilters; i++) {
        const exec_filter *f = &run->filters[i];
        if (f->op == PRS_OP_EQ && !strcmp(f->col->name, "session_id") && f->val.len == 16) return f->val.p;
    }
    return NULL;
}

static int system_rows(sel_run *run, vrows *v, sib_err *err)
{
    exec_ctx *c = run->c;
    const sch_table *t = run->t;
    memset(v, 0, sizeof(*v));
    v->c = c;
    v->ncols = sch_table_column_count(t);
    if (!strcmp(sch_table_keyspace(t), "system_traces")) {
        trace_rows tr = {.v = v, .t = t, .events = !strcmp(sch_table_name(t), "events"), .err = err};
        return exec_trace_each(c->ex, wanted_session(run), trace_row, &tr);
    }
    if (sch_table_kind_of(t) == SCH_TABLE_VIRTUAL_SCHEMA) {
        int rc = sch_catalog_system_rows(c->ex->cat, t, vrows_add, v, err);
        if (rc == SIB_ENOMEM) return oom(err);
        return rc;
    }
    if (strcmp(sch_table_name(t), "local") == 0) return local_row(v, t, err);
    if (!strcmp(sch_table_name(t), "peers") || !strcmp(sch_table_name(t), "peers_v2")) return peer_rows(v, t, err);
    return 0;
}

/* WHERE on a system table: every relation becomes a filter on its column. */
static int system_filter(sel_run *run, const prs_relation *rel, exec_filter *f, sib_err *err)
{
    exec_ctx *c = run->c;
    if (rel->kind != PRS_REL_SINGLE || rel->op == PRS_OP_CONTAINS || rel->op == PRS_OP_CONTAINS_KEY ||
        rel->op == PRS_OP_IS_NOT_NULL)
        return sib_err_set(err, SIB_EINVAL, "Unsupported restriction on system table %s.%s",
                           sch_table_keyspace(run->t), sch_table_name(run->t));
    memset(f, 0, sizeof(*f));
    if (!(f->col = need_column(run->t, rel->cols[0], err))) return SIB_EINVAL;
    f->op = rel->op;
    const sch_type *ty = f->col->type;
    if (rel->op != PRS_OP_IN) return exec_term_value(c, rel->value, ty, f->col->name, &f->val, NULL, err);
    if (rel->value) { /* col IN ?: a list of the column's type */
        sch_val lv;
        const sch_type *lt = sch_type_list(sch_catalog_types(c->ex->cat), ty, false);
        if (!lt) return oom(err);
        int rc = exec_term_value(c, rel->value, lt, f->col->name, &lv, NULL, err);
        if (rc) return rc;
        sch_coll_iter it;
        int n = lv.len < 0 ? 0 : sch_coll_iter_init(&it, lt, lv.p, (size_t)lv.len);
        if (n < 0) return sib_err_set(err, SIB_EINVAL, "Invalid list value for IN");
        f->in = sib_arena_alloc(c->arena, sizeof(*f->in) * (size_t)(n ? n : 1));
        if (!f->in) return oom(err);
        sch_val k, unused;
        while (n > 0 && f->nin < (size_t)n && sch_coll_next(&it, &k, &unused)) f->in[f->nin++] = k;
        return 0;
    }
    f->in = sib_arena_alloc(c->arena, sizeof(*f->in) * (rel->nin ? rel->nin : 1));
    if (!f->in) return oom(err);
    for (size_t i = 0; i < rel->nin; i++) {
        int rc = exec_term_value(c, rel->in[i], ty, f->col->name, &f->in[f->nin], NULL, err);
        if (rc) return rc;
        f->nin++;
    }
    return 0;
}

static bool same_partition(const sch_table *t, const sch_val *a, const sch_val *b)
{
    for (size_t i = 0; i < sch_table_pk_count(t); i++) {
        size_t k = sch_table_pk(t, i)->index;
        if (a[k].len != b[k].len || (a[k].len > 0 && memcmp(a[k].p, b[k].p, (size_t)a[k].len) != 0)) return false;
    }
    return true;
}

/* ORDER BY ... DESC on a system table: reverse each partition's rows. */
static void reverse_partitions(const sch_table *t, sch_val **rows, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && same_partition(t, rows[i], rows[j])) j++;
        for (size_t a = i, b = j - 1; a < b; a++, b--) {
            sch_val *x = rows[a];
            rows[a] = rows[b];
            rows[b] = x;
        }
        i = j;
    }
}

int select_system(sel_run *run, sib_err *err)
{
    exec_ctx *c = run->c;
    const prs_select *s = run->s;
    const sch_table *t = run->t;
    run->filters = sib_arena_alloc(c->arena, sizeof(*run->filters) * (s->nwhere ? s->nwhere : 1));
    if (!run->filters) return oom(err);
    int rc;
    for (size_t i = 0; i < s->nwhere; i++) {
        if ((rc = system_filter(run, &s->where[i], &run->filters[i], err))) return rc;
        run->nfilters++;
    }
    size_t npk = sch_table_pk_count(t), nck = sch_table_clustering_count(t);
    bool pk_restricted = true;
    bool *ck_eq = sib_arena_alloc(run->c->arena, nck + 1);
    if (!ck_eq) return sib_err_set(err, SIB_ENOMEM, "order by");
    for (size_t k = 0; k < npk + nck; k++) {
        bool eq = false, eq_or_in = false;
        for (size_t i = 0; i < run->nfilters; i++) {
            const sch_column *col = run->filters[i].col;
            bool match = k < npk ? col == sch_table_pk(t, k) : col == sch_table_clustering(t, k - npk);
            eq |= match && run->filters[i].op == PRS_OP_EQ;
            eq_or_in |= match && (run->filters[i].op == PRS_OP_EQ || run->filters[i].op == PRS_OP_IN);
        }
        if (k < npk) pk_restricted &= eq_or_in;
        else ck_eq[k - npk] = eq;
    }
    if ((rc = check_distinct(run, !pk_restricted, err))) return rc;
    if ((rc = check_order_by(t, s, pk_restricted, ck_eq, &run->reversed, err))) return rc;
    int64_t limit;
    if ((rc = check_limit(c, s->limit, &limit, err))) return rc;
    if ((rc = check_limit(c, s->per_partition_limit, &run->ppl, err))) return rc;
    if ((rc = ps_decode(c->params, PS_ROWINDEX, &run->ps, err))) return rc;
    run->limit_left = run->ps.present ? run->ps.limit_left : limit;
    if (run->sel.aggregate && !s->ngroup) run->limit_left = -1;

    vrows v;
    if ((rc = system_rows(run, &v, err))) return rc;
    if (run->reversed) reverse_partitions(t, v.rows, v.n);
    if (run->ps.present && run->ps.row_index > v.n) return ps_invalid(err);
    size_t i = run->ps.present ? (size_t)run->ps.row_index : 0;
    const sch_val *prev = NULL;
    for (; i < v.n && !run->stop; i++) {
        bool fresh = !prev || !same_partition(t, prev, v.rows[i]);
        if (run->distinct && !fresh) continue;
        if (fresh) run->ppl_left = run->ppl;
        prev = v.rows[i];
        row_ctx rc_ = {.allv = v.rows[i], .ck = (const uint8_t *)""};
        int x = on_row(run, &rc_, 0, err);
        if (x < 0) return x;
        if (x == ROW_STOP) break;
    }
    sib_buf ps;
    sib_buf_init(&ps);
    if (run->more) ps_encode_rowindex(i, run->limit_left, &ps); /* row i was seen, not sent */
    if (ps.oom) rc = oom(err);
    else reply_rows(run, &ps, -1);
    sib_buf_free(&ps);
    return rc;
}
