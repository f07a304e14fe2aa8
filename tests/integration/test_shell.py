"""sibylsh, the cqlsh-like shell: golden output of -e / -f runs, exit codes,
DESCRIBE round trips, COPY TO/FROM (files and STDIN/STDOUT), CAPTURE, TRACING,
and interactive sessions driven in a real terminal (tmux).

The shell binary is found next to sibyld: SIBYLSH_BIN, else
<build>/tools/sibylsh for the build dir of SIBYL_BIN (…/node/sibyld), else the
usual build dirs. Every subprocess and tmux wait is bounded; the tmux server
runs on a private socket and is killed in teardown.
"""

import os
import re
import shutil
import subprocess
import time
import uuid

import pytest

from sibyl_harness import LEAK_MARKER, REPO_ROOT, SANITIZER_MARKERS, find_binary

RUN_TIMEOUT = 60.0


def find_shell():
    env = os.environ.get("SIBYLSH_BIN")
    if env:
        return env if os.access(env, os.X_OK) else None
    cands = []
    node_bin = find_binary()
    if node_bin:
        build = os.path.dirname(os.path.dirname(os.path.abspath(node_bin)))
        cands.append(os.path.join(build, "tools", "sibylsh"))
    for d in ("build-asan", "build", "build-shell"):
        cands.append(os.path.join(REPO_ROOT, d, "tools", "sibylsh"))
    for c in cands:
        if os.access(c, os.X_OK):
            return c
    return None


@pytest.fixture(scope="session")
def shell_bin():
    b = find_shell()
    if b is None:
        pytest.fail("sibylsh not found: build it (make sibylsh) or set SIBYLSH_BIN", pytrace=False)
    return b


class Shell:
    """Runs sibylsh non-interactively against one node."""

    def __init__(self, binary, node, home):
        self.binary = binary
        self.node = node
        self.home = home

    def run(self, *args, stdin=None, keyspace=None):
        cmd = [self.binary, self.node.host, str(self.node.port)]
        if keyspace:
            cmd += ["-k", keyspace]
        cmd += list(args)
        env = dict(os.environ, HOME=self.home)
        p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env)
        for marker in SANITIZER_MARKERS + (LEAK_MARKER,):
            assert marker not in p.stderr, "sibylsh sanitizer report:\n" + p.stderr
        return p.returncode, p.stdout, p.stderr

    def ok(self, stmt, keyspace=None):
        rc, out, err = self.run("-e", stmt, keyspace=keyspace)
        assert rc == 0 and err == "", "sibylsh -e %r failed (%d): %s" % (stmt[:200], rc, err)
        return out


