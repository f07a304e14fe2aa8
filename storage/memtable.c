/* memtable.c: one table's in-memory write buffer.
 *
 * Structure (all arena-allocated, freed whole):
 *   memtable.parts  B+tree of mt_part ordered by (token signed, pk memcmp)
 *   mt_part         partition deletion, range tombstones (array), static row,
 *                   rows = B+tree of mt_row ordered by clustering key memcmp
 *   mt_row          liveness marker, row deletion, complex (collection)
 *                   deletions, cells sorted by (column id, cell path)
 *   mt_cell         ts, ttl, ldt, col, value (+ path)
 *
 * LWW happens on apply: a cell replaces the stored one only if it supersedes
 * it (sst_cell_supersedes, Cassandra's Cells.resolveRegular), markers and
 * deletions keep the superseding one. Deletions do not remove the data they
 * shadow here: reads apply them (read.c), and flush drops cells shadowed by
 * their row's or partition's deletion (flush.c). A superseding cell of the
 * same size is written over the old one; otherwise the replaced cell's bytes
 * stay in the arena until the memtable is freed, which is what
 * memtable_bytes reports.
 *
 * Only the loop thread touches a memtable.
 */
#include "storage_int.h"

#include <stdlib.h>

#define MT_ARENA_CHUNK (1u << 20)

int memtable_init(memtable *mt)
{
    memset(mt, 0, sizeof *mt);
    mt->arena = sib_arena_create(MT_ARENA_CHUNK);
    if (!mt->arena) return SIB_ENOMEM;
    bt_init(&mt->parts);
    mt->min_ts = ST_NO_TIMESTAMP;
    mt->max_ts = ST_NO_TIMESTAMP;
    return 0;
}

void memtable_free(memtable *mt)
{
    sib_arena_destroy(mt->arena);
    mt->arena = NULL;
    free(mt->ix.slots);
    free(mt->ix.old);
    mt->ix.slots = mt->ix.old = NULL;
}

/* ---- LWW ---- */

/* LivenessInfo.supersedes: higher ts; on a tie an expiring marker beats a
 * plain one, then the later expiry wins. */
static bool marker_supersedes(int64_t ts, int32_t ttl, int32_t ldt, const mt_row *r)
{
    if (r->marker_ts == ST_NO_TIMESTAMP) return true;
    if (ts != r->marker_ts) return ts > r->marker_ts;
    bool e = ttl > 0, re = r->marker_ttl > 0;
    if (e != re) return e;
    return ldt > r->marker_ldt;
}

int mt_bound_cmp(const uint8_t *ck, size_t cklen, const mt_bound *b, bool is_start)
{
    if (b->unbounded) return is_start ? 1 : -1;
    size_t n = cklen < b->len ? cklen : b->len;
    int c = n ? memcmp(ck, b->key, n) : 0;
    if (c) return c;
    if (cklen < b->len) return -1;
    /* ck extends the bound's prefix: the bound sits after that group for an
     * exclusive start or an inclusive end, before it otherwise. */
    bool bound_after = is_start ? !b->incl : b->incl;
    return bound_after ? -1 : 1;
}

/* ---- point-lookup index ----
 *
 * A point read or a write to an existing partition would otherwise walk the
 * B+tree: in a memtable of half a million partitions, five levels and a
 * dozen or more cache misses, a third of the CPU of a read. The tree stays
 * (flush and scans need the order); beside it an open-addressing hash table
 * (linear probing, load at most 3/4: eight slots share a cache line, so
 * the longer probe runs cost little) maps the token to the partition. A slot
 * is the mt_part pointer with 16 bits of the token in its top bits (user
 * pointers fit in 48 bits), so a probe for an absent partition almost never
 * dereferences anything. It doubles by moving the old table over a few
 * slots per insert (as Redis rehashes), never all at once, so no write
 * stalls on a large table. Its bytes count as memtable bytes. */

#define IX_FIRST 1024 /* slots */
#define IX_MOVE 4     /* old slots moved per insert: done long before the next doubling */

static inline uint64_t ix_tag(int64_t token) { return (uint64_t)token >> 48; }

static bool ix_put(uint64_t *slots, size_t mask, const mt_part *p)
{
    int64_t token = mt_part_token(p);
    for (size_t i = (size_t)token & mask;; i = (i + 1) & mask)
        if (!slots[i]) {
            slots[i] = (uint64_t)(uintptr_t)p | ix_tag(token) << 48;
            return true;
        }
}

