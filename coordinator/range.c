/* range.c: scans through the replicas (range reads), and the RANGE_READ
 * verb's replica side.
 *
 * A scan (a SELECT without a whole partition key) reads partitions in token
 * order. With more than one node each stretch of the ring lives on other
 * replicas, so the scan goes through them stretch by stretch, the way
 * Cassandra's range commands do:
 *
 *   1. split: the executor's position (a token, maybe a key after which to
 *      go on) falls in one vnode range (previous token, T]; following vnode
 *      ranges whose replicas are the same are added to it (fewer messages),
 *      up to the query's end token (coord_range_split);
 *   2. ask: blockFor live replicas of that stretch at the CL (Unavailable
 *      otherwise, coord_check) each answer with the UNFILTERED state of
 *      their partitions after the position, each within the query's
 *      slices, deleted partitions included, in token order, up to a number
 *      of partitions (and a byte budget). The local replica reads through
 *      storage's read pool (st_read_page, unfiltered scan); the others get
 *      RANGE_READ and do the same;
 *   3. cut and reconcile: a replica that stopped at its limit knows nothing
 *      past its last partition, so the piece ends at the smallest place a
 *      replica stopped (or at the stretch's end when none did); the
 *      partitions up to there are merged by LWW (st_merge, the merge point
 *      reads use), so another replica's tombstone shadows the rows it
 *      deletes;
 *   4. the caller (cql/exec_select.c) reads the merge as a piece of its
 *      scan and asks for the next piece from where this one ended.
 *
 * Step 3 is the short-read protection: when reconciliation removed rows
 * and the piece has fewer than the page needs, the next piece asks the
 * replicas again from the cut, instead of ending the page early or
 * skipping the rows the stopped replica did not send.
 *
 * With read_repair 'BLOCKING' (the default) the piece is then repaired
 * before it is answered, as Cassandra's range reads are: each reconciled
 * partition is compared with what every replica sent for it, and a
 * replica that sent something else, or nothing, gets the reconciled state
 * of those partitions (within the query's slices) in one write
 * (range_repair). docs/cluster.md has the flow.
 *
 * Lifetime: as reads (read.c), an op lives until it answered its caller
 * AND every callback it started (local piece, messages) came back.
 */
#include "coord_int.h"
#include "messaging.h"

#include <stdlib.h>

#define DEFAULT_RANGE_TIMEOUT_MS 10000
#define MAX_REPLICAS 64
#define MAX_SLICES 4096
#define ANSWER_BYTES (1u << 20) /* an answer's budget when the caller gives none (messaging queues 4 MiB) */

enum { RF_INCL = 1, RF_KEY = 2 };

/* ---- positions ---- */

static int pos_cmp(int64_t ta, const uint8_t *a, size_t al, int64_t tb, const uint8_t *b, size_t bl)
{
    if (ta != tb) return ta < tb ? -1 : 1;
    size_t n = SIB_MIN(al, bl);
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (al < bl ? -1 : al > bl);
}

/* Is the partition (tok, pk) after the start position s? */
static bool after_start(const st_position *s, int64_t tok, const uint8_t *pk, size_t pklen)
{
    if (tok != s->token || !s->pk) return tok > s->token || (tok == s->token && s->inclusive);
    int c = pos_cmp(tok, pk, pklen, s->token, s->pk, s->pklen);
    return c > 0 || (c == 0 && s->inclusive);
}

/* ---- wire ---- */

int coord_range_encode(sib_buf *out, const coord_range_req *rq, sib_err *err)
{
    if (rq->nslices > MAX_SLICES) return sib_err_set(err, SIB_ETOOBIG, "range read: %zu slices", rq->nslices);
    if (rq->start.pk && rq->start.pklen > ST_MAX_KEY_LEN)
        return sib_err_set(err, SIB_EINVAL, "range read: a start key of %zu bytes", rq->start.pklen);
    sib_buf_u8(out, COORD_RANGE_VERSION);
    sib_buf_u8(out, (uint8_t)((rq->start.inclusive ? RF_INCL : 0) | (rq->start.pk ? RF_KEY : 0)));
    sib_buf_append(out, rq->schema_version, 16);
    sib_buf_append(out, rq->table_id, 16);
    sib_buf_be32(out, (uint32_t)rq->now_s);
    sib_buf_be64(out, (uint64_t)rq->start.token);
    if (rq->start.pk) {
        sib_buf_be32(out, (uint32_t)rq->start.pklen);
        sib_buf_append(out, rq->start.pk, rq->start.pklen);
    }
    sib_buf_be64(out, (uint64_t)rq->end_token);
    sib_buf_be32(out, rq->max_parts);
    sib_buf_be32(out, rq->max_bytes);
    sib_buf_be32(out, (uint32_t)rq->nslices);
    for (size_t i = 0; i < rq->nslices; i++) {
        put_bound(out, &rq->slices[i].start);
        put_bound(out, &rq->slices[i].end);
    }
    return out->oom ? sib_err_set(err, SIB_ENOMEM, "range read message") : 0;
}

