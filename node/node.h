/* node.h: the sibyld process: configuration, start-up, and the one object
 * that owns every module's state (storage, schema, coordinator, CQL server)
 * and wires them together. Nothing else in Sibyl holds process-wide state. */
#ifndef SIB_NODE_H
#define SIB_NODE_H

#include "common.h"

struct ev_loop;

enum { NODE_SYNC_PERIODIC = 0, NODE_SYNC_BATCH = 1, NODE_SYNC_GROUP = 2 };
enum { NODE_DFP_STOP = 0, NODE_DFP_BEST_EFFORT = 1, NODE_DFP_IGNORE = 2 }; /* disk_failure_policy */

/* cassandra.yaml-compatible settings; every key optional (DESIGN.md). */
typedef struct node_config {
    char cluster_name[128];
    char listen_address[64];
    char rpc_address[64];
    int native_transport_port;
    int storage_port;
    int admin_port;
    char data_dir[1024];        /* data_file_directories[0] */
    char commitlog_dir[1024];
    char hints_dir[1024];
    char saved_caches_dir[1024];
    char seeds[1024];           /* comma-separated, from seed_provider */
    int num_tokens;
    int allocate_tokens_rf;     /* allocate_tokens_for_local_replication_factor */
    int commitlog_sync;         /* NODE_SYNC_* */
    int commitlog_sync_period_ms;
    int commitlog_sync_group_window_ms;
    size_t commitlog_segment_size;
    size_t native_transport_max_frame_size;
    int native_transport_max_concurrent_requests; /* per connection in flight */
    double phi_convict_threshold;
    int gossip_interval_ms;     /* Sibyl's, for tests only: Cassandra's is a fixed 1 s */
    char datacenter[64];
    char rack[64];
    int log_level;              /* SIB_DEBUG..SIB_ERROR */
    int tombstone_warn_threshold;
    int default_keyspace_rf;          /* a keyspace's factor when CREATE KEYSPACE names none; 1..1000 */
    int tombstone_failure_threshold;
    int max_scatter_buckets;     /* buckets one read of a bucketed table may list */
    size_t batch_size_fail_threshold; /* bytes */
    size_t memtable_heap_space;       /* bytes; 0 = storage's default (a quarter of
                                       * the memory budget, sib_memory_budget) */
    size_t commitlog_total_space;     /* bytes; 0 = storage's default (a quarter
                                       * of the commitlog volume, at most 8 GiB) */
    size_t sstable_block_size;        /* bytes; 0 = 16 KiB */
    int concurrent_compactors;        /* 0 = 1 */
    int concurrent_reads;             /* read pool threads (SSTable reads, scans); 1..64 */
    int compaction_throughput_mib;    /* MiB/s; 0 = unthrottled (cassandra.yaml) */
    bool auto_snapshot;               /* hard-link SSTables before TRUNCATE/DROP */
    size_t block_cache_size;          /* decompressed Data blocks, bytes (a bare
                                       * number is MiB); 0 = no cache; default
                                       * NODE_DEFAULT_SIZE = storage's (a quarter
                                       * of the memory budget, at most 512 MiB) */
    bool commitlog_ignore_replay_errors; /* replay skips damage instead of stopping start-up */
    int disk_failure_policy;    /* NODE_DFP_*: a damaged SSTable at start (storage.h) */
    /* Client limits (README "Limits"). -1 = the default. */
    long long native_transport_max_concurrent_connections;        /* -1: fd limit minus the reserve */
    long long native_transport_max_concurrent_connections_per_ip; /* -1: unlimited */
    size_t native_transport_max_request_data_in_flight; /* bytes; NODE_DEFAULT_SIZE: budget / 10 */
    int native_transport_startup_timeout_ms;  /* 0 = none */
    int write_request_timeout_ms;             /* coordinator: blockFor acks of a write; 2000 */
    int read_request_timeout_ms;              /* 5000 */
    int range_request_timeout_ms;             /* 10000 */
    int batchlog_replay_interval_ms;          /* how often the batchlog is replayed; 10000 (Cassandra's fixed period) */
    int native_transport_idle_timeout_ms;     /* 0 = none (Cassandra's default) */
    int native_transport_frame_read_timeout_ms; /* 0 = none */
    size_t prepared_statements_cache_size;    /* bytes; NODE_DEFAULT_SIZE: max(10 MiB, budget / 256) */
    /* Admin API (README "Admin API security"). */
    char admin_address[64];
    char admin_auth_token[256];
    char admin_auth_token_file[1024];
    int admin_max_connections;
    int admin_connection_timeout_ms;
} node_config;

