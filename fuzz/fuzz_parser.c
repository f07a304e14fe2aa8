/* fuzz_parser.c: libFuzzer target for parser/: any byte string must either
 * parse or fail with SIB_ESYNTAX and a message; never crash, leak or recurse
 * without bound. On success parts of the AST are walked so that dangling or
 * uninitialised pointers show up under ASan/UBSan. */
#include <stdint.h>
#include <stdlib.h>

#include "parser.h"

static size_t walk_term(const prs_term *t, const prs_stmt *st)
{
    size_t n = 1;
    switch (t->kind) {
    case PRS_TERM_CONST: n += strlen(t->cst.text); break;
    case PRS_TERM_MARKER:
        if (t->marker < 0 || (size_t)t->marker >= st->nmarkers) abort();
        break;
    case PRS_TERM_FUNC:
        n += strlen(t->func.name);
        for (size_t i = 0; i < t->func.nargs; i++) n += walk_term(t->func.args[i], st);
        break;
    case PRS_TERM_LIST: case PRS_TERM_SET: case PRS_TERM_TUPLE:
        for (size_t i = 0; i < t->coll.n; i++) n += walk_term(t->coll.items[i], st);
        break;
    case PRS_TERM_MAP:
        for (size_t i = 0; i < t->map.n; i++)
            n += walk_term(t->map.keys[i], st) + walk_term(t->map.values[i], st);
        break;
    case PRS_TERM_TYPEHINT: case PRS_TERM_CAST: n += walk_term(t->cast.term, st); break;
    case PRS_TERM_NULL: break;
    }
    return n;
}

static size_t walk_where(size_t nrel, const prs_relation *r, const prs_stmt *st)
{
    size_t n = 0;
    for (size_t i = 0; i < nrel; i++) {
        for (size_t c = 0; c < r[i].ncols; c++) n += strlen(r[i].cols[c]);
        if (r[i].value) n += walk_term(r[i].value, st);
        for (size_t k = 0; k < r[i].nin; k++) n += walk_term(r[i].in[k], st);
    }
    return n;
}

static size_t walk(const prs_stmt *st)
{
    size_t n = 0;
    switch (st->kind) {
    case PRS_STMT_SELECT:
        for (size_t i = 0; i < st->select.nsel; i++) n += strlen(st->select.sel[i].text);
        n += walk_where(st->select.nwhere, st->select.where, st);
        break;
    case PRS_STMT_INSERT:
        for (size_t i = 0; i < st->insert.nvalues; i++) n += walk_term(st->insert.values[i], st);
        break;
    case PRS_STMT_UPDATE:
        for (size_t i = 0; i < st->update.nassign; i++) n += walk_term(st->update.assign[i].value, st);
        n += walk_where(st->update.nwhere, st->update.where, st);
        break;
    case PRS_STMT_DELETE: n += walk_where(st->del.nwhere, st->del.where, st); break;
    default: break;
    }
    for (size_t i = 0; i < st->nmarkers; i++)
        if (st->markers[i].line < 1 || st->markers[i].col < 0) abort();
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sib_arena *a = sib_arena_create(16384);
    if (!a) return 0;
    prs_stmt *st = NULL;
    sib_err err;
    int rc = prs_parse((const char *)data, size, a, &st, &err);
    if (rc == 0) {
        if (!st) abort();
        volatile size_t n = walk(st);
        (void)n;
    } else if (rc != SIB_ESYNTAX || err.msg[0] == 0) {
        abort();
    }
    sib_arena_destroy(a);
    return 0;
}
