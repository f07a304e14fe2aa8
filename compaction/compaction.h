/* compaction.h: merging SSTables: row reconciliation (shared by storage's
 * read path, flush and compaction), tombstone/TTL purge, compaction
 * strategies (STCS, LCS, TWCS, UCS), the compaction task (N SSTables -> one or more) with its
 * transaction log, and the throughput throttle.
 *
 * The module sits between storage/ and sstable/: it knows SSTables and their
 * statistics, never memtables or the commitlog. Storage hands it what it
 * needs about the rest of a table (the SSTables outside a compaction and the
 * minimum timestamp of its memtables) for the purge check.
 *
 * Reconciliation is ONE implementation (cm_merge_rows, cm_row_compact): the
 * read path merges the rows of its sources with cm_merge_rows; flush and
 * compaction shadow and purge with cm_row_compact / cm_part_compact. The
 * rules are those of docs/compaction.md ("Reconciliation and purge"):
 *   - cells: Cells.resolveRegular (sst_cell_supersedes); markers: higher ts,
 *     then expiring over non-expiring, then the later expiry;
 *   - a deletion shadows everything with ts <= its ts; the active deletion of
 *     a row is the superseding one of partition deletion, covering range
 *     tombstones and the row deletion; a row deletion or range tombstone not
 *     superseding the partition deletion is dropped as shadowed;
 *   - an expiring cell with now >= expiry becomes a tombstone (ts, expiry -
 *     ttl); an expired marker stays a marker until purged;
 *   - a tombstone (any scope) is purged iff ldt < gc_before (= now -
 *     gc_grace_seconds) AND ts < max_purgeable, the minimum timestamp over
 *     the SSTables outside the compaction whose key range and bloom filter
 *     admit the partition and over the memtables (+inf when none).
 *
 * Transaction log (task.c) makes the replacement of inputs by outputs atomic
 * on disk; see the table there. Threads: tasks run on storage's compaction
 * workers; everything else here is pure or takes its own lock (throttle).
 */
#ifndef SIB_COMPACTION_H
#define SIB_COMPACTION_H

#include "common.h"
#include "sstable.h"

#include <pthread.h>

/* ---- row reconciliation and purge (merge.c) -------------------------------- */

/* Scratch owned by the caller; reused across calls, freed by cm_rowmerge_free.
 * Rows produced point into it (or into the input rows) until the next call. */
typedef struct cm_rowmerge {
    sst_cell *mc, *oc; /* merged cells, compacted cells */
    size_t capmc, capoc;
    sst_cdel *md, *od;
    size_t capmd, capod;
    sst_rt *rts;
    size_t caprts;
} cm_rowmerge;
void cm_rowmerge_free(cm_rowmerge *m);

/* Reconciles rows[0..n) (same clustering key) into *out: superseding marker,
 * row deletion, complex deletions, and per (column, path) the superseding
 * cell. Cells of out are sorted by (col, path). SIB_ENOMEM or 0. */
int cm_merge_rows(cm_rowmerge *m, const sst_row *const *rows, size_t n, sst_row *out);
/* Marker of a wins over marker of b (b without a marker always loses). */
bool cm_marker_supersedes(const sst_row *a, const sst_row *b);
int cm_cell_key_cmp(const sst_cell *a, const sst_cell *b);

/* Purge context of one partition. max_purgeable is computed on first need by
 * mp_fn (NULL: +inf), so partitions without gc-able tombstones cost nothing. */
typedef struct cm_purge {
    int32_t now;       /* expiring cells with now >= expiry become tombstones; INT32_MIN: never */
    int32_t gc_before; /* tombstones with ldt < gc_before are gc-able; INT32_MIN: nothing is */
    int64_t (*mp_fn)(void *arg);
    void *mp_arg;
    bool mp_known;
    int64_t mp;
    uint64_t purged; /* tombstones/expired cells dropped (stats) */
} cm_purge;
/* The nothing-is-purged context (flush). */
cm_purge cm_purge_none(void);
/* True iff a tombstone (ts, ldt) may be dropped. */
bool cm_purgeable(cm_purge *p, int64_t ts, int32_t ldt);

