"""Prepared statements: bind metadata, routing key indexes, named markers,
unset values, IN ?, LIMIT ?, and the Unprepared path after a node restart."""

import logging
import struct

import pytest

from cassandra import InvalidRequest
from cassandra.query import UNSET_VALUE

import cqlframe as F
from conftest import wait_until


@pytest.fixture
def t(session, ks):
    session.execute("CREATE TABLE %s.t (k int, c int, v text, n bigint, PRIMARY KEY (k, c))" % ks)
    return ks + ".t"


def test_prepare_bind_metadata(session, t, ks):
    ps = session.prepare("INSERT INTO %s (k, c, v, n) VALUES (?, ?, ?, ?)" % t)
    assert [c.name for c in ps.column_metadata] == ["k", "c", "v", "n"]
    assert [c.type.typename for c in ps.column_metadata] == ["int", "int", "varchar", "bigint"]
    assert {c.keyspace_name for c in ps.column_metadata} == {ks}
    assert {c.table_name for c in ps.column_metadata} == {"t"}
    assert ps.routing_key_indexes == [0]
    assert not ps.result_metadata                      # a non-SELECT has no result columns
    session.execute(ps, (1, 1, "one", 10))
    session.execute(ps, (1, 2, "two", 20))

    sel = session.prepare("SELECT c, v, n FROM %s WHERE k = ? AND c >= ?" % t)
    assert [c[2] for c in sel.result_metadata] == ["c", "v", "n"]
    assert sel.routing_key_indexes == [0]
    rows = list(session.execute(sel, (1, 2)))
    assert [(r.c, r.v, r.n) for r in rows] == [(2, "two", 20)]
    # The same prepared SELECT many times (the driver skips result metadata
    # on EXECUTE, so the server must honour SKIP_METADATA with correct rows).
    for i in range(20):
        assert session.execute(sel, (1, 1)).one().v == "one"


def test_prepare_is_stable(session, t):
    q = "SELECT v FROM %s WHERE k = ?" % t
    a = session.prepare(q)
    b = session.prepare(q)
    assert a.query_id == b.query_id


def test_pk_not_first_marker(session, t):
    ps = session.prepare("UPDATE %s SET v = ? WHERE c = ? AND k = ?" % t)
    assert ps.routing_key_indexes == [2]
    session.execute(ps, ("upd", 4, 7))
    assert session.execute("SELECT v FROM %s WHERE k = 7 AND c = 4" % t).one().v == "upd"


def test_named_markers(session, t):
    ps = session.prepare("INSERT INTO %s (k, c, v) VALUES (:key, :col, :val)" % t)
    assert [c.name for c in ps.column_metadata] == ["key", "col", "val"]
    session.execute(ps, {"key": 5, "col": 1, "val": "named"})
    sel = session.prepare("SELECT v FROM %s WHERE k = :key AND c = :col" % t)
    assert session.execute(sel, {"col": 1, "key": 5}).one().v == "named"
    # The same name used twice binds one value to both places.
    ps2 = session.prepare("UPDATE %s SET v = :x WHERE k = :kk AND c = :kk" % t)
    session.execute(ps2, {"x": "same", "kk": 6})
    assert session.execute("SELECT v FROM %s WHERE k = 6 AND c = 6" % t).one().v == "same"


def test_unset_values_leave_cells_alone(session, t):
    ps = session.prepare("INSERT INTO %s (k, c, v, n) VALUES (?, ?, ?, ?)" % t)
    session.execute(ps, (1, 1, "first", 1))
    session.execute(ps, (1, 1, UNSET_VALUE, 2))       # v not set: keeps 'first'
    r = session.execute("SELECT v, n FROM %s WHERE k = 1 AND c = 1" % t).one()
    assert (r.v, r.n) == ("first", 2)
    session.execute(ps, (1, 1, None, 3))              # null: deletes v
    r = session.execute("SELECT v, n FROM %s WHERE k = 1 AND c = 1" % t).one()
    assert (r.v, r.n) == (None, 3)


