/* node.c: start-up and shutdown of a Sibyl node, and the owner of every
 * module's state.
 *
 * Start-up order (each step needs the previous one):
 *   1. directories (data, commitlog) exist;
 *   2. storage opens and replays the commitlog: tables come back by id, so
 *      no schema is needed to replay (storage.h);
 *   3. local state (host id, vnode tokens) is read from an internal table,
 *      or created and written on first start, so a restart keeps its
 *      identity and ring position;
 *   4. the coordinator gets the ring, the executor loads the schema from
 *      the engine, and only then does the native port accept clients;
 *   5. messaging binds storage_port on listen_address and gossip starts:
 *      this node's state (STATUS NORMAL with its tokens, host id, DC, rack,
 *      schema, native address, load) is published, and what gossip learns
 *      about peers flows back through gossip_up/down/change: UP/DOWN into
 *      the coordinator's liveness, NORMAL peers' tokens into its ring, and
 *      STATUS_CHANGE / TOPOLOGY_CHANGE events to registered drivers.
 *
 * Graceful stop (node_stop): GOSSIP_SHUTDOWN to the live peers, a short
 * wait for it to leave the socket, then node_close.
 *
 * Descriptors: the soft RLIMIT_NOFILE is raised to the hard limit first.
 * Client connections get what the limit leaves after a reserve for storage
 * (FD_RESERVE_BASE plus the admin API's connections, two per open SSTable,
 * two per peer for internode connections: common.h sib_fd_budget), so a flood of idle
 * sockets can never keep the commitlog or a flush from opening a file.
 */
#include "node_int.h"

#include <errno.h>
#include <ev.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <inttypes.h>

#include "admin.h"
#include "coordinator.h"
#include "cql.h"
#include "cql_exec.h"
#include "gossip.h"
#include "messaging.h"
#include "schema.h"
#include "storage.h"

#define STATE_REFRESH_S 5.0   /* SCHEMA re-published this often (when it changed) */
#define LOAD_EVERY_TICKS 12   /* LOAD every minute, as Cassandra's LoadBroadcaster */
#define SHUTDOWN_ANNOUNCE_S 2.0

static const uint8_t LOCAL_TABLE_ID[16] = {0x5b, 0x1b, 0x5c, 0x4e, 0x00, 0x00, 0x40, 0x00,
                                           0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02};
enum { LOCAL_HOST_ID = 1, LOCAL_TOKENS = 2, LOCAL_GENERATION = 3 };

/* The fixed part of the descriptor reserve: commitlog segments (active and
 * spares), flush and compaction outputs (five components each), listeners,
 * epoll and eventfds of the loops and workers, stdio and the log. */
enum { FD_RESERVE_BASE = 64 };
static const int64_t FD_BUDGET_REFRESH_NS = 100 * 1000000LL; /* SSTable count is re-read this often */

struct node {
    node_config cfg;
    struct ev_loop *loop;
    sib_log *log;
    storage *st;
    sch_catalog *cat;
    coord *co;
    cql_exec *ex;
    cql_server *srv;
    admin_metrics *metrics; /* fed by the executor's observer */
    admin_server *admin;    /* HTTP admin API + /metrics */
    uint8_t host_id[16];
    int64_t *tokens;
    size_t ntokens;
    uint64_t fd_limit;     /* soft RLIMIT_NOFILE after raising it */
    uint64_t fd_budget;    /* client connections allowed, as of fd_budget_ns */
    int64_t fd_budget_ns;
    int64_t generation;     /* gossip generation: max(stored + 1, now in s) */
    msg_service *ms;        /* internode port */
    gossip *gsp;            /* membership */
    node_schema_sync *sync; /* schema agreement with the peers */
    ev_timer state_timer;   /* re-publishes SCHEMA and LOAD */
    unsigned state_ticks;
    ev_timer stop_timer;    /* node_stop's wait for the announcement */
    double stop_deadline;
    void (*stop_done)(void *ctx);
    void *stop_ctx;
};

static int mkdirs(const char *path, sib_err *err)
{
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return sib_err_set(err, SIB_ECONFIG, "path too long: %s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) && errno != EEXIST) return sib_err_errno(err, "mkdir %s", tmp);
        *p = '/';
    }
    if (mkdir(tmp, 0755) && errno != EEXIST) return sib_err_errno(err, "mkdir %s", tmp);
    return 0;
}

/* Reads host id and tokens into n: 1 when found, 0 when this is the node's
 * first start, or a negative code when the row could not be read. A read
 * error is never "no row": that would give the node a new host id and new
 * tokens, a different member of the ring holding the old one's data. */
static int local_state_read(node *n, sib_err *err)
{
    st_table *t = storage_table_find(n->st, LOCAL_TABLE_ID);
    if (!t) return 0;
    int32_t now = (int32_t)(sib_now_us() / 1000000);
    st_iter *it = st_read(t, (const uint8_t *)"local", 5, NULL, 0, false, now);
    if (!it) return sib_err_set(err, SIB_ENOMEM, "reading the node's local state");
    st_row row;
    bool have_id = false;
    while (st_iter_next(it, &row)) {
        for (size_t i = 0; i < row.ncells; i++) {
            const st_cell_view *cv = &row.cells[i];
            if (cv->col == LOCAL_HOST_ID && cv->vlen == 16) {
                memcpy(n->host_id, cv->val, 16);
                have_id = true;
            } else if (cv->col == LOCAL_GENERATION && cv->vlen == 8) {
                n->generation = (int64_t)get_be64(cv->val);
            } else if (cv->col == LOCAL_TOKENS && cv->vlen % 8 == 0 && cv->vlen) {
                n->ntokens = cv->vlen / 8;
                n->tokens = calloc(n->ntokens, sizeof *n->tokens);
                for (size_t k = 0; n->tokens && k < n->ntokens; k++) n->tokens[k] = (int64_t)get_be64(cv->val + 8 * k);
            }
        }
    }
    sib_err ierr = {0};
    int rc = st_iter_status(it, &ierr);
    st_iter_destroy(it);
    if (rc)
        return sib_err_set(err, rc,
                           "cannot read the node's local state (host id and tokens): %s. Refusing to start with a "
                           "new identity; restore the local-state table's SSTables or remove the data directory "
                           "to start as a new node",
                           ierr.msg);
    if (have_id && !n->tokens)
        return sib_err_set(err, SIB_ECORRUPT, "the node's local state has a host id but no tokens (or no memory for them)");
    return have_id && n->tokens ? 1 : 0;
}

