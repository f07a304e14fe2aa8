/* exec_json.c: Cassandra's JSON text of values (toJson(), SELECT JSON).
 *
 * Each type writes what its Cassandra type's toJSONString writes:
 *   tinyint..bigint, counter, varint   the number: 42
 *   decimal                            BigDecimal.toString(): 1.50, 1E+3
 *   float, double                      Java's Float/Double.toString(): 1.5,
 *                                      1.0E10, 1.0E-4; NaN and the
 *                                      infinities as strings ("NaN")
 *   boolean                            true / false
 *   text, ascii                        a JSON string ("a\"b", control
 *                                      characters \n or \u001F as Jackson
 *                                      escapes them; other characters as is)
 *   timestamp                          "2011-02-03 04:05:00.000Z" (UTC)
 *   date, time                         "2011-02-03", "04:05:00.000000000"
 *   uuid, timeuuid, inet, duration     their text, quoted
 *   blob                               "0x0102"
 *   list, set                          [e1, e2]
 *   map                                {"k1": v1, "k2": v2}: a key that is not
 *                                      already a JSON string is quoted
 *   null                               null
 * A SELECT JSON row is one text column named [json] holding
 * {"col": value, ...}; a column whose name is not all lower case appears
 * as "\"Name\"" (its CQL spelling), as Selection.rowToJson writes it.
 */
#include "exec_select_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void exec_json_quote(const uint8_t *s, size_t n, sib_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    sib_buf_u8(out, '"');
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = s[i];
        const char *esc = ch == '"' ? "\\\"" : ch == '\\' ? "\\\\" : ch == '\n' ? "\\n" : ch == '\r' ? "\\r"
                        : ch == '\t' ? "\\t" : ch == '\b' ? "\\b" : ch == '\f' ? "\\f" : NULL;
        if (esc) {
            sib_buf_append(out, esc, 2);
        } else if (ch < 0x20) {
            char u[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            sib_buf_append(out, u, 6);
        } else {
            sib_buf_u8(out, ch);
        }
    }
    sib_buf_u8(out, '"');
}

/* Java's Float.toString / Double.toString: the shortest digits that read
 * back to the value, as d.ddd when 10^-3 <= |x| < 10^7, else d.dddE<exp>;
 * always a digit after the point. */
static void java_fp(double x, bool single, sib_buf *out)
{
    if (isnan(x)) { sib_buf_printf(out, "\"NaN\""); return; }
    if (isinf(x)) { sib_buf_printf(out, "\"%sInfinity\"", x < 0 ? "-" : ""); return; }
    if (x == 0) { sib_buf_printf(out, "%s0.0", signbit(x) ? "-" : ""); return; }
    char e[40];
    int p;
    for (p = 1; p < 17; p++) { /* shortest round trip */
        snprintf(e, sizeof e, "%.*e", p - 1, x);
        if (single ? strtof(e, NULL) == (float)x : strtod(e, NULL) == x) break;
    }
    snprintf(e, sizeof e, "%.*e", p - 1, x);
    char digits[24];
    size_t nd = 0;
    const char *q = e + (e[0] == '-');
    for (; *q && *q != 'e'; q++)
        if (*q != '.') digits[nd++] = *q;
    int exp = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (x < 0) sib_buf_u8(out, '-');
    double ax = fabs(x);
    if (ax >= 1e-3 && ax < 1e7) {
        if (exp < 0) {
            sib_buf_append(out, "0.", 2);
            for (int i = -1; i > exp; i--) sib_buf_u8(out, '0');
            sib_buf_append(out, digits, nd);
            return;
        }
        for (int i = 0; i <= exp; i++) sib_buf_u8(out, (size_t)i < nd ? (uint8_t)digits[i] : '0');
        sib_buf_u8(out, '.');
        if ((size_t)exp + 1 < nd) sib_buf_append(out, digits + exp + 1, nd - (size_t)exp - 1);
        else sib_buf_u8(out, '0');
        return;
    }
    sib_buf_u8(out, (uint8_t)digits[0]);
    sib_buf_u8(out, '.');
    if (nd > 1) sib_buf_append(out, digits + 1, nd - 1);
    else sib_buf_u8(out, '0');
    sib_buf_printf(out, "E%d", exp);
}

