/* read.c: single-partition reads through the replicas, and the READ verb's
 * replica side.
 *
 * Replica: decodes the request, and reads the partition's UNFILTERED state
 * in the requested slices on its read pool (st_read_page with unfiltered:
 * never an SSTable read on the loop), answering with it as a serialized
 * mutation: every cell with its timestamp, TTL and deletion time, the row
 * markers, row, range and partition deletions. The same bytes are what
 * read repair sends back as a MUTATION.
 *
 * Coordinator: asks blockFor live replicas (the local one first, then those
 * of its datacenter, then the others, each in ring order; only
 * local-datacenter ones for LOCAL_ONE / LOCAL_QUORUM, a quorum of each
 * datacenter for EACH_QUORUM): the first for its data, the others for a
 * digest of theirs (coord_read_digest of the same bytes). All digests equal to the data's: that answer is the
 * result. One differs: the digest replicas are asked again for data, and
 * the data answers are reconciled in an st_merge (storage's LWW apply:
 * newest cell wins, deletions shadow older data). With read repair
 * ('BLOCKING', the default) the reconciled state is read back unfiltered
 * and sent to every asked replica whose answer differs from it, and the
 * caller hears back once those acks are in, as Cassandra's
 * BlockingReadRepair waits for them. read_request_timeout bounds the whole:
 * ReadTimeout with the answers received, blockFor and whether the data
 * came. A replica that fails (no table, a read error) counts as a failure:
 * ReadFailure once too few are left to reach blockFor.
 *
 * Single-flight: identical reads at this coordinator (coordinator.h
 * says what identical means) share one op while it is still forming. The
 * first read creates the op and registers it in c->forming; nothing is
 * sent yet. The coordinator's ev_prepare (`flight`) runs once the loop has
 * handled every event of the iteration, just before it waits: it sends
 * every forming op (local read first, then the messages) and empties the
 * list. A read arriving in that iteration looks its key up in the list and
 * joins as one more waiter; a read arriving later finds the op sent and
 * forms a new one. So a joiner's replicas are asked after the joiner
 * arrived, which is what keeps "a read sees every write acknowledged
 * before it arrived": joining an op already sent could return a state
 * older than such a write. The cost is the rest of the iteration (the
 * event handling already queued) before the first message leaves.
 *
 * Lifetime: as writes (write.c), an op lives until it answered its callers
 * AND every callback it started (local read, messages, repairs) came back.
 */
#include "coord_int.h"
#include "messaging.h"

#include <stdlib.h>

#define DEFAULT_READ_TIMEOUT_MS 5000
#define MAX_REPLICAS 64
#define MAX_SLICES 4096

/* ---- wire ---- */

void put_bound(sib_buf *b, const st_bound *x)
{
    uint8_t h[5];
    h[0] = (uint8_t)((x->incl ? 1 : 0) | (x->unbounded ? 2 : 0));
    size_t len = x->unbounded ? 0 : x->len;
    put_be32(h + 1, (uint32_t)len);
    sib_buf_append(b, h, 5);
    if (len) sib_buf_append(b, x->key, len);
}

int coord_read_encode(sib_buf *out, const coord_read_req *rq, sib_err *err)
{
    if (rq->nslices > MAX_SLICES) return sib_err_set(err, SIB_ETOOBIG, "read: %zu slices", rq->nslices);
    uint8_t h[2 + 16 + 16 + 4 + 4];
    h[0] = COORD_READ_VERSION;
    h[1] = rq->digest ? COORD_READ_DIGEST : 0;
    memcpy(h + 2, rq->schema_version, 16);
    memcpy(h + 18, rq->table_id, 16);
    put_be32(h + 34, (uint32_t)rq->now_s);
    put_be32(h + 38, (uint32_t)rq->pklen);
    sib_buf_append(out, h, sizeof h);
    sib_buf_append(out, rq->pk, rq->pklen);
    uint8_t n[4];
    put_be32(n, (uint32_t)rq->nslices);
    sib_buf_append(out, n, 4);
    for (size_t i = 0; i < rq->nslices; i++) {
        put_bound(out, &rq->slices[i].start);
        put_bound(out, &rq->slices[i].end);
    }
    return out->oom ? sib_err_set(err, SIB_ENOMEM, "read message") : 0;
}

bool rd_bound(sib_rd *r, st_bound *x)
{
    uint8_t f;
    uint32_t len;
    const uint8_t *k = NULL;
    if (!sib_rd_u8(r, &f) || !sib_rd_be32(r, &len) || (f & ~3u) || len > ST_MAX_CK_LEN) return false;
    if ((f & 2) && len) return false;
    if (len && !sib_rd_bytes(r, len, &k)) return false;
    *x = (st_bound){k, len, (f & 1) != 0, (f & 2) != 0};
    return true;
}