static int local_state_write(node *n, sib_err *err)
{
    st_mutation *m = st_mutation_create(LOCAL_TABLE_ID, (const uint8_t *)"local", 5);
    uint8_t *toks = malloc(8 * n->ntokens);
    if (!m || !toks) { st_mutation_destroy(m); free(toks); return sib_err_set(err, SIB_ENOMEM, "local state"); }
    for (size_t k = 0; k < n->ntokens; k++) put_be64(toks + 8 * k, (uint64_t)n->tokens[k]);
    int64_t ts = sib_now_us();
    int rc = st_mut_row(m, (const uint8_t *)"", 0);
    if (!rc) rc = st_mut_cell(m, LOCAL_HOST_ID, n->host_id, 16, ts, 0, ST_NO_DELETION_TIME);
    if (!rc) rc = st_mut_cell(m, LOCAL_TOKENS, toks, 8 * n->ntokens, ts, 0, ST_NO_DELETION_TIME);
    uint8_t gen[8];
    put_be64(gen, (uint64_t)n->generation);
    if (!rc) rc = st_mut_cell(m, LOCAL_GENERATION, gen, 8, ts, 0, ST_NO_DELETION_TIME);
    if (!rc) rc = storage_apply(n->st, &m, 1, NULL, NULL, err);
    else sib_err_set(err, rc, "local state mutation");
    /* The node's identity must survive an OS crash too: fsync it now. */
    if (!rc) rc = storage_sync(n->st, NULL, NULL, err);
    st_mutation_destroy(m);
    free(toks);
    return rc;
}

static int open_storage(node *n, sib_err *err)
{
    node_config *c = &n->cfg;
    if (!c->commitlog_dir[0] &&
        snprintf(c->commitlog_dir, sizeof c->commitlog_dir, "%s/commitlog", c->data_dir) >= (int)sizeof c->commitlog_dir)
        return sib_err_set(err, SIB_ECONFIG, "data directory path too long");
    if (!c->hints_dir[0] && snprintf(c->hints_dir, sizeof c->hints_dir, "%s/hints", c->data_dir) >= (int)sizeof c->hints_dir)
        return sib_err_set(err, SIB_ECONFIG, "data directory path too long");
    int rc = mkdirs(c->data_dir, err);
    if (!rc) rc = mkdirs(c->commitlog_dir, err);
    if (rc) return rc;
    storage_opts so = {
        .data_dir = c->data_dir,
        .commitlog_dir = c->commitlog_dir,
        .sync = c->commitlog_sync == NODE_SYNC_BATCH ? ST_SYNC_BATCH
                : c->commitlog_sync == NODE_SYNC_GROUP ? ST_SYNC_GROUP : ST_SYNC_PERIODIC,
        .sync_period_ms = c->commitlog_sync_period_ms,
        .group_window_ms = c->commitlog_sync_group_window_ms,
        .segment_size = c->commitlog_segment_size,
        .loop = n->loop,
        .log = n->log,
        .memtable_heap_space = c->memtable_heap_space,
        .commitlog_total_space = c->commitlog_total_space,
        .sstable_block_size = c->sstable_block_size,
        .concurrent_compactors = c->concurrent_compactors,
        .compaction_deferred = true, /* until the schema has set each table's strategy */
        .concurrent_reads = c->concurrent_reads,
        /* cassandra.yaml's 0 means unthrottled; storage spells that < 0 */
        .compaction_throughput_mib = c->compaction_throughput_mib ? c->compaction_throughput_mib : -1,
        .auto_snapshot = c->auto_snapshot,
        .commitlog_ignore_replay_errors = c->commitlog_ignore_replay_errors,
        .disk_failure_policy = c->disk_failure_policy == NODE_DFP_BEST_EFFORT ? ST_DFP_BEST_EFFORT
                               : c->disk_failure_policy == NODE_DFP_IGNORE    ? ST_DFP_IGNORE
                                                                              : ST_DFP_STOP,
        /* yaml 0 = no cache (as Cassandra's cache sizes); storage spells that < 0 */
        .block_cache_size = c->block_cache_size == NODE_DEFAULT_SIZE ? 0
                            : c->block_cache_size      ? (int64_t)c->block_cache_size
                                                       : -1,
    };
    if ((rc = storage_open(&n->st, &so, err))) return rc;
    storage_replay_stats rs;
    if ((rc = storage_replay(n->st, &rs, err))) return rc;
    sib_log(n->log, SIB_INFO, "commitlog: replayed %llu segments, %llu mutations (%llu damaged segments)",
            (unsigned long long)rs.segments, (unsigned long long)rs.mutations, (unsigned long long)rs.bad_segments);
    /* As Cassandra does after replay: flush what it restored, so the
     * replayed segments are released (once the SSTables are durable) and
     * the next start does not replay them again; segments with nothing
     * unflushed (the spares a crash leaves) are released at once. */
    if (rs.segments && (rc = storage_flush(n->st, NULL, NULL, NULL, err))) return rc;
    /* the local state's folder: system/local-<id> (the schema's tables are
     * named once the schema is loaded, cql/exec_ddl.c) */
    st_table *lt = storage_table(n->st, LOCAL_TABLE_ID);
    if (!lt) return sib_err_set(err, SIB_ENOMEM, "local state table");
    return st_table_set_name(lt, "system", "local", err);
}

/* ---- descriptors ---- */

