/* parse_dml.c: SELECT, INSERT, UPDATE, DELETE and BATCH
 * (docs/cql.md §2; clause order as in Cassandra's Parser.g).
 *
 * Sibyl extension: USING CONSISTENCY <level> is one more USING option for
 * INSERT/UPDATE/DELETE/BATCH and a trailing clause of every one of them and
 * of SELECT; it lands in prs_stmt.consistency.
 */
#include <ctype.h>

#include "parser_int.h"

/* ---- SELECT ------------------------------------------------------------ */

static bool wordish(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '"' || c == '\'' || c == '$';
}

/* Source text of visible tokens [from, to), one space only between words. */
static const char *span_text(prs_parser *p, size_t from, size_t to)
{
    sib_buf b;
    sib_buf_init(&b);
    char prev = 0;
    for (size_t i = from; i < to; i++) {
        const prs_tok *t = &p->all.t[p->vis[i]];
        const char *s = p->text + t->off;
        if (t->len == 0) continue;
        if (wordish(prev) && wordish(s[0])) sib_buf_u8(&b, ' ');
        sib_buf_append(&b, s, t->len);
        prev = s[t->len - 1];
    }
    if (b.oom) {
        sib_buf_free(&b);
        perr_oom(p);
    }
    char *out = palloc(p, b.len + 1);
    if (b.len) memcpy(out, b.p, b.len);
    sib_buf_free(&b);
    return out;
}

static prs_selector *parse_sel_expr(prs_parser *p, prs_selector *s);

static void parse_sel_args(prs_parser *p, prs_selector *s)
{
    pvec v;
    pvec_init(&v, sizeof(prs_selector *));
    pexpect(p, '(');
    if (!paccept(p, ')')) {
        do {
            prs_selector *a = PNEW(p, prs_selector);
            *(prs_selector **)pvec_push(p, &v) = parse_sel_expr(p, a);
        } while (paccept(p, ','));
        pexpect(p, ')');
    }
    s->nargs = v.n;
    s->args = v.v;
}

/* Two adjacent dots: the ".." of a slice. */
static bool at_range(prs_parser *p)
{
    return pkind(p, 0) == '.' && pkind(p, 1) == '.' && pk(p, 0)->off + 1 == pk(p, 1)->off;
}

/* After '[': term ']' (sets *elem, returns false) or [term] '..' [term] ']'
 * (sets *from / *to, NULL when open, returns true). */
static bool parse_subscript(prs_parser *p, prs_term **elem, prs_term **from, prs_term **to)
{
    prs_term *first = at_range(p) ? NULL : parse_term(p);
    bool slice = at_range(p);
    if (slice) {
        padvance(p);
        padvance(p);
        *from = first;
        *to = pkind(p, 0) == ']' ? NULL : parse_term(p);
    } else {
        *elem = first;
    }
    pexpect(p, ']');
    return slice;
}

/* COUNT(*) / COUNT(1), WRITETIME(c), MAXWRITETIME(c), TTL(c), CAST(..). */
static bool parse_special_selector(prs_parser *p, prs_selector *s)
{
    if (pkind(p, 1) != '(') return false;
    if (pword(p, 0, "count") &&
        (pkind(p, 2) == '*' || (pkind(p, 2) == T_INTEGER && pk(p, 2)->len == 1 &&
                                p->text[pk(p, 2)->off] == '1')) &&
        pkind(p, 3) == ')') {
        s->kind = PRS_SEL_COUNT;
        for (int i = 0; i < 4; i++) padvance(p);
        return true;
    }
    static const struct { const char *w; prs_sel_kind k; } one_col[] = {
        {"writetime", PRS_SEL_WRITETIME}, {"maxwritetime", PRS_SEL_MAXWRITETIME}, {"ttl", PRS_SEL_TTL},
    };
    for (size_t i = 0; i < SIB_ARRAY_LEN(one_col); i++) {
        if (!pword(p, 0, one_col[i].w)) continue;
        s->kind = one_col[i].k;
        padvance(p);
        pexpect(p, '(');
        s->column = parse_col_ref(p);
        if (paccept(p, '[')) s->elem_slice = parse_subscript(p, &s->elem, &s->from, &s->to);
        pexpect(p, ')');
        return true;
    }
    if (pword(p, 0, "cast")) {
        s->kind = PRS_SEL_CAST;
        padvance(p);
        pexpect(p, '(');
        s->nargs = 1;
        s->args = palloc(p, sizeof(prs_selector *));
        s->args[0] = parse_sel_expr(p, PNEW(p, prs_selector));
        pexpect_word(p, "as");
        s->type = parse_type(p);
        if (s->type->kind != PRS_TYPE_NATIVE) perr_raw(p, "CAST is only supported to native types");
        pexpect(p, ')');
        return true;
    }
    return false;
}

