/* storage.h: the local table store of a Sibyl node: commitlog, memtables and
 * SSTables (flushed on a worker thread), with a merged read path.
 *
 * The layer is TYPE-AGNOSTIC. It sees:
 *   - a partition key: the serialized partition key bytes exactly as Cassandra
 *     builds them (one column's value, or `u16 len + bytes + 0x00` per
 *     component; the caller builds it). Token = sib_murmur3_token(pk).
 *     Partitions are ordered by (token signed, then pk bytes memcmp).
 *   - a clustering key: an opaque byte-comparable string built by the schema
 *     module, ordered by memcmp (a shorter prefix sorts first). Tables without
 *     clustering columns use the empty string. A clustering PREFIX (used in
 *     slice bounds and range tombstones) must be a byte prefix of the
 *     encoding of every full key that extends it.
 *   - columns: uint32 ids (assigned by schema, never reused). A cell may carry
 *     a cell path (collection element key, byte-comparable) for non-frozen
 *     collections; simple cells use an empty path.
 *   - cells: value + write timestamp (int64 us) + ttl (int32 s, 0 = none) +
 *     local expiry/deletion time (int32 s since epoch).
 *
 * Reconciliation is Cassandra 4.x last-write-wins (Cells.resolveRegular after
 * CASSANDRA-14592; see docs/compaction.md, Reconciliation and purge), deletions shadow
 * everything with timestamp <= theirs, expired TTL cells are invisible to
 * reads (now_s >= expiry) but keep shadowing older data, and a row exists iff
 * its liveness marker or at least one cell is live.
 *
 * Threading: every function here is called on the owning loop thread
 * (opts.loop). fsync runs on a private sync thread that reports back with
 * ev_async; nothing here blocks the loop on fsync. Iterators and scans are
 * synchronous and must not outlive a truncate/drop of their table;
 * st_read_page runs SSTable reads on the read pool (see "reads off the
 * loop").
 *
 * Durability: storage_apply appends ONE commitlog entry for all the mutations
 * it is given (a logged batch is all-or-nothing on replay) and then applies
 * them to the memtables. `done` is called once the entry is written (periodic
 * mode) or written and fsynced (batch and group modes).
 * With a loop the entries of one loop iteration are coalesced: they reach
 * the file in ONE write() at the end of the iteration (a high-priority
 * ev_prepare watcher, before the CQL server's reply flush), and only then go
 * to the memtables and get their `done`. So a read in the same iteration may
 * not see a write that is not acked yet, and a write whose append failed is
 * never visible.
 *
 * Flush (with a data_dir): a full memtable is frozen, a fresh one takes the
 * writes, and a flush thread writes the frozen one as an SSTable (reporting
 * back with ev_async); it stays readable until its SSTable is live. Reads
 * merge the memtables and the SSTables. Each SSTable records the commitlog
 * position it covers: replay skips what a table's SSTables already hold (so
 * nothing is applied twice, though LWW would make that harmless), and a
 * segment is deleted once every table with data in it has flushed past it.
 */
#ifndef SIB_STORAGE_H
#define SIB_STORAGE_H

#include "common.h"

struct ev_loop;

typedef struct storage storage;         /* a node's store: owns tables + commitlog */
typedef struct st_table st_table;       /* one table's store: memtables + SSTables */
typedef struct st_mutation st_mutation; /* a change to ONE partition of ONE table */
typedef struct st_iter st_iter;         /* rows of one partition */
typedef struct st_scan st_scan;         /* partitions of a table in token order */

#define ST_NO_DELETION_TIME INT32_MAX /* ldt of a cell/marker that never expires */
#define ST_NO_TIMESTAMP INT64_MIN     /* "no deletion" / "no marker" */
#define ST_MAX_KEY_LEN 65535          /* partition keys, cell paths */
/* Clustering keys are stored in their byte-comparable encoding (schema's
 * ckey.c), which may be longer than the values it holds: a text escapes
 * every zero byte and closes each component. The CQL layer limits the
 * values to 65535 bytes in all, as Cassandra does; this bound leaves room
 * for the encoding of any key that passed that check (at most 4x). */
#define ST_MAX_CK_LEN (4 * 65536)

/* ---- opening -------------------------------------------------------------- */

typedef enum {
    ST_SYNC_PERIODIC = 0, /* ack after write(); fsync every sync_period_ms (Cassandra default) */
    ST_SYNC_BATCH,        /* ack after an fsync covering the write; fsync as soon as asked */
    ST_SYNC_GROUP,        /* ack after fsync; at most one fsync per group_window_ms */
} st_sync_mode;

/* disk_failure_policy (cassandra.yaml), for an SSTable that cannot be
 * opened at start (a damaged Filter.db, Statistics.db or Data.db footer, a
 * truncated Data.db):
 *   STOP        refuse to start, naming the file (the default)
 *   BEST_EFFORT move the SSTable's files into <table dir>/quarantine/, log at
 *               ERROR and start without it (counted in st_table_stats)
 *   IGNORE      log at ERROR and start without it, leaving its files where
 *               they are (counted too)
 * A table that starts without an SSTable serves what the others and the
 * commitlog hold: deleted data that only its tombstones shadowed comes back
 * until the next repair. */
