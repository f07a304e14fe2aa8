/*
 * engine_workload.h -- the SIBYL-ENGINE-V1 storage-engine workload, as this
 * repository runs it (bench_engine.c drives Sibyl's engine and RocksDB through
 * the same streams in one process, so their ratio is measured on one machine
 * at one moment).
 *
 * The workload, in full:
 *
 *   N keys (default 1,000,000), R = 1,000,000 reads per read phase, one client
 *   thread, one synchronous put or get per operation.
 *
 *   Random streams: splitmix64. Each stream owns a 64-bit state that starts
 *   at its seed; a draw adds the golden-ratio increment and mixes:
 *       s += 0x9E3779B97F4A7C15
 *       z = (s ^ s>>30) * 0xBF58476D1CE4E5B9
 *       z = (z ^ z>>27) * 0x94D049BB133111EB
 *       return z ^ z>>31
 *
 *   A key is 16 bytes: the id (0..N-1) big-endian in bytes 0-7, then 8 bytes
 *   of 0x00 for a key that exists or 0xFF for an absent probe. Absent probes
 *   sort between present keys, so only a filter can reject them cheaply.
 *
 *   Fill order: ids 0..N-1 shuffled by Fisher-Yates from the top,
 *   j = draw(PERM) % (i + 1) for i = N-1 down to 1.
 *
 *   A value is 100 bytes: a stream seeded with VAL ^ (id * 2 + gen) gives 13
 *   draws, each laid out little-endian, the first 100 bytes kept (so values
 *   do not compress). gen is 0 for the fill and 1 for the overwrite.
 *
 *   Phases, on one freshly created database, in order:
 *     1 fillrandom          N puts in fill order, WAL on, no sync; then flush
 *                           and wait until compaction is idle ("settle").
 *     2 readrandom present  R gets of id = draw(READ) % N; each must hit.
 *     3 readrandom absent   R gets of the absent key of draw(ABSENT) % N;
 *                           each must miss.
 *     4 overwrite           N puts of id = draw(OVER) % N with gen 1; then
 *                           flush and settle as in phase 1.
 *
 *   Latency is CLOCK_MONOTONIC around the single engine call; a phase's rate
 *   is its operations over the wall time of its whole loop. Percentiles come
 *   from a log-linear histogram of nanoseconds with 64 sub-buckets per power
 *   of two (under 1.6% error). Engines are configured alike: LZ4, 64 MiB
 *   memtable, 10 bits per key of bloom filter, 64 MiB block cache, 4 KiB
 *   blocks. Write amplification is (flush + compaction bytes) / (puts * 116).
 *
 * Everything is static inline or static: one benchmark program includes it.
 */
#ifndef SIB_BENCH_ENGINE_WORKLOAD_H
#define SIB_BENCH_ENGINE_WORKLOAD_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SIBYL_SEED_PERM   0x5159B11E00000001ULL
#define SIBYL_SEED_VAL    0x5159B11E00000002ULL
#define SIBYL_SEED_READ   0x5159B11E00000003ULL
#define SIBYL_SEED_ABSENT 0x5159B11E00000004ULL
#define SIBYL_SEED_OVER   0x5159B11E00000005ULL
#define SIBYL_KEY_LEN 16
#define SIBYL_VAL_LEN 100

/* One draw of a splitmix64 stream whose state is *s. */
static inline uint64_t sm64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* The 16-byte key of id; absent != 0 gives the probe that sorts after it. */
static inline void sibyl_key(uint64_t id, int absent, char *k)
{
    for (int i = 0; i < 8; i++)
        k[i] = (char)(uint8_t)(id >> (8 * (7 - i)));
    memset(k + 8, absent ? 0xFF : 0x00, 8);
}

