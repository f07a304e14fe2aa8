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
    d = dt - datetime.datetime(1970, 1, 1)
    return (d.days * 86400 + d.seconds) * 1000 + d.microseconds // 1000


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
    refused(session, "CREATE TABLE %s.x (k int, ts int, s int static, PRIMARY KEY ((k, BUCKET(ts, 10)), ts))" % ks,
            "BUCKET(ts, 10) cannot be used with static columns (s): a static row would be one per bucket, not one "
            "per natural partition")
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
        session.execute(ins, ("a", p, i))
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
        session.execute(ins, ("a", m, m // 1000))
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


# ---- reads -------------------------------------------------------------------

def fill_b(session, ks, sensor, n_hours, per_hour=4):
    ins = session.prepare("INSERT INTO %s.b (sensor, ts, v) VALUES (?, ?, ?)" % ks)
    want = []
    for h in range(n_hours):
        for k in range(per_hour):
            m = h * HOUR + k * (HOUR // per_hour) + 7
            session.execute(ins, (sensor, m, h * 100 + k))  # ms as an int: exact
            want.append(m)
    return want


def read_ts(session, ks, lo, hi, desc=False, extra="", fetch_size=None, sensor="a"):
    from cassandra.query import SimpleStatement
    q = "SELECT ts FROM %s.b WHERE sensor = '%s' AND ts >= %d AND ts < %d%s%s" % (
        ks, sensor, lo, hi, " ORDER BY ts DESC" if desc else "", extra)
    return [ms_of(r.ts) for r in session.execute(SimpleStatement(q, fetch_size=fetch_size))]


def check_ranges(session, ks, want):
    for nb in (1, 2, 30):
        lo, hi = 3 * HOUR + 5, (3 + nb - 1) * HOUR + HOUR // 2  # starts and ends inside a bucket
        exp = [m for m in want if lo <= m < hi]
        assert read_ts(session, ks, lo, hi) == exp
        assert read_ts(session, ks, lo, hi, desc=True) == exp[::-1]
        assert read_ts(session, ks, lo, hi, extra=" LIMIT 5") == exp[:5]
        assert read_ts(session, ks, lo, hi, desc=True, extra=" LIMIT 5") == exp[::-1][:5]
        # small pages across buckets: no row missing, none repeated
        assert read_ts(session, ks, lo, hi, fetch_size=3) == exp
        assert read_ts(session, ks, lo, hi, desc=True, fetch_size=3) == exp[::-1]
        assert read_ts(session, ks, lo, hi, extra=" LIMIT 7", fetch_size=2) == exp[:7]


def test_reads_across_buckets(node, clusters, ks):
    cluster, session = clusters.connect(node)
    session.execute(CREATE_B.format(ks=ks))
    want = fill_b(session, ks, "a", 40)
    fill_b(session, ks, "z", 3)
    check_ranges(session, ks, want)
    # equality forms read only their buckets
    pick = [want[1], want[9], want[50]]
    got = session.execute("SELECT ts FROM %s.b WHERE sensor = 'a' AND ts IN (%d, %d, %d, %d)" %
                          (ks, pick[2], pick[0], pick[1], 999))
    assert [ms_of(r.ts) for r in got] == sorted(pick)
    assert [ms_of(r.ts) for r in session.execute("SELECT ts FROM %s.b WHERE sensor = 'a' AND ts = %d" %
                                                 (ks, pick[1]))] == [pick[1]]
    # COUNT(*) sums over the buckets; PER PARTITION LIMIT counts the natural key once
    assert session.execute("SELECT COUNT(*) FROM %s.b WHERE sensor = 'a' AND ts >= 0 AND ts < %d" %
                           (ks, 10 * HOUR)).one()[0] == 40
    got = session.execute("SELECT sensor, ts FROM %s.b WHERE sensor IN ('a', 'z') AND ts >= 0 AND ts < %d "
                          "PER PARTITION LIMIT 6" % (ks, 10 * HOUR))
    assert [(r.sensor, ms_of(r.ts)) for r in got] == [("a", m) for m in want[:6]] + [("z", m) for m in want[:6]]
    cluster.shutdown()
    node.restart()
    cluster, session = clusters.connect(node)
    check_ranges(session, ks, want)


def test_read_refusals(session, ks):
    session.execute(CREATE_B.format(ks=ks))
    refused(session, "SELECT * FROM %s.b WHERE sensor = 'a'" % ks,
            "Table %s.b is bucketed by BUCKET(ts, 1h): restrict ts with =, IN, or a range with both bounds so that "
            "its buckets can be listed" % ks)
    refused(session, "SELECT * FROM %s.b WHERE sensor = 'a' AND ts >= 0" % ks,
            "The range on ts has no upper bound: table %s.b is bucketed by BUCKET(ts, 1h), and a range needs both "
            "bounds to list its buckets" % ks)
    refused(session, "SELECT * FROM %s.b WHERE sensor = 'a' AND ts < 5" % ks,
            "The range on ts has no lower bound: table %s.b is bucketed by BUCKET(ts, 1h), and a range needs both "
            "bounds to list its buckets" % ks)
    refused(session, "SELECT * FROM %s.b WHERE sensor = 'a' AND ts >= 0 AND ts < %d" % (ks, 1001 * HOUR),
            "The range on ts covers 1001 buckets of BUCKET(ts, 1h), more than max_scatter_buckets (1000): "
            "narrow the range")
    refused(session, "SELECT * FROM %s.b WHERE token(sensor, ts_bucket) > 0" % ks,
            "token() cannot be used on table %s.b: its partition key column ts_bucket is derived from the rows "
            "(BUCKET / SALT)" % ks)
    session.execute("CREATE TABLE %s.b2 (sensor text, ts timestamp, n int, v int, "
                    "PRIMARY KEY ((sensor, BUCKET(ts, 1h)), ts, n))" % ks)
    refused(session, "SELECT * FROM %s.b2 WHERE sensor = 'a' AND (ts, n) > (0, 1)" % ks,
            "Multi-column relations on ts are not supported on table %s.b2, whose partition key's BUCKET(ts, 1h) "
            "derives from it" % ks)
    # the limit is a config key
    session.execute("SELECT * FROM %s.b WHERE sensor = 'a' AND ts >= 0 AND ts < %d" % (ks, 1000 * HOUR))


def test_max_scatter_buckets_config(make_node, clusters):
    n = make_node(max_scatter_buckets=3)
    _, s = clusters.connect(n)
    s.execute("CREATE KEYSPACE cfg WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute(CREATE_B.format(ks="cfg"))
    s.execute("SELECT * FROM cfg.b WHERE sensor = 'a' AND ts >= 0 AND ts < %d" % (3 * HOUR))
    refused(s, "SELECT * FROM cfg.b WHERE sensor = 'a' AND ts >= 0 AND ts <= %d" % (3 * HOUR),
            "The range on ts covers 4 buckets of BUCKET(ts, 1h), more than max_scatter_buckets (3): narrow the range")


def salted_hot_key(session, ks, n=300):
    session.execute(CREATE_S.format(ks=ks))
    ins = session.prepare("INSERT INTO %s.s (user, event_id, v) VALUES (?, ?, ?)" % ks)
    for e in range(n):
        session.execute(ins, ("hot", e, "e%d" % e))
    session.execute(ins, ("cold", 1, "c"))
    got = [r.event_id for r in session.execute("SELECT event_id FROM %s.s WHERE user = 'hot'" % ks)]
    assert got == list(range(n))  # every row exactly once, in clustering order
    got = [r.event_id for r in session.execute("SELECT event_id FROM %s.s WHERE user = 'hot' ORDER BY event_id DESC "
                                               "LIMIT 10" % ks)]
    assert got == list(range(n - 1, n - 11, -1))
    # pages merge the salts too: no row missing or repeated, pages of the size asked
    from cassandra.query import SimpleStatement

    def paged(q, fetch):
        rs = session.execute(SimpleStatement(q % ks, fetch_size=fetch))
        pages = [len(rs.current_rows)]
        out = [r.event_id for r in rs.current_rows]
        while rs.has_more_pages and len(pages) < 1000:
            rs.fetch_next_page()
            pages.append(len(rs.current_rows))
            out += [r.event_id for r in rs.current_rows]
        return out, pages
    got, pages = paged("SELECT event_id FROM %s.s WHERE user = 'hot'", 7)
    assert got == list(range(n)) and max(pages) == 7
    got, _ = paged("SELECT event_id FROM %s.s WHERE user = 'hot' ORDER BY event_id DESC", 11)
    assert got == list(range(n - 1, -1, -1))
    got, _ = paged("SELECT event_id FROM %s.s WHERE user = 'hot' LIMIT 23", 5)
    assert got == list(range(23))
    got, _ = paged("SELECT event_id FROM %s.s WHERE user = 'hot' AND event_id >= 100 AND event_id < 150", 4)
    assert got == list(range(100, 150))
    got, _ = paged("SELECT event_id FROM %s.s WHERE user = 'hot' PER PARTITION LIMIT 9", 4)
    assert got == list(range(9))
    refused(session, "SELECT * FROM %s.s WHERE user IN ('hot', 'cold')" % ks,
            "IN on the partition key of table %s.s, whose rows spread over SALT partitions, is not supported: "
            "read one key at a time" % ks)
    assert session.execute("SELECT COUNT(*) FROM %s.s WHERE user = 'hot'" % ks).one()[0] == n
    # the full primary key reads one salt; the rows spread over the salts
    assert session.execute("SELECT v FROM %s.s WHERE user = 'hot' AND event_id = 42" % ks).one().v == "e42"
    salts = {r.salt for r in session.execute("SELECT salt FROM %s.s WHERE user = 'hot'" % ks)}
    assert salts == set(range(8))
    return n


def test_salted_hot_key(session, ks):
    salted_hot_key(session, ks)
    session.execute("DELETE FROM %s.s WHERE user = 'hot' AND event_id = 42" % ks)
    got = [r.event_id for r in session.execute("SELECT event_id FROM %s.s WHERE user = 'hot'" % ks)]
    assert 42 not in got and len(got) == 299


# ---- a 3-node cluster ---------------------------------------------------------

def test_cluster_reads_across_buckets_and_salts(make_cluster, clusters):
    from test_coordinator import FAST, session_on
    from conftest import wait_until
    c = make_cluster(config=FAST)
    c.wait_converged()
    ss = [session_on(clusters, n) for n in c]
    ss[0].execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    ss[0].execute(CREATE_B.format(ks="ks"))
    ss[0].execute(CREATE_S.format(ks="ks"))
    # the definitions travel with schema sync
    for s in ss:
        wait_until(lambda: s.execute("SELECT extensions FROM system_schema.tables WHERE keyspace_name = 'ks' "
                                     "AND table_name = 'b'").one() is not None
                   and s.execute("SELECT extensions FROM system_schema.tables WHERE keyspace_name = 'ks' "
                                 "AND table_name = 's'").one() is not None,
                   timeout=30, what="the tables reach every node")
        assert s.execute("SELECT extensions FROM system_schema.tables WHERE keyspace_name = 'ks' "
                         "AND table_name = 'b'").one().extensions == {"sibyl.bucket": b"BUCKET(ts, 1h)"}
    want = fill_b(ss[1], "ks", "a", 40)
    for s in ss:
        check_ranges(s, "ks", want)
    # one hot user at RF 1: its salts live on several nodes
    ins = ss[0].prepare("INSERT INTO ks.s (user, event_id, v) VALUES (?, ?, ?)")
    for e in range(200):
        ss[0].execute(ins, ("hot", e, "e%d" % e))
    for s in ss:
        got = [r.event_id for r in s.execute("SELECT event_id FROM ks.s WHERE user = 'hot'")]
        assert got == list(range(200))
    # eight partitions (eight tokens), so the hot user spreads over the ring
    toks = set()
    for salt in range(8):
        row = ss[0].execute("SELECT token(user, salt) AS t FROM ks.s WHERE user = 'hot' AND salt = %d LIMIT 1"
                            % salt).one()
        toks.add(row.t if row else None)
    assert None not in toks and len(toks) == 8


def test_bucket_and_salt_together(node, clusters, ks):
    from cassandra.query import SimpleStatement
    cluster, session = clusters.connect(node)
    session.execute(CREATE_M.format(ks=ks))
    ins = session.prepare("INSERT INTO %s.m (sensor, ts, v) VALUES (?, ?, ?)" % ks)
    want = [d * DAY + k * (DAY // 10) + 3 for d in range(-2, 3) for k in range(10)]
    for i, m in enumerate(want):
        session.execute(ins, ("a", m, i))
    # a given salt must be the computed one
    row = session.execute("SELECT ts_bucket, salt FROM %s.m WHERE sensor = 'a' AND ts = %d" % (ks, want[7])).one()
    session.execute("INSERT INTO %s.m (sensor, ts_bucket, salt, ts, v) VALUES ('a', %d, %d, %d, 70)" %
                    (ks, ms_of(row.ts_bucket), row.salt, want[7]))
    refused(session, "INSERT INTO %s.m (sensor, salt, ts, v) VALUES ('a', %d, %d, 1)" % (ks, (row.salt + 1) % 8, want[7]),
            "Invalid value for salt, which SALT(8) derives from the row: it would be %d" % row.salt)
    lo, hi = -DAY - DAY // 2, 2 * DAY
    exp = [m for m in want if lo <= m < hi]
    for desc in (False, True):
        q = "SELECT ts FROM %s.m WHERE sensor = 'a' AND ts >= %d AND ts < %d%s" % (
            ks, lo, hi, " ORDER BY ts DESC" if desc else "")
        got = [ms_of(r.ts) for r in session.execute(SimpleStatement(q, fetch_size=4))]
        assert got == (exp[::-1] if desc else exp)
    assert session.execute("SELECT v FROM %s.m WHERE sensor = 'a' AND ts = %d" % (ks, want[7])).one().v == 70
    cluster.shutdown()
    node.restart()
    cluster, session = clusters.connect(node)
    q = "SELECT ts FROM %s.m WHERE sensor = 'a' AND ts >= %d AND ts < %d" % (ks, lo, hi)
    assert [ms_of(r.ts) for r in session.execute(SimpleStatement(q, fetch_size=3))] == exp


def test_multi_row_writes_and_batches(session, ks):
    session.execute(CREATE_B.format(ks=ks))
    session.execute(CREATE_S.format(ks=ks))
    a, b = 10, 3 * HOUR + 10  # two buckets
    session.execute("BEGIN BATCH "
                    "INSERT INTO %s.b (sensor, ts, v) VALUES ('a', %d, 1); "
                    "INSERT INTO %s.b (sensor, ts, v) VALUES ('a', %d, 2); "
                    "INSERT INTO %s.s (user, event_id, v) VALUES ('u', 1, 'x'); "
                    "INSERT INTO %s.s (user, event_id, v) VALUES ('u', 2, 'y') "
                    "APPLY BATCH" % (ks, a, ks, b, ks, ks))
    # one UPDATE over two buckets writes each row in its own bucket only
    session.execute("UPDATE %s.b SET v = 7 WHERE sensor = 'a' AND ts IN (%d, %d)" % (ks, a, b))
    rows = list(session.execute("SELECT ts_bucket, ts, v FROM %s.b WHERE sensor = 'a' AND ts >= 0 AND ts < %d"
                                % (ks, 4 * HOUR)))
    assert [(ms_of(r.ts_bucket), ms_of(r.ts), r.v) for r in rows] == [(0, a, 7), (3 * HOUR, b, 7)]
    assert session.execute("SELECT COUNT(*) FROM %s.b WHERE sensor = 'a' AND ts_bucket IN (0, %d, %d)"
                           % (ks, HOUR, 2 * HOUR)).one()[0] == 1
    session.execute("UPDATE %s.s SET v = 'z' WHERE user = 'u' AND event_id IN (1, 2)" % ks)
    session.execute("DELETE v FROM %s.b WHERE sensor = 'a' AND ts = %d" % (ks, b))
    rows = list(session.execute("SELECT ts, v FROM %s.b WHERE sensor = 'a' AND ts IN (%d, %d)" % (ks, a, b)))
    assert [(ms_of(r.ts), r.v) for r in rows] == [(a, 7), (b, None)]
    assert [(r.event_id, r.v) for r in session.execute("SELECT event_id, v FROM %s.s WHERE user = 'u'" % ks)] == \
        [(1, "z"), (2, "z")]
    # a whole natural key of a salted table: every salt's partition
    session.execute("DELETE FROM %s.s WHERE user = 'u'" % ks)
    assert list(session.execute("SELECT * FROM %s.s WHERE user = 'u'" % ks)) == []


def test_prepared_reads_and_writes(session, ks):
    from cassandra.query import BatchStatement
    session.execute(CREATE_B.format(ks=ks))
    session.execute(CREATE_S.format(ks=ks))
    ins = session.prepare("INSERT INTO %s.b (sensor, ts, v) VALUES (?, ?, ?)" % ks)
    b = BatchStatement()
    for m in range(0, 5 * HOUR, HOUR // 2):
        b.add(ins, ("p", m, m // 1000))
    session.execute(b)
    sel = session.prepare("SELECT ts FROM %s.b WHERE sensor = ? AND ts >= ? AND ts < ? ORDER BY ts DESC LIMIT ?" % ks)
    assert not sel.routing_key_indexes
    got = [ms_of(r.ts) for r in session.execute(sel, ("p", HOUR, 4 * HOUR, 4))]
    assert got == [4 * HOUR - HOUR // 2, 3 * HOUR, 3 * HOUR - HOUR // 2, 2 * HOUR]
    inl = session.prepare("SELECT ts FROM %s.b WHERE sensor = ? AND ts IN ?" % ks)
    assert [ms_of(r.ts) for r in session.execute(inl, ("p", [4 * HOUR, 0, 7]))] == [0, 4 * HOUR]
    sins = session.prepare("INSERT INTO %s.s (user, event_id, v) VALUES (?, ?, ?)" % ks)
    assert not sins.routing_key_indexes
    for e in range(20):
        session.execute(sins, ("p", e, str(e)))
    ssel = session.prepare("SELECT event_id FROM %s.s WHERE user = ? AND event_id >= ?" % ks)
    assert [r.event_id for r in session.execute(ssel, ("p", 15))] == [15, 16, 17, 18, 19]
    upd = session.prepare("UPDATE %s.s SET v = ? WHERE user = ? AND event_id = ?" % ks)
    session.execute(upd, ("new", "p", 3))
    one = session.prepare("SELECT v FROM %s.s WHERE user = ? AND event_id = ?" % ks)
    assert session.execute(one, ("p", 3)).one().v == "new"
