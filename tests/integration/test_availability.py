"""The availability matrix, on real clusters: with 0, 1 and 2 nodes down,
every consistency level of a write (ANY .. EACH_QUORUM) and of a read (the
same but ANY) either succeeds or answers Unavailable with exactly the
required / alive counts Cassandra's rules give (docs/cluster.md,
"Consistency levels"):

- blockFor: ONE / LOCAL_ONE / ANY 1, TWO 2, THREE 3, QUORUM sum(rf) / 2 + 1,
  ALL sum(rf), LOCAL_QUORUM rf(coordinator's DC) / 2 + 1, EACH_QUORUM
  rf(dc) / 2 + 1 in every DC of a NetworkTopologyStrategy keyspace (and the
  plain quorum for any other strategy);
- the live count is the replicas of the key the coordinator believes alive,
  only those of the coordinator's own DC for LOCAL_ONE / LOCAL_QUORUM, and
  per DC for EACH_QUORUM, which names the DC that falls short;
- an Unavailable request wrote nothing.

The expectation is computed from those rules, the key's replicas (the
admin /endpoints of the coordinator) and the liveness the coordinator shows
(/status), never copied from a run. Each request is pinned to one
coordinator (WhiteListRoundRobinPolicy, no retries), as LOCAL_* depend on
its DC. One cluster per topology walks through its down-sets, asking every
level at each; the mismatches of a whole walk are reported together.

Sibyl differs from Cassandra in one documented way: there are no hints yet,
so ANY needs one live replica (docs/cluster.md): a key of the RF 2
keyspace whose two replicas are both down answers ANY with Unavailable
(1 required, 0 alive) where Cassandra would store a hint; the expectation
says so. Every other ANY succeeds, as in Cassandra.
Every node is stopped by pid at teardown (make_cluster).
"""

import os
import signal
import struct
import uuid

import pytest

from conftest import wait_until
from sibyl_harness import admin_get

from cassandra import ConsistencyLevel as CL, ReadTimeout, Unavailable, WriteTimeout
from cassandra.cluster import ExecutionProfile, EXEC_PROFILE_DEFAULT
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import SimpleStatement

from test_coordinator import FAST, session_on
from test_gossip import sibyltool

WRITE_LEVELS = [CL.ANY, CL.ONE, CL.TWO, CL.THREE, CL.QUORUM, CL.ALL, CL.LOCAL_ONE, CL.LOCAL_QUORUM,
                CL.EACH_QUORUM]
READ_LEVELS = [cl for cl in WRITE_LEVELS if cl != CL.ANY]
NAME = CL.value_to_name


# ---- Cassandra's rules ------------------------------------------------------

def expected_unavailable(cl, repl, replicas, coord_dc):
    """None when `cl` can be met, else the list of Unavailable answers
    (required, alive, dc or None) Cassandra may give. `repl` is an int
    (SimpleStrategy rf) or {dc: rf} (NetworkTopologyStrategy); `replicas`
    is [(addr, dc, alive)] for the key, as the coordinator sees them."""
    nts = isinstance(repl, dict)
    total = sum(repl.values()) if nts else repl
    quorum = total // 2 + 1

    def local_quorum(dc):
        return repl.get(dc, 0) // 2 + 1 if nts else quorum

    def live_in(dc):
        return sum(1 for _, d, up in replicas if up and d == dc)

    live = sum(1 for _, _, up in replicas if up)
    if cl == CL.ANY:
        # Cassandra: a hint on the coordinator always does; Sibyl (no
        # hints yet) needs one live replica.
        return None if live else [(1, 0, None)]
    if cl == CL.EACH_QUORUM and nts:
        # Every DC must reach its own quorum; which failing DC is named
        # first is not specified (Cassandra walks a hash map).
        short = [(local_quorum(dc), live_in(dc), dc) for dc in repl if live_in(dc) < local_quorum(dc)]
        return short or None
    if cl == CL.LOCAL_ONE:
        need, have = 1, live_in(coord_dc)
    elif cl == CL.LOCAL_QUORUM:
        need, have = local_quorum(coord_dc), live_in(coord_dc)
    else:
        need = {CL.ONE: 1, CL.TWO: 2, CL.THREE: 3, CL.QUORUM: quorum, CL.ALL: total,
                CL.EACH_QUORUM: quorum}[cl]
        have = live
    return None if have >= need else [(need, have, None)]


