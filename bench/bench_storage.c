/* bench_storage: storage engine throughput, in-process.
 *
 *   bench_storage [N] [DIR]
 *
 * Measures (N defaults to 1,000,000; DIR to a fresh /tmp directory):
 *   memtable insert   N single-cell partitions (8-byte key, 16-byte value),
 *                     durable_writes=false path: builder + decode + B+tree + LWW
 *   memtable insert   N rows of 100 partitions, sequential clustering keys
 *   point lookup      N st_read of random existing partitions
 *   commitlog append  N/5 logged writes, periodic mode (write() into the page cache)
 *   commitlog append  N/20 logged writes with 1 KiB values, periodic mode
 *   commitlog append  N/5 logged writes, group mode (fsync per 2 ms window),
 *                     1024 writes in flight, acked by ev_async
 *   commitlog append  N/50 logged writes, batch mode, 1024 in flight
 * and prints ops/s, MB/s and memtable bytes per cell. Timing is wall clock.
 *
 * Built with RocksDB's C API (SIB_HAVE_ROCKSDB), the same run measures the
 * reference on the same keys and values: puts with the WAL off (memtable
 * only, write buffer large enough that nothing flushes), random gets, and
 * puts with the WAL on and no sync (the equivalent of periodic mode).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <ev.h>
#include <stdlib.h>
#include <unistd.h>

#include "storage.h"

#ifdef SIB_HAVE_ROCKSDB
#include <rocksdb/c.h>
#endif

static const uint8_t TID[16] = {0x5b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
#define NOW 1700000000
#define INFLIGHT 1024 /* concurrent writes waiting for their fsync (many clients) */

static double now_s(void) { return (double)sib_mono_ns() / 1e9; }

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char p[1024];
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static storage *open_store(const char *dir, st_sync_mode mode, struct ev_loop *loop)
{
    storage_opts o = {0};
    o.commitlog_dir = dir;
    o.sync = mode;
    o.loop = loop;
    storage *s;
    sib_err err;
    if (storage_open(&s, &o, &err)) {
        fprintf(stderr, "storage_open: %s\n", err.msg);
        exit(1);
    }
    return s;
}

static void die_apply(int rc, const sib_err *err)
{
    fprintf(stderr, "storage_apply: %d %s\n", rc, err ? err->msg : "");
    exit(1);
}

/* Fills m with partition i: 8-byte key, one cell of vlen bytes (<= 4096). */
static void build_kv_len(st_mutation *m, uint64_t i, size_t vlen)
{
    uint8_t pk[8], val[4096];
    put_be64(pk, mix(i));
    memset(val, 'v', vlen);
    put_be64(val, i);
    st_mutation_reset(m, TID, pk, sizeof pk);
    st_mut_row(m, NULL, 0);
    st_mut_cell(m, 1, val, vlen, 1000 + (int64_t)i, 0, 0);
}
static void build_kv(st_mutation *m, uint64_t i) { build_kv_len(m, i, 16); }

static void row_print(const char *what, size_t n, double secs, const char *extra)
{
    printf("%-36s %10zu %12.0f %s\n", what, n, (double)n / secs, extra);
}

static void bench_memtable(storage *s, size_t n)
{
    st_mutation *m = st_mutation_create(TID, NULL, 0);
    sib_err err;
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        build_kv(m, i);
        int rc = storage_apply_ex(s, &m, 1, ST_APPLY_NO_COMMITLOG, NULL, NULL, &err);
        if (rc) die_apply(rc, &err);
    }
    double t1 = now_s();
    storage_stats st;
    storage_get_stats(s, &st);
    char extra[128];
    snprintf(extra, sizeof extra, "%.1f B/cell (%zu MiB arena)", (double)st.memtable_bytes / (double)st.cells,
             st.memtable_bytes >> 20);
    row_print("memtable insert (partitions)", n, t1 - t0, extra);

    /* point lookups of existing keys, random order */
    st_table *t = storage_table(s, TID);
    size_t found = 0;
    t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        uint8_t pk[8];
        put_be64(pk, mix(mix(i + 7) % n));
        st_iter *it = st_read(t, pk, sizeof pk, NULL, 0, false, NOW);
        st_row r;
        if (st_iter_next(it, &r) && r.ncells == 1) found++;
        st_iter_destroy(it);
    }
    t1 = now_s();
    snprintf(extra, sizeof extra, "(%zu found)", found);
    row_print("point lookup (st_read)", n, t1 - t0, extra);
    st_mutation_destroy(m);
}

