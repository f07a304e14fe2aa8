/* exec_where.c: WHERE clause analysis shared by SELECT, UPDATE and DELETE.
 *
 * Relations are first gathered per column (EQ, IN, lower/upper bounds),
 * with Cassandra's messages for contradictory combinations. Then:
 *   partition key  every column EQ/IN -> the cartesian product of values,
 *                  each encoded as storage's partition key bytes;
 *   clustering     the EQ/IN prefix (cartesian product of encoded
 *                  components) plus at most one range on the next column
 *                  become slices in storage (byte-comparable) order. A range
 *                  on a DESC column swaps ends, since its encoding is
 *                  inverted;
 *   the rest       (regular columns, clustering columns after a gap or a
 *                  range, partial partition keys) become filters, which only
 *                  SELECT ... ALLOW FILTERING accepts.
 * Storage bounds are prefixes: an inclusive start/end covers every key with
 * that prefix, an exclusive one none of them (storage.h).
 */
#include "exec_int.h"

#include <stdlib.h>

#define MAX_CARTESIAN 1000

typedef struct col_restr {
    const sib_column *col;
    bool eq;          /* EQ, or IN when in != NULL */
    sib_val *vals;    /* EQ: 1 value; IN: nvals */
    size_t nvals;
    bool is_in;
    bool lo, lo_incl, hi, hi_incl;
    sib_val lov, hiv;
} col_restr;

static const char FILTERING_MSG[] =
    "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. "
    "If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING";

static const char *kind_word(exec_where_kind k)
{
    return k == EXEC_WHERE_UPDATE ? "UPDATE" : k == EXEC_WHERE_DELETE ? "DELETE" : "SELECT";
}

static bool restricted(const col_restr *r) { return r->eq || r->lo || r->hi; }

static int need_value(const sib_column *col, const sib_val *v, bool unset, sib_err *err)
{
    if (unset) return sib_err_set(err, SIB_EINVAL, "Invalid unset value for column %s", col->name);
    if (v->len < 0) return sib_err_set(err, SIB_EINVAL, "Invalid null value in condition for column %s", col->name);
    return 0;
}

/* IN (a, b) or IN ? (a list value). */
static int gather_in(exec_ctx *c, const cql_relation *r, col_restr *cr, sib_err *err)
{
    const sib_column *col = cr->col;
    if (r->value) { /* IN ? */
        const sib_type *lt = sib_type_list(sib_catalog_types(c->ex->cat), col->type, false);
        char name[300];
        snprintf(name, sizeof name, "in(%s)", col->name);
        sib_val list;
        bool unset;
        int rc = exec_term_value(c, r->value, lt, name, &list, &unset, err);
        if (rc) return rc;
        if (unset || list.len < 0) return sib_err_set(err, SIB_EINVAL, "Invalid null value for IN restriction on %s", col->name);
        sib_coll_iter it;
        int n = sib_coll_iter_init(&it, lt, list.p, (size_t)list.len);
        if (n < 0) return sib_err_set(err, SIB_EINVAL, "Invalid list value for IN restriction on %s", col->name);
        cr->vals = sib_arena_alloc(c->arena, sizeof *cr->vals * ((size_t)n + 1));
        if (!cr->vals) return sib_err_set(err, SIB_ENOMEM, "IN values");
        sib_val k, v;
        while (sib_coll_next(&it, &k, &v)) {
            if (k.len < 0) return sib_err_set(err, SIB_EINVAL, "Invalid null value in condition for column %s", col->name);
            cr->vals[cr->nvals++] = k;
        }
        return 0;
    }
    cr->vals = sib_arena_alloc(c->arena, sizeof *cr->vals * (r->nin + 1));
    if (!cr->vals) return sib_err_set(err, SIB_ENOMEM, "IN values");
    for (size_t i = 0; i < r->nin; i++) {
        bool unset;
        int rc = exec_term_value(c, r->in[i], col->type, col->name, &cr->vals[cr->nvals], &unset, err);
        if (rc || (rc = need_value(col, &cr->vals[cr->nvals], unset, err))) return rc;
        cr->nvals++;
    }
    return 0;
}

