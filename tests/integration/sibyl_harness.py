"""Start, restart and kill real `sibyld` processes for the integration tests.

A SibylNode owns one process at a time, one temporary directory (config, data,
commitlog, one stderr log per start) and one loopback endpoint. It is kept
deliberately free of pytest so the Node.js tests' expectations and this file
can be read side by side; conftest.py wraps it in fixtures.

Environment:
  SIBYL_BIN           path of the sibyld binary (default: first of
                      build-asan/node/sibyld, build/node/sibyld under the repo)
  SIBYL_TEST_ADDRESS  loopback address the node listens on (default 127.0.0.1)
  SIBYL_ALLOW_LEAKS   set to 1 to ignore LeakSanitizer reports at shutdown

Every wait is bounded; every process is killed by its pid.
"""

import atexit
import ctypes
import os
import random
import signal
import socket
import subprocess
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

START_TIMEOUT = 20.0      # seconds until the native port must accept connections
POLL_INTERVAL = 0.05
STOP_TIMEOUT = 10.0       # SIGTERM grace period before SIGKILL

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "runtime error:",              # UBSan
    "ERROR: ThreadSanitizer",
    "WARNING: ThreadSanitizer",
)
LEAK_MARKER = "ERROR: LeakSanitizer"


def find_binary():
    """Path of sibyld, or None if it has not been built."""
    env = os.environ.get("SIBYL_BIN")
    if env:
        return env if os.access(env, os.X_OK) else None
    for d in ("build-asan", "build"):
        p = os.path.join(REPO_ROOT, d, "node", "sibyld")
        if os.access(p, os.X_OK):
            return p
    return None


def test_address():
    return os.environ.get("SIBYL_TEST_ADDRESS", "127.0.0.1")


