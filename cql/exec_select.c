/* exec_select.c: SELECT on user tables and on system tables, with paging.
 *
 * A SELECT runs in four steps:
 *   1. selection (exec_selection.c): the selectors compile into small
 *      expression trees (sel_node): columns, WRITETIME/MAXWRITETIME/TTL,
 *      COUNT, token(), the time functions (now(), toTimestamp(x), ...), CAST
 *      and typed constants. exec_select_columns() exposes their names and
 *      types so a PREPARE reports exactly the columns a later EXECUTE returns;
 *   2. restrictions: exec_analyze_where() (exec_where.c) turns the WHERE
 *      clause into partition keys or a token range, clustering slices in
 *      storage order and filters. ORDER BY becomes a `reversed` read;
 *   3. rows: a scan reads partitions in token order, an IN list in the
 *      key values' order (as Cassandra does), each over the
 *      slices; filters run on every row, then PER PARTITION LIMIT, LIMIT
 *      and the page size. System tables (exec_system.c) are materialised
 *      first (they are small) and filtered with the same machinery;
 *   4. reply: a page is buffered (the paging state goes in the metadata,
 *      before the rows) and then streamed with cql_reply_rows_*.
 * This file holds the run itself (steps 2-4 for user tables, on_row, the
 * paging state, the reply) and the checks user and system tables share;
 * exec_select_int.h holds what the three files share.
 *
 * Paging state (opaque to clients, validated strictly on the way back):
 *   u8 version (1) | u8 kind
 *   kind 1 (partitions): uvarint pk_index | uvarint pklen | pk bytes |
 *          u8 in_partition | [uvarint cklen | ck bytes] if in_partition |
 *          uvarint limit_left+1 | uvarint ppl_left+1
 *   kind 2 (row index, system tables): uvarint next row | uvarint limit_left+1
 *   u32 BE crc32c of everything before it
 * "in_partition" resumes inside pk strictly after ck (before it when
 * reversed); otherwise the read resumes at the partition after pk. The
 * limits count what is left of LIMIT / PER PARTITION LIMIT (-1 = none), so
 * the rows of all pages together honour LIMIT exactly.
 *
 * A page stops once it holds page_size rows AND a further matching row was
 * seen: the last page never carries a paging state. Aggregates without
 * GROUP BY read everything and answer in one page; with GROUP BY the page
 * size counts groups (exec_group.c); IN + ORDER BY sorts in memory and so
 * cannot page (Cassandra's message).
 */
#define _GNU_SOURCE /* qsort_r */
#include "exec_select_int.h"

#include <stdlib.h>

#define PS_VERSION 1
#define PS_MAX_PK (1u << 20)

/* ---- output rows ---------------------------------------------------------- */

void out_cell(sib_buf *b, sch_val v)
{
    sib_buf_be32(b, (uint32_t)(v.len < 0 ? -1 : v.len));
    if (v.len > 0) sib_buf_append(b, v.p, (size_t)v.len);
}

/* Appends the selected values of one row to run->out. */
static int emit_values(sel_run *run, row_ctx *rc, sib_err *err)
{
    size_t off = run->out.len;
    sib_buf_append(&run->offs, &off, sizeof(off));
    const uint8_t *ck = run->post_order && rc->ck ? rc->ck : NULL;
    sib_buf_be32(&run->out, ck ? (uint32_t)rc->cklen : 0);
    if (ck) sib_buf_append(&run->out, ck, rc->cklen);
    for (size_t i = 0; i < run->sel.n; i++) {
        uint8_t tmp[16];
        sch_val v;
        const sel_node *n = run->sel.nodes[i];
        /* a plain column straight from the row: eval's frame is not free */
        int e = n->kind == SN_COLUMN ? col_value(run, rc, n->col, &v, err) : eval(run, n, rc, tmp, &v, err);
        if (e) return e;
        out_cell(&run->out, v);
    }
    run->nrows++;
    return (run->out.oom || run->offs.oom) ? oom(err) : 0;
}

static int filters_match(sel_run *run, row_ctx *rc, bool *ok, sib_err *err)
{
    *ok = true;
    for (size_t i = 0; i < run->nfilters && *ok; i++) {
        sch_val v;
        int e = col_value(run, rc, run->filters[i].col, &v, err);
        if (e) return e;
        *ok = exec_filter_match(&run->filters[i], v.p, v.len);
    }
    return 0;
}

void note_last_row(sel_run *run, row_ctx *rc, uint64_t pk_index)
{
    sib_buf_reset(&run->last_pk);
    sib_buf_reset(&run->last_ck);
    if (rc->pk) sib_buf_append(&run->last_pk, rc->pk, rc->pklen);
    /* without clustering columns a partition is one row: resume at the next */
    run->last_in_partition = rc->ck != NULL && !run->distinct && sch_table_clustering_count(run->t) > 0;
    if (run->last_in_partition) sib_buf_append(&run->last_ck, rc->ck, rc->cklen);
    run->last_pk_index = pk_index;
}

/* Decides what happens to one candidate row. Returns ROW_* or < 0. */
int on_row(sel_run *run, row_ctx *rc, uint64_t pk_index, sib_err *err)
{
    bool ok;
    int e = filters_match(run, rc, &ok, err);
    if (e) return e;
    if (!ok) return ROW_NEXT;
    if (run->grouping) return group_row(run, rc, pk_index, err);
    if (run->ppl_left == 0) return ROW_PARTITION_DONE;
    if (run->page_size > 0 && run->nrows == (size_t)run->page_size) {
        run->more = true; /* a further row exists: the page gets a paging state */
        return ROW_STOP;
    }
    if ((e = emit_values(run, rc, err))) return e;
    note_last_row(run, rc, pk_index);
    if (run->ppl_left > 0) run->ppl_left--;
    /* The paging state resumes in the partition of the LAST EMITTED row, so it
     * must carry that partition's remaining count, not the one of a partition
     * read afterwards without emitting. */
    run->last_ppl_left = run->ppl_left;
    if (run->limit_left > 0 && --run->limit_left == 0) return ROW_STOP;
    return ROW_NEXT;
}

/* ---- paging state ---------------------------------------------------------- */

int ps_invalid(sib_err *err) { return sib_err_set(err, SIB_EINVAL, "Invalid value for the paging state"); }

void ps_encode_partitions(sel_run *run, sib_buf *b)
{
    sib_buf_u8(b, PS_VERSION);
    sib_buf_u8(b, PS_PARTITIONS);
    sib_buf_uvarint(b, run->last_pk_index);
    sib_buf_uvarint(b, run->last_pk.len);
    sib_buf_append(b, run->last_pk.p, run->last_pk.len);
    sib_buf_u8(b, run->last_in_partition);
    if (run->last_in_partition) {
        sib_buf_uvarint(b, run->last_ck.len);
        sib_buf_append(b, run->last_ck.p, run->last_ck.len);
    }
    sib_buf_uvarint(b, (uint64_t)(run->limit_left + 1));
    sib_buf_uvarint(b, (uint64_t)(run->last_ppl_left + 1));
    sib_buf_be32(b, sib_crc32c(0, b->p, b->len));
}

void ps_encode_rowindex(uint64_t next, int64_t limit_left, sib_buf *b)
{
    sib_buf_u8(b, PS_VERSION);
    sib_buf_u8(b, PS_ROWINDEX);
    sib_buf_uvarint(b, next);
    sib_buf_uvarint(b, (uint64_t)(limit_left + 1));
    sib_buf_be32(b, sib_crc32c(0, b->p, b->len));
}

static bool rd_limit(sib_rd *r, int64_t *out)
{
    uint64_t v;
    if (!sib_rd_uvarint(r, &v) || v > (uint64_t)INT64_MAX) return false;
    *out = (int64_t)v - 1;
    return true;
}

static bool rd_blob(sib_rd *r, size_t max, sch_val *out)
{
    uint64_t n;
    const uint8_t *p;
    if (!sib_rd_uvarint(r, &n) || n > max || !sib_rd_bytes(r, (size_t)n, &p)) return false;
    *out = val_of(p, (size_t)n);
    return true;
}

/* Decodes the client's paging state (if any) into run->ps; `kind` is what
 * this query produces, anything else is a state from another query. */
