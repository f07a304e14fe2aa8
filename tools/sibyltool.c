/* sibyltool: the nodetool of Sibyl. Talks to one node's HTTP admin API
 * (admin/admin.h) and prints what nodetool prints, closely enough that an
 * operator reads it without help.
 *
 *   sibyltool [-h host] [-p admin_port] [--token T | --token-file F] <command> [args]
 *
 * When the node sets admin_auth_token, every request carries it as
 * "Authorization: Bearer <token>": from --token, else --token-file (first
 * line), else the SIBYL_ADMIN_TOKEN environment variable.
 *
 * Commands: status, info [-T], ring, describering <ks>,
 * getendpoints [-T] <ks> <table> <key>, flush [ks [table...]],
 * compact [ks [table...]], compactionstats, tablestats [ks[.table]...],
 * sstableexpiredblockers <ks> <table>,
 * gossipinfo, describecluster, removenode <host id>.
 *
 * HTTP through libcurl, JSON through jansson. Exit status: 0 on success,
 * 1 when the node is unreachable or answers an error (the message goes to
 * stderr), 2 on a usage error.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EXIT_USAGE = 2 };

typedef struct tool {
    const char *host;
    int port;
    bool tokens; /* -T: show every token */
    char *auth;  /* "Authorization: Bearer ..." or NULL */
    CURL *curl;
} tool;

typedef struct body {
    char *p;
    size_t len;
} body;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    body *b = ud;
    size_t add = size * n;
    char *np = realloc(b->p, b->len + add + 1);
    if (!np) return 0; /* curl reports a write error */
    memcpy(np + b->len, p, add);
    b->p = np;
    b->len += add;
    b->p[b->len] = 0;
    return add;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sibyltool: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* Builds "/seg0/seg1..." with every segment percent-encoded, so keys and
 * names with '/', ':' or spaces reach the node intact. */
static char *make_path(tool *t, const char *endpoint, const char *const *segs, size_t n)
{
    size_t cap = strlen(endpoint) + 2;
    char *path = malloc(cap);
    if (!path) die("out of memory");
    snprintf(path, cap, "/%s", endpoint);
    for (size_t i = 0; i < n; i++) {
        char *esc = curl_easy_escape(t->curl, segs[i], 0);
        if (!esc) die("out of memory");
        size_t need = strlen(path) + strlen(esc) + 2;
        char *np = realloc(path, need);
        if (!np) die("out of memory");
        path = np;
        strcat(path, "/");
        strcat(path, esc);
        curl_free(esc);
    }
    return path;
}

/* One request; returns the parsed JSON (caller decrefs) or exits with the
 * node's error message. */
static json_t *call(tool *t, const char *method, const char *endpoint, const char *const *segs, size_t n)
{
    char *path = make_path(t, endpoint, segs, n);
    char url[2048];
    snprintf(url, sizeof url, "http://%s:%d%s", t->host, t->port, path);
    free(path);
    body b = {0};
    curl_easy_reset(t->curl);
    curl_easy_setopt(t->curl, CURLOPT_URL, url);
    curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(t->curl, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
    struct curl_slist *hdrs = NULL;
    if (t->auth && !(hdrs = curl_slist_append(NULL, t->auth))) die("out of memory");
    if (hdrs) curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, hdrs);
    if (!strcmp(method, "POST")) {
        curl_easy_setopt(t->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, "");
    }
    CURLcode rc = curl_easy_perform(t->curl);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK)
        die("Failed to connect to '%s:%d' - %s.", t->host, t->port, curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    json_error_t jerr;
    json_t *j = b.p ? json_loads(b.p, 0, &jerr) : NULL;
    if (status != 200) {
        const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
        fprintf(stderr, "error: %s\n", msg ? msg : (b.p ? b.p : "no answer"));
        die("the node answered HTTP %ld to %s %s", status, method, endpoint);
    }
    if (!j) die("the node sent a reply that is not JSON (%s)", jerr.text);
    free(b.p);
    return j;
}

/* ---- formatting ---- */

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "?";
}

static long long jint(const json_t *o, const char *k) { return (long long)json_integer_value(json_object_get(o, k)); }