typedef enum { ST_DFP_STOP = 0, ST_DFP_BEST_EFFORT, ST_DFP_IGNORE } st_disk_failure_policy;

typedef struct storage_opts {
    const char *data_dir;      /* SSTables; NULL = memtables only (nothing flushes) */
    const char *commitlog_dir; /* required; created if missing */
    st_sync_mode sync;
    int sync_period_ms;   /* periodic mode; 0 -> 10000 (commitlog_sync_period) */
    int group_window_ms;  /* group mode; 0 -> 2. Cassandra's default is 1000 ms
                           * but ours fsyncs on a cheap local disk: 2 ms keeps
                           * latency low and still folds bursts into one fsync */
    size_t segment_size;  /* 0 -> 32 MiB; one entry may use at most half of it */
    struct ev_loop *loop; /* owning loop. NULL = no loop (tools, tests): batch and
                           * group modes then fsync inline and call `done` before
                           * storage_apply returns */
    sib_log *log;         /* may be NULL */
    /* SSTables (only with data_dir): each table lives in
     * <data_dir>/<keyspace>/<table>-<table id as 32 hex digits>/ once
     * st_table_set_name has named it, in <data_dir>/<id hex>/ before
     * (the old layout; see st_table_set_name). memtable_heap_space (cassandra.yaml;
     * 0 -> a quarter of sib_memory_budget(), as Cassandra's quarter of its
     * heap; the environment variable SIBYL_MEMTABLE_HEAP_SPACE, in bytes,
     * overrides the default)
     * bounds the memtables, active and frozen (being flushed) together, as
     * Cassandra's: when the active ones reach half of it the largest is
     * frozen and flushed on the flush thread (Cassandra's
     * memtable_cleanup_threshold with one flush writer), and writers are
     * slowed while the memtables stay near max(it, 64 MiB) (store.c,
     * "write admission"). */
    size_t memtable_heap_space;
    /* commitlog_total_space (cassandra.yaml): when the live commitlog
     * segments exceed it, the tables holding data in the oldest one flush,
     * so it can be released (Cassandra's behaviour); bounds the commitlog's
     * disk use and replay time whatever memtable_heap_space is. 0 -> no
     * Cassandra's default, a quarter of the commitlog volume up to 8 GiB. */
    uint64_t commitlog_total_space;
    size_t sstable_block_size;     /* 0 -> 16 KiB (uncompressed, before LZ4) */
    double bloom_filter_fp_chance; /* 0 -> 0.01 */
    /* Compaction (only with data_dir; see "compaction" below). */
    bool compaction_deferred;      /* no automatic compaction before
                                    * storage_compaction_release: a table's
                                    * strategy comes from the schema, loaded
                                    * after replay (else an LCS table could
                                    * get an STCS compaction at startup) */
    int concurrent_compactors;     /* worker threads; 0 -> Cassandra's default,
                                    * min(disks, cores) clamped to 2..8 (one
                                    * data directory here: 2) */
    int compaction_throughput_mib; /* MiB/s over all tasks; 0 -> 64; < 0 -> unthrottled
                                    * (cassandra.yaml's compaction_throughput: 0) */
    bool auto_snapshot;            /* truncate/drop hard-link the SSTables into
                                    * <table dir>/snapshots/<truncated|dropped>-<ms>/ first */
    /* Block cache (only with data_dir): decompressed Data.db blocks, shared
     * by every table's SSTables, least recently used out first (sstable.h
     * sst_bcache). Bytes; 0 -> a quarter of sib_memory_budget() up to 512
     * MiB (Cassandra's file_cache_size); < 0 -> no cache (every read
     * decompresses its blocks). Point reads on the loop use it; compaction
     * reads bypass it. A block is crc-checked before it is cached, and an
     * SSTable's blocks leave the cache when it leaves the read path. */
    int64_t block_cache_size;
    /* commitlog_ignore_replay_errors: replay skips damage before the tail
     * and missing segments (logging what is lost) instead of failing. */
    bool commitlog_ignore_replay_errors;
    st_disk_failure_policy disk_failure_policy;
    /* concurrent_reads (cassandra.yaml): threads of the read pool that runs
     * SSTable reads and scans off the loop (st_read_page); 0 -> 2. Only
     * with a loop: without one every read runs inline. */
    int concurrent_reads;
} storage_opts;

/* Opens the commitlog directory (creates a fresh segment for new writes; old
 * segments wait for storage_replay). On error *out is NULL. */
int storage_open(storage **out, const storage_opts *o, sib_err *err);
/* Syncs and closes the commitlog (pending `done` callbacks run with their
 * result first) and frees every table. */
void storage_close(storage *s);