static void json_coll(const sch_type *t, const uint8_t *v, size_t len, sib_buf *out)
{
    bool map = t->code == SCH_T_MAP;
    sch_coll_iter it;
    if (sch_coll_iter_init(&it, t, v, len) < 0) {
        sib_buf_printf(out, "null");
        return;
    }
    sib_buf_u8(out, map ? '{' : '[');
    sch_val k, e;
    bool first = true;
    while (sch_coll_next(&it, &k, &e)) {
        if (!first) sib_buf_append(out, ", ", 2);
        first = false;
        if (!map) {
            exec_json_value(t->sub[0], k.p, k.len, out);
            continue;
        }
        size_t at = out->len;
        exec_json_value(t->sub[0], k.p, k.len, out);
        if (!out->oom && (out->len == at || out->p[at] != '"')) { /* quote a non-string key */
            size_t kl = out->len - at;
            uint8_t *copy = malloc(kl + 1);
            if (!copy) {
                out->oom = true;
                return;
            }
            memcpy(copy, out->p + at, kl);
            out->len = at;
            exec_json_quote(copy, kl, out);
            free(copy);
        }
        sib_buf_append(out, ": ", 2);
        exec_json_value(t->sub[1], e.p, e.len, out);
    }
    sib_buf_u8(out, map ? '}' : ']');
}

void exec_json_value(const sch_type *t, const uint8_t *v, int32_t len, sib_buf *out)
{
    if (len < 0) {
        sib_buf_append(out, "null", 4);
        return;
    }
    size_t n = (size_t)len;
    size_t fixed = sch_type_fixed_len(t);
    if (fixed && n != fixed) { /* the empty value of a fixed-size type */
        sib_buf_append(out, "null", 4);
        return;
    }
    switch (t->code) {
    case SCH_T_TINYINT: case SCH_T_SMALLINT: case SCH_T_INT: case SCH_T_BIGINT: case SCH_T_COUNTER:
    case SCH_T_VARINT: case SCH_T_DECIMAL:
        if (!n) sib_buf_append(out, "null", 4);
        else sch_value_format(t, v, n, out);
        return;
    case SCH_T_BOOLEAN: sib_buf_printf(out, "%s", v[0] ? "true" : "false"); return;
    case SCH_T_FLOAT: {
        uint32_t u = get_be32(v);
        float f;
        memcpy(&f, &u, 4);
        java_fp(f, true, out);
        return;
    }
    case SCH_T_DOUBLE: {
        uint64_t u = get_be64(v);
        double d;
        memcpy(&d, &u, 8);
        java_fp(d, false, out);
        return;
    }
    case SCH_T_VARCHAR: case SCH_T_ASCII: exec_json_quote(v, n, out); return;
    case SCH_T_LIST: case SCH_T_SET: case SCH_T_MAP: json_coll(t, v, n, out); return;
    default: break;
    }
    /* the rest is its text, quoted */
    sib_buf text;
    sib_buf_init(&text);
    sch_value_format(t, v, n, &text);
    size_t tl = text.len;
    if (t->code == SCH_T_TIMESTAMP && !text.oom) { /* "yyyy-MM-dd HH:mm:ss.SSS" + "Z" */
        const uint8_t *dot = memchr(text.p, '.', text.len);
        if (dot && (size_t)(dot - text.p) + 4 <= text.len) {
            tl = (size_t)(dot - text.p) + 4;
            text.p[tl++] = 'Z';
        }
    }
    if (text.oom) out->oom = true;
    else exec_json_quote(text.p ? text.p : (const uint8_t *)"", tl, out);
    sib_buf_free(&text);
}

