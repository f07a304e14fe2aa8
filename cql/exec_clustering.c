/* exec_clustering.c: restrictions on clustering columns -> clustering slices.
 *
 * Each relation on clustering columns, single-column (`c > 1`, `c IN (..)`)
 * or multi-column (`(c1, c2) > (1, 2)`, `(c1, c2) IN ((1, 2), (3, 4))`),
 * becomes a group over consecutive clustering positions: EQ (one tuple of
 * values), IN (a list of tuples) or SLICE (a lower and/or an upper bound,
 * each a tuple over a prefix of the group's columns). Groups are merged as
 * Cassandra's RestrictionSet merges them: only two slices starting on the
 * same column combine; any other overlap is refused with Cassandra's text
 * (docs/cql-restrictions.md). Position checks run as each relation is added,
 * in WHERE order, because Cassandra's messages depend on that order.
 *
 * A multi-column slice compares tuples in the columns' natural order, which
 * is not the storage order when the columns mix ASC and DESC: so a bound is
 * split into disjoint pieces, each "an EQ prefix plus at most one
 * single-column range" (L = (1, 2): {c1 > 1} and {c1 = 1, c2 > 2}), lower
 * and upper pieces are intersected pairwise, and each piece becomes one
 * storage slice. The EQ/IN groups in front give the prefixes the pieces
 * extend.
 */
#include "exec_int.h"

#include <stdlib.h>

#define MAX_CARTESIAN 1000

enum { CG_EQ, CG_IN, CG_SLICE };

typedef struct ck_group {
    int kind;
    size_t first, n; /* clustering positions [first, first + n) */
    bool multi;      /* written as a tuple relation */
    sch_val *vals;   /* EQ: n values; IN: ntup tuples of n values */
    size_t ntup;
    size_t lo_n, hi_n; /* SLICE: bound tuple lengths, 0 = no such bound */
    bool lo_incl, hi_incl;
    sch_val *lo, *hi;
} ck_group;

struct exec_ck {
    exec_ctx *c;
    const sch_table *t;
    size_t nck;
    ck_group **at; /* per clustering position: its group, or NULL */
};

exec_ck *exec_ck_new(exec_ctx *c, const sch_table *t)
{
    exec_ck *k = sib_arena_alloc(c->arena, sizeof *k);
    if (!k) return NULL;
    k->c = c;
    k->t = t;
    k->nck = sch_table_clustering_count(t);
    k->at = sib_arena_alloc(c->arena, sizeof *k->at * (k->nck + 1));
    if (!k->at) return NULL;
    memset(k->at, 0, sizeof *k->at * (k->nck + 1));
    return k;
}

static const sch_column *ckcol(const exec_ck *k, size_t pos) { return sch_table_clustering(k->t, pos); }

/* Names of the columns both groups restrict, in key order (Cassandra joins
 * them with " ,"). */
static void common_cols(const exec_ck *k, const ck_group *a, const ck_group *b, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t p = a->first; p < a->first + a->n; p++) {
        if (p < b->first || p >= b->first + b->n) continue;
        int w = snprintf(out + o, cap - o, "%s%s", o ? " ," : "", ckcol(k, p)->name);
        if (w < 0 || (size_t)w >= cap - o) break;
        o += (size_t)w;
    }
}

/* Cassandra's mergeWith of an existing restriction e with a new one r: only
 * two slices on the same first column combine (into e). */
static int merge(exec_ck *k, ck_group *e, const ck_group *r, sib_err *err)
{
    char common[512];
    common_cols(k, e, r, common, sizeof common);
    if (e->kind == CG_EQ)
        return sib_err_set(err, SIB_EINVAL, "%s cannot be restricted by more than one relation if it includes an Equal",
                           common);
    if (e->kind == CG_IN)
        return sib_err_set(err, SIB_EINVAL, "%s cannot be restricted by more than one relation if it includes a IN",
                           common);
    if (r->kind != CG_SLICE)
        return sib_err_set(err, SIB_EINVAL, "Column \"%s\" cannot be restricted by both an equality and an inequality relation",
                           common);
    if (e->first != r->first)
        return sib_err_set(err, SIB_EINVAL, "Column \"%s\" cannot be restricted by two inequalities not starting with the same column",
                           ckcol(k, SIB_MAX(e->first, r->first))->name);
    if (e->lo_n && r->lo_n)
        return sib_err_set(err, SIB_EINVAL, "More than one restriction was found for the start bound on %s", common);
    if (e->hi_n && r->hi_n)
        return sib_err_set(err, SIB_EINVAL, "More than one restriction was found for the end bound on %s", common);
    if (r->lo_n) { e->lo_n = r->lo_n; e->lo = r->lo; e->lo_incl = r->lo_incl; }
    if (r->hi_n) { e->hi_n = r->hi_n; e->hi = r->hi; e->hi_incl = r->hi_incl; }
    e->n = SIB_MAX(e->n, r->n);
    e->multi |= r->multi;
    return 0;
}

