/* edit.c: the interactive line editor (libedit): prompt, persistent history
 * and tab completion.
 *
 * libedit's native API (histedit.h) is used rather than its readline
 * emulation because it carries a client-data slot (EL_CLIENTDATA): the
 * prompt and completion callbacks find their shell_edit through it, so no
 * global is needed.
 *
 * History: every non-blank line entered is added (as readline does for
 * cqlsh, so a multi-line statement comes back line by line with the up
 * arrow) and the file $HOME/.sibylsh_history is rewritten after each line,
 * so a killed shell loses nothing. 1000 entries are kept.
 *
 * Completion (TAB), from the statement typed so far, pending lines included:
 *   ks.<TAB>                         tables of ks
 *   after FROM/INTO/UPDATE/TABLE/TRUNCATE/COPY
 *                                    tables of the current keyspace, keyspaces
 *   after USE/KEYSPACE               keyspaces
 *   elsewhere                        keywords, and columns of the table the
 *                                    statement names after FROM/INTO/UPDATE
 * Names come from system_schema through the session's connection at each
 * TAB (no cache to go stale after DDL). One match is inserted with a space
 * after it; several insert their common prefix, or are listed in columns.
 */
#include "shell.h"

#include <ctype.h>
#include <histedit.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HISTORY_SIZE 1000
#define HISTORY_FILE ".sibylsh_history"

struct shell_edit {
    shell *sh;
    EditLine *el;
    History *hist;
    char *hist_path; /* NULL when HOME is unset: history stays in memory */
    const char *prompt;
    char *line;      /* the last line read, newline stripped */
    char *pending;   /* earlier lines of the statement being typed */
};

static const char *const keywords[] = {
    "ADD", "AGGREGATE", "ALL", "ALLOW", "ALTER", "AND", "APPLY", "AS", "ASC", "BATCH", "BEGIN", "BY",
    "CAPTURE", "CLUSTERING", "COMPACT", "CONSISTENCY", "CONTAINS", "COPY", "COUNT", "CREATE", "DELETE",
    "DESC", "DESCRIBE", "DISTINCT", "DROP", "DURABLE_WRITES", "EXISTS", "EXIT", "EXPAND", "FILTERING", "FROM",
    "FUNCTION", "HELP", "IF", "IN", "INDEX", "INSERT", "INTO", "JSON", "KEY", "KEYSPACE", "KEYSPACES",
    "LIMIT", "LOGGED", "NOT", "NULL", "OFF", "ON", "ORDER", "PAGING", "PER", "PARTITION", "PRIMARY", "QUIT",
    "REPLICATION", "SCHEMA", "SELECT", "SERIAL", "SET", "SHOW", "SOURCE", "STATIC", "STDIN", "STDOUT", "STORAGE",
    "TABLE", "TABLES", "TIMESTAMP", "TO", "TRACING", "TRUNCATE", "TTL", "TYPE", "UNLOGGED", "UPDATE", "USE", "USING",
    "VALUES", "WHERE", "WITH", "ascii", "bigint", "blob", "boolean", "counter", "date", "decimal",
    "double", "duration", "float", "frozen", "inet", "int", "list", "map", "smallint", "text", "time",
    "timeuuid", "tinyint", "uuid", "varchar", "varint",
};

/* ---- candidates ----------------------------------------------------------------------- */

typedef struct cands {
    char **v;
    size_t n, cap;
} cands;

static void cands_add(cands *c, const char *s, size_t len)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        char **p = realloc(c->v, cap * sizeof(*p));
        if (!p) return;
        c->v = p;
        c->cap = cap;
    }
    char *d = malloc(len + 1);
    if (!d) return;
    memcpy(d, s, len);
    d[len] = '\0';
    c->v[c->n++] = d;
}

static void cands_free(cands *c)
{
    for (size_t i = 0; i < c->n; i++) free(c->v[i]);
    free(c->v);
}

