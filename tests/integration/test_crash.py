"""Durability: every acknowledged write survives `kill -9` and a restart on the
same data directory, for each commitlog_sync mode; schema and local node
state survive restarts; a corrupted commitlog tail does not lose what
precedes it."""

import glob
import os
import signal
import threading

import pytest

from cassandra.query import SimpleStatement


SYNC_MODES = ["periodic", "batch", "group"]
N_ROWS = 300


def reconnect(clusters, node):
    return clusters.connect(node, protocol_version=4)


def schema(session, ks="crash"):
    session.execute("CREATE KEYSPACE %s WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}" % ks)
    session.execute("CREATE TABLE %s.t (k int, c int, v text, PRIMARY KEY (k, c))" % ks)


def write_rows(session, n, ks="crash"):
    ps = session.prepare("INSERT INTO %s.t (k, c, v) VALUES (?, ?, ?)" % ks)
    futures = [session.execute_async(ps, (i % 17, i, "value-%d" % i)) for i in range(n)]
    for f in futures:
        f.result()                                     # every write acknowledged


def all_rows(session, ks="crash"):
    st = SimpleStatement("SELECT k, c, v FROM %s.t" % ks, fetch_size=100)
    return {(r.k, r.c, r.v) for r in session.execute(st)}


def expected(n):
    return {(i % 17, i, "value-%d" % i) for i in range(n)}


@pytest.mark.parametrize("mode", SYNC_MODES)
def test_acknowledged_writes_survive_kill9(make_node, clusters, mode):
    node = make_node(commitlog_sync=mode)
    c, s = reconnect(clusters, node)
    schema(s)
    write_rows(s, N_ROWS)
    # Overwrites and deletes are durable too.
    s.execute("UPDATE crash.t SET v = 'changed' WHERE k = 1 AND c = 1")
    s.execute("DELETE FROM crash.t WHERE k = 2 AND c = 2")
    s.execute("DELETE FROM crash.t WHERE k = 3")
    c.shutdown()
    node.kill9()
    node.start()
    c, s = reconnect(clusters, node)
    want = expected(N_ROWS)
    want.discard((1, 1, "value-1"))
    want.add((1, 1, "changed"))
    want.discard((2, 2, "value-2"))
    want = {r for r in want if r[0] != 3}
    got = all_rows(s)
    missing = want - got
    assert not missing, "%d acknowledged rows lost, e.g. %r" % (len(missing), sorted(missing)[:5])
    assert got == want


def test_durable_writes_per_keyspace_in_a_batch(make_node, clusters):
    """durable_writes is the keyspace's, per mutation: a batch whose first
    statement writes a durable_writes = false keyspace still logs the rows of
    a durable keyspace (the whole batch is one commitlog entry, so it is
    logged whole); a batch of non-durable keyspaces only skips the log."""
    node = make_node(commitlog_sync="batch")
    c, s = reconnect(clusters, node)
    schema(s, "durable")
    s.execute("CREATE KEYSPACE volatile WITH replication = {'class': 'SimpleStrategy', "
              "'replication_factor': 1} AND durable_writes = false")
    s.execute("CREATE TABLE volatile.t (k int, c int, v text, PRIMARY KEY (k, c))")
    s.execute("BEGIN BATCH INSERT INTO volatile.t (k, c, v) VALUES (1, 1, 'a') "
              "INSERT INTO durable.t (k, c, v) VALUES (1, 1, 'b') APPLY BATCH")
    s.execute("INSERT INTO volatile.t (k, c, v) VALUES (2, 2, 'c')")      # not logged: lost at the kill
    c.shutdown()
    node.kill9()
    node.start()
    c, s = reconnect(clusters, node)
    assert all_rows(s, "durable") == {(1, 1, "b")}
    assert all_rows(s, "volatile") == {(1, 1, "a")}


