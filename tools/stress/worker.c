/* worker.c: the load-generating threads of sibyl-stress.
 *
 * A worker owns `conns` connections to each node of the ring and a pool
 * of `inflight` operation slots per connection. Two modes:
 *
 *  - as fast as possible: every connection is filled to `inflight`; each
 *    completion (a callback inside cli_client_io) records its
 *    latency and immediately queues the next operation on the same
 *    connection, which cli_client_io flushes before returning, so the
 *    pipeline never drains between poll rounds. Latency = response time -
 *    send time.
 *  - fixed rate (-rate fixed=R/s): the worker's share R/threads defines an
 *    intended start time for operation k: t0 + k / rate. An operation is
 *    sent when its time has come and a slot is free, and its latency is
 *    measured from the INTENDED time, so a stall in the server shows up in
 *    the latencies of every operation that had to wait, instead of being
 *    hidden by the client sending less (coordinated omission).
 *
 * The worker polls its sockets itself (epoll and cli_client_io) because the
 * fixed-rate loop sleeps in 100 us steps: a millisecond timeout would
 * either spin (timeout 0 until the next intended start) or send up to 1 ms
 * late, which the latency from the intended start would then include
 * (epoll_pwait2 takes a nanosecond timeout). Each step sends what became due
 * during it as a batch; when the next step is at most a tick away the
 * thread sleeps through it and then takes the replies (wait_next). epoll
 * rather than ppoll: ten thousand waits a second over every connection made
 * the kernel's per-call scan of the fds the client's main cost (0.9 of a
 * core at 200k/s fixed, on a 2-core machine that also runs the server);
 * epoll's cost follows the ready sockets.
 *
 * Token-aware routing (several nodes with tokens): an operation is built
 * when it is claimed, its partition key's token names its node (ring.c),
 * and it goes on a connection of that node with a free slot: the one
 * whose answer freed the slot when it is that node's, else the node's
 * next one round robin. When that node's slots are all busy it is parked
 * (its rebuild state and intended start kept) until one frees; the
 * parking holds a few operations per node, and nothing more is claimed
 * while it is full. A node with no live connection (down, reconnecting)
 * fails its operations at once, so they count as errors of that node and
 * the others' keep going. Without routing (one node, -mode redis) the
 * operation goes on the connection with the free slot, unbuilt until then.
 *
 * Completions are appended to a per-thread pending list while callbacks run
 * and moved into the worker's interval stats under its mutex once per poll
 * round: the reporter thread never waits on a hot lock.
 *
 * Failures, as a driver handles them:
 *  - Unprepared (0x2500, e.g. the node restarted and lost its statement
 *    cache): the operation sends PREPARE for its statement on the same
 *    connection (asynchronously: callbacks must not block), stores the new
 *    id for every later operation on that connection, and sends the same
 *    request again, rebuilt from the rng state saved when it was first
 *    built. Once per operation: a second Unprepared is an error. Counted
 *    in the stats as re-prepares.
 *  - a broken connection: the requests in flight on it are errors; the
 *    connection is re-opened (same node) after 100 ms, doubling up to 2 s,
 *    at most RECONNECT_MAX times in a row before it is given up. The old
 *    statement ids are kept: Sibyl's (like Cassandra's) ids are a hash of
 *    keyspace and text, so after a restart the first EXECUTE draws
 *    Unprepared and the path above re-prepares, exactly once per statement
 *    and connection that needs it. The worker fails only when every one of
 *    its connections has been given up.
 */
#define _GNU_SOURCE /* ppoll */
#include "stress.h"

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <stdlib.h>
#include <time.h>

enum { MAX_ID = 255, RECONNECT_MAX = 30, RECONNECT_TIMEOUT_MS = 2000 };
#define DRAIN_TIMEOUT_NS 10000000000LL
#define POLL_MAX_NS 100000000LL
#define RATE_TICK_NS 100000
#define BACKOFF_MIN_NS 100000000LL
#define BACKOFF_MAX_NS 2000000000LL

typedef struct wctx wctx;

typedef struct op {
    struct wconn *c;
    int64_t start_ns; /* intended start (fixed rate) or send time */
    int64_t sent_ns;
    uint64_t seq;
    sib_rng rng;     /* the rng before the request was built: a retry rebuilds it */
    uint32_t partitions, rows; /* what the request writes */
    uint8_t type;    /* index into o->ops */
    bool busy;       /* sent, its callback not run yet */
    bool retried;    /* re-prepared once already */
} op;

typedef struct wconn {
    wctx *x;
    int node;        /* index in the ring */
    cli_client *cl;  /* the connection: CQL, */
    resp_conn *rc;   /* or Redis (-mode redis) */
    cli_client_opts co;
    op *ops;         /* inflight slots */
    uint32_t *free;  /* free slot stack */
    uint32_t nfree;
    bool dead;       /* broken; reconnect at next_try_ns unless gave_up */
    bool gave_up;
    int failures;    /* reconnect attempts failed in a row */
    int64_t next_try_ns;
    uint8_t ids[STRESS_MAX_OPS][MAX_ID]; /* prepared ids on this connection */
    uint16_t id_len[STRESS_MAX_OPS];
    const void *reg;       /* the connection whose fd is in the epoll set, and */
    uint32_t reg_events;   /* the events it is registered for */
} wconn;

typedef struct done_rec {
    uint64_t ns, sent_ns; /* latency from the intended start, and from the send */
    uint32_t partitions, rows;
    uint16_t node;
    uint8_t type;
    uint8_t outcome; /* 0 ok, 1 error, 2 miss */
} done_rec;

