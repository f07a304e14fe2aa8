"""Every error class the issue names, with Cassandra's messages, and that a
failed statement writes nothing."""

import pytest

from cassandra import AlreadyExists, ConfigurationException, InvalidRequest
from cassandra.protocol import SyntaxException, ServerError


@pytest.fixture
def t(session, ks):
    session.execute("CREATE TABLE %s.t (k int, c int, v text, PRIMARY KEY (k, c))" % ks)
    session.execute("CREATE TABLE %s.s (k text PRIMARY KEY, v int)" % ks)
    return ks + ".t"


def count(session, table):
    return session.execute("SELECT COUNT(*) FROM %s" % table).one()[0]


def message(excinfo):
    return str(excinfo.value)


def test_syntax_error_has_position_and_token(session):
    with pytest.raises(SyntaxException) as e:
        session.execute("SELEC * FROM system.local")
    assert "line 1:0" in message(e) and "SELEC" in message(e)
    with pytest.raises(SyntaxException) as e:
        session.execute("SELECT * FROM system.local WHERE key = 'local' OR key = 'x'")
    assert "line 1:" in message(e) and "'OR'" in message(e)


def test_syntax_error_line_numbers(session):
    with pytest.raises(SyntaxException) as e:
        session.execute("SELECT *\nFROM system.local\nWHER key = 'local'")
    assert "line 3:0" in message(e) and "WHER" in message(e)


@pytest.mark.parametrize("cql", [
    "INSERT INTO t (k) VALUE (1)",
    "CREATE TABLE x (k int PRIMARY KEY",
    "SELECT * FROM",
    "DELETE FROM t WHERE",
    "SELECT * FROM t WHERE k = 'unterminated",
    "UPDATE t SET WHERE k = 1",
    "CREATE KEYSPACE WITH replication = {}",
    "SELECT * FROM t; SELECT * FROM t",
    "\x00\x01\x02",
])
def test_syntax_errors(session, cql):
    with pytest.raises(SyntaxException) as e:
        session.execute(cql)
    assert "line 1:" in message(e)


def test_unknown_keyspace(session):
    with pytest.raises(InvalidRequest) as e:
        session.execute("SELECT * FROM nosuchks.t")
    m = message(e).lower()
    assert "nosuchks" in m and "does not exist" in m
    with pytest.raises(InvalidRequest) as e:
        session.execute("INSERT INTO nosuchks.t (k) VALUES (1)")
    assert "nosuchks" in message(e)
    with pytest.raises(InvalidRequest) as e:
        session.execute("CREATE TABLE nosuchks.t (k int PRIMARY KEY)")
    assert "Keyspace 'nosuchks' doesn't exist" in message(e)


def test_unknown_table(session, ks):
    with pytest.raises(InvalidRequest) as e:
        session.execute("SELECT * FROM %s.nosuchtable" % ks)
    m = message(e)
    assert "nosuchtable" in m and ("does not exist" in m or "unconfigured table" in m)
    with pytest.raises(InvalidRequest) as e:
        session.execute("DROP TABLE %s.nosuchtable" % ks)
    assert "Table '%s.nosuchtable' doesn't exist" % ks in message(e)
    with pytest.raises(InvalidRequest):
        session.execute("TRUNCATE %s.nosuchtable" % ks)


def test_unknown_column(session, t):
    with pytest.raises(InvalidRequest) as e:
        session.execute("SELECT nosuchcol FROM %s WHERE k = 1" % t)
    assert "Undefined column name nosuchcol" in message(e)
    with pytest.raises(InvalidRequest) as e:
        session.execute("INSERT INTO %s (k, c, nosuchcol) VALUES (1, 1, 'x')" % t)
    assert "Undefined column name nosuchcol" in message(e)
    with pytest.raises(InvalidRequest) as e:
        session.execute("UPDATE %s SET nosuchcol = 'x' WHERE k = 1 AND c = 1" % t)
    assert "Undefined column name nosuchcol" in message(e)
    with pytest.raises(InvalidRequest):
        session.execute("SELECT * FROM %s WHERE k = 1 AND nosuchcol = 1" % t)
    assert count(session, t) == 0