int ps_decode(const cql_params *params, uint8_t kind, pstate *ps, sib_err *err)
{
    /* no state (most queries): ps stays as run_init left it, not present */
    if (!params || params->paging_state.len < 0) return 0;
    memset(ps, 0, sizeof(*ps));
    ps->limit_left = ps->ppl_left = -1;
    const cql_value *v = &params->paging_state;
    if (v->len < 6 || get_be32(v->p + v->len - 4) != sib_crc32c(0, v->p, (size_t)v->len - 4)) return ps_invalid(err);
    sib_rd r;
    sib_rd_init(&r, v->p, (size_t)v->len - 4);
    uint8_t ver, k, inp = 0;
    if (!sib_rd_u8(&r, &ver) || !sib_rd_u8(&r, &k) || ver != PS_VERSION || k != kind) return ps_invalid(err);
    bool ok;
    if (kind == PS_ROWINDEX) {
        ok = sib_rd_uvarint(&r, &ps->row_index) && rd_limit(&r, &ps->limit_left);
    } else {
        ok = sib_rd_uvarint(&r, &ps->pk_index) && rd_blob(&r, PS_MAX_PK, &ps->pk) && sib_rd_u8(&r, &inp) &&
             inp <= 1 && (!inp || rd_blob(&r, ST_MAX_CK_LEN, &ps->ck)) && rd_limit(&r, &ps->limit_left) &&
             rd_limit(&r, &ps->ppl_left);
        ps->in_partition = inp;
    }
    if (!ok || sib_rd_left(&r) != 0 || ps->limit_left == 0) return ps_invalid(err);
    ps->present = true;
    ps->kind = kind;
    return 0;
}

/* ---- user tables: partitions and rows -------------------------------------- */

/* A row whose only live cells belong to dropped columns does not exist for
 * CQL, just as Cassandra filters dropped columns out before liveness. */
static bool row_visible(const sch_table *t, const st_row *row)
{
    if (row->has_marker) return true;
    for (size_t i = 0; i < row->ncells; i++)
        if (sch_table_column_by_id(t, row->cells[i].col)) return true;
    return false;
}

/* Compares bound key k with full key ck; *is_prefix when k is a prefix of ck. */
static int bound_cmp(const st_bound *b, const uint8_t *ck, size_t cl, bool *is_prefix)
{
    size_t m = SIB_MIN(b->len, cl);
    int c = m ? memcmp(b->key, ck, m) : 0;
    *is_prefix = c == 0 && b->len <= cl;
    if (c) return c;
    return b->len > cl ? 1 : 0;
}

/* The slices restricted to rows strictly after ck (before it when reversed):
 * how a page resumes inside a partition. Slices that end up empty are
 * dropped; out has room for n (or 1 when n == 0) slices. */
size_t cut_slices(const st_slice *in, size_t n, const uint8_t *ck, size_t cl, bool reversed, st_slice *out)
{
    st_slice whole = {{NULL, 0, true, true}, {NULL, 0, true, true}};
    if (n == 0) {
        in = &whole;
        n = 1;
    }
    st_bound at = {ck, cl, false, false}; /* exclusive: covers none of ck's rows */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        st_slice s = in[i];
        bool pre;
        int c;
        if (!reversed) {
            if (!s.end.unbounded) {
                c = bound_cmp(&s.end, ck, cl, &pre);
                if (pre ? !s.end.incl : c < 0) continue; /* ends at or before ck */
            }
            c = s.start.unbounded ? -1 : bound_cmp(&s.start, ck, cl, &pre);
            if (s.start.unbounded || (pre ? s.start.incl : c < 0)) s.start = at;
        } else {
            if (!s.start.unbounded) {
                c = bound_cmp(&s.start, ck, cl, &pre);
                if (pre ? !s.start.incl : c > 0) continue; /* starts at or after ck */
            }
            c = s.end.unbounded ? 1 : bound_cmp(&s.end, ck, cl, &pre);
            if (s.end.unbounded || (pre ? s.end.incl : c > 0)) s.end = at;
        }
        out[k++] = s;
    }
    return k;
}

/* ---- user tables: reading in pieces ------------------------------------------
 *
 * The rows come from storage in bounded pieces (st_read_page, storage.h):
 * one partition read or one stretch of a token-ordered scan. A piece that
 * memory can answer comes back at once; one that needs SSTables runs on
 * the read pool and its page arrives later on the loop (on_page), where the
 * rows go through on_row() as before and the next piece is asked for. So
 * the SELECT's state lives in a heap object (sel_read) until the reply.
 *
 * A partition whose rows did not fit in one piece is continued by a
 * partition read of the rows after the last one seen (cut_slices), and so
 * is the partition a paging state resumes inside; a scan then goes on from
 * the partition after it. */

typedef struct pk_ent {
    sch_val pk;
    int64_t token;
} pk_ent;

typedef struct sel_read {
    sel_run run;
    /* What select_user_start and select_user set before any use (read_new
     * leaves them): */
    exec_restr r;
    cql_exec *ex;         /* c is gone once the reply is sent: what the end needs */
    int64_t start_us;
    uint8_t table_id[16];
    uint64_t ddl_gen;     /* the schema the statement was checked against */
    const prs_select *stmt;
    int restarts;         /* times a DDL during the read made it start over */
    exec_prepared *prep;  /* the prepared statement stmt is in, held (NULL: none) */
    pk_ent ent_one;       /* ents of a one-partition read (no arena block), written before use */
    st_slice cut_one;     /* cut of a read of whole partitions (likewise) */
    /* From here to scan_pk, cleared by read_new: */
    st_table *store;
    st_slice *cut;        /* room for r.nslices (or 1) slices */
    /* partition keys (EQ/IN) in the key values' order, or a scan */
    pk_ent *ents;
    size_t i;
    int64_t limit;        /* LIMIT (-1 = none): post-ordered and aggregate replies trim to it */
    bool scan, scan_done, scan_has_pos, scan_incl, scan_has_key;
    int64_t scan_tok;     /* scan position: after (or at, scan_incl) scan_pk */
    /* a partition being continued after cont_ck (cont_pk, cont_ck below) */
    bool cont, cont_from_ps, cont_any;
    bool sel_lost;        /* no memory to copy the kept selection (sel_detach) */
    /* tracing: the partition key being read, and the counts when it began */
    bool key_traced;
    uint64_t rows0, tomb0;
    const uint8_t *tok_pk; /* tok is this partition key's token (pk_token) */
    int32_t tok_len;
    int64_t tok;
    /* through the replicas (coordinator): a partition not local-only */
    bool has_repl;
    bool read_repair;     /* table option read_repair 'BLOCKING' */
    exec_bucket_ra *ra;   /* the next buckets, read ahead (exec_bucket.c) */
    /* a scan through the replicas (coord_range_read): the keyspace is not
     * all here; the piece being taken ends at range_tok / range_pk */
    bool range_remote, range_piece, range_done, range_has_pk;
    int64_t range_tok;
    /* Last, what read_new does not clear: the buffers a kept read reuses
     * (emptied by select_user_free), and repl (1.1 KB), set with has_repl. */
    sib_buf scan_pk, cont_pk, cont_ck, range_pk;
    coord_repl repl;
} sel_read;

static bool token_in_range(const exec_restr *r, int64_t tok)
{
    if (!r->token_restricted) return true;
    if (tok < r->token_start || (tok == r->token_start && !r->token_start_incl)) return false;
    return tok < r->token_end || (tok == r->token_end && r->token_end_incl);
}

static bool token_past_end(const exec_restr *r, int64_t tok)
{
    return r->token_restricted && (tok > r->token_end || (tok == r->token_end && !r->token_end_incl));
}

/* tombstone_failure_threshold fails the query (ReadFailure, Cassandra's
 * TombstoneOverwhelmingException text); tombstone_warn_threshold logs once
 * per query when the total first passes it. */
static int count_tombstones(sel_run *run, uint64_t n, const uint8_t *pk, size_t pklen, sib_err *err)
{
    cql_exec *ex = run->c->ex;
    uint64_t before = run->tombstones;
    run->tombstones += n;
    if (ex->tombstone_fail > 0 && run->tombstones > (uint64_t)ex->tombstone_fail) {
        sib_err_set(err, SIB_EREADFAIL,
                    "Scanned over %d tombstones during query on %s.%s (last scanned partition token was %lld); query aborted",
                    ex->tombstone_fail, sch_table_keyspace(run->t), sch_table_name(run->t),
                    (long long)sib_murmur3_token(pk, pklen));
        err->ex[0] = run->c->consistency;
        err->ex[1] = 0;
        err->ex[2] = 1;
        err->ex[3] = 1;
        return SIB_EREADFAIL;
    }
    if (ex->tombstone_warn > 0 && before <= (uint64_t)ex->tombstone_warn && run->tombstones > (uint64_t)ex->tombstone_warn)
        sib_log(ex->log, SIB_WARN, "Read on %s.%s scanned over %llu tombstones (tombstone_warn_threshold %d)",
                sch_table_keyspace(run->t), sch_table_name(run->t), (unsigned long long)run->tombstones,
                ex->tombstone_warn);
    return 0;
}

