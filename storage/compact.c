/* compact.c: the compaction manager of a storage: when to compact, on which
 * threads, and how the result replaces the inputs in the read path.
 *
 * Jobs:
 *   | step        | thread | what                                                |
 *   |-------------|--------|-----------------------------------------------------|
 *   | check       | loop   | the table's strategy (cm_strategy_pick) over its    |
 *   |             |        | SSTables not compacting, or a major (all of them);  |
 *   |             |        | it decides the outputs' level and split size too    |
 *   | submit      | loop   | refs on inputs and on every other live SSTable (for |
 *   |             |        | the purge check), memtables' min timestamp, a new   |
 *   |             |        | generation, gc_before = now - gc_grace_seconds      |
 *   | run         | worker | cm_task_run: txn log, merge, commit, inputs deleted |
 *   | complete    | loop   | (ev_async) inputs leave t->ssts, outputs enter;     |
 *   |             |        | stats; more checks; requests answered               |
 * At most concurrent_compactors jobs exist at once (queued + running).
 *
 * Truncate/drop (st_compaction_reset) renew the table's epoch and cancel
 * its jobs under the manager's lock. A job cancelled before its commit
 * leaves nothing on disk; one that committed first has its outputs deleted at
 * completion (its epoch is stale), and replaying the truncate record would
 * delete it too (its commitlog position is its inputs', below the record).
 * So a compaction never brings truncated data back.
 *
 * Failures (disk full, corruption): the inputs stay live and untouched; the
 * table gets no new job for a second, then the periodic check (5 s, with a
 * loop) or the next flush retries.
 *
 * Without a loop (tools, benchmarks, tests) completions are polled by
 * storage_apply and by the blocking calls (storage_compact,
 * storage_compaction_wait), which wait on a condition variable.
 */
#define _GNU_SOURCE
#include "storage_int.h"

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct cjob {
    cm_task task;
    cm_choice choice; /* what the strategy decided: outputs' level and size */
    uint8_t id[16];
    uint64_t uid, epoch, major_seq; /* major_seq 0: chosen by the strategy */
    bool tombstone;
    sst_bcache *forget; /* set: the inputs' cached blocks go when the job is freed */
    bool cancelled; /* written under c->mu, atomically: the worker polls it without the lock */
    char *dir;
    sstable **in, **out; /* referenced by the job */
    size_t nin, nout;
    int rc;
    struct cjob *next;     /* queue or done list (under mu) */
    struct cjob *all_next; /* every job not completed yet (loop side) */
} cjob;

typedef struct creq {
    bool settle;       /* else a major request */
    size_t n;          /* major: tables asked */
    uint8_t (*ids)[16];
    uint64_t *uids, *seqs;
    int rc;
    sib_err err;
    st_done_fn done;
    void *ctx;
    struct creq *next;
} creq;

struct st_compactor {
    storage *s;
    struct ev_loop *loop;
    ev_async async;
    ev_timer timer;
    pthread_t *thr;
    size_t nthr, started;
    pthread_mutex_t mu;
    pthread_cond_t cv, done_cv;
    bool stop;
    bool deferred;           /* loop side: no automatic compaction yet */
    cjob *q, *q_tail, *done; /* under mu */
    cjob *release;           /* under mu: completed jobs whose references a worker
                              * drops: the last one of an input frees its
                              * blocks on disk (the file is unlinked), which
                              * can take a writer without a loop 100s of ms */
    cjob *all;               /* loop side */
    size_t njobs;            /* loop side: queued + running */
    cm_throttle throttle;
    creq *reqs;
};

/* ---- workers ---- */

static void job_free(cjob *j);

static void *cm_main(void *arg)
{
    sib_thread_setup("sib-compact", true);
    st_compactor *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->q && !c->release && !c->stop) pthread_cond_wait(&c->cv, &c->mu);
        if (c->release) {
            cjob *r = c->release;
            c->release = NULL;
            pthread_mutex_unlock(&c->mu);
            for (cjob *n; r; r = n) {
                n = r->next;
                job_free(r);
            }
            pthread_mutex_lock(&c->mu);
            continue;
        }
        if (!c->q) break;
        cjob *j = c->q;
        c->q = j->next;
        if (!c->q) c->q_tail = NULL;
        pthread_mutex_unlock(&c->mu);
        j->rc = cm_task_run(&j->task);
        pthread_mutex_lock(&c->mu);
        j->next = c->done;
        c->done = j;
        pthread_cond_broadcast(&c->done_cv);
        if (c->loop) ev_async_send(c->loop, &c->async);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void on_async(struct ev_loop *loop, ev_async *w, int revents) { st_compactor_poll(w->data); }

