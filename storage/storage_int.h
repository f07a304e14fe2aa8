/* storage_int.h: private interfaces between the storage/ files.
 *
 *   mutation.c   builder + the serialized mutation format (also the commitlog payload)
 *   btree.c      insert-only B+tree keyed by (u64 prefix, key bytes): a partition's rows
 *   memtable.c   per-table memtable: an ordered index of partition records (KV records
 *                or general partitions), rows, cells, tombstones, LWW on apply
 *   read.c       st_iter / st_scan merged over memtables and SSTables
 *   commitlog.c  segments, framing, sync thread, replay reader
 *   store.c      the storage object: tables, apply, replay, truncate/drop, stats
 *   flush.c      freezing memtables, the flush worker thread, SSTable sets,
 *                commitlog segment release
 *   compact.c    the compaction manager: strategy checks, worker threads,
 *                atomic replacement in the read path, major compaction, stats
 *   readpool.c   st_read_page: bounded read pieces on the read pool threads,
 *                the active memtable's copy, pins, the page of rows
 */
#ifndef SIB_STORAGE_INT_H
#define SIB_STORAGE_INT_H

#include "compaction.h"
#include "sstable.h"
#include "storage.h"

#include <pthread.h>

/* ---- serialized mutation (mutation.c) ----------------------------------- */

enum {
    MUT_OP_PDEL = 1,   /* ts, ldt */
    MUT_OP_RANGE = 2,  /* start bound, end bound, ts, ldt */
    MUT_OP_ROW = 3,    /* ck */
    MUT_OP_STATIC = 4, /* - */
    MUT_OP_MARKER = 5, /* ts, ttl, expiry */
    MUT_OP_RDEL = 6,   /* ts, ldt */
    MUT_OP_CELL = 7,   /* col, path, ts, ttl, [expiry], value */
    MUT_OP_CTOMB = 8,  /* col, path, ts, ldt */
    MUT_OP_CDEL = 9,   /* col, ts, ldt */
};

typedef struct mut_op {
    uint8_t kind;
    uint32_t col;
    const uint8_t *key; /* ROW: ck; CELL/CTOMB: path */
    size_t keylen;
    const uint8_t *val;
    size_t vlen;
    int64_t ts;
    int32_t ttl;
    int32_t ldt; /* deletion time, or expiry of an expiring cell/marker */
    st_bound start, end; /* RANGE only: mut_next_op leaves them alone for other kinds */
} mut_op;

struct st_mutation {
    sib_buf b;      /* header (table id, pk) + ops: the serialized form */
    size_t hdr_len; /* bytes of header */
    int err;        /* sticky builder error */
    uint8_t row_sel; /* 0 none, 1 regular row, 2 static row */
};

/* Header of a serialized mutation; ops follow in r. */
typedef struct mut_hdr {
    const uint8_t *table_id; /* 16 bytes */
    const uint8_t *pk;
    size_t pklen;
} mut_hdr;

/* Decoding never reads past the end: a bad input returns SIB_ECORRUPT. */
int mut_decode_hdr(sib_rd *r, mut_hdr *h);
/* 1 = an op was read, 0 = end of mutation, <0 = corrupt. Validates the op
 * sequence (row-level ops need a selected row, markers not on static rows). */
int mut_next_op(sib_rd *r, mut_op *op, uint8_t *row_sel);
/* Full validation pass over one serialized mutation. */
int mut_validate(const uint8_t *p, size_t n);

/* ---- B+tree (btree.c) ---------------------------------------------------- */

/* Entries are owned by the caller (memtable arena) and start with bt_ent, so
 * the tree can compare keys without callbacks: order is (prefix, key memcmp,
 * shorter first). prefix is a monotone summary of the key (the biased token
 * for partitions, the first 8 key bytes big-endian for rows). `aux` is free
 * for the owner (it fills bt_ent's padding). */
typedef struct bt_ent {
    uint64_t prefix;
    const uint8_t *key;
    uint32_t keylen;
    int32_t aux;
} bt_ent;

typedef struct bt_node bt_node;
typedef struct bt {
    void *root;       /* bt_node*, or the only entry when count == 1 */
    uint32_t depth;   /* 0 = empty or single entry, 1 = root is a leaf */
    uint32_t version; /* bumped by every insert: cursors re-seek when it moves */
    uint32_t count;
} bt;