@pytest.mark.parametrize("mode", ["periodic", "batch"])
def test_kill9_during_writes(make_node, clusters, mode):
    # Writes in flight when the node dies: each acknowledged one must be
    # there after restart (unacknowledged ones may or may not be).
    node = make_node(commitlog_sync=mode)
    c, s = reconnect(clusters, node)
    schema(s)
    ps = s.prepare("INSERT INTO crash.t (k, c, v) VALUES (?, ?, ?)")
    acked = []
    lock = threading.Lock()
    enough = threading.Event()

    def on_ok(_, i):
        with lock:
            acked.append(i)
            if len(acked) >= 400:
                enough.set()

    def on_err(_, i):
        pass

    for i in range(4000):
        f = s.execute_async(ps, (i % 13, i, "v%d" % i))
        f.add_callbacks(on_ok, on_err, callback_args=(i,), errback_args=(i,))
        if enough.is_set():
            break
    enough.wait(timeout=60)
    node.kill9()
    with lock:
        acked_now = list(acked)
    assert len(acked_now) >= 400, "too few writes acknowledged before the kill"
    c.shutdown()
    node.start()
    c, s = reconnect(clusters, node)
    got = {r.c for r in s.execute(SimpleStatement("SELECT c FROM crash.t", fetch_size=500))}
    lost = set(acked_now) - got
    assert not lost, "%d acknowledged writes lost, e.g. %r" % (len(lost), sorted(lost)[:5])


