/* commitlog.c: the append-only log that makes a write durable before it is acked.
 *
 * Files: <commitlog_dir>/CommitLog-<version>-<id>.log, ids increasing (the
 * first id of a run is max(existing id + 1, wall clock ms), as Cassandra).
 *
 * Segment header (version 2: 44 bytes, big-endian):
 *   | off | size | field                                   |
 *   |   0 |    4 | magic 0x5342434C ("SBCL")               |
 *   |   4 |    2 | format version (2)                      |
 *   |   6 |    2 | flags (0)                               |
 *   |   8 |    8 | segment id                              |
 *   |  16 |    8 | predecessor: id of the segment made just before this one (0 = none known) |
 *   |  24 |    8 | cut segment id (0 = none)               |
 *   |  32 |    8 | cut offset                              |
 *   |  40 |    4 | crc32c of bytes 0..39                   |
 * Version 1 segments (20 bytes: magic, version, flags, id, crc of 0..15)
 * still replay, without the checks below.
 * Entries follow back to back until end of file:
 *   |   0 |    4 | payload length L (> 0)                  |
 *   |   4 |    4 | crc32c of the 4 length bytes            |
 *   |   8 |    L | payload (store.c: version, kind, body)  |
 *   | 8+L |    4 | crc32c of the payload                   |
 * The length has its own checksum so a torn or flipped length is recognised
 * before it is trusted. One storage_apply = one entry, so a batch replays
 * all-or-nothing. An entry is at most segment_size / 2 (Cassandra's
 * max_mutation_size).
 *
 * Segments are created aside (".tmp"), header written and fsynced, renamed,
 * and the directory fsynced, by the sync thread ahead of need (a "spare"), so
 * switching segments does not block the loop. Leftover .tmp files are removed
 * at open. Segments are never rewritten (but for the header of the run's
 * first, still empty segment: see "cut" below).
 *
 * Replay reads every segment present at open, in id order, and is strict,
 * as Cassandra's replayer is without cassandra.commitlog.ignorereplayerrors:
 *  - damage (a bad header, a torn or corrupt entry) in the LAST segment that
 *    holds entries is a torn tail (the writes of the crash): what precedes
 *    it replays, the rest is logged as lost;
 *  - damage in a segment followed by a segment holding entries, or a
 *    missing segment (a segment's predecessor is absent while an older one
 *    is present: release goes strictly by id, so that gap is a loss), stops
 *    start-up with the segment, the offset and the bytes lost, unless
 *    ignore_replay_errors (commitlog_ignore_replay_errors) skips it;
 *  - an accepted cut is remembered: the run's first segment records
 *    (cut segment id, cut offset) in its header, rewritten while it is still
 *    empty, so the next start knows that damage was already accepted and
 *    does not stop on it once newer segments hold entries.
 * Ids are not contiguous across runs (a run starts at the wall clock in
 * ms), so gaps are found through the predecessor field, not the ids. Each segment
 * records which tables have data in it; clog_release forgets the oldest
 * segments, strictly in id order, once every such table has flushed past
 * them (storage unlinks them off the loop). In-order release keeps a
 * truncate/drop record alive as long as any older segment holding data it
 * covers. Segment ids are above every SSTable's recorded position (min_id).
 *
 * Coalescing (with a loop): an entry is built at the end of `pbuf`
 * (clog_queue_begin), and clog_entry_queue frames it there and records it
 * (cl_pend); nothing reaches the file yet. An ev_prepare
 * watcher (on_prepare) writes everything queued during the loop iteration
 * with ONE write() per segment touched, then, in queue order, applies each
 * entry (store.c's callback: memtable) and acknowledges it: `done` at once
 * in periodic mode, after the fsync (clog_wait) in batch/group mode. So a
 * write is acked only once its entry is in the file, and the memtable never
 * holds a mutation whose entry failed to reach it: a failed write cuts the
 * file back and fails every entry of the batch with that error, applying
 * none. Whoever needs the queue on disk now (an immediate append such as a
 * truncate record, storage_sync, storage_flush, close) calls clog_flush:
 * same write and apply, but `done`s are parked in `acks` and run from the
 * next on_prepare, never from inside the caller. Without a loop
 * (tools/tests) an entry is written, applied and acked inside the call.
 * The prepare watcher has priority EV_MAXPRI: libev queues every prepare
 * watcher of an iteration together and ev_invoke_pending runs the pending
 * watchers from the highest priority down, so on_prepare (and the replies
 * its `done`s queue) runs before the CQL server's default-priority reply
 * flush of the same iteration (test_storage.c checks this order).
 *
 * Threads: the loop thread appends with write() (into the page cache) and
 * publishes `written`. The sync thread fsyncs: every sync_period_ms in any
 * mode, at once when someone waits (batch), or once per group_window_ms
 * (group commit). It publishes `synced` and wakes the loop with ev_async; the
 * loop then calls the waiters whose position is covered. Retired segment fds
 * are closed by the sync thread after their last fsync. A failed fsync is
 * sticky: waiters and later appends fail (Cassandra's commit_failure_policy
 * "stop" for writes).
 */
#define _GNU_SOURCE
#include "storage_int.h"

#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CL_MAGIC 0x5342434Cu
#define CL_VERSION 2
#define CL_HDR_LEN 44
#define CL_V1_HDR_LEN 20
#define CL_FRAME 12 /* len + len crc + payload crc */
/* Segments made ahead. Two, because making one (a file and a directory
 * fsync) can wait behind the periodic fsync of a whole period's writes or
 * the kernel's writeback: with one spare, a switch then waited for it on
 * the loop (a write latency spike every sync period). */
#define CL_SPARES 2
/* Periodic mode: writeback of what was written is started this often
 * between fsyncs (see start_writeback). The calling thread does the
 * kernel's work of queueing the pages: once a second that was several ms
 * of CPU in one go (50 MB at 300k writes/s), long enough to hold a core
 * the loop or its clients wanted. Every 100 ms it still took a core for
 * about half a millisecond at 150k writes/s, often enough to show in the
 * write p99 on a 2-core machine: every 10 ms, in pieces a tenth the size,
 * the p99 at 150k writes/s fell from 0.61-0.85 to 0.41-0.50 ms (six
 * alternating pairs of runs; docs/performance.md, session 11). Every 3 ms
 * was no better. */
#define CL_WRITEBACK_MS 10

typedef struct cl_seg {
    uint64_t id;
    uint64_t prev;    /* header: the predecessor's id (0 = unknown) */
    uint64_t cut_id, cut_off; /* header: damage the run accepted */
    bool has_entries; /* replay: the file is longer than its header */
    char *path;
    int fd; /* loop's write fd; -1 once retired or for old segments */
    uint8_t (*dirty)[16];
    size_t ndirty, capdirty;
    struct cl_seg *next;
} cl_seg;

typedef struct cl_waiter {
    uint64_t pos;
    st_done_fn done;
    void *ctx;
} cl_waiter;

