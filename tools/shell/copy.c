/* copy.c: COPY TO (table -> CSV) and COPY FROM (CSV -> table), cqlsh's
 * COPY in one process.
 *
 *   COPY [ks.]t [(c1, c2, ...)] TO 'file.csv' | STDOUT
 *   COPY [ks.]t [(c1, c2, ...)] FROM 'file.csv' | STDIN
 *        [WITH HEADER = true|false AND DELIMITER = ',' AND QUOTE = '"'
 *         AND NULL = '' AND PAGESIZE = 1000 AND MAXREQUESTS = 32]
 *
 * TO runs a paged SELECT and writes each value as the shell shows it
 * (sch_value_format: timestamps `2024-01-02 03:04:05.000000+0000`, blobs
 * 0x.., booleans True/False, collections as CQL-ish literals), quoting a field
 * only when it holds the delimiter, the quote or a line break (Python csv's
 * QUOTE_MINIMAL, which cqlsh uses). null becomes the NULL string.
 *
 * FROM prepares `INSERT INTO t (cols) VALUES (?, ...)` (the bind metadata
 * gives each column's type), parses each CSV field into a value with
 * sch_value_from_literal using the literal kind the column's type takes,
 * and keeps up to MAXREQUESTS executes in flight on the session's
 * connection (the client's pipelined API). A row that does not parse or
 * that the server rejects is reported and counted; the statement then
 * fails, so -e/-f exit non-zero. The schema module parses constants but not
 * collection literals, so a table with collection columns is loaded with
 * one QUERY per row instead, the collection fields inlined as the CQL-like
 * literals COPY TO wrote and the other fields re-rendered as CQL literals.
 *
 * Output, as cqlsh: "Starting copy of ks.t with columns [a, b].", a
 * progress line rewritten in place on a terminal, then
 * "Processed: N rows; Rate: X rows/s; Avg. rate: Y rows/s" and
 * "N rows exported to 1 files in 0.123 seconds." / "... imported from ...".
 *
 * STDOUT / STDIN, as cqlsh (copyutil.py): TO STDOUT writes the CSV to stdout
 * and prints none of those messages (copyutil swallows them unless --debug,
 * since they would corrupt the CSV a caller redirects); errors still go to
 * stderr. FROM STDIN reads every line first, up to a line holding only \.
 * (or the end of input), prompting "[copy] " on a terminal, and then
 * imports with the usual messages.
 */
#include "shell.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define COPY_MAX_COLS 256

typedef struct copy_opts {
    bool header;
    char delim, quote;
    char null_str[32];
    int32_t page_size;
    uint32_t max_requests;
} copy_opts;

typedef struct copy_job {
    shell *sh;
    char table[300]; /* as written: "t" or "ks.t" */
    char ks[128];
    char cols[COPY_MAX_COLS][128];
    size_t ncols; /* 0: every column */
    bool to;
    bool stdio;     /* FROM STDIN / TO STDOUT instead of a file */
    bool quiet;     /* no progress or summary (TO STDOUT: they would mix with the CSV) */
    char path[4096];
    copy_opts o;

    /* progress */
    struct timespec start, last_report;
    uint64_t rows, rows_at_last;
    uint64_t failed;
    uint64_t inflight;
} copy_job;

/* ---- parsing the statement ------------------------------------------------------- */

/* Next token: a word ([A-Za-z0-9_."]+), a '..' string (unescaped), or one
 * punctuation character. Returns false at the end. */
static bool tok(const char **p, char *out, size_t cap)
{
    const char *s = *p;
    while (isspace((unsigned char)*s)) s++;
    if (!*s) return false;
    size_t n = 0;
    if (*s == '\'') {
        for (s++; *s && !(s[0] == '\'' && s[1] != '\''); s++) {
            if (s[0] == '\'') s++;
            if (n + 1 < cap) out[n++] = *s;
        }
        if (*s) s++;
    } else if (isalnum((unsigned char)*s) || *s == '_' || *s == '"' || *s == '.' || *s == '-') {
        while (isalnum((unsigned char)*s) || *s == '_' || *s == '"' || *s == '.' || *s == '-') {
            if (n + 1 < cap) out[n++] = *s;
            s++;
        }
    } else {
        out[n++] = *s++;
    }
    out[n] = '\0';
    *p = s;
    return true;
}

