/* Unit tests for compaction/ through its public header: options and their
 * validation, STCS bucketing and choice, every LWW and purge rule of
 * docs/compaction.md (reconciliation and purge) on cm_merge_rows /
 * cm_row_compact / cm_part_compact, the compaction task (merge of real
 * SSTables, purge against an SSTable outside the compaction, cancellation),
 * several outputs per task, the transaction log (roll forward, roll back,
 * torn commit, the old one-output format, a kill at every step of a
 * multi-output task through failpoints) and worthDroppingTombstones. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compaction.h"

#define NOW 1800000000
#define GC_BEFORE (NOW - 1000)

#include "tmpdir_fixture.h"

static int setup(void **state) { return tmpdir_setup(state, "sibcompact"); }
static int teardown(void **state) { return tmpdir_teardown(state); }

static size_t count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name), s = strlen(suffix);
        if (de->d_name[0] != '.' && l >= s && !strcmp(de->d_name + l - s, suffix)) n++;
    }
    if (d) closedir(d);
    return n;
}

/* ---- options ---- */

static void test_options(void **state)
{
    cm_options o;
    cm_options_default(&o);
    assert_int_equal(o.min_threshold, 4);
    assert_int_equal(o.max_threshold, 32);
    assert_true(o.bucket_low == 0.5 && o.bucket_high == 1.5 && o.tombstone_threshold == 0.2);
    assert_int_equal(o.min_sstable_size, 50ull << 20);
    assert_int_equal(o.tombstone_compaction_interval, 86400);
    assert_int_equal(o.gc_grace_seconds, 864000);
    bool other;
    sib_err err;
    const char *k1[] = {"class", "min_threshold", "max_threshold", "bucket_low", "tombstone_compaction_interval"};
    const char *v1[] = {"SizeTieredCompactionStrategy", "2", "8", "0.25", "0"};
    assert_int_equal(cm_options_parse(&o, k1, v1, 5, &other, &err), 0);
    assert_false(other);
    assert_int_equal(o.min_threshold, 2);
    assert_int_equal(o.max_threshold, 8);
    assert_int_equal(o.tombstone_compaction_interval, 0);
    const char *k2[] = {"bucket_low", "bucket_high"}, *v2[] = {"1.5", "1.0"};
    assert_int_equal(cm_options_parse(&o, k2, v2, 2, &other, &err), SIB_ECONFIG);
    assert_non_null(strstr(err.msg, "bucket_high"));
    const char *k3[] = {"min_threshold"}, *v3[] = {"64"};
    assert_int_equal(cm_options_parse(&o, k3, v3, 1, &other, &err), SIB_ECONFIG);
    const char *k4[] = {"class", "bogus"}, *v4[] = {"SizeTieredCompactionStrategy", "1"};
    assert_int_equal(cm_options_parse(&o, k4, v4, 2, &other, &err), SIB_ECONFIG);
    assert_non_null(strstr(err.msg, "not understood"));
    const char *k5[] = {"class", "sstable_size_in_mb"};
    const char *v5[] = {"org.apache.cassandra.db.compaction.LeveledCompactionStrategy", "160"};
    assert_int_equal(cm_options_parse(&o, k5, v5, 2, &other, &err), 0);
    assert_false(other); /* LCS is built */
    assert_int_equal(o.kind, CM_LCS);
    assert_int_equal(o.sstable_size, 160ull << 20);
    assert_int_equal(o.fanout_size, 10);
    const char *k8[] = {"class"}, *v8[] = {"LeveledCompactionStrategy"};
    v5[1] = "1";
    assert_int_equal(cm_options_parse(&o, k5, v5, 2, &other, &err), 0);
    assert_int_equal(o.sstable_size, 1ull << 20);
    assert_int_equal(cm_options_parse(&o, k8, v8, 1, &other, &err), 0);
    assert_int_equal(o.sstable_size, 160ull << 20); /* a new map: the default again */
    v5[1] = "0";
    assert_int_equal(cm_options_parse(&o, k5, v5, 2, &other, &err), SIB_ECONFIG);
    v5[1] = "1.5";
    assert_int_equal(cm_options_parse(&o, k5, v5, 2, &other, &err), SIB_ECONFIG);
    assert_int_equal(o.sstable_size, 160ull << 20); /* unchanged by a rejected map */
    v8[0] = "SizeTieredCompactionStrategy";
    assert_int_equal(cm_options_parse(&o, k8, v8, 1, &other, &err), 0);
    assert_int_equal(o.sstable_size, 0); /* STCS: one output */
    const char *k9[] = {"class", "sstable_size_in_mb"}, *v9[] = {"SizeTieredCompactionStrategy", "10"};
    assert_int_equal(cm_options_parse(&o, k9, v9, 2, &other, &err), SIB_ECONFIG);
    assert_non_null(strstr(err.msg, "not understood"));
    const char *k6[] = {"class"}, *v6[] = {"NoSuchStrategy"};
    assert_int_equal(cm_options_parse(&o, k6, v6, 1, &other, &err), SIB_ECONFIG);
    const char *k7[] = {"min_threshold"}, *v7[] = {"four"};
    assert_int_equal(cm_options_parse(&o, k7, v7, 1, &other, &err), SIB_ECONFIG);
    assert_int_equal(o.min_threshold, 2); /* untouched by the failures */
}

/* ---- STCS ---- */

static void test_stcs_buckets(void **state)
{
    cm_options o;
    cm_options_default(&o);
    o.min_sstable_size = 0;
    /* 100, 110, 120 together (each within 0.5..1.5 of the running average);
     * 1000 alone; 1300 joins 1000 (avg*0.5 < 1300 < avg*1.5) */
    uint64_t sizes[] = {1000, 110, 100, 1300, 120};
    size_t b[5];
    assert_int_equal(cm_stcs_buckets(&o, sizes, 5, b), 2);
    assert_int_equal(b[1], b[2]);
    assert_int_equal(b[4], b[2]);
    assert_int_equal(b[0], b[3]);
    assert_int_not_equal(b[0], b[2]);
    /* both bounds strict: 150 is exactly 1.5 x 100 -> new bucket */
    uint64_t s2[] = {100, 150};
    assert_int_equal(cm_stcs_buckets(&o, s2, 2, b), 2);
    /* below min_sstable_size everything shares the small bucket */
    o.min_sstable_size = 1 << 20;
    uint64_t s3[] = {10, 1000, 500000};
    assert_int_equal(cm_stcs_buckets(&o, s3, 3, b), 1);
}

/* ---- SSTables for the tests ---- */

typedef struct trow {
    const char *ck;
    int64_t ts;
    const char *val; /* NULL: a cell tombstone */
    int32_t ldt;     /* tombstone ldt */
} trow;

/* One partition per key, rows with column 1. pdel_ts != 0 adds a partition deletion. */
static sstable *write_sst(const char *dir, uint64_t gen, const char *const *pks, size_t npk, const trow *rows,
                          size_t nrows, int64_t pdel_ts, int32_t pdel_ldt)
{
    sst_writer *w;
    sib_err err;
    sst_writer_opts o = {.block_size = 512, .expected_keys = npk};
    assert_int_equal(sst_writer_create(&w, dir, gen, &o, &err), 0);
    const char *sorted[16];
    memcpy(sorted, pks, npk * sizeof *pks);
    for (size_t i = 0; i < npk; i++) /* token order */
        for (size_t k = i + 1; k < npk; k++)
            if (sib_murmur3_token(sorted[k], strlen(sorted[k])) < sib_murmur3_token(sorted[i], strlen(sorted[i]))) {
                const char *x = sorted[i];
                sorted[i] = sorted[k];
                sorted[k] = x;
            }
    for (size_t p = 0; p < npk; p++) {
        sst_del pd = pdel_ts ? (sst_del){pdel_ts, pdel_ldt} : (sst_del){SST_NO_TS, SST_NO_LDT};
        assert_int_equal(sst_write_partition(w, (const uint8_t *)sorted[p], strlen(sorted[p]), pd, NULL, 0, &err), 0);
        for (size_t r = 0; r < nrows; r++) {
            sst_cell c = {.col = 1, .ts = rows[r].ts, .ttl = 0, .ldt = rows[r].val ? SST_NO_LDT : rows[r].ldt};
            if (rows[r].val) c.val = (const uint8_t *)rows[r].val, c.vlen = (uint32_t)strlen(rows[r].val);
            sst_row row = {.ck = (const uint8_t *)rows[r].ck, .cklen = (uint32_t)strlen(rows[r].ck),
                           .marker_ts = SST_NO_TS, .del = {SST_NO_TS, SST_NO_LDT}, .cells = &c, .ncells = 1};
            assert_int_equal(sst_write_row(w, &row, &err), 0);
        }
        assert_int_equal(sst_write_partition_end(w, &err), 0);
    }
    assert_int_equal(sst_writer_finish(w, NULL, &err), 0);
    sst_writer_destroy(w);
    sstable *s;
    assert_int_equal(sst_open(&s, dir, gen, &err), 0);
    return s;
}

/* The cells of one partition's rows as "ck=val@ts" / "ck=X@ts" (tombstone). */
static void dump(sstable *s, const char *pk, char *out, size_t cap)
{
    sst_part *p;
    sib_err err;
    out[0] = 0;
    assert_int_equal(sst_part_open(s, (const uint8_t *)pk, strlen(pk), sib_murmur3_token(pk, strlen(pk)), &p, &err), 0);
    if (!p) return;
    sst_del d = sst_part_deletion(p);
    size_t n = 0;
    if (d.ts != SST_NO_TS) n += (size_t)snprintf(out + n, cap - n, "D%lld ", (long long)d.ts);
    sst_bound all = {NULL, 0, true, true};
    assert_int_equal(sst_part_seek(p, &all, false, &err), 0);
    const sst_row *r;
    while (sst_part_next(p, &r, &err) == 1)
        for (uint32_t i = 0; i < r->ncells; i++)
            n += (size_t)snprintf(out + n, cap - n, "%.*s=%.*s@%lld ", (int)r->cklen, r->ck,
                                  sst_cell_tomb(&r->cells[i]) ? 1 : (int)r->cells[i].vlen,
                                  sst_cell_tomb(&r->cells[i]) ? "X" : (const char *)r->cells[i].val,
                                  (long long)r->cells[i].ts);
    sst_part_close(p);
}

/* ---- LWW and purge rules on rows ---- */

static sst_cell cell(int64_t ts, int32_t ttl, int32_t ldt, const char *val)
{
    sst_cell c = {.col = 1, .ts = ts, .ttl = ttl, .ldt = ldt};
    if (val) c.val = (const uint8_t *)val, c.vlen = (uint32_t)strlen(val);
    return c;
}

static sst_row row1(const sst_cell *c, size_t n)
{
    return (sst_row){.ck = (const uint8_t *)"r", .cklen = 1, .marker_ts = SST_NO_TS, .del = {SST_NO_TS, SST_NO_LDT},
                     .cells = c, .ncells = (uint32_t)n};
}

/* The winner of two cells through cm_merge_rows, both orders (commutative). */
static sst_cell winner(sst_cell a, sst_cell b)
{
    cm_rowmerge m = {0};
    sst_row ra = row1(&a, 1), rb = row1(&b, 1), out;
    const sst_row *rows[2] = {&ra, &rb};
    assert_int_equal(cm_merge_rows(&m, rows, 2, &out), 0);
    assert_int_equal(out.ncells, 1);
    sst_cell w1 = out.cells[0];
    rows[0] = &rb;
    rows[1] = &ra;
    assert_int_equal(cm_merge_rows(&m, rows, 2, &out), 0);
    sst_cell w2 = out.cells[0];
    assert_true(w1.ts == w2.ts && w1.ttl == w2.ttl && w1.ldt == w2.ldt && w1.vlen == w2.vlen);
    cm_rowmerge_free(&m);
    return w1;
}

static void test_lww_rules(void **state)
{
    /* 1. higher timestamp */
    assert_int_equal(winner(cell(10, 0, SST_NO_LDT, "a"), cell(11, 0, SST_NO_LDT, "a")).ts, 11);
    assert_int_equal(winner(cell(12, 0, NOW, NULL), cell(11, 0, SST_NO_LDT, "z")).ts, 12);
    /* 2. tie: expiring or tombstone beats a plain live cell */
    assert_true(sst_cell_tomb(&(sst_cell){.ttl = 0, .ldt = NOW}));
    sst_cell w = winner(cell(10, 0, NOW, NULL), cell(10, 0, SST_NO_LDT, "zz"));
    assert_true(sst_cell_tomb(&w));
    w = winner(cell(10, 100, NOW + 100, "a"), cell(10, 0, SST_NO_LDT, "zz"));
    assert_int_equal(w.ttl, 100);
    /* 3. tombstone beats expiring */
    w = winner(cell(10, 0, NOW - 5, NULL), cell(10, 100, NOW + 100, "a"));
    assert_true(sst_cell_tomb(&w));
    /* 4. both expiring (or both tombstones): higher ldt */
    assert_int_equal(winner(cell(10, 100, NOW + 100, "a"), cell(10, 100, NOW + 200, "a")).ldt, NOW + 200);
    assert_int_equal(winner(cell(10, 0, NOW + 1, NULL), cell(10, 0, NOW + 2, NULL)).ldt, NOW + 2);
    /* 5. greater value bytes */
    w = winner(cell(10, 0, SST_NO_LDT, "ab"), cell(10, 0, SST_NO_LDT, "b"));
    assert_memory_equal(w.val, "b", 1);
    /* markers: higher ts, then expiring, then later expiry */
    sst_row a = row1(NULL, 0), b = row1(NULL, 0);
    a.marker_ts = 5, b.marker_ts = 5, a.marker_ttl = 10, a.marker_ldt = NOW, b.marker_ldt = SST_NO_LDT;
    assert_true(cm_marker_supersedes(&a, &b));
    assert_false(cm_marker_supersedes(&b, &a));
    b.marker_ttl = 10, b.marker_ldt = NOW + 1;
    assert_true(cm_marker_supersedes(&b, &a));
    b.marker_ts = 4;
    assert_true(cm_marker_supersedes(&a, &b));
}

typedef struct mpc { int calls; int64_t mp; } mpc;
static int64_t mp_fn(void *arg)
{
    mpc *c = arg;
    c->calls++;
    return c->mp;
}

