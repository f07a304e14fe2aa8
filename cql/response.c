/* response.c: response bodies (ERROR, RESULT kinds, SUPPORTED) and the
 * reply functions the executor answers requests with.
 *
 *   ERROR          [int] code [string] message <extras by code>
 *     0x1000 Unavailable     [consistency] [int] required [int] alive
 *     0x1100 Write_timeout   [consistency] [int] received [int] blockfor [string] writeType
 *     0x1200 Read_timeout    [consistency] [int] received [int] blockfor [byte] data_present
 *     0x1300 Read_failure    [consistency] [int] received [int] blockfor [int] numfailures [byte] data_present
 *     0x1400 Function_failure [string] ks [string] function [string list] arg types
 *     0x1500 Write_failure   [consistency] [int] received [int] blockfor [int] numfailures [string] writeType
 *     0x2400 Already_exists  [string] ks [string] table
 *     0x2500 Unprepared      [short bytes] id
 *   RESULT         [int] kind + body
 *     1 Void          -
 *     2 Rows          <rows metadata> [int] nrows, nrows*ncols [bytes]
 *     3 Set_keyspace  [string] ks
 *     4 Prepared      [short bytes] id <prepared metadata> <rows metadata>
 *     5 Schema_change [string] change [string] target [string] ks [[string] name] [[string list] args]
 *   <rows metadata>     [int] flags [int] ncols [[bytes] paging state if 0x02]
 *                       unless 0x04: [string] ks [string] table (0x01, always
 *                       used here), ncols * ([string] name <type>)
 *   <prepared metadata> [int] flags [int] nbind (v4: [int] pk_count pk_count*[short])
 *                       [string] ks [string] table if 0x01, nbind * ([string] name <type>)
 *
 * Every reply is built in the request's own buffer and queued whole, so an
 * executor may stream rows for one request while others are answered.
 */
#include "cql_int.h"

#include <stddef.h>

#include <stdlib.h>

/* ---- error bodies ---- */

int32_t cql_errcode_from_sib(int sib_code)
{
    switch (sib_code) {
    case SIB_ESYNTAX: return CQL_ERR_SYNTAX;
    case SIB_EINVAL: case SIB_ETOOBIG: case SIB_ENOTFOUND: return CQL_ERR_INVALID;
    case SIB_EEXIST: return CQL_ERR_ALREADY_EXISTS;
    case SIB_ECONFIG: return CQL_ERR_CONFIG;
    case SIB_EUNAVAIL: return CQL_ERR_UNAVAILABLE;
    case SIB_EUNPREPARED: return CQL_ERR_UNPREPARED;
    case SIB_EPROTO: return CQL_ERR_PROTOCOL;
    case SIB_EREADFAIL: return CQL_ERR_READ_FAILURE;
    case SIB_EWRITEFAIL: return CQL_ERR_WRITE_FAILURE;
    case SIB_EAGAIN: return CQL_ERR_OVERLOADED;
    case SIB_EUNAUTHORIZED: return CQL_ERR_UNAUTHORIZED;
    default: return CQL_ERR_SERVER;
    }
}

