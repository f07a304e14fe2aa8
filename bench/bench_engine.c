/* bench_engine: SIBYL-ENGINE-V1 on Sibyl's storage engine and on RocksDB, in
 * one run, side by side.
 *
 *   bench_engine [N] [DIR] [ENGINES]   N defaults to 1,000,000; DIR to /tmp;
 *                                      ENGINES: both (default), sibyl, rocksdb
 *
 * The workload (keys, values, seeds, phases, latency histogram, RESULT line
 * format) is SIBYL-ENGINE-V1 as bench/engine_workload.h defines it. Each
 * engine runs in a child process (fork) so its peak RSS is its own; results
 * come back through a shared mapping and the parent prints the comparison
 * table. In each child a thread samples /proc/self/status every 100 ms: the
 * peaks of RssAnon (heap, memtables, block cache) and RssFile (mmapped
 * files such as Index.db, and the program), overall and per phase, are
 * printed beside the memtable and block cache budgets the engine was
 * configured with. SIBYL_BENCH_MEMTRACE=1 also prints Sibyl's own
 * accounting (memtables, frozen ones, block cache) beside its RSS every
 * 200,000 operations, on stderr.
 *
 * Sibyl: storage_open without a loop (the engine in-process, no network),
 * periodic commitlog sync (10 s), one table with a blob partition key and
 * one blob column: put = one mutation {pk = the 16-byte key, row "", cell
 * column 1 = the 100-byte value} through storage_apply; get = st_read of the
 * partition. memtable_heap_space 128 MiB (flushes of 64 MiB memtables, at
 * most two in memory, as RocksDB's two write buffers below), 4 KiB
 * blocks, LZ4, bloom fp chance 0.0082 (10 bits/key), SizeTieredCompactionStrategy with its defaults on one
 * compaction thread, unthrottled (RocksDB's compactions are not throttled
 * either), the default block cache (a quarter of the memory budget up to
 * 512 MiB). Settle = storage_flush of everything (blocks until the SSTables
 * are live), then storage_compaction_wait (blocks until no compaction is
 * queued, running or due). Write amplification = (bytes of every SSTable
 * component written by flushes + by compactions, from storage_get_stats) /
 * (N_put * 116).
 *
 * RocksDB (when built with SIB_HAVE_ROCKSDB): LZ4, 64 MiB write buffer
 * (two at most: max_write_buffer_number's default), 4 KiB blocks, 10 bits/key bloom, 64 MiB LRU block cache, WAL on without
 * sync; flush = rocksdb_flush(wait), settle = poll until no compaction is
 * pending or running. Write amplification from its statistics
 * (rocksdb.flush.write.bytes + rocksdb.compact.write.bytes).
 */
#define _GNU_SOURCE
#include "engine_workload.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_sibyl.h"


enum { PH_FILL, PH_FILL_SETTLED, PH_READ, PH_ABSENT, PH_OVER, PH_OVER_SETTLED, PH_N };
static const char *const ph_names[PH_N] = {"fillrandom", "fillrandom+settle", "readrandom-present",
                                           "readrandom-absent", "overwrite", "overwrite+settle"};

typedef struct eng_result {
    bool ran, failed;
    double ops_s[PH_N], p50[PH_N], p99[PH_N], p9999[PH_N], max_ms[PH_N];
    uint64_t disk_bytes, flush_bytes, wal_bytes, peak_rss_kb;
    /* peaks of /proc/self/status RssAnon and RssFile (sampled every 100 ms),
     * over the whole run and per phase (each with the other at that moment) */
    uint64_t peak_anon_kb, peak_file_kb, ph_anon_kb[PH_N], ph_file_kb[PH_N];
    uint64_t memtable_budget, cache_budget; /* bytes, as the engine was configured */
} eng_result;

/* ---- RSS sampler: a thread in the engine's child process ---- */

typedef struct rss_sampler {
    pthread_t th;
    atomic_bool stop;
    atomic_int phase; /* the phase running now (set by the workload) */
    eng_result *r;
} rss_sampler;

