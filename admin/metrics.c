/* metrics.c: request counters, latency histograms and their Prometheus text.
 *
 * What is counted (all on the loop thread, so plain integers suffice):
 *   requests by protocol operation (query/prepare/execute/batch) x
 *   consistency level, statements by kind (select/insert/update/delete/
 *   batch/ddl/use/describe), a latency histogram per operation and per
 *   statement kind, and error replies by protocol error code.
 *
 * Latency is the time the executor spent on the loop thread from dispatch to
 * its return. In periodic commitlog mode that is the whole request (the
 * write is acked before the executor returns); in batch/group mode the
 * fsync wait that follows is not included, and neither is the time a read
 * spends on the read pool (the per-table read latency, on_table_op, is
 * taken at the reply and includes it).
 *
 * Exposition format (text 0.0.4): every family has one # HELP and one
 * # TYPE line; histograms print cumulative _bucket{le="..."} lines in
 * increasing order ending with le="+Inf", then _sum (seconds) and _count.
 */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "admin.h"

#include <ev.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "parser.h"

const int64_t admin_hist_bounds_us[ADMIN_HIST_BUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000,
};

/* Protocol opcodes (cql.h) of the four request kinds the executor serves;
 * repeated here as plain numbers so admin/ does not depend on cql/. */
enum { OP_QUERY, OP_PREPARE, OP_EXECUTE, OP_BATCH, OP_COUNT };
static const struct { int opcode; const char *name; } OPS[OP_COUNT] = {
    {0x07, "query"}, {0x09, "prepare"}, {0x0A, "execute"}, {0x0D, "batch"},
};

enum { KIND_SELECT, KIND_INSERT, KIND_UPDATE, KIND_DELETE, KIND_BATCH, KIND_DDL, KIND_USE, KIND_DESCRIBE,
       KIND_COUNT };
static const char *const KIND_NAMES[KIND_COUNT] = {
    "select", "insert", "update", "delete", "batch", "ddl", "use", "describe",
};

/* Consistency codes 0..10 (coordinator.h), plus one slot for requests that
 * carry none (PREPARE) or an out-of-range code. */
#define CL_SLOTS 12
static const char *const CL_NAMES[CL_SLOTS] = {
    "ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM",
    "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE", "NONE",
};

static const struct { int32_t code; const char *name; } ERRORS[] = {
    {0x0000, "server_error"},   {0x000A, "protocol_error"},  {0x0100, "bad_credentials"},
    {0x1000, "unavailable"},    {0x1001, "overloaded"},      {0x1002, "is_bootstrapping"},
    {0x1003, "truncate_error"}, {0x1100, "write_timeout"},   {0x1200, "read_timeout"},
    {0x1300, "read_failure"},   {0x1400, "function_failure"}, {0x1500, "write_failure"},
    {0x2000, "syntax_error"},   {0x2100, "unauthorized"},    {0x2200, "invalid"},
    {0x2300, "config_error"},   {0x2400, "already_exists"},  {0x2500, "unprepared"},
};
#define ERR_SLOTS (SIB_ARRAY_LEN(ERRORS) + 1) /* + "other" */

/* Per-table counters in an open-addressing table keyed by table id (ids
 * are random uuids, so their first bytes hash well). Grows at half full. */
typedef struct table_slot {
    bool used;
    uint8_t id[16];
    admin_table_ops ops;
} table_slot;

struct admin_metrics {
    table_slot *tables;
    size_t tables_cap, tables_used;
    table_slot *last; /* the last table counted (NULL after the table grows): most requests repeat it */
    uint64_t requests[OP_COUNT][CL_SLOTS];
    admin_hist op_latency[OP_COUNT];
    uint64_t statements[KIND_COUNT];
    admin_hist kind_latency[KIND_COUNT];
    uint64_t errors[ERR_SLOTS];
    uint64_t total_requests, total_errors;
    /* loop lag (admin_metrics_watch_loop) */
    struct ev_loop *loop;
    ev_check wake;
    ev_prepare sleep;
    int64_t woke_ns;   /* 0: no iteration started yet */
    int64_t slept_cpu_ns;  /* the loop thread's CPU time when it last went to wait (0: never) */
    struct rusage woke_ru; /* its context switches and page faults when it woke */
    admin_hist iter, iter_cpu;
    int64_t iter_max_us, iter_cpu_max_us, iter_blocked_max_us;
    uint64_t iter_blocked, loop_faults;
};