static void set_cont(sel_read *rd, const uint8_t *pk, size_t pklen, const uint8_t *ck, size_t cklen, bool from_ps)
{
    rd->cont = true;
    rd->cont_from_ps = from_ps;
    rd->cont_any = false;
    sib_buf_reset(&rd->cont_pk);
    sib_buf_append(&rd->cont_pk, pk, pklen);
    sib_buf_reset(&rd->cont_ck);
    sib_buf_append(&rd->cont_ck, ck, cklen);
}

static int on_row_stop(sel_run *run, row_ctx *rc, uint64_t pk_index, sib_err *err)
{
    int x = on_row(run, rc, pk_index, err);
    if (x == ROW_STOP) run->stop = true;
    return x;
}

/* PER PARTITION LIMIT counts a bucketed table's natural partition once: its
 * buckets and salts, read one after the other, share what is left. */
static int64_t natural_ppl_left(const sel_run *run, const st_rpart *part)
{
    const sch_table *t = run->t;
    if (run->ppl < 0 || !sch_table_has_derived(t) || run->salt_merge) return run->ppl;
    if (run->last_pk.len)
        return exec_bucket_same_natural(t, run->last_pk.p, run->last_pk.len, part->pk, part->pklen) ? run->ppl_left : run->ppl;
    if (run->ps.present && exec_bucket_same_natural(t, run->ps.pk.p, (size_t)run->ps.pk.len, part->pk, part->pklen))
        return run->ps.ppl_left;
    return run->ppl;
}

/* Partition k of a page (part: st_rpage_part's) through on_row(). cont: it
 * continues a partition (the rows of an earlier piece, or of the page the
 * paging state ends); *more is set when its rows went on past the piece. */
static int take_partition(sel_read *rd, const st_rpage *pg, size_t k, const st_rpart *part, bool cont, bool *more,
                          sib_err *err)
{
    sel_run *run = &rd->run;
    const sch_table *t = run->t;
    *more = false;
    uint64_t pk_index = rd->scan ? 0 : rd->i;
    int e = sch_pk_decode(t, part->pk, part->pklen, run->pkv, sch_table_pk_count(t), err);
    if (e) return e;
    row_ctx rc = {.pk = part->pk, .pklen = part->pklen, .pkv = run->pkv};
    if (!cont) run->ppl_left = natural_ppl_left(run, part);
    else if (rd->cont_from_ps) run->ppl_left = run->ps.ppl_left;
    st_row srow, row;
    bool has_static = sch_table_has_static(t) && st_rpage_static(pg, k, &srow) && row_visible(t, &srow);
    if (has_static) rc.srow = &srow;
    if (run->distinct) {
        int x = part->live ? on_row_stop(run, &rc, pk_index, err) : 0;
        return x < 0 ? x : 0;
    }
    bool any = cont && rd->cont_any;
    int x = ROW_NEXT;
    for (size_t j = 0; j < part->nrows && x == ROW_NEXT; j++) {
        st_rpage_row(pg, k, j, &row);
        if (!row_visible(t, &row)) continue;
        any = true;
        run->rows_read++;
        rc.row = &row;
        rc.ck = row.ck ? row.ck : (const uint8_t *)"";
        rc.cklen = row.cklen;
        rc.ck_decoded = false;
        if ((x = on_row_stop(run, &rc, pk_index, err)) < 0) return x;
    }
    /* none changes nothing: the thresholds are checked as the count grows */
    if (part->tombstones && (e = count_tombstones(run, part->tombstones, part->pk, part->pklen, err))) return e;
    if (x == ROW_NEXT && !part->complete && part->nrows) { /* the rest in another piece, after the last row */
        st_rpage_row(pg, k, part->nrows - 1, &row);
        set_cont(rd, part->pk, part->pklen, row.ck ? row.ck : (const uint8_t *)"", row.cklen, false);
        rd->cont_any = any;
        *more = true;
        return rd->cont_pk.oom || rd->cont_ck.oom ? oom(err) : 0;
    }
    /* A partition with only static content still shows up as one row
     * (clustering and regular columns null) unless clustering is restricted. */
    if (!any && has_static && !cont && rd->r.nslices == 0 && !run->stop) {
        rc.row = NULL;
        rc.ck = NULL;
        rc.ck_decoded = false;
        if ((x = on_row_stop(run, &rc, pk_index, err)) < 0) return x;
    }
    return 0;
}

static void set_scan_pos(sel_read *rd, const uint8_t *pk, size_t pklen, int64_t tok)
{
    rd->scan_has_pos = rd->scan_has_key = true;
    rd->scan_incl = false;
    rd->scan_tok = tok;
    sib_buf_reset(&rd->scan_pk);
    sib_buf_append(&rd->scan_pk, pk, pklen);
}

static void trace_read(sel_read *rd)
{
    sel_run *run = &rd->run;
    EXEC_TRACE(run->c->req, "Read %llu live rows and %llu tombstone cells",
               (unsigned long long)(run->rows_read - rd->rows0), (unsigned long long)(run->tombstones - rd->tomb0));
    rd->key_traced = false;
}

/* A page through on_row(), then where the next piece starts. */
static int take_page(sel_read *rd, const st_rpage *pg, sib_err *err)
{
    sel_run *run = &rd->run;
    bool was_cont = rd->cont, more = false, range = rd->range_piece;
    rd->range_piece = false;
    int e = st_rpage_status(pg, err);
    for (size_t k = 0; !e && k < st_rpage_parts(pg) && !run->stop; k++) {
        st_rpart part;
        st_rpage_part(pg, k, &part);
        if (rd->scan && !token_in_range(&rd->r, part.token)) {
            if (token_past_end(&rd->r, part.token)) rd->scan_done = true;
            if (rd->scan_done) break;
            continue;
        }
        e = take_partition(rd, pg, k, &part, was_cont, &more, err);
        if (!e && more) { /* rows did not fit: only the last partition of a page */
            if (rd->scan) set_scan_pos(rd, part.pk, part.pklen, part.token);
            return rd->scan_pk.oom ? oom(err) : 0;
        }
    }
    if (!e && !rd->scan && rd->key_traced) trace_read(rd); /* this key is done (or the page full) */
    if (e || run->stop) return e;
    if (was_cont) rd->cont = false; /* the continued partition is done */
    if (!rd->scan) {
        rd->i++;
        return 0;
    }
    const uint8_t *pk;
    size_t pklen;
    int64_t tok;
    if (was_cont && !rd->scan_done) return 0; /* the scan goes on from its position */
    if (!rd->scan_done && st_rpage_resume(pg, &pk, &pklen, &tok)) {
        if (token_past_end(&rd->r, tok)) rd->scan_done = true;
        else set_scan_pos(rd, pk, pklen, tok);
    } else if (range && !rd->range_done && !token_past_end(&rd->r, rd->range_tok)) {
        /* the replicas' piece ended here: the next one goes on after it */
        if (rd->range_has_pk) {
            set_scan_pos(rd, rd->range_pk.p ? rd->range_pk.p : (const uint8_t *)"", rd->range_pk.len, rd->range_tok);
        } else {
            rd->scan_has_pos = true;
            rd->scan_has_key = rd->scan_incl = false;
            rd->scan_tok = rd->range_tok;
            rd->scan_done = rd->range_tok == INT64_MAX;
        }
    } else {
        rd->scan_done = true;
    }
    return rd->scan_pk.oom ? oom(err) : 0;
}

static void on_page(void *ctx, st_rpage *pg);