/* A claimed operation waiting for a free slot on its node (routing): what
 * rebuilds it, and the node it goes to (-1: any). */
typedef struct parked {
    uint64_t seq;
    sib_rng rng;
    int64_t start_ns; /* intended start (fixed rate), or 0 */
    int node;
    uint8_t type;
} parked;

struct wctx {
    stress_worker *w;
    stress_shared *sh;
    const stress_opts *o;
    wconn *conns;         /* per_node connections to each ring node in turn */
    int epfd;
    struct epoll_event *evs; /* one per connection */
    int nconns, per_node;
    bool routing;         /* token-aware (stress_shared.routing) */
    int *node_rr;         /* routing: each node's connection to try next */
    int any_rr;           /* routing: the next connection for an op of no node */
    parked *park;         /* routing: claimed operations waiting for a slot */
    int npark, park_cap;
    sib_buf scratch;      /* routing: composite partition keys */
    sib_rng rng;
    stress_req req;       /* the request being built (values copied out by each send) */
    done_rec *pend;
    size_t npend, cap;
    uint64_t reprepares, reconnects; /* not yet moved into the interval stats */
    bool exhausted;       /* no more operations to claim */
    double interval_ns;   /* fixed rate: time between intended starts */
    double next_ns;       /* fixed rate: intended start of the next operation */
    double tick_ns;       /* fixed rate: no sends before this time (issue_due) */
    bool slots_full;      /* fixed rate: operations are due but no slot is free */
    int rr;               /* fixed rate: connection the next batch starts on */
    char err[512];
};

bool stress_claim(stress_shared *sh, uint64_t *seq)
{
    if (atomic_load_explicit(&sh->stop, memory_order_relaxed)) return false;
    if (sh->end_ns && sib_mono_ns() >= sh->end_ns) return false;
    uint64_t k = atomic_fetch_add_explicit(&sh->issued, 1, memory_order_relaxed);
    if (sh->o->n && k >= sh->o->n) return false;
    *seq = k;
    return true;
}

/* ---- the connection: CQL (cli_client) or Redis (resp_conn) ---- */

static const void *conn_id(const wconn *c) { return c->rc ? (const void *)c->rc : (const void *)c->cl; }
static int conn_fd(const wconn *c) { return c->rc ? resp_fd(c->rc) : cli_client_fd(c->cl); }
static short conn_events(const wconn *c) { return c->rc ? resp_events(c->rc) : cli_client_events(c->cl); }
static uint32_t conn_inflight(const wconn *c) { return c->rc ? resp_inflight(c->rc) : cli_client_inflight(c->cl); }
static int conn_flush(wconn *c) { return c->rc ? resp_flush(c->rc, NULL) : cli_client_flush(c->cl, NULL); }

static int conn_io(wconn *c, short revents, sib_err *err)
{
    return c->rc ? resp_io(c->rc, revents, err) : cli_client_io(c->cl, revents, err);
}

static void conn_close(wconn *c)
{
    resp_close(c->rc);
    cli_client_close(c->cl);
    c->rc = NULL;
    c->cl = NULL;
}

/* ---- completions ---- */

static void push_done(wctx *x, uint64_t ns, uint64_t sent_ns, uint8_t type, uint8_t outcome, uint32_t partitions,
                      uint32_t rows, int node)
{
    if (x->npend == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 1024;
        done_rec *p = realloc(x->pend, cap * sizeof(*p));
        if (!p) return; /* a lost sample under OOM beats a crash */
        x->pend = p;
        x->cap = cap;
    }
    x->pend[x->npend++] = (done_rec){ns, sent_ns, partitions, rows, (uint16_t)node, type, outcome};
}

static void flush_done(wctx *x)
{
    if (!x->npend && !x->reprepares && !x->reconnects && !x->err[0]) return;
    stress_worker *w = x->w;
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < x->npend; i++) {
        const done_rec *d = &x->pend[i];
        w->interval.ops[d->type]++;
        w->interval.node_ops[d->node]++;
        if (d->outcome == 1) {
            w->interval.errors[d->type]++;
            w->interval.node_errors[d->node]++;
            continue;
        }
        if (d->outcome == 2) w->interval.misses++;
        w->interval.partitions[d->type] += d->partitions;
        w->interval.rows[d->type] += d->rows;
        hist_record(&w->interval.h[d->type], d->ns);
        hist_record(&w->interval.sent, d->sent_ns);
    }
    w->interval.reprepares += x->reprepares;
    w->interval.reconnects += x->reconnects;
    if (x->err[0]) {
        memcpy(w->last_error, x->err, sizeof(w->last_error));
        x->err[0] = 0;
    }
    pthread_mutex_unlock(&w->mu);
    x->npend = 0;
    x->reprepares = x->reconnects = 0;
}

/* Skips the tracing id / warnings / custom payload a response may start with. */
static bool skip_prefix(sib_rd *r, uint8_t flags)
{
    const uint8_t *p;
    cql_str s;
    uint16_t n;
    if ((flags & CQL_FLAG_TRACING) && !sib_rd_bytes(r, 16, &p)) return false;
    if (flags & CQL_FLAG_WARNING) {
        if (!cql_get_short(r, &n)) return false;
        for (uint16_t i = 0; i < n; i++)
            if (!cql_get_string(r, &s)) return false;
    }
    return !(flags & CQL_FLAG_CUSTOM_PAYLOAD) || cql_skip_bytes_map(r);
}

/* Rows in a read's answer. The prepared read asks for SKIP_METADATA, so the
 * count sits right after two ints; with metadata the full decoder runs. */
