/* write.c: writes through the replicas, and the MUTATION verb's replica side.
 *
 * Coordinator: every mutation (one partition of one table) has its replica
 * list (coord_replicas) and a blockFor per "slot": one slot for most levels
 * (only local-datacenter replicas count for LOCAL_ONE / LOCAL_QUORUM), one
 * per datacenter for EACH_QUORUM under NTS, as Cassandra's
 * DatacenterSyncWriteResponseHandler counts them. Each live remote replica
 * gets ONE message holding every mutation it replicates; the local replica
 * applies its share as ONE commitlog entry. An ack counts for each mutation
 * the replica holds. The write succeeds once every mutation reached its
 * blockFor in every slot; it fails (WriteFailure) once failures leave some
 * slot unable to get there; otherwise the timer answers WriteTimeout with
 * the counts of the first mutation still short. Replicas that are down get
 * nothing (no hints yet): coord_check already made sure enough are alive.
 *
 * Replica: decodes the payload completely, asks the table hook about each
 * table (unknown -> 'unknown table' ack, nothing applied), applies all the
 * mutations as one commitlog entry and acks once storage says durable (per
 * its sync mode), as the local path does for a client.
 *
 * Lifetime: an op lives until it answered its caller AND every callback it
 * started (local apply, one per message) came back; ops still in flight
 * when the node closes are freed by coord_destroy.
 */
#include "coord_int.h"
#include "messaging.h"

#include <stdlib.h>

#define DEFAULT_WRITE_TIMEOUT_MS 2000
#define MAX_REPLICAS 64

/* ---- wire: MUTATION and its ack ---- */

int coord_mutation_encode(sib_buf *out, unsigned flags, const uint8_t schema_version[16], st_mutation *const *muts,
                          const size_t *idx, size_t n, sib_err *err)
{
    uint8_t hdr[2 + 16 + 4];
    hdr[0] = COORD_MUTATION_VERSION;
    hdr[1] = (uint8_t)(flags & ST_APPLY_NO_COMMITLOG);
    memcpy(hdr + 2, schema_version, 16);
    put_be32(hdr + 18, (uint32_t)n);
    sib_buf_append(out, hdr, sizeof hdr);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *p = st_mutation_bytes(muts[idx ? idx[i] : i], &len);
        if (!p || len > UINT32_MAX) return sib_err_set(err, SIB_EINVAL, "mutation %zu cannot be sent", i);
        uint8_t l[4];
        put_be32(l, (uint32_t)len);
        sib_buf_append(out, l, 4);
        sib_buf_append(out, p, len);
    }
    if (out->oom) return sib_err_set(err, SIB_ENOMEM, "mutation message");
    return 0;
}

void coord_mutation_msg_free(coord_mutation_msg *m)
{
    for (size_t i = 0; m->muts && i < m->n; i++) st_mutation_destroy(m->muts[i]);
    free(m->muts);
    m->muts = NULL;
    m->n = 0;
}

