/* bench_amp: write, read and space amplification of every compaction
 * strategy, Sibyl's and RocksDB's, on the same three workloads in one run.
 *
 *   bench_amp [N] [DIR] [CONFIGS] [WORKLOADS]
 *     N          keys (default 1,000,000; 10,000,000 is the full size)
 *     DIR        scratch directory (default /tmp/bench_amp.<pid>), emptied
 *     CONFIGS    comma-separated subset of: stcs, lcs, lcs-matched, twcs,
 *                ucs-t4, ucs-l10, ucs-t4-l10 (Cassandra's 'T4, L10'),
 *                rocksdb-leveled, rocksdb-leveled-stock,
 *                rocksdb-universal (default: all)
 *     WORKLOADS  comma-separated subset of: fill, overwrite, timeseries
 *                (default: all)
 *   SIBYL_AMP_TS_SECONDS overrides the time-series run length (seconds);
 *   SIBYL_AMP_LOG=1 prints Sibyl's log (flushes, compactions) on stderr;
 *   SIBYL_AMP_PUTS_S=R paces fill and overwrite to R puts/s at most (how
 *   write amplification depends on the speed of writes against compactions).
 *
 * Records are SIBYL-ENGINE-V1's (bench/engine_workload.h): 16-byte keys,
 * 100-byte incompressible values, 116 user bytes a put.
 *
 * Sizes scale with N so that a run at 1M keys has the shape of one at 10M
 * (the number of memtables, SSTables and levels): with s = N / 10M, the
 * memtable is 64 MiB x s, LCS's default SSTable 160 MiB x s, the matched
 * one 64 MiB x s, and so on (every size is printed in the CONFIG lines).
 *
 * Workloads, each on a fresh database in its own child process (so peak RSS
 * is the run's own):
 *   fill        N puts of ids 0..N-1 in SIBYL-ENGINE-V1's fill order, flush,
 *               settle; then R = min(N, 200k) point reads of present keys.
 *   overwrite   N puts of ids drawn uniformly from K keys, K chosen so the
 *               K records take a quarter of the memtable (so the memtable
 *               absorbs most overwrites); flush, settle; R reads of the K.
 *   timeseries  N puts paced over D seconds (D = N / 50,000, at least 4;
 *               SIBYL_AMP_TS_SECONDS), each with a TTL of D / 5 seconds
 *               (at least 1) and gc_grace_seconds 0, write timestamps
 *               advancing 20 one-minute windows over the run (so TWCS sees
 *               20 windows); keys in fill order (random tokens, random
 *               RocksDB keys). Every 4th put is followed by a read of a
 *               record among the latest 5% written. RocksDB runs through
 *               its TTL database (rocksdb_open_with_ttl).
 *
 * Figures:
 *   write amp   (flush + compaction bytes written) / (puts x 116); WAL and
 *               commitlog excluded (RESULT's flush_amp: the flushes' part);
 *   read amp    SSTables a point read touched, p50/p99: on Sibyl the
 *               tablestats histogram (an SSTable counted once its key
 *               range, bloom filter and index admit the key and its
 *               Data.db is read); on RocksDB the perf context's
 *               bloom_sst_hit_count (files past the key-range and bloom
 *               checks, each then reads a data block), per get;
 *   space amp   SSTable bytes on disk (every component; RocksDB: *.sst) /
 *               live bytes (116 x records live now), sampled every 100 ms
 *               by a thread: the peak while writing and settling
 *               (time-series: while writing) and the final value (after
 *               settling; time-series: at the end of the writes, as its
 *               records go on expiring);
 *   ops/s       puts over the write loop's wall time; reads likewise;
 *   peak RSS    the child's ru_maxrss.
 */
#define _GNU_SOURCE
#include "engine_workload.h"

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_sibyl.h"

#define REC_BYTES ((uint64_t)(SIBYL_KEY_LEN + SIBYL_VAL_LEN))
#define SPR_MAX 64 /* read-amplification histogram: 0..63 SSTables, the last takes more */

enum { W_FILL, W_OVER, W_TS, W_N };
static const char *const w_names[W_N] = {"fill", "overwrite", "timeseries"};

enum { C_STCS, C_LCS, C_LCSM, C_TWCS, C_UCS_T4, C_UCS_L10, C_UCS_T4L10, C_RDB_LEV, C_RDB_LEV_STOCK, C_RDB_UNI, C_N };
static const char *const c_names[C_N] = {"stcs",   "lcs",     "lcs-matched",     "twcs",
                                         "ucs-t4", "ucs-l10", "ucs-t4-l10", "rocksdb-leveled", "rocksdb-leveled-stock",
                                         "rocksdb-universal"};
#define C_IS_ROCKSDB(c) ((c) >= C_RDB_LEV)

/* The sizes of one run (scaled from the full size of 10M keys). */
typedef struct amp_sizes {
    uint64_t n, reads, hot_keys;
    uint64_t memtable, cache;
    unsigned lcs_mb, lcs_matched_mb, stcs_min, ucs_target, ucs_min;
    unsigned ts_secs, ttl;
    uint64_t fill_rate; /* fill and overwrite puts/s at most (0: as fast as they go) */
} amp_sizes;

typedef struct amp_result {
    bool ran, failed;
    double write_ops_s, read_ops_s, settle_s;
    uint64_t puts, user_bytes, written_bytes, flush_bytes, reads, read_misses;
    uint64_t spr[SPR_MAX];
    uint64_t peak_disk, final_disk, final_live;
    double peak_space_amp;
    uint64_t peak_rss_kb;
    char shape[160]; /* SSTables per level at the end */
    char kinds[4096]; /* where the compaction bytes went (Sibyl) or RocksDB's compaction stats */
} amp_result;