void coord_range_msg_free(coord_range_req *rq)
{
    free(rq->slices_owned);
    rq->slices_owned = NULL;
}

int coord_range_decode(const uint8_t *p, size_t len, coord_range_req *out, sib_err *err)
{
    memset(out, 0, sizeof *out);
    sib_rd r;
    sib_rd_init(&r, p, len);
    uint8_t v, flags;
    const uint8_t *sv, *id, *pk = NULL;
    uint32_t now, pklen = 0, maxp, maxb, ns;
    uint64_t st, end;
    if (!sib_rd_u8(&r, &v)) return sib_err_set(err, SIB_ECORRUPT, "range read message: empty");
    if (v != COORD_RANGE_VERSION)
        return sib_err_set(err, SIB_EPROTO, "range read message version %u, this node speaks %u", v,
                           COORD_RANGE_VERSION);
    if (!sib_rd_u8(&r, &flags) || (flags & ~(RF_INCL | RF_KEY)))
        return sib_err_set(err, SIB_ECORRUPT, "range read message: unknown flags");
    bool ok = sib_rd_bytes(&r, 16, &sv) && sib_rd_bytes(&r, 16, &id) && sib_rd_be32(&r, &now) && sib_rd_be64(&r, &st);
    if (ok && (flags & RF_KEY))
        ok = sib_rd_be32(&r, &pklen) && pklen <= ST_MAX_KEY_LEN && sib_rd_bytes(&r, pklen, &pk);
    ok = ok && sib_rd_be64(&r, &end) && sib_rd_be32(&r, &maxp) && sib_rd_be32(&r, &maxb) && sib_rd_be32(&r, &ns) &&
         ns <= MAX_SLICES && maxp >= 1 && (int64_t)end >= (int64_t)st;
    if (!ok) return sib_err_set(err, SIB_ECORRUPT, "range read message: truncated or out of bounds");
    st_slice *sl = ns ? calloc(ns, sizeof *sl) : NULL;
    if (ns && !sl) return sib_err_set(err, SIB_ENOMEM, "range read message");
    for (uint32_t i = 0; i < ns; i++) {
        if (!rd_bound(&r, &sl[i].start) || !rd_bound(&r, &sl[i].end)) {
            free(sl);
            return sib_err_set(err, SIB_ECORRUPT, "range read message: slice %u truncated or invalid", i);
        }
    }
    if (sib_rd_left(&r)) {
        free(sl);
        return sib_err_set(err, SIB_ECORRUPT, "range read message: %zu trailing bytes", sib_rd_left(&r));
    }
    out->schema_version = sv;
    out->table_id = id;
    out->now_s = (int32_t)now;
    out->start = (st_position){(int64_t)st, pk, pklen, (flags & RF_INCL) != 0};
    if ((flags & RF_KEY) && !pk) out->start.pk = (const uint8_t *)""; /* an empty key is a key */
    out->end_token = (int64_t)end;
    out->max_parts = maxp;
    out->max_bytes = maxb;
    out->slices = out->slices_owned = sl;
    out->nslices = ns;
    return 0;
}

void coord_range_answer_encode(sib_buf *out, const coord_range_answer *a)
{
    sib_buf_u8(out, a->more ? 1 : 0);
    if (a->more) {
        sib_buf_be64(out, (uint64_t)a->resume_token);
        sib_buf_be32(out, (uint32_t)a->resume_pklen);
        sib_buf_append(out, a->resume_pk, a->resume_pklen);
    }
    sib_buf_be32(out, (uint32_t)a->nparts);
    for (size_t i = 0; i < a->nparts; i++) {
        const coord_range_part *x = &a->parts[i];
        sib_buf_be64(out, (uint64_t)x->token);
        sib_buf_be32(out, (uint32_t)x->pklen);
        sib_buf_append(out, x->pk, x->pklen);
        sib_buf_be32(out, (uint32_t)x->mutlen);
        sib_buf_append(out, x->mut, x->mutlen);
    }
}

void coord_range_answer_free(coord_range_answer *a)
{
    free(a->parts);
    a->parts = NULL;
    a->nparts = 0;
}

/* token (8) | key length (4) | key, the key's token checked. */
static bool rd_keyed(sib_rd *r, int64_t *tok, const uint8_t **pk, size_t *pklen)
{
    uint64_t t;
    uint32_t n;
    if (!sib_rd_be64(r, &t) || !sib_rd_be32(r, &n) || n > ST_MAX_KEY_LEN || !sib_rd_bytes(r, n, pk)) return false;
    if (!*pk) *pk = (const uint8_t *)"";
    *tok = (int64_t)t;
    *pklen = n;
    return sib_murmur3_token(*pk, n) == *tok;
}

