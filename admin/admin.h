/* admin.h: the node's HTTP admin API (what sibyltool talks to) and its
 * Prometheus metrics.
 *
 * Two parts:
 *   - admin_metrics: counters and latency histograms of CQL requests, fed by
 *     the executor's observer (cql_exec.h) on the loop thread, rendered as
 *     Prometheus text together with a snapshot of gauges (storage, tables,
 *     clients) taken when /metrics is scraped.
 *   - admin_server: libmicrohttpd in external-select mode, driven from the
 *     node's libev loop (one ev_io on MHD's epoll fd plus an ev_timer for its
 *     timeouts). Every request handler therefore runs on the loop thread and
 *     reads node state without locks, exactly like a CQL request does; MHD
 *     starts no thread of its own. Responses are JSON (jansson) except
 *     /metrics.
 *
 * Endpoints (all JSON unless noted; errors are {"error": "..."} with a 4xx/5xx):
 *   GET  /status                     every node: address, U/D, state, load, tokens, owns, host id, dc, rack
 *   GET  /info                       uptime, generation, memory, commitlog, cluster, release,
 *                                    client limits (connections, bytes in flight, prepared cache)
 *   GET  /ring                       [{token, endpoint, dc, rack, state, load, owns}]
 *   GET  /describering/<ks>          token ranges with their replica endpoints
 *   GET  /endpoints/<ks>/<table>/<key>  token and replicas of a partition key
 *                                    (key as text; composite keys `a:b`)
 *   POST /flush[/<ks>[/<table>]]     starts flushes; /info's flushes_pending says
 *                                    when they are live
 *   POST /compact[/<ks>[/<table>]]   501 while the node supplies no hook
 *   POST /removenode/<host id>       a dead member leaves the ring (nodetool
 *                                    removenode; 400 refused, 404 unknown id)
 *   GET  /compactionstats            {"pending": 0, "compactions": []}
 *   GET  /tablestats[/<ks>[/<table>]]  per keyspace / table counters
 *   GET  /expiredblockers/<ks>/<table>  expired SSTables kept by what blocks
 *                                    their drop (sstableexpiredblockers)
 *   GET  /gossipinfo                 every endpoint's gossip state (heartbeat, values, alive, phi)
 *   GET  /metrics                    Prometheus text exposition 0.0.4
 *
 * Access (guard.c): the API binds admin_address (127.0.0.1 by default),
 * refuses cross-site requests (Host, Origin and Sec-Fetch-Site checks: 403),
 * requires admin_auth_token when one is set (401), and bounds its
 * connections (admin_max_connections, admin_connection_timeout) so slow
 * clients cannot lock operators out.
 *
 * Ownership: the server borrows storage, catalog and coordinator from the
 * node (which must outlive it) and copies the node info. Loop thread only.
 */
#ifndef SIB_ADMIN_H
#define SIB_ADMIN_H

#include "common.h"

struct ev_loop;
struct storage;
struct sch_catalog;
struct coord;
struct gossip;

/* ---- metrics --------------------------------------------------------------- */

/* Latency buckets (upper bounds, µs; +Inf is implicit), log-spaced like
 * Prometheus' default buckets but starting at 50 µs because a local
 * memtable read answers in tens of microseconds. */
#define ADMIN_HIST_BUCKETS 18
extern const int64_t admin_hist_bounds_us[ADMIN_HIST_BUCKETS];

typedef struct admin_hist {
    uint64_t buckets[ADMIN_HIST_BUCKETS + 1]; /* NOT cumulative; last = +Inf */
    uint64_t count;
    int64_t sum_us;
} admin_hist;

void admin_hist_record(admin_hist *h, int64_t us);
/* Upper bound (µs) of the bucket holding quantile q (0..1); 0 when empty,
 * INT64_MAX when it falls in +Inf. */
int64_t admin_hist_quantile(const admin_hist *h, double q);

typedef struct admin_metrics admin_metrics;

admin_metrics *admin_metrics_create(void); /* NULL on OOM */
void admin_metrics_destroy(admin_metrics *m);

/* Observer callbacks (signatures of cql_exec_observer, ctx = the metrics):
 * one finished request with its protocol opcode, statement kind
 * (parser.h prs_stmt_kind, or -1 when it did not parse), consistency level
 * code and time on the loop thread; and one error reply by protocol code. */
void admin_metrics_on_request(void *m, int opcode, int stmt_kind, int consistency, int64_t latency_us);
void admin_metrics_on_error(void *m, int32_t protocol_code);