# ---- cluster plumbing ---------------------------------------------------------

def topology(node):
    """{addr: (dc, rack, up)} as `node` sees the cluster."""
    st = admin_get(node.host, node.admin_port, "status")["nodes"]
    return {m["address"]: (m["dc"], m["rack"], m["status"] == "U") for m in st}


def key_replicas(node, ks, table, key):
    """The replicas of `key` (admin /endpoints, sibyltool getendpoints) as
    [(addr, dc, alive)] in `node`'s view."""
    eps = admin_get(node.host, node.admin_port, "endpoints/%s/%s/%s" % (ks, table, key))["endpoints"]
    topo = topology(node)
    return [(a, topo[a][0], topo[a][2]) for a in eps]


def wait_views(c, live, down):
    """Until every live node sees every node of `live` UP and of `down`
    DOWN (a graceful stop is announced; kill -9 waits for the detector)."""
    for n in live:
        want = dict({x.host: True for x in live}, **{x.host: False for x in down})
        wait_until(lambda: {a: v[2] for a, v in topology(n).items()} == want, timeout=60,
                   what="%s sees %s up and %s down" % (n.host, [x.host for x in live], [x.host for x in down]))


def create_table(sessions, replication, ks="ks"):
    """<ks>.t on the first session's node; waits (bounded) until the schema
    reached every session's node."""
    s0 = sessions[0]
    tid = uuid.uuid4()
    s0.execute("CREATE KEYSPACE %s WITH replication = %s" % (ks, replication))
    s0.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v text) WITH id = %s" % (ks, tid))
    q = "SELECT id FROM system_schema.tables WHERE keyspace_name = '%s' AND table_name = 't'" % ks
    for s in sessions:
        wait_until(lambda: (s.execute(q).one() or {}) and s.execute(q).one().id == tid,
                   timeout=30, what="the table reaches every node")


def stmt(q, cl):
    return SimpleStatement(q, consistency_level=cl)


def replication_clause(repl):
    if isinstance(repl, dict):
        return "{'class': 'NetworkTopologyStrategy', %s}" % ", ".join("'%s': %d" % kv for kv in repl.items())
    return "{'class': 'SimpleStrategy', 'replication_factor': %d}" % repl


