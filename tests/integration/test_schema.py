"""DDL (keyspaces with SimpleStrategy / NetworkTopologyStrategy, tables with
options, ALTER ADD/DROP, TRUNCATE, DROP) and what the driver's metadata API
sees, including schema-change events seen by a second client."""

import pytest

from cassandra import InvalidRequest
from cassandra.metadata import NetworkTopologyStrategy, SimpleStrategy

from conftest import wait_until


def table_md(cluster, ks, table):
    return cluster.metadata.keyspaces[ks].tables[table]


def test_create_keyspace_simple_strategy(cluster, session):
    rs = session.execute("CREATE KEYSPACE simple_ks WITH replication = "
                         "{'class': 'SimpleStrategy', 'replication_factor': 2} AND durable_writes = true")
    assert rs.response_future.is_schema_agreed
    md = cluster.metadata.keyspaces["simple_ks"]
    assert isinstance(md.replication_strategy, SimpleStrategy)
    assert md.replication_strategy.replication_factor == 2
    assert md.durable_writes is True
    row = session.execute("SELECT * FROM system_schema.keyspaces WHERE keyspace_name = 'simple_ks'").one()
    assert row.replication == {"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "2"}


def test_create_keyspace_network_topology(cluster, session):
    session.execute("CREATE KEYSPACE nts_ks WITH replication = "
                    "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}")
    md = cluster.metadata.keyspaces["nts_ks"]
    assert isinstance(md.replication_strategy, NetworkTopologyStrategy)
    assert md.replication_strategy.dc_replication_factors == {"datacenter1": 1}
    session.execute("CREATE TABLE nts_ks.t (k int PRIMARY KEY, v int)")
    session.execute("INSERT INTO nts_ks.t (k, v) VALUES (1, 1)")
    assert session.execute("SELECT v FROM nts_ks.t WHERE k = 1").one().v == 1


def test_keyspace_names_case(cluster, session):
    session.execute("CREATE KEYSPACE \"QuotedKs\" WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE KEYSPACE UnquotedKs WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    assert "QuotedKs" in cluster.metadata.keyspaces
    assert "unquotedks" in cluster.metadata.keyspaces


def test_system_keyspaces_listed(cluster, session):
    assert {"system", "system_schema"} <= set(cluster.metadata.keyspaces)


def test_table_metadata(cluster, session, ks):
    rs = session.execute(
        "CREATE TABLE %s.readings (sensor text, day date, ts timestamp, seq int, value double, note text, "
        "PRIMARY KEY ((sensor, day), ts, seq)) WITH CLUSTERING ORDER BY (ts DESC, seq ASC) "
        "AND default_time_to_live = 3600 AND gc_grace_seconds = 7200 AND comment = 'sensor data' "
        "AND compaction = {'class': 'SizeTieredCompactionStrategy', 'min_threshold': '6'}" % ks)
    assert rs.response_future.is_schema_agreed
    tm = table_md(cluster, ks, "readings")
    assert [c.name for c in tm.partition_key] == ["sensor", "day"]
    assert [c.name for c in tm.clustering_key] == ["ts", "seq"]
    assert [c.is_reversed for c in tm.clustering_key] == [True, False]
    assert {n: c.cql_type for n, c in tm.columns.items()} == {
        "sensor": "text", "day": "date", "ts": "timestamp", "seq": "int", "value": "double", "note": "text"}
    assert list(tm.columns) == ["sensor", "day", "ts", "seq", "note", "value"]
    assert tm.options["default_time_to_live"] == 3600
    assert tm.options["gc_grace_seconds"] == 7200
    assert tm.options["comment"] == "sensor data"
    assert "SizeTieredCompactionStrategy" in tm.options["compaction"]["class"]
    assert tm.options["compaction"].get("min_threshold") == "6"
    assert tm.is_compact_storage is False             # flags = {'compound'}
    # The driver can describe it back as CQL that names the key layout.
    cql = tm.export_as_string()
    assert "PRIMARY KEY ((sensor, day), ts, seq)" in cql
    assert "CLUSTERING ORDER BY (ts DESC, seq ASC)" in cql


def test_system_schema_columns(session, ks):
    session.execute("CREATE TABLE %s.t (k int, c text, v blob, PRIMARY KEY (k, c)) "
                    "WITH CLUSTERING ORDER BY (c DESC)" % ks)
    rows = {r.column_name: r for r in session.execute(
        "SELECT * FROM system_schema.columns WHERE keyspace_name = %s AND table_name = 't'", [ks])}
    assert (rows["k"].kind, rows["k"].position, rows["k"].clustering_order, rows["k"].type) == \
        ("partition_key", 0, "none", "int")
    assert (rows["c"].kind, rows["c"].position, rows["c"].clustering_order, rows["c"].type) == \
        ("clustering", 0, "desc", "text")
    assert (rows["v"].kind, rows["v"].position, rows["v"].clustering_order, rows["v"].type) == \
        ("regular", -1, "none", "blob")
    t = session.execute("SELECT * FROM system_schema.tables WHERE keyspace_name = %s AND table_name = 't'",
                        [ks]).one()
    assert t.flags == {"compound"} and t.id is not None


def test_alter_table_add_drop(cluster, session, ks):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int)" % ks)
    session.execute("INSERT INTO %s.t (k, v) VALUES (1, 1)" % ks)
    rs = session.execute("ALTER TABLE %s.t ADD extra text" % ks)
    assert rs.response_future.is_schema_agreed
    assert "extra" in table_md(cluster, ks, "t").columns
    assert table_md(cluster, ks, "t").columns["extra"].cql_type == "text"
    assert session.execute("SELECT extra FROM %s.t WHERE k = 1" % ks).one().extra is None
    session.execute("INSERT INTO %s.t (k, v, extra) VALUES (2, 2, 'x')" % ks)
    assert session.execute("SELECT extra FROM %s.t WHERE k = 2" % ks).one().extra == "x"

    session.execute("ALTER TABLE %s.t DROP extra" % ks)
    assert "extra" not in table_md(cluster, ks, "t").columns
    assert session.execute("SELECT * FROM %s.t WHERE k = 2" % ks).column_names == ["k", "v"]
    with pytest.raises(InvalidRequest):
        session.execute("SELECT extra FROM %s.t" % ks)
    # Re-adding the name does not resurrect the dropped data.
    session.execute("ALTER TABLE %s.t ADD extra text" % ks)
    assert session.execute("SELECT extra FROM %s.t WHERE k = 2" % ks).one().extra is None

    with pytest.raises(InvalidRequest):
        session.execute("ALTER TABLE %s.t ADD v text" % ks)          # exists
    with pytest.raises(InvalidRequest):
        session.execute("ALTER TABLE %s.t DROP k" % ks)              # primary key
    with pytest.raises(InvalidRequest):
        session.execute("ALTER TABLE %s.t DROP nosuch" % ks)
    assert session.execute("SELECT v FROM %s.t WHERE k = 1" % ks).one().v == 1


def test_alter_table_add_several(cluster, session, ks):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY)" % ks)
    session.execute("ALTER TABLE %s.t ADD (a int, b text)" % ks)
    cols = table_md(cluster, ks, "t").columns
    assert cols["a"].cql_type == "int" and cols["b"].cql_type == "text"