def test_wrong_type_literal(session, t):
    with pytest.raises(InvalidRequest) as e:
        session.execute("INSERT INTO %s (k, c, v) VALUES ('a', 1, 'x')" % t)
    assert 'Invalid STRING constant (a) for "k" of type int' in message(e)
    with pytest.raises(InvalidRequest) as e:
        session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 42)" % t)
    assert 'Invalid INTEGER constant (42) for "v" of type text' in message(e)
    with pytest.raises(InvalidRequest) as e:
        session.execute("SELECT * FROM %s WHERE k = 1.5" % t)
    assert 'Invalid FLOAT constant (1.5) for "k" of type int' in message(e)
    with pytest.raises(InvalidRequest) as e:
        session.execute("INSERT INTO %s (k, c, v) VALUES (1, true, 'x')" % t)
    assert 'Invalid BOOLEAN constant (true) for "c" of type int' in message(e)
    with pytest.raises(InvalidRequest) as e:
        session.execute("INSERT INTO %s (k, c, v) VALUES (3000000000, 1, 'x')" % t)
    assert "3000000000" in message(e)
    assert count(session, t) == 0


def test_missing_primary_key_parts(session, ks, t):
    session.execute("CREATE TABLE %s.comp (sensor text, day date, ts int, v int, "
                    "PRIMARY KEY ((sensor, day), ts))" % ks)
    with pytest.raises(InvalidRequest) as e:
        session.execute("INSERT INTO %s.comp (sensor, ts, v) VALUES ('s', 1, 1)" % ks)
    assert "Some partition key parts are missing: day" in message(e)
    with pytest.raises(InvalidRequest) as e:
        session.execute("INSERT INTO %s.comp (ts, v) VALUES (1, 1)" % ks)
    assert "Some partition key parts are missing: sensor, day" in message(e)
    with pytest.raises(InvalidRequest) as e:
        session.execute("INSERT INTO %s (k, v) VALUES (1, 'x')" % t)
    assert "Some clustering keys are missing: c" in message(e)
    with pytest.raises(InvalidRequest) as e:
        session.execute("UPDATE %s SET v = 'x' WHERE c = 1" % t)
    assert "Some partition key parts are missing: k" in message(e)
    with pytest.raises(InvalidRequest) as e:
        session.execute("DELETE FROM %s WHERE c = 1" % t)
    assert "Some partition key parts are missing: k" in message(e)
    assert count(session, t) == 0 and count(session, ks + ".comp") == 0


def test_allow_filtering_required(session, t):
    want = ("Cannot execute this query as it might involve data filtering and thus may have "
            "unpredictable performance. If you want to execute this query despite the performance "
            "unpredictability, use ALLOW FILTERING")
    for where in ("v = 'x'", "c = 1", "k = 1 AND v = 'x'"):
        with pytest.raises(InvalidRequest) as e:
            session.execute("SELECT * FROM %s WHERE %s" % (t, where))
        assert want in message(e), where


def test_order_by_errors(session, t):
    with pytest.raises(InvalidRequest) as e:
        session.execute("SELECT * FROM %s ORDER BY c DESC" % t)
    assert "ORDER BY is only supported when the partition key is restricted by an EQ or an IN." in message(e)
    with pytest.raises(InvalidRequest) as e:
        session.execute("SELECT * FROM %s WHERE k = 1 ORDER BY v DESC" % t)
    assert "Order by is currently only supported on the clustered columns of the PRIMARY KEY, got v" in message(e)


def test_already_exists(session, ks, t):
    with pytest.raises(AlreadyExists) as e:
        session.execute("CREATE KEYSPACE %s WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}" % ks)
    assert e.value.keyspace == ks and not e.value.table
    with pytest.raises(AlreadyExists) as e:
        session.execute("CREATE TABLE %s (k int PRIMARY KEY)" % t)
    assert (e.value.keyspace, e.value.table) == (ks, "t")
    # IF NOT EXISTS: no error, and the existing table is unchanged.
    session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}" % ks)
    session.execute("CREATE TABLE IF NOT EXISTS %s (k int PRIMARY KEY, other blob)" % t)
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'still there')" % t)
    assert session.execute("SELECT v FROM %s WHERE k = 1 AND c = 1" % t).one().v == "still there"


