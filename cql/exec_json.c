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
