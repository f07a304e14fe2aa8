/* exec_bucket.c: bucketed partition keys, the executor side (docs/cql.md
 * "Bucketed partition keys"; the schema side is schema/derive.c).
 *
 * Applications name the natural columns; the derived partition key columns
 * (`<ts>_bucket`, `salt`) are computed here:
 *   writes   INSERT computes them from the row (exec_bucket_insert); UPDATE
 *            and DELETE go through the WHERE analysis like reads. A value
 *            the statement gives for a derived column must equal the
 *            computed one, else the statement is refused with that value.
 *   WHERE    when every natural partition key column is restricted by
 *            EQ/IN, a derived column the statement leaves alone gets the
 *            values the natural restrictions cover (exec_bucket_pk_values):
 *            the buckets of `ts = ?` / `ts IN (...)`, or of both bounds of a
 *            range (at most max_scatter_buckets of them); every salt. Once
 *            the clustering keys are known, the partitions that hold none of
 *            a statement's full keys are dropped (exec_bucket_prune): a
 *            row write touches exactly its own partition, and a read that
 *            gives the full primary key reads one salt.
 *   reads    the partitions are then ordinary single-partition reads, each
 *            through the coordinator at the statement's consistency level,
 *            read one after the other in the order exec_bucket_order gives:
 *            natural key, then buckets in clustering order (reversed for
 *            ORDER BY the other way), so the rows stream out in clustering
 *            order and the read stops at the LIMIT or a full page; the
 *            paging state names the bucket's partition and the row in it.
 *            The next RA_AHEAD buckets whose replicas are other nodes are
 *            read ahead (exec_bucket_ra_*, below).
 *            The salts of one natural key hold interleaved rows: the SELECT
 *            merges them (exec_salt_merge_*, at the end of this file, with
 *            exec_select.c's run): for a page of P rows it reads at
 *            most P + 1 rows of each salt after the paging state's row,
 *            sorts them in clustering order and keeps the first P; the
 *            paging state then holds the last row kept, and every salt
 *            resumes after it (a clustering key lives in one salt only).
 */
#define _GNU_SOURCE /* qsort_r */
#include "exec_select_int.h"

#include <stdlib.h>

#define MAX_DERIVED_NVALS 100000 /* salts x buckets x natural keys, one statement */

static const char *derived_def(exec_ctx *c, const sch_table *t, const sch_column *col)
{
    sib_buf b;
    sib_buf_init(&b);
    sch_bucket bk;
    if (sch_table_bucket(t, &bk) && bk.col == col) sch_bucket_cql(t, &b);
    else sch_salt_cql(t, &b);
    sib_buf_u8(&b, 0);
    char *s = b.oom ? NULL : arena_printf(c, "%s", (const char *)b.p);
    sib_buf_free(&b);
    return s ? s : "";
}

static int arena_val(exec_ctx *c, const sib_buf *b, sch_val *out, sib_err *err)
{
    if (b->oom) return sib_err_set(err, SIB_ENOMEM, "derived value");
    uint8_t *p = sib_arena_memdup(c->arena, b->p ? b->p : (const uint8_t *)"", b->len ? b->len : 1);
    if (!p) return sib_err_set(err, SIB_ENOMEM, "derived value");
    *out = (sch_val){p, (int32_t)b->len};
    return 0;
}

/* The value of derived column col for a row with clustering values ck
 * (serialized, by clustering position) and encoded clustering key ckb. */
static int derived_value(const sch_table *t, const sch_column *col, const sch_val *ck, const sch_val *ckb,
                         sib_buf *out, sib_err *err)
{
    sch_bucket bk;
    sch_salt sl;
    if (sch_table_bucket(t, &bk) && bk.col == col) return sch_bucket_of(&bk, ck[0].p, (size_t)ck[0].len, out, err);
    if (!sch_table_salt(t, &sl)) return sib_err_set(err, SIB_EINVAL, "%s is not a derived column", col->name);
    sib_buf_be32(out, sch_salt_of(sl.count, ckb->p, (size_t)ckb->len));
    return 0;
}

static int mismatch(exec_ctx *c, const sch_table *t, const sch_column *col, const sch_val *want, sib_err *err)
{
    sib_buf v;
    sib_buf_init(&v);
    sch_value_format(col->type, want->p, (size_t)want->len, &v);
    int rc = sib_err_set(err, SIB_EINVAL, "Invalid value for %s, which %s derives from the row: it would be %.*s", col->name,
                         derived_def(c, t, col), (int)v.len, v.p ? (const char *)v.p : "");
    sib_buf_free(&v);
    return rc;
}

