#!/usr/bin/python3
"""Gossip figures on one machine: how long N local nodes take to converge
(every node sees every other one UP), and how long the others take to mark
a kill -9'd node DOWN.

    SIBYL_BIN=build/node/sibyld /usr/bin/python3 bench/gossip_bench.py converge 3
    SIBYL_BIN=build/node/sibyld /usr/bin/python3 bench/gossip_bench.py converge 10
    SIBYL_BIN=build/node/sibyld /usr/bin/python3 bench/gossip_bench.py detect 3

Nodes run on 127.0.0.1..N with the default gossip interval (1 s) and
phi_convict_threshold (8) unless --interval-ms / --phi are given. Times come
from polling each node's admin /status every 50 ms, so they are accurate to
about that. Every node is stopped by pid at the end.
"""

import argparse
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

from sibyl_harness import SibylCluster, find_binary  # noqa: E402

POLL = 0.05


def views(c, nodes):
    out = {}
    for n in nodes:
        try:
            out[n.host] = c.status(n)
        except OSError:
            out[n.host] = {}
    return out


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return time.monotonic()
        time.sleep(POLL)
    raise SystemExit("timed out after %.0f s waiting for %s" % (timeout, what))


def converged(c, nodes):
    want = {n.host: "UN" for n in nodes}
    return all(v == want for v in views(c, nodes).values())


def start_all(c):
    """Starts the nodes one after the other, each as soon as the previous
    one accepts clients; returns the monotonic time of the first spawn and
    of the last node's readiness."""
    t0 = time.monotonic()
    for n in c:
        n.start(timeout=60)
    return t0, time.monotonic()


def cmd_converge(c, args):
    t0, ready = start_all(c)
    done = wait(lambda: converged(c, c.nodes), 300, "convergence")
    print("nodes=%d interval_ms=%d: all started in %.2f s; converged %.2f s after the last node was ready "
          "(%.2f s after the first spawn)" % (len(c.nodes), args.interval_ms, ready - t0, done - ready, done - t0))


def cmd_detect(c, args):
    start_all(c)
    wait(lambda: converged(c, c.nodes), 300, "convergence")
    # let the detectors see a full window of steady heartbeats first
    time.sleep(args.settle)
    victim = c.nodes[-1]
    others = c.nodes[:-1]
    t_kill = time.monotonic()
    victim.kill9()
    seen = {}

    def all_down():
        for n in others:
            if n.host not in seen and c.status(n).get(victim.host, "").startswith("D"):
                seen[n.host] = time.monotonic() - t_kill
        return len(seen) == len(others)

    wait(all_down, 300, "DOWN")
    print("nodes=%d interval_ms=%d phi_convict_threshold=%g settle=%.0fs: kill -9 %s marked DOWN after %s" % (
        len(c.nodes), args.interval_ms, args.phi, args.settle, victim.host,
        ", ".join("%.2f s by %s" % (t, h) for h, t in sorted(seen.items()))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("converge", "detect"))
    ap.add_argument("nodes", type=int)
    ap.add_argument("--interval-ms", type=int, default=1000)
    ap.add_argument("--phi", type=float, default=8.0)
    ap.add_argument("--settle", type=float, default=30.0, help="detect: seconds of steady gossip before the kill")
    args = ap.parse_args()
    binary = find_binary()
    if not binary:
        raise SystemExit("set SIBYL_BIN to a built sibyld")
    work = tempfile.mkdtemp(prefix="sibyl-gossip-bench-")
    c = SibylCluster(binary, work, size=args.nodes, num_tokens=16,
                     config={"gossip_interval_ms": args.interval_ms, "phi_convict_threshold": args.phi})
    try:
        (cmd_converge if args.what == "converge" else cmd_detect)(c, args)
    finally:
        for n in c:
            n.stop()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    main()
