/* value.c: validation, comparison, text formatting and collection helpers for
 * serialized values (native protocol encodings, docs/protocol.md section 9).
 *
 * Comparison follows Cassandra's AbstractType comparators (4.0):
 *   - an empty value sorts before every non-empty one (all types);
 *   - tinyint..bigint, counter, timestamp, time: signed; date: unsigned;
 *   - text/ascii/blob/inet: unsigned bytewise, shorter prefix first;
 *   - boolean: false < true (any non-zero byte is true);
 *   - float/double: Java Float.compare/Double.compare (-0 < +0, NaN largest);
 *   - varint/decimal: numeric (1.5 == 1.50);
 *   - uuid (UUIDType): version nibble, then the v1 timestamp (time_hi, mid,
 *     low) for v1 or the msb unsigned otherwise, then the lsb unsigned;
 *   - timeuuid (TimeUUIDType): timestamp, then the lsb as SIGNED bytes;
 *   - frozen list/set: element-wise, then size; frozen map: key, value, ...
 */
#define _GNU_SOURCE
#include "schema_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>

/* ---- collections ---- */

int sch_coll_iter_init(sch_coll_iter *it, const sch_type *t, const uint8_t *v, size_t len)
{
    memset(it, 0, sizeof *it);
    if (!sch_type_is_collection(t)) return SIB_EINVAL;
    it->is_map = t->code == SCH_T_MAP;
    sib_rd_init(&it->rd, v, len);
    if (len == 0) return 0;
    uint32_t n;
    if (!sib_rd_be32(&it->rd, &n) || (int32_t)n < 0) return SIB_ECORRUPT;
    it->left = n;
    return (int)SIB_MIN(n, (uint32_t)INT32_MAX);
}

static bool rd_value(sib_rd *r, sch_val *out)
{
    uint32_t n;
    if (!sib_rd_be32(r, &n)) return false;
    out->len = (int32_t)n;
    out->p = NULL;
    if (out->len < 0) return true;
    return sib_rd_bytes(r, n, &out->p);
}

bool sch_coll_next(sch_coll_iter *it, sch_val *key, sch_val *val)
{
    if (!it->left || it->rd.bad) return false;
    it->left--;
    sch_val dummy;
    if (!rd_value(&it->rd, key ? key : &dummy)) { it->rd.bad = true; return false; }
    if (it->is_map && !rd_value(&it->rd, val ? val : &dummy)) { it->rd.bad = true; return false; }
    return true;
}

typedef struct {
    const sch_type *kt;
    const sch_val *elems;
    size_t stride;
} sort_ctx;

static int cmp_idx(const void *a, const void *b, void *arg)
{
    const sort_ctx *c = arg;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const sch_val *x = &c->elems[i * c->stride], *y = &c->elems[j * c->stride];
    int r = sch_value_compare(c->kt, x->p, (size_t)x->len, y->p, (size_t)y->len);
    if (r) return r;
    return i < j ? -1 : i > j; /* stable */
}

int sch_coll_build(const sch_type *t, const sch_val *elems, size_t n, sib_buf *out, sib_err *err)
{
    if (!sch_type_is_collection(t)) return sib_err_set(err, SIB_EINVAL, "not a collection type");
    size_t stride = t->code == SCH_T_MAP ? 2 : 1;
    for (size_t i = 0; i < n * stride; i++)
        if (elems[i].len < 0) return sib_err_set(err, SIB_EINVAL, "null is not supported inside collections");
    if (n > INT32_MAX) return sib_err_set(err, SIB_ETOOBIG, "collection too large");
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx) return sib_err_set(err, SIB_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) idx[i] = i;
    size_t m = n;
    if (t->code != SCH_T_LIST && n > 1) {
        sort_ctx c = { t->sub[0], elems, stride };
        qsort_r(idx, n, sizeof *idx, cmp_idx, &c);
        /* keep the last of each run of equal keys */
        m = 0;
        for (size_t i = 0; i < n; i++) {
            const sch_val *x = &elems[idx[i] * stride];
            if (i + 1 < n) {
                const sch_val *y = &elems[idx[i + 1] * stride];
                if (!sch_value_compare(t->sub[0], x->p, (size_t)x->len, y->p, (size_t)y->len)) continue;
            }
            idx[m++] = idx[i];
        }
    }
    sib_buf_be32(out, (uint32_t)m);
    for (size_t i = 0; i < m; i++)
        for (size_t k = 0; k < stride; k++) {
            const sch_val *v = &elems[idx[i] * stride + k];
            sib_buf_be32(out, (uint32_t)v->len);
            sib_buf_append(out, v->p, (size_t)v->len);
        }
    free(idx);
    return out->oom ? sib_err_set(err, SIB_ENOMEM, "out of memory") : 0;
}

