/* ucs.c: UnifiedCompactionStrategy (docs/compaction.md, "Unified choice"),
 * after Cassandra 5.0's UnifiedCompactionStrategy and its Controller.
 *
 * Each level has a scaling parameter W (the last one given repeats
 * upwards): W < 0 is levelled (Lf, f = 2 - W, threshold t = 2), W > 0
 * tiered (Tf, f = t = 2 + W), W = 0 the middle ground N (f = t = 2).
 * An SSTable's density is its size over the fraction of the token space it
 * spans; levels are density bands [b f0..f(L-1), b f0..fL) above a base
 * b = m (1 - 0.9/f0), m the flush size. Inside a level the SSTables not
 * compacting form overlap sets (each set: SSTables sharing one token; every
 * such group inside one set); a set of at least t SSTables triggers, extended transitively with
 * its neighbours sharing an SSTable: that is the compaction. The largest
 * overlap wins, the lowest level on a tie. Outputs are split where the
 * token space's S equal shards meet, S chosen from the output's density, so
 * outputs of one level line up and disjoint shards compact in parallel.
 * Nothing is kept across picks but the flush size (cm_strategy), so a table
 * switches between T4, L10 and N at its next pick.
 */
#include "cm_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { UCS_MAX_FAN = 1000000 }; /* bound on |W| so f and the level bounds stay finite */
static const double MIB = 1048576.0;

void cm_ucs_fan(int32_t w, uint32_t *f, uint32_t *t)
{
    if (w < 0) {
        *f = (uint32_t)(2 - (int64_t)w);
        *t = 2;
    } else {
        *f = (uint32_t)(2 + w);
        *t = *f;
    }
}

static int32_t w_at(const cm_options *o, uint32_t level)
{
    if (!o->ucs_nw) return 2;
    return o->ucs_w[SIB_MIN(level, o->ucs_nw - 1)];
}

int cm_ucs_parse_scaling(const char *v, int32_t *w, uint32_t *nw, sib_err *err)
{
    int32_t out[CM_UCS_MAX_W];
    uint32_t n = 0;
    const char *p = v;
    for (;;) {
        while (*p == ' ') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        const char *q = e;
        while (q > p && q[-1] == ' ') q--;
        size_t len = (size_t)(q - p);
        if (!len) return sib_err_set(err, SIB_ECONFIG, "scaling_parameters '%s': an empty entry", v);
        if (n == CM_UCS_MAX_W)
            return sib_err_set(err, SIB_ECONFIG, "scaling_parameters '%s': at most %d entries", v, CM_UCS_MAX_W);
        char tok[32];
        if (len >= sizeof tok) return sib_err_set(err, SIB_ECONFIG, "scaling_parameters '%s': entry too long", v);
        memcpy(tok, p, len);
        tok[len] = 0;
        char c = (char)toupper((unsigned char)tok[0]);
        long long x;
        char *end;
        errno = 0;
        if (c == 'N' && len == 1) {
            x = 0;
        } else if (c == 'T' || c == 'L') {
            long long f = strtoll(tok + 1, &end, 10);
            if (errno || end == tok + 1 || *end || !isdigit((unsigned char)tok[1]) || f < 2 || f > UCS_MAX_FAN)
                return sib_err_set(err, SIB_ECONFIG,
                                   "scaling_parameters '%s': '%s' needs a fan factor from 2 to %d after %c", v, tok,
                                   UCS_MAX_FAN, c);
            x = c == 'T' ? f - 2 : 2 - f;
        } else {
            x = strtoll(tok, &end, 10);
            if (errno || end == tok || *end || x < -UCS_MAX_FAN || x > UCS_MAX_FAN)
                return sib_err_set(err, SIB_ECONFIG,
                                   "scaling_parameters '%s': '%s' is none of Tf, Lf, N or an integer W", v, tok);
        }
        out[n++] = (int32_t)x;
        if (!*e) break;
        p = e + 1;
    }
    memcpy(w, out, n * sizeof *out);
    *nw = n;
    return 0;
}