static int64_t row_count(wctx *x, cli_client *cl, const cli_frame *f)
{
    sib_rd r;
    sib_rd_init(&r, f->body, f->len);
    int32_t kind, mflags, ncols, nrows;
    if (!skip_prefix(&r, f->flags) || !cql_get_int(&r, &kind) || kind != CQL_RESULT_ROWS) return -1;
    if (!cql_get_int(&r, &mflags) || !cql_get_int(&r, &ncols)) return -1;
    if (mflags & CQL_ROWS_NO_METADATA) {
        cql_value ps;
        if ((mflags & CQL_ROWS_HAS_MORE_PAGES) && !cql_get_bytes(&r, &ps)) return -1;
        return cql_get_int(&r, &nrows) ? nrows : -1;
    }
    cli_result res;
    sib_err e;
    int64_t n = -1;
    if (cli_result_decode(cli_client_types(cl), 4, f->opcode, f->flags, f->body, f->len, &res, &e) == 0 &&
        res.kind == CLI_RESULT_ROWS)
        n = res.u.rows.nrows;
    cli_result_free(&res);
    return n;
}

static void note_error(wctx *x, const cli_frame *f, const sib_err *err)
{
    if (!f) {
        snprintf(x->err, sizeof(x->err), "%s", err->msg);
        return;
    }
    sib_rd r;
    int32_t code;
    cql_str msg = {"", 0};
    sib_rd_init(&r, f->body, f->len);
    if (skip_prefix(&r, f->flags) && cql_get_int(&r, &code) && cql_get_string(&r, &msg))
        snprintf(x->err, sizeof(x->err), "%s: %.*s", cli_client_error_class(code), (int)msg.len, msg.p);
    else
        snprintf(x->err, sizeof(x->err), "unexpected %s response", cql_opcode_name(f->opcode));
}

static int issue_on(wconn *c, int64_t start_ns);
static void fill(wctx *x, wconn *c);
static bool unpark_on(wctx *x, wconn *c);
static int send_op(wconn *c, op *p, bool built, sib_err *err);

static bool is_read(const wctx *x, int type)
{
    op_kind k = x->sh->defs[type].kind;
    return k == OPK_READ || k == OPK_QUERY;
}

/* The operation is over: record it and free its slot. */
static void release(op *p, uint8_t outcome, uint32_t partitions, uint32_t rows)
{
    wconn *c = p->c;
    int64_t now = sib_mono_ns();
    push_done(c->x, (uint64_t)(now - p->start_ns), (uint64_t)(now - p->sent_ns), p->type, outcome, partitions, rows,
              c->node);
    p->busy = false;
    c->free[c->nfree++] = (uint32_t)(p - c->ops);
}

/* An answered operation: release it and (as fast as possible) keep the
 * pipeline full: the next request leaves with this read's flush. With
 * routing, an operation parked for this node takes the slot first. */
static void finish(op *p, uint8_t outcome, uint32_t partitions, uint32_t rows)
{
    wconn *c = p->c;
    wctx *x = c->x;
    release(p, outcome, partitions, rows);
    if (x->interval_ns != 0 || c->dead) return;
    if (!x->routing) {
        if (!x->exhausted) issue_on(c, 0);
        return;
    }
    if (!unpark_on(x, c)) fill(x, c);
}

static void on_broken(wconn *c, const sib_err *err)
{
    if (!c->dead) {
        c->dead = true;
        c->next_try_ns = sib_mono_ns() + BACKOFF_MIN_NS;
    }
    snprintf(c->x->err, sizeof(c->x->err), "%s", err && err->msg[0] ? err->msg : "connection lost");
}

/* The error code of an ERROR frame, or -1. */
static int32_t error_code(const cli_frame *f)
{
    sib_rd r;
    int32_t code;
    sib_rd_init(&r, f->body, f->len);
    return f->opcode == CQL_OP_ERROR && skip_prefix(&r, f->flags) && cql_get_int(&r, &code) ? code : -1;
}

static void on_prepared(cli_client *cl, void *ud, const cli_frame *f, const sib_err *err)
{
    op *p = ud;
    wconn *c = p->c;
    wctx *x = c->x;
    cli_result res = {0};
    sib_err e;
    if (!f) on_broken(c, err);
    int rc = f ? cli_result_decode(cli_client_types(cl), 4, f->opcode, f->flags, f->body, f->len, &res, &e) : SIB_EIO;
    if (rc == 0 && res.kind == CLI_RESULT_PREPARED && res.u.prepared.id.len <= MAX_ID) {
        memcpy(c->ids[p->type], res.u.prepared.id.p, (size_t)res.u.prepared.id.len);
        c->id_len[p->type] = (uint16_t)res.u.prepared.id.len;
        cli_result_free(&res);
        if (send_op(c, p, false, &e) == 0) return;
        snprintf(x->err, sizeof(x->err), "retry after re-prepare: %.400s", e.msg);
    } else {
        if (f) note_error(x, f, err);
        cli_result_free(&res);
    }
    finish(p, 1, 0, 0);
}

