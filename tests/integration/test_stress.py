"""sibyl-stress against a real node: the summary reads like cassandra-stress's,
nothing fails, and what it wrote is there for a real driver to read.

The binary is $SIBYL_STRESS, else tools/sibyl-stress next to $SIBYL_BIN's
build directory, else the first of build-asan, build, build-client.
"""

import contextlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time

import pytest

from sibyl_harness import REPO_ROOT, free_port

STRESS_TIMEOUT = 300   # the node may run under ASan
N = 2000
VALUE_SIZE = 50


def find_stress():
    env = os.environ.get("SIBYL_STRESS")
    if env:
        return env if os.access(env, os.X_OK) else None
    cands = []
    sibyl_bin = os.environ.get("SIBYL_BIN")
    if sibyl_bin:
        build = os.path.dirname(os.path.dirname(os.path.abspath(sibyl_bin)))
        cands.append(os.path.join(build, "tools", "sibyl-stress"))
    for d in ("build-asan", "build", "build-client"):
        cands.append(os.path.join(REPO_ROOT, d, "tools", "sibyl-stress"))
    for c in cands:
        if os.access(c, os.X_OK):
            return c
    return None


@pytest.fixture(scope="module")
def stress_bin():
    b = find_stress()
    if b is None:
        pytest.skip("sibyl-stress not built (cmake --build <dir> --target sibyl-stress) and SIBYL_STRESS unset")
    return b


def run_stress(stress_bin, node, *args):
    cmd = [stress_bin, *args, "-node", node.host, "-port", "native=%d" % node.port]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=STRESS_TIMEOUT)
    assert p.returncode == 0, "%s\nstdout:\n%s\nstderr:\n%s" % (" ".join(cmd), p.stdout, p.stderr)
    return p.stdout, p.stderr


SUMMARY_LINE = re.compile(r"^(?P<label>[A-Za-z0-9. ]+?)\s*: +(?P<value>[0-9,.:]+)(?: (?P<unit>[a-z/]+))?")


def parse_summary(out):
    """{label: (number, unit)} from the 'Results:' block."""
    assert "Results:" in out, out
    res = {}
    for line in out.split("Results:", 1)[1].splitlines():
        m = SUMMARY_LINE.match(line)
        if m:
            v = m.group("value")
            res[m.group("label")] = (v if ":" in v else float(v.replace(",", "")), m.group("unit"))
    return res


def check_summary(s, n):
    for label in ("Op rate", "Latency mean", "Latency median", "Latency 95th percentile",
                  "Latency 99th percentile", "Latency 99.9th percentile", "Latency max",
                  "Total errors", "Total operation time"):
        assert label in s, "missing summary line %r in %r" % (label, s)
    assert s["Op rate"][1] == "op/s" and s["Op rate"][0] > 0
    assert s["Latency mean"][1] == "ms"
    assert s["Latency median"][0] <= s["Latency 99th percentile"][0] <= s["Latency max"][0]
    assert s["Total errors"][0] == 0
    assert s["Total partitions"][0] == n
    assert re.match(r"\d\d:\d\d:\d\d$", s["Total operation time"][0])