/* Partition level: the partition deletion and range tombstones as they are
 * written (shadowed range tombstones dropped, gc-able ones purged). *out_rts
 * points into m. Returns SIB_ENOMEM or 0. */
int cm_part_compact(cm_rowmerge *m, cm_purge *p, sst_del *pdel, const sst_rt *rts, size_t nrt, const sst_rt **out_rts,
                    size_t *out_nrt);
/* The deletion covering clustering key ck: the superseding one of pdel and
 * the range tombstones containing ck (rts as given, purged or not). */
sst_del cm_active_deletion(sst_del pdel, const sst_rt *rts, size_t nrt, const uint8_t *ck, size_t cklen,
                           bool is_static);
/* Row level: drops what `active` (and the row's own deletions) shadow,
 * turns expired cells into tombstones and purges gc-able tombstones.
 * Returns 1 when *out has anything left to write, 0 when the row vanishes,
 * SIB_ENOMEM. out's arrays live in m until the next cm_row_compact. */
int cm_row_compact(cm_rowmerge *m, cm_purge *p, const sst_row *in, sst_del active, sst_row *out);

/* ---- options and strategies (stcs.c) -------------------------------------- */

typedef enum { CM_STCS = 0, CM_LCS = 1, CM_TWCS = 2, CM_UCS = 3 } cm_kind;

#define CM_MAX_LEVELS 9 /* LCS levels L0..L8 (Cassandra's MAX_LEVEL_COUNT) */
#define CM_UCS_MAX_W 16 /* scaling_parameters entries kept (the last repeats upwards) */
#define CM_UCS_LEVELS 32 /* UCS density levels considered (the top one is open-ended) */

/* A table's compaction options (CQL `compaction` map), Cassandra's names
 * and defaults. Strategies not built (DTCS) run as STCS (logged by the caller). */
typedef struct cm_options {
    cm_kind kind;
    bool enabled;                 /* 'enabled' (true) */
    uint32_t min_threshold;       /* 4 */
    uint32_t max_threshold;       /* 32 */
    double bucket_low, bucket_high; /* 0.5, 1.5 */
    uint64_t min_sstable_size;    /* 50 MiB */
    double tombstone_threshold;   /* 0.2 */
    int64_t tombstone_compaction_interval; /* 86400 s */
    bool unchecked_tombstone_compaction;   /* false */
    uint64_t sstable_size;        /* LCS 'sstable_size_in_mb' (160 MiB): a
                                   * compaction's outputs are split at this
                                   * size; 0 (STCS) = one output */
    uint32_t fanout_size;         /* LCS: each level holds this many times the one below (10) */
    uint32_t l0_compaction_trigger; /* LCS, Sibyl's own: L0 SSTables an L0 compaction waits for (1:
                                     * Cassandra's rule alone, at least 2 SSTables with L1's) */
    /* TWCS */
    uint32_t window_unit_s;       /* compaction_window_unit: 60, 3600, 86400 (DAYS) */
    uint32_t window_size;         /* compaction_window_size (1) */
    int64_t ts_per_s;             /* timestamp_resolution: units a second (MICROSECONDS: 1e6) */
    int64_t expired_check_s;      /* expired_sstable_check_frequency_seconds (600) */
    bool tombstone_explicit;      /* tombstone_threshold or _interval given (TWCS
                                   * runs tombstone compactions only then) */
    /* UCS (Cassandra 5.0's UnifiedCompactionStrategy; docs/compaction.md) */
    int32_t ucs_w[CM_UCS_MAX_W];  /* scaling_parameters as W per level ("T4": 2) */
    uint32_t ucs_nw;              /* entries in ucs_w (>= 1 for UCS) */
    uint64_t target_sstable_size; /* 1 GiB, at least 1 MiB */
    uint32_t base_shard_count;    /* 4 */
    uint64_t ucs_min_sstable_size; /* min_sstable_size under UCS: 100 MiB; 0 = off */
    double sstable_growth;        /* lambda, 0..1 (0.333) */
    uint32_t max_sstables_to_compact; /* 0 = no limit */
    uint64_t flush_size_override; /* 0 = the observed flush size */
    int32_t gc_grace_seconds;     /* 864000 (table option, not in the map) */
} cm_options;

