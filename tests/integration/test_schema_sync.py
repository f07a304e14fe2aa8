"""Schema agreement across real sibyld processes on 127.0.0.1..3
(docs/membership.md "Schema"): DDL run on one node reaches the others as
full definitions with their ids, drivers see one schema version, a node
that was down catches up, concurrent creates of one table converge, and a
client connected to another node hears SCHEMA_CHANGE.

Every node is stopped by pid at teardown (make_cluster); every wait is
bounded.
"""

import struct
import time

import pytest

import cqlframe as F
from conftest import wait_until
from sibyl_harness import admin_get
from test_gossip import FAST, one_host_cluster, sibyltool

from cassandra.cluster import ExecutionProfile, EXEC_PROFILE_DEFAULT
from cassandra.policies import WhiteListRoundRobinPolicy

WAIT = 30.0
KS = "CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"


def pinned(clusters, node):
    """A session whose requests all go to `node` (its control connection too).
    Such a driver never connects to the other nodes, so it cannot tell that
    one is down and would wait out its agreement check on a stopped node's
    stale version: these sessions skip the driver's check, and the tests
    check agreement themselves (wait_agreement)."""
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([node.host]), request_timeout=20)
    return clusters.cluster(node, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                            max_schema_agreement_wait=0).connect()


def table_row(session, ks, table):
    return session.execute("SELECT id FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
                           (ks, table)).one()


def columns(session, ks, table):
    rows = session.execute("SELECT column_name, type FROM system_schema.columns "
                           "WHERE keyspace_name = %s AND table_name = %s", (ks, table))
    return {r.column_name: r.type for r in rows}


def live_versions(node):
    """{version: [endpoints]} as `node` sees it (/describecluster), the
    peers it holds down left out: drivers skip those too."""
    v = admin_get(node.host, node.admin_port, "describecluster")["schema_versions"]
    v.pop("UNREACHABLE", None)
    return v


def wait_agreement(nodes, timeout=WAIT):
    """Until every node in `nodes` reports one and the same version for
    itself and every live peer."""
    def agreed():
        seen = set()
        for n in nodes:
            seen |= set(live_versions(n))
        return len(seen) == 1
    wait_until(agreed, timeout=timeout, interval=0.1, what="one schema version on every node")


@pytest.fixture
def three(make_cluster, clusters):
    c = make_cluster(config=FAST)
    c.wait_converged()
    return c, [pinned(clusters, n) for n in c]


def test_create_alter_drop_reach_every_node(three, clusters):
    c, (s1, s2, s3) = three
    # The driver's own check: DDL returns after agreement, not after a 10 s stall.
    cl = clusters.cluster(c[0], max_schema_agreement_wait=20)
    s = cl.connect()
    wait_until(lambda: len(cl.metadata.all_hosts()) == 3 and all(h.is_up for h in cl.metadata.all_hosts()),
               timeout=WAIT, what="driver sees 3 hosts up")
    rs = s.execute(KS % "spread")
    assert rs.response_future.is_schema_agreed
    rs = s.execute("CREATE TABLE spread.t (k int PRIMARY KEY, v text)")
    assert rs.response_future.is_schema_agreed
    assert cl.control_connection.wait_for_schema_agreement()
    ids = {str(table_row(x, "spread", "t").id) for x in (s1, s2, s3)}
    assert len(ids) == 1                      # the same table id everywhere
    assert "t" in cl.metadata.keyspaces["spread"].tables

    rs = s.execute("ALTER TABLE spread.t ADD w int")
    assert rs.response_future.is_schema_agreed
    for x in (s1, s2, s3):
        wait_until(lambda: columns(x, "spread", "t") == {"k": "int", "v": "text", "w": "int"}, timeout=WAIT,
                   what="column w everywhere")
    # writes through the new column work on every node (same column ids)
    for i, x in enumerate((s1, s2, s3)):
        x.execute("INSERT INTO spread.t (k, v, w) VALUES (%s, 'x', %s)", (i, i))

    rs = s.execute("DROP TABLE spread.t")
    assert rs.response_future.is_schema_agreed
    for x in (s1, s2, s3):
        assert table_row(x, "spread", "t") is None
    rs = s.execute("DROP KEYSPACE spread")
    assert rs.response_future.is_schema_agreed
    for x in (s1, s2, s3):
        assert x.execute("SELECT * FROM system_schema.keyspaces WHERE keyspace_name = 'spread'").one() is None
    wait_agreement(c.nodes)
    out = sibyltool(c[1], "describecluster")
    assert "Schema versions:" in out and out.count("127.0.0.") == 3, out
    assert len([l for l in out.splitlines() if l.strip().endswith("]") and ":" in l]) == 1, out