/* An engine under test. put: ttl 0 = none. get: *touched = SSTables the
 * read touched (RocksDB; Sibyl counts in its histogram, touched = -1). */
typedef struct engine {
    void *h;
    int (*put)(void *h, const char *k, const char *v, int64_t ts_us, int32_t ttl, int32_t expiry);
    int (*get)(void *h, const char *k, int32_t now_s, bool *found, int *touched);
    int (*settle)(void *h);
    uint64_t (*disk)(void *h);                             /* SSTable bytes now (any thread) */
    void (*finish)(void *h, amp_result *r); /* written bytes, spr, shape */
    void (*spr_mark)(void *h);                             /* start of the counted reads */
} engine;

/* ---- the disk sampler: a thread watching SSTable bytes against live bytes ---- */

typedef struct sampler {
    engine *e;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, ratio_on;
    uint64_t peak_disk;
    double peak_ratio;
    uint64_t (*live)(void *arg); /* live bytes now */
    void *live_arg;
} sampler;

static void sample_once(sampler *s)
{
    uint64_t d = s->e->disk(s->e->h);
    pthread_mutex_lock(&s->mu);
    bool on = s->ratio_on;
    pthread_mutex_unlock(&s->mu);
    uint64_t live = s->live(s->live_arg);
    pthread_mutex_lock(&s->mu);
    if (d > s->peak_disk) s->peak_disk = d;
    if (on && live && (double)d / (double)live > s->peak_ratio) s->peak_ratio = (double)d / (double)live;
    pthread_mutex_unlock(&s->mu);
}

static void *sampler_main(void *arg)
{
    sampler *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        pthread_mutex_unlock(&s->mu);
        sample_once(s);
        pthread_mutex_lock(&s->mu);
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 100 * 1000000L;
        if (t.tv_nsec >= 1000000000L) t.tv_sec++, t.tv_nsec -= 1000000000L;
        if (!s->stop) pthread_cond_timedwait(&s->cv, &s->mu, &t);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Ends (on = false) the span whose samples count towards the peak space
 * amplification, with a last sample of it (a short phase may fall between
 * two of the thread's). */
static void sampler_ratio(sampler *s, bool on)
{
    if (!on) sample_once(s);
    pthread_mutex_lock(&s->mu);
    s->ratio_on = on;
    pthread_mutex_unlock(&s->mu);
}

/* ---- live bytes of each workload ---- */

typedef struct live_state {
    volatile uint64_t live_records; /* fill, overwrite: distinct keys written (writer only) */
    const int32_t *expiry;          /* timeseries: expiry of record i (non-decreasing) */
    volatile uint64_t written;
} live_state;

static uint64_t live_counted(void *arg)
{
    live_state *l = arg;
    return __atomic_load_n(&l->live_records, __ATOMIC_RELAXED) * REC_BYTES;
}

/* Records written and not yet expired (the expiries are non-decreasing). */
static uint64_t live_ttl(void *arg)
{
    live_state *l = arg;
    uint64_t w = __atomic_load_n(&l->written, __ATOMIC_ACQUIRE), lo = 0, hi = w;
    int32_t now = (int32_t)time(NULL);
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (l->expiry[mid] <= now) lo = mid + 1;
        else hi = mid;
    }
    return (w - lo) * REC_BYTES;
}

/* ---- the workloads ---- */

static void spr_add(amp_result *r, int touched)
{
    r->spr[touched < 0 ? 0 : touched >= SPR_MAX ? SPR_MAX - 1 : touched]++;
}

static int read_phase(engine *e, uint64_t keys, const amp_sizes *z, amp_result *r)
{
    char k[SIBYL_KEY_LEN];
    uint64_t s = SIBYL_SEED_READ;
    e->spr_mark(e->h);
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < z->reads; i++) {
        sibyl_key(sm64(&s) % keys, 0, k);
        bool found;
        int touched = -1;
        if (e->get(e->h, k, (int32_t)time(NULL), &found, &touched)) return -1;
        if (touched >= 0) spr_add(r, touched);
        if (!found) r->read_misses++;
    }
    r->reads = z->reads;
    r->read_ops_s = (double)z->reads / ((double)(now_ns() - t0) / 1e9);
    return 0;
}

static int settle(engine *e, amp_result *r)
{
    uint64_t t = now_ns();
    int rc = e->settle(e->h);
    r->settle_s = (double)(now_ns() - t) / 1e9;
    return rc;
}

/* fill (perm: every id once, in fill order) or overwrite (perm NULL: ids
 * drawn uniformly from the `keys` hot ones), then settle and read. */
