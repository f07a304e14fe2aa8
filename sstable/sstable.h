/* sstable.h: immutable sorted tables on disk (writer, reader, bloom filter).
 *
 * An SSTable is one generation <gen> of a table directory:
 *   <gen>-Data.db        partitions in token order, rows in clustering order,
 *                        in LZ4 blocks (default 16 KiB uncompressed) + crc32c
 *   <gen>-Index.db       partition -> data position (+ clustering samples inside
 *                        large partitions), in crc'd pages, with a summary
 *   <gen>-Filter.db      bloom filter over partition keys
 *   <gen>-Statistics.db  timestamps, deletion times, key range, level, ...
 *   <gen>-TOC.txt        the component list, written LAST: no TOC = not live
 * Storage keeps one directory per table: <data_dir>/<table id hex>/.
 *
 * The layer is as type-agnostic as storage/: partitions are (token, pk bytes)
 * ordered by (signed token, memcmp pk); clustering keys are opaque
 * byte-comparable strings ordered by memcmp (shorter prefix first). It stores
 * everything a memtable holds: partition deletion, range tombstones, the
 * static row, row markers, row deletions, complex deletions and cells (with
 * paths, ttl, expiry/deletion time). It does no reconciliation: that is the
 * reader's caller's job (storage/read.c).
 *
 * Invariants: files are written under "<name>.tmp", fsynced, renamed, and the
 * directory fsynced; TOC last. A reader never trusts a byte it has not
 * checked: every block, page and file section carries a crc32c; a mismatch is
 * SIB_ECORRUPT with a message naming the file. An open sstable is immutable
 * and may be read from any thread (pread only); refcounts are not atomic:
 * take and drop references on one thread (the owning loop).
 */
#ifndef SIB_SSTABLE_H
#define SIB_SSTABLE_H

#include "common.h"

#define SST_NO_TS INT64_MIN  /* no deletion / no marker */
#define SST_NO_LDT INT32_MAX /* never expires */

typedef struct sst_del { int64_t ts; int32_t ldt; } sst_del;

/* A clustering bound (see storage.h st_bound). */
typedef struct sst_bound {
    const uint8_t *key;
    uint32_t len;
    bool incl, unbounded;
} sst_bound;

typedef struct sst_rt { sst_bound start, end; sst_del del; } sst_rt;

typedef struct sst_cell {
    uint32_t col;
    uint32_t pathlen, vlen;
    const uint8_t *path, *val;
    int64_t ts;
    int32_t ttl; /* 0 = none */
    int32_t ldt; /* expiry (ttl > 0), deletion time (tombstone), else SST_NO_LDT */
} sst_cell;

static inline bool sst_cell_tomb(const sst_cell *c) { return c->ttl == 0 && c->ldt != SST_NO_LDT; }

typedef struct sst_cdel { uint32_t col; sst_del del; } sst_cdel;

typedef struct sst_row {
    const uint8_t *ck;
    uint32_t cklen;
    bool is_static;
    int64_t marker_ts; /* SST_NO_TS = none */
    int32_t marker_ttl, marker_ldt;
    sst_del del;
    const sst_cdel *cdels;
    uint32_t ncdels;
    const sst_cell *cells; /* sorted by (col, path) */
    uint32_t ncells;
} sst_row;

/* Position of ck relative to a bound: <0 before, >0 after (never 0). */
int sst_bound_cmp(const uint8_t *ck, size_t cklen, const sst_bound *b, bool is_start);
/* Cassandra 4.x Cells.resolveRegular: true iff a wins over b. */
bool sst_cell_supersedes(const sst_cell *a, const sst_cell *b);
static inline bool sst_del_supersedes(sst_del a, sst_del b) { return a.ts != b.ts ? a.ts > b.ts : a.ldt > b.ldt; }

/* ---- metadata -------------------------------------------------------------- */

/* A commitlog position (segment id, offset): everything logged before it is in
 * the sstable (storage's bookkeeping for replay; 0/0 = unknown). */
typedef struct sst_clpos { uint64_t seg, off; } sst_clpos;
static inline int sst_clpos_cmp(sst_clpos a, sst_clpos b)
{
    return a.seg != b.seg ? (a.seg < b.seg ? -1 : 1) : a.off != b.off ? (a.off < b.off ? -1 : 1) : 0;
}

