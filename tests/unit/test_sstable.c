/* Unit tests for sstable/ through its public header: bloom filter FP rate,
 * block/row encoding round trips, index lookups (present, absent, between
 * keys), clustering-index slices in a wide partition (forward and reversed),
 * partition scans, corrupted blocks, leftover cleanup, the block cache
 * (hits, bound, same-generation reuse, blocks pinned by readers). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sstable.h"

#include "tmpdir_fixture.h"

static int setup(void **state) { return tmpdir_setup(state, "sibsstable"); }
static int teardown(void **state) { return tmpdir_teardown(state); }

static int cmp_key(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int64_t tx = sib_murmur3_token(x, strlen(x)), ty = sib_murmur3_token(y, strlen(y));
    if (tx != ty) return tx < ty ? -1 : 1;
    return strcmp(x, y);
}

/* ---- bloom ---- */

static void test_bloom_fp_rate(void **state)
{
    const double targets[] = {0.01, 0.1, 0.001};
    for (size_t t = 0; t < 3; t++) {
        sst_bloom b;
        const int n = 100000;
        assert_int_equal(sst_bloom_init(&b, n, targets[t]), 0);
        char k[32];
        for (int i = 0; i < n; i++) {
            int len = snprintf(k, sizeof k, "present-%d", i);
            sst_bloom_add(&b, sib_murmur3_token(k, (size_t)len));
        }
        for (int i = 0; i < n; i++) {
            int len = snprintf(k, sizeof k, "present-%d", i);
            assert_true(sst_bloom_test(&b, sib_murmur3_token(k, (size_t)len)));
        }
        int fp = 0, probes = 400000;
        for (int i = 0; i < probes; i++) {
            int len = snprintf(k, sizeof k, "absent-%d", i);
            fp += sst_bloom_test(&b, sib_murmur3_token(k, (size_t)len));
        }
        double rate = (double)fp / probes;
        fprintf(stderr, "bloom: target %.3f measured %.4f (k=%u, %.2f bits/key)\n", targets[t], rate, b.k,
                (double)b.nbits / n);
        assert_true(rate <= targets[t] * 1.5);
        sst_bloom_free(&b);
    }
}

/* ---- round trip ---- */

