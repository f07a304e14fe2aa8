/* memtable.c: one table's in-memory write buffer.
 *
 * Structure:
 *   ordered index   every partition, in (token, key) order (below): point
 *                   lookups, scans and flush all go through it
 *   record arena    the partition records, addressed by 32-bit references
 *   MT_KV record    a partition of one regular row with an empty clustering
 *                   key: key, marker and cells serialised in one record
 *   MT_PART record  any other partition: partition deletion, range
 *                   tombstones (array), static row, rows = B+tree of mt_row
 *                   ordered by clustering key memcmp (their contents in the
 *                   general arena)
 *   mt_row          liveness marker, row deletion, complex (collection)
 *                   deletions, cells sorted by (column id, cell path)
 *   mt_cell         ts, ttl, ldt, col, value (+ path)
 *
 * Why two kinds: a key/value write is most of what most tables get, and the
 * memtable's bytes per entry decide how much one flush holds, and so how
 * much STCS rewrites (docs/performance.md, "Change 2"). As a general
 * partition such an entry took about 370 bytes; as a KV record its key and
 * value plus about 30 (with its index slot). A KV record that gets
 * anything else (a deletion, a static cell, a clustered row, more than
 * 65535 cells), or that keeps changing shape past a small size, is turned
 * into an MT_PART first.
 *
 * LWW happens on apply: a cell replaces the stored one only if it supersedes
 * it (sst_cell_supersedes, Cassandra's Cells.resolveRegular), markers and
 * deletions keep the superseding one. Deletions do not remove the data they
 * shadow here: reads apply them (read.c), and flush drops cells shadowed by
 * their row's or partition's deletion (flush.c). A superseding cell of the
 * same size is written over the old one; otherwise the replaced bytes (a
 * cell, or a whole KV record rebuilt) stay in the arena until the memtable
 * is freed, which is what memtable_bytes reports.
 *
 * Only the loop thread writes a memtable; a frozen one is only read.
 */
#include "storage_int.h"

#include <stdlib.h>

#define MT_ARENA_CHUNK (1u << 20) /* the general arena's chunks (MT_PART contents) */

/* ---- record arena ----
 * A reference is 1 + (chunk index << 18 | offset / 8): chunks of at most
 * 2 MiB, 8-byte units, 0 never a record. The first chunk is small (64 KiB:
 * a table that gets a few writes costs little); the next ones are 2 MiB
 * huge pages, as the index is once it is big: a lookup touches a random
 * slot and a random record, and with 4 KiB pages each was a TLB miss too
 * (a nested page walk in a VM). A record bigger than a quarter chunk gets
 * a chunk of its own (offset 0). 16383 chunks: 32 GiB, far beyond any
 * memtable. */

#define RA_OFF_BITS 18
#define RA_MAX_CHUNKS ((1u << (32 - RA_OFF_BITS)) - 1)
#define RA_FIRST ((size_t)64 << 10)
#define RA_CHUNK SIB_HUGE_PAGE

static inline void *ra_ptr(const mt_rarena *a, uint32_t ref)
{
    ref--;
    return a->chunks[ref >> RA_OFF_BITS] + ((size_t)(ref & ((1u << RA_OFF_BITS) - 1)) << 3);
}

static bool ra_chunk(mt_rarena *a, size_t size, bool huge, uint32_t *idx)
{
    if (a->n >= RA_MAX_CHUNKS) return false;
    if (a->n == a->cap) {
        uint32_t cap = a->cap ? 2 * a->cap : 16;
        uint8_t **c = realloc(a->chunks, cap * sizeof *c);
        if (c) a->chunks = c;
        size_t *z = c ? realloc(a->sizes, cap * sizeof *z) : NULL;
        if (!z) return false;
        a->sizes = z;
        a->cap = cap;
    }
    uint8_t *c = huge ? st_prefault_take(a->pf, size) : NULL; /* faulted in already: no zeroing on the loop */
    if (!c) c = huge ? sib_huge_alloc(size) : malloc(size);
    if (!(a->chunks[a->n] = c)) return false;
    a->sizes[a->n] = size | huge;
    a->total += size;
    *idx = a->n++;
    return true;
}

static void *ra_alloc(mt_rarena *a, size_t n, uint32_t *ref)
{
    n = (n + 7) & ~(size_t)7;
    uint32_t idx;
    size_t off = 0;
    if (n > RA_CHUNK / 4) {
        if (!ra_chunk(a, n, false, &idx)) return NULL;
    } else {
        if (a->used + n > a->curcap) {
            bool first = !a->curcap && n <= RA_FIRST;
            if (!ra_chunk(a, first ? RA_FIRST : RA_CHUNK, !first, &a->cur)) return NULL;
            a->curcap = first ? RA_FIRST : RA_CHUNK;
            a->used = 0;
        }
        idx = a->cur;
        off = a->used;
        a->used += n;
    }
    *ref = (idx << RA_OFF_BITS | (uint32_t)(off >> 3)) + 1;
    return a->chunks[idx] + off;
}

