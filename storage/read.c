/* read.c: partition reads (st_iter) and token-ordered scans (st_scan), merged
 * over the active memtable, the frozen ones and the SSTables.
 *
 * Sources of a partition read: every memtable holding the partition, and
 * every SSTable whose key range [first, last token] (Statistics.db) covers
 * the token, whose bloom filter admits it and whose index has it, newest
 * first (their number feeds the table's SSTables-per-read histogram); an SSTable whose max timestamp is below a partition deletion
 * already seen is skipped (everything in it is shadowed), and so is its row
 * walk when its clustering range [min_ck, max_ck] misses every slice.
 *
 * Merge: per slice, each source is positioned (memtable B+tree seek, SSTable
 * clustering-index seek; reversed reads walk back) and the rows come out in
 * clustering order by a k-way pick of the smallest (largest when reversed)
 * key. Rows with equal keys from several sources are reconciled by
 * cm_merge_rows (compaction.h: the one LWW merge flush and compaction use
 * too): superseding marker, row deletion and complex deletions, and per
 * (column, path) the superseding cell (sst_cell_supersedes). Then the row is
 * evaluated as Cassandra does: the active deletion is the superseding one of
 * (partition deletion of any source, every covering range tombstone of any
 * source, the row deletion); a marker or cell is live iff above it, not a
 * tombstone, newer than its column's complex deletion and not expired.
 *
 * A point read of a KV record (a table without clustering columns) that
 * only the active memtable holds needs none of that: st_read_kv finds it,
 * checks the slices and evaluates it in place by the same liveness rules
 * (marker_live, cell_state), without an iterator.
 *
 * Writes between calls: the iterator remembers the last key returned; when
 * the active memtable's row tree version moved, its cursor re-seeks past
 * that key. (Inserts only: a cell overwritten in place does not move the
 * version, which is why storage.h asks for no writes while it is open.) Memtables and SSTables are referenced, so a flush or truncate
 * completing between calls never frees what the iterator reads.
 *
 * A source error (SIB_ECORRUPT from a bad block, naming the file) ends the
 * iteration; st_iter_status reports it.
 */
#include "storage_int.h"

#include <stdlib.h>

typedef struct src {
    st_mem *m;      /* memtable source (referenced) */
    mt_part *mp;    /* its partition, when an MT_PART */
    const mt_rec *kv; /* its partition, when an MT_KV: one row, empty key */
    bt_cur cur;
    uint32_t ver;
    const st_snap_part *sn; /* copy of an active memtable partition (pinned reads) */
    size_t idx;     /* its current row */
    sst_part *sp;   /* SSTable source */
    sst_row row;    /* current row (valid when has) */
    bool has, consumed, skip; /* skip: its clustering range misses every slice */
    mt_rowview view; /* memtable row conversion scratch */
} src;

struct st_iter {
    int32_t now;
    bool reversed, positioned;
    size_t nslices, si;
    sst_bound *sl; /* 2 per slice: start, end */
    src *srcs, *stat; /* stat: static-row scratch per source (statcap of them) */
    size_t nsrc, statcap;
    const sst_row **pick; /* rows being reconciled, one slot per source */
    /* room in its own allocation, for a recycled iterator (st_iter_recycle) */
    size_t srccap, slcap, keycap;
    sst_del pdel;
    sst_rt *rts;
    size_t nrt, rtcap;
    uint8_t *last;
    size_t lastlen, lastcap;
    bool has_last;
    uint32_t ssts_read; /* SSTables holding the partition (opened) */
    cm_rowmerge rm; /* merged rows (compaction.h: the one LWW merge) */
    st_cell_view *cv;
    size_t cvcap;
    uint64_t tombstones; /* met while merging rows (st_iter_tombstones) */
    bool cache_only;     /* SSTable blocks from the block cache only (else SIB_EAGAIN) */
    int status;
    sib_err err;
};

static mt_bound to_mt(const sst_bound *b) { return (mt_bound){b->key, b->len, b->incl, b->unbounded}; }

/* sst_bound_cmp, without the call for an open bound (most reads' slice is
 * the whole partition). */
static inline int bound_cmp(const uint8_t *ck, size_t cklen, const sst_bound *b, bool is_start)
{
    if (b->unbounded) return is_start ? 1 : -1;
    return sst_bound_cmp(ck, cklen, b, is_start);
}

/* ---- memtable rows as sst_row ---- */

static bool mem_row(src *s, const mt_row *r, bool is_static) { return mt_row_view(&s->view, r, is_static, &s->row); }
static bool kv_row(src *s) { return mt_kv_view(&s->view, s->kv, &s->row); }

/* ---- opening ---- */

static int add_rts(st_iter *it, const sst_rt *rts, size_t n)
{
    if (!n) return 0;
    if (!sib_grow((void **)&it->rts, &it->rtcap, it->nrt + n, sizeof *it->rts)) return SIB_ENOMEM;
    memcpy(it->rts + it->nrt, rts, n * sizeof *it->rts);
    it->nrt += n;
    return 0;
}

/* The sources array is sized for every memtable and SSTable of the table
 * when the iterator is made (in its own allocation), so this never fails. */
static src *src_add(st_iter *it) { return &it->srcs[it->nsrc++]; }

static int add_mem(st_iter *it, st_mem *m, int64_t token, const uint8_t *pk, size_t pklen)
{
    const mt_rec *rec = memtable_find(&m->mt, token, pk, pklen);
    if (!rec) return 0;
    src *s = src_add(it);
    s->m = m;
    st_mem_ref(m);
    if (rec->kind == MT_KV) {
        s->kv = rec;
        return 0;
    }
    mt_part *p = s->mp = (mt_part *)rec;
    sst_del d = {p->del_ts, p->del_ldt};
    if (d.ts != ST_NO_TIMESTAMP && sst_del_supersedes(d, it->pdel)) it->pdel = d;
    if (p->x && p->x->nrt) {
        for (uint32_t i = 0; i < p->x->nrt; i++) {
            const mt_rt *r = &p->x->rts[i];
            sst_rt x = {{r->start.key, r->start.len, r->start.incl, r->start.unbounded},
                        {r->end.key, r->end.len, r->end.incl, r->end.unbounded}, {r->del.ts, r->del.ldt}};
            if (add_rts(it, &x, 1)) return SIB_ENOMEM;
        }
    }
    return 0;
}