void cql_encode_error(sib_buf *b, int version, int32_t code, const char *msg, const cql_error_extra *x)
{
    static const cql_error_extra none;
    if (!x) x = &none;
    /* v3 has no failure errors; a v3 driver would not know their extras. */
    if (version < 4 &&
        (code == CQL_ERR_READ_FAILURE || code == CQL_ERR_FUNCTION_FAILURE || code == CQL_ERR_WRITE_FAILURE))
        code = CQL_ERR_SERVER;
    cql_put_int(b, code);
    cql_put_cstring(b, msg);
    switch (code) {
    case CQL_ERR_UNAVAILABLE:
        cql_put_short(b, x->consistency);
        cql_put_int(b, x->required);
        cql_put_int(b, x->alive);
        break;
    case CQL_ERR_WRITE_TIMEOUT:
    case CQL_ERR_WRITE_FAILURE:
        cql_put_short(b, x->consistency);
        cql_put_int(b, x->received);
        cql_put_int(b, x->blockfor);
        if (code == CQL_ERR_WRITE_FAILURE) cql_put_int(b, x->numfailures);
        cql_put_cstring(b, cql_write_type_name(x->write_type));
        break;
    case CQL_ERR_READ_TIMEOUT:
    case CQL_ERR_READ_FAILURE:
        cql_put_short(b, x->consistency);
        cql_put_int(b, x->received);
        cql_put_int(b, x->blockfor);
        if (code == CQL_ERR_READ_FAILURE) cql_put_int(b, x->numfailures);
        cql_put_byte(b, x->data_present ? 1 : 0);
        break;
    case CQL_ERR_FUNCTION_FAILURE:
        cql_put_cstring(b, x->ks);
        cql_put_cstring(b, x->function);
        cql_put_string_list(b, x->arg_types, x->arg_types ? x->nargs : 0);
        break;
    case CQL_ERR_ALREADY_EXISTS:
        cql_put_cstring(b, x->ks);
        cql_put_cstring(b, x->table);
        break;
    case CQL_ERR_UNPREPARED:
        cql_put_short_bytes(b, x->id, x->id ? x->id_len : 0);
        break;
    default:
        break;
    }
}

/* ---- RESULT bodies ---- */

void cql_encode_schema_change(sib_buf *b, cql_change c, cql_target t, const char *ks, const char *name,
                              const char *const *arg_types, size_t nargs)
{
    cql_put_cstring(b, cql_change_name(c));
    cql_put_cstring(b, cql_target_name(t));
    cql_put_cstring(b, ks);
    if (t != CQL_TARGET_KEYSPACE) cql_put_cstring(b, name);
    if (t == CQL_TARGET_FUNCTION || t == CQL_TARGET_AGGREGATE) cql_put_string_list(b, arg_types, arg_types ? nargs : 0);
}

static int put_specs(sib_buf *b, int version, const char *ks, const char *table, uint32_t n,
                     const char *const *names, const sch_type *const *types, sib_err *err)
{
    cql_put_cstring(b, ks);
    cql_put_cstring(b, table);
    for (uint32_t i = 0; i < n; i++) {
        cql_put_cstring(b, names ? names[i] : NULL);
        int rc = cql_put_type(b, types ? types[i] : NULL, version, err);
        if (rc < 0) return rc;
    }
    return 0;
}

/* extra: CQL_ROWS_NO_METADATA when the request asked to skip it, or 0.
 * Inline in its two callers (a rows reply's begins every read). */
static inline __attribute__((always_inline)) int encode_rows_meta(sib_buf *b, int version, const cql_rows_meta *m, uint32_t extra, sib_err *err)
{
    int32_t flags = (int32_t)((m->flags | extra) & CQL_ROWS_NO_METADATA);
    bool paging = m->paging_state && m->paging_state_len >= 0;
    if (paging) flags |= CQL_ROWS_HAS_MORE_PAGES;
    if (!(flags & CQL_ROWS_NO_METADATA) && m->ncols > 0) flags |= CQL_ROWS_GLOBAL_TABLES_SPEC;
    cql_put_int(b, flags);
    cql_put_int(b, (int32_t)m->ncols);
    if (paging) cql_put_bytes(b, m->paging_state, m->paging_state_len);
    if (flags & CQL_ROWS_GLOBAL_TABLES_SPEC) return put_specs(b, version, m->ks, m->table, m->ncols, m->names, m->types, err);
    return 0;
}

int cql_encode_rows_meta(sib_buf *b, int version, const cql_rows_meta *m, sib_err *err)
{
    return encode_rows_meta(b, version, m, 0, err);
}

