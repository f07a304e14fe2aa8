/* Unit tests for parser/: every statement form of docs/cql.md §2 and
 * its AST fields, the lexical rules (§1), Cassandra-style syntax errors with
 * the right line:col and offending token (§4), bind markers, the
 * USING CONSISTENCY extension, and regressions found by fuzzing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>

#include "parser.h"

static sib_arena *arena;
static char errbuf[sizeof(((sib_err *)0)->msg)];

static prs_stmt *ok(const char *q)
{
    prs_stmt *st = NULL;
    sib_err err;
    int rc = prs_parse(q, strlen(q), arena, &st, &err);
    if (rc != 0) fail_msg("parse failed: %s\n  query: %s", err.msg, q);
    assert_non_null(st);
    return st;
}

/* Parses q expecting a syntax error; returns the message. */
static const char *bad(const char *q)
{
    prs_stmt *st = NULL;
    sib_err err;
    int rc = prs_parse(q, strlen(q), arena, &st, &err);
    if (rc != SIB_ESYNTAX) fail_msg("expected a syntax error (rc %d) for: %s", rc, q);
    assert_null(st);
    snprintf(errbuf, sizeof errbuf, "%s", err.msg);
    return errbuf;
}

#define assert_starts(s, prefix)                                                          \
    do {                                                                                  \
        if (strncmp((s), (prefix), strlen(prefix)) != 0)                                  \
            fail_msg("'%s' does not start with '%s'", (s), (prefix));                     \
    } while (0)

static void assert_err(const char *q, const char *prefix)
{
    const char *m = bad(q);
    assert_starts(m, prefix);
}

/* ---- SELECT ---------------------------------------------------------- */

static void test_select_subscripts(void **state)
{
    (void)state;
    prs_select *s = &ok("SELECT m['a'], m[?] AS x, s[1..3], m[..'b'], m['c'..], n[0...3.], m[1][2..], "
                        "WRITETIME(m['k']) FROM t")->select;
    assert_int_equal(s->nsel, 8);
    assert_int_equal(s->sel[0].kind, PRS_SEL_ELEMENT);
    assert_int_equal(s->sel[0].args[0]->kind, PRS_SEL_COLUMN);
    assert_string_equal(s->sel[0].args[0]->column, "m");
    assert_string_equal(s->sel[0].term->cst.text, "a");
    assert_string_equal(s->sel[0].text, "m['a']");
    assert_int_equal(s->sel[1].term->kind, PRS_TERM_MARKER);
    assert_string_equal(s->sel[1].alias, "x");
    /* "1..3": an INTEGER, the two dots, an INTEGER (not the FLOAT "1.") */
    assert_int_equal(s->sel[2].kind, PRS_SEL_SLICE);
    assert_int_equal(s->sel[2].from->cst.kind, PRS_CONST_INTEGER);
    assert_string_equal(s->sel[2].from->cst.text, "1");
    assert_string_equal(s->sel[2].to->cst.text, "3");
    assert_string_equal(s->sel[2].text, "s[1..3]");
    assert_null(s->sel[3].from);
    assert_string_equal(s->sel[3].to->cst.text, "b");
    assert_string_equal(s->sel[4].from->cst.text, "c");
    assert_null(s->sel[4].to);
    /* "0...3.": the FLOAT "0.", the two dots, the FLOAT "3." */
    assert_int_equal(s->sel[5].from->cst.kind, PRS_CONST_FLOAT);
    assert_string_equal(s->sel[5].from->cst.text, "0.");
    assert_string_equal(s->sel[5].to->cst.text, "3.");
    assert_int_equal(s->sel[6].kind, PRS_SEL_SLICE);
    assert_int_equal(s->sel[6].args[0]->kind, PRS_SEL_ELEMENT);
    assert_int_equal(s->sel[7].kind, PRS_SEL_WRITETIME);
    assert_string_equal(s->sel[7].elem->cst.text, "k");
    assert_err("SELECT m[1 . . 2] FROM t", "line 1:11 mismatched input '.' expecting ']'");
}

static void test_select_basic(void **state)
{
    (void)state;
    prs_stmt *st = ok("SELECT * FROM t");
    assert_int_equal(st->kind, PRS_STMT_SELECT);
    assert_true(st->select.star);
    assert_null(st->select.table.ks);
    assert_string_equal(st->select.table.name, "t");
    assert_int_equal(st->consistency, -1);
    assert_null(st->select.limit);

    st = ok("select DISTINCT k, \"Mixed\" AS m, count(*), COUNT(1) AS c, writetime(v), TTL(v),"
            " token(k, j), toTimestamp(now()), 'lit', ? FROM Ks.Tab");
    prs_select *s = &st->select;
    assert_true(s->distinct);
    assert_string_equal(s->table.ks, "ks");
    assert_string_equal(s->table.name, "tab");
    assert_int_equal(s->nsel, 10);
    assert_int_equal(s->sel[0].kind, PRS_SEL_COLUMN);
    assert_string_equal(s->sel[0].column, "k");
    assert_string_equal(s->sel[1].column, "Mixed");
    assert_string_equal(s->sel[1].alias, "m");
    assert_int_equal(s->sel[2].kind, PRS_SEL_COUNT);
    assert_string_equal(s->sel[2].text, "count(*)");
    assert_int_equal(s->sel[3].kind, PRS_SEL_COUNT);
    assert_string_equal(s->sel[3].alias, "c");
    assert_int_equal(s->sel[4].kind, PRS_SEL_WRITETIME);
    assert_string_equal(s->sel[4].column, "v");
    assert_int_equal(s->sel[5].kind, PRS_SEL_TTL);
    assert_int_equal(s->sel[6].kind, PRS_SEL_FUNC);
    assert_string_equal(s->sel[6].func_name, "token");
    assert_int_equal(s->sel[6].nargs, 2);
    assert_string_equal(s->sel[6].args[1]->column, "j");
    assert_int_equal(s->sel[7].kind, PRS_SEL_FUNC);
    assert_string_equal(s->sel[7].func_name, "totimestamp");
    assert_int_equal(s->sel[7].args[0]->kind, PRS_SEL_FUNC);
    assert_string_equal(s->sel[7].args[0]->func_name, "now");
    assert_string_equal(s->sel[7].text, "toTimestamp(now())");
    assert_int_equal(s->sel[8].kind, PRS_SEL_TERM);
    assert_int_equal(s->sel[8].term->cst.kind, PRS_CONST_STRING);
    assert_int_equal(s->sel[9].kind, PRS_SEL_TERM);
    assert_int_equal(st->nmarkers, 1);

    st = ok("SELECT system.token(k), ks.f(a, 1), CAST(v AS text) FROM t");
    s = &st->select;
    assert_int_equal(s->sel[0].kind, PRS_SEL_FUNC);
    assert_string_equal(s->sel[0].func_ks, "system");
    assert_string_equal(s->sel[0].func_name, "token");
    assert_string_equal(s->sel[1].func_name, "f");
    assert_int_equal(s->sel[1].args[1]->kind, PRS_SEL_TERM);
    assert_int_equal(s->sel[2].kind, PRS_SEL_CAST);
    assert_string_equal(s->sel[2].type->name, "text");
    assert_string_equal(s->sel[2].text, "CAST(v AS text)");
}

