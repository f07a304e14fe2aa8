/* parse_term.c: the expression-level grammar shared by all statements —
 * constants, bind markers, terms, types, WHERE relations, IF conditions,
 * table/keyspace properties and USING clauses (docs/cql.md §2).
 *
 * Every recursive rule (term, type, relation) goes through pdepth_enter()
 * so nesting is bounded by PRS_MAX_DEPTH whatever the input.
 */
#include <strings.h>

#include "parser_int.h"

/* ---- constants and markers --------------------------------------------- */

bool at_constant(prs_parser *p)
{
    switch (pkind(p, 0)) {
    case T_STRING: case T_PGSTRING: case T_INTEGER: case T_FLOAT: case T_BOOLEAN:
    case T_UUID: case T_HEX: case T_DURATION:
        return true;
    default:
        return pword(p, 0, "nan") || pword(p, 0, "infinity");
    }
}

bool parse_const(prs_parser *p, prs_const *out)
{
    if (!at_constant(p)) return false;
    const prs_tok *t = pk(p, 0);
    switch (t->kind) {
    case T_STRING: case T_PGSTRING: out->kind = PRS_CONST_STRING; break;
    case T_INTEGER: out->kind = PRS_CONST_INTEGER; break;
    case T_BOOLEAN: out->kind = PRS_CONST_BOOLEAN; break;
    case T_UUID: out->kind = PRS_CONST_UUID; break;
    case T_HEX: out->kind = PRS_CONST_HEX; break;
    case T_DURATION: out->kind = PRS_CONST_DURATION; break;
    default: out->kind = PRS_CONST_FLOAT; break; /* FLOAT, NaN, Infinity */
    }
    out->text = tok_text(p, t, &out->len);
    padvance(p);
    return true;
}

static prs_term *new_term(prs_parser *p, prs_term_kind kind)
{
    const prs_tok *t = pk(p, 0);
    prs_term *term = PNEW(p, prs_term);
    term->kind = kind;
    term->line = t->line;
    term->col = t->col;
    return term;
}

static bool at_marker(prs_parser *p)
{
    return pkind(p, 0) == '?' || pkind(p, 0) == ':';
}

prs_term *parse_marker(prs_parser *p)
{
    prs_term *t = new_term(p, PRS_TERM_MARKER);
    const prs_tok *tok = pk(p, 0);
    prs_marker *m = pvec_push(p, &p->markers);
    m->line = tok->line;
    m->col = tok->col;
    m->offset = tok->off;
    t->marker = (int)(p->markers.n - 1);
    if (paccept(p, '?')) return t;
    pexpect(p, ':');
    m->name = parse_ident(p); /* no marker can be pushed meanwhile: m stays valid */
    return t;
}

prs_term *parse_int_value(prs_parser *p)
{
    if (at_marker(p)) return parse_marker(p);
    if (pkind(p, 0) != T_INTEGER) perr_noviable(p);
    prs_term *t = new_term(p, PRS_TERM_CONST);
    parse_const(p, &t->cst);
    return t;
}

/* ---- types --------------------------------------------------------------- */

static const char *const native_types[] = {
    "ascii", "bigint", "blob", "boolean", "counter", "date", "decimal", "double", "duration",
    "float", "inet", "int", "smallint", "text", "time", "timestamp", "timeuuid", "tinyint",
    "uuid", "varchar", "varint",
};

static const char *native_type_at(prs_parser *p)
{
    for (size_t i = 0; i < SIB_ARRAY_LEN(native_types); i++)
        if (pword(p, 0, native_types[i])) return native_types[i];
    return NULL;
}

static bool at_type_start(prs_parser *p, size_t k)
{
    static const char *const params[] = {"map", "list", "set", "tuple", "frozen"};
    for (size_t i = 0; i < SIB_ARRAY_LEN(params); i++)
        if (pword(p, k, params[i])) return true;
    return is_ident_tok(p, k);
}