int coord_mutation_decode(const uint8_t *p, size_t len, coord_mutation_msg *out, sib_err *err)
{
    memset(out, 0, sizeof *out);
    if (len < 22) return sib_err_set(err, SIB_ECORRUPT, "mutation message: %zu bytes is too short", len);
    if (p[0] != COORD_MUTATION_VERSION)
        return sib_err_set(err, SIB_EPROTO, "mutation message version %u, this node speaks %u", p[0],
                           COORD_MUTATION_VERSION);
    if (p[1] & ~ST_APPLY_NO_COMMITLOG) return sib_err_set(err, SIB_ECORRUPT, "mutation message: unknown flags 0x%x", p[1]);
    out->version = p[0];
    out->flags = p[1];
    memcpy(out->schema_version, p + 2, 16);
    uint32_t n = get_be32(p + 18);
    size_t off = 22;
    /* Each mutation takes at least 4 + 17 bytes: a count beyond that is corrupt. */
    if (n > (len - off) / 21) return sib_err_set(err, SIB_ECORRUPT, "mutation message: count %u too large", n);
    if (n && !(out->muts = calloc(n, sizeof *out->muts))) return sib_err_set(err, SIB_ENOMEM, "mutation message");
    static const uint8_t no_id[16];
    for (uint32_t i = 0; i < n; i++) {
        uint32_t ml = len - off >= 4 ? get_be32(p + off) : UINT32_MAX;
        if (ml == UINT32_MAX || ml > len - off - 4) {
            coord_mutation_msg_free(out);
            return sib_err_set(err, SIB_ECORRUPT, "mutation message: mutation %u truncated", i);
        }
        off += 4;
        st_mutation *m = st_mutation_create(no_id, NULL, 0);
        if (!m) { coord_mutation_msg_free(out); return sib_err_set(err, SIB_ENOMEM, "mutation message"); }
        out->muts[out->n++] = m;
        if (st_mutation_load(m, p + off, ml)) {
            coord_mutation_msg_free(out);
            return sib_err_set(err, SIB_ECORRUPT, "mutation message: mutation %u does not decode", i);
        }
        off += ml;
    }
    if (off != len) {
        coord_mutation_msg_free(out);
        return sib_err_set(err, SIB_ECORRUPT, "mutation message: %zu trailing bytes", len - off);
    }
    return 0;
}

void coord_ack_encode(sib_buf *out, int status, const char *msg)
{
    size_t ml = msg ? strlen(msg) : 0;
    if (ml > UINT16_MAX) ml = UINT16_MAX;
    uint8_t h[3] = {(uint8_t)status, (uint8_t)(ml >> 8), (uint8_t)ml};
    sib_buf_append(out, h, 3);
    if (ml) sib_buf_append(out, msg, ml);
}

int coord_ack_decode(const uint8_t *p, size_t len, int *status, char *msg, size_t cap)
{
    if (len < 3) return SIB_ECORRUPT;
    size_t ml = (size_t)p[1] << 8 | p[2];
    if (ml != len - 3 || p[0] > COORD_ACK_FAILED) return SIB_ECORRUPT;
    *status = p[0];
    if (cap) {
        size_t k = ml < cap - 1 ? ml : cap - 1;
        memcpy(msg, p + 3, k);
        msg[k] = 0;
    }
    return 0;
}

/* ---- replica side ---- */

typedef struct replica_ack {
    coord *c;
    msg_in req; /* id and connection to answer on (payload not kept) */
} replica_ack;

void coord_replica_answer(coord *c, const msg_in *req, int status, const char *msg)
{
    sib_buf b;
    sib_buf_init(&b);
    coord_ack_encode(&b, status, msg);
    sib_err err = {0};
    if (!b.oom && msg_reply(c->io.ms, req, b.p, (uint32_t)b.len, &err) && err.code != SIB_ENOTFOUND)
        sib_log(c->log, SIB_WARN, "mutation ack to %s: %s", req->from, err.msg);
    sib_buf_free(&b);
}

static void on_replica_durable(void *ctx, int rc, const sib_err *err)
{
    replica_ack *a = ctx;
    coord_replica_answer(a->c, &a->req, rc ? COORD_ACK_FAILED : COORD_ACK_OK, rc ? err->msg : NULL);
    free(a);
}

void coord_replica_apply(coord *c, const msg_in *m, st_mutation *const *muts, size_t n, unsigned flags)
{
    sib_err err = {0};
    replica_ack *a = malloc(sizeof *a);
    int rc = a ? 0 : sib_err_set(&err, SIB_ENOMEM, "mutation ack");
    if (a) {
        a->c = c;
        a->req = *m;
        a->req.payload = NULL;
        a->req.len = 0;
        rc = storage_apply_ex(c->io.st, muts, n, flags, on_replica_durable, a, &err);
    }
    if (rc) {
        free(a);
        coord_replica_answer(c, m, COORD_ACK_FAILED, err.msg);
    }
}