static void ra_free(mt_rarena *a)
{
    for (uint32_t i = 0; i < a->n; i++) {
        if (a->sizes[i] & 1) sib_huge_free(a->chunks[i], a->sizes[i] & ~(size_t)1);
        else free(a->chunks[i]);
    }
    free(a->chunks);
    free(a->sizes);
    memset(a, 0, sizeof *a);
}

/* Index tables of 1 MiB and more are huge pages (above), faulted in ahead
 * by the prefault thread when it has one of the size ready; smaller ones are
 * calloc'd. All come zeroed. */
#define IX_HUGE_BYTES ((size_t)1 << 20)

static uint64_t *ix_alloc(st_prefault *pf, size_t len)
{
    size_t n = len * sizeof(uint64_t);
    if (n < IX_HUGE_BYTES) return calloc(len, sizeof(uint64_t));
    uint64_t *p = st_prefault_take(pf, n);
    return p ? p : sib_huge_alloc(n);
}

static void ix_free(uint64_t *slots, size_t len)
{
    if (len * sizeof *slots >= IX_HUGE_BYTES) sib_huge_free(slots, len * sizeof *slots);
    else free(slots);
}

int memtable_init(memtable *mt)
{
    memset(mt, 0, sizeof *mt);
    mt->arena = sib_arena_create(MT_ARENA_CHUNK);
    if (!mt->arena) return SIB_ENOMEM;
    mt->min_ts = ST_NO_TIMESTAMP;
    mt->max_ts = ST_NO_TIMESTAMP;
    return 0;
}

void memtable_free(memtable *mt)
{
    sib_arena_destroy(mt->arena);
    mt->arena = NULL;
    ra_free(&mt->ra);
    ix_free(mt->ix.slots, mt->ix.len);
    free(mt->scratch);
    free(mt->ops);
    mt->ix.slots = NULL;
    mt->scratch = NULL;
    mt->ops = NULL;
}

/* ---- LWW ---- */

/* LivenessInfo.supersedes: higher ts; on a tie an expiring marker beats a
 * plain one, then the later expiry wins. (ts, ttl, ldt) against the stored
 * (rts, rttl, rldt); rts ST_NO_TIMESTAMP = no marker. */
static bool marker_supersedes(int64_t ts, int32_t ttl, int32_t ldt, int64_t rts, int32_t rttl, int32_t rldt)
{
    if (rts == ST_NO_TIMESTAMP) return true;
    if (ts != rts) return ts > rts;
    bool e = ttl > 0, re = rttl > 0;
    if (e != re) return e;
    return ldt > rldt;
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

/* ---- the ordered index ----
 *
 * Linear probing in which a partition's home slot grows with its token
 * (high 32 bits of the biased token, scaled to the table), and every insert
 * keeps the slots sorted by (token, key): it shifts the rest of its run one
 * slot on. So one array answers a point lookup (from the home slot, a few
 * slots on; a miss stops at the first greater key), a scan from a position
 * (the same seek, then slot order) and the flush (slot order), at 8 bytes a
 * slot and up to 7/8 full: about 10 bytes a partition, where a B+tree and a
 * hash table beside it cost about 37. A slot is the token's high 32 bits and
 * the record's reference, so a probe dereferences a record only on equal
 * high bits. It doubles by one ordered pass (each entry at its new home or
 * just after the previous one). */

#define IX_FIRST 1024
#define IX_TAIL(cap) (64 + (cap) / 64) /* slots after the last home, for the runs that spill over */

static inline uint32_t tok_hi(uint64_t prefix) { return (uint32_t)(prefix >> 32); }
static inline size_t ix_home(size_t cap, uint32_t hi) { return (size_t)(((uint64_t)hi * cap) >> 32); }
static inline const mt_rec *slot_rec(const memtable *mt, uint64_t v) { return ra_ptr(&mt->ra, (uint32_t)v); }

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (al < bl ? -1 : al > bl);
}

/* The partition in slot v against (prefix, pk): <0 before, 0 the same, >0
 * after. pk NULL: by token alone. */
static int slot_cmp(const memtable *mt, uint64_t v, uint64_t prefix, const uint8_t *pk, size_t pklen)
{
    uint32_t sh = (uint32_t)(v >> 32), th = tok_hi(prefix);
    if (sh != th) return sh < th ? -1 : 1;
    const mt_rec *r = slot_rec(mt, v);
    const uint8_t *rpk = mt_rec_pk(r);
    if (pk && r->pklen == pklen && (!pklen || !memcmp(rpk, pk, pklen))) return 0;
    /* equal high bits, another key: the full tokens decide (rare) */
    uint64_t rp = bt_token_prefix(sib_murmur3_token(rpk, r->pklen));
    if (rp != prefix) return rp < prefix ? -1 : 1;
    return pk ? key_cmp(rpk, r->pklen, pk, pklen) : 0;
}

/* The first position holding a partition at or after (prefix, pk) (strictly
 * after unless incl), or the empty slot that ends the search: where it would
 * be inserted. *found: that partition is (prefix, pk) itself. Everything
 * before the home slot sorts before the key, and nothing after an empty slot
 * reached from there does. */