/* sel '[' term ']' | sel '[' [term] '..' [term] ']' (the caller saw '['):
 * s becomes the element/slice selection of a copy of itself. */
static void parse_sel_subscript(prs_parser *p, prs_selector *s)
{
    prs_selector *inner = PNEW(p, prs_selector);
    *inner = *s;
    memset(s, 0, sizeof *s);
    s->nargs = 1;
    s->args = palloc(p, sizeof(prs_selector *));
    s->args[0] = inner;
    s->kind = parse_subscript(p, &s->term, &s->from, &s->to) ? PRS_SEL_SLICE : PRS_SEL_ELEMENT;
}

static prs_selector *parse_sel_expr(prs_parser *p, prs_selector *s)
{
    pdepth_enter(p);
    size_t start = p->pos;
    if (parse_special_selector(p, s)) {
        /* done */
    } else if (at_constant(p) || pword(p, 0, "null") || pkind(p, 0) == '?' || pkind(p, 0) == ':' ||
               (pkind(p, 0) == '(' && at_type_hint(p))) {
        s->kind = PRS_SEL_TERM;
        s->term = parse_term(p);
    } else if (pword(p, 0, "token")) {
        padvance(p); /* reserved: only a function name, so '(' must follow */
        s->kind = PRS_SEL_FUNC;
        s->func_name = "token";
        parse_sel_args(p, s);
    } else if (is_ident_tok(p, 0) && pkind(p, 1) == '.' && pkind(p, 3) == '(') {
        s->kind = PRS_SEL_FUNC;
        s->func_ks = parse_ident(p);
        padvance(p);
        s->func_name = parse_func_name(p);
        parse_sel_args(p, s);
    } else if (is_ident_tok(p, 0) && pkind(p, 1) == '(') {
        s->kind = PRS_SEL_FUNC;
        s->func_name = parse_ident(p);
        parse_sel_args(p, s);
    } else {
        s->kind = PRS_SEL_COLUMN;
        s->column = parse_col_ref(p);
    }
    s->text = span_text(p, start, p->pos);
    int nsub = 0; /* each subscript nests once more: bounded like recursion */
    for (; paccept(p, '['); nsub++) {
        pdepth_enter(p);
        parse_sel_subscript(p, s);
        s->text = span_text(p, start, p->pos);
    }
    while (nsub-- > 0) pdepth_leave(p);
    pdepth_leave(p);
    return s;
}

static void parse_selectors(prs_parser *p, prs_select *sel)
{
    if (paccept(p, '*')) {
        sel->star = true;
        return;
    }
    pvec v;
    pvec_init(&v, sizeof(prs_selector));
    do {
        prs_selector *s = pvec_push(p, &v);
        parse_sel_expr(p, s);
        if (paccept_word(p, "as")) s->alias = parse_ident(p);
    } while (paccept(p, ','));
    sel->nsel = v.n;
    sel->sel = v.v;
}

/* JSON / DISTINCT are unreserved: they are modifiers only when a selector follows. */
static bool at_select_modifier(prs_parser *p, const char *kw)
{
    if (!pword(p, 0, kw)) return false;
    int k1 = pkind(p, 1);
    return !(pword(p, 1, "from") || pword(p, 1, "as") || k1 == ',' || k1 == '(' || k1 == '.' ||
             k1 == T_EOF);
}

static void parse_orderings(prs_parser *p, size_t *n, prs_ordering **out, bool dir_required)
{
    pvec v;
    pvec_init(&v, sizeof(prs_ordering));
    do {
        prs_ordering *o = pvec_push(p, &v);
        o->col = parse_col_ref(p);
        if (paccept_word(p, "desc")) o->desc = true;
        else if (!paccept_word(p, "asc") && dir_required) perr_noviable(p);
    } while (paccept(p, ','));
    *n = v.n;
    *out = v.v;
}

static void parse_trailing_consistency(prs_parser *p, prs_stmt *st);

static void parse_select_tail(prs_parser *p, prs_stmt *st)
{
    prs_select *s = &st->select;
    if (paccept_word(p, "where")) parse_where(p, &s->nwhere, &s->where);
    if (pword(p, 0, "group") && pword(p, 1, "by")) {
        padvance(p);
        padvance(p);
        pvec v;
        pvec_init(&v, sizeof(const char *));
        do {
            *(const char **)pvec_push(p, &v) = parse_col_ref(p);
        } while (paccept(p, ','));
        s->ngroup = v.n;
        s->group_by = v.v;
    }
    if (paccept_word(p, "order")) {
        pexpect_word(p, "by");
        parse_orderings(p, &s->norder, &s->order, false);
    }
    if (pword(p, 0, "per") && pword(p, 1, "partition")) {
        padvance(p);
        padvance(p);
        pexpect_word(p, "limit");
        s->per_partition_limit = parse_int_value(p);
    }
    if (paccept_word(p, "limit")) s->limit = parse_int_value(p);
    if (paccept_word(p, "allow")) {
        pexpect_word(p, "filtering");
        s->allow_filtering = true;
    }
    parse_trailing_consistency(p, st);
}

