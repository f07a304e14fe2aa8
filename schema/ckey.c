/* ckey.c: partition key composition and byte-comparable clustering keys.
 *
 * Clustering key = concatenation of per-column components; each component
 * is prefix-free, so memcmp over the concatenation orders by column 1, then
 * column 2, ... exactly as Cassandra's ClusteringComparator. Components (ASC):
 *
 *   type                     encoding
 *   tinyint/smallint/int/    big-endian with the sign bit flipped
 *     bigint/timestamp/time
 *   date                     4 bytes as is (unsigned)
 *   boolean                  1 byte, 0x00 / 0x01
 *   float/double             IEEE bits: negative -> all bits inverted,
 *                            positive -> sign bit set; NaN canonicalized
 *   uuid                     17 bytes: version, then (v1) time_hi time_mid
 *                            time_low or (other) bytes 0-7, then bytes 8-15
 *   timeuuid                 16 bytes: time_hi time_mid time_low, then bytes
 *                            8-15 each XOR 0x80 (Cassandra compares them signed)
 *   text/ascii/blob/inet/    bytes, 0x00 -> 0x00 0xFF, then 0x00 0x00
 *     duration
 *   varint                   0x00 empty | 0x01 negative | 0x02 zero | 0x03
 *                            positive; then (non-zero) be32 n (negatives: ~n)
 *                            and the n-byte minimal two's complement
 *   decimal                  0x00 empty | 0x01 negative | 0x02 zero | 0x03
 *                            positive; then be64 of the adjusted exponent E
 *                            (sign bit flipped; negatives inverted) and the
 *                            significant digits (ASCII, trailing zeros
 *                            stripped; negatives: each byte inverted) closed
 *                            by 0x00 (negatives 0xFF). Value = 0.D x 10^E.
 *   frozen list/set/map      0x00 empty value | 0x01, then per element 0x01 +
 *                            component(elem) (maps: key then value), then 0x00
 *
 * DESC columns: every byte of the component inverted. Fixed-width types
 * reject empty values (they have no place in the order above).
 */
#include "schema_int.h"

#include <stdlib.h>

static const char *col_label(const char *c) { return c ? c : "?"; }

static int enc_comp(const sch_type *t, const uint8_t *v, size_t len, const char *col, sib_buf *out, sib_err *err);

static void enc_escaped(const uint8_t *v, size_t len, sib_buf *out)
{
    for (size_t i = 0; i < len; i++) {
        sib_buf_u8(out, v[i]);
        if (!v[i]) sib_buf_u8(out, 0xFF);
    }
    sib_buf_u8(out, 0);
    sib_buf_u8(out, 0);
}

static void enc_varint(const uint8_t *v, size_t len, sib_buf *out)
{
    if (!len) { sib_buf_u8(out, 0x00); return; }
    int s = big_sign(v, len);
    /* strip redundant sign bytes so equal values encode equally */
    while (len > 1 && ((v[0] == 0 && !(v[1] & 0x80)) || (v[0] == 0xFF && (v[1] & 0x80)))) v++, len--;
    if (!s) { sib_buf_u8(out, 0x02); return; }
    sib_buf_u8(out, s < 0 ? 0x01 : 0x03);
    sib_buf_be32(out, s < 0 ? ~(uint32_t)len : (uint32_t)len);
    sib_buf_append(out, v, len);
}

static int enc_decimal(const uint8_t *v, size_t len, sib_buf *out, sib_err *err)
{
    if (!len) { sib_buf_u8(out, 0x00); return 0; }
    sib_buf d;
    sib_buf_init(&d);
    int sign;
    int64_t e;
    int rc = decimal_norm(v, len, &sign, &e, &d);
    if (rc) { sib_buf_free(&d); return sib_err_set(err, rc, "invalid decimal value"); }
    if (!sign) sib_buf_u8(out, 0x02);
    else {
        uint64_t ek = (uint64_t)e ^ 0x8000000000000000ull;
        sib_buf_u8(out, sign < 0 ? 0x01 : 0x03);
        sib_buf_be64(out, sign < 0 ? ~ek : ek);
        for (size_t i = 0; i < d.len; i++) sib_buf_u8(out, sign < 0 ? (uint8_t)~d.p[i] : d.p[i]);
        sib_buf_u8(out, sign < 0 ? 0xFF : 0x00);
    }
    sib_buf_free(&d);
    return 0;
}

