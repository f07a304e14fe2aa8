/* format.c: the byte formats shared by writer.c and reader.c, the bloom
 * filter, and small file helpers.
 *
 * File header (16 bytes, every component but the TOC):
 *   | off | size | field                                  |
 *   |   0 |    4 | magic (SBDT / SBIX / SBFL / SBST)      |
 *   |   4 |    2 | format version (SST_VERSION; 2 is read) |
 *   |   6 |    2 | flags (Data: 1 = LZ4)                  |
 *   |   8 |    4 | parameter (Data: block size)           |
 *   |  12 |    4 | crc32c of bytes 0..11                  |
 *
 * Partition, in Data's logical (uncompressed) byte stream:
 *   uvarint pklen, pk, u8 flags (1 deletion, 2 range tombstones)
 *   [deletion] [uvarint n, n x (start bound, end bound, deletion)]
 *   rows: u8 row flags (0 ends the partition; 16 = the static row, which
 *         comes first), row body
 * Row body:
 *   uvarint cklen, ck
 *   [marker: ts, uvarint ttl, zz ldt]           row flag 2
 *   [deletion]                                  row flag 4
 *   [uvarint n, n x (uvarint col, deletion)]    row flag 8 (complex deletions)
 *   uvarint ncells, cells
 * Cell: uvarint col, u8 flags (1 path, 2 ttl/ldt, 4 value), [uvarint len, path],
 *   ts, [uvarint ttl, zz ldt], [uvarint len, value]
 * Deletion: ts, zz ldt. A ts (cell, marker, deletion) is zz (ts - base),
 * base being the SSTable's timestamp base (Data's chunk table). Bound: u8 (1 incl, 2 unbounded), uvarint len, key.
 * (zz = zigzag varint.) A cell without flag 2 has ttl 0 and ldt SST_NO_LDT.
 *
 * Bloom filter: k probes h1 + i*h2 (mod nbits) where h1 is the partition's
 * murmur3 token (MurmurHash3_x64_128 h1 of the key, already computed for
 * every lookup) and h2 a splitmix64 finalisation of it, odd; sized as
 * nbits = -n ln p / ln2^2, k = round(nbits/n ln 2), Cassandra's formulas.
 */
#define _GNU_SOURCE
#include "sst_int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char *const sst_components[4] = {"Data.db", "Index.db", "Filter.db", "Statistics.db"};

/* ---- ordering and reconciliation ---- */

int sst_bound_cmp(const uint8_t *ck, size_t cklen, const sst_bound *b, bool is_start)
{
    if (b->unbounded) return is_start ? 1 : -1;
    size_t n = cklen < b->len ? cklen : b->len;
    int c = n ? memcmp(ck, b->key, n) : 0;
    if (c) return c;
    if (cklen < b->len) return -1;
    bool bound_after = is_start ? !b->incl : b->incl;
    return bound_after ? -1 : 1;
}

bool sst_cell_supersedes(const sst_cell *a, const sst_cell *b)
{
    if (a->ts != b->ts) return a->ts > b->ts;
    bool a_eot = a->ldt != SST_NO_LDT, b_eot = b->ldt != SST_NO_LDT;
    if (a_eot != b_eot) return a_eot;
    if (a_eot) {
        bool at = a->ttl == 0, bt = b->ttl == 0;
        if (at != bt) return at;
        if (a->ldt != b->ldt) return a->ldt > b->ldt;
    }
    size_t n = a->vlen < b->vlen ? a->vlen : b->vlen;
    int c = n ? memcmp(a->val, b->val, n) : 0;
    if (c) return c > 0;
    return a->vlen > b->vlen;
}

/* ---- codec ---- */