/* A queued entry: framed bytes pbuf[off, off + len). */
typedef struct cl_pend {
    size_t off, len;
    clog_apply_fn apply;
    void *arg;
    int64_t hint;
    st_done_fn done;
    void *ctx;
} cl_pend;

/* A `done` parked by clog_flush until on_prepare (rc != 0: failed, ack_err). */
typedef struct cl_ack {
    st_done_fn done;
    void *ctx;
    int rc;
} cl_ack;

struct clog {
    clog_opts o;
    /* loop side */
    cl_seg *segs, *segs_tail, *cur, *replaying;
    size_t nsegs; /* in segs: live segments */
    uint64_t first_own_id;
    uint64_t prev_run_last; /* highest segment id found at open (0 = none) */
    uint64_t cur_off, pos;
    sib_buf ebuf;
    cl_waiter *w;
    size_t wcap, whead, wn;
    ev_async async;
    bool has_async, reffed, failed;
    uint64_t bytes, entries, segments_created, writes;
    /* coalescing (loop thread): entries queued this iteration, parked acks */
    sib_buf pbuf;
    size_t qoff; /* where in pbuf the entry being built starts (clog_queue_begin) */
    cl_pend *pend;
    size_t npend, cappend;
    cl_ack *acks;
    size_t nacks, capacks;
    sib_err ack_err; /* the error of the last failed parked ack */
    ev_prepare prep;
    ev_idle idle;
    unsigned prep_iter; /* ev_iteration() when on_prepare last ran */
    bool prep_reffed;
    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv, done_cv;
    pthread_t thr;
    bool thr_started, stop, want_spare, making_spare;
    bool sync_idle; /* the sync thread waits with nothing due: a write must wake it */
    uint64_t written, synced, req, next_id, syncs;
    int sync_fd, sync_err;
    uint64_t sync_off; /* bytes written to sync_fd's segment (published by the loop) */
    int *retired;
    size_t nretired, capretired;
    cl_seg *spares[CL_SPARES]; /* ready segments, lowest id first */
    int nspares;
    int64_t last_sync_ns;
    int64_t last_wb_ns;  /* periodic mode: last writeback start (see start_writeback) */
    uint64_t wb_pos, writebacks;
};

/* ---- files ---- */

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_full(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int mkdir_p(const char *path, sib_err *err)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return sib_err_set(err, SIB_EINVAL, "commitlog: bad directory '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST) return sib_err_errno(err, "commitlog: mkdir %s", buf);
        buf[i] = c;
    }
    return 0;
}

static char *seg_path(const clog *cl, uint64_t id, const char *suffix)
{
    size_t n = strlen(cl->o.dir) + 64;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/CommitLog-%d-%" PRIu64 ".log%s", cl->o.dir, CL_VERSION, id, suffix);
    return p;
}

static void seg_free(cl_seg *s)
{
    if (!s) return;
    free(s->path);
    free(s->dirty);
    free(s);
}

static void encode_header(uint8_t h[CL_HDR_LEN], const cl_seg *s)
{
    put_be32(h, CL_MAGIC);
    put_be16(h + 4, CL_VERSION);
    put_be16(h + 6, 0);
    put_be64(h + 8, s->id);
    put_be64(h + 16, s->prev);
    put_be64(h + 24, s->cut_id);
    put_be64(h + 32, s->cut_off);
    put_be32(h + 40, sib_crc32c(0, h, 40));
}

/* The predecessor a new segment records: within a run, ids are taken one
 * by one (a failed creation gives its id back), so it is id - 1; the run's
 * first segment follows the highest id found at open. */
static uint64_t seg_prev(const clog *cl, uint64_t id)
{
    return id == cl->first_own_id ? cl->prev_run_last : id - 1;
}

/* Creates segment `id`: tmp file, header, fsync, rename, fsync dir. */
static cl_seg *seg_create(clog *cl, uint64_t id, sib_err *err)
{
    cl_seg *s = calloc(1, sizeof *s);
    char *tmp = seg_path(cl, id, ".tmp");
    if (s) s->path = seg_path(cl, id, "");
    if (!s || !tmp || !s->path) {
        sib_err_set(err, SIB_ENOMEM, "commitlog: out of memory");
        goto fail;
    }
    s->id = id;
    s->prev = seg_prev(cl, id);
    s->fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        sib_err_errno(err, "commitlog: create %s", tmp);
        goto fail;
    }
    uint8_t h[CL_HDR_LEN];
    encode_header(h, s);
    /* Blocks for the whole segment, past the end of the file (its size
     * still grows with each append, so replay is unchanged). Without them
     * each append to a new page reserved a block under the inode's
     * allocation lock, which the kernel's writeback of the earlier pages
     * holds while it allocates theirs: the loop waited 3-5 ms on it once a
     * second. Only a hint (a file system may not support it). */
    (void)fallocate(s->fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)cl->o.segment_size);
    if (write_full(s->fd, h, sizeof h) < 0 || fdatasync(s->fd) < 0 || rename(tmp, s->path) < 0 ||
        fsync_dir(cl->o.dir) < 0) {
        sib_err_errno(err, "commitlog: create segment %s", s->path);
        close(s->fd);
        unlink(tmp);
        goto fail;
    }
    free(tmp);
    return s;
fail:
    free(tmp);
    seg_free(s);
    return NULL;
}

/* ---- sync thread ---- */

static int64_t ms_ns(int ms) { return (int64_t)ms * 1000000; }

static void cv_wait_until(clog *cl, int64_t deadline_ns)
{
    struct timespec ts = {(time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000)};
    pthread_cond_timedwait(&cl->cv, &cl->mu, &ts);
}

/* Called with mu held; returns with it held. */
static void do_sync(clog *cl)
{
    uint64_t target = __atomic_load_n(&cl->written, __ATOMIC_ACQUIRE);
    int fd = cl->sync_fd;
    size_t nr = cl->nretired;
    int retired[64];
    if (nr > SIB_ARRAY_LEN(retired)) nr = SIB_ARRAY_LEN(retired);
    if (nr) {
        memcpy(retired, cl->retired, nr * sizeof(int));
        memmove(cl->retired, cl->retired + nr, (cl->nretired - nr) * sizeof(int));
        cl->nretired -= nr;
    }
    int64_t start = sib_mono_ns();
    pthread_mutex_unlock(&cl->mu);
    int e = 0;
    for (size_t i = 0; i < nr; i++) { /* older segments first: positions are ordered */
        if (fdatasync(retired[i]) < 0 && !e) e = errno;
        close(retired[i]);
    }
    if (fd >= 0 && fdatasync(fd) < 0 && !e) e = errno;
    pthread_mutex_lock(&cl->mu);
    cl->last_sync_ns = start;
    cl->syncs++;
    if (e && !cl->sync_err) __atomic_store_n(&cl->sync_err, e, __ATOMIC_RELEASE);
    if (!e && target > cl->synced && !cl->nretired) cl->synced = target;
    pthread_cond_broadcast(&cl->done_cv);
    if (cl->has_async) ev_async_send(cl->o.loop, &cl->async);
}