@pytest.fixture
def sh(shell_bin, node, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return Shell(shell_bin, node, str(home))


def create_ks(sh, name):
    sh.ok("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}" % name)


TYPES_TABLE = ("CREATE TABLE t (k int PRIMARY KEY, v text, big bigint, d double, bo boolean, "
               "ts timestamp, u uuid, b blob, l list<int>, s set<text>)")
TYPES_ROWS = [
    "INSERT INTO t (k, v, big, d, bo, ts, u, b, l, s) VALUES (1, 'abc', 9000000000, 1.5, true, "
    "'2024-01-02 03:04:05', 123e4567-e89b-12d3-a456-426614174000, 0xcafe, [1, 2], {'x', 'y'})",
    "INSERT INTO t (k, v) VALUES (22, 'hello world')",
]


@pytest.fixture
def types_ks(sh):
    create_ks(sh, "shk")
    sh.ok("; ".join([TYPES_TABLE] + TYPES_ROWS), keyspace="shk")
    return "shk"


# ---- golden output --------------------------------------------------------------

SELECT_GOLDEN = """
 k  | b      | big        | bo   | d    | l      | s          | ts                              | u                                    | v
----+--------+------------+------+------+--------+------------+---------------------------------+--------------------------------------+-------------
  1 | 0xcafe | 9000000000 | True |  1.5 | [1, 2] | {'x', 'y'} | 2024-01-02 03:04:05.000000+0000 | 123e4567-e89b-12d3-a456-426614174000 |         abc
 22 |   null |       null | null | null |   null |       null |                            null |                                 null | hello world

(2 rows)

"""


def test_select_golden(sh, types_ks):
    assert sh.ok("SELECT * FROM t", keyspace=types_ks) == SELECT_GOLDEN


EXPAND_GOLDEN = """Now Expanded output is enabled

@ Row 1
---+-------------
 k | 1
 v | abc

@ Row 2
---+-------------
 k | 22
 v | hello world


(2 rows)

"""


def test_expand_golden(sh, types_ks):
    assert sh.ok("EXPAND ON; SELECT k, v FROM t", keyspace=types_ks) == EXPAND_GOLDEN


def test_empty_result_golden(sh, types_ks):
    out = sh.ok("SELECT k, v FROM t WHERE k = 5", keyspace=types_ks)
    assert out == "\n k | v\n---+---\n\n\n(0 rows)\n\n"


def test_file_mode_and_statement_splitting(sh, types_ks, tmp_path):
    f = tmp_path / "script.cql"
    f.write_text("-- a comment line\n"
                 "SELECT k, v\n  FROM t\n  WHERE k = 22;  /* trailing comment */\n"
                 "INSERT INTO t (k, v) VALUES (5, 'semi;colon'); SELECT v FROM t WHERE k = 5;\n")
    rc, out, err = sh.run("-f", str(f), keyspace=types_ks)
    assert (rc, err) == (0, "")
    assert out == ("\n k  | v\n----+-------------\n 22 | hello world\n\n(1 rows)\n\n"
                   "\n v\n------------\n semi;colon\n\n(1 rows)\n\n")


def test_batch_quotes_and_comments_split(sh, types_ks, tmp_path):
    f = tmp_path / "batch.cql"
    f.write_text("BEGIN BATCH\n"
                 "  INSERT INTO t (k, v) VALUES (50, $$a;b$$);\n"
                 "  /* a comment; with\n  semicolons; */ INSERT INTO t (k, v) VALUES (51, 'x;''y');\n"
                 "APPLY BATCH;\n"
                 "// another; comment\n"
                 "SELECT k, v FROM t WHERE k IN (50, 51);\n")
    rc, out, err = sh.run("-f", str(f), keyspace=types_ks)
    assert (rc, err) == (0, "")
    assert out == "\n k  | v\n----+------\n 50 |  a;b\n 51 | x;'y\n\n(2 rows)\n\n"


# ---- errors and exit codes ---------------------------------------------------------

def test_syntax_error_exit_code(sh):
    rc, out, err = sh.run("-e", "SELEC * FROM x")
    assert rc == 2
    assert out == ""
    assert err.startswith("<stdin>:1:SyntaxException: line 1:0 no viable alternative at input 'SELEC'")


def test_invalid_request_exit_code(sh, types_ks):
    rc, out, err = sh.run("-e", "SELECT * FROM nosuch", keyspace=types_ks)
    assert rc == 2
    assert err == ('<stdin>:1:InvalidRequest: Error from server: code=2200 [Invalid query] '
                   'message="table nosuch does not exist"\n')


def test_already_exists_message(sh, types_ks):
    rc, _, err = sh.run("-e", "CREATE KEYSPACE shk WITH replication = "
                              "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    assert rc == 2
    assert err == "<stdin>:1:AlreadyExists: Keyspace 'shk' already exists\n"


def test_file_error_prefix_and_continue(sh, types_ks, tmp_path):
    f = tmp_path / "bad.cql"
    f.write_text("SELECT v FROM t WHERE k = 1;\n\nSELECT * FROM nosuch;\nSELECT v FROM t WHERE k = 22;\n")
    rc, out, err = sh.run("-f", str(f), keyspace=types_ks)
    assert rc == 2
    assert err == ('%s:3:InvalidRequest: Error from server: code=2200 [Invalid query] '
                   'message="table nosuch does not exist"\n' % f)
    assert "abc" in out and "hello world" in out  # statements after the error still ran


def test_piped_stdin(sh, types_ks):
    rc, out, err = sh.run(stdin="SELECT v FROM t WHERE k = 1;\nbogus;\n", keyspace=types_ks)
    assert rc == 0  # as cqlsh: piped stdin is not batch mode
    assert " abc\n" in out
    assert err.startswith("<stdin>:2:SyntaxException: ")


def test_connection_refused(shell_bin, tmp_path):
    from sibyl_harness import free_port
    p = subprocess.run([shell_bin, "127.0.0.1", str(free_port("127.0.0.1")), "-e", "SELECT 1"],
                       capture_output=True, text=True, timeout=RUN_TIMEOUT, env=dict(os.environ, HOME=str(tmp_path)))
    assert p.returncode == 1
    assert p.stderr.startswith("Connection error: ('Unable to connect to any servers'")


# ---- shell commands -----------------------------------------------------------------

def test_shell_commands(sh):
    out = sh.ok("CONSISTENCY; CONSISTENCY quorum; CONSISTENCY\nPAGING; PAGING 7; PAGING OFF\nEXPAND\nSHOW HOST")
    assert out == ("Current consistency level is ONE.\n"
                   "Consistency level set to QUORUM.\n"
                   "Current consistency level is QUORUM.\n"
                   "Query paging is currently enabled. Use PAGING OFF to disable\n"
                   "Page size: 100\n"
                   "Page size: 7\n"
                   "Disabled Query paging.\n"
                   "Expanded output is currently disabled. Use EXPAND ON to enable.\n"
                   "Connected to %s at %s:%d\n" % (sh.node.cluster_name, sh.node.host, sh.node.port))
    rc, _, err = sh.run("-e", "CONSISTENCY FOO")
    assert rc == 2 and err == "<stdin>:1:Improper CONSISTENCY command.\n"


def test_help_and_version(sh):
    out = sh.ok("HELP")
    assert "Documented shell commands:" in out and "CONSISTENCY" in out and "CQL help topics:" in out
    assert "USING" in out and "USING CONSISTENCY level" in sh.ok("HELP USING")
    assert re.match(r"\[cqlsh \S+ \| Cassandra \S+ \| CQL spec 3\.4\.5 \| Native protocol v4\]\n$",
                    sh.ok("SHOW VERSION"))


def test_paging_fetches_every_page(sh):
    create_ks(sh, "pg")
    sh.ok("CREATE TABLE p (k int PRIMARY KEY, v int)", keyspace="pg")
    sh.ok("BEGIN UNLOGGED BATCH " + " ".join("INSERT INTO p (k, v) VALUES (%d, %d);" % (i, i * 2)
                                              for i in range(250)) + " APPLY BATCH", keyspace="pg")
    out = sh.ok("PAGING 40; SELECT k, v FROM p", keyspace="pg")
    assert out.endswith("(250 rows)\n\n")
    keys = sorted(int(m.group(1)) for m in re.finditer(r"^ +(\d+) \| +\d+$", out, re.M))
    assert keys == list(range(250))
    assert out.count(" k   | v") + out.count(" k  | v") + out.count(" k | v") == 1  # one header


def test_source(sh, types_ks, tmp_path):
    inner = tmp_path / "inner.cql"
    inner.write_text("SELECT v FROM t WHERE k = 1;\nSELECT * FROM nosuch;\n")
    rc, out, err = sh.run("-e", "SOURCE '%s'" % inner, keyspace=types_ks)
    assert rc == 2
    assert " abc\n" in out
    assert err.startswith("%s:2:InvalidRequest: " % inner)


# ---- DESCRIBE -------------------------------------------------------------------------

def test_describe_listings(sh, types_ks):
    sh.ok("CREATE TABLE other (a int PRIMARY KEY)", keyspace=types_ks)
    assert sh.ok("DESCRIBE TABLES", keyspace=types_ks) == "\nKeyspace shk\n------------\nother  t\n\n"
    out = sh.ok("DESCRIBE KEYSPACES")
    assert out.startswith("\n") and out.endswith("\n\n")
    assert set(out.split()) >= {"shk", "system", "system_schema"}


def test_describe_table_recreates_it(sh, types_ks):
    first = sh.ok("DESCRIBE TABLE t", keyspace=types_ks)
    assert first.startswith("\nCREATE TABLE shk.t (\n")
    assert first.rstrip().endswith(";")
    create_ks(sh, "shk2")
    sh.ok(first.replace("CREATE TABLE shk.t", "CREATE TABLE shk2.t"))
    again = sh.ok("DESC TABLE shk2.t")
    assert again == first.replace("CREATE TABLE shk.t", "CREATE TABLE shk2.t")


def test_describe_bucketed_table(sh, types_ks):
    """BUCKET / SALT show in DESCRIBE as written, and the output recreates the table."""
    sh.ok("CREATE TABLE ev (sensor text, ts timestamp, v int, "
          "PRIMARY KEY ((sensor, BUCKET(ts, 1h), SALT(4)), ts))", keyspace=types_ks)
    first = sh.ok("DESCRIBE TABLE ev", keyspace=types_ks)
    assert "    PRIMARY KEY ((sensor, BUCKET(ts, 1h), SALT(4)), ts)\n" in first
    assert "ts_bucket" not in first
    create_ks(sh, "shk4")
    sh.ok(first.replace("CREATE TABLE shk.ev", "CREATE TABLE shk4.ev"))
    assert sh.ok("DESC TABLE shk4.ev") == first.replace("CREATE TABLE shk.ev", "CREATE TABLE shk4.ev")


def test_describe_keyspace_recreates_it(sh, types_ks):
    first = sh.ok("DESCRIBE KEYSPACE shk")
    assert first.startswith("\nCREATE KEYSPACE shk WITH replication")
    rewritten = first.replace(" shk ", " shk3 ").replace("shk.", "shk3.")
    sh.ok(rewritten)
    assert sh.ok("DESCRIBE KEYSPACE shk3") == rewritten


# ---- COPY ----------------------------------------------------------------------------------

def test_copy_round_trip(sh, tmp_path):
    create_ks(sh, "cp")
    cols = ("k int PRIMARY KEY, v text, big bigint, d double, bo boolean, ts timestamp, u uuid, b blob, dt date, "
            "l list<int>, s set<text>")
    sh.ok("CREATE TABLE src (%s); CREATE TABLE dst (%s)" % (cols, cols), keyspace="cp")
    rows = ["INSERT INTO src (k, v, big, d, bo, ts, u, b, dt, l, s) VALUES (%d, 'row %d, \"quoted\"', %d, %d.25, "
            "%s, '2024-01-02 03:04:%02d.123', 123e4567-e89b-12d3-a456-4266141740%02d, 0x%02x, '2024-03-%02d', "
            "[%d, 1], {'it''s', 'a,%d'})"
            % (i, i, i * 10 ** 10, i, "true" if i % 2 else "false", i, i, i, i + 1, i, i) for i in range(25)]
    rows.append("INSERT INTO src (k) VALUES (100)")
    sh.ok("; ".join(rows), keyspace="cp")
    csv = tmp_path / "src.csv"
    out = sh.ok("COPY src TO '%s' WITH HEADER = true" % csv, keyspace="cp")
    assert "Starting copy of cp.src with columns [k, b, big, bo, d, dt, l, s, ts, u, v]." in out
    assert re.search(r"^Processed: 26 rows; Rate: +\d+ rows/s; Avg\. rate: +\d+ rows/s$", out, re.M)
    assert re.search(r"^26 rows exported to 1 files in [\d.]+ seconds\.$", out, re.M)
    text = csv.read_text()
    assert text.splitlines()[0] == "k,b,big,bo,d,dt,l,s,ts,u,v"
    assert '"row 3, ""quoted"""' in text
    out = sh.ok("COPY dst FROM '%s' WITH HEADER = true" % csv, keyspace="cp")
    assert re.search(r"^26 rows imported from 1 files in [\d.]+ seconds \(0 skipped\)\.$", out, re.M)
    assert sh.ok("SELECT * FROM dst", keyspace="cp") == sh.ok("SELECT * FROM src", keyspace="cp")


def test_copy_from_bad_row_fails(sh, tmp_path):
    create_ks(sh, "cpbad")
    sh.ok("CREATE TABLE t (k int PRIMARY KEY, v int)", keyspace="cpbad")
    csv = tmp_path / "bad.csv"
    csv.write_text("1,10\nx,20\n3,30\n")
    rc, out, err = sh.run("-e", "COPY t (k, v) FROM '%s'" % csv, keyspace="cpbad")
    assert rc == 2
    assert "2 rows imported from 1 files" in out and "(1 skipped)" in out
    assert "Failed to import row at line 2: ParseError" in err
    assert sh.ok("SELECT count(*) FROM t", keyspace="cpbad").count(" 2\n") == 1


def test_copy_stdin_stdout(sh):
    create_ks(sh, "cpio")
    sh.ok("CREATE TABLE t (k int PRIMARY KEY, v text)", keyspace="cpio")
    # Piped input: the rows follow the statement up to \., then the stream goes on.
    rc, out, err = sh.run(stdin="COPY t (k, v) FROM STDIN;\n1,a\n2,\"b,c\"\n\\.\nSELECT * FROM t WHERE k = 2;\n",
                          keyspace="cpio")
    assert (rc, err) == (0, "")
    assert "Starting copy of cpio.t with columns [k, v].\n" in out
    assert re.search(r"^2 rows imported from 1 files in [\d.]+ seconds \(0 skipped\)\.$", out, re.M)
    assert re.search(r"^ 2 \| b,c$", out, re.M)
    # -e reads stdin to its end; HEADER skips the first line.
    rc, out, err = sh.run("-e", "COPY t FROM STDIN WITH HEADER = true", stdin="k,v\n3,c\n4,\n", keyspace="cpio")
    assert (rc, err) == (0, "")
    assert "2 rows imported from 1 files" in out
    # TO STDOUT: only the CSV on stdout, as copyutil swallows its messages.
    rc, out, err = sh.run("-e", "COPY t TO STDOUT WITH HEADER = true", keyspace="cpio")
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "k,v"
    assert sorted(lines[1:]) == ["1,a", '2,"b,c"', "3,c", "4,"]
    rc, out, err = sh.run("-e", "COPY t (v) TO stdout", keyspace="cpio")
    assert rc == 0 and sorted(out.splitlines()) == ["", '"b,c"', "a", "c"]
    # A bad row is reported with its line in the STDIN data; the others go in.
    rc, out, err = sh.run("-e", "COPY t FROM STDIN", stdin="5,e\nx,f\n", keyspace="cpio")
    assert rc == 2
    assert "Failed to import row at line 2: ParseError" in err
    assert "1 rows imported from 1 files" in out and "(1 skipped)" in out
    # STDIN is for FROM, STDOUT for TO, and a file name must be quoted.
    for bad in ("COPY t TO STDIN", "COPY t FROM STDOUT", "COPY t TO somefile"):
        rc, out, err = sh.run("-e", bad, keyspace="cpio")
        assert rc == 2 and err == "<stdin>:1:Improper COPY command.\n", (bad, err)
    assert sh.ok("SELECT count(*) FROM t", keyspace="cpio").count(" 5\n") == 1


CAPTURED = """
 k  | v
----+-------------
 22 | hello world

(1 rows)

"""


def test_capture(sh, types_ks, tmp_path):
    cap = tmp_path / "out.txt"
    script = ("CAPTURE\nCAPTURE '{0}'\nCAPTURE\nSELECT k, v FROM t WHERE k = 22;\nSHOW VERSION\n"
              "CAPTURE '{0}'\nCAPTURE OFF\nCAPTURE OFF\nSELECT k FROM t WHERE k = 1;\n"
              "CAPTURE '{1}'\nCAPTURE nofile\n").format(cap, tmp_path / "no" / "dir")
    rc, out, err = sh.run(stdin=script, keyspace=types_ks)
    assert out.startswith("Currently not capturing query output.\n"
                          "Now capturing query output to '%s'.\n"
                          "Currently capturing query output to '%s'.\n[cqlsh " % (cap, cap))
    assert out.endswith("\n k\n---\n 1\n\n(1 rows)\n\n")  # results are back on stdout after OFF
    assert "hello world" not in out
    assert err == ("<stdin>:6:Already capturing output to {0}. Use CAPTURE OFF to disable.\n"
                   "<stdin>:8:Not currently capturing output.\n"
                   "<stdin>:10:Could not open '{1}' for append: [Errno 2] No such file or directory: '{1}'\n"
                   "<stdin>:11:Improper CAPTURE command.\n").format(cap, tmp_path / "no" / "dir")
    assert cap.read_text() == CAPTURED
    # A second capture appends.
    sh.ok("CAPTURE '%s'\nSELECT k, v FROM t WHERE k = 22;\nCAPTURE OFF" % cap, keyspace=types_ks)
    assert cap.read_text() == CAPTURED * 2


TRACE_ROW = re.compile(r"^ +(.*?) \| +(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{6})?) \| +(\S+) \| +(\d+) \| +(\S+)$")


def parse_trace(out):
    """(session uuid, [(activity, timestamp, source, elapsed, client)]) of
    the first trace printed in out."""
    m = re.search(r"^Tracing session: (\S+)\n\n (.*)\n(-+\+[-+]*)\n((?:.*\n)*?)\n", out, re.M)
    assert m, out
    assert [c.strip() for c in m.group(2).split("|")] == ["activity", "timestamp", "source", "source_elapsed",
                                                          "client"]
    rows = []
    for line in m.group(4).splitlines():
        r = TRACE_ROW.match(line)
        assert r, line
        rows.append((r.group(1), r.group(2), r.group(3), int(r.group(4)), r.group(5)))
    return uuid.UUID(m.group(1)), rows


def test_tracing(sh, types_ks):
    script = ("TRACING\nTRACING ON\nSELECT v FROM t WHERE k = 22;\nSELECT * FROM nosuch;\n"
              "INSERT INTO t (k, v) VALUES (5, 'five');\nTRACING\nTRACING OFF\nTRACING OFF\nTRACING maybe\n"
              "SELECT v FROM t WHERE k = 5;\n")
    rc, out, err = sh.run(stdin=script, keyspace=types_ks)
    assert out.startswith("Tracing is currently disabled. Use TRACING ON to enable.\nNow Tracing is enabled\n\n"
                          " v\n-------------\n hello world\n\n(1 rows)\n\n\nTracing session: ")
    assert out.endswith("Tracing is currently enabled. Use TRACING OFF to disable\nDisabled Tracing.\n\n"
                        " v\n------\n five\n\n(1 rows)\n\n")  # OFF: no trace after the last SELECT
    assert out.count("Tracing session: ") == 2  # the SELECT and the INSERT; not the failed statement
    assert err == ("<stdin>:4:InvalidRequest: Error from server: code=2200 [Invalid query] "
                   "message=\"table nosuch does not exist\"\n"
                   "<stdin>:8:Tracing is not enabled.\n<stdin>:9:Improper TRACING command.\n")

    sid, rows = parse_trace(out)
    assert sid.version == 1
    host = sh.node.host
    assert rows[0][0] == "Execute CQL3 query" and rows[0][3] == 0
    thread = re.match(r".* \[(.+)\]$", rows[1][0]).group(1)
    assert [r[0] for r in rows[1:-1]] == [a + " [%s]" % thread for a in (
        "Parsing SELECT v FROM t WHERE k = 22", "Preparing statement", "Executing single-partition query on t",
        "Read 1 live rows and 0 tombstone cells")]
    assert rows[-1][0] == "Request complete"
    elapsed = [r[3] for r in rows]
    assert elapsed == sorted(elapsed) and elapsed[-1] > 0
    assert all(r[2] == host and r[4] == host for r in rows)
    # The session is the server's: system_traces has it.
    got = sh.ok("SELECT request, duration FROM system_traces.sessions WHERE session_id = %s" % sid)
    assert re.search(r"^ Execute CQL3 query \| +%d$" % elapsed[-1], got, re.M), got

    sid2, rows = parse_trace(out[out.index("Tracing session: ", out.index(str(sid)) + 36):])
    assert sid2 != sid
    assert [r[0].rsplit(" [", 1)[0] for r in rows[-4:-1]] == ["Determining replicas for mutation",
                                                             "Appending to commitlog", "Adding to t memtable"]


# ---- interactive, in a real terminal -------------------------------------------------------

class Tmux:
    """One tmux server on a private socket: nothing else's sessions are touched."""

    def __init__(self, name):
        self.sock = "sibylsh-test-%d-%s" % (os.getpid(), name)
        self.name = name

    def tmux(self, *args, check=True):
        return subprocess.run(["tmux", "-L", self.sock] + list(args), capture_output=True, text=True,
                              timeout=20, check=check)

    def start(self, command):
        self.tmux("new-session", "-d", "-s", self.name, "-x", "200", "-y", "50", command)
        self.socket_path = self.tmux("display-message", "-p", "#{socket_path}").stdout.strip()

    def keys(self, *keys):
        self.tmux("send-keys", "-t", self.name, *keys)

    def type(self, text):
        # tmux takes an argument ending in ';' as a command separator, so
        # semicolons go as their hex code.
        for i, part in enumerate(text.split(";")):
            if i:
                self.tmux("send-keys", "-t", self.name, "-H", "3b")
            if part:
                self.tmux("send-keys", "-t", self.name, "-l", part)

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", self.name).stdout

    def wait_for(self, pred, what, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            s = self.screen()
            if pred(s):
                return s
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s; screen:\n%s" % (what, s))
            time.sleep(0.1)

    def kill(self):
        self.tmux("kill-server", check=False)
        # kill-server leaves the socket file behind; it is ours alone.
        path = getattr(self, "socket_path", "")
        if path and os.path.basename(path) == self.sock and os.path.exists(path):
            os.unlink(path)


@pytest.fixture
def tmux(request):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (tools/install-deps.sh)")
    t = Tmux("sh%d" % (abs(hash(request.node.name)) % 100000))
    try:
        yield t
    finally:
        t.kill()


def test_interactive_session(sh, types_ks, tmux):
    sh.ok("CREATE TABLE tabcomplete_me (k int PRIMARY KEY, v text); "
          "INSERT INTO tabcomplete_me (k, v) VALUES (7, 'seven'); "
          "INSERT INTO tabcomplete_me (k, v) VALUES (8, 'eight'); "
          "INSERT INTO tabcomplete_me (k, v) VALUES (9, 'nine')", keyspace=types_ks)
    # Sanitizer reports of a sanitized shell go to files: the pane vanishes.
    asan_log = os.path.join(sh.home, "asan")
    cmd = "env HOME=%s TERM=xterm ASAN_OPTIONS=log_path=%s UBSAN_OPTIONS=log_path=%s %s %s %d" % (
        sh.home, asan_log, asan_log, sh.binary, sh.node.host, sh.node.port)
    tmux.start(cmd)
    tmux.wait_for(lambda s: s.rstrip().endswith("cqlsh>"), "the prompt")

    # Keyspace completion after USE (the only keyspace starting "sh").
    tmux.type("USE sh")
    tmux.keys("Tab")
    tmux.wait_for(lambda s: s.rstrip().endswith("cqlsh> USE %s" % types_ks), "the completed keyspace")
    tmux.type(";")
    tmux.keys("Enter")
    tmux.wait_for(lambda s: s.rstrip().endswith("cqlsh:%s>" % types_ks), "the keyspace prompt")

    # A statement over three lines: the continuation prompt, then the result.
    tmux.type("SELECT k, v")
    tmux.keys("Enter")
    tmux.wait_for(lambda s: s.rstrip().endswith("..."), "the continuation prompt")
    tmux.type("FROM t WHERE k = 22")
    tmux.keys("Enter")
    tmux.type(";")
    tmux.keys("Enter")
    s = tmux.wait_for(lambda s: "(1 rows)" in s, "the multi-line result")
    assert re.search(r"^ 22 \| hello world$", s, re.M)

    # Tab completion of a table name.
    tmux.type("SELECT v FROM tabcomp")
    tmux.keys("Tab")
    # (capture-pane trims the space completion adds; the next words prove it)
    tmux.wait_for(lambda s: s.rstrip().endswith("SELECT v FROM tabcomplete_me"), "the completed table name")
    tmux.type("WHERE k = 7;")
    tmux.keys("Enter")
    tmux.wait_for(lambda s: re.search(r"^ +seven$", s, re.M), "the completed statement's result")

    # Paging: ---MORE--- between pages, Enter for the next one.
    tmux.keys("C-l")
    tmux.type("PAGING 2")
    tmux.keys("Enter")
    tmux.type("SELECT k FROM tabcomplete_me;")
    tmux.keys("Enter")
    tmux.wait_for(lambda s: s.rstrip().endswith("---MORE---"), "the pager")
    tmux.keys("Enter")
    tmux.wait_for(lambda s: "(3 rows)" in s, "the second page")
    tmux.type("PAGING OFF")
    tmux.keys("Enter")

    # Ctrl-C discards a half-typed statement and keeps the shell.
    tmux.type("SELECT * FROM")
    tmux.keys("Enter")
    tmux.wait_for(lambda s: s.rstrip().endswith("..."), "the continuation prompt")
    tmux.keys("C-c")
    tmux.wait_for(lambda s: s.rstrip().endswith("cqlsh:%s>" % types_ks), "the prompt after Ctrl-C")
    tmux.type("SELECT v FROM tabcomplete_me WHERE k = 7;")
    tmux.keys("Enter")
    tmux.wait_for(lambda s: s.count(" seven") >= 1 and s.rstrip().endswith("cqlsh:%s>" % types_ks), "the result")

    # History: the up arrow brings back the last line.
    tmux.keys("C-l")
    tmux.keys("Up")
    tmux.wait_for(lambda s: s.rstrip().endswith("SELECT v FROM tabcomplete_me WHERE k = 7;"), "history recall")
    tmux.keys("C-u")
    tmux.type("EXIT")
    tmux.keys("Enter")
    hist = os.path.join(sh.home, ".sibylsh_history")
    deadline = time.monotonic() + 10
    while tmux.tmux("has-session", "-t", tmux.name, check=False).returncode == 0:
        assert time.monotonic() < deadline, "shell did not exit"
        time.sleep(0.1)
    assert "tabcomplete_me" in open(hist).read()
    reports = [f for f in os.listdir(sh.home) if f.startswith("asan")]
    assert not reports, "sanitizer reports: " + "".join(open(os.path.join(sh.home, f)).read() for f in reports)


def test_interactive_reconnect(sh, types_ks, tmux):
    """A node restart costs one failed statement, not the session."""
    cmd = "env HOME=%s TERM=xterm %s %s %d -k %s" % (sh.home, sh.binary, sh.node.host, sh.node.port, types_ks)
    tmux.start(cmd)
    tmux.wait_for(lambda s: s.rstrip().endswith("cqlsh:%s>" % types_ks), "the prompt")
    sh.node.stop()
    tmux.type("SELECT v FROM t WHERE k = 1;")
    tmux.keys("Enter")
    tmux.wait_for(lambda s: "NoHostAvailable: ('Unable to complete the operation against any hosts'" in s,
                  "the connection error")
    sh.node.start()
    tmux.keys("C-l")
    tmux.type("SELECT v FROM t WHERE k = 1;")
    tmux.keys("Enter")
    s = tmux.wait_for(lambda s: "(1 rows)" in s, "the result after the restart")
    assert re.search(r"^ abc$", s, re.M)
    assert s.rstrip().endswith("cqlsh:%s>" % types_ks)  # still in the keyspace


def test_interactive_copy_stdin_and_capture(sh, types_ks, tmux, tmp_path):
    """COPY FROM STDIN prompts "[copy] " until \\.; while capturing, a paged
    result is fetched whole into the file without ---MORE---."""
    sh.ok("CREATE TABLE io (k int PRIMARY KEY, v text)", keyspace=types_ks)
    cmd = "env HOME=%s TERM=xterm %s %s %d -k %s" % (sh.home, sh.binary, sh.node.host, sh.node.port, types_ks)
    tmux.start(cmd)
    prompt = "cqlsh:%s>" % types_ks
    tmux.wait_for(lambda s: s.rstrip().endswith(prompt), "the prompt")
    tmux.type("COPY io (k, v) FROM STDIN;")
    tmux.keys("Enter")
    s = tmux.wait_for(lambda s: s.rstrip().endswith("[copy]"), "the copy prompt")
    assert "[Use \\. on a line by itself to end input]" in s
    for line in ("1,one", "2,two", "3,three", "\\."):
        tmux.type(line)
        tmux.keys("Enter")
    s = tmux.wait_for(lambda s: s.rstrip().endswith(prompt) and "rows imported" in s, "the import")
    assert re.search(r"^3 rows imported from 1 files in [\d.]+ seconds \(0 skipped\)\.$", s, re.M)

    cap = tmp_path / "cap.txt"
    tmux.keys("C-l")
    tmux.type("PAGING 1")
    tmux.keys("Enter")
    tmux.type("CAPTURE '%s'" % cap)
    tmux.keys("Enter")
    tmux.wait_for(lambda s: "Now capturing query output to '%s'." % cap in s, "the capture message")
    tmux.type("SELECT k, v FROM io;")
    tmux.keys("Enter")
    wait_until = time.monotonic() + 20
    while "(3 rows)" not in (cap.read_text() if cap.exists() else ""):
        assert time.monotonic() < wait_until, "capture file: %r; screen:\n%s" % (
            cap.read_text() if cap.exists() else None, tmux.screen())
        time.sleep(0.1)
    s = tmux.wait_for(lambda s: s.rstrip().endswith(prompt), "the prompt after the captured query")
    assert "---MORE---" not in s and "three" not in s
    text = cap.read_text()
    assert all(re.search(r"^ %d \| +%s$" % (k, v), text, re.M) for k, v in ((1, "one"), (2, "two"), (3, "three")))
    tmux.type("CAPTURE OFF")
    tmux.keys("Enter")
    tmux.type("EXIT")
    tmux.keys("Enter")