static void type_args(prs_parser *p, prs_typeref *t, size_t min, size_t max)
{
    pvec v;
    pvec_init(&v, sizeof(prs_typeref *));
    pexpect(p, '<');
    do {
        *(prs_typeref **)pvec_push(p, &v) = parse_type(p);
    } while (v.n < max && paccept(p, ','));
    if (v.n < min) pexpect(p, ',');
    pexpect(p, '>');
    t->nsub = v.n;
    t->sub = v.v;
}

prs_typeref *parse_type(prs_parser *p)
{
    static const struct { const char *word; prs_type_kind kind; size_t min, max; } params[] = {
        {"map", PRS_TYPE_MAP, 2, 2}, {"list", PRS_TYPE_LIST, 1, 1}, {"set", PRS_TYPE_SET, 1, 1},
        {"tuple", PRS_TYPE_TUPLE, 1, SIZE_MAX}, {"frozen", PRS_TYPE_FROZEN, 1, 1},
    };
    pdepth_enter(p);
    prs_typeref *t = PNEW(p, prs_typeref);
    const char *native = native_type_at(p);
    if (native) {
        t->kind = PRS_TYPE_NATIVE;
        t->name = native;
        padvance(p);
        pdepth_leave(p);
        return t;
    }
    for (size_t i = 0; i < SIB_ARRAY_LEN(params); i++) {
        if (pword(p, 0, params[i].word) && pkind(p, 1) == '<') {
            t->kind = params[i].kind;
            t->name = params[i].word;
            padvance(p);
            type_args(p, t, params[i].min, params[i].max);
            pdepth_leave(p);
            return t;
        }
    }
    t->kind = PRS_TYPE_UDT;
    if (pkind(p, 1) == '.' && is_ident_tok(p, 0)) {
        t->ks = parse_ident(p);
        padvance(p);
    }
    t->name = parse_ident(p);
    pdepth_leave(p);
    return t;
}

/* ---- terms --------------------------------------------------------------- */

static prs_term *parse_collection(prs_parser *p, prs_term_kind kind, int close)
{
    prs_term *t = new_term(p, kind);
    pvec v;
    pvec_init(&v, sizeof(prs_term *));
    padvance(p); /* the opening bracket */
    if (!paccept(p, close)) {
        do {
            *(prs_term **)pvec_push(p, &v) = parse_term(p);
        } while (paccept(p, ','));
        pexpect(p, close);
    }
    t->coll.n = v.n;
    t->coll.items = v.v;
    return t;
}

/* '{' '}' | '{' term ':' term {, ...} '}' | '{' term {, term} '}' */
static prs_term *parse_set_or_map(prs_parser *p)
{
    prs_term *t = new_term(p, PRS_TERM_SET);
    pexpect(p, '{');
    if (paccept(p, '}')) return t;
    pvec keys, vals;
    pvec_init(&keys, sizeof(prs_term *));
    pvec_init(&vals, sizeof(prs_term *));
    *(prs_term **)pvec_push(p, &keys) = parse_term(p);
    if (paccept(p, ':')) {
        t->kind = PRS_TERM_MAP;
        *(prs_term **)pvec_push(p, &vals) = parse_term(p);
        while (paccept(p, ',')) {
            *(prs_term **)pvec_push(p, &keys) = parse_term(p);
            pexpect(p, ':');
            *(prs_term **)pvec_push(p, &vals) = parse_term(p);
        }
        pexpect(p, '}');
        t->map.n = keys.n;
        t->map.keys = keys.v;
        t->map.values = vals.v;
        return t;
    }
    while (paccept(p, ','))
        *(prs_term **)pvec_push(p, &keys) = parse_term(p);
    pexpect(p, '}');
    t->coll.n = keys.n;
    t->coll.items = keys.v;
    return t;
}

/* Can token k start a function name? Plain names plus the reserved TOKEN. */
static bool at_func_name(prs_parser *p, size_t k)
{
    return is_ident_tok(p, k) || pword(p, k, "token");
}

const char *parse_func_name(prs_parser *p)
{
    if (pword(p, 0, "token")) {
        padvance(p);
        return "token";
    }
    return parse_ident(p);
}