def _ephemeral_low():
    """The first port of the kernel's ephemeral range (32768 by default)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORT_RNG = random.Random()


def free_ports(address, n=1):
    """n distinct TCP ports that were free on `address` a moment ago, held
    bound until all are chosen. They are picked at random BELOW the
    kernel's ephemeral range: a port the kernel hands out itself (bind to
    0) can be taken again between this choice and the node's bind by any
    outgoing connection on the machine (a node's own gossip included), and
    the node then fails to start with "Address already in use"."""
    low = max(_ephemeral_low(), 11000)
    socks, ports = [], []
    try:
        for _ in range(2000):
            if len(ports) == n:
                return ports
            p = _PORT_RNG.randrange(10000, low)
            if p in ports:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((address, p))
            except OSError:
                s.close()
                continue
            socks.append(s)
            ports.append(p)
        raise NodeError("no %d free ports below %d on %s" % (n, low, address))
    finally:
        for s in socks:
            s.close()


def free_port(address):
    return free_ports(address, 1)[0]


def sanitizer_env():
    env = dict(os.environ)
    # Sanitizer reports go to stderr (our log) and end the process, so a bug
    # in the node shows up as a failed test, never as a quiet wrong answer.
    env["ASAN_OPTIONS"] = ":".join([
        "halt_on_error=1", "abort_on_error=0", "detect_leaks=1",
        "detect_stack_use_after_return=1", "strict_string_checks=1",
        "check_initialization_order=1", env.get("ASAN_OPTIONS", ""),
    ]).rstrip(":")
    env["UBSAN_OPTIONS"] = ":".join([
        "print_stacktrace=1", "halt_on_error=1", env.get("UBSAN_OPTIONS", ""),
    ]).rstrip(":")
    return env


def yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class NodeError(Exception):
    pass


_LIVE = set()          # every SibylNode with a process, for the atexit sweep


def admin_info(node):
    """The node's GET /info (admin API) as a dict."""
    import json
    import urllib.request
    with urllib.request.urlopen("http://%s:%d/info" % (node.host, node.admin_port), timeout=30) as r:
        return json.loads(r.read().decode())


def flush(node):
    """POST /flush, then wait (bounded: 30 s) until no flush is pending; the last /info."""
    import urllib.request
    req = urllib.request.Request("http://%s:%d/flush" % (node.host, node.admin_port), method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
    for _ in range(600):
        info = admin_info(node)
        if info["flushes_pending"] == 0:
            return info
        time.sleep(0.05)
    raise AssertionError("flush did not finish")


@atexit.register
def _kill_leftovers():
    for n in list(_LIVE):
        n.kill9()


def _die_with_parent():
    """In the child before exec: SIGKILL the node if the test process dies
    (even by SIGKILL or os._exit), so no sibyld outlives its test run."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class SibylNode:
    """One sibyld on (host, port) with its own data directory.

    `config` holds extra cassandra.yaml-style keys (commitlog_sync, ...).
    Iterating gives (host, port, datadir, proc) for tuple-style use.
    """

    def __init__(self, binary, workdir, host=None, port=None, config=None,
                 cluster_name="Sibyl Test Cluster", num_tokens=8, storage_port=None,
                 admin_port=None, seeds=None):
        self.binary = binary
        self.workdir = workdir
        self.host = host or test_address()
        ports = free_ports(self.host, 3)
        self.port = port or ports[0]
        self.seeds = seeds           # "a,b" for seed_provider; None = the node itself
        self.datadir = os.path.join(workdir, "data")
        self.commitlog_dir = os.path.join(workdir, "commitlog")
        self.hints_dir = os.path.join(workdir, "hints")
        self.config_path = os.path.join(workdir, "sibyl.yaml")
        self.cluster_name = cluster_name
        self.num_tokens = num_tokens
        self.extra = dict(config or {})
        # Internode and admin ports are set too, so nodes of parallel test
        # runs never fight over the defaults 7000 / 10000.
        self.storage_port = storage_port or ports[1]
        self.admin_port = admin_port or ports[2]
        self.proc = None
        self.env = {}             # extra environment of the next starts (SIBYL_FAILPOINTS)
        self.logs = []            # one stderr log per start, in order
        self.expected_exit = False
        self.starts = 0
        self.nofile = None        # (soft, hard) RLIMIT_NOFILE for the process, or None
        os.makedirs(workdir, exist_ok=True)
        self.write_config()

    def __iter__(self):
        return iter((self.host, self.port, self.datadir, self.proc))

    # -- configuration ----------------------------------------------------
    def write_config(self):
        keys = {
            "cluster_name": self.cluster_name,
            "num_tokens": self.num_tokens,
            "listen_address": self.host,
            "rpc_address": self.host,
            "native_transport_port": self.port,
            "storage_port": self.storage_port,
            "admin_port": self.admin_port,
            "admin_address": self.host,
            "commitlog_directory": self.commitlog_dir,
            "hints_directory": self.hints_dir,
        }
        keys.update(self.extra)
        lines = ["# generated by tests/integration/sibyl_harness.py"]
        for k, v in keys.items():
            lines.append("%s: %s" % (k, yaml_value(v)))
        lines.append("data_file_directories:")
        lines.append("    - %s" % yaml_value(self.datadir))
        if self.seeds:
            lines += ["seed_provider:",
                      "    - class_name: org.apache.cassandra.locator.SimpleSeedProvider",
                      "      parameters:",
                      "          - seeds: %s" % yaml_value(self.seeds)]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def set_config(self, **keys):
        """Change config keys; takes effect at the next start."""
        self.extra.update(keys)
        self.write_config()

    # -- lifecycle --------------------------------------------------------
    @property
    def log_path(self):
        return self.logs[-1] if self.logs else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=START_TIMEOUT):
        if self.running():
            raise NodeError("node already running (pid %d)" % self.proc.pid)
        self.starts += 1
        log = os.path.join(self.workdir, "sibyld-%d.log" % self.starts)
        self.logs.append(log)
        self.expected_exit = False
        env = sanitizer_env()
        env.update(self.env)
        with open(log, "wb") as errf:
            self.proc = subprocess.Popen(
                [self.binary, "--config", self.config_path],
                cwd=self.workdir, stdin=subprocess.DEVNULL,
                stdout=errf, stderr=subprocess.STDOUT,
                env=env, start_new_session=True,
                preexec_fn=self._preexec)
        _LIVE.add(self)
        self.wait_ready(timeout)
        return self

    def _preexec(self):
        _die_with_parent()
        if self.nofile:
            import resource
            resource.setrlimit(resource.RLIMIT_NOFILE, self.nofile)

    def wait_ready(self, timeout=START_TIMEOUT):
        """Poll the native port until it accepts a TCP connection."""
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.expected_exit = True      # reported here, not again at teardown
                raise NodeError("sibyld exited with %s before accepting connections\n%s"
                                % (rc, self.log_tail()))
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                self.kill9()
                raise NodeError("sibyld did not accept connections on %s:%d within %.0f s\n%s"
                                % (self.host, self.port, timeout, self.log_tail()))
            time.sleep(POLL_INTERVAL)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait, then SIGKILL. Returns the exit status (or None)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.expected_exit = True
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        if self.proc.poll() is not None:
            _LIVE.discard(self)
        return self.proc.returncode

    def kill9(self):
        """kill -9 the node (a crash) and reap it."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.expected_exit = True
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is not None:
            _LIVE.discard(self)
        return self.proc.returncode

    def restart(self, kill=False, timeout=START_TIMEOUT):
        """Stop (or kill -9 with kill=True) and start again on the same data,
        address and port."""
        if kill:
            self.kill9()
        else:
            self.stop()
        self.check_logs()
        return self.start(timeout)

    def died_unexpectedly(self):
        """Exit status if the process ended without us stopping it."""
        if self.proc is not None and not self.expected_exit:
            rc = self.proc.poll()
            if rc is not None:
                return rc
        return None

    # -- logs -------------------------------------------------------------
    def log_text(self, which=None):
        path = which or self.log_path
        if not path or not os.path.exists(path):
            return ""
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self, nbytes=6000):
        text = self.log_text()
        if len(text) > nbytes:
            text = "...\n" + text[-nbytes:]
        return "---- %s ----\n%s---- end of log ----" % (self.log_path, text)

    def sanitizer_reports(self):
        """Lines of every log that show a sanitizer error."""
        markers = list(SANITIZER_MARKERS)
        if os.environ.get("SIBYL_ALLOW_LEAKS") != "1":
            markers.append(LEAK_MARKER)
        found = []
        for path in self.logs:
            for line in self.log_text(path).splitlines():
                if any(m in line for m in markers):
                    found.append("%s: %s" % (os.path.basename(path), line.strip()))
        return found

    def check_logs(self):
        reports = self.sanitizer_reports()
        if reports:
            raise NodeError("sanitizer errors in sibyld logs:\n  %s\n%s"
                            % ("\n  ".join(reports[:20]), self.log_tail()))

    def shutdown(self):
        """Teardown: stop by pid (always), then fail on a crash or a
        sanitizer report. Returns a list of problems (empty if clean)."""
        problems = []
        rc = self.died_unexpectedly()
        if rc is not None:
            problems.append("sibyld (pid %d) died during the test with status %s"
                            % (self.proc.pid, rc))
        try:
            self.stop()
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.kill9()
        reports = self.sanitizer_reports()
        if reports:
            problems.append("sanitizer errors:\n  " + "\n  ".join(reports[:20]))
        return problems


# ---- several nodes: one cluster on 127.0.0.1, 127.0.0.2, ... ----------------

def common_free_ports(addresses, n, attempts=50):
    """n ports that were free a moment ago on every one of `addresses`, as
    Cassandra nodes on one machine share their ports and differ by address."""
    for _ in range(attempts):
        chosen = free_ports(addresses[0], n)
        socks = []
        try:
            for a in addresses[1:]:
                for p in chosen:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    socks.append(s)
                    s.bind((a, p))
            return chosen
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise NodeError("no %d ports free on all of %s" % (n, ", ".join(addresses)))


def admin_get(host, port, path, timeout=10):
    import json
    import urllib.request
    with urllib.request.urlopen("http://%s:%d/%s" % (host, port, path), timeout=timeout) as r:
        return json.loads(r.read().decode())


class SibylCluster:
    """`size` sibyld nodes on 127.0.0.<first>..., one data directory each,
    the same native / storage / admin ports on every address (`ports`
    picks them), and the first `nseeds` nodes as seeds (or `seeds`). `config` holds extra yaml keys for every node
    (gossip_interval_ms, phi_convict_threshold...). Every process is stopped
    by pid in shutdown(), which returns the problems found (crashes,
    sanitizer reports)."""

    def __init__(self, binary, workdir, size=3, first=1, cluster_name="Sibyl Test Cluster",
                 config=None, nseeds=1, num_tokens=8, ports=None, seeds=None):
        self.addresses = ["127.0.0.%d" % (first + i) for i in range(size)]
        self.native_port, self.storage_port, self.admin_port = ports or common_free_ports(self.addresses, 3)
        self.seeds = seeds or ",".join(self.addresses[:nseeds])
        self.cluster_name = cluster_name
        self.nodes = []
        for i, addr in enumerate(self.addresses):
            self.nodes.append(SibylNode(
                binary, os.path.join(workdir, "node%d" % (first + i)), host=addr, port=self.native_port,
                config=config, cluster_name=cluster_name, num_tokens=num_tokens,
                storage_port=self.storage_port, admin_port=self.admin_port, seeds=self.seeds))

    def __iter__(self):
        return iter(self.nodes)

    def __getitem__(self, i):
        return self.nodes[i]

    def start(self, timeout=START_TIMEOUT):
        for n in self.nodes:
            n.start(timeout)
        return self

    def status(self, node):
        """{address: "UN"/"DN"/...} as `node` sees the cluster (GET /status)."""
        st = admin_get(node.host, node.admin_port, "status")
        return {m["address"]: m["status"] + m["state"] for m in st["nodes"]}

    def wait_converged(self, nodes=None, timeout=60.0):
        """Until every node in `nodes` (default: all) sees exactly those
        nodes, all UN. Bounded."""
        nodes = nodes or self.nodes
        want = {n.host: "UN" for n in nodes}
        deadline = time.monotonic() + timeout
        while True:
            views = {}
            try:
                views = {n.host: self.status(n) for n in nodes}
                if all(v == want for v in views.values()):
                    return views
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise NodeError("cluster did not converge within %.0f s: %r" % (timeout, views))
            time.sleep(0.1)

    def wait_log(self, node, text, count=1, timeout=60.0):
        """Until `text` appears `count` times in node's current log. Bounded."""
        deadline = time.monotonic() + timeout
        while node.log_text().count(text) < count:
            if time.monotonic() >= deadline:
                raise NodeError("%s never logged %r (%d times) within %.0f s\n%s"
                                % (node.host, text, count, timeout, node.log_tail()))
            time.sleep(0.05)

    def shutdown(self):
        problems = []
        for n in self.nodes:
            problems += ["%s: %s" % (n.host, p) for p in n.shutdown()]
        return problems
