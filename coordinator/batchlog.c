/* batchlog.c: logged batches (coord_write_logged), the batchlog's holder
 * side and its replay.
 *
 * A logged batch whose partitions live on other nodes cannot be one
 * commitlog entry, so its atomicity ("all of it eventually, or none") comes
 * from a batchlog, as in Cassandra (StorageProxy.mutateAtomically):
 *
 *   1. the coordinator picks up to two holders: live members of its own
 *      datacenter other than itself, on other racks than its own when two
 *      such exist, one member from each of two racks when it can (random
 *      among equals); when it is alone in its datacenter, or the level is
 *      ANY, the holder is the local node; with other members in the
 *      datacenter but none alive, the write is Unavailable (ONE, 1, 0);
 *   2. the whole batch goes to every holder as ONE entry (BATCH_STORE); the
 *      holder writes it to its system.batches table through storage (so it
 *      is in the commitlog, survives kill -9 and is replayed at start like
 *      any write) and acks once it is durable; every holder must ack
 *      (Cassandra's ONE for one holder, TWO for two) within
 *      write_request_timeout, else the client gets WriteTimeout with write
 *      type BATCH_LOG and no mutation is sent;
 *   3. failpoint "batchlog.after_store" sits here (a crash test kills the
 *      coordinator between the batchlog and the mutations);
 *   4. the mutations go out as an ordinary coord_write at the client's
 *      level (write type BATCH);
 *   5. once every mutation reached that level (Cassandra's BatchlogCleanup
 *      runs when each write handler has its blockFor acks) the holders get
 *      BATCH_REMOVE, one-way, and the client its answer. A batch that
 *      fails or times out keeps its entries.
 *
 * Holder table (id: the name-based UUID Cassandra gives system.batches):
 *   partition key = batch id (16), one row (empty clustering), column 0 =
 *   the whole entry as it came (coord_batch_encode), written with the
 *   holder's own clock, so the removal (a partition tombstone at the
 *   holder's later time) always shadows it.
 *
 * Replay: every batchlog_replay_interval (10 s, Cassandra's fixed replay
 * period), once the ring knows a peer and has not changed for an interval,
 * each node scans its entries page by page on the read pool and
 * replays those written more than 2 x write_request_timeout ago (Cassandra's
 * batchlog timeout): the mutations of tables that still exist go to their
 * replicas as one coord_write at ALL. Cassandra writes to the live replicas
 * and hints the ones that are down, then deletes the entry; Sibyl has no
 * hints, so the entry itself stands in for them: it is deleted only once
 * every replica acked, and a replay that falls short is tried again next
 * round. An entry may be replayed by both holders, and again after a
 * replay that half worked: mutations carry their client timestamps, so
 * applying them twice changes nothing.
 *
 * Lifetime: a logged op lives until its holders all answered (or timed
 * out) and then until its coord_write called back; a replay until its
 * coord_write called back. coord_batchlog_free frees both without calling
 * back (coord_destroy).
 */
#include "coord_int.h"

#include <stdlib.h>

#define DEFAULT_REPLAY_INTERVAL_MS 10000
#define MAX_REPLAYS 32          /* entries replayed at once from one node */
#define SCAN_PAGE_PARTS 64
#define ENTRY_HDR (1 + 16 + 8)
#define ENTRY_COL 0

/* system.batches: UUID v3 of "system" "batches", as Cassandra names system tables. */
static const uint8_t BATCHES_ID[16] = {0x91, 0x9a, 0x4b, 0xc5, 0x7a, 0x33, 0x35, 0x73,
                                       0xb0, 0x3e, 0x13, 0xfc, 0x3f, 0x68, 0xb4, 0x65};

/* ---- wire ---- */

int coord_batch_encode(sib_buf *out, const uint8_t id[16], int64_t written_us, unsigned flags,
                       const uint8_t schema_version[16], st_mutation *const *muts, size_t n, sib_err *err)
{
    uint8_t hdr[ENTRY_HDR];
    hdr[0] = COORD_BATCH_VERSION;
    memcpy(hdr + 1, id, 16);
    put_be64(hdr + 17, (uint64_t)written_us);
    sib_buf_append(out, hdr, sizeof hdr);
    return coord_mutation_encode(out, flags, schema_version, muts, NULL, n, err);
}