int sch_coll_normalize(const sch_type *t, const uint8_t *v, size_t len, sib_buf *out, sib_err *err)
{
    int rc = sch_value_validate(t, v, len, err);
    if (rc) return rc;
    sch_coll_iter it;
    int n = sch_coll_iter_init(&it, t, v, len);
    if (n < 0) return sib_err_set(err, SIB_EINVAL, "malformed collection");
    size_t stride = it.is_map ? 2 : 1;
    sch_val *e = malloc(((size_t)n * stride + 1) * sizeof *e);
    if (!e) return sib_err_set(err, SIB_ENOMEM, "out of memory");
    size_t i = 0;
    while (sch_coll_next(&it, &e[i * stride], it.is_map ? &e[i * stride + 1] : NULL)) i++;
    rc = sch_coll_build(t, e, i, out, err);
    free(e);
    return rc;
}

/* ---- validation ---- */

static int validate_coll(const sch_type *t, const uint8_t *v, size_t len, sib_err *err)
{
    const char *what = t->code == SCH_T_LIST ? "list" : t->code == SCH_T_SET ? "set" : "map";
    if (len == 0) return 0;
    sch_coll_iter it;
    int n = sch_coll_iter_init(&it, t, v, len);
    if (n < 0) return sib_err_set(err, SIB_EINVAL, "Not enough bytes to read a %s", what);
    sch_val k, val;
    uint32_t seen = 0;
    while (sch_coll_next(&it, &k, &val)) {
        seen++;
        if (k.len < 0 || (it.is_map && val.len < 0))
            return sib_err_set(err, SIB_EINVAL, "null is not supported inside collections");
        int rc = sch_value_validate(t->sub[0], k.p, (size_t)k.len, err);
        if (!rc && it.is_map) rc = sch_value_validate(t->sub[1], val.p, (size_t)val.len, err);
        if (rc) return rc;
    }
    if (it.rd.bad || seen != (uint32_t)n) return sib_err_set(err, SIB_EINVAL, "Not enough bytes to read a %s", what);
    if (sib_rd_left(&it.rd)) return sib_err_set(err, SIB_EINVAL, "Unexpected extraneous bytes after %s value", what);
    return 0;
}

static bool read_cvint(sib_rd *r, int64_t *out)
{
    uint8_t b;
    if (!sib_rd_u8(r, &b)) return false;
    int extra = __builtin_clz((unsigned)(uint8_t)~b << 24 | 0xFFFFFF);
    if (b == 0xFF) extra = 8;
    uint64_t v = extra >= 8 ? 0 : (uint64_t)(b & (0xFF >> extra));
    for (int i = 0; i < extra; i++) {
        uint8_t x;
        if (!sib_rd_u8(r, &x)) return false;
        v = v << 8 | x;
    }
    *out = zigzag_dec(v);
    return true;
}

int duration_decode(const uint8_t *v, size_t len, int64_t *mo, int64_t *d, int64_t *ns)
{
    sib_rd r;
    sib_rd_init(&r, v, len);
    if (!read_cvint(&r, mo) || !read_cvint(&r, d) || !read_cvint(&r, ns) || sib_rd_left(&r)) return SIB_EINVAL;
    return 0;
}

/* A tuple value is its elements as [bytes] one after the other; trailing
 * elements may be missing (Cassandra reads them as null). */