/* The key of a selected column in a JSON row. */
static void json_key(const char *name, sib_buf *out)
{
    bool lower = true;
    for (const char *p = name; *p; p++) lower &= !(*p >= 'A' && *p <= 'Z');
    if (lower) {
        exec_json_quote((const uint8_t *)name, strlen(name), out);
        return;
    }
    sib_buf q;
    sib_buf_init(&q);
    sib_buf_printf(&q, "\"%s\"", name);
    if (q.oom) out->oom = true;
    else exec_json_quote(q.p, q.len, out);
    sib_buf_free(&q);
}

int json_rewrite(sel_run *run, sib_err *err)
{
    sib_buf out, offs, obj;
    sib_buf_init(&out);
    sib_buf_init(&offs);
    sib_buf_init(&obj);
    for (size_t i = 0; i < run->nrows; i++) {
        const uint8_t *p = run->out.p + ((const size_t *)run->offs.p)[i];
        uint32_t cklen = get_be32(p);
        size_t off = out.len;
        sib_buf_append(&offs, &off, sizeof(off));
        sib_buf_append(&out, p, 4 + cklen); /* keep the sort key of post-ordered rows */
        p += 4 + cklen;
        sib_buf_reset(&obj);
        sib_buf_u8(&obj, '{');
        for (size_t j = 0; j < run->sel.n; j++) {
            int32_t len = (int32_t)get_be32(p);
            p += 4;
            if (j) sib_buf_append(&obj, ", ", 2);
            json_key(run->sel.names[j], &obj);
            sib_buf_append(&obj, ": ", 2);
            exec_json_value(run->sel.types[j], p, len, &obj);
            if (len > 0) p += len;
        }
        sib_buf_u8(&obj, '}');
        out_cell(&out, obj.oom ? val_null() : val_of(obj.p, obj.len));
        out.oom |= obj.oom;
    }
    sib_buf_free(&obj);
    if (out.oom || offs.oom) {
        sib_buf_free(&out);
        sib_buf_free(&offs);
        return oom(err);
    }
    sib_buf_free(&run->out);
    sib_buf_free(&run->offs);
    run->out = out;
    run->offs = offs;
    return exec_json_columns(run->c, &run->sel.n, &run->sel.names, &run->sel.types, err);
}

int exec_json_columns(exec_ctx *c, size_t *n, const char ***names, const sch_type ***types, sib_err *err)
{
    *names = sib_arena_alloc(c->arena, sizeof(**names));
    *types = sib_arena_alloc(c->arena, sizeof(**types));
    if (!*names || !*types) return oom(err);
    (*names)[0] = "[json]";
    (*types)[0] = sch_type_native(SCH_T_VARCHAR);
    *n = 1;
    return 0;
}

/* ---- reading JSON (INSERT JSON, fromJson) ------------------------------------- */

/* A parsed JSON value (arena). Strings are unescaped; numbers keep their
 * text; src/srclen span the value's own text in the input. */
typedef enum { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ } jv_kind;

typedef struct jv {
    jv_kind k;
    const char *s;          /* STR: unescaped bytes; NUM, BOOL: the token */
    size_t n;
    size_t cnt;             /* ARR: items; OBJ: members (keys[i], items[i]) */
    struct jv *items, *keys;
    const char *src;
    size_t srclen;
} jv;

typedef struct jreader {
    exec_ctx *c;
    const char *p, *end;
    const char *why;        /* what went wrong */
} jreader;

#define JSON_MAX_DEPTH 64