/* ---- histograms ---- */

/* The bucket of us (>= 0). 18 bounds: a linear scan beats a binary search
 * at this size. */
static size_t hist_bucket(int64_t us)
{
    size_t i = 0;
    while (i < ADMIN_HIST_BUCKETS && us > admin_hist_bounds_us[i]) i++;
    return i;
}

static void hist_add(admin_hist *h, size_t bucket, int64_t us)
{
    h->buckets[bucket]++;
    h->count++;
    h->sum_us += us;
}

void admin_hist_record(admin_hist *h, int64_t us)
{
    if (us < 0) us = 0;
    hist_add(h, hist_bucket(us), us);
}

int64_t admin_hist_quantile(const admin_hist *h, double q)
{
    if (!h->count) return 0;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    /* The rank of the q-th observation, 1-based, never 0 (q=0 is the min). */
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < ADMIN_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) return admin_hist_bounds_us[i];
    }
    return INT64_MAX;
}

/* ---- recording ---- */

admin_metrics *admin_metrics_create(void) { return calloc(1, sizeof(admin_metrics)); }

void admin_metrics_destroy(admin_metrics *m)
{
    if (!m) return;
    if (m->loop) {
        ev_ref(m->loop); /* the references watch_loop gave back */
        ev_ref(m->loop);
        ev_check_stop(m->loop, &m->wake);
        ev_prepare_stop(m->loop, &m->sleep);
    }
    free(m->tables);
    free(m);
}

/* ---- loop lag ---- */

void admin_metrics_on_loop_iteration(admin_metrics *m, int64_t us)
{
    admin_hist_record(&m->iter, us);
    if (us > m->iter_max_us) m->iter_max_us = us;
}

void admin_metrics_on_loop_usage(admin_metrics *m, int64_t wall_us, int64_t cpu_us, bool blocked, uint64_t faults)
{
    admin_hist_record(&m->iter_cpu, cpu_us);
    if (cpu_us > m->iter_cpu_max_us) m->iter_cpu_max_us = cpu_us;
    if (blocked) {
        m->iter_blocked++;
        if (wall_us > m->iter_blocked_max_us) m->iter_blocked_max_us = wall_us;
    }
    m->loop_faults += faults;
}

/* CPU time of the calling thread, exact: getrusage's user and system times
 * are only brought up to date at scheduler ticks and switches, so over one
 * iteration they move in lumps of a tick (4 ms), or not at all. */
