/* lcs.c: LeveledCompactionStrategy (docs/compaction.md, "Leveled choice"),
 * after Cassandra's LeveledManifest.getCompactionCandidates.
 *
 * Levels: L0 takes flushes and may overlap; within L1..L8 SSTables never
 * overlap. A level may hold cm_lcs_max_bytes(L): 4 x sstable_size for L0,
 * fanout^L x sstable_size above. The level of an SSTable is in its
 * Statistics.db; the manifest is rebuilt from them at every pick
 * (cm_lcs_levels), an SSTable overlapping an earlier one of its level
 * counting as L0.
 *
 * Choice, first that applies:
 *   1. levels from the highest down to L1 whose non-compacting bytes exceed
 *      1.001 x their maximum: if L0 holds more than 32 SSTables, STCS in L0
 *      first (min 4, max 32; outputs stay in L0, unsplit); else the next
 *      SSTable of the level after the last key compacted there (round robin,
 *      wrapping), with every SSTable of L+1 it overlaps, none compacting;
 *      if it overlaps none (a move), the SSTables after it that overlap
 *      none either, up to 4 in all (extend_move);
 *   2. L0: oldest first (max timestamp), each SSTable with the L0 ones it
 *      overlaps, skipping any group touching a running L0 compaction and
 *      any SSTable overlapping the range being compacted, at most the 32
 *      oldest, and at least l0_compaction_trigger of them (Sibyl's option,
 *      1 by default: Cassandra's rule alone); above sstable_size the
 *      overlapping L1 SSTables join (none compacting); at least 2 SSTables
 *      in all; else STCS in L0 above 32. If that merge would leave L1
 *      over its limit and L1 has a move (room_before_merge), the move
 *      comes first;
 *   3. the largest SSTable worth a tombstone compaction, kept at its level.
 * Outputs (getNextLevel): all inputs in L0 and less than sstable_size in
 * total -> L0; all in one level L -> L+1; else the highest input level.
 * They are split every sstable_size bytes, so they never overlap each other.
 *
 * Starvation guard (getOverlappingStarvedSSTables): each compaction chosen
 * in step 1 counts a round for every level but its target; when the highest
 * non-empty level has gone more than 25 rounds, one of its SSTables lying
 * wholly inside the compaction's key range (not compacting) joins it, so a
 * level left too small for its score still drains.
 */
#include "cm_int.h"

#include <stdlib.h>

enum { LCS_MAX_L0 = 32 };        /* MAX_COMPACTING_L0 and the STCS-in-L0 threshold */
enum { LCS_NO_COMPACTION_LIMIT = 25 }; /* rounds before a starved level is drained */
enum { LCS_MAX_MOVE = 4 };       /* SSTables in one move (RocksDB's kMaxMultiTrivialMove) */

typedef struct keyed { int64_t key; size_t i; } keyed;