double cm_ucs_density(uint64_t bytes, int64_t first_token, int64_t last_token)
{
    double span = 1.0;
    if (last_token >= first_token)
        span = ((double)((uint64_t)last_token - (uint64_t)first_token) + 1.0) / 18446744073709551616.0;
    if (span < 1e-6) span = 1.0;
    return (double)bytes / span;
}

uint32_t cm_ucs_level(const cm_options *o, double m, double d)
{
    uint32_t L = 0, f, t;
    cm_ucs_fan(w_at(o, 0), &f, &t);
    /* Level 0 ends at m (1 - 0.9/f0) f0 = m f0 - 0.9 m, not m f0, as in
     * Cassandra's Controller: m is a flush size rounded up to whole MiB, so
     * f0 merged flushes come out a little under m f0 and would stay in level
     * 0, merged again with the next flushes; f0 - 1 flushes (the most a
     * tiered level 0 holds before it fires) stay below m f0 - 0.9 m. */
    double bound = floor(m * (1.0 - 0.9 / f) * f);
    while (d >= bound && L < CM_UCS_LEVELS - 1) {
        L++;
        cm_ucs_fan(w_at(o, L), &f, &t);
        bound = floor(bound * f);
    }
    return L;
}

double cm_ucs_base(const cm_strategy *s, const cm_options *o, const cm_sst *ssts, size_t n)
{
    double m = 0;
    if (o->flush_size_override) m = (double)o->flush_size_override;
    else if (s && s->ucs_flush_bytes) m = (double)s->ucs_flush_bytes;
    else
        for (size_t i = 0; i < n; i++) {
            double d = cm_ucs_density(ssts[i].size, ssts[i].first_token, ssts[i].last_token);
            if (m == 0 || d < m) m = d;
        }
    if (m < MIB) m = MIB;
    return ceil(m / MIB) * MIB;
}

uint32_t cm_ucs_shards(const cm_options *o, double d)
{
    double m = (double)o->ucs_min_sstable_size, t = (double)o->target_sstable_size;
    uint32_t b = SIB_MAX(o->base_shard_count, 1u);
    if (m > 0 && d < m) return 1;
    if (m > 0 && d < m * b) {
        uint32_t pow2 = b & (~b + 1); /* the largest power of 2 dividing b */
        double e = floor(log2(d / m));
        uint32_t s = e >= 31 ? 1u << 31 : 1u << (uint32_t)SIB_MAX(e, 0.0);
        return SIB_MIN(s, pow2);
    }
    if (d < t * b) return b;
    double e = floor((1.0 - o->sstable_growth) * log2(d / (t * b)) + 0.5);
    uint32_t k = (uint32_t)SIB_MIN(SIB_MAX(e, 0.0), 20.0);
    while (k && ((uint64_t)b << k) > (1ull << 30)) k--;
    return (uint32_t)((uint64_t)b << k);
}

uint32_t cm_ucs_shard_of(int64_t token, uint32_t shards)
{
    if (shards <= 1) return 0;
    __extension__ typedef unsigned __int128 u128;
    uint64_t u = (uint64_t)token ^ (1ull << 63); /* INT64_MIN -> 0 */
    return (uint32_t)(((u128)u * shards) >> 64);
}

/* ---- overlap sets ---- */

typedef struct span { int64_t first, last; size_t i; } span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    if (x->last != y->last) return x->last < y->last ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* The overlap sets of v[0..m) (sorted by span_cmp): set k holds
 * v-positions mem[off[k] .. off[k+1]). A sweep by first token: the SSTables
 * whose range is still open form a set each time one of them is about to
 * close after the set grew. Returns the number of sets, or 0 (no memory:
 * nothing is compacted). */