/* The 100-byte value of (id, gen). */
static inline void sibyl_value(uint64_t id, uint64_t gen, char *v)
{
    uint64_t s = SIBYL_SEED_VAL ^ (id * 2 + gen);
    uint8_t words[13 * 8];
    for (int w = 0; w < 13; w++) {
        uint64_t x = sm64(&s);
        for (int i = 0; i < 8; i++)
            words[w * 8 + i] = (uint8_t)(x >> (8 * i));
    }
    memcpy(v, words, SIBYL_VAL_LEN);
}

/* The fill order: a shuffled 0..n-1 (n >= 1). Caller frees. Exits on OOM,
 * as a benchmark has nothing better to do. */
static uint64_t *sibyl_perm(uint64_t n)
{
    uint64_t *p = malloc(n * sizeof *p);
    uint64_t s = SIBYL_SEED_PERM;
    if (!p) {
        perror("sibyl_perm");
        exit(1);
    }
    for (uint64_t i = 0; i < n; i++)
        p[i] = i;
    for (uint64_t i = n - 1; i >= 1; i--) {
        uint64_t j = sm64(&s) % (i + 1);
        uint64_t t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    return p;
}

static inline uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

/* Log-linear latency histogram: values under 64 ns are exact; above, each
 * power of two is split into 64 buckets by the six bits under the top one. */
#define H_SUB 64
#define H_BUCKETS (64 * H_SUB)
typedef struct {
    uint64_t c[H_BUCKETS];
    uint64_t n, max, sum;
} hist_t;

static inline int h_idx(uint64_t v)
{
    if (v < H_SUB)
        return (int)v;
    int top = 63 - __builtin_clzll(v);
    return (top - 5) * H_SUB + (int)((v >> (top - 6)) & (H_SUB - 1));
}

/* A value inside bucket i (its middle, for the buckets wider than 1 ns). */
static inline uint64_t h_val(int i)
{
    if (i < H_SUB)
        return (uint64_t)i;
    int top = i / H_SUB + 5, shift = top - 6;
    uint64_t lo = ((uint64_t)H_SUB | (uint64_t)(i % H_SUB)) << shift;
    return lo + (((uint64_t)1 << shift) >> 1);
}

static inline void h_add(hist_t *h, uint64_t v)
{
    h->c[h_idx(v)]++;
    h->n++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

/* The p-th percentile, in microseconds. */
static double h_pct_us(const hist_t *h, double p)
{
    uint64_t want = (uint64_t)(p / 100.0 * (double)h->n), seen = 0;
    if (want == 0)
        want = 1;
    for (int i = 0; i < H_BUCKETS; i++) {
        seen += h->c[i];
        if (seen >= want)
            return (double)h_val(i) / 1000.0;
    }
    return (double)h->max / 1000.0;
}

/* One machine-readable line per phase: RESULT engine=... phase=... */
static void report(const char *engine, const char *phase, uint64_t ops, uint64_t wall_ns,
                   const hist_t *h, const char *extra)
{
    double secs = (double)wall_ns / 1e9;
    printf("RESULT engine=%s phase=%s ops=%llu secs=%.3f ops_per_s=%.0f "
           "p50_us=%.2f p99_us=%.2f p99.9_us=%.2f p99.99_us=%.2f max_us=%.1f avg_us=%.2f%s%s\n",
           engine, phase, (unsigned long long)ops, secs, (double)ops / secs, h_pct_us(h, 50),
           h_pct_us(h, 99), h_pct_us(h, 99.9), h_pct_us(h, 99.99), (double)h->max / 1000.0,
           h->n ? (double)h->sum / (double)h->n / 1000.0 : 0.0, extra ? " " : "",
           extra ? extra : "");
    fflush(stdout);
}

/* Bytes allocated on disk by the regular files directly in path. */
static uint64_t dir_bytes(const char *path)
{
    DIR *d = opendir(path);
    uint64_t total = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));) {
        char p[4096];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_blocks * 512;
    }
    closedir(d);
    return total;
}