/* Appends 'text' as a CQL string literal. */
static void put_literal(sib_buf *b, const char *text)
{
    sib_buf_u8(b, '\'');
    for (const char *p = text; *p; p++) {
        if (*p == '\'') sib_buf_u8(b, '\'');
        sib_buf_u8(b, (uint8_t)*p);
    }
    sib_buf_u8(b, '\'');
}

/* Adds column 0 of every row of a system_schema query. */
static void add_names(shell_edit *ed, cands *c, const char *table_sel, const char *ks, const char *table)
{
    if (ed->sh->broken) return; /* no completion from a lost connection */
    sib_buf q;
    sib_buf_init(&q);
    sib_buf_printf(&q, "%s", table_sel);
    if (ks) {
        sib_buf_printf(&q, " WHERE keyspace_name = ");
        put_literal(&q, ks);
    }
    if (table) {
        sib_buf_printf(&q, " AND table_name = ");
        put_literal(&q, table);
    }
    sib_buf_u8(&q, '\0');
    cli_result r;
    sib_err err;
    if (!q.oom && cli_client_query(ed->sh->cl, (const char *)q.p, CQL_ONE, 0, NULL, &r, &err) == 0 &&
        r.kind == CLI_RESULT_ROWS) {
        for (uint32_t i = 0; i < r.u.rows.nrows; i++) {
            cql_value v = cli_result_cell(&r, i, 0);
            if (v.len > 0) cands_add(c, (const char *)v.p, (size_t)v.len);
        }
    }
    cli_result_free(&r);
    sib_buf_free(&q);
}

static bool is_ident(char c) { return isalnum((unsigned char)c) || c == '_' || c == '"'; }

/* The identifier-ish words of text (with '.' kept inside names). */
static size_t split_words(const char *text, char words[][128], size_t max)
{
    size_t n = 0;
    const char *p = text;
    while (*p && n < max) {
        while (*p && !is_ident(*p)) p++;
        size_t k = 0;
        while (*p && (is_ident(*p) || *p == '.')) {
            if (k + 1 < 128 && *p != '"') words[n][k++] = *p;
            p++;
        }
        if (k) words[n++][k] = '\0';
    }
    return n;
}

/* Splits "ks.t" or "t" (current keyspace) into ks and table. */
static void split_qualified(const shell_edit *ed, const char *name, char *ks, char *tb, size_t cap)
{
    const char *dot = strchr(name, '.');
    if (dot) {
        snprintf(ks, cap, "%.*s", (int)(dot - name), name);
        snprintf(tb, cap, "%s", dot + 1);
    } else {
        snprintf(ks, cap, "%s", cli_client_keyspace(ed->sh->cl));
        snprintf(tb, cap, "%s", name);
    }
}

static bool word_in(const char *w, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(w, set[i]) == 0) return true;
    return false;
}

/* Fills c with what may stand at the cursor, the word being typed; a word
 * with a "ks." qualifier gets qualified candidates. */