static double jnum(const json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

/* nodetool's FileUtils.stringifyFileSize: binary units, two decimals. */
static const char *human_size(double v, char *buf, size_t cap)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof *units) {
        v /= 1024.0;
        u++;
    }
    if (u == 0) snprintf(buf, cap, "%.0f %s", v, units[u]);
    else snprintf(buf, cap, "%.2f %s", v, units[u]);
    return buf;
}

/* A member's load: "?" when gossip has not brought it yet (JSON null). */
static const char *load_of(const json_t *o, char *buf, size_t cap)
{
    if (!json_is_number(json_object_get(o, "load_bytes"))) return snprintf(buf, cap, "?"), buf;
    return human_size((double)jint(o, "load_bytes"), buf, cap);
}

static void underline(const char *title)
{
    size_t n = strlen(title);
    printf("%s\n", title);
    for (size_t i = 0; i < n; i++) putchar('=');
    putchar('\n');
}

/* ---- commands ---- */

static int cmd_status(tool *t, int argc, char **argv)
{
    json_t *j = call(t, "GET", "status", NULL, 0);
    json_t *nodes = json_object_get(j, "nodes");
    /* Group by datacenter, in the order nodes arrive. */
    size_t n = json_array_size(nodes);
    bool *done = calloc(n ? n : 1, sizeof *done);
    if (!done) die("out of memory");
    for (size_t i = 0; i < n; i++) {
        if (done[i]) continue;
        const char *dc = jstr(json_array_get(nodes, i), "dc");
        char title[128];
        snprintf(title, sizeof title, "Datacenter: %s", dc);
        underline(title);
        printf("Status=Up/Down\n|/ State=Normal/Leaving/Joining/Moving\n");
        int aw = 7; /* "Address" */
        for (size_t k = i; k < n; k++) {
            int l = (int)strlen(jstr(json_array_get(nodes, k), "address"));
            if (l > aw) aw = l;
        }
        printf("--  %-*s  %-10s  %-6s  %-16s  %-36s  %s\n", aw, "Address", "Load", "Tokens", "Owns (effective)",
               "Host ID", "Rack");
        for (size_t k = i; k < n; k++) {
            json_t *nd = json_array_get(nodes, k);
            if (strcmp(jstr(nd, "dc"), dc)) continue;
            done[k] = true;
            char load[32], owns[16];
            load_of(nd, load, sizeof load);
            snprintf(owns, sizeof owns, "%.1f%%", jnum(nd, "owns"));
            printf("%s%s  %-*s  %-10s  %-6lld  %-16s  %-36s  %s\n", jstr(nd, "status"), jstr(nd, "state"), aw,
                   jstr(nd, "address"), load, jint(nd, "tokens"), owns, jstr(nd, "host_id"), jstr(nd, "rack"));
        }
        putchar('\n');
    }
    free(done);
    json_decref(j);
    return 0;
}

static int cmd_info(tool *t, int argc, char **argv)
{
    json_t *j = call(t, "GET", "info", NULL, 0);
    char load[32];
    json_t *cl = json_object_get(j, "commitlog");
    printf("%-23s: %s\n", "ID", jstr(j, "id"));
    printf("%-23s: %s\n", "Gossip active", json_is_true(json_object_get(j, "gossip_active")) ? "true" : "false");
    printf("Native Transport active: %s\n",
           json_is_true(json_object_get(j, "native_transport_active")) ? "true" : "false");
    printf("%-23s: %s\n", "Load", human_size((double)jint(j, "load_bytes"), load, sizeof load));
    printf("%-23s: %lld\n", "Generation No", jint(j, "generation"));
    printf("%-23s: %lld\n", "Uptime (seconds)", jint(j, "uptime_seconds"));
    printf("%-23s: %.2f / %.2f\n", "Heap Memory (MB)", (double)jint(j, "heap_used_bytes") / 1048576.0,
           (double)jint(j, "heap_total_bytes") / 1048576.0);
    printf("%-23s: %.2f\n", "Memtable Memory (MB)", (double)jint(j, "memtable_bytes") / 1048576.0);
    printf("%-23s: %s\n", "Data Center", jstr(j, "dc"));
    printf("%-23s: %s\n", "Rack", jstr(j, "rack"));
    printf("%-23s: %lld\n", "Exceptions", jint(j, "errors"));
    printf("%-23s: %lld bytes written, %lld segments, %lld syncs, %lld pending\n", "Commitlog",
           jint(cl, "bytes_written"), jint(cl, "segments"), jint(cl, "syncs"), jint(cl, "pending"));
    printf("%-23s: %s\n", "Cluster Name", jstr(j, "cluster_name"));
    printf("%-23s: %s\n", "Release Version", jstr(j, "release_version"));
    json_t *toks = json_object_get(j, "tokens");
    if (t->tokens) {
        for (size_t i = 0; i < json_array_size(toks); i++)
            printf("%-23s: %" JSON_INTEGER_FORMAT "\n", "Token", json_integer_value(json_array_get(toks, i)));
    } else {
        printf("%-23s: (invoke with -T/--tokens to see all %zu tokens)\n", "Token", json_array_size(toks));
    }
    json_decref(j);
    return 0;
}