/* Adds restriction r (arena memory, kept): merges, then Cassandra's checks
 * that a slice is the last restriction (ClusteringColumnRestrictions). */
static int add_group(exec_ck *k, ck_group *r, bool check_order, sib_err *err)
{
    ck_group *res = r;
    bool merged = false;
    for (size_t p = r->first; p < r->first + r->n; p++) {
        ck_group *e = k->at[p];
        if (!e || e == res) continue;
        int rc = merge(k, e, res, err);
        if (rc) return rc;
        if (merged) /* res was an earlier existing group now folded into e */
            for (size_t q = 0; q < k->nck; q++)
                if (k->at[q] == res) k->at[q] = e;
        res = e;
        merged = true;
    }
    if (check_order) {
        const ck_group *last = NULL;
        for (size_t p = k->nck; p-- > 0 && !last;) last = k->at[p];
        if (last) {
            if (last->kind == CG_SLICE && r->first > last->first)
                return sib_err_set(err, SIB_EINVAL, "Clustering column \"%s\" cannot be restricted (preceding column \"%s\" is restricted by a non-EQ relation)",
                                   ckcol(k, r->first)->name, ckcol(k, last->first)->name);
            if (r->first < last->first && r->kind == CG_SLICE) {
                size_t next = r->first + 1;
                while (next < k->nck && !k->at[next]) next++;
                return sib_err_set(err, SIB_EINVAL, "PRIMARY KEY column \"%s\" cannot be restricted (preceding column \"%s\" is restricted by a non-EQ relation)",
                                   ckcol(k, next)->name, ckcol(k, r->first)->name);
            }
        }
    }
    for (size_t p = res->first; p < res->first + res->n; p++) k->at[p] = res;
    return 0;
}

static ck_group *new_group(exec_ck *k, int kind, size_t first, size_t n, bool multi)
{
    ck_group *g = sib_arena_alloc(k->c->arena, sizeof *g);
    if (!g) return NULL;
    memset(g, 0, sizeof *g);
    g->kind = kind;
    g->first = first;
    g->n = n;
    g->multi = multi;
    return g;
}

int exec_ck_add_single(exec_ck *k, const sch_column *col, prs_op op, sch_val *vals, size_t nvals, bool check_order,
                       sib_err *err)
{
    size_t pos = (size_t)col->position;
    int kind = op == PRS_OP_EQ ? CG_EQ : op == PRS_OP_IN ? CG_IN : CG_SLICE;
    ck_group *g = new_group(k, kind, pos, 1, false);
    if (!g) return sib_err_set(err, SIB_ENOMEM, "restriction");
    g->vals = vals;
    g->ntup = nvals;
    if (op == PRS_OP_GT || op == PRS_OP_GTE) { g->lo_n = 1; g->lo = vals; g->lo_incl = op == PRS_OP_GTE; }
    if (op == PRS_OP_LT || op == PRS_OP_LTE) { g->hi_n = 1; g->hi = vals; g->hi_incl = op == PRS_OP_LTE; }
    return add_group(k, g, check_order, err);
}

/* ---- multi-column relations ---- */

static const char *op_text(prs_op op)
{
    switch (op) {
    case PRS_OP_EQ: return "=";
    case PRS_OP_LT: return "<";
    case PRS_OP_LTE: return "<=";
    case PRS_OP_GT: return ">";
    case PRS_OP_GTE: return ">=";
    case PRS_OP_NEQ: return "!=";
    case PRS_OP_IN: return "IN";
    default: return "?";
    }
}

/* "(b, c) > (1, 2)": the relation as Cassandra prints it in messages. */
static const char *relation_text(exec_ck *k, const prs_relation *r)
{
    sib_buf b;
    sib_buf_init(&b);
    sib_buf_u8(&b, '(');
    for (size_t i = 0; i < r->ncols; i++) sib_buf_printf(&b, "%s%s", i ? ", " : "", r->cols[i]);
    sib_buf_printf(&b, ") %s ", op_text(r->op));
    if (r->op == PRS_OP_IN && !r->value) {
        sib_buf_u8(&b, '(');
        for (size_t i = 0; i < r->nin; i++) {
            if (i) sib_buf_append(&b, ", ", 2);
            exec_term_text(r->in[i], &b);
        }
        sib_buf_u8(&b, ')');
    } else if (r->value) {
        exec_term_text(r->value, &b);
    }
    sib_buf_u8(&b, 0);
    char *s = b.oom ? NULL : sib_arena_strdup(k->c->arena, (const char *)b.p);
    sib_buf_free(&b);
    return s ? s : "";
}

