/* main.c: sibyl-stress, a cassandra-stress-like load generator for the CQL
 * native protocol.
 *
 * Sequence: parse options; connect once to the first node, create keyspace1
 * (SimpleStrategy, -schema replication(factor=N)) and keyspace1.standard1
 * (key blob PRIMARY KEY, "C0" blob) as cassandra-stress does; start the
 * workers; every second collect their interval stats and print a progress
 * line; when they are done (n reached, duration over, or Ctrl-C) print the
 * summary and write the log. Exit status: 0 when the run completed (errors
 * are counted, not fatal, as in cassandra-stress), 1 when it could not run.
 *
 * Command line:
 *   sibyl-stress <write|read|mixed> [n=N | duration=30s] [cl=ONE] [no-warmup]
 *                [ratio(write=1,read=3)]
 *                [-node host[,host...]] [-port native=9042]
 *                [-rate threads=N [fixed=R/s | throttle=R/s]]
 *                [-conns N] [-inflight N]
 *                [-col size=FIXED(34)] [-pop seq=1..N | dist=UNIFORM(1..N) | dist=ZIPF(1..N[,s])]
 *                [-schema replication(factor=1)] [-mode native cql3 prepared|unprepared [compression=lz4]]
 *                [-log file=out.json] [--json | --csv]
 *
 * As in cassandra-stress, the words after the command belong to it and
 * every "-group" takes the words up to the next "-group". Counts accept
 * k/m/b suffixes (n=2M). Defaults follow cassandra-stress where it has one
 * (cl=ONE, FIXED(34) values, keyspace1.standard1, seq keys for write and
 * uniform keys over the same range for read); the concurrency defaults
 * (2 threads x 8 connections x 8 in flight) suit one small node.
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

enum { DEF_THREADS = 2, DEF_CONNS = 8, DEF_INFLIGHT = 8, DEF_VALUE = 34, DEF_PORT = 9042 };

void stress_usage(FILE *f)
{
    fputs("usage: sibyl-stress <write|read|mixed> [n=N | duration=30s] [cl=ONE] [ratio(write=1,read=3)]\n"
          "        [-node host[,host...]] [-port native=9042]\n"
          "        [-rate threads=N [fixed=R/s]] [-conns N] [-inflight N]\n"
          "        [-col size=FIXED(34)]\n"
          "        [-pop seq=1..N | dist=UNIFORM(1..N) | dist=ZIPF(1..N[,exponent])]\n"
          "        [-schema replication(factor=1)] [-mode native cql3 prepared|unprepared [compression=lz4]]\n"
          "        [-log file=out.json|out.csv] [--json | --csv]\n"
          "\n"
          "  -rate threads=N   client threads (default 2)\n"
          "  -conns N          connections per thread (default 8)\n"
          "  -inflight N       requests in flight per connection (default 8)\n"
          "  fixed=R/s         fixed total rate; latency counts from each request's intended start\n"
          "  --json / --csv    print the interval log and summary as JSON / CSV on stdout\n",
          f);
}

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "sibyl-stress: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return -1;
}

/* An unsigned count with an optional k/m/b suffix. */
static bool parse_count(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s)) return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s) return false;
    switch (tolower((unsigned char)*end)) {
    case 'k': v *= 1e3; end++; break;
    case 'm': v *= 1e6; end++; break;
    case 'b': v *= 1e9; end++; break;
    default: break;
    }
    if (*end || v < 0 || v > 1.8e19) return false;
    *out = (uint64_t)v;
    return true;
}