static size_t ix_lower(const memtable *mt, uint64_t prefix, const uint8_t *pk, size_t pklen, bool incl, bool *found)
{
    const mt_index *x = &mt->ix;
    *found = false;
    if (!x->slots) return 0;
    size_t i = ix_home(x->cap, tok_hi(prefix));
    for (; i < x->len && x->slots[i]; i++) {
        int c = slot_cmp(mt, x->slots[i], prefix, pk, pklen);
        if (c > 0 || (c == 0 && incl)) {
            *found = c == 0 && pk;
            return i;
        }
    }
    return i;
}

/* Rebuilds the index with cap homes, in order, into pre (a zeroed array of
 * cap + IX_TAIL(cap) slots) when given. */
static int ix_resize(mt_index *x, size_t cap, uint64_t *pre)
{
    for (;;) {
        size_t len = cap + IX_TAIL(cap), j = 0, k = 0;
        uint64_t *n = pre ? pre : ix_alloc(x->pf, len);
        pre = NULL;
        if (!n) return SIB_ENOMEM;
        for (; k < x->len; k++) {
            uint64_t v = x->slots[k];
            if (!v) continue;
            size_t h = ix_home(cap, (uint32_t)(v >> 32));
            if (h < j) h = j;
            if (h >= len) break;
            n[h] = v;
            j = h + 1;
        }
        if (k == x->len) {
            ix_free(x->slots, x->len);
            x->slots = n;
            x->cap = cap;
            x->len = len;
            x->version++;
            return 0;
        }
        ix_free(n, len); /* the tail overflowed: a bigger table spreads the runs */
        cap *= 2;
    }
}

/* Asks the prefault thread for the array the next doubling will take, once
 * the index is 3/4 full (it doubles at 7/8), so the loop does not fault in
 * and zero tens of MiB in one go. */
static void ix_ask_ahead(mt_index *x)
{
    if (!x->pf || x->reserve || x->asked == x->cap || x->n < x->cap - x->cap / 4) return;
    size_t next = 2 * x->cap, bytes = (next + IX_TAIL(next)) * sizeof *x->slots;
    if (bytes < IX_HUGE_BYTES || st_prefault_want(x->pf, bytes)) x->asked = x->cap;
}

/* Moves the index into the array memtable_reserve asked for, once the
 * prefault thread has it ready (the index grows as usual meanwhile). */
static void ix_take_reserve(mt_index *x)
{
    if (x->cap >= x->reserve) {
        x->reserve = 0;
        return;
    }
    uint64_t *a = st_prefault_take(x->pf, (x->reserve + IX_TAIL(x->reserve)) * sizeof *x->slots);
    if (!a) return;
    (void)ix_resize(x, x->reserve, a); /* out of memory (a tail overflow): the old index stays and grows as usual */
    x->reserve = 0;
}

/* Makes room to insert at *pos (from ix_lower on prefix, pk): grows the
 * index when it would pass 7/8 full or its run reaches the end. */
static int ix_room(memtable *mt, uint64_t prefix, const uint8_t *pk, size_t pklen, size_t *pos)
{
    mt_index *x = &mt->ix;
    if (x->reserve) {
        ix_take_reserve(x);
        if (!x->reserve) { /* moved: *pos was a position in the old array */
            bool found;
            *pos = ix_lower(mt, prefix, pk, pklen, true, &found);
        }
    }
    ix_ask_ahead(x);
    size_t e = *pos;
    while (x->slots && e < x->len && x->slots[e]) e++;
    if (x->slots && e < x->len && x->n + 1 <= x->cap - x->cap / 8) return 0;
    int rc = ix_resize(x, x->cap ? 2 * x->cap : IX_FIRST, NULL);
    if (rc) return rc;
    bool found;
    *pos = ix_lower(mt, prefix, pk, pklen, true, &found);
    e = *pos;
    while (e < x->len && x->slots[e]) e++;
    return e < x->len ? 0 : ix_room(mt, prefix, pk, pklen, pos);
}

/* Inserts at pos (after ix_room): the rest of the run moves one slot on. */
static void ix_insert(memtable *mt, size_t pos, uint64_t prefix, uint32_t ref)
{
    mt_index *x = &mt->ix;
    size_t e = pos;
    while (x->slots[e]) e++;
    memmove(&x->slots[pos + 1], &x->slots[pos], (e - pos) * sizeof *x->slots);
    x->slots[pos] = (uint64_t)tok_hi(prefix) << 32 | ref;
    x->n++;
    x->version++;
}

void memtable_reserve(memtable *mt, size_t n)
{
    mt_index *x = &mt->ix;
    if (x->slots || n <= IX_FIRST) return;
    size_t cap = n + n / 4; /* homes for n at 4/5 full: room to spare before the 7/8 that doubles */
    /* A big array mapped here would be faulted in by the inserts that follow,
     * a huge page at a time at random places (several ms of the loop each,
     * right after every flush): with a prefault thread, ask it instead, and
     * move into the array once it is ready (ix_room). */
    if (x->pf && (cap + IX_TAIL(cap)) * sizeof *x->slots >= IX_HUGE_BYTES &&
        st_prefault_want(x->pf, (cap + IX_TAIL(cap)) * sizeof *x->slots)) {
        x->reserve = cap;
        return;
    }
    (void)ix_resize(x, cap, NULL);
}

