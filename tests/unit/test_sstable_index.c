/* Unit tests for the sparse partition index (sstable/writer.c, reader.c):
 * an index entry per run of ~4 KiB of partitions instead of one per
 * partition. Many skinny partitions (present keys found, absent ones not,
 * at tokens inside, between, before and after runs), runs of equal tokens
 * longer than a run, wide partitions with clustering samples among skinny
 * ones, partition scans from arbitrary tokens, the dense version 2 format
 * (still read, and still written on request), and damaged index pages and
 * Data that pass their checksums (a lookup, a scan and verify report
 * SIB_ECORRUPT or a right answer, never crash).
 *
 * This suite includes sstable/'s private header for one thing: the
 * partitioner hook, to make equal tokens on demand (Murmur3's 64 bits never
 * collide for a test). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sst_int.h"

#include "tmpdir_fixture.h"

static int setup(void **state) { return tmpdir_setup(state, "sibsparse"); }
static int teardown(void **state) { return tmpdir_teardown(state); }

typedef int64_t (*tokfn)(const void *key, size_t len);

/* Keys "k<n>" (n even: written; odd: absent) fall in groups of
 * consecutive n sharing one token: GROUP of them below n = 6000 (runs of
 * equal tokens longer than an index run), 8 above (several groups a run);
 * "b<n>" keys take the token between n's group and the next (absent).
 * Anything else: Murmur3. */
enum { GROUP = 256 };
static long group_of(long n) { return n < 6000 ? n / GROUP : 6000 / GROUP + 1 + (n - 6000) / 8; }
static int64_t grouped_token(const void *key, size_t len)
{
    const char *k = key;
    if (len >= 2 && len < 16 && (k[0] == 'k' || k[0] == 'b')) {
        char t[16];
        memcpy(t, k + 1, len - 1);
        t[len - 1] = 0;
        long n = strtol(t, NULL, 10);
        return (n < 0 ? -1 : group_of(n)) * 16 + (k[0] == 'b' ? 8 : 0) - 5000;
    }
    return sib_murmur3_token(key, len);
}

static int64_t murmur(const void *key, size_t len) { return sib_murmur3_token(key, len); }

static int cmp_keys(const void *a, const void *b, void *arg)
{
    tokfn tf = (tokfn)arg;
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int64_t tx = tf(x, strlen(x)), ty = tf(y, strlen(y));
    if (tx != ty) return tx < ty ? -1 : 1;
    size_t lx = strlen(x), ly = strlen(y), n = lx < ly ? lx : ly;
    int c = memcmp(x, y, n);
    return c ? c : (lx < ly ? -1 : lx > ly);
}

/* n present keys k0, k2, ..., sorted as the writer wants them */
static char **make_keys(int n, tokfn tf)
{
    char **keys = calloc((size_t)n, sizeof *keys);
    for (int i = 0; i < n; i++) assert_true(asprintf(&keys[i], "k%06d", 2 * i) > 0);
    qsort_r(keys, (size_t)n, sizeof *keys, cmp_keys, (void *)tf);
    return keys;
}

static void free_keys(char **keys, int n)
{
    for (int i = 0; i < n; i++) free(keys[i]);
    free(keys);
}

static int key_num(const char *k) { return atoi(k + 1); }

/* Wide (250 to 422 rows, clustering samples): every n % 1000 == 500 (amid skinny
 * partitions) and the first and the hundredth key of every 20th group of
 * equal tokens (a wide one followed by equal tokens; one inside a run). */
static bool is_wide(const char *k)
{
    int n = key_num(k);
    return n % 1000 == 500 || (n % (20 * GROUP) == 0) || (n % (20 * GROUP) == 200);
}
/* rows of a wide partition: sizes differ, so do their runs */
static int wide_rows(const char *k) { return 250 + key_num(k) % 173; }

/* A skinny partition's value: its key repeated up to 20..90 bytes. */
static size_t skinny_val(const char *k, char *out)
{
    size_t len = 20 + (size_t)(key_num(k) * 7 % 71), kl = strlen(k);
    for (size_t i = 0; i < len; i++) out[i] = k[i % kl];
    return len;
}