static int validate_tuple(const sch_type *t, const uint8_t *v, size_t len, sib_err *err)
{
    size_t off = 0;
    for (const sch_type *e = t; e && off < len; e = e->sub[1]) {
        if (len - off < 4) return sib_err_set(err, SIB_EINVAL, "Not enough bytes to read size of tuple element");
        int32_t n = (int32_t)get_be32(v + off);
        off += 4;
        if (n < 0) continue;
        if ((size_t)n > len - off) return sib_err_set(err, SIB_EINVAL, "Not enough bytes to read tuple element");
        int rc = sch_value_validate(e->sub[0], v + off, (size_t)n, err);
        if (rc) return rc;
        off += (size_t)n;
    }
    if (off != len) return sib_err_set(err, SIB_EINVAL, "Invalid remaining data after end of tuple value");
    return 0;
}

int sch_value_validate_typed(const sch_type *t, const uint8_t *v, size_t len, sib_err *err)
{
    int n = (int)SIB_MIN(len, (size_t)INT32_MAX);
    switch (t->code) {
    case SCH_T_INT:
        return len == 4 || !len ? 0 : sib_err_set(err, SIB_EINVAL, "Expected 4 or 0 byte int (%d)", n);
    case SCH_T_BIGINT: case SCH_T_COUNTER:
        return len == 8 || !len ? 0 : sib_err_set(err, SIB_EINVAL, "Expected 8 or 0 byte long (%d)", n);
    case SCH_T_SMALLINT:
        return len == 2 ? 0 : sib_err_set(err, SIB_EINVAL, "Expected 2 bytes for a smallint (%d)", n);
    case SCH_T_TINYINT:
        return len == 1 ? 0 : sib_err_set(err, SIB_EINVAL, "Expected 1 byte for a tinyint (%d)", n);
    case SCH_T_FLOAT:
        return len == 4 || !len ? 0 : sib_err_set(err, SIB_EINVAL, "Expected 4 or 0 byte value for a float (%d)", n);
    case SCH_T_DOUBLE:
        return len == 8 || !len ? 0 : sib_err_set(err, SIB_EINVAL, "Expected 8 or 0 byte value for a double (%d)", n);
    case SCH_T_BOOLEAN:
        return len == 1 || !len ? 0 : sib_err_set(err, SIB_EINVAL, "Expected 1 or 0 byte value (%d)", n);
    case SCH_T_TIMESTAMP:
        return len == 8 || !len ? 0 : sib_err_set(err, SIB_EINVAL, "Expected 8 or 0 byte long for date (%d)", n);
    case SCH_T_DATE:
        return len == 4 || !len ? 0 : sib_err_set(err, SIB_EINVAL, "Expected 4 byte long for date (%d)", n);
    case SCH_T_TIME:
        if (!len) return 0;
        if (len != 8) return sib_err_set(err, SIB_EINVAL, "Expected 8 byte long for time (%d)", n);
        if ((int64_t)get_be64(v) < 0 || (int64_t)get_be64(v) >= 86400000000000LL)
            return sib_err_set(err, SIB_EINVAL, "Time value out of range: %lld", (long long)(int64_t)get_be64(v));
        return 0;
    case SCH_T_UUID:
        return len == 16 || !len ? 0 : sib_err_set(err, SIB_EINVAL, "UUID should be 16 or 0 bytes (%d)", n);
    case SCH_T_TIMEUUID:
        if (len != 16 && len) return sib_err_set(err, SIB_EINVAL, "TimeUUID should be 16 or 0 bytes (%d)", n);
        if (len && (v[6] & 0xF0) != 0x10) return sib_err_set(err, SIB_EINVAL, "Invalid version for TimeUUID type.");
        return 0;
    case SCH_T_INET:
        return len == 4 || len == 16 || !len
                   ? 0 : sib_err_set(err, SIB_EINVAL, "Expected 4 or 16 byte inetaddress; got %d bytes", n);
    case SCH_T_VARCHAR:
        return sch_utf8_valid(v, len) ? 0 : sib_err_set(err, SIB_EINVAL, "String didn't validate.");
    case SCH_T_ASCII:
        for (size_t i = 0; i < len; i++)
            if (v[i] > 127) return sib_err_set(err, SIB_EINVAL, "Invalid byte for ascii: %d", (int)(int8_t)v[i]);
        return 0;
    case SCH_T_BLOB: case SCH_T_VARINT: return 0;
    case SCH_T_DECIMAL:
        return !len || len >= 4 ? 0 : sib_err_set(err, SIB_EINVAL, "Expected 0 or at least 4 bytes (%d)", n);
    case SCH_T_DURATION: {
        if (!len) return 0;
        if (len < 3) return sib_err_set(err, SIB_EINVAL, "Expected at least 3 bytes for a duration (%d)", n);
        int64_t mo, d, ns;
        if (duration_decode(v, len, &mo, &d, &ns) || mo < INT32_MIN || mo > INT32_MAX || d < INT32_MIN || d > INT32_MAX)
            return sib_err_set(err, SIB_EINVAL, "Invalid duration value");
        if ((mo < 0 || d < 0 || ns < 0) && (mo > 0 || d > 0 || ns > 0))
            return sib_err_set(err, SIB_EINVAL,
                               "The duration months, days and nanoseconds must be all of the same sign (%lld, %lld, %lld)",
                               (long long)mo, (long long)d, (long long)ns);
        return 0;
    }
    case SCH_T_LIST: case SCH_T_SET: case SCH_T_MAP: return validate_coll(t, v, len, err);
    case SCH_T_TUPLE: return validate_tuple(t, v, len, err);
    default: return sib_err_set(err, SIB_EINVAL, "Unsupported type code 0x%04x", (unsigned)t->code);
    }
}

