"""Damaged SSTables at start (issue 13 section 4): disk_failure_policy.

stop (the default) refuses to start and names the file; best_effort moves the
damaged SSTable to <table dir>/quarantine/, starts, logs at ERROR and marks the
table in /metrics and sibyltool tablestats; ignore starts without it and
leaves its files where they are."""

import glob
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from sibyl_harness import NodeError, flush

KS = "dmg"


def connect(clusters, node):
    return clusters.connect(node, protocol_version=4)


def metrics(node):
    with urllib.request.urlopen("http://%s:%d/metrics" % (node.host, node.admin_port), timeout=10) as r:
        return r.read().decode()


def sibyltool(node, *args):
    build = os.path.dirname(os.path.dirname(os.path.abspath(node.binary)))
    p = subprocess.run([os.path.join(build, "tools", "sibyltool"), "-h", node.host, "-p", str(node.admin_port)]
                       + list(args), capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    return p.stdout


def make_table(s):
    """Creates dmg.t; (its id, a prepared INSERT)."""
    s.execute("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}" % KS)
    s.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v text)" % KS)
    tid = s.execute("SELECT id FROM system_schema.tables WHERE keyspace_name = %s AND table_name = 't'", (KS,)).one().id
    return tid, s.prepare("INSERT INTO %s.t (k, v) VALUES (?, ?)" % KS)


def two_sstables(make_node, clusters, **config):
    """A table with two SSTables: keys 0..99 in the first, 100..199 in the
    second. Returns (node, table folder, Data.db of the second)."""
    node = make_node(**config)
    c, s = connect(clusters, node)
    tid, ins = make_table(s)
    for lo in (0, 100):
        for k in range(lo, lo + 100):
            s.execute(ins, (k, "v%d" % k))
        flush(node)
    c.shutdown()
    node.stop()
    d = os.path.join(node.datadir, KS, "t-" + tid.hex)
    datas = sorted(glob.glob(os.path.join(d, "*-Data.db")), key=lambda p: int(os.path.basename(p).split("-")[0]))
    assert len(datas) == 2, datas
    return node, d, datas[1]


def truncate_half(path):
    os.truncate(path, os.path.getsize(path) // 2)


def rows(clusters, node):
    c, s = connect(clusters, node)
    out = {r.k: r.v for r in s.execute("SELECT k, v FROM %s.t" % KS)}
    c.shutdown()
    return out


def test_stop_refuses_and_names_the_file(make_node, clusters):
    node, d, data = two_sstables(make_node, clusters)
    truncate_half(data)
    with pytest.raises(NodeError) as e:
        node.start(timeout=30)
    msg = str(e.value)
    assert os.path.basename(data) in msg and "disk_failure_policy is stop" in msg, msg
    assert os.path.exists(data), "stop changes nothing on disk"


@pytest.mark.parametrize("damage", ["Data.db truncated", "Index.db missing"])
def test_best_effort_quarantines(make_node, clusters, damage):
    node, d, data = two_sstables(make_node, clusters, disk_failure_policy="best_effort")
    gen = os.path.basename(data).split("-")[0]
    if damage == "Data.db truncated":
        truncate_half(data)                      # the footer is gone
    else:
        os.unlink(os.path.join(d, gen + "-Index.db"))
    node.start()
    assert not glob.glob(os.path.join(d, gen + "-*")), "the damaged SSTable left the table folder"
    q = sorted(os.path.basename(p) for p in glob.glob(os.path.join(d, "quarantine", gen + "-*")))
    assert gen + "-TOC.txt" in q and gen + "-Statistics.db" in q and gen + "-Data.db" in q, q
    log = node.log_text(node.logs[-1])
    assert "ERROR" in log and "quarantine" in log and "tombstones deleted can come back" in log
    got = rows(clusters, node)
    assert all(got.get(k) == "v%d" % k for k in range(100)), "the intact SSTable is served"
    m = metrics(node)
    assert 'sibyl_table_sstables_damaged{keyspace="%s",table="t"} 1' % KS in m
    out = sibyltool(node, "tablestats", KS)
    assert "Damaged SSTables (set aside at start / suspect): 1 / 0" in out, out
    # the next start does not meet it again
    node.restart()
    assert "quarantine" not in node.log_text(node.logs[-1])
    got = rows(clusters, node)
    assert all(got.get(k) == "v%d" % k for k in range(100))


def test_ignore_starts_and_leaves_the_files(make_node, clusters):
    node, d, data = two_sstables(make_node, clusters, disk_failure_policy="ignore")
    truncate_half(data)
    size = os.path.getsize(data)
    node.start()
    assert os.path.getsize(data) == size and not os.path.isdir(os.path.join(d, "quarantine"))
    assert "disk_failure_policy ignore" in node.log_text(node.logs[-1])
    got = rows(clusters, node)
    assert all(got.get(k) == "v%d" % k for k in range(100))
    assert 'sibyl_table_sstables_damaged{keyspace="%s",table="t"} 1' % KS in metrics(node)


def post(node, path):
    req = urllib.request.Request("http://%s:%d%s" % (node.host, node.admin_port, path), method="POST", data=b"")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_damaged_block_met_by_compaction_is_suspect(make_node, clusters):
    """A bad block inside a Data.db passes the checks at open and is met by a
    compaction: that SSTable is marked suspect (left out of compaction,
    counted, named in the log once), not retried every few seconds."""
    node = make_node()
    c, s = connect(clusters, node)
    tid, ins = make_table(s)
    for lo in (0, 2000):
        for k in range(lo, lo + 2000):
            s.execute(ins, (k, "value-%d-%s" % (k, os.urandom(40).hex())))
        flush(node)
    c.shutdown()
    node.stop()
    d = os.path.join(node.datadir, KS, "t-" + tid.hex)
    data = max(glob.glob(os.path.join(d, "*-Data.db")), key=os.path.getsize)
    with open(data, "r+b") as f:                  # a byte in the middle: a data block, not the footer
        f.seek(os.path.getsize(data) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x55]))
    node.start()
    for _ in range(3):                            # major compactions asked again and again
        post(node, "/compact/%s/t" % KS)
        for _ in range(200):                      # bounded: 10 s
            if 'sibyl_table_sstables_suspect{keyspace="%s",table="t"} 1' % KS in metrics(node):
                break
            time.sleep(0.05)
    m = metrics(node)
    assert 'sibyl_table_sstables_suspect{keyspace="%s",table="t"} 1' % KS in m
    time.sleep(3)                                 # the old code retried every few seconds: give it time to show
    log = node.log_text(node.logs[-1])
    assert log.count("will not be compacted again") == 1, log[-3000:]
    assert os.path.basename(data) in log
    out = sibyltool(node, "tablestats", KS)
    assert "Damaged SSTables (set aside at start / suspect): 0 / 1" in out, out
    assert os.path.exists(data), "a suspect SSTable stays in place"


