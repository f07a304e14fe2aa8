/* node_int.h: private pieces of node/ shared between its sources.
 *
 * Schema agreement (schema_sync.c; docs/membership.md "Schema"): this
 * node's schema version is published in gossip (SCHEMA); a live peer that
 * publishes another version gets a SCHEMA_PULL, and the answer (every
 * keyspace and table definition and DROP tombstone with its write
 * timestamp) is merged by last write wins. After a local DDL the schema is
 * also pushed (SCHEMA_PUSH) to every live peer, so agreement does not wait
 * for gossip. Loop thread only.
 */
#ifndef SIB_NODE_INT_H
#define SIB_NODE_INT_H

#include "node.h"

struct ev_loop;
struct msg_service;
struct gossip;
struct cql_exec;
struct sch_catalog;
struct gsp_endpoint_view;

typedef struct node_schema_sync node_schema_sync;

typedef struct node_schema_sync_opts {
    struct ev_loop *loop;
    sib_log *log;
    struct msg_service *ms;   /* verbs NODE_VERB_SCHEMA_* are registered on it */
    struct gossip *gsp;       /* SCHEMA is published here; peers' versions read */
    struct cql_exec *ex;      /* snapshot and merge */
    struct sch_catalog *cat;  /* this node's schema version */
    int pull_timeout_ms;      /* 0 = 10000 */
} node_schema_sync_opts;

/* Registers the verbs and the executor's schema listener. NULL on OOM. */
node_schema_sync *node_schema_sync_create(const node_schema_sync_opts *o);
/* Starts the 1 s check of the peers' versions (once gossip runs). */
void node_schema_sync_start(node_schema_sync *s);
/* Call after msg_service_destroy and storage_close: frees the requests
 * still waiting for an answer without calling their callbacks. */
void node_schema_sync_destroy(node_schema_sync *s);
/* Publishes this node's schema version in gossip (a no-op when unchanged). */
void node_schema_sync_publish(node_schema_sync *s);
/* Gossip saw a peer's SCHEMA change or the peer come up: pull at once when
 * its version differs from ours (the back-off restarts for it). */
void node_schema_sync_peer(node_schema_sync *s, const struct gsp_endpoint_view *v);
/* node_schema_pull's implementation. */
int node_schema_sync_pull(node_schema_sync *s, const char *host, uint16_t port, node_schema_done_fn done, void *ctx,
                          sib_err *err);

#endif
