/* parse_util.c: token access, Cassandra-style syntax errors, names and the
 * small public helpers (consistency levels, reserved words).
 *
 * Error texts follow ANTLR3 as Cassandra's ErrorCollector prints them
 * (docs/cql.md §4):
 *
 *   line L:C <message> (<snippet>)
 *
 * where L:C is the offending token's 1-based line and 0-based column and
 * the snippet runs from 10 tokens before it to 2 after, hidden whitespace
 * and comment tokens counted, the offending token in [brackets], "..."
 * marking a cut at either end, lines joined without their '\n' (as Java's
 * split-then-append does). A token's "text" is what ANTLR's getText()
 * gives: strings and quoted names unescaped, everything else as written.
 * Lexer errors have no snippet. When the offending token is <EOF> the
 * snippet is left out (Cassandra's own code cannot place the brackets
 * there).
 */
#include <ctype.h>
#include <stdlib.h>
#include <strings.h>

#include "parser_int.h"

/* ---- public helpers ---------------------------------------------------- */

static const char *const cl_names[] = {
    "ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM",
    "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE",
};

const char *prs_consistency_name(int code)
{
    if (code < 0 || (size_t)code >= SIB_ARRAY_LEN(cl_names)) return NULL;
    return cl_names[code];
}

int prs_consistency_parse(const char *s)
{
    if (!s) return -1;
    for (size_t i = 0; i < SIB_ARRAY_LEN(cl_names); i++)
        if (strcasecmp(s, cl_names[i]) == 0) return (int)i;
    return -1;
}

/* reserved_keywords.txt, sorted for bsearch (lower case). */
static const char *const reserved[] = {
    "add", "allow", "alter", "and", "apply", "asc", "authorize", "batch", "begin", "by",
    "columnfamily", "create", "delete", "desc", "describe", "drop", "entries", "execute",
    "from", "full", "grant", "if", "in", "index", "infinity", "insert", "into", "is",
    "keyspace", "limit", "materialized", "modify", "nan", "norecursive", "not", "null", "of",
    "on", "or", "order", "primary", "rename", "revoke", "schema", "select", "set", "table",
    "to", "token", "truncate", "unlogged", "update", "use", "using", "view", "where", "with",
};

static int cmp_word(const void *k, const void *e)
{
    return strcasecmp((const char *)k, *(const char *const *)e);
}

bool prs_is_reserved_keyword(const char *word)
{
    if (!word) return false;
    return bsearch(word, reserved, SIB_ARRAY_LEN(reserved), sizeof reserved[0], cmp_word) != NULL;
}

static const char *const kind_names[] = {
    [PRS_STMT_SELECT] = "SELECT", [PRS_STMT_INSERT] = "INSERT", [PRS_STMT_UPDATE] = "UPDATE",
    [PRS_STMT_DELETE] = "DELETE", [PRS_STMT_BATCH] = "BATCH", [PRS_STMT_USE] = "USE",
    [PRS_STMT_CREATE_KEYSPACE] = "CREATE_KEYSPACE", [PRS_STMT_ALTER_KEYSPACE] = "ALTER_KEYSPACE",
    [PRS_STMT_DROP_KEYSPACE] = "DROP_KEYSPACE", [PRS_STMT_CREATE_TABLE] = "CREATE_TABLE",
    [PRS_STMT_ALTER_TABLE] = "ALTER_TABLE", [PRS_STMT_DROP_TABLE] = "DROP_TABLE",
    [PRS_STMT_TRUNCATE] = "TRUNCATE", [PRS_STMT_DESCRIBE] = "DESCRIBE",
};

const char *prs_stmt_kind_name(prs_stmt_kind k)
{
    if ((unsigned)k >= SIB_ARRAY_LEN(kind_names)) return "UNKNOWN";
    return kind_names[k];
}

/* ---- memory ------------------------------------------------------------ */

void *palloc(prs_parser *p, size_t n)
{
    void *m = sib_arena_alloc(p->a, n ? n : 1);
    if (!m) perr_oom(p);
    memset(m, 0, n ? n : 1);
    return m;
}

