/* exec_group.c: aggregates (count, min, max, sum, avg) and GROUP BY.
 *
 * A query that aggregates, or has GROUP BY, sees its matching rows in read
 * order through group_row() instead of emitting them one by one. Rows with
 * the same group key (the partition key, then the first `nck` clustering
 * columns; no key at all without GROUP BY) are consecutive in that order, so
 * a group is open until a row with another key arrives; it then closes into
 * one output row:
 *   - an aggregate selector gives its accumulated result,
 *   - any other selector the value it had on the group's FIRST row (as
 *     Cassandra's selectors keep the first input).
 * Without GROUP BY there is one group; over no row at all it still gives one
 * row (counts and sums 0, avg 0, min/max and plain selectors null).
 *
 * LIMIT, PER PARTITION LIMIT and the page size count groups (Cassandra's
 * GROUP BY limits). A page ends at the first row of the group after a full
 * page, so no group is ever split between pages: the paging state points at
 * the last row of the last group sent, and the next page starts with the
 * following group.
 *
 * Arithmetic follows Cassandra's AggregateFcts (docs/cql.md, aggregates):
 *   sum of tinyint/smallint/int/bigint/counter: in the type itself, wrapping
 *     on overflow like Java's integer arithmetic;
 *   avg of those: an exact sum (128 bits here, long then BigInteger there)
 *     divided by the count, truncated toward zero;
 *   sum/avg of float/double: double with Kahan compensation; a float result
 *     is the double rounded to float. avg falls back to a wider sum (long
 *     double here, BigDecimal there) when the double sum overflows;
 *   varint: exact; avg truncates toward zero;
 *   decimal: exact sum at the largest scale met; avg is updated per value as
 *     avg += (x - avg) / count, each division rounded HALF_EVEN at the
 *     scale of (x - avg), which is what BigDecimal.divide(count, HALF_EVEN)
 *     does;
 *   min/max: the type's comparator (sch_value_compare); nulls are skipped
 *     by every aggregate, and count(col) counts non-null values.
 */
#include "exec_select_int.h"

#include <math.h>
#include <stdlib.h>

/* ---- a little exact arithmetic for varint and decimal --------------------- */

/* Sign and magnitude, little-endian base 2^32 limbs (malloc'd). */
typedef struct bnum {
    uint32_t *l;
    size_t n, cap;
    bool neg;
} bnum;

/* Past this many decimal digits of scale difference a decimal sum is
 * refused rather than grown (a hostile 1E-2147483647 would need gigabytes). */
#define GRP_MAX_SCALE_GAP 100000

static bool bn_reserve(bnum *a, size_t n)
{
    if (n <= a->cap) return true;
    size_t cap = a->cap ? a->cap : 4;
    while (cap < n) cap *= 2;
    uint32_t *l = realloc(a->l, cap * sizeof(*l));
    if (!l) return false;
    memset(l + a->cap, 0, (cap - a->cap) * sizeof(*l));
    a->l = l;
    a->cap = cap;
    return true;
}

static void bn_trim(bnum *a)
{
    while (a->n && !a->l[a->n - 1]) a->n--;
    if (!a->n) a->neg = false;
}

/* Two's complement big endian (a varint, or a decimal's unscaled part). */
static bool bn_from_be(bnum *a, const uint8_t *p, size_t len)
{
    a->n = 0;
    a->neg = len && (p[0] & 0x80);
    if (!bn_reserve(a, len / 4 + 1)) return false;
    memset(a->l, 0, a->cap * sizeof(*a->l));
    unsigned borrow = a->neg; /* magnitude of a negative: ~x + 1 */
    for (size_t i = 0; i < len; i++) {
        unsigned b = p[len - 1 - i];
        if (a->neg) {
            b = (uint8_t)~b + borrow;
            borrow = b >> 8;
            b &= 0xff;
        }
        a->l[i / 4] |= (uint32_t)b << (8 * (i % 4));
    }
    a->n = len / 4 + 1;
    bn_trim(a);
    return true;
}

