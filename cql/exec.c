/* exec.c: the statement executor's front door.
 *
 * QUERY parses the text into the request arena and runs it. PREPARE parses,
 * computes the bind/result metadata and keeps the AST in a cache entry of its
 * own (arena per entry) keyed by a 16-byte id derived from (keyspace, text),
 * so re-preparing the same text gives the same id, as Cassandra's MD5 does.
 * The cache is bounded by bytes (prepared_statements_cache_size), each entry
 * weighted by the memory it holds (its arena chunks and text); the least
 * recently used entries go first, and drivers re-prepare an evicted one when
 * EXECUTE answers Unprepared. Entries are only used inside one loop callback
 * (a deferred write reply touches the request, never the statement), so an
 * eviction never frees a statement a running request still reads.
 * EXECUTE looks the id up (Unprepared when unknown: drivers re-prepare) and
 * runs the cached AST with the bound values. BATCH (the opcode) lives in
 * exec_write.c.
 *
 * Every path replies exactly once; errors go through exec_reply_err so the
 * structured extras (Unavailable counts, AlreadyExists names, Unprepared id)
 * reach the client.
 */
#include "exec_int.h"

#include <stdlib.h>

static void exec_request(cql_executor *base, cql_request *req);
static void prepared_evicted(void *ctx, void *value);

/* Cassandra's default: max(10 MiB, 1/256 of the heap). */
static size_t default_prepared_cache_size(void)
{
    uint64_t b = sib_memory_budget() / 256;
    return (size_t)SIB_MAX(b, (uint64_t)10 << 20);
}

/* ---- construction ---- */

int cql_exec_create(cql_exec **out, const cql_exec_opts *o, sib_err *err)
{
    *out = NULL;
    cql_exec *ex = calloc(1, sizeof *ex);
    if (!ex) return sib_err_set(err, SIB_ENOMEM, "executor");
    ex->base.request = exec_request;
    ex->st = o->st;
    ex->cat = o->cat;
    ex->co = o->co;
    ex->gsp = o->gsp;
    ex->log = o->log;
    ex->node = *o->node;
    ex->tokens = malloc(sizeof(int64_t) * (o->node->ntokens ? o->node->ntokens : 1));
    if (!ex->tokens) { free(ex); return sib_err_set(err, SIB_ENOMEM, "executor"); }
    memcpy(ex->tokens, o->node->tokens, sizeof(int64_t) * o->node->ntokens);
    ex->node.tokens = ex->tokens;
    ex->batch_fail_bytes = o->batch_size_fail_threshold ? o->batch_size_fail_threshold : 50 * 1024;
    ex->default_keyspace_rf = o->default_keyspace_rf > 0 ? o->default_keyspace_rf : 1;
    ex->tombstone_warn = o->tombstone_warn_threshold ? o->tombstone_warn_threshold : 1000;
    ex->tombstone_fail = o->tombstone_failure_threshold ? o->tombstone_failure_threshold : 100000;
    ex->max_scatter_buckets = o->max_scatter_buckets > 0 ? o->max_scatter_buckets : 1000;
    sib_rng_seed(&ex->rng);
    sib_timeuuid_init(&ex->tug);
    ex->prep = sib_lru_create(o->prepared_cache_size ? o->prepared_cache_size : default_prepared_cache_size(),
                              prepared_evicted, ex);
    if (!ex->prep) { free(ex->tokens); free(ex); return sib_err_set(err, SIB_ENOMEM, "prepared statement cache"); }
    int rc = exec_schema_load(ex, err);
    if (rc) { cql_exec_destroy(ex); return rc; }
    *out = ex;
    return 0;
}

void exec_plan_clear(exec_prepared *p)
{
    p->plan_q = NULL;
    p->plan_table = NULL;
    p->plan_store = NULL;
    free(p->plan_sel);
    p->plan_sel = NULL;
    p->plan_point = 0;
    p->plan_ins = 0;
}