static void on_done(cli_client *cl, void *ud, const cli_frame *f, const sib_err *err)
{
    op *p = ud;
    wconn *c = p->c;
    wctx *x = c->x;
    if (f && x->o->prepared && !p->retried && error_code(f) == CQL_ERR_UNPREPARED) {
        sib_err e;
        p->retried = true;
        x->reprepares++;
        if (cli_client_send_prepare(cl, x->sh->defs[p->type].cql, on_prepared, p, &e) == 0) return;
        snprintf(x->err, sizeof(x->err), "re-prepare: %.400s", e.msg);
        finish(p, 1, 0, 0);
        return;
    }
    if (!f || f->opcode != CQL_OP_RESULT) {
        if (f) note_error(x, f, err);
        else on_broken(c, err);
        finish(p, 1, 0, 0);
        return;
    }
    if (!is_read(x, p->type)) {
        finish(p, 0, p->partitions, p->rows);
        return;
    }
    int64_t rows = row_count(x, cl, f);
    if (rows < 0) snprintf(x->err, sizeof(x->err), "malformed read result");
    if (rows < 0) finish(p, 1, 0, 0);
    else finish(p, rows == 0 && x->sh->defs[p->type].kind == OPK_READ ? 2 : 0, 1, (uint32_t)rows);
}

/* A Redis answer: SET answers OK, GET the value or nil (a miss). */
static void on_resp(void *ud, int status, const char *msg, size_t len)
{
    op *p = ud;
    wconn *c = p->c;
    wctx *x = c->x;
    if (status == RESP_BROKEN) {
        on_broken(c, NULL);
        finish(p, 1, 0, 0);
    } else if (status == RESP_ERROR) {
        snprintf(x->err, sizeof(x->err), "redis: %.*s", (int)SIB_MIN(len, 400), msg);
        finish(p, 1, 0, 0);
    } else if (!is_read(x, p->type)) {
        finish(p, 0, p->partitions, p->rows);
    } else {
        finish(p, status == RESP_NIL ? 2 : 0, 1, status == RESP_NIL ? 0 : 1);
    }
}

/* ---- issuing ---- */

static uint8_t pick_type(wctx *x)
{
    const stress_opts *o = x->o;
    if (o->nops == 1) return 0;
    int total = 0;
    for (int i = 0; i < o->nops; i++) total += o->ops[i].weight;
    int r = (int)(sib_rng_next(&x->rng) % (uint64_t)total);
    for (int i = 0; i < o->nops; i++) {
        if (r < o->ops[i].weight) return (uint8_t)i;
        r -= o->ops[i].weight;
    }
    return (uint8_t)(o->nops - 1);
}

/* Sends p's request on c: the one in x->req when built, else rebuilt
 * from p's saved seq and rng. */
static int send_op(wconn *c, op *p, bool built, sib_err *err)
{
    wctx *x = c->x;
    const stress_opts *o = x->o;
    const stress_opdef *d = &x->sh->defs[p->type];
    stress_req *req = &x->req;
    sib_rng rng = p->rng;
    if (!built && stress_build(x->sh, p->type, &rng, p->seq, req) < 0)
        return sib_err_set(err, SIB_ENOMEM, "building a request");
    p->partitions = req->partitions;
    p->rows = req->rows;
    if (o->redis) { /* build_standard: the key, then (a write) the value */
        bool w = d->kind == OPK_WRITE;
        cql_value argv[3] = {{(const uint8_t *)(w ? "SET" : "GET"), 3}, req->vals[0], w ? req->vals[1] : (cql_value){0}};
        return resp_send(c->rc, w ? 3 : 2, argv, on_resp, p, err);
    }
    cli_query_opts qo = {.consistency = o->cl, .any_cl = o->cl == CQL_ANY, .values = req->vals,
                         .nvalues = (uint16_t)req->nvals, .skip_metadata = is_read(x, p->type) && o->prepared};
    if (req->batch) {
        for (uint16_t i = 0; i < req->nstmts; i++) {
            req->stmts[i].id = c->ids[p->type];
            req->stmts[i].id_len = c->id_len[p->type];
        }
        return cli_client_send_batch(c->cl, req->batch_type, req->stmts, req->nstmts, o->cl, on_done, p, err);
    }
    if (o->prepared) return cli_client_send_execute(c->cl, c->ids[p->type], c->id_len[p->type], &qo, on_done, p, err);
    return cli_client_send_query(c->cl, d->cql, &qo, on_done, p, err);
}

/* Takes a free slot of c for an operation and sends it (built: x->req
 * holds it already). Returns 1, or a send failure (the operation is then
 * an error and the connection, if broken, dead). */
static int send_on(wconn *c, const parked *q, bool built)
{
    wctx *x = c->x;
    op *p = &c->ops[c->free[--c->nfree]];
    p->c = c;
    p->type = q->type;
    p->seq = q->seq;
    p->rng = q->rng;
    p->retried = false;
    p->busy = true;
    p->sent_ns = sib_mono_ns();
    p->start_ns = q->start_ns ? q->start_ns : p->sent_ns;
    sib_err err;
    int rc = send_op(c, p, built, &err);
    if (rc < 0) {
        snprintf(x->err, sizeof(x->err), "%s", err.msg);
        if (rc == SIB_EIO) on_broken(c, &err);
        release(p, 1, 0, 0); /* not finish: a send that fails must not loop into the next */
        return rc;
    }
    return 1;
}

/* Claims the next operation: its type, seq and the rng it is built from. */
static bool claim(wctx *x, int64_t start_ns, parked *q)
{
    if (!stress_claim(x->sh, &q->seq)) {
        x->exhausted = true;
        return false;
    }
    q->type = pick_type(x);
    q->rng = x->rng;
    sib_rng_next(&x->rng); /* the next operation draws from a different state */
    q->start_ns = start_ns;
    q->node = -1;
    return true;
}

/* Sends one operation on c (no routing). start_ns 0 = now. Returns 1 when
 * sent, 0 when c has no free slot or the run has no more operations,
 * negative on a send failure. */
static int issue_on(wconn *c, int64_t start_ns)
{
    parked q;
    if (c->nfree == 0 || c->dead || !claim(c->x, start_ns, &q)) return 0;
    return send_on(c, &q, false);
}

