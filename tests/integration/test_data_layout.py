"""Data directories as operators know them (issue 14): a table's files live in
<data>/<keyspace>/<table>-<table id without dashes>/, with snapshots/<name>/
and backups/ inside; an old data directory (<data>/<table id>/) is moved
there at start, and the move survives a kill -9 between any two of its steps
(failpoints layout.before_rename_<k> and layout.after_rename_<k>, k counting
the moves of one process)."""

import glob
import os
import re
import shutil

import pytest

from sibyl_harness import NodeError, flush

KS = "lay"
HEX_DIR = re.compile(r"^[0-9a-f]{32}$")
NAMED_DIR = re.compile(r"^(\w+)-([0-9a-f]{32})$")


def connect(clusters, node):
    return clusters.connect(node, protocol_version=4)


def table_ids(s):
    rows = s.execute("SELECT keyspace_name, table_name, id FROM system_schema.tables WHERE keyspace_name = %s", (KS,))
    return {r.table_name: r.id.hex for r in rows}


def named_dirs(datadir):
    """{id hex: (keyspace, table)} of every <ks>/<table>-<hex> folder."""
    out = {}
    for ks in os.listdir(datadir):
        kd = os.path.join(datadir, ks)
        if not os.path.isdir(kd) or HEX_DIR.match(ks):
            continue
        for t in os.listdir(kd):
            m = NAMED_DIR.match(t)
            if m and os.path.isdir(os.path.join(kd, t)):
                assert m.group(2) not in out, "table %s in two folders" % m.group(2)
                out[m.group(2)] = (ks, m.group(1))
    return out


def legacy_dirs(datadir):
    return sorted(d for d in os.listdir(datadir) if HEX_DIR.match(d) and os.path.isdir(os.path.join(datadir, d)))


def to_old_layout(datadir):
    """What the code before issue 14 left: <data>/<id hex>/ per table, no
    keyspace folders and no backups/."""
    for hexid, (ks, t) in named_dirs(datadir).items():
        d = os.path.join(datadir, ks, "%s-%s" % (t, hexid))
        b = os.path.join(d, "backups")
        if os.path.isdir(b):
            os.rmdir(b)
        os.rename(d, os.path.join(datadir, hexid))
    for ks in os.listdir(datadir):
        kd = os.path.join(datadir, ks)
        if os.path.isdir(kd) and not HEX_DIR.match(ks) and ks not in ("commitlog", "hints") and not os.listdir(kd):
            os.rmdir(kd)


def fill(s, table, lo, hi):
    ins = s.prepare("INSERT INTO %s.%s (k, v) VALUES (?, ?)" % (KS, table))
    for k in range(lo, hi):
        s.execute(ins, (k, "v%d" % k))


def check_rows(s, table, n):
    rows = {r.k: r.v for r in s.execute("SELECT k, v FROM %s.%s" % (KS, table))}
    assert rows == {k: "v%d" % k for k in range(n)}, "%s: %d rows of %d" % (table, len(rows), n)


def test_new_table_folder_and_snapshots(make_node, clusters):
    node = make_node()
    c, s = connect(clusters, node)
    s.execute("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}" % KS)
    s.execute("CREATE TABLE %s.a (k int PRIMARY KEY, v text)" % KS)
    ids = table_ids(s)
    d = os.path.join(node.datadir, KS, "a-" + ids["a"])
    assert os.path.isdir(os.path.join(d, "backups")), "CREATE TABLE names the folder at once"
    assert named_dirs(node.datadir)[ids["a"]] == (KS, "a")
    assert ("system", "local") in named_dirs(node.datadir).values()
    assert ("system_schema", "definitions") in named_dirs(node.datadir).values()
    assert legacy_dirs(node.datadir) == []
    fill(s, "a", 0, 50)
    flush(node)
    assert glob.glob(os.path.join(d, "*-Data.db")) and glob.glob(os.path.join(d, "*-TOC.txt"))
    s.execute("TRUNCATE %s.a" % KS)
    fill(s, "a", 0, 10)
    flush(node)
    assert glob.glob(os.path.join(d, "snapshots", "truncated-*", "*-Data.db"))
    s.execute("DROP TABLE %s.a" % KS)
    snaps = glob.glob(os.path.join(d, "snapshots", "dropped-*", "*-Data.db"))
    c.shutdown()
    node.restart()
    assert snaps and all(os.path.exists(p) for p in snaps), "the snapshot of the dropped table stays"
    assert not glob.glob(os.path.join(d, "*-Data.db"))


# Where each start is killed: before and after the rename of the first move
# of a start (the local-state table, the first to be named) and of a later one.
CRASHES = ["layout.before_rename_0", "layout.after_rename_0", "layout.after_rename_1",
           "layout.before_rename_1", "layout.after_rename_0"]


def test_old_layout_migrated_kill9_at_each_step(make_node, clusters):
    node = make_node()
    c, s = connect(clusters, node)
    s.execute("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}" % KS)
    for t in ("a", "b", "gone"):
        s.execute("CREATE TABLE %s.%s (k int PRIMARY KEY, v text)" % (KS, t))
    ids = table_ids(s)
    fill(s, "a", 0, 200)
    fill(s, "b", 0, 100)
    fill(s, "gone", 0, 20)
    flush(node)
    s.execute("TRUNCATE %s.gone" % KS)      # a snapshot inside the old folder moves along
    flush(node)
    fill(s, "a", 200, 300)                  # in the commitlog only: replayed into old-layout tables
    fill(s, "b", 100, 150)
    c.shutdown()
    node.kill9()
    to_old_layout(node.datadir)
    before = legacy_dirs(node.datadir)
    assert ids["a"] in before and ids["b"] in before and named_dirs(node.datadir) == {}
    snap = glob.glob(os.path.join(node.datadir, ids["gone"], "snapshots", "truncated-*", "*-Data.db"))
    assert snap

    for fp in CRASHES:
        node.env["SIBYL_FAILPOINTS"] = fp + "=kill"
        with pytest.raises(NodeError):
            node.start(timeout=30)
        assert ("failpoint %s: kill" % fp) in node.log_text(node.logs[-1]), node.log_tail()
        # after a crash at any step, each table is in exactly one folder
        named, legacy = named_dirs(node.datadir), legacy_dirs(node.datadir)
        assert not set(named) & set(legacy)
        assert set(named) | set(legacy) >= set(ids.values())
    node.env.pop("SIBYL_FAILPOINTS")
    node.start()
    assert legacy_dirs(node.datadir) == [], "every old folder moved"
    named = named_dirs(node.datadir)
    for t, h in ids.items():
        assert named[h] == (KS, t)
        assert os.path.isdir(os.path.join(node.datadir, KS, "%s-%s" % (t, h), "backups"))
    assert glob.glob(os.path.join(node.datadir, KS, "gone-" + ids["gone"], "snapshots", "truncated-*", "*-Data.db"))
    c, s = connect(clusters, node)
    check_rows(s, "a", 300)
    check_rows(s, "b", 150)
    fill(s, "a", 300, 310)
    flush(node)
    c.shutdown()
    # idempotent: another start moves nothing and changes nothing
    node.restart()
    assert "storage: moved" not in node.log_text(node.logs[-1])
    assert named_dirs(node.datadir) == named and legacy_dirs(node.datadir) == []
    c, s = connect(clusters, node)
    check_rows(s, "a", 310)
    check_rows(s, "b", 150)
    c.shutdown()