static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* An iteration's wall time minus its CPU time is time the loop was ready
 * but had no core, or waited in the kernel; a voluntary context switch
 * (getrusage, counted exactly) tells the second apart, and the page faults
 * come from the same call.
 *
 * The thread's CPU time is read once per iteration, when it goes to wait:
 * an iteration's share is the CPU time since the previous wait began, so it
 * includes the poll that started it (a few microseconds of kernel time, below
 * the histogram's first bound). Each reading is a system call of about half
 * a microsecond here; reading it at both ends cost a few percent of the
 * loop's CPU at 15,000 iterations a second. */
static void on_wake(struct ev_loop *loop, ev_check *w, int revents)
{
    admin_metrics *m = w->data;
    m->woke_ns = sib_mono_ns();
    if (!m->slept_cpu_ns) m->slept_cpu_ns = thread_cpu_ns(); /* the first iteration */
    getrusage(RUSAGE_THREAD, &m->woke_ru);
}

static void on_sleep(struct ev_loop *loop, ev_prepare *w, int revents)
{
    admin_metrics *m = w->data;
    if (m->woke_ns) {
        int64_t wall = (sib_mono_ns() - m->woke_ns) / 1000;
        admin_metrics_on_loop_iteration(m, wall);
        int64_t now = thread_cpu_ns(), cpu = (now - m->slept_cpu_ns) / 1000;
        m->slept_cpu_ns = now;
        struct rusage ru;
        getrusage(RUSAGE_THREAD, &ru);
        const struct rusage *o = &m->woke_ru;
        admin_metrics_on_loop_usage(m, wall, cpu, ru.ru_nvcsw > o->ru_nvcsw,
                                    (uint64_t)((ru.ru_minflt - o->ru_minflt) + (ru.ru_majflt - o->ru_majflt)));
    }
    m->woke_ns = 0;
}

int admin_metrics_watch_loop(admin_metrics *m, struct ev_loop *loop, sib_err *err)
{
    if (m->loop) return sib_err_set(err, SIB_EINVAL, "metrics: already watching a loop");
    m->loop = loop;
    ev_check_init(&m->wake, on_wake);
    ev_set_priority(&m->wake, EV_MAXPRI); /* first after the wait */
    m->wake.data = m;
    ev_prepare_init(&m->sleep, on_sleep);
    ev_set_priority(&m->sleep, EV_MINPRI); /* last before the wait: after the commitlog's write */
    m->sleep.data = m;
    ev_check_start(loop, &m->wake);
    ev_prepare_start(loop, &m->sleep);
    ev_unref(loop); /* watching keeps nothing alive */
    ev_unref(loop);
    return 0;
}

static size_t slot_of(const uint8_t id[16], size_t cap) { return (size_t)(get_be64(id) ^ get_be64(id + 8)) & (cap - 1); }

/* Two 8-byte compares: a memcmp call cost a third of a table's update. */
static bool same_id(const uint8_t a[16], const uint8_t b[16])
{
    uint64_t x[2], y[2];
    memcpy(x, a, 16);
    memcpy(y, b, 16);
    return x[0] == y[0] && x[1] == y[1];
}

static table_slot *table_find(const admin_metrics *m, const uint8_t id[16])
{
    if (!m->tables_cap) return NULL;
    for (size_t i = slot_of(id, m->tables_cap), k = 0; k < m->tables_cap; k++, i = (i + 1) & (m->tables_cap - 1)) {
        if (!m->tables[i].used) return NULL;
        if (same_id(m->tables[i].id, id)) return &m->tables[i];
    }
    return NULL;
}

static table_slot *table_get_slow(admin_metrics *m, const uint8_t id[16])
{
    table_slot *s = table_find(m, id);
    if (s) return m->last = s;
    if ((m->tables_used + 1) * 2 > m->tables_cap) {
        size_t ncap = m->tables_cap ? m->tables_cap * 2 : 16;
        table_slot *nt = calloc(ncap, sizeof *nt);
        if (!nt) return NULL;
        for (size_t i = 0; i < m->tables_cap; i++) {
            if (!m->tables[i].used) continue;
            size_t j = slot_of(m->tables[i].id, ncap);
            while (nt[j].used) j = (j + 1) & (ncap - 1);
            nt[j] = m->tables[i];
        }
        free(m->tables);
        m->tables = nt;
        m->tables_cap = ncap;
        m->last = NULL;
    }
    size_t j = slot_of(id, m->tables_cap);
    while (m->tables[j].used) j = (j + 1) & (m->tables_cap - 1);
    m->tables[j].used = true;
    memcpy(m->tables[j].id, id, 16);
    m->tables_used++;
    return &m->tables[j];
}

/* The last table's slot without a call (most requests are on the table
 * of the one before), another's by its hash. */
static inline table_slot *table_get(admin_metrics *m, const uint8_t id[16])
{
    if (m->last && same_id(m->last->id, id)) return m->last;
    return table_get_slow(m, id);
}

/* us >= 0, in bucket. Inline: the request's one call does all its counting. */
static inline __attribute__((always_inline)) void count_table_op(admin_metrics *m, const uint8_t table_id[16],
                                                                  bool write, int64_t us, size_t bucket)
{
    table_slot *s = table_get(m, table_id);
    if (!s) return; /* out of memory: this one sample is lost */
    if (write) {
        s->ops.writes++;
        hist_add(&s->ops.write_latency, bucket, us);
    } else {
        s->ops.reads++;
        hist_add(&s->ops.read_latency, bucket, us);
    }
}

void admin_metrics_on_table_op(void *ctx, const uint8_t table_id[16], bool write, int64_t latency_us)
{
    if (latency_us < 0) latency_us = 0;
    count_table_op(ctx, table_id, write, latency_us, hist_bucket(latency_us));
}

void admin_metrics_table_ops(const admin_metrics *m, const uint8_t table_id[16], admin_table_ops *out)
{
    const table_slot *s = m ? table_find(m, table_id) : NULL;
    if (s) *out = s->ops;
    else memset(out, 0, sizeof *out);
}

static int op_slot(int opcode)
{
    switch (opcode) { /* OPS[] */
    case 0x07: return OP_QUERY;
    case 0x09: return OP_PREPARE;
    case 0x0A: return OP_EXECUTE;
    case 0x0D: return OP_BATCH;
    default: return -1;
    }
}

static int kind_slot(int stmt_kind)
{
    switch (stmt_kind) {
    case PRS_STMT_SELECT: return KIND_SELECT;
    case PRS_STMT_INSERT: return KIND_INSERT;
    case PRS_STMT_UPDATE: return KIND_UPDATE;
    case PRS_STMT_DELETE: return KIND_DELETE;
    case PRS_STMT_BATCH: return KIND_BATCH;
    case PRS_STMT_USE: return KIND_USE;
    case PRS_STMT_DESCRIBE: return KIND_DESCRIBE;
    case PRS_STMT_CREATE_KEYSPACE: case PRS_STMT_ALTER_KEYSPACE: case PRS_STMT_DROP_KEYSPACE:
    case PRS_STMT_CREATE_TABLE: case PRS_STMT_ALTER_TABLE: case PRS_STMT_DROP_TABLE:
    case PRS_STMT_TRUNCATE: return KIND_DDL;
    default: return -1;
    }
}

/* us >= 0, in bucket (inline as count_table_op). */
static inline __attribute__((always_inline)) void count_request(admin_metrics *m, int opcode, int stmt_kind,
                                                                 int consistency, int64_t us, size_t bucket)
{
    m->total_requests++;
    int op = op_slot(opcode);
    if (op >= 0) {
        int cl = consistency >= 0 && consistency < CL_SLOTS - 1 ? consistency : CL_SLOTS - 1;
        m->requests[op][cl]++;
        hist_add(&m->op_latency[op], bucket, us);
    }
    /* PREPARE parses but does not run the statement: count only what ran. */
    int k = op == OP_PREPARE ? -1 : kind_slot(stmt_kind);
    if (k >= 0) {
        m->statements[k]++;
        hist_add(&m->kind_latency[k], bucket, us);
    }
}

void admin_metrics_on_request(void *ctx, int opcode, int stmt_kind, int consistency, int64_t latency_us)
{
    if (latency_us < 0) latency_us = 0;
    count_request(ctx, opcode, stmt_kind, consistency, latency_us, hist_bucket(latency_us));
}

void admin_metrics_on_request_op(void *ctx, int opcode, int stmt_kind, int consistency, int64_t latency_us,
                                 const uint8_t table_id[16], bool write, int64_t op_latency_us)
{
    if (latency_us < 0) latency_us = 0;
    if (op_latency_us < 0) op_latency_us = 0;
    size_t bucket = hist_bucket(latency_us);
    count_request(ctx, opcode, stmt_kind, consistency, latency_us, bucket);
    /* a read answered inside its request started with it: the same time */
    count_table_op(ctx, table_id, write, op_latency_us,
                   op_latency_us == latency_us ? bucket : hist_bucket(op_latency_us));
}

static size_t error_slot(int32_t code)
{
    for (size_t i = 0; i < SIB_ARRAY_LEN(ERRORS); i++)
        if (ERRORS[i].code == code) return i;
    return ERR_SLOTS - 1;
}

void admin_metrics_on_error(void *ctx, int32_t protocol_code)
{
    admin_metrics *m = ctx;
    m->errors[error_slot(protocol_code)]++;
    m->total_errors++;
}

const char *admin_error_name(int32_t protocol_code)
{
    size_t i = error_slot(protocol_code);
    return i < SIB_ARRAY_LEN(ERRORS) ? ERRORS[i].name : "other";
}

uint64_t admin_metrics_requests(const admin_metrics *m) { return m->total_requests; }
uint64_t admin_metrics_errors(const admin_metrics *m) { return m->total_errors; }

/* ---- exposition ---- */

static void family(sib_buf *b, const char *name, const char *type, const char *help)
{
    sib_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values are our own names (keyspace/table names are identifiers),
 * but quotes, backslashes and newlines are still escaped as the format
 * requires, so a quoted table name cannot break the exposition. */
static void label_value(sib_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"') sib_buf_u8(b, '\\');
        if (*v == '\n') { sib_buf_append(b, "\\n", 2); continue; }
        sib_buf_u8(b, (uint8_t)*v);
    }
}

static void seconds(sib_buf *b, int64_t us) { sib_buf_printf(b, "%.6f", (double)us / 1e6); }

/* One histogram series: `labels` is `op="query"` style text (no braces). */
static void hist_series(sib_buf *b, const char *name, const char *labels, const admin_hist *h)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < ADMIN_HIST_BUCKETS; i++) {
        cum += h->buckets[i];
        sib_buf_printf(b, "%s_bucket{%s,le=\"", name, labels);
        seconds(b, admin_hist_bounds_us[i]);
        sib_buf_printf(b, "\"} %" PRIu64 "\n", cum);
    }
    sib_buf_printf(b, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, labels, h->count);
    sib_buf_printf(b, "%s_sum{%s} ", name, labels);
    seconds(b, h->sum_us);
    sib_buf_printf(b, "\n%s_count{%s} %" PRIu64 "\n", name, labels, h->count);
}