/* The Sibyl extension's trailing form, allowed at the end of every DML
 * statement and batch: ... USING CONSISTENCY <level>. */
static void parse_trailing_consistency(prs_parser *p, prs_stmt *st)
{
    if (!pword(p, 0, "using") || !pword(p, 1, "consistency")) return;
    padvance(p);
    padvance(p);
    st->consistency = parse_consistency_level(p);
}

prs_stmt *parse_select(prs_parser *p)
{
    prs_stmt *st = new_stmt(p, PRS_STMT_SELECT);
    prs_select *s = &st->select;
    pexpect_word(p, "select");
    if (at_select_modifier(p, "json")) {
        padvance(p);
        s->json = true;
    }
    if (at_select_modifier(p, "distinct")) {
        padvance(p);
        s->distinct = true;
    }
    parse_selectors(p, s);
    pexpect_word(p, "from");
    s->table = parse_table_name(p);
    parse_select_tail(p, st);
    return st;
}

/* ---- INSERT ------------------------------------------------------------ */

prs_stmt *parse_insert(prs_parser *p)
{
    prs_stmt *st = new_stmt(p, PRS_STMT_INSERT);
    prs_insert *in = &st->insert;
    pexpect_word(p, "insert");
    pexpect_word(p, "into");
    in->table = parse_table_name(p);
    pvec cols, vals;
    pvec_init(&cols, sizeof(const char *));
    pvec_init(&vals, sizeof(prs_term *));
    if (paccept_word(p, "json")) { /* JSON 'text' [DEFAULT (NULL | UNSET)] */
        in->json = parse_term(p);
        if (paccept_word(p, "default")) {
            if (paccept_word(p, "unset")) in->json_default_unset = true;
            else pexpect_word(p, "null");
        }
    } else {
        pexpect(p, '(');
        do {
            *(const char **)pvec_push(p, &cols) = parse_col_ref(p);
        } while (paccept(p, ','));
        pexpect(p, ')');
        pexpect_word(p, "values");
        pexpect(p, '(');
        do {
            *(prs_term **)pvec_push(p, &vals) = parse_term(p);
        } while (paccept(p, ','));
        pexpect(p, ')');
    }
    in->ncols = cols.n;
    in->cols = cols.v;
    in->nvalues = vals.n;
    in->values = vals.v;
    if (paccept_word(p, "if")) {
        pexpect_word(p, "not");
        pexpect_word(p, "exists");
        in->if_not_exists = true;
    }
    if (paccept_word(p, "using")) parse_using(p, &in->using, &st->consistency, false);
    parse_trailing_consistency(p, st);
    return st;
}

/* ---- UPDATE ------------------------------------------------------------ */

/* A plain "c = v" is incompatible with any other operation on c
 * (Operation.RawUpdate.isCompatibleWith). */
static void check_assignments(prs_parser *p, const prs_assignment *a, size_t n)
{
    name_ref *refs = palloc(p, n * sizeof *refs);
    for (size_t i = 0; i < n; i++) refs[i] = (name_ref){a[i].col, i, a[i].kind == PRS_ASSIGN_SET};
    size_t bad = first_name_clash(p, refs, n);
    if (bad != SIZE_MAX) perr_raw(p, "Multiple incompatible setting of column %s", a[bad].col);
}

static bool at_col_ref(prs_parser *p, size_t k)
{
    return is_ident_tok(p, k) || pk(p, k)->kind == T_QNAME;
}

/* The right-hand side of "c = ...": X + v, X - v, X -3, v + X or v. */
static void parse_assign_rhs(prs_parser *p, prs_assignment *a)
{
    int k1 = pkind(p, 1);
    if (at_col_ref(p, 0) && (k1 == '+' || k1 == '-' || k1 == T_INTEGER)) {
        const char *self = parse_col_ref(p);
        if (k1 == T_INTEGER) {
            char sign = p->text[pk(p, 0)->off] == '-' ? '-' : '+';
            if (strcmp(self, a->col) != 0)
                perr_raw(p, "Only expressions of the form X = X %c <value> are supported.", sign);
            a->kind = PRS_ASSIGN_ADD;
            a->value = parse_int_value(p);
            return;
        }
        padvance(p);
        if (strcmp(self, a->col) != 0)
            perr_raw(p, "Only expressions of the form X = X %c<value> are supported.", k1);
        a->kind = k1 == '+' ? PRS_ASSIGN_ADD : PRS_ASSIGN_SUB;
        a->value = parse_term(p);
        return;
    }
    a->value = parse_term(p);
    a->kind = PRS_ASSIGN_SET;
    if (paccept(p, '+')) {
        const char *self = parse_col_ref(p);
        if (strcmp(self, a->col) != 0)
            perr_raw(p, "Only expressions of the form X = <value> + X are supported.");
        a->kind = PRS_ASSIGN_PREPEND;
    }
}

