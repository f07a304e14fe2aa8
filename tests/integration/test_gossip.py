"""Membership across real sibyld processes on 127.0.0.1..3: gossip
convergence, the phi-accrual detector marking a killed node DOWN and a
restarted one UP, GOSSIP_SHUTDOWN on a graceful stop, cluster names that keep
two clusters apart, and what drivers see (system.peers, host discovery,
STATUS_CHANGE events).

Gossip runs faster than Cassandra's fixed 1 s here (gossip_interval_ms, a
test-only Sibyl key) and with a lower phi_convict_threshold, so a silent node
is convicted in seconds; the rules are the same at the defaults.
Every node is stopped by pid at teardown (make_cluster).
"""

import os
import signal
import socket
import struct
import subprocess
import time

import pytest

import cqlframe as F
from conftest import wait_until
from sibyl_harness import admin_get

from cassandra.cluster import ExecutionProfile, EXEC_PROFILE_DEFAULT
from cassandra.policies import HostStateListener, WhiteListRoundRobinPolicy, ConstantReconnectionPolicy

FAST = {"gossip_interval_ms": 200, "phi_convict_threshold": 6}
TOOL_TIMEOUT = 30


def event_listener(node, events=("STATUS_CHANGE", "TOPOLOGY_CHANGE")):
    """A raw native-protocol connection REGISTERed for `events`."""
    c = F.RawConnection(node.host, node.port)
    c.startup()
    body = struct.pack(">H", len(events)) + b"".join(F.string(e) for e in events)
    f = c.request(F.OP_REGISTER, body, stream=1)
    assert f.opcode == F.OP_READY
    return c


def read_inet(r):
    size = r.u8()
    addr = socket.inet_ntop(socket.AF_INET if size == 4 else socket.AF_INET6, r.take(size))
    return addr, r.i32()


def wait_event(conn, kind, change, addr, timeout=60.0):
    """Reads EVENT frames until (kind, change, addr) arrives; bounded."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            f = conn.read_frame(timeout=max(0.05, deadline - time.monotonic()))
        except (socket.timeout, TimeoutError):
            break
        if f.opcode != F.OP_EVENT:
            continue
        r = F.Reader(f.body)
        ev = (r.string(), r.string(), read_inet(r))
        seen.append(ev)
        if ev[0] == kind and ev[1] == change and ev[2][0] == addr:
            return ev
    raise AssertionError("no %s %s for %s; events seen: %r" % (kind, change, addr, seen))


class Recorder(HostStateListener):
    """What the driver's host-state listeners are told."""

    def __init__(self):
        self.ups, self.downs, self.adds = [], [], []

    def on_up(self, host):
        self.ups.append(host.address)

    def on_down(self, host):
        self.downs.append(host.address)

    def on_add(self, host):
        self.adds.append(host.address)

    def on_remove(self, host):
        pass


def one_host_cluster(clusters, node):
    """A driver cluster that only ever queries `node` (so system.peers is
    that node's view)."""
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([node.host]), request_timeout=20)
    return clusters.cluster(node, execution_profiles={EXEC_PROFILE_DEFAULT: profile})