static void jspace(jreader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int hexdig(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

static bool jstring(jreader *r, jv *v)
{
    sib_buf b;
    sib_buf_init(&b);
    r->p++; /* the opening quote */
    while (r->p < r->end && *r->p != '"') {
        unsigned char ch = (unsigned char)*r->p++;
        if (ch < 0x20) { r->why = "control character in a string"; goto bad; }
        if (ch != '\\') { sib_buf_u8(&b, ch); continue; }
        if (r->p >= r->end) break;
        char e = *r->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (simple && e) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            sib_buf_u8(&b, (uint8_t)map[simple - "\"\\/bfnrt"]);
            continue;
        }
        if (e != 'u' || r->end - r->p < 4) { r->why = "bad escape in a string"; goto bad; }
        uint32_t cp = 0;
        for (int i = 0; i < 4; i++) {
            int h = hexdig(r->p[i]);
            if (h < 0) { r->why = "bad \\u escape"; goto bad; }
            cp = cp << 4 | (uint32_t)h;
        }
        r->p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u') {
            uint32_t lo = 0;
            for (int i = 2; i < 6; i++) lo = lo << 4 | (uint32_t)SIB_MAX(hexdig(r->p[i]), 0);
            if (lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                r->p += 6;
            }
        }
        uint8_t u[4];
        size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (n == 1) u[0] = (uint8_t)cp;
        else if (n == 2) { u[0] = (uint8_t)(0xC0 | cp >> 6); u[1] = (uint8_t)(0x80 | (cp & 0x3F)); }
        else if (n == 3) { u[0] = (uint8_t)(0xE0 | cp >> 12); u[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)); u[2] = (uint8_t)(0x80 | (cp & 0x3F)); }
        else { u[0] = (uint8_t)(0xF0 | cp >> 18); u[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F)); u[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)); u[3] = (uint8_t)(0x80 | (cp & 0x3F)); }
        sib_buf_append(&b, u, n);
    }
    if (r->p >= r->end) { r->why = "unterminated string"; goto bad; }
    r->p++;
    v->k = JV_STR;
    v->n = b.len;
    v->s = b.oom ? NULL : sib_arena_memdup(r->c->arena, b.p ? b.p : (const uint8_t *)"", b.len + 1);
    sib_buf_free(&b);
    if (!v->s) r->why = "out of memory";
    return v->s != NULL;
bad:
    sib_buf_free(&b);
    return false;
}

static bool jvalue(jreader *r, jv *v, int depth);

/* [v, ...] or {"k": v, ...} */
static bool jcompound(jreader *r, jv *v, int depth)
{
    bool obj = *r->p == '{';
    char close = obj ? '}' : ']';
    v->k = obj ? JV_OBJ : JV_ARR;
    r->p++;
    jspace(r);
    size_t cap = 0;
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return true;
    }
    for (;;) {
        if (v->cnt == cap) { /* grow in the arena; the old block stays behind */
            size_t ncap = cap ? cap * 2 : 4;
            jv *items = sib_arena_alloc(r->c->arena, sizeof(jv) * ncap);
            jv *keys = obj ? sib_arena_alloc(r->c->arena, sizeof(jv) * ncap) : NULL;
            if (!items || (obj && !keys)) { r->why = "out of memory"; return false; }
            if (v->cnt) memcpy(items, v->items, sizeof(jv) * v->cnt);
            if (obj && v->cnt) memcpy(keys, v->keys, sizeof(jv) * v->cnt);
            v->items = items;
            v->keys = keys;
            cap = ncap;
        }
        jspace(r);
        if (obj) {
            memset(&v->keys[v->cnt], 0, sizeof(jv));
            if (r->p >= r->end || *r->p != '"') { r->why = "expected a member name"; return false; }
            if (!jstring(r, &v->keys[v->cnt])) return false;
            jspace(r);
            if (r->p >= r->end || *r->p != ':') { r->why = "expected ':'"; return false; }
            r->p++;
        }
        memset(&v->items[v->cnt], 0, sizeof(jv));
        if (!jvalue(r, &v->items[v->cnt], depth + 1)) return false;
        v->cnt++;
        jspace(r);
        if (r->p < r->end && *r->p == ',') { r->p++; continue; }
        if (r->p < r->end && *r->p == close) { r->p++; return true; }
        r->why = obj ? "expected ',' or '}'" : "expected ',' or ']'";
        return false;
    }
}

