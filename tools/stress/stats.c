/* stats.c: the latency histogram, key distributions, stats and reports of
 * sibyl-stress.
 *
 * Histogram layout (HDR-style, log-linear): values below 2^7 ns get one
 * bucket each; above, every power of two [2^m, 2^(m+1)) is cut into 128
 * equal buckets, so a recorded value is off by less than 1/128 of itself
 * (< 0.8%) anywhere in the range. Bucket of v >= 128:
 *     shift = msb(v) - 7;  index = (shift + 1) * 128 + (v >> shift) - 128
 * Recording is two shifts and an add; percentiles walk the array once.
 * A histogram is a plain struct of counters, so merging is a loop of adds
 * and the reporter can swap interval histograms out of the workers cheaply.
 *
 * Zipf: rejection-inversion sampling (W. Hörmann, G. Derflinger, "Rejection-
 * inversion to generate variates from monotone discrete distributions",
 * 1996), as Apache Commons RNG implements it. P(k) ~ 1/k^s over 1..N; rank 1
 * is the hottest key and maps to the lowest key index of the population.
 *
 * Reports: text output copies cassandra-stress: a header, one line per second
 *   total,  1234567,   98765,   0.412,   0.380,   1.203,   3.004,  12.1,   12.0,       0
 * (total ops, op/s, mean/median/p99/p99.9/max latency in ms, elapsed s,
 * errors), then "Results:" with "Op rate : 123,456 op/s [WRITE: ...]" etc.
 *
 * JSON document (--json on stdout, -log file=x.json):
 *   {"command": "...", "intervals": [{"time_s", "ops", "op_rate",
 *    "mean_ms", "p50_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms", "errors"}...],
 *    "summary": {"op_rate", "total_ops", "total_errors", "latency_*_ms"...,
 *    "per_type": {"WRITE": {...}, "READ": {...}}}}
 * CSV (--csv, -log file=x.csv): a header and one row per interval, then a
 * row with time_s "total" for the whole run. tools/plot_stress.py reads both.
 */
#include "stress.h"

#include <math.h>
#include <stdlib.h>

/* ---- histogram ---- */

void hist_reset(hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min_ns = UINT64_MAX;
}

static size_t bucket_of(uint64_t v)
{
    if (v < HIST_SUB) return (size_t)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - HIST_SUB_BITS;
    if (shift > HIST_MAX_SHIFT - 1) return HIST_BUCKETS - 1;
    return (size_t)(shift + 1) * HIST_SUB + (size_t)((v >> shift) - HIST_SUB);
}

/* The midpoint of a bucket's value range. */
static uint64_t bucket_value(size_t idx)
{
    if (idx < HIST_SUB) return idx;
    int shift = (int)(idx / HIST_SUB) - 1;
    uint64_t sub = idx % HIST_SUB + HIST_SUB;
    uint64_t low = sub << shift;
    return low + ((1ull << shift) >> 1);
}

void hist_record(hist *h, uint64_t ns)
{
    h->b[bucket_of(ns)]++;
    h->count++;
    h->sum_ns += ns;
    if (ns < h->min_ns) h->min_ns = ns;
    if (ns > h->max_ns) h->max_ns = ns;
}

void hist_merge(hist *into, const hist *from)
{
    if (from->count == 0) return;
    for (size_t i = 0; i < HIST_BUCKETS; i++) into->b[i] += from->b[i];
    into->count += from->count;
    into->sum_ns += from->sum_ns;
    if (from->min_ns < into->min_ns) into->min_ns = from->min_ns;
    if (from->max_ns > into->max_ns) into->max_ns = from->max_ns;
}

uint64_t hist_percentile(const hist *h, double p)
{
    if (h->count == 0) return 0;
    if (p >= 100.0) return h->max_ns;
    uint64_t target = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (target == 0) target = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= target) {
            uint64_t v = bucket_value(i);
            return SIB_MAX(SIB_MIN(v, h->max_ns), h->min_ns);
        }
    }
    return h->max_ns;
}

double hist_mean_ns(const hist *h) { return h->count ? (double)h->sum_ns / (double)h->count : 0.0; }

/* ---- stats ---- */

void stats_reset(stress_stats *s)
{
    memset(s->ops, 0, sizeof(s->ops));
    memset(s->errors, 0, sizeof(s->errors));
    s->misses = 0;
    for (int t = 0; t < OP_NTYPES; t++) hist_reset(&s->h[t]);
}

