/* Unit tests for storage/ through its public header: LWW ties, row markers,
 * tombstones, TTL, slices, scans, commitlog replay (torn and corrupt tails,
 * truncate/drop), sync-mode completions on a libev loop, the block cache
 * (hits, bound, compaction and truncate dropping blocks). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <ev.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage.h"
#include "storage_int.h" /* st_prefault: memtable memory faulted in ahead */

static const uint8_t T1[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t T2[16] = {0xaa, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
#define NOW 1700000000

typedef struct fx {
    char dir[64];
    storage *s;
} fx;

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char p[512];
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static storage *open_st(const char *dir, st_sync_mode mode, struct ev_loop *loop, size_t segsz)
{
    storage_opts o = {0};
    o.commitlog_dir = dir;
    o.sync = mode;
    o.loop = loop;
    o.segment_size = segsz;
    storage *s;
    sib_err err = {0};
    int rc = storage_open(&s, &o, &err);
    if (rc) fprintf(stderr, "open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    return s;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/sibst.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->s = open_st(f->dir, ST_SYNC_PERIODIC, NULL, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    storage_close(f->s);
    rm_rf(f->dir);
    free(f);
    return 0;
}

static void reopen(fx *f, storage_replay_stats *st)
{
    storage_close(f->s);
    f->s = open_st(f->dir, ST_SYNC_PERIODIC, NULL, 0);
    sib_err err;
    assert_int_equal(storage_replay(f->s, st, &err), 0);
}

static void apply1(storage *s, st_mutation *m)
{
    sib_err err = {0};
    int rc = storage_apply(s, &m, 1, NULL, NULL, &err);
    if (rc) fprintf(stderr, "apply: %s\n", err.msg);
    assert_int_equal(rc, 0);
    st_mutation_destroy(m);
}

static st_mutation *mut(const char *pk) { return st_mutation_create(T1, (const uint8_t *)pk, strlen(pk)); }

static void put(storage *s, const char *pk, const char *ck, uint32_t col, const char *val, int64_t ts, int32_t ttl,
                int32_t exp)
{
    st_mutation *m = mut(pk);
    assert_int_equal(st_mut_row(m, (const uint8_t *)ck, strlen(ck)), 0);
    assert_int_equal(st_mut_cell(m, col, (const uint8_t *)val, strlen(val), ts, ttl, exp), 0);
    apply1(s, m);
}

static void del_cell(storage *s, const char *pk, const char *ck, uint32_t col, int64_t ts, int32_t ldt)
{
    st_mutation *m = mut(pk);
    st_mut_row(m, (const uint8_t *)ck, strlen(ck));
    assert_int_equal(st_mut_cell_tombstone(m, col, ts, ldt), 0);
    apply1(s, m);
}

/* Value of (pk, ck, col) at now, or NULL; returns a static copy. */
static const char *get_at(storage *s, const char *pk, const char *ck, uint32_t col, int32_t now)
{
    static char buf[1024];
    st_table *t = storage_table(s, T1);
    st_slice sl = {{(const uint8_t *)ck, strlen(ck), true, false}, {(const uint8_t *)ck, strlen(ck), true, false}};
    st_iter *it = st_read(t, (const uint8_t *)pk, strlen(pk), &sl, 1, false, now);
    st_row r;
    const char *res = NULL;
    while (st_iter_next(it, &r)) {
        if (r.cklen != strlen(ck) || memcmp(r.ck, ck, r.cklen)) continue;
        for (size_t i = 0; i < r.ncells; i++) {
            if (r.cells[i].col != col) continue;
            assert_true(r.cells[i].vlen < sizeof buf);
            memcpy(buf, r.cells[i].val, r.cells[i].vlen);
            buf[r.cells[i].vlen] = 0;
            res = buf;
        }
    }
    st_iter_destroy(it);
    return res;
}
static const char *get(storage *s, const char *pk, const char *ck, uint32_t col)
{
    return get_at(s, pk, ck, col, NOW);
}

/* Clustering keys of the live rows, joined with ',' */
static const char *rows_str(storage *s, const char *pk, const st_slice *sl, size_t n, bool rev, int32_t now)
{
    static char buf[1024];
    buf[0] = 0;
    st_iter *it = st_read(storage_table(s, T1), (const uint8_t *)pk, strlen(pk), sl, n, rev, now);
    st_row r;
    while (st_iter_next(it, &r)) {
        if (buf[0]) strcat(buf, ",");
        strncat(buf, (const char *)r.ck, r.cklen);
    }
    assert_int_equal(st_iter_status(it, NULL), 0);
    st_iter_destroy(it);
    return buf;
}

typedef struct cb_state { int calls, rc; } cb_state;
static void on_done(void *ctx, int rc, const sib_err *err)
{
    cb_state *c = ctx;
    c->calls++;
    c->rc = rc;
}

/* ---- LWW ---- */

static void test_lww_timestamps_and_ties(void **state)
{
    fx *f = *state;
    storage *s = f->s;
    /* higher timestamp wins whatever the arrival order */
    put(s, "a", "", 1, "new", 20, 0, 0);
    put(s, "a", "", 1, "old", 10, 0, 0);
    assert_string_equal(get(s, "a", "", 1), "new");
    /* equal ts, both live: greater value wins (either order); "ab" < "abc" */
    put(s, "b", "", 1, "ab", 10, 0, 0);
    put(s, "b", "", 1, "abc", 10, 0, 0);
    put(s, "b", "", 1, "aa", 10, 0, 0);
    assert_string_equal(get(s, "b", "", 1), "abc");
    /* equal ts: tombstone beats live, in both orders */
    put(s, "c", "", 1, "zzz", 10, 0, 0);
    del_cell(s, "c", "", 1, 10, NOW - 100);
    assert_null(get(s, "c", "", 1));
    del_cell(s, "d", "", 1, 10, NOW - 100);
    put(s, "d", "", 1, "zzz", 10, 0, 0);
    assert_null(get(s, "d", "", 1));
    /* equal ts: expiring beats plain live even with a smaller value (CASSANDRA-14592) */
    put(s, "e", "", 1, "zzz", 10, 0, 0);
    put(s, "e", "", 1, "aaa", 10, 100, NOW + 100);
    assert_string_equal(get(s, "e", "", 1), "aaa");
    put(s, "e2", "", 1, "aaa", 10, 100, NOW + 100);
    put(s, "e2", "", 1, "zzz", 10, 0, 0);
    assert_string_equal(get(s, "e2", "", 1), "aaa");
    /* equal ts: tombstone beats expiring */
    put(s, "f", "", 1, "x", 10, 100, NOW + 100);
    del_cell(s, "f", "", 1, 10, NOW - 1000);
    assert_null(get(s, "f", "", 1));
    /* equal ts, both expiring: later expiry wins over a greater value */
    put(s, "g", "", 1, "zzz", 10, 100, NOW + 100);
    put(s, "g", "", 1, "aaa", 10, 200, NOW + 200);
    put(s, "g", "", 1, "mmm", 10, 50, NOW + 50);
    assert_string_equal(get(s, "g", "", 1), "aaa");
    /* a higher-timestamp live cell beats an older tombstone */
    del_cell(s, "h", "", 1, 10, NOW);
    put(s, "h", "", 1, "back", 11, 0, 0);
    assert_string_equal(get(s, "h", "", 1), "back");
    /* both tombstones, equal ts: the later ldt wins; neither shows */
    del_cell(s, "i", "", 1, 10, NOW);
    del_cell(s, "i", "", 1, 10, NOW + 5);
    assert_null(get(s, "i", "", 1));
}

/* A superseding value of the same size is written over the old cell: the
 * memtable does not grow, and LWW still decides (an older write of the same
 * size changes nothing). */
static void test_overwrite_in_place(void **state)
{
    fx *f = *state;
    storage *s = f->s;
    st_table_stats st;
    /* and a second column of 200-byte values */
    char big[201];
    put(s, "k", "", 1, "v000", 10, 0, 0);
    snprintf(big, sizeof big, "%04d%0196d", 0, 0);
    put(s, "k", "", 2, big, 10, 0, 0);
    st_table_get_stats(storage_table(s, T1), &st);
    size_t before = st.memtable_bytes;
    for (int i = 1; i <= 8000; i++) {
        snprintf(big, sizeof big, "%04d%0196d", i, 0);
        put(s, "k", "", 2, big, 10 + i, 0, 0);
    }
    for (int i = 1; i <= 1000; i++) {
        char v[8];
        snprintf(v, sizeof v, "v%03d", i % 1000);
        put(s, "k", "", 1, v, 10 + i, 0, 0);
    }
    assert_string_equal(get(s, "k", "", 1), "v000");
    assert_memory_equal(get(s, "k", "", 2), "8000", 4);
    put(s, "k", "", 1, "old!", 5, 0, 0);
    assert_string_equal(get(s, "k", "", 1), "v000");
    st_table_get_stats(storage_table(s, T1), &st);
    assert_int_equal(st.memtable_bytes, before);
    /* expiring and tombstone versions of the same size also replace in place */
    put(s, "k", "", 1, "ttl!", 2000, 100, NOW + 100);
    assert_string_equal(get(s, "k", "", 1), "ttl!");
    assert_null(get_at(s, "k", "", 1, NOW + 101));
    /* a longer value needs a new cell, and wins by its timestamp */
    put(s, "k", "", 1, "longer value", 2001, 0, 0);
    assert_string_equal(get(s, "k", "", 1), "longer value");
    del_cell(s, "k", "", 1, 2002, NOW);
    assert_null(get(s, "k", "", 1));
    put(s, "k", "", 1, "back", 2003, 0, 0);
    assert_string_equal(get(s, "k", "", 1), "back");
}

/* A KV record rebuilt by every write that changes its shape would leave a
 * copy of itself behind each time: a collection grown one element at a
 * time must not make the memtable grow with the square of its size. Past a
 * small size the partition becomes a general one; its content stays. */
static void test_kv_growing_collection(void **state)
{
    fx *f = *state;
    enum { N = 3000 };
    char path[8], val[24];
    put(f->s, "coll", "", 1, "plain", 10, 0, 0);
    for (int i = 0; i < N; i++) {
        st_mutation *m = mut("coll");
        st_mut_row(m, (const uint8_t *)"", 0);
        snprintf(path, sizeof path, "e%04d", i);
        snprintf(val, sizeof val, "value-%d", i);
        st_mut_cell_path(m, 5, (const uint8_t *)path, strlen(path), (const uint8_t *)val, strlen(val), 10 + i, 0, 0);
        apply1(f->s, m);
    }
    st_table_stats ts;
    st_table_get_stats(storage_table(f->s, T1), &ts);
    assert_true(ts.memtable_bytes < (4u << 20)); /* about 100 MB if every write copied the row */
    assert_int_equal(ts.rows, 1);
    assert_int_equal(ts.cells, N + 1);
    st_iter *it = st_read(storage_table(f->s, T1), (const uint8_t *)"coll", 4, NULL, 0, false, NOW);
    st_row r;
    assert_true(st_iter_next(it, &r));
    assert_int_equal(r.ncells, N + 1);
    assert_int_equal(r.cells[0].col, 1);
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof path, "e%04d", i);
        snprintf(val, sizeof val, "value-%d", i);
        assert_int_equal(r.cells[i + 1].pathlen, strlen(path));
        assert_memory_equal(r.cells[i + 1].path, path, strlen(path));
        assert_memory_equal(r.cells[i + 1].val, val, strlen(val));
    }
    assert_false(st_iter_next(it, &r));
    st_iter_destroy(it);
    /* and one mutation of more cells than a KV record holds */
    st_mutation *m = mut("wide");
    st_mut_row(m, (const uint8_t *)"", 0);
    for (int i = 0; i < 70000; i++) {
        snprintf(path, sizeof path, "%05d", i);
        assert_int_equal(st_mut_cell_path(m, 5, (const uint8_t *)path, 5, (const uint8_t *)"x", 1, 5, 0, 0), 0);
    }
    apply1(f->s, m);
    it = st_read(storage_table(f->s, T1), (const uint8_t *)"wide", 4, NULL, 0, false, NOW);
    assert_true(st_iter_next(it, &r));
    assert_int_equal(r.ncells, 70000);
    assert_memory_equal(r.cells[69999].path, "69999", 5);
    st_iter_destroy(it);
}

/* A commitlog segment gets its blocks when it is made (fallocate, size
 * kept): appends then never allocate under the inode's lock while the
 * kernel writes earlier pages back. Skipped where the file system cannot
 * preallocate. */
static void test_segments_preallocated(void **state)
{
    fx *f = *state;
    char probe[300];
    snprintf(probe, sizeof probe, "%s/probe", f->dir);
    int fd = open(probe, O_CREAT | O_WRONLY, 0644);
    assert_true(fd >= 0);
    bool can = fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 << 20) == 0;
    close(fd);
    unlink(probe);
    if (!can) skip();
    storage_close(f->s);
    rm_rf(f->dir);
    assert_int_equal(mkdir(f->dir, 0755), 0);
    f->s = open_st(f->dir, ST_SYNC_PERIODIC, NULL, 4 << 20);
    put(f->s, "p", "", 1, "v", 1, 0, 0);
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".log") || strstr(e->d_name, ".tmp")) continue;
        char path[600];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", f->dir, e->d_name);
        assert_int_equal(stat(path, &st), 0);
        assert_true(st.st_size < 4096);                       /* the size is what was written */
        assert_true((uint64_t)st.st_blocks * 512 >= 4u << 20); /* the blocks are the segment's */
        seen++;
    }
    closedir(d);
    assert_true(seen >= 1);
}

/* ---- row markers ---- */

static void test_row_marker(void **state)
{
    fx *f = *state;
    storage *s = f->s;
    /* INSERT: marker + cell; deleting the cell keeps the row */
    st_mutation *m = mut("p");
    st_mut_row(m, (const uint8_t *)"r1", 2);
    st_mut_row_marker(m, 10, 0, ST_NO_DELETION_TIME);
    st_mut_cell(m, 1, (const uint8_t *)"v", 1, 10, 0, 0);
    apply1(s, m);
    /* UPDATE: cell only */
    put(s, "p", "r2", 1, "v", 10, 0, 0);
    assert_string_equal(rows_str(s, "p", NULL, 0, false, NOW), "r1,r2");
    del_cell(s, "p", "r1", 1, 11, NOW);
    del_cell(s, "p", "r2", 1, 11, NOW);
    assert_string_equal(rows_str(s, "p", NULL, 0, false, NOW), "r1");
    st_iter *it = st_read(storage_table(s, T1), (const uint8_t *)"p", 1, NULL, 0, false, NOW);
    st_row r;
    assert_true(st_iter_next(it, &r));
    assert_true(r.has_marker);
    assert_int_equal(r.marker_ts, 10);
    assert_int_equal(r.ncells, 0);
    st_iter_destroy(it);
    assert_true(st_partition_live(storage_table(s, T1), (const uint8_t *)"p", 1, NOW));
    /* a row deletion at the marker's timestamp shadows it (ties go to deletions) */
    m = mut("p");
    st_mut_row(m, (const uint8_t *)"r1", 2);
    st_mut_row_delete(m, 10, NOW);
    apply1(s, m);
    assert_string_equal(rows_str(s, "p", NULL, 0, false, NOW), "");
    assert_false(st_partition_live(storage_table(s, T1), (const uint8_t *)"p", 1, NOW));
    /* an expiring marker keeps the row until it expires */
    m = mut("q");
    st_mut_row(m, (const uint8_t *)"r", 1);
    st_mut_row_marker(m, 10, 60, NOW + 60);
    apply1(s, m);
    assert_string_equal(rows_str(s, "q", NULL, 0, false, NOW + 59), "r");
    assert_string_equal(rows_str(s, "q", NULL, 0, false, NOW + 60), "");
    /* on a marker tie, the expiring one wins over the plain one */
    m = mut("q");
    st_mut_row(m, (const uint8_t *)"r", 1);
    st_mut_row_marker(m, 10, 0, ST_NO_DELETION_TIME);
    apply1(s, m);
    assert_string_equal(rows_str(s, "q", NULL, 0, false, NOW + 60), "");
}

/* ---- tombstones ---- */

static void test_partition_and_row_tombstones(void **state)
{
    fx *f = *state;
    storage *s = f->s;
    put(s, "p", "a", 1, "v", 10, 0, 0);
    put(s, "p", "b", 1, "v", 20, 0, 0);
    put(s, "p", "c", 1, "v", 30, 0, 0);
    st_mutation *m = mut("p");
    st_mut_partition_delete(m, 20, NOW);
    apply1(s, m);
    assert_string_equal(rows_str(s, "p", NULL, 0, false, NOW), "c");
    /* older writes after the deletion stay shadowed, newer ones show */
    put(s, "p", "a", 1, "v", 15, 0, 0);
    put(s, "p", "b", 1, "v", 21, 0, 0);
    assert_string_equal(rows_str(s, "p", NULL, 0, false, NOW), "b,c");
    /* row deletion */
    m = mut("p");
    st_mut_row(m, (const uint8_t *)"c", 1);
    st_mut_row_delete(m, 30, NOW);
    apply1(s, m);
    assert_string_equal(rows_str(s, "p", NULL, 0, false, NOW), "b");
    /* an older partition deletion does not undo a newer one */
    m = mut("p");
    st_mut_partition_delete(m, 5, NOW);
    apply1(s, m);
    assert_string_equal(rows_str(s, "p", NULL, 0, false, NOW), "b");
    /* partitions with only tombstones are not live */
    m = mut("z");
    st_mut_partition_delete(m, 5, NOW);
    apply1(s, m);
    assert_false(st_partition_live(storage_table(s, T1), (const uint8_t *)"z", 1, NOW));
}

static void test_range_tombstones(void **state)
{
    fx *f = *state;
    storage *s = f->s;
    const char *cks[] = {"a1", "a2", "b1", "b2", "c1", "c2"};
    for (int i = 0; i < 6; i++) put(s, "p", cks[i], 1, "v", 10, 0, 0);
    /* prefix "b" inclusive on both sides: all b* rows */
    st_mutation *m = mut("p");
    st_bound st = {(const uint8_t *)"b", 1, true, false}, en = {(const uint8_t *)"b", 1, true, false};
    st_mut_range_delete(m, &st, &en, 10, NOW);
    apply1(s, m);
    assert_string_equal(rows_str(s, "p", NULL, 0, false, NOW), "a1,a2,c1,c2");
    /* (a1, c) exclusive: a2 only (c* excluded by exclusive prefix end) */
    m = mut("p");
    st_bound s2 = {(const uint8_t *)"a1", 2, false, false}, e2 = {(const uint8_t *)"c", 1, false, false};
    st_mut_range_delete(m, &s2, &e2, 10, NOW);
    apply1(s, m);
    assert_string_equal(rows_str(s, "p", NULL, 0, false, NOW), "a1,c1,c2");
    /* newer writes inside a deleted range survive */
    put(s, "p", "b1", 1, "v", 11, 0, 0);
    assert_string_equal(rows_str(s, "p", NULL, 0, false, NOW), "a1,b1,c1,c2");
    /* unbounded start up to c1 inclusive, older than the b1 rewrite */
    m = mut("p");
    st_bound s3 = {NULL, 0, false, true}, e3 = {(const uint8_t *)"c1", 2, true, false};
    st_mut_range_delete(m, &s3, &e3, 10, NOW);
    apply1(s, m);
    assert_string_equal(rows_str(s, "p", NULL, 0, false, NOW), "b1,c2");
    /* the static row is not covered by range tombstones, only by partition deletions */
    m = mut("p");
    st_mut_static(m);
    st_mut_cell(m, 9, (const uint8_t *)"s", 1, 5, 0, 0);
    apply1(s, m);
    m = mut("p");
    st_bound all_s = {NULL, 0, false, true}, all_e = {NULL, 0, false, true};
    st_mut_range_delete(m, &all_s, &all_e, 50, NOW);
    apply1(s, m);
    assert_string_equal(rows_str(s, "p", NULL, 0, false, NOW), "");
    st_iter *it = st_read(storage_table(s, T1), (const uint8_t *)"p", 1, NULL, 0, false, NOW);
    st_row r;
    assert_true(st_iter_static(it, &r));
    assert_true(r.is_static);
    assert_int_equal(r.ncells, 1);
    assert_int_equal(r.cells[0].col, 9);
    st_iter_destroy(it);
    assert_true(st_partition_live(storage_table(s, T1), (const uint8_t *)"p", 1, NOW));
    m = mut("p");
    st_mut_partition_delete(m, 5, NOW);
    apply1(s, m);
    assert_false(st_partition_live(storage_table(s, T1), (const uint8_t *)"p", 1, NOW));
}

static void test_ttl_expiry(void **state)
{
    fx *f = *state;
    storage *s = f->s;
    put(s, "p", "r", 1, "old", 5, 0, 0);
    put(s, "p", "r", 1, "ttl", 10, 100, NOW + 100);
    assert_string_equal(get_at(s, "p", "r", 1, NOW + 99), "ttl");
    /* expired at now == expiry, and it still shadows the older value */
    assert_null(get_at(s, "p", "r", 1, NOW + 100));
    assert_string_equal(rows_str(s, "p", NULL, 0, false, NOW + 100), "");
    st_iter *it = st_read(storage_table(s, T1), (const uint8_t *)"p", 1, NULL, 0, false, NOW);
    st_row r;
    assert_true(st_iter_next(it, &r));
    assert_int_equal(r.cells[0].ttl, 100);
    assert_int_equal(r.cells[0].expiry, NOW + 100);
    assert_int_equal(r.cells[0].ts, 10);
    st_iter_destroy(it);
}