static void make_spare(clog *cl)
{
    cl->want_spare = false;
    cl->making_spare = true;
    uint64_t id = cl->next_id++;
    pthread_mutex_unlock(&cl->mu);
    sib_err err;
    cl_seg *s = seg_create(cl, id, &err);
    if (!s) sib_log(cl->o.log, SIB_WARN, "%s (the loop will create the next segment itself)", err.msg);
    pthread_mutex_lock(&cl->mu);
    cl->making_spare = false;
    if (!s && cl->next_id == id + 1) cl->next_id = id; /* the next segment's predecessor stays exact */
    pthread_cond_broadcast(&cl->done_cv);
    if (cl->stop && s) { /* raced with close: give the file back */
        close(s->fd);
        unlink(s->path);
        seg_free(s);
        return;
    }
    if (s) {
        cl->spares[cl->nspares++] = s;
        cl->want_spare = cl->nspares < CL_SPARES; /* on failure: the loop makes its own */
    }
}

/* Called with mu held; returns with it held. Periodic mode fsyncs once a
 * period (10 s by default): a whole period's writes (hundreds of MB at
 * full speed) then hit the disk at once, and the loop's appends stalled
 * behind that burst (a write p99 of 20 ms in one second of ten). Starting
 * the writeback every CL_WRITEBACK_MS without waiting for it (RocksDB's
 * wal_bytes_per_sync does the same) spreads the I/O; the fsync is still
 * what makes data durable, once a period as before. */
static void start_writeback(clog *cl)
{
    int fd = cl->sync_fd;
    uint64_t pos = __atomic_load_n(&cl->written, __ATOMIC_ACQUIRE);
    /* Whole pages only: the loop is appending to the last, partly written
     * page, and a write to a page under writeback waits for the disk where
     * the device wants stable pages (seen as 1-5 ms stalls of the loop,
     * once a second). The fsync takes that page along, once a period. */
    uint64_t end = __atomic_load_n(&cl->sync_off, __ATOMIC_ACQUIRE) & ~(uint64_t)4095;
    pthread_mutex_unlock(&cl->mu);
    if (fd >= 0 && end) sync_file_range(fd, 0, (off_t)end, SYNC_FILE_RANGE_WRITE); /* only the sync thread closes it */
    pthread_mutex_lock(&cl->mu);
    cl->last_wb_ns = sib_mono_ns();
    cl->wb_pos = pos;
    cl->writebacks++;
}

static void *sync_main(void *arg)
{
    clog *cl = arg;
    /* Not niced like flush and compaction: the loop waits on this thread
     * for a spare segment when it runs out, and for the fsync in batch and
     * group mode. */
    sib_thread_setup("sib-clsync", false);
    pthread_mutex_lock(&cl->mu);
    for (;;) {
        bool dirty = __atomic_load_n(&cl->written, __ATOMIC_ACQUIRE) > cl->synced || cl->nretired;
        if (cl->stop) {
            if (dirty && !cl->sync_err) { do_sync(cl); continue; }
            break;
        }
        if (cl->want_spare && cl->nspares < CL_SPARES) { make_spare(cl); continue; }
        int64_t now = sib_mono_ns(), due;
        if (cl->req > cl->synced && !cl->sync_err)
            due = cl->o.sync == ST_SYNC_GROUP ? cl->last_sync_ns + ms_ns(cl->o.group_window_ms) : now;
        else if (dirty && !cl->sync_err) {
            due = cl->last_sync_ns + ms_ns(cl->o.sync_period_ms);
            int64_t wb = SIB_MAX(cl->last_wb_ns, cl->last_sync_ns) + ms_ns(CL_WRITEBACK_MS);
            if (cl->o.sync == ST_SYNC_PERIODIC && wb < due) { /* (writes do not wake us: look every CL_WRITEBACK_MS) */
                if (now < wb) due = wb;
                else if (__atomic_load_n(&cl->written, __ATOMIC_ACQUIRE) > cl->wb_pos) {
                    start_writeback(cl);
                    continue;
                } else {
                    cl->last_wb_ns = now; /* nothing new: look again in a second */
                    continue;
                }
            }
        }
        else {
            /* Nothing written since the last sync. The loop publishes
             * `written` without the mutex, then reads sync_idle; we set
             * sync_idle, then read `written` again (both seq_cst): one of us
             * sees the other, so a write never waits for an unrelated wake-up
             * to be synced (it once did, in periodic mode after an idle spell). */
            __atomic_store_n(&cl->sync_idle, true, __ATOMIC_SEQ_CST);
            if (cl->sync_err || __atomic_load_n(&cl->written, __ATOMIC_SEQ_CST) <= cl->synced)
                pthread_cond_wait(&cl->cv, &cl->mu); /* (after a failed fsync nothing more is synced) */
            __atomic_store_n(&cl->sync_idle, false, __ATOMIC_SEQ_CST);
            continue;
        }
        if (now < due) {
            cv_wait_until(cl, due);
            continue;
        }
        do_sync(cl);
    }
    pthread_mutex_unlock(&cl->mu);
    return NULL;
}

/* ---- completions (loop thread) ---- */

static void waiter_push(clog *cl, uint64_t pos, st_done_fn done, void *ctx, int *rc)
{
    if (cl->wn == cl->wcap) {
        size_t cap = cl->wcap ? cl->wcap * 2 : 64;
        cl_waiter *n = malloc(cap * sizeof *n);
        if (!n) {
            *rc = SIB_ENOMEM;
            return;
        }
        for (size_t i = 0; i < cl->wn; i++) n[i] = cl->w[(cl->whead + i) % cl->wcap];
        free(cl->w);
        cl->w = n;
        cl->wcap = cap;
        cl->whead = 0;
    }
    cl->w[(cl->whead + cl->wn) % cl->wcap] = (cl_waiter){pos, done, ctx};
    cl->wn++;
    *rc = 0;
}

static void run_completions(clog *cl)
{
    pthread_mutex_lock(&cl->mu);
    uint64_t synced = cl->synced;
    int e = cl->sync_err;
    pthread_mutex_unlock(&cl->mu);
    sib_err err;
    if (e) {
        cl->failed = true;
        sib_err_set(&err, SIB_EIO, "commitlog: fsync failed: %s", strerror(e));
    }
    while (cl->wn) {
        cl_waiter w = cl->w[cl->whead];
        if (w.pos > synced && !e) break;
        cl->whead = (cl->whead + 1) % cl->wcap;
        cl->wn--;
        if (w.done) w.done(w.ctx, w.pos > synced ? SIB_EIO : 0, w.pos > synced ? &err : NULL);
    }
    if (!cl->wn && cl->reffed) {
        ev_unref(cl->o.loop);
        cl->reffed = false;
    }
}

