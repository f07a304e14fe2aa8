"""CREATE/ALTER KEYSPACE replication as Cassandra 4.1/5.0 prepares and checks
it (docs/cql.md section 6): default_keyspace_rf for a strategy given without a
factor, NetworkTopologyStrategy's 'replication_factor' expansion to the known
datacenters, unknown or repeated datacenters refused with Cassandra's
messages."""

import pytest

from cassandra.protocol import ConfigurationException, SyntaxException


def repl(session, ks):
    return dict(session.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
                                (ks,)).one().replication)


NTS = "org.apache.cassandra.locator.NetworkTopologyStrategy"
SIMPLE = "org.apache.cassandra.locator.SimpleStrategy"


def refused(session, q, exc, msg):
    with pytest.raises(exc) as e:
        session.execute(q)
    assert msg in str(e.value), str(e.value)


def test_nts_refuses_unknown_datacenters(session):
    refused(session, "CREATE KEYSPACE k1 WITH replication = {'class': 'NetworkTopologyStrategy', 'INVALID_DC': 2}",
            ConfigurationException,
            "Unrecognized strategy option {INVALID_DC} passed to NetworkTopologyStrategy for keyspace k1")
    refused(session, "CREATE KEYSPACE k1 WITH replication = "
            "{'class': 'NetworkTopologyStrategy', 'datacenter1': 2, 'INVALID_DC': 1}",
            ConfigurationException,
            "Unrecognized strategy option {INVALID_DC} passed to NetworkTopologyStrategy for keyspace k1")
    assert session.execute("SELECT * FROM system_schema.keyspaces WHERE keyspace_name = 'k1'").one() is None
    session.execute("CREATE KEYSPACE k1 WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 2}")
    assert repl(session, "k1") == {"class": NTS, "datacenter1": "2"}
    refused(session, "ALTER KEYSPACE k1 WITH replication = {'class': 'NetworkTopologyStrategy', 'dc9': 1}",
            ConfigurationException,
            "Unrecognized strategy option {dc9} passed to NetworkTopologyStrategy for keyspace k1")
    assert repl(session, "k1") == {"class": NTS, "datacenter1": "2"}


def test_datacenter_named_twice_is_a_syntax_error(session):
    refused(session, "CREATE KEYSPACE k2 WITH replication = "
            "{'class': 'NetworkTopologyStrategy', 'datacenter1': 2, 'datacenter1': 3}",
            SyntaxException, "Multiple definition for property datacenter1")


def test_replication_factor_expands_to_known_datacenters(session):
    session.execute("CREATE KEYSPACE k3 WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 1}")
    assert repl(session, "k3") == {"class": NTS, "datacenter1": "1"}
    # the option is case-sensitive: any other spelling is an unknown datacenter
    refused(session, "CREATE KEYSPACE k4 WITH replication = {'class': 'NetworkTopologyStrategy', 'REPLICATION_FACTOR': 1}",
            ConfigurationException,
            "Unrecognized strategy option {REPLICATION_FACTOR} passed to NetworkTopologyStrategy for keyspace k4")
    refused(session, "CREATE KEYSPACE k4 WITH replication = {'class': 'SimpleStrategy', 'Replication_Factor': 1}",
            ConfigurationException,
            "Unrecognized strategy option {Replication_Factor} passed to SimpleStrategy for keyspace k4")
    # ALTER with 'replication_factor' keeps the factor of datacenters already there
    session.execute("ALTER KEYSPACE k3 WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 3}")
    assert repl(session, "k3") == {"class": NTS, "datacenter1": "1"}
    # a factor of 0 drops the datacenter; none left is refused
    refused(session, "CREATE KEYSPACE k5 WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 0}",
            ConfigurationException, "Configuration for at least one datacenter must be present")


def test_strategy_without_factor_takes_default_keyspace_rf(session):
    session.execute("CREATE KEYSPACE k6 WITH replication = {'class': 'NetworkTopologyStrategy'}")
    assert repl(session, "k6") == {"class": NTS, "datacenter1": "1"}
    session.execute("CREATE KEYSPACE k7 WITH replication = {'class': 'SimpleStrategy'}")
    assert repl(session, "k7") == {"class": SIMPLE, "replication_factor": "1"}
    refused(session, "CREATE KEYSPACE k8 WITH replication = {'replication_factor': 1}",
            ConfigurationException, "Missing replication strategy class")
    refused(session, "CREATE KEYSPACE k8 WITH durable_writes = true",
            Exception, "Missing mandatory option 'replication'")


def test_alter_keeps_the_previous_factor(session):
    session.execute("CREATE KEYSPACE k9 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}")
    # SimpleStrategy -> NTS with no factor: the previous factor, in every known datacenter
    session.execute("ALTER KEYSPACE k9 WITH replication = {'class': 'NetworkTopologyStrategy'}")
    assert repl(session, "k9") == {"class": NTS, "datacenter1": "2"}
    # NTS -> SimpleStrategy with no factor: default_keyspace_rf
    session.execute("ALTER KEYSPACE k9 WITH replication = {'class': 'SimpleStrategy'}")
    assert repl(session, "k9") == {"class": SIMPLE, "replication_factor": "1"}


def test_default_keyspace_rf_setting(make_node, clusters):
    node = make_node(default_keyspace_rf=3)
    _, s = clusters.connect(node)
    s.execute("CREATE KEYSPACE d1 WITH replication = {'class': 'NetworkTopologyStrategy'}")
    s.execute("CREATE KEYSPACE d2 WITH replication = {'class': 'SimpleStrategy'}")
    assert repl(s, "d1") == {"class": NTS, "datacenter1": "3"}
    assert repl(s, "d2") == {"class": SIMPLE, "replication_factor": "3"}