static int wl_writes(engine *e, const amp_sizes *z, amp_result *r, sampler *sm, live_state *l, const uint64_t *perm,
                     uint64_t keys)
{
    char k[SIBYL_KEY_LEN], v[SIBYL_VAL_LEN];
    uint8_t *seen = calloc(keys, 1);
    if (!seen) return -1;
    uint64_t s = SIBYL_SEED_OVER, distinct = 0;
    int64_t ts = sib_now_us();
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < z->n; i++) {
        if (z->fill_rate && i % 1000 == 0) { /* paced: sleep while ahead of i / rate */
            uint64_t due = t0 + (uint64_t)((double)i * 1e9 / (double)z->fill_rate), t = now_ns();
            if (due > t) usleep((useconds_t)((due - t) / 1000));
        }
        uint64_t id = perm ? perm[i] : sm64(&s) % keys;
        sibyl_key(id, 0, k);
        sibyl_value(id, perm ? 0 : i & 1, v);
        if (e->put(e->h, k, v, ts++, 0, 0)) {
            free(seen);
            return -1;
        }
        if (!seen[id]) seen[id] = 1, __atomic_store_n(&l->live_records, ++distinct, __ATOMIC_RELAXED);
    }
    r->write_ops_s = (double)z->n / ((double)(now_ns() - t0) / 1e9);
    free(seen);
    r->puts = z->n;
    if (settle(e, r)) return -1;
    sampler_ratio(sm, false);
    return read_phase(e, keys, z, r);
}

static int wl_timeseries(engine *e, const amp_sizes *z, amp_result *r, sampler *sm, live_state *l, int32_t *expiry)
{
    uint64_t *perm = sibyl_perm(z->n);
    char k[SIBYL_KEY_LEN], v[SIBYL_VAL_LEN];
    uint64_t s = SIBYL_SEED_READ, span_us = 20ull * 60 * 1000000; /* 20 one-minute windows */
    int64_t ts0 = sib_now_us() - (int64_t)span_us;
    uint64_t period_ns = (uint64_t)z->ts_secs * 1000000000ull / z->n, reads = 0, rt = 0;
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < z->n; i++) {
        uint64_t due = t0 + i * period_ns, t = now_ns();
        if (due > t + 1000000) usleep((useconds_t)((due - t) / 1000)); /* pace: ahead by over 1 ms */
        int32_t now = (int32_t)time(NULL);
        expiry[i] = now + (int32_t)z->ttl;
        __atomic_store_n(&l->written, i + 1, __ATOMIC_RELEASE);
        sibyl_key(perm[i], 0, k);
        sibyl_value(perm[i], 2, v);
        int64_t ts = ts0 + (int64_t)((double)i * (double)span_us / (double)z->n);
        if (e->put(e->h, k, v, ts, (int32_t)z->ttl, expiry[i])) {
            free(perm);
            return -1;
        }
        if (i % 4 == 3) { /* a read of the latest window: among the last 5% written */
            uint64_t back = z->n / 20 ? z->n / 20 : 1, lo = i + 1 > back ? i + 1 - back : 0;
            uint64_t j = lo + sm64(&s) % (i + 1 - lo);
            bool found;
            int touched = -1;
            uint64_t a = now_ns();
            sibyl_key(perm[j], 0, k);
            if (e->get(e->h, k, now, &found, &touched)) {
                free(perm);
                return -1;
            }
            rt += now_ns() - a;
            if (touched >= 0) spr_add(r, touched);
            if (!found) r->read_misses++;
            reads++;
        }
    }
    r->write_ops_s = (double)z->n / ((double)(now_ns() - t0) / 1e9);
    r->reads = reads;
    r->read_ops_s = rt ? (double)reads / ((double)rt / 1e9) : 0;
    free(perm);
    r->puts = z->n;
    sampler_ratio(sm, false);
    /* the final space figures at the end of the writes: records keep
     * expiring while the engine settles, towards no live data at all */
    r->final_disk = e->disk(e->h);
    r->final_live = live_ttl(l);
    return settle(e, r);
}

static int run_workload(engine *e, int w, const amp_sizes *z, amp_result *r)
{
    live_state l = {0};
    int32_t *expiry = NULL;
    sampler sm = {.e = e, .ratio_on = true, .live = live_counted, .live_arg = &l};
    if (w == W_TS) {
        if (!(expiry = calloc(z->n, sizeof *expiry))) return -1;
        l.expiry = expiry;
        sm.live = live_ttl;
    }
    pthread_mutex_init(&sm.mu, NULL);
    pthread_cond_init(&sm.cv, NULL);
    if (pthread_create(&sm.th, NULL, sampler_main, &sm)) {
        free(expiry);
        return -1;
    }
    int rc;
    if (w == W_FILL) {
        uint64_t *perm = sibyl_perm(z->n);
        rc = wl_writes(e, z, r, &sm, &l, perm, z->n);
        free(perm);
    } else if (w == W_OVER) {
        rc = wl_writes(e, z, r, &sm, &l, NULL, z->hot_keys);
    } else {
        rc = wl_timeseries(e, z, r, &sm, &l, expiry);
    }
    pthread_mutex_lock(&sm.mu);
    sm.stop = true;
    pthread_cond_signal(&sm.cv);
    pthread_mutex_unlock(&sm.mu);
    pthread_join(sm.th, NULL);
    sample_once(&sm); /* the final state counts towards the peak disk */
    pthread_mutex_destroy(&sm.mu);
    pthread_cond_destroy(&sm.cv);
    if (!rc) {
        r->user_bytes = r->puts * REC_BYTES;
        if (w != W_TS) {
            r->final_disk = e->disk(e->h);
            r->final_live = sm.live(sm.live_arg);
        }
        r->peak_disk = sm.peak_disk;
        r->peak_space_amp = sm.peak_ratio;
        e->finish(e->h, r);
    }
    free(expiry);
    return rc;
}

/* ---- Sibyl ---- */

static const uint8_t AMP_TABLE[16] = {0xa3, 0x9f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};

typedef struct sib_eng {
    storage *s;
    st_table *t;
    st_mutation *m;
    uint64_t spr0[ST_SPR_BUCKETS];
    char data[4200];
} sib_eng;

