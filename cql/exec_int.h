/* exec_int.h: private to the statement executor (cql/exec*.c).
 *
 * The executor turns a decoded request (cql.h) into statements (parser.h),
 * checks them against the schema (schema.h), asks the coordinator whether
 * the consistency level can be met (coordinator.h), and reads or writes the
 * local store (storage.h). Files:
 *   exec.c         request dispatch, prepared cache, QUERY/PREPARE/EXECUTE/BATCH,
 *                  consistency and timestamps, reply helpers
 *   exec_term.c    terms -> serialized values (constants, markers, functions)
 *   exec_where.c   WHERE analysis shared by SELECT, UPDATE and DELETE
 *   exec_ddl.c     keyspace/table DDL, USE, TRUNCATE, schema persistence
 *   exec_write.c   INSERT / UPDATE / DELETE / BATCH -> mutations
 *   exec_select.c  a running SELECT: reads, paging state, ordering, reply
 *   exec_selection.c selectors: compilation, evaluation, result columns
 *   exec_system.c  system.local/peers and the virtual system_schema tables
 *   exec_meta.c    bind and result metadata of PREPARE
 *   exec_describe.c DESCRIBE (server side, like Cassandra 4.0)
 *   exec_trace.c   request tracing and the kept sessions of system_traces
 *
 * Every statement runs with an exec_ctx that lives in the request arena.
 */
#ifndef SIB_EXEC_INT_H
#define SIB_EXEC_INT_H

#include "coordinator.h"
#include "cql.h"
#include "parser.h"
#include "schema.h"
#include "storage.h"
#include "cql_exec.h"

#define EXEC_CQL_VERSION "3.4.5"
#define EXEC_MAX_KEY_LEN 65535 /* partition key component, like Cassandra */
#define EXEC_POINT_MAX_KEY 16  /* primary key columns of a point-shaped WHERE (exec_where_point) */
#define EXEC_INSERT_PLAN_COLS 32 /* columns an INSERT may name and still keep their lookup in its plan */

typedef struct exec_prepared exec_prepared;

/* ---- exec_trace.c: request tracing ---- */

#define EXEC_TRACE_MAX_PARAMS 4

typedef struct exec_trace_event {
    uint8_t event_id[16];   /* timeuuid: the event's time, increasing */
    int32_t source_elapsed; /* µs since the request arrived */
    const char *activity;
} exec_trace_event;

/* One system_traces.sessions row and its events. */
typedef struct exec_trace_session {
    uint8_t session_id[16];
    uint8_t client[16];
    uint8_t client_len;      /* 4 or 16; 0 = unknown */
    const char *command;     /* "QUERY" */
    const char *request;     /* "Execute CQL3 query", ... */
    const char *thread;      /* the thread that ran the request */
    int64_t started_at_ms;
    int32_t duration_us;     /* -1 while the request runs */
    size_t nparams;
    const char *param_keys[EXEC_TRACE_MAX_PARAMS], *param_vals[EXEC_TRACE_MAX_PARAMS];
    size_t nevents;
    exec_trace_event *events;
    sib_arena *arena;        /* owns a kept session (NULL while in flight) */
} exec_trace_session;

/* Starts tracing req (its frame has CQL_FLAG_TRACING): sets req->trace_id,
 * trace_data and trace_done. Out of memory leaves the request untraced. */
void exec_trace_begin(cql_exec *ex, cql_request *req);
/* Adds an event (printf-style activity) to req's trace. Use EXEC_TRACE,
 * which costs one test when the request is not traced. */