/* ---- INSERT ---- */

int exec_bucket_insert(exec_ctx *c, const sch_table *t, sch_val *vals, bool *set, const bool *unset, sib_err *err)
{
    size_t nck = sch_table_clustering_count(t);
    sch_val ck[64];
    if (nck > SIB_ARRAY_LEN(ck)) return sib_err_set(err, SIB_EINVAL, "too many clustering columns");
    for (size_t i = 0; i < sch_table_pk_count(t); i++) {
        const sch_column *col = sch_table_pk(t, i);
        if (!sch_column_is_derived(t, col)) continue;
        sch_bucket bk;
        size_t need = sch_table_bucket(t, &bk) && bk.col == col ? 1 : nck; /* a bucket needs ts, a salt every column */
        for (size_t k = 0; k < need; k++) {
            const sch_column *cc = sch_table_clustering(t, k);
            const sch_val *v = &vals[cc->index];
            if (!set[cc->index] || unset[cc->index] || v->len < 0)
                return sib_err_set(err, SIB_EINVAL, "Some clustering keys are missing: %s (the partition key column %s, %s, is computed from it)",
                                   cc->name, col->name, derived_def(c, t, col));
            ck[k] = *v;
        }
        const uint8_t *p[64];
        size_t l[64];
        for (size_t k = 0; k < need; k++) p[k] = ck[k].p, l[k] = (size_t)ck[k].len;
        sib_buf enc, out;
        sib_buf_init(&enc);
        sib_buf_init(&out);
        int rc = need == nck ? sch_ck_encode(t, p, l, nck, &enc, err) : 0;
        sch_val ckb = {enc.p, (int32_t)enc.len}, got;
        if (!rc) rc = derived_value(t, col, ck, &ckb, &out, err);
        if (!rc) rc = arena_val(c, &out, &got, err);
        sib_buf_free(&enc);
        sib_buf_free(&out);
        if (rc) return rc;
        const sch_val *given = &vals[col->index];
        if (set[col->index] && !unset[col->index] &&
            (given->len != got.len || (got.len && memcmp(given->p, got.p, (size_t)got.len))))
            return mismatch(c, t, col, &got, err);
        vals[col->index] = got;
        set[col->index] = true;
    }
    return 0;
}

/* ---- WHERE: the derived values the natural restrictions cover ---- */

typedef struct src_restr {
    sch_val *eq;
    size_t neq;
    bool is_eq, lo, lo_incl, hi, hi_incl;
    int64_t lov, hiv; /* in bucket units */
} src_restr;

static int need_val(const sch_column *col, const sch_val *v, bool unset, sib_err *err)
{
    if (unset) return sib_err_set(err, SIB_EINVAL, "Invalid unset value for column %s", col->name);
    if (v->len < 0) return sib_err_set(err, SIB_EINVAL, "Invalid null value in condition for column %s", col->name);
    return 0;
}

/* ts IN (a, b) / ts IN ? into s->eq. */
static int source_in(exec_ctx *c, const sch_column *src, const prs_relation *r, src_restr *s, sib_err *err)
{
    size_t cap = r->value ? 0 : r->nin;
    sch_val list = {NULL, -1};
    bool unset;
    const sch_type *lt = NULL;
    sch_coll_iter it;
    if (r->value) {
        lt = sch_type_list(sch_catalog_types(c->ex->cat), src->type, false);
        int rc = exec_term_value(c, r->value, lt, src->name, &list, &unset, err);
        if (rc || (rc = need_val(src, &list, unset, err))) return rc;
        int n = sch_coll_iter_init(&it, lt, list.p, (size_t)list.len);
        if (n < 0) return sib_err_set(err, SIB_EINVAL, "Invalid list value for IN restriction on %s", src->name);
        cap = (size_t)n;
    }
    s->eq = sib_arena_alloc(c->arena, sizeof *s->eq * (cap + 1));
    if (!s->eq) return sib_err_set(err, SIB_ENOMEM, "IN values");
    s->is_eq = true;
    if (r->value) {
        sch_val k, v;
        while (s->neq < cap && sch_coll_next(&it, &k, &v)) s->eq[s->neq++] = k;
        return 0;
    }
    for (size_t i = 0; i < r->nin; i++) {
        int rc = exec_term_value(c, r->in[i], src->type, src->name, &s->eq[s->neq], &unset, err);
        if (rc || (rc = need_val(src, &s->eq[s->neq], unset, err))) return rc;
        s->neq++;
    }
    return 0;
}