int coord_table_known(coord *c, const uint8_t id[16], const uint8_t schema_version[16])
{
    if (c->io.table_check) return c->io.table_check(c->io.table_check_ctx, id, schema_version);
    return storage_table_find(c->io.st, id) ? 0 : SIB_ENOTFOUND;
}

/* A MUTATION kept while the sender's schema is pulled: the message with
 * its own copy of the payload. */
typedef struct held_mutation {
    coord *c;
    msg_in m;
    uint8_t payload[];
} held_mutation;

static void handle_mutation(coord *c, const msg_in *m, bool may_pull);

static void on_schema_pulled(void *ctx, int rc)
{
    held_mutation *h = ctx;
    if (rc) {
        char msg[192];
        snprintf(msg, sizeof msg, "unknown table, and the schema pull from %s failed: %s", h->m.from,
                 sib_strerror(rc));
        coord_replica_answer(h->c, &h->m, COORD_ACK_UNKNOWN_TABLE, msg);
    } else {
        handle_mutation(h->c, &h->m, false); /* once: a table still unknown was dropped */
    }
    free(h);
}

/* Keeps m and pulls its sender's schema; false when no pull started. */
static bool hold_for_schema(coord *c, const msg_in *m)
{
    if (!c->io.schema_pull) return false;
    held_mutation *h = malloc(sizeof *h + m->len);
    if (!h) return false;
    h->c = c;
    h->m = *m;
    memcpy(h->payload, m->payload, m->len);
    h->m.payload = h->payload;
    if (c->io.schema_pull(c->io.schema_pull_ctx, m->from, m->from_port, on_schema_pulled, h) < 0) {
        free(h);
        return false;
    }
    return true;
}

static void handle_mutation(coord *c, const msg_in *m, bool may_pull)
{
    sib_err err = {0};
    coord_mutation_msg mm;
    if (coord_mutation_decode(m->payload, m->len, &mm, &err)) {
        sib_log(c->log, SIB_WARN, "mutation from %s refused: %s", m->from, err.msg);
        coord_replica_answer(c, m, COORD_ACK_FAILED, err.msg);
        return;
    }
    for (size_t i = 0; i < mm.n; i++) {
        const uint8_t *id = st_mutation_table_id(mm.muts[i]);
        if (coord_table_known(c, id, mm.schema_version)) {
            char uuid[37];
            sib_uuid_format(id, uuid);
            coord_mutation_msg_free(&mm);
            /* never applied against a schema that lacks the table: the
             * sender's schema first (it may have been created a moment ago) */
            if (may_pull && hold_for_schema(c, m)) return;
            char msg[96];
            snprintf(msg, sizeof msg, "unknown table %s", uuid);
            coord_replica_answer(c, m, COORD_ACK_UNKNOWN_TABLE, msg);
            return;
        }
    }
    coord_replica_apply(c, m, mm.muts, mm.n, mm.flags);
    coord_mutation_msg_free(&mm);
}

static void on_mutation(void *ctx, msg_service *ms, const msg_in *m)
{
    (void)ms;
    handle_mutation(ctx, m, true);
}

void coord_attach(coord *c, const coord_io *io)
{
    c->io = *io;
    if (!c->io.write_timeout_ms) c->io.write_timeout_ms = DEFAULT_WRITE_TIMEOUT_MS;
    if (c->io.ms) msg_set_handler(c->io.ms, COORD_VERB_MUTATION, on_mutation, c);
    coord_read_attach(c);
    coord_batchlog_attach(c);
    coord_range_attach(c);
}

/* ---- coordinator side ---- */

/* A replica that fails every write (a table it does not know, a full
 * disk) would otherwise log a line per request: at most one a second. */
static bool warn_due(coord *c)
{
    int64_t now = sib_now_us();
    if (now - c->last_write_warn_us < 1000000) return false;
    c->last_write_warn_us = now;
    return true;
}

typedef struct wr_rep { size_t member; int slot; } wr_rep; /* slot -1: does not count */

