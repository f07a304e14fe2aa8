/* Unit tests for admin/: histogram buckets and quantiles, the Prometheus
 * exposition, ring ownership, partition key parsing, and every endpoint
 * answered through admin_server_handle (no socket: the server is created
 * without a loop) over a real storage, catalog and coordinator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ev.h>
#include <stdlib.h>
#include <unistd.h>

#include "admin.h"
#include "coordinator.h"
#include "schema.h"
#include "storage.h"

/* ---- histograms ---- */

static void test_hist_buckets(void **state)
{
    (void)state;
    admin_hist h = {0};
    admin_hist_record(&h, 0);        /* first bucket (<= 50 us) */
    admin_hist_record(&h, 50);       /* bounds are inclusive (le) */
    admin_hist_record(&h, 51);       /* second bucket */
    admin_hist_record(&h, 999999999); /* beyond the last bound: +Inf */
    admin_hist_record(&h, -5);       /* clock oddities count as 0 */
    assert_int_equal(h.count, 5);
    assert_int_equal(h.buckets[0], 3);
    assert_int_equal(h.buckets[1], 1);
    assert_int_equal(h.buckets[ADMIN_HIST_BUCKETS], 1);
    assert_int_equal(h.sum_us, 0 + 50 + 51 + 999999999);
    for (size_t i = 1; i < ADMIN_HIST_BUCKETS; i++) assert_true(admin_hist_bounds_us[i] > admin_hist_bounds_us[i - 1]);
}

static void test_hist_quantile(void **state)
{
    (void)state;
    admin_hist h = {0};
    assert_int_equal(admin_hist_quantile(&h, 0.5), 0);
    for (int i = 0; i < 90; i++) admin_hist_record(&h, 80);    /* <= 100 us */
    for (int i = 0; i < 10; i++) admin_hist_record(&h, 3000);  /* <= 5000 us */
    assert_int_equal(admin_hist_quantile(&h, 0.5), 100);
    assert_int_equal(admin_hist_quantile(&h, 0.90), 100);
    assert_int_equal(admin_hist_quantile(&h, 0.91), 5000);
    assert_int_equal(admin_hist_quantile(&h, 1.0), 5000);
    admin_hist_record(&h, 60000000);
    assert_int_equal(admin_hist_quantile(&h, 1.0), INT64_MAX);
}

/* ---- exposition ---- */

static bool has_line(const sib_buf *b, const char *line)
{
    size_t n = strlen(line);
    const char *p = (const char *)b->p, *end = p + b->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len == n && !memcmp(p, line, n)) return true;
        p += len + 1;
    }
    return false;
}

/* One call for a request and its table operation counts what the two
 * calls count: the same /metrics text. */
static void test_request_op(void **state)
{
    (void)state;
    admin_metrics *two = admin_metrics_create(), *one = admin_metrics_create();
    assert_non_null(two);
    assert_non_null(one);
    const uint8_t t1[16] = {1, 2, 3}, t2[16] = {9};
    admin_metrics_on_request(two, 0x0A, 0, 1, 70);
    admin_metrics_on_table_op(two, t1, false, 70);
    admin_metrics_on_request(two, 0x07, 1, 4, 300);
    admin_metrics_on_table_op(two, t2, true, 2600);
    admin_metrics_on_request(two, 0x0A, 0, 1, -5);
    admin_metrics_on_table_op(two, t1, false, -5);
    admin_metrics_on_request_op(one, 0x0A, 0, 1, 70, t1, false, 70);
    admin_metrics_on_request_op(one, 0x07, 1, 4, 300, t2, true, 2600);
    admin_metrics_on_request_op(one, 0x0A, 0, 1, -5, t1, false, -5);
    admin_table_ops a, b;
    admin_metrics_table_ops(two, t1, &a);
    admin_metrics_table_ops(one, t1, &b);
    assert_int_equal(b.reads, 2);
    assert_memory_equal(&a, &b, sizeof a);
    admin_metrics_table_ops(two, t2, &a);
    admin_metrics_table_ops(one, t2, &b);
    assert_int_equal(b.writes, 1);
    assert_int_equal(b.write_latency.buckets[6], 1); /* 2600 us: le 5000 */
    assert_memory_equal(&a, &b, sizeof a);
    admin_gauges g = {.uptime_s = 1};
    sib_buf x, y;
    sib_buf_init(&x);
    sib_buf_init(&y);
    admin_metrics_render(two, &g, &x);
    admin_metrics_render(one, &g, &y);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.p, y.p, x.len);
    sib_buf_free(&x);
    sib_buf_free(&y);
    admin_metrics_destroy(two);
    admin_metrics_destroy(one);
}