static int set_option(copy_job *j, const char *name, const char *val)
{
    if (strcasecmp(name, "HEADER") == 0) {
        j->o.header = strcasecmp(val, "true") == 0 || strcmp(val, "1") == 0;
    } else if (strcasecmp(name, "DELIMITER") == 0 && strlen(val) == 1) {
        j->o.delim = val[0];
    } else if (strcasecmp(name, "QUOTE") == 0 && strlen(val) == 1) {
        j->o.quote = val[0];
    } else if (strcasecmp(name, "NULL") == 0) {
        snprintf(j->o.null_str, sizeof(j->o.null_str), "%s", val);
    } else if (strcasecmp(name, "PAGESIZE") == 0 && atoi(val) > 0) {
        j->o.page_size = atoi(val);
    } else if (strcasecmp(name, "MAXREQUESTS") == 0 && atoi(val) > 0) {
        j->o.max_requests = (uint32_t)atoi(val);
    } else {
        shell_error(j->sh, "Unrecognized COPY %s option or value: %s = %s", j->to ? "TO" : "FROM", name, val);
        return -1;
    }
    return 0;
}

static int parse_copy(copy_job *j, const char *stmt)
{
    char t[4096], raw[4096];
    const char *p = stmt;
    tok(&p, t, sizeof(t)); /* COPY */
    if (!tok(&p, j->table, sizeof(j->table)) || !tok(&p, t, sizeof(t))) goto bad;
    if (strcmp(t, "(") == 0) {
        while (tok(&p, t, sizeof(t)) && strcmp(t, ")") != 0) {
            if (strcmp(t, ",") == 0) continue;
            if (j->ncols == COPY_MAX_COLS || strlen(t) >= sizeof(j->cols[0])) goto bad;
            memcpy(j->cols[j->ncols++], t, strlen(t) + 1);
        }
        if (!tok(&p, t, sizeof(t))) goto bad;
    }
    if (strcasecmp(t, "TO") == 0)
        j->to = true;
    else if (strcasecmp(t, "FROM") != 0)
        goto bad;
    /* cqlsh's grammar: a quoted file name, or the bare word STDIN (FROM) /
     * STDOUT (TO). */
    bool quoted = p[strspn(p, " \t\n")] == '\'';
    if (!tok(&p, raw, sizeof(raw))) goto bad;
    if (!quoted) {
        if (strcasecmp(raw, j->to ? "STDOUT" : "STDIN") != 0) goto bad;
        j->stdio = true;
        j->quiet = j->to; /* as copyutil: messages are swallowed when exporting to STDOUT */
        snprintf(j->path, sizeof(j->path), "%s", j->to ? "STDOUT" : "STDIN");
    } else {
        shell_expand_path(raw, j->path, sizeof(j->path));
    }
    if (tok(&p, t, sizeof(t))) {
        if (strcasecmp(t, "WITH") != 0) goto bad;
        char name[64], eq[8], val[64];
        do {
            if (!tok(&p, name, sizeof(name)) || !tok(&p, eq, sizeof(eq)) || strcmp(eq, "=") != 0 ||
                !tok(&p, val, sizeof(val)))
                goto bad;
            if (set_option(j, name, val) < 0) return -1;
        } while (tok(&p, t, sizeof(t)) && strcasecmp(t, "AND") == 0);
    }
    const char *dot = strchr(j->table, '.');
    if (dot)
        snprintf(j->ks, sizeof(j->ks), "%.*s", (int)(dot - j->table), j->table);
    else
        snprintf(j->ks, sizeof(j->ks), "%s", cli_client_keyspace(j->sh->cl));
    return 0;
bad:
    shell_error(j->sh, "Improper COPY command.");
    return -1;
}

/* ---- progress ------------------------------------------------------------------------ */

static double since(const struct timespec *a)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - a->tv_sec) + (double)(now.tv_nsec - a->tv_nsec) / 1e9;
}

static void progress(copy_job *j, bool final)
{
    double dt = since(&j->last_report), total = since(&j->start);
    if (j->quiet || (!final && dt < 0.2)) return;
    double rate = dt > 0 ? (double)(j->rows - j->rows_at_last) / dt : 0;
    double avg = total > 0 ? (double)j->rows / total : 0;
    if (final && j->rows_at_last == 0) rate = avg;
    printf("%sProcessed: %llu rows; Rate: %7.0f rows/s; Avg. rate: %7.0f rows/s%s", j->sh->tty ? "\r" : "",
           (unsigned long long)j->rows, rate, avg, final || !j->sh->tty ? "\n" : "");
    fflush(stdout);
    clock_gettime(CLOCK_MONOTONIC, &j->last_report);
    j->rows_at_last = j->rows;
}

