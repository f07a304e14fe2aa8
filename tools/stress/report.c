/* report.c: the progress lines, the summary and the JSON / CSV logs of
 * sibyl-stress.
 *
 * Text output copies cassandra-stress (tools/stress/.../report/StressMetrics.java,
 * HEADFORMAT/ROWFORMAT "%-10s%10s,%8s,..."): a header, then once a second
 * one line per operation type when the run has more than one (sorted by
 * name: "READ," then "WRITE,"; "insert," then "simple1,"), and a "total,"
 * line:
 *
 *   type       total ops,    op/s,    pk/s,   row/s,    mean,     med,     .95,     .99,    .999,     max,   time,   stderr, errors,  gc: #,  max ms,  sum ms,  sdv ms,      mb
 *   READ,           2411,    2411,    2411,    2411,     0.4,     0.3,     0.9,     1.6,     3.1,     4.2,    1.0,  0.00000,      0,      0,       0,       0,       0,       0
 *   WRITE,          2380,    2380,    2380,    2380,     0.4,     0.3,     0.9,     1.5,     2.9,     3.8,    1.0,  0.00000,      0,      0,       0,       0,       0,       0
 *   total,          4791,    4791,    4791,    4791,     0.4,     0.3,     0.9,     1.6,     3.1,     4.2,    1.0,  0.00000,      0,      0,       0,       0,       0,       0
 *
 * total ops is cumulative; op/s, pk/s, row/s, the latencies (ms) and
 * errors are of the interval; time is seconds since the start; stderr is
 * cassandra-stress's "uncertainty": the standard error of the per-interval
 * total row rate over its mean. The five gc columns are the JVM garbage
 * collection of the NODES that cassandra-stress reads over JMX; Sibyl has
 * no JVM and no GC, so they are printed as 0 (kept, not dropped, so a
 * script that splits cassandra-stress lines by column finds every column
 * where it expects it). For the same reason the summary's five "GC" lines
 * are left out: those are labelled, and a "Total GC time: 0.0 seconds"
 * line would read as a measurement.
 *
 * Summary ("Results:"): Op rate, Partition rate, Row rate, the latencies,
 * Total partitions, Total errors, each with a "[READ: ..., WRITE: ...]"
 * list per type, then Sibyl's additions (in fixed-rate mode the latency
 * percentiles timed from each request's send, "Sent-to-answer ...";
 * partitions missed by reads, re-prepares after Unprepared, reconnects)
 * and Total operation time.
 * Errors are counted, not timed: latencies are of answered operations.
 *
 * JSON document (--json on stdout, -log file=x.json):
 *   {"command": "...", "intervals": [{"time_s", "ops", "op_rate",
 *    "mean_ms", "p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms", "errors",
 *    "per_type": {"READ": {"ops", "op_rate", "mean_ms", ...}, ...}}...],
 *    "summary": {"op_rate", "total_ops", "total_errors", "latency_*_ms"...,
 *    "sent_latency_*_ms" (timed from the send: the same as latency_* unless
 *    fixed rate),
 *    "reprepares", "reconnects", "per_type": {"WRITE": {...}, "READ": {...}}}}
 * CSV (--csv, -log file=x.csv): a header and one row per interval (all
 * types together), then a row with time_s "total" for the whole run.
 * tools/plot_stress.py reads both.
 */
#include "stress.h"

#include <math.h>
#include <stdlib.h>

struct stress_report {
    const stress_opts *o;
    const stress_ring *ring; /* the nodes the per-node counts are of */
    bool routing;
    stress_stats total;
    sib_buf intervals_json; /* comma-separated interval objects */
    sib_buf csv;
    bool header_done;
    /* cassandra-stress's Uncertainty over the interval row rates */
    uint64_t nrates;
    double rate_sum, rate_sumsq, uncertainty;
};

static const char csv_header[] = "time_s,ops,op_rate,mean_ms,p50_ms,p95_ms,p99_ms,p999_ms,max_ms,errors\n";

