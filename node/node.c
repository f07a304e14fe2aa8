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
 *      the engine, and only then does the native port accept clients.
 */
#include "node.h"

#include <errno.h>
#include <ev.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "admin.h"
#include "coordinator.h"
#include "cql.h"
#include "cql_exec.h"
#include "schema.h"
#include "storage.h"

static const uint8_t LOCAL_TABLE_ID[16] = {0x5b, 0x1b, 0x5c, 0x4e, 0x00, 0x00, 0x40, 0x00,
                                           0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02};
enum { LOCAL_HOST_ID = 1, LOCAL_TOKENS = 2 };

struct node {
    node_config cfg;
    struct ev_loop *loop;
    sib_log *log;
    storage *st;
    sib_catalog *cat;
    coord *co;
    cql_exec *ex;
    cql_server *srv;
    admin_metrics *metrics; /* fed by the executor's observer */
    admin_server *admin;    /* HTTP admin API + /metrics */
    uint8_t host_id[16];
    int64_t *tokens;
    size_t ntokens;
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

/* Reads host id and tokens; false when this is the node's first start. */
static bool local_state_read(node *n)
{
    st_table *t = storage_table_find(n->st, LOCAL_TABLE_ID);
    if (!t) return false;
    int32_t now = (int32_t)(sib_now_us() / 1000000);
    st_iter *it = st_read(t, (const uint8_t *)"local", 5, NULL, 0, false, now);
    if (!it) return false;
    st_row row;
    bool have_id = false;
    while (st_iter_next(it, &row)) {
        for (size_t i = 0; i < row.ncells; i++) {
            const st_cell_view *cv = &row.cells[i];
            if (cv->col == LOCAL_HOST_ID && cv->vlen == 16) {
                memcpy(n->host_id, cv->val, 16);
                have_id = true;
            } else if (cv->col == LOCAL_TOKENS && cv->vlen % 8 == 0 && cv->vlen) {
                n->ntokens = cv->vlen / 8;
                n->tokens = calloc(n->ntokens, sizeof *n->tokens);
                for (size_t k = 0; n->tokens && k < n->ntokens; k++) n->tokens[k] = (int64_t)get_be64(cv->val + 8 * k);
            }
        }
    }
    st_iter_destroy(it);
    return have_id && n->tokens;
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
        .concurrent_reads = c->concurrent_reads,
        /* cassandra.yaml's 0 means unthrottled; storage spells that < 0 */
        .compaction_throughput_mib = c->compaction_throughput_mib ? c->compaction_throughput_mib : -1,
        .auto_snapshot = c->auto_snapshot,
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
    return 0;
}

/* ---- admin API wiring ---- */

static size_t admin_client_count(void *ctx) { return cql_server_conn_count(((node *)ctx)->srv); }

typedef int (*table_op_fn)(storage *s, const uint8_t table_id[16], st_done_fn done, void *ctx, sib_err *err);

/* Runs a storage operation on one table, every table of a keyspace, or
 * everything (ks NULL). */
static int on_tables(node *n, table_op_fn op, const char *ks, const char *table, sib_err *err)
{
    if (!ks) return op(n->st, NULL, NULL, NULL, err);
    const sib_keyspace *k = sib_catalog_keyspace(n->cat, ks);
    if (!k) return sib_err_set(err, SIB_EINVAL, "Keyspace '%s' does not exist", ks);
    if (table) {
        const sib_table *t = sib_catalog_table(n->cat, ks, table);
        if (!t) return sib_err_set(err, SIB_EINVAL, "Table '%s.%s' does not exist", ks, table);
        return op(n->st, sib_table_id(t), NULL, NULL, err);
    }
    int rc = 0;
    for (size_t i = 0; !rc && i < sib_keyspace_table_count(k); i++)
        rc = op(n->st, sib_table_id(sib_keyspace_table_at(k, i)), NULL, NULL, err);
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

/* Counts CQL requests for /metrics and serves the admin API on
 * listen_address:admin_port. */
static int open_admin(node *n, int64_t generation, sib_err *err)
{
    n->metrics = admin_metrics_create();
    if (!n->metrics) return sib_err_set(err, SIB_ENOMEM, "metrics");
    int wrc = admin_metrics_watch_loop(n->metrics, n->loop, err);
    if (wrc) return wrc;
    cql_exec_observer ob = {.ctx = n->metrics, .request = admin_metrics_on_request, .error = admin_metrics_on_error,
                            .table_op = admin_metrics_on_table_op};
    cql_exec_set_observer(n->ex, &ob);
    admin_node_info ai = {.native_port = n->cfg.native_transport_port, .tokens = n->tokens, .ntokens = n->ntokens,
                          .generation = generation};
    snprintf(ai.cluster_name, sizeof ai.cluster_name, "%s", n->cfg.cluster_name);
    snprintf(ai.listen_address, sizeof ai.listen_address, "%s", n->cfg.listen_address);
    snprintf(ai.rpc_address, sizeof ai.rpc_address, "%s", n->cfg.rpc_address);
    snprintf(ai.dc, sizeof ai.dc, "%s", n->cfg.datacenter);
    snprintf(ai.rack, sizeof ai.rack, "%s", n->cfg.rack);
    memcpy(ai.host_id, n->host_id, 16);
    admin_opts ao = {
        .loop = n->loop, .log = n->log, .bind_addr = n->cfg.listen_address, .port = (uint16_t)n->cfg.admin_port,
        .st = n->st, .cat = n->cat, .co = n->co, .metrics = n->metrics, .node = &ai,
        .hooks = {.ctx = n, .client_count = admin_client_count, .flush = admin_flush, .compact = admin_compact},
    };
    n->admin = admin_server_create(&ao, err);
    return n->admin ? 0 : (err->code ? err->code : SIB_EIO);
}

static int open_identity(node *n, sib_err *err)
{
    if (local_state_read(n)) return 0;
    sib_rng rng;
    sib_rng_seed(&rng);
    sib_uuid_v4(&rng, n->host_id);
    n->ntokens = (size_t)n->cfg.num_tokens;
    n->tokens = calloc(n->ntokens, sizeof *n->tokens);
    if (!n->tokens) return sib_err_set(err, SIB_ENOMEM, "tokens");
    coord_random_tokens(&rng, n->tokens, n->ntokens);
    char hid[37];
    sib_uuid_format(n->host_id, hid);
    sib_log(n->log, SIB_INFO, "node: first start, host id %s with %zu tokens", hid, n->ntokens);
    return local_state_write(n, err);
}

int node_open(node **out, const node_config *cfg, struct ev_loop *loop, sib_log *log, sib_err *err)
{
    *out = NULL;
    node *n = calloc(1, sizeof *n);
    if (!n) return sib_err_set(err, SIB_ENOMEM, "node");
    n->cfg = *cfg;
    n->loop = loop;
    n->log = log;
    int rc = open_storage(n, err);
    if (!rc) rc = open_identity(n, err);
    if (rc) { node_close(n); return rc; }

    coord_member_opts mo = {.tokens = n->tokens, .ntokens = n->ntokens};
    snprintf(mo.addr, sizeof mo.addr, "%s", cfg->listen_address);
    snprintf(mo.dc, sizeof mo.dc, "%s", cfg->datacenter);
    snprintf(mo.rack, sizeof mo.rack, "%s", cfg->rack);
    memcpy(mo.host_id, n->host_id, 16);
    n->co = coord_create(&mo, log);
    n->cat = sib_catalog_create();
    if (!n->co || !n->cat) { node_close(n); return sib_err_set(err, SIB_ENOMEM, "node"); }

    cql_exec_node_info info = {.native_port = cfg->native_transport_port, .tokens = n->tokens, .ntokens = n->ntokens};
    snprintf(info.cluster_name, sizeof info.cluster_name, "%s", cfg->cluster_name);
    snprintf(info.listen_address, sizeof info.listen_address, "%s", cfg->listen_address);
    snprintf(info.rpc_address, sizeof info.rpc_address, "%s", cfg->rpc_address);
    snprintf(info.dc, sizeof info.dc, "%s", cfg->datacenter);
    snprintf(info.rack, sizeof info.rack, "%s", cfg->rack);
    memcpy(info.host_id, n->host_id, 16);
    info.gossip_generation = sib_now_us() / 1000000;
    cql_exec_opts eo = {
        .st = n->st, .cat = n->cat, .co = n->co, .log = log, .node = &info,
        .batch_size_fail_threshold = cfg->batch_size_fail_threshold,
        .tombstone_warn_threshold = cfg->tombstone_warn_threshold,
        .tombstone_failure_threshold = cfg->tombstone_failure_threshold,
    };
    if ((rc = cql_exec_create(&n->ex, &eo, err))) { node_close(n); return rc; }

    cql_server_opts so = {
        .bind_addr = cfg->rpc_address,
        .port = (uint16_t)cfg->native_transport_port,
        .max_frame_size = (uint32_t)cfg->native_transport_max_frame_size,
        .max_inflight = (uint32_t)cfg->native_transport_max_concurrent_requests,
        .log = log,
    };
    n->srv = cql_server_create(loop, &so, cql_exec_base(n->ex), err);
    if (!n->srv) { node_close(n); return err->code ? err->code : SIB_EIO; }
    cql_exec_set_server(n->ex, n->srv);
    if ((rc = open_admin(n, info.gossip_generation, err))) { node_close(n); return rc; }
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
    if (n->st) storage_read_drain(n->st);
    admin_server_destroy(n->admin);
    if (n->srv) cql_server_destroy(n->srv);
    cql_exec_destroy(n->ex);
    admin_metrics_destroy(n->metrics);
    if (n->st) storage_close(n->st);
    sib_catalog_destroy(n->cat);
    coord_destroy(n->co);
    free(n->tokens);
    free(n);
}
