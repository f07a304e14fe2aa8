/* hist.c: the latency histogram, key distributions and stats of
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
 */
#include "stress.h"

#include <math.h>

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