static void parse_assignment(prs_parser *p, pvec *v)
{
    prs_assignment a = {0};
    a.col = parse_col_ref(p);
    if (paccept(p, '[')) {
        a.kind = PRS_ASSIGN_ELEM;
        a.key = parse_term(p);
        pexpect(p, ']');
        pexpect(p, '=');
        a.value = parse_term(p);
    } else if (paccept(p, T_PLUSEQ)) {
        a.kind = PRS_ASSIGN_ADD;
        a.value = parse_term(p);
    } else if (paccept(p, T_MINUSEQ)) {
        a.kind = PRS_ASSIGN_SUB;
        a.value = parse_term(p);
    } else {
        pexpect(p, '=');
        parse_assign_rhs(p, &a);
    }
    *(prs_assignment *)pvec_push(p, v) = a;
}

prs_stmt *parse_update(prs_parser *p)
{
    prs_stmt *st = new_stmt(p, PRS_STMT_UPDATE);
    prs_update *u = &st->update;
    pexpect_word(p, "update");
    u->table = parse_table_name(p);
    if (paccept_word(p, "using")) parse_using(p, &u->using, &st->consistency, false);
    pexpect_word(p, "set");
    pvec v;
    pvec_init(&v, sizeof(prs_assignment));
    do {
        parse_assignment(p, &v);
    } while (paccept(p, ','));
    u->nassign = v.n;
    u->assign = v.v;
    check_assignments(p, u->assign, u->nassign);
    pexpect_word(p, "where");
    parse_where(p, &u->nwhere, &u->where);
    if (paccept_word(p, "if")) parse_conditions(p, &u->if_exists, &u->nconds, &u->conds);
    parse_trailing_consistency(p, st);
    return st;
}

/* ---- DELETE ------------------------------------------------------------ */

prs_stmt *parse_delete(prs_parser *p)
{
    prs_stmt *st = new_stmt(p, PRS_STMT_DELETE);
    prs_delete *d = &st->del;
    pexpect_word(p, "delete");
    if (!pword(p, 0, "from")) {
        pvec v;
        pvec_init(&v, sizeof(prs_delete_sel));
        do {
            prs_delete_sel *s = pvec_push(p, &v);
            s->col = parse_col_ref(p);
            if (paccept(p, '[')) {
                s->key = parse_term(p);
                pexpect(p, ']');
            }
        } while (paccept(p, ','));
        d->ncols = v.n;
        d->cols = v.v;
    }
    pexpect_word(p, "from");
    d->table = parse_table_name(p);
    if (paccept_word(p, "using")) parse_using(p, &d->using, &st->consistency, true);
    pexpect_word(p, "where");
    parse_where(p, &d->nwhere, &d->where);
    if (paccept_word(p, "if")) parse_conditions(p, &d->if_exists, &d->nconds, &d->conds);
    parse_trailing_consistency(p, st);
    return st;
}

/* ---- BATCH ------------------------------------------------------------- */

prs_stmt *parse_batch(prs_parser *p)
{
    prs_stmt *st = new_stmt(p, PRS_STMT_BATCH);
    prs_batch *b = &st->batch;
    pexpect_word(p, "begin");
    if (paccept_word(p, "unlogged")) b->kind = PRS_BATCH_UNLOGGED;
    else if (paccept_word(p, "counter")) b->kind = PRS_BATCH_COUNTER;
    pexpect_word(p, "batch");
    if (paccept_word(p, "using")) parse_using(p, &b->using, &st->consistency, false);
    pvec v;
    pvec_init(&v, sizeof(prs_stmt *));
    for (;;) {
        prs_stmt *inner;
        if (pword(p, 0, "insert")) inner = parse_insert(p);
        else if (pword(p, 0, "update")) inner = parse_update(p);
        else if (pword(p, 0, "delete")) inner = parse_delete(p);
        else break;
        *(prs_stmt **)pvec_push(p, &v) = inner;
        paccept(p, ';');
    }
    if (!pword(p, 0, "apply")) perr_noviable(p);
    padvance(p);
    pexpect_word(p, "batch");
    b->nstmts = v.n;
    b->stmts = v.v;
    parse_trailing_consistency(p, st);
    return st;
}