void pvec_init(pvec *v, size_t elem)
{
    v->v = NULL;
    v->n = v->cap = 0;
    v->elem = elem;
}

void *pvec_push(prs_parser *p, pvec *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        void *nv = palloc(p, cap * v->elem);
        if (v->n) memcpy(nv, v->v, v->n * v->elem);
        v->v = nv;
        v->cap = cap;
    }
    return (char *)v->v + v->elem * v->n++;
}

static int cmp_name_ref(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sorting keeps this O(n log n): a statement may carry thousands of names. */
size_t first_name_clash(prs_parser *p, const name_ref *refs, size_t n)
{
    if (n < 2) return SIZE_MAX;
    name_ref *v = palloc(p, n * sizeof *v);
    memcpy(v, refs, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_name_ref);
    size_t best = SIZE_MAX;
    for (size_t g = 0; g < n;) {
        size_t e = g + 1;
        while (e < n && strcmp(v[e].name, v[g].name) == 0) e++;
        bool any_excl = v[g].exclusive;
        for (size_t i = g + 1; i < e; i++) {
            if (any_excl || v[i].exclusive) {
                if (v[i].idx < best) best = v[i].idx;
                break;
            }
        }
        g = e;
    }
    return best;
}

/* ---- token text -------------------------------------------------------- */

/* Unescaped text of t, NUL-terminated, from the arena; *len excludes the NUL. */
char *tok_text(prs_parser *p, const prs_tok *t, size_t *len)
{
    const char *s = p->text + t->off;
    size_t n = t->len;
    char q = 0;
    if (t->kind == T_STRING) q = '\'';
    else if (t->kind == T_QNAME) q = '"';
    else if (t->kind == T_PGSTRING) {
        s += 2;
        n -= 4;
    }
    char *out = palloc(p, n + 1);
    size_t o = 0;
    if (q) {
        for (size_t i = 1; i + 1 < n; i++) {
            out[o++] = s[i];
            if (s[i] == q) i++; /* '' -> ' (the lexer guarantees the pair) */
        }
    } else {
        memcpy(out, s, n);
        o = n;
    }
    out[o] = 0;
    if (len) *len = o;
    return out;
}

char *tok_raw(prs_parser *p, const prs_tok *t)
{
    char *s = palloc(p, t->len + 1);
    memcpy(s, p->text + t->off, t->len);
    return s;
}

/* ANTLR getText() length, used to place the snippet brackets. */
static size_t antlr_len(prs_parser *p, const prs_tok *t)
{
    size_t n;
    if (t->kind == T_STRING || t->kind == T_QNAME || t->kind == T_PGSTRING) {
        tok_text(p, t, &n);
        return n;
    }
    return t->len;
}

/* getTokenErrorDisplay: text with \n \r \t escaped; <EOF> at the end. */
static void tok_display(prs_parser *p, const prs_tok *t, sib_buf *b)
{
    if (t->kind == T_EOF) {
        sib_buf_append(b, "<EOF>", 5);
        return;
    }
    size_t n;
    const char *s = tok_text(p, t, &n);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') sib_buf_append(b, "\\n", 2);
        else if (s[i] == '\r') sib_buf_append(b, "\\r", 2);
        else if (s[i] == '\t') sib_buf_append(b, "\\t", 2);
        else sib_buf_u8(b, (uint8_t)s[i]);
    }
}

/* ---- errors ------------------------------------------------------------ */

_Noreturn void perr_oom(prs_parser *p)
{
    sib_err_set(p->err, SIB_ENOMEM, "out of memory while parsing");
    longjmp(p->jb, 1);
}

static _Noreturn void perr_finish(prs_parser *p, sib_buf *b)
{
    if (b->oom) {
        sib_buf_free(b);
        perr_oom(p);
    }
    sib_buf_u8(b, 0);
    sib_err_set(p->err, SIB_ESYNTAX, "%s", (const char *)b->p);
    sib_buf_free(b);
    longjmp(p->jb, 1);
}

