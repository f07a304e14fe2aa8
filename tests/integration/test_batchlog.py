"""Logged batches and the batchlog, on real 3-node clusters (127.0.0.1..3),
RF 1 so that a batch's partitions belong to other nodes than its
coordinator (docs/cluster.md, "Logged batches").

- An acknowledged logged batch leaves no batchlog entry behind: both other
  nodes stored it and removed it, and no replay happens later.
- A coordinator killed between the batchlog and the mutations (failpoint
  batchlog.after_store) loses nothing: the holders replay the batch once it
  is 2 x write_request_timeout old, one of them after a kill -9 of its own
  (the entry is in its commitlog).

/metrics' sibyl_batchlog_* counters show what each node did. Every node is
stopped by pid at teardown (make_cluster); every wait is bounded.
"""

import time
import urllib.request
import uuid

import pytest

from conftest import wait_until
from sibyl_harness import admin_get

from cassandra import ConsistencyLevel
from cassandra.query import BatchStatement, BatchType, SimpleStatement

from test_coordinator import create_schema, session_on

WRITE_TIMEOUT_S = 3
REPLAY_INTERVAL_S = 1
CONFIG = {"gossip_interval_ms": 200, "phi_convict_threshold": 6,
          "write_request_timeout": "%ds" % WRITE_TIMEOUT_S, "batchlog_replay_interval": "%ds" % REPLAY_INTERVAL_S}
COUNTERS = ("writes_total", "stored_total", "removed_total", "replayed_total", "replay_failures_total", "entries")


def batchlog(node):
    """The node's sibyl_batchlog_* samples, by short name."""
    with urllib.request.urlopen("http://%s:%d/metrics" % (node.host, node.admin_port), timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("sibyl_batchlog_"):
            name, value = line.split()
            out[name[len("sibyl_batchlog_"):]] = float(value)
    assert set(out) == set(COUNTERS), out
    return out


def owner(node, k):
    eps = admin_get(node.host, node.admin_port, "endpoints/ks/t/%d" % k)["endpoints"]
    assert len(eps) == 1
    return eps[0]


def keys_of(node, hosts, each=2):
    """`each` keys owned by every host in `hosts` (RF 1)."""
    found = {h: [] for h in hosts}
    for k in range(2000):
        h = owner(node, k)
        if h in found and len(found[h]) < each:
            found[h].append(k)
        if all(len(v) == each for v in found.values()):
            return found
    raise AssertionError("no keys found for %r" % hosts)


def logged_batch(keys, value, cl=ConsistencyLevel.ONE):
    b = BatchStatement(batch_type=BatchType.LOGGED, consistency_level=cl)
    for k in keys:
        b.add(SimpleStatement("INSERT INTO ks.t (k, v) VALUES (%s, %s)"), (k, value))
    return b


def value(s, k):
    row = s.execute(SimpleStatement("SELECT v FROM ks.t WHERE k = %s", consistency_level=ConsistencyLevel.ONE),
                    (k,)).one()
    return row.v if row else None


def test_acknowledged_logged_batch_leaves_no_entry(make_cluster, clusters):
    c = make_cluster(config=CONFIG)
    c.wait_converged()
    ss = [session_on(clusters, n) for n in c]
    create_schema(ss, 1, uuid.uuid4())
    keys = keys_of(c[0], [n.host for n in c])
    before = [batchlog(n) for n in c]

    # one partition: atomic on its replica without a batchlog; unlogged: none either
    ss[0].execute(logged_batch([keys[c[1].host][0]] * 2, "one"))
    b = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=ConsistencyLevel.ONE)
    for k in keys[c[1].host] + keys[c[2].host]:
        b.add(SimpleStatement("INSERT INTO ks.t (k, v) VALUES (%s, 'u')"), (k,))
    ss[0].execute(b)
    assert batchlog(c[0])["writes_total"] == before[0]["writes_total"]

    # three nodes' partitions: stored on both other nodes, then removed there
    allkeys = sum(keys.values(), [])
    ss[0].execute(logged_batch(allkeys, "logged"))
    assert batchlog(c[0])["writes_total"] == before[0]["writes_total"] + 1
    for k in allkeys:
        assert value(ss[0], k) == "logged"
    for i in (1, 2):
        wait_until(lambda: batchlog(c[i])["removed_total"] == before[i]["removed_total"] + 1, timeout=10,
                   what="node %d removes the entry" % (i + 1))
        assert batchlog(c[i])["stored_total"] == before[i]["stored_total"] + 1
    assert batchlog(c[0])["stored_total"] == before[0]["stored_total"]  # the coordinator holds none

    # nothing is left to replay: scans after the batchlog timeout find no entry
    time.sleep(2 * WRITE_TIMEOUT_S + 3 * REPLAY_INTERVAL_S)
    for n, b0 in zip(c, before):
        m = batchlog(n)
        assert m["replayed_total"] == b0["replayed_total"] and m["entries"] == 0, (n.host, m)


def test_batch_replayed_after_coordinator_dies(make_cluster, clusters):
    c = make_cluster(config=CONFIG, start=False)
    c[0].env["SIBYL_FAILPOINTS"] = "batchlog.after_store=kill"
    c.start()
    if "failpoints armed" not in c[0].log_text():
        pytest.skip("sibyld built without failpoints (SIB_FAILPOINTS)")
    c.wait_converged()
    ss = [session_on(clusters, n) for n in c]
    create_schema(ss, 1, uuid.uuid4())
    keys = keys_of(c[0], [c[1].host, c[2].host])
    allkeys = sum(keys.values(), [])

    t0 = time.monotonic()                                # the entries are due 2 x write timeout after this
    with pytest.raises(Exception):                       # the coordinator dies under the request
        ss[0].execute(logged_batch(allkeys, "replayed"))
    for _ in range(100):                                 # bounded: 10 s
        if not c[0].running():
            break
        time.sleep(0.1)
    assert not c[0].running(), "the failpoint did not stop the coordinator"
    assert "failpoint batchlog.after_store: kill" in c[0].log_text()
    c[0].expected_exit = True
    for k in allkeys:                                    # no mutation was sent (checked before any replay)
        seen = value(ss[2], k)
        if time.monotonic() - t0 < 2 * WRITE_TIMEOUT_S:
            assert seen is None

    # node 2 crashes too before the batch is due: its entry is in its commitlog
    assert batchlog(c[1])["stored_total"] == 1
    early = batchlog(c[1])["replayed_total"] == 0 and time.monotonic() - t0 < 2 * WRITE_TIMEOUT_S
    c[1].restart(kill=True)

    deadline = 2 * WRITE_TIMEOUT_S + 10 + 30              # batchlog timeout + a round + slack (ASan start)
    for k in allkeys:
        wait_until(lambda: value(ss[2], k) == "replayed", timeout=deadline, what="key %d replayed" % k)
    s2 = session_on(clusters, c[1])
    for k in allkeys:
        assert value(s2, k) == "replayed"
    # each holder replays its own copy and removes it (node 2's from before its crash, unless a very
    # slow machine let node 2 replay it before the kill)
    for n in (c[1:] if early else c[2:]):
        wait_until(lambda: batchlog(n)["replayed_total"] >= 1 and batchlog(n)["removed_total"] >= 1,
                   timeout=deadline, what="%s replays and removes its entry" % n.host)
    wait_until(lambda: all(batchlog(n)["entries"] == 0 for n in c[1:]), timeout=deadline,
               what="no entry left on the holders")
