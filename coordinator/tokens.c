/* tokens.c: choosing a joining node's vnode tokens so that ownership stays
 * balanced at a replication factor (Cassandra's
 * allocate_tokens_for_local_replication_factor, default 3), and measuring
 * that ownership.
 *
 * Why not random tokens: with 16 vnodes a node's share of the ring varies by
 * about 1/sqrt(16) = 25% around the mean, so some nodes would hold a quarter
 * more data than others. Cassandra's allocator (CASSANDRA-7032) instead
 * places each new token where it best evens out the *replicated* ownership,
 * the share of the ring a node holds a replica of at the given RF. This file
 * does the same in a simpler form, with the same inputs and goal:
 *
 *   ownership(m)   sum of the sizes of the ranges (prev, t] whose replica
 *                  walk (SimpleStrategy: clockwise from t, distinct members,
 *                  up to rf) includes m, as a fraction of the ring; the
 *                  fractions of all members add up to min(rf, members).
 *   target         every member's final share: min(rf, N) / N with N the
 *                  members after the join. While the joiner has placed k of
 *                  its n tokens, its own target is k/n of that.
 *   step           the candidates are the midpoints of every current range
 *                  (as Cassandra's); each is tried, the ownership of every
 *                  member recomputed, and the one with the smallest sum of
 *                  squared distances to the targets is kept. n steps.
 *
 * With fewer members than rf every member replicates everything, so the
 * replicated share says nothing; those joins balance plain ownership (rf 1)
 * instead, which is what later joins then split. The first member of a ring
 * takes n evenly spaced tokens from a random start.
 *
 * Cost: a step tries T candidates and each try walks the ring, O(T^2 * rf);
 * for 10 nodes of 16 tokens that is well under a millisecond per token.
 * Only start-up calls it.
 */
#include "coordinator.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

typedef struct slot {
    int64_t token;
    uint32_t owner;
} slot;

static int token_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A slot starts with its token, so slots sort by the same comparison. */
#define slot_cmp token_cmp

/* Size of the range ending at ring[i], as a fraction of the whole ring. */
static double range_frac(const slot *ring, size_t n, size_t i)
{
    if (n == 1) return 1.0;
    uint64_t prev = (uint64_t)ring[i == 0 ? n - 1 : i - 1].token;
    uint64_t size = (uint64_t)ring[i].token - prev; /* modulo 2^64: wraps at the end */
    return ldexp((double)size, -64);
}

/* ownership over a ring sorted by token; `seen` has room for nmembers. */
static void ownership_sorted(const slot *ring, size_t n, size_t nmembers, int rf, double *own, uint8_t *seen)
{
    for (size_t m = 0; m < nmembers; m++) own[m] = 0;
    for (size_t i = 0; i < n; i++) {
        double f = range_frac(ring, n, i);
        memset(seen, 0, nmembers);
        int found = 0;
        for (size_t j = 0; j < n && found < rf; j++) {
            uint32_t m = ring[(i + j) % n].owner;
            if (seen[m]) continue;
            seen[m] = 1;
            own[m] += f;
            found++;
        }
    }
}

int coord_ownership(const int64_t *tokens, const uint32_t *owners, size_t ntokens, size_t nmembers, int rf,
                    double *out, sib_err *err)
{
    for (size_t m = 0; m < nmembers; m++) out[m] = 0;
    if (ntokens == 0) return 0;
    slot *ring = malloc(ntokens * sizeof *ring);
    uint8_t *seen = malloc(nmembers);
    if (!ring || !seen) {
        free(ring);
        free(seen);
        return sib_err_set(err, SIB_ENOMEM, "ownership of %zu tokens", ntokens);
    }
    for (size_t i = 0; i < ntokens; i++) {
        if (owners[i] >= nmembers) {
            free(ring);
            free(seen);
            return sib_err_set(err, SIB_EINVAL, "token %zu names member %u of %zu", i, owners[i], nmembers);
        }
        ring[i] = (slot){tokens[i], owners[i]};
    }
    qsort(ring, ntokens, sizeof *ring, slot_cmp);
    ownership_sorted(ring, ntokens, nmembers, rf < 1 ? 1 : rf, out, seen);
    free(ring);
    free(seen);
    return 0;
}

