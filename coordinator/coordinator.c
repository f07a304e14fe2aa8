/* coordinator.c: ring, replication strategies and consistency arithmetic.
 *
 * Replica walk (Cassandra's SimpleStrategy.calculateNaturalEndpoints): start
 * at the first ring token >= the key's token (wrapping), add each token's
 * owner unless already chosen, stop at rf members or when the ring is
 * exhausted. NetworkTopologyStrategy fills every datacenter in the same
 * walk and spreads each datacenter's replicas over its racks (nts_replicas).
 * blockFor uses the replication factor, not the number of members found, so
 * RF 3 on a one-node cluster makes QUORUM unavailable, as in Cassandra.
 */
#include "coord_int.h"

#include <stdlib.h>
#include <strings.h>
#include <sys/types.h>

static const char *const cl_names[] = {
    "ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM",
    "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE",
};

const char *coord_cl_name(int cl)
{
    if (cl < 0 || (size_t)cl >= SIB_ARRAY_LEN(cl_names)) return "UNKNOWN";
    return cl_names[cl];
}

/* ---- replication options ---- */

static const char SIMPLE[] = "org.apache.cassandra.locator.SimpleStrategy";
static const char NTS[] = "org.apache.cassandra.locator.NetworkTopologyStrategy";
static const char LOCAL[] = "org.apache.cassandra.locator.LocalStrategy";
static const char EVERYWHERE[] = "org.apache.cassandra.locator.EverywhereStrategy";

static int parse_rf(const char *v, const char *what, int *out, sib_err *err)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 0 || n > 1000)
        return sib_err_set(err, SIB_ECONFIG, "Replication factor must be non-negative integer value for %s (got '%s')",
                           what, v);
    *out = (int)n;
    return 0;
}

static const char *class_of(const char *c)
{
    const char *base = strrchr(c, '.') ? strrchr(c, '.') + 1 : c;
    if (!strcmp(base, "SimpleStrategy")) return SIMPLE;
    if (!strcmp(base, "NetworkTopologyStrategy")) return NTS;
    if (!strcmp(base, "LocalStrategy")) return LOCAL;
    if (!strcmp(base, "EverywhereStrategy")) return EVERYWHERE;
    return NULL;
}

int coord_repl_parse(const char *const *keys, const char *const *vals, size_t n, coord_repl *out,
                     const char **full_class, sib_err *err)
{
    memset(out, 0, sizeof *out);
    const char *cls = NULL;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(keys[i], "class")) cls = vals[i];
    if (!cls) return sib_err_set(err, SIB_ECONFIG, "Missing replication strategy class");
    const char *full = class_of(cls);
    if (!full) return sib_err_set(err, SIB_ECONFIG, "Unable to find replication strategy class '%s'", cls);
    if (full_class) *full_class = full;

    if (full == SIMPLE) {
        out->kind = REPL_SIMPLE;
        bool have = false;
        for (size_t i = 0; i < n; i++) {
            if (!strcmp(keys[i], "class")) continue;
            if (strcmp(keys[i], "replication_factor"))
                return sib_err_set(err, SIB_ECONFIG, "Unrecognized strategy option {%s} passed to SimpleStrategy for keyspace",
                                   keys[i]);
            if (parse_rf(vals[i], "replication_factor", &out->rf, err)) return err ? err->code : SIB_ECONFIG;
            have = true;
        }
        if (!have) return sib_err_set(err, SIB_ECONFIG, "SimpleStrategy requires a replication_factor strategy option.");
        return 0;
    }
    if (full == NTS) {
        out->kind = REPL_NTS;
        for (size_t i = 0; i < n; i++) {
            if (!strcmp(keys[i], "class")) continue;
            if (out->ndcs == COORD_MAX_DCS) return sib_err_set(err, SIB_ECONFIG, "too many datacenters (max %d)", COORD_MAX_DCS);
            if (strlen(keys[i]) >= sizeof out->dcs[0].dc)
                return sib_err_set(err, SIB_ECONFIG, "datacenter name too long: %s", keys[i]);
            int rf = 0;
            if (parse_rf(vals[i], keys[i], &rf, err)) return err ? err->code : SIB_ECONFIG;
            /* 'replication_factor' in NTS means "this many in every known DC"
             * (Cassandra 4.0); on one node that is the local DC. */
            strcpy(out->dcs[out->ndcs].dc, keys[i]);
            out->dcs[out->ndcs].rf = rf;
            out->ndcs++;
        }
        return 0;
    }
    out->kind = full == LOCAL ? REPL_LOCAL : REPL_EVERYWHERE;
    out->rf = 1;
    return 0;
}

