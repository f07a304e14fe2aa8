/* output.c: result sets, DESCRIBE answers and errors, printed as cqlsh 4.x
 * prints them (cqlsh.py print_result / print_static_result /
 * print_formatted_result(_vertically), describe_list / describe_element,
 * and the Python driver's exception texts).
 *
 * A result, page by page:
 *
 *     <blank>
 *      k | v            header: names left-aligned, ' | ' between, rstripped
 *     ---+-----         '-' + '-+-'.join('-' * width) + '-'
 *      1 | abc          values right-aligned to the column width
 *     <blank>           after each page on a terminal, once at the end otherwise
 *     (1 rows)
 *     <blank>
 *
 * Widths are per page and count terminal columns (UTF-8 aware), never the
 * colour escapes. Later pages repeat the header only on a terminal, where
 * "---MORE---" waits for Enter between pages; -e/-f fetch every page.
 * EXPAND ON prints "@ Row n" blocks instead.
 */
#define _XOPEN_SOURCE 700 /* wcwidth() is XSI: glibc declares it only under _XOPEN_SOURCE */
#include "shell.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wchar.h>

#define C_RESET "\033[0m"
#define C_NAME "\033[0;1;35m"    /* cqlsh default_colname_color: magenta */
#define C_TEXT "\033[0;1;33m"    /* strings: yellow */
#define C_VALUE "\033[0;1;32m"   /* numbers, uuids, times, booleans: green */
#define C_BLOB "\033[0;35m"      /* blobs: dark magenta */
#define C_COLL "\033[0;1;34m"    /* collections: blue */
#define C_NULL "\033[0;1;31m"    /* null and errors: red */

/* ---- errors ------------------------------------------------------------------------ */

static void verror(shell *sh, const char *fmt, va_list ap)
{
    if (sh->color) fputs(C_NULL, stderr);
    if (sh->prefix_errors) fprintf(stderr, "%s:%d:", sh->src, sh->lineno);
    vfprintf(stderr, fmt, ap);
    if (sh->color) fputs(C_RESET, stderr);
    fputc('\n', stderr);
    fflush(stderr);
    sh->nerrors++;
}

void shell_error(shell *sh, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(sh, fmt, ap);
    va_end(ap);
}

/* The driver's ErrorMessage.summary per code (cassandra/protocol.py). */
static const char *error_summary(int32_t code)
{
    switch (code) {
    case CQL_ERR_SERVER: return "Server error";
    case CQL_ERR_PROTOCOL: return "Protocol error";
    case CQL_ERR_BAD_CREDENTIALS: return "Bad credentials";
    case CQL_ERR_UNAVAILABLE: return "Unavailable exception";
    case CQL_ERR_OVERLOADED: return "Coordinator node overloaded";
    case CQL_ERR_BOOTSTRAPPING: return "Coordinator node is bootstrapping";
    case CQL_ERR_TRUNCATE: return "Error during truncate";
    case CQL_ERR_WRITE_TIMEOUT:
    case CQL_ERR_READ_TIMEOUT: return "Coordinator node timed out waiting for replica nodes' responses";
    case CQL_ERR_READ_FAILURE: return "Replica(s) failed to execute read";
    case CQL_ERR_FUNCTION_FAILURE: return "User Defined Function failed to execute";
    case CQL_ERR_WRITE_FAILURE: return "Replica(s) failed to execute write";
    case CQL_ERR_SYNTAX: return "Syntax error in CQL query";
    case CQL_ERR_UNAUTHORIZED: return "Unauthorized";
    case CQL_ERR_INVALID: return "Invalid query";
    case CQL_ERR_CONFIG: return "Query invalid because of configuration issue";
    case CQL_ERR_ALREADY_EXISTS: return "Already exists";
    case CQL_ERR_UNPREPARED: return "Query not prepared";
    default: return "Server error";
    }
}

