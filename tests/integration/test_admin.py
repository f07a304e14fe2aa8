"""The HTTP admin API, /metrics and sibyltool against a real sibyld.

Runs CQL through the python driver, then checks that the node's counters
moved, and that sibyltool's nodetool-style output names the same host id,
table and replica/token the driver sees.

sibyltool is looked up as SIBYLTOOL_BIN, else next to sibyld
(<build>/tools/sibyltool beside <build>/node/sibyld).
"""

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from cassandra import ConsistencyLevel
from cassandra.metadata import murmur3
from cassandra.query import SimpleStatement

TOOL_TIMEOUT = 30


def sibyltool_bin(node):
    env = os.environ.get("SIBYLTOOL_BIN")
    if env:
        return env
    build = os.path.dirname(os.path.dirname(os.path.abspath(node.binary)))
    return os.path.join(build, "tools", "sibyltool")


@pytest.fixture
def tool(node):
    path = sibyltool_bin(node)
    if not os.access(path, os.X_OK):
        pytest.fail("sibyltool not found at %s: build it or set SIBYLTOOL_BIN" % path, pytrace=False)

    def run(*args, check=True):
        p = subprocess.run([path, "-h", node.host, "-p", str(node.admin_port)] + list(args),
                           capture_output=True, text=True, timeout=TOOL_TIMEOUT, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError("sibyltool %s exited %d:\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p
    return run


def http(node, path, method="GET"):
    """(status, body text) of one admin API call."""
    req = urllib.request.Request("http://%s:%d%s" % (node.host, node.admin_port, path), method=method,
                                 data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=TOOL_TIMEOUT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(text, name, **labels):
    """Value of one sample of the exposition (0 when the series is absent)."""
    want = ",".join('%s="%s"' % kv for kv in labels.items())
    line_re = re.compile(r"^%s(\{%s\})? (\S+)$" % (re.escape(name), re.escape(want)) if want
                         else r"^%s (\S+)$" % re.escape(name))
    for line in text.splitlines():
        m = line_re.match(line)
        if m:
            return float(m.groups()[-1])
    return 0.0


def fill(session, ks):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v text)" % ks)
    ins = session.prepare("INSERT INTO %s.t (k, v) VALUES (?, ?)" % ks)
    for i in range(20):
        session.execute(ins, [i, "v%d" % i])
    q = SimpleStatement("SELECT v FROM %s.t WHERE k = 3" % ks, consistency_level=ConsistencyLevel.ONE)
    assert session.execute(q).one().v == "v3"


def test_metrics_count_requests_and_errors(node, session, ks):
    status, before = http(node, "/metrics")
    assert status == 200
    fill(session, ks)
    with pytest.raises(Exception):
        session.execute("SELECT * FROM %s.no_such_table" % ks)
    status, after = http(node, "/metrics")
    assert status == 200
    assert "# TYPE sibyl_cql_request_latency_seconds histogram" in after
    assert metric(after, "sibyl_cql_requests_total", op="execute", consistency="LOCAL_ONE") >= 20
    assert metric(after, "sibyl_cql_requests_total", op="query", consistency="ONE") >= 1
    assert metric(after, "sibyl_cql_statements_total", type="insert") - \
        metric(before, "sibyl_cql_statements_total", type="insert") >= 20
    assert metric(after, "sibyl_cql_statements_total", type="select") > \
        metric(before, "sibyl_cql_statements_total", type="select")
    assert metric(after, "sibyl_cql_errors_total", code="invalid") > \
        metric(before, "sibyl_cql_errors_total", code="invalid")
    count = metric(after, "sibyl_cql_request_latency_seconds_count", op="execute")
    assert metric(after, "sibyl_cql_request_latency_seconds_bucket", op="execute", le="+Inf") == count >= 20
    assert metric(after, "sibyl_connected_clients") >= 1
    assert metric(after, "sibyl_table_partitions", keyspace=ks, table="t") == 20
    assert metric(after, "sibyl_table_writes_total", keyspace=ks, table="t") == 20
    assert metric(after, "sibyl_table_reads_total", keyspace=ks, table="t") == 1
    assert metric(after, "sibyl_memtable_bytes") > 0
    assert metric(after, "sibyl_commitlog_bytes_written_total") > metric(before, "sibyl_commitlog_bytes_written_total")


def test_loop_metrics_own_work(node, session, ks):
    """The loop's own share of its iterations: CPU time per iteration (one
    sample per iteration, as the wall-time histogram has), iterations that
    waited in the kernel, and page faults, next to the wall-time figures."""
    fill(session, ks)
    status, text = http(node, "/metrics")
    assert status == 200
    assert "# TYPE sibyl_loop_iteration_cpu_seconds histogram" in text
    cpu = metric(text, "sibyl_loop_iteration_cpu_seconds_count", loop="cql")
    assert cpu > 0
    assert metric(text, "sibyl_loop_iteration_cpu_seconds_bucket", loop="cql", le="+Inf") == cpu
    # the /metrics request itself runs inside an iteration not finished yet
    wall = metric(text, "sibyl_loop_iteration_seconds_count", loop="cql")
    assert wall == cpu
    assert 0 < metric(text, "sibyl_loop_iteration_cpu_max_seconds", loop="cql") <= \
        metric(text, "sibyl_loop_iteration_max_seconds", loop="cql") + 0.001
    for name in ("sibyl_loop_iterations_blocked_total", "sibyl_loop_iteration_blocked_max_seconds",
                 "sibyl_loop_page_faults_total"):
        assert re.search(r'^%s\{loop="cql"\} [0-9.]+$' % name, text, re.M), name


def test_status_shows_host_id(node, session, tool):
    host_id = str(session.execute("SELECT host_id FROM system.local").one().host_id)
    out = tool("status").stdout
    assert "Datacenter: datacenter1" in out
    assert "Status=Up/Down" in out and "|/ State=Normal/Leaving/Joining/Moving" in out
    assert re.search(r"^--\s+Address\s+Load\s+Tokens\s+Owns \(effective\)\s+Host ID\s+Rack$", out, re.M), out
    row = re.search(r"^UN\s+(\S+)\s+[\d.]+ \S+\s+(\d+)\s+([\d.]+)%\s+(\S+)\s+(\S+)$", out, re.M)
    assert row, out
    assert row.group(1) == node.host
    assert int(row.group(2)) == node.num_tokens
    assert row.group(3) == "100.0"
    assert row.group(4) == host_id
    assert row.group(5) == "rack1"


def test_info_ring_gossipinfo(node, session, tool):
    host_id = str(session.execute("SELECT host_id FROM system.local").one().host_id)
    tokens = sorted(int(t) for t in session.execute("SELECT tokens FROM system.local").one().tokens)
    info = tool("info").stdout
    assert re.search(r"^ID\s+: %s$" % host_id, info, re.M), info
    assert re.search(r"^Uptime \(seconds\)\s+: \d+$", info, re.M)
    assert "Native Transport active: true" in info
    ring = tool("ring").stdout
    ring_tokens = [int(m) for m in re.findall(r"^%s\s+rack1\s+Up\s+Normal\s+.*?(-?\d+)$" % re.escape(node.host),
                                              ring, re.M)]
    assert ring_tokens == tokens
    gossip = tool("gossipinfo").stdout
    assert gossip.startswith("/%s\n" % node.host)
    assert "  HOST_ID:%s\n" % host_id in gossip
    assert "  STATUS:NORMAL,%d\n" % tokens[0] in gossip
    schema = str(session.execute("SELECT schema_version FROM system.local").one().schema_version)
    assert "  SCHEMA:%s\n" % schema in gossip


def test_first_node_tokens_evenly_spaced(node, session):
    """A node that starts a ring alone spaces its vnode tokens evenly (the
    allocator's first step), so when others join every range is the same size."""
    tokens = sorted(int(t) for t in session.execute("SELECT tokens FROM system.local").one().tokens)
    assert len(tokens) == node.num_tokens
    step = (2 ** 64) // node.num_tokens
    gaps = [(tokens[(i + 1) % len(tokens)] - tokens[i]) % (2 ** 64) for i in range(len(tokens))]
    assert all(abs(g - step) <= node.num_tokens for g in gaps), gaps


def test_tablestats_and_describering(node, session, ks, tool):
    fill(session, ks)
    out = tool("tablestats", "%s.t" % ks).stdout
    assert out.startswith("Total number of tables: 1\n")
    assert "Keyspace : %s\n" % ks in out
    assert "\t\tTable: t\n" in out
    assert "\t\tNumber of partitions (estimate): 20\n" in out
    assert "\t\tSSTable count: 0\n" in out
    assert "\t\tLocal write count: 20\n" in out          # fill(): 20 INSERTs
    assert "\t\tLocal read count: 1\n" in out            # and one SELECT
    assert re.search(r"\t\tLocal write latency: \d+\.\d{3} ms\n", out), out
    everything = tool("tablestats").stdout
    assert "Keyspace : system_schema\n" in everything and "Keyspace : %s\n" % ks in everything
    missing = tool("tablestats", "%s.nope" % ks, check=False)
    assert missing.returncode == 1 and "Unknown table" in missing.stderr
    ranges = tool("describering", ks).stdout
    assert ranges.count("TokenRange(start_token:") == node.num_tokens
    assert "endpoints:[%s]" % node.host in ranges


def test_getendpoints_token_matches_driver(node, session, ks, tool):
    fill(session, ks)
    for key in (3, 17, -5):
        token = session.execute("SELECT token(k) FROM %s.t WHERE k = %d" % (ks, key)).one()[0] if key >= 0 else None
        expect = murmur3(key.to_bytes(4, "big", signed=True))
        if token is not None:
            assert token == expect
        out = tool("-T", "getendpoints", ks, "t", str(key)).stdout
        assert out == "Token: %d\n%s\n" % (expect, node.host), out
    plain = tool("getendpoints", ks, "t", "3").stdout
    assert plain == "%s\n" % node.host
    # A text key with characters that need escaping in the URL.
    session.execute("CREATE TABLE %s.s (k text PRIMARY KEY)" % ks)
    out = tool("-T", "getendpoints", ks, "s", "a b/c:d").stdout
    assert out.startswith("Token: %d\n" % murmur3(b"a b/c:d"))
    bad = tool("getendpoints", ks, "t", "notanint", check=False)
    assert bad.returncode == 1 and "Unable to make int from 'notanint'" in bad.stderr


def test_flush_compact_and_compactionstats(node, session, tool):
    ks = "flushks"
    session.execute("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}" % ks)
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v text)" % ks)
    for i in range(50):
        session.execute("INSERT INTO %s.t (k, v) VALUES (%d, 'v%d')" % (ks, i, i))
    before = json.loads(http(node, "/info")[1])
    tool("flush", ks, "t")                       # returns once the flush is live
    info = json.loads(http(node, "/info")[1])
    assert info["flushes_pending"] == 0
    assert info["sstables"] > before["sstables"] and info["sstable_bytes"] > 0
    rows = {r.k: r.v for r in session.execute("SELECT k, v FROM %s.t" % ks)}
    assert rows == {i: "v%d" % i for i in range(50)}   # now served from the SSTable
    tool("flush")                                # everything
    status, body = http(node, "/flush/nosuchks", method="POST")
    assert status == 404
    # Four more flushes give STCS's min_threshold of similar SSTables; a
    # major compaction then leaves one.
    for round in range(4):
        for i in range(50):
            session.execute("INSERT INTO %s.t (k, v) VALUES (%d, 'r%d')" % (ks, i, round))
        tool("flush", ks, "t")
    tool("compact", ks, "t")
    for _ in range(600):                                     # bounded: 30 s
        if tool("compactionstats").stdout == "pending tasks: 0\n":
            break
        time.sleep(0.05)
    out = tool("tablestats", "%s.t" % ks).stdout
    assert "\t\tSSTable count: 1\n" in out, out
    rows = {r.k: r.v for r in session.execute("SELECT k, v FROM %s.t" % ks)}
    assert rows == {i: "r3" for i in range(50)}
    _, text = http(node, "/metrics")
    assert metric(text, "sibyl_table_sstables", keyspace=ks, table="t") == 1
    assert metric(text, "sibyl_table_compactions_completed_total", keyspace=ks, table="t") >= 1
    assert metric(text, "sibyl_table_compaction_bytes_written_total", keyspace=ks, table="t") > 0
    assert tool("compactionstats").stdout == "pending tasks: 0\n"


def test_table_gc_grace_reaches_compaction(node, session, tool):
    # gc_grace_seconds = 0 set through CQL: a major compaction purges the
    # tombstones at once (nothing older can hide outside it: one SSTable).
    ks = "gcks"
    session.execute("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}" % ks)
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v text) WITH gc_grace_seconds = 0" % ks)
    for i in range(30):
        session.execute("INSERT INTO %s.t (k, v) VALUES (%d, 'v')" % (ks, i))
    for i in range(10):
        session.execute("DELETE FROM %s.t WHERE k = %d" % (ks, i))
    time.sleep(1.1)                              # deletion times must be in the past
    tool("flush", ks, "t")
    tool("compact", ks, "t")
    stats = None
    for _ in range(600):                         # bounded: 30 s
        stats = json.loads(http(node, "/tablestats/%s/t" % ks)[1])
        table = stats["keyspaces"][0]["tables"][0] if "keyspaces" in stats else stats
        if table.get("tombstones_purged", 0) >= 10:
            break
        time.sleep(0.05)
    assert table.get("tombstones_purged", 0) >= 10, stats
    assert sorted(r.k for r in session.execute("SELECT k FROM %s.t" % ks)) == list(range(10, 30))


