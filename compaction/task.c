/* task.c: one compaction: N input SSTables -> one or more output
 * generations, its transaction log, and the node-wide throughput throttle.
 *
 * Algorithm (worker thread):
 *   1. txn log: REMOVE inputs (below);
 *   2. a k-way merge of the inputs' partition keys (sst_pscan, token order);
 *      for each key, every input holding it is opened (sst_part) and the
 *      partition is merged: the superseding partition deletion, the union
 *      of range tombstones, the static rows, then the rows in clustering
 *      order (k-way by key, cm_merge_rows on equal keys); each row goes
 *      through cm_row_compact with the partition's purge context, and the
 *      partition is written only if something survives. The first partition
 *      written opens an output (ADD <gen> logged first); after a partition,
 *      an output whose Data.db reached max_output_bytes is finished (TOC
 *      last) and opened, and the next partition opens the next generation:
 *      outputs never overlap and come out in token order;
 *   3. under the owner's lock, unless cancelled (truncate/drop), the log is
 *      committed;
 *   4. the inputs' files and the log are removed.
 * Errors anywhere before the commit remove every output and the log: the
 * inputs stay live and untouched (disk full = retried later).
 *
 * Purge (docs/compaction.md, "Reconciliation and purge"): max_purgeable(partition) is
 * the minimum of mem_min_ts (all memtables at the start of the task, a
 * conservative stand-in for Cassandra's per-partition memtable minimum) and
 * the min timestamp of every SSTable outside the compaction whose token
 * range contains the partition and whose bloom filter admits it. It is
 * computed only for partitions that hold a gc-able tombstone. Data written
 * after the task started cannot be shadowed by an older tombstone anyway
 * unless it carries an older client timestamp, which Cassandra allows too.
 *
 * Progress: bytes_total = the inputs' logical Data bytes, bytes_done grows
 * by each merged partition's logical size (atomics: the owner polls them).
 * The throttle charges the same bytes.
 */