static void ix_move(mt_index *x, size_t k)
{
    while (x->old && k--) {
        uint64_t v = x->old[x->oldpos];
        if (v) ix_put(x->slots, x->mask, (const mt_part *)(uintptr_t)(v & 0xffffffffffffull));
        if (++x->oldpos > x->oldmask) {
            free(x->old);
            x->old = NULL;
        }
    }
}

static void ix_add(memtable *mt, const mt_part *p)
{
    mt_index *x = &mt->ix;
    if (x->off) return;
    if ((uintptr_t)p >> 48) { /* cannot tag it */
        x->off = true;
        return;
    }
    if (4 * (x->n + 1) > 3 * (x->mask + 1) || !x->slots) {
        ix_move(x, SIZE_MAX); /* finish the previous doubling (normally done already) */
        size_t cap = x->slots ? 2 * (x->mask + 1) : IX_FIRST;
        uint64_t *n = calloc(cap, sizeof *n); /* large: fresh zero pages, no memset */
        if (!n) {
            x->off = true;
            return;
        }
        x->old = x->slots;
        x->oldmask = x->mask;
        x->oldpos = 0;
        x->slots = n;
        x->mask = cap - 1;
    }
    ix_put(x->slots, x->mask, p);
    x->n++;
    ix_move(x, IX_MOVE);
}

static mt_part *ix_probe(const uint64_t *slots, size_t mask, int64_t token, const uint8_t *pk, size_t pklen)
{
    uint64_t tag = ix_tag(token), prefix = bt_token_prefix(token);
    for (size_t i = (size_t)token & mask; slots[i]; i = (i + 1) & mask) {
        if (slots[i] >> 48 != tag) continue;
        mt_part *p = (mt_part *)(uintptr_t)(slots[i] & 0xffffffffffffull);
        if (p->e.prefix == prefix && p->e.keylen == pklen && (!pklen || !memcmp(p->pk, pk, pklen))) return p;
    }
    return NULL;
}

/* The partition, or NULL; *known is false when the index cannot tell (off). */
static mt_part *ix_find(const memtable *mt, int64_t token, const uint8_t *pk, size_t pklen, bool *known)
{
    const mt_index *x = &mt->ix;
    *known = !x->off;
    if (x->off || !x->slots) return NULL;
    mt_part *p = ix_probe(x->slots, x->mask, token, pk, pklen);
    if (!p && x->old) p = ix_probe(x->old, x->oldmask, token, pk, pklen);
    return p;
}

size_t memtable_bytes(const memtable *mt)
{
    const mt_index *x = &mt->ix;
    size_t b = sib_arena_used(mt->arena);
    if (x->slots) b += (x->mask + 1) * sizeof *x->slots;
    if (x->old) b += (x->oldmask + 1) * sizeof *x->old;
    return b;
}

/* Logged writes reach the memtable at the end of the loop iteration, after
 * the commitlog write (store.c), and an overwrite's two cache misses (its
 * index slot, then its partition) were a fifth of a write's CPU. So when a
 * write is queued its slot is fetched, and the partition that the previous
 * call's slot points to (arrived by now, while that request ran) as well:
 * by the apply both are in the cache. Only prefetches: nothing is
 * dereferenced, and a stale guess costs nothing but the fetch. */
void memtable_prefetch(memtable *mt, const uint8_t *pk, size_t pklen)
{
    const mt_index *x = &mt->ix;
    if (x->off || !x->slots) return;
    if (mt->pf_have) {
        uint64_t v = x->slots[(size_t)mt->pf_token & x->mask];
        if (v >> 48 == ix_tag(mt->pf_token)) {
            const uint8_t *p = (const uint8_t *)(uintptr_t)(v & 0xffffffffffffull);
            /* the partition and its key; behind them, when they were
             * written together, the row and its first cell (a key/value
             * partition spans five lines) */
            for (int k = 0; k < 5; k++) __builtin_prefetch(p + 64 * k);
        }
    }
    int64_t token = sib_murmur3_token(pk, pklen);
    __builtin_prefetch(&x->slots[(size_t)token & x->mask]);
    mt->pf_token = token;
    mt->pf_have = true;
}

/* ---- lookup / creation ---- */

mt_part *memtable_find(const memtable *mt, const uint8_t *pk, size_t pklen)
{
    int64_t token = sib_murmur3_token(pk, pklen);
    bool known;
    mt_part *p = ix_find(mt, token, pk, pklen, &known);
    if (p || known) return p;
    bt_ent probe = {bt_token_prefix(token), pk, (uint32_t)pklen, 0};
    return (mt_part *)bt_find(&mt->parts, &probe);
}