static void render_requests(const admin_metrics *m, sib_buf *b)
{
    char labels[64];
    family(b, "sibyl_cql_requests_total", "counter",
           "CQL requests served, by protocol operation and consistency level.");
    for (int op = 0; op < OP_COUNT; op++)
        for (int cl = 0; cl < CL_SLOTS; cl++) {
            /* 4 ops x 12 levels of mostly zeros would drown the page: a
             * series appears with its first request (Prometheus treats a
             * new counter series as starting from 0). */
            if (!m->requests[op][cl]) continue;
            sib_buf_printf(b, "sibyl_cql_requests_total{op=\"%s\",consistency=\"%s\"} %" PRIu64 "\n",
                           OPS[op].name, CL_NAMES[cl], m->requests[op][cl]);
        }
    family(b, "sibyl_cql_request_latency_seconds", "histogram",
           "Time the executor spent on a CQL request, by protocol operation.");
    for (int op = 0; op < OP_COUNT; op++) {
        snprintf(labels, sizeof labels, "op=\"%s\"", OPS[op].name);
        hist_series(b, "sibyl_cql_request_latency_seconds", labels, &m->op_latency[op]);
    }
    family(b, "sibyl_cql_statements_total", "counter", "CQL statements executed, by statement type.");
    for (int k = 0; k < KIND_COUNT; k++)
        sib_buf_printf(b, "sibyl_cql_statements_total{type=\"%s\"} %" PRIu64 "\n", KIND_NAMES[k], m->statements[k]);
    family(b, "sibyl_cql_statement_latency_seconds", "histogram",
           "Time the executor spent on a CQL statement, by statement type.");
    for (int k = 0; k < KIND_COUNT; k++) {
        snprintf(labels, sizeof labels, "type=\"%s\"", KIND_NAMES[k]);
        hist_series(b, "sibyl_cql_statement_latency_seconds", labels, &m->kind_latency[k]);
    }
    family(b, "sibyl_cql_errors_total", "counter", "CQL error replies, by protocol error code.");
    for (size_t i = 0; i < ERR_SLOTS; i++)
        sib_buf_printf(b, "sibyl_cql_errors_total{code=\"%s\"} %" PRIu64 "\n",
                       i < SIB_ARRAY_LEN(ERRORS) ? ERRORS[i].name : "other", m->errors[i]);
}

