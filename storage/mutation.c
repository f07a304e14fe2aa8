/* mutation.c: the mutation builder and its serialized form.
 *
 * A mutation changes one partition of one table. The builder writes the
 * serialized form directly, so the bytes handed to the commitlog are the
 * builder's buffer and replay decodes exactly what apply decodes.
 *
 *   mutation  = table_id[16] uvarint(pklen) pk op*
 *   op        = u8 kind, then per kind:
 *     PDEL    zz(ts) u32v(ldt)
 *     RANGE   bound(start) bound(end) zz(ts) u32v(ldt)
 *             bound = u8 flags (bit0 incl, bit1 unbounded) [uvarint(len) bytes unless unbounded]
 *     ROW     uvarint(cklen) ck
 *     STATIC  -
 *     MARKER  zz(ts) u32v(ttl) [u32v(expiry) if ttl > 0]
 *     RDEL    zz(ts) u32v(ldt)
 *     CELL    uvarint(col) uvarint(pathlen) path zz(ts) u32v(ttl) [u32v(expiry) if ttl > 0]
 *             uvarint(vlen) value
 *     CTOMB   uvarint(col) uvarint(pathlen) path zz(ts) u32v(ldt)
 *     CDEL    uvarint(col) zz(ts) u32v(ldt)
 *   zz = zigzag uvarint of an int64; u32v = uvarint of a non-negative int32.
 *
 * Invariant: a row-level op (MARKER RDEL CELL CTOMB CDEL) follows a ROW or
 * STATIC op; MARKER and RDEL never apply to the static row. The decoder
 * checks this, so corrupt input is an error, never a crash.
 */
#include "storage_int.h"

#include <stdlib.h>

/* Each builder call reserves room for its whole op once (varints at their
 * longest, VMAX) and writes the fields straight in: one capacity check per
 * op, not one per field. */
#define VMAX 10
static inline uint8_t *put_v(uint8_t *p, uint64_t v) { return p + put_uvarint(p, v); }
/* Every zigzag field is a timestamp (8 varint bytes as a rule): written as
 * one word without the call; op_room leaves VMAX bytes for each. */
static inline uint8_t *put_zz(uint8_t *p, int64_t v)
{
    uint64_t u = zigzag_enc(v);
    return u < (1ull << 56) ? p + put_uvarint_word(p, u) : put_v(p, u);
}
static inline uint8_t *put_u32v(uint8_t *p, int32_t v) { return put_v(p, (uint32_t)v); }
static inline uint8_t *put_bytes(uint8_t *p, const uint8_t *b, size_t n)
{
    if (n) memcpy(p, b, n);
    return p + n;
}

static int mut_fail(st_mutation *m, int code)
{
    if (!m->err) m->err = code;
    return code;
}

static int mut_check(st_mutation *m)
{
    if (m->err) return m->err;
    if (m->b.oom) return mut_fail(m, SIB_ENOMEM);
    return 0;
}

/* Room for an op of at most n bytes at the end of m (NULL: out of memory,
 * which sticks); op_end sets the op's true end. */
static uint8_t *op_room(st_mutation *m, size_t n) { return sib_buf_reserve(&m->b, n); }

static int op_end(st_mutation *m, const uint8_t *end)
{
    m->b.len = (size_t)(end - m->b.p);
    return mut_check(m);
}

int st_mutation_reset(st_mutation *m, const uint8_t table_id[16], const uint8_t *pk, size_t pklen)
{
    sib_buf_reset(&m->b);
    m->b.oom = false;
    m->err = 0;
    m->row_sel = 0;
    if (pklen > ST_MAX_KEY_LEN) return mut_fail(m, SIB_ETOOBIG);
    uint8_t *p = op_room(m, 16 + VMAX + pklen);
    if (p) m->b.len = (size_t)(put_bytes(put_v(put_bytes(p, table_id, 16), pklen), pk, pklen) - m->b.p);
    m->hdr_len = m->b.len;
    return mut_check(m);
}

st_mutation *st_mutation_create(const uint8_t table_id[16], const uint8_t *pk, size_t pklen)
{
    st_mutation *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    sib_buf_init(&m->b);
    st_mutation_reset(m, table_id, pk, pklen);
    return m;
}

void st_mutation_destroy(st_mutation *m)
{
    if (!m) return;
    sib_buf_free(&m->b);
    free(m);
}

size_t st_mutation_size(const st_mutation *m) { return m->b.len; }

