/* exec_term.c: terms -> serialized values for a known receiver.
 *
 * A constant is converted by schema/ using the receiver's type, which gives
 * Cassandra's messages (`Invalid STRING constant (a) for "k" of type int`).
 * A bind marker's bytes are validated against the receiver type. Collection
 * literals evaluate their elements against the element types and are built
 * (sorted, deduplicated) by sch_coll_build. The few native functions a
 * statement may call (now(), uuid(), toTimestamp(now()), currentTimestamp(),
 * ...) are evaluated here with the executor's clocks and generators.
 */
#include "exec_int.h"

#include <errno.h>
#include <stdlib.h>
#include <strings.h>

static sch_lit_kind lit_kind(prs_const_kind k)
{
    switch (k) {
    case PRS_CONST_STRING: return SCH_LIT_STRING;
    case PRS_CONST_INTEGER: return SCH_LIT_INTEGER;
    case PRS_CONST_FLOAT: return SCH_LIT_FLOAT;
    case PRS_CONST_BOOLEAN: return SCH_LIT_BOOLEAN;
    case PRS_CONST_UUID: return SCH_LIT_UUID;
    case PRS_CONST_HEX: return SCH_LIT_HEX;
    default: return SCH_LIT_DURATION;
    }
}

const cql_value *exec_marker_value(exec_ctx *c, int marker)
{
    if (marker < 0 || (size_t)marker >= c->nvalues) return NULL;
    return &c->values[marker];
}

static void terms_text(prs_term *const *items, size_t n, char open, char close, sib_buf *out)
{
    sib_buf_u8(out, (uint8_t)open);
    for (size_t i = 0; i < n; i++) {
        if (i) sib_buf_append(out, ", ", 2);
        exec_term_text(items[i], out);
    }
    sib_buf_u8(out, (uint8_t)close);
}

void exec_term_text(const prs_term *t, sib_buf *out)
{
    switch (t->kind) {
    case PRS_TERM_CONST:
        if (t->cst.kind == PRS_CONST_STRING) sib_buf_printf(out, "'%.*s'", (int)t->cst.len, t->cst.text);
        else sib_buf_append(out, t->cst.text, t->cst.len);
        return;
    case PRS_TERM_NULL: sib_buf_append(out, "null", 4); return;
    case PRS_TERM_MARKER: sib_buf_u8(out, '?'); return;
    case PRS_TERM_FUNC:
        sib_buf_printf(out, "%s%s%s", t->func.ks ? t->func.ks : "", t->func.ks ? "." : "", t->func.name);
        terms_text(t->func.args, t->func.nargs, '(', ')', out);
        return;
    case PRS_TERM_LIST: terms_text(t->coll.items, t->coll.n, '[', ']', out); return;
    case PRS_TERM_SET: terms_text(t->coll.items, t->coll.n, '{', '}', out); return;
    case PRS_TERM_TUPLE: terms_text(t->coll.items, t->coll.n, '(', ')', out); return;
    case PRS_TERM_MAP:
        sib_buf_u8(out, '{');
        for (size_t i = 0; i < t->map.n; i++) {
            if (i) sib_buf_append(out, ", ", 2);
            exec_term_text(t->map.keys[i], out);
            sib_buf_append(out, ": ", 2);
            exec_term_text(t->map.values[i], out);
        }
        sib_buf_u8(out, '}');
        return;
    case PRS_TERM_TYPEHINT:
    case PRS_TERM_CAST: exec_term_text(t->cast.term, out); return;
    }
}

/* ---- CAST conversions (terms and selectors) ---- */

static bool is_number_type(sch_type_code c)
{
    return c == SCH_T_TINYINT || c == SCH_T_SMALLINT || c == SCH_T_INT || c == SCH_T_BIGINT ||
           c == SCH_T_COUNTER || c == SCH_T_FLOAT || c == SCH_T_DOUBLE;
}