/* The receiver name of a tuple marker: "(b,c)" (or "in(b,c)" for IN ?). */
static const char *tuple_name(exec_ck *k, const prs_relation *r, bool in)
{
    sib_buf b;
    sib_buf_init(&b);
    sib_buf_printf(&b, "%s(", in ? "in" : "");
    for (size_t i = 0; i < r->ncols; i++) sib_buf_printf(&b, "%s%s", i ? "," : "", r->cols[i]);
    sib_buf_append(&b, ")", 2);
    char *s = b.oom ? NULL : sib_arena_strdup(k->c->arena, (const char *)b.p);
    sib_buf_free(&b);
    return s ? s : "";
}

const sch_type *exec_ck_tuple_type(exec_ctx *c, const sch_table *t, const prs_relation *r)
{
    const sch_type *elems[64];
    if (r->ncols == 0 || r->ncols > SIB_ARRAY_LEN(elems)) return NULL;
    for (size_t i = 0; i < r->ncols; i++) {
        const sch_column *col = sch_table_column_by_name(t, r->cols[i]);
        if (!col) return NULL;
        elems[i] = col->type;
    }
    return sch_type_tuple(sch_catalog_types(c->ex->cat), elems, r->ncols);
}

/* Splits a serialized tuple into out[0..n) (missing trailing elements are
 * null), validating each element against its column. */
static int split_tuple(const sch_column *const *cols, size_t n, const uint8_t *p, size_t len, sch_val *out,
                       sib_err *err)
{
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = (sch_val){NULL, -1};
        if (off >= len) continue;
        if (len - off < 4) return sib_err_set(err, SIB_EINVAL, "Invalid tuple value for %s", cols[i]->name);
        int32_t l = (int32_t)get_be32(p + off);
        off += 4;
        if (l < 0) continue;
        if ((size_t)l > len - off) return sib_err_set(err, SIB_EINVAL, "Invalid tuple value for %s", cols[i]->name);
        int rc = sch_value_validate(cols[i]->type, p + off, (size_t)l, err);
        if (rc) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return sib_err_set(err, SIB_EINVAL, "Exception while binding column %s: %s", cols[i]->name, msg);
        }
        out[i] = (sch_val){p + off, l};
        off += (size_t)l;
    }
    return 0;
}

/* One tuple term (a literal "(a, b)" or a marker bound to a tuple) -> n values. */
static int eval_tuple(exec_ck *k, const prs_relation *r, const sch_column *const *cols, const prs_term *term, bool in,
                      sch_val *out, sib_err *err)
{
    size_t n = r->ncols;
    if (term->kind == PRS_TERM_MARKER) {
        const cql_value *v = exec_marker_value(k->c, term->marker);
        if (!v) return sib_err_set(err, SIB_EINVAL, "Invalid amount of bind variables");
        if (v->len == CQL_VALUE_UNSET)
            return sib_err_set(err, SIB_EINVAL, "Invalid unset value for tuple %s", tuple_name(k, r, false));
        if (v->len < 0) return sib_err_set(err, SIB_EINVAL, "Invalid null value for tuple %s", tuple_name(k, r, false));
        return split_tuple(cols, n, v->p, (size_t)v->len, out, err);
    }
    if (term->kind != PRS_TERM_TUPLE) {
        char tn[256];
        sib_buf b;
        sib_buf_init(&b);
        sch_type_cql_name(exec_ck_tuple_type(k->c, k->t, r), &b);
        snprintf(tn, sizeof tn, "%.*s", (int)b.len, b.p ? (const char *)b.p : "");
        sib_buf_free(&b);
        return sib_err_set(err, SIB_EINVAL, "Invalid %s for %s of type %s", in ? "IN value" : "tuple value",
                           tuple_name(k, r, false), tn);
    }
    if (term->coll.n != n) {
        sib_buf b;
        sib_buf_init(&b);
        exec_term_text(term, &b);
        int rc = sib_err_set(err, SIB_EINVAL, "Expected %zu elements in value tuple, but got %zu: %.*s", n, term->coll.n,
                             (int)b.len, b.p ? (const char *)b.p : "");
        sib_buf_free(&b);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        bool unset;
        int rc = exec_term_value(k->c, term->coll.items[i], cols[i]->type, cols[i]->name, &out[i], &unset, err);
        if (rc) return rc;
        if (unset) return sib_err_set(err, SIB_EINVAL, "Invalid unset value for column %s", cols[i]->name);
    }
    return 0;
}

static int no_nulls(const sch_column *const *cols, const sch_val *v, size_t n, sib_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].len < 0) return sib_err_set(err, SIB_EINVAL, "Invalid null value in condition for column %s", cols[i]->name);
    return 0;
}