static cm_purge purge_ctx(mpc *c) { return (cm_purge){.now = NOW, .gc_before = GC_BEFORE, .mp_fn = mp_fn, .mp_arg = c}; }

static void test_shadowing(void **state)
{
    cm_rowmerge m = {0};
    mpc c = {0, INT64_MAX};
    cm_purge p = purge_ctx(&c);
    sst_cell cs[3] = {cell(10, 0, SST_NO_LDT, "a"), cell(20, 0, SST_NO_LDT, "b"), cell(30, 0, SST_NO_LDT, "c")};
    cs[1].col = 2, cs[2].col = 3;
    sst_row in = row1(cs, 3), out;
    /* a deletion shadows ts <= its own (a tie is shadowed) */
    assert_int_equal(cm_row_compact(&m, &p, &in, (sst_del){20, NOW}, &out), 1);
    assert_int_equal(out.ncells, 1);
    assert_int_equal(out.cells[0].ts, 30);
    /* everything shadowed: the row vanishes */
    assert_int_equal(cm_row_compact(&m, &p, &in, (sst_del){30, NOW}, &out), 0);
    /* a row deletion below the active (partition) deletion is dropped */
    in.del = (sst_del){15, NOW};
    assert_int_equal(cm_row_compact(&m, &p, &in, (sst_del){20, NOW}, &out), 1);
    assert_int_equal(out.del.ts, SST_NO_TS);
    /* one above it is kept and shadows */
    in.del = (sst_del){25, NOW};
    assert_int_equal(cm_row_compact(&m, &p, &in, (sst_del){20, NOW}, &out), 1);
    assert_int_equal(out.del.ts, 25);
    assert_int_equal(out.ncells, 1);
    /* complex deletion shadows its column's cells */
    in.del = (sst_del){SST_NO_TS, SST_NO_LDT};
    sst_cdel cd = {2, {25, NOW}};
    in.cdels = &cd;
    in.ncdels = 1;
    assert_int_equal(cm_row_compact(&m, &p, &in, (sst_del){SST_NO_TS, SST_NO_LDT}, &out), 1);
    assert_int_equal(out.ncells, 2);
    assert_int_equal(out.ncdels, 1);
    /* range tombstones: covering one applies; the partition deletion wins when it supersedes */
    sst_rt rt = {{(const uint8_t *)"a", 1, true, false}, {(const uint8_t *)"s", 1, true, false}, {40, NOW}};
    sst_del act = cm_active_deletion((sst_del){30, NOW}, &rt, 1, (const uint8_t *)"r", 1, false);
    assert_int_equal(act.ts, 40);
    act = cm_active_deletion((sst_del){30, NOW}, &rt, 1, (const uint8_t *)"t", 1, false);
    assert_int_equal(act.ts, 30);
    act = cm_active_deletion((sst_del){30, NOW}, &rt, 1, NULL, 0, true); /* static row: no ranges */
    assert_int_equal(act.ts, 30);
    /* partition level: a range tombstone not superseding the partition deletion goes */
    sst_del pd = {50, NOW};
    const sst_rt *wr;
    size_t nw;
    assert_int_equal(cm_part_compact(&m, &p, &pd, &rt, 1, &wr, &nw), 0);
    assert_int_equal(nw, 0);
    assert_int_equal(pd.ts, 50); /* not gc-able (ldt NOW >= gc_before) */
    assert_int_equal(c.calls, 0); /* nothing gc-able: the overlap check never ran */
    cm_rowmerge_free(&m);
}