typedef struct storage_replay_stats {
    uint64_t segments;     /* segments read */
    uint64_t entries;      /* commitlog entries applied */
    uint64_t mutations;    /* mutations applied */
    uint64_t bad_segments; /* segments whose tail was torn or corrupt */
    uint64_t bytes_skipped;/* bytes after the first bad entry, over all segments */
} storage_replay_stats;

/* Call once, right after storage_open and before any write (else SIB_EINVAL).
 * Replays every segment older than the one storage_open created, in segment id
 * order, into the memtables (tables are created on demand by id: no schema
 * needed). A torn or corrupt entry (bad length, bad CRC, truncated,
 * undecodable) ends replay of THAT segment. In the last segment holding
 * entries that is a torn tail: logged with segment name, offset and bytes
 * lost, and replay succeeds. Anywhere before it, and for a missing segment,
 * replay fails with SIB_ECORRUPT naming the segment, the offset and what is
 * lost, unless commitlog_ignore_replay_errors (then logged and skipped).
 * stats may be NULL. Also fails on I/O errors (unreadable segment). */
int storage_replay(storage *s, storage_replay_stats *stats, sib_err *err);

/* ---- tables ---------------------------------------------------------------- */

/* Get-or-create the store for a table id. NULL only on OOM. The pointer is
 * valid until storage_table_drop of that id or storage_close. */
st_table *storage_table(storage *s, const uint8_t id[16]);
/* NULL if the table has no store. */
st_table *storage_table_find(storage *s, const uint8_t id[16]);
/* Gives the table its directory name, <data_dir>/<ks>/<table>-<id hex>/
 * (with backups/ inside), as Cassandra lays tables out. Storage opens before
 * the schema loads and knows tables by id, so the node calls this for every
 * table once the schema knows it (and for a table created by DDL): a
 * directory still in the old layout, <data_dir>/<id hex>/, is renamed
 * (crash-safe: one atomic rename; a start after a crash at any point finds
 * it at one of the two names and goes on); a table without a directory gets
 * the named one. A no-op when already named, or without a data_dir. ks and
 * table must be \w+ of at most 48 characters (Cassandra's rule), else
 * SIB_EINVAL and nothing changes. Blocks on running flushes when it moves a
 * directory (start-up, once per table); a table that is compacting keeps
 * its old directory until the next start (logged). */
int st_table_set_name(st_table *t, const char *ks, const char *table, sib_err *err);
/* The table's directory (see st_table_set_name); NULL without a data_dir. */
const char *st_table_dir(const st_table *t);
void st_table_id(const st_table *t, uint8_t out[16]);

typedef void (*st_done_fn)(void *ctx, int rc, const sib_err *err);

/* Empties the table (truncate) or forgets it (drop). Both log a record so
 * replay does not resurrect earlier writes, and both wait for an fsync of that
 * record before calling `done` (in every sync mode). The memtables are
 * emptied at once and the SSTables leave the read path at once (their files
 * are deleted on the flush thread, TOC first; replaying the record deletes
 * any that a crash left behind); after drop the st_table pointer is invalid. Returns <0 (and does
 * not call done) if the record cannot be logged. done may be NULL. */
int storage_table_truncate(storage *s, const uint8_t id[16], st_done_fn done, void *ctx, sib_err *err);
int storage_table_drop(storage *s, const uint8_t id[16], st_done_fn done, void *ctx, sib_err *err);

/* ---- mutations ------------------------------------------------------------- */

/* Clustering bound: a byte-comparable clustering prefix. An inclusive bound
 * covers every key that has `key` as a prefix; an exclusive one covers none of
 * them. `unbounded` ignores key/incl (start = before everything, end = after). */
typedef struct st_bound {
    const uint8_t *key;
    size_t len;
    bool incl;
    bool unbounded;
} st_bound;
typedef struct st_slice { st_bound start, end; } st_slice;

/* Builder. All builder calls copy their arguments. They return 0, SIB_ENOMEM,
 * SIB_EINVAL (row-level call before st_mut_row/st_mut_static, key too long) or
 * SIB_ETOOBIG; a failure is sticky and makes storage_apply refuse the mutation.
 * ts are microseconds, ldt/expiry seconds since epoch, ttl seconds. */
st_mutation *st_mutation_create(const uint8_t table_id[16], const uint8_t *pk, size_t pklen);
void st_mutation_destroy(st_mutation *m);
/* Re-targets m at another partition, dropping its content but keeping memory. */
int st_mutation_reset(st_mutation *m, const uint8_t table_id[16], const uint8_t *pk, size_t pklen);
/* Serialized size (what it costs in the commitlog, minus framing). */
size_t st_mutation_size(const st_mutation *m);

/* The serialized form (the bytes the commitlog stores, mutation.c has the
 * format): a view valid until m changes; NULL after a builder error. This is
 * what travels between nodes, so there is one row format on disk and on the
 * wire. */