static int gather_source(exec_ctx *c, const sch_table *t, const sch_column *src, const prs_relation *rels, size_t n,
                         src_restr *s, sib_err *err)
{
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < n; i++) {
        const prs_relation *r = &rels[i];
        bool names = false;
        for (size_t k = 0; k < r->ncols; k++) names |= !strcmp(r->cols[k], src->name);
        if (!names || r->kind == PRS_REL_TOKEN) continue;
        sch_bucket bk;
        if (r->kind == PRS_REL_MULTI && sch_table_bucket(t, &bk))
            return sib_err_set(err, SIB_EINVAL, "Multi-column relations on %s are not supported on table %s.%s, whose partition key's %s derives from it",
                               src->name, sch_table_keyspace(t), sch_table_name(t), derived_def(c, t, bk.col));
        bool unset;
        sch_val v;
        int rc;
        switch (r->op) {
        case PRS_OP_EQ:
            s->eq = sib_arena_alloc(c->arena, sizeof *s->eq);
            if (!s->eq) return sib_err_set(err, SIB_ENOMEM, "value");
            if ((rc = exec_term_value(c, r->value, src->type, src->name, &s->eq[0], &unset, err)) ||
                (rc = need_val(src, &s->eq[0], unset, err)))
                return rc;
            s->neq = 1;
            s->is_eq = true;
            break;
        case PRS_OP_IN:
            if ((rc = source_in(c, src, r, s, err))) return rc;
            break;
        case PRS_OP_GT: case PRS_OP_GTE: case PRS_OP_LT: case PRS_OP_LTE: {
            bool lower = r->op == PRS_OP_GT || r->op == PRS_OP_GTE;
            int64_t u;
            if ((rc = exec_term_value(c, r->value, src->type, src->name, &v, &unset, err)) ||
                (rc = need_val(src, &v, unset, err)) ||
                (rc = sch_bucket_units(src->type, v.p, (size_t)v.len, &u, err)))
                return rc;
            if (lower) { s->lo = true; s->lo_incl = r->op == PRS_OP_GTE; s->lov = u; }
            else { s->hi = true; s->hi_incl = r->op == PRS_OP_LTE; s->hiv = u; }
            break;
        }
        default:
            break; /* the clustering analysis refuses the rest with Cassandra's words */
        }
    }
    return 0;
}

/* The bucket starts a range covers, in units; *n = 0 for an empty range. */
static int range_buckets(exec_ctx *c, const sch_table *t, const sch_bucket *bk, const src_restr *s, int64_t *first,
                         size_t *n, sib_err *err)
{
    const char *src = bk->source->name;
    if (!s->lo || !s->hi)
        return sib_err_set(err, SIB_EINVAL,
                           "The range on %s has no %s bound: table %s.%s is bucketed by %s, and a range needs both bounds to list its buckets",
                           src, s->lo ? "upper" : "lower", sch_table_keyspace(t), sch_table_name(t), derived_def(c, t, bk->col));
    *n = 0;
    int64_t lo = s->lov, hi = s->hiv;
    if (!s->lo_incl && lo == INT64_MAX) return 0;
    if (!s->hi_incl && hi == INT64_MIN) return 0;
    if (!s->lo_incl) lo++;
    if (!s->hi_incl) hi--;
    if (lo > hi) return 0;
    int64_t a, b;
    if (!sch_bucket_floor(lo, bk->width, &a) || !sch_bucket_floor(hi, bk->width, &b))
        return sib_err_set(err, SIB_EINVAL, "The range on %s is out of the range of %s", src, derived_def(c, t, bk->col));
    __int128 count = ((__int128)b - a) / bk->width + 1;
    if (count > c->ex->max_scatter_buckets)
        return sib_err_set(err, SIB_EINVAL,
                           "The range on %s covers %lld buckets of %s, more than max_scatter_buckets (%d): narrow the range",
                           src, (long long)count, derived_def(c, t, bk->col), c->ex->max_scatter_buckets);
    *first = a;
    *n = (size_t)count;
    return 0;
}