static rss_sampler *g_rss; /* the child's sampler: the workload sets its phase */

static void set_phase(int ph)
{
    if (g_rss) atomic_store(&g_rss->phase, ph);
}

/* RssAnon and RssFile of this process, in KiB (0 when unreadable). */
static void rss_now(uint64_t *anon, uint64_t *file)
{
    *anon = *file = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        unsigned long long v;
        if (sscanf(line, "RssAnon: %llu kB", &v) == 1) *anon = v;
        else if (sscanf(line, "RssFile: %llu kB", &v) == 1) *file = v;
    }
    fclose(f);
}

static void rss_sample(rss_sampler *s)
{
    uint64_t anon, file;
    rss_now(&anon, &file);
    eng_result *r = s->r;
    int ph = atomic_load(&s->phase);
    if (anon > r->peak_anon_kb) r->peak_anon_kb = anon;
    if (file > r->peak_file_kb) r->peak_file_kb = file;
    if (anon > r->ph_anon_kb[ph]) r->ph_anon_kb[ph] = anon;
    if (file > r->ph_file_kb[ph]) r->ph_file_kb[ph] = file;
}

static void *rss_main(void *arg)
{
    rss_sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        rss_sample(s);
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    rss_sample(s);
    return NULL;
}

/* An engine under test: put/get/flush+settle/size, and its teardown. */
typedef struct engine {
    const char *name;
    void *h;
    int (*put)(void *h, const char *k, const char *v);
    int (*get)(void *h, const char *k, bool *found); /* found: a 100-byte value */
    int (*settle)(void *h);
    void (*finish)(void *h, eng_result *r);
} engine;


/* ---- the phases (the shared definition) ---- */

static int run_writes(engine *e, uint64_t n, const uint64_t *perm, uint64_t gen, eng_result *r, int ph)
{
    char k[SIBYL_KEY_LEN], v[SIBYL_VAL_LEN];
    uint64_t s = SIBYL_SEED_OVER;
    hist_t *hist = calloc(1, sizeof *hist);
    if (!hist) return -1;
    set_phase(ph);
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t id = perm ? perm[i] : sm64(&s) % n;
        sibyl_key(id, 0, k);
        sibyl_value(id, gen, v);
        uint64_t a = now_ns();
        if (e->put(e->h, k, v)) {
            free(hist);
            return -1;
        }
        h_add(hist, now_ns() - a);
    }
    uint64_t t1 = now_ns();
    report(e->name, ph_names[ph], n, t1 - t0, hist, NULL);
    r->ops_s[ph] = (double)n / ((double)(t1 - t0) / 1e9);
    r->p50[ph] = h_pct_us(hist, 50);
    r->p99[ph] = h_pct_us(hist, 99);
    r->p9999[ph] = h_pct_us(hist, 99.99);
    r->max_ms[ph] = (double)hist->max / 1e6;
    set_phase(ph + 1);
    if (e->settle(e->h)) {
        free(hist);
        return -1;
    }
    uint64_t t2 = now_ns();
    char extra[64];
    snprintf(extra, sizeof extra, "settle_secs=%.3f", (double)(t2 - t1) / 1e9);
    report(e->name, ph_names[ph + 1], n, t2 - t0, hist, extra);
    free(hist);
    r->ops_s[ph + 1] = (double)n / ((double)(t2 - t0) / 1e9);
    r->p50[ph + 1] = r->p50[ph];
    r->p99[ph + 1] = r->p99[ph];
    r->p9999[ph + 1] = r->p9999[ph];
    r->max_ms[ph + 1] = r->max_ms[ph];
    return 0;
}

