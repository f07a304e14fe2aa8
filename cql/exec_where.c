/* exec_where.c: WHERE clause analysis shared by SELECT, UPDATE and DELETE.
 *
 * Relations are first gathered per column (EQ, IN, lower/upper bounds),
 * with Cassandra's messages for contradictory combinations. Then:
 *   partition key  every column EQ/IN -> the cartesian product of values,
 *                  each encoded as storage's partition key bytes;
 *   clustering     single- and multi-column restrictions are merged and
 *                  turned into slices by exec_clustering.c;
 *   the rest       (regular columns, clustering columns after a gap or a
 *                  range, partial partition keys) become filters, which only
 *                  SELECT ... ALLOW FILTERING accepts.
 * Storage bounds are prefixes: an inclusive start/end covers every key with
 * that prefix, an exclusive one none of them (storage.h).
 */
#define _GNU_SOURCE
#include "exec_int.h"

#include <stdlib.h>

#define MAX_CARTESIAN 1000

typedef struct col_restr {
    const sch_column *col;
    bool eq;          /* EQ, or IN when in != NULL */
    sch_val *vals;    /* EQ: 1 value; IN: nvals */
    size_t nvals;
    bool is_in;
    bool lo, lo_incl, hi, hi_incl;
    sch_val lov, hiv;
} col_restr;

const char EXEC_FILTERING_MSG[] =
    "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. "
    "If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING";

static const char *kind_word(exec_where_kind k)
{
    return k == EXEC_WHERE_UPDATE ? "UPDATE" : k == EXEC_WHERE_DELETE ? "DELETE" : "SELECT";
}

static bool restricted(const col_restr *r) { return r->eq || r->lo || r->hi; }

static int need_value(const sch_column *col, const sch_val *v, bool unset, sib_err *err)
{
    if (unset) return sib_err_set(err, SIB_EINVAL, "Invalid unset value for column %s", col->name);
    if (v->len < 0) return sib_err_set(err, SIB_EINVAL, "Invalid null value in condition for column %s", col->name);
    return 0;
}

