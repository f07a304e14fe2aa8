"""Protocol-level input no driver sends: wrong versions, unknown opcodes,
oversized and truncated frames, malformed bodies, garbage. Each gets a
protocol error (or a close), and the server and its other connections carry on.
Also the handshake facts drivers depend on (SUPPORTED keys, STARTUP first,
stream ids, out-of-order pipelining)."""

import random
import struct

import pytest

import cqlframe as F


def assert_server_alive(node, clusters, earlier=None):
    """A new driver session works, and an earlier raw connection still answers."""
    if earlier is not None:
        f = earlier.request(F.OP_OPTIONS, stream=77)
        assert f.opcode == F.OP_SUPPORTED and f.stream == 77, "earlier connection broken: %r" % f
    c, s = clusters.connect(node, protocol_version=4)
    assert s.execute("SELECT key FROM system.local WHERE key = 'local'").one().key == "local"
    c.shutdown()


@pytest.fixture
def bystander(node):
    """A healthy connection opened before the bad input, checked after it."""
    conn = F.RawConnection(node.host, node.port)
    conn.startup()
    yield conn
    conn.close()


def test_options_supported(node):
    with F.RawConnection(node.host, node.port) as c:
        f = c.request(F.OP_OPTIONS, stream=5)
        assert (f.version, f.stream) == (0x84, 5)
        opts = F.decode_supported(f)
        assert "CQL_VERSION" in opts and opts["CQL_VERSION"][0].startswith("3.")
        assert "COMPRESSION" in opts                    # may be empty, must exist
        assert "lz4" in opts["COMPRESSION"]


def test_startup_first_without_options(node):
    # The Node.js driver sends STARTUP as its very first frame.
    with F.RawConnection(node.host, node.port) as c:
        f = c.request(F.OP_STARTUP, F.startup_body(), stream=1)
        assert (f.version, f.opcode, f.stream, f.body) == (0x84, F.OP_READY, 1, b"")
        f = c.request(F.OP_QUERY, F.query_body("SELECT key FROM system.local"), stream=2)
        assert F.result_kind(f) == F.RESULT_ROWS and f.stream == 2


def test_startup_unknown_compression_is_refused(node, clusters):
    with F.RawConnection(node.host, node.port) as c:
        f = c.request(F.OP_STARTUP, F.startup_body(compression="zstd-nope"), stream=1)
        code, msg, _ = f.error()
        assert code == F.ERR_PROTOCOL
    assert_server_alive(node, clusters)


def test_query_before_startup_is_refused(node, clusters):
    with F.RawConnection(node.host, node.port) as c:
        f = c.request(F.OP_QUERY, F.query_body("SELECT key FROM system.local"), stream=4)
        assert f.opcode == F.OP_ERROR and f.stream == 4
        code, msg, _ = f.error()
        assert code == F.ERR_PROTOCOL
    assert_server_alive(node, clusters)


def test_pipelined_streams(node):
    # Many requests in flight on one connection, each answered once on its
    # own stream id (order not guaranteed).
    with F.RawConnection(node.host, node.port) as c:
        c.startup()
        streams = [1, 2, 300, 32767, 9, 0]
        data = b""
        for s in streams:
            if s % 2:
                data += F.frame(F.OP_OPTIONS, stream=s)
            else:
                data += F.frame(F.OP_QUERY, F.query_body("SELECT release_version FROM system.local"), stream=s)
        c.send(data)
        got = {}
        for _ in streams:
            f = c.read_frame()
            assert f.stream not in got, "stream %d answered twice" % f.stream
            got[f.stream] = f.opcode
        assert set(got) == set(streams)
        for s in streams:
            assert got[s] == (F.OP_SUPPORTED if s % 2 else F.OP_RESULT)