static void prepared_free(exec_prepared *p)
{
    if (!p) return;
    exec_plan_clear(p);
    sib_arena_destroy(p->arena);
    free(p);
}

static void prepared_evicted(void *ctx, void *value)
{
    (void)ctx;
    exec_prepared *p = value;
    if (p->refs) p->evicted = true; /* a read still holds it: freed by the last release */
    else prepared_free(p);
}

void exec_prepared_drop(exec_prepared *p) { prepared_free(p); }

void cql_exec_destroy(cql_exec *ex)
{
    if (!ex) return;
    sib_lru_destroy(ex->prep);
    exec_trace_free_all(ex);
    exec_spare_muts_free(ex);
    exec_spare_read_free(ex);
    sib_buf_free(&ex->pk_scratch);
    exec_schema_merges_orphan(ex);
    exec_bucket_ra_free_orphans(ex);
    sch_defs_destroy(ex->defs);
    free(ex->tokens);
    free(ex);
}

cql_executor *cql_exec_base(cql_exec *ex) { return &ex->base; }
void cql_exec_set_server(cql_exec *ex, cql_server *srv) { ex->srv = srv; }
void cql_exec_set_observer(cql_exec *ex, const cql_exec_observer *o) { ex->obs = *o; }

void exec_note_table_op_slow(cql_exec *ex, const uint8_t table_id[16], bool write, int64_t start_us)
{
    if (!ex->obs.table_op) return;
    ex->obs.table_op(ex->obs.ctx, table_id, write, SIB_MAX(sib_now_us() - start_us, 0));
}

int64_t exec_next_timestamp(cql_exec *ex)
{
    int64_t now = sib_now_us();
    if (now <= ex->last_ts) now = ex->last_ts + 1;
    ex->last_ts = now;
    return now;
}

/* ---- errors ---- */

/* cql_reply_sib_err maps the code and the structured extras (Unavailable
 * counts, AlreadyExists names, Unprepared id) from err. */
void exec_reply_err_req(cql_request *req, const sib_err *err)
{
    /* Every error reply passes here; exec_request leaves the executor in
     * the session's exec_data so this count needs no extra argument. */
    cql_exec *ex = req->session->exec_data;
    if (ex && ex->obs.error) ex->obs.error(ex->obs.ctx, cql_errcode_from_sib(err->code));
    cql_reply_sib_err(req, err, NULL);
}

void exec_reply_err(exec_ctx *c, const sib_err *err) { exec_reply_err_req(c->req, err); }

/* ---- lookups shared by the statement files ---- */

int exec_resolve_table_slow(exec_ctx *c, const prs_qname *q, const sch_table **out, sib_err *err)
{
    exec_prepared *p = c->ex->cur_prep; /* its plan is not q's or is stale: q's from now on */
    const char *ks = q->ks ? q->ks : c->keyspace;
    if (!ks || !*ks)
        return sib_err_set(err, SIB_EINVAL,
                           "No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename");
    if (!sch_catalog_keyspace(c->ex->cat, ks)) return sib_err_set(err, SIB_EINVAL, "keyspace %s does not exist", ks);
    const sch_table *t = sch_catalog_table(c->ex->cat, ks, q->name);
    if (!t) return sib_err_set(err, SIB_EINVAL, "table %s does not exist", q->name);
    if (p) {
        exec_plan_clear(p);
        p->plan_q = q;
        p->plan_gen = c->ex->ddl_gen;
        p->plan_table = t;
    }
    *out = t;
    return 0;
}

st_table *exec_table_store_slow(exec_ctx *c, const sch_table *t)
{
    /* storage tables are created and dropped with the schema: a plan of the
     * current ddl_gen can keep the one it found */
    exec_prepared *p = c->ex->cur_prep;
    bool plan = p && p->plan_table == t && p->plan_gen == c->ex->ddl_gen;
    st_table *st = storage_table(c->ex->st, sch_table_id(t));
    if (plan) p->plan_store = st;
    return st;
}