static int enc_coll(const sch_type *t, const uint8_t *v, size_t len, const char *col, sib_buf *out, sib_err *err)
{
    if (!len) { sib_buf_u8(out, 0x00); return 0; }
    sch_coll_iter it;
    if (sch_coll_iter_init(&it, t, v, len) < 0) return sib_err_set(err, SIB_EINVAL, "malformed collection value");
    sib_buf_u8(out, 0x01);
    sch_val k, val;
    while (sch_coll_next(&it, &k, &val)) {
        if (k.len < 0 || (it.is_map && val.len < 0))
            return sib_err_set(err, SIB_EINVAL, "null is not supported inside collections");
        sib_buf_u8(out, 0x01);
        int rc = enc_comp(t->sub[0], k.p, (size_t)k.len, col, out, err);
        if (!rc && it.is_map) rc = enc_comp(t->sub[1], val.p, (size_t)val.len, col, out, err);
        if (rc) return rc;
    }
    if (it.rd.bad) return sib_err_set(err, SIB_EINVAL, "malformed collection value");
    sib_buf_u8(out, 0x00);
    return 0;
}

static int enc_comp(const sch_type *t, const uint8_t *v, size_t len, const char *col, sib_buf *out, sib_err *err)
{
    size_t fixed = sch_type_fixed_len(t);
    if (fixed && len != fixed) {
        sib_buf tn;
        sib_buf_init(&tn);
        sch_type_cql_name(t, &tn);
        int rc = sib_err_set(err, SIB_EINVAL, "Invalid %s value for clustering column %s of type %.*s",
                             len ? "malformed" : "empty", col_label(col), (int)tn.len, tn.p ? (char *)tn.p : "");
        sib_buf_free(&tn);
        return rc;
    }
    switch (t->code) {
    case SCH_T_TINYINT: sib_buf_u8(out, v[0] ^ 0x80); break;
    case SCH_T_SMALLINT: sib_buf_be16(out, get_be16(v) ^ 0x8000); break;
    case SCH_T_INT: sib_buf_be32(out, get_be32(v) ^ 0x80000000u); break;
    case SCH_T_BIGINT: case SCH_T_COUNTER: case SCH_T_TIMESTAMP: case SCH_T_TIME:
        sib_buf_be64(out, get_be64(v) ^ 0x8000000000000000ull);
        break;
    case SCH_T_DATE: sib_buf_append(out, v, 4); break;
    case SCH_T_BOOLEAN: sib_buf_u8(out, v[0] != 0); break;
    case SCH_T_FLOAT: sib_buf_be32(out, float_key(get_be32(v))); break;
    case SCH_T_DOUBLE: sib_buf_be64(out, double_key(get_be64(v))); break;
    case SCH_T_UUID: {
        int ver = v[6] >> 4;
        sib_buf_u8(out, (uint8_t)ver);
        if (ver == 1) sib_buf_be64(out, uuid_ts_key(v));
        else sib_buf_append(out, v, 8);
        sib_buf_append(out, v + 8, 8);
        break;
    }
    case SCH_T_TIMEUUID:
        sib_buf_be64(out, uuid_ts_key(v));
        for (int i = 8; i < 16; i++) sib_buf_u8(out, v[i] ^ 0x80);
        break;
    case SCH_T_VARINT: enc_varint(v, len, out); break;
    case SCH_T_DECIMAL: return enc_decimal(v, len, out, err);
    case SCH_T_LIST: case SCH_T_SET: case SCH_T_MAP: return enc_coll(t, v, len, col, out, err);
    default: enc_escaped(v, len, out); break;
    }
    return 0;
}

int sch_ck_encode_component(const sch_type *type, bool desc, const uint8_t *v, size_t len, sib_buf *out,
                            sib_err *err)
{
    size_t mark = out->len;
    int rc = enc_comp(type, v, len, NULL, out, err);
    if (!rc && out->oom) rc = sib_err_set(err, SIB_ENOMEM, "out of memory");
    if (rc) { out->len = mark; return rc; }
    if (desc)
        for (size_t i = mark; i < out->len; i++) out->p[i] = (uint8_t)~out->p[i];
    return 0;
}

