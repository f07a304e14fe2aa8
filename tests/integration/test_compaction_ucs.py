"""UnifiedCompactionStrategy through the Python driver (docs/compaction.md,
"Unified choice"): every row read back after flushes, deletes, TTLs and
compactions under T4, L10 and N; a live switch T4 -> L10 -> N -> T4 with ALTER
TABLE, with sibyltool tablestats' levels and overlaps; a kill -9 in the middle of a sharded UCS compaction (restart: no row
lost, none resurrected); bad UCS options refused with nothing changed.

Small sizes (target_sstable_size 1 MiB, min_sstable_size 0) make the few
hundred KB of a test fall into 4 shards, so every compaction here writes
several outputs split at shard boundaries."""

import glob
import os
import re

import pytest

from test_compaction_strategies import (KS, Workload, flush_table, http, kill_and_reconnect, live_gens, major,
                                        make_table, restart_after_kill, start_with_failpoint, table_dir, tablestats,
                                        wait_compactions)


def ucs(scaling, **extra):
    opts = {"class": "UnifiedCompactionStrategy", "scaling_parameters": scaling, "target_sstable_size": "1MiB",
            "min_sstable_size": "0", "base_shard_count": "4"}
    opts.update(extra)
    return "{%s}" % ", ".join("'%s': '%s'" % kv for kv in opts.items())


def data_files(node, s, table="t"):
    return glob.glob(os.path.join(table_dir(node, s, table), "*-Data.db"))


def compactions_logged(node):
    return len(re.findall(r"compaction: compaction of \d+ SSTables", node.log_text()))


@pytest.mark.parametrize("scaling", ["T4", "L10", "N"])
def test_ucs_workload_reads_everything_back(make_node, clusters, scaling):
    node = make_node()
    cl, s = clusters.connect(node)
    make_table(s, "t", ucs(scaling))
    w = Workload(s, "t")
    w.write(node)
    wait_compactions(node)
    w.check()
    assert compactions_logged(node) >= 1                   # four overlapping flushes reach every threshold
    major(node, "t")
    w.check()
    # the major's output is split on the 4 base shards' boundaries
    assert 2 <= len(data_files(node, s)) <= 4
    cl, s = kill_and_reconnect(node, clusters, cl, w)
    w.check()


def test_ucs_live_switch_t4_l10_n(make_node, clusters):
    node = make_node()
    cl, s = clusters.connect(node)
    make_table(s, "t", ucs("T4"))
    w = Workload(s, "t", parts=60, width=1000)
    w.write(node, flushes=3)
    wait_compactions(node)
    assert compactions_logged(node) == 0                   # T4: three overlapping SSTables are below 4
    assert len(data_files(node, s)) == 3
    w.check()
    out = tablestats(node)
    assert "\t\tSSTables in each level: [3, 0, 0, 0, 0, 0, 0, 0, 0]\n" in out, out
    assert "\t\tMax overlapping SSTables in each level: [3, 0, 0, 0, 0, 0, 0, 0, 0]\n" in out, out

    s.execute("ALTER TABLE %s.t WITH compaction = %s" % (KS, ucs("L10")))
    meta = s.execute("SELECT compaction FROM system_schema.tables WHERE keyspace_name = %s AND table_name = 't'",
                     (KS,)).one()
    assert meta.compaction["scaling_parameters"] == "L10"
    wait_compactions(node)
    assert compactions_logged(node) >= 1                   # levelled: the second overlapping SSTable fires
    w.check()
    out = tablestats(node)                                 # the sharded outputs do not overlap
    assert "\t\tMax overlapping SSTables in each level: [1, 0, 0, 0, 0, 0, 0, 0, 0]\n" in out, out
    # the outputs lie in disjoint shards: another compaction has nothing to merge
    before = compactions_logged(node)
    http(node, "/flush/%s/t" % KS, method="POST")
    wait_compactions(node)
    assert compactions_logged(node) == before

    s.execute("ALTER TABLE %s.t WITH compaction = %s" % (KS, ucs("N")))
    ins = s.prepare("INSERT INTO %s.t (k, c, v) VALUES (?, ?, ?)" % KS)
    for k in range(1000, 1020):
        s.execute(ins, (k, 0, "n"))
        w.want.add((k, 0))
    flush_table(node, "t")                                 # overlaps the shards: N (t = 2) merges it in
    wait_compactions(node)
    assert compactions_logged(node) > before
    w.check()

    s.execute("ALTER TABLE %s.t WITH compaction = %s" % (KS, ucs("T4")))
    before = compactions_logged(node)
    for k in range(2000, 2020):
        s.execute(ins, (k, 0, "t4"))
        w.want.add((k, 0))
    flush_table(node, "t")
    wait_compactions(node)
    assert compactions_logged(node) == before              # back to T4: one new SSTable over a sharded run
    w.check()
    major(node, "t")
    w.check()