void shell_server_error(shell *sh, const cli_result *r)
{
    const cli_result_error *e = &r->u.error;
    const char *cls = cli_client_error_class(e->code);
    const char *msg = e->msg ? e->msg : "";
    const cql_error_extra *x = &e->x;
    /* Which exceptions the driver rewraps with "Error from server: ..." and
     * which keep the bare server message follows each class's to_exception. */
    switch (e->code) {
    case CQL_ERR_ALREADY_EXISTS:
        if (x->table && x->table[0])
            shell_error(sh, "AlreadyExists: Table '%s.%s' already exists", x->ks ? x->ks : "", x->table);
        else
            shell_error(sh, "AlreadyExists: Keyspace '%s' already exists", x->ks ? x->ks : "");
        return;
    case CQL_ERR_INVALID:
    case CQL_ERR_UNAUTHORIZED:
    case CQL_ERR_FUNCTION_FAILURE:
        shell_error(sh, "%s: Error from server: code=%04x [%s] message=\"%s\"", cls, (unsigned)e->code,
                    error_summary(e->code), msg);
        return;
    case CQL_ERR_UNAVAILABLE:
        shell_error(sh,
                    "%s: Error from server: code=%04x [%s] message=\"%s\" info={'consistency': '%s', "
                    "'required_replicas': %d, 'alive_replicas': %d}",
                    cls, (unsigned)e->code, error_summary(e->code), msg, cql_cl_name(x->consistency),
                    (int)x->required, (int)x->alive);
        return;
    case CQL_ERR_WRITE_TIMEOUT:
        shell_error(sh,
                    "%s: Error from server: code=%04x [%s] message=\"%s\" info={'consistency': '%s', "
                    "'required_responses': %d, 'received_responses': %d, 'write_type': '%s'}",
                    cls, (unsigned)e->code, error_summary(e->code), msg, cql_cl_name(x->consistency),
                    (int)x->blockfor, (int)x->received, cql_write_type_name(x->write_type));
        return;
    case CQL_ERR_READ_TIMEOUT:
    case CQL_ERR_READ_FAILURE:
    case CQL_ERR_WRITE_FAILURE:
        shell_error(sh,
                    "%s: Error from server: code=%04x [%s] message=\"%s\" info={'consistency': '%s', "
                    "'required_responses': %d, 'received_responses': %d%s}",
                    cls, (unsigned)e->code, error_summary(e->code), msg, cql_cl_name(x->consistency),
                    (int)x->blockfor, (int)x->received,
                    e->code == CQL_ERR_READ_TIMEOUT ? (x->data_present ? ", 'data_retrieved': True"
                                                                       : ", 'data_retrieved': False")
                                                    : "");
        return;
    default:
        shell_error(sh, "%s: %s", cls, msg);
        return;
    }
}

/* ---- cell formatting -------------------------------------------------------------- */

size_t shell_display_width(const char *s, size_t len)
{
    mbstate_t st;
    memset(&st, 0, sizeof(st));
    size_t w = 0, i = 0;
    while (i < len) {
        wchar_t wc;
        size_t k = mbrtowc(&wc, s + i, len - i, &st);
        if (k == (size_t)-1 || k == (size_t)-2 || k == 0) { /* invalid byte: one column */
            memset(&st, 0, sizeof(st));
            w++;
            i++;
            continue;
        }
        int cw = wcwidth(wc);
        w += cw < 0 ? 1 : (size_t)cw;
        i += k;
    }
    return w;
}

/* One formatted cell: text in the page's buffer at [off, off+len). */
typedef struct cell_fmt {
    size_t off, len, width;
    const char *color;
} cell_fmt;

static const char *type_color(const cli_col_spec *c)
{
    if (!c->type) return C_BLOB;
    switch (c->type->code) {
    case SCH_T_ASCII:
    case SCH_T_VARCHAR: return C_TEXT;
    case SCH_T_BLOB:
    case SCH_T_CUSTOM: return C_BLOB;
    case SCH_T_LIST:
    case SCH_T_SET:
    case SCH_T_MAP: return C_COLL;
    default: return C_VALUE;
    }
}

/* Top-level text shows backslashes doubled and control characters escaped,
 * as cqlsh's format_value_text does, so one value stays on one line. */