void coord_read_msg_free(coord_read_req *rq)
{
    free(rq->slices_owned);
    rq->slices_owned = NULL;
}

int coord_read_decode(const uint8_t *p, size_t len, coord_read_req *out, sib_err *err)
{
    memset(out, 0, sizeof *out);
    sib_rd r;
    sib_rd_init(&r, p, len);
    uint8_t v, flags;
    const uint8_t *sv, *id, *pk;
    uint32_t now, pklen, ns;
    if (!sib_rd_u8(&r, &v)) return sib_err_set(err, SIB_ECORRUPT, "read message: empty");
    if (v != COORD_READ_VERSION)
        return sib_err_set(err, SIB_EPROTO, "read message version %u, this node speaks %u", v, COORD_READ_VERSION);
    if (!sib_rd_u8(&r, &flags) || (flags & ~COORD_READ_DIGEST))
        return sib_err_set(err, SIB_ECORRUPT, "read message: unknown flags");
    if (!sib_rd_bytes(&r, 16, &sv) || !sib_rd_bytes(&r, 16, &id) || !sib_rd_be32(&r, &now) ||
        !sib_rd_be32(&r, &pklen) || pklen > ST_MAX_KEY_LEN || !sib_rd_bytes(&r, pklen, &pk) || !sib_rd_be32(&r, &ns) ||
        ns > MAX_SLICES)
        return sib_err_set(err, SIB_ECORRUPT, "read message: truncated or out of bounds");
    st_slice *sl = ns ? calloc(ns, sizeof *sl) : NULL;
    if (ns && !sl) return sib_err_set(err, SIB_ENOMEM, "read message");
    for (uint32_t i = 0; i < ns; i++) {
        if (!rd_bound(&r, &sl[i].start) || !rd_bound(&r, &sl[i].end)) {
            free(sl);
            return sib_err_set(err, SIB_ECORRUPT, "read message: slice %u truncated or invalid", i);
        }
    }
    if (sib_rd_left(&r)) {
        free(sl);
        return sib_err_set(err, SIB_ECORRUPT, "read message: %zu trailing bytes", sib_rd_left(&r));
    }
    out->digest = flags & COORD_READ_DIGEST;
    out->schema_version = sv;
    out->table_id = id;
    out->now_s = (int32_t)now;
    out->pk = pk;
    out->pklen = pklen;
    out->slices = out->slices_owned = sl;
    out->nslices = ns;
    return 0;
}

void coord_read_answer_encode(sib_buf *out, int status, const uint8_t *p, size_t len)
{
    uint8_t h[5];
    h[0] = (uint8_t)status;
    put_be32(h + 1, (uint32_t)len);
    sib_buf_append(out, h, 5);
    if (len) sib_buf_append(out, p, len);
}

int coord_read_answer_decode(const uint8_t *p, size_t len, int *status, const uint8_t **data, size_t *dlen)
{
    if (len < 5 || p[0] > COORD_ACK_FAILED || get_be32(p + 1) != len - 5) return SIB_ECORRUPT;
    *status = p[0];
    *data = p + 5;
    *dlen = len - 5;
    return 0;
}

void coord_read_digest(const uint8_t *p, size_t len, uint8_t out[COORD_DIGEST_LEN])
{
    put_be64(out, (uint64_t)sib_murmur3_h1(p, len));
    put_be32(out + 8, sib_crc32c(0, p, len));
    put_be32(out + 12, (uint32_t)len);
}

/* ---- replica side ---- */

typedef struct replica_read {
    coord *c;
    bool digest;
    msg_in req; /* id and connection to answer on (payload not kept) */
} replica_read;

void read_answer(coord *c, const msg_in *req, int status, const uint8_t *p, size_t len)
{
    sib_buf b;
    sib_buf_init(&b);
    coord_read_answer_encode(&b, status, p, len);
    sib_err err = {0};
    if (!b.oom && msg_reply(c->io.ms, req, b.p, (uint32_t)b.len, &err) && err.code != SIB_ENOTFOUND)
        sib_log(c->log, SIB_WARN, "read answer to %s: %s", req->from, err.msg);
    sib_buf_free(&b);
}

