/* readpool.c: st_read_page, the bounded read pieces the CQL executor runs,
 * and the read pool (concurrent_reads threads) that runs them off the loop.
 *
 * Why: a scan or a COUNT(*) over SSTables preads, crc-checks and LZ4-
 * decompresses block after block. On the loop that stalled every other
 * client and the gossip timers behind it (a point read waited up to 649 ms
 * behind one client's full scan of 400k rows). Cassandra runs reads on a
 * pool of worker threads (its READ stage); so do we.
 *
 *   | step                         | thread | what                                    |
 *   |------------------------------|--------|-----------------------------------------|
 *   | st_read_page                 | loop   | inline when memory answers (below);     |
 *   |                              |        | else pin + copy, queue the job          |
 *   | rp_main -> job_run           | worker | merge copy + frozen memtables + SSTables|
 *   |                              |        | into the page; done list; ev_async      |
 *   | rp_poll                      | loop   | unpin, free the copy, cb(ctx, page)     |
 *
 * Inline: a partition read that memory can answer runs at once through
 * st_read, as before the pool existed: when none of its SSTables' bloom
 * filters admits its token (memtables only), or when every Data block it
 * needs is in the block cache. The second is found by trying: the read
 * runs with sst_part_open_cache_only and a block that is not cached ends
 * it with SIB_EAGAIN before any pread; the piece then goes to the pool
 * (the attempt cost a bloom test, an index lookup in the mapped Index.db
 * and the cached blocks' copies). Index.db is mapped and counts as memory,
 * as Cassandra's mmap_index_only. Scans always go to the pool: even over
 * memtables alone they are long.
 *
 * Borrowing (st_rreq.borrow): a caller that takes an inline page at once,
 * before it writes or returns to the loop (the executor's point reads),
 * lets a page that the memtables alone answer keep its rows where they are:
 * the page holds the read's iterator, and so its references to those
 * memtables, until st_rpage_destroy, and copies only the rows' cell views.
 * With an SSTable among the sources the rows are copied as usual (a block
 * the iterator read is not the page's to keep). A KV record that only the
 * active memtable holds is read without an iterator at all (st_read_kv):
 * the page then references that memtable, and its row's cell views are
 * written straight into the page's room for them.
 *
 * Memtable safety: the loop writes the ACTIVE memtable in place (a
 * same-size cell is overwritten, index slots shift, B+tree nodes split), so
 * no worker ever reads it. At submit the loop copies the active partitions
 * the piece can reach (raw rows, tombstones included) into the job's arena:
 * for a partition read that one partition (its rows in the hull of the
 * slices); for a scan the active partitions from the start position, up to
 * max_parts of them or max_rows rows (then the copy is "cut" and the
 * worker's scan stops after the last copied partition, so it never passes
 * a key whose active rows it does not hold). Frozen memtables are immutable
 * (only read, by readers and the flush thread) and SSTables are immutable
 * files: both are pinned by reference at submit and unpinned on the loop
 * at completion, so a flush, compaction or truncate completing meanwhile
 * frees nothing the worker reads. A write that arrives after the submit is
 * not in the piece (it was not acknowledged when the read began, or it is
 * in a later piece of a scan): the piece is a snapshot of the table at its
 * submit.
 *
 * Bounds: a piece stops after max_rows rows (mid-partition: that partition
 * is marked incomplete and the caller asks for the rest) or max_parts
 * candidate partitions (dead ones count: a run of tombstones is work too);
 * the page says where the scan stopped. A long scan is thus many short
 * jobs, and partition reads are queued ahead of scan pieces (two queues,
 * see "the pool"): a point read waits for at most the pieces running.
 *
 * Shutdown: storage_read_drain refuses new pieces, waits for the queued and
 * running ones and delivers them, so every callback runs exactly once.
 * Threads: the queue and done list are under mu; everything else of a job
 * belongs to the loop until it is queued and after it is taken off the done
 * list, and to one worker in between (the mutex orders the hand-overs).
 * Each thread that reads (the loop for inline reads, each worker) keeps
 * one recycled iterator of its own (st_iter_recycle): a point read then
 * allocates nothing for its iterator, where a calloc of over 1 KB and its
 * frees were a tenth of a memtable read's instructions.
 */
#include "storage_int.h"

#include <ev.h>
#include <stdlib.h>

#define RP_DEFAULT_THREADS 2
#define RP_DEFAULT_BOUND 1024
#define RP_ARENA_CHUNK 16384
#define RP_POINT_CHUNK 2048
#define RP_ROW1_CELLS 4

/* ---- the page ---- */

typedef struct rp_part {
    const uint8_t *pk;
    size_t pklen;
    int64_t token;
    bool has_static, live, complete;
    st_row stat;  /* when has_static */
    st_row *rows; /* in the page's arena */
    size_t nrows, caprows;
    uint64_t tombstones;
    const uint8_t *mut; /* an unfiltered scan: the partition's state as a mutation (arena) */
    size_t mutlen;
} rp_part;

struct st_rpage {
    sib_arena *a; /* keys, rows' cells and values */
    rp_part *parts;       /* in the arena */
    size_t nparts, capparts, nrows;
    bool more;
    const uint8_t *resume; /* more: the last partition looked at */
    size_t resumelen;
    int64_t resume_token;
    int status;
    uint32_t sstables;    /* a partition read: SSTables it opened */
    const uint8_t *mut;   /* an unfiltered read: the serialized mutation (arena) */
    size_t mutlen;
    sib_err err;
    struct st_readpool *home; /* a point page goes back to its pool's spares */
    struct st_rpage *next_spare;
    st_iter *it;          /* a borrowing page's views point into its memtables */
    st_mem *mem;          /* or into this one (st_read_kv's row), referenced */
    rp_part first; /* parts' first room: a point read's one partition needs no allocation */
    st_row row1;   /* rows' first room in the first partition: likewise for its row */
    st_cell_view cells1[RP_ROW1_CELLS]; /* that row's cell views, when it borrows */
};

