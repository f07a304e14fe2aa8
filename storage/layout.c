/* layout.c: where a table's files live under the data directory, and the
 * move of a directory from the old layout to the new one.
 *
 * Layout (Cassandra's, so an operator can map a folder to a table):
 *
 *   | path                                         | what                            |
 *   |----------------------------------------------|---------------------------------|
 *   | <data>/<keyspace>/<table>-<id, 32 hex>/      | a named table's SSTables        |
 *   |   <gen>-<Kind>.db, <gen>-TOC.txt, -txn.log   | components by generation, kind  |
 *   |   snapshots/<name>/                          | hard links (auto_snapshot)      |
 *   |   backups/                                   | created with the directory      |
 *   | <data>/<id, 32 hex>/                         | old layout, or a table whose    |
 *   |                                              | name storage does not know yet  |
 *
 * Storage knows tables by id only, and opens (and replays the commitlog)
 * before the schema is loaded, so it cannot name a directory on its own.
 * At open it finds a table's directory by scanning for `<data>/<*>/<*>-<hex>`
 * (a name given by an earlier run) or `<data>/<hex>`. Once the schema knows
 * the table, the node calls st_table_set_name: a directory still at
 * `<data>/<hex>` moves to its name (the migration of an old data
 * directory); a table with no directory yet gets one under its name (a table
 * created by DDL).
 *
 * Crash safety of the move, step by step (failpoints between the steps):
 *   1. mkdir <data>/<keyspace>, fsync <data>         a crash leaves an empty
 *                                                    keyspace folder: harmless
 *      -- layout.before_rename_<k>
 *   2. rename(<data>/<hex>, <data>/<ks>/<t>-<hex>)   atomic: after a crash the
 *                                                    directory is at exactly one
 *                                                    of the two names
 *   3. fsync <data>/<ks> and <data>                  the new name is durable
 *      -- layout.after_rename_<k>
 *   4. mkdir backups/
 * Every step is idempotent: a start after a crash at any point finds the
 * directory at one name and carries on from there. A table found at both
 * names (which no crash of ours can produce) refuses to open, naming both.
 * k counts the moves done by this process (0 for the first).
 */
#define _GNU_SOURCE
#include "storage_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void id_hex(const uint8_t id[16], char hex[33])
{
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", id[i]);
}

bool st_layout_hex_id(const char *name, uint8_t id[16])
{
    if (strlen(name) != 32) return false;
    for (int i = 0; i < 32; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return false;
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (sscanf(name + 2 * i, "%2x", &v) != 1) return false;
        id[i] = (uint8_t)v;
    }
    return true;
}

bool st_layout_named_id(const char *name, uint8_t id[16])
{
    size_t n = strlen(name);
    return n > 33 && name[n - 33] == '-' && st_layout_hex_id(name + n - 32, id);
}

static bool is_dir(const char *parent, const struct dirent *de)
{
    if (de->d_name[0] == '.') return false;
    if (de->d_type == DT_DIR) return true;
    if (de->d_type != DT_UNKNOWN) return false;
    char *p;
    struct stat st;
    if (asprintf(&p, "%s/%s", parent, de->d_name) < 0) return false;
    bool d = !stat(p, &st) && S_ISDIR(st.st_mode);
    free(p);
    return d;
}

int st_layout_walk(const char *data_dir, st_layout_fn fn, void *ctx, sib_err *err)
{
    DIR *d = opendir(data_dir);
    if (!d) return sib_err_errno(err, "storage: opendir %s", data_dir);
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        uint8_t id[16];
        if (!is_dir(data_dir, de)) continue;
        char *sub;
        if (asprintf(&sub, "%s/%s", data_dir, de->d_name) < 0) { rc = sib_err_set(err, SIB_ENOMEM, "storage: out of memory"); break; }
        if (st_layout_hex_id(de->d_name, id)) {
            rc = fn(ctx, id, sub, err);
        } else {
            DIR *k = opendir(sub); /* a keyspace folder (or commitlog/, hints/: no table names in them) */
            struct dirent *te;
            while (k && !rc && (te = readdir(k))) {
                if (!st_layout_named_id(te->d_name, id) || !is_dir(sub, te)) continue;
                char *tdir;
                if (asprintf(&tdir, "%s/%s", sub, te->d_name) < 0) { rc = sib_err_set(err, SIB_ENOMEM, "storage: out of memory"); break; }
                rc = fn(ctx, id, tdir, err);
                free(tdir);
            }
            if (k) closedir(k);
        }
        free(sub);
    }
    closedir(d);
    return rc;
}

typedef struct find_ctx {
    const uint8_t *id;
    char *found;
} find_ctx;

static int find_one(void *arg, const uint8_t id[16], const char *dir, sib_err *err)
{
    find_ctx *f = arg;
    if (memcmp(id, f->id, 16)) return 0;
    if (f->found)
        return sib_err_set(err, SIB_ECORRUPT,
                           "storage: one table has two directories, %s and %s: move the SSTables of one into "
                           "the other (renumbering generations that clash) and remove it",
                           f->found, dir);
    if (!(f->found = strdup(dir))) return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    return 0;
}

