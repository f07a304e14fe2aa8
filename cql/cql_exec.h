/* Executor construction (part of cql/'s public interface; merged into cql.h). */
#ifndef SIB_CQL_EXEC_H
#define SIB_CQL_EXEC_H

#include "cql.h"

struct storage;
struct sch_catalog;
struct coord;
struct gossip;

/* What system.local reports about this node. */
typedef struct cql_exec_node_info {
    char cluster_name[128];
    char listen_address[64];
    char rpc_address[64];
    int native_port;
    int storage_port;      /* listen_port / broadcast_port; 0 = 7000 */
    uint8_t host_id[16];
    const int64_t *tokens; /* copied by cql_exec_create */
    size_t ntokens;
    char dc[64], rack[64];
    int64_t gossip_generation;
} cql_exec_node_info;

typedef struct cql_exec cql_exec;

typedef struct cql_exec_opts {
    struct storage *st;
    struct sch_catalog *cat;
    struct coord *co;
    sib_log *log;
    const cql_exec_node_info *node;
    struct gossip *gsp;        /* system.peers rows; NULL = no peers */
    size_t batch_size_fail_threshold; /* bytes; 0 = 50 KiB */
    int tombstone_warn_threshold, tombstone_failure_threshold;
    int max_scatter_buckets;   /* buckets one read of a bucketed table may list; 0 = 1000 */
    int default_keyspace_rf;   /* CREATE KEYSPACE without a factor; 0 = 1 */
    size_t prepared_cache_size; /* bytes (prepared_statements_cache_size);
                                 * 0 = max(10 MiB, 1/256 of the memory budget) */
} cql_exec_opts;

/* Creates the executor and loads the persisted schema into opts->cat. */
int cql_exec_create(cql_exec **out, const cql_exec_opts *o, sib_err *err);
void cql_exec_destroy(cql_exec *ex);
cql_executor *cql_exec_base(cql_exec *ex);
/* Prepared statements held, the bytes they weigh, and the cache's bound. */
size_t cql_exec_prepared_count(const cql_exec *ex);
size_t cql_exec_prepared_bytes(const cql_exec *ex);
size_t cql_exec_prepared_capacity(const cql_exec *ex);
/* Where schema-change events go (set once the server exists). */
void cql_exec_set_server(cql_exec *ex, cql_server *srv);

/* Metrics hooks (the admin module's /metrics), called on the loop thread.
 * request: once per QUERY/PREPARE/EXECUTE/BATCH when the executor returns
 *   from it, with the statement kind (parser.h prs_stmt_kind; -1 when the
 *   text did not parse or the id was unknown), the consistency code and the
 *   time spent in the executor in µs.
 * error: once per error reply, with the protocol error code.
 * Either may be NULL; ctx is passed back untouched. */
typedef struct cql_exec_observer {
    void *ctx;
    void (*request)(void *ctx, int opcode, int stmt_kind, int consistency, int64_t latency_us);
    void (*error)(void *ctx, int32_t protocol_code);
    /* table_op: one successful local read (SELECT on a user table) or write
     * (once per table a statement or batch wrote) with its latency in µs,
     * from the request's start to its answer (fsync included in batch and
     * group commitlog modes). */
    void (*table_op)(void *ctx, const uint8_t table_id[16], bool write, int64_t latency_us);
    /* request_op (may be NULL): request and table_op in one call, for a
     * request whose table operation ended before the executor returned (a
     * read answered from memory, a write in periodic commitlog mode). */
    void (*request_op)(void *ctx, int opcode, int stmt_kind, int consistency, int64_t latency_us,
                       const uint8_t table_id[16], bool write, int64_t op_latency_us);
} cql_exec_observer;
void cql_exec_set_observer(cql_exec *ex, const cql_exec_observer *o);

/* ---- schema between nodes (exec_ddl.c; docs/membership.md "Schema") ---- */

/* Called on the loop once a local DDL statement is durable (before its
 * reply), so the node can republish its schema version and push the
 * schema to its peers. */
typedef void (*cql_exec_schema_fn)(void *ctx);
void cql_exec_set_schema_listener(cql_exec *ex, cql_exec_schema_fn fn, void *ctx);
/* Appends this node's schema rows (every keyspace and table definition and
 * DROP tombstone, with write timestamps) in the snapshot form of
 * schema.h's sch_defs_encode. */
int cql_exec_schema_snapshot(cql_exec *ex, sib_buf *out);
/* Merges a peer's snapshot by last write wins (schema.h sch_defs_merge):
 * every winning definition is persisted with its own timestamp, applied to
 * the catalog and storage (tables created, replaced or dropped as DDL does)
 * and announced to this node's clients as SCHEMA_CHANGE once durable.
 * Returns the number of winning entries: 0 = nothing to change (done is not
 * called); > 0 = done(ctx, rc) is called once on the loop when the rows are
 * durable. A negative code (bad snapshot: nothing changed; or the write
 * failed) means done is not called. */
typedef void (*cql_exec_merge_fn)(void *ctx, int rc);
int cql_exec_schema_merge(cql_exec *ex, const uint8_t *snap, size_t len, cql_exec_merge_fn done, void *ctx,
                          sib_err *err);

#endif