/* chunk: the arena's; a point read's page is small (one allocation of it
 * holds a partition of a few rows), a scan piece's is not. */
static st_rpage *page_new(size_t chunk)
{
    st_rpage *p = calloc(1, sizeof *p);
    if (p && !(p->a = sib_arena_create(chunk))) {
        free(p);
        return NULL;
    }
    return p;
}

static bool page_keep(st_rpage *p);
static void page_unborrow(st_rpage *p);

void st_rpage_destroy(st_rpage *p)
{
    if (!p) return;
    page_unborrow(p);
    if (page_keep(p)) return;
    sib_arena_destroy(p->a); /* parts and rows live in it too */
    free(p);
}

size_t st_rpage_parts(const st_rpage *p) { return p->nparts; }

void st_rpage_part(const st_rpage *p, size_t i, st_rpart *out)
{
    const rp_part *x = &p->parts[i];
    *out = (st_rpart){x->pk, x->pklen, x->token, x->live, x->complete, x->nrows, x->tombstones};
}

void st_rpage_row(const st_rpage *p, size_t i, size_t j, st_row *out) { *out = p->parts[i].rows[j]; }

bool st_rpage_static(const st_rpage *p, size_t i, st_row *out)
{
    if (!p->parts[i].has_static) return false;
    *out = p->parts[i].stat;
    return true;
}

bool st_rpage_more(const st_rpage *p) { return p->more; }

const uint8_t *st_rpage_part_mutation(const st_rpage *p, size_t i, size_t *len)
{
    *len = p->parts[i].mutlen;
    return p->parts[i].mut;
}

const uint8_t *st_rpage_mutation(const st_rpage *p, size_t *len)
{
    *len = p->mutlen;
    return p->mut;
}

bool st_rpage_resume(const st_rpage *p, const uint8_t **pk, size_t *pklen, int64_t *token)
{
    if (!p->more || !p->resume) return false;
    *pk = p->resume;
    *pklen = p->resumelen;
    *token = p->resume_token;
    return true;
}

int st_rpage_status(const st_rpage *p, sib_err *err)
{
    if (!p->status) return 0;
    if (p->err.msg[0]) return sib_err_set(err, p->status, "%s", p->err.msg);
    return sib_err_set(err, p->status, "storage: read failed: %s", sib_strerror(p->status));
}

static const uint8_t *dup(sib_arena *a, const void *p, size_t n)
{
    return n ? sib_arena_memdup(a, p, n) : (const uint8_t *)"";
}

/* n bytes of p at *d (advanced), or "" for none: never NULL. */
static const uint8_t *put_bytes(uint8_t **d, const void *p, size_t n)
{
    if (!n) return (const uint8_t *)"";
    uint8_t *x = *d;
    memcpy(x, p, n);
    *d += n;
    return x;
}

/* An evaluated row (live cells) into the page's arena, in one allocation:
 * its cell views, then its key, values and paths. */
static bool copy_row(sib_arena *a, const st_row *in, st_row *out)
{
    size_t bytes = in->ncells * sizeof(st_cell_view) + (in->ck ? in->cklen : 0);
    for (size_t i = 0; i < in->ncells; i++) bytes += in->cells[i].vlen + (in->cells[i].path ? in->cells[i].pathlen : 0);
    uint8_t *d = bytes ? sib_arena_alloc(a, bytes) : NULL;
    if (bytes && !d) return false;
    *out = *in;
    st_cell_view *cv = in->ncells ? (st_cell_view *)d : NULL;
    if (in->ncells) d += in->ncells * sizeof *cv;
    out->ck = in->ck ? put_bytes(&d, in->ck, in->cklen) : NULL;
    for (size_t i = 0; i < in->ncells; i++) {
        cv[i] = in->cells[i];
        cv[i].val = put_bytes(&d, in->cells[i].val, in->cells[i].vlen);
        cv[i].path = in->cells[i].path ? put_bytes(&d, in->cells[i].path, in->cells[i].pathlen) : NULL;
    }
    out->cells = cv;
    return true;
}

/* An evaluated row of a borrowing page (the iterator's sources are
 * memtables, kept referenced by the page): its cell views into the arena
 * (the iterator's next row reuses its own), the bytes they point at left
 * where they are. */
static bool view_row(st_rpage *pg, const st_row *in, st_row *out)
{
    *out = *in;
    if (!in->ncells || in->cells == pg->cells1) return true; /* st_read_kv put them in place */
    size_t n = in->ncells * sizeof(st_cell_view);
    st_cell_view *cv = out == &pg->row1 && in->ncells <= RP_ROW1_CELLS ? memcpy(pg->cells1, in->cells, n)
                                                                        : sib_arena_memdup(pg->a, in->cells, n);
    out->cells = cv;
    return cv != NULL;
}

/* Grows an array kept in the page's arena (doubling: the old copy stays in
 * the arena until the page goes, at most as much again). */
static bool arena_grow(sib_arena *a, void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t n = *cap ? *cap * 2 : 1;
    while (n < need) n *= 2;
    void *x = sib_arena_alloc(a, n * elem);
    if (!x) return false;
    if (*cap) memcpy(x, *arr, *cap * elem);
    *arr = x;
    *cap = n;
    return true;
}

