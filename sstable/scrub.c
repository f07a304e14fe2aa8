/* scrub.c: rewriting an SSTable from what of it is readable.
 *
 * Used for a Filter.db or Statistics.db that is damaged (both are derived
 * from Data.db: rewriting the SSTable rebuilds them) and by sibyl-scrub.
 * The rewrite walks the index page by page and copies each partition through
 * the writer, so the output is a complete, fresh SSTable (new Filter,
 * Statistics, Index, TOC) under a new generation; the input is never
 * changed here. What the walk cannot read is dropped and reported:
 *
 *   | damage met                      | dropped                               |
 *   |---------------------------------|---------------------------------------|
 *   | an index page                   | the partitions that page lists        |
 *   | a partition key                 | that partition                        |
 *   | a partition's header            | that partition                        |
 *   | a row                           | that partition from that row on       |
 *   | a partition that cannot be      | the rest of its index run (writer.c): |
 *   |   parsed through to its end     |   the next one's start is unknown     |
 *
 * The output's Statistics.db says level 0 and commitlog position 0: nothing
 * claims the commitlog is covered by it, so replay restores anything newer.
 */
#include "sst_int.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

size_t sst_dir_gens(const char *dir, const char *suffix, uint64_t **out)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0, cap = 0;
    *out = NULL;
    while (d && (de = readdir(d))) {
        char *end;
        if (de->d_name[0] < '0' || de->d_name[0] > '9') continue;
        unsigned long long g = strtoull(de->d_name, &end, 10);
        if (*end != '-' || strcmp(end + 1, suffix)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *x = realloc(*out, cap * sizeof *x);
            if (!x) break;
            *out = x;
        }
        (*out)[n++] = g;
    }
    if (d) closedir(d);
    if (n) qsort(*out, n, sizeof **out, u64_cmp);
    return n;
}

static void note(sst_rewrite_report *rep, const sib_err *e)
{
    _Static_assert(sizeof rep->first_error == sizeof e->msg, "a whole error message");
    if (!rep->first_error[0]) memcpy(rep->first_error, e->msg, sizeof rep->first_error);
}

/* Copies one partition; returns <0 only for a write error. */
static int copy_partition(sst_writer *w, sst_pscan *sc, const uint8_t *pk, size_t pklen, sst_rewrite_report *rep,
                          sib_err *err)
{
    sst_part *p;
    sib_err rerr = {0};
    if (sst_pscan_part(sc, &p, &rerr)) {
        rep->partitions_dropped++;
        note(rep, &rerr);
        return 0;
    }
    const sst_rt *rts;
    size_t nrt = sst_part_rts(p, &rts);
    int rc = sst_write_partition(w, pk, pklen, sst_part_deletion(p), rts, nrt, err);
    const sst_row *st = sst_part_static(p);
    if (!rc && st) rc = sst_write_row(w, st, err);
    const sst_row *r;
    int more;
    while (!rc && (more = sst_part_next(p, &r, &rerr)) != 0) {
        if (more < 0) {
            rep->partitions_cut++;
            note(rep, &rerr);
            break;
        }
        if (!(rc = sst_write_row(w, r, err))) rep->rows++;
    }
    if (!rc) rc = sst_write_partition_end(w, err);
    if (!rc) rep->partitions++;
    sst_part_close(p);
    return rc;
}

int sst_rewrite(sstable *s, const char *dir, uint64_t newgen, const sst_writer_opts *o, sst_rewrite_report *rep,
                sib_err *err)
{
    memset(rep, 0, sizeof *rep);
    sst_writer_opts wo = o ? *o : (sst_writer_opts){0};
    wo.level = 0;
    wo.clpos = (sst_clpos){0, 0};
    wo.ts_base = sst_ts_base(s); /* every timestamp of the input is at or above it */
    wo.expected_keys = sst_key_estimate(s);
    sst_writer *w;
    int rc = sst_writer_create(&w, dir, newgen, &wo, err);
    if (rc) return rc;
    sst_pscan *sc;
    if ((rc = sst_pscan_open(s, INT64_MIN, NULL, 0, true, &sc, err))) goto out;
    for (;;) {
        const uint8_t *pk;
        size_t pklen;
        int64_t tok;
        sib_err rerr = {0};
        int more = sst_pscan_next(sc, &pk, &pklen, &tok, &rerr);
        if (!more) break;
        if (more < 0) {
            if (rerr.code == SIB_ENOMEM) { rc = sib_err_set(err, SIB_ENOMEM, "%s", rerr.msg); break; }
            if (strstr(rerr.msg, "index page")) rep->pages_dropped++;
            else rep->partitions_dropped++;
            note(rep, &rerr);
            continue; /* the scan goes on past it */
        }
        if ((rc = copy_partition(w, sc, pk, pklen, rep, err))) break;
    }
    sst_pscan_close(sc);
    if (!rc) rc = sst_writer_finish(w, NULL, err);
out:
    sst_writer_destroy(w);
    return rc;
}
