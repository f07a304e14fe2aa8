/* exec_trace.c: request tracing (the TRACING frame flag, protocol spec 2.2)
 * and the sessions the system_traces tables show.
 *
 * A request whose frame has CQL_FLAG_TRACING gets a trace in its own arena:
 * the session row (Cassandra 4.0 TraceKeyspace columns) and a list of
 * events, each with the microseconds elapsed since the request arrived. The
 * statement files add events with EXEC_TRACE (exec_int.h). When the reply is
 * complete the protocol layer calls trace_done (cql_request.trace_done): the
 * duration is fixed, and the session is copied into an arena of its own and
 * kept in a ring of TRACE_RING sessions, the oldest dropped first.
 * exec_system.c serves the ring as the rows of system_traces.sessions and
 * system_traces.events; sessions older than TRACE_TTL_S (Cassandra writes
 * trace rows with a TTL of one day) are no longer shown.
 *
 * Why a ring and not table rows written through storage: every other system
 * table is already served from memory by exec_system.c, and system tables
 * have no store here. Writing rows would cost a commitlog append per event
 * on the loop thread. Because the session is complete in the ring before
 * the reply leaves, a driver's get_query_trace() finds a finished trace on
 * its first read (Cassandra writes traces asynchronously, so drivers poll).
 * The price: traces are node-local and do not survive a restart.
 *
 * A session keeps at most TRACE_MAX_EVENTS events; the last one then says
 * the trace was truncated, so a traced IN of thousands of partitions cannot
 * make the ring hold hundreds of megabytes.
 *
 * Cost when the flag is off: exec_request tests one bit and EXEC_TRACE one
 * pointer; nothing is allocated.
 *
 * Event texts follow Cassandra's where Sibyl does the same work ("Parsing
 * <query>", "Preparing statement", "Executing single-partition query on t",
 * "Read N live rows and M tombstone cells", "Appending to commitlog",
 * "Adding to t memtable"). Like Cassandra, there is no "Request complete"
 * event: cqlsh prints that line from the session's duration.
 */
#define _GNU_SOURCE /* pthread_getname_np */
#include "exec_int.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define TRACE_RING 1024       /* sessions kept */
#define TRACE_MAX_EVENTS 256 /* per session (an IN of many partitions): bounds the ring's memory */
#define TRACE_TTL_S 86400     /* Cassandra's system_traces TTL */

/* A traced request in flight; lives in the request arena. */
typedef struct exec_trace {
    cql_exec *ex;
    cql_request *req;
    int64_t start_ns; /* monotonic, for source_elapsed and duration */
    size_t cap;       /* room in s.events */
    exec_trace_session s;
} exec_trace;

static const char *request_name(int opcode)
{
    switch (opcode) {
    case CQL_OP_QUERY: return "Execute CQL3 query";
    case CQL_OP_EXECUTE: return "Execute CQL3 prepared query";
    case CQL_OP_PREPARE: return "Preparing CQL3 query";
    default: return "Execute batch of CQL3 queries";
    }
}

/* The client address of "addr:port" (cql_session.peer). */
static void peer_addr(const char *peer, exec_trace_session *s)
{
    char host[64];
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    if (n >= sizeof host) return;
    memcpy(host, peer, n);
    host[n] = '\0';
    if (inet_pton(AF_INET, host, s->client) == 1) s->client_len = 4;
    else if (inet_pton(AF_INET6, host, s->client) == 1) s->client_len = 16;
}

static void add_param(exec_trace *t, const char *key, const char *val)
{
    if (!val || t->s.nparams == EXEC_TRACE_MAX_PARAMS) return;
    t->s.param_keys[t->s.nparams] = key;
    t->s.param_vals[t->s.nparams++] = val;
}

static void add_params(exec_trace *t, const cql_request *req)
{
    sib_arena *a = req->arena;
    const cql_params *p = NULL;
    if (req->opcode == CQL_OP_QUERY) {
        const cql_str *q = &req->u.query.query;
        add_param(t, "query", sib_arena_strndup(a, q->p, q->len));
        p = &req->u.query.params;
    } else if (req->opcode == CQL_OP_EXECUTE) {
        p = &req->u.execute.params; /* the query text comes with exec_trace_query */
    } else if (req->opcode == CQL_OP_PREPARE) {
        const cql_str *q = &req->u.prepare.query;
        add_param(t, "query", sib_arena_strndup(a, q->p, q->len));
    } else if (req->opcode == CQL_OP_BATCH) {
        add_param(t, "consistency_level", cql_cl_name(req->u.batch.consistency));
        add_param(t, "serial_consistency_level", cql_cl_name(req->u.batch.serial_consistency));
    }
    if (!p) return;
    add_param(t, "consistency_level", cql_cl_name(p->consistency));
    add_param(t, "serial_consistency_level", cql_cl_name(p->serial_consistency));
    if (p->page_size > 0) {
        char *ps = sib_arena_alloc(a, 16);
        if (ps) snprintf(ps, 16, "%d", (int)p->page_size);
        add_param(t, "page_size", ps);
    }
}

/* Copies s (views into a request arena) into a new arena; NULL when out of
 * memory. */