/* The header alone (the replay scan looks at it before decoding more). */
static int entry_header(const uint8_t *p, size_t len, uint8_t id[16], int64_t *written_us, sib_err *err)
{
    if (len < ENTRY_HDR) return sib_err_set(err, SIB_ECORRUPT, "batchlog entry: %zu bytes is too short", len);
    if (p[0] != COORD_BATCH_VERSION)
        return sib_err_set(err, SIB_EPROTO, "batchlog entry version %u, this node speaks %u", p[0],
                           COORD_BATCH_VERSION);
    memcpy(id, p + 1, 16);
    *written_us = (int64_t)get_be64(p + 17);
    return 0;
}

int coord_batch_decode(const uint8_t *p, size_t len, coord_batch *out, sib_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = entry_header(p, len, out->id, &out->written_us, err);
    if (rc) return rc;
    rc = coord_mutation_decode(p + ENTRY_HDR, len - ENTRY_HDR, &out->mm, err);
    if (!rc && !out->mm.n) {
        coord_mutation_msg_free(&out->mm);
        rc = sib_err_set(err, SIB_ECORRUPT, "batchlog entry without mutations");
    }
    return rc;
}

void coord_batch_free(coord_batch *b) { coord_mutation_msg_free(&b->mm); }

void coord_batch_remove_encode(sib_buf *out, const uint8_t id[16])
{
    sib_buf_u8(out, COORD_BATCH_VERSION);
    sib_buf_append(out, id, 16);
}

int coord_batch_remove_decode(const uint8_t *p, size_t len, uint8_t id[16], sib_err *err)
{
    if (len != 17) return sib_err_set(err, SIB_ECORRUPT, "batchlog remove: %zu bytes, expected 17", len);
    if (p[0] != COORD_BATCH_VERSION)
        return sib_err_set(err, SIB_EPROTO, "batchlog remove version %u, this node speaks %u", p[0],
                           COORD_BATCH_VERSION);
    memcpy(id, p + 1, 16);
    return 0;
}

void coord_batchlog_stats_get(const coord *c, coord_batchlog_stats *out) { *out = c->bl.stats; }

/* At most one warning a second from the batchlog. */
static bool bl_warn_due(coord *c)
{
    int64_t now = sib_now_us();
    if (now - c->bl.last_warn_us < 1000000) return false;
    c->bl.last_warn_us = now;
    return true;
}

/* ---- holder side ---- */

/* The table row for an entry: written at the holder's clock (see top). */
static st_mutation *entry_mutation(const uint8_t id[16], const uint8_t *entry, size_t len)
{
    st_mutation *m = st_mutation_create(BATCHES_ID, id, 16);
    if (!m) return NULL;
    if (st_mut_row(m, (const uint8_t *)"", 0) ||
        st_mut_cell(m, ENTRY_COL, entry, len, sib_now_us(), 0, ST_NO_DELETION_TIME)) {
        st_mutation_destroy(m);
        return NULL;
    }
    return m;
}

/* Deletes entry `id` here (no wait: the tombstone is in the commitlog
 * before anything can read the table again after a crash). */
static void entry_remove(coord *c, const uint8_t id[16])
{
    int64_t now = sib_now_us();
    st_mutation *m = st_mutation_create(BATCHES_ID, id, 16);
    sib_err err = {0};
    int rc = !m ? sib_err_set(&err, SIB_ENOMEM, "batchlog remove")
                : st_mut_partition_delete(m, now, (int32_t)(now / 1000000));
    if (!rc) rc = storage_apply(c->io.st, &m, 1, NULL, NULL, &err);
    st_mutation_destroy(m);
    if (rc) {
        if (bl_warn_due(c)) sib_log(c->log, SIB_WARN, "batchlog: removing an entry failed: %s", err.msg);
        return;
    }
    c->bl.stats.removed++;
}

static void on_batch_store(void *ctx, msg_service *ms, const msg_in *m)
{
    (void)ms;
    coord *c = ctx;
    sib_err err = {0};
    coord_batch b;
    if (coord_batch_decode(m->payload, m->len, &b, &err)) {
        sib_log(c->log, SIB_WARN, "batchlog entry from %s refused: %s", m->from, err.msg);
        coord_replica_answer(c, m, COORD_ACK_FAILED, err.msg);
        return;
    }
    st_mutation *em = entry_mutation(b.id, m->payload, m->len);
    coord_batch_free(&b);
    if (!em) {
        coord_replica_answer(c, m, COORD_ACK_FAILED, "batchlog entry: out of memory");
        return;
    }
    coord_replica_apply(c, m, &em, 1, 0);
    st_mutation_destroy(em);
    c->bl.stats.stored++;
}