static void answer_page(coord *c, const msg_in *req, bool digest, st_rpage *pg)
{
    sib_err err = {0};
    size_t len = 0;
    const uint8_t *p = st_rpage_mutation(pg, &len);
    if (st_rpage_status(pg, &err) || !p) {
        if (!err.msg[0]) sib_err_set(&err, SIB_ESERVER, "read failed");
        read_answer(c, req, COORD_ACK_FAILED, (const uint8_t *)err.msg, strlen(err.msg));
    } else if (digest) {
        uint8_t d[COORD_DIGEST_LEN];
        coord_read_digest(p, len, d);
        read_answer(c, req, COORD_ACK_OK, d, sizeof d);
    } else {
        read_answer(c, req, COORD_ACK_OK, p, len);
    }
    st_rpage_destroy(pg);
}

static void on_replica_page(void *ctx, st_rpage *pg)
{
    replica_read *a = ctx;
    answer_page(a->c, &a->req, a->digest, pg);
    free(a);
}

static void on_read(void *ctx, msg_service *ms, const msg_in *m)
{
    (void)ms;
    coord *c = ctx;
    sib_err err = {0};
    coord_read_req rq;
    if (coord_read_decode(m->payload, m->len, &rq, &err)) {
        sib_log(c->log, SIB_WARN, "read from %s refused: %s", m->from, err.msg);
        read_answer(c, m, COORD_ACK_FAILED, (const uint8_t *)err.msg, strlen(err.msg));
        return;
    }
    st_table *t = replica_table(c, m, rq.table_id, rq.schema_version);
    if (!t) {
        coord_read_msg_free(&rq);
        return;
    }
    replica_read *a = malloc(sizeof *a);
    st_rreq sr = {.pk = rq.pk, .pklen = rq.pklen, .slices = rq.slices, .nslices = rq.nslices, .unfiltered = true,
                  .now_s = rq.now_s};
    st_rpage *pg = NULL;
    int rc = a ? 0 : sib_err_set(&err, SIB_ENOMEM, "read");
    if (a) {
        a->c = c;
        a->digest = rq.digest;
        a->req = *m;
        a->req.payload = NULL;
        a->req.len = 0;
        rc = st_read_page(t, &sr, &pg, on_replica_page, a, &err);
    }
    coord_read_msg_free(&rq);
    if (rc < 0) {
        free(a);
        read_answer(c, m, COORD_ACK_FAILED, (const uint8_t *)err.msg, strlen(err.msg));
    } else if (rc == 0) {
        free(a);
        answer_page(c, m, rq.digest, pg);
    }
}

static void on_flight(struct ev_loop *loop, ev_prepare *w, int revents);

void coord_read_attach(coord *c)
{
    if (!c->io.read_timeout_ms) c->io.read_timeout_ms = DEFAULT_READ_TIMEOUT_MS;
    if (c->io.ms) msg_set_handler(c->io.ms, COORD_VERB_READ, on_read, c);
    ev_prepare_init(&c->flight, on_flight);
    c->flight.data = c;
}

/* ---- coordinator side ---- */

enum { T_WAITING, T_DATA, T_DIGEST, T_FAILED };

typedef struct rd_target {
    coord_read_op *op;
    size_t member;
    int state;
    bool digest;   /* asked for a digest only */
    uint8_t *data; /* the replica's unfiltered answer (T_DATA) */
    size_t len;
    uint8_t dg[COORD_DIGEST_LEN]; /* its digest (T_DIGEST) */
} rd_target;

typedef struct rd_waiter {
    coord_read_fn done;
    void *ctx;
} rd_waiter;

struct coord_read_op {
    coord *c;
    rd_waiter *waiters; /* [0] formed the op; the others joined it */
    size_t nwaiters, waiters_cap;
    uint8_t *key;       /* single-flight key (while forming) */
    size_t keylen;
    uint64_t keyhash;
    bool forming;       /* in c->forming, not sent yet */
    int cl, block_for;
    bool repair;
    uint8_t table_id[16], schema_version[16];
    uint8_t *pk;
    size_t pklen;
    st_slice *slices; /* copies (keys in keys) */
    size_t nslices;
    uint8_t *keys;
    int32_t now_s;
    rd_target *targets;
    size_t ntargets;
    int received, failed;
    size_t pending;   /* callbacks still to come */
    int repairs;      /* repair acks still awaited (repairing) */
    bool answered, repairing, merged, data_round; /* data_round: digests differed, all asked for data */
    st_merge *mg;
    ev_timer timer, kick;
    coord_read_op *prev, *next;
};

/* Frees what an op allocated (a target's data and the merge excepted). */
static void rop_free_unlinked(coord_read_op *op)
{
    if (!op) return;
    free(op->targets);
    free(op->pk);
    free(op->keys);
    free(op->slices);
    free(op->waiters);
    free(op->key);
    free(op);
}

