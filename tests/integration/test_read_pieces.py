"""Reads that span many read-pool pieces (storage returns at most 1024 rows
or partitions per piece): wide partitions forward and reversed, PER
PARTITION LIMIT, static columns, DISTINCT, IN with ORDER BY, a token range
and paging, over flushed rows with newer and deleted ones in the memtable.
Every answer is checked against what the test wrote."""

from cassandra.query import SimpleStatement

from sibyl_harness import flush

WIDE = 2500      # rows per wide partition: three pieces
PARTS = 2200     # narrow partitions: three scan pieces


def setup_tables(s):
    s.execute("CREATE KEYSPACE rp WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE rp.w (k int, c int, s text STATIC, v text, PRIMARY KEY (k, c))")
    s.execute("CREATE TABLE rp.n (k int PRIMARY KEY, v int)")
    ins = s.prepare("INSERT INTO rp.w (k, c, v) VALUES (?, ?, ?)")
    for k in range(3):
        s.execute("UPDATE rp.w SET s = 'static%d' WHERE k = %d" % (k, k))
        for c in range(WIDE):
            s.execute_async(ins, (k, c, "old%d" % c))
    ins_n = s.prepare("INSERT INTO rp.n (k, v) VALUES (?, ?)")
    futures = [s.execute_async(ins_n, (k, k)) for k in range(PARTS)]
    for f in futures:
        f.result()


def test_wide_and_many_partitions_in_pieces(node, clusters):
    _, s = clusters.connect(node)
    setup_tables(s)
    flush(node)
    # the memtable on top: newer values, deletions, a new partition
    for c in range(0, WIDE, 7):
        s.execute("UPDATE rp.w SET v = 'new%d' WHERE k = 1 AND c = %d" % (c, c))
    s.execute("DELETE FROM rp.w WHERE k = 1 AND c >= 100 AND c < 200")
    s.execute("DELETE FROM rp.n WHERE k = 5")
    s.execute("INSERT INTO rp.n (k, v) VALUES (%d, 1)" % PARTS)
    want1 = [(c, "new%d" % c if c % 7 == 0 else "old%d" % c) for c in range(WIDE) if not 100 <= c < 200]

    rows = [(r.c, r.v) for r in s.execute("SELECT c, v FROM rp.w WHERE k = 1")]
    assert rows == want1
    rows = [(r.c, r.v) for r in s.execute("SELECT c, v FROM rp.w WHERE k = 1 ORDER BY c DESC")]
    assert rows == want1[::-1]
    # paged, with pages that end inside pieces and pieces inside pages
    st = SimpleStatement("SELECT c, v, s FROM rp.w WHERE k = 1 ORDER BY c DESC", fetch_size=700)
    rows = list(s.execute(st))
    assert [(r.c, r.v) for r in rows] == want1[::-1]
    assert {r.s for r in rows} == {"static1"}
    # a clustering slice, a limit, a count
    rows = [r.c for r in s.execute("SELECT c FROM rp.w WHERE k = 1 AND c > 1000 AND c <= 2400 LIMIT 1300")]
    assert rows == list(range(1001, 2301))
    assert s.execute("SELECT COUNT(*) FROM rp.w WHERE k = 1").one()[0] == len(want1)

    # PER PARTITION LIMIT and IN + ORDER BY across pieces
    rows = [(r.k, r.c) for r in s.execute("SELECT k, c FROM rp.w PER PARTITION LIMIT 1500")]
    want = []
    for k in (1, 0, 2):  # token order of int keys 0..2: 1, 0, 2 (murmur3)
        cs = [c for c, _ in want1] if k == 1 else list(range(WIDE))
        want += [(k, c) for c in cs[:1500]]
    assert sorted(rows) == sorted(want)
    st = SimpleStatement("SELECT k, c FROM rp.w WHERE k IN (0, 2) ORDER BY c DESC", fetch_size=None)
    rows = [(r.k, r.c) for r in s.execute(st)]
    assert len(rows) == 2 * WIDE
    assert [c for _, c in rows] == sorted([c for _, c in rows], reverse=True)

    # many partitions: a scan, DISTINCT, a token range, COUNT(*)
    keys = sorted(r.k for r in s.execute("SELECT k FROM rp.n"))
    assert keys == [k for k in range(PARTS + 1) if k != 5]
    st = SimpleStatement("SELECT k FROM rp.n", fetch_size=300)
    assert sorted(r.k for r in s.execute(st)) == keys
    assert s.execute("SELECT COUNT(*) FROM rp.n").one()[0] == PARTS
    assert sorted(r.k for r in s.execute("SELECT DISTINCT k FROM rp.w")) == [0, 1, 2]
    st = SimpleStatement("SELECT DISTINCT k, s FROM rp.w", fetch_size=1)
    assert sorted((r.k, r.s) for r in s.execute(st)) == [(k, "static%d" % k) for k in range(3)]
    toks = [(r[0], r.k) for r in s.execute("SELECT token(k), k FROM rp.n")]
    lo, hi = sorted(toks)[300][0], sorted(toks)[1800][0]
    got = sorted(r.k for r in s.execute("SELECT k FROM rp.n WHERE token(k) > %d AND token(k) <= %d" % (lo, hi)))
    assert got == sorted(k for t, k in toks if lo < t <= hi)
    assert len(got) == 1500