static void on_batch_remove(void *ctx, msg_service *ms, const msg_in *m)
{
    (void)ms;
    coord *c = ctx;
    sib_err err = {0};
    uint8_t id[16];
    if (coord_batch_remove_decode(m->payload, m->len, id, &err)) {
        sib_log(c->log, SIB_WARN, "batchlog remove from %s refused: %s", m->from, err.msg);
        return;
    }
    entry_remove(c, id);
}

/* ---- choosing the holders ---- */

static size_t pick_random(coord *c, size_t n) { return (size_t)(sib_rng_next(&c->bl.rng) % n); }

size_t coord_batchlog_holders(coord *c, bool any, size_t out[2])
{
    if (!c->bl.rng.s[0] && !c->bl.rng.s[1]) sib_rng_seed(&c->bl.rng); /* before coord_attach */
    const member *me = &c->members[0];
    size_t ndc = 0, ncand = 0, nother = 0;
    size_t *cand = malloc(c->nmembers * sizeof *cand);
    if (!cand) return 0;
    for (size_t m = 1; m < c->nmembers; m++) {
        if (strcmp(c->members[m].dc, me->dc)) continue;
        ndc++;
        if (!c->members[m].alive) continue;
        cand[ncand++] = m;
        nother += strcmp(c->members[m].rack, me->rack) != 0;
    }
    size_t n = 0;
    if (!ndc || (!ncand && any)) {
        out[n++] = 0; /* alone in the datacenter, or ANY: the local node */
    } else if (ncand <= 2) {
        for (size_t i = 0; i < ncand; i++) out[n++] = cand[i];
    } else {
        if (nother >= 2) { /* enough members on other racks: leave our rack out */
            size_t k = 0;
            for (size_t i = 0; i < ncand; i++)
                if (strcmp(c->members[cand[i]].rack, me->rack)) cand[k++] = cand[i];
            ncand = k;
        }
        /* A random first holder, then a random one on another rack if
         * any (one per rack, two racks), else on the same rack. */
        size_t a = pick_random(c, ncand);
        out[n++] = cand[a];
        const char *rack = c->members[cand[a]].rack;
        cand[a] = cand[--ncand];
        size_t k = 0;
        for (size_t i = 0; i < ncand; i++)
            if (strcmp(c->members[cand[i]].rack, rack)) cand[k++] = cand[i];
        if (k) ncand = k;
        out[n++] = cand[pick_random(c, ncand)];
    }
    free(cand);
    return n;
}

/* ---- coordinator side ---- */

typedef struct bl_target {
    coord_logged_op *op;
    size_t member;
} bl_target;

struct coord_logged_op {
    coord *c;
    coord_logged_fn done;
    void *ctx;
    int cl;
    unsigned flags;
    uint8_t schema_version[16], id[16];
    size_t n;
    int64_t *tokens;
    coord_repl *repls;
    const coord_repl **rp;
    sib_buf entry;
    bl_target holders[2];
    int nholders, acks, fails, pending;
    coord_logged_op *prev, *next;
};

static void logged_free(coord_logged_op *op)
{
    coord *c = op->c;
    if (op->prev) op->prev->next = op->next;
    else c->bl.ops = op->next;
    if (op->next) op->next->prev = op->prev;
    sib_buf_free(&op->entry);
    free(op->tokens);
    free(op->repls);
    free(op->rp);
    free(op);
}

static void send_removes(coord_logged_op *op)
{
    coord *c = op->c;
    if (c->bl.stopped) return;
    sib_buf b;
    sib_buf_init(&b);
    coord_batch_remove_encode(&b, op->id);
    for (int i = 0; i < op->nholders && !b.oom; i++) {
        size_t m = op->holders[i].member;
        sib_err err = {0};
        if (m == 0) entry_remove(c, op->id);
        else if (msg_send(c->io.ms, c->members[m].addr, coord_member_port(c, m), COORD_VERB_BATCH_REMOVE, b.p,
                          (uint32_t)b.len, &err) && bl_warn_due(c))
            sib_log(c->log, SIB_WARN, "batchlog: remove to %s: %s (the holder replays the batch later)",
                    c->members[m].addr, err.msg);
    }
    sib_buf_free(&b);
}