int coord_repl_total(const coord_repl *r)
{
    switch (r->kind) {
    case REPL_SIMPLE: return r->rf;
    case REPL_NTS: {
        int t = 0;
        for (int i = 0; i < r->ndcs; i++) t += r->dcs[i].rf;
        return t;
    }
    default: return 1;
    }
}

/* ---- ring ---- */

static int cmp_entry(const void *a, const void *b)
{
    int64_t x = ((const ring_entry *)a)->token, y = ((const ring_entry *)b)->token;
    return (x > y) - (x < y);
}

coord *coord_create(const coord_member_opts *local, sib_log *log)
{
    coord *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->log = log;
    c->members = calloc(1, sizeof *c->members);
    c->ring = calloc(local->ntokens ? local->ntokens : 1, sizeof *c->ring);
    if (!c->members || !c->ring) { coord_destroy(c); return NULL; }
    member *m = &c->members[0];
    snprintf(m->addr, sizeof m->addr, "%s", local->addr);
    snprintf(m->dc, sizeof m->dc, "%s", local->dc);
    snprintf(m->rack, sizeof m->rack, "%s", local->rack);
    memcpy(m->host_id, local->host_id, 16);
    m->port = local->port;
    m->alive = true;
    c->nmembers = 1;
    for (size_t i = 0; i < local->ntokens; i++) c->ring[i] = (ring_entry){local->tokens[i], 0};
    c->nring = local->ntokens;
    qsort(c->ring, c->nring, sizeof *c->ring, cmp_entry);
    return c;
}

void coord_destroy(coord *c)
{
    if (!c) return;
    coord_writes_free(c);
    coord_reads_free(c);
    coord_batchlog_free(c);
    coord_ranges_free(c);
    free(c->members);
    free(c->ring);
    free(c);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void coord_random_tokens(sib_rng *rng, int64_t *out, size_t n)
{
    for (;;) {
        for (size_t i = 0; i < n; i++) {
            int64_t t = (int64_t)sib_rng_next(rng);
            out[i] = t == INT64_MIN ? INT64_MIN + 1 : t; /* MIN is the ring's minimum, never owned */
        }
        qsort(out, n, sizeof *out, cmp_i64);
        bool dup = false;
        for (size_t i = 1; i < n; i++) dup |= out[i] == out[i - 1];
        if (!dup) return;
    }
}

size_t coord_members(const coord *c) { return c->nmembers; }

const char *coord_member_addr(const coord *c, size_t i) { return i < c->nmembers ? c->members[i].addr : ""; }

bool coord_member_alive(const coord *c, size_t i) { return i < c->nmembers && c->members[i].alive; }

const char *coord_member_dc(const coord *c, size_t i) { return i < c->nmembers ? c->members[i].dc : ""; }

uint16_t coord_member_port(const coord *c, size_t i)
{
    if (i >= c->nmembers) return 0;
    return c->members[i].port ? c->members[i].port : c->members[0].port;
}

const char *coord_member_rack(const coord *c, size_t i) { return i < c->nmembers ? c->members[i].rack : ""; }

size_t coord_ring_size(const coord *c) { return c->nring; }

int64_t coord_ring_token(const coord *c, size_t i) { return i < c->nring ? c->ring[i].token : INT64_MIN; }

static ssize_t member_index(const coord *c, const char *addr)
{
    for (size_t i = 0; i < c->nmembers; i++)
        if (!strcmp(c->members[i].addr, addr)) return (ssize_t)i;
    return -1;
}

/* Ring entries of every member but `skip`, plus `add` tokens for member
 * `owner`; sorted, and a token already present keeps its first owner. */
static int ring_rebuild(coord *c, size_t owner, const int64_t *add, size_t nadd)
{
    size_t keep = 0;
    for (size_t i = 0; i < c->nring; i++) keep += c->ring[i].member != owner;
    ring_entry *r = calloc(keep + nadd + 1, sizeof *r);
    if (!r) return SIB_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < c->nring; i++)
        if (c->ring[i].member != owner) r[n++] = c->ring[i];
    qsort(r, n, sizeof *r, cmp_entry);
    size_t base = n;
    for (size_t k = 0; k < nadd; k++) {
        ring_entry key = {add[k], owner};
        if (bsearch(&key, r, base, sizeof *r, cmp_entry)) {
            sib_log(c->log, SIB_WARN, "coordinator: token %lld of %s is already owned; ignoring it", (long long)add[k],
                    c->members[owner].addr);
            continue;
        }
        r[n++] = key;
    }
    qsort(r, n, sizeof *r, cmp_entry);
    free(c->ring);
    c->ring = r;
    c->nring = n;
    return 0;
}