/* ---- token-aware routing ---- */

/* The node owning the partition of the request in x->req; -1 when its
 * statement has no partition key to route by. */
static int route(wctx *x, int type)
{
    const stress_opdef *d = &x->sh->defs[type];
    const stress_req *req = &x->req;
    int64_t t;
    size_t nvals = req->batch ? req->per_stmt : req->nvals; /* a batch goes where its first statement does */
    if (!stress_routing_token(req->vals, nvals, d->pk_index, d->npk, &x->scratch, &t)) return -1;
    return ring_lookup(&x->sh->ring, t);
}

/* A connection of node n (-1: any node) with a free slot: hint when it
 * qualifies (its answer just freed the slot), else the next one round
 * robin. NULL when none; *alive then says whether n has a live one. */
static wconn *conn_for(wctx *x, int n, wconn *hint, bool *alive)
{
    *alive = false;
    if (hint && !hint->dead && hint->nfree && (n < 0 || hint->node == n)) return hint;
    int first = n < 0 ? 0 : n * x->per_node, count = n < 0 ? x->nconns : x->per_node;
    int *rr = n < 0 ? &x->any_rr : &x->node_rr[n];
    for (int k = 0; k < count; k++) {
        int i = (*rr + k) % count;
        wconn *c = &x->conns[first + i];
        if (c->dead) continue;
        *alive = true;
        if (c->nfree == 0) continue;
        *rr = (i + 1) % count;
        return c;
    }
    return NULL;
}

/* Sends q to its node if a slot is free there; fails it when the node has
 * no live connection (its requests are errors while it is down). 1 when
 * done, 0 when it has to wait. */
static int dispatch(wctx *x, const parked *q, wconn *hint, bool built)
{
    bool alive;
    wconn *c = conn_for(x, q->node, hint, &alive);
    if (c) {
        send_on(c, q, built);
        return 1;
    }
    if (alive) return 0;
    int node = q->node < 0 ? 0 : q->node;
    push_done(x, 0, 0, q->type, 1, 0, 0, node);
    snprintf(x->err, sizeof(x->err), "node %s is down", x->sh->ring.nodes[node].name);
    return 1;
}

static bool any_live(const wctx *x)
{
    for (int i = 0; i < x->nconns; i++)
        if (!x->conns[i].dead) return true;
    return false;
}

/* Claims an operation, builds it and sends it to its partition's node
 * (hint first when that is one of the node's), parks it until a slot
 * there frees, or fails it when the node is down. 1 when an operation was
 * claimed, 0 when none could be (no more, parking full, every node down). */
static int issue_routed(wctx *x, wconn *hint, int64_t start_ns)
{
    parked q;
    if (x->npark == x->park_cap || !any_live(x) || !claim(x, start_ns, &q)) return 0;
    sib_rng rng = q.rng;
    if (stress_build(x->sh, q.type, &rng, q.seq, &x->req) < 0) {
        push_done(x, 0, 0, q.type, 1, 0, 0, 0);
        snprintf(x->err, sizeof(x->err), "building a request: out of memory");
        return 1;
    }
    q.node = route(x, q.type);
    if (dispatch(x, &q, hint, true) == 0) x->park[x->npark++] = q;
    return 1;
}

/* The oldest operation parked for c's node (or for any node) takes c's
 * free slot. True when one did. */
static bool unpark_on(wctx *x, wconn *c)
{
    for (int i = 0; i < x->npark; i++) {
        if (x->park[i].node >= 0 && x->park[i].node != c->node) continue;
        parked q = x->park[i];
        memmove(&x->park[i], &x->park[i + 1], (size_t)(x->npark - i - 1) * sizeof(*x->park));
        x->npark--;
        send_on(c, &q, false);
        return true;
    }
    return false;
}

/* Every parked operation whose node has a free slot now goes, in the
 * order they were claimed; those of a node that went down fail. */
static void drain_parked(wctx *x)
{
    int kept = 0;
    for (int i = 0; i < x->npark; i++) {
        parked q = x->park[i];
        if (dispatch(x, &q, NULL, false) == 0) x->park[kept++] = q;
    }
    x->npark = kept;
}

/* As fast as possible: claims operations until c's free slot is taken
 * (by one of its node's, others going to their own nodes), parking is
 * full or the run has no more. */
static void fill(wctx *x, wconn *c)
{
    if (!x->routing) {
        while (issue_on(c, 0) == 1) {
        }
        return;
    }
    while (c->nfree && !c->dead && issue_routed(x, c, 0) == 1) {
    }
}

/* Fixed rate: send every operation whose intended time has come. A batch
 * goes to one connection while it has free slots (one send for the batch),
 * and the next batch starts on the next connection, so the load still
 * spreads over all of them. With routing each operation goes to its node
 * (parked, with its intended start, while that node's slots are busy). */
static void issue_due(wctx *x)
{
    double now = (double)sib_mono_ns();
    /* Sends go out once per RATE_TICK_NS. Under load every response wakes
     * the loop, and sending what was due at each wake-up put one or two
     * requests in each packet: a system call (and a server read) per
     * request, on both sides of a machine they share. Waiting for the tick
     * batches them, as a driver coalesces the writes of one event-loop
     * round; the wait counts in the latency, which starts at the intended
     * time. */
    if (now < x->tick_ns) return;
    x->tick_ns = now + RATE_TICK_NS;
    int full = 0;
    if (x->routing) {
        drain_parked(x);
        while (x->next_ns <= now && !x->exhausted) {
            if (issue_routed(x, &x->conns[x->rr], (int64_t)x->next_ns) != 1) {
                full = x->nconns;
                break;
            }
            x->next_ns += x->interval_ns;
        }
    } else {
        while (x->next_ns <= now && !x->exhausted && full < x->nconns) {
            if (issue_on(&x->conns[x->rr], (int64_t)x->next_ns) == 1) {
                x->next_ns += x->interval_ns;
                continue;
            }
            x->rr = (x->rr + 1) % x->nconns;
            full++;
        }
    }
    x->slots_full = full == x->nconns;
    x->rr = (x->rr + 1) % x->nconns;
}