static void test_purge_rules(void **state)
{
    cm_rowmerge m = {0};
    mpc c = {0, INT64_MAX};
    cm_purge p = purge_ctx(&c);
    sst_row out;
    /* a tombstone inside gc_grace stays */
    sst_cell t1 = cell(100, 0, GC_BEFORE, NULL);
    sst_row in = row1(&t1, 1);
    assert_int_equal(cm_row_compact(&m, &p, &in, (sst_del){SST_NO_TS, SST_NO_LDT}, &out), 1);
    assert_int_equal(out.ncells, 1);
    assert_int_equal(c.calls, 0);
    /* past gc_grace and nothing older outside: purged (one overlap check per partition) */
    sst_cell t2 = cell(100, 0, GC_BEFORE - 1, NULL);
    in = row1(&t2, 1);
    assert_int_equal(cm_row_compact(&m, &p, &in, (sst_del){SST_NO_TS, SST_NO_LDT}, &out), 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(p.purged, 1);
    assert_int_equal(cm_row_compact(&m, &p, &in, (sst_del){SST_NO_TS, SST_NO_LDT}, &out), 0);
    assert_int_equal(c.calls, 1);
    /* older data outside (min ts <= tombstone ts): kept */
    mpc c2 = {0, 100};
    cm_purge p2 = purge_ctx(&c2);
    assert_int_equal(cm_row_compact(&m, &p2, &in, (sst_del){SST_NO_TS, SST_NO_LDT}, &out), 1);
    mpc c3 = {0, 101};
    cm_purge p3 = purge_ctx(&c3);
    assert_int_equal(cm_row_compact(&m, &p3, &in, (sst_del){SST_NO_TS, SST_NO_LDT}, &out), 0);
    /* an expired cell becomes a tombstone at its write time (ldt - ttl) */
    sst_cell e1 = cell(100, 600, NOW - 10, "v"); /* written at NOW-610, inside gc_grace */
    in = row1(&e1, 1);
    mpc c4 = {0, INT64_MAX};
    cm_purge p4 = purge_ctx(&c4);
    assert_int_equal(cm_row_compact(&m, &p4, &in, (sst_del){SST_NO_TS, SST_NO_LDT}, &out), 1);
    assert_true(sst_cell_tomb(&out.cells[0]));
    assert_int_equal(out.cells[0].ldt, NOW - 610);
    assert_int_equal(out.cells[0].vlen, 0);
    /* TTL >= gc_grace: purged at once on expiry */
    sst_cell e2 = cell(100, 5000, NOW, "v");
    in = row1(&e2, 1);
    assert_int_equal(cm_row_compact(&m, &p4, &in, (sst_del){SST_NO_TS, SST_NO_LDT}, &out), 0);
    /* not yet expired (now < ldt): untouched */
    sst_cell e3 = cell(100, 5000, NOW + 1, "v");
    in = row1(&e3, 1);
    assert_int_equal(cm_row_compact(&m, &p4, &in, (sst_del){SST_NO_TS, SST_NO_LDT}, &out), 1);
    assert_int_equal(out.cells[0].ttl, 5000);
    /* an expired marker stays until purgeable with its expiry as ldt */
    in = row1(NULL, 0);
    in.marker_ts = 100, in.marker_ttl = 10, in.marker_ldt = NOW - 10;
    assert_int_equal(cm_row_compact(&m, &p4, &in, (sst_del){SST_NO_TS, SST_NO_LDT}, &out), 1);
    assert_int_equal(out.marker_ts, 100);
    in.marker_ldt = GC_BEFORE - 1;
    assert_int_equal(cm_row_compact(&m, &p4, &in, (sst_del){SST_NO_TS, SST_NO_LDT}, &out), 0);
    /* row deletion, complex deletion, partition deletion and range tombstones follow the same rule */
    in = row1(NULL, 0);
    in.del = (sst_del){100, GC_BEFORE - 1};
    sst_cdel cd = {1, {90, GC_BEFORE - 1}};
    in.cdels = &cd, in.ncdels = 1;
    assert_int_equal(cm_row_compact(&m, &p4, &in, (sst_del){SST_NO_TS, SST_NO_LDT}, &out), 0);
    sst_del pd = {100, GC_BEFORE - 1};
    sst_rt rt = {{NULL, 0, true, true}, {NULL, 0, true, true}, {200, GC_BEFORE - 1}};
    const sst_rt *wr;
    size_t nw;
    assert_int_equal(cm_part_compact(&m, &p4, &pd, &rt, 1, &wr, &nw), 0);
    assert_int_equal(pd.ts, SST_NO_TS);
    assert_int_equal(nw, 0);
    /* nothing purgeable: the flush context */
    cm_purge none = cm_purge_none();
    pd = (sst_del){100, 0};
    assert_int_equal(cm_part_compact(&m, &none, &pd, &rt, 1, &wr, &nw), 0);
    assert_int_equal(pd.ts, 100);
    assert_int_equal(nw, 1);
    cm_rowmerge_free(&m);
}

/* ---- the task ---- */

static cm_task task_for(const char *dir, sstable **in, size_t n, sstable **out, size_t nout, uint64_t gen)
{
    cm_task t = {0};
    t.dir = dir;
    t.inputs = in;
    t.ninputs = n;
    t.outside = out;
    t.noutside = nout;
    t.mem_min_ts = INT64_MAX;
    t.out_gen = gen;
    t.wo.block_size = 512;
    t.now = NOW;
    t.gc_before = GC_BEFORE;
    return t;
}

static void test_task_merge(void **state)
{
    fx *f = *state;
    const char *pks[] = {"a", "b", "c"};
    trow r1[] = {{"r1", 10, "old", 0}, {"r2", 10, "x", 0}};
    trow r2[] = {{"r1", 20, "new", 0}, {"r3", 5, "y", 0}};
    trow r3[] = {{"r2", 30, NULL, NOW}};
    sstable *in[3] = {write_sst(f->dir, 1, pks, 3, r1, 2, 0, 0), write_sst(f->dir, 2, pks, 2, r2, 2, 0, 0),
                      write_sst(f->dir, 3, pks + 2, 1, r3, 1, 0, 0)};
    cm_throttle th;
    cm_throttle_init(&th, 0);
    cm_task t = task_for(f->dir, in, 3, NULL, 0, 4);
    t.throttle = &th;
    assert_int_equal(cm_task_run(&t), 0);
    assert_int_equal(t.noutputs, 1);
    assert_int_equal(t.partitions_in, 3 + 2 + 1);
    assert_int_equal(t.partitions_out, 3);
    assert_true(t.bytes_written > 0 && t.bytes_read > 0);
    assert_true(t.bytes_done > 0 && t.bytes_total > 0);
    char b[256];
    dump(t.outputs[0], "a", b, sizeof b);
    assert_string_equal(b, "r1=new@20 r2=x@10 r3=y@5 ");
    dump(t.outputs[0], "c", b, sizeof b);
    assert_string_equal(b, "r1=old@10 r2=X@30 "); /* within gc_grace: kept */
    /* inputs deleted, no log left; the output carries the inputs' stats */
    assert_int_equal(count_files(f->dir, "-TOC.txt"), 1);
    assert_int_equal(count_files(f->dir, "-txn.log"), 0);
    for (int i = 0; i < 3; i++) sst_unref(in[i]);
    cm_task_free_outputs(&t);
    cm_throttle_free(&th);
}

static void test_task_purge_overlap(void **state)
{
    fx *f = *state;
    const char *pk[] = {"k"}, *other[] = {"zz"};
    trow old[] = {{"r", 5, "resurrect-me", 0}};
    trow del[] = {{"r", 50, NULL, GC_BEFORE - 100}};
    sstable *o = write_sst(f->dir, 1, pk, 1, old, 1, 0, 0); /* older data, outside the compaction */
    sstable *in[2] = {write_sst(f->dir, 2, pk, 1, del, 1, 0, 0), write_sst(f->dir, 3, other, 1, old, 1, 0, 0)};
    cm_task t = task_for(f->dir, in, 2, &o, 1, 4);
    assert_int_equal(cm_task_run(&t), 0);
    char b[256];
    dump(t.outputs[0], "k", b, sizeof b);
    assert_string_equal(b, "r=X@50 "); /* kept: it still shadows gen 1 */
    assert_int_equal(t.purged, 0);
    sstable *in2[2] = {o, t.outputs[0]};
    cm_task t2 = task_for(f->dir, in2, 2, NULL, 0, 5);
    assert_int_equal(cm_task_run(&t2), 0);
    dump(t2.outputs[0], "k", b, sizeof b);
    assert_string_equal(b, ""); /* both in: the tombstone and what it shadows go */
    assert_int_equal(t2.purged, 1);
    /* the memtables' minimum timestamp blocks a purge the same way */
    sstable *in3[1] = {write_sst(f->dir, 6, pk, 1, del, 1, 0, 0)};
    cm_task t3 = task_for(f->dir, in3, 1, NULL, 0, 7);
    t3.mem_min_ts = 49;
    assert_int_equal(cm_task_run(&t3), 0);
    dump(t3.outputs[0], "k", b, sizeof b);
    assert_string_equal(b, "r=X@50 ");
    /* a partition deletion past gc_grace with nothing older: the partition disappears */
    sstable *in4[1] = {write_sst(f->dir, 8, pk, 1, old, 1, 100, GC_BEFORE - 1)};
    cm_task t4 = task_for(f->dir, in4, 1, NULL, 0, 9);
    assert_int_equal(cm_task_run(&t4), 0);
    assert_int_equal(t4.noutputs, 0); /* nothing survived: no output at all */
    assert_int_equal(count_files(f->dir, "9-TOC.txt"), 0);
    sst_unref(o);
    for (int i = 0; i < 2; i++) sst_unref(in[i]);
    cm_task_free_outputs(&t);
    cm_task_free_outputs(&t2);
    sst_unref(in3[0]);
    cm_task_free_outputs(&t3);
    sst_unref(in4[0]);
}

static void test_task_cancel(void **state)
{
    fx *f = *state;
    const char *pks[] = {"a", "b"};
    trow r[] = {{"r", 1, "v", 0}};
    sstable *in[2] = {write_sst(f->dir, 1, pks, 2, r, 1, 0, 0), write_sst(f->dir, 2, pks, 1, r, 1, 0, 0)};
    bool cancel = true;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    cm_task t = task_for(f->dir, in, 2, NULL, 0, 3);
    t.mu = &mu;
    t.cancelled = &cancel;
    assert_int_equal(cm_task_run(&t), SIB_EAGAIN);
    assert_int_equal(t.noutputs, 0);
    assert_int_equal(count_files(f->dir, "-TOC.txt"), 2); /* inputs intact */
    assert_int_equal(count_files(f->dir, "-txn.log"), 0);
    assert_int_equal(count_files(f->dir, ".tmp"), 0);
    for (int i = 0; i < 2; i++) sst_unref(in[i]);
}

/* ---- transaction log ---- */

static void test_txn_recover(void **state)
{
    fx *f = *state;
    const char *pks[] = {"a"};
    trow r[] = {{"r", 1, "v", 0}};
    sib_err err;
    size_t n;
    /* crash before commit: the output (even with its TOC) goes, inputs stay */
    sst_unref(write_sst(f->dir, 1, pks, 1, r, 1, 0, 0));
    sst_unref(write_sst(f->dir, 2, pks, 1, r, 1, 0, 0));
    uint64_t ins[2] = {1, 2};
    cm_txn *x;
    assert_int_equal(cm_txn_begin(&x, f->dir, 3, ins, 2, &err), 0);
    assert_int_equal(cm_txn_add(x, 3, &err), 0);
    sst_unref(write_sst(f->dir, 3, pks, 1, r, 1, 0, 0));
    /* simulate the crash: forget x without finishing (close its fd by exiting the scope) */
    assert_int_equal(cm_txn_recover(f->dir, NULL, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(count_files(f->dir, "-TOC.txt"), 2);
    assert_int_equal(count_files(f->dir, "3-Data.db"), 0);
    assert_int_equal(count_files(f->dir, "-txn.log"), 0);
    assert_int_equal(cm_txn_finish(x, &err), 0); /* nothing left to do: the files are gone */
    /* crash after commit: the inputs go */
    assert_int_equal(cm_txn_begin(&x, f->dir, 4, ins, 2, &err), 0);
    assert_int_equal(cm_txn_add(x, 4, &err), 0);
    sst_unref(write_sst(f->dir, 4, pks, 1, r, 1, 0, 0));
    assert_int_equal(cm_txn_commit(x, &err), 0);
    assert_int_equal(cm_txn_recover(f->dir, NULL, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(count_files(f->dir, "-TOC.txt"), 1);
    assert_int_equal(count_files(f->dir, "4-TOC.txt"), 1);
    assert_int_equal(cm_txn_finish(x, &err), 0);
    /* a torn COMMIT (no newline / bad crc) is no commit */
    uint64_t in4[1] = {4};
    assert_int_equal(cm_txn_begin(&x, f->dir, 5, in4, 1, &err), 0);
    assert_int_equal(cm_txn_add(x, 5, &err), 0);
    sst_unref(write_sst(f->dir, 5, pks, 1, r, 1, 0, 0));
    char path[256];
    snprintf(path, sizeof path, "%s/5-txn.log", f->dir);
    FILE *fp = fopen(path, "a");
    fputs("COMMIT 0000", fp);
    fclose(fp);
    assert_int_equal(cm_txn_recover(f->dir, NULL, &n, &err), 0);
    assert_int_equal(count_files(f->dir, "4-TOC.txt"), 1);
    assert_int_equal(count_files(f->dir, "5-TOC.txt"), 0);
    assert_int_equal(cm_txn_finish(x, &err), 0);
}


/* ---- several outputs per task ---- */

/* Inputs of the multi-output tests: gen 1 has a..f (r1=v@10), gen 2 a
 * purgeable tombstone over b's r1 (ts 50), gen 3 a newer c. The merge is
 * a, c, d, e, f (b purged: its data and its tombstone are both inputs). */
static void write_split_inputs(const char *dir, sstable *in[3])
{
    const char *all[] = {"a", "b", "c", "d", "e", "f"}, *b[] = {"b"}, *c[] = {"c"};
    trow v[] = {{"r1", 10, "v", 0}}, del[] = {{"r1", 50, NULL, GC_BEFORE - 100}}, nc[] = {{"r1", 20, "new", 0}};
    in[0] = write_sst(dir, 1, all, 6, v, 1, 0, 0);
    in[1] = write_sst(dir, 2, b, 1, del, 1, 0, 0);
    in[2] = write_sst(dir, 3, c, 1, nc, 1, 0, 0);
}

static void check_split_content(sstable *const *ssts, size_t n)
{
    const char *keys[] = {"a", "b", "c", "d", "e", "f"};
    const char *want[] = {"r1=v@10 ", "", "r1=new@20 ", "r1=v@10 ", "r1=v@10 ", "r1=v@10 "};
    char b[256];
    for (size_t k = 0; k < 6; k++) {
        size_t found = 0;
        for (size_t i = 0; i < n; i++) {
            dump(ssts[i], keys[k], b, sizeof b);
            if (!b[0]) continue;
            assert_string_equal(b, want[k]);
            found++;
        }
        assert_int_equal(found, want[k][0] ? 1 : 0); /* outputs never overlap */
    }
}

static void test_task_split_outputs(void **state)
{
    fx *f = *state;
    sstable *in[3];
    write_split_inputs(f->dir, in);
    cm_task t = task_for(f->dir, in, 3, NULL, 0, 10);
    t.ngens = 8;
    t.max_output_bytes = 1; /* every partition closes its output */
    assert_int_equal(cm_task_run(&t), 0);
    assert_int_equal(t.noutputs, 5);
    assert_int_equal(t.partitions_out, 5);
    assert_int_equal(t.purged, 1);
    for (size_t i = 0; i < t.noutputs; i++) {
        assert_int_equal(sst_gen(t.outputs[i]), 10 + i);
        assert_int_equal(sst_get_stats(t.outputs[i])->partitions, 1);
        if (i) assert_true(sst_get_stats(t.outputs[i - 1])->last_token < sst_get_stats(t.outputs[i])->first_token);
    }
    check_split_content(t.outputs, t.noutputs);
    assert_int_equal(count_files(f->dir, "-TOC.txt"), 5);
    assert_int_equal(count_files(f->dir, "-txn.log"), 0);
    cm_task_free_outputs(&t);
    /* the reserved generations run out: the last output takes the rest */
    for (int i = 0; i < 3; i++) sst_unref(in[i]);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/few", f->dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    write_split_inputs(sub, in);
    t = task_for(sub, in, 3, NULL, 0, 10);
    t.ngens = 2;
    t.max_output_bytes = 1;
    assert_int_equal(cm_task_run(&t), 0);
    assert_int_equal(t.noutputs, 2);
    assert_int_equal(sst_get_stats(t.outputs[1])->partitions, 4);
    check_split_content(t.outputs, t.noutputs);
    cm_task_free_outputs(&t);
    for (int i = 0; i < 3; i++) sst_unref(in[i]);
}

/* Fully expired SSTables handed to a task as drops leave through the
 * transaction log without being read; the inputs beside them merge. */
static void test_task_drops_unread(void **state)
{
    fx *f = *state;
    const char *pks[] = {"a"};
    trow r[] = {{"r", 1, "v", 0}};
    sstable *in[1] = {write_sst(f->dir, 1, pks, 1, r, 1, 0, 0)};
    sstable *drop[2] = {write_sst(f->dir, 2, pks, 1, r, 1, 0, 0), write_sst(f->dir, 3, pks, 1, r, 1, 0, 0)};
    cm_task t = task_for(f->dir, NULL, 0, NULL, 0, 10);
    t.drop = drop;
    t.ndrop = 2;
    assert_int_equal(cm_task_run(&t), 0); /* drops only */
    assert_int_equal(t.noutputs, 0);
    assert_int_equal(t.bytes_read, 0);
    assert_int_equal(count_files(f->dir, "-TOC.txt"), 1);
    assert_int_equal(count_files(f->dir, "-txn.log"), 0);
    sstable *more[1] = {write_sst(f->dir, 4, pks, 1, r, 1, 0, 0)};
    t = task_for(f->dir, in, 1, NULL, 0, 11);
    t.drop = more;
    t.ndrop = 1;
    assert_int_equal(cm_task_run(&t), 0);
    assert_int_equal(t.noutputs, 1);
    assert_int_equal(t.bytes_read, sst_get_stats(in[0])->data_file_bytes); /* the drop was not read */
    assert_int_equal(count_files(f->dir, "-TOC.txt"), 1);
    assert_int_equal(count_files(f->dir, "11-TOC.txt"), 1);
    cm_task_free_outputs(&t);
    sst_unref(in[0]);
    sst_unref(drop[0]);
    sst_unref(drop[1]);
    sst_unref(more[0]);
}

/* A log of the format before several outputs (ADD first, one ADD) still
 * rolls back and forward. */
static void test_txn_old_format(void **state)
{
    fx *f = *state;
    const char *pks[] = {"a"};
    trow r[] = {{"r", 1, "v", 0}};
    for (int committed = 0; committed < 2; committed++) {
        char sub[600], path[700];
        snprintf(sub, sizeof sub, "%s/old%d", f->dir, committed);
        assert_int_equal(mkdir(sub, 0755), 0);
        for (uint64_t g = 1; g <= 3; g++) sst_unref(write_sst(sub, g, pks, 1, r, 1, 0, 0));
        snprintf(path, sizeof path, "%s/3-txn.log", sub);
        FILE *fp = fopen(path, "w");
        const char *lines[] = {"ADD 3", "REMOVE 1", "REMOVE 2", "COMMIT"};
        for (int i = 0; i < 3 + committed; i++)
            fprintf(fp, "%s %08x\n", lines[i], sib_crc32c(0, lines[i], strlen(lines[i])));
        fclose(fp);
        sib_err err;
        size_t n;
        assert_int_equal(cm_txn_recover(sub, NULL, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(count_files(sub, "-TOC.txt"), committed ? 1 : 2);
        assert_int_equal(count_files(sub, "3-TOC.txt"), committed ? 1 : 0);
    }
}

/* LCS's lone SSTable moving up (cm_task.relevel): the output is the input's
 * data linked under the output generation at the new level, nothing read
 * or written; the input's files go at the commit, the output still reads. */
static void test_task_relevel(void **state)
{
    fx *f = *state;
    const char *pks[] = {"a", "b", "c"};
    trow r[] = {{"r1", 5, "v1", 0}, {"r2", 6, NULL, GC_BEFORE - 50}};
    sstable *in[1] = {write_sst(f->dir, 1, pks, 3, r, 2, 0, 0)};
    char before[256], after[256];
    dump(in[0], "b", before, sizeof before);
    cm_task t = task_for(f->dir, in, 1, NULL, 0, 10);
    t.relevel = true;
    t.wo.level = 2;
    t.max_output_bytes = 1 << 20;
    assert_int_equal(cm_task_run(&t), 0);
    assert_int_equal(t.noutputs, 1);
    assert_int_equal(sst_gen(t.outputs[0]), 10);
    assert_int_equal(sst_get_stats(t.outputs[0])->level, 2);
    assert_int_equal(sst_get_stats(t.outputs[0])->partitions, 3);
    assert_int_equal(t.bytes_written, 0);
    assert_int_equal(t.bytes_read, 0);
    assert_int_equal(t.purged, 0); /* the tombstone past gc_grace stays: nothing is merged */
    dump(t.outputs[0], "b", after, sizeof after);
    assert_string_equal(before, after);
    assert_int_equal(count_files(f->dir, "-Data.db"), 1);
    assert_int_equal(count_files(f->dir, "-TOC.txt"), 1);
    assert_int_equal(count_files(f->dir, "-txn.log"), 0);
    assert_int_equal(count_files(f->dir, ".tmp"), 0);
    /* reopened from disk: the level is in its Statistics.db */
    sstable *re;
    sib_err err;
    assert_int_equal(sst_open(&re, f->dir, 10, &err), 0);
    assert_int_equal(sst_get_stats(re)->level, 2);
    dump(re, "b", after, sizeof after);
    assert_string_equal(before, after);
    sst_unref(re);
    cm_task_free_outputs(&t);
    sst_unref(in[0]);
}

/* A move of several SSTables (LCS's, up to four of one level): input i is
 * linked as out_gen + i at the new level, nothing read or written; with
 * fewer generations reserved than inputs it is refused, nothing changed. */
static void test_task_relevel_several(void **state)
{
    fx *f = *state;
    const char *a[] = {"a"}, *b[] = {"b"}, *c[] = {"c"};
    trow r[] = {{"r1", 5, "v1", 0}};
    sstable *in[3] = {write_sst(f->dir, 1, a, 1, r, 1, 0, 0), write_sst(f->dir, 2, b, 1, r, 1, 0, 0),
                      write_sst(f->dir, 3, c, 1, r, 1, 0, 0)};
    cm_task t = task_for(f->dir, in, 3, NULL, 0, 10);
    t.relevel = true;
    t.wo.level = 2;
    t.max_output_bytes = 1 << 20;
    t.ngens = 2;
    assert_int_equal(cm_task_run(&t), SIB_EINVAL);
    assert_int_equal(count_files(f->dir, "-TOC.txt"), 3);
    assert_int_equal(count_files(f->dir, "-txn.log"), 0);
    t = task_for(f->dir, in, 3, NULL, 0, 20);
    t.relevel = true;
    t.wo.level = 2;
    t.max_output_bytes = 1 << 20;
    t.ngens = 5;
    assert_int_equal(cm_task_run(&t), 0);
    assert_int_equal(t.noutputs, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(sst_gen(t.outputs[i]), 20 + i);
        assert_int_equal(sst_get_stats(t.outputs[i])->level, 2);
        assert_int_equal(sst_get_stats(t.outputs[i])->first_token, sst_get_stats(in[i])->first_token);
    }
    assert_int_equal(t.bytes_written, 0);
    assert_int_equal(t.partitions_in, 3);
    assert_int_equal(t.partitions_out, 3);
    assert_int_equal(count_files(f->dir, "-TOC.txt"), 3);
    assert_int_equal(count_files(f->dir, "-txn.log"), 0);
    cm_task_free_outputs(&t);
    for (size_t i = 0; i < 3; i++) sst_unref(in[i]);
}

/* sst_link_relevel checks the Statistics.db it copies: a damaged one is an
 * error that leaves no file of the new generation behind. */
static void test_link_relevel_damaged_stats(void **state)
{
    fx *f = *state;
    const char *pks[] = {"a"};
    trow r[] = {{"r1", 5, "v1", 0}};
    sst_unref(write_sst(f->dir, 1, pks, 1, r, 1, 0, 0));
    char path[600];
    snprintf(path, sizeof path, "%s/1-Statistics.db", f->dir);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, 40), 1);
    b ^= 0xff;
    assert_int_equal(pwrite(fd, &b, 1, 40), 1);
    close(fd);
    sib_err err;
    assert_int_equal(sst_link_relevel(f->dir, 1, 7, 3, &err), SIB_ECORRUPT);
    assert_non_null(strstr(err.msg, "1-Statistics.db"));
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) assert_false(!strncmp(e->d_name, "7-", 2));
    closedir(d);
    assert_int_equal(count_files(f->dir, "-TOC.txt"), 1);
}

#ifdef SIB_FAILPOINTS
/* The steps of a compaction a crash test kills it at, and whether its
 * outputs are the live generations after recovery. */
typedef struct crash_step {
    const char *point;
    bool committed;
} crash_step;
static const crash_step crash_steps[] = {
    {"compaction.after_txn_begin", false},
    {"compaction.after_output_1", false},
    {"compaction.after_output_2", false},
    {"compaction.after_output_4", false},
    {"compaction.after_outputs_before_txn_commit", false},
    {"compaction.after_commit_before_input_delete", true},
    {"compaction.after_input_delete_before_log_delete", true},
};

/* Runs t in a forked child that the failpoint `point` kills. */
static void run_killed_at(const char *point, cm_task t)
{
    char spec[160];
    snprintf(spec, sizeof spec, "%s=kill", point);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sib_err e;
        if (sib_failpoints_set(spec, &e)) _exit(2);
        cm_task_run(&t);
        _exit(3); /* the failpoint did not fire */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* Recovery as a restart does it: the one log rolled forward or back, no
 * tmp file or log left; the live generations in *gens (caller frees). */
static size_t recover_live(const char *dir, uint64_t **gens)
{
    sib_err err;
    size_t nlogs, n;
    uint64_t maxg;
    assert_int_equal(cm_txn_recover(dir, NULL, &nlogs, &err), 0);
    assert_int_equal(nlogs, 1);
    assert_int_equal(sst_dir_scan(dir, gens, &n, &maxg, NULL, &err), 0);
    assert_int_equal(count_files(dir, ".tmp"), 0);
    assert_int_equal(count_files(dir, "-txn.log"), 0);
    return n;
}

/* Kills a forked child at each step of a compaction with several outputs,
 * then recovers as a restart does: the live generations are exactly the
 * inputs (killed before the commit) or exactly the outputs (after it),
 * never a mix, and their content is the same either way. */
static void test_txn_crash_every_step(void **state)
{
    fx *f = *state;
    const crash_step *steps = crash_steps;
    for (size_t k = 0; k < SIB_ARRAY_LEN(crash_steps); k++) {
        char sub[600];
        snprintf(sub, sizeof sub, "%s/step%zu", f->dir, k);
        assert_int_equal(mkdir(sub, 0755), 0);
        sstable *in[3];
        write_split_inputs(sub, in);
        cm_task kt = task_for(sub, in, 3, NULL, 0, 10);
        kt.ngens = 8;
        kt.max_output_bytes = 1;
        run_killed_at(steps[k].point, kt);
        for (int i = 0; i < 3; i++) sst_unref(in[i]);
        sib_err err;
        uint64_t *gens;
        size_t n = recover_live(sub, &gens);
        if (steps[k].committed) {
            assert_int_equal(n, 5);
            for (size_t i = 0; i < n; i++) assert_int_equal(gens[i], 10 + i);
        } else {
            assert_int_equal(n, 3);
            for (size_t i = 0; i < n; i++) assert_int_equal(gens[i], 1 + i);
        }
        /* the same rows either way: merge what is live once more */
        sstable *live[8];
        for (size_t i = 0; i < n; i++) assert_int_equal(sst_open(&live[i], sub, gens[i], &err), 0);
        cm_task t = task_for(sub, live, n, NULL, 0, 30);
        assert_int_equal(cm_task_run(&t), 0);
        assert_int_equal(t.noutputs, 1);
        check_split_content(t.outputs, 1);
        cm_task_free_outputs(&t);
        for (size_t i = 0; i < n; i++) sst_unref(live[i]);
        free(gens);
    }
}

/* A relevel killed at each step, then recovered as a restart does: either
 * the input (killed before the commit) or the relevelled output is live,
 * never both, with the same rows. */
static void test_relevel_crash_every_step(void **state)
{
    fx *f = *state;
    const crash_step *steps = crash_steps;
    const char *pks[] = {"a", "b"};
    trow r[] = {{"r1", 5, "v1", 0}};
    for (size_t k = 0; k < SIB_ARRAY_LEN(crash_steps); k++) {
        if (!strcmp(steps[k].point, "compaction.after_output_2") || !strcmp(steps[k].point, "compaction.after_output_4"))
            continue; /* one output only */
        char sub[600], want[256], got[256];
        snprintf(sub, sizeof sub, "%s/step%zu", f->dir, k);
        assert_int_equal(mkdir(sub, 0755), 0);
        sstable *in[1] = {write_sst(sub, 1, pks, 2, r, 1, 0, 0)};
        dump(in[0], "a", want, sizeof want);
        cm_task kt = task_for(sub, in, 1, NULL, 0, 10);
        kt.relevel = true;
        kt.wo.level = 3;
        run_killed_at(steps[k].point, kt);
        sst_unref(in[0]);
        sib_err err;
        uint64_t *gens;
        assert_int_equal(recover_live(sub, &gens), 1);
        assert_int_equal(gens[0], steps[k].committed ? 10 : 1);
        assert_int_equal(count_files(sub, "-Data.db"), 1);
        sstable *live;
        assert_int_equal(sst_open(&live, sub, gens[0], &err), 0);
        assert_int_equal(sst_get_stats(live)->level, steps[k].committed ? 3 : 0);
        dump(live, "a", got, sizeof got);
        assert_string_equal(want, got);
        sst_unref(live);
        free(gens);
    }
}

/* An injected error at a step before the commit rolls back at once: inputs
 * intact, every output already written removed. */
static void test_task_error_rolls_back_all_outputs(void **state)
{
    fx *f = *state;
    sstable *in[3];
    write_split_inputs(f->dir, in);
    sib_err err;
    assert_int_equal(sib_failpoints_set("compaction.after_output_3=error", &err), 0);
    cm_task t = task_for(f->dir, in, 3, NULL, 0, 10);
    t.ngens = 8;
    t.max_output_bytes = 1;
    assert_int_equal(cm_task_run(&t), SIB_EIO);
    assert_non_null(strstr(t.err.msg, "compaction.after_output_3"));
    assert_int_equal(sib_failpoints_set(NULL, &err), 0);
    assert_int_equal(t.noutputs, 0);
    assert_int_equal(count_files(f->dir, "-TOC.txt"), 3);
    assert_int_equal(count_files(f->dir, "-Data.db"), 3);
    assert_int_equal(count_files(f->dir, "-txn.log"), 0);
    assert_int_equal(count_files(f->dir, ".tmp"), 0);
    for (int i = 0; i < 3; i++) sst_unref(in[i]);
}
#endif

/* ---- single-SSTable tombstone compaction ---- */

static void test_worth_dropping_tombstones(void **state)
{
    fx *f = *state;
    const char *pks[] = {"a", "b", "c", "d", "e", "f"};
    trow dels[] = {{"r1", 10, NULL, GC_BEFORE - 50}, {"r2", 10, NULL, GC_BEFORE - 50}};
    trow live[] = {{"r1", 10, "v", 0}};
    sstable *t = write_sst(f->dir, 1, pks, 6, dels, 2, 0, 0);
    cm_options o;
    cm_options_default(&o);
    cm_sst v[2] = {cm_sst_of(t, false), {.sst = NULL, .size = 10, .created_s = NOW}};
    v[0].size = 1000;
    v[0].created_s = NOW - 100;
    assert_false(cm_worth_dropping_tombstones(&o, v, 1, 0, NOW, GC_BEFORE)); /* younger than the interval */
    o.tombstone_compaction_interval = 10;
    assert_true(cm_worth_dropping_tombstones(&o, v, 1, 0, NOW, GC_BEFORE));
    assert_false(cm_worth_dropping_tombstones(&o, v, 1, 0, NOW, GC_BEFORE - 100)); /* not droppable yet */
    size_t pick[4];
    bool tomb;
    assert_int_equal(cm_pick(&o, v, 1, NOW, GC_BEFORE, pick, &tomb), 1);
    assert_true(tomb);
    /* an overlapping SSTable covering the whole range makes it not worth it */
    sstable *l = write_sst(f->dir, 2, pks, 6, live, 1, 0, 0);
    v[1] = cm_sst_of(l, false);
    v[1].created_s = NOW;
    assert_false(cm_worth_dropping_tombstones(&o, v, 2, 0, NOW, GC_BEFORE));
    o.unchecked_tombstone_compaction = true;
    assert_true(cm_worth_dropping_tombstones(&o, v, 2, 0, NOW, GC_BEFORE));
    o.enabled = false;
    assert_int_equal(cm_pick(&o, v, 2, NOW, GC_BEFORE, pick, &tomb), 0);
    /* four similar SSTables: a bucket compaction, not a tombstone one */
    o.enabled = true;
    cm_sst four[4] = {{.sst = l, .size = 100}, {.sst = l, .size = 110}, {.sst = l, .size = 120},
                      {.sst = l, .size = 90, .compacting = true}};
    o.min_sstable_size = 0;
    assert_int_equal(cm_pick(&o, four, 4, NOW, GC_BEFORE, pick, &tomb), 0); /* one is compacting */
    four[3].compacting = false;
    assert_int_equal(cm_pick(&o, four, 4, NOW, GC_BEFORE, pick, &tomb), 4);
    assert_false(tomb);
    sst_unref(t);
    sst_unref(l);
}


/* ---- LeveledCompactionStrategy: candidate selection ---- */

/* A synthetic SSTable: level, key range, size, age (max_ts). created_s =
 * NOW keeps the tombstone fallback away (younger than its interval). */
static cm_sst lsst(uint32_t level, int64_t first, int64_t last, uint64_t size, int64_t max_ts)
{
    return (cm_sst){.level = level, .first_token = first, .last_token = last, .size = size, .max_ts = max_ts,
                    .created_s = NOW};
}

static cm_options lcs_opts(void)
{
    cm_options o;
    cm_options_default(&o);
    bool other;
    sib_err err;
    const char *k[] = {"class"}, *v[] = {"LeveledCompactionStrategy"};
    assert_int_equal(cm_options_parse(&o, k, v, 1, &other, &err), 0);
    o.sstable_size = 100; /* bytes, to keep the numbers small */
    return o;
}

/* A strategy state and its options (LCS here, TWCS below). */
typedef struct lcs_fx {
    cm_options o;
    cm_strategy *st;
} lcs_fx;

static int strategy_setup(void **state, cm_options o)
{
    lcs_fx *x = calloc(1, sizeof *x);
    sib_err err;
    assert_non_null(x);
    x->o = o;
    assert_int_equal(cm_strategy_create(&x->st, &err), 0);
    *state = x;
    return 0;
}

static int lcs_setup(void **state) { return strategy_setup(state, lcs_opts()); }

static int lcs_teardown(void **state)
{
    lcs_fx *x = *state;
    cm_strategy_destroy(x->st);
    free(x);
    return 0;
}

static void lpick(lcs_fx *x, const cm_sst *v, size_t n, size_t *pick, cm_choice *ch)
{
    cm_strategy_pick(x->st, &x->o, v, n, NOW, GC_BEFORE, INT64_MAX, pick, ch);
}

static bool picked(const size_t *pick, size_t n, size_t i)
{
    for (size_t k = 0; k < n; k++)
        if (pick[k] == i) return true;
    return false;
}

static void test_lcs_options_and_sizes(void **state)
{
    cm_options o;
    cm_options_default(&o);
    bool other;
    sib_err err;
    const char *k1[] = {"class", "fanout_size", "sstable_size_in_mb", "min_threshold", "single_sstable_uplevel"};
    const char *v1[] = {"org.apache.cassandra.db.compaction.LeveledCompactionStrategy", "4", "2", "6", "true"};
    assert_int_equal(cm_options_parse(&o, k1, v1, 5, &other, &err), 0);
    assert_int_equal(o.kind, CM_LCS);
    assert_int_equal(o.fanout_size, 4);
    assert_int_equal(o.sstable_size, 2ull << 20);
    assert_int_equal(o.min_threshold, 6); /* STCS options feed STCS in L0 */
    assert_int_equal(cm_lcs_max_bytes(&o, 0), 8ull << 20);
    assert_int_equal(cm_lcs_max_bytes(&o, 1), 8ull << 20);
    assert_int_equal(cm_lcs_max_bytes(&o, 3), 128ull << 20);
    const char *k2[] = {"class", "fanout_size"}, *v2[] = {"LeveledCompactionStrategy", "0"};
    assert_int_equal(cm_options_parse(&o, k2, v2, 2, &other, &err), SIB_ECONFIG);
    assert_non_null(strstr(err.msg, "fanout_size"));
    assert_int_equal(o.fanout_size, 4); /* unchanged */
    const char *k3[] = {"class", "bogus"}, *v3[] = {"LeveledCompactionStrategy", "1"};
    assert_int_equal(cm_options_parse(&o, k3, v3, 2, &other, &err), SIB_ECONFIG);
    assert_non_null(strstr(err.msg, "not understood by LeveledCompactionStrategy"));
    const char *k4[] = {"class", "fanout_size"}, *v4[] = {"SizeTieredCompactionStrategy", "4"};
    assert_int_equal(cm_options_parse(&o, k4, v4, 2, &other, &err), SIB_ECONFIG);
    o = lcs_opts();
    assert_int_equal(cm_lcs_max_bytes(&o, 2), 10000);
    o.sstable_size = UINT64_MAX / 4;
    assert_int_equal(cm_lcs_max_bytes(&o, 8), UINT64_MAX); /* saturates */
}

static void test_lcs_levels_send_overlaps_to_l0(void **state)
{
    cm_sst v[5] = {lsst(1, 0, 10, 1, 1), lsst(1, 5, 20, 1, 1), lsst(1, 30, 40, 1, 1), lsst(2, 0, 100, 1, 1),
                   lsst(CM_MAX_LEVELS + 3, 0, 1, 1, 1)};
    uint32_t lvl[5];
    cm_lcs_levels(v, 5, lvl);
    assert_int_equal(lvl[0], 1);
    assert_int_equal(lvl[1], 0); /* overlaps [0, 10] in L1 */
    assert_int_equal(lvl[2], 1);
    assert_int_equal(lvl[3], 2);
    assert_int_equal(lvl[4], 0); /* no such level */
}

static void test_lcs_l0_candidates(void **state)
{
    lcs_fx *x = *state;
    size_t pick[16];
    cm_choice ch;
    /* one L0 SSTable: nothing (at least 2 are needed) */
    cm_sst one[1] = {lsst(0, 0, 100, 500, 1)};
    lpick(x, one, 1, pick, &ch);
    assert_int_equal(ch.n, 0);
    /* small L0 SSTables, less than sstable_size in all: every group of
     * overlapping ones joins (up to 32), and the output stays in L0 */
    cm_sst small[3] = {lsst(0, 0, 50, 30, 2), lsst(0, 40, 90, 30, 1), lsst(0, 200, 300, 30, 3)};
    lpick(x, small, 3, pick, &ch);
    assert_int_equal(ch.n, 3);
    assert_int_equal(ch.level, 0);
    assert_int_equal(ch.max_output_bytes, 100);
    /* larger: the L1 SSTables in the union range join, the output goes to L1;
     * L1's [60, 70] lies between the candidates and is pulled in too */
    cm_sst big[6] = {lsst(0, 0, 50, 80, 1), lsst(0, 45, 55, 80, 2), lsst(0, 80, 99, 80, 3),
                     lsst(1, 60, 70, 100, 0), lsst(1, 150, 160, 100, 0), lsst(0, 85, 90, 80, 4)};
    lpick(x, big, 6, pick, &ch);
    assert_int_equal(ch.n, 5);
    assert_true(picked(pick, 5, 0) && picked(pick, 5, 1) && picked(pick, 5, 2) && picked(pick, 5, 3) &&
                picked(pick, 5, 5));
    assert_int_equal(ch.level, 1);
    assert_int_equal(ch.min_input_level, 0);
    /* an L1 SSTable in range already compacting: no L0 compaction */
    big[3].compacting = true;
    lpick(x, big, 6, pick, &ch);
    assert_int_equal(ch.n, 0);
    big[3].compacting = false;
    /* an L0 group touching a running L0 compaction ([85, 90]) is skipped:
     * [80, 99] stays out, [0, 50] + [45, 55] go on to L1 */
    big[5].compacting = true;
    lpick(x, big, 6, pick, &ch);
    assert_int_equal(ch.n, 2);
    assert_true(picked(pick, 2, 0) && picked(pick, 2, 1));
    assert_int_equal(ch.level, 1);
}

static void test_lcs_l0_at_most_32_and_stcs_fallback(void **state)
{
    lcs_fx *x = *state;
    size_t pick[64];
    cm_choice ch;
    /* 40 overlapping L0 SSTables: the 32 oldest, with no L1 to join */
    cm_sst v[41];
    for (int i = 0; i < 40; i++) v[i] = lsst(0, 0, 1000, 10, 100 - i); /* i = 39 is the oldest */
    lpick(x, v, 40, pick, &ch);
    assert_int_equal(ch.n, 32);
    for (int i = 8; i < 40; i++) assert_true(picked(pick, 32, (size_t)i));
    assert_int_equal(ch.level, 1);
    /* L1 over its size makes higher levels first, but with more than 32 in L0
     * STCS in L0 comes before: similar sizes, output L0, unsplit */
    v[40] = lsst(1, 0, 1000, 5000, 0); /* 5000 > 10 x 100 */
    lpick(x, v, 41, pick, &ch);
    assert_int_equal(ch.n, 32);
    assert_int_equal(ch.level, 0);
    assert_int_equal(ch.max_output_bytes, 0);
    assert_false(picked(pick, 32, 40));
}

/* v[0..12): L1 as 12 SSTables of 100 bytes, [0, 50] ... [1100, 1150]
 * (1200 > 1000 bytes: over its score); v[12], v[13] as given. */
static void l1_over_score(cm_sst v[14], cm_sst a, cm_sst b)
{
    for (int i = 0; i < 12; i++) v[i] = lsst(1, i * 100, i * 100 + 50, 100, 1);
    v[12] = a;
    v[13] = b;
}

/* l0_compaction_trigger: parsed and checked as an LCS option, 1 by default
 * (Cassandra's rule: a lone L0 SSTable above sstable_size goes to L1 with
 * the L1 SSTables it overlaps); above 1, L0 waits for that many SSTables
 * not compacting before it merges into L1. */
static void test_lcs_l0_compaction_trigger(void **state)
{
    lcs_fx *x = *state;
    bool other;
    sib_err err;
    assert_int_equal(x->o.l0_compaction_trigger, 1);
    cm_options o = x->o;
    const char *k[] = {"class", "l0_compaction_trigger"};
    const char *v4[] = {"LeveledCompactionStrategy", "4"};
    assert_int_equal(cm_options_parse(&o, k, v4, 2, &other, &err), 0);
    assert_int_equal(o.l0_compaction_trigger, 4);
    static const char *const bad[] = {"0", "33", "2.5", "four", "-1", ""};
    for (size_t i = 0; i < SIB_ARRAY_LEN(bad); i++) {
        const char *vb[] = {"LeveledCompactionStrategy", bad[i]};
        assert_int_equal(cm_options_parse(&o, k, vb, 2, &other, &err), SIB_ECONFIG);
        assert_non_null(strstr(err.msg, "l0_compaction_trigger must be an integer from 1 to 32"));
        assert_int_equal(o.l0_compaction_trigger, 4); /* unchanged */
    }
    const char *vs[] = {"SizeTieredCompactionStrategy", "4"}; /* LCS's alone */
    assert_int_equal(cm_options_parse(&o, k, vs, 2, &other, &err), SIB_ECONFIG);
    assert_non_null(strstr(err.msg, "not understood by SizeTieredCompactionStrategy"));
    const char *kc[] = {"class"}, *vc[] = {"LeveledCompactionStrategy"}; /* left out: back to 1 */
    o.l0_compaction_trigger = 4;
    assert_int_equal(cm_options_parse(&o, kc, vc, 1, &other, &err), 0);
    assert_int_equal(o.l0_compaction_trigger, 1);

    size_t pick[16];
    cm_choice ch;
    /* L0 flushes over the whole range (each above sstable_size = 100) and
     * two L1 SSTables: v[0..4) L0, oldest first by index, v[4], v[5] L1 */
    cm_sst v[6] = {lsst(0, 0, 1000, 120, 1), lsst(0, 0, 1000, 120, 2), lsst(0, 0, 1000, 120, 3),
                   lsst(0, 0, 1000, 120, 4), lsst(1, 0, 400, 100, 0),    lsst(1, 500, 1000, 100, 0)};
    cm_sst one[3] = {v[0], v[4], v[5]};
    /* the default: one L0 SSTable is enough, with the L1 it overlaps */
    lpick(x, one, 3, pick, &ch);
    assert_int_equal(ch.n, 3);
    assert_int_equal(ch.level, 1);
    /* trigger 4: three L0 SSTables wait, the fourth starts the merge of
     * all four with L1 */
    x->o.l0_compaction_trigger = 4;
    lpick(x, one, 3, pick, &ch);
    assert_int_equal(ch.n, 0);
    cm_sst three[5] = {v[0], v[1], v[2], v[4], v[5]};
    lpick(x, three, 5, pick, &ch);
    assert_int_equal(ch.n, 0);
    lpick(x, v, 6, pick, &ch);
    assert_int_equal(ch.n, 6);
    assert_int_equal(ch.level, 1);
    assert_int_equal(ch.min_input_level, 0);
    /* one of the four compacting (in an earlier L0 merge): the other three
     * overlap it and are not candidates, so nothing */
    v[3].compacting = true;
    lpick(x, v, 6, pick, &ch);
    assert_int_equal(ch.n, 0);
    v[3].compacting = false;
    /* small L0 SSTables (below sstable_size together) wait as well, then
     * merge within L0 */
    cm_sst small[4] = {lsst(0, 0, 50, 10, 1), lsst(0, 40, 90, 10, 2), lsst(0, 0, 90, 10, 3), lsst(0, 5, 60, 10, 4)};
    lpick(x, small, 3, pick, &ch);
    assert_int_equal(ch.n, 0);
    lpick(x, small, 4, pick, &ch);
    assert_int_equal(ch.n, 4);
    assert_int_equal(ch.level, 0);
    /* L1 over its size still goes first: the trigger only holds L0 back */
    cm_sst over[14];
    l1_over_score(over, lsst(0, 0, 1000, 120, 5), lsst(2, 2000, 2100, 100, 0));
    lpick(x, over, 14, pick, &ch);
    assert_true(ch.n >= 1);
    assert_int_equal(ch.min_input_level, 1);
    assert_int_equal(ch.level, 2);
}

static void test_lcs_level_round_robin(void **state)
{
    lcs_fx *x = *state;
    size_t pick[16];
    cm_choice ch;
    /* L2 has [0, 25] and [250, 399] */
    cm_sst v[14];
    l1_over_score(v, lsst(2, 0, 25, 100, 1), lsst(2, 250, 399, 100, 1));
    lpick(x, v, 14, pick, &ch);
    assert_int_equal(ch.n, 2); /* the first of L1 and what it overlaps in L2 */
    assert_true(picked(pick, 2, 0) && picked(pick, 2, 12));
    assert_int_equal(ch.level, 2);
    assert_int_equal(ch.min_input_level, 1);
    /* the completion hook moves the round robin past the compacted keys */
    cm_strategy_compacted(x->st, &ch, true, 50);
    lpick(x, v, 14, pick, &ch);
    assert_int_equal(ch.n, 1);
    assert_int_equal(pick[0], 1); /* [100, 150] */
    cm_strategy_compacted(x->st, &ch, true, 150);
    /* (a move, but [200, 250] overlaps L2's [250, 399]: it stays) */
    v[2].compacting = true; /* [200, 250] busy: the next one, [300, 350] with L2's [250, 399] */
    lpick(x, v, 14, pick, &ch);
    assert_int_equal(ch.n, 2);
    assert_true(picked(pick, 2, 3) && picked(pick, 2, 13));
    v[13].compacting = true; /* its L2 partner busy: skipped for [400, 450] */
    lpick(x, v, 14, pick, &ch);
    /* which overlaps nothing in L2: a move, taking the next three along
     * (they overlap nothing either), four at most */
    assert_int_equal(ch.n, 4);
    for (size_t i = 0; i < 4; i++) assert_int_equal(pick[i], 4 + i);
    assert_int_equal(ch.level, 2);
    /* wrapping: past the last key of the level, back to the first */
    cm_strategy_compacted(x->st, &ch, true, 5000);
    v[13].compacting = v[2].compacting = false;
    lpick(x, v, 14, pick, &ch);
    assert_true(picked(pick, ch.n, 0));
    /* below its score, L1 is left alone and the lone L0 does nothing */
    cm_sst calm[3] = {lsst(1, 0, 10, 100, 1), lsst(1, 20, 30, 100, 1), lsst(0, 0, 30, 10, 2)};
    lpick(x, calm, 3, pick, &ch);
    assert_int_equal(ch.n, 0);
    x->o.enabled = false;
    lpick(x, v, 14, pick, &ch);
    assert_int_equal(ch.n, 0);
}

/* A move (an SSTable overlapping nothing in the next level) takes the
 * SSTables after it in key order along while each overlaps nothing there
 * either, is not compacting and no larger than 1.25 x sstable_size: four
 * at most, never wrapping round. */
static void test_lcs_move_takes_neighbours(void **state)
{
    lcs_fx *x = *state;
    size_t pick[16];
    cm_choice ch;
    /* L1: 12 x 100 bytes at [i*100, i*100+50], over its 1000; L2 empty
     * but for [820, 830] */
    cm_sst v[14];
    l1_over_score(v, lsst(2, 820, 830, 100, 1), lsst(2, 5000, 5010, 100, 1));
    lpick(x, v, 14, pick, &ch);
    assert_int_equal(ch.n, 4);
    for (size_t i = 0; i < 4; i++) assert_int_equal(pick[i], i);
    assert_int_equal(ch.level, 2);
    assert_int_equal(ch.min_input_level, 1);
    /* one compacting stops it: [0, 50] and [100, 150] */
    v[2].compacting = true;
    lpick(x, v, 14, pick, &ch);
    assert_int_equal(ch.n, 2);
    v[2].compacting = false;
    /* one too large to move stops it too; a first one too large goes alone */
    v[1].size = 126;
    lpick(x, v, 14, pick, &ch);
    assert_int_equal(ch.n, 1);
    assert_int_equal(pick[0], 0);
    v[1].size = 100;
    v[0].size = 126;
    lpick(x, v, 14, pick, &ch);
    assert_int_equal(ch.n, 1);
    assert_int_equal(pick[0], 0);
    v[0].size = 100;
    /* past [700, 750]: [800, 850] overlaps L2's [820, 830], so it is
     * merged with it, alone */
    cm_strategy_compacted(x->st, &ch, true, 750);
    lpick(x, v, 14, pick, &ch);
    assert_int_equal(ch.n, 2);
    assert_true(picked(pick, 2, 8) && picked(pick, 2, 12));
    /* then [900, 950]: its neighbours up to the end of the level only */
    cm_strategy_compacted(x->st, &ch, true, 850);
    lpick(x, v, 14, pick, &ch);
    assert_int_equal(ch.n, 3);
    for (size_t i = 0; i < 3; i++) assert_int_equal(pick[i], 9 + i);
}

/* An L0 merge that would leave L1 over its limit lets an L1 move go
 * first (the excess would go down right after it, rewritten by the merge
 * for nothing); only a move, never an L1 merge ahead of L0. */
static void test_lcs_move_before_l0_merge(void **state)
{
    lcs_fx *x = *state;
    size_t pick[32];
    cm_choice ch;
    /* L1: 8 x 100 bytes at [i*100, i*100+50] (its limit 1000), L0: two
     * flushes of 120 over every key, L2: [0, 360] */
    cm_sst v[11];
    for (int i = 0; i < 8; i++) v[i] = lsst(1, i * 100, i * 100 + 50, 100, 1);
    v[8] = lsst(0, 0, 1000, 120, 5);
    v[9] = lsst(0, 0, 1000, 120, 6);
    v[10] = lsst(2, 0, 360, 100, 0);
    /* 800 + 240 > 1000: [400, 450] (the first overlapping nothing in L2)
     * moves with the next three */
    lpick(x, v, 11, pick, &ch);
    assert_int_equal(ch.n, 4);
    for (size_t i = 0; i < 4; i++) assert_int_equal(pick[i], 4 + i);
    assert_int_equal(ch.level, 2);
    assert_int_equal(ch.min_input_level, 1);
    /* L2 over all of L1: no move, the L0 merge goes ahead */
    v[10] = lsst(2, 0, 2000, 100, 0);
    lpick(x, v, 11, pick, &ch);
    assert_int_equal(ch.n, 10);
    assert_int_equal(ch.level, 1);
    /* within the limit after the merge (one flush less): the merge */
    v[9] = lsst(2, 0, 360, 100, 0);
    lpick(x, v, 10, pick, &ch);
    assert_int_equal(ch.n, 9);
    assert_int_equal(ch.level, 1);
}

static void test_lcs_starved_level_drains(void **state)
{
    lcs_fx *x = *state;
    size_t pick[16];
    cm_choice ch;
    /* L2 has [0, 40]; L3 a small SSTable inside [0, 50], far below its own score */
    cm_sst v[14];
    l1_over_score(v, lsst(2, 0, 40, 100, 1), lsst(3, 10, 20, 5, 1));
    for (int round = 0; round < 25; round++) { /* a round per L1 -> L2 compaction; L3 is never the target */
        lpick(x, v, 14, pick, &ch);
        assert_true(picked(pick, ch.n, 0) && picked(pick, ch.n, 12)); /* no completion: the same one */
        assert_false(picked(pick, ch.n, 13));
        assert_int_equal(ch.level, 2);
    }
    lpick(x, v, 14, pick, &ch); /* the 26th round: more than 25, L3 starves; its SSTable lies inside [0, 50] */
    assert_int_equal(ch.n, 3);
    assert_true(picked(pick, 3, 0) && picked(pick, 3, 12) && picked(pick, 3, 13));
    assert_int_equal(ch.level, 2);
    /* a range too narrow for it never takes it */
    cm_sst w[14];
    memcpy(w, v, sizeof v);
    w[13] = lsst(3, 10, 60, 5, 1);
    lpick(x, w, 14, pick, &ch);
    assert_false(picked(pick, ch.n, 13));
}

static void test_strategy_major_and_stcs_dispatch(void **state)
{
    cm_options o = lcs_opts();
    cm_choice ch;
    cm_sst v[3] = {lsst(0, 0, 10, 30, 1), lsst(0, 5, 20, 30, 1), lsst(2, 30, 40, 300, 1)};
    cm_strategy_major(&o, v, 2, &ch);
    assert_int_equal(ch.n, 2);
    assert_int_equal(ch.level, 0); /* fits one L0 SSTable */
    cm_strategy_major(&o, v, 3, &ch);
    assert_int_equal(ch.level, 2);
    assert_int_equal(ch.max_output_bytes, 100);
    cm_options s;
    cm_options_default(&s);
    cm_strategy_major(&s, v, 3, &ch);
    assert_int_equal(ch.level, 0);
    assert_int_equal(ch.max_output_bytes, 0);
    /* STCS through the strategy: a bucket of four similar SSTables */
    cm_strategy *st;
    sib_err err;
    assert_int_equal(cm_strategy_create(&st, &err), 0);
    cm_sst four[4] = {lsst(0, 0, 1, 100, 1), lsst(0, 0, 1, 110, 1), lsst(0, 0, 1, 120, 1), lsst(0, 0, 1, 90, 1)};
    size_t pick[4];
    cm_strategy_pick(st, &s, four, 4, NOW, GC_BEFORE, INT64_MAX, pick, &ch);
    assert_int_equal(ch.n, 4);
    assert_int_equal(ch.level, 0);
    assert_false(ch.tombstone);
    cm_strategy_destroy(st);
}

/* ---- TimeWindowCompactionStrategy ---- */

#define HOUR_US (3600ll * 1000000)

static cm_options twcs_opts(const char *unit, const char *size)
{
    cm_options o;
    cm_options_default(&o);
    bool other;
    sib_err err;
    const char *k[] = {"class", "compaction_window_unit", "compaction_window_size"};
    const char *v[] = {"TimeWindowCompactionStrategy", unit, size};
    assert_int_equal(cm_options_parse(&o, k, v, 3, &other, &err), 0);
    assert_false(other);
    return o;
}

static int twcs_setup(void **state) { return strategy_setup(state, twcs_opts("HOURS", "1")); }

/* An SSTable whose newest write is at hour h (microseconds), expiring or not. */
static cm_sst tsst(int64_t h, uint64_t size, int32_t max_ldt)
{
    return (cm_sst){.size = size, .first_token = 0, .last_token = 100, .min_ts = h * HOUR_US - 1,
                    .max_ts = h * HOUR_US, .max_ldt = max_ldt, .created_s = NOW};
}

static void test_twcs_options_and_windows(void **state)
{
    cm_options o = twcs_opts("HOURS", "2");
    assert_int_equal(o.kind, CM_TWCS);
    assert_int_equal(o.window_unit_s, 3600);
    assert_int_equal(o.window_size, 2);
    assert_int_equal(o.ts_per_s, 1000000);
    assert_int_equal(o.expired_check_s, 600);
    assert_false(o.tombstone_explicit);
    assert_int_equal(cm_twcs_window(&o, 5 * HOUR_US + 7), 4 * 3600); /* [4h, 6h) */
    assert_int_equal(cm_twcs_window(&o, 4 * HOUR_US), 4 * 3600);
    assert_int_equal(cm_twcs_window(&o, -1), -2 * 3600);           /* before the epoch: floor */
    bool other;
    sib_err err;
    const char *k[] = {"class", "timestamp_resolution", "expired_sstable_check_frequency_seconds",
                       "tombstone_threshold", "min_threshold", "unsafe_aggressive_sstable_expiration"};
    const char *v[] = {"TimeWindowCompactionStrategy", "MILLISECONDS", "0", "0.3", "2", "false"};
    assert_int_equal(cm_options_parse(&o, k, v, 6, &other, &err), 0);
    assert_int_equal(o.ts_per_s, 1000);
    assert_int_equal(o.expired_check_s, 0);
    assert_true(o.tombstone_explicit);
    assert_int_equal(o.window_unit_s, 86400); /* a new map: DAYS again */
    assert_int_equal(cm_twcs_window(&o, 86400000ll * 3 + 5), 3 * 86400);
    const char *bad[][2] = {{"compaction_window_unit", "WEEKS"}, {"compaction_window_size", "0"},
                            {"timestamp_resolution", "JIFFIES"}, {"expired_sstable_check_frequency_seconds", "-1"},
                            {"unsafe_aggressive_sstable_expiration", "true"}, {"sstable_size_in_mb", "10"}};
    for (size_t i = 0; i < SIB_ARRAY_LEN(bad); i++) {
        const char *bk[] = {"class", bad[i][0]}, *bv[] = {"TimeWindowCompactionStrategy", bad[i][1]};
        assert_int_equal(cm_options_parse(&o, bk, bv, 2, &other, &err), SIB_ECONFIG);
        assert_non_null(strstr(err.msg, bad[i][0]));
    }
    assert_int_equal(o.ts_per_s, 1000); /* unchanged by the rejected maps */
}

/* An older window whose data all expire within a window length is not
 * merged: it is about to be dropped whole. Live data without a TTL, expiry
 * further off, or expiry long past (a blocked drop) merge it as usual. */
static void test_twcs_skips_windows_about_to_expire(void **state)
{
    lcs_fx *x = *state;
    size_t pick[16];
    cm_choice ch;
    int32_t soon = GC_BEFORE + 1800; /* droppable in half an hour: hour windows */
    cm_sst v[4] = {tsst(8, 300, soon), tsst(8, 100, soon - 10), tsst(8, 200, soon), tsst(10, 50, SST_NO_LDT)};
    cm_strategy_pick(x->st, &x->o, v, 4, NOW, GC_BEFORE, INT64_MAX, pick, &ch);
    assert_int_equal(ch.n, 0);
    assert_int_equal(ch.nexpired, 0);
    v[1].max_ldt = SST_NO_LDT; /* one holds data that never expires */
    cm_strategy_pick(x->st, &x->o, v, 4, NOW, GC_BEFORE, INT64_MAX, pick, &ch);
    assert_int_equal(ch.n, 3);
    v[1].max_ldt = GC_BEFORE + 4000; /* expires after more than a window */
    cm_strategy_pick(x->st, &x->o, v, 4, NOW, GC_BEFORE, INT64_MAX, pick, &ch);
    assert_int_equal(ch.n, 3);
    /* expired an hour ago and still here (an older live SSTable under them
     * blocks the drop): merged */
    cm_sst w[5] = {tsst(8, 300, GC_BEFORE - 3600), tsst(8, 100, GC_BEFORE - 3600), tsst(8, 200, GC_BEFORE - 3600),
                   tsst(10, 50, SST_NO_LDT), tsst(7, 50, SST_NO_LDT)};
    cm_strategy_pick(x->st, &x->o, w, 5, NOW, GC_BEFORE, INT64_MAX, pick, &ch);
    assert_int_equal(ch.nexpired, 0);
    assert_int_equal(ch.n, 3);
    assert_true(picked(pick, 3, 0) && picked(pick, 3, 1) && picked(pick, 3, 2));
}

static void test_fully_expired_rule(void **state)
{
    /* a: all expired by gc_before, newest write at 100; b: live, overlapping */
    cm_sst v[3] = {{.min_ts = 90, .max_ts = 100, .max_ldt = GC_BEFORE - 1, .first_token = 0, .last_token = 10},
                   {.min_ts = 50, .max_ts = 300, .max_ldt = SST_NO_LDT, .first_token = 5, .last_token = 20},
                   {.min_ts = 40, .max_ts = 60, .max_ldt = SST_NO_LDT, .first_token = 50, .last_token = 60}};
    bool cand[3] = {true, false, false}, exp[3];
    /* b holds older live data a's tombstones may shadow: a stays */
    assert_int_equal(cm_fully_expired(v, 3, cand, GC_BEFORE, INT64_MAX, exp), 0);
    v[1].min_ts = 200; /* b is newer than everything in a; c does not overlap */
    assert_int_equal(cm_fully_expired(v, 3, cand, GC_BEFORE, INT64_MAX, exp), 1);
    assert_true(exp[0] && !exp[1] && !exp[2]);
    assert_int_equal(cm_fully_expired(v, 3, cand, GC_BEFORE, 99, exp), 0); /* a memtable holds older data */
    assert_int_equal(cm_fully_expired(v, 3, cand, GC_BEFORE - 2, INT64_MAX, exp), 0); /* not gc-able yet */
    /* a candidate still live feeds the minimum whatever its range */
    bool all[3] = {true, true, true};
    assert_int_equal(cm_fully_expired(v, 3, all, GC_BEFORE, INT64_MAX, exp), 0); /* c's min_ts 40 < 100 */
    v[2].min_ts = 150;
    assert_int_equal(cm_fully_expired(v, 3, all, GC_BEFORE, INT64_MAX, exp), 1);
    assert_true(exp[0]);
}

static void test_twcs_pick(void **state)
{
    lcs_fx *x = *state;
    size_t pick[16];
    cm_choice ch;
    /* the current window (hour 10) has 2 (< min_threshold 4); hour 8 has 3:
     * all of them, smallest first; hour 9 a lone one */
    cm_sst v[8] = {tsst(10, 100, SST_NO_LDT), tsst(10, 100, SST_NO_LDT), tsst(8, 300, SST_NO_LDT),
                   tsst(8, 100, SST_NO_LDT), tsst(8, 200, SST_NO_LDT), tsst(9, 50, SST_NO_LDT)};
    cm_strategy_pick(x->st, &x->o, v, 6, NOW, GC_BEFORE, INT64_MAX, pick, &ch);
    assert_int_equal(ch.n, 3);
    assert_int_equal(ch.nexpired, 0);
    assert_int_equal(pick[0], 3);
    assert_int_equal(pick[1], 4);
    assert_int_equal(pick[2], 2);
    assert_int_equal(ch.level, 0);
    assert_int_equal(ch.max_output_bytes, 0);
    x->o.max_threshold = 2; /* trimmed to the smallest */
    cm_strategy_pick(x->st, &x->o, v, 6, NOW, GC_BEFORE, INT64_MAX, pick, &ch);
    assert_int_equal(ch.n, 2);
    assert_true(picked(pick, 2, 3) && picked(pick, 2, 4));
    x->o.max_threshold = 32;
    /* four similar ones in the current window: STCS there first */
    v[6] = tsst(10, 110, SST_NO_LDT);
    v[7] = tsst(10, 90, SST_NO_LDT);
    cm_strategy_pick(x->st, &x->o, v, 8, NOW, GC_BEFORE, INT64_MAX, pick, &ch);
    assert_int_equal(ch.n, 4);
    assert_true(picked(pick, 4, 0) && picked(pick, 4, 1) && picked(pick, 4, 6) && picked(pick, 4, 7));
    /* a newer window seen makes hour 10 an old window: all of it, into one */
    cm_sst newer = tsst(11, 10, SST_NO_LDT);
    cm_sst w[9];
    memcpy(w, v, sizeof v);
    w[8] = newer;
    cm_strategy_pick(x->st, &x->o, w, 9, NOW, GC_BEFORE, INT64_MAX, pick, &ch);
    assert_int_equal(ch.n, 4); /* hour 11 has one; hour 10 (old now) has four */
}

static void test_twcs_expired_dropped_on_the_tick(void **state)
{
    lcs_fx *x = *state;
    size_t pick[8];
    cm_choice ch;
    /* hours 1 and 2 fully expired; hour 5 live and newer than both */
    cm_sst v[3] = {tsst(1, 100, GC_BEFORE - 10), tsst(2, 100, GC_BEFORE - 10), tsst(5, 100, SST_NO_LDT)};
    cm_strategy_pick(x->st, &x->o, v, 3, NOW, GC_BEFORE, INT64_MAX, pick, &ch);
    assert_int_equal(ch.n, 0); /* nothing to merge... */
    assert_int_equal(ch.nexpired, 2); /* ...two to drop whole */
    assert_true(picked(pick, 2, 0) && picked(pick, 2, 1));
    /* within expired_sstable_check_frequency_seconds: not looked for again */
    cm_strategy_pick(x->st, &x->o, v, 3, NOW + 599, GC_BEFORE, INT64_MAX, pick, &ch);
    assert_int_equal(ch.nexpired, 0);
    assert_int_equal(ch.n, 0); /* hours 1 and 2 are one SSTable each: nothing */
    /* the next tick: a memtable holding data older than hour 2 blocks hour 2 */
    cm_strategy_pick(x->st, &x->o, v, 3, NOW + 600, GC_BEFORE, 2 * HOUR_US - 5, pick, &ch);
    assert_int_equal(ch.nexpired, 1);
    assert_int_equal(pick[ch.n], 0);
    /* a compacting SSTable is never dropped */
    v[0].compacting = true;
    cm_strategy_pick(x->st, &x->o, v, 3, NOW + 1200, GC_BEFORE, INT64_MAX, pick, &ch);
    assert_int_equal(ch.nexpired, 1);
    assert_int_equal(pick[ch.n], 1);
    /* tombstone compactions only when their options were given */
    assert_false(x->o.tombstone_explicit);
}

/* ---- UCS ---- */

static cm_options ucs_opts(const char *scaling)
{
    cm_options o;
    cm_options_default(&o);
    bool other;
    sib_err err;
    const char *k[] = {"class", "scaling_parameters", "flush_size_override", "min_sstable_size",
                       "target_sstable_size"};
    const char *v[] = {"UnifiedCompactionStrategy", scaling, "1MiB", "0", "1MiB"};
    assert_int_equal(cm_options_parse(&o, k, v, 5, &other, &err), 0);
    assert_false(other);
    return o;
}

static int ucs_setup(void **state) { return strategy_setup(state, ucs_opts("T4")); }

enum { MB = 1 << 20 };
/* An SSTable over [first, last] of size mb MiB, newest write at ts. */
static cm_sst usst(int64_t first, int64_t last, uint64_t mb, int64_t ts)
{
    return (cm_sst){.first_token = first, .last_token = last, .size = mb * MB, .min_ts = ts, .max_ts = ts,
                    .max_ldt = SST_NO_LDT, .created_s = NOW};
}
#define WHOLE INT64_MIN, INT64_MAX

static int ucs_parse(cm_options *o, const char *key, const char *val, sib_err *err)
{
    bool other;
    const char *k[] = {"class", key}, *v[] = {"UnifiedCompactionStrategy", val};
    return cm_options_parse(o, k, v, 2, &other, err);
}

static void test_ucs_options(void **state)
{
    (void)state;
    cm_options o;
    cm_options_default(&o);
    sib_err err;
    bool other;
    const char *k[] = {"class"}, *v[] = {"org.apache.cassandra.db.compaction.UnifiedCompactionStrategy"};
    assert_int_equal(cm_options_parse(&o, k, v, 1, &other, &err), 0);
    assert_false(other); /* built, not run as STCS */
    assert_int_equal(o.kind, CM_UCS);
    assert_int_equal(o.ucs_nw, 1);
    assert_int_equal(o.ucs_w[0], 2); /* T4 */
    assert_int_equal(o.target_sstable_size, 1ull << 30);
    assert_int_equal(o.base_shard_count, 4);
    assert_int_equal(o.ucs_min_sstable_size, 100ull << 20);
    assert_true(o.sstable_growth == 0.333);
    assert_int_equal(o.expired_check_s, 600);
    assert_int_equal(o.max_sstables_to_compact, 0);
    /* scaling parameters: Tf, Lf, N, W, a list per level, either case */
    assert_int_equal(ucs_parse(&o, "scaling_parameters", "L10, T4", &err), 0);
    assert_int_equal(o.ucs_nw, 2);
    assert_int_equal(o.ucs_w[0], -8);
    assert_int_equal(o.ucs_w[1], 2);
    assert_int_equal(ucs_parse(&o, "scaling_parameters", "N", &err), 0);
    assert_int_equal(o.ucs_w[0], 0);
    assert_int_equal(ucs_parse(&o, "scaling_parameters", "t8,l2,-3", &err), 0);
    assert_int_equal(o.ucs_nw, 3);
    assert_true(o.ucs_w[0] == 6 && o.ucs_w[1] == 0 && o.ucs_w[2] == -3);
    const char *bad_w[] = {"X4", "L1", "T", "", "L10,,T4", "T4 x", "T99999999999", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"};
    for (size_t i = 0; i < SIB_ARRAY_LEN(bad_w); i++) {
        assert_int_equal(ucs_parse(&o, "scaling_parameters", bad_w[i], &err), SIB_ECONFIG);
        assert_non_null(strstr(err.msg, "scaling_parameters"));
    }
    assert_int_equal(o.ucs_w[0], 6); /* untouched by the failures */
    /* sizes */
    assert_int_equal(ucs_parse(&o, "target_sstable_size", "200MiB", &err), 0);
    assert_int_equal(o.target_sstable_size, 200ull << 20);
    /* the default min_sstable_size (100 MiB) is not under 100 MiB x sqrt(0.5) */
    assert_int_equal(ucs_parse(&o, "target_sstable_size", "100MiB", &err), SIB_ECONFIG);
    assert_int_equal(ucs_parse(&o, "target_sstable_size", "2GB", &err), 0);
    assert_int_equal(o.target_sstable_size, 2000000000ull);
    assert_int_equal(ucs_parse(&o, "target_sstable_size", "536870912", &err), 0);
    assert_int_equal(o.target_sstable_size, 512ull << 20);
    assert_int_equal(ucs_parse(&o, "target_sstable_size", "512KiB", &err), SIB_ECONFIG); /* under 1 MiB */
    assert_int_equal(ucs_parse(&o, "target_sstable_size", "12 parsecs", &err), SIB_ECONFIG);
    assert_int_equal(ucs_parse(&o, "target_sstable_size", "-1MiB", &err), SIB_ECONFIG);
    /* min_sstable_size must stay under target x sqrt(0.5) (default target 1 GiB) */
    assert_int_equal(ucs_parse(&o, "min_sstable_size", "700MiB", &err), 0);
    assert_int_equal(ucs_parse(&o, "min_sstable_size", "800MiB", &err), SIB_ECONFIG);
    assert_non_null(strstr(err.msg, "min_sstable_size"));
    assert_int_equal(ucs_parse(&o, "min_sstable_size", "0", &err), 0);
    assert_int_equal(o.ucs_min_sstable_size, 0);
    assert_int_equal(ucs_parse(&o, "base_shard_count", "0", &err), SIB_ECONFIG);
    assert_int_equal(ucs_parse(&o, "base_shard_count", "2.5", &err), SIB_ECONFIG);
    assert_int_equal(ucs_parse(&o, "base_shard_count", "8", &err), 0);
    assert_int_equal(o.base_shard_count, 8);
    assert_int_equal(ucs_parse(&o, "sstable_growth", "1.5", &err), SIB_ECONFIG);
    assert_int_equal(ucs_parse(&o, "sstable_growth", "1", &err), 0);
    assert_int_equal(ucs_parse(&o, "max_sstables_to_compact", "-1", &err), 0);
    assert_int_equal(o.max_sstables_to_compact, 0); /* <= 0: no limit */
    assert_int_equal(ucs_parse(&o, "expired_sstable_check_frequency_seconds", "-5", &err), SIB_ECONFIG);
    assert_int_equal(ucs_parse(&o, "overlap_inclusion_method", "TRANSITIVE", &err), 0);
    assert_int_equal(ucs_parse(&o, "overlap_inclusion_method", "NONE", &err), SIB_ECONFIG);
    /* keys of other classes are not understood by UCS, nor UCS's by them */
    assert_int_equal(ucs_parse(&o, "sstable_size_in_mb", "160", &err), SIB_ECONFIG);
    assert_non_null(strstr(err.msg, "not understood by UnifiedCompactionStrategy"));
    assert_int_equal(ucs_parse(&o, "bogus", "1", &err), SIB_ECONFIG);
    const char *k2[] = {"class", "scaling_parameters"}, *v2[] = {"SizeTieredCompactionStrategy", "T4"};
    assert_int_equal(cm_options_parse(&o, k2, v2, 2, &other, &err), SIB_ECONFIG);
    /* under STCS min_sstable_size keeps its STCS meaning */
    const char *k3[] = {"class", "min_sstable_size"}, *v3[] = {"SizeTieredCompactionStrategy", "1000"};
    assert_int_equal(cm_options_parse(&o, k3, v3, 2, &other, &err), 0);
    assert_int_equal(o.min_sstable_size, 1000);
}

static void test_ucs_levels_and_shards(void **state)
{
    (void)state;
    uint32_t f, t;
    cm_ucs_fan(2, &f, &t);
    assert_true(f == 4 && t == 4);
    cm_ucs_fan(-8, &f, &t);
    assert_true(f == 10 && t == 2);
    cm_ucs_fan(0, &f, &t);
    assert_true(f == 2 && t == 2);
    /* density: size over the share of the token space */
    assert_true(cm_ucs_density(100, WHOLE) == 100.0);
    assert_true(cm_ucs_density(100, 0, INT64_MAX) > 199.0 && cm_ucs_density(100, 0, INT64_MAX) < 201.0);
    assert_true(cm_ucs_density(100, 5, 5) == 100.0); /* one token: no density estimate */
    cm_options o = ucs_opts("T4");
    double m = MB;
    /* level 0 ends at m (1 - 0.9/f0) f0 (Cassandra's base size times f0):
     * 3.1 MiB for T4, then each level f times the one below */
    assert_int_equal(cm_ucs_level(&o, m, 0.5 * MB), 0);
    assert_int_equal(cm_ucs_level(&o, m, 3.0 * MB), 0); /* three whole flushes stay */
    assert_int_equal(cm_ucs_level(&o, m, 3.09 * MB), 0);
    assert_int_equal(cm_ucs_level(&o, m, 3.1 * MB), 1);
    assert_int_equal(cm_ucs_level(&o, m, 3.6 * MB), 1); /* four flushes of 0.9 m (m rounded up) move up */
    assert_int_equal(cm_ucs_level(&o, m, 12.39 * MB), 1);
    assert_int_equal(cm_ucs_level(&o, m, 12.4 * MB), 2);
    assert_int_equal(cm_ucs_level(&o, m, 1e30), CM_UCS_LEVELS - 1);
    o = ucs_opts("L10, T4"); /* f0 = 10, then 4 */
    assert_int_equal(cm_ucs_level(&o, m, 9.0 * MB), 0);
    assert_int_equal(cm_ucs_level(&o, m, 9.09 * MB), 0);
    assert_int_equal(cm_ucs_level(&o, m, 9.1 * MB), 1);
    assert_int_equal(cm_ucs_level(&o, m, 36.39 * MB), 1);
    assert_int_equal(cm_ucs_level(&o, m, 36.4 * MB), 2);
    /* base m: override, else the flush size, else the least density; >= 1 MiB, whole MiB */
    cm_strategy *st;
    sib_err err;
    assert_int_equal(cm_strategy_create(&st, &err), 0);
    cm_sst v[2] = {usst(WHOLE, 5, 1), usst(WHOLE, 3, 2)};
    assert_true(cm_ucs_base(st, &o, v, 2) == MB); /* the override */
    o.flush_size_override = 0;
    assert_true(cm_ucs_base(st, &o, v, 2) == 3.0 * MB);
    cm_strategy_flushed(st, (uint64_t)(7.5 * MB));
    assert_true(cm_ucs_base(st, &o, v, 2) == 8.0 * MB);
    cm_strategy_flushed(st, 8 * MB); /* within half of it: m stays */
    assert_true(cm_ucs_base(st, &o, v, 2) == 8.0 * MB);
    /* m follows the moving average of the flushes, not the last one: a lone
     * 20 MiB flush, or a lone tiny one, leaves it where it is */
    cm_strategy_flushed(st, 20 * MB);
    assert_true(cm_ucs_base(st, &o, v, 2) == 8.0 * MB);
    cm_strategy_flushed(st, 100 * 1024);
    assert_true(cm_ucs_base(st, &o, v, 2) == 8.0 * MB);
    /* flushes of 20 MiB from now on: the average passes 16 MiB (half
     * again over 8) after about 250 of them, and m moves to it */
    int k = 0;
    while (cm_ucs_base(st, &o, v, 2) == 8.0 * MB && k < 1000) cm_strategy_flushed(st, 20 * MB), k++;
    assert_true(k > 200 && k < 300);
    assert_true(cm_ucs_base(st, &o, v, 2) == 17.0 * MB); /* the average then, rounded up to whole MiB */
    cm_strategy_destroy(st);
    /* shard counts: the design doc's example, t = 100 MiB, b = 4, no minimum */
    o.target_sstable_size = 100ull * MB;
    o.base_shard_count = 4;
    o.ucs_min_sstable_size = 0;
    o.sstable_growth = 0;
    assert_int_equal(cm_ucs_shards(&o, 200.0 * MB), 4);
    assert_int_equal(cm_ucs_shards(&o, 1200.0 * MB), 16);
    assert_int_equal(cm_ucs_shards(&o, 1e12 * MB), 4u << 20); /* capped */
    o.sstable_growth = 1; /* fixed shard count */
    assert_int_equal(cm_ucs_shards(&o, 1200.0 * MB), 4);
    o.sstable_growth = 0.5;
    assert_int_equal(cm_ucs_shards(&o, 6400.0 * MB), 16); /* 2^round(0.5 * log2(16)) = 4 */
    o.ucs_min_sstable_size = 100ull * MB; /* below m x b: fewer shards, a power of 2 dividing b */
    assert_int_equal(cm_ucs_shards(&o, 50.0 * MB), 1);
    assert_int_equal(cm_ucs_shards(&o, 250.0 * MB), 2);
    o.base_shard_count = 6;
    assert_int_equal(cm_ucs_shards(&o, 500.0 * MB), 2);
    /* shard of a token: equal parts; the boundaries of S are boundaries of 2S */
    assert_int_equal(cm_ucs_shard_of(INT64_MIN, 4), 0);
    assert_int_equal(cm_ucs_shard_of(-1, 4), 1);
    assert_int_equal(cm_ucs_shard_of(0, 4), 2);
    assert_int_equal(cm_ucs_shard_of(INT64_MAX, 4), 3);
    assert_int_equal(cm_ucs_shard_of(12345, 1), 0);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 10000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int64_t tok = (int64_t)x;
        assert_int_equal(cm_ucs_shard_of(tok, 8) / 2, cm_ucs_shard_of(tok, 4));
        assert_int_equal(cm_ucs_shard_of(tok, 24) / 2, cm_ucs_shard_of(tok, 12));
    }
}

static void test_ucs_tiered_pick(void **state)
{
    lcs_fx *x = *state;
    size_t pick[16];
    cm_choice ch;
    /* three flushes over the whole space: below T4's threshold */
    cm_sst v[8] = {usst(WHOLE, 1, 10), usst(WHOLE, 1, 20), usst(WHOLE, 1, 30)};
    lpick(x, v, 3, pick, &ch);
    assert_int_equal(ch.n + ch.nexpired, 0);
    /* a fourth: all four, split for their density (4 MiB = t x b: 4 shards) */
    v[3] = usst(WHOLE, 1, 40);
    lpick(x, v, 4, pick, &ch);
    assert_int_equal(ch.n, 4);
    for (size_t i = 0; i < 4; i++) assert_true(picked(pick, 4, i));
    assert_int_equal(ch.shards, 4);
    assert_int_equal(ch.level, 0);
    assert_int_equal(ch.max_output_bytes, 0);
    /* a denser SSTable (level 1) is left to its own level */
    v[4] = usst(WHOLE, 8, 5);
    lpick(x, v, 5, pick, &ch);
    assert_int_equal(ch.n, 4);
    assert_false(picked(pick, 4, 4));
    /* four level-0 SSTables that never overlap: reads touch one each, nothing to do */
    int64_t q = INT64_MAX / 2;
    cm_sst d[4] = {usst(INT64_MIN, -q - 1, 1, 1), usst(-q, -1, 1, 2), usst(0, q, 1, 3), usst(q + 1, INT64_MAX, 1, 4)};
    for (int i = 0; i < 4; i++) d[i].size = MB / 4; /* density 1 MiB: level 0 */
    lpick(x, d, 4, pick, &ch);
    assert_int_equal(ch.n, 0);
}

/* The design doc's example: A 0-3, B 2-7, C 6-9, D 1-8 give the overlap sets
 * ABD and BCD; a threshold of 3 fires, extended transitively to all four;
 * a threshold of 4 does not. */
static void test_ucs_overlap_sets(void **state)
{
    lcs_fx *x = *state;
    const int64_t u = INT64_MAX / 10;
    cm_sst v[4] = {usst(0, 3 * u, 1, 1), usst(2 * u, 7 * u, 1, 2), usst(6 * u, 9 * u, 1, 3), usst(u, 8 * u, 1, 4)};
    for (int i = 0; i < 4; i++) v[i].size = MB / 8; /* level 0 */
    size_t pick[8];
    cm_choice ch;
    lpick(x, v, 4, pick, &ch); /* T4 */
    assert_int_equal(ch.n, 0);
    x->o = ucs_opts("T3");
    lpick(x, v, 4, pick, &ch);
    assert_int_equal(ch.n, 4);
    uint32_t lvl[4];
    size_t ov[CM_UCS_LEVELS];
    cm_ucs_levels(x->st, &x->o, v, 4, lvl, ov);
    assert_true(lvl[0] == 0 && lvl[1] == 0 && lvl[2] == 0 && lvl[3] == 0);
    assert_int_equal(ov[0], 3); /* ABD, BCD */
    assert_int_equal(ov[1], 0);
    /* with A compacting, BCD is the only set of three */
    v[0].compacting = true;
    lpick(x, v, 4, pick, &ch);
    assert_int_equal(ch.n, 3);
    assert_false(picked(pick, 3, 0));
    /* C apart from A and B (no chain to it): a set {A, B} of two, alone under N */
    x->o = ucs_opts("N");
    cm_sst w[3] = {usst(0, 3 * u, 1, 1), usst(2 * u, 4 * u, 1, 2), usst(6 * u, 9 * u, 1, 3)};
    for (int i = 0; i < 3; i++) w[i].size = MB / 16; /* level 0 under N: below 1.1 MiB */
    lpick(x, w, 3, pick, &ch);
    assert_int_equal(ch.n, 2);
    assert_true(picked(pick, 2, 0) && picked(pick, 2, 1));
}

/* Buckets in disjoint shards are picked one after the other while the
 * earlier ones run; the largest overlap goes first. */
static void test_ucs_parallel_shards(void **state)
{
    lcs_fx *x = *state;
    x->o = ucs_opts("N");
    const int64_t q = INT64_MAX / 2;
    /* shard 1 [-q, -1]: two overlapping; shard 2 [0, q]: three overlapping */
    cm_sst v[5] = {usst(-q, -q / 2, 1, 1), usst(-q / 2 - 5, -1, 1, 2), usst(0, q / 2, 1, 3), usst(5, q, 1, 4),
                   usst(q / 4, q / 3, 1, 5)};
    for (int i = 0; i < 5; i++) v[i].size = MB / 64; /* level 0 under N: below 1.1 MiB */
    size_t pick[8];
    cm_choice ch;
    lpick(x, v, 5, pick, &ch);
    assert_int_equal(ch.n, 3); /* the overlap of three first */
    assert_true(picked(pick, 3, 2) && picked(pick, 3, 3) && picked(pick, 3, 4));
    for (int i = 2; i < 5; i++) v[i].compacting = true;
    lpick(x, v, 5, pick, &ch);
    assert_int_equal(ch.n, 2); /* the other shard, meanwhile */
    assert_true(picked(pick, 2, 0) && picked(pick, 2, 1));
    v[0].compacting = v[1].compacting = true;
    lpick(x, v, 5, pick, &ch);
    assert_int_equal(ch.n, 0);
}

/* ALTER TABLE between T4, L10 and N: the same SSTables, the next pick
 * follows the new options; the limit keeps the oldest. */
static void test_ucs_switch_and_limit(void **state)
{
    lcs_fx *x = *state;
    cm_sst v[6];
    for (int i = 0; i < 6; i++) v[i] = usst(WHOLE, 1, 60 - i); /* the last is the oldest */
    size_t pick[8];
    cm_choice ch;
    lpick(x, v, 2, pick, &ch);
    assert_int_equal(ch.n, 0); /* T4: two are not enough */
    x->o = ucs_opts("L10");
    lpick(x, v, 2, pick, &ch);
    assert_int_equal(ch.n, 2); /* levelled: the second overlapping SSTable fires */
    x->o = ucs_opts("N");
    lpick(x, v, 2, pick, &ch);
    assert_int_equal(ch.n, 2);
    x->o = ucs_opts("T4");
    lpick(x, v, 2, pick, &ch);
    assert_int_equal(ch.n, 0);
    x->o.max_sstables_to_compact = 4;
    lpick(x, v, 6, pick, &ch);
    assert_int_equal(ch.n, 4);
    for (size_t i = 2; i < 6; i++) assert_true(picked(pick, 4, i));
    /* L10 over the levels: level 0 ends below 10 MiB, so a 12 MiB SSTable
     * is not merged with flushes */
    x->o = ucs_opts("L10");
    cm_sst w[3] = {usst(WHOLE, 1, 1), usst(WHOLE, 12, 2), usst(WHOLE, 1, 3)};
    lpick(x, w, 3, pick, &ch);
    assert_int_equal(ch.n, 2);
    assert_false(picked(pick, 2, 1));
    /* 'T4, L10': level 0 (below 3.1 MiB) is tiered, level 1 (to 31 MiB)
     * levelled. Three flushes wait; two overlapping level-1 SSTables fire;
     * a fourth flush fires level 0 alone, with nothing of level 1 */
    x->o = ucs_opts("T4, L10");
    cm_sst h[6] = {usst(WHOLE, 1, 10), usst(WHOLE, 1, 11), usst(WHOLE, 1, 12)};
    lpick(x, h, 3, pick, &ch);
    assert_int_equal(ch.n, 0);
    h[3] = usst(WHOLE, 4, 5);
    lpick(x, h, 4, pick, &ch);
    assert_int_equal(ch.n, 0); /* one level-1 SSTable: nothing to merge it with */
    h[4] = usst(WHOLE, 6, 6);
    lpick(x, h, 5, pick, &ch);
    assert_int_equal(ch.n, 2);
    assert_true(picked(pick, 2, 3) && picked(pick, 2, 4));
    h[4] = usst(WHOLE, 1, 13);
    lpick(x, h, 5, pick, &ch);
    assert_int_equal(ch.n, 4);
    assert_false(picked(pick, 4, 3));
}

/* Fully expired SSTables join the choice, on the expiry tick. */
static void test_ucs_expired(void **state)
{
    lcs_fx *x = *state;
    cm_sst v[2] = {usst(WHOLE, 1, 10), usst(WHOLE, 1, 20)};
    v[0].max_ldt = GC_BEFORE - 10; /* every cell gc-able, older than anything live */
    size_t pick[4];
    cm_choice ch;
    lpick(x, v, 2, pick, &ch);
    assert_int_equal(ch.n, 0);
    assert_int_equal(ch.nexpired, 1);
    assert_int_equal(pick[0], 0);
    lpick(x, v, 2, pick, &ch); /* not again before expired_sstable_check_frequency_seconds */
    assert_int_equal(ch.nexpired, 0);
}

/* A task given shards ends an output wherever the next partition lies in
 * another shard: every output inside one shard, in token order. */
static void test_task_shard_outputs(void **state)
{
    fx *f = *state;
    sstable *in[3];
    write_split_inputs(f->dir, in);
    cm_task t = task_for(f->dir, in, 3, NULL, 0, 10);
    t.ngens = 9;
    t.shards = 8;
    assert_int_equal(cm_task_run(&t), 0);
    bool seen[8] = {false};
    size_t distinct = 0;
    for (size_t i = 0; i < t.noutputs; i++) {
        const sst_stats *s = sst_get_stats(t.outputs[i]);
        uint32_t sh = cm_ucs_shard_of(s->first_token, 8);
        assert_int_equal(sh, cm_ucs_shard_of(s->last_token, 8));
        assert_false(seen[sh]);
        seen[sh] = true;
        if (i) assert_true(sst_get_stats(t.outputs[i - 1])->last_token < s->first_token);
    }
    for (int i = 0; i < 8; i++) distinct += seen[i];
    assert_int_equal(distinct, t.noutputs);
    assert_true(t.noutputs >= 2); /* five keys over eight shards */
    check_split_content(t.outputs, t.noutputs);
    cm_task_free_outputs(&t);
    for (int i = 0; i < 3; i++) sst_unref(in[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_stcs_buckets),
        cmocka_unit_test(test_lww_rules),
        cmocka_unit_test(test_shadowing),
        cmocka_unit_test(test_purge_rules),
        cmocka_unit_test_setup_teardown(test_task_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_purge_overlap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_recover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_split_outputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_txn_old_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_drops_unread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_relevel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_relevel_several, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_relevel_damaged_stats, setup, teardown),
#ifdef SIB_FAILPOINTS
        cmocka_unit_test_setup_teardown(test_txn_crash_every_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relevel_crash_every_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_error_rolls_back_all_outputs, setup, teardown),
#endif
        cmocka_unit_test_setup_teardown(test_worth_dropping_tombstones, setup, teardown),
        cmocka_unit_test(test_lcs_options_and_sizes),
        cmocka_unit_test(test_lcs_levels_send_overlaps_to_l0),
        cmocka_unit_test_setup_teardown(test_lcs_l0_candidates, lcs_setup, lcs_teardown),
        cmocka_unit_test_setup_teardown(test_lcs_l0_at_most_32_and_stcs_fallback, lcs_setup, lcs_teardown),
        cmocka_unit_test_setup_teardown(test_lcs_l0_compaction_trigger, lcs_setup, lcs_teardown),
        cmocka_unit_test_setup_teardown(test_lcs_level_round_robin, lcs_setup, lcs_teardown),
        cmocka_unit_test_setup_teardown(test_lcs_move_takes_neighbours, lcs_setup, lcs_teardown),
        cmocka_unit_test_setup_teardown(test_lcs_move_before_l0_merge, lcs_setup, lcs_teardown),
        cmocka_unit_test_setup_teardown(test_lcs_starved_level_drains, lcs_setup, lcs_teardown),
        cmocka_unit_test(test_strategy_major_and_stcs_dispatch),
        cmocka_unit_test(test_twcs_options_and_windows),
        cmocka_unit_test(test_fully_expired_rule),
        cmocka_unit_test_setup_teardown(test_twcs_pick, twcs_setup, lcs_teardown),
        cmocka_unit_test_setup_teardown(test_twcs_skips_windows_about_to_expire, twcs_setup, lcs_teardown),
        cmocka_unit_test_setup_teardown(test_twcs_expired_dropped_on_the_tick, twcs_setup, lcs_teardown),
        cmocka_unit_test(test_ucs_options),
        cmocka_unit_test(test_ucs_levels_and_shards),
        cmocka_unit_test_setup_teardown(test_ucs_tiered_pick, ucs_setup, lcs_teardown),
        cmocka_unit_test_setup_teardown(test_ucs_overlap_sets, ucs_setup, lcs_teardown),
        cmocka_unit_test_setup_teardown(test_ucs_parallel_shards, ucs_setup, lcs_teardown),
        cmocka_unit_test_setup_teardown(test_ucs_switch_and_limit, ucs_setup, lcs_teardown),
        cmocka_unit_test_setup_teardown(test_ucs_expired, ucs_setup, lcs_teardown),
        cmocka_unit_test_setup_teardown(test_task_shard_outputs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