const uint8_t *st_mutation_bytes(const st_mutation *m, size_t *len);
/* The table a mutation changes (16 bytes, a view into m). */
const uint8_t *st_mutation_table_id(const st_mutation *m);
/* The partition key a mutation changes (*len bytes, a view into m, valid
 * until m changes); NULL after a builder error. */
const uint8_t *st_mutation_pk(const st_mutation *m, size_t *len);
/* Replaces m's content with the serialized mutation p[0..n) after checking
 * it completely: SIB_ECORRUPT (m then empty and refused by storage_apply)
 * for anything the decoder would not accept. */
int st_mutation_load(st_mutation *m, const uint8_t *p, size_t n);

int st_mut_partition_delete(st_mutation *m, int64_t ts, int32_t ldt);
int st_mut_range_delete(st_mutation *m, const st_bound *start, const st_bound *end, int64_t ts, int32_t ldt);
/* Selects the row the following row-level calls modify. */
int st_mut_row(st_mutation *m, const uint8_t *ck, size_t cklen);
/* Selects the partition's static row (no marker, no row deletion; only a
 * partition deletion shadows it, range tombstones do not). */
int st_mut_static(st_mutation *m);
/* Row liveness marker, as INSERT writes it: ttl > 0 -> expiry = write time
 * (s) + ttl; with ttl 0 expiry is ignored. */
int st_mut_row_marker(st_mutation *m, int64_t ts, int32_t ttl, int32_t expiry);
int st_mut_row_delete(st_mutation *m, int64_t ts, int32_t ldt);
/* Regular cell (ttl 0: expiry ignored) and cell tombstone (ldt = deletion
 * time, must not be ST_NO_DELETION_TIME). */
int st_mut_cell(st_mutation *m, uint32_t col, const uint8_t *val, size_t vlen, int64_t ts, int32_t ttl,
                int32_t expiry);
int st_mut_cell_tombstone(st_mutation *m, uint32_t col, int64_t ts, int32_t ldt);
/* Collection element cell (path = byte-comparable element key) and its tombstone. */
int st_mut_cell_path(st_mutation *m, uint32_t col, const uint8_t *path, size_t pathlen, const uint8_t *val,
                     size_t vlen, int64_t ts, int32_t ttl, int32_t expiry);
int st_mut_cell_path_tombstone(st_mutation *m, uint32_t col, const uint8_t *path, size_t pathlen, int64_t ts,
                               int32_t ldt);
/* Deletes a whole non-frozen collection column (shadows its cells with ts <= ts). */
int st_mut_complex_delete(st_mutation *m, uint32_t col, int64_t ts, int32_t ldt);

/* Applies n mutations (possibly of different tables) as ONE commitlog entry,
 * then to the memtables (visible to reads at once). Returns 0 when accepted:
 * `done` (may be NULL) is then called exactly once, on the loop thread, after
 * the entry is durable per the sync mode; in periodic mode (and without a
 * loop) that happens before storage_apply returns. Returns <0 and does not
 * call done when nothing was logged (invalid mutation, entry too big, write
 * failure, commitlog failed earlier; with a loop also SIB_EAGAIN while the
 * memtables waiting for flush are over their bound, see store.c): then
 * nothing was applied either.
 * With a loop (coalesced appends, see "Durability" above) the entry is
 * written and applied at the end of the loop iteration and `done` runs from
 * there, never inside storage_apply, in every mode; a failed write then
 * reaches `done` as SIB_EIO, with nothing applied.
 * The caller keeps ownership of the mutations (they may be destroyed or reset
 * as soon as storage_apply returns). */
int storage_apply(storage *s, st_mutation *const *muts, size_t n, st_done_fn done, void *ctx, sib_err *err);

enum { ST_APPLY_NO_COMMITLOG = 1 }; /* keyspace durable_writes = false */
int storage_apply_ex(storage *s, st_mutation *const *muts, size_t n, unsigned flags, st_done_fn done, void *ctx,
                     sib_err *err);

/* Freezes the memtable of one table (table_id) or of all (NULL) and flushes
 * it to an SSTable on the flush thread; done runs on the loop once every
 * flush queued so far is live (at once if none; before returning without a
 * loop). SIB_EINVAL without a data_dir. */
int storage_flush(storage *s, const uint8_t table_id[16], st_done_fn done, void *ctx, sib_err *err);

/* Asks for an fsync of everything written so far; done is called after it. */
int storage_sync(storage *s, st_done_fn done, void *ctx, sib_err *err);

/* ---- reads ----------------------------------------------------------------- */

typedef struct st_cell_view {
    uint32_t col;
    const uint8_t *path; /* NULL/0 for simple cells */
    size_t pathlen;
    const uint8_t *val;
    size_t vlen;
    int64_t ts;     /* WRITETIME */
    int32_t ttl;    /* 0 = none */
    int32_t expiry; /* ST_NO_DELETION_TIME when ttl == 0; TTL() = expiry - now_s */
} st_cell_view;