static int run_reads(engine *e, uint64_t n, uint64_t reads, bool absent, eng_result *r, int ph)
{
    char k[SIBYL_KEY_LEN];
    uint64_t s = absent ? SIBYL_SEED_ABSENT : SIBYL_SEED_READ, wrong = 0;
    hist_t *hist = calloc(1, sizeof *hist);
    if (!hist) return -1;
    set_phase(ph);
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < reads; i++) {
        sibyl_key(sm64(&s) % n, absent, k);
        bool found;
        uint64_t a = now_ns();
        if (e->get(e->h, k, &found)) {
            free(hist);
            return -1;
        }
        h_add(hist, now_ns() - a);
        if (found == absent) wrong++;
    }
    uint64_t t1 = now_ns();
    report(e->name, ph_names[ph], reads, t1 - t0, hist, NULL);
    r->ops_s[ph] = (double)reads / ((double)(t1 - t0) / 1e9);
    r->p50[ph] = h_pct_us(hist, 50);
    r->p99[ph] = h_pct_us(hist, 99);
    r->p9999[ph] = h_pct_us(hist, 99.99);
    r->max_ms[ph] = (double)hist->max / 1e6;
    free(hist);
    if (wrong) {
        fprintf(stderr, "%s: %llu %s reads gave the wrong answer\n", e->name, (unsigned long long)wrong,
                absent ? "absent" : "present");
        return -1;
    }
    return 0;
}

static int run_workload(engine *e, uint64_t n, eng_result *r)
{
    uint64_t *perm = sibyl_perm(n);
    uint64_t reads = 1000000;
    int rc = run_writes(e, n, perm, 0, r, PH_FILL);
    free(perm);
    if (!rc) rc = run_reads(e, n, reads, false, r, PH_READ);
    if (!rc) rc = run_reads(e, n, reads, true, r, PH_ABSENT);
    if (!rc) rc = run_writes(e, n, NULL, 1, r, PH_OVER);
    return rc;
}

/* ---- Sibyl ---- */

static const uint8_t BENCH_TABLE[16] = {0x5b, 0xe7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};

typedef struct sib_eng {
    storage *s;
    st_table *t;
    st_mutation *m;
    int64_t ts;
    int32_t now;
    bool memtrace; /* SIBYL_BENCH_MEMTRACE (sib_memtrace) */
    uint64_t ops;
    char data[4096];
} sib_eng;

/* SIBYL_BENCH_MEMTRACE=1: every 200,000 operations, the process's RSS
 * beside the engine's own accounting, on stderr (what the anonymous memory
 * is made of: memtables active and frozen, and the block cache). */
static void sib_memtrace(sib_eng *e)
{
    if (!e->memtrace || ++e->ops % 200000) return;
    storage_stats st;
    storage_get_stats(e->s, &st);
    uint64_t a, f;
    rss_now(&a, &f);
    fprintf(stderr,
            "MEMTRACE ops=%llu anon_mib=%llu file_mib=%llu memtables_mib=%llu frozen=%llu block_cache_mib=%llu\n",
            (unsigned long long)e->ops, (unsigned long long)a >> 10, (unsigned long long)f >> 10,
            (unsigned long long)st.memtable_bytes >> 20, (unsigned long long)st.flushes_pending,
            (unsigned long long)st.block_cache_bytes >> 20);
}

static int sib_put(void *h, const char *k, const char *v)
{
    sib_eng *e = h;
    sib_memtrace(e);
    return sibyl_engine_put(e->s, &e->m, BENCH_TABLE, k, v, e->ts++, 0, 0);
}

static int sib_get(void *h, const char *k, bool *found)
{
    sib_eng *e = h;
    sib_memtrace(e);
    return sibyl_engine_get(e->t, k, e->now, found);
}

static int sib_settle(void *h)
{
    return sibyl_engine_settle(((sib_eng *)h)->s);
}

