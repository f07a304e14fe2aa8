/* twcs.c: TimeWindowCompactionStrategy (docs/compaction.md, "Time-window
 * choice") and the fully-expired rule it shares with the tombstone checks.
 *
 * Windows: an SSTable belongs to the window of its newest write timestamp,
 * windows being compaction_window_size x compaction_window_unit long and
 * aligned to the Unix epoch (UTC). The newest window ever seen only grows.
 *
 * Choice, newest window first, the first that qualifies:
 *   - the current window (the newest seen) with at least min_threshold
 *     SSTables: STCS inside it; if no bucket qualifies, the next window;
 *   - an older window with at least 2 SSTables: all of them, the
 *     max_threshold smallest, into one; but not a window whose data all
 *     expire within one window length (expires_soon): it is about to be
 *     dropped whole, and merging it first would only rewrite it;
 * else, only if tombstone_threshold or tombstone_compaction_interval was
 * given, the smallest SSTable worth a tombstone compaction.
 * At most once per expired_sstable_check_frequency_seconds, the fully
 * expired SSTables (cm_fully_expired) are added to the choice, to be
 * dropped whole without being read; they may make a choice on their own.
 * Outputs stay in L0 and are not split.
 */
#include "cm_int.h"

#include <stdlib.h>

static bool overlaps_any(const cm_sst *s, const cm_sst *ssts, size_t n, const bool *cand)
{
    for (size_t i = 0; i < n; i++)
        if (cand[i] && s->first_token <= ssts[i].last_token && ssts[i].first_token <= s->last_token) return true;
    return false;
}

bool cm_sst_gcable(const cm_sst *s, int32_t gc_before)
{
    return s->min_ts != SST_NO_TS && s->max_ldt != SST_NO_LDT && s->max_ldt < gc_before;
}

bool cm_sst_live(const cm_sst *s, int32_t gc_before)
{
    return s->min_ts != SST_NO_TS && !cm_sst_gcable(s, gc_before); /* empty: shadows nothing */
}

size_t cm_fully_expired(const cm_sst *ssts, size_t n, const bool *cand, int32_t gc_before, int64_t mem_min_ts,
                        bool *expired)
{
    int64_t min_ts = mem_min_ts;
    for (size_t i = 0; i < n; i++) {
        bool live = cm_sst_live(&ssts[i], gc_before);
        expired[i] = cand[i] && cm_sst_gcable(&ssts[i], gc_before);
        if (live && (cand[i] || overlaps_any(&ssts[i], ssts, n, cand))) min_ts = SIB_MIN(min_ts, ssts[i].min_ts);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (expired[i] && ssts[i].max_ts >= min_ts) expired[i] = false;
        k += expired[i];
    }
    return k;
}

int64_t cm_twcs_window(const cm_options *o, int64_t ts)
{
    int64_t per = o->ts_per_s > 0 ? o->ts_per_s : 1;
    int64_t s = ts / per - (ts % per < 0); /* floor */
    int64_t w = (int64_t)o->window_unit_s * (int64_t)SIB_MAX(o->window_size, 1u);
    int64_t r = s % w;
    return s - (r < 0 ? r + w : r);
}

typedef struct win { int64_t key; size_t i; uint64_t size; } win;