static bool ck_misses_slices(const st_iter *it, const sst_stats *st)
{
    if (!st->min_ck) return false;
    for (size_t i = 0; i < it->nslices; i++) {
        const sst_bound *a = &it->sl[2 * i], *b = &it->sl[2 * i + 1];
        if (sst_bound_cmp(st->min_ck, st->min_cklen, b, false) < 0 && sst_bound_cmp(st->max_ck, st->max_cklen, a, true) > 0)
            return false;
    }
    return true;
}

static const uint32_t spr_bounds[ST_SPR_BUCKETS] = {0, 1, 2, 3, 4, 5, 6, 8, 10, 14, 20, UINT32_MAX};

uint32_t st_spr_bound(size_t i) { return i < ST_SPR_BUCKETS ? spr_bounds[i] : UINT32_MAX; }

void st_note_sstables_per_read(st_table *t, uint32_t n)
{
    size_t b = 0;
    while (n > spr_bounds[b]) b++; /* the last bound is UINT32_MAX */
    __atomic_fetch_add(&t->spr[b], 1, __ATOMIC_RELAXED);
    if (n) __atomic_fetch_add(&t->spr_sum, n, __ATOMIC_RELAXED); /* a locked add saved per memtable read */
}

static int add_sst(st_iter *it, sstable *t, sst_bcache *bc, const uint8_t *pk, size_t pklen, int64_t token)
{
    const sst_stats *st = sst_get_stats(t);
    if (it->pdel.ts != SST_NO_TS && st->max_ts <= it->pdel.ts) return 0; /* all shadowed */
    /* the key range from Statistics.db first: split compaction outputs (and
     * LCS levels) cover disjoint ranges, so most are skipped here for free */
    if (!st->partitions || token < st->first_token || token > st->last_token) return 0;
    if (!sst_may_contain(t, token)) return 0;
    sst_part *p;
    int rc = it->cache_only ? sst_part_open_cache_only(t, bc, pk, pklen, token, &p, &it->err)
                            : sst_part_open_cached(t, bc, pk, pklen, token, &p, &it->err);
    if (rc || !p) return rc;
    it->ssts_read++;
    src *s = src_add(it);
    s->sp = p;
    sst_del d = sst_part_deletion(p);
    if (d.ts != SST_NO_TS && sst_del_supersedes(d, it->pdel)) it->pdel = d;
    const sst_rt *rts;
    size_t n = sst_part_rts(p, &rts);
    if (add_rts(it, rts, n)) return SIB_ENOMEM;
    s->skip = ck_misses_slices(it, st);
    return 0;
}

/* The iterator, with room for maxsrc sources and the slices copied: spare
 * (a recycled one, st_iter_recycle) when it has the room, else a new one
 * with at least the spare's room (the spare is freed). */
static st_iter *iter_new(st_iter *spare, size_t maxsrc, const st_slice *slices, size_t nslices, bool reversed,
                         int32_t now_s)
{
    size_t keybytes = 0, ns = nslices ? nslices : 1;
    for (size_t i = 0; i < nslices; i++)
        keybytes += (slices[i].start.unbounded ? 0 : slices[i].start.len) + (slices[i].end.unbounded ? 0 : slices[i].end.len);
    st_iter *it = spare;
    if (it && (maxsrc > it->srccap || 2 * ns > it->slcap || keybytes > it->keycap)) {
        maxsrc = SIB_MAX(maxsrc, it->srccap);
        ns = SIB_MAX(ns, it->slcap / 2);
        keybytes = SIB_MAX(keybytes, it->keycap);
        st_iter_destroy(it);
        it = NULL;
    }
    if (!it) {
        /* one allocation: the iterator, its sources and pick slots, the
         * slice bounds and their key bytes (last: the only unaligned part) */
        it = calloc(1, sizeof *it + maxsrc * (sizeof(src) + sizeof(const sst_row *)) + 2 * ns * sizeof(sst_bound) +
                           keybytes);
        if (!it) return NULL;
        it->srcs = (src *)(it + 1);
        it->pick = (const sst_row **)(it->srcs + maxsrc);
        it->sl = (sst_bound *)(it->pick + maxsrc);
        it->srccap = maxsrc;
        it->slcap = 2 * ns;
        it->keycap = keybytes;
        it->pdel = (sst_del){SST_NO_TS, SST_NO_LDT};
    }
    it->nslices = nslices ? nslices : 1;
    it->reversed = reversed;
    it->now = now_s;
    if (!nslices) {
        it->sl[0] = (sst_bound){.unbounded = true};
        it->sl[1] = (sst_bound){.unbounded = true};
    } else {
        uint8_t *keys = (uint8_t *)(it->sl + it->slcap);
        for (size_t i = 0; i < 2 * nslices; i++) {
            const st_bound *b = i % 2 ? &slices[i / 2].end : &slices[i / 2].start;
            sst_bound *d = &it->sl[i];
            d->incl = b->incl;
            d->unbounded = b->unbounded;
            d->len = b->unbounded ? 0 : (uint32_t)b->len;
            d->key = keys;
            if (d->len) memcpy(keys, b->key, d->len);
            keys += d->len;
        }
    }
    return it;
}

st_iter *st_read(st_table *t, const uint8_t *pk, size_t pklen, const st_slice *slices, size_t nslices,
                 bool reversed, int32_t now_s)
{
    st_iter *it = st_read_ex(NULL, t, sib_murmur3_token(pk, pklen), pk, pklen, slices, nslices, reversed, now_s, false);
    if (it) st_note_sstables_per_read(t, it->ssts_read);
    return it;
}

uint32_t st_iter_sstables(const st_iter *it) { return it->ssts_read; }

bool st_iter_memtables_only(const st_iter *it)
{
    for (size_t i = 0; i < it->nsrc; i++)
        if (!it->srcs[i].m) return false;
    return true;
}

void st_prefetch(st_table *t, int64_t token, bool record)
{
    if (t->mem) memtable_prefetch_slot(&t->mem->mt, token, record);
}