void cm_options_default(cm_options *o);
/* Parses a compaction map ('class', 'min_threshold', ...) over *o; the
 * strategy's own options (LCS's, TWCS's) start from their defaults, as the
 * class decides what they mean. Returns SIB_ECONFIG with the reason (bad
 * number, bucket_high <= bucket_low, min_threshold < 2 or > max_threshold,
 * an option the class does not understand, unknown class); *o is untouched
 * then. *unknown_class is set when the class is valid Cassandra but not
 * built here (UCS, DTCS: run as STCS). */
int cm_options_parse(cm_options *o, const char *const *keys, const char *const *vals, size_t n, bool *unknown_class,
                     sib_err *err);

/* What a strategy sees of one live SSTable. sst is only read by the
 * tombstone checks (its Statistics); the rest is copied from it by the
 * caller (cm_sst_of), or set directly in tests. */
typedef struct cm_sst {
    sstable *sst;
    uint64_t size;      /* Data.db bytes on disk */
    int64_t created_s;  /* Data.db creation time */
    bool compacting;    /* in a running compaction: not a candidate */
    uint32_t level;     /* LCS level from Statistics.db */
    int64_t first_token, last_token; /* key range */
    int64_t min_ts, max_ts; /* oldest / newest write timestamp (SST_NO_TS: empty) */
    int32_t max_ldt;    /* latest deletion or expiry time; SST_NO_LDT when it
                         * holds live data that never expires */
} cm_sst;
/* Fills a cm_sst from an open SSTable. */
cm_sst cm_sst_of(sstable *s, bool compacting);

/* STCS buckets (exposed for tests): sizes[] sorted ascending on input is not
 * required; bucket_of[i] receives the bucket index of sizes[i]; returns the
 * number of buckets. Cassandra's getBuckets. */
size_t cm_stcs_buckets(const cm_options *o, const uint64_t *sizes, size_t n, size_t *bucket_of);

/* Picks the next compaction of one table: indexes into ssts written to
 * pick (capacity n), *npick. *tombstone set when it is a single-SSTable
 * tombstone compaction. 0 = nothing to do. now_s and gc_before decide the
 * tombstone rules; mem_min_ts is the memtables' minimum timestamp. */
size_t cm_pick(const cm_options *o, const cm_sst *ssts, size_t n, int64_t now_s, int32_t gc_before, size_t *pick,
               bool *tombstone);
/* Cassandra's worthDroppingTombstones for ssts[i] against the others. */
bool cm_worth_dropping_tombstones(const cm_options *o, const cm_sst *ssts, size_t n, size_t i, int64_t now_s,
                                  int32_t gc_before);

/* ---- strategies (strategy.c, lcs.c) -------------------------------------------
 *
 * A table's strategy state (cm_strategy) lives as long as the table and is
 * kept across option changes, so ALTER TABLE switches a live table between
 * strategies: the state of the old one is simply not consulted. Hooks: the
 * owner asks cm_strategy_pick for the next compaction (after flushes, after
 * completions and on its periodic timer) and reports each completion with
 * cm_strategy_compacted. LCS keeps its round-robin position per level there;
 * the levels themselves are in each SSTable's Statistics.db (cm_sst.level),
 * so the manifest is rebuilt from the SSTables at every pick and needs no
 * file of its own. */

typedef struct cm_strategy cm_strategy;
/* What a pick decided. */
typedef struct cm_choice {
    size_t n;                  /* SSTables to merge (their indexes are pick[0..n)) */
    size_t nexpired;           /* fully expired SSTables dropped whole, unread
                                * (pick[n..n + nexpired)) */
    bool tombstone;            /* a single-SSTable tombstone compaction */
    uint32_t level;            /* level of the outputs */
    uint32_t min_input_level;  /* lowest level among the inputs (LCS round robin) */
    uint64_t max_output_bytes; /* outputs split at this size; 0 = one output */
    uint32_t shards;           /* UCS: outputs split at the boundaries of this
                                * many equal shards of the token space; 0 = none */
} cm_choice;