/* ---- connections ---- */

static int prepare_one(wconn *c, const char *cql, int type, sib_err *err)
{
    cli_result r;
    int rc = cli_client_prepare(c->cl, cql, &r, err);
    if (rc == 0 && r.kind == CLI_RESULT_ERROR) rc = cli_result_to_err(&r, err);
    else if (rc == 0 && (r.kind != CLI_RESULT_PREPARED || r.u.prepared.id.len > MAX_ID))
        rc = sib_err_set(err, SIB_EPROTO, "unexpected answer to PREPARE");
    if (rc == 0) {
        memcpy(c->ids[type], r.u.prepared.id.p, (size_t)r.u.prepared.id.len);
        c->id_len[type] = (uint16_t)r.u.prepared.id.len;
    }
    cli_result_free(&r);
    return rc;
}

static void reset_slots(wconn *c, int inflight)
{
    for (int k = 0; k < inflight; k++) {
        c->free[k] = (uint32_t)k;
        c->ops[k].busy = false;
    }
    c->nfree = (uint32_t)inflight;
}

/* Prepares every statement c has no id for yet (a connection opened or
 * re-opened); a re-opened one keeps its ids (see the top of the file). */
static int prepare_missing(wctx *x, wconn *c, sib_err *err)
{
    int rc = 0;
    for (int t = 0; rc == 0 && x->o->prepared && !x->o->redis && t < x->o->nops; t++)
        if (c->id_len[t] == 0) rc = prepare_one(c, x->sh->defs[t].cql, t, err);
    return rc;
}

/* Opens per_node connections to every ring node. With several nodes, one
 * that cannot be reached now is retried like a broken one (its requests
 * fail meanwhile); the worker fails when it reaches none, or when a
 * statement cannot be prepared. */