static bool jvalue(jreader *r, jv *v, int depth)
{
    if (depth > JSON_MAX_DEPTH) { r->why = "nested too deeply"; return false; }
    jspace(r);
    v->src = r->p;
    if (r->p >= r->end) { r->why = "unexpected end of input"; return false; }
    bool ok;
    char ch = *r->p;
    if (ch == '"') ok = jstring(r, v);
    else if (ch == '{' || ch == '[') ok = jcompound(r, v, depth);
    else {
        const char *s = r->p;
        while (r->p < r->end && (strchr("+-.eE", *r->p) || (*r->p >= '0' && *r->p <= '9') ||
                                 (*r->p >= 'a' && *r->p <= 'z') || (*r->p >= 'A' && *r->p <= 'Z')))
            r->p++;
        size_t n = (size_t)(r->p - s);
        v->s = s;
        v->n = n;
        ok = true;
        if (n == 4 && !memcmp(s, "null", 4)) v->k = JV_NULL;
        else if ((n == 4 && !memcmp(s, "true", 4)) || (n == 5 && !memcmp(s, "false", 5))) v->k = JV_BOOL;
        else {
            char *endp;
            char tmp[64];
            snprintf(tmp, sizeof tmp, "%.*s", (int)SIB_MIN(n, sizeof tmp - 1), s);
            (void)strtod(tmp, &endp);
            ok = n && n < sizeof tmp && *endp == 0 && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'));
            v->k = JV_NUM;
            if (!ok) r->why = "unrecognized token";
        }
    }
    v->srclen = (size_t)(r->p - v->src);
    return ok;
}

static bool jparse(exec_ctx *c, const char *text, size_t n, jv *out, const char **why)
{
    jreader r = {c, text, text + n, NULL};
    memset(out, 0, sizeof(*out));
    bool ok = jvalue(&r, out, 0);
    if (ok) {
        jspace(&r);
        if (r.p != r.end) { ok = false; r.why = "trailing characters after the value"; }
    }
    *why = r.why ? r.why : "invalid JSON";
    return ok;
}

/* The literal kind a type's fromString parses (a JSON string's content). */
static sch_lit_kind text_kind(sch_type_code c)
{
    switch (c) {
    case SCH_T_TINYINT: case SCH_T_SMALLINT: case SCH_T_INT: case SCH_T_BIGINT: case SCH_T_VARINT: case SCH_T_COUNTER:
        return SCH_LIT_INTEGER;
    case SCH_T_FLOAT: case SCH_T_DOUBLE: case SCH_T_DECIMAL: return SCH_LIT_FLOAT;
    case SCH_T_BOOLEAN: return SCH_LIT_BOOLEAN;
    case SCH_T_UUID: case SCH_T_TIMEUUID: return SCH_LIT_UUID;
    case SCH_T_BLOB: return SCH_LIT_HEX;
    case SCH_T_DURATION: return SCH_LIT_DURATION;
    default: return SCH_LIT_STRING;
    }
}

static int jconvert(exec_ctx *c, const jv *v, const sch_type *t, const char *recv, sib_buf *out, sib_err *err);