def test_in_marker_and_limit_marker(session, t):
    ins = session.prepare("INSERT INTO %s (k, c, v) VALUES (?, ?, ?)" % t)
    for k in range(4):
        for c in range(5):
            session.execute(ins, (k, c, "%d-%d" % (k, c)))
    ps = session.prepare("SELECT k, c FROM %s WHERE k IN ? AND c IN ?" % t)
    rows = sorted((r.k, r.c) for r in session.execute(ps, ([0, 3], [4, 1])))
    assert rows == [(0, 1), (0, 4), (3, 1), (3, 4)]
    lim = session.prepare("SELECT c FROM %s WHERE k = ? LIMIT ?" % t)
    assert lim.column_metadata[1].name == "[limit]"
    assert [r.c for r in session.execute(lim, (2, 3))] == [0, 1, 2]
    ppl = session.prepare("SELECT k, c FROM %s PER PARTITION LIMIT ?" % t)
    assert len(list(session.execute(ppl, (2,)))) == 8


def test_bound_value_of_wrong_type(session, t):
    ps = session.prepare("SELECT v FROM %s WHERE k = ?" % t)
    # A value with the wrong length for an int, sent as raw bytes (past the
    # driver's encoder), is refused by the server.
    from cassandra.query import BoundStatement
    b = BoundStatement(ps)
    b.values = [b"\x00\x01"]
    with pytest.raises(InvalidRequest):
        session.execute(b)


def test_prepare_errors(session, t):
    with pytest.raises(InvalidRequest):
        session.prepare("SELECT nosuch FROM %s WHERE k = ?" % t)
    from cassandra.protocol import SyntaxException
    with pytest.raises(SyntaxException):
        session.prepare("SELECT v FROM %s WHERE k = ? AND" % t)


def test_execute_unknown_id_gets_unprepared(node):
    with F.RawConnection(node.host, node.port) as conn:
        conn.startup()
        bogus = b"\x13\x37" * 8
        f = conn.request(F.OP_EXECUTE, F.short_bytes(bogus) + b"\x00\x01\x00", stream=3)
        assert f.version == 0x84 and f.stream == 3
        code, msg, r = f.error()
        assert code == F.ERR_UNPREPARED
        assert r.short_bytes() == bogus


def test_reprepare_after_restart(node, clusters, ks, session, caplog):
    session.execute("CREATE TABLE %s.rp (k int PRIMARY KEY, v text)" % ks)
    # reprepare_on_up=False: the driver must take the Unprepared path (the
    # restarted node has an empty prepared cache) instead of re-preparing
    # when the host comes back.
    c, s = clusters.connect(node, protocol_version=4, reprepare_on_up=False)
    ins = s.prepare("INSERT INTO %s.rp (k, v) VALUES (?, ?)" % ks)
    sel = s.prepare("SELECT v FROM %s.rp WHERE k = ?" % ks)
    s.execute(ins, (1, "before"))
    node.restart()

    def usable():
        try:
            s.execute("SELECT key FROM system.local")
            return True
        except Exception:
            return False
    wait_until(usable, timeout=30, interval=0.2, what="driver reconnect after restart")
    caplog.set_level(logging.DEBUG, logger="cassandra.cluster")
    caplog.clear()
    s.execute(ins, (2, "after"))
    # The server answered Unprepared (0x2500) and the driver re-prepared.
    assert any("Re-preparing unrecognized prepared statement" in r.getMessage() for r in caplog.records)
    assert s.execute(sel, (1,)).one().v == "before"
    assert s.execute(sel, (2,)).one().v == "after"


def test_evicted_statements_are_reprepared(make_node, clusters, caplog):
    """prepared_statements_cache_size bounds the cache by bytes, least
    recently used out first: with a tiny cache the driver keeps executing
    statements the node has forgotten; it gets Unprepared, re-prepares and
    the results stay right."""
    from sibyl_harness import admin_info
    node = make_node(prepared_statements_cache_size="16KiB")
    _, s = clusters.connect(node, protocol_version=4)
    s.execute("CREATE KEYSPACE ev WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE ev.t (k int PRIMARY KEY, v text)")
    n = 24
    # distinct statements (the comment text makes each query, so each id, unique)
    ins = [s.prepare("INSERT INTO ev.t (k, v) VALUES (?, ?) /* %d */" % i) for i in range(n)]
    sel = [s.prepare("SELECT k, v FROM ev.t WHERE k = ? /* %d */" % i) for i in range(n)]
    info = admin_info(node)["client_limits"]
    assert info["prepared_statements"] < 2 * n          # some were evicted
    assert info["prepared_statements_bytes"] <= info["prepared_statements_cache_size"]
    caplog.set_level(logging.DEBUG, logger="cassandra.cluster")
    caplog.clear()
    for rnd in range(2):
        for i in range(n):
            s.execute(ins[i], (i, "v%d-%d" % (rnd, i)))
        for i in range(n):
            r = s.execute(sel[i], (i,)).one()
            assert (r.k, r.v) == (i, "v%d-%d" % (rnd, i))
    assert any("Re-preparing unrecognized prepared statement" in r.getMessage() for r in caplog.records)
    info = admin_info(node)["client_limits"]
    assert info["prepared_statements_bytes"] <= info["prepared_statements_cache_size"]