void stats_merge(stress_stats *into, const stress_stats *from)
{
    for (int t = 0; t < OP_NTYPES; t++) {
        into->ops[t] += from->ops[t];
        into->errors[t] += from->errors[t];
        hist_merge(&into->h[t], &from->h[t]);
    }
    into->misses += from->misses;
}

/* ---- randomness and keys ---- */

double stress_rand01(sib_rng *rng) { return (double)(sib_rng_next(rng) >> 11) * 0x1.0p-53; }

void stress_key(uint64_t i, uint8_t out[STRESS_KEY_LEN])
{
    /* Decimal digits, zero-padded: readable in the shell as a blob and the
     * same key for the same index in every run (reads find what writes
     * stored). Indexes past 10^10 wrap, as a 10-byte key space must. */
    for (int p = STRESS_KEY_LEN - 1; p >= 0; p--) {
        out[p] = (uint8_t)('0' + i % 10);
        i /= 10;
    }
}

static double helper1(double x) { return fabs(x) > 1e-8 ? log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x)); }
static double helper2(double x)
{
    return fabs(x) > 1e-8 ? expm1(x) / x : 1 + x * 0.5 * (1 + x * (1.0 / 3) * (1 + 0.25 * x));
}
static double zipf_h(double s, double x) { return exp(-s * log(x)); }
static double zipf_hint(double s, double x)
{
    double lx = log(x);
    return helper2((1 - s) * lx) * lx;
}
static double zipf_hint_inv(double s, double x)
{
    double t = x * (1 - s);
    if (t < -1) t = -1; /* rounding guard from the reference implementation */
    return exp(helper1(t) * x);
}

void keygen_init(keygen *g, dist_kind kind, uint64_t lo, uint64_t hi, double s)
{
    memset(g, 0, sizeof(*g));
    g->kind = kind;
    g->lo = lo;
    g->hi = hi < lo ? lo : hi;
    g->s = s > 0 ? s : 0.99;
    if (kind == DIST_ZIPF) {
        double n = (double)(g->hi - g->lo + 1);
        g->h_x1 = zipf_hint(g->s, 1.5) - 1;
        g->h_n = zipf_hint(g->s, n + 0.5);
        g->s_param = 2 - zipf_hint_inv(g->s, zipf_hint(g->s, 2.5) - zipf_h(g->s, 2));
    }
}

static uint64_t zipf_next(const keygen *g, sib_rng *rng)
{
    double n = (double)(g->hi - g->lo + 1);
    for (;;) {
        double u = g->h_n + stress_rand01(rng) * (g->h_x1 - g->h_n);
        double x = zipf_hint_inv(g->s, u);
        double k = floor(x + 0.5);
        if (k < 1) k = 1;
        else if (k > n) k = n;
        if (k - x <= g->s_param || u >= zipf_hint(g->s, k + 0.5) - zipf_h(g->s, k)) return (uint64_t)k - 1;
    }
}

uint64_t keygen_next(const keygen *g, sib_rng *rng, uint64_t seq)
{
    uint64_t span = g->hi - g->lo + 1; /* 0 only for the full 2^64 range */
    switch (g->kind) {
    case DIST_SEQ: return g->lo + (span ? seq % span : seq);
    case DIST_UNIFORM: return g->lo + (span ? sib_rng_next(rng) % span : sib_rng_next(rng));
    case DIST_ZIPF: return g->lo + zipf_next(g, rng);
    }
    return g->lo;
}

/* ====================================================================== */
/* Reports: progress lines, summary, JSON / CSV                            */
/* ====================================================================== */

static const char *const type_names[OP_NTYPES] = {"WRITE", "READ"};

struct stress_report {
    const stress_opts *o;
    stress_stats total;
    sib_buf intervals_json; /* comma-separated interval objects */
    sib_buf csv;
    bool header_done;
};

static const char csv_header[] = "time_s,ops,op_rate,mean_ms,p50_ms,p95_ms,p99_ms,p999_ms,max_ms,errors\n";