static void enc_zz(sib_buf *b, int64_t v) { sib_buf_uvarint(b, zigzag_enc(v)); }
static bool dec_zz(sib_rd *r, int64_t *v)
{
    uint64_t u;
    if (!sib_rd_uvarint(r, &u)) return false;
    *v = zigzag_dec(u);
    return true;
}
static bool dec_i32(sib_rd *r, int32_t *v)
{
    int64_t x;
    if (!dec_zz(r, &x) || x < INT32_MIN || x > INT32_MAX) return false;
    *v = (int32_t)x;
    return true;
}
static bool dec_u32(sib_rd *r, uint32_t *v)
{
    uint64_t x;
    if (!sib_rd_uvarint(r, &x) || x > UINT32_MAX) return false;
    *v = (uint32_t)x;
    return true;
}
static bool dec_bytes(sib_rd *r, uint32_t *len, const uint8_t **p)
{
    return dec_u32(r, len) && *len <= sib_rd_left(r) && sib_rd_bytes(r, *len, p);
}

/* Timestamps are stored as the difference from the SSTable's base (its
 * writer's lowest timestamp, see Data's chunk table), in wrapping
 * arithmetic so any int64 round-trips: microsecond timestamps written
 * close together then take 3-4 bytes instead of 8. */
static void enc_ts(sib_buf *b, int64_t ts, int64_t base) { enc_zz(b, (int64_t)((uint64_t)ts - (uint64_t)base)); }
static bool dec_ts(sib_rd *r, int64_t *ts, int64_t base)
{
    int64_t d;
    if (!dec_zz(r, &d)) return false;
    *ts = (int64_t)((uint64_t)d + (uint64_t)base);
    return true;
}

void sst_enc_del(sib_buf *b, sst_del d, int64_t base)
{
    enc_ts(b, d.ts, base);
    enc_zz(b, d.ldt);
}
bool sst_dec_del(sib_rd *r, sst_del *d, int64_t base) { return dec_ts(r, &d->ts, base) && dec_i32(r, &d->ldt); }

void sst_enc_bound(sib_buf *b, const sst_bound *bd)
{
    sib_buf_u8(b, (uint8_t)((bd->incl ? 1 : 0) | (bd->unbounded ? 2 : 0)));
    sib_buf_uvarint(b, bd->unbounded ? 0 : bd->len);
    if (!bd->unbounded && bd->len) sib_buf_append(b, bd->key, bd->len);
}

bool sst_dec_bound(sib_rd *r, sst_bound *bd)
{
    uint8_t f;
    if (!sib_rd_u8(r, &f) || !dec_bytes(r, &bd->len, &bd->key)) return false;
    bd->incl = f & 1;
    bd->unbounded = f & 2;
    return true;
}

void sst_enc_row_body(sib_buf *b, const sst_row *r, int64_t base)
{
    sib_buf_uvarint(b, r->cklen);
    if (r->cklen) sib_buf_append(b, r->ck, r->cklen);
    if (r->marker_ts != SST_NO_TS) {
        enc_ts(b, r->marker_ts, base);
        sib_buf_uvarint(b, (uint32_t)r->marker_ttl);
        enc_zz(b, r->marker_ldt);
    }
    if (r->del.ts != SST_NO_TS) sst_enc_del(b, r->del, base);
    if (r->ncdels) {
        sib_buf_uvarint(b, r->ncdels);
        for (uint32_t i = 0; i < r->ncdels; i++) {
            sib_buf_uvarint(b, r->cdels[i].col);
            sst_enc_del(b, r->cdels[i].del, base);
        }
    }
    sib_buf_uvarint(b, r->ncells);
    for (uint32_t i = 0; i < r->ncells; i++) {
        const sst_cell *c = &r->cells[i];
        bool has_ldt = c->ttl != 0 || c->ldt != SST_NO_LDT;
        sib_buf_uvarint(b, c->col);
        sib_buf_u8(b, (uint8_t)((c->pathlen ? SC_PATH : 0) | (has_ldt ? SC_LDT : 0) | (c->vlen ? SC_VAL : 0)));
        if (c->pathlen) {
            sib_buf_uvarint(b, c->pathlen);
            sib_buf_append(b, c->path, c->pathlen);
        }
        enc_ts(b, c->ts, base);
        if (has_ldt) {
            sib_buf_uvarint(b, (uint32_t)c->ttl);
            enc_zz(b, c->ldt);
        }
        if (c->vlen) {
            sib_buf_uvarint(b, c->vlen);
            sib_buf_append(b, c->val, c->vlen);
        }
    }
}

