"""Requests through the replicas, on real 3-node clusters (127.0.0.1..3):
a write goes to every live replica and is answered once the consistency
level's blockFor acks are in; Unavailable when too few replicas are alive,
WriteTimeout (with the counts and the write type) when a frozen replica never
acks, WriteFailure when replicas refuse a table they do not know.

Schema does not travel between nodes yet, so every test creates its keyspace
and table on each node, with the same table id (`WITH id = ...`): a mutation
names its table by id. A row is checked at ONE on a node that replicates it
(the local replica answers first), bounded in time; test_reads.py has the
reads through the replicas.
Every node is stopped by pid at teardown (make_cluster).
"""

import os
import signal
import time
import uuid

import pytest

from conftest import wait_until

from cassandra import ConsistencyLevel, Unavailable, WriteFailure, WriteTimeout
from cassandra.cluster import ExecutionProfile, EXEC_PROFILE_DEFAULT
from cassandra.policies import FallthroughRetryPolicy, WhiteListRoundRobinPolicy
from cassandra.query import BatchStatement, BatchType, SimpleStatement

FAST = {"gossip_interval_ms": 200, "phi_convict_threshold": 6}


def session_on(clusters, node):
    """A session that only ever talks to `node` and never retries."""
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([node.host]),
                               retry_policy=FallthroughRetryPolicy(), request_timeout=20)
    return clusters.cluster(node, max_schema_agreement_wait=0,
                            execution_profiles={EXEC_PROFILE_DEFAULT: profile}).connect()


def create_schema(sessions, rf, table_id):
    """DDL on the first node only: schema travels to the others. Waits
    (bounded) until every node has the table with that id."""
    s0 = sessions[0]
    s0.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': %d}" % rf)
    s0.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text) WITH id = %s" % table_id)
    for s in sessions:
        wait_until(lambda: s.execute("SELECT id FROM system_schema.tables WHERE keyspace_name = 'ks' "
                                     "AND table_name = 't'").one() is not None
                   and s.execute("SELECT id FROM system_schema.tables WHERE keyspace_name = 'ks' "
                                 "AND table_name = 't'").one().id == table_id,
                   timeout=30, what="the table reaches every node")


def write(s, k, v, cl):
    s.execute(SimpleStatement("INSERT INTO ks.t (k, v) VALUES (%s, %s)", consistency_level=cl), (k, v))


def local_value(s, k):
    row = s.execute(SimpleStatement("SELECT v FROM ks.t WHERE k = %s", consistency_level=ConsistencyLevel.ONE),
                    (k,)).one()
    return row.v if row else None


def wait_down(c, observers, addr):
    for n in observers:
        wait_until(lambda: c.status(n).get(addr) == "DN", timeout=60, what="%s sees %s DOWN" % (n.host, addr))


def test_table_id_option(make_node, clusters):
    n = make_node()
    s = session_on(clusters, n)
    s.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    tid = uuid.uuid4()
    s.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text) WITH id = %s AND comment = 'x'" % tid)
    row = s.execute("SELECT id, comment FROM system_schema.tables WHERE keyspace_name = 'ks' AND table_name = 't'").one()
    assert row.id == tid and row.comment == "x"
    with pytest.raises(Exception, match="expecting a uuid"):
        s.execute("CREATE TABLE ks.u (k int PRIMARY KEY) WITH id = 'nope'")
    with pytest.raises(Exception, match="already exists"):  # the id is taken
        s.execute("CREATE TABLE ks.u (k int PRIMARY KEY) WITH id = %s" % tid)


