/* request.c: request bodies (QUERY, PREPARE, EXECUTE, BATCH), the
 * synchronous calls built on them, and the connection handshake.
 *
 * Bodies (native_protocol_v4.spec 4.1), written straight into the
 * connection's output buffer between cql_frame_begin and cql_frame_end:
 *   QUERY    [long string] query  <query_parameters>
 *   PREPARE  [long string] query
 *   EXECUTE  [short bytes] id     <query_parameters>
 *   BATCH    [byte] type [short] n, n * (kind, query|id, [short] nv, nv * [value]),
 *            [short] consistency [byte] flags [short serial]? [long timestamp]?
 *   <query_parameters> = [short] consistency [byte] flags, then per flag:
 *            values, page size, paging state, serial consistency, timestamp.
 *
 * Handshake: OPTIONS -> SUPPORTED (does the server offer lz4?), STARTUP
 * {CQL_VERSION, COMPRESSION} -> READY, or AUTHENTICATE -> AUTH_RESPONSE with
 * a SASL PLAIN token (\0user\0password) -> AUTH_SUCCESS; then USE keyspace.
 */
#include "client_int.h"

#include <stdlib.h>

/* ---- framing a request ---- */

static int frame_start(cli_client *cl, uint8_t opcode, cli_client_cb cb, void *ud, size_t *start, sib_err *err)
{
    int id = client_stream_take(cl, cb, ud, err);
    if (id < 0) return id;
    *start = cql_frame_begin(&cl->out, (uint8_t)cl->version, 0, (int16_t)id, opcode);
    return id;
}

/* Patches the length (compressing once lz4 is on); on failure takes the
 * partial frame back out of the buffer and frees the id. */
static int frame_finish(cli_client *cl, int id, size_t start, sib_err *err)
{
    int rc = cql_frame_end(&cl->out, start, cl->lz4, err);
    if (rc < 0) {
        cl->out.len = start;
        cl->out.oom = false;
        client_stream_release(cl, (int16_t)id);
        return rc;
    }
    return id;
}

static int consistency_of(const cli_query_opts *qo)
{
    if (qo->consistency == CQL_ANY && !qo->any_cl) return CQL_ONE;
    return qo->consistency;
}

static void put_values(sib_buf *b, const cql_value *v, uint16_t n, const char *const *names)
{
    cql_put_short(b, n);
    for (uint16_t i = 0; i < n; i++) {
        if (names) cql_put_cstring(b, names[i]);
        cql_put_value(b, v[i].p, v[i].len);
    }
}

static void put_params(sib_buf *b, const cli_query_opts *qo, bool allow_names)
{
    uint8_t flags = 0;
    bool names = allow_names && qo->names && qo->nvalues;
    if (qo->nvalues) flags |= CQL_QF_VALUES;
    if (names) flags |= CQL_QF_NAMES_FOR_VALUES;
    if (qo->skip_metadata) flags |= CQL_QF_SKIP_METADATA;
    if (qo->page_size > 0) flags |= CQL_QF_PAGE_SIZE;
    if (qo->paging_state && qo->paging_state_len >= 0) flags |= CQL_QF_PAGING_STATE;
    if (qo->serial_consistency) flags |= CQL_QF_SERIAL_CONSISTENCY;
    if (qo->has_timestamp) flags |= CQL_QF_DEFAULT_TIMESTAMP;
    cql_put_short(b, (uint16_t)consistency_of(qo));
    cql_put_byte(b, flags);
    if (flags & CQL_QF_VALUES) put_values(b, qo->values, qo->nvalues, names ? qo->names : NULL);
    if (flags & CQL_QF_PAGE_SIZE) cql_put_int(b, qo->page_size);
    if (flags & CQL_QF_PAGING_STATE) cql_put_bytes(b, qo->paging_state, qo->paging_state_len);
    if (flags & CQL_QF_SERIAL_CONSISTENCY) cql_put_short(b, (uint16_t)qo->serial_consistency);
    if (flags & CQL_QF_DEFAULT_TIMESTAMP) cql_put_long(b, qo->timestamp);
}

/* The send_* helpers return the stream id (>= 0) or a negative code. */