static void raise_fd_limit(node *n)
{
    struct rlimit before = {0};
    getrlimit(RLIMIT_NOFILE, &before);
    uint64_t hard = 0;
    sib_err err = {0};
    if (sib_fd_limit_raise(&n->fd_limit, &hard, &err))
        sib_log(n->log, SIB_WARN, "node: cannot raise the open file limit: %s; staying at %llu", err.msg,
                (unsigned long long)n->fd_limit);
    else
        sib_log(n->log, SIB_INFO, "node: open file limit %llu (soft was %llu, hard %llu)",
                (unsigned long long)n->fd_limit, (unsigned long long)before.rlim_cur, (unsigned long long)hard);
}

static sib_fd_budget fd_budget_now(node *n)
{
    storage_stats ss;
    storage_get_stats(n->st, &ss);
    sib_fd_budget b = {
        .limit = n->fd_limit,
        /* MHD may hold twice admin_max_connections (admin/server.c) */
        .base = FD_RESERVE_BASE + 2 * (uint64_t)n->cfg.admin_max_connections,
        .sstables = ss.sstables,
        /* two per peer: our connection to it and its connection to us */
        .internode = n->co ? 2 * (uint64_t)(coord_members(n->co) - 1) : 0,
    };
    return b;
}

/* Client connections allowed by budget b and the configured maximum. */
static uint64_t client_limit(const node *n, const sib_fd_budget *b)
{
    uint64_t lim = sib_fd_client_max(b);
    long long cfg = n->cfg.native_transport_max_concurrent_connections;
    return cfg >= 0 ? SIB_MIN(lim, (uint64_t)cfg) : lim;
}

/* cql_server_opts.conn_budget: re-read at most every FD_BUDGET_REFRESH_NS,
 * since a flood of connects asks at every accept. */
static uint64_t conn_budget(void *ctx)
{
    node *n = ctx;
    int64_t now = sib_mono_ns();
    if (!n->fd_budget_ns || now - n->fd_budget_ns >= FD_BUDGET_REFRESH_NS) {
        sib_fd_budget b = fd_budget_now(n);
        n->fd_budget = client_limit(n, &b);
        n->fd_budget_ns = now;
    }
    return n->fd_budget;
}

static void log_fd_budget(node *n)
{
    sib_fd_budget b = fd_budget_now(n);
    long long mc = n->cfg.native_transport_max_concurrent_connections;
    sib_log(n->log, SIB_INFO, "node: %llu descriptors kept for storage and admin (%llu SSTables open); "
            "client connections limited to %llu%s",
            (unsigned long long)sib_fd_reserve(&b), (unsigned long long)b.sstables,
            (unsigned long long)client_limit(n, &b),
            mc > (long long)sib_fd_client_max(&b) ? " (native_transport_max_concurrent_connections is above what "
                                                    "the open file limit leaves)" : "");
}

/* ---- admin API wiring ---- */

static size_t admin_client_count(void *ctx) { return cql_server_conn_count(((node *)ctx)->srv); }

static void admin_limits(void *ctx, admin_client_limits *out)
{
    node *n = ctx;
    cql_server_stats cs;
    cql_server_get_stats(n->srv, &cs);
    sib_fd_budget b = fd_budget_now(n);
    *out = (admin_client_limits){
        .fd_limit = n->fd_limit, .fd_reserved = sib_fd_reserve(&b),
        .connections = cs.conns, .connection_limit = client_limit(n, &b),
        .refused = cs.conns_refused, .timed_out = cs.conns_timed_out, .accept_backoffs = cs.accept_backoffs,
        .overloaded = cs.overloaded,
        .bytes_in_flight = cs.bytes_in_flight, .bytes_in_flight_limit = cs.max_bytes_in_flight,
        .backpressure = cs.backpressure,
        .prepared = cql_exec_prepared_count(n->ex), .prepared_bytes = cql_exec_prepared_bytes(n->ex),
        .prepared_bytes_limit = cql_exec_prepared_capacity(n->ex),
    };
}

typedef int (*table_op_fn)(storage *s, const uint8_t table_id[16], st_done_fn done, void *ctx, sib_err *err);

/* Runs a storage operation on one table, every table of a keyspace, or
 * everything (ks NULL). */
static int on_tables(node *n, table_op_fn op, const char *ks, const char *table, sib_err *err)
{
    if (!ks) return op(n->st, NULL, NULL, NULL, err);
    const sch_keyspace *k = sch_catalog_keyspace(n->cat, ks);
    if (!k) return sib_err_set(err, SIB_EINVAL, "Keyspace '%s' does not exist", ks);
    if (table) {
        const sch_table *t = sch_catalog_table(n->cat, ks, table);
        if (!t) return sib_err_set(err, SIB_EINVAL, "Table '%s.%s' does not exist", ks, table);
        return op(n->st, sch_table_id(t), NULL, NULL, err);
    }
    int rc = 0;
    for (size_t i = 0; !rc && i < sch_keyspace_table_count(k); i++)
        rc = op(n->st, sch_table_id(sch_keyspace_table_at(k, i)), NULL, NULL, err);
    return rc;
}

/* Flushes run on storage's worker: the admin API answers at once and
 * `flushes_pending` in /info says when they are live (sibyltool flush waits
 * on it). Major compactions run on the compaction workers (compactionstats
 * shows their progress). */
static int admin_flush(void *ctx, const char *ks, const char *table, sib_err *err)
{
    return on_tables(ctx, storage_flush, ks, table, err);
}

static int admin_compact(void *ctx, const char *ks, const char *table, sib_err *err)
{
    return on_tables(ctx, storage_compact, ks, table, err);
}

/* nodetool removenode <host id>, with Cassandra's refusals (its
 * StorageService.removeNode): the removal is then gossiped from here
 * (gsp_advertise_removed), and every node, this one included, drops the
 * member in gossip_change. Nothing is streamed. */