st_iter *st_read_ex(st_iter *spare, st_table *t, int64_t token, const uint8_t *pk, size_t pklen,
                    const st_slice *slices, size_t nslices, bool reversed, int32_t now_s, bool cache_only)
{
    size_t maxsrc = 1 + t->nssts;
    for (st_mem *m = t->frozen; m; m = m->next) maxsrc++;
    st_iter *it = iter_new(spare, maxsrc, slices, nslices, reversed, now_s);
    if (!it) return NULL;
    it->cache_only = cache_only;
    int rc = add_mem(it, t->mem, token, pk, pklen);
    for (st_mem *m = t->frozen; !rc && m; m = m->next) rc = add_mem(it, m, token, pk, pklen);
    for (size_t i = 0; !rc && i < t->nssts; i++) rc = add_sst(it, t->ssts[i], storage_bcache(t->s), pk, pklen, token);
    if (rc == SIB_ENOMEM) sib_err_set(&it->err, rc, "storage: out of memory");
    it->status = rc;
    return it;
}

/* The copy of an active memtable partition as a source: the newest one,
 * first in the sources as the active memtable is in st_read. */
static int add_snap(st_iter *it, const st_snap_part *sp)
{
    src *s = src_add(it);
    s->sn = sp;
    if (sp->pdel.ts != SST_NO_TS && sst_del_supersedes(sp->pdel, it->pdel)) it->pdel = sp->pdel;
    return add_rts(it, sp->rts, sp->nrt);
}

st_iter *st_read_pinned(st_iter *spare, const st_pin *v, const st_snap_part *sp, int64_t token, const uint8_t *pk,
                        size_t pklen, const st_slice *slices, size_t nslices, bool reversed, int32_t now_s)
{
    st_iter *it = iter_new(spare, (sp ? 1 : 0) + v->nmems + v->nssts, slices, nslices, reversed, now_s);
    if (!it) return NULL;
    int rc = sp ? add_snap(it, sp) : 0;
    for (size_t i = 0; !rc && i < v->nmems; i++) rc = add_mem(it, v->mems[i], token, pk, pklen);
    for (size_t i = 0; !rc && i < v->nssts; i++) rc = add_sst(it, v->ssts[i], v->bc, pk, pklen, token);
    if (rc == SIB_ENOMEM) sib_err_set(&it->err, rc, "storage: out of memory");
    it->status = rc;
    return it;
}

/* Releases what the sources hold (references, SSTable parts). */
static void release_sources(st_iter *it)
{
    for (size_t i = 0; i < it->nsrc; i++) {
        src *s = &it->srcs[i];
        st_mem_unref(s->m);
        sst_part_close(s->sp);
    }
}

void st_iter_destroy(st_iter *it)
{
    if (!it) return;
    release_sources(it);
    for (size_t i = 0; i < it->srccap; i++) mt_rowview_free(&it->srcs[i].view);
    for (size_t i = 0; i < it->statcap; i++) mt_rowview_free(&it->stat[i].view);
    free(it->stat);
    free(it->rts);
    free(it->last);
    cm_rowmerge_free(&it->rm);
    free(it->cv);
    free(it);
}

/* Scratch a recycled iterator keeps: what a partition of up to this many
 * cells, tombstones and clustering bytes needs. A read of a bigger one
 * gives its scratch back, so a thread's spare never holds more for long. */
#define ITER_KEEP_CELLS 256
#define ITER_KEEP_RTS 64
#define ITER_KEEP_KEY 4096

st_iter *st_iter_recycle(st_iter *it)
{
    if (!it) return NULL;
    release_sources(it);
    for (size_t i = 0; i < it->nsrc; i++) {
        src *s = &it->srcs[i];
        if (s->view.capcells > ITER_KEEP_CELLS || s->view.capcdels > ITER_KEEP_CELLS) mt_rowview_free(&s->view);
        /* as calloc left it, but for the view's scratch */
        s->m = NULL;
        s->mp = NULL;
        s->kv = NULL;
        s->sn = NULL;
        s->sp = NULL;
        s->idx = 0;
        s->ver = 0;
        s->has = s->consumed = s->skip = false;
    }
    if (it->cvcap > ITER_KEEP_CELLS) {
        free(it->cv);
        it->cv = NULL;
        it->cvcap = 0;
    }
    if (it->rtcap > ITER_KEEP_RTS) {
        free(it->rts);
        it->rts = NULL;
        it->rtcap = 0;
    }
    if (it->lastcap > ITER_KEEP_KEY) {
        free(it->last);
        it->last = NULL;
        it->lastcap = 0;
    }
    const cm_rowmerge *rm = &it->rm;
    if (rm->capmc > ITER_KEEP_CELLS || rm->capoc > ITER_KEEP_CELLS || rm->capmd > ITER_KEEP_CELLS ||
        rm->capod > ITER_KEEP_CELLS || rm->caprts > ITER_KEEP_RTS)
        cm_rowmerge_free(&it->rm);
    it->positioned = false;
    it->si = 0;
    it->nsrc = 0;
    it->pdel = (sst_del){SST_NO_TS, SST_NO_LDT};
    it->nrt = 0;
    it->lastlen = 0;
    it->has_last = false;
    it->ssts_read = 0;
    it->tombstones = 0;
    it->cache_only = false;
    it->status = 0;
    sib_err_clear(&it->err);
    return it;
}

int st_iter_status(const st_iter *it, sib_err *err)
{
    if (!it->status) return 0;
    if (it->err.msg[0]) return sib_err_set(err, it->status, "%s", it->err.msg);
    return sib_err_set(err, it->status, "storage: read failed: %s", sib_strerror(it->status));
}

/* ---- source cursors ---- */

static bool before_start(const bt_ent *e, const void *arg)
{
    return mt_bound_cmp(e->key, e->keylen, arg, true) < 0;
}
static bool not_after_end(const bt_ent *e, const void *arg)
{
    return mt_bound_cmp(e->key, e->keylen, arg, false) < 0;
}

/* Loads the memtable cursor's row into s->row (or clears has). */
static int mem_peek(src *s)
{
    s->has = bt_cur_valid(&s->cur);
    if (s->has && !mem_row(s, (const mt_row *)bt_cur_get(&s->cur), false)) return SIB_ENOMEM;
    return 0;
}