/* cqlsh's describe_interval for the summary line. */
static void interval(double s, char *buf, size_t cap)
{
    long min = (long)s / 60;
    if (min > 0)
        snprintf(buf, cap, "%ld minute%s and %.3f seconds", min, min > 1 ? "s" : "", s - (double)min * 60);
    else
        snprintf(buf, cap, "%.3f seconds", s);
}

static void start_message(copy_job *j, const cli_col_spec *cols, uint32_t n)
{
    clock_gettime(CLOCK_MONOTONIC, &j->start);
    j->last_report = j->start;
    if (j->quiet) return;
    const char *tb = strchr(j->table, '.') ? strchr(j->table, '.') + 1 : j->table;
    printf("Using 1 child processes\n\nStarting copy of %s.%s with columns [", j->ks, tb);
    for (uint32_t i = 0; i < n; i++) printf("%s%s", i ? ", " : "", cols[i].name);
    printf("].\n");
    fflush(stdout);
}

/* Appends the column list "(a, b)" or "*" for the SELECT / INSERT. */
static void put_cols(const copy_job *j, sib_buf *q, bool parens)
{
    if (j->ncols == 0) {
        sib_buf_printf(q, "*");
        return;
    }
    if (parens) sib_buf_u8(q, '(');
    for (size_t i = 0; i < j->ncols; i++) sib_buf_printf(q, "%s%s", i ? ", " : "", j->cols[i]);
    if (parens) sib_buf_u8(q, ')');
}

/* ---- COPY TO ------------------------------------------------------------------------- */

static void csv_field(FILE *f, const copy_opts *o, const char *s, size_t n)
{
    bool quote = false;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == o->delim || s[i] == o->quote || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        fwrite(s, 1, n, f);
        return;
    }
    fputc(o->quote, f);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == o->quote) fputc(o->quote, f);
        fputc(s[i], f);
    }
    fputc(o->quote, f);
}

static int write_page(copy_job *j, FILE *f, const cli_result *r, sib_buf *tmp)
{
    const cli_result_meta *m = &r->u.rows.meta;
    for (uint32_t i = 0; i < r->u.rows.nrows; i++) {
        for (uint32_t c = 0; c < m->ncols; c++) {
            cql_value v = cli_result_cell(r, i, c);
            if (c) fputc(j->o.delim, f);
            if (v.len < 0) {
                fputs(j->o.null_str, f);
                continue;
            }
            sib_buf_reset(tmp);
            const sch_type *t = m->cols[c].type ? m->cols[c].type : sch_type_native(SCH_T_BLOB);
            sch_value_format(t, v.p, (size_t)v.len, tmp);
            csv_field(f, &j->o, (const char *)tmp->p, tmp->len);
        }
        fputc('\n', f);
        j->rows++;
    }
    progress(j, false);
    return ferror(f) ? -1 : 0;
}