static void on_async(struct ev_loop *loop, ev_async *w, int revents)
{
    run_completions(w->data);
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents);
static void on_idle(struct ev_loop *loop, ev_idle *w, int revents);

/* ---- open / close ---- */

static bool parse_seg_name(const char *name, uint64_t *id, bool *tmp)
{
    int ver;
    unsigned long long v;
    int n = 0;
    if (sscanf(name, "CommitLog-%d-%llu.log%n", &ver, &v, &n) != 2 || n == 0) return false;
    if (strcmp(name + n, "") == 0) *tmp = false;
    else if (strcmp(name + n, ".tmp") == 0) *tmp = true;
    else return false;
    *id = v;
    return true;
}

static int seg_cmp(const void *a, const void *b)
{
    const cl_seg *x = *(cl_seg *const *)a, *y = *(cl_seg *const *)b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void seg_append(clog *cl, cl_seg *s)
{
    s->next = NULL;
    if (cl->segs_tail) cl->segs_tail->next = s;
    else cl->segs = s;
    cl->segs_tail = s;
    cl->nsegs++;
}

/* Lists existing segments (sorted into cl->segs), removes .tmp leftovers. */
static int scan_dir(clog *cl, uint64_t *max_id, sib_err *err)
{
    DIR *d = opendir(cl->o.dir);
    if (!d) return sib_err_errno(err, "commitlog: opendir %s", cl->o.dir);
    cl_seg **v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    *max_id = 0;
    while ((de = readdir(d))) {
        uint64_t id;
        bool tmp;
        if (!parse_seg_name(de->d_name, &id, &tmp)) continue;
        if (tmp) {
            char *p = seg_path(cl, id, ".tmp");
            if (p) unlink(p);
            free(p);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            cl_seg **nv = realloc(v, cap * sizeof *nv);
            if (!nv) { rc = sib_err_set(err, SIB_ENOMEM, "commitlog: out of memory"); break; }
            v = nv;
        }
        cl_seg *s = calloc(1, sizeof *s);
        if (!s || !(s->path = seg_path(cl, id, ""))) {
            free(s);
            rc = sib_err_set(err, SIB_ENOMEM, "commitlog: out of memory");
            break;
        }
        s->id = id;
        s->fd = -1;
        v[n++] = s;
        if (id > *max_id) *max_id = id;
    }
    closedir(d);
    if (n) qsort(v, n, sizeof *v, seg_cmp);
    for (size_t i = 0; i < n; i++) {
        if (rc) seg_free(v[i]);
        else seg_append(cl, v[i]);
    }
    free(v);
    return rc;
}

int clog_open(clog **out, const clog_opts *o, sib_err *err)
{
    *out = NULL;
    if (!o->dir) return sib_err_set(err, SIB_EINVAL, "commitlog: no commitlog directory");
    if (o->segment_size < 4096) return sib_err_set(err, SIB_EINVAL, "commitlog: segment size too small");
    clog *cl = calloc(1, sizeof *cl);
    if (!cl) return sib_err_set(err, SIB_ENOMEM, "commitlog: out of memory");
    cl->o = *o;
    cl->o.dir = strdup(o->dir);
    cl->sync_fd = -1;
    sib_buf_init(&cl->ebuf);
    sib_buf_init(&cl->pbuf);
    pthread_mutex_init(&cl->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cl->cv, &ca);
    pthread_cond_init(&cl->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc;
    uint64_t max_id = 0;
    if (!cl->o.dir) { rc = sib_err_set(err, SIB_ENOMEM, "commitlog: out of memory"); goto fail; }
    if ((rc = mkdir_p(cl->o.dir, err)) || (rc = scan_dir(cl, &max_id, err))) goto fail;
    uint64_t now_ms = (uint64_t)(sib_now_us() / 1000);
    cl->next_id = SIB_MAX(SIB_MAX(max_id, o->min_id) + 1, now_ms);
    cl->first_own_id = cl->next_id;
    cl->prev_run_last = max_id;
    if (!(cl->cur = seg_create(cl, cl->next_id++, err))) { rc = err ? err->code : SIB_EIO; goto fail; }
    seg_append(cl, cl->cur);
    cl->segments_created = 1;
    cl->cur_off = CL_HDR_LEN;
    cl->sync_fd = cl->cur->fd;
    cl->want_spare = true;
    cl->last_sync_ns = sib_mono_ns();
    if (o->loop) {
        ev_async_init(&cl->async, on_async);
        cl->async.data = cl;
        ev_async_start(o->loop, &cl->async);
        ev_unref(o->loop); /* only pending completions keep the loop alive */
        cl->has_async = true;
        ev_prepare_init(&cl->prep, on_prepare);
        cl->prep.data = cl;
        ev_set_priority(&cl->prep, EV_MAXPRI); /* before the CQL reply flush (priority 0) */
        ev_prepare_start(o->loop, &cl->prep);
        ev_unref(o->loop); /* only queued entries keep the loop alive (prep_ref) */
        ev_idle_init(&cl->idle, on_idle);
        cl->prep_iter = ev_iteration(o->loop) - 1;
    }
    if (pthread_create(&cl->thr, NULL, sync_main, cl)) {
        rc = sib_err_set(err, SIB_ESERVER, "commitlog: cannot start sync thread");
        goto fail;
    }
    cl->thr_started = true;
    *out = cl;
    return 0;
fail:
    clog_close(cl);
    return rc ? rc : SIB_EIO;
}

void clog_close(clog *cl)
{
    if (!cl) return;
    if (cl->has_async) { /* write what is queued and ack it before the final sync */
        on_prepare(cl->o.loop, &cl->prep, 0);
        if (!cl->prep_reffed) ev_ref(cl->o.loop);
        ev_prepare_stop(cl->o.loop, &cl->prep);
        ev_idle_stop(cl->o.loop, &cl->idle);
    }
    if (cl->thr_started) {
        pthread_mutex_lock(&cl->mu);
        cl->stop = true;
        pthread_cond_signal(&cl->cv);
        pthread_mutex_unlock(&cl->mu);
        pthread_join(cl->thr, NULL);
    }
    if (cl->wn) run_completions(cl); /* everything written is synced now, or failed */
    if (cl->has_async) {
        if (!cl->reffed) ev_ref(cl->o.loop);
        ev_async_stop(cl->o.loop, &cl->async);
    }
    for (size_t i = 0; i < cl->nretired; i++) close(cl->retired[i]);
    for (int i = 0; i < cl->nspares; i++) {
        close(cl->spares[i]->fd);
        unlink(cl->spares[i]->path);
        seg_free(cl->spares[i]);
    }
    for (cl_seg *s = cl->segs, *n; s; s = n) {
        n = s->next;
        if (s->fd >= 0) close(s->fd);
        seg_free(s);
    }
    free(cl->retired);
    free(cl->w);
    free(cl->pend);
    free(cl->acks);
    sib_buf_free(&cl->pbuf);
    sib_buf_free(&cl->ebuf);
    pthread_mutex_destroy(&cl->mu);
    pthread_cond_destroy(&cl->cv);
    pthread_cond_destroy(&cl->done_cv);
    free((char *)cl->o.dir);
    free(cl);
}

/* ---- appending (loop thread) ---- */

/* Starts an entry at b's end: room for its length and length crc. */
static void entry_start(sib_buf *b)
{
    uint8_t *h = sib_buf_reserve(b, 8);
    if (h) {
        memset(h, 0, 8);
        b->len += 8;
    }
}

sib_buf *clog_entry_begin(clog *cl)
{
    sib_buf_reset(&cl->ebuf);
    entry_start(&cl->ebuf);
    return &cl->ebuf;
}

sib_buf *clog_queue_begin(clog *cl)
{
    if (!cl->has_async) return clog_entry_begin(cl);
    cl->qoff = cl->pbuf.len;
    entry_start(&cl->pbuf);
    return &cl->pbuf;
}

size_t clog_max_entry(const clog *cl) { return cl->o.segment_size / 2; }
uint64_t clog_pos(const clog *cl) { return cl->pos; }
bool clog_needs_wait(const clog *cl) { return cl->o.sync != ST_SYNC_PERIODIC; }

static int switch_segment(clog *cl, sib_err *err)
{
    pthread_mutex_lock(&cl->mu);
    /* A spare being made already has its id: wait for it rather than take a
     * higher id now and the lower one later (replay goes by id). This only
     * blocks when the sync thread is a whole segment behind. */
    while (!cl->nspares && cl->making_spare) pthread_cond_wait(&cl->done_cv, &cl->mu);
    cl_seg *s = cl->nspares ? cl->spares[0] : NULL;
    if (s) memmove(cl->spares, cl->spares + 1, (size_t)--cl->nspares * sizeof cl->spares[0]);
    uint64_t id = s ? 0 : cl->next_id++;
    cl->want_spare = true;
    pthread_cond_signal(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
    if (!s) {
        sib_log(cl->o.log, SIB_WARN, "commitlog: no spare segment (creation failed), creating one on the loop");
        if (!(s = seg_create(cl, id, err))) return err ? err->code : SIB_EIO;
    }
    pthread_mutex_lock(&cl->mu);
    int rc = 0;
    if (cl->nretired == cl->capretired) {
        size_t cap = cl->capretired ? cl->capretired * 2 : 8;
        int *n = realloc(cl->retired, cap * sizeof *n);
        if (n) {
            cl->retired = n;
            cl->capretired = cap;
        } else rc = SIB_ENOMEM;
    }
    if (!rc) {
        cl->retired[cl->nretired++] = cl->cur->fd;
        cl->sync_fd = s->fd;
        __atomic_store_n(&cl->sync_off, (uint64_t)CL_HDR_LEN, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&cl->mu);
    if (rc) { /* keep writing the old segment's successor later; drop the new one */
        close(s->fd);
        unlink(s->path);
        seg_free(s);
        return sib_err_set(err, SIB_ENOMEM, "commitlog: out of memory");
    }
    cl->cur->fd = -1;
    seg_append(cl, s);
    cl->cur = s;
    cl->cur_off = CL_HDR_LEN;
    cl->segments_created++;
    return 0;
}

/* Refuses appends once the log failed (a failed fsync is sticky). */
static int check_usable(clog *cl, sib_err *err)
{
    if (cl->failed) return sib_err_set(err, SIB_EIO, "commitlog: failed earlier; writes are refused");
    /* A flag read per write: no mutex, which the sync thread may hold while
     * it is preempted (the loop then blocked behind it for milliseconds). */
    int se = __atomic_load_n(&cl->sync_err, __ATOMIC_ACQUIRE);
    if (se) {
        cl->failed = true;
        return sib_err_set(err, SIB_EIO, "commitlog: fsync failed earlier (%s); writes are refused", strerror(se));
    }
    return 0;
}

/* Frames the entry that starts at b->p + off and ends at b's end (length,
 * its crc, payload crc). */
static int frame_entry(clog *cl, sib_buf *b, size_t off, sib_err *err)
{
    if (b->oom) return sib_err_set(err, SIB_ENOMEM, "commitlog: out of memory building entry");
    size_t len = b->len - off - 8;
    if (len + CL_FRAME > clog_max_entry(cl))
        return sib_err_set(err, SIB_ETOOBIG, "commitlog: mutation of %zu bytes is larger than the maximum %zu",
                           len, clog_max_entry(cl) - CL_FRAME);
    uint8_t *e = b->p + off;
    put_be32(e, (uint32_t)len);
    uint32_t lcrc, pcrc;
    sib_crc32c_pair(e, 4, &lcrc, e + 8, len, &pcrc);
    put_be32(e + 4, lcrc);
    sib_buf_be32(b, pcrc);
    if (b->oom) return sib_err_set(err, SIB_ENOMEM, "commitlog: out of memory building entry");
    return 0;
}

/* Writes n bytes of whole entries at the end of the current segment (the
 * caller checked they fit) and publishes them to the sync thread. */
static int append_bytes(clog *cl, const uint8_t *p, size_t n, sib_err *err)
{
    if (write_full(cl->cur->fd, p, n) < 0) {
        int rc = sib_err_errno(err, "commitlog: write %s", cl->cur->path);
        /* Cut the partial entries off so later entries stay replayable. */
        if (ftruncate(cl->cur->fd, (off_t)cl->cur_off) < 0 || lseek(cl->cur->fd, (off_t)cl->cur_off, SEEK_SET) < 0) {
            cl->failed = true;
            sib_log(cl->o.log, SIB_ERROR, "commitlog: cannot cut back %s after a failed write; refusing writes",
                    cl->cur->path);
        }
        return rc;
    }
    cl->cur_off += n;
    cl->pos += n;
    cl->bytes += n;
    cl->writes++;
    __atomic_store_n(&cl->sync_off, cl->cur_off, __ATOMIC_RELEASE);
    /* published without the mutex (see check_usable): the sync thread
     * reads it when it wakes, on its period or when a waiter asks */
    __atomic_store_n(&cl->written, cl->pos, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&cl->sync_idle, __ATOMIC_SEQ_CST)) { /* rare: the first write after an idle spell */
        pthread_mutex_lock(&cl->mu);
        pthread_cond_signal(&cl->cv);
        pthread_mutex_unlock(&cl->mu);
    }
    return 0;
}

static void flush_pending(clog *cl);

/* Writes the framed entry in ebuf now, after whatever is queued. */
static int commit_framed(clog *cl, uint64_t *pos, sib_err *err)
{
    sib_buf *b = &cl->ebuf;
    flush_pending(cl); /* queued entries come first in the log */
    int rc = check_usable(cl, err);
    if (rc) return rc;
    if (cl->cur_off + b->len > cl->o.segment_size && (rc = switch_segment(cl, err))) return rc;
    if ((rc = append_bytes(cl, b->p, b->len, err))) return rc;
    cl->entries++;
    *pos = cl->pos;
    return 0;
}

int clog_entry_commit(clog *cl, uint64_t *pos, sib_err *err)
{
    int rc = check_usable(cl, err);
    if (!rc) rc = frame_entry(cl, &cl->ebuf, 0, err);
    return rc ? rc : commit_framed(cl, pos, err);
}

/* ---- coalesced appends (loop thread) ---- */

static void prep_ref(clog *cl, bool want)
{
    if (want == cl->prep_reffed) return;
    if (want) ev_ref(cl->o.loop);
    else ev_unref(cl->o.loop);
    cl->prep_reffed = want;
}

/* Parks done for on_prepare; capacity was reserved by clog_entry_queue. */
static void ack_park(clog *cl, st_done_fn done, void *ctx, int rc, const sib_err *err)
{
    if (!done) return;
    SIB_ASSERT(cl->nacks < cl->capacks);
    cl->acks[cl->nacks++] = (cl_ack){done, ctx, rc};
    if (rc) cl->ack_err = *err;
}

/* Entry e is in the file, ending at pos: apply it, then ack or wait. */
static void pend_complete(clog *cl, const cl_pend *e, uint64_t pos)
{
    sib_err err;
    int rc = e->apply ? e->apply(e->arg, cl->pbuf.p + e->off + 8, e->len - CL_FRAME, e->hint, &err) : 0;
    if (!rc && clog_needs_wait(cl)) {
        if (!(rc = clog_wait(cl, pos, e->done, e->ctx, &err))) return;
    }
    ack_park(cl, e->done, e->ctx, rc, &err);
}

/* Writes every queued entry (one write() per segment touched), applies them
 * in order and parks their acks; on failure the rest of the queue fails. */
static void flush_pending(clog *cl)
{
    if (!cl->npend) return;
    sib_err err;
    int rc = check_usable(cl, &err);
    size_t i = 0;
    while (!rc && i < cl->npend) {
        size_t j = i, n = 0;
        while (j < cl->npend && cl->cur_off + n + cl->pend[j].len <= cl->o.segment_size) n += cl->pend[j++].len;
        if (j == i) { /* next entry does not fit: roll over (it fits a fresh one) */
            SIB_ASSERT(cl->cur_off > CL_HDR_LEN);
            rc = switch_segment(cl, &err);
            continue;
        }
        if ((rc = append_bytes(cl, cl->pbuf.p + cl->pend[i].off, n, &err))) break;
        cl->entries += j - i;
        uint64_t pos = cl->pos - n;
        for (; i < j; i++) { /* applied while cur is their segment (clog_mark_dirty) */
            pos += cl->pend[i].len;
            pend_complete(cl, &cl->pend[i], pos);
        }
    }
    for (; i < cl->npend; i++) ack_park(cl, cl->pend[i].done, cl->pend[i].ctx, rc, &err); /* none applied */
    cl->npend = 0;
    if (cl->pbuf.cap > (4u << 20)) sib_buf_free(&cl->pbuf); /* a burst of big entries: give it back */
    else sib_buf_reset(&cl->pbuf);
}

void clog_flush(clog *cl) { flush_pending(cl); }

/* Priority EV_MAXPRI: runs before default-priority prepare watchers (the
 * CQL reply flush) of the same iteration; see the header comment. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    clog *cl = w->data;
    cl->prep_iter = ev_iteration(loop);
    if (ev_is_active(&cl->idle)) ev_idle_stop(loop, &cl->idle);
    while (cl->npend || cl->nacks) { /* a done may queue more: write those too */
        flush_pending(cl);
        /* A done may queue or flush: acks[] then grows (and may move), so
         * re-read by index; parked acks are only dropped once all ran. */
        for (size_t i = 0; i < cl->nacks; i++) {
            cl_ack a = cl->acks[i];
            if (!a.rc) {
                a.done(a.ctx, 0, NULL);
                continue;
            }
            sib_err err = cl->ack_err; /* a done may overwrite it */
            a.done(a.ctx, a.rc, &err);
        }
        cl->nacks = 0;
    }
    prep_ref(cl, false);
}

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents) { ev_idle_stop(loop, w); }