static void write_rich(const char *dir, uint64_t gen, char **keys, int nkeys, const sst_writer_opts *o)
{
    sst_writer *w;
    sib_err err = {0};
    int rc = sst_writer_create(&w, dir, gen, o, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    for (int i = 0; i < nkeys; i++) {
        sst_del pdel = {SST_NO_TS, SST_NO_LDT};
        if (i % 7 == 0) pdel = (sst_del){100 + i, 1700000000};
        sst_rt rt = {{(const uint8_t *)"r", 1, true, false}, {NULL, 0, false, true}, {50, 1700000001}};
        assert_int_equal(sst_write_partition(w, (const uint8_t *)keys[i], strlen(keys[i]), pdel, &rt, i % 5 == 0, &err), 0);
        sst_cell sc = {9, 0, 4, NULL, (const uint8_t *)"stat", 77, 0, SST_NO_LDT};
        sst_row st = {.ck = NULL, .is_static = true, .marker_ts = SST_NO_TS, .marker_ldt = SST_NO_LDT,
                      .del = {SST_NO_TS, SST_NO_LDT}, .cells = &sc, .ncells = 1};
        if (i % 3 == 0) assert_int_equal(sst_write_row(w, &st, &err), 0);
        for (int r = 0; r < 3; r++) {
            char ck[8], val[32];
            snprintf(ck, sizeof ck, "c%d", r);
            snprintf(val, sizeof val, "%s/%d", keys[i], r);
            sst_cell cells[3] = {
                {1, 0, (uint32_t)strlen(val), NULL, (const uint8_t *)val, 1000 + r, 0, SST_NO_LDT},
                {2, 0, 0, NULL, NULL, 1001, 0, 1699999999},                               /* tombstone */
                {5, 2, 1, (const uint8_t *)"e1", (const uint8_t *)"x", 1002, 60, 1700000060}, /* ttl path cell */
            };
            sst_cdel cd = {5, {999, 1699999990}};
            sst_row row = {.ck = (const uint8_t *)ck, .cklen = (uint32_t)strlen(ck), .marker_ts = r == 1 ? 900 : SST_NO_TS,
                           .marker_ttl = 0, .marker_ldt = SST_NO_LDT, .del = {r == 2 ? 800 : SST_NO_TS, r == 2 ? 1700000002 : SST_NO_LDT},
                           .cdels = &cd, .ncdels = r == 0, .cells = cells, .ncells = 3};
            assert_int_equal(sst_write_row(w, &row, &err), 0);
        }
        assert_int_equal(sst_write_partition_end(w, &err), 0);
    }
    uint64_t bytes;
    assert_int_equal(sst_writer_finish(w, &bytes, &err), 0);
    assert_true(bytes > 0);
    sst_writer_destroy(w);
}

static char **make_keys(int n)
{
    char **keys = calloc((size_t)n, sizeof *keys);
    for (int i = 0; i < n; i++) {
        keys[i] = malloc(16);
        snprintf(keys[i], 16, "key%05d", i);
    }
    qsort(keys, (size_t)n, sizeof *keys, cmp_key);
    return keys;
}

static void free_keys(char **keys, int n)
{
    for (int i = 0; i < n; i++) free(keys[i]);
    free(keys);
}

static void check_rich(sstable *s, const char *key, int i)
{
    sst_part *p;
    sib_err err = {0};
    assert_int_equal(sst_part_open(s, (const uint8_t *)key, strlen(key), sib_murmur3_token(key, strlen(key)), &p, &err), 0);
    assert_non_null(p);
    sst_del d = sst_part_deletion(p);
    assert_int_equal(d.ts, i % 7 == 0 ? 100 + i : SST_NO_TS);
    const sst_rt *rts;
    assert_int_equal(sst_part_rts(p, &rts), i % 5 == 0);
    if (i % 5 == 0) {
        assert_int_equal(rts[0].del.ts, 50);
        assert_true(rts[0].end.unbounded);
        assert_memory_equal(rts[0].start.key, "r", 1);
    }
    const sst_row *st = sst_part_static(p);
    assert_int_equal(st != NULL, i % 3 == 0);
    if (st) assert_memory_equal(st->cells[0].val, "stat", 4);
    const sst_row *r;
    for (int k = 0; k < 3; k++) {
        assert_int_equal(sst_part_next(p, &r, &err), 1);
        char ck[8], val[32];
        snprintf(ck, sizeof ck, "c%d", k);
        snprintf(val, sizeof val, "%s/%d", key, k);
        assert_int_equal(r->cklen, 2);
        assert_memory_equal(r->ck, ck, 2);
        assert_int_equal(r->ncells, 3);
        assert_int_equal(r->cells[0].vlen, strlen(val));
        assert_memory_equal(r->cells[0].val, val, strlen(val));
        assert_int_equal(r->cells[0].ts, 1000 + k);
        assert_true(sst_cell_tomb(&r->cells[1]));
        assert_int_equal(r->cells[1].ldt, 1699999999);
        assert_int_equal(r->cells[2].ttl, 60);
        assert_int_equal(r->cells[2].ldt, 1700000060);
        assert_memory_equal(r->cells[2].path, "e1", 2);
        assert_int_equal(r->marker_ts, k == 1 ? 900 : SST_NO_TS);
        assert_int_equal(r->del.ts, k == 2 ? 800 : SST_NO_TS);
        assert_int_equal(r->ncdels, k == 0);
        if (k == 0) assert_int_equal(r->cdels[0].del.ts, 999);
    }
    assert_int_equal(sst_part_next(p, &r, &err), 0);
    sst_part_close(p);
}

static void test_roundtrip_and_index(void **state)
{
    fx *f = *state;
    const int n = 3000;
    char **keys = make_keys(n);
    sst_writer_opts o = {.block_size = 4096};
    o.expected_keys = n;
    o.clpos = (sst_clpos){7, 123};
    o.level = 2;
    write_rich(f->dir, 1, keys, n, &o);
    sstable *s;
    sib_err err = {0};
    assert_int_equal(sst_open(&s, f->dir, 1, &err), 0);
    const sst_stats *st = sst_get_stats(s);
    assert_int_equal(st->partitions, n);
    assert_int_equal(st->rows, 3 * n);
    assert_int_equal(st->level, 2);
    assert_int_equal(st->clpos.seg, 7);
    assert_int_equal(st->clpos.off, 123);
    assert_int_equal(st->min_ts, 50);
    assert_int_equal(st->max_ts, 100 + (n - 1) / 7 * 7);
    assert_true(st->has_partition_deletions && st->has_range_tombstones);
    assert_int_equal(st->first_keylen, strlen(keys[0]));
    assert_memory_equal(st->first_key, keys[0], st->first_keylen);
    assert_memory_equal(st->last_key, keys[n - 1], st->last_keylen);
    assert_true(sst_droppable_tombstones(st, 1700000100) == st->tombstones);
    assert_true(sst_droppable_tombstones(st, 0) == 0);
    /* never expiring: each row's first cell, row c1's marker, every third
     * partition's static cell (tombstones and TTL cells are not counted) */
    assert_int_equal(st->live_forever, 4 * n + (n + 2) / 3);
    for (int i = 0; i < n; i++) check_rich(s, keys[i], i);
    /* absent keys: not found (bloom or index) */
    for (int i = 0; i < 2000; i++) {
        char k[32];
        snprintf(k, sizeof k, "nokey%05d", i);
        sst_part *p;
        assert_int_equal(sst_part_open(s, (const uint8_t *)k, strlen(k), sib_murmur3_token(k, strlen(k)), &p, &err), 0);
        assert_null(p);
    }
    /* scans: all keys in order, and resuming after / at a key */
    sst_pscan *sc;
    const uint8_t *pk;
    size_t len;
    int64_t tok;
    assert_int_equal(sst_pscan_open(s, INT64_MIN, NULL, 0, true, &sc, &err), 0);
    int i = 0;
    while (sst_pscan_next(sc, &pk, &len, &tok, &err) == 1) {
        assert_int_equal(len, strlen(keys[i]));
        assert_memory_equal(pk, keys[i], len);
        i++;
    }
    assert_int_equal(i, n);
    sst_pscan_close(sc);
    const char *mid = keys[1234];
    assert_int_equal(sst_pscan_open(s, sib_murmur3_token(mid, strlen(mid)), (const uint8_t *)mid, strlen(mid), false, &sc, &err), 0);
    assert_int_equal(sst_pscan_next(sc, &pk, &len, &tok, &err), 1);
    assert_memory_equal(pk, keys[1235], len);
    sst_pscan_close(sc);
    sst_unref(s);
    free_keys(keys, n);
}

/* Timestamps are stored relative to the writer's base: any int64 must
 * round-trip whatever the base, and a base near the data makes the file
 * smaller than base 0 (the point of it). */
static uint64_t write_ts_table(const char *dir, uint64_t gen, int64_t base, const int64_t *ts, int nts, int n)
{
    sst_writer_opts o = {.block_size = 4096, .expected_keys = (uint64_t)n, .ts_base = base, .no_compress = true};
    sst_writer *w;
    sib_err err = {0};
    assert_int_equal(sst_writer_create(&w, dir, gen, &o, &err), 0);
    char **keys = make_keys(n);
    for (int i = 0; i < n; i++) {
        int64_t t = ts[i % nts];
        assert_int_equal(sst_write_partition(w, (const uint8_t *)keys[i], strlen(keys[i]),
                                             (sst_del){i % 2 ? t : SST_NO_TS, i % 2 ? 1700000000 : SST_NO_LDT}, NULL, 0,
                                             &err),
                         0);
        sst_cell c = {1, 0, 1, NULL, (const uint8_t *)"v", t, 0, SST_NO_LDT};
        sst_row r = {.ck = (const uint8_t *)"c", .cklen = 1, .marker_ts = t, .marker_ldt = SST_NO_LDT,
                     .del = {SST_NO_TS, SST_NO_LDT}, .cells = &c, .ncells = 1};
        assert_int_equal(sst_write_row(w, &r, &err), 0);
        assert_int_equal(sst_write_partition_end(w, &err), 0);
    }
    uint64_t bytes;
    assert_int_equal(sst_writer_finish(w, &bytes, &err), 0);
    sst_writer_destroy(w);
    sstable *s;
    assert_int_equal(sst_open(&s, dir, gen, &err), 0);
    for (int i = 0; i < n; i++) {
        int64_t t = ts[i % nts];
        sst_part *p;
        assert_int_equal(sst_part_open(s, (const uint8_t *)keys[i], strlen(keys[i]),
                                       sib_murmur3_token(keys[i], strlen(keys[i])), &p, &err),
                         0);
        assert_non_null(p);
        assert_int_equal(sst_part_deletion(p).ts, i % 2 ? t : SST_NO_TS);
        const sst_row *r;
        assert_int_equal(sst_part_next(p, &r, &err), 1);
        assert_int_equal(r->marker_ts, t);
        assert_int_equal(r->cells[0].ts, t);
        sst_part_close(p);
    }
    uint64_t data = sst_get_stats(s)->data_file_bytes;
    sst_unref(s);
    free_keys(keys, n);
    return data;
}

static void test_timestamp_base(void **state)
{
    fx *f = *state;
    const int64_t now = 1764000000000000; /* microseconds, late 2025 */
    const int64_t extremes[] = {INT64_MIN + 1, -1, 0, 1, now - 1, now, now + 1, INT64_MAX};
    write_ts_table(f->dir, 1, now, extremes, (int)SIB_ARRAY_LEN(extremes), 64);
    write_ts_table(f->dir, 2, INT64_MAX, extremes, (int)SIB_ARRAY_LEN(extremes), 64);
    int64_t close_ts[500];
    for (int i = 0; i < 500; i++) close_ts[i] = now + i * 1000;
    uint64_t near = write_ts_table(f->dir, 3, now, close_ts, 500, 2000);
    uint64_t zero = write_ts_table(f->dir, 4, 0, close_ts, 500, 2000);
    assert_true(near + 2000 * 8 < zero); /* raw blocks: 5 bytes saved a timestamp, 2-3 a row */
}

/* Writes SSTable generation gen in dir holding one partition "wide" of n
 * rows r0000000.. (4 KiB blocks, clustering samples every 2 KiB). */
static void write_wide(const char *dir, int gen, int n)
{
    sst_writer *w;
    sib_err err = {0};
    sst_writer_opts o = {.block_size = 4096, .index_interval = 2048, .expected_keys = 1};
    assert_int_equal(sst_writer_create(&w, dir, (uint64_t)gen, &o, &err), 0);
    assert_int_equal(sst_write_partition(w, (const uint8_t *)"wide", 4, (sst_del){SST_NO_TS, SST_NO_LDT}, NULL, 0, &err), 0);
    for (int i = 0; i < n; i++) {
        char ck[16];
        snprintf(ck, sizeof ck, "r%07d", i);
        sst_cell c = {1, 0, 8, NULL, (const uint8_t *)ck, i, 0, SST_NO_LDT};
        sst_row r = {.ck = (const uint8_t *)ck, .cklen = 8, .marker_ts = SST_NO_TS, .marker_ldt = SST_NO_LDT,
                     .del = {SST_NO_TS, SST_NO_LDT}, .cells = &c, .ncells = 1};
        assert_int_equal(sst_write_row(w, &r, &err), 0);
    }
    assert_int_equal(sst_write_partition_end(w, &err), 0);
    assert_int_equal(sst_writer_finish(w, NULL, &err), 0);
    sst_writer_destroy(w);
}

/* A wide partition: slices use the clustering index, both directions. */
static void test_wide_partition_slices(void **state)
{
    fx *f = *state;
    sib_err err = {0};
    const int n = 100000;
    write_wide(f->dir, 3, n);
    sstable *s;
    assert_int_equal(sst_open(&s, f->dir, 3, &err), 0);
    sst_part *p;
    assert_int_equal(sst_part_open(s, (const uint8_t *)"wide", 4, sib_murmur3_token("wide", 4), &p, &err), 0);
    assert_non_null(p);
    const int starts[] = {0, 1, 4999, 50000, 99998};
    for (size_t k = 0; k < SIB_ARRAY_LEN(starts); k++) {
        char ck[16];
        snprintf(ck, sizeof ck, "r%07d", starts[k]);
        sst_bound b = {(const uint8_t *)ck, 8, true, false};
        const sst_row *r;
        assert_int_equal(sst_part_seek(p, &b, false, &err), 0);
        for (int j = 0; j < 3 && starts[k] + j < n; j++) {
            char want[16];
            snprintf(want, sizeof want, "r%07d", starts[k] + j);
            assert_int_equal(sst_part_next(p, &r, &err), 1);
            assert_memory_equal(r->ck, want, 8);
        }
        assert_int_equal(sst_part_seek(p, &b, true, &err), 0);
        for (int j = 0; j < 3 && starts[k] - j >= 0; j++) {
            char want[16];
            snprintf(want, sizeof want, "r%07d", starts[k] - j);
            assert_int_equal(sst_part_next(p, &r, &err), 1);
            assert_memory_equal(r->ck, want, 8);
        }
    }
    /* a full reversed walk crosses every segment */
    sst_bound end = {NULL, 0, false, true};
    assert_int_equal(sst_part_seek(p, &end, true, &err), 0);
    const sst_row *r;
    int cnt = 0;
    while (sst_part_next(p, &r, &err) == 1) cnt++;
    assert_int_equal(cnt, n);
    sst_part_close(p);
    sst_unref(s);
}

static void flip_byte(const char *path, double where)
{
    int fd = open(path, O_RDWR);
    struct stat st;
    fstat(fd, &st);
    uint8_t b;
    off_t at = (off_t)(st.st_size * where);
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 1;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

static void test_corrupted_block(void **state)
{
    fx *f = *state;
    const int n = 400;
    char **keys = make_keys(n);
    sst_writer_opts o = {.block_size = 1024, .expected_keys = n, .no_compress = true};
    write_rich(f->dir, 4, keys, n, &o);
    char path[600];
    snprintf(path, sizeof path, "%s/4-Data.db", f->dir);
    flip_byte(path, 1.0 / 3);
    sstable *s;
    sib_err err = {0};
    assert_int_equal(sst_open(&s, f->dir, 4, &err), 0);
    /* the offline check finds it without any lookup */
    uint64_t checked = 0;
    assert_int_equal(sst_verify(s, &checked, &err), SIB_ECORRUPT);
    assert_non_null(strstr(err.msg, "4-Data.db"));
    int bad = 0;
    for (int i = 0; i < n; i++) {
        sst_part *p = NULL;
        int rc = sst_part_open(s, (const uint8_t *)keys[i], strlen(keys[i]), sib_murmur3_token(keys[i], strlen(keys[i])), &p, &err);
        if (rc) {
            assert_int_equal(rc, SIB_ECORRUPT);
            assert_non_null(strstr(err.msg, "4-Data.db"));
            bad++;
            continue;
        }
        check_rich(s, keys[i], i);
        sst_part_close(p);
    }
    assert_true(bad >= 1 && bad < 20);
    sst_unref(s);
    free_keys(keys, n);
}

/* sst_rewrite: a sound SSTable opened without its (damaged) Filter and
 * Statistics is copied whole with fresh ones at level 0, commitlog
 * position 0; one with a bad block loses only what that block held, and
 * says so. */
static void test_rewrite_salvage(void **state)
{
    fx *f = *state;
    const int n = 400;
    char **keys = make_keys(n);
    sst_writer_opts o = {.block_size = 1024, .expected_keys = n, .no_compress = true, .level = 2,
                         .clpos = {7, 100}};
    write_rich(f->dir, 4, keys, n, &o);
    char path[600];
    snprintf(path, sizeof path, "%s/4-Statistics.db", f->dir);
    assert_int_equal(truncate(path, 10), 0);
    sstable *s, *r;
    sib_err err = {0};
    assert_int_equal(sst_open(&s, f->dir, 4, &err), SIB_ECORRUPT);
    assert_int_equal(sst_open_salvage(&s, f->dir, 4, &err), 0);
    sst_rewrite_report rep;
    sst_writer_opts small = {.block_size = 1024}; /* a bad block below then costs a few partitions */
    assert_int_equal(sst_rewrite(s, f->dir, 5, &small, &rep, &err), 0);
    sst_unref(s);
    assert_int_equal(rep.partitions, n);
    assert_int_equal(rep.partitions_dropped + rep.partitions_cut + rep.pages_dropped, 0);
    assert_string_equal(rep.first_error, "");
    assert_int_equal(sst_open(&r, f->dir, 5, &err), 0);
    assert_int_equal(sst_get_stats(r)->level, 0);
    assert_int_equal(sst_get_stats(r)->clpos.seg, 0);
    assert_int_equal(sst_get_stats(r)->partitions, n);
    for (int i = 0; i < n; i++) check_rich(r, keys[i], i);
    sst_unref(r);
    /* a bad block in the rewrite's Data.db: the rest survives a second rewrite */
    snprintf(path, sizeof path, "%s/5-Data.db", f->dir);
    flip_byte(path, 0.5);
    assert_int_equal(sst_open_salvage(&s, f->dir, 5, &err), 0);
    assert_int_equal(sst_rewrite(s, f->dir, 6, NULL, &rep, &err), 0);
    sst_unref(s);
    assert_true(rep.partitions_dropped + rep.partitions_cut + rep.pages_dropped >= 1);
    assert_true(rep.partitions > n - 40 && rep.partitions < n);
    assert_non_null(strstr(rep.first_error, "5-Data.db"));
    assert_int_equal(sst_open(&r, f->dir, 6, &err), 0);
    uint64_t checked;
    assert_int_equal(sst_verify(r, &checked, &err), 0);
    sst_unref(r);
    free_keys(keys, n);
}

/* sst_verify reads every block and index page of a sound SSTable. */
static void test_verify_sound(void **state)
{
    fx *f = *state;
    const int n = 300;
    char **keys = make_keys(n);
    sst_writer_opts o = {.block_size = 512, .expected_keys = n};
    write_rich(f->dir, 3, keys, n, &o);
    sstable *s;
    sib_err err = {0};
    assert_int_equal(sst_open(&s, f->dir, 3, &err), 0);
    uint64_t checked = 0;
    assert_int_equal(sst_verify(s, &checked, &err), 0);
    assert_true(checked > 10);
    assert_true(sst_created(s) > 1600000000);
    sst_unref(s);
    /* A file of another format version is refused by name, not as garbage. */
    char *path = NULL;
    assert_true(asprintf(&path, "%s/3-Data.db", f->dir) > 0);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t h[16];
    assert_int_equal(pread(fd, h, sizeof h, 0), 16);
    h[4] = 0, h[5] = 1;
    put_be32(h + 12, sib_crc32c(0, h, 12));
    assert_int_equal(pwrite(fd, h, sizeof h, 0), 16);
    close(fd);
    assert_int_not_equal(sst_open(&s, f->dir, 3, &err), 0);
    assert_non_null(strstr(err.msg, "format version 1; this build reads versions 2 to 3"));
    free(path);
    free_keys(keys, n);
}

static bool exists(const char *dir, uint64_t gen, const char *comp)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%llu-%s", dir, (unsigned long long)gen, comp);
    return access(p, F_OK) == 0;
}

static void rm_comp(const char *dir, uint64_t gen, const char *comp)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%llu-%s", dir, (unsigned long long)gen, comp);
    assert_int_equal(unlink(p), 0);
}

