/* stress.h: private to sibyl-stress (tools/stress/). The option set, the
 * latency histogram, distributions, user profiles, workloads, per-thread
 * state and the run.
 *
 * Shape of a run: main.c parses the command line (profile.c the YAML
 * profile of `user`), creates the schema and learns each op's statement
 * on a first connection (workload.c) after reading the ring from the
 * contact points (ring.c), then starts `threads` workers (worker.c). Each
 * worker owns `conns` connections to every node of the ring (preparing the
 * statements on each, re-opening and re-preparing after failures) and
 * keeps up to `inflight` requests on each, driving them with ppoll and
 * cli_client_io. Workers record latencies per op type into their own
 * interval histograms (stats.c); once a second the main thread swaps them
 * out under the worker's mutex, prints the progress lines, and folds them
 * into the totals that make the final summary (report.c).
 */
#ifndef SIB_STRESS_H
#define SIB_STRESS_H

#include <pthread.h>
#include <stdatomic.h>

#include "client.h"

enum {
    STRESS_MAX_NODES = 16,
    STRESS_KEY_LEN = 10, /* cassandra-stress keys are 10 bytes */
    STRESS_VALUE_POOL = 1 << 20, /* random bytes values are sliced from */
    STRESS_MAX_OPS = 8,  /* operation types in one run (ops(...) / ratio(...)) */
    STRESS_OP_NAME = 32,
    STRESS_RING_MAX = 64, /* nodes of the ring (contact points and their peers) */
    STRESS_HOST_LEN = 64,
    STRESS_MAX_PK = 16,   /* partition key columns a routing key is built from */
};

typedef enum { CMD_WRITE, CMD_READ, CMD_MIXED, CMD_USER } stress_cmd;
typedef enum { DIST_SEQ, DIST_UNIFORM, DIST_ZIPF, DIST_FIXED, DIST_GAUSS } dist_kind;
typedef enum { OUT_TEXT, OUT_JSON, OUT_CSV } out_format;

/* FIXED(v), UNIFORM(lo..hi), SEQ(lo..hi), ZIPF(lo..hi[,s]) or
 * GAUSSIAN(lo..hi[,stdvrng] | lo..hi,mean,stdev), as cassandra-stress
 * spells them (case-insensitive; "gauss", "normal", "norm" too). */
typedef struct stress_dist {
    dist_kind kind;
    uint64_t lo, hi;   /* inclusive; FIXED: lo == hi */
    double s;          /* zipf exponent */
    double mean, stdev; /* gaussian */
} stress_dist;

/* One operation type of the run and its weight. Names are what
 * cassandra-stress prints: "WRITE" / "READ" for the built-in commands, the
 * ops(...) names of a user profile ("insert", a query name) otherwise. The
 * run keeps them sorted by name, the order cassandra-stress reports in. */
typedef struct stress_op {
    char name[STRESS_OP_NAME];
    int weight;
} stress_op;

typedef struct stress_opts {
    stress_cmd cmd;
    uint64_t n;            /* operations; 0 when duration is used */
    double duration_s;     /* 0 when n is used */
    int cl;                /* cql_consistency */
    stress_op ops[STRESS_MAX_OPS];
    int nops;
    const char *profile;   /* user: the YAML profile path */
    const char *nodes[STRESS_MAX_NODES]; /* -node contact points, */
    uint16_t node_ports[STRESS_MAX_NODES]; /* each one's port (0: -port's) */
    size_t nnodes;
    uint16_t port;
    int threads, conns, inflight;
    double rate;           /* fixed op/s over all threads; 0 = as fast as possible */
    uint32_t value_size;
    struct stress_dist pop; /* key population (-pop); a user profile's partitions when given */
    bool pop_given;
    int rf;                /* replication factor of the keyspace it creates */
    bool prepared;         /* EXECUTE prepared statements (default) or QUERY text */
    bool redis;            /* -mode redis: SET / GET against a Redis server instead of CQL */
    bool lz4;
    const char *log_file;  /* JSON (or CSV if it ends in .csv) log of intervals + summary */
    out_format format;     /* stdout: text, or JSON / CSV only */
    bool warmup;           /* cassandra-stress's flag; accepted, no warm-up is done */
    char command_line[1024];
} stress_opts;

/* Index of the op named `name` (case-insensitive), or -1. */
int stress_op_find(const stress_opts *o, const char *name);