/* borrow: pk stays valid as long as the page (st_rreq.borrow). */
static rp_part *page_part(st_rpage *pg, const uint8_t *pk, size_t pklen, int64_t token, bool borrow)
{
    if (!pg->capparts) {
        pg->parts = &pg->first;
        pg->capparts = 1;
    }
    if (!arena_grow(pg->a, (void **)&pg->parts, &pg->capparts, pg->nparts + 1, sizeof *pg->parts)) return NULL;
    rp_part *x = &pg->parts[pg->nparts];
    if (!(pk = borrow ? pk : dup(pg->a, pk, pklen))) return NULL;
    /* stat is left as it is: nothing reads it unless has_static */
    x->pk = pk;
    x->pklen = pklen;
    x->token = token;
    x->has_static = x->live = x->complete = false;
    x->rows = NULL;
    x->nrows = x->caprows = 0;
    x->tombstones = 0;
    x->mut = NULL;
    x->mutlen = 0;
    if (x == &pg->first) { /* a point read's row needs no allocation either */
        x->rows = &pg->row1;
        x->caprows = 1;
    }
    pg->nparts++;
    return x;
}

/* Row r as the next of partition x: copied, or its views (see view_row). */
static bool part_row(st_rpage *pg, rp_part *x, const st_row *r, bool views)
{
    if (!arena_grow(pg->a, (void **)&x->rows, &x->caprows, x->nrows + 1, sizeof *x->rows) ||
        !(views ? view_row(pg, r, &x->rows[x->nrows]) : copy_row(pg->a, r, &x->rows[x->nrows])))
        return false;
    x->nrows++;
    pg->nrows++;
    return true;
}

/* Fills one partition of the page from it, up to *rows_left rows. A
 * partition with nothing to show is taken back off the page. views: the
 * page keeps it (pg->it) and its rows' bytes stay in its memtables. */
static int fill_part(st_rpage *pg, st_iter *it, const uint8_t *pk, size_t pklen, int64_t token, const st_rreq *rq,
                     bool views, size_t *rows_left)
{
    rp_part *x = page_part(pg, pk, pklen, token, views);
    if (!x) return SIB_ENOMEM;
    st_row r;
    if ((rq->with_static || rq->static_only) && st_iter_static(it, &r)) { /* a table without statics has none */
        if (!(views ? view_row(pg, &r, &x->stat) : copy_row(pg->a, &r, &x->stat))) return SIB_ENOMEM;
        x->has_static = true;
    }
    x->complete = true;
    if (rq->static_only) {
        x->live = x->has_static || st_iter_next(it, &r);
    } else {
        while (*rows_left > 0 && st_iter_next(it, &r)) {
            if (!part_row(pg, x, &r, views)) return SIB_ENOMEM;
            --*rows_left;
        }
        x->complete = *rows_left > 0;
        x->live = x->has_static || x->nrows;
    }
    x->tombstones = st_iter_tombstones(it);
    int rc = st_iter_status(it, &pg->err);
    if (rc) return rc;
    if (!x->live && !x->tombstones) pg->nparts--; /* nothing to show or count */
    return 0;
}

/* An unfiltered partition read: the partition's state as a mutation of
 * table id, kept serialized in the page's arena. */
static int fill_unfiltered(st_rpage *pg, st_iter *it, const uint8_t id[16], const st_rreq *rq)
{
    st_mutation *m = st_mutation_create(id, rq->pk, rq->pklen);
    if (!m) return SIB_ENOMEM;
    int rc = st_iter_unfiltered(it, true, m, &pg->err);
    size_t len = 0;
    const uint8_t *b = rc ? NULL : st_mutation_bytes(m, &len);
    if (!rc && !(pg->mut = dup(pg->a, b, len))) rc = SIB_ENOMEM;
    pg->mutlen = len;
    st_mutation_destroy(m);
    return rc;
}

/* One partition of an unfiltered scan: its state in the slices as a
 * mutation of table id. A candidate with nothing in the slices (not even a
 * partition deletion) is left off the page; *bytes adds what was kept. */
static int fill_unfiltered_part(st_rpage *pg, st_iter *it, const uint8_t id[16], const uint8_t *pk, size_t pklen,
                                int64_t token, size_t *bytes)
{
    st_mutation *m = st_mutation_create(id, pk, pklen);
    if (!m) return SIB_ENOMEM;
    size_t empty = st_mutation_size(m);
    int rc = st_iter_unfiltered(it, true, m, &pg->err);
    size_t len = 0;
    const uint8_t *b = rc ? NULL : st_mutation_bytes(m, &len);
    if (!rc && st_mutation_size(m) > empty) {
        rp_part *x = page_part(pg, pk, pklen, token, false);
        if (!x || !(x->mut = dup(pg->a, b, len))) rc = SIB_ENOMEM;
        else {
            x->mutlen = len;
            x->complete = x->live = true;
            *bytes += len;
        }
    }
    st_mutation_destroy(m);
    return rc;
}

/* ---- jobs ---- */

typedef struct rjob {
    st_rreq rq;          /* deep copy (arena) */
    st_position start;
    st_pin pin;
    sib_arena *a;        /* the request copy and the active memtable's copy */
    st_rpage *page;
    st_read_fn cb;
    void *ctx;
    uint8_t table_id[16]; /* for the SSTables-per-read count, on the loop */
    struct rjob *next;
} rjob;

static size_t bound_of(size_t v) { return v ? v : RP_DEFAULT_BOUND; }

static int64_t rq_token(const st_rreq *rq) { return rq->has_token ? rq->token : sib_murmur3_token(rq->pk, rq->pklen); }

/* The thread's recycled iterator for a read (NULL: none), taken off spare
 * until iter_done gives it back. */