void exec_repl_copy(coord_repl *dst, const coord_repl *src)
{
    int n = SIB_MAX(SIB_MIN(src->ndcs, COORD_MAX_DCS), 0);
    memcpy(dst, src, offsetof(coord_repl, dcs) + sizeof src->dcs[0] * (size_t)n);
}

/* The executor keeps the last keyspace's parsed replication (every read
 * and write asks for it), valid while ddl_gen is unchanged. */
static int keyspace_repl_ref(cql_exec *ex, const char *ks, const coord_repl **out, sib_err *err)
{
    const sch_keyspace *k = sch_catalog_keyspace(ex->cat, ks);
    if (!k) return sib_err_set(err, SIB_EINVAL, "keyspace %s does not exist", ks);
    if (ex->repl_ks == k && ex->repl_gen == ex->ddl_gen) {
        *out = &ex->repl;
        return 0;
    }
    const sch_strmap *m = sch_keyspace_replication(k);
    const char *keys[COORD_MAX_DCS + 2], *vals[COORD_MAX_DCS + 2];
    size_t n = 0;
    for (size_t i = 0; i < m->n && n < SIB_ARRAY_LEN(keys); i++, n++) {
        keys[n] = m->kv[i].key;
        vals[n] = m->kv[i].value;
    }
    ex->repl_ks = NULL; /* parsing writes ex->repl: it is valid again only on success */
    ex->repl_table = NULL;
    int rc = coord_repl_parse(keys, vals, n, &ex->repl, NULL, err);
    if (rc) return rc;
    ex->repl_ks = k;
    ex->repl_gen = ex->ddl_gen;
    *out = &ex->repl;
    return 0;
}

int exec_keyspace_repl(exec_ctx *c, const char *ks, coord_repl *out, sib_err *err)
{
    const coord_repl *r;
    int rc = keyspace_repl_ref(c->ex, ks, &r, err);
    if (!rc) *out = *r;
    return rc;
}

int exec_table_repl_slow(exec_ctx *c, const sch_table *t, const coord_repl **out, sib_err *err)
{
    cql_exec *ex = c->ex;
    int rc = keyspace_repl_ref(ex, sch_table_keyspace(t), out, err);
    if (!rc) ex->repl_table = t;
    return rc;
}

/* ---- statement dispatch ---- */

static void run_statement(exec_ctx *c, const prs_stmt *s)
{
    c->stmt = s;
    if (c->ex->cur_stmt_kind < 0) c->ex->cur_stmt_kind = (int)s->kind; /* the top statement, for metrics */
    switch (s->kind) {
    case PRS_STMT_SELECT: exec_select(c, &s->select); return;
    case PRS_STMT_INSERT:
    case PRS_STMT_UPDATE:
    case PRS_STMT_DELETE: exec_modification(c, s); return;
    case PRS_STMT_BATCH: exec_batch_query(c, s); return;
    case PRS_STMT_DESCRIBE: exec_describe(c, &s->describe); return;
    default: exec_ddl(c, s); return;
    }
}

static int check_values(exec_ctx *c, sib_err *err)
{
    if (c->nvalues != c->nmarkers)
        return sib_err_set(err, SIB_EINVAL, "Invalid amount of bind variables: expected %zu, got %zu", c->nmarkers,
                           c->nvalues);
    return 0;
}