static bool parse_int(const char *s, int lo, int hi, int *out)
{
    uint64_t v;
    if (!parse_count(s, &v) || v < (uint64_t)lo || v > (uint64_t)hi) return false;
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

/* "lo..hi" into the population range. */
static bool parse_range(const char *s, uint64_t *lo, uint64_t *hi, const char **rest)
{
    char buf[64];
    const char *dots = strstr(s, "..");
    if (!dots || (size_t)(dots - s) >= sizeof(buf)) return false;
    memcpy(buf, s, (size_t)(dots - s));
    buf[dots - s] = 0;
    if (!parse_count(buf, lo)) return false;
    const char *p = dots + 2;
    size_t n = strspn(p, "0123456789kKmMbB.");
    if (n == 0 || n >= sizeof(buf)) return false;
    memcpy(buf, p, n);
    buf[n] = 0;
    if (!parse_count(buf, hi) || *hi < *lo) return false;
    *rest = p + n;
    return true;
}

/* "UNIFORM(1..N)", "ZIPF(1..N)", "ZIPF(1..N,1.1)", "SEQ(1..N)". */
static int parse_dist(const char *v, stress_opts *o)
{
    const char *args;
    if ((args = after(v, "UNIFORM("))) o->dist = DIST_UNIFORM;
    else if ((args = after(v, "ZIPF("))) o->dist = DIST_ZIPF;
    else if ((args = after(v, "ZIPFIAN("))) o->dist = DIST_ZIPF;
    else if ((args = after(v, "SEQ("))) o->dist = DIST_SEQ;
    else return fail("unknown distribution '%s' (UNIFORM(lo..hi), ZIPF(lo..hi[,s]) or SEQ(lo..hi))", v);
    const char *rest;
    if (!parse_range(args, &o->pop_lo, &o->pop_hi, &rest)) return fail("bad range in '%s'", v);
    if (*rest == ',') {
        char *end;
        o->zipf_s = strtod(rest + 1, &end);
        if (end == rest + 1 || o->zipf_s <= 0) return fail("bad exponent in '%s'", v);
        rest = end;
    }
    if (strcmp(rest, ")") != 0) return fail("expected ')' at the end of '%s'", v);
    o->pop_given = true;
    return 0;
}

static int parse_command_word(const char *a, stress_opts *o)
{
    const char *v;
    if ((v = after(a, "n="))) {
        if (!parse_count(v, &o->n) || o->n == 0) return fail("bad operation count '%s'", a);
        o->duration_s = 0;
    } else if ((v = after(a, "duration="))) {
        if (!parse_duration(v, &o->duration_s)) return fail("bad duration '%s'", a);
        o->n = 0;
    } else if ((v = after(a, "cl="))) {
        if ((o->cl = sib_client_parse_cl(v)) < 0) return fail("unknown consistency level '%s'", v);
    } else if (strcasecmp(a, "no-warmup") == 0) {
        o->warmup = false;
    } else if ((v = after(a, "ratio("))) {
        int w = 0, r = 0;
        char tail[4] = "";
        if (sscanf(v, "write=%d,read=%d%3s", &w, &r, tail) == 3 || sscanf(v, "read=%d,write=%d%3s", &r, &w, tail) == 3) {
            if (strcmp(tail, ")") != 0 || w < 0 || r < 0 || w + r == 0) return fail("bad ratio '%s'", a);
            o->ratio[OP_WRITE] = w;
            o->ratio[OP_READ] = r;
        } else {
            return fail("bad ratio '%s' (ratio(write=1,read=3))", a);
        }
    } else {
        return fail("unknown option '%s'", a);
    }
    return 0;
}

static int parse_node(const char *v, stress_opts *o)
{
    /* The strings stay in argv; split a comma list in place. */
    char *s = (char *)v, *save = NULL;
    for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (o->nnodes == STRESS_MAX_NODES) return fail("more than %s nodes", "16");
        o->nodes[o->nnodes++] = tok;
    }
    return 0;
}