static int keyed_cmp(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static bool overlaps(int64_t a_first, int64_t a_last, const cm_sst *b)
{
    return a_first <= b->last_token && b->first_token <= a_last;
}

uint64_t cm_lcs_max_bytes(const cm_options *o, uint32_t level)
{
    if (level == 0) return 4 * o->sstable_size;
    uint64_t b = o->sstable_size;
    for (uint32_t i = 0; i < level; i++) {
        if (b > UINT64_MAX / SIB_MAX(o->fanout_size, 1u)) return UINT64_MAX;
        b *= SIB_MAX(o->fanout_size, 1u);
    }
    return b;
}

/* Indexes of the SSTables at level L (lvl[]), sorted by key (first token or
 * max timestamp); *m their count. Caller frees. */
static keyed *level_sorted(const cm_sst *ssts, size_t n, const uint32_t *lvl, uint32_t L, bool by_age, size_t *m)
{
    keyed *v = malloc((n ? n : 1) * sizeof *v);
    *m = 0;
    if (!v) return NULL;
    for (size_t i = 0; i < n; i++)
        if (lvl[i] == L) v[(*m)++] = (keyed){by_age ? ssts[i].max_ts : ssts[i].first_token, i};
    qsort(v, *m, sizeof *v, keyed_cmp);
    return v;
}

void cm_lcs_levels(const cm_sst *ssts, size_t n, uint32_t *lvl)
{
    for (size_t i = 0; i < n; i++) lvl[i] = ssts[i].level < CM_MAX_LEVELS ? ssts[i].level : 0;
    for (uint32_t L = 1; L < CM_MAX_LEVELS; L++) {
        size_t m;
        keyed *v = level_sorted(ssts, n, lvl, L, false, &m);
        if (!v) return;
        bool have = false;
        int64_t last = 0;
        for (size_t k = 0; k < m; k++) {
            const cm_sst *s = &ssts[v[k].i];
            if (have && s->first_token <= last) {
                lvl[v[k].i] = 0; /* overlaps its level: back to L0 */
                continue;
            }
            have = true;
            last = s->last_token;
        }
        free(v);
    }
}

/* getNextLevel over the picked SSTables. */
static uint32_t next_level(const cm_options *o, const cm_sst *ssts, const uint32_t *lvl, const size_t *pick, size_t np,
                           uint32_t *min_out)
{
    uint32_t mn = UINT32_MAX, mx = 0;
    uint64_t bytes = 0;
    for (size_t k = 0; k < np; k++) {
        mn = SIB_MIN(mn, lvl[pick[k]]);
        mx = SIB_MAX(mx, lvl[pick[k]]);
        bytes += ssts[pick[k]].size;
    }
    *min_out = mn;
    uint32_t L = mn == 0 && mx == 0 && bytes < o->sstable_size ? 0 : mn == mx ? mx + 1 : mx;
    return SIB_MIN(L, (uint32_t)CM_MAX_LEVELS - 1);
}

static void choose(const cm_options *o, const cm_sst *ssts, const uint32_t *lvl, const size_t *pick, size_t np,
                   cm_choice *out)
{
    out->n = np;
    out->tombstone = false;
    out->level = next_level(o, ssts, lvl, pick, np, &out->min_input_level);
    out->max_output_bytes = o->sstable_size;
}

/* STCS over the L0 SSTables when there are more than 32 of them. */
static bool stcs_in_l0(const cm_options *o, const cm_sst *ssts, size_t n, const uint32_t *lvl, size_t *pick,
                       cm_choice *out)
{
    size_t n0 = 0;
    for (size_t i = 0; i < n; i++) n0 += lvl[i] == 0 && !ssts[i].compacting;
    if (n0 <= LCS_MAX_L0) return false;
    cm_sst *v = malloc(n0 * sizeof *v);
    size_t *map = malloc(n0 * sizeof *map), *sub = malloc(n0 * sizeof *sub);
    size_t k = 0, np = 0;
    if (v && map && sub) {
        for (size_t i = 0; i < n; i++)
            if (lvl[i] == 0 && !ssts[i].compacting) v[k] = ssts[i], map[k++] = i;
        cm_options so = *o;
        so.min_threshold = 4;
        so.max_threshold = LCS_MAX_L0;
        np = cm_stcs_pick_bucket(&so, v, k, sub);
        for (size_t x = 0; x < np; x++) pick[x] = map[sub[x]];
    }
    free(v);
    free(map);
    free(sub);
    if (!np) return false;
    *out = (cm_choice){.n = np, .level = 0, .min_input_level = 0, .max_output_bytes = 0};
    return true;
}

/* getOverlappingStarvedSSTables: counts the round, and may add one SSTable
 * of the highest non-empty level to pick[0..out->n). */
static void add_starved(cm_strategy *st, const cm_sst *ssts, size_t n, const uint32_t *lvl, size_t *pick,
                        cm_choice *out)
{
    for (uint32_t i = 1; i < CM_MAX_LEVELS; i++) st->rounds_idle[i]++;
    st->rounds_idle[out->level] = 0;
    int64_t first = INT64_MAX, last = INT64_MIN;
    for (size_t k = 0; k < out->n; k++) {
        first = SIB_MIN(first, ssts[pick[k]].first_token);
        last = SIB_MAX(last, ssts[pick[k]].last_token);
    }
    for (uint32_t L = CM_MAX_LEVELS - 1; L >= 1; L--) {
        bool any = false;
        for (size_t i = 0; i < n && !any; i++) any = lvl[i] == L;
        if (!any) continue;
        if (st->rounds_idle[L] <= LCS_NO_COMPACTION_LIMIT || first == last) return;
        for (size_t i = 0; i < n; i++) {
            bool in = false;
            for (size_t k = 0; k < out->n && !in; k++) in = pick[k] == i;
            if (in || lvl[i] != L || ssts[i].compacting) continue;
            if (ssts[i].first_token < first || ssts[i].last_token > last) continue;
            pick[out->n++] = i; /* within the range: its data moves down without overlapping */
            return;
        }
        return;
    }
}

/* Whether s overlaps no SSTable of level L. */
static bool alone_in(const cm_sst *ssts, size_t n, const uint32_t *lvl, uint32_t L, const cm_sst *s)
{
    for (size_t i = 0; i < n; i++)
        if (lvl[i] == L && overlaps(s->first_token, s->last_token, &ssts[i])) return false;
    return true;
}

/* Whether s, of level L, can move to L+1 by its metadata: not compacting,
 * no larger than a move allows (compact.c: 1.25 x sstable_size) and
 * overlapping nothing in L+1. */
static bool movable(const cm_options *o, const cm_sst *ssts, size_t n, const uint32_t *lvl, uint32_t L,
                    const cm_sst *s)
{
    return !s->compacting && s->size <= o->sstable_size + o->sstable_size / 4 && alone_in(ssts, n, lvl, L + 1, s);
}

/* A move (the SSTable at v[at] of level L overlaps nothing in L+1, pick[0])
 * takes the SSTables after it in key order along while each overlaps
 * nothing in L+1 either, is not compacting and no larger than a move
 * allows (compact.c), up to LCS_MAX_MOVE in all, no wrapping round. As
 * RocksDB's trivial moves: moving costs nothing, and a level left further
 * below its limit makes the next merge into it (L0's into L1 takes all of
 * L1 under uniform keys) rewrite less. Returns the SSTables picked. */
static size_t extend_move(const cm_options *o, const cm_sst *ssts, size_t n, const uint32_t *lvl, uint32_t L,
                          const keyed *v, size_t m, size_t at, size_t *pick)
{
    size_t np = 1;
    if (L + 1 >= CM_MAX_LEVELS || ssts[v[at].i].size > o->sstable_size + o->sstable_size / 4)
        return np; /* it is rewritten: alone */
    for (size_t k = at + 1; k < m && np < LCS_MAX_MOVE && movable(o, ssts, n, lvl, L, &ssts[v[k].i]); k++)
        pick[np++] = v[k].i;
    return np;
}

/* getCandidatesFor(L), L >= 1: the next SSTable of L in key order after the
 * last one compacted there, with what it overlaps in L+1. */
static bool level_candidates(const cm_strategy *st, const cm_options *o, const cm_sst *ssts, size_t n,
                             const uint32_t *lvl, uint32_t L, size_t *pick, cm_choice *out)
{
    size_t m;
    keyed *v = level_sorted(ssts, n, lvl, L, false, &m);
    if (!v) return false;
    size_t start = 0;
    if (st->has_last[L])
        while (start < m && ssts[v[start].i].first_token <= st->last_token[L]) start++;
    bool found = false;
    for (size_t k = 0; k < m && !found; k++) {
        const cm_sst *s = &ssts[v[(start + k) % m].i];
        if (s->compacting) continue;
        size_t np = 0;
        pick[np++] = v[(start + k) % m].i;
        bool busy = false;
        for (size_t i = 0; i < n && L + 1 < CM_MAX_LEVELS; i++) {
            if (lvl[i] != L + 1 || !overlaps(s->first_token, s->last_token, &ssts[i])) continue;
            busy |= ssts[i].compacting;
            pick[np++] = i;
        }
        if (busy) continue;
        if (np == 1) np = extend_move(o, ssts, n, lvl, L, v, m, (start + k) % m, pick);
        choose(o, ssts, lvl, pick, np, out);
        found = true;
    }
    free(v);
    return found;
}

/* An L0 merge into L1 (pick[0..out->n)) that would leave L1 over its limit:
 * the excess goes down to L2 right after it anyway, so if L1 has a move
 * (an SSTable overlapping nothing in L2, round robin from where L1 stands)
 * it goes first, free, instead of being rewritten by the merge. Replaces
 * the choice with the move; moves only, never an L1 merge ahead of L0. */
static void room_before_merge(const cm_strategy *st, const cm_options *o, const cm_sst *ssts, size_t n,
                              const uint32_t *lvl, size_t *pick, cm_choice *out)
{
    uint64_t after = 0;
    for (size_t k = 0; k < out->n; k++) after += lvl[pick[k]] == 0 ? ssts[pick[k]].size : 0;
    for (size_t i = 0; i < n; i++) after += lvl[i] == 1 ? ssts[i].size : 0;
    if ((double)after <= 1.001 * (double)cm_lcs_max_bytes(o, 1)) return;
    size_t m;
    keyed *v = level_sorted(ssts, n, lvl, 1, false, &m);
    if (!v) return;
    size_t start = 0;
    if (st->has_last[1])
        while (start < m && ssts[v[start].i].first_token <= st->last_token[1]) start++;
    for (size_t k = 0; k < m; k++) {
        size_t at = (start + k) % m;
        if (!movable(o, ssts, n, lvl, 1, &ssts[v[at].i])) continue;
        pick[0] = v[at].i;
        choose(o, ssts, lvl, pick, extend_move(o, ssts, n, lvl, 1, v, m, at, pick), out);
        break;
    }
    free(v);
}

/* getCandidatesFor(0). */
static bool l0_candidates(const cm_options *o, const cm_sst *ssts, size_t n, const uint32_t *lvl, size_t *pick,
                          cm_choice *out)
{
    size_t m;
    keyed *age = level_sorted(ssts, n, lvl, 0, true, &m);
    bool *in = calloc(n ? n : 1, sizeof *in), *gone = calloc(n ? n : 1, sizeof *gone);
    bool ok = false;
    if (!age || !in || !gone) goto out;
    /* the key range of the L0 compactions running */
    bool busy = false;
    int64_t cf = INT64_MAX, cl = INT64_MIN;
    for (size_t k = 0; k < m; k++) {
        const cm_sst *s = &ssts[age[k].i];
        if (!s->compacting) continue;
        busy = true;
        cf = SIB_MIN(cf, s->first_token);
        cl = SIB_MAX(cl, s->last_token);
    }
    size_t np = 0;
    for (size_t k = 0; k < m; k++) {
        size_t i = age[k].i;
        if (in[i] || gone[i]) continue;
        /* i with every remaining L0 SSTable it overlaps; none compacting */
        bool touches = false;
        for (size_t x = 0; x < m && !touches; x++) {
            size_t j = age[x].i;
            if (gone[j] || !(j == i || overlaps(ssts[i].first_token, ssts[i].last_token, &ssts[j]))) continue;
            touches = ssts[j].compacting;
        }
        if (touches) continue;
        for (size_t x = 0; x < m; x++) {
            size_t j = age[x].i;
            if (gone[j] || !(j == i || overlaps(ssts[i].first_token, ssts[i].last_token, &ssts[j]))) continue;
            if (!busy || !overlaps(cf, cl, &ssts[j])) in[j] = true;
            gone[j] = true;
        }
        np = 0;
        for (size_t x = 0; x < m; x++) np += in[age[x].i];
        if (np > LCS_MAX_L0) break;
    }
    /* the 32 oldest candidates at most */
    np = 0;
    uint64_t bytes = 0;
    int64_t first = INT64_MAX, last = INT64_MIN;
    for (size_t x = 0; x < m && np < LCS_MAX_L0; x++) {
        size_t i = age[x].i;
        if (!in[i]) continue;
        pick[np++] = i;
        bytes += ssts[i].size;
        first = SIB_MIN(first, ssts[i].first_token);
        last = SIB_MAX(last, ssts[i].last_token);
    }
    /* l0_compaction_trigger: each L0 -> L1 merge rewrites the L1 SSTables
     * in its range (all of L1 under uniform keys), so taking flushes in
     * batches of at least this many bounds how often L1 is rewritten,
     * whatever the speed of the writes against the compactions */
    if (np < o->l0_compaction_trigger) goto out;
    if (np && bytes > o->sstable_size) {
        /* the union range, not each candidate: an L1 SSTable between two
         * candidates would overlap the output */
        if (busy && overlaps(first, last, &(cm_sst){.first_token = cf, .last_token = cl})) goto out;
        for (size_t i = 0; i < n; i++) {
            if (lvl[i] != 1 || !overlaps(first, last, &ssts[i])) continue;
            if (ssts[i].compacting) goto out;
            pick[np++] = i;
        }
    }
    if (np < 2) goto out;
    choose(o, ssts, lvl, pick, np, out);
    ok = true;
out:
    free(age);
    free(in);
    free(gone);
    return ok;
}

void cm_lcs_pick(cm_strategy *st, const cm_options *o, const cm_sst *ssts, size_t n, int64_t now_s,
                 int32_t gc_before, size_t *pick, cm_choice *out)
{
    *out = (cm_choice){.n = 0};
    if (!o->enabled || !n) return;
    uint32_t *lvl = malloc(n * sizeof *lvl);
    if (!lvl) return;
    cm_lcs_levels(ssts, n, lvl);
    for (uint32_t L = CM_MAX_LEVELS - 1; L >= 1; L--) {
        uint64_t bytes = 0;
        for (size_t i = 0; i < n; i++)
            if (lvl[i] == L && !ssts[i].compacting) bytes += ssts[i].size;
        if (!bytes || (double)bytes <= 1.001 * (double)cm_lcs_max_bytes(o, L)) continue;
        if (stcs_in_l0(o, ssts, n, lvl, pick, out)) goto done;
        if (level_candidates(st, o, ssts, n, lvl, L, pick, out)) {
            add_starved(st, ssts, n, lvl, pick, out);
            goto done;
        }
    }
    if (l0_candidates(o, ssts, n, lvl, pick, out)) {
        if (out->level == 1) room_before_merge(st, o, ssts, n, lvl, pick, out);
        goto done;
    }
    if (stcs_in_l0(o, ssts, n, lvl, pick, out)) goto done;
    size_t t = cm_pick_tombstone(o, ssts, n, now_s, gc_before, true);
    if (t != SIZE_MAX) {
        pick[0] = t;
        *out = (cm_choice){.n = 1, .tombstone = true, .level = lvl[t], .min_input_level = lvl[t],
                           .max_output_bytes = o->sstable_size};
    }
done:
    free(lvl);
}
