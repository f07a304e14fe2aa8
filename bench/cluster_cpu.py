#!/usr/bin/python3
"""What a replicated request costs: one node at ONE against three nodes at
RF 3 and QUORUM, on the same machine, in the same run.

    SIBYL_BIN=build-rel/node/sibyld /usr/bin/python3 bench/cluster_cpu.py \
        [--ops 300000] [--runs 3] [--stress build-rel/tools/sibyl-stress]

Each run starts a single node on 127.0.0.1 and a 3-node cluster on
127.0.0.2-4 (never both at once), then drives sibyl-stress `write` and
`read` over the same keys: the single node at cl=ONE, the cluster at
cl=QUORUM with replication factor 3 and every node as a contact point
(token-aware). Server CPU is the user + system time of the sibyld
processes (/proc/<pid>/stat) across each phase, summed over the nodes.

Prints, per run and as the median over runs: server CPU per operation
(µs), the cluster's as a multiple of the single node's (the issue's target
is at most 4x for writes and for reads: every write costs 3 replica
applies and the messages; every QUORUM read two replica reads, one of them
a digest), throughput and the client-side p50 / p99. Every process is
stopped by pid at the end.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

from sibyl_harness import SibylCluster, SibylNode, find_binary  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def phase(stress, nodes, op, ops, cl, rf):
    contact = ",".join("%s:%d" % (n.host, n.port) for n in nodes)
    before = [cpu_seconds(n.proc.pid) for n in nodes]
    cmd = [stress, op, "n=%d" % ops, "cl=%s" % cl, "-node", contact, "-pop", "seq=1..%d" % ops,
           "-schema", "replication(factor=%d)" % rf, "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    after = [cpu_seconds(n.proc.pid) for n in nodes]
    if out.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (" ".join(cmd), out.returncode, out.stderr[-2000:]))
    s = json.loads(out.stdout)["summary"]
    if s["total_errors"]:
        raise SystemExit("%s: %d errors" % (" ".join(cmd), s["total_errors"]))
    cpu = sum(a - b for a, b in zip(after, before))
    return {"us_per_op": cpu * 1e6 / ops, "rate": s["op_rate"], "p50": s["latency_median_ms"],
            "p99": s["latency_p99_ms"]}


def one_run(binary, stress, ops, work):
    res = {}
    single = SibylNode(binary, os.path.join(work, "single"), host="127.0.0.1")
    try:
        single.start(timeout=60)
        res["single"] = {op: phase(stress, [single], op, ops, "ONE", 1) for op in ("write", "read")}
    finally:
        single.stop()
    cluster = SibylCluster(binary, os.path.join(work, "cluster"), size=3, first=2, num_tokens=16)
    try:
        cluster.start(timeout=60)
        cluster.wait_converged(timeout=60)
        res["cluster"] = {op: phase(stress, cluster.nodes, op, ops, "QUORUM", 3) for op in ("write", "read")}
    finally:
        problems = cluster.shutdown()
        if problems:
            print("cluster shutdown: %s" % problems, file=sys.stderr)
    return res


def show(label, r):
    for op in ("write", "read"):
        s, c = r["single"][op], r["cluster"][op]
        print("%-8s %-5s  1 node ONE: %6.2f us/op %9.0f/s p50 %5.2f p99 %6.2f ms | "
              "3 nodes QUORUM: %6.2f us/op %9.0f/s p50 %5.2f p99 %6.2f ms | CPU x%.2f, throughput x%.2f"
              % (label, op, s["us_per_op"], s["rate"], s["p50"], s["p99"],
                 c["us_per_op"], c["rate"], c["p50"], c["p99"],
                 c["us_per_op"] / s["us_per_op"], c["rate"] / s["rate"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=300000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--stress", default=None)
    a = ap.parse_args()
    binary = os.path.abspath(find_binary() or "")
    stress = a.stress or os.path.join(os.path.dirname(os.path.dirname(binary)), "tools", "sibyl-stress")
    runs = []
    for i in range(a.runs):
        with tempfile.TemporaryDirectory(prefix="sibyl-cpu-") as work:
            r = one_run(binary, stress, a.ops, work)
        runs.append(r)
        show("run %d" % (i + 1), r)
    med = {side: {op: {k: statistics.median(r[side][op][k] for r in runs) for k in runs[0][side][op]}
                  for op in ("write", "read")} for side in ("single", "cluster")}
    show("median", med)


if __name__ == "__main__":
    main()