void exec_ctx_init(exec_ctx *c, cql_exec *ex, cql_request *req, const prs_stmt *s, const cql_params *p,
                     const char *keyspace)
{
    memset(c, 0, sizeof *c);
    c->ex = ex;
    c->req = req;
    c->arena = req->arena;
    c->stmt = s;
    c->markers = s->markers;
    c->nmarkers = s->nmarkers;
    c->params = p;
    if (p) {
        c->values = p->values;
        c->nvalues = p->nvalues;
        c->names = p->names;
        c->consistency = p->consistency;
    }
    if (s->consistency >= 0) c->consistency = s->consistency;
    c->now_us = ex->req_now_us ? ex->req_now_us : sib_now_us();
    ex->req_now_us = 0; /* a later statement (of a batch) reads the clock */
    c->now_s = (int32_t)(c->now_us / 1000000);
    if (p && p->timestamp != INT64_MIN) {
        c->timestamp = p->timestamp;
    } else { /* a server timestamp from the same clock read, strictly increasing */
        c->timestamp = c->now_us > ex->last_ts ? c->now_us : ex->last_ts + 1;
        ex->last_ts = c->timestamp;
    }
    c->keyspace = keyspace;
}

/* Reorders named values (NAMES_FOR_VALUES) into marker order. */
static int bind_names(exec_ctx *c, sib_err *err)
{
    if (!c->names || !c->nvalues) return 0;
    cql_value *vals = sib_arena_alloc(c->arena, sizeof *vals * c->nmarkers + 1);
    if (!vals) return sib_err_set(err, SIB_ENOMEM, "bind values");
    for (size_t m = 0; m < c->nmarkers; m++) {
        const char *want = c->markers[m].name;
        bool found = false;
        for (size_t i = 0; want && i < c->nvalues; i++) {
            if (c->names[i].len == strlen(want) && !memcmp(c->names[i].p, want, c->names[i].len)) {
                vals[m] = c->values[i];
                found = true;
                break;
            }
        }
        if (!found) return sib_err_set(err, SIB_EINVAL, "Invalid set of bind variables: missing value for marker %zu", m);
    }
    c->values = vals;
    c->nvalues = c->nmarkers;
    return 0;
}

static void handle_query(cql_exec *ex, cql_request *req)
{
    sib_err err;
    sib_err_clear(&err);
    prs_stmt *s;
    const cql_query_req *q = &req->u.query;
    EXEC_TRACE(req, "Parsing %.*s", (int)q->query.len, q->query.p);
    if (prs_parse(q->query.p, q->query.len, req->arena, &s, &err)) { exec_reply_err_req(req, &err); return; }
    exec_ctx *c = sib_arena_alloc(req->arena, sizeof *c);
    if (!c) { sib_err_set(&err, SIB_ENOMEM, "request context"); exec_reply_err_req(req, &err); return; }
    EXEC_TRACE(req, "Preparing statement");
    exec_ctx_init(c, ex, req, s, &q->params, req->session->keyspace);
    if (bind_names(c, &err) || check_values(c, &err)) { exec_reply_err(c, &err); return; }
    run_statement(c, s);
}

/* ---- prepared cache ---- */

static void prepared_id(const char *ks, const char *q, size_t qlen, uint8_t id[16])
{
    sib_buf b;
    sib_buf_init(&b);
    sib_buf_append(&b, ks, strlen(ks));
    sib_buf_u8(&b, 0);
    sib_buf_append(&b, q, qlen);
    put_be64(id, (uint64_t)sib_murmur3_h1(b.p, b.len));
    sib_buf_u8(&b, 1);
    put_be64(id + 8, (uint64_t)sib_murmur3_h1(b.p, b.len));
    sib_buf_free(&b);
}

exec_prepared *exec_prepared_find(cql_exec *ex, const uint8_t *id, size_t len)
{
    if (len != 16) return NULL;
    return sib_lru_get(ex->prep, id);
}

/* What an entry keeps alive: its arena's chunks, the entry, the room its
 * compiled selection may take, and the cache's own bookkeeping (an lru
 * entry and malloc headers, about 64 bytes). */
static size_t prepared_weight(const exec_prepared *p)
{
    return sib_arena_used(p->arena) + sizeof *p + p->sel_room + 64;
}