static void write_keys(const char *dir, uint64_t gen, char **keys, int n, const sst_writer_opts *o, tokfn tf)
{
    sst_writer *w;
    sib_err err = {0};
    assert_int_equal(sst_writer_create(&w, dir, gen, o, &err), 0);
    sst_writer_set_token_fn(w, tf);
    for (int i = 0; i < n; i++) {
        sst_del none = {SST_NO_TS, SST_NO_LDT};
        assert_int_equal(sst_write_partition(w, (const uint8_t *)keys[i], strlen(keys[i]), none, NULL, 0, &err), 0);
        char val[128];
        if (is_wide(keys[i])) {
            for (int r = 0; r < wide_rows(keys[i]); r++) {
                char ck[16];
                snprintf(ck, sizeof ck, "r%04d", r);
                sst_cell c = {1, 0, 30, NULL, (const uint8_t *)"wide-partition-row-value-30byt", 1000 + r, 0, SST_NO_LDT};
                sst_row row = {.ck = (const uint8_t *)ck, .cklen = 5, .marker_ts = SST_NO_TS, .marker_ldt = SST_NO_LDT,
                               .del = {SST_NO_TS, SST_NO_LDT}, .cells = &c, .ncells = 1};
                assert_int_equal(sst_write_row(w, &row, &err), 0);
            }
        } else {
            size_t vl = skinny_val(keys[i], val);
            sst_cell c = {1, 0, (uint32_t)vl, NULL, (const uint8_t *)val, 77, 0, SST_NO_LDT};
            sst_row row = {.ck = (const uint8_t *)"c", .cklen = 1, .marker_ts = 70, .marker_ldt = SST_NO_LDT,
                           .del = {SST_NO_TS, SST_NO_LDT}, .cells = &c, .ncells = 1};
            assert_int_equal(sst_write_row(w, &row, &err), 0);
        }
        assert_int_equal(sst_write_partition_end(w, &err), 0);
    }
    assert_int_equal(sst_writer_finish(w, NULL, &err), 0);
    sst_writer_destroy(w);
}

/* n keys for tf, written as generation gen. */
static char **make_table(const char *dir, uint64_t gen, int n, const sst_writer_opts *o, tokfn tf)
{
    char **keys = make_keys(n, tf);
    write_keys(dir, gen, keys, n, o, tf);
    return keys;
}

/* The rows of part p are the ones key k was written with. */
static void check_rows(sst_part *p, const char *k)
{
    sib_err err = {0};
    const sst_row *r;
    if (is_wide(k)) {
        int n = 0;
        while (sst_part_next(p, &r, &err) == 1) {
            char ck[16];
            snprintf(ck, sizeof ck, "r%04d", n++);
            assert_int_equal(r->cklen, 5);
            assert_memory_equal(r->ck, ck, 5);
        }
        assert_int_equal(n, wide_rows(k));
        return;
    }
    char val[128];
    size_t vl = skinny_val(k, val);
    assert_int_equal(sst_part_next(p, &r, &err), 1);
    assert_int_equal(r->ncells, 1);
    assert_int_equal(r->cells[0].vlen, vl);
    assert_memory_equal(r->cells[0].val, val, vl);
    assert_int_equal(sst_part_next(p, &r, &err), 0);
}

static int lookup(sstable *s, const char *k, tokfn tf, sst_part **p, sib_err *err)
{
    return sst_part_open(s, (const uint8_t *)k, strlen(k), tf(k, strlen(k)), p, err);
}

static void check_found(sstable *s, const char *k, tokfn tf)
{
    sst_part *p = NULL;
    sib_err err = {0};
    int rc = lookup(s, k, tf, &p, &err);
    if (rc) fprintf(stderr, "%s: %s\n", k, err.msg);
    assert_int_equal(rc, 0);
    if (!p) fprintf(stderr, "not found: %s\n", k);
    assert_non_null(p);
    check_rows(p, k);
    sst_part_close(p);
}

static void check_absent(sstable *s, const char *k, tokfn tf)
{
    sst_part *p = NULL;
    sib_err err = {0};
    assert_int_equal(lookup(s, k, tf, &p, &err), 0);
    assert_null(p);
}

/* A scan from the start returns every key, in order, with its token, and
 * each one's partition opens with its rows. */
static void check_full_scan(sstable *s, char **keys, int n, tokfn tf)
{
    sst_pscan *sc;
    sib_err err = {0};
    assert_int_equal(sst_pscan_open(s, INT64_MIN, NULL, 0, true, &sc, &err), 0);
    const uint8_t *pk;
    size_t len;
    int64_t tok;
    int i = 0;
    while (sst_pscan_next(sc, &pk, &len, &tok, &err) == 1) {
        assert_true(i < n);
        assert_int_equal(len, strlen(keys[i]));
        assert_memory_equal(pk, keys[i], len);
        assert_int_equal(tok, tf(keys[i], len));
        sst_part *p;
        assert_int_equal(sst_pscan_part(sc, &p, &err), 0);
        check_rows(p, keys[i]);
        assert_int_equal(sst_part_size(p) > 0, 1);
        sst_part_close(p);
        i++;
    }
    assert_int_equal(i, n);
    sst_pscan_close(sc);
}