static void test_render(void **state)
{
    (void)state;
    admin_metrics *m = admin_metrics_create();
    assert_non_null(m);
    /* opcodes: QUERY 0x07, PREPARE 0x09, EXECUTE 0x0A, BATCH 0x0D; kinds from parser.h
     * (0 = SELECT, 1 = INSERT); CL 1 = ONE, 4 = QUORUM. */
    admin_metrics_on_request(m, 0x07, 0, 1, 70);
    admin_metrics_on_request(m, 0x07, 1, 4, 300);
    admin_metrics_on_request(m, 0x0A, 1, 4, 20000);
    admin_metrics_on_request(m, 0x09, 0, -1, 10);
    admin_metrics_on_error(m, 0x2200);
    admin_metrics_on_error(m, 0x2000);
    admin_metrics_on_error(m, 0x7777);
    assert_int_equal(admin_metrics_requests(m), 4);
    assert_int_equal(admin_metrics_errors(m), 3);

    admin_table_gauge tables[] = {{.ks = "ks", .table = "t\"q", .partitions = 3, .rows = 4, .cells = 5,
                                   .memtable_bytes = 4096}};
    admin_gauges g = {.clients = 2, .memtable_bytes = 4096, .cl_segments_live = 1, .uptime_s = 9,
                      .read_rounds = 6, .reads_coalesced = 11, .tables = tables, .ntables = 1};
    snprintf(g.schema_version, sizeof g.schema_version, "%s", "00000000-0000-0000-0000-000000000001");
    sib_buf b;
    sib_buf_init(&b);
    admin_metrics_render(m, &g, &b);
    assert_false(b.oom);

    assert_true(has_line(&b, "# TYPE sibyl_cql_requests_total counter"));
    assert_true(has_line(&b, "sibyl_cql_requests_total{op=\"query\",consistency=\"ONE\"} 1"));
    assert_true(has_line(&b, "sibyl_cql_requests_total{op=\"query\",consistency=\"QUORUM\"} 1"));
    assert_true(has_line(&b, "sibyl_cql_requests_total{op=\"execute\",consistency=\"QUORUM\"} 1"));
    assert_true(has_line(&b, "sibyl_cql_requests_total{op=\"prepare\",consistency=\"NONE\"} 1"));
    assert_true(has_line(&b, "# TYPE sibyl_cql_request_latency_seconds histogram"));
    /* Cumulative buckets: 70 us lands in le=0.0001, 300 us in le=0.0005. */
    assert_true(has_line(&b, "sibyl_cql_request_latency_seconds_bucket{op=\"query\",le=\"0.000050\"} 0"));
    assert_true(has_line(&b, "sibyl_cql_request_latency_seconds_bucket{op=\"query\",le=\"0.000100\"} 1"));
    assert_true(has_line(&b, "sibyl_cql_request_latency_seconds_bucket{op=\"query\",le=\"0.000500\"} 2"));
    assert_true(has_line(&b, "sibyl_cql_request_latency_seconds_bucket{op=\"query\",le=\"+Inf\"} 2"));
    assert_true(has_line(&b, "sibyl_cql_request_latency_seconds_sum{op=\"query\"} 0.000370"));
    assert_true(has_line(&b, "sibyl_cql_request_latency_seconds_count{op=\"query\"} 2"));
    /* PREPARE is a request but runs no statement. */
    assert_true(has_line(&b, "sibyl_cql_statements_total{type=\"select\"} 1"));
    assert_true(has_line(&b, "sibyl_cql_statements_total{type=\"insert\"} 2"));
    assert_true(has_line(&b, "sibyl_cql_errors_total{code=\"invalid\"} 1"));
    assert_true(has_line(&b, "sibyl_cql_errors_total{code=\"syntax_error\"} 1"));
    assert_true(has_line(&b, "sibyl_cql_errors_total{code=\"other\"} 1"));
    assert_true(has_line(&b, "sibyl_connected_clients 2"));
    assert_true(has_line(&b, "# TYPE sibyl_coordinator_reads_coalesced_total counter"));
    assert_true(has_line(&b, "sibyl_coordinator_reads_coalesced_total 11"));
    assert_true(has_line(&b, "sibyl_coordinator_read_rounds_total 6"));
    assert_true(has_line(&b, "sibyl_table_partitions{keyspace=\"ks\",table=\"t\\\"q\"} 3"));
    assert_true(has_line(&b, "sibyl_table_memtable_bytes{keyspace=\"ks\",table=\"t\\\"q\"} 4096"));
    assert_true(has_line(&b, "sibyl_table_sstables{keyspace=\"ks\",table=\"t\\\"q\"} 0"));
    assert_true(has_line(&b, "sibyl_schema_version_info{version=\"00000000-0000-0000-0000-000000000001\"} 1"));
    assert_true(has_line(&b, "sibyl_gossip_members{state=\"live\"} 1"));

    /* Every sample line belongs to a family announced by HELP and TYPE. */
    char *text = strndup((const char *)b.p, b.len);
    size_t families = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "# TYPE ", 7)) families++;
        else if (line[0] != '#') assert_true(families > 0);
    }
    assert_true(families >= 20);
    free(text);
    sib_buf_free(&b);
    admin_metrics_destroy(m);
}