/* Returns the (possibly moved) array with room for need elements, NULL on OOM. */
static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (!need) need = 1;
    if (need <= *cap) return p;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need) c *= 2;
    void *n = realloc(p, c * elem);
    if (n) *cap = c;
    return n;
}

void sst_rowbuf_reset(sst_rowbuf *rb) { rb->nrows = rb->ncells = rb->ncdels = 0; }
void sst_rowbuf_free(sst_rowbuf *rb)
{
    free(rb->rows);
    free(rb->cells);
    free(rb->cdels);
    memset(rb, 0, sizeof *rb);
}

/* While a run is being decoded the arrays may move, so a row's cells and
 * cdels hold START INDEXES (cast to pointers) until sst_rowbuf_fix. */
int sst_dec_row_body(sib_rd *r, uint8_t flags, bool is_static, sst_rowbuf *rb, int64_t base)
{
    sst_row *rows = grow(rb->rows, &rb->caprows, rb->nrows + 1, sizeof *rows);
    if (!rows) return SIB_ENOMEM;
    rb->rows = rows;
    sst_row *w = &rows[rb->nrows];
    memset(w, 0, sizeof *w);
    w->is_static = is_static;
    w->marker_ts = SST_NO_TS;
    w->marker_ldt = SST_NO_LDT;
    w->del = (sst_del){SST_NO_TS, SST_NO_LDT};
    if (!dec_bytes(r, &w->cklen, &w->ck)) return SIB_ECORRUPT;
    if (flags & SR_MARKER) {
        uint32_t ttl;
        if (!dec_ts(r, &w->marker_ts, base) || !dec_u32(r, &ttl) || !dec_i32(r, &w->marker_ldt)) return SIB_ECORRUPT;
        w->marker_ttl = (int32_t)ttl;
    }
    if ((flags & SR_DEL) && !sst_dec_del(r, &w->del, base)) return SIB_ECORRUPT;
    /* cells/cdels hold start indexes until sst_rowbuf_fix */
    w->cdels = (const sst_cdel *)(uintptr_t)rb->ncdels;
    if (flags & SR_CDELS) {
        if (!dec_u32(r, &w->ncdels) || w->ncdels > sib_rd_left(r)) return SIB_ECORRUPT;
        sst_cdel *cd = grow(rb->cdels, &rb->capcdels, rb->ncdels + w->ncdels, sizeof *cd);
        if (!cd) return SIB_ENOMEM;
        rb->cdels = cd;
        for (uint32_t i = 0; i < w->ncdels; i++) {
            sst_cdel *d = &cd[rb->ncdels++];
            if (!dec_u32(r, &d->col) || !sst_dec_del(r, &d->del, base)) return SIB_ECORRUPT;
        }
    }
    if (!dec_u32(r, &w->ncells) || w->ncells > sib_rd_left(r)) return SIB_ECORRUPT;
    w->cells = (const sst_cell *)(uintptr_t)rb->ncells;
    sst_cell *cs = grow(rb->cells, &rb->capcells, rb->ncells + w->ncells, sizeof *cs);
    if (!cs) return SIB_ENOMEM;
    rb->cells = cs;
    for (uint32_t i = 0; i < w->ncells; i++) {
        sst_cell *c = &cs[rb->ncells++];
        uint8_t cf;
        uint32_t ttl = 0;
        memset(c, 0, sizeof *c);
        c->ldt = SST_NO_LDT;
        if (!dec_u32(r, &c->col) || !sib_rd_u8(r, &cf)) return SIB_ECORRUPT;
        if ((cf & SC_PATH) && !dec_bytes(r, &c->pathlen, &c->path)) return SIB_ECORRUPT;
        if (!dec_ts(r, &c->ts, base)) return SIB_ECORRUPT;
        if ((cf & SC_LDT) && (!dec_u32(r, &ttl) || !dec_i32(r, &c->ldt))) return SIB_ECORRUPT;
        c->ttl = (int32_t)ttl;
        if ((cf & SC_VAL) && !dec_bytes(r, &c->vlen, &c->val)) return SIB_ECORRUPT;
    }
    rb->nrows++;
    return 0;
}