/* CAST supports identity, numeric <-> numeric and anything -> text/ascii. */
bool exec_castable(const sch_type *from, sch_type_code to)
{
    if (from->code == to) return true;
    if (to == SCH_T_VARCHAR || to == SCH_T_ASCII) return true;
    return is_number_type(from->code) && is_number_type(to) && to != SCH_T_COUNTER;
}

/* Reads a numeric value as int64 and double. */
static bool num_get(sch_type_code code, sch_val v, int64_t *i, double *d, bool *is_float)
{
    *is_float = false;
    switch (code) {
    case SCH_T_TINYINT: if (v.len != 1) return false; *i = (int8_t)v.p[0]; break;
    case SCH_T_SMALLINT: if (v.len != 2) return false; *i = (int16_t)get_be16(v.p); break;
    case SCH_T_INT: if (v.len != 4) return false; *i = (int32_t)get_be32(v.p); break;
    case SCH_T_BIGINT:
    case SCH_T_COUNTER: if (v.len != 8) return false; *i = (int64_t)get_be64(v.p); break;
    case SCH_T_FLOAT: {
        if (v.len != 4) return false;
        uint32_t u = get_be32(v.p);
        float f;
        memcpy(&f, &u, 4);
        *d = f;
        *is_float = true;
        break;
    }
    case SCH_T_DOUBLE: {
        if (v.len != 8) return false;
        uint64_t u = get_be64(v.p);
        memcpy(d, &u, 8);
        *is_float = true;
        break;
    }
    default: return false;
    }
    if (!*is_float) *d = (double)*i;
    else *i = (*d != *d) ? 0 : *d >= 9.2e18 ? INT64_MAX : *d <= -9.2e18 ? INT64_MIN : (int64_t)*d;
    return true;
}

static sch_val num_put(sch_type_code code, int64_t i, double d, uint8_t *tmp)
{
    switch (code) {
    case SCH_T_TINYINT: tmp[0] = (uint8_t)i; return (sch_val){tmp, 1};
    case SCH_T_SMALLINT: put_be16(tmp, (uint16_t)i); return (sch_val){tmp, 2};
    case SCH_T_INT: put_be32(tmp, (uint32_t)i);
        return (sch_val){tmp, 4};
    case SCH_T_FLOAT: {
        float f = (float)d;
        uint32_t u;
        memcpy(&u, &f, 4);
        put_be32(tmp, u);
        return (sch_val){tmp, 4};
    }
    case SCH_T_DOUBLE: {
        uint64_t u;
        memcpy(&u, &d, 8);
        put_be64(tmp, u);
        return (sch_val){tmp, 8};
    }
    default: put_be64(tmp, (uint64_t)i); return (sch_val){tmp, 8};
    }
}

sch_val exec_cast_value(const sch_type *from, const sch_type *to, sch_val a, uint8_t *tmp, sib_buf *text)
{
    if (a.len < 0 || from->code == to->code) return a;
    if (to->code == SCH_T_VARCHAR || to->code == SCH_T_ASCII) {
        sib_buf_reset(text);
        if (from->code == SCH_T_VARCHAR || from->code == SCH_T_ASCII) sib_buf_append(text, a.p, (size_t)a.len);
        else sch_value_format(from, a.p, (size_t)a.len, text);
        return text->oom ? (sch_val){NULL, -1} : (sch_val){text->p ? text->p : (const uint8_t *)"", (int32_t)text->len};
    }
    int64_t i;
    double d;
    bool is_float;
    if (!num_get(from->code, a, &i, &d, &is_float)) return (sch_val){NULL, -1};
    return num_put(to->code, i, d, tmp);
}

/* Copies a finished sib_buf into the arena as a value. */
static int buf_to_val(exec_ctx *c, sib_buf *b, sch_val *out, sib_err *err)
{
    if (b->oom) { sib_buf_free(b); return sib_err_set(err, SIB_ENOMEM, "value"); }
    uint8_t *p = sib_arena_memdup(c->arena, b->p, b->len);
    size_t len = b->len;
    sib_buf_free(b);
    if (!p) return sib_err_set(err, SIB_ENOMEM, "value");
    out->p = p;
    out->len = (int32_t)len;
    return 0;
}