static void rop_unlink_free(coord_read_op *op)
{
    coord *c = op->c;
    if (op->prev) op->prev->next = op->next;
    else c->reads = op->next;
    if (op->next) op->next->prev = op->prev;
    if (c->io.loop) {
        ev_timer_stop(c->io.loop, &op->timer);
        ev_timer_stop(c->io.loop, &op->kick);
    }
    for (size_t i = 0; i < op->ntargets; i++) free(op->targets[i].data);
    st_merge_destroy(op->mg);
    rop_free_unlinked(op);
}

void coord_reads_free(coord *c)
{
    if (c->io.loop) ev_prepare_stop(c->io.loop, &c->flight);
    free(c->forming);
    c->forming = NULL;
    c->nforming = c->forming_cap = 0;
    while (c->reads) rop_unlink_free(c->reads);
}

void coord_read_stats_get(const coord *c, coord_read_stats *out)
{
    *out = (coord_read_stats){
        .rounds = c->read_rounds, .coalesced = c->reads_coalesced, .repair_writes = c->read_repair_writes};
}

static void rop_answer(coord_read_op *op, int rc, const sib_err *err)
{
    op->answered = true;
    if (op->c->io.loop) {
        ev_timer_stop(op->c->io.loop, &op->timer);
        ev_timer_stop(op->c->io.loop, &op->kick);
    }
    /* A callback may start another read (the next page or partition): it
     * forms a new op, as this one is no longer forming. */
    for (size_t i = 0; i < op->nwaiters; i++) op->waiters[i].done(op->waiters[i].ctx, rc, err, rc ? NULL : op->mg);
}

int coord_read_timeout_err(sib_err *err, int cl, int block_for, int received, bool data_present, int repairs)
{
    received = SIB_MIN(received, block_for);
    if (repairs >= 0) { /* the repairs' acks are what is missing */
        received = SIB_MAX(block_for - repairs, 0);
        sib_err_set(err, SIB_ETIMEDOUT, "Operation timed out - read repair of %d replicas did not complete.", repairs);
    } else {
        sib_err_set(err, SIB_ETIMEDOUT, "Operation timed out - received only %d responses.", received);
    }
    err->ex[0] = cl;
    err->ex[1] = received;
    err->ex[2] = block_for;
    err->ex[3] = data_present;
    return SIB_ETIMEDOUT;
}

int coord_read_failure_err(sib_err *err, int cl, int block_for, int received, int failed)
{
    sib_err_set(err, SIB_EREADFAIL, "Operation failed - received %d responses and %d failures", received, failed);
    err->ex[0] = cl;
    err->ex[1] = received;
    err->ex[2] = block_for;
    err->ex[3] = failed;
    return SIB_EREADFAIL;
}

bool coord_answer_payload(const msg_in *resp, const uint8_t **p, size_t *len, const char **why)
{
    int status;
    if (coord_read_answer_decode(resp->payload, resp->len, &status, p, len)) *why = "undecodable answer";
    else if (status != COORD_ACK_OK) *why = "replica error";
    else return true;
    return false;
}

static void rop_timeout(coord_read_op *op)
{
    sib_err err = {0};
    bool data = false;
    for (size_t i = 0; i < op->ntargets; i++) data |= op->targets[i].state == T_DATA;
    int rc = coord_read_timeout_err(&err, op->cl, op->block_for, op->received, data, op->repairing ? op->repairs : -1);
    rop_answer(op, rc, &err);
}

/* A repair's answer (remote ack or local apply). */
static void repair_done(coord_read_op *op, size_t mi, bool ok)
{
    /* a failed repair does not fail the read: the answer is right */
    if (!ok) sib_log(op->c->log, SIB_DEBUG, "read repair of %s failed", op->c->members[mi].addr);
    op->pending--;
    op->repairs--;
}

static void rop_progress(coord_read_op *op);

static void rop_repaired(void *ctx, bool ok)
{
    rd_target *t = ctx;
    repair_done(t->op, t->member, ok);
    rop_progress(t->op);
}

typedef struct repair_call {
    coord_repair_fn done;
    void *ctx;
} repair_call;

static void on_repair_ack(void *ctx, int rc, const msg_in *resp)
{
    repair_call rc_ = *(repair_call *)ctx;
    free(ctx);
    int status = COORD_ACK_FAILED;
    char msg[128];
    if (rc == 0 && coord_ack_decode(resp->payload, resp->len, &status, msg, sizeof msg)) status = COORD_ACK_FAILED;
    rc_.done(rc_.ctx, rc == 0 && status == COORD_ACK_OK);
}

static void on_repair_local(void *ctx, int rc, const sib_err *err)
{
    (void)err;
    repair_call rc_ = *(repair_call *)ctx;
    free(ctx);
    rc_.done(rc_.ctx, rc == 0);
}