static int cmd_ring(tool *t, int argc, char **argv)
{
    json_t *j = call(t, "GET", "ring", NULL, 0);
    json_t *ring = json_object_get(j, "ring");
    size_t n = json_array_size(ring);
    if (!n) { json_decref(j); return 0; }
    const char *dc = jstr(json_array_get(ring, 0), "dc");
    printf("\nDatacenter: %s\n==========\n", dc);
    printf("%-16s%-12s%-7s%-8s%-16s%-20s%s\n", "Address", "Rack", "Status", "State", "Load", "Owns", "Token");
    /* nodetool prints the last token first, alone: the first range wraps from it. */
    printf("%-79s%" JSON_INTEGER_FORMAT "\n", "", json_integer_value(json_object_get(json_array_get(ring, n - 1), "token")));
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(ring, i);
        char load[32], owns[16];
        load_of(e, load, sizeof load);
        snprintf(owns, sizeof owns, "%.2f%%", jnum(e, "owns"));
        printf("%-16s%-12s%-7s%-8s%-16s%-20s%" JSON_INTEGER_FORMAT "\n", jstr(e, "endpoint"), jstr(e, "rack"),
               jstr(e, "status"), jstr(e, "state"), load, owns, json_integer_value(json_object_get(e, "token")));
    }
    putchar('\n');
    json_decref(j);
    return 0;
}

static void print_list(const json_t *arr)
{
    for (size_t i = 0; i < json_array_size(arr); i++)
        printf("%s%s", i ? ", " : "", json_string_value(json_array_get(arr, i)));
}

static int cmd_describering(tool *t, int argc, char **argv)
{
    if (argc != 1) { fprintf(stderr, "usage: sibyltool describering <keyspace>\n"); return EXIT_USAGE; }
    const char *segs[] = {argv[0]};
    json_t *j = call(t, "GET", "describering", segs, 1);
    printf("Schema Version:%s\nTokenRange: \n", jstr(j, "schema_version"));
    json_t *ranges = json_object_get(j, "ranges");
    for (size_t i = 0; i < json_array_size(ranges); i++) {
        json_t *r = json_array_get(ranges, i);
        printf("\tTokenRange(start_token:%lld, end_token:%lld, endpoints:[", jint(r, "start_token"),
               jint(r, "end_token"));
        print_list(json_object_get(r, "endpoints"));
        printf("], rpc_endpoints:[");
        print_list(json_object_get(r, "rpc_endpoints"));
        printf("], endpoint_details:[");
        json_t *d = json_object_get(r, "endpoint_details");
        for (size_t k = 0; k < json_array_size(d); k++) {
            json_t *e = json_array_get(d, k);
            printf("%sEndpointDetails(host:%s, datacenter:%s, rack:%s)", k ? ", " : "", jstr(e, "host"),
                   jstr(e, "datacenter"), jstr(e, "rack"));
        }
        printf("])\n");
    }
    json_decref(j);
    return 0;
}

static int cmd_getendpoints(tool *t, int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: sibyltool getendpoints [-T] <keyspace> <table> <key>\n"); return EXIT_USAGE; }
    const char *segs[] = {argv[0], argv[1], argv[2]};
    json_t *j = call(t, "GET", "endpoints", segs, 3);
    /* nodetool prints only the endpoints; -T adds the token first. */
    if (t->tokens) printf("Token: %lld\n", jint(j, "token"));
    json_t *eps = json_object_get(j, "endpoints");
    for (size_t i = 0; i < json_array_size(eps); i++) printf("%s\n", json_string_value(json_array_get(eps, i)));
    json_decref(j);
    return 0;
}