static void test_select_clauses(void **state)
{
    (void)state;
    prs_stmt *st = ok("SELECT a FROM t WHERE k = 1 AND c >= 2 AND c < 5 ORDER BY c DESC, d ASC"
                      " PER PARTITION LIMIT 2 LIMIT 10 ALLOW FILTERING");
    prs_select *s = &st->select;
    assert_int_equal(s->nwhere, 3);
    assert_int_equal(s->where[0].op, PRS_OP_EQ);
    assert_int_equal(s->where[1].op, PRS_OP_GTE);
    assert_int_equal(s->where[2].op, PRS_OP_LT);
    assert_string_equal(s->where[2].cols[0], "c");
    assert_string_equal(s->where[2].value->cst.text, "5");
    assert_int_equal(s->norder, 2);
    assert_true(s->order[0].desc);
    assert_false(s->order[1].desc);
    assert_string_equal(s->per_partition_limit->cst.text, "2");
    assert_string_equal(s->limit->cst.text, "10");
    assert_true(s->allow_filtering);

    st = ok("SELECT * FROM t LIMIT ?");
    assert_int_equal(st->select.limit->kind, PRS_TERM_MARKER);
    st = ok("SELECT * FROM t WHERE k = 'a' AND argument_types = ['int']");
    assert_int_equal(st->select.where[1].value->kind, PRS_TERM_LIST);
    assert_int_equal(st->select.where[1].value->coll.n, 1);
    st = ok("SELECT json, distinct FROM t");
    assert_false(st->select.json);
    assert_false(st->select.distinct);
    assert_string_equal(st->select.sel[1].column, "distinct");
    st = ok("SELECT JSON * FROM t");
    assert_true(st->select.json);
}

static void test_relations(void **state)
{
    (void)state;
    prs_stmt *st = ok("SELECT * FROM t WHERE k IN (1, 2, 3) AND j IN ? AND token(k, j) > token(1, 2)"
                      " AND (c1, c2) >= (1, 'a') AND (c1, c2) IN ((1, 'a'), (2, 'b'))"
                      " AND l CONTAINS 3 AND m CONTAINS KEY 'x' AND v IS NOT NULL AND x != 1"
                      " AND (z <= 4)");
    prs_relation *r = st->select.where;
    assert_int_equal(st->select.nwhere, 10);
    assert_int_equal(r[0].op, PRS_OP_IN);
    assert_null(r[0].value);
    assert_int_equal(r[0].nin, 3);
    assert_int_equal(r[1].op, PRS_OP_IN);
    assert_int_equal(r[1].value->kind, PRS_TERM_MARKER);
    assert_int_equal(r[2].kind, PRS_REL_TOKEN);
    assert_int_equal(r[2].ncols, 2);
    assert_int_equal(r[2].op, PRS_OP_GT);
    assert_int_equal(r[2].value->kind, PRS_TERM_FUNC);
    assert_string_equal(r[2].value->func.name, "token");
    assert_int_equal(r[3].kind, PRS_REL_MULTI);
    assert_int_equal(r[3].value->kind, PRS_TERM_TUPLE);
    assert_int_equal(r[3].value->coll.n, 2);
    assert_int_equal(r[4].kind, PRS_REL_MULTI);
    assert_int_equal(r[4].op, PRS_OP_IN);
    assert_int_equal(r[4].nin, 2);
    assert_int_equal(r[5].op, PRS_OP_CONTAINS);
    assert_int_equal(r[6].op, PRS_OP_CONTAINS_KEY);
    assert_int_equal(r[7].op, PRS_OP_IS_NOT_NULL);
    assert_null(r[7].value);
    assert_int_equal(r[8].op, PRS_OP_NEQ);
    assert_int_equal(r[9].op, PRS_OP_LTE);
    assert_string_equal(r[9].cols[0], "z");
    st = ok("SELECT * FROM t WHERE k IN ()");
    assert_int_equal(st->select.where[0].nin, 0);
    /* a map entry: m[key] op value */
    st = ok("SELECT * FROM t WHERE m['a'] = 1 AND n[?] > ?");
    r = st->select.where;
    assert_int_equal(st->select.nwhere, 2);
    assert_int_equal(r[0].op, PRS_OP_EQ);
    assert_int_equal(r[0].key->kind, PRS_TERM_CONST);
    assert_int_equal(r[0].value->kind, PRS_TERM_CONST);
    assert_int_equal(r[1].op, PRS_OP_GT);
    assert_int_equal(r[1].key->kind, PRS_TERM_MARKER);
    assert_int_equal(r[1].value->kind, PRS_TERM_MARKER);
    assert_err("SELECT * FROM t WHERE m['a'] CONTAINS 1", "line 1:29 no viable alternative at input 'CONTAINS'");
    assert_err("SELECT * FROM t WHERE m['a' = 1", "line 1:28 mismatched input '=' expecting ']'");
}

/* ---- terms and constants --------------------------------------------- */