static void note_ts(memtable *mt, int64_t ts)
{
    if (mt->min_ts == ST_NO_TIMESTAMP || ts < mt->min_ts) mt->min_ts = ts;
    if (mt->max_ts == ST_NO_TIMESTAMP || ts > mt->max_ts) mt->max_ts = ts;
}

static mt_row *row_new(memtable *mt, const uint8_t *ck, size_t cklen)
{
    mt_row *r = sib_arena_alloc(mt->arena, sizeof *r + cklen);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    if (cklen) memcpy(r->ck, ck, cklen);
    r->e.key = r->ck;
    r->e.keylen = (uint32_t)cklen;
    r->e.prefix = bt_key_prefix(ck, cklen);
    r->e.aux = 0;
    r->del_ts = ST_NO_TIMESTAMP;
    r->marker_ts = ST_NO_TIMESTAMP;
    r->marker_ldt = ST_NO_DELETION_TIME;
    return r;
}

typedef struct make_arg { memtable *mt; const bt_ent *probe; } make_arg;

static bt_ent *make_part(void *arg)
{
    make_arg *m = arg;
    const bt_ent *k = m->probe;
    mt_part *p = sib_arena_alloc(m->mt->arena, sizeof *p + k->keylen);
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    if (k->keylen) memcpy(p->pk, k->key, k->keylen);
    p->e.prefix = k->prefix;
    p->e.key = p->pk;
    p->e.keylen = k->keylen;
    p->del_ts = ST_NO_TIMESTAMP;
    bt_init(&p->rows);
    return &p->e;
}

static bt_ent *make_row(void *arg)
{
    make_arg *m = arg;
    mt_row *r = row_new(m->mt, m->probe->key, m->probe->keylen);
    return r ? &r->e : NULL;
}

static mt_part *part_get(memtable *mt, const mut_hdr *h)
{
    int64_t token = sib_murmur3_token(h->pk, h->pklen);
    bool known;
    mt_part *p = ix_find(mt, token, h->pk, h->pklen, &known);
    if (p) return p; /* an overwrite: no tree walk */
    bt_ent probe = {bt_token_prefix(token), h->pk, (uint32_t)h->pklen, 0};
    make_arg m = {mt, &probe};
    bool ins;
    p = (mt_part *)bt_get_or_insert(&mt->parts, mt->arena, &probe, make_part, &m, &ins);
    if (p && ins) ix_add(mt, p);
    return p;
}

static mt_row *row_get(memtable *mt, mt_part *p, const uint8_t *ck, size_t cklen)
{
    bt_ent probe = {bt_key_prefix(ck, cklen), ck, (uint32_t)cklen, 0};
    make_arg m = {mt, &probe};
    bool ins;
    mt_row *r = (mt_row *)bt_get_or_insert(&p->rows, mt->arena, &probe, make_row, &m, &ins);
    if (r && ins) mt->rows++;
    return r;
}

static mt_part_ext *part_ext(memtable *mt, mt_part *p)
{
    if (!p->x && (p->x = sib_arena_alloc(mt->arena, sizeof *p->x))) memset(p->x, 0, sizeof *p->x);
    return p->x;
}

/* ---- cells ---- */

static int cell_key_cmp(const mt_cell *c, uint32_t col, const uint8_t *path, size_t pathlen)
{
    if (c->col != col) return c->col < col ? -1 : 1;
    size_t n = c->pathlen < pathlen ? c->pathlen : pathlen;
    int x = n ? memcmp(c->data, path, n) : 0;
    if (x) return x;
    return c->pathlen < pathlen ? -1 : c->pathlen > pathlen;
}

