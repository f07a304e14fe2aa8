/* stcs.c: compaction options and SizeTieredCompactionStrategy
 * (docs/compaction.md, "Size-tiered choice"), as Cassandra's code does it.
 *
 * Options (CQL `compaction` map; values are strings):
 *   | key                            | default  | check                        |
 *   |--------------------------------|----------|------------------------------|
 *   | class                          | STCS     | STCS/LCS/TWCS/UCS names      |
 *   | enabled                        | true     | true/false                   |
 *   | min_threshold                  | 4        | >= 2, <= max_threshold       |
 *   | max_threshold                  | 32       |                              |
 *   | bucket_low / bucket_high       | 0.5/1.5  | bucket_high > bucket_low     |
 *   | min_sstable_size (bytes)       | 52428800 | >= 0                         |
 *   | tombstone_threshold            | 0.2      | >= 0                         |
 *   | tombstone_compaction_interval  | 86400 s  | >= 0                         |
 *   | unchecked_tombstone_compaction | false    | true/false                   |
 *   | sstable_size_in_mb (LCS only)  | 160      | integer >= 1                 |
 *   | l0_compaction_trigger (LCS)    | 1        | integer 1..32                |
 * The LCS, TWCS and UCS keys (docs/compaction.md lists them all) count only
 * under their class. DTCS is accepted and runs as STCS, its keys ignored.
 * With the other classes an unknown key is an error, as Cassandra's
 * "Properties specified [...] are not understood".
 *
 * Buckets (getBuckets): sizes ascending; each joins the FIRST existing bucket
 * (creation order) with avg*low < s < avg*high, or with both s and avg below
 * min_sstable_size; the average is then (avg*n + s)/(n+1) in integers.
 * Choice (mostInterestingBucket): every bucket trimmed to max_threshold
 * (hotness is 0 without read meters, so the order is by size), buckets below
 * min_threshold dropped, the largest average wins (the hotness tie-break as
 * the code reads). Otherwise the largest SSTable worth a single-SSTable
 * tombstone compaction (worthDroppingTombstones).
 */
#include "cm_int.h"

#include <errno.h>
#include <stdlib.h>
#include <strings.h>

static void ucs_defaults(cm_options *o);

void cm_options_default(cm_options *o)
{
    *o = (cm_options){.kind = CM_STCS,
                      .enabled = true,
                      .min_threshold = 4,
                      .max_threshold = 32,
                      .bucket_low = 0.5,
                      .bucket_high = 1.5,
                      .min_sstable_size = 50ull << 20,
                      .tombstone_threshold = 0.2,
                      .tombstone_compaction_interval = 86400,
                      .unchecked_tombstone_compaction = false,
                      .sstable_size = 0,
                      .fanout_size = 10,
                      .l0_compaction_trigger = 1,
                      .window_unit_s = 86400,
                      .window_size = 1,
                      .ts_per_s = 1000000,
                      .expired_check_s = 600,
                      .gc_grace_seconds = 864000};
    ucs_defaults(o);
}

static const char *const stcs_names[] = {"SizeTieredCompactionStrategy",
                                         "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy"};
static const char *const lcs_names[] = {"LeveledCompactionStrategy"};
static const char *const twcs_names[] = {"TimeWindowCompactionStrategy"};
static const char *const ucs_names[] = {"UnifiedCompactionStrategy"};
static const char *const other_names[] = {"DateTieredCompactionStrategy"};
static const char *const kind_names[] = {"SizeTieredCompactionStrategy", "LeveledCompactionStrategy",
                                         "TimeWindowCompactionStrategy", "UnifiedCompactionStrategy"};

/* UCS's own defaults (Cassandra 5.0's unified_compaction.* properties). */
static void ucs_defaults(cm_options *o)
{
    o->ucs_w[0] = 2; /* T4 */
    o->ucs_nw = 1;
    o->target_sstable_size = 1ull << 30;
    o->base_shard_count = 4;
    o->ucs_min_sstable_size = 100ull << 20;
    o->sstable_growth = 0.333;
    o->max_sstables_to_compact = 0;
    o->flush_size_override = 0;
}

/* TWCS's unit and resolution names and their values. */
static const struct { const char *name; int64_t v; } window_units[] = {{"MINUTES", 60}, {"HOURS", 3600}, {"DAYS", 86400}};
static const struct { const char *name; int64_t v; } resolutions[] = {
    {"SECONDS", 1}, {"MILLISECONDS", 1000}, {"MICROSECONDS", 1000000}, {"NANOSECONDS", 1000000000}};