static int sib_put(void *h, const char *k, const char *v, int64_t ts, int32_t ttl, int32_t expiry)
{
    sib_eng *e = h;
    return sibyl_engine_put(e->s, &e->m, AMP_TABLE, k, v, ts, ttl, expiry);
}

static int sib_get(void *h, const char *k, int32_t now_s, bool *found, int *touched)
{
    *touched = -1; /* counted by the table's histogram */
    return sibyl_engine_get(((sib_eng *)h)->t, k, now_s, found);
}

static int sib_settle(void *h)
{
    return sibyl_engine_settle(((sib_eng *)h)->s);
}

static uint64_t sib_disk(void *h)
{
    return tree_bytes_ex(((sib_eng *)h)->data, NULL, 1);
}

static void sib_spr_mark(void *h)
{
    sib_eng *e = h;
    st_table_stats ts;
    st_table_get_stats(e->t, &ts);
    memcpy(e->spr0, ts.spr, sizeof e->spr0);
}

static void sib_finish(void *h, amp_result *r)
{
    sib_eng *e = h;
    storage_stats st;
    storage_get_stats(e->s, &st);
    r->flush_bytes = st.flush_bytes;
    r->written_bytes = st.flush_bytes + st.compaction_bytes_written;
    st_table_stats ts;
    st_table_get_stats(e->t, &ts);
    /* the histogram's buckets are ranges: each read counts at its bucket's
     * upper bound (exact up to 6 SSTables) */
    for (size_t b = 0; b < ST_SPR_BUCKETS; b++) {
        uint32_t ub = st_spr_bound(b);
        r->spr[ub >= SPR_MAX ? SPR_MAX - 1 : ub] += ts.spr[b] - e->spr0[b];
    }
    /* the write amplification's parts, in user bytes: flushes, then the
     * merges into each level (STCS in L0 counts into L0) with how many
     * there were and the L0 SSTables they took, tombstone compactions,
     * and the bytes trivial moves relinked without writing */
    double ub = (double)(r->puts * REC_BYTES);
    int k = snprintf(r->kinds, sizeof r->kinds, "flush=%.3f", ub ? (double)st.flush_bytes / ub : 0);
    for (int l = 0; l < ST_MAX_LEVELS && k < (int)sizeof r->kinds; l++)
        if (ts.cm_into_n[l])
            k += snprintf(r->kinds + k, sizeof r->kinds - (size_t)k, " into_L%d=%.3f(n=%llu l0_inputs=%llu)", l,
                          ub ? (double)ts.cm_into[l] / ub : 0, (unsigned long long)ts.cm_into_n[l],
                          (unsigned long long)ts.cm_into_l0[l]);
    if (k < (int)sizeof r->kinds)
        snprintf(r->kinds + k, sizeof r->kinds - (size_t)k, " tombstone=%.3f moves=%llu(moved=%.3f)",
                 ub ? (double)ts.cm_tombstone_bytes / ub : 0, (unsigned long long)ts.cm_moves,
                 ub ? (double)ts.cm_moved_bytes / ub : 0);
    int o = snprintf(r->shape, sizeof r->shape, "sstables=%llu", (unsigned long long)ts.sstables);
    for (int l = 0; ts.leveled && l < ST_MAX_LEVELS && o < (int)sizeof r->shape; l++)
        if (ts.levels[l]) o += snprintf(r->shape + o, sizeof r->shape - (size_t)o, " L%d=%llu", l, (unsigned long long)ts.levels[l]);
    for (int l = 0; ts.unified && l < ST_MAX_LEVELS && o < (int)sizeof r->shape; l++)
        if (ts.levels[l])
            o += snprintf(r->shape + o, sizeof r->shape - (size_t)o, " d%d=%llu(overlap %llu)", l,
                          (unsigned long long)ts.levels[l], (unsigned long long)ts.max_overlap[l]);
}

/* lcs-matched's l0_compaction_trigger: RocksDB's level0_file_num_compaction_trigger. */
#define LCSM_L0_TRIGGER 4u

/* memtable_heap_space of a Sibyl configuration. Cassandra's (and Sibyl's)
 * counts every memtable, the one written and the ones flushing, and a
 * flush starts at half of it; RocksDB's write_buffer_size is one memtable,
 * of which max_write_buffer_number (2) may exist. lcs-matched, matched to
 * rocksdb-leveled, gets the same memory (2 x write_buffer_size), so both
 * flush memtables of write_buffer_size and L0 counts files of one size. */
static uint64_t sib_memtable(int c, const amp_sizes *z)
{
    return c == C_LCSM ? 2 * z->memtable : z->memtable;
}