def sibyltool(node, *args):
    build = os.path.dirname(os.path.dirname(os.path.abspath(node.binary)))
    path = os.environ.get("SIBYLTOOL_BIN") or os.path.join(build, "tools", "sibyltool")
    p = subprocess.run([path, "-h", node.host, "-p", str(node.admin_port)] + list(args),
                       capture_output=True, text=True, timeout=TOOL_TIMEOUT, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_three_nodes_converge(make_cluster, clusters):
    c = make_cluster(config=FAST)
    views = c.wait_converged()
    assert all(set(v) == {"127.0.0.1", "127.0.0.2", "127.0.0.3"} for v in views.values())
    # a node whose seeds name another node joins a cluster, and says plainly
    # that it gets none of the existing data (no bootstrap streaming yet)
    joining = [n for n in c if "there is no bootstrap streaming yet" in n.log_text()]
    assert c[0] not in joining and c[1] in joining and c[2] in joining
    host_ids = {}
    for n in c:
        # gossipinfo: every endpoint, alive, with the values its owner published
        eps = {e["endpoint"]: e for e in admin_get(n.host, n.admin_port, "gossipinfo")["endpoints"]}
        assert set(eps) == set(c.addresses)
        for addr, e in eps.items():
            assert e["alive"], (n.host, addr)
            st = e["states"]
            assert st["STATUS"].startswith("NORMAL,")
            assert st["DC"] == "datacenter1" and st["RACK"] == "rack1"
            assert st["NATIVE_ADDRESS_AND_PORT"] == "%s:%d" % (addr, c.native_port)
            host_ids.setdefault(addr, st["HOST_ID"])
            assert host_ids[addr] == st["HOST_ID"]          # everyone agrees
        # ownership over the whole ring adds up to 100%
        st = admin_get(n.host, n.admin_port, "status")["nodes"]
        assert abs(sum(m["owns"] for m in st) - 100.0) < 0.01
        assert all(m["tokens"] == 8 for m in st)
        ring = admin_get(n.host, n.admin_port, "ring")["ring"]
        assert len(ring) == 24 and {e["endpoint"] for e in ring} == set(c.addresses)
    assert len(set(host_ids.values())) == 3

    # system.peers / peers_v2 on every node list the two others with tokens
    for n in c:
        s = one_host_cluster(clusters, n).connect()
        peers = {r.peer: r for r in s.execute("SELECT peer, rpc_address, host_id, data_center, tokens FROM system.peers")}
        assert set(peers) == set(c.addresses) - {n.host}
        for addr, r in peers.items():
            assert r.rpc_address == addr and str(r.host_id) == host_ids[addr]
            assert r.data_center == "datacenter1" and len(r.tokens) == 8
        local = s.execute("SELECT listen_port, broadcast_port, gossip_generation FROM system.local").one()
        assert local.listen_port == local.broadcast_port == c.storage_port
        v2 = list(s.execute("SELECT peer, peer_port, native_address, native_port FROM system.peers_v2"))
        assert {(r.peer, r.peer_port, r.native_address, r.native_port) for r in v2} == \
            {(a, c.storage_port, a, c.native_port) for a in set(c.addresses) - {n.host}}

    # the driver, given one contact point, discovers all three and their tokens
    cl = clusters.cluster(c[0])
    cl.connect()
    wait_until(lambda: len(cl.metadata.all_hosts()) == 3 and all(h.is_up for h in cl.metadata.all_hosts()),
               timeout=30, what="driver sees 3 hosts up")
    assert {h.address for h in cl.metadata.all_hosts()} == set(c.addresses)
    assert len(cl.metadata.token_map.ring) == 24

    # DESCRIBE CLUSTER (cqlsh) walks the whole ring with the keyspace's
    # replication.
    s = clusters.cluster(c[0], max_schema_agreement_wait=0, execution_profiles={EXEC_PROFILE_DEFAULT: ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy([c[0].host]), request_timeout=20)}).connect()
    s.execute("CREATE KEYSPACE described WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}")
    s.execute("USE described")
    own = s.execute("DESCRIBE CLUSTER").one().range_ownership
    assert len(own) == 24
    eps = {"%s:%d" % (a, c.storage_port) for a in c.addresses}
    assert all(len(v) == 2 and len(set(v)) == 2 and set(v) <= eps for v in own.values()), own

    # /describering on c[0] (which has the keyspace): the 24 ranges of the ring
    rings = admin_get(c[0].host, c[0].admin_port, "describering/described")["ranges"]
    assert len(rings) == 24
    assert all(len(set(x["endpoints"])) == 2 and set(x["endpoints"]) <= set(c.addresses) for x in rings), rings
    assert all(d["datacenter"] == "datacenter1" for x in rings for d in x["endpoint_details"])

    out = sibyltool(c[1], "status")
    for addr in c.addresses:
        assert any(line.startswith("UN") and addr in line for line in out.splitlines()), out
    out = sibyltool(c[1], "ring")
    rows = [l for l in out.splitlines() if l.startswith("127.0.0.")]
    assert len(rows) == 24 and {r.split()[0] for r in rows} == set(c.addresses), out
    assert all(" Up " in r and " Normal " in r for r in rows), out
    out = sibyltool(c[1], "gossipinfo")
    assert all("/%s\n" % a in out for a in c.addresses), out