/* The first key a scan from (token, pk, inclusive) returns. */
static void check_scan_from(sstable *s, int64_t token, const char *pk, bool incl, char **keys, int n, int want, tokfn tf)
{
    sst_pscan *sc;
    sib_err err = {0};
    assert_int_equal(sst_pscan_open(s, token, (const uint8_t *)pk, pk ? strlen(pk) : 0, incl, &sc, &err), 0);
    const uint8_t *k;
    size_t len;
    int64_t tok;
    for (int i = want; i < n && i < want + 5; i++) {
        assert_int_equal(sst_pscan_next(sc, &k, &len, &tok, &err), 1);
        assert_int_equal(len, strlen(keys[i]));
        assert_memory_equal(k, keys[i], len);
        assert_int_equal(tok, tf(keys[i], len));
    }
    if (want >= n) assert_int_equal(sst_pscan_next(sc, &k, &len, &tok, &err), 0);
    sst_pscan_close(sc);
}

/* The whole table, then scans from every step-th key's token: with that
 * key (inclusive or not), the token alone, just below it. */
static void check_scans(sstable *s, char **keys, int n, tokfn tf, int step)
{
    check_full_scan(s, keys, n, tf);
    for (int j = 0; j < n; j += step) {
        int64_t t = tf(keys[j], strlen(keys[j]));
        int first = j; /* the first key of t */
        while (first && tf(keys[first - 1], strlen(keys[first - 1])) == t) first--;
        check_scan_from(s, t, keys[j], true, keys, n, j, tf);
        check_scan_from(s, t, keys[j], false, keys, n, j + 1, tf);
        check_scan_from(s, t, NULL, true, keys, n, first, tf);
        if (t > INT64_MIN) check_scan_from(s, t - 1, NULL, false, keys, n, first, tf);
    }
    check_scan_from(s, INT64_MAX, NULL, true, keys, n, n, tf);
}

static sstable *open_with(const char *dir, uint64_t gen, tokfn tf)
{
    sstable *s;
    sib_err err = {0};
    assert_int_equal(sst_open(&s, dir, gen, &err), 0);
    sst_set_token_fn(s, tf);
    return s;
}

static void verify_and_close(sstable *s)
{
    uint64_t checked;
    sib_err err = {0};
    assert_int_equal(sst_verify(s, &checked, &err), 0);
    sst_unref(s);
}

/* Grouped tokens: every key found; the absent ones of present tokens (odd
 * n) and between groups not. */
static void check_grouped_lookups(sstable *s, char **keys, int n)
{
    for (int i = 0; i < n; i++) check_found(s, keys[i], grouped_token);
    for (int m = 1; m < 2 * n + 2 * GROUP; m += 2) {
        char k[32];
        snprintf(k, sizeof k, "k%06d", m);
        check_absent(s, k, grouped_token);
        if (m % 16 == 1) {
            snprintf(k, sizeof k, "b%06d", m);
            check_absent(s, k, grouped_token);
        }
    }
}

static uint64_t file_size(const char *dir, uint64_t gen, const char *comp)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%llu-%s", dir, (unsigned long long)gen, comp);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return (uint64_t)st.st_size;
}

static unsigned file_version(const char *dir, uint64_t gen, const char *comp)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%llu-%s", dir, (unsigned long long)gen, comp);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    uint8_t h[16];
    assert_int_equal(pread(fd, h, sizeof h, 0), 16);
    close(fd);
    return get_be16(h + 4);
}

/* Bloom filters that pass nearly every token, so absent keys reach the index. */
static const sst_writer_opts leaky = {.block_size = 4096, .index_interval = 1024, .expected_keys = 1, .fp_chance = 0.9};

/* Murmur3 tokens, 6000 skinny partitions (a few wide): a fraction of a
 * byte of index a partition; every key found, no absent one; scans. */