static int parse_group_word(const char *group, const char *a, stress_opts *o)
{
    const char *v;
    if (strcmp(group, "-node") == 0) return parse_node(a, o);
    if (strcmp(group, "-port") == 0) {
        int p;
        if (!parse_int((v = after(a, "native=")) ? v : a, 1, 65535, &p)) return fail("bad port '%s'", a);
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
        if (!parse_count(num, &sz) || sz > STRESS_VALUE_POOL / 2) return fail("bad value size '%s'", a);
        o->value_size = (uint32_t)sz;
    } else if (strcmp(group, "-pop") == 0) {
        const char *rest;
        if ((v = after(a, "seq="))) {
            if (!parse_range(v, &o->pop_lo, &o->pop_hi, &rest) || *rest) return fail("bad range '%s'", a);
            o->dist = DIST_SEQ;
            o->pop_given = true;
        } else if ((v = after(a, "dist="))) {
            return parse_dist(v, o);
        } else {
            return fail("bad -pop option '%s' (seq=lo..hi or dist=...)", a);
        }
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
    o->port = DEF_PORT;
    o->threads = DEF_THREADS;
    o->conns = DEF_CONNS;
    o->inflight = DEF_INFLIGHT;
    o->value_size = DEF_VALUE;
    o->rf = 1;
    o->prepared = true;
    o->warmup = true;
    o->ratio[OP_WRITE] = 1;
    o->ratio[OP_READ] = 1;
    o->zipf_s = 0.99;
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

/* Population default: cassandra-stress writes seq=1..n and reads the same
 * range at random, so a read after a write of n keys finds every key. */
static void finish_defaults(stress_opts *o)
{
    if (!o->pop_given) {
        o->pop_lo = 1;
        o->pop_hi = o->n ? o->n : 1000000;
        o->dist = o->cmd == CMD_WRITE ? DIST_SEQ : DIST_UNIFORM;
    }
    if (o->nnodes == 0) o->nodes[o->nnodes++] = "127.0.0.1";
    if (o->cmd == CMD_WRITE) o->ratio[OP_READ] = 0;
    if (o->cmd == CMD_READ) o->ratio[OP_WRITE] = 0;
}

int stress_parse(int argc, char **argv, stress_opts *o)
{
    set_defaults(o);
    keep_command_line(argc, argv, o);
    if (argc < 1) return fail("%s", "missing command (write, read or mixed)");
    const char *cmd = argv[0];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        stress_usage(stdout);
        return 1;
    }
    if (!strcasecmp(cmd, "write")) o->cmd = CMD_WRITE;
    else if (!strcasecmp(cmd, "read")) o->cmd = CMD_READ;
    else if (!strcasecmp(cmd, "mixed")) o->cmd = CMD_MIXED;
    else return fail("unknown command '%s' (write, read or mixed)", cmd);
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
    finish_defaults(o);
    return 0;
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

static int check(sib_result *r, int rc, const char *what, sib_err *err)
{
    if (rc == 0 && r->kind == SIB_RESULT_ERROR) {
        sib_result_to_err(r, err);
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "%.64s: %.400s", what, err->msg);
        memcpy(err->msg, msg, sizeof(msg));
        rc = err->code;
    }
    sib_result_free(r);
    return rc;
}

/* Creates the schema cassandra-stress uses (if missing). */
static int create_schema(const stress_opts *o, sib_err *err)
{
    sib_client *cl;
    sib_client_opts co = {.host = o->nodes[0], .port = o->port, .lz4 = o->lz4};
    int rc = sib_client_connect(&cl, &co, err);
    if (rc < 0) return rc;
    char ddl[512];
    snprintf(ddl, sizeof(ddl),
             "CREATE KEYSPACE IF NOT EXISTS keyspace1 WITH replication = "
             "{'class': 'SimpleStrategy', 'replication_factor': %d} AND durable_writes = true",
             o->rf);
    sib_result r;
    rc = check(&r, sib_client_query(cl, ddl, CQL_ONE, 0, NULL, &r, err), "create keyspace", err);
    if (rc == 0) {
        const char *table = "CREATE TABLE IF NOT EXISTS keyspace1.standard1 (key blob PRIMARY KEY, \"C0\" blob)";
        rc = check(&r, sib_client_query(cl, table, CQL_ONE, 0, NULL, &r, err), "create table", err);
    }
    sib_client_close(cl);
    return rc;
}

static int shared_init(stress_shared *sh, const stress_opts *o, sib_err *err)
{
    memset(sh, 0, sizeof(*sh));
    sh->o = o;
    keygen_init(&sh->keys, o->dist, o->pop_lo, o->pop_hi, o->zipf_s);
    sh->values = malloc(STRESS_VALUE_POOL);
    if (!sh->values) return sib_err_set(err, SIB_ENOMEM, "value pool");
    sib_rng rng;
    sib_rng_seed(&rng);
    for (size_t i = 0; i < STRESS_VALUE_POOL; i += 8) put_le64(sh->values + i, sib_rng_next(&rng));
    snprintf(sh->write_cql, sizeof(sh->write_cql), "INSERT INTO keyspace1.standard1 (key, \"C0\") VALUES (?, ?)");
    snprintf(sh->read_cql, sizeof(sh->read_cql), "SELECT key, \"C0\" FROM keyspace1.standard1 WHERE key = ?");
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

static void print_settings(const stress_opts *o)
{
    static const char *const dists[] = {"SEQ", "UNIFORM", "ZIPF"};
    FILE *out = o->format == OUT_TEXT ? stdout : stderr;
    fprintf(out, "******************** Stress Settings ********************\n");
    fprintf(out, "Command: %s (%s statements), consistency %s\n",
            o->cmd == CMD_WRITE ? "WRITE" : o->cmd == CMD_READ ? "READ" : "MIXED",
            o->prepared ? "prepared" : "unprepared", cql_cl_name(o->cl));
    if (o->n) fprintf(out, "  Operations: %llu\n", (unsigned long long)o->n);
    else fprintf(out, "  Duration: %.1f s\n", o->duration_s);
    if (o->cmd == CMD_MIXED) fprintf(out, "  Ratio: write=%d, read=%d\n", o->ratio[OP_WRITE], o->ratio[OP_READ]);
    fprintf(out, "Nodes: ");
    for (size_t i = 0; i < o->nnodes; i++) fprintf(out, "%s%s", i ? "," : "", o->nodes[i]);
    fprintf(out, " port %u%s\n", o->port, o->lz4 ? " (lz4)" : "");
    fprintf(out, "Rate: threads=%d, connections/thread=%d, in flight/connection=%d", o->threads, o->conns, o->inflight);
    if (o->rate > 0) fprintf(out, ", fixed=%.0f/s", o->rate);
    fprintf(out, "\nColumns: C0 size=FIXED(%u)\nPopulation: %s(%llu..%llu)\n", o->value_size, dists[o->dist],
            (unsigned long long)o->pop_lo, (unsigned long long)o->pop_hi);
    fprintf(out, "Schema: keyspace1.standard1, replication factor %d\n\n", o->rf);
}

static int run(const stress_opts *o, sib_err *err)
{
    stress_shared sh;
    int rc = shared_init(&sh, o, err);
    if (rc == 0) rc = create_schema(o, err);
    stress_report *rep = rc == 0 ? report_create(o, err) : NULL;
    if (rc == 0 && !rep) rc = SIB_ENOMEM;
    if (rc < 0) goto out;
    print_settings(o);
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
    double elapsed = (double)(sib_mono_ns() - sh.start_ns) / 1e9;
    if (iv) {
        /* What finished between the last tick and the join; usually nothing. */
        collect(&sh, iv, last_error, sizeof(last_error));
        if (iv->ops[OP_WRITE] + iv->ops[OP_READ] > 0)
            report_interval(rep, elapsed, (double)(sib_mono_ns() - prev) / 1e9, iv, last_error);
    }
    free(iv);
    for (int i = 0; i < o->threads && rc == 0; i++) {
        if (sh.workers[i].rc < 0) rc = sib_err_set(err, sh.workers[i].rc, "worker %d: %s", i, sh.workers[i].last_error);
    }
    int frc = report_finish(rep, elapsed, err);
    if (rc == 0) rc = frc;
out:
    report_destroy(rep);
    if (sh.workers)
        for (int i = 0; i < o->threads; i++) pthread_mutex_destroy(&sh.workers[i].mu);
    free(sh.workers);
    free(sh.values);
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