typedef struct bt_cur {
    bt_node *leaf;
    bt_ent *single; /* cursor on a one-entry tree */
    uint32_t idx;
} bt_cur;

/* true iff entry e lies strictly before the position the predicate encodes */
typedef bool (*bt_before_fn)(const bt_ent *e, const void *arg);
typedef bt_ent *(*bt_make_fn)(void *arg);

void bt_init(bt *t);
/* Returns the entry equal to probe, or inserts make(arg) (an entry with
 * probe's key) and returns it with *inserted set. NULL on OOM. One descent. */
bt_ent *bt_get_or_insert(bt *t, sib_arena *a, const bt_ent *probe, bt_make_fn make, void *arg, bool *inserted);
bt_ent *bt_find(const bt *t, const bt_ent *probe);
/* First entry for which before() is false. */
bool bt_seek(const bt *t, bt_before_fn before, const void *arg, bt_cur *c);
bool bt_first(const bt *t, bt_cur *c);
bool bt_last(const bt *t, bt_cur *c);
bool bt_cur_valid(const bt_cur *c);
bt_ent *bt_cur_get(const bt_cur *c);
void bt_cur_next(bt_cur *c);
void bt_cur_prev(bt_cur *c);
int bt_ent_cmp(const bt_ent *a, const bt_ent *b);
uint64_t bt_key_prefix(const uint8_t *k, size_t n);
static inline uint64_t bt_token_prefix(int64_t token) { return (uint64_t)token ^ (1ull << 63); }
static inline int64_t bt_prefix_token(uint64_t prefix) { return (int64_t)(prefix ^ (1ull << 63)); }

/* ---- memtable (memtable.c) ----------------------------------------------- */

typedef struct mt_cell {
    int64_t ts;
    int32_t ttl; /* 0 = none */
    int32_t ldt; /* expiry (ttl > 0), deletion time (tombstone) or ST_NO_DELETION_TIME */
    uint32_t col;
    uint32_t vlen;
    uint16_t pathlen;
    uint8_t data[]; /* path, then value */
} mt_cell;

static inline bool mt_cell_tomb(const mt_cell *c) { return c->ttl == 0 && c->ldt != ST_NO_DELETION_TIME; }

typedef struct st_deletion { int64_t ts; int32_t ldt; } st_deletion; /* ts ST_NO_TIMESTAMP = none */

typedef struct mt_cdel { uint32_t col; st_deletion del; } mt_cdel;

/* A row of a general partition (mt_part): in its partition's row tree. */
typedef struct mt_row {
    bt_ent e;       /* key = ck; e.aux = row deletion ldt */
    int64_t del_ts; /* row deletion, ST_NO_TIMESTAMP = none */
    int64_t marker_ts; /* ST_NO_TIMESTAMP = no marker */
    int32_t marker_ttl, marker_ldt;
    uint32_t ncells, capcells;
    mt_cell **cells; /* sorted by (col, path) */
    mt_cdel *cdels;  /* complex deletions: cdels[0].col = count, entries from [1] */
    uint8_t ck[];
} mt_row;

static inline st_deletion mt_row_del(const mt_row *r) { return (st_deletion){r->del_ts, r->e.aux}; }

typedef struct mt_bound {
    const uint8_t *key;
    uint32_t len;
    bool incl, unbounded;
} mt_bound;

typedef struct mt_rt {
    mt_bound start, end;
    st_deletion del;
} mt_rt;

/* Rarely used partition parts, allocated on first use. */
typedef struct mt_part_ext {
    uint32_t nrt, caprt;
    mt_rt *rts;
    mt_row *static_row;
} mt_part_ext;

/* A memtable partition is a record in the memtable's record arena, found
 * through its ordered index (memtable.c). Two kinds:
 *   MT_KV    one regular row with an empty clustering key, a liveness marker
 *            and cells, serialised after the key (no deletions, no statics):
 *            what a table without clustering columns mostly holds, in about
 *            20 bytes more than its key and values;
 *   MT_PART  anything else: an mt_part with its row tree.
 * A KV record that gets something it cannot hold becomes an MT_PART. */
