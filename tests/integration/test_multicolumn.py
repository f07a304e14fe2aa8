"""Multi-column relations on clustering columns: (c1, c2) = / < / <= / > / >=
(tuple), IN ((..), (..)), IN ?, mixed with single-column relations, on
clustering columns of mixed ASC/DESC order, and the refusals with Cassandra's
messages. Expected rows come from a small model: tuples compare in each
column's natural order, rows come back in clustering order."""

import itertools

import pytest

from conftest import refused

VALS = (0, 1, 2)


def rows(session, q, params=None):
    return [tuple(r) for r in session.execute(q, params)]


def prepared_rows(session, q, params):
    return [tuple(r) for r in session.execute(session.prepare(q), params)]




@pytest.fixture
def t3(session, ks):
    """k, then b, c, d all ASC; every (b, c, d) in 0..2 present."""
    session.execute("CREATE TABLE %s.t3 (k int, b int, c int, d int, v int, PRIMARY KEY (k, b, c, d))" % ks)
    ins = session.prepare("INSERT INTO %s.t3 (k, b, c, d, v) VALUES (0, ?, ?, ?, ?)" % ks)
    for i, (b, c, d) in enumerate(itertools.product(VALS, VALS, VALS)):
        session.execute(ins, (b, c, d, i))
    return ks + ".t3"


def all_keys():
    return list(itertools.product(VALS, VALS, VALS))


def sel(session, t, where, params=None):
    return [r[:3] for r in rows(session, "SELECT b, c, d FROM %s WHERE k = 0 AND %s" % (t, where), params)]


def test_equality_and_in(session, t3):
    assert sel(session, t3, "(b) = (1)") == [k for k in all_keys() if k[0] == 1]
    assert sel(session, t3, "(b, c) = (1, 2)") == [(1, 2, 0), (1, 2, 1), (1, 2, 2)]
    assert sel(session, t3, "(b, c, d) = (2, 0, 1)") == [(2, 0, 1)]
    assert sel(session, t3, "(b, c, d) = (5, 0, 1)") == []
    # IN: clustering order whatever the list order; duplicates once
    assert sel(session, t3, "(b, c) IN ((2, 1), (0, 0), (2, 1))") == \
        [(0, 0, 0), (0, 0, 1), (0, 0, 2), (2, 1, 0), (2, 1, 1), (2, 1, 2)]
    assert sel(session, t3, "(b, c, d) IN ((1, 1, 1), (0, 2, 0))") == [(0, 2, 0), (1, 1, 1)]
    assert sel(session, t3, "(b) IN ((1), (0))") == [k for k in all_keys() if k[0] in (0, 1)]
    # mixed with single-column relations
    assert sel(session, t3, "b = 1 AND (c, d) = (2, 0)") == [(1, 2, 0)]
    assert sel(session, t3, "b IN (0, 2) AND (c, d) IN ((1, 1), (0, 2))") == \
        [(0, 0, 2), (0, 1, 1), (2, 0, 2), (2, 1, 1)]
    assert sel(session, t3, "(b, c) = (1, 1) AND d IN (2, 0)") == [(1, 1, 0), (1, 1, 2)]
    assert sel(session, t3, "(b, c) IN ((0, 1), (2, 2)) AND d = 1") == [(0, 1, 1), (2, 2, 1)]
    assert sel(session, t3, "(b, c) = (1, 1) AND d >= 1") == [(1, 1, 1), (1, 1, 2)]
    assert sel(session, t3, "d < 2 AND (b, c) IN ((0, 1), (2, 2)) AND d >= 1") == [(0, 1, 1), (2, 2, 1)]


def test_empty_in(session, t3):
    assert sel(session, t3, "(b, c, d) IN ()") == []
    assert sel(session, t3, "c IN () AND b = 1") == []
    assert rows(session, "SELECT * FROM %s WHERE k IN ()" % t3) == []