/* main.c: parses argv (after the program name). Returns 0, 1 when help was printed,
 * or -1 after printing the problem to stderr. */
int stress_parse(int argc, char **argv, stress_opts *o);
void stress_usage(FILE *f);

/* ---- HDR-style log-linear histogram of nanoseconds ---- */

enum {
    HIST_SUB_BITS = 7,                    /* 128 linear buckets per power of two: < 0.8% error */
    HIST_SUB = 1 << HIST_SUB_BITS,
    HIST_MAX_SHIFT = 40,                  /* up to ~2^47 ns (39 hours) */
    HIST_BUCKETS = (HIST_MAX_SHIFT + 1) * HIST_SUB,
};

typedef struct hist {
    uint64_t count, sum_ns, min_ns, max_ns;
    uint64_t b[HIST_BUCKETS];
} hist;

void hist_reset(hist *h);
void hist_record(hist *h, uint64_t ns);
void hist_merge(hist *into, const hist *from);
/* Value at percentile p (0..100], in ns (the bucket's midpoint, clamped to
 * the recorded min/max); 0 when empty. */
uint64_t hist_percentile(const hist *h, double p);
double hist_mean_ns(const hist *h);

/* ---- distributions ---- */

/* An unsigned count with an optional k/m/b suffix ("2M", "100B"). */
bool stress_parse_count(const char *s, uint64_t *out);
/* Parses a distribution; 0 or -1 with the problem in err (names the text). */
int stress_dist_parse(const char *text, stress_dist *d, sib_err *err);
/* Writes "UNIFORM(1..100)" etc. into buf. */
const char *stress_dist_name(const stress_dist *d, char *buf, size_t len);

typedef struct keygen {
    dist_kind kind;
    uint64_t lo, hi;
    /* zipf (rejection-inversion, Hörmann & Derflinger 1996): O(1) set-up,
     * so a billion-key population costs nothing to prepare. */
    double s, h_x1, h_n, s_param;
    double mean, stdev;
} keygen;

void keygen_init(keygen *g, const stress_dist *d);
/* The index of operation number seq (sequential) or a random draw. */
uint64_t keygen_next(const keygen *g, sib_rng *rng, uint64_t seq);
/* Writes the 10-byte key of index i. */
void stress_key(uint64_t i, uint8_t out[STRESS_KEY_LEN]);
double stress_rand01(sib_rng *rng);
/* A 64-bit mix of a and b (splitmix64 finalizer): the deterministic seeds
 * of generated values, so the same partition always holds the same rows. */
uint64_t stress_mix(uint64_t a, uint64_t b);

/* ---- stats ---- */

typedef struct stress_stats {
    uint64_t ops[STRESS_MAX_OPS], errors[STRESS_MAX_OPS];
    uint64_t partitions[STRESS_MAX_OPS], rows[STRESS_MAX_OPS];
    uint64_t misses;       /* reads that found no row */
    uint64_t reprepares;   /* EXECUTEs answered Unprepared, re-prepared and retried */
    uint64_t reconnects;   /* connections re-established after they broke */
    /* Operations sent to (or, when it was down, meant for) each ring node,
     * and how many of those failed. */
    uint64_t node_ops[STRESS_RING_MAX], node_errors[STRESS_RING_MAX];
    hist h[STRESS_MAX_OPS];
    /* Latency from the moment each answered request was sent, all types
     * together. In fixed-rate mode h counts from the intended start, so the
     * two differ by the client's own lateness (wrk2's corrected and
     * uncorrected latency); otherwise they are the same. */
    hist sent;
} stress_stats;

void stats_reset(stress_stats *s);
void stats_merge(stress_stats *into, const stress_stats *from);

/* ---- workloads: what each operation sends (workload.c) ---- */

typedef enum { OPK_WRITE, OPK_READ, OPK_INSERT, OPK_QUERY } op_kind;

/* How an op type is executed: its statement and the kind of values it binds. */
typedef struct stress_opdef {
    op_kind kind;
    int query;            /* OPK_QUERY: index into the profile's queries */
    char cql[2048];       /* the statement prepared on every connection */
    /* The bind positions of the partition key (PREPARED's pk_index): what a
     * request is routed by. npk 0: not routable (sent on any node). */
    uint16_t npk;
    uint16_t pk_index[STRESS_MAX_PK];
} stress_opdef;