int sch_ck_encode(const sch_table *t, const uint8_t *const vals[], const size_t lens[], size_t nvals, sib_buf *out,
                  sib_err *err)
{
    if (nvals > t->nck)
        return sib_err_set(err, SIB_EINVAL, "too many clustering values (%zu > %zu)", nvals, t->nck);
    size_t mark = out->len;
    for (size_t i = 0; i < nvals; i++) {
        const sch_column *c = &t->cols[t->npk + i];
        int rc;
        if (!vals[i]) rc = sib_err_set(err, SIB_EINVAL, "Invalid null value for clustering key part %s", c->name);
        else rc = sch_value_validate(c->type, vals[i], lens[i], err);
        size_t cm = out->len;
        if (!rc) rc = enc_comp(c->type, vals[i], lens[i], c->name, out, err);
        if (!rc && out->oom) rc = sib_err_set(err, SIB_ENOMEM, "out of memory");
        if (rc) { out->len = mark; return rc; }
        if (c->order == SCH_ORDER_DESC)
            for (size_t k = cm; k < out->len; k++) out->p[k] = (uint8_t)~out->p[k];
    }
    return 0;
}

/* ---- decoding: a reader that undoes the DESC inversion on the fly ---- */

typedef struct {
    const uint8_t *p, *end;
    uint8_t x;
} crd;

static bool crd_u8(crd *r, uint8_t *b)
{
    if (r->p >= r->end) return false;
    *b = *r->p++ ^ r->x;
    return true;
}

static bool crd_n(crd *r, size_t n, uint8_t *dst)
{
    if ((size_t)(r->end - r->p) < n) return false;
    for (size_t i = 0; i < n; i++) dst[i] = r->p[i] ^ r->x;
    r->p += n;
    return true;
}

static bool dec_comp(const sch_type *t, crd *r, sib_buf *out, int depth);

static bool dec_escaped(crd *r, sib_buf *out)
{
    for (;;) {
        uint8_t b, n;
        if (!crd_u8(r, &b)) return false;
        if (b) { sib_buf_u8(out, b); continue; }
        if (!crd_u8(r, &n)) return false;
        if (n == 0x00) return true;
        if (n != 0xFF) return false;
        sib_buf_u8(out, 0);
    }
}

static bool dec_varint(crd *r, sib_buf *out)
{
    uint8_t m, lb[4];
    if (!crd_u8(r, &m)) return false;
    if (m == 0x00) return true;
    if (m == 0x02) { sib_buf_u8(out, 0); return true; }
    if (m != 0x01 && m != 0x03) return false;
    if (!crd_n(r, 4, lb)) return false;
    uint32_t n = get_be32(lb);
    if (m == 0x01) n = ~n;
    if (!n || n > (size_t)(r->end - r->p)) return false;
    uint8_t *d = sib_buf_reserve(out, n);
    if (!d || !crd_n(r, n, d)) return false;
    out->len += n;
    return true;
}

static bool dec_decimal(crd *r, sib_buf *out)
{
    uint8_t m, eb[8];
    if (!crd_u8(r, &m)) return false;
    if (m == 0x00) return true;
    if (m == 0x02) { sib_buf_be32(out, 0); sib_buf_u8(out, 0); return true; }
    if (m != 0x01 && m != 0x03) return false;
    bool neg = m == 0x01;
    if (!crd_n(r, 8, eb)) return false;
    uint64_t ek = get_be64(eb);
    if (neg) ek = ~ek;
    int64_t e = (int64_t)(ek ^ 0x8000000000000000ull);
    sib_buf digits;
    sib_buf_init(&digits);
    bool ok = false;
    for (;;) {
        uint8_t b;
        if (!crd_u8(r, &b)) goto out;
        if (neg) b = (uint8_t)~b;
        if (!b) break;
        if (b < '0' || b > '9') goto out;
        sib_buf_u8(&digits, b);
    }
    int64_t scale = (int64_t)digits.len - e;
    if (!digits.len || scale < INT32_MIN || scale > INT32_MAX) goto out;
    sib_buf_be32(out, (uint32_t)(int32_t)scale);
    ok = big_from_digits((const char *)digits.p, digits.len, neg, out) == 0;
out:
    sib_buf_free(&digits);
    return ok;
}