static bool not_after_ent(const bt_ent *e, const void *arg) { return bt_ent_cmp(e, arg) <= 0; }
static bool before_ent(const bt_ent *e, const void *arg) { return bt_ent_cmp(e, arg) < 0; }

/* Positions a source at the start of slice (a, b) (its end when reversed)
 * or, for a memtable whose tree moved, strictly past the last key returned
 * (SSTables never move, so they only ever get the first kind). */
static int src_position(st_iter *it, src *s, const sst_bound *a, const sst_bound *b)
{
    s->consumed = false;
    if (s->sp) {
        int rc = sst_part_seek(s->sp, it->reversed ? b : a, it->reversed, &it->err);
        const sst_row *r;
        if (!rc && (rc = sst_part_next(s->sp, &r, &it->err)) == 1) s->row = *r;
        s->has = rc == 1;
        return rc < 0 ? rc : 0;
    }
    if (s->sn) { /* never moves: positioned only at a slice's start (or end) */
        const st_snap_part *sp = s->sn;
        size_t lo = 0, hi = sp->nrows;
        while (lo < hi) { /* first row after the bound (reversed: after the end bound) */
            size_t mid = (lo + hi) / 2;
            const sst_row *r = &sp->rows[mid];
            bool before = it->reversed ? sst_bound_cmp(r->ck, r->cklen, b, false) < 0
                                       : sst_bound_cmp(r->ck, r->cklen, a, true) < 0;
            if (before) lo = mid + 1;
            else hi = mid;
        }
        s->idx = it->reversed ? lo - 1 : lo; /* reversed: lo 0 wraps, the check below fails */
        s->has = s->idx < sp->nrows;
        if (s->has) s->row = sp->rows[s->idx];
        return 0;
    }
    if (s->kv) { /* its one row, "": before every other key */
        if (it->has_last) s->has = it->reversed && it->lastlen;
        else s->has = it->reversed ? bound_cmp(NULL, 0, b, false) < 0 : bound_cmp(NULL, 0, a, true) > 0;
        return s->has && !kv_row(s) ? SIB_ENOMEM : 0;
    }
    const bt *rows = &s->mp->rows;
    bool found;
    if (it->has_last) {
        bt_ent probe = {bt_key_prefix(it->last, it->lastlen), it->last, (uint32_t)it->lastlen, 0};
        found = bt_seek(rows, it->reversed ? before_ent : not_after_ent, &probe, &s->cur);
    } else {
        mt_bound mb = to_mt(it->reversed ? b : a);
        found = bt_seek(rows, it->reversed ? not_after_end : before_start, &mb, &s->cur);
    }
    if (it->reversed) {
        if (found) bt_cur_prev(&s->cur);
        else bt_last(rows, &s->cur);
    }
    s->ver = rows->version;
    return mem_peek(s);
}

static int src_advance(st_iter *it, src *s)
{
    s->consumed = false;
    if (s->sp) {
        const sst_row *r;
        int rc = sst_part_next(s->sp, &r, &it->err);
        if (rc == 1) s->row = *r;
        s->has = rc == 1;
        return rc < 0 ? rc : 0;
    }
    if (s->kv) {
        s->has = false;
        return 0;
    }
    if (s->sn) {
        s->idx = it->reversed ? s->idx - 1 : s->idx + 1;
        s->has = s->idx < s->sn->nrows;
        if (s->has) s->row = s->sn->rows[s->idx];
        return 0;
    }
    if (it->reversed) bt_cur_prev(&s->cur);
    else bt_cur_next(&s->cur);
    return mem_peek(s);
}

/* ---- merge + evaluation ---- */

/* Reconciles rows[0..n) (same key) into *out (compaction.h's merge). */
static int merge_rows(st_iter *it, const sst_row **rows, size_t n, sst_row *out)
{
    if (n == 1) { /* one source: nothing to reconcile (most reads) */
        *out = *rows[0];
        return 0;
    }
    return cm_merge_rows(&it->rm, rows, n, out);
}

static int64_t cdel_ts(const sst_row *r, uint32_t col)
{
    for (uint32_t i = 0; i < r->ncdels; i++)
        if (r->cdels[i].col == col) return r->cdels[i].del.ts;
    return ST_NO_TIMESTAMP;
}

/* The liveness rules (row_eval's, and st_read_kv's for a KV record): a
 * marker is live when newer than the deletion over it and not expired; a
 * cell is dead (a tombstone, or expired: both count as tombstones), or
 * shadowed by that deletion, or live. */
static inline bool marker_live(int64_t ts, int32_t ttl, int32_t ldt, int64_t del_ts, int32_t now)
{
    return ts != SST_NO_TS && ts > del_ts && (ttl == 0 || now < ldt);
}

enum { CELL_LIVE, CELL_DEAD, CELL_SHADOWED };

static inline int cell_state(const sst_cell *c, int64_t del_ts, int32_t now)
{
    if (sst_cell_tomb(c) || (c->ttl > 0 && now >= c->ldt)) return CELL_DEAD;
    return c->ts <= del_ts ? CELL_SHADOWED : CELL_LIVE;
}

static inline st_cell_view cell_view(const sst_cell *c)
{
    return (st_cell_view){c->col, c->pathlen ? c->path : NULL, c->pathlen, c->val, c->vlen, c->ts, c->ttl, c->ldt};
}