bool memtable_in_first_chunks(const memtable *mt)
{
    return mt->ra.total <= RA_FIRST + RA_CHUNK && sib_arena_used(mt->arena) <= MT_ARENA_CHUNK;
}

size_t memtable_bytes(const memtable *mt)
{
    return sib_arena_used(mt->arena) + mt->ra.total + mt->ix.len * sizeof *mt->ix.slots;
}

/* ix_lower's walk for the one key (every point read): the first slot not
 * before it is it, or it is not there. */
const mt_rec *memtable_find(const memtable *mt, int64_t token, const uint8_t *pk, size_t pklen)
{
    const mt_index *x = &mt->ix;
    if (!x->slots) return NULL;
    uint64_t prefix = bt_token_prefix(token);
    for (size_t i = ix_home(x->cap, tok_hi(prefix)); i < x->len && x->slots[i]; i++) {
        int c = slot_cmp(mt, x->slots[i], prefix, pk, pklen);
        if (c >= 0) return c ? NULL : slot_rec(mt, x->slots[i]);
    }
    return NULL;
}

void memtable_prefetch_slot(const memtable *mt, int64_t token, bool record)
{
    const mt_index *x = &mt->ix;
    if (!x->slots) return;
    uint32_t hi = tok_hi(bt_token_prefix(token));
    size_t i = ix_home(x->cap, hi);
    if (!record) {
        __builtin_prefetch(&x->slots[i]);
        return;
    }
    for (size_t k = 0; k < 4 && i < x->len && x->slots[i]; i++, k++)
        if ((uint32_t)(x->slots[i] >> 32) == hi) {
            __builtin_prefetch(slot_rec(mt, x->slots[i]));
            return;
        }
}

const mt_rec *memtable_at(const memtable *mt, size_t *pos)
{
    const mt_index *x = &mt->ix;
    for (size_t i = *pos; i < x->len; i++)
        if (x->slots[i]) {
            *pos = i;
            return slot_rec(mt, x->slots[i]);
        }
    *pos = x->len;
    return NULL;
}

size_t memtable_seek(const memtable *mt, int64_t token, const uint8_t *pk, size_t pklen, bool incl)
{
    bool found;
    return ix_lower(mt, bt_token_prefix(token), pk, pklen, incl, &found);
}

/* Logged writes reach the memtable at the end of the loop iteration, after
 * the commitlog write (store.c), and an overwrite's two cache misses (its
 * index slot, then its record) were a fifth of a write's CPU. So when a
 * write is queued its home slot is fetched, and the record of the previous
 * call's key (its slot has arrived by now, while that request ran) as
 * well: by the apply both are in the cache. Only prefetches and reads of
 * the index: a stale guess costs nothing but the fetch. */
void memtable_prefetch(memtable *mt, int64_t token)
{
    const mt_index *x = &mt->ix;
    if (!x->slots) return;
    if (mt->pf_have) {
        uint32_t hi = tok_hi(bt_token_prefix(mt->pf_token));
        for (size_t i = ix_home(x->cap, hi), k = 0; k < 4 && i < x->len && x->slots[i]; i++, k++)
            if ((uint32_t)(x->slots[i] >> 32) == hi) {
                const uint8_t *p = (const uint8_t *)slot_rec(mt, x->slots[i]);
                for (int l = 0; l < 3; l++) __builtin_prefetch(p + 64 * l); /* a key/value record */
                break;
            }
    }
    __builtin_prefetch(&x->slots[ix_home(x->cap, tok_hi(bt_token_prefix(token)))]);
    mt->pf_token = token;
    mt->pf_have = true;
}

/* ---- creation ---- */

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

static bt_ent *make_row(void *arg)
{
    make_arg *m = arg;
    mt_row *r = row_new(m->mt, m->probe->key, m->probe->keylen);
    return r ? &r->e : NULL;
}