static bool dec_coll(const sch_type *t, crd *r, sib_buf *out, int depth)
{
    uint8_t m;
    if (!crd_u8(r, &m)) return false;
    if (m == 0x00) return true;
    if (m != 0x01) return false;
    size_t count_at = out->len;
    sib_buf_be32(out, 0);
    uint32_t n = 0;
    sib_buf tmp;
    sib_buf_init(&tmp);
    bool ok = true;
    for (;;) {
        if (!crd_u8(r, &m) || (m != 0x00 && m != 0x01)) { ok = false; break; }
        if (m == 0x00) break;
        for (int k = 0; k < (t->code == SCH_T_MAP ? 2 : 1) && ok; k++) {
            sib_buf_reset(&tmp);
            ok = dec_comp(t->sub[k], r, &tmp, depth + 1);
            if (ok) {
                sib_buf_be32(out, (uint32_t)tmp.len);
                sib_buf_append(out, tmp.p, tmp.len);
            }
        }
        if (!ok) break;
        n++;
    }
    sib_buf_free(&tmp);
    if (ok && !out->oom) put_be32(out->p + count_at, n);
    return ok && !out->oom;
}

static bool dec_comp(const sch_type *t, crd *r, sib_buf *out, int depth)
{
    if (depth > 32) return false;
    size_t fixed = sch_type_fixed_len(t);
    uint8_t b[16];
    if (fixed && t->code != SCH_T_UUID && t->code != SCH_T_TIMEUUID && !crd_n(r, fixed, b)) return false;
    switch (t->code) {
    case SCH_T_TINYINT: sib_buf_u8(out, b[0] ^ 0x80); break;
    case SCH_T_SMALLINT: sib_buf_be16(out, get_be16(b) ^ 0x8000); break;
    case SCH_T_INT: sib_buf_be32(out, get_be32(b) ^ 0x80000000u); break;
    case SCH_T_BIGINT: case SCH_T_COUNTER: case SCH_T_TIMESTAMP: case SCH_T_TIME:
        sib_buf_be64(out, get_be64(b) ^ 0x8000000000000000ull);
        break;
    case SCH_T_DATE: sib_buf_append(out, b, 4); break;
    case SCH_T_BOOLEAN:
        if (b[0] > 1) return false;
        sib_buf_u8(out, b[0]);
        break;
    case SCH_T_FLOAT: {
        uint32_t k = get_be32(b);
        sib_buf_be32(out, k & 0x80000000u ? k ^ 0x80000000u : ~k);
        break;
    }
    case SCH_T_DOUBLE: {
        uint64_t k = get_be64(b);
        sib_buf_be64(out, k & 0x8000000000000000ull ? k ^ 0x8000000000000000ull : ~k);
        break;
    }
    case SCH_T_UUID: case SCH_T_TIMEUUID: {
        uint8_t ver = 1, u[16];
        if (t->code == SCH_T_UUID && (!crd_u8(r, &ver) || ver > 15)) return false;
        if (!crd_n(r, 16, b)) return false;
        if (ver == 1) {
            /* b[0..8) = time_hi(2) time_mid(2) time_low(4) */
            u[6] = b[0], u[7] = b[1], u[4] = b[2], u[5] = b[3];
            memcpy(u, b + 4, 4);
        } else memcpy(u, b, 8);
        for (int i = 8; i < 16; i++) u[i] = t->code == SCH_T_TIMEUUID ? b[i] ^ 0x80 : b[i];
        if ((u[6] >> 4) != ver) return false;
        sib_buf_append(out, u, 16);
        break;
    }
    case SCH_T_VARINT: return dec_varint(r, out);
    case SCH_T_DECIMAL: return dec_decimal(r, out);
    case SCH_T_LIST: case SCH_T_SET: case SCH_T_MAP: return dec_coll(t, r, out, depth);
    default: return dec_escaped(r, out);
    }
    return true;
}