def test_schema_survives_kill9(make_node, clusters):
    node = make_node()
    c, s = reconnect(clusters, node)
    s.execute("CREATE KEYSPACE sk WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 1}")
    s.execute("CREATE TABLE sk.t (a text, b date, ts int, v double, PRIMARY KEY ((a, b), ts)) "
              "WITH CLUSTERING ORDER BY (ts DESC) AND default_time_to_live = 5000 AND comment = 'kept'")
    s.execute("ALTER TABLE sk.t ADD extra int")
    s.execute("CREATE TABLE sk.gone (k int PRIMARY KEY)")
    s.execute("DROP TABLE sk.gone")
    s.execute("CREATE KEYSPACE dropped WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("DROP KEYSPACE dropped")
    s.execute("INSERT INTO sk.t (a, b, ts, v, extra) VALUES ('x', '2024-01-01', 1, 1.5, 7)")
    c.shutdown()
    node.kill9()
    node.start()
    c, s = reconnect(clusters, node)
    ksm = c.metadata.keyspaces
    assert "sk" in ksm and "dropped" not in ksm
    assert ksm["sk"].replication_strategy.dc_replication_factors == {"datacenter1": 1}
    assert set(ksm["sk"].tables) == {"t"}
    tm = ksm["sk"].tables["t"]
    assert [col.name for col in tm.partition_key] == ["a", "b"]
    assert [(col.name, col.is_reversed) for col in tm.clustering_key] == [("ts", True)]
    assert "extra" in tm.columns
    assert tm.options["default_time_to_live"] == 5000 and tm.options["comment"] == "kept"
    r = s.execute("SELECT v, extra FROM sk.t WHERE a = 'x' AND b = '2024-01-01'").one()
    assert (r.v, r.extra) == (1.5, 7)


def test_graceful_restart_keeps_everything(make_node, clusters):
    node = make_node()
    c, s = reconnect(clusters, node)
    schema(s)
    write_rows(s, 100)
    c.shutdown()
    rc = node.stop()
    # Exit 0 after a clean shutdown, or the default SIGTERM death; not a
    # crash (SIGSEGV/SIGABRT) and not a sanitizer exit status.
    assert rc in (0, -signal.SIGTERM), "sibyld exited with %s on SIGTERM" % rc
    node.start()
    c, s = reconnect(clusters, node)
    assert all_rows(s) == expected(100)
    # And once more, after more writes on the replayed state.
    write_rows(s, 150)
    c.shutdown()
    node.restart(kill=True)
    c, s = reconnect(clusters, node)
    assert all_rows(s) == expected(150)


def test_local_state_stable_across_restart(make_node, clusters):
    node = make_node()
    c, s = reconnect(clusters, node)
    q = "SELECT host_id, tokens, cluster_name, schema_version FROM system.local WHERE key = 'local'"
    before = s.execute(q).one()
    c.shutdown()
    node.restart(kill=True)
    c, s = reconnect(clusters, node)
    after = s.execute(q).one()
    assert after.host_id == before.host_id
    assert set(after.tokens) == set(before.tokens)
    assert after.cluster_name == before.cluster_name
    assert after.schema_version is not None


def test_ttl_and_timestamps_survive_restart(make_node, clusters):
    node = make_node()
    c, s = reconnect(clusters, node)
    schema(s)
    s.execute("INSERT INTO crash.t (k, c, v) VALUES (1, 1, 'ts') USING TIMESTAMP 424242")
    s.execute("INSERT INTO crash.t (k, c, v) VALUES (1, 2, 'ttl') USING TTL 10000")
    s.execute("INSERT INTO crash.t (k, c, v) VALUES (1, 3, 'old') USING TIMESTAMP 10")
    s.execute("DELETE FROM crash.t USING TIMESTAMP 20 WHERE k = 1 AND c = 3")
    c.shutdown()
    node.kill9()
    node.start()
    c, s = reconnect(clusters, node)
    rows = {r.c: r for r in s.execute("SELECT c, v, WRITETIME(v) AS wt, TTL(v) AS t FROM crash.t WHERE k = 1")}
    assert set(rows) == {1, 2}
    assert rows[1].wt == 424242
    assert rows[2].t is not None and 0 < rows[2].t <= 10000
    # The tombstone at 20 still shadows a write at 15 made after the restart.
    s.execute("INSERT INTO crash.t (k, c, v) VALUES (1, 3, 'older') USING TIMESTAMP 15")
    assert s.execute("SELECT * FROM crash.t WHERE k = 1 AND c = 3").one() is None


def test_truncate_and_drop_survive_restart(make_node, clusters):
    node = make_node()
    c, s = reconnect(clusters, node)
    schema(s)
    write_rows(s, 50)
    s.execute("TRUNCATE crash.t")
    s.execute("CREATE TABLE crash.t2 (k int PRIMARY KEY)")
    s.execute("INSERT INTO crash.t2 (k) VALUES (1)")
    s.execute("DROP TABLE crash.t2")
    s.execute("CREATE TABLE crash.t2 (k int PRIMARY KEY)")
    c.shutdown()
    node.restart(kill=True)
    c, s = reconnect(clusters, node)
    assert all_rows(s) == set()
    assert list(s.execute("SELECT * FROM crash.t2")) == []


def test_corrupted_commitlog_tail(make_node, clusters):
    node = make_node(commitlog_sync="batch")
    c, s = reconnect(clusters, node)
    schema(s)
    write_rows(s, 120)
    c.shutdown()
    node.kill9()
    segments = [p for p in glob.glob(os.path.join(node.commitlog_dir, "**", "*"), recursive=True)
                if os.path.isfile(p) and os.path.getsize(p) > 0]
    assert segments, "no commitlog segment under %s" % node.commitlog_dir
    newest = max(segments, key=lambda p: (os.path.getmtime(p), p))
    with open(newest, "ab") as f:                        # a torn, garbage tail
        f.write(b"\x00\x00\x01\x00" + b"\xde\xad\xbe\xef" * 40 + b"\x7f" * 13)
    node.start()
    c, s = reconnect(clusters, node)
    assert all_rows(s) == expected(120)
    # The node still takes writes, and they survive another crash.
    s.execute("INSERT INTO crash.t (k, c, v) VALUES (99, 99, 'after')")
    c.shutdown()
    node.restart(kill=True)
    c, s = reconnect(clusters, node)
    got = all_rows(s)
    assert (99, 99, "after") in got and expected(120) <= got