int coord_range_answer_decode(const uint8_t *p, size_t len, coord_range_answer *out, sib_err *err)
{
    memset(out, 0, sizeof *out);
    sib_rd r;
    sib_rd_init(&r, p, len);
    uint8_t flags;
    uint32_t n;
    if (!sib_rd_u8(&r, &flags) || flags > 1) return sib_err_set(err, SIB_ECORRUPT, "range answer: bad flags");
    out->more = flags & 1;
    if (out->more && !rd_keyed(&r, &out->resume_token, &out->resume_pk, &out->resume_pklen))
        return sib_err_set(err, SIB_ECORRUPT, "range answer: bad resume position");
    /* a partition takes at least 16 bytes: a count past that is garbage */
    if (!sib_rd_be32(&r, &n) || n > sib_rd_left(&r) / 16)
        return sib_err_set(err, SIB_ECORRUPT, "range answer: truncated");
    if (n && !(out->parts = calloc(n, sizeof *out->parts))) return sib_err_set(err, SIB_ENOMEM, "range answer");
    for (uint32_t i = 0; i < n; i++) {
        coord_range_part *x = &out->parts[i];
        uint32_t ml;
        const coord_range_part *prev = i ? &out->parts[i - 1] : NULL;
        if (!rd_keyed(&r, &x->token, &x->pk, &x->pklen) || !sib_rd_be32(&r, &ml) || !sib_rd_bytes(&r, ml, &x->mut) ||
            (prev && pos_cmp(prev->token, prev->pk, prev->pklen, x->token, x->pk, x->pklen) >= 0)) {
            coord_range_answer_free(out);
            return sib_err_set(err, SIB_ECORRUPT, "range answer: partition %u truncated or out of order", i);
        }
        x->mutlen = ml;
        out->nparts = i + 1;
    }
    const coord_range_part *last = n ? &out->parts[n - 1] : NULL;
    if (sib_rd_left(&r) ||
        (out->more && last &&
         pos_cmp(out->resume_token, out->resume_pk, out->resume_pklen, last->token, last->pk, last->pklen) < 0)) {
        coord_range_answer_free(out);
        return sib_err_set(err, SIB_ECORRUPT, "range answer: trailing bytes or a resume before its partitions");
    }
    return 0;
}

/* ---- splitting the ring ---- */

/* The last token of the vnode range t falls in. */
static int64_t vnode_end(const coord *c, int64_t t)
{
    if (!c->nring || t > c->ring[c->nring - 1].token) return INT64_MAX; /* the wrap: the first token's */
    return c->ring[ring_first(c, t)].token;
}

static bool same_replicas(const size_t *a, size_t na, const size_t *b, size_t nb)
{
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t j = 0; j < nb && !found; j++) found = a[i] == b[j];
        if (!found) return false;
    }
    return true;
}

/* The last token of the piece starting at lo (lo <= hi). */
static int64_t piece_end(const coord *c, const coord_repl *r, int64_t lo, int64_t hi, bool merge)
{
    int64_t e = vnode_end(c, lo);
    if (merge && e < hi) {
        size_t a[MAX_REPLICAS], b[MAX_REPLICAS];
        size_t na = coord_replicas(c, r, e, a, MAX_REPLICAS);
        while (e < hi) {
            int64_t nx = vnode_end(c, e + 1);
            size_t nb = coord_replicas(c, r, nx, b, MAX_REPLICAS);
            if (!same_replicas(a, na, b, nb)) break;
            e = nx;
        }
    }
    return e < hi ? e : hi;
}

size_t coord_range_split(const coord *c, const coord_repl *r, int64_t lo, int64_t hi, bool merge, int64_t *ends,
                         size_t cap)
{
    size_t n = 0;
    while (lo <= hi) {
        int64_t e = piece_end(c, r, lo, hi, merge);
        if (n < cap) ends[n] = e;
        n++;
        if (e >= hi) break;
        lo = e + 1;
    }
    return n;
}

bool coord_range_local_only(const coord *c, const coord_repl *r)
{
    if (r->kind == REPL_LOCAL || c->nmembers == 1) return true;
    for (size_t i = 0; i < c->nring; i++)
        if (!coord_local_only(c, r, c->ring[i].token)) return false;
    return c->nring > 0;
}

/* ---- replica side ---- */

/* A piece of an unfiltered scan as an answer body; SIB_E* on a failed piece
 * (err set). */