#define SST_LDT_BINS 32
typedef struct sst_stats {
    int64_t min_ts, max_ts;       /* over everything written; SST_NO_TS if none */
    int32_t min_ldt, max_ldt;     /* over tombstones and expiring cells; SST_NO_LDT if none */
    uint64_t partitions, rows, cells, tombstones; /* tombstones: + expiring cells/markers */
    /* live cells and row markers without a TTL: data that never expires
     * (UINT64_MAX: unknown, a file written before it was counted) */
    uint64_t live_forever;
    uint64_t ldt_bins[SST_LDT_BINS]; /* tombstone ldt histogram over [min_ldt, max_ldt] */
    uint64_t data_bytes, data_file_bytes; /* logical (uncompressed) / on disk */
    uint32_t level;
    uint64_t repaired_at;
    sst_clpos clpos;
    bool has_partition_deletions, has_range_tombstones;
    int64_t first_token, last_token;
    const uint8_t *first_key, *last_key; /* partition keys; owned by the sstable */
    uint32_t first_keylen, last_keylen;
    const uint8_t *min_ck, *max_ck; /* over regular rows (NULL if none) */
    uint32_t min_cklen, max_cklen;
} sst_stats;

/* ---- writer ------------------------------------------------------------------ */

typedef struct sst_writer_opts {
    size_t block_size;       /* 0 -> 16 KiB uncompressed */
    size_t index_interval;   /* clustering sample every N bytes; 0 -> 16 KiB */
    size_t index_run;        /* Data bytes an index run spans before the next
                              * entry (writer.c); 0 -> 4 KiB, 1 -> an entry
                              * per partition */
    double fp_chance;        /* 0 -> 0.01 */
    uint64_t expected_keys;  /* sizes the bloom filter; 0 -> 1 */
    uint32_t level;
    uint64_t repaired_at;
    sst_clpos clpos;
    bool no_compress;        /* store blocks raw (tests) */
    int64_t ts_base;         /* timestamps are stored relative to it: the
                              * lowest one to be written keeps them short */
} sst_writer_opts;

typedef struct sst_writer sst_writer;

/* Starts <dir>/<gen>-*.db.tmp files (dir must exist). */
int sst_writer_create(sst_writer **out, const char *dir, uint64_t gen, const sst_writer_opts *o, sib_err *err);
/* Partitions in (token, pk) order; within one: the range tombstones, then the
 * static row (optional), then rows in clustering order. */
int sst_write_partition(sst_writer *w, const uint8_t *pk, size_t pklen, sst_del pdel, const sst_rt *rts, size_t nrt,
                        sib_err *err);
int sst_write_row(sst_writer *w, const sst_row *r, sib_err *err);
int sst_write_partition_end(sst_writer *w, sib_err *err);
/* Bytes of Data.db written so far (whole compressed blocks): where a
 * compaction splits its output. */
uint64_t sst_writer_data_bytes(const sst_writer *w);
/* Writes the other components, fsyncs, renames, TOC last, fsyncs the dir.
 * *bytes_out (may be NULL) = bytes of all components. */
int sst_writer_finish(sst_writer *w, uint64_t *bytes_out, sib_err *err);
/* Frees the writer; removes its files unless finished. */
void sst_writer_destroy(sst_writer *w);

/* ---- reader ------------------------------------------------------------------ */

typedef struct sstable sstable;
typedef struct sst_part sst_part;
typedef struct sst_pscan sst_pscan;

/* Opens a live sstable (TOC present) and loads summary, filter, stats. */
int sst_open(sstable **out, const char *dir, uint64_t gen, sib_err *err);
void sst_ref(sstable *s);
/* Drops a reference; the last one closes the files (and deletes them, as
 * sst_remove, if sst_mark_obsolete was called). */
void sst_unref(sstable *s);
/* The files are deleted (sst_remove) when the last reference goes. */
void sst_mark_obsolete(sstable *s);
const sst_stats *sst_get_stats(const sstable *s);
uint64_t sst_gen(const sstable *s);
const char *sst_data_path(const sstable *s);
/* Creation time of Data.db (its mtime, seconds since the epoch). */
int64_t sst_created(const sstable *s);
/* Reads every Data block (crc + decompression) and every Index page (crc):
 * 0, or SIB_ECORRUPT naming the file and offset of the first bad one.
 * *blocks (may be NULL) = blocks + pages checked. For offline verification. */
int sst_verify(sstable *s, uint64_t *blocks, sib_err *err);

