/* parser_int.h: private to parser/ — tokens, the parser state, shared helpers.
 *
 * The scanner (lexer.rl) produces every token of the text, hidden ones
 * (whitespace, comments) included, because Cassandra's error snippet counts
 * them. The parser walks only the visible ones through `vis`.
 *
 * Errors unwind with longjmp to cql_parse(): every node lives in the arena,
 * so there is nothing to free on the way out, and the grammar functions stay
 * free of error plumbing. Recursion is bounded by CQL_MAX_DEPTH.
 */
#ifndef SIB_PARSER_INT_H
#define SIB_PARSER_INT_H

#include <setjmp.h>

#include "parser.h"

#define CQL_MAX_DEPTH 64

typedef enum {
    T_EOF = 0,
    /* single-character punctuation uses the character itself: ; , . ( ) [ ] { } : = < > * + - / % ? */
    T_WS = 256,     /* hidden */
    T_COMMENT,      /* hidden */
    T_ERROR,        /* lexer error (bad character / unterminated literal) */
    T_IDENT,        /* unquoted word, keywords included (matched by text) */
    T_QNAME,        /* "quoted name"; "" is T_QNAME with empty content */
    T_STRING,       /* '..' */
    T_PGSTRING,     /* $$..$$ */
    T_INTEGER,
    T_FLOAT,        /* includes -NaN / -Infinity */
    T_BOOLEAN,
    T_UUID,
    T_HEX,
    T_DURATION,
    T_LTE, T_GTE, T_NEQ, T_PLUSEQ, T_MINUSEQ,
} tok_kind;

typedef enum {
    LEXERR_CHAR,        /* no viable alternative at character 'c' */
    LEXERR_UNTERMINATED,/* mismatched character '<EOF>' expecting 'c' */
} lexerr_kind;

typedef struct cql_tok {
    int kind;
    int line, col;        /* 1-based line, 0-based column */
    size_t off, len;      /* raw span in the text */
    /* T_ERROR only */
    lexerr_kind err;
    char expect;          /* LEXERR_UNTERMINATED: the closing char expected */
} cql_tok;

typedef struct cql_toks {
    cql_tok *t;
    size_t n, cap;
} cql_toks;

/* Scans text into toks (arena-allocated), always ending with one T_EOF.
 * Returns 0 or SIB_ENOMEM. Lexical errors become T_ERROR tokens. */
int cql_lex(const char *text, size_t len, sib_arena *a, cql_toks *toks);

/* Growable arena vector (elements zeroed on push). */
typedef struct pvec {
    void *v;
    size_t n, cap, elem;
} pvec;

typedef struct cql_parser {
    const char *text;
    size_t len;
    sib_arena *a;
    sib_err *err;
    jmp_buf jb;
    cql_toks all;
    size_t *vis;     /* indexes into all.t of the visible tokens, EOF last */
    size_t nvis;
    size_t pos;      /* current index into vis */
    int depth;
    pvec markers;    /* cql_marker */
} cql_parser;

/* ---- token access (parse_util.c) ---- */
const cql_tok *pk(cql_parser *p, size_t k);          /* k-th visible token ahead; raises lexer errors */
int pkind(cql_parser *p, size_t k);
void padvance(cql_parser *p);
bool pword(cql_parser *p, size_t k, const char *kw); /* token k is the unquoted word kw (any case) */
bool paccept(cql_parser *p, int kind);
bool paccept_word(cql_parser *p, const char *kw);
void pexpect(cql_parser *p, int kind);
void pexpect_word(cql_parser *p, const char *kw);
char *tok_text(cql_parser *p, const cql_tok *t, size_t *len); /* unescaped (strings, quoted names) */
char *tok_raw(cql_parser *p, const cql_tok *t);
void *palloc(cql_parser *p, size_t n);
#define PNEW(p, T) ((T *)palloc((p), sizeof(T)))

/* ---- errors: never return ---- */
_Noreturn void perr_noviable(cql_parser *p);             /* at the current token */
_Noreturn void perr_mismatch(cql_parser *p, const char *expecting);
_Noreturn void perr_raw(cql_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void perr_oom(cql_parser *p);
_Noreturn void perr_not_eof(cql_parser *p);               /* text after the statement */
void pdepth_enter(cql_parser *p);
#define pdepth_leave(p) ((p)->depth--)

/* ---- growable arena vectors ---- */
void pvec_init(pvec *v, size_t elem);
void *pvec_push(cql_parser *p, pvec *v); /* returns a zeroed slot */

/* Names that may not repeat: two entries with the same name clash if either
 * is exclusive. Returns the original index (idx) of the first entry that
 * clashes with an earlier one, or SIZE_MAX. */
typedef struct name_ref {
    const char *name;
    size_t idx;
    bool exclusive;
} name_ref;
size_t first_name_clash(cql_parser *p, const name_ref *refs, size_t n);

/* ---- grammar pieces shared across files ---- */
bool is_ident_tok(cql_parser *p, size_t k);              /* can token k start an ident? */
const char *parse_ident(cql_parser *p);                   /* ident (not "") */
const char *parse_col_ref(cql_parser *p);                 /* ident or "" (DML column refs) */
cql_qname parse_table_name(cql_parser *p);
const char *parse_func_name(cql_parser *p);               /* ident or TOKEN */
const char *parse_ks_name(cql_parser *p);
cql_typeref *parse_type(cql_parser *p);
cql_term *parse_term(cql_parser *p);
cql_term *parse_int_value(cql_parser *p);                 /* INTEGER or marker */
bool parse_const(cql_parser *p, cql_const *out);          /* constant at current token? consumes */
bool at_constant(cql_parser *p);
cql_term *parse_marker(cql_parser *p);                    /* '?' or ':' ident */
bool at_type_hint(cql_parser *p);                         /* at '(' type ')' (a type hint, not a tuple)? */
void parse_where(cql_parser *p, size_t *n, cql_relation **out);
void parse_conditions(cql_parser *p, bool *if_exists, size_t *n, cql_relation **out);
void parse_properties(cql_parser *p, pvec *props);         /* property {AND property} */
void parse_property(cql_parser *p, pvec *props);          /* one more; no duplicate check */
void check_duplicate_props(cql_parser *p, const pvec *props);
int parse_consistency_level(cql_parser *p);
void parse_using(cql_parser *p, cql_using *u, int *consistency, bool timestamp_only);

cql_stmt *parse_select(cql_parser *p);
cql_stmt *parse_insert(cql_parser *p);
cql_stmt *parse_update(cql_parser *p);
cql_stmt *parse_delete(cql_parser *p);
cql_stmt *parse_batch(cql_parser *p);
cql_stmt *parse_create(cql_parser *p);
cql_stmt *parse_alter(cql_parser *p);
cql_stmt *parse_drop(cql_parser *p);
cql_stmt *parse_truncate(cql_parser *p);
cql_stmt *parse_use(cql_parser *p);
cql_stmt *parse_describe(cql_parser *p);
cql_stmt *new_stmt(cql_parser *p, cql_stmt_kind kind);

#endif