stress_report *report_create(const stress_opts *o, const stress_ring *ring, bool routing, sib_err *err)
{
    stress_report *r = calloc(1, sizeof(*r));
    if (!r) {
        sib_err_set(err, SIB_ENOMEM, "report");
        return NULL;
    }
    r->o = o;
    r->ring = ring;
    r->routing = routing;
    stats_reset(&r->total);
    sib_buf_init(&r->intervals_json);
    sib_buf_init(&r->csv);
    sib_buf_printf(&r->csv, "%s", csv_header);
    return r;
}

void report_destroy(stress_report *r)
{
    if (!r) return;
    sib_buf_free(&r->intervals_json);
    sib_buf_free(&r->csv);
    free(r);
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

/* One line's numbers: a single type (t >= 0) or every type together (t < 0). */
typedef struct line {
    hist h;
    uint64_t ops, errors, partitions, rows;
} line;

static void line_of(const stress_stats *s, int t, line *l)
{
    hist_reset(&l->h);
    l->ops = l->errors = l->partitions = l->rows = 0;
    for (int k = 0; k < STRESS_MAX_OPS; k++) {
        if (t >= 0 && k != t) continue;
        hist_merge(&l->h, &s->h[k]);
        l->ops += s->ops[k];
        l->errors += s->errors[k];
        l->partitions += s->partitions[k];
        l->rows += s->rows[k];
    }
}

/* "1234567" -> "1,234,567" like Java's %,d. */
static const char *grouped(uint64_t v, char buf[32])
{
    char raw[24];
    int n = snprintf(raw, sizeof(raw), "%llu", (unsigned long long)v);
    int out = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) buf[out++] = ',';
        buf[out++] = raw[i];
    }
    buf[out] = 0;
    return buf;
}

static void update_uncertainty(stress_report *r, double row_rate)
{
    r->nrates++;
    r->rate_sum += row_rate;
    r->rate_sumsq += row_rate * row_rate;
    double n = (double)r->nrates, mean = r->rate_sum / n;
    double var = r->rate_sumsq / n - mean * mean;
    r->uncertainty = mean > 0 ? sqrt(var > 0 ? var : 0) / sqrt(n) / mean : 0;
}

static void print_row(stress_report *r, FILE *out, const char *type, const line *iv, uint64_t total_ops,
                      double elapsed_s, double interval_s)
{
    char label[STRESS_OP_NAME + 2];
    snprintf(label, sizeof(label), "%s,", type);
    double secs = interval_s > 0 ? interval_s : 1e-3;
    const hist *h = &iv->h;
    fprintf(out,
            "%-10s%10llu,%8.0f,%8.0f,%8.0f,%8.1f,%8.1f,%8.1f,%8.1f,%8.1f,%8.1f,%7.1f,%9.5f,%7llu,"
            "%7.0f,%8.0f,%8.0f,%8.0f,%8.0f\n",
            label, (unsigned long long)total_ops, (double)(iv->ops - iv->errors) / secs, (double)iv->partitions / secs,
            (double)iv->rows / secs, hist_mean_ns(h) / 1e6, ms(hist_percentile(h, 50)), ms(hist_percentile(h, 95)),
            ms(hist_percentile(h, 99)), ms(hist_percentile(h, 99.9)), ms(h->max_ns), elapsed_s, r->uncertainty,
            (unsigned long long)iv->errors, 0.0, 0.0, 0.0, 0.0, 0.0);
}

/* {"ops": .., "op_rate": .., "mean_ms": .., ...} of one interval line. */
static void json_interval_line(sib_buf *b, const line *l, double secs)
{
    const hist *h = &l->h;
    sib_buf_printf(b,
                   "\"ops\": %llu, \"op_rate\": %.1f, \"mean_ms\": %.4f, \"p50_ms\": %.4f, \"p95_ms\": %.4f, "
                   "\"p99_ms\": %.4f, \"p999_ms\": %.4f, \"max_ms\": %.4f, \"errors\": %llu",
                   (unsigned long long)l->ops, (double)(l->ops - l->errors) / secs, hist_mean_ns(h) / 1e6,
                   ms(hist_percentile(h, 50)), ms(hist_percentile(h, 95)), ms(hist_percentile(h, 99)),
                   ms(hist_percentile(h, 99.9)), ms(h->max_ns), (unsigned long long)l->errors);
}