static void test_terms(void **state)
{
    (void)state;
    prs_stmt *st = ok("INSERT INTO t (a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,u) VALUES ("
                      "'it''s', $$a'b$$, -12, 1.5, -2.5E-3, true, FALSE, "
                      "123e4567-E89B-12d3-a456-426614174000, 0xCafe, 1h30m, P1D, NaN, -Infinity,"
                      " null, [1, 2], {1, 2}, {'a': 1, 'b': 2}, (1, 'x'), {}, (int) 5)");
    prs_term **v = st->insert.values;
    assert_int_equal(st->insert.nvalues, 20);
    struct { prs_const_kind k; const char *text; } c[] = {
        {PRS_CONST_STRING, "it's"}, {PRS_CONST_STRING, "a'b"}, {PRS_CONST_INTEGER, "-12"},
        {PRS_CONST_FLOAT, "1.5"}, {PRS_CONST_FLOAT, "-2.5E-3"}, {PRS_CONST_BOOLEAN, "true"},
        {PRS_CONST_BOOLEAN, "FALSE"}, {PRS_CONST_UUID, "123e4567-E89B-12d3-a456-426614174000"},
        {PRS_CONST_HEX, "0xCafe"}, {PRS_CONST_DURATION, "1h30m"}, {PRS_CONST_DURATION, "P1D"},
        {PRS_CONST_FLOAT, "NaN"}, {PRS_CONST_FLOAT, "-Infinity"},
    };
    for (size_t i = 0; i < SIB_ARRAY_LEN(c); i++) {
        assert_int_equal(v[i]->kind, PRS_TERM_CONST);
        assert_int_equal(v[i]->cst.kind, c[i].k);
        assert_string_equal(v[i]->cst.text, c[i].text);
    }
    assert_int_equal(v[0]->cst.len, 4);
    assert_int_equal(v[13]->kind, PRS_TERM_NULL);
    assert_int_equal(v[14]->kind, PRS_TERM_LIST);
    assert_int_equal(v[15]->kind, PRS_TERM_SET);
    assert_int_equal(v[15]->coll.n, 2);
    assert_int_equal(v[16]->kind, PRS_TERM_MAP);
    assert_int_equal(v[16]->map.n, 2);
    assert_string_equal(v[16]->map.keys[1]->cst.text, "b");
    assert_string_equal(v[16]->map.values[1]->cst.text, "2");
    assert_int_equal(v[17]->kind, PRS_TERM_TUPLE);
    assert_int_equal(v[18]->kind, PRS_TERM_SET);
    assert_int_equal(v[18]->coll.n, 0);
    assert_int_equal(v[19]->kind, PRS_TERM_TYPEHINT);
    assert_string_equal(v[19]->cast.type->name, "int");
    assert_string_equal(v[19]->cast.term->cst.text, "5");

    st = ok("INSERT INTO t (k, v) VALUES (uuid(), toTimestamp(now()))");
    assert_int_equal(st->insert.values[0]->kind, PRS_TERM_FUNC);
    assert_string_equal(st->insert.values[0]->func.name, "uuid");
    assert_int_equal(st->insert.values[1]->func.nargs, 1);
    assert_string_equal(st->insert.values[1]->func.args[0]->func.name, "now");
    st = ok("INSERT INTO t (k) VALUES (CAST(1 AS text))");
    assert_int_equal(st->insert.values[0]->kind, PRS_TERM_CAST);
    st = ok("INSERT INTO t (k) VALUES ($$$$)");
    assert_string_equal(st->insert.values[0]->cst.text, "");
    st = ok("INSERT INTO t (k) VALUES ('a\nb')");
    assert_int_equal(st->insert.values[0]->line, 1);
}

static void test_durations_and_numbers(void **state)
{
    (void)state;
    const char *durs[] = {"12mo", "1y2mo3w4d5h6m7s8ms9us10ns", "-3d", "PT5M", "P1Y2M3DT4H5M6S",
                          "P2W", "P0001-02-03T04:05:06", "1\xC2\xB5s"};
    for (size_t i = 0; i < SIB_ARRAY_LEN(durs); i++) {
        char q[128];
        snprintf(q, sizeof q, "SELECT * FROM t WHERE d = %s", durs[i]);
        prs_stmt *st = ok(q);
        assert_int_equal(st->select.where[0].value->cst.kind, PRS_CONST_DURATION);
        assert_string_equal(st->select.where[0].value->cst.text, durs[i]);
    }
    prs_stmt *st = ok("SELECT * FROM t WHERE a = 1. AND b = 1e10 AND c = 0x AND d = -nan");
    assert_int_equal(st->select.where[0].value->cst.kind, PRS_CONST_FLOAT);
    assert_int_equal(st->select.where[1].value->cst.kind, PRS_CONST_FLOAT);
    assert_int_equal(st->select.where[2].value->cst.kind, PRS_CONST_HEX);
    assert_int_equal(st->select.where[3].value->cst.kind, PRS_CONST_FLOAT);
    /* ".5" is not a float: '.' then INTEGER. */
    assert_err("SELECT * FROM t WHERE a = .5", "line 1:26 no viable alternative at input '.'");
}

/* ---- INSERT / UPDATE / DELETE / BATCH -------------------------------- */

static void test_insert(void **state)
{
    (void)state;
    prs_stmt *st = ok("INSERT INTO ks.t (k, \"V\") VALUES (1, ?) IF NOT EXISTS USING TTL 5 AND TIMESTAMP :ts");
    prs_insert *in = &st->insert;
    assert_int_equal(st->kind, PRS_STMT_INSERT);
    assert_string_equal(in->table.ks, "ks");
    assert_int_equal(in->ncols, 2);
    assert_string_equal(in->cols[1], "V");
    assert_true(in->if_not_exists);
    assert_string_equal(in->using.ttl->cst.text, "5");
    assert_int_equal(in->using.timestamp->kind, PRS_TERM_MARKER);
    assert_int_equal(st->nmarkers, 2);
    assert_null(st->markers[0].name);
    assert_string_equal(st->markers[1].name, "ts");
    assert_int_equal(in->using.timestamp->marker, 1);
    /* Counts are not checked here (the executor reports them). */
    st = ok("INSERT INTO t (a, b) VALUES (1)");
    assert_int_equal(st->insert.nvalues, 1);
    assert_err("INSERT INTO t (k) VALUES (1) USING TTL 1.5", "line 1:39 no viable alternative at input '1.5'");
    /* INSERT ... JSON: a term, then DEFAULT NULL | UNSET */
    st = ok("INSERT INTO t JSON '{\"k\": 1}' DEFAULT UNSET USING TTL 3");
    assert_int_equal(st->insert.json->kind, PRS_TERM_CONST);
    assert_true(st->insert.json_default_unset);
    assert_int_equal(st->insert.ncols, 0);
    assert_non_null(st->insert.using.ttl);
    st = ok("INSERT INTO t JSON ? DEFAULT NULL");
    assert_int_equal(st->insert.json->kind, PRS_TERM_MARKER);
    assert_false(st->insert.json_default_unset);
    assert_err("INSERT INTO t JSON '{}' DEFAULT 1", "line 1:32 mismatched input '1' expecting K_NULL");
}

