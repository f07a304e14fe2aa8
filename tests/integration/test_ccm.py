"""tools/sibyl-ccm, the local cluster launcher, driven as a user drives it:
create, start (waiting until every node sees every other UP), per-node stop,
start, pause and resume, updateconf, stop --not-gently, remove. Nodes use the
fixed ports 9042/7000/10000 on 127.0.0.K, so the test skips when one of them
is taken on those addresses."""

import os
import socket
import subprocess
import time

import pytest

from cassandra.cluster import Cluster

from sibyl_harness import REPO_ROOT, find_binary

CCM = os.path.join(REPO_ROOT, "tools", "sibyl-ccm")
NODES = 3


def ports_free(n):
    for i in range(1, n + 1):
        for port in (9042, 7000, 10000):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.%d" % i, port))
            except OSError:
                return False
            finally:
                s.close()
    return True


@pytest.fixture
def ccm(tmp_path):
    if not ports_free(NODES):
        pytest.skip("the default ports are taken on 127.0.0.1..%d" % NODES)
    env = dict(os.environ, SIBYL_CCM_DIR=str(tmp_path / "ccm"), SIBYL_BIN=find_binary())
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")

    def run(*args, check=True):
        r = subprocess.run([CCM] + list(args), env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=180)
        if check and r.returncode != 0:
            raise AssertionError("sibyl-ccm %s failed (%d):\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    run.home = tmp_path / "ccm"
    yield run
    run("remove", check=False)       # kills every node of the cluster by its pid file


def pid_of(ccm, cluster, node):
    with open(ccm.home / cluster / node / "sibyld.pid") as f:
        return int(f.read())


def proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_lifecycle(ccm):
    ccm("create", "t1", "-n", str(NODES))
    ccm("updateconf", "gossip_interval: 200ms", "phi_convict_threshold: 16")
    out = ccm("start").stdout
    assert "every node sees every other UP" in out
    c = Cluster(["127.0.0.1"], port=9042, protocol_version=4)
    try:
        s = c.connect()
        assert s.execute("SELECT cluster_name FROM system.local").one().cluster_name == "t1"
    finally:
        c.shutdown()
    st = ccm("status").stdout
    for i in range(1, NODES + 1):
        assert "node%d: UP (127.0.0.%d)" % (i, i) in st
        # every running node reports every node UP/Normal
        assert "node%d sees: %s" % (i, ", ".join("UN 127.0.0.%d" % k for k in range(1, NODES + 1))) in st, st

    # A stopped node is seen DOWN by the others (its graceful stop announces it).
    ccm("node3", "stop")
    for _ in range(200):
        st = ccm("status").stdout
        if "DN 127.0.0.3" in st.split("node1 sees:")[1].split("\n")[0]:
            break
        time.sleep(0.1)
    assert "DN 127.0.0.3" in st.split("node1 sees:")[1].split("\n")[0], st
    ccm("node3", "start")
    ccm("start")      # starts nothing new; waits until all see each other UP again

    pid = pid_of(ccm, "t1", "node1")
    ccm("node1", "pause")
    assert proc_state(pid) == "T"
    assert "node1: PAUSED" in ccm("status").stdout
    ccm("node1", "resume")
    for _ in range(100):
        if proc_state(pid) != "T":
            break
        time.sleep(0.05)
    assert proc_state(pid) != "T"

    ccm("node1", "stop")
    assert not os.path.exists("/proc/%d" % pid) or proc_state(pid) == "Z"
    assert "node1: DOWN" in ccm("status").stdout

    ccm("updateconf", "num_tokens: 4")
    for i in range(1, NODES + 1):
        with open(ccm.home / "t1" / ("node%d" % i) / "conf" / "sibyl.yaml") as f:
            assert "num_tokens: 4\n" in f.read()
    ccm("node1", "start")
    pids = [pid_of(ccm, "t1", "node%d" % i) for i in range(1, NODES + 1)]
    ccm("stop", "--not-gently")
    for pid in pids:
        for _ in range(100):
            if not os.path.exists("/proc/%d" % pid):
                break
            time.sleep(0.05)
        assert not os.path.exists("/proc/%d" % pid)
    assert "*t1" in ccm("list").stdout
    ccm("remove")
    assert not (ccm.home / "t1").exists()


def test_errors(ccm):
    r = ccm("status", check=False)
    assert r.returncode == 1 and "no current cluster" in r.stderr
    ccm("create", "t2", "-n", "1")
    r = ccm("create", "t2", "-n", "1", check=False)
    assert r.returncode == 1 and "already exists" in r.stderr
    r = ccm("node7", "start", check=False)
    assert r.returncode == 1 and "has no node7" in r.stderr
    r = ccm("updateconf", "novalue", check=False)
    assert r.returncode == 1 and "key: value" in r.stderr
    r = ccm("node1", "pause", check=False)
    assert r.returncode == 1 and "not running" in r.stderr