SLICES = [
    ("(b, c) > (1, 1)", lambda k: k[:2] > (1, 1)),
    ("(b, c) >= (1, 1)", lambda k: k[:2] >= (1, 1)),
    ("(b, c, d) < (1, 0, 2)", lambda k: k < (1, 0, 2)),
    ("(b, c, d) <= (1, 0, 2)", lambda k: k <= (1, 0, 2)),
    ("(b, c) > (0, 2) AND (b) < (2)", lambda k: k[:2] > (0, 2) and k[0] < 2),
    ("(b, c, d) > (0, 1, 1) AND (b, c) <= (1, 1)", lambda k: k > (0, 1, 1) and k[:2] <= (1, 1)),
    ("(b, c, d) >= (0, 1, 1) AND (b, c, d) < (2, 0, 1)", lambda k: (0, 1, 1) <= k < (2, 0, 1)),
    ("(b, c) > (1, 2) AND (b, c) < (1, 1)", lambda k: False),
    ("(b, c) > (0, 0) AND b <= 1", lambda k: k[:2] > (0, 0) and k[0] <= 1),
    ("b > 0 AND (b, c) < (2, 1)", lambda k: k[0] > 0 and k[:2] < (2, 1)),
    ("b = 1 AND (c, d) > (0, 1) AND (c) <= (1)", lambda k: k[0] == 1 and (0, 1) < k[1:] and k[1] <= 1),
    ("b IN (0, 2) AND (c, d) >= (2, 1)", lambda k: k[0] in (0, 2) and k[1:] >= (2, 1)),
]


@pytest.mark.parametrize("where,pred", SLICES, ids=[s[0] for s in SLICES])
def test_slices_all_asc(session, t3, where, pred):
    want = [k for k in all_keys() if pred(k)]
    assert sel(session, t3, where) == want
    got = [r[:3] for r in rows(session, "SELECT b, c, d FROM %s WHERE k = 0 AND %s ORDER BY b DESC, c DESC, d DESC"
                                % (t3, where))]
    assert got == want[::-1]


ORDERS = [("ASC", "DESC", "ASC"), ("DESC", "ASC", "DESC"), ("DESC", "DESC", "DESC"), ("ASC", "ASC", "DESC")]


def clustering_sorted(keys, orders):
    def key(k):
        return tuple(v if o == "ASC" else -v for v, o in zip(k, orders))
    return sorted(keys, key=key)


@pytest.mark.parametrize("orders", ORDERS, ids=["-".join(o) for o in ORDERS])
def test_slices_mixed_order(session, ks, orders):
    """A tuple slice on columns of mixed order is several storage ranges; the
    rows are those of the natural tuple comparison, in clustering order, and
    in exactly the reverse order with the reversed ORDER BY."""
    session.execute("CREATE TABLE %s.m (k int, b int, c int, d int, PRIMARY KEY (k, b, c, d)) "
                    "WITH CLUSTERING ORDER BY (b %s, c %s, d %s)" % ((ks,) + orders))
    ins = session.prepare("INSERT INTO %s.m (k, b, c, d) VALUES (0, ?, ?, ?)" % ks)
    for key in all_keys():
        session.execute(ins, key)
    rev = ", ".join("%s %s" % (c, "ASC" if o == "DESC" else "DESC") for c, o in zip("bcd", orders))
    for where, pred in SLICES:
        want = clustering_sorted([k for k in all_keys() if pred(k)], orders)
        assert sel(session, ks + ".m", where) == want, where
        got = [r[:3] for r in rows(session, "SELECT b, c, d FROM %s.m WHERE k = 0 AND %s ORDER BY %s"
                                    % (ks, where, rev))]
        assert got == want[::-1], where
    # the same through prepared statements, each bound a whole tuple
    q = "SELECT b, c, d FROM %s.m WHERE k = 0 AND (b, c, d) > ? AND (b, c, d) <= ?" % ks
    want = clustering_sorted([k for k in all_keys() if (0, 2, 1) < k <= (2, 0, 1)], orders)
    assert [r[:3] for r in prepared_rows(session, q, ((0, 2, 1), (2, 0, 1)))] == want
    # paging through the several ranges gives the same rows
    from cassandra.query import SimpleStatement
    st = SimpleStatement("SELECT b, c, d FROM %s.m WHERE k = 0 AND (b, c) >= (0, 1) AND (b, c, d) < (2, 2, 1)" % ks,
                         fetch_size=2)
    want = clustering_sorted([k for k in all_keys() if k[:2] >= (0, 1) and k < (2, 2, 1)], orders)
    assert [tuple(r) for r in session.execute(st)] == want
    st = SimpleStatement("SELECT b, c, d FROM %s.m WHERE k = 0 AND (b, c) >= (0, 1) AND (b, c, d) < (2, 2, 1) "
                         "ORDER BY %s" % (ks, rev), fetch_size=3)
    assert [tuple(r) for r in session.execute(st)] == want[::-1]


