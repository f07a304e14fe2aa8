/* sibyl-scrub: offline rewrite of damaged SSTables (Cassandra's sstablescrub).
 *
 *   sibyl-scrub [-n] TABLE_DIR [GENERATION...]
 *
 * Stop the node first: like sstablescrub it works on files no node is using.
 * For every live generation of TABLE_DIR (one with a TOC.txt), or the ones
 * named, it reads every Data block and Index page (sst_verify); a sound
 * SSTable is left alone. A damaged one is rewritten (sst_rewrite in
 * sstable.h) as a new generation holding every row that can still be read,
 * and the line printed says what was dropped. The original is never lost:
 * its files are hard-linked into TABLE_DIR/snapshots/pre-scrub-<ms>/ (and
 * the links fsynced) before it leaves the live set, Data.db first and the
 * TOC last as the node deletes, so a crash at any point leaves the original
 * in the snapshot, the rewrite live, or both live (the same rows twice,
 * which reconciliation makes harmless).
 *
 * The rewrite is at level 0 with commitlog position 0, as a rebuilt
 * SSTable: nothing in it claims to cover the commitlog.
 *
 *   -n   report only: check and say what a scrub would do, change nothing
 *
 * Output, one line per SSTable:
 *   | OK <Data.db>                                                    |
 *   | SCRUBBED <Data.db> -> generation <g>: <p> partitions, <r> rows   |
 *   |   kept; <d> partitions dropped, <c> cut short, <x> index pages   |
 *   |   skipped (first error: ...); original in <snapshot dir>        |
 *   | UNSCRUBBABLE <Data.db>: <why> (Data.db's chunk table or the     |
 *   |   Index summary is unreadable)                                   |
 * Exit status: 0 nothing was damaged, 1 something was damaged (scrubbed or
 * not), 2 bad usage or an I/O error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sstable.h"

typedef struct scrub {
    const char *dir;
    bool dry;
    uint64_t next_gen;
    char *snap; /* created on first use */
    int status;
} scrub;

static void fsync_path(const char *p)
{
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) fsync(fd), close(fd);
}

/* Hard links of gen's components into the snapshot; 0 or -1 (printed). */
static int keep_original(scrub *sc, uint64_t gen)
{
    if (!sc->snap) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        char *top;
        if (asprintf(&top, "%s/snapshots", sc->dir) < 0) return -1;
        mkdir(top, 0755);
        free(top);
        if (asprintf(&sc->snap, "%s/snapshots/pre-scrub-%lld", sc->dir,
                     (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000) < 0) {
            sc->snap = NULL;
            return -1;
        }
        if (mkdir(sc->snap, 0755) && errno != EEXIST) {
            fprintf(stderr, "sibyl-scrub: mkdir %s: %s\n", sc->snap, strerror(errno));
            return -1;
        }
    }
    char *paths[5];
    if (sst_files(sc->dir, gen, paths)) return -1;
    int rc = 0;
    for (int i = 0; i < 5; i++) {
        char *to;
        if (!rc && asprintf(&to, "%s%s", sc->snap, strrchr(paths[i], '/')) >= 0) {
            if (link(paths[i], to) && errno != ENOENT && errno != EEXIST) {
                fprintf(stderr, "sibyl-scrub: link %s: %s\n", paths[i], strerror(errno));
                rc = -1;
            } else {
                fsync_path(to);
            }
            free(to);
        }
        free(paths[i]);
    }
    fsync_path(sc->snap);
    return rc;
}

static void scrub_one(scrub *sc, uint64_t gen)
{
    sstable *s = NULL;
    sib_err err = {0};
    char data[4096];
    snprintf(data, sizeof data, "%s/%llu-Data.db", sc->dir, (unsigned long long)gen);
    uint64_t blocks;
    if (!sst_open(&s, sc->dir, gen, &err) && !sst_verify(s, &blocks, &err)) {
        printf("OK %s\n", data);
        sst_unref(s);
        return;
    }
    if (s) sst_unref(s);
    if (sc->status < 1) sc->status = 1;
    sib_err why = err;
    if (sst_open_salvage(&s, sc->dir, gen, &err)) {
        printf("UNSCRUBBABLE %s: %s (Data.db's chunk table or the Index summary is unreadable)\n", data, err.msg);
        return;
    }
    if (sc->dry) {
        printf("DAMAGED %s: %s (a scrub would rewrite it)\n", data, why.msg);
        sst_unref(s);
        return;
    }
    sst_rewrite_report rep;
    uint64_t ng = sc->next_gen++;
    int rc = sst_rewrite(s, sc->dir, ng, NULL, &rep, &err);
    sst_unref(s);
    if (rc) {
        fprintf(stderr, "sibyl-scrub: rewriting %s: %s\n", data, err.msg);
        sc->status = 2;
        return;
    }
    if (keep_original(sc, gen) || sst_remove(sc->dir, gen, &err)) {
        fprintf(stderr, "sibyl-scrub: %s stays live beside its rewrite (generation %llu): %s\n", data,
                (unsigned long long)ng, err.msg[0] ? err.msg : "cannot keep the original");
        sc->status = 2;
        return;
    }
    printf("SCRUBBED %s -> generation %llu: %llu partitions, %llu rows kept; %llu partitions dropped, %llu cut short, "
           "%llu index pages skipped (first error: %s); original in %s/\n",
           data, (unsigned long long)ng, (unsigned long long)rep.partitions, (unsigned long long)rep.rows,
           (unsigned long long)rep.partitions_dropped, (unsigned long long)rep.partitions_cut,
           (unsigned long long)rep.pages_dropped, rep.first_error[0] ? rep.first_error : why.msg, sc->snap);
}

int main(int argc, char **argv)
{
    scrub sc = {0};
    int a = 1;
    if (a < argc && !strcmp(argv[a], "-n")) sc.dry = true, a++;
    if (a >= argc || !strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
        fprintf(stderr, "usage: sibyl-scrub [-n] <table directory> [generation...]\n"
                        "Rewrites damaged SSTables keeping every readable row; the node must be stopped.\n");
        return 2;
    }
    sc.dir = argv[a++];
    struct stat st;
    if (stat(sc.dir, &st) || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "sibyl-scrub: %s is not a directory\n", sc.dir);
        return 2;
    }
    uint64_t *live, *all;
    size_t n = sst_dir_gens(sc.dir, "TOC.txt", &live), na = sst_dir_gens(sc.dir, "Data.db", &all);
    sc.next_gen = 1 + SIB_MAX(n ? live[n - 1] : 0, na ? all[na - 1] : 0);
    free(all);
    if (a < argc) {
        for (; a < argc; a++) {
            char *end;
            unsigned long long g = strtoull(argv[a], &end, 10);
            bool found = false;
            for (size_t i = 0; i < n && !found; i++) found = live[i] == g;
            if (*end || !found) {
                fprintf(stderr, "sibyl-scrub: no live generation %s in %s\n", argv[a], sc.dir);
                sc.status = 2;
                continue;
            }
            scrub_one(&sc, g);
        }
    } else {
        for (size_t i = 0; i < n; i++) scrub_one(&sc, live[i]);
    }
    free(live);
    free(sc.snap);
    return sc.status;
}