static int page_answer(st_rpage *pg, sib_buf *out, sib_err *err)
{
    int rc = st_rpage_status(pg, err);
    if (rc) return rc;
    coord_range_answer a = {.nparts = st_rpage_parts(pg)};
    if (st_rpage_more(pg) && !st_rpage_resume(pg, &a.resume_pk, &a.resume_pklen, &a.resume_token))
        return sib_err_set(err, SIB_ESERVER, "range read: a cut piece without its position");
    a.more = st_rpage_more(pg);
    if (a.nparts && !(a.parts = calloc(a.nparts, sizeof *a.parts))) return sib_err_set(err, SIB_ENOMEM, "range read");
    for (size_t i = 0; i < a.nparts; i++) {
        st_rpart part;
        st_rpage_part(pg, i, &part);
        a.parts[i] = (coord_range_part){.token = part.token, .pk = part.pk, .pklen = part.pklen};
        a.parts[i].mut = st_rpage_part_mutation(pg, i, &a.parts[i].mutlen);
        if (!a.parts[i].mut) {
            free(a.parts);
            return sib_err_set(err, SIB_ESERVER, "range read: a piece without its partitions' state");
        }
    }
    coord_range_answer_encode(out, &a);
    free(a.parts);
    return out->oom ? sib_err_set(err, SIB_ENOMEM, "range read") : 0;
}

/* The storage request of a decoded RANGE_READ (views into rq). */
static st_rreq storage_request(const coord_range_req *rq)
{
    return (st_rreq){.start = &rq->start, .has_end = true, .end_token = rq->end_token, .slices = rq->slices,
                     .nslices = rq->nslices, .with_static = true, .unfiltered = true, .now_s = rq->now_s,
                     .max_parts = rq->max_parts, .max_bytes = rq->max_bytes};
}

typedef struct replica_range {
    coord *c;
    msg_in req; /* id and connection to answer on (payload not kept) */
} replica_range;

static void range_reply_page(coord *c, const msg_in *req, st_rpage *pg)
{
    sib_err err = {0};
    sib_buf body;
    sib_buf_init(&body);
    if (page_answer(pg, &body, &err))
        read_answer(c, req, COORD_ACK_FAILED, (const uint8_t *)err.msg, strlen(err.msg));
    else
        read_answer(c, req, COORD_ACK_OK, body.p, body.len);
    sib_buf_free(&body);
    st_rpage_destroy(pg);
}

static void on_replica_piece(void *ctx, st_rpage *pg)
{
    replica_range *a = ctx;
    range_reply_page(a->c, &a->req, pg);
    free(a);
}

st_table *replica_table(coord *c, const msg_in *m, const uint8_t id[16], const uint8_t schema_version[16])
{
    st_table *t = coord_table_known(c, id, schema_version) ? NULL : storage_table(c->io.st, id);
    if (!t) {
        char uuid[37], msg[96];
        sib_uuid_format(id, uuid);
        snprintf(msg, sizeof msg, "unknown table %s", uuid);
        read_answer(c, m, COORD_ACK_UNKNOWN_TABLE, (const uint8_t *)msg, strlen(msg));
    }
    return t;
}

static void on_range_read(void *ctx, msg_service *ms, const msg_in *m)
{
    (void)ms;
    coord *c = ctx;
    sib_err err = {0};
    coord_range_req rq;
    if (coord_range_decode(m->payload, m->len, &rq, &err)) {
        sib_log(c->log, SIB_WARN, "range read from %s refused: %s", m->from, err.msg);
        read_answer(c, m, COORD_ACK_FAILED, (const uint8_t *)err.msg, strlen(err.msg));
        return;
    }
    st_table *t = replica_table(c, m, rq.table_id, rq.schema_version);
    if (!t) {
        coord_range_msg_free(&rq);
        return;
    }
    replica_range *a = malloc(sizeof *a);
    st_rreq sr = storage_request(&rq);
    st_rpage *pg = NULL;
    int rc = a ? 0 : sib_err_set(&err, SIB_ENOMEM, "range read");
    if (a) {
        a->c = c;
        a->req = *m;
        a->req.payload = NULL;
        a->req.len = 0;
        rc = st_read_page(t, &sr, &pg, on_replica_piece, a, &err); /* copies what it keeps */
    }
    coord_range_msg_free(&rq);
    if (rc < 0) {
        free(a);
        read_answer(c, m, COORD_ACK_FAILED, (const uint8_t *)err.msg, strlen(err.msg));
    } else if (rc == 0) {
        free(a);
        range_reply_page(c, m, pg);
    }
}

void coord_range_attach(coord *c)
{
    if (!c->io.range_timeout_ms) c->io.range_timeout_ms = DEFAULT_RANGE_TIMEOUT_MS;
    if (c->io.ms) msg_set_handler(c->io.ms, COORD_VERB_RANGE_READ, on_range_read, c);
}

/* ---- coordinator side ---- */

enum { T_WAITING, T_DATA, T_FAILED };