/* The values of one operation, built into reusable per-thread buffers.
 * One statement (nstmts == 1: vals[0..nvals)) or a batch of nstmts copies
 * of the same prepared statement, stmt i binding vals[i*per_stmt ..]. */
typedef struct stress_req {
    sib_buf data;         /* the value bytes */
    cql_value *vals;      /* .p point into data once stress_build returns */
    size_t *off;          /* offset of each value in data while building */
    size_t nvals, cap, off_cap;
    uint16_t nstmts, per_stmt;
    cli_batch_stmt *stmts; /* nstmts entries when nstmts > 1 (ids set by the sender) */
    size_t stmt_cap;
    bool batch;
    cql_batch_type batch_type;
    uint32_t partitions, rows; /* what a write touches (reads count answered rows) */
} stress_req;

void stress_req_init(stress_req *r);
void stress_req_free(stress_req *r);

/* ---- resp.c: a pipelined Redis connection (-mode redis) ---- */

typedef struct resp_conn resp_conn;
enum { RESP_OK, RESP_NIL, RESP_ERROR, RESP_BROKEN };
/* An answer: RESP_OK (msg: the string, integer or bulk), RESP_NIL, RESP_ERROR
 * (msg: its text) or RESP_BROKEN (the connection is gone; msg NULL). */
typedef void (*resp_cb)(void *ud, int status, const char *msg, size_t len);

int resp_connect(resp_conn **out, const char *host, uint16_t port, int timeout_ms, sib_err *err);
/* Calls every pending callback with RESP_BROKEN, then frees. NULL is fine. */
void resp_close(resp_conn *c);
/* Queues a command of argc arguments (copied); written by resp_flush / resp_io. */
int resp_send(resp_conn *c, int argc, const cql_value *argv, resp_cb cb, void *ud, sib_err *err);
int resp_fd(const resp_conn *c);
short resp_events(const resp_conn *c);
uint32_t resp_inflight(const resp_conn *c);
/* Writes what it can without blocking: 0, or SIB_EIO (broken: callbacks ran). */
int resp_flush(resp_conn *c, sib_err *err);
/* Handles poll revents: writes, reads, calls the callbacks of complete
 * answers in order. The number answered, or < 0 once broken. */
int resp_io(resp_conn *c, short revents, sib_err *err);

/* profile.c: a cassandra-stress user profile (YAML), as written. */
typedef struct prof_column {
    char *name;
    stress_dist size, population, cluster;
    bool has_size, has_population, has_cluster;
} prof_column;

typedef struct prof_query {
    char *name, *cql;
    bool multirow;        /* fields: multirow (each marker from its own row) */
} prof_query;

typedef struct stress_profile {
    char *keyspace, *keyspace_def, *table, *table_def; /* definitions may be NULL */
    prof_column *cols;
    size_t ncols;
    stress_dist partitions;   /* insert.partitions: partitions per insert (FIXED(1)) */
    stress_dist select;       /* insert.select numerator; a row is written with */
    uint64_t select_den;      /*   probability select/select_den (FIXED(1)/1) */
    cql_batch_type batch_type; /* insert.batchtype (LOGGED) */
    prof_query *queries;
    size_t nqueries;
} stress_profile;

/* Parses the profile at path. Keys or values it does not support fail with
 * an error naming them. *out is freed with profile_destroy. */
int profile_load(const char *path, stress_profile **out, sib_err *err);
void profile_destroy(stress_profile *p);

typedef struct workload workload; /* workload.c: the profile bound to a live table */

typedef struct stress_shared stress_shared;

/* Creates what the run writes to (keyspace1.standard1, or the profile's
 * definitions) and fills sh->defs with each op's statement; for a user
 * profile it also learns the table's columns (system_schema.columns) and
 * the bind markers of every statement through cl. */
int workload_setup(stress_shared *sh, cli_client *cl, sib_err *err);
void workload_destroy(workload *wl);
/* Builds the values of operation number seq of type op into req (its
 * previous content is dropped). Deterministic in (seq, *rng): a retry
 * rebuilds the same request from a saved rng. 0, or SIB_ENOMEM. */
int stress_build(const stress_shared *sh, int op, sib_rng *rng, uint64_t seq, stress_req *req);

/* ---- the ring and token-aware routing (ring.c) ---- */

typedef struct stress_node {
    char host[STRESS_HOST_LEN]; /* the address workers connect to */
    uint16_t port;
    uint8_t host_id[16];
    bool has_id;
    char dc[64];
    char name[STRESS_HOST_LEN + 8]; /* "host:port" in reports */
    size_t ntokens;
} stress_node;

