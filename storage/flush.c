/* flush.c: memtable -> SSTable, on a worker thread; the SSTable set of a
 * table; commitlog segment release.
 *
 * Freeze (loop thread): the active st_mem gets the current commitlog
 * position as its bound, moves to the head of the table's frozen list and a
 * fresh one takes writes at once. A job {mem ref, dir, gen, bound} goes to
 * the worker.
 *
 * Worker: walks the frozen memtable (immutable: only the loop writes, and
 * only to active memtables) in partition/row order and writes generation
 * `gen` with clpos = bound (sstable.h writes the TOC last), then opens it.
 * Rows go through compaction.h's cm_row_compact with nothing purgeable
 * (the one shadowing/LWW implementation reads and compaction share): what a
 * deletion of the same memtable shadows is dropped, the deletion itself is
 * kept, so this is safe. Then
 * it queues the job as done and wakes the loop (ev_async; without a loop the
 * caller polls).
 *
 * Completion (loop thread, st_flusher_poll): the SSTable goes live at the
 * head of t->ssts, the frozen st_mem leaves the list (readers holding a
 * reference keep it), t->flushed advances, the table's compaction strategy
 * is asked for work (compact.c), flush requests whose sequence is reached
 * get their callback, and commitlog segments are released.
 *
 * The same FIFO thread also runs unlinks (deleted SSTables, released
 * segments), snapshot hard links (auto_snapshot) and the rmdir of a dropped
 * table's directory, in the order they were queued: links before the
 * unlinks of the files they keep, the rmdir after the unlinks. Loading a
 * table whose directory is gone (an rmdir of a drop raced a re-creation)
 * recreates it. Unfinished compactions (their txn logs) are rolled forward
 * or back before a table directory is scanned. A flush
 * of a memtable that a truncate/drop discarded meanwhile is deleted. A
 * failed flush (e.g. disk full) leaves its memtable frozen and readable, its
 * segments kept, and is retried by the next freeze of that table.
 *
 * Segment release: a segment goes (strictly oldest first) when every table
 * dirty in it either flushed past it (flushed.seg > segment id) or holds no
 * memtable data at all; the unlink runs on the worker.
 *
 * Replay and double application: each SSTable records the commitlog
 * position it covers (Statistics clpos); replay skips a table's mutations
 * logged before its highest clpos, and a truncate/drop record at position P
 * deletes the SSTables with clpos <= P (they hold only older data). New
 * segment ids start above every clpos, so positions compare across restarts.
 */
#define _GNU_SOURCE
#include "storage_int.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fl_job {
    st_mem *m; /* NULL: an unlink job */
    uint8_t id[16];
    char *dir;
    uint64_t gen, seq;
    sst_writer_opts wo;
    int rc;
    sib_err err;
    sstable *sst;
    uint64_t bytes; /* all components written */
    char **paths;   /* unlink these (or, with links, link paths[i] -> links[i]) */
    char **links;
    size_t npaths;
    char *rmdir;    /* then remove this directory (empty or not there) */
    struct fl_job *next;
} fl_job;

typedef struct fl_req {
    uint64_t seq;
    st_done_fn done;
    void *ctx;
    int rc; /* first failure among the flushes it waits for */
    sib_err err;
    struct fl_req *next;
} fl_req;

struct st_flusher {
    storage *s;
    struct ev_loop *loop;
    ev_async async;
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv, done_cv;
    bool stop, started;
    fl_job *q, *q_tail, *done; /* under mu */
    size_t running;            /* under mu */
    size_t inflight;           /* loop side */
    uint64_t seq_queued, seq_done;
    fl_req *reqs;
};

/* ---- st_mem ---- */

st_mem *st_mem_create(void)
{
    st_mem *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    if (memtable_init(&m->mt)) {
        free(m);
        return NULL;
    }
    m->refs = 1;
    return m;
}

