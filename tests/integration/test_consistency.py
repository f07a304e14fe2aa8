"""Consistency levels on one node: every level one replica satisfies works;
the others answer Unavailable with Cassandra's required/alive numbers. The
statement clause USING CONSISTENCY overrides the protocol level."""

import pytest

from cassandra import ConsistencyLevel as CL, InvalidRequest, Unavailable
from cassandra.query import BatchStatement, SimpleStatement

ONE_REPLICA_LEVELS = [CL.ANY, CL.ONE, CL.LOCAL_ONE, CL.QUORUM, CL.LOCAL_QUORUM, CL.ALL]
READ_LEVELS_RF1 = [CL.ONE, CL.LOCAL_ONE, CL.QUORUM, CL.LOCAL_QUORUM, CL.EACH_QUORUM, CL.ALL]


def stmt(q, cl):
    return SimpleStatement(q, consistency_level=cl)


@pytest.fixture
def rf1(session, ks):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int)" % ks)
    return ks + ".t"


@pytest.fixture
def rf3(session):
    session.execute("CREATE KEYSPACE rf3 WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 3}")
    session.execute("CREATE TABLE rf3.t (k int PRIMARY KEY, v int)")
    return "rf3.t"


@pytest.fixture
def nts3(session):
    session.execute("CREATE KEYSPACE nts3 WITH replication = "
                    "{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}")
    session.execute("CREATE TABLE nts3.t (k int PRIMARY KEY, v int)")
    return "nts3.t"


@pytest.mark.parametrize("cl", ONE_REPLICA_LEVELS, ids=lambda c: CL.value_to_name[c])
def test_writes_rf1(session, rf1, cl):
    session.execute(stmt("INSERT INTO %s (k, v) VALUES (1, %d)" % (rf1, cl), cl))
    assert session.execute("SELECT v FROM %s WHERE k = 1" % rf1).one().v == cl


@pytest.mark.parametrize("cl", READ_LEVELS_RF1, ids=lambda c: CL.value_to_name[c])
def test_reads_rf1(session, rf1, cl):
    session.execute("INSERT INTO %s (k, v) VALUES (1, 7)" % rf1)
    assert session.execute(stmt("SELECT v FROM %s WHERE k = 1" % rf1, cl)).one().v == 7


@pytest.mark.parametrize("cl,required", [(CL.TWO, 2), (CL.THREE, 3)],
                         ids=["TWO", "THREE"])
def test_more_replicas_than_rf1(session, rf1, cl, required):
    with pytest.raises(Unavailable) as e:
        session.execute(stmt("INSERT INTO %s (k, v) VALUES (1, 1)" % rf1, cl))
    assert (e.value.required_replicas, e.value.alive_replicas) == (required, 1)
    assert e.value.consistency == cl
    assert session.execute("SELECT * FROM %s WHERE k = 1" % rf1).one() is None


@pytest.mark.parametrize("cl,required", [(CL.QUORUM, 2), (CL.ALL, 3), (CL.TWO, 2), (CL.THREE, 3)],
                         ids=["QUORUM", "ALL", "TWO", "THREE"])
def test_rf3_on_one_node_unavailable(session, rf3, cl, required):
    with pytest.raises(Unavailable) as e:
        session.execute(stmt("INSERT INTO %s (k, v) VALUES (1, 1)" % rf3, cl))
    assert (e.value.required_replicas, e.value.alive_replicas) == (required, 1)
    assert e.value.consistency == cl
    with pytest.raises(Unavailable) as e:
        session.execute(stmt("SELECT * FROM %s WHERE k = 1" % rf3, cl))
    assert (e.value.required_replicas, e.value.alive_replicas) == (required, 1)
    # An unavailable write wrote nothing.
    assert session.execute(stmt("SELECT * FROM %s WHERE k = 1" % rf3, CL.ONE)).one() is None


@pytest.mark.parametrize("cl", [CL.ONE, CL.LOCAL_ONE, CL.ANY], ids=lambda c: CL.value_to_name[c])
def test_rf3_on_one_node_one_works(session, rf3, cl):
    session.execute(stmt("INSERT INTO %s (k, v) VALUES (2, 22)" % rf3, cl))
    assert session.execute(stmt("SELECT v FROM %s WHERE k = 2" % rf3, CL.ONE)).one().v == 22


def test_nts_local_quorum_unavailable(session, nts3):
    with pytest.raises(Unavailable) as e:
        session.execute(stmt("INSERT INTO %s (k, v) VALUES (1, 1)" % nts3, CL.LOCAL_QUORUM))
    assert (e.value.required_replicas, e.value.alive_replicas) == (2, 1)
    session.execute(stmt("INSERT INTO %s (k, v) VALUES (1, 1)" % nts3, CL.LOCAL_ONE))
    assert session.execute(stmt("SELECT v FROM %s WHERE k = 1" % nts3, CL.LOCAL_ONE)).one().v == 1