# ---- a prepared statement after a schema change ----------------------------
# EXECUTE keeps what it resolved for a statement (its table, the keyspace's
# replication) while the schema is unchanged; each test below changes the
# schema between two executions of one prepared statement and checks that
# the second sees the new schema, as an unprepared statement would.

def test_prepared_select_sees_recreated_table(session, ks):
    session.execute("CREATE TABLE %s.r (k int PRIMARY KEY, v text)" % ks)
    session.execute("INSERT INTO %s.r (k, v) VALUES (1, 'old')" % ks)
    sel = session.prepare("SELECT k, v FROM %s.r WHERE k = ?" % ks)
    ins = session.prepare("INSERT INTO %s.r (k, v) VALUES (?, ?)" % ks)
    for _ in range(3):
        assert session.execute(sel, (1,)).one().v == "old"
    session.execute("DROP TABLE %s.r" % ks)
    # the statements' table is gone: the error a fresh statement gets
    with pytest.raises(InvalidRequest) as e:
        session.execute(sel, (1,))
    assert "table r does not exist" in str(e.value)
    with pytest.raises(InvalidRequest):
        session.execute(ins, (2, "x"))
    session.execute("CREATE TABLE %s.r (k int PRIMARY KEY, v text)" % ks)
    # the same name, a new table: its (empty) data, never the dropped one's
    assert session.execute(sel, (1,)).one() is None
    session.execute(ins, (1, "new"))
    assert session.execute(sel, (1,)).one().v == "new"
    assert session.execute("SELECT v FROM %s.r WHERE k = 1" % ks).one().v == "new"


def test_prepared_select_after_alter_drop_and_add(session, ks):
    session.execute("CREATE TABLE %s.a (k int PRIMARY KEY, v text, w int)" % ks)
    session.execute("INSERT INTO %s.a (k, v, w) VALUES (1, 'one', 10)" % ks)
    sel_w = session.prepare("SELECT k, w FROM %s.a WHERE k = ?" % ks)
    sel_v = session.prepare("SELECT v FROM %s.a WHERE k = ?" % ks)
    assert session.execute(sel_w, (1,)).one().w == 10
    assert session.execute(sel_v, (1,)).one().v == "one"
    session.execute("ALTER TABLE %s.a DROP w" % ks)
    # the column is gone: the error an unprepared SELECT of it gets
    with pytest.raises(InvalidRequest) as e:
        session.execute(sel_w, (1,))
    assert "Undefined column name w" in str(e.value)
    assert session.execute(sel_v, (1,)).one().v == "one"
    session.execute("ALTER TABLE %s.a ADD w int" % ks)
    # re-added: the old cells were dropped with the column
    assert session.execute(sel_w, (1,)).one().w is None
    session.execute("UPDATE %s.a SET w = 5 WHERE k = 1" % ks)
    assert session.execute(sel_w, (1,)).one().w == 5


def test_prepared_select_after_keyspace_replication_change(session, ks):
    from cassandra import ConsistencyLevel, Unavailable
    session.execute("CREATE TABLE %s.q (k int PRIMARY KEY, v text)" % ks)
    session.execute("INSERT INTO %s.q (k, v) VALUES (1, 'one')" % ks)
    sel = session.prepare("SELECT v FROM %s.q WHERE k = ?" % ks)
    sel.consistency_level = ConsistencyLevel.QUORUM
    ins = session.prepare("INSERT INTO %s.q (k, v) VALUES (?, ?)" % ks)
    ins.consistency_level = ConsistencyLevel.QUORUM
    for _ in range(3):
        assert session.execute(sel, (1,)).one().v == "one"    # RF 1: a quorum of one
    session.execute(ins, (2, "two"))
    session.execute("ALTER KEYSPACE %s WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 3}" % ks)
    # RF 3 on one node: QUORUM needs 2 replicas, and only this one is up
    with pytest.raises(Unavailable):
        session.execute(sel, (1,))
    with pytest.raises(Unavailable):
        session.execute(ins, (3, "three"))
    session.execute("ALTER KEYSPACE %s WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}" % ks)
    assert session.execute(sel, (2,)).one().v == "two"


