/* parse_ddl.c: schema statements (CREATE/ALTER/DROP KEYSPACE and TABLE,
 * TRUNCATE, USE, DESCRIBE) and prs_parse(), the entry point.
 *
 * prs_parse: scan everything (lexer.rl), index the visible tokens, then
 * parse `statement ';'* EOF` as Cassandra's Cql.g does; any error unwinds
 * through longjmp to here with err already filled.
 */
#include "parser_int.h"

/* ---- keyspaces --------------------------------------------------------- */

static bool accept_keyspace_word(prs_parser *p)
{
    return paccept_word(p, "keyspace") || paccept_word(p, "schema");
}

static bool accept_table_word(prs_parser *p)
{
    return paccept_word(p, "table") || paccept_word(p, "columnfamily");
}

static bool accept_if_exists(prs_parser *p)
{
    if (!pword(p, 0, "if")) return false;
    padvance(p);
    pexpect_word(p, "exists");
    return true;
}

static bool accept_if_not_exists(prs_parser *p)
{
    if (!pword(p, 0, "if")) return false;
    padvance(p);
    pexpect_word(p, "not");
    pexpect_word(p, "exists");
    return true;
}

static void keyspace_props(prs_parser *p, prs_keyspace_stmt *ks)
{
    pexpect_word(p, "with");
    pvec v;
    pvec_init(&v, sizeof(prs_prop));
    parse_properties(p, &v);
    ks->nprops = v.n;
    ks->props = v.v;
}

/* ---- tables ------------------------------------------------------------ */

typedef struct table_def {
    pvec cols, partition, clustering, order, props;
} table_def;

static void names_in_parens(prs_parser *p, pvec *v)
{
    pexpect(p, '(');
    do {
        *(const char **)pvec_push(p, v) = parse_ident(p);
    } while (paccept(p, ','));
    pexpect(p, ')');
}

/* A derived partition key component (Sibyl): BUCKET '(' ident ',' constant ')'
 * or SALT '(' constant ')'; the word followed by '(' tells it from a column
 * named bucket or salt. Pushes the derived column's name. Only the first
 * PRIMARY KEY declaration records its definition. */
static bool parse_pk_derived(prs_parser *p, prs_create_table *ct, pvec *part)
{
    bool bucket = pword(p, 0, "bucket"), salt = pword(p, 0, "salt");
    if ((!bucket && !salt) || pkind(p, 1) != '(') return false;
    bool record = ct->npk_decls == 0;
    padvance(p);
    padvance(p);
    if (bucket) {
        if (record && ct->bucket_col) perr_raw(p, "Only one BUCKET(...) is allowed in a partition key");
        const char *col = parse_ident(p);
        pexpect(p, ',');
        prs_const w;
        if (!parse_const(p, &w)) perr_noviable(p);
        size_t n = strlen(col) + sizeof "_bucket";
        char *name = palloc(p, n);
        snprintf(name, n, "%s_bucket", col);
        *(const char **)pvec_push(p, part) = name;
        if (record) {
            ct->bucket_col = col;
            ct->bucket_width = w;
        }
    } else {
        if (record && ct->has_salt) perr_raw(p, "Only one SALT(...) is allowed in a partition key");
        prs_const n;
        if (!parse_const(p, &n)) perr_noviable(p);
        *(const char **)pvec_push(p, part) = "salt";
        if (record) {
            ct->has_salt = true;
            ct->salt_count = n;
        }
    }
    pexpect(p, ')');
    return true;
}

static void pk_component(prs_parser *p, prs_create_table *ct, pvec *part)
{
    if (!parse_pk_derived(p, ct, part)) *(const char **)pvec_push(p, part) = parse_ident(p);
}

/* PRIMARY KEY '(' (component | '(' component {, component} ')') {, ident} ')'
 * where a component is a column or BUCKET(...) / SALT(...). */
static void parse_pk_clause(prs_parser *p, prs_create_table *ct, table_def *d)
{
    pvec part, clus;
    pvec_init(&part, sizeof(const char *));
    pvec_init(&clus, sizeof(const char *));
    pexpect(p, '(');
    if (pkind(p, 0) == '(') {
        padvance(p);
        do {
            pk_component(p, ct, &part);
        } while (paccept(p, ','));
        pexpect(p, ')');
    } else {
        pk_component(p, ct, &part);
    }
    while (paccept(p, ','))
        *(const char **)pvec_push(p, &clus) = parse_ident(p);
    pexpect(p, ')');
    if (ct->npk_decls++ == 0) {
        d->partition = part;
        d->clustering = clus;
    }
}