static st_iter *iter_take(st_iter **spare)
{
    st_iter *it = spare ? *spare : NULL;
    if (spare) *spare = NULL;
    return it;
}

/* Ends a read: its iterator back to the thread's spare when there is one. */
static void iter_done(st_iter *it, st_iter **spare)
{
    if (spare) *spare = st_iter_recycle(it);
    else st_iter_destroy(it);
}

/* st_read_kv's answer as the page's partition (as fill_part would make
 * it): r, its live row (NULL: none), viewed in memtable m. */
static int kv_part(st_rpage *pg, st_mem *m, const st_rreq *rq, int64_t token, const st_row *r, uint64_t tombstones)
{
    pg->sstables = 0;
    if (!r && !tombstones) return 0; /* nothing to show or count */
    rp_part *x = page_part(pg, rq->pk, rq->pklen, token, true);
    if (!x) return SIB_ENOMEM;
    size_t left = bound_of(rq->max_rows);
    if (r) {
        if (!part_row(pg, x, r, true)) return SIB_ENOMEM;
        left--;
        st_mem_ref(m);
        pg->mem = m;
    }
    x->complete = left > 0;
    x->live = r != NULL;
    x->tombstones = tombstones;
    return 0;
}

/* A partition read of token into pg: of the pin v (any thread), or of the
 * live table t (the loop: the inline path). spare: the thread's recycled
 * iterator (NULL: none). A borrowing read of t that only memtables answer
 * leaves its rows where they are: the page keeps the iterator (and so its
 * references to them) and gives it back to spare's owner when it goes. */
static int run_partition(const st_rreq *rq, int64_t token, const st_pin *v, st_table *t, const uint8_t id[16],
                         bool cache_only, st_rpage *pg, st_iter **spare)
{
    const st_slice *sl = rq->static_only ? NULL : rq->slices;
    size_t nsl = rq->static_only ? 0 : rq->nslices;
    if (t && rq->borrow && !cache_only && !rq->unfiltered && !rq->static_only) {
        st_row r;
        uint64_t tomb;
        int k = st_read_kv(spare ? *spare : NULL, t, token, rq->pk, rq->pklen, sl, nsl, rq->now_s, pg->cells1,
                           RP_ROW1_CELLS, &r, &tomb);
        if (k >= 0) return kv_part(pg, t->mem, rq, token, k ? &r : NULL, tomb);
    }
    st_iter *it = iter_take(spare);
    it = t ? st_read_ex(it, t, token, rq->pk, rq->pklen, sl, nsl, rq->reversed, rq->now_s, cache_only)
           : st_read_pinned(it, v, v->nparts ? &v->parts[0] : NULL, token, rq->pk, rq->pklen, sl, nsl, rq->reversed,
                            rq->now_s);
    if (!it) return SIB_ENOMEM;
    size_t left = bound_of(rq->max_rows);
    bool views = t && rq->borrow && !rq->unfiltered && st_iter_memtables_only(it);
    int rc = rq->unfiltered ? fill_unfiltered(pg, it, id, rq)
                            : fill_part(pg, it, rq->pk, rq->pklen, token, rq, views, &left);
    pg->sstables = st_iter_sstables(it);
    if (views) pg->it = it;
    else iter_done(it, spare);
    return rc;
}

static void page_fail(st_rpage *pg, int rc)
{
    if (!rc) return;
    pg->status = rc;
    if (!pg->err.msg[0]) sib_err_set(&pg->err, rc, "storage: read failed: %s", sib_strerror(rc));
}

static int run_scan(rjob *j, st_iter **spare)
{
    const st_rreq *rq = &j->rq;
    st_rpage *pg = j->page;
    st_scan *sc = st_scan_pinned(&j->pin, rq->start);
    if (!sc) return SIB_ENOMEM;
    size_t rows_left = bound_of(rq->max_rows), parts_left = bound_of(rq->max_parts), bytes = 0;
    const uint8_t *pk;
    size_t pklen;
    int64_t tok;
    const st_snap_part *sp;
    int rc = 0;
    while (!rc && st_scan_next_candidate(sc, &pk, &pklen, &tok, &sp)) {
        if (rq->has_end && tok > rq->end_token) break;
        st_iter *it = st_read_pinned(iter_take(spare), &j->pin, sp, tok, pk, pklen, rq->static_only ? NULL : rq->slices,
                                     rq->static_only ? 0 : rq->nslices, rq->reversed, rq->now_s);
        if (!it) rc = SIB_ENOMEM;
        else if (rq->unfiltered) rc = fill_unfiltered_part(pg, it, j->table_id, pk, pklen, tok, &bytes);
        else rc = fill_part(pg, it, pk, pklen, tok, rq, false, &rows_left);
        iter_done(it, spare);
        if (rc) break;
        if (rows_left == 0 || --parts_left == 0 || (rq->max_bytes && bytes >= rq->max_bytes)) {
            pg->more = true;
            if (!(pg->resume = dup(pg->a, pk, pklen))) rc = SIB_ENOMEM;
            pg->resumelen = pklen;
            pg->resume_token = tok;
            break;
        }
    }
    if (!rc && st_scan_cut(sc) && st_scan_last(sc, &pk, &pklen, &tok)) {
        pg->more = true;
        if (!(pg->resume = dup(pg->a, pk, pklen))) rc = SIB_ENOMEM;
        pg->resumelen = pklen;
        pg->resume_token = tok;
    }
    if (!rc) rc = st_scan_status(sc, &pg->err);
    st_scan_destroy(sc);
    return rc;
}

/* spare: the running thread's recycled iterator, or NULL. */
static void job_run(rjob *j, st_iter **spare)
{
    const st_rreq *rq = &j->rq;
    page_fail(j->page, rq->pk ? run_partition(rq, rq_token(rq), &j->pin, NULL, j->table_id, false, j->page, spare)
                              : run_scan(j, spare));
}

