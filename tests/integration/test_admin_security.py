"""Admin API access (issue 13 part 5): cross-site requests, the token, the
bind address and slow connections.

A web page in an operator's browser used to be able to POST /flush (200);
70 slow connections locked operators out. These tests drive the real node
over raw HTTP and through sibyltool.
"""

import http.client
import json
import os
import socket
import subprocess
import time

import pytest

from test_admin import sibyltool_bin, TOOL_TIMEOUT


def request(node, method, path, headers=None, timeout=10):
    """(status, parsed JSON body or text) of one request with exact headers."""
    c = http.client.HTTPConnection(node.host, node.admin_port, timeout=timeout)
    try:
        c.request(method, path, body=b"" if method == "POST" else None, headers=headers or {})
        r = c.getresponse()
        text = r.read().decode()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text
    finally:
        c.close()


def run_tool(node, *args, env=None):
    path = sibyltool_bin(node)
    if not os.access(path, os.X_OK):
        pytest.fail("sibyltool not found at %s" % path, pytrace=False)
    e = dict(os.environ)
    e.pop("SIBYL_ADMIN_TOKEN", None)
    e.update(env or {})
    return subprocess.run([path, "-h", node.host, "-p", str(node.admin_port)] + list(args),
                          capture_output=True, text=True, timeout=TOOL_TIMEOUT, stdin=subprocess.DEVNULL, env=e)


def test_cross_site_post_is_refused(node):
    own = "%s:%d" % (node.host, node.admin_port)
    # What a browser sends for a form POST from another site.
    st, body = request(node, "POST", "/flush", {"Origin": "http://evil.example",
                                                "Content-Type": "application/x-www-form-urlencoded"})
    assert st == 403, body
    assert "cross-origin" in body["error"]
    st, _ = request(node, "POST", "/compact", {"Origin": "null"})
    assert st == 403
    st, _ = request(node, "POST", "/flush", {"Sec-Fetch-Site": "cross-site"})
    assert st == 403
    # DNS rebinding: a name that resolves to the node is not the node's origin.
    st, _ = request(node, "GET", "/status", {"Host": "evil.example:%d" % node.admin_port})
    assert st == 403
    # The API's own origin, and clients that send no Origin, are served.
    st, _ = request(node, "POST", "/flush", {"Origin": "http://" + own, "Host": own})
    assert st == 200
    st, _ = request(node, "GET", "/status", {"Host": "localhost:%d" % node.admin_port})
    assert st == 200
    r = run_tool(node, "flush")
    assert r.returncode == 0, r.stderr
    r = run_tool(node, "status")
    assert r.returncode == 0 and node.host in r.stdout


def test_token_required_when_set(make_node, tmp_path):
    token = "s3cret-token-for-tests"
    node = make_node(admin_auth_token=token)
    st, body = request(node, "GET", "/status")
    assert st == 401, body
    st, _ = request(node, "GET", "/metrics")
    assert st == 401
    st, _ = request(node, "POST", "/flush", {"Authorization": "Bearer wrong"})
    assert st == 401
    st, _ = request(node, "GET", "/status", {"Authorization": "Bearer " + token})
    assert st == 200
    # sibyltool: refused without it, served with --token, a file or the env.
    r = run_tool(node, "status")
    assert r.returncode == 1 and "401" in r.stderr
    assert run_tool(node, "--token", token, "status").returncode == 0
    f = tmp_path / "tok"
    f.write_text(token + "\n")
    assert run_tool(node, "--token-file", str(f), "info").returncode == 0
    assert run_tool(node, "flush", env={"SIBYL_ADMIN_TOKEN": token}).returncode == 0


def test_token_file_on_the_node(make_node, tmp_path):
    f = tmp_path / "admin.token"
    f.write_text("from-a-file\n")
    node = make_node(admin_auth_token_file=str(f))
    assert request(node, "GET", "/info")[0] == 401
    assert request(node, "GET", "/info", {"Authorization": "Bearer from-a-file"})[0] == 200


def test_admin_binds_admin_address(make_node):
    # The CQL port answers on 127.0.0.2 while the admin API stays on 127.0.0.1.
    node = make_node(start=False)
    node.set_config(admin_address="127.0.0.1", listen_address="127.0.0.2", rpc_address="127.0.0.2")
    node.host = "127.0.0.2"
    node.start()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", node.admin_port), timeout=2).close()
    c = http.client.HTTPConnection("127.0.0.1", node.admin_port, timeout=10)
    c.request("GET", "/status")
    assert c.getresponse().status == 200
    c.close()


def test_slow_connections_do_not_lock_out_operators(make_node):
    node = make_node(admin_max_connections=8, admin_connection_timeout="2s")
    slow = []
    try:
        # 70 clients that send half a request and stall.
        for _ in range(70):
            try:
                s = socket.create_connection((node.host, node.admin_port), timeout=5)
                s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")
                slow.append(s)
            except OSError:
                pass
        time.sleep(0.3)
        # The operator is served at once, and again while they stay.
        for _ in range(3):
            r = run_tool(node, "status")
            assert r.returncode == 0, r.stderr
        st, _ = request(node, "GET", "/info", timeout=5)
        assert st == 200
        # Stalled connections are closed within the timeout.
        s = socket.create_connection((node.host, node.admin_port), timeout=5)
        slow.append(s)
        s.sendall(b"GET /status HTTP/1.1\r\n")
        s.settimeout(10)
        t0 = time.monotonic()
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        assert data == b"" and time.monotonic() - t0 < 9
    finally:
        for s in slow:
            s.close()