static int jcoll(exec_ctx *c, const jv *v, const sch_type *t, const char *recv, sib_buf *out, sib_err *err)
{
    bool map = t->code == SCH_T_MAP;
    if (v->k != (map ? JV_OBJ : JV_ARR))
        return sib_err_set(err, SIB_EINVAL, "Expected a %s, but got %s: %.*s", map ? "map" : t->code == SCH_T_SET ? "set" : "list",
                           v->k == JV_OBJ ? "a map" : v->k == JV_ARR ? "a list" : "a scalar", (int)SIB_MIN(v->srclen, 200), v->src);
    size_t n = v->cnt * (map ? 2 : 1);
    sch_val *el = sib_arena_alloc(c->arena, sizeof(*el) * (n + 1));
    if (!el) return oom(err);
    sib_buf b;
    sib_buf_init(&b);
    int rc = 0;
    for (size_t i = 0; i < v->cnt && !rc; i++) {
        for (int part = 0; part < (map ? 2 : 1) && !rc; part++) {
            const sch_type *et = map ? t->sub[part] : t->sub[0];
            jv key;
            const jv *src = &v->items[i];
            if (map && part == 0) { /* a key that is not text is itself JSON in the member name */
                src = &v->keys[i];
                const char *why;
                if (et->code != SCH_T_VARCHAR && et->code != SCH_T_ASCII) {
                    if (!jparse(c, v->keys[i].s, v->keys[i].n, &key, &why))
                        return sib_err_set(err, SIB_EINVAL, "Could not decode JSON string '%.*s': %s",
                                           (int)SIB_MIN(v->keys[i].n, 200), v->keys[i].s, why);
                    src = &key;
                }
            }
            if (src->k == JV_NULL) {
                rc = sib_err_set(err, SIB_EINVAL, "null is not supported inside collections");
                break;
            }
            sib_buf_reset(&b);
            if ((rc = jconvert(c, src, et, recv, &b, err))) break;
            uint8_t *p = b.oom ? NULL : sib_arena_memdup(c->arena, b.p ? b.p : (const uint8_t *)"", b.len);
            if (!p) rc = oom(err);
            el[i * (map ? 2 : 1) + (size_t)part] = val_of(p, b.len);
        }
    }
    sib_buf_free(&b);
    return rc ? rc : sch_coll_build(t, el, v->cnt, out, err);
}

/* One JSON value to the serialized value of type t, appended to out;
 * null is the caller's. Errors carry the type's own message. */
