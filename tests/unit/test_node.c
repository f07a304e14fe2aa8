/* Unit tests for node/: configuration defaults, cassandra.yaml parsing
 * (both spellings of durations and sizes, seed_provider, lists) and the
 * errors a bad file gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <unistd.h>

#include "node.h"

static char *write_tmp(const char *text)
{
    static char path[64];
    strcpy(path, "/tmp/sibyl-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_defaults(void **state)
{
    (void)state;
    node_config c;
    node_config_defaults(&c);
    assert_string_equal(c.rpc_address, "127.0.0.1");
    assert_int_equal(c.native_transport_port, 9042);
    assert_string_equal(c.data_dir, "./data");
    assert_int_equal(c.num_tokens, 16);
    assert_int_equal(c.storage_port, 7000);
    assert_true(c.phi_convict_threshold == 8.0);
    assert_int_equal(c.gossip_interval_ms, 1000); /* Cassandra's fixed interval */
    assert_int_equal(c.batchlog_replay_interval_ms, 10000); /* Cassandra's fixed replay period */
    assert_int_equal(c.commitlog_sync, NODE_SYNC_PERIODIC);
    assert_int_equal(c.commitlog_sync_period_ms, 10000);
    assert_string_equal(c.cluster_name, "Sibyl Cluster");
    /* sizes derived from the machine are left to storage */
    assert_int_equal(c.memtable_heap_space, 0);
    assert_int_equal(c.commitlog_total_space, 0);
    assert_true(c.block_cache_size == NODE_DEFAULT_SIZE);
    assert_int_equal(c.concurrent_reads, 2);
    assert_int_equal(c.disk_failure_policy, NODE_DFP_STOP);
}

static void test_load(void **state)
{
    (void)state;
    const char *y = "cluster_name: 'Test Cluster'\n"
                    "rpc_address: 127.0.0.2\n"
                    "native_transport_port: 9142\n"
                    "data_file_directories:\n  - /tmp/sib/data\n"
                    "commitlog_directory: /tmp/sib/cl\n"
                    "commitlog_sync: batch\n"
                    "disk_failure_policy: best_effort\n"
                    "commitlog_sync_period: 2s\n"
                    "native_transport_max_frame_size: 8MiB\n"
                    "num_tokens: 4\n"
                    "commitlog_total_space: 2GiB\n"
                    "block_cache_size: 0\n"
                    "phi_convict_threshold: 12\n"
                    "gossip_interval_ms: 250\n"
                    "batchlog_replay_interval: 3s\n"
                    "storage_port: 7100\n"
                    "concurrent_reads: 8\n"
                    "seed_provider:\n"
                    "  - class_name: org.apache.cassandra.locator.SimpleSeedProvider\n"
                    "    parameters:\n"
                    "      - seeds: \"127.0.0.1,127.0.0.2\"\n"
                    "some_future_key: 3\n";
    char *p = write_tmp(y);
    node_config c;
    node_config_defaults(&c);
    sib_err err = {0};
    assert_int_equal(node_config_load(&c, p, NULL, &err), 0);
    unlink(p);
    assert_string_equal(c.cluster_name, "Test Cluster");
    assert_string_equal(c.rpc_address, "127.0.0.2");
    assert_int_equal(c.native_transport_port, 9142);
    assert_string_equal(c.data_dir, "/tmp/sib/data");
    assert_string_equal(c.commitlog_dir, "/tmp/sib/cl");
    assert_int_equal(c.commitlog_sync, NODE_SYNC_BATCH);
    assert_int_equal(c.disk_failure_policy, NODE_DFP_BEST_EFFORT);
    assert_int_equal(c.commitlog_sync_period_ms, 2000);
    assert_int_equal(c.native_transport_max_frame_size, 8u << 20);
    assert_int_equal(c.num_tokens, 4);
    assert_int_equal(c.commitlog_total_space, (size_t)2 << 30);
    assert_int_equal(c.block_cache_size, 0); /* 0 = no cache, not "default" */
    assert_int_equal(c.concurrent_reads, 8);
    assert_string_equal(c.seeds, "127.0.0.1,127.0.0.2");
    assert_true(c.phi_convict_threshold == 12.0);
    assert_int_equal(c.gossip_interval_ms, 250);
    assert_int_equal(c.batchlog_replay_interval_ms, 3000);
    assert_int_equal(c.storage_port, 7100);
}

static void test_bad_values(void **state)
{
    (void)state;
    static const char *bad[] = {
        "commitlog_sync: sometimes\n",
        "disk_failure_policy: best_effrot\n",
        "native_transport_port: abc\n",
        "commitlog_sync_period: 10 parsecs\n",
        "num_tokens: 0\n",
        "concurrent_reads: 0\n",
        "concurrent_reads: 65\n",
        "key: [unclosed\n",
        "phi_convict_threshold: 0\n",
        "gossip_interval: 1ms\n",
        "batchlog_replay_interval: 0ms\n",
        "storage_port: 70000\n",
    };
    for (size_t i = 0; i < SIB_ARRAY_LEN(bad); i++) {
        char *p = write_tmp(bad[i]);
        node_config c;
        node_config_defaults(&c);
        sib_err err = {0};
        assert_int_not_equal(node_config_load(&c, p, NULL, &err), 0);
        assert_true(strlen(err.msg) > 0);
        unlink(p);
    }
    node_config c;
    sib_err err;
    assert_int_not_equal(node_config_load(&c, "/nonexistent/sibyl.yaml", NULL, &err), 0);
}

static void test_units(void **state)
{
    (void)state;
    long ms;
    size_t sz;
    assert_int_equal(node_parse_duration_ms("10000", 1, &ms), 0);
    assert_int_equal(ms, 10000);
    assert_int_equal(node_parse_duration_ms("3m", 1, &ms), 0);
    assert_int_equal(ms, 180000);
    assert_int_equal(node_parse_size("32", 1 << 20, &sz), 0);
    assert_int_equal(sz, 32u << 20);
    assert_int_equal(node_parse_size("64KiB", 1, &sz), 0);
    assert_int_equal(sz, 65536);
    assert_int_not_equal(node_parse_size("-1", 1, &sz), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_units),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