static int gather_single(exec_ctx *c, const cql_relation *r, cql_op op, const cql_term *value, col_restr *cr,
                         sib_err *err)
{
    const char *name = cr->col->name;
    if (op == CQL_OP_EQ || op == CQL_OP_IN) {
        if (cr->eq)
            return sib_err_set(err, SIB_EINVAL, "%s cannot be restricted by more than one relation if it includes %s", name,
                               cr->is_in ? "a IN" : "an Equal");
        if (cr->lo || cr->hi)
            return sib_err_set(err, SIB_EINVAL, "Column \"%s\" cannot be restricted by both an equality and an inequality relation",
                               name);
        cr->eq = true;
        if (op == CQL_OP_IN) { cr->is_in = true; return gather_in(c, r, cr, err); }
        cr->vals = sib_arena_alloc(c->arena, sizeof *cr->vals);
        if (!cr->vals) return sib_err_set(err, SIB_ENOMEM, "value");
        bool unset;
        int rc = exec_term_value(c, value, cr->col->type, name, &cr->vals[0], &unset, err);
        if (rc || (rc = need_value(cr->col, &cr->vals[0], unset, err))) return rc;
        cr->nvals = 1;
        return 0;
    }
    if (cr->eq)
        return sib_err_set(err, SIB_EINVAL, "Column \"%s\" cannot be restricted by both an equality and an inequality relation",
                           name);
    bool lower = op == CQL_OP_GT || op == CQL_OP_GTE;
    if (lower ? cr->lo : cr->hi)
        return sib_err_set(err, SIB_EINVAL, "More than one restriction was found for the %s bound on %s",
                           lower ? "start" : "end", name);
    sib_val v;
    bool unset;
    int rc = exec_term_value(c, value, cr->col->type, name, &v, &unset, err);
    if (rc || (rc = need_value(cr->col, &v, unset, err))) return rc;
    if (lower) { cr->lo = true; cr->lo_incl = op == CQL_OP_GTE; cr->lov = v; }
    else { cr->hi = true; cr->hi_incl = op == CQL_OP_LTE; cr->hiv = v; }
    return 0;
}

static int gather_token(exec_ctx *c, const sib_table *t, const cql_relation *r, exec_where_kind kind,
                        exec_restr *out, sib_err *err)
{
    if (kind != EXEC_WHERE_SELECT)
        return sib_err_set(err, SIB_EINVAL, "The token function cannot be used in WHERE clauses for %s statements",
                           kind_word(kind));
    size_t npk = sib_table_pk_count(t);
    if (r->ncols != npk)
        return sib_err_set(err, SIB_EINVAL, "The token() function must be applied to all partition key components or none of them");
    for (size_t i = 0; i < npk; i++)
        if (strcmp(r->cols[i], sib_table_pk(t, i)->name))
            return sib_err_set(err, SIB_EINVAL, "The token function arguments must be in the partition key order: %s",
                               sib_table_pk(t, 0)->name);
    sib_val v;
    bool unset;
    int rc = exec_term_value(c, r->value, sib_type_native(SIB_T_BIGINT), "partition key token", &v, &unset, err);
    if (rc) return rc;
    if (unset || v.len != 8) return sib_err_set(err, SIB_EINVAL, "Invalid null value for partition key token");
    int64_t tok = (int64_t)get_be64(v.p);
    if (!out->token_restricted) {
        out->token_restricted = true;
        out->token_start = INT64_MIN;
        out->token_start_incl = true;
        out->token_end = INT64_MAX;
        out->token_end_incl = true;
    }
    switch (r->op) {
    case CQL_OP_EQ: out->token_start = out->token_end = tok; out->token_start_incl = out->token_end_incl = true; break;
    case CQL_OP_GT: out->token_start = tok; out->token_start_incl = false; break;
    case CQL_OP_GTE: out->token_start = tok; out->token_start_incl = true; break;
    case CQL_OP_LT: out->token_end = tok; out->token_end_incl = false; break;
    case CQL_OP_LTE: out->token_end = tok; out->token_end_incl = true; break;
    default: return sib_err_set(err, SIB_EINVAL, "Unsupported operator on token()");
    }
    return 0;
}