/* The relation's columns (arena array into *out), checked as Cassandra's
 * MultiColumnRelation does, and the arity of its tuple literals. */
static int multi_columns(exec_ck *k, const prs_relation *r, const sch_column ***out, sib_err *err)
{
    exec_ctx *c = k->c;
    size_t n = r->ncols;
    const sch_column **cols = sib_arena_alloc(c->arena, sizeof *cols * (n + 1));
    if (!cols) return sib_err_set(err, SIB_ENOMEM, "restriction");
    *out = cols;
    for (size_t i = 0; i < n; i++) {
        cols[i] = sch_table_column_by_name(k->t, r->cols[i]);
        if (!cols[i]) return sib_err_set(err, SIB_EINVAL, "Undefined column name %s", r->cols[i]);
        if (cols[i]->kind != SCH_COL_CLUSTERING)
            return sib_err_set(err, SIB_EINVAL, "Multi-column relations can only be applied to clustering columns but was applied to: %s",
                               cols[i]->name);
        for (size_t j = 0; j < i; j++)
            if (cols[j] == cols[i])
                return sib_err_set(err, SIB_EINVAL, "Column \"%s\" appeared twice in a relation: %s", cols[i]->name,
                                   relation_text(k, r));
        if (i && cols[i]->position != cols[i - 1]->position + 1)
            return sib_err_set(err, SIB_EINVAL, "Clustering columns must appear in the PRIMARY KEY order in multi-column relations: %s",
                               relation_text(k, r));
    }
    if (r->op == PRS_OP_NEQ) return sib_err_set(err, SIB_EINVAL, "Unsupported \"!=\" relation: %s", relation_text(k, r));
    /* the value, or each IN item (r->value is NULL for a listed IN) */
    for (size_t i = 0; i <= r->nin; i++) {
        const prs_term *one = i == 0 ? r->value : r->in[i - 1];
        if (!one || one->kind != PRS_TERM_TUPLE || one->coll.n == n) continue;
        sib_buf b;
        sib_buf_init(&b);
        exec_term_text(one, &b);
        int rc = sib_err_set(err, SIB_EINVAL, "Expected %zu elements in value tuple, but got %zu: %.*s", n, one->coll.n,
                             (int)b.len, b.p ? (const char *)b.p : "");
        sib_buf_free(&b);
        return rc;
    }
    return 0;
}

int exec_ck_check_multi(exec_ctx *c, const sch_table *t, const prs_relation *r, sib_err *err)
{
    exec_ck *k = exec_ck_new(c, t);
    if (!k) return sib_err_set(err, SIB_ENOMEM, "restriction");
    const sch_column **cols;
    return multi_columns(k, r, &cols, err);
}