typedef struct st_row {
    const uint8_t *ck; /* clustering key; empty for the static row */
    size_t cklen;
    bool is_static;
    bool has_marker; /* a live liveness marker (INSERT) */
    int64_t marker_ts;
    int32_t marker_ttl;
    int32_t marker_expiry;
    const st_cell_view *cells; /* LIVE cells, by (col, path) */
    size_t ncells;
} st_row;

/* Reads the live rows of one partition. slices: sorted, non-overlapping, in
 * clustering order (nslices 0 = whole partition); reversed walks them
 * backwards. Never returns the static row (see st_iter_static). NULL on OOM
 * only; an unknown partition gives an empty iterator. now_s decides TTL
 * expiry. A row is valid until the next call. Do not write to the table
 * while an iterator over it is open: a write of a same-size value replaces
 * the memtable cell in place (memtable.c), and a row the iterator has
 * already looked ahead at could then pair the new value with the old
 * timestamp. Every caller destroys its iterator before it writes. */
st_iter *st_read(st_table *t, const uint8_t *pk, size_t pklen, const st_slice *slices, size_t nslices,
                 bool reversed, int32_t now_s);
/* Next live row; views valid until the next st_iter_next/st_iter_static/destroy. */
bool st_iter_next(st_iter *it, st_row *out);
/* The partition's live static row (false if it has no live static cell). */
bool st_iter_static(st_iter *it, st_row *out);
/* After st_iter_next returned false: 0, or the error that ended iteration
 * (SSTable sources may fail, e.g. SIB_ECORRUPT naming the Data.db file whose
 * block failed its checksum; the memtable never does). */
int st_iter_status(const st_iter *it, sib_err *err);
/* Tombstones the iterator has met so far: range tombstones of the partition,
 * row deletions, and deleted or expired cells of the rows it merged (what
 * tombstone_warn_threshold / tombstone_failure_threshold count). */
uint64_t st_iter_tombstones(const st_iter *it);
void st_iter_destroy(st_iter *it);
/* Instead of st_iter_next/st_iter_static: appends to m (created for the
 * iterator's table and partition) the partition's UNFILTERED state within
 * the iterator's slices, every source reconciled (LWW) but nothing
 * evaluated: the partition deletion, every range tombstone, the static row
 * (with_static) and each row with its marker, row deletion, collection
 * deletions and cells, deleted and expired ones included, each with its
 * timestamp, TTL and expiry/deletion time. Applying m elsewhere recreates
 * that state, so it is what a replica answers a read with and what read
 * repair sends (docs/architecture.md, "The cluster"). 0, or the error that
 * ended the read (m then incomplete). Use the iterator for nothing else
 * afterwards. */
int st_iter_unfiltered(st_iter *it, bool with_static, st_mutation *m, sib_err *err);

/* True iff the partition has a live row or a live static cell at now_s. */
bool st_partition_live(st_table *t, const uint8_t *pk, size_t pklen, int32_t now_s);

/* Scan position: partitions after (token, pk). pk == NULL means a pure token
 * bound: inclusive -> token >= tok, exclusive -> token > tok. */
typedef struct st_position {
    int64_t token;
    const uint8_t *pk;
    size_t pklen;
    bool inclusive;
} st_position;

/* Partitions of t in token order, from start (NULL = the beginning),
 * skipping partitions without live content at now_s. Writes between calls
 * are allowed (the scan re-seeks); NULL on OOM. */
st_scan *st_scan_open(st_table *t, const st_position *start, int32_t now_s);
/* *pk is valid until the next call or destroy. */
bool st_scan_next_partition(st_scan *sc, const uint8_t **pk, size_t *pklen, int64_t *token);
int st_scan_status(const st_scan *sc, sib_err *err);
void st_scan_destroy(st_scan *sc);

/* ---- reads off the loop (readpool.c) ----------------------------------------
 *
 * st_iter and st_scan above read on the calling (loop) thread, SSTables
 * included. st_read_page is the read the CQL executor uses: a BOUNDED piece
 * of one partition or of a token-ordered scan whose rows come back copied,
 * evaluated (live cells only) and owned by the page (a borrowing read that
 * memtables alone answer gets views into them instead: st_rreq.borrow).
 * A partition read that
 * only memory can answer (no SSTable's bloom filter admits its token, or
 * every block it needs is in the block cache) runs inline; anything else,
 * scans included, runs on the read pool (concurrent_reads threads),
 * and the result comes back to the loop through ev_async:
 *   - on the loop, at submit: the frozen memtables and the SSTables are
 *     pinned by reference (a flush, compaction or truncate that completes
 *     meanwhile cannot free them), and the part of the ACTIVE memtable the
 *     piece can need is copied (the loop keeps writing to it in place, so a
 *     worker never reads it);
 *   - on a worker: the copy, the frozen memtables and the SSTables are
 *     merged exactly as st_read merges them (pread, crc, LZ4, LWW);
 *   - on the loop: the pins go, then `cb` gets the page.
 * A piece stops after max_rows rows or max_parts partitions (0 -> 1024
 * each), so a scan is many small jobs and point reads queued behind it get
 * a worker in between. */