def test_node_down_during_ddl_catches_up(three, clusters):
    c, (s1, s2, s3) = three
    s1.execute(KS % "doomed")
    s1.execute("CREATE TABLE doomed.t (k int PRIMARY KEY)")
    wait_agreement(c.nodes)
    assert table_row(s3, "doomed", "t") is not None
    c[2].stop()
    s2.execute("DROP KEYSPACE doomed")
    s1.execute(KS % "late")
    s1.execute("CREATE TABLE late.t (k int PRIMARY KEY, v int)")
    s1.execute("ALTER TABLE late.t ADD extra text")
    wait_agreement(c.nodes[:2])                # these sessions skip the driver's own wait
    s2.execute("CREATE TABLE late.u (k int PRIMARY KEY)")
    s2.execute("DROP TABLE late.u")
    wait_agreement(c.nodes[:2])
    c[2].start()
    s3 = pinned(clusters, c[2])
    wait_until(lambda: columns(s3, "late", "t") == {"k": "int", "v": "int", "extra": "text"}, timeout=WAIT,
               what="the restarted node has late.t")
    assert table_row(s3, "late", "u") is None
    wait_until(lambda: s3.execute("SELECT * FROM system_schema.keyspaces WHERE keyspace_name = 'doomed'").one()
               is None, timeout=WAIT, what="the keyspace dropped meanwhile is gone on node 3")
    wait_agreement(c.nodes)
    assert str(table_row(s3, "late", "t").id) == str(table_row(s1, "late", "t").id)
    # and it survives another restart of that node (persisted, tombstone too)
    c[2].restart()
    s3 = pinned(clusters, c[2])
    assert columns(s3, "late", "t") == {"k": "int", "v": "int", "extra": "text"}
    assert table_row(s3, "late", "u") is None
    assert table_row(s3, "doomed", "t") is None
    wait_agreement(c.nodes)

    def one_version():
        out = sibyltool(c[0], "describecluster")
        versions = [l for l in out.splitlines() if l.strip().endswith("]") and ":" in l]
        return len(versions) == 1 and all(a in versions[0] for a in c.addresses)
    wait_until(one_version, timeout=WAIT, interval=0.2, what="describecluster shows one version for all")


def test_concurrent_create_converges(make_cluster, clusters):
    # gossip is slow and the nodes are apart while both tables are created
    c = make_cluster(size=2, config=FAST)
    c.wait_converged()
    c[1].stop()
    s1 = pinned(clusters, c[0])
    s1.execute(KS % "race")
    s1.execute("CREATE TABLE race.t (k int PRIMARY KEY, a int)")
    c[0].stop()
    c[1].start()
    s2 = pinned(clusters, c[1])
    s2.execute(KS % "race")
    s2.execute("CREATE TABLE race.t (k int PRIMARY KEY, b text)")
    c[0].start()
    s1 = pinned(clusters, c[0])
    wait_agreement(c.nodes[:2])
    d1 = (str(table_row(s1, "race", "t").id), columns(s1, "race", "t"))
    d2 = (str(table_row(s2, "race", "t").id), columns(s2, "race", "t"))
    assert d1 == d2                            # one definition everywhere
    assert d1[1] in ({"k": "int", "a": "int"}, {"k": "int", "b": "text"})
    # the later create (node 2's) wins by its timestamp
    assert d1[1] == {"k": "int", "b": "text"}


def test_events_reach_clients_of_other_nodes(three):
    c, (s1, s2, s3) = three
    conn = F.RawConnection(c[2].host, c[2].port)
    conn.startup()
    body = struct.pack(">H", 1) + F.string("SCHEMA_CHANGE")
    assert conn.request(F.OP_REGISTER, body, stream=1).opcode == F.OP_READY
    s1.execute(KS % "evt")
    s1.execute("CREATE TABLE evt.t (k int PRIMARY KEY)")
    want = {("CREATED", "KEYSPACE", "evt", None), ("CREATED", "TABLE", "evt", "t")}
    seen = set()
    deadline = time.monotonic() + WAIT
    while not want <= seen and time.monotonic() < deadline:
        try:
            f = conn.read_frame(timeout=max(0.05, deadline - time.monotonic()))
        except (OSError, TimeoutError):
            break
        if f.opcode != F.OP_EVENT:
            continue
        r = F.Reader(f.body)
        assert r.string() == "SCHEMA_CHANGE"
        change, target, ks = r.string(), r.string(), r.string()
        seen.add((change, target, ks, r.string() if target == "TABLE" else None))
    assert want <= seen, seen
    conn.close()