const uint8_t *st_mutation_bytes(const st_mutation *m, size_t *len)
{
    if (m->err || m->b.oom) { *len = 0; return NULL; }
    *len = m->b.len;
    return m->b.p;
}

const uint8_t *st_mutation_table_id(const st_mutation *m) { return m->b.p; }

const uint8_t *st_mutation_pk(const st_mutation *m, size_t *len)
{
    *len = 0;
    if (m->err || m->b.oom || m->b.len < 17) return NULL;
    sib_rd r;
    sib_rd_init(&r, m->b.p + 16, m->hdr_len - 16);
    uint64_t n;
    const uint8_t *pk;
    if (!sib_rd_uvarint(&r, &n) || n > sib_rd_left(&r) || !sib_rd_bytes(&r, (size_t)n, &pk)) return NULL;
    *len = (size_t)n;
    return pk;
}

int st_mutation_load(st_mutation *m, const uint8_t *p, size_t n)
{
    sib_buf_reset(&m->b);
    m->b.oom = false;
    m->row_sel = 0;
    m->err = 0;
    sib_rd r;
    mut_hdr h;
    sib_rd_init(&r, p, n);
    if (mut_validate(p, n) || mut_decode_hdr(&r, &h)) return mut_fail(m, SIB_ECORRUPT);
    sib_buf_append(&m->b, p, n);
    m->hdr_len = (size_t)(r.p - p);
    return mut_check(m);
}

int st_mut_partition_delete(st_mutation *m, int64_t ts, int32_t ldt)
{
    if (ldt < 0) return mut_fail(m, SIB_EINVAL);
    uint8_t *p = op_room(m, 1 + 2 * VMAX);
    if (!p) return mut_check(m);
    *p++ = MUT_OP_PDEL;
    return op_end(m, put_u32v(put_zz(p, ts), ldt));
}

static size_t bound_size(const st_bound *b) { return 1 + (b->unbounded ? 0 : VMAX + b->len); }

static uint8_t *put_bound(uint8_t *p, const st_bound *b)
{
    *p++ = (uint8_t)((b->incl ? 1 : 0) | (b->unbounded ? 2 : 0));
    return b->unbounded ? p : put_bytes(put_v(p, b->len), b->key, b->len);
}

int st_mut_range_delete(st_mutation *m, const st_bound *start, const st_bound *end, int64_t ts, int32_t ldt)
{
    if (ldt < 0) return mut_fail(m, SIB_EINVAL);
    if ((!start->unbounded && start->len > ST_MAX_CK_LEN) || (!end->unbounded && end->len > ST_MAX_CK_LEN))
        return mut_fail(m, SIB_ETOOBIG);
    uint8_t *p = op_room(m, 1 + bound_size(start) + bound_size(end) + 2 * VMAX);
    if (!p) return mut_check(m);
    *p++ = MUT_OP_RANGE;
    p = put_bound(put_bound(p, start), end);
    return op_end(m, put_u32v(put_zz(p, ts), ldt));
}

int st_mut_row(st_mutation *m, const uint8_t *ck, size_t cklen)
{
    if (cklen > ST_MAX_CK_LEN) return mut_fail(m, SIB_ETOOBIG);
    uint8_t *p = op_room(m, 1 + VMAX + cklen);
    m->row_sel = 1;
    if (!p) return mut_check(m);
    *p++ = MUT_OP_ROW;
    return op_end(m, put_bytes(put_v(p, cklen), ck, cklen));
}

int st_mut_static(st_mutation *m)
{
    sib_buf_u8(&m->b, MUT_OP_STATIC);
    m->row_sel = 2;
    return mut_check(m);
}

int st_mut_row_marker(st_mutation *m, int64_t ts, int32_t ttl, int32_t expiry)
{
    if (m->row_sel != 1 || ttl < 0 || (ttl > 0 && expiry < 0)) return mut_fail(m, SIB_EINVAL);
    uint8_t *p = op_room(m, 1 + 3 * VMAX);
    if (!p) return mut_check(m);
    *p++ = MUT_OP_MARKER;
    p = put_u32v(put_zz(p, ts), ttl);
    return op_end(m, ttl > 0 ? put_u32v(p, expiry) : p);
}

int st_mut_row_delete(st_mutation *m, int64_t ts, int32_t ldt)
{
    if (m->row_sel != 1 || ldt < 0) return mut_fail(m, SIB_EINVAL);
    uint8_t *p = op_room(m, 1 + 2 * VMAX);
    if (!p) return mut_check(m);
    *p++ = MUT_OP_RDEL;
    return op_end(m, put_u32v(put_zz(p, ts), ldt));
}

