/* main.c: sibyl-stress, a cassandra-stress-like load generator for the CQL
 * native protocol.
 *
 * Sequence: parse options; load the user profile if any; read the ring
 * from every contact point of -node (ring.c); on the first reachable one
 * create the schema (keyspace1.standard1 as cassandra-stress does, with
 * -schema replication(factor=N), or the profile's definitions) and learn
 * what each op binds (workload.c); start the workers, each connected to
 * every node of the ring and sending each request to its partition's
 * primary replica when the ring has several nodes (token-aware); every
 * second collect their interval stats and print the progress lines
 * (report.c); when they are done (n reached, duration over, or Ctrl-C)
 * print the summary and write the log. Exit status: 0 when the
 * run completed (errors are counted, not fatal, as in cassandra-stress), 1
 * when it could not run.
 *
 * Command line:
 *   sibyl-stress <write|read|mixed> [n=N | duration=30s] [cl=ONE] [no-warmup]
 *                [ratio(write=1,read=3)]
 *   sibyl-stress user profile=file.yaml ops(insert=1,query=2) [n=N | duration=30s] [cl=ONE]
 *                [-node host[:port][,host[:port]...]] [-port native=9042]
 *                [-rate threads=N [fixed=R/s | throttle=R/s]]
 *                [-conns N] [-inflight N]
 *                [-col size=FIXED(34)] [-pop seq=1..N | dist=UNIFORM(1..N) | dist=ZIPF(1..N[,s])]
 *                [-schema replication(factor=1)] [-mode native cql3 prepared|unprepared [compression=lz4]]
 *                [-mode redis] [-log file=out.json] [--json | --csv]
 *
 * As in cassandra-stress, the words after the command belong to it and
 * every "-group" takes the words up to the next "-group". Counts accept
 * k/m/b suffixes (n=2M). Defaults follow cassandra-stress where it has one
 * (cl=ONE, FIXED(34) values, keyspace1.standard1, seq keys for write and
 * uniform keys over the same range for read); the concurrency defaults
 * (2 threads x 8 connections x 8 in flight) suit one small node. With
 * `user`, n counts operations (an insert of several partitions is one), not
 * partitions as cassandra-stress's user mode does, and -pop, when given,
 * picks the partitions instead of the first key column's population.
 *
 * -mode redis (not in cassandra-stress) sends the same keys and values to a
 * Redis server as SET key value / GET key (port 6379 unless -port says), so
 * Redis can be measured by the same client and pacing as Sibyl, fixed-rate
 * latency included (redis-benchmark has no fixed-rate mode); resp.c.
 */
#include "stress.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

/* ====================================================================== */
/* Command line                                                           */
/* ====================================================================== */

enum { DEF_THREADS = 2, DEF_CONNS = 8, DEF_INFLIGHT = 8, DEF_VALUE = 34, DEF_PORT = 9042,
       DEF_REDIS_PORT = 6379 };

void stress_usage(FILE *f)
{
    fputs("usage: sibyl-stress <write|read|mixed> [n=N | duration=30s] [cl=ONE] [ratio(write=1,read=3)]\n"
          "       sibyl-stress user profile=file.yaml ops(insert=1,name=2) [n=N | duration=30s] [cl=ONE]\n"
          "        [-node host[:port][,host[:port]...]] [-port native=9042]\n"
          "        [-rate threads=N [fixed=R/s]] [-conns N] [-inflight N]\n"
          "        [-col size=FIXED(34)]\n"
          "        [-pop seq=1..N | dist=UNIFORM(1..N) | dist=ZIPF(1..N[,exponent])]\n"
          "        [-schema replication(factor=1)] [-mode native cql3 prepared|unprepared [compression=lz4]]\n"
          "        [-mode redis] [-log file=out.json|out.csv] [--json | --csv]\n"
          "\n"
          "  -node a,b:9043    contact points; the ring is read from each (system.local and\n"
          "                    system.peers) and requests go to each partition's primary replica\n"
          "  -rate threads=N   client threads (default 2)\n"
          "  -conns N          connections per thread to each node (default 8)\n"
          "  -inflight N       requests in flight per connection (default 8)\n"
          "  profile=file.yaml a cassandra-stress user profile (tools/stress/profiles/)\n"
          "  fixed=R/s         fixed total rate; latency counts from each request's intended start\n"
          "  --json / --csv    print the interval log and summary as JSON / CSV on stdout\n"
          "  -mode redis       SET / GET the same keys and values on a Redis server (port 6379)\n",
          f);
}

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "sibyl-stress: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return -1;
}