int exec_ck_add_multi(exec_ck *k, const prs_relation *r, bool check_order, sib_err *err)
{
    exec_ctx *c = k->c;
    size_t n = r->ncols;
    const sch_column **cols;
    int rc = multi_columns(k, r, &cols, err);
    if (rc) return rc;
    size_t first = (size_t)cols[0]->position;
    if (r->op == PRS_OP_EQ) {
        ck_group *g = new_group(k, CG_EQ, first, n, true);
        if (!g || !(g->vals = sib_arena_alloc(c->arena, sizeof *g->vals * n))) return sib_err_set(err, SIB_ENOMEM, "restriction");
        g->ntup = 1;
        if ((rc = eval_tuple(k, r, cols, r->value, false, g->vals, err)) || (rc = no_nulls(cols, g->vals, n, err))) return rc;
        return add_group(k, g, check_order, err);
    }
    if (r->op == PRS_OP_IN) {
        ck_group *g = new_group(k, CG_IN, first, n, true);
        if (!g) return sib_err_set(err, SIB_ENOMEM, "restriction");
        if (r->value) { /* (b, c) IN ?: a list of tuples */
            const sch_type *tt = exec_ck_tuple_type(c, k->t, r);
            const sch_type *lt = tt ? sch_type_list(sch_catalog_types(c->ex->cat), tt, false) : NULL;
            if (!lt) return sib_err_set(err, SIB_ENOMEM, "restriction");
            const cql_value *v = r->value->kind == PRS_TERM_MARKER ? exec_marker_value(c, r->value->marker) : NULL;
            if (!v) return sib_err_set(err, SIB_EINVAL, "Invalid amount of bind variables");
            if (v->len == CQL_VALUE_UNSET)
                return sib_err_set(err, SIB_EINVAL, "Invalid unset value for %s", tuple_name(k, r, true));
            if (v->len < 0) return sib_err_set(err, SIB_EINVAL, "Invalid null value for IN restriction");
            sch_coll_iter it;
            int cnt = sch_coll_iter_init(&it, lt, v->p, (size_t)v->len);
            if (cnt < 0) return sib_err_set(err, SIB_EINVAL, "Invalid list value for %s", tuple_name(k, r, true));
            if (!(g->vals = sib_arena_alloc(c->arena, sizeof *g->vals * ((size_t)cnt * n + 1))))
                return sib_err_set(err, SIB_ENOMEM, "restriction");
            sch_val e, unused;
            while (sch_coll_next(&it, &e, &unused)) {
                if (e.len < 0) return sib_err_set(err, SIB_EINVAL, "Invalid null value for IN restriction");
                sch_val *tup = g->vals + g->ntup * n;
                if ((rc = split_tuple(cols, n, e.p, (size_t)e.len, tup, err))) return rc;
                if ((rc = no_nulls(cols, tup, n, err))) return rc;
                g->ntup++;
            }
        } else {
            if (!(g->vals = sib_arena_alloc(c->arena, sizeof *g->vals * (r->nin * n + 1))))
                return sib_err_set(err, SIB_ENOMEM, "restriction");
            for (size_t i = 0; i < r->nin; i++) {
                sch_val *tup = g->vals + i * n;
                if ((rc = eval_tuple(k, r, cols, r->in[i], true, tup, err)) || (rc = no_nulls(cols, tup, n, err))) return rc;
            }
            g->ntup = r->nin;
        }
        return add_group(k, g, check_order, err);
    }
    ck_group *g = new_group(k, CG_SLICE, first, n, true);
    sch_val *v = sib_arena_alloc(c->arena, sizeof *v * (n + 1));
    if (!g || !v) return sib_err_set(err, SIB_ENOMEM, "restriction");
    if ((rc = eval_tuple(k, r, cols, r->value, false, v, err)) || (rc = no_nulls(cols, v, n, err))) return rc;
    if (r->op == PRS_OP_GT || r->op == PRS_OP_GTE) {
        g->lo_n = n;
        g->lo = v;
        g->lo_incl = r->op == PRS_OP_GTE;
    } else {
        g->hi_n = n;
        g->hi = v;
        g->hi_incl = r->op == PRS_OP_LTE;
    }
    return add_group(k, g, check_order, err);
}

/* ---- slices ---- */

/* A piece of a slice: positions [0, neq) of the slice's columns equal
 * eq[], then an optional range on position neq. */
typedef struct piece {
    size_t neq;
    const sch_val *eq; /* neq values (views) */
    bool has_lo, has_hi, lo_incl, hi_incl;
    sch_val lo, hi;
} piece;

static int cmpv(const sch_column *col, const sch_val *a, const sch_val *b)
{
    return sch_value_compare(col->type, a->p, (size_t)a->len, b->p, (size_t)b->len);
}

/* The pieces of one bound: tuple v of length n, lower (>/>=) or upper.
 * (c1, c2) >= (1, 2) is {c1 > 1} + {c1 = 1, c2 >= 2}: every range is
 * exclusive but the last one, which carries the bound's own inclusivity. */
static size_t bound_pieces(const sch_val *v, size_t n, bool lower, bool incl, piece *out)
{
    for (size_t j = 0; j < n; j++) {
        piece *p = &out[j];
        memset(p, 0, sizeof *p);
        p->neq = j;
        p->eq = v;
        bool in = j == n - 1 && incl;
        if (lower) { p->has_lo = true; p->lo = v[j]; p->lo_incl = in; }
        else { p->has_hi = true; p->hi = v[j]; p->hi_incl = in; }
    }
    return n;
}

/* Does value x satisfy piece p's range (position p->neq)? */
static bool in_range(const sch_column *col, const piece *p, const sch_val *x)
{
    if (p->has_lo) {
        int c = cmpv(col, x, &p->lo);
        if (c < 0 || (c == 0 && !p->lo_incl)) return false;
    }
    if (p->has_hi) {
        int c = cmpv(col, x, &p->hi);
        if (c > 0 || (c == 0 && !p->hi_incl)) return false;
    }
    return true;
}

/* a ∩ b into out (which may alias neither); false when empty. cols are the
 * slice's columns from its first one. */
static bool intersect(const sch_column *const *cols, const piece *a, const piece *b, piece *out)
{
    const piece *lng = a->neq >= b->neq ? a : b, *sht = lng == a ? b : a;
    /* the shorter EQ prefix must agree with the longer one */
    for (size_t i = 0; i < sht->neq; i++)
        if (cmpv(cols[i], &sht->eq[i], &lng->eq[i])) return false;
    *out = *lng;
    if (sht->neq == lng->neq) { /* both ranges (if any) on the same column */
        if (sht->has_lo) { out->has_lo = true; out->lo = sht->lo; out->lo_incl = sht->lo_incl; }
        if (sht->has_hi) { out->has_hi = true; out->hi = sht->hi; out->hi_incl = sht->hi_incl; }
        if (out->has_lo && out->has_hi) {
            int c = cmpv(cols[out->neq], &out->lo, &out->hi);
            if (c > 0 || (c == 0 && !(out->lo_incl && out->hi_incl))) return false;
        }
        return true;
    }
    /* the shorter one's range is on a column the longer one fixes */
    if ((sht->has_lo || sht->has_hi) && !in_range(cols[sht->neq], sht, &lng->eq[sht->neq])) return false;
    return true;
}