/* ---- on the loop: the request's copy, the pins, the active memtable's copy ---- */

/* tok: a partition read's token (the worker and snapshot do not hash again). */
static bool copy_request(rjob *j, const st_rreq *rq, int64_t tok)
{
    sib_arena *a = j->a;
    j->rq = *rq;
    j->rq.has_token = rq->pk != NULL;
    j->rq.token = tok;
    if (rq->pk && !(j->rq.pk = dup(a, rq->pk, rq->pklen))) return false;
    if (rq->start) {
        j->start = *rq->start;
        if (rq->start->pk && !(j->start.pk = dup(a, rq->start->pk, rq->start->pklen))) return false;
        j->rq.start = &j->start;
    }
    if (rq->nslices) {
        st_slice *sl = sib_arena_alloc(a, rq->nslices * sizeof *sl);
        if (!sl) return false;
        for (size_t i = 0; i < rq->nslices; i++) {
            sl[i] = rq->slices[i];
            if (!sl[i].start.unbounded && !(sl[i].start.key = dup(a, sl[i].start.key, sl[i].start.len))) return false;
            if (!sl[i].end.unbounded && !(sl[i].end.key = dup(a, sl[i].end.key, sl[i].end.len))) return false;
        }
        j->rq.slices = sl;
    }
    return true;
}

/* A raw memtable row (tombstones included) into the arena. */
static bool copy_raw(sib_arena *a, const sst_row *in, sst_row *out)
{
    *out = *in;
    out->ck = dup(a, in->ck, in->cklen);
    sst_cell *c = in->ncells ? sib_arena_alloc(a, in->ncells * sizeof *c) : NULL;
    sst_cdel *d = in->ncdels ? sib_arena_memdup(a, in->cdels, in->ncdels * sizeof *d) : NULL;
    if (!out->ck || (in->ncells && !c) || (in->ncdels && !d)) return false;
    for (uint32_t i = 0; i < in->ncells; i++) {
        c[i] = in->cells[i];
        c[i].path = dup(a, in->cells[i].path, in->cells[i].pathlen);
        c[i].val = dup(a, in->cells[i].val, in->cells[i].vlen);
        if (!c[i].path || !c[i].val) return false;
    }
    out->cells = c;
    out->cdels = d;
    return true;
}

static bool before_hull(const bt_ent *e, const void *arg) { return mt_bound_cmp(e->key, e->keylen, arg, true) < 0; }

typedef struct snap_ctx {
    sib_arena *a;
    mt_rowview view;
    sst_row *tmp; /* rows being copied (malloc'd scratch) */
    size_t captmp;
    size_t rows;  /* rows copied so far */
} snap_ctx;

/* Copies one active memtable partition: deletion, range tombstones, static
 * row, and its rows within [lo, hi] (NULL: unbounded). */
static int snap_part(snap_ctx *x, const mt_rec *rec, const mt_bound *lo, const mt_bound *hi, st_snap_part *out)
{
    sib_arena *a = x->a;
    memset(out, 0, sizeof *out);
    out->pklen = rec->pklen;
    if (!(out->pk = dup(a, mt_rec_pk(rec), rec->pklen))) return SIB_ENOMEM;
    out->token = sib_murmur3_token(out->pk, out->pklen);
    out->pdel = (sst_del){SST_NO_TS, SST_NO_LDT};
    sst_row r;
    if (rec->kind == MT_KV) {
        sst_row *row = sib_arena_alloc(a, sizeof *row);
        if (!row || !mt_kv_view(&x->view, rec, &r) || !copy_raw(a, &r, row)) return SIB_ENOMEM;
        out->rows = row;
        out->nrows = 1;
        x->rows++;
        return 0;
    }
    const mt_part *p = (const mt_part *)rec;
    if (p->del_ts != ST_NO_TIMESTAMP) out->pdel = (sst_del){p->del_ts, p->del_ldt};
    if (p->x && p->x->nrt) {
        sst_rt *rts = sib_arena_alloc(a, p->x->nrt * sizeof *rts);
        if (!rts) return SIB_ENOMEM;
        for (uint32_t i = 0; i < p->x->nrt; i++) {
            const mt_rt *t = &p->x->rts[i];
            rts[i] = (sst_rt){{dup(a, t->start.key, t->start.len), t->start.len, t->start.incl, t->start.unbounded},
                              {dup(a, t->end.key, t->end.len), t->end.len, t->end.incl, t->end.unbounded},
                              {t->del.ts, t->del.ldt}};
            if (!rts[i].start.key || !rts[i].end.key) return SIB_ENOMEM;
        }
        out->rts = rts;
        out->nrt = p->x->nrt;
    }
    if (p->x && p->x->static_row) {
        sst_row *st = sib_arena_alloc(a, sizeof *st);
        if (!st || !mt_row_view(&x->view, p->x->static_row, true, &r) || !copy_raw(a, &r, st)) return SIB_ENOMEM;
        out->stat = st;
    }
    bt_cur c;
    bool ok = lo ? bt_seek(&p->rows, before_hull, lo, &c) : bt_first(&p->rows, &c);
    size_t n = 0;
    for (; ok && bt_cur_valid(&c); bt_cur_next(&c)) {
        const mt_row *mr = (const mt_row *)bt_cur_get(&c);
        if (hi && mt_bound_cmp(mr->e.key, mr->e.keylen, hi, false) > 0) break;
        if (!sib_grow((void **)&x->tmp, &x->captmp, n + 1, sizeof *x->tmp) || !mt_row_view(&x->view, mr, false, &r) ||
            !copy_raw(a, &r, &x->tmp[n]))
            return SIB_ENOMEM;
        n++;
    }
    if (n && !(out->rows = sib_arena_memdup(a, x->tmp, n * sizeof *x->tmp))) return SIB_ENOMEM;
    out->nrows = n;
    x->rows += n;
    return 0;
}