static int bucket_values(exec_ctx *c, const sch_table *t, const sch_bucket *bk, const prs_relation *rels, size_t nrel,
                         sch_val **vals, size_t *nvals, sib_err *err)
{
    src_restr s;
    int rc = gather_source(c, t, bk->source, rels, nrel, &s, err);
    if (rc) return rc;
    if (!s.is_eq && !s.lo && !s.hi)
        return sib_err_set(err, SIB_EINVAL,
                           "Table %s.%s is bucketed by %s: restrict %s with =, IN, or a range with both bounds so that its buckets can be listed",
                           sch_table_keyspace(t), sch_table_name(t), derived_def(c, t, bk->col), bk->source->name);
    sib_buf b;
    sib_buf_init(&b);
    int64_t first = 0;
    size_t n = s.neq;
    if (!s.is_eq && (rc = range_buckets(c, t, bk, &s, &first, &n, err))) return rc;
    sch_val *out = sib_arena_alloc(c->arena, sizeof *out * (n + 1));
    if (!out) return sib_err_set(err, SIB_ENOMEM, "buckets");
    for (size_t i = 0; i < n && !rc; i++) {
        sib_buf_reset(&b);
        if (s.is_eq) rc = sch_bucket_of(bk, s.eq[i].p, (size_t)s.eq[i].len, &b, err);
        else rc = sch_bucket_value(bk->col->type, first + (int64_t)i * bk->width, &b, err);
        if (!rc) rc = arena_val(c, &b, &out[i], err);
    }
    sib_buf_free(&b);
    *vals = out;
    *nvals = n;
    return rc;
}

int exec_bucket_pk_values(exec_ctx *c, const sch_table *t, const sch_column *col, const prs_relation *rels, size_t n,
                          sch_val **vals, size_t *nvals, sib_err *err)
{
    sch_bucket bk;
    sch_salt sl;
    if (sch_table_bucket(t, &bk) && bk.col == col) return bucket_values(c, t, &bk, rels, n, vals, nvals, err);
    if (!sch_table_salt(t, &sl) || sl.col != col) return sib_err_set(err, SIB_EINVAL, "%s is not derived", col->name);
    sch_val *out = sib_arena_alloc(c->arena, sizeof *out * sl.count);
    uint8_t *p = sib_arena_alloc(c->arena, 4 * (size_t)sl.count);
    if (!out || !p) return sib_err_set(err, SIB_ENOMEM, "salts");
    for (uint32_t i = 0; i < sl.count; i++) {
        put_be32(p + 4 * i, i);
        out[i] = (sch_val){p + 4 * i, 4};
    }
    *vals = out;
    *nvals = sl.count;
    return 0;
}

size_t exec_bucket_max_partitions(void) { return MAX_DERIVED_NVALS; }

/* ---- partitions and rows ---- */

/* Does the partition pk hold the row with encoded full clustering key ck? */
static int owns(exec_ctx *c, const sch_table *t, const sch_val *pk, const sch_val *ck, const sch_column **bad,
                sch_val *want, sib_err *err)
{
    size_t npk = sch_table_pk_count(t), nck = sch_table_clustering_count(t);
    sch_val pkv[64];
    sib_buf ckv[64];
    if (npk > SIB_ARRAY_LEN(pkv) || nck > SIB_ARRAY_LEN(ckv)) return sib_err_set(err, SIB_EINVAL, "key too wide");
    int rc = sch_pk_decode(t, pk->p, (size_t)pk->len, pkv, npk, err);
    if (rc) return rc;
    for (size_t i = 0; i < nck; i++) sib_buf_init(&ckv[i]);
    size_t got = 0;
    rc = sch_ck_decode(t, ck->p, (size_t)ck->len, ckv, &got, err);
    sch_val first = {ckv[0].p, (int32_t)ckv[0].len};
    sib_buf out;
    sib_buf_init(&out);
    *bad = NULL;
    for (size_t i = 0; !rc && i < npk && !*bad; i++) {
        const sch_column *col = sch_table_pk(t, i);
        if (!sch_column_is_derived(t, col)) continue;
        sib_buf_reset(&out);
        if ((rc = derived_value(t, col, &first, ck, &out, err))) break;
        if ((size_t)pkv[i].len != out.len || (out.len && memcmp(pkv[i].p, out.p, out.len))) {
            *bad = col;
            rc = arena_val(c, &out, want, err);
        }
    }
    sib_buf_free(&out);
    for (size_t i = 0; i < nck; i++) sib_buf_free(&ckv[i]);
    return rc;
}