/* The compaction map of a Sibyl configuration (keys/vals point into buf). */
static size_t sib_map(int c, const amp_sizes *z, const char **k, const char **v, char buf[][32])
{
    size_t n = 0;
#define KV(key, ...) (k[n] = (key), snprintf(buf[n], 32, __VA_ARGS__), v[n] = buf[n], n++)
    switch (c) {
    case C_STCS:
        KV("class", "SizeTieredCompactionStrategy");
        KV("min_sstable_size", "%u", z->stcs_min);
        break;
    case C_LCS:
    case C_LCSM:
        KV("class", "LeveledCompactionStrategy");
        KV("sstable_size_in_mb", "%u", c == C_LCS ? z->lcs_mb : z->lcs_matched_mb);
        KV("fanout_size", "10");
        /* matched: L0 merges into L1 by four flushes at least, as RocksDB's
         * level0_file_num_compaction_trigger */
        if (c == C_LCSM) KV("l0_compaction_trigger", "%u", LCSM_L0_TRIGGER);
        break;
    case C_TWCS:
        KV("class", "TimeWindowCompactionStrategy");
        KV("compaction_window_unit", "MINUTES");
        KV("compaction_window_size", "1");
        KV("expired_sstable_check_frequency_seconds", "1");
        break;
    default:
        KV("class", "UnifiedCompactionStrategy");
        /* 'T4, L10': level 0 tiered (flushes merged in fours), levelled
         * above; Cassandra's own way to pair flushes with levelled levels */
        KV("scaling_parameters", "%s", c == C_UCS_T4 ? "T4" : c == C_UCS_L10 ? "L10" : "T4, L10");
        KV("target_sstable_size", "%u", z->ucs_target);
        KV("min_sstable_size", "%u", z->ucs_min);
        KV("expired_sstable_check_frequency_seconds", "1");
        break;
    }
#undef KV
    return n;
}

static int run_sibyl(const char *dir, int c, int w, const amp_sizes *z, amp_result *r)
{
    sib_eng e = {0};
    snprintf(e.data, sizeof e.data, "%s/sibyl-%s-%s/data", dir, c_names[c], w_names[w]);
    char root[4200], cl[4400];
    snprintf(root, sizeof root, "%s/sibyl-%s-%s", dir, c_names[c], w_names[w]);
    snprintf(cl, sizeof cl, "%s/commitlog", root);
    rm_tree(root);
    mkdir(root, 0755);
    storage_opts o = {0};
    o.commitlog_dir = cl;
    o.data_dir = e.data;
    o.sync = ST_SYNC_PERIODIC;
    o.memtable_heap_space = sib_memtable(c, z);
    o.sstable_block_size = 4096;
    o.bloom_filter_fp_chance = 0.0082; /* 10 bits per key */
    o.compaction_throughput_mib = -1;  /* unthrottled, as RocksDB */
    o.block_cache_size = (int64_t)z->cache;
    /* SIBYL_AMP_LOG=1: the engine's log (each flush and compaction, with
     * its inputs, level and bytes) on stderr, to see where bytes go */
    sib_log *log = getenv("SIBYL_AMP_LOG") ? sib_log_create(stderr, SIB_INFO) : NULL;
    o.log = log;
    sib_err err;
    if (storage_open(&e.s, &o, &err) || storage_replay(e.s, NULL, &err)) {
        fprintf(stderr, "sibyl: open: %s\n", err.msg);
        sib_log_destroy(log);
        return -1;
    }
    e.t = storage_table(e.s, AMP_TABLE);
    const char *k[8], *v[8];
    char buf[8][32];
    size_t n = sib_map(c, z, k, v, buf);
    if (st_table_set_options(e.t, k, v, n, w == W_TS ? 0 : -1, &err)) {
        fprintf(stderr, "sibyl: options: %s\n", err.msg);
        storage_close(e.s);
        sib_log_destroy(log);
        return -1;
    }
    e.m = st_mutation_create(AMP_TABLE, (const uint8_t *)"", 0);
    engine en = {&e, sib_put, sib_get, sib_settle, sib_disk, sib_finish, sib_spr_mark};
    int rc = run_workload(&en, w, z, r);
    st_mutation_destroy(e.m);
    storage_close(e.s);
    sib_log_destroy(log);
    return rc;
}

/* ---- RocksDB ---- */

#ifdef SIB_HAVE_ROCKSDB
typedef struct rdb_eng {
    rocksdb_t *db;
    rocksdb_options_t *o;
    rocksdb_writeoptions_t *wo;
    rocksdb_readoptions_t *ro;
    rocksdb_perfcontext_t *pc;
    char dir[4200];
} rdb_eng;

static int rdb_put(void *h, const char *k, const char *v, int64_t ts, int32_t ttl, int32_t expiry)
{
    (void)ts, (void)ttl, (void)expiry; /* the TTL database stamps its own write time */
    return rdb_put_db(((rdb_eng *)h)->db, ((rdb_eng *)h)->wo, k, v);
}

static int rdb_get(void *h, const char *k, int32_t now_s, bool *found, int *touched)
{
    rdb_eng *e = h;
    int f = 0;
    (void)now_s;
    rocksdb_perfcontext_reset(e->pc);
    int rc = rdb_get_db(e->db, e->ro, k, &f);
    *touched = (int)rocksdb_perfcontext_metric(e->pc, rocksdb_bloom_sst_hit_count);
    *found = f;
    return rc;
}

static int rdb_settle(void *h)
{
    return rdb_settle_db(((rdb_eng *)h)->db);
}

static uint64_t rdb_disk(void *h)
{
    return tree_bytes_ex(((rdb_eng *)h)->dir, ".sst", 1);
}

static void rdb_spr_mark(void *h)
{
    (void)h;
}