stress_report *report_create(const stress_opts *o, sib_err *err)
{
    stress_report *r = calloc(1, sizeof(*r));
    if (!r) {
        sib_err_set(err, SIB_ENOMEM, "report");
        return NULL;
    }
    r->o = o;
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

/* Both op types in one histogram (the "total" line). */
static void combined(const stress_stats *s, hist *h, uint64_t *ops, uint64_t *errors)
{
    hist_reset(h);
    *ops = *errors = 0;
    for (int t = 0; t < OP_NTYPES; t++) {
        hist_merge(h, &s->h[t]);
        *ops += s->ops[t];
        *errors += s->errors[t];
    }
}

/* "1234567" -> "1,234,567" like cassandra-stress's summary. */
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

void report_interval(stress_report *r, double elapsed_s, double interval_s, const stress_stats *iv,
                     const char *last_error)
{
    stats_merge(&r->total, iv);
    hist h;
    uint64_t ops, errors, tops, terrs;
    combined(iv, &h, &ops, &errors);
    hist th;
    combined(&r->total, &th, &tops, &terrs);
    double rate = interval_s > 0 ? (double)ops / interval_s : 0;
    FILE *out = r->o->format == OUT_TEXT ? stdout : stderr;
    if (!r->header_done) {
        fprintf(out, "%-5s %11s, %9s, %8s, %8s, %8s, %8s, %8s, %7s, %7s\n", "type", "total ops", "op/s", "mean",
                "med", ".99", ".999", "max", "time", "errors");
        r->header_done = true;
    }
    fprintf(out, "%-5s %11llu, %9.0f, %8.3f, %8.3f, %8.3f, %8.3f, %8.1f, %7.1f, %7llu\n", "total,",
            (unsigned long long)tops, rate, hist_mean_ns(&h) / 1e6, ms(hist_percentile(&h, 50)),
            ms(hist_percentile(&h, 99)), ms(hist_percentile(&h, 99.9)), ms(h.max_ns), elapsed_s,
            (unsigned long long)terrs);
    if (errors && last_error && *last_error) fprintf(stderr, "  last error: %s\n", last_error);
    fflush(out);
    if (r->intervals_json.len) sib_buf_printf(&r->intervals_json, ",\n    ");
    sib_buf_printf(&r->intervals_json,
                   "{\"time_s\": %.3f, \"ops\": %llu, \"op_rate\": %.1f, \"mean_ms\": %.4f, \"p50_ms\": %.4f, "
                   "\"p95_ms\": %.4f, \"p99_ms\": %.4f, \"p999_ms\": %.4f, \"max_ms\": %.4f, \"errors\": %llu}",
                   elapsed_s, (unsigned long long)ops, rate, hist_mean_ns(&h) / 1e6, ms(hist_percentile(&h, 50)),
                   ms(hist_percentile(&h, 95)), ms(hist_percentile(&h, 99)), ms(hist_percentile(&h, 99.9)),
                   ms(h.max_ns), (unsigned long long)errors);
    sib_buf_printf(&r->csv, "%.3f,%llu,%.1f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%llu\n", elapsed_s, (unsigned long long)ops,
                   rate, hist_mean_ns(&h) / 1e6, ms(hist_percentile(&h, 50)), ms(hist_percentile(&h, 95)),
                   ms(hist_percentile(&h, 99)), ms(hist_percentile(&h, 99.9)), ms(h.max_ns),
                   (unsigned long long)errors);
}

/* ---- summary ---- */

typedef struct lat_row {
    const char *label;
    double pct; /* 0 = mean, 100 = max */
} lat_row;

static const lat_row lat_rows[] = {
    {"Latency mean", 0},           {"Latency median", 50},           {"Latency 95th percentile", 95},
    {"Latency 99th percentile", 99}, {"Latency 99.9th percentile", 99.9}, {"Latency max", 100},
};

static double lat_ms(const hist *h, double pct) { return pct == 0 ? hist_mean_ns(h) / 1e6 : ms(hist_percentile(h, pct)); }

/* " [WRITE: 1,234 op/s, READ: ...]" for the types this run used. */
static void per_type(const stress_report *r, sib_buf *b, int what, double pct, double secs)
{
    const stress_stats *s = &r->total;
    bool first = true;
    sib_buf_printf(b, " [");
    for (int t = 0; t < OP_NTYPES; t++) {
        if (!r->o->ratio[t]) continue;
        char g[32];
        sib_buf_printf(b, "%s%s: ", first ? "" : ", ", type_names[t]);
        first = false;
        if (what == 0) sib_buf_printf(b, "%s op/s", grouped((uint64_t)((double)s->ops[t] / secs + 0.5), g));
        else if (what == 1) sib_buf_printf(b, "%.3f ms", lat_ms(&s->h[t], pct));
        else if (what == 2) sib_buf_printf(b, "%s", grouped(s->ops[t], g));
        else sib_buf_printf(b, "%s", grouped(s->errors[t], g));
    }
    sib_buf_printf(b, "]\n");
}

static void text_summary(const stress_report *r, double secs, sib_buf *b)
{
    hist h;
    uint64_t ops, errors;
    combined(&r->total, &h, &ops, &errors);
    char g[32];
    uint64_t ok = ops - errors;
    sib_buf_printf(b, "\nResults:\n");
    sib_buf_printf(b, "%-26s: %9s op/s", "Op rate", grouped((uint64_t)((double)ok / secs + 0.5), g));
    per_type(r, b, 0, 0, secs);
    sib_buf_printf(b, "%-26s: %9s pk/s\n", "Partition rate", grouped((uint64_t)((double)ok / secs + 0.5), g));
    for (size_t i = 0; i < SIB_ARRAY_LEN(lat_rows); i++) {
        sib_buf_printf(b, "%-26s: %9.3f ms", lat_rows[i].label, lat_ms(&h, lat_rows[i].pct));
        per_type(r, b, 1, lat_rows[i].pct, secs);
    }
    sib_buf_printf(b, "%-26s: %9s", "Total partitions", grouped(ok, g));
    per_type(r, b, 2, 0, secs);
    if (r->o->ratio[OP_READ]) sib_buf_printf(b, "%-26s: %9s\n", "Total partitions missed", grouped(r->total.misses, g));
    sib_buf_printf(b, "%-26s: %9s", "Total errors", grouped(errors, g));
    per_type(r, b, 3, 0, secs);
    unsigned long t = (unsigned long)(secs + 0.5);
    sib_buf_printf(b, "%-26s: %02lu:%02lu:%02lu\n", "Total operation time", t / 3600, t / 60 % 60, t % 60);
}

static void json_lat(sib_buf *b, const hist *h)
{
    for (size_t i = 0; i < SIB_ARRAY_LEN(lat_rows); i++) {
        static const char *const keys[] = {"mean", "median", "p95", "p99", "p999", "max"};
        sib_buf_printf(b, "%s\"latency_%s_ms\": %.4f", i ? ", " : "", keys[i], lat_ms(h, lat_rows[i].pct));
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

static void json_doc(const stress_report *r, double secs, sib_buf *b)
{
    hist h;
    uint64_t ops, errors;
    combined(&r->total, &h, &ops, &errors);
    sib_buf_printf(b, "{\n  \"command\": ");
    json_str(b, r->o->command_line);
    sib_buf_printf(b, ",\n  \"intervals\": [\n    ");
    sib_buf_append(b, r->intervals_json.p, r->intervals_json.len);
    sib_buf_printf(b, "\n  ],\n  \"summary\": {\"op_rate\": %.1f, \"total_ops\": %llu, \"total_errors\": %llu, "
                      "\"total_misses\": %llu, \"time_s\": %.3f, ",
                   (double)(ops - errors) / secs, (unsigned long long)ops, (unsigned long long)errors,
                   (unsigned long long)r->total.misses, secs);
    json_lat(b, &h);
    sib_buf_printf(b, ", \"per_type\": {");
    bool first = true;
    for (int t = 0; t < OP_NTYPES; t++) {
        if (!r->o->ratio[t]) continue;
        sib_buf_printf(b, "%s\"%s\": {\"op_rate\": %.1f, \"ops\": %llu, \"errors\": %llu, ", first ? "" : ", ",
                       type_names[t], (double)(r->total.ops[t] - r->total.errors[t]) / secs,
                       (unsigned long long)r->total.ops[t], (unsigned long long)r->total.errors[t]);
        json_lat(b, &r->total.h[t]);
        sib_buf_printf(b, "}");
        first = false;
    }
    sib_buf_printf(b, "}}\n}\n");
}

static void csv_doc(const stress_report *r, double secs, sib_buf *b)
{
    hist h;
    uint64_t ops, errors;
    combined(&r->total, &h, &ops, &errors);
    sib_buf_append(b, r->csv.p, r->csv.len);
    sib_buf_printf(b, "total,%llu,%.1f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%llu\n", (unsigned long long)ops,
                   (double)(ops - errors) / secs, hist_mean_ns(&h) / 1e6, ms(hist_percentile(&h, 50)),
                   ms(hist_percentile(&h, 95)), ms(hist_percentile(&h, 99)), ms(hist_percentile(&h, 99.9)),
                   ms(h.max_ns), (unsigned long long)errors);
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