int coord_repair_send(coord *c, size_t mi, st_mutation *const *muts, size_t n, coord_repair_fn done, void *ctx,
                      sib_err *err)
{
    static const uint8_t no_version[16];
    repair_call *rc_ = malloc(sizeof *rc_);
    if (!rc_) return sib_err_set(err, SIB_ENOMEM, "read repair");
    *rc_ = (repair_call){done, ctx};
    int rc;
    if (mi == 0) {
        rc = storage_apply_ex(c->io.st, muts, n, 0, on_repair_local, rc_, err);
    } else {
        sib_buf b;
        sib_buf_init(&b);
        rc = coord_mutation_encode(&b, 0, no_version, muts, NULL, n, err);
        if (!rc)
            rc = msg_request(c->io.ms, c->members[mi].addr, coord_member_port(c, mi), COORD_VERB_MUTATION, b.p,
                             (uint32_t)b.len, c->io.read_timeout_ms, on_repair_ack, rc_, err);
        sib_buf_free(&b);
    }
    if (rc) free(rc_);
    else c->read_repair_writes += n;
    return rc;
}

/* Reconciles the answers; with read repair, sends the reconciled state to
 * every replica whose answer differs. 0, or an error for the caller. */
static int rop_reconcile(coord_read_op *op, sib_err *err)
{
    coord *c = op->c;
    op->merged = true;
    if (!(op->mg = st_merge_create())) return sib_err_set(err, SIB_ENOMEM, "read");
    for (size_t i = 0; i < op->ntargets; i++) {
        const rd_target *t = &op->targets[i];
        if (t->state != T_DATA) continue;
        int rc = st_merge_add(op->mg, t->data, t->len, err);
        if (rc) return rc;
    }
    int ndata = 0;
    for (size_t i = 0; i < op->ntargets; i++) ndata += op->targets[i].state == T_DATA;
    if (!op->repair || ndata < 2) return 0;
    st_rreq ur = {.pk = op->pk, .pklen = op->pklen, .slices = op->slices, .nslices = op->nslices,
                  .unfiltered = true, .now_s = op->now_s};
    st_rpage *pg;
    int rc = st_merge_read(op->mg, op->table_id, &ur, &pg, err);
    if (rc) return rc;
    size_t len;
    const uint8_t *p = st_rpage_mutation(pg, &len);
    st_mutation *m = NULL;
    if (st_rpage_status(pg, err) || !p || !(m = st_mutation_create(op->table_id, NULL, 0)) ||
        st_mutation_load(m, p, len)) {
        st_mutation_destroy(m);
        st_rpage_destroy(pg);
        return err->code ? err->code : sib_err_set(err, SIB_ENOMEM, "read repair");
    }
    for (size_t i = 0; i < op->ntargets; i++) {
        rd_target *t = &op->targets[i];
        if (t->state != T_DATA || (t->len == len && !memcmp(t->data, p, len))) continue;
        sib_err e = {0};
        if (coord_repair_send(c, t->member, &m, 1, rop_repaired, t, &e)) {
            sib_log(c->log, SIB_DEBUG, "read repair of %s: %s", c->members[t->member].addr, e.msg);
            continue;
        }
        op->pending++;
        op->repairs++;
        op->repairing = true;
    }
    st_mutation_destroy(m);
    st_rpage_destroy(pg);
    return 0;
}

/* Re-evaluates op after an answer; frees it once nothing is pending. */
static void target_send(coord_read_op *op, rd_target *t, bool digest);

/* Every answer is in: does a digest differ from the data's? */
static bool digests_differ(const coord_read_op *op)
{
    const rd_target *d = NULL;
    for (size_t i = 0; i < op->ntargets && !d; i++)
        if (op->targets[i].state == T_DATA) d = &op->targets[i];
    if (!d) return false;
    uint8_t want[COORD_DIGEST_LEN];
    coord_read_digest(d->data, d->len, want);
    for (size_t i = 0; i < op->ntargets; i++)
        if (op->targets[i].state == T_DIGEST && memcmp(op->targets[i].dg, want, sizeof want)) return true;
    return false;
}

/* Digests differed: the replicas that sent one are asked for their data
 * (Cassandra's DigestMismatch -> full data read), then reconciled. */
static void start_data_round(coord_read_op *op)
{
    op->data_round = true;
    for (size_t i = 0; i < op->ntargets; i++) {
        rd_target *t = &op->targets[i];
        if (t->state != T_DIGEST) continue;
        t->state = T_WAITING;
        op->received--;
        target_send(op, t, false);
    }
}