static void test_sparse_skinny(void **state)
{
    fx *f = *state;
    const int n = 6000;
    char **keys = make_table(f->dir, 1, n, &leaky, murmur);
    uint64_t isize = file_size(f->dir, 1, "Index.db");
    assert_true(isize < (uint64_t)n); /* dense: 12 bytes a partition */
    assert_int_equal(file_version(f->dir, 1, "Data.db"), 3);
    assert_int_equal(file_version(f->dir, 1, "Index.db"), 3);
    sstable *s = open_with(f->dir, 1, murmur);
    assert_int_equal(sst_key_estimate(s), n);
    for (int i = 0; i < n; i++) check_found(s, keys[i], murmur);
    for (int i = 0; i < n; i += 3) {
        char k[32];
        snprintf(k, sizeof k, "k%06d", 2 * i + 1);
        check_absent(s, k, murmur);
        snprintf(k, sizeof k, "x%d", i);
        check_absent(s, k, murmur);
    }
    check_scans(s, keys, n, murmur, 97);
    verify_and_close(s);
    free_keys(keys, n);
}

/* Groups of 128 partitions of one token (about 8 KiB each: longer than a
 * run and than a block), then groups of 4, wide partitions first in a group and inside one,
 * absent keys of present tokens, between groups, before and after all. */
static void test_sparse_equal_tokens(void **state)
{
    fx *f = *state;
    const int n = 6000;
    char **keys = make_table(f->dir, 2, n, &leaky, grouped_token);
    sstable *s = open_with(f->dir, 2, grouped_token);
    check_grouped_lookups(s, keys, n);
    check_absent(s, "b-9999", grouped_token); /* before every token */
    check_absent(s, "k0000000", grouped_token); /* the first token, sorted before k000000 */
    check_absent(s, "k999999", grouped_token);  /* after every token */
    check_scans(s, keys, n, grouped_token, 61);
    /* a slice of a wide partition that starts a group (its samples kept) */
    sst_part *p;
    sib_err err = {0};
    assert_int_equal(lookup(s, "k005120", grouped_token, &p, &err), 0);
    assert_non_null(p);
    sst_bound b = {(const uint8_t *)"r0150", 5, true, false};
    assert_int_equal(sst_part_seek(p, &b, false, &err), 0);
    const sst_row *r;
    assert_int_equal(sst_part_next(p, &r, &err), 1);
    assert_memory_equal(r->ck, "r0150", 5);
    sst_part_close(p);
    verify_and_close(s);
    free_keys(keys, n);
}

/* index_run 1 writes the dense version 2 format (an entry per partition),
 * which this build reads like any other. */
static void test_dense_version2(void **state)
{
    fx *f = *state;
    const int n = 3000;
    sst_writer_opts o = leaky;
    o.index_run = 1;
    char **keys = make_table(f->dir, 3, n, &o, grouped_token);
    static const char *const comps[] = {"Data.db", "Index.db", "Filter.db", "Statistics.db"};
    for (int c = 0; c < 4; c++) assert_int_equal(file_version(f->dir, 3, comps[c]), 2);
    assert_true(file_size(f->dir, 3, "Index.db") >= 12u * n);
    sstable *s = open_with(f->dir, 3, grouped_token);
    check_grouped_lookups(s, keys, n);
    check_scans(s, keys, n, grouped_token, 89);
    verify_and_close(s);
    free_keys(keys, n);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *b = malloc((size_t)st.st_size);
    assert_int_equal(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *n = (size_t)st.st_size;
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t n)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, b, n, 0), (ssize_t)n);
    close(fd);
}

/* Every lookup, a whole scan and verify give a right answer or
 * SIB_ECORRUPT (never a wrong partition, never a crash). */
static void probe_damaged(const char *dir, uint64_t gen, char **keys, int n, int *corrupt_seen)
{
    sstable *s;
    sib_err err = {0};
    int rc = sst_open(&s, dir, gen, &err);
    if (rc) {
        assert_int_equal(rc, SIB_ECORRUPT);
        (*corrupt_seen)++;
        return;
    }
    for (int i = 0; i < n; i += 7) {
        sst_part *p = NULL;
        rc = lookup(s, keys[i], murmur, &p, &err);
        if (rc) {
            assert_int_equal(rc, SIB_ECORRUPT);
            (*corrupt_seen)++;
            continue;
        }
        if (!p) continue; /* its run lost its way */
        assert_int_equal(sst_part_size(p) > 0, 1);
        const sst_row *r;
        while ((rc = sst_part_next(p, &r, &err)) == 1) {}
        assert_true(rc == 0 || rc == SIB_ECORRUPT);
        sst_part_close(p);
    }
    sst_pscan *sc;
    assert_int_equal(sst_pscan_open(s, INT64_MIN, NULL, 0, true, &sc, &err), 0);
    const uint8_t *k;
    size_t len;
    int64_t tok;
    for (int steps = 0; steps < 4 * n; steps++) {
        rc = sst_pscan_next(sc, &k, &len, &tok, &err);
        if (!rc) break;
        if (rc < 0) {
            assert_int_equal(rc, SIB_ECORRUPT);
            continue;
        }
        sst_part *p;
        if (sst_pscan_part(sc, &p, &err) == 0) sst_part_close(p);
    }
    sst_pscan_close(sc);
    uint64_t checked;
    rc = sst_verify(s, &checked, &err);
    assert_true(rc == 0 || rc == SIB_ECORRUPT);
    sst_unref(s);
}