static void on_batch_written(void *ctx, int rc, const sib_err *err)
{
    coord_logged_op *op = ctx;
    if (!rc) send_removes(op);
    op->done(op->ctx, rc, err, false);
    logged_free(op);
}

/* Every holder has the entry: the mutations go out. */
static void send_mutations(coord_logged_op *op)
{
    coord *c = op->c;
    sib_err err = {0};
    coord_batch b;
    int rc = SIB_FAILPOINT("batchlog.after_store", &err);
    if (!rc) rc = coord_batch_decode(op->entry.p, op->entry.len, &b, &err);
    if (!rc) {
        rc = coord_write(c, b.mm.muts, op->tokens, op->rp, op->n, op->cl, op->flags, op->schema_version,
                         on_batch_written, op, &err);
        coord_batch_free(&b);
    }
    if (rc) { /* nothing sent: the entry stays and is replayed */
        op->done(op->ctx, rc, &err, false);
        logged_free(op);
    }
}

/* A holder answered: 1 stored, 0 failed, -1 no answer in time. */
static void store_answered(coord_logged_op *op, int result)
{
    op->pending--;
    if (result > 0) op->acks++;
    else if (result == 0) op->fails++;
    if (op->pending) return;
    if (op->acks == op->nholders) {
        send_mutations(op);
        return;
    }
    sib_err err = {0};
    int rc;
    if (op->fails) {
        rc = sib_err_set(&err, SIB_EWRITEFAIL, "Operation failed - received %d responses and %d failures", op->acks,
                         op->fails);
        err.ex[3] = op->fails;
    } else {
        rc = sib_err_set(&err, SIB_ETIMEDOUT, "Operation timed out - received only %d responses.", op->acks);
    }
    err.ex[0] = op->nholders == 1 ? CL_ONE : CL_TWO;
    err.ex[1] = op->acks;
    err.ex[2] = op->nholders;
    op->done(op->ctx, rc, &err, true);
    logged_free(op);
}

static void on_store_local(void *ctx, int rc, const sib_err *err)
{
    bl_target *t = ctx;
    if (rc && bl_warn_due(t->op->c)) sib_log(t->op->c->log, SIB_WARN, "batchlog: local store failed: %s", err->msg);
    if (!rc) t->op->c->bl.stats.stored++;
    store_answered(t->op, rc == 0);
}

static void on_store_ack(void *ctx, int rc, const msg_in *resp)
{
    bl_target *t = ctx;
    coord *c = t->op->c;
    if (rc) { /* neither an ack nor a failure: WriteTimeout */
        store_answered(t->op, -1);
        return;
    }
    int status;
    char msg[256];
    if (coord_ack_decode(resp->payload, resp->len, &status, msg, sizeof msg)) {
        status = COORD_ACK_FAILED;
        snprintf(msg, sizeof msg, "undecodable ack");
    }
    if (status != COORD_ACK_OK && bl_warn_due(c))
        sib_log(c->log, SIB_WARN, "batchlog: %s failed to store an entry: %s", resp->from, msg);
    store_answered(t->op, status == COORD_ACK_OK);
}

/* Sends the entry to holder slot i; false when it could not go out. */
static bool store_send(coord_logged_op *op, int i)
{
    coord *c = op->c;
    bl_target *t = &op->holders[i];
    sib_err err = {0};
    int rc;
    if (t->member == 0) {
        st_mutation *em = entry_mutation(op->id, op->entry.p, op->entry.len);
        rc = em ? storage_apply(c->io.st, &em, 1, on_store_local, t, &err)
                : sib_err_set(&err, SIB_ENOMEM, "batchlog entry");
        st_mutation_destroy(em);
    } else {
        rc = msg_request(c->io.ms, c->members[t->member].addr, coord_member_port(c, t->member),
                         COORD_VERB_BATCH_STORE, op->entry.p, (uint32_t)op->entry.len, c->io.write_timeout_ms,
                         on_store_ack, t, &err);
    }
    if (rc && bl_warn_due(c))
        sib_log(c->log, SIB_WARN, "batchlog: store to %s: %s", c->members[t->member].addr, err.msg);
    return rc == 0;
}