int cql_encode_prepared(sib_buf *b, int version, const uint8_t *id, uint16_t id_len, const cql_prepared_meta *bind,
                        const cql_rows_meta *result, sib_err *err)
{
    static const cql_prepared_meta no_bind;
    if (!bind) bind = &no_bind;
    cql_put_short_bytes(b, id, id_len);
    cql_put_int(b, bind->nbind > 0 ? CQL_ROWS_GLOBAL_TABLES_SPEC : 0);
    cql_put_int(b, (int32_t)bind->nbind);
    if (version >= 4) {
        uint32_t npk = bind->pk_index ? bind->npk : 0;
        cql_put_int(b, (int32_t)npk);
        for (uint32_t i = 0; i < npk; i++) {
            if (bind->pk_index[i] >= bind->nbind)
                return sib_err_set(err, SIB_EINVAL, "pk index %u beyond %u bind markers", bind->pk_index[i], bind->nbind);
            cql_put_short(b, bind->pk_index[i]);
        }
    }
    if (bind->nbind > 0) {
        int rc = put_specs(b, version, bind->ks, bind->table, bind->nbind, bind->names, bind->types, err);
        if (rc < 0) return rc;
    }
    /* No result columns (DML/DDL): NO_METADATA with 0 columns, as C* does;
     * py then leaves skip_metadata off for its EXECUTEs. */
    static const cql_rows_meta no_result = {.flags = CQL_ROWS_NO_METADATA};
    cql_rows_meta r = result && result->ncols > 0 ? *result : no_result;
    r.paging_state = NULL;
    return cql_encode_rows_meta(b, version, &r, err);
}

static int rows_begin(cql_rows *rw, sib_buf *b, int version, const cql_rows_meta *m, uint32_t extra, sib_err *err)
{
    rw->b = b;
    rw->ncols = m->ncols;
    rw->ncells = 0;
    cql_put_int(b, CQL_RESULT_ROWS);
    int rc = encode_rows_meta(b, version, m, extra, err);
    if (rc < 0) return rc;
    rw->count_off = b->len;
    cql_put_int(b, 0);
    if (b->oom) return sib_err_set(err, SIB_ENOMEM, "rows buffer");
    return 0;
}

int cql_rows_begin(cql_rows *rw, sib_buf *b, int version, const cql_rows_meta *m, sib_err *err)
{
    return rows_begin(rw, b, version, m, 0, err);
}

void cql_rows_cell(cql_rows *rw, const void *p, int32_t len)
{
    cql_put_bytes(rw->b, p, len);
    rw->ncells++;
}

void cql_rows_cells_raw(cql_rows *rw, const void *p, size_t len, uint32_t ncells)
{
    if (len) sib_buf_append(rw->b, p, len);
    rw->ncells += ncells;
}

uint8_t *cql_rows_cell_reserve(cql_rows *rw, int32_t len)
{
    SIB_ASSERT(len >= 0);
    uint8_t *p = sib_buf_reserve(rw->b, 4 + (size_t)len);
    if (!p) return NULL;
    put_be32(p, (uint32_t)len);
    rw->b->len += 4 + (size_t)len;
    rw->ncells++;
    return p + 4;
}

int cql_rows_finish(cql_rows *rw, sib_err *err)
{
    if (rw->b->oom) return sib_err_set(err, SIB_ENOMEM, "rows buffer");
    if (rw->ncols == 0 ? rw->ncells != 0 : rw->ncells % rw->ncols != 0)
        return sib_err_set(err, SIB_ESERVER, "rows result has %llu cells for %u columns",
                           (unsigned long long)rw->ncells, rw->ncols);
    uint64_t nrows = rw->ncols ? rw->ncells / rw->ncols : 0;
    if (nrows > INT32_MAX) return sib_err_set(err, SIB_ETOOBIG, "too many rows");
    put_be32(rw->b->p + rw->count_off, (uint32_t)nrows);
    return 0;
}

void cql_encode_supported(sib_buf *b)
{
    /* [string multimap]; both CQL_VERSION and COMPRESSION must be present
     * (py indexes them without a default). */
    cql_put_short(b, 3);
    cql_put_cstring(b, "CQL_VERSION");
    cql_put_short(b, 1);
    cql_put_cstring(b, "3.4.5");
    cql_put_cstring(b, "COMPRESSION");
    cql_put_short(b, 1);
    cql_put_cstring(b, "lz4");
    cql_put_cstring(b, "PROTOCOL_VERSIONS");
    cql_put_short(b, 2);
    cql_put_cstring(b, "3/v3");
    cql_put_cstring(b, "4/v4");
}