static int admin_removenode(void *ctx, const char *host_id, sib_err *err)
{
    node *n = ctx;
    uint8_t id[16], peer[16];
    if (strlen(host_id) != 36 || !sib_uuid_parse(host_id, 36, id))
        return sib_err_set(err, SIB_EINVAL, "Invalid host id '%s': a UUID such as sibyltool status shows", host_id);
    if (!memcmp(id, n->host_id, 16)) return sib_err_set(err, SIB_EINVAL, "Cannot remove self");
    gsp_endpoint_view v;
    for (size_t i = 1; gsp_endpoint_at(n->gsp, i, &v); i++) {
        const char *hid = v.states[GSP_HOST_ID];
        if (!hid || strlen(hid) != 36 || !sib_uuid_parse(hid, 36, peer) || memcmp(peer, id, 16)) continue;
        if (!coord_member_in_ring(n->co, v.addr))
            return sib_err_set(err, SIB_EINVAL, "Node to be removed is not a member of the token ring");
        char addr[64];
        snprintf(addr, sizeof addr, "%s", v.addr); /* the view ends with the next gossip call */
        int rc = gsp_advertise_removed(n->gsp, addr, v.port, err);
        if (!rc) sib_log(n->log, SIB_INFO, "node: removenode of host id %s (/%s): no data is streamed", host_id, addr);
        return rc;
    }
    return sib_err_set(err, SIB_ENOTFOUND, "Host ID not found.");
}

/* admin_auth_token, or the first line of admin_auth_token_file ("" = no
 * token). A file that cannot be read, or is empty, stops start-up: an
 * operator who asked for a token must not get an open API. */
static int admin_token(const node_config *c, char *out, size_t n, sib_err *err)
{
    snprintf(out, n, "%s", c->admin_auth_token);
    if (out[0] || !c->admin_auth_token_file[0]) return 0;
    FILE *f = fopen(c->admin_auth_token_file, "r");
    if (!f) return sib_err_errno(err, "admin_auth_token_file %s", c->admin_auth_token_file);
    if (!fgets(out, (int)n, f)) out[0] = 0;
    fclose(f);
    out[strcspn(out, "\r\n")] = 0;
    if (!out[0]) return sib_err_set(err, SIB_ECONFIG, "admin_auth_token_file %s is empty", c->admin_auth_token_file);
    return 0;
}

/* Counts CQL requests for /metrics and serves the admin API on
 * admin_address:admin_port. */
static int open_admin(node *n, int64_t generation, sib_err *err)
{
    n->metrics = admin_metrics_create();
    if (!n->metrics) return sib_err_set(err, SIB_ENOMEM, "metrics");
    int wrc = admin_metrics_watch_loop(n->metrics, n->loop, err);
    if (wrc) return wrc;
    cql_exec_observer ob = {.ctx = n->metrics, .request = admin_metrics_on_request, .error = admin_metrics_on_error,
                            .table_op = admin_metrics_on_table_op, .request_op = admin_metrics_on_request_op};
    cql_exec_set_observer(n->ex, &ob);
    admin_node_info ai = {.native_port = n->cfg.native_transport_port, .tokens = n->tokens, .ntokens = n->ntokens,
                          .generation = generation};
    snprintf(ai.cluster_name, sizeof ai.cluster_name, "%s", n->cfg.cluster_name);
    snprintf(ai.listen_address, sizeof ai.listen_address, "%s", n->cfg.listen_address);
    snprintf(ai.rpc_address, sizeof ai.rpc_address, "%s", n->cfg.rpc_address);
    snprintf(ai.dc, sizeof ai.dc, "%s", n->cfg.datacenter);
    snprintf(ai.rack, sizeof ai.rack, "%s", n->cfg.rack);
    memcpy(ai.host_id, n->host_id, 16);
    char token[256];
    int rc = admin_token(&n->cfg, token, sizeof token, err);
    if (rc) return rc;
    admin_opts ao = {
        .loop = n->loop, .log = n->log, .bind_addr = n->cfg.admin_address, .port = (uint16_t)n->cfg.admin_port,
        .auth_token = token, .max_connections = (unsigned)n->cfg.admin_max_connections,
        .connection_timeout = n->cfg.admin_connection_timeout_ms / 1000.0,
        .st = n->st, .cat = n->cat, .co = n->co, .gsp = n->gsp, .metrics = n->metrics, .node = &ai,
        .hooks = {.ctx = n, .client_count = admin_client_count, .client_limits = admin_limits,
                  .flush = admin_flush, .compact = admin_compact, .removenode = admin_removenode},
    };
    n->admin = admin_server_create(&ao, err);
    explicit_bzero(token, sizeof token);
    return n->admin ? 0 : (err->code ? err->code : SIB_EIO);
}

/* A restart within the same second must still look like a restart to the
 * peers (a higher generation replaces the old state, an equal one would be
 * ignored), so the generation is persisted and always moves forward. */
static int next_generation(node *n, sib_err *err)
{
    int64_t now = sib_now_us() / 1000000;
    n->generation = n->generation >= now ? n->generation + 1 : now;
    return local_state_write(n, err);
}