void sst_rowbuf_fix(sst_rowbuf *rb)
{
    for (size_t i = 0; i < rb->nrows; i++) {
        sst_row *w = &rb->rows[i];
        size_t ci = (uintptr_t)w->cells, di = (uintptr_t)w->cdels;
        w->cells = w->ncells ? rb->cells + ci : NULL;
        w->cdels = w->ncdels ? rb->cdels + di : NULL;
    }
}

/* ---- bloom filter ---- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int sst_bloom_init(sst_bloom *b, uint64_t nkeys, double fp)
{
    if (nkeys < 1) nkeys = 1;
    if (fp <= 0 || fp >= 1) fp = 0.01;
    double ln2 = 0.6931471805599453;
    double bits = -(double)nkeys * log(fp) / (ln2 * ln2);
    b->nbits = (uint64_t)bits < 64 ? 64 : ((uint64_t)bits + 63) / 64 * 64;
    long k = lround(bits / (double)nkeys * ln2);
    b->k = (uint32_t)(k < 1 ? 1 : k > 20 ? 20 : k);
    b->bits = calloc(b->nbits / 8, 1);
    return b->bits ? 0 : SIB_ENOMEM;
}

void sst_bloom_free(sst_bloom *b)
{
    free(b->bits);
    b->bits = NULL;
}

void sst_bloom_add(sst_bloom *b, int64_t token)
{
    uint64_t h1 = (uint64_t)token, h2 = mix64(h1) | 1;
    for (uint32_t i = 0; i < b->k; i++) {
        uint64_t bit = (h1 + i * h2) % b->nbits;
        b->bits[bit >> 3] |= (uint8_t)(1u << (bit & 7));
    }
}

bool sst_bloom_test(const sst_bloom *b, int64_t token)
{
    uint64_t h1 = (uint64_t)token, h2 = mix64(h1) | 1;
    for (uint32_t i = 0; i < b->k; i++) {
        uint64_t bit = (h1 + i * h2) % b->nbits;
        if (!(b->bits[bit >> 3] & (1u << (bit & 7)))) return false;
    }
    return true;
}

/* ---- files ---- */

