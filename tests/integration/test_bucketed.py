"""Bucketed partition keys (docs/cql.md "Bucketed partition keys"):
BUCKET(ts, width) and SALT(n) in a table's partition key, through the
Python driver against real sibyld processes.

Schema: the derived columns are ordinary partition key columns in
system_schema and the driver's metadata, the definition is in the table's
extensions, DESCRIBE prints it back and its output recreates the table,
and it survives a restart. Writes name the natural columns; reads list the
buckets (and salts) a query covers and read them in clustering order.
Every node is stopped by pid at teardown (make_node / make_cluster).
"""

import datetime

import pytest

from conftest import refused

DAY = 86400000
HOUR = 3600000

CREATE_M = ("CREATE TABLE {ks}.m (sensor text, ts timestamp, v int, "
            "PRIMARY KEY ((sensor, BUCKET(ts, 1d), SALT(8)), ts))")
CREATE_B = ("CREATE TABLE {ks}.b (sensor text, ts timestamp, v int, "
            "PRIMARY KEY ((sensor, BUCKET(ts, 1h)), ts))")
CREATE_S = ("CREATE TABLE {ks}.s (user text, event_id int, v text, "
            "PRIMARY KEY ((user, SALT(8)), event_id))")


def ts(ms):
    return datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=ms)


def ms_of(dt):
    return int((dt - datetime.datetime(1970, 1, 1)).total_seconds() * 1000)


def describe(session, ks, table):
    return session.execute("DESCRIBE TABLE %s.%s" % (ks, table)).one().create_statement


# ---- schema ----------------------------------------------------------------

def test_schema_columns_extensions_and_metadata(session, cluster, ks):
    session.execute(CREATE_M.format(ks=ks))
    rows = session.execute("SELECT column_name, kind, position, type FROM system_schema.columns "
                           "WHERE keyspace_name = %s AND table_name = 'm'", (ks,))
    cols = {r.column_name: (r.kind, r.position, r.type) for r in rows}
    assert cols == {"sensor": ("partition_key", 0, "text"), "ts_bucket": ("partition_key", 1, "timestamp"),
                    "salt": ("partition_key", 2, "int"), "ts": ("clustering", 0, "timestamp"),
                    "v": ("regular", -1, "int")}
    ext = session.execute("SELECT extensions, comment FROM system_schema.tables "
                          "WHERE keyspace_name = %s AND table_name = 'm'", (ks,)).one()
    assert ext.extensions == {"sibyl.bucket": b"BUCKET(ts, 1d)", "sibyl.salt": b"SALT(8)"}
    assert ext.comment == ""
    # ALTER ... WITH comment leaves the definition alone
    session.execute("ALTER TABLE %s.m WITH comment = 'sensors'" % ks)
    ext = session.execute("SELECT extensions FROM system_schema.tables "
                          "WHERE keyspace_name = %s AND table_name = 'm'", (ks,)).one()
    assert ext.extensions["sibyl.bucket"] == b"BUCKET(ts, 1d)"
    cluster.refresh_table_metadata(ks, "m")
    meta = cluster.metadata.keyspaces[ks].tables["m"]
    assert [c.name for c in meta.partition_key] == ["sensor", "ts_bucket", "salt"]
    assert [c.name for c in meta.clustering_key] == ["ts"]


def test_describe_round_trip_and_restart(node, clusters, ks):
    cluster, session = clusters.connect(node)
    session.execute(CREATE_M.format(ks=ks))
    session.execute("CREATE TABLE %s.d (k int, day date, n bigint, v int, "
                    "PRIMARY KEY ((k, BUCKET(day, 7d)), day, n)) WITH CLUSTERING ORDER BY (day DESC, n ASC)" % ks)
    session.execute("CREATE TABLE %s.i (k int, n bigint, v int, PRIMARY KEY ((BUCKET(n, 1000), k), n))" % ks)
    before = {t: describe(session, ks, t) for t in ("m", "d", "i")}
    assert "PRIMARY KEY ((sensor, BUCKET(ts, 1d), SALT(8)), ts)" in before["m"]
    assert "ts_bucket" not in before["m"] and "salt int" not in before["m"]
    assert "PRIMARY KEY ((k, BUCKET(day, 7d)), day, n)" in before["d"]
    assert "PRIMARY KEY ((BUCKET(n, 1000), k), n)" in before["i"]
    # the output recreates the table
    for t, stmt in before.items():
        session.execute("DROP TABLE %s.%s" % (ks, t))
        session.execute(stmt)
        assert describe(session, ks, t) == stmt
    cluster.shutdown()
    node.restart()
    cluster, session = clusters.connect(node)
    for t, stmt in before.items():
        assert describe(session, ks, t) == stmt


