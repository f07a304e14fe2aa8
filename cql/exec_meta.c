/* exec_meta.c: bind and result metadata for PREPARE.
 *
 * Each bind marker is named and typed after its receiver, as Cassandra
 * does: the column it is compared with or assigned to (`k`), `in(k)` for
 * `k IN ?` (a list of k's type), `[limit]`, `[ttl]`, `[timestamp]`,
 * `partition key token`; a named marker `:x` keeps its own name. The
 * partition key indexes tell token-aware drivers which markers make up the
 * routing key; they are sent only when every partition key column is bound
 * by `=` to a marker.
 */
#include "exec_int.h"

typedef struct meta_walk {
    exec_ctx *c;
    exec_meta *m;
    const sch_table *t;
    int *pk_marker; /* per partition key position: marker index or -1 */
    sib_err *err;
    int rc;         /* first error of a check made while walking */
} meta_walk;

static const char *arena_name(meta_walk *w, const char *fmt, const char *arg)
{
    size_t n = strlen(fmt) + strlen(arg) + 1;
    char *s = sib_arena_alloc(w->c->arena, n);
    if (!s) return "";
    snprintf(s, n, fmt, arg);
    return s;
}

/* "what(name)" in the arena ("" if out of memory: the marker then keeps a
 * poorer name, nothing worse). */
static const char *spec_name(meta_walk *w, const char *what, const char *name)
{
    size_t n = strlen(what) + strlen(name) + 3;
    char *s = sib_arena_alloc(w->c->arena, n);
    if (!s) return "";
    snprintf(s, n, "%s(%s)", what, name);
    return s;
}

static void bind(meta_walk *w, const prs_term *term, const char *name, const sch_type *type)
{
    if (!term) return;
    if (term->kind == PRS_TERM_MARKER) {
        int i = term->marker;
        if (i < 0 || (size_t)i >= w->m->nbind) return;
        const char *own = w->c->markers[i].name;
        w->m->bind_names[i] = own ? own : name;
        w->m->bind_types[i] = type;
        return;
    }
    /* Elements of a collection literal are named like Cassandra's
     * Lists/Sets/Maps specs: value(c), key(c). */
    if ((term->kind == PRS_TERM_LIST || term->kind == PRS_TERM_SET) && type &&
        (type->code == SCH_T_LIST || type->code == SCH_T_SET))
        for (size_t k = 0; k < term->coll.n; k++) bind(w, term->coll.items[k], spec_name(w, "value", name), type->sub[0]);
    if (term->kind == PRS_TERM_MAP && type && type->code == SCH_T_MAP)
        for (size_t k = 0; k < term->map.n; k++) {
            bind(w, term->map.keys[k], spec_name(w, "key", name), type->sub[0]);
            bind(w, term->map.values[k], spec_name(w, "value", name), type->sub[1]);
        }
    if (term->kind == PRS_TERM_TYPEHINT || term->kind == PRS_TERM_CAST) bind(w, term->cast.term, name, type);
    const sch_type *at = term->kind == PRS_TERM_FUNC && term->func.nargs == 1 ? exec_fn_arg_type(term->func.name) : NULL;
    if (at) bind(w, term->func.args[0], arena_name(w, "arg0(system.%s)", term->func.name), at);
}

static void bind_col(meta_walk *w, const prs_term *term, const sch_column *col, bool eq)
{
    if (!col) return;
    bind(w, term, col->name, col->type);
    if (eq && term && term->kind == PRS_TERM_MARKER && col->kind == SCH_COL_PARTITION_KEY)
        w->pk_marker[col->position] = term->marker;
}

/* c[key]: key(m) of the map's key type, idx(l) an int for a list. */
static void bind_elem_key(meta_walk *w, const prs_term *key, const sch_column *col)
{
    if (col->type->code == SCH_T_LIST) bind(w, key, spec_name(w, "idx", col->name), sch_type_native(SCH_T_INT));
    else bind(w, key, spec_name(w, "key", col->name), col->type->sub[0]);
}

/* Collection operations whose markers are not typed as the whole column:
 * c[k] = v (value(c)), and a map subtraction (a set of keys). Returns false
 * when the plain column type applies. */