static void rdb_finish(void *h, amp_result *r)
{
    rdb_eng *e = h;
    char *st = rocksdb_options_statistics_get_string(e->o);
    r->flush_bytes = rdb_stat_count(st, "rocksdb.flush.write.bytes");
    r->written_bytes = r->flush_bytes + rdb_stat_count(st, "rocksdb.compact.write.bytes");
    rocksdb_free(st);
    /* its per-level compaction stats (Write(GB) into each level) */
    char *cs = rocksdb_property_value(e->db, "rocksdb.stats");
    const char *a = cs ? strstr(cs, "** Compaction Stats") : NULL, *b = a ? strstr(a, "\n\n") : NULL;
    if (a) snprintf(r->kinds, sizeof r->kinds, "%.*s", (int)(b ? b - a : (ptrdiff_t)strlen(a)), a);
    rocksdb_free(cs);
    int o = snprintf(r->shape, sizeof r->shape, "sstables=");
    uint64_t total = 0;
    char lv[128] = "";
    int lo = 0;
    for (int l = 0; l < 7; l++) {
        char name[64];
        snprintf(name, sizeof name, "rocksdb.num-files-at-level%d", l);
        char *s = rocksdb_property_value(e->db, name);
        uint64_t f = s ? strtoull(s, NULL, 10) : 0;
        rocksdb_free(s);
        total += f;
        if (f && lo < (int)sizeof lv) lo += snprintf(lv + lo, sizeof lv - (size_t)lo, " L%d=%llu", l, (unsigned long long)f);
    }
    snprintf(r->shape + o, sizeof r->shape - (size_t)o, "%llu%s", (unsigned long long)total, lv);
}

static int run_rocksdb(const char *dir, int c, int w, const amp_sizes *z, amp_result *r)
{
    rdb_eng e = {0};
    snprintf(e.dir, sizeof e.dir, "%s/rocksdb-%s-%s", dir, c_names[c], w_names[w]);
    rm_tree(e.dir);
    e.o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(e.o, 1);
    rocksdb_options_set_compression(e.o, rocksdb_lz4_compression);
    rocksdb_options_set_write_buffer_size(e.o, z->memtable);
    rocksdb_options_set_target_file_size_base(e.o, (uint64_t)z->lcs_matched_mb << 20);
    rocksdb_options_set_max_bytes_for_level_multiplier(e.o, 10);
    /* matched: L1 = Sibyl's matched LCS L1 (fanout x SSTable size);
     * stock: RocksDB's own ratio (256 MB over 64 MB files) */
    rocksdb_options_set_max_bytes_for_level_base(e.o, ((uint64_t)z->lcs_matched_mb << 20) * (c == C_RDB_LEV ? 10 : 4));
    rocksdb_options_set_max_background_jobs(e.o, 2);
    if (c == C_RDB_UNI) rocksdb_options_set_compaction_style(e.o, rocksdb_universal_compaction);
    rocksdb_options_enable_statistics(e.o);
    rocksdb_block_based_table_options_t *bo = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_size(bo, 4096);
    rocksdb_cache_t *cache = rocksdb_cache_create_lru(z->cache);
    rocksdb_block_based_options_set_block_cache(bo, cache);
    rocksdb_block_based_options_set_filter_policy(bo, rocksdb_filterpolicy_create_bloom(10));
    rocksdb_options_set_block_based_table_factory(e.o, bo);
    e.wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(e.wo, 0);
    e.ro = rocksdb_readoptions_create();
    rocksdb_set_perf_level(rocksdb_enable_count);
    e.pc = rocksdb_perfcontext_create();
    char *err = NULL;
    e.db = w == W_TS ? rocksdb_open_with_ttl(e.o, e.dir, (int)z->ttl, &err) : rocksdb_open(e.o, e.dir, &err);
    int rc = -1;
    if (err) {
        fprintf(stderr, "rocksdb: open: %s\n", err);
        rocksdb_free(err);
    } else {
        engine en = {&e, rdb_put, rdb_get, rdb_settle, rdb_disk, rdb_finish, rdb_spr_mark};
        rc = run_workload(&en, w, z, r);
        rocksdb_close(e.db);
    }
    rocksdb_perfcontext_destroy(e.pc);
    rocksdb_readoptions_destroy(e.ro);
    rocksdb_writeoptions_destroy(e.wo);
    rocksdb_options_destroy(e.o);
    rocksdb_block_based_options_destroy(bo); /* also releases the filter policy */
    rocksdb_cache_destroy(cache);
    return rc;
}
#endif

/* ---- driver ---- */

static double spr_pct(const amp_result *r, double p)
{
    uint64_t n = 0, seen = 0;
    for (int i = 0; i < SPR_MAX; i++) n += r->spr[i];
    if (!n) return -1;
    uint64_t want = (uint64_t)(p / 100.0 * (double)n);
    if (!want) want = 1;
    for (int i = 0; i < SPR_MAX; i++)
        if ((seen += r->spr[i]) >= want) return i;
    return SPR_MAX - 1;
}

static double spr_mean(const amp_result *r)
{
    uint64_t n = 0, s = 0;
    for (int i = 0; i < SPR_MAX; i++) n += r->spr[i], s += r->spr[i] * (uint64_t)i;
    return n ? (double)s / (double)n : 0;
}