int coord_write_logged(coord *c, st_mutation *const *muts, const int64_t *tokens, const coord_repl *const *repls,
                       size_t n, int cl, unsigned flags, const uint8_t schema_version[16], coord_logged_fn done,
                       void *ctx, sib_err *err)
{
    if (!c->io.ms || !c->io.st || !c->io.loop) return sib_err_set(err, SIB_EINVAL, "coordinator not attached");
    if (!n) return sib_err_set(err, SIB_EINVAL, "empty write");
    size_t holders[2];
    size_t nh = coord_batchlog_holders(c, cl == CL_ANY, holders);
    if (!nh) {
        sib_err_set(err, SIB_EUNAVAIL, "Cannot achieve consistency level ONE");
        err->ex[0] = CL_ONE;
        err->ex[1] = 1;
        err->ex[2] = 0;
        return SIB_EUNAVAIL;
    }
    coord_logged_op *op = calloc(1, sizeof *op);
    if (!op || !(op->tokens = malloc(n * sizeof *op->tokens)) || !(op->repls = malloc(n * sizeof *op->repls)) ||
        !(op->rp = malloc(n * sizeof *op->rp))) {
        if (op) {
            free(op->tokens);
            free(op->repls);
        }
        free(op);
        return sib_err_set(err, SIB_ENOMEM, "logged batch");
    }
    op->c = c;
    op->done = done;
    op->ctx = ctx;
    op->cl = cl;
    op->flags = flags;
    op->n = n;
    memcpy(op->schema_version, schema_version, 16);
    for (size_t i = 0; i < n; i++) {
        op->tokens[i] = tokens[i];
        op->repls[i] = *repls[i];
        op->rp[i] = &op->repls[i];
    }
    sib_timeuuid_next(&c->bl.ids, op->id);
    sib_buf_init(&op->entry);
    op->next = c->bl.ops;
    if (c->bl.ops) c->bl.ops->prev = op;
    c->bl.ops = op;
    int rc = coord_batch_encode(&op->entry, op->id, sib_now_us(), flags, schema_version, muts, n, err);
    if (rc) {
        logged_free(op);
        return rc;
    }
    op->nholders = (int)nh;
    int sent = 0;
    for (size_t i = 0; i < nh; i++) {
        op->holders[i] = (bl_target){op, holders[i]};
        op->pending++;
        if (store_send(op, (int)i)) sent++;
        else op->pending--, op->fails++;
    }
    if (!sent) {
        logged_free(op);
        sib_err_set(err, SIB_EWRITEFAIL, "Operation failed - no batchlog holder could take the batch");
        err->ex[0] = nh == 1 ? CL_ONE : CL_TWO;
        err->ex[1] = 0;
        err->ex[2] = (int64_t)nh;
        err->ex[3] = (int64_t)nh;
        return SIB_EWRITEFAIL;
    }
    c->bl.stats.writes++;
    return 0;
}

/* ---- replay ---- */

struct bl_replay {
    coord *c;
    uint8_t id[16];
    bl_replay *prev, *next;
};

static void replay_free(bl_replay *r)
{
    coord *c = r->c;
    if (r->prev) r->prev->next = r->next;
    else c->bl.replays = r->next;
    if (r->next) r->next->prev = r->prev;
    c->bl.nreplays--;
    free(r);
}

static bool replaying(const coord *c, const uint8_t id[16])
{
    for (const bl_replay *r = c->bl.replays; r; r = r->next)
        if (!memcmp(r->id, id, 16)) return true;
    return false;
}

static void on_replayed(void *ctx, int rc, const sib_err *err)
{
    bl_replay *r = ctx;
    coord *c = r->c;
    if (!rc) {
        c->bl.stats.replayed++;
        if (!c->bl.stopped) entry_remove(c, r->id);
    } else {
        c->bl.stats.replay_failures++;
        char uuid[37];
        sib_uuid_format(r->id, uuid);
        if (bl_warn_due(c))
            sib_log(c->log, SIB_WARN, "batchlog: replay of batch %s did not reach every replica (%s); kept for the "
                    "next round", uuid, err ? err->msg : "");
    }
    replay_free(r);
}