/* The minimal two's complement big-endian form, appended to out. */
static void bn_to_be(const bnum *a, sib_buf *out)
{
    size_t nb = a->n * 4 + 1;
    uint8_t *p = malloc(nb);
    if (!p) {
        out->oom = true;
        return;
    }
    for (size_t i = 0; i < nb; i++) p[nb - 1 - i] = i / 4 < a->n ? (uint8_t)(a->l[i / 4] >> (8 * (i % 4))) : 0;
    if (a->neg) {
        unsigned carry = 1;
        for (size_t i = nb; i-- > 0;) {
            unsigned v = (uint8_t)~p[i] + carry;
            p[i] = (uint8_t)v;
            carry = v >> 8;
        }
    }
    size_t i = 0;
    while (i + 1 < nb && ((p[i] == 0x00 && !(p[i + 1] & 0x80)) || (p[i] == 0xFF && (p[i + 1] & 0x80)))) i++;
    sib_buf_append(out, p + i, nb - i);
    free(p);
}

static int mag_cmp(const bnum *a, const bnum *b)
{
    if (a->n != b->n) return a->n < b->n ? -1 : 1;
    for (size_t i = a->n; i-- > 0;)
        if (a->l[i] != b->l[i]) return a->l[i] < b->l[i] ? -1 : 1;
    return 0;
}

/* a += (neg ? -1 : 1) * |b|. */
static bool bn_add_signed(bnum *a, const bnum *b, bool neg)
{
    size_t n = SIB_MAX(a->n, b->n) + 1;
    if (!bn_reserve(a, n)) return false;
    if (a->neg == neg || !a->n) {
        uint64_t carry = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t v = (uint64_t)(i < a->n ? a->l[i] : 0) + (i < b->n ? b->l[i] : 0) + carry;
            a->l[i] = (uint32_t)v;
            carry = v >> 32;
        }
        a->neg = neg;
        a->n = n;
    } else {
        bool a_big = mag_cmp(a, b) >= 0;
        const bnum *x = a_big ? a : b, *y = a_big ? b : a;
        int64_t borrow = 0;
        for (size_t i = 0; i < n; i++) {
            int64_t v = (int64_t)(i < x->n ? x->l[i] : 0) - (i < y->n ? y->l[i] : 0) - borrow;
            borrow = v < 0;
            a->l[i] = (uint32_t)(v + (borrow ? (int64_t)1 << 32 : 0));
        }
        a->neg = a_big ? a->neg : neg;
        a->n = n;
    }
    bn_trim(a);
    return true;
}

static bool bn_mul_small(bnum *a, uint32_t m)
{
    if (!bn_reserve(a, a->n + 1)) return false;
    uint64_t carry = 0;
    for (size_t i = 0; i < a->n; i++) {
        uint64_t v = (uint64_t)a->l[i] * m + carry;
        a->l[i] = (uint32_t)v;
        carry = v >> 32;
    }
    if (carry) a->l[a->n++] = (uint32_t)carry;
    return true;
}

/* a *= 10^k */
static bool bn_mul_pow10(bnum *a, int64_t k)
{
    for (; k >= 9; k -= 9)
        if (!bn_mul_small(a, 1000000000u)) return false;
    uint32_t m = 1;
    while (k-- > 0) m *= 10;
    return bn_mul_small(a, m);
}

/* |a| /= d (truncating); *rem gets the remainder's magnitude. */
static void bn_div_small(bnum *a, uint64_t d, uint64_t *rem)
{
    unsigned __int128 r = 0;
    for (size_t i = a->n; i-- > 0;) {
        unsigned __int128 cur = (r << 32) | a->l[i];
        a->l[i] = (uint32_t)(cur / d);
        r = cur % d;
    }
    *rem = (uint64_t)r;
    bn_trim(a);
}