/* ---- comparison ---- */

static int cmp_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = SIB_MIN(alen, blen);
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

static int cmp_i64(int64_t x, int64_t y) { return x < y ? -1 : x > y; }
static int cmp_u64(uint64_t x, uint64_t y) { return x < y ? -1 : x > y; }

/* Java floatToIntBits/doubleToLongBits order: canonical NaN, then the sign trick. */
uint32_t float_key(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, 4);
    if (isnan(f)) bits = 0x7fc00000u;
    return bits & 0x80000000u ? ~bits : bits | 0x80000000u;
}

uint64_t double_key(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, 8);
    if (isnan(d)) bits = 0x7ff8000000000000ull;
    return bits & 0x8000000000000000ull ? ~bits : bits | 0x8000000000000000ull;
}

/* Reordered v1 timestamp (time_hi incl. version, time_mid, time_low). */
uint64_t uuid_ts_key(const uint8_t *u)
{
    return (uint64_t)u[6] << 56 | (uint64_t)u[7] << 48 | (uint64_t)u[4] << 40 | (uint64_t)u[5] << 32 |
           (uint64_t)get_be32(u);
}

static int cmp_coll(const sch_type *t, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    sch_coll_iter ia, ib;
    int na = sch_coll_iter_init(&ia, t, a, alen), nb = sch_coll_iter_init(&ib, t, b, blen);
    if (na < 0 || nb < 0) return cmp_bytes(a, alen, b, blen);
    sch_val ka, va, kb, vb;
    for (;;) {
        bool ha = sch_coll_next(&ia, &ka, &va), hb = sch_coll_next(&ib, &kb, &vb);
        if (!ha || !hb) return ha ? 1 : hb ? -1 : 0;
        int c = sch_value_compare(t->sub[0], ka.p, (size_t)SIB_MAX(ka.len, 0), kb.p, (size_t)SIB_MAX(kb.len, 0));
        if (!c && ia.is_map)
            c = sch_value_compare(t->sub[1], va.p, (size_t)SIB_MAX(va.len, 0), vb.p, (size_t)SIB_MAX(vb.len, 0));
        if (c) return c;
    }
}