int exec_bucket_prune(exec_ctx *c, const sch_table *t, exec_restr *r, sib_err *err)
{
    size_t nck = sch_table_clustering_count(t);
    if (!r->pk_complete || !nck || r->ck_eq_prefix < nck || !r->ncks) return 0;
    size_t keep = 0;
    const sch_column *bad = NULL;
    sch_val want = {NULL, 0};
    for (size_t p = 0; p < r->npks; p++) {
        bool any = false;
        for (size_t k = 0; k < r->ncks && !any; k++) {
            const sch_column *b;
            sch_val w;
            int rc = owns(c, t, &r->pks[p], &r->cks[k], &b, &w, err);
            if (rc) return rc;
            any = !b;
            if (b && !bad) bad = b, want = w;
        }
        if (any) r->pks[keep++] = r->pks[p];
    }
    /* every partition the statement named misses its rows: a derived
     * column was given, with a value the rows do not have */
    if (!keep && r->npks && bad) return mismatch(c, t, bad, &want, err);
    r->npks = keep;
    return 0;
}

bool exec_bucket_owns(exec_ctx *c, const sch_table *t, const sch_val *pk, const sch_val *ck)
{
    const sch_column *bad;
    sch_val want;
    sib_err e;
    return !owns(c, t, pk, ck, &bad, &want, &e) && !bad;
}

/* ---- read order ---- */

typedef struct order_ctx {
    const sch_table *t;
    size_t bucket_pos;  /* npk when none */
    bool bucket_desc;
    sch_val *dec;       /* decoded keys, npk per partition, in the pks' order */
    const sch_val *base;
} order_ctx;

static int pk_cmp(const void *a, const void *b, void *ctx)
{
    const order_ctx *o = ctx;
    size_t npk = sch_table_pk_count(o->t);
    const sch_val *pa = *(const sch_val *const *)a, *pb = *(const sch_val *const *)b;
    const sch_val *x = &o->dec[(size_t)(pa - o->base) * npk], *y = &o->dec[(size_t)(pb - o->base) * npk];
    /* natural columns, then the bucket, then the salt */
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < npk; i++) {
            const sch_column *col = sch_table_pk(o->t, i);
            bool derived = sch_column_is_derived(o->t, col), bucket = i == o->bucket_pos;
            if ((pass == 0 && derived) || (pass == 1 && !bucket) || (pass == 2 && (!derived || bucket))) continue;
            int r = sch_value_compare(col->type, x[i].p, (size_t)SIB_MAX(x[i].len, 0), y[i].p, (size_t)SIB_MAX(y[i].len, 0));
            if (r) return pass == 1 && o->bucket_desc ? -r : r;
        }
    return 0;
}

int exec_bucket_order(exec_ctx *c, const sch_table *t, exec_restr *r, bool reversed, sib_err *err)
{
    if (!r->pk_complete || r->npks < 2) return 0;
    size_t npk = sch_table_pk_count(t);
    sch_bucket bk;
    order_ctx o = {.t = t, .bucket_pos = npk};
    if (sch_table_bucket(t, &bk)) {
        o.bucket_pos = bk.pk_pos;
        o.bucket_desc = (bk.source->order == SCH_ORDER_DESC) != reversed;
    }
    o.dec = sib_arena_alloc(c->arena, sizeof *o.dec * npk * r->npks);
    if (!o.dec) return sib_err_set(err, SIB_ENOMEM, "partition keys");
    for (size_t p = 0; p < r->npks; p++) {
        int rc = sch_pk_decode(t, r->pks[p].p, (size_t)r->pks[p].len, &o.dec[p * npk], npk, err);
        if (rc) return rc;
    }
    /* sort pointers into a copy of the keys: pk_cmp finds a key's decoded
     * values by its place in that copy */
    sch_val *copy = sib_arena_alloc(c->arena, sizeof *copy * r->npks);
    const sch_val **ptrs = sib_arena_alloc(c->arena, sizeof *ptrs * r->npks);
    if (!copy || !ptrs) return sib_err_set(err, SIB_ENOMEM, "partition keys");
    memcpy(copy, r->pks, sizeof *copy * r->npks);
    o.base = copy;
    for (size_t p = 0; p < r->npks; p++) ptrs[p] = &copy[p];
    qsort_r(ptrs, r->npks, sizeof *ptrs, pk_cmp, &o);
    for (size_t p = 0; p < r->npks; p++) r->pks[p] = *ptrs[p];
    return 0;
}

