/* trace.c: the trace of a statement run with TRACING ON, printed as cqlsh's
 * tracing.py prints it (print_trace / make_trace_rows):
 *
 *     <blank>
 *     Tracing session: 5d0e2a50-...
 *     <blank>
 *      activity                   | timestamp                  | source    | source_elapsed | client
 *     ----------------------------+----------------------------+-----------+----------------+-----------
 *          Execute CQL3 query     | 2024-01-02 03:04:05.123000 | 127.0.0.1 |              0 | 127.0.0.1
 *      Parsing ... [sibyld]       | ...                        |           |            174 | ...
 *            Request complete     | ...                        | 127.0.0.1 |            841 | 127.0.0.1
 *     <blank>
 *
 * The first row is the session (its request type at started_at), one row per
 * event ("activity [thread]" at the time of its timeuuid), and the last row
 * is "Request complete" at started_at + duration: cqlsh makes it from the
 * session, it is not an event. Times are local, in Python's str(datetime)
 * form.
 *
 * Like the driver's QueryTrace.populate, the session is read again while
 * its duration is still null (a Cassandra node writes traces after it
 * answers), waiting 3 ms, 6 ms, ... up to cqlsh's max_trace_wait of 10 s.
 */
#include "shell.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TRACE_MAX_WAIT_S 10.0 /* cqlsh's max_trace_wait */
#define TRACE_NCOLS 5

static cql_value cell(const cli_result *r, uint32_t row, const char *name)
{
    int c = shell_col_index(r, name);
    return c < 0 ? (cql_value){NULL, CQL_VALUE_NULL} : cli_result_cell(r, row, (uint32_t)c);
}

/* Appends cell `name` of row as display text ("null" when null). */
static void format_cell(sib_buf *b, const cli_result *r, uint32_t row, const char *name)
{
    int c = shell_col_index(r, name);
    cql_value v = c < 0 ? (cql_value){NULL, CQL_VALUE_NULL} : cli_result_cell(r, row, (uint32_t)c);
    const sch_type *t = c >= 0 ? r->u.rows.meta.cols[c].type : NULL;
    if (v.len < 0 || !t)
        sib_buf_append(b, "null", 4);
    else
        sch_value_format(t, v.p, (size_t)v.len, b);
}

/* format_cell as a NUL-terminated string; returns its offset in b. */
static size_t put_cell(sib_buf *b, const cli_result *r, uint32_t row, const char *name)
{
    size_t off = b->len;
    format_cell(b, r, row, name);
    sib_buf_u8(b, '\0');
    return off;
}

/* Python's str(datetime) of a local time: "2024-01-02 03:04:05.123456", the
 * fraction left out when it is zero. */
static size_t put_time(sib_buf *b, int64_t us)
{
    size_t off = b->len;
    time_t secs = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
    int frac = (int)(us - (int64_t)secs * 1000000);
    struct tm tm;
    char s[64];
    localtime_r(&secs, &tm);
    strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S", &tm);
    sib_buf_printf(b, frac ? "%s.%06d" : "%s", s, frac);
    sib_buf_u8(b, '\0');
    return off;
}

/* The time of a v1 (time) uuid in µs since the epoch. */
static int64_t timeuuid_us(const uint8_t *u)
{
    uint64_t ticks = (uint64_t)(u[6] & 0x0f) << 56 | (uint64_t)u[7] << 48 | (uint64_t)u[4] << 40 |
                     (uint64_t)u[5] << 32 | get_be32(u);
    return ((int64_t)ticks - 0x01B21DD213814000ll) / 10;
}

static int64_t int_cell(cql_value v)
{
    if (v.len == 4) return (int32_t)get_be32(v.p);
    if (v.len == 8) return (int64_t)get_be64(v.p);
    return 0;
}

/* Reads the session row, again while it is incomplete (see the top). 1 when
 * complete, 0 when it stayed incomplete (out may hold a partial row), -1 on
 * error (printed). */
static int fetch_session(shell *sh, const char *q, cli_result *out)
{
    double waited = 0, sleep_s = 0.003;
    for (;;) {
        if (shell_query(sh, q, 0, NULL, out) < 0) return -1;
        if (out->kind == CLI_RESULT_ERROR) {
            shell_error(sh, "Unable to fetch query trace: %s", out->u.error.msg ? out->u.error.msg : "");
            return -1;
        }
        if (out->kind == CLI_RESULT_ROWS && out->u.rows.nrows == 1 && cell(out, 0, "duration").len >= 0 &&
            cell(out, 0, "started_at").len >= 0)
            return 1;
        if (waited >= TRACE_MAX_WAIT_S) return 0;
        struct timespec ts = {(time_t)sleep_s, (long)((sleep_s - (double)(time_t)sleep_s) * 1e9)};
        nanosleep(&ts, NULL);
        waited += sleep_s;
        sleep_s *= 2;
        cli_result_free(out);
    }
}

