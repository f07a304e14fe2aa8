"""List operations that read the list before writing (docs/cql-compat.md,
"List operations"): l[i] = v, DELETE l[i], l = l - [..], with Cassandra's
messages, through the Python driver; plus prepend/append with bind markers.
The reads go through the read pool when the list is in an SSTable."""

import uuid

import pytest

from cassandra import ConsistencyLevel, InvalidRequest
from cassandra.query import SimpleStatement, BatchStatement, UNSET_VALUE

from conftest import wait_until
from sibyl_harness import admin_get, flush
from test_coordinator import session_on


@pytest.fixture
def t(session, ks):
    session.execute("CREATE TABLE %s.l (k int, c int, l list<int>, s list<text> static, v int, "
                    "PRIMARY KEY (k, c))" % ks)
    return "%s.l" % ks


def lst(session, t, k=1, c=1):
    return session.execute("SELECT l FROM %s WHERE k = %d AND c = %d" % (t, k, c)).one().l


def refused(session, q, msg, args=None):
    with pytest.raises(InvalidRequest) as e:
        session.execute(q, args)
    assert msg in str(e.value), str(e.value)


def test_set_by_index(session, t):
    session.execute("INSERT INTO %s (k, c, l) VALUES (1, 1, [1, 2, 3])" % t)
    session.execute("UPDATE %s SET l[1] = 20 WHERE k = 1 AND c = 1" % t)
    assert lst(session, t) == [1, 20, 3]
    session.execute("UPDATE %s SET l[0] = 10, l[2] = 30, v = 7 WHERE k = 1 AND c = 1" % t)
    assert lst(session, t) == [10, 20, 30]
    assert session.execute("SELECT v FROM %s WHERE k = 1 AND c = 1" % t).one().v == 7
    # setting an element to null removes it
    session.execute("UPDATE %s SET l[0] = null WHERE k = 1 AND c = 1" % t)
    assert lst(session, t) == [20, 30]


def test_set_by_index_errors_change_nothing(session, t):
    session.execute("INSERT INTO %s (k, c, l) VALUES (1, 1, [1, 2, 3])" % t)
    refused(session, "UPDATE %s SET l[3] = 9 WHERE k = 1 AND c = 1" % t,
            "List index 3 out of bound, list has size 3")
    refused(session, "UPDATE %s SET l[-1] = 9 WHERE k = 1 AND c = 1" % t,
            "List index -1 out of bound, list has size 3")
    # one bad index fails the whole statement
    refused(session, "UPDATE %s SET l[0] = 9, v = 1 , l[7] = 1 WHERE k = 1 AND c = 1" % t,
            "List index 7 out of bound, list has size 3")
    assert lst(session, t) == [1, 2, 3]
    assert session.execute("SELECT v FROM %s WHERE k = 1 AND c = 1" % t).one().v is None
    refused(session, "UPDATE %s SET l[0] = 9 WHERE k = 1 AND c = 2" % t,
            "Attempted to set an element on a list which is null")
    refused(session, "UPDATE %s SET v[0] = 9 WHERE k = 1 AND c = 1" % t,
            "Invalid operation (v[0] = 9) for non collection column v")
    assert session.execute("SELECT * FROM %s WHERE k = 1 AND c = 2" % t).one() is None


def test_delete_by_index(session, t):
    session.execute("INSERT INTO %s (k, c, l) VALUES (1, 1, [1, 2, 3, 4])" % t)
    session.execute("DELETE l[1] FROM %s WHERE k = 1 AND c = 1" % t)
    assert lst(session, t) == [1, 3, 4]
    # each operation sees the list the ones before it left: l[2] of [3, 4]
    refused(session, "DELETE l[0], l[2] FROM %s WHERE k = 1 AND c = 1" % t, "List index 2 out of bound, list has size 2")
    session.execute("DELETE l[0], l[0] FROM %s WHERE k = 1 AND c = 1" % t)
    assert lst(session, t) == [4]
    session.execute("UPDATE %s SET l = l + [3] WHERE k = 1 AND c = 1" % t)
    session.execute("DELETE l[0] FROM %s WHERE k = 1 AND c = 1" % t)
    assert lst(session, t) == [3]
    refused(session, "DELETE l[1] FROM %s WHERE k = 1 AND c = 1" % t, "List index 1 out of bound, list has size 1")
    refused(session, "DELETE l[0] FROM %s WHERE k = 1 AND c = 9" % t,
            "Attempted to delete an element from a list which is null")
    session.execute("DELETE l[0] FROM %s WHERE k = 1 AND c = 1" % t)
    assert lst(session, t) is None
    # the row lives on through its INSERT marker
    assert session.execute("SELECT c FROM %s WHERE k = 1" % t).one().c == 1