static bool parse_int(const char *s, int lo, int hi, int *out)
{
    uint64_t v;
    if (!stress_parse_count(s, &v) || v < (uint64_t)lo || v > (uint64_t)hi) return false;
    *out = (int)v;
    return true;
}

/* 30, 30s, 5m, 1h, 250ms. */
static bool parse_duration(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v <= 0) return false;
    if (!*end || strcasecmp(end, "s") == 0) *out = v;
    else if (strcasecmp(end, "ms") == 0) *out = v / 1e3;
    else if (strcasecmp(end, "m") == 0) *out = v * 60;
    else if (strcasecmp(end, "h") == 0) *out = v * 3600;
    else return false;
    return true;
}

/* "50000/s", "50000" or "3000/m". */
static bool parse_rate(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v <= 0) return false;
    if (*end == '/') {
        if (strcasecmp(end, "/s") == 0) *out = v;
        else if (strcasecmp(end, "/m") == 0) *out = v / 60;
        else if (strcasecmp(end, "/h") == 0) *out = v / 3600;
        else return false;
        return true;
    }
    *out = v;
    return *end == 0;
}

static const char *after(const char *arg, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncasecmp(arg, prefix, n) == 0 ? arg + n : NULL;
}

/* -pop dist=UNIFORM(1..N) / ZIPF(1..N[,s]) / SEQ / GAUSSIAN / FIXED. */
static int parse_pop(const char *v, stress_opts *o)
{
    stress_dist d;
    sib_err e;
    if (stress_dist_parse(v, &d, &e) < 0) return fail("%s", e.msg);
    o->pop = d;
    o->pop_given = true;
    return 0;
}

int stress_op_find(const stress_opts *o, const char *name)
{
    for (int i = 0; i < o->nops; i++)
        if (strcasecmp(o->ops[i].name, name) == 0) return i;
    return -1;
}

/* "name=w,name=w)" of ratio(...) / ops(...): the run's op types. upper
 * spells names as cassandra-stress prints the built-in ones (WRITE, READ). */
static int parse_ops(const char *list, const char *word, bool upper, stress_opts *o)
{
    char buf[512];
    size_t n = strlen(list);
    if (n < 2 || list[n - 1] != ')' || n >= sizeof(buf)) return fail("expected name=weight,...) in '%s'", word);
    memcpy(buf, list, n - 1);
    buf[n - 1] = 0;
    o->nops = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        int w;
        if (!eq || eq == tok || (size_t)(eq - tok) >= STRESS_OP_NAME || !parse_int(eq + 1, 0, 1000000, &w))
            return fail("bad name=weight in '%s'", word);
        *eq = 0;
        if (o->nops == STRESS_MAX_OPS) return fail("more than 8 operation types in '%s'", word);
        if (stress_op_find(o, tok) >= 0) return fail("operation named twice in '%s'", word);
        stress_op *op = &o->ops[o->nops++];
        for (size_t i = 0; tok[i]; i++) op->name[i] = upper ? (char)toupper((unsigned char)tok[i]) : tok[i];
        op->weight = w;
    }
    int total = 0;
    for (int i = 0; i < o->nops; i++) total += o->ops[i].weight;
    return total > 0 ? 0 : fail("no operation has a weight in '%s'", word);
}

