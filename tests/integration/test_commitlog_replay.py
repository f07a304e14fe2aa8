"""Commitlog replay across crashes (issue 13 part 3).

- Replay is strict: damage in a segment that is not the last one holding
  writes, or a missing segment, stops start-up with a message naming the
  segment, the offset and what is lost; commitlog_ignore_replay_errors skips
  it. A torn tail (the last segment) still replays what precedes it.
- The commitlog does not pile up across crashes: after replay the node
  flushes what it replayed and releases the segments (and the spares a
  crash leaves), so a restart replays only what was written since the last.
"""

import glob
import json
import os
import re
import time
import urllib.request

import pytest

from cassandra.concurrent import execute_concurrent_with_args

from sibyl_harness import NodeError


def info(node):
    with urllib.request.urlopen("http://%s:%d/info" % (node.host, node.admin_port), timeout=30) as r:
        return json.loads(r.read().decode())


def segment_files(node):
    def seg_id(p):
        return int(re.search(r"CommitLog-\d+-(\d+)\.log$", p).group(1))
    return sorted(glob.glob(os.path.join(node.commitlog_dir, "CommitLog-*.log")), key=seg_id)


def write_rows(clusters, node, start, n, size=1000):
    c, s = clusters.connect(node)
    s.execute("CREATE KEYSPACE IF NOT EXISTS cr WITH replication = "
              "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE IF NOT EXISTS cr.t (k int PRIMARY KEY, v text)")
    ins = s.prepare("INSERT INTO cr.t (k, v) VALUES (?, ?)")
    rows = [(k, "%d-" % k + "x" * size) for k in range(start, start + n)]
    for ok, res in execute_concurrent_with_args(s, ins, rows, concurrency=32):
        assert ok, res
    c.shutdown()


def count_rows(clusters, node):
    c, s = clusters.connect(node)
    n = s.execute("SELECT count(*) FROM cr.t").one()[0]
    c.shutdown()
    return n


def replayed_mutations(node):
    m = re.findall(r"commitlog: replayed (\d+) segments, (\d+) mutations", node.log_text())
    assert m, node.log_tail()
    return int(m[-1][1])


def wait_released(node, most, timeout=15):
    """Waits (bounded) until the flush after replay is done and at most
    `most` segment files remain; returns the count."""
    deadline = time.monotonic() + timeout
    while True:
        n = len(segment_files(node))
        if info(node)["flushes_pending"] == 0 and n <= most:
            return n
        if time.monotonic() >= deadline:
            return n
        time.sleep(0.1)


def test_commitlog_does_not_pile_up_across_crashes(make_node, clusters):
    node = make_node(commitlog_segment_size="1MiB", commitlog_sync="batch")
    counts, replays = [], []
    total = 0
    for cycle in range(6):
        write_rows(clusters, node, total, 300)
        total += 300
        node.kill9()
        node.start()
        replays.append(replayed_mutations(node))
        # The live segment and its two spares, plus at most one more while
        # the last release is unlinked.
        counts.append(wait_released(node, 4))
    print("segments after each restart: %s; mutations replayed: %s" % (counts, replays))
    assert max(counts) <= 4, counts
    # Each start replays what was written since the previous one, not
    # everything ever written (300 rows, plus a few schema mutations).
    assert max(replays[1:]) < 600, replays
    assert count_rows(clusters, node) == total


def crash_with_segments(make_node, clusters, **config):
    """A node killed with three or more segments holding writes."""
    node = make_node(commitlog_segment_size="1MiB", commitlog_sync="batch", **config)
    write_rows(clusters, node, 0, 3000)  # about 3 MB: several 1 MiB segments
    node.kill9()
    segs = [p for p in segment_files(node) if os.path.getsize(p) > 44]
    assert len(segs) >= 3, segs
    return node, segs


def test_damage_before_the_tail_stops_start(make_node, clusters):
    node, segs = crash_with_segments(make_node, clusters)
    victim = segs[0]
    with open(victim, "r+b") as f:
        f.seek(os.path.getsize(victim) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x40]))
    with pytest.raises(NodeError) as e:
        node.start(timeout=20)
    msg = str(e.value)
    assert os.path.basename(victim) + " is damaged at offset" in msg, msg
    assert "bytes after it cannot be replayed" in msg and "commitlog_ignore_replay_errors" in msg
    # Nothing was deleted while refusing.
    assert all(os.path.exists(p) for p in segs)
    # The operator's explicit choice: skip the damage, keep the rest.
    node.set_config(commitlog_ignore_replay_errors=True)
    node.start()
    assert "commitlog_ignore_replay_errors is set" in node.log_text()
    n = count_rows(clusters, node)
    assert 0 < n < 3000


def test_missing_segment_stops_start(make_node, clusters):
    node, segs = crash_with_segments(make_node, clusters)
    gone = segs[1]
    m = re.search(r"CommitLog-\d+-(\d+)\.log$", gone)
    os.rename(gone, gone + ".aside")
    with pytest.raises(NodeError) as e:
        node.start(timeout=20)
    assert "segment %s is missing" % m.group(1) in str(e.value), str(e.value)
    os.rename(gone + ".aside", gone)
    node.start()
    assert count_rows(clusters, node) == 3000