typedef struct st_rpage st_rpage; /* the rows of one piece; owned by the callback */

typedef struct st_rreq {
    const uint8_t *pk;           /* partition read: this partition; NULL: a scan */
    size_t pklen;
    bool has_token;              /* partition read: token is pk's (the caller had it: */
    int64_t token;               /* storage then does not hash the key again) */
    const st_position *start;    /* scan: from here (NULL: the beginning) */
    bool has_end;                /* scan: stop at the first partition past end_token */
    int64_t end_token;           /* (inclusive) */
    const st_slice *slices;      /* as st_read; ignored by static_only */
    size_t nslices;
    bool reversed;
    bool static_only;            /* SELECT DISTINCT: static row and liveness only */
    bool with_static;            /* return the static row (the table has static columns) */
    bool unfiltered;             /* partition read: the partition's unfiltered state in
                                  * the slices as one serialized mutation
                                  * (st_iter_unfiltered; st_rpage_mutation), no rows;
                                  * scan: each partition's that way
                                  * (st_rpage_part_mutation), dead ones included */
    bool borrow;                 /* partition read: the caller takes a page that comes
                                  * back at once (st_read_page returns 0) before it
                                  * writes to the table or returns to the loop, and
                                  * keeps pk valid until st_rpage_destroy; the page
                                  * may then point into the memtables and at pk
                                  * instead of holding copies (ignored otherwise) */
    int32_t now_s;
    size_t max_rows, max_parts;  /* bounds of the piece; 0 -> 1024 */
    size_t max_bytes;            /* unfiltered scan: stop once the mutations pass it (0: none) */
} st_rreq;

typedef void (*st_read_fn)(void *ctx, st_rpage *page);

/* Returns 0 with *page set when the read ran inline, 1 when it was queued
 * (cb(ctx, page) then runs later on the loop, exactly once, also at
 * shutdown: storage_read_drain), <0 when it could not start (out of
 * memory, the pool is stopping). Call on the loop thread. */
int st_read_page(st_table *t, const st_rreq *rq, st_rpage **page, st_read_fn cb, void *ctx, sib_err *err);
/* A hint that a partition read of this token follows soon: starts loading
 * where the active memtable's index keeps it into the CPU cache, so the
 * lookup does not wait for memory (the caller's work meanwhile hides the
 * latency). record: also the partition's record, found through the index
 * slot, so call it once without (early), then with (once the slot has had
 * time to arrive). Does nothing else; call on the loop thread. */
void st_prefetch(st_table *t, int64_t token, bool record);

typedef struct st_rpart {
    const uint8_t *pk;
    size_t pklen;
    int64_t token;
    bool live;        /* a live row (anywhere in it) or live static row: static_only only */
    bool complete;    /* false: it stopped at max_rows; more rows may follow */
    size_t nrows;
    uint64_t tombstones; /* as st_iter_tombstones */
} st_rpart;

size_t st_rpage_parts(const st_rpage *p);
void st_rpage_part(const st_rpage *p, size_t i, st_rpart *out);
/* Row j of partition i; views valid until st_rpage_destroy. */
void st_rpage_row(const st_rpage *p, size_t i, size_t j, st_row *out);
bool st_rpage_static(const st_rpage *p, size_t i, st_row *out);
/* A scan stopped at a bound: partitions after the one st_rpage_resume
 * names (the last it looked at, shown or not) may follow. */
bool st_rpage_more(const st_rpage *p);
/* *pk valid until st_rpage_destroy; false when !more. */
bool st_rpage_resume(const st_rpage *p, const uint8_t **pk, size_t *pklen, int64_t *token);
/* An unfiltered piece's serialized mutation (st_mutation_load reads it);
 * NULL for other pieces or after a failure. Valid until st_rpage_destroy. */
const uint8_t *st_rpage_mutation(const st_rpage *p, size_t *len);
/* An unfiltered scan's partition i as a serialized mutation (NULL for
 * other pieces). Valid until st_rpage_destroy. */
const uint8_t *st_rpage_part_mutation(const st_rpage *p, size_t i, size_t *len);
/* 0, or why the piece failed (rows before the failure are still there). */
int st_rpage_status(const st_rpage *p, sib_err *err);
/* On the loop thread, before storage_close (a point read's page goes back
 * to the pool's spares). */
void st_rpage_destroy(st_rpage *p);

/* Reconciling replicas' answers (a coordinator's read): their unfiltered
 * pieces (st_rpage_mutation's bytes) are added to a merge, a private
 * memtable, by the same LWW rules as writes; st_merge_read then reads it
 * like a table: evaluated rows for rq (a partition read, or a scan of the
 * merged partitions), or with rq->unfiltered the reconciled state as one
 * mutation of table id (what read repair sends).
 * The page is never NULL on success; any thread, one at a time. */