static int open_conns(wctx *x, sib_err *err)
{
    const stress_opts *o = x->o;
    const stress_ring *ring = &x->sh->ring;
    x->per_node = o->conns;
    x->nconns = o->conns * (int)ring->nnodes;
    x->routing = x->sh->routing;
    x->conns = calloc((size_t)x->nconns, sizeof(*x->conns));
    x->evs = calloc((size_t)x->nconns, sizeof(*x->evs));
    x->node_rr = calloc(ring->nnodes, sizeof(*x->node_rr));
    /* Parking for a few claimed operations per node: enough that a slot
     * freed on one node rarely waits for an operation of its own. */
    x->park_cap = x->routing ? SIB_MAX(4, o->inflight) * (int)ring->nnodes : 0;
    x->park = calloc((size_t)x->park_cap + 1, sizeof(*x->park));
    if (!x->conns || !x->evs || !x->node_rr || !x->park) return sib_err_set(err, SIB_ENOMEM, "connections");
    if ((x->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) return sib_err_errno(err, "epoll_create1");
    int opened = 0;
    for (int i = 0; i < x->nconns; i++) {
        wconn *c = &x->conns[i];
        c->x = x;
        c->node = i / x->per_node;
        c->ops = calloc((size_t)o->inflight, sizeof(*c->ops));
        c->free = malloc(sizeof(*c->free) * (size_t)o->inflight);
        if (!c->ops || !c->free) return sib_err_set(err, SIB_ENOMEM, "operation slots");
        reset_slots(c, o->inflight);
        const stress_node *n = &ring->nodes[c->node];
        /* Two spare stream ids: a re-prepare runs next to full slots. */
        c->co = (cli_client_opts){.host = n->host, .port = n->port, .lz4 = o->lz4,
                                  .max_streams = (uint32_t)o->inflight + 2,
                                  .keyspace = o->cmd == CMD_USER ? x->sh->profile->keyspace : NULL};
        int rc = o->redis ? resp_connect(&c->rc, c->co.host, c->co.port, 0, err) : cli_client_connect(&c->cl, &c->co, err);
        if (rc == SIB_EIO && ring->nnodes > 1) {
            c->dead = true;
            c->next_try_ns = sib_mono_ns() + BACKOFF_MIN_NS;
            snprintf(x->err, sizeof(x->err), "%s: %.400s", n->name, err->msg);
            continue;
        }
        if (rc == 0) rc = prepare_missing(x, c, err);
        if (rc < 0 && ring->nnodes > 1) { /* say which node (its schema may differ) */
            char msg[sizeof(err->msg)];
            snprintf(msg, sizeof(msg), "%s: %.400s", n->name, err->msg);
            memcpy(err->msg, msg, sizeof(msg));
        }
        if (rc < 0) return rc;
        opened++;
    }
    return opened ? 0 : SIB_EIO; /* err: the last node's reason */
}

/* Re-opens a broken connection once its back-off has passed. Requests the
 * old connection never answered (none once its callbacks ran) are errors. */
static void reconnect(wctx *x, wconn *c)
{
    int64_t now = sib_mono_ns();
    if (!c->dead || c->gave_up || x->exhausted || now < c->next_try_ns) return;
    for (int k = 0; k < x->o->inflight; k++)
        if (c->ops[k].busy) push_done(x, 0, 0, c->ops[k].type, 1, 0, 0, c->node);
    reset_slots(c, x->o->inflight);
    if (c->reg) { /* out of the epoll set first: a new client may get its address */
        epoll_ctl(x->epfd, EPOLL_CTL_DEL, conn_fd(c), NULL);
        c->reg = NULL;
    }
    conn_close(c);
    sib_err err;
    cli_client_opts co = c->co;
    co.timeout_ms = RECONNECT_TIMEOUT_MS;
    int rc = x->o->redis ? resp_connect(&c->rc, co.host, co.port, co.timeout_ms, &err)
                         : cli_client_connect(&c->cl, &co, &err);
    if (rc == 0) rc = prepare_missing(x, c, &err);
    if (rc < 0) {
        conn_close(c);
        snprintf(x->err, sizeof(x->err), "reconnect: %.400s", err.msg);
        if (++c->failures >= RECONNECT_MAX) {
            c->gave_up = true;
            return;
        }
        int64_t backoff = BACKOFF_MIN_NS << SIB_MIN(c->failures, 5);
        c->next_try_ns = sib_mono_ns() + SIB_MIN(backoff, BACKOFF_MAX_NS);
        return;
    }
    c->dead = false;
    c->failures = 0;
    x->reconnects++;
    if (x->interval_ns == 0) fill(x, c);
}

static void close_conns(wctx *x)
{
    for (int i = 0; x->conns && i < x->nconns; i++) {
        conn_close(&x->conns[i]);
        free(x->conns[i].ops);
        free(x->conns[i].free);
    }
    free(x->conns);
    free(x->evs);
    if (x->epfd >= 0) close(x->epfd);
    free(x->pend);
    free(x->node_rr);
    free(x->park);
    sib_buf_free(&x->scratch);
    stress_req_free(&x->req);
}

/* ---- the loop ---- */

static uint32_t inflight_total(const wctx *x)
{
    uint32_t n = 0;
    for (int i = 0; i < x->nconns; i++)
        if (!x->conns[i].dead) n += conn_inflight(&x->conns[i]);
    return n;
}

static int64_t poll_timeout_ns(const wctx *x)
{
    if (x->interval_ns == 0 || x->exhausted) return POLL_MAX_NS;
    /* Due but every slot busy: only a response can free one, so sleep
     * until one arrives. (A zero timeout here spun the client on a core
     * the server needed, exactly when the server was behind.) */
    if (x->slots_full) return POLL_MAX_NS;
    /* The next send is at the later of the next intended start and the
     * next tick (issue_due). */
    double at = x->next_ns > x->tick_ns ? x->next_ns : x->tick_ns;
    double wait = at - (double)sib_mono_ns();
    if (wait <= 0) return 0;
    return wait > POLL_MAX_NS ? POLL_MAX_NS : (int64_t)wait;
}

/* Keeps connection i's entry in the epoll set in step with what its client
 * waits for (reading always; writing while it has unsent bytes). A closed
 * fd leaves the set by itself, so a new client (reconnect) is added anew
 * even when it got the same fd number. */
static void sync_interest(wctx *x, int i)
{
    wconn *c = &x->conns[i];
    if (c->dead || !conn_id(c)) {
        if (c->reg && c->reg == conn_id(c)) epoll_ctl(x->epfd, EPOLL_CTL_DEL, conn_fd(c), NULL);
        c->reg = NULL;
        return;
    }
    short want = conn_events(c);
    uint32_t ev = ((want & POLLIN) ? EPOLLIN : 0) | ((want & POLLOUT) ? EPOLLOUT : 0);
    if (c->reg == conn_id(c) && c->reg_events == ev) return;
    struct epoll_event e = {.events = ev, .data.u32 = (uint32_t)i};
    int fd = conn_fd(c);
    int rc = epoll_ctl(x->epfd, c->reg == conn_id(c) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &e);
    if (rc && errno == EEXIST) rc = epoll_ctl(x->epfd, EPOLL_CTL_MOD, fd, &e);
    if (rc && errno == ENOENT) rc = epoll_ctl(x->epfd, EPOLL_CTL_ADD, fd, &e);
    c->reg = rc ? NULL : conn_id(c);
    c->reg_events = ev;
}

/* Waits for socket events up to timeout_ns and lets each ready client
 * read, dispatch (callbacks) and write. */
static void poll_conns(wctx *x, int64_t timeout_ns)
{
    for (int i = 0; i < x->nconns; i++) sync_interest(x, i);
    struct timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    int n = epoll_pwait2(x->epfd, x->evs, x->nconns, &ts, NULL);
    for (int k = 0; k < n; k++) {
        int i = (int)x->evs[k].data.u32;
        uint32_t e = x->evs[k].events;
        if (i >= x->nconns || x->conns[i].dead) continue;
        short revents = (short)(((e & EPOLLIN) ? POLLIN : 0) | ((e & EPOLLOUT) ? POLLOUT : 0) |
                                ((e & EPOLLERR) ? POLLERR : 0) | ((e & EPOLLHUP) ? POLLHUP : 0));
        sib_err err;
        if (conn_io(&x->conns[i], revents, &err) < 0) on_broken(&x->conns[i], &err);
    }
}

/* Waits for the next thing to do. Fixed rate, with a free slot and the next
 * send at most a tick away: sleep until it, then take the replies that came
 * meanwhile. Waiting in
 * epoll instead woke the thread for every burst of replies, and on loopback
 * the server pays for that wake-up (the sender's send runs the receiver's
 * wake-up: a sixth of the server's CPU at 340k writes/s), which a client on
 * another machine would not cost it. A reply is then timed when it is
 * taken, up to RATE_TICK_NS late: latencies can only come out higher. At
 * lower rates, when every slot is busy, or outside fixed rate (the wait is
 * then longer than a tick: poll_timeout_ns), the wait is in epoll. */
static void wait_next(wctx *x)
{
    int64_t wait = poll_timeout_ns(x);
    if (wait > RATE_TICK_NS) {
        poll_conns(x, wait);
        return;
    }
    if (wait > 0) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = wait};
        nanosleep(&ts, NULL);
    }
    poll_conns(x, 0);
}