static void test_update(void **state)
{
    (void)state;
    prs_stmt *st = ok("UPDATE t USING TTL 10 SET a = 1, b = b + 2, c = c - {1}, d = [0] + d, e += {'x'},"
                      " f -= {'y'}, g['k'] = 'v', h = h -3 WHERE k = 1 AND c = 2 IF a = 1 AND g['k'] != 'w'");
    prs_update *u = &st->update;
    assert_int_equal(u->nassign, 8);
    prs_assign_kind kinds[] = {PRS_ASSIGN_SET, PRS_ASSIGN_ADD, PRS_ASSIGN_SUB, PRS_ASSIGN_PREPEND,
                               PRS_ASSIGN_ADD, PRS_ASSIGN_SUB, PRS_ASSIGN_ELEM, PRS_ASSIGN_ADD};
    for (size_t i = 0; i < SIB_ARRAY_LEN(kinds); i++) assert_int_equal(u->assign[i].kind, kinds[i]);
    assert_string_equal(u->assign[3].col, "d");
    assert_int_equal(u->assign[3].value->kind, PRS_TERM_LIST);
    assert_string_equal(u->assign[6].key->cst.text, "k");
    assert_string_equal(u->assign[7].value->cst.text, "-3");
    assert_string_equal(u->using.ttl->cst.text, "10");
    assert_int_equal(u->nwhere, 2);
    assert_int_equal(u->nconds, 2);
    assert_false(u->if_exists);
    assert_string_equal(u->conds[1].key->cst.text, "k");
    assert_int_equal(u->conds[1].op, PRS_OP_NEQ);

    st = ok("UPDATE t SET v = 1 WHERE k = 1 IF EXISTS");
    assert_true(st->update.if_exists);
    /* Two compatible operations on one column are fine. */
    ok("UPDATE t SET m['a'] = 1, m['b'] = 2 WHERE k = 1");

    const char *m = bad("UPDATE t SET v = 1, v = 2 WHERE k = 1");
    assert_string_equal(m, "Multiple incompatible setting of column v");
    /* The first clash in statement order is the one reported. */
    m = bad("UPDATE t SET b = 1, a += 1, a = 2, b = 2 WHERE k = 1");
    assert_string_equal(m, "Multiple incompatible setting of column a");
    ok("UPDATE t SET a += {1}, a -= {2}, m['x'] = 1, m['y'] = 2 WHERE k = 1");
    m = bad("UPDATE t SET v = w + 1 WHERE k = 1");
    assert_string_equal(m, "Only expressions of the form X = X +<value> are supported.");
    m = bad("UPDATE t SET v = w - 1 WHERE k = 1");
    assert_string_equal(m, "Only expressions of the form X = X -<value> are supported.");
    m = bad("UPDATE t SET v = [1] + w WHERE k = 1");
    assert_string_equal(m, "Only expressions of the form X = <value> + X are supported.");
    m = bad("UPDATE t SET v = w -1 WHERE k = 1");
    assert_string_equal(m, "Only expressions of the form X = X - <value> are supported.");
}

static void test_delete(void **state)
{
    (void)state;
    prs_stmt *st = ok("DELETE a, m['x'], l[0] FROM t USING TIMESTAMP 5 WHERE k IN (1, 2) IF v = 3");
    prs_delete *d = &st->del;
    assert_int_equal(st->kind, PRS_STMT_DELETE);
    assert_int_equal(d->ncols, 3);
    assert_null(d->cols[0].key);
    assert_string_equal(d->cols[1].col, "m");
    assert_string_equal(d->cols[1].key->cst.text, "x");
    assert_string_equal(d->using.timestamp->cst.text, "5");
    assert_int_equal(d->nconds, 1);
    st = ok("DELETE FROM t WHERE k = 1 IF EXISTS");
    assert_int_equal(st->del.ncols, 0);
    assert_true(st->del.if_exists);
    assert_err("DELETE FROM t USING TTL 5 WHERE k = 1", "line 1:20 mismatched input 'TTL' expecting K_TIMESTAMP");
}

static void test_batch(void **state)
{
    (void)state;
    prs_stmt *st = ok("BEGIN UNLOGGED BATCH USING TIMESTAMP 1 INSERT INTO t (k) VALUES (?);"
                      " UPDATE t SET v = :v WHERE k = ? DELETE FROM t WHERE k = ?; APPLY BATCH;");
    prs_batch *b = &st->batch;
    assert_int_equal(b->kind, PRS_BATCH_UNLOGGED);
    assert_string_equal(b->using.timestamp->cst.text, "1");
    assert_int_equal(b->nstmts, 3);
    assert_int_equal(b->stmts[0]->kind, PRS_STMT_INSERT);
    assert_int_equal(b->stmts[1]->kind, PRS_STMT_UPDATE);
    assert_int_equal(b->stmts[2]->kind, PRS_STMT_DELETE);
    assert_int_equal(st->nmarkers, 4);
    assert_int_equal(b->stmts[0]->nmarkers, 0);
    assert_string_equal(st->markers[1].name, "v");
    assert_int_equal(b->stmts[2]->del.where[0].value->marker, 3);
    st = ok("BEGIN COUNTER BATCH UPDATE t SET c = c + 1 WHERE k = 1 APPLY BATCH");
    assert_int_equal(st->batch.kind, PRS_BATCH_COUNTER);
    st = ok("BEGIN BATCH APPLY BATCH");
    assert_int_equal(st->batch.kind, PRS_BATCH_LOGGED);
    assert_int_equal(st->batch.nstmts, 0);
    assert_err("BEGIN BATCH SELECT * FROM t APPLY BATCH", "line 1:12 no viable alternative at input 'SELECT'");
}