typedef struct st_merge st_merge;
st_merge *st_merge_create(void);
void st_merge_destroy(st_merge *mg);
/* SIB_ECORRUPT for bytes that are not a valid mutation (nothing applied). */
int st_merge_add(st_merge *mg, const uint8_t *p, size_t n, sib_err *err);
int st_merge_read(st_merge *mg, const uint8_t id[16], const st_rreq *rq, st_rpage **page, sib_err *err);

/* Shutdown: refuses new pieces, waits for the queued and running ones and
 * delivers them (their callbacks run before this returns). Call before the
 * callbacks' owners go away; storage_close does it too. */
void storage_read_drain(storage *s);

typedef struct st_read_stats {
    uint64_t inline_reads, pool_reads; /* pieces run on the loop / on the pool */
    uint64_t queued, running;          /* now */
} st_read_stats;
void storage_read_stats(storage *s, st_read_stats *out);

/* ---- compaction -------------------------------------------------------------
 *
 * Each table is compacted by its strategy (size-tiered, leveled or
 * time-window; compaction.h, docs/compaction.md) on worker threads
 * (concurrent_compactors) as flushes add SSTables and on a 5 s timer; inputs
 * are replaced by the outputs (one or more, at the level the strategy chose)
 * atomically on disk (a transaction log rolled forward or back at startup)
 * and in the read path
 * (completion on the loop via ev_async). Tombstones and expired cells are
 * purged after gc_grace_seconds when no SSTable outside the compaction nor
 * any memtable may hold older data for their partition. A truncate or drop
 * cancels the table's compactions: their outputs are discarded. Nothing is
 * compacted before storage_replay is over (a replayed write may be older
 * than a tombstone: it must be in a memtable for the purge check). */

/* Sets a table's compaction map (CQL `compaction`: 'class', 'min_threshold',
 * ...; n = 0 keeps the defaults) and gc_grace_seconds (< 0: keep the
 * current value; the default is 864000). SIB_ECONFIG (err says why) leaves
 * the options unchanged. The map replaces the previous one whole. STCS, LCS,
 * TWCS and UCS run as themselves; DTCS is accepted and runs as STCS. The change
 * applies at the table's next compaction check. Call on the loop thread
 * (executor: create/load/alter table). */
int st_table_set_options(st_table *t, const char *const *keys, const char *const *vals, size_t n,
                         int32_t gc_grace_seconds, sib_err *err);
/* Lets automatic compactions start (storage_opts.compaction_deferred) and
 * checks every table at once. Loop thread. */
void storage_compaction_release(storage *s);
/* Validates a compaction map as st_table_set_options would take it, with
 * nothing changed: 0, or SIB_ECONFIG with the reason (an option the class
 * does not understand, a bad value). For CREATE/ALTER before the schema
 * changes. */
int st_compaction_options_check(const char *const *keys, const char *const *vals, size_t n, sib_err *err);

/* Major compaction (nodetool compact) of one table (NULL: every table): all
 * its SSTables into one, once the compactions running on it are done. done
 * (may be NULL) runs on the loop when every table asked is done, with the
 * first error; without a loop this blocks and calls done before returning.
 * SIB_EINVAL without a data_dir. */
int storage_compact(storage *s, const uint8_t table_id[16], st_done_fn done, void *ctx, sib_err *err);
/* done runs once no compaction is queued or running and none is due (the
 * strategies are asked again first): "settled". Blocks without a loop. */
int storage_compaction_wait(storage *s, st_done_fn done, void *ctx, sib_err *err);
/* compaction_throughput at run time (nodetool setcompactionthroughput):
 * MiB/s, 0 = unthrottled. */
void storage_set_compaction_throughput(storage *s, int mib_per_s);

/* sstableexpiredblockers (Cassandra's tool of that name, here on the live
 * set): the SSTables whose data is all expired and past gc_grace_seconds
 * at now_s, grouped by what keeps them from being dropped whole: an
 * SSTable still holding live data whose oldest write is not newer than
 * their newest (it may hold data they shadow), or the memtables (data_path
 * NULL) for the same reason. Paths are valid until the table's SSTables
 * change; on the loop thread. */
typedef struct st_sst_brief {
    const char *data_path; /* NULL: the memtables */
    int64_t min_ts, max_ts;
    int32_t max_ldt;       /* ST_NO_DELETION_TIME: holds data that never expires */
    uint64_t disk_bytes;   /* Data.db */
} st_sst_brief;
typedef struct st_expiry_blocker {
    st_sst_brief blocker;
    size_t nblocked;
    st_sst_brief *blocked;
} st_expiry_blocker;
int st_table_expired_blockers(st_table *t, int64_t now_s, st_expiry_blocker **out, size_t *n, sib_err *err);
void st_expiry_blockers_free(st_expiry_blocker *b, size_t n);

typedef struct st_compaction_info {
    uint8_t table_id[16];
    uint64_t bytes_done, bytes_total; /* logical input bytes merged / to merge */
    size_t ninputs;
    bool major, tombstone; /* nodetool compact / single-SSTable tombstone compaction */
} st_compaction_info;
/* The running and queued compactions (up to max); returns how many exist. */
size_t storage_compaction_progress(storage *s, st_compaction_info *out, size_t max);