def test_schema_refusals(session, ks):
    q = "CREATE TABLE %s.x (sensor text, ts timestamp, c int, v int, PRIMARY KEY ((sensor, BUCKET(ts, 1d)), %s))"
    refused(session, q % (ks, "c, ts"),
            "BUCKET(ts, 1d) needs ts as the first clustering column, so that bucket order is clustering order")
    refused(session, "CREATE TABLE %s.x (sensor text, ts timestamp, PRIMARY KEY ((sensor, BUCKET(ts, 1mo)), ts))" % ks,
            "Invalid width 1mo in BUCKET(ts, 1mo): a timestamp column takes a duration without months, e.g. 1h or 1d")
    refused(session, "CREATE TABLE %s.x (sensor text, ts timestamp, PRIMARY KEY ((sensor, BUCKET(ts, 10)), ts))" % ks,
            "Invalid width 10 in BUCKET(ts, 10): a timestamp column takes a duration without months, e.g. 1h or 1d")
    refused(session, "CREATE TABLE %s.x (k int, d date, PRIMARY KEY ((k, BUCKET(d, 36h)), d))" % ks,
            "Invalid width 36h in BUCKET(d, 36h): a date column takes whole days, e.g. 7d")
    refused(session, "CREATE TABLE %s.x (k int, s text, PRIMARY KEY ((k, BUCKET(s, 10)), s))" % ks,
            "BUCKET(s, 10): s must be a timestamp, date or integer column")
    refused(session, "CREATE TABLE %s.x (k int, v int, PRIMARY KEY ((k, SALT(8))))" % ks,
            "SALT(8) needs at least one clustering column: the salt is a hash of the clustering key")
    refused(session, "CREATE TABLE %s.x (k int, c int, s int static, PRIMARY KEY ((k, SALT(8)), c))" % ks,
            "SALT(8) cannot be used with static columns (s): a static row would split across salts")
    refused(session, "CREATE TABLE %s.x (k int, c int, PRIMARY KEY ((k, SALT(0)), c))" % ks,
            "Invalid salt count 0 in SALT(0): it must be between 1 and 1024")
    refused(session, "CREATE TABLE %s.x (k int, c int, salt int, PRIMARY KEY ((k, SALT(2)), c))" % ks,
            "Column salt is the one SALT(2) derives: it cannot also be declared")
    session.execute(CREATE_M.format(ks=ks))
    refused(session, "ALTER TABLE %s.m DROP ts_bucket" % ks,
            "Cannot drop column ts_bucket of table %s.m: it is derived by BUCKET(ts, 1d) in the partition key" % ks)
    refused(session, "ALTER TABLE %s.m RENAME ts TO t" % ks,
            "Cannot rename column ts of table %s.m: the partition key's BUCKET(ts, 1d) derives from it" % ks)
    refused(session, "ALTER TABLE %s.m RENAME salt TO s" % ks,
            "Cannot rename column salt of table %s.m: it is derived by SALT(8) in the partition key" % ks)
    refused(session, "ALTER TABLE %s.m ADD st int static" % ks,
            "Cannot add static column st to a table with SALT(8): a static row would split across salts")


# ---- writes ------------------------------------------------------------------

def rows_b(session, ks, lo, hi, order="", extra=""):
    q = "SELECT ts_bucket, ts, v FROM %s.b WHERE sensor = 'a' AND ts >= %%s AND ts < %%s %s %s" % (ks, order, extra)
    return list(session.execute(q, (ts(lo), ts(hi))))