static void test_consistency(void **state)
{
    (void)state;
    assert_int_equal(ok("SELECT * FROM t LIMIT 5 USING CONSISTENCY one")->consistency, PRS_CL_ONE);
    assert_int_equal(ok("SELECT * FROM t ALLOW FILTERING USING CONSISTENCY LOCAL_QUORUM")->consistency,
                     PRS_CL_LOCAL_QUORUM);
    assert_int_equal(ok("SELECT * FROM t USING CONSISTENCY ALL")->consistency, PRS_CL_ALL);
    prs_stmt *st = ok("INSERT INTO t (k) VALUES (1) USING TTL 5 AND CONSISTENCY each_quorum");
    assert_int_equal(st->consistency, PRS_CL_EACH_QUORUM);
    assert_string_equal(st->insert.using.ttl->cst.text, "5");
    assert_int_equal(ok("UPDATE t USING CONSISTENCY QUORUM SET v = 1 WHERE k = 1")->consistency, PRS_CL_QUORUM);
    assert_int_equal(ok("DELETE FROM t USING CONSISTENCY serial AND TIMESTAMP 3 WHERE k = 1")->consistency,
                     PRS_CL_SERIAL);
    assert_int_equal(ok("BEGIN BATCH USING CONSISTENCY LOCAL_ONE INSERT INTO t (k) VALUES (1) APPLY BATCH")
                         ->consistency, PRS_CL_LOCAL_ONE);
    assert_err("SELECT * FROM t USING CONSISTENCY FOO",
               "line 1:34 mismatched input 'FOO' expecting consistency level");
    /* the trailing form on every statement */
    assert_int_equal(ok("INSERT INTO t (k) VALUES (1) USING CONSISTENCY TWO")->consistency, PRS_CL_TWO);
    assert_int_equal(ok("INSERT INTO t (k) VALUES (1) USING TTL 5 USING CONSISTENCY TWO")->consistency, PRS_CL_TWO);
    assert_int_equal(ok("UPDATE t SET v = 1 WHERE k = 1 USING CONSISTENCY ALL;")->consistency, PRS_CL_ALL);
    assert_int_equal(ok("DELETE FROM t WHERE k = 1 USING CONSISTENCY three")->consistency, PRS_CL_THREE);
    st = ok("BEGIN BATCH UPDATE t SET v = 1 WHERE k = 1 USING CONSISTENCY ONE; APPLY BATCH USING CONSISTENCY ANY");
    assert_int_equal(st->consistency, PRS_CL_ANY);
    assert_int_equal(st->batch.stmts[0]->consistency, PRS_CL_ONE);
    assert_err("UPDATE t SET v = 1 WHERE k = 1 USING TTL 5",
               "line 1:31 missing EOF at 'USING' (...1 WHERE k = 1 [USING] TTL...)");

    for (int i = 0; i <= 10; i++) assert_int_equal(prs_consistency_parse(prs_consistency_name(i)), i);
    assert_string_equal(prs_consistency_name(PRS_CL_LOCAL_SERIAL), "LOCAL_SERIAL");
    assert_int_equal(prs_consistency_parse("any"), PRS_CL_ANY);
    assert_int_equal(prs_consistency_parse("nope"), -1);
    assert_null(prs_consistency_name(11));
    assert_null(prs_consistency_name(-1));
}

/* ---- DDL ------------------------------------------------------------- */

static void test_keyspace(void **state)
{
    (void)state;
    prs_stmt *st = ok("CREATE KEYSPACE IF NOT EXISTS Ks WITH replication = {'class': 'SimpleStrategy',"
                      " 'replication_factor': 1} AND durable_writes = false");
    prs_keyspace_stmt *k = &st->keyspace;
    assert_int_equal(st->kind, PRS_STMT_CREATE_KEYSPACE);
    assert_true(k->if_not_exists);
    assert_string_equal(k->name, "ks");
    assert_int_equal(k->nprops, 2);
    assert_string_equal(k->props[0].name, "replication");
    assert_int_equal(k->props[0].kind, PRS_PROP_MAP);
    assert_int_equal(k->props[0].nentries, 2);
    assert_string_equal(k->props[0].keys[0].text, "class");
    assert_string_equal(k->props[0].values[0].text, "SimpleStrategy");
    assert_int_equal(k->props[0].values[1].kind, PRS_CONST_INTEGER);
    assert_int_equal(k->props[1].kind, PRS_PROP_CONST);
    assert_int_equal(k->props[1].value.kind, PRS_CONST_BOOLEAN);

    st = ok("ALTER KEYSPACE ks WITH durable_writes = true");
    assert_int_equal(st->kind, PRS_STMT_ALTER_KEYSPACE);
    st = ok("DROP KEYSPACE IF EXISTS ks");
    assert_int_equal(st->kind, PRS_STMT_DROP_KEYSPACE);
    assert_true(st->keyspace.if_exists);
    st = ok("DROP SCHEMA ks");
    assert_int_equal(st->kind, PRS_STMT_DROP_KEYSPACE);
    st = ok("USE \"MyKs\"");
    assert_int_equal(st->kind, PRS_STMT_USE);
    assert_string_equal(st->keyspace.name, "MyKs");
    assert_string_equal(bad("USE ?"), "Bind variables cannot be used for keyspace names");
    assert_string_equal(bad("CREATE KEYSPACE k WITH a = 1 AND a = 2"), "Multiple definition for property a");
    assert_string_equal(bad("CREATE KEYSPACE k WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc1': 3}"),
                        "Multiple definition for property dc1");
    assert_string_equal(bad("CREATE TABLE t (k int PRIMARY KEY) WITH compaction = {'class': 'A', 'x': 1, 'x': 1}"),
                        "Multiple definition for property x");
    assert_err("CREATE KEYSPACE k", "line 1:17 mismatched input '<EOF>' expecting K_WITH");
}