static void escape_text(sib_buf *out, const char *s, size_t n, bool is_text)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' && is_text)
            sib_buf_append(out, "\\\\", 2);
        else if (c == '\n')
            sib_buf_append(out, "\\n", 2);
        else if (c == '\t')
            sib_buf_append(out, "\\t", 2);
        else if (c == '\r')
            sib_buf_append(out, "\\r", 2);
        else if (c < 0x20 || c == 0x7f)
            sib_buf_printf(out, "\\x%02x", c);
        else
            sib_buf_u8(out, c);
    }
}

static void format_cell(const cli_col_spec *c, cql_value v, sib_buf *text, sib_buf *tmp, cell_fmt *f)
{
    f->off = text->len;
    if (v.len < 0) {
        sib_buf_append(text, "null", 4);
        f->color = C_NULL;
    } else {
        sib_buf_reset(tmp);
        const sch_type *t = c->type ? c->type : sch_type_native(SCH_T_BLOB);
        sch_value_format(t, v.p, (size_t)v.len, tmp);
        bool is_text = t->code == SCH_T_ASCII || t->code == SCH_T_VARCHAR;
        escape_text(text, (const char *)tmp->p, tmp->len, is_text);
        f->color = type_color(c);
    }
    f->len = text->len - f->off;
    f->width = shell_display_width((const char *)text->p + f->off, f->len);
}

static void put_padded(const shell *sh, const char *s, size_t len, size_t width, size_t target, bool right,
                       const char *color)
{
    FILE *out = sh->out;
    size_t pad = target > width ? target - width : 0;
    if (right) fprintf(out, "%*s", (int)pad, "");
    if (sh->color) fputs(color, out);
    fwrite(s, 1, len, out);
    if (sh->color) fputs(C_RESET, out);
    if (!right) fprintf(out, "%*s", (int)pad, "");
}

/* ---- tables ------------------------------------------------------------------------- */

static void print_separator(FILE *out, const size_t *widths, uint32_t n)
{
    fputc('-', out);
    for (uint32_t c = 0; c < n; c++) {
        if (c) fputs("-+-", out);
        for (size_t k = 0; k < widths[c]; k++) fputc('-', out);
    }
    fputs("-\n", out);
}

static void print_table(const shell *sh, const cli_result_meta *m, const char *text, const cell_fmt *cells,
                        uint32_t nrows, bool with_header)
{
    FILE *out = sh->out;
    uint32_t nc = m->ncols;
    size_t *w = calloc(nc ? nc : 1, sizeof(*w));
    if (!w) return;
    for (uint32_t c = 0; c < nc; c++) w[c] = shell_display_width(m->cols[c].name, strlen(m->cols[c].name));
    for (uint32_t r = 0; r < nrows; r++)
        for (uint32_t c = 0; c < nc; c++) w[c] = SIB_MAX(w[c], cells[(size_t)r * nc + c].width);
    if (with_header) {
        fputc(' ', out);
        for (uint32_t c = 0; c < nc; c++) {
            const char *name = m->cols[c].name;
            size_t len = strlen(name);
            if (c) fputs(" | ", out);
            /* The last header is not padded: cqlsh rstrips the line. */
            put_padded(sh, name, len, shell_display_width(name, len), c + 1 < nc ? w[c] : 0, false, C_NAME);
        }
        fputc('\n', out);
        print_separator(out, w, nc);
    }
    for (uint32_t r = 0; r < nrows; r++) {
        fputc(' ', out);
        for (uint32_t c = 0; c < nc; c++) {
            const cell_fmt *f = &cells[(size_t)r * nc + c];
            if (c) fputs(" | ", out);
            put_padded(sh, text + f->off, f->len, f->width, w[c], true, f->color);
        }
        fputc('\n', out);
    }
    if (nrows == 0 || sh->tty) fputc('\n', out);
    free(w);
}