static void rop_progress(coord_read_op *op)
{
    if (!op->answered) {
        if (!op->merged && !op->data_round && op->received >= op->block_for && digests_differ(op)) start_data_round(op);
        if (!op->merged && op->received >= op->block_for) {
            sib_err err = {0};
            int rc = rop_reconcile(op, &err);
            if (rc) rop_answer(op, rc, &err);
        }
        if (op->answered) {
        } else if (op->merged && !op->repairs) {
            rop_answer(op, 0, NULL);
        } else if (!op->merged && (int)op->ntargets - op->failed < op->block_for) {
            sib_err err = {0};
            rop_answer(op, coord_read_failure_err(&err, op->cl, op->block_for, op->received, op->failed), &err);
        } else if (!op->pending) {
            rop_timeout(op); /* every message timed out before our timer */
        }
    }
    if (op->answered && !op->pending) rop_unlink_free(op);
}

static void target_data(rd_target *t, const uint8_t *p, size_t len)
{
    coord_read_op *op = t->op;
    if (!(t->data = malloc(len ? len : 1))) {
        t->state = T_FAILED;
        op->failed++;
        return;
    }
    memcpy(t->data, p, len);
    t->len = len;
    t->state = T_DATA;
    op->received++;
}

static void target_failed(rd_target *t, const char *why)
{
    coord_read_op *op = t->op;
    t->state = T_FAILED;
    op->failed++;
    sib_log(op->c->log, SIB_DEBUG, "read from %s failed: %s", op->c->members[t->member].addr, why);
}

static void target_digest(rd_target *t, const uint8_t *p, size_t len, bool computed)
{
    if (computed) {
        coord_read_digest(p, len, t->dg);
    } else if (len != COORD_DIGEST_LEN) {
        target_failed(t, "a digest of the wrong size");
        return;
    } else {
        memcpy(t->dg, p, len);
    }
    t->state = T_DIGEST;
    t->op->received++;
}

static void take_local_page(rd_target *t, st_rpage *pg)
{
    sib_err err = {0};
    size_t len;
    const uint8_t *p = st_rpage_mutation(pg, &len);
    if (st_rpage_status(pg, &err) || !p) target_failed(t, err.msg);
    else if (t->digest) target_digest(t, p, len, true);
    else target_data(t, p, len);
    st_rpage_destroy(pg);
}

static void on_local_page(void *ctx, st_rpage *pg)
{
    rd_target *t = ctx;
    t->op->pending--;
    take_local_page(t, pg);
    rop_progress(t->op);
}

static void on_remote_data(void *ctx, int rc, const msg_in *resp)
{
    rd_target *t = ctx;
    coord_read_op *op = t->op;
    op->pending--;
    const uint8_t *p;
    size_t len;
    const char *why;
    if (rc == 0 && !coord_answer_payload(resp, &p, &len, &why)) target_failed(t, why);
    else if (rc == 0 && t->digest) target_digest(t, p, len, false);
    else if (rc == 0) target_data(t, p, len);
    /* A timeout counts as neither: the op's own timer answers ReadTimeout. */
    rop_progress(op);
}

static void on_read_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    coord_read_op *op = w->data;
    if (op->answered) return;
    rop_timeout(op);
    rop_progress(op);
}

static void on_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    rop_progress(w->data);
}

/* Asks replica t for its data or digest: answered at once (a local read
 * from memory), pending, or failed. */
static void target_send(coord_read_op *op, rd_target *t, bool digest)
{
    coord *c = op->c;
    t->digest = digest;
    sib_err e = {0};
    int src;
    if (t->member == 0) {
        st_table *tab = storage_table_find(c->io.st, op->table_id);
        st_rreq sr = {.pk = op->pk, .pklen = op->pklen, .slices = op->slices, .nslices = op->nslices,
                      .unfiltered = true, .now_s = op->now_s};
        st_rpage *pg = NULL;
        src = tab ? st_read_page(tab, &sr, &pg, on_local_page, t, &e) : sib_err_set(&e, SIB_ENOTFOUND, "no local table");
        if (src == 0) {
            take_local_page(t, pg);
            return;
        }
        if (src == 1) src = 0;
    } else {
        coord_read_req rq = {.table_id = op->table_id, .schema_version = op->schema_version, .pk = op->pk,
                             .pklen = op->pklen, .slices = op->slices, .nslices = op->nslices, .now_s = op->now_s,
                             .digest = digest};
        sib_buf b;
        sib_buf_init(&b);
        src = coord_read_encode(&b, &rq, &e);
        if (!src)
            src = msg_request(c->io.ms, c->members[t->member].addr, coord_member_port(c, t->member), COORD_VERB_READ,
                              b.p, (uint32_t)b.len, c->io.read_timeout_ms, on_remote_data, t, &e);
        sib_buf_free(&b);
    }
    if (src) target_failed(t, e.msg);
    else op->pending++;
}