typedef struct wr_mut {
    size_t first, nrep; /* into op->reps */
    int nslots;
    int need[COORD_MAX_DCS], acks[COORD_MAX_DCS], fails[COORD_MAX_DCS], total[COORD_MAX_DCS];
} wr_mut;

typedef struct wr_target {
    coord_write_op *op;
    size_t member;
} wr_target;

struct coord_write_op {
    coord *c;
    coord_write_fn done;
    void *ctx;
    int cl;
    size_t nmuts;
    wr_mut *muts;
    wr_rep *reps;
    wr_target *targets; /* one per member that got (or tried) a message, +1 for the local apply */
    size_t pending;     /* callbacks still to come */
    bool answered;
    ev_timer timer;
    coord_write_op *prev, *next;
};

static void op_unlink_free(coord_write_op *op)
{
    coord *c = op->c;
    if (op->prev) op->prev->next = op->next;
    else c->writes = op->next;
    if (op->next) op->next->prev = op->prev;
    if (c->io.loop) ev_timer_stop(c->io.loop, &op->timer);
    free(op->muts);
    free(op->reps);
    free(op->targets);
    free(op);
}

void coord_writes_free(coord *c)
{
    while (c->writes) op_unlink_free(c->writes);
}

static bool mut_done(const wr_mut *w)
{
    for (int s = 0; s < w->nslots; s++)
        if (w->acks[s] < w->need[s]) return false;
    return true;
}

static bool mut_failed(const wr_mut *w)
{
    for (int s = 0; s < w->nslots; s++)
        if (w->total[s] - w->fails[s] < w->need[s]) return true;
    return false;
}

static void mut_counts(const wr_mut *w, int *received, int *block_for)
{
    *received = *block_for = 0;
    for (int s = 0; s < w->nslots; s++) {
        *received += w->acks[s] < w->need[s] ? w->acks[s] : w->need[s];
        *block_for += w->need[s];
    }
}

static void op_answer(coord_write_op *op, int rc, const sib_err *err)
{
    op->answered = true;
    if (op->c->io.loop) ev_timer_stop(op->c->io.loop, &op->timer);
    op->done(op->ctx, rc, err);
}

static void op_timeout(coord_write_op *op)
{
    const wr_mut *short_of = &op->muts[0];
    for (size_t i = 0; i < op->nmuts; i++)
        if (!mut_done(&op->muts[i])) { short_of = &op->muts[i]; break; }
    int received, block_for;
    mut_counts(short_of, &received, &block_for);
    sib_err err = {0};
    sib_err_set(&err, SIB_ETIMEDOUT, "Operation timed out - received only %d responses.", received);
    err.ex[0] = op->cl;
    err.ex[1] = received;
    err.ex[2] = block_for;
    op_answer(op, SIB_ETIMEDOUT, &err);
}

/* Re-evaluates op after an answer; frees it once nothing is pending. */
static void op_progress(coord_write_op *op)
{
    if (!op->answered) {
        bool all = true;
        const wr_mut *failed = NULL;
        for (size_t i = 0; i < op->nmuts; i++) {
            all &= mut_done(&op->muts[i]);
            if (!failed && mut_failed(&op->muts[i])) failed = &op->muts[i];
        }
        if (all) {
            op_answer(op, 0, NULL);
        } else if (failed) {
            sib_err err = {0};
            int received, block_for, fails = 0;
            mut_counts(failed, &received, &block_for);
            for (int s = 0; s < failed->nslots; s++) fails += failed->fails[s];
            sib_err_set(&err, SIB_EWRITEFAIL, "Operation failed - received %d responses and %d failures", received,
                        fails);
            err.ex[0] = op->cl;
            err.ex[1] = received;
            err.ex[2] = block_for;
            err.ex[3] = fails;
            op_answer(op, SIB_EWRITEFAIL, &err);
        } else if (!op->pending) {
            op_timeout(op); /* every message timed out before our timer */
        }
    }
    if (op->answered && !op->pending) op_unlink_free(op);
}