static void test_slices_and_reversed(void **state)
{
    fx *f = *state;
    storage *s = f->s;
    char ck[16];
    for (int i = 0; i < 200; i++) { /* enough rows for several B+tree leaves */
        snprintf(ck, sizeof ck, "k%03d", i);
        put(s, "p", ck, 1, "v", 10, 0, 0);
    }
    st_slice sl[2] = {
        {{(const uint8_t *)"k010", 4, true, false}, {(const uint8_t *)"k012", 4, true, false}},
        {{(const uint8_t *)"k197", 4, false, false}, {NULL, 0, false, true}},
    };
    assert_string_equal(rows_str(s, "p", sl, 2, false, NOW), "k010,k011,k012,k198,k199");
    assert_string_equal(rows_str(s, "p", sl, 2, true, NOW), "k199,k198,k012,k011,k010");
    st_slice ex = {{(const uint8_t *)"k010", 4, false, false}, {(const uint8_t *)"k013", 4, false, false}};
    assert_string_equal(rows_str(s, "p", &ex, 1, true, NOW), "k012,k011");
    st_slice pre = {{(const uint8_t *)"k00", 3, true, false}, {(const uint8_t *)"k00", 3, true, false}};
    assert_string_equal(rows_str(s, "p", &pre, 1, false, NOW), "k000,k001,k002,k003,k004,k005,k006,k007,k008,k009");
    /* whole partition, reversed */
    const char *all = rows_str(s, "p", NULL, 0, true, NOW);
    assert_int_equal(strncmp(all, "k199,k198,", 10), 0);
    assert_int_equal(strlen(all), 200 * 5 - 1);
    /* writes between st_iter_next calls: the iterator re-seeks */
    st_iter *it = st_read(storage_table(s, T1), (const uint8_t *)"p", 1, NULL, 0, false, NOW);
    st_row r;
    assert_true(st_iter_next(it, &r));
    assert_memory_equal(r.ck, "k000", 4);
    put(s, "p", "k000a", 1, "v", 10, 0, 0);
    for (int i = 0; i < 100; i++) {
        snprintf(ck, sizeof ck, "j%03d", i);
        put(s, "p", ck, 1, "v", 10, 0, 0);
    }
    assert_true(st_iter_next(it, &r));
    assert_int_equal(r.cklen, 5);
    assert_memory_equal(r.ck, "k000a", 5);
    assert_true(st_iter_next(it, &r));
    assert_memory_equal(r.ck, "k001", 4);
    st_iter_destroy(it);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Many rows in random order (B+tree splits at every level), checked against
 * a sorted reference forwards, backwards, and through random slices. */
/* Point reads and overwrites of a memtable go through its ordered index,
 * which doubles (1024 homes first) as it fills: every partition written
 * must be found before and after each doubling, absent ones must not be,
 * and overwrites must land on the existing partition (one row each, the
 * newest value). */
static void test_memtable_index_many_partitions(void **state)
{
    fx *f = *state;
    enum { N = 40000 }; /* six doublings */
    char pk[32], val[32];
    for (int i = 0; i < N; i++) {
        snprintf(pk, sizeof pk, "part%d", i);
        snprintf(val, sizeof val, "old%d", i);
        put(f->s, pk, "c", 1, val, 10, 0, 0);
        snprintf(pk, sizeof pk, "part%d", i / 2); /* an overwrite, often of a moved slot */
        snprintf(val, sizeof val, "v%d", i / 2);
        put(f->s, pk, "c", 1, val, 11 + i % 2, 0, 0);
        if (i % 1000 == 999) { /* mid-way through moves */
            snprintf(pk, sizeof pk, "part%d", i);
            assert_non_null(get(f->s, pk, "c", 1));
        }
    }
    for (int i = N / 2; i < N; i++) { /* those not overwritten above */
        snprintf(pk, sizeof pk, "part%d", i);
        snprintf(val, sizeof val, "v%d", i);
        put(f->s, pk, "c", 1, val, 12, 0, 0);
    }
    for (int i = 0; i < N; i++) {
        snprintf(pk, sizeof pk, "part%d", i);
        snprintf(val, sizeof val, "v%d", i);
        const char *got = get(f->s, pk, "c", 1);
        assert_non_null(got);
        assert_string_equal(got, val);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(pk, sizeof pk, "absent%d", i);
        assert_null(get(f->s, pk, "c", 1));
    }
    st_table_stats ts;
    st_table_get_stats(storage_table(f->s, T1), &ts);
    assert_int_equal(ts.partitions, N);
    assert_int_equal(ts.rows, N);
}

/* The memtable's partitions sit in one ordered index (linear probing with
 * homes monotone in the token, kept sorted, doubling as it fills): scans
 * from the start or from any position, exclusive or inclusive, by key or
 * by token alone, must see every partition once in (token, key) order,
 * also while partitions are added between calls. Enough partitions that
 * some share the high 32 bits of their tokens (the index slot's part):
 * their order comes from the full token. */
typedef struct tk { int64_t token; char key[12]; } tk;

static int tk_cmp(const void *a, const void *b)
{
    const tk *x = a, *y = b;
    if (x->token != y->token) return x->token < y->token ? -1 : 1;
    return strcmp(x->key, y->key);
}

static void test_memtable_index_order(void **state)
{
    fx *f = *state;
    enum { N = 200000 };
    tk *ref = malloc(N * sizeof *ref);
    assert_non_null(ref);
    for (int i = 0; i < N; i++) {
        snprintf(ref[i].key, sizeof ref[i].key, "q%d", i);
        ref[i].token = sib_murmur3_token(ref[i].key, strlen(ref[i].key));
        put(f->s, ref[i].key, "", 1, "v", 10, 0, 0);
    }
    qsort(ref, N, sizeof *ref, tk_cmp);
    int ties = 0;
    for (int i = 1; i < N; i++) ties += (uint64_t)ref[i].token >> 32 == (uint64_t)ref[i - 1].token >> 32;
    assert_true(ties >= 1);
    st_table *t = storage_table(f->s, T1);
    const uint8_t *pk;
    size_t len;
    int64_t tok;
    /* all, in order */
    st_scan *sc = st_scan_open(t, NULL, NOW);
    int n = 0;
    while (st_scan_next_partition(sc, &pk, &len, &tok)) {
        assert_true(n < N);
        assert_int_equal(tok, ref[n].token);
        assert_int_equal(len, strlen(ref[n].key));
        assert_memory_equal(pk, ref[n].key, len);
        n++;
    }
    assert_int_equal(n, N);
    st_scan_destroy(sc);
    /* from positions */
    uint64_t x = 12345;
    for (int k = 0; k < 300; k++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int i = (int)((x >> 33) % (N - 1));
        if (k < 20) { /* each tie: start at the first or second of the pair */
            for (int j = i; j < N - 1; j++)
                if ((uint64_t)ref[j].token >> 32 == (uint64_t)ref[j + 1].token >> 32) {
                    i = j + (k & 1);
                    break;
                }
        }
        bool incl = k % 3 != 0, bykey = k % 4 != 0;
        st_position pos = {ref[i].token, bykey ? (const uint8_t *)ref[i].key : NULL, bykey ? strlen(ref[i].key) : 0, incl};
        int want = i;
        if (!bykey) { /* by token: the first of that token, or past all of them */
            while (want > 0 && ref[want - 1].token == ref[i].token) want--;
            if (!incl)
                while (want < N && ref[want].token == ref[i].token) want++;
        } else if (!incl) {
            want = i + 1;
        }
        sc = st_scan_open(t, &pos, NOW);
        for (int m = 0; m < 3 && want + m < N; m++) {
            assert_true(st_scan_next_partition(sc, &pk, &len, &tok));
            assert_int_equal(tok, ref[want + m].token);
            assert_memory_equal(pk, ref[want + m].key, len);
        }
        st_scan_destroy(sc);
    }
    /* partitions added while a scan runs: the old ones still come once each, in order */
    sc = st_scan_open(t, NULL, NOW);
    n = 0;
    int added = 0;
    int64_t last = INT64_MIN;
    while (st_scan_next_partition(sc, &pk, &len, &tok)) {
        assert_true(tok >= last);
        last = tok;
        if (n < N && tok == ref[n].token && len == strlen(ref[n].key) && !memcmp(pk, ref[n].key, len)) n++;
        if (added < 3000 && (n + added) % 50 == 0) {
            char k2[16];
            snprintf(k2, sizeof k2, "new%d", added++);
            put(f->s, k2, "", 1, "v", 10, 0, 0);
        }
    }
    assert_int_equal(n, N);
    assert_int_equal(added, 3000);
    st_scan_destroy(sc);
    for (int i = 0; i < N; i += 97) assert_string_equal(get(f->s, ref[i].key, "", 1), "v");
    assert_null(get(f->s, "absent", "", 1));
    free(ref);
}

static void test_many_rows_random_order(void **state)
{
    fx *f = *state;
    enum { N = 6000 };
    static char keys[N][12];
    static char *sorted[N];
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* variable-length keys sharing long prefixes exercise the tie path */
        snprintf(keys[i], sizeof keys[i], "pfx%0*llu", (int)(1 + x % 8), (unsigned long long)(x % 100000000));
    }
    int n = 0;
    for (int i = 0; i < N; i++) {
        put(f->s, "p", keys[i], 1, "v", 10, 0, 0);
        put(f->s, "p", keys[i], 1, "w", 10, 0, 0); /* re-write: must not duplicate */
    }
    for (int i = 0; i < N; i++) sorted[i] = keys[i];
    qsort(sorted, N, sizeof *sorted, cmp_str);
    for (int i = 0; i < N; i++)
        if (i == 0 || strcmp(sorted[i], sorted[i - 1])) sorted[n++] = sorted[i];
    st_table *t = storage_table(f->s, T1);
    for (int rev = 0; rev < 2; rev++) {
        st_iter *it = st_read(t, (const uint8_t *)"p", 1, NULL, 0, rev, NOW);
        st_row r;
        int k = 0;
        while (st_iter_next(it, &r)) {
            const char *want = sorted[rev ? n - 1 - k : k];
            assert_int_equal(r.cklen, strlen(want));
            assert_memory_equal(r.ck, want, r.cklen);
            assert_memory_equal(r.cells[0].val, "w", 1);
            k++;
        }
        assert_int_equal(k, n);
        st_iter_destroy(it);
    }
    for (int q = 0; q < 200; q++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int a = (int)(x % (uint64_t)n), b = (int)((x >> 20) % (uint64_t)n);
        if (a > b) { int tmp = a; a = b; b = tmp; }
        st_slice sl = {{(const uint8_t *)sorted[a], strlen(sorted[a]), false, false},
                       {(const uint8_t *)sorted[b], strlen(sorted[b]), true, false}};
        st_iter *it = st_read(t, (const uint8_t *)"p", 1, &sl, 1, q & 1, NOW);
        st_row r;
        int k = 0;
        while (st_iter_next(it, &r)) k++;
        st_iter_destroy(it);
        /* exclusive start drops a, inclusive end keeps b; a key that has
         * sorted[b] as a strict prefix is inside the inclusive end too */
        int want = 0;
        for (int i = a + 1; i < n; i++) {
            if (strcmp(sorted[i], sorted[b]) <= 0 || !strncmp(sorted[i], sorted[b], strlen(sorted[b]))) want++;
            else break;
        }
        /* and keys having sorted[a] as a prefix are excluded by the exclusive start */
        for (int i = a + 1; i < n && !strncmp(sorted[i], sorted[a], strlen(sorted[a])); i++) want--;
        assert_int_equal(k, want < 0 ? 0 : want);
    }
    st_table_stats ts;
    st_table_get_stats(t, &ts);
    assert_int_equal(ts.rows, n);
    assert_int_equal(ts.cells, n);
}

static void test_collections(void **state)
{
    fx *f = *state;
    storage *s = f->s;
    st_mutation *m = mut("p");
    st_mut_row(m, (const uint8_t *)"r", 1);
    st_mut_cell_path(m, 3, (const uint8_t *)"k2", 2, (const uint8_t *)"v2", 2, 10, 0, 0);
    st_mut_cell_path(m, 3, (const uint8_t *)"k1", 2, (const uint8_t *)"v1", 2, 10, 0, 0);
    st_mut_cell(m, 1, (const uint8_t *)"x", 1, 10, 0, 0);
    apply1(s, m);
    st_iter *it = st_read(storage_table(s, T1), (const uint8_t *)"p", 1, NULL, 0, false, NOW);
    st_row r;
    assert_true(st_iter_next(it, &r));
    assert_int_equal(r.ncells, 3);
    assert_int_equal(r.cells[0].col, 1);
    assert_memory_equal(r.cells[1].path, "k1", 2);
    assert_memory_equal(r.cells[2].path, "k2", 2);
    st_iter_destroy(it);
    /* whole-collection deletion at 10 removes both elements; a newer one survives */
    m = mut("p");
    st_mut_row(m, (const uint8_t *)"r", 1);
    st_mut_complex_delete(m, 3, 10, NOW);
    st_mut_cell_path(m, 3, (const uint8_t *)"k3", 2, (const uint8_t *)"v3", 2, 11, 0, 0);
    st_mut_cell_path_tombstone(m, 3, (const uint8_t *)"k9", 2, 11, NOW);
    apply1(s, m);
    it = st_read(storage_table(s, T1), (const uint8_t *)"p", 1, NULL, 0, false, NOW);
    assert_true(st_iter_next(it, &r));
    assert_int_equal(r.ncells, 2);
    assert_memory_equal(r.cells[1].path, "k3", 2);
    st_iter_destroy(it);
}

/* ---- scans ---- */

static void test_scan_token_order_and_resume(void **state)
{
    fx *f = *state;
    storage *s = f->s;
    char pk[16];
    for (int i = 0; i < 300; i++) {
        snprintf(pk, sizeof pk, "pk%d", i);
        put(s, pk, "", 1, "v", 10, 0, 0);
    }
    st_mutation *m = mut("pk7"); /* tombstoned partition: never listed */
    st_mut_partition_delete(m, 10, NOW);
    apply1(s, m);
    st_table *t = storage_table(s, T1);
    st_scan *sc = st_scan_open(t, NULL, NOW);
    const uint8_t *p;
    size_t n;
    int64_t tok, prev = INT64_MIN, mid_tok = 0;
    uint8_t mid_pk[16];
    size_t mid_len = 0;
    int count = 0;
    while (st_scan_next_partition(sc, &p, &n, &tok)) {
        assert_true(tok >= prev);
        assert_true(tok == sib_murmur3_token(p, n));
        assert_false(n == 3 && !memcmp(p, "pk7", 3));
        prev = tok;
        if (++count == 150) {
            mid_tok = tok;
            memcpy(mid_pk, p, n);
            mid_len = n;
            /* writes during a scan: the scan re-seeks and stays ordered */
            put(s, "late-1", "", 1, "v", 10, 0, 0);
        }
    }
    st_scan_destroy(sc);
    assert_true(count >= 299 && count <= 300);
    /* resume after the 150th partition (exclusive) */
    st_position pos = {mid_tok, mid_pk, mid_len, false};
    sc = st_scan_open(t, &pos, NOW);
    int rest = 0;
    while (st_scan_next_partition(sc, &p, &n, &tok)) {
        assert_true(tok >= mid_tok);
        rest++;
    }
    st_scan_destroy(sc);
    /* 299 live + late-1 = 300 in all; late-1 may sort before the resume point */
    int idx = 0, at = -1;
    sc = st_scan_open(t, NULL, NOW);
    while (st_scan_next_partition(sc, &p, &n, &tok)) {
        idx++;
        if (n == mid_len && !memcmp(p, mid_pk, n)) at = idx;
    }
    st_scan_destroy(sc);
    assert_int_equal(idx, 300);
    assert_int_equal(rest, 300 - at);
    /* inclusive resume sees it again; token-only bounds */
    pos.inclusive = true;
    sc = st_scan_open(t, &pos, NOW);
    assert_true(st_scan_next_partition(sc, &p, &n, &tok));
    assert_memory_equal(p, mid_pk, mid_len);
    st_scan_destroy(sc);
    st_position tp = {mid_tok, NULL, 0, false};
    sc = st_scan_open(t, &tp, NOW);
    assert_true(st_scan_next_partition(sc, &p, &n, &tok));
    assert_true(tok > mid_tok);
    st_scan_destroy(sc);
}

/* ---- commitlog ---- */

static void test_replay_after_close(void **state)
{
    fx *f = *state;
    put(f->s, "a", "r", 1, "va", 10, 0, 0);
    /* a logged batch across two tables */
    st_mutation *ms[2] = {mut("b"), st_mutation_create(T2, (const uint8_t *)"x", 1)};
    st_mut_row(ms[0], (const uint8_t *)"r", 1);
    st_mut_row_marker(ms[0], 10, 0, ST_NO_DELETION_TIME);
    st_mut_row(ms[1], NULL, 0);
    st_mut_cell(ms[1], 2, (const uint8_t *)"t2", 2, 10, 0, 0);
    sib_err err;
    assert_int_equal(storage_apply(f->s, ms, 2, NULL, NULL, &err), 0);
    st_mutation_destroy(ms[0]);
    st_mutation_destroy(ms[1]);
    /* durable_writes=false writes are not replayed */
    st_mutation *m = mut("c");
    st_mut_row(m, (const uint8_t *)"r", 1);
    st_mut_cell(m, 1, (const uint8_t *)"x", 1, 10, 0, 0);
    assert_int_equal(storage_apply_ex(f->s, &m, 1, ST_APPLY_NO_COMMITLOG, NULL, NULL, &err), 0);
    st_mutation_destroy(m);
    storage_replay_stats st;
    reopen(f, &st);
    assert_int_equal(st.segments, 1);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.mutations, 3);
    assert_int_equal(st.bad_segments, 0);
    assert_string_equal(get(f->s, "a", "r", 1), "va");
    assert_string_equal(rows_str(f->s, "b", NULL, 0, false, NOW), "r");
    assert_null(get(f->s, "c", "r", 1));
    st_table *t2 = storage_table_find(f->s, T2);
    assert_non_null(t2);
    assert_true(st_partition_live(t2, (const uint8_t *)"x", 1, NOW));
    /* second restart replays both generations of segments */
    put(f->s, "d", "r", 1, "vd", 10, 0, 0);
    reopen(f, &st);
    assert_int_equal(st.segments, 2);
    assert_string_equal(get(f->s, "a", "r", 1), "va");
    assert_string_equal(get(f->s, "d", "r", 1), "vd");
}

/* Path of the largest segment in dir. */
static void find_segment(const char *dir, char *out, size_t n)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    off_t best = -1;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "CommitLog-", 10)) continue;
        char p[512];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (stat(p, &st) == 0 && st.st_size > best) {
            best = st.st_size;
            snprintf(out, n, "%s", p);
        }
    }
    closedir(d);
    assert_true(best > 0);
}

/* commitlog.c's segment header, version 2 */
#define CL_HDR 44

static void write_three(fx *f)
{
    put(f->s, "a", "r", 1, "v1", 10, 0, 0);
    put(f->s, "b", "r", 1, "v2", 10, 0, 0);
    put(f->s, "c", "r", 1, "v3", 10, 0, 0);
    storage_close(f->s);
    f->s = NULL;
}

static void test_torn_tail(void **state)
{
    fx *f = *state;
    write_three(f);
    char seg[512];
    find_segment(f->dir, seg, sizeof seg);
    struct stat stt;
    stat(seg, &stt);
    assert_int_equal(truncate(seg, stt.st_size - 5), 0); /* cut the last entry */
    f->s = open_st(f->dir, ST_SYNC_PERIODIC, NULL, 0);
    storage_replay_stats st;
    sib_err err;
    assert_int_equal(storage_replay(f->s, &st, &err), 0);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.bad_segments, 1);
    assert_true(st.bytes_skipped > 0);
    assert_string_equal(get(f->s, "a", "r", 1), "v1");
    assert_string_equal(get(f->s, "b", "r", 1), "v2");
    assert_null(get(f->s, "c", "r", 1));
    /* new writes go to a new segment; the next replay sees both */
    put(f->s, "d", "r", 1, "v4", 10, 0, 0);
    reopen(f, &st);
    assert_int_equal(st.segments, 2);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.bad_segments, 1);
    assert_string_equal(get(f->s, "d", "r", 1), "v4");
}

static void test_corrupt_byte(void **state)
{
    fx *f = *state;
    write_three(f);
    char seg[512];
    find_segment(f->dir, seg, sizeof seg);
    struct stat stt;
    stat(seg, &stt);
    /* flip a byte in the middle of the second entry's payload */
    int fd = open(seg, O_RDWR);
    off_t entry = (stt.st_size - CL_HDR) / 3; /* three entries of equal size */
    off_t at = CL_HDR + entry + entry / 2;
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
    f->s = open_st(f->dir, ST_SYNC_PERIODIC, NULL, 0);
    storage_replay_stats st;
    sib_err err;
    assert_int_equal(storage_replay(f->s, &st, &err), 0);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.bad_segments, 1);
    assert_string_equal(get(f->s, "a", "r", 1), "v1");
    assert_null(get(f->s, "b", "r", 1));
    assert_null(get(f->s, "c", "r", 1));
}

static void test_corrupt_length(void **state)
{
    fx *f = *state;
    write_three(f);
    char seg[512];
    find_segment(f->dir, seg, sizeof seg);
    struct stat stt;
    stat(seg, &stt);
    int fd = open(seg, O_RDWR);
    off_t entry = (stt.st_size - CL_HDR) / 3;
    uint8_t b = 0x7f; /* huge length in the third entry's header */
    assert_int_equal(pwrite(fd, &b, 1, CL_HDR + 2 * entry), 1);
    close(fd);
    f->s = open_st(f->dir, ST_SYNC_PERIODIC, NULL, 0);
    storage_replay_stats st;
    sib_err err;
    assert_int_equal(storage_replay(f->s, &st, &err), 0);
    assert_int_equal(st.entries, 2);
    assert_int_equal(st.bad_segments, 1);
    assert_string_equal(get(f->s, "b", "r", 1), "v2");
}

/* Segment paths of dir in id order. */
static size_t list_segments(const char *dir, char out[][512], size_t max)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    unsigned long long ids[16];
    size_t n = 0;
    while ((de = readdir(d)) && n < max) {
        unsigned long long id;
        int ver;
        if (sscanf(de->d_name, "CommitLog-%d-%llu.log", &ver, &id) != 2 || strstr(de->d_name, ".tmp")) continue;
        size_t i = n++;
        while (i > 0 && ids[i - 1] > id) {
            ids[i] = ids[i - 1];
            memcpy(out[i], out[i - 1], 512);
            i--;
        }
        ids[i] = id;
        snprintf(out[i], 512, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    return n;
}

static storage *open_ignoring(const char *dir)
{
    storage_opts o = {.commitlog_dir = dir, .sync = ST_SYNC_PERIODIC, .commitlog_ignore_replay_errors = true};
    storage *s;
    sib_err err = {0};
    assert_int_equal(storage_open(&s, &o, &err), 0);
    return s;
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

/* Damage in a segment followed by one holding writes stops replay, naming
 * the segment and offset; commitlog_ignore_replay_errors skips it. */
static void test_damage_before_tail_stops_replay(void **state)
{
    fx *f = *state;
    put(f->s, "a", "r", 1, "v1", 10, 0, 0);
    put(f->s, "b", "r", 1, "v2", 10, 0, 0);
    put(f->s, "c", "r", 1, "v3", 10, 0, 0);
    storage_replay_stats st;
    reopen(f, &st);
    put(f->s, "d", "r", 1, "v4", 10, 0, 0);
    storage_close(f->s);
    f->s = NULL;
    char segs[4][512];
    assert_int_equal(list_segments(f->dir, segs, 4), 2);
    struct stat stt;
    stat(segs[0], &stt);
    off_t entry = (stt.st_size - CL_HDR) / 3;
    flip_byte(segs[0], CL_HDR + entry + entry / 2); /* the second entry */
    f->s = open_st(f->dir, ST_SYNC_PERIODIC, NULL, 0);
    sib_err err = {0};
    assert_int_equal(storage_replay(f->s, &st, &err), SIB_ECORRUPT);
    assert_non_null(strstr(err.msg, strrchr(segs[0], '/') + 1));
    char at[64];
    snprintf(at, sizeof at, "damaged at offset %lld", (long long)(CL_HDR + entry));
    assert_non_null(strstr(err.msg, at));
    assert_non_null(strstr(err.msg, "1 later segment(s) hold writes"));
    assert_non_null(strstr(err.msg, "commitlog_ignore_replay_errors"));
    storage_close(f->s);
    f->s = open_ignoring(f->dir);
    assert_int_equal(storage_replay(f->s, &st, &err), 0);
    assert_int_equal(st.bad_segments, 1);
    assert_string_equal(get(f->s, "a", "r", 1), "v1");
    assert_null(get(f->s, "b", "r", 1));
    assert_null(get(f->s, "c", "r", 1));
    assert_string_equal(get(f->s, "d", "r", 1), "v4");
}

/* A segment that is gone from the middle is found through the next one's
 * predecessor id. */
static void test_missing_segment_stops_replay(void **state)
{
    fx *f = *state;
    storage_replay_stats st;
    put(f->s, "a", "r", 1, "v1", 10, 0, 0);
    reopen(f, &st);
    put(f->s, "b", "r", 1, "v2", 10, 0, 0);
    reopen(f, &st);
    put(f->s, "c", "r", 1, "v3", 10, 0, 0);
    storage_close(f->s);
    f->s = NULL;
    char segs[4][512];
    assert_int_equal(list_segments(f->dir, segs, 4), 3);
    unsigned long long mid;
    int ver;
    assert_int_equal(sscanf(strrchr(segs[1], '/') + 1, "CommitLog-%d-%llu.log", &ver, &mid), 2);
    assert_int_equal(unlink(segs[1]), 0);
    f->s = open_st(f->dir, ST_SYNC_PERIODIC, NULL, 0);
    sib_err err = {0};
    assert_int_equal(storage_replay(f->s, &st, &err), SIB_ECORRUPT);
    char want[64];
    snprintf(want, sizeof want, "segment %llu is missing", mid);
    assert_non_null(strstr(err.msg, want));
    storage_close(f->s);
    f->s = open_ignoring(f->dir);
    assert_int_equal(storage_replay(f->s, &st, &err), 0);
    assert_string_equal(get(f->s, "a", "r", 1), "v1");
    assert_null(get(f->s, "b", "r", 1));
    assert_string_equal(get(f->s, "c", "r", 1), "v3");
}

static void test_truncate_drop_replay(void **state)
{
    fx *f = *state;
    sib_err err;
    put(f->s, "a", "r", 1, "before", 10, 0, 0);
    st_mutation *m = st_mutation_create(T2, (const uint8_t *)"x", 1);
    st_mut_row(m, NULL, 0);
    st_mut_cell(m, 1, (const uint8_t *)"v", 1, 10, 0, 0);
    apply1(f->s, m);
    assert_int_equal(storage_table_truncate(f->s, T1, NULL, NULL, &err), 0);
    assert_null(get(f->s, "a", "r", 1));
    put(f->s, "b", "r", 1, "after", 10, 0, 0);
    assert_int_equal(storage_table_drop(f->s, T2, NULL, NULL, &err), 0);
    assert_null(storage_table_find(f->s, T2));
    storage_replay_stats st;
    reopen(f, &st);
    assert_null(get(f->s, "a", "r", 1));
    assert_string_equal(get(f->s, "b", "r", 1), "after");
    assert_null(storage_table_find(f->s, T2));
    storage_stats ss;
    storage_get_stats(f->s, &ss);
    assert_int_equal(ss.tables, 1);
    assert_int_equal(ss.partitions, 1);
}

static void test_segment_rollover(void **state)
{
    fx *f = *state;
    storage_close(f->s);
    f->s = open_st(f->dir, ST_SYNC_PERIODIC, NULL, 8192);
    char pk[16], val[300];
    memset(val, 'x', sizeof val - 1);
    val[sizeof val - 1] = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(pk, sizeof pk, "k%d", i);
        put(f->s, pk, "", 1, val, 10, 0, 0);
    }
    storage_stats ss;
    storage_get_stats(f->s, &ss);
    assert_true(ss.cl_segments_created >= 4);
    /* too big for a segment: refused, nothing applied */
    char *big = malloc(8192);
    memset(big, 'y', 8192);
    st_mutation *m = mut("big");
    st_mut_row(m, NULL, 0);
    st_mut_cell(m, 1, (const uint8_t *)big, 8192, 10, 0, 0);
    sib_err err;
    assert_int_equal(storage_apply(f->s, &m, 1, NULL, NULL, &err), SIB_ETOOBIG);
    st_mutation_destroy(m);
    free(big);
    assert_false(st_partition_live(storage_table(f->s, T1), (const uint8_t *)"big", 3, NOW));
    storage_close(f->s);
    f->s = open_st(f->dir, ST_SYNC_PERIODIC, NULL, 8192);
    storage_replay_stats st;
    assert_int_equal(storage_replay(f->s, &st, &err), 0);
    assert_int_equal(st.entries, 100);
    assert_int_equal(st.bad_segments, 0);
    assert_string_equal(get(f->s, "k0", "", 1), val);
    assert_string_equal(get(f->s, "k99", "", 1), val);
}

/* With a loop, an entry is built where the queue waits for its write: one
 * refused while others wait (too big for a segment) leaves them whole, and
 * the next one follows them, in the file and on replay. */
static void test_queue_refused_entry(void **state)
{
    fx *f = *state;
    storage_close(f->s);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    f->s = open_st(f->dir, ST_SYNC_PERIODIC, loop, 8192);
    sib_err err;
    assert_int_equal(storage_replay(f->s, NULL, &err), 0);
    put(f->s, "q1", "", 1, "one", 10, 0, 0);
    put(f->s, "q2", "", 1, "two", 10, 0, 0);
    char *big = malloc(8192);
    memset(big, 'y', 8192);
    st_mutation *m = mut("big");
    st_mut_row(m, NULL, 0);
    st_mut_cell(m, 1, (const uint8_t *)big, 8192, 10, 0, 0);
    assert_int_equal(storage_apply(f->s, &m, 1, NULL, NULL, &err), SIB_ETOOBIG);
    st_mutation_destroy(m);
    free(big);
    put(f->s, "q3", "", 1, "three", 10, 0, 0);
    storage_stats ss;
    storage_get_stats(f->s, &ss);
    assert_int_equal(ss.cl_pending, 3); /* queued, not written yet */
    ev_run(loop, EVRUN_NOWAIT);
    assert_string_equal(get(f->s, "q1", "", 1), "one");
    assert_string_equal(get(f->s, "q3", "", 1), "three");
    assert_null(get(f->s, "big", "", 1));
    storage_close(f->s);
    ev_loop_destroy(loop);
    f->s = open_st(f->dir, ST_SYNC_PERIODIC, NULL, 8192);
    storage_replay_stats st;
    assert_int_equal(storage_replay(f->s, &st, &err), 0);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.bad_segments, 0);
    assert_string_equal(get(f->s, "q1", "", 1), "one");
    assert_string_equal(get(f->s, "q2", "", 1), "two");
    assert_string_equal(get(f->s, "q3", "", 1), "three");
    assert_null(get(f->s, "big", "", 1));
}

