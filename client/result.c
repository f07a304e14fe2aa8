/* result.c: decoding of response bodies into cli_result.
 *
 * A response body (after lz4) is, in this order (native_protocol_v4.spec 2.2):
 *   [uuid] tracing id          when the frame has the TRACING flag
 *   [string list] warnings     when it has WARNING
 *   [bytes map] custom payload when it has CUSTOM_PAYLOAD (skipped)
 *   the message itself: ERROR = [int] code [string] msg + extras of code;
 *   RESULT = [int] kind + the kind's body:
 *     Rows        <metadata> [int] rows_count, rows_count * columns [bytes]
 *     Set_keyspace [string]
 *     Prepared    [short bytes] id <prepared metadata> <result metadata>
 *     Schema_change [string] change [string] target [string] ks (+ name, args)
 *
 * The body is copied into the result's arena once and every view (cells,
 * paging state, ids) points into that copy, so a result is one allocation
 * family freed by cli_result_free. Everything is decoded with cql.h's
 * bounded readers: a malformed body is SIB_EPROTO, never an overread.
 */
#include "client.h"

#include <stdlib.h>
#include <strings.h>

enum { TYPE_DEPTH_MAX = 32, ARENA_CHUNK = 4096 };

typedef struct dec {
    sib_rd r;
    sib_arena *a;
    sch_types *ts;
    sib_err *err;
    int version;
} dec;

static int bad(dec *d, const char *what)
{
    return sib_err_set(d->err, SIB_EPROTO, "malformed response: %s", what);
}

static int oom(dec *d) { return sib_err_set(d->err, SIB_ENOMEM, "decoding response"); }

/* A NUL-terminated arena copy of a [string] view. */
static const char *dup_str(dec *d, cql_str s) { return sib_arena_strndup(d->a, s.p ? s.p : "", s.len); }

static int get_cstr(dec *d, const char **out, const char *what)
{
    cql_str s;
    if (!cql_get_string(&d->r, &s)) return bad(d, what);
    if (!(*out = dup_str(d, s))) return oom(d);
    return 0;
}

