"""BATCH: logged and unlogged, CQL text and protocol BATCH messages, prepared
statements inside batches, batch timestamps, and all-or-nothing validation."""

import pytest

from cassandra import InvalidRequest
from cassandra.protocol import SyntaxException
from cassandra.query import BatchStatement, BatchType, SimpleStatement


@pytest.fixture
def t(session, ks):
    session.execute("CREATE TABLE %s.t (k int, c int, v text, PRIMARY KEY (k, c))" % ks)
    session.execute("CREATE TABLE %s.other (id int PRIMARY KEY, note text)" % ks)
    return ks + ".t"


def rows(session, t):
    return sorted((r.k, r.c, r.v) for r in session.execute("SELECT k, c, v FROM %s" % t))


@pytest.mark.parametrize("kind", ["", "UNLOGGED "])
def test_cql_text_batch(session, t, ks, kind):
    session.execute("INSERT INTO %s (k, c, v) VALUES (9, 9, 'doomed')" % t)
    session.execute(
        "BEGIN %sBATCH "
        "INSERT INTO %s (k, c, v) VALUES (1, 1, 'a'); "
        "INSERT INTO %s (k, c, v) VALUES (2, 1, 'b') "
        "UPDATE %s SET v = 'c' WHERE k = 1 AND c = 2; "
        "DELETE FROM %s WHERE k = 9 AND c = 9; "
        "INSERT INTO %s.other (id, note) VALUES (1, 'other table') "
        "APPLY BATCH" % (kind, t, t, t, t, ks))
    assert rows(session, t) == [(1, 1, "a"), (1, 2, "c"), (2, 1, "b")]
    assert session.execute("SELECT note FROM %s.other WHERE id = 1" % ks).one().note == "other table"


@pytest.mark.parametrize("batch_type", [BatchType.LOGGED, BatchType.UNLOGGED])
def test_protocol_batch_with_prepared_and_simple(session, t, batch_type):
    ins = session.prepare("INSERT INTO %s (k, c, v) VALUES (?, ?, ?)" % t)
    upd = session.prepare("UPDATE %s SET v = ? WHERE k = ? AND c = ?" % t)
    b = BatchStatement(batch_type=batch_type)
    for c in range(20):
        b.add(ins, (3, c, "p%d" % c))
    b.add(upd, ("updated", 3, 5))
    b.add(SimpleStatement("INSERT INTO %s (k, c, v) VALUES (%%s, %%s, %%s)" % t), (4, 0, "simple"))
    b.add("DELETE FROM %s WHERE k = 3 AND c = 19" % t)
    session.execute(b)
    got = rows(session, t)
    assert len(got) == 20
    assert (3, 5, "updated") in got and (4, 0, "simple") in got
    assert all(not (k == 3 and c == 19) for k, c, _ in got)


def test_batch_statements_share_one_timestamp(session, t):
    b = BatchStatement()
    b.add("INSERT INTO %s (k, c, v) VALUES (1, 1, 'x')" % t)
    b.add("INSERT INTO %s (k, c, v) VALUES (2, 2, 'y')" % t)
    session.execute(b)
    w1 = session.execute("SELECT WRITETIME(v) FROM %s WHERE k = 1 AND c = 1" % t).one()[0]
    w2 = session.execute("SELECT WRITETIME(v) FROM %s WHERE k = 2 AND c = 2" % t).one()[0]
    assert w1 == w2


def test_batch_using_timestamp(session, t):
    session.execute("BEGIN BATCH USING TIMESTAMP 777 "
                    "INSERT INTO %s (k, c, v) VALUES (1, 1, 'x') "
                    "INSERT INTO %s (k, c, v) VALUES (1, 2, 'y') APPLY BATCH" % (t, t))
    got = [r[0] for r in session.execute("SELECT WRITETIME(v) FROM %s WHERE k = 1" % t)]
    assert got == [777, 777]
    # Per-statement timestamps inside a batch.
    session.execute("BEGIN UNLOGGED BATCH "
                    "INSERT INTO %s (k, c, v) VALUES (2, 1, 'x') USING TIMESTAMP 10 "
                    "INSERT INTO %s (k, c, v) VALUES (2, 2, 'y') USING TIMESTAMP 20 APPLY BATCH" % (t, t))
    got = [r[0] for r in session.execute("SELECT WRITETIME(v) FROM %s WHERE k = 2" % t)]
    assert got == [10, 20]
    with pytest.raises(InvalidRequest) as e:
        session.execute("BEGIN BATCH USING TIMESTAMP 5 "
                        "INSERT INTO %s (k, c, v) VALUES (3, 1, 'x') USING TIMESTAMP 6 APPLY BATCH" % t)
    assert "Timestamp must be set either on BATCH or individual statements" in str(e.value)
    assert session.execute("SELECT * FROM %s WHERE k = 3" % t).one() is None


def test_batch_with_ttl_statement(session, t):
    session.execute("BEGIN BATCH INSERT INTO %s (k, c, v) VALUES (1, 1, 'x') USING TTL 500 "
                    "INSERT INTO %s (k, c, v) VALUES (1, 2, 'y') APPLY BATCH" % (t, t))
    got = [r[0] for r in session.execute("SELECT TTL(v) FROM %s WHERE k = 1" % t)]
    assert 490 <= got[0] <= 500 and got[1] is None


def test_failed_batch_writes_nothing(session, t):
    ins = session.prepare("INSERT INTO %s (k, c, v) VALUES (?, ?, ?)" % t)
    b = BatchStatement()
    b.add(ins, (1, 1, "would be written first"))
    b.add("INSERT INTO %s.nosuchtable (k) VALUES (1)" % t.split(".")[0])
    with pytest.raises(InvalidRequest):
        session.execute(b)
    # A bound value that fails validation at execution time: the oversized
    # clustering value comes second, the whole batch must still be refused.
    b = BatchStatement()
    b.add(ins, (1, 2, "first"))
    tk = session.prepare("INSERT INTO %s.other (id, note) VALUES (?, ?)" % t.split(".")[0])
    b.add(tk, (1, "fine"))
    big = session.prepare("INSERT INTO %s (k, c, v) VALUES (?, ?, ?)" % t)
    from cassandra.query import BoundStatement
    bad = BoundStatement(big)
    bad.values = [b"\x00\x00\x00\x02", b"\x00\x00\x00", b"v"]    # a 3-byte int
    b.add(bad)
    with pytest.raises(InvalidRequest):
        session.execute(b)
    assert rows(session, t) == []
    assert session.execute("SELECT * FROM %s.other" % t.split(".")[0]).one() is None
    with pytest.raises(InvalidRequest):
        session.execute("BEGIN BATCH INSERT INTO %s (k, c, v) VALUES (5, 5, 'x') "
                        "INSERT INTO %s (k, c, nosuchcol) VALUES (6, 6, 'y') APPLY BATCH" % (t, t))
    assert rows(session, t) == []


def test_only_modifications_inside_batch(session, t):
    with pytest.raises(SyntaxException):
        session.execute("BEGIN BATCH SELECT * FROM %s; APPLY BATCH" % t)


def test_empty_batch(session, t):
    session.execute("BEGIN BATCH APPLY BATCH")
    assert rows(session, t) == []