static void sib_finish(void *h, eng_result *r)
{
    sib_eng *e = h;
    storage_stats st;
    storage_get_stats(e->s, &st);
    r->wal_bytes = st.cl_bytes_written;
    char p[4200];
    snprintf(p, sizeof p, "%s/data", e->data);
    r->flush_bytes = st.flush_bytes + st.compaction_bytes_written;
    r->disk_bytes = tree_bytes_ex(e->data, NULL, 0);
    const storage_opts *o = storage_get_opts(e->s);
    r->memtable_budget = o->memtable_heap_space;
    r->cache_budget = o->block_cache_size > 0 ? (uint64_t)o->block_cache_size : 0;
    printf("RESULT engine=sibyl sstables=%llu sstable_data_bytes=%llu flushes=%llu flush_bytes=%llu "
           "compactions=%llu compaction_bytes_read=%llu compaction_bytes_written=%llu sstable_tree_bytes=%llu "
           "writes_delayed=%llu write_delay_ms=%.1f\n",
           (unsigned long long)st.sstables, (unsigned long long)st.sstable_bytes, (unsigned long long)st.flushes,
           (unsigned long long)st.flush_bytes, (unsigned long long)st.compactions,
           (unsigned long long)st.compaction_bytes_read, (unsigned long long)st.compaction_bytes_written,
           (unsigned long long)tree_bytes_ex(p, NULL, 1), (unsigned long long)st.writes_delayed,
           (double)st.write_delay_ns / 1e6);
}

static int run_sibyl(const char *dir, uint64_t n, eng_result *r)
{
    sib_eng e = {0};
    snprintf(e.data, sizeof e.data, "%s/sibyl", dir);
    rm_tree(e.data);
    mkdir(e.data, 0755);
    char cl[4200], data[4200];
    snprintf(cl, sizeof cl, "%s/commitlog", e.data);
    snprintf(data, sizeof data, "%s/data", e.data);
    storage_opts o = {0};
    o.commitlog_dir = cl;
    o.data_dir = data;
    o.sync = ST_SYNC_PERIODIC;
    /* RocksDB's memtables below: two write buffers of 64 MiB at most
     * (max_write_buffer_number 2), one filling while one flushes. Ours:
     * active and flushing count against memtable_heap_space and a flush
     * starts at half of it, so 128 MiB gives the same: 64 MiB memtables,
     * at most two. */
    o.memtable_heap_space = 128u << 20;
    o.sstable_block_size = 4096;
    o.bloom_filter_fp_chance = 0.0082; /* 10 bits per key */
    o.compaction_throughput_mib = -1;  /* unthrottled, as RocksDB */
    sib_err err;
    if (storage_open(&e.s, &o, &err) || storage_replay(e.s, NULL, &err)) {
        fprintf(stderr, "sibyl: open: %s\n", err.msg);
        return -1;
    }
    e.t = storage_table(e.s, BENCH_TABLE);
    e.m = st_mutation_create(BENCH_TABLE, (const uint8_t *)"", 0);
    e.memtrace = getenv("SIBYL_BENCH_MEMTRACE") != NULL;
    e.ts = sib_now_us();
    e.now = (int32_t)(sib_now_us() / 1000000);
    engine en = {"sibyl", &e, sib_put, sib_get, sib_settle, sib_finish};
    int rc = run_workload(&en, n, r);
    if (!rc) sib_finish(&e, r);
    st_mutation_destroy(e.m);
    storage_close(e.s);
    return rc;
}

/* ---- RocksDB ---- */

#ifdef SIB_HAVE_ROCKSDB
typedef struct rdb_eng {
    rocksdb_t *db;
    rocksdb_options_t *o;
    rocksdb_writeoptions_t *wo;
    rocksdb_readoptions_t *ro;
    rocksdb_block_based_table_options_t *bo;
    rocksdb_cache_t *cache;
    rocksdb_filterpolicy_t *fp;
    char dir[4096];
} rdb_eng;

static int rdb_put(void *h, const char *k, const char *v)
{
    return rdb_put_db(((rdb_eng *)h)->db, ((rdb_eng *)h)->wo, k, v);
}

static int rdb_get(void *h, const char *k, bool *found)
{
    int f = 0, rc = rdb_get_db(((rdb_eng *)h)->db, ((rdb_eng *)h)->ro, k, &f);
    *found = f;
    return rc;
}

static int rdb_settle(void *h)
{
    return rdb_settle_db(((rdb_eng *)h)->db);
}