def test_discard_by_value(session, t):
    session.execute("INSERT INTO %s (k, c, l) VALUES (1, 1, [1, 2, 1, 3, 2])" % t)
    session.execute("UPDATE %s SET l = l - [1, 3] WHERE k = 1 AND c = 1" % t)  # every occurrence
    assert lst(session, t) == [2, 2]
    session.execute("UPDATE %s SET l = l - [7] WHERE k = 1 AND c = 1" % t)
    session.execute("UPDATE %s SET l = l - [] WHERE k = 1 AND c = 1" % t)
    assert lst(session, t) == [2, 2]
    session.execute("UPDATE %s SET l = l - [2] WHERE k = 1 AND c = 1" % t)
    assert lst(session, t) is None
    # on a row that does not exist: nothing happens, nothing is created
    session.execute("UPDATE %s SET l = l - [2] WHERE k = 5 AND c = 5" % t)
    assert session.execute("SELECT * FROM %s WHERE k = 5" % t).one() is None


def test_static_list(session, t):
    session.execute("INSERT INTO %s (k, s) VALUES (1, ['a', 'b', 'c'])" % t)
    session.execute("UPDATE %s SET s[2] = 'z' WHERE k = 1" % t)
    session.execute("DELETE s[0] FROM %s WHERE k = 1" % t)
    assert session.execute("SELECT s FROM %s WHERE k = 1" % t).one().s == ["b", "z"]
    session.execute("UPDATE %s SET s = s - ['z'] WHERE k = 1" % t)
    assert session.execute("SELECT s FROM %s WHERE k = 1" % t).one().s == ["b"]


def test_bind_markers(session, t):
    session.execute("INSERT INTO %s (k, c, l) VALUES (1, 1, [1, 2, 3])" % t)
    setter = session.prepare("UPDATE %s SET l[?] = ? WHERE k = ? AND c = ?" % t)
    session.execute(setter, (2, 30, 1, 1))
    assert lst(session, t) == [1, 2, 30]
    refused(session, setter, "List index 5 out of bound, list has size 3", (5, 1, 1, 1))
    refused(session, setter, "Invalid null value for list index", (None, 1, 1, 1))
    refused(session, setter, "Invalid unset value for list index", (UNSET_VALUE, 1, 1, 1))
    session.execute(setter, (0, UNSET_VALUE, 1, 1))  # an unset value writes nothing
    refused(session, setter, "List index 9 out of bound, list has size 3", (9, UNSET_VALUE, 1, 1))
    assert lst(session, t) == [1, 2, 30]
    deleter = session.prepare("DELETE l[?] FROM %s WHERE k = ? AND c = ?" % t)
    session.execute(deleter, (UNSET_VALUE, 1, 1))  # nothing
    refused(session, deleter, "Invalid null value for list index", (None, 1, 1))
    session.execute(deleter, (0, 1, 1))
    assert lst(session, t) == [2, 30]
    discard = session.prepare("UPDATE %s SET l = l - ? WHERE k = ? AND c = ?" % t)
    session.execute(discard, ([30], 1, 1))
    session.execute(discard, (None, 1, 1))
    session.execute(discard, (UNSET_VALUE, 1, 1))
    assert lst(session, t) == [2]
    append = session.prepare("UPDATE %s SET l = l + ? WHERE k = ? AND c = ?" % t)
    prepend = session.prepare("UPDATE %s SET l = ? + l WHERE k = ? AND c = ?" % t)
    session.execute(append, ([3, 4], 1, 1))
    session.execute(prepend, ([0, 1], 1, 1))
    session.execute(prepend, (UNSET_VALUE, 1, 1))
    session.execute(append, (None, 1, 1))
    assert lst(session, t) == [0, 1, 2, 3, 4]


def test_any_is_refused_for_reading_operations(session, t):
    session.execute("INSERT INTO %s (k, c, l) VALUES (1, 1, [1, 2, 3])" % t)
    msg = "Write operation require a read but consistency ANY is not supported on reads"
    for q in ("UPDATE %s SET l[0] = 5 WHERE k = 1 AND c = 1",
              "DELETE l[0] FROM %s WHERE k = 1 AND c = 1",
              "UPDATE %s SET l = l - [1] WHERE k = 1 AND c = 1"):
        refused(session, SimpleStatement(q % t, consistency_level=ConsistencyLevel.ANY), msg)
    # an append needs no read: ANY is fine
    session.execute(SimpleStatement("UPDATE %s SET l = l + [4] WHERE k = 1 AND c = 1" % t,
                                    consistency_level=ConsistencyLevel.ANY))
    assert lst(session, t) == [1, 2, 3, 4]