typedef struct rg_target {
    coord_range_op *op;
    size_t member;
    int state;
    uint8_t *data;          /* the answer body (T_DATA) */
    coord_range_answer ans; /* decoded: views into data */
} rg_target;

struct coord_range_op {
    coord *c;
    coord_range_fn done;
    void *ctx;
    int cl, block_for;
    int64_t query_end;      /* the caller's end token */
    sib_buf msg;            /* the RANGE_READ payload every replica gets */
    coord_range_req rq;     /* decoded from msg: views into it */
    rg_target *targets;
    size_t ntargets;
    int received, failed;
    size_t pending;         /* callbacks still to come */
    bool answered, empty;   /* empty: nothing to ask, the range is over */
    bool repair, repairing; /* read_repair BLOCKING; repair writes went out */
    int repairs;            /* repair writes still unacknowledged */
    st_merge *mg;           /* repairing: the reconciled piece, answered once they are */
    coord_range_result res;
    int timeout_ms;         /* what is left of range_request_timeout */
    ev_timer timer, kick;
    coord_range_op *prev, *next;
};

static void gop_unlink_free(coord_range_op *op)
{
    coord *c = op->c;
    if (op->prev) op->prev->next = op->next;
    else c->ranges = op->next;
    if (op->next) op->next->prev = op->prev;
    if (c->io.loop) {
        ev_timer_stop(c->io.loop, &op->timer);
        ev_timer_stop(c->io.loop, &op->kick);
    }
    for (size_t i = 0; i < op->ntargets; i++) {
        coord_range_answer_free(&op->targets[i].ans);
        free(op->targets[i].data);
    }
    free(op->targets);
    st_merge_destroy(op->mg);
    coord_range_msg_free(&op->rq);
    sib_buf_free(&op->msg);
    free(op);
}

void coord_ranges_free(coord *c)
{
    while (c->ranges) gop_unlink_free(c->ranges);
}

static void gop_answer(coord_range_op *op, int rc, const sib_err *err, st_merge *mg, const coord_range_result *res)
{
    op->answered = true;
    ev_timer_stop(op->c->io.loop, &op->timer);
    ev_timer_stop(op->c->io.loop, &op->kick);
    op->done(op->ctx, rc, err, mg, res);
}

static void gop_progress(coord_range_op *op);

static void range_repaired(void *ctx, bool ok)
{
    rg_target *t = ctx;
    coord_range_op *op = t->op;
    /* a failed repair does not fail the read: the answer is right */
    if (!ok) sib_log(op->c->log, SIB_DEBUG, "read repair of %s failed", op->c->members[t->member].addr);
    op->pending--;
    op->repairs--;
    gop_progress(op);
}

/* The partition at (tok, pk) in a's parts from *k on (parts are in order),
 * or NULL; *k moves past the partitions before it. */
static const coord_range_part *part_at(const coord_range_answer *a, size_t *k, int64_t tok, const uint8_t *pk,
                                       size_t pklen)
{
    while (*k < a->nparts) {
        const coord_range_part *x = &a->parts[*k];
        int c = pos_cmp(x->token, x->pk, x->pklen, tok, pk, pklen);
        if (c > 0) return NULL;
        ++*k;
        if (c == 0) return x;
    }
    return NULL;
}

/* Blocking read repair of a reconciled piece: mg holds nmerged partitions.
 * Each one's reconciled state (unfiltered, in the query's slices) is
 * compared with the bytes every replica sent for it; a replica that sent
 * other bytes or nothing gets the reconciled states of those partitions in
 * one write. true when writes went out: the answer waits for their acks
 * (or the op's timer). */