static void rdb_finish(void *h, eng_result *r)
{
    rdb_eng *e = h;
    char *st = rocksdb_options_statistics_get_string(e->o);
    r->flush_bytes = rdb_stat_count(st, "rocksdb.flush.write.bytes") + rdb_stat_count(st, "rocksdb.compact.write.bytes");
    r->wal_bytes = rdb_stat_count(st, "rocksdb.wal.bytes");
    rocksdb_free(st);
    r->disk_bytes = dir_bytes(e->dir); /* the shared helper: RocksDB's directory is flat */
    r->memtable_budget = 128u << 20; /* write_buffer_size (below) x max_write_buffer_number (2) */
    r->cache_budget = 64u << 20;
}

static int run_rocksdb(const char *dir, uint64_t n, eng_result *r)
{
    rdb_eng e = {0};
    snprintf(e.dir, sizeof e.dir, "%s/rocksdb", dir);
    rm_tree(e.dir);
    e.o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(e.o, 1);
    rocksdb_options_set_compression(e.o, rocksdb_lz4_compression);
    rocksdb_options_set_write_buffer_size(e.o, 64u << 20);
    rocksdb_options_enable_statistics(e.o);
    e.bo = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_size(e.bo, 4096);
    e.cache = rocksdb_cache_create_lru(64u << 20);
    rocksdb_block_based_options_set_block_cache(e.bo, e.cache);
    e.fp = rocksdb_filterpolicy_create_bloom(10);
    rocksdb_block_based_options_set_filter_policy(e.bo, e.fp);
    rocksdb_options_set_block_based_table_factory(e.o, e.bo);
    e.wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(e.wo, 0);
    e.ro = rocksdb_readoptions_create();
    char *err = NULL;
    e.db = rocksdb_open(e.o, e.dir, &err);
    if (err) {
        fprintf(stderr, "rocksdb: open: %s\n", err);
        rocksdb_free(err);
        return -1;
    }
    engine en = {"rocksdb", &e, rdb_put, rdb_get, rdb_settle, rdb_finish};
    int rc = run_workload(&en, n, r);
    if (!rc) rdb_finish(&e, r);
    rocksdb_close(e.db);
    rocksdb_readoptions_destroy(e.ro);
    rocksdb_writeoptions_destroy(e.wo);
    rocksdb_options_destroy(e.o);
    rocksdb_block_based_options_destroy(e.bo); /* also releases the filter policy */
    rocksdb_cache_destroy(e.cache);
    return rc;
}
#endif

/* ---- driver ---- */

static void run_child(int (*fn)(const char *, uint64_t, eng_result *), const char *dir, uint64_t n, eng_result *r)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        rss_sampler smp = {.r = r};
        atomic_init(&smp.stop, false);
        atomic_init(&smp.phase, PH_FILL);
        bool sampling = !pthread_create(&smp.th, NULL, rss_main, &smp);
        if (sampling) g_rss = &smp;
        int rc = fn(dir, n, r);
        if (sampling) {
            atomic_store(&smp.stop, true);
            pthread_join(smp.th, NULL);
            g_rss = NULL;
            printf("RESULT engine=%s peak_anon_kib=%llu peak_file_kib=%llu memtable_budget=%llu cache_budget=%llu\n",
                   fn == run_sibyl ? "sibyl" : "rocksdb", (unsigned long long)r->peak_anon_kb,
                   (unsigned long long)r->peak_file_kb, (unsigned long long)r->memtable_budget,
                   (unsigned long long)r->cache_budget);
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        r->peak_rss_kb = (uint64_t)ru.ru_maxrss;
        r->ran = true;
        r->failed = rc != 0;
        fflush(stdout);
        _exit(rc ? 1 : 0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!r->ran) r->failed = true;
}

