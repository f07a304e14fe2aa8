/* exec_select.c: SELECT on user tables and on system tables, with paging.
 *
 * A SELECT runs in four steps:
 *   1. selection: the selectors compile into small expression trees
 *      (sel_node): columns, WRITETIME/MAXWRITETIME/TTL, COUNT, token(),
 *      the time functions (now(), toTimestamp(x), ...), CAST and typed
 *      constants. exec_select_columns() exposes their names and types so a
 *      PREPARE reports exactly the columns a later EXECUTE returns;
 *   2. restrictions: exec_analyze_where() (exec_where.c) turns the WHERE
 *      clause into partition keys or a token range, clustering slices in
 *      storage order and filters. ORDER BY becomes a `reversed` read;
 *   3. rows: partitions are read in token order (IN lists are sorted by
 *      (token, key bytes) like Cassandra), each with st_read over the
 *      slices; filters run on every row, then PER PARTITION LIMIT, LIMIT
 *      and the page size. System tables are materialised first (they are
 *      small) and filtered with the same machinery;
 *   4. reply: a page is buffered (the paging state goes in the metadata,
 *      before the rows) and then streamed with cql_reply_rows_*.
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
 * seen: the last page never carries a paging state. Aggregates (COUNT) read
 * everything and answer in one page; IN + ORDER BY sorts in memory and so
 * cannot page (Cassandra's message).
 */
#define _GNU_SOURCE /* qsort_r */
#include "exec_int.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>

#define PS_VERSION 1
enum { PS_PARTITIONS = 1, PS_ROWINDEX = 2 };
#define PS_MAX_PK (1u << 20)

/* ---- small helpers ------------------------------------------------------ */

static int oom(sib_err *err) { return sib_err_set(err, SIB_ENOMEM, "out of memory"); }

static sib_val val_null(void)
{
    sib_val v = {NULL, -1};
    return v;
}

static sib_val val_of(const void *p, size_t n)
{
    sib_val v = {p, (int32_t)n};
    return v;
}