/* IN (a, b) or IN ? (a list value). */
static int gather_in(exec_ctx *c, const prs_relation *r, col_restr *cr, sib_err *err)
{
    const sch_column *col = cr->col;
    if (r->value) { /* IN ? */
        const sch_type *lt = sch_type_list(sch_catalog_types(c->ex->cat), col->type, false);
        char name[300];
        snprintf(name, sizeof name, "in(%s)", col->name);
        sch_val list;
        bool unset;
        int rc = exec_term_value(c, r->value, lt, name, &list, &unset, err);
        if (rc) return rc;
        if (unset) return sib_err_set(err, SIB_EINVAL, "Invalid unset value for column %s", col->name);
        if (list.len < 0) return sib_err_set(err, SIB_EINVAL, "Invalid null value for IN restriction on %s", col->name);
        sch_coll_iter it;
        int n = sch_coll_iter_init(&it, lt, list.p, (size_t)list.len);
        if (n < 0) return sib_err_set(err, SIB_EINVAL, "Invalid list value for IN restriction on %s", col->name);
        cr->vals = sib_arena_alloc(c->arena, sizeof *cr->vals * ((size_t)n + 1));
        if (!cr->vals) return sib_err_set(err, SIB_ENOMEM, "IN values");
        sch_val k, v;
        while (sch_coll_next(&it, &k, &v)) {
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

static int gather_single(exec_ctx *c, const prs_relation *r, prs_op op, const prs_term *value, col_restr *cr,
                         sib_err *err)
{
    const char *name = cr->col->name;
    if (op == PRS_OP_EQ || op == PRS_OP_IN) {
        if (cr->eq)
            return sib_err_set(err, SIB_EINVAL, "%s cannot be restricted by more than one relation if it includes %s", name,
                               cr->is_in ? "a IN" : "an Equal");
        if (cr->lo || cr->hi)
            return sib_err_set(err, SIB_EINVAL, "Column \"%s\" cannot be restricted by both an equality and an inequality relation",
                               name);
        cr->eq = true;
        if (op == PRS_OP_IN) { cr->is_in = true; return gather_in(c, r, cr, err); }
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
    bool lower = op == PRS_OP_GT || op == PRS_OP_GTE;
    if (lower ? cr->lo : cr->hi)
        return sib_err_set(err, SIB_EINVAL, "More than one restriction was found for the %s bound on %s",
                           lower ? "start" : "end", name);
    sch_val v;
    bool unset;
    int rc = exec_term_value(c, value, cr->col->type, name, &v, &unset, err);
    if (rc || (rc = need_value(cr->col, &v, unset, err))) return rc;
    if (lower) { cr->lo = true; cr->lo_incl = op == PRS_OP_GTE; cr->lov = v; }
    else { cr->hi = true; cr->hi_incl = op == PRS_OP_LTE; cr->hiv = v; }
    return 0;
}

/* The right-hand side of a token relation: a bigint, or token(v1, ...) of
 * partition key values (markers typed as the key columns). */
static int token_value(exec_ctx *c, const sch_table *t, const prs_term *term, int64_t *tok, sib_err *err)
{
    if (term->kind == PRS_TERM_FUNC && !strcmp(term->func.name, "token") && !term->func.ks) {
        size_t npk = sch_table_pk_count(t);
        if (term->func.nargs != npk)
            return sib_err_set(err, SIB_EINVAL, "Invalid number of arguments in call to function system.token: %zu required but %zu provided",
                               npk, term->func.nargs);
        const uint8_t *vals[64];
        size_t lens[64];
        if (npk > SIB_ARRAY_LEN(vals)) return sib_err_set(err, SIB_EINVAL, "too many partition key columns");
        for (size_t i = 0; i < npk; i++) {
            const sch_column *col = sch_table_pk(t, i);
            sch_val v;
            bool unset;
            int rc = exec_term_value(c, term->func.args[i], col->type, col->name, &v, &unset, err);
            if (rc || (rc = need_value(col, &v, unset, err))) return rc;
            vals[i] = v.p;
            lens[i] = (size_t)v.len;
        }
        sib_buf b;
        sib_buf_init(&b);
        int rc = sch_pk_encode(t, vals, lens, npk, &b, err);
        if (!rc) *tok = sib_murmur3_token(b.p, b.len);
        sib_buf_free(&b);
        return rc;
    }
    sch_val v;
    bool unset;
    int rc = exec_term_value(c, term, sch_type_native(SCH_T_BIGINT), "partition key token", &v, &unset, err);
    if (rc) return rc;
    if (unset || v.len != 8) return sib_err_set(err, SIB_EINVAL, "Invalid null value for partition key token");
    *tok = (int64_t)get_be64(v.p);
    return 0;
}

static int gather_token(exec_ctx *c, const sch_table *t, const prs_relation *r, exec_where_kind kind,
                        exec_restr *out, sib_err *err)
{
    if (kind != EXEC_WHERE_SELECT)
        return sib_err_set(err, SIB_EINVAL, "The token function cannot be used in WHERE clauses for %s statements",
                           kind_word(kind));
    size_t npk = sch_table_pk_count(t);
    for (size_t i = 0; i < npk; i++)
        if (sch_column_is_derived(t, sch_table_pk(t, i)))
            return sib_err_set(err, SIB_EINVAL,
                               "token() cannot be used on table %s.%s: its partition key column %s is derived from the rows (BUCKET / SALT)",
                               sch_table_keyspace(t), sch_table_name(t), sch_table_pk(t, i)->name);
    if (r->ncols != npk)
        return sib_err_set(err, SIB_EINVAL, "The token() function must be applied to all partition key components or none of them");
    for (size_t i = 0; i < npk; i++)
        if (strcmp(r->cols[i], sch_table_pk(t, i)->name))
            return sib_err_set(err, SIB_EINVAL, "The token function arguments must be in the partition key order: %s",
                               sch_table_pk(t, 0)->name);
    int64_t tok = 0; /* set by token_value when it returns 0; gcc -O2 cannot see it */
    int rc = token_value(c, t, r->value, &tok, err);
    if (rc) return rc;
    if (!out->token_restricted) {
        out->token_restricted = true;
        out->token_start = INT64_MIN;
        out->token_start_incl = true;
        out->token_end = INT64_MAX;
        out->token_end_incl = true;
    }
    switch (r->op) {
    case PRS_OP_EQ: out->token_start = out->token_end = tok; out->token_start_incl = out->token_end_incl = true; break;
    case PRS_OP_GT: out->token_start = tok; out->token_start_incl = false; break;
    case PRS_OP_GTE: out->token_start = tok; out->token_start_incl = true; break;
    case PRS_OP_LT: out->token_end = tok; out->token_end_incl = false; break;
    case PRS_OP_LTE: out->token_end = tok; out->token_end_incl = true; break;
    default: return sib_err_set(err, SIB_EINVAL, "Unsupported operator on token()");
    }
    return 0;
}

const sch_type *exec_coll_term_type(exec_ctx *c, const sch_column *col, bool want_key, const char **name)
{
    const sch_type *ct = col->type;
    bool map = ct->code == SCH_T_MAP;
    size_t n = strlen(col->name) + 8;
    char *nm = sib_arena_alloc(c->arena, n);
    if (nm) snprintf(nm, n, "%s(%s)", map && want_key ? "key" : "value", col->name);
    *name = nm ? nm : col->name;
    return map && !want_key ? ct->sub[1] : ct->sub[0];
}

/* One term of a collection restriction, never null nor unset. */
static int coll_term(exec_ctx *c, const sch_column *col, const prs_term *term, bool want_key, const char *null_msg,
                     sch_val *out, sib_err *err)
{
    const char *name;
    const sch_type *et = exec_coll_term_type(c, col, want_key, &name);
    bool unset;
    int rc = exec_term_value(c, term, et, name, out, &unset, err);
    if (rc) return rc;
    if (unset) return sib_err_set(err, SIB_EINVAL, "Invalid unset value for column %s", col->name);
    if (out->len < 0) return sib_err_set(err, SIB_EINVAL, null_msg, col->name);
    return 0;
}

/* col CONTAINS v, col CONTAINS KEY k, col[k] = v: checked with Cassandra's
 * messages, then a filter (SELECT ... ALLOW FILTERING only: Sibyl has no
 * secondary index to answer them). */
static int gather_coll(exec_ctx *c, const sch_column *col, const prs_relation *r, exec_where_kind kind,
                       exec_restr *out, sib_err *err)
{
    const sch_type *ct = col->type;
    if (r->key) {
        if (ct->code == SCH_T_LIST)
            return sib_err_set(err, SIB_EINVAL, "Indexes on list entries (%s[index] = value) are not currently supported.",
                               col->name);
        if (ct->code != SCH_T_MAP) return sib_err_set(err, SIB_EINVAL, "Column %s cannot be used as a map", col->name);
        if (!sch_type_is_multicell(ct))
            return sib_err_set(err, SIB_EINVAL, "Map-entry equality predicates on frozen map column %s are not supported",
                               col->name);
        if (r->op != PRS_OP_EQ) return sib_err_set(err, SIB_EINVAL, "Only EQ relations are supported on map entries");
    } else {
        if (!sch_type_is_collection(ct))
            return sib_err_set(err, SIB_EINVAL, "Cannot use %s on non-collection column %s",
                               r->op == PRS_OP_CONTAINS ? "CONTAINS" : "CONTAINS KEY", col->name);
        if (r->op == PRS_OP_CONTAINS_KEY && ct->code != SCH_T_MAP)
            return sib_err_set(err, SIB_EINVAL, "Cannot use CONTAINS KEY on non-map column %s", col->name);
    }
    if (kind != EXEC_WHERE_SELECT) {
        if (col->kind != SCH_COL_PARTITION_KEY && col->kind != SCH_COL_CLUSTERING)
            return sib_err_set(err, SIB_EINVAL, "Non PRIMARY KEY columns found in where clause: %s ", col->name);
        return sib_err_set(err, SIB_EINVAL, "CONTAINS restrictions on collection column %s are not supported", col->name);
    }
    exec_filter f = {.col = col, .op = r->op, .entry = r->key != NULL};
    int rc;
    if (r->key && (rc = coll_term(c, col, r->key, true, "Unsupported null map key for column %s", &f.key, err))) return rc;
    rc = coll_term(c, col, r->value, r->op == PRS_OP_CONTAINS_KEY, r->key ? "Unsupported null map value for column %s"
                                                                          : "Unsupported null value for column %s",
                   &f.val, err);
    if (rc) return rc;
    out->filters[out->nfilters++] = f;
    out->needs_filtering = true;
    out->coll_filters = true;
    return 0;
}

static int gather(exec_ctx *c, const sch_table *t, const prs_relation *r, exec_where_kind kind, bool check_order,
                  col_restr *crs, exec_ck *ck, exec_restr *out, sib_err *err)
{
    if (r->kind == PRS_REL_TOKEN) return gather_token(c, t, r, kind, out, err);
    if (r->kind == PRS_REL_MULTI) return exec_ck_add_multi(ck, r, check_order, err);
    const sch_column *col = sch_table_column_by_name(t, r->cols[0]);
    if (!col) return sib_err_set(err, SIB_EINVAL, "Undefined column name %s", r->cols[0]);
    switch (r->op) {
    case PRS_OP_NEQ: {
        sib_buf b;
        sib_buf_init(&b);
        if (r->value) exec_term_text(r->value, &b);
        int rc = sib_err_set(err, SIB_EINVAL, "Unsupported \"!=\" relation: %s != %.*s", col->name, (int)b.len,
                             b.p ? (const char *)b.p : "");
        sib_buf_free(&b);
        return rc;
    }
    case PRS_OP_IS_NOT_NULL:
        return sib_err_set(err, SIB_EINVAL, "Unsupported restriction: %s IS NOT NULL", col->name);
    case PRS_OP_CONTAINS:
    case PRS_OP_CONTAINS_KEY:
        return gather_coll(c, col, r, kind, out, err);
    default:
        if (r->key) return gather_coll(c, col, r, kind, out, err);
        break;
    }
    if (kind != EXEC_WHERE_SELECT && col->kind != SCH_COL_PARTITION_KEY && col->kind != SCH_COL_CLUSTERING)
        return sib_err_set(err, SIB_EINVAL, "Non PRIMARY KEY columns found in where clause: %s ", col->name);
    if (kind != EXEC_WHERE_SELECT && col->kind == SCH_COL_PARTITION_KEY && r->op != PRS_OP_EQ && r->op != PRS_OP_IN)
        return sib_err_set(err, SIB_EINVAL,
                           "Only EQ and IN relation are supported on the partition key (unless you use the token() function) for %s statements",
                           kind_word(kind));
    if (col->kind != SCH_COL_CLUSTERING) return gather_single(c, r, r->op, r->value, &crs[col->index], err);
    /* Clustering columns: evaluate alone, merge in exec_clustering.c. */
    col_restr one = {.col = col};
    int rc = gather_single(c, r, r->op, r->value, &one, err);
    if (rc) return rc;
    bool bound = !one.eq;
    sch_val *v = bound ? sib_arena_memdup(c->arena, one.lo ? &one.lov : &one.hiv, sizeof(sch_val)) : one.vals;
    if (!v) return sib_err_set(err, SIB_ENOMEM, "restriction");
    return exec_ck_add_single(ck, col, r->op, v, bound ? 1 : one.nvals, check_order, err);
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
        *f = (exec_filter){.col = cr->col, .op = cr->is_in ? PRS_OP_IN : PRS_OP_EQ};
        if (cr->is_in) { f->in = cr->vals; f->nin = cr->nvals; } else f->val = cr->vals[0];
    }
    if (cr->lo)
        out->filters[out->nfilters++] = (exec_filter){.col = cr->col, .op = cr->lo_incl ? PRS_OP_GTE : PRS_OP_GT, .val = cr->lov};
    if (cr->hi)
        out->filters[out->nfilters++] = (exec_filter){.col = cr->col, .op = cr->hi_incl ? PRS_OP_LTE : PRS_OP_LT, .val = cr->hiv};
    return 0;
}

static int val_cmp(const void *a, const void *b, void *type)
{
    const sch_val *x = a, *y = b;
    return sch_value_compare(type, x->p, (size_t)SIB_MAX(x->len, 0), y->p, (size_t)SIB_MAX(y->len, 0));
}

/* IN values in the column type's order, duplicates dropped. */
static void sort_unique(const sch_column *col, col_restr *cr)
{
    if (cr->nvals < 2) return;
    qsort_r(cr->vals, cr->nvals, sizeof *cr->vals, val_cmp, (void *)col->type);
    size_t m = 1;
    for (size_t i = 1; i < cr->nvals; i++)
        if (val_cmp(&cr->vals[m - 1], &cr->vals[i], (void *)col->type)) cr->vals[m++] = cr->vals[i];
    cr->nvals = m;
}

/* Gives the encoding buffer back to the executor, emptied (memory past 64 KiB
 * is not kept). */
static void pk_scratch_back(cql_exec *ex, sib_buf *b)
{
    if (b->cap > 64 * 1024) sib_buf_free(b);
    sib_buf_reset(b);
    sib_buf_free(&ex->pk_scratch);
    ex->pk_scratch = *b;
}

/* The partition keys in the order Cassandra reads them: the key columns'
 * values in their type's order, first column slowest (a sorted cartesian
 * product), not the order the IN lists give. */
static int build_pks(exec_ctx *c, const sch_table *t, col_restr *crs, exec_restr *out, sib_err *err)
{
    size_t npk = sch_table_pk_count(t), total = 1, natural = 1;
    for (size_t i = 0; i < npk; i++) sort_unique(sch_table_pk(t, i), &crs[sch_table_pk(t, i)->index]);
    for (size_t i = 0; i < npk; i++) {
        size_t nv = crs[sch_table_pk(t, i)->index].nvals;
        total *= nv;
        if (!sch_column_is_derived(t, sch_table_pk(t, i))) natural *= nv; /* buckets have their own limit */
        if (natural > MAX_CARTESIAN)
            return sib_err_set(err, SIB_EINVAL, "IN restrictions on the partition key would select more than %d partitions",
                               MAX_CARTESIAN);
        if (total > exec_bucket_max_partitions())
            return sib_err_set(err, SIB_EINVAL, "The restrictions would read more than %zu partitions (buckets and salts included)",
                               exec_bucket_max_partitions());
    }
    out->pks = sib_arena_alloc(c->arena, sizeof *out->pks * (total + 1));
    if (!out->pks) return sib_err_set(err, SIB_ENOMEM, "partition keys");
    const uint8_t *vals[64];
    size_t lens[64];
    if (npk > SIB_ARRAY_LEN(vals)) return sib_err_set(err, SIB_EINVAL, "too many partition key columns");
    sib_buf b = c->ex->pk_scratch; /* its memory is kept between statements */
    c->ex->pk_scratch = (sib_buf){0};
    for (size_t k = 0; k < total; k++) {
        size_t rem = k;
        for (size_t i = npk; i-- > 0;) { /* last column varies fastest */
            const col_restr *cr = &crs[sch_table_pk(t, i)->index];
            const sch_val *v = &cr->vals[rem % cr->nvals];
            rem /= cr->nvals;
            vals[i] = v->p;
            lens[i] = (size_t)v->len;
        }
        sib_buf_reset(&b);
        int rc = sch_pk_encode(t, vals, lens, npk, &b, err);
        if (rc) { pk_scratch_back(c->ex, &b); return rc; }
        bool dup = false;
        for (size_t j = 0; j < out->npks && !dup; j++)
            dup = (size_t)out->pks[j].len == b.len && !memcmp(out->pks[j].p, b.p, b.len);
        if (dup) continue;
        uint8_t *p = sib_arena_memdup(c->arena, b.p, b.len);
        if (!p) { pk_scratch_back(c->ex, &b); return sib_err_set(err, SIB_ENOMEM, "partition key"); }
        out->pks[out->npks++] = (sch_val){p, (int32_t)b.len};
    }
    pk_scratch_back(c->ex, &b);
    return 0;
}

static void missing_list(const sch_table *t, const col_restr *crs, bool pk, char *out, size_t cap)
{
    size_t n = pk ? sch_table_pk_count(t) : sch_table_clustering_count(t), o = 0;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const sch_column *col = pk ? sch_table_pk(t, i) : sch_table_clustering(t, i);
        if (crs[col->index].eq) continue;
        int w = snprintf(out + o, cap - o, "%s%s", o ? ", " : "", col->name);
        if (w < 0 || (size_t)w >= cap - o) break;
        o += (size_t)w;
    }
}

/* BUCKET / SALT: once every natural partition key column is restricted by
 * EQ/IN, each derived column the statement does not restrict itself takes
 * the values its source's restrictions cover (exec_bucket.c). */
static int derive_pk(exec_ctx *c, const sch_table *t, const prs_relation *rels, size_t n, col_restr *crs, sib_err *err)
{
    size_t npk = sch_table_pk_count(t);
    for (size_t i = 0; i < npk; i++) {
        const sch_column *col = sch_table_pk(t, i);
        if (!sch_column_is_derived(t, col) && !crs[col->index].eq) return 0;
    }
    for (size_t i = 0; i < npk; i++) {
        const sch_column *col = sch_table_pk(t, i);
        col_restr *cr = &crs[col->index];
        if (!sch_column_is_derived(t, col) || restricted(cr)) continue;
        int rc = exec_bucket_pk_values(c, t, col, rels, n, &cr->vals, &cr->nvals, err);
        if (rc) return rc;
        cr->eq = true;
        cr->is_in = cr->nvals != 1;
    }
    return 0;
}

int exec_analyze_where(exec_ctx *c, const sch_table *t, const prs_relation *rels, size_t n, exec_where_kind kind,
                       bool allow_filtering, exec_restr *out, sib_err *err)
{
    memset(out, 0, sizeof *out);
    size_t ncols = sch_table_column_count(t);
    col_restr *crs = sib_arena_alloc(c->arena, sizeof *crs * (ncols + 1));
    if (!crs) return sib_err_set(err, SIB_ENOMEM, "restrictions");
    memset(crs, 0, sizeof *crs * (ncols + 1));
    for (size_t i = 0; i < ncols; i++) crs[i].col = sch_table_column(t, i);
    exec_ck *ck = exec_ck_new(c, t);
    if (!ck) return sib_err_set(err, SIB_ENOMEM, "restrictions");
    bool check_order = !(kind == EXEC_WHERE_SELECT && allow_filtering);
    /* room for two filters a column (a range) and one a relation (CONTAINS) */
    out->filters = sib_arena_alloc(c->arena, sizeof *out->filters * (ncols * 2 + n + 1));
    if (!out->filters) return sib_err_set(err, SIB_ENOMEM, "filters");
    for (size_t i = 0; i < n; i++) {
        int rc = gather(c, t, &rels[i], kind, check_order, crs, ck, out, err);
        if (rc) return rc;
    }
    if (sch_table_has_derived(t)) {
        int rc = derive_pk(c, t, rels, n, crs, err);
        if (rc) return rc;
    }

    /* Partition key. */
    size_t npk = sch_table_pk_count(t), neq = 0, nres = 0;
    for (size_t i = 0; i < npk; i++) {
        const col_restr *cr = &crs[sch_table_pk(t, i)->index];
        neq += cr->eq;
        nres += restricted(cr);
    }
    if (neq == npk) {
        if (out->token_restricted)
            return sib_err_set(err, SIB_EINVAL, "Columns \"%s\" cannot be restricted by both a normal relation and a token relation",
                               sch_table_pk(t, 0)->name);
        out->pk_complete = true;
        int rc = build_pks(c, t, crs, out, err);
        if (rc) return rc;
    } else if (kind != EXEC_WHERE_SELECT) {
        char miss[512];
        missing_list(t, crs, true, miss, sizeof miss);
        return sib_err_set(err, SIB_EINVAL, "Some partition key parts are missing: %s", miss);
    } else if (nres) {
        if (!allow_filtering) return sib_err_set(err, SIB_EINVAL, "%s", EXEC_FILTERING_MSG);
        for (size_t i = 0; i < npk; i++) {
            const col_restr *cr = &crs[sch_table_pk(t, i)->index];
            if (restricted(cr) && add_filter(c, out, cr, ncols, err)) return err->code;
        }
        out->needs_filtering = true;
    }

    int rc = exec_ck_finish(ck, kind, allow_filtering, out, err);
    if (!rc && sch_table_has_derived(t)) rc = exec_bucket_prune(c, t, out, err);
    if (rc) return rc;
    size_t nck = sch_table_clustering_count(t);
    if (kind == EXEC_WHERE_UPDATE && out->ck_eq_prefix < nck) {
        if (out->ck_has_slice)
            return sib_err_set(err, SIB_EINVAL, "Slice restrictions are not supported on the clustering columns in UPDATE statements");
        char miss[512];
        size_t o = 0;
        miss[0] = 0;
        for (size_t i = out->ck_eq_prefix; i < nck; i++) {
            int w = snprintf(miss + o, sizeof miss - o, "%s%s", o ? ", " : "", sch_table_clustering(t, i)->name);
            if (w < 0 || (size_t)w >= sizeof miss - o) break;
            o += (size_t)w;
        }
        return sib_err_set(err, SIB_EINVAL, "Some clustering keys are missing: %s", miss);
    }
    if (kind == EXEC_WHERE_SELECT && !out->pk_complete && (out->ck_eq_prefix || out->ck_has_slice)) {
        if (!allow_filtering) return sib_err_set(err, SIB_EINVAL, "%s", EXEC_FILTERING_MSG);
        out->needs_filtering = true;
    }

    /* Regular and static columns: SELECT filters only (DML rejected them in gather). */
    for (size_t i = 0; i < ncols; i++) {
        const col_restr *cr = &crs[i];
        if (!restricted(cr) || cr->col->kind == SCH_COL_PARTITION_KEY || cr->col->kind == SCH_COL_CLUSTERING) continue;
        if (!allow_filtering) return sib_err_set(err, SIB_EINVAL, "%s", EXEC_FILTERING_MSG);
        if (cr->is_in) return sib_err_set(err, SIB_EINVAL, "IN predicates on non-primary-key columns (%s) is not yet supported", cr->col->name);
        if ((rc = add_filter(c, out, cr, ncols, err))) return rc;
        out->needs_filtering = true;
    }
    if (out->coll_filters && !allow_filtering) return sib_err_set(err, SIB_EINVAL, "%s", EXEC_FILTERING_MSG);
    return 0;
}

/* CONTAINS / CONTAINS KEY / m[key] = v on a collection value. */
static bool coll_match(const exec_filter *f, const uint8_t *v, int32_t len)
{
    const sch_type *ct = f->col->type;
    bool map = ct->code == SCH_T_MAP;
    sch_coll_iter it;
    if (sch_coll_iter_init(&it, ct, v, (size_t)len) < 0) return false;
    sch_val k, e;
    while (sch_coll_next(&it, &k, &e)) {
        size_t kl = (size_t)SIB_MAX(k.len, 0), el = (size_t)SIB_MAX(e.len, 0);
        if (f->entry) {
            if (!sch_value_compare(ct->sub[0], k.p, kl, f->key.p, (size_t)f->key.len))
                return e.len >= 0 && !sch_value_compare(ct->sub[1], e.p, el, f->val.p, (size_t)f->val.len);
        } else if (f->op == PRS_OP_CONTAINS_KEY || !map) {
            if (!sch_value_compare(ct->sub[0], k.p, kl, f->val.p, (size_t)f->val.len)) return true;
        } else if (e.len >= 0 && !sch_value_compare(ct->sub[1], e.p, el, f->val.p, (size_t)f->val.len)) {
            return true;
        }
    }
    return false;
}

bool exec_filter_match(const exec_filter *f, const uint8_t *v, int32_t len)
{
    if (len < 0) return false;
    if (f->entry || f->op == PRS_OP_CONTAINS || f->op == PRS_OP_CONTAINS_KEY) return coll_match(f, v, len);
    if (f->op == PRS_OP_IN) {
        for (size_t i = 0; i < f->nin; i++)
            if (!sch_value_compare(f->col->type, v, (size_t)len, f->in[i].p, (size_t)f->in[i].len)) return true;
        return false;
    }
    int c = sch_value_compare(f->col->type, v, (size_t)len, f->val.p, (size_t)f->val.len);
    switch (f->op) {
    case PRS_OP_EQ: return c == 0;
    case PRS_OP_LT: return c < 0;
    case PRS_OP_LTE: return c <= 0;
    case PRS_OP_GT: return c > 0;
    case PRS_OP_GTE: return c >= 0;
    default: return false;
    }
}

/* ---- prepared point reads ---- */

bool exec_where_point_shape(const sch_table *t, const prs_relation *rels, size_t n, uint8_t *key_of)
{
    size_t npk = sch_table_pk_count(t), nck = sch_table_clustering_count(t);
    /* the partition key, then none, some first or all of the clustering columns */
    if (n < npk || n > npk + nck || n > EXEC_POINT_MAX_KEY || sch_table_has_derived(t)) return false;
    bool seen[EXEC_POINT_MAX_KEY] = {false};
    for (size_t i = 0; i < n; i++) {
        const prs_relation *r = &rels[i];
        if (r->kind != PRS_REL_SINGLE || r->op != PRS_OP_EQ || r->key || !r->value || r->ncols != 1) return false;
        const sch_column *col = sch_table_column_by_name(t, r->cols[0]);
        if (!col || col->position < 0) return false;
        size_t pos = (size_t)col->position;
        /* n distinct positions below n: the clustering ones a prefix */
        if (col->kind == SCH_COL_CLUSTERING && pos < n - npk) pos += npk;
        else if (col->kind != SCH_COL_PARTITION_KEY || pos >= npk) return false;
        if (seen[pos]) return false; /* n distinct positions: each key column once */
        seen[pos] = true;
        key_of[i] = (uint8_t)pos;
    }
    return true;
}

/* What a point read's exec_restr points to, in one arena block with the
 * key bytes after it. */
typedef struct point_block {
    sch_val pk, ck;
    st_slice row; /* a clustering key or a prefix of one: its rows */
} point_block;

int exec_where_point(exec_ctx *c, const sch_table *t, const prs_relation *rels, size_t n, const uint8_t *key_of,
                     exec_restr *out, sib_err *err)
{
    memset(out, 0, sizeof *out);
    size_t npk = sch_table_pk_count(t), nck = n - npk; /* nck: the clustering columns restricted */
    const uint8_t *vals[EXEC_POINT_MAX_KEY];
    size_t lens[EXEC_POINT_MAX_KEY];
    bool checked = true; /* every value a bound marker, checked against its type as it was bound */
    /* Evaluated in WHERE order, as exec_analyze_where does, so a bad value
     * gets the same message whichever way the statement is analysed. */
    for (size_t i = 0; i < n; i++) {
        size_t pos = key_of[i];
        const sch_column *col = pos < npk ? sch_table_pk(t, pos) : sch_table_clustering(t, pos - npk);
        sch_val v;
        bool unset;
        int rc = exec_term_value(c, rels[i].value, col->type, col->name, &v, &unset, err);
        if (rc || (rc = need_value(col, &v, unset, err))) return rc;
        vals[pos] = v.p;
        lens[pos] = (size_t)v.len;
        checked &= rels[i].value->kind == PRS_TERM_MARKER;
    }
    sib_buf *b = &c->ex->pk_scratch; /* nothing else runs meanwhile */
    sib_buf_reset(b);
    /* a one-column key is its value (request memory, as the arena): no copy */
    sch_val pk;
    int rc = sch_pk_encode_view(t, vals, lens, npk, checked, b, &pk, err);
    size_t pk_in_b = b->len;
    /* then the clustering key after it, as exec_clustering.c encodes one
     * (after the partition key, as the analysis does: the same first error) */
    for (size_t i = 0; !rc && i < nck; i++) {
        const sch_column *col = sch_table_clustering(t, i);
        rc = sch_ck_encode_component(col->type, col->order == SCH_ORDER_DESC, vals[npk + i], lens[npk + i], b, err);
    }
    point_block *pb = NULL;
    if (!rc && !b->len && !nck) { /* a one-column partition key, the whole key: its view is enough */
        out->point_pk = pk;
        out->pks = &out->point_pk;
    } else if (!rc) {
        pb = sib_arena_alloc(c->arena, sizeof *pb + b->len + 1);
        if (!pb) rc = sib_err_set(err, SIB_ENOMEM, "partition key");
    }
    if (!rc && pb) {
        uint8_t *p = (uint8_t *)(pb + 1);
        memcpy(p, b->p, b->len);
        pb->pk = pk_in_b ? (sch_val){p, (int32_t)pk_in_b} : pk;
        out->pks = &pb->pk;
    }
    if (!rc) {
        out->pk_complete = true;
        out->npks = 1;
    }
    if (!rc && nck) {
        pb->ck = (sch_val){(uint8_t *)(pb + 1) + pk_in_b, (int32_t)(b->len - pk_in_b)};
        st_bound key = {.key = pb->ck.p, .len = b->len - pk_in_b, .incl = true};
        pb->row = (st_slice){key, key};
        out->slices = &pb->row;
        out->nslices = 1;
        out->ck_eq_prefix = nck;
        if (nck == sch_table_clustering_count(t)) { /* a full key is listed too (exec_ck_finish) */
            out->cks = &pb->ck;
            out->ncks = 1;
        }
    }
    if (b->cap > 64 * 1024) sib_buf_free(b); /* as pk_scratch_back: big memory is not kept */
    return rc;
}