static int get_str_list(dec *d, const char ***out, size_t *n, const char *what)
{
    uint16_t cnt;
    if (!cql_get_short(&d->r, &cnt)) return bad(d, what);
    const char **v = sib_arena_alloc(d->a, sizeof(*v) * (cnt ? cnt : 1));
    if (!v) return oom(d);
    for (uint16_t i = 0; i < cnt; i++) {
        int rc = get_cstr(d, &v[i], what);
        if (rc < 0) return rc;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* ---- <type> options ---- */

/* The native type a Java marshal class stands for (v4 sends duration, v3
 * the newer types, as custom classes); NULL when schema.h knows none. */
static const sch_type *type_from_class(cql_str cls)
{
    for (int code = SCH_T_ASCII; code <= SCH_T_DURATION; code++) {
        const char *jc = sch_type_java_class((sch_type_code)code);
        if (jc && cql_str_eq(cls, jc)) return sch_type_native((sch_type_code)code);
    }
    return NULL;
}

static int get_type(dec *d, int depth, const sch_type **out, uint16_t *wire, const char **custom);

static int skip_types(dec *d, int depth, uint16_t n)
{
    for (uint16_t i = 0; i < n; i++) {
        const sch_type *t;
        uint16_t w;
        const char *c;
        int rc = get_type(d, depth + 1, &t, &w, &c);
        if (rc < 0) return rc;
    }
    return 0;
}

/* UDT: [string] ks [string] name [short] n, n * ([string] field, <option>). */
static int skip_udt(dec *d, int depth)
{
    cql_str ks, name, field;
    uint16_t n;
    if (!cql_get_string(&d->r, &ks) || !cql_get_string(&d->r, &name) || !cql_get_short(&d->r, &n))
        return bad(d, "udt type");
    for (uint16_t i = 0; i < n; i++) {
        if (!cql_get_string(&d->r, &field)) return bad(d, "udt field");
        int rc = skip_types(d, depth, 1);
        if (rc < 0) return rc;
    }
    return 0;
}

static int get_collection(dec *d, int depth, uint16_t code, const sch_type **out)
{
    const sch_type *sub[2] = {NULL, NULL};
    uint16_t w;
    const char *c;
    int nsub = code == SCH_T_MAP ? 2 : 1;
    for (int i = 0; i < nsub; i++) {
        int rc = get_type(d, depth + 1, &sub[i], &w, &c);
        if (rc < 0) return rc;
    }
    /* Result metadata does not say whether a collection is frozen; the
     * value encoding is the same either way, so non-frozen it is. */
    if (code == SCH_T_LIST) *out = sch_type_list(d->ts, sub[0], false);
    else if (code == SCH_T_SET) *out = sch_type_set(d->ts, sub[0], false);
    else *out = sch_type_map(d->ts, sub[0], sub[1], false);
    return *out ? 0 : oom(d);
}

static int get_type(dec *d, int depth, const sch_type **out, uint16_t *wire, const char **custom)
{
    uint16_t code;
    *custom = NULL;
    if (depth > TYPE_DEPTH_MAX) return bad(d, "type nested too deeply");
    if (!cql_get_short(&d->r, &code)) return bad(d, "type option");
    *wire = code;
    const sch_type *blob = sch_type_native(SCH_T_BLOB);
    switch (code) {
    case SCH_T_CUSTOM: {
        cql_str cls;
        if (!cql_get_string(&d->r, &cls)) return bad(d, "custom type");
        if (!(*custom = dup_str(d, cls))) return oom(d);
        const sch_type *t = type_from_class(cls);
        *out = t ? t : blob;
        return 0;
    }
    case SCH_T_LIST: case SCH_T_SET: case SCH_T_MAP:
        return get_collection(d, depth, code, out);
    case SCH_T_UDT:
        *out = blob;
        return skip_udt(d, depth);
    case SCH_T_TUPLE: {
        uint16_t n;
        if (!cql_get_short(&d->r, &n)) return bad(d, "tuple type");
        *out = blob;
        return skip_types(d, depth, n);
    }
    default: {
        const sch_type *t = code <= SCH_T_DURATION ? sch_type_native((sch_type_code)code) : NULL;
        if (!t) return bad(d, "unknown type code");
        *out = t;
        return 0;
    }
    }
}

/* ---- metadata ---- */

/* Column specs: global table spec once, or ks/table before each name. */
static int get_specs(dec *d, uint32_t flags, uint32_t n, cli_col_spec **out)
{
    const char *gks = NULL, *gtable = NULL;
    if (flags & CQL_ROWS_GLOBAL_TABLES_SPEC) {
        int rc = get_cstr(d, &gks, "table spec");
        if (rc == 0) rc = get_cstr(d, &gtable, "table spec");
        if (rc < 0) return rc;
    }
    /* Each spec takes at least 6 bytes: reject absurd counts before allocating. */
    if ((size_t)n > sib_rd_left(&d->r) / 4 + 1) return bad(d, "column count");
    cli_col_spec *cols = sib_arena_alloc(d->a, sizeof(*cols) * (n ? n : 1));
    if (!cols) return oom(d);
    for (uint32_t i = 0; i < n; i++) {
        cli_col_spec *c = &cols[i];
        int rc = 0;
        if (gks) {
            c->ks = gks;
            c->table = gtable;
        } else {
            rc = get_cstr(d, &c->ks, "column spec");
            if (rc == 0) rc = get_cstr(d, &c->table, "column spec");
        }
        if (rc == 0) rc = get_cstr(d, &c->name, "column name");
        if (rc == 0) rc = get_type(d, 0, &c->type, &c->wire_code, &c->custom_class);
        if (rc < 0) return rc;
    }
    *out = cols;
    return 0;
}

static int get_count(dec *d, uint32_t *out, const char *what)
{
    int32_t v;
    if (!cql_get_int(&d->r, &v) || v < 0) return bad(d, what);
    *out = (uint32_t)v;
    return 0;
}

/* <rows metadata>: flags, column count, paging state, specs. */
static int get_rows_meta(dec *d, cli_result_meta *m)
{
    int rc = get_count(d, &m->flags, "metadata flags");
    if (rc == 0) rc = get_count(d, &m->ncols, "column count");
    if (rc < 0) return rc;
    m->paging_state = (cql_value){NULL, CQL_VALUE_NULL};
    if ((m->flags & CQL_ROWS_HAS_MORE_PAGES) && !cql_get_bytes(&d->r, &m->paging_state)) return bad(d, "paging state");
    if (m->flags & CQL_ROWS_NO_METADATA) return 0;
    return get_specs(d, m->flags, m->ncols, &m->cols);
}

static int get_rows(dec *d, cli_result *res)
{
    int rc = get_rows_meta(d, &res->u.rows.meta);
    if (rc == 0) rc = get_count(d, &res->u.rows.nrows, "row count");
    if (rc < 0) return rc;
    uint64_t ncells = (uint64_t)res->u.rows.nrows * res->u.rows.meta.ncols;
    /* Every cell is at least its 4-byte length. */
    if (ncells > sib_rd_left(&d->r) / 4) return bad(d, "row count");
    cql_value *cells = sib_arena_alloc(d->a, sizeof(*cells) * (ncells ? ncells : 1));
    if (!cells) return oom(d);
    for (uint64_t i = 0; i < ncells; i++)
        if (!cql_get_bytes(&d->r, &cells[i])) return bad(d, "cell");
    res->u.rows.cells = cells;
    return 0;
}

/* v4 <prepared metadata>: flags, count, pk_count, pk_index, specs. */
static int get_prepared(dec *d, cli_result *res)
{
    if (!cql_get_short_bytes(&d->r, &res->u.prepared.id)) return bad(d, "prepared id");
    cli_result_meta *b = &res->u.prepared.bind;
    int rc = get_count(d, &b->flags, "prepared flags");
    if (rc == 0) rc = get_count(d, &b->ncols, "bind count");
    if (rc == 0 && d->version >= 4) rc = get_count(d, &res->u.prepared.npk, "pk count");
    if (rc < 0) return rc;
    uint32_t npk = res->u.prepared.npk;
    if (npk > sib_rd_left(&d->r) / 2) return bad(d, "pk count");
    res->u.prepared.pk_index = sib_arena_alloc(d->a, sizeof(uint16_t) * (npk ? npk : 1));
    if (!res->u.prepared.pk_index) return oom(d);
    for (uint32_t i = 0; i < npk; i++)
        if (!cql_get_short(&d->r, &res->u.prepared.pk_index[i])) return bad(d, "pk index");
    b->paging_state = (cql_value){NULL, CQL_VALUE_NULL};
    rc = get_specs(d, b->flags, b->ncols, &b->cols);
    return rc < 0 ? rc : get_rows_meta(d, &res->u.prepared.result);
}

static int get_schema_change(dec *d, cli_result *res)
{
    cql_str change, target;
    if (!cql_get_string(&d->r, &change) || !cql_get_string(&d->r, &target)) return bad(d, "schema change");
    int c = -1, t = -1;
    for (int i = CQL_CHANGE_CREATED; i <= CQL_CHANGE_DROPPED; i++)
        if (cql_str_eq(change, cql_change_name((cql_change)i))) c = i;
    for (int i = CQL_TARGET_KEYSPACE; i <= CQL_TARGET_AGGREGATE; i++)
        if (cql_str_eq(target, cql_target_name((cql_target)i))) t = i;
    if (c < 0 || t < 0) return bad(d, "schema change type");
    res->u.schema_change.change = (cql_change)c;
    res->u.schema_change.target = (cql_target)t;
    int rc = get_cstr(d, &res->u.schema_change.ks, "schema change keyspace");
    if (rc == 0 && t != CQL_TARGET_KEYSPACE) rc = get_cstr(d, &res->u.schema_change.name, "schema change name");
    if (rc == 0 && (t == CQL_TARGET_FUNCTION || t == CQL_TARGET_AGGREGATE))
        rc = get_str_list(d, &res->u.schema_change.arg_types, &res->u.schema_change.nargs, "schema change args");
    return rc;
}

static int get_result(dec *d, cli_result *res)
{
    int32_t kind;
    if (!cql_get_int(&d->r, &kind)) return bad(d, "result kind");
    res->kind = kind;
    switch (kind) {
    case CQL_RESULT_VOID: return 0;
    case CQL_RESULT_ROWS: return get_rows(d, res);
    case CQL_RESULT_SET_KEYSPACE: return get_cstr(d, &res->u.keyspace, "keyspace");
    case CQL_RESULT_PREPARED: return get_prepared(d, res);
    case CQL_RESULT_SCHEMA_CHANGE: return get_schema_change(d, res);
    default: return bad(d, "result kind");
    }
}

/* ---- errors ---- */

static bool get_cl_counts(dec *d, cql_error_extra *x)
{
    return cql_get_short(&d->r, &x->consistency) && cql_get_int(&d->r, &x->received) &&
           cql_get_int(&d->r, &x->blockfor);
}

static int get_write_type(dec *d, cql_error_extra *x)
{
    cql_str wt;
    if (!cql_get_string(&d->r, &wt)) return bad(d, "write type");
    /* An unknown name (a newer server) keeps SIMPLE rather than failing the
     * whole error: the code and message are what matter to the caller. */
    for (int i = CQL_WRITE_SIMPLE; i <= CQL_WRITE_CDC; i++)
        if (cql_str_eq(wt, cql_write_type_name((cql_write_type)i))) x->write_type = (cql_write_type)i;
    return 0;
}

static int get_error_extras(dec *d, int32_t code, cql_error_extra *x)
{
    uint8_t b;
    switch (code) {
    case CQL_ERR_UNAVAILABLE:
        if (!cql_get_short(&d->r, &x->consistency) || !cql_get_int(&d->r, &x->required) ||
            !cql_get_int(&d->r, &x->alive))
            return bad(d, "unavailable extras");
        return 0;
    case CQL_ERR_WRITE_TIMEOUT:
    case CQL_ERR_WRITE_FAILURE:
        if (!get_cl_counts(d, x)) return bad(d, "write error extras");
        if (code == CQL_ERR_WRITE_FAILURE && !cql_get_int(&d->r, &x->numfailures)) return bad(d, "failures");
        return get_write_type(d, x);
    case CQL_ERR_READ_TIMEOUT:
    case CQL_ERR_READ_FAILURE:
        if (!get_cl_counts(d, x)) return bad(d, "read error extras");
        if (code == CQL_ERR_READ_FAILURE && !cql_get_int(&d->r, &x->numfailures)) return bad(d, "failures");
        if (!cql_get_byte(&d->r, &b)) return bad(d, "data_present");
        x->data_present = b != 0;
        return 0;
    case CQL_ERR_FUNCTION_FAILURE: {
        const char **args = NULL;
        int rc = get_cstr(d, &x->ks, "function keyspace");
        if (rc == 0) rc = get_cstr(d, &x->function, "function name");
        if (rc == 0) rc = get_str_list(d, &args, &x->nargs, "function args");
        x->arg_types = args;
        return rc;
    }
    case CQL_ERR_ALREADY_EXISTS: {
        int rc = get_cstr(d, &x->ks, "already exists keyspace");
        return rc < 0 ? rc : get_cstr(d, &x->table, "already exists table");
    }
    case CQL_ERR_UNPREPARED: {
        cql_value id;
        if (!cql_get_short_bytes(&d->r, &id)) return bad(d, "unprepared id");
        x->id = id.p;
        x->id_len = (uint16_t)id.len;
        return 0;
    }
    default:
        return 0;
    }
}

static int get_error(dec *d, cli_result *res)
{
    res->kind = CLI_RESULT_ERROR;
    if (!cql_get_int(&d->r, &res->u.error.code)) return bad(d, "error code");
    int rc = get_cstr(d, &res->u.error.msg, "error message");
    return rc < 0 ? rc : get_error_extras(d, res->u.error.code, &res->u.error.x);
}

/* ---- entry points ---- */

void cli_result_free(cli_result *r)
{
    if (!r) return;
    sib_arena_destroy(r->arena);
    memset(r, 0, sizeof(*r));
}

static int get_prefix(dec *d, uint8_t flags, cli_result *out)
{
    if ((flags & CQL_FLAG_TRACING) && !cql_get_uuid(&d->r, out->tracing_id)) return bad(d, "tracing id");
    if (flags & CQL_FLAG_WARNING) {
        int rc = get_str_list(d, &out->warnings, &out->nwarnings, "warnings");
        if (rc < 0) return rc;
    }
    if ((flags & CQL_FLAG_CUSTOM_PAYLOAD) && !cql_skip_bytes_map(&d->r)) return bad(d, "custom payload");
    return 0;
}

int cli_result_decode(sch_types *ts, int version, uint8_t opcode, uint8_t frame_flags, const uint8_t *body,
                      size_t len, cli_result *out, sib_err *err)
{
    memset(out, 0, sizeof(*out));
    out->opcode = opcode;
    out->frame_flags = frame_flags;
    out->kind = CLI_RESULT_OTHER;
    out->arena = sib_arena_create(len + ARENA_CHUNK);
    if (!out->arena) return sib_err_set(err, SIB_ENOMEM, "result arena");
    const uint8_t *copy = len ? sib_arena_memdup(out->arena, body, len) : (const uint8_t *)"";
    if (!copy) return sib_err_set(err, SIB_ENOMEM, "result body of %zu bytes", len);
    dec d = {.a = out->arena, .ts = ts, .err = err, .version = version};
    sib_rd_init(&d.r, copy, len);
    /* The prefix exists only on responses the flags say have one; requests
     * we sent never asked for tracing, but a server may add warnings. */
    int rc = get_prefix(&d, frame_flags, out);
    if (rc < 0) return rc;
    if (opcode == CQL_OP_RESULT) rc = get_result(&d, out);
    else if (opcode == CQL_OP_ERROR) rc = get_error(&d, out);
    return rc;
}

int cli_result_to_err(const cli_result *r, sib_err *err)
{
    if (r->kind != CLI_RESULT_ERROR) return 0;
    int code;
    const cql_error_extra *x = &r->u.error.x;
    switch (r->u.error.code) {
    case CQL_ERR_SYNTAX: code = SIB_ESYNTAX; break;
    case CQL_ERR_INVALID: code = SIB_EINVAL; break;
    case CQL_ERR_ALREADY_EXISTS: code = SIB_EEXIST; break;
    case CQL_ERR_CONFIG: code = SIB_ECONFIG; break;
    case CQL_ERR_UNAVAILABLE: code = SIB_EUNAVAIL; break;
    case CQL_ERR_UNPREPARED: code = SIB_EUNPREPARED; break;
    case CQL_ERR_PROTOCOL: code = SIB_EPROTO; break;
    case CQL_ERR_READ_FAILURE: case CQL_ERR_READ_TIMEOUT: code = SIB_EREADFAIL; break;
    case CQL_ERR_WRITE_FAILURE: case CQL_ERR_WRITE_TIMEOUT: code = SIB_EWRITEFAIL; break;
    case CQL_ERR_OVERLOADED: code = SIB_EAGAIN; break;
    case CQL_ERR_UNAUTHORIZED: case CQL_ERR_BAD_CREDENTIALS: code = SIB_EUNAUTHORIZED; break;
    default: code = SIB_ESERVER; break;
    }
    sib_err_set(err, code, "%s", r->u.error.msg ? r->u.error.msg : "");
    if (!err) return code;
    if (code == SIB_EUNAVAIL) {
        err->ex[0] = x->consistency; err->ex[1] = x->required; err->ex[2] = x->alive;
    } else if (code == SIB_EREADFAIL || code == SIB_EWRITEFAIL) {
        err->ex[0] = x->consistency; err->ex[1] = x->received; err->ex[2] = x->blockfor; err->ex[3] = x->numfailures;
    } else if (code == SIB_EEXIST) {
        snprintf(err->ks, sizeof(err->ks), "%s", x->ks ? x->ks : "");
        snprintf(err->table, sizeof(err->table), "%s", x->table ? x->table : "");
    } else if (code == SIB_EUNPREPARED && x->id) {
        err->ex_id_len = (uint8_t)SIB_MIN(x->id_len, sizeof(err->ex_id));
        memcpy(err->ex_id, x->id, err->ex_id_len);
    }
    return code;
}

/* Names as cqlsh prints them (cassandra/protocol.py summary names). */
const char *cli_client_error_class(int32_t code)
{
    switch (code) {
    case CQL_ERR_SERVER: return "ServerError";
    case CQL_ERR_PROTOCOL: return "ProtocolError";
    case CQL_ERR_BAD_CREDENTIALS: return "AuthenticationFailed";
    case CQL_ERR_UNAVAILABLE: return "Unavailable";
    case CQL_ERR_OVERLOADED: return "OverloadedErrorMessage";
    case CQL_ERR_BOOTSTRAPPING: return "IsBootstrappingErrorMessage";
    case CQL_ERR_TRUNCATE: return "TruncateError";
    case CQL_ERR_WRITE_TIMEOUT: return "WriteTimeout";
    case CQL_ERR_READ_TIMEOUT: return "ReadTimeout";
    case CQL_ERR_READ_FAILURE: return "ReadFailure";
    case CQL_ERR_FUNCTION_FAILURE: return "FunctionFailure";
    case CQL_ERR_WRITE_FAILURE: return "WriteFailure";
    case CQL_ERR_SYNTAX: return "SyntaxException";
    case CQL_ERR_UNAUTHORIZED: return "Unauthorized";
    case CQL_ERR_INVALID: return "InvalidRequest";
    case CQL_ERR_CONFIG: return "ConfigurationException";
    case CQL_ERR_ALREADY_EXISTS: return "AlreadyExists";
    case CQL_ERR_UNPREPARED: return "PreparedQueryNotFound";
    default: return "ServerError";
    }
}

int cli_client_parse_cl(const char *name)
{
    if (!name) return -1;
    for (int cl = CQL_ANY; cl <= CQL_LOCAL_ONE; cl++) {
        const char *n = cql_cl_name(cl);
        if (strcasecmp(n, name) == 0) return cl;
    }
    return -1;
}