/* One CSV row: time (seconds, or "total") and the line's numbers. */
static void csv_row(sib_buf *b, const char *time, const line *l, double secs)
{
    const hist *h = &l->h;
    sib_buf_printf(b, "%s,%llu,%.1f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%llu\n", time, (unsigned long long)l->ops,
                   (double)(l->ops - l->errors) / secs, hist_mean_ns(h) / 1e6, ms(hist_percentile(h, 50)),
                   ms(hist_percentile(h, 95)), ms(hist_percentile(h, 99)), ms(hist_percentile(h, 99.9)), ms(h->max_ns),
                   (unsigned long long)l->errors);
}

static void log_interval(stress_report *r, double elapsed_s, double secs, const stress_stats *iv, const line *all)
{
    if (r->intervals_json.len) sib_buf_printf(&r->intervals_json, ",\n    ");
    sib_buf_printf(&r->intervals_json, "{\"time_s\": %.3f, ", elapsed_s);
    json_interval_line(&r->intervals_json, all, secs);
    sib_buf_printf(&r->intervals_json, ", \"per_type\": {");
    line *l = malloc(sizeof(*l));
    for (int t = 0; l && t < r->o->nops; t++) {
        line_of(iv, t, l);
        sib_buf_printf(&r->intervals_json, "%s\"%s\": {", t ? ", " : "", r->o->ops[t].name);
        json_interval_line(&r->intervals_json, l, secs);
        sib_buf_printf(&r->intervals_json, "}");
    }
    free(l);
    sib_buf_printf(&r->intervals_json, "}}");
    char t[32];
    snprintf(t, sizeof(t), "%.3f", elapsed_s);
    csv_row(&r->csv, t, all, secs);
}

void report_interval(stress_report *r, double elapsed_s, double interval_s, const stress_stats *iv,
                     const char *last_error)
{
    stats_merge(&r->total, iv);
    line *all = malloc(sizeof(*all)), *one = malloc(sizeof(*one));
    if (!all || !one) goto out;
    double secs = interval_s > 0 ? interval_s : 1e-3;
    line_of(iv, -1, all);
    /* cassandra-stress's adjusted row rate: the interval minus its slowest
     * operation, so one stall does not read as a steady rate. */
    double adj = secs - ms(all->h.max_ns) / 1e3;
    update_uncertainty(r, (double)all->rows / (adj > 1e-3 ? adj : secs));
    FILE *out = r->o->format == OUT_TEXT ? stdout : stderr;
    if (!r->header_done) {
        fprintf(out, "%-10s%10s,%8s,%8s,%8s,%8s,%8s,%8s,%8s,%8s,%8s,%7s,%9s,%7s,%7s,%8s,%8s,%8s,%8s\n", "type",
                "total ops", "op/s", "pk/s", "row/s", "mean", "med", ".95", ".99", ".999", "max", "time", "stderr",
                "errors", "gc: #", "max ms", "sum ms", "sdv ms", "mb");
        r->header_done = true;
    }
    uint64_t total_ops = 0;
    for (int t = 0; t < r->o->nops; t++) {
        total_ops += r->total.ops[t];
        if (r->o->nops < 2) continue; /* a single type: only the total, as cassandra-stress */
        line_of(iv, t, one);
        print_row(r, out, r->o->ops[t].name, one, r->total.ops[t], elapsed_s, secs);
    }
    print_row(r, out, "total", all, total_ops, elapsed_s, secs);
    if (all->errors && last_error && *last_error) fprintf(stderr, "  last error: %s\n", last_error);
    if (iv->reprepares || iv->reconnects)
        fprintf(stderr, "  re-prepared %llu statements, reconnected %llu connections\n",
                (unsigned long long)iv->reprepares, (unsigned long long)iv->reconnects);
    fflush(out);
    log_interval(r, elapsed_s, secs, iv, all);
out:
    free(all);
    free(one);
}