/* Bloom filter: false means the partition is certainly absent. */
bool sst_may_contain(const sstable *s, int64_t token);

/* Looks a partition up: *out NULL if absent. The part holds a reference.
 * Reads its blocks without a cache (any thread; see sst_part_open_cached). */
int sst_part_open(sstable *s, const uint8_t *pk, size_t pklen, int64_t token, sst_part **out, sib_err *err);
void sst_part_close(sst_part *p);
/* Logical (uncompressed) bytes of the partition in Data.db. */
uint64_t sst_part_size(const sst_part *p);
sst_del sst_part_deletion(const sst_part *p);
size_t sst_part_rts(const sst_part *p, const sst_rt **rts);
const sst_row *sst_part_static(const sst_part *p); /* NULL if none */
/* Positions at the first row >= b (b a start bound) or, reversed, at the last
 * row <= b (b an end bound); then sst_part_next walks that way. Only the
 * blocks the slice needs are read (clustering index). */
int sst_part_seek(sst_part *p, const sst_bound *b, bool reversed, sib_err *err);
/* 1 = *out is a row (valid until the next next/seek/close), 0 = end, <0 error. */
int sst_part_next(sst_part *p, const sst_row **out, sib_err *err);

/* ---- block cache ---------------------------------------------------------------
 *
 * A bounded LRU cache of decompressed Data.db blocks (bcache.c), shared by the
 * SSTables of one owner: keyed by (an id unique to each sst_open in the
 * process, block index), so an SSTable reusing a generation never sees
 * another's block.
 * Blocks are crc-checked once, before they enter the cache. Entries are
 * reference counted: a part keeps the block it reads alive even when it is
 * evicted or forgotten. Thread-safe (one mutex, atomic entry counts): the
 * owning loop and its read pool share a cache; compaction reads with
 * sst_part_open, which bypasses it. An sstable is read through one cache (sst_bcache_forget stops its
 * caching everywhere). */
typedef struct sst_bcache sst_bcache;
typedef struct sst_bcache_stats {
    uint64_t hits, misses;   /* lookups of compressed blocks (raw blocks are never cached) */
    uint64_t evictions;      /* entries pushed out by the size bound */
    size_t entries, bytes;   /* cached now; bytes include per-entry overhead */
    size_t capacity;
} sst_bcache_stats;
/* capacity in bytes (0: every block is dropped as soon as its reader moves on). */
int sst_bcache_create(sst_bcache **out, size_t capacity, sib_err *err);
/* Frees the cache. Parts opened through it must not read afterwards, but may
 * still be closed (the blocks they hold go then). */
void sst_bcache_destroy(sst_bcache *bc);
void sst_bcache_get_stats(const sst_bcache *bc, sst_bcache_stats *out); /* bc may be NULL: zeros */
/* Drops s's blocks from bc and stops caching s's blocks there (call when s
 * leaves the read path: compaction, truncate, drop). Parts of s still open
 * keep what they hold and read any further blocks uncached. */
void sst_bcache_forget(sst_bcache *bc, sstable *s);
/* sst_part_open reading its Data blocks through bc (NULL: like sst_part_open).
 * Any thread. */
int sst_part_open_cached(sstable *s, sst_bcache *bc, const uint8_t *pk, size_t pklen, int64_t token, sst_part **out,
                         sib_err *err);
/* The same, but a Data block not in bc (or stored raw) is never read: the
 * open, seek or next that needs it fails with SIB_EAGAIN. What a caller on
 * an event loop uses to answer from memory or else hand the read to a
 * worker. (Index.db is mapped: its pages count as memory.) */
int sst_part_open_cache_only(sstable *s, sst_bcache *bc, const uint8_t *pk, size_t pklen, int64_t token,
                             sst_part **out, sib_err *err);

/* Partition keys in order from a position (pk NULL: pure token bound). */
int sst_pscan_open(sstable *s, int64_t token, const uint8_t *pk, size_t pklen, bool inclusive, sst_pscan **out,
                   sib_err *err);
/* 1 = *pk valid until the next call, 0 = end, <0 error: a next call goes on
 * with the next partition (or, for a damaged index page, the next page). */
int sst_pscan_next(sst_pscan *sc, const uint8_t **pk, size_t *pklen, int64_t *token, sib_err *err);
/* Opens the partition sst_pscan_next returned last, without a lookup and
 * sharing the scan's block; it must be closed before the next
 * sst_pscan_next or sst_pscan_close. */