static bool range_repair(coord_range_op *op, st_merge *mg, size_t nmerged)
{
    size_t ndata = 0;
    for (size_t i = 0; i < op->ntargets; i++) ndata += op->targets[i].state == T_DATA;
    if (!op->repair || ndata < 2 || !nmerged) return false;
    st_rreq ur = {.slices = op->rq.slices, .nslices = op->rq.nslices, .with_static = true, .unfiltered = true,
                  .now_s = op->rq.now_s, .max_parts = nmerged, .max_rows = SIZE_MAX};
    st_rpage *pg = NULL;
    sib_err err = {0};
    size_t np = 0, *cursor = calloc(op->ntargets, sizeof *cursor);
    st_mutation **muts = NULL;
    bool *stale = NULL;
    int rc = cursor ? st_merge_read(mg, op->rq.table_id, &ur, &pg, &err) : SIB_ENOMEM;
    if (!rc) rc = st_rpage_status(pg, &err);
    if (!rc) np = st_rpage_parts(pg);
    if (!rc && np && (!(muts = calloc(np, sizeof *muts)) || !(stale = calloc(np * op->ntargets, sizeof *stale))))
        rc = SIB_ENOMEM;
    for (size_t i = 0; !rc && i < np; i++) {
        st_rpart part;
        size_t len;
        st_rpage_part(pg, i, &part);
        const uint8_t *p = st_rpage_part_mutation(pg, i, &len);
        for (size_t k = 0; p && k < op->ntargets; k++) {
            const rg_target *t = &op->targets[k];
            if (t->state != T_DATA) continue;
            const coord_range_part *x = part_at(&t->ans, &cursor[k], part.token, part.pk, part.pklen);
            stale[i * op->ntargets + k] = !x || x->mutlen != len || memcmp(x->mut, p, len);
            if (stale[i * op->ntargets + k] && !muts[i]) {
                if (!(muts[i] = st_mutation_create(op->rq.table_id, NULL, 0))) rc = SIB_ENOMEM;
                else if (st_mutation_load(muts[i], p, len)) rc = SIB_ECORRUPT;
            }
        }
    }
    st_mutation **send = rc || !np ? NULL : calloc(np, sizeof *send);
    for (size_t k = 0; send && k < op->ntargets; k++) {
        size_t n = 0;
        for (size_t i = 0; i < np; i++)
            if (stale[i * op->ntargets + k]) send[n++] = muts[i];
        if (!n) continue;
        sib_err e = {0};
        if (coord_repair_send(op->c, op->targets[k].member, send, n, range_repaired, &op->targets[k], &e)) {
            sib_log(op->c->log, SIB_DEBUG, "read repair of %s: %s", op->c->members[op->targets[k].member].addr,
                    e.msg);
            continue;
        }
        op->pending++;
        op->repairs++;
        op->repairing = true;
    }
    if (rc) sib_log(op->c->log, SIB_DEBUG, "range read repair skipped: %s", err.msg[0] ? err.msg : "out of memory");
    for (size_t i = 0; muts && i < np; i++) st_mutation_destroy(muts[i]);
    free(send);
    free(muts);
    free(stale);
    free(cursor);
    if (pg) st_rpage_destroy(pg);
    return op->repairing;
}

/* Every answer is in: the piece ends where the first replica stopped, and
 * the partitions up to there are reconciled. */
static void gop_finish(coord_range_op *op)
{
    coord_range_result res = {.through_token = op->rq.end_token};
    const coord_range_answer *cut = NULL;
    for (size_t i = 0; i < op->ntargets; i++) {
        const coord_range_answer *a = &op->targets[i].ans;
        /* a stop past the stretch's end is no stop within it */
        if (op->targets[i].state != T_DATA || !a->more || a->resume_token > op->rq.end_token) continue;
        if (!cut || pos_cmp(a->resume_token, a->resume_pk, a->resume_pklen, cut->resume_token, cut->resume_pk,
                            cut->resume_pklen) < 0)
            cut = a;
    }
    if (cut) {
        res.through_token = cut->resume_token;
        res.through_pk = cut->resume_pk;
        res.through_pklen = cut->resume_pklen;
    }
    res.done = !cut && op->rq.end_token >= op->query_end;
    sib_err err = {0};
    int rc = 0;
    st_merge *mg = NULL;
    /* a replica that stopped without passing the start would make the caller
     * ask the same piece forever */
    if (cut && !after_start(&op->rq.start, cut->resume_token, cut->resume_pk, cut->resume_pklen)) {
        rc = sib_err_set(&err, SIB_EREADFAIL, "Operation failed - a replica's range answer did not advance");
        err.ex[0] = op->cl;
        err.ex[1] = op->received;
        err.ex[2] = op->block_for;
        err.ex[3] = 1;
    } else if (!(mg = st_merge_create())) {
        rc = sib_err_set(&err, SIB_ENOMEM, "range read");
    }
    size_t added = 0;
    for (size_t i = 0; !rc && i < op->ntargets; i++) {
        const rg_target *t = &op->targets[i];
        for (size_t k = 0; !rc && t->state == T_DATA && k < t->ans.nparts; k++) {
            const coord_range_part *x = &t->ans.parts[k];
            if (!after_start(&op->rq.start, x->token, x->pk, x->pklen) || x->token > op->rq.end_token ||
                (cut && pos_cmp(x->token, x->pk, x->pklen, cut->resume_token, cut->resume_pk, cut->resume_pklen) > 0))
                continue;
            rc = st_merge_add(mg, x->mut, x->mutlen, &err);
            added++;
        }
    }
    if (!rc && range_repair(op, mg, added)) { /* answered once the repairs are acknowledged */
        op->mg = mg;
        op->res = res;
        return;
    }
    gop_answer(op, rc, rc ? &err : NULL, rc ? NULL : mg, rc ? NULL : &res);
    st_merge_destroy(mg);
}