static void gauge(sib_buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    family(b, name, type, help);
    sib_buf_printf(b, "%s %" PRIu64 "\n", name, v);
}

/* One series per table of a per-table family. */
static void per_table(sib_buf *b, const admin_gauges *g, const char *name, const char *type, const char *help,
                      size_t field)
{
    family(b, name, type, help);
    for (size_t i = 0; i < g->ntables; i++) {
        const admin_table_gauge *t = &g->tables[i];
        uint64_t v = 0;
        switch (field) {
        case 0: v = t->partitions; break;
        case 1: v = t->rows; break;
        case 2: v = t->cells; break;
        case 3: v = t->memtable_bytes; break;
        case 4: v = t->sstables; break;
        case 5: v = t->reads; break;
        case 6: v = t->writes; break;
        case 7: v = t->sstable_bytes; break;
        case 8: v = t->flush_bytes; break;
        case 9: v = t->compaction_bytes_read; break;
        case 10: v = t->compaction_bytes_written; break;
        case 11: v = t->compactions_running; break;
        case 12: v = t->compactions; break;
        case 13: v = t->sstables_damaged; break;
        case 14: v = t->sstables_suspect; break;
        default: v = 0; break;
        }
        sib_buf_printf(b, "%s{keyspace=\"", name);
        label_value(b, t->ks);
        sib_buf_printf(b, "\",table=\"");
        label_value(b, t->table);
        sib_buf_printf(b, "\"} %" PRIu64 "\n", v);
    }
}