int cql_encode_frame(int version, bool compress, int16_t stream, uint8_t opcode, const uint8_t *body, size_t n,
                     uint8_t **out, size_t *out_len, sib_err *err)
{
    sib_buf b;
    sib_buf_init(&b);
    size_t start = cql_frame_begin(&b, (uint8_t)(version | CQL_VERSION_RESPONSE), 0, stream, opcode);
    if (n) sib_buf_append(&b, body, n);
    int rc = cql_frame_end(&b, start, compress, err);
    if (rc < 0) {
        sib_buf_free(&b);
        return rc;
    }
    *out = sib_buf_take(&b, out_len);
    return 0;
}

/* ---- requests ---- */

#define REQ_BODY_ROOM 256 /* a body up to this size is copied beside the request, not into its arena */

typedef struct request_block {
    cql_request req;
    struct cql_request_priv priv;
    _Alignas(8) uint8_t body_room[REQ_BODY_ROOM];
    struct request_block *pool_next; /* last: a pooled block is poisoned up to it */
} request_block;

#define REQ_ARENA_CHUNK 8192 /* a request body above a quarter of it gets its own chunk */
#define REQ_POOL_MAX 1024
#define REQ_OUT_KEEP (64 * 1024) /* a pooled request keeps a reply buffer up to this size */

cql_request *cql_request_new(cql_conn *c, const cql_header *h, const uint8_t *body, size_t n, const uint8_t **copy_out)
{
    cql_server *srv = c->srv;
    request_block *rb = srv ? srv->req_pool : NULL;
    if (rb) {
        srv->req_pool = rb->pool_next;
        srv->req_pooled--;
        SIB_UNPOISON(rb, offsetof(request_block, pool_next));
    } else {
        if (!(rb = calloc(1, sizeof *rb))) return NULL;
        if (!(rb->req.arena = sib_arena_create(REQ_ARENA_CHUNK))) {
            free(rb);
            return NULL;
        }
    }
    /* A point read's body in the block: an arena block and a call cost
     * about 30 instructions of its 56. */
    uint8_t *copy;
    if (n <= sizeof rb->body_room) {
        copy = rb->body_room;
        if (n) memcpy(copy, body, n);
    } else if (!(copy = sib_arena_memdup(rb->req.arena, body, n))) {
        sib_arena_destroy(rb->req.arena);
        free(rb);
        return NULL;
    }
    rb->req.session = &c->s;
    rb->req.opcode = h->opcode;
    rb->req.stream = h->stream;
    rb->req.version = c->s.version;
    rb->req.frame_flags = h->flags;
    rb->req.priv = &rb->priv;
    rb->priv.conn = c;
    rb->priv.body_len = n;
    rb->priv.ob = &rb->priv.out;
    /* priv.out is empty: zeroed by calloc, or emptied by cql_request_free */
    c->refs++;
    c->inflight++;
    c->req_bytes += n;
    /* The caller decodes the copy, so views outlive the read buffer. */
    *copy_out = copy;
    return &rb->req;
}

/* Removes the unfinished frame req builds at the end of c's wbuf (req is
 * c->building). */
static void drop_partial(cql_conn *c, struct cql_request_priv *pv)
{
    c->wbuf.len = pv->frame_start;
    c->wbuf.oom = false; /* only this frame's writes could set it: cql_conn_queue closes c on its own */
    c->building = NULL;
    pv->ob = &pv->out;
}

void cql_conn_move_partial(cql_conn *c)
{
    cql_request *req = c->building;
    struct cql_request_priv *pv = req->priv;
    size_t start = pv->frame_start;
    sib_buf_reset(&pv->out);
    if (c->wbuf.oom) pv->out.oom = true; /* the frame is incomplete: its end fails into a Server error */
    else sib_buf_append(&pv->out, c->wbuf.p + start, c->wbuf.len - start);
    drop_partial(c, pv);
    pv->frame_start = 0;
    if (pv->rows_open) { /* the rows writer goes along */
        pv->rows.b = &pv->out;
        pv->rows.count_off -= start;
    }
}