static void parse_coldef(prs_parser *p, prs_coldef *c)
{
    c->name = parse_ident(p);
    c->type = parse_type(p);
    if (paccept_word(p, "static")) c->is_static = true;
}

static void parse_col_or_pk(prs_parser *p, prs_create_table *ct, table_def *d)
{
    if (paccept_word(p, "primary")) {
        pexpect_word(p, "key");
        parse_pk_clause(p, ct, d);
        return;
    }
    prs_coldef *c = pvec_push(p, &d->cols);
    parse_coldef(p, c);
    if (paccept_word(p, "primary")) {
        pexpect_word(p, "key");
        c->primary_key = true;
        if (ct->npk_decls++ == 0) *(const char **)pvec_push(p, &d->partition) = c->name;
    }
}

/* table_prop {AND table_prop}: COMPACT STORAGE | CLUSTERING ORDER BY (..) | property */
static void parse_table_props(prs_parser *p, table_def *d, bool *compact)
{
    do {
        if (pword(p, 0, "compact") && pword(p, 1, "storage")) {
            padvance(p);
            padvance(p);
            *compact = true;
        } else if (pword(p, 0, "clustering") && pword(p, 1, "order")) {
            padvance(p);
            padvance(p);
            pexpect_word(p, "by");
            pexpect(p, '(');
            do {
                prs_ordering *o = pvec_push(p, &d->order);
                o->col = parse_ident(p);
                if (paccept_word(p, "desc")) o->desc = true;
                else if (!paccept_word(p, "asc")) perr_noviable(p);
            } while (paccept(p, ','));
            pexpect(p, ')');
        } else {
            parse_property(p, &d->props);
        }
    } while (paccept_word(p, "and"));
    check_duplicate_props(p, &d->props);
}

static void table_def_init(table_def *d)
{
    pvec_init(&d->cols, sizeof(prs_coldef));
    pvec_init(&d->partition, sizeof(const char *));
    pvec_init(&d->clustering, sizeof(const char *));
    pvec_init(&d->order, sizeof(prs_ordering));
    pvec_init(&d->props, sizeof(prs_prop));
}

static prs_stmt *parse_create_table(prs_parser *p)
{
    prs_stmt *st = new_stmt(p, PRS_STMT_CREATE_TABLE);
    prs_create_table *ct = &st->create_table;
    table_def d;
    table_def_init(&d);
    ct->if_not_exists = accept_if_not_exists(p);
    ct->table = parse_table_name(p);
    pexpect(p, '(');
    parse_col_or_pk(p, ct, &d);
    while (paccept(p, ',')) {
        if (pkind(p, 0) == ')') break; /* trailing comma */
        parse_col_or_pk(p, ct, &d);
    }
    pexpect(p, ')');
    if (paccept_word(p, "with")) parse_table_props(p, &d, &ct->compact_storage);
    ct->ncols = d.cols.n;
    ct->cols = d.cols.v;
    ct->npartition = d.partition.n;
    ct->partition = d.partition.v;
    ct->nclustering = d.clustering.n;
    ct->clustering = d.clustering.v;
    ct->norder = d.order.n;
    ct->clustering_order = d.order.v;
    ct->nprops = d.props.n;
    ct->props = d.props.v;
    return st;
}

prs_stmt *parse_create(prs_parser *p)
{
    pexpect_word(p, "create");
    if (accept_keyspace_word(p)) {
        prs_stmt *st = new_stmt(p, PRS_STMT_CREATE_KEYSPACE);
        st->keyspace.if_not_exists = accept_if_not_exists(p);
        st->keyspace.name = parse_ks_name(p);
        keyspace_props(p, &st->keyspace);
        return st;
    }
    if (accept_table_word(p)) return parse_create_table(p);
    perr_noviable(p);
}

/* ---- ALTER ------------------------------------------------------------- */

static void alter_add(prs_parser *p, prs_alter_table *at)
{
    pvec v;
    pvec_init(&v, sizeof(prs_coldef));
    at->kind = PRS_ALTER_ADD;
    at->col_if = accept_if_not_exists(p);
    if (paccept(p, '(')) {
        do {
            parse_coldef(p, pvec_push(p, &v));
        } while (paccept(p, ','));
        pexpect(p, ')');
    } else {
        parse_coldef(p, pvec_push(p, &v));
    }
    at->ncols = v.n;
    at->cols = v.v;
}