/* sibyl_table_sstables_per_read: a histogram per table of how many
 * SSTables each partition read opened. */
static void render_spr(const admin_gauges *g, sib_buf *b)
{
    const char *name = "sibyl_table_sstables_per_read";
    family(b, name, "histogram", "SSTables opened by each partition read of the table.");
    for (size_t i = 0; i < g->ntables; i++) {
        const admin_table_gauge *t = &g->tables[i];
        sib_buf lab;
        sib_buf_init(&lab);
        sib_buf_printf(&lab, "keyspace=\"");
        label_value(&lab, t->ks);
        sib_buf_printf(&lab, "\",table=\"");
        label_value(&lab, t->table);
        sib_buf_u8(&lab, '"');
        uint64_t cum = 0;
        for (size_t k = 0; k < ADMIN_SPR_BUCKETS; k++) {
            cum += t->spr[k];
            if (t->spr_le[k] == UINT32_MAX)
                sib_buf_printf(b, "%s_bucket{%.*s,le=\"+Inf\"} %" PRIu64 "\n", name, (int)lab.len, (const char *)lab.p, cum);
            else
                sib_buf_printf(b, "%s_bucket{%.*s,le=\"%u\"} %" PRIu64 "\n", name, (int)lab.len, (const char *)lab.p,
                               t->spr_le[k], cum);
        }
        sib_buf_printf(b, "%s_sum{%.*s} %" PRIu64 "\n", name, (int)lab.len, (const char *)lab.p, t->spr_sum);
        sib_buf_printf(b, "%s_count{%.*s} %" PRIu64 "\n", name, (int)lab.len, (const char *)lab.p, cum);
        sib_buf_free(&lab);
    }
}