static void gather(shell_edit *ed, const char *before, const char *word, cands *c)
{
    static const char *const table_ctx[] = {"FROM", "INTO", "UPDATE", "TABLE", "TRUNCATE", "COPY"};
    static const char *const ks_ctx[] = {"USE", "KEYSPACE"};
    char words[64][128];
    size_t nw = split_words(before, words, 64);
    const char *prev = nw ? words[nw - 1] : "";
    const char *cur_ks = cli_client_keyspace(ed->sh->cl);
    const char *dot = strchr(word, '.');
    if (dot) {
        char ks[128];
        snprintf(ks, sizeof(ks), "%.*s", (int)(dot - word), word);
        cands t = {0};
        add_names(ed, &t, "SELECT table_name FROM system_schema.tables", ks, NULL);
        for (size_t i = 0; i < t.n; i++) {
            char full[300];
            int len = snprintf(full, sizeof(full), "%s.%s", ks, t.v[i]);
            cands_add(c, full, (size_t)len);
        }
        cands_free(&t);
        return;
    }
    if (word_in(prev, table_ctx, SIB_ARRAY_LEN(table_ctx))) {
        if (cur_ks[0]) add_names(ed, c, "SELECT table_name FROM system_schema.tables", cur_ks, NULL);
        add_names(ed, c, "SELECT keyspace_name FROM system_schema.keyspaces", NULL, NULL);
        return;
    }
    if (word_in(prev, ks_ctx, SIB_ARRAY_LEN(ks_ctx))) {
        add_names(ed, c, "SELECT keyspace_name FROM system_schema.keyspaces", NULL, NULL);
        return;
    }
    for (size_t i = 0; i < SIB_ARRAY_LEN(keywords); i++) cands_add(c, keywords[i], strlen(keywords[i]));
    for (size_t i = 0; i + 1 < nw; i++) {
        if (word_in(words[i], table_ctx, 3)) { /* FROM, INTO, UPDATE name the table */
            char ks[128], tb[128];
            split_qualified(ed, words[i + 1], ks, tb, sizeof(ks));
            if (ks[0]) add_names(ed, c, "SELECT column_name FROM system_schema.columns", ks, tb);
            break;
        }
    }
}

/* ---- the completion callback ----------------------------------------------------- */

static bool all_lower(const char *s, size_t n)
{
    bool lower = false;
    for (size_t i = 0; i < n; i++) {
        if (isupper((unsigned char)s[i])) return false;
        if (islower((unsigned char)s[i])) lower = true;
    }
    return lower;
}

static bool is_keyword(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isupper((unsigned char)s[i]) && s[i] != '_') return false;
    return n > 0;
}

/* Replaces the typed word with s; a keyword typed in lower case stays in
 * lower case (schema names are inserted as they are). */
static void replace_word(EditLine *el, size_t typed_len, const char *typed, const char *s, size_t len, bool space)
{
    char buf[512];
    if (len >= sizeof(buf) - 1) return;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (all_lower(typed, typed_len) && is_keyword(buf, len))
        for (size_t i = 0; i < len; i++) buf[i] = (char)tolower((unsigned char)buf[i]);
    if (space) strcat(buf, " ");
    el_deletestr(el, (int)typed_len);
    el_insertstr(el, buf);
}

static unsigned char complete(EditLine *el, int ch)
{
    (void)ch;
    shell_edit *ed = NULL;
    el_get(el, EL_CLIENTDATA, &ed);
    const LineInfo *li = el_line(el);
    const char *ws = li->cursor;
    while (ws > li->buffer && (is_ident(ws[-1]) || ws[-1] == '.')) ws--;
    size_t wlen = (size_t)(li->cursor - ws);
    char word[256];
    snprintf(word, sizeof(word), "%.*s", (int)SIB_MIN(wlen, sizeof(word) - 1), ws);

    sib_buf before;
    sib_buf_init(&before);
    if (ed->pending) sib_buf_append(&before, ed->pending, strlen(ed->pending));
    sib_buf_append(&before, li->buffer, (size_t)(ws - li->buffer));
    sib_buf_u8(&before, '\0');
    cands all = {0}, m = {0};
    if (!before.oom) gather(ed, (const char *)before.p, word, &all);
    sib_buf_free(&before);
    for (size_t i = 0; i < all.n; i++)
        if (strncasecmp(all.v[i], word, strlen(word)) == 0) {
            bool dup = false;
            for (size_t j = 0; j < m.n && !dup; j++) dup = strcmp(m.v[j], all.v[i]) == 0;
            if (!dup) cands_add(&m, all.v[i], strlen(all.v[i]));
        }
    unsigned char rc = CC_ERROR;
    if (m.n == 1) {
        replace_word(el, strlen(word), word, m.v[0], strlen(m.v[0]), true);
        rc = CC_REFRESH;
    } else if (m.n > 1) {
        size_t common = strlen(m.v[0]);
        for (size_t i = 1; i < m.n; i++) {
            size_t k = 0;
            while (k < common && tolower((unsigned char)m.v[i][k]) == tolower((unsigned char)m.v[0][k])) k++;
            common = k;
        }
        if (common > strlen(word)) {
            replace_word(el, strlen(word), word, m.v[0], common, false);
            rc = CC_REFRESH;
        } else {
            fputc('\n', stdout);
            shell_columnize(stdout, (const char *const *)m.v, m.n);
            rc = CC_REDISPLAY;
        }
    }
    cands_free(&all);
    cands_free(&m);
    return rc;
}