static int parse_command_word(const char *a, stress_opts *o)
{
    const char *v;
    if ((v = after(a, "n="))) {
        if (!stress_parse_count(v, &o->n) || o->n == 0) return fail("bad operation count '%s'", a);
        o->duration_s = 0;
    } else if ((v = after(a, "duration="))) {
        if (!parse_duration(v, &o->duration_s)) return fail("bad duration '%s'", a);
        o->n = 0;
    } else if ((v = after(a, "cl="))) {
        if ((o->cl = cli_client_parse_cl(v)) < 0) return fail("unknown consistency level '%s'", v);
    } else if (strcasecmp(a, "no-warmup") == 0) {
        o->warmup = false;
    } else if ((v = after(a, "ratio(")) && o->cmd == CMD_MIXED) {
        if (parse_ops(v, a, true, o) < 0) return -1;
        for (int i = 0; i < o->nops; i++)
            if (strcmp(o->ops[i].name, "WRITE") && strcmp(o->ops[i].name, "READ"))
                return fail("ratio() takes write and read, not '%s'", o->ops[i].name);
    } else if ((v = after(a, "ops(")) && o->cmd == CMD_USER) {
        return parse_ops(v, a, false, o);
    } else if ((v = after(a, "profile=")) && o->cmd == CMD_USER) {
        o->profile = v;
    } else {
        return fail("unknown option '%s'", a);
    }
    return 0;
}

/* host, host:port, [v6]:port or a bare IPv6 literal (no port). */
static int parse_contact(char *tok, stress_opts *o)
{
    char *host = tok, *colon = strrchr(tok, ':');
    int port = 0;
    if (tok[0] == '[') {
        char *close = strchr(tok, ']');
        if (!close || (close[1] && close[1] != ':')) return fail("bad node '%s' ([v6 address]:port)", tok);
        *close = 0;
        host = tok + 1;
        colon = close[1] ? close + 1 : NULL;
    } else if (colon && strchr(tok, ':') != colon) {
        colon = NULL; /* an IPv6 literal without a port */
    }
    if (colon) {
        *colon = 0;
        if (!parse_int(colon + 1, 1, 65535, &port)) return fail("bad port in node '%s'", colon + 1);
    }
    if (!*host) return fail("%s", "empty node address in -node");
    o->node_ports[o->nnodes] = (uint16_t)port;
    o->nodes[o->nnodes++] = host;
    return 0;
}

static int parse_node(const char *v, stress_opts *o)
{
    /* The strings stay in argv; split a comma list in place. */
    char *s = (char *)v, *save = NULL;
    for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o->nnodes == STRESS_MAX_NODES) return fail("more than %s nodes", "16");
        if (parse_contact(tok, o) < 0) return -1;
    }
    return 0;
}