/* The mutations of tables that still exist, to all their replicas. */
static int replay_send(bl_replay *r, coord_batch *b, sib_err *err)
{
    coord *c = r->c;
    size_t n = b->mm.n, k = 0;
    st_mutation **muts = calloc(n, sizeof *muts);
    int64_t *tokens = calloc(n, sizeof *tokens);
    coord_repl *repls = calloc(n, sizeof *repls);
    const coord_repl **rp = calloc(n, sizeof *rp);
    int rc = muts && tokens && repls && rp ? 0 : sib_err_set(err, SIB_ENOMEM, "batchlog replay");
    for (size_t i = 0; !rc && i < n; i++) {
        st_mutation *m = b->mm.muts[i];
        int hrc = c->io.table_repl(c->io.table_repl_ctx, st_mutation_table_id(m), &repls[k]);
        if (hrc == SIB_ENOTFOUND) continue; /* the table was dropped since */
        size_t pklen;
        const uint8_t *pk = st_mutation_pk(m, &pklen);
        if (hrc || !pk) {
            rc = sib_err_set(err, hrc ? hrc : SIB_ECORRUPT, "batchlog replay: cannot route a mutation");
            break;
        }
        muts[k] = m;
        tokens[k] = sib_murmur3_token(pk, pklen);
        rp[k] = &repls[k];
        k++;
    }
    if (!rc && !k) rc = 1; /* nothing left to write */
    if (!rc)
        rc = coord_write(c, muts, tokens, rp, k, CL_ALL, b->mm.flags, b->mm.schema_version, on_replayed, r, err);
    free(muts);
    free(tokens);
    free(repls);
    free(rp);
    return rc;
}

static void replay_start(coord *c, const uint8_t *entry, size_t len)
{
    sib_err err = {0};
    coord_batch b;
    if (coord_batch_decode(entry, len, &b, &err)) {
        /* kept: nothing is deleted that was not replayed */
        if (bl_warn_due(c)) sib_log(c->log, SIB_WARN, "batchlog: an entry cannot be replayed: %s", err.msg);
        return;
    }
    bl_replay *r = calloc(1, sizeof *r);
    if (!r) {
        coord_batch_free(&b);
        return;
    }
    r->c = c;
    memcpy(r->id, b.id, 16);
    r->next = c->bl.replays;
    if (c->bl.replays) c->bl.replays->prev = r;
    c->bl.replays = r;
    c->bl.nreplays++;
    int rc = replay_send(r, &b, &err);
    coord_batch_free(&b);
    if (rc == 1) { /* every table of the batch is gone */
        entry_remove(c, r->id);
        replay_free(r);
    } else if (rc) {
        c->bl.stats.replay_failures++;
        if (bl_warn_due(c)) sib_log(c->log, SIB_WARN, "batchlog: replay failed to start: %s", err.msg);
        replay_free(r);
    }
}

/* Looks at one page of entries: replays the due ones; false when the scan
 * is over. */
static bool scan_take(coord *c, st_rpage *pg)
{
    sib_err err = {0};
    if (st_rpage_status(pg, &err)) {
        if (bl_warn_due(c)) sib_log(c->log, SIB_WARN, "batchlog: reading the entries failed: %s", err.msg);
        return false;
    }
    int64_t now = sib_now_us();
    int64_t age = 2LL * c->io.write_timeout_ms * 1000;
    for (size_t i = 0; i < st_rpage_parts(pg); i++) {
        st_rpart part;
        st_rpage_part(pg, i, &part);
        if (!part.nrows) continue;
        st_row row;
        st_rpage_row(pg, i, 0, &row);
        for (size_t k = 0; k < row.ncells; k++) {
            const st_cell_view *cv = &row.cells[k];
            uint8_t id[16];
            int64_t written = 0;
            if (cv->col != ENTRY_COL || entry_header(cv->val, cv->vlen, id, &written, &err)) continue;
            c->bl.seen++;
            if (now - written >= age && c->bl.nreplays < MAX_REPLAYS && !replaying(c, id))
                replay_start(c, cv->val, cv->vlen);
        }
    }
    const uint8_t *pk;
    size_t pklen;
    if (!st_rpage_resume(pg, &pk, &pklen, &c->bl.resume_token) || pklen != sizeof c->bl.resume_pk) return false;
    memcpy(c->bl.resume_pk, pk, pklen);
    c->bl.has_resume = true;
    return true;
}