def test_write_then_read(stress_bin, node, clusters, tmp_path):
    out, _ = run_stress(stress_bin, node, "write", "n=%d" % N, "cl=ONE", "-rate", "threads=2",
                        "-conns", "2", "-inflight", "8", "-col", "size=FIXED(%d)" % VALUE_SIZE,
                        "-schema", "replication(factor=1)")
    check_summary(parse_summary(out), N)
    # Progress lines: "total,  <ops>, <op/s>, ..." at least once.
    assert re.search(r"^total,\s+\d+,", out, re.M), out

    log = tmp_path / "read.json"
    out, _ = run_stress(stress_bin, node, "read", "n=%d" % N, "-rate", "threads=1", "-conns", "2",
                        "-inflight", "4", "-pop", "dist=UNIFORM(1..%d)" % N, "-log", "file=%s" % log)
    s = parse_summary(out)
    check_summary(s, N)
    assert s["Total partitions missed"][0] == 0
    doc = json.loads(log.read_text())
    assert doc["summary"]["total_errors"] == 0
    assert doc["summary"]["total_ops"] == N
    assert doc["intervals"] and doc["summary"]["per_type"]["READ"]["ops"] == N

    # The rows are there, with cassandra-stress's schema, for a real driver.
    _, session = clusters.connect(node)
    for i in (1, 2, N // 2, N):
        key = ("%010d" % i).encode()
        row = session.execute('SELECT key, "C0" FROM keyspace1.standard1 WHERE key = %s', (key,)).one()
        assert row is not None, "key %r missing" % key
        assert row.key == key and len(row.C0) == VALUE_SIZE
    assert session.execute('SELECT key FROM keyspace1.standard1 WHERE key = %s', (b"0000009999",)).one() is None
    keys = {r.key for r in session.execute("SELECT key FROM keyspace1.standard1")}
    assert keys == {("%010d" % i).encode() for i in range(1, N + 1)}


def test_mixed_fixed_rate_json(stress_bin, node):
    out, err = run_stress(stress_bin, node, "mixed", "ratio(write=1,read=1)", "n=600", "-rate", "threads=2",
                          "fixed=600/s", "-pop", "dist=ZIPF(1..100)", "--json")
    doc = json.loads(out)
    s = doc["summary"]
    assert s["total_errors"] == 0 and s["total_ops"] == 600
    assert set(s["per_type"]) == {"WRITE", "READ"}
    # A fixed rate of 600/s for 600 operations takes about a second, not less.
    assert s["time_s"] >= 0.8
    assert "Results:" in err  # the text summary moved to stderr
    # Each request is sent at or after its intended start, so timed from the
    # send it can only be quicker.
    for k in ("median", "p99", "max"):
        assert 0 < s["sent_latency_%s_ms" % k] <= s["latency_%s_ms" % k]
    assert "Sent-to-answer 99th" in err


def test_fixed_rate_counts_the_clients_own_lateness(stress_bin, node):
    # One connection with one request in flight cannot keep up with 20000/s
    # (the fixed-rate client sends on 100 us ticks: at most one request per
    # tick on one slot): requests wait in the client for the slot, behind
    # their intended starts. Timed from the intended start (what fixed rate
    # reports, as cassandra-stress does) that wait counts; timed from the
    # send it does not, and the summary shows both.
    out, _ = run_stress(stress_bin, node, "write", "duration=2s", "-rate", "threads=1", "fixed=20000/s",
                        "-conns", "1", "-inflight", "1", "--json")
    s = json.loads(out)["summary"]
    assert s["total_errors"] == 0 and s["total_ops"] > 0
    assert s["op_rate"] < 18000, "one slot answered 20000/s: nothing waited"
    assert s["latency_p99_ms"] > 100
    assert s["latency_p99_ms"] > 10 * s["sent_latency_p99_ms"]


def test_bad_arguments(stress_bin):
    p = subprocess.run([stress_bin, "write"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "n=N or duration=T" in p.stderr
    p = subprocess.run([stress_bin, "write", "n=10", "-pop", "dist=EXP(1..5)"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0 and "unknown distribution" in p.stderr


def test_plot_script_fails_gracefully_or_plots(stress_bin, node, tmp_path):
    log = tmp_path / "w.csv"
    run_stress(stress_bin, node, "write", "n=500", "-log", "file=%s" % log)
    png = tmp_path / "w.png"
    p = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "tools", "plot_stress.py"), str(log), "-o", str(png)],
                       capture_output=True, text=True, timeout=120)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert p.returncode == 2 and "matplotlib" in p.stderr
    else:
        assert p.returncode == 0, p.stderr
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- progress lines and summary as cassandra-stress prints them ------------

HEADER = ("type       total ops,    op/s,    pk/s,   row/s,    mean,     med,     .95,     .99,    .999,     max,"
          "   time,   stderr, errors,  gc: #,  max ms,  sum ms,  sdv ms,      mb")


def progress_rows(out):
    """{type: [row columns...]} of the progress lines under the header."""
    lines = out.splitlines()
    assert HEADER in lines, out
    rows = {}
    for line in lines[lines.index(HEADER) + 1:]:
        if not line.strip() or line.startswith("Results:"):
            break
        cols = [c.strip() for c in line.split(",")]
        assert len(cols) == 19, line
        rows.setdefault(cols[0], []).append(cols[1:])
    return rows


def test_mixed_progress_per_type(stress_bin, node):
    out, _ = run_stress(stress_bin, node, "mixed", "ratio(write=1,read=1)", "duration=2500ms", "-rate",
                        "threads=1", "fixed=400/s", "-pop", "dist=UNIFORM(1..200)")
    rows = progress_rows(out)
    # One line per op type and a total line per interval, types in name order.
    assert set(rows) == {"READ", "WRITE", "total"}, rows
    assert len(rows["READ"]) == len(rows["WRITE"]) == len(rows["total"]) >= 2
    body = [l.split(",")[0] for l in out.splitlines() if l.split(",")[0] in ("READ", "WRITE", "total")]
    assert body[:3] == ["READ", "WRITE", "total"], body
    for r, w, t in zip(rows["READ"], rows["WRITE"], rows["total"]):
        assert int(r[0]) + int(w[0]) == int(t[0])         # cumulative total ops
        assert r[-5:] == w[-5:] == t[-5:] == ["0"] * 5     # no JVM: gc columns are 0
        assert float(t[10]) > 0                             # time
    s = parse_summary(out)
    assert s["Total errors"][0] == 0
    summary = out.split("Results:", 1)[1]
    assert re.search(r"^Op rate +: +[0-9,]+ op/s  \[READ: [0-9,]+ op/s, WRITE: [0-9,]+ op/s\]$", summary, re.M), summary
    assert re.search(r"^Latency 99th percentile   : +[0-9.]+ ms \[READ: [0-9.]+ ms, WRITE: [0-9.]+ ms\]$",
                     summary, re.M), summary
    assert re.search(r"^Total errors +: +0 \[READ: 0, WRITE: 0\]$", summary, re.M), summary
    # Per-type summary counts add up to the total.
    m = re.search(r"^Total partitions +: +([0-9,]+) \[READ: ([0-9,]+), WRITE: ([0-9,]+)\]$", summary, re.M)
    n = [int(g.replace(",", "")) for g in m.groups()]
    assert n[0] == n[1] + n[2] and n[1] > 0 and n[2] > 0


def test_single_type_prints_total_only(stress_bin, node):
    out, _ = run_stress(stress_bin, node, "write", "n=300")
    assert set(progress_rows(out)) == {"total"}
    assert re.search(r"^Op rate +: +[0-9,]+ op/s  \[WRITE: [0-9,]+ op/s\]$", out, re.M), out


# ---- a node restart in the middle of a run -----------------------------------

def run_during(cmd, after_s, action):
    """Runs cmd and, after_s seconds in, action() while it runs: (stdout,
    stderr, seconds from the start to the end of action). cmd must succeed."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(after_s)
        assert p.poll() is None, p.communicate()
        action()
        at = time.monotonic() - t0
        out, err = p.communicate(timeout=STRESS_TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (out, err)
    return out, err, at


def test_restart_reconnects_and_reprepares(stress_bin, node, tmp_path):
    """kill -9 the node mid-run and start it again on the same data and port:
    the tool reconnects, the node answers Unprepared for the statement ids it
    forgot, the tool re-prepares and retries, and the run goes on."""
    threads, conns, inflight = 2, 2, 4
    log = tmp_path / "restart.json"
    cmd = [stress_bin, "mixed", "ratio(write=1,read=1)", "duration=9s", "-rate", "threads=%d" % threads,
           "fixed=300/s", "-conns", str(conns), "-inflight", str(inflight), "-pop", "dist=UNIFORM(1..500)",
           "-log", "file=%s" % log, "-node", node.host, "-port", "native=%d" % node.port]
    out, _, restarted_at = run_during(cmd, 2.5, lambda: node.restart(kill=True))
    s = json.loads(log.read_text())["summary"]
    # Every connection was re-opened, and the statements re-prepared.
    assert s["reconnects"] >= threads * conns, s
    assert s["reprepares"] >= 1, s
    # Only what was in flight when the node died failed.
    assert s["total_errors"] <= threads * conns * inflight, s
    # Operations went on after the node was back.
    after = [iv for iv in json.loads(log.read_text())["intervals"] if iv["time_s"] > restarted_at]
    assert sum(iv["ops"] - iv["errors"] for iv in after) > 0, after
    assert after and after[-1]["ops"] > 0 and after[-1]["errors"] == 0, after
    assert re.search(r"^Total re-prepares +: +[1-9]", out, re.M), out


# ---- user profiles ----------------------------------------------------------

PROFILE = os.path.join(REPO_ROOT, "tools", "stress", "profiles", "timeseries.yaml")
SENSORS = 20          # -pop picks the partitions: sensor indexes 1..SENSORS


def test_user_profile_timeseries(stress_bin, node, clusters, tmp_path):
    # Every partition written twice (seq over 20 partitions, 40 inserts).
    log = tmp_path / "insert.json"
    out, _ = run_stress(stress_bin, node, "user", "profile=%s" % PROFILE, "ops(insert=1)", "n=%d" % (2 * SENSORS),
                        "-pop", "seq=1..%d" % SENSORS, "-rate", "threads=1", "-log", "file=%s" % log)
    s = json.loads(log.read_text())["summary"]
    assert s["total_errors"] == 0 and s["per_type"]["insert"]["ops"] == 2 * SENSORS
    assert s["partitions"] == 2 * SENSORS and s["rows"] == 2 * SENSORS * 10   # 10 readings per partition
    assert re.search(r"^Op rate +: +[0-9,]+ op/s  \[insert: [0-9,]+ op/s\]$", out, re.M), out

    # What the profile defined, as a driver sees it: 20 partitions of 10
    # ordered readings with the table's TTL.
    _, session = clusters.connect(node)
    ttl = session.execute("SELECT default_time_to_live FROM system_schema.tables "
                          "WHERE keyspace_name = 'stress_ts' AND table_name = 'readings'").one()
    assert ttl.default_time_to_live == 86400
    rows = list(session.execute("SELECT sensor, day, ts, value, status, TTL(value) AS t FROM stress_ts.readings"))
    parts = {}
    for r in rows:
        parts.setdefault((r.sensor, r.day), []).append(r)
    assert len(parts) == SENSORS and len(rows) == SENSORS * 10
    for (sensor, day), rs in parts.items():
        assert len(sensor) == 12 and 20000 <= day <= 20006
        ts = [int(r.ts.timestamp() * 1000) for r in rs]
        assert ts == sorted(ts, reverse=True)                        # CLUSTERING ORDER BY (ts DESC)
        assert sorted(ts) == list(range(1700000000000, 1700000000010))  # seq population, one per row
        for r in rs:
            assert 0 < r.t <= 86400 and 1 <= r.value <= 1000 and 2 <= len(r.status) <= 6

    # The queries bind values of rows the inserts wrote, so they find them:
    # latest returns LIMIT 5 rows, reading exactly its one row.
    log = tmp_path / "read.json"
    run_stress(stress_bin, node, "user", "profile=%s" % PROFILE, "ops(latest=1,reading=1)", "n=200",
               "-pop", "dist=uniform(1..%d)" % SENSORS, "-log", "file=%s" % log)
    pt = json.loads(log.read_text())["summary"]["per_type"]
    assert set(pt) == {"latest", "reading"}
    assert pt["latest"]["errors"] == pt["reading"]["errors"] == 0
    assert pt["latest"]["ops"] + pt["reading"]["ops"] == 200
    assert pt["latest"]["rows"] == 5 * pt["latest"]["ops"]
    assert pt["reading"]["rows"] == pt["reading"]["ops"]


BUCKETED = os.path.join(REPO_ROOT, "tools", "stress", "profiles", "timeseries_bucketed.yaml")


def test_user_profile_timeseries_bucketed(stress_bin, node, clusters, tmp_path):
    """The bucketed variant: the INSERT leaves ts_bucket to the node, the
    rows land in their hourly buckets, and the day-long query reads across
    the buckets and finds the newest readings."""
    log = tmp_path / "insert.json"
    run_stress(stress_bin, node, "user", "profile=%s" % BUCKETED, "ops(insert=1)", "n=%d" % SENSORS,
               "-pop", "seq=1..%d" % SENSORS, "-rate", "threads=1", "-log", "file=%s" % log)
    s = json.loads(log.read_text())["summary"]
    assert s["total_errors"] == 0 and s["per_type"]["insert"]["ops"] == SENSORS
    _, session = clusters.connect(node)
    rows = list(session.execute("SELECT sensor, ts_bucket, ts FROM stress_tsb.readings"))
    assert len(rows) == SENSORS * 10
    buckets = set()
    for r in rows:
        ms = int(round(r.ts.timestamp() * 1000))
        b = int(round(r.ts_bucket.timestamp() * 1000))
        assert b == ms - ms % 3600000 and 1700000000000 <= ms < 1700086400000
        buckets.add(b)
    assert len(buckets) > 10  # spread over the day's hours
    log = tmp_path / "read.json"
    run_stress(stress_bin, node, "user", "profile=%s" % BUCKETED, "ops(latest=1,reading=1)", "n=100",
               "-pop", "dist=uniform(1..%d)" % SENSORS, "-log", "file=%s" % log)
    pt = json.loads(log.read_text())["summary"]["per_type"]
    assert pt["latest"]["errors"] == pt["reading"]["errors"] == 0
    assert pt["latest"]["rows"] == 5 * pt["latest"]["ops"]
    assert pt["reading"]["rows"] >= pt["reading"]["ops"]


def test_user_profile_multirow_batches(stress_bin, node, clusters, tmp_path):
    """Several partitions per insert go as one LOGGED batch; a multirow query
    binds each marker from its own row."""
    profile = tmp_path / "p.yaml"
    profile.write_text("""
keyspace: stress_mr
keyspace_definition: |
  CREATE KEYSPACE stress_mr WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}
table: t
table_definition: |
  CREATE TABLE t (k bigint, c int, v blob, PRIMARY KEY (k, c))
columnspec:
  - name: k
    population: uniform(1..50)
  - name: c
    cluster: fixed(4)
    population: uniform(1..1000000)
  - name: v
    size: fixed(16)
insert:
  partitions: fixed(3)
  batchtype: LOGGED
queries:
  two:
    cql: SELECT c FROM t WHERE k = ? AND c IN (?, ?)
    fields: multirow
""")
    log = tmp_path / "ins.json"
    run_stress(stress_bin, node, "user", "profile=%s" % profile, "ops(insert=1)", "n=30", "-log", "file=%s" % log)
    s = json.loads(log.read_text())["summary"]
    assert s["total_errors"] == 0 and s["partitions"] == 90 and s["rows"] == 360
    _, session = clusters.connect(node)
    rows = list(session.execute("SELECT k, c, v FROM stress_mr.t"))
    ks = {r.k for r in rows}
    assert 1 <= min(ks) and max(ks) <= 50
    assert len(rows) == 4 * len(ks) and all(len(r.v) == 16 for r in rows)
    log = tmp_path / "q.json"
    run_stress(stress_bin, node, "user", "profile=%s" % profile, "ops(two=1)", "n=100", "-log", "file=%s" % log)
    q = json.loads(log.read_text())["summary"]["per_type"]["two"]
    # Partitions not written yet answer nothing; a written one answers 1 or 2
    # rows (two random rows of its 4, maybe the same).
    assert q["errors"] == 0 and 0 < q["rows"] <= 2 * q["ops"]


@pytest.mark.parametrize("text,needle", [
    ("keyspace: k\ntable: t\ntoken_range_queries: {}\n", "unsupported profile key 'token_range_queries'"),
    ("keyspace: k\ntable: t\ncolumnspec:\n  - name: a\n    foo: 1\n", "unsupported columnspec key 'foo'"),
    ("keyspace: k\ntable: t\ninsert:\n  batchtype: COUNTER\n", "batchtype must be LOGGED or UNLOGGED, not 'COUNTER'"),
    ("keyspace: k\ntable: t\ncolumnspec:\n  - name: a\n    population: exp(1..9)\n", "unknown distribution 'exp(1..9)'"),
    ("keyspace: k\ntable: t\nqueries:\n  q:\n    cql: SELECT 1\n    fields: allrows\n", "fields must be samerow or multirow"),
    ("table: t\n", "keyspace and table are required"),
])
def test_user_profile_rejects_unsupported(stress_bin, tmp_path, text, needle):
    profile = tmp_path / "bad.yaml"
    profile.write_text(text)
    # No node: the profile is read before anything connects.
    p = subprocess.run([stress_bin, "user", "profile=%s" % profile, "ops(insert=1)", "n=1", "-port", "native=1"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and needle in p.stderr, p.stderr


def test_user_profile_unknown_op(stress_bin, node):
    p = subprocess.run([stress_bin, "user", "profile=%s" % PROFILE, "ops(nosuch=1)", "n=1",
                        "-node", node.host, "-port", "native=%d" % node.port],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "'nosuch' is neither insert nor a query of the profile" in p.stderr, p.stderr


# ---- -mode redis: the same workers against a real redis-server ----

def redis_command(port, *args):
    """One RESP2 command on a fresh connection; the answer as int, bytes,
    None (nil) or str (a simple string)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        req = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            req += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(req)
        buf = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            assert chunk, "redis closed the connection"
            buf += chunk
            if b"\r\n" not in buf:
                continue
            head, rest = buf.split(b"\r\n", 1)
            if head[:1] == b":":
                return int(head[1:])
            if head[:1] == b"+":
                return head[1:].decode()
            if head[:1] == b"$":
                n = int(head[1:])
                if n < 0:
                    return None
                if len(rest) >= n + 2:
                    return rest[:n]
                continue
            raise AssertionError("unexpected answer %r" % buf)
        raise AssertionError("no answer from redis within 10 s")


@contextlib.contextmanager
def redis_server(tmp_path, *extra):
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server not installed (tools/install-deps.sh installs it)")
    port = free_port("127.0.0.1")
    log = tmp_path / "redis.log"
    p = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                          "--dir", str(tmp_path), "--daemonize", "no", "--logfile", str(log), *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert p.poll() is None and time.monotonic() < deadline, \
                    "redis-server did not start: %s" % (log.read_text() if log.exists() else "")
                time.sleep(0.05)
        yield port
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def run_redis_stress(stress_bin, port, *args):
    cmd = [stress_bin, *args, "-mode", "redis", "-node", "127.0.0.1", "-port", "redis=%d" % port]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=STRESS_TIMEOUT)
    assert p.returncode == 0, "%s\nstdout:\n%s\nstderr:\n%s" % (" ".join(cmd), p.stdout, p.stderr)
    return p.stdout, p.stderr