static void test_create_table(void **state)
{
    (void)state;
    prs_stmt *st = ok("CREATE TABLE IF NOT EXISTS ks.t (k int, j uuid, c text, v map<text, frozen<list<int>>>,"
                      " s int STATIC, tu tuple<int, text>, u ks.addr, PRIMARY KEY ((k, j), c),)"
                      " WITH CLUSTERING ORDER BY (c DESC) AND comment = 'x' AND compaction ="
                      " {'class': 'LeveledCompactionStrategy'} AND gc_grace_seconds = 10"
                      " AND bloom_filter_fp_chance = 0.1 AND COMPACT STORAGE");
    prs_create_table *ct = &st->create_table;
    assert_int_equal(st->kind, PRS_STMT_CREATE_TABLE);
    assert_true(ct->if_not_exists);
    assert_string_equal(ct->table.ks, "ks");
    assert_int_equal(ct->ncols, 7);
    assert_int_equal(ct->npk_decls, 1);
    assert_int_equal(ct->npartition, 2);
    assert_string_equal(ct->partition[1], "j");
    assert_int_equal(ct->nclustering, 1);
    assert_string_equal(ct->clustering[0], "c");
    prs_typeref *m = ct->cols[3].type;
    assert_int_equal(m->kind, PRS_TYPE_MAP);
    assert_int_equal(m->nsub, 2);
    assert_string_equal(m->sub[0]->name, "text");
    assert_int_equal(m->sub[1]->kind, PRS_TYPE_FROZEN);
    assert_int_equal(m->sub[1]->sub[0]->kind, PRS_TYPE_LIST);
    assert_string_equal(m->sub[1]->sub[0]->sub[0]->name, "int");
    assert_true(ct->cols[4].is_static);
    assert_int_equal(ct->cols[5].type->kind, PRS_TYPE_TUPLE);
    assert_int_equal(ct->cols[5].type->nsub, 2);
    assert_int_equal(ct->cols[6].type->kind, PRS_TYPE_UDT);
    assert_string_equal(ct->cols[6].type->ks, "ks");
    assert_string_equal(ct->cols[6].type->name, "addr");
    assert_int_equal(ct->norder, 1);
    assert_true(ct->clustering_order[0].desc);
    assert_true(ct->compact_storage);
    assert_int_equal(ct->nprops, 4);
    assert_string_equal(ct->props[3].name, "bloom_filter_fp_chance");
    assert_int_equal(ct->props[3].value.kind, PRS_CONST_FLOAT);

    /* Inline key; unreserved keywords and type names as column names. */
    st = ok("CREATE TABLE t (key int PRIMARY KEY, text text, ttl int, \"set\" set<int>, list list<int>)");
    ct = &st->create_table;
    assert_int_equal(ct->npartition, 1);
    assert_string_equal(ct->partition[0], "key");
    assert_true(ct->cols[0].primary_key);
    assert_string_equal(ct->cols[3].name, "set");
    st = ok("CREATE TABLE t (a int PRIMARY KEY, b int, PRIMARY KEY (b))");
    assert_int_equal(st->create_table.npk_decls, 2);
    st = ok("CREATE COLUMNFAMILY t (a int, PRIMARY KEY (a))");
    assert_int_equal(st->create_table.npk_decls, 1);
    assert_err("CREATE TABLE t (a int, PRIMARY KEY (a)) WITH CLUSTERING ORDER BY (a)",
               "line 1:67 no viable alternative at input ')'");
    assert_err("CREATE TABLE t (from int PRIMARY KEY)", "line 1:16 no viable alternative at input 'from'");
    assert_err("CREATE TABLE t (a list<int PRIMARY KEY)", "line 1:27 mismatched input 'PRIMARY' expecting '>'");
}

static void test_alter_drop_truncate(void **state)
{
    (void)state;
    prs_stmt *st = ok("ALTER TABLE t ADD v int");
    prs_alter_table *at = &st->alter_table;
    assert_int_equal(at->kind, PRS_ALTER_ADD);
    assert_int_equal(at->ncols, 1);
    st = ok("ALTER TABLE ks.t ADD (a int, b set<text> static)");
    at = &st->alter_table;
    assert_int_equal(at->ncols, 2);
    assert_true(at->cols[1].is_static);
    assert_int_equal(at->cols[1].type->kind, PRS_TYPE_SET);
    st = ok("ALTER TABLE t DROP v");
    assert_int_equal(st->alter_table.kind, PRS_ALTER_DROP);
    assert_int_equal(st->alter_table.nnames, 1);
    st = ok("ALTER TABLE t DROP (a, b) USING TIMESTAMP 5");
    assert_int_equal(st->alter_table.nnames, 2);
    assert_string_equal(st->alter_table.drop_timestamp->cst.text, "5");
    st = ok("ALTER TABLE t WITH comment = 'c' AND default_time_to_live = 0");
    assert_int_equal(st->alter_table.kind, PRS_ALTER_WITH);
    assert_int_equal(st->alter_table.nprops, 2);
    st = ok("ALTER TABLE t RENAME a TO b AND c TO d");
    assert_int_equal(st->alter_table.kind, PRS_ALTER_RENAME);
    assert_string_equal(st->alter_table.new_names[1], "d");
    st = ok("ALTER TABLE t ALTER v TYPE blob");
    assert_int_equal(st->alter_table.kind, PRS_ALTER_TYPE);

    st = ok("DROP TABLE IF EXISTS ks.t");
    assert_int_equal(st->kind, PRS_STMT_DROP_TABLE);
    assert_true(st->table.if_exists);
    st = ok("TRUNCATE t");
    assert_int_equal(st->kind, PRS_STMT_TRUNCATE);
    st = ok("TRUNCATE TABLE ks.t");
    assert_string_equal(st->table.table.ks, "ks");
    assert_string_equal(bad("TRUNCATE ?"), "Bind variables cannot be used for table names");
    assert_string_equal(bad("DROP TABLE ks.?"), "Bind variables cannot be used for table names");
}

static void test_describe(void **state)
{
    (void)state;
    struct { const char *q; prs_describe_kind k; } v[] = {
        {"DESCRIBE KEYSPACES", PRS_DESC_KEYSPACES}, {"DESC keyspace", PRS_DESC_KEYSPACE},
        {"DESCRIBE KEYSPACE ks", PRS_DESC_KEYSPACE}, {"DESCRIBE TABLES", PRS_DESC_TABLES},
        {"DESCRIBE TABLE ks.t", PRS_DESC_TABLE}, {"DESCRIBE SCHEMA", PRS_DESC_SCHEMA},
        {"DESCRIBE FULL SCHEMA", PRS_DESC_SCHEMA}, {"DESCRIBE CLUSTER", PRS_DESC_CLUSTER},
        {"DESCRIBE foo", PRS_DESC_NAME}, {"DESCRIBE ks.foo", PRS_DESC_NAME},
        {"describe types;", PRS_DESC_TYPES},
    };
    for (size_t i = 0; i < SIB_ARRAY_LEN(v); i++) {
        prs_stmt *st = ok(v[i].q);
        assert_int_equal(st->kind, PRS_STMT_DESCRIBE);
        assert_int_equal(st->describe.kind, v[i].k);
    }
    assert_null(ok("DESC KEYSPACE")->describe.name.name);
    assert_string_equal(ok("DESCRIBE KEYSPACE ks")->describe.name.name, "ks");
    assert_true(ok("DESCRIBE FULL SCHEMA")->describe.full);
    prs_stmt *st = ok("DESCRIBE ks.foo");
    assert_string_equal(st->describe.name.ks, "ks");
    assert_string_equal(st->describe.name.name, "foo");
    assert_true(ok("DESCRIBE TABLE t WITH INTERNALS")->describe.with_internals);
}