static int prep_insert(cql_exec *ex, exec_prepared *p, sib_err *err)
{
    size_t w = prepared_weight(p);
    int rc = sib_lru_put(ex->prep, p->id, p, w);
    if (rc == SIB_ETOOBIG)
        return sib_err_set(err, SIB_EINVAL,
                           "Prepared statement of size %zu bytes is larger than allowed maximum of %zu bytes.", w,
                           sib_lru_capacity(ex->prep));
    if (rc) return sib_err_set(err, rc, "prepared statement cache");
    return 0;
}

size_t cql_exec_prepared_count(const cql_exec *ex) { return sib_lru_count(ex->prep); }
size_t cql_exec_prepared_bytes(const cql_exec *ex) { return sib_lru_weight(ex->prep); }
size_t cql_exec_prepared_capacity(const cql_exec *ex) { return sib_lru_capacity(ex->prep); }

static void handle_prepare(cql_exec *ex, cql_request *req)
{
    sib_err err;
    sib_err_clear(&err);
    const cql_str *q = &req->u.prepare.query;
    const char *ks = req->session->keyspace;
    uint8_t id[16];
    prepared_id(ks, q->p, q->len, id);
    exec_prepared *p = exec_prepared_find(ex, id, 16);
    if (!p) {
        p = calloc(1, sizeof *p);
        sib_arena *a = sib_arena_create(4096);
        if (!p || !a) {
            free(p);
            sib_arena_destroy(a);
            sib_err_set(&err, SIB_ENOMEM, "prepared statement");
            exec_reply_err_req(req, &err);
            return;
        }
        p->arena = a;
        memcpy(p->id, id, 16);
        p->keyspace = sib_arena_strdup(a, ks);
        p->query = sib_arena_strndup(a, q->p, q->len);
        p->query_len = q->len;
        EXEC_TRACE(req, "Parsing %.*s", (int)q->len, q->p);
        if (prs_parse(q->p, q->len, a, &p->stmt, &err)) {
            prepared_free(p);
            exec_reply_err_req(req, &err);
            return;
        }
        p->sel_room = exec_select_plan_room(p->stmt);
        if (prep_insert(ex, p, &err)) {
            prepared_free(p);
            exec_reply_err_req(req, &err);
            return;
        }
    }
    exec_ctx *c = sib_arena_alloc(req->arena, sizeof *c);
    if (!c) { sib_err_set(&err, SIB_ENOMEM, "request context"); exec_reply_err_req(req, &err); return; }
    EXEC_TRACE(req, "Preparing statement");
    exec_ctx_init(c, ex, req, p->stmt, NULL, p->keyspace);
    exec_meta m;
    if (exec_stmt_meta(c, p->stmt, &m, &err)) { exec_reply_err(c, &err); return; }
    cql_prepared_meta bind = {
        .ks = m.ks, .table = m.table, .nbind = (uint32_t)m.nbind,
        .names = m.bind_names, .types = m.bind_types,
        .npk = (uint32_t)m.npk, .pk_index = m.pk_index,
    };
    cql_rows_meta result = {
        .ks = m.ks, .table = m.table, .ncols = (uint32_t)m.ncols,
        .names = m.col_names, .types = m.col_types,
    };
    cql_reply_prepared(req, id, 16, &bind, m.has_result ? &result : NULL);
}