static int encode(exec_ck *k, const sch_val *prefix, const sch_column *const *cols, const sch_val *vals, size_t n,
                  const sch_column *last_col, const sch_val *last, sch_val *out, sib_err *err)
{
    sib_buf b;
    sib_buf_init(&b);
    if (prefix->len > 0) sib_buf_append(&b, prefix->p, (size_t)prefix->len);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = sch_ck_encode_component(cols[i]->type, cols[i]->order == SCH_ORDER_DESC, vals[i].p, (size_t)vals[i].len, &b, err);
    if (!rc && last)
        rc = sch_ck_encode_component(last_col->type, last_col->order == SCH_ORDER_DESC, last->p, (size_t)last->len, &b, err);
    if (!rc && b.oom) rc = sib_err_set(err, SIB_ENOMEM, "clustering key");
    if (!rc) {
        uint8_t *p = sib_arena_memdup(k->c->arena, b.p ? b.p : (const uint8_t *)"", b.len);
        if (!p) rc = sib_err_set(err, SIB_ENOMEM, "clustering key");
        out->p = p;
        out->len = (int32_t)b.len;
    }
    sib_buf_free(&b);
    return rc;
}

static int slice_cmp(const void *a, const void *b)
{
    const st_slice *x = a, *y = b;
    if (x->start.unbounded != y->start.unbounded) return x->start.unbounded ? -1 : 1;
    if (x->start.unbounded) return 0;
    size_t n = SIB_MIN(x->start.len, y->start.len);
    int c = n ? memcmp(x->start.key, y->start.key, n) : 0;
    if (c) return c;
    /* A start that is a prefix of the other sits before every key with that
     * prefix when inclusive, after all of them when exclusive. */
    if (x->start.len < y->start.len) return x->start.incl ? -1 : 1;
    if (x->start.len > y->start.len) return y->start.incl ? 1 : -1;
    return (int)y->start.incl - (int)x->start.incl;
}

static st_bound bound_of(const sch_val *v, bool incl) { return (st_bound){v->p, (size_t)v->len, incl, false}; }

/* One storage slice for prefix + piece (cols: the slice's columns). */
static int piece_slice(exec_ck *k, const sch_val *prefix, const sch_column *const *cols, const piece *p, st_slice *s,
                       sib_err *err)
{
    sch_val eq;
    int rc = encode(k, prefix, cols, p->eq, p->neq, NULL, NULL, &eq, err);
    if (rc) return rc;
    st_bound whole = {.key = eq.p, .len = (size_t)eq.len, .incl = true, .unbounded = eq.len == 0};
    s->start = s->end = whole;
    const sch_column *rc_col = cols[p->neq];
    bool desc = (p->has_lo || p->has_hi) && rc_col->order == SCH_ORDER_DESC;
    sch_val lo, hi;
    if (p->has_lo && (rc = encode(k, prefix, cols, p->eq, p->neq, rc_col, &p->lo, &lo, err))) return rc;
    if (p->has_hi && (rc = encode(k, prefix, cols, p->eq, p->neq, rc_col, &p->hi, &hi, err))) return rc;
    /* A DESC column's encoding is inverted: its lower value bound is the
     * storage end and its upper bound the storage start. */
    if (p->has_lo) {
        if (desc) s->end = bound_of(&lo, p->lo_incl);
        else s->start = bound_of(&lo, p->lo_incl);
    }
    if (p->has_hi) {
        if (desc) s->start = bound_of(&hi, p->hi_incl);
        else s->end = bound_of(&hi, p->hi_incl);
    }
    return 0;
}

/* EQ/IN prefix groups -> encoded key prefixes (cartesian product, first
 * group varying slowest, duplicates dropped). With max_size, a prefix whose
 * values add up to more bytes than that is refused as Cassandra refuses a
 * clustering too large to write. */