enum { MT_KV = 1, MT_PART = 2 };

typedef struct mt_rec {
    uint8_t kind;
    uint8_t flags;   /* MT_KV: which marker fields follow the key */
    uint16_t ncells; /* MT_KV */
    uint32_t pklen;
} mt_rec;

typedef struct mt_part {
    mt_rec h;
    int32_t del_ldt;
    int64_t del_ts; /* partition deletion, ST_NO_TIMESTAMP = none */
    mt_part_ext *x; /* NULL until a range tombstone or static cell arrives */
    bt rows;
    uint8_t pk[];
} mt_part;

static inline const uint8_t *mt_rec_pk(const mt_rec *r)
{
    return r->kind == MT_KV ? (const uint8_t *)(r + 1) : ((const mt_part *)r)->pk;
}
static inline st_deletion mt_part_del(const mt_part *p) { return (st_deletion){p->del_ts, p->del_ldt}; }

/* Memtable memory faulted in ahead of need by a thread of its own
 * (prefault.c): the loop takes a ready mapping or maps its own. */
typedef struct st_prefault st_prefault;
int st_prefault_start(st_prefault **out, sib_err *err);
void st_prefault_stop(st_prefault *pf);
/* A ready, zeroed sib_huge_alloc mapping of exactly n bytes (SIB_HUGE_PAGE,
 * or the size last asked for with st_prefault_want), or NULL; never waits. */
void *st_prefault_take(st_prefault *pf, size_t n);
/* Asks for a mapping of n bytes to be made ready; false if not taken (the
 * worker held the lock: ask again later). */
bool st_prefault_want(st_prefault *pf, size_t n);
void st_prefault_counts(st_prefault *pf, uint64_t *taken, uint64_t *inline_maps);

/* The memtable's record arena: chunks of up to 2 MiB (huge pages, after a
 * small first one) addressed by 32-bit references (chunk index, 8-byte
 * unit), so an index slot holds a reference and 32 bits of token in 8
 * bytes. */
typedef struct mt_rarena {
    uint8_t **chunks;
    size_t *sizes;        /* each chunk's bytes; the low bit marks a huge-page chunk */
    uint32_t n, cap, cur; /* cur: the chunk being filled */
    size_t used, curcap, total; /* bytes used in cur, its size; bytes of every chunk */
    st_prefault *pf; /* huge chunks come from here when ready; NULL = always mapped inline */
} mt_rarena;

/* The ordered index (memtable.c): linear probing whose home slot is monotone
 * in the token, kept sorted, so it serves point lookups and ordered scans. */
typedef struct mt_index {
    uint64_t *slots; /* (token's high 32 bits << 32) | record reference; 0 = empty */
    size_t cap, len; /* homes are in [0, cap); len = cap + overflow tail */
    size_t n;
    uint32_t version; /* bumped when a record is added or the table is rebuilt */
    st_prefault *pf;  /* the next (huge) array comes from here when ready; NULL = none */
    size_t asked;     /* cap whose successor was asked of pf */
    size_t reserve;   /* homes memtable_reserve asked of pf, not ready yet; 0 = none */
} mt_index;

typedef struct memtable {
    sib_arena *arena; /* MT_PART contents: rows, cells, trees */
    mt_rarena ra;
    mt_index ix;
    uint64_t rows, cells;
    int64_t min_ts, max_ts;
    int64_t pf_token; /* memtable_prefetch: the previous call's token */
    bool pf_have;
    void *scratch; /* KV merges (memtable.c) */
    size_t capscratch;
    mut_op *ops;   /* a KV write's ops, decoded once (memtable.c) */
    size_t capops;
} memtable;

/* A memtable row as an sst_row (cells/cdels in caller-grown scratch). */
#define MT_VIEW_INLINE 4 /* cells a row view holds without an allocation */
typedef struct mt_rowview {
    sst_cell *cells; /* grown for rows of more than MT_VIEW_INLINE cells */
    size_t capcells;
    sst_cdel *cdels;
    size_t capcdels;
    sst_cell inl[MT_VIEW_INLINE];
} mt_rowview;
bool mt_row_view(mt_rowview *v, const mt_row *r, bool is_static, sst_row *out);
void mt_rowview_free(mt_rowview *v);