/* The hull of the slices: rows outside it are of no use to the read. */
static void hull(const st_rreq *rq, mt_bound *lo, mt_bound *hi, bool *has_lo, bool *has_hi)
{
    *has_lo = *has_hi = false;
    if (rq->static_only || !rq->nslices) return;
    const st_bound *s = &rq->slices[0].start, *e = &rq->slices[rq->nslices - 1].end;
    if (!s->unbounded) {
        *lo = (mt_bound){s->key, (uint32_t)s->len, s->incl, false};
        *has_lo = true;
    }
    if (!e->unbounded) {
        *hi = (mt_bound){e->key, (uint32_t)e->len, e->incl, false};
        *has_hi = true;
    }
}

/* The active memtable's part of the job (see the top of the file). */
static int snapshot(rjob *j, const memtable *mt)
{
    const st_rreq *rq = &j->rq;
    snap_ctx x = {.a = j->a};
    mt_bound lo, hi;
    bool has_lo, has_hi;
    hull(rq, &lo, &hi, &has_lo, &has_hi);
    int rc = 0;
    st_snap_part *parts = NULL;
    size_t n = 0, cap = 0;
    if (rq->pk) {
        const mt_rec *rec = memtable_find(mt, rq->token, rq->pk, rq->pklen);
        if (rec && !(parts = sib_arena_alloc(j->a, sizeof *parts))) rc = SIB_ENOMEM;
        else if (rec && !(rc = snap_part(&x, rec, has_lo ? &lo : NULL, has_hi ? &hi : NULL, parts))) n = 1;
    } else {
        const st_position *st = rq->start;
        size_t pos = st ? memtable_seek(mt, st->token, st->pk, st->pklen, st->inclusive) : 0;
        size_t maxp = bound_of(rq->max_parts), maxr = bound_of(rq->max_rows);
        const mt_rec *rec;
        st_snap_part *tmp = NULL;
        while (!rc && (rec = memtable_at(mt, &pos))) {
            if (n == maxp || x.rows >= maxr) {
                j->pin.cut = true;
                break;
            }
            if (rq->has_end && sib_murmur3_token(mt_rec_pk(rec), rec->pklen) > rq->end_token) break;
            if (!sib_grow((void **)&tmp, &cap, n + 1, sizeof *tmp)) rc = SIB_ENOMEM;
            else if (!(rc = snap_part(&x, rec, has_lo ? &lo : NULL, has_hi ? &hi : NULL, &tmp[n]))) n++;
            pos++;
        }
        if (!rc && n && !(parts = sib_arena_memdup(j->a, tmp, n * sizeof *tmp))) rc = SIB_ENOMEM;
        free(tmp);
    }
    mt_rowview_free(&x.view);
    free(x.tmp);
    j->pin.parts = parts;
    j->pin.nparts = rc ? 0 : n;
    return rc;
}

static int pin(rjob *j, st_table *t)
{
    size_t nm = 0;
    for (st_mem *m = t->frozen; m; m = m->next) nm++;
    j->pin.mems = nm ? sib_arena_alloc(j->a, nm * sizeof *j->pin.mems) : NULL;
    j->pin.ssts = t->nssts ? sib_arena_alloc(j->a, t->nssts * sizeof *j->pin.ssts) : NULL;
    if ((nm && !j->pin.mems) || (t->nssts && !j->pin.ssts)) return SIB_ENOMEM;
    for (st_mem *m = t->frozen; m; m = m->next) {
        st_mem_ref(m);
        j->pin.mems[j->pin.nmems++] = m;
    }
    for (size_t i = 0; i < t->nssts; i++) {
        sst_ref(t->ssts[i]);
        j->pin.ssts[j->pin.nssts++] = t->ssts[i];
    }
    j->pin.bc = storage_bcache(t->s);
    return snapshot(j, &t->mem->mt);
}

static void job_free(rjob *j)
{
    for (size_t i = 0; i < j->pin.nmems; i++) st_mem_unref(j->pin.mems[i]);
    for (size_t i = 0; i < j->pin.nssts; i++) sst_unref(j->pin.ssts[i]);
    sib_arena_destroy(j->a);
    free(j);
}

/* ---- the pool ---- */

/* Two FIFO queues: a partition read (one client's point read) goes before
 * the pieces of scans, so it never waits behind a queue of them; after
 * RP_SCAN_EVERY partition reads in a row with scans waiting, one scan
 * piece goes first, so scans are slowed, never starved. */
#define RP_SCAN_EVERY 4

typedef struct rjob_q { rjob *head, *tail; } rjob_q;

static void q_push(rjob_q *q, rjob *j)
{
    j->next = NULL;
    if (q->tail) q->tail->next = j;
    else q->head = j;
    q->tail = j;
}

static rjob *q_pop(rjob_q *q)
{
    rjob *j = q->head;
    if (j && !(q->head = j->next)) q->tail = NULL;
    return j;
}