static void check_all(st_compactor *c);

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    st_compactor *c = w->data;
    st_compactor_poll(c);
    check_all(c);
}

/* Cassandra's concurrent_compactors default: min(disks, cores) clamped to
 * 2..8. Storage has one data directory, so this is 2 today. */
static size_t default_compactors(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t disks = 1, n = cores > 0 && (size_t)cores < disks ? (size_t)cores : disks;
    return SIB_MAX(SIB_MIN(n, (size_t)8), (size_t)2);
}

int st_compactor_start(st_compactor **out, storage *s, struct ev_loop *loop, sib_err *err)
{
    const storage_opts *o = storage_get_opts(s);
    st_compactor *c = calloc(1, sizeof *c);
    size_t n = o->concurrent_compactors > 0 ? (size_t)o->concurrent_compactors : default_compactors();
    if (!c || !(c->thr = calloc(n, sizeof *c->thr))) {
        free(c);
        return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    }
    c->s = s;
    c->loop = loop;
    c->nthr = n;
    c->deferred = o->compaction_deferred;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_cond_init(&c->done_cv, NULL);
    int mib = o->compaction_throughput_mib;
    cm_throttle_init(&c->throttle, mib < 0 ? 0 : mib == 0 ? 64 : mib);
    if (loop) {
        ev_async_init(&c->async, on_async);
        c->async.data = c;
        ev_async_start(loop, &c->async);
        ev_unref(loop);
        ev_timer_init(&c->timer, on_timer, 5., 5.);
        c->timer.data = c;
        ev_timer_start(loop, &c->timer);
        ev_unref(loop);
    }
    *out = c;
    for (; c->started < n; c->started++) {
        if (pthread_create(&c->thr[c->started], NULL, cm_main, c)) {
            st_compactor_stop(c);
            *out = NULL;
            return sib_err_set(err, SIB_ESERVER, "storage: cannot start a compaction thread");
        }
    }
    return 0;
}

static void req_finish(st_compactor *c, creq *r)
{
    if (r->done) r->done(r->ctx, r->rc, r->rc ? &r->err : NULL);
    free(r->ids);
    free(r->uids);
    free(r->seqs);
    free(r);
    if (c->loop && !c->reqs) ev_unref(c->loop);
}

/* A completed job's references go to a worker (see release), or are
 * dropped here once the workers are stopping. */
static void release_job(st_compactor *c, cjob *j)
{
    pthread_mutex_lock(&c->mu);
    bool inline_free = c->stop || !c->started;
    if (!inline_free) {
        j->next = c->release;
        c->release = j;
        pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    if (inline_free) job_free(j);
}

static void job_free(cjob *j)
{
    for (size_t i = 0; i < j->nin; i++) {
        if (j->forget) sst_bcache_forget(j->forget, j->in[i]);
        sst_unref(j->in[i]);
    }
    for (size_t i = 0; i < j->nout; i++) sst_unref(j->out[i]);
    cm_task_free_outputs(&j->task);
    free(j->in);
    free(j->out);
    free(j->dir);
    free(j);
}

void st_compactor_stop(st_compactor *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    for (cjob *j = c->all; j; j = j->all_next) __atomic_store_n(&j->cancelled, true, __ATOMIC_RELAXED);
    /* queued jobs never start: they complete as cancelled */
    for (cjob *j = c->q, *n; j; j = n) {
        n = j->next;
        j->rc = SIB_EAGAIN;
        j->next = c->done;
        c->done = j;
    }
    c->q = c->q_tail = NULL;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < c->started; i++) pthread_join(c->thr[i], NULL);
    st_compactor_poll(c);
    if (c->loop) {
        ev_ref(c->loop);
        ev_async_stop(c->loop, &c->async);
        ev_ref(c->loop);
        ev_timer_stop(c->loop, &c->timer);
    }
    while (c->reqs) {
        creq *r = c->reqs;
        c->reqs = r->next;
        if (!r->rc) r->rc = sib_err_set(&r->err, SIB_ESERVER, "storage: closed before compaction finished");
        req_finish(c, r);
    }
    cm_throttle_free(&c->throttle);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    pthread_cond_destroy(&c->done_cv);
    free(c->thr);
    free(c);
}

/* ---- submitting ---- */

static bool is_suspect(const st_table *t, const sstable *x)
{
    for (size_t i = 0; i < t->nsuspect; i++)
        if (t->suspect[i] == x) return true;
    return false;
}

static bool in_job(const st_compactor *c, const st_table *t, const sstable *x)
{
    if (is_suspect(t, x)) return true; /* as if always compacting: never picked */
    for (const cjob *j = c->all; j; j = j->all_next) {
        if (j->uid != t->uid) continue;
        for (size_t i = 0; i < j->nin; i++)
            if (j->in[i] == x) return true;
    }
    return false;
}