/* A seed other than this node: it joins a cluster rather than starting one. */
static bool has_other_seed(const node_config *c)
{
    char seeds[sizeof c->seeds];
    snprintf(seeds, sizeof seeds, "%s", c->seeds);
    char *save = NULL;
    for (char *tok = strtok_r(seeds, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        char *colon = strchr(tok, ':');
        if (colon) *colon = 0;
        if (strcmp(tok, c->listen_address)) return true;
    }
    return false;
}

/* ---- the ring a joining node learns before choosing its tokens ---- */

/* A first start whose seeds name another node joins a ring it does not know
 * yet, and the token allocator needs that ring: chosen blind (evenly spaced
 * from a random start, as a first node does) every node's vnodes sit at one
 * phase and the shares come out as uneven as with one token per node. So,
 * as Cassandra's joining node learns the ring from gossip before it
 * allocates, it first gossips on a loop of its own, publishing nothing
 * (peers see an endpoint without STATUS, which no ring, driver event or
 * replica list takes), until the endpoints it knows, the NORMAL ones and
 * their tokens have not changed for RING_QUIET_ROUNDS rounds, at most
 * RING_PROBE_MAX_S. While it has heard from nobody, the quiet rounds
 * must also span RING_ALONE_S: a seed started before the others, which
 * nobody answers, goes on after that with the empty ring, but a peer that
 * is slow to answer its first gossip (a loaded machine) is waited for,
 * instead of being taken for an empty cluster. That
 * gossiper's generation is one below the real one's, so the peers take the
 * real start for a restart of it. */
#define RING_QUIET_ROUNDS 3
#define RING_PROBE_MAX_S 10.0
#define RING_ALONE_S 3.0

typedef struct ring_probe {
    gossip *gsp;
    int64_t *tokens;  /* the NORMAL members' tokens, owner i = i-th member */
    uint32_t *owners;
    size_t ntokens, nmembers;
    size_t last_endpoints, last_members, last_tokens, quiet;
    double start, deadline;
} ring_probe;

static void probe_clear(ring_probe *p)
{
    free(p->tokens);
    free(p->owners);
    p->tokens = NULL;
    p->owners = NULL;
    p->ntokens = p->nmembers = 0;
}

/* Re-reads every NORMAL peer's tokens from the gossiper. */
static int probe_collect(ring_probe *p)
{
    probe_clear(p);
    gsp_endpoint_view v;
    for (size_t i = 1; gsp_endpoint_at(p->gsp, i, &v); i++) {
        if (v.is_self || !v.states[GSP_STATUS] || strncmp(v.states[GSP_STATUS], "NORMAL", 6)) continue;
        int64_t *toks;
        size_t nt = gsp_parse_tokens(v.states[GSP_TOKENS], &toks);
        int64_t *t = nt ? realloc(p->tokens, (p->ntokens + nt) * sizeof *t) : NULL;
        if (t) p->tokens = t;
        uint32_t *o = t ? realloc(p->owners, (p->ntokens + nt) * sizeof *o) : NULL;
        if (o) p->owners = o;
        if (nt && (!t || !o)) { free(toks); return SIB_ENOMEM; }
        for (size_t k = 0; k < nt; k++) {
            p->tokens[p->ntokens + k] = toks[k];
            p->owners[p->ntokens + k] = (uint32_t)p->nmembers;
        }
        p->ntokens += nt;
        p->nmembers += nt > 0;
        free(toks);
    }
    return 0;
}

static void on_probe_round(struct ev_loop *loop, ev_timer *w, int revents)
{
    ring_probe *p = w->data;
    int rc = probe_collect(p);
    size_t endpoints = gsp_endpoint_count(p->gsp);
    bool same = endpoints == p->last_endpoints && p->nmembers == p->last_members && p->ntokens == p->last_tokens;
    p->quiet = same ? p->quiet + 1 : 0;
    p->last_endpoints = endpoints;
    p->last_members = p->nmembers;
    p->last_tokens = p->ntokens;
    bool alone = endpoints <= 1; /* only itself: no gossip answered yet */
    bool settled = p->quiet >= RING_QUIET_ROUNDS && (!alone || ev_now(loop) >= p->start + RING_ALONE_S);
    if (rc || settled || ev_now(loop) >= p->deadline) ev_break(loop, EVBREAK_ALL);
}

/* Fills p with the ring as gossip shows it (possibly empty: no seed
 * answered in time). Everything it started is gone when it returns. */
static int probe_ring(node *n, ring_probe *p, sib_err *err)
{
    const node_config *c = &n->cfg;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    if (!loop) return sib_err_set(err, SIB_ENOMEM, "ring probe loop");
    msg_opts mo = {.loop = loop, .log = n->log, .cluster_name = c->cluster_name, .bind_addr = c->listen_address,
                   .port = (uint16_t)c->storage_port};
    msg_service *ms = msg_service_create(&mo, err);
    gsp_opts go = {.loop = loop, .log = n->log, .ms = ms, .cluster_name = c->cluster_name,
                   .addr = c->listen_address, .port = (uint16_t)c->storage_port, .seeds = c->seeds,
                   .interval_ms = c->gossip_interval_ms, .phi_convict_threshold = c->phi_convict_threshold,
                   .generation = (int32_t)(sib_now_us() / 1000000 - 1)};
    p->gsp = ms ? gsp_create(&go, err) : NULL;
    int rc = p->gsp ? 0 : err->code ? err->code : SIB_EIO;
    if (!rc) {
        double round = (c->gossip_interval_ms > 0 ? c->gossip_interval_ms : 1000) / 1000.0;
        p->start = ev_now(loop);
        p->deadline = p->start + RING_PROBE_MAX_S;
        ev_timer t;
        ev_timer_init(&t, on_probe_round, round, round);
        t.data = p;
        ev_timer_start(loop, &t);
        gsp_start(p->gsp);
        ev_run(loop, 0);
        ev_timer_stop(loop, &t);
        bool settled = p->quiet >= RING_QUIET_ROUNDS;
        rc = probe_collect(p);
        if (rc) sib_err_set(err, rc, "ring probe");
        else
            sib_log(n->log, SIB_INFO, "node: the ring as gossip shows it: %zu NORMAL members, %zu tokens (%s)",
                    p->nmembers, p->ntokens, settled ? "settled" : "still changing when the wait ended");
    }
    msg_service_destroy(ms); /* first: its pending requests point at the gossiper */
    gsp_destroy(p->gsp);
    p->gsp = NULL;
    ev_loop_destroy(loop);
    return rc;
}

static int open_identity(node *n, sib_err *err)
{
    int found = local_state_read(n, err);
    if (found < 0) return found;
    if (found) return next_generation(n, err);
    sib_rng rng;
    sib_rng_seed(&rng);
    sib_uuid_v4(&rng, n->host_id);
    n->ntokens = (size_t)n->cfg.num_tokens;
    n->tokens = calloc(n->ntokens, sizeof *n->tokens);
    if (!n->tokens) return sib_err_set(err, SIB_ENOMEM, "tokens");
    /* A first node's ring is empty, so the allocator spaces the tokens
     * evenly; a joining node learns the ring first (probe_ring) and gets
     * tokens that keep ownership balanced at
     * allocate_tokens_for_local_replication_factor. */
    ring_probe ring = {0};
    int rc = has_other_seed(&n->cfg) ? probe_ring(n, &ring, err) : 0;
    if (!rc)
        rc = coord_allocate_tokens(ring.tokens, ring.owners, ring.ntokens, ring.nmembers, n->cfg.allocate_tokens_rf,
                                   &rng, n->tokens, n->ntokens, err);
    size_t known = ring.nmembers;
    probe_clear(&ring);
    if (rc) return rc;
    char hid[37];
    sib_uuid_format(n->host_id, hid);
    sib_log(n->log, SIB_INFO, "node: first start, host id %s with %zu tokens (allocated against %zu known members)",
            hid, n->ntokens, known);
    if (has_other_seed(&n->cfg))
        sib_log(n->log, SIB_WARN, "node: joining a cluster: there is no bootstrap streaming yet, so this "
                "node does not receive existing data of the token ranges it takes; reads at ONE on it may miss "
                "rows written before it joined (docs/cluster.md, section 1)");
    return next_generation(n, err);
}

/* ---- gossip wiring ---- */

/* Where drivers reach a peer: NATIVE_ADDRESS_AND_PORT "ip:port". */
static bool native_addr(const gsp_endpoint_view *v, uint8_t ip[4], int32_t *port)
{
    char host[64];
    int p;
    if (!gsp_split_host_port(v->states[GSP_NATIVE_ADDRESS_AND_PORT], host, sizeof host, &p)) return false;
    *port = p;
    return inet_pton(AF_INET, host, ip) == 1;
}

static void gossip_status(node *n, const gsp_endpoint_view *v, bool up)
{
    coord_member_set_alive(n->co, v->addr, up);
    uint8_t ip[4];
    int32_t port;
    if (n->srv && native_addr(v, ip, &port)) cql_server_broadcast_status(n->srv, up, ip, 4, port);
}

static void gossip_up(void *ctx, const gsp_endpoint_view *v)
{
    node *n = ctx;
    gossip_status(n, v, true);
    if (n->sync) node_schema_sync_peer(n->sync, v);
}
static void gossip_down(void *ctx, const gsp_endpoint_view *v) { gossip_status(ctx, v, false); }

/* A peer removed by removenode (STATUS removed, from any node) or gone by
 * decommission (LEFT) leaves the ring; drivers hear REMOVED_NODE, and
 * system.peers no longer lists it (exec_system.c lists NORMAL and shutdown
 * peers only). */
static void member_gone(node *n, const gsp_endpoint_view *v)
{
    if (!coord_member_remove(n->co, v->addr)) return;
    const char *hid = v->states[GSP_HOST_ID];
    sib_log(n->log, SIB_WARN, "node: /%s (host id %s) left the ring (%s). Its data was not streamed to the nodes "
            "that take over its ranges: there is no streaming yet, so they hold only the replicas they already had",
            v->addr, hid ? hid : "?", v->states[GSP_STATUS]);
    uint8_t ip[4];
    int32_t port;
    if (n->srv && native_addr(v, ip, &port)) cql_server_broadcast_topology(n->srv, CQL_TOPO_REMOVED_NODE, ip, 4, port);
}

/* A NORMAL peer's tokens go into the ring (ownership, replicas, Unavailable
 * checks); the first time, drivers hear NEW_NODE. */
static void gossip_change(void *ctx, const gsp_endpoint_view *v, gsp_key key)
{
    node *n = ctx;
    if (key == GSP_SCHEMA && n->sync) node_schema_sync_peer(n->sync, v);
    if (key != GSP_STATUS && key != GSP_TOKENS) return;
    const char *st = v->states[GSP_STATUS];
    if (key == GSP_STATUS && st && (!strncmp(st, "removed,", 8) || !strncmp(st, "LEFT,", 5))) {
        member_gone(n, v);
        return;
    }
    if (!st || strncmp(st, "NORMAL", 6)) return;
    int64_t *toks;
    size_t nt = gsp_parse_tokens(v->states[GSP_TOKENS], &toks);
    if (!nt) { free(toks); return; }
    bool known = coord_member_in_ring(n->co, v->addr);
    coord_member_opts mo = {.tokens = toks, .ntokens = nt, .port = v->port};
    snprintf(mo.addr, sizeof mo.addr, "%s", v->addr);
    snprintf(mo.dc, sizeof mo.dc, "%s", v->states[GSP_DC] ? v->states[GSP_DC] : "");
    snprintf(mo.rack, sizeof mo.rack, "%s", v->states[GSP_RACK] ? v->states[GSP_RACK] : "");
    const char *hid = v->states[GSP_HOST_ID];
    if (hid) sib_uuid_parse(hid, strlen(hid), mo.host_id);
    if (coord_member_update(n->co, &mo) == 0) {
        coord_member_set_alive(n->co, v->addr, v->alive);
        uint8_t ip[4];
        int32_t port;
        if (!known && n->srv && native_addr(v, ip, &port))
            cql_server_broadcast_topology(n->srv, CQL_TOPO_NEW_NODE, ip, 4, port);
    }
    free(toks);
}

static void publish_load_schema(node *n, bool load)
{
    char buf[64];
    node_schema_sync_publish(n->sync);
    if (load) {
        storage_stats ss;
        storage_get_stats(n->st, &ss);
        snprintf(buf, sizeof buf, "%.1f", (double)(ss.memtable_bytes + ss.sstable_bytes));
        gsp_set_state(n->gsp, GSP_LOAD, buf);
    }
}

static void on_state_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    node *n = w->data;
    publish_load_schema(n, ++n->state_ticks % LOAD_EVERY_TICKS == 0);
}