int memtable_init(memtable *mt);
void memtable_free(memtable *mt);
/* Bytes it holds: its arenas and its index. */
size_t memtable_bytes(const memtable *mt);
/* Sizes an empty memtable's index for about n partitions (a hint, so that
 * a memtable that fills as the one before it did never doubles its index:
 * a doubling is one pass over it on the loop, milliseconds at 500k). */
void memtable_reserve(memtable *mt, size_t n);
/* Its arenas have not grown past their first chunks (not worth an SSTable). */
bool memtable_in_first_chunks(const memtable *mt);
static inline size_t memtable_partitions(const memtable *mt) { return mt->ix.n; }
/* Applies one validated serialized mutation (after its header); token is
 * its partition key's (the write path has it from memtable_prefetch). */
int memtable_apply(memtable *mt, const mut_hdr *h, int64_t token, sib_rd *ops, sib_err *err);
/* A hint that the partition of this token will be written soon (memtable.c
 * explains); changes nothing. */
void memtable_prefetch(memtable *mt, int64_t token);
/* The partition pk, whose token the caller has (the read computes it once). */
const mt_rec *memtable_find(const memtable *mt, int64_t token, const uint8_t *pk, size_t pklen);
/* Prefetches the index slot where a lookup of token starts, or (record)
 * the record of the first slot there with the token's high bits
 * (st_prefetch). */
void memtable_prefetch_slot(const memtable *mt, int64_t token, bool record);
/* Ordered walk: the first partition at or after index position *pos (NULL
 * at the end), *pos set to its position; the next is at *pos + 1. */
const mt_rec *memtable_at(const memtable *mt, size_t *pos);
/* The first position whose partition is after (token, pk), or at it when
 * incl; pk NULL compares by token alone. */
size_t memtable_seek(const memtable *mt, int64_t token, const uint8_t *pk, size_t pklen, bool incl);
static inline uint32_t memtable_version(const memtable *mt) { return mt->ix.version; }
/* An MT_KV record's row as an sst_row (views into the record). */
bool mt_kv_view(mt_rowview *v, const mt_rec *r, sst_row *out);
/* The same record read in place (st_read_kv): its marker (ts
 * ST_NO_TIMESTAMP: none), returning where its r->ncells cells start, and
 * one cell (views into the record), returning where the next starts. */
const uint8_t *mt_kv_marker(const mt_rec *r, int64_t *ts, int32_t *ttl, int32_t *ldt);
const uint8_t *mt_kv_cell(const uint8_t *p, sst_cell *c);

/* A memtable and its lifetime: the active one takes writes; a frozen one
 * waits for (or is in) its flush and stays readable until its SSTable is
 * live. Iterators hold references (refs), so a flush completing or a
 * truncate between two st_iter_next calls never frees what they read. */
typedef struct st_mem {
    memtable mt;
    uint64_t first_seg;   /* commitlog segment of its first logged write; 0 = none */
    int refs;
    bool frozen, dropped; /* dropped: truncate/drop came first, discard the flush */
    sst_clpos bound;      /* commitlog position when frozen: its data is before it */
    struct st_mem *next;  /* frozen list, newest first */
} st_mem;

st_mem *st_mem_create(void);
/* An st_mem for one of s's tables: its memory is faulted in ahead by s's
 * prefault thread, when s has one (with a loop). */
st_mem *st_mem_create_in(storage *s);
void st_mem_ref(st_mem *m);
void st_mem_unref(st_mem *m);