/* flush / compact: [ks [table...]], one call per table like nodetool. */
static int cmd_table_op(tool *t, const char *op, int argc, char **argv)
{
    if (argc <= 1) {
        const char *segs[] = {argc ? argv[0] : NULL};
        json_decref(call(t, "POST", op, segs, (size_t)argc));
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *segs[] = {argv[0], argv[i]};
        json_decref(call(t, "POST", op, segs, 2));
    }
    return 0;
}

/* Like nodetool flush, returns once the flushes are live: the node starts
 * them and /info counts the ones still pending (bounded wait). */
static int cmd_flush(tool *t, int argc, char **argv)
{
    int rc = cmd_table_op(t, "flush", argc, argv);
    for (int i = 0; !rc && i < 1200; i++) {
        json_t *j = call(t, "GET", "info", NULL, 0);
        json_int_t pending = json_integer_value(json_object_get(j, "flushes_pending"));
        json_decref(j);
        if (pending == 0) return 0;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!rc) fprintf(stderr, "sibyltool: flush still pending after 60 s\n");
    return rc ? rc : 1;
}
static int cmd_compact(tool *t, int argc, char **argv) { return cmd_table_op(t, "compact", argc, argv); }

/* nodetool removenode <host id>: the node refuses a live node or itself
 * with Cassandra's messages (printed by call). The removal is complete
 * when the call returns: no data is streamed (docs/membership.md). */
static int cmd_removenode(tool *t, int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "sibyltool: usage: removenode <host id>\n");
        return EXIT_USAGE;
    }
    const char *segs[] = {argv[0]};
    json_decref(call(t, "POST", "removenode", segs, 1));
    return 0;
}

/* Cassandra's entry for one SSTable: "[<sstable> (minTS = .., maxTS = ..,
 * maxLDT = .., diskSize = ..)], " (its trailing comma included). */
static void print_brief(const json_t *b)
{
    printf("[%s (minTS = %lld, maxTS = %lld, maxLDT = %lld, diskSize = %lld)], ", jstr(b, "sstable"),
           jint(b, "min_ts"), jint(b, "max_ts"), jint(b, "max_ldt"), jint(b, "disk_size"));
}

/* sstableexpiredblockers <keyspace> <table>, in the words of Cassandra's
 * offline tool of that name, but asked of the running node (so the
 * memtables can be a blocker too). */
static int cmd_expiredblockers(tool *t, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "sibyltool: usage: sstableexpiredblockers <keyspace> <table>\n");
        return EXIT_USAGE;
    }
    const char *segs[] = {argv[0], argv[1]};
    json_t *j = call(t, "GET", "expiredblockers", segs, 2);
    if (!jint(j, "sstable_count")) {
        printf("No sstables for %s.%s\n", argv[0], argv[1]);
        json_decref(j);
        return 1;
    }
    json_t *bs = json_object_get(j, "blockers");
    for (size_t i = 0; i < json_array_size(bs); i++) {
        json_t *b = json_array_get(bs, i), *blocked = json_object_get(b, "blocks");
        print_brief(json_object_get(b, "blocker"));
        printf("blocks %zu expired sstables from getting dropped: ", json_array_size(blocked));
        for (size_t k = 0; k < json_array_size(blocked); k++) print_brief(json_array_get(blocked, k));
        printf("\n\n");
    }
    json_decref(j);
    return 0;
}

static int cmd_compactionstats(tool *t, int argc, char **argv)
{
    json_t *j = call(t, "GET", "compactionstats", NULL, 0);
    printf("pending tasks: %lld\n", jint(j, "pending_tasks"));
    json_t *cs = json_object_get(j, "compactions");
    if (json_array_size(cs))
        printf("%-38s%-18s%-12s%-16s%-12s%-12s%-6s%s\n", "id", "compaction type", "keyspace", "table", "completed",
               "total", "unit", "progress");
    for (size_t i = 0; i < json_array_size(cs); i++) {
        json_t *c = json_array_get(cs, i);
        long long done = jint(c, "completed"), total = jint(c, "total");
        printf("%-38s%-18s%-12s%-16s%-12lld%-12lld%-6s%.2f%%\n", jstr(c, "id"), jstr(c, "type"), jstr(c, "keyspace"),
               jstr(c, "table"), done, total, jstr(c, "unit"), total ? 100.0 * (double)done / (double)total : 0.0);
    }
    json_decref(j);
    return 0;
}