static void render_storage(const admin_gauges *g, sib_buf *b)
{
    gauge(b, "sibyl_memtable_bytes", "gauge", "Bytes held by all memtables.", g->memtable_bytes);
    per_table(b, g, "sibyl_table_memtable_bytes", "gauge", "Bytes held by the table's memtable.", 3);
    per_table(b, g, "sibyl_table_partitions", "gauge", "Partitions in the table's memtable.", 0);
    per_table(b, g, "sibyl_table_rows", "gauge", "Rows in the table's memtable.", 1);
    per_table(b, g, "sibyl_table_cells", "gauge", "Cells in the table's memtable.", 2);
    per_table(b, g, "sibyl_table_reads_total", "counter", "Local reads (SELECT) of the table.", 5);
    per_table(b, g, "sibyl_table_writes_total", "counter", "Local writes to the table (statements and batches).", 6);
    per_table(b, g, "sibyl_table_sstables", "gauge", "Live SSTables of the table.", 4);
    per_table(b, g, "sibyl_table_sstable_bytes", "gauge", "Bytes of the table's live SSTables (Data.db).", 7);
    per_table(b, g, "sibyl_table_flush_bytes_total", "counter", "Bytes written by flushes of the table.", 8);
    per_table(b, g, "sibyl_table_compaction_bytes_read_total", "counter", "Bytes read by compactions of the table.", 9);
    per_table(b, g, "sibyl_table_compaction_bytes_written_total", "counter",
              "Bytes written by compactions of the table.", 10);
    per_table(b, g, "sibyl_table_compactions_pending", "gauge", "Compactions of the table queued or running.", 11);
    per_table(b, g, "sibyl_table_compactions_completed_total", "counter", "Compactions of the table completed.", 12);
    per_table(b, g, "sibyl_table_sstables_damaged", "gauge",
              "SSTables of the table set aside at start by disk_failure_policy (best_effort, ignore).", 13);
    per_table(b, g, "sibyl_table_sstables_suspect", "gauge",
              "SSTables of the table a compaction found corrupt: excluded from compaction.", 14);
    render_spr(g, b);
    gauge(b, "sibyl_sstables", "gauge", "Live SSTables over all tables.", g->sstables);
    gauge(b, "sibyl_sstable_bytes", "gauge", "Bytes of all live SSTables (Data.db).", g->sstable_bytes);
    gauge(b, "sibyl_flushes_pending", "gauge", "Frozen memtables not yet live as SSTables.", g->flushes_pending);
    gauge(b, "sibyl_commitlog_bytes_written_total", "counter", "Commitlog bytes written since start.",
          g->cl_bytes_written);
    gauge(b, "sibyl_commitlog_segments", "gauge", "Commitlog segment files present.", g->cl_segments_live);
    gauge(b, "sibyl_commitlog_syncs_total", "counter", "Commitlog fsyncs since start.", g->cl_syncs);
    gauge(b, "sibyl_commitlog_pending_syncs", "gauge", "Writes waiting for a commitlog fsync.", g->cl_pending);
    gauge(b, "sibyl_reads_inline_total", "counter", "Read pieces answered from memory on the event loop.",
          g->reads_inline);
    gauge(b, "sibyl_reads_pool_total", "counter", "Read pieces run on the read pool (SSTables, scans).",
          g->reads_pool);
    gauge(b, "sibyl_read_pool_queued", "gauge", "Read pieces waiting for a read pool thread.", g->reads_queued);
    gauge(b, "sibyl_read_pool_running", "gauge", "Read pieces running on the read pool.", g->reads_running);
    uint64_t pending = 0, done = 0;
    for (size_t i = 0; i < g->ntables; i++) {
        pending += g->tables[i].compactions_running;
        done += g->tables[i].compactions;
    }
    gauge(b, "sibyl_compactions_pending", "gauge", "Compactions queued or running.", pending);
    gauge(b, "sibyl_compactions_completed_total", "counter", "Compactions completed since start.", done);
}