static mt_part *part_new(memtable *mt, const uint8_t *pk, size_t pklen, uint32_t *ref)
{
    mt_part *p = ra_alloc(&mt->ra, sizeof *p + pklen, ref);
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    p->h.kind = MT_PART;
    p->h.pklen = (uint32_t)pklen;
    if (pklen) memcpy(p->pk, pk, pklen);
    p->del_ts = ST_NO_TIMESTAMP;
    bt_init(&p->rows);
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
    return key_cmp(c->data, c->pathlen, path, pathlen);
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

/* A cell or cell tombstone op as the cell it writes. */
static sst_cell op_cell(const mut_op *op)
{
    bool tomb = op->kind == MUT_OP_CTOMB;
    return (sst_cell){
        .col = op->col, .pathlen = (uint32_t)op->keylen, .path = op->key, .ts = op->ts,
        .ttl = tomb ? 0 : op->ttl, .ldt = tomb || op->ttl > 0 ? op->ldt : ST_NO_DELETION_TIME,
        .vlen = tomb ? 0 : (uint32_t)op->vlen, .val = tomb ? NULL : op->val,
    };
}

static int apply_cell(memtable *mt, mt_row *r, const sst_cell *cell)
{
    sst_cell v = *cell;
    note_ts(mt, v.ts);
    bool found;
    uint32_t i = cell_search(r, v.col, v.path, v.pathlen, &found);
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
            p->del_ldt = d.ldt;
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
        if (marker_supersedes(op->ts, op->ttl, op->ldt, r->marker_ts, r->marker_ttl, r->marker_ldt)) {
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
    case MUT_OP_CTOMB: {
        sst_cell c = op_cell(op);
        return apply_cell(mt, r, &c);
    }
    case MUT_OP_CDEL:
        return apply_cdel(mt, r, op);
    }
    return SIB_ECORRUPT;
}

/* ---- KV records ----
 *
 * After the mt_rec header and the key:
 *   marker      if MTK_MARKER: ts (8), then if MTK_MARKER_EXP: ttl (4), expiry (4)
 *   cells       ncells of them, sorted by (column, path):
 *               u8 flags (KC_PATH, KC_EXP, KC_TOMB), uvarint column,
 *               [uvarint path length], uvarint value length, ts (8),
 *               [ttl (4), expiry (4)] or [deletion time (4)], path, value
 * Numbers in host order (the memtable never leaves the process). */

enum { MTK_MARKER = 1, MTK_MARKER_EXP = 2 };
enum { KC_PATH = 1, KC_EXP = 2, KC_TOMB = 4 };
#define KV_MAX_CELLS UINT16_MAX
#define KV_REBUILD_MAX_CELLS 16    /* a record rebuilt by a write: at most this many cells after */
#define KV_REBUILD_MAX_BYTES 1024 /* ... and at most this big before, unless every cell was replaced */

typedef struct kv_marker { int64_t ts; int32_t ttl, ldt; } kv_marker; /* ts ST_NO_TIMESTAMP: none */

/* A cell being merged: its view, and where it sits in the stored record
 * (NULL for a cell of the mutation); seq orders equal keys. */
typedef struct kv_cell {
    sst_cell c;
    uint8_t *at;
    uint32_t seq;
} kv_cell;

static uint8_t kc_flags(const sst_cell *c)
{
    return (uint8_t)((c->pathlen ? KC_PATH : 0) | (c->ttl > 0 ? KC_EXP : sst_cell_tomb(c) ? KC_TOMB : 0));
}

static size_t uvarint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

static size_t kc_size(const sst_cell *c)
{
    uint8_t f = kc_flags(c);
    return 1 + uvarint_size(c->col) + (f & KC_PATH ? uvarint_size(c->pathlen) : 0) + uvarint_size(c->vlen) + 8 +
           (f & KC_EXP ? 8 : f & KC_TOMB ? 4 : 0) + c->pathlen + c->vlen;
}

static uint8_t *kc_put(uint8_t *p, const sst_cell *c)
{
    uint8_t f = kc_flags(c);
    *p++ = f;
    p += put_uvarint(p, c->col);
    if (f & KC_PATH) p += put_uvarint(p, c->pathlen);
    p += put_uvarint(p, c->vlen);
    memcpy(p, &c->ts, 8);
    p += 8;
    if (f & KC_EXP) {
        memcpy(p, &c->ttl, 4);
        memcpy(p + 4, &c->ldt, 4);
        p += 8;
    } else if (f & KC_TOMB) {
        memcpy(p, &c->ldt, 4);
        p += 4;
    }
    if (c->pathlen) memcpy(p, c->path, c->pathlen);
    p += c->pathlen;
    if (c->vlen) memcpy(p, c->val, c->vlen);
    return p + c->vlen;
}

/* A varint the memtable wrote; most (column ids, short lengths) are one
 * byte, read here without a call. */
static inline const uint8_t *kc_uvarint(const uint8_t *p, uint64_t *v)
{
    if (*p < 0x80) {
        *v = *p;
        return p + 1;
    }
    return p + get_uvarint(p, 10, v);
}

/* Decodes the cell at p (the memtable wrote it: no bounds to check). */
static const uint8_t *kc_get(const uint8_t *p, sst_cell *c)
{
    uint8_t f = *p++;
    uint64_t col, pl = 0, vl;
    p = kc_uvarint(p, &col);
    if (f & KC_PATH) p = kc_uvarint(p, &pl);
    p = kc_uvarint(p, &vl);
    memcpy(&c->ts, p, 8);
    p += 8;
    c->ttl = 0;
    c->ldt = ST_NO_DELETION_TIME;
    if (f & KC_EXP) {
        memcpy(&c->ttl, p, 4);
        memcpy(&c->ldt, p + 4, 4);
        p += 8;
    } else if (f & KC_TOMB) {
        memcpy(&c->ldt, p, 4);
        p += 4;
    }
    c->col = (uint32_t)col;
    c->pathlen = (uint32_t)pl;
    c->path = p;
    c->vlen = (uint32_t)vl;
    c->val = p + pl;
    return p + pl + vl;
}

/* The marker of KV record r; returns where its cells start. */
static const uint8_t *kv_marker_get(const mt_rec *r, kv_marker *m)
{
    const uint8_t *p = mt_rec_pk(r) + r->pklen;
    *m = (kv_marker){ST_NO_TIMESTAMP, 0, ST_NO_DELETION_TIME};
    if (r->flags & MTK_MARKER) {
        memcpy(&m->ts, p, 8);
        p += 8;
        if (r->flags & MTK_MARKER_EXP) {
            memcpy(&m->ttl, p, 4);
            memcpy(&m->ldt, p + 4, 4);
            p += 8;
        }
    }
    return p;
}

static int kv_cell_cmp(const sst_cell *a, const sst_cell *b)
{
    if (a->col != b->col) return a->col < b->col ? -1 : 1;
    return key_cmp(a->path, a->pathlen, b->path, b->pathlen);
}

static int kv_sort_cmp(const void *x, const void *y)
{
    const kv_cell *a = x, *b = y;
    int c = kv_cell_cmp(&a->c, &b->c);
    return c ? c : (a->seq < b->seq ? -1 : a->seq > b->seq);
}

/* The stored cell equal to c's key among v[0..n) (sorted), or NULL. *next
 * is where the previous search matched, plus one: a row's cells usually come
 * in the order they are stored, so that one is tried before the halving. */
static kv_cell *kv_search(kv_cell *v, size_t n, const sst_cell *c, size_t *next)
{
    if (*next < n && v[*next].c.col == c->col && !key_cmp(v[*next].c.path, v[*next].c.pathlen, c->path, c->pathlen))
        return &v[(*next)++];
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int x = kv_cell_cmp(&v[mid].c, c);
        if (!x) {
            *next = mid + 1;
            return &v[mid];
        }
        if (x < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static kv_cell *kv_scratch(memtable *mt, size_t n)
{
    if (n <= mt->capscratch && mt->scratch) return mt->scratch; /* kept: the usual case, no call */
    return sib_grow(&mt->scratch, &mt->capscratch, n ? n : 1, sizeof(kv_cell)) ? mt->scratch : NULL;
}

/* Only what a KV record holds: the regular row with an empty clustering
 * key, its marker, cells and cell tombstones. The ops are decoded once, into
 * mt->ops (*nops of them, *ncells cells), for kv_apply's two passes. */
static bool ops_fit_kv(memtable *mt, sib_rd r, size_t *nops, size_t *ncells)
{
    uint8_t sel = 0;
    int rc;
    *nops = *ncells = 0;
    for (;;) { /* each op decoded where it is kept */
        if (*nops == mt->capops && !sib_grow((void **)&mt->ops, &mt->capops, *nops + 1, sizeof *mt->ops))
            return false;
        const mut_op *op = &mt->ops[*nops];
        if ((rc = mut_next_op(&r, &mt->ops[*nops], &sel)) <= 0) break;
        if (op->kind == MUT_OP_CELL || op->kind == MUT_OP_CTOMB) ++*ncells;
        else if (op->kind != MUT_OP_MARKER && !(op->kind == MUT_OP_ROW && !op->keylen)) return false;
        ++*nops;
    }
    return rc == 0 && *ncells <= KV_MAX_CELLS;
}

/* Overwrites, in place, a stored cell with one of the same key and layout
 * (same flags and lengths: same size). Only the timestamp, the expiry and
 * the value bytes can differ, so only they are written: the flags, varints
 * and path stay as they are. k->c becomes what reading the bytes back would
 * give (its path and value still point into the record). */
static void kc_overwrite(kv_cell *k, const sst_cell *c)
{
    uint8_t f = kc_flags(c);
    /* the timestamp and expiry sit just before the path (kc_put) */
    uint8_t *t = (uint8_t *)k->c.path - 8 - (f & KC_EXP ? 8 : f & KC_TOMB ? 4 : 0);
    memcpy(t, &c->ts, 8);
    if (f & KC_EXP) {
        memcpy(t + 8, &c->ttl, 4);
        memcpy(t + 12, &c->ldt, 4);
    } else if (f & KC_TOMB) {
        memcpy(t + 8, &c->ldt, 4);
    }
    if (c->vlen) memcpy((uint8_t *)k->c.val, c->val, c->vlen);
    k->c.ts = c->ts;
    k->c.ttl = c->ttl;
    k->c.ldt = c->ldt;
}

enum { KV_DONE = 0, KV_TOO_BIG = 1 };

/* Applies a mutation that fits a KV record to the KV record old (NULL: a
 * new partition, to insert at pos). Same-layout writes go in place; any
 * other change writes a new record (the old one's bytes stay in the arena)
 * and points the slot at it. KV_TOO_BIG: more cells than a record holds,
 * or a rebuild of a record past the rebuild bounds (nothing changed but
 * timestamps noted; the caller makes an MT_PART). */
static int kv_apply(memtable *mt, uint64_t prefix, size_t pos, mt_rec *old, const mut_hdr *h, const mut_op *ops,
                    size_t nops, size_t ncells)
{
    size_t nold = old ? old->ncells : 0;
    kv_cell *v = kv_scratch(mt, nold + ncells);
    if (!v) return SIB_ENOMEM;
    kv_marker mk = {ST_NO_TIMESTAMP, 0, ST_NO_DELETION_TIME};
    uint8_t *mk_at = NULL;
    size_t oldsize = 0;
    if (old) {
        const uint8_t *p = kv_marker_get(old, &mk);
        mk_at = (uint8_t *)mt_rec_pk(old) + old->pklen;
        for (size_t i = 0; i < nold; i++) {
            v[i].at = (uint8_t *)p;
            v[i].seq = (uint32_t)i;
            p = kc_get(p, &v[i].c);
        }
        oldsize = (size_t)(p - (const uint8_t *)old);
    }
    /* In place when every superseding write fits where its old one is. The
     * j-th cell op's cell is kept in v[nold + j], the index of the stored
     * cell it matches in its seq, for the in-place pass below (a rebuild
     * fills those entries afresh). */
    bool rebuild = !old;
    kv_marker m2 = mk; /* the marker as the ops go (a mutation may hold two) */
    size_t next = 0;
    for (size_t i = 0, j = nold; i < nops && !rebuild; i++) {
        const mut_op *op = &ops[i];
        if (op->kind == MUT_OP_MARKER) {
            int32_t ldt = op->ttl > 0 ? op->ldt : ST_NO_DELETION_TIME;
            if (!marker_supersedes(op->ts, op->ttl, ldt, m2.ts, m2.ttl, m2.ldt)) continue;
            if (mk.ts == ST_NO_TIMESTAMP || (op->ttl > 0) != (mk.ttl > 0)) rebuild = true;
            m2 = (kv_marker){op->ts, op->ttl, ldt};
        } else if (op->kind == MUT_OP_CELL || op->kind == MUT_OP_CTOMB) {
            kv_cell *e = &v[j++];
            e->c = op_cell(op);
            kv_cell *k = kv_search(v, nold, &e->c, &next);
            if (!k) rebuild = true;
            else if (sst_cell_supersedes(&e->c, &k->c) &&
                     (kc_flags(&e->c) != kc_flags(&k->c) || e->c.vlen != k->c.vlen))
                rebuild = true;
            else e->seq = (uint32_t)(k - v);
        }
    }
    size_t n = nold;
    for (size_t i = 0; i < nops; i++) {
        const mut_op *op = &ops[i];
        if (op->kind == MUT_OP_MARKER) {
            int32_t ldt = op->ttl > 0 ? op->ldt : ST_NO_DELETION_TIME;
            note_ts(mt, op->ts);
            if (!marker_supersedes(op->ts, op->ttl, ldt, mk.ts, mk.ttl, mk.ldt)) continue;
            mk = (kv_marker){op->ts, op->ttl, ldt};
            if (!rebuild) {
                memcpy(mk_at, &mk.ts, 8);
                if (old->flags & MTK_MARKER_EXP) {
                    memcpy(mk_at + 8, &mk.ttl, 4);
                    memcpy(mk_at + 12, &mk.ldt, 4);
                }
            }
        } else if (op->kind == MUT_OP_CELL || op->kind == MUT_OP_CTOMB) {
            note_ts(mt, op->ts);
            if (rebuild) {
                v[n] = (kv_cell){op_cell(op), NULL, (uint32_t)n};
                n++;
                continue;
            }
            /* the cell and its match, as the pass above left them; the
             * match reflects any earlier op of this mutation on the same
             * cell, as it was overwritten in place */
            const kv_cell *e = &v[n++];
            kv_cell *k = &v[e->seq];
            if (sst_cell_supersedes(&e->c, &k->c)) kc_overwrite(k, &e->c);
        }
    }
    if (!rebuild) return KV_DONE;
    /* Merge: sort by key (stable: stored cells first), keep the superseding
     * cell of each key. */
    qsort(v, n, sizeof *v, kv_sort_cmp);
    size_t m = 0, replaced = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && !kv_cell_cmp(&v[m - 1].c, &v[i].c)) {
            if (sst_cell_supersedes(&v[i].c, &v[m - 1].c)) {
                replaced += v[m - 1].at != NULL;
                v[m - 1] = v[i];
            }
            continue;
        }
        v[m++] = v[i];
    }
    if (m > KV_MAX_CELLS) return KV_TOO_BIG;
    /* A rebuild leaves the old record behind, where a general partition
     * leaves only the cells a write replaces. The two cost the same when
     * every cell is replaced; a row that keeps growing (a collection, an
     * element at a time) or a big one of which a few cells change would
     * leave a copy of itself per write, so past a small size it becomes a
     * general partition. */
    if (old && (m > KV_REBUILD_MAX_CELLS || (oldsize > KV_REBUILD_MAX_BYTES && replaced < nold))) return KV_TOO_BIG;
    uint8_t flags = mk.ts == ST_NO_TIMESTAMP ? 0 : mk.ttl > 0 ? MTK_MARKER | MTK_MARKER_EXP : MTK_MARKER;
    size_t size = sizeof(mt_rec) + h->pklen + (flags & MTK_MARKER ? 8 : 0) + (flags & MTK_MARKER_EXP ? 8 : 0);
    for (size_t i = 0; i < m; i++) size += kc_size(&v[i].c);
    uint32_t ref;
    mt_rec *rec = ra_alloc(&mt->ra, size, &ref);
    if (!rec) return SIB_ENOMEM;
    *rec = (mt_rec){MT_KV, flags, (uint16_t)m, (uint32_t)h->pklen};
    uint8_t *p = (uint8_t *)(rec + 1);
    if (h->pklen) memcpy(p, h->pk, h->pklen);
    p += h->pklen;
    if (flags & MTK_MARKER) {
        memcpy(p, &mk.ts, 8);
        p += 8;
    }
    if (flags & MTK_MARKER_EXP) {
        memcpy(p, &mk.ttl, 4);
        memcpy(p + 4, &mk.ldt, 4);
        p += 8;
    }
    for (size_t i = 0; i < m; i++) p = kc_put(p, &v[i].c);
    mt->cells += m - nold;
    if (old) {
        mt->ix.slots[pos] = (uint64_t)tok_hi(prefix) << 32 | ref;
    } else {
        ix_insert(mt, pos, prefix, ref);
        mt->rows++;
    }
    return KV_DONE;
}

/* A KV record as an MT_PART with the same content (the caller points the
 * slot at it). */
static mt_part *kv_to_part(memtable *mt, const mt_rec *kv, uint32_t *ref)
{
    mt_part *p = part_new(mt, mt_rec_pk(kv), kv->pklen, ref);
    mt_row *r = p ? row_get(mt, p, NULL, 0) : NULL;
    if (!r) return NULL;
    mt->rows--; /* the same row */
    kv_marker mk;
    const uint8_t *q = kv_marker_get(kv, &mk);
    r->marker_ts = mk.ts;
    r->marker_ttl = mk.ttl;
    r->marker_ldt = mk.ldt;
    for (uint32_t i = 0; i < kv->ncells; i++) {
        sst_cell c;
        q = kc_get(q, &c);
        if (apply_cell(mt, r, &c)) return NULL;
        mt->cells--; /* the same cell */
    }
    return p;
}

int memtable_apply(memtable *mt, const mut_hdr *h, int64_t token, sib_rd *ops, sib_err *err)
{
    if (h->pklen > UINT32_MAX) return sib_err_set(err, SIB_EINVAL, "storage: partition key too long");
    uint64_t prefix = bt_token_prefix(token);
    bool found;
    size_t pos = ix_lower(mt, prefix, h->pk, h->pklen, true, &found);
    int rc = found ? 0 : ix_room(mt, prefix, h->pk, h->pklen, &pos);
    if (rc) return sib_err_set(err, rc, "storage: memtable out of memory");
    mt_rec *rec = found ? (mt_rec *)slot_rec(mt, mt->ix.slots[pos]) : NULL;
    size_t nops, ncells;
    if ((!rec || rec->kind == MT_KV) && ops_fit_kv(mt, *ops, &nops, &ncells)) {
        rc = kv_apply(mt, prefix, pos, rec, h, mt->ops, nops, ncells);
        if (rc == SIB_ENOMEM) return sib_err_set(err, rc, "storage: memtable out of memory");
        if (rc == KV_DONE) return 0;
    }
    mt_part *p;
    uint32_t ref = 0;
    if (rec && rec->kind == MT_PART) p = (mt_part *)rec;
    else if (rec) p = kv_to_part(mt, rec, &ref);
    else p = part_new(mt, h->pk, h->pklen, &ref);
    if (!p) return sib_err_set(err, SIB_ENOMEM, "storage: memtable out of memory");
    if (rec && ref) mt->ix.slots[pos] = (uint64_t)tok_hi(prefix) << 32 | ref;
    else if (!rec) ix_insert(mt, pos, prefix, ref);
    mt_row *row = NULL;
    uint8_t sel = 0;
    mut_op op;
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

bool mt_kv_view(mt_rowview *v, const mt_rec *r, sst_row *o)
{
    sst_cell *cells = v->inl;
    if (r->ncells > MT_VIEW_INLINE) {
        if (!sib_grow((void **)&v->cells, &v->capcells, r->ncells, sizeof *v->cells)) return false;
        cells = v->cells;
    }
    kv_marker mk;
    const uint8_t *p = kv_marker_get(r, &mk);
    memset(o, 0, sizeof *o);
    o->ck = p; /* empty: any valid pointer */
    o->marker_ts = mk.ts;
    o->marker_ttl = mk.ttl;
    o->marker_ldt = mk.ldt;
    o->del = (sst_del){SST_NO_TS, SST_NO_LDT};
    for (uint32_t i = 0; i < r->ncells; i++) p = kc_get(p, &cells[i]);
    o->cells = cells;
    o->ncells = r->ncells;
    return true;
}

const uint8_t *mt_kv_marker(const mt_rec *r, int64_t *ts, int32_t *ttl, int32_t *ldt)
{
    kv_marker mk;
    const uint8_t *p = kv_marker_get(r, &mk);
    *ts = mk.ts;
    *ttl = mk.ttl;
    *ldt = mk.ldt;
    return p;
}

const uint8_t *mt_kv_cell(const uint8_t *p, sst_cell *c) { return kc_get(p, c); }

void mt_rowview_free(mt_rowview *v)
{
    free(v->cells);
    free(v->cdels);
    memset(v, 0, sizeof *v);
}
