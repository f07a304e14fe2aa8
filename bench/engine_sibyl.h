/*
 * engine_sibyl.h -- a SIBYL-ENGINE-V1 record on Sibyl's storage engine, as
 * bench_engine.c and bench_amp.c both drive it: the engine in-process
 * without a loop, one table with a blob partition key and one blob column.
 * put = one mutation {pk = the 16-byte key, row "", cell column 1 = the
 * 100-byte value; with a TTL also an expiring row marker} through
 * storage_apply; get = st_read of the partition;
 * settle = flush everything (blocks until the SSTables are live), then wait
 * until no compaction is queued, running or due.
 *
 * Static inline: each benchmark program includes it after engine_workload.h.
 */
#ifndef SIB_BENCH_ENGINE_SIBYL_H
#define SIB_BENCH_ENGINE_SIBYL_H

#include <stdbool.h>
#include <stdio.h>

#include "storage.h"

static inline int sibyl_engine_put(storage *s, st_mutation **m, const uint8_t table[16], const char *k, const char *v,
                                   int64_t ts, int32_t ttl, int32_t expiry)
{
    sib_err err;
    st_mutation_reset(*m, table, (const uint8_t *)k, SIBYL_KEY_LEN);
    st_mut_row(*m, NULL, 0);
    /* with a TTL, the expiring row marker a CQL INSERT ... USING TTL writes:
     * without one the row is an UPDATE's, which an SSTable's statistics
     * cannot tell from live data that never expires (so TWCS would never
     * drop it whole) */
    if (ttl > 0) st_mut_row_marker(*m, ts, ttl, expiry);
    st_mut_cell(*m, 1, (const uint8_t *)v, SIBYL_VAL_LEN, ts, ttl, expiry);
    int rc = storage_apply(s, m, 1, NULL, NULL, &err);
    if (rc) fprintf(stderr, "sibyl: put: %s\n", err.msg);
    return rc;
}

/* *found: the partition has its row with one 100-byte cell (live at now_s). */
static inline int sibyl_engine_get(st_table *t, const char *k, int32_t now_s, bool *found)
{
    st_iter *it = st_read(t, (const uint8_t *)k, SIBYL_KEY_LEN, NULL, 0, false, now_s);
    if (!it) return -1;
    st_row r;
    *found = st_iter_next(it, &r) && r.ncells == 1 && r.cells[0].vlen == SIBYL_VAL_LEN;
    sib_err err;
    int rc = st_iter_status(it, &err);
    if (rc) fprintf(stderr, "sibyl: get: %s\n", err.msg);
    st_iter_destroy(it);
    return rc;
}

static inline int sibyl_engine_settle(storage *s)
{
    sib_err err;
    int rc = storage_flush(s, NULL, NULL, NULL, &err); /* no loop: returns once live */
    if (!rc) rc = storage_compaction_wait(s, NULL, NULL, &err); /* blocks until settled */
    if (rc) fprintf(stderr, "sibyl: settle: %s\n", err.msg);
    return rc;
}

#endif