/* ---- summary ---- */

typedef enum { V_OPRATE, V_PKRATE, V_ROWRATE, V_LATENCY, V_PARTITIONS, V_ERRORS } value_kind;

typedef struct lat_row {
    const char *label;
    const char *sent_label; /* the same timed from the send (fixed rate), or NULL */
    double pct;             /* 0 = mean, 100 = max */
} lat_row;

static const lat_row lat_rows[] = {
    {"Latency mean", NULL, 0},
    {"Latency median", "Sent-to-answer median", 50},
    {"Latency 95th percentile", "Sent-to-answer 95th", 95},
    {"Latency 99th percentile", "Sent-to-answer 99th", 99},
    {"Latency 99.9th percentile", "Sent-to-answer 99.9th", 99.9},
    {"Latency max", "Sent-to-answer max", 100},
};

static double lat_ms(const hist *h, double pct)
{
    return pct == 0 ? hist_mean_ns(h) / 1e6 : ms(hist_percentile(h, pct));
}

/* One value of a summary line, formatted as cassandra-stress's
 * TimingInterval.getStringValue does ("%,.0f", "%,.1f", "%,d"). */
static void summary_value(sib_buf *b, const line *l, value_kind what, double pct, double secs)
{
    char g[32];
    switch (what) {
    case V_OPRATE: sib_buf_printf(b, "%s", grouped((uint64_t)((double)(l->ops - l->errors) / secs + 0.5), g)); break;
    case V_PKRATE: sib_buf_printf(b, "%s", grouped((uint64_t)((double)l->partitions / secs + 0.5), g)); break;
    case V_ROWRATE: sib_buf_printf(b, "%s", grouped((uint64_t)((double)l->rows / secs + 0.5), g)); break;
    case V_LATENCY: sib_buf_printf(b, "%.1f", lat_ms(&l->h, pct)); break;
    case V_PARTITIONS: sib_buf_printf(b, "%s", grouped(l->partitions, g)); break;
    case V_ERRORS: sib_buf_printf(b, "%s", grouped(l->errors, g)); break;
    }
}

/* " [READ: 1,234 op/s, WRITE: ...]" over the run's types (TimingIntervals.str). */
static void per_type(const stress_report *r, sib_buf *b, value_kind what, double pct, double secs, const char *unit)
{
    line *l = malloc(sizeof(*l));
    sib_buf_printf(b, "[");
    for (int t = 0; l && t < r->o->nops; t++) {
        line_of(&r->total, t, l);
        sib_buf_printf(b, "%s%s: ", t ? ", " : "", r->o->ops[t].name);
        summary_value(b, l, what, pct, secs);
        if (*unit) sib_buf_printf(b, " %s", unit);
    }
    sib_buf_printf(b, "]\n");
    free(l);
}