static int gather(exec_ctx *c, const sib_table *t, const cql_relation *r, exec_where_kind kind, col_restr *crs,
                  exec_restr *out, sib_err *err)
{
    if (r->kind == CQL_REL_TOKEN) return gather_token(c, t, r, kind, out, err);
    if (r->kind == CQL_REL_MULTI) {
        if (r->op != CQL_OP_EQ || !r->value || r->value->kind != CQL_TERM_TUPLE || r->value->coll.n != r->ncols)
            return sib_err_set(err, SIB_EINVAL, "Multi-column relations other than (c1, c2) = (v1, v2) are not supported");
        for (size_t i = 0; i < r->ncols; i++) {
            const sib_column *col = sib_table_column_by_name(t, r->cols[i]);
            if (!col) return sib_err_set(err, SIB_EINVAL, "Undefined column name %s", r->cols[i]);
            if (col->kind != SIB_COL_CLUSTERING)
                return sib_err_set(err, SIB_EINVAL, "Multi-column relations can only be applied to clustering columns but was applied to: %s",
                                   col->name);
            int rc = gather_single(c, r, CQL_OP_EQ, r->value->coll.items[i], &crs[col->index], err);
            if (rc) return rc;
        }
        return 0;
    }
    const sib_column *col = sib_table_column_by_name(t, r->cols[0]);
    if (!col) return sib_err_set(err, SIB_EINVAL, "Undefined column name %s", r->cols[0]);
    switch (r->op) {
    case CQL_OP_NEQ:
        return sib_err_set(err, SIB_EINVAL, "Unsupported \"!=\" relation: %s != <value>", col->name);
    case CQL_OP_IS_NOT_NULL:
        return sib_err_set(err, SIB_EINVAL, "Unsupported restriction: %s IS NOT NULL", col->name);
    case CQL_OP_CONTAINS:
    case CQL_OP_CONTAINS_KEY:
        if (!sib_type_is_collection(col->type))
            return sib_err_set(err, SIB_EINVAL, "Cannot use %s on non-collection column %s",
                               r->op == CQL_OP_CONTAINS ? "CONTAINS" : "CONTAINS KEY", col->name);
        return sib_err_set(err, SIB_EINVAL, "CONTAINS restrictions on collection column %s are not supported", col->name);
    default:
        break;
    }
    if (kind != EXEC_WHERE_SELECT && col->kind != SIB_COL_PARTITION_KEY && col->kind != SIB_COL_CLUSTERING)
        return sib_err_set(err, SIB_EINVAL, "Non PRIMARY KEY columns found in where clause: %s ", col->name);
    if (kind != EXEC_WHERE_SELECT && col->kind == SIB_COL_PARTITION_KEY && r->op != CQL_OP_EQ && r->op != CQL_OP_IN)
        return sib_err_set(err, SIB_EINVAL,
                           "Only EQ and IN relation are supported on the partition key (unless you use the token() function) for %s statements",
                           kind_word(kind));
    return gather_single(c, r, r->op, r->value, &crs[col->index], err);
}

/* ---- partition keys ---- */

static int add_filter(exec_ctx *c, exec_restr *out, const col_restr *cr, size_t cap, sib_err *err)
{
    if (!out->filters) {
        out->filters = sib_arena_alloc(c->arena, sizeof *out->filters * cap * 2 + 1);
        if (!out->filters) return sib_err_set(err, SIB_ENOMEM, "filters");
    }
    if (cr->eq) {
        exec_filter *f = &out->filters[out->nfilters++];
        *f = (exec_filter){.col = cr->col, .op = cr->is_in ? CQL_OP_IN : CQL_OP_EQ};
        if (cr->is_in) { f->in = cr->vals; f->nin = cr->nvals; } else f->val = cr->vals[0];
    }
    if (cr->lo)
        out->filters[out->nfilters++] = (exec_filter){.col = cr->col, .op = cr->lo_incl ? CQL_OP_GTE : CQL_OP_GT, .val = cr->lov};
    if (cr->hi)
        out->filters[out->nfilters++] = (exec_filter){.col = cr->col, .op = cr->hi_incl ? CQL_OP_LTE : CQL_OP_LT, .val = cr->hiv};
    return 0;
}