static void test_invalid_mutation(void **state)
{
    fx *f = *state;
    st_mutation *m = mut("p");
    assert_int_equal(st_mut_cell(m, 1, (const uint8_t *)"v", 1, 10, 0, 0), SIB_EINVAL); /* no row selected */
    st_mut_row(m, (const uint8_t *)"r", 1);
    st_mut_cell(m, 1, (const uint8_t *)"v", 1, 10, 0, 0);
    sib_err err;
    assert_true(storage_apply(f->s, &m, 1, NULL, NULL, &err) < 0); /* sticky */
    st_mutation_destroy(m);
    m = mut("p");
    st_mut_static(m);
    assert_int_equal(st_mut_row_marker(m, 1, 0, ST_NO_DELETION_TIME), SIB_EINVAL);
    st_mutation_destroy(m);
    storage_stats ss;
    storage_get_stats(f->s, &ss);
    assert_int_equal(ss.cl_entries, 0);
    assert_int_equal(ss.partitions, 0);
}

/* A failed commitlog write is reported, applies nothing, and leaves the log
 * usable and replayable (the partial entry is cut off). RLIMIT_FSIZE makes
 * write() fail with EFBIG. */
static void test_write_failure_cut_back(void **state)
{
    fx *f = *state;
    put(f->s, "a", "r", 1, "v1", 10, 0, 0);
    char seg[512];
    find_segment(f->dir, seg, sizeof seg);
    struct stat stt;
    stat(seg, &stt);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)stt.st_size + 100;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    char big[2000];
    memset(big, 'b', sizeof big);
    st_mutation *m = mut("b");
    st_mut_row(m, (const uint8_t *)"r", 1);
    st_mut_cell(m, 1, (const uint8_t *)big, sizeof big, 10, 0, 0);
    sib_err err;
    cb_state cb = {0};
    int rc = storage_apply(f->s, &m, 1, on_done, &cb, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    st_mutation_destroy(m);
    assert_int_equal(rc, SIB_EIO);
    assert_int_equal(cb.calls, 0);
    assert_false(st_partition_live(storage_table(f->s, T1), (const uint8_t *)"b", 1, NOW));
    stat(seg, &stt);
    put(f->s, "c", "r", 1, "v3", 10, 0, 0); /* the log still works */
    storage_replay_stats st;
    reopen(f, &st);
    assert_int_equal(st.bad_segments, 0);
    assert_int_equal(st.entries, 2);
    assert_string_equal(get(f->s, "a", "r", 1), "v1");
    assert_null(get(f->s, "b", "r", 1));
    assert_string_equal(get(f->s, "c", "r", 1), "v3");
    /* replay runs once, before writes */
    assert_int_equal(storage_replay(f->s, NULL, &err), SIB_EINVAL);
}

/* ---- sync modes on a loop ---- */

static void run_sync_mode(st_sync_mode mode)
{
    char dir[64] = "/tmp/sibst.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    storage *s = open_st(dir, mode, loop, 0);
    cb_state cb[20] = {{0}};
    sib_err err;
    for (int i = 0; i < 20; i++) {
        char pk[16];
        snprintf(pk, sizeof pk, "k%d", i);
        st_mutation *m = mut(pk);
        st_mut_row(m, NULL, 0);
        st_mut_cell(m, 1, (const uint8_t *)"v", 1, 10, 0, 0);
        assert_int_equal(storage_apply(s, &m, 1, on_done, &cb[i], &err), 0);
        st_mutation_destroy(m);
        if (mode != ST_SYNC_PERIODIC) assert_int_equal(cb[i].calls, 0); /* not before the fsync */
    }
    cb_state tc = {0};
    assert_int_equal(storage_table_truncate(s, T2, on_done, &tc, &err), 0);
    ev_run(loop, 0); /* returns once no completion is pending */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(cb[i].calls, 1);
        assert_int_equal(cb[i].rc, 0);
    }
    assert_int_equal(tc.calls, 1);
    /* a sync request with nothing new to sync still completes, from the loop */
    cb_state sc = {0};
    assert_int_equal(storage_sync(s, on_done, &sc, &err), 0);
    assert_int_equal(sc.calls, 0);
    ev_run(loop, 0);
    assert_int_equal(sc.calls, 1);
    storage_stats ss;
    storage_get_stats(s, &ss);
    assert_true(ss.cl_syncs >= 1);
    assert_int_equal(ss.cl_pending, 0);
    if (mode == ST_SYNC_GROUP) assert_true(ss.cl_syncs < 20);
    storage_close(s);
    ev_loop_destroy(loop);
    rm_rf(dir);
}

/* Reopens f->s in periodic mode with period_ms, driven by a new loop
 * (returned); close_periodic ends it and reopens f->s without a loop. */
static struct ev_loop *open_periodic(fx *f, int period_ms)
{
    storage_close(f->s);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    storage_opts o = {0};
    o.commitlog_dir = f->dir;
    o.sync = ST_SYNC_PERIODIC;
    o.sync_period_ms = period_ms;
    o.loop = loop;
    sib_err err = {0};
    assert_int_equal(storage_open(&f->s, &o, &err), 0);
    assert_int_equal(storage_replay(f->s, NULL, &err), 0);
    return loop;
}

static void close_periodic(fx *f, struct ev_loop *loop)
{
    storage_close(f->s);
    f->s = NULL;
    ev_loop_destroy(loop);
    f->s = open_st(f->dir, ST_SYNC_PERIODIC, NULL, 0);
}

/* Periodic mode fsyncs what was written within a period even when the
 * sync thread had gone idle (nothing written for a while) before it. */
static void test_periodic_sync_after_idle(void **state)
{
    fx *f = *state;
    struct ev_loop *loop = open_periodic(f, 20);
    storage_stats st;
    for (int round = 0; round < 3; round++) {
        struct timespec idle = {0, 100 * 1000 * 1000}; /* several periods with nothing to sync */
        nanosleep(&idle, NULL);
        storage_get_stats(f->s, &st);
        uint64_t before = st.cl_syncs;
        put(f->s, "p", "c", 1, "v", 10 + round, 0, 0);
        for (int i = 0; i < 100 && st.cl_syncs == before; i++) { /* bounded: 100 x 10 ms */
            ev_run(loop, EVRUN_NOWAIT);
            struct timespec t = {0, 10 * 1000 * 1000};
            nanosleep(&t, NULL);
            storage_get_stats(f->s, &st);
        }
        assert_true(st.cl_syncs > before);
    }
    close_periodic(f, loop);
}

/* Periodic mode starts the writeback of what was written every 10 ms
 * between its fsyncs (so a period's writes do not reach the disk in one
 * burst), and that alone is no fsync: durability stays once a period. */
static void test_periodic_writeback(void **state)
{
    fx *f = *state;
    struct ev_loop *loop = open_periodic(f, 60000);
    storage_stats st;
    storage_get_stats(f->s, &st);
    uint64_t syncs = st.cl_syncs;
    char ck[16];
    for (int i = 0; i < 600 && st.cl_writebacks < 2; i++) { /* bounded: 600 x 10 ms (a writeback each 10 ms) */
        snprintf(ck, sizeof ck, "c%d", i);
        put(f->s, "p", ck, 1, "some value", 10, 0, 0);
        ev_run(loop, EVRUN_NOWAIT);
        struct timespec t = {0, 10 * 1000 * 1000};
        nanosleep(&t, NULL);
        storage_get_stats(f->s, &st);
    }
    assert_true(st.cl_writebacks >= 2);
    assert_int_equal(st.cl_syncs, syncs);
    close_periodic(f, loop);
}

static void test_batch_mode_callbacks(void **state) { run_sync_mode(ST_SYNC_BATCH); }
static void test_group_mode_callbacks(void **state) { run_sync_mode(ST_SYNC_GROUP); }
static void test_periodic_mode_callbacks(void **state) { run_sync_mode(ST_SYNC_PERIODIC); }

static void test_no_loop_batch(void **state)
{
    char dir[64] = "/tmp/sibst.XXXXXX";
    assert_non_null(mkdtemp(dir));
    storage *s = open_st(dir, ST_SYNC_GROUP, NULL, 0);
    cb_state cb = {0};
    st_mutation *m = mut("k");
    st_mut_row(m, NULL, 0);
    st_mut_cell(m, 1, (const uint8_t *)"v", 1, 10, 0, 0);
    sib_err err;
    assert_int_equal(storage_apply(s, &m, 1, on_done, &cb, &err), 0);
    assert_int_equal(cb.calls, 1); /* blocking without a loop */
    st_mutation_destroy(m);
    storage_close(s);
    rm_rf(dir);
}


/* ---- coalesced commitlog appends (with a loop) ---- */

typedef struct ack_state {
    storage *s;
    char pk[16];
    int calls, rc, seq;
    bool visible; /* the write was in the memtable when done ran */
    char msg[sizeof(((sib_err *)0)->msg)];
} ack_state;
static int ack_seq;
static void on_ack(void *ctx, int rc, const sib_err *err)
{
    ack_state *a = ctx;
    a->calls++;
    a->rc = rc;
    a->seq = ++ack_seq;
    a->visible = st_partition_live(storage_table(a->s, T1), (const uint8_t *)a->pk, strlen(a->pk), NOW);
    if (err) snprintf(a->msg, sizeof a->msg, "%s", err->msg);
}

static void apply_ack(storage *s, ack_state *a, const char *pk, size_t vlen)
{
    static char val[4096];
    memset(val, 'v', sizeof val);
    a->s = s;
    snprintf(a->pk, sizeof a->pk, "%s", pk);
    st_mutation *m = mut(pk);
    st_mut_row(m, (const uint8_t *)"r", 1);
    st_mut_cell(m, 1, (const uint8_t *)val, vlen, 10, 0, 0);
    sib_err err;
    assert_int_equal(storage_apply(s, &m, 1, on_ack, a, &err), 0);
    st_mutation_destroy(m);
}

static uint64_t cl_writes(storage *s)
{
    storage_stats st;
    storage_get_stats(s, &st);
    return st.cl_writes;
}

/* A default-priority prepare watcher, like the CQL server's reply flush:
 * records what it sees the first time it runs. */
typedef struct prep_probe {
    ev_prepare w;
    storage *s;
    ack_state *acks, *late; /* late: applied from the probe itself */
    int n, runs, acked;
    uint64_t writes;
} prep_probe;
static void on_probe(struct ev_loop *loop, ev_prepare *w, int revents)
{
    prep_probe *p = (prep_probe *)w;
    if (p->runs++) return;
    for (int i = 0; i < p->n; i++) p->acked += p->acks[i].calls;
    p->writes = cl_writes(p->s);
    if (p->late) apply_ack(p->s, p->late, "late", 10);
}

/* Many applies in one loop iteration: ONE write(), nothing acked or visible
 * before it, every done after it (in apply order, the write already in the
 * memtable), and all of it before a priority-0 prepare watcher of the same
 * iteration (libev runs higher priorities first). */
static void test_coalesced_appends(void **state)
{
    char dir[64] = "/tmp/sibst.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    storage *s = open_st(dir, ST_SYNC_PERIODIC, loop, 0);
    enum { N = 50 };
    ack_state a[N];
    memset(a, 0, sizeof a);
    prep_probe probe = {.s = s, .acks = a, .n = N};
    ev_prepare_init(&probe.w, on_probe);
    /* started after storage's watcher: at equal priority libev would invoke
     * it first (pending watchers run last-queued first), so this checks
     * that the commitlog's EV_MAXPRI is what puts it second */
    ev_prepare_start(loop, &probe.w);
    uint64_t w0 = cl_writes(s);
    for (int i = 0; i < N; i++) {
        char pk[16];
        snprintf(pk, sizeof pk, "k%d", i);
        apply_ack(s, &a[i], pk, 100);
        assert_int_equal(a[i].calls, 0); /* not from inside storage_apply */
    }
    assert_int_equal(cl_writes(s), w0);
    assert_false(st_partition_live(storage_table(s, T1), (const uint8_t *)"k0", 2, NOW));
    ev_run(loop, EVRUN_NOWAIT);
    assert_int_equal(cl_writes(s), w0 + 1);
    assert_int_equal(probe.runs, 1);
    assert_int_equal(probe.acked, N);
    assert_int_equal(probe.writes, w0 + 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(a[i].calls, 1);
        assert_int_equal(a[i].rc, 0);
        assert_true(a[i].visible);
        if (i) assert_true(a[i].seq > a[i - 1].seq);
    }
    storage_stats st;
    storage_get_stats(s, &st);
    assert_int_equal(st.cl_entries, N);
    assert_int_equal(st.cl_pending, 0);
    /* An entry queued after the commitlog's prepare ran (by a lower-priority
     * one) must not wait for unrelated I/O: the poll does not block (else
     * EVRUN_ONCE would hang here), and the next iteration writes it. */
    ack_state late = {0};
    probe.runs = 0;
    probe.late = &late;
    storage_get_stats(s, &st);
    ev_run(loop, EVRUN_ONCE); /* the periodic fsync (10 s) is the only other wake-up */
    uint64_t syncs = st.cl_syncs;
    storage_get_stats(s, &st);
    assert_int_equal(st.cl_syncs, syncs);
    assert_int_equal(late.calls, 0);
    ev_run(loop, EVRUN_NOWAIT);
    assert_int_equal(late.calls, 1);
    assert_int_equal(late.rc, 0);
    assert_int_equal(cl_writes(s), w0 + 2);
    ev_prepare_stop(loop, &probe.w);
    storage_close(s);
    ev_loop_destroy(loop);
    s = open_st(dir, ST_SYNC_PERIODIC, NULL, 0);
    storage_replay_stats rs;
    sib_err err;
    assert_int_equal(storage_replay(s, &rs, &err), 0);
    assert_int_equal(rs.entries, N + 1);
    assert_true(st_partition_live(storage_table(s, T1), (const uint8_t *)"k49", 3, NOW));
    storage_close(s);
    rm_rf(dir);
}

/* One iteration's entries spanning several (4 KiB) segments: one write per
 * segment, and all of them replay. Batch mode: acked after the fsync. */
static void test_coalesced_rollover(void **state)
{
    char dir[64] = "/tmp/sibst.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    storage *s = open_st(dir, ST_SYNC_BATCH, loop, 4096);
    enum { N = 40 };
    ack_state a[N];
    memset(a, 0, sizeof a);
    uint64_t w0 = cl_writes(s);
    for (int i = 0; i < N; i++) {
        char pk[16];
        snprintf(pk, sizeof pk, "k%d", i);
        apply_ack(s, &a[i], pk, 300 + 40 * (i % 5)); /* ~12 KiB in all */
    }
    ev_run(loop, 0); /* returns once everything is acked */
    storage_stats st;
    storage_get_stats(s, &st);
    assert_true(st.cl_segments_created >= 4);
    assert_int_equal(cl_writes(s) - w0, st.cl_segments_created); /* one per segment touched */
    for (int i = 0; i < N; i++) {
        assert_int_equal(a[i].calls, 1);
        assert_int_equal(a[i].rc, 0);
    }
    storage_close(s);
    ev_loop_destroy(loop);
    s = open_st(dir, ST_SYNC_PERIODIC, NULL, 4096);
    storage_replay_stats rs;
    sib_err err;
    assert_int_equal(storage_replay(s, &rs, &err), 0);
    assert_int_equal(rs.entries, N);
    assert_int_equal(rs.bad_segments, 0);
    storage_close(s);
    rm_rf(dir);
}

/* A failed coalesced write fails every entry queued with it (SIB_EIO and the
 * write's error), none of them becomes visible, the file is cut back, and
 * the log keeps working. */
static void test_coalesced_write_failure(void **state)
{
    char dir[64] = "/tmp/sibst.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    storage *s = open_st(dir, ST_SYNC_PERIODIC, loop, 0);
    ack_state first = {0}, a[3], last = {0};
    memset(a, 0, sizeof a);
    apply_ack(s, &first, "a", 10);
    ev_run(loop, EVRUN_NOWAIT);
    assert_int_equal(first.rc, 0);
    char seg[512];
    find_segment(dir, seg, sizeof seg);
    struct stat stt;
    stat(seg, &stt);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)stt.st_size + 300; /* the first entry fits, the batch does not */
    signal(SIGXFSZ, SIG_IGN);
    apply_ack(s, &a[0], "b", 100);
    apply_ack(s, &a[1], "c", 2000);
    apply_ack(s, &a[2], "d", 100);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ev_run(loop, EVRUN_NOWAIT);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a[i].calls, 1);
        assert_int_equal(a[i].rc, SIB_EIO);
        assert_non_null(strstr(a[i].msg, "commitlog: write"));
        assert_false(a[i].visible);
        assert_false(st_partition_live(storage_table(s, T1), (const uint8_t *)a[i].pk, 1, NOW));
    }
    struct stat st2;
    stat(seg, &st2);
    assert_int_equal(st2.st_size, stt.st_size); /* cut back */
    apply_ack(s, &last, "e", 10); /* the log still works */
    ev_run(loop, EVRUN_NOWAIT);
    assert_int_equal(last.rc, 0);
    assert_true(last.visible);
    storage_close(s);
    ev_loop_destroy(loop);
    s = open_st(dir, ST_SYNC_PERIODIC, NULL, 0);
    storage_replay_stats rs;
    sib_err err;
    assert_int_equal(storage_replay(s, &rs, &err), 0);
    assert_int_equal(rs.entries, 2);
    assert_int_equal(rs.bad_segments, 0);
    assert_null(get(s, "b", "r", 1));
    assert_non_null(get(s, "e", "r", 1));
    storage_close(s);
    rm_rf(dir);
}

/* TRUNCATE between queued writes keeps log order: the writes queued before
 * it are written and applied first (so it clears them), those after it
 * survive; replay agrees. Their acks still come from the loop. */
static void test_coalesced_truncate_order(void **state)
{
    char dir[64] = "/tmp/sibst.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    storage *s = open_st(dir, ST_SYNC_PERIODIC, loop, 0);
    ack_state a[6];
    memset(a, 0, sizeof a);
    uint64_t w0 = cl_writes(s);
    for (int i = 0; i < 5; i++) {
        char pk[16];
        snprintf(pk, sizeof pk, "b%d", i);
        apply_ack(s, &a[i], pk, 50);
    }
    cb_state tc = {0};
    sib_err err;
    assert_int_equal(storage_table_truncate(s, T1, on_done, &tc, &err), 0);
    for (int i = 0; i < 5; i++) assert_int_equal(a[i].calls, 0); /* acked from the loop, not here */
    assert_int_equal(cl_writes(s), w0 + 2); /* queued writes, then the record */
    apply_ack(s, &a[5], "after", 50);
    ev_run(loop, 0);
    assert_int_equal(tc.calls, 1);
    assert_int_equal(tc.rc, 0);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(a[i].calls, 1);
        assert_int_equal(a[i].rc, 0);
        assert_true(a[i].seq < a[5].seq || i == 5);
    }
    assert_null(get(s, "b0", "r", 1));
    assert_null(get(s, "b4", "r", 1));
    assert_non_null(get(s, "after", "r", 1));
    storage_close(s);
    ev_loop_destroy(loop);
    s = open_st(dir, ST_SYNC_PERIODIC, NULL, 0);
    storage_replay_stats rs;
    assert_int_equal(storage_replay(s, &rs, &err), 0);
    assert_int_equal(rs.entries, 7);
    assert_null(get(s, "b0", "r", 1));
    assert_null(get(s, "b4", "r", 1));
    assert_non_null(get(s, "after", "r", 1));
    storage_close(s);
    rm_rf(dir);
}