static void print_vertical(const shell *sh, const cli_result_meta *m, const char *text, const cell_fmt *cells,
                           uint32_t nrows, uint32_t row_offset)
{
    FILE *out = sh->out;
    uint32_t nc = m->ncols;
    size_t wn = 0, wv = 0;
    for (uint32_t c = 0; c < nc; c++) wn = SIB_MAX(wn, shell_display_width(m->cols[c].name, strlen(m->cols[c].name)));
    for (size_t i = 0; i < (size_t)nrows * nc; i++) wv = SIB_MAX(wv, cells[i].width);
    size_t w[2] = {wn, wv};
    for (uint32_t r = 0; r < nrows; r++) {
        fprintf(out, "@ Row %u\n", (unsigned)(row_offset + r + 1));
        print_separator(out, w, 2);
        for (uint32_t c = 0; c < nc; c++) {
            const char *name = m->cols[c].name;
            const cell_fmt *f = &cells[(size_t)r * nc + c];
            fputc(' ', out);
            put_padded(sh, name, strlen(name), shell_display_width(name, strlen(name)), wn, false, C_NAME);
            fputs(" | ", out);
            put_padded(sh, text + f->off, f->len, f->width, 0, false, f->color);
            fputc('\n', out);
        }
        fputc('\n', out);
    }
}

int shell_print_text_table(shell *sh, const char *const *names, uint32_t ncols, const char *const *cells,
                           uint32_t nrows, const bool *numeric)
{
    cli_col_spec *cols = calloc(ncols ? ncols : 1, sizeof(*cols));
    cell_fmt *fmt = calloc((size_t)nrows * ncols + 1, sizeof(*fmt));
    sib_buf text;
    sib_buf_init(&text);
    int rc = cols && fmt ? 0 : -1;
    for (uint32_t c = 0; rc == 0 && c < ncols; c++) cols[c].name = names[c];
    for (size_t i = 0; rc == 0 && i < (size_t)nrows * ncols; i++) {
        cell_fmt *f = &fmt[i];
        f->off = text.len;
        f->len = strlen(cells[i]);
        sib_buf_append(&text, cells[i], f->len);
        f->width = shell_display_width(cells[i], f->len);
        f->color = numeric[i % ncols] ? C_VALUE : C_TEXT;
    }
    if (rc == 0 && text.oom) rc = -1;
    if (rc == 0) {
        cli_result_meta m = {.ncols = ncols, .cols = cols};
        print_table(sh, &m, (const char *)text.p, fmt, nrows, true);
    }
    sib_buf_free(&text);
    free(fmt);
    free(cols);
    return rc;
}

/* One page: cqlsh's print_static_result. */
static int print_page(const shell *sh, const cli_result *r, bool with_header, uint32_t row_offset)
{
    const cli_result_meta *m = &r->u.rows.meta;
    uint32_t nr = r->u.rows.nrows, nc = m->ncols;
    if (!m->cols || nc == 0) return 0;
    cell_fmt *cells = calloc((size_t)nr * nc + 1, sizeof(*cells));
    if (!cells) return -1;
    sib_buf text, tmp;
    sib_buf_init(&text);
    sib_buf_init(&tmp);
    for (uint32_t i = 0; i < nr; i++)
        for (uint32_t c = 0; c < nc; c++)
            format_cell(&m->cols[c], cli_result_cell(r, i, c), &text, &tmp, &cells[(size_t)i * nc + c]);
    int rc = text.oom || tmp.oom ? -1 : 0;
    if (rc == 0) {
        if (sh->expand && nr > 0)
            print_vertical(sh, m, (const char *)text.p, cells, nr, row_offset);
        else
            print_table(sh, m, (const char *)text.p, cells, nr, with_header || nr == 0);
    }
    sib_buf_free(&text);
    sib_buf_free(&tmp);
    free(cells);
    return rc;
}

static bool has_more(const cli_result *r)
{
    return (r->u.rows.meta.flags & CQL_ROWS_HAS_MORE_PAGES) && r->u.rows.meta.paging_state.len >= 0;
}

/* "---MORE---": waits for a line on the terminal; false at end of input. */
static bool wait_more(void)
{
    fputs("---MORE---", stdout);
    fflush(stdout);
    int c;
    while ((c = getchar()) != EOF && c != '\n') {
    }
    if (c == EOF) { /* Ctrl-C (EINTR) or Ctrl-D: stop paging, keep the shell */
        clearerr(stdin);
        putchar('\n');
        return false;
    }
    return true;
}