static bool bn_copy(bnum *dst, const bnum *src)
{
    if (!bn_reserve(dst, src->n + 1)) return false;
    if (src->n) memcpy(dst->l, src->l, src->n * sizeof(*src->l));
    dst->n = src->n;
    dst->neg = src->neg;
    return true;
}

/* ---- accumulators ------------------------------------------------------------ */

typedef struct agg_acc {
    int64_t n;              /* non-null inputs (count: rows or values) */
    uint64_t isum;          /* sum of integers, wrapping */
    __int128 wide;          /* avg of integers: the exact sum */
    double sum, comp, simple; /* float/double: Kahan sum, its compensation, the plain sum */
    bool overflow;          /* float/double avg: the double sum overflowed */
    long double big;        /* ... and the sum is kept here instead */
    bnum num;               /* varint / decimal: the sum or the running avg */
    int32_t scale;          /* decimal: its scale */
    sib_buf best;           /* min/max: the best value so far */
} agg_acc;

struct grp_state {
    size_t nck;             /* clustering columns in the group key */
    bool by_key;            /* GROUP BY: the key has the partition key (+ nck) */
    bool open;              /* a group is open */
    bool any;               /* a group was opened (aggregates without GROUP BY) */
    int64_t ppl_left;       /* PER PARTITION LIMIT left once the open group opened */
    sib_buf key, nkey;      /* the open group's key, the current row's */
    sib_buf first;          /* the open group's first row: u32 cklen | ck | cells */
    agg_acc *acc;           /* per selector: its chain's aggregate */
    sib_buf tmp, val;
};

static int64_t get_int(const uint8_t *p, int32_t len)
{
    switch (len) {
    case 1: return (int8_t)p[0];
    case 2: return (int16_t)get_be16(p);
    case 4: return (int32_t)get_be32(p);
    case 8: return (int64_t)get_be64(p);
    default: return 0;
    }
}