bool exec_bucket_same_natural(const sch_table *t, const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t npk = sch_table_pk_count(t);
    sch_val x[64], y[64];
    sib_err e;
    if (!a || !b || npk > SIB_ARRAY_LEN(x) || sch_pk_decode(t, a, al, x, npk, &e) || sch_pk_decode(t, b, bl, y, npk, &e))
        return false;
    for (size_t i = 0; i < npk; i++) {
        if (sch_column_is_derived(t, sch_table_pk(t, i))) continue;
        if (x[i].len != y[i].len || (x[i].len > 0 && memcmp(x[i].p, y[i].p, (size_t)x[i].len))) return false;
    }
    return true;
}

int exec_bucket_read_plan(exec_ctx *c, const sch_table *t, exec_restr *r, bool reversed, bool *merge, sib_err *err)
{
    int rc = exec_bucket_order(c, t, r, reversed, err);
    sch_salt sl;
    if (rc || !sch_table_salt(t, &sl) || r->npks < 2) return rc;
    /* more than one salt among the partitions: their rows interleave */
    const uint8_t *first = NULL;
    size_t npk = sch_table_pk_count(t);
    sch_val v[64];
    if (npk > SIB_ARRAY_LEN(v)) return 0;
    for (size_t p = 0; p < r->npks; p++) {
        if ((rc = sch_pk_decode(t, r->pks[p].p, (size_t)r->pks[p].len, v, npk, err))) return rc;
        if (!first) first = v[sl.pk_pos].p;
        else if (v[sl.pk_pos].len == 4 && memcmp(first, v[sl.pk_pos].p, 4)) {
            *merge = true;
            break;
        }
    }
    return 0;
}

/* ---- read-ahead through the replicas ------------------------------------------
 *
 * The buckets of a read are read one after the other; when they live on
 * other nodes each is a round trip. So while the SELECT reads bucket i, the
 * next RA_AHEAD buckets that need the replicas are already asked for (the
 * same coord_read, at the same level, over the same slices). An answer that
 * arrives first is kept as the reconciled state (one serialized mutation)
 * until the SELECT gets there; one the SELECT is already waiting for is
 * handed over as it comes. A failed or unused read-ahead costs nothing
 * else: the SELECT asks again, or never gets there (a LIMIT, a full page).
 * The object outlives its SELECT while answers are still due (orphaned). */

#define RA_AHEAD 2

enum { RA_FREE, RA_PENDING, RA_READY, RA_FAILED };

typedef struct ra_slot {
    struct exec_bucket_ra *ra;
    size_t idx;     /* partition index in the read's list */
    int state;
    sib_buf data;   /* RA_READY: the reconciled state */
} ra_slot;

struct exec_bucket_ra {
    cql_exec *ex;
    uint8_t table_id[16], version[16];
    const sch_val *pks; /* the SELECT's (request arena): only touched while not orphaned */
    size_t npks;
    const st_slice *slices;
    size_t nslices;
    coord_repl repl;
    int cl;
    bool repair;
    int32_t now_s;
    ra_slot slots[RA_AHEAD + 1];
    size_t next;        /* the next partition index to consider */
    int pending;        /* coord_read answers still due */
    bool orphaned, in_callback;
    bool waiting;       /* the SELECT waits for partition wait_idx */
    size_t wait_idx;
    coord_read_fn wait_fn;
    void *wait_ctx;
    struct exec_bucket_ra *oprev, *onext; /* ex->ra_orphans, once orphaned with answers due */
};

exec_bucket_ra *exec_bucket_ra_create(cql_exec *ex, const uint8_t table_id[16], const sch_val *pks, size_t npks,
                                      const st_slice *slices, size_t nslices, const coord_repl *repl, int cl,
                                      bool repair, int32_t now_s)
{
    if (!ex->co || npks < 2) return NULL;
    exec_bucket_ra *ra = calloc(1, sizeof *ra);
    if (!ra) return NULL; /* no read-ahead: the SELECT reads as usual */
    ra->ex = ex;
    memcpy(ra->table_id, table_id, 16);
    sch_catalog_schema_version(ex->cat, ra->version);
    ra->pks = pks;
    ra->npks = npks;
    ra->slices = slices;
    ra->nslices = nslices;
    exec_repl_copy(&ra->repl, repl);
    ra->cl = cl;
    ra->repair = repair;
    ra->now_s = now_s;
    for (size_t i = 0; i < SIB_ARRAY_LEN(ra->slots); i++) {
        ra->slots[i].ra = ra;
        sib_buf_init(&ra->slots[i].data);
    }
    return ra;
}