/* Loop lag: iterations into the histogram and the max; a real loop's
 * watchers record its iterations and stop with the metrics. */
static void test_loop_lag(void **state)
{
    (void)state;
    admin_metrics *m = admin_metrics_create();
    assert_non_null(m);
    admin_metrics_on_loop_iteration(m, 40);
    admin_metrics_on_loop_iteration(m, 3000);
    admin_metrics_on_loop_iteration(m, 70000);
    admin_gauges g = {.reads_inline = 5, .reads_pool = 7, .reads_queued = 1};
    sib_buf b;
    sib_buf_init(&b);
    admin_metrics_render(m, &g, &b);
    assert_true(has_line(&b, "# TYPE sibyl_loop_iteration_seconds histogram"));
    assert_true(has_line(&b, "sibyl_loop_iteration_seconds_bucket{loop=\"cql\",le=\"0.000050\"} 1"));
    assert_true(has_line(&b, "sibyl_loop_iteration_seconds_bucket{loop=\"cql\",le=\"0.005000\"} 2"));
    assert_true(has_line(&b, "sibyl_loop_iteration_seconds_bucket{loop=\"cql\",le=\"0.050000\"} 2"));
    assert_true(has_line(&b, "sibyl_loop_iteration_seconds_bucket{loop=\"cql\",le=\"0.100000\"} 3"));
    assert_true(has_line(&b, "sibyl_loop_iteration_seconds_count{loop=\"cql\"} 3"));
    assert_true(has_line(&b, "sibyl_loop_iteration_max_seconds{loop=\"cql\"} 0.070000"));
    sib_buf_free(&b);
    admin_metrics_on_loop_usage(m, 40, 30, false, 0);
    admin_metrics_on_loop_usage(m, 3000, 2900, false, 2);
    admin_metrics_on_loop_usage(m, 70000, 600, true, 1); /* waited in the kernel most of it */
    admin_metrics_on_loop_usage(m, 9000, 200, true, 0);
    sib_buf_init(&b);
    admin_metrics_render(m, &g, &b);
    assert_true(has_line(&b, "# TYPE sibyl_loop_iteration_cpu_seconds histogram"));
    assert_true(has_line(&b, "sibyl_loop_iteration_cpu_seconds_bucket{loop=\"cql\",le=\"0.000050\"} 1"));
    assert_true(has_line(&b, "sibyl_loop_iteration_cpu_seconds_bucket{loop=\"cql\",le=\"0.000250\"} 2"));
    assert_true(has_line(&b, "sibyl_loop_iteration_cpu_seconds_bucket{loop=\"cql\",le=\"0.001000\"} 3"));
    assert_true(has_line(&b, "sibyl_loop_iteration_cpu_seconds_bucket{loop=\"cql\",le=\"0.005000\"} 4"));
    assert_true(has_line(&b, "sibyl_loop_iteration_cpu_seconds_count{loop=\"cql\"} 4"));
    assert_true(has_line(&b, "sibyl_loop_iteration_cpu_max_seconds{loop=\"cql\"} 0.002900"));
    assert_true(has_line(&b, "sibyl_loop_iterations_blocked_total{loop=\"cql\"} 2"));
    assert_true(has_line(&b, "sibyl_loop_iteration_blocked_max_seconds{loop=\"cql\"} 0.070000"));
    assert_true(has_line(&b, "sibyl_loop_page_faults_total{loop=\"cql\"} 3"));
    assert_true(has_line(&b, "sibyl_reads_inline_total 5"));
    assert_true(has_line(&b, "sibyl_reads_pool_total 7"));
    assert_true(has_line(&b, "sibyl_read_pool_queued 1"));
    sib_buf_free(&b);
    admin_metrics_destroy(m);

    m = admin_metrics_create();
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    sib_err err;
    assert_int_equal(admin_metrics_watch_loop(m, loop, &err), 0);
    assert_int_equal(admin_metrics_watch_loop(m, loop, &err), SIB_EINVAL);
    for (int i = 0; i < 3; i++) ev_run(loop, EVRUN_NOWAIT);
    sib_buf_init(&b);
    admin_metrics_render(m, &g, &b);
    char *p = strstr((const char *)b.p, "sibyl_loop_iteration_seconds_count{loop=\"cql\"} ");
    assert_non_null(p);
    assert_true(atoi(p + strlen("sibyl_loop_iteration_seconds_count{loop=\"cql\"} ")) >= 2);
    p = strstr((const char *)b.p, "sibyl_loop_iteration_cpu_seconds_count{loop=\"cql\"} "); /* the same iterations */
    assert_non_null(p);
    assert_true(atoi(p + strlen("sibyl_loop_iteration_cpu_seconds_count{loop=\"cql\"} ")) >= 2);
    sib_buf_free(&b);
    admin_metrics_destroy(m); /* stops the watchers */
    ev_run(loop, EVRUN_NOWAIT);
    ev_loop_destroy(loop);
}