/* The start-up sweep deletes only what a tmp name or a cut-short deletion
 * proves unfinished; an intact SSTable that lost its TOC is verified and
 * its TOC rebuilt; anything else it cannot prove stays on disk. */
static void test_leftovers_and_remove(void **state)
{
    fx *f = *state;
    char **keys = make_keys(10);
    sst_writer_opts o = {0};
    for (uint64_t g = 5; g <= 12; g++)
        if (g != 7 && g != 8) write_rich(f->dir, g, keys, 10, &o);
    char p[600], q[600];
    rm_comp(f->dir, 6, "TOC.txt"); /* intact, TOC lost: kept and rebuilt */
    snprintf(p, sizeof p, "%s/7-Data.db.tmp", f->dir);
    close(open(p, O_CREAT | O_WRONLY, 0644)); /* a write cut short before any rename */
    /* an unfinished writer removes its own files */
    sst_writer *w;
    sib_err err;
    assert_int_equal(sst_writer_create(&w, f->dir, 8, &o, &err), 0);
    sst_writer_destroy(w);
    assert_false(exists(f->dir, 8, "Data.db.tmp"));
    /* a crash after the components' renames, before the TOC's */
    snprintf(p, sizeof p, "%s/9-TOC.txt", f->dir);
    snprintf(q, sizeof q, "%s/9-TOC.txt.tmp", f->dir);
    assert_int_equal(rename(p, q), 0);
    /* TOC lost and a corrupt block: not loaded, not deleted */
    rm_comp(f->dir, 10, "TOC.txt");
    snprintf(p, sizeof p, "%s/10-Data.db", f->dir);
    int fd = open(p, O_RDWR);
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, 40), 1);
    byte ^= 0xff;
    assert_int_equal(pwrite(fd, &byte, 1, 40), 1);
    close(fd);
    rm_comp(f->dir, 11, "Data.db"); /* a deletion cut short (Data.db goes first) */
    rm_comp(f->dir, 12, "TOC.txt"); /* incomplete without TOC: kept */
    rm_comp(f->dir, 12, "Filter.db");
    /* a crash while the sweep rebuilt gen 6's TOC (its temporary name is not
     * a .tmp one: the generation is still complete) */
    snprintf(p, sizeof p, "%s/6-TOC.txt.rebuild", f->dir);
    close(open(p, O_CREAT | O_WRONLY, 0644));
    uint64_t *gens, maxg;
    size_t n;
    assert_int_equal(sst_dir_scan(f->dir, &gens, &n, &maxg, NULL, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(gens[0], 5);
    assert_int_equal(gens[1], 6);
    assert_int_equal(maxg, 12);
    free(gens);
    assert_true(exists(f->dir, 6, "TOC.txt"));
    assert_false(exists(f->dir, 6, "TOC.txt.rebuild"));
    sstable *s;
    assert_int_equal(sst_open(&s, f->dir, 6, &err), 0);
    assert_int_equal(sst_verify(s, NULL, &err), 0);
    sst_unref(s);
    assert_false(exists(f->dir, 7, "Data.db.tmp"));
    for (int c = 0; c < 5; c++) {
        const char *comp[] = {"Data.db", "Index.db", "Filter.db", "Statistics.db", "TOC.txt"};
        assert_false(exists(f->dir, 9, comp[c]));
        assert_false(exists(f->dir, 11, comp[c]));
        assert_true(c == 4 || exists(f->dir, 10, comp[c]));
    }
    assert_false(exists(f->dir, 9, "TOC.txt.tmp"));
    assert_false(exists(f->dir, 10, "TOC.txt"));
    assert_true(exists(f->dir, 12, "Data.db") && exists(f->dir, 12, "Index.db"));
    /* obsolete + last unref deletes, Data.db first, TOC last */
    assert_int_equal(sst_open(&s, f->dir, 5, &err), 0);
    sst_mark_obsolete(s);
    sst_unref(s);
    assert_false(exists(f->dir, 5, "Data.db"));
    assert_false(exists(f->dir, 5, "TOC.txt"));
    char *files[5];
    assert_int_equal(sst_files(f->dir, 5, files), 0);
    assert_non_null(strstr(files[0], "5-Data.db"));
    assert_non_null(strstr(files[4], "5-TOC.txt"));
    for (int c = 0; c < 5; c++) free(files[c]);
    assert_int_equal(sst_dir_scan(f->dir, &gens, &n, &maxg, NULL, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(gens[0], 6);
    free(gens);
    free_keys(keys, 10);
}

/* ---- block cache ---- */

/* One row per partition, value "<tag>:<key>": equal-length tags give
 * byte-identical layouts (same blocks at the same offsets). */
static void write_tagged(const char *dir, uint64_t gen, char **keys, int n, const char *tag)
{
    sst_writer *w;
    sib_err err = {0};
    sst_writer_opts o = {.block_size = 1024, .expected_keys = (uint64_t)n};
    assert_int_equal(sst_writer_create(&w, dir, gen, &o, &err), 0);
    for (int i = 0; i < n; i++) {
        char val[64];
        snprintf(val, sizeof val, "%s:%s", tag, keys[i]);
        sst_cell c = {1, 0, (uint32_t)strlen(val), NULL, (const uint8_t *)val, 1, 0, SST_NO_LDT};
        sst_row r = {.ck = (const uint8_t *)"c", .cklen = 1, .marker_ts = SST_NO_TS, .marker_ldt = SST_NO_LDT,
                     .del = {SST_NO_TS, SST_NO_LDT}, .cells = &c, .ncells = 1};
        assert_int_equal(sst_write_partition(w, (const uint8_t *)keys[i], strlen(keys[i]), (sst_del){SST_NO_TS, SST_NO_LDT},
                                             NULL, 0, &err), 0);
        assert_int_equal(sst_write_row(w, &r, &err), 0);
        assert_int_equal(sst_write_partition_end(w, &err), 0);
    }
    assert_int_equal(sst_writer_finish(w, NULL, &err), 0);
    sst_writer_destroy(w);
}

static void check_tagged(sstable *s, sst_bcache *bc, const char *key, const char *tag)
{
    sst_part *p;
    sib_err err = {0};
    size_t kl = strlen(key);
    assert_int_equal(sst_part_open_cached(s, bc, (const uint8_t *)key, kl, sib_murmur3_token(key, kl), &p, &err), 0);
    assert_non_null(p);
    const sst_row *r;
    assert_int_equal(sst_part_next(p, &r, &err), 1);
    char want[64];
    snprintf(want, sizeof want, "%s:%s", tag, key);
    assert_int_equal(r->ncells, 1);
    assert_int_equal(r->cells[0].vlen, strlen(want));
    assert_memory_equal(r->cells[0].val, want, strlen(want));
    assert_int_equal(sst_part_next(p, &r, &err), 0);
    sst_part_close(p);
}

/* Second reads hit; the bound holds (LRU evictions) and a tiny or zero
 * bound still reads correctly. */
static void test_block_cache_hits_and_bound(void **state)
{
    fx *f = *state;
    const int n = 2000;
    char **keys = make_keys(n);
    write_tagged(f->dir, 1, keys, n, "aa");
    sstable *s;
    sib_err err = {0};
    assert_int_equal(sst_open(&s, f->dir, 1, &err), 0);
    sst_bcache *bc;
    assert_int_equal(sst_bcache_create(&bc, 1 << 20, &err), 0);
    for (int i = 0; i < n; i++) check_tagged(s, bc, keys[i], "aa");
    sst_bcache_stats a, b;
    sst_bcache_get_stats(bc, &a);
    assert_true(a.misses > 10 && a.hits > 0 && a.hits + a.misses >= (uint64_t)n);
    assert_int_equal(a.evictions, 0);
    assert_int_equal(a.entries, a.misses); /* every miss was cached */
    assert_true(a.bytes > a.entries * 512 && a.bytes <= a.capacity);
    for (int i = 0; i < n; i++) check_tagged(s, bc, keys[i], "aa");
    sst_bcache_get_stats(bc, &b);
    assert_int_equal(b.misses, a.misses);
    assert_true(b.hits >= a.hits + (uint64_t)n);
    sst_bcache_destroy(bc);
    /* a bound of about three blocks */
    assert_int_equal(sst_bcache_create(&bc, 3 * 1200, &err), 0);
    for (int i = 0; i < n; i++) check_tagged(s, bc, keys[i], "aa");
    sst_bcache_get_stats(bc, &a);
    fprintf(stderr, "small cache: %llu hits %llu misses %llu evictions %zu entries %zu bytes\n", (unsigned long long)a.hits,
            (unsigned long long)a.misses, (unsigned long long)a.evictions, a.entries, a.bytes);
    assert_true(a.evictions > 0 && a.entries <= 3 && a.bytes <= 3 * 1200);
    assert_int_equal(a.evictions + a.entries, a.misses);
    sst_bcache_destroy(bc);
    assert_int_equal(sst_bcache_create(&bc, 0, &err), 0);
    for (int i = 0; i < n; i += 7) check_tagged(s, bc, keys[i], "aa");
    sst_bcache_get_stats(bc, &a);
    assert_int_equal(a.entries, 0);
    assert_int_equal(a.bytes, 0);
    sst_bcache_destroy(bc);
    sst_unref(s);
    free_keys(keys, n);
}

/* A new SSTable with the generation (and path) of one still cached never
 * sees the old blocks: the key is the object, not the file. */
static void test_block_cache_same_generation(void **state)
{
    fx *f = *state;
    const int n = 1000;
    char **keys = make_keys(n);
    sib_err err = {0};
    sst_bcache *bc;
    assert_int_equal(sst_bcache_create(&bc, 1 << 20, &err), 0);
    write_tagged(f->dir, 7, keys, n, "old");
    sstable *s1, *s2;
    assert_int_equal(sst_open(&s1, f->dir, 7, &err), 0);
    for (int i = 0; i < n; i++) check_tagged(s1, bc, keys[i], "old");
    assert_int_equal(sst_remove(f->dir, 7, &err), 0); /* s1's mapping lives on */
    write_tagged(f->dir, 7, keys, n, "new");
    assert_int_equal(sst_open(&s2, f->dir, 7, &err), 0);
    for (int i = 0; i < n; i++) check_tagged(s2, bc, keys[i], "new");
    for (int i = 0; i < n; i += 3) check_tagged(s1, bc, keys[i], "old");
    sst_bcache_stats a, b;
    sst_bcache_get_stats(bc, &a);
    sst_bcache_forget(bc, s1); /* as compaction does when s1 leaves the read path */
    sst_bcache_get_stats(bc, &b);
    assert_true(b.entries > 0 && b.entries < a.entries && b.bytes < a.bytes);
    for (int i = 0; i < n; i++) check_tagged(s2, bc, keys[i], "new");
    sst_bcache_get_stats(bc, &a);
    assert_int_equal(a.misses, b.misses); /* s2's blocks stayed */
    for (int i = 0; i < n; i += 5) check_tagged(s1, bc, keys[i], "old"); /* forgotten: read uncached */
    sst_bcache_get_stats(bc, &b);
    assert_int_equal(b.entries, a.entries);
    assert_int_equal(b.misses, a.misses);
    sst_unref(s1);
    sst_unref(s2);
    sst_bcache_destroy(bc);
    free_keys(keys, n);
}

/* A part keeps the block it reads while the cache forgets its SSTable (and
 * while the cache itself goes away): nothing is freed under it. */
static void test_block_cache_pinned_block(void **state)
{
    fx *f = *state;
    sib_err err = {0};
    const int n = 20000;
    write_wide(f->dir, 9, n);
    sstable *s;
    assert_int_equal(sst_open(&s, f->dir, 9, &err), 0);
    sst_bcache *bc;
    assert_int_equal(sst_bcache_create(&bc, 1 << 20, &err), 0);
    sst_part *p;
    assert_int_equal(sst_part_open_cached(s, bc, (const uint8_t *)"wide", 4, sib_murmur3_token("wide", 4), &p, &err), 0);
    assert_non_null(p);
    const sst_row *r;
    int i = 0;
    for (; i < 500; i++) assert_int_equal(sst_part_next(p, &r, &err), 1);
    sst_bcache_stats st;
    sst_bcache_get_stats(bc, &st);
    assert_true(st.entries > 0);
    sst_bcache_forget(bc, s);
    sst_bcache_get_stats(bc, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    for (; sst_part_next(p, &r, &err) == 1; i++) {
        char want[16];
        snprintf(want, sizeof want, "r%07d", i);
        assert_memory_equal(r->ck, want, 8);
    }
    assert_int_equal(i, n);
    sst_part_close(p);
    sst_bcache_get_stats(bc, &st);
    assert_int_equal(st.entries, 0); /* forgotten: nothing more cached */
    sst_unref(s);
    /* a fresh object for the same files caches again; the cache goes first */
    assert_int_equal(sst_open(&s, f->dir, 9, &err), 0);
    assert_int_equal(sst_part_open_cached(s, bc, (const uint8_t *)"wide", 4, sib_murmur3_token("wide", 4), &p, &err), 0);
    assert_int_equal(sst_part_next(p, &r, &err), 1);
    sst_bcache_get_stats(bc, &st);
    assert_true(st.entries > 0);
    sst_bcache_destroy(bc);
    sst_part_close(p);
    sst_unref(s);
}

static void test_bound_and_lww(void **state)
{
    sst_bound incl = {(const uint8_t *)"ab", 2, true, false}, excl = {(const uint8_t *)"ab", 2, false, false};
    assert_true(sst_bound_cmp((const uint8_t *)"abc", 3, &incl, true) > 0);
    assert_true(sst_bound_cmp((const uint8_t *)"abc", 3, &excl, true) < 0);
    assert_true(sst_bound_cmp((const uint8_t *)"abc", 3, &incl, false) < 0);
    assert_true(sst_bound_cmp((const uint8_t *)"abc", 3, &excl, false) > 0);
    assert_true(sst_bound_cmp((const uint8_t *)"a", 1, &incl, true) < 0);
    sst_cell a = {1, 0, 1, NULL, (const uint8_t *)"b", 10, 0, SST_NO_LDT};
    sst_cell b = {1, 0, 1, NULL, (const uint8_t *)"a", 10, 0, SST_NO_LDT};
    sst_cell t = {1, 0, 0, NULL, NULL, 10, 0, 5};
    assert_true(sst_cell_supersedes(&a, &b));
    assert_true(sst_cell_supersedes(&t, &a));
    assert_false(sst_cell_supersedes(&a, &t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bloom_fp_rate),
        cmocka_unit_test(test_bound_and_lww),
        cmocka_unit_test_setup_teardown(test_roundtrip_and_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp_base, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wide_partition_slices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupted_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrite_salvage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftovers_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_sound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_cache_hits_and_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_cache_same_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_cache_pinned_block, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