@pytest.mark.parametrize("version", [0x05, 0x06, 0x41, 0x42, 0x7f])
def test_unsupported_version(node, clusters, bystander, version):
    with F.RawConnection(node.host, node.port) as c:
        c.send(F.frame(F.OP_OPTIONS, stream=3, version=version))
        f = c.read_frame()
        assert f.version == 0x84, "reply version byte 0x%02x (drivers need 0x84)" % f.version
        assert f.opcode == F.OP_ERROR
        assert f.stream == 3
        code, msg, _ = f.error()
        assert code == F.ERR_PROTOCOL
        assert "Invalid or unsupported protocol version" in msg
        assert str(version) in msg                      # names what it got, e.g. (66)
    assert_server_alive(node, clusters, bystander)


def test_version_error_mid_connection(node, clusters, bystander):
    with F.RawConnection(node.host, node.port) as c:
        c.startup()
        c.send(F.frame(F.OP_OPTIONS, stream=8, version=0x05))
        f = c.read_frame()
        code, msg, _ = f.error()
        assert code == F.ERR_PROTOCOL and f.version == 0x84
    assert_server_alive(node, clusters, bystander)


@pytest.mark.parametrize("opcode", [0x04, 0x1F, 0xFF, F.OP_RESULT, F.OP_READY])
def test_unknown_or_response_opcode(node, clusters, bystander, opcode):
    with F.RawConnection(node.host, node.port) as c:
        c.startup()
        f = c.request(opcode, b"", stream=12)
        assert (f.version, f.opcode, f.stream) == (0x84, F.OP_ERROR, 12)
        code, msg, _ = f.error()
        assert code == F.ERR_PROTOCOL
        # The server may close the connection; if it keeps it, it still works.
        try:
            g = c.request(F.OP_OPTIONS, stream=13)
            assert g.opcode == F.OP_SUPPORTED and g.stream == 13
        except F.Closed:
            pass
    assert_server_alive(node, clusters, bystander)


def test_frame_too_large(node, clusters, bystander):
    with F.RawConnection(node.host, node.port) as c:
        c.startup()
        # Only the header: the server must answer from the length alone,
        # without waiting for 16 MiB of body.
        c.send(F.header(0x04, F.OP_QUERY, F.MAX_FRAME_BODY + 1, stream=21))
        f = c.read_frame(timeout=10)
        assert (f.version, f.opcode) == (0x84, F.OP_ERROR)
        code, msg, _ = f.error()
        assert code == F.ERR_PROTOCOL
        assert c.wait_closed(timeout=10), "connection not closed after an oversized frame"
    assert_server_alive(node, clusters, bystander)


def test_huge_length_field(node, clusters, bystander):
    with F.RawConnection(node.host, node.port) as c:
        c.send(F.header(0x04, F.OP_STARTUP, 0xFFFFFFFF, stream=1))
        f = c.read_frame(timeout=10)
        assert f.opcode == F.OP_ERROR and f.error()[0] == F.ERR_PROTOCOL
        assert c.wait_closed(timeout=10)
    assert_server_alive(node, clusters, bystander)


def test_truncated_frame_then_eof(node, clusters, bystander):
    with F.RawConnection(node.host, node.port) as c:
        c.startup()
        body = F.query_body("SELECT key FROM system.local")
        c.send(F.header(0x04, F.OP_QUERY, len(body), stream=5) + body[:7])
        c.sock.shutdown(1)                               # SHUT_WR: we send no more
        assert c.wait_closed(timeout=10), "server kept a half-frame connection open after EOF"
        for f in c.pending:                              # an error first is fine, a result is not
            assert f.opcode == F.OP_ERROR
    assert_server_alive(node, clusters, bystander)


def test_truncated_header_then_eof(node, clusters, bystander):
    with F.RawConnection(node.host, node.port) as c:
        c.send(b"\x04\x00\x00")
        c.sock.shutdown(1)
        assert c.wait_closed(timeout=10)
    assert_server_alive(node, clusters, bystander)