static void bench_rows(storage *s, size_t n)
{
    uint8_t tid[16];
    memcpy(tid, TID, 16);
    tid[15] ^= 0xff;
    st_mutation *m = st_mutation_create(tid, NULL, 0);
    sib_err err;
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        uint8_t pk[4], ck[8], val[16] = {0};
        put_be32(pk, (uint32_t)(i % 100));
        put_be64(ck, i / 100);
        st_mutation_reset(m, tid, pk, sizeof pk);
        st_mut_row(m, ck, sizeof ck);
        st_mut_cell(m, 1, val, sizeof val, 1000, 0, 0);
        int rc = storage_apply_ex(s, &m, 1, ST_APPLY_NO_COMMITLOG, NULL, NULL, &err);
        if (rc) die_apply(rc, &err);
    }
    double t1 = now_s();
    st_table_stats ts;
    st_table_get_stats(storage_table(s, tid), &ts);
    char extra[96];
    snprintf(extra, sizeof extra, "%.1f B/cell", (double)ts.memtable_bytes / (double)ts.cells);
    row_print("memtable insert (rows, 100 parts)", n, t1 - t0, extra);
    st_mutation_destroy(m);
}

static void bench_clog_periodic(const char *dir, size_t n, size_t vlen, const char *name)
{
    storage *s = open_store(dir, ST_SYNC_PERIODIC, NULL);
    st_mutation *m = st_mutation_create(TID, NULL, 0);
    sib_err err;
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        build_kv_len(m, i, vlen);
        int rc = storage_apply(s, &m, 1, NULL, NULL, &err);
        if (rc) die_apply(rc, &err);
    }
    double t1 = now_s();
    storage_stats st;
    storage_get_stats(s, &st);
    char extra[96];
    snprintf(extra, sizeof extra, "%.1f MB/s, %llu segments", (double)st.cl_bytes_written / (t1 - t0) / 1e6,
             (unsigned long long)st.cl_segments_created);
    row_print(name, n, t1 - t0, extra);
    st_mutation_destroy(m);
    storage_close(s);
}

typedef struct inflight { size_t n, acked; int rc; } inflight;
static void on_ack(void *ctx, int rc, const sib_err *err)
{
    inflight *f = ctx;
    f->n--;
    f->acked++;
    if (rc) f->rc = rc;
}

static void bench_clog_synced(const char *dir, size_t n, st_sync_mode mode, const char *name)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    storage *s = open_store(dir, mode, loop);
    st_mutation *m = st_mutation_create(TID, NULL, 0);
    sib_err err;
    inflight f = {0};
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        while (f.n >= INFLIGHT) ev_run(loop, EVRUN_ONCE);
        build_kv(m, i);
        int rc = storage_apply(s, &m, 1, on_ack, &f, &err);
        if (rc) die_apply(rc, &err);
        f.n++;
    }
    while (f.n) ev_run(loop, EVRUN_ONCE);
    double t1 = now_s();
    if (f.rc) die_apply(f.rc, NULL);
    storage_stats st;
    storage_get_stats(s, &st);
    char extra[96];
    snprintf(extra, sizeof extra, "%.1f MB/s, %llu fsyncs", (double)st.cl_bytes_written / (t1 - t0) / 1e6,
             (unsigned long long)st.cl_syncs);
    row_print(name, n, t1 - t0, extra);
    st_mutation_destroy(m);
    storage_close(s);
    ev_loop_destroy(loop);
}