static int build_pks(exec_ctx *c, const sib_table *t, col_restr *crs, exec_restr *out, sib_err *err)
{
    size_t npk = sib_table_pk_count(t), total = 1;
    for (size_t i = 0; i < npk; i++) {
        total *= crs[sib_table_pk(t, i)->index].nvals;
        if (total > MAX_CARTESIAN)
            return sib_err_set(err, SIB_EINVAL, "IN restrictions on the partition key would select more than %d partitions",
                               MAX_CARTESIAN);
    }
    out->pks = sib_arena_alloc(c->arena, sizeof *out->pks * (total + 1));
    if (!out->pks) return sib_err_set(err, SIB_ENOMEM, "partition keys");
    const uint8_t *vals[64];
    size_t lens[64];
    if (npk > SIB_ARRAY_LEN(vals)) return sib_err_set(err, SIB_EINVAL, "too many partition key columns");
    sib_buf b;
    sib_buf_init(&b);
    for (size_t k = 0; k < total; k++) {
        size_t rem = k;
        for (size_t i = npk; i-- > 0;) { /* last column varies fastest */
            const col_restr *cr = &crs[sib_table_pk(t, i)->index];
            const sib_val *v = &cr->vals[rem % cr->nvals];
            rem /= cr->nvals;
            vals[i] = v->p;
            lens[i] = (size_t)v->len;
        }
        sib_buf_reset(&b);
        int rc = sib_pk_encode(t, vals, lens, npk, &b, err);
        if (rc) { sib_buf_free(&b); return rc; }
        bool dup = false;
        for (size_t j = 0; j < out->npks && !dup; j++)
            dup = (size_t)out->pks[j].len == b.len && !memcmp(out->pks[j].p, b.p, b.len);
        if (dup) continue;
        uint8_t *p = sib_arena_memdup(c->arena, b.p, b.len);
        if (!p) { sib_buf_free(&b); return sib_err_set(err, SIB_ENOMEM, "partition key"); }
        out->pks[out->npks++] = (sib_val){p, (int32_t)b.len};
    }
    sib_buf_free(&b);
    return 0;
}

static void missing_list(const sib_table *t, const col_restr *crs, bool pk, char *out, size_t cap)
{
    size_t n = pk ? sib_table_pk_count(t) : sib_table_clustering_count(t), o = 0;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const sib_column *col = pk ? sib_table_pk(t, i) : sib_table_clustering(t, i);
        if (crs[col->index].eq) continue;
        int w = snprintf(out + o, cap - o, "%s%s", o ? ", " : "", col->name);
        if (w < 0 || (size_t)w >= cap - o) break;
        o += (size_t)w;
    }
}

/* ---- clustering ---- */

static int slice_cmp(const void *a, const void *b)
{
    const st_slice *x = a, *y = b;
    size_t n = x->start.len < y->start.len ? x->start.len : y->start.len;
    int c = memcmp(x->start.key, y->start.key, n);
    return c ? c : (x->start.len > y->start.len) - (x->start.len < y->start.len);
}

/* Encodes prefix + one component into the arena. */
static int prefix_plus(exec_ctx *c, const sib_val *prefix, const sib_column *col, const sib_val *v, sib_val *out,
                       sib_err *err)
{
    sib_buf b;
    sib_buf_init(&b);
    sib_buf_append(&b, prefix->p, (size_t)prefix->len);
    int rc = sib_ck_encode_component(col->type, col->order == SIB_ORDER_DESC, v->p, (size_t)v->len, &b, err);
    if (rc) { sib_buf_free(&b); return rc; }
    if (b.oom) { sib_buf_free(&b); return sib_err_set(err, SIB_ENOMEM, "clustering key"); }
    uint8_t *p = sib_arena_memdup(c->arena, b.p, b.len);
    out->p = p;
    out->len = (int32_t)b.len;
    sib_buf_free(&b);
    return p ? 0 : sib_err_set(err, SIB_ENOMEM, "clustering key");
}

static int build_prefixes(exec_ctx *c, const sib_table *t, col_restr *crs, size_t neq, sib_val **out, size_t *nout,
                          sib_err *err)
{
    size_t total = 1;
    for (size_t i = 0; i < neq; i++) {
        total *= crs[sib_table_clustering(t, i)->index].nvals;
        if (total > MAX_CARTESIAN)
            return sib_err_set(err, SIB_EINVAL, "IN restrictions on clustering columns would select more than %d rows",
                               MAX_CARTESIAN);
    }
    sib_val *cur = sib_arena_alloc(c->arena, sizeof *cur * (total + 1));
    if (!cur) return sib_err_set(err, SIB_ENOMEM, "clustering keys");
    cur[0] = (sib_val){(const uint8_t *)"", 0};
    size_t n = 1;
    for (size_t i = 0; i < neq; i++) {
        const col_restr *cr = &crs[sib_table_clustering(t, i)->index];
        sib_val *next = sib_arena_alloc(c->arena, sizeof *next * (n * cr->nvals + 1));
        if (!next) return sib_err_set(err, SIB_ENOMEM, "clustering keys");
        size_t m = 0;
        for (size_t j = 0; j < n; j++) {
            for (size_t k = 0; k < cr->nvals; k++) {
                int rc = prefix_plus(c, &cur[j], cr->col, &cr->vals[k], &next[m], err);
                if (rc) return rc;
                bool dup = false;
                for (size_t d = 0; d < m && !dup; d++)
                    dup = next[d].len == next[m].len && !memcmp(next[d].p, next[m].p, (size_t)next[m].len);
                if (!dup) m++;
            }
        }
        cur = next;
        n = m;
    }
    *out = cur;
    *nout = n;
    return 0;
}