#define _GNU_SOURCE
#include "compaction.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* The compaction transaction log: replacing input SSTables by output
 * ones atomically on disk (Cassandra's LogTransaction, simplified).
 *
 * File <dir>/<out_gen>-txn.log, text, one record a line:
 *   | record                 | meaning                                       |
 *   |------------------------|-----------------------------------------------|
 *   | REMOVE <gen> <crc>     | generation <gen> is an input                  |
 *   | ADD <gen> <crc>        | generation <gen> is (being) written as output |
 *   | COMMIT <crc>           | outputs complete: they replace the inputs     |
 * <crc> is the crc32c of the text before " <crc>", 8 hex digits. A line that
 * is torn (no newline) or fails its crc ends the log: what follows is
 * ignored, so a torn COMMIT is no commit. A log holds one ADD per output;
 * logs of older versions put their single ADD first, which reads the same.
 *
 * Protocol (cm_task_run):
 *   1. REMOVE lines, fsync the log and the directory;
 *   2. per output: ADD <gen>, fsync the log; then write the output
 *      (sstable.h: tmp names, fsync, rename, TOC last);
 *   3. COMMIT, fsync;
 *   4. delete the inputs, fsync the directory, delete the log.
 * A crash before 3 leaves the inputs live and the log uncommitted: recovery
 * deletes EVERY generation the log ADDs (finished ones too, TOC and all).
 * A crash after 3 leaves the log committed: recovery deletes the inputs.
 * Either the inputs or all the outputs are live, never a mix (a purged
 * tombstone in an output would let shadowed input data come back) and never
 * neither. Recovery runs before sst_dir_scan decides what is live.
 *
 * Invariants: the log file's name is created (and the directory fsynced)
 * before the first byte of an output exists; an output's ADD is on disk
 * before its first file is created.
 */

/* ---- throttle ---- */

void cm_throttle_init(cm_throttle *t, double mib_per_s)
{
    pthread_mutex_init(&t->mu, NULL);
    t->next_ns = 0;
    cm_throttle_set(t, mib_per_s);
}

void cm_throttle_set(cm_throttle *t, double mib_per_s)
{
    pthread_mutex_lock(&t->mu);
    t->bytes_per_s = mib_per_s > 0 ? mib_per_s * 1048576.0 : 0;
    pthread_mutex_unlock(&t->mu);
}

void cm_throttle_free(cm_throttle *t) { pthread_mutex_destroy(&t->mu); }

void cm_throttle_take(cm_throttle *t, uint64_t n)
{
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    double rate = t->bytes_per_s;
    if (rate <= 0) {
        pthread_mutex_unlock(&t->mu);
        return;
    }
    uint64_t now = (uint64_t)sib_mono_ns();
    /* a burst of up to 100 ms worth of bytes passes without sleeping */
    uint64_t floor_ns = now > 100000000ull ? now - 100000000ull : 0;
    if (t->next_ns < floor_ns) t->next_ns = floor_ns;
    t->next_ns += (uint64_t)((double)n / rate * 1e9);
    uint64_t wake = t->next_ns > now + 100000000ull ? t->next_ns - 100000000ull : 0;
    pthread_mutex_unlock(&t->mu);
    if (wake > now) {
        uint64_t d = wake - now;
        struct timespec ts = {(time_t)(d / 1000000000ull), (long)(d % 1000000000ull)};
        while (nanosleep(&ts, &ts) && errno == EINTR) {}
    }
}

/* ---- merging ---- */

typedef struct in_src {
    sstable *sst;
    sst_pscan *ps;
    bool has;
    int64_t token;
    uint8_t *pk;
    size_t pklen, pkcap;
    sst_part *part; /* open while its partition is merged */
    const sst_row *row;
    bool adv; /* gave the row being merged */
} in_src;

typedef struct mctx {
    cm_task *t;
    in_src *in;
    cm_txn *x;
    sst_writer *w;          /* the output being written, NULL between outputs */
    uint64_t w_gen;
    uint32_t w_shard;       /* UCS: the shard of the output being written */
    sst_writer_opts wo;
    size_t outcap;
    cm_rowmerge m, rm; /* m: partition/rows output; rm: row merge */
    sst_rt *rts;
    size_t caprts;
    const sst_row **pick;
    int64_t token;
    const uint8_t *pk;
    size_t pklen;
} mctx;

static int key_cmp(int64_t t1, const uint8_t *k1, size_t n1, int64_t t2, const uint8_t *k2, size_t n2)
{
    if (t1 != t2) return t1 < t2 ? -1 : 1;
    size_t n = SIB_MIN(n1, n2);
    int c = n ? memcmp(k1, k2, n) : 0;
    return c ? c : (n1 < n2 ? -1 : n1 > n2);
}

static int ck_cmp(const sst_row *a, const sst_row *b)
{
    size_t n = SIB_MIN(a->cklen, b->cklen);
    int c = n ? memcmp(a->ck, b->ck, n) : 0;
    return c ? c : (a->cklen < b->cklen ? -1 : a->cklen > b->cklen);
}

static int src_next_key(cm_task *t, in_src *s)
{
    const uint8_t *pk;
    size_t pklen;
    int rc = sst_pscan_next(s->ps, &pk, &pklen, &s->token, &t->err);
    s->has = rc == 1;
    if (rc != 1) return rc < 0 ? rc : 0;
    if (pklen > s->pkcap) {
        uint8_t *n = realloc(s->pk, pklen);
        if (!n) return sib_err_set(&t->err, SIB_ENOMEM, "compaction: out of memory");
        s->pk = n;
        s->pkcap = pklen;
    }
    if (pklen) memcpy(s->pk, pk, pklen);
    s->pklen = pklen;
    return 0;
}

static int64_t max_purgeable(void *arg)
{
    const mctx *c = arg;
    const cm_task *t = c->t;
    int64_t mp = t->mem_min_ts;
    for (size_t i = 0; i < t->noutside; i++) {
        const sst_stats *st = sst_get_stats(t->outside[i]);
        if (st->min_ts == SST_NO_TS || st->min_ts >= mp) continue;
        if (c->token < st->first_token || c->token > st->last_token) continue;
        if (!sst_may_contain(t->outside[i], c->token)) continue;
        mp = st->min_ts;
    }
    return mp;
}

/* Starts the next output: its generation is logged (ADD, fsynced) before
 * its first file exists, so recovery can always find and remove it. */
static int output_begin(mctx *c)
{
    cm_task *t = c->t;
    uint32_t ngens = t->ngens ? t->ngens : 1;
    if (t->noutputs >= ngens) return sib_err_set(&t->err, SIB_EINVAL, "compaction: no generation left for an output");
    if (t->noutputs == c->outcap) {
        size_t cap = c->outcap ? c->outcap * 2 : 4;
        sstable **n = realloc(t->outputs, cap * sizeof *n);
        if (!n) return sib_err_set(&t->err, SIB_ENOMEM, "compaction: out of memory");
        t->outputs = n;
        c->outcap = cap;
    }
    c->w_gen = t->out_gen + t->noutputs;
    c->w_shard = cm_ucs_shard_of(c->token, t->shards);
    int rc = cm_txn_add(c->x, c->w_gen, &t->err);
    if (!rc) rc = sst_writer_create(&c->w, t->dir, c->w_gen, &c->wo, &t->err);
    return rc;
}

/* Finishes the current output (TOC last) and opens it. */
static int output_end(mctx *c)
{
    cm_task *t = c->t;
    uint64_t bytes = 0;
    int rc = sst_writer_finish(c->w, &bytes, &t->err);
    sst_writer_destroy(c->w); /* removes the tmp files unless finished */
    c->w = NULL;
    if (!rc) rc = sst_open(&t->outputs[t->noutputs], t->dir, c->w_gen, &t->err);
    if (rc) return rc;
    t->noutputs++;
    t->bytes_written += bytes;
    return SIB_FAILPOINT_N("compaction.after_output", t->noutputs, &t->err);
}

/* At a partition boundary: the output is closed once it reached its
 * target size, unless it is the last generation reserved. */
static int maybe_split(mctx *c)
{
    cm_task *t = c->t;
    uint32_t ngens = t->ngens ? t->ngens : 1;
    if (!c->w || !t->max_output_bytes || t->noutputs + 1 >= ngens) return 0;
    if (sst_writer_data_bytes(c->w) < t->max_output_bytes) return 0;
    return output_end(c);
}

/* Before a partition: the output ends if the partition lies in another
 * shard (UCS), unless it is the last generation reserved. */
static int maybe_shard_split(mctx *c)
{
    cm_task *t = c->t;
    uint32_t ngens = t->ngens ? t->ngens : 1;
    if (!c->w || t->shards <= 1 || t->noutputs + 1 >= ngens) return 0;
    if (cm_ucs_shard_of(c->token, t->shards) == c->w_shard) return 0;
    return output_end(c);
}

/* Writes the partition header once (lazily: a partition whose content all
 * went is not written at all). */
static int ensure_header(mctx *c, bool *written, sst_del pdel, const sst_rt *rts, size_t nrt)
{
    if (*written) return 0;
    int rc = c->w ? 0 : output_begin(c);
    if (rc) return rc;
    *written = true;
    c->t->partitions_out++;
    return sst_write_partition(c->w, c->pk, c->pklen, pdel, rts, nrt, &c->t->err);
}

/* The rows of the open parts, merged in clustering order. */
static int merge_rows(mctx *c, in_src **srcs, size_t n, cm_purge *p, sst_del pdel, const sst_rt *allrts, size_t nall,
                      bool *written, sst_del wpdel, const sst_rt *wrts, size_t nw)
{
    cm_task *t = c->t;
    static const sst_bound start = {NULL, 0, true, true};
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = sst_part_seek(srcs[i]->part, &start, false, &t->err);
        if (!rc && (rc = sst_part_next(srcs[i]->part, &srcs[i]->row, &t->err)) >= 0) {
            if (rc == 0) srcs[i]->row = NULL;
            rc = 0;
        }
    }
    while (!rc) {
        const sst_row *best = NULL;
        for (size_t i = 0; i < n; i++)
            if (srcs[i]->row && (!best || ck_cmp(srcs[i]->row, best) < 0)) best = srcs[i]->row;
        if (!best) break;
        size_t np = 0;
        for (size_t i = 0; i < n; i++) {
            srcs[i]->adv = srcs[i]->row && !ck_cmp(srcs[i]->row, best);
            if (srcs[i]->adv) c->pick[np++] = srcs[i]->row;
        }
        sst_row merged, out;
        if ((rc = cm_merge_rows(&c->rm, c->pick, np, &merged))) break;
        sst_del act = cm_active_deletion(pdel, allrts, nall, merged.ck, merged.cklen, false);
        int k = cm_row_compact(&c->m, p, &merged, act, &out);
        if (k < 0) {
            rc = k;
            break;
        }
        if (k && !(rc = ensure_header(c, written, wpdel, wrts, nw))) rc = sst_write_row(c->w, &out, &t->err);
        /* advance the sources that gave this key (after the write: rows
         * point into their buffers) */
        for (size_t i = 0; i < n && !rc; i++) {
            if (!srcs[i]->adv) continue;
            int r = sst_part_next(srcs[i]->part, &srcs[i]->row, &t->err);
            if (r < 0) rc = r;
            else if (r == 0) srcs[i]->row = NULL;
        }
    }
    if (rc == SIB_ENOMEM && !t->err.msg[0]) sib_err_set(&t->err, rc, "compaction: out of memory");
    return rc;
}

