/* parser_int.h: private to parser/ — tokens, the parser state, shared helpers.
 *
 * The scanner (lexer.rl) produces every token of the text, hidden ones
 * (whitespace, comments) included, because Cassandra's error snippet counts
 * them. The parser walks only the visible ones through `vis`.
 *
 * Errors unwind with longjmp to prs_parse(): every node lives in the arena,
 * so there is nothing to free on the way out, and the grammar functions stay
 * free of error plumbing. Recursion is bounded by PRS_MAX_DEPTH.
 */
#ifndef SIB_PARSER_INT_H
#define SIB_PARSER_INT_H

#include <setjmp.h>

#include "parser.h"

#define PRS_MAX_DEPTH 64

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

typedef struct prs_tok {
    int kind;
    int line, col;        /* 1-based line, 0-based column */
    size_t off, len;      /* raw span in the text */
    /* T_ERROR only */
    lexerr_kind err;
    char expect;          /* LEXERR_UNTERMINATED: the closing char expected */
} prs_tok;

typedef struct prs_toks {
    prs_tok *t;
    size_t n, cap;
} prs_toks;

/* Scans text into toks (arena-allocated), always ending with one T_EOF.
 * Returns 0 or SIB_ENOMEM. Lexical errors become T_ERROR tokens. */
int prs_lex(const char *text, size_t len, sib_arena *a, prs_toks *toks);

/* Growable arena vector (elements zeroed on push). */
typedef struct pvec {
    void *v;
    size_t n, cap, elem;
} pvec;

typedef struct prs_parser {
    const char *text;
    size_t len;
    sib_arena *a;
    sib_err *err;
    jmp_buf jb;
    prs_toks all;
    size_t *vis;     /* indexes into all.t of the visible tokens, EOF last */
    size_t nvis;
    size_t pos;      /* current index into vis */
    int depth;
    pvec markers;    /* prs_marker */
} prs_parser;

/* ---- token access (parse_util.c) ---- */
const prs_tok *pk(prs_parser *p, size_t k);          /* k-th visible token ahead; raises lexer errors */
int pkind(prs_parser *p, size_t k);
void padvance(prs_parser *p);
bool pword(prs_parser *p, size_t k, const char *kw); /* token k is the unquoted word kw (any case) */
bool paccept(prs_parser *p, int kind);
bool paccept_word(prs_parser *p, const char *kw);
void pexpect(prs_parser *p, int kind);
void pexpect_word(prs_parser *p, const char *kw);
char *tok_text(prs_parser *p, const prs_tok *t, size_t *len); /* unescaped (strings, quoted names) */
char *tok_raw(prs_parser *p, const prs_tok *t);
void *palloc(prs_parser *p, size_t n);
#define PNEW(p, T) ((T *)palloc((p), sizeof(T)))

/* ---- errors: never return ---- */
_Noreturn void perr_noviable(prs_parser *p);             /* at the current token */
_Noreturn void perr_mismatch(prs_parser *p, const char *expecting);
_Noreturn void perr_raw(prs_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void perr_oom(prs_parser *p);
_Noreturn void perr_not_eof(prs_parser *p);               /* text after the statement */
void pdepth_enter(prs_parser *p);
#define pdepth_leave(p) ((p)->depth--)

/* ---- growable arena vectors ---- */
void pvec_init(pvec *v, size_t elem);
void *pvec_push(prs_parser *p, pvec *v); /* returns a zeroed slot */

/* Names that may not repeat: two entries with the same name clash if either
 * is exclusive. Returns the original index (idx) of the first entry that
 * clashes with an earlier one, or SIZE_MAX. */
typedef struct name_ref {
    const char *name;
    size_t idx;
    bool exclusive;
} name_ref;
size_t first_name_clash(prs_parser *p, const name_ref *refs, size_t n);

/* ---- grammar pieces shared across files ---- */
bool is_ident_tok(prs_parser *p, size_t k);              /* can token k start an ident? */
const char *parse_ident(prs_parser *p);                   /* ident (not "") */
const char *parse_col_ref(prs_parser *p);                 /* ident or "" (DML column refs) */
prs_qname parse_table_name(prs_parser *p);
const char *parse_func_name(prs_parser *p);               /* ident or TOKEN */
const char *parse_ks_name(prs_parser *p);
prs_typeref *parse_type(prs_parser *p);
prs_term *parse_term(prs_parser *p);
prs_term *parse_int_value(prs_parser *p);                 /* INTEGER or marker */
bool parse_const(prs_parser *p, prs_const *out);          /* constant at current token? consumes */
bool at_constant(prs_parser *p);
prs_term *parse_marker(prs_parser *p);                    /* '?' or ':' ident */
bool at_type_hint(prs_parser *p);                         /* at '(' type ')' (a type hint, not a tuple)? */
void parse_where(prs_parser *p, size_t *n, prs_relation **out);
void parse_conditions(prs_parser *p, bool *if_exists, size_t *n, prs_relation **out);
void parse_properties(prs_parser *p, pvec *props);         /* property {AND property} */
void parse_property(prs_parser *p, pvec *props);          /* one more; no duplicate check */
void check_duplicate_props(prs_parser *p, const pvec *props);
int parse_consistency_level(prs_parser *p);
void parse_using(prs_parser *p, prs_using *u, int *consistency, bool timestamp_only);

prs_stmt *parse_select(prs_parser *p);
prs_stmt *parse_insert(prs_parser *p);
prs_stmt *parse_update(prs_parser *p);
prs_stmt *parse_delete(prs_parser *p);
prs_stmt *parse_batch(prs_parser *p);
prs_stmt *parse_create(prs_parser *p);
prs_stmt *parse_alter(prs_parser *p);
prs_stmt *parse_drop(prs_parser *p);
prs_stmt *parse_truncate(prs_parser *p);
prs_stmt *parse_use(prs_parser *p);
prs_stmt *parse_describe(prs_parser *p);
prs_stmt *new_stmt(prs_parser *p, prs_stmt_kind kind);

#endif