static bool bind_coll_assign(meta_walk *w, const prs_assignment *as, const sch_column *col)
{
    const sch_type *t = col->type;
    if (as->kind == PRS_ASSIGN_ELEM) {
        bind_elem_key(w, as->key, col);
        bind(w, as->value, spec_name(w, "value", col->name), t->code == SCH_T_MAP ? t->sub[1] : t->sub[0]);
        return true;
    }
    if (as->kind == PRS_ASSIGN_SUB && t->code == SCH_T_MAP) {
        bind(w, as->value, col->name, sch_type_set(sch_catalog_types(w->c->ex->cat), t->sub[0], false));
        return true;
    }
    return false;
}

static void bind_using(meta_walk *w, const prs_using *u)
{
    bind(w, u->ttl, "[ttl]", sch_type_native(SCH_T_INT));
    bind(w, u->timestamp, "[timestamp]", sch_type_native(SCH_T_BIGINT));
}

/* (b, c) op (?, ?) names each marker after its column; (b, c) op ? is a
 * tuple named "(b,c)"; (b, c) IN ? a list of those tuples named "in(b,c)". */
static void bind_multi_term(meta_walk *w, const prs_relation *r, const prs_term *term, const char *tname,
                            const sch_type *tt)
{
    if (!term) return;
    if (term->kind == PRS_TERM_TUPLE) {
        for (size_t k = 0; k < term->coll.n && k < r->ncols; k++)
            bind_col(w, term->coll.items[k], sch_table_column_by_name(w->t, r->cols[k]), false);
        return;
    }
    bind(w, term, tname, tt);
}

static void bind_multi(meta_walk *w, const prs_relation *r)
{
    if (!w->rc) w->rc = exec_ck_check_multi(w->c, w->t, r, w->err);
    const sch_type *tt = exec_ck_tuple_type(w->c, w->t, r);
    if (!tt) return;
    sib_buf b;
    sib_buf_init(&b);
    sib_buf_append(&b, "in(", 3);
    for (size_t i = 0; i < r->ncols; i++) sib_buf_printf(&b, "%s%s", i ? "," : "", r->cols[i]);
    sib_buf_append(&b, ")", 2);
    if (b.oom) {
        sib_buf_free(&b);
        return;
    }
    const char *in_name = sib_arena_strdup(w->c->arena, (const char *)b.p);
    sib_buf_free(&b);
    if (!in_name) return;
    const char *tname = in_name + 2; /* "(b,c)" */
    if (r->op == PRS_OP_IN && r->value) {
        bind(w, r->value, in_name, sch_type_list(sch_catalog_types(w->c->ex->cat), tt, false));
        return;
    }
    for (size_t k = 0; k < r->nin; k++) bind_multi_term(w, r, r->in[k], tname, tt);
    bind_multi_term(w, r, r->value, tname, tt);
}

static void bind_where(meta_walk *w, const prs_relation *rels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const prs_relation *r = &rels[i];
        if (r->kind == PRS_REL_TOKEN) {
            const prs_term *v = r->value;
            if (v && v->kind == PRS_TERM_FUNC && !strcmp(v->func.name, "token") && !v->func.ks) {
                for (size_t k = 0; k < v->func.nargs && k < sch_table_pk_count(w->t); k++)
                    bind_col(w, v->func.args[k], sch_table_pk(w->t, k), false);
                continue;
            }
            bind(w, r->value, "partition key token", sch_type_native(SCH_T_BIGINT));
            continue;
        }
        if (r->kind == PRS_REL_MULTI) {
            bind_multi(w, r);
            continue;
        }
        const sch_column *col = sch_table_column_by_name(w->t, r->cols[0]);
        if (!col) continue;
        bool contains = r->op == PRS_OP_CONTAINS || r->op == PRS_OP_CONTAINS_KEY;
        if ((contains || r->key) && sch_type_is_collection(col->type)) { /* key(m), value(m) */
            const char *name;
            const sch_type *kt = exec_coll_term_type(w->c, col, true, &name);
            if (r->key) bind(w, r->key, name, kt);
            const sch_type *vt = exec_coll_term_type(w->c, col, r->op == PRS_OP_CONTAINS_KEY, &name);
            bind(w, r->value, name, vt);
            continue;
        }
        if (r->op == PRS_OP_IN && r->value) {
            char *nm = sib_arena_alloc(w->c->arena, strlen(col->name) + 5);
            if (nm) sprintf(nm, "in(%s)", col->name);
            bind(w, r->value, nm, sch_type_list(sch_catalog_types(w->c->ex->cat), col->type, false));
            continue;
        }
        for (size_t k = 0; k < r->nin; k++) bind_col(w, r->in[k], col, false);
        bind_col(w, r->value, col, r->op == PRS_OP_EQ);
    }
}