/* Evaluates a merged row at now; false if nothing in it is live. */
static bool row_eval(st_iter *it, const sst_row *r, st_row *out)
{
    sst_del d = it->pdel;
    if (!r->is_static) {
        for (size_t i = 0; i < it->nrt; i++) {
            const sst_rt *rt = &it->rts[i];
            if (sst_del_supersedes(rt->del, d) && sst_bound_cmp(r->ck, r->cklen, &rt->start, true) > 0 &&
                sst_bound_cmp(r->ck, r->cklen, &rt->end, false) < 0)
                d = rt->del;
        }
        if (r->del.ts != SST_NO_TS && sst_del_supersedes(r->del, d)) d = r->del;
    }
    int32_t now = it->now;
    bool marker = !r->is_static && marker_live(r->marker_ts, r->marker_ttl, r->marker_ldt, d.ts, now);
    if (r->ncells > it->cvcap && !sib_grow((void **)&it->cv, &it->cvcap, r->ncells, sizeof *it->cv)) {
        it->status = SIB_ENOMEM;
        return false;
    }
    size_t k = 0;
    if (r->del.ts != SST_NO_TS) it->tombstones++;
    for (uint32_t i = 0; i < r->ncells; i++) {
        const sst_cell *c = &r->cells[i];
        int st = cell_state(c, d.ts, now);
        if (st == CELL_DEAD) it->tombstones++;
        if (st != CELL_LIVE || (r->ncdels && c->ts <= cdel_ts(r, c->col))) continue;
        it->cv[k++] = cell_view(c);
    }
    if (!marker && !k) return false;
    out->ck = r->ck;
    out->cklen = r->cklen;
    out->is_static = r->is_static;
    out->has_marker = marker;
    out->marker_ts = marker ? r->marker_ts : ST_NO_TIMESTAMP;
    out->marker_ttl = marker ? r->marker_ttl : 0;
    out->marker_expiry = marker ? r->marker_ldt : ST_NO_DELETION_TIME;
    out->cells = it->cv;
    out->ncells = k;
    return true;
}

static int row_key_cmp(const sst_row *a, const sst_row *b)
{
    size_t n = SIB_MIN(a->cklen, b->cklen);
    int c = n ? memcmp(a->ck, b->ck, n) : 0;
    return c ? c : (a->cklen < b->cklen ? -1 : a->cklen > b->cklen);
}

static bool set_last(st_iter *it, const sst_row *r)
{
    if (r->cklen >= it->lastcap && !sib_grow((void **)&it->last, &it->lastcap, r->cklen + 1, 1)) return false;
    if (r->cklen) memcpy(it->last, r->ck, r->cklen);
    it->lastlen = r->cklen;
    it->has_last = true;
    return true;
}

/* One step: advances consumed sources, re-seeks a moved memtable, picks the
 * next key. 1 = *out filled, 0 = slice done, <0 error. */
static int next_merged(st_iter *it, const sst_bound *a, const sst_bound *b, sst_row *out)
{
    const sst_row **pick = it->pick;
    size_t np = 0;
    for (size_t i = 0; i < it->nsrc; i++) {
        src *s = &it->srcs[i];
        int rc = 0;
        if (s->skip) continue;
        if (s->mp && s->ver != s->mp->rows.version) rc = src_position(it, s, a, b);
        else if (s->consumed) rc = src_advance(it, s);
        if (rc) return rc;
    }
    const sst_row *best = NULL;
    for (size_t i = 0; i < it->nsrc; i++) {
        src *s = &it->srcs[i];
        if (!s->has) continue;
        int c = best ? row_key_cmp(&s->row, best) : -1;
        if (it->reversed) c = -c;
        if (!best || c < 0) best = &s->row;
    }
    if (!best) return 0;
    bool in = it->reversed ? bound_cmp(best->ck, best->cklen, a, true) > 0 : bound_cmp(best->ck, best->cklen, b, false) < 0;
    if (!in) return 0;
    for (size_t i = 0; i < it->nsrc; i++) {
        src *s = &it->srcs[i];
        if (s->has && !row_key_cmp(&s->row, best)) {
            pick[np++] = &s->row;
            s->consumed = true;
        }
    }
    int rc = merge_rows(it, pick, np, out);
    if (!rc && !set_last(it, out)) rc = SIB_ENOMEM;
    return rc ? rc : 1;
}

/* Does the slice [a, b] hold a KV record's one row (clustering key "")? */
static bool slice_holds_kv_row(const sst_bound *a, const sst_bound *b)
{
    return bound_cmp(NULL, 0, a, true) > 0 && bound_cmp(NULL, 0, b, false) < 0;
}

/* st_iter_next when the partition's only source is a memtable KV record
 * (a table without clustering columns, found in the active memtable only:
 * most point reads): its one row, "" before every other key, in the slice
 * that holds it, without the k-way merge. A KV record has no partition
 * deletion and no range tombstones (add_mem), and no later slice can hold
 * the same key, so the iteration ends with it. */
static bool kv_only_next(st_iter *it, src *s, st_row *out)
{
    while (!it->status && it->si < it->nslices) {
        const sst_bound *a = &it->sl[2 * it->si], *b = &it->sl[2 * it->si + 1];
        it->si++;
        if (!slice_holds_kv_row(a, b)) continue;
        it->si = it->nslices;
        if (!kv_row(s)) {
            it->status = SIB_ENOMEM;
            return false;
        }
        return row_eval(it, &s->row, out);
    }
    return false;
}

bool st_iter_next(st_iter *it, st_row *out)
{
    bool kv = it->nsrc == 1 && it->srcs[0].kv;
    if (kv && kv_only_next(it, &it->srcs[0], out)) return true;
    while (!kv && !it->status && it->si < it->nslices) {
        size_t k = it->reversed ? it->nslices - 1 - it->si : it->si;
        const sst_bound *a = &it->sl[2 * k], *b = &it->sl[2 * k + 1];
        if (!it->positioned) {
            it->has_last = false;
            for (size_t i = 0; !it->status && i < it->nsrc; i++) {
                src *s = &it->srcs[i];
                if (s->skip) continue;
                it->status = src_position(it, s, a, b);
            }
            it->positioned = true;
            if (it->status) break;
        }
        sst_row m;
        int rc = next_merged(it, a, b, &m);
        if (rc < 0) {
            it->status = rc;
            break;
        }
        if (rc == 0) {
            it->si++;
            it->positioned = false;
            it->has_last = false;
            continue;
        }
        if (row_eval(it, &m, out)) return true;
    }
    if (it->status == SIB_ENOMEM && !it->err.msg[0]) sib_err_set(&it->err, SIB_ENOMEM, "storage: out of memory");
    return false;
}

