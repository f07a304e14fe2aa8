/* exec_selection.c: the selection of a SELECT, step 1 of exec_select.c.
 *
 * Selectors compile into small expression trees (sel_node, arena memory):
 * columns, WRITETIME/MAXWRITETIME/TTL, COUNT, token(), the time functions
 * (now(), toTimestamp(x), ...), CAST and typed constants. The same
 * compilation serves exec_select_columns() (PREPARE metadata) and a running
 * SELECT, so both report the same columns. eval() computes one selector on
 * one row (row_ctx), reading user-table cells (collections rebuilt by
 * exec_collection_from_cells()) or the value array of a system-table row.
 *
 * Kept apart from the running SELECT because it depends only on the table
 * and the selectors, not on how rows are found, paged or replied.
 */
#include "exec_select_int.h"

#include <stdarg.h>
#include <stdlib.h>

/* ---- small helpers ------------------------------------------------------ */

/* The rebuilt value of a collection slice, reused from row to row. */
struct sel_scratch {
    uint8_t *p; /* arena; grows geometrically, the old block is left behind */
    size_t cap;
};


char *arena_printf(exec_ctx *c, const char *fmt, ...)
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
    sch_ident_quote(name, &b);
    sib_buf_u8(&b, 0);
    int rc = sib_err_set(err, SIB_EINVAL, "Undefined column name %s", b.oom ? name : (const char *)b.p);
    sib_buf_free(&b);
    return rc;
}