static int send_query(cli_client *cl, const char *cql, const cli_query_opts *qo, cli_client_cb cb, void *ud,
                      sib_err *err)
{
    static const cli_query_opts defaults;
    size_t start;
    int id = frame_start(cl, CQL_OP_QUERY, cb, ud, &start, err);
    if (id < 0) return id;
    if (qo && qo->tracing) cl->out.p[start + 1] |= CQL_FLAG_TRACING; /* header flags byte */
    cql_put_long_string(&cl->out, cql, strlen(cql));
    put_params(&cl->out, qo ? qo : &defaults, true);
    return frame_finish(cl, id, start, err);
}

static int send_prepare(cli_client *cl, const char *cql, cli_client_cb cb, void *ud, sib_err *err)
{
    size_t start;
    int id = frame_start(cl, CQL_OP_PREPARE, cb, ud, &start, err);
    if (id < 0) return id;
    cql_put_long_string(&cl->out, cql, strlen(cql));
    return frame_finish(cl, id, start, err);
}

static int send_execute(cli_client *cl, const uint8_t *sid, uint16_t sid_len, const cli_query_opts *qo,
                        cli_client_cb cb, void *ud, sib_err *err)
{
    static const cli_query_opts defaults;
    size_t start;
    int id = frame_start(cl, CQL_OP_EXECUTE, cb, ud, &start, err);
    if (id < 0) return id;
    cql_put_short_bytes(&cl->out, sid, sid_len);
    put_params(&cl->out, qo ? qo : &defaults, false);
    return frame_finish(cl, id, start, err);
}

static int send_batch(cli_client *cl, cql_batch_type type, const cli_batch_stmt *stmts, uint16_t n, int cl_level,
                      cli_client_cb cb, void *ud, sib_err *err)
{
    size_t start;
    int id = frame_start(cl, CQL_OP_BATCH, cb, ud, &start, err);
    if (id < 0) return id;
    sib_buf *b = &cl->out;
    cql_put_byte(b, (uint8_t)type);
    cql_put_short(b, n);
    for (uint16_t i = 0; i < n; i++) {
        const cli_batch_stmt *s = &stmts[i];
        if (s->id) {
            cql_put_byte(b, 1);
            cql_put_short_bytes(b, s->id, s->id_len);
        } else {
            cql_put_byte(b, 0);
            cql_put_long_string(b, s->query ? s->query : "", s->query ? strlen(s->query) : 0);
        }
        put_values(b, s->values, s->nvalues, NULL);
    }
    cql_put_short(b, (uint16_t)cl_level);
    cql_put_byte(b, 0);
    return frame_finish(cl, id, start, err);
}

static int send_raw(cli_client *cl, uint8_t opcode, const sib_buf *body, cli_client_cb cb, void *ud, sib_err *err)
{
    size_t start;
    int id = frame_start(cl, opcode, cb, ud, &start, err);
    if (id < 0) return id;
    if (body->len) sib_buf_append(&cl->out, body->p, body->len);
    return frame_finish(cl, id, start, err);
}

/* ---- asynchronous API ---- */

int cli_client_send_query(cli_client *cl, const char *cql, const cli_query_opts *qo, cli_client_cb cb, void *ud,
                          sib_err *err)
{
    int id = send_query(cl, cql, qo, cb, ud, err);
    return id < 0 ? id : 0;
}

int cli_client_send_execute(cli_client *cl, const uint8_t *id, uint16_t id_len, const cli_query_opts *qo,
                            cli_client_cb cb, void *ud, sib_err *err)
{
    int sid = send_execute(cl, id, id_len, qo, cb, ud, err);
    return sid < 0 ? sid : 0;
}

int cli_client_send_batch(cli_client *cl, cql_batch_type type, const cli_batch_stmt *stmts, uint16_t n,
                          int cl_level, cli_client_cb cb, void *ud, sib_err *err)
{
    int id = send_batch(cl, type, stmts, n, cl_level, cb, ud, err);
    return id < 0 ? id : 0;
}

int cli_client_send_prepare(cli_client *cl, const char *cql, cli_client_cb cb, void *ud, sib_err *err)
{
    int id = send_prepare(cl, cql, cb, ud, err);
    return id < 0 ? id : 0;
}

/* ---- synchronous API ---- */

