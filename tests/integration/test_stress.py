"""sibyl-stress against a real node: the summary reads like cassandra-stress's,
nothing fails, and what it wrote is there for a real driver to read.

The binary is $SIBYL_STRESS, else tools/sibyl-stress next to $SIBYL_BIN's
build directory, else the first of build-asan, build, build-client.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from sibyl_harness import REPO_ROOT

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


def test_bad_arguments(stress_bin):
    p = subprocess.run([stress_bin, "write"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "n=N or duration=T" in p.stderr
    p = subprocess.run([stress_bin, "write", "n=10", "-pop", "dist=GAUSS(1..5)"], capture_output=True,
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
