"""Compaction through the Python driver: every row read back after flushes,
deletes, TTLs and compactions per strategy; a live switch STCS -> LCS -> STCS;
a kill -9 at each failpoint of a compaction with several outputs (restart:
no row lost, none resurrected); and an SSTable whose TOC.txt was lost is kept
(issue 13: the start-up sweep used to delete it).

The failpoint tests need a build with failpoints (the sanitizer build has
them); with another build they are skipped."""

import glob
import json
import os
import time
import urllib.error
import urllib.request

import pytest

from cassandra.concurrent import execute_concurrent_with_args

from sibyl_harness import flush

KS = "cs"
RF1 = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
LCS_1MB = "{'class': 'LeveledCompactionStrategy', 'sstable_size_in_mb': '1'}"


def http(node, path, method="GET"):
    req = urllib.request.Request("http://%s:%d%s" % (node.host, node.admin_port, path), method=method,
                                 data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.read().decode()


def table_dir(node, s, table):
    row = s.execute("SELECT id FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
                    (KS, table)).one()
    return os.path.join(node.datadir, KS, table + "-" + row.id.hex)


def live_gens(d):
    return sorted(int(os.path.basename(p).split("-")[0]) for p in glob.glob(os.path.join(d, "*-TOC.txt")))


def wait_compactions(node):
    for _ in range(1200):                                    # bounded: 60 s
        if json.loads(http(node, "/compactionstats")[1])["pending_tasks"] == 0:
            return
        time.sleep(0.05)
    raise AssertionError("compactions did not finish")


def flush_table(node, table):
    """Flushes one table and waits (bounded) until the flush is live."""
    http(node, "/flush/%s/%s" % (KS, table), method="POST")
    for _ in range(600):                                     # bounded: 30 s
        if json.loads(http(node, "/info")[1])["flushes_pending"] == 0:
            return
        time.sleep(0.05)
    raise AssertionError("flush did not finish")


class Workload:
    """Rows (k, c) with incompressible values over several flushes, with
    partition and row deletes and short TTLs; `want` is what must read back."""

    def __init__(self, s, table, parts=40, rows=10, width=2000):
        self.s, self.table, self.parts, self.rows, self.width = s, table, parts, rows, width
        self.want = set()

    def write(self, node, flushes=4, ttl_every=5):
        ins = self.s.prepare("INSERT INTO %s.%s (k, c, v) VALUES (?, ?, ?)" % (KS, self.table))
        ins_ttl = self.s.prepare("INSERT INTO %s.%s (k, c, v) VALUES (?, ?, ?) USING TTL 2" % (KS, self.table))
        per = self.parts // flushes
        for f in range(flushes):
            keys = [(k, c) for k in range(f * per, (f + 1) * per) for c in range(self.rows)]
            plain = [(k, c, os.urandom(self.width // 2).hex()) for k, c in keys if c % ttl_every]
            ttl = [(k, c, os.urandom(self.width // 2).hex()) for k, c in keys if not c % ttl_every]
            execute_concurrent_with_args(self.s, ins, plain, concurrency=32, raise_on_first_error=True)
            execute_concurrent_with_args(self.s, ins_ttl, ttl, concurrency=32, raise_on_first_error=True)
            self.want |= {(k, c) for k, c, _ in plain}
            # deletes of data flushed earlier: the tombstones land in newer SSTables
            if f:
                k = (f - 1) * per
                self.s.execute("DELETE FROM %s.%s WHERE k = %d" % (KS, self.table, k))
                self.s.execute("DELETE FROM %s.%s WHERE k = %d AND c = 1" % (KS, self.table, k + 1))
                self.want -= {(k, c) for c in range(self.rows)} | {(k + 1, 1)}
            flush_table(node, self.table)
        time.sleep(2.2)                                      # the TTL'd rows expire

    def check(self):
        got = {(r.k, r.c) for r in self.s.execute("SELECT k, c FROM %s.%s" % (KS, self.table))}
        lost, back = self.want - got, got - self.want
        assert not lost and not back, "lost %d rows (%s...), resurrected %d (%s...)" % (
            len(lost), sorted(lost)[:5], len(back), sorted(back)[:5])


def sibyltool(node, *args):
    import subprocess
    from test_admin import sibyltool_bin
    return subprocess.run([sibyltool_bin(node), "-h", node.host, "-p", str(node.admin_port)] + list(args),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def tablestats(node, table="t"):
    p = sibyltool(node, "tablestats", "%s.%s" % (KS, table))
    assert p.returncode == 0, p.stderr
    return p.stdout


def make_table(s, table, compaction, gc_grace=0):
    s.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s" % (KS, RF1))
    s.execute("CREATE TABLE %s.%s (k int, c int, v text, PRIMARY KEY (k, c)) WITH gc_grace_seconds = %d "
              "AND compaction = %s" % (KS, table, gc_grace, compaction))


def kill_and_reconnect(node, clusters, cl, w):
    """kill -9 and restart the node; w reads through the new session. Returns (cl, s)."""
    cl.shutdown()
    node.restart(kill=True)
    cl, s = clusters.connect(node)
    w.s = s
    return cl, s


def major(node, table):
    http(node, "/compact/%s/%s" % (KS, table), method="POST")
    wait_compactions(node)


# ---- per strategy: every row back after flushes, deletes, TTLs, compactions ----

@pytest.mark.parametrize("compaction", [
    "{'class': 'SizeTieredCompactionStrategy', 'min_threshold': '2'}",
    LCS_1MB,
    "{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'MINUTES', 'compaction_window_size': '1', "
    "'min_threshold': '2'}",
])
def test_strategy_workload_reads_everything_back(make_node, clusters, compaction):
    node = make_node()
    cl, s = clusters.connect(node)
    make_table(s, "t", compaction)
    w = Workload(s, "t")
    w.write(node)
    wait_compactions(node)
    w.check()
    major(node, "t")
    w.check()
    cl, s = kill_and_reconnect(node, clusters, cl, w)
    w.check()


def test_multi_output_compaction_splits_by_sstable_size(make_node, clusters):
    node = make_node()
    cl, s = clusters.connect(node)
    make_table(s, "t", LCS_1MB)
    w = Workload(s, "t", parts=120, rows=12)                # ~2.9 MB of values
    w.write(node, flushes=3)
    major(node, "t")
    w.check()
    d = table_dir(node, s, "t")
    sizes = [os.path.getsize(p) for p in glob.glob(os.path.join(d, "*-Data.db"))]
    assert len(sizes) >= 2, sizes
    # split at a partition boundary once past 1 MiB: no output is much larger
    assert max(sizes) < 1.5 * (1 << 20), sizes


def test_live_switch_stcs_lcs_stcs(make_node, clusters):
    node = make_node()
    cl, s = clusters.connect(node)
    make_table(s, "t", "{'class': 'SizeTieredCompactionStrategy'}")
    w = Workload(s, "t", parts=120, rows=12)
    w.write(node, flushes=3)
    s.execute("ALTER TABLE %s.t WITH compaction = %s" % (KS, LCS_1MB))
    meta = s.execute("SELECT compaction FROM system_schema.tables WHERE keyspace_name = %s AND table_name = 't'",
                     (KS,)).one()
    assert "LeveledCompactionStrategy" in meta.compaction["class"]
    major(node, "t")
    w.check()
    split = len(glob.glob(os.path.join(table_dir(node, s, "t"), "*-Data.db")))
    assert split >= 2
    # the major's split outputs cannot overlap: they go to L1
    out = tablestats(node)
    assert "\t\tSSTables in each level: [0, %d, 0, 0, 0, 0, 0, 0, 0]\n" % split in out, out
    s.execute("ALTER TABLE %s.t WITH compaction = {'class': 'SizeTieredCompactionStrategy'}" % KS)
    major(node, "t")
    w.check()
    assert len(glob.glob(os.path.join(table_dir(node, s, "t"), "*-Data.db"))) == 1
    assert "SSTables in each level" not in tablestats(node)
    with pytest.raises(Exception) as e:
        s.execute("ALTER TABLE %s.t WITH compaction = {'class': 'SizeTieredCompactionStrategy', "
                  "'sstable_size_in_mb': '5'}" % KS)
    assert "not understood" in str(e.value)
    w.check()


# ---- kill -9 at each failpoint of a compaction with several outputs ----

FAILPOINTS = [
    "compaction.after_txn_begin",
    "compaction.after_output_1",
    "compaction.after_output_2",
    "compaction.after_outputs_before_txn_commit",
    "compaction.after_commit_before_input_delete",
    "compaction.after_input_delete_before_log_delete",
]


def start_with_failpoint(make_node, point):
    """A node whose failpoint `point` kills it (skips without failpoints)."""
    node = make_node(start=False)
    node.env["SIBYL_FAILPOINTS"] = "%s=kill" % point
    node.start()
    if "failpoints armed" not in node.log_text():
        node.stop()
        pytest.skip("sibyld built without failpoints (SIB_FAILPOINTS)")
    return node


def restart_after_kill(node, cl, point):
    """Waits (bounded) until the failpoint killed the node, then restarts it
    without failpoints."""
    for _ in range(600):                                 # bounded: 60 s
        if not node.running():
            break
        time.sleep(0.1)
    assert not node.running(), "the failpoint did not stop the node"
    assert "failpoint %s: kill" % point in node.log_text()
    node.expected_exit = True
    cl.shutdown()
    node.env.pop("SIBYL_FAILPOINTS")
    node.restart()


@pytest.mark.parametrize("point", FAILPOINTS)
def test_kill_at_compaction_failpoint(make_node, clusters, point):
    node = start_with_failpoint(make_node, point)
    cl, s = clusters.connect(node)
    # autocompaction off: only the major compaction below reaches the point
    make_table(s, "t", "{'class': 'LeveledCompactionStrategy', 'sstable_size_in_mb': '1', 'enabled': 'false'}")
    w = Workload(s, "t", parts=160, rows=12)                # ~2.5 MB live: 3 outputs
    w.write(node, flushes=3)
    d = table_dir(node, s, "t")
    inputs = live_gens(d)
    assert len(inputs) == 3
    try:
        http(node, "/compact/%s/t" % KS, method="POST")
    except (urllib.error.URLError, ConnectionError, OSError):
        pass                                             # the node died under the request
    restart_after_kill(node, cl, point)
    assert not glob.glob(os.path.join(d, "*-txn.log")) and not glob.glob(os.path.join(d, "*.tmp"))
    gens = live_gens(d)
    if point in ("compaction.after_commit_before_input_delete", "compaction.after_input_delete_before_log_delete"):
        assert not set(gens) & set(inputs) and len(gens) >= 2, gens   # rolled forward: the outputs only
    else:
        assert gens == inputs, gens                                   # rolled back: the inputs only
    cl, s = clusters.connect(node)
    w.s = s
    w.check()
    major(node, "t")                                     # and a compaction after recovery loses nothing
    w.check()


# ---- issue 13: a lost TOC.txt must not lose acknowledged rows ----

def test_missing_toc_keeps_intact_sstable(make_node, clusters):
    node = make_node()
    cl, s = clusters.connect(node)
    make_table(s, "t", "{'class': 'SizeTieredCompactionStrategy', 'enabled': 'false'}", gc_grace=864000)
    ins = s.prepare("INSERT INTO %s.t (k, c, v) VALUES (?, ?, ?)" % KS)
    execute_concurrent_with_args(s, ins, [(k, 0, "v%d" % k) for k in range(10000)], concurrency=64,
                                 raise_on_first_error=True)
    flush(node)
    d = table_dir(node, s, "t")
    first = live_gens(d)
    assert len(first) == 1
    # a newer SSTable covers the commitlog range: replay will not bring the
    # first one's rows back
    s.execute("INSERT INTO %s.t (k, c, v) VALUES (10000, 0, 'newer')" % KS)
    flush(node)
    cl.shutdown()
    node.stop()
    os.unlink(os.path.join(d, "%d-TOC.txt" % first[0]))
    node.start()
    cl, s = clusters.connect(node)
    rows = {r.k for r in s.execute("SELECT k FROM %s.t" % KS)}
    lost = set(range(10001)) - rows
    assert len(lost) == 0, "%d acknowledged rows lost" % len(lost)
    assert os.path.exists(os.path.join(d, "%d-TOC.txt" % first[0]))
    assert "TOC.txt was missing" in node.log_text() and "WARN" in node.log_text()


# ---- SSTables per read: /metrics histogram and sibyltool tablestats ----

def test_sstables_per_read_histogram(make_node, clusters):
    node = make_node()
    cl, s = clusters.connect(node)
    make_table(s, "t", "{'class': 'SizeTieredCompactionStrategy', 'enabled': 'false'}", gc_grace=864000)
    ins = s.prepare("INSERT INTO %s.t (k, c, v) VALUES (?, ?, ?)" % KS)
    for f in range(3):                                   # key 0 in three SSTables, key f+1 in one
        s.execute(ins, (0, f, "x"))
        s.execute(ins, (f + 1, 0, "y"))
        flush_table(node, "t")
    sel = s.prepare("SELECT c FROM %s.t WHERE k = ?" % KS)
    assert len(list(s.execute(sel, (0,)))) == 3
    for k in (1, 2, 3):
        assert len(list(s.execute(sel, (k,)))) == 1
    assert list(s.execute(sel, (99,))) == []             # absent: no SSTable opened
    text = http(node, "/metrics")[1]
    lab = 'keyspace="%s",table="t"' % KS
    series = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line.startswith("sibyl_table_sstables_per_read") and lab in line}
    assert series['sibyl_table_sstables_per_read_count{%s}' % lab] == 5
    assert series['sibyl_table_sstables_per_read_sum{%s}' % lab] == 6
    assert series['sibyl_table_sstables_per_read_bucket{%s,le="0"}' % lab] == 1
    assert series['sibyl_table_sstables_per_read_bucket{%s,le="1"}' % lab] == 4
    assert series['sibyl_table_sstables_per_read_bucket{%s,le="3"}' % lab] == 5
    assert series['sibyl_table_sstables_per_read_bucket{%s,le="+Inf"}' % lab] == 5
    out = tablestats(node)
    assert "\t\tSSTables per read (mean / p99 / max): 1.20 / 3 / 3\n" in out, out


def test_lcs_levels_and_reads_after_flushes(make_node, clusters):
    node = make_node()
    cl, s = clusters.connect(node)
    make_table(s, "t", LCS_1MB)
    w = Workload(s, "t", parts=144, rows=12)               # ~2.5 MB live over 6 flushes
    w.write(node, flushes=6)
    wait_compactions(node)
    w.check()

    def levels():
        line = [x for x in tablestats(node).splitlines() if "SSTables in each level" in x]
        assert line, tablestats(node)
        return [int(x.split("/")[0]) for x in line[0].split("[")[1].rstrip("]").split(", ")]

    lv = levels()
    assert sum(lv[1:]) >= 2 and lv[0] <= 1, lv              # flushes went on from L0 into L1
    sel = s.prepare("SELECT c FROM %s.t WHERE k = ?" % KS)
    for k in range(144):
        s.execute(sel, (k,))
    st = json.loads(http(node, "/tablestats/%s/t" % KS)[1])
    table = st["keyspaces"][0]["tables"][0] if "keyspaces" in st else st
    # L1 SSTables never overlap: a key is in at most one of them plus L0
    assert table["sstables_per_read_max"] <= 1 + lv[0], table
    cl, s = kill_and_reconnect(node, clusters, cl, w)        # levels live in Statistics.db
    assert levels() == lv
    w.check()



def test_lcs_l0_compaction_trigger(make_node, clusters):
    """l0_compaction_trigger (Sibyl's LCS option): L0 waits for that many
    SSTables before it compacts; ALTER TABLE changes it on the live table."""
    node = make_node()
    cl, s = clusters.connect(node)
    make_table(s, "t", "{'class': 'LeveledCompactionStrategy', 'sstable_size_in_mb': '1', "
                       "'l0_compaction_trigger': '3'}")
    w = Workload(s, "t", parts=60, rows=10)                 # ~0.4 MB a flush, 3 flushes

    def levels():
        line = [x for x in tablestats(node).splitlines() if "SSTables in each level" in x]
        assert line, tablestats(node)
        return [int(x.split("/")[0]) for x in line[0].split("[")[1].rstrip("]").split(", ")]

    ins = s.prepare("INSERT INTO %s.t (k, c, v) VALUES (?, ?, ?)" % KS)
    for f in range(3):
        rows = [(k, c, os.urandom(1000).hex()) for k in range(f * 20, f * 20 + 20) for c in range(10)]
        execute_concurrent_with_args(s, ins, rows, concurrency=32, raise_on_first_error=True)
        w.want |= {(k, c) for k, c, _ in rows}
        flush_table(node, "t")
        wait_compactions(node)
        lv = levels()
        if f < 2:                                            # below the trigger: L0 left alone
            assert lv[0] == f + 1 and sum(lv[1:]) == 0, lv
        else:                                                # the third: all of L0 into L1
            assert lv[0] == 0 and sum(lv[1:]) >= 1, lv
    w.check()
    s.execute("ALTER TABLE %s.t WITH compaction = {'class': 'LeveledCompactionStrategy', "
              "'sstable_size_in_mb': '1', 'l0_compaction_trigger': '1'}" % KS)
    row = s.execute("SELECT compaction FROM system_schema.tables WHERE keyspace_name = %s AND table_name = 't'",
                    (KS,)).one()
    assert row.compaction["l0_compaction_trigger"] == "1", row.compaction
    w.check()

# ---- TWCS: fully expired SSTables dropped whole, unread, on the timer ----

# An UPDATE writes no row marker, only expiring cells: its SSTables expire
# whole too (Statistics.db counts the live data that never expires).
@pytest.mark.parametrize("write", ["insert", "update"])
def test_twcs_drops_fully_expired_sstables_unread(make_node, clusters, write):
    node = make_node()
    cl, s = clusters.connect(node)
    make_table(s, "t", "{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'MINUTES', "
                       "'expired_sstable_check_frequency_seconds': '0'}")
    if write == "insert":
        ins = s.prepare("INSERT INTO %s.t (k, c, v) VALUES (?, ?, ?) USING TTL 2" % KS)
        args = lambda f: [(k, f, "x" * 100) for k in range(200)]
    else:
        ins = s.prepare("UPDATE %s.t USING TTL 2 SET v = ? WHERE k = ? AND c = ?" % KS)
        args = lambda f: [("x" * 100, k, f) for k in range(200)]
    for f in range(2):
        execute_concurrent_with_args(s, ins, args(f), concurrency=32, raise_on_first_error=True)
        flush_table(node, "t")
    s.execute("INSERT INTO %s.t (k, c, v) VALUES (1000, 0, 'lives')" % KS)   # stays in the memtable

    def table():
        st = json.loads(http(node, "/tablestats/%s/t" % KS)[1])
        return st["keyspaces"][0]["tables"][0] if "keyspaces" in st else st

    assert table()["sstable_count"] == 2
    time.sleep(3.2)                                          # expired, and past gc_grace (0)
    # the memtable's row is newer than both SSTables: it does not block them
    for _ in range(300):                                     # bounded: 30 s (the timer ticks every 5 s)
        if table()["sstable_count"] == 0:
            break
        time.sleep(0.1)
    t = table()
    assert t["sstable_count"] == 0, t
    assert t["compaction_bytes_read"] == 0, t                # dropped whole, never read
    assert "fully expired SSTables unread" in node.log_text()
    assert [(r.k, r.v) for r in s.execute("SELECT k, v FROM %s.t" % KS)] == [(1000, "lives")]


def test_expired_blockers_are_reported(make_node, clusters):
    """An SSTable still holding live data older than an expired SSTable's
    newest write keeps it from being dropped (it may hold what the expired
    one's tombstones shadow): sibyltool sstableexpiredblockers names it, in
    the words of Cassandra's tool of that name, and so the memtables when
    they hold such older data."""
    node = make_node()
    cl, s = clusters.connect(node)
    make_table(s, "t", "{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'MINUTES', "
                       "'expired_sstable_check_frequency_seconds': '0'}")
    p = sibyltool(node, "sstableexpiredblockers", KS, "t")
    assert p.returncode == 1 and p.stdout == "No sstables for %s.t\n" % KS, (p.returncode, p.stdout)
    # old live data (a write timestamp from 1970), then newer data that expires
    s.execute("INSERT INTO %s.t (k, c, v) VALUES (1, 0, 'old') USING TIMESTAMP 1000" % KS)
    flush_table(node, "t")
    ins = s.prepare("INSERT INTO %s.t (k, c, v) VALUES (?, ?, ?) USING TTL 1" % KS)
    execute_concurrent_with_args(s, ins, [(k, 0, "x") for k in range(2, 50)], concurrency=16,
                                 raise_on_first_error=True)
    flush_table(node, "t")
    time.sleep(2.2)                                          # expired, and past gc_grace (0)
    d = json.loads(http(node, "/expiredblockers/%s/t" % KS)[1])
    assert d["sstable_count"] == 2, d
    assert len(d["blockers"]) == 1, d
    b = d["blockers"][0]
    assert b["blocker"]["min_ts"] == 1000 and b["blocker"]["max_ldt"] == 2**31 - 1, b
    assert len(b["blocks"]) == 1 and b["blocks"][0]["min_ts"] > 1000, b
    assert b["blocks"][0]["sstable"].endswith("Data.db") and b["blocks"][0]["max_ldt"] < time.time(), b
    p = sibyltool(node, "sstableexpiredblockers", KS, "t")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("[%s (minTS = 1000, maxTS = 1000, maxLDT = 2147483647, diskSize = " %
                               b["blocker"]["sstable"]), p.stdout
    assert "], blocks 1 expired sstables from getting dropped: [%s (minTS = " % b["blocks"][0]["sstable"] in p.stdout
    # the drop really is blocked: the tick leaves both SSTables
    time.sleep(6)                                            # more than one 5-second tick
    assert json.loads(http(node, "/tablestats/%s/t" % KS)[1])["keyspaces"][0]["tables"][0]["sstable_count"] == 2
    # an old write in the memtable blocks it too
    s.execute("INSERT INTO %s.t (k, c, v) VALUES (60, 0, 'older') USING TIMESTAMP 500" % KS)
    d = json.loads(http(node, "/expiredblockers/%s/t" % KS)[1])
    names = sorted(x["blocker"]["sstable"] for x in d["blockers"])
    assert names == sorted(["memtable", b["blocker"]["sstable"]]), d


def test_bad_compaction_options_are_refused_and_change_nothing(node, clusters):
    cl, s = clusters.connect(node)
    s.execute("CREATE KEYSPACE %s WITH replication = %s" % (KS, RF1))
    bad = [
        ("{'class': 'LeveledCompactionStrategy', 'fanout_size': '0'}", "fanout_size"),
        ("{'class': 'LeveledCompactionStrategy', 'sstable_size_in_mb': 'big'}", "sstable_size_in_mb"),
        ("{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'WEEKS'}", "compaction_window_unit"),
        ("{'class': 'TimeWindowCompactionStrategy', 'unsafe_aggressive_sstable_expiration': 'true'}",
         "unsafe_aggressive_sstable_expiration"),
        ("{'class': 'LeveledCompactionStrategy', 'compaction_window_unit': 'DAYS'}", "not understood"),
        ("{'class': 'LeveledCompactionStrategy', 'l0_compaction_trigger': '0'}",
         "l0_compaction_trigger must be an integer from 1 to 32, was '0'"),
        ("{'class': 'LeveledCompactionStrategy', 'l0_compaction_trigger': '33'}",
         "l0_compaction_trigger must be an integer from 1 to 32, was '33'"),
        ("{'class': 'SizeTieredCompactionStrategy', 'l0_compaction_trigger': '4'}", "not understood"),
    ]
    for m, why in bad:
        with pytest.raises(Exception) as e:
            s.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int) WITH compaction = %s" % (KS, m))
        assert why in str(e.value), str(e.value)
    assert s.execute("SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (KS,)).one() is None
    s.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int) WITH compaction = %s" % (KS, LCS_1MB))
    for m, why in bad:
        with pytest.raises(Exception) as e:
            s.execute("ALTER TABLE %s.t WITH compaction = %s" % (KS, m))
        assert why in str(e.value), str(e.value)
    row = s.execute("SELECT compaction FROM system_schema.tables WHERE keyspace_name = %s AND table_name = 't'",
                    (KS,)).one()
    assert "LeveledCompactionStrategy" in row.compaction["class"] and row.compaction["sstable_size_in_mb"] == "1"