def test_partition_key_too_large(session, ks, t):
    s = ks + ".s"
    big = "x" * (64 * 1024)          # 65536 bytes: one more than a u16 length holds
    with pytest.raises(InvalidRequest):
        session.execute("INSERT INTO %s (k, v) VALUES ('%s', 1)" % (s, big))
    ps = session.prepare("INSERT INTO %s (k, v) VALUES (?, ?)" % s)
    with pytest.raises(InvalidRequest):
        session.execute(ps, (big + "yy", 1))
    assert count(session, s) == 0
    ok = "y" * 65535
    session.execute(ps, (ok, 2))
    assert session.execute("SELECT v FROM %s WHERE k = %%s" % s, [ok]).one().v == 2


def test_empty_partition_key(session, ks, t):
    with pytest.raises(InvalidRequest) as e:
        session.execute("INSERT INTO %s.s (k, v) VALUES ('', 1)" % ks)
    assert "Key may not be empty" in message(e)
    assert count(session, ks + ".s") == 0
    # prepared: once its plan is made (the first EXECUTE), a one-column key
    # is taken as it is; an empty or too long one is refused the same way
    ps = session.prepare("INSERT INTO %s.s (k, v) VALUES (?, ?)" % ks)
    session.execute(ps, ("a", 1))
    for _ in range(2):
        with pytest.raises(InvalidRequest) as e:
            session.execute(ps, ("", 2))
        assert "Key may not be empty" in message(e)
        with pytest.raises(InvalidRequest) as e:
            session.execute(ps, ("x" * 65536, 2))
        assert "Key length of 65536 is longer than maximum of 65535" in message(e)
    session.execute(ps, ("y" * 65535, 3))
    assert count(session, ks + ".s") == 2


def test_null_primary_key(session, t):
    ps = session.prepare("INSERT INTO %s (k, c, v) VALUES (?, ?, ?)" % t)
    with pytest.raises(InvalidRequest):
        session.execute(ps, (None, 1, "x"))
    with pytest.raises(InvalidRequest):
        session.execute(ps, (1, None, "x"))
    assert count(session, t) == 0


def test_primary_key_in_set(session, t):
    with pytest.raises(InvalidRequest) as e:
        session.execute("UPDATE %s SET c = 2 WHERE k = 1 AND c = 1" % t)
    assert "PRIMARY KEY part c found in SET part" in message(e)


def test_create_table_errors(session, ks):
    with pytest.raises(InvalidRequest) as e:
        session.execute("CREATE TABLE %s.nopk (k int, v int)" % ks)
    assert "No PRIMARY KEY specifed for table" in message(e)
    with pytest.raises(InvalidRequest) as e:
        session.execute("CREATE TABLE %s.dup (k int PRIMARY KEY, k text)" % ks)
    assert "Duplicate column 'k' declaration for table" in message(e)
    with pytest.raises(InvalidRequest) as e:
        session.execute("CREATE TABLE %s.unk (k int, PRIMARY KEY (k, nope))" % ks)
    assert "Unknown column 'nope' referenced in PRIMARY KEY for table" in message(e)
    with pytest.raises(InvalidRequest) as e:
        session.execute("CREATE TABLE %s.co (k int, c int, PRIMARY KEY (k, c)) "
                        "WITH CLUSTERING ORDER BY (k DESC)" % ks)
    assert "Only clustering columns can be defined in CLUSTERING ORDER directive" in message(e)
    with pytest.raises((InvalidRequest, ConfigurationException)) as e:
        session.execute("CREATE KEYSPACE norepl WITH durable_writes = true")
    assert "replication" in message(e)
    ks_md = session.cluster.metadata.keyspaces.get(ks)
    assert ks_md is None or not ({"nopk", "dup", "unk", "co"} & set(ks_md.tables))


def test_server_survives_every_error(session, t):
    # After all of the above on one connection, it still answers normally.
    for cql in ("SELEC", "SELECT * FROM nosuch.t", "INSERT INTO %s (k) VALUES ('a')" % t):
        with pytest.raises((SyntaxException, InvalidRequest, ServerError)):
            session.execute(cql)
    session.execute("INSERT INTO %s (k, c, v) VALUES (1, 1, 'ok')" % t)
    assert count(session, t) == 1