/* Builds the next piece's request; false when the read is over. */
static bool next_piece(sel_read *rd, st_rreq *rq, st_position *pos, size_t *nslices)
{
    sel_run *run = &rd->run;
    const exec_restr *r = &rd->r;
    memset(rq, 0, sizeof *rq);
    rq->now_s = run->c->now_s;
    rq->reversed = run->reversed;
    rq->static_only = run->distinct;
    rq->with_static = sch_table_has_static(run->t);
    rq->slices = r->slices;
    rq->nslices = r->nslices;
    /* a small page needs few rows: do not read a thousand for it (a big
     * one still comes in pieces of storage's bound: the loop takes a
     * piece's rows in one go) */
    if (run->page_size > 0 && run->page_size < 1023 && !run->sel.aggregate) rq->max_rows = (size_t)run->page_size + 1;
    while (!rd->cont && !rd->scan && rd->i < r->npks && !token_in_range(r, rd->ents[rd->i].token)) rd->i++;
    if (rd->cont) {
        *nslices = cut_slices(r->slices, r->nslices, rd->cont_ck.p, rd->cont_ck.len, run->reversed, rd->cut);
        rq->slices = rd->cut;
        rq->nslices = *nslices;
        rq->pk = rd->cont_pk.p ? rd->cont_pk.p : (const uint8_t *)"";
        rq->pklen = rd->cont_pk.len;
        return true;
    }
    if (!rd->scan) {
        if (rd->i >= r->npks) return false;
        rq->pk = rd->ents[rd->i].pk.p;
        rq->pklen = (size_t)rd->ents[rd->i].pk.len;
        /* pk_token hashed it already: storage need not hash it again */
        rq->has_token = true;
        rq->token = rd->ents[rd->i].token;
        return true;
    }
    if (rd->scan_done) return false;
    if (rd->scan_has_pos) {
        pos->token = rd->scan_tok;
        pos->pk = rd->scan_has_key ? rd->scan_pk.p : NULL;
        pos->pklen = rd->scan_has_key ? rd->scan_pk.len : 0;
        pos->inclusive = rd->scan_incl;
        rq->start = pos;
    }
    if (r->token_restricted) {
        rq->has_end = true;
        rq->end_token = r->token_end;
    }
    return true;
}

static void on_replicas(void *ctx, int rc, const sib_err *err, st_merge *mg);

/* A partition piece whose replicas are not only this node goes through
 * them (coord_read, coordinator.h): 1 = asked (on_replicas goes on), 0 =
 * read it locally, <0 = failed. The piece's slices are asked whole: the
 * replicas' reconciled answer is then read like a local partition. */
static int remote_piece(sel_read *rd, const st_rreq *rq, st_rpage **pg, sib_err *err)
{
    cql_exec *ex = rd->ex;
    if (!rd->has_repl || !rq->pk || !ex->co) return 0;
    /* a partition of the IN list: its token is known */
    int64_t tok = !rd->scan && rd->i < rd->r.npks && rq->pk == rd->ents[rd->i].pk.p ? rd->ents[rd->i].token
                                                               : sib_murmur3_token(rq->pk, rq->pklen);
    if (coord_local_only(ex->co, &rd->repl, tok)) return 0;
    if (rd->ra && !rd->cont) { /* a bucket's first piece: maybe read ahead (*pg: here already) */
        int x = exec_bucket_ra_read(rd->ra, rd->i, rq, on_replicas, rd, pg, err);
        if (x) return x;
    }
    exec_ctx *c = rd->run.c;
    uint8_t version[16];
    sch_catalog_schema_version(ex->cat, version);
    coord_read_req cr = {.table_id = rd->table_id, .schema_version = version, .pk = rq->pk, .pklen = rq->pklen,
                         .slices = rq->slices, .nslices = rq->nslices, .now_s = rq->now_s};
    int rc = coord_read(ex->co, &cr, &rd->repl, tok, c->consistency, rd->read_repair, on_replicas, rd, err);
    return rc ? rc : 1;
}

static void on_range(void *ctx, int rc, const sib_err *err, st_merge *mg, const coord_range_result *res);

/* Where a scan piece that stops at a stretch's end (rather than at its
 * bound) goes on: take_page resumes after through (through_pk NULL: after
 * every partition of through_token). */
static void set_range_end(sel_read *rd, const coord_range_result *res)
{
    rd->range_piece = true;
    rd->range_done = res->done;
    rd->range_tok = res->through_token;
    rd->range_has_pk = res->through_pk != NULL;
    sib_buf_reset(&rd->range_pk);
    if (res->through_pk) sib_buf_append(&rd->range_pk, res->through_pk, res->through_pklen);
}

/* A scan piece of a keyspace this node does not hold whole goes through
 * the replicas (coord_range_read, coordinator.h): 1 = asked (on_range goes
 * on), 0 = read it locally (rq may be narrowed to a stretch this node
 * answers alone at the level), <0 = failed. They are asked for about as
 * many partitions as the page or LIMIT still needs; a piece that holds
 * fewer rows (deleted, filtered out) is followed by the next one. */
static int remote_scan_piece(sel_read *rd, st_rreq *rq, sib_err *err)
{
    cql_exec *ex = rd->ex;
    if (!rd->range_remote || rq->pk) return 0;
    sel_run *run = &rd->run;
    st_position from = rq->start ? *rq->start : (st_position){INT64_MIN, NULL, 0, true};
    int64_t qend = rq->has_end ? rq->end_token : INT64_MAX, send;
    if (coord_range_local_stretch(ex->co, &rd->repl, run->c->consistency, &from, qend, &send)) {
        coord_range_result res = {.done = send >= qend, .through_token = send};
        set_range_end(rd, &res);
        rq->has_end = true;
        rq->end_token = send;
        return rd->range_pk.oom ? oom(err) : 0;
    }
    int64_t want = 1024;
    if (!run->sel.aggregate && run->page_size > 0) want = run->page_size - (int64_t)run->nrows + 1;
    if (run->limit_left > 0) want = SIB_MIN(want, run->limit_left + 1);
    uint8_t version[16];
    sch_catalog_schema_version(ex->cat, version);
    coord_range_req cr = {.table_id = rd->table_id, .schema_version = version, .start = from, .end_token = qend,
                          .slices = rq->static_only ? NULL : rq->slices,
                          .nslices = rq->static_only ? 0 : rq->nslices,
                          .now_s = rq->now_s,
                          .max_parts = (uint32_t)SIB_MAX(SIB_MIN(want, 1024), 1)};
    int rc = coord_range_read(ex->co, &cr, &rd->repl, rd->run.c->consistency, rd->read_repair, rd->start_us,
                              on_range, rd, err);
    return rc ? rc : 1;
}

/* Reads pieces until one is queued (1), the read is over (0) or fails. */
static int read_more(sel_read *rd, sib_err *err)
{
    sel_run *run = &rd->run;
    while (!run->stop) {
        st_rreq rq;
        st_position pos;
        size_t nsl = 1;
        if (!next_piece(rd, &rq, &pos, &nsl)) return 0;
        if (rd->cont && nsl == 0) { /* nothing of the partition after the cut */
            if (!rd->scan && rd->key_traced) trace_read(rd);
            rd->cont = false;
            if (!rd->scan) rd->i++;
            continue;
        }
        if (!rd->scan && !rd->key_traced) {
            rd->key_traced = true;
            rd->rows0 = run->rows_read;
            rd->tomb0 = run->tombstones;
            EXEC_TRACE(run->c->req, "Executing single-partition query on %s", sch_table_name(run->t));
        }
        st_rpage *pg = NULL;
        int rc = remote_piece(rd, &rq, &pg, err);
        if (!rc && !pg) rc = remote_scan_piece(rd, &rq, err);
        if (rc && !pg) return rc < 0 ? rc : 1;
        /* taken at once, before anything writes: an inline page may point
         * into the memtables rather than copy the rows */
        rq.borrow = true;
        if (!pg && (rc = st_read_page(rd->store, &rq, &pg, on_page, rd, err))) return rc;
        rc = take_page(rd, pg, err);
        st_rpage_destroy(pg);
        if (rc) return rc;
    }
    return 0;
}

/* The token of one of the read's partition keys: the last one asked is
 * remembered (the prefetch, the consistency check and the read ask for the
 * first key's token in turn). */
static int64_t pk_token(sel_read *rd, const sch_val *pk)
{
    if (rd->tok_pk != pk->p || rd->tok_len != pk->len) {
        rd->tok_pk = pk->p;
        rd->tok_len = pk->len;
        rd->tok = sib_murmur3_token(pk->p, (size_t)pk->len);
    }
    return rd->tok;
}