static void text_summary(const stress_report *r, double secs, sib_buf *b)
{
    static const struct {
        const char *label, *unit, *pad;
        value_kind what;
    } rates[] = {
        {"Op rate", "op/s", "  ", V_OPRATE}, {"Partition rate", "pk/s", "  ", V_PKRATE},
        {"Row rate", "row/s", " ", V_ROWRATE},
    };
    line *all = malloc(sizeof(*all));
    if (!all) return;
    line_of(&r->total, -1, all);
    char g[32];
    sib_buf_printf(b, "\n\nResults:\n");
    for (size_t i = 0; i < SIB_ARRAY_LEN(rates); i++) {
        sib_buf_printf(b, "%-26s: ", rates[i].label);
        sib_buf t;
        sib_buf_init(&t);
        summary_value(&t, all, rates[i].what, 0, secs);
        sib_buf_printf(b, "%8.*s %s%s", (int)t.len, (const char *)t.p, rates[i].unit, rates[i].pad);
        sib_buf_free(&t);
        per_type(r, b, rates[i].what, 0, secs, rates[i].unit);
    }
    for (size_t i = 0; i < SIB_ARRAY_LEN(lat_rows); i++) {
        sib_buf_printf(b, "%-26s: %6.1f ms ", lat_rows[i].label, lat_ms(&all->h, lat_rows[i].pct));
        per_type(r, b, V_LATENCY, lat_rows[i].pct, secs, "ms");
    }
    /* Fixed rate: the latencies above count from each request's intended
     * start, so a client that sent late (its own thread not running) shows
     * there too. Timed from the send instead, the difference is the
     * client's share. */
    if (r->o->rate > 0)
        for (size_t i = 0; i < SIB_ARRAY_LEN(lat_rows); i++)
            if (lat_rows[i].sent_label)
                sib_buf_printf(b, "%-26s: %6.1f ms\n", lat_rows[i].sent_label,
                               lat_ms(&r->total.sent, lat_rows[i].pct));
    sib_buf_printf(b, "%-26s: %10s ", "Total partitions", grouped(all->partitions, g));
    per_type(r, b, V_PARTITIONS, 0, secs, "");
    sib_buf_printf(b, "%-26s: %10s ", "Total errors", grouped(all->errors, g));
    per_type(r, b, V_ERRORS, 0, secs, "");
    if (r->o->cmd == CMD_READ || r->o->cmd == CMD_MIXED)
        sib_buf_printf(b, "%-26s: %10s\n", "Total partitions missed", grouped(r->total.misses, g));
    sib_buf_printf(b, "%-26s: %10s\n", "Total re-prepares", grouped(r->total.reprepares, g));
    sib_buf_printf(b, "%-26s: %10s\n", "Total reconnects", grouped(r->total.reconnects, g));
    if (r->ring->nnodes > 1) { /* where the requests went: token-aware routing at work */
        const char *labels[] = {"Operations per node", "Errors per node"};
        for (int k = 0; k < 2; k++) {
            sib_buf_printf(b, "%-26s: [", labels[k]);
            for (size_t i = 0; i < r->ring->nnodes; i++)
                sib_buf_printf(b, "%s%s: %s", i ? ", " : "", r->ring->nodes[i].name,
                               grouped(k ? r->total.node_errors[i] : r->total.node_ops[i], g));
            sib_buf_printf(b, "]\n");
        }
    }
    unsigned long t = (unsigned long)(secs + 0.5);
    sib_buf_printf(b, "%-26s: %02lu:%02lu:%02lu\n\n", "Total operation time", t / 3600, t / 60 % 60, t % 60);
    free(all);
}

/* "<prefix>_mean_ms": ..., "<prefix>_median_ms": ... of h. */
static void json_lat(sib_buf *b, const char *prefix, const hist *h)
{
    for (size_t i = 0; i < SIB_ARRAY_LEN(lat_rows); i++) {
        static const char *const keys[] = {"mean", "median", "p95", "p99", "p999", "max"};
        sib_buf_printf(b, "%s\"%s_%s_ms\": %.4f", i ? ", " : "", prefix, keys[i], lat_ms(h, lat_rows[i].pct));
    }
}

/* Escapes a string for a JSON value (the command line may hold quotes). */
static void json_str(sib_buf *b, const char *s)
{
    sib_buf_u8(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') sib_buf_printf(b, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) sib_buf_printf(b, "\\u%04x", *s);
        else sib_buf_u8(b, (uint8_t)*s);
    }
    sib_buf_u8(b, '"');
}

/* "op_rate", "ops", "errors", "partitions", "rows" and the latencies of one line. */
static void json_summary_line(sib_buf *b, const line *l, double secs)
{
    sib_buf_printf(b, "\"op_rate\": %.1f, \"total_ops\": %llu, \"total_errors\": %llu, \"partitions\": %llu, "
                      "\"rows\": %llu, ",
                   (double)(l->ops - l->errors) / secs, (unsigned long long)l->ops, (unsigned long long)l->errors,
                   (unsigned long long)l->partitions, (unsigned long long)l->rows);
    json_lat(b, "latency", &l->h);
}

/* The whole run as one line (caller frees), or NULL with b marked OOM. */
static line *run_line(const stress_report *r, sib_buf *b)
{
    line *l = malloc(sizeof(*l));
    if (l) line_of(&r->total, -1, l);
    else b->oom = true;
    return l;
}