static void gop_timeout(coord_range_op *op)
{
    sib_err err = {0};
    /* data_present: every range answer is data */
    int rc = coord_read_timeout_err(&err, op->cl, op->block_for, op->received, op->received > 0,
                                    op->repairing ? op->repairs : -1);
    gop_answer(op, rc, &err, NULL, NULL);
}

/* Re-evaluates op after an answer; frees it once nothing is pending. */
static void gop_progress(coord_range_op *op)
{
    if (!op->answered) {
        if (op->repairing) {
            if (!op->repairs) gop_answer(op, 0, NULL, op->mg, &op->res);
        } else if (op->empty) {
            coord_range_result res = {.done = true, .through_token = op->query_end};
            st_merge *mg = st_merge_create();
            sib_err err = {0};
            if (mg) gop_answer(op, 0, NULL, mg, &res);
            else gop_answer(op, sib_err_set(&err, SIB_ENOMEM, "range read"), &err, NULL, NULL);
            st_merge_destroy(mg);
        } else if (op->received >= op->block_for) {
            gop_finish(op);
        } else if ((int)op->ntargets - op->failed < op->block_for) {
            sib_err err = {0};
            gop_answer(op, coord_read_failure_err(&err, op->cl, op->block_for, op->received, op->failed), &err, NULL,
                       NULL);
        } else if (!op->pending) {
            gop_timeout(op); /* every message timed out before our timer */
        }
    }
    if (op->answered && !op->pending) gop_unlink_free(op);
}

static void target_failed(rg_target *t, const char *why)
{
    t->state = T_FAILED;
    t->op->failed++;
    sib_log(t->op->c->log, SIB_DEBUG, "range read from %s failed: %s", t->op->c->members[t->member].addr, why);
}

static void target_data(rg_target *t, const uint8_t *p, size_t len)
{
    sib_err err = {0};
    if (!(t->data = malloc(len ? len : 1))) {
        target_failed(t, "out of memory");
        return;
    }
    memcpy(t->data, p, len);
    if (coord_range_answer_decode(t->data, len, &t->ans, &err)) {
        target_failed(t, err.msg);
        return;
    }
    t->state = T_DATA;
    t->op->received++;
}

static void take_local_piece(rg_target *t, st_rpage *pg)
{
    sib_err err = {0};
    sib_buf body;
    sib_buf_init(&body);
    if (page_answer(pg, &body, &err)) target_failed(t, err.msg);
    else target_data(t, body.p, body.len);
    sib_buf_free(&body);
    st_rpage_destroy(pg);
}

static void on_local_piece(void *ctx, st_rpage *pg)
{
    rg_target *t = ctx;
    t->op->pending--;
    take_local_piece(t, pg);
    gop_progress(t->op);
}

static void on_remote_answer(void *ctx, int rc, const msg_in *resp)
{
    rg_target *t = ctx;
    coord_range_op *op = t->op;
    op->pending--;
    const uint8_t *p;
    size_t len;
    const char *why;
    if (rc == 0 && !coord_answer_payload(resp, &p, &len, &why)) target_failed(t, why);
    else if (rc == 0) target_data(t, p, len);
    /* A timeout counts as neither: the op's own timer answers ReadTimeout. */
    gop_progress(op);
}

static void on_range_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    coord_range_op *op = w->data;
    if (op->answered) return;
    gop_timeout(op);
    gop_progress(op);
}

static void on_range_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    gop_progress(w->data);
}

/* Asks replica t: answered at once, pending, or failed. */
static void target_send(coord_range_op *op, rg_target *t)
{
    coord *c = op->c;
    sib_err e = {0};
    int src;
    if (t->member == 0) {
        st_table *tab = storage_table_find(c->io.st, op->rq.table_id);
        st_rreq sr = storage_request(&op->rq);
        st_rpage *pg = NULL;
        src = tab ? st_read_page(tab, &sr, &pg, on_local_piece, t, &e)
                  : sib_err_set(&e, SIB_ENOTFOUND, "no local table");
        if (src == 0) {
            take_local_piece(t, pg);
            return;
        }
        if (src == 1) src = 0;
    } else {
        src = msg_request(c->io.ms, c->members[t->member].addr, coord_member_port(c, t->member),
                          COORD_VERB_RANGE_READ, op->msg.p, (uint32_t)op->msg.len, op->timeout_ms,
                          on_remote_answer, t, &e);
    }
    if (src) target_failed(t, e.msg);
    else op->pending++;
}

/* The stretch a scan from `s` reads next: false when nothing is left up to
 * end_token, else true with *end its last token. */
static bool next_stretch(const coord *c, const coord_repl *r, const st_position *s, int64_t end_token, int64_t *end)
{
    *end = end_token;
    if (!s->pk && !s->inclusive && s->token == INT64_MAX) return false;
    int64_t from = (s->pk || s->inclusive) ? s->token : s->token + 1;
    if (from > end_token) return false;
    *end = piece_end(c, r, from, end_token, true);
    return true;
}