static void type_name(const sch_type *t, char *out, size_t cap)
{
    sib_buf b;
    sib_buf_init(&b);
    sch_type_cql_name(t, &b);
    snprintf(out, cap, "%.*s", (int)b.len, b.p ? (const char *)b.p : "");
    sib_buf_free(&b);
}

/* Result type of a native function, or NULL if unknown. */
static const sch_type *func_type(const char *name)
{
    static const struct { const char *name; sch_type_code code; } fns[] = {
        {"now", SCH_T_TIMEUUID},           {"uuid", SCH_T_UUID},
        {"totimestamp", SCH_T_TIMESTAMP},  {"currenttimestamp", SCH_T_TIMESTAMP},
        {"todate", SCH_T_DATE},            {"currentdate", SCH_T_DATE},
        {"currenttime", SCH_T_TIME},       {"currenttimeuuid", SCH_T_TIMEUUID},
        {"tounixtimestamp", SCH_T_BIGINT}, {"dateof", SCH_T_TIMESTAMP},
        {"unixtimestampof", SCH_T_BIGINT}, {"mintimeuuid", SCH_T_TIMEUUID},
        {"maxtimeuuid", SCH_T_TIMEUUID},
    };
    for (size_t i = 0; i < SIB_ARRAY_LEN(fns); i++)
        if (!strcasecmp(name, fns[i].name)) return sch_type_native(fns[i].code);
    return NULL;
}

/* Milliseconds of a time-based uuid (for toTimestamp(now())). */
static int64_t timeuuid_ms(const uint8_t u[16])
{
    uint64_t ticks = ((uint64_t)(get_be16(u + 6) & 0x0fff) << 48) | ((uint64_t)get_be16(u + 4) << 32) | get_be32(u);
    return (int64_t)((ticks - 0x01B21DD213814000ull) / 10000);
}

/* typeAsBlob(x) / blobAsType(b): the same bytes seen as another type.
 * *from is the argument type, *to the result type; false if name is not
 * one of them. */
bool exec_blob_conversion(const char *name, const sch_type **from, const sch_type **to)
{
    static const sch_type_code codes[] = {
        SCH_T_ASCII, SCH_T_BIGINT, SCH_T_BOOLEAN, SCH_T_COUNTER, SCH_T_DATE, SCH_T_DECIMAL, SCH_T_DOUBLE,
        SCH_T_DURATION, SCH_T_FLOAT, SCH_T_INET, SCH_T_INT, SCH_T_SMALLINT, SCH_T_VARCHAR, SCH_T_TIME,
        SCH_T_TIMESTAMP, SCH_T_TIMEUUID, SCH_T_TINYINT, SCH_T_UUID, SCH_T_VARINT,
    };
    const sch_type *blob = sch_type_native(SCH_T_BLOB);
    for (size_t i = 0; i < SIB_ARRAY_LEN(codes); i++) {
        const char *tn = sch_type_native_name(codes[i]);
        const sch_type *nt = sch_type_native(codes[i]);
        char a[32], b[32];
        snprintf(a, sizeof a, "%sasblob", tn);
        snprintf(b, sizeof b, "blobas%s", tn);
        bool varchar = codes[i] == SCH_T_VARCHAR; /* text and varchar are the same type */
        if (!strcasecmp(name, a) || (varchar && !strcasecmp(name, "varcharasblob"))) { *from = nt; *to = blob; return true; }
        if (!strcasecmp(name, b) || (varchar && !strcasecmp(name, "blobasvarchar"))) { *from = blob; *to = nt; return true; }
    }
    return false;
}

bool exec_term_assignable(const prs_term *t, const sch_type *type)
{
    return t->kind != PRS_TERM_CONST || sch_literal_accepted(type->code, lit_kind(t->cst.kind));
}