def test_writes_reach_every_replica_and_levels_follow_liveness(make_cluster, clusters):
    c = make_cluster(config=FAST)
    c.wait_converged()
    ss = [session_on(clusters, n) for n in c]
    create_schema(ss, 3, uuid.uuid4())

    # QUORUM through node 1: every replica (all three, RF 3) gets the row
    for k in range(20):
        write(ss[0], k, "a%d" % k, ConsistencyLevel.QUORUM)
    for s in ss[1:]:
        for k in range(20):
            wait_until(lambda: local_value(s, k) == "a%d" % k, timeout=10, what="row %d on a replica" % k)
    # ALL through node 2, seen on node 3
    write(ss[1], 100, "all", ConsistencyLevel.ALL)
    wait_until(lambda: local_value(ss[2], 100) == "all", timeout=10, what="ALL write on node 3")

    # one node down: QUORUM and ONE still work, ALL is Unavailable
    c[2].kill9()
    wait_down(c, c[:2], c[2].host)
    for k in range(20, 30):
        write(ss[0], k, "b%d" % k, ConsistencyLevel.QUORUM)
        wait_until(lambda: local_value(ss[1], k) == "b%d" % k, timeout=10, what="row %d on node 2" % k)
    write(ss[1], 31, "one", ConsistencyLevel.ONE)
    with pytest.raises(Unavailable) as e:
        write(ss[0], 32, "x", ConsistencyLevel.ALL)
    assert e.value.required_replicas == 3 and e.value.alive_replicas == 2

    # two down: QUORUM is Unavailable, ONE still works
    c[1].kill9()
    wait_down(c, c[:1], c[1].host)
    with pytest.raises(Unavailable) as e:
        write(ss[0], 33, "x", ConsistencyLevel.QUORUM)
    assert e.value.required_replicas == 2 and e.value.alive_replicas == 1
    write(ss[0], 34, "alone", ConsistencyLevel.ONE)
    assert local_value(ss[0], 34) == "alone"


def test_frozen_replica_times_out_at_all(make_cluster, clusters):
    # A high threshold keeps the frozen node UP for the few seconds the
    # writes need: the coordinator sends to it and waits for its ack.
    c = make_cluster(config={"gossip_interval_ms": 200, "phi_convict_threshold": 16, "write_request_timeout": "1s"})
    c.wait_converged()
    ss = [session_on(clusters, n) for n in c]
    create_schema(ss, 3, uuid.uuid4())
    write(ss[0], 1, "x", ConsistencyLevel.ALL)
    pid = c[2].proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(WriteTimeout) as e:
            write(ss[0], 2, "y", ConsistencyLevel.ALL)
        assert e.value.received_responses == 2 and e.value.required_responses == 3
        assert e.value.consistency == ConsistencyLevel.ALL
        assert e.value.write_type == 0  # SIMPLE
        b = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=ConsistencyLevel.ALL)
        b.add(SimpleStatement("INSERT INTO ks.t (k, v) VALUES (3, 'z')"))
        b.add(SimpleStatement("INSERT INTO ks.t (k, v) VALUES (4, 'z')"))
        with pytest.raises(WriteTimeout) as e:
            ss[0].execute(b)
        assert e.value.write_type == 2  # UNLOGGED_BATCH
        assert e.value.received_responses == 2 and e.value.required_responses == 3
        b = BatchStatement(batch_type=BatchType.LOGGED, consistency_level=ConsistencyLevel.ALL)
        b.add(SimpleStatement("INSERT INTO ks.t (k, v) VALUES (6, 'z')"))
        b.add(SimpleStatement("INSERT INTO ks.t (k, v) VALUES (7, 'z')"))
        with pytest.raises(WriteTimeout) as e:
            ss[0].execute(b)
        # the batchlog goes to both other nodes first: the frozen one never stores it
        assert e.value.write_type == 4  # BATCH_LOG
        assert e.value.consistency == ConsistencyLevel.TWO
        assert e.value.received_responses == 1 and e.value.required_responses == 2
        # QUORUM does not wait for the frozen one
        write(ss[1], 5, "q", ConsistencyLevel.QUORUM)
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: local_value(ss[2], 5) == "q", timeout=20, what="the thawed replica applies the write")


def test_replica_behind_on_schema_takes_the_write(make_cluster, clusters):
    """A replica that was down while its table was created gets the schema
    (pulled when it is back, or by the mutation itself, which it never
    applies against a schema lacking the table) and takes writes at ALL."""
    c = make_cluster(config=FAST)
    c.wait_converged()
    c[2].stop()
    ss = [session_on(clusters, n) for n in c[:2]]
    tid = uuid.uuid4()
    create_schema(ss, 3, tid)
    c[2].start()
    c.wait_converged()
    write(ss[0], 2, "all", ConsistencyLevel.ALL)
    s3 = session_on(clusters, c[2])
    assert local_value(s3, 2) == "all"
    assert s3.execute("SELECT id FROM system_schema.tables WHERE keyspace_name = 'ks' "
                      "AND table_name = 't'").one().id == tid