static size_t overlap_sets(const span *v, size_t m, size_t **mem_out, size_t **off_out)
{
    size_t *act = malloc((m ? m : 1) * sizeof *act);
    size_t cap = 4 * (m ? m : 1);
    size_t *mem = malloc(cap * sizeof *mem), *off = malloc((m + 1) * sizeof *off);
    size_t na = 0, nset = 0, nm = 0;
    bool grew = false;
    if (!act || !mem || !off) goto fail;
    off[0] = 0;
    for (size_t k = 0; k <= m; k++) {
        bool closing = false;
        for (size_t a = 0; a < na && !closing; a++) closing = k == m || v[act[a]].last < v[k].first;
        if (closing && grew) {
            if (nm + na > cap) {
                size_t *g = realloc(mem, (cap = 2 * (nm + na)) * sizeof *g);
                if (!g) goto fail;
                mem = g;
            }
            for (size_t a = 0; a < na; a++) mem[nm++] = act[a];
            off[++nset] = nm;
            grew = false;
        }
        if (k == m) break;
        size_t keep = 0;
        for (size_t a = 0; a < na; a++)
            if (v[act[a]].last >= v[k].first) act[keep++] = act[a];
        na = keep;
        act[na++] = k;
        grew = true;
    }
    free(act);
    *mem_out = mem;
    *off_out = off;
    return nset;
fail:
    free(act);
    free(mem);
    free(off);
    return 0;
}

static bool sets_share(const size_t *mem, const size_t *off, size_t a, size_t b)
{
    for (size_t x = off[a]; x < off[a + 1]; x++)
        for (size_t y = off[b]; y < off[b + 1]; y++)
            if (mem[x] == mem[y]) return true;
    return false;
}

typedef struct best {
    size_t overlap; /* 0: none yet */
    uint32_t level;
    size_t np;
} best;

/* The bucket of level L (its SSTables v[0..m)) if its largest overlap set
 * reaches t and beats *b: written to pick[] (replacing what was there). */
static void level_bucket(const span *v, size_t m, size_t t, uint32_t L, size_t *pick, best *b)
{
    size_t *mem = NULL, *off = NULL;
    size_t nset = overlap_sets(v, m, &mem, &off);
    size_t top = SIZE_MAX;
    for (size_t k = 0; k < nset; k++) {
        size_t sz = off[k + 1] - off[k];
        if (sz >= t && sz > b->overlap && (top == SIZE_MAX || sz > off[top + 1] - off[top])) top = k;
    }
    if (top != SIZE_MAX) {
        size_t lo = top, hi = top;
        while (lo > 0 && sets_share(mem, off, lo - 1, lo)) lo--;
        while (hi + 1 < nset && sets_share(mem, off, hi, hi + 1)) hi++;
        bool *in = calloc(m ? m : 1, sizeof *in);
        if (in) {
            for (size_t x = off[lo]; x < off[hi + 1]; x++) in[mem[x]] = true;
            b->np = 0;
            for (size_t k = 0; k < m; k++)
                if (in[k]) pick[b->np++] = v[k].i;
            b->overlap = off[top + 1] - off[top];
            b->level = L;
            free(in);
        }
    }
    free(mem);
    free(off);
}

void cm_ucs_levels(const cm_strategy *s, const cm_options *o, const cm_sst *ssts, size_t n, uint32_t *lvl,
                   size_t *overlap)
{
    memset(overlap, 0, CM_UCS_LEVELS * sizeof *overlap);
    double m = cm_ucs_base(s, o, ssts, n);
    for (size_t i = 0; i < n; i++)
        lvl[i] = cm_ucs_level(o, m, cm_ucs_density(ssts[i].size, ssts[i].first_token, ssts[i].last_token));
    span *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return;
    for (uint32_t L = 0; L < CM_UCS_LEVELS; L++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (lvl[i] == L) v[k++] = (span){ssts[i].first_token, ssts[i].last_token, i};
        if (!k) continue;
        qsort(v, k, sizeof *v, span_cmp);
        size_t *mem = NULL, *off = NULL;
        size_t nset = overlap_sets(v, k, &mem, &off);
        for (size_t x = 0; x < nset; x++) overlap[L] = SIB_MAX(overlap[L], off[x + 1] - off[x]);
        free(mem);
        free(off);
    }
    free(v);
}