static double get_fp(const sch_type *t, const uint8_t *p)
{
    if (t->code == SCH_T_FLOAT) {
        uint32_t u = get_be32(p);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    uint64_t u = get_be64(p);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static void acc_reset(agg_acc *a)
{
    bnum keep = a->num;
    sib_buf best = a->best;
    memset(a, 0, sizeof(*a));
    keep.n = 0;
    keep.neg = false;
    a->num = keep;
    sib_buf_reset(&best);
    a->best = best;
}

/* Aligns the accumulated decimal and x (unscaled, scale xs) to one scale:
 * the larger, as BigDecimal.add/subtract do. */
static int dec_align(agg_acc *a, bnum *x, int32_t xs, sib_err *err)
{
    int64_t gap = (int64_t)xs - a->scale;
    if (gap > GRP_MAX_SCALE_GAP || gap < -GRP_MAX_SCALE_GAP)
        return sib_err_set(err, SIB_EINVAL, "decimal scales too far apart to add exactly (%d and %d)", a->scale, xs);
    bool ok = gap > 0 ? bn_mul_pow10(&a->num, gap) : bn_mul_pow10(x, -gap);
    if (gap > 0) a->scale = xs;
    return ok ? 0 : oom(err);
}

/* decimal avg: avg += (x - avg) / count, rounded HALF_EVEN. */
static int dec_avg_step(agg_acc *a, bnum *x)
{
    if (!bn_add_signed(x, &a->num, !a->num.neg)) return SIB_ENOMEM; /* x - avg */
    uint64_t rem;
    bn_div_small(x, (uint64_t)a->n, &rem);
    bool up = rem > (uint64_t)a->n - rem || (rem == (uint64_t)a->n - rem && x->n && (x->l[0] & 1));
    if (up) {
        bnum one = {(uint32_t[]){1}, 1, 1, false};
        bool neg = x->neg;
        x->neg = false;
        if (!bn_add_signed(x, &one, false)) return SIB_ENOMEM;
        x->neg = neg && x->n;
    }
    return bn_add_signed(&a->num, x, x->neg) ? 0 : SIB_ENOMEM;
}

static int acc_exact(agg_acc *a, const sel_node *n, sch_val v, bnum *x, sib_err *err)
{
    bool dec = n->type->code == SCH_T_DECIMAL;
    if (dec && v.len < 5) return 0; /* not a decimal: nothing to add */
    int32_t xs = dec ? (int32_t)get_be32(v.p) : 0;
    if (!bn_from_be(x, v.p + (dec ? 4 : 0), (size_t)v.len - (dec ? 4 : 0))) return oom(err);
    int e = dec ? dec_align(a, x, xs, err) : 0;
    if (e) return e;
    if (n->agg == AGG_SUM || !dec) return bn_add_signed(&a->num, x, x->neg) ? 0 : oom(err);
    return dec_avg_step(a, x) ? oom(err) : 0;
}

static void acc_fp(agg_acc *a, bool avg, double x)
{
    if (a->overflow) {
        a->big += x;
        return;
    }
    double prev = a->sum;
    a->simple += x;
    double y = x - a->comp, t = a->sum + y;
    a->comp = (t - a->sum) - y;
    a->sum = t;
    if (avg && isinf(a->sum) && !isinf(x)) {
        a->overflow = true;
        a->big = (long double)prev + x;
    }
}

/* Adds one non-null input value to the accumulator of selector n; x is
 * scratch for the exact types. */
static int acc_add(agg_acc *a, const sel_node *n, sch_val v, bnum *x, sib_err *err)
{
    a->n++;
    if (n->kind == SN_COUNT) return 0;
    const sch_type *t = n->type;
    if (n->agg == AGG_MIN || n->agg == AGG_MAX) {
        if (a->n > 1) {
            int cmp = sch_value_compare(t, v.p, (size_t)v.len, a->best.p, a->best.len);
            if (n->agg == AGG_MIN ? cmp >= 0 : cmp <= 0) return 0;
        }
        sib_buf_reset(&a->best);
        sib_buf_append(&a->best, v.p, (size_t)v.len);
        return a->best.oom ? oom(err) : 0;
    }
    switch (t->code) {
    case SCH_T_FLOAT:
    case SCH_T_DOUBLE:
        if (v.len == (t->code == SCH_T_FLOAT ? 4 : 8)) acc_fp(a, n->agg == AGG_AVG, get_fp(t, v.p));
        return 0;
    case SCH_T_DECIMAL:
    case SCH_T_VARINT: return acc_exact(a, n, v, x, err);
    default: {
        int64_t i = get_int(v.p, v.len);
        a->isum += (uint64_t)i;
        a->wide += i;
        return 0;
    }
    }
}

/* Appends the result of selector n's accumulator to the row being built. */
static void acc_result(const agg_acc *a, const sel_node *n, sib_buf *row, sib_buf *tmp)
{
    uint8_t b[8];
    if (n->kind == SN_COUNT) {
        out_cell(row, put64(b, a->n));
        return;
    }
    if (n->agg == AGG_MIN || n->agg == AGG_MAX) {
        out_cell(row, a->n ? val_of(a->best.p ? a->best.p : (const uint8_t *)"", a->best.len) : val_null());
        return;
    }
    bool avg = n->agg == AGG_AVG;
    switch (n->type->code) {
    case SCH_T_FLOAT:
    case SCH_T_DOUBLE: {
        double r;
        if (avg && !a->n) r = 0;
        else if (a->overflow) r = (double)(a->big / a->n);
        else {
            /* the compensated sum; NaN from adding same-signed infinities
             * is the plain sum's infinity (as Cassandra corrects it) */
            r = a->sum + a->comp;
            if (isnan(r) && isinf(a->simple)) r = a->simple;
            if (avg) r /= (double)a->n;
        }
        if (n->type->code == SCH_T_FLOAT) {
            float f = (float)r;
            uint32_t u;
            memcpy(&u, &f, 4);
            put_be32(b, u);
            out_cell(row, val_of(b, 4));
        } else {
            uint64_t u;
            memcpy(&u, &r, 8);
            out_cell(row, put64(b, (int64_t)u));
        }
        return;
    }
    case SCH_T_DECIMAL:
    case SCH_T_VARINT: {
        sib_buf_reset(tmp);
        if (n->type->code == SCH_T_DECIMAL) sib_buf_be32(tmp, (uint32_t)a->scale);
        bnum q = a->num;
        bnum copy = {0};
        if (avg && n->type->code == SCH_T_VARINT && a->n) {
            uint64_t rem;
            if (!bn_copy(&copy, &a->num)) {
                tmp->oom = true;
            } else {
                bn_div_small(&copy, (uint64_t)a->n, &rem);
                q = copy;
            }
        }
        bn_to_be(&q, tmp);
        free(copy.l);
        out_cell(row, tmp->oom ? val_null() : val_of(tmp->p, tmp->len));
        row->oom |= tmp->oom;
        return;
    }
    default: {
        int64_t r = avg ? (a->n ? (int64_t)(a->wide / a->n) : 0) : (int64_t)a->isum;
        size_t w = n->type->code == SCH_T_TINYINT ? 1 : n->type->code == SCH_T_SMALLINT ? 2
                 : n->type->code == SCH_T_INT     ? 4 : 8;
        put_be64(b, (uint64_t)r);
        out_cell(row, val_of(b + 8 - w, w));
        return;
    }
    }
}

/* ---- groups ------------------------------------------------------------------ */


int group_init(sel_run *run, sib_err *err)
{
    run->grouping = run->sel.aggregate || run->s->ngroup;
    if (!run->grouping) return 0;
    struct grp_state *g = calloc(1, sizeof(*g));
    if (!g) return oom(err);
    run->grp = g;
    sib_buf_init(&g->key);
    sib_buf_init(&g->nkey);
    sib_buf_init(&g->first);
    sib_buf_init(&g->tmp);
    sib_buf_init(&g->val);
    g->acc = calloc(run->sel.n + 1, sizeof(*g->acc));
    if (!g->acc) return oom(err);
    for (size_t i = 0; i < run->sel.n; i++) sib_buf_init(&g->acc[i].best);
    return 0;
}

void group_free(sel_run *run)
{
    struct grp_state *g = run->grp;
    if (!g) return;
    for (size_t i = 0; g->acc && i < run->sel.n; i++) {
        sib_buf_free(&g->acc[i].best);
        free(g->acc[i].num.l);
    }
    free(g->acc);
    sib_buf_free(&g->key);
    sib_buf_free(&g->nkey);
    sib_buf_free(&g->first);
    sib_buf_free(&g->tmp);
    sib_buf_free(&g->val);
    free(g);
    run->grp = NULL;
}

/* Is column col restricted by `col = value` in WHERE (a GROUP BY may skip it)? */
static bool restricted_by_eq(const prs_select *s, const sch_column *col)
{
    for (size_t i = 0; i < s->nwhere; i++) {
        const prs_relation *r = &s->where[i];
        if (r->kind == PRS_REL_SINGLE && r->op == PRS_OP_EQ && r->ncols == 1 && !strcmp(r->cols[0], col->name))
            return true;
    }
    return false;
}

int check_group_by(sel_run *run, sib_err *err)
{
    const prs_select *s = run->s;
    if (!s->ngroup) return 0;
    static const char order[] =
        "Group by currently only support groups of columns following their declared order in the PRIMARY KEY";
    const sch_table *t = run->t;
    size_t npk = sch_table_pk_count(t), nkey = npk + sch_table_clustering_count(t), k = 0, nck = 0;
    for (size_t i = 0; i < s->ngroup; i++) {
        const sch_column *col = need_column(t, s->group_by[i], err);
        if (!col) return SIB_EINVAL;
        if (col->kind != SCH_COL_PARTITION_KEY && col->kind != SCH_COL_CLUSTERING)
            return sib_err_set(err, SIB_EINVAL,
                               "Group by is currently only supported on the columns of the PRIMARY KEY, got %s",
                               col->name);
        for (;;) { /* the key's columns up to col; skipped ones need `= value` */
            if (k == nkey) return sib_err_set(err, SIB_EINVAL, "%s", order);
            const sch_column *kc = k < npk ? sch_table_pk(t, k) : sch_table_clustering(t, k - npk);
            k++;
            if (k > npk) nck++;
            if (kc == col) break;
            if (!restricted_by_eq(s, kc)) return sib_err_set(err, SIB_EINVAL, "%s", order);
        }
    }
    if (k < npk) return sib_err_set(err, SIB_EINVAL, "Group by is not supported on only a part of the partition key");
    if (nck && run->distinct)
        return sib_err_set(err, SIB_EINVAL, "Grouping on clustering columns is not allowed for SELECT DISTINCT queries");
    run->grp->by_key = true;
    run->grp->nck = nck;
    return 0;
}

/* The group key of row rc into g->nkey: partition key values, then the
 * first nck clustering values (length-prefixed, compared bytewise). */
static int row_key(sel_run *run, row_ctx *rc, sib_err *err)
{
    struct grp_state *g = run->grp;
    sib_buf_reset(&g->nkey);
    if (!g->by_key) return 0;
    size_t npk = sch_table_pk_count(run->t);
    for (size_t k = 0; k < npk + g->nck; k++) {
        const sch_column *col = k < npk ? sch_table_pk(run->t, k) : sch_table_clustering(run->t, k - npk);
        sch_val v;
        int e = col_value(run, rc, col, &v, err);
        if (e) return e;
        out_cell(&g->nkey, v);
    }
    return g->nkey.oom ? oom(err) : 0;
}

/* Opens a group at row rc: its first row's plain values, fresh accumulators. */
static int group_open(sel_run *run, row_ctx *rc, sib_err *err)
{
    struct grp_state *g = run->grp;
    sib_buf_reset(&g->key);
    sib_buf_append(&g->key, g->nkey.p, g->nkey.len);
    sib_buf_reset(&g->first);
    const uint8_t *ck = run->post_order && rc->ck ? rc->ck : NULL;
    sib_buf_be32(&g->first, ck ? (uint32_t)rc->cklen : 0);
    if (ck) sib_buf_append(&g->first, ck, rc->cklen);
    for (size_t i = 0; i < run->sel.n; i++) {
        uint8_t tmp[16];
        sch_val v = val_null();
        acc_reset(&g->acc[i]);
        int e = sel_agg_node(run->sel.nodes[i]) ? 0 : eval(run, run->sel.nodes[i], rc, tmp, &v, err);
        if (e) return e;
        out_cell(&g->first, v);
    }
    g->open = g->any = true;
    return (g->key.oom || g->first.oom) ? oom(err) : 0;
}

/* Closes the open group into one output row. */
static int group_close(sel_run *run, sib_err *err)
{
    struct grp_state *g = run->grp;
    size_t off = run->out.len;
    sib_buf_append(&run->offs, &off, sizeof(off));
    const uint8_t *p = g->first.p;
    uint32_t cklen = get_be32(p);
    sib_buf_append(&run->out, p, 4 + cklen);
    p += 4 + cklen;
    for (size_t i = 0; i < run->sel.n; i++) {
        int32_t len = (int32_t)get_be32(p);
        const sel_node *top = run->sel.nodes[i], *agg = sel_agg_node(top);
        if (agg == top) {
            acc_result(&g->acc[i], top, &run->out, &g->tmp);
        } else if (agg) { /* a scalar function over the aggregate: evaluated now */
            uint8_t tmp[16];
            sch_val v;
            row_ctx none = {.ck = NULL};
            int e = eval(run, top, &none, tmp, &v, err);
            if (e) return e;
            out_cell(&run->out, v);
        } else {
            sib_buf_append(&run->out, p, 4 + (size_t)SIB_MAX(len, 0));
        }
        p += 4 + (size_t)SIB_MAX(len, 0);
    }
    g->open = false;
    run->nrows++;
    run->last_ppl_left = g->ppl_left;
    return (run->out.oom || run->offs.oom) ? oom(err) : 0;
}

/* Feeds row rc to the aggregates of the open group. */
static int group_add(sel_run *run, row_ctx *rc, sib_err *err)
{
    struct grp_state *g = run->grp;
    bnum x = {0};
    int e = 0;
    for (size_t i = 0; i < run->sel.n && !e; i++) {
        const sel_node *n = sel_agg_node(run->sel.nodes[i]);
        if (!n) continue;
        uint8_t tmp[16];
        sch_val v = val_of("", 0); /* count(*): every row counts */
        if (n->kind == SN_COUNT && n->col) e = col_value(run, rc, n->col, &v, err);
        else if (n->kind == SN_AGG) e = eval(run, n->arg, rc, tmp, &v, err);
        if (!e && v.len >= 0) e = acc_add(&g->acc[i], n, v, &x, err);
    }
    free(x.l);
    return e;
}

int group_row(sel_run *run, row_ctx *rc, uint64_t pk_index, sib_err *err)
{
    struct grp_state *g = run->grp;
    int e = row_key(run, rc, err);
    if (e) return e;
    bool same = g->open && g->nkey.len == g->key.len && (!g->key.len || !memcmp(g->nkey.p, g->key.p, g->key.len));
    if (!same) {
        if (g->open && (e = group_close(run, err))) return e;
        if (run->ppl_left == 0) return ROW_PARTITION_DONE;
        if (run->limit_left == 0) return ROW_STOP;
        if (run->page_size > 0 && run->nrows == (size_t)run->page_size) {
            run->more = true; /* the next group: the page gets a paging state */
            return ROW_STOP;
        }
        if ((e = group_open(run, rc, err))) return e;
        if (run->ppl_left > 0) run->ppl_left--;
        if (run->limit_left > 0) run->limit_left--;
        g->ppl_left = run->ppl_left;
    }
    if ((e = group_add(run, rc, err))) return e;
    note_last_row(run, rc, pk_index);
    return ROW_NEXT;
}

int group_agg_value(sel_run *run, const sel_node *n, sch_val *out, sib_err *err)
{
    struct grp_state *g = run->grp;
    *out = val_null();
    for (size_t i = 0; g && i < run->sel.n; i++) {
        if (sel_agg_node(run->sel.nodes[i]) != n) continue;
        sib_buf_reset(&g->val);
        acc_result(&g->acc[i], n, &g->val, &g->tmp);
        if (g->val.oom) return oom(err);
        int32_t len = (int32_t)get_be32(g->val.p);
        if (len >= 0) *out = val_of(g->val.p + 4, (size_t)len);
        return 0;
    }
    return 0;
}

int group_finish(sel_run *run, sib_err *err)
{
    struct grp_state *g = run->grp;
    if (g->open) return group_close(run, err);
    if (g->any || g->by_key) return 0;
    /* an aggregate without GROUP BY over no row still answers one row */
    sib_buf_reset(&g->first);
    sib_buf_be32(&g->first, 0);
    for (size_t i = 0; i < run->sel.n; i++) {
        acc_reset(&g->acc[i]);
        out_cell(&g->first, val_null());
    }
    g->open = g->any = true;
    return g->first.oom ? oom(err) : group_close(run, err);
}