static void alter_drop(prs_parser *p, prs_alter_table *at)
{
    pvec v;
    pvec_init(&v, sizeof(const char *));
    at->kind = PRS_ALTER_DROP;
    at->col_if = accept_if_exists(p);
    if (pkind(p, 0) == '(') names_in_parens(p, &v);
    else *(const char **)pvec_push(p, &v) = parse_ident(p);
    at->nnames = v.n;
    at->names = v.v;
    if (paccept_word(p, "using")) {
        pexpect_word(p, "timestamp");
        if (pkind(p, 0) != T_INTEGER) perr_mismatch(p, "INTEGER");
        at->drop_timestamp = parse_int_value(p);
    }
}

static void alter_rename(prs_parser *p, prs_alter_table *at)
{
    pvec from, to;
    pvec_init(&from, sizeof(const char *));
    pvec_init(&to, sizeof(const char *));
    at->kind = PRS_ALTER_RENAME;
    at->col_if = accept_if_exists(p);
    do {
        *(const char **)pvec_push(p, &from) = parse_ident(p);
        pexpect_word(p, "to");
        *(const char **)pvec_push(p, &to) = parse_ident(p);
    } while (paccept_word(p, "and"));
    at->nnames = from.n;
    at->names = from.v;
    at->new_names = to.v;
}

static prs_stmt *parse_alter_table(prs_parser *p)
{
    prs_stmt *st = new_stmt(p, PRS_STMT_ALTER_TABLE);
    prs_alter_table *at = &st->alter_table;
    at->if_exists = accept_if_exists(p);
    at->table = parse_table_name(p);
    if (paccept_word(p, "add")) {
        alter_add(p, at);
    } else if (paccept_word(p, "drop")) {
        alter_drop(p, at);
    } else if (paccept_word(p, "rename")) {
        alter_rename(p, at);
    } else if (paccept_word(p, "alter")) {
        at->kind = PRS_ALTER_TYPE;
        at->ncols = 1;
        at->cols = PNEW(p, prs_coldef);
        at->cols[0].name = parse_ident(p);
        pexpect_word(p, "type");
        at->cols[0].type = parse_type(p);
    } else if (paccept_word(p, "with")) {
        table_def d;
        table_def_init(&d);
        bool compact = false;
        at->kind = PRS_ALTER_WITH;
        parse_table_props(p, &d, &compact);
        at->nprops = d.props.n;
        at->props = d.props.v;
    } else {
        perr_noviable(p);
    }
    return st;
}

prs_stmt *parse_alter(prs_parser *p)
{
    pexpect_word(p, "alter");
    if (accept_keyspace_word(p)) {
        prs_stmt *st = new_stmt(p, PRS_STMT_ALTER_KEYSPACE);
        st->keyspace.if_exists = accept_if_exists(p);
        st->keyspace.name = parse_ks_name(p);
        keyspace_props(p, &st->keyspace);
        return st;
    }
    if (accept_table_word(p)) return parse_alter_table(p);
    perr_noviable(p);
}

/* ---- DROP, TRUNCATE, USE ----------------------------------------------- */

prs_stmt *parse_drop(prs_parser *p)
{
    pexpect_word(p, "drop");
    if (accept_keyspace_word(p)) {
        prs_stmt *st = new_stmt(p, PRS_STMT_DROP_KEYSPACE);
        st->keyspace.if_exists = accept_if_exists(p);
        st->keyspace.name = parse_ks_name(p);
        return st;
    }
    if (accept_table_word(p)) {
        prs_stmt *st = new_stmt(p, PRS_STMT_DROP_TABLE);
        st->table.if_exists = accept_if_exists(p);
        st->table.table = parse_table_name(p);
        return st;
    }
    perr_noviable(p);
}

prs_stmt *parse_truncate(prs_parser *p)
{
    prs_stmt *st = new_stmt(p, PRS_STMT_TRUNCATE);
    pexpect_word(p, "truncate");
    accept_table_word(p);
    st->table.table = parse_table_name(p);
    return st;
}

prs_stmt *parse_use(prs_parser *p)
{
    prs_stmt *st = new_stmt(p, PRS_STMT_USE);
    pexpect_word(p, "use");
    st->keyspace.name = parse_ks_name(p);
    return st;
}

/* ---- DESCRIBE ---------------------------------------------------------- */

static bool at_describe_end(prs_parser *p)
{
    return pkind(p, 0) == T_EOF || pkind(p, 0) == ';' || pword(p, 0, "with");
}