/* ---- stats ----------------------------------------------------------------- */

#define ST_SPR_BUCKETS 12
#define ST_MAX_LEVELS 9
typedef struct st_table_stats {
    size_t memtable_bytes; /* arena bytes held */
    uint64_t partitions, rows, cells;
    int64_t min_ts, max_ts; /* over everything written (ST_NO_TIMESTAMP if empty) */
    uint64_t sstables, sstable_bytes; /* live SSTables, their Data.db bytes */
    /* since the table was opened; bytes are all components. Write
     * amplification = (flush_bytes + compaction_bytes_written) / user bytes */
    uint64_t flushes, flush_bytes;
    uint64_t compactions, compaction_bytes_read, compaction_bytes_written;
    /* compaction_bytes_written by kind (the write amplification's parts):
     * cm_into[L] merges whose outputs went to level L (LCS; other
     * strategies count at level 0), their number in cm_into_n[L] and the
     * L0 SSTables they took in cm_into_l0[L]; single-SSTable tombstone
     * compactions apart; trivial moves (relinked at a new level, no byte
     * written) counted with the Data.db bytes they moved */
    uint64_t cm_into[ST_MAX_LEVELS], cm_into_n[ST_MAX_LEVELS], cm_into_l0[ST_MAX_LEVELS];
    uint64_t cm_tombstone_bytes, cm_moves, cm_moved_bytes;
    uint64_t tombstones_purged;
    uint64_t compactions_running; /* queued or running */
    /* damaged SSTables: set aside at start by disk_failure_policy
     * best_effort (quarantined) or ignore, and found corrupt by a
     * compaction at run time (suspect: never compacted again) */
    uint64_t sstables_damaged, sstables_suspect;
    /* SSTables each partition read opened (those whose key range, bloom
     * filter and index admitted the key): a histogram, bucket i counting
     * reads with at most st_spr_bound(i) SSTables (and more than the bound
     * before it); spr_sum / the reads counted is the mean */
    uint64_t spr[ST_SPR_BUCKETS], spr_sum;
    /* LeveledCompactionStrategy tables: SSTables in each level (as the
     * strategy sees them) and the fanout; leveled false otherwise.
     * UnifiedCompactionStrategy tables (unified): levels[] counts SSTables
     * per density level (the last slot takes the levels above it too) and
     * max_overlap[] the most SSTables of a level sharing one token (the
     * read amplification the level's threshold bounds). */
    bool leveled, unified;
    uint32_t fanout;
    uint64_t levels[ST_MAX_LEVELS];
    uint64_t max_overlap[ST_MAX_LEVELS];
} st_table_stats;
/* Upper bound of bucket i of st_table_stats.spr (UINT32_MAX for the last). */
uint32_t st_spr_bound(size_t i);
void st_table_get_stats(const st_table *t, st_table_stats *out);

typedef struct storage_stats {
    size_t tables;
    size_t memtable_bytes;
    uint64_t partitions, rows, cells;
    uint64_t cl_bytes_written; /* since open, framing included */
    uint64_t cl_entries;
    uint64_t cl_segments_created;
    uint64_t cl_segments_live; /* segment files present (kept until flush) */
    uint64_t cl_syncs;         /* fsyncs done by the sync thread */
    uint64_t cl_writebacks;    /* periodic mode: writebacks started between fsyncs */
    uint64_t cl_pending;       /* callbacks waiting for an fsync (or, with a loop, for the
                                * end of the loop iteration: queued entries) */
    uint64_t cl_writes;        /* write() calls appending entries: with a loop, one per
                                * iteration however many entries it queued */
    uint64_t sstables;         /* live SSTables over all tables */
    uint64_t sstable_bytes;    /* their Data.db bytes on disk */
    uint64_t flushes_pending;  /* frozen memtables not yet live as SSTables */
    /* without a loop: writes held back while flushes were behind, and the
     * time they waited in all (store.c, write_delay) */
    uint64_t writes_delayed, write_delay_ns;
    /* since open, over all tables (dropped ones included) */
    uint64_t flushes, flush_bytes;
    uint64_t compactions, compaction_bytes_read, compaction_bytes_written, compactions_failed;
    uint64_t compactions_running; /* queued or running */
    uint64_t compaction_bytes_done, compaction_bytes_total; /* progress of those */
    /* block cache (all zero without one): lookups of compressed blocks since
     * open, entries pushed out by the bound, what it holds now and its bound */
    uint64_t block_cache_hits, block_cache_misses, block_cache_evictions;
    uint64_t block_cache_entries, block_cache_bytes, block_cache_capacity;
} storage_stats;
void storage_get_stats(storage *s, storage_stats *out);
/* The options in force: those given to storage_open with its defaults
 * filled in (memtable_heap_space, block_cache_size, ...). */
const storage_opts *storage_get_opts(const storage *s);

#endif