void exec_trace_add(cql_request *req, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define EXEC_TRACE(req, ...)                                                                                           \
    do {                                                                                                               \
        if ((req)->trace_data) exec_trace_add((req), __VA_ARGS__);                                                   \
    } while (0)
/* The "query" parameter of a traced EXECUTE (its prepared text, copied into
 * the request arena). No-op when untraced. */
void exec_trace_query(cql_request *req, const char *query);
/* Calls fn for each kept session, oldest first, that is younger than the
 * trace TTL and (want != NULL) has session id want. Stops at fn's first
 * non-zero return and returns it. */
int exec_trace_each(cql_exec *ex, const uint8_t *want, int (*fn)(void *ctx, const exec_trace_session *s),
                    void *ctx);
void exec_trace_free_all(cql_exec *ex);

struct cql_exec {
    cql_executor base; /* first: the server calls base.request */
    storage *st;
    sch_catalog *cat;
    coord *co;
    struct gossip *gsp; /* membership for system.peers; may be NULL */
    cql_server *srv;   /* for schema-change events; may be NULL */
    sib_log *log;
    cql_exec_node_info node;
    int64_t *tokens;   /* node.tokens copied */
    sib_rng rng;
    sib_timeuuid_gen tug;
    int64_t last_ts;   /* server timestamps are strictly increasing */
    /* prepared statements by 16-byte id, LRU-bounded by bytes */
    sib_lru *prep;
    size_t batch_fail_bytes;
    int default_keyspace_rf;
    /* The last keyspace's parsed replication (every write asks for it);
     * valid while ddl_gen is unchanged, which also keeps repl_ks valid. */
    uint64_t ddl_gen;
    uint64_t repl_gen;
    const sch_keyspace *repl_ks;
    const sch_table *repl_table; /* a table of repl_ks looked up since (NULL: none) */
    coord_repl repl;
    /* The prepared statement EXECUTE is running, while it runs (NULL
     * otherwise): exec_resolve_table answers its tables from its plan. */
    struct exec_prepared *cur_prep;
    int tombstone_warn, tombstone_fail;
    int max_scatter_buckets;
    struct exec_bucket_ra *ra_orphans; /* read-aheads whose SELECT ended, answers still due */
    cql_exec_observer obs; /* metrics hooks (exec.c) */
    int cur_stmt_kind;     /* kind of the request being dispatched, for obs */
    /* One clock read at each end of a request (exec_request) serves the
     * metrics: req_now_us is the start, which the request's first
     * exec_ctx_init takes as its now_us (0: read the clock), and a table
     * operation that ends inside the request is noted at its end
     * (pend_*: at most one, reported with the request). */
    bool in_request;
    int64_t req_now_us;
    bool pend_op, pend_write;
    int64_t pend_start_us;
    uint8_t pend_table[16];
    /* kept trace sessions (exec_trace.c): a ring, allocated on first use */
    exec_trace_session **traces;
    size_t trace_next;
    sib_buf pk_scratch; /* partition key encoding (exec_where.c, exec_write.c), memory kept */
    /* a finished SELECT's state and buffers, kept for the next one
     * (exec_select.c) */
    struct sel_read *spare_read;
    /* emptied mutations kept for the next write (exec_write.c) */
    st_mutation *spare_muts[16];
    size_t nspare_muts;
    /* the schema rows with their timestamps (exec_ddl.c), what the schema
     * merge compares with a peer's */
    sch_defs *defs;
    cql_exec_schema_fn schema_changed; /* after a local DDL is durable */
    void *schema_ctx;
    struct merge_job *merges; /* peers' schemas waiting to be durable */
};
/* Frees the kept mutations (exec_write.c). */
void exec_spare_muts_free(cql_exec *ex);
/* Frees the kept SELECT state (exec_select.c). */
void exec_spare_read_free(cql_exec *ex);

/* A prepared statement: its text and keyspace, re-parsed into a fresh arena
 * on every EXECUTE would be wasteful, so the AST is kept in `arena`. */
struct exec_prepared {
    uint8_t id[16];
    char *keyspace;   /* session keyspace at PREPARE time ("" = none) */
    char *query;
    size_t query_len;
    sib_arena *arena; /* owns stmt */
    prs_stmt *stmt;
    /* The table the statement names, resolved once and kept while the
     * schema is unchanged (plan_gen == cql_exec.ddl_gen): a DDL, local or
     * merged from a peer, bumps ddl_gen and the next EXECUTE resolves it
     * again, so an ALTER or a DROP and re-CREATE of the same name is seen.
     * plan_q is the name in stmt that was resolved (NULL: no plan). */
    uint64_t plan_gen;
    const prs_qname *plan_q;
    const sch_table *plan_table;
    st_table *plan_store; /* plan_table's storage (exec_table_store); NULL: not yet */
    /* A SELECT of plain columns: its compiled selection for plan_table
     * (exec_select.c, one malloc'd block of at most sel_room bytes, which
     * the cache weight counts from the start); NULL: not built. */
    struct sel_list *plan_sel;
    size_t sel_room;
    /* A SELECT: does its WHERE have the point shape for plan_table
     * (exec_where_point_shape)? 0 = not looked at yet, 1 = yes (plan_key_of
     * filled), -1 = no. */
    int8_t plan_point;
    uint8_t plan_key_of[EXEC_POINT_MAX_KEY];
    /* An INSERT: the index in plan_table of each column it names, in its
     * order, so an EXECUTE does not look the names up again (exec_write.c).
     * 0 = not looked up yet, 1 = plan_ins_col filled, 2 = that and the
     * statement has the simple shape (insert_simple: plan_ins_pos filled),
     * -1 = not kept (more than EXEC_INSERT_PLAN_COLS columns). */
    int8_t plan_ins;
    uint16_t plan_ins_col[EXEC_INSERT_PLAN_COLS];
    uint8_t plan_ins_pos[EXEC_INSERT_PLAN_COLS]; /* its positions in the table's column order */
    /* Reads that answer in a later callback hold the statement (its AST):
     * an eviction meanwhile frees it when the last one lets go. */
    unsigned refs;
    bool evicted;
};

/* Per-statement context. */
typedef struct exec_ctx {
    cql_exec *ex;
    cql_request *req;
    sib_arena *arena;        /* = req->arena */
    const prs_stmt *stmt;    /* the statement (for a batch: the inner one) */
    const prs_marker *markers; /* markers of the top statement */
    size_t nmarkers;
    const cql_value *values; /* bound values, nvalues of them */
    size_t nvalues;
    const cql_str *names;    /* NAMES_FOR_VALUES names or NULL */
    const cql_params *params;/* QUERY/EXECUTE params; NULL inside BATCH */
    int consistency;         /* effective level (USING CONSISTENCY wins) */
    int64_t now_us;
    int32_t now_s;
    int64_t timestamp;       /* default write timestamp: client's or server's */
    const char *keyspace;    /* session keyspace, "" = none */
} exec_ctx;

/* ---- exec.c ---- */

/* A fresh server timestamp (µs), strictly greater than the previous one. */
int64_t exec_next_timestamp(cql_exec *ex);
/* Looks up a table named in a statement; messages as Cassandra 4.x:
 * `No keyspace has been specified. USE a keyspace, or explicitly specify
 * keyspace.tablename`, `keyspace %s does not exist`, `table %s does not exist`. */
int exec_resolve_table_slow(exec_ctx *c, const prs_qname *q, const sch_table **out, sib_err *err);
static inline int exec_resolve_table(exec_ctx *c, const prs_qname *q, const sch_table **out, sib_err *err)
{
    /* EXECUTE of a prepared statement: its plan, while the schema is the
     * one it was resolved under (q identifies the name within the AST; the
     * keyspace, the statement's own, cannot differ between executions).
     * Inline: every prepared read asks. */
    exec_prepared *p = c->ex->cur_prep;
    if (p && p->plan_q == q && p->plan_gen == c->ex->ddl_gen) {
        *out = p->plan_table;
        return 0;
    }
    return exec_resolve_table_slow(c, q, out, err);
}
/* The keyspace's replication as a coordinator strategy. */
int exec_keyspace_repl(exec_ctx *c, const char *ks, coord_repl *out, sib_err *err);
/* The replication of t's keyspace, by reference: valid until the next
 * exec_table_repl/exec_keyspace_repl call or DDL (copy it to keep it across
 * a callback). Repeated calls for one table cost no name lookup. */
int exec_table_repl_slow(exec_ctx *c, const sch_table *t, const coord_repl **out, sib_err *err);
static inline int exec_table_repl(exec_ctx *c, const sch_table *t, const coord_repl **out, sib_err *err)
{
    cql_exec *ex = c->ex;
    /* a table pointer, like repl_ks, stays valid while ddl_gen is unchanged */
    if (ex->repl_table == t && ex->repl_ks && ex->repl_gen == ex->ddl_gen) {
        *out = &ex->repl;
        return 0;
    }
    return exec_table_repl_slow(c, t, out, err);
}
/* *dst = *src, but only the part the coordinator reads (dcs[0..ndcs)): the
 * struct is over a kilobyte and a point read kept a copy of it. */
void exec_repl_copy(coord_repl *dst, const coord_repl *src);
/* Bytes a prepared statement may keep for its compiled selection (0: a
 * statement whose selection is not kept: not a SELECT of plain columns). */
size_t exec_select_plan_room(const prs_stmt *s);
/* Keeps p alive past its eviction until the matching release. */
void exec_prepared_drop(exec_prepared *p); /* frees it: evicted, and its last hold released */
static inline void exec_prepared_hold(exec_prepared *p) { p->refs++; }
static inline void exec_prepared_release(exec_prepared *p)
{
    if (!--p->refs && p->evicted) exec_prepared_drop(p);
}
/* Forgets p's plan (exec_resolve_table resolves again). */
void exec_plan_clear(exec_prepared *p);
/* t's storage table (storage_table), from the running prepared statement's
 * plan when it has it. */
st_table *exec_table_store_slow(exec_ctx *c, const sch_table *t);
static inline st_table *exec_table_store(exec_ctx *c, const sch_table *t)
{
    exec_prepared *p = c->ex->cur_prep;
    if (p && p->plan_table == t && p->plan_gen == c->ex->ddl_gen && p->plan_store) return p->plan_store;
    return exec_table_store_slow(c, t);
}
/* A string formatted into c's arena (exec_selection.c); NULL when out of memory. */
char *arena_printf(exec_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports a finished read or write of table_id to the observer (metrics);
 * start_us is the request's start (exec_ctx.now_us). */
void exec_note_table_op_slow(cql_exec *ex, const uint8_t table_id[16], bool write, int64_t start_us);
static inline void exec_note_table_op(cql_exec *ex, const uint8_t table_id[16], bool write, int64_t start_us)
{
    /* inside a request: timed by exec_request's clock read at its end */
    if (ex->obs.table_op && ex->in_request && !ex->pend_op) {
        ex->pend_op = true;
        ex->pend_write = write;
        ex->pend_start_us = start_us;
        memcpy(ex->pend_table, table_id, 16);
        return;
    }
    exec_note_table_op_slow(ex, table_id, write, start_us);
}

/* Prepared cache lookup (NULL when unknown) and the Unprepared error. */
exec_prepared *exec_prepared_find(cql_exec *ex, const uint8_t *id, size_t len);
int exec_unprepared(const uint8_t *id, size_t len, sib_err *err);
/* Fills c for one statement of a request (values/consistency from p when
 * non-NULL). */
void exec_ctx_init(exec_ctx *c, cql_exec *ex, cql_request *req, const prs_stmt *s, const cql_params *p,
                   const char *keyspace);

/* ---- exec_term.c ---- */

/* Evaluates term for a receiver (name + type) into out (memory from the
 * arena). A null value gives out->len = -1; an UNSET bound value sets *unset
 * (when unset is NULL, unset is an error). Markers are validated against the
 * receiver type. */
int exec_term_value(exec_ctx *c, const prs_term *t, const sch_type *type, const char *recv_name, sch_val *out,
                    bool *unset, sib_err *err);
/* An integer operand (LIMIT, TTL, TIMESTAMP): `what` names it in messages.
 * *present is false for an unset marker. */
int exec_term_int(exec_ctx *c, const prs_term *t, const char *what, int64_t *out, bool *present, sib_err *err);
/* CAST: identity, number <-> number, anything -> text/ascii. */
bool exec_castable(const sch_type *from, sch_type_code to);
/* Converts a (of type from) as CAST does: numbers as Java casts do, anything
 * to text by its text form (into text, which the result then points into),
 * small results into tmp (16 bytes). Null in, null out. */
sch_val exec_cast_value(const sch_type *from, const sch_type *to, sch_val a, uint8_t *tmp, sib_buf *text);
/* typeAsBlob / blobAsType: argument and result types; false for other names. */
bool exec_blob_conversion(const char *name, const sch_type **from, const sch_type **to);
/* The argument type of a native function with one overload of one
 * argument (typeAsBlob, blobAsType, minTimeuuid, dateOf, ...), which types
 * a literal or marker argument as Cassandra infers it; NULL otherwise. */
const sch_type *exec_fn_arg_type(const char *name);
/* exec_json.c: a JSON string of s[0..n) (Jackson's escapes), and the JSON
 * text Cassandra's toJSONString gives a value (len < 0: null), appended. */
void exec_json_quote(const uint8_t *s, size_t n, sib_buf *out);
void exec_json_value(const sch_type *t, const uint8_t *v, int32_t len, sib_buf *out);
/* fromJson: JSON text -> a value of type t (arena; JSON null -> null), with
 * Cassandra's "Error decoding JSON value for <recv>: ..." on a bad value. */
int exec_from_json(exec_ctx *c, const char *text, size_t n, const sch_type *t, const char *recv, sch_val *out,
                   sib_err *err);
/* INSERT ... JSON: *out is s with a column and a fromJson(...) term per
 * member of the object (DEFAULT NULL adds null for every other column). */
int exec_json_insert(exec_ctx *c, const sch_table *t, const prs_insert *s, prs_insert *out, sib_err *err);
/* Can term t be given to a receiver of type `type` at all (Cassandra's
 * testAssignment for a constant's kind; other terms are checked when
 * evaluated)? */
bool exec_term_assignable(const prs_term *t, const sch_type *type);
/* minTimeuuid(ms) / maxTimeuuid(ms): the smallest / largest timeuuid of
 * that millisecond, as Cassandra builds them, into out (16 bytes). */
void exec_timeuuid_bound(int64_t ms, bool max, uint8_t *out);
/* Bound value i of the statement (NULL/unset aware), by marker index. */
const cql_value *exec_marker_value(exec_ctx *c, int marker);
/* Appends a term as Cassandra prints it in messages: `'a'`, `1`, `?`,
 * `(?, ?)`, `[1, 2]`, `{'k': 1}`, `now()`. */
void exec_term_text(const prs_term *t, sib_buf *out);

/* ---- exec_where.c ---- */

typedef struct exec_filter {
    const sch_column *col;
    prs_op op;          /* EQ, NEQ, LT, LTE, GT, GTE, IN, CONTAINS, CONTAINS_KEY */
    sch_val val;        /* op != IN; CONTAINS: an element (a map's value), CONTAINS_KEY: a map key */
    sch_val *in;        /* op == IN */
    size_t nin;
    bool entry;         /* m[key] = val: key holds the map key */
    sch_val key;
} exec_filter;

typedef enum { EXEC_WHERE_SELECT, EXEC_WHERE_UPDATE, EXEC_WHERE_DELETE } exec_where_kind;

/* CONTAINS, CONTAINS KEY and m[key] = v on collection column col: the type
 * of the term (and of key when entry) and Cassandra's receiver name for it
 * (key(m) / value(m), arena), for evaluation and bind-marker metadata. */
const sch_type *exec_coll_term_type(exec_ctx *c, const sch_column *col, bool want_key, const char **name);

/* Cassandra's "Cannot execute this query as it might involve data filtering
 * ... use ALLOW FILTERING" (exec_where.c). */
extern const char EXEC_FILTERING_MSG[];

typedef struct exec_restr {
    /* Partition keys (serialized, as storage takes them), in the order the
     * IN lists give them, duplicates removed. Set when every partition key
     * column is restricted by EQ or IN (pk_complete). */
    bool pk_complete;
    size_t npks;
    sch_val *pks;
    sch_val point_pk;   /* exec_where_point's one key when it has no bytes of its own (pks points here) */
    /* token(pk) range (SELECT only); meaningful when token_restricted */
    bool token_restricted;
    int64_t token_start;  /* start is inclusive/exclusive per token_start_incl */
    bool token_start_incl;
    int64_t token_end;
    bool token_end_incl;
    /* Clustering: slices in storage (byte-comparable) order, sorted and
     * non-overlapping; nslices == 0 means the whole partition. */
    size_t nslices;
    st_slice *slices;
    /* Clustering columns restricted by EQ/IN from the first one on; when it
     * equals the clustering count, every slice is exactly one full key and
     * cks[0..ncks) lists those keys (INSERT/UPDATE/DELETE of rows). */
    size_t ck_eq_prefix;
    bool ck_has_slice;    /* a range on the column after the EQ prefix */
    bool ck_none;         /* no clustering key can match (e.g. c IN ()): one empty slice */
    bool ck_has_in;
    size_t ncks;
    sch_val *cks;
    /* Restrictions that need ALLOW FILTERING (regular columns, clustering
     * columns after a gap, partial partition keys); applied by SELECT. */
    size_t nfilters;
    exec_filter *filters;
    bool needs_filtering;
    bool coll_filters;    /* CONTAINS / CONTAINS KEY / m[k] = v filters (ALLOW FILTERING) */
} exec_restr;

/* Analyses the WHERE clause of a SELECT/UPDATE/DELETE against t, evaluating
 * terms, and reports Cassandra's messages for unsupported combinations (see
 * docs/cql.md 3.3 and 3.4). For SELECT, a filter that needs ALLOW
 * FILTERING is accepted only if allow_filtering is set. */
int exec_analyze_where(exec_ctx *c, const sch_table *t, const prs_relation *rels, size_t n, exec_where_kind kind,
                       bool allow_filtering, exec_restr *out, sib_err *err);
/* A prepared SELECT's WHERE of the point shape (exactly one EQ on each
 * partition key column and on each of the first m clustering columns, m
 * from none to all, nothing else, on a table without derived key columns)
 * has the same analysis whatever the values bound: one partition, read
 * whole, one row of it or the rows of one clustering prefix, no filter. exec_where_point_shape tells whether rels has that
 * shape for t (once per plan: it looks the columns up by name) and fills
 * key_of[i], the key column relation i restricts (a partition key position,
 * or the partition key count plus a clustering position); exec_where_point
 * then gives what exec_analyze_where would for EXEC_WHERE_SELECT (its
 * messages too), evaluating only the values. */
bool exec_where_point_shape(const sch_table *t, const prs_relation *rels, size_t n, uint8_t *key_of);
int exec_where_point(exec_ctx *c, const sch_table *t, const prs_relation *rels, size_t n, const uint8_t *key_of,
                     exec_restr *out, sib_err *err); /* *out may point into itself: use it where it is, not a copy */
/* exec_clustering.c: clustering restrictions (single- and multi-column)
 * gathered in WHERE order, then turned into slices. check_order: Cassandra's
 * "a slice must be the last restriction" checks (off with ALLOW FILTERING). */
typedef struct exec_ck exec_ck;
exec_ck *exec_ck_new(exec_ctx *c, const sch_table *t); /* arena; NULL on OOM */
/* col op vals: EQ (1 value), IN (nvals), or a bound (<, <=, >, >=; 1 value).
 * vals must live in the arena. */
int exec_ck_add_single(exec_ck *k, const sch_column *col, prs_op op, sch_val *vals, size_t nvals, bool check_order,
                       sib_err *err);
/* (c1, c2, ...) op tuple / IN (...) / IN ?. */
int exec_ck_add_multi(exec_ck *k, const prs_relation *r, bool check_order, sib_err *err);
/* Fills out's clustering part (slices, cks, ck_* fields, filters when
 * SELECT allows filtering). */
int exec_ck_finish(exec_ck *k, exec_where_kind kind, bool allow_filtering, exec_restr *out, sib_err *err);
/* PREPARE-time checks of a multi-column relation: its columns (clustering,
 * in key order, no repeats), no !=, and the arity of its tuple literals. */
int exec_ck_check_multi(exec_ctx *c, const sch_table *t, const prs_relation *r, sib_err *err);
/* tuple<types of r's columns> (bind metadata of "(a, b) = ?"); NULL if a
 * column is unknown. */
const sch_type *exec_ck_tuple_type(exec_ctx *c, const sch_table *t, const prs_relation *r);

/* Does value v of column f->col satisfy the filter? */
bool exec_filter_match(const exec_filter *f, const uint8_t *v, int32_t len);

/* ---- bucketed partition keys (exec_bucket.c) ---- */

/* INSERT into a table with BUCKET / SALT: computes the derived partition key
 * values from the row's clustering values (vals/set/unset by column index),
 * or refuses a given one that differs ("it would be ..."). */
int exec_bucket_insert(exec_ctx *c, const sch_table *t, sch_val *vals, bool *set, const bool *unset, sib_err *err);
/* The values derived column col takes under the statement's restrictions on
 * its source: the buckets of ts = / IN / a range with both bounds (at most
 * max_scatter_buckets), or every salt. Refusals name the column and limit. */
int exec_bucket_pk_values(exec_ctx *c, const sch_table *t, const sch_column *col, const prs_relation *rels, size_t n,
                          sch_val **vals, size_t *nvals, sib_err *err);
size_t exec_bucket_max_partitions(void);
/* With full clustering keys: drops the partitions that hold none of them
 * (refusing a given derived value that matches no row). */
int exec_bucket_prune(exec_ctx *c, const sch_table *t, exec_restr *r, sib_err *err);
/* Does partition pk hold the row with encoded full clustering key ck? */
bool exec_bucket_owns(exec_ctx *c, const sch_table *t, const sch_val *pk, const sch_val *ck);
/* Reads: the partitions in the order that streams the rows in clustering
 * order: natural key, bucket (reversed as asked), salt. */
int exec_bucket_order(exec_ctx *c, const sch_table *t, exec_restr *r, bool reversed, sib_err *err);
/* A SELECT's plan: the order above; *merge when the partitions hold
 * several salts, whose rows the SELECT then merges (exec_select.c). */
int exec_bucket_read_plan(exec_ctx *c, const sch_table *t, exec_restr *r, bool reversed, bool *merge, sib_err *err);
/* Read-ahead of the next buckets through the replicas (a SELECT that reads
 * the partitions pks[] in order; pks and slices must outlive every call
 * but release). NULL when not worth it or out of memory. */
typedef struct exec_bucket_ra exec_bucket_ra;
exec_bucket_ra *exec_bucket_ra_create(cql_exec *ex, const uint8_t table_id[16], const sch_val *pks, size_t npks,
                                      const st_slice *slices, size_t nslices, const coord_repl *repl, int cl,
                                      bool repair, int32_t now_s);
/* The first piece of partition idx through the replicas: 1 with *page (the
 * answer was there), 1 without (fn(ctx, ...) runs once it comes, as for
 * coord_read), 0 (not read ahead: ask the replicas), <0 failed. */
int exec_bucket_ra_read(exec_bucket_ra *ra, size_t idx, const st_rreq *rq, coord_read_fn fn, void *ctx,
                        st_rpage **page, sib_err *err);
/* The SELECT is done with it (answers still due free it when they come). */
void exec_bucket_ra_release(exec_bucket_ra *ra);
/* Executor shutdown: the answers still due never come (the coordinator
 * drops its reads without calling back): frees the read-aheads waiting. */
void exec_bucket_ra_free_orphans(cql_exec *ex);
/* Do two partition keys of t differ only in their derived columns? */
bool exec_bucket_same_natural(const sch_table *t, const uint8_t *a, size_t al, const uint8_t *b, size_t bl);

/* ---- statements ---- */

/* Each runs one statement and replies (exactly once) on c->req. */
void exec_select(exec_ctx *c, const prs_select *s);
void exec_describe(exec_ctx *c, const prs_describe *d);
void exec_ddl(exec_ctx *c, const prs_stmt *s);
void exec_modification(exec_ctx *c, const prs_stmt *s);
void exec_batch_query(exec_ctx *c, const prs_stmt *s);   /* BEGIN BATCH ... as one QUERY */
void exec_batch_request(cql_exec *ex, cql_request *req); /* the BATCH opcode */

/* Replies with err (mapping extras: Unavailable, AlreadyExists, Unprepared). */
void exec_reply_err(exec_ctx *c, const sib_err *err);
void exec_reply_err_req(cql_request *req, const sib_err *err);

/* Hands a table's compaction map and gc_grace_seconds to its store (CREATE,
 * ALTER and schema load). Logged, not fatal, if storage refuses them. */
void exec_table_options_to_storage(cql_exec *ex, const sch_table *t);

/* Loads the persisted schema into ex->cat (startup) and persists changes. */
int exec_schema_load(cql_exec *ex, sib_err *err);
/* The executor is going away: merges still waiting for their write finish
 * without callbacks (storage_close runs them after the executor is gone). */
void exec_schema_merges_orphan(cql_exec *ex);
int exec_schema_persist_keyspace(cql_exec *ex, const char *ks, bool dropped, st_done_fn done, void *ctx, sib_err *err);
int exec_schema_persist_table(cql_exec *ex, const sch_table *t, bool dropped, const char *ks, const char *name,
                              st_done_fn done, void *ctx, sib_err *err);

/* ---- metadata for PREPARE ---- */

/* Bind and result metadata of a statement (arena memory): names/types per
 * marker, the pk indexes, and the result columns of a SELECT. */
typedef struct exec_meta {
    const char *ks, *table;
    size_t nbind;
    const char **bind_names;
    const sch_type **bind_types;
    size_t npk;
    uint16_t *pk_index;
    bool has_result;
    size_t ncols;
    const char **col_names;
    const sch_type **col_types;
} exec_meta;
int exec_stmt_meta(exec_ctx *c, const prs_stmt *s, exec_meta *out, sib_err *err);
/* Result columns of a SELECT (names and types), used by exec_stmt_meta and
 * by exec_select so both agree. */
int exec_select_columns(exec_ctx *c, const sch_table *t, const prs_select *s, size_t *ncols, const char ***names,
                        const sch_type ***types, sib_err *err);


/* ==== Shared with exec_selection.c / exec_write.c ========================= */

/* Non-frozen (multi-cell) collection cells, as exec_write.c must store them
 * and exec_select.c reads them back (one cell per element, ordered by path):
 *   list: path = a byte-comparable position (e.g. a 16-byte timeuuid key),
 *         value = the serialized element;
 *   set:  path = the element's byte-comparable form (sch_ck_encode_component,
 *         ASC), value = the serialized element (so reads need no path decoder);
 *   map:  path = the key's byte-comparable form, value = i32 BE key length +
 *         serialized key + serialized value.
 * Builds the collection value (the column's type, protocol form) from the
 * column's live cells cells[0..n) and APPENDS it to out. n must be > 0
 * (a collection without live cells is null). SIB_ECORRUPT on a bad map cell. */
int exec_collection_from_cells(const sch_column *col, const st_cell_view *cells, size_t n, sib_buf *out,
                               sib_err *err);

#endif