static bool is_class(const char *v, const char *const *names, size_t n)
{
    const char *pfx = "org.apache.cassandra.db.compaction.";
    const char *s = strncmp(v, pfx, strlen(pfx)) ? v : v + strlen(pfx);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return true;
    return false;
}

static bool parse_bool(const char *v, bool *out)
{
    if (!strcasecmp(v, "true")) *out = true;
    else if (!strcasecmp(v, "false")) *out = false;
    else return false;
    return true;
}

static bool parse_num(const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end) return false;
    *out = d;
    return true;
}

static bool is_common_key(const char *k)
{
    static const char *const ignored[] = {"only_purge_repaired_tombstones", "log_all",
                                          "provide_overlapping_tombstones"};
    for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++)
        if (!strcmp(k, ignored[i])) return true;
    return false;
}

static bool is_twcs_key(const char *k)
{
    static const char *const keys[] = {"compaction_window_unit", "compaction_window_size", "timestamp_resolution",
                                       "expired_sstable_check_frequency_seconds",
                                       "unsafe_aggressive_sstable_expiration"};
    for (size_t i = 0; i < SIB_ARRAY_LEN(keys); i++)
        if (!strcmp(k, keys[i])) return true;
    return false;
}

/* TimeWindowCompactionStrategyOptions' keys. */
static int apply_twcs_key(cm_options *o, const char *k, const char *v, sib_err *err)
{
    double d;
    bool b;
    if (!strcmp(k, "compaction_window_unit") || !strcmp(k, "timestamp_resolution")) {
        bool unit = !strcmp(k, "compaction_window_unit");
        size_t n = unit ? SIB_ARRAY_LEN(window_units) : SIB_ARRAY_LEN(resolutions);
        for (size_t i = 0; i < n; i++) {
            if (strcasecmp(v, unit ? window_units[i].name : resolutions[i].name)) continue;
            if (unit) o->window_unit_s = (uint32_t)window_units[i].v;
            else o->ts_per_s = resolutions[i].v;
            return 0;
        }
        return sib_err_set(err, SIB_ECONFIG, "%s is not valid for %s (%s)", v, k,
                           unit ? "MINUTES, HOURS or DAYS" : "SECONDS, MILLISECONDS, MICROSECONDS or NANOSECONDS");
    }
    if (!strcmp(k, "compaction_window_size")) {
        if (!parse_num(v, &d) || d != (double)(uint32_t)d || d < 1)
            return sib_err_set(err, SIB_ECONFIG, "%s must be greater than 1 for compaction_window_size", v);
        o->window_size = (uint32_t)d;
    } else if (!strcmp(k, "expired_sstable_check_frequency_seconds")) {
        if (!parse_num(v, &d) || d != (double)(int64_t)d || d < 0)
            return sib_err_set(err, SIB_ECONFIG, "%s must not be negative for %s", v, k);
        o->expired_check_s = (int64_t)d;
    } else { /* unsafe_aggressive_sstable_expiration */
        if (!parse_bool(v, &b)) return sib_err_set(err, SIB_ECONFIG, "%s: invalid value '%s'", k, v);
        if (b)
            return sib_err_set(err, SIB_ECONFIG, "unsafe_aggressive_sstable_expiration is not allowed: it may bring "
                                                 "shadowed data back (Cassandra needs a JVM flag for it)");
    }
    return 0;
}

static bool is_ucs_key(const char *k)
{
    static const char *const keys[] = {"scaling_parameters", "target_sstable_size", "base_shard_count",
                                       "min_sstable_size", "sstable_growth", "max_sstables_to_compact",
                                       "flush_size_override", "expired_sstable_check_frequency_seconds",
                                       "unsafe_aggressive_sstable_expiration", "overlap_inclusion_method"};
    for (size_t i = 0; i < SIB_ARRAY_LEN(keys); i++)
        if (!strcmp(k, keys[i])) return true;
    return false;
}

/* A size as Cassandra writes them: bytes, or a number with B, KiB, MiB,
 * GiB, TiB (powers of 2) or KB, MB, GB, TB (powers of 10). */
static bool parse_size(const char *v, uint64_t *out)
{
    static const struct { const char *u; double m; } units[] = {
        {"", 1}, {"B", 1}, {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0},
        {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}};
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || d < 0 || d != d) return false;
    while (*end == ' ') end++;
    for (size_t i = 0; i < SIB_ARRAY_LEN(units); i++) {
        if (strcasecmp(end, units[i].u)) continue;
        double b = d * units[i].m;
        if (b >= 18446744073709551615.0) return false;
        *out = (uint64_t)b;
        return true;
    }
    return false;
}