int sst_pscan_part(sst_pscan *sc, sst_part **out, sib_err *err);
void sst_pscan_close(sst_pscan *sc);

/* Generation numbers of the names "<gen>-<suffix>" in dir, ascending
 * (*out malloc'd, NULL when none). Read-only. */
size_t sst_dir_gens(const char *dir, const char *suffix, uint64_t **out);

/* ---- salvage (scrub.c) ----------------------------------------------------- */

/* Opens an SSTable without its Filter.db and Statistics.db, which may be
 * damaged: Data.db's header and chunk table and Index.db's summary must be
 * good. Only for sst_rewrite (no bloom filter, zeroed stats). */
int sst_open_salvage(sstable **out, const char *dir, uint64_t gen, sib_err *err);
/* Timestamp base of Data.db (its footer): a rewrite keeps it. */
int64_t sst_ts_base(const sstable *s);
/* Partitions it holds: Statistics.db's count, estimated from Index.db or
 * Data.db when the stats are not loaded (sst_open_salvage). */
uint64_t sst_key_estimate(const sstable *s);

typedef struct sst_rewrite_report {
    uint64_t partitions, rows;            /* written */
    uint64_t partitions_dropped;          /* unreadable from their start (key or header) */
    uint64_t partitions_cut;              /* kept up to their first unreadable row */
    uint64_t pages_dropped;               /* index pages unreadable: their partitions unknown */
    char first_error[512];                /* "" when nothing was dropped */
} sst_rewrite_report;
/* Writes every readable partition and row of s, in order, as generation
 * newgen of dir (level 0, commitlog position 0: replay covers all of it;
 * the writer's fp_chance and block size from o, NULL = defaults). A damaged
 * block drops what it holds (reported, never silently). rep is filled.
 * Fails only when the output cannot be written (nothing left of it then). */
int sst_rewrite(sstable *s, const char *dir, uint64_t newgen, const sst_writer_opts *o, sst_rewrite_report *rep,
                sib_err *err);

/* ---- directory ------------------------------------------------------------- */

/* Lists live generations of dir (ascending). Deletes only what is proven
 * unfinished: a generation with a file under a .tmp name (a write cut
 * short: the writer holds TOC.txt.tmp until its TOC exists) and one with a
 * TOC but no Data.db (a deletion cut short: Data.db goes first). A
 * generation with every component but no TOC is verified and its TOC
 * rebuilt (WARN); one that fails or is incomplete is kept on disk, not
 * loaded (WARN). Compaction logs must be recovered before (cm_txn_recover).
 * *gens is malloc'd. */
int sst_dir_scan(const char *dir, uint64_t **gens, size_t *n, uint64_t *max_gen, sib_log *log, sib_err *err);
/* The paths of a generation's files in the order to delete them in (Data.db
 * first, TOC.txt last), each malloc'd into out[0..4]. */
int sst_files(const char *dir, uint64_t gen, char *out[5]);
/* Deletes a generation's files (Data.db first, made durable, then the
 * others and any tmp names, TOC last) and fsyncs the directory. */
int sst_remove(const char *dir, uint64_t gen, sib_err *err);
/* Generation newgen as a copy of gen at another level, without rewriting
 * its data: Data, Index and Filter are hard links to gen's files, and
 * Statistics.db is gen's (crc checked) with the level changed. TOC.txt.tmp
 * is held from the first file to the end, so a crash leaves newgen proven
 * unfinished; on an error every file of newgen made so far is removed. gen
 * is left as it was (LCS's lone SSTable moving up a level). */
int sst_link_relevel(const char *dir, uint64_t gen, uint64_t newgen, uint32_t level, sib_err *err);
/* Estimated droppable tombstones (ldt < gc_before) from the histogram. */
uint64_t sst_droppable_tombstones(const sst_stats *st, int32_t gc_before);

/* ---- bloom filter (exposed for tests) ------------------------------------ */

typedef struct sst_bloom { uint64_t nbits; uint32_t k; uint8_t *bits; } sst_bloom;
int sst_bloom_init(sst_bloom *b, uint64_t nkeys, double fp_chance);
void sst_bloom_free(sst_bloom *b);
void sst_bloom_add(sst_bloom *b, int64_t token);
bool sst_bloom_test(const sst_bloom *b, int64_t token);

#endif