UCS_FAILPOINTS = [
    "compaction.after_txn_begin",
    "compaction.after_output_1",
    "compaction.after_outputs_before_txn_commit",
    "compaction.after_commit_before_input_delete",
]


@pytest.mark.parametrize("point", UCS_FAILPOINTS)
def test_kill_mid_ucs_compaction(make_node, clusters, point):
    node = start_with_failpoint(make_node, point)
    cl, s = clusters.connect(node)
    # disabled while the SSTables are written; enabling it starts the UCS compaction that dies
    make_table(s, "t", ucs("T4", enabled="false"))
    w = Workload(s, "t", parts=80)
    w.write(node, flushes=4)
    d = table_dir(node, s, "t")
    inputs = live_gens(d)
    assert len(inputs) == 4
    try:
        s.execute("ALTER TABLE %s.t WITH compaction = %s" % (KS, ucs("T4")))
    except Exception:                                   # the node may die before it answers
        pass
    restart_after_kill(node, cl, point)
    # the restarted node resumes UCS at once, so the recovery is read from its log
    log = node.log_text()
    if point == "compaction.after_commit_before_input_delete":
        m = re.search(r"rolled forward \S+ \(4 inputs, (\d+) outputs\)", log)
        assert m and int(m.group(1)) >= 2, log                        # the sharded outputs stay
    else:
        assert re.search(r"rolled back \S+ \(4 inputs, \d+ outputs\)", log), log
    cl, s = clusters.connect(node)
    w.s = s
    w.check()
    wait_compactions(node)
    assert not glob.glob(os.path.join(d, "*-txn.log")) and not glob.glob(os.path.join(d, "*.tmp"))
    assert not set(live_gens(d)) & set(inputs)          # the inputs are gone once UCS has run
    w.check()


def test_bad_ucs_options_are_refused_and_change_nothing(node, clusters):
    cl, s = clusters.connect(node)
    s.execute("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}" % KS)
    bad = [
        ("{'class': 'UnifiedCompactionStrategy', 'scaling_parameters': 'X4'}", "scaling_parameters"),
        ("{'class': 'UnifiedCompactionStrategy', 'scaling_parameters': 'L1'}", "scaling_parameters"),
        ("{'class': 'UnifiedCompactionStrategy', 'target_sstable_size': '10KiB'}", "target_sstable_size"),
        ("{'class': 'UnifiedCompactionStrategy', 'target_sstable_size': '100MiB'}", "min_sstable_size"),
        ("{'class': 'UnifiedCompactionStrategy', 'sstable_growth': '2'}", "sstable_growth"),
        ("{'class': 'UnifiedCompactionStrategy', 'base_shard_count': '0'}", "base_shard_count"),
        ("{'class': 'UnifiedCompactionStrategy', 'sstable_size_in_mb': '160'}", "not understood"),
    ]
    for m, why in bad:
        with pytest.raises(Exception) as e:
            s.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int) WITH compaction = %s" % (KS, m))
        assert why in str(e.value), str(e.value)
    assert s.execute("SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (KS,)).one() is None
    s.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int) WITH compaction = %s" % (KS, ucs("L10")))
    for m, why in bad:
        with pytest.raises(Exception) as e:
            s.execute("ALTER TABLE %s.t WITH compaction = %s" % (KS, m))
        assert why in str(e.value), str(e.value)
    row = s.execute("SELECT compaction FROM system_schema.tables WHERE keyspace_name = %s AND table_name = 't'",
                    (KS,)).one()
    assert row.compaction["scaling_parameters"] == "L10"