def test_in_a_batch(session, t):
    session.execute("INSERT INTO %s (k, c, l) VALUES (1, 1, [1, 2, 3])" % t)
    session.execute("INSERT INTO %s (k, c, l) VALUES (1, 2, [4, 5, 6])" % t)
    session.execute("INSERT INTO %s (k, c, l) VALUES (2, 1, [7, 8])" % t)
    session.execute("BEGIN BATCH "
                    "UPDATE %s SET l[0] = 10 WHERE k = 1 AND c = 1; "
                    "DELETE l[2] FROM %s WHERE k = 1 AND c = 2; "
                    "UPDATE %s SET l = l - [8], v = 1 WHERE k = 2 AND c = 1; "
                    "APPLY BATCH" % (t, t, t))
    assert lst(session, t) == [10, 2, 3]
    assert lst(session, t, 1, 2) == [4, 5]
    assert lst(session, t, 2, 1) == [7]
    # the batch opcode, prepared statements with their own values; one bad
    # index fails the whole batch
    b = BatchStatement()
    b.add(session.prepare("UPDATE %s SET l[?] = ? WHERE k = ? AND c = ?" % t), (1, 20, 1, 1))
    b.add(session.prepare("DELETE l[?] FROM %s WHERE k = ? AND c = ?" % t), (5, 1, 2))
    refused(session, b, "List index 5 out of bound, list has size 2")
    assert lst(session, t) == [10, 2, 3]
    b = BatchStatement()
    b.add(session.prepare("UPDATE %s SET l[?] = ? WHERE k = ? AND c = ?" % t), (1, 20, 1, 1))
    b.add(session.prepare("DELETE l[?] FROM %s WHERE k = ? AND c = ?" % t), (0, 1, 2))
    session.execute(b)
    assert lst(session, t) == [10, 20, 3]
    assert lst(session, t, 1, 2) == [5]


def test_table_without_clustering_and_ttl(session, ks):
    session.execute("CREATE TABLE %s.p (k int PRIMARY KEY, l list<text>)" % ks)
    session.execute("INSERT INTO %s.p (k, l) VALUES (1, ['a', 'b'])" % ks)
    session.execute("UPDATE %s.p USING TTL 1000 SET l[1] = 'B', l[0] = 'A' WHERE k = 1" % ks)
    r = session.execute("SELECT l, TTL(l) AS t FROM %s.p WHERE k = 1" % ks).one()
    assert r.l == ["A", "B"]
    assert all(0 < x <= 1000 for x in r.t)



def test_lists_read_from_sstables(node, session, t):
    for c in range(20):
        session.execute("INSERT INTO %s (k, c, l) VALUES (1, %d, [%d, %d, %d])" % (t, c, c, c + 1, c + 2))
    flush(node)
    for c in range(0, 20, 2):
        session.execute("UPDATE %s SET l[1] = 0 WHERE k = 1 AND c = %d" % (t, c))
        session.execute("DELETE l[0] FROM %s WHERE k = 1 AND c = %d" % (t, c + 1))
    rows = {r.c: r.l for r in session.execute("SELECT c, l FROM %s WHERE k = 1" % t)}
    for c in range(20):
        assert rows[c] == ([c, 0, c + 2] if c % 2 == 0 else [c + 1, c + 2])