/* Member m answered ok (or failed) for every mutation it holds. */
static void op_count(coord_write_op *op, size_t m, bool ok)
{
    for (size_t i = 0; i < op->nmuts; i++) {
        wr_mut *w = &op->muts[i];
        for (size_t k = 0; k < w->nrep; k++) {
            const wr_rep *r = &op->reps[w->first + k];
            if (r->member != m || r->slot < 0) continue;
            if (ok) w->acks[r->slot]++;
            else w->fails[r->slot]++;
        }
    }
}

static void on_local_durable(void *ctx, int rc, const sib_err *err)
{
    wr_target *t = ctx;
    coord_write_op *op = t->op;
    if (rc && warn_due(op->c)) sib_log(op->c->log, SIB_WARN, "local replica write failed: %s", err ? err->msg : "");
    op->pending--;
    op_count(op, 0, rc == 0);
    op_progress(op);
}

static void on_remote_ack(void *ctx, int rc, const msg_in *resp)
{
    wr_target *t = ctx;
    coord_write_op *op = t->op;
    op->pending--;
    if (rc == 0) {
        int status;
        char msg[256];
        if (coord_ack_decode(resp->payload, resp->len, &status, msg, sizeof msg)) {
            status = COORD_ACK_FAILED;
            snprintf(msg, sizeof msg, "undecodable ack");
        }
        if (status != COORD_ACK_OK && warn_due(op->c))
            sib_log(op->c->log, SIB_WARN, "replica %s failed a write: %s", resp->from, msg);
        op_count(op, t->member, status == COORD_ACK_OK);
    }
    /* A timeout counts as neither: the op's own timer answers WriteTimeout. */
    op_progress(op);
}

static void on_write_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    coord_write_op *op = w->data;
    if (op->answered) return;
    op_timeout(op);
    op_progress(op);
}

/* Slot of replica member m for mutation w's level: -1 when its answer does
 * not count (another datacenter for LOCAL_*, a datacenter without rf). */
static int rep_slot(const coord *c, const coord_repl *r, int cl, size_t m)
{
    const char *dc = c->members[m].dc;
    if (cl == CL_EACH_QUORUM && r->kind == REPL_NTS) {
        for (int d = 0; d < r->ndcs && d < COORD_MAX_DCS; d++)
            if (!strcmp(r->dcs[d].dc, dc)) return d;
        return -1;
    }
    if ((cl == CL_LOCAL_ONE || cl == CL_LOCAL_QUORUM) && strcmp(dc, c->members[0].dc)) return -1;
    return 0;
}

static void mut_setup(const coord *c, const coord_repl *r, int cl, wr_mut *w, const wr_rep *reps)
{
    if (cl == CL_EACH_QUORUM && r->kind == REPL_NTS) {
        w->nslots = r->ndcs < COORD_MAX_DCS ? r->ndcs : COORD_MAX_DCS;
        for (int d = 0; d < w->nslots; d++) w->need[d] = r->dcs[d].rf / 2 + 1;
    } else {
        w->nslots = 1;
        w->need[0] = coord_block_for(c, r, cl);
    }
    for (size_t k = 0; k < w->nrep; k++)
        if (reps[k].slot >= 0) w->total[reps[k].slot]++;
}

bool coord_local_only(const coord *c, const coord_repl *r, int64_t token)
{
    if (r->kind == REPL_LOCAL || c->nmembers == 1) return true;
    size_t reps[MAX_REPLICAS];
    size_t n = coord_replicas(c, r, token, reps, MAX_REPLICAS);
    return n == 1 && reps[0] == 0;
}