/* Controller's keys (UCS). */
static int apply_ucs_key(cm_options *o, const char *k, const char *v, sib_err *err)
{
    double d;
    uint64_t b;
    if (!strcmp(k, "scaling_parameters")) return cm_ucs_parse_scaling(v, o->ucs_w, &o->ucs_nw, err);
    if (!strcmp(k, "target_sstable_size") || !strcmp(k, "min_sstable_size") || !strcmp(k, "flush_size_override")) {
        if (!parse_size(v, &b))
            return sib_err_set(err, SIB_ECONFIG, "%s: invalid size '%s' (bytes, or e.g. 100MiB, 1GiB)", k, v);
        if (!strcmp(k, "target_sstable_size")) {
            if (b < (1ull << 20))
                return sib_err_set(err, SIB_ECONFIG, "target_sstable_size %s is not allowed; it must be at least 1MiB",
                                   v);
            o->target_sstable_size = b;
        } else if (!strcmp(k, "min_sstable_size")) {
            o->ucs_min_sstable_size = b;
        } else {
            o->flush_size_override = b;
        }
    } else if (!strcmp(k, "base_shard_count")) {
        if (!parse_num(v, &d) || d != (double)(uint32_t)d || d < 1 || d > 65536)
            return sib_err_set(err, SIB_ECONFIG, "base_shard_count must be an integer from 1 to 65536, was '%s'", v);
        o->base_shard_count = (uint32_t)d;
    } else if (!strcmp(k, "sstable_growth")) {
        if (!parse_num(v, &d) || d < 0 || d > 1)
            return sib_err_set(err, SIB_ECONFIG, "sstable_growth must be between 0 and 1, was '%s'", v);
        o->sstable_growth = d;
    } else if (!strcmp(k, "max_sstables_to_compact")) {
        if (!parse_num(v, &d) || d != (double)(int64_t)d || d > (double)UINT32_MAX)
            return sib_err_set(err, SIB_ECONFIG, "max_sstables_to_compact must be an integer, was '%s'", v);
        o->max_sstables_to_compact = d <= 0 ? 0 : (uint32_t)d; /* <= 0: no limit */
    } else if (!strcmp(k, "overlap_inclusion_method")) {
        if (strcasecmp(v, "TRANSITIVE"))
            return sib_err_set(err, SIB_ECONFIG, "overlap_inclusion_method %s is not supported (only TRANSITIVE)", v);
    } else {
        return apply_twcs_key(o, k, v, err); /* the expiry keys, same rules */
    }
    return 0;
}