static int build_slices(exec_ctx *c, const sib_table *t, col_restr *crs, size_t neq, const col_restr *range,
                        exec_restr *out, sib_err *err)
{
    sib_val *pre = NULL;
    size_t npre = 0;
    int rc = build_prefixes(c, t, crs, neq, &pre, &npre, err);
    if (rc) return rc;
    if (neq == sib_table_clustering_count(t)) { out->cks = pre; out->ncks = npre; }
    if (neq == 0 && !range) return 0; /* whole partition */
    out->slices = sib_arena_alloc(c->arena, sizeof *out->slices * npre);
    if (!out->slices) return sib_err_set(err, SIB_ENOMEM, "slices");
    for (size_t j = 0; j < npre; j++) {
        st_slice *s = &out->slices[out->nslices++];
        st_bound whole = {.key = pre[j].p, .len = (size_t)pre[j].len, .incl = true, .unbounded = pre[j].len == 0};
        s->start = s->end = whole;
        if (!range) continue;
        bool desc = range->col->order == SIB_ORDER_DESC;
        sib_val lo, hi;
        if (range->lo && (rc = prefix_plus(c, &pre[j], range->col, &range->lov, &lo, err))) return rc;
        if (range->hi && (rc = prefix_plus(c, &pre[j], range->col, &range->hiv, &hi, err))) return rc;
        /* A DESC column's encoding is inverted: its lower value bound is the
         * storage end and its upper bound the storage start. */
        bool has_start = desc ? range->hi : range->lo, has_end = desc ? range->lo : range->hi;
        if (has_start) {
            const sib_val *v = desc ? &hi : &lo;
            s->start = (st_bound){.key = v->p, .len = (size_t)v->len, .incl = desc ? range->hi_incl : range->lo_incl};
        }
        if (has_end) {
            const sib_val *v = desc ? &lo : &hi;
            s->end = (st_bound){.key = v->p, .len = (size_t)v->len, .incl = desc ? range->lo_incl : range->hi_incl};
        }
    }
    qsort(out->slices, out->nslices, sizeof *out->slices, slice_cmp);
    return 0;
}

static int analyze_clustering(exec_ctx *c, const sib_table *t, col_restr *crs, exec_where_kind kind,
                              bool allow_filtering, exec_restr *out, sib_err *err)
{
    size_t nck = sib_table_clustering_count(t), i = 0;
    while (i < nck && crs[sib_table_clustering(t, i)->index].eq) i++;
    out->ck_eq_prefix = i;
    const col_restr *range = NULL;
    if (i < nck && restricted(&crs[sib_table_clustering(t, i)->index])) range = &crs[sib_table_clustering(t, i++)->index];
    out->ck_has_slice = range != NULL;
    for (size_t k = 0; k < out->ck_eq_prefix; k++) out->ck_has_in |= crs[sib_table_clustering(t, k)->index].is_in;
    /* Columns past the prefix/range: only filtering can serve them. */
    for (size_t k = i; k < nck; k++) {
        const col_restr *cr = &crs[sib_table_clustering(t, k)->index];
        if (!restricted(cr)) continue;
        if (kind == EXEC_WHERE_SELECT && allow_filtering) {
            int rc = add_filter(c, out, cr, sib_table_column_count(t), err);
            if (rc) return rc;
            out->needs_filtering = true;
            continue;
        }
        if (range)
            return sib_err_set(err, SIB_EINVAL, "Clustering column \"%s\" cannot be restricted (preceding column \"%s\" is restricted by a non-EQ relation)",
                               cr->col->name, range->col->name);
        const sib_column *gap = sib_table_clustering(t, i);
        return sib_err_set(err, SIB_EINVAL, "PRIMARY KEY column \"%s\" cannot be restricted as preceding column \"%s\" is not restricted",
                           cr->col->name, gap->name);
    }
    if (kind == EXEC_WHERE_UPDATE && out->ck_eq_prefix < nck) {
        if (range)
            return sib_err_set(err, SIB_EINVAL, "Slice restrictions are not supported on the clustering columns in UPDATE statements");
        char miss[512];
        missing_list(t, crs, false, miss, sizeof miss);
        return sib_err_set(err, SIB_EINVAL, "Some clustering keys are missing: %s", miss);
    }
    return build_slices(c, t, crs, out->ck_eq_prefix, range, out, err);
}