/* Inserts s into the sorted ring (room for one more), keeping it sorted. */
static void ring_insert(slot *ring, size_t *n, slot s)
{
    size_t i = *n;
    while (i > 0 && ring[i - 1].token > s.token) {
        ring[i] = ring[i - 1];
        i--;
    }
    ring[i] = s;
    (*n)++;
}

static void ring_remove(slot *ring, size_t *n, int64_t token)
{
    size_t i = 0;
    while (i < *n && ring[i].token != token) i++;
    for (; i + 1 < *n; i++) ring[i] = ring[i + 1];
    (*n)--;
}

/* Midpoint of the range ending at ring[i]; false when the range is too small
 * to split or the midpoint would be the ring's minimum (never a real token). */
static bool range_mid(const slot *ring, size_t n, size_t i, int64_t *mid)
{
    uint64_t prev = (uint64_t)ring[i == 0 ? n - 1 : i - 1].token;
    uint64_t size = n == 1 ? UINT64_MAX : (uint64_t)ring[i].token - prev;
    if (size < 2) return false;
    *mid = (int64_t)(prev + size / 2);
    return *mid != INT64_MIN;
}

static double score(const double *own, size_t nmembers, uint32_t joiner, double target, double joiner_target)
{
    double s = 0;
    for (size_t m = 0; m < nmembers; m++) {
        double d = own[m] - (m == joiner ? joiner_target : target);
        s += d * d;
    }
    return s;
}

int coord_allocate_tokens(const int64_t *tokens, const uint32_t *owners, size_t ntokens, size_t nmembers, int rf,
                          sib_rng *rng, int64_t *out, size_t n, sib_err *err)
{
    if (n == 0) return 0;
    if (ntokens == 0) { /* the first member: evenly spaced from a random start */
        uint64_t start = sib_rng_next(rng), step = UINT64_MAX / n;
        for (size_t i = 0; i < n; i++) {
            out[i] = (int64_t)(start + step * i);
            if (out[i] == INT64_MIN) out[i]++;
        }
        qsort(out, n, sizeof *out, token_cmp);
        return 0;
    }
    size_t members = nmembers + 1, cap = ntokens + n;
    uint32_t joiner = (uint32_t)nmembers;
    slot *ring = malloc(cap * sizeof *ring);
    double *own = malloc(members * sizeof *own);
    uint8_t *seen = malloc(members);
    int rc = 0;
    if (!ring || !own || !seen) {
        rc = sib_err_set(err, SIB_ENOMEM, "token allocation over %zu tokens", ntokens);
        goto out;
    }
    for (size_t i = 0; i < ntokens; i++) {
        if (owners[i] >= nmembers) {
            rc = sib_err_set(err, SIB_EINVAL, "token %zu names member %u of %zu", i, owners[i], nmembers);
            goto out;
        }
        ring[i] = (slot){tokens[i], owners[i]};
    }
    size_t nring = ntokens;
    qsort(ring, nring, sizeof *ring, slot_cmp);
    int eff_rf = (size_t)rf >= members || rf < 1 ? 1 : rf;
    double target = (double)eff_rf / (double)members;
    for (size_t k = 0; k < n; k++) {
        double best = INFINITY, joiner_target = target * (double)(k + 1) / (double)n;
        int64_t best_tok = 0;
        bool have = false;
        size_t ncand = nring;
        for (size_t i = 0; i < ncand; i++) {
            int64_t mid;
            if (!range_mid(ring, nring, i, &mid)) continue;
            ring_insert(ring, &nring, (slot){mid, joiner});
            ownership_sorted(ring, nring, members, eff_rf, own, seen);
            double s = score(own, members, joiner, target, joiner_target);
            ring_remove(ring, &nring, mid);
            if (s < best) {
                best = s;
                best_tok = mid;
                have = true;
            }
        }
        if (!have) {
            rc = sib_err_set(err, SIB_EINVAL, "no room on the ring for another token");
            goto out;
        }
        ring_insert(ring, &nring, (slot){best_tok, joiner});
        out[k] = best_tok;
    }
    qsort(out, n, sizeof *out, token_cmp);
out:
    free(ring);
    free(own);
    free(seen);
    return rc;
}