/* Remembers the keyspace a USE switched to (the shell shows it). */
static void note_keyspace(cli_client *cl, const cli_result *out)
{
    if (out->kind == CLI_RESULT_SET_KEYSPACE && out->u.keyspace)
        snprintf(cl->keyspace, sizeof(cl->keyspace), "%s", out->u.keyspace);
}

int cli_client_query_opts(cli_client *cl, const char *cql, const cli_query_opts *qo, cli_result *out,
                          sib_err *err)
{
    memset(out, 0, sizeof(*out));
    client_sync w = {.out = out};
    int id = send_query(cl, cql, qo, client_sync_cb, &w, err);
    if (id < 0) return id;
    int rc = client_sync_wait(cl, &w, id, err);
    if (rc == 0) note_keyspace(cl, out);
    return rc;
}

int cli_client_query(cli_client *cl, const char *cql, int consistency, int32_t page_size,
                     const cql_value *paging_state, cli_result *out, sib_err *err)
{
    cli_query_opts qo = {.consistency = consistency, .any_cl = consistency == CQL_ANY, .page_size = page_size};
    if (paging_state && paging_state->len >= 0) {
        qo.paging_state = paging_state->p;
        qo.paging_state_len = paging_state->len;
    }
    return cli_client_query_opts(cl, cql, &qo, out, err);
}

int cli_client_prepare(cli_client *cl, const char *cql, cli_result *out, sib_err *err)
{
    memset(out, 0, sizeof(*out));
    client_sync w = {.out = out};
    int id = send_prepare(cl, cql, client_sync_cb, &w, err);
    return id < 0 ? id : client_sync_wait(cl, &w, id, err);
}

int cli_client_execute(cli_client *cl, const uint8_t *id, uint16_t id_len, const cli_query_opts *qo,
                       cli_result *out, sib_err *err)
{
    memset(out, 0, sizeof(*out));
    client_sync w = {.out = out};
    int sid = send_execute(cl, id, id_len, qo, client_sync_cb, &w, err);
    if (sid < 0) return sid;
    int rc = client_sync_wait(cl, &w, sid, err);
    if (rc == 0) note_keyspace(cl, out);
    return rc;
}

int cli_client_batch(cli_client *cl, cql_batch_type type, const cli_batch_stmt *stmts, uint16_t n, int cl_level,
                     cli_result *out, sib_err *err)
{
    memset(out, 0, sizeof(*out));
    client_sync w = {.out = out};
    int id = send_batch(cl, type, stmts, n, cl_level, client_sync_cb, &w, err);
    return id < 0 ? id : client_sync_wait(cl, &w, id, err);
}

/* ---- handshake ---- */

/* Sends a raw frame and waits for its raw answer into body. */
static int raw_call(cli_client *cl, uint8_t opcode, const sib_buf *req, sib_buf *body, uint8_t *resp_op,
                    sib_err *err)
{
    sib_buf_reset(body);
    client_sync w = {.raw = body};
    int id = send_raw(cl, opcode, req, client_sync_cb, &w, err);
    if (id < 0) return id;
    int rc = client_sync_wait(cl, &w, id, err);
    *resp_op = w.raw_opcode;
    return rc;
}

/* An ERROR body as a sib_err. */
static int server_error(cli_client *cl, const sib_buf *body, const char *during, sib_err *err)
{
    cli_result r;
    int rc = cli_result_decode(cl->ts, cl->version, CQL_OP_ERROR, 0, body->p, body->len, &r, err);
    if (rc == 0) {
        rc = cli_result_to_err(&r, err);
        if (err) {
            char msg[sizeof(err->msg)];
            snprintf(msg, sizeof(msg), "%.32s: %.32s: %.400s", during, cli_client_error_class(r.u.error.code),
                     r.u.error.msg);
            memcpy(err->msg, msg, sizeof(msg));
        }
    }
    cli_result_free(&r);
    return rc < 0 ? rc : SIB_EPROTO;
}