def test_redis_mode_sets_and_gets(stress_bin, tmp_path):
    with redis_server(tmp_path) as port:
        out, _ = run_redis_stress(stress_bin, port, "write", "n=%d" % N, "-rate", "threads=2", "-conns", "2",
                                  "-inflight", "8", "-col", "size=FIXED(%d)" % VALUE_SIZE)
        assert "Redis SET / GET" in out
        check_summary(parse_summary(out), N)
        # Every key cassandra-stress's write names, with a value of the size asked.
        assert redis_command(port, "DBSIZE") == N
        for i in (1, N // 2, N):
            v = redis_command(port, "GET", "%010d" % i)
            assert v is not None and len(v) == VALUE_SIZE, (i, v)
        assert redis_command(port, "GET", "%010d" % (N + 1)) is None

        # Reads over twice the keys written: about half are misses (nil), none an error.
        out, _ = run_redis_stress(stress_bin, port, "read", "n=%d" % N, "-rate", "threads=1", "-conns", "2",
                                  "-inflight", "4", "-pop", "dist=UNIFORM(1..%d)" % (2 * N))
        s = parse_summary(out)
        check_summary(s, N)
        assert 0.3 * N < s["Total partitions missed"][0] < 0.7 * N

        # Fixed rate: 1500/s for 2 s is about 3000 operations and takes 2 s.
        log = tmp_path / "fixed.json"
        run_redis_stress(stress_bin, port, "mixed", "ratio(write=1,read=1)", "duration=2s", "-rate", "threads=2",
                         "fixed=1500/s", "-pop", "dist=UNIFORM(1..%d)" % N, "-log", "file=%s" % log)
        doc = json.loads(log.read_text())["summary"]
        assert doc["total_errors"] == 0
        assert 2700 <= doc["total_ops"] <= 3300 and doc["time_s"] >= 1.9
        assert set(doc["per_type"]) == {"WRITE", "READ"}


def test_redis_mode_counts_server_errors(stress_bin, tmp_path):
    # Past maxmemory (noeviction) Redis answers every SET with -OOM: each is
    # an error of the run, and the last one's text is shown.
    with redis_server(tmp_path, "--maxmemory", "2mb", "--maxmemory-policy", "noeviction") as port:
        out, err = run_redis_stress(stress_bin, port, "write", "n=20000", "-col", "size=FIXED(100)")
        s = parse_summary(out)
        assert 0 < s["Total errors"][0] < 20000
        assert "OOM command not allowed" in err
        assert redis_command(port, "DBSIZE") == 20000 - s["Total errors"][0]


def test_redis_mode_rejects_user_profiles(stress_bin, tmp_path):
    p = subprocess.run([stress_bin, "user", "profile=%s" % (tmp_path / "p.yaml"), "ops(insert=1)", "n=10",
                        "-mode", "redis"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "-mode redis runs write, read and mixed only" in p.stderr


def test_redis_mode_connect_refused_names_the_reason(stress_bin):
    # Nothing listens on the port: the run fails and says why, even though
    # the reporter had already taken the worker's error for its progress line.
    port = free_port("127.0.0.1")
    p = subprocess.run([stress_bin, "write", "n=10", "-mode", "redis", "-node", "127.0.0.1",
                        "-port", "redis=%d" % port], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "Connection refused (127.0.0.1:%d)" % port in p.stderr, p.stderr


# ---- several nodes: token-aware routing -------------------------------------
#
# Two sibyld processes on 127.0.0.1 and 127.0.0.2 that do not know each other
# (no gossip): each holds whatever it is sent. Given both as -node, sibyl-stress
# builds the ring from both nodes' system.local, so every row must land on the
# node owning its token, and nowhere else.

STANDARD1_DDL = (
    "CREATE KEYSPACE IF NOT EXISTS keyspace1 WITH replication = "
    "{'class': 'SimpleStrategy', 'replication_factor': 1} AND durable_writes = true",
    'CREATE TABLE IF NOT EXISTS keyspace1.standard1 (key blob PRIMARY KEY, "C0" blob)',
)


def two_nodes(make_node, clusters, *ddl):
    """Two unrelated nodes, the same schema on each (what a cluster's schema
    agreement would give); [(node, session, tokens)]."""
    out = []
    for host in ("127.0.0.1", "127.0.0.2"):
        n = make_node(host=host)
        _, session = clusters.connect(n)
        for stmt in ddl:
            session.execute(stmt)
        tokens = sorted(int(t) for t in session.execute("SELECT tokens FROM system.local").one().tokens)
        assert tokens
        out.append((n, session, tokens))
    return out


def owner_of(token, nodes):
    """Index of the node owning the first ring token >= token (wrapping)."""
    ring = sorted((t, i) for i, (_, _, toks) in enumerate(nodes) for t in toks)
    for t, i in ring:
        if t >= token:
            return i
    return ring[0][1]


def node_arg(nodes):
    return ",".join("%s:%d" % (n.host, n.port) for n, _, _ in nodes)


def run_cmd(cmd, timeout=STRESS_TIMEOUT):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, "%s\nstdout:\n%s\nstderr:\n%s" % (" ".join(cmd), p.stdout, p.stderr)
    return p.stdout, p.stderr


def test_token_aware_write_and_read_two_nodes(stress_bin, make_node, clusters, tmp_path):
    from cassandra.metadata import Murmur3Token
    nodes = two_nodes(make_node, clusters, *STANDARD1_DDL)
    names = ["%s:%d" % (n.host, n.port) for n, _, _ in nodes]
    log = tmp_path / "w.json"
    out, _ = run_cmd([stress_bin, "write", "n=%d" % N, "-rate", "threads=2", "-conns", "2", "-inflight", "8",
                      "-node", node_arg(nodes), "-log", "file=%s" % log])
    assert "token-aware routing" in out
    doc = json.loads(log.read_text())["summary"]
    assert doc["token_aware"] is True
    assert doc["total_errors"] == 0 and doc["total_ops"] == N
    per_node = doc["per_node"]
    assert set(per_node) == set(names), per_node
    assert re.search(r"^Operations per node +: \[%s: [0-9,]+, %s: [0-9,]+\]$" % (re.escape(names[0]), re.escape(names[1])),
                     out, re.M), out

    held = []
    for i, (n, session, _) in enumerate(nodes):
        rows = list(session.execute("SELECT key, token(key) AS t FROM keyspace1.standard1"))
        for r in rows:
            assert r.t == Murmur3Token.hash_fn(r.key)           # the server's token() is Murmur3
            assert owner_of(r.t, nodes) == i, "key %r (token %d) on the wrong node %s" % (r.key, r.t, names[i])
        held.append({r.key for r in rows})
        assert per_node[names[i]]["ops"] == len(rows), (names[i], per_node, len(rows))
        assert per_node[names[i]]["errors"] == 0
        assert per_node[names[i]]["tokens"] == len(nodes[i][2])
    # Every key once, on exactly one node, and both nodes got a share.
    assert not (held[0] & held[1])
    assert held[0] | held[1] == {("%010d" % i).encode() for i in range(1, N + 1)}
    assert held[0] and held[1]

    # Reads of the same keys go where they were written: no misses.
    log = tmp_path / "r.json"
    run_cmd([stress_bin, "read", "n=%d" % N, "-rate", "threads=2", "-conns", "2", "-inflight", "4",
             "-pop", "dist=UNIFORM(1..%d)" % N, "-node", node_arg(nodes), "-log", "file=%s" % log])
    doc = json.loads(log.read_text())["summary"]
    assert doc["total_errors"] == 0 and doc["total_misses"] == 0 and doc["total_ops"] == N
    assert sum(v["ops"] for v in doc["per_node"].values()) == N
    assert all(v["ops"] > 0 for v in doc["per_node"].values())


def test_token_aware_fixed_rate_and_composite_keys(stress_bin, make_node, clusters, tmp_path):
    """A user profile with a two-column partition key ((sensor, day)): the
    routing key is the CompositeType form the server hashes; in fixed-rate
    mode too."""
    from cassandra.metadata import Murmur3Token
    ddl = ("CREATE KEYSPACE IF NOT EXISTS stress_ts WITH replication = "
           "{'class': 'SimpleStrategy', 'replication_factor': 1}",
           "CREATE TABLE IF NOT EXISTS stress_ts.readings (sensor text, day int, ts timestamp, value double, "
           "status text, PRIMARY KEY ((sensor, day), ts)) WITH CLUSTERING ORDER BY (ts DESC) "
           "AND default_time_to_live = 86400")
    nodes = two_nodes(make_node, clusters, *ddl)
    log = tmp_path / "ts.json"
    run_cmd([stress_bin, "user", "profile=%s" % PROFILE, "ops(insert=1)", "n=200", "-pop", "seq=1..200",
             "-rate", "threads=2", "fixed=400/s", "-node", node_arg(nodes), "-log", "file=%s" % log])
    doc = json.loads(log.read_text())["summary"]
    assert doc["total_errors"] == 0 and doc["partitions"] == 200
    parts = []
    for i, (n, session, _) in enumerate(nodes):
        got = {(r.sensor, r.day, r.t) for r in
               session.execute("SELECT sensor, day, token(sensor, day) AS t FROM stress_ts.readings")}
        for sensor, day, t in got:
            key = b"".join(struct.pack(">H", len(c)) + c + b"\0" for c in (sensor.encode(), struct.pack(">i", day)))
            assert t == Murmur3Token.hash_fn(key)                  # CompositeType, as routed
            assert owner_of(t, nodes) == i, "partition %r on the wrong node" % ((sensor, day),)
        assert doc["per_node"]["%s:%d" % (n.host, n.port)]["ops"] == len(got)
        parts.append({(s, d) for s, d, _ in got})
    assert not (parts[0] & parts[1]) and len(parts[0] | parts[1]) == 200
    assert parts[0] and parts[1]

    # The profile's queries are routed by their prepared partition key
    # (sensor = ? AND day = ?): each finds the partition on the node it
    # asks, so `reading` reads its one row and `latest` five, every time.
    log = tmp_path / "q.json"
    run_cmd([stress_bin, "user", "profile=%s" % PROFILE, "ops(latest=1,reading=1)", "n=300",
             "-pop", "dist=uniform(1..200)", "-node", node_arg(nodes), "-log", "file=%s" % log])
    doc = json.loads(log.read_text())["summary"]
    pt = doc["per_type"]
    assert doc["total_errors"] == 0 and pt["latest"]["ops"] + pt["reading"]["ops"] == 300
    assert pt["reading"]["rows"] == pt["reading"]["ops"]
    assert pt["latest"]["rows"] == 5 * pt["latest"]["ops"]
    assert all(v["ops"] > 0 for v in doc["per_node"].values())


def test_token_aware_node_down_mid_run(stress_bin, make_node, clusters, tmp_path):
    """One of two nodes dies in the middle of a run: its requests are
    errors, the other node's go on, and the run ends on time."""
    nodes = two_nodes(make_node, clusters, *STANDARD1_DDL)
    log = tmp_path / "down.json"
    cmd = [stress_bin, "write", "duration=5s", "-rate", "threads=2", "fixed=400/s", "-conns", "2",
           "-pop", "dist=UNIFORM(1..1000)", "-node", node_arg(nodes), "-log", "file=%s" % log]
    t0 = time.monotonic()
    _, err, _ = run_during(cmd, 2, nodes[1][0].kill9)
    assert time.monotonic() - t0 < 60
    doc = json.loads(log.read_text())["summary"]
    a, b = ("%s:%d" % (n.host, n.port) for n, _, _ in nodes)
    assert doc["per_node"][a]["errors"] == 0 and doc["per_node"][a]["ops"] > 0
    assert doc["per_node"][b]["errors"] > 0
    assert doc["total_errors"] == doc["per_node"][b]["errors"]
    assert "is down" in err or "refused" in err.lower(), err


def test_token_aware_node_without_the_table(stress_bin, make_node, clusters):
    # The second node has no keyspace1: preparing there fails, and
    # the error names the node.
    nodes = two_nodes(make_node, clusters)
    p = subprocess.run([stress_bin, "write", "n=100", "-node", node_arg(nodes)], capture_output=True, text=True,
                       timeout=STRESS_TIMEOUT)
    assert p.returncode != 0
    assert "%s:%d: " % (nodes[1][0].host, nodes[1][0].port) in p.stderr and "keyspace1" in p.stderr, p.stderr


def test_node_list_parsing(stress_bin):
    # host:port per contact point; a bad port is refused before connecting.
    p = subprocess.run([stress_bin, "write", "n=1", "-node", "127.0.0.1:0"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0 and "bad port in node '0'" in p.stderr, p.stderr
    p = subprocess.run([stress_bin, "write", "n=1", "-node", "[::1"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "bad node" in p.stderr, p.stderr
    # No contact point reachable: the run fails naming each one.
    ports = [free_port("127.0.0.1"), free_port("127.0.0.1")]
    p = subprocess.run([stress_bin, "write", "n=1", "-node", "127.0.0.1:%d,127.0.0.1:%d" % tuple(ports)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    for port in ports:
        assert "contact point 127.0.0.1:%d" % port in p.stderr, p.stderr
    # An IPv6 literal, with its port in brackets or bare (then -port's).
    p = subprocess.run([stress_bin, "write", "n=1", "-node", "[::1]:%d,::1" % ports[0], "-port", "native=%d" % ports[1]],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "contact point [::1]:%d" % ports[0] in p.stderr and "contact point [::1]:%d" % ports[1] in p.stderr, p.stderr
