/* gossip.h: cluster membership by gossip, and the phi-accrual failure
 * detector (Cassandra's Gossiper and FailureDetector; docs/membership.md).
 *
 * Every endpoint (this node included) has a state: a heartbeat
 * (generation = start time in seconds, version) and versioned values keyed
 * by Cassandra's ApplicationState ordinals (STATUS, TOKENS, HOST_ID, ...).
 * The owner bumps its heartbeat once a round and publishes a value with a
 * new version; every version of a node comes from one counter, so an
 * endpoint's "max version" orders everything it ever published.
 *
 * A round (every gossip interval, 1 s by default): SYN with a digest
 * (address, generation, max version) of every known endpoint to one random
 * live peer; sometimes to an unreachable one; to a seed when no live peer is
 * a seed. The peer answers ACK (digests it wants + states we lack), the
 * initiator sends ACK2 (the states asked for). Then every live peer's phi
 * is checked and a peer above phi_convict_threshold is marked DOWN.
 *
 * Invariants: an endpoint is UP only after it answered an ECHO (as
 * Cassandra's markAlive); a higher generation replaces a whole state; within
 * one generation a value changes only to a higher version; nothing about
 * this node is ever learned from others. Loop thread only; no globals.
 */
#ifndef SIB_GOSSIP_H
#define SIB_GOSSIP_H

#include "common.h"
#include "messaging.h"

struct ev_loop;

/* Application state keys: Cassandra's ApplicationState ordinals (the wire
 * ids; never renumber). */
typedef enum {
    GSP_STATUS = 0,
    GSP_LOAD = 1,
    GSP_SCHEMA = 2,
    GSP_DC = 3,
    GSP_RACK = 4,
    GSP_RELEASE_VERSION = 5,
    GSP_RPC_ADDRESS = 8,
    GSP_NET_VERSION = 11,
    GSP_HOST_ID = 12,
    GSP_TOKENS = 13,
    GSP_RPC_READY = 14,
    GSP_NATIVE_ADDRESS_AND_PORT = 16,
    GSP_NSTATES = 20,
} gsp_key;

/* Cassandra's name of a key ("STATUS"); NULL for an unused ordinal. */
const char *gsp_key_name(int key);

/* The TOKENS value: decimal tokens separated by commas (Sibyl's spelling;
 * Cassandra's is a binary blob). format returns a malloc'd string (NULL on
 * OOM); parse returns how many tokens it read into a malloc'd, sorted
 * array (*out NULL and 0 on OOM or an empty list; stops at the first
 * malformed token). */
char *gsp_format_tokens(const int64_t *tokens, size_t n);
size_t gsp_parse_tokens(const char *value, int64_t **out);

/* Splits a NATIVE_ADDRESS_AND_PORT value "ip:port" into host (cap bytes)
 * and port; false when the value is absent or malformed. */
bool gsp_split_host_port(const char *value, char *host, size_t cap, int *port);

/* Internode verbs used by gossip (messaging.h verbs 1..63). */
enum { GSP_VERB_SYN = 1, GSP_VERB_ACK2 = 2, GSP_VERB_SHUTDOWN = 3, GSP_VERB_ECHO = 4 };

/* ---- phi-accrual failure detector (one arrival window per endpoint) ---- */

#define GSP_FD_WINDOW 1000 /* inter-arrival times kept */
#define GSP_PHI_FACTOR 0.43429448190325176 /* 1 / ln 10 */

typedef struct gsp_arrival gsp_arrival;

/* initial_ns seeds the window at the first report (2 x gossip interval);
 * later intervals above max_interval_ns are ignored, so a long outage
 * never makes the detector lenient. NULL on OOM. */
gsp_arrival *gsp_arrival_create(int64_t initial_ns, int64_t max_interval_ns);
void gsp_arrival_destroy(gsp_arrival *a);
/* A heartbeat arrived at now_ns (monotonic). */
void gsp_arrival_report(gsp_arrival *a, int64_t now_ns);
/* phi = PHI_FACTOR * (now - last arrival) / mean interval: the exponential
 * model's -log10 P(silence this long). 0 before the first report. */
double gsp_arrival_phi(const gsp_arrival *a, int64_t now_ns);
double gsp_arrival_mean_ns(const gsp_arrival *a);
size_t gsp_arrival_count(const gsp_arrival *a); /* intervals in the window */
/* Forgets every interval (a restarted endpoint starts over). */
void gsp_arrival_clear(gsp_arrival *a);

/* ---- digest and merge rules (pure; Cassandra's examineGossiper and
 * applyStateLocally) ---- */

typedef enum {
    GSP_IN_SYNC,        /* same generation and version: nothing to do */
    GSP_REQUEST_ALL,    /* unknown to us, or the remote generation is newer */
    GSP_REQUEST_NEWER,  /* same generation, remote has newer versions */
    GSP_SEND_ALL,       /* our generation is newer: send our whole state */
    GSP_SEND_NEWER,     /* same generation, ours is newer: send what is above theirs */
} gsp_digest_action;

