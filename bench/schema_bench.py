#!/usr/bin/python3
"""Schema agreement on one machine: how long a CREATE TABLE takes through
the Python driver on an N-node local cluster, the driver's own schema
agreement wait included (it returns once system.local and system.peers of
its control node report one version), with the default gossip interval (1 s).

    SIBYL_BIN=build/node/sibyld /usr/bin/python3 bench/schema_bench.py 3 --runs 10

Every node is stopped by pid at the end.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))

from sibyl_harness import SibylCluster, find_binary  # noqa: E402
from cassandra.cluster import Cluster  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nodes", type=int)
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sibyl-schema-bench-") as work:
        c = SibylCluster(find_binary(), work, size=a.nodes)
        cl = None
        try:
            c.start()
            c.wait_converged()
            cl = Cluster([c[0].host], port=c[0].port, max_schema_agreement_wait=30)
            s = cl.connect()
            s.execute("CREATE KEYSPACE bench WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
            times = []
            for i in range(a.runs):
                t = time.monotonic()
                rs = s.execute("CREATE TABLE bench.t%d (k int PRIMARY KEY, v text)" % i)
                times.append(time.monotonic() - t)
                if not rs.response_future.is_schema_agreed:
                    print("run %d: no agreement within the driver's wait" % i)
            times.sort()
            print("%d nodes, CREATE TABLE with the driver's agreement wait, %d runs: "
                  "min %.2f s, median %.2f s, max %.2f s"
                  % (a.nodes, a.runs, times[0], times[len(times) // 2], times[-1]))
        finally:
            if cl:
                cl.shutdown()
            problems = c.shutdown()
            if problems:
                print("problems: %r" % problems)


if __name__ == "__main__":
    main()