def test_unreachable_node_is_a_clear_error(node, tool):
    node.stop()
    r = tool("status", check=False)
    assert r.returncode == 1
    assert "Failed to connect to '%s:%d'" % (node.host, node.admin_port) in r.stderr


def test_stalled_admin_client_blocks_nothing(node, session):
    # MHD runs on the node's event loop: a client that sends half a request
    # and stalls must not hold up CQL or other admin requests.
    stalled = socket.create_connection((node.host, node.admin_port), timeout=5)
    try:
        stalled.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")
        assert session.execute("SELECT key FROM system.local").one().key == "local"
        status, body = http(node, "/status")
        assert status == 200 and json.loads(body)["nodes"][0]["address"] == node.host
    finally:
        stalled.close()


def test_admin_port_in_use_refuses_to_start(node, make_node):
    """A second node configured with the admin address and port of a running
    one must not start (as a JMX port in use stops Cassandra): with the port
    shared (SO_REUSEPORT) the kernel would spread sibyltool's requests over
    two different nodes."""
    from sibyl_harness import NodeError
    other = make_node(start=False, admin_port=node.admin_port, admin_address=node.host)
    try:
        other.start()
    except NodeError:
        pass
    else:
        # it may have opened its CQL port before the admin one: wait
        # (bounded) for it to give up
        try:
            other.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("a second node serves the admin port of a running one")
    assert "admin: cannot serve HTTP on %s:%d" % (node.host, node.admin_port) in other.log_text()
    assert other.proc.returncode not in (None, 0)
    # the running node still answers its own admin requests
    with urllib.request.urlopen("http://%s:%d/info" % (node.host, node.admin_port), timeout=10) as r:
        assert r.status == 200