static int parse_group_word(const char *group, const char *a, stress_opts *o)
{
    const char *v;
    if (strcmp(group, "-node") == 0) return parse_node(a, o);
    if (strcmp(group, "-port") == 0) {
        int p;
        if (!parse_int((v = after(a, "native=")) || (v = after(a, "redis=")) ? v : a, 1, 65535, &p))
            return fail("bad port '%s'", a);
        o->port = (uint16_t)p;
    } else if (strcmp(group, "-rate") == 0) {
        if ((v = after(a, "threads=")) && parse_int(v, 1, 1024, &o->threads)) return 0;
        if (((v = after(a, "fixed=")) || (v = after(a, "throttle="))) && parse_rate(v, &o->rate)) return 0;
        return fail("bad -rate option '%s' (threads=N, fixed=R/s)", a);
    } else if (strcmp(group, "-conns") == 0) {
        if (!parse_int(a, 1, 4096, &o->conns)) return fail("bad -conns '%s'", a);
    } else if (strcmp(group, "-inflight") == 0) {
        if (!parse_int(a, 1, 32768, &o->inflight)) return fail("bad -inflight '%s'", a);
    } else if (strcmp(group, "-col") == 0) {
        uint64_t sz;
        if ((v = after(a, "n="))) return strcasecmp(v, "FIXED(1)") == 0 || strcmp(v, "1") == 0 ? 0 : fail("only one column (C0) is supported: '%s'", a);
        if (!(v = after(a, "size="))) return fail("bad -col option '%s' (size=FIXED(n))", a);
        char buf[32];
        const char *num = after(v, "FIXED(");
        if (num) {
            size_t n = strcspn(num, ")");
            if (n == 0 || n >= sizeof(buf) || strcmp(num + n, ")") != 0) return fail("bad size '%s'", a);
            memcpy(buf, num, n);
            buf[n] = 0;
            num = buf;
        } else {
            num = v;
        }
        if (!stress_parse_count(num, &sz) || sz > STRESS_VALUE_POOL / 2) return fail("bad value size '%s'", a);
        o->value_size = (uint32_t)sz;
    } else if (strcmp(group, "-pop") == 0) {
        char buf[128];
        if ((v = after(a, "seq="))) {
            snprintf(buf, sizeof(buf), "SEQ(%s)", v);
            return parse_pop(buf, o);
        }
        if ((v = after(a, "dist="))) return parse_pop(v, o);
        return fail("bad -pop option '%s' (seq=lo..hi or dist=...)", a);
    } else if (strcmp(group, "-schema") == 0) {
        int rf;
        char tail[4] = "";
        if ((v = after(a, "replication(")) && sscanf(v, "factor=%d%3s", &rf, tail) == 2 && strcmp(tail, ")") == 0 &&
            rf >= 1 && rf <= 32)
            o->rf = rf;
        else
            return fail("bad -schema option '%s' (replication(factor=N))", a);
    } else if (strcmp(group, "-mode") == 0) {
        if (strcasecmp(a, "prepared") == 0) o->prepared = true;
        else if (strcasecmp(a, "unprepared") == 0) o->prepared = false;
        else if (strcasecmp(a, "compression=lz4") == 0) o->lz4 = true;
        else if (strcasecmp(a, "compression=none") == 0) o->lz4 = false;
        else if (strcasecmp(a, "redis") == 0) o->redis = true;
        else if (strcasecmp(a, "native") && strcasecmp(a, "cql3") && strcasecmp(a, "simplenative"))
            return fail("bad -mode option '%s'", a);
    } else if (strcmp(group, "-log") == 0) {
        if ((v = after(a, "file="))) o->log_file = v;
        else if (!after(a, "interval=") && !after(a, "level=")) return fail("bad -log option '%s' (file=path)", a);
    } else {
        return fail("unknown option group '%s'", group);
    }
    return 0;
}

static void set_defaults(stress_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->cl = CQL_ONE;
    o->threads = DEF_THREADS;
    o->conns = DEF_CONNS;
    o->inflight = DEF_INFLIGHT;
    o->value_size = DEF_VALUE;
    o->rf = 1;
    o->prepared = true;
    o->warmup = true;
}

static void keep_command_line(int argc, char **argv, stress_opts *o)
{
    size_t len = 0;
    for (int i = 0; i < argc && len + 2 < sizeof(o->command_line); i++) {
        int w = snprintf(o->command_line + len, sizeof(o->command_line) - len, "%s%s", i ? " " : "", argv[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const stress_op *)a)->name, ((const stress_op *)b)->name);
}

/* Population default: cassandra-stress writes seq=1..n and reads the same
 * range at random, so a read after a write of n keys finds every key. The
 * op types: WRITE or READ alone, mixed READ/WRITE 1:1 unless ratio() said
 * otherwise, sorted by name as cassandra-stress reports them. */