/* The oldest and newest write timestamps in t's memtables, active and
 * frozen (INT64_MAX and INT64_MIN when they hold nothing). */
static void mem_ts_range(const st_table *t, int64_t *min, int64_t *max)
{
    *min = INT64_MAX;
    *max = INT64_MIN;
    for (const st_mem *x = t->mem; x; x = x == t->mem ? t->frozen : x->next) {
        if (!memtable_partitions(&x->mt) || x->mt.min_ts == ST_NO_TIMESTAMP) continue;
        *min = SIB_MIN(*min, x->mt.min_ts);
        *max = SIB_MAX(*max, x->mt.max_ts);
    }
}

static int64_t mem_min_ts(const st_table *t)
{
    int64_t min, max;
    mem_ts_range(t, &min, &max);
    return min;
}

/* Starts a job over t->ssts[idx[0..ch->n)]. */
static int submit(st_compactor *c, st_table *t, const size_t *idx, const cm_choice *ch, uint64_t major_seq)
{
    size_t n = ch->n + ch->nexpired;
    bool tombstone = ch->tombstone;
    storage *s = c->s;
    const storage_opts *o = storage_get_opts(s);
    cjob *j = calloc(1, sizeof *j);
    if (!j || !(j->dir = strdup(t->dir)) || !(j->in = calloc(n, sizeof *j->in)) ||
        !(j->out = calloc(t->nssts ? t->nssts : 1, sizeof *j->out))) {
        if (j) free(j->dir), free(j->in), free(j);
        return SIB_ENOMEM;
    }
    memcpy(j->id, t->id, 16);
    j->uid = t->uid;
    j->epoch = t->epoch;
    j->major_seq = major_seq;
    j->tombstone = tombstone;
    j->choice = *ch;
    sst_clpos clpos = {0, 0};
    for (size_t k = 0; k < n; k++) {
        j->in[j->nin++] = t->ssts[idx[k]];
        sst_ref(t->ssts[idx[k]]);
        if (sst_clpos_cmp(sst_get_stats(t->ssts[idx[k]])->clpos, clpos) > 0) clpos = sst_get_stats(t->ssts[idx[k]])->clpos;
    }
    for (size_t i = 0; i < t->nssts; i++) {
        bool mine = false;
        for (size_t k = 0; k < n && !mine; k++) mine = idx[k] == i;
        if (mine) continue;
        j->out[j->nout++] = t->ssts[i];
        sst_ref(t->ssts[i]);
    }
    int64_t now = time(NULL);
    int64_t gcb = now - (int64_t)t->copts.gc_grace_seconds;
    cm_task *k = &j->task;
    k->dir = j->dir;
    k->inputs = j->in;
    k->ninputs = ch->n;
    k->drop = j->in + ch->n;
    k->ndrop = ch->nexpired;
    k->outside = j->out;
    k->noutside = j->nout;
    k->mem_min_ts = mem_min_ts(t);
    /* generations for every output it may write: the inputs' Data bytes
     * over the target size, plus slack for a split landing just past it */
    uint64_t in_bytes = 0;
    for (size_t i = 0; i < ch->n; i++) in_bytes += sst_get_stats(j->in[i])->data_file_bytes;
    k->max_output_bytes = ch->max_output_bytes;
    k->ngens = k->max_output_bytes ? (uint32_t)SIB_MIN(in_bytes / k->max_output_bytes + 2, 100000) : 1;
    k->shards = ch->shards;
    if (ch->shards > 1 && ch->n) {
        /* one output per shard the inputs' union range touches */
        int64_t first = INT64_MAX, last = INT64_MIN;
        for (size_t i = 0; i < ch->n; i++) {
            cm_sst x = cm_sst_of(j->in[i], false);
            first = SIB_MIN(first, x.first_token);
            last = SIB_MAX(last, x.last_token);
        }
        uint64_t span = (uint64_t)cm_ucs_shard_of(last, ch->shards) - cm_ucs_shard_of(first, ch->shards) + 1;
        k->ngens = (uint32_t)SIB_MIN(span + 1, 100000);
    }
    /* LCS's move: SSTables of one level going up with nothing to merge in
     * the level below (the pick took none of it), a lone one or up to 4 of
     * L1 and above (they cannot overlap each other there): each is linked
     * at its new level under a generation of its own, not rewritten, as
     * Cassandra's single_sstable_uplevel and RocksDB's trivial move do */
    uint32_t from = ch->n ? sst_get_stats(j->in[0])->level : 0;
    bool move = !major_seq && !tombstone && ch->n >= 1 && !ch->nexpired && from != ch->level &&
                (ch->n == 1 || (from >= 1 && ch->level == from + 1));
    for (size_t i = 0; move && i < ch->n; i++) {
        const sst_stats *st = sst_get_stats(j->in[i]);
        move = st->level == from &&
               (!k->max_output_bytes || st->data_file_bytes <= k->max_output_bytes + k->max_output_bytes / 4);
    }
    k->relevel = move;
    if (move && k->ngens < ch->n) k->ngens = (uint32_t)ch->n; /* small SSTables: one generation each */
    k->out_gen = t->next_gen;
    t->next_gen += k->ngens;
    k->wo.block_size = o->sstable_block_size;
    k->wo.level = ch->level;
    k->wo.fp_chance = o->bloom_filter_fp_chance;
    k->wo.clpos = clpos; /* what the inputs cover: replay and truncate records compare against it */
    k->now = (int32_t)SIB_MIN(now, INT32_MAX - 1);
    k->gc_before = (int32_t)SIB_MAX(SIB_MIN(gcb, INT32_MAX - 1), INT32_MIN + 1);
    k->throttle = &c->throttle;
    k->log = o->log;
    k->mu = &c->mu;
    k->cancelled = &j->cancelled;
    j->all_next = c->all;
    c->all = j;
    c->njobs++;
    t->cm_jobs++;
    char drops[64] = "";
    if (ch->nexpired) snprintf(drops, sizeof drops, "; dropping %zu fully expired SSTables unread", ch->nexpired);
    sib_log(o->log, SIB_INFO, "compaction: %s%s of %zu SSTables in %s -> generation %llu, L%u%s",
            major_seq ? "major compaction" : "compaction", tombstone ? " (tombstones)" : "", ch->n, t->dir,
            (unsigned long long)k->out_gen, ch->level, drops);
    pthread_mutex_lock(&c->mu);
    if (c->q_tail) c->q_tail->next = j;
    else c->q = j;
    c->q_tail = j;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void st_compaction_check(storage *s, st_table *t)
{
    st_compactor *c = storage_compactor(s);
    if (!c || c->stop || !t->dir || c->njobs >= c->nthr) return;
    size_t *idx = malloc((t->nssts ? t->nssts : 1) * sizeof *idx);
    cm_sst *v = malloc((t->nssts ? t->nssts : 1) * sizeof *v);
    if (!idx || !v) goto out;
    cm_choice ch;
    if (t->major_asked > t->major_done) {
        if (t->cm_jobs) goto out; /* the major waits for the running ones */
        size_t m = 0; /* a major takes every SSTable but the suspect ones */
        for (size_t i = 0; i < t->nssts; i++)
            if (!is_suspect(t, t->ssts[i])) idx[m] = i, v[m++] = cm_sst_of(t->ssts[i], false);
        cm_strategy_major(&t->copts, v, m, &ch);
        if (!m) t->major_done = t->major_asked;
        else if (submit(c, t, idx, &ch, t->major_asked))
            sib_log(storage_get_opts(s)->log, SIB_ERROR, "compaction: out of memory");
        goto out;
    }
    if (c->deferred || !t->copts.enabled || t->nssts < 1 || sib_mono_ns() < t->cm_retry_ns) goto out;
    int64_t now = time(NULL);
    /* UCS's buckets in disjoint shards run side by side: it picks again
     * while compactors are free; the others take one job per check */
    for (bool again = true; again && c->njobs < c->nthr;) {
        for (size_t i = 0; i < t->nssts; i++) v[i] = cm_sst_of(t->ssts[i], in_job(c, t, t->ssts[i]));
        cm_strategy_pick(t->cms, &t->copts, v, t->nssts, now,
                         (int32_t)SIB_MAX(now - t->copts.gc_grace_seconds, INT32_MIN + 1), mem_min_ts(t), idx, &ch);
        if (ch.n && ch.tombstone && sib_mono_ns() < t->tomb_retry_ns) { /* it could not purge last time */
            ch.n = 0;
            ch.tombstone = false;
            for (size_t i = 0; i < ch.nexpired; i++) idx[i] = idx[1 + i];
        }
        again = t->copts.kind == CM_UCS && ch.n > 0;
        if (ch.n + ch.nexpired && submit(c, t, idx, &ch, 0)) {
            sib_log(storage_get_opts(s)->log, SIB_ERROR, "compaction: out of memory");
            break;
        }
    }
out:
    free(idx);
    free(v);
}

static void check_all(st_compactor *c)
{
    size_t i = 0;
    for (st_table *t; c->njobs < c->nthr && (t = storage_table_next(c->s, &i));) st_compaction_check(c->s, t);
}

/* ---- completion ---- */

static void replace(storage *s, st_table *t, cjob *j)
{
    cm_task *tk = &j->task;
    for (size_t i = 0; i < tk->noutputs; i++) {
        if (st_ssts_insert(t, tk->outputs[i])) {
            /* the inputs stay in the read path (their mappings outlive the
             * unlinked files) beside the outputs inserted so far (the same
             * data: LWW reads it once), and all load at the next start */
            sib_log(storage_get_opts(s)->log, SIB_ERROR, "compaction: out of memory; %s is used from the next start",
                    sst_data_path(tk->outputs[i]));
            for (size_t x = i; x < tk->noutputs; x++) sst_unref(tk->outputs[x]);
            tk->noutputs = 0;
            t->srcver++;
            return;
        }
    }
    tk->noutputs = 0; /* the table owns the job's references now */
    size_t k = 0;
    for (size_t i = 0; i < t->nssts; i++) {
        bool in = false;
        for (size_t x = 0; x < j->nin && !in; x++) in = t->ssts[i] == j->in[x];
        if (in) sst_unref(t->ssts[i]); /* files already gone (cm_task_run) */
        else t->ssts[k++] = t->ssts[i];
    }
    t->nssts = k;
    t->srcver++;
    /* The inputs' blocks leave the block cache on the worker that drops the
     * job (release_job): forgetting an SSTable walks the whole cache, tens of
     * ms each with a cache of 512 MiB, and here a writer without a loop (or
     * the loop) would wait for it. Meanwhile nothing looks their blocks up
     * but readers still holding the inputs, for whom they are valid. */
    j->forget = storage_bcache(s);
}

static void note_done(st_compactor *c, st_table *t, cjob *j)
{
    storage_stats *tot = storage_totals(c->s);
    if (j->rc) {
        if (j->rc != SIB_EAGAIN) tot->compactions_failed++;
        return;
    }
    tot->compactions++;
    tot->compaction_bytes_read += j->task.bytes_read;
    tot->compaction_bytes_written += j->task.bytes_written;
    if (!t) return;
    t->compactions++;
    t->cm_bytes_read += j->task.bytes_read;
    t->cm_bytes_written += j->task.bytes_written;
    t->purged += j->task.purged;
    if (j->task.relevel) {
        t->cm_moves++;
        for (size_t i = 0; i < j->nin; i++) t->cm_moved_bytes += sst_get_stats(j->in[i])->data_file_bytes;
    } else if (j->tombstone) {
        t->cm_tombstone_bytes += j->task.bytes_written;
    } else {
        uint32_t L = SIB_MIN(j->choice.level, (uint32_t)ST_MAX_LEVELS - 1);
        t->cm_into[L] += j->task.bytes_written;
        t->cm_into_n[L]++;
        for (size_t i = 0; i < j->task.ninputs; i++) t->cm_into_l0[L] += sst_get_stats(j->in[i])->level == 0;
    }
}

static void answer_majors(st_compactor *c, const cjob *j)
{
    for (creq *r = c->reqs; r && j->major_seq; r = r->next)
        for (size_t i = 0; !r->settle && i < r->n; i++)
            if (r->uids[i] == j->uid && r->seqs[i] <= j->major_seq && j->rc && !r->rc) {
                r->rc = j->rc;
                r->err = j->task.err;
            }
}

/* A corrupt input (its Data path is in the error) leaves compaction for
 * good, as Cassandra's "suspect" SSTables: reads of its other partitions go
 * on, sibyl-verify reports it, an operator replaces it. */
static void mark_suspect(st_table *t, const cjob *j, sib_log *log)
{
    for (size_t i = 0; i < j->nin; i++) {
        if (!strstr(j->task.err.msg, sst_data_path(j->in[i])) || is_suspect(t, j->in[i])) continue;
        sstable **n = realloc(t->suspect, (t->nsuspect + 1) * sizeof *n);
        if (!n) return;
        t->suspect = n;
        t->suspect[t->nsuspect++] = j->in[i];
        sst_ref(j->in[i]);
        sib_log(log, SIB_ERROR, "compaction: %s is corrupt and will not be compacted again (run sibyl-verify)",
                sst_data_path(j->in[i]));
    }
}

static void complete(st_compactor *c, cjob *j)
{
    storage *s = c->s;
    sib_log *log = storage_get_opts(s)->log;
    st_table *t = storage_table_find(s, j->id);
    if (t && t->uid != j->uid) t = NULL; /* dropped (and maybe re-created) */
    bool live = t && t->epoch == j->epoch;
    if (t) {
        t->cm_jobs--;
        if (j->major_seq && j->major_seq > t->major_done) t->major_done = j->major_seq;
    }
    if (j->rc == 0 && live) {
        size_t nout = j->task.noutputs;
        int64_t last = INT64_MIN;
        for (size_t i = 0; i < nout; i++) last = SIB_MAX(last, sst_get_stats(j->task.outputs[i])->last_token);
        if (!j->major_seq) cm_strategy_compacted(t->cms, &j->choice, nout > 0, last);
        /* a single-SSTable tombstone compaction that purged nothing would be
         * picked again at once (older data elsewhere blocks the purge):
         * wait an interval (at least a minute) before the next one */
        if (j->tombstone && !j->task.purged)
            t->tomb_retry_ns = sib_mono_ns() + SIB_MAX(t->copts.tombstone_compaction_interval, 60) * 1000000000ll;
        replace(s, t, j);
        sib_log(log, SIB_INFO, "compaction: %zu SSTables in %s -> %zu (%llu bytes read, %llu written, %llu purged)",
                j->nin, j->dir, nout, (unsigned long long)j->task.bytes_read,
                (unsigned long long)j->task.bytes_written, (unsigned long long)j->task.purged);
    } else if (j->rc == 0) { /* committed, then truncated or dropped: discard */
        for (size_t i = 0; i < j->task.noutputs; i++) st_sst_delete(s, j->dir, j->task.outputs[i]);
        j->task.noutputs = 0;
        j->rc = SIB_EAGAIN;
    } else if (j->rc != SIB_EAGAIN) {
        sib_log(log, SIB_ERROR, "compaction: %s; the inputs stay live, retried later", j->task.err.msg);
        if (t) t->cm_retry_ns = sib_mono_ns() + 1000000000ll;
        if (t && j->rc == SIB_ECORRUPT) mark_suspect(t, j, log);
    }
    note_done(c, live ? t : NULL, j);
    answer_majors(c, j);
    char *dir = t ? NULL : strdup(j->dir);
    if (dir) st_flusher_rmdir(storage_flusher(s), dir); /* dropped: the directory goes once empty */
    for (cjob **pp = &c->all; *pp; pp = &(*pp)->all_next)
        if (*pp == j) {
            *pp = j->all_next;
            break;
        }
    c->njobs--;
    /* a dropped table's directory goes once its files do: those stay here */
    if (live && !dir) release_job(c, j);
    else job_free(j);
}

static bool req_ready(st_compactor *c, const creq *r)
{
    if (r->settle) return c->njobs == 0;
    for (size_t i = 0; i < r->n; i++) {
        st_table *t = storage_table_find(c->s, r->ids[i]);
        if (t && t->uid == r->uids[i] && t->major_done < r->seqs[i]) return false;
    }
    return true;
}

static void answer(st_compactor *c)
{
    for (creq **pp = &c->reqs; *pp;) {
        creq *r = *pp;
        if (!req_ready(c, r)) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        req_finish(c, r);
    }
}

void st_compactor_poll(st_compactor *c)
{
    pthread_mutex_lock(&c->mu);
    cjob *d = c->done;
    c->done = NULL;
    pthread_mutex_unlock(&c->mu);
    if (!d) return;
    for (cjob *n; d; d = n) {
        n = d->next;
        complete(c, d);
    }
    if (!c->stop) check_all(c);
    answer(c);
}

void st_compaction_reset(storage *s, st_table *t)
{
    st_compactor *c = storage_compactor(s);
    t->epoch = storage_next_epoch(s);
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    for (cjob *j = c->all; j; j = j->all_next)
        if (j->uid == t->uid) __atomic_store_n(&j->cancelled, true, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&c->mu);
}

void st_note_flush(storage *s, st_table *t, uint64_t bytes)
{
    storage_stats *tot = storage_totals(s);
    tot->flushes++;
    tot->flush_bytes += bytes;
    t->flushes++;
    t->flush_bytes += bytes;
    cm_strategy_flushed(t->cms, bytes);
}

/* ---- public ---- */

int st_table_set_options(st_table *t, const char *const *keys, const char *const *vals, size_t n,
                         int32_t gc_grace_seconds, sib_err *err)
{
    /* the map replaces the previous one whole: what it leaves out is the default */
    cm_options o;
    cm_options_default(&o);
    o.gc_grace_seconds = t->copts.gc_grace_seconds;
    bool other = false;
    int rc = cm_options_parse(&o, keys, vals, n, &other, err);
    if (rc) return rc;
    if (other) sib_log(storage_get_opts(t->s)->log, SIB_INFO, "compaction: %s runs SizeTieredCompactionStrategy", t->dir ? t->dir : "table");
    if (gc_grace_seconds >= 0) o.gc_grace_seconds = gc_grace_seconds;
    t->copts = o;
    st_compaction_check(t->s, t);
    return 0;
}

void storage_compaction_release(storage *s)
{
    st_compactor *c = storage_compactor_any(s);
    if (!c || !c->deferred) return;
    c->deferred = false;
    check_all(c);
}

int st_compaction_options_check(const char *const *keys, const char *const *vals, size_t n, sib_err *err)
{
    cm_options o;
    cm_options_default(&o);
    bool other;
    return cm_options_parse(&o, keys, vals, n, &other, err);
}

static creq *req_new(st_compactor *c, bool settle, st_done_fn done, void *ctx)
{
    creq *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->settle = settle;
    r->done = done;
    r->ctx = ctx;
    return r;
}

/* Adds r; without a loop, waits until it is answered. */
static void req_add(st_compactor *c, creq *r)
{
    if (c->loop && !c->reqs) ev_ref(c->loop);
    r->next = c->reqs;
    c->reqs = r;
    check_all(c);
    answer(c);
    if (c->loop) return;
    for (;;) {
        creq **pp = &c->reqs;
        while (*pp && *pp != r) pp = &(*pp)->next;
        if (!*pp) return;
        if (!c->njobs) { /* nothing can answer it any more (out of memory) */
            *pp = r->next;
            r->rc = sib_err_set(&r->err, SIB_ENOMEM, "storage: cannot start the compaction");
            req_finish(c, r);
            return;
        }
        pthread_mutex_lock(&c->mu);
        while (!c->done) pthread_cond_wait(&c->done_cv, &c->mu);
        pthread_mutex_unlock(&c->mu);
        st_compactor_poll(c);
    }
}

int storage_compact(storage *s, const uint8_t table_id[16], st_done_fn done, void *ctx, sib_err *err)
{
    st_compactor *c = storage_compactor_any(s);
    if (!c) return sib_err_set(err, SIB_EINVAL, "storage: compaction needs a data directory");
    creq *r = req_new(c, false, done, ctx);
    size_t n = 0, i = 0;
    for (st_table *t; (t = storage_table_next(s, &i));) n++;
    if (!r || !(r->ids = calloc(n ? n : 1, 16)) || !(r->uids = calloc(n ? n : 1, 8)) ||
        !(r->seqs = calloc(n ? n : 1, 8))) {
        if (r) free(r->ids), free(r->uids), free(r->seqs);
        free(r);
        return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    }
    i = 0;
    for (st_table *t; (t = storage_table_next(s, &i));) {
        if (table_id && memcmp(t->id, table_id, 16)) continue;
        memcpy(r->ids[r->n], t->id, 16);
        r->uids[r->n] = t->uid;
        r->seqs[r->n++] = ++t->major_asked;
    }
    req_add(c, r);
    return 0;
}

int storage_compaction_wait(storage *s, st_done_fn done, void *ctx, sib_err *err)
{
    st_compactor *c = storage_compactor_any(s);
    if (!c) return sib_err_set(err, SIB_EINVAL, "storage: compaction needs a data directory");
    if (!c->loop) st_flusher_drain(storage_flusher(s)); /* flush completions may start compactions */
    creq *r = req_new(c, true, done, ctx);
    if (!r) return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    req_add(c, r);
    return 0;
}

void storage_set_compaction_throughput(storage *s, int mib_per_s)
{
    st_compactor *c = storage_compactor_any(s);
    if (c) cm_throttle_set(&c->throttle, mib_per_s > 0 ? mib_per_s : 0);
}

size_t storage_compaction_progress(storage *s, st_compaction_info *out, size_t max)
{
    st_compactor *c = storage_compactor_any(s);
    size_t n = 0;
    for (cjob *j = c ? c->all : NULL; j; j = j->all_next, n++) {
        if (n >= max) continue;
        st_compaction_info *x = &out[n];
        memcpy(x->table_id, j->id, 16);
        x->bytes_done = __atomic_load_n(&j->task.bytes_done, __ATOMIC_RELAXED);
        x->bytes_total = __atomic_load_n(&j->task.bytes_total, __ATOMIC_RELAXED);
        x->ninputs = j->nin;
        x->major = j->major_seq != 0;
        x->tombstone = j->tombstone;
    }
    return n;
}

static st_sst_brief brief_of(const cm_sst *v)
{
    return (st_sst_brief){.data_path = sst_data_path(v->sst), .min_ts = v->min_ts, .max_ts = v->max_ts,
                          .max_ldt = v->max_ldt == SST_NO_LDT ? ST_NO_DELETION_TIME : v->max_ldt,
                          .disk_bytes = v->size};
}

void st_expiry_blockers_free(st_expiry_blocker *b, size_t n)
{
    for (size_t i = 0; b && i < n; i++) free(b[i].blocked);
    free(b);
}

int st_table_expired_blockers(st_table *t, int64_t now_s, st_expiry_blocker **out, size_t *nout, sib_err *err)
{
    *out = NULL;
    *nout = 0;
    size_t n = t->nssts;
    int32_t gc_before = (int32_t)SIB_MAX(now_s - t->copts.gc_grace_seconds, INT32_MIN + 1);
    int64_t mem, mem_max;
    mem_ts_range(t, &mem, &mem_max);
    cm_sst *v = calloc(n + 1, sizeof *v);
    /* one slot per SSTable and one for the memtables, each with room for all */
    st_expiry_blocker *b = calloc(n + 1, sizeof *b);
    if (!v || !b) goto oom;
    for (size_t i = 0; i < n; i++) v[i] = cm_sst_of(t->ssts[i], false);
    size_t k = 0;
    for (size_t i = 0; i <= n; i++) { /* i == n: the memtables */
        bool mem_slot = i == n;
        if (mem_slot ? mem == INT64_MAX : !cm_sst_live(&v[i], gc_before)) continue;
        int64_t min_ts = mem_slot ? mem : v[i].min_ts;
        st_expiry_blocker *x = &b[k];
        for (size_t e = 0; e < n; e++) {
            if (e == i || !cm_sst_gcable(&v[e], gc_before) || min_ts > v[e].max_ts) continue;
            if (!x->blocked && !(x->blocked = calloc(n, sizeof *x->blocked))) goto oom;
            x->blocked[x->nblocked++] = brief_of(&v[e]);
        }
        if (!x->nblocked) continue;
        x->blocker = mem_slot ? (st_sst_brief){.min_ts = mem, .max_ts = mem_max, .max_ldt = ST_NO_DELETION_TIME}
                              : brief_of(&v[i]);
        k++;
    }
    free(v);
    *out = b;
    *nout = k;
    return 0;
oom:
    free(v);
    st_expiry_blockers_free(b, n + 1);
    return sib_err_set(err, SIB_ENOMEM, "expired blockers: out of memory");
}

void st_compaction_levels(const st_table *t, st_table_stats *out)
{
    _Static_assert(ST_MAX_LEVELS == CM_MAX_LEVELS, "one level count");
    out->leveled = t->copts.kind == CM_LCS;
    out->unified = t->copts.kind == CM_UCS;
    out->fanout = t->copts.fanout_size;
    memset(out->levels, 0, sizeof out->levels);
    memset(out->max_overlap, 0, sizeof out->max_overlap);
    if (out->unified && t->nssts) {
        cm_sst *v = malloc(t->nssts * sizeof *v);
        uint32_t *lvl = malloc(t->nssts * sizeof *lvl);
        size_t ov[CM_UCS_LEVELS];
        if (v && lvl) {
            for (size_t i = 0; i < t->nssts; i++) v[i] = cm_sst_of(t->ssts[i], false);
            cm_ucs_levels(t->cms, &t->copts, v, t->nssts, lvl, ov);
            for (size_t i = 0; i < t->nssts; i++) out->levels[SIB_MIN(lvl[i], ST_MAX_LEVELS - 1)]++;
            for (size_t L = 0; L < CM_UCS_LEVELS; L++) {
                size_t slot = SIB_MIN(L, (size_t)ST_MAX_LEVELS - 1);
                out->max_overlap[slot] = SIB_MAX(out->max_overlap[slot], (uint64_t)ov[L]);
            }
        }
        free(v);
        free(lvl);
        return;
    }
    if (!out->leveled || !t->nssts) return;
    cm_sst *v = malloc(t->nssts * sizeof *v);
    uint32_t *lvl = malloc(t->nssts * sizeof *lvl);
    if (v && lvl) {
        for (size_t i = 0; i < t->nssts; i++) v[i] = cm_sst_of(t->ssts[i], false);
        cm_lcs_levels(v, t->nssts, lvl);
        for (size_t i = 0; i < t->nssts; i++) out->levels[lvl[i]]++;
    }
    free(v);
    free(lvl);
}

void st_compaction_running(storage *s, const st_table *t, uint64_t *running)
{
    st_compactor *c = storage_compactor_any(s);
    *running = 0;
    for (cjob *j = c ? c->all : NULL; j; j = j->all_next)
        if (j->uid == t->uid) (*running)++;
}