static void test_error_names(void **state)
{
    (void)state;
    assert_string_equal(admin_error_name(0x1000), "unavailable");
    assert_string_equal(admin_error_name(0x2500), "unprepared");
    assert_string_equal(admin_error_name(0x000A), "protocol_error");
    assert_string_equal(admin_error_name(0x4242), "other");
}

static void test_ring_owns(void **state)
{
    (void)state;
    int64_t ring[] = {-100, 0, 100, 5000};
    assert_true(admin_ring_owns(ring, 4, ring, 4) == 1.0);
    /* Token 0 owns (-100, 0]: 100 / 2^64 of the ring. */
    int64_t mine[] = {0};
    double f = admin_ring_owns(ring, 4, mine, 1);
    assert_true(f > 0 && f < 1e-15);
    /* Two members splitting the ring at INT64_MIN and 0: one half each. */
    int64_t half[] = {INT64_MIN, 0};
    int64_t a[] = {0};
    double fa = admin_ring_owns(half, 2, a, 1);
    assert_true(fa > 0.4999 && fa < 0.5001);
    assert_true(admin_ring_owns(half, 2, NULL, 0) == 0.0);
}

/* ---- endpoints over a real node state ---- */

typedef struct fixture {
    char dir[64];
    storage *st;
    sch_catalog *cat;
    coord *co;
    admin_server *srv;
    int64_t tokens[4];
} fixture;