struct st_readpool {
    storage *s;
    struct ev_loop *loop;
    ev_async async;
    pthread_t *thr;
    size_t nthr, started;
    pthread_mutex_t mu;
    pthread_cond_t cv, done_cv;
    bool stop;                /* under mu: threads exit */
    rjob_q parts, scans;      /* under mu: partition reads, scan pieces */
    unsigned streak;          /* under mu: partition reads taken while scans waited */
    rjob *done;               /* under mu */
    size_t queued, running;   /* under mu */
    bool draining;            /* loop side: refuse new jobs */
    st_rpage *spares;         /* loop side: emptied point pages for reuse */
    size_t nspares;
    st_iter *iter;            /* loop side: the inline reads' recycled iterator */
    size_t inflight;          /* loop side: submitted, not yet delivered */
    uint64_t inline_reads, pool_reads;
};

/* Point reads are most of the traffic: their pages are reused (no
 * allocation on the inline path once warm). Loop thread only. */
#define RP_SPARE_PAGES 64

static st_rpage *page_get(st_readpool *p)
{
    st_rpage *pg = p ? p->spares : NULL;
    if (pg) {
        p->spares = pg->next_spare;
        p->nspares--;
        pg->next_spare = NULL;
        return pg;
    }
    if ((pg = page_new(RP_POINT_CHUNK))) pg->home = p;
    return pg;
}

/* What a borrowing page held goes: its iterator back to the loop's spare
 * (or away), its memtable reference. */
static void page_unborrow(st_rpage *pg)
{
    st_iter *it = pg->it;
    if (pg->mem) {
        st_mem_unref(pg->mem);
        pg->mem = NULL;
    }
    if (!it) return;
    pg->it = NULL;
    st_readpool *p = pg->home;
    if (p && !p->iter) p->iter = st_iter_recycle(it);
    else st_iter_destroy(it);
}

static bool page_keep(st_rpage *pg)
{
    st_readpool *p = pg->home;
    if (!p || p->nspares >= RP_SPARE_PAGES || p->draining) return false;
    sib_arena_clear(pg->a); /* keeps one chunk */
    pg->parts = NULL;
    pg->nparts = pg->capparts = pg->nrows = 0;
    pg->mut = NULL;
    pg->mutlen = 0;
    pg->more = false;
    pg->resume = NULL;
    pg->status = 0;
    sib_err_clear(&pg->err);
    pg->next_spare = p->spares;
    p->spares = pg;
    p->nspares++;
    return true;
}

static void *rp_main(void *arg)
{
    sib_thread_setup("sib-read", false);
    st_readpool *p = arg;
    st_iter *spare = NULL; /* this worker's recycled iterator */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->parts.head && !p->scans.head && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
        bool scan_turn = p->scans.head && (!p->parts.head || p->streak >= RP_SCAN_EVERY);
        rjob *j = q_pop(scan_turn ? &p->scans : &p->parts);
        if (!j) break;
        p->streak = scan_turn || !p->scans.head ? 0 : p->streak + 1;
        p->queued--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        job_run(j, &spare);
        pthread_mutex_lock(&p->mu);
        p->running--;
        j->next = p->done;
        p->done = j;
        pthread_cond_broadcast(&p->done_cv);
        ev_async_send(p->loop, &p->async);
    }
    pthread_mutex_unlock(&p->mu);
    st_iter_destroy(spare);
    return NULL;
}

/* Delivers the finished jobs, oldest first (loop thread). */
static void rp_poll(st_readpool *p)
{
    pthread_mutex_lock(&p->mu);
    rjob *d = p->done;
    p->done = NULL;
    pthread_mutex_unlock(&p->mu);
    rjob *rev = NULL; /* the done list is newest first */
    while (d) {
        rjob *nx = d->next;
        d->next = rev;
        rev = d;
        d = nx;
    }
    while (rev) {
        rjob *j = rev;
        rev = j->next;
        st_rpage *pg = j->page;
        st_read_fn cb = j->cb;
        void *ctx = j->ctx;
        /* by id: the table may have been dropped while the piece ran */
        st_table *t = j->rq.pk && pg->status == 0 ? storage_table_find(p->s, j->table_id) : NULL;
        if (t) st_note_sstables_per_read(t, pg->sstables);
        job_free(j);
        if (--p->inflight == 0) ev_unref(p->loop);
        cb(ctx, pg);
    }
}

static void on_async(struct ev_loop *loop, ev_async *w, int revents) { rp_poll(w->data); }

int st_readpool_start(st_readpool **out, storage *s, struct ev_loop *loop, sib_err *err)
{
    *out = NULL;
    const storage_opts *o = storage_get_opts(s);
    size_t n = o->concurrent_reads > 0 ? (size_t)o->concurrent_reads : RP_DEFAULT_THREADS;
    st_readpool *p = calloc(1, sizeof *p);
    if (!p || !(p->thr = calloc(n, sizeof *p->thr))) {
        free(p);
        return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    }
    p->s = s;
    p->loop = loop;
    p->nthr = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    ev_async_init(&p->async, on_async);
    p->async.data = p;
    ev_async_start(loop, &p->async);
    ev_unref(loop); /* an idle pool does not keep the loop running; pieces in flight do */
    for (; p->started < n; p->started++)
        if (pthread_create(&p->thr[p->started], NULL, rp_main, p)) {
            st_readpool_stop(p);
            return sib_err_set(err, SIB_ESERVER, "storage: cannot start a read thread");
        }
    *out = p;
    return 0;
}

void st_readpool_drain(st_readpool *p)
{
    if (!p) return;
    p->draining = true;
    while (p->inflight) {
        pthread_mutex_lock(&p->mu);
        while (!p->done && (p->queued || p->running)) pthread_cond_wait(&p->done_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
        rp_poll(p);
    }
}

void st_readpool_stop(st_readpool *p)
{
    if (!p) return;
    st_readpool_drain(p);
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->started; i++) pthread_join(p->thr[i], NULL);
    while (p->spares) {
        st_rpage *pg = p->spares;
        p->spares = pg->next_spare;
        pg->home = NULL;
        st_rpage_destroy(pg);
    }
    st_iter_destroy(p->iter);
    ev_ref(p->loop);
    ev_async_stop(p->loop, &p->async);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->done_cv);
    free(p->thr);
    free(p);
}

