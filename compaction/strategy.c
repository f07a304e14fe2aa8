/* strategy.c: a table's compaction strategy: its state, the dispatch of a
 * pick to the strategy its options name, major compactions and the
 * completion hook (compaction.h, "strategies").
 *
 * The state outlives option changes: ALTER TABLE ... WITH compaction
 * switches a live table at its next pick. STCS keeps no state; LCS keeps
 * where its round robin through each level stands; TWCS its newest window
 * and its last expiry check; UCS its base m, which follows a moving average
 * of the flush sizes.
 */
#include "cm_int.h"

#include <math.h>
#include <stdlib.h>

int cm_strategy_create(cm_strategy **out, sib_err *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : sib_err_set(err, SIB_ENOMEM, "compaction: out of memory");
}

void cm_strategy_destroy(cm_strategy *s) { free(s); }

void cm_strategy_pick(cm_strategy *s, const cm_options *o, const cm_sst *ssts, size_t n, int64_t now_s,
                      int32_t gc_before, int64_t mem_min_ts, size_t *pick, cm_choice *out)
{
    if (o->kind == CM_LCS) {
        cm_lcs_pick(s, o, ssts, n, now_s, gc_before, pick, out);
        return;
    }
    if (o->kind == CM_UCS) {
        cm_ucs_pick(s, o, ssts, n, now_s, gc_before, mem_min_ts, pick, out);
        return;
    }
    if (o->kind == CM_TWCS) {
        cm_twcs_pick(s, o, ssts, n, now_s, gc_before, mem_min_ts, pick, out);
        return;
    }
    bool tomb;
    *out = (cm_choice){.n = cm_pick(o, ssts, n, now_s, gc_before, pick, &tomb)};
    out->tombstone = tomb;
}

void cm_strategy_major(const cm_options *o, const cm_sst *ssts, size_t n, cm_choice *out)
{
    *out = (cm_choice){.n = n};
    if (o->kind == CM_UCS && n) {
        /* everything into one merge, split on the shard boundaries of the
         * whole data's density */
        uint64_t bytes = 0;
        int64_t first = INT64_MAX, last = INT64_MIN;
        for (size_t i = 0; i < n; i++) {
            bytes += ssts[i].size;
            first = SIB_MIN(first, ssts[i].first_token);
            last = SIB_MAX(last, ssts[i].last_token);
        }
        out->shards = cm_ucs_shards(o, cm_ucs_density(bytes, first, last));
        return;
    }
    if (o->kind != CM_LCS || !n) return;
    /* one merge of everything: its split outputs cannot overlap, so they
     * may go to any level; the highest input level keeps the data where it
     * was, L1 at least unless it all fits one L0 SSTable */
    uint32_t mn = UINT32_MAX, mx = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t l = SIB_MIN(ssts[i].level, (uint32_t)CM_MAX_LEVELS - 1);
        mn = SIB_MIN(mn, l);
        mx = SIB_MAX(mx, l);
        bytes += ssts[i].size;
    }
    out->min_input_level = mn;
    out->level = mx == 0 && bytes < o->sstable_size ? 0 : SIB_MAX(mx, 1u);
    out->max_output_bytes = o->sstable_size;
}

void cm_strategy_flushed(cm_strategy *s, uint64_t bytes)
{
    /* As Cassandra's controller: m follows an exponential moving average of
     * the flush sizes (each flush moves it by 0.0046 of the difference, so
     * a flush counts for under 1% after 1000 more), and m moves to the
     * average, rounded up to whole MiB, only when it strays by more than
     * half from it. A lone small flush (a flush forced before a snapshot or
     * a shutdown) thus shifts no SSTable to another level. */
    if (!s || !bytes) return;
    double b = (double)bytes;
    s->ucs_flush_avg = s->ucs_flush_avg > 0 ? s->ucs_flush_avg + 0.0046 * (b - s->ucs_flush_avg) : b;
    double cur = (double)s->ucs_flush_bytes, avg = s->ucs_flush_avg;
    if (!s->ucs_flush_bytes || fabs(1.0 - cur / avg) > 0.5)
        s->ucs_flush_bytes = (uint64_t)ceil(avg / 1048576.0) << 20;
}

void cm_strategy_compacted(cm_strategy *s, const cm_choice *c, bool any_output, int64_t last_token)
{
    if (!s || !any_output || c->tombstone || !c->n || c->min_input_level >= CM_MAX_LEVELS) return;
    s->last_token[c->min_input_level] = last_token;
    s->has_last[c->min_input_level] = true;
}