/* Per-table local reads and writes (observer table_op, ctx = the metrics). */
void admin_metrics_on_table_op(void *m, const uint8_t table_id[16], bool write, int64_t latency_us);
/* Both for a request that ended a table operation inside it (observer
 * request_op): the counts of admin_metrics_on_request and
 * admin_metrics_on_table_op, one histogram bucket found for both. */
void admin_metrics_on_request_op(void *m, int opcode, int stmt_kind, int consistency, int64_t latency_us,
                                 const uint8_t table_id[16], bool write, int64_t op_latency_us);

typedef struct admin_table_ops {
    uint64_t reads, writes;
    admin_hist read_latency, write_latency;
} admin_table_ops;
/* The counters of one table; all zero if it saw no request. */
void admin_metrics_table_ops(const admin_metrics *m, const uint8_t table_id[16], admin_table_ops *out);

/* Prometheus-style name of a protocol error code ("invalid", "unavailable"...). */
const char *admin_error_name(int32_t protocol_code);
/* Loop lag: times every iteration of loop from the moment it wakes up
 * (an EV_MAXPRI ev_check) to the moment it is about to wait again (an
 * EV_MINPRI ev_prepare, after every other prepare watcher's work): the
 * time any client or timer ready meanwhile had to wait behind it.
 * /metrics shows them as sibyl_loop_iteration_seconds (histogram) and
 * sibyl_loop_iteration_max_seconds. Call on the loop's thread; the
 * watchers stop in admin_metrics_destroy (same thread). */
int admin_metrics_watch_loop(admin_metrics *m, struct ev_loop *loop, sib_err *err);
/* Records one iteration (exposed for tests). */
void admin_metrics_on_loop_iteration(admin_metrics *m, int64_t us);
/* Records what one iteration took of the loop thread itself (exposed for
 * tests): its CPU time, whether the thread waited in the kernel (a
 * voluntary context switch) and its wall time then, and its page faults.
 * Shown as sibyl_loop_iteration_cpu_seconds (histogram),
 * sibyl_loop_iteration_cpu_max_seconds, sibyl_loop_iterations_blocked_total,
 * sibyl_loop_iteration_blocked_max_seconds and sibyl_loop_page_faults_total:
 * unlike the wall time, none of them grows when the machine is busy and the
 * loop merely waits for a core. */
void admin_metrics_on_loop_usage(admin_metrics *m, int64_t wall_us, int64_t cpu_us, bool blocked, uint64_t faults);

uint64_t admin_metrics_requests(const admin_metrics *m); /* all requests so far */
uint64_t admin_metrics_errors(const admin_metrics *m);   /* all error replies */

/* Gauges sampled at scrape time; the node fills them (admin_server does it
 * from storage/catalog; tests fill them by hand). */
#define ADMIN_SPR_BUCKETS 12
typedef struct admin_table_gauge {
    const char *ks, *table;
    uint64_t partitions, rows, cells, memtable_bytes;
    uint64_t reads, writes; /* local requests (admin_metrics_table_ops) */
    uint64_t sstables, sstable_bytes;
    uint64_t flush_bytes, compaction_bytes_read, compaction_bytes_written, compactions_running, compactions;
    uint64_t sstables_damaged, sstables_suspect; /* st_table_stats' */
    /* SSTables per partition read (storage's st_table_stats.spr): count of
     * bucket i (not cumulative), its upper bound (UINT32_MAX = +Inf), sum */
    uint64_t spr[ADMIN_SPR_BUCKETS];
    uint32_t spr_le[ADMIN_SPR_BUCKETS];
    uint64_t spr_sum;
} admin_table_gauge;

typedef struct admin_gauges {
    uint64_t clients;
    uint64_t memtable_bytes;
    uint64_t sstables, sstable_bytes, flushes_pending;
    uint64_t cl_bytes_written, cl_segments_live, cl_syncs, cl_pending;
    uint64_t reads_inline, reads_pool, reads_queued, reads_running; /* storage's read pool */
    uint64_t read_rounds, reads_coalesced; /* the coordinator's (coord_read_stats) */
    uint64_t read_repair_writes;
    char schema_version[37];
    int64_t uptime_s;
    /* the batchlog (coordinator.h, coord_batchlog_stats) */
    uint64_t bl_writes, bl_stored, bl_removed, bl_replayed, bl_replay_failures, bl_entries;
    const admin_table_gauge *tables;
    size_t ntables;
} admin_gauges;

/* Appends the whole exposition (HELP/TYPE lines, counters, histograms with
 * cumulative _bucket{le=...}, _sum in seconds, _count) to out. */
void admin_metrics_render(const admin_metrics *m, const admin_gauges *g, sib_buf *out);

/* ---- server ---------------------------------------------------------------- */