static void print_counts(FILE *out, const char *label, const json_t *a)
{
    fprintf(out, "\t\t%s: [", label);
    for (size_t l = 0; l < json_array_size(a); l++)
        fprintf(out, "%s%lld", l ? ", " : "", (long long)json_integer_value(json_array_get(a, l)));
    fprintf(out, "]\n");
}

/* LCS tables: "SSTables in each level: [1, 12/10, 0, ...]", a level over
 * its SSTable count (4 in L0, fanout^L above) shown as count/limit. UCS
 * tables: SSTables per density level and the largest overlap in each (no
 * limits: a level's threshold is on overlap, not count). */
static void print_levels(FILE *out, const json_t *tb)
{
    const json_t *lv = json_object_get(tb, "sstables_in_each_level");
    if (!json_is_array(lv)) return;
    const json_t *ov = json_object_get(tb, "max_overlap_in_each_level");
    if (json_is_array(ov)) {
        print_counts(out, "SSTables in each level", lv);
        print_counts(out, "Max overlapping SSTables in each level", ov);
        return;
    }
    long long fanout = jint(tb, "fanout_size"), limit = 4;
    fprintf(out, "\t\tSSTables in each level: [");
    for (size_t l = 0; l < json_array_size(lv); l++) {
        long long n = (long long)json_integer_value(json_array_get(lv, l));
        if (l) limit = l == 1 ? fanout : (limit > LLONG_MAX / (fanout ? fanout : 1) ? LLONG_MAX : limit * fanout);
        if (l) fputs(", ", out);
        if (n > limit) fprintf(out, "%lld/%lld", n, limit);
        else fprintf(out, "%lld", n);
    }
    fprintf(out, "]\n");
}

static void print_table_stats(FILE *out, const json_t *tb)
{
    fprintf(out, "\t\tTable: %s\n", jstr(tb, "name"));
    fprintf(out, "\t\tSSTable count: %lld\n", jint(tb, "sstable_count"));
    print_levels(out, tb);
    fprintf(out, "\t\tSpace used (live): %lld\n", jint(tb, "space_used_live"));
    fprintf(out, "\t\tSpace used (total): %lld\n", jint(tb, "space_used_total"));
    fprintf(out, "\t\tNumber of partitions (estimate): %lld\n", jint(tb, "number_of_partitions"));
    fprintf(out, "\t\tMemtable cell count: %lld\n", jint(tb, "memtable_cell_count"));
    fprintf(out, "\t\tMemtable row count: %lld\n", jint(tb, "memtable_row_count"));
    fprintf(out, "\t\tMemtable data size: %lld\n", jint(tb, "memtable_data_size"));
    fprintf(out, "\t\tMemtable switch count: %lld\n", jint(tb, "memtable_switch_count"));
    fprintf(out, "\t\tLocal read count: %lld\n", jint(tb, "local_read_count"));
    fprintf(out, "\t\tLocal read latency: %.3f ms\n", jnum(tb, "local_read_latency_ms"));
    fprintf(out, "\t\tLocal read latency p50/p99: %.3f / %.3f ms\n", jnum(tb, "local_read_p50_ms"), jnum(tb, "local_read_p99_ms"));
    fprintf(out, "\t\tLocal write count: %lld\n", jint(tb, "local_write_count"));
    fprintf(out, "\t\tLocal write latency: %.3f ms\n", jnum(tb, "local_write_latency_ms"));
    fprintf(out, "\t\tLocal write latency p50/p99: %.3f / %.3f ms\n", jnum(tb, "local_write_p50_ms"), jnum(tb, "local_write_p99_ms"));
    fprintf(out, "\t\tBloom filter false positives: %lld\n", jint(tb, "bloom_filter_false_positives"));
    fprintf(out, "\t\tDroppable tombstone ratio: %.5f\n", jnum(tb, "droppable_tombstone_ratio"));
    fprintf(out, "\t\tSSTables per read (mean / p99 / max): %.2f / %lld / %lld\n", jnum(tb, "sstables_per_read_mean"),
            jint(tb, "sstables_per_read_p99"), jint(tb, "sstables_per_read_max"));
    /* Sibyl extension (no nodetool line): damaged SSTables, set aside at
     * start (disk_failure_policy) or left out of compaction (suspect) */
    long long dmg = jint(tb, "sstables_damaged"), sus = jint(tb, "sstables_suspect");
    if (dmg || sus)
        fprintf(out, "\t\tDamaged SSTables (set aside at start / suspect): %lld / %lld (run sibyl-verify; deleted "
                     "data their tombstones shadowed can come back until the next repair)\n", dmg, sus);
    fprintf(out, "\n");
}

