/* bignum.c: the little arbitrary-precision arithmetic varint and decimal need.
 *
 * Values on the wire are minimal big-endian two's complement (varint) and
 * i32 scale + varint unscaled (decimal). Here we convert between that and
 * decimal digit strings with schoolbook base-2^32 limbs: multiply-add by 10
 * for parsing, divide by 10^9 for printing. Quadratic, but CQL literals and
 * keys are short.
 */
#include "schema_int.h"

#include <stdlib.h>

/* Magnitude as little-endian u32 limbs. */
typedef struct {
    uint32_t *l;
    size_t n;
} limbs;

static bool limbs_from_bytes(limbs *m, const uint8_t *be, size_t len)
{
    m->n = (len + 3) / 4;
    m->l = calloc(m->n ? m->n : 1, sizeof(uint32_t));
    if (!m->l) return false;
    for (size_t i = 0; i < len; i++) {
        size_t bit = (len - 1 - i) * 8;
        m->l[bit / 32] |= (uint32_t)be[i] << (bit % 32);
    }
    while (m->n && !m->l[m->n - 1]) m->n--;
    return true;
}

/* Negates a big-endian two's complement byte string in place. */
static void negate_be(uint8_t *b, size_t n)
{
    unsigned carry = 1;
    for (size_t i = n; i-- > 0;) {
        unsigned v = (uint8_t)~b[i] + carry;
        b[i] = (uint8_t)v;
        carry = v >> 8;
    }
}

/* Appends the minimal two's complement form of b[0..n) (already two's complement). */
static void append_minimal(sib_buf *out, const uint8_t *b, size_t n)
{
    size_t i = 0;
    while (i + 1 < n && ((b[i] == 0x00 && !(b[i + 1] & 0x80)) || (b[i] == 0xFF && (b[i + 1] & 0x80)))) i++;
    if (n == 0) sib_buf_u8(out, 0);
    else sib_buf_append(out, b + i, n - i);
}

int big_from_digits(const char *digits, size_t n, bool neg, sib_buf *out)
{
    size_t cap = n / 9 + 2;
    uint32_t *l = calloc(cap, sizeof *l);
    if (!l) return SIB_ENOMEM;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t carry = (uint64_t)(digits[i] - '0');
        for (size_t k = 0; k < used; k++) {
            uint64_t v = (uint64_t)l[k] * 10 + carry;
            l[k] = (uint32_t)v;
            carry = v >> 32;
        }
        if (carry) l[used++] = (uint32_t)carry;
    }
    /* big-endian bytes with one spare leading zero byte for the sign */
    size_t nb = used * 4 + 1;
    uint8_t *b = calloc(nb, 1);
    if (!b) { free(l); return SIB_ENOMEM; }
    for (size_t k = 0; k < used; k++)
        for (int j = 0; j < 4; j++) b[nb - 1 - (k * 4 + (size_t)j)] = (uint8_t)(l[k] >> (8 * j));
    if (neg) negate_be(b, nb);
    append_minimal(out, b, nb);
    free(b);
    free(l);
    return out->oom ? SIB_ENOMEM : 0;
}

int big_sign(const uint8_t *v, size_t n)
{
    if (!n) return 0;
    if (v[0] & 0x80) return -1;
    for (size_t i = 0; i < n; i++)
        if (v[i]) return 1;
    return 0;
}