static void make_schema(sch_catalog *cat)
{
    sib_err err;
    const char *rk[] = {"class", "replication_factor"}, *rv[] = {"SimpleStrategy", "1"};
    sch_prop repl = {.name = "replication", .is_map = true, .keys = rk, .values = rv, .n = 2};
    assert_int_equal(sch_catalog_create_keyspace(cat, "ks", &repl, 1, false, &err), 0);
    sch_coldef cols[] = {{.name = "k", .type = sch_type_native(SCH_T_INT)},
                         {.name = "v", .type = sch_type_native(SCH_T_VARCHAR)}};
    const char *pk[] = {"k"};
    sch_table_spec ts = {.keyspace = "ks", .name = "t", .cols = cols, .ncols = 2, .npk_decls = 1, .pk = pk, .npk = 1};
    const sch_table *t;
    assert_int_equal(sch_catalog_create_table(cat, &ts, &t, &err), 0);
    sch_coldef cols2[] = {{.name = "a", .type = sch_type_native(SCH_T_VARCHAR)},
                          {.name = "b", .type = sch_type_native(SCH_T_BIGINT)}};
    const char *pk2[] = {"a", "b"};
    sch_table_spec ts2 = {.keyspace = "ks", .name = "c", .cols = cols2, .ncols = 2, .npk_decls = 1, .pk = pk2,
                          .npk = 2};
    assert_int_equal(sch_catalog_create_table(cat, &ts2, &t, &err), 0);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/sib_test_admin_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    sib_err err;
    storage_opts so = {.commitlog_dir = f->dir};
    if (storage_open(&f->st, &so, &err) || storage_replay(f->st, NULL, &err)) return -1;
    f->cat = sch_catalog_create();
    make_schema(f->cat);
    int64_t toks[4] = {-6000000000000000000, -100, 100, 4000000000000000000};
    memcpy(f->tokens, toks, sizeof toks);
    coord_member_opts mo = {.addr = "127.0.0.1", .dc = "datacenter1", .rack = "rack1", .tokens = toks, .ntokens = 4};
    f->co = coord_create(&mo, NULL);
    admin_node_info ni = {.cluster_name = "Test Cluster", .listen_address = "127.0.0.1", .rpc_address = "127.0.0.1",
                          .dc = "datacenter1", .rack = "rack1", .native_port = 9042, .tokens = toks, .ntokens = 4,
                          .generation = 1700000000};
    ni.host_id[0] = 0xab;
    admin_opts ao = {.st = f->st, .cat = f->cat, .co = f->co, .node = &ni};
    f->srv = admin_server_create(&ao, &err);
    if (!f->srv) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    admin_server_destroy(f->srv);
    coord_destroy(f->co);
    sch_catalog_destroy(f->cat);
    storage_close(f->st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static char *get(fixture *f, const char *method, const char *url, int *status)
{
    sib_buf b;
    sib_buf_init(&b);
    assert_int_equal(admin_server_handle(f->srv, method, url, status, &b), 0);
    sib_buf_u8(&b, 0);
    return (char *)b.p;
}

static void expect(fixture *f, const char *method, const char *url, int status, const char *needle)
{
    int st = 0;
    char *body = get(f, method, url, &st);
    if (st != status || !strstr(body, needle)) fail_msg("%s %s -> %d: %s (wanted %d with %s)", method, url, st, body, status, needle);
    free(body);
}

static void test_endpoints_basic(void **state)
{
    fixture *f = *state;
    expect(f, "GET", "/status", 200, "\"host_id\": \"ab000000-0000-0000-0000-000000000000\"");
    expect(f, "GET", "/status", 200, "\"owns\": 100.0");
    expect(f, "GET", "/info", 200, "\"generation\": 1700000000");
    expect(f, "GET", "/info", 200, "\"release_version\": \"" SIB_RELEASE_VERSION "\"");
    expect(f, "GET", "/ring", 200, "\"token\": -6000000000000000000");
    expect(f, "GET", "/gossipinfo", 200, "\"STATUS\": \"NORMAL,-6000000000000000000\"");
    expect(f, "GET", "/compactionstats", 200, "\"pending_tasks\": 0");
    expect(f, "GET", "/metrics", 200, "# TYPE sibyl_memtable_bytes gauge");
    expect(f, "GET", "/metrics", 200, "sibyl_table_partitions{keyspace=\"ks\",table=\"t\"} 0");
    expect(f, "GET", "/nope", 404, "\"error\"");
    expect(f, "POST", "/status", 405, "\"error\"");
    expect(f, "GET", "/flush", 405, "\"error\"");
}

static void test_flush_compact_501(void **state)
{
    fixture *f = *state;
    expect(f, "POST", "/flush", 501, "not supported by this node yet");
    expect(f, "POST", "/flush/ks/t", 501, "not supported by this node yet");
    expect(f, "POST", "/compact/ks", 501, "not supported by this node yet");
    expect(f, "POST", "/flush/nosuch", 404, "keyspace nosuch does not exist");
    /* removenode: POST only, one host id, and the node's hook decides */
    expect(f, "GET", "/removenode/ab000000-0000-0000-0000-000000000000", 405, "use POST");
    expect(f, "POST", "/removenode", 400, "usage: POST /removenode/<host id>");
    expect(f, "POST", "/removenode/ab000000-0000-0000-0000-000000000000", 501, "not supported by this node yet");
}

static void test_describering_tablestats(void **state)
{
    fixture *f = *state;
    /* Range 0 wraps: (last token, first token]. */
    expect(f, "GET", "/describering/ks", 200, "\"start_token\": 4000000000000000000");
    expect(f, "GET", "/describering/ks", 200, "\"endpoints\": [\n    \"127.0.0.1\"");
    expect(f, "GET", "/describering/nosuch", 404, "does not exist");
    expect(f, "GET", "/tablestats/ks/t", 200, "\"name\": \"t\"");
    expect(f, "GET", "/tablestats/ks/t", 200, "\"sstable_count\": 0");
    expect(f, "GET", "/tablestats", 200, "\"name\": \"system_schema\"");
    expect(f, "GET", "/tablestats/ks/nosuch", 404, "Unknown table");
}

static void test_endpoints_key(void **state)
{
    fixture *f = *state;
    /* int 42 serializes as 00 00 00 2a; its token is the murmur3 of that. */
    uint8_t k42[4] = {0, 0, 0, 42};
    char want[64];
    snprintf(want, sizeof want, "\"token\": %lld", (long long)sib_murmur3_token(k42, 4));
    expect(f, "GET", "/endpoints/ks/t/42", 200, want);
    expect(f, "GET", "/endpoints/ks/t/42", 200, "\"127.0.0.1\"");
    expect(f, "GET", "/endpoints/ks/t/abc", 400, "Unable to make int from 'abc'");
    expect(f, "GET", "/endpoints/ks/nosuch/1", 404, "does not exist");

    /* Composite key: u16 len + bytes + 0 per component. */
    sib_buf key;
    sib_buf_init(&key);
    sib_err err;
    assert_int_equal(admin_parse_key(f->cat, "ks", "c", "x:y:7", &key, &err), SIB_EINVAL);
    sib_buf_reset(&key);
    assert_int_equal(admin_parse_key(f->cat, "ks", "c", "x", &key, &err), SIB_EINVAL);
    sib_buf_reset(&key);
    assert_int_equal(admin_parse_key(f->cat, "ks", "c", "ab:7", &key, &err), 0);
    const uint8_t want_key[] = {0, 2, 'a', 'b', 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7, 0};
    assert_int_equal(key.len, sizeof want_key);
    assert_memory_equal(key.p, want_key, sizeof want_key);
    sib_buf_free(&key);
}

static int check(const char *bind, const char *token, const char *host, const char *origin, const char *site,
                 const char *auth)
{
    admin_guard g = {.bind_addr = bind, .token = token};
    admin_req_headers h = {.host = host, .origin = origin, .sec_fetch_site = site, .authorization = auth};
    const char *why = NULL;
    int st = admin_check_request(&g, &h, &why);
    if (st) assert_non_null(why);
    return st;
}

static void test_request_guard(void **state)
{
    (void)state;
    /* Tools send no Origin: served, with or without a port in Host. */
    assert_int_equal(check("127.0.0.1", NULL, "127.0.0.1:10000", NULL, NULL, NULL), 0);
    assert_int_equal(check("127.0.0.1", NULL, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(check("127.0.0.1", NULL, "localhost:10000", NULL, NULL, NULL), 0);
    assert_int_equal(check("127.0.0.1", NULL, "[::1]:10000", NULL, NULL, NULL), 0);
    assert_int_equal(check("10.0.0.5", NULL, "10.0.0.5", NULL, NULL, NULL), 0);
    /* DNS rebinding: a name is not the node. */
    assert_int_equal(check("127.0.0.1", NULL, "evil.example:10000", NULL, NULL, NULL), 403);
    /* Cross-site browser requests. */
    assert_int_equal(check("127.0.0.1", NULL, "127.0.0.1:10000", "http://evil.example", NULL, NULL), 403);
    assert_int_equal(check("127.0.0.1", NULL, "127.0.0.1:10000", "null", NULL, NULL), 403);
    assert_int_equal(check("127.0.0.1", NULL, "127.0.0.1:10000", NULL, "cross-site", NULL), 403);
    assert_int_equal(check("127.0.0.1", NULL, "127.0.0.1:10000", NULL, "same-site", NULL), 403);
    assert_int_equal(check("127.0.0.1", NULL, "127.0.0.1:10000", "http://127.0.0.1:10000", "same-origin", NULL), 0);
    assert_int_equal(check("127.0.0.1", NULL, NULL, "http://127.0.0.1:10000", NULL, NULL), 403);
    /* The token. */
    assert_int_equal(check("127.0.0.1", "tok", "127.0.0.1", NULL, NULL, NULL), 401);
    assert_int_equal(check("127.0.0.1", "tok", "127.0.0.1", NULL, NULL, "Bearer tok"), 0);
    assert_int_equal(check("127.0.0.1", "tok", "127.0.0.1", NULL, NULL, "bearer tok"), 0);
    assert_int_equal(check("127.0.0.1", "tok", "127.0.0.1", NULL, NULL, "Bearer tokx"), 401);
    assert_int_equal(check("127.0.0.1", "tok", "127.0.0.1", NULL, NULL, "Bearer to"), 401);
    assert_int_equal(check("127.0.0.1", "tok", "127.0.0.1", NULL, NULL, "Basic dG9r"), 401);
    assert_int_equal(check("127.0.0.1", "", "127.0.0.1", NULL, NULL, NULL), 0);
    /* A cross-site request is refused even with the token. */
    assert_int_equal(check("127.0.0.1", "tok", "127.0.0.1", "http://evil.example", NULL, "Bearer tok"), 403);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_buckets),
        cmocka_unit_test(test_hist_quantile),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_request_op),
        cmocka_unit_test(test_loop_lag),
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_ring_owns),
        cmocka_unit_test(test_request_guard),
        cmocka_unit_test_setup_teardown(test_endpoints_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_compact_501, setup, teardown),
        cmocka_unit_test_setup_teardown(test_describering_tablestats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endpoints_key, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