static int merge_partition(mctx *c, in_src **srcs, size_t n)
{
    cm_task *t = c->t;
    sst_del pdel = {SST_NO_TS, SST_NO_LDT};
    size_t nall = 0;
    for (size_t i = 0; i < n; i++) {
        sst_del d = sst_part_deletion(srcs[i]->part);
        if (d.ts != SST_NO_TS && (pdel.ts == SST_NO_TS || sst_del_supersedes(d, pdel))) pdel = d;
        const sst_rt *r;
        size_t k = sst_part_rts(srcs[i]->part, &r);
        if (nall + k > c->caprts) {
            size_t cap = (nall + k) * 2;
            sst_rt *x = realloc(c->rts, cap * sizeof *x);
            if (!x) return sib_err_set(&t->err, SIB_ENOMEM, "compaction: out of memory");
            c->rts = x;
            c->caprts = cap;
        }
        if (k) memcpy(c->rts + nall, r, k * sizeof *r);
        nall += k;
    }
    cm_purge p = {.now = t->now, .gc_before = t->gc_before, .mp_fn = max_purgeable, .mp_arg = c};
    sst_del wpdel = pdel;
    const sst_rt *wrts;
    size_t nw;
    int rc = cm_part_compact(&c->m, &p, &wpdel, c->rts, nall, &wrts, &nw);
    bool written = false;
    if (!rc && (wpdel.ts != SST_NO_TS || nw)) rc = ensure_header(c, &written, wpdel, wrts, nw);
    /* the static row */
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        const sst_row *s = sst_part_static(srcs[i]->part);
        if (s) c->pick[ns++] = s;
    }
    if (!rc && ns) {
        sst_row merged, out;
        if (!(rc = cm_merge_rows(&c->rm, c->pick, ns, &merged))) {
            int k = cm_row_compact(&c->m, &p, &merged, pdel, &out);
            if (k < 0) rc = k;
            else if (k && !(rc = ensure_header(c, &written, wpdel, wrts, nw))) rc = sst_write_row(c->w, &out, &t->err);
        }
    }
    if (!rc) rc = merge_rows(c, srcs, n, &p, pdel, c->rts, nall, &written, wpdel, wrts, nw);
    if (!rc && written) rc = sst_write_partition_end(c->w, &t->err);
    t->purged += p.purged;
    if (rc == SIB_ENOMEM && !t->err.msg[0]) sib_err_set(&t->err, rc, "compaction: out of memory");
    return rc;
}