static void json_doc(const stress_report *r, double secs, sib_buf *b)
{
    line *l = run_line(r, b);
    if (!l) return;
    sib_buf_printf(b, "{\n  \"command\": ");
    json_str(b, r->o->command_line);
    sib_buf_printf(b, ",\n  \"intervals\": [\n    ");
    sib_buf_append(b, r->intervals_json.p, r->intervals_json.len);
    sib_buf_printf(b, "\n  ],\n  \"summary\": {\"time_s\": %.3f, \"total_misses\": %llu, \"reprepares\": %llu, "
                      "\"reconnects\": %llu, ",
                   secs, (unsigned long long)r->total.misses, (unsigned long long)r->total.reprepares,
                   (unsigned long long)r->total.reconnects);
    json_lat(b, "sent_latency", &r->total.sent);
    sib_buf_printf(b, ", ");
    json_summary_line(b, l, secs);
    sib_buf_printf(b, ", \"per_type\": {");
    for (int t = 0; t < r->o->nops; t++) {
        line_of(&r->total, t, l);
        sib_buf_printf(b, "%s\"%s\": {\"ops\": %llu, \"errors\": %llu, ", t ? ", " : "", r->o->ops[t].name,
                       (unsigned long long)l->ops, (unsigned long long)l->errors);
        json_summary_line(b, l, secs);
        sib_buf_printf(b, "}");
    }
    sib_buf_printf(b, "}, \"per_node\": {");
    for (size_t i = 0; i < r->ring->nnodes; i++) {
        const stress_node *n = &r->ring->nodes[i];
        char id[37] = "";
        if (n->has_id) sib_uuid_format(n->host_id, id);
        sib_buf_printf(b, "%s", i ? ", " : "");
        json_str(b, n->name);
        sib_buf_printf(b, ": {\"ops\": %llu, \"errors\": %llu, \"host_id\": \"%s\", \"data_center\": ",
                       (unsigned long long)r->total.node_ops[i], (unsigned long long)r->total.node_errors[i], id);
        json_str(b, n->dc);
        sib_buf_printf(b, ", \"tokens\": %zu}", n->ntokens);
    }
    sib_buf_printf(b, "}, \"token_aware\": %s}\n}\n", r->routing ? "true" : "false");
    free(l);
}

static void csv_doc(const stress_report *r, double secs, sib_buf *b)
{
    line *l = run_line(r, b);
    if (!l) return;
    sib_buf_append(b, r->csv.p, r->csv.len);
    csv_row(b, "total", l, secs);
    free(l);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int write_file(const char *path, const sib_buf *b, sib_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f) return sib_err_errno(err, "open %s", path);
    bool ok = fwrite(b->p, 1, b->len, f) == b->len;
    ok = fclose(f) == 0 && ok;
    return ok ? 0 : sib_err_errno(err, "write %s", path);
}

int report_finish(stress_report *r, double elapsed_s, sib_err *err)
{
    double secs = elapsed_s > 1e-3 ? elapsed_s : 1e-3;
    sib_buf text, doc;
    sib_buf_init(&text);
    sib_buf_init(&doc);
    text_summary(r, secs, &text);
    int rc = 0;
    if (r->o->format == OUT_TEXT) {
        fwrite(text.p, 1, text.len, stdout);
    } else {
        fwrite(text.p, 1, text.len, stderr);
        if (r->o->format == OUT_JSON) json_doc(r, secs, &doc);
        else csv_doc(r, secs, &doc);
        fwrite(doc.p, 1, doc.len, stdout);
    }
    fflush(stdout);
    if (r->o->log_file) {
        sib_buf_reset(&doc);
        if (ends_with(r->o->log_file, ".csv")) csv_doc(r, secs, &doc);
        else json_doc(r, secs, &doc);
        rc = doc.oom ? sib_err_set(err, SIB_ENOMEM, "log") : write_file(r->o->log_file, &doc, err);
    }
    sib_buf_free(&text);
    sib_buf_free(&doc);
    return rc;
}