/* Appends one table row of offsets into text. */
static void add_row(sib_buf *offs, const size_t *o)
{
    sib_buf_append(offs, o, sizeof(size_t) * TRACE_NCOLS);
}

static int print_rows(shell *sh, const char *uuid, const cli_result *s, const cli_result *ev)
{
    static const char *const names[TRACE_NCOLS] = {"activity", "timestamp", "source", "source_elapsed", "client"};
    static const bool numeric[TRACE_NCOLS] = {false, false, false, true, false};
    sib_buf text, offs;
    sib_buf_init(&text);
    sib_buf_init(&offs);
    bool has_session = s->kind == CLI_RESULT_ROWS && s->u.rows.nrows == 1;
    int64_t started = has_session ? int_cell(cell(s, 0, "started_at")) * 1000 : 0;
    cql_value dur = has_session ? cell(s, 0, "duration") : (cql_value){NULL, CQL_VALUE_NULL};
    size_t o[TRACE_NCOLS];
    if (has_session) {
        o[0] = put_cell(&text, s, 0, "request");
        o[1] = put_time(&text, started);
        o[2] = put_cell(&text, s, 0, "coordinator");
        o[3] = text.len;
        sib_buf_append(&text, "0", 2);
        o[4] = put_cell(&text, s, 0, "client");
        add_row(&offs, o);
    }
    for (uint32_t i = 0; i < ev->u.rows.nrows; i++) {
        cql_value id = cell(ev, i, "event_id");
        o[0] = text.len; /* "activity [thread]" */
        format_cell(&text, ev, i, "activity");
        sib_buf_append(&text, " [", 2);
        format_cell(&text, ev, i, "thread");
        sib_buf_append(&text, "]", 2); /* with the NUL */
        o[1] = put_time(&text, id.len == 16 ? timeuuid_us(id.p) : 0);
        o[2] = put_cell(&text, ev, i, "source");
        o[3] = put_cell(&text, ev, i, "source_elapsed");
        o[4] = has_session ? put_cell(&text, s, 0, "client") : put_cell(&text, ev, i, "client");
        add_row(&offs, o);
    }
    if (has_session && dur.len >= 0) {
        o[0] = text.len;
        sib_buf_append(&text, "Request complete", 17);
        o[1] = put_time(&text, started + int_cell(dur));
        o[2] = put_cell(&text, s, 0, "coordinator");
        o[3] = text.len;
        sib_buf_printf(&text, "%lld", (long long)int_cell(dur));
        sib_buf_u8(&text, '\0');
        o[4] = put_cell(&text, s, 0, "client");
        add_row(&offs, o);
    }
    int rc = text.oom || offs.oom ? -1 : 0;
    size_t ncells = offs.len / sizeof(size_t);
    const char **cells = rc == 0 ? malloc(sizeof(*cells) * (ncells + 1)) : NULL;
    if (!cells) {
        shell_error(sh, "out of memory formatting the trace");
        rc = -1;
    } else {
        for (size_t i = 0; i < ncells; i++) cells[i] = (const char *)text.p + ((const size_t *)offs.p)[i];
        FILE *out = sh->out;
        fputc('\n', out);
        fprintf(out, "%sTracing session: %s", sh->color ? "\033[0;1;35m" : "", sh->color ? "\033[0m" : "");
        fprintf(out, "%s\n\n", uuid);
        rc = shell_print_text_table(sh, names, TRACE_NCOLS, cells, (uint32_t)(ncells / TRACE_NCOLS), numeric);
        fputc('\n', out);
    }
    free(cells);
    sib_buf_free(&text);
    sib_buf_free(&offs);
    return rc;
}

int shell_print_trace(shell *sh, const uint8_t id[16])
{
    char uuid[37], q[128];
    sib_uuid_format(id, uuid);
    cli_result s = {0}, ev = {0};
    snprintf(q, sizeof(q), "SELECT * FROM system_traces.sessions WHERE session_id = %s", uuid);
    int done = fetch_session(sh, q, &s);
    int rc = -1;
    if (done < 0) goto out;
    if (done == 0)
        fprintf(sh->out, "Statement trace did not complete within %d seconds; trace data may be incomplete.\n",
                (int)TRACE_MAX_WAIT_S);
    snprintf(q, sizeof(q), "SELECT * FROM system_traces.events WHERE session_id = %s", uuid);
    if (shell_query(sh, q, 0, NULL, &ev) < 0) goto out;
    if (ev.kind != CLI_RESULT_ROWS) {
        shell_error(sh, "Unable to fetch query trace: %s",
                    ev.kind == CLI_RESULT_ERROR && ev.u.error.msg ? ev.u.error.msg : "unexpected answer");
        goto out;
    }
    if (ev.u.rows.nrows == 0) { /* cqlsh's make_trace_rows: no events, no table */
        shell_error(sh, "No rows for session %s found.", uuid);
        goto out;
    }
    rc = print_rows(sh, uuid, &s, &ev);
out:
    cli_result_free(&s);
    cli_result_free(&ev);
    return rc;
}