const sch_type *exec_fn_arg_type(const char *name)
{
    const sch_type *from, *to;
    if (exec_blob_conversion(name, &from, &to)) return from;
    if (!strcasecmp(name, "mintimeuuid") || !strcasecmp(name, "maxtimeuuid")) return sch_type_native(SCH_T_TIMESTAMP);
    if (!strcasecmp(name, "dateof") || !strcasecmp(name, "unixtimestampof")) return sch_type_native(SCH_T_TIMEUUID);
    return NULL;
}

/* The uuid's 60-bit time is 100 ns ticks since 1582-10-15; a millisecond
 * spans ticks [ms * 10^4, (ms + 1) * 10^4 - 1]. The clock-and-node half is
 * eight 0x80 bytes (min) or eight 0x7f (max): Cassandra compares it as
 * signed bytes, so those are the extremes. */
void exec_timeuuid_bound(int64_t ms, bool max, uint8_t *out)
{
    uint64_t ticks = (uint64_t)(ms + (max ? 1 : 0)) * 10000u + 0x01B21DD213814000ull - (max ? 1 : 0);
    put_be32(out, (uint32_t)ticks);
    put_be16(out + 4, (uint16_t)(ticks >> 32));
    put_be16(out + 6, (uint16_t)(((ticks >> 48) & 0x0fff) | 0x1000));
    memset(out + 8, max ? 0x7f : 0x80, 8);
}

static int eval_conversion(exec_ctx *c, const prs_term *t, const sch_type *from, const sch_type *to,
                           const sch_type *type, const char *recv, sch_val *out, sib_err *err)
{
    char want[128], got[128];
    if (type && type->code != to->code) {
        type_name(type, want, sizeof want);
        type_name(to, got, sizeof got);
        return sib_err_set(err, SIB_EINVAL, "Type error: cannot assign result of function system.%s (type %s) to %s (type %s)",
                           t->func.name, got, recv, want);
    }
    if (t->func.nargs != 1)
        return sib_err_set(err, SIB_EINVAL, "Invalid number of arguments in call to function system.%s: 1 required but %zu provided",
                           t->func.name, t->func.nargs);
    char arg[160];
    snprintf(arg, sizeof arg, "arg0(system.%s)", t->func.name);
    int rc = exec_term_value(c, t->func.args[0], from, arg, out, NULL, err);
    if (rc || out->len < 0) return rc;
    if (to->code != SCH_T_BLOB && (rc = sch_value_validate(to, out->p, (size_t)out->len, err))) return rc;
    return 0;
}

/* fromJson(text): the receiver's type says what the JSON must hold. */
static int eval_from_json(exec_ctx *c, const prs_term *t, const sch_type *type, const char *recv, sch_val *out,
                          sib_err *err)
{
    if (t->func.nargs != 1)
        return sib_err_set(err, SIB_EINVAL,
                           "Invalid number of arguments in call to function system.fromjson: 1 required but %zu provided",
                           t->func.nargs);
    if (!type) return sib_err_set(err, SIB_EINVAL, "fromJson() cannot be used in the selection clause of a SELECT statement");
    sch_val text;
    int rc = exec_term_value(c, t->func.args[0], sch_type_native(SCH_T_VARCHAR), "arg0(system.fromjson)", &text, NULL, err);
    if (rc) return rc;
    if (text.len < 0) {
        *out = (sch_val){NULL, -1};
        return 0;
    }
    return exec_from_json(c, (const char *)text.p, (size_t)text.len, type, recv, out, err);
}