void cql_request_free(cql_request *req)
{
    struct cql_request_priv *pv = req->priv;
    cql_conn *c = pv->conn;
    cql_server *srv = c->srv;
    request_block *rb = (request_block *)req;
    SIB_ASSERT(c->req_bytes >= pv->body_len);
    c->req_bytes -= pv->body_len;
    if (c->building == req) drop_partial(c, pv); /* freed with its reply unfinished */
    if (srv && srv->req_pooled < REQ_POOL_MAX) {
        sib_arena *a = req->arena;
        sib_arena_clear(a);
        /* The reply buffer stays with the pooled request, emptied, so the
         * next reply allocates nothing (a big one is let go). */
        sib_buf out = pv->out;
        if (out.cap > REQ_OUT_KEEP) sib_buf_free(&out);
        sib_buf_reset(&out);
        /* Not a memset of the block (a tenth of a request's bookkeeping):
         * cql_request_new sets the header fields, decoding clears its part
         * of u, a reply sets its own state; tracing is the rest. */
        rb->req.trace_done = NULL;
        rb->req.trace_data = NULL;
        rb->priv.rows_open = false;
        rb->req.arena = a;
        rb->priv.out = out;
        rb->pool_next = srv->req_pool;
        srv->req_pool = rb;
        srv->req_pooled++;
        SIB_POISON(rb, offsetof(request_block, pool_next)); /* a stale request pointer still trips ASan */
    } else {
        sib_buf_free(&pv->out);
        sib_arena_destroy(req->arena);
        free(rb);
    }
    cql_conn_request_done(c);
}

void cql_request_pool_free(cql_server *srv)
{
    while (srv->req_pool) {
        request_block *rb = srv->req_pool;
        srv->req_pool = rb->pool_next;
        SIB_UNPOISON(rb, offsetof(request_block, pool_next));
        sib_buf_free(&rb->priv.out);
        sib_arena_destroy(rb->req.arena);
        free(rb);
    }
    srv->req_pooled = 0;
}

bool cql_request_orphaned(const cql_request *req) { return !cql_conn_open(req->priv->conn); }

static bool compress_replies(const cql_request *req) { return req->session->lz4 && req->session->ready; }

/* Starts the response frame, discarding anything a previous (abandoned)
 * attempt wrote. When no other reply is being built there, the frame is
 * built at the end of the connection's write buffer, where it is sent
 * from: a copy from the request's buffer cost about 70 instructions a
 * point read. Inline in its four callers. */
static inline __attribute__((always_inline)) void reply_start(cql_request *req, uint8_t opcode)
{
    struct cql_request_priv *pv = req->priv;
    cql_conn *c = pv->conn;
    pv->rows_open = false;
    if (c->building == req) drop_partial(c, pv);
    if (!c->building && cql_conn_open(c) && !c->fatal) {
        c->building = req;
        pv->ob = &c->wbuf;
    } else {
        sib_buf_reset(&pv->out);
        /* one allocation for a typical reply instead of a realloc per
         * doubling from 64 bytes (a few a row read) */
        if (!pv->out.cap) sib_buf_reserve(&pv->out, 512);
        pv->ob = &pv->out;
    }
    uint8_t flags = req->trace_done ? CQL_FLAG_TRACING : 0;
    pv->frame_start =
        cql_frame_begin(pv->ob, (uint8_t)(req->version | CQL_VERSION_RESPONSE), flags, req->stream, opcode);
    if (flags) sib_buf_append(pv->ob, req->trace_id, 16); /* [uuid] before the message (spec 2.2) */
}

/* Replaces whatever was built by a Server error carrying err's message. */
static void reply_fallback(cql_request *req, const sib_err *err)
{
    reply_start(req, CQL_OP_ERROR);
    cql_encode_error(req->priv->ob, req->version, CQL_ERR_SERVER, err->msg, NULL);
}

