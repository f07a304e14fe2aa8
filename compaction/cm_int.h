/* cm_int.h: what the strategies of compaction/ share (private). */
#ifndef SIB_CM_INT_H
#define SIB_CM_INT_H

#include "compaction.h"

/* A table's strategy state (strategy.c): LCS's round-robin position, the
 * largest last token compacted out of each level. */
struct cm_strategy {
    int64_t last_token[CM_MAX_LEVELS];
    bool has_last[CM_MAX_LEVELS];
    uint32_t rounds_idle[CM_MAX_LEVELS]; /* LCS: higher-level rounds since a level was compacted into */
    /* TWCS: the newest window ever seen (it only grows) and when expired
     * SSTables were last looked for */
    int64_t highest_window;
    bool has_highest;
    int64_t last_expired_check;
    /* UCS: the flush size in use as base m (0: none seen yet), and the
     * moving average of flush sizes it follows */
    uint64_t ucs_flush_bytes;
    double ucs_flush_avg;
};

/* STCS's bucket choice alone over ssts (compacting ones left out): the
 * picked indexes in pick[], their count (0: no bucket qualifies). */
size_t cm_stcs_pick_bucket(const cm_options *o, const cm_sst *ssts, size_t n, size_t *pick);
/* The largest (STCS, LCS) or smallest (TWCS) SSTable not compacting that is
 * worth a single-SSTable tombstone compaction; SIZE_MAX if none. */
size_t cm_pick_tombstone(const cm_options *o, const cm_sst *ssts, size_t n, int64_t now_s, int32_t gc_before,
                         bool largest);

/* Fully expired SSTables among those not compacting, at most once per
 * expired_sstable_check_frequency_seconds (TWCS, UCS); marks exp[]. */
size_t cm_expired_now(cm_strategy *s, const cm_options *o, const cm_sst *ssts, size_t n, int64_t now_s,
                      int32_t gc_before, int64_t mem_min_ts, bool *exp);

#endif
