/* lexer.rl: the CQL scanner (Ragel longest-match machine), after
 * apache/cassandra src/antlr/Lexer.g as summarised in docs/cql.md §1.
 *
 * Every byte of the input ends up in exactly one token, hidden tokens
 * (whitespace, comments) included, so the parser can rebuild Cassandra's
 * error snippet. Keywords are not distinguished here: an unquoted word is a
 * T_IDENT and the parser matches keywords by text (case-insensitively);
 * only true/false become T_BOOLEAN, as in Cassandra's lexer.
 *
 * Ties between patterns of the same length go to the earlier one, which is
 * how DURATION beats IDENT for "P1D", BOOLEAN beats IDENT, and FLOAT/UUID/
 * DURATION beat INTEGER by being longer. A byte that starts no token, or an
 * unterminated string/name/comment, becomes a T_ERROR token.
 *
 * Lines count '\n' only (as ANTLR's string stream does); columns are bytes.
 *
 * One deliberate leniency: a `--` or `//` comment may end at the end of the
 * input without a newline (Cassandra's rule wants one and reports a lexer
 * error); drivers send such statements and nothing is ambiguous about them.
 */
#include "parser_int.h"

%%{
    machine prs_lexer;
    alphtype unsigned char;

    digit_ = [0-9];
    hex = [0-9a-fA-F];
    letter = [a-zA-Z];
    unit = 'y'i | 'mo'i | 'w'i | 'd'i | 'h'i | 'm'i | 's'i | 'ms'i | 'us'i | 0xC2 0xB5 's'i | 'ns'i;
    iso_designators = 'P' ( digit_+ 'Y' )? ( digit_+ 'M' )? ( digit_+ 'D' )?
                      ( 'T' ( digit_+ 'H' )? ( digit_+ 'M' )? ( digit_+ 'S' )? )?;
    iso_nonempty = iso_designators & ( any* digit_ any* );
    duration = '-'? ( ( digit_+ unit )+
                    | iso_nonempty
                    | 'P' digit_+ 'W'
                    | 'P' digit_{4} '-' digit_{2} '-' digit_{2} 'T' digit_{2} ':' digit_{2} ':' digit_{2} );
    exponent = [eE] [+\-]? digit_+;
    float = '-'? digit_+ ( '.' digit_* exponent? | exponent );
    uuid = hex{8} '-' hex{4} '-' hex{4} '-' hex{4} '-' hex{12};
    sq_string = "'" ( [^'] | "''" )* "'";
    pg_string = '$$' ( any* -- ( any* '$$' any* ) ) '$$';
    qname = '"' ( [^"] | '""' )* '"';
    line_comment = ( '--' | '//' ) [^\n\r]* [\n\r]?;

    main := |*
        [ \t\n\r]+                       => { EMIT(T_WS); };
        line_comment                     => { EMIT(T_COMMENT); };
        '/*' any* :>> '*/'               => { EMIT(T_COMMENT); };
        sq_string                        => { EMIT(T_STRING); };
        pg_string                        => { EMIT(T_PGSTRING); };
        qname                            => { EMIT(T_QNAME); };
        'true'i | 'false'i               => { EMIT(T_BOOLEAN); };
        duration                         => { EMIT(T_DURATION); };
        letter ( letter | digit_ | '_' )* => { EMIT(T_IDENT); };
        '-'? digit_+                     => { EMIT(T_INTEGER); };
        '-'? digit_+ '..'                => { EMIT_BEFORE_RANGE(T_INTEGER); fexec te - 2; };
        '-'? digit_+ '...'               => { EMIT_BEFORE_RANGE(T_FLOAT); fexec te - 2; };
        float                            => { EMIT(T_FLOAT); };
        '-' ( 'nan'i | 'infinity'i )     => { EMIT(T_FLOAT); };
        uuid                             => { EMIT(T_UUID); };
        '0' [xX] hex*                    => { EMIT(T_HEX); };
        '<='                             => { EMIT(T_LTE); };
        '>='                             => { EMIT(T_GTE); };
        '!='                             => { EMIT(T_NEQ); };
        '+='                             => { EMIT(T_PLUSEQ); };
        '-='                             => { EMIT(T_MINUSEQ); };
        [;,.()\[\]{}:=<>*+\-/%?]         => { EMIT(*ts); };
        any                              => {
            int bad_ = lex_bad(&lx, ts);
            if (bad_ < 0) return SIB_ENOMEM;
            if (bad_ > 0) p = pe - 1;
        };
    *|;
}%%

%% write data nofinal noerror noentry;

typedef struct lexer {
    const char *text;
    size_t len;
    sib_arena *a;
    prs_toks *toks;
    int line;
    size_t line_start; /* offset of the first byte of the current line */
} lexer;

static prs_tok *lex_push(lexer *lx)
{
    prs_toks *v = lx->toks;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        prs_tok *t = sib_arena_alloc(lx->a, cap * sizeof *t);
        if (!t) return NULL;
        if (v->n) memcpy(t, v->t, v->n * sizeof *t);
        v->t = t;
        v->cap = cap;
    }
    prs_tok *t = &v->t[v->n++];
    memset(t, 0, sizeof *t);
    return t;
}

/* Appends a token for text[off, off+len) and advances the line counter
 * past any newline inside it. */
static int lex_emit(lexer *lx, int kind, size_t off, size_t len)
{
    prs_tok *t = lex_push(lx);
    if (!t) return SIB_ENOMEM;
    t->kind = kind;
    t->off = off;
    t->len = len;
    t->line = lx->line;
    t->col = (int)(off - lx->line_start);
    for (size_t i = off; i < off + len; i++) {
        if (lx->text[i] == '\n') {
            lx->line++;
            lx->line_start = i + 1;
        }
    }
    return 0;
}

/* A byte that starts no complete token. An opening quote, "$$" or a comment opener
 * without its end is reported like ANTLR does: at the end of input,
 * expecting the closing character. */
static int lex_bad(lexer *lx, const unsigned char *ts)
{
    size_t off = (size_t)((const char *)ts - lx->text);
    char c = lx->text[off];
    bool dollar = c == '$' && off + 1 < lx->len && lx->text[off + 1] == '$';
    if (c == '\'' || c == '"' || dollar) {
        if (lex_emit(lx, T_ERROR, off, lx->len - off) < 0) return SIB_ENOMEM;
        prs_tok *t = &lx->toks->t[lx->toks->n - 1];
        t->err = LEXERR_UNTERMINATED;
        t->expect = c;
        /* ANTLR reports the position of <EOF>, i.e. after the whole text. */
        t->line = lx->line;
        t->col = (int)(lx->len - lx->line_start);
        return 1;
    }
    if (lex_emit(lx, T_ERROR, off, 1) < 0) return SIB_ENOMEM;
    lx->toks->t[lx->toks->n - 1].err = LEXERR_CHAR;
    return 0;
}

/* '/' followed by '*' with no closing: the whole rest is an unterminated comment. */
static bool lex_open_comment(lexer *lx, const unsigned char *ts)
{
    size_t off = (size_t)((const char *)ts - lx->text);
    return lx->text[off] == '/' && off + 1 < lx->len && lx->text[off + 1] == '*';
}

int prs_lex(const char *text, size_t len, sib_arena *a, prs_toks *toks)
{
    lexer lx = {.text = text, .len = len, .a = a, .toks = toks, .line = 1, .line_start = 0};
    toks->t = NULL;
    toks->n = toks->cap = 0;
    const unsigned char *p = (const unsigned char *)text, *pe = p + len, *eof = pe;
    const unsigned char *ts = NULL, *te = NULL;
    int cs, act = 0;
    (void)act;

#define EMIT(kind)                                                                           \
    do {                                                                                     \
        if ((kind) == '/' && lex_open_comment(&lx, ts)) {                                    \
            if (lex_emit(&lx, T_ERROR, (size_t)((const char *)ts - text),                    \
                         len - (size_t)((const char *)ts - text)) < 0)                       \
                return SIB_ENOMEM;                                                           \
            prs_tok *et_ = &toks->t[toks->n - 1];                                            \
            et_->err = LEXERR_UNTERMINATED;                                                  \
            et_->expect = '*';                                                               \
            et_->line = lx.line;                                                             \
            et_->col = (int)(len - lx.line_start);                                           \
            p = pe - 1;                                                                      \
        } else if (lex_emit(&lx, (kind), (size_t)((const char *)ts - text),                  \
                            (size_t)(te - ts)) < 0) {                                        \
            return SIB_ENOMEM;                                                               \
        }                                                                                    \
    } while (0)

/* A number followed by the ".." of a collection slice (m[1..3], m[0...3.]):
 * the number alone is the token, as in Cassandra's lexer, and the two dots
 * are scanned again as '.' '.'. */
#define EMIT_BEFORE_RANGE(kind)                                                              \
    do {                                                                                     \
        if (lex_emit(&lx, (kind), (size_t)((const char *)ts - text), (size_t)(te - ts) - 2) < 0) \
            return SIB_ENOMEM;                                                               \
    } while (0)

    %% write init;
    %% write exec;

#undef EMIT
#undef EMIT_BEFORE_RANGE
    (void)cs;
    prs_tok *eoft = lex_push(&lx);
    if (!eoft) return SIB_ENOMEM;
    eoft->kind = T_EOF;
    eoft->off = len;
    eoft->len = 0;
    eoft->line = lx.line;
    eoft->col = (int)(len - lx.line_start);
    return 0;
}