def test_range_delete_mixed_order(session, ks):
    session.execute("CREATE TABLE %s.rd (k int, b int, c int, PRIMARY KEY (k, b, c)) "
                    "WITH CLUSTERING ORDER BY (b ASC, c DESC)" % ks)
    ins = session.prepare("INSERT INTO %s.rd (k, b, c) VALUES (0, ?, ?)" % ks)
    for b, c in itertools.product(VALS, VALS):
        session.execute(ins, (b, c))
    session.execute("DELETE FROM %s.rd WHERE k = 0 AND (b, c) > (0, 1) AND (b, c) <= (2, 0)" % ks)
    left = [(b, c) for b, c in itertools.product(VALS, VALS) if not ((0, 1) < (b, c) <= (2, 0))]
    want = sorted(left, key=lambda k: (k[0], -k[1]))
    assert rows(session, "SELECT b, c FROM %s.rd WHERE k = 0" % ks) == want
    session.execute("DELETE FROM %s.rd WHERE k = 0 AND (b, c) IN ((0, 0), (2, 2))" % ks)
    assert rows(session, "SELECT b, c FROM %s.rd WHERE k = 0" % ks) == [k for k in want if k not in ((0, 0), (2, 2))]


def test_update_with_tuple_equality(session, t3):
    session.execute("UPDATE %s SET v = 100 WHERE k = 0 AND (b, c, d) = (1, 1, 1)" % t3)
    assert rows(session, "SELECT v FROM %s WHERE k = 0 AND b = 1 AND c = 1 AND d = 1" % t3) == [(100,)]
    session.execute("UPDATE %s SET v = 7 WHERE k = 0 AND (b, c, d) IN ((0, 0, 0), (2, 2, 2))" % t3)
    assert rows(session, "SELECT v FROM %s WHERE k = 0 AND (b, c, d) IN ((0, 0, 0), (2, 2, 2))" % t3) == [(7,), (7,)]


def test_prepared_tuples(session, t3):
    q = "SELECT b, c, d FROM %s WHERE k = 0 AND (b, c) = ?" % t3
    ps = session.prepare(q)
    assert [c.name for c in ps.column_metadata] == ["(b,c)"]
    assert ps.column_metadata[0].type.cql_parameterized_type() == "frozen<tuple<int, int>>"
    assert prepared_rows(session, q, ((1, 2),)) == [(1, 2, 0), (1, 2, 1), (1, 2, 2)]

    q = "SELECT b, c, d FROM %s WHERE k = 0 AND (b, c, d) IN ?" % t3
    ps = session.prepare(q)
    assert [c.name for c in ps.column_metadata] == ["in(b,c,d)"]
    assert prepared_rows(session, q, ([(2, 2, 2), (0, 0, 1)],)) == [(0, 0, 1), (2, 2, 2)]
    assert prepared_rows(session, q, ([],)) == []

    q = "SELECT b, c, d FROM %s WHERE k = 0 AND (b, c) IN (?, ?)" % t3
    ps = session.prepare(q)
    assert [c.name for c in ps.column_metadata] == ["(b,c)", "(b,c)"]
    assert prepared_rows(session, q, ((0, 2), (0, 1)))[:2] == [(0, 1, 0), (0, 1, 1)]

    q = "SELECT b, c, d FROM %s WHERE k = ? AND (b, c, d) > (?, ?, ?) AND (b) < (?)" % t3
    ps = session.prepare(q)
    assert [c.name for c in ps.column_metadata] == ["k", "b", "c", "d", "b"]
    assert prepared_rows(session, q, (0, 0, 2, 1, 1)) == [(0, 2, 2)]