static prs_term *parse_function(prs_parser *p)
{
    prs_term *t = new_term(p, PRS_TERM_FUNC);
    if (pkind(p, 1) == '.') {
        t->func.ks = parse_ident(p);
        padvance(p);
    }
    t->func.name = parse_func_name(p);
    pexpect(p, '(');
    pvec v;
    pvec_init(&v, sizeof(prs_term *));
    if (!paccept(p, ')')) {
        do {
            *(prs_term **)pvec_push(p, &v) = parse_term(p);
        } while (paccept(p, ','));
        pexpect(p, ')');
    }
    t->func.nargs = v.n;
    t->func.args = v.v;
    return t;
}

/* CAST '(' term AS native_type ')' */
static prs_term *parse_cast(prs_parser *p)
{
    prs_term *t = new_term(p, PRS_TERM_CAST);
    padvance(p);
    pexpect(p, '(');
    t->cast.term = parse_term(p);
    pexpect_word(p, "as");
    const char *native = native_type_at(p);
    if (!native) perr_noviable(p);
    t->cast.type = parse_type(p);
    pexpect(p, ')');
    return t;
}

/* '(' type ')' term, told apart from a tuple by the token after the name. */
bool at_type_hint(prs_parser *p)
{
    if (!at_type_start(p, 1)) return false;
    int k2 = pkind(p, 2);
    return k2 == ')' || k2 == '<' || k2 == '.';
}

static prs_term *parse_term_inner(prs_parser *p)
{
    if (at_constant(p)) {
        prs_term *t = new_term(p, PRS_TERM_CONST);
        parse_const(p, &t->cst);
        return t;
    }
    if (pword(p, 0, "null")) {
        prs_term *t = new_term(p, PRS_TERM_NULL);
        padvance(p);
        return t;
    }
    switch (pkind(p, 0)) {
    case '?': case ':': return parse_marker(p);
    case '[': return parse_collection(p, PRS_TERM_LIST, ']');
    case '{': return parse_set_or_map(p);
    case '(':
        if (at_type_hint(p)) {
            prs_term *t = new_term(p, PRS_TERM_TYPEHINT);
            padvance(p);
            t->cast.type = parse_type(p);
            pexpect(p, ')');
            t->cast.term = parse_term(p);
            return t;
        }
        return parse_collection(p, PRS_TERM_TUPLE, ')');
    default: break;
    }
    if (pword(p, 0, "cast") && pkind(p, 1) == '(') return parse_cast(p);
    if (at_func_name(p, 0) && (pkind(p, 1) == '(' || (pkind(p, 1) == '.' && pkind(p, 3) == '(')))
        return parse_function(p);
    perr_noviable(p);
}

prs_term *parse_term(prs_parser *p)
{
    pdepth_enter(p);
    prs_term *t = parse_term_inner(p);
    pdepth_leave(p);
    return t;
}

/* ---- relations ----------------------------------------------------------- */

static bool parse_op(prs_parser *p, prs_op *op)
{
    switch (pkind(p, 0)) {
    case '=': *op = PRS_OP_EQ; break;
    case '<': *op = PRS_OP_LT; break;
    case T_LTE: *op = PRS_OP_LTE; break;
    case '>': *op = PRS_OP_GT; break;
    case T_GTE: *op = PRS_OP_GTE; break;
    case T_NEQ: *op = PRS_OP_NEQ; break;
    default: return false;
    }
    padvance(p);
    return true;
}

/* IN ( marker | '(' [term {, term}] ')' ) */
static void parse_in_values(prs_parser *p, prs_relation *r)
{
    r->op = PRS_OP_IN;
    if (at_marker(p)) {
        r->value = parse_marker(p);
        return;
    }
    pexpect(p, '(');
    pvec v;
    pvec_init(&v, sizeof(prs_term *));
    if (!paccept(p, ')')) {
        do {
            *(prs_term **)pvec_push(p, &v) = parse_term(p);
        } while (paccept(p, ','));
        pexpect(p, ')');
    }
    r->nin = v.n;
    r->in = v.v;
}