/* ---- lexical rules --------------------------------------------------- */

static void test_identifiers(void **state)
{
    (void)state;
    prs_stmt *st = ok("SELECT MyCol, \"MyCol\", \"a\"\"b\", \"select\" FROM \"Ks\".\"Tab\"");
    assert_string_equal(st->select.sel[0].column, "mycol");
    assert_string_equal(st->select.sel[1].column, "MyCol");
    assert_string_equal(st->select.sel[2].column, "a\"b");
    assert_string_equal(st->select.sel[3].column, "select");
    assert_string_equal(st->select.table.ks, "Ks");
    assert_string_equal(st->select.table.name, "Tab");
    /* Reserved words cannot be unquoted names; unreserved ones can. */
    assert_err("SELECT * FROM table", "line 1:14 no viable alternative at input 'table'");
    assert_err("SELECT from FROM t", "line 1:7 no viable alternative at input 'from'");
    assert_err("SELECT token FROM t", "line 1:13 mismatched input 'FROM' expecting '('");
    assert_err("CREATE TABLE t (k int, set set<int>)", "line 1:23 no viable alternative at input 'set'");
    ok("SELECT key, ttl, count, writetime, type, values, filtering FROM t");
    assert_true(prs_is_reserved_keyword("SeLeCt"));
    assert_true(prs_is_reserved_keyword("token"));
    assert_false(prs_is_reserved_keyword("key"));
    assert_false(prs_is_reserved_keyword("ttl"));
    assert_err("CREATE TABLE t (\"\" int PRIMARY KEY)", "line 1:16 no viable alternative at input ''");
    st = ok("SELECT * FROM t WHERE \"\" = 1");
    assert_string_equal(st->select.where[0].cols[0], "");
    assert_true(ok("SELECT * FROM t WHERE b = TRUE")->select.where[0].value->cst.kind == PRS_CONST_BOOLEAN);
    assert_int_equal(ok("SELECT true FROM t")->select.sel[0].kind, PRS_SEL_TERM);
}

static void test_comments_and_terminators(void **state)
{
    (void)state;
    ok("-- leading comment\nSELECT * /* inline */ FROM t // trailing\n;");
    ok("SELECT * FROM t;;;");
    ok("SELECT * FROM t -- no newline at the end");
    ok("  \t\r\n SELECT * FROM t \n ; \n");
    assert_err("SELECT * FROM t; SELECT * FROM t", "line 1:17 missing EOF at 'SELECT'");
    assert_err("SELECT * FROM t x", "line 1:16 extraneous input 'x' expecting EOF");
    assert_err("SELECT * FROM t /* open", "line 1:23 mismatched character '<EOF>' expecting '*'");
}

/* ---- syntax errors --------------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    const char *m = bad("SELECT * FORM t");
    assert_string_equal(m, "line 1:9 mismatched input 'FORM' expecting K_FROM (SELECT * [FORM] t)");
    assert_err("SELCT * FROM t", "line 1:0 no viable alternative at input 'SELCT'");
    assert_err("", "line 1:0 no viable alternative at input '<EOF>'");
    assert_err("   ", "line 1:3 no viable alternative at input '<EOF>'");
    assert_err("SELECT * FROM", "line 1:13 no viable alternative at input '<EOF>'");
    assert_err("SELECT * FROM t WHERE", "line 1:21 no viable alternative at input '<EOF>'");
    m = bad("SELECT * FROM transfers_buying WHERE buyingteam = 'SCP' OR 'SCP' = buyingteam");
    assert_string_equal(m, "line 1:56 missing EOF at 'OR' (...transfers_buying WHERE buyingteam = 'SCP' [OR] 'SC...)");
    /* Line and column on later lines. */
    assert_err("SELECT *\nFROM t\n  WHERE k = = 1", "line 3:12 no viable alternative at input '='");
    assert_err("SELECT * FROM t\nWHERE k = 'abc", "line 2:14 mismatched character '<EOF>' expecting '''");
    assert_err("SELECT # FROM t", "line 1:7 no viable alternative at character '#'");
    assert_err("SELECT a FROM t WHERE k = 1 @", "line 1:28 no viable alternative at character '@'");
    assert_err("SELECT * FROM t WHERE k = \"abc", "line 1:30 mismatched character '<EOF>' expecting '\"'");
    assert_err("INSERT INTO t (k) VALUES ($$abc)", "line 1:32 mismatched character '<EOF>' expecting '$'");
    assert_err("INSERT INTO t (k) VALUES (1", "line 1:27 mismatched input '<EOF>' expecting ')'");
    assert_err("INSERT INTO t (k) VALUES (1 2)", "line 1:28 extraneous input '2' expecting ')'");
    assert_err("UPDATE t SET v = 1 WHERE", "line 1:24 no viable alternative at input '<EOF>'");
    /* The offending STRING token is shown unescaped, as ANTLR's getText() does. */
    assert_err("SELECT * FROM t WHERE k = 'a' 'b''c'", "line 1:30 extraneous input 'b'c' expecting EOF");
    /* A lexer error after a parser error: the parser error comes first. */
    assert_err("SELECT * FORM t #", "line 1:9 mismatched input 'FORM' expecting K_FROM");
    assert_err("SELECT * FROM t WHERE k = 1 AND", "line 1:31 no viable alternative at input '<EOF>'");
}

