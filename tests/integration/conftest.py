"""pytest fixtures: a fresh sibyld per test, driver clusters that are always
shut down, and a keyspace per test.

Run with Debian's interpreter, which has the driver (python3-cassandra):
    SIBYL_BIN=build-asan/node/sibyld /usr/bin/python3 -m pytest -q tests/integration
"""

import logging
import os
import re
import shutil
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from sibyl_harness import SibylCluster, SibylNode, find_binary  # noqa: E402

from cassandra import ConsistencyLevel  # noqa: E402
from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT  # noqa: E402
from cassandra.policies import (  # noqa: E402
    DCAwareRoundRobinPolicy, TokenAwarePolicy, FallthroughRetryPolicy,
    ConstantReconnectionPolicy)

LOCAL_DC = "datacenter1"
REQUEST_TIMEOUT = 20.0     # generous: the node runs under ASan in CI

# The driver logs connection errors at WARNING/ERROR; keep them in the
# captured log of a failing test but out of the way otherwise.
logging.getLogger("cassandra").setLevel(logging.WARNING)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _test_failed(request):
    for when in ("setup", "call"):
        rep = getattr(request.node, "rep_" + when, None)
        if rep is not None and rep.failed:
            return True
    return False


@pytest.fixture(scope="session")
def sibyl_bin():
    b = find_binary()
    if b is None:
        pytest.fail("sibyld not found: build it (cmake --build build-asan) or set SIBYL_BIN", pytrace=False)
    return b


class NodeFactory:
    """Starts SibylNodes in tmp dirs; teardown stops every one of them by pid."""

    def __init__(self, binary, tmp_path_factory):
        self.binary = binary
        self.tmp = tmp_path_factory
        self.nodes = []

    def __call__(self, start=True, host=None, **config):
        workdir = str(self.tmp.mktemp("sibyl"))
        n = SibylNode(self.binary, workdir, host=host, config=config)
        self.nodes.append(n)
        if start:
            n.start()
        return n

    def cluster(self, start=True, **kw):
        c = SibylCluster(self.binary, str(self.tmp.mktemp("cluster")), **kw)
        self.nodes.extend(c.nodes)
        if start:
            c.start()
        return c

    def teardown(self, failed):
        problems = []
        for n in self.nodes:
            problems += n.shutdown()
            if failed or problems:
                print("\n" + n.log_tail())
        return problems


@pytest.fixture
def make_node(sibyl_bin, tmp_path_factory, request):
    f = NodeFactory(sibyl_bin, tmp_path_factory)
    failed = True
    try:
        yield f
    finally:
        failed = _test_failed(request)
        problems = f.teardown(failed)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    if not failed:
        # A passing test's data and logs go (a full run left about 20 GB in
        # /tmp otherwise); a failing one's stay for the post-mortem.
        for n in f.nodes:
            shutil.rmtree(n.workdir, ignore_errors=True)


@pytest.fixture
def make_cluster(make_node):
    """make_cluster(size=3, config={...}, ...) starts a SibylCluster (several
    sibyld on 127.0.0.x, sibyl_harness.py); make_node's teardown stops every
    one of its nodes by pid."""
    return make_node.cluster


@pytest.fixture
def node(make_node):
    """A fresh sibyld with default settings (periodic commitlog)."""
    return make_node()


def default_profile(consistency=ConsistencyLevel.LOCAL_ONE):
    return ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=LOCAL_DC)),
        # Surface server errors (Unavailable included) as they are, no retry
        # on another host: a single node has none.
        retry_policy=FallthroughRetryPolicy(),
        consistency_level=consistency,
        request_timeout=REQUEST_TIMEOUT)


class ClusterFactory:
    def __init__(self):
        self.clusters = []

    def cluster(self, node, **kw):
        kw.setdefault("execution_profiles", {EXEC_PROFILE_DEFAULT: default_profile()})
        kw.setdefault("connect_timeout", 10)
        kw.setdefault("control_connection_timeout", 10.0)
        kw.setdefault("reconnection_policy", ConstantReconnectionPolicy(0.2, max_attempts=None))
        kw.setdefault("schema_event_refresh_window", 0.2)
        c = Cluster([node.host], port=node.port, **kw)
        self.clusters.append(c)
        return c

    def connect(self, node, keyspace=None, **kw):
        c = self.cluster(node, **kw)
        return c, c.connect(keyspace)

    def shutdown(self):
        for c in self.clusters:
            try:
                c.shutdown()
            except Exception as e:  # keep shutting the others down
                print("cluster shutdown: %r" % e)


@pytest.fixture
def clusters():
    f = ClusterFactory()
    try:
        yield f
    finally:
        f.shutdown()


@pytest.fixture
def cluster_session(node, clusters):
    """(cluster, session) with default protocol negotiation."""
    return clusters.connect(node)


@pytest.fixture
def session(cluster_session):
    return cluster_session[1]


@pytest.fixture
def cluster(cluster_session):
    return cluster_session[0]


def keyspace_name(request):
    base = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())
    return ("ks_" + base)[:40]


@pytest.fixture
def ks(session, request):
    """A keyspace (SimpleStrategy, RF 1) named after the test."""
    name = keyspace_name(request)
    session.execute("CREATE KEYSPACE %s WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}" % name)
    return name


def refused(session, q, msg, params=None):
    """q fails with InvalidRequest carrying exactly Cassandra's message msg;
    with params it runs prepared, with those values bound."""
    from cassandra import InvalidRequest
    with pytest.raises(InvalidRequest) as e:
        if params is None:
            session.execute(q)
        else:
            session.execute(session.prepare(q), params)
    assert 'message="%s"' % msg in str(e.value), str(e.value)


def wait_until(pred, timeout=15.0, interval=0.05, what="condition"):
    """Poll pred() until it returns a true value; bounded in time."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)