@pytest.mark.parametrize("name,opcode,body", [
    ("long string longer than body", F.OP_QUERY, struct.pack(">i", 1000) + b"SELECT"),
    ("negative string length", F.OP_QUERY, struct.pack(">i", -5) + b"\x00\x01\x00"),
    ("params missing", F.OP_QUERY, F.long_string("SELECT key FROM system.local")),
    ("values count beyond body", F.OP_QUERY,
     F.long_string("SELECT key FROM system.local") + struct.pack(">HBH", 1, 0x01, 50)),
    ("paging state beyond body", F.OP_QUERY,
     F.long_string("SELECT key FROM system.local") + struct.pack(">HBi", 1, 0x0C, 10) + struct.pack(">i", 999)),
    ("execute id beyond body", F.OP_EXECUTE, struct.pack(">H", 300) + b"\x01\x02"),
    ("prepare empty body", F.OP_PREPARE, b""),
    ("batch count beyond body", F.OP_BATCH, struct.pack(">BH", 0, 40) + b"\x00"),
    ("register bad list", F.OP_REGISTER, struct.pack(">H", 3) + F.string("SCHEMA_CHANGE")),
    ("startup map beyond body", F.OP_STARTUP, struct.pack(">H", 9) + F.string("CQL_VERSION")),
    ("invalid utf8 query", F.OP_QUERY, struct.pack(">i", 4) + b"\xff\xfe\xfd\xfc" + struct.pack(">HB", 1, 0)),
])
def test_malformed_bodies(node, clusters, bystander, name, opcode, body):
    with F.RawConnection(node.host, node.port) as c:
        if opcode != F.OP_STARTUP:
            c.startup()
        f = c.request(opcode, body, stream=31)
        assert (f.version, f.opcode, f.stream) == (0x84, F.OP_ERROR, 31), name
        code, msg, _ = f.error()
        # Protocol error for framing problems; a bad statement text may be
        # answered as a syntax/invalid error instead.
        assert code in (F.ERR_PROTOCOL, F.ERR_SYNTAX, F.ERR_INVALID), "%s: 0x%04x %s" % (name, code, msg)
    assert_server_alive(node, clusters, bystander)