static bool cancelled(const cm_task *t) { return t->cancelled && __atomic_load_n(t->cancelled, __ATOMIC_RELAXED); }

/* The merge loop over partition keys. */
static int merge_all(mctx *c)
{
    cm_task *t = c->t;
    in_src **cur = malloc((t->ninputs ? t->ninputs : 1) * sizeof *cur); /* a task may only drop SSTables */
    if (!cur) return sib_err_set(&t->err, SIB_ENOMEM, "compaction: out of memory");
    int rc = 0;
    for (size_t i = 0; i < t->ninputs && !rc; i++) {
        rc = sst_pscan_open(c->in[i].sst, INT64_MIN, NULL, 0, true, &c->in[i].ps, &t->err);
        if (!rc) rc = src_next_key(t, &c->in[i]);
    }
    while (!rc) {
        in_src *best = NULL;
        for (size_t i = 0; i < t->ninputs; i++) {
            in_src *s = &c->in[i];
            if (s->has && (!best || key_cmp(s->token, s->pk, s->pklen, best->token, best->pk, best->pklen) < 0)) best = s;
        }
        if (!best) break;
        if (cancelled(t)) {
            rc = sib_err_set(&t->err, SIB_EAGAIN, "compaction: cancelled (table truncated or dropped)");
            break;
        }
        size_t n = 0;
        for (size_t i = 0; i < t->ninputs; i++) {
            in_src *s = &c->in[i];
            if (s->has && !key_cmp(s->token, s->pk, s->pklen, best->token, best->pk, best->pklen)) cur[n++] = s;
        }
        c->token = best->token;
        c->pk = best->pk;
        c->pklen = best->pklen;
        uint64_t bytes = 0;
        size_t opened = 0;
        rc = maybe_shard_split(c);
        for (; opened < n && !rc; opened++) {
            rc = sst_pscan_part(cur[opened]->ps, &cur[opened]->part, &t->err);
            if (!rc) bytes += sst_part_size(cur[opened]->part);
        }
        if (!rc) rc = merge_partition(c, cur, n);
        if (!rc) rc = maybe_split(c);
        for (size_t i = 0; i < n; i++) {
            sst_part_close(cur[i]->part);
            cur[i]->part = NULL;
        }
        t->partitions_in += n;
        __atomic_fetch_add(&t->bytes_done, bytes, __ATOMIC_RELAXED);
        cm_throttle_take(t->throttle, bytes);
        /* advance after the merge: c->pk points into best's buffer */
        for (size_t i = 0; i < n && !rc; i++) rc = src_next_key(t, cur[i]);
    }
    free(cur);
    return rc;
}