static void print_configs(const amp_sizes *z)
{
    double mib = 1048576.0;
    printf("CONFIG both: keys=%llu record=16B key+100B value (SIBYL-ENGINE-V1) lz4 block=4KiB bloom=10bits/key "
           "memtable=%.1fMiB(sibyl memtable_heap_space except lcs-matched, rocksdb write_buffer_size) block_cache=%.1fMiB compaction_threads=2 unthrottled wal/commitlog=on,no-sync\n",
           (unsigned long long)z->n, (double)z->memtable / mib, (double)z->cache / mib);
    printf("CONFIG workloads: reads=%llu overwrite_keys=%llu timeseries_secs=%u ttl_s=%u gc_grace_s=0 "
           "windows=20x1min(write timestamps) fill_puts_s_max=%llu\n",
           (unsigned long long)z->reads, (unsigned long long)z->hot_keys, z->ts_secs, z->ttl,
           (unsigned long long)z->fill_rate);
    printf("CONFIG stcs: SizeTieredCompactionStrategy min_threshold=4 max_threshold=32 bucket_low=0.5 "
           "bucket_high=1.5 min_sstable_size=%u\n", z->stcs_min);
    printf("CONFIG lcs: LeveledCompactionStrategy sstable_size_in_mb=%u fanout_size=10 (L1=%uMiB)\n", z->lcs_mb,
           10 * z->lcs_mb);
    printf("CONFIG lcs-matched: LeveledCompactionStrategy sstable_size_in_mb=%u fanout_size=10 (L1=%uMiB = "
           "rocksdb-leveled max_bytes_for_level_base) l0_compaction_trigger=%u (= level0_file_num_compaction_trigger) "
           "memtable_heap_space=%.1fMiB (= write_buffer_size x max_write_buffer_number: flushes at %.1fMiB)\n",
           z->lcs_matched_mb, 10 * z->lcs_matched_mb, LCSM_L0_TRIGGER, (double)sib_memtable(C_LCSM, z) / mib,
           (double)sib_memtable(C_LCSM, z) / 2 / mib);
    printf("CONFIG twcs: TimeWindowCompactionStrategy compaction_window_unit=MINUTES compaction_window_size=1 "
           "expired_sstable_check_frequency_seconds=1\n");
    printf("CONFIG ucs-t4/ucs-l10/ucs-t4-l10: UnifiedCompactionStrategy scaling_parameters=T4/L10/'T4, L10' "
           "target_sstable_size=%u "
           "min_sstable_size=%u base_shard_count=4 sstable_growth=0.333 expired_sstable_check_frequency_seconds=1\n",
           z->ucs_target, z->ucs_min);
    printf("CONFIG rocksdb-leveled: kCompactionStyleLevel write_buffer_size=%llu max_write_buffer_number=2 "
           "level0_file_num_compaction_trigger=4 target_file_size_base=%uMiB max_bytes_for_level_base=%uMiB "
           "max_bytes_for_level_multiplier=10 max_background_jobs=2\n",
           (unsigned long long)z->memtable, z->lcs_matched_mb, 10 * z->lcs_matched_mb);
    printf("CONFIG rocksdb-leveled-stock: as rocksdb-leveled with max_bytes_for_level_base=%uMiB (RocksDB's 256 MB "
           "over 64 MB files, scaled)\n", 4 * z->lcs_matched_mb);
    printf("CONFIG rocksdb-universal: kCompactionStyleUniversal size_ratio=1 min_merge_width=2 "
           "max_size_amplification_percent=200 write_buffer_size=%llu max_background_jobs=2\n",
           (unsigned long long)z->memtable);
    printf("CONFIG rocksdb timeseries: rocksdb_open_with_ttl(ttl=%u) (expired entries dropped by compactions)\n",
           z->ttl);
}

static void print_result(int c, int w, const amp_result *r)
{
    if (!r->ran || r->failed) {
        printf("RESULT config=%s workload=%s status=failed\n", c_names[c], w_names[w]);
        return;
    }
    double mib = 1048576.0;
    printf("RESULT config=%s workload=%s puts=%llu write_ops_s=%.0f settle_s=%.2f write_amp=%.3f flush_amp=%.3f reads=%llu "
           "read_ops_s=%.0f sst_per_read_mean=%.2f sst_per_read_p50=%.0f sst_per_read_p99=%.0f read_misses=%llu "
           "peak_disk_mib=%.1f final_disk_mib=%.1f final_live_mib=%.1f space_amp_peak=%.3f space_amp_final=%.3f "
           "peak_rss_mib=%.1f %s\n",
           c_names[c], w_names[w], (unsigned long long)r->puts, r->write_ops_s, r->settle_s,
           r->user_bytes ? (double)r->written_bytes / (double)r->user_bytes : 0,
           r->user_bytes ? (double)r->flush_bytes / (double)r->user_bytes : 0, (unsigned long long)r->reads, r->read_ops_s, spr_mean(r), spr_pct(r, 50), spr_pct(r, 99), (unsigned long long)r->read_misses,
           (double)r->peak_disk / mib, (double)r->final_disk / mib, (double)r->final_live / mib,
           r->peak_space_amp, r->final_live ? (double)r->final_disk / (double)r->final_live : 0,
           (double)r->peak_rss_kb / 1024.0, r->shape);
    if (r->kinds[0]) printf("KINDS config=%s workload=%s %s\n", c_names[c], w_names[w], r->kinds);
    fflush(stdout);
}

static void print_table(const bool *cs, const bool *ws, const amp_result *res)
{
    for (int w = 0; w < W_N; w++) {
        if (!ws[w]) continue;
        printf("\n%s\n| config | write amp | SSTables/read p50 / p99 (mean) | space amp peak / final | "
               "puts/s | reads/s | peak RSS MiB | SSTables at the end |\n|---|---|---|---|---|---|---|---|\n",
               w_names[w]);
        for (int c = 0; c < C_N; c++) {
            const amp_result *r = &res[c * W_N + w];
            if (!cs[c] || !r->ran) continue;
            if (r->failed) {
                printf("| %s | failed |\n", c_names[c]);
                continue;
            }
            printf("| %s | %.2f | %.0f / %.0f (%.2f) | %.2f / %.2f | %.0f | %.0f | %.0f | %s |\n", c_names[c],
                   (double)r->written_bytes / (double)r->user_bytes, spr_pct(r, 50), spr_pct(r, 99), spr_mean(r),
                   r->peak_space_amp, r->final_live ? (double)r->final_disk / (double)r->final_live : 0,
                   r->write_ops_s, r->read_ops_s, (double)r->peak_rss_kb / 1024.0, r->shape);
        }
    }
}