int exec_unprepared(const uint8_t *id, size_t len, sib_err *err)
{
    char hex[40];
    size_t n = len < 16 ? len : 16;
    for (size_t i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", id[i]);
    hex[2 * n] = 0;
    sib_err_set(err, SIB_EUNPREPARED, "Prepared query with ID %s not found (either the query was not prepared on this host (maybe the host has been restarted?) or you have prepared too many queries and it has been evicted from the internal cache)", hex);
    memcpy(err->ex_id, id, n);
    err->ex_id_len = (uint8_t)n;
    return SIB_EUNPREPARED;
}

static void handle_execute(cql_exec *ex, cql_request *req)
{
    sib_err err;
    sib_err_clear(&err);
    const cql_execute_req *e = &req->u.execute;
    exec_prepared *p = exec_prepared_find(ex, e->id.p, (size_t)(e->id.len > 0 ? e->id.len : 0));
    if (!p) {
        exec_unprepared(e->id.p, (size_t)(e->id.len > 0 ? e->id.len : 0), &err);
        exec_reply_err_req(req, &err);
        return;
    }
    exec_ctx *c = sib_arena_alloc(req->arena, sizeof *c);
    if (!c) { sib_err_set(&err, SIB_ENOMEM, "request context"); exec_reply_err_req(req, &err); return; }
    if (req->trace_data) exec_trace_query(req, p->query);
    exec_ctx_init(c, ex, req, p->stmt, &e->params, p->keyspace);
    if ((c->names && bind_names(c, &err)) || check_values(c, &err)) { exec_reply_err(c, &err); return; }
    /* Only while it runs here: a callback after this one may find p evicted. */
    ex->cur_prep = p;
    run_statement(c, p->stmt);
    ex->cur_prep = NULL;
}

static void dispatch(cql_exec *ex, cql_request *req)
{
    switch (req->opcode) {
    case CQL_OP_QUERY: handle_query(ex, req); return;
    case CQL_OP_PREPARE: handle_prepare(ex, req); return;
    case CQL_OP_EXECUTE: handle_execute(ex, req); return;
    case CQL_OP_BATCH: exec_batch_request(ex, req); return;
    default: {
        sib_err err;
        sib_err_set(&err, SIB_EPROTO, "Unexpected opcode %d", req->opcode);
        exec_reply_err_req(req, &err);
    }
    }
}

/* Metrics wrapper: the time until dispatch returns covers the whole request
 * in periodic commitlog mode (the write is acked before it returns). Two
 * reads of the wall clock time it (they were four, a few percent of a point
 * read's CPU): the first is also the statement's now_us, the second ends a
 * table operation finished inside (exec_note_table_op). A clock step back
 * gives 0, not a negative time. */
static void exec_request(cql_executor *base, cql_request *req)
{
    cql_exec *ex = (cql_exec *)base;
    req->session->exec_data = ex;
    if (req->frame_flags & CQL_FLAG_TRACING) exec_trace_begin(ex, req);
    if (!ex->obs.request) { dispatch(ex, req); return; }
    int opcode = req->opcode;
    int cl = opcode == CQL_OP_QUERY ? req->u.query.params.consistency
             : opcode == CQL_OP_EXECUTE ? req->u.execute.params.consistency
             : opcode == CQL_OP_BATCH ? req->u.batch.consistency : -1;
    int64_t t0 = sib_now_us();
    ex->cur_stmt_kind = opcode == CQL_OP_BATCH ? (int)PRS_STMT_BATCH : -1; /* else run_statement sets it */
    ex->req_now_us = t0;
    ex->in_request = true;
    dispatch(ex, req); /* req may be freed from here on */
    ex->in_request = false;
    ex->req_now_us = 0;
    int64_t t1 = sib_now_us();
    if (ex->pend_op) {
        ex->pend_op = false;
        if (ex->obs.request_op) { /* one call for both */
            ex->obs.request_op(ex->obs.ctx, opcode, ex->cur_stmt_kind, cl, SIB_MAX(t1 - t0, 0), ex->pend_table,
                               ex->pend_write, SIB_MAX(t1 - ex->pend_start_us, 0));
            return;
        }
        ex->obs.table_op(ex->obs.ctx, ex->pend_table, ex->pend_write, SIB_MAX(t1 - ex->pend_start_us, 0));
    }
    ex->obs.request(ex->obs.ctx, opcode, ex->cur_stmt_kind, cl, SIB_MAX(t1 - t0, 0));
}