@pytest.mark.parametrize("seed", range(6))
def test_garbage_bytes(node, clusters, bystander, seed):
    rnd = random.Random(seed)
    junk = bytes(rnd.randrange(256) for _ in range(rnd.choice([1, 9, 64, 4096])))
    with F.RawConnection(node.host, node.port) as c:
        try:
            c.send(junk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        closed = c.wait_closed(timeout=3)
        for f in c.pending:
            assert f.opcode == F.OP_ERROR and f.version == 0x84, "answer to garbage: %r" % f
        if not closed:
            # Still open: the server waits for the rest of a frame it believes
            # in; closing our side must end it cleanly.
            c.sock.shutdown(1)
            assert c.wait_closed(timeout=10)
    assert_server_alive(node, clusters, bystander)


def test_http_request(node, clusters, bystander):
    with F.RawConnection(node.host, node.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        f = c.read_frame()
        assert f.version == 0x84 and f.opcode == F.OP_ERROR
        code, msg, _ = f.error()
        assert code == F.ERR_PROTOCOL and "Invalid or unsupported protocol version" in msg
    assert_server_alive(node, clusters, bystander)


def test_many_abrupt_disconnects(node, clusters, bystander):
    for i in range(50):
        c = F.RawConnection(node.host, node.port)
        if i % 3 == 0:
            c.send(F.frame(F.OP_STARTUP, F.startup_body(), stream=1))
        elif i % 3 == 1:
            c.send(F.frame(F.OP_QUERY, F.query_body("SELECT * FROM system.local"), stream=1)[:12])
        c.close()
    assert_server_alive(node, clusters, bystander)


def schema_change(r):
    """(change_type, target, keyspace[, name]) from a Schema_change body."""
    change, target, ks = r.string(), r.string(), r.string()
    if target == "KEYSPACE":
        return (change, target, ks)
    return (change, target, ks, r.string())


def test_result_kinds_on_the_wire(node):
    with F.RawConnection(node.host, node.port) as c:
        c.startup()
        f = c.request(F.OP_QUERY, F.query_body(
            "CREATE KEYSPACE rk WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"), stream=1)
        r = F.Reader(f.body)
        assert r.i32() == F.RESULT_SCHEMA_CHANGE
        assert schema_change(r) == ("CREATED", "KEYSPACE", "rk")
        f = c.request(F.OP_QUERY, F.query_body("CREATE TABLE rk.t (k int PRIMARY KEY, v text)"), stream=2)
        r = F.Reader(f.body)
        assert r.i32() == F.RESULT_SCHEMA_CHANGE
        assert schema_change(r) == ("CREATED", "TABLE", "rk", "t")
        f = c.request(F.OP_QUERY, F.query_body("USE rk"), stream=3)
        r = F.Reader(f.body)
        assert (r.i32(), r.string()) == (F.RESULT_SET_KEYSPACE, "rk")
        f = c.request(F.OP_QUERY, F.query_body("INSERT INTO t (k, v) VALUES (1, 'one')"), stream=4)
        assert F.result_kind(f) == F.RESULT_VOID and len(f.body) == 4
        f = c.request(F.OP_QUERY, F.query_body("SELECT k, v FROM t"), stream=5)
        r = F.Reader(f.body)
        assert r.i32() == F.RESULT_ROWS
        flags, ncols = r.i32(), r.i32()
        assert ncols == 2 and not flags & 0x0002                # no more pages
        assert flags & 0x0001                                    # global table spec
        assert (r.string(), r.string()) == ("rk", "t")
        assert (r.string(), r.u16()) == ("k", 0x0009)            # int
        assert (r.string(), r.u16()) == ("v", 0x000D)            # varchar
        assert r.i32() == 1                                      # one row
        assert r.take(r.i32()) == b"\x00\x00\x00\x01" and r.take(r.i32()) == b"one"
        f = c.request(F.OP_PREPARE, F.long_string("SELECT v FROM rk.t WHERE k = ?"), stream=6)
        r = F.Reader(f.body)
        assert r.i32() == F.RESULT_PREPARED
        qid = r.short_bytes()
        assert qid
        r.i32()                                                  # flags
        nbind, pk_count = r.i32(), r.i32()
        assert (nbind, pk_count, r.u16()) == (1, 1, 0)           # pk_index 0
        # EXECUTE it with one bound value (flags 0x01 VALUES).
        body = F.short_bytes(qid) + struct.pack(">HBH", 1, 0x01, 1) + struct.pack(">i", 4) + b"\x00\x00\x00\x01"
        f = c.request(F.OP_EXECUTE, body, stream=7)
        assert F.result_kind(f) == F.RESULT_ROWS


def test_register_gets_schema_change_events(node):
    with F.RawConnection(node.host, node.port) as listener, F.RawConnection(node.host, node.port) as actor:
        listener.startup()
        body = struct.pack(">H", 1) + F.string("SCHEMA_CHANGE")
        f = listener.request(F.OP_REGISTER, body, stream=1)
        assert f.opcode == F.OP_READY and f.stream == 1
        actor.startup()
        f = actor.request(F.OP_QUERY, F.query_body(
            "CREATE KEYSPACE evraw WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"), stream=1)
        assert F.result_kind(f) == F.RESULT_SCHEMA_CHANGE
        ev = listener.read_frame(timeout=10)
        assert (ev.version, ev.opcode, ev.stream) == (0x84, F.OP_EVENT, -1)
        r = F.Reader(ev.body)
        assert r.string() == "SCHEMA_CHANGE"
        assert schema_change(r) == ("CREATED", "KEYSPACE", "evraw")
        actor.request(F.OP_QUERY, F.query_body("CREATE TABLE evraw.t (k int PRIMARY KEY)"), stream=2)
        ev = listener.read_frame(timeout=10)
        r = F.Reader(ev.body)
        assert (ev.opcode, r.string()) == (F.OP_EVENT, "SCHEMA_CHANGE")
        assert schema_change(r) == ("CREATED", "TABLE", "evraw", "t")
        # The actor, which did not register, gets no event frames.
        f = actor.request(F.OP_OPTIONS, stream=3)
        assert f.opcode == F.OP_SUPPORTED and f.stream == 3