static int eval_func(exec_ctx *c, const prs_term *t, const sch_type *type, const char *recv, sch_val *out,
                     sib_err *err)
{
    const char *name = t->func.name;
    const sch_type *cfrom, *cto;
    if (exec_blob_conversion(name, &cfrom, &cto)) return eval_conversion(c, t, cfrom, cto, type, recv, out, err);
    if (!strcasecmp(name, "fromjson")) return eval_from_json(c, t, type, recv, out, err);
    const sch_type *rt = func_type(name);
    if (!rt) return sib_err_set(err, SIB_EINVAL, "Unknown function '%s'", name);
    char want[128], got[128];
    if (type && type->code != rt->code) {
        type_name(type, want, sizeof want);
        type_name(rt, got, sizeof got);
        return sib_err_set(err, SIB_EINVAL, "Type error: cannot assign result of function system.%s (type %s) to %s (type %s)",
                           name, got, recv, want);
    }
    uint8_t *p = sib_arena_alloc(c->arena, 16);
    if (!p) return sib_err_set(err, SIB_ENOMEM, "value");
    int64_t ms = c->now_us / 1000;
    if (t->func.nargs == 1) {
        /* toTimestamp(x), toDate(x), toUnixTimestamp(x): x is a timeuuid,
         * timestamp or date term (usually now()). */
        sch_val arg;
        const prs_term *a = t->func.args[0];
        const sch_type *at = a->kind == PRS_TERM_FUNC ? func_type(a->func.name)
                           : exec_fn_arg_type(name) ? exec_fn_arg_type(name) : sch_type_native(SCH_T_TIMEUUID);
        if (!at) return sib_err_set(err, SIB_EINVAL, "Unknown function '%s'", a->func.name);
        int rc = exec_term_value(c, a, at, name, &arg, NULL, err);
        if (rc) return rc;
        if (arg.len == 16 && at->code == SCH_T_TIMEUUID) ms = timeuuid_ms(arg.p);
        else if (arg.len == 8) ms = (int64_t)get_be64(arg.p);
        else if (arg.len == 4) ms = ((int64_t)get_be32(arg.p) - (1ll << 31)) * 86400000;
        else return sib_err_set(err, SIB_EINVAL, "Invalid argument for function %s", name);
    } else if (t->func.nargs > 1) {
        return sib_err_set(err, SIB_EINVAL, "Invalid number of arguments in call to function system.%s: 1 required but %zu provided",
                           name, t->func.nargs);
    }
    out->p = p;
    if (!strcasecmp(name, "mintimeuuid") || !strcasecmp(name, "maxtimeuuid")) {
        if (t->func.nargs != 1)
            return sib_err_set(err, SIB_EINVAL,
                               "Invalid number of arguments in call to function system.%s: 1 required but %zu provided",
                               name, t->func.nargs);
        exec_timeuuid_bound(ms, !strcasecmp(name, "maxtimeuuid"), p);
        out->len = 16;
        return 0;
    }
    switch (rt->code) {
    case SCH_T_TIMEUUID: sib_timeuuid_next(&c->ex->tug, p); out->len = 16; break;
    case SCH_T_UUID: sib_uuid_v4(&c->ex->rng, p); out->len = 16; break;
    case SCH_T_TIMESTAMP: put_be64(p, (uint64_t)ms); out->len = 8; break;
    case SCH_T_BIGINT: put_be64(p, (uint64_t)ms); out->len = 8; break;
    case SCH_T_DATE: {
        int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
        put_be32(p, (uint32_t)(days + (1ll << 31)));
        out->len = 4;
        break;
    }
    case SCH_T_TIME: put_be64(p, (uint64_t)((c->now_us % 86400000000ll) * 1000)); out->len = 8; break;
    default: return sib_err_set(err, SIB_EINVAL, "Unknown function '%s'", name);
    }
    out->p = p;
    return 0;
}