/* SUPPORTED is a [string multimap]: does COMPRESSION list lz4? */
static bool offers_lz4(const sib_buf *body)
{
    sib_rd r;
    sib_rd_init(&r, body->p, body->len);
    uint16_t nkeys, nvals;
    if (!cql_get_short(&r, &nkeys)) return false;
    for (uint16_t i = 0; i < nkeys; i++) {
        cql_str key, val;
        if (!cql_get_string(&r, &key) || !cql_get_short(&r, &nvals)) return false;
        for (uint16_t j = 0; j < nvals; j++) {
            if (!cql_get_string(&r, &val)) return false;
            if (cql_str_eq(key, "COMPRESSION") && cql_str_eq(val, "lz4")) return true;
        }
    }
    return false;
}

static int authenticate(cli_client *cl, const cli_client_opts *o, sib_buf *req, sib_buf *body, sib_err *err)
{
    sib_rd r;
    cql_str cls = {"", 0};
    sib_rd_init(&r, body->p, body->len);
    cql_get_string(&r, &cls);
    if (!o->username)
        return sib_err_set(err, SIB_EUNAUTHORIZED, "%s requires authentication (%.*s): give a username and password",
                           cl->peer, (int)cls.len, cls.p);
    const char *pw = o->password ? o->password : "";
    size_t ul = strlen(o->username), pl = strlen(pw);
    sib_buf_reset(req);
    cql_put_int(req, (int32_t)(ul + pl + 2));
    sib_buf_u8(req, 0);
    sib_buf_append(req, o->username, ul);
    sib_buf_u8(req, 0);
    sib_buf_append(req, pw, pl);
    uint8_t op;
    int rc = raw_call(cl, CQL_OP_AUTH_RESPONSE, req, body, &op, err);
    if (rc < 0) return rc;
    if (op == CQL_OP_AUTH_SUCCESS) return 0;
    if (op == CQL_OP_ERROR) return server_error(cl, body, "authentication", err);
    return sib_err_set(err, SIB_EPROTO, "authentication: unexpected %s (only SASL PLAIN is supported)",
                       cql_opcode_name(op));
}

static int use_keyspace(cli_client *cl, const char *ks, sib_err *err)
{
    sib_buf q;
    sib_buf_init(&q);
    sib_buf_printf(&q, "USE %s", ks);
    sib_buf_u8(&q, 0);
    if (q.oom) {
        sib_buf_free(&q);
        return sib_err_set(err, SIB_ENOMEM, "USE statement");
    }
    cli_result r;
    int rc = cli_client_query(cl, (const char *)q.p, CQL_ONE, 0, NULL, &r, err);
    if (rc == 0 && r.kind == CLI_RESULT_ERROR) rc = cli_result_to_err(&r, err);
    cli_result_free(&r);
    sib_buf_free(&q);
    return rc;
}

static int startup(cli_client *cl, const cli_client_opts *o, sib_buf *req, sib_buf *body, sib_err *err)
{
    uint8_t op;
    sib_buf_reset(req);
    int rc = raw_call(cl, CQL_OP_OPTIONS, req, body, &op, err);
    if (rc < 0) return rc;
    if (op != CQL_OP_SUPPORTED) return sib_err_set(err, SIB_EPROTO, "OPTIONS answered with %s", cql_opcode_name(op));
    bool lz4 = o->lz4 && offers_lz4(body);
    const char *kv[] = {"CQL_VERSION", "3.0.0", "COMPRESSION", "lz4"};
    sib_buf_reset(req);
    cql_put_string_map(req, kv, lz4 ? 2 : 1);
    rc = raw_call(cl, CQL_OP_STARTUP, req, body, &op, err);
    if (rc < 0) return rc;
    /* From here on both sides compress (each frame says so in its flags). */
    cl->lz4 = lz4;
    if (op == CQL_OP_READY) return 0;
    if (op == CQL_OP_AUTHENTICATE) return authenticate(cl, o, req, body, err);
    if (op == CQL_OP_ERROR) return server_error(cl, body, "startup", err);
    return sib_err_set(err, SIB_EPROTO, "STARTUP answered with %s", cql_opcode_name(op));
}

int client_handshake(cli_client *cl, const cli_client_opts *o, sib_err *err)
{
    sib_buf req, body;
    sib_buf_init(&req);
    sib_buf_init(&body);
    int rc = startup(cl, o, &req, &body, err);
    sib_buf_free(&req);
    sib_buf_free(&body);
    if (rc == 0 && o->keyspace && *o->keyspace) rc = use_keyspace(cl, o->keyspace, err);
    return rc;
}