void big_to_digits(const uint8_t *v, size_t n, sib_buf *digits, bool *neg)
{
    *neg = n && (v[0] & 0x80);
    uint8_t *mag = malloc(n ? n : 1);
    if (!mag) { digits->oom = true; return; }
    if (n) memcpy(mag, v, n);
    if (*neg) negate_be(mag, n);
    /* a negated most-negative value keeps its top bit: it is the magnitude
     * read as unsigned, which limbs_from_bytes does. */
    limbs m;
    if (!limbs_from_bytes(&m, mag, n)) { free(mag); digits->oom = true; return; }
    free(mag);
    if (!m.n) { sib_buf_u8(digits, '0'); free(m.l); return; }
    size_t maxchunks = m.n * 10 / 9 + 2;
    uint32_t *chunks = malloc(maxchunks * sizeof *chunks);
    size_t nch = 0;
    if (!chunks) { free(m.l); digits->oom = true; return; }
    while (m.n) {
        uint64_t rem = 0;
        for (size_t k = m.n; k-- > 0;) {
            uint64_t cur = rem << 32 | m.l[k];
            m.l[k] = (uint32_t)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        while (m.n && !m.l[m.n - 1]) m.n--;
        chunks[nch++] = (uint32_t)rem;
    }
    sib_buf_printf(digits, "%u", chunks[nch - 1]);
    for (size_t i = nch - 1; i-- > 0;) sib_buf_printf(digits, "%09u", chunks[i]);
    free(chunks);
    free(m.l);
}

int big_compare(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int sa = big_sign(a, alen), sb = big_sign(b, blen);
    if (sa != sb) return sa < sb ? -1 : 1;
    if (!sa) return 0;
    /* same sign: sign-extend the shorter to the longer length, compare unsigned */
    size_t n = SIB_MAX(alen, blen);
    uint8_t ext = sa < 0 ? 0xFF : 0x00;
    for (size_t i = 0; i < n; i++) {
        uint8_t x = i + alen < n ? ext : a[i + alen - n];
        uint8_t y = i + blen < n ? ext : b[i + blen - n];
        if (x != y) return x < y ? -1 : 1;
    }
    return 0;
}

int decimal_norm(const uint8_t *v, size_t len, int *sign, int64_t *adj, sib_buf *digits)
{
    sib_buf_reset(digits);
    if (len < 4) { *sign = 0; *adj = 0; return len ? SIB_EINVAL : 0; }
    int32_t scale = (int32_t)get_be32(v);
    bool neg;
    big_to_digits(v + 4, len - 4, digits, &neg);
    if (digits->oom) return SIB_ENOMEM;
    if (digits->len == 1 && digits->p[0] == '0') {
        *sign = 0;
        *adj = 0;
        sib_buf_reset(digits);
        return 0;
    }
    size_t total = digits->len; /* digit count before stripping trailing zeros */
    while (digits->len > 1 && digits->p[digits->len - 1] == '0') digits->len--;
    /* value = D_orig * 10^-scale = 0.D * 10^(total - scale) */
    *adj = (int64_t)total - scale;
    *sign = neg ? -1 : 1;
    return 0;
}

int decimal_compare(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (!alen || !blen) return alen ? 1 : blen ? -1 : 0;
    sib_buf da, db;
    sib_buf_init(&da);
    sib_buf_init(&db);
    int sa, sb;
    int64_t ea, eb;
    decimal_norm(a, alen, &sa, &ea, &da);
    decimal_norm(b, blen, &sb, &eb, &db);
    int c;
    if (sa != sb) c = sa < sb ? -1 : 1;
    else if (!sa) c = 0;
    else {
        if (ea != eb) c = ea < eb ? -1 : 1;
        else {
            size_t n = SIB_MIN(da.len, db.len);
            c = n ? memcmp(da.p, db.p, n) : 0;
            if (!c && da.len != db.len) c = da.len < db.len ? -1 : 1;
            c = c < 0 ? -1 : c > 0;
        }
        if (sa < 0) c = -c;
    }
    sib_buf_free(&da);
    sib_buf_free(&db);
    return c;
}

void decimal_format(const uint8_t *v, size_t len, sib_buf *out)
{
    if (len < 4) return;
    int32_t scale = (int32_t)get_be32(v);
    sib_buf d;
    sib_buf_init(&d);
    bool neg;
    big_to_digits(v + 4, len - 4, &d, &neg);
    if (d.oom) { sib_buf_free(&d); out->oom = true; return; }
    int64_t nd = (int64_t)d.len;
    int64_t adjusted = -(int64_t)scale + (nd - 1);
    if (neg) sib_buf_u8(out, '-');
    if (scale >= 0 && adjusted >= -6) {
        if (scale == 0) sib_buf_append(out, d.p, d.len);
        else if (nd > scale) {
            sib_buf_append(out, d.p, (size_t)(nd - scale));
            sib_buf_u8(out, '.');
            sib_buf_append(out, d.p + (nd - scale), (size_t)scale);
        } else {
            sib_buf_append(out, "0.", 2);
            for (int64_t i = 0; i < scale - nd; i++) sib_buf_u8(out, '0');
            sib_buf_append(out, d.p, d.len);
        }
    } else {
        sib_buf_u8(out, d.p[0]);
        if (d.len > 1) {
            sib_buf_u8(out, '.');
            sib_buf_append(out, d.p + 1, d.len - 1);
        }
        sib_buf_printf(out, "E%s%lld", adjusted >= 0 ? "+" : "", (long long)adjusted);
    }
    sib_buf_free(&d);
}