static int publish_local_state(node *n)
{
    const node_config *c = &n->cfg;
    char buf[256], hid[37];
    char *toks = gsp_format_tokens(n->tokens, n->ntokens);
    if (!toks) return SIB_ENOMEM;
    sib_uuid_format(n->host_id, hid);
    int rc = gsp_set_state(n->gsp, GSP_TOKENS, toks);
    free(toks);
    if (!rc) rc = gsp_set_state(n->gsp, GSP_HOST_ID, hid);
    if (!rc) rc = gsp_set_state(n->gsp, GSP_DC, c->datacenter);
    if (!rc) rc = gsp_set_state(n->gsp, GSP_RACK, c->rack);
    if (!rc) rc = gsp_set_state(n->gsp, GSP_RELEASE_VERSION, SIB_RELEASE_VERSION);
    if (!rc) rc = gsp_set_state(n->gsp, GSP_RPC_ADDRESS, c->rpc_address);
    snprintf(buf, sizeof buf, "%s:%d", c->rpc_address, c->native_transport_port);
    if (!rc) rc = gsp_set_state(n->gsp, GSP_NATIVE_ADDRESS_AND_PORT, buf);
    if (!rc) rc = gsp_set_state(n->gsp, GSP_NET_VERSION, "12");
    if (!rc) rc = gsp_set_state(n->gsp, GSP_RPC_READY, "true");
    snprintf(buf, sizeof buf, "NORMAL,%" PRId64, n->ntokens ? n->tokens[0] : 0);
    if (!rc) rc = gsp_set_state(n->gsp, GSP_STATUS, buf);
    if (!rc) publish_load_schema(n, true);
    return rc;
}

