/* fd.c: the phi-accrual failure detector's arrival window, and the pure
 * rules gossip uses to compare digests and merge states.
 *
 * Arrival window (Cassandra's ArrivalWindow over ArrayBackedBoundedStats):
 * a ring of the last GSP_FD_WINDOW inter-arrival times with a running sum.
 * The first report seeds the ring with `initial` (2 x the gossip interval)
 * because the right mean depends on the cluster size and erring high only
 * delays a conviction, while erring low makes nodes flap. Intervals above
 * `max_interval` are dropped: a peer that was partitioned for a minute
 * must not teach the detector that minute-long silences are normal.
 *
 * phi: with exponentially distributed inter-arrival times of mean m,
 * P(no heartbeat for t) = e^(-t/m), so phi = -log10 of that = t / (m ln 10).
 * Cassandra computes t/m and multiplies by PHI_FACTOR = 1/ln 10 when it
 * compares with phi_convict_threshold; gsp_arrival_phi returns the product.
 * At the default threshold 8 a node is convicted after 8 ln 10 = 18.4 mean
 * intervals of silence: about 18 s with a 1 s gossip interval.
 */
#include "gossip.h"

#include <stdlib.h>

struct gsp_arrival {
    int64_t ring[GSP_FD_WINDOW];
    size_t next, count;
    int64_t sum;
    int64_t last_ns; /* 0 = no report yet */
    int64_t initial_ns, max_interval_ns;
};

gsp_arrival *gsp_arrival_create(int64_t initial_ns, int64_t max_interval_ns)
{
    gsp_arrival *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->initial_ns = initial_ns;
    a->max_interval_ns = max_interval_ns;
    return a;
}

void gsp_arrival_destroy(gsp_arrival *a) { free(a); }

static void add_interval(gsp_arrival *a, int64_t v)
{
    if (a->count == GSP_FD_WINDOW) a->sum -= a->ring[a->next];
    else a->count++;
    a->ring[a->next] = v;
    a->sum += v;
    a->next = (a->next + 1) % GSP_FD_WINDOW;
}

void gsp_arrival_report(gsp_arrival *a, int64_t now_ns)
{
    if (a->last_ns > 0) {
        int64_t d = now_ns - a->last_ns;
        if (d <= a->max_interval_ns) add_interval(a, d);
    } else {
        add_interval(a, a->initial_ns);
    }
    a->last_ns = now_ns > 0 ? now_ns : 1;
}

double gsp_arrival_mean_ns(const gsp_arrival *a) { return a->count ? (double)a->sum / (double)a->count : 0.0; }

size_t gsp_arrival_count(const gsp_arrival *a) { return a->count; }

double gsp_arrival_phi(const gsp_arrival *a, int64_t now_ns)
{
    double mean = gsp_arrival_mean_ns(a);
    if (!a->last_ns || mean <= 0) return 0.0;
    return GSP_PHI_FACTOR * (double)(now_ns - a->last_ns) / mean;
}

void gsp_arrival_clear(gsp_arrival *a)
{
    a->next = a->count = 0;
    a->sum = 0;
    a->last_ns = 0;
}

/* ---- the TOKENS value ---- */

char *gsp_format_tokens(const int64_t *t, size_t n)
{
    sib_buf b;
    sib_buf_init(&b);
    for (size_t i = 0; i < n; i++) sib_buf_printf(&b, "%s%lld", i ? "," : "", (long long)t[i]);
    sib_buf_u8(&b, 0);
    if (b.oom) { sib_buf_free(&b); return NULL; }
    size_t len;
    return (char *)sib_buf_take(&b, &len);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

size_t gsp_parse_tokens(const char *s, int64_t **out)
{
    *out = NULL;
    if (!s || !*s) return 0;
    size_t n = 1;
    for (const char *p = s; *p; p++) n += *p == ',';
    int64_t *t = calloc(n, sizeof *t);
    if (!t) return 0;
    size_t k = 0;
    for (const char *p = s; *p && k < n;) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || (*end && *end != ',')) break;
        t[k++] = v;
        p = *end ? end + 1 : end;
    }
    qsort(t, k, sizeof *t, cmp_i64);
    *out = t;
    return k;
}

bool gsp_split_host_port(const char *s, char *host, size_t cap, int *port)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s || (size_t)(colon - s) >= cap) return false;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p <= 0 || p > 65535) return false;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    *port = (int)p;
    return true;
}

/* ---- digest and merge rules ---- */

gsp_digest_action gsp_digest_compare(bool known, int32_t local_gen, int32_t local_max, int32_t remote_gen,
                                     int32_t remote_max)
{
    if (!known || remote_gen > local_gen) return GSP_REQUEST_ALL;
    if (remote_gen < local_gen) return GSP_SEND_ALL;
    if (remote_max > local_max) return GSP_REQUEST_NEWER;
    if (remote_max < local_max) return GSP_SEND_NEWER;
    return GSP_IN_SYNC;
}

gsp_apply_action gsp_apply_rule(bool known, int32_t local_gen, int32_t local_max, int32_t remote_gen,
                                int32_t remote_max, int64_t now_s)
{
    /* A generation is a start time in seconds; one far in the future is
     * corruption that would otherwise win every comparison forever. */
    if ((int64_t)remote_gen > now_s + 365 * 86400) return GSP_APPLY_REJECT;
    if (!known) return GSP_APPLY_NEW;
    if (remote_gen > local_gen) return GSP_APPLY_RESTART;
    if (remote_gen == local_gen && remote_max > local_max) return GSP_APPLY_MERGE;
    return GSP_APPLY_IGNORE;
}