/* The worker ends early with code: the reason goes to the interval's
 * error line and, kept apart, to the run's final error. */
static void worker_fail(stress_worker *w, int code, const char *why)
{
    pthread_mutex_lock(&w->mu);
    snprintf(w->last_error, sizeof(w->last_error), "%s", why);
    snprintf(w->fail, sizeof(w->fail), "%s", why);
    w->rc = code;
    pthread_mutex_unlock(&w->mu);
}

/* Routing, after a poll round: parked operations go to the slots their
 * nodes freed (or fail if their node went down) and, as fast as possible,
 * connections left with free slots while parking was full are filled. */
static void refill(wctx *x)
{
    if (x->npark) drain_parked(x);
    if (x->interval_ns != 0) return;
    for (int i = 0; i < x->nconns && !x->exhausted; i++)
        if (!x->conns[i].dead && x->conns[i].nfree) fill(x, &x->conns[i]);
}

static void run_loop(wctx *x)
{
    stress_shared *sh = x->sh;
    int64_t drain_deadline = 0;
    if (x->interval_ns == 0)
        for (int i = 0; i < x->nconns; i++)
            if (!x->conns[i].dead) fill(x, &x->conns[i]);
    for (;;) {
        if (x->interval_ns > 0) issue_due(x);
        /* Checked here too: with every connection down nothing claims, and
         * a duration run must still end on time. */
        if (!x->exhausted && (atomic_load(&sh->stop) || (sh->end_ns && sib_mono_ns() >= sh->end_ns)))
            x->exhausted = true;
        if (x->exhausted) {
            if (inflight_total(x) == 0 && x->npark == 0) break;
            if (!drain_deadline) drain_deadline = sib_mono_ns() + DRAIN_TIMEOUT_NS;
            if (sib_mono_ns() > drain_deadline) break;
        }
        for (int i = 0; i < x->nconns; i++)
            if (!x->conns[i].dead) conn_flush(&x->conns[i]);
        wait_next(x);
        for (int i = 0; i < x->nconns; i++) reconnect(x, &x->conns[i]);
        if (x->routing) refill(x);
        flush_done(x);
        int usable = 0;
        for (int i = 0; i < x->nconns; i++) usable += !x->conns[i].gave_up;
        if (usable == 0) {
            worker_fail(x->w, SIB_EIO, x->err[0] ? x->err : "all connections lost and could not be re-opened");
            break;
        }
    }
    for (int i = 0; i < x->npark; i++) /* the drain timed out, or every connection was given up */
        push_done(x, 0, 0, x->park[i].type, 1, 0, 0, x->park[i].node < 0 ? 0 : x->park[i].node);
    x->npark = 0;
    flush_done(x);
}

static void *worker_main(void *arg)
{
    stress_worker *w = arg;
    stress_shared *sh = w->sh;
    wctx x = {.w = w, .sh = sh, .o = sh->o, .epfd = -1};
    sib_rng_seed(&x.rng);
    stress_req_init(&x.req);
    sib_buf_init(&x.scratch);
    sib_err err;
    if (open_conns(&x, &err) < 0) {
        worker_fail(w, err.code, err.msg);
        atomic_store(&sh->stop, true);
        close_conns(&x);
        atomic_fetch_sub(&sh->running, 1);
        return NULL;
    }
    if (sh->o->rate > 0) {
        x.interval_ns = 1e9 * sh->o->threads / sh->o->rate;
        /* The schedule starts once connected; threads are staggered so
         * their intended times interleave. */
        x.next_ns = (double)sib_mono_ns() + x.interval_ns * w->index / sh->o->threads;
    }
    run_loop(&x);
    w->end_ns = sib_mono_ns(); /* before the closes: the run's length ends here */
    close_conns(&x);
    atomic_fetch_sub(&sh->running, 1);
    return NULL;
}

int stress_workers_start(stress_shared *sh, sib_err *err)
{
    int n = sh->o->threads;
    sh->workers = calloc((size_t)n, sizeof(*sh->workers));
    if (!sh->workers) return sib_err_set(err, SIB_ENOMEM, "workers");
    for (int i = 0; i < n; i++) {
        stress_worker *w = &sh->workers[i];
        w->sh = sh;
        w->index = i;
        pthread_mutex_init(&w->mu, NULL);
        stats_reset(&w->interval);
    }
    atomic_store(&sh->running, n);
    for (int i = 0; i < n; i++) {
        int rc = pthread_create(&sh->workers[i].thread, NULL, worker_main, &sh->workers[i]);
        if (rc != 0) {
            atomic_store(&sh->stop, true);
            for (int k = 0; k < i; k++) pthread_join(sh->workers[k].thread, NULL);
            atomic_store(&sh->running, 0);
            return sib_err_set(err, SIB_EIO, "pthread_create: %s", strerror(rc));
        }
    }
    return 0;
}

void stress_workers_join(stress_shared *sh)
{
    for (int i = 0; i < sh->o->threads; i++) pthread_join(sh->workers[i].thread, NULL);
}