/* Index into all.t, stepping over T_ERROR tokens (ANTLR's stream never has them). */
static size_t snip_step(prs_parser *p, size_t i, int dir, int count)
{
    while (count > 0) {
        if (dir < 0 && i == 0) break;
        if (dir > 0 && i + 1 >= p->all.n) break;
        i = dir < 0 ? i - 1 : i + 1;
        if (p->all.t[i].kind != T_ERROR) count--;
    }
    return i;
}

typedef struct span { size_t off, len; } span;

/* Lines as Java's String.split("\n"): trailing empty lines dropped. */
static size_t split_lines(prs_parser *p, span **out)
{
    size_t n = 1;
    for (size_t i = 0; i < p->len; i++) n += p->text[i] == '\n';
    span *l = palloc(p, n * sizeof *l);
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= p->len; i++) {
        if (i == p->len || p->text[i] == '\n') {
            l[k].off = start;
            l[k++].len = i - start;
            start = i + 1;
        }
    }
    while (k > 0 && l[k - 1].len == 0) k--;
    *out = l;
    return k;
}

static void append_snippet(prs_parser *p, size_t off_idx, sib_buf *b)
{
    const prs_tok *off = &p->all.t[off_idx];
    if (off->kind == T_EOF) return;
    const prs_tok *from = &p->all.t[snip_step(p, off_idx, -1, 10)];
    const prs_tok *to = &p->all.t[snip_step(p, off_idx, +1, 2)];
    span *lines;
    size_t nl = split_lines(p, &lines);
    size_t fi = (size_t)from->line - 1, ti = (size_t)to->line - 1, oi = (size_t)off->line - 1;
    if (ti >= nl || oi >= nl || fi > oi || oi > ti) return;
    size_t to_end = (size_t)to->col + antlr_len(p, to);
    size_t off_end = (size_t)off->col + antlr_len(p, off);
    bool has_start = from->line == 1 && from->col == 0;
    bool has_end = ti + 1 == nl && to_end == lines[nl - 1].len;
    /* Validate before writing anything: Java would throw on these. */
    size_t oi_len = lines[oi].len;
    if (oi == ti && to_end < oi_len) oi_len = to_end;
    if (off_end > oi_len) return;
    sib_buf_append(b, " (", 2);
    if (!has_start) sib_buf_append(b, "...", 3);
    for (size_t i = fi; i <= ti; i++) {
        const char *s = p->text + lines[i].off;
        size_t n = lines[i].len;
        if (i == ti && to_end < n) n = to_end;
        size_t start = i == fi ? (size_t)from->col : 0;
        for (size_t c = 0; c <= n; c++) {
            if (i == oi && c == (size_t)off->col && c >= start) sib_buf_u8(b, '[');
            if (i == oi && c == off_end && c >= start) sib_buf_u8(b, ']');
            if (c < n && c >= start) sib_buf_u8(b, (uint8_t)s[c]);
        }
    }
    if (!has_end) sib_buf_append(b, "...", 3);
    sib_buf_u8(b, ')');
}