/* Applies one key to o; false (with err) if the value is bad or the key unknown. */
static int apply_key(cm_options *o, const char *k, const char *v, bool strict, sib_err *err)
{
    double d = 0;
    bool b;
    if (!strcmp(k, "class")) return 0;
    if (o->kind == CM_UCS && is_ucs_key(k)) return apply_ucs_key(o, k, v, err); /* min_sstable_size: UCS's */
    if (!strcmp(k, "enabled")) {
        if (!parse_bool(v, &b)) goto bad;
        o->enabled = b;
    } else if (!strcmp(k, "unchecked_tombstone_compaction")) {
        if (!parse_bool(v, &b)) goto bad;
        o->unchecked_tombstone_compaction = b;
    } else if (!strcmp(k, "min_threshold") || !strcmp(k, "max_threshold")) {
        if (!parse_num(v, &d) || d != (double)(uint32_t)d) goto bad;
        *(!strcmp(k, "min_threshold") ? &o->min_threshold : &o->max_threshold) = (uint32_t)d;
    } else if (!strcmp(k, "bucket_low") || !strcmp(k, "bucket_high") || !strcmp(k, "tombstone_threshold")) {
        if (!parse_num(v, &d) || d < 0) goto bad;
        if (!strcmp(k, "tombstone_threshold")) o->tombstone_explicit = true;
        *(!strcmp(k, "bucket_low") ? &o->bucket_low : !strcmp(k, "bucket_high") ? &o->bucket_high
                                                                                 : &o->tombstone_threshold) = d;
    } else if (!strcmp(k, "min_sstable_size")) {
        if (!parse_num(v, &d) || d < 0) goto bad;
        o->min_sstable_size = (uint64_t)d;
    } else if (!strcmp(k, "sstable_size_in_mb") && o->kind == CM_LCS) {
        if (!parse_num(v, &d) || d != (double)(uint32_t)d || d < 1)
            return sib_err_set(err, SIB_ECONFIG, "sstable_size_in_mb must be a positive integer, was '%s'", v);
        o->sstable_size = (uint64_t)d << 20;
    } else if (!strcmp(k, "fanout_size") && o->kind == CM_LCS) {
        if (!parse_num(v, &d) || d != (double)(uint32_t)d || d < 1)
            return sib_err_set(err, SIB_ECONFIG, "fanout_size must be a positive integer, was '%s'", v);
        o->fanout_size = (uint32_t)d;
    } else if (!strcmp(k, "l0_compaction_trigger") && o->kind == CM_LCS) {
        /* above 32 L0 SSTables LCS runs STCS in L0 instead: a larger
         * trigger would never fire */
        if (!parse_num(v, &d) || d != (double)(uint32_t)d || d < 1 || d > 32)
            return sib_err_set(err, SIB_ECONFIG, "l0_compaction_trigger must be an integer from 1 to 32, was '%s'", v);
        o->l0_compaction_trigger = (uint32_t)d;
    } else if (!strcmp(k, "single_sstable_uplevel") && o->kind == CM_LCS) {
        if (!parse_bool(v, &b)) goto bad; /* accepted; a lone SSTable always moves by its metadata here */
    } else if (o->kind == CM_TWCS && is_twcs_key(k)) {
        return apply_twcs_key(o, k, v, err);

    } else if (!strcmp(k, "tombstone_compaction_interval")) {
        if (!parse_num(v, &d) || d < 0) goto bad;
        o->tombstone_explicit = true;
        o->tombstone_compaction_interval = (int64_t)d;
    } else if (strict && !is_common_key(k)) {
        return sib_err_set(err, SIB_ECONFIG, "Properties specified [%s] are not understood by %s", k,
                           kind_names[o->kind]);
    }
    return 0;
bad:
    return sib_err_set(err, SIB_ECONFIG, "compaction option %s: invalid value '%s'", k, v);
}

int cm_options_parse(cm_options *o, const char *const *keys, const char *const *vals, size_t n, bool *unknown_class,
                     sib_err *err)
{
    cm_options x = *o;
    bool strict = true;
    *unknown_class = false;
    cm_options d;
    cm_options_default(&d);
    x.kind = CM_STCS;
    x.sstable_size = 0; /* only LCS splits its outputs */
    x.fanout_size = d.fanout_size;
    x.l0_compaction_trigger = d.l0_compaction_trigger;
    x.window_unit_s = d.window_unit_s;
    x.window_size = d.window_size;
    x.ts_per_s = d.ts_per_s;
    x.expired_check_s = d.expired_check_s;
    x.tombstone_explicit = false;
    ucs_defaults(&x);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i], "class")) continue;
        if (is_class(vals[i], stcs_names, 1)) continue;
        if (is_class(vals[i], lcs_names, 1)) {
            x.kind = CM_LCS;
            x.sstable_size = 160ull << 20;
            continue;
        }
        if (is_class(vals[i], twcs_names, 1)) {
            x.kind = CM_TWCS;
            continue;
        }
        if (is_class(vals[i], ucs_names, 1)) {
            x.kind = CM_UCS;
            continue;
        }
        if (!is_class(vals[i], other_names, sizeof other_names / sizeof *other_names))
            return sib_err_set(err, SIB_ECONFIG, "Unable to find compaction strategy class '%s'", vals[i]);
        *unknown_class = true;
        strict = false;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = apply_key(&x, keys[i], vals[i], strict, err);
        if (rc) return rc;
    }
    if (x.bucket_high <= x.bucket_low)
        return sib_err_set(err, SIB_ECONFIG, "bucket_high value (%g) is less than or equal bucket_low value (%g)",
                           x.bucket_high, x.bucket_low);
    if (x.kind == CM_UCS && x.ucs_min_sstable_size &&
        (double)x.ucs_min_sstable_size >= (double)x.target_sstable_size * 0.70710678118654752)
        return sib_err_set(err, SIB_ECONFIG,
                           "min_sstable_size (%llu bytes) must be smaller than target_sstable_size x sqrt(0.5) (%.0f "
                           "bytes)",
                           (unsigned long long)x.ucs_min_sstable_size,
                           (double)x.target_sstable_size * 0.70710678118654752);
    if (x.min_threshold < 2)
        return sib_err_set(err, SIB_ECONFIG, "min_threshold must be at least 2, was %u", x.min_threshold);
    if (x.min_threshold > x.max_threshold)
        return sib_err_set(err, SIB_ECONFIG, "min_threshold (%u) cannot be greater than max_threshold (%u)",
                           x.min_threshold, x.max_threshold);
    *o = x;
    return 0;
}