static char *arena_printf(exec_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *arena_printf(exec_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : sib_arena_alloc(c->arena, (size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Cassandra quotes names in messages only when they need it. */
static int undefined_column(const char *name, sib_err *err)
{
    sib_buf b;
    sib_buf_init(&b);
    sib_ident_quote(name, &b);
    sib_buf_u8(&b, 0);
    int rc = sib_err_set(err, SIB_EINVAL, "Undefined column name %s", b.oom ? name : (const char *)b.p);
    sib_buf_free(&b);
    return rc;
}

static const sib_column *need_column(const sib_table *t, const char *name, sib_err *err)
{
    const sib_column *col = sib_table_column_by_name(t, name);
    if (!col) undefined_column(name, err);
    return col;
}

/* Live cells of column `id` in a row: cells are sorted by (col, path). */
static const st_cell_view *row_cells(const st_row *row, uint32_t id, size_t *n)
{
    *n = 0;
    if (!row) return NULL;
    size_t i = 0;
    while (i < row->ncells && row->cells[i].col < id) i++;
    size_t j = i;
    while (j < row->ncells && row->cells[j].col == id) j++;
    *n = j - i;
    return *n ? &row->cells[i] : NULL;
}

/* A row whose only live cells belong to dropped columns does not exist for
 * CQL, just as Cassandra filters dropped columns out before liveness. */
static bool row_visible(const sib_table *t, const st_row *row)
{
    if (row->has_marker) return true;
    for (size_t i = 0; i < row->ncells; i++)
        if (sib_table_column_by_id(t, row->cells[i].col)) return true;
    return false;
}

int exec_collection_from_cells(const sib_column *col, const st_cell_view *cells, size_t n, sib_buf *out,
                               sib_err *err)
{
    bool is_map = col->type->code == SIB_T_MAP;
    sib_val *el = malloc(sizeof(*el) * n * (is_map ? 2 : 1));
    if (!el) return oom(err);
    for (size_t i = 0; i < n; i++) {
        if (!is_map) {
            el[i] = val_of(cells[i].val, cells[i].vlen);
            continue;
        }
        uint32_t klen = cells[i].vlen >= 4 ? get_be32(cells[i].val) : UINT32_MAX;
        if (klen > cells[i].vlen - 4 || klen > INT32_MAX) {
            free(el);
            return sib_err_set(err, SIB_ECORRUPT, "malformed map cell in column %s", col->name);
        }
        el[2 * i] = val_of(cells[i].val + 4, klen);
        el[2 * i + 1] = val_of(cells[i].val + 4 + klen, cells[i].vlen - 4 - klen);
    }
    int rc = sib_coll_build(col->type, el, n, out, err);
    free(el);
    return rc;
}

/* ---- selectors ------------------------------------------------------------ */

typedef enum {
    SN_COLUMN,
    SN_WRITETIME,
    SN_MAXWRITETIME,
    SN_TTL,
    SN_COUNT,  /* COUNT(*) (col NULL) or count(col): the only aggregate */
    SN_TOKEN,
    SN_FN,
    SN_CONST,
    SN_CAST,
} sn_kind;

typedef enum {
    FN_NOW, FN_CUR_TIMEUUID, FN_UUID, FN_CUR_TIMESTAMP, FN_CUR_DATE, FN_CUR_TIME,
    FN_TO_TIMESTAMP, FN_TO_UNIX_TIMESTAMP, FN_TO_DATE, FN_DATE_OF, FN_UNIX_TIMESTAMP_OF,
} fn_id;

enum { A_TIMEUUID = 1, A_DATE = 2, A_TIMESTAMP = 4 };

typedef struct fn_def {
    const char *name; /* Cassandra's native name (lower case) */
    fn_id id;
    int nargs;
    sib_type_code ret;
    unsigned args; /* A_* accepted argument types */
} fn_def;

static const fn_def fn_defs[] = {
    {"now", FN_NOW, 0, SIB_T_TIMEUUID, 0},
    {"currenttimeuuid", FN_CUR_TIMEUUID, 0, SIB_T_TIMEUUID, 0},
    {"uuid", FN_UUID, 0, SIB_T_UUID, 0},
    {"currenttimestamp", FN_CUR_TIMESTAMP, 0, SIB_T_TIMESTAMP, 0},
    {"currentdate", FN_CUR_DATE, 0, SIB_T_DATE, 0},
    {"currenttime", FN_CUR_TIME, 0, SIB_T_TIME, 0},
    {"totimestamp", FN_TO_TIMESTAMP, 1, SIB_T_TIMESTAMP, A_TIMEUUID | A_DATE},
    {"tounixtimestamp", FN_TO_UNIX_TIMESTAMP, 1, SIB_T_BIGINT, A_TIMEUUID | A_DATE | A_TIMESTAMP},
    {"todate", FN_TO_DATE, 1, SIB_T_DATE, A_TIMEUUID | A_TIMESTAMP},
    {"dateof", FN_DATE_OF, 1, SIB_T_TIMESTAMP, A_TIMEUUID},
    {"unixtimestampof", FN_UNIX_TIMESTAMP_OF, 1, SIB_T_BIGINT, A_TIMEUUID},
};

typedef struct sel_node {
    sn_kind kind;
    fn_id fn;
    const sib_column *col;  /* COLUMN, WRITETIME, MAXWRITETIME, TTL, count(col) */
    const sib_type *type;   /* result type */
    const char *name;       /* result name without alias */
    struct sel_node *arg;   /* FN / CAST argument */
    const cql_term *term;   /* CONST: the term under the type hint */
    sib_val cval;           /* CONST: evaluated once per statement */
} sel_node;

typedef struct sel_list {
    size_t n;
    sel_node **nodes;
    const char **names; /* alias or node name */
    const sib_type **types;
    bool aggregate;     /* a top-level COUNT */
} sel_list;

static unsigned arg_class(const sib_type *t)
{
    switch (t->code) {
    case SIB_T_TIMEUUID: return A_TIMEUUID;
    case SIB_T_DATE: return A_DATE;
    case SIB_T_TIMESTAMP: return A_TIMESTAMP;
    default: return 0;
    }
}

static bool is_number_type(sib_type_code c)
{
    return c == SIB_T_TINYINT || c == SIB_T_SMALLINT || c == SIB_T_INT || c == SIB_T_BIGINT ||
           c == SIB_T_COUNTER || c == SIB_T_FLOAT || c == SIB_T_DOUBLE;
}

/* CAST supports identity, numeric <-> numeric and anything -> text/ascii. */
static bool castable(const sib_type *from, sib_type_code to)
{
    if (from->code == to) return true;
    if (to == SIB_T_VARCHAR || to == SIB_T_ASCII) return true;
    return is_number_type(from->code) && is_number_type(to) && to != SIB_T_COUNTER;
}

static int resolve_typeref(exec_ctx *c, const cql_typeref *r, const sib_type **out, sib_err *err)
{
    const sib_type *subs[8];
    if (r->nsub > SIB_ARRAY_LEN(subs)) return sib_err_set(err, SIB_EINVAL, "Unsupported type %s", r->name);
    for (size_t i = 0; i < r->nsub; i++) {
        int rc = resolve_typeref(c, r->sub[i], &subs[i], err);
        if (rc) return rc;
    }
    return sib_type_resolve(sib_catalog_types(c->ex->cat), r->name, strlen(r->name), subs, r->nsub, out, err);
}

static int compile_sel(exec_ctx *c, const sib_table *t, const cql_selector *s, bool top, sel_node **out,
                       sib_err *err);

static int compile_pk_fn_args(exec_ctx *c, const sib_table *t, const cql_selector *s, sib_err *err)
{
    size_t npk = sib_table_pk_count(t);
    if (s->nargs != npk)
        return sib_err_set(err, SIB_EINVAL,
                           "Invalid number of arguments in call to function system.token: %zu required but %zu "
                           "provided",
                           npk, s->nargs);
    for (size_t i = 0; i < npk; i++) {
        const cql_selector *a = s->args[i];
        const sib_column *pk = sib_table_pk(t, i);
        if (a->kind != CQL_SEL_COLUMN) return sib_err_set(err, SIB_EINVAL, "Invalid arguments for function token");
        if (!need_column(t, a->column, err)) return SIB_EINVAL;
        if (strcmp(a->column, pk->name) != 0)
            return sib_err_set(err, SIB_EINVAL,
                               "The token function arguments must be in the partition key order: %s", a->text);
    }
    (void)c;
    return 0;
}

/* Joins the argument names: "system.f(a, b)". */
static const char *fn_name(exec_ctx *c, const char *fname, sel_node **args, size_t n)
{
    sib_buf b;
    sib_buf_init(&b);
    sib_buf_printf(&b, "system.%s(", fname);
    for (size_t i = 0; i < n; i++) sib_buf_printf(&b, "%s%s", i ? ", " : "", args[i]->name);
    sib_buf_append(&b, ")", 2);
    char *s = b.oom ? NULL : sib_arena_strdup(c->arena, (const char *)b.p);
    sib_buf_free(&b);
    return s;
}

static int compile_fn(exec_ctx *c, const sib_table *t, const cql_selector *s, sel_node *n, sib_err *err)
{
    const char *f = s->func_name;
    if (s->func_ks && strcmp(s->func_ks, "system") != 0)
        return sib_err_set(err, SIB_EINVAL, "Unknown function '%s.%s'", s->func_ks, f);
    if (strcmp(f, "token") == 0) {
        int rc = compile_pk_fn_args(c, t, s, err);
        if (rc) return rc;
        n->kind = SN_TOKEN;
        n->type = sib_type_native(SIB_T_BIGINT);
        sib_buf b;
        sib_buf_init(&b);
        sib_buf_printf(&b, "system.token(");
        for (size_t i = 0; i < s->nargs; i++) sib_buf_printf(&b, "%s%s", i ? ", " : "", s->args[i]->column);
        sib_buf_append(&b, ")", 2);
        n->name = b.oom ? NULL : sib_arena_strdup(c->arena, (const char *)b.p);
        sib_buf_free(&b);
        return n->name ? 0 : oom(err);
    }
    if (strcmp(f, "count") == 0) {
        if (s->nargs != 1 || s->args[0]->kind != CQL_SEL_COLUMN)
            return sib_err_set(err, SIB_EINVAL, "Invalid arguments for function count");
        n->kind = SN_COUNT;
        if (!(n->col = need_column(t, s->args[0]->column, err))) return SIB_EINVAL;
        n->type = sib_type_native(SIB_T_BIGINT);
        n->name = arena_printf(c, "system.count(%s)", n->col->name);
        return n->name ? 0 : oom(err);
    }
    const fn_def *d = NULL;
    for (size_t i = 0; i < SIB_ARRAY_LEN(fn_defs); i++)
        if (strcmp(fn_defs[i].name, f) == 0) d = &fn_defs[i];
    if (!d) return sib_err_set(err, SIB_EINVAL, "Unknown function '%s'", f);
    if ((size_t)d->nargs != s->nargs)
        return sib_err_set(err, SIB_EINVAL,
                           "Invalid number of arguments in call to function system.%s: %d required but %zu provided",
                           d->name, d->nargs, s->nargs);
    n->kind = SN_FN;
    n->fn = d->id;
    n->type = sib_type_native(d->ret);
    if (d->nargs) {
        int rc = compile_sel(c, t, s->args[0], false, &n->arg, err);
        if (rc) return rc;
        if (!(arg_class(n->arg->type) & d->args))
            return sib_err_set(err, SIB_EINVAL,
                               "Type error: %s cannot be passed as argument 0 of function system.%s of type %s",
                               s->args[0]->text, d->name,
                               (d->args & A_TIMEUUID) ? "timeuuid" : (d->args & A_DATE) ? "date" : "timestamp");
    }
    n->name = fn_name(c, d->name, &n->arg, (size_t)d->nargs);
    return n->name ? 0 : oom(err);
}

static int compile_column_fn(const sib_table *t, const cql_selector *s, sel_node *n, exec_ctx *c, sib_err *err)
{
    static const char *const fname[] = {[SN_WRITETIME] = "writeTime", [SN_MAXWRITETIME] = "maxwritetime",
                                        [SN_TTL] = "ttl"};
    static const char *const rname[] = {[SN_WRITETIME] = "writetime", [SN_MAXWRITETIME] = "maxwritetime",
                                        [SN_TTL] = "ttl"};
    n->kind = s->kind == CQL_SEL_WRITETIME ? SN_WRITETIME : s->kind == CQL_SEL_TTL ? SN_TTL : SN_MAXWRITETIME;
    if (!(n->col = need_column(t, s->column, err))) return SIB_EINVAL;
    if (n->col->kind == SIB_COL_PARTITION_KEY || n->col->kind == SIB_COL_CLUSTERING)
        return sib_err_set(err, SIB_EINVAL, "Cannot use selection function %s on PRIMARY KEY part %s", fname[n->kind],
                           n->col->name);
    if (n->kind != SN_MAXWRITETIME && sib_type_is_multicell(n->col->type))
        return sib_err_set(err, SIB_EINVAL, "Cannot use selection function %s on non-frozen collection %s",
                           fname[n->kind], n->col->name);
    n->type = sib_type_native(n->kind == SN_TTL ? SIB_T_INT : SIB_T_BIGINT);
    n->name = arena_printf(c, "%s(%s)", rname[n->kind], n->col->name);
    return n->name ? 0 : oom(err);
}

static int compile_sel(exec_ctx *c, const sib_table *t, const cql_selector *s, bool top, sel_node **out,
                       sib_err *err)
{
    sel_node *n = sib_arena_alloc(c->arena, sizeof(*n));
    if (!n) return oom(err);
    memset(n, 0, sizeof(*n));
    *out = n;
    int rc = 0;
    switch (s->kind) {
    case CQL_SEL_COLUMN:
        n->kind = SN_COLUMN;
        if (!(n->col = need_column(t, s->column, err))) return SIB_EINVAL;
        n->type = n->col->type;
        n->name = n->col->name;
        break;
    case CQL_SEL_WRITETIME:
    case CQL_SEL_MAXWRITETIME:
    case CQL_SEL_TTL:
        rc = compile_column_fn(t, s, n, c, err);
        break;
    case CQL_SEL_COUNT:
        n->kind = SN_COUNT;
        n->type = sib_type_native(SIB_T_BIGINT);
        n->name = "count";
        break;
    case CQL_SEL_FUNC:
        rc = compile_fn(c, t, s, n, err);
        break;
    case CQL_SEL_CAST: {
        const sib_type *to;
        if ((rc = compile_sel(c, t, s->args[0], false, &n->arg, err))) return rc;
        if ((rc = resolve_typeref(c, s->type, &to, err))) return rc;
        if (!castable(n->arg->type, to->code)) {
            sib_buf b;
            sib_buf_init(&b);
            sib_type_cql_name(n->arg->type, &b);
            sib_buf_u8(&b, 0);
            rc = sib_err_set(err, SIB_EINVAL, "%s cannot be cast to %s", b.oom ? "?" : (const char *)b.p,
                             sib_type_native_name(to->code));
            sib_buf_free(&b);
            return rc;
        }
        n->kind = SN_CAST;
        n->type = to;
        n->name = arena_printf(c, "cast(%s as %s)", n->arg->name, sib_type_native_name(to->code));
        break;
    }
    case CQL_SEL_TERM:
        if (s->term->kind != CQL_TERM_TYPEHINT)
            return sib_err_set(err, SIB_EINVAL,
                               "Cannot infer type for term %s in selection clause (try using a cast to force a type)",
                               s->text);
        n->kind = SN_CONST;
        n->term = s->term->cast.term;
        n->name = s->text;
        n->cval = val_null();
        rc = resolve_typeref(c, s->term->cast.type, &n->type, err);
        break;
    }
    if (rc) return rc;
    if (n->kind == SN_COUNT && !top)
        return sib_err_set(err, SIB_EINVAL, "Aggregate functions cannot be used as arguments of other functions");
    return n->name ? 0 : oom(err);
}

static int compile_selection(exec_ctx *c, const sib_table *t, const cql_select *s, sel_list *out, sib_err *err)
{
    memset(out, 0, sizeof(*out));
    size_t n = s->star ? sib_table_column_count(t) : s->nsel;
    out->n = n;
    out->nodes = sib_arena_alloc(c->arena, sizeof(*out->nodes) * (n ? n : 1));
    out->names = sib_arena_alloc(c->arena, sizeof(*out->names) * (n ? n : 1));
    out->types = sib_arena_alloc(c->arena, sizeof(*out->types) * (n ? n : 1));
    if (!out->nodes || !out->names || !out->types) return oom(err);
    for (size_t i = 0; i < n; i++) {
        sel_node *node;
        if (s->star) {
            node = sib_arena_alloc(c->arena, sizeof(*node));
            if (!node) return oom(err);
            memset(node, 0, sizeof(*node));
            node->kind = SN_COLUMN;
            node->col = sib_table_column(t, i);
            node->type = node->col->type;
            node->name = node->col->name;
        } else {
            int rc = compile_sel(c, t, &s->sel[i], true, &node, err);
            if (rc) return rc;
        }
        out->nodes[i] = node;
        out->names[i] = (!s->star && s->sel[i].alias) ? s->sel[i].alias : node->name;
        out->types[i] = node->type;
        if (node->kind == SN_COUNT) out->aggregate = true;
    }
    return 0;
}

int exec_select_columns(exec_ctx *c, const sib_table *t, const cql_select *s, size_t *ncols, const char ***names,
                        const sib_type ***types, sib_err *err)
{
    sel_list l;
    int rc = compile_selection(c, t, s, &l, err);
    if (rc) return rc;
    *ncols = l.n;
    *names = l.names;
    *types = l.types;
    return 0;
}

/* Typed constants are evaluated once, before any row is read. */
static int prepare_consts(exec_ctx *c, sel_node *n, sib_err *err)
{
    if (!n) return 0;
    if (n->kind == SN_CONST) {
        int rc = exec_term_value(c, n->term, n->type, n->name, &n->cval, NULL, err);
        if (rc) return rc;
    }
    return prepare_consts(c, n->arg, err);
}

/* Columns a selector reads (DISTINCT validation). */
static const sib_column *sel_first_non_key(const sel_node *n)
{
    if (!n) return NULL;
    if (n->col && n->col->kind != SIB_COL_PARTITION_KEY && n->col->kind != SIB_COL_STATIC) return n->col;
    return sel_first_non_key(n->arg);
}

static bool sel_uses_column(const sel_node *n, const sib_column *col)
{
    if (!n) return false;
    if (n->kind == SN_COLUMN && n->col == col) return true;
    return sel_uses_column(n->arg, col);
}

/* ---- a running SELECT ------------------------------------------------------ */

typedef struct pstate {
    bool present;
    uint8_t kind;
    uint64_t pk_index;  /* position in the sorted IN list */
    sib_val pk;
    bool in_partition;
    sib_val ck;
    int64_t limit_left; /* -1 = no LIMIT */
    int64_t ppl_left;   /* -1 = no PER PARTITION LIMIT */
    uint64_t row_index;
} pstate;

typedef struct sel_run {
    exec_ctx *c;
    const sib_table *t;
    const cql_select *s;
    sel_list sel;
    exec_filter *filters;
    size_t nfilters;
    bool distinct, reversed, post_order;
    int64_t ppl;        /* PER PARTITION LIMIT, -1 = none */
    int32_t page_size;  /* <= 0: no paging */
    pstate ps;          /* where this page starts (ps.present = resuming) */
    /* progress */
    int64_t limit_left, ppl_left;
    int64_t last_ppl_left; /* ppl_left right after the last emitted row */
    size_t nrows;
    bool more, stop;
    sib_buf out;        /* rows: u32 cklen | ck | ncols * (i32 len | bytes) */
    sib_buf offs;       /* size_t offset of each row in out */
    /* last emitted row, for the next paging state */
    sib_buf last_pk, last_ck;
    bool last_in_partition;
    uint64_t last_pk_index;
    /* aggregates */
    int64_t *counts;    /* per selector */
    bool have_first;
    /* scratch */
    sib_buf coll, text;
    sib_buf *ckv;       /* decoded clustering values (malloc'd, nck of them) */
    size_t nck;
    sib_val *pkv;
} sel_run;

/* One row as the evaluator sees it. */
typedef struct row_ctx {
    const uint8_t *pk;      /* serialized partition key (NULL for system rows) */
    size_t pklen;
    const sib_val *pkv;     /* partition key values */
    const uint8_t *ck;      /* encoded clustering key (NULL: static-only row) */
    size_t cklen;
    bool ck_decoded;
    size_t nck;
    const st_row *row, *srow;
    const sib_val *allv;    /* system rows: a value per table column */
} row_ctx;

static int decode_ck(sel_run *run, row_ctx *rc, sib_err *err)
{
    if (rc->ck_decoded) return 0;
    rc->ck_decoded = true;
    rc->nck = 0;
    if (!rc->ck || !sib_table_clustering_count(run->t)) return 0;
    return sib_ck_decode(run->t, rc->ck, rc->cklen, run->ckv, &rc->nck, err);
}

/* The value of a column in the current row; collections are rebuilt from
 * their cells into run->coll (valid until the next collection value). */
static int col_value(sel_run *run, row_ctx *rc, const sib_column *col, sib_val *out, sib_err *err)
{
    *out = val_null();
    if (rc->allv) {
        *out = rc->allv[col->index];
        return 0;
    }
    if (col->kind == SIB_COL_PARTITION_KEY) {
        *out = rc->pkv[col->position];
        return 0;
    }
    if (col->kind == SIB_COL_CLUSTERING) {
        int e = decode_ck(run, rc, err);
        if (e) return e;
        if ((size_t)col->position < rc->nck)
            *out = val_of(run->ckv[col->position].p ? run->ckv[col->position].p : (const uint8_t *)"",
                          run->ckv[col->position].len);
        return 0;
    }
    size_t n;
    const st_cell_view *cells = row_cells(col->kind == SIB_COL_STATIC ? rc->srow : rc->row, col->id, &n);
    if (!n) return 0;
    if (!sib_type_is_multicell(col->type)) {
        *out = val_of(cells[0].val, cells[0].vlen);
        return 0;
    }
    sib_buf_reset(&run->coll);
    int e = exec_collection_from_cells(col, cells, n, &run->coll, err);
    if (e) return e;
    if (run->coll.oom) return oom(err);
    *out = val_of(run->coll.p, run->coll.len);
    return 0;
}

static int64_t timeuuid_ms(const uint8_t *u)
{
    uint64_t ticks = (uint64_t)(get_be16(u + 6) & 0x0fff) << 48 | (uint64_t)get_be16(u + 4) << 32 | get_be32(u);
    /* 100ns ticks since 1582-10-15 -> ms since 1970 */
    return ((int64_t)ticks - 0x01B21DD213814000LL) / 10000;
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

/* The argument of a time function as milliseconds since the epoch. */
static bool time_arg_ms(const sib_type *t, sib_val v, int64_t *ms)
{
    if (t->code == SIB_T_TIMEUUID && v.len == 16) *ms = timeuuid_ms(v.p);
    else if (t->code == SIB_T_TIMESTAMP && v.len == 8) *ms = (int64_t)get_be64(v.p);
    else if (t->code == SIB_T_DATE && v.len == 4) *ms = ((int64_t)get_be32(v.p) - (1LL << 31)) * 86400000LL;
    else return false;
    return true;
}

static sib_val put64(uint8_t *tmp, int64_t v)
{
    put_be64(tmp, (uint64_t)v);
    return val_of(tmp, 8);
}

static sib_val put32(uint8_t *tmp, int64_t v)
{
    put_be32(tmp, (uint32_t)v);
    return val_of(tmp, 4);
}

static sib_val date_of_ms(uint8_t *tmp, int64_t ms) { return put32(tmp, floor_div(ms, 86400000LL) + (1LL << 31)); }

static sib_val eval_fn(sel_run *run, const sel_node *n, sib_val a, uint8_t *tmp)
{
    exec_ctx *c = run->c;
    int64_t ms;
    switch (n->fn) {
    case FN_NOW:
    case FN_CUR_TIMEUUID: sib_timeuuid_next(&c->ex->tug, tmp); return val_of(tmp, 16);
    case FN_UUID: sib_uuid_v4(&c->ex->rng, tmp); return val_of(tmp, 16);
    case FN_CUR_TIMESTAMP: return put64(tmp, floor_div(c->now_us, 1000));
    case FN_CUR_DATE: return date_of_ms(tmp, floor_div(c->now_us, 1000));
    case FN_CUR_TIME: return put64(tmp, (c->now_us - floor_div(c->now_us, 86400000000LL) * 86400000000LL) * 1000);
    default: break;
    }
    if (a.len <= 0 || !time_arg_ms(n->arg->type, a, &ms)) return val_null();
    switch (n->fn) {
    case FN_TO_TIMESTAMP:
    case FN_DATE_OF: return put64(tmp, ms);
    case FN_TO_UNIX_TIMESTAMP:
    case FN_UNIX_TIMESTAMP_OF: return put64(tmp, ms);
    case FN_TO_DATE: return date_of_ms(tmp, ms);
    default: return val_null();
    }
}

/* Reads a numeric value as int64 and double. */
static bool num_get(sib_type_code code, sib_val v, int64_t *i, double *d, bool *is_float)
{
    *is_float = false;
    switch (code) {
    case SIB_T_TINYINT: if (v.len != 1) return false; *i = (int8_t)v.p[0]; break;
    case SIB_T_SMALLINT: if (v.len != 2) return false; *i = (int16_t)get_be16(v.p); break;
    case SIB_T_INT: if (v.len != 4) return false; *i = (int32_t)get_be32(v.p); break;
    case SIB_T_BIGINT:
    case SIB_T_COUNTER: if (v.len != 8) return false; *i = (int64_t)get_be64(v.p); break;
    case SIB_T_FLOAT: {
        if (v.len != 4) return false;
        uint32_t u = get_be32(v.p);
        float f;
        memcpy(&f, &u, 4);
        *d = f;
        *is_float = true;
        break;
    }
    case SIB_T_DOUBLE: {
        if (v.len != 8) return false;
        uint64_t u = get_be64(v.p);
        memcpy(d, &u, 8);
        *is_float = true;
        break;
    }
    default: return false;
    }
    if (!*is_float) *d = (double)*i;
    else *i = (*d != *d) ? 0 : *d >= 9.2e18 ? INT64_MAX : *d <= -9.2e18 ? INT64_MIN : (int64_t)*d;
    return true;
}

static sib_val num_put(sib_type_code code, int64_t i, double d, uint8_t *tmp)
{
    switch (code) {
    case SIB_T_TINYINT: tmp[0] = (uint8_t)i; return val_of(tmp, 1);
    case SIB_T_SMALLINT: put_be16(tmp, (uint16_t)i); return val_of(tmp, 2);
    case SIB_T_INT: return put32(tmp, i);
    case SIB_T_FLOAT: {
        float f = (float)d;
        uint32_t u;
        memcpy(&u, &f, 4);
        put_be32(tmp, u);
        return val_of(tmp, 4);
    }
    case SIB_T_DOUBLE: {
        uint64_t u;
        memcpy(&u, &d, 8);
        put_be64(tmp, u);
        return val_of(tmp, 8);
    }
    default: return put64(tmp, i);
    }
}

static sib_val eval_cast(sel_run *run, const sel_node *n, sib_val a, uint8_t *tmp)
{
    if (a.len < 0 || n->arg->type->code == n->type->code) return a;
    if (n->type->code == SIB_T_VARCHAR || n->type->code == SIB_T_ASCII) {
        sib_buf_reset(&run->text);
        if (n->arg->type->code == SIB_T_VARCHAR || n->arg->type->code == SIB_T_ASCII)
            sib_buf_append(&run->text, a.p, (size_t)a.len);
        else
            sib_value_format(n->arg->type, a.p, (size_t)a.len, &run->text);
        return run->text.oom ? val_null() : val_of(run->text.p ? run->text.p : (const uint8_t *)"", run->text.len);
    }
    int64_t i;
    double d;
    bool is_float;
    if (!num_get(n->arg->type->code, a, &i, &d, &is_float)) return val_null();
    return num_put(n->type->code, i, d, tmp);
}

/* Evaluates a scalar selector; tmp (16 bytes) holds small results. */
static int eval(sel_run *run, const sel_node *n, row_ctx *rc, uint8_t *tmp, sib_val *out, sib_err *err)
{
    uint8_t atmp[16];
    sib_val a = val_null();
    size_t nc;
    const st_cell_view *cells;
    int e;
    *out = val_null();
    switch (n->kind) {
    case SN_COLUMN: return col_value(run, rc, n->col, out, err);
    case SN_CONST: *out = n->cval; return 0;
    case SN_COUNT: return 0; /* aggregates are filled in by the caller */
    case SN_TOKEN:
        if (rc->pk) {
            *out = put64(tmp, sib_murmur3_token(rc->pk, rc->pklen));
        } else { /* system rows: build the key from the pk columns */
            const uint8_t *vals[16];
            size_t lens[16], npk = sib_table_pk_count(run->t);
            for (size_t i = 0; i < npk && i < 16; i++) {
                sib_val v = rc->allv[sib_table_pk(run->t, i)->index];
                vals[i] = v.p;
                lens[i] = v.len < 0 ? 0 : (size_t)v.len;
            }
            sib_buf_reset(&run->text);
            if (npk <= 16 && sib_pk_encode(run->t, vals, lens, npk, &run->text, NULL) == 0)
                *out = put64(tmp, sib_murmur3_token(run->text.p, run->text.len));
        }
        return 0;
    case SN_WRITETIME:
    case SN_MAXWRITETIME:
    case SN_TTL:
        if (rc->allv) return 0;
        cells = row_cells(n->col->kind == SIB_COL_STATIC ? rc->srow : rc->row, n->col->id, &nc);
        if (!nc) return 0;
        if (n->kind == SN_TTL) {
            if (cells[0].ttl > 0) *out = put32(tmp, (int64_t)cells[0].expiry - run->c->now_s);
            return 0;
        }
        int64_t ts = cells[0].ts;
        for (size_t i = 1; i < nc; i++) ts = SIB_MAX(ts, cells[i].ts);
        *out = put64(tmp, ts);
        return 0;
    case SN_FN:
        if (n->arg && (e = eval(run, n->arg, rc, atmp, &a, err))) return e;
        *out = eval_fn(run, n, a, tmp);
        if (out->p == atmp) *out = val_of(memcpy(tmp, atmp, (size_t)out->len), (size_t)out->len);
        return 0;
    case SN_CAST:
        if ((e = eval(run, n->arg, rc, atmp, &a, err))) return e;
        *out = eval_cast(run, n, a, tmp);
        if (out->p == atmp) *out = val_of(memcpy(tmp, atmp, (size_t)out->len), (size_t)out->len);
        return 0;
    }
    return 0;
}

/* ---- output rows ---------------------------------------------------------- */

static void out_cell(sib_buf *b, sib_val v)
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
        sib_val v;
        int e = eval(run, run->sel.nodes[i], rc, tmp, &v, err);
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
        sib_val v;
        int e = col_value(run, rc, run->filters[i].col, &v, err);
        if (e) return e;
        *ok = exec_filter_match(&run->filters[i], v.p, v.len);
    }
    return 0;
}

/* Aggregate queries: count, and keep the first row's plain values. */
static int aggregate_row(sel_run *run, row_ctx *rc, sib_err *err)
{
    for (size_t i = 0; i < run->sel.n; i++) {
        const sel_node *n = run->sel.nodes[i];
        if (n->kind != SN_COUNT) continue;
        sib_val v = val_of("", 0);
        if (n->col) {
            int e = col_value(run, rc, n->col, &v, err);
            if (e) return e;
        }
        if (v.len >= 0) run->counts[i]++;
    }
    if (run->have_first) return 0;
    run->have_first = true;
    return emit_values(run, rc, err);
}

enum { ROW_NEXT = 0, ROW_STOP = 1, ROW_PARTITION_DONE = 2 };

/* Decides what happens to one candidate row. Returns ROW_* or < 0. */
static int on_row(sel_run *run, row_ctx *rc, uint64_t pk_index, sib_err *err)
{
    bool ok;
    int e = filters_match(run, rc, &ok, err);
    if (e) return e;
    if (!ok) return ROW_NEXT;
    if (run->ppl_left == 0) return ROW_PARTITION_DONE;
    if (run->sel.aggregate) {
        if ((e = aggregate_row(run, rc, err))) return e;
        if (run->ppl_left > 0) run->ppl_left--;
        return ROW_NEXT;
    }
    if (run->page_size > 0 && run->nrows == (size_t)run->page_size) {
        run->more = true; /* a further row exists: the page gets a paging state */
        return ROW_STOP;
    }
    if ((e = emit_values(run, rc, err))) return e;
    sib_buf_reset(&run->last_pk);
    sib_buf_reset(&run->last_ck);
    if (rc->pk) sib_buf_append(&run->last_pk, rc->pk, rc->pklen);
    /* without clustering columns a partition is one row: resume at the next */
    run->last_in_partition = rc->ck != NULL && !run->distinct && sib_table_clustering_count(run->t) > 0;
    if (run->last_in_partition) sib_buf_append(&run->last_ck, rc->ck, rc->cklen);
    run->last_pk_index = pk_index;
    if (run->ppl_left > 0) run->ppl_left--;
    /* The paging state resumes in the partition of the LAST EMITTED row, so it
     * must carry that partition's remaining count, not the one of a partition
     * read afterwards without emitting. */
    run->last_ppl_left = run->ppl_left;
    if (run->limit_left > 0 && --run->limit_left == 0) return ROW_STOP;
    return ROW_NEXT;
}

/* ---- paging state ---------------------------------------------------------- */

static int ps_invalid(sib_err *err) { return sib_err_set(err, SIB_EINVAL, "Invalid value for the paging state"); }

static void ps_encode_partitions(sel_run *run, sib_buf *b)
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

static void ps_encode_rowindex(uint64_t next, int64_t limit_left, sib_buf *b)
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

static bool rd_blob(sib_rd *r, size_t max, sib_val *out)
{
    uint64_t n;
    const uint8_t *p;
    if (!sib_rd_uvarint(r, &n) || n > max || !sib_rd_bytes(r, (size_t)n, &p)) return false;
    *out = val_of(p, (size_t)n);
    return true;
}

/* Decodes the client's paging state (if any) into run->ps; `kind` is what
 * this query produces, anything else is a state from another query. */
static int ps_decode(const cql_params *params, uint8_t kind, pstate *ps, sib_err *err)
{
    memset(ps, 0, sizeof(*ps));
    ps->limit_left = ps->ppl_left = -1;
    if (!params || params->paging_state.len < 0) return 0;
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
             inp <= 1 && (!inp || rd_blob(&r, ST_MAX_KEY_LEN, &ps->ck)) && rd_limit(&r, &ps->limit_left) &&
             rd_limit(&r, &ps->ppl_left);
        ps->in_partition = inp;
    }
    if (!ok || sib_rd_left(&r) != 0 || ps->limit_left == 0) return ps_invalid(err);
    ps->present = true;
    ps->kind = kind;
    return 0;
}

/* ---- user tables: partitions and rows -------------------------------------- */

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
static size_t cut_slices(const st_slice *in, size_t n, const uint8_t *ck, size_t cl, bool reversed, st_slice *out)
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

/* The static row's views die at the next st_iter_next: keep a copy. */
static int copy_row(sib_buf *b, const st_row *in, st_row *out, sib_err *err)
{
    sib_buf_reset(b);
    size_t need = in->ncells * sizeof(st_cell_view);
    for (size_t i = 0; i < in->ncells; i++) need += in->cells[i].vlen + in->cells[i].pathlen;
    if (!sib_buf_reserve(b, need + 1)) return oom(err);
    st_cell_view *cells = (st_cell_view *)b->p;
    uint8_t *data = b->p + in->ncells * sizeof(st_cell_view);
    *out = *in;
    for (size_t i = 0; i < in->ncells; i++) {
        cells[i] = in->cells[i];
        if (in->cells[i].vlen) memcpy(data, in->cells[i].val, in->cells[i].vlen);
        cells[i].val = data;
        data += in->cells[i].vlen;
        if (in->cells[i].pathlen) memcpy(data, in->cells[i].path, in->cells[i].pathlen);
        cells[i].path = in->cells[i].pathlen ? data : NULL;
        data += in->cells[i].pathlen;
    }
    b->len = need;
    out->cells = cells;
    return 0;
}

typedef struct part_read {
    st_table *store;
    const exec_restr *r;
    st_slice *cut;      /* room for r->nslices (or 1) slices */
    sib_buf static_copy;
} part_read;

static int read_distinct(sel_run *run, part_read *pr, row_ctx *rc, uint64_t pk_index, sib_err *err)
{
    /* scans only meet live partitions, but an IN list may name absent ones */
    if (!st_partition_live(pr->store, rc->pk, rc->pklen, run->c->now_s)) return 0;
    st_iter *it = st_read(pr->store, rc->pk, rc->pklen, NULL, 0, false, run->c->now_s);
    if (!it) return oom(err);
    st_row srow, scopy;
    int e = 0;
    if (sib_table_has_static(run->t) && st_iter_static(it, &srow) && row_visible(run->t, &srow)) {
        if (!(e = copy_row(&pr->static_copy, &srow, &scopy, err))) rc->srow = &scopy;
    }
    st_iter_destroy(it);
    if (e) return e;
    int x = on_row(run, rc, pk_index, err);
    if (x < 0) return x;
    if (x == ROW_STOP) run->stop = true;
    return 0;
}

/* Reads one partition through the slices, row by row into on_row(). */
static int read_partition(sel_run *run, part_read *pr, const uint8_t *pk, size_t pklen, uint64_t pk_index,
                          bool resume, sib_err *err)
{
    const sib_table *t = run->t;
    int e = sib_pk_decode(t, pk, pklen, run->pkv, sib_table_pk_count(t), err);
    if (e) return e;
    row_ctx rc = {.pk = pk, .pklen = pklen, .pkv = run->pkv};
    run->ppl_left = resume ? run->ps.ppl_left : run->ppl;
    if (run->distinct) return read_distinct(run, pr, &rc, pk_index, err);

    const st_slice *slices = pr->r->slices;
    size_t nslices = pr->r->nslices;
    if (resume) {
        nslices = cut_slices(slices, nslices, run->ps.ck.p, (size_t)run->ps.ck.len, run->reversed, pr->cut);
        slices = pr->cut;
        if (nslices == 0) return 0;
    }
    st_iter *it = st_read(pr->store, pk, pklen, slices, nslices, run->reversed, run->c->now_s);
    if (!it) return oom(err);
    st_row row, srow, scopy;
    bool has_static = false, any = false;
    if (sib_table_has_static(t) && st_iter_static(it, &srow) && row_visible(t, &srow)) {
        if ((e = copy_row(&pr->static_copy, &srow, &scopy, err))) goto out;
        has_static = true;
        rc.srow = &scopy;
    }
    bool ended = true;
    while (st_iter_next(it, &row)) {
        if (!row_visible(t, &row)) continue;
        any = true;
        rc.row = &row;
        rc.ck = row.ck ? row.ck : (const uint8_t *)"";
        rc.cklen = row.cklen;
        rc.ck_decoded = false;
        int x = on_row(run, &rc, pk_index, err);
        if (x < 0) { e = x; goto out; }
        if (x == ROW_STOP) run->stop = true;
        if (x != ROW_NEXT) { ended = false; break; }
    }
    if (ended && (e = st_iter_status(it, err))) goto out;
    /* A partition with only static content still shows up as one row
     * (clustering and regular columns null) unless clustering is restricted. */
    if (!any && has_static && !resume && pr->r->nslices == 0 && !run->stop) {
        rc.row = NULL;
        rc.ck = NULL;
        rc.ck_decoded = false;
        int x = on_row(run, &rc, pk_index, err);
        if (x < 0) e = x;
        else if (x == ROW_STOP) run->stop = true;
    }
out:
    st_iter_destroy(it);
    return e;
}

typedef struct pk_ent {
    sib_val pk;
    int64_t token;
} pk_ent;

static int pk_ent_cmp(const void *a, const void *b)
{
    const pk_ent *x = a, *y = b;
    if (x->token != y->token) return x->token < y->token ? -1 : 1;
    size_t m = SIB_MIN((size_t)x->pk.len, (size_t)y->pk.len);
    int c = m ? memcmp(x->pk.p, y->pk.p, m) : 0;
    return c ? c : (x->pk.len > y->pk.len) - (x->pk.len < y->pk.len);
}

static bool token_in_range(const exec_restr *r, int64_t tok)
{
    if (!r->token_restricted) return true;
    if (tok < r->token_start || (tok == r->token_start && !r->token_start_incl)) return false;
    return tok < r->token_end || (tok == r->token_end && r->token_end_incl);
}

/* Partition keys from EQ/IN, read in token order like Cassandra. */
static int read_pk_list(sel_run *run, part_read *pr, sib_err *err)
{
    const exec_restr *r = pr->r;
    pk_ent *ents = sib_arena_alloc(run->c->arena, sizeof(*ents) * (r->npks ? r->npks : 1));
    if (!ents) return oom(err);
    for (size_t i = 0; i < r->npks; i++) {
        ents[i].pk = r->pks[i];
        ents[i].token = sib_murmur3_token(r->pks[i].p, (size_t)r->pks[i].len);
    }
    qsort(ents, r->npks, sizeof(*ents), pk_ent_cmp);
    size_t i = 0;
    if (run->ps.present) {
        const pstate *ps = &run->ps;
        if (ps->pk_index >= r->npks || ents[ps->pk_index].pk.len != ps->pk.len ||
            memcmp(ents[ps->pk_index].pk.p, ps->pk.p, (size_t)ps->pk.len) != 0)
            return ps_invalid(err);
        i = (size_t)ps->pk_index + !ps->in_partition;
    }
    for (; i < r->npks && !run->stop; i++) {
        if (!token_in_range(r, ents[i].token)) continue;
        bool resume = run->ps.present && i == run->ps.pk_index;
        int e = read_partition(run, pr, ents[i].pk.p, (size_t)ents[i].pk.len, i, resume, err);
        if (e) return e;
    }
    return 0;
}

/* No partition restriction (or a token range): scan in token order. */
static int read_scan(sel_run *run, part_read *pr, sib_err *err)
{
    const exec_restr *r = pr->r;
    const pstate *ps = &run->ps;
    st_position pos, *start = NULL;
    if (ps->present) {
        pos.token = sib_murmur3_token(ps->pk.p, (size_t)ps->pk.len);
        pos.pk = ps->pk.p;
        pos.pklen = (size_t)ps->pk.len;
        pos.inclusive = ps->in_partition;
        start = &pos;
    } else if (r->token_restricted) {
        pos.token = r->token_start;
        pos.pk = NULL;
        pos.pklen = 0;
        pos.inclusive = r->token_start_incl;
        start = &pos;
    }
    st_scan *sc = st_scan_open(pr->store, start, run->c->now_s);
    if (!sc) return oom(err);
    const uint8_t *pk;
    size_t pklen;
    int64_t tok;
    bool first = ps->present && ps->in_partition;
    int e = 0;
    while (!run->stop && st_scan_next_partition(sc, &pk, &pklen, &tok)) {
        if (r->token_restricted && !token_in_range(r, tok)) {
            if (tok > r->token_end || (tok == r->token_end && !r->token_end_incl)) break;
            continue;
        }
        bool resume = first && pklen == (size_t)ps->pk.len && memcmp(pk, ps->pk.p, pklen) == 0;
        first = false;
        if ((e = read_partition(run, pr, pk, pklen, 0, resume, err))) break;
    }
    if (!e && !run->stop) e = st_scan_status(sc, err);
    st_scan_destroy(sc);
    return e;
}

/* ---- reply ------------------------------------------------------------------- */

static int post_order_cmp(const void *a, const void *b, void *ctx)
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
static void reply_rows(sel_run *run, const sib_buf *ps, int64_t limit)
{
    exec_ctx *c = run->c;
    cql_rows_meta m;
    memset(&m, 0, sizeof(m));
    m.ks = sib_table_keyspace(run->t);
    m.table = sib_table_name(run->t);
    m.ncols = (uint32_t)run->sel.n;
    m.names = run->sel.names;
    m.types = run->sel.types;
    if (ps && ps->len) {
        m.paging_state = ps->p;
        m.paging_state_len = (int32_t)ps->len;
    }
    size_t n = run->nrows;
    const uint8_t **rows = malloc(sizeof(*rows) * (n ? n : 1));
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
    if (run->sel.aggregate && n == 0) { /* no input row: counts 0, the rest null */
        for (size_t j = 0; j < run->sel.n; j++) {
            uint8_t tmp[8];
            if (run->sel.nodes[j]->kind == SN_COUNT) cql_rows_cell(rw, put64(tmp, 0).p, 8);
            else cql_rows_cell(rw, NULL, CQL_VALUE_NULL);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = rows[i];
        p += 4 + get_be32(p);
        for (size_t j = 0; j < run->sel.n; j++) {
            int32_t len = (int32_t)get_be32(p);
            p += 4;
            uint8_t tmp[8];
            if (run->sel.aggregate && run->sel.nodes[j]->kind == SN_COUNT)
                cql_rows_cell(rw, put64(tmp, run->counts[j]).p, 8);
            else
                cql_rows_cell(rw, len < 0 ? NULL : p, len < 0 ? CQL_VALUE_NULL : len);
            if (len > 0) p += len;
        }
    }
    cql_reply_rows_end(c->req);
out:
    free(rows);
}

/* ---- validation shared by user and system tables ------------------------------ */

/* ORDER BY -> reversed, with Cassandra's checks and messages (cql.md 3.3).
 * ck_eq[i]: clustering column i is restricted by equality. */
static int check_order_by(const sib_table *t, const cql_select *s, bool pk_restricted, const bool *ck_eq,
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
        const sib_column *col = sib_table_column_by_name(t, s->order[i].col);
        if (col->kind != SIB_COL_CLUSTERING)
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
        int rev = s->order[i].desc != (col->order == SIB_ORDER_DESC);
        if (dir >= 0 && dir != rev) mixed = true;
        dir = rev;
    }
    if (mixed) return sib_err_set(err, SIB_EINVAL, "Unsupported order by relation");
    *reversed = dir == 1;
    return 0;
}

static int check_limit(exec_ctx *c, const cql_term *term, const char *what, int64_t *out, sib_err *err)
{
    *out = -1;
    if (!term) return 0;
    bool present = true;
    int64_t v;
    int rc = exec_term_int(c, term, what, &v, &present, err);
    if (rc) return rc;
    if (!present) return 0;
    if (v <= 0) return sib_err_set(err, SIB_EINVAL, "%s must be strictly positive", what);
    *out = v;
    return 0;
}

static int check_distinct(sel_run *run, bool key_range, sib_err *err)
{
    if (!run->distinct) return 0;
    for (size_t i = 0; i < run->sel.n; i++) {
        const sib_column *bad = sel_first_non_key(run->sel.nodes[i]);
        if (bad)
            return sib_err_set(err, SIB_EINVAL,
                               "SELECT DISTINCT queries must only request partition key columns and/or static "
                               "columns (not %s)",
                               bad->name);
    }
    for (size_t k = 0; key_range && k < sib_table_pk_count(run->t); k++) {
        const sib_column *pk = sib_table_pk(run->t, k);
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
static bool pk_has_in(const sib_table *t, const cql_select *s)
{
    for (size_t i = 0; i < s->nwhere; i++) {
        const sib_column *col = s->where[i].ncols ? sib_table_column_by_name(t, s->where[i].cols[0]) : NULL;
        if (s->where[i].kind == CQL_REL_SINGLE && s->where[i].op == CQL_OP_IN && col &&
            col->kind == SIB_COL_PARTITION_KEY)
            return true;
    }
    return false;
}

/* ---- user tables --------------------------------------------------------------- */

static int check_consistency(exec_ctx *c, const sib_table *t, const exec_restr *r, sib_err *err)
{
    if (!c->ex->co) return 0;
    coord_repl repl;
    int rc = exec_keyspace_repl(c, sib_table_keyspace(t), &repl, err);
    if (rc) return rc;
    int64_t tok = (r->pk_complete && r->npks) ? sib_murmur3_token(r->pks[0].p, (size_t)r->pks[0].len) : 0;
    return coord_check(c->ex->co, &repl, c->consistency, false, tok, err);
}

static int select_user(sel_run *run, sib_err *err)
{
    exec_ctx *c = run->c;
    const cql_select *s = run->s;
    exec_restr r;
    memset(&r, 0, sizeof(r));
    int rc = exec_analyze_where(c, run->t, s->where, s->nwhere, EXEC_WHERE_SELECT, s->allow_filtering, &r, err);
    if (rc) return rc;
    run->filters = r.filters;
    run->nfilters = r.nfilters;
    if ((rc = check_distinct(run, !r.pk_complete, err))) return rc;
    size_t nck = sib_table_clustering_count(run->t);
    bool *ck_eq = sib_arena_alloc(run->c->arena, nck + 1);
    if (!ck_eq) return sib_err_set(err, SIB_ENOMEM, "order by");
    for (size_t i = 0; i < nck; i++) ck_eq[i] = i < r.ck_eq_prefix;
    if ((rc = check_order_by(run->t, s, r.pk_complete, ck_eq, &run->reversed, err))) return rc;
    int64_t limit;
    if ((rc = check_limit(c, s->limit, "LIMIT", &limit, err))) return rc;
    if ((rc = check_limit(c, s->per_partition_limit, "PER PARTITION LIMIT", &run->ppl, err))) return rc;

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
    if ((rc = ps_decode(c->params, PS_PARTITIONS, &run->ps, err))) return rc;
    run->limit_left = run->ps.present ? run->ps.limit_left : limit;
    if (run->sel.aggregate || run->post_order) run->limit_left = -1; /* LIMIT applies to the output */
    if ((rc = check_consistency(c, run->t, &r, err))) return rc;

    part_read pr = {.r = &r};
    sib_buf_init(&pr.static_copy);
    pr.store = storage_table(c->ex->st, sib_table_id(run->t));
    pr.cut = sib_arena_alloc(c->arena, sizeof(st_slice) * (r.nslices + 1));
    if (!pr.store || !pr.cut) return oom(err);
    rc = r.pk_complete ? read_pk_list(run, &pr, err) : read_scan(run, &pr, err);
    sib_buf_free(&pr.static_copy);
    if (rc) return rc;

    sib_buf ps;
    sib_buf_init(&ps);
    if (run->more) ps_encode_partitions(run, &ps);
    if (ps.oom) rc = oom(err);
    else reply_rows(run, &ps, (run->post_order || run->sel.aggregate) ? (run->sel.aggregate ? 1 : limit) : -1);
    sib_buf_free(&ps);
    return rc;
}

/* ---- system tables --------------------------------------------------------------- */

typedef struct vrows {
    exec_ctx *c;
    sib_val **rows;
    size_t n, cap, ncols;
} vrows;

static int vrows_add(void *ctx, const sib_val *vals, size_t nvals)
{
    vrows *v = ctx;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        sib_val **rows = sib_arena_alloc(v->c->arena, sizeof(*rows) * cap);
        if (!rows) return SIB_ENOMEM;
        if (v->n) memcpy(rows, v->rows, sizeof(*rows) * v->n);
        v->rows = rows;
        v->cap = cap;
    }
    sib_val *row = sib_arena_alloc(v->c->arena, sizeof(*row) * (v->ncols ? v->ncols : 1));
    if (!row) return SIB_ENOMEM;
    for (size_t i = 0; i < v->ncols; i++) {
        row[i] = i < nvals ? vals[i] : val_null();
        if (row[i].len > 0 && !(row[i].p = sib_arena_memdup(v->c->arena, row[i].p, (size_t)row[i].len)))
            return SIB_ENOMEM;
    }
    v->rows[v->n++] = row;
    return 0;
}

static int set_text(vrows *v, sib_val *row, const sib_table *t, const char *col, const char *s)
{
    const sib_column *c = sib_table_column_by_name(t, col);
    if (c) row[c->index] = val_of(s, strlen(s));
    return 0;
}

static int set_bytes(vrows *v, sib_val *row, const sib_table *t, const char *col, const void *p, size_t n)
{
    const sib_column *c = sib_table_column_by_name(t, col);
    if (!c) return 0;
    void *q = sib_arena_memdup(v->c->arena, p, n ? n : 1);
    if (!q) return SIB_ENOMEM;
    row[c->index] = val_of(q, n);
    return 0;
}

static int set_int(vrows *v, sib_val *row, const sib_table *t, const char *col, int64_t x)
{
    uint8_t b[4];
    put_be32(b, (uint32_t)x);
    return set_bytes(v, row, t, col, b, 4);
}

static int set_inet(vrows *v, sib_val *row, const sib_table *t, const char *col, const char *addr)
{
    uint8_t a[16];
    if (inet_pton(AF_INET, addr, a) == 1) return set_bytes(v, row, t, col, a, 4);
    if (inet_pton(AF_INET6, addr, a) == 1) return set_bytes(v, row, t, col, a, 16);
    return 0;
}

static int set_tokens(vrows *v, sib_val *row, const sib_table *t, sib_err *err)
{
    const sib_column *col = sib_table_column_by_name(t, "tokens");
    const cql_exec *ex = v->c->ex;
    if (!col || !ex->node.ntokens) return 0;
    sib_val *el = sib_arena_alloc(v->c->arena, sizeof(*el) * ex->node.ntokens);
    if (!el) return oom(err);
    for (size_t i = 0; i < ex->node.ntokens; i++) {
        const char *s = arena_printf(v->c, "%" PRId64, ex->tokens[i]);
        if (!s) return oom(err);
        el[i] = val_of(s, strlen(s));
    }
    sib_buf b;
    sib_buf_init(&b);
    int rc = sib_coll_build(col->type, el, ex->node.ntokens, &b, err);
    if (!rc && b.oom) rc = oom(err);
    if (!rc) rc = set_bytes(v, row, t, "tokens", b.p, b.len);
    sib_buf_free(&b);
    return rc;
}

/* system.local: the one row describing this node (driver-compat.md 5). */
static int local_row(vrows *v, const sib_table *t, sib_err *err)
{
    exec_ctx *c = v->c;
    const cql_exec_node_info *n = &c->ex->node;
    sib_val *row = sib_arena_alloc(c->arena, sizeof(*row) * (v->ncols ? v->ncols : 1));
    if (!row) return oom(err);
    for (size_t i = 0; i < v->ncols; i++) row[i] = val_null();
    uint8_t sv[16];
    sib_catalog_schema_version(c->ex->cat, sv);
    set_text(v, row, t, "key", "local");
    set_text(v, row, t, "bootstrapped", "COMPLETED");
    set_text(v, row, t, "cluster_name", n->cluster_name);
    set_text(v, row, t, "cql_version", EXEC_CQL_VERSION);
    set_text(v, row, t, "data_center", n->dc);
    set_text(v, row, t, "rack", n->rack);
    set_text(v, row, t, "native_protocol_version", "4");
    set_text(v, row, t, "partitioner", "org.apache.cassandra.dht.Murmur3Partitioner");
    set_text(v, row, t, "release_version", EXEC_RELEASE_VERSION);
    set_text(v, row, t, "thrift_version", "20.1.0");
    int rc = set_inet(v, row, t, "broadcast_address", n->listen_address) ||
             set_inet(v, row, t, "listen_address", n->listen_address) ||
             set_inet(v, row, t, "rpc_address", n->rpc_address) || set_int(v, row, t, "broadcast_port", 7000) ||
             set_int(v, row, t, "listen_port", 7000) || set_int(v, row, t, "rpc_port", n->native_port) ||
             set_int(v, row, t, "gossip_generation", n->gossip_generation) ||
             set_bytes(v, row, t, "host_id", n->host_id, 16) || set_bytes(v, row, t, "schema_version", sv, 16);
    if (rc) return oom(err);
    if ((rc = set_tokens(v, row, t, err))) return rc;
    return vrows_add(v, row, v->ncols) ? oom(err) : 0;
}

static int system_rows(exec_ctx *c, const sib_table *t, vrows *v, sib_err *err)
{
    memset(v, 0, sizeof(*v));
    v->c = c;
    v->ncols = sib_table_column_count(t);
    if (sib_table_kind_of(t) == SIB_TABLE_VIRTUAL_SCHEMA) {
        int rc = sib_catalog_system_rows(c->ex->cat, t, vrows_add, v, err);
        if (rc == SIB_ENOMEM) return oom(err);
        return rc;
    }
    /* system.peers / peers_v2 (and any other local table): a single node has no rows */
    if (strcmp(sib_table_name(t), "local") == 0) return local_row(v, t, err);
    return 0;
}

/* WHERE on a system table: every relation becomes a filter on its column. */
static int system_filter(sel_run *run, const cql_relation *rel, exec_filter *f, sib_err *err)
{
    exec_ctx *c = run->c;
    if (rel->kind != CQL_REL_SINGLE || rel->op == CQL_OP_CONTAINS || rel->op == CQL_OP_CONTAINS_KEY ||
        rel->op == CQL_OP_IS_NOT_NULL)
        return sib_err_set(err, SIB_EINVAL, "Unsupported restriction on system table %s.%s",
                           sib_table_keyspace(run->t), sib_table_name(run->t));
    memset(f, 0, sizeof(*f));
    if (!(f->col = need_column(run->t, rel->cols[0], err))) return SIB_EINVAL;
    f->op = rel->op;
    const sib_type *ty = f->col->type;
    if (rel->op != CQL_OP_IN) return exec_term_value(c, rel->value, ty, f->col->name, &f->val, NULL, err);
    if (rel->value) { /* col IN ?: a list of the column's type */
        sib_val lv;
        const sib_type *lt = sib_type_list(sib_catalog_types(c->ex->cat), ty, false);
        if (!lt) return oom(err);
        int rc = exec_term_value(c, rel->value, lt, f->col->name, &lv, NULL, err);
        if (rc) return rc;
        sib_coll_iter it;
        int n = lv.len < 0 ? 0 : sib_coll_iter_init(&it, lt, lv.p, (size_t)lv.len);
        if (n < 0) return sib_err_set(err, SIB_EINVAL, "Invalid list value for IN");
        f->in = sib_arena_alloc(c->arena, sizeof(*f->in) * (size_t)(n ? n : 1));
        if (!f->in) return oom(err);
        sib_val k, unused;
        while (n > 0 && f->nin < (size_t)n && sib_coll_next(&it, &k, &unused)) f->in[f->nin++] = k;
        return 0;
    }
    f->in = sib_arena_alloc(c->arena, sizeof(*f->in) * (rel->nin ? rel->nin : 1));
    if (!f->in) return oom(err);
    for (size_t i = 0; i < rel->nin; i++) {
        int rc = exec_term_value(c, rel->in[i], ty, f->col->name, &f->in[f->nin], NULL, err);
        if (rc) return rc;
        f->nin++;
    }
    return 0;
}

static bool same_partition(const sib_table *t, const sib_val *a, const sib_val *b)
{
    for (size_t i = 0; i < sib_table_pk_count(t); i++) {
        size_t k = sib_table_pk(t, i)->index;
        if (a[k].len != b[k].len || (a[k].len > 0 && memcmp(a[k].p, b[k].p, (size_t)a[k].len) != 0)) return false;
    }
    return true;
}

/* ORDER BY ... DESC on a system table: reverse each partition's rows. */
static void reverse_partitions(const sib_table *t, sib_val **rows, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && same_partition(t, rows[i], rows[j])) j++;
        for (size_t a = i, b = j - 1; a < b; a++, b--) {
            sib_val *x = rows[a];
            rows[a] = rows[b];
            rows[b] = x;
        }
        i = j;
    }
}

static int select_system(sel_run *run, sib_err *err)
{
    exec_ctx *c = run->c;
    const cql_select *s = run->s;
    const sib_table *t = run->t;
    run->filters = sib_arena_alloc(c->arena, sizeof(*run->filters) * (s->nwhere ? s->nwhere : 1));
    if (!run->filters) return oom(err);
    int rc;
    for (size_t i = 0; i < s->nwhere; i++) {
        if ((rc = system_filter(run, &s->where[i], &run->filters[i], err))) return rc;
        run->nfilters++;
    }
    size_t npk = sib_table_pk_count(t), nck = sib_table_clustering_count(t);
    bool pk_restricted = true;
    bool *ck_eq = sib_arena_alloc(run->c->arena, nck + 1);
    if (!ck_eq) return sib_err_set(err, SIB_ENOMEM, "order by");
    for (size_t k = 0; k < npk + nck; k++) {
        bool eq = false, eq_or_in = false;
        for (size_t i = 0; i < run->nfilters; i++) {
            const sib_column *col = run->filters[i].col;
            bool match = k < npk ? col == sib_table_pk(t, k) : col == sib_table_clustering(t, k - npk);
            eq |= match && run->filters[i].op == CQL_OP_EQ;
            eq_or_in |= match && (run->filters[i].op == CQL_OP_EQ || run->filters[i].op == CQL_OP_IN);
        }
        if (k < npk) pk_restricted &= eq_or_in;
        else ck_eq[k - npk] = eq;
    }
    if ((rc = check_distinct(run, !pk_restricted, err))) return rc;
    if ((rc = check_order_by(t, s, pk_restricted, ck_eq, &run->reversed, err))) return rc;
    int64_t limit;
    if ((rc = check_limit(c, s->limit, "LIMIT", &limit, err))) return rc;
    if ((rc = check_limit(c, s->per_partition_limit, "PER PARTITION LIMIT", &run->ppl, err))) return rc;
    if ((rc = ps_decode(c->params, PS_ROWINDEX, &run->ps, err))) return rc;
    run->limit_left = run->ps.present ? run->ps.limit_left : limit;
    if (run->sel.aggregate) run->limit_left = -1;

    vrows v;
    if ((rc = system_rows(c, t, &v, err))) return rc;
    if (run->reversed) reverse_partitions(t, v.rows, v.n);
    if (run->ps.present && run->ps.row_index > v.n) return ps_invalid(err);
    size_t i = run->ps.present ? (size_t)run->ps.row_index : 0;
    const sib_val *prev = NULL;
    for (; i < v.n && !run->stop; i++) {
        bool fresh = !prev || !same_partition(t, prev, v.rows[i]);
        if (run->distinct && !fresh) continue;
        if (fresh) run->ppl_left = run->ppl;
        prev = v.rows[i];
        row_ctx rc_ = {.allv = v.rows[i], .ck = (const uint8_t *)""};
        int x = on_row(run, &rc_, 0, err);
        if (x < 0) return x;
        if (x == ROW_STOP) break;
    }
    sib_buf ps;
    sib_buf_init(&ps);
    if (run->more) ps_encode_rowindex(i, run->limit_left, &ps); /* row i was seen, not sent */
    if (ps.oom) rc = oom(err);
    else reply_rows(run, &ps, run->sel.aggregate ? 1 : -1);
    sib_buf_free(&ps);
    return rc;
}

/* ---- entry point ----------------------------------------------------------------- */

static void run_free(sel_run *run)
{
    sib_buf_free(&run->out);
    sib_buf_free(&run->offs);
    sib_buf_free(&run->last_pk);
    sib_buf_free(&run->last_ck);
    sib_buf_free(&run->coll);
    sib_buf_free(&run->text);
    for (size_t i = 0; run->ckv && i < run->nck; i++) sib_buf_free(&run->ckv[i]);
    free(run->ckv);
}

static int run_init(sel_run *run, exec_ctx *c, const sib_table *t, const cql_select *s, sib_err *err)
{
    memset(run, 0, sizeof(*run));
    run->c = c;
    run->t = t;
    run->s = s;
    run->distinct = s->distinct;
    run->ppl = run->ppl_left = run->limit_left = -1;
    run->page_size = c->params ? c->params->page_size : -1;
    sib_buf_init(&run->out);
    sib_buf_init(&run->offs);
    sib_buf_init(&run->last_pk);
    sib_buf_init(&run->last_ck);
    sib_buf_init(&run->coll);
    sib_buf_init(&run->text);
    size_t nck = sib_table_clustering_count(t), npk = sib_table_pk_count(t);
    /* malloc, not the arena: run_free runs after the reply freed the arena. */
    run->ckv = calloc(nck + 1, sizeof(*run->ckv));
    run->pkv = sib_arena_alloc(c->arena, sizeof(*run->pkv) * (npk + 1));
    if (!run->ckv || !run->pkv) return oom(err);
    run->nck = nck;
    for (size_t i = 0; i < nck; i++) sib_buf_init(&run->ckv[i]);
    int rc = compile_selection(c, t, s, &run->sel, err);
    if (rc) return rc;
    for (size_t i = 0; i < run->sel.n; i++)
        if ((rc = prepare_consts(c, run->sel.nodes[i], err))) return rc;
    run->counts = sib_arena_alloc(c->arena, sizeof(*run->counts) * (run->sel.n + 1));
    if (!run->counts) return oom(err);
    memset(run->counts, 0, sizeof(*run->counts) * (run->sel.n + 1));
    if (run->sel.aggregate) run->page_size = -1; /* the whole count in one page */
    return 0;
}

void exec_select(exec_ctx *c, const cql_select *s)
{
    sib_err err;
    sib_err_clear(&err);
    const sib_table *t;
    sel_run run;
    bool inited = false;
    int rc = exec_resolve_table(c, &s->table, &t, &err);
    if (!rc && s->json) rc = sib_err_set(&err, SIB_EINVAL, "SELECT JSON is not supported");
    if (!rc && s->ngroup) rc = sib_err_set(&err, SIB_EINVAL, "GROUP BY is not supported");
    if (!rc) {
        inited = true;
        rc = run_init(&run, c, t, s, &err);
    }
    if (!rc) rc = sib_table_kind_of(t) == SIB_TABLE_USER ? select_user(&run, &err) : select_system(&run, &err);
    if (inited) run_free(&run);
    if (rc == SIB_ECORRUPT || rc == SIB_EIO) {
        /* A damaged or unreadable SSTable: the replica failed the read, as
         * Cassandra reports it (ReadFailure), with the file named in the
         * message. */
        err.code = SIB_EREADFAIL;
        err.ex[0] = c->consistency;
        err.ex[1] = 0;
        err.ex[2] = 1;
        err.ex[3] = 1;
    }
    if (rc) exec_reply_err(c, &err);
}