void cm_task_free_outputs(cm_task *t)
{
    for (size_t i = 0; i < t->noutputs; i++) sst_unref(t->outputs[i]);
    free(t->outputs);
    t->outputs = NULL;
    t->noutputs = 0;
}

/* Commits the log under the owner's lock unless the task was cancelled. */
static int commit(cm_task *t, cm_txn *x)
{
    int rc = SIB_FAILPOINT("compaction.after_outputs_before_txn_commit", &t->err);
    if (rc) return rc;
    if (t->mu) pthread_mutex_lock(t->mu);
    if (cancelled(t)) rc = sib_err_set(&t->err, SIB_EAGAIN, "compaction: cancelled (table truncated or dropped)");
    else rc = cm_txn_commit(x, &t->err);
    if (t->mu) pthread_mutex_unlock(t->mu);
    /* past the commit an injected error could only lie: only kill/sleep apply */
    if (!rc) (void)SIB_FAILPOINT("compaction.after_commit_before_input_delete", NULL);
    return rc;
}

int cm_task_run(cm_task *t)
{
    sib_err_clear(&t->err);
    t->outputs = NULL;
    t->noutputs = 0;
    t->bytes_read = t->bytes_written = t->partitions_in = t->partitions_out = t->purged = 0;
    uint64_t *gens = malloc((t->ninputs + t->ndrop + 1) * sizeof *gens);
    mctx c = {.t = t};
    c.in = calloc(t->ninputs ? t->ninputs : 1, sizeof *c.in);
    c.pick = malloc((t->ninputs ? t->ninputs : 1) * sizeof *c.pick);
    if (!gens || !c.in || !c.pick) {
        free(gens);
        free(c.in);
        free(c.pick);
        return sib_err_set(&t->err, SIB_ENOMEM, "compaction: out of memory");
    }
    uint64_t keys = 0, total = 0, file_bytes = 0;
    int64_t min_ts = SST_NO_TS;
    for (size_t i = 0; i < t->ninputs; i++) {
        const sst_stats *st = sst_get_stats(t->inputs[i]);
        if (st->min_ts != SST_NO_TS && (min_ts == SST_NO_TS || st->min_ts < min_ts)) min_ts = st->min_ts;
        gens[i] = sst_gen(t->inputs[i]);
        c.in[i].sst = t->inputs[i];
        keys += st->partitions;
        total += st->data_bytes;
        file_bytes += st->data_file_bytes;
        t->bytes_read += st->data_file_bytes;
    }
    __atomic_store_n(&t->bytes_total, total, __ATOMIC_RELAXED);
    /* fully expired SSTables are only REMOVEd: never read */
    for (size_t i = 0; i < t->ndrop; i++) gens[t->ninputs + i] = sst_gen(t->drop[i]);
    int rc = cm_txn_begin(&c.x, t->dir, t->out_gen, gens, t->ninputs + t->ndrop, &t->err);
    free(gens);
    if (!rc) rc = SIB_FAILPOINT("compaction.after_txn_begin", &t->err);
    c.wo = t->wo;
    /* the bloom filter of each output is sized for its share of the keys */
    if (t->max_output_bytes && file_bytes > t->max_output_bytes)
        keys = (uint64_t)((double)keys * ((double)t->max_output_bytes / (double)file_bytes) * 1.25) + 1;
    c.wo.expected_keys = keys ? keys : 1;
    if (min_ts != SST_NO_TS) c.wo.ts_base = min_ts; /* timestamps stored as short deltas from it */
    if (t->relevel && t->ninputs >= 1 && !t->ndrop) {
        /* each input under a new generation at its new level: no byte of
         * data read or written, the same transaction log as a merge */
        t->bytes_read = 0;
        t->outputs = calloc(t->ninputs, sizeof *t->outputs);
        if (!rc && !t->outputs) rc = sib_err_set(&t->err, SIB_ENOMEM, "compaction: out of memory");
        if (!rc && t->ninputs > (t->ngens ? t->ngens : 1))
            rc = sib_err_set(&t->err, SIB_EINVAL, "compaction: no generation left for an output");
        for (size_t i = 0; !rc && i < t->ninputs; i++) {
            uint64_t gen = t->out_gen + i;
            rc = cm_txn_add(c.x, gen, &t->err);
            if (!rc) rc = sst_link_relevel(t->dir, sst_gen(t->inputs[i]), gen, t->wo.level, &t->err);
            if (!rc) rc = sst_open(&t->outputs[i], t->dir, gen, &t->err);
            if (rc) break;
            t->noutputs = i + 1;
            t->partitions_in += sst_get_stats(t->inputs[i])->partitions;
            rc = SIB_FAILPOINT_N("compaction.after_output", t->noutputs, &t->err);
        }
        if (!rc) {
            t->partitions_out = t->partitions_in;
            __atomic_store_n(&t->bytes_done, total, __ATOMIC_RELAXED);
        }
    } else if (!rc) {
        rc = merge_all(&c);
    }
    if (!rc && c.w) rc = output_end(&c);
    sst_writer_destroy(c.w); /* an output cut short by an error: its tmp files go */
    if (!rc) rc = commit(t, c.x);
    if (rc) cm_task_free_outputs(t); /* cm_txn_finish removes their files */
    sib_err ferr;
    if (c.x && cm_txn_finish(c.x, &ferr) && !rc)
        sib_log(t->log, SIB_WARN, "compaction: %s (finished at the next startup)", ferr.msg);
    for (size_t i = 0; i < t->ninputs; i++) {
        sst_pscan_close(c.in[i].ps);
        free(c.in[i].pk);
    }
    free(c.in);
    free(c.pick);
    free(c.rts);
    cm_rowmerge_free(&c.m);
    cm_rowmerge_free(&c.rm);
    return rc;
}