static int eval_collection(exec_ctx *c, const prs_term *t, const sch_type *type, const char *recv, sch_val *out,
                           sib_err *err)
{
    char tn[128];
    type_name(type, tn, sizeof tn);
    bool is_map_lit = t->kind == PRS_TERM_MAP;
    bool empty_set = t->kind == PRS_TERM_SET && t->coll.n == 0;
    const char *lit = t->kind == PRS_TERM_LIST ? "list" : t->kind == PRS_TERM_SET ? "set" : "map";
    bool ok = (t->kind == PRS_TERM_LIST && type->code == SCH_T_LIST) ||
              (t->kind == PRS_TERM_SET && type->code == SCH_T_SET) || (is_map_lit && type->code == SCH_T_MAP) ||
              (empty_set && type->code == SCH_T_MAP);
    if (!ok) return sib_err_set(err, SIB_EINVAL, "Invalid %s literal for %s of type %s", lit, recv, tn);
    size_t n = is_map_lit ? t->map.n * 2 : t->coll.n;
    sch_val *elems = sib_arena_alloc(c->arena, sizeof *elems * (n + 1));
    if (!elems) return sib_err_set(err, SIB_ENOMEM, "collection");
    for (size_t i = 0; i < n; i++) {
        const prs_term *e = is_map_lit ? (i % 2 ? t->map.values[i / 2] : t->map.keys[i / 2]) : t->coll.items[i];
        const sch_type *et = type->code == SCH_T_MAP ? type->sub[i % 2] : type->sub[0];
        int rc = exec_term_value(c, e, et, recv, &elems[i], NULL, err);
        if (rc) return rc;
        if (elems[i].len < 0) return sib_err_set(err, SIB_EINVAL, "null is not supported inside collections");
    }
    sib_buf b;
    sib_buf_init(&b);
    int rc = sch_coll_build(type, elems, is_map_lit ? t->map.n : n, &b, err);
    if (rc) { sib_buf_free(&b); return rc; }
    return buf_to_val(c, &b, out, err);
}

/* The type a term has by itself (a type hint, a known function), NULL if
 * only its receiver can tell. */
static const sch_type *own_type(exec_ctx *c, const prs_term *t)
{
    const sch_type *ty = NULL;
    if (t->kind == PRS_TERM_TYPEHINT && t->cast.type->kind == PRS_TYPE_NATIVE)
        sch_type_resolve(sch_catalog_types(c->ex->cat), t->cast.type->name, strlen(t->cast.type->name), NULL, 0, &ty,
                         NULL);
    else if (t->kind == PRS_TERM_FUNC)
        ty = func_type(t->func.name);
    return ty;
}

/* CAST(term AS type) in a term: the term is evaluated as its own type (a
 * type hint or a function's result; a plain literal or marker as the target
 * type) and converted as the CAST selector converts. The result must suit
 * the receiver. */
static int eval_cast_term(exec_ctx *c, const prs_term *t, const sch_type *type, const char *recv, sch_val *out,
                          sib_err *err)
{
    const sch_type *to = NULL;
    const char *tn = t->cast.type->name;
    int rc = sch_type_resolve(sch_catalog_types(c->ex->cat), tn, strlen(tn), NULL, 0, &to, err);
    if (rc) return rc;
    char want[128], got[128];
    if (type && type->code != to->code) {
        type_name(type, want, sizeof want);
        type_name(to, got, sizeof got);
        return sib_err_set(err, SIB_EINVAL, "Type error: cannot assign result of function system.castas%s (type %s) to %s (type %s)",
                           sch_type_native_name(to->code), got, recv, want);
    }
    const sch_type *from = own_type(c, t->cast.term);
    if (!from) return exec_term_value(c, t->cast.term, to, recv, out, NULL, err);
    if (!exec_castable(from, to->code)) {
        type_name(from, got, sizeof got);
        return sib_err_set(err, SIB_EINVAL, "%s cannot be cast to %s", got, sch_type_native_name(to->code));
    }
    sch_val v;
    if ((rc = exec_term_value(c, t->cast.term, from, recv, &v, NULL, err))) return rc;
    uint8_t tmp[16];
    sib_buf text;
    sib_buf_init(&text);
    sch_val r = exec_cast_value(from, to, v, tmp, &text);
    if (r.len < 0) {
        sib_buf_free(&text);
        *out = r;
        return 0;
    }
    uint8_t *p = sib_arena_memdup(c->arena, r.p ? r.p : (const uint8_t *)"", (size_t)r.len);
    sib_buf_free(&text);
    if (!p) return sib_err_set(err, SIB_ENOMEM, "value");
    *out = (sch_val){p, r.len};
    return 0;
}

