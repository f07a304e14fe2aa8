"""A minimal CQL native-protocol frame client for protocol-level tests.

Enough of protocol v4 (header, OPTIONS, STARTUP, QUERY, PREPARE, EXECUTE and
the ERROR body) to send well-formed and deliberately broken frames and read
the server's answers. Independent of the driver on purpose: these tests check
what the server does with input no driver would send.

Header, 9 bytes big-endian: version u8 | flags u8 | stream i16 | opcode u8 | length u32.
"""

import socket
import struct
import time

OP_ERROR, OP_STARTUP, OP_READY, OP_AUTHENTICATE = 0x00, 0x01, 0x02, 0x03
OP_OPTIONS, OP_SUPPORTED, OP_QUERY, OP_RESULT = 0x05, 0x06, 0x07, 0x08
OP_PREPARE, OP_EXECUTE, OP_REGISTER, OP_EVENT, OP_BATCH = 0x09, 0x0A, 0x0B, 0x0C, 0x0D

ERR_PROTOCOL = 0x000A
ERR_UNAVAILABLE = 0x1000
ERR_SYNTAX = 0x2000
ERR_INVALID = 0x2200
ERR_ALREADY_EXISTS = 0x2400
ERR_UNPREPARED = 0x2500

RESULT_VOID, RESULT_ROWS, RESULT_SET_KEYSPACE, RESULT_PREPARED, RESULT_SCHEMA_CHANGE = 1, 2, 3, 4, 5

CL_ONE = 0x0001

MAX_FRAME_BODY = 16 * 1024 * 1024


def header(version, opcode, length, stream=0, flags=0):
    return struct.pack(">BBhBI", version, flags, stream, opcode, length)


def frame(opcode, body=b"", stream=0, version=0x04, flags=0):
    return header(version, opcode, len(body), stream, flags) + body


def string(s):
    b = s.encode("utf-8")
    return struct.pack(">H", len(b)) + b


def long_string(s):
    b = s.encode("utf-8")
    return struct.pack(">i", len(b)) + b


def string_map(d):
    out = struct.pack(">H", len(d))
    for k, v in d.items():
        out += string(k) + string(v)
    return out


def short_bytes(b):
    return struct.pack(">H", len(b)) + b


def query_body(cql, consistency=CL_ONE, flags=0, extra=b""):
    return long_string(cql) + struct.pack(">HB", consistency, flags) + extra


def startup_body(compression=None):
    opts = {"CQL_VERSION": "3.0.0"}
    if compression:
        opts["COMPRESSION"] = compression
    return string_map(opts)


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("body too short: need %d bytes at %d of %d" % (n, self.pos, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def string(self):
        return self.take(self.u16()).decode("utf-8", "replace")

    def string_list(self):
        return [self.string() for _ in range(self.u16())]

    def string_multimap(self):
        return {self.string(): self.string_list() for _ in range(self.u16())}

    def short_bytes(self):
        return self.take(self.u16())


class Frame:
    def __init__(self, version, flags, stream, opcode, body):
        self.version, self.flags, self.stream, self.opcode, self.body = version, flags, stream, opcode, body

    def error(self):
        """(code, message, reader positioned at the extras) of an ERROR frame."""
        assert self.opcode == OP_ERROR, "expected ERROR, got opcode 0x%02x" % self.opcode
        r = Reader(self.body)
        code = r.i32()
        msg = r.string()
        return code, msg, r

    def __repr__(self):
        s = "Frame(version=0x%02x flags=0x%02x stream=%d opcode=0x%02x len=%d" % (
            self.version, self.flags, self.stream, self.opcode, len(self.body))
        if self.opcode == OP_ERROR:
            try:
                code, msg, _ = self.error()
                s += " error=0x%04x %r" % (code, msg)
            except Exception:  # a broken error body is still worth printing
                pass
        return s + ")"


class Closed(Exception):
    """The server closed the connection."""


class RawConnection:
    """A blocking socket speaking raw frames, with bounded reads."""

    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out waiting for %d bytes (have %d)" % (n, len(self.buf)))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("connection closed by server (had %d of %d bytes)" % (len(self.buf), n))
            self.buf += chunk

    def read_frame(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        self._fill(9, deadline)
        version, flags, stream, opcode, length = struct.unpack(">BBhBI", self.buf[:9])
        self._fill(9 + length, deadline)
        body = self.buf[9:9 + length]
        self.buf = self.buf[9 + length:]
        return Frame(version, flags, stream, opcode, body)

    def request(self, opcode, body=b"", stream=0, timeout=None):
        self.send(frame(opcode, body, stream))
        return self.read_frame(timeout)

    def startup(self):
        f = self.request(OP_STARTUP, startup_body(), stream=0)
        assert f.opcode == OP_READY, "STARTUP answered %r" % f
        return f

    def wait_closed(self, timeout=5.0):
        """True if the server closes the connection within `timeout`
        (frames received before the close are returned via self.pending)."""
        deadline = time.monotonic() + timeout
        self.pending = []
        while time.monotonic() < deadline:
            try:
                self.pending.append(self.read_frame(timeout=max(0.01, deadline - time.monotonic())))
            except Closed:
                return True
            except (socket.timeout, TimeoutError):
                return False
        return False


def decode_supported(f):
    assert f.opcode == OP_SUPPORTED, "expected SUPPORTED, got %r" % f
    return Reader(f.body).string_multimap()


def result_kind(f):
    assert f.opcode == OP_RESULT, "expected RESULT, got %r" % f
    return Reader(f.body).i32()