def test_prepared_select_after_truncate(session, ks):
    session.execute("CREATE TABLE %s.tr (k int PRIMARY KEY, v text)" % ks)
    sel = session.prepare("SELECT v FROM %s.tr WHERE k = ?" % ks)
    ins = session.prepare("INSERT INTO %s.tr (k, v) VALUES (?, ?)" % ks)
    session.execute(ins, (1, "before"))
    assert session.execute(sel, (1,)).one().v == "before"
    session.execute("TRUNCATE %s.tr" % ks)
    assert session.execute(sel, (1,)).one() is None
    session.execute(ins, (1, "after"))
    assert session.execute(sel, (1,)).one().v == "after"


def test_prepared_reads_on_the_pool_while_statements_are_evicted(make_node, clusters):
    """Reads of flushed rows without a block cache go to the read pool and
    answer in a later loop callback, while a tiny statement cache keeps
    evicting the statements (the driver re-prepares them): a read never
    uses what its evicted statement kept (ASan would see it), and every
    answer is right."""
    from cassandra.concurrent import execute_concurrent
    from sibyl_harness import flush
    node = make_node(prepared_statements_cache_size="16KiB", block_cache_size=0)
    _, s = clusters.connect(node, protocol_version=4)
    s.execute("CREATE KEYSPACE pe WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE pe.t (k int PRIMARY KEY, v text, w int)")
    ins = s.prepare("INSERT INTO pe.t (k, v, w) VALUES (?, ?, ?)")
    execute_concurrent(s, [(ins, (k, "v%d" % k, k * 10)) for k in range(100)], concurrency=20,
                       raise_on_first_error=True)
    flush(node)
    sel = [s.prepare("SELECT w, v AS x FROM pe.t WHERE k = ? /* %d */" % i) for i in range(16)]
    for rnd in range(3):
        stmts = [(sel[(k + rnd) % len(sel)], (k,)) for k in range(100)]
        res = execute_concurrent(s, stmts, concurrency=32, raise_on_first_error=True)
        for k, (ok, rows) in enumerate(res):
            r = rows.one()
            assert ok and (r.w, r.x) == (k * 10, "v%d" % k)


def test_prepared_writes_that_read_first_while_statements_are_evicted(make_node, clusters):
    """A list element set (l[i] = v) reads the list before it writes; with
    the row flushed and no block cache that read answers in a later loop
    callback, while a tiny statement cache keeps evicting the statements:
    the write never uses what its evicted statement kept, and every element
    lands."""
    from cassandra.concurrent import execute_concurrent
    from sibyl_harness import flush
    node = make_node(prepared_statements_cache_size="16KiB", block_cache_size=0)
    _, s = clusters.connect(node, protocol_version=4)
    s.execute("CREATE KEYSPACE pw WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE pw.t (k int PRIMARY KEY, l list<int>)")
    ins = s.prepare("INSERT INTO pw.t (k, l) VALUES (?, ?)")
    execute_concurrent(s, [(ins, (k, [0, 0, 0])) for k in range(100)], concurrency=20, raise_on_first_error=True)
    flush(node)
    upd = [s.prepare("UPDATE pw.t SET l[?] = ? WHERE k = ? /* %d */" % i) for i in range(16)]
    for rnd in range(3):
        stmts = [(upd[(k + rnd) % len(upd)], (rnd, k * 10 + rnd, k)) for k in range(100)]
        res = execute_concurrent(s, stmts, concurrency=32, raise_on_first_error=True)
        assert all(ok for ok, _ in res)
    sel = s.prepare("SELECT l FROM pw.t WHERE k = ?")
    for k in range(100):
        assert s.execute(sel, (k,)).one().l == [k * 10, k * 10 + 1, k * 10 + 2]


# A prepared SELECT whose WHERE is one EQ per partition key column keeps that
# shape with its plan and only evaluates the bound values per execution:
# every execution must still answer for its own values, refuse bad ones with
# the analysis' messages, and see a DDL that changes what the shape means.

NULL, UNSET = -1, -2