/* Marks the names of list (comma-separated; NULL or "all" = every one). */
static int parse_list(const char *list, const char *const *names, int n, bool *on)
{
    for (int i = 0; i < n; i++) on[i] = !list || !strcmp(list, "all");
    if (!list || !strcmp(list, "all")) return 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int i = 0;
        while (i < n && strcmp(t, names[i])) i++;
        if (i == n) {
            fprintf(stderr, "bench_amp: unknown name '%s'\n", t);
            return -1;
        }
        on[i] = true;
    }
    return 0;
}

static unsigned scaled_mib(double full_mib, double s)
{
    double v = full_mib * s;
    return v < 1 ? 1 : (unsigned)(v + 0.5);
}

int main(int argc, char **argv)
{
    amp_sizes z = {0};
    z.n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    bool cs[C_N], ws[W_N];
    if (z.n < 1000 || parse_list(argc > 3 ? argv[3] : NULL, c_names, C_N, cs) ||
        parse_list(argc > 4 ? argv[4] : NULL, w_names, W_N, ws)) {
        fprintf(stderr, "usage: bench_amp [N >= 1000] [DIR] [CONFIGS|all] [WORKLOADS|all]  "
                        "(SIBYL_BENCH_KEEP=1 keeps DIR, SIBYL_AMP_TS_SECONDS sets the time-series length)\n");
        return 2;
    }
    double s = (double)z.n / 1e7;
    z.memtable = (uint64_t)(64.0 * s * 1048576.0);
    if (z.memtable < (256u << 10)) z.memtable = 256u << 10;
    z.cache = (uint64_t)(64.0 * s * 1048576.0);
    if (z.cache < (4u << 20)) z.cache = 4u << 20;
    z.reads = z.n < 200000 ? z.n : 200000;
    z.hot_keys = z.memtable / 4 / REC_BYTES;
    if (z.hot_keys < 100) z.hot_keys = 100;
    z.lcs_mb = scaled_mib(160, s);
    z.lcs_matched_mb = scaled_mib(64, s);
    z.stcs_min = (unsigned)(50.0 * s * 1048576.0);
    z.ucs_target = scaled_mib(1024, s) << 20;
    z.ucs_min = (unsigned)(100.0 * s * 1048576.0);
    z.ts_secs = (unsigned)(z.n / 50000 < 4 ? 4 : z.n / 50000);
    if (getenv("SIBYL_AMP_TS_SECONDS")) z.ts_secs = (unsigned)atoi(getenv("SIBYL_AMP_TS_SECONDS"));
    if (z.ts_secs < 1) z.ts_secs = 1;
    if (getenv("SIBYL_AMP_PUTS_S")) z.fill_rate = strtoull(getenv("SIBYL_AMP_PUTS_S"), NULL, 10);
    z.ttl = z.ts_secs / 5 ? z.ts_secs / 5 : 1;

    char dir[4096];
    if (argc > 2) snprintf(dir, sizeof dir, "%s", argv[2]);
    else snprintf(dir, sizeof dir, "/tmp/bench_amp.%d", (int)getpid());
    mkdir(dir, 0755);
    print_configs(&z);
    (void)dir_bytes, (void)report; /* engine_workload.h helpers this program does not use */
    amp_result *res = mmap(NULL, C_N * W_N * sizeof *res, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(res, 0, C_N * W_N * sizeof *res);
    int rc = 0;
    for (int w = 0; w < W_N; w++) {
        for (int c = 0; c < C_N; c++) {
            if (!ws[w] || !cs[c]) continue;
#ifndef SIB_HAVE_ROCKSDB
            if (C_IS_ROCKSDB(c)) continue;
#endif
            amp_result *r = &res[c * W_N + w];
            fflush(stdout);
            pid_t pid = fork();
            if (pid < 0) {
                perror("fork");
                return 1;
            }
            if (pid == 0) {
                int crc = -1;
                if (!C_IS_ROCKSDB(c)) crc = run_sibyl(dir, c, w, &z, r);
#ifdef SIB_HAVE_ROCKSDB
                else crc = run_rocksdb(dir, c, w, &z, r);
#endif
                struct rusage ru;
                getrusage(RUSAGE_SELF, &ru);
                r->peak_rss_kb = (uint64_t)ru.ru_maxrss;
                r->ran = true;
                r->failed = crc != 0;
                fflush(stdout);
                _exit(crc ? 1 : 0);
            }
            int status;
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
            if (!r->ran) r->ran = r->failed = true;
            if (r->failed) rc = 1;
            print_result(c, w, r);
            if (!getenv("SIBYL_BENCH_KEEP")) {
                char p[4200];
                snprintf(p, sizeof p, "%s/%s-%s-%s", dir, C_IS_ROCKSDB(c) ? "rocksdb" : "sibyl", c_names[c],
                         w_names[w]);
                rm_tree(p);
            }
        }
    }
    print_table(cs, ws, res);
    if (!getenv("SIBYL_BENCH_KEEP")) rm_tree(dir);
    munmap(res, C_N * W_N * sizeof *res);
    return rc;
}