/* Internode port and gossip. With no seeds configured the node is its own
 * seed: a one-node cluster that gossips with nobody. Created before the
 * executor (system.peers reads it), started once everything else is up. */
static int create_gossip(node *n, int64_t generation, sib_err *err)
{
    const node_config *c = &n->cfg;
    msg_opts mo = {.loop = n->loop, .log = n->log, .cluster_name = c->cluster_name, .bind_addr = c->listen_address,
                   .port = (uint16_t)c->storage_port};
    if (!(n->ms = msg_service_create(&mo, err))) return err->code ? err->code : SIB_EIO;
    gsp_opts go = {
        .loop = n->loop, .log = n->log, .ms = n->ms, .cluster_name = c->cluster_name, .addr = c->listen_address,
        .port = (uint16_t)c->storage_port, .seeds = c->seeds, .interval_ms = c->gossip_interval_ms,
        .phi_convict_threshold = c->phi_convict_threshold, .generation = (int32_t)generation,
        .listener = {.ctx = n, .up = gossip_up, .down = gossip_down, .change = gossip_change},
    };
    if (!(n->gsp = gsp_create(&go, err))) return err->code ? err->code : SIB_ENOMEM;
    return 0;
}

static int start_gossip(node *n, sib_err *err)
{
    const node_config *c = &n->cfg;
    int rc = publish_local_state(n);
    if (rc) return sib_err_set(err, rc, "gossip: publishing the local state");
    ev_timer_init(&n->state_timer, on_state_timer, STATE_REFRESH_S, STATE_REFRESH_S);
    n->state_timer.data = n;
    ev_timer_start(n->loop, &n->state_timer);
    gsp_start(n->gsp);
    node_schema_sync_start(n->sync);
    sib_log(n->log, SIB_INFO, "gossip: internode port %s:%d, seeds %s, interval %d ms, phi_convict_threshold %.1f",
            c->listen_address, c->storage_port, c->seeds[0] ? c->seeds : c->listen_address, c->gossip_interval_ms,
            c->phi_convict_threshold);
    return 0;
}

static void on_stop_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    node *n = w->data;
    if (!gsp_shutdown_sent(n->gsp) && ev_now(loop) < n->stop_deadline) return;
    ev_timer_stop(loop, w);
    n->stop_done(n->stop_ctx);
}

void node_stop(node *n, void (*done)(void *ctx), void *ctx)
{
    size_t told = n->gsp ? gsp_announce_shutdown(n->gsp) : 0;
    if (!told) { done(ctx); return; }
    n->stop_done = done;
    n->stop_ctx = ctx;
    n->stop_deadline = ev_now(n->loop) + SHUTDOWN_ANNOUNCE_S;
    ev_timer_init(&n->stop_timer, on_stop_timer, 0.02, 0.02);
    n->stop_timer.data = n;
    ev_timer_start(n->loop, &n->stop_timer);
}

/* coord_io.schema_pull: a replica that gets a mutation for a table it does
 * not know pulls the sender's schema first (node_schema_pull's contract). */
static int coord_schema_pull(void *ctx, const char *host, uint16_t port, coord_schema_done_fn done, void *done_ctx)
{
    sib_err err = {0};
    return node_schema_pull(ctx, host, port, done, done_ctx, &err);
}

/* coord_io.table_repl: the batchlog replay routes a stored mutation by the
 * replication its table's keyspace has now. */
static int coord_table_repl(void *ctx, const uint8_t table_id[16], coord_repl *out)
{
    node *n = ctx;
    const sch_table *t = sch_catalog_table_by_id(n->cat, table_id);
    const sch_keyspace *k = t ? sch_catalog_keyspace(n->cat, sch_table_keyspace(t)) : NULL;
    if (!k) return SIB_ENOTFOUND;
    const sch_strmap *m = sch_keyspace_replication(k);
    const char *keys[COORD_MAX_DCS + 2], *vals[COORD_MAX_DCS + 2];
    size_t nk = 0;
    for (size_t i = 0; i < m->n && nk < SIB_ARRAY_LEN(keys); i++, nk++) {
        keys[nk] = m->kv[i].key;
        vals[nk] = m->kv[i].value;
    }
    sib_err err = {0};
    return coord_repl_parse(keys, vals, nk, out, NULL, &err);
}