typedef struct aged { int64_t ts; size_t i; } aged;

static int aged_cmp(const void *a, const void *b)
{
    const aged *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* max_sstables_to_compact: the oldest `limit` of pick[0..np) (by newest
 * write), so whatever stays behind is newer than what goes. */
static size_t limit_oldest(const cm_sst *ssts, size_t *pick, size_t np, uint32_t limit)
{
    if (!limit || np <= limit) return np;
    aged *a = malloc(np * sizeof *a);
    if (!a) return 0;
    for (size_t k = 0; k < np; k++) a[k] = (aged){ssts[pick[k]].max_ts, pick[k]};
    qsort(a, np, sizeof *a, aged_cmp);
    for (size_t k = 0; k < limit; k++) pick[k] = a[k].i;
    free(a);
    return limit;
}

/* Shards for the output of pick[0..np): from its estimated density, the
 * inputs' bytes over their union range. */
static uint32_t output_shards(const cm_options *o, const cm_sst *ssts, const size_t *pick, size_t np)
{
    uint64_t bytes = 0;
    int64_t first = INT64_MAX, last = INT64_MIN;
    for (size_t k = 0; k < np; k++) {
        bytes += ssts[pick[k]].size;
        first = SIB_MIN(first, ssts[pick[k]].first_token);
        last = SIB_MAX(last, ssts[pick[k]].last_token);
    }
    return np ? cm_ucs_shards(o, cm_ucs_density(bytes, first, last)) : 1;
}

void cm_ucs_pick(cm_strategy *s, const cm_options *o, const cm_sst *ssts, size_t n, int64_t now_s, int32_t gc_before,
                 int64_t mem_min_ts, size_t *pick, cm_choice *out)
{
    *out = (cm_choice){.n = 0};
    if (!o->enabled || !n) return;
    bool *exp = calloc(n, sizeof *exp);
    span *v = malloc(n * sizeof *v);
    uint32_t *lvl = malloc(n * sizeof *lvl);
    size_t *cur = malloc(n * sizeof *cur);
    if (!exp || !v || !lvl || !cur) goto done;
    size_t nexp = cm_expired_now(s, o, ssts, n, now_s, gc_before, mem_min_ts, exp);
    double m = cm_ucs_base(s, o, ssts, n);
    uint32_t top = 0;
    for (size_t i = 0; i < n; i++) {
        lvl[i] = cm_ucs_level(o, m, cm_ucs_density(ssts[i].size, ssts[i].first_token, ssts[i].last_token));
        top = SIB_MAX(top, lvl[i]);
    }
    best b = {0};
    for (uint32_t L = 0; L <= top; L++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (lvl[i] == L && !ssts[i].compacting && !exp[i])
                v[k++] = (span){ssts[i].first_token, ssts[i].last_token, i};
        if (!k) continue;
        qsort(v, k, sizeof *v, span_cmp);
        uint32_t f, t;
        cm_ucs_fan(w_at(o, L), &f, &t);
        size_t before = b.overlap;
        level_bucket(v, k, t, L, cur, &b);
        if (b.overlap != before) memcpy(pick, cur, b.np * sizeof *pick);
    }
    if (b.overlap) {
        out->n = limit_oldest(ssts, pick, b.np, o->max_sstables_to_compact);
        out->shards = output_shards(o, ssts, pick, out->n);
        out->level = 0; /* UCS levels come from density, never from Statistics.db */
    }
    for (size_t i = 0; i < n && nexp; i++)
        if (exp[i]) pick[out->n + out->nexpired++] = i;
done:
    free(exp);
    free(v);
    free(lvl);
    free(cur);
}