bool coord_range_local_stretch(const coord *c, const coord_repl *r, int cl, const st_position *start,
                               int64_t end_token, int64_t *end)
{
    size_t rm[MAX_REPLICAS];
    if (coord_block_for(c, r, cl) > 1 || !c->members[0].alive || !next_stretch(c, r, start, end_token, end))
        return false;
    size_t k = coord_replicas(c, r, *end, rm, MAX_REPLICAS);
    for (size_t i = 0; i < k; i++)
        if (rm[i] == 0) return true;
    return false;
}

/* The replicas to ask for the stretch ending at `end`: live ones, the local
 * one first (its answer costs no message), only local-datacenter ones for
 * LOCAL_ONE / LOCAL_QUORUM. */
static size_t range_targets(const coord *c, const coord_repl *repl, int cl, int64_t end, size_t *order)
{
    size_t rm[MAX_REPLICAS], n = 0;
    size_t k = coord_replicas(c, repl, end, rm, MAX_REPLICAS);
    for (size_t i = 0; i < k; i++)
        if (rm[i] == 0 && c->members[0].alive) order[n++] = 0;
    for (size_t i = 0; i < k; i++)
        if (rm[i] != 0 && c->members[rm[i]].alive && counts_for(c, cl, rm[i])) order[n++] = rm[i];
    return n;
}

int coord_range_read(coord *c, const coord_range_req *rq, const coord_repl *repl, int cl, bool repair,
                     int64_t began_us, coord_range_fn done, void *ctx, sib_err *err)
{
    if (!c->io.ms || !c->io.st || !c->io.loop) return sib_err_set(err, SIB_EINVAL, "coordinator not attached");
    int64_t end;
    bool empty = !next_stretch(c, repl, &rq->start, rq->end_token, &end);
    size_t order[MAX_REPLICAS], n = 0;
    int block_for = 1;
    if (!empty) {
        int rc = coord_check(c, repl, cl, false, end, err);
        if (rc) return rc;
        n = range_targets(c, repl, cl, end, order);
        block_for = SIB_MAX(coord_block_for(c, repl, cl), 1);
        if ((int)n < block_for) {
            sib_err_set(err, SIB_EUNAVAIL, "Cannot achieve consistency level %s", coord_cl_name(cl));
            err->ex[0] = cl;
            err->ex[1] = block_for;
            err->ex[2] = (int64_t)n;
            return SIB_EUNAVAIL;
        }
    }
    coord_range_op *op = calloc(1, sizeof *op);
    if (!op) return sib_err_set(err, SIB_ENOMEM, "range read");
    sib_buf_init(&op->msg);
    coord_range_req piece = *rq;
    piece.end_token = end;
    if (!piece.max_bytes) piece.max_bytes = ANSWER_BYTES;
    if (!piece.max_parts) piece.max_parts = 1;
    int rc = 0;
    if (!empty) {
        rc = coord_range_encode(&op->msg, &piece, err);
        if (!rc) rc = coord_range_decode(op->msg.p, op->msg.len, &op->rq, err); /* views into the op's own copy */
        if (!rc && !(op->targets = calloc((size_t)block_for, sizeof *op->targets)))
            rc = sib_err_set(err, SIB_ENOMEM, "range read");
    }
    if (rc) {
        coord_range_msg_free(&op->rq);
        sib_buf_free(&op->msg);
        free(op);
        return rc;
    }
    op->c = c;
    op->done = done;
    op->ctx = ctx;
    op->cl = cl;
    op->repair = repair;
    op->block_for = block_for;
    op->query_end = rq->end_token;
    op->empty = empty;
    op->ntargets = empty ? 0 : (size_t)block_for;
    op->next = c->ranges;
    if (c->ranges) c->ranges->prev = op;
    c->ranges = op;
    /* what is left of the query's time: an earlier piece may have used some */
    int64_t left_us = (int64_t)c->io.range_timeout_ms * 1000 - (began_us ? sib_now_us() - began_us : 0);
    op->timeout_ms = (int)(SIB_MAX(left_us, 1000) / 1000);
    ev_timer_init(&op->timer, on_range_timeout, op->timeout_ms / 1000.0, 0);
    op->timer.data = op;
    ev_timer_init(&op->kick, on_range_kick, 0, 0);
    op->kick.data = op;
    for (size_t i = 0; i < op->ntargets; i++) {
        rg_target *t = &op->targets[i];
        t->op = op;
        t->member = order[i];
        target_send(op, t);
    }
    ev_timer_start(c->io.loop, &op->timer);
    /* never answer from inside coord_range_read: the caller is not ready for it */
    ev_timer_start(c->io.loop, &op->kick);
    return 0;
}