/* ---- life cycle ---------------------------------------------------------------------- */

static char *prompt_fn(EditLine *el)
{
    shell_edit *ed = NULL;
    el_get(el, EL_CLIENTDATA, &ed);
    return (char *)(ed && ed->prompt ? ed->prompt : "");
}

shell_edit *shell_edit_create(shell *sh)
{
    shell_edit *ed = calloc(1, sizeof(*ed));
    if (!ed) return NULL;
    ed->sh = sh;
    HistEvent ev;
    ed->hist = history_init();
    ed->el = el_init("sibylsh", stdin, stdout, stderr);
    if (!ed->hist || !ed->el) {
        shell_edit_destroy(ed);
        return NULL;
    }
    history(ed->hist, &ev, H_SETSIZE, HISTORY_SIZE);
    const char *home = getenv("HOME");
    if (home && home[0]) {
        size_t n = strlen(home) + sizeof(HISTORY_FILE) + 2;
        ed->hist_path = malloc(n);
        if (ed->hist_path) {
            snprintf(ed->hist_path, n, "%s/%s", home, HISTORY_FILE);
            history(ed->hist, &ev, H_LOAD, ed->hist_path); /* a missing file is a fresh history */
        }
    }
    el_set(ed->el, EL_CLIENTDATA, ed);
    el_set(ed->el, EL_EDITOR, "emacs");
    el_set(ed->el, EL_SIGNAL, 1);
    el_set(ed->el, EL_PROMPT, prompt_fn);
    el_set(ed->el, EL_HIST, history, ed->hist);
    /* The wide call with static strings: the narrow el_set(EL_ADDFN) wcsdup()s
     * name and help and never frees them (a libedit leak LeakSanitizer sees). */
    el_wset(ed->el, EL_ADDFN, L"sibylsh-complete", L"Complete a keyword or schema name", complete);
    el_set(ed->el, EL_BIND, "^I", "sibylsh-complete", NULL);
    el_source(ed->el, NULL); /* the user's ~/.editrc may rebind keys */
    return ed;
}

void shell_edit_destroy(shell_edit *ed)
{
    if (!ed) return;
    if (ed->el) el_end(ed->el);
    if (ed->hist) history_end(ed->hist);
    free(ed->hist_path);
    free(ed->line);
    free(ed->pending);
    free(ed);
}

const char *shell_edit_line(shell_edit *ed, const char *prompt)
{
    ed->prompt = prompt;
    int count = 0;
    const char *s = el_gets(ed->el, &count);
    if (!s || count <= 0) return NULL;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
    char *copy = malloc(n + 1);
    if (!copy) return NULL;
    memcpy(copy, s, n);
    copy[n] = '\0';
    free(ed->line);
    ed->line = copy;
    return copy;
}

void shell_edit_remember(shell_edit *ed, const char *line)
{
    HistEvent ev;
    history(ed->hist, &ev, H_ENTER, line);
    if (ed->hist_path) history(ed->hist, &ev, H_SAVE, ed->hist_path);
}

void shell_edit_set_pending(shell_edit *ed, const char *pending)
{
    free(ed->pending);
    ed->pending = pending && pending[0] ? strdup(pending) : NULL;
}