struct st_table {
    uint8_t id[16];
    st_mem *mem;        /* active memtable */
    st_mem *frozen;     /* newest first */
    sstable **ssts;     /* live SSTables, newest (highest gen) first */
    size_t nssts, capssts;
    char *dir;          /* layout.c: <data_dir>/<ks>/<table>-<id hex>, or <data_dir>/<id hex>
                         * until named (may not exist yet); NULL without a data_dir */
    bool named;         /* dir is the <ks>/<table>-<id hex> one */
    uint64_t next_gen;
    sst_clpos flushed;  /* max clpos over live SSTables: replay skips below it */
    uint64_t srcver;    /* bumped whenever mem/frozen/ssts change */
    uint64_t dirty_seg; /* last commitlog segment marked dirty for this table */
    struct storage *s;
    /* compaction (compact.c) */
    cm_options copts;   /* strategy options + gc_grace_seconds */
    cm_strategy *cms;   /* strategy state (LCS round robin); kept across ALTER */
    uint64_t uid;       /* storage-unique, for this st_table object's life */
    uint64_t epoch;     /* storage-unique; renewed by truncate: older jobs are discarded */
    size_t cm_jobs;     /* queued or running on this table */
    uint64_t major_asked, major_done; /* major compaction sequence numbers */
    int64_t cm_retry_ns; /* after a failure, no new job before this (monotonic) */
    int64_t tomb_retry_ns; /* after a tombstone compaction that purged nothing */
    uint64_t damaged;    /* SSTables set aside at start (disk_failure_policy) */
    sstable **suspect;   /* failed a compaction as corrupt: never compacted again (referenced) */
    size_t nsuspect;
    uint64_t flushes, flush_bytes, compactions, cm_bytes_read, cm_bytes_written, purged;
    /* st_table_stats' cm_into..cm_moved_bytes (loop side) */
    uint64_t cm_into[ST_MAX_LEVELS], cm_into_n[ST_MAX_LEVELS], cm_into_l0[ST_MAX_LEVELS];
    uint64_t cm_tombstone_bytes, cm_moves, cm_moved_bytes;
    uint64_t spr[ST_SPR_BUCKETS], spr_sum; /* SSTables per read (relaxed atomics) */
};

/* LWW helpers shared with read.c */
static inline bool st_del_supersedes(st_deletion a, st_deletion b)
{
    return a.ts != b.ts ? a.ts > b.ts : a.ldt > b.ldt;
}
/* Position of ck relative to a bound: <0 before, >0 after (never 0). */
int mt_bound_cmp(const uint8_t *ck, size_t cklen, const mt_bound *b, bool is_start);

/* ---- reads over pinned sources (read.c, for readpool.c) ------------------ */

/* One partition of the active memtable, copied on the loop (readpool.c) as
 * raw rows (tombstones included, nothing evaluated), so a worker can merge
 * it while the loop keeps writing the memtable in place. */
typedef struct st_snap_part {
    const uint8_t *pk;
    uint32_t pklen;
    int64_t token;
    sst_del pdel;
    const sst_rt *rts;
    size_t nrt;
    const sst_row *stat; /* NULL: no static row */
    const sst_row *rows; /* clustering order */
    size_t nrows;
} st_snap_part;

/* What a read piece reads on a worker: referenced frozen memtables and
 * SSTables (immutable) plus the copy of the active memtable. The copy holds
 * every active partition the piece can reach: parts[0..n) in (token, pk)
 * order; `cut` means more active partitions follow parts[n-1], so a scan
 * must stop after it. */
typedef struct st_pin {
    st_mem **mems;
    size_t nmems;
    sstable **ssts;
    size_t nssts;
    const st_snap_part *parts;
    size_t nparts;
    bool cut;
    sst_bcache *bc;
} st_pin;

/* st_read of the partition pk of token (sib_murmur3_token(pk)); spare: an
 * iterator st_iter_recycle gave back, or NULL (it is reused or freed,
 * never left to the caller); cache_only: SSTable blocks only from the
 * block cache, a miss ends the iteration with SIB_EAGAIN (the inline
 * attempt of readpool.c). */
st_iter *st_read_ex(st_iter *spare, st_table *t, int64_t token, const uint8_t *pk, size_t pklen,
                    const st_slice *slices, size_t nslices, bool reversed, int32_t now_s, bool cache_only);
/* Ends a read as st_iter_destroy does (its sources' references and SSTable
 * parts are released at once) but keeps the iterator's memory for the next
 * st_read_ex or st_read_pinned on the same thread: a point read then
 * allocates nothing for its iterator. Returns it (NULL for NULL). */
st_iter *st_iter_recycle(st_iter *it);
/* SSTables the iterator opened (a partition found past the token range and
 * bloom filter checks): what st_note_sstables_per_read counts. st_read
 * counts its own reads; readpool.c counts a piece once it is final (not the
 * inline attempt that a block missing from the cache sends to the pool). */