bool counts_for(const coord *c, int cl, size_t m)
{
    if (cl == CL_LOCAL_ONE || cl == CL_LOCAL_QUORUM) return !strcmp(c->members[m].dc, c->members[0].dc);
    return true;
}

/* EACH_QUORUM under NTS reads a quorum in every datacenter, as Cassandra's
 * ReplicaPlans.contactForEachQuorumRead: of the live replicas in `order`,
 * the first rf(dc) / 2 + 1 of each datacenter are kept and no others, so
 * the blockFor answers awaited are exactly those quorums; taking any
 * blockFor replicas could let a surplus of one datacenter stand in for
 * another's missing quorum. Returns the count kept (short of blockFor when
 * a datacenter has too few). */
static size_t each_quorum_targets(const coord *c, const coord_repl *r, size_t *order, size_t n)
{
    int left[COORD_MAX_DCS];
    for (int d = 0; d < r->ndcs; d++) left[d] = r->dcs[d].rf / 2 + 1;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        int d = 0;
        while (d < r->ndcs && strcmp(r->dcs[d].dc, c->members[order[i]].dc)) d++;
        if (d == r->ndcs || left[d] == 0) continue;
        left[d]--;
        order[kept++] = order[i];
    }
    return kept;
}

static int rop_copy(coord_read_op *op, const coord_read_req *rq)
{
    size_t kb = 0;
    for (size_t i = 0; i < rq->nslices; i++)
        kb += (rq->slices[i].start.unbounded ? 0 : rq->slices[i].start.len) +
              (rq->slices[i].end.unbounded ? 0 : rq->slices[i].end.len);
    op->pk = malloc(rq->pklen ? rq->pklen : 1);
    op->keys = malloc(kb ? kb : 1);
    op->slices = calloc(rq->nslices ? rq->nslices : 1, sizeof *op->slices);
    if (!op->pk || !op->keys || !op->slices) return SIB_ENOMEM;
    memcpy(op->pk, rq->pk, rq->pklen);
    op->pklen = rq->pklen;
    uint8_t *k = op->keys;
    for (size_t i = 0; i < rq->nslices; i++) {
        op->slices[i] = rq->slices[i];
        st_bound *b[2] = {&op->slices[i].start, &op->slices[i].end};
        for (int j = 0; j < 2; j++) {
            if (b[j]->unbounded || !b[j]->len) continue;
            memcpy(k, b[j]->key, b[j]->len);
            b[j]->key = k;
            k += b[j]->len;
        }
    }
    op->nslices = rq->nslices;
    memcpy(op->table_id, rq->table_id, 16);
    memcpy(op->schema_version, rq->schema_version, 16);
    op->now_s = rq->now_s;
    return 0;
}

/* Sends every op formed in this iteration (the `flight` ev_prepare). */
static void rop_send(coord_read_op *op)
{
    coord *c = op->c;
    SIB_ASSERT(op->forming); /* an op is sent once */
    op->forming = false;
    free(op->key);
    op->key = NULL;
    c->read_rounds++;
    /* one replica sends data, the others a digest of theirs */
    for (size_t i = 0; i < op->ntargets; i++) target_send(op, &op->targets[i], i > 0);
    /* never answer from inside the send: a local answer may be complete */
    ev_timer_start(c->io.loop, &op->kick);
}

static void on_flight(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    coord *c = w->data;
    ev_prepare_stop(loop, w);
    /* rop_send never forms an op, so the list stays as it is while sent */
    for (size_t i = 0; i < c->nforming; i++) rop_send(c->forming[i]);
    c->nforming = 0;
}

/* The single-flight key: the READ request bytes (digest off) and what else
 * makes two reads identical (coordinator.h). */
static int flight_key(const coord_read_req *rq, int cl, bool repair, const size_t *order, int block_for, sib_buf *b,
                      sib_err *err)
{
    coord_read_req k = *rq;
    k.digest = false;
    int rc = coord_read_encode(b, &k, err);
    if (rc) return rc;
    uint8_t h[6] = {(uint8_t)cl, repair};
    put_be32(h + 2, (uint32_t)block_for);
    sib_buf_append(b, h, sizeof h);
    for (int i = 0; i < block_for; i++) sib_buf_be32(b, (uint32_t)order[i]);
    return b->oom ? sib_err_set(err, SIB_ENOMEM, "read") : 0;
}

static coord_read_op *flight_find(const coord *c, const sib_buf *key, uint64_t hash)
{
    for (size_t i = 0; i < c->nforming; i++) {
        coord_read_op *op = c->forming[i];
        if (op->keyhash == hash && op->keylen == key->len && !memcmp(op->key, key->p, key->len)) return op;
    }
    return NULL;
}