/* ---- buckets ---- */

typedef struct ord { uint64_t size; size_t i; } ord;

static int ord_cmp(const void *a, const void *b)
{
    const ord *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

size_t cm_stcs_buckets(const cm_options *o, const uint64_t *sizes, size_t n, size_t *bucket_of)
{
    ord *v = malloc((n ? n : 1) * sizeof *v);
    uint64_t *avg = malloc((n ? n : 1) * sizeof *avg), *cnt = malloc((n ? n : 1) * sizeof *cnt);
    size_t nb = 0;
    if (!v || !avg || !cnt) { /* degenerate: one bucket each */
        for (size_t i = 0; i < n; i++) bucket_of[i] = i;
        nb = n;
        goto out;
    }
    for (size_t i = 0; i < n; i++) v[i] = (ord){sizes[i], i};
    qsort(v, n, sizeof *v, ord_cmp);
    for (size_t k = 0; k < n; k++) {
        uint64_t s = v[k].size;
        size_t b = 0;
        for (; b < nb; b++) {
            double a = (double)avg[b];
            if ((a * o->bucket_low < (double)s && (double)s < a * o->bucket_high) ||
                (s < o->min_sstable_size && avg[b] < o->min_sstable_size))
                break;
        }
        if (b == nb) {
            avg[nb] = s;
            cnt[nb++] = 1;
        } else {
            avg[b] = (avg[b] * cnt[b] + s) / (cnt[b] + 1);
            cnt[b]++;
        }
        bucket_of[v[k].i] = b;
    }
out:
    free(v);
    free(avg);
    free(cnt);
    return nb;
}

/* ---- tombstone compaction ---- */

static double droppable_ratio(const sst_stats *st, int32_t gc_before)
{
    uint64_t denom = SIB_MAX(SIB_MAX(st->cells, st->tombstones), 1);
    return (double)sst_droppable_tombstones(st, gc_before) / (double)denom;
}

static bool ranges_overlap(const sst_stats *a, const sst_stats *b)
{
    return a->first_token <= b->last_token && b->first_token <= a->last_token;
}

/* getFullyExpiredSSTables for the one candidate i against the SSTables
 * overlapping it (memtables are not consulted: this is an estimate). */
static bool fully_expired(const cm_sst *ssts, size_t n, size_t i, int32_t gc_before)
{
    bool *cand = calloc(n, sizeof *cand), *exp = calloc(n, sizeof *exp);
    bool yes = false;
    if (cand && exp) {
        cand[i] = true;
        yes = cm_fully_expired(ssts, n, cand, gc_before, INT64_MAX, exp) && exp[i];
    }
    free(cand);
    free(exp);
    return yes;
}

bool cm_worth_dropping_tombstones(const cm_options *o, const cm_sst *ssts, size_t n, size_t i, int64_t now_s,
                                  int32_t gc_before)
{
    if (now_s < ssts[i].created_s + o->tombstone_compaction_interval) return false;
    const sst_stats *st = sst_get_stats(ssts[i].sst);
    double ratio = droppable_ratio(st, gc_before);
    if (ratio <= o->tombstone_threshold) return false;
    if (o->unchecked_tombstone_compaction) return true;
    /* the part of this SSTable's token range that no overlapping SSTable
     * covers: keys are spread uniformly over tokens (Murmur3) */
    double lo = (double)st->first_token, hi = (double)st->last_token;
    if (hi <= lo) return false; /* fewer than 2 samples: Cassandra says no */
    bool any = false;
    double covered = 0, cur_lo = lo, cur_hi = lo; /* union of overlaps, by a sweep */
    ord *v = malloc((n ? n : 1) * sizeof *v);
    size_t nv = 0;
    for (size_t k = 0; v && k < n; k++) {
        const sst_stats *x = sst_get_stats(ssts[k].sst);
        if (k == i || !ranges_overlap(st, x)) continue;
        any = true;
        v[nv++] = (ord){(uint64_t)(x->first_token ^ INT64_MIN), k};
    }
    if (!any) {
        free(v);
        return true;
    }
    if (!v || fully_expired(ssts, n, i, gc_before)) {
        bool yes = v != NULL;
        free(v);
        return yes;
    }
    qsort(v, nv, sizeof *v, ord_cmp);
    for (size_t k = 0; k < nv; k++) {
        const sst_stats *x = sst_get_stats(ssts[v[k].i].sst);
        double a = SIB_MAX((double)x->first_token, lo), b = SIB_MIN((double)x->last_token, hi);
        if (a > cur_hi) {
            covered += cur_hi - cur_lo;
            cur_lo = a;
        }
        if (b > cur_hi) cur_hi = b;
    }
    covered += cur_hi - cur_lo;
    free(v);
    double outside = 1.0 - covered / (hi - lo);
    return outside * ratio > o->tombstone_threshold;
}

/* ---- choosing ---- */

cm_sst cm_sst_of(sstable *s, bool compacting)
{
    const sst_stats *st = sst_get_stats(s);
    return (cm_sst){.sst = s,
                    .size = st->data_file_bytes,
                    .created_s = sst_created(s),
                    .compacting = compacting,
                    .level = st->level,
                    .first_token = st->first_token,
                    .last_token = st->last_token,
                    .min_ts = st->min_ts,
                    .max_ts = st->max_ts,
                    /* an SSTable holding live data without a TTL never
                     * expires as a whole. Files written before live_forever
                     * was counted: anything neither a tombstone nor
                     * expiring, where a row without a marker (an UPDATE's)
                     * counts as such */
                    .max_ldt = (st->live_forever != UINT64_MAX ? st->live_forever > 0
                                                               : st->tombstones < st->cells + st->rows)
                                   ? SST_NO_LDT
                                   : st->max_ldt};
}

size_t cm_stcs_pick_bucket(const cm_options *o, const cm_sst *ssts, size_t n, size_t *pick)
{
    size_t *cand = malloc((n ? n : 1) * sizeof *cand), *bof = malloc((n ? n : 1) * sizeof *bof);
    uint64_t *sizes = malloc((n ? n : 1) * sizeof *sizes);
    size_t nc = 0, np = 0;
    if (!cand || !bof || !sizes) goto out;
    for (size_t i = 0; i < n; i++)
        if (!ssts[i].compacting) sizes[nc] = ssts[i].size, cand[nc++] = i;
    size_t nb = cm_stcs_buckets(o, sizes, nc, bof);
    size_t best = SIZE_MAX;
    uint64_t best_avg = 0;
    for (size_t b = 0; b < nb; b++) {
        uint64_t cnt = 0, sum = 0;
        for (size_t k = 0; k < nc; k++)
            if (bof[k] == b && cnt < o->max_threshold) cnt++, sum += sizes[k];
        if (cnt < o->min_threshold) continue;
        if (best == SIZE_MAX || sum / cnt > best_avg) best = b, best_avg = sum / cnt;
    }
    if (best == SIZE_MAX) goto out;
    /* the bucket's SSTables smallest first (as it was filled), max_threshold of them */
    ord *v = malloc(nc * sizeof *v);
    size_t nv = 0;
    for (size_t k = 0; v && k < nc; k++)
        if (bof[k] == best) v[nv++] = (ord){sizes[k], cand[k]};
    if (v) qsort(v, nv, sizeof *v, ord_cmp);
    for (size_t k = 0; v && k < nv && np < o->max_threshold; k++) pick[np++] = v[k].i;
    free(v);
out:
    free(cand);
    free(bof);
    free(sizes);
    return np;
}

size_t cm_pick_tombstone(const cm_options *o, const cm_sst *ssts, size_t n, int64_t now_s, int32_t gc_before,
                         bool largest)
{
    size_t got = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        if (ssts[i].compacting) continue;
        if (got != SIZE_MAX && (largest ? ssts[i].size <= ssts[got].size : ssts[i].size >= ssts[got].size)) continue;
        if (cm_worth_dropping_tombstones(o, ssts, n, i, now_s, gc_before)) got = i;
    }
    return got;
}

size_t cm_pick(const cm_options *o, const cm_sst *ssts, size_t n, int64_t now_s, int32_t gc_before, size_t *pick,
               bool *tombstone)
{
    *tombstone = false;
    if (!o->enabled || !n) return 0;
    size_t np = cm_stcs_pick_bucket(o, ssts, n, pick);
    if (np) return np;
    size_t big = cm_pick_tombstone(o, ssts, n, now_s, gc_before, true);
    if (big == SIZE_MAX) return 0;
    pick[0] = big;
    *tombstone = true;
    return 1;
}