/* The start: partition keys sorted, or the scan's first position; a paging
 * state that ends inside a partition continues that partition first. */
static int read_start(sel_read *rd, sib_err *err)
{
    sel_run *run = &rd->run;
    const exec_restr *r = &rd->r;
    const pstate *ps = &run->ps;
    rd->scan = !r->pk_complete;
    if (!rd->scan) {
        pk_ent *ents = r->npks <= 1 ? &rd->ent_one : sib_arena_alloc(run->c->arena, sizeof(*ents) * r->npks);
        if (!ents) return oom(err);
        for (size_t i = 0; i < r->npks; i++) {
            ents[i].pk = r->pks[i];
            ents[i].token = pk_token(rd, &r->pks[i]);
        }
        rd->ents = ents; /* in the order exec_analyze_where gives them: the key values' order, as Cassandra reads an IN */
        if (ps->present) {
            if (ps->pk_index >= r->npks || ents[ps->pk_index].pk.len != ps->pk.len ||
                memcmp(ents[ps->pk_index].pk.p, ps->pk.p, (size_t)ps->pk.len) != 0)
                return ps_invalid(err);
            rd->i = (size_t)ps->pk_index + !ps->in_partition;
            if (ps->in_partition && token_in_range(r, ents[rd->i].token))
                set_cont(rd, ps->pk.p, (size_t)ps->pk.len, ps->ck.p, (size_t)ps->ck.len, true);
        }
    } else {
        if (ps->present) {
            set_scan_pos(rd, ps->pk.p, (size_t)ps->pk.len, sib_murmur3_token(ps->pk.p, (size_t)ps->pk.len));
            if (ps->in_partition) set_cont(rd, ps->pk.p, (size_t)ps->pk.len, ps->ck.p, (size_t)ps->ck.len, true);
        } else if (r->token_restricted) {
            rd->scan_has_pos = true;
            rd->scan_tok = r->token_start;
            rd->scan_incl = r->token_start_incl;
        }
        EXEC_TRACE(run->c->req, "Executing seq scan on %s", sch_table_name(run->t));
    }
    if (rd->cont_pk.oom || rd->cont_ck.oom || rd->scan_pk.oom) return oom(err);
    return read_more(rd, err);
}

/* ---- reply ------------------------------------------------------------------- */

int post_order_cmp(const void *a, const void *b, void *ctx)
{
    const uint8_t *x = *(const uint8_t *const *)a, *y = *(const uint8_t *const *)b;
    uint32_t xl = get_be32(x), yl = get_be32(y);
    size_t m = SIB_MIN(xl, yl);
    int c = m ? memcmp(x + 4, y + 4, m) : 0;
    if (!c) c = (xl > yl) - (xl < yl);
    if (*(const bool *)ctx) c = -c;
    return c ? c : (x > y) - (x < y); /* rows were appended in read order: stable */
}

/* Streams the buffered page; `limit` trims post-ordered results (-1 = all). */
void reply_rows(sel_run *run, const sib_buf *ps, int64_t limit)
{
    exec_ctx *c = run->c;
    sib_err gerr;
    if ((run->grouping && group_finish(run, &gerr)) || (run->s->json && json_rewrite(run, &gerr))) {
        exec_reply_err(c, &gerr);
        return;
    }
    cql_rows_meta m;
    memset(&m, 0, sizeof(m));
    m.ks = sch_table_keyspace(run->t);
    m.table = sch_table_name(run->t);
    m.ncols = (uint32_t)run->sel.n;
    m.names = run->sel.names;
    m.types = run->sel.types;
    if (ps && ps->len) {
        m.paging_state = ps->p;
        m.paging_state_len = (int32_t)ps->len;
    }
    size_t n = run->nrows;
    const uint8_t *one[4]; /* a point read's row without a malloc */
    const uint8_t **rows = n <= SIB_ARRAY_LEN(one) ? one : malloc(sizeof(*rows) * n);
    if (!rows) {
        sib_err err;
        oom(&err);
        exec_reply_err(c, &err);
        return;
    }
    for (size_t i = 0; i < n; i++) rows[i] = run->out.p + ((const size_t *)run->offs.p)[i];
    if (run->post_order) qsort_r(rows, n, sizeof(*rows), post_order_cmp, &run->reversed);
    if (limit >= 0 && (uint64_t)limit < n) n = (size_t)limit;
    cql_rows *rw = cql_reply_rows_begin(c->req, &m);
    if (!rw) goto out;
    /* out_cell wrote the cells in the protocol's [bytes] form: a row's go
     * in one copy. Rows emit_values wrote in read order end where the next
     * one starts; others (sorted, grouped, JSON, merged) are walked. */
    bool in_order = !run->post_order && !run->grouping && !run->s->json && !run->salt_merge;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = rows[i];
        p += 4 + get_be32(p);
        const uint8_t *cells = p;
        if (in_order) {
            p = i + 1 < run->nrows ? rows[i + 1] : run->out.p + run->out.len;
        } else {
            for (size_t j = 0; j < run->sel.n; j++) {
                int32_t len = (int32_t)get_be32(p);
                p += 4 + (len > 0 ? len : 0);
            }
        }
        cql_rows_cells_raw(rw, cells, (size_t)(p - cells), (uint32_t)run->sel.n);
    }
    cql_reply_rows_end(c->req);
out:
    if (rows != one) free(rows);
}

/* ---- validation shared by user and system tables ------------------------------ */

/* ORDER BY -> reversed, with Cassandra's checks and messages (docs/cql.md 3.3).
 * ck_eq[i]: clustering column i is restricted by equality. */
int check_order_by(const sch_table *t, const prs_select *s, bool pk_restricted, const bool *ck_eq,
                   bool *reversed, sib_err *err)
{
    *reversed = false;
    if (!s->norder) return 0;
    for (size_t i = 0; i < s->norder; i++)
        if (!need_column(t, s->order[i].col, err)) return SIB_EINVAL;
    if (!pk_restricted)
        return sib_err_set(err, SIB_EINVAL, "ORDER BY is only supported when the partition key is restricted by an EQ "
                                            "or an IN.");
    size_t next = 0;
    int dir = -1;
    bool mixed = false;
    for (size_t i = 0; i < s->norder; i++) {
        const sch_column *col = sch_table_column_by_name(t, s->order[i].col);
        if (col->kind != SCH_COL_CLUSTERING)
            return sib_err_set(err, SIB_EINVAL,
                               "Order by is currently only supported on the clustered columns of the PRIMARY KEY, "
                               "got %s",
                               col->name);
        bool gap = (size_t)col->position < next;
        for (; !gap && next < (size_t)col->position; next++) gap = !ck_eq[next];
        if (gap)
            return sib_err_set(err, SIB_EINVAL, "Order by currently only supports the ordering of columns following "
                                                "their declared order in the PRIMARY KEY");
        next = (size_t)col->position + 1;
        int rev = s->order[i].desc != (col->order == SCH_ORDER_DESC);
        if (dir >= 0 && dir != rev) mixed = true;
        dir = rev;
    }
    if (mixed) return sib_err_set(err, SIB_EINVAL, "Unsupported order by relation");
    *reversed = dir == 1;
    return 0;
}

/* Cassandra words LIMIT and PER PARTITION LIMIT errors alike: "Invalid
 * null value of limit", "Invalid limit value", "LIMIT must be strictly
 * positive". */
int check_limit(exec_ctx *c, const prs_term *term, int64_t *out, sib_err *err)
{
    *out = -1;
    if (!term) return 0;
    bool present = true;
    int64_t v;
    int rc = exec_term_int(c, term, "limit", &v, &present, err);
    if (rc && !strncmp(err->msg, "Invalid limit value", 19)) return sib_err_set(err, rc, "Invalid limit value");
    if (rc) return rc;
    if (!present) return 0;
    if (v > INT32_MAX) return sib_err_set(err, SIB_EINVAL, "Invalid limit value");
    if (v <= 0) return sib_err_set(err, SIB_EINVAL, "LIMIT must be strictly positive");
    *out = v;
    return 0;
}