def test_refusals(session, ks, t3):
    session.execute("CREATE TABLE %s.p (a int, b int, c int, PRIMARY KEY ((a, b), c))" % ks)
    p = ks + ".p"
    refused(session, "SELECT * FROM %s WHERE (a, b) = (1, 1)" % p,
            "Multi-column relations can only be applied to clustering columns but was applied to: a")
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (b, v) = (1, 1)" % t3,
            "Multi-column relations can only be applied to clustering columns but was applied to: v")
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (d, c, b) = (0, 0, 0)" % t3,
            "Clustering columns must appear in the PRIMARY KEY order in multi-column relations: (d, c, b) = (0, 0, 0)")
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (b, d) > (?, ?)" % t3,
            "Clustering columns must appear in the PRIMARY KEY order in multi-column relations: (b, d) > (?, ?)", (0, 0))
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (c, d) = (1, 1)" % t3,
            'PRIMARY KEY column "c" cannot be restricted as preceding column "b" is not restricted')
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (b, c) != (1, 1)" % t3,
            'Unsupported "!=" relation: (b, c) != (1, 1)')
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (b, c) > (?, ?, ?)" % t3,
            "Expected 2 elements in value tuple, but got 3: (?, ?, ?)", (1, 2, 3))
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (b, c, d) IN ((?, ?))" % t3,
            "Expected 3 elements in value tuple, but got 2: (?, ?)", (0, 1))
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (b, c) > (?, ?)" % t3,
            "Invalid null value in condition for column c", (1, None))
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (b, c, d) IN ((?, ?, ?), (?, ?, ?))" % t3,
            "Invalid null value in condition for column d", (1, 2, 3, 1, 2, None))
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (b) = (0) AND (b) > (0)" % t3,
            "b cannot be restricted by more than one relation if it includes an Equal")
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (b) > (0) AND b > 1" % t3,
            "More than one restriction was found for the start bound on b")
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (b, c, d) > (0, 1, 0) AND c < 1" % t3,
            'Column "c" cannot be restricted by two inequalities not starting with the same column')
    refused(session, "SELECT * FROM %s WHERE k = 0 AND c > 1 AND (b, c, d) < (0, 1, 0)" % t3,
            'Column "c" cannot be restricted by two inequalities not starting with the same column')
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (b, c) > (0, 0) AND (b) < (1) AND (c) < (1)" % t3,
            'Column "c" cannot be restricted by two inequalities not starting with the same column')
    refused(session, "SELECT * FROM %s WHERE k = 0 AND b > 0 AND (c, d) IN ((0, 0))" % t3,
            'Clustering column "c" cannot be restricted (preceding column "b" is restricted by a non-EQ relation)')
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (b) < (1) AND (c) < (1) AND (b, c) > (0, 0)" % t3,
            'Clustering column "c" cannot be restricted (preceding column "b" is restricted by a non-EQ relation)')
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (c, d) > (0, 0) AND b > 0" % t3,
            'PRIMARY KEY column "c" cannot be restricted (preceding column "b" is restricted by a non-EQ relation)')
    refused(session, "SELECT * FROM %s WHERE k = 0 AND (b, c) = (0, 0) AND c = 1" % t3,
            "c cannot be restricted by more than one relation if it includes an Equal")
    refused(session, "SELECT * FROM %s WHERE k = 0 AND b > 0 AND (b, c) = (0, 0)" % t3,
            'Column "b" cannot be restricted by both an equality and an inequality relation')
    refused(session, "UPDATE %s SET v = 1 WHERE k = 0 AND (b, c, d) > (0, 0, 0)" % t3,
            "Slice restrictions are not supported on the clustering columns in UPDATE statements")