static int build_prefixes(exec_ck *k, ck_group *const *pre, size_t npre, size_t max_size, sch_val **out, size_t *nout,
                          sib_err *err)
{
    size_t total = 1;
    for (size_t i = 0; i < npre; i++) {
        total *= pre[i]->kind == CG_IN ? pre[i]->ntup : 1;
        if (total > MAX_CARTESIAN)
            return sib_err_set(err, SIB_EINVAL, "IN restrictions on clustering columns would select more than %d rows",
                               MAX_CARTESIAN);
    }
    sch_val *cur = sib_arena_alloc(k->c->arena, sizeof *cur * (total + 1));
    size_t *size = sib_arena_alloc(k->c->arena, sizeof *size * (total + 1));
    if (!cur || !size) return sib_err_set(err, SIB_ENOMEM, "clustering keys");
    cur[0] = (sch_val){(const uint8_t *)"", 0};
    size[0] = 0;
    size_t n = 1;
    const sch_column *cols[64];
    for (size_t i = 0; i < npre; i++) {
        const ck_group *g = pre[i];
        size_t ntup = g->kind == CG_IN ? g->ntup : 1;
        if (g->n > SIB_ARRAY_LEN(cols)) return sib_err_set(err, SIB_EINVAL, "too many clustering columns");
        for (size_t j = 0; j < g->n; j++) cols[j] = ckcol(k, g->first + j);
        sch_val *next = sib_arena_alloc(k->c->arena, sizeof *next * (n * ntup + 1));
        size_t *nsize = sib_arena_alloc(k->c->arena, sizeof *nsize * (n * ntup + 1));
        if (!next || !nsize) return sib_err_set(err, SIB_ENOMEM, "clustering keys");
        size_t m = 0;
        for (size_t j = 0; j < n; j++) {
            for (size_t t = 0; t < ntup; t++) {
                const sch_val *tup = g->vals + t * g->n;
                nsize[m] = size[j];
                for (size_t e = 0; e < g->n; e++) nsize[m] += (size_t)SIB_MAX(tup[e].len, 0);
                if (max_size && nsize[m] > max_size)
                    return sib_err_set(err, SIB_EINVAL, "Key length of %zu is longer than maximum of %zu", nsize[m], max_size);
                int rc = encode(k, &cur[j], cols, tup, g->n, NULL, NULL, &next[m], err);
                if (rc) return rc;
                bool dup = false;
                for (size_t d = 0; d < m && !dup; d++)
                    dup = next[d].len == next[m].len && !memcmp(next[d].p, next[m].p, (size_t)next[m].len);
                if (!dup) m++;
            }
        }
        cur = next;
        size = nsize;
        n = m;
    }
    *out = cur;
    *nout = n;
    return 0;
}

/* The pieces of a slice group (lower x upper intersected); *n pieces. */
static int slice_pieces(exec_ck *k, const ck_group *g, const sch_column *const *cols, piece **out, size_t *n, sib_err *err)
{
    piece *lo = sib_arena_alloc(k->c->arena, sizeof *lo * (g->lo_n + 2));
    piece *hi = sib_arena_alloc(k->c->arena, sizeof *hi * (g->hi_n + 2));
    piece *res = sib_arena_alloc(k->c->arena, sizeof *res * ((g->lo_n + 2) * (g->hi_n + 2)));
    if (!lo || !hi || !res) return sib_err_set(err, SIB_ENOMEM, "slices");
    size_t nlo = g->lo_n ? bound_pieces(g->lo, g->lo_n, true, g->lo_incl, lo) : 0;
    size_t nhi = g->hi_n ? bound_pieces(g->hi, g->hi_n, false, g->hi_incl, hi) : 0;
    size_t m = 0;
    if (!nhi) {
        memcpy(res, lo, sizeof *lo * nlo);
        m = nlo;
    } else if (!nlo) {
        memcpy(res, hi, sizeof *hi * nhi);
        m = nhi;
    } else {
        for (size_t i = 0; i < nlo; i++)
            for (size_t j = 0; j < nhi; j++)
                if (intersect(cols, &lo[i], &hi[j], &res[m])) m++;
    }
    *out = res;
    *n = m;
    return 0;
}

/* Filters for groups storage cannot serve (SELECT ... ALLOW FILTERING). */
static int add_filters(exec_ck *k, const ck_group *g, exec_restr *out, size_t cap, sib_err *err)
{
    if (!out->filters) {
        out->filters = sib_arena_alloc(k->c->arena, sizeof *out->filters * cap * 2 + 1);
        if (!out->filters) return sib_err_set(err, SIB_ENOMEM, "filters");
    }
    if (g->kind == CG_EQ) {
        for (size_t i = 0; i < g->n; i++)
            out->filters[out->nfilters++] = (exec_filter){.col = ckcol(k, g->first + i), .op = PRS_OP_EQ, .val = g->vals[i]};
        return 0;
    }
    if (g->kind == CG_IN) {
        if (g->n != 1) return sib_err_set(err, SIB_EINVAL, "Multicolumn IN filters are not supported");
        out->filters[out->nfilters++] = (exec_filter){.col = ckcol(k, g->first), .op = PRS_OP_IN, .in = g->vals, .nin = g->ntup};
        return 0;
    }
    if (g->multi && (g->lo_n > 1 || g->hi_n > 1))
        return sib_err_set(err, SIB_EINVAL, "Multi-column slice restrictions cannot be used for filtering.");
    const sch_column *col = ckcol(k, g->first);
    if (g->lo_n)
        out->filters[out->nfilters++] = (exec_filter){.col = col, .op = g->lo_incl ? PRS_OP_GTE : PRS_OP_GT, .val = g->lo[0]};
    if (g->hi_n)
        out->filters[out->nfilters++] = (exec_filter){.col = col, .op = g->hi_incl ? PRS_OP_LTE : PRS_OP_LT, .val = g->hi[0]};
    return 0;
}