int st_mut_cell_path(st_mutation *m, uint32_t col, const uint8_t *path, size_t pathlen, const uint8_t *val,
                     size_t vlen, int64_t ts, int32_t ttl, int32_t expiry)
{
    if (!m->row_sel || ttl < 0 || (ttl > 0 && expiry < 0)) return mut_fail(m, SIB_EINVAL);
    if (pathlen > ST_MAX_KEY_LEN || vlen > UINT32_MAX) return mut_fail(m, SIB_ETOOBIG);
    uint8_t *p = op_room(m, 1 + 6 * VMAX + pathlen + vlen);
    if (!p) return mut_check(m);
    *p++ = MUT_OP_CELL;
    p = put_bytes(put_v(put_v(p, col), pathlen), path, pathlen);
    p = put_u32v(put_zz(p, ts), ttl);
    if (ttl > 0) p = put_u32v(p, expiry);
    return op_end(m, put_bytes(put_v(p, vlen), val, vlen));
}

int st_mut_cell(st_mutation *m, uint32_t col, const uint8_t *val, size_t vlen, int64_t ts, int32_t ttl,
                int32_t expiry)
{
    return st_mut_cell_path(m, col, NULL, 0, val, vlen, ts, ttl, expiry);
}

int st_mut_cell_path_tombstone(st_mutation *m, uint32_t col, const uint8_t *path, size_t pathlen, int64_t ts,
                               int32_t ldt)
{
    if (!m->row_sel || ldt < 0 || ldt == ST_NO_DELETION_TIME) return mut_fail(m, SIB_EINVAL);
    if (pathlen > ST_MAX_KEY_LEN) return mut_fail(m, SIB_ETOOBIG);
    uint8_t *p = op_room(m, 1 + 4 * VMAX + pathlen);
    if (!p) return mut_check(m);
    *p++ = MUT_OP_CTOMB;
    p = put_bytes(put_v(put_v(p, col), pathlen), path, pathlen);
    return op_end(m, put_u32v(put_zz(p, ts), ldt));
}

int st_mut_cell_tombstone(st_mutation *m, uint32_t col, int64_t ts, int32_t ldt)
{
    return st_mut_cell_path_tombstone(m, col, NULL, 0, ts, ldt);
}

int st_mut_complex_delete(st_mutation *m, uint32_t col, int64_t ts, int32_t ldt)
{
    if (!m->row_sel || ldt < 0) return mut_fail(m, SIB_EINVAL);
    uint8_t *p = op_room(m, 1 + 3 * VMAX);
    if (!p) return mut_check(m);
    *p++ = MUT_OP_CDEL;
    return op_end(m, put_u32v(put_zz(put_v(p, col), ts), ldt));
}

/* ---- decoding ----
 * Every write is decoded once more (its memtable apply), so mut_next_op
 * reads its fields off a local cursor (p, end) with inline readers: the
 * op's pointer fields cannot alias a local, where stores into them made
 * the compiler reload a sib_rd's position field after field. Each reader
 * checks its bound and fails on a short or overlong field. */
#define RD_INLINE static inline __attribute__((always_inline))

RD_INLINE bool cv_v(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    size_t n = get_uvarint(*p, (size_t)(end - *p), v);
    *p += n;
    return n != 0;
}

/* Every zigzag field is a timestamp: microseconds, 8 varint bytes as a
 * rule, read from one word here without the call when 8 bytes are left. */
RD_INLINE bool cv_zz(const uint8_t **p, const uint8_t *end, int64_t *v)
{
    uint64_t u;
    size_t n;
    if (end - *p >= 8 && (n = get_uvarint_word(*p, &u))) *p += n;
    else if (!cv_v(p, end, &u)) return false;
    *v = zigzag_dec(u);
    return true;
}

RD_INLINE bool cv_u32v(const uint8_t **p, const uint8_t *end, int32_t *v)
{
    uint64_t u;
    if (!cv_v(p, end, &u) || u > INT32_MAX) return false;
    *v = (int32_t)u;
    return true;
}

RD_INLINE bool cv_key(const uint8_t **p, const uint8_t *end, const uint8_t **k, size_t *len, size_t max)
{
    uint64_t n;
    if (!cv_v(p, end, &n) || n > max || n > (size_t)(end - *p)) return false;
    *k = *p;
    *len = (size_t)n;
    *p += n;
    return true;
}