uint32_t st_iter_sstables(const st_iter *it);
/* The commonest point read without an iterator: when only t's active
 * memtable can hold the partition (no frozen memtable; the caller knows
 * that no SSTable's bloom filter admits token) and holds it as a KV
 * record (a table without clustering columns: no partition deletion, range
 * tombstone or static row), its one row is evaluated as st_iter_next would
 * (slices, liveness at now_s), straight from the record. scratch: a
 * recycled iterator (st_iter_recycle) lending its cell view buffer when
 * room[0..nroom) is too small for the record's cells (NULL: none, the
 * shortcut then does not apply to such a record). Returns 1 with *out
 * (cell views in room or scratch until its next use, bytes in the
 * memtable), 0 when nothing is live or there is no such partition, -1 when
 * the shortcut does not apply (then st_read_ex). *tombstones: as
 * st_iter_tombstones. */
int st_read_kv(st_iter *scratch, st_table *t, int64_t token, const uint8_t *pk, size_t pklen, const st_slice *slices,
               size_t nslices, int32_t now_s, st_cell_view *room, size_t nroom, st_row *out, uint64_t *tombstones);
/* True when every source of the iterator is a memtable the iterator
 * references (no SSTable, no pinned copy): the rows it returns then point
 * only into those memtables (values, paths, clustering keys) and into its
 * own scratch (the cell views), so they stay valid while the iterator
 * lives and nothing writes to the memtables. */
bool st_iter_memtables_only(const st_iter *it);
/* st_read over a pin (any thread); sp: the partition's copy, or NULL;
 * spare and token as st_read_ex's. */
st_iter *st_read_pinned(st_iter *spare, const st_pin *v, const st_snap_part *sp, int64_t token, const uint8_t *pk,
                        size_t pklen, const st_slice *slices, size_t nslices, bool reversed, int32_t now_s);
/* st_scan over a pin: candidate partitions (live or not) in order from
 * start; never re-seeks (nothing it reads moves). *sp is the partition's
 * copy or NULL. Ends at the pin's cut (st_scan_cut then tells). */
st_scan *st_scan_pinned(const st_pin *v, const st_position *start);
bool st_scan_next_candidate(st_scan *sc, const uint8_t **pk, size_t *pklen, int64_t *token,
                            const st_snap_part **sp);
bool st_scan_cut(const st_scan *sc);
/* The partition returned last (or the start position's key): false if none. */
bool st_scan_last(const st_scan *sc, const uint8_t **pk, size_t *pklen, int64_t *token);

/* ---- commitlog (commitlog.c) --------------------------------------------- */

typedef struct clog clog;
typedef struct clog_opts {
    const char *dir;
    st_sync_mode sync;
    int sync_period_ms, group_window_ms;
    size_t segment_size;
    struct ev_loop *loop;
    sib_log *log;
    uint64_t min_id; /* new segment ids are above this (SSTables' clpos) */
    bool ignore_replay_errors; /* damage before the tail and missing segments are skipped, not fatal */
} clog_opts;

int clog_open(clog **out, const clog_opts *o, sib_err *err);
/* Syncs everything, runs pending callbacks, stops the sync thread. */
void clog_close(clog *cl);

/* Building an entry: clog_entry_begin returns the buffer to append the
 * payload to; clog_entry_commit frames and writes it. On commit failure the
 * file is cut back to before the entry (or the log is marked failed). */
sib_buf *clog_entry_begin(clog *cl);
int clog_entry_commit(clog *cl, uint64_t *pos, sib_err *err);
/* Applies a written entry's payload (store.c: to the memtables); must not
 * append to the log. hint is clog_entry_queue's (store.c: the token of the
 * entry's first mutation, hashed once). <0: the entry's done gets that
 * error. */
typedef int (*clog_apply_fn)(void *arg, const uint8_t *payload, size_t len, int64_t hint, sib_err *err);
/* Building an entry for clog_entry_queue: with a loop, the payload is
 * appended where the iteration's queued entries wait for their write (it
 * is framed there, not copied there); without one, as clog_entry_begin.
 * Nothing else may append to the log until clog_entry_queue. */
