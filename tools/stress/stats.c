/* stats.c: the latency histogram, distributions and stats of sibyl-stress.
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
 * Distributions are cassandra-stress's names: FIXED, UNIFORM, SEQ, ZIPF and
 * GAUSSIAN(min..max,stdvrng) (mean in the middle, stdev = (mean-min)/stdvrng,
 * stdvrng 3 by default) or GAUSSIAN(min..max,mean,stdev); gaussian draws
 * outside [min, max] are clamped, as cassandra-stress's bounded
 * distributions do.
 *
 * Zipf: rejection-inversion sampling (W. Hörmann, G. Derflinger, "Rejection-
 * inversion to generate variates from monotone discrete distributions",
 * 1996), as Apache Commons RNG implements it. P(k) ~ 1/k^s over 1..N; rank 1
 * is the hottest key and maps to the lowest key index of the population.
 */
#include "stress.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>

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
    memset(s, 0, offsetof(stress_stats, h));
    for (int t = 0; t < STRESS_MAX_OPS; t++) hist_reset(&s->h[t]);
    hist_reset(&s->sent);
}

void stats_merge(stress_stats *into, const stress_stats *from)
{
    for (int t = 0; t < STRESS_MAX_OPS; t++) {
        into->ops[t] += from->ops[t];
        into->errors[t] += from->errors[t];
        into->partitions[t] += from->partitions[t];
        into->rows[t] += from->rows[t];
        hist_merge(&into->h[t], &from->h[t]);
    }
    for (int n = 0; n < STRESS_RING_MAX; n++) {
        into->node_ops[n] += from->node_ops[n];
        into->node_errors[n] += from->node_errors[n];
    }
    hist_merge(&into->sent, &from->sent);
    into->misses += from->misses;
    into->reprepares += from->reprepares;
    into->reconnects += from->reconnects;
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

void keygen_init(keygen *g, const stress_dist *d)
{
    memset(g, 0, sizeof(*g));
    g->kind = d->kind;
    g->lo = d->lo;
    g->hi = d->hi < d->lo ? d->lo : d->hi;
    g->s = d->s > 0 ? d->s : 0.99;
    g->mean = d->mean;
    g->stdev = d->stdev;
    if (g->kind == DIST_ZIPF) {
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

/* Box-Muller; one of the pair is thrown away to keep keygen stateless. */
static uint64_t gauss_next(const keygen *g, sib_rng *rng)
{
    double u1 = stress_rand01(rng), u2 = stress_rand01(rng);
    double z = sqrt(-2.0 * log(u1 > 0 ? u1 : 0x1.0p-53)) * cos(2 * M_PI * u2);
    double v = floor(g->mean + z * g->stdev + 0.5);
    if (v < (double)g->lo) return g->lo;
    if (v > (double)g->hi) return g->hi;
    return (uint64_t)v;
}

uint64_t keygen_next(const keygen *g, sib_rng *rng, uint64_t seq)
{
    uint64_t span = g->hi - g->lo + 1; /* 0 only for the full 2^64 range */
    switch (g->kind) {
    case DIST_SEQ: return g->lo + (span ? seq % span : seq);
    case DIST_UNIFORM: return g->lo + (span ? sib_rng_next(rng) % span : sib_rng_next(rng));
    case DIST_ZIPF: return g->lo + zipf_next(g, rng);
    case DIST_FIXED: return g->lo;
    case DIST_GAUSS: return gauss_next(g, rng);
    }
    return g->lo;
}

uint64_t stress_mix(uint64_t a, uint64_t b)
{
    uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- parsing distributions ---- */

bool stress_parse_count(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s)) return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s) return false;
    switch (tolower((unsigned char)*end)) {
    case 'k': v *= 1e3; end++; break;
    case 'm': v *= 1e6; end++; break;
    case 'b': v *= 1e9; end++; break;
    default: break;
    }
    if (*end || v < 0 || v > 1.8e19) return false;
    *out = (uint64_t)v;
    return true;
}

static const struct {
    const char *name;
    dist_kind kind;
} dist_names[] = {
    {"FIXED", DIST_FIXED}, {"UNIFORM", DIST_UNIFORM}, {"SEQ", DIST_SEQ},     {"ZIPF", DIST_ZIPF},
    {"ZIPFIAN", DIST_ZIPF}, {"GAUSSIAN", DIST_GAUSS}, {"GAUSS", DIST_GAUSS}, {"NORMAL", DIST_GAUSS},
    {"NORM", DIST_GAUSS},
};

/* Splits "lo..hi,a,b" (or "v" for FIXED) into up to 4 numbers' texts. */
static int split_args(char *args, char *parts[4], bool *ranged)
{
    int n = 0;
    char *dots = strstr(args, "..");
    *ranged = dots != NULL;
    if (dots) {
        *dots = 0;
        parts[n++] = args;
        args = dots + 2;
    }
    char *save = NULL;
    for (char *tok = strtok_r(args, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == 4) return -1;
        parts[n++] = tok;
    }
    return n;
}

static bool parse_real(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return !errno && end != s && *end == 0;
}

int stress_dist_parse(const char *text, stress_dist *d, sib_err *err)
{
    char buf[128];
    memset(d, 0, sizeof(*d));
    const char *open = strchr(text, '(');
    size_t nlen = open ? (size_t)(open - text) : 0;
    size_t k = 0;
    for (; open && k < SIB_ARRAY_LEN(dist_names); k++)
        if (strlen(dist_names[k].name) == nlen && strncasecmp(text, dist_names[k].name, nlen) == 0) break;
    if (!open || k == SIB_ARRAY_LEN(dist_names))
        return sib_err_set(err, SIB_EINVAL,
                           "unknown distribution '%s' (FIXED(n), UNIFORM(lo..hi), SEQ(lo..hi), ZIPF(lo..hi[,s]) or "
                           "GAUSSIAN(lo..hi[,stdvrng]))", text);
    d->kind = dist_names[k].kind;
    size_t alen = strlen(open + 1);
    if (alen == 0 || open[alen] != ')' || alen >= sizeof(buf))
        return sib_err_set(err, SIB_EINVAL, "expected ')' at the end of '%s'", text);
    memcpy(buf, open + 1, alen - 1);
    buf[alen - 1] = 0;
    char *parts[4];
    bool ranged;
    int n = split_args(buf, parts, &ranged);
    bool ok = n >= 1 && stress_parse_count(parts[0], &d->lo);
    if (d->kind == DIST_FIXED) {
        ok = ok && !ranged && n == 1;
        d->hi = d->lo;
    } else {
        ok = ok && ranged && n >= 2 && stress_parse_count(parts[1], &d->hi) && d->hi >= d->lo;
    }
    if (ok && d->kind == DIST_ZIPF) {
        d->s = 0.99;
        ok = n == 2 || (n == 3 && parse_real(parts[2], &d->s) && d->s > 0);
    } else if (ok && d->kind == DIST_GAUSS) {
        double stdvrng = 3;
        d->mean = ((double)d->lo + (double)d->hi) / 2;
        if (n == 3) ok = parse_real(parts[2], &stdvrng) && stdvrng > 0;
        else if (n == 4) ok = parse_real(parts[2], &d->mean) && parse_real(parts[3], &d->stdev) && d->stdev >= 0;
        if (n != 4) d->stdev = (d->mean - (double)d->lo) / stdvrng;
    } else if (ok && d->kind != DIST_FIXED) {
        ok = n == 2;
    }
    return ok ? 0 : sib_err_set(err, SIB_EINVAL, "bad arguments in distribution '%s'", text);
}

const char *stress_dist_name(const stress_dist *d, char *buf, size_t len)
{
    static const char *const names[] = {"SEQ", "UNIFORM", "ZIPF", "FIXED", "GAUSSIAN"};
    if (d->kind == DIST_FIXED) snprintf(buf, len, "FIXED(%llu)", (unsigned long long)d->lo);
    else snprintf(buf, len, "%s(%llu..%llu)", names[d->kind], (unsigned long long)d->lo, (unsigned long long)d->hi);
    return buf;
}
