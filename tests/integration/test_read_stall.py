"""One client's full scan must not stall another client's point reads.

Rows are loaded with sibyl-stress (cassandra-stress's keyspace1.standard1)
and flushed, so every read needs SSTables. One connection then runs
SELECT COUNT(*) and a paged full scan; meanwhile another connection
overwrites existing keys and reads each one back (the read must see the
write just acknowledged: the memtable part of a read is taken when it is
asked for). The scan runs on the read pool in bounded pieces, so:
  - at least MIN_POINT_READS point reads complete while the scan runs;
  - /metrics reports no event loop iteration longer than SLOW_ITERATION
    during the scan (sibyl_loop_iteration_seconds, bucket deltas).
SLOW_ITERATION is 100 ms, not a few: the metric is wall-clock time and the
test runs under ASan on a 2-core machine shared with other builds, where
preemption alone stretched iterations past 50 ms (load average 6). Before
the read pool one iteration held the whole scan piece by piece on the loop:
a COUNT(*) over 400k rows was one iteration of seconds under ASan.
ROWS is the issue's 400k (SIBYL_STALL_ROWS overrides). The point reads' p99
and max, and the iterations over 5 ms, are printed (-s shows them); no
wall-clock figure is asserted.
"""

import os
import random
import re
import threading
import time
import urllib.request

import pytest

from cassandra import InvalidRequest
from cassandra.cluster import EXEC_PROFILE_DEFAULT
from cassandra.query import SimpleStatement

from conftest import default_profile
from cqlframe import OP_QUERY, RawConnection, frame, query_body
from sibyl_harness import flush
from test_stress import find_stress, run_stress

ROWS = int(os.environ.get("SIBYL_STALL_ROWS", "400000"))
MIN_POINT_READS = 20
SLOW_ITERATION = 0.1           # seconds: a bucket bound of the histogram
SCAN_TIMEOUT = 300.0           # seconds, per request (ASan, loaded machine)
POINT_READS_MAX = 200000       # bound of the reading loop


@pytest.fixture
def stress_bin():
    b = find_stress()
    if b is None:
        pytest.skip("sibyl-stress not built and SIBYL_STRESS unset")
    return b


def loop_buckets(node):
    """{le: cumulative count} of sibyl_loop_iteration_seconds, and the count."""
    with urllib.request.urlopen("http://%s:%d/metrics" % (node.host, node.admin_port), timeout=30) as r:
        text = r.read().decode()
    buckets = {}
    for m in re.finditer(r'^sibyl_loop_iteration_seconds_bucket\{loop="cql",le="([^"]+)"\} (\d+)$', text, re.M):
        buckets[m.group(1)] = int(m.group(2))
    count = int(re.search(r'^sibyl_loop_iteration_seconds_count\{loop="cql"\} (\d+)$', text, re.M).group(1))
    return buckets, count


def slow_iterations(node, over=SLOW_ITERATION):
    buckets, count = loop_buckets(node)
    le = "%.6f" % over
    assert le in buckets, sorted(buckets)
    return count - buckets[le], count


def fill(stress_bin, node):
    """Writes keys 1..ROWS. sibyl-stress counts a failed request (a write
    timeout or Overloaded on a loaded machine) and goes on, so the fill is
    repeated (the same keys and values: idempotent) until a pass has no
    error, at most 3 times, and the scan's count is then exact."""
    for _ in range(3):
        out, _ = run_stress(stress_bin, node, "write", "n=%d" % ROWS, "cl=ONE", "-rate", "threads=2", "-conns",
                            "2", "-inflight", "32", "-col", "size=FIXED(64)", "-schema", "replication(factor=1)",
                            "-pop", "seq=1..%d" % ROWS)
        errors = re.search(r"^Total errors\s*:\s*([\d,]+)", out, re.M)
        assert errors, out
        if errors.group(1) == "0":
            return
    raise AssertionError("the fill kept failing requests:\n%s" % out)