static int jconvert(exec_ctx *c, const jv *v, const sch_type *t, const char *recv, sib_buf *out, sib_err *err)
{
    if (sch_type_is_collection(t)) return jcoll(c, v, t, recv, out, err);
    sch_lit_kind kind;
    const char *text = v->s;
    size_t n = v->n;
    switch (v->k) {
    case JV_STR:
        kind = text_kind(t->code);
        if (kind == SCH_LIT_HEX && (n < 2 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X')))
            return sib_err_set(err, SIB_EINVAL, "String representation of blob is missing 0x prefix: %.*s",
                               (int)SIB_MIN(n, 200), text);
        break;
    case JV_NUM: {
        bool integral = !memchr(text, '.', n) && !memchr(text, 'e', n) && !memchr(text, 'E', n);
        kind = integral ? SCH_LIT_INTEGER : SCH_LIT_FLOAT;
        break;
    }
    case JV_BOOL: kind = SCH_LIT_BOOLEAN; break;
    default:
        return sib_err_set(err, SIB_EINVAL, "Expected a %s value, but got %s: %.*s", sch_type_native_name(t->code),
                           v->k == JV_OBJ ? "a map" : "a list", (int)SIB_MIN(v->srclen, 200), v->src);
    }
    return sch_value_from_literal(t, kind, text, n, recv, out, err);
}

int exec_from_json(exec_ctx *c, const char *text, size_t n, const sch_type *t, const char *recv, sch_val *out,
                   sib_err *err)
{
    jv v;
    const char *why;
    *out = val_null();
    if (!jparse(c, text, n, &v, &why))
        return sib_err_set(err, SIB_EINVAL, "Could not decode JSON string '%.*s': %s", (int)SIB_MIN(n, 200), text, why);
    if (v.k == JV_NULL) return 0;
    sib_buf b;
    sib_buf_init(&b);
    int rc = jconvert(c, &v, t, recv, &b, err);
    if (!rc && b.oom) rc = oom(err);
    if (rc) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        sib_buf_free(&b);
        return sib_err_set(err, SIB_EINVAL, "Error decoding JSON value for %s: %s", recv, msg);
    }
    size_t len = b.len;
    uint8_t *p = sib_arena_memdup(c->arena, b.p ? b.p : (const uint8_t *)"", len);
    sib_buf_free(&b);
    if (!p) return oom(err);
    *out = val_of(p, len);
    return 0;
}

/* A term of the rewritten INSERT (arena). */
static prs_term *new_term(exec_ctx *c, prs_term_kind kind)
{
    prs_term *t = sib_arena_alloc(c->arena, sizeof(*t));
    if (t) memset(t, 0, sizeof(*t));
    if (t) t->kind = kind;
    return t;
}

/* fromJson('<the member's JSON text>') */
static prs_term *from_json_term(exec_ctx *c, const jv *v)
{
    prs_term *t = new_term(c, PRS_TERM_FUNC), *a = new_term(c, PRS_TERM_CONST);
    prs_term **args = sib_arena_alloc(c->arena, sizeof(*args));
    char *text = sib_arena_alloc(c->arena, v->srclen + 1);
    if (!t || !a || !args || !text) return NULL;
    memcpy(text, v->src, v->srclen);
    text[v->srclen] = 0;
    a->cst = (prs_const){PRS_CONST_STRING, text, v->srclen};
    args[0] = a;
    t->func.name = "fromjson";
    t->func.nargs = 1;
    t->func.args = args;
    return t;
}

int exec_json_insert(exec_ctx *c, const sch_table *t, const prs_insert *s, prs_insert *out, sib_err *err)
{
    sch_val text;
    bool unset;
    int rc = exec_term_value(c, s->json, sch_type_native(SCH_T_VARCHAR), "[json]", &text, &unset, err);
    if (rc) return rc;
    if (unset || text.len < 0) return sib_err_set(err, SIB_EINVAL, "Got null for INSERT JSON values");
    jv v;
    const char *why;
    if (!jparse(c, (const char *)text.p, (size_t)text.len, &v, &why) || v.k != JV_OBJ)
        return sib_err_set(err, SIB_EINVAL, "Could not decode JSON string as a map: %s",
                           v.k == JV_OBJ || !v.src ? why : "not a JSON object");
    size_t ncols = sch_table_column_count(t), cap = ncols + v.cnt + 1;
    *out = *s;
    out->json = NULL;
    out->ncols = out->nvalues = 0;
    out->cols = sib_arena_alloc(c->arena, sizeof(*out->cols) * cap);
    out->values = sib_arena_alloc(c->arena, sizeof(*out->values) * cap);
    bool *seen = sib_arena_alloc(c->arena, ncols + 1);
    if (!out->cols || !out->values || !seen) return oom(err);
    memset(seen, 0, ncols + 1);
    for (size_t i = 0; i < v.cnt; i++) {
        /* a quoted member name is the exact column name, else it is folded */
        const jv *k = &v.keys[i];
        char *name = sib_arena_alloc(c->arena, k->n + 1);
        if (!name) return oom(err);
        bool quoted = k->n >= 2 && k->s[0] == '"' && k->s[k->n - 1] == '"';
        size_t nl = quoted ? k->n - 2 : k->n;
        memcpy(name, k->s + (quoted ? 1 : 0), nl);
        name[nl] = 0;
        for (size_t j = 0; !quoted && j < nl; j++)
            if (name[j] >= 'A' && name[j] <= 'Z') name[j] = (char)(name[j] - 'A' + 'a');
        const sch_column *col = sch_table_column_by_name(t, name);
        if (!col) return sib_err_set(err, SIB_EINVAL, "JSON values map contains unrecognized column: %s", name);
        seen[col->index] = true;
        out->cols[out->ncols++] = col->name;
        if (!(out->values[out->nvalues++] = from_json_term(c, &v.items[i]))) return oom(err);
    }
    for (size_t i = 0; i < ncols && !s->json_default_unset; i++) { /* DEFAULT NULL: the rest is null */
        if (seen[i]) continue;
        out->cols[out->ncols++] = sch_table_column(t, i)->name;
        if (!(out->values[out->nvalues++] = new_term(c, PRS_TERM_NULL))) return oom(err);
    }
    return 0;
}
