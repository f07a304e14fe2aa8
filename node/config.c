/* config.c: cassandra.yaml-style configuration through libyaml.
 *
 * The file is a mapping of scalar keys; a few keys take sequences
 * (data_file_directories) or Cassandra's nested seed_provider form:
 *
 *   seed_provider:
 *     - class_name: org.apache.cassandra.locator.SimpleSeedProvider
 *       parameters:
 *         - seeds: "127.0.0.1,127.0.0.2"
 *
 * Both spellings of durations and sizes are accepted: 4.1's
 * `commitlog_sync_period: 10s` and 3.x's `commitlog_sync_period_in_ms: 10000`.
 */
#include "node.h"

#include <errno.h>
#include <stdlib.h>
#include <strings.h>
#include <yaml.h>

void node_config_defaults(node_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->cluster_name, sizeof c->cluster_name, "Sibyl Cluster");
    snprintf(c->listen_address, sizeof c->listen_address, "127.0.0.1");
    snprintf(c->rpc_address, sizeof c->rpc_address, "127.0.0.1");
    c->native_transport_port = 9042;
    c->storage_port = 7000;
    c->admin_port = 10000;
    snprintf(c->data_dir, sizeof c->data_dir, "./data");
    c->num_tokens = 16;
    c->allocate_tokens_rf = 3;
    c->default_keyspace_rf = 1;
    c->commitlog_sync = NODE_SYNC_PERIODIC;
    c->commitlog_sync_period_ms = 10000;
    c->commitlog_sync_group_window_ms = 2;
    c->commitlog_segment_size = 32u << 20;
    c->native_transport_max_frame_size = 16u << 20;
    c->native_transport_max_concurrent_requests = 1024;
    c->phi_convict_threshold = 8.0;
    c->gossip_interval_ms = 1000;
    c->batchlog_replay_interval_ms = 10000;
    c->write_request_timeout_ms = 2000;
    c->read_request_timeout_ms = 5000;
    c->range_request_timeout_ms = 10000;
    snprintf(c->datacenter, sizeof c->datacenter, "datacenter1");
    snprintf(c->rack, sizeof c->rack, "rack1");
    c->log_level = SIB_INFO;
    c->tombstone_warn_threshold = 1000;
    c->tombstone_failure_threshold = 100000;
    c->max_scatter_buckets = 1000;
    c->batch_size_fail_threshold = 50u << 10;
    c->concurrent_compactors = 0; /* storage picks min(disks, cores) in 2..8 */
    c->concurrent_reads = 2;
    c->compaction_throughput_mib = 64;
    c->auto_snapshot = true;
    c->block_cache_size = NODE_DEFAULT_SIZE;
    c->native_transport_max_concurrent_connections = -1;
    c->native_transport_max_concurrent_connections_per_ip = -1;
    c->native_transport_max_request_data_in_flight = NODE_DEFAULT_SIZE;
    c->native_transport_startup_timeout_ms = 10000;
    c->native_transport_idle_timeout_ms = 0;
    c->native_transport_frame_read_timeout_ms = 30000;
    c->prepared_statements_cache_size = NODE_DEFAULT_SIZE;
    snprintf(c->admin_address, sizeof c->admin_address, "127.0.0.1");
    c->admin_max_connections = 16;
    c->admin_connection_timeout_ms = 10000;
}

/* A number with an optional unit suffix (cassandra.yaml 4.1 spellings); a
 * bare number is in `bare` units. The tables map suffixes to multipliers. */
typedef struct unit_name {
    const char *a, *b;
    double mult;
} unit_name;

static const unit_name DURATION_UNITS[] = {
    {"ms", "milliseconds", 1}, {"s", "seconds", 1000}, {"m", "minutes", 60000},
    {"h", "hours", 3600000}, {"d", "days", 86400000}, {"us", "microseconds", 0.001},
};
static const unit_name SIZE_UNITS[] = {
    {"B", "bytes", 1}, {"KiB", "KB", 1024.0}, {"MiB", "MB", 1024.0 * 1024}, {"GiB", "GB", 1024.0 * 1024 * 1024},
};

static int parse_with_unit(const char *s, double bare, const unit_name *units, size_t nunits, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0) return -1;
    while (*end == ' ') end++;
    if (!*end) { *out = v * bare; return 0; }
    for (size_t i = 0; i < nunits; i++)
        if (!strcasecmp(end, units[i].a) || !strcasecmp(end, units[i].b)) { *out = v * units[i].mult; return 0; }
    return -1;
}