int exec_analyze_where(exec_ctx *c, const sib_table *t, const cql_relation *rels, size_t n, exec_where_kind kind,
                       bool allow_filtering, exec_restr *out, sib_err *err)
{
    memset(out, 0, sizeof *out);
    size_t ncols = sib_table_column_count(t);
    col_restr *crs = sib_arena_alloc(c->arena, sizeof *crs * (ncols + 1));
    if (!crs) return sib_err_set(err, SIB_ENOMEM, "restrictions");
    memset(crs, 0, sizeof *crs * (ncols + 1));
    for (size_t i = 0; i < ncols; i++) crs[i].col = sib_table_column(t, i);
    for (size_t i = 0; i < n; i++) {
        int rc = gather(c, t, &rels[i], kind, crs, out, err);
        if (rc) return rc;
    }

    /* Partition key. */
    size_t npk = sib_table_pk_count(t), neq = 0, nres = 0;
    for (size_t i = 0; i < npk; i++) {
        const col_restr *cr = &crs[sib_table_pk(t, i)->index];
        neq += cr->eq;
        nres += restricted(cr);
    }
    if (neq == npk) {
        if (out->token_restricted)
            return sib_err_set(err, SIB_EINVAL, "Columns \"%s\" cannot be restricted by both a normal relation and a token relation",
                               sib_table_pk(t, 0)->name);
        out->pk_complete = true;
        int rc = build_pks(c, t, crs, out, err);
        if (rc) return rc;
    } else if (kind != EXEC_WHERE_SELECT) {
        char miss[512];
        missing_list(t, crs, true, miss, sizeof miss);
        return sib_err_set(err, SIB_EINVAL, "Some partition key parts are missing: %s", miss);
    } else if (nres) {
        if (!allow_filtering) return sib_err_set(err, SIB_EINVAL, "%s", FILTERING_MSG);
        for (size_t i = 0; i < npk; i++) {
            const col_restr *cr = &crs[sib_table_pk(t, i)->index];
            if (restricted(cr) && add_filter(c, out, cr, ncols, err)) return err->code;
        }
        out->needs_filtering = true;
    }

    int rc = analyze_clustering(c, t, crs, kind, allow_filtering, out, err);
    if (rc) return rc;
    if (kind == EXEC_WHERE_SELECT && !out->pk_complete && (out->ck_eq_prefix || out->ck_has_slice)) {
        if (!allow_filtering) return sib_err_set(err, SIB_EINVAL, "%s", FILTERING_MSG);
        out->needs_filtering = true;
    }

    /* Regular and static columns: SELECT filters only (DML rejected them in gather). */
    for (size_t i = 0; i < ncols; i++) {
        const col_restr *cr = &crs[i];
        if (!restricted(cr) || cr->col->kind == SIB_COL_PARTITION_KEY || cr->col->kind == SIB_COL_CLUSTERING) continue;
        if (!allow_filtering) return sib_err_set(err, SIB_EINVAL, "%s", FILTERING_MSG);
        if (cr->is_in) return sib_err_set(err, SIB_EINVAL, "IN predicates on non-primary-key columns (%s) is not yet supported", cr->col->name);
        if ((rc = add_filter(c, out, cr, ncols, err))) return rc;
        out->needs_filtering = true;
    }
    return 0;
}

bool exec_filter_match(const exec_filter *f, const uint8_t *v, int32_t len)
{
    if (len < 0) return false;
    if (f->op == CQL_OP_IN) {
        for (size_t i = 0; i < f->nin; i++)
            if (!sib_value_compare(f->col->type, v, (size_t)len, f->in[i].p, (size_t)f->in[i].len)) return true;
        return false;
    }
    int c = sib_value_compare(f->col->type, v, (size_t)len, f->val.p, (size_t)f->val.len);
    switch (f->op) {
    case CQL_OP_EQ: return c == 0;
    case CQL_OP_LT: return c < 0;
    case CQL_OP_LTE: return c <= 0;
    case CQL_OP_GT: return c > 0;
    case CQL_OP_GTE: return c >= 0;
    default: return false;
    }
}