int sch_value_compare(const sch_type *t, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (!alen || !blen) return alen ? 1 : blen ? -1 : 0;
    size_t fixed = sch_type_fixed_len(t);
    if (fixed && (alen != fixed || blen != fixed)) return cmp_bytes(a, alen, b, blen); /* invalid: any total order */
    switch (t->code) {
    case SCH_T_TINYINT: return cmp_i64((int8_t)a[0], (int8_t)b[0]);
    case SCH_T_SMALLINT: return cmp_i64((int16_t)get_be16(a), (int16_t)get_be16(b));
    case SCH_T_INT: return cmp_i64((int32_t)get_be32(a), (int32_t)get_be32(b));
    case SCH_T_BIGINT: case SCH_T_COUNTER: case SCH_T_TIMESTAMP: case SCH_T_TIME:
        return cmp_i64((int64_t)get_be64(a), (int64_t)get_be64(b));
    case SCH_T_DATE: return cmp_u64(get_be32(a), get_be32(b));
    case SCH_T_BOOLEAN: return cmp_i64(a[0] != 0, b[0] != 0);
    case SCH_T_FLOAT: return cmp_u64(float_key(get_be32(a)), float_key(get_be32(b)));
    case SCH_T_DOUBLE: return cmp_u64(double_key(get_be64(a)), double_key(get_be64(b)));
    case SCH_T_VARINT: return big_compare(a, alen, b, blen);
    case SCH_T_DECIMAL: return decimal_compare(a, alen, b, blen);
    case SCH_T_UUID: {
        int va = a[6] >> 4, vb = b[6] >> 4;
        if (va != vb) return va < vb ? -1 : 1;
        int c = va == 1 ? cmp_u64(uuid_ts_key(a), uuid_ts_key(b)) : cmp_u64(get_be64(a), get_be64(b));
        return c ? c : cmp_u64(get_be64(a + 8), get_be64(b + 8));
    }
    case SCH_T_TIMEUUID: {
        int c = cmp_i64((int64_t)uuid_ts_key(a), (int64_t)uuid_ts_key(b));
        for (int i = 8; !c && i < 16; i++) c = cmp_i64((int8_t)a[i], (int8_t)b[i]);
        return c;
    }
    case SCH_T_LIST: case SCH_T_SET: case SCH_T_MAP: return cmp_coll(t, a, alen, b, blen);
    default: return cmp_bytes(a, alen, b, blen);
    }
}

/* ---- formatting ---- */

static void fmt_hex(const uint8_t *v, size_t len, sib_buf *out)
{
    static const char hx[] = "0123456789abcdef";
    sib_buf_append(out, "0x", 2);
    uint8_t *d = sib_buf_reserve(out, len * 2);
    if (!d) return;
    for (size_t i = 0; i < len; i++) {
        d[2 * i] = (uint8_t)hx[v[i] >> 4];
        d[2 * i + 1] = (uint8_t)hx[v[i] & 15];
    }
    out->len += len * 2;
}

/* cqlsh format_floating_point_type: %g with precision widened by the exponent. */
static void fmt_floating(double x, int precision, sib_buf *out)
{
    if (isnan(x)) { sib_buf_append(out, "NaN", 3); return; }
    if (isinf(x)) { sib_buf_printf(out, "%s", x > 0 ? "Infinity" : "-Infinity"); return; }
    /* Python's int() truncates toward zero, as the C cast does */
    int exponent = fabs(x) > 2.220446049250313e-16 ? (int)log10(fabs(x)) : -1000000;
    if (exponent >= -4 && exponent < precision) precision = precision + exponent + 1;
    sib_buf_printf(out, "%.*g", precision, x);
}

/* Shown as cqlsh shows it (microseconds, +0000); as a CQL literal in
 * Cassandra's toCQLLiteral form, '1970-01-01T00:00:00.000Z', which reads
 * back (a literal's SSS counts milliseconds: six digits would not). */