static void ra_free(exec_bucket_ra *ra)
{
    if (ra->oprev) ra->oprev->onext = ra->onext;
    else if (ra->ex->ra_orphans == ra) ra->ex->ra_orphans = ra->onext;
    if (ra->onext) ra->onext->oprev = ra->oprev;
    for (size_t i = 0; i < SIB_ARRAY_LEN(ra->slots); i++) sib_buf_free(&ra->slots[i].data);
    free(ra);
}

void exec_bucket_ra_release(exec_bucket_ra *ra)
{
    if (!ra) return;
    ra->orphaned = true;
    ra->waiting = false;
    if (!ra->pending && !ra->in_callback) {
        ra_free(ra);
        return;
    }
    ra->onext = ra->ex->ra_orphans; /* kept until its answers come, or the executor goes */
    if (ra->onext) ra->onext->oprev = ra;
    ra->ex->ra_orphans = ra;
}

void exec_bucket_ra_free_orphans(cql_exec *ex)
{
    while (ex->ra_orphans) ra_free(ex->ra_orphans);
}

static void ra_done(void *ctx, int rc, const sib_err *err, st_merge *mg)
{
    ra_slot *s = ctx;
    exec_bucket_ra *ra = s->ra;
    ra->pending--;
    if (ra->orphaned) {
        s->state = RA_FREE;
        if (!ra->pending && !ra->in_callback) ra_free(ra);
        return;
    }
    if (ra->waiting && ra->wait_idx == s->idx) { /* the SELECT is there: hand the answer over */
        ra->waiting = false;
        s->state = RA_FREE;
        ra->in_callback = true;
        ra->wait_fn(ra->wait_ctx, rc, err, mg);
        ra->in_callback = false;
        if (ra->orphaned && !ra->pending) ra_free(ra);
        return;
    }
    s->state = RA_FAILED;
    if (rc) return;
    st_rreq u = {.pk = ra->pks[s->idx].p, .pklen = (size_t)ra->pks[s->idx].len, .slices = ra->slices,
                 .nslices = ra->nslices, .unfiltered = true, .now_s = ra->now_s};
    st_rpage *pg = NULL;
    sib_err e;
    size_t n = 0;
    const uint8_t *m = NULL;
    if (!st_merge_read(mg, ra->table_id, &u, &pg, &e) && (m = st_rpage_mutation(pg, &n))) {
        sib_buf_reset(&s->data);
        sib_buf_append(&s->data, m, n);
        if (!s->data.oom) s->state = RA_READY;
    }
    st_rpage_destroy(pg);
}

/* Asks for the partitions after idx that need the replicas, up to RA_AHEAD. */
static void ra_top_up(exec_bucket_ra *ra, size_t idx)
{
    if (ra->next <= idx) ra->next = idx + 1;
    while (ra->next < ra->npks && ra->next <= idx + RA_AHEAD) {
        size_t j = ra->next++;
        int64_t tok = sib_murmur3_token(ra->pks[j].p, (size_t)ra->pks[j].len);
        if (coord_local_only(ra->ex->co, &ra->repl, tok)) continue; /* read locally when reached */
        ra_slot *s = NULL;
        for (size_t i = 0; i < SIB_ARRAY_LEN(ra->slots) && !s; i++)
            if (ra->slots[i].state == RA_FREE) s = &ra->slots[i];
        if (!s) { ra->next--; return; }
        coord_read_req cr = {.table_id = ra->table_id, .schema_version = ra->version, .pk = ra->pks[j].p,
                             .pklen = (size_t)ra->pks[j].len, .slices = ra->slices, .nslices = ra->nslices,
                             .now_s = ra->now_s};
        sib_err e;
        s->idx = j;
        if (coord_read(ra->ex->co, &cr, &ra->repl, tok, ra->cl, ra->repair, ra_done, s, &e)) continue; /* asked again later */
        s->state = RA_PENDING;
        ra->pending++;
    }
}