class Matrix:
    """Keyspaces `keyspaces` ({name: rf or {dc: rf}}, each with a table t)
    on cluster c; asks every level through pinned coordinators and collects
    every answer that differs from the rules."""

    READ_KEYS = range(3)        # written at ALL with every node up

    def __init__(self, c, clusters, keyspaces):
        self.c, self.keyspaces, self.clusters = c, keyspaces, clusters
        self.sessions = {}
        self.next_key = 1000
        self.wrong = []
        self.asked = 0
        ss = [self.session(n) for n in c]
        for ks, repl in keyspaces.items():
            create_table(ss, replication_clause(repl), ks)
            for k in self.READ_KEYS:
                self.seed(ss, ks, k)

    def seed(self, ss, ks, k):
        """The read rows, on every replica before any node goes down: at
        ALL, or (when ALL asks more replicas than the DCs have, as
        {dc1: 3} on two dc1 nodes) at QUORUM, waiting for every node to
        read it at ONE (its own replica answers when it has one)."""
        q = "INSERT INTO %s.t (k, v) VALUES (%d, 'seed%d')" % (ks, k, k)
        try:
            ss[0].execute(stmt(q, CL.ALL))
        except Unavailable:
            ss[0].execute(stmt(q, CL.QUORUM))
            for s in ss:
                wait_until(lambda: self.value(s, ks, k, CL.ONE) == "seed%d" % k, timeout=10,
                           what="the seed row %s.%d everywhere" % (ks, k))

    def restarted(self, *nodes):
        """Forget the sessions of restarted nodes: their connections closed."""
        for n in nodes:
            self.sessions.pop(n.host, None)

    def session(self, node):
        if node.host not in self.sessions:
            self.sessions[node.host] = session_on(self.clusters, node)
        return self.sessions[node.host]

    def check(self, label, ks, cl, coord, key, run):
        dc = topology(coord)[coord.host][0]
        want = expected_unavailable(cl, self.keyspaces[ks], key_replicas(coord, ks, "t", key), dc)
        what = "%s %s.%s at %s via %s (%s)" % (label, ks, key, NAME[cl], coord.host, dc)
        self.asked += 1
        try:
            got = run()
        except Unavailable as e:
            seen = (e.required_replicas, e.alive_replicas)
            ok = want is not None and e.consistency == cl and any(
                seen == w[:2] and (w[2] is None or ("in DC %s" % w[2]) in str(e)) for w in want)
            if not ok:
                self.wrong.append("%s: Unavailable %s %r, expected %s" % (what, seen, str(e), want or "success"))
            return False, None
        if want is not None:
            self.wrong.append("%s: succeeded, expected Unavailable %s" % (what, want))
        return True, got

    def stage(self, label, coordinators):
        """Every write and read level through each coordinator, for every
        keyspace."""
        for ks in self.keyspaces:
            for coord in coordinators:
                self.levels(label, ks, coord, coordinators)

    def levels(self, label, ks, coord, live):
        s = self.session(coord)
        refused = []
        for cl in WRITE_LEVELS:
            k = self.next_key
            self.next_key += 1
            v = "%s/%s/%s" % (label, coord.host, NAME[cl])
            ok, _ = self.check(label + " write", ks, cl, coord, k, lambda: s.execute(
                stmt("INSERT INTO %s.t (k, v) VALUES (%d, '%s')" % (ks, k, v), cl)))
            if ok:
                # acknowledged: it is on a live replica the coordinator
                # reads at ONE (every key of these tests has one).
                wait_until(lambda: self.value(s, ks, k, CL.ONE) == v, timeout=10,
                           what="%s write %s.%d at %s reads back" % (label, ks, k, NAME[cl]))
            else:
                refused.append(k)
        for cl in READ_LEVELS:
            for k in self.READ_KEYS:
                ok, got = self.check(label + " read", ks, cl, coord, k, lambda: self.value(s, ks, k, cl))
                if ok and got != "seed%d" % k:
                    self.wrong.append("%s read %s.%d at %s via %s: %r, expected 'seed%d'"
                                      % (label, ks, k, NAME[cl], coord.host, got, k))
        # an Unavailable write wrote nothing, on any live replica
        for k in refused:
            for n in live:
                try:
                    got = self.value(self.session(n), ks, k, CL.ONE)
                except Unavailable:
                    continue        # no live replica: nothing to look at
                if got is not None:
                    self.wrong.append("%s write %s.%d was refused but %s reads %r" % (label, ks, k, n.host, got))

    @staticmethod
    def value(s, ks, k, cl):
        row = s.execute(stmt("SELECT v FROM %s.t WHERE k = %d" % (ks, k), cl)).one()
        return row.v if row else None

    def verdict(self):
        assert not self.wrong, "%d of %d answers differ from Cassandra's rules:\n  %s" % (
            len(self.wrong), self.asked, "\n  ".join(self.wrong))


# ---- SimpleStrategy, RF 3 on 3 nodes: nodes killed (kill -9) -----------------

def test_simple_rf3_matrix_with_nodes_killed(make_cluster, clusters):
    """RF 3: QUORUM (2) holds with one node killed and is Unavailable with
    two; ONE holds with two down; ALL fails with one down; TWO/THREE and the
    LOCAL_ / EACH_ levels follow the same arithmetic (every node is in
    datacenter1, so LOCAL_QUORUM and EACH_QUORUM are the plain quorum)."""
    c = make_cluster(config=FAST)
    c.wait_converged()
    # and RF 2: key-dependent replicas, coordinators that are not one
    m = Matrix(c, clusters, {"ks": 3, "ks2": 2})

    m.stage("0 down", c.nodes)
    c[2].kill9()
    wait_views(c, c[:2], c[2:])
    m.stage("1 killed", c[:2])
    c[1].kill9()
    wait_views(c, c[:1], c[1:])
    m.stage("2 killed", c[:1])
    m.verdict()