static int finish_defaults(stress_opts *o)
{
    if (!o->pop_given) {
        o->pop.lo = 1;
        o->pop.hi = o->n ? o->n : 1000000;
        o->pop.kind = o->cmd == CMD_WRITE ? DIST_SEQ : DIST_UNIFORM;
    }
    if (o->nnodes == 0) o->nodes[o->nnodes++] = "127.0.0.1";
    if (o->cmd == CMD_WRITE || o->cmd == CMD_READ) {
        o->nops = 1;
        snprintf(o->ops[0].name, STRESS_OP_NAME, "%s", o->cmd == CMD_WRITE ? "WRITE" : "READ");
        o->ops[0].weight = 1;
    } else if (o->cmd == CMD_MIXED && o->nops == 0) {
        o->nops = 2;
        o->ops[0] = (stress_op){"READ", 1};
        o->ops[1] = (stress_op){"WRITE", 1};
    }
    if (o->cmd == CMD_USER) {
        if (!o->profile) return fail("%s", "user needs profile=file.yaml");
        if (o->nops == 0) return fail("%s", "user needs ops(insert=1,...)");
        if (!o->prepared) return fail("%s", "user profiles run prepared statements only (drop -mode unprepared)");
        if (o->redis) return fail("%s", "-mode redis runs write, read and mixed only");
    }
    if (!o->port) o->port = o->redis ? DEF_REDIS_PORT : DEF_PORT; /* (-port was not given) */
    qsort(o->ops, (size_t)o->nops, sizeof(o->ops[0]), by_name);
    return 0;
}

int stress_parse(int argc, char **argv, stress_opts *o)
{
    set_defaults(o);
    keep_command_line(argc, argv, o);
    if (argc < 1) return fail("%s", "missing command (write, read, mixed or user)");
    const char *cmd = argv[0];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        stress_usage(stdout);
        return 1;
    }
    if (!strcasecmp(cmd, "write")) o->cmd = CMD_WRITE;
    else if (!strcasecmp(cmd, "read")) o->cmd = CMD_READ;
    else if (!strcasecmp(cmd, "mixed")) o->cmd = CMD_MIXED;
    else if (!strcasecmp(cmd, "user")) o->cmd = CMD_USER;
    else return fail("unknown command '%s' (write, read, mixed or user)", cmd);
    const char *group = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = 0;
        if (!strcmp(a, "--json")) o->format = OUT_JSON;
        else if (!strcmp(a, "--csv")) o->format = OUT_CSV;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { stress_usage(stdout); return 1; }
        else if (a[0] == '-' && isalpha((unsigned char)a[1])) group = a;
        else if (!group) rc = parse_command_word(a, o);
        else rc = parse_group_word(group, a, o);
        if (rc < 0) return rc;
    }
    if (o->n == 0 && o->duration_s == 0) return fail("%s", "give n=N or duration=T");
    return finish_defaults(o);
}

/* ====================================================================== */
/* The run                                                                */
/* ====================================================================== */

/* Set by SIGINT/SIGTERM; the only mutable static (STYLE.md 5 allows signal flags). */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int shared_init(stress_shared *sh, const stress_opts *o, sib_err *err)
{
    memset(sh, 0, sizeof(*sh));
    sh->o = o;
    ring_init(&sh->ring);
    keygen_init(&sh->keys, &o->pop);
    sh->values = malloc(STRESS_VALUE_POOL);
    if (!sh->values) return sib_err_set(err, SIB_ENOMEM, "value pool");
    sib_rng rng;
    sib_rng_seed(&rng);
    for (size_t i = 0; i < STRESS_VALUE_POOL; i += 8) put_le64(sh->values + i, sib_rng_next(&rng));
    atomic_init(&sh->issued, 0);
    atomic_init(&sh->stop, false);
    atomic_init(&sh->running, 0);
    return 0;
}

/* Moves every worker's interval stats into iv (and resets theirs). */
static void collect(stress_shared *sh, stress_stats *iv, char *last_error, size_t errlen)
{
    stats_reset(iv);
    last_error[0] = 0;
    for (int i = 0; i < sh->o->threads; i++) {
        stress_worker *w = &sh->workers[i];
        pthread_mutex_lock(&w->mu);
        stats_merge(iv, &w->interval);
        stats_reset(&w->interval);
        if (w->last_error[0]) {
            snprintf(last_error, errlen, "%s", w->last_error);
            w->last_error[0] = 0;
        }
        pthread_mutex_unlock(&w->mu);
    }
}

