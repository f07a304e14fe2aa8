"""sibyltool removenode <host id> (nodetool removenode): a dead node leaves
the ring. The node asked gossips the removal (STATUS removed,<host id>,
<expiry> in a new generation of the dead node's state); every node drops it
from its ring, from system.peers / peers_v2 and from /status, and drivers
registered for events get TOPOLOGY_CHANGE REMOVED_NODE. A live node, the
node itself and unknown ids are refused with Cassandra's messages. The
removed node, restarted with its old data (same host id), is refused by the
others and logs why. No data is streamed (the logs say so).

3 nodes on 127.0.0.1..3 with fast gossip; every node is stopped by pid at
teardown (make_cluster).
"""

import os
import subprocess
import uuid

from conftest import wait_until
from sibyl_harness import admin_get

from cassandra.policies import ConstantReconnectionPolicy

from test_coordinator import session_on, wait_down
from test_gossip import FAST, TOOL_TIMEOUT, Recorder, event_listener, sibyltool, wait_event


class RemovalRecorder(Recorder):
    def __init__(self):
        super().__init__()
        self.removes = []

    def on_remove(self, host):
        self.removes.append(host.address)


def sibyltool_fails(node, *args):
    build = os.path.dirname(os.path.dirname(os.path.abspath(node.binary)))
    path = os.environ.get("SIBYLTOOL_BIN") or os.path.join(build, "tools", "sibyltool")
    p = subprocess.run([path, "-h", node.host, "-p", str(node.admin_port)] + list(args),
                       capture_output=True, text=True, timeout=TOOL_TIMEOUT, stdin=subprocess.DEVNULL)
    assert p.returncode != 0, p.stdout
    return p.stderr


def host_ids(node):
    return {m["address"]: m["host_id"] for m in admin_get(node.host, node.admin_port, "status")["nodes"]}


def peers(session, table):
    return {str(r.peer) for r in session.execute("SELECT peer FROM system.%s" % table)}


def test_removenode_of_a_dead_node(make_cluster, clusters):
    c = make_cluster(config=FAST)
    c.wait_converged()
    ids = host_ids(c[0])
    rec = RemovalRecorder()
    cl = clusters.cluster(c[0], reconnection_policy=ConstantReconnectionPolicy(0.5, max_attempts=None))
    cl.register_listener(rec)
    cl.connect()
    wait_until(lambda: len(cl.metadata.all_hosts()) == 3, timeout=30, what="driver sees 3 hosts")

    # refusals change nothing
    err = sibyltool_fails(c[0], "removenode", ids["127.0.0.2"])
    assert "Node /127.0.0.2:%d is alive and owns this ID. Use decommission command to remove it from the ring" \
        % c.storage_port in err
    assert "Cannot remove self" in sibyltool_fails(c[0], "removenode", ids["127.0.0.1"])
    assert "Host ID not found." in sibyltool_fails(c[0], "removenode", str(uuid.uuid4()))
    assert "Invalid host id" in sibyltool_fails(c[0], "removenode", "not-a-uuid")
    assert set(host_ids(c[1])) == set(c.addresses)
    assert "removenode of host id" not in c[0].log_text()

    with event_listener(c[1]) as ev:
        c[2].kill9()
        wait_down(c, c[:2], "127.0.0.3")
        sibyltool(c[0], "removenode", ids["127.0.0.3"])
        # node 2 heard it through gossip and tells its clients
        wait_event(ev, "TOPOLOGY_CHANGE", "REMOVED_NODE", "127.0.0.3")
    wait_until(lambda: {h.address for h in cl.metadata.all_hosts()} == {"127.0.0.1", "127.0.0.2"},
               timeout=30, what="driver drops 127.0.0.3")
    assert "127.0.0.3" in rec.removes
    ss = [session_on(clusters, n) for n in c[:2]]
    for n, s in zip(c[:2], ss):
        wait_until(lambda: set(c.status(n)) == {"127.0.0.1", "127.0.0.2"}, timeout=30,
                   what="%s's /status without 127.0.0.3" % n.host)
        assert "127.0.0.3" not in peers(s, "peers")
        assert "127.0.0.3" not in peers(s, "peers_v2")
        assert all(e["endpoint"] != "127.0.0.3" for e in admin_get(n.host, n.admin_port, "ring")["ring"])
        assert "no streaming yet" in n.log_text()
    assert "removenode of host id %s (/127.0.0.3): no data is streamed" % ids["127.0.0.3"] in c[0].log_text()
    # a second removal of the same id is refused
    assert "not a member of the token ring" in sibyltool_fails(c[1], "removenode", ids["127.0.0.3"])

    # the removed node restarted with its data (same host id) stays out
    c[2].start()
    c.wait_log(c[0], "refusing /127.0.0.3")
    c.wait_log(c[2], "was removed from the cluster by removenode")
    for n, s in zip(c[:2], ss):
        assert set(c.status(n)) == {"127.0.0.1", "127.0.0.2"}
        assert "127.0.0.3" not in peers(s, "peers")
    assert {h.address for h in cl.metadata.all_hosts()} == {"127.0.0.1", "127.0.0.2"}