int cql_request_complete(cql_request *req)
{
    struct cql_request_priv *pv = req->priv;
    cql_conn *c = pv->conn;
    int rc = 0;
    if (req->trace_done) req->trace_done(req); /* the session's duration ends with the answer */
    if (cql_conn_open(c)) {
        sib_err err; /* set by the failure that reads it (no clearing a reply could not miss) */
        rc = cql_frame_end(pv->ob, pv->frame_start, compress_replies(req), &err);
        if (rc < 0) {
            reply_fallback(req, &err);
            if (cql_frame_end(pv->ob, pv->frame_start, compress_replies(req), &err) < 0) {
                /* Not even an error fits in memory: the stream would never be
                 * answered, so the connection must go. */
                cql_conn_send(c, NULL, 0);
                cql_request_free(req);
                return rc;
            }
        }
        /* cql_request_free updates reading */
        if (c->building == req) {
            if (c->fatal) { /* a fatal error went out meanwhile: no reply follows it (as cql_conn_queue) */
                drop_partial(c, pv);
            } else {
                c->building = NULL;
                pv->ob = &pv->out;
                cql_conn_queued(c);
            }
        } else {
            cql_conn_queue(c, pv->out.p, pv->out.len);
        }
    }
    cql_request_free(req);
    return rc;
}

/* Finishes a reply whose body building may have failed (rc < 0, err set). */
static int reply_finish(cql_request *req, int rc, const sib_err *err)
{
    if (rc < 0) reply_fallback(req, err);
    int rc2 = cql_request_complete(req);
    return rc < 0 ? rc : rc2;
}

static int reply_result_kind(cql_request *req, int32_t kind)
{
    reply_start(req, CQL_OP_RESULT);
    cql_put_int(req->priv->ob, kind);
    return 0;
}

/* A VOID result is always the same 13 bytes but for the version and the
 * stream: when the connection's write buffer has room and nothing else
 * bears on the frame (no reply being built there, no tracing id, no
 * compression), they are stored there in one go, without starting and
 * finishing a frame (about 80 instructions of a prepared write). */
static bool reply_void_direct(cql_request *req)
{
    cql_conn *c = req->priv->conn;
    sib_buf *w = &c->wbuf;
    if (c->building || !cql_conn_open(c) || c->fatal || req->trace_done || compress_replies(req) || w->oom ||
        w->cap - w->len < CQL_HEADER_LEN + 4)
        return false;
    uint8_t *p = w->p + w->len;
    p[0] = (uint8_t)(req->version | CQL_VERSION_RESPONSE);
    p[1] = 0;
    put_be16(p + 2, (uint16_t)req->stream);
    p[4] = CQL_OP_RESULT;
    put_be32(p + 5, 4);
    put_be32(p + CQL_HEADER_LEN, (uint32_t)CQL_RESULT_VOID);
    w->len += CQL_HEADER_LEN + 4;
    cql_conn_queued(c);
    cql_request_free(req);
    return true;
}

int cql_reply_void(cql_request *req)
{
    if (reply_void_direct(req)) return 0;
    if (cql_request_orphaned(req)) return cql_request_complete(req);
    reply_result_kind(req, CQL_RESULT_VOID);
    return cql_request_complete(req);
}

int cql_reply_set_keyspace(cql_request *req, const char *ks)
{
    if (!ks) ks = "";
    snprintf(req->session->keyspace, sizeof req->session->keyspace, "%s", ks);
    if (cql_request_orphaned(req)) return cql_request_complete(req);
    reply_result_kind(req, CQL_RESULT_SET_KEYSPACE);
    cql_put_cstring(req->priv->ob, ks);
    return cql_request_complete(req);
}

int cql_reply_schema_change_fn(cql_request *req, cql_change c, cql_target t, const char *ks, const char *name,
                               const char *const *arg_types, size_t nargs)
{
    if (cql_request_orphaned(req)) return cql_request_complete(req);
    reply_result_kind(req, CQL_RESULT_SCHEMA_CHANGE);
    cql_encode_schema_change(req->priv->ob, c, t, ks, name, arg_types, nargs);
    return cql_request_complete(req);
}

int cql_reply_schema_change(cql_request *req, cql_change c, cql_target t, const char *ks, const char *name)
{
    return cql_reply_schema_change_fn(req, c, t, ks, name, NULL, 0);
}