def raw_execute(node, query_id, values):
    """EXECUTE of query_id over a raw connection; values: bytes, NULL or UNSET."""
    body = F.short_bytes(query_id) + struct.pack(">HBH", F.CL_ONE, 0x01, len(values))
    for v in values:
        body += struct.pack(">i", v) if isinstance(v, int) else struct.pack(">i", len(v)) + v
    with F.RawConnection(node.host, node.port) as conn:
        conn.startup()
        return conn.request(F.OP_EXECUTE, body, stream=1)


def test_prepared_point_read_takes_each_executions_values(node, session, ks):
    session.execute("CREATE TABLE %s.pt (a int, b text, c int, v int, PRIMARY KEY ((a, b), c))" % ks)
    ins = session.prepare("INSERT INTO %s.pt (a, b, c, v) VALUES (?, ?, ?, ?)" % ks)
    for a in range(4):
        for b in ("x", "y"):
            for c in range(3):
                session.execute(ins, (a, b, c, a * 100 + c))
    # key columns in another order than the key's
    sel = session.prepare("SELECT c, v FROM %s.pt WHERE b = ? AND a = ?" % ks)
    for _ in range(2):
        for a in range(5):
            for b in ("x", "y", "z"):
                want = [(c, a * 100 + c) for c in range(3)] if a < 4 and b != "z" else []
                assert [(r.c, r.v) for r in session.execute(sel, (b, a))] == want
    # (the driver refuses a null or unset key value itself: raw frames)
    one, x = struct.pack(">i", 1), b"x"
    for values, msg in (((NULL, one), "Invalid null value in condition for column b"),
                        ((x, NULL), "Invalid null value in condition for column a"),
                        ((x, UNSET), "Invalid unset value for column a")):
        code, got, _ = raw_execute(node, sel.query_id, values).error()
        assert (code, got) == (F.ERR_INVALID, msg)
    # the same errors as the statement unprepared, and it still works after
    with pytest.raises(InvalidRequest, match="Invalid null value in condition for column b"):
        session.execute("SELECT c, v FROM %s.pt WHERE b = null AND a = 1" % ks)
    assert [r.v for r in session.execute(sel, ("y", 2))] == [200, 201, 202]
    # an empty component is a key (only a one-column key may not be empty)
    assert raw_execute(node, sel.query_id, (b"", one)).opcode == F.OP_RESULT
    # a paged point read resumes in the partition of its own values
    sel.fetch_size = 2
    assert [r.v for r in session.execute(sel, ("x", 3))] == [300, 301, 302]


def test_prepared_reads_not_of_the_point_shape(session, ks):
    session.execute("CREATE TABLE %s.np (k int, c int, v int, PRIMARY KEY (k, c))" % ks)
    ins = session.prepare("INSERT INTO %s.np (k, c, v) VALUES (?, ?, ?)" % ks)
    for k in range(5):
        for c in range(3):
            session.execute(ins, (k, c, k * 10 + c))
    in_sel = session.prepare("SELECT k, c FROM %s.np WHERE k IN ?" % ks)
    for ks_ in ([], [1], [3, 1], [4, 0, 2, 0], list(range(7))):
        want = sorted((k, c) for k in set(ks_) if k < 5 for c in range(3))
        assert sorted((r.k, r.c) for r in session.execute(in_sel, (ks_,))) == want
    row = session.prepare("SELECT v FROM %s.np WHERE k = ? AND c = ?" % ks)
    assert session.execute(row, (2, 1)).one().v == 21
    assert session.execute(row, (3, 2)).one().v == 32
    assert session.execute(row, (3, 9)).one() is None
    rng = session.prepare("SELECT v FROM %s.np WHERE k = ? AND c > ?" % ks)
    assert [r.v for r in session.execute(rng, (4, 0))] == [41, 42]
    # EQ on the key twice is refused, whatever the values
    dup = session.prepare("SELECT v FROM %s.np WHERE k = ? AND k = ?" % ks)
    for _ in range(2):
        with pytest.raises(InvalidRequest, match="more than one relation"):
            session.execute(dup, (1, 1))