int exec_term_value(exec_ctx *c, const prs_term *t, const sch_type *type, const char *recv_name, sch_val *out,
                    bool *unset, sib_err *err)
{
    if (unset) *unset = false;
    switch (t->kind) {
    case PRS_TERM_NULL:
        out->p = NULL;
        out->len = -1;
        return 0;
    case PRS_TERM_CONST: {
        sib_buf b;
        sib_buf_init(&b);
        int rc = sch_value_from_literal(type, lit_kind(t->cst.kind), t->cst.text, t->cst.len, recv_name, &b, err);
        if (rc) { sib_buf_free(&b); return rc; }
        return buf_to_val(c, &b, out, err);
    }
    case PRS_TERM_MARKER: {
        const cql_value *v = exec_marker_value(c, t->marker);
        if (!v) return sib_err_set(err, SIB_EINVAL, "Invalid amount of bind variables");
        if (v->len == CQL_VALUE_UNSET) {
            if (!unset) return sib_err_set(err, SIB_EINVAL, "Invalid unset value for column %s", recv_name);
            *unset = true;
            out->p = NULL;
            out->len = -1;
            return 0;
        }
        if (v->len < 0) { out->p = NULL; out->len = -1; return 0; }
        int rc = sch_value_validate(type, v->p, (size_t)v->len, err);
        if (rc) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return sib_err_set(err, SIB_EINVAL, "Exception while binding column %s: %s", recv_name, msg);
        }
        out->p = v->p;
        out->len = v->len;
        return 0;
    }
    case PRS_TERM_FUNC: return eval_func(c, t, type, recv_name, out, err);
    case PRS_TERM_LIST:
    case PRS_TERM_SET:
    case PRS_TERM_MAP: return eval_collection(c, t, type, recv_name, out, err);
    case PRS_TERM_TYPEHINT: return exec_term_value(c, t->cast.term, type, recv_name, out, unset, err);
    case PRS_TERM_CAST: return eval_cast_term(c, t, type, recv_name, out, err);
    case PRS_TERM_TUPLE: {
        char tn[128];
        type_name(type, tn, sizeof tn);
        return sib_err_set(err, SIB_EINVAL, "Invalid tuple type literal for %s of type %s", recv_name, tn);
    }
    }
    return sib_err_set(err, SIB_EINVAL, "Invalid term for %s", recv_name);
}

int exec_term_int(exec_ctx *c, const prs_term *t, const char *what, int64_t *out, bool *present, sib_err *err)
{
    *present = true;
    if (t->kind == PRS_TERM_CONST && t->cst.kind == PRS_CONST_INTEGER) {
        errno = 0;
        char *end;
        long long v = strtoll(t->cst.text, &end, 10);
        if (errno || *end) return sib_err_set(err, SIB_EINVAL, "Invalid %s value: %s", what, t->cst.text);
        *out = v;
        return 0;
    }
    if (t->kind == PRS_TERM_MARKER) {
        const cql_value *v = exec_marker_value(c, t->marker);
        if (!v) return sib_err_set(err, SIB_EINVAL, "Invalid amount of bind variables");
        if (v->len == CQL_VALUE_UNSET) { *present = false; return 0; }
        if (v->len < 0) return sib_err_set(err, SIB_EINVAL, "Invalid null value of %s", what);
        if (v->len == 4) *out = (int32_t)get_be32(v->p);
        else if (v->len == 8) *out = (int64_t)get_be64(v->p);
        else return sib_err_set(err, SIB_EINVAL, "Invalid %s value (%d bytes)", what, v->len);
        return 0;
    }
    return sib_err_set(err, SIB_EINVAL, "Invalid %s value", what);
}