static void fmt_timestamp(int64_t ms, bool cql, sib_buf *out)
{
    int64_t secs = ms / 1000, rem = ms % 1000;
    if (rem < 0) rem += 1000, secs--;
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) sod += 86400, days--;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (cql)
        sib_buf_printf(out, "'%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ'", (long long)y, m, d, (int)(sod / 3600),
                       (int)(sod / 60 % 60), (int)(sod % 60), (int)rem);
    else
        sib_buf_printf(out, "%04lld-%02u-%02u %02d:%02d:%02d.%06d+0000", (long long)y, m, d, (int)(sod / 3600),
                       (int)(sod / 60 % 60), (int)(sod % 60), (int)rem * 1000);
}

static void fmt_duration(const uint8_t *v, size_t len, sib_buf *out)
{
    int64_t mo, d, ns;
    if (duration_decode(v, len, &mo, &d, &ns)) { sib_buf_printf(out, "<invalid duration>"); return; }
    if (mo < 0 || d < 0 || ns < 0) sib_buf_u8(out, '-');
    uint64_t um = (uint64_t)(mo < 0 ? -mo : mo), ud = (uint64_t)(d < 0 ? -d : d);
    uint64_t un = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    if (um / 12) sib_buf_printf(out, "%lluy", (unsigned long long)(um / 12));
    if (um % 12) sib_buf_printf(out, "%llumo", (unsigned long long)(um % 12));
    if (ud) sib_buf_printf(out, "%llud", (unsigned long long)ud);
    static const struct { uint64_t div; const char *u; } parts[] = {
        { 3600000000000ull, "h" }, { 60000000000ull, "m" }, { 1000000000ull, "s" },
        { 1000000ull, "ms" }, { 1000ull, "us" }, { 1ull, "ns" },
    };
    for (size_t i = 0; i < SIB_ARRAY_LEN(parts); i++) {
        if (un / parts[i].div) sib_buf_printf(out, "%llu%s", (unsigned long long)(un / parts[i].div), parts[i].u);
        un %= parts[i].div;
    }
    if (!um && !ud && !ns) sib_buf_append(out, "0s", 2);
}

static void fmt_coll(const sch_type *t, const uint8_t *v, size_t len, sib_buf *out)
{
    sch_coll_iter it;
    if (sch_coll_iter_init(&it, t, v, len) < 0) { sib_buf_printf(out, "<invalid collection>"); return; }
    sib_buf_u8(out, t->code == SCH_T_LIST ? '[' : '{');
    sch_val k, val;
    bool first = true;
    while (sch_coll_next(&it, &k, &val)) {
        if (!first) sib_buf_append(out, ", ", 2);
        first = false;
        sch_value_format_cql(t->sub[0], k.p, (size_t)SIB_MAX(k.len, 0), out);
        if (it.is_map) {
            sib_buf_append(out, ": ", 2);
            sch_value_format_cql(t->sub[1], val.p, (size_t)SIB_MAX(val.len, 0), out);
        }
    }
    sib_buf_u8(out, t->code == SCH_T_LIST ? ']' : '}');
}