def test_prepared_point_read_after_the_key_changes(session, ks):
    session.execute("CREATE TABLE %s.pk (k int PRIMARY KEY, j int, v text)" % ks)
    session.execute("INSERT INTO %s.pk (k, j, v) VALUES (1, 7, 'one')" % ks)
    sel = session.prepare("SELECT v FROM %s.pk WHERE k = ?" % ks)
    for _ in range(3):
        assert session.execute(sel, (1,)).one().v == "one"
    # the same name, k no longer the key: the WHERE is a filter now
    session.execute("DROP TABLE %s.pk" % ks)
    session.execute("CREATE TABLE %s.pk (j int PRIMARY KEY, k int, v text)" % ks)
    session.execute("INSERT INTO %s.pk (j, k, v) VALUES (7, 1, 'two')" % ks)
    with pytest.raises(InvalidRequest, match="ALLOW FILTERING"):
        session.execute(sel, (1,))
    # and back to a key of k, with a clustering column now
    session.execute("DROP TABLE %s.pk" % ks)
    session.execute("CREATE TABLE %s.pk (k int, c int, v text, PRIMARY KEY (k, c))" % ks)
    session.execute("INSERT INTO %s.pk (k, c, v) VALUES (1, 1, 'three')" % ks)
    session.execute("INSERT INTO %s.pk (k, c, v) VALUES (1, 2, 'four')" % ks)
    assert [r.v for r in session.execute(sel, (1,))] == ["three", "four"]
    session.execute("USE %s" % ks)
    assert [r.v for r in session.execute(sel, (1,))] == ["three", "four"]


def test_prepared_point_read_of_one_row(node, session, ks):
    # EQ on every primary key column keeps the point shape too: one row
    session.execute("CREATE TABLE %s.pr (a int, b text, c int, d text, s int STATIC, v int, "
                    "PRIMARY KEY ((a, b), c, d)) WITH CLUSTERING ORDER BY (c DESC, d ASC)" % ks)
    ins = session.prepare("INSERT INTO %s.pr (a, b, c, d, v) VALUES (?, ?, ?, ?, ?)" % ks)
    for a in range(3):
        for c in range(3):
            for d in ("", "p", "q\x00r"):
                session.execute(ins, (a, "x", c, d, a * 100 + c * 10 + len(d)))
    session.execute("UPDATE %s.pr SET s = 7 WHERE a = 1 AND b = 'x'" % ks)
    session.execute("UPDATE %s.pr SET s = 8 WHERE a = 5 AND b = 'x'" % ks)  # static only
    # key columns in another order than the key's
    sel = session.prepare("SELECT a, c, d, s, v FROM %s.pr WHERE d = ? AND b = ? AND c = ? AND a = ?" % ks)
    for _ in range(2):
        for a in range(6):
            for c in range(4):
                for d in ("", "p", "q\x00r", "z"):
                    rows = list(session.execute(sel, (d, "x", c, a)))
                    if a < 3 and c < 3 and d != "z":
                        want = [(a, c, d, 7 if a == 1 else None, a * 100 + c * 10 + len(d))]
                    else:
                        want = []  # a static-only partition has no row once clustering is restricted
                    assert [(r.a, r.c, r.d, r.s, r.v) for r in rows] == want
    # the answer matches the statement unprepared, ORDER BY and LIMIT included
    ordered = session.prepare("SELECT v FROM %s.pr WHERE a = ? AND b = ? AND c = ? AND d = ? "
                              "ORDER BY c ASC LIMIT 1" % ks)
    assert [r.v for r in session.execute(ordered, (2, "x", 1, "p"))] == [211]
    assert [r.v for r in session.execute(
        "SELECT v FROM %s.pr WHERE a = 2 AND b = 'x' AND c = 1 AND d = 'p'" % ks)] == [211]
    # null, unset and badly typed values get the analysis' messages
    d, x, one = b"p", b"x", struct.pack(">i", 1)
    for values, msg in (((NULL, x, one, one), "Invalid null value in condition for column d"),
                        ((d, x, UNSET, one), "Invalid unset value for column c"),
                        ((d, x, b"\x01", one), "Exception while binding column c"),
                        ((d, x, one, NULL), "Invalid null value in condition for column a")):
        code, got, _ = raw_execute(node, sel.query_id, values).error()
        assert code == F.ERR_INVALID and got.startswith(msg), got
    with pytest.raises(InvalidRequest, match="Invalid null value in condition for column d"):
        session.execute("SELECT v FROM %s.pr WHERE d = null AND b = 'x' AND c = 1 AND a = 1" % ks)
    # a clustering column twice is not the shape, whatever the values
    twice = session.prepare("SELECT v FROM %s.pr WHERE a = ? AND b = ? AND c = ? AND c = ?" % ks)
    for _ in range(2):
        with pytest.raises(InvalidRequest, match="more than one relation"):
            session.execute(twice, (1, "x", 1, 1))
    # a prefix of the clustering key is the shape too: the prefix's rows, as unprepared
    prefix = session.prepare("SELECT d FROM %s.pr WHERE a = ? AND b = ? AND c = ?" % ks)
    for _ in range(2):
        assert [r.d for r in session.execute(prefix, (1, "x", 2))] == ["", "p", "q\x00r"]
        assert [r.d for r in session.execute(prefix, (1, "x", 3))] == []
        assert [r.d for r in session.execute(prefix, (5, "x", 2))] == []  # static only
    for a in range(3):
        for c in range(3):
            want = [r.d for r in session.execute(
                "SELECT d FROM %s.pr WHERE a = %d AND b = 'x' AND c = %d" % (ks, a, c))]
            assert [r.d for r in session.execute(prefix, (a, "x", c))] == want
    # in pages (the paging state's restart position), reversed, with a static column
    paged = session.prepare("SELECT c, d, s FROM %s.pr WHERE c = ? AND a = ? AND b = ? ORDER BY c ASC" % ks)
    paged.fetch_size = 2
    assert [(r.c, r.d, r.s) for r in session.execute(paged, (1, 1, "x"))] == \
        [(1, "q\x00r", 7), (1, "p", 7), (1, "", 7)]
    # null, unset and badly typed values get the analysis' messages
    for values, msg in (((one, x, NULL), "Invalid null value in condition for column c"),
                        ((one, x, UNSET), "Invalid unset value for column c"),
                        ((one, x, b"\x01"), "Exception while binding column c")):
        code, got, _ = raw_execute(node, prefix.query_id, values).error()
        assert code == F.ERR_INVALID and got.startswith(msg), got
    # a clustering column after a gap is not the shape: the analysis' message
    gap = session.prepare("SELECT v FROM %s.pr WHERE a = ? AND b = ? AND d = ? ALLOW FILTERING" % ks)
    assert sorted(r.v for r in session.execute(gap, (2, "x", "p"))) == [201, 211, 221]
    nogap = session.prepare("SELECT v FROM %s.pr WHERE a = ? AND b = ? AND d = ?" % ks)
    for _ in range(2):
        with pytest.raises(InvalidRequest, match='PRIMARY KEY column "d" cannot be restricted as '
                                                 'preceding column "c" is not restricted'):
            session.execute(nogap, (2, "x", "p"))