static bool add_waiter(coord_read_op *op, coord_read_fn done, void *ctx)
{
    if (!sib_grow((void **)&op->waiters, &op->waiters_cap, op->nwaiters + 1, sizeof *op->waiters)) return false;
    op->waiters[op->nwaiters++] = (rd_waiter){done, ctx};
    return true;
}

/* A new op for rq with its first waiter, registered as forming under key
 * (taken). */
static coord_read_op *rop_create(coord *c, const coord_read_req *rq, int cl, bool repair, const size_t *order,
                                 int block_for, sib_buf *key, uint64_t hash, coord_read_fn done, void *ctx)
{
    coord_read_op *op = calloc(1, sizeof *op);
    if (!op || !(op->targets = calloc((size_t)block_for, sizeof *op->targets)) || rop_copy(op, rq) ||
        !add_waiter(op, done, ctx) ||
        !sib_grow((void **)&c->forming, &c->forming_cap, c->nforming + 1, sizeof *c->forming)) {
        rop_free_unlinked(op);
        return NULL;
    }
    op->c = c;
    op->cl = cl;
    op->block_for = block_for;
    op->repair = repair;
    op->ntargets = (size_t)block_for;
    for (size_t i = 0; i < op->ntargets; i++) op->targets[i] = (rd_target){.op = op, .member = order[i]};
    op->key = key->p;
    op->keylen = key->len;
    op->keyhash = hash;
    sib_buf_init(key); /* the op owns the bytes now */
    op->forming = true;
    c->forming[c->nforming++] = op;
    op->next = c->reads;
    if (c->reads) c->reads->prev = op;
    c->reads = op;
    ev_timer_init(&op->timer, on_read_timeout, c->io.read_timeout_ms / 1000.0, 0);
    op->timer.data = op;
    ev_timer_init(&op->kick, on_kick, 0, 0);
    op->kick.data = op;
    /* read_request_timeout counts from the first read's arrival */
    ev_timer_start(c->io.loop, &op->timer);
    if (!ev_is_active(&c->flight)) ev_prepare_start(c->io.loop, &c->flight);
    return op;
}

int coord_read(coord *c, const coord_read_req *rq, const coord_repl *repl, int64_t token, int cl, bool repair,
               coord_read_fn done, void *ctx, sib_err *err)
{
    if (!c->io.ms || !c->io.st || !c->io.loop) return sib_err_set(err, SIB_EINVAL, "coordinator not attached");
    size_t rm[MAX_REPLICAS], order[MAX_REPLICAS], n = 0;
    size_t k = coord_replicas(c, repl, token, rm, MAX_REPLICAS);
    for (size_t i = 0; i < k; i++) /* the local replica first: its answer costs no message */
        if (rm[i] == 0 && c->members[0].alive) order[n++] = 0;
    /* then the closest, as Cassandra's snitch sorts them: this datacenter's
     * replicas before the others', each in ring order */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < k; i++)
            if (rm[i] != 0 && c->members[rm[i]].alive && counts_for(c, cl, rm[i]) &&
                !strcmp(c->members[rm[i]].dc, c->members[0].dc) == (pass == 0))
                order[n++] = rm[i];
    if (cl == CL_EACH_QUORUM && repl->kind == REPL_NTS) n = each_quorum_targets(c, repl, order, n);
    int block_for = coord_block_for(c, repl, cl);
    if (block_for < 1) block_for = 1;
    if ((int)n < block_for) {
        sib_err_set(err, SIB_EUNAVAIL, "Cannot achieve consistency level %s", coord_cl_name(cl));
        err->ex[0] = cl;
        err->ex[1] = block_for;
        err->ex[2] = (int64_t)n;
        return SIB_EUNAVAIL;
    }
    sib_buf key;
    sib_buf_init(&key);
    int rc = flight_key(rq, cl, repair, order, block_for, &key, err);
    if (rc) {
        sib_buf_free(&key);
        return rc;
    }
    uint64_t hash = (uint64_t)sib_murmur3_h1(key.p, key.len);
    coord_read_op *op = flight_find(c, &key, hash);
    if (op) {
        sib_buf_free(&key);
        if (!add_waiter(op, done, ctx)) return sib_err_set(err, SIB_ENOMEM, "read");
        c->reads_coalesced++;
        return 0;
    }
    op = rop_create(c, rq, cl, repair, order, block_for, &key, hash, done, ctx);
    sib_buf_free(&key);
    return op ? 0 : sib_err_set(err, SIB_ENOMEM, "read");
}