static void parse_ident_list(prs_parser *p, prs_relation *r, bool token_args)
{
    pvec v;
    pvec_init(&v, sizeof(const char *));
    pexpect(p, '(');
    if (token_args && paccept(p, ')')) return;
    do {
        *(const char **)pvec_push(p, &v) = parse_col_ref(p);
    } while (paccept(p, ','));
    pexpect(p, ')');
    r->ncols = v.n;
    r->cols = v.v;
}

static void parse_single_relation(prs_parser *p, prs_relation *r, bool condition)
{
    r->kind = PRS_REL_SINGLE;
    r->ncols = 1;
    r->cols = palloc(p, sizeof(const char *));
    r->cols[0] = parse_col_ref(p);
    if (paccept(p, '[')) {
        r->key = parse_term(p);
        pexpect(p, ']');
        if (!condition) { /* WHERE m[key] op value: an operator must follow */
            if (!parse_op(p, &r->op)) perr_noviable(p);
            r->value = parse_term(p);
            return;
        }
    }
    if (paccept_word(p, "in")) {
        parse_in_values(p, r);
    } else if (!condition && paccept_word(p, "contains")) {
        r->op = paccept_word(p, "key") ? PRS_OP_CONTAINS_KEY : PRS_OP_CONTAINS;
        r->value = parse_term(p);
    } else if (!condition && paccept_word(p, "is")) {
        pexpect_word(p, "not");
        pexpect_word(p, "null");
        r->op = PRS_OP_IS_NOT_NULL;
    } else if (parse_op(p, &r->op)) {
        r->value = parse_term(p);
    } else {
        perr_noviable(p);
    }
}

static void parse_relation(prs_parser *p, prs_relation *r, bool condition);

static void parse_relation_inner(prs_parser *p, prs_relation *r, bool condition)
{
    const prs_tok *t = pk(p, 0);
    r->line = t->line;
    r->col = t->col;
    if (!condition && pword(p, 0, "token")) {
        padvance(p);
        r->kind = PRS_REL_TOKEN;
        parse_ident_list(p, r, true);
        if (!parse_op(p, &r->op)) perr_noviable(p);
        r->value = parse_term(p);
        return;
    }
    if (!condition && pkind(p, 0) == '(') {
        bool multi = is_ident_tok(p, 1) || (pk(p, 1)->kind == T_QNAME);
        multi = multi && (pkind(p, 2) == ',' || pkind(p, 2) == ')');
        if (!multi) {
            padvance(p);
            parse_relation(p, r, condition);
            pexpect(p, ')');
            return;
        }
        r->kind = PRS_REL_MULTI;
        parse_ident_list(p, r, false);
        if (paccept_word(p, "in")) {
            parse_in_values(p, r);
            return;
        }
        if (!parse_op(p, &r->op)) perr_noviable(p);
        if (!at_marker(p) && pkind(p, 0) != '(') perr_noviable(p);
        r->value = parse_term(p);
        return;
    }
    parse_single_relation(p, r, condition);
}

static void parse_relation(prs_parser *p, prs_relation *r, bool condition)
{
    pdepth_enter(p);
    parse_relation_inner(p, r, condition);
    pdepth_leave(p);
}

void parse_where(prs_parser *p, size_t *n, prs_relation **out)
{
    pvec v;
    pvec_init(&v, sizeof(prs_relation));
    do {
        parse_relation(p, pvec_push(p, &v), false);
    } while (paccept_word(p, "and"));
    *n = v.n;
    *out = v.v;
}

/* After IF: EXISTS | condition {AND condition}. */
void parse_conditions(prs_parser *p, bool *if_exists, size_t *n, prs_relation **out)
{
    if (paccept_word(p, "exists")) {
        *if_exists = true;
        return;
    }
    pvec v;
    pvec_init(&v, sizeof(prs_relation));
    do {
        parse_relation(p, pvec_push(p, &v), true);
    } while (paccept_word(p, "and"));
    *n = v.n;
    *out = v.v;
}