#define NODE_DEFAULT_SIZE SIZE_MAX /* a size left to storage's default */

/* Fills every field with its default (127.0.0.1:9042, data under ./data). */
void node_config_defaults(node_config *c);
/* Reads a YAML file over the current values. Unknown keys are logged and
 * ignored, as Cassandra does for keys it no longer knows; bad values fail
 * with a message naming the key. */
int node_config_load(node_config *c, const char *path, sib_log *log, sib_err *err);
/* Parses a duration ("10s", "10000ms", "2m", or a bare number in `unit_ms`
 * milliseconds) into milliseconds. */
int node_parse_duration_ms(const char *s, long unit_ms, long *out);
/* Parses a size ("16MiB", "32MB", "1024KiB", bare number in `unit` bytes). */
int node_parse_size(const char *s, size_t unit, size_t *out);

typedef struct node node;

/* Opens storage (replaying the commitlog), loads the schema and local state,
 * and binds the native-protocol port. The node runs on `loop`. */
int node_open(node **out, const node_config *cfg, struct ev_loop *loop, sib_log *log, sib_err *err);
/* Graceful stop, first half: tells the live peers this node is going
 * away (GOSSIP_SHUTDOWN, as Cassandra's drain does) and calls done(ctx) on
 * the loop once the announcement is written or after 2 s at most; at once
 * when there is no live peer. Then call node_close. */
void node_stop(node *n, void (*done)(void *ctx), void *ctx);
/* Stops accepting, flushes what must be flushed and frees everything. */
void node_close(node *n);

/* ---- schema between nodes (docs/membership.md "Schema") ----
 *
 * Internode verbs (messaging.h numbers; gossip uses 1..4):
 *   SCHEMA_PULL: request with an empty payload; the answer is the sender's
 *     schema snapshot (schema.h sch_defs_encode), or empty when it cannot
 *     be built.
 *   SCHEMA_PUSH: one-way, a snapshot; sent to every live peer after a
 *     local DDL. */
enum { NODE_VERB_SCHEMA_PULL = 40, NODE_VERB_SCHEMA_PUSH = 41 };

/* For the replica side of a mutation verb: a mutation for a table id this
 * node does not know (sch_catalog_table_by_id NULL), or sent by a
 * coordinator whose schema version (sch_catalog_schema_version there)
 * differs from ours, must not be applied against the local schema (columns
 * would be dropped). Call node_schema_pull with the coordinator's address,
 * keep the mutation, and apply it in `done`:
 *   done(ctx, 0): the peer's schema was merged (and is durable), or there
 *     was nothing newer; look the table up again, since the merge may have
 *     added, replaced or dropped it. If it is still unknown, the table was
 *     dropped (answer an error, never write).
 *   done(ctx, rc < 0): SIB_ETIMEDOUT (no answer in time), SIB_ECORRUPT (a
 *     bad snapshot) or another failure: answer the coordinator with an
 *     error; it retries or hints.
 * done runs on the loop, exactly once, never inside node_schema_pull, and
 * not at all when node_schema_pull itself returns an error
 * (SIB_EOVERLOADED: too many requests pending to that peer). Pulls to the
 * same peer while one is in flight are each answered; they do not share
 * one request. Pulls still pending when the node closes are dropped
 * without their callbacks, as messaging drops its requests. */
typedef void (*node_schema_done_fn)(void *ctx, int rc);
int node_schema_pull(node *n, const char *peer, uint16_t port, node_schema_done_fn done, void *ctx, sib_err *err);

#endif