int check_distinct(sel_run *run, bool key_range, sib_err *err)
{
    if (!run->distinct && !run->s->ngroup && !run->sel.aggregate) return 0; /* nothing to check */
    if (run->sel.aggregate && run->s->per_partition_limit && !run->s->ngroup)
        return sib_err_set(err, SIB_EINVAL, "PER PARTITION LIMIT is not allowed with aggregate queries.");
    int rc = check_group_by(run, err);
    if (rc) return rc;
    if (!run->distinct) return 0;
    for (size_t i = 0; i < run->sel.n; i++) {
        const sch_column *bad = sel_first_non_key(run->sel.nodes[i]);
        if (bad)
            return sib_err_set(err, SIB_EINVAL,
                               "SELECT DISTINCT queries must only request partition key columns and/or static "
                               "columns (not %s)",
                               bad->name);
    }
    for (size_t k = 0; key_range && k < sch_table_pk_count(run->t); k++) {
        const sch_column *pk = sch_table_pk(run->t, k);
        bool found = false;
        for (size_t i = 0; i < run->sel.n && !found; i++) found = sel_uses_column(run->sel.nodes[i], pk);
        if (!found)
            return sib_err_set(err, SIB_EINVAL,
                               "SELECT DISTINCT queries must request all the partition key columns (missing %s)",
                               pk->name);
    }
    if (run->s->per_partition_limit)
        return sib_err_set(err, SIB_EINVAL, "PER PARTITION LIMIT is not allowed with SELECT DISTINCT queries");
    return 0;
}

/* Is a partition-key column restricted by IN (post-query ordering)? */
static bool pk_has_in(const sch_table *t, const prs_select *s)
{
    for (size_t i = 0; i < s->nwhere; i++) {
        const sch_column *col = s->where[i].ncols ? sch_table_column_by_name(t, s->where[i].cols[0]) : NULL;
        if (s->where[i].kind == PRS_REL_SINGLE && s->where[i].op == PRS_OP_IN && col &&
            col->kind == SCH_COL_PARTITION_KEY)
            return true;
    }
    return false;
}

/* ---- user tables --------------------------------------------------------------- */

static int check_consistency(sel_read *rd, const coord_repl *repl, const exec_restr *r, sib_err *err)
{
    exec_ctx *c = rd->run.c;
    /* a scan: its first token (each later range is checked when it is read) */
    int64_t tok = INT64_MIN;
    if (r->pk_complete && r->npks) tok = pk_token(rd, &r->pks[0]);
    else if (r->token_restricted) tok = r->token_start + (!r->token_start_incl && r->token_start < INT64_MAX);
    return coord_check(c->ex->co, repl, c->consistency, false, tok, err);
}

/* Checks the statement and starts reading: 0 = read to the end, 1 = a
 * piece is on the read pool (on_page goes on), <0 = failed. */
static int select_user(sel_read *rd, sib_err *err)
{
    sel_run *run = &rd->run;
    exec_ctx *c = run->c;
    const prs_select *s = run->s;
    exec_restr *r = &rd->r; /* analysed in place, not copied into rd */
    int rc;
    /* a prepared statement analyses the shape of its WHERE once per plan */
    exec_prepared *p = rd->prep;
    bool plan = p && p->plan_table == run->t && p->plan_gen == c->ex->ddl_gen;
    if (plan && !p->plan_point)
        p->plan_point = exec_where_point_shape(run->t, s->where, s->nwhere, p->plan_key_of) ? 1 : -1;
    if (plan && p->plan_point > 0) rc = exec_where_point(c, run->t, s->where, s->nwhere, p->plan_key_of, r, err);
    else rc = exec_analyze_where(c, run->t, s->where, s->nwhere, EXEC_WHERE_SELECT, s->allow_filtering, r, err);
    if (rc) return rc;
    rd->store = exec_table_store(c, run->t);
    /* A partition read: the memtable index's cache line starts loading now,
     * and the checks below run meanwhile (the lookup's first cache miss). */
    if (rd->store && r->pk_complete && r->npks) st_prefetch(rd->store, pk_token(rd, &r->pks[0]), false);
    run->filters = r->filters;
    run->nfilters = r->nfilters;
    if ((rc = check_distinct(run, !r->pk_complete, err))) return rc;
    if (s->norder) { /* (check_order_by reads ck_eq only then) */
        size_t nck = sch_table_clustering_count(run->t);
        bool *ck_eq = sib_arena_alloc(run->c->arena, nck + 1);
        if (!ck_eq) return sib_err_set(err, SIB_ENOMEM, "order by");
        for (size_t i = 0; i < nck; i++) ck_eq[i] = i < r->ck_eq_prefix;
        if ((rc = check_order_by(run->t, s, r->pk_complete, ck_eq, &run->reversed, err))) return rc;
    }
    int64_t limit = -1; /* run->ppl is -1 (run_init) */
    if (s->limit && (rc = check_limit(c, s->limit, &limit, err))) return rc;
    if (s->per_partition_limit && (rc = check_limit(c, s->per_partition_limit, &run->ppl, err))) return rc;

    /* IN on the partition key + ORDER BY sorts in memory, so it cannot page
     * unless the whole result fits in one page (Cassandra does the same). */
    run->post_order = s->norder && pk_has_in(run->t, s);
    if (run->post_order && run->page_size > 0 && !run->sel.aggregate) {
        if (limit < 0 || limit > run->page_size)
            return sib_err_set(err, SIB_EINVAL,
                               "Cannot page queries with both ORDER BY and a IN restriction on the partition key; you "
                               "must either remove the ORDER BY or the IN and sort client side, or disable paging for "
                               "this query");
        run->page_size = -1;
    }
    bool merge = false;
    if (sch_table_has_derived(run->t) && (rc = exec_bucket_read_plan(c, run->t, r, run->reversed, &merge, err)))
        return rc;
    if ((rc = ps_decode(c->params, PS_PARTITIONS, &run->ps, err))) return rc;
    if (merge && !run->sel.aggregate && (rc = exec_salt_merge_start(run, r, limit, pk_has_in(run->t, s), err)))
        return rc;
    run->limit_left = run->ps.present ? run->ps.limit_left : limit;
    /* LIMIT applies to the output (GROUP BY: it counts groups as they close) */
    if ((run->sel.aggregate && !s->ngroup) || run->post_order) run->limit_left = -1;
    const coord_repl *repl;
    if (c->ex->co && !(rc = exec_table_repl(c, run->t, &repl, err)) && !(rc = check_consistency(rd, repl, r, err))) {
        const sch_table_opts *o = sch_table_options(run->t);
        exec_repl_copy(&rd->repl, repl);
        rd->has_repl = true;
        rd->read_repair = !o || !o->read_repair || o->read_repair[0] != 'N' || strcmp(o->read_repair, "NONE") != 0;
        rd->range_remote = !r->pk_complete && !coord_range_local_only(c->ex->co, &rd->repl);
    }
    if (rc) return rc;

    rd->limit = limit;
    rd->cut = r->nslices ? sib_arena_alloc(c->arena, sizeof(st_slice) * (r->nslices + 1)) : &rd->cut_one;
    if (!rd->store || !rd->cut) return oom(err);
    if (rd->has_repl && sch_table_has_derived(run->t) && r->pk_complete)
        rd->ra = exec_bucket_ra_create(c->ex, rd->table_id, r->pks, r->npks, r->slices, r->nslices,
                                       &rd->repl, c->consistency, rd->read_repair, c->now_s);
    /* the slot prefetched above has mostly arrived by now: its record next
     * (the lookup's second miss, hidden by the read's start) */
    if (r->pk_complete && r->npks) st_prefetch(rd->store, pk_token(rd, &r->pks[0]), true);
    return read_start(rd, err);
}

static void run_free(sel_run *run);
static int run_init(sel_run *run, exec_ctx *c, const sch_table *t, const prs_select *s, sib_err *err);

/* A finished read goes back to the executor, which keeps one with its
 * buffers' memory for the next SELECT: most reads are one partition answered
 * from memory in the callback that started them, so the next one reuses it
 * instead of a dozen allocations. A buffer that grew past SPARE_BUF_MAX is
 * freed rather than kept. */
#define SPARE_BUF_MAX (64 * 1024)

static void buf_keep(sib_buf *b)
{
    if (b->cap > SPARE_BUF_MAX) sib_buf_free(b);
    else sib_buf_reset(b);
}

static void run_keep(sel_run *run);

static void read_destroy(sel_read *rd)
{
    run_free(&rd->run);
    sib_buf_free(&rd->scan_pk);
    sib_buf_free(&rd->cont_pk);
    sib_buf_free(&rd->cont_ck);
    sib_buf_free(&rd->range_pk);
    free(rd);
}