int coord_member_update(coord *c, const coord_member_opts *m)
{
    ssize_t idx = member_index(c, m->addr);
    if (idx == 0) return SIB_EINVAL;
    if (idx < 0) {
        member *mm = realloc(c->members, (c->nmembers + 1) * sizeof *mm);
        if (!mm) return SIB_ENOMEM;
        c->members = mm;
        idx = (ssize_t)c->nmembers;
        memset(&mm[idx], 0, sizeof *mm);
        snprintf(mm[idx].addr, sizeof mm[idx].addr, "%s", m->addr);
        c->nmembers++;
    }
    member *mb = &c->members[idx];
    mb->removed = false;
    snprintf(mb->dc, sizeof mb->dc, "%s", m->dc);
    snprintf(mb->rack, sizeof mb->rack, "%s", m->rack);
    memcpy(mb->host_id, m->host_id, 16);
    mb->port = m->port;
    c->ring_changed_us = sib_now_us(); /* the batchlog replays only on a settled ring */
    return ring_rebuild(c, (size_t)idx, m->tokens, m->ntokens);
}

void coord_member_set_alive(coord *c, const char *addr, bool alive)
{
    ssize_t idx = member_index(c, addr);
    if (idx > 0 && !c->members[idx].removed) c->members[idx].alive = alive;
}

bool coord_member_in_ring(const coord *c, const char *addr)
{
    ssize_t idx = member_index(c, addr);
    return idx >= 0 && !c->members[idx].removed;
}

bool coord_member_remove(coord *c, const char *addr)
{
    ssize_t idx = member_index(c, addr);
    if (idx <= 0 || c->members[idx].removed) return false;
    /* dropping tokens only shrinks the ring: nothing to allocate */
    size_t n = 0;
    for (size_t i = 0; i < c->nring; i++)
        if (c->ring[i].member != (size_t)idx) c->ring[n++] = c->ring[i];
    c->nring = n;
    member *mb = &c->members[idx];
    mb->removed = true;
    mb->alive = false;
    /* no datacenter or rack: NTS counts and the datacenter list skip it */
    mb->dc[0] = mb->rack[0] = 0;
    sib_log(c->log, SIB_INFO, "coordinator: %s removed from the ring (%zu tokens left)", addr, c->nring);
    return true;
}
const char *coord_local_dc(const coord *c) { return c->members[0].dc; }

/* First ring index whose token is >= t (wrapping to 0). */
size_t ring_first(const coord *c, int64_t t)
{
    size_t lo = 0, hi = c->nring;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->ring[mid].token < t) lo = mid + 1; else hi = mid;
    }
    return lo == c->nring ? 0 : lo;
}

static bool chosen(const size_t *out, size_t n, size_t m)
{
    for (size_t i = 0; i < n; i++)
        if (out[i] == m) return true;
    return false;
}

static int dc_rf(const coord_repl *r, const char *dc)
{
    for (int i = 0; i < r->ndcs; i++)
        if (!strcmp(r->dcs[i].dc, dc) || !strcmp(r->dcs[i].dc, "replication_factor")) return r->dcs[i].rf;
    return 0;
}