/* One "ks[.table]" argument (or none): prints what /tablestats returns. */
static void tablestats_one(tool *t, FILE *out, const char *arg, size_t *ntables)
{
    char ks[256] = "", *table = NULL;
    const char *segs[2];
    size_t n = 0;
    if (arg) {
        snprintf(ks, sizeof ks, "%s", arg);
        table = strchr(ks, '.');
        if (table) *table++ = 0;
        segs[n++] = ks;
        if (table) segs[n++] = table;
    }
    json_t *j = call(t, "GET", "tablestats", segs, n);
    json_t *kss = json_object_get(j, "keyspaces");
    for (size_t i = 0; i < json_array_size(kss); i++) {
        json_t *k = json_array_get(kss, i);
        json_t *tables = json_object_get(k, "tables");
        fprintf(out, "Keyspace : %s\n", jstr(k, "name"));
        fprintf(out, "\tPending Flushes: 0\n");
        for (size_t x = 0; x < json_array_size(tables); x++) print_table_stats(out, json_array_get(tables, x));
        *ntables += json_array_size(tables);
        fprintf(out, "----------------\n");
    }
    json_decref(j);
}

static int cmd_tablestats(tool *t, int argc, char **argv)
{
    size_t ntables = 0;
    /* nodetool prints the total first; buffer the body so the count leads. */
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) die("out of memory");
    if (argc == 0) tablestats_one(t, mem, NULL, &ntables);
    for (int i = 0; i < argc; i++) tablestats_one(t, mem, argv[i], &ntables);
    fclose(mem);
    printf("Total number of tables: %zu\n----------------\n%s", ntables, buf ? buf : "");
    free(buf);
    return 0;
}

static int cmd_gossipinfo(tool *t, int argc, char **argv)
{
    json_t *j = call(t, "GET", "gossipinfo", NULL, 0);
    json_t *eps = json_object_get(j, "endpoints");
    for (size_t i = 0; i < json_array_size(eps); i++) {
        json_t *e = json_array_get(eps, i);
        printf("/%s\n  generation:%lld\n  heartbeat:%lld\n", jstr(e, "endpoint"), jint(e, "generation"),
               jint(e, "heartbeat"));
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(e, "states"), key, v) printf("  %s:%s\n", key, json_string_value(v));
    }
    json_decref(j);
    return 0;
}

/* nodetool describecluster's layout: name, snitch, partitioner, then one
 * line per schema version with the endpoints that report it. */
static int cmd_describecluster(tool *t, int argc, char **argv)
{
    json_t *j = call(t, "GET", "describecluster", NULL, 0);
    printf("Cluster Information:\n\tName: %s\n\tSnitch: %s\n\tDynamicEndPointSnitch: disabled\n"
           "\tPartitioner: %s\n\tSchema versions:\n",
           jstr(j, "name"), jstr(j, "snitch"), jstr(j, "partitioner"));
    const char *version;
    json_t *eps;
    json_object_foreach(json_object_get(j, "schema_versions"), version, eps) {
        printf("\t\t%s: [", version);
        for (size_t i = 0; i < json_array_size(eps); i++)
            printf("%s%s", i ? ", " : "", json_string_value(json_array_get(eps, i)));
        printf("]\n\n");
    }
    json_decref(j);
    return 0;
}

/* ---- main ---- */

typedef struct command {
    const char *name;
    int (*fn)(tool *t, int argc, char **argv);
    const char *help;
} command;