const sch_column *need_column(const sch_table *t, const char *name, sib_err *err)
{
    const sch_column *col = sch_table_column_by_name(t, name);
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

int exec_collection_from_cells(const sch_column *col, const st_cell_view *cells, size_t n, sib_buf *out,
                               sib_err *err)
{
    bool is_map = col->type->code == SCH_T_MAP;
    sch_val *el = malloc(sizeof(*el) * n * (is_map ? 2 : 1));
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
    int rc = sch_coll_build(col->type, el, n, out, err);
    free(el);
    return rc;
}

/* ---- selectors ------------------------------------------------------------ */

enum { A_TIMEUUID = 1, A_DATE = 2, A_TIMESTAMP = 4 };

typedef struct fn_def {
    const char *name; /* Cassandra's native name (lower case) */
    fn_id id;
    int nargs;
    sch_type_code ret;
    unsigned args; /* A_* accepted argument types */
} fn_def;

static const fn_def fn_defs[] = {
    {"now", FN_NOW, 0, SCH_T_TIMEUUID, 0},
    {"currenttimeuuid", FN_CUR_TIMEUUID, 0, SCH_T_TIMEUUID, 0},
    {"uuid", FN_UUID, 0, SCH_T_UUID, 0},
    {"currenttimestamp", FN_CUR_TIMESTAMP, 0, SCH_T_TIMESTAMP, 0},
    {"currentdate", FN_CUR_DATE, 0, SCH_T_DATE, 0},
    {"currenttime", FN_CUR_TIME, 0, SCH_T_TIME, 0},
    {"totimestamp", FN_TO_TIMESTAMP, 1, SCH_T_TIMESTAMP, A_TIMEUUID | A_DATE},
    {"tounixtimestamp", FN_TO_UNIX_TIMESTAMP, 1, SCH_T_BIGINT, A_TIMEUUID | A_DATE | A_TIMESTAMP},
    {"todate", FN_TO_DATE, 1, SCH_T_DATE, A_TIMEUUID | A_TIMESTAMP},
    {"dateof", FN_DATE_OF, 1, SCH_T_TIMESTAMP, A_TIMEUUID},
    {"unixtimestampof", FN_UNIX_TIMESTAMP_OF, 1, SCH_T_BIGINT, A_TIMEUUID},
    {"mintimeuuid", FN_MIN_TIMEUUID, 1, SCH_T_TIMEUUID, A_TIMESTAMP},
    {"maxtimeuuid", FN_MAX_TIMEUUID, 1, SCH_T_TIMEUUID, A_TIMESTAMP},
};

static unsigned arg_class(const sch_type *t)
{
    switch (t->code) {
    case SCH_T_TIMEUUID: return A_TIMEUUID;
    case SCH_T_DATE: return A_DATE;
    case SCH_T_TIMESTAMP: return A_TIMESTAMP;
    default: return 0;
    }
}

static int resolve_typeref(exec_ctx *c, const prs_typeref *r, const sch_type **out, sib_err *err)
{
    const sch_type *subs[8];
    if (r->nsub > SIB_ARRAY_LEN(subs)) return sib_err_set(err, SIB_EINVAL, "Unsupported type %s", r->name);
    for (size_t i = 0; i < r->nsub; i++) {
        int rc = resolve_typeref(c, r->sub[i], &subs[i], err);
        if (rc) return rc;
    }
    return sch_type_resolve(sch_catalog_types(c->ex->cat), r->name, strlen(r->name), subs, r->nsub, out, err);
}

static int compile_sel(exec_ctx *c, const sch_table *t, const prs_selector *s, sel_node **out,
                       sib_err *err);

static int compile_pk_fn_args(exec_ctx *c, const sch_table *t, const prs_selector *s, sib_err *err)
{
    size_t npk = sch_table_pk_count(t);
    if (s->nargs != npk)
        return sib_err_set(err, SIB_EINVAL,
                           "Invalid number of arguments in call to function system.token: %zu required but %zu "
                           "provided",
                           npk, s->nargs);
    for (size_t i = 0; i < npk; i++) {
        const prs_selector *a = s->args[i];
        const sch_column *pk = sch_table_pk(t, i);
        if (a->kind != PRS_SEL_COLUMN) return sib_err_set(err, SIB_EINVAL, "Invalid arguments for function token");
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

/* The single argument of function s into n->arg. A function with one
 * signature types a bare literal or marker argument by it, as Cassandra
 * does (bigintAsBlob(3), minTimeuuid('2024-01-01')); the value is computed
 * once, like a type-hinted constant. */
static int compile_one_arg(exec_ctx *c, const sch_table *t, const prs_selector *s, sel_node *n, sib_err *err)
{
    if (s->nargs != 1)
        return sib_err_set(err, SIB_EINVAL,
                           "Invalid number of arguments in call to function system.%s: 1 required but %zu provided",
                           s->func_name, s->nargs);
    const prs_selector *a = s->args[0];
    const sch_type *at = exec_fn_arg_type(s->func_name);
    if (!at || a->kind != PRS_SEL_TERM || a->term->kind == PRS_TERM_TYPEHINT)
        return compile_sel(c, t, a, &n->arg, err);
    if (!exec_term_assignable(a->term, at)) {
        sib_buf b;
        sib_buf_init(&b);
        exec_term_text(a->term, &b);
        sib_buf_u8(&b, 0);
        int rc = sib_err_set(err, SIB_EINVAL, "Type error: %s cannot be passed as argument 0 of function system.%s of type %s",
                             b.oom ? "?" : (const char *)b.p, s->func_name, sch_type_native_name(at->code));
        sib_buf_free(&b);
        return rc;
    }
    sel_node *k = sib_arena_alloc(c->arena, sizeof(*k));
    if (!k) return oom(err);
    memset(k, 0, sizeof(*k));
    k->kind = SN_CONST;
    k->term = a->term;
    k->type = at;
    k->name = a->text;
    k->cval = val_null();
    k->key_name = arena_printf(c, "arg0(system.%s)", s->func_name);
    n->arg = k;
    return k->key_name ? 0 : oom(err);
}

/* Can sum/avg take a value of type t (AggregateFcts: the numeric types)? */
static bool agg_numeric(const sch_type *t)
{
    switch (t->code) {
    case SCH_T_TINYINT: case SCH_T_SMALLINT: case SCH_T_INT: case SCH_T_BIGINT: case SCH_T_COUNTER:
    case SCH_T_FLOAT: case SCH_T_DOUBLE: case SCH_T_DECIMAL: case SCH_T_VARINT: return true;
    default: return false;
    }
}

/* min/max/sum/avg(arg): the argument is any scalar selector of this row
 * (a column, writetime(v), a cast, ...); min and max take every type (its
 * comparator orders them), sum and avg the numeric ones, and the result has
 * the argument's type. Cassandra resolves the overload by the argument's
 * type, so a mismatch lists the known signatures, in AggregateFcts order. */
static int compile_agg(exec_ctx *c, const sch_table *t, const prs_selector *s, sel_node *n, sib_err *err)
{
    const char *f = s->func_name;
    int rc = compile_one_arg(c, t, s, n, err);
    if (rc) return rc;
    if (sel_agg_node(n->arg))
        return sib_err_set(err, SIB_EINVAL, "aggregate functions cannot be used as arguments of aggregate functions");
    n->kind = SN_AGG;
    n->agg = !strcmp(f, "min") ? AGG_MIN : !strcmp(f, "max") ? AGG_MAX : !strcmp(f, "sum") ? AGG_SUM : AGG_AVG;
    n->type = n->arg->type;
    if ((n->agg == AGG_SUM || n->agg == AGG_AVG) && !agg_numeric(n->type)) {
        static const char *const num[] = {"tinyint", "smallint", "int", "bigint", "float",
                                          "double", "decimal", "varint", "counter"};
        sib_buf b;
        sib_buf_init(&b);
        for (size_t i = 0; i < SIB_ARRAY_LEN(num); i++)
            sib_buf_printf(&b, "%ssystem.%s : (%s) -> %s", i ? ", " : "", f, num[i], num[i]);
        sib_buf_u8(&b, 0);
        rc = sib_err_set(err, SIB_EINVAL,
                         "Invalid call to function %s, none of its type signatures match (known type signatures: %s)",
                         f, b.oom ? "?" : (const char *)b.p);
        sib_buf_free(&b);
        return rc;
    }
    n->name = fn_name(c, f, &n->arg, 1);
    return n->name ? 0 : oom(err);
}

static int compile_fn(exec_ctx *c, const sch_table *t, const prs_selector *s, sel_node *n, sib_err *err)
{
    const char *f = s->func_name;
    if (s->func_ks && strcmp(s->func_ks, "system") != 0)
        return sib_err_set(err, SIB_EINVAL, "Unknown function '%s.%s'", s->func_ks, f);
    if (strcmp(f, "token") == 0) {
        int rc = compile_pk_fn_args(c, t, s, err);
        if (rc) return rc;
        n->kind = SN_TOKEN;
        n->type = sch_type_native(SCH_T_BIGINT);
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
        if (s->nargs != 1 || s->args[0]->kind != PRS_SEL_COLUMN)
            return sib_err_set(err, SIB_EINVAL, "Invalid arguments for function count");
        n->kind = SN_COUNT;
        if (!(n->col = need_column(t, s->args[0]->column, err))) return SIB_EINVAL;
        n->type = sch_type_native(SCH_T_BIGINT);
        n->name = arena_printf(c, "system.count(%s)", n->col->name);
        return n->name ? 0 : oom(err);
    }
    if (!strcmp(f, "min") || !strcmp(f, "max") || !strcmp(f, "sum") || !strcmp(f, "avg"))
        return compile_agg(c, t, s, n, err);
    if (!strcmp(f, "fromjson"))
        return sib_err_set(err, SIB_EINVAL, "fromJson() cannot be used in the selection clause of a SELECT statement");
    if (!strcmp(f, "tojson")) {
        int rc = compile_one_arg(c, t, s, n, err);
        if (rc) return rc;
        n->kind = SN_TOJSON;
        n->type = sch_type_native(SCH_T_VARCHAR);
        n->scratch = sib_arena_alloc(c->arena, sizeof(*n->scratch));
        if (!n->scratch) return oom(err);
        memset(n->scratch, 0, sizeof(*n->scratch));
        n->name = fn_name(c, f, &n->arg, 1);
        return n->name ? 0 : oom(err);
    }
    const sch_type *from, *to;
    if (exec_blob_conversion(f, &from, &to)) {
        int rc = compile_one_arg(c, t, s, n, err);
        if (rc) return rc;
        if (n->arg->type->code != from->code && !(from->code == SCH_T_VARCHAR && n->arg->type->code == SCH_T_ASCII)) {
            sib_buf b;
            sib_buf_init(&b);
            sch_type_cql_name(from, &b);
            sib_buf_u8(&b, 0);
            rc = sib_err_set(err, SIB_EINVAL, "Type error: %s cannot be passed as argument 0 of function system.%s of type %s",
                             s->args[0]->text, f, b.oom ? "?" : (const char *)b.p);
            sib_buf_free(&b);
            return rc;
        }
        n->kind = SN_CONVERT;
        n->type = to;
        n->name = fn_name(c, f, &n->arg, 1);
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
    n->type = sch_type_native(d->ret);
    if (d->nargs) {
        int rc = compile_one_arg(c, t, s, n, err);
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

/* Checks that ct (the type of `selected`) can be subscripted as Cassandra
 * allows (sets and maps) and sets n's key type and receiver name
 * (key(m) for a map, value(s) for a set, after Cassandra's specs). */
static int subscript_target(exec_ctx *c, const sch_type *ct, const char *selected, const char *base, bool slice,
                            sel_node *n, sib_err *err)
{
    if (!sch_type_is_collection(ct)) {
        sib_buf b;
        sib_buf_init(&b);
        sch_type_cql_name(ct, &b);
        sib_buf_u8(&b, 0);
        int rc = sib_err_set(err, SIB_EINVAL,
                             slice ? "Invalid slice selection: %s of type %s is not a collection"
                                   : "Invalid element selection: %s is of type %s is not a collection",
                             selected, b.oom ? "?" : (const char *)b.p);
        sib_buf_free(&b);
        return rc;
    }
    if (ct->code == SCH_T_LIST)
        return sib_err_set(err, SIB_EINVAL, "%s selection is only allowed on sets and maps, but %s is a list",
                           slice ? "Slice" : "Element", selected);
    n->key_type = ct->sub[0];
    n->key_name = arena_printf(c, "%s(%s)", ct->code == SCH_T_MAP ? "key" : "value", base);
    return n->key_name ? 0 : oom(err);
}

/* sel[key] and sel[from..to] on a set or a map. */
static int compile_subscript(exec_ctx *c, const sch_table *t, const prs_selector *s, sel_node *n, sib_err *err)
{
    int rc = compile_sel(c, t, s->args[0], &n->arg, err);
    if (rc) return rc;
    bool slice = s->kind == PRS_SEL_SLICE;
    const sch_type *ct = n->arg->type;
    if ((rc = subscript_target(c, ct, s->args[0]->text, n->arg->name, slice, n, err))) return rc;
    n->name = s->text;
    if (!slice) {
        n->kind = SN_ELEMENT;
        n->term = s->term;
        n->type = ct->code == SCH_T_MAP ? ct->sub[1] : ct->sub[0];
        return 0;
    }
    n->kind = SN_SLICE;
    n->from = s->from;
    n->to = s->to;
    n->type = ct;
    n->scratch = sib_arena_alloc(c->arena, sizeof(*n->scratch));
    if (!n->scratch) return oom(err);
    memset(n->scratch, 0, sizeof(*n->scratch));
    return 0;
}

static int compile_column_fn(const sch_table *t, const prs_selector *s, sel_node *n, exec_ctx *c, sib_err *err)
{
    static const char *const fname[] = {[SN_WRITETIME] = "writeTime", [SN_MAXWRITETIME] = "maxwritetime",
                                        [SN_TTL] = "ttl"};
    static const char *const rname[] = {[SN_WRITETIME] = "writetime", [SN_MAXWRITETIME] = "maxwritetime",
                                        [SN_TTL] = "ttl"};
    n->kind = s->kind == PRS_SEL_WRITETIME ? SN_WRITETIME : s->kind == PRS_SEL_TTL ? SN_TTL : SN_MAXWRITETIME;
    if (!(n->col = need_column(t, s->column, err))) return SIB_EINVAL;
    if (n->col->kind == SCH_COL_PARTITION_KEY || n->col->kind == SCH_COL_CLUSTERING)
        return sib_err_set(err, SIB_EINVAL, "Cannot use selection function %s on PRIMARY KEY part %s", fname[n->kind],
                           n->col->name);
    const sch_type *scalar = sch_type_native(n->kind == SN_TTL ? SCH_T_INT : SCH_T_BIGINT);
    n->type = scalar;
    /* 5.0: the cells of a non-frozen collection give a list (one entry per
     * element; MAXWRITETIME keeps the largest), an element its own cell's. */
    bool multicell = sch_type_is_multicell(n->col->type);
    if ((s->elem_slice || (!s->elem && multicell)) && n->kind != SN_MAXWRITETIME && multicell) {
        n->type = sch_type_list(sch_catalog_types(c->ex->cat), scalar, false);
        n->scratch = sib_arena_alloc(c->arena, sizeof(*n->scratch));
        if (!n->type || !n->scratch) return oom(err);
        memset(n->scratch, 0, sizeof(*n->scratch));
    }
    if (!s->elem && !s->elem_slice) {
        n->name = arena_printf(c, "%s(%s)", rname[n->kind], n->col->name);
        return n->name ? 0 : oom(err);
    }
    int rc = subscript_target(c, n->col->type, n->col->name, n->col->name, s->elem_slice, n, err);
    if (rc) return rc;
    n->term = s->elem;
    n->wt_slice = s->elem_slice;
    n->from = s->from;
    n->to = s->to;
    sib_buf b;
    sib_buf_init(&b);
    sib_buf_printf(&b, "%s(%s[", rname[n->kind], n->col->name);
    if (s->elem) exec_term_text(s->elem, &b);
    if (s->from) exec_term_text(s->from, &b);
    if (s->elem_slice) sib_buf_append(&b, "..", 2);
    if (s->to) exec_term_text(s->to, &b);
    sib_buf_append(&b, "])", 3);
    n->name = b.oom ? NULL : sib_arena_strdup(c->arena, (const char *)b.p);
    sib_buf_free(&b);
    return n->name ? 0 : oom(err);
}

static int compile_sel(exec_ctx *c, const sch_table *t, const prs_selector *s, sel_node **out,
                       sib_err *err)
{
    sel_node *n = sib_arena_alloc(c->arena, sizeof(*n));
    if (!n) return oom(err);
    memset(n, 0, sizeof(*n));
    *out = n;
    int rc = 0;
    switch (s->kind) {
    case PRS_SEL_COLUMN:
        n->kind = SN_COLUMN;
        if (!(n->col = need_column(t, s->column, err))) return SIB_EINVAL;
        n->type = n->col->type;
        n->name = n->col->name;
        break;
    case PRS_SEL_WRITETIME:
    case PRS_SEL_MAXWRITETIME:
    case PRS_SEL_TTL:
        rc = compile_column_fn(t, s, n, c, err);
        break;
    case PRS_SEL_COUNT:
        n->kind = SN_COUNT;
        n->type = sch_type_native(SCH_T_BIGINT);
        n->name = "count";
        break;
    case PRS_SEL_FUNC:
        rc = compile_fn(c, t, s, n, err);
        break;
    case PRS_SEL_CAST: {
        const sch_type *to;
        if ((rc = compile_sel(c, t, s->args[0], &n->arg, err))) return rc;
        if ((rc = resolve_typeref(c, s->type, &to, err))) return rc;
        if (!exec_castable(n->arg->type, to->code)) {
            sib_buf b;
            sib_buf_init(&b);
            sch_type_cql_name(n->arg->type, &b);
            sib_buf_u8(&b, 0);
            rc = sib_err_set(err, SIB_EINVAL, "%s cannot be cast to %s", b.oom ? "?" : (const char *)b.p,
                             sch_type_native_name(to->code));
            sib_buf_free(&b);
            return rc;
        }
        n->kind = SN_CAST;
        n->type = to;
        n->name = arena_printf(c, "cast(%s as %s)", n->arg->name, sch_type_native_name(to->code));
        break;
    }
    case PRS_SEL_ELEMENT:
    case PRS_SEL_SLICE:
        rc = compile_subscript(c, t, s, n, err);
        break;
    case PRS_SEL_TERM:
        if (s->term->kind != PRS_TERM_TYPEHINT)
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
    return n->name ? 0 : oom(err);
}

int compile_selection(exec_ctx *c, const sch_table *t, const prs_select *s, sel_list *out, sib_err *err)
{
    memset(out, 0, sizeof(*out));
    size_t n = s->star ? sch_table_column_count(t) : s->nsel;
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
            node->col = sch_table_column(t, i);
            node->type = node->col->type;
            node->name = node->col->name;
        } else {
            int rc = compile_sel(c, t, &s->sel[i], &node, err);
            if (rc) return rc;
        }
        out->nodes[i] = node;
        out->names[i] = (!s->star && s->sel[i].alias) ? s->sel[i].alias : node->name;
        out->types[i] = node->type;
        if (sel_agg_node(node)) out->aggregate = true;
    }
    return 0;
}

int exec_select_columns(exec_ctx *c, const sch_table *t, const prs_select *s, size_t *ncols, const char ***names,
                        const sch_type ***types, sib_err *err)
{
    sel_list l;
    int rc = compile_selection(c, t, s, &l, err);
    if (rc) return rc;
    if (s->json) return exec_json_columns(c, ncols, names, types, err);
    *ncols = l.n;
    *names = l.names;
    *types = l.types;
    return 0;
}

/* A slice bound: an omitted or unset one leaves that side open. */
static int slice_bound(exec_ctx *c, const sel_node *n, const prs_term *t, sch_val *out, sib_err *err)
{
    *out = val_null();
    if (!t) return 0;
    bool unset;
    int rc = exec_term_value(c, t, n->key_type, n->key_name, out, &unset, err);
    if (!rc && unset) *out = val_null();
    return rc;
}

/* A key as the path of its cell in a non-frozen set or map (exec_int.h),
 * in the arena; a null key gives a null path. */
static int key_path(exec_ctx *c, const sel_node *n, const sch_val *key, sch_val *out, sib_err *err)
{
    *out = val_null();
    if (key->len < 0) return 0;
    sib_buf b;
    sib_buf_init(&b);
    int rc = sch_ck_encode_component(n->key_type, false, key->p, (size_t)key->len, &b, err);
    if (!rc && b.oom) rc = oom(err);
    if (!rc) {
        uint8_t *p = sib_arena_memdup(c->arena, b.p ? b.p : (const uint8_t *)"", b.len);
        if (!p) rc = oom(err);
        *out = val_of(p, b.len);
    }
    sib_buf_free(&b);
    return rc;
}

/* Typed constants and subscripts are evaluated once, before any row is read. */
int prepare_consts(exec_ctx *c, sel_node *n, sib_err *err)
{
    if (!n) return 0;
    int rc = 0;
    if (n->kind == SN_CONST) {
        rc = exec_term_value(c, n->term, n->type, n->key_name ? n->key_name : n->name, &n->cval, NULL, err);
    } else if (n->key_type && (n->kind == SN_SLICE || n->wt_slice)) {
        if (!(rc = slice_bound(c, n, n->from, &n->fromv, err))) rc = slice_bound(c, n, n->to, &n->tov, err);
        if (!rc && n->col && !(rc = key_path(c, n, &n->fromv, &n->from_path, err)))
            rc = key_path(c, n, &n->tov, &n->to_path, err);
    } else if (n->term && n->key_type) { /* an element key */
        bool unset;
        rc = exec_term_value(c, n->term, n->key_type, n->key_name, &n->cval, &unset, err);
        if (!rc && unset)
            rc = sib_err_set(err, SIB_EINVAL, "Invalid unset value for element selection on %s", n->arg ? n->arg->name : n->col->name);
        if (!rc && n->col) rc = key_path(c, n, &n->cval, &n->key_path, err);
    }
    if (rc) return rc;
    return prepare_consts(c, n->arg, err);
}

/* Columns a selector reads (DISTINCT validation). */
const sch_column *sel_first_non_key(const sel_node *n)
{
    if (!n) return NULL;
    if (n->col && n->col->kind != SCH_COL_PARTITION_KEY && n->col->kind != SCH_COL_STATIC) return n->col;
    return sel_first_non_key(n->arg);
}

const sel_node *sel_agg_node(const sel_node *n)
{
    for (; n; n = n->arg)
        if (n->kind == SN_COUNT || n->kind == SN_AGG) return n;
    return NULL;
}

bool sel_uses_column(const sel_node *n, const sch_column *col)
{
    if (!n) return false;
    if (n->kind == SN_COLUMN && n->col == col) return true;
    return sel_uses_column(n->arg, col);
}

/* ---- evaluation on one row ------------------------------------------------ */

static int decode_ck(sel_run *run, row_ctx *rc, sib_err *err)
{
    if (rc->ck_decoded) return 0;
    rc->ck_decoded = true;
    rc->nck = 0;
    if (!rc->ck || !sch_table_clustering_count(run->t)) return 0;
    return sch_ck_decode(run->t, rc->ck, rc->cklen, run->ckv, &rc->nck, err);
}

/* The value of a column in the current row; collections are rebuilt from
 * their cells into run->coll (valid until the next collection value). */
int col_value(sel_run *run, row_ctx *rc, const sch_column *col, sch_val *out, sib_err *err)
{
    *out = val_null();
    if (rc->allv) {
        *out = rc->allv[col->index];
        return 0;
    }
    if (col->kind == SCH_COL_PARTITION_KEY) {
        *out = rc->pkv[col->position];
        return 0;
    }
    if (col->kind == SCH_COL_CLUSTERING) {
        int e = decode_ck(run, rc, err);
        if (e) return e;
        if ((size_t)col->position < rc->nck)
            *out = val_of(run->ckv[col->position].p ? run->ckv[col->position].p : (const uint8_t *)"",
                          run->ckv[col->position].len);
        return 0;
    }
    size_t n;
    const st_cell_view *cells = row_cells(col->kind == SCH_COL_STATIC ? rc->srow : rc->row, col->id, &n);
    if (!n) return 0;
    if (!sch_type_is_multicell(col->type)) {
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
static bool time_arg_ms(const sch_type *t, sch_val v, int64_t *ms)
{
    if (t->code == SCH_T_TIMEUUID && v.len == 16) *ms = timeuuid_ms(v.p);
    else if (t->code == SCH_T_TIMESTAMP && v.len == 8) *ms = (int64_t)get_be64(v.p);
    else if (t->code == SCH_T_DATE && v.len == 4) *ms = ((int64_t)get_be32(v.p) - (1LL << 31)) * 86400000LL;
    else return false;
    return true;
}

static sch_val put32(uint8_t *tmp, int64_t v)
{
    put_be32(tmp, (uint32_t)v);
    return val_of(tmp, 4);
}

static sch_val date_of_ms(uint8_t *tmp, int64_t ms) { return put32(tmp, floor_div(ms, 86400000LL) + (1LL << 31)); }

static sch_val eval_fn(sel_run *run, const sel_node *n, sch_val a, uint8_t *tmp)
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
    case FN_MIN_TIMEUUID:
    case FN_MAX_TIMEUUID: exec_timeuuid_bound(ms, n->fn == FN_MAX_TIMEUUID, tmp); return val_of(tmp, 16);
    default: return val_null();
    }
}

static sch_val eval_cast(sel_run *run, const sel_node *n, sch_val a, uint8_t *tmp)
{
    return exec_cast_value(n->arg->type, n->type, a, tmp, &run->text);
}

/* ---- subscripts ---- */

static uint8_t *scratch_reserve(exec_ctx *c, struct sel_scratch *s, size_t need)
{
    if (need <= s->cap) return s->p;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < need) cap *= 2;
    uint8_t *p = sib_arena_alloc(c->arena, cap);
    if (!p) return NULL;
    s->p = p;
    s->cap = cap;
    return p;
}

/* coll[key]: the map's value or the set's element; null when absent. */
static sch_val eval_element(const sel_node *n, sch_val coll)
{
    if (coll.len < 0 || n->cval.len < 0) return val_null();
    sch_coll_iter it;
    if (sch_coll_iter_init(&it, n->arg->type, coll.p, (size_t)coll.len) < 0) return val_null();
    sch_val k, v;
    bool is_map = n->arg->type->code == SCH_T_MAP;
    while (sch_coll_next(&it, &k, &v)) {
        int cmp = sch_value_compare(n->key_type, k.p, (size_t)SIB_MAX(k.len, 0), n->cval.p, (size_t)n->cval.len);
        if (cmp == 0) return is_map ? v : k;
    }
    return val_null();
}

static void put_bytes(uint8_t **w, sch_val v)
{
    put_be32(*w, (uint32_t)v.len);
    *w += 4;
    if (v.len > 0) memcpy(*w, v.p, (size_t)v.len);
    if (v.len > 0) *w += v.len;
}

/* coll[from..to] (inclusive, either side open). An empty slice of a
 * non-frozen column is null (no cell selected), of a frozen value empty. */
static int eval_slice(sel_run *run, const sel_node *n, sch_val coll, sch_val *out, sib_err *err)
{
    *out = val_null();
    if (coll.len < 0) return 0;
    sch_coll_iter it;
    if (sch_coll_iter_init(&it, n->arg->type, coll.p, (size_t)coll.len) < 0) return 0;
    uint8_t *w = scratch_reserve(run->c, n->scratch, (size_t)coll.len + 4);
    if (!w) return oom(err);
    uint8_t *start = w;
    w += 4;
    uint32_t count = 0;
    bool is_map = n->arg->type->code == SCH_T_MAP;
    sch_val k, v;
    while (sch_coll_next(&it, &k, &v)) {
        size_t kl = (size_t)SIB_MAX(k.len, 0);
        if (n->fromv.len >= 0 && sch_value_compare(n->key_type, k.p, kl, n->fromv.p, (size_t)n->fromv.len) < 0) continue;
        if (n->tov.len >= 0 && sch_value_compare(n->key_type, k.p, kl, n->tov.p, (size_t)n->tov.len) > 0) break;
        put_bytes(&w, k);
        if (is_map) put_bytes(&w, v);
        count++;
    }
    bool multicell = n->arg->kind == SN_COLUMN && sch_type_is_multicell(n->arg->type);
    if (!count && multicell) return 0;
    put_be32(start, count);
    *out = val_of(start, (size_t)(w - start));
    return 0;
}

static int path_cmp(const st_cell_view *c, const sch_val *p)
{
    size_t n = SIB_MIN((size_t)c->pathlen, (size_t)p->len);
    int r = n ? memcmp(c->path, p->p, n) : 0;
    if (r) return r;
    return c->pathlen < (size_t)p->len ? -1 : c->pathlen > (size_t)p->len;
}

/* Is cell c of a non-frozen set/map selected by n (all cells, one element,
 * or a slice, bounds inclusive)? */
static bool cell_selected(const sel_node *n, const st_cell_view *c)
{
    if (n->term) return n->key_path.len >= 0 && path_cmp(c, &n->key_path) == 0;
    if (!n->wt_slice) return true;
    if (n->from_path.len >= 0 && path_cmp(c, &n->from_path) < 0) return false;
    return n->to_path.len < 0 || path_cmp(c, &n->to_path) <= 0;
}

/* Does a frozen value hold n's element, or an element in n's slice? */
static bool frozen_selected(const sel_node *n, const st_cell_view *cell)
{
    if (!n->term && !n->wt_slice) return true;
    sch_coll_iter it;
    if (sch_coll_iter_init(&it, n->col->type, cell->val, cell->vlen) < 0) return false;
    sch_val k, v;
    while (sch_coll_next(&it, &k, &v)) {
        size_t kl = (size_t)SIB_MAX(k.len, 0);
        const sch_val *lo = n->term ? &n->cval : &n->fromv, *hi = n->term ? &n->cval : &n->tov;
        if (lo->len >= 0 && sch_value_compare(n->key_type, k.p, kl, lo->p, (size_t)lo->len) < 0) continue;
        if (hi->len >= 0 && sch_value_compare(n->key_type, k.p, kl, hi->p, (size_t)hi->len) > 0) return false;
        return true;
    }
    return false;
}

static bool cell_time(const sel_node *n, const st_cell_view *c, int32_t now_s, int64_t *v)
{
    if (n->kind != SN_TTL) {
        *v = c->ts;
        return true;
    }
    if (c->ttl <= 0) return false;
    *v = (int64_t)c->expiry - now_s;
    return true;
}

/* WRITETIME / MAXWRITETIME / TTL of a column, an element or a slice (5.0):
 * a scalar for a simple or frozen column (null when the subscript selects
 * nothing), a list with an entry per selected element of a non-frozen
 * collection (null when none; a TTL entry is null without a TTL), the
 * largest timestamp for MAXWRITETIME, the element's own for col[key]. */
static int eval_times(sel_run *run, const sel_node *n, const st_cell_view *cells, size_t nc, uint8_t *tmp,
                      sch_val *out, sib_err *err)
{
    int32_t now = run->c->now_s;
    int64_t v;
    if (!sch_type_is_multicell(n->col->type)) {
        if (frozen_selected(n, &cells[0]) && cell_time(n, &cells[0], now, &v))
            *out = n->kind == SN_TTL ? put32(tmp, v) : put64(tmp, v);
        return 0;
    }
    size_t count = 0;
    bool any = false;
    int64_t max = 0;
    for (size_t i = 0; i < nc; i++) {
        if (!cell_selected(n, &cells[i])) continue;
        count++;
        if (cell_time(n, &cells[i], now, &v) && (!any || v > max)) { max = v; any = true; }
    }
    if (!count) return 0;
    if (!n->scratch) { /* one element, or MAXWRITETIME */
        if (any) *out = n->kind == SN_TTL ? put32(tmp, max) : put64(tmp, max);
        return 0;
    }
    size_t w = n->kind == SN_TTL ? 4 : 8;
    uint8_t *p = scratch_reserve(run->c, n->scratch, 4 + count * (4 + w));
    if (!p) return oom(err);
    uint8_t *q = p + 4;
    put_be32(p, (uint32_t)count);
    for (size_t i = 0; i < nc; i++) {
        if (!cell_selected(n, &cells[i])) continue;
        if (!cell_time(n, &cells[i], now, &v)) {
            put_be32(q, UINT32_MAX); /* null entry */
            q += 4;
            continue;
        }
        put_be32(q, (uint32_t)w);
        if (w == 4) put_be32(q + 4, (uint32_t)v);
        else put_be64(q + 4, (uint64_t)v);
        q += 4 + w;
    }
    *out = val_of(p, (size_t)(q - p));
    return 0;
}

/* toJson(arg): the text, kept in the node's scratch (valid until the next row). */
static int eval_tojson(sel_run *run, const sel_node *n, sch_val a, sch_val *out, sib_err *err)
{
    sib_buf b;
    sib_buf_init(&b);
    exec_json_value(n->arg->type, a.p, a.len, &b);
    uint8_t *p = b.oom ? NULL : scratch_reserve(run->c, n->scratch, b.len + 1);
    if (p) memcpy(p, b.p, b.len);
    *out = val_of(p, b.len);
    sib_buf_free(&b);
    return p ? 0 : oom(err);
}

/* Evaluates a scalar selector; tmp (16 bytes) holds small results. */
int eval(sel_run *run, const sel_node *n, row_ctx *rc, uint8_t *tmp, sch_val *out, sib_err *err)
{
    uint8_t atmp[16];
    sch_val a = val_null();
    size_t nc;
    const st_cell_view *cells;
    int e;
    *out = val_null();
    switch (n->kind) {
    case SN_COLUMN: return col_value(run, rc, n->col, out, err);
    case SN_CONST: *out = n->cval; return 0;
    case SN_COUNT:
    case SN_AGG: return group_agg_value(run, n, out, err); /* a scalar function over an aggregate */
    case SN_TOKEN:
        if (rc->pk) {
            *out = put64(tmp, sib_murmur3_token(rc->pk, rc->pklen));
        } else { /* system rows: build the key from the pk columns */
            const uint8_t *vals[16];
            size_t lens[16], npk = sch_table_pk_count(run->t);
            for (size_t i = 0; i < npk && i < 16; i++) {
                sch_val v = rc->allv[sch_table_pk(run->t, i)->index];
                vals[i] = v.p;
                lens[i] = v.len < 0 ? 0 : (size_t)v.len;
            }
            sib_buf_reset(&run->text);
            if (npk <= 16 && sch_pk_encode(run->t, vals, lens, npk, &run->text, NULL) == 0)
                *out = put64(tmp, sib_murmur3_token(run->text.p, run->text.len));
        }
        return 0;
    case SN_WRITETIME:
    case SN_MAXWRITETIME:
    case SN_TTL:
        if (rc->allv) return 0;
        cells = row_cells(n->col->kind == SCH_COL_STATIC ? rc->srow : rc->row, n->col->id, &nc);
        if (!nc) return 0;
        return eval_times(run, n, cells, nc, tmp, out, err);
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
    case SN_CONVERT:
        if ((e = eval(run, n->arg, rc, tmp, out, err))) return e;
        /* blobAsType: bytes that are no valid value of the type fail the query */
        if (out->len > 0 && n->type->code != SCH_T_BLOB &&
            (e = sch_value_validate(n->type, out->p, (size_t)out->len, err)))
            return e;
        return 0;
    case SN_ELEMENT:
        if ((e = eval(run, n->arg, rc, atmp, &a, err))) return e;
        *out = eval_element(n, a);
        return 0;
    case SN_SLICE:
        if ((e = eval(run, n->arg, rc, atmp, &a, err))) return e;
        return eval_slice(run, n, a, out, err);
    case SN_TOJSON:
        if ((e = eval(run, n->arg, rc, atmp, &a, err))) return e;
        return eval_tojson(run, n, a, out, err);
    }
    return 0;
}