/* Can memory alone answer this partition read (of token tok)? */
static bool memory_only(const st_table *t, int64_t tok)
{
    for (size_t i = 0; i < t->nssts; i++)
        if (sst_may_contain(t->ssts[i], tok)) return false;
    return true;
}

int st_read_page(st_table *t, const st_rreq *rq, st_rpage **page, st_read_fn cb, void *ctx, sib_err *err)
{
    st_readpool *p = storage_readpool(t->s);
    *page = NULL;
    if (p && p->draining) return sib_err_set(err, SIB_ESERVER, "storage: shutting down, read refused");
    int64_t tok = rq->pk ? rq_token(rq) : 0; /* a partition read's key is hashed once, here (or by the caller) */
    /* memory: no SSTable's bloom filter admits tok, checked even without a
     * pool (which then runs any other read here, by the job path below), so
     * an inline read with cache_only false is one memory alone answers:
     * run_partition's st_read_kv relies on it */
    bool memory = rq->pk && memory_only(t, tok);
    if (rq->pk && (memory || storage_bcache(t->s))) { /* inline when memory answers: st_read on the live table */
        bool cache_only = !memory;
        st_rpage *pg = page_get(p);
        if (!pg) return sib_err_set(err, SIB_ENOMEM, "storage: out of memory (read)");
        page_fail(pg, run_partition(rq, tok, NULL, t, t->id, cache_only, pg, p ? &p->iter : NULL));
        if (pg->status != SIB_EAGAIN) {
            if (pg->status == 0) st_note_sstables_per_read(t, pg->sstables);
            if (p) p->inline_reads++;
            *page = pg;
            return 0;
        }
        st_rpage_destroy(pg); /* a block is not cached: the pool reads it */
    }
    rjob *j = calloc(1, sizeof *j);
    int rc = SIB_ENOMEM;
    if (j && (j->a = sib_arena_create(RP_ARENA_CHUNK)) && (j->page = rq->pk ? page_get(p) : page_new(RP_ARENA_CHUNK)) && copy_request(j, rq, tok))
        rc = pin(j, t);
    if (rc) {
        if (j) {
            st_rpage_destroy(j->page);
            job_free(j);
        }
        return sib_err_set(err, rc, "storage: out of memory (read)");
    }
    memcpy(j->table_id, t->id, 16);
    if (!p) { /* no loop, no pool: the same piece, run here */
        job_run(j, NULL);
        *page = j->page;
        job_free(j);
        return 0;
    }
    j->cb = cb;
    j->ctx = ctx;
    if (p->inflight++ == 0) ev_ref(p->loop);
    p->pool_reads++;
    pthread_mutex_lock(&p->mu);
    q_push(j->rq.pk ? &p->parts : &p->scans, j);
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 1;
}

void storage_read_drain(storage *s) { st_readpool_drain(storage_readpool(s)); }

void storage_read_stats(storage *s, st_read_stats *out)
{
    memset(out, 0, sizeof *out);
    st_readpool *p = storage_readpool(s);
    if (!p) return;
    out->inline_reads = p->inline_reads;
    out->pool_reads = p->pool_reads;
    pthread_mutex_lock(&p->mu);
    out->queued = p->queued;
    out->running = p->running;
    pthread_mutex_unlock(&p->mu);
}

/* ---- replicas' answers (coordinator reads) ----
 *
 * The replicas' unfiltered pieces are applied to a private memtable: its
 * apply is the LWW merge every write goes through, and its read path is
 * st_read's, so the reconciled partition reads exactly as a local one. */

struct st_merge {
    st_mem *m;
};

st_merge *st_merge_create(void)
{
    st_merge *mg = calloc(1, sizeof *mg);
    if (mg && !(mg->m = st_mem_create())) {
        free(mg);
        return NULL;
    }
    return mg;
}

void st_merge_destroy(st_merge *mg)
{
    if (!mg) return;
    st_mem_unref(mg->m);
    free(mg);
}

int st_merge_add(st_merge *mg, const uint8_t *p, size_t n, sib_err *err)
{
    if (mut_validate(p, n)) return sib_err_set(err, SIB_ECORRUPT, "a replica's answer does not decode");
    sib_rd r;
    mut_hdr h;
    sib_rd_init(&r, p, n);
    if (mut_decode_hdr(&r, &h)) return sib_err_set(err, SIB_ECORRUPT, "a replica's answer does not decode");
    return memtable_apply(&mg->m->mt, &h, sib_murmur3_token(h.pk, h.pklen), &r, err);
}

int st_merge_read(st_merge *mg, const uint8_t id[16], const st_rreq *rq, st_rpage **page, sib_err *err)
{
    *page = NULL;
    st_rpage *pg = page_new(rq->pk ? RP_POINT_CHUNK : RP_ARENA_CHUNK);
    if (!pg) return sib_err_set(err, SIB_ENOMEM, "storage: out of memory (read)");
    st_pin v = {.mems = &mg->m, .nmems = 1};
    if (rq->pk) {
        page_fail(pg, run_partition(rq, rq_token(rq), &v, NULL, id, false, pg, NULL));
    } else { /* a scan of the merged partitions (a coordinator's range read) */
        rjob j = {.rq = *rq, .pin = v, .page = pg};
        memcpy(j.table_id, id, 16);
        page_fail(pg, run_scan(&j, NULL));
    }
    *page = pg;
    return 0;
}