typedef struct stress_ring {
    stress_node nodes[STRESS_RING_MAX];
    size_t nnodes;
    int64_t *tokens;   /* sorted and unique once ring_finish ran */
    uint16_t *owner;   /* the node index of each token */
    size_t ntokens, cap;
} stress_ring;

void ring_init(stress_ring *r);
void ring_free(stress_ring *r);
/* The index of the node with this host id (without one: this host and
 * port), added if new; -1 when the ring is full or host too long. */
int ring_add_node(stress_ring *r, const char *host, uint16_t port, const uint8_t *host_id, const char *dc);
/* 0, SIB_EINVAL (no such node) or SIB_ENOMEM. */
int ring_add_token(stress_ring *r, int node, int64_t token);
/* Adds the tokens of a set<text> cell (system.local/peers.tokens); null adds none. 0 or SIB_EPROTO. */
int ring_add_tokens_cell(stress_ring *r, int node, cql_value cell);
/* Sorts the tokens; a token claimed by several nodes stays with the one
 * added first (the lowest index). 0 or SIB_ENOMEM. */
int ring_finish(stress_ring *r);
/* The primary replica of token t: the owner of the first ring token >= t,
 * wrapping to the smallest; -1 when the ring has no tokens. */
int ring_lookup(const stress_ring *r, int64_t t);
/* Murmur3 token of the partition key bound at pk_index[0..npk) of vals:
 * one column hashes its serialized value, several their CompositeType
 * form (built in scratch). false when npk is 0 or a component is null,
 * unset, missing or too long. */
bool stress_routing_token(const cql_value *vals, size_t nvals, const uint16_t *pk_index, size_t npk,
                          sib_buf *scratch, int64_t *out);
/* Builds the ring from system.local and system.peers of every reachable
 * contact point of o (unreachable ones are reported on stderr and
 * skipped). *first is a connection to the first reachable one, for the
 * setup; fails when none is reachable. */
int ring_discover(stress_ring *r, const stress_opts *o, cli_client **first, sib_err *err);

/* ---- shared run state ---- */

typedef struct stress_worker {
    stress_shared *sh;
    int index;
    pthread_t thread;
    pthread_mutex_t mu;     /* guards `interval` and `last_error` */
    stress_stats interval;  /* since the reporter last swapped it out */
    char last_error[512];
    int rc;                 /* 0, or the failure that ended the thread early */
    char fail[512];         /* rc's reason (last_error is taken by the reporter each second) */
    int64_t end_ns;         /* when its last operation finished (set before it exits) */
} stress_worker;

struct stress_shared {
    const stress_opts *o;
    keygen keys;
    uint8_t *values;           /* STRESS_VALUE_POOL random bytes */
    stress_opdef defs[STRESS_MAX_OPS]; /* parallel to o->ops */
    stress_profile *profile;   /* user command only */
    workload *wl;              /* user command only */
    stress_ring ring;          /* the nodes workers connect to (each one) */
    bool routing;              /* token-aware: several nodes with tokens */
    int64_t start_ns;
    int64_t end_ns;            /* duration mode: stop issuing at this time */
    atomic_uint_fast64_t issued; /* operations claimed (n mode and sequential keys) */
    atomic_bool stop;          /* stop issuing (signal, fatal error, or end) */
    atomic_int running;        /* workers not finished yet */
    stress_worker *workers;
};

/* worker.c: starts / joins the workers. */
int stress_workers_start(stress_shared *sh, sib_err *err);
void stress_workers_join(stress_shared *sh);
/* Claims the next operation number; false when the run is over. */
bool stress_claim(stress_shared *sh, uint64_t *seq);

/* ---- reporting (report.c) ---- */

typedef struct stress_report stress_report;
/* ring: the nodes per-node counts are reported for (it outlives the report). */
stress_report *report_create(const stress_opts *o, const stress_ring *ring, bool routing, sib_err *err);
void report_destroy(stress_report *r);
/* One interval: elapsed seconds since start, the stats of that interval. */
void report_interval(stress_report *r, double elapsed_s, double interval_s, const stress_stats *iv,
                     const char *last_error);
/* The final summary to stdout and the log file. Returns 0 or SIB_EIO. */
int report_finish(stress_report *r, double elapsed_s, sib_err *err);

#endif