def test_truncate(cluster, session, ks):
    session.execute("CREATE TABLE %s.t (k int, c int, PRIMARY KEY (k, c))" % ks)
    for i in range(20):
        session.execute("INSERT INTO %s.t (k, c) VALUES (%d, %d)" % (ks, i % 3, i))
    session.execute("TRUNCATE %s.t" % ks)
    assert list(session.execute("SELECT * FROM %s.t" % ks)) == []
    assert "t" in cluster.metadata.keyspaces[ks].tables
    session.execute("INSERT INTO %s.t (k, c) VALUES (1, 1)" % ks)
    session.execute("TRUNCATE TABLE %s.t" % ks)
    assert session.execute("SELECT COUNT(*) FROM %s.t" % ks).one()[0] == 0
    session.execute("INSERT INTO %s.t (k, c) VALUES (1, 1)" % ks)
    assert session.execute("SELECT COUNT(*) FROM %s.t" % ks).one()[0] == 1


def test_drop_table(cluster, session, ks):
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int)" % ks)
    session.execute("INSERT INTO %s.t (k, v) VALUES (1, 1)" % ks)
    rs = session.execute("DROP TABLE %s.t" % ks)
    assert rs.response_future.is_schema_agreed
    assert "t" not in cluster.metadata.keyspaces[ks].tables
    with pytest.raises(InvalidRequest):
        session.execute("SELECT * FROM %s.t" % ks)
    session.execute("DROP TABLE IF EXISTS %s.t" % ks)
    # A new table of the same name starts empty.
    session.execute("CREATE TABLE %s.t (k int PRIMARY KEY, v int)" % ks)
    assert list(session.execute("SELECT * FROM %s.t" % ks)) == []