def test_operations_see_the_ones_before_them(session, ks):
    """As Cassandra merges a statement's pending updates into the row it read
    before each list operation: in order, the higher timestamp wins, at equal
    ones a tombstone and then the greater value."""
    session.execute("CREATE TABLE %s.m (pk int PRIMARY KEY, l list<int>)" % ks)
    t = ks + ".m"

    def q(stmt, *args):
        return session.execute(session.prepare(stmt % t), args)

    def got():
        return session.execute("SELECT l FROM %s WHERE pk = 1" % t).one().l

    q("INSERT INTO %s (pk, l) VALUES (1, [1, 2, 3, 4])")
    q("UPDATE %s SET l[?] = ?, l[?] = ? WHERE pk = ?", 2, 7, 2, 8, 1)       # same element twice: 8 > 7
    assert got() == [1, 2, 8, 4]
    q("UPDATE %s SET l[?] = ?, l[?] = ? WHERE pk = ?", 2, 9, 2, 6, 1)       # 9 > 6
    assert got() == [1, 2, 9, 4]
    q("DELETE l[?], l[?] FROM %s WHERE pk = ?", 2, 2, 1)                   # the element, then the next
    assert got() == [1, 2]
    q("UPDATE %s SET l = l + ?, l[?] = ? WHERE pk = ?", [3, 4], 3, 7, 1)   # sets an appended element
    assert got() == [1, 2, 3, 7]
    q("UPDATE %s SET l = l + ?, l[?] = ? WHERE pk = ?", [6, 8], 4, 5, 1)   # 6 > 5 stays
    assert got() == [1, 2, 3, 7, 6, 8]
    with pytest.raises(InvalidRequest) as e:                               # the append comes after
        q("UPDATE %s SET l[?] = ?, l = l + ? WHERE pk = ?", 6, 5, [9], 1)
    assert "List index 6 out of bound, list has size 6" in str(e.value)
    q("UPDATE %s SET l[?] = ?, l = l - ? WHERE pk = ?", 2, 8, [8], 1)      # the updated element goes too
    assert got() == [1, 2, 7, 6]
    with pytest.raises(InvalidRequest) as e:
        q("UPDATE %s SET l = l - ?, l[?] = ? WHERE pk = ?", [6], 3, 4, 1)
    assert "List index 3 out of bound, list has size 3" in str(e.value)
    q("UPDATE %s SET l[?] = ?, l = l - ? WHERE pk = ?", 2, 8, [1], 1)
    assert got() == [2, 8, 6]
    q("UPDATE %s SET l = l - ?, l[?] = ? WHERE pk = ?", [2, 6], 0, 9, 1)
    assert got() == [9]


def test_list_read_through_a_coordinator_that_is_not_a_replica(make_cluster, clusters):
    """3 nodes, RF 1: the list of a partition owned by node 2 or 3 is read
    through its replica (at the statement's level) when node 1 coordinates,
    so index and by-value operations see it (they saw node 1's empty copy
    before: 'list index out of bound')."""
    c = make_cluster(config={"gossip_interval_ms": 200, "phi_convict_threshold": 6})
    c.wait_converged()
    s = session_on(clusters, c[0])
    s.execute("CREATE KEYSPACE kl WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE kl.l (k int, c int, l list<int>, s list<text> static, PRIMARY KEY (k, c)) WITH id = %s"
              % uuid.uuid4())
    for n in c[1:]:
        o = session_on(clusters, n)
        wait_until(lambda: o.execute("SELECT id FROM system_schema.tables WHERE keyspace_name = 'kl' "
                                     "AND table_name = 'l'").one() is not None,
                   timeout=30, what="the table reaches %s" % n.host)
    keys = [k for k in range(200)
            if admin_get(c[0].host, c[0].admin_port, "endpoints/kl/l/%d" % k)["endpoints"] != [c[0].host]][:3]
    assert len(keys) == 3
    t = "kl.l"
    for k in keys:
        s.execute("INSERT INTO %s (k, c, l, s) VALUES (%d, 1, [1, 2, 3, 2], ['a', 'b'])" % (t, k))
        s.execute(SimpleStatement("UPDATE %s SET l[1] = 20 WHERE k = %d AND c = 1" % (t, k),
                                  consistency_level=ConsistencyLevel.ONE))
        assert lst(s, t, k) == [1, 20, 3, 2]
        s.execute("UPDATE %s SET l = l - [2] WHERE k = %d AND c = 1" % (t, k))
        assert lst(s, t, k) == [1, 20, 3]
        s.execute("DELETE l[0] FROM %s WHERE k = %d AND c = 1" % (t, k))
        assert lst(s, t, k) == [20, 3]
        s.execute("UPDATE %s SET s[1] = 'z' WHERE k = %d" % (t, k))  # a static list
        assert s.execute("SELECT s FROM %s WHERE k = %d" % (t, k)).one().s == ["a", "z"]
        refused(s, "UPDATE %s SET l[5] = 1 WHERE k = %d AND c = 1" % (t, k), "List index 5 out of bound, list has size 2")
        b = BatchStatement(consistency_level=ConsistencyLevel.QUORUM)
        b.add(SimpleStatement("UPDATE %s SET l[0] = 7 WHERE k = %d AND c = 1" % (t, k)))
        b.add(SimpleStatement("DELETE l[1] FROM %s WHERE k = %d AND c = 1" % (t, k)))
        s.execute(b)
        assert lst(s, t, k) == [7]