/* What the admin API reports about this node (copied by admin_server_create). */
typedef struct admin_node_info {
    char cluster_name[128];
    char listen_address[64];
    char rpc_address[64];
    char dc[64], rack[64];
    int native_port;
    uint8_t host_id[16];
    const int64_t *tokens; /* copied */
    size_t ntokens;
    int64_t generation;    /* gossip generation: start time in seconds */
} admin_node_info;

/* The client limits in force and what they did (GET /info's
 * "client_limits"); counters since start. */
typedef struct admin_client_limits {
    uint64_t fd_limit, fd_reserved;        /* RLIMIT_NOFILE, descriptors kept for storage */
    uint64_t connections, connection_limit;
    uint64_t refused, timed_out, accept_backoffs, overloaded;
    uint64_t bytes_in_flight, bytes_in_flight_limit;
    bool backpressure;
    uint64_t prepared, prepared_bytes, prepared_bytes_limit;
} admin_client_limits;

/* Operations that live above the admin module. A NULL function answers
 * 501 Not Implemented ("<op> is not supported by this node yet"). */
typedef struct admin_hooks {
    void *ctx;
    size_t (*client_count)(void *ctx);
    void (*client_limits)(void *ctx, admin_client_limits *out); /* may be NULL */
    /* ks/table NULL = every keyspace / every table of ks. */
    int (*flush)(void *ctx, const char *ks, const char *table, sib_err *err);
    int (*compact)(void *ctx, const char *ks, const char *table, sib_err *err);
    /* POST /removenode/<host id>: SIB_EINVAL refused (400), SIB_ENOTFOUND
     * no such host id (404); err->msg says why. */
    int (*removenode)(void *ctx, const char *host_id, sib_err *err);
} admin_hooks;

typedef struct admin_opts {
    struct ev_loop *loop;
    sib_log *log;
    const char *bind_addr; /* IPv4 literal (admin_address); NULL = 127.0.0.1 */
    uint16_t port;         /* 0 = ephemeral (see admin_server_port) */
    const char *auth_token; /* admin_auth_token: required on every request; NULL/"" = none (copied) */
    unsigned max_connections;  /* admin_max_connections; 0 = 16 */
    double connection_timeout; /* seconds to deliver a complete request; 0 = 10 */
    struct storage *st;
    struct sch_catalog *cat;
    struct coord *co;
    struct gossip *gsp;     /* borrowed; NULL = report this node only */
    admin_metrics *metrics; /* borrowed; may be NULL (no request metrics) */
    const admin_node_info *node;
    admin_hooks hooks;
} admin_opts;

typedef struct admin_server admin_server;

/* Binds and starts serving on o->loop. With o->loop NULL nothing is bound
 * and only admin_server_handle answers (unit tests). NULL with err set on
 * failure. */
admin_server *admin_server_create(const admin_opts *o, sib_err *err);
void admin_server_destroy(admin_server *s);
uint16_t admin_server_port(const admin_server *s);

/* ---- pieces exposed for unit tests ---------------------------------------------- */

/* Fraction (0..1) of the token ring owned by the member whose sorted tokens
 * are mine[0..n) when the whole ring is ring[0..nring) (sorted): each token
 * owns the range from the previous ring token (exclusive) to itself. */
double admin_ring_owns(const int64_t *ring, size_t nring, const int64_t *mine, size_t n);

/* Parses a partition key given as text into serialized key bytes (appended
 * to out) for table (ks, table) of cat: one component per partition key
 * column, separated by ':' for composite keys. Errors name the problem. */
int admin_parse_key(struct sch_catalog *cat, const char *ks, const char *table, const char *key, sib_buf *out,
                    sib_err *err);

/* Request checks (guard.c): Host must be an IP literal, localhost or
 * bind_addr; Origin, when sent, the API's own origin; Sec-Fetch-Site, when
 * sent, same-origin or none; and with a token, "Authorization: Bearer
 * <token>". Returns 0, or the HTTP status to answer (403, 401) with *why. */
typedef struct admin_guard {
    const char *bind_addr;
    const char *token; /* NULL or "" = none */
} admin_guard;
typedef struct admin_req_headers {
    const char *host, *origin, *sec_fetch_site, *authorization; /* NULL when absent */
} admin_req_headers;
int admin_check_request(const admin_guard *g, const admin_req_headers *h, const char **why);

/* A request answered without a socket (the same routing MHD uses):
 * method "GET"/"POST", url the path. *status gets the HTTP code, body the
 * response (JSON or Prometheus text). For tests and debugging tools. */
int admin_server_handle(admin_server *s, const char *method, const char *url, int *status, sib_buf *body);

#endif