int sst_write_full(int fd, const void *p, size_t n)
{
    const uint8_t *q = p;
    while (n) {
        ssize_t w = write(fd, q, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

int sst_pread_full(int fd, void *p, size_t n, uint64_t off)
{
    uint8_t *q = p;
    while (n) {
        ssize_t r = pread(fd, q, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) {
            errno = EIO;
            return -2; /* short file */
        }
        q += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int sst_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

char *sst_path(const char *dir, uint64_t gen, const char *component, const char *suffix)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%llu-%s%s", dir, (unsigned long long)gen, component, suffix) < 0) return NULL;
    return p;
}

void sst_put_hdr(uint8_t h[SST_HDR_LEN], uint32_t magic, uint16_t version, uint16_t flags, uint32_t param)
{
    put_be32(h, magic);
    put_be16(h + 4, version);
    put_be16(h + 6, flags);
    put_be32(h + 8, param);
    put_be32(h + 12, sib_crc32c(0, h, 12));
}

bool sst_check_hdr(const uint8_t h[SST_HDR_LEN], uint32_t magic, uint16_t *flags, uint32_t *param)
{
    uint16_t v = get_be16(h + 4);
    if (get_be32(h) != magic || get_be32(h + 12) != sib_crc32c(0, h, 12) || v < SST_VERSION_MIN || v > SST_VERSION)
        return false;
    if (flags) *flags = get_be16(h + 6);
    if (param) *param = get_be32(h + 8);
    return true;
}

uint64_t sst_droppable_tombstones(const sst_stats *st, int32_t gc_before)
{
    if (!st->tombstones || st->min_ldt == SST_NO_LDT) return 0;
    if (gc_before > st->max_ldt) return st->tombstones;
    double span = (double)st->max_ldt - (double)st->min_ldt + 1;
    uint64_t n = 0;
    for (int i = 0; i < SST_LDT_BINS; i++) {
        double hi = (double)st->min_ldt + span * (i + 1) / SST_LDT_BINS;
        if (hi <= (double)gc_before) n += st->ldt_bins[i];
    }
    return n;
}

/* ---- skipping a partition (sparse index walks) ---- */

/* Each returns the byte after what it skips in [p, e), NULL when that runs
 * past e or is malformed. They read nothing into memory: a lookup walks
 * the partitions of an index run (writer.c) comparing keys only. */
static inline const uint8_t *sk_var(const uint8_t *p, const uint8_t *e, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 10 && p < e; i++) {
        uint8_t b = *p++;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return p;
        }
    }
    return NULL;
}
static inline const uint8_t *sk_varn(const uint8_t *p, const uint8_t *e, int n)
{
    uint64_t v;
    while (p && n--) p = sk_var(p, e, &v);
    return p;
}
static inline const uint8_t *sk_lenbytes(const uint8_t *p, const uint8_t *e)
{
    uint64_t n;
    if (!(p = sk_var(p, e, &n)) || n > (uint64_t)(e - p)) return NULL;
    return p + n;
}
static const uint8_t *sk_bound(const uint8_t *p, const uint8_t *e)
{
    return p < e ? sk_lenbytes(p + 1, e) : NULL;
}

/* One row body (after its flags byte), as sst_dec_row_body reads it. */
static const uint8_t *sk_row_body(const uint8_t *p, const uint8_t *e, uint8_t flags)
{
    uint64_t n;
    p = sk_lenbytes(p, e);
    if (p && (flags & SR_MARKER)) p = sk_varn(p, e, 3);
    if (p && (flags & SR_DEL)) p = sk_varn(p, e, 2);
    if (p && (flags & SR_CDELS)) {
        if (!(p = sk_var(p, e, &n)) || n > (uint64_t)(e - p)) return NULL;
        while (p && n--) p = sk_varn(p, e, 3); /* col, deletion */
    }
    if (!p || !(p = sk_var(p, e, &n)) || n > (uint64_t)(e - p)) return NULL;
    while (n--) {
        uint64_t col;
        if (!(p = sk_var(p, e, &col)) || p >= e) return NULL;
        uint8_t cf = *p++;
        if ((cf & SC_PATH) && !(p = sk_lenbytes(p, e))) return NULL;
        if (!(p = sk_var(p, e, &col))) return NULL; /* ts */
        if ((cf & SC_LDT) && !(p = sk_varn(p, e, 2))) return NULL;
        if ((cf & SC_VAL) && !(p = sk_lenbytes(p, e))) return NULL;
    }
    return p;
}

bool sst_skip_partition(const uint8_t *b, size_t n, const uint8_t **pk, uint32_t *pklen, size_t *used)
{
    const uint8_t *p = b, *e = b + n, *k;
    uint64_t kl, nrt;
    if (!(p = sk_var(p, e, &kl)) || kl > (uint64_t)(e - p) || kl > UINT32_MAX) return false;
    k = p;
    p += kl;
    if (p >= e) return false;
    uint8_t f = *p++;
    if ((f & SP_PDEL) && !(p = sk_varn(p, e, 2))) return false;
    if (f & SP_RTS) {
        if (!(p = sk_var(p, e, &nrt)) || nrt > (uint64_t)(e - p)) return false;
        while (p && nrt--) {
            p = sk_bound(p, e);
            if (p) p = sk_bound(p, e);
            if (p) p = sk_varn(p, e, 2);
        }
        if (!p) return false;
    }
    for (;;) {
        if (p >= e) return false;
        uint8_t rf = *p++;
        if (!rf) break;
        if (!(rf & SR_ROW) || !(p = sk_row_body(p, e, rf))) return false;
    }
    *pk = k;
    *pklen = (uint32_t)kl;
    *used = (size_t)(p - b);
    return true;
}