static int win_cmp(const void *a, const void *b)
{
    const win *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1; /* newest window first */
    if (x->size != y->size) return x->size < y->size ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Does an older window expire too soon to be worth merging? Yes when all
 * of its SSTables hold only expiring data and tombstones, and the last of
 * them becomes droppable (max_ldt < gc_before) within one window length
 * from now, or became so less than one expired check ago (the check has
 * not had its chance to drop it yet). Past that band (an SSTable that
 * blocks the drop keeps it) the window is merged as usual. */
static bool expires_soon(const cm_options *o, const cm_sst *ssts, const win *v, size_t a, size_t b,
                         int32_t gc_before)
{
    int64_t last = INT64_MIN;
    for (size_t k = a; k < b; k++) {
        if (ssts[v[k].i].max_ldt == SST_NO_LDT) return false; /* live data that never expires */
        last = SIB_MAX(last, (int64_t)ssts[v[k].i].max_ldt);
    }
    int64_t span = (int64_t)o->window_unit_s * (int64_t)SIB_MAX(o->window_size, 1u);
    return last >= (int64_t)gc_before - SIB_MAX(o->expired_check_s, 1) && last < (int64_t)gc_before + span;
}

/* One window, v[a..b): STCS inside it when current, all of it when older
 * (unless it expires soon: expires_soon). */
static size_t window_pick(const cm_options *o, const cm_sst *ssts, const win *v, size_t a, size_t b, bool current,
                          int32_t gc_before, size_t *pick)
{
    size_t m = b - a, np = 0;
    if (current) {
        if (m < o->min_threshold) return 0;
        cm_sst *w = malloc(m * sizeof *w);
        size_t *sub = malloc(m * sizeof *sub);
        if (w && sub) {
            for (size_t k = 0; k < m; k++) w[k] = ssts[v[a + k].i];
            np = cm_stcs_pick_bucket(o, w, m, sub);
            for (size_t k = 0; k < np; k++) pick[k] = v[a + sub[k]].i;
        }
        free(w);
        free(sub);
        return np;
    }
    if (m < 2 || expires_soon(o, ssts, v, a, b, gc_before)) return 0;
    for (size_t k = a; k < b && np < o->max_threshold; k++) pick[np++] = v[k].i; /* smallest first */
    return np;
}

/* Expired SSTables, at most once per check interval: marks exp[]. */
size_t cm_expired_now(cm_strategy *s, const cm_options *o, const cm_sst *ssts, size_t n, int64_t now_s,
                      int32_t gc_before, int64_t mem_min_ts, bool *exp)
{
    if (s->last_expired_check && now_s < s->last_expired_check + o->expired_check_s) return 0;
    s->last_expired_check = now_s;
    bool *cand = malloc(n * sizeof *cand);
    if (!cand) return 0;
    for (size_t i = 0; i < n; i++) cand[i] = !ssts[i].compacting;
    size_t k = cm_fully_expired(ssts, n, cand, gc_before, mem_min_ts, exp);
    free(cand);
    return k;
}

void cm_twcs_pick(cm_strategy *s, const cm_options *o, const cm_sst *ssts, size_t n, int64_t now_s,
                  int32_t gc_before, int64_t mem_min_ts, size_t *pick, cm_choice *out)
{
    *out = (cm_choice){.n = 0};
    if (!o->enabled || !n) return;
    bool *exp = calloc(n, sizeof *exp);
    win *v = malloc(n * sizeof *v);
    if (!exp || !v) goto done;
    size_t nexp = cm_expired_now(s, o, ssts, n, now_s, gc_before, mem_min_ts, exp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (ssts[i].compacting || exp[i]) continue;
        v[m++] = (win){cm_twcs_window(o, ssts[i].max_ts), i, ssts[i].size};
        if (!s->has_highest || v[m - 1].key > s->highest_window) s->highest_window = v[m - 1].key, s->has_highest = true;
    }
    qsort(v, m, sizeof *v, win_cmp);
    size_t np = 0;
    for (size_t a = 0, b; a < m && !np; a = b) {
        for (b = a; b < m && v[b].key == v[a].key; b++) {}
        np = window_pick(o, ssts, v, a, b, v[a].key >= s->highest_window, gc_before, pick);
    }
    out->n = np;
    if (!np && o->tombstone_explicit) {
        /* smallest first, as TWCS does (unlike STCS and LCS) */
        cm_sst *w = malloc((m ? m : 1) * sizeof *w);
        size_t t = SIZE_MAX;
        for (size_t k = 0; w && k < m; k++) w[k] = ssts[v[k].i];
        if (w) t = cm_pick_tombstone(o, w, m, now_s, gc_before, false);
        if (t != SIZE_MAX) {
            pick[0] = v[t].i;
            out->n = 1;
            out->tombstone = true;
        }
        free(w);
    }
    for (size_t i = 0; i < n && nexp; i++)
        if (exp[i]) pick[out->n + out->nexpired++] = i;
done:
    free(exp);
    free(v);
}