/* ---- SSTables: flush, merged reads, restart ---- */

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char p[512];
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (!lstat(p, &st) && S_ISDIR(st.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

typedef struct dfx {
    char root[64], cl[96], data[96];
    storage *s;
} dfx;

static storage *open_data(dfx *f, size_t heap, struct ev_loop *loop)
{
    storage_opts o = {0};
    o.commitlog_dir = f->cl;
    o.data_dir = f->data;
    o.loop = loop;
    o.memtable_heap_space = heap;
    o.sstable_block_size = 1024; /* many blocks even for small tests */
    storage *s;
    sib_err err = {0};
    int rc = storage_open(&s, &o, &err);
    if (rc) fprintf(stderr, "open: %s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(storage_replay(s, NULL, &err), 0);
    return s;
}

static int dsetup(void **state)
{
    dfx *f = calloc(1, sizeof *f);
    strcpy(f->root, "/tmp/sibsst.XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->cl, sizeof f->cl, "%s/commitlog", f->root);
    snprintf(f->data, sizeof f->data, "%s/data", f->root);
    f->s = open_data(f, 0, NULL);
    *state = f;
    return 0;
}

static int dteardown(void **state)
{
    dfx *f = *state;
    storage_close(f->s);
    rm_tree(f->root);
    free(f);
    return 0;
}

static void flush_all(storage *s)
{
    cb_state cb = {0};
    sib_err err;
    assert_int_equal(storage_flush(s, NULL, on_done, &cb, &err), 0);
    assert_int_equal(cb.calls, 1);
    assert_int_equal(cb.rc, 0);
}

static void dreopen(dfx *f)
{
    storage_close(f->s);
    f->s = open_data(f, 0, NULL);
}

static void test_flush_and_read(void **state)
{
    dfx *f = *state;
    storage *s = f->s;
    char ck[16];
    for (int i = 0; i < 300; i++) {
        snprintf(ck, sizeof ck, "k%03d", i);
        put(s, "p", ck, 1, "v1", 10, 0, 0);
        put(s, "q", ck, 1, "w1", 10, 0, 0);
    }
    flush_all(s);
    storage_stats st;
    storage_get_stats(s, &st);
    assert_int_equal(st.sstables, 1);
    assert_int_equal(st.flushes_pending, 0);
    assert_string_equal(get(s, "p", "k123", 1), "v1");
    /* newer data in the memtable and in a second SSTable overrides */
    put(s, "p", "k123", 1, "v2", 20, 0, 0);
    assert_string_equal(get(s, "p", "k123", 1), "v2");
    flush_all(s);
    put(s, "p", "k124", 1, "old", 5, 0, 0); /* older than the SSTable's: loses */
    assert_string_equal(get(s, "p", "k124", 1), "v1");
    assert_string_equal(get(s, "p", "k123", 1), "v2");
    /* slices and reversed across sources */
    st_slice sl = {{(const uint8_t *)"k100", 4, true, false}, {(const uint8_t *)"k102", 4, true, false}};
    assert_string_equal(rows_str(s, "p", &sl, 1, false, NOW), "k100,k101,k102");
    assert_string_equal(rows_str(s, "p", &sl, 1, true, NOW), "k102,k101,k100");
    /* a partition deletion in the memtable hides SSTable rows */
    st_mutation *m = mut("q");
    st_mut_partition_delete(m, 15, NOW - 5);
    apply1(s, m);
    assert_string_equal(rows_str(s, "q", NULL, 0, false, NOW), "");
    assert_false(st_partition_live(storage_table(s, T1), (const uint8_t *)"q", 1, NOW));
    storage_get_stats(s, &st);
    assert_int_equal(st.sstables, 2);
    /* restart: SSTables load, the commitlog replays the rest */
    dreopen(f);
    s = f->s;
    assert_string_equal(get(s, "p", "k123", 1), "v2");
    assert_string_equal(get(s, "p", "k299", 1), "v1");
    assert_string_equal(rows_str(s, "q", NULL, 0, false, NOW), "");
    storage_get_stats(s, &st);
    assert_int_equal(st.sstables, 2);
}

/* st_prefetch is a hint: on an empty memtable (no index yet), for a key
 * that is there and one that is not, after a flush (a fresh memtable), it
 * changes nothing a read sees. */
static void test_prefetch_is_a_hint(void **state)
{
    dfx *f = *state;
    storage *s = f->s;
    st_table *t = storage_table(s, T1);
    assert_non_null(t);
    st_prefetch(t, sib_murmur3_token((const uint8_t *)"p", 1), false);
    st_prefetch(t, sib_murmur3_token((const uint8_t *)"p", 1), true);
    put(s, "p", "a", 1, "one", 10, 0, 0);
    for (int i = 0; i < 2000; i++) st_prefetch(t, (int64_t)((uint64_t)i * 0x9E3779B97F4A7C15ull), i % 2);
    st_prefetch(t, INT64_MIN, true);
    st_prefetch(t, INT64_MAX, true);
    st_prefetch(t, sib_murmur3_token((const uint8_t *)"p", 1), false);
    st_prefetch(t, sib_murmur3_token((const uint8_t *)"p", 1), true);
    assert_string_equal(get(s, "p", "a", 1), "one");
    assert_null(get(s, "nothere", "a", 1));
    flush_all(s);
    st_prefetch(t, sib_murmur3_token((const uint8_t *)"p", 1), false);
    st_prefetch(t, sib_murmur3_token((const uint8_t *)"p", 1), true);
    assert_string_equal(get(s, "p", "a", 1), "one");
}

static bool is_dir(const char *path)
{
    struct stat st;
    return !stat(path, &st) && S_ISDIR(st.st_mode);
}

/* A table flushed before it had a name sits in <data>/<id hex>/ (the old
 * layout); st_table_set_name moves it to <data>/<ks>/<table>-<id hex>/, a
 * second call and a reopen change nothing, and the data stays readable. */
static void test_table_named_layout(void **state)
{
    dfx *f = *state;
    char legacy[200], named[200], backups[220];
    snprintf(legacy, sizeof legacy, "%s/0102030405060708090a0b0c0d0e0f10", f->data);
    snprintf(named, sizeof named, "%s/ks1/tab_1-0102030405060708090a0b0c0d0e0f10", f->data);
    snprintf(backups, sizeof backups, "%s/backups", named);
    put(f->s, "p", "a", 1, "one", 10, 0, 0);
    flush_all(f->s);
    assert_true(is_dir(legacy));
    st_table *t = storage_table(f->s, T1);
    sib_err err = {0};
    /* names that are not \w+ change nothing */
    assert_int_equal(st_table_set_name(t, "ks1", "../x", &err), SIB_EINVAL);
    assert_int_equal(st_table_set_name(t, "", "x", &err), SIB_EINVAL);
    assert_string_equal(st_table_dir(t), legacy);
    assert_int_equal(st_table_set_name(t, "ks1", "tab_1", &err), 0);
    assert_string_equal(st_table_dir(t), named);
    assert_false(is_dir(legacy));
    assert_true(is_dir(backups));
    assert_int_equal(st_table_set_name(t, "ks1", "tab_1", &err), 0); /* idempotent */
    assert_int_equal(st_table_set_name(t, "ks1", "other", &err), SIB_EINVAL); /* one name per table */
    put(f->s, "p", "b", 1, "two", 10, 0, 0);
    flush_all(f->s); /* the next SSTable goes to the named folder */
    dreopen(f);
    t = storage_table(f->s, T1);
    assert_string_equal(st_table_dir(t), named); /* found by its name at open */
    assert_string_equal(get(f->s, "p", "a", 1), "one");
    assert_string_equal(get(f->s, "p", "b", 1), "two");
    storage_stats st;
    storage_get_stats(f->s, &st);
    assert_int_equal(st.sstables, 2);
    /* a table with no folder yet gets the named one at once */
    static const uint8_t T9[16] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
    t = storage_table(f->s, T9);
    assert_int_equal(st_table_set_name(t, "ks1", "fresh", &err), 0);
    snprintf(backups, sizeof backups, "%s/ks1/fresh-09090909090909090909090909090909/backups", f->data);
    assert_true(is_dir(backups));
    /* drop removes the folder with its empty backups/ */
    assert_int_equal(storage_table_drop(f->s, T1, NULL, NULL, &err), 0);
    storage_close(f->s);
    f->s = open_data(f, 0, NULL);
    assert_false(is_dir(named));
}

static void test_segments_released_after_flush(void **state)
{
    dfx *f = *state;
    storage_close(f->s);
    storage_opts o = {0};
    o.commitlog_dir = f->cl;
    o.data_dir = f->data;
    o.segment_size = 64 * 1024;
    sib_err err;
    assert_int_equal(storage_open(&f->s, &o, &err), 0);
    assert_int_equal(storage_replay(f->s, NULL, &err), 0);
    storage *s = f->s;
    char ck[16], val[200];
    memset(val, 'x', sizeof val - 1);
    val[sizeof val - 1] = 0;
    for (int i = 0; i < 2000; i++) {
        snprintf(ck, sizeof ck, "k%05d", i);
        put(s, "p", ck, 1, val, 10, 0, 0);
    }
    storage_stats st;
    storage_get_stats(s, &st);
    assert_true(st.cl_segments_live > 4);
    flush_all(s);
    storage_get_stats(s, &st);
    assert_int_equal(st.cl_segments_live, 1); /* only the current segment stays */
    storage_close(s);
    assert_int_equal(storage_open(&f->s, &o, &err), 0);
    storage_replay_stats rs;
    assert_int_equal(storage_replay(f->s, &rs, &err), 0);
    st_table_stats ts;
    st_table_get_stats(storage_table(f->s, T1), &ts);
    assert_int_equal(ts.partitions, 0); /* the current segment's entries are all in the SSTable */
    assert_string_equal(get(f->s, "p", "k01999", 1), val);
}

static void test_replay_skips_flushed(void **state)
{
    dfx *f = *state;
    put(f->s, "a", "x", 1, "one", 10, 0, 0);
    flush_all(f->s);
    put(f->s, "b", "x", 1, "two", 10, 0, 0);
    storage_close(f->s);
    f->s = NULL;
    storage_opts o = {0};
    o.commitlog_dir = f->cl;
    o.data_dir = f->data;
    sib_err err;
    assert_int_equal(storage_open(&f->s, &o, &err), 0);
    storage_replay_stats rs;
    assert_int_equal(storage_replay(f->s, &rs, &err), 0);
    st_table_stats ts;
    st_table_get_stats(storage_table(f->s, T1), &ts);
    assert_int_equal(ts.partitions, 1); /* only "b" went back into a memtable */
    assert_string_equal(get(f->s, "a", "x", 1), "one");
    assert_string_equal(get(f->s, "b", "x", 1), "two");
}

static void test_truncate_removes_sstables(void **state)
{
    dfx *f = *state;
    put(f->s, "a", "x", 1, "one", 10, 0, 0);
    flush_all(f->s);
    sib_err err;
    assert_int_equal(storage_table_truncate(f->s, T1, NULL, NULL, &err), 0);
    assert_null(get(f->s, "a", "x", 1));
    put(f->s, "b", "x", 1, "two", 10, 0, 0);
    flush_all(f->s);
    dreopen(f);
    assert_null(get(f->s, "a", "x", 1));
    assert_string_equal(get(f->s, "b", "x", 1), "two");
}

static char *find_file(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char *res = NULL;
    while (d && !res && (de = readdir(d))) {
        char p[512];
        if (de->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (!stat(p, &st) && S_ISDIR(st.st_mode)) res = find_file(p, suffix);
        else if (strlen(p) > strlen(suffix) && !strcmp(p + strlen(p) - strlen(suffix), suffix)) res = strdup(p);
    }
    if (d) closedir(d);
    return res;
}

static void test_corrupted_block_and_leftovers(void **state)
{
    dfx *f = *state;
    char pk[16], ck[16];
    for (int i = 0; i < 50; i++) {
        snprintf(pk, sizeof pk, "p%02d", i);
        for (int j = 0; j < 20; j++) {
            snprintf(ck, sizeof ck, "c%02d", j);
            put(f->s, pk, ck, 1, "some value that takes space", 10, 0, 0);
        }
    }
    flush_all(f->s);
    storage_close(f->s);
    f->s = NULL;
    char *data = find_file(f->data, "-Data.db");
    assert_non_null(data);
    /* flip a byte in the middle of the file: one block goes bad */
    int fd = open(data, O_RDWR);
    struct stat st;
    fstat(fd, &st);
    off_t at = st.st_size / 2;
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
    /* leftovers of writes cut short (a tmp name proves it: a Data.db whose
     * TOC is still TOC.txt.tmp, and a lone .tmp); a lone Data.db without TOC
     * or tmp name proves nothing and stays on disk, unloaded */
    char *dir = strdup(data);
    *strrchr(dir, '/') = 0;
    char junk[600], junktoc[600], tmp[600], lone[600];
    snprintf(junk, sizeof junk, "%s/99-Data.db", dir);
    snprintf(junktoc, sizeof junktoc, "%s/99-TOC.txt.tmp", dir);
    snprintf(tmp, sizeof tmp, "%s/98-Index.db.tmp", dir);
    snprintf(lone, sizeof lone, "%s/97-Data.db", dir);
    close(open(junk, O_CREAT | O_WRONLY, 0644));
    close(open(junktoc, O_CREAT | O_WRONLY, 0644));
    close(open(tmp, O_CREAT | O_WRONLY, 0644));
    close(open(lone, O_CREAT | O_WRONLY, 0644));
    f->s = open_data(f, 0, NULL);
    assert_int_equal(access(junk, F_OK), -1);
    assert_int_equal(access(junktoc, F_OK), -1);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_int_equal(access(lone, F_OK), 0);
    int bad = 0, good = 0;
    for (int i = 0; i < 50; i++) {
        snprintf(pk, sizeof pk, "p%02d", i);
        st_iter *it = st_read(storage_table(f->s, T1), (const uint8_t *)pk, strlen(pk), NULL, 0, false, NOW);
        st_row r;
        int n = 0;
        while (st_iter_next(it, &r)) n++;
        sib_err err = {0};
        int rc = st_iter_status(it, &err);
        st_iter_destroy(it);
        if (rc) {
            assert_int_equal(rc, SIB_ECORRUPT);
            assert_non_null(strstr(err.msg, "Data.db"));
            bad++;
        } else {
            assert_int_equal(n, 20);
            good++;
        }
    }
    assert_true(bad >= 1);
    assert_true(good >= 40);
    free(dir);
    free(data);
}

/* Random operations applied to a memtable-only store (the reference) and to
 * one that flushes often; every read must agree. */
static void dump_row(char *out, size_t cap, const st_row *r)
{
    size_t n = strlen(out);
    n += (size_t)snprintf(out + n, cap - n, "[%.*s m%d:%lld", (int)r->cklen, (const char *)r->ck, r->has_marker,
                          (long long)r->marker_ts);
    for (size_t i = 0; i < r->ncells && n < cap; i++) {
        const st_cell_view *c = &r->cells[i];
        n += (size_t)snprintf(out + n, cap - n, " %u/%.*s=%.*s@%lld,%d,%d", c->col, (int)c->pathlen,
                              c->path ? (const char *)c->path : "", (int)c->vlen, (const char *)c->val,
                              (long long)c->ts, c->ttl, c->expiry);
    }
    if (n < cap) snprintf(out + n, cap - n, "]");
}

static void dump_part(storage *s, const char *pk, const st_slice *sl, size_t nsl, bool rev, char *out, size_t cap)
{
    out[0] = 0;
    st_iter *it = st_read(storage_table(s, T1), (const uint8_t *)pk, strlen(pk), sl, nsl, rev, NOW);
    st_row r;
    if (st_iter_static(it, &r)) dump_row(out, cap, &r);
    while (st_iter_next(it, &r)) dump_row(out, cap, &r);
    assert_int_equal(st_iter_status(it, NULL), 0);
    st_iter_destroy(it);
}

static void dump_scan(storage *s, char *out, size_t cap)
{
    out[0] = 0;
    st_scan *sc = st_scan_open(storage_table(s, T1), NULL, NOW);
    const uint8_t *pk;
    size_t len, n = 0;
    int64_t tok;
    while (st_scan_next_partition(sc, &pk, &len, &tok)) n += (size_t)snprintf(out + n, cap - n, "%.*s,", (int)len, pk);
    assert_int_equal(st_scan_status(sc, NULL), 0);
    st_scan_destroy(sc);
}

static void compare_all(storage *ref, storage *sut)
{
    static char a[1 << 16], b[1 << 16];
    char pk[8];
    st_slice sl[2] = {{{(const uint8_t *)"c03", 3, true, false}, {(const uint8_t *)"c07", 3, false, false}},
                      {{(const uint8_t *)"c1", 2, true, false}, {(const uint8_t *)"c1", 2, true, false}}};
    size_t seen = 0;
    for (int p = 0; p < 12; p++) {
        snprintf(pk, sizeof pk, "p%d", p);
        for (int rev = 0; rev < 2; rev++) {
            dump_part(ref, pk, NULL, 0, rev, a, sizeof a);
            dump_part(sut, pk, NULL, 0, rev, b, sizeof b);
            assert_string_equal(a, b);
            seen += strlen(a);
            dump_part(ref, pk, sl, 2, rev, a, sizeof a);
            dump_part(sut, pk, sl, 2, rev, b, sizeof b);
            assert_string_equal(a, b);
        }
    }
    dump_scan(ref, a, sizeof a);
    dump_scan(sut, b, sizeof b);
    assert_string_equal(a, b);
    assert_true(seen > 2000); /* the comparison saw real content */
}

static void random_op(storage **ss, size_t n, uint64_t *rng)
{
    uint64_t r = (*rng = *rng * 6364136223846793005ull + 1442695040888963407ull) >> 20;
    char pk[8], ck[8], path[8], val[16];
    snprintf(pk, sizeof pk, "p%d", (int)(r % 12));
    r /= 12;
    snprintf(ck, sizeof ck, "c%02d", (int)(r % 25));
    r /= 25;
    int64_t ts = 1 + (int64_t)(r % 500);
    r /= 500;
    int kind = (int)(r % 100);
    r /= 100;
    uint32_t col = 1 + (uint32_t)(r % 3);
    r /= 3;
    snprintf(val, sizeof val, "v%d", (int)(r % 1000));
    snprintf(path, sizeof path, "e%d", (int)(r % 4));
    for (size_t i = 0; i < n; i++) {
        st_mutation *m = mut(pk);
        if (kind < 2) st_mut_partition_delete(m, ts, NOW - 10);
        else if (kind < 5) {
            st_bound a = {(const uint8_t *)ck, 3, true, false}, b = {(const uint8_t *)"c2", 2, (r & 1) != 0, false};
            st_mut_range_delete(m, &a, &b, ts, NOW - 10);
        } else if (kind < 10) {
            st_mut_static(m);
            st_mut_cell(m, 9, (const uint8_t *)val, strlen(val), ts, 0, 0);
        } else {
            st_mut_row(m, (const uint8_t *)ck, 3);
            if (kind < 15) st_mut_row_delete(m, ts, NOW - 10);
            else if (kind < 25) st_mut_row_marker(m, ts, 0, 0);
            else if (kind < 30) st_mut_row_marker(m, ts, 100, NOW + (int32_t)(r % 3) - 1);
            else if (kind < 38) st_mut_cell_tombstone(m, col, ts, NOW - 10);
            else if (kind < 45) st_mut_cell(m, col, (const uint8_t *)val, strlen(val), ts, 50, NOW + (int32_t)(r % 3) - 1);
            else if (kind < 52) st_mut_cell_path(m, 5, (const uint8_t *)path, 2, (const uint8_t *)val, strlen(val), ts, 0, 0);
            else if (kind < 55) st_mut_complex_delete(m, 5, ts, NOW - 10);
            else st_mut_cell(m, col, (const uint8_t *)val, strlen(val), ts, 0, 0);
        }
        apply1(ss[i], m);
    }
}

static void test_merge_against_reference(void **state)
{
    dfx *f = *state;
    char refdir[128];
    snprintf(refdir, sizeof refdir, "%s/ref", f->root);
    mkdir(refdir, 0755);
    storage *ref = open_st(refdir, ST_SYNC_PERIODIC, NULL, 0);
    sib_err err;
    assert_int_equal(storage_replay(ref, NULL, &err), 0);
    uint64_t rng = 42;
    /* this reference reads at a fixed NOW in the past, while compaction turns
     * cells expired by the real clock into tombstones: no compaction here
     * (test_compaction compares compactions against a reference) */
    static const char *const off_k[] = {"enabled"}, *const off_v[] = {"false"};
    assert_int_equal(st_table_set_options(storage_table(f->s, T1), off_k, off_v, 1, -1, &err), 0);
    for (int round = 0; round < 8; round++) {
        storage *ss[2] = {ref, f->s};
        for (int i = 0; i < 400; i++) random_op(ss, 2, &rng);
        if (round % 3 != 2) flush_all(f->s); /* several SSTables + a memtable */
        compare_all(ref, f->s);
    }
    dreopen(f);
    compare_all(ref, f->s);
    storage_close(ref);
}

/* A partition of one row with an empty clustering key is a compact KV record
 * in the memtable; any other partition is a general one (storage_int.h).
 * The reference here is made general from the start (a partition deletion
 * older than every write: it shadows nothing), while the store under test
 * keeps KV records, rebuilds them (a new column, another size, a marker
 * gaining a TTL), overwrites them in place, and turns them into general
 * partitions now and then (a row or partition deletion, a static cell, a
 * complex deletion); it flushes too. Every read must agree. */
static void random_kv_op(storage **ss, uint64_t *rng)
{
    uint64_t r = (*rng = *rng * 6364136223846793005ull + 1442695040888963407ull) >> 16;
    char pk[8], path[8], val[24];
    snprintf(pk, sizeof pk, "p%d", (int)(r % 12));
    r /= 12;
    int nops = 1 + (int)(r % 3);
    r /= 3;
    st_mutation *m[2] = {mut(pk), mut(pk)};
    int kind0 = (int)(r % 200);
    r /= 200;
    for (int k = 0; k < 2; k++) {
        if (kind0 < 2) st_mut_partition_delete(m[k], 1 + (int64_t)(r % 400), NOW - 10);
        else if (kind0 < 4) {
            st_mut_static(m[k]);
            st_mut_cell(m[k], 9, (const uint8_t *)"s", 1, 1 + (int64_t)(r % 400), 0, 0);
        }
        st_mut_row(m[k], (const uint8_t *)"", 0);
    }
    for (int i = 0; i < nops; i++) {
        uint64_t x = (*rng = *rng * 6364136223846793005ull + 1442695040888963407ull) >> 16;
        int64_t ts = 1 + (int64_t)(x % 500);
        x /= 500;
        int kind = (int)(x % 100);
        x /= 100;
        uint32_t col = 1 + (uint32_t)(x % 4);
        x /= 4;
        /* values of several sizes: some writes fit in place, some do not */
        snprintf(val, sizeof val, "v%0*d", 1 + (int)(x % 3) * 4, (int)(x % 1000));
        snprintf(path, sizeof path, "e%d", (int)(x % 4));
        for (int k = 0; k < 2; k++) {
            if (kind < 2) st_mut_row_delete(m[k], ts, NOW - 10);
            else if (kind < 4) st_mut_complex_delete(m[k], 5, ts, NOW - 10);
            else if (kind < 14) st_mut_row_marker(m[k], ts, 0, 0);
            else if (kind < 20) st_mut_row_marker(m[k], ts, 100, NOW + (int32_t)(x % 3) - 1);
            else if (kind < 28) st_mut_cell_tombstone(m[k], col, ts, NOW - 10);
            else if (kind < 36) st_mut_cell(m[k], col, (const uint8_t *)val, strlen(val), ts, 50, NOW + (int32_t)(x % 3) - 1);
            else if (kind < 48) st_mut_cell_path(m[k], 5, (const uint8_t *)path, 2, (const uint8_t *)val, strlen(val), ts, 0, 0);
            else st_mut_cell(m[k], col, (const uint8_t *)val, strlen(val), ts, 0, 0);
        }
    }
    apply1(ss[0], m[0]);
    apply1(ss[1], m[1]);
}

static void test_kv_against_reference(void **state)
{
    dfx *f = *state;
    char refdir[128], pk[8];
    snprintf(refdir, sizeof refdir, "%s/ref", f->root);
    mkdir(refdir, 0755);
    storage *ref = open_st(refdir, ST_SYNC_PERIODIC, NULL, 0);
    sib_err err;
    assert_int_equal(storage_replay(ref, NULL, &err), 0);
    static const char *const off_k[] = {"enabled"}, *const off_v[] = {"false"};
    assert_int_equal(st_table_set_options(storage_table(f->s, T1), off_k, off_v, 1, -1, &err), 0);
    for (int p = 0; p < 12; p++) {
        snprintf(pk, sizeof pk, "p%d", p);
        st_mutation *m = mut(pk);
        st_mut_partition_delete(m, -1000, NOW - 10);
        apply1(ref, m);
    }
    uint64_t rng = 7;
    static char a[1 << 16], b[1 << 16];
    for (int round = 0; round < 10; round++) {
        storage *ss[2] = {ref, f->s};
        for (int i = 0; i < 300; i++) random_kv_op(ss, &rng);
        if (round % 3 == 1) flush_all(f->s);
        size_t seen = 0;
        for (int p = 0; p < 12; p++) {
            snprintf(pk, sizeof pk, "p%d", p);
            dump_part(ref, pk, NULL, 0, false, a, sizeof a);
            dump_part(f->s, pk, NULL, 0, false, b, sizeof b);
            assert_string_equal(a, b);
            seen += strlen(a);
        }
        dump_scan(ref, a, sizeof a);
        dump_scan(f->s, b, sizeof b);
        assert_string_equal(a, b);
        assert_true(seen > 300);
    }
    dreopen(f);
    storage_close(ref);
}

/* Writes flow while flushes run on the worker (a libev loop, small memtable). */
/* commitlog_total_space: with a memtable bound never reached, the tables
 * holding the oldest segment still flush once the live segments exceed the
 * bound, so the commitlog stays near it instead of growing with the data. */
static void test_commitlog_total_space_flushes(void **state)
{
    dfx *f = *state;
    storage_close(f->s);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    storage_opts o = {0};
    o.commitlog_dir = f->cl;
    o.data_dir = f->data;
    o.loop = loop;
    o.memtable_heap_space = (size_t)1 << 30;
    o.segment_size = 64 * 1024;
    o.commitlog_total_space = 256 * 1024;
    sib_err err = {0};
    assert_int_equal(storage_open(&f->s, &o, &err), 0);
    assert_int_equal(storage_replay(f->s, NULL, &err), 0);
    char pk[16], val[64];
    storage_stats st;
    for (int i = 0; i < 60000; i++) {
        snprintf(pk, sizeof pk, "k%06d", i);
        snprintf(val, sizeof val, "value-%d-%040d", i, i);
        put(f->s, pk, "", 1, val, 10, 0, 0);
        if (i % 100 == 0) ev_run(loop, EVRUN_NOWAIT);
    }
    ev_run(loop, EVRUN_NOWAIT); /* queued writes reach the memtable when the loop runs */
    /* While a flush runs, writes go on into the active memtable (the bound
     * is soft, as Cassandra's); the bound is checked again as writes come.
     * So keep writing a little, bounded in count and time, until the live
     * segments are back near the bound -- however slow the flushes are
     * (ASan, a loaded machine). Without the bound they never come back. */
    for (int k = 0; k < 2000; k++) {
        storage_get_stats(f->s, &st);
        if (!st.flushes_pending && st.cl_segments_live <= 8) break;
        for (int j = 0; j < 64; j++) put(f->s, "k000000", "", 1, "value-0-0000000000000000000000000000000000000000", 10, 0, 0);
        ev_run(loop, EVRUN_NOWAIT);
        struct timespec t = {0, 5 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    storage_get_stats(f->s, &st);
    assert_true(st.flushes >= 3);           /* the commitlog bound alone made them */
    assert_true(st.cl_segments_live <= 8);  /* 256 KiB = 4 segments of 64 KiB, + the current and
                                             * spares; about 96 without the bound */
    for (int i = 0; i < 60000; i += 37) {
        snprintf(pk, sizeof pk, "k%06d", i);
        snprintf(val, sizeof val, "value-%d-%040d", i, i);
        assert_string_equal(get(f->s, pk, "", 1), val);
    }
    storage_close(f->s);
    ev_loop_destroy(loop);
    f->s = open_data(f, 0, NULL);
    assert_string_equal(get(f->s, "k059999", "", 1), "value-59999-0000000000000000000000000000000000059999");
}

static void test_flush_while_writing(void **state)
{
    dfx *f = *state;
    storage_close(f->s);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    f->s = open_data(f, 256 * 1024, loop);
    char pk[16], val[128];
    /* about 8 MB of records: a memtable past its first chunks (2 MiB) flushes */
    for (int i = 0; i < 60000; i++) {
        snprintf(pk, sizeof pk, "k%06d", i);
        snprintf(val, sizeof val, "value-%d-%090d", i, i);
        put(f->s, pk, "", 1, val, 10, 0, 0);
        if (i % 100 == 0) ev_run(loop, EVRUN_NOWAIT);
        if (i % 997 == 0) { /* reads in between see everything so far */
            snprintf(pk, sizeof pk, "k%06d", i / 2);
            snprintf(val, sizeof val, "value-%d-%090d", i / 2, i / 2);
            assert_string_equal(get(f->s, pk, "", 1), val);
        }
    }
    cb_state cb = {0};
    sib_err err;
    assert_int_equal(storage_flush(f->s, NULL, on_done, &cb, &err), 0);
    while (!cb.calls) ev_run(loop, EVRUN_ONCE);
    storage_stats st;
    storage_get_stats(f->s, &st);
    assert_true(st.sstables >= 3);
    assert_int_equal(st.flushes_pending, 0);
    for (int i = 0; i < 60000; i += 7) {
        snprintf(pk, sizeof pk, "k%06d", i);
        snprintf(val, sizeof val, "value-%d-%090d", i, i);
        assert_string_equal(get(f->s, pk, "", 1), val);
    }
    storage_close(f->s);
    ev_loop_destroy(loop);
    f->s = open_data(f, 0, NULL);
    snprintf(val, sizeof val, "value-%d-%090d", 59999, 59999);
    assert_string_equal(get(f->s, "k059999", "", 1), val);
}

/* ---- compaction ---- */

static void table_dir(const dfx *f, char *out, size_t cap)
{
    snprintf(out, cap, "%s/0102030405060708090a0b0c0d0e0f10", f->data);
}

static size_t count_suffix(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name), k = strlen(suffix);
        if (de->d_name[0] != '.' && l >= k && !strcmp(de->d_name + l - k, suffix)) n++;
    }
    if (d) closedir(d);
    return n;
}

static void wait_compactions(storage *s)
{
    cb_state cb = {0};
    sib_err err;
    assert_int_equal(storage_compaction_wait(s, on_done, &cb, &err), 0);
    assert_int_equal(cb.calls, 1);
}

static void fill(storage *s, int from, int to, const char *val, int64_t ts)
{
    char pk[16];
    for (int i = from; i < to; i++) {
        snprintf(pk, sizeof pk, "k%04d", i);
        put(s, pk, "r", 1, val, ts, 0, 0);
    }
}

/* LCS with l0_compaction_trigger 3: two flushes wait in L0, the third
 * starts their merge (below sstable_size in all: the output stays in L0);
 * the stats count it as a merge into L0 of three L0 SSTables. */
static void test_lcs_l0_trigger_waits(void **state)
{
    dfx *f = *state;
    sib_err err;
    st_table *t = storage_table(f->s, T1);
    const char *k[] = {"class", "sstable_size_in_mb", "l0_compaction_trigger"};
    const char *v[] = {"LeveledCompactionStrategy", "1", "3"};
    assert_int_equal(st_table_set_options(t, k, v, 3, 100, &err), 0);
    st_table_stats ts;
    for (int round = 0; round < 3; round++) {
        fill(f->s, round * 50, round * 50 + 100, "v", 10 + round);
        flush_all(f->s);
        wait_compactions(f->s);
        st_table_get_stats(t, &ts);
        assert_int_equal(ts.compactions, round < 2 ? 0 : 1);
    }
    assert_int_equal(ts.sstables, 1);
    assert_int_equal(ts.cm_into_n[0], 1);
    assert_int_equal(ts.cm_into_l0[0], 3);
    assert_int_equal(ts.cm_into[0], ts.compaction_bytes_written);
    assert_string_equal(get(f->s, "k0000", "r", 1), "v");
    assert_string_equal(get(f->s, "k0199", "r", 1), "v");
}

/* Four flushes make one size-tiered bucket: they become one SSTable, the
 * newest values win, the stats give write amplification. */
static void test_stcs_compacts_flushes(void **state)
{
    dfx *f = *state;
    for (int round = 0; round < 4; round++) {
        char v[16];
        snprintf(v, sizeof v, "v%d", round);
        fill(f->s, round * 50, round * 50 + 100, v, 10 + round);
        flush_all(f->s);
    }
    wait_compactions(f->s);
    st_table_stats ts;
    st_table_get_stats(storage_table(f->s, T1), &ts);
    assert_int_equal(ts.sstables, 1);
    assert_int_equal(ts.compactions, 1);
    assert_int_equal(ts.flushes, 4);
    assert_true(ts.flush_bytes > 0 && ts.compaction_bytes_written > 0 && ts.compaction_bytes_read > 0);
    /* by kind: one merge of four L0 SSTables, its output at level 0 */
    assert_int_equal(ts.cm_into[0], ts.compaction_bytes_written);
    assert_int_equal(ts.cm_into_n[0], 1);
    assert_int_equal(ts.cm_into_l0[0], 4);
    assert_int_equal(ts.cm_tombstone_bytes + ts.cm_moves + ts.cm_moved_bytes, 0);
    assert_int_equal(ts.compactions_running, 0);
    storage_stats ss;
    storage_get_stats(f->s, &ss);
    assert_int_equal(ss.compactions, 1);
    assert_int_equal(ss.flush_bytes, ts.flush_bytes);
    assert_string_equal(get(f->s, "k0000", "r", 1), "v0");
    assert_string_equal(get(f->s, "k0075", "r", 1), "v1");
    assert_string_equal(get(f->s, "k0249", "r", 1), "v3");
    char dir[256];
    table_dir(f, dir, sizeof dir);
    dreopen(f);
    assert_int_equal(count_suffix(dir, "-TOC.txt"), 1);
    assert_int_equal(count_suffix(dir, "-txn.log"), 0);
    assert_string_equal(get(f->s, "k0125", "r", 1), "v2");
    st_compaction_info ci[4];
    assert_int_equal(storage_compaction_progress(f->s, ci, 4), 0);
}

/* sstableexpiredblockers: an SSTable of old live data blocks the drop of a
 * newer expired one, and so does an old write in the memtable. */
static void test_expired_blockers(void **state)
{
    dfx *f = *state;
    sib_err err;
    int32_t now = (int32_t)time(NULL);
    assert_int_equal(st_table_set_options(storage_table(f->s, T1), NULL, NULL, 0, 0, &err), 0);
    st_expiry_blocker *b;
    size_t n;
    assert_int_equal(st_table_expired_blockers(storage_table(f->s, T1), now, &b, &n, &err), 0);
    assert_int_equal(n, 0);
    st_expiry_blockers_free(b, n);
    put(f->s, "old", "r", 1, "live", 1000, 0, 0);
    flush_all(f->s);
    put(f->s, "gone", "r", 1, "x", 2000, 1, now - 10); /* expired 10 s ago */
    flush_all(f->s);
    assert_int_equal(st_table_expired_blockers(storage_table(f->s, T1), now, &b, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(b[0].blocker.min_ts, 1000);
    assert_int_equal(b[0].blocker.max_ldt, ST_NO_DELETION_TIME);
    assert_non_null(b[0].blocker.data_path);
    assert_int_equal(b[0].nblocked, 1);
    assert_int_equal(b[0].blocked[0].max_ts, 2000);
    assert_int_equal(b[0].blocked[0].max_ldt, now - 10);
    st_expiry_blockers_free(b, n);
    put(f->s, "older", "r", 1, "mem", 500, 0, 0);
    assert_int_equal(st_table_expired_blockers(storage_table(f->s, T1), now, &b, &n, &err), 0);
    assert_int_equal(n, 2);
    bool mem = false;
    for (size_t i = 0; i < n; i++) mem |= !b[i].blocker.data_path && b[i].blocker.min_ts == 500;
    assert_true(mem);
    st_expiry_blockers_free(b, n);
    /* before gc_grace has passed nothing is gc-able, so nothing is blocked */
    assert_int_equal(st_table_set_options(storage_table(f->s, T1), NULL, NULL, 0, 3600, &err), 0);
    assert_int_equal(st_table_expired_blockers(storage_table(f->s, T1), now, &b, &n, &err), 0);
    assert_int_equal(n, 0);
    st_expiry_blockers_free(b, n);
}

/* gc_grace 0: a major compaction purges the tombstones and what they
 * shadow; older data in a memtable blocks the purge (it would come back). */
static void test_major_compaction_purges(void **state)
{
    dfx *f = *state;
    sib_err err;
    int32_t now = (int32_t)time(NULL);
    assert_int_equal(st_table_set_options(storage_table(f->s, T1), NULL, NULL, 0, 0, &err), 0);
    fill(f->s, 0, 40, "live", 10);
    flush_all(f->s);
    for (int i = 0; i < 20; i++) {
        char pk[16];
        snprintf(pk, sizeof pk, "k%04d", i);
        del_cell(f->s, pk, "r", 1, 20, now - 10);
    }
    flush_all(f->s);
    put(f->s, "k0005", "r", 1, "older-in-memtable", 5, 0, 0); /* shadowed by the tombstone at 20 */
    cb_state cb = {0};
    assert_int_equal(storage_compact(f->s, T1, on_done, &cb, &err), 0);
    assert_int_equal(cb.calls, 1);
    assert_int_equal(cb.rc, 0);
    st_table_stats ts;
    st_table_get_stats(storage_table(f->s, T1), &ts);
    assert_int_equal(ts.sstables, 1);
    assert_int_equal(ts.tombstones_purged, 0); /* the memtable's min ts (5) is below every tombstone */
    assert_null(get_at(f->s, "k0005", "r", 1, now));
    flush_all(f->s);
    assert_null(get_at(f->s, "k0005", "r", 1, now));
    /* now nothing older remains outside: the purge happens */
    cb = (cb_state){0};
    assert_int_equal(storage_compact(f->s, NULL, on_done, &cb, &err), 0);
    assert_int_equal(cb.rc, 0);
    st_table_get_stats(storage_table(f->s, T1), &ts);
    assert_true(ts.tombstones_purged >= 20);
    for (int i = 0; i < 40; i++) {
        char pk[16];
        snprintf(pk, sizeof pk, "k%04d", i);
        if (i < 20) assert_null(get_at(f->s, pk, "r", 1, now));
        else assert_string_equal(get_at(f->s, pk, "r", 1, now), "live");
    }
    dreopen(f);
    assert_null(get_at(f->s, "k0005", "r", 1, now));
    assert_string_equal(get_at(f->s, "k0030", "r", 1, now), "live");
}

/* A compaction in flight on a truncated table: its output is discarded,
 * nothing comes back, later writes stay. */
static void test_truncate_during_compaction(void **state)
{
    dfx *f = *state;
    sib_err err;
    for (int round = 0; round < 4; round++) {
        fill(f->s, 0, 300, "before", 10 + round);
        flush_all(f->s); /* the 4th queues a compaction on the worker */
    }
    assert_int_equal(storage_table_truncate(f->s, T1, NULL, NULL, &err), 0);
    put(f->s, "after", "r", 1, "kept", 50, 0, 0);
    wait_compactions(f->s);
    assert_null(get(f->s, "k0001", "r", 1));
    assert_string_equal(get(f->s, "after", "r", 1), "kept");
    st_table_stats ts;
    st_table_get_stats(storage_table(f->s, T1), &ts);
    assert_int_equal(ts.sstables, 0);
    char dir[256];
    table_dir(f, dir, sizeof dir);
    dreopen(f);
    assert_null(get(f->s, "k0001", "r", 1));
    assert_string_equal(get(f->s, "after", "r", 1), "kept");
    assert_int_equal(count_suffix(dir, "-txn.log"), 0);
    assert_int_equal(count_suffix(dir, "-TOC.txt"), 0); /* "after" is in the commitlog only */
}

/* Disk full (a file-size limit) during a compaction: it fails cleanly, the
 * inputs stay live and readable, and a later attempt succeeds. */
static void test_compaction_disk_full(void **state)
{
    dfx *f = *state;
    sib_err err;
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    for (int round = 0; round < 3; round++) {
        fill(f->s, round * 200, round * 200 + 200, big, 10);
        flush_all(f->s);
    }
    char dir[256];
    table_dir(f, dir, sizeof dir);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 8192; /* the output's Data.db needs far more */
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    cb_state cb = {0};
    assert_int_equal(storage_compact(f->s, T1, on_done, &cb, &err), 0);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(cb.calls, 1);
    assert_int_not_equal(cb.rc, 0);
    st_table_stats ts;
    st_table_get_stats(storage_table(f->s, T1), &ts);
    assert_int_equal(ts.sstables, 3);
    assert_int_equal(count_suffix(dir, "-TOC.txt"), 3);
    assert_int_equal(count_suffix(dir, ".tmp"), 0);
    assert_int_equal(count_suffix(dir, "-txn.log"), 0);
    assert_string_equal(get(f->s, "k0450", "r", 1), big);
    storage_stats ss;
    storage_get_stats(f->s, &ss);
    assert_int_equal(ss.compactions_failed, 1);
    cb = (cb_state){0};
    assert_int_equal(storage_compact(f->s, T1, on_done, &cb, &err), 0);
    assert_int_equal(cb.rc, 0);
    st_table_get_stats(storage_table(f->s, T1), &ts);
    assert_int_equal(ts.sstables, 1);
    assert_string_equal(get(f->s, "k0450", "r", 1), big);
}

/* Options reach the strategy: min_threshold 2 compacts two flushes; a bad
 * map is refused and changes nothing. */
static void test_table_options(void **state)
{
    dfx *f = *state;
    sib_err err;
    st_table *t = storage_table(f->s, T1);
    const char *bk[] = {"class", "bucket_high"}, *bv[] = {"SizeTieredCompactionStrategy", "0.1"};
    assert_int_equal(st_table_set_options(t, bk, bv, 2, 100, &err), SIB_ECONFIG);
    const char *k[] = {"class", "min_threshold"}, *v[] = {"SizeTieredCompactionStrategy", "2"};
    assert_int_equal(st_table_set_options(t, k, v, 2, 100, &err), 0);
    fill(f->s, 0, 10, "a", 10);
    flush_all(f->s);
    fill(f->s, 5, 15, "b", 11);
    flush_all(f->s);
    wait_compactions(f->s);
    st_table_stats ts;
    st_table_get_stats(t, &ts);
    assert_int_equal(ts.sstables, 1);
    assert_string_equal(get(f->s, "k0007", "r", 1), "b");
}

/* DROP removes the table directory (once its files are gone); with
 * auto_snapshot the SSTables survive as hard links under snapshots/. */
static void test_drop_and_snapshot(void **state)
{
    dfx *f = *state;
    sib_err err;
    char dir[256];
    table_dir(f, dir, sizeof dir);
    fill(f->s, 0, 10, "a", 10);
    flush_all(f->s);
    assert_int_equal(storage_table_drop(f->s, T1, NULL, NULL, &err), 0);
    dreopen(f);
    storage_close(f->s); /* the flush thread's queued unlinks and rmdir are done */
    struct stat st;
    assert_int_not_equal(stat(dir, &st), 0);
    storage_opts o = {0};
    o.commitlog_dir = f->cl;
    o.data_dir = f->data;
    o.auto_snapshot = true;
    assert_int_equal(storage_open(&f->s, &o, &err), 0);
    assert_int_equal(storage_replay(f->s, NULL, &err), 0);
    fill(f->s, 0, 10, "b", 20);
    flush_all(f->s);
    assert_int_equal(storage_table_truncate(f->s, T1, NULL, NULL, &err), 0);
    dreopen(f);
    assert_null(get(f->s, "k0001", "r", 1));
    char snap[300];
    snprintf(snap, sizeof snap, "%s/snapshots", dir);
    DIR *d = opendir(snap);
    assert_non_null(d);
    struct dirent *de;
    char sub[600] = "";
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, "truncated-", 10)) snprintf(sub, sizeof sub, "%s/%s", snap, de->d_name);
    closedir(d);
    assert_true(sub[0]);
    assert_int_equal(count_suffix(sub, "-TOC.txt"), 1);
    assert_int_equal(count_suffix(sub, "-Data.db"), 1);
}

/* ---- block cache ---- */

static storage *open_cache(dfx *f, int64_t cache)
{
    storage_opts o = {0};
    o.commitlog_dir = f->cl;
    o.data_dir = f->data;
    o.sstable_block_size = 1024;
    o.block_cache_size = cache;
    storage *s;
    sib_err err = {0};
    assert_int_equal(storage_open(&s, &o, &err), 0);
    assert_int_equal(storage_replay(s, NULL, &err), 0);
    return s;
}

static storage_stats sstats(storage *s)
{
    storage_stats st;
    storage_get_stats(s, &st);
    return st;
}

#define VAL40 "0123456789abcdefghij0123456789abcdefghij"

/* The default cache (a quarter of the memory budget, at most 512 MiB): a
 * second read of a block is a hit. */
static void test_block_cache_hits(void **state)
{
    dfx *f = *state;
    fill(f->s, 0, 300, VAL40, 10);
    flush_all(f->s);
    storage_stats a = sstats(f->s);
    assert_int_equal(a.block_cache_capacity, SIB_MIN(sib_memory_budget() / 4, (uint64_t)512 << 20));
    assert_int_equal(a.block_cache_hits + a.block_cache_misses, 0);
    assert_string_equal(get(f->s, "k0042", "r", 1), VAL40);
    storage_stats b = sstats(f->s);
    assert_true(b.block_cache_misses >= 1 && b.block_cache_entries >= 1 && b.block_cache_bytes > 0);
    for (int i = 0; i < 5; i++) assert_string_equal(get(f->s, "k0042", "r", 1), VAL40);
    storage_stats c = sstats(f->s);
    assert_int_equal(c.block_cache_misses, b.block_cache_misses);
    assert_true(c.block_cache_hits >= b.block_cache_hits + 5);
}

/* A small bound evicts and still reads right; a negative size disables it. */
static void test_block_cache_bound_and_off(void **state)
{
    dfx *f = *state;
    storage_close(f->s);
    f->s = open_cache(f, 4096);
    fill(f->s, 0, 2000, VAL40, 10);
    flush_all(f->s);
    char pk[16];
    for (int i = 0; i < 2000; i += 3) {
        snprintf(pk, sizeof pk, "k%04d", i);
        assert_string_equal(get(f->s, pk, "r", 1), VAL40);
    }
    storage_stats a = sstats(f->s);
    assert_int_equal(a.block_cache_capacity, 4096);
    assert_true(a.block_cache_evictions > 0 && a.block_cache_bytes <= 4096 && a.block_cache_entries >= 1);
    storage_close(f->s);
    f->s = open_cache(f, -1);
    for (int i = 0; i < 2000; i += 7) {
        snprintf(pk, sizeof pk, "k%04d", i);
        assert_string_equal(get(f->s, pk, "r", 1), VAL40);
    }
    a = sstats(f->s);
    assert_int_equal(a.block_cache_capacity, 0);
    assert_int_equal(a.block_cache_hits + a.block_cache_misses + a.block_cache_entries, 0);
}

/* Compaction replaces the inputs: their blocks leave the cache (on the
 * compaction worker, once the job is released: forgetting an SSTable walks
 * the whole cache, which a writer must not wait for), and reads of the
 * output see the merged (newest) values. */
static void test_block_cache_compaction(void **state)
{
    dfx *f = *state;
    fill(f->s, 0, 200, "v0", 10);
    flush_all(f->s);
    fill(f->s, 100, 300, "v1", 20);
    flush_all(f->s);
    assert_string_equal(get(f->s, "k0050", "r", 1), "v0");
    assert_string_equal(get(f->s, "k0150", "r", 1), "v1");
    assert_string_equal(get(f->s, "k0250", "r", 1), "v1");
    assert_true(sstats(f->s).block_cache_entries >= 3);
    cb_state cb = {0};
    sib_err err;
    assert_int_equal(storage_compact(f->s, T1, on_done, &cb, &err), 0);
    assert_int_equal(cb.rc, 0);
    storage_stats a = sstats(f->s);
    for (int i = 0; i < 1000 && a.block_cache_entries; i++) { /* bounded: 10 s */
        struct timespec t = {0, 10 * 1000 * 1000};
        nanosleep(&t, NULL);
        a = sstats(f->s);
    }
    assert_int_equal(a.sstables, 1);
    assert_int_equal(a.block_cache_entries, 0);
    assert_int_equal(a.block_cache_bytes, 0);
    assert_string_equal(get(f->s, "k0050", "r", 1), "v0");
    assert_string_equal(get(f->s, "k0150", "r", 1), "v1");
    assert_string_equal(get(f->s, "k0250", "r", 1), "v1");
    storage_stats b = sstats(f->s);
    assert_true(b.block_cache_entries >= 1 && b.block_cache_misses > a.block_cache_misses);
}

/* Truncate while an iterator reads a cached block of an SSTable: the
 * blocks leave the cache at once, the iterator keeps what it reads. */
static void test_block_cache_truncate_under_iterator(void **state)
{
    dfx *f = *state;
    const int n = 2000;
    char ck[16];
    for (int i = 0; i < n; i++) {
        snprintf(ck, sizeof ck, "r%05d", i);
        put(f->s, "wide", ck, 1, VAL40, 10, 0, 0);
    }
    flush_all(f->s);
    st_iter *it = st_read(storage_table(f->s, T1), (const uint8_t *)"wide", 4, NULL, 0, false, NOW);
    assert_non_null(it);
    st_row r;
    int i = 0;
    for (; i < 10; i++) assert_true(st_iter_next(it, &r));
    assert_true(sstats(f->s).block_cache_entries >= 1);
    sib_err err;
    assert_int_equal(storage_table_truncate(f->s, T1, NULL, NULL, &err), 0);
    storage_stats a = sstats(f->s);
    assert_int_equal(a.block_cache_entries, 0);
    assert_int_equal(a.block_cache_bytes, 0);
    for (; st_iter_next(it, &r); i++) {
        snprintf(ck, sizeof ck, "r%05d", i);
        assert_int_equal(r.cklen, strlen(ck));
        assert_memory_equal(r.ck, ck, r.cklen);
        assert_int_equal(r.cells[0].vlen, 40);
        assert_memory_equal(r.cells[0].val, VAL40, 40);
    }
    assert_true(i <= n);
    assert_int_equal(st_iter_status(it, NULL), 0);
    st_iter_destroy(it);
    assert_int_equal(sstats(f->s).block_cache_entries, 0);
    assert_null(get(f->s, "wide", "r00001", 1));
}

/* A printable string of n - 1 pseudo-random characters (LZ4 cannot shrink
 * it much), from seed. */
static void incompressible(char *buf, size_t n, uint64_t seed)
{
    for (size_t i = 0; i + 1 < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (char)('!' + (seed >> 33) % 90);
    }
    buf[n - 1] = 0;
}

/* Disk full during a flush: the flush fails cleanly (no SSTable, no tmp
 * file), the memtable stays readable, the next flush retries it. */
static void test_flush_disk_full(void **state)
{
    dfx *f = *state;
    sib_err err;
    char big[200]; /* incompressible: LZ4 must not fit it under the limit */
    incompressible(big, sizeof big, 7);
    fill(f->s, 0, 300, big, 10);
    char dir[256];
    table_dir(f, dir, sizeof dir);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 8192;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    cb_state cb = {0};
    assert_int_equal(storage_flush(f->s, NULL, on_done, &cb, &err), 0);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(cb.calls, 1);
    assert_int_not_equal(cb.rc, 0);
    assert_int_equal(count_suffix(dir, "-TOC.txt"), 0);
    assert_int_equal(count_suffix(dir, ".tmp"), 0);
    assert_string_equal(get(f->s, "k0123", "r", 1), big);
    flush_all(f->s); /* the retry */
    assert_int_equal(count_suffix(dir, "-TOC.txt"), 1);
    dreopen(f);
    assert_string_equal(get(f->s, "k0299", "r", 1), big);
}

/* Makes T1's flushes fail as a full data disk would: its directory (path
 * in dir) becomes a plain file, once the table is loaded. */
static void block_flushes(dfx *f, char *dir, size_t cap)
{
    table_dir(f, dir, cap);
    assert_non_null(storage_table(f->s, T1)); /* loaded before its directory is in the way */
    rmdir(dir);
    FILE *blk = fopen(dir, "w");
    assert_non_null(blk);
    fclose(blk);
}

/* Flushes that fail (here the table's directory is a plain file, as a
 * full data disk would make them fail) leave their memtables frozen; past
 * half the bound (64 MiB here) writes are deferred on a timer, longer as
 * the backlog grows; past twice the bound they are refused with SIB_EAGAIN
 * (Overloaded) before anything is logged, instead of piling memtables up
 * until the process runs out of memory. Once the flushes can go, they are
 * retried and writes are accepted again; what was acknowledged is all there. */
static void test_flush_backlog_refuses_writes(void **state)
{
    dfx *f = *state;
    storage_close(f->s);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    f->s = open_data(f, 4u << 20, loop);
    char dir[256], pk[16], val[1000]; /* get() copies up to 1 KiB */
    block_flushes(f, dir, sizeof dir);
    memset(val, 'v', sizeof val - 1);
    val[sizeof val - 1] = 0;
    int accepted = 0, refused = 0;
    sib_err err;
    for (int i = 0; i < 200000 && !refused; i++) {
        snprintf(pk, sizeof pk, "k%06d", i);
        st_mutation *m = mut(pk);
        st_mut_row(m, (const uint8_t *)"", 0);
        st_mut_cell(m, 1, (const uint8_t *)val, strlen(val), 10, 0, 0);
        int rc = storage_apply(f->s, &m, 1, NULL, NULL, &err);
        st_mutation_destroy(m);
        if (rc == SIB_EAGAIN) {
            assert_non_null(strstr(err.msg, "waiting for flush"));
            refused++;
        } else {
            assert_int_equal(rc, 0);
            accepted++;
        }
        if (i % 100 == 0) ev_run(loop, EVRUN_NOWAIT);
    }
    assert_int_equal(refused, 1);
    storage_stats full;
    storage_get_stats(f->s, &full);
    assert_true(full.memtable_bytes > (64u << 20)); /* memtables as they count, in whole chunks */
    assert_true(full.flushes_pending >= 8);
    assert_true(accepted > 20000);
    /* The disk is back. Refused writes have the failed flushes queued again
     * (once a second), so a client that retries gets in once they are done. */
    assert_int_equal(unlink(dir), 0);
    int rc = SIB_EAGAIN;
    cb_state after = {.rc = -1};
    for (int k = 0; k < 6000 && rc == SIB_EAGAIN; k++) { /* bounded: 60 s */
        st_mutation *m = mut("after");
        st_mut_row(m, (const uint8_t *)"", 0);
        st_mut_cell(m, 1, (const uint8_t *)"yes", 3, 11, 0, 0);
        rc = storage_apply(f->s, &m, 1, on_done, &after, &err);
        st_mutation_destroy(m); /* a deferred write holds its own copy */
        ev_run(loop, EVRUN_NOWAIT);
        struct timespec t = {0, 10 * 1000 * 1000};
        if (rc == SIB_EAGAIN) nanosleep(&t, NULL);
    }
    assert_int_equal(rc, 0);
    for (int j = 0; j < 6000 && !after.calls; j++) { /* bounded: 60 s; deferred while the backlog drains */
        ev_run(loop, EVRUN_NOWAIT);
        struct timespec t = {0, 10 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    assert_int_equal(after.calls, 1);
    assert_int_equal(after.rc, 0);
    assert_string_equal(get(f->s, "after", "", 1), "yes");
    storage_stats dl;
    storage_get_stats(f->s, &dl);
    assert_true(dl.writes_delayed > 0); /* between half the bound and twice it, writes were deferred */
    /* and a flush by hand takes every memtable left to an SSTable */
    storage_stats st;
    cb_state cb = {.rc = -1};
    for (int k = 0; k < 10 && (cb.rc || st.flushes_pending); k++) {
        cb = (cb_state){0};
        assert_int_equal(storage_flush(f->s, NULL, on_done, &cb, &err), 0);
        for (int j = 0; j < 6000 && !cb.calls; j++) { /* bounded: 60 s */
            ev_run(loop, EVRUN_NOWAIT);
            struct timespec t = {0, 10 * 1000 * 1000};
            nanosleep(&t, NULL);
        }
        storage_get_stats(f->s, &st);
    }
    assert_int_equal(cb.rc, 0);
    assert_int_equal(st.flushes_pending, 0);
    for (int i = 0; i < accepted; i += 997) {
        snprintf(pk, sizeof pk, "k%06d", i);
        assert_string_equal(get(f->s, pk, "", 1), val);
    }
    snprintf(pk, sizeof pk, "k%06d", accepted); /* the refused write */
    assert_null(get(f->s, pk, "", 1));
    storage_close(f->s);
    ev_loop_destroy(loop);
    f->s = open_data(f, 0, NULL);
    snprintf(pk, sizeof pk, "k%06d", accepted - 1);
    assert_string_equal(get(f->s, pk, "", 1), val);
    snprintf(pk, sizeof pk, "k%06d", accepted);
    assert_null(get(f->s, pk, "", 1));
}

/* The memtables being flushed count against memtable_heap_space, as in
 * Cassandra: a flush starts when the active ones reach half of it (here 16
 * MiB: after about 10 MiB of writes a memtable is frozen, where it used to
 * wait for 16). */
static void test_flush_at_half_heap_space(void **state)
{
    dfx *f = *state;
    storage_close(f->s);
    f->s = open_data(f, 16u << 20, NULL);
    char pk[16], val[1000];
    memset(val, 'v', sizeof val - 1);
    val[sizeof val - 1] = 0;
    storage_stats st = {0};
    int i = 0;
    for (; i < 16000 && !st.flushes && !st.flushes_pending; i++) {
        snprintf(pk, sizeof pk, "k%06d", i);
        put(f->s, pk, "", 1, val, 10, 0, 0);
        if (i % 64 == 63) storage_get_stats(f->s, &st);
    }
    assert_true(st.flushes + st.flushes_pending >= 1);
    assert_true((size_t)i * sizeof val < (12u << 20)); /* well before the whole 16 MiB */
    flush_all(f->s);
    for (int k = 0; k < i; k += 101) {
        snprintf(pk, sizeof pk, "k%06d", k);
        assert_string_equal(get(f->s, pk, "", 1), val);
    }
}

/* Without a loop, flushes that fall behind (here they fail: the table's
 * directory is a plain file) slow writers down instead of stopping them:
 * every write is accepted, none is delayed while the memtables (active and
 * frozen) stay under 3/4 of the bound L = 64 MiB, writes are delayed past
 * it, and once the disk is back everything flushes and reads back. */
static void test_loopless_writes_delayed_not_stalled(void **state)
{
    dfx *f = *state;
    storage_close(f->s);
    f->s = open_data(f, 4u << 20, NULL);
    char dir[256], pk[16], val[1000];
    block_flushes(f, dir, sizeof dir);
    memset(val, 'v', sizeof val - 1);
    val[sizeof val - 1] = 0;
    storage_stats st = {0};
    int i = 0;
    for (; i < 200000 && st.writes_delayed < 50; i++) {
        snprintf(pk, sizeof pk, "k%06d", i);
        put(f->s, pk, "", 1, val, 10, 0, 0); /* asserts it is accepted */
        if (i % 64 == 0) {
            storage_get_stats(f->s, &st);
            if (st.memtable_bytes < (44u << 20)) assert_int_equal(st.writes_delayed, 0);
        }
    }
    assert_true(st.writes_delayed >= 50);
    assert_true(st.memtable_bytes >= (44u << 20));
    assert_true(st.flushes_pending >= 2);
    assert_int_equal(unlink(dir), 0);
    sib_err err;
    for (int k = 0; k < 10 && st.flushes_pending; k++) {
        (void)storage_flush(f->s, NULL, NULL, NULL, &err); /* no loop: returns once done (or failed) */
        storage_get_stats(f->s, &st);
    }
    assert_int_equal(st.flushes_pending, 0);
    for (int k = 0; k < i; k += 997) {
        snprintf(pk, sizeof pk, "k%06d", k);
        assert_string_equal(get(f->s, pk, "", 1), val);
    }
}

/* Flushes that complete out of order: an older memtable's flush fails (too
 * big for the disk left, here RLIMIT_FSIZE) and is retried together with a
 * newer one, which is small and succeeds, while the retry fails again. The
 * newer SSTable must not cover the older memtable's commitlog entries: after
 * a restart (the older memtable was never an SSTable) they are replayed. */
static void test_flush_out_of_order_keeps_older_writes(void **state)
{
    dfx *f = *state;
    sib_err err;
    char big[200]; /* incompressible: LZ4 must not fit it under the limit */
    incompressible(big, sizeof big, 11);
    fill(f->s, 0, 300, big, 10); /* the older memtable: about 60 KB */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 8192;
    signal(SIGXFSZ, SIG_IGN);
    cb_state cb = {0};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    assert_int_equal(storage_flush(f->s, NULL, on_done, &cb, &err), 0);
    setrlimit(RLIMIT_FSIZE, &old);
    assert_int_not_equal(cb.rc, 0);
    put(f->s, "newer", "r", 1, "small", 20, 0, 0); /* the newer memtable: a few bytes */
    cb = (cb_state){0};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    assert_int_equal(storage_flush(f->s, NULL, on_done, &cb, &err), 0); /* the older again, then the newer */
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_not_equal(cb.rc, 0);
    storage_stats st;
    storage_get_stats(f->s, &st);
    assert_int_equal(st.sstables, 1);        /* the newer one made it */
    assert_int_equal(st.flushes_pending, 1); /* the older one waits */
    dreopen(f);                              /* its memtable is gone: the commitlog must bring it back */
    assert_string_equal(get(f->s, "newer", "r", 1), "small");
    for (int i = 0; i < 300; i += 7) {
        char pk[16];
        snprintf(pk, sizeof pk, "k%04d", i);
        assert_string_equal(get(f->s, pk, "r", 1), big);
    }
}

/* With a libev loop: a single SSTable made of gc-able tombstones is
 * compacted alone (tombstone_threshold) on the worker, the completion comes
 * back through ev_async, and nothing is left. */
static void test_tombstone_compaction_loop(void **state)
{
    dfx *f = *state;
    storage_close(f->s);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    f->s = open_data(f, 0, loop);
    sib_err err;
    const char *k[] = {"tombstone_compaction_interval"}, *v[] = {"0"};
    assert_int_equal(st_table_set_options(storage_table(f->s, T1), k, v, 1, 0, &err), 0);
    int32_t now = (int32_t)time(NULL);
    for (int i = 0; i < 50; i++) {
        char pk[16];
        snprintf(pk, sizeof pk, "k%04d", i);
        del_cell(f->s, pk, "r", 1, 20, now - 10);
    }
    cb_state cb = {0};
    assert_int_equal(storage_flush(f->s, NULL, on_done, &cb, &err), 0);
    while (!cb.calls) ev_run(loop, EVRUN_ONCE);
    cb = (cb_state){0};
    assert_int_equal(storage_compaction_wait(f->s, on_done, &cb, &err), 0);
    while (!cb.calls) ev_run(loop, EVRUN_ONCE);
    st_table_stats ts;
    st_table_get_stats(storage_table(f->s, T1), &ts);
    assert_int_equal(ts.compactions, 1);
    assert_true(ts.tombstones_purged >= 50);
    assert_int_equal(ts.sstables, 0);
    storage_close(f->s);
    ev_loop_destroy(loop);
    f->s = open_data(f, 0, NULL);
    assert_null(get_at(f->s, "k0001", "r", 1, now));
}

/* DROP with a compaction in flight: it is cancelled or its output discarded,
 * and the table directory goes once the files are gone. */
static void test_drop_during_compaction(void **state)
{
    dfx *f = *state;
    sib_err err;
    for (int round = 0; round < 4; round++) {
        fill(f->s, 0, 400, "before-the-drop", 10 + round);
        flush_all(f->s);
    }
    assert_int_equal(storage_table_drop(f->s, T1, NULL, NULL, &err), 0);
    wait_compactions(f->s);
    char dir[256];
    table_dir(f, dir, sizeof dir);
    dreopen(f);
    storage_close(f->s); /* queued unlinks and rmdirs are done */
    struct stat st;
    assert_int_not_equal(stat(dir, &st), 0);
    f->s = open_data(f, 0, NULL);
    assert_null(get(f->s, "k0001", "r", 1)); /* (re-creates an empty table) */
}

/* kill -9 at a random moment of a compaction (or between its commit and the
 * deletion of its inputs), many times: after a restart every value is the
 * last one written, deleted cells stay deleted, no txn log or tmp file is
 * left. The child writes and flushes everything first, then compacts; the
 * parent kills it at a random delay. */
static void crash_child(dfx *f, int wfd, int32_t now)
{
    storage *s = open_data(f, 0, NULL);
    sib_err err;
    const char *k[] = {"enabled"}, *v[] = {"false"}; /* only the majors below: six inputs */
    st_table_set_options(storage_table(s, T1), k, v, 1, 0, &err);
    char big[160];
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 400; i++) {
            char pk[16];
            snprintf(pk, sizeof pk, "k%04d", i);
            if (round == 5 && i % 3 == 0) {
                del_cell(s, pk, "r", 1, 100 + round, now - 10);
                continue;
            }
            snprintf(big, sizeof big, "r%d-%d-%0120d", round, i, i);
            put(s, pk, "r", 1, big, 100 + round, 0, 0);
        }
        flush_all(s);
    }
    if (write(wfd, "r", 1) != 1) _exit(3);
    for (int i = 0; i < 3; i++) storage_compact(s, NULL, NULL, NULL, &err);
    _exit(0);
}

static void test_kill_during_compaction(void **state)
{
    dfx *f = *state;
    storage_close(f->s);
    f->s = NULL;
    int32_t now = (int32_t)time(NULL);
    uint64_t rng = 99;
    char dir[256];
    table_dir(f, dir, sizeof dir);
    int mid = 0; /* kills that landed inside a compaction (not asserted: timing) */
    for (int iter = 0; iter < 12; iter++) {
        rm_tree(f->root);
        mkdir(f->root, 0755);
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            crash_child(f, p[1], now);
        }
        close(p[1]);
        char c;
        assert_int_equal(read(p[0], &c, 1), 1);
        close(p[0]);
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        usleep((useconds_t)((rng >> 33) % 30000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        size_t logs = count_suffix(dir, "-txn.log"), tocs = count_suffix(dir, "-TOC.txt");
        mid += logs > 0;
        fprintf(stderr, "kill after compaction start: %zu txn logs, %zu SSTables live on disk\n", logs, tocs);
        f->s = open_data(f, 0, NULL);
        wait_compactions(f->s); /* the loaded SSTables may start one at once */
        assert_int_equal(count_suffix(dir, "-txn.log"), 0);
        assert_int_equal(count_suffix(dir, ".tmp"), 0);
        for (int i = 0; i < 400; i++) {
            char pk[16], want[160];
            snprintf(pk, sizeof pk, "k%04d", i);
            snprintf(want, sizeof want, "r5-%d-%0120d", i, i);
            const char *got = get_at(f->s, pk, "r", 1, now);
            if (i % 3 == 0) assert_null(got);
            else assert_string_equal(got, want);
        }
        storage_close(f->s);
        f->s = NULL;
    }
    fprintf(stderr, "%d of 12 kills landed inside a compaction\n", mid);
    f->s = open_data(f, 0, NULL);
}


/* ---- the read pool (st_read_page) ---- */

typedef struct page_cb {
    int calls;
    st_rpage *page;
} page_cb;

static void on_page(void *ctx, st_rpage *pg)
{
    page_cb *c = ctx;
    c->calls++;
    st_rpage_destroy(c->page);
    c->page = pg;
}

/* One piece: inline (returns at once) or queued (the loop runs until it is
 * delivered, bounded). *queued tells which. */
static st_rpage *piece(storage *s, struct ev_loop *loop, const st_rreq *rq, bool *queued)
{
    page_cb cb = {0};
    st_rpage *pg = NULL;
    sib_err err = {0};
    int rc = st_read_page(storage_table(s, T1), rq, &pg, on_page, &cb, &err);
    assert_true(rc == 0 || rc == 1);
    if (queued) *queued = rc == 1;
    if (rc == 0) return pg;
    for (int i = 0; i < 20000 && !cb.calls; i++) {
        ev_run(loop, EVRUN_ONCE);
    }
    assert_int_equal(cb.calls, 1);
    return cb.page;
}

/* "pk/ck=val;" for every live row of a page into out. */
static void page_str(const st_rpage *pg, char *out, size_t cap)
{
    assert_int_equal(st_rpage_status(pg, NULL), 0);
    for (size_t i = 0; i < st_rpage_parts(pg); i++) {
        st_rpart p;
        st_rpage_part(pg, i, &p);
        for (size_t j = 0; j < p.nrows; j++) {
            st_row r;
            st_rpage_row(pg, i, j, &r);
            size_t n = strlen(out);
            snprintf(out + n, cap - n, "%.*s/%.*s=%.*s;", (int)p.pklen, (const char *)p.pk, (int)r.cklen,
                     (const char *)r.ck, r.ncells ? (int)r.cells[0].vlen : 0,
                     r.ncells ? (const char *)r.cells[0].val : "");
        }
    }
}

/* The same rows through st_scan + st_read on the loop: the reference. */
static void scan_str(storage *s, char *out, size_t cap)
{
    st_table *t = storage_table(s, T1);
    st_scan *sc = st_scan_open(t, NULL, NOW);
    const uint8_t *pk;
    size_t pklen;
    int64_t tok;
    char key[64];
    while (st_scan_next_partition(sc, &pk, &pklen, &tok)) {
        snprintf(key, sizeof key, "%.*s", (int)pklen, (const char *)pk);
        st_iter *it = st_read(t, pk, pklen, NULL, 0, false, NOW);
        st_row r;
        while (st_iter_next(it, &r)) {
            size_t n = strlen(out);
            snprintf(out + n, cap - n, "%s/%.*s=%.*s;", key, (int)r.cklen, (const char *)r.ck,
                     r.ncells ? (int)r.cells[0].vlen : 0, r.ncells ? (const char *)r.cells[0].val : "");
        }
        st_iter_destroy(it);
    }
    assert_int_equal(st_scan_status(sc, NULL), 0);
    st_scan_destroy(sc);
}

/* A whole scan in pieces of max_rows / max_parts, each resuming where the
 * last stopped (and continuing a partition cut mid-way). */
static void scan_in_pieces(storage *s, struct ev_loop *loop, size_t max_rows, size_t max_parts, char *out, size_t cap,
                           size_t *npieces)
{
    st_rreq rq = {.now_s = NOW, .max_rows = max_rows, .max_parts = max_parts};
    st_position pos;
    uint8_t key[64], ck[64];
    size_t keylen = 0, cklen = 0;
    bool cont = false;
    *npieces = 0;
    for (int guard = 0; guard < 100000; guard++) {
        st_slice sl = {{ck, cklen, false, false}, {NULL, 0, true, true}};
        st_rreq q = rq;
        if (cont) { /* the rest of a partition, after its last row */
            q.pk = key;
            q.pklen = keylen;
            q.slices = &sl;
            q.nslices = 1;
        }
        st_rpage *pg = piece(s, loop, &q, NULL);
        ++*npieces;
        page_str(pg, out, cap);
        size_t n = st_rpage_parts(pg);
        st_rpart last = {0};
        if (n) st_rpage_part(pg, n - 1, &last);
        if (n && !last.complete) {
            st_row r;
            st_rpage_row(pg, n - 1, last.nrows - 1, &r);
            memcpy(key, last.pk, last.pklen);
            keylen = last.pklen;
            memcpy(ck, r.ck, r.cklen);
            cklen = r.cklen;
            cont = true;
            if (!q.pk) { /* the scan goes on after that partition */
                pos = (st_position){last.token, key, keylen, false};
                rq.start = &pos;
            }
            st_rpage_destroy(pg);
            continue;
        }
        const uint8_t *rk;
        size_t rl;
        int64_t rt;
        bool more = !cont && st_rpage_resume(pg, &rk, &rl, &rt);
        if (more) {
            memcpy(key, rk, rl);
            keylen = rl;
            pos = (st_position){rt, key, keylen, false};
            rq.start = &pos;
        }
        st_rpage_destroy(pg);
        if (cont) { /* the partition is done: the scan continues after it */
            cont = false;
            pos = (st_position){sib_murmur3_token(key, keylen), key, keylen, false};
            rq.start = &pos;
            continue;
        }
        if (!more) return;
    }
    fail_msg("the scan never ended");
}

static storage *open_loop_data(dfx *f, struct ev_loop *loop, int threads)
{
    storage_close(f->s);
    storage_opts o = {0};
    o.commitlog_dir = f->cl;
    o.data_dir = f->data;
    o.loop = loop;
    o.sstable_block_size = 1024;
    o.concurrent_reads = threads;
    sib_err err = {0};
    assert_int_equal(storage_open(&f->s, &o, &err), 0);
    assert_int_equal(storage_replay(f->s, NULL, &err), 0);
    return f->s;
}

/* n whole-table pieces, queued together; their pages go to cbs[i]. */
static void queue_scans(storage *s, page_cb *cbs, int n)
{
    st_rreq rq = {.now_s = NOW};
    st_rpage *pg;
    sib_err err;
    for (int k = 0; k < n; k++)
        assert_int_equal(st_read_page(storage_table(s, T1), &rq, &pg, on_page, &cbs[k], &err), 1);
}

/* Back to the fixture's storage without a loop (dteardown closes it). */
static void close_loop_data(dfx *f, struct ev_loop *loop)
{
    storage_close(f->s);
    ev_loop_destroy(loop);
    f->s = open_data(f, 0, NULL);
}

static void flush_loop(storage *s, struct ev_loop *loop)
{
    cb_state cb = {0};
    sib_err err;
    ev_run(loop, EVRUN_NOWAIT); /* queued writes reach the memtable */
    assert_int_equal(storage_flush(s, NULL, on_done, &cb, &err), 0);
    for (int i = 0; i < 20000 && !cb.calls; i++) ev_run(loop, EVRUN_ONCE);
    assert_int_equal(cb.calls, 1);
    assert_int_equal(cb.rc, 0);
}

static void fill_parts(storage *s, int nparts, int nrows, const char *tag, int64_t ts)
{
    char pk[16], ck[16], val[32];
    for (int p = 0; p < nparts; p++)
        for (int r = 0; r < nrows; r++) {
            snprintf(pk, sizeof pk, "p%03d", p);
            snprintf(ck, sizeof ck, "c%03d", r);
            snprintf(val, sizeof val, "%s-%d-%d", tag, p, r);
            put(s, pk, ck, 1, val, ts, 0, 0);
        }
}

/* Pieces over SSTables, a frozen-then-flushed part and the active memtable
 * give exactly the rows st_scan + st_read give, however small the pieces. */
static void test_read_pool_pieces_match_reads(void **state)
{
    dfx *f = *state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    storage *s = open_loop_data(f, loop, 2);
    fill_parts(s, 40, 6, "a", 10);
    flush_loop(s, loop);
    fill_parts(s, 20, 3, "bb", 11); /* newer values over part of the SSTable */
    char pk[16];
    for (int p = 40; p < 55; p++) { /* partitions only in the active memtable */
        snprintf(pk, sizeof pk, "p%03d", p);
        put(s, pk, "c000", 1, "mem", 50, 0, 0);
    }
    del_cell(s, "p005", "c001", 1, 60, NOW - 10); /* a tombstone over the SSTable */
    ev_run(loop, EVRUN_NOWAIT);
    /* A partition read with SSTable data runs on the pool while its blocks
     * are not cached, then inline (block cache hits); a memory-only one
     * inline. */
    static char want[65536], got[65536];
    st_read_stats before, after;
    storage_read_stats(s, &before);
    bool queued;
    st_rreq rq = {.pk = (const uint8_t *)"p003", .pklen = 4, .now_s = NOW};
    for (int k = 0; k < 2; k++) {
        st_rpage *pg = piece(s, loop, &rq, &queued);
        assert_true(queued == (k == 0));
        got[0] = 0;
        page_str(pg, got, sizeof got);
        assert_string_equal(got, "p003/c000=bb-3-0;p003/c001=bb-3-1;p003/c002=bb-3-2;p003/c003=a-3-3;p003/c004=a-3-4;"
                                 "p003/c005=a-3-5;");
        st_rpage_destroy(pg);
    }
    st_rpage *pg;
    rq.pk = (const uint8_t *)"p050";
    pg = piece(s, loop, &rq, &queued);
    assert_false(queued);
    got[0] = 0;
    page_str(pg, got, sizeof got);
    assert_string_equal(got, "p050/c000=mem;");
    st_rpage_destroy(pg);
    rq.pk = (const uint8_t *)"nope";
    pg = piece(s, loop, &rq, &queued);
    assert_int_equal(st_rpage_parts(pg), 0);
    st_rpage_destroy(pg);
    storage_read_stats(s, &after);
    assert_true(after.pool_reads >= before.pool_reads + 1);
    assert_true(after.inline_reads >= before.inline_reads + 1);
    want[0] = 0;
    scan_str(s, want, sizeof want);
    assert_true(strlen(want) > 1000);
    const size_t bounds[][2] = {{0, 0}, {1, 1}, {5, 3}, {7, 1000}, {1000, 4}};
    for (size_t b = 0; b < SIB_ARRAY_LEN(bounds); b++) {
        got[0] = 0;
        size_t n;
        scan_in_pieces(s, loop, bounds[b][0], bounds[b][1], got, sizeof got, &n);
        assert_string_equal(got, want);
        if (bounds[b][0] == 1) assert_true(n > 200); /* one row per piece */
    }
    close_loop_data(f, loop);
}

/* "ck:ncells:first value;" per row, of an iterator or of a page's one
 * partition: a row of many cells shows as many as one. */
static void row_str(const st_row *r, char *out, size_t cap)
{
    size_t n = strlen(out);
    snprintf(out + n, cap - n, "%.*s:%zu:%.*s;", (int)r->cklen, (const char *)r->ck, r->ncells,
             r->ncells ? (int)r->cells[0].vlen : 0, r->ncells ? (const char *)r->cells[0].val : "");
}

/* The loop's inline reads share one recycled iterator, each read pool
 * worker has its own: a read after another with more sources, more or
 * longer slices, a partition deletion, range tombstones, the other order
 * or a row of many cells gives exactly the rows a fresh iterator gives. */
static void test_read_pool_recycled_iterator(void **state)
{
    dfx *f = *state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    storage *s = open_loop_data(f, loop, 2);
    fill_parts(s, 6, 4, "a", 10);
    put(s, "kv2", "", 1, "old", 5, 0, 0);
    flush_loop(s, loop);
    fill_parts(s, 3, 2, "b", 11); /* p000..p002: two sources */
    /* one-row partitions of an empty clustering key: kv's only source is
     * its memtable KV record (read without the merge), kv2 has an SSTable
     * too (merged): every slice gives both the same */
    put(s, "kv", "", 1, "new", 13, 0, 0);
    put(s, "kv2", "", 1, "new", 13, 0, 0);
    st_mutation *m = mut("p001");
    assert_int_equal(st_mut_partition_delete(m, 20, NOW), 0);
    apply1(s, m);
    m = mut("p002");
    st_bound rs = {(const uint8_t *)"c001", 4, true, false}, re = {(const uint8_t *)"c002", 4, true, false};
    assert_int_equal(st_mut_range_delete(m, &rs, &re, 30, NOW), 0);
    apply1(s, m);
    m = mut("p009"); /* one row of 300 cells, past what a recycled iterator keeps */
    assert_int_equal(st_mut_row(m, (const uint8_t *)"c000", 4), 0);
    for (uint32_t col = 1; col <= 300; col++) assert_int_equal(st_mut_cell(m, col, (const uint8_t *)"w", 1, 12, 0, 0), 0);
    apply1(s, m);
    ev_run(loop, EVRUN_NOWAIT);

    char longkey[300];
    memset(longkey, 'x', sizeof longkey);
    memcpy(longkey, "c001", 4);
    st_slice one = {{(const uint8_t *)"c001", 4, true, false}, {(const uint8_t *)"c002", 4, true, false}};
    st_slice two[2] = {{{(const uint8_t *)"c000", 4, true, false}, {(const uint8_t *)"c000", 4, true, false}},
                       {{(const uint8_t *)"c002", 4, true, false}, {NULL, 0, true, true}}};
    st_slice lng = {{(const uint8_t *)longkey, sizeof longkey, false, false}, {NULL, 0, true, true}};
    const struct {
        const char *pk;
        const st_slice *sl;
        size_t nsl;
        bool reversed;
    } reads[] = {
        {"p000", NULL, 0, false}, {"p001", NULL, 0, false}, {"p003", NULL, 0, false}, {"p002", two, 2, false},
        {"p004", &one, 1, true},   {"p009", NULL, 0, false}, {"p000", &lng, 1, false}, {"p002", NULL, 0, true},
        {"p005", two, 2, true},   {"p009", NULL, 0, false}, {"p001", &one, 1, false},  {"nope", NULL, 0, false},
        {"p003", &lng, 1, true},  {"p000", NULL, 0, false},
    };
    static char want[16384], got[16384];
    st_table *t = storage_table(s, T1);
    /* the first round's SSTable reads go to the pool, the second's not;
     * rounds 2 and 3 borrow (views into the memtables where they alone
     * answer, copies otherwise) */
    for (int round = 0; round < 4; round++)
        for (size_t i = 0; i < SIB_ARRAY_LEN(reads); i++) {
            const uint8_t *pk = (const uint8_t *)reads[i].pk;
            size_t pklen = strlen(reads[i].pk);
            want[0] = got[0] = 0;
            st_iter *it = st_read(t, pk, pklen, reads[i].sl, reads[i].nsl, reads[i].reversed, NOW);
            st_row r;
            while (st_iter_next(it, &r)) row_str(&r, want, sizeof want);
            assert_int_equal(st_iter_status(it, NULL), 0);
            st_iter_destroy(it);
            st_rreq rq = {.pk = pk, .pklen = pklen, .slices = reads[i].sl, .nslices = reads[i].nsl,
                          .reversed = reads[i].reversed, .borrow = round >= 2, .now_s = NOW};
            st_rpage *pg = piece(s, loop, &rq, NULL);
            assert_int_equal(st_rpage_status(pg, NULL), 0);
            for (size_t k = 0; k < st_rpage_parts(pg); k++) {
                st_rpart p;
                st_rpage_part(pg, k, &p);
                for (size_t j = 0; j < p.nrows; j++) {
                    st_rpage_row(pg, k, j, &r);
                    row_str(&r, got, sizeof got);
                }
            }
            st_rpage_destroy(pg);
            assert_string_equal(got, want);
        }
    st_slice after_empty = {{(const uint8_t *)"", 0, false, false}, {NULL, 0, true, true}};
    st_slice upto_empty = {{NULL, 0, true, true}, {(const uint8_t *)"", 0, true, false}};
    st_slice kvsl[][2] = {{after_empty, after_empty}, {upto_empty, upto_empty}, {one, one}, {upto_empty, one}};
    for (size_t v = 0; v < 2 * (SIB_ARRAY_LEN(kvsl) + 1); v++) {
        size_t k = v / 2;
        const st_slice *sl = k ? kvsl[k - 1] : NULL;
        size_t nsl = k == 4 ? 2 : k ? 1 : 0;
        static const char *const expect[] = {":1:new;", "", ":1:new;", "", ":1:new;"};
        for (int which = 0; which < 4; which++) { /* 2, 3: borrowing */
            const char *pk = which % 2 ? "kv2" : "kv";
            st_rreq rq = {.pk = (const uint8_t *)pk, .pklen = strlen(pk), .slices = sl, .nslices = nsl,
                          .reversed = v % 2, .borrow = which >= 2, .now_s = NOW};
            st_rpage *pg = piece(s, loop, &rq, NULL);
            got[0] = 0;
            st_rpart p = {0};
            if (st_rpage_parts(pg)) st_rpage_part(pg, 0, &p);
            st_row r;
            for (size_t j = 0; j < p.nrows; j++) {
                st_rpage_row(pg, 0, j, &r);
                row_str(&r, got, sizeof got);
            }
            st_rpage_destroy(pg);
            assert_string_equal(got, expect[k]);
        }
    }
    /* what the reads above must have shown */
    want[0] = 0;
    st_iter *it = st_read(t, (const uint8_t *)"p002", 4, NULL, 0, false, NOW);
    st_row r;
    while (st_iter_next(it, &r)) row_str(&r, want, sizeof want);
    st_iter_destroy(it);
    assert_string_equal(want, "c000:1:b-2-0;c003:1:a-2-3;");
    want[0] = 0;
    it = st_read(t, (const uint8_t *)"p009", 4, NULL, 0, false, NOW);
    while (st_iter_next(it, &r)) row_str(&r, want, sizeof want);
    st_iter_destroy(it);
    assert_string_equal(want, "c000:300:w;");
    close_loop_data(f, loop);
}

/* A borrowing read (st_rreq.borrow) that the memtables alone answer keeps
 * views into them: the page holds them referenced, so its rows stay whole
 * even when their memtable is flushed and let go before the page is; one
 * that needs an SSTable copies its rows as any other. Either way the page
 * shows what a copying read shows. */
static void test_read_pool_borrowed_pages(void **state)
{
    dfx *f = *state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    storage *s = open_loop_data(f, loop, 2);
    put(s, "mixed", "c000", 1, "flushed", 10, 0, 0);
    flush_loop(s, loop);
    put(s, "mixed", "c001", 1, "active", 11, 0, 0); /* and an SSTable row: copied */
    put(s, "kv", "", 1, "one-row", 10, 0, 0);       /* a KV record */
    put(s, "kv", "", 2, "second-cell", 10, 0, 0);
    char ck[8], val[16];
    for (int r = 0; r < 9; r++) { /* several rows, and cells past the page's first row room */
        snprintf(ck, sizeof ck, "c%03d", r);
        for (uint32_t col = 1; col <= 6; col++) {
            snprintf(val, sizeof val, "v%d-%u", r, col);
            put(s, "rows", ck, col, val, 10, 0, 0);
        }
    }
    del_cell(s, "rows", "c004", 1, 20, NOW - 5); /* a tombstone among them */
    st_mutation *m = mut("rows"); /* and a static row */
    assert_int_equal(st_mut_static(m), 0);
    assert_int_equal(st_mut_cell(m, 9, (const uint8_t *)"static", 6, 10, 0, 0), 0);
    apply1(s, m);
    ev_run(loop, EVRUN_NOWAIT);
    static const char *const keys[] = {"kv", "rows", "mixed", "none"};
    st_rpage *pages[SIB_ARRAY_LEN(keys)];
    char want[SIB_ARRAY_LEN(keys)][2048];
    for (size_t i = 0; i < SIB_ARRAY_LEN(keys); i++) {
        st_rreq rq = {.pk = (const uint8_t *)keys[i], .pklen = strlen(keys[i]), .with_static = true, .now_s = NOW};
        st_rpage *pg = piece(s, loop, &rq, NULL);
        want[i][0] = 0;
        page_str(pg, want[i], sizeof want[i]);
        st_rpage_destroy(pg);
        rq.borrow = true;
        bool queued;
        pages[i] = piece(s, loop, &rq, &queued);
        if (strcmp(keys[i], "mixed")) assert_false(queued); /* memory answers them */
    }
    assert_string_equal(want[0], "kv/=one-row;");
    assert_non_null(strstr(want[1], "rows/c004=v4-2;"));
    assert_string_equal(want[2], "mixed/c000=flushed;mixed/c001=active;");
    assert_string_equal(want[3], "");
    flush_loop(s, loop); /* the memtable the views point into goes */
    put(s, "kv", "", 1, "ONE-ROW", 30, 0, 0);
    for (size_t i = 0; i < SIB_ARRAY_LEN(keys); i++) {
        char got[2048] = "";
        page_str(pages[i], got, sizeof got);
        assert_string_equal(got, want[i]);
        st_row sr;
        bool stat = st_rpage_parts(pages[i]) && st_rpage_static(pages[i], 0, &sr);
        assert_int_equal(stat, !strcmp(keys[i], "rows"));
        if (stat) {
            assert_int_equal(sr.ncells, 1);
            assert_memory_equal(sr.cells[0].val, "static", 6);
        }
        for (size_t k = 0; k < st_rpage_parts(pages[i]); k++) {
            st_rpart p;
            st_rpage_part(pages[i], k, &p);
            for (size_t j = 0; j < p.nrows; j++) { /* every cell, not only the first */
                st_row r;
                st_rpage_row(pages[i], k, j, &r);
                for (size_t c = 0; c < r.ncells; c++)
                    assert_true(r.cells[c].vlen > 0 && r.cells[c].val[0] != 'O');
                if (!strcmp(keys[i], "rows")) assert_int_equal(r.ncells, j == 4 ? 5 : 6);
            }
        }
        st_rpage_destroy(pages[i]);
    }
    close_loop_data(f, loop);
}

/* Everything a page says, each partition's flags and every cell. */
static void page_full_str(const st_rpage *pg, char *out, size_t cap)
{
    assert_int_equal(st_rpage_status(pg, NULL), 0);
    for (size_t i = 0; i < st_rpage_parts(pg); i++) {
        st_rpart p;
        st_rpage_part(pg, i, &p);
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "[%.*s live=%d complete=%d rows=%zu tombs=%llu]", (int)p.pklen,
                 (const char *)p.pk, p.live, p.complete, p.nrows, (unsigned long long)p.tombstones);
        for (size_t j = 0; j < p.nrows; j++) {
            st_row r;
            st_rpage_row(pg, i, j, &r);
            n = strlen(out);
            snprintf(out + n, cap - n, "(%.*s m=%d@%lld", (int)r.cklen, (const char *)r.ck, r.has_marker,
                     (long long)r.marker_ts);
            for (size_t c = 0; c < r.ncells; c++) {
                const st_cell_view *v = &r.cells[c];
                n = strlen(out);
                snprintf(out + n, cap - n, " %u=%.*s@%lld/%d", v->col, (int)v->vlen, (const char *)v->val,
                         (long long)v->ts, v->ttl);
            }
            n = strlen(out);
            snprintf(out + n, cap - n, ")");
        }
    }
}

/* Point reads of one-row partitions (KV records) that only the active
 * memtable holds take a shortcut without an iterator when they borrow; it
 * must say exactly what the full read says, with tombstones and expired
 * cells among the live ones, a partition deletion, slices that miss the
 * row, a bound of one row, and fall back when an SSTable or a frozen
 * memtable holds the partition too. */
static void test_read_pool_kv_shortcut(void **state)
{
    dfx *f = *state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    storage *s = open_loop_data(f, loop, 2);
    put(s, "old", "", 1, "flushed", 10, 0, 0);
    put(s, "gone", "", 1, "flushed", 10, 0, 0);
    flush_loop(s, loop);
    put(s, "old", "", 2, "active", 11, 0, 0);           /* SSTable + memtable */
    put(s, "live", "", 1, "a", 10, 0, 0);
    put(s, "live", "", 2, "bb", 10, 100, NOW + 50);     /* expiring, still live */
    put(s, "mixed", "", 1, "x", 10, 0, 0);
    del_cell(s, "mixed", "", 2, 12, NOW - 5);           /* a tombstone */
    put(s, "mixed", "", 3, "late", 10, 10, NOW - 1);    /* expired */
    del_cell(s, "dead", "", 1, 12, NOW - 5);            /* nothing live */
    put(s, "pdel", "", 1, "before", 10, 0, 0);
    st_mutation *m = mut("pdel");
    assert_int_equal(st_mut_partition_delete(m, 20, NOW - 5), 0);
    apply1(s, m);
    put(s, "pdel", "", 2, "after", 30, 0, 0);
    for (uint32_t col = 1; col <= 7; col++) /* more cells than the page's first-row room */
        put(s, "wide", "", col, col == 4 ? "" : "w", 10, 0, 0);
    del_cell(s, "wide", "", 5, 11, NOW - 5);
    m = mut("marker"); /* a row marker only (an INSERT of the key alone) */
    assert_int_equal(st_mut_row(m, (const uint8_t *)"", 0), 0);
    assert_int_equal(st_mut_row_marker(m, 10, 0, ST_NO_DELETION_TIME), 0);
    apply1(s, m);
    ev_run(loop, EVRUN_NOWAIT);
    cb_state cb = {0};
    st_slice after_empty = {{(const uint8_t *)"", 0, false, false}, {NULL, 0, true, true}};
    st_slice upto_empty = {{NULL, 0, true, true}, {(const uint8_t *)"", 0, true, false}};
    st_slice both[2] = {after_empty, after_empty};
    const struct {
        const st_slice *sl;
        size_t nsl;
        size_t max_rows;
    } shapes[] = {{NULL, 0, 0}, {NULL, 0, 1}, {&after_empty, 1, 0}, {&upto_empty, 1, 0}, {both, 2, 0}};
    static const char *const keys[] = {"live", "mixed", "dead", "pdel", "marker", "wide", "old", "gone", "absent"};
    char want[4096], got[4096];
    for (int round = 0; round < 2; round++) {
        for (size_t k = 0; k < SIB_ARRAY_LEN(keys); k++)
            for (size_t h = 0; h < SIB_ARRAY_LEN(shapes); h++) {
                st_rreq rq = {.pk = (const uint8_t *)keys[k], .pklen = strlen(keys[k]), .slices = shapes[h].sl,
                              .nslices = shapes[h].nsl, .max_rows = shapes[h].max_rows, .now_s = NOW};
                want[0] = got[0] = 0;
                st_rpage *pg = piece(s, loop, &rq, NULL);
                page_full_str(pg, want, sizeof want);
                st_rpage_destroy(pg);
                rq.borrow = true;
                pg = piece(s, loop, &rq, NULL);
                page_full_str(pg, got, sizeof got);
                st_rpage_destroy(pg);
                assert_string_equal(got, want);
                if (h == 0 && round == 0 && !strcmp(keys[k], "mixed"))
                    assert_string_equal(want, "[mixed live=1 complete=1 rows=1 tombs=2]"
                                              "( m=0@-9223372036854775808 1=x@10/0)");
                if (h == 1 && round == 0 && !strcmp(keys[k], "live"))
                    assert_string_equal(want, "[live live=1 complete=0 rows=1 tombs=0]"
                                              "( m=0@-9223372036854775808 1=a@10/0 2=bb@10/100)");
                if (h == 0 && round == 0 && !strcmp(keys[k], "dead"))
                    assert_string_equal(want, "[dead live=0 complete=1 rows=0 tombs=1]");
                if (h == 0 && round == 0 && !strcmp(keys[k], "wide"))
                    assert_string_equal(want, "[wide live=1 complete=1 rows=1 tombs=1]( m=0@-9223372036854775808 "
                                              "1=w@10/0 2=w@10/0 3=w@10/0 4=@10/0 6=w@10/0 7=w@10/0)");
            }
        if (round == 1) break;
        /* the second round while that memtable is flushed (frozen beside
         * the new active one until the flush is delivered) */
        sib_err err;
        assert_int_equal(storage_flush(s, NULL, on_done, &cb, &err), 0);
        put(s, "live", "", 3, "newer", 40, 0, 0);
        ev_run(loop, EVRUN_NOWAIT); /* the write reaches the new memtable */
    }
    for (int i = 0; i < 20000 && !cb.calls; i++) ev_run(loop, EVRUN_ONCE);
    assert_int_equal(cb.rc, 0);
    close_loop_data(f, loop);
}

/* A piece reads the table as it was when it was asked for: writes that
 * arrive while it runs (same-size values overwritten in place in the
 * active memtable, new partitions, a flush completing) do not tear its
 * rows, and the next piece sees them. Run under TSan (SIB_TSAN), this is
 * the read/write concurrency test. */
static void test_read_pool_snapshot_under_writes(void **state)
{
    dfx *f = *state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    storage *s = open_loop_data(f, loop, 3);
    fill_parts(s, 30, 4, "x", 10);
    flush_loop(s, loop);
    fill_parts(s, 30, 4, "y", 11); /* active memtable over the SSTable */
    ev_run(loop, EVRUN_NOWAIT);
    static char want[65536], got[65536];
    want[0] = 0;
    scan_str(s, want, sizeof want);
    for (int round = 0; round < 20; round++) {
        page_cb cbs[4] = {{0}};
        sib_err err;
        queue_scans(s, cbs, 4);
        /* meanwhile: same-size overwrites (in place) and new partitions */
        fill_parts(s, 30, 4, round % 2 ? "z" : "w", 100 + round); /* newer: in place */
        char pk[16];
        snprintf(pk, sizeof pk, "q%03d", round);
        put(s, pk, "c000", 1, "new", 70, 0, 0);
        if (round % 5 == 4) {
            ev_run(loop, EVRUN_NOWAIT);
            assert_int_equal(storage_flush(s, NULL, NULL, NULL, &err), 0); /* completes while pieces run */
        }
        for (int i = 0; i < 20000; i++) {
            bool all = true;
            for (int k = 0; k < 4; k++) all = all && cbs[k].calls;
            if (all) break;
            ev_run(loop, EVRUN_ONCE);
        }
        for (int k = 0; k < 4; k++) {
            assert_int_equal(cbs[k].calls, 1);
            got[0] = 0;
            page_str(cbs[k].page, got, sizeof got);
            assert_string_equal(got, want);
            st_rpage_destroy(cbs[k].page);
        }
        ev_run(loop, EVRUN_NOWAIT);
        want[0] = 0;
        scan_str(s, want, sizeof want); /* the next pieces see the writes */
        assert_non_null(strstr(want, pk));
    }
    close_loop_data(f, loop);
}

/* Shutdown with pieces queued: every callback runs once, before the drain
 * returns, with its rows; later pieces are refused. */
static void test_read_pool_drain(void **state)
{
    dfx *f = *state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    storage *s = open_loop_data(f, loop, 1);
    fill_parts(s, 50, 2, "d", 10);
    flush_loop(s, loop);
    page_cb cbs[8] = {{0}};
    queue_scans(s, cbs, 8);
    st_rreq rq = {.now_s = NOW};
    st_rpage *pg;
    sib_err err;
    storage_read_drain(s);
    for (int k = 0; k < 8; k++) {
        assert_int_equal(cbs[k].calls, 1);
        assert_int_equal(st_rpage_status(cbs[k].page, NULL), 0);
        assert_int_equal(st_rpage_parts(cbs[k].page), 50);
        st_rpage_destroy(cbs[k].page);
    }
    assert_true(st_read_page(storage_table(s, T1), &rq, &pg, on_page, &cbs[0], &err) < 0);
    assert_non_null(strstr(err.msg, "shutting down"));
    close_loop_data(f, loop);
}

/* ---- the serialized form ---- */

/* The builder's bytes are the commitlog's format (mutation.c's header):
 * every op, written field by field here, a byte at a time. */
static void ref_v(sib_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        sib_buf_append(b, &(uint8_t){(uint8_t)(v | 0x80)}, 1);
        v >>= 7;
    }
    sib_buf_append(b, &(uint8_t){(uint8_t)v}, 1);
}

static void ref_zz(sib_buf *b, int64_t v) { ref_v(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63)); }
static void ref_op(sib_buf *b, uint8_t kind) { sib_buf_append(b, &kind, 1); }
static void ref_key(sib_buf *b, const char *k)
{
    ref_v(b, strlen(k));
    sib_buf_append(b, k, strlen(k));
}

static void test_mutation_bytes(void **state)
{
    (void)state;
    const int64_t ts = 1765000000123456; /* an 8-byte varint, zigzagged */
    char big[300];
    memset(big, 'v', sizeof big);
    sib_buf e;
    sib_buf_init(&e);
    sib_buf_append(&e, T1, 16);
    ref_key(&e, "pk");
    size_t ends[16], nends = 0; /* where the header and each op end */
    ends[nends++] = e.len;
    st_mutation *m = mut("pk");
    assert_int_equal(st_mut_partition_delete(m, -3, 77), 0);
    ref_op(&e, 1), ref_zz(&e, -3), ref_v(&e, 77);
    ends[nends++] = e.len;
    st_bound b0 = {(const uint8_t *)"a", 1, true, false}, b1 = {NULL, 0, false, true};
    assert_int_equal(st_mut_range_delete(m, &b0, &b1, ts, 1 << 30), 0);
    ref_op(&e, 2), ref_op(&e, 1), ref_key(&e, "a"), ref_op(&e, 2), ref_zz(&e, ts), ref_v(&e, 1 << 30);
    ends[nends++] = e.len;
    assert_int_equal(st_mut_row(m, (const uint8_t *)"ck", 2), 0);
    ref_op(&e, 3), ref_key(&e, "ck");
    ends[nends++] = e.len;
    assert_int_equal(st_mut_row_marker(m, ts, 0, 0), 0);
    ref_op(&e, 5), ref_zz(&e, ts), ref_v(&e, 0);
    ends[nends++] = e.len;
    assert_int_equal(st_mut_row_marker(m, ts + 1, 3600, NOW + 3600), 0);
    ref_op(&e, 5), ref_zz(&e, ts + 1), ref_v(&e, 3600), ref_v(&e, NOW + 3600);
    ends[nends++] = e.len;
    assert_int_equal(st_mut_row_delete(m, INT64_MIN + 1, NOW), 0);
    ref_op(&e, 6), ref_zz(&e, INT64_MIN + 1), ref_v(&e, NOW);
    ends[nends++] = e.len;
    assert_int_equal(st_mut_cell(m, 200, (const uint8_t *)big, sizeof big, ts, 0, 0), 0);
    ref_op(&e, 7), ref_v(&e, 200), ref_v(&e, 0), ref_zz(&e, ts), ref_v(&e, 0), ref_v(&e, sizeof big);
    sib_buf_append(&e, big, sizeof big);
    ends[nends++] = e.len;
    assert_int_equal(st_mut_cell_path(m, 3, (const uint8_t *)"el", 2, NULL, 0, -ts, 10, NOW + 10), 0);
    ref_op(&e, 7), ref_v(&e, 3), ref_key(&e, "el"), ref_zz(&e, -ts), ref_v(&e, 10), ref_v(&e, NOW + 10), ref_v(&e, 0);
    ends[nends++] = e.len;
    assert_int_equal(st_mut_cell_path_tombstone(m, 70000, (const uint8_t *)"el", 2, INT64_MAX, NOW), 0);
    ref_op(&e, 8), ref_v(&e, 70000), ref_key(&e, "el"), ref_zz(&e, INT64_MAX), ref_v(&e, NOW);
    ends[nends++] = e.len;
    assert_int_equal(st_mut_static(m), 0);
    ref_op(&e, 4);
    ends[nends++] = e.len;
    assert_int_equal(st_mut_complex_delete(m, 5, ts, NOW), 0);
    ref_op(&e, 9), ref_v(&e, 5), ref_zz(&e, ts), ref_v(&e, NOW);
    ends[nends++] = e.len;
    size_t len;
    const uint8_t *p = st_mutation_bytes(m, &len);
    assert_non_null(p);
    assert_int_equal(len, e.len);
    assert_memory_equal(p, e.p, len);
    /* decoded back: every prefix that ends between ops is a mutation, no
     * other prefix is (a field cut short, a length past the end) */
    const uint8_t *q = e.p;
    assert_int_equal(nends, 12); /* the header alone, then each of the 11 ops */
    st_mutation *w = st_mutation_create(T1, NULL, 0);
    for (size_t cut = 0, k = 0; cut <= e.len; cut++) {
        bool boundary = k < nends && ends[k] == cut;
        if (boundary) k++;
        assert_int_equal(st_mutation_load(w, q, cut) == 0, boundary);
    }
    st_mutation_destroy(w);
    /* the same partition again, over the kept buffer */
    assert_int_equal(st_mutation_reset(m, T1, (const uint8_t *)"pk", 2), 0);
    assert_int_equal(st_mutation_size(m), 16 + 1 + 2);
    size_t pklen;
    const uint8_t *pk = st_mutation_pk(m, &pklen);
    assert_int_equal(pklen, 2);
    assert_memory_equal(pk, "pk", 2);
    st_mutation_destroy(m);
    sib_buf_free(&e);
}

/* ---- unfiltered reads (replica answers, read repair) ---- */

/* The partition's unfiltered state in src, applied to dst. */
static void copy_unfiltered(storage *src, storage *dst, const char *pk, const st_slice *sl, size_t n)
{
    st_iter *it = st_read(storage_table(src, T1), (const uint8_t *)pk, strlen(pk), sl, n, false, NOW);
    st_mutation *m = mut(pk);
    sib_err err = {0};
    assert_int_equal(st_iter_unfiltered(it, true, m, &err), 0);
    st_iter_destroy(it);
    /* through the wire form, as a READ answer travels */
    size_t len;
    const uint8_t *b = st_mutation_bytes(m, &len);
    assert_non_null(b);
    st_mutation *w = st_mutation_create(T1, NULL, 0);
    assert_int_equal(st_mutation_load(w, b, len), 0);
    st_mutation_destroy(m);
    apply1(dst, w);
}

static void fill_unfiltered(storage *s)
{
    put(s, "p", "a", 1, "a1", 10, 0, 0);
    put(s, "p", "b", 1, "b1", 10, 0, 0);
    put(s, "p", "c", 1, "c1", 10, 0, 0);
    put(s, "p", "d", 1, "d1", 10, 0, 0);
    put(s, "p", "e", 2, "ttl", 10, 100, NOW + 50);
    del_cell(s, "p", "a", 1, 20, NOW); /* a: only a tombstone left */
    st_mutation *m = mut("p");
    st_mut_row(m, (const uint8_t *)"b", 1);
    st_mut_row_marker(m, 12, 0, 0);
    st_mut_row(m, (const uint8_t *)"c", 1);
    st_mut_row_delete(m, 15, NOW);
    st_bound rs = {(const uint8_t *)"d", 1, true, false}, re = {(const uint8_t *)"d", 1, true, false};
    st_mut_range_delete(m, &rs, &re, 11, NOW);
    st_mut_static(m);
    st_mut_cell(m, 9, (const uint8_t *)"s", 1, 10, 0, 0);
    st_mut_partition_delete(m, 5, NOW);
    apply1(s, m);
}

/* st_read_page's unfiltered piece holds the same bytes as st_iter_unfiltered. */
static void check_unfiltered_page(storage *a)
{
    st_table *t = storage_table(a, T1);
    st_iter *it = st_read(t, (const uint8_t *)"p", 1, NULL, 0, false, NOW);
    st_mutation *m = mut("p");
    assert_int_equal(st_iter_unfiltered(it, true, m, NULL), 0);
    st_iter_destroy(it);
    size_t len, plen;
    const uint8_t *b = st_mutation_bytes(m, &len);
    st_rreq rq = {.pk = (const uint8_t *)"p", .pklen = 1, .unfiltered = true, .now_s = NOW};
    st_rpage *pg = NULL;
    sib_err err = {0};
    assert_int_equal(st_read_page(t, &rq, &pg, NULL, NULL, &err), 0);
    assert_non_null(pg);
    assert_int_equal(st_rpage_status(pg, &err), 0);
    const uint8_t *pb = st_rpage_mutation(pg, &plen);
    assert_non_null(pb);
    assert_int_equal(plen, len);
    assert_memory_equal(pb, b, len);
    assert_int_equal(st_rpage_parts(pg), 0);
    st_rpage_destroy(pg);
    st_mutation_destroy(m);
}

static void check_unfiltered_copy(storage *a)
{
    check_unfiltered_page(a);
    char dir[64];
    strcpy(dir, "/tmp/sibunf.XXXXXX");
    assert_non_null(mkdtemp(dir));
    storage *b = open_st(dir, ST_SYNC_PERIODIC, NULL, 0);
    copy_unfiltered(a, b, "p", NULL, 0);
    assert_string_equal(rows_str(a, "p", NULL, 0, false, NOW), "b,e");
    assert_string_equal(rows_str(b, "p", NULL, 0, false, NOW), "b,e");
    assert_string_equal(get(b, "p", "e", 2), "ttl");
    assert_null(get_at(b, "p", "e", 2, NOW + 60)); /* the TTL travelled */
    /* the tombstones travelled too: older writes stay shadowed in b */
    put(b, "p", "a", 1, "old", 19, 0, 0);
    put(b, "p", "c", 1, "old", 14, 0, 0);
    put(b, "p", "d", 1, "old", 11, 0, 0);
    put(b, "p", "f", 1, "old", 4, 0, 0);
    assert_string_equal(rows_str(b, "p", NULL, 0, false, NOW), "b,e");
    st_iter *it = st_read(storage_table(b, T1), (const uint8_t *)"p", 1, NULL, 0, false, NOW);
    st_row r;
    assert_true(st_iter_static(it, &r));
    assert_int_equal(r.cells[0].ts, 10);
    st_iter_destroy(it);
    /* a slice: only its rows come (tombstones of the partition too) */
    char dir2[64];
    strcpy(dir2, "/tmp/sibunf.XXXXXX");
    assert_non_null(mkdtemp(dir2));
    storage *c = open_st(dir2, ST_SYNC_PERIODIC, NULL, 0);
    st_slice sl = {{(const uint8_t *)"c", 1, true, false}, {(const uint8_t *)"e", 1, true, false}};
    copy_unfiltered(a, c, "p", &sl, 1);
    assert_string_equal(rows_str(c, "p", NULL, 0, false, NOW), "e");
    put(c, "p", "d", 1, "old", 11, 0, 0);
    assert_string_equal(rows_str(c, "p", NULL, 0, false, NOW), "e");
    /* an unknown partition gives an empty mutation */
    copy_unfiltered(a, c, "nothing", NULL, 0);
    assert_string_equal(rows_str(c, "nothing", NULL, 0, false, NOW), "");
    storage_close(c);
    rm_rf(dir2);
    storage_close(b);
    rm_rf(dir);
}

static void test_unfiltered_round_trip(void **state)
{
    fx *f = *state;
    fill_unfiltered(f->s);
    check_unfiltered_copy(f->s);
}

/* Reconciling replicas' answers = applying them all: the newest of each
 * cell wins and a deletion shadows an older row on the other replica. */
static void test_unfiltered_reconcile(void **state)
{
    fx *f = *state;
    storage *r1 = f->s;
    char d2[64], d3[64];
    strcpy(d2, "/tmp/sibunf.XXXXXX");
    strcpy(d3, "/tmp/sibunf.XXXXXX");
    assert_non_null(mkdtemp(d2));
    assert_non_null(mkdtemp(d3));
    storage *r2 = open_st(d2, ST_SYNC_PERIODIC, NULL, 0), *co = open_st(d3, ST_SYNC_PERIODIC, NULL, 0);
    put(r1, "p", "x", 1, "x-old", 10, 0, 0);
    put(r1, "p", "y", 1, "y-new", 30, 0, 0);
    put(r2, "p", "y", 1, "y-old", 20, 0, 0);
    st_mutation *m = mut("p");
    st_mut_row(m, (const uint8_t *)"x", 1);
    st_mut_row_delete(m, 15, NOW); /* deleted while r1 was away */
    apply1(r2, m);
    put(r2, "p", "z", 1, "z", 5, 0, 0);
    copy_unfiltered(r1, co, "p", NULL, 0);
    copy_unfiltered(r2, co, "p", NULL, 0);
    assert_string_equal(rows_str(co, "p", NULL, 0, false, NOW), "y,z");
    assert_string_equal(get(co, "p", "y", 1), "y-new");
    /* the reconciled state repairs each replica */
    copy_unfiltered(co, r1, "p", NULL, 0);
    copy_unfiltered(co, r2, "p", NULL, 0);
    assert_string_equal(rows_str(r1, "p", NULL, 0, false, NOW), "y,z");
    assert_string_equal(rows_str(r2, "p", NULL, 0, false, NOW), "y,z");
    assert_string_equal(get(r2, "p", "y", 1), "y-new");
    storage_close(r2);
    storage_close(co);
    rm_rf(d2);
    rm_rf(d3);
}

/* The unfiltered piece of partition pk in s, added to mg. */
static void merge_from(st_merge *mg, storage *s, const char *pk)
{
    st_rreq rq = {.pk = (const uint8_t *)pk, .pklen = strlen(pk), .unfiltered = true, .now_s = NOW};
    st_rpage *pg = NULL;
    sib_err err = {0};
    assert_int_equal(st_read_page(storage_table(s, T1), &rq, &pg, NULL, NULL, &err), 0);
    size_t len;
    const uint8_t *b = st_rpage_mutation(pg, &len);
    assert_non_null(b);
    assert_int_equal(st_merge_add(mg, b, len, &err), 0);
    st_rpage_destroy(pg);
}

/* A coordinator's merge: the evaluated rows of the reconciled answers, and
 * their reconciled state as the repair mutation. */
static void test_merge_answers(void **state)
{
    fx *f = *state;
    storage *r1 = f->s;
    char d2[64];
    strcpy(d2, "/tmp/sibunf.XXXXXX");
    assert_non_null(mkdtemp(d2));
    storage *r2 = open_st(d2, ST_SYNC_PERIODIC, NULL, 0);
    put(r1, "p", "x", 1, "x-old", 10, 0, 0);
    put(r1, "p", "y", 1, "y-new", 30, 0, 0);
    put(r2, "p", "y", 1, "y-old", 20, 0, 0);
    st_mutation *m = mut("p");
    st_mut_row(m, (const uint8_t *)"x", 1);
    st_mut_row_delete(m, 15, NOW);
    st_mut_static(m);
    st_mut_cell(m, 9, (const uint8_t *)"s", 1, 5, 0, 0);
    apply1(r2, m);
    put(r2, "p", "z", 1, "z", 5, 0, 0);
    st_merge *mg = st_merge_create();
    assert_non_null(mg);
    merge_from(mg, r1, "p");
    merge_from(mg, r2, "p");
    sib_err err = {0};
    assert_int_equal(st_merge_add(mg, (const uint8_t *)"junk", 4, &err), SIB_ECORRUPT);
    /* evaluated: x is deleted, y's newest value wins, the static row shows */
    st_rreq rq = {.pk = (const uint8_t *)"p", .pklen = 1, .with_static = true, .now_s = NOW};
    st_rpage *pg;
    assert_int_equal(st_merge_read(mg, T1, &rq, &pg, &err), 0);
    assert_int_equal(st_rpage_status(pg, &err), 0);
    assert_int_equal(st_rpage_parts(pg), 1);
    st_rpart part;
    st_rpage_part(pg, 0, &part);
    assert_int_equal(part.nrows, 2);
    st_row r;
    st_rpage_row(pg, 0, 0, &r);
    assert_memory_equal(r.ck, "y", 1);
    assert_memory_equal(r.cells[0].val, "y-new", 5);
    st_rpage_row(pg, 0, 1, &r);
    assert_memory_equal(r.ck, "z", 1);
    assert_true(st_rpage_static(pg, 0, &r));
    st_rpage_destroy(pg);
    /* a slice of it, bounded by max_rows */
    st_slice sl = {{(const uint8_t *)"y", 1, true, false}, {NULL, 0, false, true}};
    rq.slices = &sl;
    rq.nslices = 1;
    rq.max_rows = 1;
    assert_int_equal(st_merge_read(mg, T1, &rq, &pg, &err), 0);
    st_rpage_part(pg, 0, &part);
    assert_int_equal(part.nrows, 1);
    assert_false(part.complete);
    st_rpage_destroy(pg);
    /* the repair: the reconciled state brings r1 up to date */
    st_rreq ur = {.pk = (const uint8_t *)"p", .pklen = 1, .unfiltered = true, .now_s = NOW};
    assert_int_equal(st_merge_read(mg, T1, &ur, &pg, &err), 0);
    size_t len;
    const uint8_t *b = st_rpage_mutation(pg, &len);
    assert_non_null(b);
    st_mutation *rep = st_mutation_create(T1, NULL, 0);
    assert_int_equal(st_mutation_load(rep, b, len), 0);
    assert_memory_equal(st_mutation_table_id(rep), T1, 16);
    st_rpage_destroy(pg);
    apply1(r1, rep);
    assert_string_equal(rows_str(r1, "p", NULL, 0, false, NOW), "y,z");
    st_merge_destroy(mg);
    storage_close(r2);
    rm_rf(d2);
}

/* The same state read from SSTables (and a memtable on top). */
static void test_unfiltered_from_sstables(void **state)
{
    dfx *f = *state;
    fill_unfiltered(f->s);
    flush_all(f->s);
    put(f->s, "p", "g", 1, "g1", 3, 0, 0); /* older than the partition deletion */
    check_unfiltered_copy(f->s);
}


/* ---- memtable memory faulted in ahead (prefault.c) ---- */

static void *take_within(st_prefault *pf, size_t n)
{
    for (int i = 0; i < 5000; i++) { /* the worker makes it meanwhile: up to 5 s */
        void *p = st_prefault_take(pf, n);
        if (p) return p;
        usleep(1000);
    }
    return NULL;
}

/* Ready mappings are zeroed and of exactly the size asked for; a size nobody
 * asked for is never handed out (the memtable maps it inline). */
static void test_prefault_mappings(void **state)
{
    (void)state;
    st_prefault *pf;
    sib_err err;
    assert_int_equal(st_prefault_start(&pf, &err), 0);
    uint8_t *c = take_within(pf, SIB_HUGE_PAGE);
    assert_non_null(c);
    for (size_t i = 0; i < SIB_HUGE_PAGE; i++) assert_int_equal(c[i], 0);
    memset(c, 0xAB, SIB_HUGE_PAGE); /* ours now: writable */
    sib_huge_free(c, SIB_HUGE_PAGE);
    size_t n = 3 * SIB_HUGE_PAGE + 4096;
    assert_null(st_prefault_take(pf, n)); /* not asked for yet */
    while (!st_prefault_want(pf, n)) usleep(1000);
    uint8_t *a = take_within(pf, n);
    assert_non_null(a);
    for (size_t i = 0; i < n; i++) assert_int_equal(a[i], 0);
    sib_huge_free(a, n);
    assert_null(st_prefault_take(pf, n)); /* taken: the next one needs another request */
    uint64_t taken, inline_maps;
    st_prefault_counts(pf, &taken, &inline_maps);
    assert_int_equal(taken, 2);
    assert_true(inline_maps >= 2);
    while (!st_prefault_want(pf, 5 * SIB_HUGE_PAGE)) usleep(1000);
    st_prefault_stop(pf); /* frees what it holds (ASan's leak check) */
}

/* Writes part0..part<n-1> = <tag><i> through the loop, giving the prefault
 * worker time as a loop's idle spells give it; then reads every one back. */
static void put_parts_loop(storage *s, struct ev_loop *loop, int n, const char *tag, int64_t ts)
{
    char pk[32], val[32];
    for (int i = 0; i < n; i++) {
        snprintf(pk, sizeof pk, "part%d", i);
        snprintf(val, sizeof val, "%s%d", tag, i);
        put(s, pk, "", 1, val, ts, 0, 0);
        if (i % 256 == 255) ev_run(loop, EVRUN_NOWAIT);
        if (i % 4096 == 4095) usleep(20000);
    }
    ev_run(loop, EVRUN_NOWAIT);
    for (int i = 0; i < n; i++) {
        snprintf(pk, sizeof pk, "part%d", i);
        snprintf(val, sizeof val, "%s%d", tag, i);
        const char *got = get(s, pk, "", 1);
        assert_non_null(got);
        assert_string_equal(got, val);
    }
}

/* With a loop, a table's memtable takes its record chunks and its index's
 * next array from the prefault thread, and so does the fresh memtable of a
 * flush for the index it reserves; every row reads back. */
static void test_memtable_memory_prefaulted(void **state)
{
    dfx *f = *state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    storage *s = open_loop_data(f, loop, 1);
    st_prefault *pf = storage_prefault(s);
    assert_non_null(pf);
    enum { N = 120000 }; /* the index doubles past 1 MiB (65536 homes to 131072), and is reserved over it */
    put_parts_loop(s, loop, N, "value", 10);
    uint64_t taken, taken2, inline_maps;
    st_prefault_counts(pf, &taken, &inline_maps);
    assert_true(taken >= 2); /* a record chunk and the 1 MiB index at least */
    /* A flush: the fresh memtable's index is reserved for N partitions (over
     * 1 MiB), asked of the prefault thread, and moved into once ready while
     * the overwrites go in. */
    flush_loop(s, loop);
    put_parts_loop(s, loop, N, "new", 11);
    st_prefault_counts(pf, &taken2, &inline_maps);
    assert_true(taken2 >= taken + 2); /* the reserved index and a record chunk at least */
    close_loop_data(f, loop);
}

int main(void)
{
    /* SIB_TEST_FILTER=name runs the tests matching it (one test under gdb, say) */
    if (getenv("SIB_TEST_FILTER")) cmocka_set_test_filter(getenv("SIB_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_overwrite_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segments_preallocated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lww_timestamps_and_ties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_row_marker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partition_and_row_tombstones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_tombstones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slices_and_reversed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memtable_index_many_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memtable_index_order, setup, teardown),
        cmocka_unit_test(test_prefault_mappings),
        cmocka_unit_test_setup_teardown(test_memtable_memory_prefaulted, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_kv_growing_collection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_backlog_refuses_writes, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_flush_out_of_order_keeps_older_writes, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_many_rows_random_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_token_order_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_after_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_before_tail_stops_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_segment_stops_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_drop_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segment_rollover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_refused_entry, setup, teardown),
        cmocka_unit_test(test_mutation_bytes),
        cmocka_unit_test_setup_teardown(test_invalid_mutation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure_cut_back, setup, teardown),
        cmocka_unit_test(test_batch_mode_callbacks),
        cmocka_unit_test(test_group_mode_callbacks),
        cmocka_unit_test(test_periodic_mode_callbacks),
        cmocka_unit_test_setup_teardown(test_periodic_sync_after_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_writeback, setup, teardown),
        cmocka_unit_test(test_no_loop_batch),
        cmocka_unit_test(test_coalesced_appends),
        cmocka_unit_test(test_coalesced_rollover),
        cmocka_unit_test(test_coalesced_write_failure),
        cmocka_unit_test(test_coalesced_truncate_order),
        cmocka_unit_test_setup_teardown(test_flush_and_read, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_prefetch_is_a_hint, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_table_named_layout, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_segments_released_after_flush, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_replay_skips_flushed, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_truncate_removes_sstables, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_corrupted_block_and_leftovers, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_merge_against_reference, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_kv_against_reference, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_flush_while_writing, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_commitlog_total_space_flushes, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_stcs_compacts_flushes, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_lcs_l0_trigger_waits, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_expired_blockers, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_major_compaction_purges, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_truncate_during_compaction, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_compaction_disk_full, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_flush_disk_full, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_tombstone_compaction_loop, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_drop_during_compaction, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_kill_during_compaction, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_table_options, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_drop_and_snapshot, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_block_cache_hits, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_block_cache_bound_and_off, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_block_cache_compaction, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_flush_at_half_heap_space, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_loopless_writes_delayed_not_stalled, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_block_cache_truncate_under_iterator, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_read_pool_pieces_match_reads, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_read_pool_recycled_iterator, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_read_pool_borrowed_pages, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_read_pool_kv_shortcut, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_read_pool_snapshot_under_writes, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_read_pool_drain, dsetup, dteardown),
        cmocka_unit_test_setup_teardown(test_unfiltered_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unfiltered_reconcile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unfiltered_from_sstables, dsetup, dteardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
