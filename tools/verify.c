/* sibyl-verify: offline check of SSTables (nodetool verify / sstableverify).
 *
 *   sibyl-verify [-q] PATH...   PATH: a data directory, a table directory or
 *                               any directory above them (walked recursively,
 *                               snapshots included)
 *
 * For every live generation (one with a TOC.txt) it opens the SSTable, which
 * checks the footers, the index summary, the bloom filter and the
 * statistics (each crc'd), then reads every Data block (crc32c and LZ4
 * decompression) and every Index page (crc32c): sst_verify in sstable.h.
 * Output, one line per SSTable:
 *   | OK <Data.db path> (<n> blocks and pages)          |
 *   | DAMAGED <Data.db path>: <what failed, where>       |
 * then a summary line. Generations without a TOC (an interrupted flush or
 * compaction that the node removes at its next start) and unfinished
 * compaction logs are reported as "LEFTOVER", not as damage.
 *
 * Exit status: 0 every SSTable is sound, 1 at least one is damaged, 2 bad
 * usage or an unreadable directory. Read-only: it never deletes or repairs
 * anything, so it is safe on a directory a node is using (immutable files).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sstable.h"

typedef struct vstate {
    bool quiet;
    uint64_t ok, damaged, leftovers;
    int io_errors;
} vstate;

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool has_gen(const uint64_t *v, size_t n, uint64_t g) { return n && bsearch(&g, v, n, sizeof *v, u64_cmp); }

static void verify_dir(vstate *vs, const char *dir)
{
    uint64_t *live, *data, *logs;
    size_t nl = sst_dir_gens(dir, "TOC.txt", &live), nd = sst_dir_gens(dir, "Data.db", &data);
    size_t nx = sst_dir_gens(dir, "txn.log", &logs);
    for (size_t i = 0; i < nl; i++) {
        sstable *s;
        sib_err err = {0};
        uint64_t blocks = 0;
        int rc = sst_open(&s, dir, live[i], &err);
        if (!rc) {
            rc = sst_verify(s, &blocks, &err);
            if (!rc && !vs->quiet) printf("OK %s (%llu blocks and pages)\n", sst_data_path(s), (unsigned long long)blocks);
            sst_unref(s);
        }
        if (rc) {
            printf("DAMAGED %s/%llu-Data.db: %s\n", dir, (unsigned long long)live[i], err.msg);
            vs->damaged++;
        } else {
            vs->ok++;
        }
    }
    for (size_t i = 0; i < nd; i++) {
        if (has_gen(live, nl, data[i])) continue;
        printf("LEFTOVER %s/%llu-Data.db: no TOC (an interrupted write; removed at the next start)\n", dir,
               (unsigned long long)data[i]);
        vs->leftovers++;
    }
    for (size_t i = 0; i < nx; i++) {
        printf("LEFTOVER %s/%llu-txn.log: unfinished compaction (finished at the next start)\n", dir,
               (unsigned long long)logs[i]);
        vs->leftovers++;
    }
    free(live);
    free(data);
    free(logs);
}

static void walk(vstate *vs, const char *path, int depth)
{
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "sibyl-verify: %s: %s\n", path, strerror(errno));
        vs->io_errors++;
        return;
    }
    verify_dir(vs, path);
    struct dirent *de;
    char sub[4096];
    while (depth < 8 && (de = readdir(d))) {
        struct stat st;
        if (de->d_name[0] == '.') continue;
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        if (!lstat(sub, &st) && S_ISDIR(st.st_mode)) walk(vs, sub, depth + 1);
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    vstate vs = {0};
    int first = 1;
    if (argc > 1 && !strcmp(argv[1], "-q")) vs.quiet = true, first = 2;
    if (first >= argc || !strcmp(argv[first], "-h") || !strcmp(argv[first], "--help")) {
        fprintf(stderr, "usage: sibyl-verify [-q] <data directory | table directory>...\n"
                        "checks every block, index page, filter and statistics checksum of every SSTable;\n"
                        "exit 0 = all sound, 1 = damaged SSTables (listed), 2 = usage or I/O error\n");
        return 2;
    }
    for (int i = first; i < argc; i++) walk(&vs, argv[i], 0);
    printf("%llu SSTables sound, %llu damaged, %llu leftovers\n", (unsigned long long)vs.ok,
           (unsigned long long)vs.damaged, (unsigned long long)vs.leftovers);
    if (vs.damaged) return 1;
    return vs.io_errors ? 2 : 0;
}
