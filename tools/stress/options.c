/* options.c: the cassandra-stress-like command line of sibyl-stress.
 *
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
#include <stdlib.h>
#include <strings.h>

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