def test_serial_levels_refused(session, rf1):
    """No lightweight transactions: SERIAL and LOCAL_SERIAL are refused as the
    level of a read or a write, with a message that says why."""
    session.execute("INSERT INTO %s (k, v) VALUES (1, 1)" % rf1)
    for cl in (CL.SERIAL, CL.LOCAL_SERIAL):
        name = CL.value_to_name[cl]
        with pytest.raises(InvalidRequest) as e:
            session.execute(stmt("SELECT v FROM %s WHERE k = 1" % rf1, cl))
        assert "%s reads need lightweight transactions" % name in str(e.value)
        with pytest.raises(InvalidRequest) as e:
            session.execute(stmt("INSERT INTO %s (k, v) VALUES (1, 2)" % rf1, cl))
        assert "You must use conditional updates for serializable writes" in str(e.value)
    assert session.execute("SELECT v FROM %s WHERE k = 1" % rf1).one().v == 1


def test_serial_consistency_field_ignored(session, rf1):
    """The frame's serial_consistency (sent on every request by the Java driver
    and gocql) is accepted and ignored on statements without conditions."""
    for scl in (CL.SERIAL, CL.LOCAL_SERIAL):
        q = SimpleStatement("INSERT INTO %s (k, v) VALUES (3, %d)" % (rf1, scl),
                            consistency_level=CL.ONE, serial_consistency_level=scl)
        session.execute(q)
        q = SimpleStatement("SELECT v FROM %s WHERE k = 3" % rf1,
                            consistency_level=CL.ONE, serial_consistency_level=scl)
        assert session.execute(q).one().v == scl


@pytest.fixture
def dc2_down(make_cluster, clusters):
    """A session on 127.0.0.1 (datacenter1) of a cluster whose other node,
    127.0.0.2, is in dc2 and stopped: dc2 is a known datacenter (gossip
    told us) with no live member. NetworkTopologyStrategy only takes known
    datacenters (docs/cql.md section 6)."""
    c = make_cluster(size=2, start=False, config={"gossip_interval_ms": 200})
    c[1].set_config(datacenter="dc2")
    c.start()
    c.wait_converged()
    c[1].stop()
    c.wait_log(c[0], "/127.0.0.2 is now DOWN")
    # no schema agreement to wait for: the dc2 node is down
    return clusters.connect(c[0], max_schema_agreement_wait=0)[1]


def test_each_quorum_per_datacenter(dc2_down):
    """EACH_QUORUM needs a quorum in every datacenter of the keyspace; reads
    accept it too. dc2 has no live member, so it names dc2."""
    session = dc2_down
    session.execute("CREATE KEYSPACE eq2 WITH replication = "
                    "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1, 'dc2': 1}")
    session.execute("CREATE TABLE eq2.t (k int PRIMARY KEY, v int)")
    for q in ("INSERT INTO eq2.t (k, v) VALUES (1, 1)", "SELECT v FROM eq2.t WHERE k = 1"):
        with pytest.raises(Unavailable) as e:
            session.execute(stmt(q, CL.EACH_QUORUM))
        assert (e.value.required_replicas, e.value.alive_replicas) == (1, 0)
        assert "EACH_QUORUM in DC dc2" in str(e.value)
    session.execute(stmt("INSERT INTO eq2.t (k, v) VALUES (1, 1)", CL.LOCAL_ONE))
    assert session.execute(stmt("SELECT v FROM eq2.t WHERE k = 1", CL.LOCAL_QUORUM)).one().v == 1


def test_any_needs_a_live_replica(dc2_down):
    """Until hints exist, ANY needs one live replica: a keyspace whose only
    replicas are in a datacenter with no live node answers Unavailable."""
    session = dc2_down
    session.execute("CREATE KEYSPACE far WITH replication = "
                    "{'class': 'NetworkTopologyStrategy', 'dc2': 1}")
    session.execute("CREATE TABLE far.t (k int PRIMARY KEY, v int)")
    with pytest.raises(Unavailable) as e:
        session.execute(stmt("INSERT INTO far.t (k, v) VALUES (1, 1)", CL.ANY))
    assert (e.value.required_replicas, e.value.alive_replicas) == (1, 0)


def test_batch_consistency(session, rf3):
    b = BatchStatement(consistency_level=CL.ALL)
    b.add("INSERT INTO %s (k, v) VALUES (5, 5)" % rf3)
    with pytest.raises(Unavailable):
        session.execute(b)
    b = BatchStatement(consistency_level=CL.ONE)
    b.add("INSERT INTO %s (k, v) VALUES (5, 5)" % rf3)
    session.execute(b)
    assert session.execute("SELECT v FROM %s WHERE k = 5" % rf3).one().v == 5


# --- USING CONSISTENCY: the statement clause overrides the protocol level ----
# Placement (Sibyl extension, as parser/parse_dml.c has it): in
# INSERT/UPDATE/DELETE/BATCH it is one more USING option; every statement
# also takes it as a trailing clause (after LIMIT / ALLOW FILTERING in SELECT).