static void format_any(const sch_type *t, const uint8_t *v, size_t len, bool cql, sib_buf *out)
{
    size_t fixed = sch_type_fixed_len(t);
    if (!len && t->code != SCH_T_VARCHAR && t->code != SCH_T_ASCII && t->code != SCH_T_BLOB &&
        !sch_type_is_collection(t)) {
        return; /* empty value prints as nothing */
    }
    if (fixed && len != fixed) { sib_buf_printf(out, "<invalid %s>", sch_type_native_name(t->code)); return; }
    switch (t->code) {
    case SCH_T_TINYINT: sib_buf_printf(out, "%d", (int)(int8_t)v[0]); break;
    case SCH_T_SMALLINT: sib_buf_printf(out, "%d", (int)(int16_t)get_be16(v)); break;
    case SCH_T_INT: sib_buf_printf(out, "%d", (int)(int32_t)get_be32(v)); break;
    case SCH_T_BIGINT: case SCH_T_COUNTER: sib_buf_printf(out, "%lld", (long long)(int64_t)get_be64(v)); break;
    case SCH_T_BOOLEAN: sib_buf_printf(out, "%s", cql ? (v[0] ? "true" : "false") : (v[0] ? "True" : "False")); break;
    case SCH_T_FLOAT: case SCH_T_DOUBLE: {
        double x;
        if (t->code == SCH_T_FLOAT) {
            uint32_t bits = get_be32(v);
            float f;
            memcpy(&f, &bits, 4);
            x = f;
        } else {
            uint64_t bits = get_be64(v);
            memcpy(&x, &bits, 8);
        }
        if (cql && isfinite(x)) {
            /* shortest text that reads back to the same value */
            for (int p = 1; p <= 17; p++) {
                char tmp[64];
                snprintf(tmp, sizeof tmp, "%.*g", p, x);
                bool same = t->code == SCH_T_FLOAT ? strtof(tmp, NULL) == (float)x : strtod(tmp, NULL) == x;
                if (same || p == 17) { sib_buf_printf(out, "%s", tmp); break; }
            }
        } else fmt_floating(x, t->code == SCH_T_FLOAT ? 5 : 12, out);
        break;
    }
    case SCH_T_VARINT: {
        bool neg;
        sib_buf d;
        sib_buf_init(&d);
        big_to_digits(v, len, &d, &neg);
        if (neg) sib_buf_u8(out, '-');
        sib_buf_append(out, d.p, d.len);
        sib_buf_free(&d);
        break;
    }
    case SCH_T_DECIMAL:
        if (len < 4) sib_buf_printf(out, "<invalid decimal>");
        else decimal_format(v, len, out);
        break;
    case SCH_T_UUID: case SCH_T_TIMEUUID: {
        char s[37];
        sib_uuid_format(v, s);
        sib_buf_append(out, s, 36);
        break;
    }
    case SCH_T_BLOB: fmt_hex(v, len, out); break;
    case SCH_T_VARCHAR: case SCH_T_ASCII:
        if (!cql) { sib_buf_append(out, v, len); break; }
        sib_buf_u8(out, '\'');
        for (size_t i = 0; i < len; i++) {
            if (v[i] == '\'') sib_buf_u8(out, '\'');
            sib_buf_u8(out, v[i]);
        }
        sib_buf_u8(out, '\'');
        break;
    case SCH_T_TIMESTAMP:
        fmt_timestamp((int64_t)get_be64(v), cql, out);
        break;
    case SCH_T_DATE: {
        int64_t y;
        unsigned m, d;
        civil_from_days((int64_t)get_be32(v) - 2147483648LL, &y, &m, &d);
        sib_buf_printf(out, cql ? "'%04lld-%02u-%02u'" : "%04lld-%02u-%02u", (long long)y, m, d);
        break;
    }
    case SCH_T_TIME: {
        int64_t ns = (int64_t)get_be64(v);
        if (ns < 0 || ns >= 86400000000000LL) { sib_buf_printf(out, "%lld", (long long)ns); break; }
        int64_t s = ns / 1000000000LL;
        sib_buf_printf(out, cql ? "'%02d:%02d:%02d.%09lld'" : "%02d:%02d:%02d.%09lld", (int)(s / 3600),
                       (int)(s / 60 % 60), (int)(s % 60), (long long)(ns % 1000000000LL));
        break;
    }
    case SCH_T_INET: {
        char s[INET6_ADDRSTRLEN];
        if ((len != 4 && len != 16) || !inet_ntop(len == 4 ? AF_INET : AF_INET6, v, s, sizeof s)) {
            sib_buf_printf(out, "<invalid inet>");
            break;
        }
        sib_buf_printf(out, cql ? "'%s'" : "%s", s);
        break;
    }
    case SCH_T_DURATION: fmt_duration(v, len, out); break;
    case SCH_T_LIST: case SCH_T_SET: case SCH_T_MAP: fmt_coll(t, v, len, out); break;
    default: fmt_hex(v, len, out); break;
    }
}

void sch_value_format(const sch_type *t, const uint8_t *v, size_t len, sib_buf *out) { format_any(t, v, len, false, out); }

void sch_value_format_cql(const sch_type *t, const uint8_t *v, size_t len, sib_buf *out)
{
    format_any(t, v, len, true, out);
}