# ---- NetworkTopologyStrategy over 2 DCs x 2 racks ---------------------------

NTS_LAYOUT = [("dc1", "rack1"), ("dc1", "rack2"), ("dc2", "rack1"), ("dc2", "rack2")]
NTS_REPL = {"dc1": 2, "dc2": 2}


def nts_cluster(make_cluster, layout, config=FAST):
    c = make_cluster(size=len(layout), start=False, config=config)
    for n, (dc, rack) in zip(c, layout):
        n.set_config(datacenter=dc, rack=rack)
    c.start()
    c.wait_converged()
    return c


def test_nts_replicas_on_distinct_racks_and_the_driver_agrees(make_cluster, clusters):
    """Six nodes, dc1 = {rack1, rack2, rack1}, dc2 = {rack1, rack2, rack2}:
    {dc1: 2, dc2: 2} puts two replicas of every key in each DC, on different
    racks (so one of them is always the DC's lone-rack node), and every node
    agrees. The Python driver, given one contact point, discovers all six
    with their DC and rack, and its token-aware replicas for a key
    (metadata.get_replicas) are the node's own (/endpoints), for
    NetworkTopologyStrategy and SimpleStrategy alike."""
    c = nts_cluster(make_cluster, NTS_LAYOUT + [("dc1", "rack1"), ("dc2", "rack2")])
    s = session_on(clusters, c[0])
    s.execute("CREATE KEYSPACE ks WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc2': 2}")
    s.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
    s.execute("CREATE KEYSPACE ks2 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}")
    s.execute("CREATE TABLE ks2.t (k int PRIMARY KEY, v text)")
    for n in c:
        wait_until(lambda: admin_get_ok(n, "endpoints/ks2/t/0"), timeout=30, what="the tables on %s" % n.host)
    topo = topology(c[0])
    keys = range(40)
    for k in keys:
        views = {tuple(admin_get(n.host, n.admin_port, "endpoints/ks/t/%d" % k)["endpoints"]) for n in c}
        assert len(views) == 1, (k, views)
        eps = list(views.pop())
        for dc, rf in NTS_REPL.items():
            in_dc = [a for a in eps if topo[a][0] == dc]
            assert len(in_dc) == rf, (k, eps)
            assert len({topo[a][1] for a in in_dc}) == rf, ("replicas share a rack", k, dc, in_dc)
        if k < 3:   # sibyltool getendpoints prints the same list
            assert sibyltool(c[k], "getendpoints", "ks", "t", str(k)).split() == eps

    # a contact point that is not the seed, token-aware over dc1
    profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc="dc1")),
                               request_timeout=20)
    cl = clusters.cluster(c[2], execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    cl.connect()
    # (dc2's hosts are ignored by this policy: no connection, no up/down)
    wait_until(lambda: len(cl.metadata.all_hosts()) == len(c.nodes), timeout=30, what="the driver finds every host")
    assert {h.address: (h.datacenter, h.rack) for h in cl.metadata.all_hosts()} == \
        {a: v[:2] for a, v in topo.items()}
    wait_until(lambda: all(ks in cl.metadata.keyspaces for ks in ("ks", "ks2")), timeout=30,
               what="the driver's schema metadata has both keyspaces")
    for ks in ("ks", "ks2"):
        for k in keys:
            mine = admin_get(c[2].host, c[2].admin_port, "endpoints/%s/t/%d" % (ks, k))["endpoints"]
            theirs = [h.address for h in cl.metadata.get_replicas(ks, struct.pack(">i", k))]
            assert sorted(theirs) == sorted(mine), (ks, k, theirs, mine)


def admin_get_ok(n, path):
    try:
        admin_get(n.host, n.admin_port, path)
        return True
    except OSError:
        return False


def test_nts_two_dcs_matrix_with_nodes_stopped(make_cluster, clusters):
    """{dc1: 2, dc2: 2} on dc1 = {.1 rack1, .2 rack2}, dc2 = {.3 rack1,
    .4 rack2}: QUORUM 3, ALL 4, LOCAL_QUORUM 2 in the coordinator's DC,
    EACH_QUORUM 2 + 2. Down-sets: none; one node of dc2; both nodes of dc2;
    then (dc2 back) one node in each DC. Coordinators: a live node of each DC
    that has one, so LOCAL_* are asked from both sides."""
    c = nts_cluster(make_cluster, NTS_LAYOUT)
    n1, n2, n3, n4 = c.nodes
    # and {dc1: 3, dc2: 1}: more replicas asked of dc1 than it has nodes, and
    # one replica in dc2 that depends on the key
    # one replica in dc2 that depends on the key; {dc1: 2}: no replica at
    # all in a dc2 coordinator's own DC; and SimpleStrategy RF 3 across both
    # DCs, whose LOCAL_* levels count the coordinator's DC's replicas of the
    # key against the plain quorum
    m = Matrix(c, clusters, {"ks": NTS_REPL, "ks31": {"dc1": 3, "dc2": 1}, "ks20": {"dc1": 2}, "ks3": 3})

    m.stage("0 down", [n1, n3])
    n4.stop()
    wait_views(c, [n1, n2, n3], [n4])
    m.stage("dc2 one down", [n1, n3])
    n3.stop()
    wait_views(c, [n1, n2], [n3, n4])
    m.stage("dc2 both down", [n1, n2])
    n3.start()
    n4.start()
    m.restarted(n3, n4)
    wait_views(c, c.nodes, [])
    n2.stop()
    n4.stop()
    wait_views(c, [n1, n3], [n2, n4])
    m.stage("one down per dc", [n1, n3])
    m.verdict()


def test_each_quorum_read_needs_a_quorum_in_every_dc(make_cluster, clusters):
    """{dc1: 3, dc2: 3} on 3 + 3 nodes: EACH_QUORUM waits for 2 answers in
    each DC (blockFor 4), not for any 4. From a dc1 coordinator the four
    closest replicas of a key are dc1's three and the first of dc2 in ring
    order (the order /endpoints lists them in), so a plain count of four
    answers would be met without dc2's quorum. The two other dc2 nodes are
    frozen (SIGSTOP; a high phi_convict_threshold keeps them UP for the few
    seconds this takes): the EACH_QUORUM read and write then time out, as
    Cassandra's do, while LOCAL_QUORUM is still answered by dc1; through the
    dc2 node that answers, LOCAL_QUORUM times out (dc1's answers do not
    count)."""
    layout = [("dc1", "rack1")] * 3 + [("dc2", "rack1")] * 3
    c = make_cluster(size=6, start=False, config={"gossip_interval_ms": 200, "phi_convict_threshold": 16,
                                                  "read_request_timeout": "1s", "write_request_timeout": "1s"})
    for n, (dc, rack) in zip(c, layout):
        n.set_config(datacenter=dc, rack=rack)
    c.start()
    c.wait_converged()
    coord = c[0]
    s = session_on(clusters, coord)
    create_table([s] + [session_on(clusters, n) for n in c[1:]],
                 "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 3}")
    dc2 = {n.host for n in c[3:]}
    key = 7
    s.execute(stmt("INSERT INTO ks.t (k, v) VALUES (%d, 'x')" % key, CL.ALL))
    eps = admin_get(coord.host, coord.admin_port, "endpoints/ks/t/%d" % key)["endpoints"]
    assert len(eps) == 6
    answering = next(a for a in eps if a in dc2)
    frozen = [n for n in c[3:] if n.host != answering]
    for n in frozen:
        os.kill(n.proc.pid, signal.SIGSTOP)
    try:
        with pytest.raises(ReadTimeout) as e:
            s.execute(stmt("SELECT v FROM ks.t WHERE k = %d" % key, CL.EACH_QUORUM))
        assert e.value.consistency == CL.EACH_QUORUM and e.value.required_responses == 4
        assert e.value.received_responses < 4
        with pytest.raises(WriteTimeout) as e:
            s.execute(stmt("INSERT INTO ks.t (k, v) VALUES (%d, 'y')" % key, CL.EACH_QUORUM))
        assert e.value.required_responses == 4 and e.value.received_responses < 4
        assert s.execute(stmt("SELECT v FROM ks.t WHERE k = %d" % key, CL.LOCAL_QUORUM)).one().v in ("x", "y")
        # through the dc2 node that answers: LOCAL_QUORUM counts dc2 only,
        # however fast dc1's three acks and answers come
        s2 = session_on(clusters, next(n for n in c if n.host == answering))
        with pytest.raises(WriteTimeout) as e:
            s2.execute(stmt("INSERT INTO ks.t (k, v) VALUES (%d, 'z')" % key, CL.LOCAL_QUORUM))
        assert e.value.required_responses == 2 and e.value.received_responses == 1
        with pytest.raises(ReadTimeout) as e:
            s2.execute(stmt("SELECT v FROM ks.t WHERE k = %d" % key, CL.LOCAL_QUORUM))
        assert e.value.required_responses == 2 and e.value.received_responses < 2
    finally:
        for n in frozen:
            os.kill(n.proc.pid, signal.SIGCONT)


@pytest.mark.parametrize("nseeds", [1, 3], ids=["one-seed", "all-seeds"])
def test_joining_nodes_balance_the_ring(make_cluster, nseeds):
    """Nodes joining a ring choose their tokens knowing it (the allocator,
    allocate_tokens_for_local_replication_factor): three nodes of 8 tokens
    each own close to a third of the ring each. Tokens chosen blind, each
    node's spaced evenly from a random start as a first node does, put all
    of a node's vnodes at one phase, and the shares came out as uneven as
    with one token per node (3%, 37% and 60% in one run). With every node a
    seed (as sibyl-ccm makes them) the first one learns, once its gossip
    has settled, that nobody else is there yet."""
    c = make_cluster(config=FAST, nseeds=nseeds)
    c.wait_converged()
    # each node chose its tokens knowing the members started before it
    for i, n in enumerate(c):
        assert "with 8 tokens (allocated against %d known members)" % i in n.log_text(), n.log_tail()
        if i or nseeds > 1:
            assert "the ring as gossip shows it: %d NORMAL members, %d tokens (settled)" % (i, 8 * i) \
                in n.log_text(), n.log_tail()
    owns = {m["address"]: m["owns"] for m in admin_get(c[0].host, c[0].admin_port, "status")["nodes"]}
    assert all(20.0 <= o <= 45.0 for o in owns.values()), owns


def test_reads_prefer_the_coordinators_datacenter(make_cluster, clusters):
    """{dc1: 2, dc2: 2} on 2 + 2 nodes, every dc2 node frozen (SIGSTOP,
    still UP for the few seconds this takes): reads through a dc1 node at
    ONE, TWO and LOCAL_QUORUM ask dc1's replicas, the closest ones, as
    Cassandra's snitch orders them (its own DC first), and are answered;
    THREE needs a dc2 replica and times out. Ring order alone would send a
    TWO read to a dc2 replica for some keys."""
    c = nts_cluster(make_cluster, NTS_LAYOUT, config={"gossip_interval_ms": 200, "phi_convict_threshold": 16,
                                                      "read_request_timeout": "1s"})
    s = session_on(clusters, c[0])
    create_table([s] + [session_on(clusters, n) for n in c[1:]], replication_clause(NTS_REPL))
    for k in range(20):
        s.execute(stmt("INSERT INTO ks.t (k, v) VALUES (%d, 'v%d')" % (k, k), CL.ALL))
    for n in c[2:]:
        os.kill(n.proc.pid, signal.SIGSTOP)
    try:
        for k in range(20):
            for cl in (CL.ONE, CL.TWO, CL.LOCAL_QUORUM):
                assert Matrix.value(s, "ks", k, cl) == "v%d" % k, (k, NAME[cl])
        with pytest.raises(ReadTimeout):
            Matrix.value(s, "ks", 0, CL.THREE)
    finally:
        for n in c[2:]:
            os.kill(n.proc.pid, signal.SIGCONT)