int coord_write(coord *c, st_mutation *const *muts, const int64_t *tokens, const coord_repl *const *repls, size_t n,
                int cl, unsigned flags, const uint8_t schema_version[16], coord_write_fn done, void *ctx,
                sib_err *err)
{
    if (!c->io.ms || !c->io.st || !c->io.loop) return sib_err_set(err, SIB_EINVAL, "coordinator not attached");
    if (!n) return sib_err_set(err, SIB_EINVAL, "empty write");
    int rc = SIB_ENOMEM;
    coord_write_op *op = calloc(1, sizeof *op);
    size_t *sel = calloc(n, sizeof *sel);
    st_mutation **sub = calloc(n, sizeof *sub);
    if (!op || !sel || !sub || !(op->muts = calloc(n, sizeof *op->muts)) ||
        !(op->reps = calloc(n * SIB_MIN(c->nmembers, (size_t)MAX_REPLICAS), sizeof *op->reps)) ||
        !(op->targets = calloc(c->nmembers, sizeof *op->targets))) {
        sib_err_set(err, SIB_ENOMEM, "write");
        goto fail;
    }
    op->c = c;
    op->done = done;
    op->ctx = ctx;
    op->cl = cl;
    op->nmuts = n;
    size_t nreps = 0;
    for (size_t i = 0; i < n; i++) {
        size_t rm[MAX_REPLICAS];
        size_t k = coord_replicas(c, repls[i], tokens[i], rm, MAX_REPLICAS);
        wr_mut *w = &op->muts[i];
        w->first = nreps;
        w->nrep = k;
        for (size_t j = 0; j < k; j++) op->reps[nreps++] = (wr_rep){rm[j], rep_slot(c, repls[i], cl, rm[j])};
        mut_setup(c, repls[i], cl, w, &op->reps[w->first]);
    }
    /* Link first: callbacks of messages sent below may only run from the
     * loop, but a failed send later in this function frees op through it. */
    op->next = c->writes;
    if (c->writes) c->writes->prev = op;
    c->writes = op;
    ev_timer_init(&op->timer, on_write_timeout, c->io.write_timeout_ms / 1000.0, 0);
    op->timer.data = op;

    sib_buf b;
    sib_buf_init(&b);
    size_t sent = 0;
    for (size_t m = 0; m < c->nmembers; m++) {
        if (!c->members[m].alive) continue;
        size_t ns = 0;
        for (size_t i = 0; i < n; i++) {
            const wr_mut *w = &op->muts[i];
            for (size_t k = 0; k < w->nrep; k++)
                if (op->reps[w->first + k].member == m) { sel[ns++] = i; break; }
        }
        if (!ns) continue;
        wr_target *t = &op->targets[m];
        t->op = op;
        t->member = m;
        sib_err e = {0};
        int src;
        if (m == 0) {
            for (size_t i = 0; i < ns; i++) sub[i] = muts[sel[i]];
            src = storage_apply_ex(c->io.st, sub, ns, flags, on_local_durable, t, &e);
        } else {
            sib_buf_reset(&b);
            src = coord_mutation_encode(&b, flags, schema_version, muts, sel, ns, &e);
            if (!src)
                src = msg_request(c->io.ms, c->members[m].addr, coord_member_port(c, m), COORD_VERB_MUTATION, b.p,
                                  (uint32_t)b.len, c->io.write_timeout_ms, on_remote_ack, t, &e);
        }
        if (src) {
            /* Nothing went out to this replica: it counts as failed. */
            if (warn_due(c)) sib_log(c->log, SIB_WARN, "write to %s: %s", c->members[m].addr, e.msg);
            op_count(op, m, false);
            if (!sent && m == 0 && e.code != SIB_EIO) *err = e; /* e.g. overloaded memtables: report as is */
            continue;
        }
        op->pending++;
        sent++;
    }
    sib_buf_free(&b);
    free(sel);
    free(sub);
    if (!sent) {
        if (!err->code) sib_err_set(err, SIB_EWRITEFAIL, "no replica could take the write");
        op->answered = true;
        op_unlink_free(op);
        return err->code;
    }
    ev_timer_start(c->io.loop, &op->timer);
    op_progress(op);
    return 0;
fail:
    if (op) {
        free(op->muts);
        free(op->reps);
        free(op->targets);
    }
    free(op);
    free(sel);
    free(sub);
    return rc;
}