/* Index pages damaged under a recomputed checksum (so the reader has to
 * notice from the content: entries pointing into the middle of a
 * partition, out of order, past Data), and one damaged plainly. */
static void test_sparse_damaged_index(void **state)
{
    fx *f = *state;
    const int n = 3000;
    sst_writer_opts o = leaky;
    o.no_compress = true;
    char **keys = make_table(f->dir, 4, n, &o, murmur);
    char path[600];
    snprintf(path, sizeof path, "%s/4-Index.db", f->dir);
    size_t len;
    uint8_t *orig = slurp(path, &len);
    uint64_t sum_off = get_be64(orig + len - 24); /* pages end where the summary starts */
    uint8_t *b = malloc(len);
    int seen = 0, probes = 0;
    for (uint64_t pos = 16 + 8; pos < sum_off; pos += 37) {
        memcpy(b, orig, len);
        uint64_t pg = 16; /* the page holding pos */
        while (pg + 8 + get_be32(b + pg) <= pos) pg += 8 + get_be32(b + pg);
        if (pos < pg + 8) continue;
        b[pos] ^= (uint8_t)(0x5a + probes);
        put_be32(b + pg + 4, sib_crc32c(0, b + pg + 8, get_be32(b + pg)));
        spit(path, b, len);
        probe_damaged(f->dir, 4, keys, n, &seen);
        probes++;
    }
    assert_true(probes > 20);
    assert_true(seen > 0);
    /* without the checksum fixed: the page is refused as such */
    memcpy(b, orig, len);
    b[16 + 30] ^= 1;
    spit(path, b, len);
    sstable *s;
    sib_err err = {0};
    assert_int_equal(sst_open(&s, f->dir, 4, &err), 0);
    sst_part *p = NULL;
    assert_int_equal(lookup(s, keys[0], murmur, &p, &err), SIB_ECORRUPT);
    assert_non_null(strstr(err.msg, "index page"));
    uint64_t checked;
    assert_int_equal(sst_verify(s, &checked, &err), SIB_ECORRUPT);
    sst_unref(s);
    spit(path, orig, len);
    free(b);
    free(orig);
    free_keys(keys, n);
}

/* Data damaged under recomputed block checksums: the walk through a run
 * meets malformed partitions. */
static void test_sparse_damaged_data(void **state)
{
    fx *f = *state;
    const int n = 2000;
    sst_writer_opts o = leaky;
    o.no_compress = true;
    char **keys = make_table(f->dir, 5, n, &o, murmur);
    char path[600];
    snprintf(path, sizeof path, "%s/5-Data.db", f->dir);
    size_t len;
    uint8_t *orig = slurp(path, &len);
    uint64_t tbl = get_be64(orig + len - 24);
    uint8_t *b = malloc(len);
    int seen = 0, probes = 0;
    for (uint64_t pos = 16 + 12; pos < tbl; pos += 911) {
        memcpy(b, orig, len);
        uint64_t blk = 16; /* the block holding pos */
        while (blk + 12 + (get_be32(b + blk) & ~SST_BLOCK_RAW) <= pos) blk += 12 + (get_be32(b + blk) & ~SST_BLOCK_RAW);
        if (pos < blk + 12) continue;
        b[pos] ^= 0xff;
        put_be32(b + blk + 8, sib_crc32c(0, b + blk + 12, get_be32(b + blk) & ~SST_BLOCK_RAW));
        spit(path, b, len);
        probe_damaged(f->dir, 5, keys, n, &seen);
        probes++;
    }
    assert_true(probes > 20);
    assert_true(seen > 0);
    spit(path, orig, len);
    free(b);
    free(orig);
    free_keys(keys, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sparse_skinny, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sparse_equal_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dense_version2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sparse_damaged_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sparse_damaged_data, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