sib_buf *clog_queue_begin(clog *cl);
/* Queues the entry built since clog_queue_begin (ordered with commits).
 * With a loop it is written, together with every entry queued in the same
 * loop iteration, by ONE write() from an EV_MAXPRI ev_prepare watcher; then
 * apply (may be NULL) runs, then done: right away in periodic mode, after
 * the fsync in batch/group mode. A failed write fails every queued entry
 * (done gets SIB_EIO and its message) and applies none. Without a loop the
 * entry is written, applied and acked before returning. Returns <0 (done
 * never called) when the entry is refused: too big, out of memory, log failed. */
int clog_entry_queue(clog *cl, clog_apply_fn apply, void *arg, int64_t hint, st_done_fn done, void *ctx,
                     sib_err *err);
/* Writes and applies the queued entries now; their dones still run from the
 * prepare watcher, never from inside this call. */
void clog_flush(clog *cl);
size_t clog_max_entry(const clog *cl);
/* Records that `table` has data in the current segment (or the one being
 * replayed), for flush bookkeeping; *last_seg caches the last segment marked. */
void clog_mark_dirty(clog *cl, const uint8_t table[16], uint64_t *last_seg);

/* Asks the sync thread for an fsync covering pos (now in batch/periodic mode,
 * within the window in group mode) and calls done once it is done, from the
 * loop. Without a loop, blocks and calls done before returning. */
int clog_wait(clog *cl, uint64_t pos, st_done_fn done, void *ctx, sib_err *err);
uint64_t clog_pos(const clog *cl); /* bytes written so far */
bool clog_needs_wait(const clog *cl); /* batch/group mode */

typedef int (*clog_replay_fn)(void *arg, const uint8_t *payload, size_t len, const char *seg, uint64_t seg_id,
                              uint64_t off, sib_err *err);
/* The position after the last entry written (segment id, offset). */
sst_clpos clog_position(const clog *cl);
/* Forgets (and returns the paths of, for the caller to unlink) the oldest
 * segments, in id order, while every table dirty in them is covered, never
 * the current one. *paths is malloc'd, each path malloc'd. */
typedef bool (*clog_covered_fn)(void *arg, const uint8_t table[16], uint64_t seg_id);
size_t clog_release(clog *cl, clog_covered_fn covered, void *arg, char ***paths);
/* Bytes of live segments (full segments counted whole), and the oldest
 * one that a newer segment follows: its id and the tables dirty in it
 * (*ids valid until the next append or release). 0 if only one is live. */
uint64_t clog_oldest(const clog *cl, uint64_t *live_bytes, const uint8_t (**ids)[16], size_t *nids);
int clog_replay(clog *cl, clog_replay_fn fn, void *arg, storage_replay_stats *st, sib_err *err);

typedef struct clog_stats {
    uint64_t bytes, entries, segments_created, segments_live, syncs, pending;
    uint64_t writebacks; /* periodic mode: writeback starts between fsyncs */
    uint64_t writes; /* write() calls that appended entries */
} clog_stats;
void clog_get_stats(clog *cl, clog_stats *out);

/* ---- payload kinds (store.c, commitlog entries) -------------------------- */

/* ---- flush (flush.c) ------------------------------------------------------ */

typedef struct st_flusher st_flusher;
int st_flusher_start(st_flusher **out, storage *s, struct ev_loop *loop, sib_err *err);
void st_flusher_stop(st_flusher *f); /* waits for running jobs */
/* Freezes t's memtable and queues its flush (no-op when empty). */
int st_table_freeze(storage *s, st_table *t, sib_err *err);
/* Queues again the flushes of t's memtables whose flush failed. */
int st_table_retry_flushes(storage *s, st_table *t, sib_err *err);
/* Handles finished flushes (loop thread). */
void st_flusher_poll(st_flusher *f);
/* Blocks until every queued flush is done (no-loop mode). */
void st_flusher_drain(st_flusher *f);
void st_flusher_unlink(st_flusher *f, char **paths, size_t n); /* takes the paths */
int st_table_load(storage *s, st_table *t, sib_err *err);
void st_table_drop_ssts(st_table *t, sst_clpos upto); /* sstables with clpos <= upto */
/* Drops the table's reference and deletes the files on the flush thread. */
void st_sst_delete(storage *s, const char *dir, sstable *sst);
void st_release_segments(storage *s);