/* ---- properties ---------------------------------------------------------- */

static void parse_prop_map(prs_parser *p, prs_prop *pr)
{
    pvec keys, vals;
    pvec_init(&keys, sizeof(prs_const));
    pvec_init(&vals, sizeof(prs_const));
    pexpect(p, '{');
    if (!paccept(p, '}')) {
        do {
            if (!parse_const(p, pvec_push(p, &keys))) perr_noviable(p);
            pexpect(p, ':');
            if (!parse_const(p, pvec_push(p, &vals))) perr_noviable(p);
        } while (paccept(p, ','));
        pexpect(p, '}');
    }
    /* a key twice is a syntax error, as Cassandra's convertPropertyMap
     * makes it (keys compared as written: '1' and 1 clash) */
    const prs_const *k = keys.v;
    name_ref *refs = palloc(p, (keys.n ? keys.n : 1) * sizeof *refs);
    for (size_t i = 0; i < keys.n; i++) refs[i] = (name_ref){k[i].text, i, true};
    size_t dup = first_name_clash(p, refs, keys.n);
    if (dup != SIZE_MAX) perr_raw(p, "Multiple definition for property %s", k[dup].text);
    pr->kind = PRS_PROP_MAP;
    pr->nentries = keys.n;
    pr->keys = keys.v;
    pr->values = vals.v;
}

void parse_property(prs_parser *p, pvec *props)
{
    const char *name = parse_ident(p);
    prs_prop *pr = pvec_push(p, props);
    pr->name = name;
    pexpect(p, '=');
    if (pkind(p, 0) == '{') {
        parse_prop_map(p, pr);
    } else if (parse_const(p, &pr->value)) {
        pr->kind = PRS_PROP_CONST;
    } else if (is_ident_tok(p, 0) && pk(p, 0)->kind == T_IDENT) {
        pr->kind = PRS_PROP_IDENT;
        pr->value.kind = PRS_CONST_STRING;
        pr->value.text = parse_ident(p);
        pr->value.len = strlen(pr->value.text);
    } else {
        perr_noviable(p);
    }
}

void check_duplicate_props(prs_parser *p, const pvec *props)
{
    const prs_prop *pr = props->v;
    name_ref *refs = palloc(p, (props->n ? props->n : 1) * sizeof *refs);
    for (size_t i = 0; i < props->n; i++) refs[i] = (name_ref){pr[i].name, i, true};
    size_t dup = first_name_clash(p, refs, props->n);
    if (dup != SIZE_MAX) perr_raw(p, "Multiple definition for property %s", pr[dup].name);
}

void parse_properties(prs_parser *p, pvec *props)
{
    do {
        parse_property(p, props);
    } while (paccept_word(p, "and"));
    check_duplicate_props(p, props);
}

/* ---- USING ------------------------------------------------------------- */

int parse_consistency_level(prs_parser *p)
{
    const prs_tok *t = pk(p, 0);
    if (t->kind == T_IDENT && t->len < 16) {
        char w[16];
        memcpy(w, p->text + t->off, t->len);
        w[t->len] = 0;
        int cl = prs_consistency_parse(w);
        if (cl >= 0) {
            padvance(p);
            return cl;
        }
    }
    perr_mismatch(p, "consistency level");
}

/* USING opt {AND opt}, opt = TTL v | TIMESTAMP v | CONSISTENCY level (the
 * caller has seen USING). DELETE allows no TTL. */
void parse_using(prs_parser *p, prs_using *u, int *consistency, bool timestamp_only)
{
    do {
        if (paccept_word(p, "timestamp")) {
            u->timestamp = parse_int_value(p);
        } else if (!timestamp_only && paccept_word(p, "ttl")) {
            u->ttl = parse_int_value(p);
        } else if (paccept_word(p, "consistency")) {
            *consistency = parse_consistency_level(p);
        } else if (timestamp_only) {
            perr_mismatch(p, "K_TIMESTAMP");
        } else {
            perr_noviable(p);
        }
    } while (paccept_word(p, "and"));
}