/* The type a selector produces when it is a column or a subscript chain on
 * one (NULL otherwise: markers elsewhere in selectors are typed by hints). */
static const sch_type *selector_type(meta_walk *w, const prs_selector *s)
{
    if (s->kind == PRS_SEL_COLUMN) {
        const sch_column *col = sch_table_column_by_name(w->t, s->column);
        return col ? col->type : NULL;
    }
    if (s->kind != PRS_SEL_ELEMENT && s->kind != PRS_SEL_SLICE) return NULL;
    const sch_type *ct = selector_type(w, s->args[0]);
    if (!ct || !sch_type_is_collection(ct) || ct->code == SCH_T_LIST) return NULL;
    if (s->kind == PRS_SEL_SLICE) return ct;
    return ct->code == SCH_T_MAP ? ct->sub[1] : ct->sub[0];
}

/* Markers in selectors: subscripts (key(m) / value(s), named after what
 * they subscript), WRITETIME(m[?]), and type-hinted ones, which Cassandra
 * names all alike "[selection]". */
static void bind_selector(meta_walk *w, const prs_selector *s)
{
    for (size_t i = 0; i < s->nargs; i++) bind_selector(w, s->args[i]);
    const sch_type *at = s->kind == PRS_SEL_FUNC && s->nargs == 1 ? exec_fn_arg_type(s->func_name) : NULL;
    if (at && s->args[0]->kind == PRS_SEL_TERM && s->args[0]->term->kind != PRS_TERM_TYPEHINT) {
        /* typed by the function's only signature */
        bind(w, s->args[0]->term, arena_name(w, "arg0(system.%s)", s->func_name), at);
    }
    if (s->kind == PRS_SEL_TERM && s->term->kind == PRS_TERM_TYPEHINT) {
        const sch_type *ht = NULL;
        const prs_typeref *r = s->term->cast.type;
        if (r->kind == PRS_TYPE_NATIVE &&
            sch_type_resolve(sch_catalog_types(w->c->ex->cat), r->name, strlen(r->name), NULL, 0, &ht, NULL) == 0)
            bind(w, s->term->cast.term, "[selection]", ht);
        return;
    }
    const sch_type *ct = NULL;
    const char *base = NULL;
    if (s->kind == PRS_SEL_ELEMENT || s->kind == PRS_SEL_SLICE) {
        ct = selector_type(w, s->args[0]);
        base = s->args[0]->kind == PRS_SEL_COLUMN ? s->args[0]->column : s->args[0]->text;
    } else if (s->elem) {
        const sch_column *col = sch_table_column_by_name(w->t, s->column);
        ct = col ? col->type : NULL;
        base = s->column;
    }
    if (!ct || !sch_type_is_collection(ct) || ct->code == SCH_T_LIST) return;
    const char *name = spec_name(w, ct->code == SCH_T_MAP ? "key" : "value", base);
    bind(w, s->elem ? s->elem : s->term, name, ct->sub[0]);
    bind(w, s->from, name, ct->sub[0]);
    bind(w, s->to, name, ct->sub[0]);
}

static int walk(meta_walk *w, const prs_stmt *s, sib_err *err);

static int walk_table(meta_walk *w, const prs_qname *q, sib_err *err)
{
    const sch_table *t;
    int rc = exec_resolve_table(w->c, q, &t, err);
    if (rc) return rc;
    if (!w->t) {
        w->m->ks = sch_table_keyspace(t);
        w->m->table = sch_table_name(t);
        w->pk_marker = sib_arena_alloc(w->c->arena, sizeof(int) * (sch_table_pk_count(t) + 1));
        if (!w->pk_marker) return sib_err_set(err, SIB_ENOMEM, "metadata");
        for (size_t i = 0; i < sch_table_pk_count(t); i++) w->pk_marker[i] = -1;
    }
    w->t = t;
    return 0;
}