def test_prepared_point_read_of_one_row_after_the_key_changes(session, ks):
    session.execute("CREATE TABLE %s.rk (k int, c int, v text, PRIMARY KEY (k, c))" % ks)
    session.execute("INSERT INTO %s.rk (k, c, v) VALUES (1, 2, 'one')" % ks)
    sel = session.prepare("SELECT v FROM %s.rk WHERE c = ? AND k = ?" % ks)
    for _ in range(3):
        assert session.execute(sel, (2, 1)).one().v == "one"
    # c a regular column now: a filter, refused without ALLOW FILTERING
    session.execute("DROP TABLE %s.rk" % ks)
    session.execute("CREATE TABLE %s.rk (k int PRIMARY KEY, c int, v text)" % ks)
    session.execute("INSERT INTO %s.rk (k, c, v) VALUES (1, 2, 'two')" % ks)
    with pytest.raises(InvalidRequest, match="ALLOW FILTERING"):
        session.execute(sel, (2, 1))
    # c part of a composite partition key: the shape again, of another key
    session.execute("DROP TABLE %s.rk" % ks)
    session.execute("CREATE TABLE %s.rk (k int, c int, v text, PRIMARY KEY ((k, c)))" % ks)
    session.execute("INSERT INTO %s.rk (k, c, v) VALUES (1, 2, 'three')" % ks)
    assert session.execute(sel, (2, 1)).one().v == "three"
    assert session.execute(sel, (1, 2)).one() is None
    # two clustering columns: the WHERE lacks one, a slice of the partition
    session.execute("DROP TABLE %s.rk" % ks)
    session.execute("CREATE TABLE %s.rk (k int, c int, e int, v text, PRIMARY KEY (k, c, e))" % ks)
    session.execute("INSERT INTO %s.rk (k, c, e, v) VALUES (1, 2, 1, 'four')" % ks)
    session.execute("INSERT INTO %s.rk (k, c, e, v) VALUES (1, 2, 2, 'five')" % ks)
    assert [r.v for r in session.execute(sel, (2, 1))] == ["four", "five"]


# A prepared INSERT keeps its columns' places in the table while the schema
# is unchanged; each change below must be seen as an unprepared INSERT sees it.