int cm_strategy_create(cm_strategy **out, sib_err *err);
void cm_strategy_destroy(cm_strategy *s);
/* The next compaction of a table under options o: indexes into ssts in
 * pick[] (capacity n), the rest in *out (out->n + out->nexpired = 0:
 * nothing to do). mem_min_ts: the memtables' oldest timestamp (INT64_MAX if
 * empty), which blocks expired SSTables newer than it from being dropped.
 * Called after flushes, completions and on the owner's periodic timer,
 * which is TWCS's expiry tick (expired_sstable_check_frequency_seconds). */
void cm_strategy_pick(cm_strategy *s, const cm_options *o, const cm_sst *ssts, size_t n, int64_t now_s,
                      int32_t gc_before, int64_t mem_min_ts, size_t *pick, cm_choice *out);
/* A major compaction of all of ssts: the outputs' level and size. */
void cm_strategy_major(const cm_options *o, const cm_sst *ssts, size_t n, cm_choice *out);
/* Completion hook: the compaction chosen as c finished; last_token is the
 * largest last token among its outputs (none: ignored). */
void cm_strategy_compacted(cm_strategy *s, const cm_choice *c, bool any_output, int64_t last_token);
/* Flush hook: a flush of the table wrote `bytes`; UCS's base size m
 * follows their exponential moving average (Cassandra's, weight 0.0046 a
 * flush) and moves to it, in whole MiB, when they differ by over half. */
void cm_strategy_flushed(cm_strategy *s, uint64_t bytes);
/* LCS level of each SSTable as the strategy sees it: the stored level,
 * except that an SSTable overlapping an earlier one of its level (by first
 * token) counts as L0, as Cassandra sends it back there. lvl has n slots. */
void cm_lcs_levels(const cm_sst *ssts, size_t n, uint32_t *lvl);
/* LeveledManifest.getCompactionCandidates, as docs/compaction.md states it. */
void cm_lcs_pick(cm_strategy *s, const cm_options *o, const cm_sst *ssts, size_t n, int64_t now_s,
                 int32_t gc_before, size_t *pick, cm_choice *out);
/* Cassandra's getFullyExpiredSSTables: of the candidates (cand[i]), those
 * whose every cell is gc-able (max_ldt < gc_before) and whose newest write
 * is older than the oldest write that may still be live anywhere it could
 * shadow: the other candidates not expired, the SSTables overlapping a
 * candidate's key range that still hold live data, and the memtables
 * (mem_min_ts). Marks expired[i]; returns how many. */
size_t cm_fully_expired(const cm_sst *ssts, size_t n, const bool *cand, int32_t gc_before, int64_t mem_min_ts,
                        bool *expired);
/* The two halves of that rule, for sstableexpiredblockers: s holds data
 * and all of it is gc-able; s holds data that is not (yet) gc-able. A live
 * SSTable blocks the drop of a gc-able one when its oldest write is not
 * newer than the gc-able one's newest (blocker->min_ts <= expired->max_ts). */
bool cm_sst_gcable(const cm_sst *s, int32_t gc_before);
bool cm_sst_live(const cm_sst *s, int32_t gc_before);

/* TimeWindowCompactionStrategy.getNextBackgroundSSTables, as
 * docs/compaction.md states it (twcs.c). */
void cm_twcs_pick(cm_strategy *s, const cm_options *o, const cm_sst *ssts, size_t n, int64_t now_s,
                  int32_t gc_before, int64_t mem_min_ts, size_t *pick, cm_choice *out);
/* The lower bound (seconds since the epoch) of the time window holding
 * write timestamp ts (in o->ts_per_s units), windows aligned to the epoch. */
int64_t cm_twcs_window(const cm_options *o, int64_t ts);
/* ---- UCS (ucs.c) ------------------------------------------------------------- */