#ifdef SIB_HAVE_ROCKSDB
static void rocks_check(char *e, const char *what)
{
    if (!e) return;
    fprintf(stderr, "rocksdb %s: %s\n", what, e);
    exit(1);
}

static void bench_rocksdb(const char *dir, size_t n)
{
    char *e = NULL;
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_write_buffer_size(o, (size_t)2 << 30);
    rocksdb_t *db = rocksdb_open(o, dir, &e);
    rocks_check(e, "open");
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(wo, 1);
    uint8_t pk[8], val[16];
    memset(val, 'v', sizeof val);
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        put_be64(pk, mix(i));
        put_be64(val, i);
        rocksdb_put(db, wo, (const char *)pk, sizeof pk, (const char *)val, sizeof val, &e);
        rocks_check(e, "put");
    }
    double t1 = now_s();
    char *mem = rocksdb_property_value(db, "rocksdb.cur-size-all-mem-tables");
    char extra[96];
    snprintf(extra, sizeof extra, "%.1f B/entry", mem ? (double)strtoull(mem, NULL, 10) / (double)n : 0.0);
    free(mem);
    row_print("rocksdb put, WAL off (memtable)", n, t1 - t0, extra);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    size_t found = 0;
    t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        size_t vl;
        put_be64(pk, mix(mix(i + 7) % n));
        char *v = rocksdb_get(db, ro, (const char *)pk, sizeof pk, &vl, &e);
        rocks_check(e, "get");
        if (v) found++;
        free(v);
    }
    t1 = now_s();
    snprintf(extra, sizeof extra, "(%zu found)", found);
    row_print("rocksdb get", n, t1 - t0, extra);
    rocksdb_writeoptions_disable_WAL(wo, 0);
    rocksdb_writeoptions_set_sync(wo, 0);
    size_t m = n / 5;
    t0 = now_s();
    for (size_t i = 0; i < m; i++) {
        put_be64(pk, mix(i + n));
        rocksdb_put(db, wo, (const char *)pk, sizeof pk, (const char *)val, sizeof val, &e);
        rocks_check(e, "put");
    }
    t1 = now_s();
    row_print("rocksdb put, WAL on, no sync", m, t1 - t0, "");
    rocksdb_readoptions_destroy(ro);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_close(db);
    rocksdb_destroy_db(o, dir, &e);
    free(e);
    rocksdb_options_destroy(o);
}
#endif

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    char dir[256];
    if (argc > 2) snprintf(dir, sizeof dir, "%s", argv[2]);
    else {
        snprintf(dir, sizeof dir, "/tmp/sibyl-bench.XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    if (n < 1000) n = 1000;
    printf("%-36s %10s %12s %s\n", "benchmark", "ops", "ops/s", "notes");
    storage *s = open_store(dir, ST_SYNC_PERIODIC, NULL);
    bench_memtable(s, n);
    bench_rows(s, n);
    storage_close(s);
    rm_rf(dir);
    mkdir(dir, 0755);
    bench_clog_periodic(dir, n / 5, 16, "commitlog+memtable, periodic");
    rm_rf(dir);
    mkdir(dir, 0755);
    bench_clog_periodic(dir, n / 20, 1024, "commitlog+memtable, periodic, 1KiB");
    rm_rf(dir);
    mkdir(dir, 0755);
    bench_clog_synced(dir, n / 5, ST_SYNC_GROUP, "commitlog+memtable, group 2ms");
    rm_rf(dir);
    mkdir(dir, 0755);
    bench_clog_synced(dir, n / 50, ST_SYNC_BATCH, "commitlog+memtable, batch");
    rm_rf(dir);
#ifdef SIB_HAVE_ROCKSDB
    char rdir[300];
    snprintf(rdir, sizeof rdir, "%s.rocksdb", dir);
    bench_rocksdb(rdir, n);
#endif
    return 0;
}