static bool describe_keyword(prs_parser *p, prs_describe *d)
{
    static const struct { const char *w; prs_describe_kind k; } simple[] = {
        {"cluster", PRS_DESC_CLUSTER}, {"keyspaces", PRS_DESC_KEYSPACES}, {"tables", PRS_DESC_TABLES},
        {"columnfamilies", PRS_DESC_TABLES}, {"types", PRS_DESC_TYPES},
        {"functions", PRS_DESC_FUNCTIONS}, {"aggregates", PRS_DESC_AGGREGATES},
    };
    for (size_t i = 0; i < SIB_ARRAY_LEN(simple); i++) {
        if (pword(p, 0, simple[i].w) && (pkind(p, 1) == T_EOF || pkind(p, 1) == ';')) {
            padvance(p);
            d->kind = simple[i].k;
            return true;
        }
    }
    if (paccept_word(p, "full")) {
        pexpect_word(p, "schema");
        d->kind = PRS_DESC_SCHEMA;
        d->full = true;
        return true;
    }
    if (paccept_word(p, "schema")) {
        d->kind = PRS_DESC_SCHEMA;
        return true;
    }
    if (pword(p, 0, "only") && pword(p, 1, "keyspace")) {
        padvance(p);
        d->only = true;
    }
    if (paccept_word(p, "keyspace")) {
        d->kind = PRS_DESC_KEYSPACE;
        if (!at_describe_end(p)) d->name.name = parse_ks_name(p);
        return true;
    }
    if (accept_table_word(p)) {
        d->kind = PRS_DESC_TABLE;
        d->name = parse_table_name(p);
        return true;
    }
    return false;
}

prs_stmt *parse_describe(prs_parser *p)
{
    prs_stmt *st = new_stmt(p, PRS_STMT_DESCRIBE);
    prs_describe *d = &st->describe;
    if (!paccept_word(p, "describe")) pexpect_word(p, "desc");
    if (!describe_keyword(p, d)) {
        d->kind = PRS_DESC_NAME;
        d->name = parse_table_name(p);
    }
    if (paccept_word(p, "with")) {
        pexpect_word(p, "internals");
        d->with_internals = true;
    }
    return st;
}

/* ---- entry point ------------------------------------------------------- */

static prs_stmt *parse_statement(prs_parser *p)
{
    static const struct { const char *w; prs_stmt *(*fn)(prs_parser *); } starts[] = {
        {"select", parse_select}, {"insert", parse_insert}, {"update", parse_update},
        {"delete", parse_delete}, {"begin", parse_batch}, {"create", parse_create},
        {"alter", parse_alter}, {"drop", parse_drop}, {"truncate", parse_truncate},
        {"use", parse_use}, {"describe", parse_describe}, {"desc", parse_describe},
    };
    for (size_t i = 0; i < SIB_ARRAY_LEN(starts); i++)
        if (pword(p, 0, starts[i].w)) return starts[i].fn(p);
    perr_noviable(p);
}

static void expect_eof(prs_parser *p)
{
    while (paccept(p, ';')) {
    }
    if (pkind(p, 0) != T_EOF) perr_not_eof(p);
}

static int index_visible(prs_parser *p)
{
    p->vis = sib_arena_alloc(p->a, p->all.n * sizeof *p->vis);
    if (!p->vis) return SIB_ENOMEM;
    p->nvis = 0;
    for (size_t i = 0; i < p->all.n; i++) {
        int k = p->all.t[i].kind;
        if (k != T_WS && k != T_COMMENT) p->vis[p->nvis++] = i;
    }
    return 0;
}

/* Kept apart so no local is live across setjmp (the parser state is all in *p). */
static int run_parser(prs_parser *p, prs_stmt **out)
{
    if (setjmp(p->jb)) return p->err->code ? p->err->code : SIB_ESYNTAX;
    prs_stmt *st = parse_statement(p);
    expect_eof(p);
    st->nmarkers = p->markers.n;
    st->markers = p->markers.v;
    *out = st;
    return 0;
}

int prs_parse(const char *text, size_t len, sib_arena *arena, prs_stmt **out, sib_err *err)
{
    sib_err local;
    if (!err) err = &local;
    sib_err_clear(err);
    if (!arena || !out || (!text && len))
        return sib_err_set(err, SIB_EINVAL, "prs_parse: bad arguments");
    prs_parser p = {.text = text ? text : "", .len = len, .a = arena, .err = err};
    pvec_init(&p.markers, sizeof(prs_marker));
    if (prs_lex(p.text, len, arena, &p.all) < 0 || index_visible(&p) < 0)
        return sib_err_set(err, SIB_ENOMEM, "out of memory while parsing");
    return run_parser(&p, out);
}