def test_point_reads_go_on_during_a_full_scan(stress_bin, node, clusters):
    fill(stress_bin, node)
    info = flush(node)
    assert info["sstables"] >= 1

    long_profile = default_profile()
    long_profile.request_timeout = SCAN_TIMEOUT
    _, scan_s = clusters.connect(node, execution_profiles={EXEC_PROFILE_DEFAULT: long_profile})
    _, point_s = clusters.connect(node)
    get = point_s.prepare('SELECT key, "C0" FROM keyspace1.standard1 WHERE key = ?')
    put = point_s.prepare('INSERT INTO keyspace1.standard1 (key, "C0") VALUES (?, ?)')
    point_s.execute(get, [b"0000000001"])  # connected and prepared before the clock starts

    result = {}

    def scan():
        try:
            result["count"] = scan_s.execute("SELECT COUNT(*) FROM keyspace1.standard1").one()[0]
            st = SimpleStatement("SELECT key FROM keyspace1.standard1", fetch_size=5000)
            result["scanned"] = sum(1 for _ in scan_s.execute(st))
        except Exception as e:  # reported by the main thread
            result["error"] = e

    slow_before, _ = slow_iterations(node)
    over5_before, _ = slow_iterations(node, 0.005)
    t = threading.Thread(target=scan)
    rng = random.Random(7)
    latencies = []
    t.start()
    try:
        deadline = time.monotonic() + 2 * SCAN_TIMEOUT
        while t.is_alive() and len(latencies) < POINT_READS_MAX and time.monotonic() < deadline:
            key = ("%010d" % rng.randint(1, ROWS)).encode()
            val = rng.getrandbits(512).to_bytes(64, "big")  # same size: overwritten in place
            point_s.execute(put, [key, val])
            t0 = time.monotonic()
            row = point_s.execute(get, [key]).one()
            latencies.append(time.monotonic() - t0)
            assert row is not None and row.key == key and row.C0 == val
    finally:
        t.join(2 * SCAN_TIMEOUT)
    slow_after, iterations = slow_iterations(node)
    over5_after, _ = slow_iterations(node, 0.005)

    assert "error" not in result, result.get("error")
    assert result["count"] == ROWS   # overwrites add no key
    assert result["scanned"] == ROWS
    latencies.sort()
    n = len(latencies)
    p99 = latencies[min(n - 1, int(n * 0.99))] if n else float("nan")
    print("\n%d rows scanned twice; %d point reads meanwhile, p99 %.1f ms, max %.1f ms; "
          "loop iterations during the scan over %.0f ms: %d, over 5 ms: %d (of %d so far)"
          % (ROWS, n, p99 * 1e3, (latencies[-1] if n else float("nan")) * 1e3, SLOW_ITERATION * 1e3,
             slow_after - slow_before, over5_after - over5_before, iterations))
    assert n >= MIN_POINT_READS, "only %d point reads completed during the scan" % n
    assert slow_after - slow_before == 0, "%d loop iterations over %.0f ms" % (slow_after - slow_before,
                                                                              SLOW_ITERATION * 1e3)


def test_connection_closed_during_pool_reads(stress_bin, node, clusters):
    """Clients that hang up while their scans are on the read pool: the
    replies are dropped with the connections, the node stays healthy
    (sanitizers clean: the harness checks the log at the end) and keeps
    answering. Then a shutdown while scans are in flight exits cleanly."""
    n = 20000
    run_stress(stress_bin, node, "write", "n=%d" % n, "cl=ONE", "-rate", "threads=2", "-conns", "2",
               "-inflight", "32", "-col", "size=FIXED(64)", "-schema", "replication(factor=1)")
    flush(node)
    for i in range(20):
        with RawConnection(node.host, node.port) as c:
            c.startup()
            # several scans pipelined, then the socket closes at once
            for stream in range(1, 5):
                c.send(frame(OP_QUERY, query_body("SELECT COUNT(*) FROM keyspace1.standard1"), stream=stream))
    _, s = clusters.connect(node)
    assert s.execute("SELECT COUNT(*) FROM keyspace1.standard1").one()[0] == n
    assert node.running()
    with RawConnection(node.host, node.port) as c:
        c.startup()
        for stream in range(1, 9):
            c.send(frame(OP_QUERY, query_body("SELECT COUNT(*) FROM keyspace1.standard1"), stream=stream))
        time.sleep(0.05)  # let the node read the frames: the scans are then on the pool
        assert node.stop() == 0  # the pool drains: every read answered or dropped, then exit 0


def test_schema_change_during_pool_reads(stress_bin, make_node, clusters):
    """A DDL while a scan is on the read pool: the scan starts over against
    the new schema (nothing was sent yet) and answers in full."""
    node = make_node(log_level="debug")
    n = 100000
    run_stress(stress_bin, node, "write", "n=%d" % n, "cl=ONE", "-rate", "threads=2", "-conns", "2",
               "-inflight", "32", "-col", "size=FIXED(64)", "-schema", "replication(factor=1)")
    flush(node)
    long_profile = default_profile()
    long_profile.request_timeout = SCAN_TIMEOUT
    _, scan_s = clusters.connect(node, execution_profiles={EXEC_PROFILE_DEFAULT: long_profile})
    _, ddl_s = clusters.connect(node)
    for i in range(3):
        fut = scan_s.execute_async("SELECT COUNT(*) FROM keyspace1.standard1")
        time.sleep(0.02 * (i + 1))  # the DDL lands at some point of the scan
        ddl_s.execute("CREATE TABLE keyspace1.extra%d (k int PRIMARY KEY)" % i)
        assert fut.result().one()[0] == n
    # the table itself dropped under the scan: the restart finds it gone
    fut = scan_s.execute_async("SELECT COUNT(*) FROM keyspace1.standard1")
    time.sleep(0.02)
    ddl_s.execute("DROP TABLE keyspace1.standard1")
    try:
        assert fut.result().one()[0] == n  # it finished before the drop
    except InvalidRequest as e:
        assert "standard1" in str(e), str(e)
