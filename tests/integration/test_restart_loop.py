"""A node restarted in a loop under a QUORUM write load (3 nodes, RF 3):
while 127.0.0.3 (then the seed, 127.0.0.1) is stopped and started again
(gracefully or by kill -9, started once the others see it DOWN or at
once), a writer thread writes rows at QUORUM through the two other
nodes in turn. A write that answers Unavailable or times out is retried
under a new key and never counted: only acknowledged rows are. Afterwards
every acknowledged row reads back at QUORUM through every node, the
restarted one included (which missed the rows written while it was down:
there are no hints, so its reads lean on the reconciliation of the other
replica's answer and on read repair).

Every node is stopped by pid at teardown (make_cluster); the writer thread
is bounded in writes and time and joined even on failure.
"""

import threading
import time

import pytest

from conftest import wait_until

from cassandra import ConsistencyLevel as CL, OperationTimedOut, Unavailable, WriteTimeout
from cassandra.cluster import NoHostAvailable
from cassandra.concurrent import execute_concurrent_with_args

from test_availability import create_table, wait_views
from test_coordinator import FAST, session_on

# (stop or kill -9, wait until the others see it DOWN before starting it)
CYCLES = [("stop", True), ("kill", True), ("kill", False), ("stop", False)]
MAX_WRITES = 50000          # the writer's bound, whatever the loop does
PAUSE = 0.003               # between writes: a steady load, not a flood
WRITER_TIMEOUT = 300.0      # seconds


class Writer(threading.Thread):
    """QUORUM inserts through `sessions` in turn until stopped (bounded)."""

    def __init__(self, sessions):
        super().__init__(daemon=True)
        self.sessions = sessions
        self.stop_flag = threading.Event()
        self.acked = {}          # k -> v, acknowledged writes only
        self.refused = 0         # Unavailable: nothing written
        self.timed_out = 0       # may or may not have been applied; not counted
        self.error = None
        self.ins = [s.prepare("INSERT INTO ks.t (k, v) VALUES (?, ?)") for s in sessions]
        for p in self.ins:
            p.consistency_level = CL.QUORUM

    def run(self):
        deadline = time.monotonic() + WRITER_TIMEOUT
        k = 0
        try:
            while not self.stop_flag.is_set() and k < MAX_WRITES and time.monotonic() < deadline:
                i = k % len(self.sessions)
                v = "v%d" % k
                try:
                    self.sessions[i].execute(self.ins[i], (k, v))
                    self.acked[k] = v
                except Unavailable:
                    self.refused += 1
                    time.sleep(0.01)
                except (WriteTimeout, OperationTimedOut, NoHostAvailable):
                    self.timed_out += 1
                k += 1
                time.sleep(PAUSE)
        except Exception as e:  # reported by the test
            self.error = e

    def phase(self, n, timeout=60):
        """Wait (bounded) until n more writes were acknowledged."""
        want = len(self.acked) + n
        wait_until(lambda: len(self.acked) >= want or not self.is_alive(), timeout=timeout,
                   what="%d more acknowledged writes" % n)
        assert self.is_alive(), "the writer stopped early (%r)" % self.error


def try_write(s, ps, k, v):
    try:
        s.execute(ps, (k, v))
        return True
    except (Unavailable, WriteTimeout, OperationTimedOut):
        return False


@pytest.mark.parametrize("which", [2, 0], ids=["non-seed", "seed"])
def test_quorum_writes_survive_a_node_restarted_in_a_loop(make_cluster, clusters, which):
    c = make_cluster(config=FAST)
    c.wait_converged()
    bounced = c[which]                   # restarted; 127.0.0.1 is the seed
    a, b = [n for n in c if n is not bounced]   # the coordinators
    s1, s2 = session_on(clusters, a), session_on(clusters, b)
    create_table([s1, s2, session_on(clusters, bounced)], "{'class': 'SimpleStrategy', 'replication_factor': 3}")

    all_ins = [s.prepare("INSERT INTO ks.t (k, v) VALUES (?, ?)") for s in (s1, s2)]
    for p in all_ins:
        p.consistency_level = CL.ALL
    everywhere = {}             # written at ALL after a restart
    w = Writer([s1, s2])
    w.start()
    try:
        w.phase(50)
        for cycle, (how, wait_down) in enumerate(CYCLES):
            if how == "kill":
                bounced.kill9()
            else:
                bounced.stop()
            w.phase(30)                    # writes while it is down (or not yet convicted)
            if wait_down:
                wait_views(c, [a, b], [bounced])
                w.phase(30)
            bounced.check_logs()
            bounced.start()
            wait_views(c, c.nodes, [])
            # once everyone sees it UP it takes writes again: ALL needs its
            # ack, through both coordinators. After a bounce too quick for
            # the others to notice, the first may still time out on a
            # connection to the old process: retried, bounded.
            for i, s in enumerate((s1, s2)):
                k, v = -1 - 2 * cycle - i, "all%d.%d" % (cycle, i)
                if wait_down:
                    s.execute(all_ins[i], (k, v))
                else:
                    wait_until(lambda: try_write(s, all_ins[i], k, v), timeout=30,
                               what="an ALL write through %s after a quick bounce" % (a.host, b.host)[i])
                everywhere[k] = v
            w.phase(30)
    finally:
        w.stop_flag.set()
        w.join(timeout=60)
    assert not w.is_alive(), "the writer did not stop"
    assert w.error is None, repr(w.error)
    assert len(w.acked) >= 50 + len(CYCLES) * 60, (len(w.acked), w.refused, w.timed_out)

    # every acknowledged row, at QUORUM, through every node
    w.acked.update(everywhere)
    for n in c:
        s = session_on(clusters, n)
        sel = s.prepare("SELECT v FROM ks.t WHERE k = ?")
        sel.consistency_level = CL.QUORUM
        keys = sorted(w.acked)
        results = execute_concurrent_with_args(s, sel, [(k,) for k in keys], concurrency=16,
                                               raise_on_first_error=False)
        wrong = []
        for k, (ok, res) in zip(keys, results):
            got = (res.one().v if res.one() else None) if ok else res
            if got != w.acked[k]:
                wrong.append((k, got))
        assert not wrong, "%s: %d of %d acknowledged rows read wrong at QUORUM, e.g. %r" % (
            n.host, len(wrong), len(keys), wrong[:10])