def test_prepared_insert_follows_its_columns_through_schema_changes(session, ks):
    session.execute("CREATE TABLE %s.ic (k int, j text, a int, b text, PRIMARY KEY ((k, j)))" % ks)
    ins = session.prepare("INSERT INTO %s.ic (b, k, a, j) VALUES (?, ?, ?, ?)" % ks)
    one = "SELECT k, j, a, b FROM %s.ic WHERE k = %%d AND j = '%%s'" % ks
    for i in range(3):
        session.execute(ins, ("b%d" % i, i, 10 + i, "j%d" % i))
    for i in range(3):
        assert tuple(session.execute(one % (i, "j%d" % i)).one()) == (i, "j%d" % i, 10 + i, "b%d" % i)
    session.execute("ALTER TABLE %s.ic DROP a" % ks)
    with pytest.raises(InvalidRequest, match="Undefined column name a"):
        session.execute(ins, ("x", 1, 1, "j1"))
    session.execute("ALTER TABLE %s.ic ADD a int" % ks)
    session.execute(ins, ("after", 1, 5, "j1"))
    assert tuple(session.execute(one % (1, "j1")).one()) == (1, "j1", 5, "after")
    # the same name, the columns in other places and a clustering column
    session.execute("DROP TABLE %s.ic" % ks)
    session.execute("CREATE TABLE %s.ic (a int, z int, b text, j text, k int, PRIMARY KEY ((j, k), a))" % ks)
    for i in range(3):
        session.execute(ins, ("p%d" % i, i, i, "jj"))
        session.execute("INSERT INTO %s.ic (b, k, a, j) VALUES ('u%d', %d, %d, 'jj')" % (ks, i, i, i + 10))
    for i in range(3):
        rows = list(session.execute(one % (i, "jj")))
        assert [tuple(r) for r in rows] == [(i, "jj", i, "p%d" % i), (i, "jj", i + 10, "u%d" % i)]
    # and a key column gone from the statement's columns: the same error as unprepared
    session.execute("DROP TABLE %s.ic" % ks)
    session.execute("CREATE TABLE %s.ic (k int, j text, a int, b text, q int, PRIMARY KEY (q))" % ks)
    with pytest.raises(InvalidRequest, match="Some partition key parts are missing: q"):
        session.execute(ins, ("x", 1, 1, "j"))
    with pytest.raises(InvalidRequest, match="Some partition key parts are missing: q"):
        session.execute("INSERT INTO %s.ic (b, k, a, j) VALUES ('x', 1, 1, 'j')" % ks)


def test_prepared_insert_errors_match_unprepared(session, ks):
    session.execute("CREATE TABLE %s.ie (k int PRIMARY KEY, v text)" % ks)
    dup = session.prepare("INSERT INTO %s.ie (k, v, v) VALUES (?, ?, ?)" % ks)
    for _ in range(2):  # no plan is kept for it: the same error each time
        with pytest.raises(InvalidRequest, match="The column names contains duplicates"):
            session.execute(dup, (1, "a", "b"))
    ins = session.prepare("INSERT INTO %s.ie (k, v) VALUES (?, ?)" % ks)
    for _ in range(2):  # the second execution runs on the kept plan
        with pytest.raises(InvalidRequest, match="Invalid null value in condition for column k"):
            session.execute(ins, (None, "x"))
        session.execute(ins, (1, UNSET_VALUE))
        assert session.execute("SELECT v FROM %s.ie WHERE k = 1" % ks).one().v is None


def test_prepared_insert_of_many_columns(session, ks):
    # more columns than an INSERT's plan keeps: looked up by name each time
    n = 40
    cols = ", ".join("c%d int" % i for i in range(n))
    session.execute("CREATE TABLE %s.wide (k int PRIMARY KEY, %s)" % (ks, cols))
    names = ", ".join("c%d" % i for i in reversed(range(n)))
    ins = session.prepare("INSERT INTO %s.wide (%s, k) VALUES (%s)" % (ks, names, ", ".join("?" * (n + 1))))
    for k in range(3):
        session.execute(ins, [k * 100 + i for i in reversed(range(n))] + [k])
    for k in range(3):
        row = session.execute("SELECT * FROM %s.wide WHERE k = %d" % (ks, k)).one()
        assert [getattr(row, "c%d" % i) for i in range(n)] == [k * 100 + i for i in range(n)]