/* NetworkTopologyStrategy, as Cassandra's calculateNaturalEndpoints does it:
 * one clockwise walk fills every datacenter at once. Within a datacenter a
 * member on a rack not seen yet is always taken; a member on a rack already
 * used is taken only while the datacenter has fewer racks than its rf
 * ("rack repeats": rf - racks), so replicas land on distinct racks whenever
 * there are enough of them, and the first members met fill the rest
 * otherwise. A datacenter with fewer members than its rf gets them all. */
static size_t nts_replicas(const coord *c, const coord_repl *r, size_t start, size_t *out, size_t cap)
{
    int left[COORD_MAX_DCS], repeats[COORD_MAX_DCS], to_fill = 0;
    for (int d = 0; d < r->ndcs; d++) {
        int nodes = 0, racks = 0;
        for (size_t m = 0; m < c->nmembers; m++) {
            if (strcmp(c->members[m].dc, r->dcs[d].dc)) continue;
            nodes++;
            bool first_of_rack = true; /* count each rack at its first member */
            for (size_t k = 0; k < m && first_of_rack; k++)
                first_of_rack = strcmp(c->members[k].dc, r->dcs[d].dc) || strcmp(c->members[k].rack, c->members[m].rack);
            racks += first_of_rack;
        }
        left[d] = r->dcs[d].rf < nodes ? r->dcs[d].rf : nodes;
        repeats[d] = r->dcs[d].rf - racks;
        to_fill += left[d] > 0;
    }
    size_t n = 0;
    for (size_t k = 0; k < c->nring && n < cap && to_fill > 0; k++) {
        size_t m = c->ring[(start + k) % c->nring].member;
        const member *mb = &c->members[m];
        int d = 0;
        while (d < r->ndcs && strcmp(r->dcs[d].dc, mb->dc)) d++;
        if (d == r->ndcs || left[d] == 0 || chosen(out, n, m)) continue;
        bool new_rack = true;
        for (size_t i = 0; i < n && new_rack; i++)
            new_rack = strcmp(c->members[out[i]].dc, mb->dc) || strcmp(c->members[out[i]].rack, mb->rack);
        if (!new_rack) {
            if (repeats[d] <= 0) continue; /* the racks still unseen must get the rest */
            repeats[d]--;
        }
        out[n++] = m;
        if (--left[d] == 0) to_fill--;
    }
    return n;
}

size_t coord_replicas(const coord *c, const coord_repl *r, int64_t token, size_t *out, size_t cap)
{
    size_t n = 0;
    if (r->kind == REPL_LOCAL) {
        if (cap) out[n++] = 0;
        return n;
    }
    if (r->kind == REPL_EVERYWHERE) {
        for (size_t m = 0; m < c->nmembers && n < cap; m++)
            if (!c->members[m].removed) out[n++] = m;
        return n;
    }
    if (!c->nring) return 0;
    if (c->nmembers == 1 && r->kind == REPL_SIMPLE) { /* one node owns the whole ring: no search for the token */
        if (cap && r->rf > 0) out[n++] = c->ring[0].member;
        return n;
    }
    size_t start = ring_first(c, token);
    if (r->kind == REPL_NTS) return nts_replicas(c, r, start, out, cap);
    for (size_t k = 0; k < c->nring && n < cap && (int)n < r->rf; k++) {
        size_t m = c->ring[(start + k) % c->nring].member;
        if (!chosen(out, n, m)) out[n++] = m;
    }
    return n;
}

int coord_block_for(const coord *c, const coord_repl *r, int cl)
{
    int total = coord_repl_total(r);
    int local = r->kind == REPL_NTS ? dc_rf(r, coord_local_dc(c)) : total;
    switch (cl) {
    case CL_ANY: case CL_ONE: case CL_LOCAL_ONE: return 1;
    case CL_TWO: return 2;
    case CL_THREE: return 3;
    case CL_QUORUM: case CL_SERIAL: return total / 2 + 1;
    case CL_ALL: return total;
    case CL_LOCAL_QUORUM: case CL_LOCAL_SERIAL: return local / 2 + 1;
    case CL_EACH_QUORUM: {
        if (r->kind != REPL_NTS) return total / 2 + 1;
        int sum = 0;
        for (int i = 0; i < r->ndcs; i++) sum += r->dcs[i].rf / 2 + 1;
        return sum;
    }
    default: return total;
    }
}