/* What the receiver of a SYN digest (remote_gen, remote_max) does, given
 * its own view (known, local_gen, local_max) of that endpoint. */
gsp_digest_action gsp_digest_compare(bool known, int32_t local_gen, int32_t local_max, int32_t remote_gen,
                                     int32_t remote_max);

typedef enum {
    GSP_APPLY_IGNORE,   /* older generation, or nothing newer */
    GSP_APPLY_NEW,      /* first time we hear of the endpoint */
    GSP_APPLY_RESTART,  /* higher generation: replace the whole state */
    GSP_APPLY_MERGE,    /* same generation, newer versions: merge them */
    GSP_APPLY_REJECT,   /* generation more than a year ahead of our clock */
} gsp_apply_action;

gsp_apply_action gsp_apply_rule(bool known, int32_t local_gen, int32_t local_max, int32_t remote_gen,
                                int32_t remote_max, int64_t now_s);

/* ---- the gossiper ---- */

typedef struct gossip gossip;

/* A read-only view of one endpoint, valid until the next gossip call. */
typedef struct gsp_endpoint_view {
    const char *addr;
    uint16_t port;
    bool is_self;
    bool alive;
    int32_t generation, heartbeat;
    const char *states[GSP_NSTATES]; /* NULL when absent */
    int32_t versions[GSP_NSTATES];
    double phi;                      /* 0 for self */
} gsp_endpoint_view;

/* Called on the loop thread from gossip handlers. `up`: an endpoint became
 * UP (answered an ECHO); `down`: convicted or announced its shutdown;
 * `change`: a value of another endpoint changed (key, new value in view). */
typedef struct gsp_listener {
    void *ctx;
    void (*up)(void *ctx, const gsp_endpoint_view *ep);
    void (*down)(void *ctx, const gsp_endpoint_view *ep);
    void (*change)(void *ctx, const gsp_endpoint_view *ep, gsp_key key);
} gsp_listener;

typedef struct gsp_opts {
    struct ev_loop *loop;
    sib_log *log;
    msg_service *ms;            /* borrowed; gossip registers its verbs */
    const char *cluster_name;
    const char *addr;           /* listen_address */
    uint16_t port;              /* storage_port (every node uses its own) */
    const char *seeds;          /* "a,b" or "a:port,b"; empty = this node */
    int interval_ms;            /* 0 = 1000 */
    double phi_convict_threshold; /* 0 = 8 */
    int32_t generation;
    uint64_t seed;              /* random source seed (0 = from /dev/urandom) */
    gsp_listener listener;
} gsp_opts;

gossip *gsp_create(const gsp_opts *o, sib_err *err);
/* Call after msg_service_destroy (pending requests point at the gossiper). */
void gsp_destroy(gossip *g);
/* Publishes one of this node's values with a new version (no-op when equal). */
int gsp_set_state(gossip *g, gsp_key key, const char *value);
/* Starts the rounds (the first one at once). */
void gsp_start(gossip *g);
/* Graceful stop: publishes STATUS shutdown,true, sends GOSSIP_SHUTDOWN to
 * every live peer and stops the rounds. Returns how many peers were told. */
size_t gsp_announce_shutdown(gossip *g);
/* Whether every GOSSIP_SHUTDOWN of gsp_announce_shutdown has left this
 * node (written to its socket). */
bool gsp_shutdown_sent(const gossip *g);

/* removenode (Cassandra's advertiseTokenRemoved): publishes, on behalf of
 * the peer at (addr, port), its state with the generation + 1 and STATUS
 * `removed,<host id>,<expiry ms>`, so the higher generation replaces its
 * state on every node; the local listener hears the STATUS change at once.
 * SIB_ENOTFOUND for an unknown peer, SIB_EINVAL for this node or a peer
 * that is alive. While the expiry is ahead, gossip about that address that
 * carries the removed host id in a newer generation (the removed node
 * restarted with its old data) is refused and logged; a node there with a
 * new host id is a new member. */
#define GSP_REMOVED_EXPIRY_MS (3LL * 24 * 3600 * 1000) /* Cassandra's A_VERY_LONG_TIME */
int gsp_advertise_removed(gossip *g, const char *addr, uint16_t port, sib_err *err);
/* Parses a STATUS value `removed,<host id>,<expiry ms>`. */
bool gsp_status_removed(const char *status, char hid[37], int64_t *expiry_ms);

size_t gsp_endpoint_count(const gossip *g);
/* Index 0 is this node. False past the end. */
bool gsp_endpoint_at(const gossip *g, size_t i, gsp_endpoint_view *out);
/* Live peers (this node not counted). */
size_t gsp_live_count(const gossip *g);

#endif