int st_read_kv(st_iter *scratch, st_table *t, int64_t token, const uint8_t *pk, size_t pklen, const st_slice *slices,
               size_t nslices, int32_t now_s, st_cell_view *room, size_t nroom, st_row *out, uint64_t *tombstones)
{
    *tombstones = 0;
    if (t->frozen) return -1;
    const mt_rec *rec = memtable_find(&t->mem->mt, token, pk, pklen);
    if (!rec) return 0; /* no source at all */
    if (rec->kind != MT_KV) return -1;
    bool in = !nslices; /* its one row's key, "", in a slice? */
    for (size_t i = 0; !in && i < nslices; i++) {
        const st_bound *a = &slices[i].start, *b = &slices[i].end;
        sst_bound sa = {a->key, (uint32_t)a->len, a->incl, a->unbounded};
        sst_bound sb = {b->key, (uint32_t)b->len, b->incl, b->unbounded};
        in = slice_holds_kv_row(&sa, &sb);
    }
    if (!in) return 0;
    /* row_eval's rules with nothing deleted over the row (a KV record has
     * no partition deletion, range tombstone or row deletion), read from
     * the record in place */
    st_cell_view *cv = room;
    if (rec->ncells > nroom) {
        if (!scratch) return -1;
        if (rec->ncells > scratch->cvcap && !sib_grow((void **)&scratch->cv, &scratch->cvcap, rec->ncells, sizeof *cv))
            return -1; /* out of memory: the general read says so */
        cv = scratch->cv;
    }
    int64_t mts;
    int32_t mttl, mldt;
    const uint8_t *p = mt_kv_marker(rec, &mts, &mttl, &mldt);
    bool marker = marker_live(mts, mttl, mldt, SST_NO_TS, now_s);
    size_t k = 0;
    for (uint32_t i = 0; i < rec->ncells; i++) {
        sst_cell c;
        p = mt_kv_cell(p, &c);
        int st = cell_state(&c, SST_NO_TS, now_s);
        if (st == CELL_DEAD) ++*tombstones;
        else if (st == CELL_LIVE) cv[k++] = cell_view(&c);
    }
    if (!marker && !k) return 0;
    *out = (st_row){.ck = (const uint8_t *)"", .has_marker = marker, .marker_ts = marker ? mts : ST_NO_TIMESTAMP,
                    .marker_ttl = marker ? mttl : 0, .marker_expiry = marker ? mldt : ST_NO_DELETION_TIME,
                    .cells = cv, .ncells = k};
    return 1;
}

uint64_t st_iter_tombstones(const st_iter *it) { return it->tombstones + it->nrt; }

/* The partition's static row, every source's merged: 1 (*out), 0 none,
 * <0 error (it->status set). */
static int static_merged(st_iter *it, sst_row *out)
{
    if (it->status) return it->status;
    if (it->nsrc > it->statcap) { /* a recycled iterator's may be too small */
        for (size_t i = 0; i < it->statcap; i++) mt_rowview_free(&it->stat[i].view);
        free(it->stat);
        it->statcap = 0;
        if (!(it->stat = calloc(it->nsrc, sizeof *it->stat))) return it->status = SIB_ENOMEM;
        it->statcap = it->nsrc;
    }
    const sst_row **pick = it->pick;
    size_t np = 0;
    for (size_t i = 0; i < it->nsrc; i++) {
        src *s = &it->srcs[i];
        if (s->sp) {
            if ((pick[np] = sst_part_static(s->sp))) np++;
        } else if (s->sn) {
            if ((pick[np] = s->sn->stat)) np++;
        } else if (s->mp && s->mp->x && s->mp->x->static_row) {
            src *t = &it->stat[i];
            if (!mem_row(t, s->mp->x->static_row, true)) return it->status = SIB_ENOMEM;
            pick[np++] = &t->row;
        }
    }
    if (!np) return 0;
    if (merge_rows(it, pick, np, out)) return it->status = SIB_ENOMEM;
    return 1;
}

bool st_iter_static(st_iter *it, st_row *out)
{
    sst_row m;
    return static_merged(it, &m) == 1 && row_eval(it, &m, out);
}

bool st_partition_live(st_table *t, const uint8_t *pk, size_t pklen, int32_t now_s)
{
    st_iter *it = st_read(t, pk, pklen, NULL, 0, false, now_s);
    if (!it) return false;
    st_row r;
    bool live = st_iter_static(it, &r) || st_iter_next(it, &r);
    st_iter_destroy(it);
    return live;
}

/* ---- st_scan ----
 * A k-way merge of partition keys over the memtables' ordered indexes and
 * the SSTables' index scans; each candidate is checked with
 * st_partition_live. When the table's sources change (flush, truncate) or
 * the active memtable's index moves (a partition added: positions shift),
 * the cursors are rebuilt just past the last key returned. */

typedef struct pk_src {
    st_mem *m;
    size_t pos; /* memtable: index position of the current partition; snap: its part */
    bool snap;  /* the pin's copy of the active memtable */
    sst_pscan *ps;
    bool has;
    int64_t token;
    const uint8_t *pk;
    size_t pklen;
} pk_src;

struct st_scan {
    st_table *t;        /* NULL: over a pin */
    const st_pin *pin;
    bool cut;           /* stopped at the pin's cut */
    const st_snap_part *sp; /* the copy of the partition returned last, if any */
    int32_t now;
    bool built;
    uint64_t srcver;
    uint32_t memver;
    pk_src *srcs;
    size_t nsrc;
    int64_t token;   /* resume position: start, then last returned */
    uint8_t *key;
    size_t keylen, keycap;
    bool has_key, has_pos, incl;
    int status;
    sib_err err;
};

st_scan *st_scan_open(st_table *t, const st_position *start, int32_t now_s)
{
    st_scan *sc = calloc(1, sizeof *sc);
    if (!sc) return NULL;
    sc->t = t;
    sc->now = now_s;
    if (start) {
        sc->has_pos = true;
        sc->token = start->token;
        sc->incl = start->inclusive;
        if (start->pk) {
            sc->has_key = true;
            if (!sib_grow((void **)&sc->key, &sc->keycap, start->pklen + 1, 1)) {
                free(sc);
                return NULL;
            }
            if (start->pklen) memcpy(sc->key, start->pk, start->pklen);
            sc->keylen = start->pklen;
        }
    }
    return sc;
}