/* The entry being built in pbuf is dropped (refused). */
static int queue_refuse(clog *cl, int rc)
{
    cl->pbuf.len = cl->qoff;
    cl->pbuf.oom = false;
    return rc;
}

int clog_entry_queue(clog *cl, clog_apply_fn apply, void *arg, int64_t hint, st_done_fn done, void *ctx,
                     sib_err *err)
{
    if (!cl->has_async) { /* no loop: write, apply and ack now */
        sib_buf *b = &cl->ebuf;
        uint64_t pos;
        int rc = check_usable(cl, err);
        if (!rc) rc = frame_entry(cl, b, 0, err);
        if (rc || (rc = commit_framed(cl, &pos, err))) return rc;
        rc = apply ? apply(arg, b->p + 8, b->len - CL_FRAME, hint, err) : 0;
        if (!rc && clog_needs_wait(cl)) return clog_wait(cl, pos, done, ctx, err);
        if (done) done(ctx, rc, rc ? err : NULL);
        return 0;
    }
    int rc = check_usable(cl, err);
    if (!rc) rc = frame_entry(cl, &cl->pbuf, cl->qoff, err);
    if (rc) return queue_refuse(cl, rc);
    if (cl->npend == cl->cappend) {
        size_t cap = cl->cappend ? cl->cappend * 2 : 64;
        cl_pend *n = realloc(cl->pend, cap * sizeof *n);
        if (!n) return queue_refuse(cl, sib_err_set(err, SIB_ENOMEM, "commitlog: out of memory"));
        cl->pend = n;
        cl->cappend = cap;
    }
    if (cl->nacks + cl->npend + 1 > cl->capacks) { /* every ack parks without allocating */
        size_t cap = SIB_MAX(cl->capacks * 2, cl->nacks + cl->npend + 64);
        cl_ack *n = realloc(cl->acks, cap * sizeof *n);
        if (!n) return queue_refuse(cl, sib_err_set(err, SIB_ENOMEM, "commitlog: out of memory"));
        cl->acks = n;
        cl->capacks = cap;
    }
    cl->pend[cl->npend++] = (cl_pend){cl->qoff, cl->pbuf.len - cl->qoff, apply, arg, hint, done, ctx};
    prep_ref(cl, true);
    /* Queued after this iteration's on_prepare (by a lower-priority prepare
     * watcher): keep the coming poll from blocking so the next one runs. */
    if (ev_iteration(cl->o.loop) == cl->prep_iter && !ev_is_active(&cl->idle)) ev_idle_start(cl->o.loop, &cl->idle);
    return 0;
}

