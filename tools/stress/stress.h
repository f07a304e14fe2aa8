/* stress.h: private to sibyl-stress (tools/stress/). The option set, the
 * latency histogram, key distributions, per-thread state and the run.
 *
 * Shape of a run: main.c parses the command line and creates the schema
 * on a first connection, then starts `threads` workers (worker.c). Each
 * worker owns `conns` connections (preparing the statements on each) and
 * keeps up to `inflight` requests on each, driving them with ppoll and
 * sib_client_io. Workers record latencies into their own
 * interval histograms; once a second the main thread swaps them out under
 * the worker's mutex, prints a progress line, and folds them into the
 * totals that make the final summary (stats.c).
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
};

typedef enum { OP_WRITE = 0, OP_READ = 1, OP_NTYPES = 2 } op_type;
typedef enum { CMD_WRITE, CMD_READ, CMD_MIXED } stress_cmd;
typedef enum { DIST_SEQ, DIST_UNIFORM, DIST_ZIPF } dist_kind;
typedef enum { OUT_TEXT, OUT_JSON, OUT_CSV } out_format;

typedef struct stress_opts {
    stress_cmd cmd;
    uint64_t n;            /* operations; 0 when duration is used */
    double duration_s;     /* 0 when n is used */
    int cl;                /* cql_consistency */
    int ratio[OP_NTYPES];  /* mixed: weights of write and read */
    const char *nodes[STRESS_MAX_NODES];
    size_t nnodes;
    uint16_t port;
    int threads, conns, inflight;
    double rate;           /* fixed op/s over all threads; 0 = as fast as possible */
    uint32_t value_size;
    dist_kind dist;
    uint64_t pop_lo, pop_hi; /* key population, inclusive */
    bool pop_given;
    double zipf_s;         /* zipf exponent */
    int rf;                /* replication factor of the keyspace it creates */
    bool prepared;         /* EXECUTE prepared statements (default) or QUERY text */
    bool lz4;
    const char *log_file;  /* JSON (or CSV if it ends in .csv) log of intervals + summary */
    out_format format;     /* stdout: text, or JSON / CSV only */
    bool warmup;           /* cassandra-stress's flag; accepted, no warm-up is done */
    char command_line[1024];
} stress_opts;

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

/* ---- key distributions ---- */

typedef struct keygen {
    dist_kind kind;
    uint64_t lo, hi;
    /* zipf (rejection-inversion, Hörmann & Derflinger 1996): O(1) set-up,
     * so a billion-key population costs nothing to prepare. */
    double s, h_x1, h_n, s_param;
} keygen;

void keygen_init(keygen *g, dist_kind kind, uint64_t lo, uint64_t hi, double s);
/* The key index of operation number seq (sequential) or a random draw. */
uint64_t keygen_next(const keygen *g, sib_rng *rng, uint64_t seq);
/* Writes the 10-byte key of index i. */
void stress_key(uint64_t i, uint8_t out[STRESS_KEY_LEN]);
double stress_rand01(sib_rng *rng);

/* ---- shared run state ---- */

typedef struct stress_stats {
    uint64_t ops[OP_NTYPES], errors[OP_NTYPES], misses;
    hist h[OP_NTYPES];
} stress_stats;

void stats_reset(stress_stats *s);
void stats_merge(stress_stats *into, const stress_stats *from);

typedef struct stress_shared stress_shared;

typedef struct stress_worker {
    stress_shared *sh;
    int index;
    pthread_t thread;
    pthread_mutex_t mu;     /* guards `interval` and `last_error` */
    stress_stats interval;  /* since the reporter last swapped it out */
    char last_error[512];
    int rc;                 /* 0, or the failure that ended the thread early */
} stress_worker;

struct stress_shared {
    const stress_opts *o;
    keygen keys;
    uint8_t *values;           /* STRESS_VALUE_POOL random bytes */
    cql_value write_id, read_id; /* prepared ids (copies) */
    char write_cql[256], read_cql[256];
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

/* ---- reporting (stats.c) ---- */

typedef struct stress_report stress_report;
stress_report *report_create(const stress_opts *o, sib_err *err);
void report_destroy(stress_report *r);
/* One interval: elapsed seconds since start, the stats of that interval. */
void report_interval(stress_report *r, double elapsed_s, double interval_s, const stress_stats *iv,
                     const char *last_error);
/* The final summary to stdout and the log file. Returns 0 or SIB_EIO. */
int report_finish(stress_report *r, double elapsed_s, sib_err *err);

#endif