int st_ssts_insert(st_table *t, sstable *sst);
/* Queues an rmdir of path after the unlinks queued so far (takes path). */
void st_flusher_rmdir(st_flusher *f, char *path);
/* Queues hard links src[i] -> dst[i] before anything queued later (takes all). */
void st_flusher_link(st_flusher *f, char **src, char **dst, size_t n);

/* ---- directory layout (layout.c) ----------------------------------------- */

/* "<32 lowercase hex>" -> id; "<name>-<32 hex>" -> id. */
bool st_layout_hex_id(const char *name, uint8_t id[16]);
bool st_layout_named_id(const char *name, uint8_t id[16]);
typedef int (*st_layout_fn)(void *ctx, const uint8_t id[16], const char *dir, sib_err *err);
/* Calls fn for every table directory under data_dir, in either layout. */
int st_layout_walk(const char *data_dir, st_layout_fn fn, void *ctx, sib_err *err);
/* The directory of table id (malloc'd): the one on disk, else the unnamed
 * <data_dir>/<id hex>, not created. *named: it is a <ks>/<table>-<hex> one. */
int st_layout_find(storage *s, const uint8_t id[16], char **dir, bool *named, sib_err *err);
/* An SSTable of t that sst_open refused at start (open_err): applies
 * disk_failure_policy. 0: set aside (quarantined or ignored; logged, counted);
 * else the error naming the file, start refused. */
int st_layout_damaged(st_table *t, uint64_t gen, const sib_err *open_err, sib_err *err);
/* rmdir of a dropped table's folder: backups/ first, each only if empty. */
void st_layout_rmdir(const char *dir);
uint64_t *storage_layout_moves(storage *s); /* moves done by this process (store.c) */

/* ---- compaction manager (compact.c) -------------------------------------- */

typedef struct st_compactor st_compactor;
int st_compactor_start(st_compactor **out, storage *s, struct ev_loop *loop, sib_err *err);
/* Cancels running jobs, waits for the workers, completes what finished. */
void st_compactor_stop(st_compactor *c);
void st_compactor_poll(st_compactor *c);
/* Asks t's strategy for work (after a flush, a completion, new options). */
void st_compaction_check(storage *s, st_table *t);
/* Truncate/drop: cancels t's jobs (their outputs are discarded) and renews
 * its epoch. */
void st_compaction_reset(storage *s, st_table *t);
/* Counters of storage_stats kept across drops (flush.c adds flushes). */
void st_note_flush(storage *s, st_table *t, uint64_t bytes);
/* Fills out->leveled, fanout and levels (compact.c). */
void st_compaction_levels(const st_table *t, st_table_stats *out);
/* Counts one partition read that opened n SSTables (read.c). */
void st_note_sstables_per_read(st_table *t, uint32_t n);
void st_compaction_running(storage *s, const st_table *t, uint64_t *running);

/* storage internals flush.c needs (store.c) */
clog *storage_clog(storage *s);
st_flusher *storage_flusher(storage *s);
st_prefault *storage_prefault(storage *s);
st_table *storage_table_next(storage *s, size_t *i); /* iteration over tables */
st_compactor *storage_compactor(storage *s); /* NULL until replay is over */
st_compactor *storage_compactor_any(storage *s);
uint64_t storage_next_epoch(storage *s);
storage_stats *storage_totals(storage *s); /* flush/compaction counters */
sst_bcache *storage_bcache(storage *s); /* NULL: no block cache */

/* read pool (readpool.c) */
typedef struct st_readpool st_readpool;
int st_readpool_start(st_readpool **out, storage *s, struct ev_loop *loop, sib_err *err);
void st_readpool_stop(st_readpool *p); /* drains first (storage_read_drain) */
void st_readpool_drain(st_readpool *p);
st_readpool *storage_readpool(storage *s);

#define ST_ENTRY_VERSION 1
enum { ST_ENTRY_MUTATIONS = 1, ST_ENTRY_TRUNCATE = 2, ST_ENTRY_DROP = 3 };

#endif