static void print_table(uint64_t n, const eng_result *s, const eng_result *k)
{
    bool both = k && k->ran && !k->failed;
    printf("\nSIBYL-ENGINE-V1, N = %llu, R = 1000000\n", (unsigned long long)n);
    printf("| phase | sibyl ops/s | sibyl p50/p99/p99.99 us | sibyl max ms | rocksdb ops/s | rocksdb p50/p99/p99.99 us "
           "| rocksdb max ms | sibyl/rocksdb |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < PH_N; i++) {
        printf("| %s | %.0f | %.2f / %.2f / %.0f | %.1f |", ph_names[i], s->ops_s[i], s->p50[i], s->p99[i],
               s->p9999[i], s->max_ms[i]);
        if (both)
            printf(" %.0f | %.2f / %.2f / %.0f | %.1f | %.2fx |\n", k->ops_s[i], k->p50[i], k->p99[i], k->p9999[i],
                   k->max_ms[i], s->ops_s[i] / k->ops_s[i]);
        else printf(" - | - | - | - |\n");
    }
    double user = (double)n * 2 * (SIBYL_KEY_LEN + SIBYL_VAL_LEN);
    const eng_result *rs[2] = {s, both ? k : NULL};
    const char *names[2] = {"sibyl", "rocksdb"};
    printf("\n| engine | on-disk MiB | write amp (flush+compaction) | write amp incl. WAL | peak RSS MiB | peak anon "
           "MiB | peak file MiB | memtable + cache budget MiB |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < 2; i++) {
        if (!rs[i]) continue;
        printf("| %s | %.1f | %.2f | %.2f | %.1f | %.1f | %.1f | %.0f + %.0f |\n", names[i],
               (double)rs[i]->disk_bytes / 1048576.0, (double)rs[i]->flush_bytes / user,
               (double)(rs[i]->flush_bytes + rs[i]->wal_bytes) / user, (double)rs[i]->peak_rss_kb / 1024.0,
               (double)rs[i]->peak_anon_kb / 1024.0, (double)rs[i]->peak_file_kb / 1024.0,
               (double)rs[i]->memtable_budget / 1048576.0, (double)rs[i]->cache_budget / 1048576.0);
    }
    printf("\nPeak RSS per phase, anon / file MiB (sampled every 100 ms)\n| phase |");
    for (int i = 0; i < 2; i++)
        if (rs[i]) printf(" %s |", names[i]);
    printf("\n|---|%s\n", rs[1] ? "---|---|" : "---|");
    for (int p = 0; p < PH_N; p++) {
        printf("| %s |", ph_names[p]);
        for (int i = 0; i < 2; i++)
            if (rs[i])
                printf(" %.1f / %.1f |", (double)rs[i]->ph_anon_kb[p] / 1024.0, (double)rs[i]->ph_file_kb[p] / 1024.0);
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    char dir[4096];
    if (argc > 2) snprintf(dir, sizeof dir, "%s", argv[2]);
    else snprintf(dir, sizeof dir, "/tmp/bench_engine.%d", (int)getpid());
    mkdir(dir, 0755);
    if (n < 2) {
        fprintf(stderr, "usage: bench_engine [N >= 2] [DIR] [sibyl|rocksdb|both]  (SIBYL_BENCH_KEEP=1 keeps DIR)\n");
        return 2;
    }
    eng_result *res = mmap(NULL, 2 * sizeof *res, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(res, 0, 2 * sizeof *res);
    (void)dir_bytes; /* used by the RocksDB part only */
    const char *which = argc > 3 ? argv[3] : "both";
    if (strcmp(which, "rocksdb")) run_child(run_sibyl, dir, n, &res[0]);
#ifdef SIB_HAVE_ROCKSDB
    if (strcmp(which, "sibyl")) run_child(run_rocksdb, dir, n, &res[1]);
#endif
    print_table(n, &res[0], res[1].ran ? &res[1] : NULL);
    if (!getenv("SIBYL_BENCH_KEEP")) rm_tree(dir); /* kept for a look at the files */
    int rc = res[0].failed || (res[1].ran && res[1].failed);
    munmap(res, 2 * sizeof *res);
    return rc;
}