static void test_markers(void **state)
{
    (void)state;
    prs_stmt *st = ok("SELECT * FROM t WHERE a = ? AND b = :Named AND c IN ? AND d IN (?, :\"Q\") LIMIT :lim");
    assert_int_equal(st->nmarkers, 6);
    assert_null(st->markers[0].name);
    assert_string_equal(st->markers[1].name, "named");
    assert_null(st->markers[2].name);
    assert_null(st->markers[3].name);
    assert_string_equal(st->markers[4].name, "Q");
    assert_string_equal(st->markers[5].name, "lim");
    assert_int_equal(st->markers[0].line, 1);
    assert_int_equal(st->markers[0].col, 26);
    assert_int_equal(st->markers[0].offset, 26);
    assert_int_equal(st->select.where[1].value->marker, 1);
    assert_int_equal(st->select.where[3].in[1]->marker, 4);
    assert_int_equal(ok("SELECT * FROM t")->nmarkers, 0);
}

/* Deep nesting must fail cleanly, not exhaust the stack. */
static void test_depth_limit(void **state)
{
    (void)state;
    char q[8192];
    size_t n = (size_t)snprintf(q, sizeof q, "INSERT INTO t (k) VALUES (");
    for (int i = 0; i < 2000; i++) q[n++] = '[';
    q[n] = 0;
    const char *m = bad(q);
    assert_starts(m, "line 1:");
    assert_non_null(strstr(m, "no viable alternative at input '['"));

    n = (size_t)snprintf(q, sizeof q, "INSERT INTO t (k) VALUES (");
    for (int i = 0; i < 30; i++) q[n++] = '[';
    for (int i = 0; i < 30; i++) q[n++] = ']';
    q[n++] = ')';
    q[n] = 0;
    ok(q);

    n = (size_t)snprintf(q, sizeof q, "CREATE TABLE t (k ");
    for (int i = 0; i < 1000; i++) n += (size_t)snprintf(q + n, sizeof q - n, "list<"); /* 5000 bytes */
    bad(q);
    n = (size_t)snprintf(q, sizeof q, "SELECT * FROM t WHERE ");
    for (int i = 0; i < 2000; i++) q[n++] = '(';
    q[n] = 0;
    bad(q);
    n = (size_t)snprintf(q, sizeof q, "SELECT ");
    for (int i = 0; i < 1000; i++) n += (size_t)snprintf(q + n, sizeof q - n, "f(");
    bad(q);
}

/* Inputs with NUL bytes and non-UTF-8 bytes are just text. */
static void test_binary_input(void **state)
{
    (void)state;
    static const char q[] = "SELECT * FROM t WHERE k = 'a\0b'";
    prs_stmt *st = NULL;
    sib_err err;
    assert_int_equal(prs_parse(q, sizeof q - 1, arena, &st, &err), 0);
    assert_int_equal(st->select.where[0].value->cst.len, 3);
    static const char q2[] = "SELECT \0 FROM t";
    assert_int_equal(prs_parse(q2, sizeof q2 - 1, arena, &st, &err), SIB_ESYNTAX);
    assert_starts(err.msg, "line 1:7 no viable alternative at character");
    assert_err("SELECT \xc3\xa9 FROM t", "line 1:7 no viable alternative at character '\xc3\xa9'");
    assert_int_equal(prs_parse(NULL, 0, arena, &st, &err), SIB_ESYNTAX);
    assert_int_equal(prs_parse("x", 1, NULL, &st, &err), SIB_EINVAL);
}


static void test_create_table_bucket_salt(void **state)
{
    (void)state;
    prs_create_table *ct = &ok("CREATE TABLE m (sensor text, ts timestamp, v int, "
                               "PRIMARY KEY ((sensor, BUCKET(ts, 1d), salt(8)), ts))")->create_table;
    assert_int_equal(ct->npartition, 3);
    assert_string_equal(ct->partition[0], "sensor");
    assert_string_equal(ct->partition[1], "ts_bucket");
    assert_string_equal(ct->partition[2], "salt");
    assert_string_equal(ct->bucket_col, "ts");
    assert_int_equal(ct->bucket_width.kind, PRS_CONST_DURATION);
    assert_string_equal(ct->bucket_width.text, "1d");
    assert_true(ct->has_salt);
    assert_int_equal(ct->salt_count.kind, PRS_CONST_INTEGER);
    assert_string_equal(ct->salt_count.text, "8");
    assert_int_equal(ct->nclustering, 1);
    /* integer width, a bucket alone as the partition key */
    ct = &ok("CREATE TABLE m (n int, v int, PRIMARY KEY (BUCKET(n, 100), n))")->create_table;
    assert_int_equal(ct->npartition, 1);
    assert_string_equal(ct->partition[0], "n_bucket");
    assert_int_equal(ct->bucket_width.kind, PRS_CONST_INTEGER);
    assert_false(ct->has_salt);
    /* columns named bucket and salt stay columns */
    ct = &ok("CREATE TABLE m (bucket int, salt int, c int, PRIMARY KEY ((bucket, salt), c))")->create_table;
    assert_null(ct->bucket_col);
    assert_false(ct->has_salt);
    assert_string_equal(ct->partition[1], "salt");
    assert_string_equal(bad("CREATE TABLE m (a int, ts int, PRIMARY KEY ((a, BUCKET(ts, 1), BUCKET(ts, 2)), ts))"),
                        "Only one BUCKET(...) is allowed in a partition key");
    assert_string_equal(bad("CREATE TABLE m (a int, ts int, PRIMARY KEY ((a, SALT(2), SALT(3)), ts))"),
                        "Only one SALT(...) is allowed in a partition key");
    assert_err("CREATE TABLE m (a int, ts int, PRIMARY KEY ((a, BUCKET(ts)), ts))", "line 1:");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_table_bucket_salt),
        cmocka_unit_test(test_select_basic),
        cmocka_unit_test(test_select_clauses),
        cmocka_unit_test(test_select_subscripts),
        cmocka_unit_test(test_relations),
        cmocka_unit_test(test_terms),
        cmocka_unit_test(test_durations_and_numbers),
        cmocka_unit_test(test_insert),
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_consistency),
        cmocka_unit_test(test_keyspace),
        cmocka_unit_test(test_create_table),
        cmocka_unit_test(test_alter_drop_truncate),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_identifiers),
        cmocka_unit_test(test_comments_and_terminators),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_markers),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_binary_input),
    };
    /* One arena for all cases; they allocate from it and never free. */
    arena = sib_arena_create(1 << 14);
    if (!arena) return 1;
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    sib_arena_destroy(arena);
    return failed;
}