def test_writes_compute_the_bucket(session, ks):
    session.execute(CREATE_B.format(ks=ks))
    ins = session.prepare("INSERT INTO %s.b (sensor, ts, v) VALUES (?, ?, ?)" % ks)
    # the driver gets no partition key indexes: it cannot compute ts_bucket
    assert not ins.routing_key_indexes
    points = [-HOUR - 1, -1, 0, HOUR - 1, HOUR, 2 * HOUR + 5]
    for i, p in enumerate(points):
        session.execute(ins, ("a", ts(p), i))
    got = rows_b(session, ks, -2 * HOUR, 3 * HOUR)
    assert [(ms_of(r.ts_bucket), ms_of(r.ts), r.v) for r in got] == [
        (-2 * HOUR, -HOUR - 1, 0), (-HOUR, -1, 1), (0, 0, 2), (0, HOUR - 1, 3), (HOUR, HOUR, 4),
        (2 * HOUR, 2 * HOUR + 5, 5)]
    # a given derived value must match
    session.execute("INSERT INTO %s.b (sensor, ts_bucket, ts, v) VALUES ('a', %d, %d, 9)" % (ks, HOUR, HOUR + 7))
    refused(session, "INSERT INTO %s.b (sensor, ts_bucket, ts, v) VALUES ('a', 0, %d, 9)" % (ks, HOUR + 8),
            "Invalid value for ts_bucket, which BUCKET(ts, 1h) derives from the row: it would be "
            "1970-01-01 01:00:00.000000+0000")
    refused(session, "INSERT INTO %s.b (sensor, v) VALUES ('a', 1)" % ks,
            "Some clustering keys are missing: ts (the partition key column ts_bucket, BUCKET(ts, 1h), is computed from it)")
    # UPDATE and DELETE name the natural key
    session.execute("UPDATE %s.b SET v = 40 WHERE sensor = 'a' AND ts = %d" % (ks, HOUR))
    session.execute("DELETE FROM %s.b WHERE sensor = 'a' AND ts = %d" % (ks, 0))
    refused(session, "UPDATE %s.b SET v = 1 WHERE sensor = 'a' AND ts_bucket = 0 AND ts = %d" % (ks, HOUR),
            "Invalid value for ts_bucket, which BUCKET(ts, 1h) derives from the row: it would be "
            "1970-01-01 01:00:00.000000+0000")
    got = {ms_of(r.ts): r.v for r in rows_b(session, ks, -2 * HOUR, 3 * HOUR)}
    assert got == {-HOUR - 1: 0, -1: 1, HOUR - 1: 3, HOUR: 40, HOUR + 7: 9, 2 * HOUR + 5: 5}
    # the rows are in their buckets' partitions: a direct read of one bucket
    one = session.execute("SELECT ts FROM %s.b WHERE sensor = 'a' AND ts_bucket = %d" % (ks, HOUR))
    assert [ms_of(r.ts) for r in one] == [HOUR, HOUR + 7]


def test_delete_over_a_range_and_ttl(session, ks):
    session.execute(CREATE_B.format(ks=ks))
    ins = session.prepare("INSERT INTO %s.b (sensor, ts, v) VALUES (?, ?, ?)" % ks)
    for m in range(0, 6 * HOUR, HOUR // 4):
        session.execute(ins, ("a", ts(m), m // 1000))
    session.execute("DELETE FROM %s.b WHERE sensor = 'a' AND ts >= %%s AND ts < %%s" % ks,
                    (ts(HOUR + HOUR // 2), ts(4 * HOUR)))
    left = [ms_of(r.ts) for r in rows_b(session, ks, 0, 6 * HOUR)]
    assert left == [m for m in range(0, 6 * HOUR, HOUR // 4) if not HOUR + HOUR // 2 <= m < 4 * HOUR]
    refused(session, "DELETE FROM %s.b WHERE sensor = 'a'" % ks,
            "Table %s.b is bucketed by BUCKET(ts, 1h): restrict ts with =, IN, or a range with both bounds so that "
            "its buckets can be listed" % ks)
    session.execute("INSERT INTO %s.b (sensor, ts, v) VALUES ('t', 5, 1) USING TTL 1" % ks)
    session.execute("INSERT INTO %s.b (sensor, ts, v) VALUES ('t', %d, 2) USING TTL 100" % (ks, HOUR + 5))
    q = "SELECT v, TTL(v) AS t FROM %s.b WHERE sensor = 't' AND ts >= 0 AND ts < %d" % (ks, 2 * HOUR)
    assert len(list(session.execute(q))) == 2
    import time
    deadline = time.monotonic() + 10
    while len(list(session.execute(q))) == 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    rows = list(session.execute(q))
    assert [r.v for r in rows] == [2] and 0 < rows[0].t <= 100