int exec_bucket_ra_read(exec_bucket_ra *ra, size_t idx, const st_rreq *rq, coord_read_fn fn, void *ctx,
                        st_rpage **page, sib_err *err)
{
    *page = NULL;
    ra_top_up(ra, idx);
    ra_slot *s = NULL;
    for (size_t i = 0; i < SIB_ARRAY_LEN(ra->slots) && !s; i++)
        if (ra->slots[i].state != RA_FREE && ra->slots[i].idx == idx) s = &ra->slots[i];
    if (!s) return 0;
    if (s->state == RA_PENDING) {
        ra->waiting = true;
        ra->wait_idx = idx;
        ra->wait_fn = fn;
        ra->wait_ctx = ctx;
        return 1;
    }
    int rc = 0;
    if (s->state == RA_READY) {
        st_merge *mg = st_merge_create();
        if (!mg) rc = sib_err_set(err, SIB_ENOMEM, "read-ahead");
        if (!rc) rc = st_merge_add(mg, s->data.p, s->data.len, err);
        if (!rc) rc = st_merge_read(mg, ra->table_id, rq, page, err);
        st_merge_destroy(mg);
        if (!rc) rc = 1;
    }
    s->state = RA_FREE; /* a failed read-ahead: the SELECT asks itself (rc 0) */
    ra_top_up(ra, idx);
    return rc;
}

/* ---- the salts of a SALT table, merged (a SELECT, exec_select.c) -----------
 *
 * `WHERE user = ?` on a table with SALT(n) reads n partitions whose rows
 * interleave in clustering order (exec_bucket.c). For a page of P rows each
 * salt gives at most P + 1 rows after the position (PER PARTITION LIMIT is
 * the tool: one natural key's salts are read with a per-salt cap), the rows
 * are sorted as IN + ORDER BY results are (post_order), and the first P go
 * out. The paging state holds the last row sent; the next page cuts every
 * salt's slices after it, which is exact because a clustering key lives in
 * one salt only. One natural key at a time: rows of several would mix. */
int exec_salt_merge_start(sel_run *run, exec_restr *r, int64_t limit, bool pk_in, sib_err *err)
{
    if (pk_in)
        return sib_err_set(err, SIB_EINVAL,
                           "IN on the partition key of table %s.%s, whose rows spread over SALT partitions, is not supported: "
                           "read one key at a time",
                           sch_table_keyspace(run->t), sch_table_name(run->t));
    int64_t left = run->ps.present ? run->ps.limit_left : limit;
    /* one natural partition: PER PARTITION LIMIT is a LIMIT */
    if (!run->ps.present && run->ppl >= 0 && (left < 0 || run->ppl < left)) left = run->ppl;
    int64_t cap = run->page_size > 0 ? (int64_t)run->page_size + 1 : -1;
    if (left >= 0 && (cap < 0 || left < cap)) cap = left;
    run->salt_merge = run->post_order = true;
    run->merge_page = run->page_size;
    run->merge_left = left;
    run->ppl = cap;
    run->page_size = -1;
    if (!run->ps.present) return 0;
    if (!run->ps.in_partition) return ps_invalid(err);
    st_slice *cut = sib_arena_alloc(run->c->arena, sizeof *cut * (r->nslices + 1));
    if (!cut) return oom(err);
    size_t n = cut_slices(r->slices, r->nslices, run->ps.ck.p, (size_t)run->ps.ck.len, run->reversed, cut);
    if (!n) { /* nothing after the position */
        r->npks = 0;
        run->ps.present = false;
        return 0;
    }
    r->slices = cut;
    r->nslices = n;
    run->ps.ppl_left = cap; /* the salt the state names is continued with the same cap */
    return 0;
}

int64_t exec_salt_merge_finish(sel_run *run, const sch_val *first_pk, sib_buf *ps)
{
    int64_t n = (int64_t)run->nrows, take = n, left = run->merge_left;
    if (run->merge_page > 0 && take > run->merge_page) take = run->merge_page;
    if (left >= 0 && take > left) take = left;
    if (n <= take || left == take || !first_pk) return take;
    const uint8_t **rows = malloc(sizeof(*rows) * (size_t)n);
    if (!rows) return -2;
    for (int64_t i = 0; i < n; i++) rows[i] = run->out.p + ((const size_t *)run->offs.p)[i];
    qsort_r(rows, (size_t)n, sizeof(*rows), post_order_cmp, &run->reversed);
    const uint8_t *last = rows[take - 1];
    sib_buf_reset(&run->last_pk);
    sib_buf_reset(&run->last_ck);
    sib_buf_append(&run->last_pk, first_pk->p, (size_t)first_pk->len);
    sib_buf_append(&run->last_ck, last + 4, get_be32(last));
    free(rows);
    run->last_in_partition = true;
    run->last_pk_index = 0;
    run->limit_left = left < 0 ? -1 : left - take;
    run->last_ppl_left = -1;
    sib_buf_reset(ps);
    ps_encode_partitions(run, ps);
    return run->last_pk.oom || run->last_ck.oom ? -2 : take;
}