int shell_print_rows(shell *sh, const char *cql, cli_result *first)
{
    FILE *out = sh->out;
    fputc('\n', out);
    cli_result cur = *first, next;
    bool owned = false, first_page = true;
    uint64_t nrows = 0;
    int rc = 0;
    for (;;) {
        if (cur.u.rows.nrows > 0 || first_page) {
            if (print_page(sh, &cur, first_page || sh->tty, (uint32_t)nrows) < 0) {
                shell_error(sh, "out of memory formatting the result");
                rc = -1;
                break;
            }
            nrows += cur.u.rows.nrows;
        }
        if (!has_more(&cur)) {
            if (!sh->tty) fputc('\n', out);
            break;
        }
        /* Like cqlsh, no ---MORE--- while output goes to a CAPTURE file. */
        if (sh->tty && !sh->capture && !wait_more()) break;
        int32_t ps = sh->paging ? sh->page_size : SHELL_DEFAULT_PAGE;
        if (shell_query(sh, cql, ps, &cur.u.rows.meta.paging_state, &next) < 0) {
            rc = -1;
            break;
        }
        if (owned) cli_result_free(&cur);
        cur = next;
        owned = true;
        if (cur.kind != CLI_RESULT_ROWS) {
            if (cur.kind == CLI_RESULT_ERROR) shell_server_error(sh, &cur);
            rc = -1;
            break;
        }
        first_page = false;
    }
    if (owned) cli_result_free(&cur);
    if (rc == 0) fprintf(out, "(%llu rows)\n\n", (unsigned long long)nrows);
    return rc;
}

/* ---- DESCRIBE ------------------------------------------------------------------------- */

void shell_columnize(FILE *out, const char *const *names, size_t n)
{
    enum { DISPLAY_WIDTH = 80 };
    if (n == 0) {
        fputs("<empty>\n", out);
        return;
    }
    if (n == 1) {
        fprintf(out, "%s\n", names[0]);
        return;
    }
    /* Python's cmd.Cmd.columnize: the fewest rows whose columns fit. */
    size_t nrows = n, ncols = 1;
    size_t *cw = calloc(n, sizeof(*cw));
    if (!cw) return;
    bool fits = false;
    for (size_t rows = 1; rows < n && !fits; rows++) {
        size_t cols = (n + rows - 1) / rows;
        long total = -2;
        for (size_t c = 0; c < cols; c++) {
            size_t w = 0;
            for (size_t r = 0; r < rows && r + rows * c < n; r++) w = SIB_MAX(w, strlen(names[r + rows * c]));
            cw[c] = w;
            total += (long)w + 2;
            if (total > DISPLAY_WIDTH) break;
        }
        if (total <= DISPLAY_WIDTH) {
            fits = true;
            nrows = rows;
            ncols = cols;
        }
    }
    if (!fits) cw[0] = 0;
    for (size_t r = 0; r < nrows; r++) {
        size_t last = 0; /* trailing empty cells are dropped */
        for (size_t c = 0; c < ncols; c++)
            if (r + nrows * c < n) last = c + 1;
        for (size_t c = 0; c < last; c++) {
            const char *s = names[r + nrows * c];
            if (c) fputs("  ", out);
            if (c + 1 < last)
                fprintf(out, "%-*s", (int)cw[c], s);
            else
                fputs(s, out);
        }
        fputc('\n', out);
    }
    free(cw);
}

int shell_col_index(const cli_result *r, const char *name)
{
    const cli_result_meta *m = &r->u.rows.meta;
    for (uint32_t c = 0; m->cols && c < m->ncols; c++)
        if (strcmp(m->cols[c].name, name) == 0) return (int)c;
    return -1;
}

static char *cell_dup(const cli_result *r, uint32_t row, int col)
{
    cql_value v = col >= 0 ? cli_result_cell(r, row, (uint32_t)col) : (cql_value){NULL, -1};
    size_t n = v.len > 0 ? (size_t)v.len : 0;
    char *s = malloc(n + 1);
    if (s) {
        if (n) memcpy(s, v.p, n);
        s[n] = '\0';
    }
    return s;
}