int sch_ck_decode(const sch_table *t, const uint8_t *ck, size_t len, sib_buf vals[], size_t *nvals, sib_err *err)
{
    crd r = { ck, ck + len, 0 };
    size_t i = 0;
    *nvals = 0;
    while (r.p < r.end) {
        if (i >= t->nck) return sib_err_set(err, SIB_ECORRUPT, "clustering key has more than %zu components", t->nck);
        const sch_column *c = &t->cols[t->npk + i];
        sib_buf_reset(&vals[i]);
        r.x = c->order == SCH_ORDER_DESC ? 0xFF : 0x00;
        if (!dec_comp(c->type, &r, &vals[i], 0))
            return sib_err_set(err, SIB_ECORRUPT, "malformed clustering key component %zu (%s)", i, c->name);
        if (vals[i].oom) return sib_err_set(err, SIB_ENOMEM, "out of memory");
        i++;
    }
    *nvals = i;
    return 0;
}

bool sch_ck_successor(sib_buf *b)
{
    while (b->len && b->p[b->len - 1] == 0xFF) b->len--;
    if (!b->len) return false;
    b->p[b->len - 1]++;
    return true;
}

/* ---- partition keys ---- */

int sch_pk_encode_view(const sch_table *t, const uint8_t *const vals[], const size_t lens[], size_t n, bool checked,
                       sib_buf *out, sch_val *key, sib_err *err)
{
    if (n != t->npk) return sib_err_set(err, SIB_EINVAL, "expected %zu partition key values, got %zu", t->npk, n);
    for (size_t i = 0; i < n; i++) {
        const sch_column *c = &t->cols[i];
        if (!vals[i]) return sib_err_set(err, SIB_EINVAL, "Invalid null value for partition key part %s", c->name);
        int rc = checked ? 0 : sch_value_validate(c->type, vals[i], lens[i], err);
        if (rc) return rc;
        if (lens[i] > 65535)
            return sib_err_set(err, SIB_EINVAL, "Key length of %zu is longer than maximum of 65535", lens[i]);
    }
    if (n == 1) {
        if (!lens[0]) return sib_err_set(err, SIB_EINVAL, "Key may not be empty");
        *key = (sch_val){vals[0], (int32_t)lens[0]};
        return 0;
    }
    size_t total = 0, mark = out->len;
    for (size_t i = 0; i < n; i++) total += lens[i] + 3;
    if (total > 65535) return sib_err_set(err, SIB_EINVAL, "Key length of %zu is longer than maximum of 65535", total);
    for (size_t i = 0; i < n; i++) {
        sib_buf_be16(out, (uint16_t)lens[i]);
        sib_buf_append(out, vals[i], lens[i]);
        sib_buf_u8(out, 0);
    }
    if (out->oom) return sib_err_set(err, SIB_ENOMEM, "out of memory");
    *key = (sch_val){out->p + mark, (int32_t)total};
    return 0;
}

int sch_pk_encode(const sch_table *t, const uint8_t *const vals[], const size_t lens[], size_t n, sib_buf *out,
                  sib_err *err)
{
    sch_val key;
    int rc = sch_pk_encode_view(t, vals, lens, n, false, out, &key, err);
    if (!rc && n == 1) sib_buf_append(out, key.p, (size_t)key.len);
    return !rc && out->oom ? sib_err_set(err, SIB_ENOMEM, "out of memory") : rc;
}

int sch_pk_decode(const sch_table *t, const uint8_t *pk, size_t len, sch_val vals[], size_t nvals, sib_err *err)
{
    if (nvals < t->npk) return sib_err_set(err, SIB_EINVAL, "need %zu partition key slots", t->npk);
    if (t->npk == 1) {
        vals[0].p = pk;
        vals[0].len = (int32_t)len;
        return 0;
    }
    sib_rd r;
    sib_rd_init(&r, pk, len);
    for (size_t i = 0; i < t->npk; i++) {
        uint16_t n;
        uint8_t eoc;
        if (!sib_rd_be16(&r, &n) || !sib_rd_bytes(&r, n, &vals[i].p) || !sib_rd_u8(&r, &eoc) || eoc)
            return sib_err_set(err, SIB_ECORRUPT, "malformed composite partition key");
        vals[i].len = n;
    }
    if (sib_rd_left(&r)) return sib_err_set(err, SIB_ECORRUPT, "trailing bytes after composite partition key");
    return 0;
}
