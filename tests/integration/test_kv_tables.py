"""Tables without clustering columns through the Python driver, against a
model kept in Python.

Their partitions are compact KV records in the memtable (storage/memtable.c):
a value of the same size is rewritten in place, a record whose shape changes
(another size, a new column) is rebuilt, and a partition deletion or a
growing collection turns it into a general partition. Every partition is
found and scanned through one ordered index. Here a small memtable flushes
many times, so reads and paged scans merge the memtable with SSTables, and
everything must still be there after kill -9."""

import os
import shutil
import random
import time

from cassandra.concurrent import execute_concurrent_with_args
from cassandra.policies import FallthroughRetryPolicy
from cassandra.protocol import OverloadedErrorMessage
from cassandra.query import SimpleStatement

from sibyl_harness import flush


def visible(row):
    return row["marker"] or row["v"] is not None or row["n"] is not None or row["tags"]


def expected(model):
    return {k: (r["v"], r["n"], frozenset(r["tags"])) for k, r in model.items() if visible(r)}


def read_all(s):
    st = SimpleStatement("SELECT token(k), k, v, n, tags FROM kv.t", fetch_size=97)
    got, tokens = {}, []
    for r in s.execute(st):
        assert r.k not in got, "a partition came twice"
        got[r.k] = (r.v, r.n, frozenset(r.tags or ()))
        tokens.append(r[0])
    assert tokens == sorted(tokens), "a scan out of token order"
    return got


def test_kv_table_against_model(make_node, clusters):
    node = make_node(memtable_heap_space="4MiB")
    c, s = clusters.connect(node)
    s.execute("CREATE KEYSPACE kv WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE kv.t (k int PRIMARY KEY, v text, n bigint, tags set<text>)")
    ins = s.prepare("INSERT INTO kv.t (k, v, n) VALUES (?, ?, ?)")
    set_v = s.prepare("UPDATE kv.t SET v = ? WHERE k = ?")
    add_tag = s.prepare("UPDATE kv.t SET tags = tags + ? WHERE k = ?")
    del_part = s.prepare("DELETE FROM kv.t WHERE k = ?")
    del_v = s.prepare("DELETE v FROM kv.t WHERE k = ?")
    get = s.prepare("SELECT v, n, tags FROM kv.t WHERE k = ?")
    rng = random.Random(20261207)
    model = {}
    nkeys, checked = 2500, 0
    for i in range(14000):
        k = rng.randrange(nkeys)
        row = model.setdefault(k, {"marker": False, "v": None, "n": None, "tags": set()})
        op = rng.randrange(100)
        # values of 1 to 1200 characters: the same size now and then (in place), mostly not (rebuilt)
        text = "x%d-" % i + "v" * rng.choice((8, 8, 40, 300, 1200))
        if op < 35:
            n = rng.randrange(1 << 40)
            s.execute(ins, (k, text, n))
            row.update(marker=True, v=text, n=n)
        elif op < 55:
            s.execute(set_v, (text, k))
            row["v"] = text
        elif op < 67:
            tag = "t%d" % rng.randrange(40)               # a collection that grows one element at a time
            s.execute(add_tag, ({tag}, k))
            row["tags"].add(tag)
        elif op < 71:
            s.execute(del_part, (k,))
            model[k] = {"marker": False, "v": None, "n": None, "tags": set()}
        elif op < 76:
            s.execute(del_v, (k,))
            row["v"] = None
        else:
            r = s.execute(get, (k,)).one()
            if visible(row):
                assert r is not None, k
                assert (r.v, r.n, set(r.tags or ())) == (row["v"], row["n"], row["tags"]), k
            else:
                assert r is None, k
            checked += 1
        if i == 7000:
            flush(node)                                   # and once by hand, mid-way
    info = flush(node)
    assert info["sstables"] >= 3, info                    # the 4 MiB memtable flushed again and again
    assert checked > 2000
    want = expected(model)
    assert read_all(s) == want
    # expiring rows in the same table: gone once their TTL passes, memtable and SSTables alike
    ttl = s.prepare("INSERT INTO kv.t (k, v, n) VALUES (?, ?, ?) USING TTL 2")
    for k in range(100000, 100300):
        s.execute(ttl, (k, "soon gone", k))
    flush(node)
    for k in range(100300, 100400):
        s.execute(ttl, (k, "soon gone", k))
    assert len(read_all(s)) == len(want) + 400
    time.sleep(2.5)
    assert read_all(s) == want
    c.shutdown()
    node.restart(kill=True)
    c, s = clusters.connect(node)
    assert read_all(s) == want
    for k in rng.sample(range(nkeys), 200):
        r = s.execute("SELECT v, n, tags FROM kv.t WHERE k = %d" % k).one()
        if k in want:
            assert (r.v, r.n, frozenset(r.tags or ())) == want[k], k
        else:
            assert r is None, k
    c.shutdown()