int st_layout_find(storage *s, const uint8_t id[16], char **dir, bool *named, sib_err *err)
{
    const char *dd = storage_get_opts(s)->data_dir;
    *dir = NULL;
    *named = false;
    find_ctx f = {.id = id};
    int rc = st_layout_walk(dd, find_one, &f, err);
    if (rc) {
        free(f.found);
        return rc;
    }
    if (f.found) {
        char *slash = strrchr(f.found, '/');
        uint8_t x[16];
        *named = !st_layout_hex_id(slash + 1, x);
        *dir = f.found;
        return 0;
    }
    char hex[33];
    id_hex(id, hex);
    if (asprintf(dir, "%s/%s", dd, hex) < 0) {
        *dir = NULL;
        return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    }
    return 0;
}

static void fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Cassandra's rule for keyspace and table names (\w+, at most 48): a name
 * that passes it is safe as one path component. */
static bool path_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (!len || len > 48) return false;
    for (size_t i = 0; i < len; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return true;
}

int st_table_set_name(st_table *t, const char *ks, const char *name, sib_err *err)
{
    storage *s = t->s;
    const char *dd = storage_get_opts(s)->data_dir;
    if (!dd || !t->dir) return 0;
    if (!path_name_ok(ks) || !path_name_ok(name))
        return sib_err_set(err, SIB_EINVAL, "storage: '%s.%s' is not a name for a table directory", ks, name);
    char hex[33], *ksdir = NULL, *want = NULL, *backups = NULL;
    id_hex(t->id, hex);
    int rc = 0;
    if (asprintf(&ksdir, "%s/%s", dd, ks) < 0) ksdir = NULL;
    if (asprintf(&want, "%s/%s-%s", ksdir ? ksdir : "", name, hex) < 0) want = NULL;
    if (asprintf(&backups, "%s/backups", want ? want : "") < 0) backups = NULL;
    if (!ksdir || !want || !backups) { rc = sib_err_set(err, SIB_ENOMEM, "storage: out of memory"); goto out; }
    if (!strcmp(t->dir, want)) goto backups; /* named at an earlier start (maybe killed before step 4) */
    if (t->named) {
        rc = sib_err_set(err, SIB_EINVAL, "storage: table %s is in %s, not %s", hex, t->dir, want);
        goto out;
    }
    if (mkdir(ksdir, 0755) && errno != EEXIST) { rc = sib_err_errno(err, "storage: mkdir %s", ksdir); goto out; }
    fsync_dir(dd);
    struct stat st;
    if (!stat(t->dir, &st)) { /* the old layout: move it */
        if (t->cm_jobs) { /* its compactions write into the old path; the next start moves it */
            sib_log(storage_get_opts(s)->log, SIB_WARN, "storage: %s stays in %s while it compacts", want, t->dir);
            goto out;
        }
        if ((rc = SIB_FAILPOINT_N("layout.before_rename", *storage_layout_moves(s), err))) goto out;
        if (storage_flusher(s)) st_flusher_drain(storage_flusher(s)); /* its jobs hold the old path */
        if (rename(t->dir, want)) { rc = sib_err_errno(err, "storage: rename %s to %s", t->dir, want); goto out; }
        fsync_dir(ksdir);
        fsync_dir(dd);
        if ((rc = SIB_FAILPOINT_N("layout.after_rename", *storage_layout_moves(s), err))) goto out;
        (*storage_layout_moves(s))++;
        sib_log(storage_get_opts(s)->log, SIB_INFO, "storage: moved %s to %s", t->dir, want);
    } else if (mkdir(want, 0755) && errno != EEXIST) {
        rc = sib_err_errno(err, "storage: mkdir %s", want);
        goto out;
    }
    free(t->dir);
    t->dir = want;
    want = NULL;
    t->named = true;
backups:
    if (mkdir(backups, 0755) && errno != EEXIST) rc = sib_err_errno(err, "storage: mkdir %s", backups);
out:
    free(ksdir);
    free(want);
    free(backups);
    return rc;
}

const char *st_table_dir(const st_table *t) { return t->dir; }

/* Moves an SSTable's files to <dir>/<sub>/ (sub: one or two levels) under
 * their own names, TOC first: from then on the folder holds no live SSTable
 * of that generation, and a crash part way leaves TOC-less components, which
 * the start-up sweep keeps unloaded (docs/compaction.md), never deletes. */