int cql_reply_prepared(cql_request *req, const uint8_t *id, uint16_t id_len, const cql_prepared_meta *bind,
                       const cql_rows_meta *result)
{
    if (cql_request_orphaned(req)) return cql_request_complete(req);
    sib_err err;
    sib_err_clear(&err);
    reply_result_kind(req, CQL_RESULT_PREPARED);
    int rc = cql_encode_prepared(req->priv->ob, req->version, id, id_len, bind, result, &err);
    return reply_finish(req, rc, &err);
}

int cql_reply_error(cql_request *req, int32_t code, const char *msg, const cql_error_extra *extra)
{
    if (cql_request_orphaned(req)) return cql_request_complete(req);
    reply_start(req, CQL_OP_ERROR);
    cql_encode_error(req->priv->ob, req->version, code, msg, extra);
    return cql_request_complete(req);
}

/* The extras a sib_err carries itself (common.h: ex[], ks/table, ex_id). */
static void extra_from_err(const sib_err *err, cql_error_extra *x)
{
    memset(x, 0, sizeof *x);
    switch (err->code) {
    case SIB_EUNAVAIL:
        x->consistency = (uint16_t)err->ex[0];
        x->required = (int32_t)err->ex[1];
        x->alive = (int32_t)err->ex[2];
        break;
    case SIB_EREADFAIL:
    case SIB_EWRITEFAIL:
        x->consistency = (uint16_t)err->ex[0];
        x->received = (int32_t)err->ex[1];
        x->blockfor = (int32_t)err->ex[2];
        x->numfailures = (int32_t)err->ex[3];
        x->write_type = CQL_WRITE_SIMPLE;
        break;
    case SIB_EEXIST:
        x->ks = err->ks;
        x->table = err->table;
        break;
    case SIB_EUNPREPARED:
        x->id = err->ex_id;
        x->id_len = SIB_MIN(err->ex_id_len, (uint8_t)sizeof err->ex_id);
        break;
    default:
        break;
    }
}

int cql_reply_sib_err(cql_request *req, const sib_err *err, const cql_error_extra *extra)
{
    cql_error_extra from_err;
    if (!extra) {
        extra_from_err(err, &from_err);
        extra = &from_err;
    }
    return cql_reply_error(req, cql_errcode_from_sib(err->code), err->msg, extra);
}

/* NO_METADATA when the request asked to skip it (QUERY/EXECUTE): a flag
 * passed beside m, not a copy of m (two 64-byte copies a read). */
static uint32_t rows_skip_flag(const cql_request *req)
{
    bool skip = (req->opcode == CQL_OP_QUERY && req->u.query.params.skip_metadata) ||
                (req->opcode == CQL_OP_EXECUTE && req->u.execute.params.skip_metadata);
    return skip ? CQL_ROWS_NO_METADATA : 0;
}

cql_rows *cql_reply_rows_begin(cql_request *req, const cql_rows_meta *m)
{
    struct cql_request_priv *pv = req->priv;
    sib_err err; /* set by the failure that reads it */
    reply_start(req, CQL_OP_RESULT);
    int rc = rows_begin(&pv->rows, pv->ob, req->version, m, rows_skip_flag(req), &err);
    if (rc < 0) {
        reply_finish(req, rc, &err);
        return NULL;
    }
    pv->rows_open = true;
    return &pv->rows;
}

int cql_reply_rows_end(cql_request *req)
{
    struct cql_request_priv *pv = req->priv;
    SIB_ASSERT(pv->rows_open);
    sib_err err; /* set by the failure that reads it */
    int rc = cql_rows_finish(&pv->rows, &err);
    pv->rows_open = false;
    return reply_finish(req, rc, &err);
}

int cql_reply_rows(cql_request *req, const cql_rows_meta *m, const cql_value *cells, uint32_t nrows)
{
    cql_rows *rw = cql_reply_rows_begin(req, m);
    if (!rw) return SIB_ESERVER;
    uint64_t n = (uint64_t)nrows * m->ncols;
    for (uint64_t i = 0; i < n; i++) cql_rows_cell(rw, cells[i].p, cells[i].len);
    return cql_reply_rows_end(req);
}