def test_version_is_stable_across_restart(three):
    # The persisted rows reload into the same definitions, so a restarted
    # node reports the version it had (and the cluster keeps agreeing).
    c, (s1, s2, s3) = three
    s1.execute(KS % "stable")
    s1.execute("CREATE TABLE stable.t (k int PRIMARY KEY, v list<int>)")
    wait_agreement(c.nodes)
    before = {v: sorted(a) for v, a in live_versions(c[1]).items()}
    assert len(before) == 1 and len(next(iter(before.values()))) == 3
    c[1].restart()
    wait_until(lambda: {v: sorted(a) for v, a in live_versions(c[1]).items()} == before, timeout=WAIT,
               what="the same single version after a restart")


# ---- the verbs on the wire (messaging.h framing; node.h NODE_VERB_SCHEMA_*) ----

def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_TABLE = _crc32c_table()
VERB_HELLO, VERB_SCHEMA_PULL, VERB_SCHEMA_PUSH = 0, 40, 41


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def frame(verb, payload, msg_id=0, flags=0):
    head = b"SIBM" + bytes([1, verb, flags, 0]) + struct.pack(">QI", msg_id, len(payload)) + payload
    return head + struct.pack(">I", crc32c(head))


def internode(node, cluster_name, port):
    """A raw internode connection to `node` that has said HELLO as 127.0.0.9."""
    import socket
    s = socket.create_connection((node.host, port), timeout=10)
    cn, host = cluster_name.encode(), b"127.0.0.9"
    hello = struct.pack(">H", len(cn)) + cn + struct.pack(">H", len(host)) + host + struct.pack(">H", port)
    s.sendall(frame(VERB_HELLO, hello))
    return s


def read_frame(sock):
    buf = b""
    while len(buf) < 20:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        buf += chunk
    verb, flags, msg_id, n = buf[5], buf[6], struct.unpack(">Q", buf[8:16])[0], struct.unpack(">I", buf[16:20])[0]
    while len(buf) < 20 + n + 4:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        buf += chunk
    assert struct.unpack(">I", buf[20 + n:24 + n])[0] == crc32c(buf[:20 + n])
    return verb, flags, msg_id, buf[20:20 + n]


def test_pull_answers_and_bad_pushes_change_nothing(make_cluster, clusters):
    c = make_cluster(size=2, config=FAST)
    c.wait_converged()
    s1 = pinned(clusters, c[0])
    s1.execute(KS % "wire")
    s1.execute("CREATE TABLE wire.t (k int PRIMARY KEY, v int)")
    wait_agreement(c.nodes)
    before = live_versions(c[0])
    sock = internode(c[0], c.cluster_name, c.storage_port)
    try:
        sock.sendall(frame(VERB_SCHEMA_PULL, b"", msg_id=7))
        verb, flags, msg_id, snap = read_frame(sock)
        assert (flags & 1, msg_id) == (1, 7)
        assert snap.startswith(b"SIBS\x01") and b"wire" in snap
        # garbage, a truncated snapshot, one with a definition filed under
        # another table's name, and the node's own snapshot again (nothing newer)
        i = snap.index(b"t\x04wire\x01t")   # kind 't', keyspace "wire", table "t"
        misfiled = snap[:i + 6] + b"\x01u" + snap[i + 8:]
        assert len(misfiled) == len(snap)
        for bad in (b"junk", snap[:-3], misfiled, snap):
            sock.sendall(frame(VERB_SCHEMA_PUSH, bad))
        sock.sendall(frame(VERB_SCHEMA_PULL, b"", msg_id=8))
        assert read_frame(sock)[2] == 8          # still served after all that
    finally:
        sock.close()
    assert live_versions(c[0]) == before
    assert columns(s1, "wire", "t") == {"k": "int", "v": "int"}
    assert table_row(s1, "wire", "u") is None
    assert c[0].log_text().count("not merged") >= 3
