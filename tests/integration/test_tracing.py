"""Request tracing: the TRACING frame flag (protocol spec 2.2) and the
system_traces tables (Cassandra 4.0 TraceKeyspace), read the way the Python
driver reads them (ResultSet.get_query_trace).
"""

import struct
import uuid

import pytest

import cqlframe
from cqlframe import OP_QUERY, OP_RESULT, RawConnection, query_body

FLAG_TRACING = 0x02


@pytest.fixture
def tks(session, ks):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v text)" % ks)
    session.execute("INSERT INTO %s.t (k, v) VALUES (1, 'one')" % ks)
    return ks


def activities(trace):
    return [e.description for e in trace.events]


def check_elapsed(trace):
    elapsed = [e.source_elapsed.total_seconds() for e in trace.events]
    assert elapsed == sorted(elapsed), "source_elapsed goes backwards: %r" % elapsed
    # every event happened before the request completed
    assert elapsed[-1] <= trace.duration.total_seconds()


def test_traced_read(session, tks, node):
    q = "SELECT * FROM %s.t WHERE k = 1" % tks
    rs = session.execute(q, trace=True)
    assert rs.one().v == "one"
    trace = rs.get_query_trace(max_wait_sec=5)
    assert trace.request_type == "Execute CQL3 query"
    assert trace.duration is not None and trace.duration.total_seconds() > 0
    assert str(trace.coordinator) == node.host
    assert str(trace.client) == node.host  # the test connects from the node's own address
    assert trace.parameters["query"] == q
    assert trace.parameters["consistency_level"] == "LOCAL_ONE"
    assert trace.parameters["page_size"] == "5000"
    acts = activities(trace)
    assert acts == ["Parsing " + q, "Preparing statement", "Executing single-partition query on t",
                    "Read 1 live rows and 0 tombstone cells"]
    assert all(str(e.source) == node.host for e in trace.events)
    assert all(e.thread_name for e in trace.events)
    check_elapsed(trace)
    # events are ordered by their timeuuid, which is not before the session started
    started = trace.started_at.replace(microsecond=trace.started_at.microsecond // 1000 * 1000)
    assert all(e.datetime >= started for e in trace.events)


def test_traced_write_scan_and_tombstones(session, tks):
    rs = session.execute("INSERT INTO %s.t (k, v) VALUES (2, 'two')" % tks, trace=True)
    acts = activities(rs.get_query_trace(max_wait_sec=5))
    assert acts[-3:] == ["Determining replicas for mutation", "Appending to commitlog", "Adding to t memtable"]

    session.execute("CREATE TABLE %s.c (k int, c int, v text, PRIMARY KEY (k, c))" % tks)
    for c in range(3):
        session.execute("INSERT INTO %s.c (k, c, v) VALUES (1, %d, 'x')" % (tks, c))
    session.execute("DELETE FROM %s.c WHERE k = 1 AND c = 1" % tks)
    rs = session.execute("SELECT * FROM %s.c WHERE k = 1" % tks, trace=True)
    assert len(list(rs)) == 2
    acts = activities(rs.get_query_trace(max_wait_sec=5))
    assert acts[-2:] == ["Executing single-partition query on c", "Read 2 live rows and 1 tombstone cells"]

    rs = session.execute("SELECT * FROM %s.t" % tks, trace=True)
    acts = activities(rs.get_query_trace(max_wait_sec=5))
    assert acts[-2:] == ["Executing seq scan on t", "Read 2 live rows and 0 tombstone cells"]


def test_traced_prepared_and_batch(session, tks):
    ps = session.prepare("SELECT v FROM %s.t WHERE k = ?" % tks)
    rs = session.execute(ps, [1], trace=True)
    trace = rs.get_query_trace(max_wait_sec=5)
    assert trace.request_type == "Execute CQL3 prepared query"
    assert trace.parameters["query"] == "SELECT v FROM %s.t WHERE k = ?" % tks
    # no parsing: the statement was prepared before
    assert activities(trace) == ["Executing single-partition query on t", "Read 1 live rows and 0 tombstone cells"]

    from cassandra.query import BatchStatement
    b = BatchStatement()
    b.add("INSERT INTO %s.t (k, v) VALUES (3, 'three')" % tks)
    b.add("INSERT INTO %s.t (k, v) VALUES (4, 'four')" % tks)
    trace = session.execute(b, trace=True).get_query_trace(max_wait_sec=5)
    assert trace.request_type == "Execute batch of CQL3 queries"
    assert activities(trace).count("Adding to t memtable") == 1


def test_untraced_requests_leave_no_session(session, tks):
    count = "SELECT count(*) FROM system_traces.sessions"
    before = session.execute(count).one()[0]
    session.execute("SELECT * FROM %s.t WHERE k = 1" % tks)
    assert session.execute(count).one()[0] == before
    session.execute("SELECT * FROM %s.t WHERE k = 1" % tks, trace=True)
    assert session.execute(count).one()[0] == before + 1


def test_trace_tables_schema(cluster, session):
    ks = cluster.metadata.keyspaces["system_traces"]
    sessions = ks.tables["sessions"]
    assert [c.name for c in sessions.partition_key] == ["session_id"]
    types = {c.name: c.cql_type for c in sessions.columns.values()}
    assert types == {"session_id": "uuid", "client": "inet", "command": "text", "coordinator": "inet",
                     "coordinator_port": "int", "duration": "int", "parameters": "map<text, text>",
                     "request": "text", "started_at": "timestamp"}
    events = ks.tables["events"]
    assert [c.name for c in events.clustering_key] == ["event_id"]
    types = {c.name: c.cql_type for c in events.columns.values()}
    assert types == {"session_id": "uuid", "event_id": "timeuuid", "activity": "text", "source": "inet",
                     "source_elapsed": "int", "source_port": "int", "thread": "text"}
    with pytest.raises(Exception, match="system_traces"):
        session.execute("INSERT INTO system_traces.sessions (session_id) VALUES (now())")


def test_raw_frame_tracing_flag(node, session):
    """The reply to a TRACING request has the flag and the session id first;
    the session row then exists with command QUERY and a duration."""
    with RawConnection(node.host, node.port) as c:
        c.startup()
        f = c.request(OP_QUERY, query_body("SELECT release_version FROM system.local"), stream=3)
        assert f.opcode == OP_RESULT and f.flags & FLAG_TRACING == 0
        c.send(cqlframe.frame(OP_QUERY, query_body("SELECT release_version FROM system.local"), stream=4,
                              flags=FLAG_TRACING))
        f = c.read_frame()
        assert f.opcode == OP_RESULT and f.stream == 4
        assert f.flags & FLAG_TRACING
        sid = uuid.UUID(bytes=f.body[:16])
        assert sid.version == 1
        assert struct.unpack(">i", f.body[16:20])[0] == cqlframe.RESULT_ROWS
    row = session.execute("SELECT command, duration, request, coordinator_port FROM system_traces.sessions "
                          "WHERE session_id = %s" % sid).one()
    assert row.command == "QUERY" and row.request == "Execute CQL3 query"
    assert row.duration is not None and row.duration >= 0 and row.coordinator_port == node.storage_port
    events = list(session.execute("SELECT event_id, activity FROM system_traces.events WHERE session_id = %s" % sid))
    assert [e.activity for e in events] == ["Parsing SELECT release_version FROM system.local",
                                            "Preparing statement"]
    assert events[0].event_id.time <= events[1].event_id.time


def test_trace_is_bounded(session, tks):
    """A read of many partitions records two events each until the per
    session bound (256), the last of which says the trace stops there."""
    keys = ", ".join(str(i) for i in range(200))
    rs = session.execute("SELECT * FROM %s.t WHERE k IN (%s)" % (tks, keys), trace=True)
    assert len(list(rs)) == 1
    acts = activities(rs.get_query_trace(max_wait_sec=5))
    assert len(acts) == 256
    assert acts[-1] == "Trace truncated: later events are not recorded"
    assert acts[2] == "Executing single-partition query on t" and acts[3].startswith("Read ")
    assert acts[-2].startswith("Executing single-partition query") or acts[-2].startswith("Read ")