static int walk(meta_walk *w, const prs_stmt *s, sib_err *err)
{
    int rc = 0;
    switch (s->kind) {
    case PRS_STMT_INSERT:
        if ((rc = walk_table(w, &s->insert.table, err))) return rc;
        for (size_t i = 0; i < s->insert.ncols && i < s->insert.nvalues; i++)
            bind_col(w, s->insert.values[i], sch_table_column_by_name(w->t, s->insert.cols[i]), true);
        bind(w, s->insert.json, "[json]", sch_type_native(SCH_T_VARCHAR));
        bind_using(w, &s->insert.using);
        return 0;
    case PRS_STMT_UPDATE:
        if ((rc = walk_table(w, &s->update.table, err))) return rc;
        bind_using(w, &s->update.using);
        for (size_t i = 0; i < s->update.nassign; i++) {
            const prs_assignment *as = &s->update.assign[i];
            const sch_column *col = sch_table_column_by_name(w->t, as->col);
            if (col && sch_type_is_collection(col->type) && bind_coll_assign(w, as, col)) continue;
            bind_col(w, as->value, col, false);
        }
        bind_where(w, s->update.where, s->update.nwhere);
        return 0;
    case PRS_STMT_DELETE:
        if ((rc = walk_table(w, &s->del.table, err))) return rc;
        bind_using(w, &s->del.using);
        for (size_t i = 0; i < s->del.ncols; i++) {
            const sch_column *col = sch_table_column_by_name(w->t, s->del.cols[i].col);
            if (col && s->del.cols[i].key && sch_type_is_collection(col->type))
                bind_elem_key(w, s->del.cols[i].key, col);
        }
        bind_where(w, s->del.where, s->del.nwhere);
        return 0;
    case PRS_STMT_SELECT:
        if ((rc = walk_table(w, &s->select.table, err))) return rc;
        for (size_t i = 0; i < s->select.nsel; i++) bind_selector(w, &s->select.sel[i]);
        bind_where(w, s->select.where, s->select.nwhere);
        bind(w, s->select.per_partition_limit, "[per_partition_limit]", sch_type_native(SCH_T_INT));
        bind(w, s->select.limit, "[limit]", sch_type_native(SCH_T_INT));
        w->m->has_result = true;
        return exec_select_columns(w->c, w->t, &s->select, &w->m->ncols, &w->m->col_names, &w->m->col_types, err);
    case PRS_STMT_BATCH:
        bind_using(w, &s->batch.using);
        for (size_t i = 0; i < s->batch.nstmts; i++) {
            const sch_table *first = w->t;
            if ((rc = walk(w, s->batch.stmts[i], err))) return rc;
            /* Routing uses the first statement's partition key only. */
            if (first) w->t = first;
        }
        return 0;
    default:
        return 0;
    }
}

int exec_stmt_meta(exec_ctx *c, const prs_stmt *s, exec_meta *out, sib_err *err)
{
    memset(out, 0, sizeof *out);
    out->ks = "";
    out->table = "";
    out->nbind = s->nmarkers;
    out->bind_names = sib_arena_alloc(c->arena, sizeof *out->bind_names * (s->nmarkers + 1));
    out->bind_types = sib_arena_alloc(c->arena, sizeof *out->bind_types * (s->nmarkers + 1));
    if (!out->bind_names || !out->bind_types) return sib_err_set(err, SIB_ENOMEM, "metadata");
    for (size_t i = 0; i < s->nmarkers; i++) {
        out->bind_names[i] = s->markers[i].name ? s->markers[i].name : "?";
        out->bind_types[i] = NULL;
    }
    meta_walk w = {.c = c, .m = out, .err = err};
    int rc = walk(&w, s, err);
    if (rc) return rc;
    if (w.rc) return w.rc;
    for (size_t i = 0; i < s->nmarkers; i++)
        if (!out->bind_types[i])
            return sib_err_set(err, SIB_EINVAL, "Cannot infer the type of bind marker %zu (line %d:%d)", i,
                               s->markers[i].line, s->markers[i].col);
    /* BUCKET / SALT: the driver cannot compute the derived columns, so it
     * gets no partition key indexes (no token) and the coordinator routes */
    if (w.t && w.pk_marker && !sch_table_has_derived(w.t)) {
        size_t npk = sch_table_pk_count(w.t);
        bool all = true;
        for (size_t i = 0; i < npk; i++) all &= w.pk_marker[i] >= 0;
        if (all) {
            out->pk_index = sib_arena_alloc(c->arena, sizeof *out->pk_index * (npk + 1));
            if (!out->pk_index) return sib_err_set(err, SIB_ENOMEM, "metadata");
            for (size_t i = 0; i < npk; i++) out->pk_index[i] = (uint16_t)w.pk_marker[i];
            out->npk = npk;
        }
    }
    return 0;
}