static void scan_clear(st_scan *sc)
{
    for (size_t i = 0; i < sc->nsrc; i++) {
        st_mem_unref(sc->srcs[i].m);
        sst_pscan_close(sc->srcs[i].ps);
    }
    free(sc->srcs);
    sc->srcs = NULL;
    sc->nsrc = 0;
    sc->built = false;
}

static int pk_peek(st_scan *sc, pk_src *p)
{
    if (p->snap) {
        p->has = p->pos < sc->pin->nparts;
        if (p->has) {
            const st_snap_part *x = &sc->pin->parts[p->pos];
            p->pk = x->pk;
            p->pklen = x->pklen;
            p->token = x->token;
        }
        return 0;
    }
    if (p->m) {
        const mt_rec *r = memtable_at(&p->m->mt, &p->pos);
        p->has = r != NULL;
        if (p->has) {
            p->pk = mt_rec_pk(r);
            p->pklen = r->pklen;
            p->token = sib_murmur3_token(p->pk, p->pklen);
        }
        return 0;
    }
    int rc = sst_pscan_next(p->ps, &p->pk, &p->pklen, &p->token, &sc->err);
    p->has = rc == 1;
    return rc < 0 ? rc : 0;
}

static int pk_cmp(const pk_src *a, const pk_src *b);