@pytest.mark.parametrize("component", ["Statistics.db", "Filter.db"])
def test_damaged_derived_component_is_rebuilt(make_node, clusters, component):
    """A truncated Statistics.db or Filter.db is rebuilt from Data.db and
    Index.db (the SSTable is rewritten as a new generation, level 0,
    commitlog position 0) instead of refusing to start, under the default
    policy; the original is kept in snapshots/rebuilt-<ms>/."""
    node, d, data = two_sstables(make_node, clusters)
    gen = os.path.basename(data).split("-")[0]
    truncate_half(os.path.join(d, "%s-%s" % (gen, component)))
    node.start()
    log = node.log_text(node.logs[-1])
    assert "rebuilt from Data.db and Index.db" in log, log[-2000:]
    assert not glob.glob(os.path.join(d, gen + "-*")), "the original left the live set"
    kept = glob.glob(os.path.join(d, "snapshots", "rebuilt-*", gen + "-" + component))
    assert kept, "the original is kept"
    got = rows(clusters, node)
    assert got == {k: "v%d" % k for k in range(200)}
    assert 'sibyl_table_sstables_damaged{keyspace="%s",table="t"} 0' % KS in metrics(node)
    node.restart()                                # the rebuilt SSTable opens as any other
    assert "rebuilt" not in node.log_text(node.logs[-1])
    assert rows(clusters, node) == {k: "v%d" % k for k in range(200)}


def tool_bin(node, name):
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(node.binary))), "tools", name)


def test_scrub_keeps_readable_rows_and_the_original(make_node, clusters):
    """sibyl-scrub (offline) rewrites an SSTable with a damaged block:
    every readable row is kept, what was dropped is reported, the original
    stays in snapshots/pre-scrub-<ms>/, and the node then serves and
    compacts the table without meeting the damage."""
    node = make_node()
    c, s = connect(clusters, node)
    tid, ins = make_table(s)
    n = 3000
    for k in range(n):
        s.execute(ins, (k, "value-%d-%s" % (k, os.urandom(40).hex())))
    flush(node)
    c.shutdown()
    node.stop()
    d = os.path.join(node.datadir, KS, "t-" + tid.hex)
    [data] = glob.glob(os.path.join(d, "*-Data.db"))
    with open(data, "r+b") as f:
        f.seek(os.path.getsize(data) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x55]))
    original = open(data, "rb").read()
    dry = subprocess.run([tool_bin(node, "sibyl-scrub"), "-n", d], capture_output=True, text=True, timeout=60)
    assert dry.returncode == 1 and "DAMAGED" in dry.stdout, dry.stdout + dry.stderr
    assert open(data, "rb").read() == original, "-n changes nothing"
    p = subprocess.run([tool_bin(node, "sibyl-scrub"), d], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "SCRUBBED" in p.stdout, p.stdout + p.stderr
    m = re.search(r"(\d+) partitions, (\d+) rows kept; (\d+) partitions dropped, (\d+) cut short, (\d+) index pages", p.stdout)
    kept, dropped = int(m.group(1)), int(m.group(3)) + int(m.group(4))
    assert 0 < kept < n and kept + dropped <= n, p.stdout
    snap = glob.glob(os.path.join(d, "snapshots", "pre-scrub-*", os.path.basename(data)))
    assert snap and open(snap[0], "rb").read() == original, "the original is kept whole"
    assert not os.path.exists(data), "the damaged SSTable left the live set"
    again = subprocess.run([tool_bin(node, "sibyl-scrub"), d], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "OK" in again.stdout, again.stdout + again.stderr
    node.start()
    got = rows(clusters, node)
    # the rewrite claims no commitlog position: replay restores what the
    # commitlog still holds on top of the rows the scrub kept
    assert kept <= len(got) <= n and all(v.startswith("value-%d-" % k) for k, v in got.items())
    assert post(node, "/compact/%s/t" % KS) == 200
    assert 'sibyl_table_sstables_suspect{keyspace="%s",table="t"} 0' % KS in metrics(node)