/* ---- transaction log ---- */

struct cm_txn {
    char *dir, *path;
    int fd;
    uint64_t *inputs, *outputs;
    size_t n, nout, capout;
    bool committed;
};

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int put_line(sib_buf *b, const char *text)
{
    char line[96];
    int n = snprintf(line, sizeof line, "%s %08x\n", text, sib_crc32c(0, text, strlen(text)));
    if (n < 0 || (size_t)n >= sizeof line) return SIB_EINVAL;
    sib_buf_append(b, line, (size_t)n);
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static char *log_path(const char *dir, uint64_t gen)
{
    char *p;
    return asprintf(&p, "%s/%llu-txn.log", dir, (unsigned long long)gen) < 0 ? NULL : p;
}

static void txn_free(cm_txn *x)
{
    if (x->fd >= 0) close(x->fd);
    free(x->dir);
    free(x->path);
    free(x->inputs);
    free(x->outputs);
    free(x);
}

int cm_txn_begin(cm_txn **out, const char *dir, uint64_t txn_gen, const uint64_t *inputs, size_t n, sib_err *err)
{
    *out = NULL;
    cm_txn *x = calloc(1, sizeof *x);
    if (!x) return sib_err_set(err, SIB_ENOMEM, "compaction: out of memory");
    x->fd = -1;
    if (!(x->dir = strdup(dir)) || !(x->path = log_path(dir, txn_gen)) ||
        !(x->inputs = malloc((n ? n : 1) * sizeof *inputs))) {
        txn_free(x);
        return sib_err_set(err, SIB_ENOMEM, "compaction: out of memory");
    }
    x->n = n;
    if (n) memcpy(x->inputs, inputs, n * sizeof *inputs);
    sib_buf b;
    sib_buf_init(&b);
    char text[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(text, sizeof text, "REMOVE %llu", (unsigned long long)inputs[i]);
        put_line(&b, text);
    }
    int rc = 0;
    if ((x->fd = open(x->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0 || write_all(x->fd, b.p, b.len) ||
        fsync(x->fd) || fsync_dir(dir))
        rc = sib_err_errno(err, "compaction: cannot write %s", x->path);
    sib_buf_free(&b);
    if (rc) {
        if (x->fd >= 0) unlink(x->path);
        txn_free(x);
        return rc;
    }
    *out = x;
    return 0;
}

/* Appends one record and fsyncs; on failure the record is cut off again so
 * the log reads the same whatever reached the disk (a torn line fails its
 * crc anyway). */
static int append(cm_txn *x, const char *text, sib_err *err)
{
    sib_buf b;
    sib_buf_init(&b);
    put_line(&b, text);
    int rc = 0;
    if (write_all(x->fd, b.p, b.len) || fsync(x->fd)) {
        rc = sib_err_errno(err, "compaction: cannot append to %s", x->path);
        off_t end = lseek(x->fd, 0, SEEK_CUR);
        if (end >= (off_t)b.len && ftruncate(x->fd, end - (off_t)b.len) == 0) {
            fsync(x->fd);
            lseek(x->fd, end - (off_t)b.len, SEEK_SET);
        }
    }
    sib_buf_free(&b);
    return rc;
}

int cm_txn_add(cm_txn *x, uint64_t gen, sib_err *err)
{
    if (x->nout == x->capout) {
        size_t cap = x->capout ? x->capout * 2 : 4;
        uint64_t *n = realloc(x->outputs, cap * sizeof *n);
        if (!n) return sib_err_set(err, SIB_ENOMEM, "compaction: out of memory");
        x->outputs = n;
        x->capout = cap;
    }
    char text[64];
    snprintf(text, sizeof text, "ADD %llu", (unsigned long long)gen);
    /* listed before the append: if the append fails half-way, the rollback
     * still removes whatever of gen exists */
    x->outputs[x->nout++] = gen;
    return append(x, text, err);
}

int cm_txn_commit(cm_txn *x, sib_err *err)
{
    int rc = append(x, "COMMIT", err);
    if (!rc) x->committed = true;
    return rc;
}

int cm_txn_finish(cm_txn *x, sib_err *err)
{
    if (!x) return 0;
    int rc = 0;
    if (x->committed) {
        for (size_t i = 0; i < x->n && !rc; i++) rc = sst_remove(x->dir, x->inputs[i], err);
        if (!rc) (void)SIB_FAILPOINT("compaction.after_input_delete_before_log_delete", NULL);
    } else {
        for (size_t i = 0; i < x->nout && !rc; i++) rc = sst_remove(x->dir, x->outputs[i], err);
    }
    /* the log goes only once its actions are done: a failure keeps it for
     * the next startup to finish */
    if (!rc && unlink(x->path) == 0) fsync_dir(x->dir);
    txn_free(x);
    return rc;
}

/* ---- recovery ---- */

typedef struct gen_list {
    uint64_t *v;
    size_t n, cap;
} gen_list;

typedef struct parsed {
    gen_list add, rm; /* every ADD and every REMOVE, in log order */
    bool committed;
} parsed;

static int gen_push(gen_list *l, uint64_t g)
{
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 8;
        uint64_t *n = realloc(l->v, c * sizeof *n);
        if (!n) return SIB_ENOMEM;
        l->v = n;
        l->cap = c;
    }
    l->v[l->n++] = g;
    return 0;
}

/* Parses the valid prefix of a log: every record up to the first torn or
 * corrupt line. All ADD records count (a task may write several outputs). */
static int parse_log(const char *path, parsed *p, sib_err *err)
{
    FILE *f = fopen(path, "re");
    if (!f) return sib_err_errno(err, "compaction: cannot read %s", path);
    char line[128];
    int rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        if (!len || line[len - 1] != '\n' || len < 11) break;
        line[len - 1] = 0;
        char *sp = strrchr(line, ' ');
        if (!sp || strlen(sp + 1) != 8) break;
        *sp = 0;
        unsigned crc;
        if (sscanf(sp + 1, "%8x", &crc) != 1 || crc != sib_crc32c(0, line, strlen(line))) break;
        unsigned long long g;
        if (!strcmp(line, "COMMIT")) p->committed = true;
        else if (sscanf(line, "ADD %llu", &g) == 1) rc = gen_push(&p->add, g);
        else if (sscanf(line, "REMOVE %llu", &g) == 1) rc = gen_push(&p->rm, g);
        else break;
    }
    fclose(f);
    return rc ? sib_err_set(err, rc, "compaction: out of memory reading %s", path) : 0;
}

static bool is_log_name(const char *name)
{
    size_t n = strlen(name), sfx = strlen("-txn.log");
    if (n <= sfx || strcmp(name + n - sfx, "-txn.log")) return false;
    for (size_t i = 0; i < n - sfx; i++)
        if (name[i] < '0' || name[i] > '9') return false;
    return true;
}

int cm_txn_recover(const char *dir, sib_log *log, size_t *n_out, sib_err *err)
{
    if (n_out) *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : sib_err_errno(err, "compaction: opendir %s", dir);
    struct dirent *de;
    int rc = 0;
    char path[4096];
    while (!rc && (de = readdir(d))) {
        if (!is_log_name(de->d_name)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        parsed p = {.committed = false};
        rc = parse_log(path, &p, err);
        /* committed: the outputs are live, the inputs go; otherwise every
         * output the log announced goes and the inputs stay */
        const gen_list *victims = p.committed ? &p.rm : &p.add;
        for (size_t i = 0; !rc && i < victims->n; i++) rc = sst_remove(dir, victims->v[i], err);
        if (!rc) {
            sib_log(log, SIB_INFO, "compaction: %s %s (%zu inputs, %zu outputs)",
                    p.committed ? "rolled forward" : "rolled back", path, p.rm.n, p.add.n);
            unlink(path);
            if (n_out) (*n_out)++;
        }
        free(p.add.v);
        free(p.rm.v);
    }
    closedir(d);
    if (!rc) fsync_dir(dir);
    return rc;
}