static int unavailable(sib_err *err, int cl, const char *dc, int need, int alive)
{
    if (dc)
        sib_err_set(err, SIB_EUNAVAIL, "Cannot achieve consistency level %s in DC %s", coord_cl_name(cl), dc);
    else
        sib_err_set(err, SIB_EUNAVAIL, "Cannot achieve consistency level %s", coord_cl_name(cl));
    if (err) { err->ex[0] = cl; err->ex[1] = need; err->ex[2] = alive; }
    return SIB_EUNAVAIL;
}

/* Live replicas of `token`, counting only those of datacenter `dc` when it
 * is not NULL. */
static int live_replicas(const coord *c, const size_t *reps, size_t n, const char *dc)
{
    int alive = 0;
    for (size_t i = 0; i < n; i++) {
        const member *m = &c->members[reps[i]];
        if (m->alive && (!dc || !strcmp(m->dc, dc))) alive++;
    }
    return alive;
}

int coord_check(const coord *c, const coord_repl *r, int cl, bool is_write, int64_t token, sib_err *err)
{
    if (cl < CL_ANY || cl > CL_LOCAL_ONE) return sib_err_set(err, SIB_EPROTO, "Unknown consistency level %d", cl);
    if (!is_write && cl == CL_ANY)
        return sib_err_set(err, SIB_EINVAL, "ANY ConsistencyLevel is only supported for writes");
    if (cl == CL_SERIAL || cl == CL_LOCAL_SERIAL) {
        /* The serial levels belong to lightweight transactions (Paxos), which
         * Sibyl does not have: a read at SERIAL would promise a linearizable
         * answer it cannot give, so it is refused rather than served as QUORUM. */
        if (is_write) return sib_err_set(err, SIB_EINVAL, "You must use conditional updates for serializable writes");
        return sib_err_set(err, SIB_EINVAL,
                           "%s reads need lightweight transactions, which Sibyl does not support; "
                           "use %s instead", coord_cl_name(cl), cl == CL_SERIAL ? "QUORUM" : "LOCAL_QUORUM");
    }

    /* The commonest check, a single node's SimpleStrategy keyspace at ONE:
     * its one replica is the ring's one member (as coord_replicas says),
     * so the answer is that member's liveness, without the walk. */
    if (cl == CL_ONE && r->kind == REPL_SIMPLE && r->rf > 0 && c->nmembers == 1 && c->nring)
        return c->members[c->ring[0].member].alive ? 0 : unavailable(err, cl, NULL, 1, 0);

    size_t reps[64];
    size_t n = coord_replicas(c, r, token, reps, SIB_ARRAY_LEN(reps));
    /* EACH_QUORUM needs a quorum in every datacenter on its own, as in
     * Cassandra's ReplicaPlans (accepted on reads since Cassandra 3.0). */
    if (cl == CL_EACH_QUORUM && r->kind == REPL_NTS) {
        for (int i = 0; i < r->ndcs; i++) {
            int need = r->dcs[i].rf / 2 + 1, alive = live_replicas(c, reps, n, r->dcs[i].dc);
            if (alive < need) return unavailable(err, cl, r->dcs[i].dc, need, alive);
        }
        return 0;
    }
    bool local_only = cl == CL_LOCAL_ONE || cl == CL_LOCAL_QUORUM;
    int alive = live_replicas(c, reps, n, local_only ? coord_local_dc(c) : NULL);
    /* ANY counts as 1: until hints exist it needs one live replica, because
     * nothing could keep the write for a replica that is down. */
    int need = coord_block_for(c, r, cl);
    if (alive < need || need == 0) return unavailable(err, cl, NULL, need, alive);
    return 0;
}
