#!/usr/bin/env python3
"""plot_stress.py: turn sibyl-stress logs into a throughput/latency chart.

    tools/plot_stress.py run.json [other.json|other.csv ...] [-o chart.png] [--title TEXT]

Reads the JSON document (`sibyl-stress ... --json` or `-log file=x.json`) or
the CSV log (`--csv` or `-log file=x.csv`) and draws, per input, the op/s of
every one-second interval (top) and its p50 / p99 / p99.9 latency in ms on a
log scale (bottom). Several inputs are overlaid, labelled by file name, so a
run can be compared with another (e.g. 1 vs 16 in flight per connection).

Needs matplotlib (Debian: apt-get install python3-matplotlib). Without it the
script says so and exits with status 2; nothing else in the repository
depends on it.
"""

import argparse
import csv
import json
import os
import sys


def load(path):
    """Intervals as a list of dicts with time_s, op_rate, p50_ms, p99_ms, p999_ms."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("{"):
        doc = json.loads(text)
        rows = doc.get("intervals", [])
        summary = doc.get("summary", {})
    else:
        rows, summary = [], {}
        for r in csv.DictReader(text.splitlines()):
            if r.get("time_s") == "total":
                summary = {"op_rate": float(r["op_rate"]), "latency_p99_ms": float(r["p99_ms"])}
                continue
            rows.append({k: float(v) for k, v in r.items() if v not in (None, "")})
    for key in ("time_s", "op_rate", "p50_ms", "p99_ms", "p999_ms"):
        for r in rows:
            if key not in r:
                raise ValueError("%s: interval without %r" % (path, key))
    # An interval with no completed operation has no latency to draw (and a
    # zero would break the log scale).
    return [r for r in rows if r.get("ops", r["op_rate"]) > 0], summary


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logs", nargs="+", help="sibyl-stress JSON or CSV logs")
    ap.add_argument("-o", "--output", default=None, help="PNG to write (default: first log with .png)")
    ap.add_argument("--title", default="sibyl-stress", help="chart title")
    args = ap.parse_args(argv)

    try:
        import matplotlib
        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_stress.py: matplotlib is not installed; install it with "
              "'apt-get install python3-matplotlib' (or pip install matplotlib)", file=sys.stderr)
        return 2

    out = args.output or os.path.splitext(args.logs[0])[0] + ".png"
    fig, (ax_rate, ax_lat) = plt.subplots(2, 1, sharex=True, figsize=(10, 7))
    for path in args.logs:
        try:
            rows, summary = load(path)
        except (OSError, ValueError) as e:
            print("plot_stress.py: %s" % e, file=sys.stderr)
            return 1
        label = os.path.basename(path)
        if summary.get("op_rate"):
            label += " (%s op/s)" % format(int(summary["op_rate"]), ",")
        t = [r["time_s"] for r in rows]
        ax_rate.plot(t, [r["op_rate"] for r in rows], marker=".", label=label)
        line, = ax_lat.plot(t, [r["p99_ms"] for r in rows], marker=".", label=os.path.basename(path) + " p99")
        ax_lat.plot(t, [r["p50_ms"] for r in rows], linestyle="--", color=line.get_color(),
                    label=os.path.basename(path) + " p50")
        ax_lat.plot(t, [r["p999_ms"] for r in rows], linestyle=":", color=line.get_color(),
                    label=os.path.basename(path) + " p99.9")
    ax_rate.set_ylabel("op/s")
    ax_rate.set_title(args.title)
    ax_rate.grid(True, alpha=0.3)
    ax_rate.legend(fontsize="small")
    ax_lat.set_ylabel("latency (ms)")
    ax_lat.set_xlabel("time (s)")
    ax_lat.set_yscale("log")
    ax_lat.grid(True, which="both", alpha=0.3)
    ax_lat.legend(fontsize="small", ncol=3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