def test_overloaded_while_flushes_fail(make_node, clusters):
    """Flushes that fail (the table's directory is a plain file here, as a full
    data disk would make them fail) leave their memtables waiting; past 32 MiB
    of them writes are deferred, longer as they pile up (docs/hardening.md),
    and past 128 MiB a write is refused with Overloaded, nothing of it applied,
    instead of memtables piling up until the node runs out of memory. Once flushes can
    go again, a client that retries gets in, and everything acknowledged is
    there, also after kill -9."""
    node = make_node(memtable_heap_space="4MiB")
    c, s = clusters.connect(node)
    s.execute("CREATE KEYSPACE ov WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE ov.t (k int PRIMARY KEY, v text)")
    tid = s.execute("SELECT id FROM system_schema.tables WHERE keyspace_name = 'ov' AND table_name = 't'").one().id
    tdir = os.path.join(node.datadir, "ov", "t-" + tid.hex)
    if os.path.isdir(tdir):
        shutil.rmtree(tdir)                               # empty but for backups/
    open(tdir, "w").close()
    ins = s.prepare("INSERT INTO ov.t (k, v) VALUES (?, ?)")
    ins.retry_policy = FallthroughRetryPolicy()           # the Overloaded error itself, not a retry elsewhere
    val = "v" * 1000
    acked, refused = [], []
    for start in range(0, 200000, 5000):                  # bounded: 200 MB at most
        keys = list(range(start, start + 5000))
        res = execute_concurrent_with_args(s, ins, [(k, val) for k in keys], concurrency=64,
                                           raise_on_first_error=False)
        for k, (ok, r) in zip(keys, res):
            if ok:
                acked.append(k)
            else:
                assert isinstance(r, OverloadedErrorMessage), r
                assert "waiting for flush" in str(r)
                refused.append(k)
        if refused:
            break
    assert refused, "no write was refused"
    assert len(acked) > 20000                             # tens of MB went in first
    os.unlink(tdir)                                       # the disk is back
    after = s.prepare("INSERT INTO ov.t (k, v) VALUES (-1, 'after')")
    after.retry_policy = FallthroughRetryPolicy()
    for _ in range(600):                                  # bounded: 60 s
        try:
            s.execute(after)
            break
        except OverloadedErrorMessage:
            time.sleep(0.1)
    else:
        raise AssertionError("writes stayed refused after the flushes could go")
    get = s.prepare("SELECT v FROM ov.t WHERE k = ?")

    def check(session):
        assert session.execute(get, (-1,)).one().v == "after"
        for k in acked[::499] + acked[-3:]:
            assert session.execute(get, (k,)).one().v == val, k
        for k in refused[:50]:
            assert session.execute(get, (k,)).one() is None, k

    check(s)
    c.shutdown()
    node.restart(kill=True)
    c, s = clusters.connect(node)
    get = s.prepare("SELECT v FROM ov.t WHERE k = ?")
    check(s)
    c.shutdown()