/* Fan factor f and threshold t of W: W < 0 (Lf): f = 2 - W, t = 2; W > 0
 * (Tf): f = t = 2 + W; W = 0 (N): f = t = 2. */
void cm_ucs_fan(int32_t w, uint32_t *f, uint32_t *t);
/* Parses scaling_parameters ("T4", "L10, T4", "N", "-8"): into w[] (up to
 * CM_UCS_MAX_W), *nw. SIB_ECONFIG with the reason. */
int cm_ucs_parse_scaling(const char *v, int32_t *w, uint32_t *nw, sib_err *err);
/* Density: bytes over the fraction of the token space [first, last] covers
 * (a span under 1e-6 of it counts as the whole space: a handful of
 * partitions says nothing about a density). */
double cm_ucs_density(uint64_t bytes, int64_t first_token, int64_t last_token);
/* Level of density d for flush size m: with b = m (1 - 0.9/f0), 0 below
 * b f0, n in [b f0..f(n-1), b f0..fn), capped at CM_UCS_LEVELS - 1. */
uint32_t cm_ucs_level(const cm_options *o, double m, double d);
/* Base size m the strategy uses now: flush_size_override, else the flush
 * size in use (cm_strategy_flushed: the moving average of the flushes,
 * moved only when it strays by over half), else the smallest density among
 * ssts; at least 1 MiB, rounded up to whole MiB. */
double cm_ucs_base(const cm_strategy *s, const cm_options *o, const cm_sst *ssts, size_t n);
/* Shard count S for output density d (docs/compaction.md, "Unified"). */
uint32_t cm_ucs_shards(const cm_options *o, double d);
/* Shard (0 .. shards-1) of a token when the space is cut in `shards`
 * equal parts; exact, so a boundary for S is one for every multiple of S. */
uint32_t cm_ucs_shard_of(int64_t token, uint32_t shards);
/* Density level of each SSTable (lvl, n slots) as the next pick would see
 * it, and per level the largest overlap set (overlap, CM_UCS_LEVELS slots),
 * compacting SSTables included: what a read meets (tablestats). */
void cm_ucs_levels(const cm_strategy *s, const cm_options *o, const cm_sst *ssts, size_t n, uint32_t *lvl,
                   size_t *overlap);
/* UnifiedCompactionStrategy.getNextBackgroundTasks as docs/compaction.md
 * states it: levels by density, overlap sets per level, the bucket of the
 * largest overlap reaching its level's threshold (lowest level on a tie),
 * plus the fully expired SSTables once per expired_sstable_check_frequency. */
void cm_ucs_pick(cm_strategy *s, const cm_options *o, const cm_sst *ssts, size_t n, int64_t now_s, int32_t gc_before,
                 int64_t mem_min_ts, size_t *pick, cm_choice *out);

/* Bytes a level may hold: 4 x sstable_size for L0, fanout^L x sstable_size
 * above (saturating). */
uint64_t cm_lcs_max_bytes(const cm_options *o, uint32_t level);

/* ---- throttle (task.c) ---------------------------------------------------- */

/* compaction_throughput shared by every task of a node: a token bucket over
 * bytes read. rate 0 = unthrottled. */
typedef struct cm_throttle {
    pthread_mutex_t mu;
    double bytes_per_s;
    uint64_t next_ns; /* when the bucket is empty again */
} cm_throttle;
void cm_throttle_init(cm_throttle *t, double mib_per_s);
void cm_throttle_set(cm_throttle *t, double mib_per_s);
void cm_throttle_free(cm_throttle *t);
/* Sleeps (worker thread) as needed to account for n bytes. */
void cm_throttle_take(cm_throttle *t, uint64_t n);

/* ---- the task (task.c) ---------------------------------------------------- */