void exec_spare_read_free(cql_exec *ex)
{
    if (ex->spare_read) read_destroy(ex->spare_read);
    ex->spare_read = NULL;
}

static void select_user_free(sel_read *rd)
{
    if (rd->ra) exec_bucket_ra_release(rd->ra); /* a read of derived key columns only */
    rd->ra = NULL;
    if (rd->prep) exec_prepared_release(rd->prep);
    rd->prep = NULL;
    cql_exec *ex = rd->ex;
    if (ex->spare_read) {
        read_destroy(rd);
        return;
    }
    run_keep(&rd->run);
    buf_keep(&rd->scan_pk);
    buf_keep(&rd->cont_pk);
    buf_keep(&rd->cont_ck);
    buf_keep(&rd->range_pk);
    ex->spare_read = rd;
}

/* The kept read (its buffers empty, their memory kept), or a new one. */
static sel_read *read_new(cql_exec *ex)
{
    sel_read *rd = ex->spare_read;
    if (!rd) return calloc(1, sizeof *rd); /* zeroed buffers are empty ones */
    ex->spare_read = NULL;
    /* run first: run_init clears it, keeping its buffers */
    memset(&rd->store, 0, offsetof(sel_read, scan_pk) - offsetof(sel_read, store));
    return rd;
}

static void select_user_start(exec_ctx *c, const sch_table *t, const prs_select *s, int restarts,
                              exec_prepared *prep);
static int sel_detach(sel_run *run, sib_err *err);

/* A DDL ran while a piece was on the pool: the table, its columns and the
 * compiled selectors may be gone. Nothing was sent yet, so the statement
 * starts over against the new schema (a dropped table then gets the usual
 * error); after SEL_MAX_RESTARTS the read fails instead. */
#define SEL_MAX_RESTARTS 3

static void select_restart(sel_read *rd)
{
    exec_ctx *c = rd->run.c;
    const prs_select *s = rd->stmt;
    int n = rd->restarts + 1;
    /* not rd->run.t's name: the DDL may have freed it */
    sib_log(rd->ex->log, SIB_DEBUG, "cql: a schema change during a read: the SELECT starts over (%d)", n);
    exec_prepared *prep = rd->prep; /* s is in it: held across */
    if (prep) exec_prepared_hold(prep);
    select_user_free(rd);
    sib_err err;
    sib_err_clear(&err);
    const sch_table *t;
    int rc = exec_resolve_table(c, &s->table, &t, &err);
    if (rc) exec_reply_err(c, &err);
    else select_user_start(c, t, s, n, prep);
    if (prep) exec_prepared_release(prep);
}

/* Replies (the rows, or err when rc < 0) and frees the read. */
static void select_user_done(sel_read *rd, int rc, sib_err *err)
{
    sel_run *run = &rd->run;
    exec_ctx *c = run->c;
    if (!rc) {
        if (rd->scan) trace_read(rd); /* rows0/tomb0 are 0: the whole scan */
        sib_buf ps = {0}; /* empty: most replies carry no paging state */
        int64_t limit = run->post_order ? rd->limit : -1;
        if (run->more) ps_encode_partitions(run, &ps);
        if (run->salt_merge) limit = exec_salt_merge_finish(run, rd->r.npks ? &rd->r.pks[0] : NULL, &ps);
        if (ps.oom) rc = oom(err);
        else if (limit != -2) reply_rows(run, &ps, limit);
        else rc = oom(err);
        if (ps.p) sib_buf_free(&ps);
        if (!rc) exec_note_table_op(rd->ex, rd->table_id, false, rd->start_us); /* c is gone */
    }
    if (rc == SIB_ECORRUPT || rc == SIB_EIO) {
        /* A damaged or unreadable SSTable: the replica failed the read, as
         * Cassandra reports it (ReadFailure), with the file named in the
         * message. */
        err->code = SIB_EREADFAIL;
        err->ex[0] = c->consistency;
        err->ex[1] = 0;
        err->ex[2] = 1;
        err->ex[3] = 1;
    }
    if (rc == SIB_ETIMEDOUT) {
        /* The coordinator's counts (coord_read). */
        cql_error_extra x = {.consistency = (uint16_t)err->ex[0], .received = (int32_t)err->ex[1],
                             .blockfor = (int32_t)err->ex[2], .data_present = err->ex[3] != 0};
        if (c->ex->obs.error) c->ex->obs.error(c->ex->obs.ctx, CQL_ERR_READ_TIMEOUT);
        cql_reply_error(c->req, CQL_ERR_READ_TIMEOUT, err->msg, &x);
    } else if (rc) {
        exec_reply_err(c, err);
    }
    select_user_free(rd);
}

/* A piece came back from the read pool, or from the replicas (pg NULL,
 * prc/perr: how that ended). */
static void piece_back(sel_read *rd, st_rpage *pg, int prc, const sib_err *perr)
{
    sib_err err;
    sib_err_clear(&err);
    int rc;
    if (rd->ex->ddl_gen != rd->ddl_gen && rd->restarts < SEL_MAX_RESTARTS &&
        !cql_request_orphaned(rd->run.c->req)) {
        st_rpage_destroy(pg);
        select_restart(rd);
        return;
    }
    if (rd->ex->ddl_gen != rd->ddl_gen) {
        rc = sib_err_set(&err, SIB_EREADFAIL, "The schema kept changing while the query was reading; retry it");
        err.ex[0] = rd->run.c->consistency;
        err.ex[1] = 0;
        err.ex[2] = 1;
        err.ex[3] = 1;
    } else if (cql_request_orphaned(rd->run.c->req)) {
        rc = sib_err_set(&err, SIB_ESERVER, "the connection closed during the read"); /* dropped with it */
    } else if (rd->sel_lost) {
        rc = oom(&err);
    } else if (prc) {
        err = *perr;
        rc = prc;
    } else {
        rc = take_page(rd, pg, &err);
        if (!rc) rc = read_more(rd, &err);
    }
    if (pg) st_rpage_destroy(pg);
    if (rc != 1) select_user_done(rd, rc, &err);
}

static void on_page(void *ctx, st_rpage *pg) { piece_back(ctx, pg, 0, NULL); }

/* The replicas answered a piece: their reconciled state is read as the
 * piece (the same request, rebuilt: next_piece depends only on the read's
 * state, unchanged meanwhile). res: a scan piece (remote_scan_piece) and
 * where it ends; NULL: a partition piece (remote_piece). */
static void merged_back(sel_read *rd, int rc, const sib_err *err, st_merge *mg, const coord_range_result *res)
{
    sib_err e;
    sib_err_clear(&e);
    st_rpage *pg = NULL;
    if (!rc) {
        st_rreq rq;
        st_position pos;
        size_t nsl = 1;
        if (!next_piece(rd, &rq, &pos, &nsl) || (rq.pk == NULL) != (res != NULL)) {
            rc = sib_err_set(&e, SIB_ESERVER, "read: lost its piece");
        } else {
            if (res) { /* the merge holds nothing past the piece's end */
                rq.has_end = true;
                rq.end_token = res->through_token;
            }
            rc = st_merge_read(mg, rd->table_id, &rq, &pg, &e);
        }
        if (res) {
            set_range_end(rd, res);
            if (!rc && rd->range_pk.oom) rc = oom(&e);
        }
        err = &e;
    }
    piece_back(rd, pg, rc, err);
}

static void on_replicas(void *ctx, int rc, const sib_err *err, st_merge *mg) { merged_back(ctx, rc, err, mg, NULL); }

static void on_range(void *ctx, int rc, const sib_err *err, st_merge *mg, const coord_range_result *res)
{
    merged_back(ctx, rc, err, mg, res);
}

/* A SELECT on a user table: its state lives on the heap until the reply. */
/* prep: the prepared statement s belongs to (NULL: none), held until the
 * read ends. */