static const command COMMANDS[] = {
    {"status", cmd_status, "Print cluster information (state, load, IDs, ...)"},
    {"info", cmd_info, "Print node information (uptime, load, ...); -T lists tokens"},
    {"ring", cmd_ring, "Print information about the token ring"},
    {"describering", cmd_describering, "Shows the token ranges info of a given keyspace"},
    {"getendpoints", cmd_getendpoints, "Print the end points that owns the key; -T prints its token too"},
    {"flush", cmd_flush, "Flush one or more tables"},
    {"compact", cmd_compact, "Force a (major) compaction on one or more tables"},
    {"compactionstats", cmd_compactionstats, "Print statistics on compactions"},
    {"removenode", cmd_removenode, "Remove a dead node (by host id) from the ring; no data is streamed"},
    {"tablestats", cmd_tablestats, "Print statistics on tables"},
    {"sstableexpiredblockers", cmd_expiredblockers,
     "Print the SSTables (or memtables) that keep a table's expired SSTables from being dropped"},
    {"gossipinfo", cmd_gossipinfo, "Shows the gossip information for the cluster"},
    {"describecluster", cmd_describecluster, "Print the name, snitch, partitioner and schema versions of a cluster"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: sibyltool [(-h <host> | --host <host>)] [(-p <port> | --port <port>)]\n"
               "                 [--token <token> | --token-file <file>] <command> [<args>]\n\n"
               "The commands are:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++)
        fprintf(f, "    %-16s %s\n", COMMANDS[i].name, COMMANDS[i].help);
    fprintf(f, "\nThe port is the node's admin_port (default 10000). The token (the node's\n"
               "admin_auth_token) may also come from the SIBYL_ADMIN_TOKEN environment variable.\n");
}

/* The token from the first line of path, without its line end. */
static char *read_token_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) die("cannot read the token file %s", path);
    char line[1024];
    if (!fgets(line, sizeof line, f)) line[0] = 0;
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) die("the token file %s is empty", path);
    return strdup(line);
}

static char *auth_header(const char *token)
{
    if (!token || !*token) return NULL;
    if (strpbrk(token, "\r\n")) die("the token must be one line");
    size_t n = strlen(token) + 32;
    char *h = malloc(n);
    if (!h) die("out of memory");
    snprintf(h, n, "Authorization: Bearer %s", token);
    return h;
}

int main(int argc, char **argv)
{
    tool t = {.host = "127.0.0.1", .port = 10000};
    const command *cmd = NULL;
    const char *token = NULL, *token_file = NULL;
    char **args = calloc((size_t)argc + 1, sizeof *args);
    int nargs = 0;
    if (!args) die("out of memory");
    /* Options may come before or after the command, as nodetool allows. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-h") || !strcmp(a, "--host")) && i + 1 < argc) t.host = argv[++i];
        else if ((!strcmp(a, "-p") || !strcmp(a, "--port")) && i + 1 < argc) t.port = atoi(argv[++i]);
        else if (!strcmp(a, "-T") || !strcmp(a, "--tokens")) t.tokens = true;
        else if (!strcmp(a, "--token") && i + 1 < argc) token = argv[++i];
        else if (!strcmp(a, "--token-file") && i + 1 < argc) token_file = argv[++i];
        else if (!strcmp(a, "--help") || !strcmp(a, "help")) { usage(stdout); free(args); return 0; }
        else if (!cmd && a[0] != '-') {
            for (size_t k = 0; k < sizeof COMMANDS / sizeof *COMMANDS; k++)
                if (!strcmp(COMMANDS[k].name, a)) cmd = &COMMANDS[k];
            if (!cmd) { fprintf(stderr, "sibyltool: unknown command '%s'\n", a); usage(stderr); free(args); return EXIT_USAGE; }
        } else if (cmd && (a[0] != '-' || !a[1] || (a[1] >= '0' && a[1] <= '9'))) args[nargs++] = argv[i];
        else { fprintf(stderr, "sibyltool: unknown option '%s'\n", a); usage(stderr); free(args); return EXIT_USAGE; }
    }
    if (!cmd) { usage(stderr); free(args); return EXIT_USAGE; }
    if (t.port <= 0 || t.port > 65535) { fprintf(stderr, "sibyltool: bad port\n"); free(args); return EXIT_USAGE; }
    char *from_file = token || !token_file ? NULL : read_token_file(token_file);
    t.auth = auth_header(token ? token : from_file ? from_file : getenv("SIBYL_ADMIN_TOKEN"));
    free(from_file);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(t.curl = curl_easy_init())) die("cannot start libcurl");
    int rc = cmd->fn(&t, nargs, args);
    free(t.auth);
    curl_easy_cleanup(t.curl);
    curl_global_cleanup();
    free(args);
    return rc;
}