/* Index of the first cell >= (col, path); *found if equal. */
static uint32_t cell_search(const mt_row *r, uint32_t col, const uint8_t *path, size_t pathlen, bool *found)
{
    uint32_t lo = 0, hi = r->ncells;
    *found = false;
    /* Most rows are written in column order: check the end first. */
    if (hi && cell_key_cmp(r->cells[hi - 1], col, path, pathlen) < 0) return hi;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int c = cell_key_cmp(r->cells[mid], col, path, pathlen);
        if (c == 0) { *found = true; return mid; }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* A cell as the SSTable layer sees it (views into the memtable's bytes). */
static sst_cell cell_view(const mt_cell *c)
{
    return (sst_cell){c->col, c->pathlen, c->vlen, c->data, c->data + c->pathlen, c->ts, c->ttl, c->ldt};
}

static void cell_set(mt_cell *c, const sst_cell *v)
{
    c->ts = v->ts;
    c->ttl = v->ttl;
    c->ldt = v->ldt;
    c->col = v->col;
    c->vlen = v->vlen;
    c->pathlen = (uint16_t)v->pathlen;
    if (v->pathlen) memcpy(c->data, v->path, v->pathlen);
    if (v->vlen) memcpy(c->data + v->pathlen, v->val, v->vlen);
}

static int apply_cell(memtable *mt, mt_row *r, const mut_op *op, bool tomb)
{
    sst_cell v = {
        .col = op->col, .pathlen = (uint32_t)op->keylen, .path = op->key, .ts = op->ts,
        .ttl = tomb ? 0 : op->ttl, .ldt = tomb || op->ttl > 0 ? op->ldt : ST_NO_DELETION_TIME,
        .vlen = tomb ? 0 : (uint32_t)op->vlen, .val = tomb ? NULL : op->val,
    };
    note_ts(mt, op->ts);
    bool found;
    uint32_t i = cell_search(r, op->col, op->key, op->keylen, &found);
    if (found) {
        mt_cell *old = r->cells[i];
        sst_cell ov = cell_view(old);
        /* Last write wins (sst_cell_supersedes: Cassandra's Cells.resolveRegular). */
        if (!sst_cell_supersedes(&v, &ov)) return 0;
        /* A value of the same size is overwritten in place, so a key
         * written again and again does not grow the memtable. Nothing holds
         * a cell across a write: a read's row view lives until its next
         * st_iter_next call, and a frozen (flushing) memtable is never
         * written. */
        if (old->vlen == v.vlen) {
            cell_set(old, &v);
            return 0;
        }
    }
    mt_cell *c = sib_arena_alloc(mt->arena, sizeof *c + v.pathlen + v.vlen);
    if (!c) return SIB_ENOMEM;
    cell_set(c, &v);
    if (found) {
        r->cells[i] = c;
        return 0;
    }
    if (r->ncells == r->capcells) {
        uint32_t cap = r->capcells ? r->capcells * 2 : 1;
        mt_cell **nc = sib_arena_alloc(mt->arena, cap * sizeof *nc);
        if (!nc) return SIB_ENOMEM;
        if (r->ncells) memcpy(nc, r->cells, r->ncells * sizeof *nc);
        r->cells = nc;
        r->capcells = cap;
    }
    memmove(r->cells + i + 1, r->cells + i, (r->ncells - i) * sizeof *r->cells);
    r->cells[i] = c;
    r->ncells++;
    mt->cells++;
    return 0;
}

static int apply_cdel(memtable *mt, mt_row *r, const mut_op *op)
{
    st_deletion d = {op->ts, op->ldt};
    uint32_t n = r->cdels ? r->cdels[0].col : 0;
    note_ts(mt, op->ts);
    for (uint32_t i = 1; i <= n; i++) {
        if (r->cdels[i].col == op->col) {
            if (st_del_supersedes(d, r->cdels[i].del)) r->cdels[i].del = d;
            return 0;
        }
    }
    mt_cdel *c = sib_arena_alloc(mt->arena, (n + 2) * sizeof *c);
    if (!c) return SIB_ENOMEM;
    if (n) memcpy(c + 1, r->cdels + 1, n * sizeof *c);
    c[0].col = n + 1;
    c[n + 1].col = op->col;
    c[n + 1].del = d;
    r->cdels = c;
    return 0;
}

static int copy_bound(memtable *mt, mt_bound *dst, const st_bound *src)
{
    dst->incl = src->incl;
    dst->unbounded = src->unbounded;
    dst->len = src->unbounded ? 0 : (uint32_t)src->len;
    dst->key = NULL;
    if (dst->len && !(dst->key = sib_arena_memdup(mt->arena, src->key, dst->len))) return SIB_ENOMEM;
    return 0;
}

static int apply_range(memtable *mt, mt_part *p, const mut_op *op)
{
    note_ts(mt, op->ts);
    mt_part_ext *x = part_ext(mt, p);
    if (!x) return SIB_ENOMEM;
    if (x->nrt == x->caprt) {
        uint32_t cap = x->caprt ? x->caprt * 2 : 2;
        mt_rt *n = sib_arena_alloc(mt->arena, cap * sizeof *n);
        if (!n) return SIB_ENOMEM;
        if (x->nrt) memcpy(n, x->rts, x->nrt * sizeof *n);
        x->rts = n;
        x->caprt = cap;
    }
    mt_rt *rt = &x->rts[x->nrt];
    if (copy_bound(mt, &rt->start, &op->start) || copy_bound(mt, &rt->end, &op->end)) return SIB_ENOMEM;
    rt->del.ts = op->ts;
    rt->del.ldt = op->ldt;
    x->nrt++;
    return 0;
}

static int apply_op(memtable *mt, mt_part *p, mt_row **row, const mut_op *op)
{
    mt_row *r = *row;
    switch (op->kind) {
    case MUT_OP_PDEL: {
        st_deletion d = {op->ts, op->ldt};
        note_ts(mt, op->ts);
        if (st_del_supersedes(d, mt_part_del(p))) {
            p->del_ts = d.ts;
            p->e.aux = d.ldt;
        }
        return 0;
    }
    case MUT_OP_RANGE:
        return apply_range(mt, p, op);
    case MUT_OP_ROW:
        return (*row = row_get(mt, p, op->key, op->keylen)) ? 0 : SIB_ENOMEM;
    case MUT_OP_STATIC: {
        mt_part_ext *x = part_ext(mt, p);
        if (!x || (!x->static_row && !(x->static_row = row_new(mt, NULL, 0)))) return SIB_ENOMEM;
        *row = x->static_row;
        return 0;
    }
    case MUT_OP_MARKER:
        note_ts(mt, op->ts);
        if (marker_supersedes(op->ts, op->ttl, op->ldt, r)) {
            r->marker_ts = op->ts;
            r->marker_ttl = op->ttl;
            r->marker_ldt = op->ttl > 0 ? op->ldt : ST_NO_DELETION_TIME;
        }
        return 0;
    case MUT_OP_RDEL: {
        st_deletion d = {op->ts, op->ldt};
        note_ts(mt, op->ts);
        if (st_del_supersedes(d, mt_row_del(r))) {
            r->del_ts = d.ts;
            r->e.aux = d.ldt;
        }
        return 0;
    }
    case MUT_OP_CELL:
        return apply_cell(mt, r, op, false);
    case MUT_OP_CTOMB:
        return apply_cell(mt, r, op, true);
    case MUT_OP_CDEL:
        return apply_cdel(mt, r, op);
    }
    return SIB_ECORRUPT;
}

int memtable_apply(memtable *mt, const mut_hdr *h, sib_rd *ops, sib_err *err)
{
    mt_part *p = part_get(mt, h);
    if (!p) return sib_err_set(err, SIB_ENOMEM, "storage: memtable out of memory");
    mt_row *row = NULL;
    uint8_t sel = 0;
    mut_op op;
    int rc;
    while ((rc = mut_next_op(ops, &op, &sel)) > 0) {
        if ((rc = apply_op(mt, p, &row, &op)) < 0) break;
    }
    if (rc == SIB_ENOMEM) return sib_err_set(err, rc, "storage: memtable out of memory");
    if (rc < 0) return sib_err_set(err, rc, "storage: corrupt mutation");
    return 0;
}

/* ---- rows as sst_row (read path, flush) ---- */

bool mt_row_view(mt_rowview *v, const mt_row *r, bool is_static, sst_row *o)
{
    uint32_t nd = r->cdels ? r->cdels[0].col : 0;
    /* small rows (most) need no allocation: a read makes a view per source */
    sst_cell *cells = v->inl;
    if (r->ncells > MT_VIEW_INLINE) {
        if (!sib_grow((void **)&v->cells, &v->capcells, r->ncells, sizeof *v->cells)) return false;
        cells = v->cells;
    }
    if (nd && !sib_grow((void **)&v->cdels, &v->capcdels, nd, sizeof *v->cdels)) return false;
    memset(o, 0, sizeof *o);
    o->ck = r->ck;
    o->cklen = r->e.keylen;
    o->is_static = is_static;
    o->marker_ts = r->marker_ts;
    o->marker_ttl = r->marker_ttl;
    o->marker_ldt = r->marker_ldt;
    o->del = r->del_ts == ST_NO_TIMESTAMP ? (sst_del){SST_NO_TS, SST_NO_LDT} : (sst_del){r->del_ts, r->e.aux};
    for (uint32_t i = 0; i < nd; i++)
        v->cdels[i] = (sst_cdel){r->cdels[i + 1].col, {r->cdels[i + 1].del.ts, r->cdels[i + 1].del.ldt}};
    for (uint32_t i = 0; i < r->ncells; i++) cells[i] = cell_view(r->cells[i]);
    o->cells = cells;
    o->ncells = r->ncells;
    o->cdels = v->cdels;
    o->ncdels = nd;
    return true;
}

void mt_rowview_free(mt_rowview *v)
{
    free(v->cells);
    free(v->cdels);
    memset(v, 0, sizeof *v);
}