/* "line L:C <msg> (<snippet>)" for visible token vidx. */
static _Noreturn void perr_at(prs_parser *p, size_t vidx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static _Noreturn void perr_at(prs_parser *p, size_t vidx, const char *fmt, ...)
{
    if (vidx >= p->nvis) vidx = p->nvis - 1;
    size_t ai = p->vis[vidx];
    const prs_tok *t = &p->all.t[ai];
    sib_buf b;
    sib_buf_init(&b);
    sib_buf_printf(&b, "line %d:%d ", t->line, t->col);
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    /* '%T' in the formatted text stands for the quoted token display. */
    for (const char *c = tmp; *c; c++) {
        if (c[0] == '%' && c[1] == 'T') {
            sib_buf_u8(&b, '\'');
            tok_display(p, t, &b);
            sib_buf_u8(&b, '\'');
            c++;
        } else {
            sib_buf_u8(&b, (uint8_t)*c);
        }
    }
    append_snippet(p, ai, &b);
    perr_finish(p, &b);
}

static _Noreturn void perr_lex(prs_parser *p, const prs_tok *t)
{
    sib_buf b;
    sib_buf_init(&b);
    sib_buf_printf(&b, "line %d:%d ", t->line, t->col);
    if (t->err == LEXERR_UNTERMINATED) {
        sib_buf_printf(&b, "mismatched character '<EOF>' expecting '%c'", t->expect);
    } else {
        /* Show a whole UTF-8 sequence rather than a lone lead byte. */
        const unsigned char *s = (const unsigned char *)p->text + t->off;
        size_t n = 1, left = p->len - t->off;
        if (s[0] >= 0xC0) n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : 2;
        if (n > left) n = left;
        for (size_t i = 1; i < n; i++)
            if ((s[i] & 0xC0) != 0x80) n = i;
        sib_buf_append(&b, "no viable alternative at character '", 36);
        sib_buf_append(&b, s, n);
        sib_buf_u8(&b, '\'');
    }
    perr_finish(p, &b);
}

_Noreturn void perr_noviable(prs_parser *p)
{
    pk(p, 0);
    perr_at(p, p->pos, "no viable alternative at input %%T");
}

_Noreturn void perr_mismatch(prs_parser *p, const char *expecting)
{
    pk(p, 0);
    perr_at(p, p->pos, "mismatched input %%T expecting %s", expecting);
}

/* ANTLR's match(EOF): "extraneous input" when only one token is left over,
 * otherwise "missing EOF at" (e.g. a second statement). */
_Noreturn void perr_not_eof(prs_parser *p)
{
    if (pkind(p, 1) == T_EOF) perr_at(p, p->pos, "extraneous input %%T expecting EOF");
    perr_at(p, p->pos, "missing EOF at %%T");
}

_Noreturn void perr_raw(prs_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[400];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sib_err_set(p->err, SIB_ESYNTAX, "%s", tmp);
    longjmp(p->jb, 1);
}

void pdepth_enter(prs_parser *p)
{
    if (++p->depth > PRS_MAX_DEPTH) {
        pk(p, 0);
        perr_at(p, p->pos, "no viable alternative at input %%T (nesting deeper than %d)", PRS_MAX_DEPTH);
    }
}

/* ---- token access ------------------------------------------------------ */

const prs_tok *pk(prs_parser *p, size_t k)
{
    size_t end = p->pos + k;
    if (end >= p->nvis) end = p->nvis - 1;
    /* A lexer error is reported as soon as the parser looks at or past it,
     * which is when ANTLR's lexer would have produced it. */
    for (size_t i = p->pos; i <= end; i++) {
        const prs_tok *t = &p->all.t[p->vis[i]];
        if (t->kind == T_ERROR) perr_lex(p, t);
    }
    return &p->all.t[p->vis[end]];
}

int pkind(prs_parser *p, size_t k) { return pk(p, k)->kind; }

void padvance(prs_parser *p)
{
    if (p->pos + 1 < p->nvis) p->pos++;
}

bool pword(prs_parser *p, size_t k, const char *kw)
{
    const prs_tok *t = pk(p, k);
    if (t->kind != T_IDENT || t->len != strlen(kw)) return false;
    return strncasecmp(p->text + t->off, kw, t->len) == 0;
}

bool paccept(prs_parser *p, int kind)
{
    if (pkind(p, 0) != kind) return false;
    padvance(p);
    return true;
}

bool paccept_word(prs_parser *p, const char *kw)
{
    if (!pword(p, 0, kw)) return false;
    padvance(p);
    return true;
}

static void kind_name(int kind, char *out, size_t n)
{
    static const char *const names[] = {
        [T_IDENT - T_WS] = "IDENT", [T_QNAME - T_WS] = "QUOTED_NAME",
        [T_STRING - T_WS] = "STRING_LITERAL", [T_PGSTRING - T_WS] = "STRING_LITERAL",
        [T_INTEGER - T_WS] = "INTEGER", [T_FLOAT - T_WS] = "FLOAT", [T_BOOLEAN - T_WS] = "BOOLEAN",
        [T_UUID - T_WS] = "UUID", [T_HEX - T_WS] = "HEXNUMBER", [T_DURATION - T_WS] = "DURATION",
        [T_LTE - T_WS] = "'<='", [T_GTE - T_WS] = "'>='", [T_NEQ - T_WS] = "'!='",
        [T_PLUSEQ - T_WS] = "'+='", [T_MINUSEQ - T_WS] = "'-='",
    };
    if (kind == T_EOF) snprintf(out, n, "EOF");
    else if (kind < T_WS) snprintf(out, n, "'%c'", kind);
    else if (kind - T_WS < (int)SIB_ARRAY_LEN(names) && names[kind - T_WS])
        snprintf(out, n, "%s", names[kind - T_WS]);
    else snprintf(out, n, "token");
}

/* ANTLR match(): on a mismatch, if the token after the current one is the
 * expected one the current token is "extraneous". */
void pexpect(prs_parser *p, int kind)
{
    if (paccept(p, kind)) return;
    char name[32];
    kind_name(kind, name, sizeof name);
    if (pkind(p, 1) == kind) perr_at(p, p->pos, "extraneous input %%T expecting %s", name);
    perr_mismatch(p, name);
}

void pexpect_word(prs_parser *p, const char *kw)
{
    if (paccept_word(p, kw)) return;
    char name[40];
    size_t i = 0;
    name[i++] = 'K';
    name[i++] = '_';
    for (const char *c = kw; *c && i + 1 < sizeof name; c++) name[i++] = (char)toupper((unsigned char)*c);
    name[i] = 0;
    if (pword(p, 1, kw)) perr_at(p, p->pos, "extraneous input %%T expecting %s", name);
    perr_mismatch(p, name);
}

/* ---- names ------------------------------------------------------------- */

bool is_ident_tok(prs_parser *p, size_t k)
{
    const prs_tok *t = pk(p, k);
    if (t->kind == T_QNAME) return t->len > 2;
    if (t->kind != T_IDENT) return false;
    char w[32];
    if (t->len >= sizeof w) return true; /* longer than any keyword */
    memcpy(w, p->text + t->off, t->len);
    w[t->len] = 0;
    return !prs_is_reserved_keyword(w);
}

static const char *take_name(prs_parser *p)
{
    const prs_tok *t = pk(p, 0);
    char *s = tok_text(p, t, NULL);
    if (t->kind == T_IDENT)
        for (char *c = s; *c; c++) *c = (char)tolower((unsigned char)*c);
    padvance(p);
    return s;
}

const char *parse_ident(prs_parser *p)
{
    if (!is_ident_tok(p, 0)) perr_noviable(p);
    return take_name(p);
}

const char *parse_col_ref(prs_parser *p)
{
    const prs_tok *t = pk(p, 0);
    if (t->kind == T_QNAME && t->len == 2) {
        padvance(p);
        return palloc(p, 1);
    }
    return parse_ident(p);
}

const char *parse_ks_name(prs_parser *p)
{
    if (pkind(p, 0) == '?') perr_raw(p, "Bind variables cannot be used for keyspace names");
    return parse_ident(p);
}

prs_qname parse_table_name(prs_parser *p)
{
    prs_qname q = {0};
    if (pkind(p, 0) == '?') perr_raw(p, "Bind variables cannot be used for table names");
    if (pkind(p, 1) == '.') {
        q.ks = parse_ks_name(p);
        padvance(p);
    }
    if (pkind(p, 0) == '?') perr_raw(p, "Bind variables cannot be used for table names");
    q.name = parse_ident(p);
    return q;
}

prs_stmt *new_stmt(prs_parser *p, prs_stmt_kind kind)
{
    prs_stmt *s = PNEW(p, prs_stmt);
    s->kind = kind;
    s->consistency = -1;
    return s;
}