static void sleep_until(int64_t mono_ns)
{
    int64_t now = sib_mono_ns();
    if (mono_ns <= now) return;
    int64_t d = mono_ns - now;
    struct timespec ts = {.tv_sec = d / 1000000000, .tv_nsec = d % 1000000000};
    nanosleep(&ts, NULL); /* EINTR (Ctrl-C) just ends the wait early */
}

static void print_settings(const stress_shared *sh)
{
    const stress_opts *o = sh->o;
    static const char *const cmds[] = {"WRITE", "READ", "MIXED", "USER"};
    FILE *out = o->format == OUT_TEXT ? stdout : stderr;
    char d[64];
    fprintf(out, "******************** Stress Settings ********************\n");
    if (o->redis) fprintf(out, "Command: %s (Redis SET / GET)\n", cmds[o->cmd]);
    else
        fprintf(out, "Command: %s (%s statements), consistency %s\n", cmds[o->cmd],
                o->prepared ? "prepared" : "unprepared", cql_cl_name(o->cl));
    if (o->n) fprintf(out, "  Operations: %llu\n", (unsigned long long)o->n);
    else fprintf(out, "  Duration: %.1f s\n", o->duration_s);
    fprintf(out, "  Ops:");
    for (int i = 0; i < o->nops; i++) fprintf(out, "%s %s=%d", i ? "," : "", o->ops[i].name, o->ops[i].weight);
    fprintf(out, "\nNodes:");
    for (size_t i = 0; i < sh->ring.nnodes; i++) {
        const stress_node *n = &sh->ring.nodes[i];
        fprintf(out, "%s %s", i ? "," : "", n->name);
        if (n->ntokens) fprintf(out, " (%s%s%zu tokens)", n->dc, n->dc[0] ? ", " : "", n->ntokens);
    }
    fprintf(out, "%s%s\n", o->lz4 ? " (lz4)" : "",
            sh->routing ? ", token-aware routing to each partition's primary replica" : "");
    fprintf(out, "Rate: threads=%d, connections/thread=%d, in flight/connection=%d", o->threads, o->conns, o->inflight);
    if (o->rate > 0) fprintf(out, ", fixed=%.0f/s", o->rate);
    fprintf(out, "\n");
    if (o->cmd == CMD_USER) {
        fprintf(out, "Profile: %s (keyspace %s)\n", o->profile, sh->profile->keyspace);
        if (o->pop_given) fprintf(out, "Partitions: %s\n", stress_dist_name(&o->pop, d, sizeof(d)));
        for (int i = 0; i < o->nops; i++) fprintf(out, "  %s: %s\n", o->ops[i].name, sh->defs[i].cql);
        fprintf(out, "\n");
        return;
    }
    fprintf(out, "Columns: C0 size=FIXED(%u)\nPopulation: %s\n", o->value_size,
            stress_dist_name(&o->pop, d, sizeof(d)));
    if (o->redis) fprintf(out, "Keys: %d-byte strings, values of C0's size\n\n", STRESS_KEY_LEN);
    else fprintf(out, "Schema: keyspace1.standard1, replication factor %d\n\n", o->rf);
}

/* -mode redis: the contact points as they are (no ring, no routing). */
static int redis_nodes(stress_shared *sh, sib_err *err)
{
    const stress_opts *o = sh->o;
    for (size_t i = 0; i < o->nnodes; i++)
        if (ring_add_node(&sh->ring, o->nodes[i], o->node_ports[i] ? o->node_ports[i] : o->port, NULL, NULL) < 0)
            return sib_err_set(err, SIB_EINVAL, "node address '%s' too long", o->nodes[i]);
    return 0;
}

/* Loads the profile, reads the ring (ring.c), creates the schema and
 * learns what each op binds on the first reachable contact point.
 * Requests are routed by token when several nodes have tokens. */