int exec_ck_finish(exec_ck *k, exec_where_kind kind, bool allow_filtering, exec_restr *out, sib_err *err)
{
    size_t nck = k->nck, p = 0, npre = 0;
    ck_group **pre = sib_arena_alloc(k->c->arena, sizeof *pre * (nck + 1));
    if (!pre) return sib_err_set(err, SIB_ENOMEM, "restrictions");
    const ck_group *slice = NULL;
    while (p < nck && k->at[p]) {
        ck_group *g = k->at[p];
        if (g->kind == CG_SLICE) { slice = g; break; }
        pre[npre++] = g;
        out->ck_has_in |= g->kind == CG_IN;
        p += g->n;
    }
    out->ck_eq_prefix = p;
    out->ck_has_slice = slice != NULL;
    size_t served_end = slice ? slice->first + slice->n : p;
    for (size_t q = served_end; q < nck; q++) {
        const ck_group *g = k->at[q];
        if (!g || (q > 0 && k->at[q - 1] == g)) continue;
        if (kind == EXEC_WHERE_SELECT && allow_filtering) {
            int rc = add_filters(k, g, out, sch_table_column_count(k->t), err);
            if (rc) return rc;
            out->needs_filtering = true;
            continue;
        }
        /* the first restricted column that is not where a prefix would put it */
        size_t i = 0;
        for (size_t pos = 0; pos < nck; pos++) {
            if (!k->at[pos]) continue;
            if (pos != i)
                return sib_err_set(err, SIB_EINVAL, "PRIMARY KEY column \"%s\" cannot be restricted as preceding column \"%s\" is not restricted",
                                   ckcol(k, pos)->name, ckcol(k, i)->name);
            i++;
        }
        return sib_err_set(err, SIB_EINVAL, "%s", EXEC_FILTERING_MSG);
    }
    sch_val *prefixes = NULL; /* (set by build_prefixes on success; gcc -O2 cannot tell) */
    size_t nprefixes = 0;
    int rc = build_prefixes(k, pre, npre, kind == EXEC_WHERE_SELECT ? 0 : EXEC_MAX_KEY_LEN, &prefixes, &nprefixes, err);
    if (rc) return rc;
    if (p == nck && !slice) {
        out->cks = prefixes;
        out->ncks = nprefixes;
    }
    if (p == 0 && !slice) return 0; /* whole partition */
    piece *pieces = NULL;
    size_t npieces = 1;
    const sch_column *cols[64];
    if (slice) {
        if (slice->n > SIB_ARRAY_LEN(cols)) return sib_err_set(err, SIB_EINVAL, "too many clustering columns");
        for (size_t i = 0; i < slice->n; i++) cols[i] = ckcol(k, slice->first + i);
        if ((rc = slice_pieces(k, slice, cols, &pieces, &npieces, err))) return rc;
    }
    out->slices = sib_arena_alloc(k->c->arena, sizeof *out->slices * (nprefixes * npieces + 1));
    if (!out->slices) return sib_err_set(err, SIB_ENOMEM, "slices");
    for (size_t j = 0; j < nprefixes; j++) {
        for (size_t i = 0; i < npieces; i++) {
            st_slice *s = &out->slices[out->nslices];
            if (!slice) {
                st_bound whole = {.key = prefixes[j].p, .len = (size_t)prefixes[j].len, .incl = true};
                s->start = s->end = whole;
            } else if ((rc = piece_slice(k, &prefixes[j], cols, &pieces[i], s, err))) {
                return rc;
            }
            out->nslices++;
        }
    }
    if (out->nslices == 0) { /* nothing can match: one slice that covers no key */
        st_bound none = {.key = (const uint8_t *)"", .len = 0, .incl = false, .unbounded = false};
        out->slices[0] = (st_slice){none, none};
        out->nslices = 1;
        out->ck_none = true;
    }
    qsort(out->slices, out->nslices, sizeof *out->slices, slice_cmp);
    return 0;
}