int node_open(node **out, const node_config *cfg, struct ev_loop *loop, sib_log *log, sib_err *err)
{
    *out = NULL;
    node *n = calloc(1, sizeof *n);
    if (!n) return sib_err_set(err, SIB_ENOMEM, "node");
    n->cfg = *cfg;
    n->loop = loop;
    n->log = log;
    raise_fd_limit(n);
    int rc = open_storage(n, err);
    if (!rc) rc = open_identity(n, err);
    if (rc) { node_close(n); return rc; }

    coord_member_opts mo = {.tokens = n->tokens, .ntokens = n->ntokens, .port = (uint16_t)cfg->storage_port};
    snprintf(mo.addr, sizeof mo.addr, "%s", cfg->listen_address);
    snprintf(mo.dc, sizeof mo.dc, "%s", cfg->datacenter);
    snprintf(mo.rack, sizeof mo.rack, "%s", cfg->rack);
    memcpy(mo.host_id, n->host_id, 16);
    n->co = coord_create(&mo, log);
    n->cat = sch_catalog_create();
    if (!n->co || !n->cat) { node_close(n); return sib_err_set(err, SIB_ENOMEM, "node"); }

    cql_exec_node_info info = {.native_port = cfg->native_transport_port, .storage_port = cfg->storage_port,
                               .tokens = n->tokens, .ntokens = n->ntokens};
    snprintf(info.cluster_name, sizeof info.cluster_name, "%s", cfg->cluster_name);
    snprintf(info.listen_address, sizeof info.listen_address, "%s", cfg->listen_address);
    snprintf(info.rpc_address, sizeof info.rpc_address, "%s", cfg->rpc_address);
    snprintf(info.dc, sizeof info.dc, "%s", cfg->datacenter);
    snprintf(info.rack, sizeof info.rack, "%s", cfg->rack);
    memcpy(info.host_id, n->host_id, 16);
    info.gossip_generation = n->generation;
    if ((rc = create_gossip(n, info.gossip_generation, err))) { node_close(n); return rc; }
    coord_io cio = {.loop = loop, .ms = n->ms, .st = n->st, .write_timeout_ms = cfg->write_request_timeout_ms,
                    .read_timeout_ms = cfg->read_request_timeout_ms, .range_timeout_ms = cfg->range_request_timeout_ms,
                    .schema_pull = coord_schema_pull, .schema_pull_ctx = n,
                    .table_repl = coord_table_repl, .table_repl_ctx = n,
                    .batchlog_replay_interval_ms = cfg->batchlog_replay_interval_ms};
    coord_attach(n->co, &cio);
    cql_exec_opts eo = {
        .st = n->st, .cat = n->cat, .co = n->co, .log = log, .node = &info, .gsp = n->gsp,
        .batch_size_fail_threshold = cfg->batch_size_fail_threshold,
        .tombstone_warn_threshold = cfg->tombstone_warn_threshold,
        .default_keyspace_rf = cfg->default_keyspace_rf,
        .tombstone_failure_threshold = cfg->tombstone_failure_threshold,
        .max_scatter_buckets = cfg->max_scatter_buckets,
        .prepared_cache_size = cfg->prepared_statements_cache_size == NODE_DEFAULT_SIZE
                                   ? 0 : SIB_MAX(cfg->prepared_statements_cache_size, (size_t)1),
    };
    if ((rc = cql_exec_create(&n->ex, &eo, err))) { node_close(n); return rc; }
    storage_compaction_release(n->st); /* the schema gave every table its strategy */
    node_schema_sync_opts sso = {.loop = loop, .log = log, .ms = n->ms, .gsp = n->gsp, .ex = n->ex, .cat = n->cat};
    if (!(n->sync = node_schema_sync_create(&sso))) { node_close(n); return sib_err_set(err, SIB_ENOMEM, "node"); }

    cql_server_opts so = {
        .bind_addr = cfg->rpc_address,
        .port = (uint16_t)cfg->native_transport_port,
        .max_frame_size = (uint32_t)cfg->native_transport_max_frame_size,
        .max_inflight = (uint32_t)cfg->native_transport_max_concurrent_requests,
        .max_conns_per_ip = cfg->native_transport_max_concurrent_connections_per_ip > 0
                                ? (uint32_t)SIB_MIN(cfg->native_transport_max_concurrent_connections_per_ip, UINT32_MAX)
                                : 0,
        .conn_budget = conn_budget,
        .conn_budget_ctx = n,
        .max_bytes_in_flight = cfg->native_transport_max_request_data_in_flight == NODE_DEFAULT_SIZE
                                   ? (size_t)(sib_memory_budget() / 10)
                                   : cfg->native_transport_max_request_data_in_flight,
        .startup_timeout = cfg->native_transport_startup_timeout_ms / 1000.0,
        .idle_timeout = cfg->native_transport_idle_timeout_ms / 1000.0,
        .frame_timeout = cfg->native_transport_frame_read_timeout_ms / 1000.0,
        .log = log,
    };
    n->srv = cql_server_create(loop, &so, cql_exec_base(n->ex), err);
    if (!n->srv) { node_close(n); return err->code ? err->code : SIB_EIO; }
    cql_exec_set_server(n->ex, n->srv);
    log_fd_budget(n);
    if ((rc = open_admin(n, info.gossip_generation, err))) { node_close(n); return rc; }
    if ((rc = start_gossip(n, err))) { node_close(n); return rc; }
    sib_log(log, SIB_INFO, "sibyld: serving CQL native protocol on %s:%d (cluster '%s', data %s, commitlog_sync %s)",
            cfg->rpc_address, cfg->native_transport_port, cfg->cluster_name, cfg->data_dir,
            cfg->commitlog_sync == NODE_SYNC_BATCH ? "batch" : cfg->commitlog_sync == NODE_SYNC_GROUP ? "group" : "periodic");
    *out = n;
    return 0;
}

void node_close(node *n)
{
    if (!n) return;
    /* Reads on the pool reply through the server and the executor: deliver
     * them while both still exist (new ones are refused from here on). */
    if (n->co) coord_batchlog_stop(n->co);
    if (n->st) storage_read_drain(n->st);
    if (n->loop) {
        ev_timer_stop(n->loop, &n->state_timer);
        ev_timer_stop(n->loop, &n->stop_timer);
    }
    /* messaging first: its pending requests point into the gossiper */
    msg_service_destroy(n->ms);
    node_schema_sync_destroy(n->sync); /* its pulls are gone with messaging */
    gsp_destroy(n->gsp);
    admin_server_destroy(n->admin);
    if (n->srv) cql_server_destroy(n->srv);
    cql_exec_destroy(n->ex);
    admin_metrics_destroy(n->metrics);
    if (n->st) storage_close(n->st);
    sch_catalog_destroy(n->cat);
    coord_destroy(n->co);
    free(n->tokens);
    free(n);
}

int node_schema_pull(node *n, const char *peer, uint16_t port, node_schema_done_fn done, void *ctx, sib_err *err)
{
    return node_schema_sync_pull(n->sync, peer, port, done, ctx, err);
}