def test_drop_keyspace(cluster, session):
    session.execute("CREATE KEYSPACE dropme WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE dropme.t (k int PRIMARY KEY)")
    session.execute("INSERT INTO dropme.t (k) VALUES (1)")
    rs = session.execute("DROP KEYSPACE dropme")
    assert rs.response_future.is_schema_agreed
    assert "dropme" not in cluster.metadata.keyspaces
    with pytest.raises(InvalidRequest):
        session.execute("SELECT * FROM dropme.t")
    with pytest.raises(InvalidRequest):
        session.execute("USE dropme")
    with pytest.raises(InvalidRequest) as e:
        session.execute("DROP KEYSPACE dropme")
    assert "Keyspace 'dropme' doesn't exist" in str(e.value)
    session.execute("DROP KEYSPACE IF EXISTS dropme")
    session.execute("CREATE KEYSPACE dropme WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE dropme.t (k int PRIMARY KEY)")
    assert list(session.execute("SELECT * FROM dropme.t")) == []


def test_schema_events_reach_second_client(node, clusters, session, ks):
    c2, s2 = clusters.connect(node, protocol_version=4)
    assert ks in c2.metadata.keyspaces
    session.execute("CREATE TABLE %s.seen (k int PRIMARY KEY, v text)" % ks)
    # c2 never queried: only a SCHEMA_CHANGE event can tell it.
    wait_until(lambda: "seen" in c2.metadata.keyspaces[ks].tables, timeout=15, interval=0.1,
               what="second client to see the new table")
    assert list(c2.metadata.keyspaces[ks].tables["seen"].columns) == ["k", "v"]
    session.execute("ALTER TABLE %s.seen ADD w int" % ks)
    wait_until(lambda: "w" in c2.metadata.keyspaces[ks].tables["seen"].columns, timeout=15,
               interval=0.1, what="second client to see the new column")
    session.execute("DROP TABLE %s.seen" % ks)
    wait_until(lambda: "seen" not in c2.metadata.keyspaces[ks].tables, timeout=15, interval=0.1,
               what="second client to see the drop")
    session.execute("CREATE KEYSPACE evks WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    wait_until(lambda: "evks" in c2.metadata.keyspaces, timeout=15, interval=0.1,
               what="second client to see the new keyspace")


def test_if_not_exists_if_exists(cluster, session, ks):
    session.execute("CREATE TABLE IF NOT EXISTS %s.t (k int PRIMARY KEY)" % ks)
    session.execute("CREATE TABLE IF NOT EXISTS %s.t (k int PRIMARY KEY)" % ks)
    session.execute("DROP TABLE IF EXISTS %s.t" % ks)
    session.execute("DROP TABLE IF EXISTS %s.t" % ks)
    session.execute("DROP KEYSPACE IF EXISTS nosuchks")
    assert "t" not in cluster.metadata.keyspaces[ks].tables


def test_table_options_are_stored(session, ks):
    session.execute("CREATE TABLE %s.opts (k int PRIMARY KEY) WITH comment = 'it''s' "
                    "AND gc_grace_seconds = 10 AND default_time_to_live = 0 "
                    "AND compaction = {'class': 'LeveledCompactionStrategy'}" % ks)
    r = session.execute("SELECT comment, gc_grace_seconds, default_time_to_live, compaction "
                        "FROM system_schema.tables WHERE keyspace_name = %s AND table_name = 'opts'",
                        [ks]).one()
    assert (r.comment, r.gc_grace_seconds, r.default_time_to_live) == ("it's", 10, 0)
    assert "LeveledCompactionStrategy" in r.compaction["class"]