static void select_user_start(exec_ctx *c, const sch_table *t, const prs_select *s, int restarts,
                              exec_prepared *prep)
{
    sib_err err;
    sib_err_clear(&err);
    sel_read *rd = read_new(c->ex);
    if (!rd) {
        oom(&err);
        exec_reply_err(c, &err);
        return;
    }
    rd->ex = c->ex;
    rd->prep = prep;
    if (prep) exec_prepared_hold(prep);
    rd->start_us = c->now_us;
    rd->ddl_gen = c->ex->ddl_gen;
    rd->stmt = s;
    rd->restarts = restarts;
    memcpy(rd->table_id, sch_table_id(t), 16);
    int rc = run_init(&rd->run, c, t, s, &err);
    if (!rc) rc = select_user(rd, &err);
    if (rc == 1) { /* on the read pool or the replicas: on_page / merged_back go on */
        if (sel_detach(&rd->run, &err)) rd->sel_lost = true; /* the answer fails then */
        return;
    }
    select_user_done(rd, rc, &err);
}

/* ---- entry point ----------------------------------------------------------------- */

/* Applies fn (free, or keep for the next run) to each of run's buffers
 * (inline: the kept read's fn is buf_keep, a test and two stores). */
static inline void run_each_buf(sel_run *run, void (*fn)(sib_buf *))
{
    fn(&run->out);
    fn(&run->offs);
    fn(&run->last_pk);
    fn(&run->last_ck);
    fn(&run->coll);
    fn(&run->text);
    for (size_t i = 0; run->ckv && i < run->ckv_cap; i++) fn(&run->ckv[i]);
}

static void run_free(sel_run *run)
{
    run_each_buf(run, sib_buf_free);
    free(run->ckv);
    run->ckv = NULL;
    run->ckv_cap = 0;
    group_free(run);
}

/* Ends a run but keeps its buffers' memory for the next (run_init). */
static void run_keep(sel_run *run)
{
    run_each_buf(run, buf_keep);
    if (run->grp) group_free(run);
}

/* ---- a prepared SELECT's compiled selection ---------------------------------
 *
 * Plain column selectors compile to SN_COLUMN nodes, which nothing writes
 * while a statement runs (constants, slices and element keys are evaluated
 * into their nodes per execution: those selections are compiled every
 * time). So the prepared statement keeps such a selection with its plan
 * (the table it resolved, valid while ddl_gen is unchanged), in one block
 * whose size PREPARE already counted in the cache weight. */

#define SEL_PLAN_MAX_COLS 64

static size_t plan_room(size_t n)
{
    return sizeof(sel_list) + n * (sizeof(sel_node *) + sizeof(const char *) + sizeof(const sch_type *) +
                                   sizeof(sel_node));
}

size_t exec_select_plan_room(const prs_stmt *st)
{
    if (st->kind != PRS_STMT_SELECT) return 0;
    const prs_select *s = &st->select;
    if (s->star || s->json || !s->nsel || s->nsel > SEL_PLAN_MAX_COLS) return 0;
    for (size_t i = 0; i < s->nsel; i++)
        if (s->sel[i].kind != PRS_SEL_COLUMN) return 0;
    return plan_room(s->nsel);
}

/* A copy of l (plain columns, n of them) in one block of room bytes. */
static sel_list *sel_plan_copy(const sel_list *l, size_t room)
{
    size_t n = l->n;
    if (room < plan_room(n)) return NULL;
    sel_list *k = malloc(room);
    if (!k) return NULL;
    *k = *l;
    k->nodes = (sel_node **)(k + 1);
    k->names = (const char **)(k->nodes + n);
    k->types = (const sch_type **)(k->names + n);
    sel_node *nodes = (sel_node *)(k->types + n);
    for (size_t i = 0; i < n; i++) {
        nodes[i] = *l->nodes[i];
        k->nodes[i] = &nodes[i];
        k->names[i] = l->names[i];
        k->types[i] = l->types[i];
    }
    return k;
}

/* A read that goes on in a later callback takes its own copy of a kept
 * selection (in the request's arena): the prepared statement may be evicted
 * meanwhile. */
static int sel_detach(sel_run *run, sib_err *err)
{
    if (!run->sel_kept) return 0;
    sel_list *l = &run->sel;
    size_t n = l->n;
    sib_arena *a = run->c->arena;
    sel_node **nodes = sib_arena_alloc(a, sizeof *nodes * (n + 1));
    sel_node *nv = sib_arena_alloc(a, sizeof *nv * (n + 1));
    const char **names = sib_arena_memdup(a, l->names, sizeof *names * (n + 1));
    const sch_type **types = sib_arena_memdup(a, l->types, sizeof *types * (n + 1));
    if (!nodes || !nv || !names || !types) return oom(err);
    for (size_t i = 0; i < n; i++) {
        nv[i] = *l->nodes[i];
        nodes[i] = &nv[i];
    }
    l->nodes = nodes;
    l->names = names;
    l->types = types;
    run->sel_kept = false;
    return 0;
}

/* run->sel for t and s: the running prepared statement's kept one, or
 * compiled (and kept when it may be). */
static int run_selection(sel_run *run, exec_ctx *c, const sch_table *t, const prs_select *s, sib_err *err)
{
    exec_prepared *p = c->ex->cur_prep;
    bool plan = p && p->stmt->kind == PRS_STMT_SELECT && &p->stmt->select == s && p->plan_table == t &&
                p->plan_gen == c->ex->ddl_gen;
    if (plan && p->plan_sel) {
        run->sel = *p->plan_sel;
        run->sel_kept = true;
        return 0;
    }
    int rc = compile_selection(c, t, s, &run->sel, err);
    if (rc || !plan || !p->sel_room || run->sel.n != s->nsel || run->sel.aggregate) return rc;
    for (size_t i = 0; i < run->sel.n; i++)
        if (run->sel.nodes[i]->kind != SN_COLUMN) return 0;
    p->plan_sel = sel_plan_copy(&run->sel, p->sel_room); /* NULL (no memory): compiled each time */
    return 0;
}

/* run: zeroed, or kept by run_keep (its empty buffers are reused). */
static int run_init(sel_run *run, exec_ctx *c, const sch_table *t, const prs_select *s, sib_err *err)
{
    memset(run, 0, offsetof(sel_run, out)); /* the kept buffers are last */
    run->ps.limit_left = run->ps.ppl_left = -1; /* no paging state (ps_decode) */
    run->c = c;
    run->t = t;
    run->s = s;
    run->distinct = s->distinct;
    run->ppl = run->ppl_left = run->limit_left = -1;
    run->page_size = c->params ? c->params->page_size : -1;
    size_t nck = sch_table_clustering_count(t), npk = sch_table_pk_count(t);
    if (nck >= run->ckv_cap) {
        /* malloc, not the arena: run_free runs after the reply freed the arena. */
        for (size_t i = 0; run->ckv && i < run->ckv_cap; i++) sib_buf_free(&run->ckv[i]);
        free(run->ckv);
        run->ckv_cap = 0;
        run->ckv = calloc(nck + 1, sizeof(*run->ckv)); /* zeroed: empty buffers */
        if (run->ckv) run->ckv_cap = nck + 1;
    }
    run->pkv = npk < SIB_ARRAY_LEN(run->pkv_room) ? run->pkv_room
                                                  : sib_arena_alloc(c->arena, sizeof(*run->pkv) * (npk + 1));
    if (!run->ckv || !run->pkv) return oom(err);
    run->nck = nck;
    int rc = run_selection(run, c, t, s, err);
    if (rc) return rc;
    /* a kept selection is plain columns: no constant to evaluate */
    for (size_t i = 0; !run->sel_kept && i < run->sel.n; i++)
        if ((rc = prepare_consts(c, run->sel.nodes[i], err))) return rc;
    if ((run->sel.aggregate || s->ngroup) && (rc = group_init(run, err))) return rc;
    if (run->sel.aggregate && !s->ngroup) run->page_size = -1; /* one row: read everything for it */
    return 0;
}

void exec_select(exec_ctx *c, const prs_select *s)
{
    sib_err err;
    sib_err_clear(&err);
    const sch_table *t;
    int rc = exec_resolve_table(c, &s->table, &t, &err);
    if (rc) {
        exec_reply_err(c, &err);
        return;
    }
    if (sch_table_kind_of(t) == SCH_TABLE_USER) {
        exec_prepared *p = c->ex->cur_prep;
        select_user_start(c, t, s, 0, p && p->stmt->kind == PRS_STMT_SELECT && &p->stmt->select == s ? p : NULL);
        return;
    }
    sel_run run;
    memset(&run, 0, sizeof run); /* run_init takes empty buffers */
    rc = run_init(&run, c, t, s, &err);
    if (!rc) rc = select_system(&run, &err);
    run_free(&run);
    if (rc) exec_reply_err(c, &err);
}