static int move_gen(const char *dir, uint64_t gen, const char *sub, sib_err *err)
{
    char *q = NULL, *paths[5] = {0};
    int rc = 0;
    if (asprintf(&q, "%s/%s", dir, sub) < 0) return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    char *slash = strrchr(q, '/');
    if (slash > q + strlen(dir)) { /* snapshots/<name>: snapshots/ first */
        *slash = 0;
        if (mkdir(q, 0755) && errno != EEXIST) rc = sib_err_errno(err, "storage: mkdir %s", q);
        *slash = '/';
    }
    if (!rc && mkdir(q, 0755) && errno != EEXIST) rc = sib_err_errno(err, "storage: mkdir %s", q);
    else if (sst_files(dir, gen, paths)) rc = sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    for (int i = 4; !rc && i >= 0; i--) { /* sst_files lists TOC.txt last */
        char *to;
        if (asprintf(&to, "%s%s", q, strrchr(paths[i], '/')) < 0) { rc = sib_err_set(err, SIB_ENOMEM, "storage: out of memory"); break; }
        if (rename(paths[i], to) && errno != ENOENT) rc = sib_err_errno(err, "storage: rename %s to %s", paths[i], to);
        free(to);
        if (i == 4 && !rc) fsync_dir(dir); /* the TOC's move is durable before the rest */
    }
    if (!rc) {
        fsync_dir(q);
        fsync_dir(dir);
    }
    for (int i = 0; i < 5; i++) free(paths[i]);
    free(q);
    return rc;
}

/* A damaged Filter.db or Statistics.db is derived data: the SSTable is
 * rewritten from Data.db and Index.db as a new generation (level 0,
 * commitlog position 0), which goes live before the original moves to
 * snapshots/rebuilt-<ms>/. A crash between the two leaves both live (the
 * same rows twice: reconciliation makes that harmless) and the original is
 * rebuilt again. 1: rebuilt and inserted; 0: not rebuildable (why in
 * *why); <0: an error. */
static int rebuild(st_table *t, uint64_t gen, sib_err *why, sib_err *err)
{
    const storage_opts *o = storage_get_opts(t->s);
    sstable *in, *out;
    if (sst_open_salvage(&in, t->dir, gen, why)) return 0;
    sst_writer_opts wo = {.block_size = o->sstable_block_size, .fp_chance = o->bloom_filter_fp_chance};
    sst_rewrite_report rep;
    uint64_t ng = t->next_gen++;
    int rc = sst_rewrite(in, t->dir, ng, &wo, &rep, err);
    sst_unref(in);
    if (rc) return rc;
    if (rep.partitions_dropped || rep.partitions_cut || rep.pages_dropped) { /* Data.db is damaged too */
        sst_remove(t->dir, ng, NULL);
        sib_err_set(why, SIB_ECORRUPT, "%s", rep.first_error);
        return 0;
    }
    if ((rc = sst_open(&out, t->dir, ng, err))) return rc;
    if (st_ssts_insert(t, out)) {
        sst_unref(out);
        return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    }
    char sub[64];
    snprintf(sub, sizeof sub, "snapshots/rebuilt-%lld", (long long)(sib_now_us() / 1000));
    if ((rc = move_gen(t->dir, gen, sub, err))) return rc;
    sib_log(o->log, SIB_WARN,
            "storage: %s/%llu: Filter.db or Statistics.db damaged; rebuilt from Data.db and Index.db as generation "
            "%llu (%llu partitions, %llu rows; level 0, commitlog position 0); the original is in %s/%s/",
            t->dir, (unsigned long long)gen, (unsigned long long)ng, (unsigned long long)rep.partitions,
            (unsigned long long)rep.rows, t->dir, sub);
    return 1;
}

int st_layout_damaged(st_table *t, uint64_t gen, const sib_err *open_err, sib_err *err)
{
    const storage_opts *o = storage_get_opts(t->s);
    sib_err why = {0};
    int rb = rebuild(t, gen, &why, err);
    if (rb < 0) return rb;
    if (rb) return 0;
    bool same = !why.msg[0] || !strcmp(why.msg, open_err->msg);
    if (o->disk_failure_policy == ST_DFP_STOP)
        return sib_err_set(err, open_err->code ? open_err->code : SIB_EIO,
                           "%s%s%s%s. disk_failure_policy is stop: start refused (best_effort moves the SSTable to "
                           "quarantine/ and starts without it; sibyl-verify checks the files, sibyl-scrub rewrites "
                           "what is readable)",
                           open_err->msg, same ? "" : " (not rebuildable from Data.db and Index.db: ",
                           same ? "" : why.msg, same ? "" : ")");
    if (o->disk_failure_policy == ST_DFP_BEST_EFFORT) {
        int rc = move_gen(t->dir, gen, "quarantine", err);
        if (rc) return rc;
        sib_log(o->log, SIB_ERROR,
                "storage: %s. disk_failure_policy best_effort: generation %llu moved to %s/quarantine/ and the table "
                "starts without it (data it held is missing, and data its tombstones deleted can come back until "
                "the next repair)",
                open_err->msg, (unsigned long long)gen, t->dir);
    } else {
        sib_log(o->log, SIB_ERROR,
                "storage: %s. disk_failure_policy ignore: the table starts without generation %llu (its files stay "
                "in %s; data it held is missing, and data its tombstones deleted can come back until the next repair)",
                open_err->msg, (unsigned long long)gen, t->dir);
    }
    t->damaged++;
    return 0;
}

void st_layout_rmdir(const char *dir)
{
    char *b;
    if (asprintf(&b, "%s/backups", dir) >= 0) {
        rmdir(b); /* only when empty: backups an operator keeps stay, and so does the table folder */
        free(b);
    }
    rmdir(dir);
}
