#!/usr/bin/python3
"""Sibyl against Redis, as medians of several runs: this machine is noisy,
so one run of bench/stress_vs_redis.sh proves little.

    BUILD=$PWD/build-rel /usr/bin/python3 bench/redis_medians.py [--n 300000] [--runs 5]

A first run of stress_vs_redis.sh finds each server's 16-in-flight peak;
the common fixed rate is half of the lowest of those peaks (Sibyl's and
both Redis configurations', writes and reads alike). Then `runs` more runs
follow, each with COMMON_RATE set, so every target also runs at that one
rate. Each run of the script measures Redis and then Sibyl, so the runs
alternate between the servers. The first run's figures count too.

Prints, for each figure, the median over the runs and the spread (min ..
max): Sibyl/Redis throughput at 1 and at 16 requests in flight per
connection (writes against SET, reads against GET, Redis with
`appendfsync everysec` and without persistence), server CPU per
operation, and the p99 of every target at the common rate.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run(n, common, env):
    with tempfile.NamedTemporaryFile(prefix="sibyl-redis-", suffix=".tsv", delete=False) as f:
        path = f.name
    e = dict(env, RESULTS=path)
    if common:
        e["COMMON_RATE"] = str(common)
    try:
        p = subprocess.run(["bash", os.path.join(HERE, "stress_vs_redis.sh"), str(n)], env=e,
                           capture_output=True, text=True, timeout=3600)
        if p.returncode != 0:
            raise SystemExit("stress_vs_redis.sh failed (%d):\n%s" % (p.returncode, p.stderr[-3000:]))
        out = {}
        with open(path) as f:
            for line in f:
                k, v = line.rstrip("\n").split("\t")
                out[k] = float(v)
        return out
    finally:
        os.unlink(path)


def spread(vals, fmt):
    return (fmt + " (" + fmt + " .. " + fmt + ")") % (statistics.median(vals), min(vals), max(vals))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    env = dict(os.environ)
    first = run(a.n, None, env)
    peaks = [v for k, v in first.items() if k.startswith("rate_") and k.endswith("_steady")]
    common = int(min(peaks) / 2)
    print("peaks (16 in flight, all keys present): %s; common rate %d op/s"
          % (", ".join("%s %.0f" % (k[5:-7], v) for k, v in sorted(first.items())
                       if k.startswith("rate_") and k.endswith("_steady")), common), flush=True)
    runs = []
    for i in range(a.runs):
        r = run(a.n, common, env)
        runs.append(r)
        print("run %d: write/SET(aof) P1 %.2f P16 %.2f, read/GET P1 %.2f P16 %.2f" % (
            i + 1, r["rate_sibyl_write_P1"] / r["rate_redis_aof_set_P1"],
            r["rate_sibyl_write_P16"] / r["rate_redis_aof_set_P16"],
            r["rate_sibyl_read_P1"] / r["rate_redis_nopersist_get_P1"],
            r["rate_sibyl_read_P16"] / r["rate_redis_nopersist_get_P16"]), flush=True)

    def ratio(a_key, b_key):
        return spread([r[a_key] / r[b_key] for r in runs], "%.2f")

    print("\nmedian (min .. max) over %d runs, N=%d" % (len(runs), a.n))
    for p in ("P1", "P16"):
        print("  %s: sibyl write / redis SET (aof everysec)      %s" % (p, ratio("rate_sibyl_write_" + p,
                                                                                 "rate_redis_aof_set_" + p)))
        print("  %s: sibyl write / redis SET (no persistence)    %s" % (p, ratio("rate_sibyl_write_" + p,
                                                                                 "rate_redis_nopersist_set_" + p)))
        print("  %s: sibyl read / redis GET (no persistence)     %s" % (p, ratio("rate_sibyl_read_" + p,
                                                                                 "rate_redis_nopersist_get_" + p)))
        print("  %s: sibyl read / redis GET (aof everysec)       %s" % (p, ratio("rate_sibyl_read_" + p,
                                                                                 "rate_redis_aof_get_" + p)))
    for k in ("sibyl_write", "sibyl_read", "redis_aof_set", "redis_nopersist_get"):
        for p in ("P1", "P16"):
            print("  server CPU %-20s %s: %s us/op" % (k, p, spread([r["cpu_%s_%s" % (k, p)] for r in runs], "%.2f")))
    print("\nat the common rate, %d op/s: p99 ms, median (min .. max)" % common)
    for t in ("sibyl", "redis_nopersist", "redis_aof"):
        for c in ("write", "read"):
            print("  %-16s %-5s p99 %s, achieved %s op/s" % (
                t, c, spread([r["fixed_%s_common_%s_p99" % (t, c)] for r in runs], "%.3f"),
                spread([r["fixed_%s_common_%s_rate" % (t, c)] for r in runs], "%.0f")))


if __name__ == "__main__":
    sys.exit(main())
