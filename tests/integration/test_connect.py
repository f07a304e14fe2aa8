"""Connecting with the unmodified python driver: version negotiation, lz4,
system tables the driver reads, schema agreement, token map."""

import pytest

from cassandra import ProtocolVersion
from cassandra.cluster import NoHostAvailable
from cassandra.metadata import Murmur3Token

from conftest import LOCAL_DC

MURMUR3 = "org.apache.cassandra.dht.Murmur3Partitioner"


def roundtrip(session, ks, value="hello"):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v text)" % ks)
    session.execute("INSERT INTO %s.t (k, v) VALUES (1, %%s)" % ks, [value])
    rows = list(session.execute("SELECT k, v FROM %s.t WHERE k = 1" % ks))
    assert [(r.k, r.v) for r in rows] == [(1, value)]


def make_ks(session, name):
    session.execute("CREATE KEYSPACE %s WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}" % name)


def test_default_negotiation_lands_on_v4(node, clusters):
    # py 3.25 opens with 0x42 (DSE_V2) and steps down on the server's
    # "Invalid or unsupported protocol version" error until it reaches v4.
    cluster, session = clusters.connect(node)
    assert cluster.protocol_version == ProtocolVersion.V4
    make_ks(session, "neg")
    roundtrip(session, "neg")


def test_explicit_v4(node, clusters):
    cluster, session = clusters.connect(node, protocol_version=4)
    assert cluster.protocol_version == 4
    make_ks(session, "v4")
    roundtrip(session, "v4")


def test_explicit_v5_is_refused_not_downgraded(node, clusters):
    # An explicitly chosen version the server lacks is an error in the driver
    # (no downgrade), so this only passes if the server rejects v5 cleanly.
    c = clusters.cluster(node, protocol_version=5)
    with pytest.raises(NoHostAvailable):
        c.connect()
    # ...and the server is fine afterwards.
    cluster, session = clusters.connect(node, protocol_version=4)
    assert session.execute("SELECT release_version FROM system.local").one() is not None


@pytest.mark.parametrize("protocol_version", [None, 4])
def test_lz4_compression(node, clusters, protocol_version):
    pytest.importorskip("lz4.block")
    kw = {"compression": "lz4"}
    if protocol_version:
        kw["protocol_version"] = protocol_version
    cluster, session = clusters.connect(node, **kw)
    conn = cluster.control_connection._connection
    assert conn.compressor is not None, "driver did not enable lz4 (server SUPPORTED lacks it?)"
    make_ks(session, "lz")
    # Large, compressible and incompressible values cross the compressed path
    # in both directions.
    big = "sibyl " * 40000
    roundtrip(session, "lz", big)
    import os
    blob = os.urandom(100000)
    session.execute("CREATE TABLE lz.b (k int PRIMARY KEY, v blob)")
    session.execute("INSERT INTO lz.b (k, v) VALUES (1, %s)", [blob])
    assert session.execute("SELECT v FROM lz.b WHERE k = 1").one().v == blob


def test_compression_true_picks_lz4(node, clusters):
    pytest.importorskip("lz4.block")
    cluster, session = clusters.connect(node, compression=True)
    assert cluster.control_connection._connection.compressor is not None
    assert session.execute("SELECT key FROM system.local WHERE key = 'local'").one().key == "local"


def test_system_local(node, session):
    row = session.execute("SELECT * FROM system.local WHERE key = 'local'").one()
    assert row is not None
    assert row.key == "local"
    assert row.cluster_name == node.cluster_name       # from the config file
    assert row.partitioner == MURMUR3
    assert row.data_center == LOCAL_DC
    assert row.rack == "rack1"
    assert row.release_version.startswith("4.1.")
    assert row.cql_version.startswith("3.")
    assert row.schema_version is not None
    assert row.host_id is not None
    assert row.tokens and len(row.tokens) == node.num_tokens
    for t in row.tokens:
        v = int(t)                                    # decimal strings
        assert -2 ** 63 <= v < 2 ** 63


def test_system_peers_empty_on_one_node(session):
    assert list(session.execute("SELECT * FROM system.peers")) == []


def test_schema_version_changes_with_ddl(session):
    q = "SELECT schema_version FROM system.local WHERE key = 'local'"
    v1 = session.execute(q).one().schema_version
    make_ks(session, "sv")
    v2 = session.execute(q).one().schema_version
    assert v1 is not None and v2 is not None and v1 != v2
    session.execute("CREATE TABLE sv.t (k int PRIMARY KEY)")
    v3 = session.execute(q).one().schema_version
    assert v3 not in (v1, v2)


def test_schema_agreement(cluster, session):
    assert cluster.control_connection.wait_for_schema_agreement() is True
    rs = session.execute("CREATE KEYSPACE agree WITH replication = "
                         "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    assert rs.response_future.is_schema_agreed is True
    rs = session.execute("CREATE TABLE agree.t (k int PRIMARY KEY, v int)")
    assert rs.response_future.is_schema_agreed is True
    assert cluster.control_connection.wait_for_schema_agreement() is True


def test_host_metadata(node, cluster, session):
    hosts = cluster.metadata.all_hosts()
    assert len(hosts) == 1
    h = hosts[0]
    assert h.address == node.host
    assert h.datacenter == LOCAL_DC
    assert h.rack == "rack1"
    assert h.is_up
    assert str(h.release_version).startswith("4.")
    assert cluster.metadata.cluster_name == node.cluster_name


def test_token_map(node, cluster, session):
    make_ks(session, "tm")
    cluster.refresh_schema_metadata()
    md = cluster.metadata
    assert md.partitioner == MURMUR3
    tm = md.token_map
    assert tm is not None, "driver built no token map"
    assert tm.token_class is Murmur3Token
    assert len(tm.ring) == node.num_tokens
    host = md.all_hosts()[0]
    for key in (b"foo", b"\x00\x00\x00\x01", b"\xff\xff\xff"):
        tok = Murmur3Token.from_key(key)
        assert tm.get_replicas("tm", tok) == [host]


def test_murmur3_reference_vectors():
    # The driver's own murmur3 against the vectors in docs/protocol.md: if this fails
    # the token-order checks elsewhere would be meaningless.
    assert Murmur3Token.hash_fn(b"foo") == -2129773440516405919
    assert Murmur3Token.hash_fn(b"\xff\xff\xff") == -9154616442117352147
    assert Murmur3Token.hash_fn(bytes.fromhex("000400000001000003666f6f00")) == -5247490290428947122


def test_connect_with_keyspace_and_use(node, clusters, session):
    make_ks(session, "usek")
    session.execute("CREATE TABLE usek.t (k int PRIMARY KEY, v int)")
    session.execute("INSERT INTO usek.t (k, v) VALUES (1, 10)")
    c2, s2 = clusters.connect(node, keyspace="usek")
    assert s2.keyspace == "usek"
    assert s2.execute("SELECT v FROM t WHERE k = 1").one().v == 10


def test_many_sessions(node, clusters):
    # Several independent clients at once (each with a control connection and
    # a pool) all work.
    sessions = [clusters.connect(node, protocol_version=4)[1] for _ in range(4)]
    make_ks(sessions[0], "many")
    sessions[0].execute("CREATE TABLE many.t (k int PRIMARY KEY, v int)")
    futures = [s.execute_async("INSERT INTO many.t (k, v) VALUES (%s, %s)", [i, i])
               for i, s in enumerate(sessions * 25)]
    for f in futures:
        f.result()
    for s in sessions:
        assert s.execute("SELECT COUNT(*) FROM many.t").one()[0] == 100