static void render_node(const admin_gauges *g, sib_buf *b)
{
    gauge(b, "sibyl_connected_clients", "gauge", "Open native-protocol connections.", g->clients);
    family(b, "sibyl_schema_version_info", "gauge", "The node's schema version (value is always 1).");
    sib_buf_printf(b, "sibyl_schema_version_info{version=\"%s\"} 1\n", g->schema_version);
    gauge(b, "sibyl_uptime_seconds", "gauge", "Seconds since the node started.", (uint64_t)g->uptime_s);
    gauge(b, "sibyl_coordinator_read_rounds_total", "counter",
          "Replica rounds of single-partition reads this node coordinated.", g->read_rounds);
    gauge(b, "sibyl_coordinator_reads_coalesced_total", "counter",
          "Single-partition reads that joined an identical read's replica round (single-flight).",
          g->reads_coalesced);
    gauge(b, "sibyl_coordinator_read_repair_writes_total", "counter",
          "Partitions read repair wrote to a replica whose answer differed (point and range reads).",
          g->read_repair_writes);
    gauge(b, "sibyl_hints_pending", "gauge", "Hints waiting for replay.", 0);
    family(b, "sibyl_gossip_members", "gauge", "Cluster members as this node's gossip sees them.");
    sib_buf_printf(b, "sibyl_gossip_members{state=\"live\"} 1\nsibyl_gossip_members{state=\"down\"} 0\n");
    gauge(b, "sibyl_dropped_messages_total", "counter", "Messages dropped after their timeout.", 0);
    gauge(b, "sibyl_batchlog_writes_total", "counter",
          "Logged batches this node coordinated through the batchlog.", g->bl_writes);
    gauge(b, "sibyl_batchlog_stored_total", "counter", "Batchlog entries stored on this node.", g->bl_stored);
    gauge(b, "sibyl_batchlog_removed_total", "counter",
          "Batchlog entries removed from this node (acknowledged batches, and replayed ones).", g->bl_removed);
    gauge(b, "sibyl_batchlog_replayed_total", "counter",
          "Batchlog entries this node replayed to every replica.", g->bl_replayed);
    gauge(b, "sibyl_batchlog_replay_failures_total", "counter",
          "Batchlog replays that did not reach every replica (the entry is kept for the next round).",
          g->bl_replay_failures);
    gauge(b, "sibyl_batchlog_entries", "gauge", "Batchlog entries on this node at its last replay scan.",
          g->bl_entries);
}

/* A loop family of one sample (label loop="cql"): a duration in seconds, or a count. */
static void loop_seconds(sib_buf *b, const char *name, const char *help, int64_t us)
{
    family(b, name, "gauge", help);
    sib_buf_printf(b, "%s{loop=\"cql\"} ", name);
    seconds(b, us);
    sib_buf_printf(b, "\n");
}

static void loop_count(sib_buf *b, const char *name, const char *help, uint64_t n)
{
    family(b, name, "counter", help);
    sib_buf_printf(b, "%s{loop=\"cql\"} %" PRIu64 "\n", name, n);
}

static void render_loop(const admin_metrics *m, sib_buf *b)
{
    family(b, "sibyl_loop_iteration_seconds", "histogram",
           "Event loop iterations: from waking up to waiting again (what a ready client waits behind).");
    hist_series(b, "sibyl_loop_iteration_seconds", "loop=\"cql\"", &m->iter);
    loop_seconds(b, "sibyl_loop_iteration_max_seconds", "The longest event loop iteration since start.", m->iter_max_us);
    family(b, "sibyl_loop_iteration_cpu_seconds", "histogram",
           "CPU time the loop thread used per iteration (its own work: waiting for a core does not count).");
    hist_series(b, "sibyl_loop_iteration_cpu_seconds", "loop=\"cql\"", &m->iter_cpu);
    loop_seconds(b, "sibyl_loop_iteration_cpu_max_seconds",
                 "The most CPU time the loop thread used in one iteration (the rest of an iteration's time it "
                 "waited: for a core, or in a system call).",
                 m->iter_cpu_max_us);
    loop_count(b, "sibyl_loop_iterations_blocked_total",
               "Iterations in which the loop thread waited in the kernel (a voluntary context switch: a disk, a "
               "lock, a page fault that needed I/O).",
               m->iter_blocked);
    loop_seconds(b, "sibyl_loop_iteration_blocked_max_seconds",
                 "The longest iteration (wall time) in which the loop thread waited in the kernel.",
                 m->iter_blocked_max_us);
    loop_count(b, "sibyl_loop_page_faults_total",
               "Page faults the loop thread took during its iterations (first touches of fresh memory: the kernel "
               "zeroes each page on the loop).",
               m->loop_faults);
}

void admin_metrics_render(const admin_metrics *m, const admin_gauges *g, sib_buf *out)
{
    if (m) render_requests(m, out);
    if (m) render_loop(m, out);
    render_storage(g, out);
    render_node(g, out);
}