static bool cv_bound(const uint8_t **p, const uint8_t *end, st_bound *b)
{
    if (*p == end || (**p & ~3u)) return false;
    uint8_t f = *(*p)++;
    memset(b, 0, sizeof *b);
    b->incl = f & 1;
    b->unbounded = f & 2;
    if (b->unbounded) return true;
    return cv_key(p, end, &b->key, &b->len, ST_MAX_CK_LEN);
}

/* ttl, and the expiry when ttl > 0 */
RD_INLINE bool cv_expiring(const uint8_t **p, const uint8_t *end, mut_op *op)
{
    if (!cv_u32v(p, end, &op->ttl)) return false;
    op->ldt = ST_NO_DELETION_TIME;
    return op->ttl == 0 || cv_u32v(p, end, &op->ldt);
}

int mut_decode_hdr(sib_rd *r, mut_hdr *h)
{
    if (!sib_rd_bytes(r, 16, &h->table_id)) return SIB_ECORRUPT;
    const uint8_t *p = r->p;
    if (!cv_key(&p, r->end, &h->pk, &h->pklen, ST_MAX_KEY_LEN)) {
        r->bad = true;
        return SIB_ECORRUPT;
    }
    r->p = p;
    return 0;
}

int mut_next_op(sib_rd *r, mut_op *op, uint8_t *row_sel)
{
    if (!sib_rd_left(r)) return 0;
    if (r->bad) return SIB_ECORRUPT;
    const uint8_t *p = r->p, *end = r->end;
    uint64_t col = 0;
    bool ok;
    /* The fields every kind may read, zeroed one by one (a memset of the
     * whole op, bounds included, was a string store per op). */
    op->key = op->val = NULL;
    op->keylen = op->vlen = 0;
    op->ts = 0;
    op->ttl = op->ldt = 0;
    op->kind = *p++;
    switch (op->kind) {
    case MUT_OP_PDEL:
    case MUT_OP_RDEL:
        ok = cv_zz(&p, end, &op->ts) && cv_u32v(&p, end, &op->ldt);
        if (op->kind == MUT_OP_RDEL && *row_sel != 1) ok = false;
        break;
    case MUT_OP_RANGE:
        ok = cv_bound(&p, end, &op->start) && cv_bound(&p, end, &op->end) && cv_zz(&p, end, &op->ts) &&
             cv_u32v(&p, end, &op->ldt);
        break;
    case MUT_OP_ROW:
        ok = cv_key(&p, end, &op->key, &op->keylen, ST_MAX_CK_LEN);
        *row_sel = 1;
        break;
    case MUT_OP_STATIC:
        ok = true;
        *row_sel = 2;
        break;
    case MUT_OP_MARKER:
        ok = *row_sel == 1 && cv_zz(&p, end, &op->ts) && cv_expiring(&p, end, op);
        break;
    case MUT_OP_CELL:
        ok = *row_sel && cv_v(&p, end, &col) && col <= UINT32_MAX &&
             cv_key(&p, end, &op->key, &op->keylen, ST_MAX_KEY_LEN) && cv_zz(&p, end, &op->ts) &&
             cv_expiring(&p, end, op) && cv_key(&p, end, &op->val, &op->vlen, UINT32_MAX);
        break;
    case MUT_OP_CTOMB:
        ok = *row_sel && cv_v(&p, end, &col) && col <= UINT32_MAX &&
             cv_key(&p, end, &op->key, &op->keylen, ST_MAX_KEY_LEN) && cv_zz(&p, end, &op->ts) &&
             cv_u32v(&p, end, &op->ldt) && op->ldt != ST_NO_DELETION_TIME;
        break;
    case MUT_OP_CDEL:
        ok = *row_sel && cv_v(&p, end, &col) && col <= UINT32_MAX && cv_zz(&p, end, &op->ts) &&
             cv_u32v(&p, end, &op->ldt);
        break;
    default:
        ok = false;
    }
    op->col = (uint32_t)col;
    r->p = p;
    if (!ok) {
        r->bad = true;
        return SIB_ECORRUPT;
    }
    return 1;
}

int mut_validate(const uint8_t *p, size_t n)
{
    sib_rd r;
    mut_hdr h;
    mut_op op;
    uint8_t sel = 0;
    int rc;
    sib_rd_init(&r, p, n);
    if (mut_decode_hdr(&r, &h)) return SIB_ECORRUPT;
    while ((rc = mut_next_op(&r, &op, &sel)) > 0) {}
    return rc;
}