def test_partition_in_order(session, ks):
    """An IN on the partition key reads the partitions in the key values'
    order (not the IN list's, nor token order), so LIMIT keeps the first."""
    session.execute("CREATE TABLE %s.pin (a int, b text, c int, PRIMARY KEY ((a, b), c))" % ks)
    for a in (4, 1, 3):
        for b in ("y", "x"):
            session.execute("INSERT INTO %s.pin (a, b, c) VALUES (%d, '%s', 0)" % (ks, a, b))
    got = rows(session, "SELECT a, b FROM %s.pin WHERE a IN (4, 1, 3, 1) AND b IN ('y', 'x')" % ks)
    assert got == [(1, "x"), (1, "y"), (3, "x"), (3, "y"), (4, "x"), (4, "y")]
    assert rows(session, "SELECT a FROM %s.pin WHERE a IN (4, 3, 1) AND b = 'x' LIMIT 2" % ks) == [(1,), (3,)]
    ps = session.prepare("SELECT a, b, c FROM %s.pin WHERE a IN ? AND b = ? AND (c) IN ?" % ks)
    assert prepared_rows(session, ps.query_string, ([3, 1], "y", [(0,)])) == [(1, "y", 0), (3, "y", 0)]


def test_random_slices_against_model(session, ks):
    """Seeded random tuple bounds (lengths 1-3, inclusive or not, one or both
    sides) on clustering columns of random orders, compared with the model,
    forward and reversed."""
    import random
    rnd = random.Random(1234)
    checked = []
    ops = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}
    for n in range(4):
        orders = tuple(rnd.choice(("ASC", "DESC")) for _ in range(3))
        tname = "%s.r%d" % (ks, n)
        session.execute("CREATE TABLE %s (k int, b int, c int, d int, PRIMARY KEY (k, b, c, d)) "
                        "WITH CLUSTERING ORDER BY (b %s, c %s, d %s)" % ((tname,) + orders))
        ins = session.prepare("INSERT INTO %s (k, b, c, d) VALUES (0, ?, ?, ?)" % tname)
        for key in all_keys():
            session.execute(ins, key)
        rev = ", ".join("%s %s" % (c, "ASC" if o == "DESC" else "DESC") for c, o in zip("bcd", orders))
        for _ in range(60):
            rels, preds = [], []
            sides = rnd.choice(((">", "<"), (">",), ("<",), (">=", "<="), (">", "<="), (">=",)))
            for op in sides:
                m = rnd.randint(1, 3)
                v = tuple(rnd.randint(-1, 3) for _ in range(m))
                cols = "bcd"[:m]
                rels.append("(%s) %s (%s)" % (", ".join(cols), op, ", ".join(map(str, v))))
                preds.append(lambda k, op=op, v=v, m=m: ops[op](k[:m], v))
            where = " AND ".join(rels)
            want = clustering_sorted([k for k in all_keys() if all(p(k) for p in preds)], orders)
            assert sel(session, tname, where) == want, (orders, where)
            checked.append(where)
            got = [r[:3] for r in rows(session, "SELECT b, c, d FROM %s WHERE k = 0 AND %s ORDER BY %s"
                                        % (tname, where, rev))]
            assert got == want[::-1], (orders, where)
    assert len(checked) == 240