/* Bytes of the regular files under path whose names end in suffix (NULL:
 * every file), recursively: apparent sizes, or the blocks allocated.
 * Files vanishing meanwhile (a compaction's inputs) are skipped. */
static inline uint64_t tree_bytes_ex(const char *path, const char *suffix, int apparent)
{
    DIR *d = opendir(path);
    uint64_t tot = 0;
    char p[4096];
    if (!d)
        return 0;
    for (struct dirent *de; (de = readdir(d));) {
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (snprintf(p, sizeof p, "%s/%s", path, de->d_name) >= (int)sizeof p || lstat(p, &st))
            continue;
        size_t nl = strlen(de->d_name), sl = suffix ? strlen(suffix) : 0;
        if (S_ISDIR(st.st_mode))
            tot += tree_bytes_ex(p, suffix, apparent);
        else if (S_ISREG(st.st_mode) && (!suffix || (nl >= sl && !strcmp(de->d_name + nl - sl, suffix))))
            tot += apparent ? (uint64_t)st.st_size : (uint64_t)st.st_blocks * 512;
    }
    closedir(d);
    return tot;
}

/* Removes path and everything under it. */
static inline void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    char p[4096];
    for (struct dirent *de; d && (de = readdir(d));) {
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (snprintf(p, sizeof p, "%s/%s", path, de->d_name) >= (int)sizeof p)
            continue;
        if (!lstat(p, &st) && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(path);
}

#ifdef SIB_HAVE_ROCKSDB
#include <rocksdb/c.h>

/* A ticker's COUNT in rocksdb_options_statistics_get_string's text. */
static inline uint64_t rdb_stat_count(const char *stats, const char *name)
{
    const char *p = stats ? strstr(stats, name) : NULL;
    if (!p || !(p = strstr(p, "COUNT : ")))
        return 0;
    return strtoull(p + 8, NULL, 10);
}

static inline int rdb_put_db(rocksdb_t *db, rocksdb_writeoptions_t *wo, const char *k, const char *v)
{
    char *err = NULL;
    rocksdb_put(db, wo, k, SIBYL_KEY_LEN, v, SIBYL_VAL_LEN, &err);
    if (err) {
        fprintf(stderr, "rocksdb: put: %s\n", err);
        rocksdb_free(err);
        return -1;
    }
    return 0;
}

/* *found: the key has a 100-byte value. */
static inline int rdb_get_db(rocksdb_t *db, rocksdb_readoptions_t *ro, const char *k, int *found)
{
    char *err = NULL;
    size_t len = 0;
    char *v = rocksdb_get(db, ro, k, SIBYL_KEY_LEN, &len, &err);
    if (err) {
        fprintf(stderr, "rocksdb: get: %s\n", err);
        rocksdb_free(err);
        return -1;
    }
    *found = v && len == SIBYL_VAL_LEN;
    rocksdb_free(v);
    return 0;
}

/* Settle: flush (waiting for it), then poll until no compaction is running
 * and none is pending. A pending flag with nothing running for 2 s counts
 * as settled too: universal compaction raises it (score 1 at its
 * file-count trigger) when its picker then finds nothing worth merging,
 * and it stays up. */
static inline int rdb_settle_db(rocksdb_t *db)
{
    char *err = NULL;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    rocksdb_flush(db, fo, &err);
    rocksdb_flushoptions_destroy(fo);
    if (err) {
        fprintf(stderr, "rocksdb: flush: %s\n", err);
        rocksdb_free(err);
        return -1;
    }
    for (int idle = 0;; usleep(10000)) {
        uint64_t pending = 0, running = 0;
        rocksdb_property_int(db, "rocksdb.compaction-pending", &pending);
        rocksdb_property_int(db, "rocksdb.num-running-compactions", &running);
        if (!pending && !running)
            return 0;
        idle = running ? 0 : idle + 1;
        if (idle >= 200)
            return 0;
    }
}
#endif

#endif