def test_kill9_goes_down_and_restart_comes_back_up(make_cluster, clusters):
    c = make_cluster(config=FAST)
    c.wait_converged()
    rec = Recorder()
    cl = clusters.cluster(c[0], reconnection_policy=ConstantReconnectionPolicy(0.5, max_attempts=None))
    cl.register_listener(rec)
    cl.connect()
    all_up = lambda: len(cl.metadata.all_hosts()) == 3 and all(h.is_up for h in cl.metadata.all_hosts())
    wait_until(all_up, timeout=30, what="driver sees 3 hosts up")
    # UP lines so far: a joining node's first start is seen UP twice (its
    # ring probe's gossip, then its real start)
    ups = {n.host: n.log_text().count("/127.0.0.3 is now UP") for n in c[:2]}
    with event_listener(c[0]) as ev:
        c[2].kill9()
        for n in c[:2]:
            c.wait_log(n, "/127.0.0.3 is now DOWN")
            assert c.status(n)["127.0.0.3"] == "DN"
        assert "phi" in c[0].log_text().split("/127.0.0.3 is now DOWN", 1)[1].splitlines()[0]
        wait_event(ev, "STATUS_CHANGE", "DOWN", "127.0.0.3")
        wait_until(lambda: "127.0.0.3" in rec.downs, timeout=30, what="driver marks 127.0.0.3 down")

        c[2].start()
        for n in c[:2]:
            c.wait_log(n, "/127.0.0.3 is now UP", count=ups[n.host] + 1)
        wait_event(ev, "STATUS_CHANGE", "UP", "127.0.0.3")
    c.wait_converged()
    wait_until(all_up, timeout=30, what="driver sees 127.0.0.3 up again (%r)" % rec.__dict__)
    # the restarted node learned the others back from its seed
    assert set(c.status(c[2])) == set(c.addresses)


def test_graceful_stop_is_announced(make_cluster):
    # A threshold this high needs ~10 s of silence to convict: the DOWN below
    # comes from the shutdown message, and the log says so.
    c = make_cluster(config={"gossip_interval_ms": 200, "phi_convict_threshold": 16})
    c.wait_converged()
    ups = c[0].log_text().count("/127.0.0.2 is now UP")
    with event_listener(c[0]) as ev:
        c[1].stop()
        assert "announced shutdown to 2 live peers" in c[1].log_text()
        for n in (c[0], c[2]):
            c.wait_log(n, "/127.0.0.2 is now DOWN (announced its shutdown)")
            assert c.status(n)["127.0.0.2"] == "DN"
        wait_event(ev, "STATUS_CHANGE", "DOWN", "127.0.0.2")
        # a stopped node stays in system.peers (drivers keep it, as with Cassandra)
        eps = {e["endpoint"]: e for e in admin_get(c[0].host, c[0].admin_port, "gossipinfo")["endpoints"]}
        assert eps["127.0.0.2"]["states"]["STATUS"] == "shutdown,true"
        c[1].start()
        c.wait_log(c[0], "/127.0.0.2 is now UP", count=ups + 1)
    c.wait_converged()


def test_two_clusters_do_not_merge(make_cluster):
    a = make_cluster(size=2, cluster_name="Alpha", config=FAST)
    a.wait_converged()
    # Beta's only node uses Alpha's first node as its seed, on the same ports.
    b = make_cluster(size=1, first=3, cluster_name="Beta", config=FAST, seeds="127.0.0.1",
                     ports=(a.native_port, a.storage_port, a.admin_port))
    a.wait_log(a[0], "refusing /127.0.0.3: its cluster name 'Beta' is not ours ('Alpha')")
    time.sleep(2)   # ten more rounds of Beta knocking
    assert set(a.status(a[0])) == {"127.0.0.1", "127.0.0.2"}
    assert set(a.status(a[1])) == {"127.0.0.1", "127.0.0.2"}
    assert set(b.status(b[0])) == {"127.0.0.3"}
    assert "127.0.0.3" not in a[0].log_text().replace("refusing /127.0.0.3", "")


def test_new_node_is_announced_to_drivers(make_cluster, clusters):
    c = make_cluster(config=FAST, start=False)
    c[0].start()
    c[1].start()
    c.wait_converged(nodes=c[:2])
    cl = clusters.cluster(c[0])
    cl.connect()
    wait_until(lambda: len(cl.metadata.all_hosts()) == 2, timeout=30, what="driver sees 2 hosts")
    with event_listener(c[0]) as ev:
        c[2].start()
        wait_event(ev, "TOPOLOGY_CHANGE", "NEW_NODE", "127.0.0.3")
    c.wait_converged()
    # the driver refreshes its host list on the event and finds the new node
    wait_until(lambda: len(cl.metadata.all_hosts()) == 3 and all(h.is_up for h in cl.metadata.all_hosts()),
               timeout=30, what="driver discovers 127.0.0.3")
    assert len(cl.metadata.token_map.ring) == 24


def test_sigstop_is_down_and_sigcont_up_again(make_cluster):
    c = make_cluster(config=FAST)
    c.wait_converged()
    ups = {n.host: n.log_text().count("/127.0.0.3 is now UP") for n in c[:2]}
    pid = c[2].proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        # frozen: its sockets stay open but it never answers nor gossips
        for n in c[:2]:
            c.wait_log(n, "/127.0.0.3 is now DOWN")
    finally:
        os.kill(pid, signal.SIGCONT)
    for n in c[:2]:
        c.wait_log(n, "/127.0.0.3 is now UP", count=ups[n.host] + 1)
    c.wait_converged()