static exec_trace_session *session_copy(const exec_trace_session *s)
{
    sib_arena *a = sib_arena_create(1024 + s->nevents * 96);
    exec_trace_session *c = a ? sib_arena_alloc(a, sizeof *c) : NULL;
    if (!c) goto fail;
    *c = *s;
    c->arena = a;
    c->command = sib_arena_strdup(a, s->command);
    c->request = sib_arena_strdup(a, s->request);
    c->thread = sib_arena_strdup(a, s->thread);
    if (!c->command || !c->request || !c->thread) goto fail;
    for (size_t i = 0; i < s->nparams; i++) {
        c->param_keys[i] = sib_arena_strdup(a, s->param_keys[i]);
        c->param_vals[i] = sib_arena_strdup(a, s->param_vals[i]);
        if (!c->param_keys[i] || !c->param_vals[i]) goto fail;
    }
    c->events = sib_arena_alloc(a, sizeof *c->events * (s->nevents ? s->nevents : 1));
    if (!c->events) goto fail;
    for (size_t i = 0; i < s->nevents; i++) {
        c->events[i] = s->events[i];
        if (!(c->events[i].activity = sib_arena_strdup(a, s->events[i].activity))) goto fail;
    }
    return c;
fail:
    sib_arena_destroy(a);
    return NULL;
}

/* cql_request.trace_done: the reply is complete; keep the session. */
static void trace_done(cql_request *req)
{
    exec_trace *t = req->trace_data;
    cql_exec *ex = t->ex;
    int64_t d = (sib_mono_ns() - t->start_ns) / 1000;
    t->s.duration_us = d > INT32_MAX ? INT32_MAX : (int32_t)d;
    if (!ex->traces && !(ex->traces = calloc(TRACE_RING, sizeof *ex->traces))) return;
    exec_trace_session *c = session_copy(&t->s);
    if (!c) {
        sib_log(ex->log, SIB_WARN, "trace: out of memory keeping a trace session");
        return;
    }
    size_t slot = ex->trace_next;
    if (ex->traces[slot]) sib_arena_destroy(ex->traces[slot]->arena);
    ex->traces[slot] = c;
    ex->trace_next = (slot + 1) % TRACE_RING;
}

void exec_trace_begin(cql_exec *ex, cql_request *req)
{
    exec_trace *t = sib_arena_alloc(req->arena, sizeof *t);
    char *thread = sib_arena_alloc(req->arena, 16);
    if (!t || !thread) return; /* out of memory: the request runs untraced */
    memset(t, 0, sizeof *t);
    t->ex = ex;
    t->req = req;
    t->start_ns = sib_mono_ns();
    sib_timeuuid_next(&ex->tug, t->s.session_id); /* a timeuuid, as Cassandra's session ids */
    t->s.started_at_ms = sib_now_us() / 1000;
    t->s.command = "QUERY"; /* Tracing.TraceType of every native-protocol request */
    t->s.request = request_name(req->opcode);
    t->s.duration_us = -1;
    if (pthread_getname_np(pthread_self(), thread, 16) != 0) snprintf(thread, 16, "main");
    t->s.thread = thread;
    peer_addr(req->session->peer, &t->s);
    add_params(t, req);
    memcpy(req->trace_id, t->s.session_id, 16);
    req->trace_data = t;
    req->trace_done = trace_done;
}

void exec_trace_query(cql_request *req, const char *query)
{
    exec_trace *t = req->trace_data;
    /* A copy: the prepared statement may be evicted before the trace ends. */
    if (t) add_param(t, "query", sib_arena_strdup(req->arena, query));
}

/* Appends an event with its text in the request arena. */
static void add_event(exec_trace *t, const char *text)
{
    int64_t elapsed = (sib_mono_ns() - t->start_ns) / 1000;
    if (t->s.nevents == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        exec_trace_event *ev = sib_arena_alloc(t->req->arena, sizeof *ev * cap);
        if (!ev) return;
        if (t->s.nevents) memcpy(ev, t->s.events, sizeof *ev * t->s.nevents);
        t->s.events = ev;
        t->cap = cap;
    }
    exec_trace_event *e = &t->s.events[t->s.nevents++];
    sib_timeuuid_next(&t->ex->tug, e->event_id); /* strictly increasing: events sort by time */
    e->source_elapsed = elapsed > INT32_MAX ? INT32_MAX : (int32_t)elapsed;
    e->activity = text;
}

void exec_trace_add(cql_request *req, const char *fmt, ...)
{
    exec_trace *t = req->trace_data;
    if (!t || t->s.nevents == TRACE_MAX_EVENTS) return;
    if (t->s.nevents == TRACE_MAX_EVENTS - 1) { /* the last slot says the trace stops here */
        add_event(t, "Trace truncated: later events are not recorded");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *text = n >= 0 ? sib_arena_alloc(req->arena, (size_t)n + 1) : NULL;
    if (!text) return;
    va_start(ap, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    add_event(t, text);
}

int exec_trace_each(cql_exec *ex, const uint8_t *want, int (*fn)(void *ctx, const exec_trace_session *s),
                    void *ctx)
{
    if (!ex->traces) return 0;
    int64_t oldest_ms = sib_now_us() / 1000 - (int64_t)TRACE_TTL_S * 1000;
    for (size_t k = 0; k < TRACE_RING; k++) {
        const exec_trace_session *s = ex->traces[(ex->trace_next + k) % TRACE_RING];
        if (!s || s->started_at_ms < oldest_ms || (want && memcmp(want, s->session_id, 16) != 0)) continue;
        int rc = fn(ctx, s);
        if (rc) return rc;
    }
    return 0;
}

void exec_trace_free_all(cql_exec *ex)
{
    for (size_t i = 0; ex->traces && i < TRACE_RING; i++)
        if (ex->traces[i]) sib_arena_destroy(ex->traces[i]->arena);
    free(ex->traces);
    ex->traces = NULL;
}