def test_using_consistency_insert_overrides_protocol_level(session, rf3):
    with pytest.raises(Unavailable) as e:
        session.execute(stmt("INSERT INTO %s (k, v) VALUES (1, 1) USING CONSISTENCY ALL" % rf3, CL.ONE))
    assert e.value.consistency == CL.ALL
    session.execute(stmt("INSERT INTO %s (k, v) VALUES (1, 1) USING CONSISTENCY ONE" % rf3, CL.ALL))
    session.execute(stmt("INSERT INTO %s (k, v) VALUES (2, 2) USING TTL 100 AND CONSISTENCY ONE" % rf3, CL.ALL))
    assert session.execute("SELECT v FROM %s WHERE k = 2" % rf3).one().v == 2


def test_using_consistency_update_delete(session, rf3):
    session.execute(stmt("UPDATE %s USING CONSISTENCY LOCAL_ONE SET v = 3 WHERE k = 3" % rf3, CL.ALL))
    assert session.execute("SELECT v FROM %s WHERE k = 3" % rf3).one().v == 3
    with pytest.raises(Unavailable):
        session.execute(stmt("UPDATE %s USING CONSISTENCY QUORUM SET v = 4 WHERE k = 3" % rf3, CL.ONE))
    with pytest.raises(Unavailable):
        session.execute(stmt("DELETE FROM %s USING CONSISTENCY ALL WHERE k = 3" % rf3, CL.ONE))
    assert session.execute("SELECT v FROM %s WHERE k = 3" % rf3).one().v == 3
    session.execute(stmt("DELETE FROM %s USING CONSISTENCY ONE WHERE k = 3" % rf3, CL.ALL))
    assert session.execute("SELECT v FROM %s WHERE k = 3" % rf3).one() is None


def test_using_consistency_select(session, rf3):
    session.execute("INSERT INTO %s (k, v) VALUES (7, 70)" % rf3)
    with pytest.raises(Unavailable):
        session.execute(stmt("SELECT v FROM %s WHERE k = 7 USING CONSISTENCY ALL" % rf3, CL.ONE))
    r = session.execute(stmt("SELECT v FROM %s WHERE k = 7 USING CONSISTENCY ONE" % rf3, CL.ALL)).one()
    assert r.v == 70
    r = session.execute(stmt("SELECT v FROM %s WHERE k = 7 LIMIT 1 USING CONSISTENCY LOCAL_ONE" % rf3,
                             CL.ALL)).one()
    assert r.v == 70


def test_using_consistency_batch(session, rf3):
    with pytest.raises(Unavailable):
        session.execute(stmt("BEGIN BATCH USING CONSISTENCY ALL "
                             "INSERT INTO %s (k, v) VALUES (8, 8) APPLY BATCH" % rf3, CL.ONE))
    assert session.execute("SELECT * FROM %s WHERE k = 8" % rf3).one() is None
    session.execute(stmt("BEGIN UNLOGGED BATCH USING CONSISTENCY ONE "
                         "INSERT INTO %s (k, v) VALUES (8, 8) APPLY BATCH" % rf3, CL.ALL))
    assert session.execute("SELECT v FROM %s WHERE k = 8" % rf3).one().v == 8


def test_using_consistency_trailing_everywhere(session, rf3):
    with pytest.raises(Unavailable):
        session.execute(stmt("INSERT INTO %s (k, v) VALUES (9, 9) USING TTL 100 USING CONSISTENCY ALL" % rf3, CL.ONE))
    session.execute(stmt("INSERT INTO %s (k, v) VALUES (9, 9) USING CONSISTENCY ONE" % rf3, CL.ALL))
    with pytest.raises(Unavailable):
        session.execute(stmt("UPDATE %s SET v = 10 WHERE k = 9 USING CONSISTENCY QUORUM" % rf3, CL.ONE))
    session.execute(stmt("UPDATE %s SET v = 10 WHERE k = 9 USING CONSISTENCY ONE" % rf3, CL.ALL))
    assert session.execute("SELECT v FROM %s WHERE k = 9" % rf3).one().v == 10
    with pytest.raises(Unavailable):
        session.execute(stmt("BEGIN BATCH INSERT INTO %s (k, v) VALUES (10, 1) APPLY BATCH USING CONSISTENCY ALL"
                             % rf3, CL.ONE))
    with pytest.raises(Unavailable):
        session.execute(stmt("DELETE FROM %s WHERE k = 9 USING CONSISTENCY ALL" % rf3, CL.ONE))
    session.execute(stmt("DELETE FROM %s WHERE k = 9 USING CONSISTENCY ONE" % rf3, CL.ALL))
    assert session.execute("SELECT v FROM %s WHERE k = 9" % rf3).one() is None


def test_using_consistency_fixed_at_prepare(session, rf3):
    ps = session.prepare("SELECT v FROM %s WHERE k = ? USING CONSISTENCY ALL" % rf3)
    ps.consistency_level = CL.ONE
    with pytest.raises(Unavailable) as e:
        session.execute(ps, (1,))
    assert e.value.consistency == CL.ALL
    ps = session.prepare("UPDATE %s SET v = ? WHERE k = ? USING CONSISTENCY ONE" % rf3)
    ps.consistency_level = CL.ALL
    session.execute(ps, (5, 11))
    assert session.execute("SELECT v FROM %s WHERE k = 11" % rf3).one().v == 5