st_mem *st_mem_create_in(storage *s)
{
    st_mem *m = st_mem_create();
    if (m) m->mt.ra.pf = m->mt.ix.pf = storage_prefault(s);
    return m;
}

/* Atomic: read pool workers take and drop references on frozen memtables
 * (readpool.c) while the loop takes and drops its own. */
void st_mem_ref(st_mem *m) { __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED); }

void st_mem_unref(st_mem *m)
{
    if (!m || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
    memtable_free(&m->mt);
    free(m);
}

/* ---- writing a memtable ---- */

/* Rows go through cm_row_compact with nothing purgeable (compaction.h):
 * what the memtable's own deletions shadow is dropped, the deletions stay;
 * a partition whose content all went is not written. */
typedef struct conv {
    mt_rowview view;
    cm_rowmerge m;
    sst_rt *rts;
    size_t caprts;
} conv;

/* Writes one row (in: a memtable row view) under the partition's deletions;
 * the partition header goes first, with the first row that survives. */
static int write_row(sst_writer *w, conv *c, const sst_row *in, sst_del pdel, const sst_rt *rts, size_t nrt, bool *hdr,
                     sst_del wpdel, const sst_rt *wrts, size_t nw, const mt_rec *p, sib_err *err)
{
    sst_row out;
    cm_purge none = cm_purge_none();
    int k = cm_row_compact(&c->m, &none, in, cm_active_deletion(pdel, rts, nrt, in->ck, in->cklen, in->is_static), &out);
    if (k < 0) return sib_err_set(err, SIB_ENOMEM, "flush: out of memory");
    if (!k) return 0;
    if (!*hdr) {
        *hdr = true;
        int rc = sst_write_partition(w, mt_rec_pk(p), p->pklen, wpdel, wrts, nw, err);
        if (rc) return rc;
    }
    return sst_write_row(w, &out, err);
}

static int write_mt_row(sst_writer *w, conv *c, const mt_row *r, bool is_static, sst_del pdel, const sst_rt *rts,
                        size_t nrt, bool *hdr, sst_del wpdel, const sst_rt *wrts, size_t nw, const mt_rec *p,
                        sib_err *err)
{
    sst_row in;
    if (!mt_row_view(&c->view, r, is_static, &in)) return sib_err_set(err, SIB_ENOMEM, "flush: out of memory");
    return write_row(w, c, &in, pdel, rts, nrt, hdr, wpdel, wrts, nw, p, err);
}

static int write_part(sst_writer *w, conv *c, const mt_rec *rec, sib_err *err)
{
    sst_del none_del = {SST_NO_TS, SST_NO_LDT};
    if (rec->kind == MT_KV) {
        sst_row in;
        bool hdr = false;
        if (!mt_kv_view(&c->view, rec, &in)) return sib_err_set(err, SIB_ENOMEM, "flush: out of memory");
        int rc = write_row(w, c, &in, none_del, NULL, 0, &hdr, none_del, NULL, 0, rec, err);
        return rc || !hdr ? rc : sst_write_partition_end(w, err);
    }
    const mt_part *p = (const mt_part *)rec;
    sst_del pdel = {p->del_ts, p->del_ldt};
    if (pdel.ts == ST_NO_TIMESTAMP) pdel = none_del;
    uint32_t nrt = p->x ? p->x->nrt : 0;
    if (nrt > c->caprts) {
        sst_rt *n = realloc(c->rts, nrt * sizeof *n);
        if (!n) return sib_err_set(err, SIB_ENOMEM, "flush: out of memory");
        c->rts = n;
        c->caprts = nrt;
    }
    for (uint32_t i = 0; i < nrt; i++) {
        const mt_rt *m = &p->x->rts[i];
        c->rts[i].start = (sst_bound){m->start.key, m->start.len, m->start.incl, m->start.unbounded};
        c->rts[i].end = (sst_bound){m->end.key, m->end.len, m->end.incl, m->end.unbounded};
        c->rts[i].del = (sst_del){m->del.ts, m->del.ldt};
    }
    cm_purge none = cm_purge_none();
    sst_del wpdel = pdel;
    const sst_rt *wrts;
    size_t nw;
    if (cm_part_compact(&c->m, &none, &wpdel, c->rts, nrt, &wrts, &nw))
        return sib_err_set(err, SIB_ENOMEM, "flush: out of memory");
    bool hdr = wpdel.ts != SST_NO_TS || nw;
    int rc = hdr ? sst_write_partition(w, p->pk, p->h.pklen, wpdel, wrts, nw, err) : 0;
    if (!rc && p->x && p->x->static_row)
        rc = write_mt_row(w, c, p->x->static_row, true, pdel, c->rts, nrt, &hdr, wpdel, wrts, nw, rec, err);
    bt_cur cur;
    for (bt_first(&p->rows, &cur); !rc && bt_cur_valid(&cur); bt_cur_next(&cur))
        rc = write_mt_row(w, c, (const mt_row *)bt_cur_get(&cur), false, pdel, c->rts, nrt, &hdr, wpdel, wrts, nw, rec,
                          err);
    return rc || !hdr ? rc : sst_write_partition_end(w, err);
}

static void run_flush(fl_job *j)
{
    sst_writer *w = NULL;
    conv c = {0};
    j->wo.expected_keys = memtable_partitions(&j->m->mt);
    if (j->m->mt.min_ts != ST_NO_TIMESTAMP) j->wo.ts_base = j->m->mt.min_ts; /* shortest deltas */
    /* a drop of an earlier table with this id queued an rmdir before us (same
     * FIFO thread): the directory may be gone by now */
    if (mkdir(j->dir, 0755) && errno != EEXIST) {
        j->rc = sib_err_errno(&j->err, "flush: mkdir %s", j->dir);
        return;
    }
    j->rc = sst_writer_create(&w, j->dir, j->gen, &j->wo, &j->err);
    const mt_rec *r;
    for (size_t pos = 0; !j->rc && (r = memtable_at(&j->m->mt, &pos)); pos++) j->rc = write_part(w, &c, r, &j->err);
    if (!j->rc) j->rc = sst_writer_finish(w, &j->bytes, &j->err);
    sst_writer_destroy(w);
    if (!j->rc) j->rc = sst_open(&j->sst, j->dir, j->gen, &j->err);
    mt_rowview_free(&c.view);
    cm_rowmerge_free(&c.m);
    free(c.rts);
}

/* ---- the worker ---- */

/* Unlinks in order (a TOC before its components), then fsyncs each
 * directory once so a deleted TOC stays deleted across a crash. */
static void unlink_all(char **paths, size_t n)
{
    char prev[4096] = "";
    for (size_t i = 0; i < n; i++) unlink(paths[i]);
    for (size_t i = 0; i < n; i++) {
        const char *slash = strrchr(paths[i], '/');
        size_t dl = slash ? (size_t)(slash - paths[i]) : 0;
        if (!dl || dl >= sizeof prev || (!strncmp(prev, paths[i], dl) && !prev[dl])) continue;
        memcpy(prev, paths[i], dl);
        prev[dl] = 0;
        int fd = open(prev, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
    }
}

/* Snapshot links: a missing source (component not written) is skipped;
 * each target directory is created first. */
static void link_all(char **src, char **dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *slash = strrchr(dst[i], '/');
        if (slash) {
            *slash = 0;
            char *p = dst[i];
            for (char *q = strchr(p + 1, '/'); q; q = strchr(q + 1, '/')) {
                *q = 0;
                mkdir(p, 0755);
                *q = '/';
            }
            mkdir(p, 0755);
            *slash = '/';
        }
        if (link(src[i], dst[i])) { /* a component that was never written: nothing to keep */
        }
    }
    if (n) {
        char *slash = strrchr(dst[0], '/');
        if (slash) {
            *slash = 0;
            int fd = open(dst[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd >= 0) fsync(fd), close(fd);
            *slash = '/';
        }
    }
}

static void *fl_main(void *arg)
{
    sib_thread_setup("sib-flush", true);
    st_flusher *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->q && !f->stop) pthread_cond_wait(&f->cv, &f->mu);
        if (!f->q) break;
        fl_job *j = f->q;
        f->q = j->next;
        if (!f->q) f->q_tail = NULL;
        f->running++;
        pthread_mutex_unlock(&f->mu);
        if (j->m) run_flush(j);
        if (j->links) link_all(j->paths, j->links, j->npaths);
        else unlink_all(j->paths, j->npaths);
        if (j->rmdir) st_layout_rmdir(j->rmdir);
        pthread_mutex_lock(&f->mu);
        f->running--;
        j->next = f->done;
        f->done = j;
        pthread_cond_broadcast(&f->done_cv);
        if (f->loop) ev_async_send(f->loop, &f->async);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static void on_async(struct ev_loop *loop, ev_async *w, int revents) { st_flusher_poll(w->data); }

int st_flusher_start(st_flusher **out, storage *s, struct ev_loop *loop, sib_err *err)
{
    st_flusher *f = calloc(1, sizeof *f);
    if (!f) return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    f->s = s;
    f->loop = loop;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    pthread_cond_init(&f->done_cv, NULL);
    if (loop) {
        ev_async_init(&f->async, on_async);
        f->async.data = f;
        ev_async_start(loop, &f->async);
        ev_unref(loop); /* in-flight jobs take a reference */
    }
    if (pthread_create(&f->thr, NULL, fl_main, f)) {
        st_flusher_stop(f);
        return sib_err_set(err, SIB_ESERVER, "storage: cannot start the flush thread");
    }
    f->started = true;
    *out = f;
    return 0;
}

static void job_free(fl_job *j)
{
    for (size_t i = 0; i < j->npaths; i++) {
        free(j->paths[i]);
        if (j->links) free(j->links[i]);
    }
    free(j->paths);
    free(j->links);
    free(j->rmdir);
    free(j->dir);
    free(j);
}

static void enqueue(st_flusher *f, fl_job *j)
{
    pthread_mutex_lock(&f->mu);
    if (f->q_tail) f->q_tail->next = j;
    else f->q = j;
    f->q_tail = j;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    if (f->loop && !f->inflight) ev_ref(f->loop);
    f->inflight++;
}

void st_flusher_unlink(st_flusher *f, char **paths, size_t n)
{
    fl_job *j = calloc(1, sizeof *j);
    if (!j) { /* cannot hand off: do it here */
        for (size_t i = 0; i < n; i++) {
            unlink(paths[i]);
            free(paths[i]);
        }
        free(paths);
        return;
    }
    j->paths = paths;
    j->npaths = n;
    enqueue(f, j);
}

void st_flusher_rmdir(st_flusher *f, char *path)
{
    fl_job *j = calloc(1, sizeof *j);
    if (!j) {
        st_layout_rmdir(path);
        free(path);
        return;
    }
    j->rmdir = path;
    enqueue(f, j);
}

void st_flusher_link(st_flusher *f, char **src, char **dst, size_t n)
{
    fl_job *j = calloc(1, sizeof *j);
    if (!j) {
        link_all(src, dst, n);
        for (size_t i = 0; i < n; i++) free(src[i]), free(dst[i]);
        free(src);
        free(dst);
        return;
    }
    j->paths = src;
    j->links = dst;
    j->npaths = n;
    enqueue(f, j);
}

void st_flusher_stop(st_flusher *f)
{
    if (!f) return;
    if (f->started) {
        /* A flush that completes while draining may hand over segment
         * unlinks: drain again until nothing is left in flight. */
        do st_flusher_drain(f);
        while (f->inflight);
        pthread_mutex_lock(&f->mu);
        f->stop = true;
        pthread_cond_signal(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thr, NULL);
    }
    if (f->loop) {
        if (!f->inflight) ev_ref(f->loop);
        ev_async_stop(f->loop, &f->async);
    }
    for (fl_req *r = f->reqs, *n; r; r = n) {
        n = r->next;
        if (r->done) r->done(r->ctx, SIB_ESERVER, NULL);
        free(r);
    }
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    pthread_cond_destroy(&f->done_cv);
    free(f);
}

void st_flusher_drain(st_flusher *f)
{
    pthread_mutex_lock(&f->mu);
    while (f->q || f->running) pthread_cond_wait(&f->done_cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
    st_flusher_poll(f);
}

/* ---- completion (loop) ---- */

static void frozen_remove(st_table *t, st_mem *m)
{
    for (st_mem **pp = &t->frozen; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            m->next = NULL;
            st_mem_unref(m); /* the list's reference */
            t->srcver++;
            return;
        }
    }
}

int st_ssts_insert(st_table *t, sstable *sst)
{
    if (t->nssts == t->capssts) {
        size_t cap = t->capssts ? t->capssts * 2 : 8;
        sstable **n = realloc(t->ssts, cap * sizeof *n);
        if (!n) return SIB_ENOMEM;
        t->ssts = n;
        t->capssts = cap;
    }
    size_t i = 0; /* newest (highest gen) first */
    while (i < t->nssts && sst_gen(t->ssts[i]) > sst_gen(sst)) i++;
    memmove(t->ssts + i + 1, t->ssts + i, (t->nssts - i) * sizeof *t->ssts);
    t->ssts[i] = sst;
    t->nssts++;
    if (sst_clpos_cmp(sst_get_stats(sst)->clpos, t->flushed) > 0) t->flushed = sst_get_stats(sst)->clpos;
    t->srcver++;
    return 0;
}

static void complete(st_flusher *f, fl_job *j)
{
    storage *s = f->s;
    sib_log *log = storage_get_opts(s)->log;
    st_table *t = storage_table_find(s, j->id);
    for (fl_req *r = f->reqs; j->rc && r; r = r->next) {
        if (r->seq >= j->seq && !r->rc) {
            r->rc = j->rc;
            r->err = j->err;
        }
    }
    if (j->rc) {
        sib_log(log, SIB_ERROR, "flush: %s; the memtable stays frozen and is retried by the next flush",
                j->err.msg);
    } else if (!t || j->m->dropped || st_ssts_insert(t, j->sst)) {
        st_sst_delete(s, j->dir, j->sst); /* truncated or dropped meanwhile */
        if (t) frozen_remove(t, j->m);
    } else {
        sib_log(log, SIB_DEBUG, "flush: %s is live", sst_data_path(j->sst));
        frozen_remove(t, j->m);
        st_note_flush(s, t, j->bytes);
        st_compaction_check(s, t);
    }
    st_mem_unref(j->m); /* the job's reference */
}

void st_flusher_poll(st_flusher *f)
{
    pthread_mutex_lock(&f->mu);
    fl_job *d = f->done, *rev = NULL;
    f->done = NULL;
    pthread_mutex_unlock(&f->mu);
    for (fl_job *n; d; d = n) { /* back into queue order */
        n = d->next;
        d->next = rev;
        rev = d;
    }
    bool flushed = false;
    for (fl_job *n; rev; rev = n) {
        n = rev->next;
        if (rev->m) {
            complete(f, rev);
            if (rev->seq > f->seq_done) f->seq_done = rev->seq;
            flushed = true;
        }
        job_free(rev);
        if (--f->inflight == 0 && f->loop) ev_unref(f->loop);
    }
    if (!flushed) return;
    st_release_segments(f->s);
    for (fl_req **pp = &f->reqs; *pp;) {
        fl_req *r = *pp;
        if (r->seq > f->seq_done) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        if (r->done) r->done(r->ctx, r->rc, r->rc ? &r->err : NULL);
        free(r);
    }
}

/* ---- freezing and flush requests ---- */

static int queue_flush(storage *s, st_table *t, st_mem *m, sib_err *err)
{
    st_flusher *f = storage_flusher(s);
    fl_job *j = calloc(1, sizeof *j);
    if (!j || !(j->dir = strdup(t->dir))) {
        free(j);
        return sib_err_set(err, SIB_ENOMEM, "flush: out of memory");
    }
    memcpy(j->id, t->id, 16);
    j->m = m;
    st_mem_ref(m);
    j->gen = t->next_gen++;
    /* What the SSTable covers, for replay and for releasing commitlog
     * segments: what came before m's bound, but not past the first segment
     * of an older memtable of the table that is not an SSTable yet (its
     * flush in flight, or failed and waiting for a retry). Otherwise a
     * retried flush that fails again after this one succeeds (a full disk)
     * would let a restart skip, and the release delete, that memtable's
     * writes. Its writes and then m's are replayed again instead, which LWW
     * makes harmless. */
    j->wo.clpos = m->bound;
    for (st_mem *o = m->next; o; o = o->next)
        if (o->first_seg && sst_clpos_cmp((sst_clpos){o->first_seg, 0}, j->wo.clpos) < 0)
            j->wo.clpos = (sst_clpos){o->first_seg, 0};
    j->wo.block_size = storage_get_opts(s)->sstable_block_size;
    j->wo.fp_chance = storage_get_opts(s)->bloom_filter_fp_chance;
    j->seq = ++f->seq_queued;
    enqueue(f, j);
    return 0;
}

int st_table_retry_flushes(storage *s, st_table *t, sib_err *err)
{
    if (!t->dir || !storage_flusher(s)) return 0;
    for (st_mem *m = t->frozen; m; m = m->next) /* frozen, and in no flush job: a failed flush */
        if (__atomic_load_n(&m->refs, __ATOMIC_RELAXED) == 1) {
            int rc = queue_flush(s, t, m, err);
            if (rc) return rc;
        }
    return 0;
}

int st_table_freeze(storage *s, st_table *t, sib_err *err)
{
    if (!t->dir || !storage_flusher(s)) return 0;
    int rc = st_table_retry_flushes(s, t, err);
    if (rc) return rc;
    if (!memtable_partitions(&t->mem->mt)) return 0;
    st_mem *fresh = st_mem_create_in(s);
    if (!fresh) return sib_err_set(err, SIB_ENOMEM, "flush: out of memory");
    st_mem *m = t->mem;
    memtable_reserve(&fresh->mt, memtable_partitions(&m->mt));
    m->frozen = true;
    m->bound = clog_position(storage_clog(s));
    m->next = t->frozen;
    t->frozen = m;
    t->mem = fresh;
    t->srcver++;
    return queue_flush(s, t, m, err);
}

int storage_flush(storage *s, const uint8_t table_id[16], st_done_fn done, void *ctx, sib_err *err)
{
    st_flusher *f = storage_flusher(s);
    if (!f) return sib_err_set(err, SIB_EINVAL, "storage: flush needs a data directory");
    clog_flush(storage_clog(s)); /* writes queued this loop iteration are flushed too */
    int rc = 0;
    if (table_id) {
        st_table *t = storage_table_find(s, table_id);
        if (t) rc = st_table_freeze(s, t, err);
    } else {
        size_t i = 0;
        for (st_table *t; !rc && (t = storage_table_next(s, &i));) rc = st_table_freeze(s, t, err);
    }
    if (rc) return rc;
    if (f->seq_done >= f->seq_queued) {
        /* Nothing to write: segments that hold nothing unflushed (such as
         * the empty spares a crash leaves) can go now. */
        st_release_segments(s);
        if (done) done(ctx, 0, NULL);
        return 0;
    }
    fl_req *r = calloc(1, sizeof *r);
    if (!r) return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    r->seq = f->seq_queued;
    r->done = done;
    r->ctx = ctx;
    r->next = f->reqs;
    f->reqs = r;
    if (!f->loop) st_flusher_drain(f);
    return 0;
}

/* ---- loading, dropping ---- */

int st_table_load(storage *s, st_table *t, sib_err *err)
{
    const char *dd = storage_get_opts(s)->data_dir;
    if (!dd) return 0;
    int rc = st_layout_find(s, t->id, &t->dir, &t->named, err);
    if (rc) return rc;
    uint64_t *gens = NULL, maxg = 0;
    size_t n = 0;
    struct stat st;
    if (!stat(t->dir, &st)) { /* else a new table: its first flush or st_table_set_name makes the folder */
        /* unfinished compactions first: they decide which generations are live */
        if ((rc = cm_txn_recover(t->dir, storage_get_opts(s)->log, NULL, err))) return rc;
        rc = sst_dir_scan(t->dir, &gens, &n, &maxg, storage_get_opts(s)->log, err);
        if (rc && errno == ENOENT) rc = 0, gens = NULL, n = 0, maxg = 0; /* an rmdir queued by a drop of this id ran */
        if (rc) return rc;
    }
    t->next_gen = maxg + 1;
    for (size_t i = 0; !rc && i < n; i++) {
        sstable *sst;
        sib_err oerr = {0};
        if ((rc = sst_open(&sst, t->dir, gens[i], &oerr))) {
            if (rc == SIB_ENOMEM) *err = oerr;
            else rc = st_layout_damaged(t, gens[i], &oerr, err);
            continue;
        }
        if (st_ssts_insert(t, sst)) {
            sst_unref(sst);
            rc = sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
        }
    }
    free(gens);
    return rc;
}

void st_sst_delete(storage *s, const char *dir, sstable *sst)
{
    sst_bcache_forget(storage_bcache(s), sst); /* its blocks leave the cache now */
    char **paths = malloc(5 * sizeof *paths), **rest = malloc(4 * sizeof *rest);
    if (!paths || !rest || sst_files(dir, sst_gen(sst), paths)) { /* no memory: delete on the last unref instead */
        free(paths);
        free(rest);
        sst_mark_obsolete(sst);
    } else {
        /* two jobs, each ending with a directory fsync: Data.db's removal is
         * durable before the TOC's, so a crash between them leaves a TOC
         * without Data.db, which the start-up sweep reads as a deletion cut
         * short (never an intact SSTable that lost its TOC) */
        memcpy(rest, paths + 1, 4 * sizeof *rest);
        st_flusher_unlink(storage_flusher(s), paths, 1); /* readers keep their mappings */
        st_flusher_unlink(storage_flusher(s), rest, 4);
    }
    sst_unref(sst);
}

void st_table_drop_ssts(st_table *t, sst_clpos upto)
{
    size_t k = 0;
    for (size_t i = 0; i < t->nssts; i++) {
        sstable *x = t->ssts[i];
        if (sst_clpos_cmp(sst_get_stats(x)->clpos, upto) <= 0) {
            st_sst_delete(t->s, t->dir, x);
        } else {
            t->ssts[k++] = x;
        }
    }
    t->nssts = k;
    t->flushed = (sst_clpos){0, 0};
    for (size_t i = 0; i < k; i++)
        if (sst_clpos_cmp(sst_get_stats(t->ssts[i])->clpos, t->flushed) > 0) t->flushed = sst_get_stats(t->ssts[i])->clpos;
    t->srcver++;
}

static bool covered(void *arg, const uint8_t id[16], uint64_t seg)
{
    st_table *t = storage_table_find(arg, id);
    if (!t) return true;
    if (t->flushed.seg > seg) return true;
    return !t->frozen && !memtable_partitions(&t->mem->mt);
}

void st_release_segments(storage *s)
{
    char **paths;
    size_t n = clog_release(storage_clog(s), covered, s, &paths);
    if (n) st_flusher_unlink(storage_flusher(s), paths, n);
    else free(paths);
}