/* Every row of a DESCRIBE answer as (keyspace, name, create_statement)
 * strings, across pages. */
typedef struct desc_rows {
    char **cells; /* 3 per row */
    size_t n, cap;
} desc_rows;

static int collect_page(desc_rows *d, const cli_result *r)
{
    int ks = shell_col_index(r, "keyspace_name"), nm = shell_col_index(r, "name");
    int cs = shell_col_index(r, "create_statement");
    for (uint32_t i = 0; i < r->u.rows.nrows; i++) {
        if (d->n == d->cap) {
            size_t cap = d->cap ? d->cap * 2 : 32;
            char **p = realloc(d->cells, cap * 3 * sizeof(*p));
            if (!p) return -1;
            d->cells = p;
            d->cap = cap;
        }
        char **row = d->cells + d->n * 3;
        row[0] = cell_dup(r, i, ks);
        row[1] = cell_dup(r, i, nm);
        row[2] = cell_dup(r, i, cs);
        d->n++;
        if (!row[0] || !row[1] || !row[2]) return -1;
    }
    return 0;
}

static void desc_rows_free(desc_rows *d)
{
    for (size_t i = 0; i < d->n * 3; i++) free(d->cells[i]);
    free(d->cells);
}

static void print_listing(FILE *out, const desc_rows *d, bool keyspaces)
{
    const char **names = malloc((d->n + 1) * sizeof(*names));
    if (!names) return;
    if (keyspaces) {
        for (size_t i = 0; i < d->n; i++) names[i] = d->cells[i * 3 + 1];
        fprintf(out, "\n");
        shell_columnize(out, names, d->n);
        fprintf(out, "\n");
        free(names);
        return;
    }
    size_t i = 0;
    while (i < d->n) {
        const char *ks = d->cells[i * 3];
        size_t k = 0;
        while (i < d->n && strcmp(d->cells[i * 3], ks) == 0) names[k++] = d->cells[(i++) * 3 + 1];
        fprintf(out, "\nKeyspace %s\n---------", ks);
        for (size_t j = 0; j < strlen(ks); j++) fputc('-', out);
        fputc('\n', out);
        shell_columnize(out, names, k);
    }
    if (d->n) fprintf(out, "\n");
    free(names);
}

int shell_print_describe(shell *sh, const char *what, const char *cql, cli_result *first)
{
    desc_rows d = {0};
    int rc = collect_page(&d, first);
    bool oom = rc < 0;
    cql_value state = first->u.rows.meta.paging_state;
    cli_result page = {0};
    bool more = has_more(first);
    while (rc == 0 && more) {
        cli_result next;
        if (shell_query(sh, cql, SHELL_DEFAULT_PAGE, &state, &next) < 0) {
            rc = -1;
            break;
        }
        cli_result_free(&page);
        page = next;
        if (page.kind != CLI_RESULT_ROWS) {
            if (page.kind == CLI_RESULT_ERROR) shell_server_error(sh, &page);
            rc = -1;
            break;
        }
        rc = collect_page(&d, &page);
        oom = rc < 0;
        state = page.u.rows.meta.paging_state;
        more = has_more(&page);
    }
    cli_result_free(&page);
    if (rc == 0) {
        if (strcmp(what, "KEYSPACES") == 0) {
            print_listing(sh->out, &d, true);
        } else if (strcmp(what, "TABLES") == 0 || strcmp(what, "COLUMNFAMILIES") == 0 ||
                   strcmp(what, "TYPES") == 0 || strcmp(what, "FUNCTIONS") == 0 ||
                   strcmp(what, "AGGREGATES") == 0) {
            print_listing(sh->out, &d, false);
        } else if (shell_col_index(first, "create_statement") < 0) {
            rc = shell_print_rows(sh, cql, first); /* CLUSTER and anything new: as a table */
        } else {
            for (size_t i = 0; i < d.n; i++) fprintf(sh->out, "\n%s\n", d.cells[i * 3 + 2]);
        }
    } else if (oom) { /* query failures were reported where they happened */
        shell_error(sh, "out of memory reading the DESCRIBE answer");
    }
    desc_rows_free(&d);
    return rc;
}