int node_parse_duration_ms(const char *s, long unit_ms, long *out)
{
    double v;
    if (parse_with_unit(s, (double)unit_ms, DURATION_UNITS, SIB_ARRAY_LEN(DURATION_UNITS), &v)) return -1;
    *out = (long)v;
    return 0;
}

int node_parse_size(const char *s, size_t unit, size_t *out)
{
    double v;
    if (parse_with_unit(s, (double)unit, SIZE_UNITS, SIB_ARRAY_LEN(SIZE_UNITS), &v)) return -1;
    *out = (size_t)v;
    return 0;
}

/* ---- a tiny document walk over libyaml's parsed tree ---- */

static const char *scalar(yaml_document_t *d, yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *m, const char *key)
{
    if (!m || m->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const char *k = scalar(d, yaml_document_get_node(d, p->key));
        if (k && !strcmp(k, key)) return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

static yaml_node_t *seq_first(yaml_document_t *d, yaml_node_t *s)
{
    if (!s || s->type != YAML_SEQUENCE_NODE || s->data.sequence.items.start == s->data.sequence.items.top) return NULL;
    return yaml_document_get_node(d, *s->data.sequence.items.start);
}

typedef enum { K_STR, K_INT, K_DOUBLE, K_DUR_MS, K_SIZE, K_SYNC, K_DFP, K_LEVEL, K_BOOL, K_MIBPS, K_LIMIT } key_kind;

typedef struct key_spec {
    const char *name;
    key_kind kind;
    size_t off;
    size_t len;     /* strings: buffer size */
    long unit;      /* durations: ms per bare number; sizes: bytes per bare number */
} key_spec;

#define STR(k, f) {k, K_STR, offsetof(node_config, f), sizeof(((node_config *)0)->f), 0}
#define INT(k, f) {k, K_INT, offsetof(node_config, f), 0, 0}
#define DUR(k, f, u) {k, K_DUR_MS, offsetof(node_config, f), 0, u}
#define SIZE(k, f, u) {k, K_SIZE, offsetof(node_config, f), 0, u}

static const key_spec keys[] = {
    STR("cluster_name", cluster_name),
    STR("listen_address", listen_address),
    STR("rpc_address", rpc_address),
    STR("broadcast_rpc_address", rpc_address),
    INT("native_transport_port", native_transport_port),
    INT("storage_port", storage_port),
    INT("admin_port", admin_port),
    STR("commitlog_directory", commitlog_dir),
    STR("hints_directory", hints_dir),
    STR("saved_caches_directory", saved_caches_dir),
    INT("num_tokens", num_tokens),
    INT("allocate_tokens_for_local_replication_factor", allocate_tokens_rf),
    INT("default_keyspace_rf", default_keyspace_rf),
    {"commitlog_sync", K_SYNC, offsetof(node_config, commitlog_sync), 0, 0},
    DUR("commitlog_sync_period", commitlog_sync_period_ms, 1),
    DUR("commitlog_sync_period_in_ms", commitlog_sync_period_ms, 1),
    DUR("commitlog_sync_group_window", commitlog_sync_group_window_ms, 1),
    DUR("commitlog_sync_group_window_in_ms", commitlog_sync_group_window_ms, 1),
    DUR("commitlog_sync_batch_window_in_ms", commitlog_sync_group_window_ms, 1),
    SIZE("commitlog_segment_size", commitlog_segment_size, 1 << 20),
    SIZE("commitlog_segment_size_in_mb", commitlog_segment_size, 1 << 20),
    SIZE("native_transport_max_frame_size", native_transport_max_frame_size, 1 << 20),
    SIZE("native_transport_max_frame_size_in_mb", native_transport_max_frame_size, 1 << 20),
    INT("native_transport_max_concurrent_requests_in_flight", native_transport_max_concurrent_requests),
    {"phi_convict_threshold", K_DOUBLE, offsetof(node_config, phi_convict_threshold), 0, 0},
    DUR("write_request_timeout", write_request_timeout_ms, 1),
    DUR("write_request_timeout_in_ms", write_request_timeout_ms, 1),
    DUR("read_request_timeout", read_request_timeout_ms, 1),
    DUR("read_request_timeout_in_ms", read_request_timeout_ms, 1),
    DUR("range_request_timeout", range_request_timeout_ms, 1),
    DUR("range_request_timeout_in_ms", range_request_timeout_ms, 1),
    DUR("gossip_interval", gossip_interval_ms, 1),
    DUR("gossip_interval_ms", gossip_interval_ms, 1),
    DUR("batchlog_replay_interval", batchlog_replay_interval_ms, 1),
    DUR("batchlog_replay_interval_ms", batchlog_replay_interval_ms, 1),
    STR("datacenter", datacenter),
    STR("rack", rack),
    {"log_level", K_LEVEL, offsetof(node_config, log_level), 0, 0},
    INT("tombstone_warn_threshold", tombstone_warn_threshold),
    INT("tombstone_failure_threshold", tombstone_failure_threshold),
    INT("max_scatter_buckets", max_scatter_buckets),
    SIZE("batch_size_fail_threshold", batch_size_fail_threshold, 1024),
    SIZE("batch_size_fail_threshold_in_kb", batch_size_fail_threshold, 1024),
    SIZE("memtable_heap_space", memtable_heap_space, 1 << 20),
    SIZE("memtable_heap_space_in_mb", memtable_heap_space, 1 << 20),
    SIZE("commitlog_total_space", commitlog_total_space, 1 << 20),
    SIZE("commitlog_total_space_in_mb", commitlog_total_space, 1 << 20),
    SIZE("sstable_block_size", sstable_block_size, 1024),
    SIZE("block_cache_size", block_cache_size, 1 << 20),
    INT("concurrent_compactors", concurrent_compactors),
    INT("concurrent_reads", concurrent_reads),
    {"compaction_throughput", K_MIBPS, offsetof(node_config, compaction_throughput_mib), 0, 0},
    INT("compaction_throughput_mb_per_sec", compaction_throughput_mib),
    {"auto_snapshot", K_BOOL, offsetof(node_config, auto_snapshot), 0, 0},
    {"commitlog_ignore_replay_errors", K_BOOL, offsetof(node_config, commitlog_ignore_replay_errors), 0, 0},
    {"disk_failure_policy", K_DFP, offsetof(node_config, disk_failure_policy), 0, 0},
    {"native_transport_max_concurrent_connections", K_LIMIT,
     offsetof(node_config, native_transport_max_concurrent_connections), 0, 0},
    {"native_transport_max_concurrent_connections_per_ip", K_LIMIT,
     offsetof(node_config, native_transport_max_concurrent_connections_per_ip), 0, 0},
    SIZE("native_transport_max_request_data_in_flight", native_transport_max_request_data_in_flight, 1),
    SIZE("native_transport_max_concurrent_requests_in_bytes", native_transport_max_request_data_in_flight, 1),
    DUR("native_transport_startup_timeout", native_transport_startup_timeout_ms, 1),
    DUR("native_transport_idle_timeout", native_transport_idle_timeout_ms, 1),
    DUR("native_transport_idle_timeout_in_ms", native_transport_idle_timeout_ms, 1),
    DUR("native_transport_frame_read_timeout", native_transport_frame_read_timeout_ms, 1),
    SIZE("prepared_statements_cache_size", prepared_statements_cache_size, 1 << 20),
    SIZE("prepared_statements_cache_size_mb", prepared_statements_cache_size, 1 << 20),
    STR("admin_address", admin_address),
    STR("admin_auth_token", admin_auth_token),
    STR("admin_auth_token_file", admin_auth_token_file),
    INT("admin_max_connections", admin_max_connections),
    DUR("admin_connection_timeout", admin_connection_timeout_ms, 1),
};

static int set_key(node_config *c, const key_spec *k, const char *v, sib_err *err)
{
    char *f = (char *)c + k->off;
    char *end;
    long n;
    size_t sz;
    switch (k->kind) {
    case K_STR:
        if (strlen(v) >= k->len) return sib_err_set(err, SIB_ECONFIG, "config: %s is too long", k->name);
        memcpy(f, v, strlen(v) + 1);
        return 0;
    case K_INT:
        errno = 0;
        n = strtol(v, &end, 10);
        if (!*v || *end || errno || n < 0 || n > INT32_MAX)
            return sib_err_set(err, SIB_ECONFIG, "config: %s must be a non-negative integer (got '%s')", k->name, v);
        *(int *)f = (int)n;
        return 0;
    case K_DOUBLE:
        *(double *)f = strtod(v, &end);
        if (end == v || *end) return sib_err_set(err, SIB_ECONFIG, "config: %s must be a number (got '%s')", k->name, v);
        return 0;
    case K_DUR_MS:
        if (node_parse_duration_ms(v, k->unit, &n) || n > INT32_MAX)
            return sib_err_set(err, SIB_ECONFIG, "config: %s must be a duration like 10s or 500ms (got '%s')", k->name, v);
        *(int *)f = (int)n;
        return 0;
    case K_SIZE:
        if (node_parse_size(v, (size_t)k->unit, &sz))
            return sib_err_set(err, SIB_ECONFIG, "config: %s must be a size like 16MiB (got '%s')", k->name, v);
        *(size_t *)f = sz;
        return 0;
    case K_SYNC:
        if (!strcmp(v, "periodic")) *(int *)f = NODE_SYNC_PERIODIC;
        else if (!strcmp(v, "batch")) *(int *)f = NODE_SYNC_BATCH;
        else if (!strcmp(v, "group")) *(int *)f = NODE_SYNC_GROUP;
        else return sib_err_set(err, SIB_ECONFIG, "config: commitlog_sync must be periodic, batch or group (got '%s')", v);
        return 0;
    case K_DFP: /* Cassandra's die and stop_paranoid stop too: this is start-up only */
        if (!strcmp(v, "stop") || !strcmp(v, "die") || !strcmp(v, "stop_paranoid")) *(int *)f = NODE_DFP_STOP;
        else if (!strcmp(v, "best_effort")) *(int *)f = NODE_DFP_BEST_EFFORT;
        else if (!strcmp(v, "ignore")) *(int *)f = NODE_DFP_IGNORE;
        else return sib_err_set(err, SIB_ECONFIG, "config: disk_failure_policy must be stop, best_effort or ignore (got '%s')", v);
        return 0;
    case K_BOOL:
        if (!strcasecmp(v, "true")) *(bool *)f = true;
        else if (!strcasecmp(v, "false")) *(bool *)f = false;
        else return sib_err_set(err, SIB_ECONFIG, "config: %s must be true or false (got '%s')", k->name, v);
        return 0;
    case K_MIBPS: {
        /* 4.1 spelling "64MiB/s" or a bare number (MiB/s) */
        char num[64];
        snprintf(num, sizeof num, "%s", v);
        char *slash = strstr(num, "/s");
        if (slash && !slash[2]) *slash = 0;
        if (node_parse_size(num, 1 << 20, &sz) || sz / (1u << 20) > INT32_MAX)
            return sib_err_set(err, SIB_ECONFIG, "config: %s must be a rate like 64MiB/s (got '%s')", k->name, v);
        *(int *)f = (int)(sz >> 20);
        return 0;
    }
    case K_LIMIT: /* a count, or -1 for the default (cassandra.yaml's spelling) */
        errno = 0;
        n = strtol(v, &end, 10);
        if (!*v || *end || errno || n < -1 || n > INT32_MAX)
            return sib_err_set(err, SIB_ECONFIG, "config: %s must be -1 or a non-negative integer (got '%s')", k->name, v);
        *(long long *)f = n;
        return 0;
    case K_LEVEL:
        if (!strcasecmp(v, "debug")) *(int *)f = SIB_DEBUG;
        else if (!strcasecmp(v, "info")) *(int *)f = SIB_INFO;
        else if (!strcasecmp(v, "warn")) *(int *)f = SIB_WARN;
        else if (!strcasecmp(v, "error")) *(int *)f = SIB_ERROR;
        else return sib_err_set(err, SIB_ECONFIG, "config: log_level must be debug, info, warn or error (got '%s')", v);
        return 0;
    }
    return 0;
}

static int load_doc(node_config *c, yaml_document_t *d, sib_log *log, sib_err *err)
{
    yaml_node_t *root = yaml_document_get_root_node(d);
    if (!root) return 0; /* an empty file is all defaults */
    if (root->type != YAML_MAPPING_NODE) return sib_err_set(err, SIB_ECONFIG, "config: the top level must be a mapping");
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        const char *k = scalar(d, yaml_document_get_node(d, p->key));
        yaml_node_t *vn = yaml_document_get_node(d, p->value);
        if (!k) continue;
        if (!strcmp(k, "data_file_directories")) {
            const char *v = scalar(d, seq_first(d, vn));
            if (!v) return sib_err_set(err, SIB_ECONFIG, "config: data_file_directories must be a list of paths");
            if (strlen(v) >= sizeof c->data_dir) return sib_err_set(err, SIB_ECONFIG, "config: data directory too long");
            strcpy(c->data_dir, v);
            continue;
        }
        if (!strcmp(k, "seed_provider")) {
            yaml_node_t *params = map_get(d, seq_first(d, vn), "parameters");
            const char *v = scalar(d, map_get(d, seq_first(d, params), "seeds"));
            if (!v) return sib_err_set(err, SIB_ECONFIG, "config: seed_provider needs parameters: - seeds: \"a,b\"");
            snprintf(c->seeds, sizeof c->seeds, "%s", v);
            continue;
        }
        const key_spec *ks = NULL;
        for (size_t i = 0; i < SIB_ARRAY_LEN(keys); i++)
            if (!strcmp(keys[i].name, k)) ks = &keys[i];
        if (!ks) {
            sib_log(log, SIB_WARN, "config: ignoring unknown key %s", k);
            continue;
        }
        const char *v = scalar(d, vn);
        if (!v) return sib_err_set(err, SIB_ECONFIG, "config: %s must be a scalar", k);
        if (!*v && ks->kind != K_STR) continue; /* `key:` with no value keeps the default */
        int rc = set_key(c, ks, v, err);
        if (rc) return rc;
    }
    return 0;
}

int node_config_load(node_config *c, const char *path, sib_log *log, sib_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sib_err_errno(err, "config: cannot open %s", path);
    yaml_parser_t p;
    yaml_document_t d;
    int rc = 0;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    if (!yaml_parser_load(&p, &d)) {
        rc = sib_err_set(err, SIB_ECONFIG, "config: %s: %s at line %zu", path, p.problem ? p.problem : "parse error",
                         p.problem_mark.line + 1);
    } else {
        rc = load_doc(c, &d, log, err);
        yaml_document_delete(&d);
    }
    yaml_parser_delete(&p);
    fclose(f);
    if (!rc && (c->native_transport_port <= 0 || c->native_transport_port > 65535))
        rc = sib_err_set(err, SIB_ECONFIG, "config: native_transport_port must be 1..65535");
    if (!rc && (c->storage_port <= 0 || c->storage_port > 65535))
        rc = sib_err_set(err, SIB_ECONFIG, "config: storage_port must be 1..65535");
    if (!rc && (c->write_request_timeout_ms < 1 || c->read_request_timeout_ms < 1 || c->range_request_timeout_ms < 1))
        rc = sib_err_set(err, SIB_ECONFIG, "config: request timeouts must be positive");
    if (!rc && c->batchlog_replay_interval_ms < 1)
        rc = sib_err_set(err, SIB_ECONFIG, "config: batchlog_replay_interval must be positive");
    if (!rc && (c->gossip_interval_ms < 10 || c->gossip_interval_ms > 60000))
        rc = sib_err_set(err, SIB_ECONFIG, "config: gossip_interval must be 10ms..60s");
    if (!rc && (c->phi_convict_threshold < 1 || c->phi_convict_threshold > 100))
        rc = sib_err_set(err, SIB_ECONFIG, "config: phi_convict_threshold must be 1..100");
    if (!rc && (c->num_tokens < 1 || c->num_tokens > 1536))
        rc = sib_err_set(err, SIB_ECONFIG, "config: num_tokens must be 1..1536");
    if (!rc && (c->default_keyspace_rf < 1 || c->default_keyspace_rf > 1000))
        rc = sib_err_set(err, SIB_ECONFIG, "config: default_keyspace_rf must be 1..1000");
    if (!rc && (c->allocate_tokens_rf < 1 || c->allocate_tokens_rf > 1000))
        rc = sib_err_set(err, SIB_ECONFIG, "config: allocate_tokens_for_local_replication_factor must be 1..1000");
    if (!rc && (c->admin_max_connections < 1 || c->admin_max_connections > 1024))
        rc = sib_err_set(err, SIB_ECONFIG, "config: admin_max_connections must be 1..1024");
    if (!rc && (c->concurrent_reads < 1 || c->concurrent_reads > 64))
        rc = sib_err_set(err, SIB_ECONFIG, "config: concurrent_reads must be 1..64");
    return rc;
}