static int setup(stress_shared *sh, sib_err *err)
{
    const stress_opts *o = sh->o;
    int rc = o->cmd == CMD_USER ? profile_load(o->profile, &sh->profile, err) : 0;
    if (rc < 0) return rc;
    if (o->redis) {
        rc = redis_nodes(sh, err);
        return rc < 0 ? rc : workload_setup(sh, NULL, err); /* no schema: what each op sends */
    }
    cli_client *cl;
    rc = ring_discover(&sh->ring, o, &cl, err);
    if (rc < 0) return rc;
    sh->routing = sh->ring.nnodes > 1 && sh->ring.ntokens > 0;
    rc = workload_setup(sh, cl, err);
    cli_client_close(cl);
    return rc;
}

static bool any_ops(const stress_stats *s)
{
    for (int t = 0; t < STRESS_MAX_OPS; t++)
        if (s->ops[t]) return true;
    return false;
}

static int run(const stress_opts *o, sib_err *err)
{
    stress_shared sh;
    int rc = shared_init(&sh, o, err);
    if (rc == 0) rc = setup(&sh, err);
    stress_report *rep = rc == 0 ? report_create(o, &sh.ring, sh.routing, err) : NULL;
    if (rc == 0 && !rep) rc = SIB_ENOMEM;
    if (rc < 0) goto out;
    print_settings(&sh);
    sh.start_ns = sib_mono_ns();
    if (o->duration_s > 0) sh.end_ns = sh.start_ns + (int64_t)(o->duration_s * 1e9);
    rc = stress_workers_start(&sh, err);
    if (rc < 0) goto out;
    stress_stats *iv = malloc(sizeof(*iv));
    char last_error[512];
    int64_t tick = sh.start_ns, prev = sh.start_ns;
    while (iv && atomic_load(&sh.running) > 0) {
        tick += 1000000000;
        while (atomic_load(&sh.running) > 0 && sib_mono_ns() < tick) {
            if (interrupted) atomic_store(&sh.stop, true);
            sleep_until(SIB_MIN(tick, sib_mono_ns() + 50000000));
        }
        if (atomic_load(&sh.running) == 0) break; /* the rest goes in the final collect */
        int64_t now = sib_mono_ns();
        collect(&sh, iv, last_error, sizeof(last_error));
        report_interval(rep, (double)(now - sh.start_ns) / 1e9, (double)(now - prev) / 1e9, iv, last_error);
        prev = now;
    }
    stress_workers_join(&sh);
    /* The run lasted until its last worker finished, not until this thread
     * (which looks every 50 ms) noticed: that was up to 7% of a short run. */
    int64_t end = sh.start_ns;
    for (int i = 0; i < o->threads; i++) end = SIB_MAX(end, sh.workers[i].end_ns);
    if (end == sh.start_ns) end = sib_mono_ns(); /* no worker ran */
    double elapsed = (double)(end - sh.start_ns) / 1e9;
    if (iv) {
        /* What finished between the last tick and the join; usually nothing. */
        collect(&sh, iv, last_error, sizeof(last_error));
        if (any_ops(iv)) report_interval(rep, elapsed, (double)(sib_mono_ns() - prev) / 1e9, iv, last_error);
    }
    free(iv);
    for (int i = 0; i < o->threads && rc == 0; i++) {
        if (sh.workers[i].rc < 0) rc = sib_err_set(err, sh.workers[i].rc, "worker %d: %s", i, sh.workers[i].fail);
    }
    int frc = report_finish(rep, elapsed, err);
    if (rc == 0) rc = frc;
out:
    report_destroy(rep);
    if (sh.workers)
        for (int i = 0; i < o->threads; i++) pthread_mutex_destroy(&sh.workers[i].mu);
    free(sh.workers);
    free(sh.values);
    workload_destroy(sh.wl);
    profile_destroy(sh.profile);
    ring_free(&sh.ring);
    return rc;
}

int main(int argc, char **argv)
{
    stress_opts o;
    int prc = stress_parse(argc - 1, argv + 1, &o);
    if (prc != 0) {
        if (prc < 0) stress_usage(stderr);
        return prc < 0 ? 1 : 0;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sib_err err = {0};
    int rc = run(&o, &err);
    if (rc < 0) {
        fprintf(stderr, "sibyl-stress: %s\n", err.msg);
        return 1;
    }
    return 0;
}