/* The first copied partition after the resume position (at it when incl). */
static size_t snap_seek(const st_scan *sc)
{
    const st_pin *v = sc->pin;
    if (!sc->has_pos) return 0;
    pk_src at = {.token = sc->token, .pk = sc->key, .pklen = sc->keylen};
    size_t lo = 0, hi = v->nparts;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        pk_src x = {.token = v->parts[mid].token, .pk = v->parts[mid].pk, .pklen = v->parts[mid].pklen};
        int c;
        if (sc->has_key) c = pk_cmp(&x, &at);
        else c = x.token < at.token ? -1 : x.token > at.token ? 1 : 0;
        if (c < 0 || (c == 0 && !sc->incl)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int scan_build_pinned(st_scan *sc)
{
    const st_pin *v = sc->pin;
    if (!(sc->srcs = calloc(1 + v->nmems + v->nssts, sizeof *sc->srcs))) return SIB_ENOMEM;
    pk_src *p = &sc->srcs[sc->nsrc++];
    p->snap = true;
    p->pos = snap_seek(sc);
    pk_peek(sc, p);
    for (size_t i = 0; i < v->nmems; i++) {
        p = &sc->srcs[sc->nsrc++];
        p->m = v->mems[i];
        st_mem_ref(p->m);
        p->pos = sc->has_pos ? memtable_seek(&p->m->mt, sc->token, sc->has_key ? sc->key : NULL, sc->keylen, sc->incl) : 0;
        pk_peek(sc, p);
    }
    for (size_t i = 0; i < v->nssts; i++) {
        p = &sc->srcs[sc->nsrc++];
        int rc = sst_pscan_open(v->ssts[i], sc->has_pos ? sc->token : INT64_MIN, sc->has_key ? sc->key : NULL,
                                sc->keylen, sc->has_pos ? sc->incl : true, &p->ps, &sc->err);
        if (!rc) rc = pk_peek(sc, p);
        if (rc) return rc;
    }
    sc->built = true;
    return 0;
}

static int scan_build(st_scan *sc)
{
    if (sc->pin) return scan_build_pinned(sc);
    st_table *t = sc->t;
    size_t n = 1 + t->nssts;
    for (st_mem *m = t->frozen; m; m = m->next) n++;
    if (!(sc->srcs = calloc(n, sizeof *sc->srcs))) return SIB_ENOMEM;
    for (st_mem *m = t->mem; m; m = m == t->mem ? t->frozen : m->next) {
        pk_src *p = &sc->srcs[sc->nsrc++];
        p->m = m;
        st_mem_ref(p->m);
        p->pos = sc->has_pos ? memtable_seek(&p->m->mt, sc->token, sc->has_key ? sc->key : NULL, sc->keylen, sc->incl) : 0;
        pk_peek(sc, p);
    }
    for (size_t i = 0; i < t->nssts; i++) {
        pk_src *p = &sc->srcs[sc->nsrc++];
        int rc = sst_pscan_open(t->ssts[i], sc->has_pos ? sc->token : INT64_MIN, sc->has_key ? sc->key : NULL,
                                sc->keylen, sc->has_pos ? sc->incl : true, &p->ps, &sc->err);
        if (!rc) rc = pk_peek(sc, p);
        if (rc) return rc;
    }
    sc->built = true;
    sc->srcver = t->srcver;
    sc->memver = memtable_version(&t->mem->mt);
    return 0;
}

static int pk_cmp(const pk_src *a, const pk_src *b)
{
    if (a->token != b->token) return a->token < b->token ? -1 : 1;
    size_t n = SIB_MIN(a->pklen, b->pklen);
    int c = n ? memcmp(a->pk, b->pk, n) : 0;
    return c ? c : (a->pklen < b->pklen ? -1 : a->pklen > b->pklen);
}

/* The next candidate partition in order (live or not): 1, 0 at the end,
 * <0 on error. sc->key/keylen/token hold it. */
static int scan_step(st_scan *sc)
{
    if (sc->t && sc->built && (sc->srcver != sc->t->srcver || sc->memver != memtable_version(&sc->t->mem->mt)))
        scan_clear(sc);
    int rc;
    if (!sc->built && (rc = scan_build(sc))) return rc;
    pk_src *best = NULL;
    for (size_t i = 0; i < sc->nsrc; i++)
        if (sc->srcs[i].has && (!best || pk_cmp(&sc->srcs[i], best) < 0)) best = &sc->srcs[i];
    if (!best) return 0;
    if (sc->pin && sc->pin->cut && sc->pin->nparts) {
        /* past the last copied active partition: the copy cannot tell */
        const st_snap_part *l = &sc->pin->parts[sc->pin->nparts - 1];
        pk_src last = {.token = l->token, .pk = l->pk, .pklen = l->pklen};
        if (pk_cmp(best, &last) > 0) {
            sc->cut = true;
            return 0;
        }
    }
    if (!sib_grow((void **)&sc->key, &sc->keycap, best->pklen + 1, 1)) return SIB_ENOMEM;
    pk_src cur = *best;
    memcpy(sc->key, cur.pk, cur.pklen); /* before the sources move */
    sc->keylen = cur.pklen;
    sc->token = cur.token;
    sc->has_pos = sc->has_key = true;
    sc->incl = false;
    cur.pk = sc->key;
    sc->sp = NULL;
    for (size_t i = 0; i < sc->nsrc; i++) {
        pk_src *p = &sc->srcs[i];
        if (!p->has || pk_cmp(p, &cur)) continue;
        if (p->snap) sc->sp = &sc->pin->parts[p->pos];
        if (p->m || p->snap) p->pos++;
        if ((rc = pk_peek(sc, p))) return rc;
    }
    return 1;
}

bool st_scan_next_partition(st_scan *sc, const uint8_t **pk, size_t *pklen, int64_t *token)
{
    while (!sc->status) {
        int rc = scan_step(sc);
        if (rc <= 0) {
            sc->status = rc;
            break;
        }
        if (!st_partition_live(sc->t, sc->key, sc->keylen, sc->now)) continue;
        *pk = sc->key;
        *pklen = sc->keylen;
        *token = sc->token;
        return true;
    }
    return false;
}

st_scan *st_scan_pinned(const st_pin *v, const st_position *start)
{
    st_scan *sc = st_scan_open(NULL, start, 0);
    if (sc) sc->pin = v;
    return sc;
}

bool st_scan_next_candidate(st_scan *sc, const uint8_t **pk, size_t *pklen, int64_t *token, const st_snap_part **sp)
{
    if (sc->status) return false;
    int rc = scan_step(sc);
    if (rc <= 0) {
        sc->status = rc;
        return false;
    }
    *pk = sc->key;
    *pklen = sc->keylen;
    *token = sc->token;
    *sp = sc->sp;
    return true;
}

bool st_scan_cut(const st_scan *sc) { return sc->cut; }

bool st_scan_last(const st_scan *sc, const uint8_t **pk, size_t *pklen, int64_t *token)
{
    if (!sc->has_key) return false;
    *pk = sc->key;
    *pklen = sc->keylen;
    *token = sc->token;
    return true;
}

int st_scan_status(const st_scan *sc, sib_err *err)
{
    if (!sc->status) return 0;
    if (sc->err.msg[0]) return sib_err_set(err, sc->status, "%s", sc->err.msg);
    return sib_err_set(err, sc->status, "storage: scan failed: %s", sib_strerror(sc->status));
}

void st_scan_destroy(st_scan *sc)
{
    if (!sc) return;
    scan_clear(sc);
    free(sc->key);
    free(sc);
}

/* ---- unfiltered: a partition's whole state as a mutation ---- */

static void unf_bound(const sst_bound *b, st_bound *out)
{
    *out = (st_bound){b->key, b->len, b->incl, b->unbounded};
}

/* One merged row with everything in it: marker, row deletion, collection
 * deletions, live, expiring and deleted cells, each with its timestamp. */
static void unf_row(st_mutation *m, const sst_row *r)
{
    if (r->is_static) st_mut_static(m);
    else st_mut_row(m, r->ck, r->cklen);
    if (!r->is_static) {
        if (r->marker_ts != SST_NO_TS) st_mut_row_marker(m, r->marker_ts, r->marker_ttl, r->marker_ldt);
        if (r->del.ts != SST_NO_TS) st_mut_row_delete(m, r->del.ts, r->del.ldt);
    }
    for (uint32_t i = 0; i < r->ncdels; i++) st_mut_complex_delete(m, r->cdels[i].col, r->cdels[i].del.ts, r->cdels[i].del.ldt);
    for (uint32_t i = 0; i < r->ncells; i++) {
        const sst_cell *c = &r->cells[i];
        if (sst_cell_tomb(c)) {
            if (c->pathlen) st_mut_cell_path_tombstone(m, c->col, c->path, c->pathlen, c->ts, c->ldt);
            else st_mut_cell_tombstone(m, c->col, c->ts, c->ldt);
        } else if (c->pathlen) {
            st_mut_cell_path(m, c->col, c->path, c->pathlen, c->val, c->vlen, c->ts, c->ttl, c->ldt);
        } else {
            st_mut_cell(m, c->col, c->val, c->vlen, c->ts, c->ttl, c->ldt);
        }
    }
}

int st_iter_unfiltered(st_iter *it, bool with_static, st_mutation *m, sib_err *err)
{
    if (!it->status && it->pdel.ts != SST_NO_TS) st_mut_partition_delete(m, it->pdel.ts, it->pdel.ldt);
    for (size_t i = 0; !it->status && i < it->nrt; i++) {
        st_bound a, b;
        unf_bound(&it->rts[i].start, &a);
        unf_bound(&it->rts[i].end, &b);
        st_mut_range_delete(m, &a, &b, it->rts[i].del.ts, it->rts[i].del.ldt);
    }
    sst_row r;
    if (with_static && static_merged(it, &r) == 1) unf_row(m, &r);
    while (!it->status && it->si < it->nslices) {
        size_t k = it->reversed ? it->nslices - 1 - it->si : it->si;
        const sst_bound *a = &it->sl[2 * k], *b = &it->sl[2 * k + 1];
        if (!it->positioned) {
            it->has_last = false;
            for (size_t i = 0; !it->status && i < it->nsrc; i++)
                if (!it->srcs[i].skip) it->status = src_position(it, &it->srcs[i], a, b);
            it->positioned = true;
            if (it->status) break;
        }
        int rc = next_merged(it, a, b, &r);
        if (rc < 0) it->status = rc;
        else if (rc == 0) {
            it->si++;
            it->positioned = false;
            it->has_last = false;
        } else {
            unf_row(m, &r);
        }
    }
    if (it->status) {
        if (it->status == SIB_ENOMEM && !it->err.msg[0]) sib_err_set(&it->err, SIB_ENOMEM, "storage: out of memory");
        if (err) *err = it->err;
        return it->status;
    }
    size_t len;
    if (!st_mutation_bytes(m, &len)) return sib_err_set(err, SIB_ETOOBIG, "unfiltered partition: too big for one mutation");
    return 0;
}