static void scan_page(void *ctx, st_rpage *pg);

/* Reads pages until one is queued on the pool or the scan is over. */
static void scan_next(coord *c)
{
    for (;;) {
        st_table *t = storage_table_find(c->io.st, BATCHES_ID);
        st_position pos = {c->bl.resume_token, c->bl.resume_pk, sizeof c->bl.resume_pk, false};
        st_rreq rq = {.start = c->bl.has_resume ? &pos : NULL, .now_s = (int32_t)(sib_now_us() / 1000000),
                      .max_parts = SCAN_PAGE_PARTS, .max_rows = SCAN_PAGE_PARTS};
        st_rpage *pg;
        sib_err err = {0};
        int rc = t ? st_read_page(t, &rq, &pg, scan_page, c, &err) : -1;
        if (rc == 1) return;
        bool more = rc == 0 && scan_take(c, pg);
        if (rc == 0) st_rpage_destroy(pg);
        if (!more) {
            c->bl.stats.entries = c->bl.seen;
            c->bl.scanning = false;
            return;
        }
    }
}

static void scan_page(void *ctx, st_rpage *pg)
{
    coord *c = ctx;
    bool more = !c->bl.stopped && scan_take(c, pg);
    st_rpage_destroy(pg);
    if (more) {
        scan_next(c);
        return;
    }
    c->bl.stats.entries = c->bl.seen;
    c->bl.scanning = false;
}

static void on_replay_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    coord *c = w->data;
    if (c->bl.scanning || c->bl.stopped || !c->io.table_repl) return;
    /* Only on a ring that gossip has filled and that held still for a
     * round: right after a start the ring may lack members, and a replay
     * "at ALL" to an incomplete replica list would write to the wrong
     * nodes and then delete the entry (Cassandra waits RING_DELAY before
     * its first replay for the same reason). A node that knows no peer
     * keeps its entries. */
    if (c->nmembers < 2 || sib_now_us() - c->ring_changed_us < (int64_t)(w->repeat * 1e6)) return;
    c->bl.scanning = true;
    c->bl.has_resume = false;
    c->bl.seen = 0;
    scan_next(c);
}

void coord_batchlog_attach(coord *c)
{
    sib_timeuuid_init(&c->bl.ids);
    sib_rng_seed(&c->bl.rng);
    if (c->io.ms) {
        msg_set_handler(c->io.ms, COORD_VERB_BATCH_STORE, on_batch_store, c);
        msg_set_handler(c->io.ms, COORD_VERB_BATCH_REMOVE, on_batch_remove, c);
    }
    if (c->io.st) {
        st_table *t = storage_table(c->io.st, BATCHES_ID);
        sib_err err = {0};
        /* gc_grace_seconds 0, as Cassandra's system.batches: a removed entry's
         * tombstone is purged by the first compaction that can prove no older
         * copy of the entry remains outside it */
        if (!t || st_table_set_name(t, "system", "batches", &err) || st_table_set_options(t, NULL, NULL, 0, 0, &err))
            sib_log(c->log, SIB_WARN, "batchlog: cannot set up the system.batches table: %s",
                    t ? err.msg : "out of memory");
    }
    int ms = c->io.batchlog_replay_interval_ms ? c->io.batchlog_replay_interval_ms : DEFAULT_REPLAY_INTERVAL_MS;
    if (c->io.loop && c->io.st && ms > 0) {
        ev_timer_init(&c->bl.timer, on_replay_timer, ms / 1000.0, ms / 1000.0);
        c->bl.timer.data = c;
        ev_timer_start(c->io.loop, &c->bl.timer);
        ev_unref(c->io.loop); /* a background timer: it does not keep the loop running */
        c->bl.timer_on = true;
    }
}

void coord_batchlog_stop(coord *c)
{
    c->bl.stopped = true;
    if (c->bl.timer_on) {
        ev_ref(c->io.loop);
        ev_timer_stop(c->io.loop, &c->bl.timer);
        c->bl.timer_on = false;
    }
}

void coord_batchlog_free(coord *c)
{
    coord_batchlog_stop(c);
    while (c->bl.ops) logged_free(c->bl.ops);
    while (c->bl.replays) replay_free(c->bl.replays);
}