typedef struct cm_task {
    /* in */
    const char *dir;
    sstable *const *inputs; /* referenced by the caller for the task's life */
    size_t ninputs;
    sstable *const *drop;    /* fully expired SSTables removed with the inputs, never read */
    size_t ndrop;
    sstable *const *outside; /* live SSTables not in the compaction (purge check) */
    size_t noutside;
    int64_t mem_min_ts;      /* memtables' minimum timestamp (INT64_MAX if empty) */
    /* Generations reserved for the outputs: out_gen .. out_gen + ngens - 1
     * (ngens 0 counts as 1). out_gen also names the transaction log. When
     * they run out, the last output takes the rest of the data. */
    uint64_t out_gen;
    uint32_t ngens;
    /* An output is closed once its Data.db reaches this many bytes (at a
     * partition boundary) and the next one begins; 0 = a single output. */
    uint64_t max_output_bytes;
    /* UCS: an output also ends where the next partition's token falls in
     * another of `shards` equal shards of the token space (0 = never) */
    uint32_t shards;
    /* LCS's move up a level (nothing dropped; inputs that overlap neither
     * each other nor the level they go to, in token order, at most ngens):
     * input i's files are linked under out_gen + i with wo.level in its
     * Statistics.db (sst_link_relevel), nothing read or rewritten */
    bool relevel;
    sst_writer_opts wo;      /* wo.level is every output's level */
    int32_t now, gc_before;
    cm_throttle *throttle;   /* may be NULL */
    sib_log *log;
    /* control: set by the owner under mu, read by the worker */
    pthread_mutex_t *mu;     /* may be NULL: then cancelled is read unlocked */
    const bool *cancelled;
    /* progress (atomic, read by the owner at any time) */
    uint64_t bytes_total, bytes_done;
    /* out */
    sstable **outputs;       /* opened outputs in token order, malloc'd; the
                              * caller owns the array and one reference on
                              * each (none when everything was purged) */
    size_t noutputs;
    uint64_t bytes_read, bytes_written, partitions_in, partitions_out, purged;
    sib_err err;
} cm_task;

/* Runs the compaction: the txn log (REMOVE inputs and drops), then the merge of the
 * inputs partition by partition into one or more outputs (each announced by
 * an ADD record, made durable, before its first byte is written), commits
 * the log, deletes the inputs' files and the log. Returns 0 (t->outputs
 * opened, possibly none when nothing survived), SIB_EAGAIN when cancelled
 * before commit (nothing changed on disk), or an error (SIB_EIO,
 * SIB_ECORRUPT naming the file...) with every output removed and the inputs
 * intact. On 0 the inputs' files are gone (readers keep their mappings).
 * Failpoints (test builds): compaction.after_txn_begin,
 * compaction.after_output_<n> (n = 1.. as each output is complete; a
 * relevel's outputs too),
 * compaction.after_outputs_before_txn_commit,
 * compaction.after_commit_before_input_delete,
 * compaction.after_input_delete_before_log_delete. */
int cm_task_run(cm_task *t);
/* Frees what cm_task_run left in t (its outputs' references and array). */
void cm_task_free_outputs(cm_task *t);

/* ---- transaction log (task.c) ---------------------------------------------- */

typedef struct cm_txn cm_txn;
/* Creates <dir>/<txn_gen>-txn.log with REMOVE inputs, fsynced (file and
 * directory). */
int cm_txn_begin(cm_txn **out, const char *dir, uint64_t txn_gen, const uint64_t *inputs, size_t n, sib_err *err);
/* Appends ADD gen and fsyncs: call before the first byte of output gen is
 * written, so recovery knows every output that may exist. */
int cm_txn_add(cm_txn *x, uint64_t gen, sib_err *err);
/* Appends COMMIT and fsyncs: from here the outputs are the live ones. */
int cm_txn_commit(cm_txn *x, sib_err *err);
/* After commit: removes the inputs' files, then the log. Before commit (or
 * on abort): removes every added output's files, then the log. Frees x. */
int cm_txn_finish(cm_txn *x, sib_err *err);
/* Startup, before the directory is scanned for SSTables: rolls every
 * unfinished log forward (committed: inputs removed) or back (all of its
 * outputs removed) and deletes it. *n_out counts logs handled (may be
 * NULL). A log that cannot be read is an error: nothing is guessed. */
int cm_txn_recover(const char *dir, sib_log *log, size_t *n_out, sib_err *err);

#endif