static int copy_to(copy_job *j)
{
    sib_buf q, tmp;
    sib_buf_init(&q);
    sib_buf_init(&tmp);
    sib_buf_printf(&q, "SELECT ");
    put_cols(j, &q, false);
    sib_buf_printf(&q, " FROM %s", j->table);
    sib_buf_u8(&q, '\0');
    FILE *f = j->stdio ? stdout : fopen(j->path, "w");
    if (!f) {
        shell_error(j->sh, "Can't open '%s' for writing: %s", j->path, strerror(errno));
        sib_buf_free(&q);
        return -1;
    }
    cli_result r;
    int rc = shell_query(j->sh, (const char *)q.p, j->o.page_size, NULL, &r);
    bool first = true;
    while (rc == 0) {
        if (r.kind != CLI_RESULT_ROWS || !r.u.rows.meta.cols) {
            if (r.kind == CLI_RESULT_ERROR) shell_server_error(j->sh, &r);
            rc = -1;
            break;
        }
        const cli_result_meta *m = &r.u.rows.meta;
        if (first) {
            start_message(j, m->cols, m->ncols);
            for (uint32_t c = 0; j->o.header && c < m->ncols; c++) {
                if (c) fputc(j->o.delim, f);
                csv_field(f, &j->o, m->cols[c].name, strlen(m->cols[c].name));
            }
            if (j->o.header) fputc('\n', f);
            first = false;
        }
        if (write_page(j, f, &r, &tmp) < 0) {
            shell_error(j->sh, "Error writing '%s': %s", j->path, strerror(errno));
            rc = -1;
            break;
        }
        if (!(m->flags & CQL_ROWS_HAS_MORE_PAGES) || m->paging_state.len < 0) break;
        cli_result next;
        rc = shell_query(j->sh, (const char *)q.p, j->o.page_size, &m->paging_state, &next);
        cli_result_free(&r);
        r = next;
    }
    cli_result_free(&r);
    if ((j->stdio ? fflush(f) : fclose(f)) != 0 && rc == 0) {
        shell_error(j->sh, "Error writing '%s': %s", j->path, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && !j->quiet) {
        char iv[64];
        progress(j, true);
        interval(since(&j->start), iv, sizeof(iv));
        printf("%llu rows exported to 1 files in %s.\n", (unsigned long long)j->rows, iv);
    }
    sib_buf_free(&q);
    sib_buf_free(&tmp);
    return rc;
}

/* ---- CSV reading -------------------------------------------------------------------- */

/* Reads one record: fields as NUL-terminated strings packed in b, offsets
 * in off[]. Quoted fields may hold delimiters, quotes ("") and newlines.
 * Returns the field count, 0 for a blank line, -1 at end of file. */
static int csv_record(FILE *f, const copy_opts *o, sib_buf *b, size_t *off, int max, uint64_t *line)
{
    sib_buf_reset(b);
    int c = fgetc(f), n = 0;
    if (c == EOF) return -1;
    (*line)++;
    if (c == '\n') return 0;
    off[n++] = 0;
    bool quoted = false;
    for (; c != EOF; c = fgetc(f)) {
        if (quoted) {
            if (c == o->quote) {
                int d = fgetc(f);
                if (d == o->quote) {
                    sib_buf_u8(b, (uint8_t)c);
                    continue;
                }
                quoted = false;
                if (d == EOF) break;
                c = d;
            } else {
                if (c == '\n') (*line)++;
                sib_buf_u8(b, (uint8_t)c);
                continue;
            }
        }
        if (c == o->quote) {
            quoted = true;
        } else if (c == o->delim) {
            sib_buf_u8(b, '\0');
            if (n == max) return max + 1;
            off[n++] = b->len;
        } else if (c == '\n') {
            break;
        } else if (c != '\r') {
            sib_buf_u8(b, (uint8_t)c);
        }
    }
    sib_buf_u8(b, '\0');
    return n;
}

/* The literal kind a CSV field of type t is read as. */
static sch_lit_kind lit_kind(const sch_type *t, const char *s)
{
    switch (t->code) {
    case SCH_T_BIGINT:
    case SCH_T_COUNTER:
    case SCH_T_INT:
    case SCH_T_SMALLINT:
    case SCH_T_TINYINT:
    case SCH_T_VARINT: return SCH_LIT_INTEGER;
    case SCH_T_FLOAT:
    case SCH_T_DOUBLE:
    case SCH_T_DECIMAL: return s[strspn(s, "-0123456789")] ? SCH_LIT_FLOAT : SCH_LIT_INTEGER;
    case SCH_T_BOOLEAN: return SCH_LIT_BOOLEAN;
    case SCH_T_UUID:
    case SCH_T_TIMEUUID: return SCH_LIT_UUID;
    case SCH_T_BLOB: return SCH_LIT_HEX;
    case SCH_T_DURATION: return SCH_LIT_DURATION;
    default: return SCH_LIT_STRING;
    }
}

/* COPY TO writes a timestamp's fraction in microseconds (".123000"), as
 * cqlsh shows it, but a CQL literal's SSS counts milliseconds and refuses
 * more than 999. Like cqlsh's COPY FROM, which reads the fraction as a
 * fraction of a second, a field with more than three fraction digits is
 * cut to its first three, in place (the field only shrinks). One to three
 * digits are kept as written and read as the literal reads them. */
static void ms_fraction(char *s)
{
    char *dot = strchr(s, '.');
    if (!dot || dot - s < 3 || !isdigit((unsigned char)dot[-1]) || dot[-3] != ':') return;
    size_t nd = strspn(dot + 1, "0123456789");
    if (nd > 3) memmove(dot + 4, dot + 1 + nd, strlen(dot + 1 + nd) + 1);
}

/* Serializes one field of native type t into vb; the literal kind follows
 * the type (a CSV field carries no kind of its own). */
static int parse_field(const cli_col_spec *c, char *s, sib_buf *vb, sib_err *err)
{
    sch_lit_kind k = lit_kind(c->type, s);
    if (c->type->code == SCH_T_TIMESTAMP) ms_fraction(s);
    if (k == SCH_LIT_BOOLEAN)
        for (char *q = s; *q; q++) *q = (char)tolower((unsigned char)*q);
    return sch_value_from_literal(c->type, k, s, strlen(s), c->name, vb, err);
}

/* For tables with collection columns: the record as one INSERT with CQL
 * literals. Collection fields are the CQL-like text COPY TO writes and go in
 * as written; every other field is parsed (so it is validated) and written
 * back with sch_value_format_cql. */
static int literal_insert(copy_job *j, const cli_result_meta *bind, char *fields, const size_t *off, int n,
                          sib_buf *q, sib_buf *tmp, sib_err *err)
{
    if ((uint32_t)n != bind->ncols)
        return sib_err_set(err, SIB_EINVAL, "expected %u columns, got %d", (unsigned)bind->ncols, n);
    sib_buf_reset(q);
    sib_buf_printf(q, "INSERT INTO %s ", j->table);
    put_cols(j, q, true);
    sib_buf_printf(q, " VALUES (");
    for (int i = 0; i < n; i++) {
        char *s = fields + off[i];
        const cli_col_spec *c = &bind->cols[i];
        if (i) sib_buf_printf(q, ", ");
        if (strcmp(s, j->o.null_str) == 0) {
            sib_buf_printf(q, "null");
        } else if (!c->type) {
            return sib_err_set(err, SIB_EINVAL, "column %s: COPY FROM cannot parse this type", c->name);
        } else if (sch_type_is_collection(c->type)) {
            sib_buf_append(q, s, strlen(s));
        } else {
            sib_buf_reset(tmp);
            if (parse_field(c, s, tmp, err) < 0) return err->code;
            sch_value_format_cql(c->type, tmp->p, tmp->len, q);
        }
    }
    sib_buf_printf(q, ")");
    sib_buf_u8(q, '\0');
    return q->oom || tmp->oom ? sib_err_set(err, SIB_ENOMEM, "out of memory") : 0;
}

/* Serializes the fields of one record into vals (views into vb). */
static int parse_record(copy_job *j, const cli_result_meta *bind, char *fields, const size_t *off, int n,
                        sib_buf *vb, cql_value *vals, sib_err *err)
{
    if ((uint32_t)n != bind->ncols)
        return sib_err_set(err, SIB_EINVAL, "expected %u columns, got %d", (unsigned)bind->ncols, n);
    size_t starts[COPY_MAX_COLS];
    sib_buf_reset(vb);
    for (int i = 0; i < n; i++) {
        char *s = fields + off[i];
        const cli_col_spec *c = &bind->cols[i];
        starts[i] = vb->len;
        vals[i].len = -1;
        if (strcmp(s, j->o.null_str) == 0) continue;
        if (!c->type || sch_type_is_collection(c->type))
            return sib_err_set(err, SIB_EINVAL, "column %s: COPY FROM cannot parse this type", c->name);
        if (parse_field(c, s, vb, err) < 0) return err->code;
        vals[i].len = (int32_t)(vb->len - starts[i]);
    }
    if (vb->oom) return sib_err_set(err, SIB_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) vals[i].p = vals[i].len >= 0 ? vb->p + starts[i] : NULL;
    return 0;
}

static void on_insert(cli_client *cl, void *ud, const cli_frame *f, const sib_err *err)
{
    copy_job *j = ud;
    j->inflight--;
    if (!f) {
        j->failed++;
        shell_error(j->sh, "Failed to import row: %s", err ? err->msg : "connection lost");
        return;
    }
    if (f->opcode != CQL_OP_ERROR) {
        j->rows++;
        return;
    }
    cli_result r;
    sib_err e;
    j->failed++;
    if (cli_result_decode(cli_client_types(cl), 4, f->opcode, f->flags, f->body, f->len, &r, &e) == 0)
        shell_server_error(j->sh, &r);
    else
        shell_error(j->sh, "Failed to import row: %s", e.msg);
    cli_result_free(&r);
}

/* Waits until fewer than `limit` inserts are in flight. */
static int drain_inflight(copy_job *j, uint64_t limit)
{
    sib_err err;
    cli_client *cl = j->sh->cl;
    while (j->inflight > limit) {
        if (cli_client_poll_many(&cl, 1, 1000, NULL, &err) < 0) return -1;
        progress(j, false);
    }
    return 0;
}

static bool has_collection(const cli_result_meta *bind)
{
    for (uint32_t i = 0; i < bind->ncols; i++)
        if (bind->cols[i].type && sch_type_is_collection(bind->cols[i].type)) return true;
    return false;
}

/* Sends one record: EXECUTE of the prepared INSERT, or (collections) a QUERY
 * with literals. *parse_failed tells a bad record from a broken connection. */
static int send_record(copy_job *j, const cli_result *prep, char *fields, const size_t *off, int n,
                       sib_buf *vb, sib_buf *tmp, bool *parse_failed, sib_err *err)
{
    const cli_result_meta *bind = &prep->u.prepared.bind;
    cql_value vals[COPY_MAX_COLS];
    cli_query_opts qo = {.consistency = j->sh->consistency};
    bool literal = has_collection(bind);
    int rc = literal ? literal_insert(j, bind, fields, off, n, vb, tmp, err)
                     : parse_record(j, bind, fields, off, n, vb, vals, err);
    *parse_failed = rc < 0;
    if (rc < 0) return rc;
    if (drain_inflight(j, j->o.max_requests - 1) < 0) return sib_err_set(err, SIB_EIO, "connection lost");
    if (literal) {
        rc = cli_client_send_query(j->sh->cl, (const char *)vb->p, &qo, on_insert, j, err);
    } else {
        qo.values = vals;
        qo.nvalues = (uint16_t)bind->ncols;
        rc = cli_client_send_execute(j->sh->cl, prep->u.prepared.id.p, (uint16_t)prep->u.prepared.id.len, &qo,
                                     on_insert, j, err);
    }
    if (rc == 0) j->inflight++;
    return rc;
}

static int import_rows(copy_job *j, FILE *f, const cli_result *prep)
{
    sib_buf rec, vb, tmp;
    sib_buf_init(&rec);
    sib_buf_init(&vb);
    sib_buf_init(&tmp);
    size_t off[COPY_MAX_COLS + 1];
    uint64_t line = 0;
    int n, rc = 0;
    if (j->o.header) (void)csv_record(f, &j->o, &rec, off, COPY_MAX_COLS, &line); /* the names */
    while ((n = csv_record(f, &j->o, &rec, off, COPY_MAX_COLS, &line)) >= 0) {
        if (n == 0) continue;
        sib_err err;
        sib_err_clear(&err);
        bool parse_failed;
        if (send_record(j, prep, (char *)rec.p, off, n, &vb, &tmp, &parse_failed, &err) == 0) continue;
        if (parse_failed) {
            j->failed++;
            shell_error(j->sh, "Failed to import row at line %llu: ParseError - %s", (unsigned long long)line,
                        err.msg);
            continue;
        }
        shell_error(j->sh, "Failed to import rows: %s", err.msg);
        j->sh->broken = true; /* the send or the poll lost the connection */
        rc = -1;
        break;
    }
    if (drain_inflight(j, 0) < 0) {
        j->sh->broken = true;
        rc = -1;
    }
    sib_buf_free(&rec);
    sib_buf_free(&vb);
    sib_buf_free(&tmp);
    return rc;
}

/* FROM STDIN: the CSV lines up to one that is just \. (or the end of
 * input), read before any row is sent, as copyutil does. On a terminal,
 * with cqlsh's hint and "[copy] " prompt; otherwise from stdin, which for
 * piped input is the rest of the statement stream. Returns a stream over
 * the lines kept in *data (the caller closes it, then frees data). */
static FILE *read_stdin_rows(copy_job *j, sib_buf *data)
{
    bool tty = isatty(STDIN_FILENO);
    char *line = NULL;
    size_t cap = 0;
    if (tty) {
        printf("[Use \\. on a line by itself to end input]\n");
        fflush(stdout);
    }
    for (;;) {
        const char *l;
        ssize_t len;
        if (tty) {
            l = shell_read_line(j->sh, "[copy] ", &line, &cap);
            len = l ? (ssize_t)strlen(l) : -1;
        } else {
            len = getline(&line, &cap, stdin);
            l = line;
        }
        if (len < 0) break;
        size_t n = (size_t)len;
        while (n > 0 && (l[n - 1] == '\n' || l[n - 1] == '\r')) n--;
        if (n == 2 && l[0] == '\\' && l[1] == '.') break;
        sib_buf_append(data, l, n);
        sib_buf_u8(data, '\n');
    }
    free(line);
    if (!tty) clearerr(stdin); /* a later statement of a piped stream sees the same end */
    if (data->oom) {
        shell_error(j->sh, "out of memory reading STDIN");
        return NULL;
    }
    sib_buf_u8(data, '\n'); /* never empty (fmemopen); a blank line is skipped */
    FILE *f = fmemopen(data->p, data->len, "r");
    if (!f) shell_error(j->sh, "Can't read STDIN: %s", strerror(errno));
    return f;
}

static int copy_from(copy_job *j)
{
    FILE *f = NULL;
    sib_buf data;
    sib_buf_init(&data);
    if (!j->stdio && !(f = fopen(j->path, "r"))) {
        shell_error(j->sh, "Can't open '%s' for reading: %s", j->path, strerror(errno));
        return -1;
    }
    sib_buf q;
    sib_buf_init(&q);
    int rc = -1;
    cli_result cols = {0}, prep = {0};
    sib_err err;
    /* Without a column list, the table's columns in cqlsh's order are those
     * of SELECT *: its metadata comes even when the table is empty. */
    if (j->ncols == 0) {
        sib_buf_printf(&q, "SELECT * FROM %s LIMIT 1", j->table);
        sib_buf_u8(&q, '\0');
        if (shell_query(j->sh, (const char *)q.p, 0, NULL, &cols) < 0) goto out;
        if (cols.kind != CLI_RESULT_ROWS) {
            if (cols.kind == CLI_RESULT_ERROR) shell_server_error(j->sh, &cols);
            goto out;
        }
        for (uint32_t i = 0; i < cols.u.rows.meta.ncols && i < COPY_MAX_COLS; i++) {
            sib_buf n;
            sib_buf_init(&n);
            sch_ident_quote(cols.u.rows.meta.cols[i].name, &n);
            snprintf(j->cols[j->ncols++], sizeof(j->cols[0]), "%.*s", (int)n.len, (const char *)n.p);
            sib_buf_free(&n);
        }
    }
    sib_buf_reset(&q);
    sib_buf_printf(&q, "INSERT INTO %s ", j->table);
    put_cols(j, &q, true);
    sib_buf_printf(&q, " VALUES (");
    for (size_t i = 0; i < j->ncols; i++) sib_buf_printf(&q, "%s?", i ? ", " : "");
    sib_buf_printf(&q, ")");
    sib_buf_u8(&q, '\0');
    if (j->sh->broken || cli_client_prepare(j->sh->cl, (const char *)q.p, &prep, &err) < 0) {
        shell_error(j->sh, "Failed to prepare the INSERT: %s", j->sh->broken ? "not connected" : err.msg);
        if (!j->sh->broken && err.code == SIB_EIO) j->sh->broken = true;
        goto out;
    }
    if (prep.kind != CLI_RESULT_PREPARED) {
        if (prep.kind == CLI_RESULT_ERROR) shell_server_error(j->sh, &prep);
        goto out;
    }
    start_message(j, prep.u.prepared.bind.cols, prep.u.prepared.bind.ncols);
    if (j->stdio && !(f = read_stdin_rows(j, &data))) goto out;
    rc = import_rows(j, f, &prep);
    progress(j, true);
    char iv[64];
    interval(since(&j->start), iv, sizeof(iv));
    printf("%llu rows imported from 1 files in %s (%llu skipped).\n", (unsigned long long)j->rows, iv,
           (unsigned long long)j->failed);
    if (j->failed) rc = -1;
out:
    cli_result_free(&cols);
    cli_result_free(&prep);
    sib_buf_free(&q);
    if (f) fclose(f);
    sib_buf_free(&data);
    return rc;
}

int shell_copy(shell *sh, const char *stmt)
{
    copy_job *j = calloc(1, sizeof(*j));
    if (!j) {
        shell_error(sh, "out of memory");
        return -1;
    }
    j->sh = sh;
    j->o = (copy_opts){.delim = ',', .quote = '"', .page_size = 1000, .max_requests = 32};
    int rc = parse_copy(j, stmt);
    if (rc == 0) rc = j->to ? copy_to(j) : copy_from(j);
    free(j);
    return rc;
}