void clog_mark_dirty(clog *cl, const uint8_t table[16], uint64_t *last_seg)
{
    cl_seg *s = cl->replaying ? cl->replaying : cl->cur;
    if (*last_seg == s->id) return;
    for (size_t i = 0; i < s->ndirty; i++)
        if (!memcmp(s->dirty[i], table, 16)) return;
    if (s->ndirty == s->capdirty) {
        size_t cap = s->capdirty ? s->capdirty * 2 : 4;
        uint8_t (*n)[16] = realloc(s->dirty, cap * 16);
        if (!n) return; /* bookkeeping only: flush then keeps the segment longer */
        s->dirty = n;
        s->capdirty = cap;
    }
    memcpy(s->dirty[s->ndirty++], table, 16);
    *last_seg = s->id;
}

int clog_wait(clog *cl, uint64_t pos, st_done_fn done, void *ctx, sib_err *err)
{
    if (cl->failed) return sib_err_set(err, SIB_EIO, "commitlog: failed earlier; writes are refused");
    if (!cl->has_async) { /* no loop: block this thread */
        pthread_mutex_lock(&cl->mu);
        if (pos > cl->req) cl->req = pos;
        pthread_cond_signal(&cl->cv);
        while (cl->synced < pos && !cl->sync_err) pthread_cond_wait(&cl->done_cv, &cl->mu);
        int e = cl->synced < pos ? cl->sync_err : 0;
        pthread_mutex_unlock(&cl->mu);
        sib_err e2;
        if (e) sib_err_set(&e2, SIB_EIO, "commitlog: fsync failed: %s", strerror(e));
        if (done) done(ctx, e ? SIB_EIO : 0, e ? &e2 : NULL);
        return 0;
    }
    int rc;
    waiter_push(cl, pos, done, ctx, &rc);
    if (rc) return sib_err_set(err, rc, "commitlog: out of memory");
    if (!cl->reffed) {
        ev_ref(cl->o.loop);
        cl->reffed = true;
    }
    pthread_mutex_lock(&cl->mu);
    bool covered = pos <= cl->synced;
    if (pos > cl->req) cl->req = pos;
    if (!covered) pthread_cond_signal(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
    /* Already durable: no fsync will come to wake us, so wake ourselves
     * (done still runs from the loop, after earlier waiters). */
    if (covered) ev_async_send(cl->o.loop, &cl->async);
    return 0;
}

sst_clpos clog_position(const clog *cl) { return (sst_clpos){cl->cur->id, cl->cur_off}; }

size_t clog_release(clog *cl, clog_covered_fn covered, void *arg, char ***paths)
{
    size_t n = 0;
    *paths = NULL;
    while (cl->segs && cl->segs != cl->cur && cl->segs->id < cl->cur->id) {
        cl_seg *s = cl->segs;
        bool ok = true;
        for (size_t i = 0; ok && i < s->ndirty; i++) ok = covered(arg, s->dirty[i], s->id);
        if (!ok) break;
        char **np = realloc(*paths, (n + 1) * sizeof *np);
        if (!np) break;
        *paths = np;
        np[n++] = s->path;
        s->path = NULL;
        cl->segs = s->next;
        cl->nsegs--;
        seg_free(s);
    }
    return n;
}

uint64_t clog_oldest(const clog *cl, uint64_t *live_bytes, const uint8_t (**ids)[16], size_t *nids)
{
    *live_bytes = (uint64_t)cl->nsegs * cl->o.segment_size;
    *ids = NULL;
    *nids = 0;
    const cl_seg *s = cl->segs;
    if (!s || s == cl->cur || s->id >= cl->cur->id) return 0;
    *ids = (const uint8_t (*)[16])s->dirty;
    *nids = s->ndirty;
    return s->id;
}

void clog_get_stats(clog *cl, clog_stats *out)
{
    out->bytes = cl->bytes;
    out->entries = cl->entries;
    out->segments_created = cl->segments_created;
    out->segments_live = cl->nsegs;
    pthread_mutex_lock(&cl->mu);
    out->syncs = cl->syncs;
    out->writebacks = cl->writebacks;
    pthread_mutex_unlock(&cl->mu);
    out->pending = cl->wn + cl->npend + cl->nacks;
    out->writes = cl->writes;
}

/* ---- replay ---- */

static int read_file(const char *path, uint8_t **out, size_t *len, sib_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sib_err_errno(err, "commitlog: open %s", path);
    struct stat st;
    int rc = 0;
    uint8_t *p = NULL;
    if (fstat(fd, &st) < 0) {
        rc = sib_err_errno(err, "commitlog: stat %s", path);
        goto out;
    }
    size_t n = (size_t)st.st_size, got = 0;
    if (!(p = malloc(n ? n : 1))) {
        rc = sib_err_set(err, SIB_ENOMEM, "commitlog: out of memory reading %s", path);
        goto out;
    }
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = sib_err_errno(err, "commitlog: read %s", path);
            goto out;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    *out = p;
    *len = got;
    p = NULL;
out:
    free(p);
    close(fd);
    return rc;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Header fields of segment s from its first bytes d[0..n): fills s's prev
 * and cut fields and returns the header length, or 0 with *why set. */
static size_t parse_header(cl_seg *s, const uint8_t *d, size_t n, const char **why)
{
    if (n < CL_V1_HDR_LEN || get_be32(d) != CL_MAGIC) {
        *why = n < CL_V1_HDR_LEN ? "truncated segment header" : "bad segment header";
        return 0;
    }
    uint16_t ver = get_be16(d + 4);
    size_t hl = ver == 1 ? CL_V1_HDR_LEN : CL_HDR_LEN;
    if (ver != 1 && ver != CL_VERSION) {
        *why = "unsupported segment version";
        return 0;
    }
    if (n < hl) {
        *why = "truncated segment header";
        return 0;
    }
    if (get_be32(d + hl - 4) != sib_crc32c(0, d, hl - 4)) {
        *why = "bad segment header";
        return 0;
    }
    if (get_be64(d + 8) != s->id) {
        *why = "segment id does not match its name";
        return 0;
    }
    if (ver == CL_VERSION) {
        s->prev = get_be64(d + 16);
        s->cut_id = get_be64(d + 24);
        s->cut_off = get_be64(d + 32);
    }
    return hl;
}

/* Where replay of one segment stopped: off == n when it is whole. */
typedef struct seg_end {
    size_t off, n;
    const char *why;
} seg_end;

/* Replays one segment's entries; returns <0 only for fatal errors (fn's). */
static int replay_seg(cl_seg *s, const uint8_t *d, size_t n, clog_replay_fn fn, void *arg, storage_replay_stats *st,
                      seg_end *end, sib_err *err)
{
    const char *name = base_name(s->path), *why = NULL;
    size_t off = parse_header(s, d, n, &why);
    while (!why && off < n) {
        if (n - off < 8) { why = "truncated entry header"; break; }
        uint32_t len = get_be32(d + off);
        if (get_be32(d + off + 4) != sib_crc32c(0, d + off, 4)) { why = "bad entry length checksum"; break; }
        if (len == 0) { why = "zero-length entry"; break; }
        if ((size_t)len + CL_FRAME > n - off) { why = "truncated entry"; break; }
        const uint8_t *pl = d + off + 8;
        if (get_be32(pl + len) != sib_crc32c(0, pl, len)) { why = "bad entry checksum"; break; }
        int rc = fn(arg, pl, len, name, s->id, off, err);
        if (rc == SIB_ECORRUPT) { why = "undecodable entry"; break; }
        if (rc < 0) return rc;
        st->entries++;
        off += CL_FRAME + len;
    }
    *end = (seg_end){off, n, why};
    return 0;
}

/* Reads the header of every segment to replay, so damage can be judged
 * against what comes after it. An unreadable header counts as entries
 * (the conservative side: damage before it stops start-up). */
static void read_headers(clog *cl)
{
    for (cl_seg *s = cl->segs; s && s->id < cl->first_own_id; s = s->next) {
        uint8_t h[CL_HDR_LEN];
        int fd = open(s->path, O_RDONLY | O_CLOEXEC);
        ssize_t got = fd >= 0 ? pread(fd, h, sizeof h, 0) : -1;
        struct stat stt;
        bool sized = fd >= 0 && fstat(fd, &stt) == 0;
        if (fd >= 0) close(fd);
        const char *why = NULL;
        size_t hl = got > 0 ? parse_header(s, h, (size_t)got, &why) : 0;
        s->has_entries = !hl || !sized || (uint64_t)stt.st_size > hl;
    }
}

/* A later segment's header says this damage was accepted at a start. */
static bool cut_accepted(const clog *cl, const cl_seg *s, size_t off)
{
    for (const cl_seg *o = s->next; o && o->id < cl->first_own_id; o = o->next)
        if (o->cut_id == s->id && o->cut_off == off) return true;
    return false;
}

static size_t later_with_entries(const clog *cl, const cl_seg *s)
{
    size_t k = 0;
    for (const cl_seg *o = s->next; o && o->id < cl->first_own_id; o = o->next) k += o->has_entries;
    return k;
}

/* Damage in s at e: accepted (torn tail, an earlier start's cut, or the
 * ignore option) or the error that stops start-up. */
static int judge_damage(clog *cl, cl_seg *s, const seg_end *e, storage_replay_stats *st, uint64_t *cut_id,
                        uint64_t *cut_off, sib_err *err)
{
    const char *name = base_name(s->path);
    size_t lost = e->n - e->off, later = later_with_entries(cl, s);
    st->bad_segments++;
    st->bytes_skipped += lost;
    if (cut_accepted(cl, s, e->off)) {
        sib_log(cl->o.log, SIB_INFO, "commitlog: %s: %s at offset %zu, accepted at an earlier start (%zu bytes not "
                "replayed)", name, e->why, e->off, lost);
        return 0;
    }
    if (later && !cl->o.ignore_replay_errors)
        return sib_err_set(err, SIB_ECORRUPT,
                           "commitlog: %s is damaged at offset %zu (%s): the %zu bytes after it cannot be replayed, "
                           "and %zu later segment(s) hold writes made after them. Start-up stopped so that the node "
                           "does not serve partial data: restore the segment, or set "
                           "commitlog_ignore_replay_errors: true to replay the rest (the writes in those %zu bytes "
                           "are lost)",
                           name, e->off, e->why, lost, later, lost);
    sib_log(cl->o.log, SIB_WARN, "commitlog: %s: %s at offset %zu; %zu bytes after it are not replayed (%s)", name,
            e->why, e->off, lost,
            later ? "commitlog_ignore_replay_errors is set" : "the last segment: writes torn by the crash");
    *cut_id = s->id;
    *cut_off = e->off;
    return 0;
}

/* A segment whose predecessor is absent while an older segment is present:
 * release goes by id, so the missing one was lost, not released. */
static int check_gap(clog *cl, const cl_seg *before, const cl_seg *s, sib_err *err)
{
    if (!before || !s->prev || s->prev <= before->id) return 0;
    if (!cl->o.ignore_replay_errors)
        return sib_err_set(err, SIB_ECORRUPT,
                           "commitlog: segment %" PRIu64 " is missing: %s follows %s, and its header names segment "
                           "%" PRIu64 " as its predecessor. The writes of the missing segment(s) are lost; "
                           "start-up stopped. Restore CommitLog-%d-%" PRIu64 ".log, or set "
                           "commitlog_ignore_replay_errors: true to replay what is present",
                           s->prev, base_name(s->path), base_name(before->path), s->prev, CL_VERSION, s->prev);
    sib_log(cl->o.log, SIB_WARN, "commitlog: segment %" PRIu64 " before %s is missing; its writes are lost "
            "(commitlog_ignore_replay_errors is set)", s->prev, base_name(s->path));
    return 0;
}

/* Rewrites the header of the run's first segment, still empty, with the
 * damage this start accepted. */
static int record_cut(clog *cl, uint64_t cut_id, uint64_t cut_off, sib_err *err)
{
    cl_seg *s = cl->cur;
    SIB_ASSERT(s->id == cl->first_own_id && cl->cur_off == CL_HDR_LEN);
    s->cut_id = cut_id;
    s->cut_off = cut_off;
    uint8_t h[CL_HDR_LEN];
    encode_header(h, s);
    if (pwrite(s->fd, h, sizeof h, 0) != (ssize_t)sizeof h || fdatasync(s->fd) < 0)
        return sib_err_errno(err, "commitlog: recording the accepted damage in %s", base_name(s->path));
    return 0;
}

int clog_replay(clog *cl, clog_replay_fn fn, void *arg, storage_replay_stats *st, sib_err *err)
{
    read_headers(cl);
    uint64_t cut_id = 0, cut_off = 0;
    const cl_seg *before = NULL;
    for (cl_seg *s = cl->segs; s && s->id < cl->first_own_id; s = s->next) {
        int rc = check_gap(cl, before, s, err);
        if (rc) return rc;
        uint8_t *d = NULL;
        size_t n = 0;
        if ((rc = read_file(s->path, &d, &n, err))) return rc;
        cl->replaying = s;
        st->segments++;
        seg_end e;
        rc = replay_seg(s, d, n, fn, arg, st, &e, err);
        cl->replaying = NULL;
        free(d);
        if (!rc && e.why) rc = judge_damage(cl, s, &e, st, &cut_id, &cut_off, err);
        if (rc) return rc;
        sib_log(cl->o.log, SIB_INFO, "commitlog: replayed %s", base_name(s->path));
        before = s;
    }
    return cut_id ? record_cut(cl, cut_id, cut_off, err) : 0;
}
