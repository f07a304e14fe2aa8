/* exec_select_int.h: private to the SELECT executor; included only by
 * exec_select.c, exec_selection.c, exec_system.c and exec_bucket.c.
 *
 * One SELECT is one sel_run, shared by four files:
 *   exec_selection.c  selectors: compiled into sel_node trees (sel_list),
 *                     evaluated on one row (row_ctx) by eval()/col_value()
 *   exec_select.c     the run: user-table reads, on_row() (filters, limits,
 *                     page size), the paging state, reply_rows(), and the
 *                     ORDER BY / LIMIT / DISTINCT checks both table kinds use
 *   exec_system.c     system tables: rows materialised in memory and fed to
 *                     on_row()/reply_rows() like user-table rows
 *   exec_bucket.c     the merge of a SALT table's salts (exec_salt_merge_*)
 * Memory: sel_node/sel_list and most run fields live in the request arena
 * (exec_ctx.arena); the sib_bufs of a sel_run and run->ckv are malloc'd and
 * freed by the run (the reply frees the arena before the run ends).
 */
#ifndef SIB_EXEC_SELECT_INT_H
#define SIB_EXEC_SELECT_INT_H

#include "exec_int.h"

/* ---- small helpers (static inline: no symbol leaves these files) ---------- */

static inline int oom(sib_err *err) { return sib_err_set(err, SIB_ENOMEM, "out of memory"); }

static inline sch_val val_null(void)
{
    sch_val v = {NULL, -1};
    return v;
}

static inline sch_val val_of(const void *p, size_t n)
{
    sch_val v = {p, (int32_t)n};
    return v;
}

/* v as 8 bytes big endian in tmp; the result points into tmp. */
static inline sch_val put64(uint8_t *tmp, int64_t v)
{
    put_be64(tmp, (uint64_t)v);
    return val_of(tmp, 8);
}

/* ---- selectors (exec_selection.c) ----------------------------------------- */

typedef enum {
    SN_COLUMN,
    SN_WRITETIME,
    SN_MAXWRITETIME,
    SN_TTL,
    SN_COUNT,  /* COUNT(*) (col NULL) or count(col) */
    SN_AGG,    /* min/max/sum/avg(arg) (exec_group.c) */
    SN_TOKEN,
    SN_FN,
    SN_CONST,
    SN_CAST,
    SN_CONVERT, /* typeAsBlob(arg) / blobAsType(arg): the same bytes */
    SN_ELEMENT, /* arg[key]: map value / set element (exec_selection.c) */
    SN_SLICE,   /* arg[from..to]: the sub-map / sub-set, bounds inclusive */
    SN_TOJSON,  /* toJson(arg): its JSON text (exec_json.c) */
} sn_kind;

typedef enum {
    FN_NOW, FN_CUR_TIMEUUID, FN_UUID, FN_CUR_TIMESTAMP, FN_CUR_DATE, FN_CUR_TIME,
    FN_TO_TIMESTAMP, FN_TO_UNIX_TIMESTAMP, FN_TO_DATE, FN_DATE_OF, FN_UNIX_TIMESTAMP_OF,
    FN_MIN_TIMEUUID, FN_MAX_TIMEUUID,
} fn_id;

typedef enum { AGG_MIN, AGG_MAX, AGG_SUM, AGG_AVG } agg_kind;

typedef struct sel_node {
    sn_kind kind;
    fn_id fn;
    agg_kind agg;           /* SN_AGG */
    const sch_column *col;  /* COLUMN, WRITETIME, MAXWRITETIME, TTL, count(col) */
    const sch_type *type;   /* result type */
    const char *name;       /* result name without alias */
    struct sel_node *arg;   /* FN / CAST argument */
    const prs_term *term;   /* CONST: the term under the type hint; ELEMENT and
                               WRITETIME/TTL of an element: the key */
    sch_val cval;           /* CONST, ELEMENT key: evaluated once per statement */
    const prs_term *from, *to; /* SLICE bounds (NULL: open) */
    sch_val fromv, tov;     /* SLICE: evaluated bounds, len < 0 = open */
    const sch_type *key_type; /* ELEMENT/SLICE/element WRITETIME: the key's type */
    const char *key_name;   /* its receiver name: key(m) / value(s); CONST
                               argument of a function: arg0(system.f) */
    struct sel_scratch *scratch; /* SLICE, list-valued WRITETIME/TTL: the value built (arena) */
    bool wt_slice;          /* WRITETIME/MAXWRITETIME/TTL of col[from..to] */
    sch_val key_path, from_path, to_path; /* element key / slice bounds as cell paths */
} sel_node;

typedef struct sel_list {
    size_t n;
    sel_node **nodes;
    const char **names; /* alias or node name */
    const sch_type **types;
    bool aggregate;     /* a top-level aggregate (COUNT, min, max, sum, avg) */
} sel_list;

/* ---- a running SELECT (exec_select.c) --------------------------------------- */

/* Paging state kinds (the format is at the top of exec_select.c). */
enum { PS_PARTITIONS = 1, PS_ROWINDEX = 2 };

typedef struct pstate {
    bool present;
    uint8_t kind;
    uint64_t pk_index;  /* position in the sorted IN list */
    sch_val pk;
    bool in_partition;
    sch_val ck;
    int64_t limit_left; /* -1 = no LIMIT */
    int64_t ppl_left;   /* -1 = no PER PARTITION LIMIT */
    uint64_t row_index;
} pstate;

typedef struct sel_run {
    exec_ctx *c;
    const sch_table *t;
    const prs_select *s;
    sel_list sel;
    bool sel_kept;      /* sel is the prepared statement's (exec_select.c) */
    exec_filter *filters;
    size_t nfilters;
    bool distinct, reversed, post_order;
    int64_t ppl;        /* PER PARTITION LIMIT, -1 = none */
    int32_t page_size;  /* <= 0: no paging */
    pstate ps;          /* where this page starts (ps.present = resuming) */
    /* progress */
    int64_t limit_left, ppl_left;
    int64_t last_ppl_left; /* ppl_left right after the last emitted row */
    /* the salts of a SALT table's natural key, merged (exec_select.c) */
    bool salt_merge;
    int32_t merge_page;  /* the page size asked for (<= 0: no paging) */
    int64_t merge_left;  /* what is left of LIMIT (-1 = none) */
    size_t nrows;
    bool more, stop;
    /* last emitted row, for the next paging state (last_pk, last_ck below) */
    bool last_in_partition;
    uint64_t last_pk_index;
    /* aggregates and GROUP BY (exec_group.c): rows go through group_row() */
    bool grouping;
    struct grp_state *grp; /* malloc'd, freed by group_free() */
    size_t nck;
    sch_val *pkv;
    uint64_t tombstones; /* met by the reads of this query (thresholds) */
    uint64_t rows_read;  /* live rows the reads met (trace events) */
    /* Last: the buffers a kept run reuses (run_init clears everything
     * before them and keeps them). */
    sib_buf out;        /* rows: u32 cklen | ck | ncols * (i32 len | bytes) */
    sib_buf offs;       /* size_t offset of each row in out */
    sib_buf last_pk, last_ck;
    sib_buf coll, text; /* scratch */
    sib_buf *ckv;       /* decoded clustering values (malloc'd, nck of them) */
    size_t ckv_cap;     /* ckv's length (>= nck): a kept run reuses it */
    sch_val pkv_room[4]; /* pkv of a key of up to 3 columns, without an arena block */
} sel_run;

/* One row as the evaluator sees it. */
typedef struct row_ctx {
    const uint8_t *pk;      /* serialized partition key (NULL for system rows) */
    size_t pklen;
    const sch_val *pkv;     /* partition key values */
    const uint8_t *ck;      /* encoded clustering key (NULL: static-only row) */
    size_t cklen;
    bool ck_decoded;
    size_t nck;
    const st_row *row, *srow;
    const sch_val *allv;    /* system rows: a value per table column */
} row_ctx;

/* What on_row() tells the reader to do next. */
enum { ROW_NEXT = 0, ROW_STOP = 1, ROW_PARTITION_DONE = 2 };

/* ---- exec_selection.c ---------------------------------------------------- */

/* Column `name` of t; NULL (and Cassandra's "Undefined column name") if none. */
const sch_column *need_column(const sch_table *t, const char *name, sib_err *err);
/* Compiles the selectors of s (every column for SELECT *) into out (arena). */
int compile_selection(exec_ctx *c, const sch_table *t, const prs_select *s, sel_list *out, sib_err *err);
/* Evaluates the typed constants under n once, before any row is read. */
int prepare_consts(exec_ctx *c, sel_node *n, sib_err *err);
/* DISTINCT validation: the first column n reads that is neither a partition
 * key nor static (NULL if none), and whether n selects column col. */
const sch_column *sel_first_non_key(const sel_node *n);
bool sel_uses_column(const sel_node *n, const sch_column *col);
/* The aggregate in selector n's chain (n itself, or under scalar functions:
 * intAsBlob(max(v))), NULL if none; a chain holds at most one. */
const sel_node *sel_agg_node(const sel_node *n);
/* The value of col in the current row (null when absent). A collection is
 * rebuilt into run->coll: valid until the next collection value. */
int col_value(sel_run *run, row_ctx *rc, const sch_column *col, sch_val *out, sib_err *err);
/* Evaluates a scalar selector (COUNT gives null: the caller fills it in);
 * tmp (16 bytes) holds small results, so *out may point into it. */
int eval(sel_run *run, const sel_node *n, row_ctx *rc, uint8_t *tmp, sch_val *out, sib_err *err);

/* ---- exec_group.c: aggregates and GROUP BY ----------------------------------- */

/* Sets up run->grp when the selection aggregates or s has GROUP BY. */
int group_init(sel_run *run, sib_err *err);
void group_free(sel_run *run);
/* GROUP BY validation with Cassandra's messages, once the WHERE clause is
 * known to be valid; fixes the columns that make a group's key. */
int check_group_by(sel_run *run, sib_err *err);
/* One matching row of a grouped or aggregate query: it joins the open group
 * or closes it and opens the next (LIMIT, PER PARTITION LIMIT and the page
 * size count groups). Returns ROW_* or < 0. */
int group_row(sel_run *run, row_ctx *rc, uint64_t pk_index, sib_err *err);
/* Before the reply: emits the open group (or, for aggregates without GROUP
 * BY over no row, Cassandra's single row of zero counts and sums). */
int group_finish(sel_run *run, sib_err *err);
/* The open group's current result of aggregate node n, for the scalar
 * functions over it; valid until the next call. */
int group_agg_value(sel_run *run, const sel_node *n, sch_val *out, sib_err *err);

/* ---- exec_json.c ----------------------------------------------------------- */

/* SELECT JSON: turns the buffered rows into one [json] text cell each and
 * the selection into that single column (before the reply). */
int json_rewrite(sel_run *run, sib_err *err);
/* The result columns of a SELECT JSON: one text column named [json]. */
int exec_json_columns(exec_ctx *c, size_t *n, const char ***names, const sch_type ***types, sib_err *err);

/* ---- exec_select.c --------------------------------------------------------- */

/* Appends one cell (i32 length | bytes, -1 = null) to a row buffer. */
void out_cell(sib_buf *b, sch_val v);
/* Remembers rc as the last row taken, where a paging state resumes. */
void note_last_row(sel_run *run, row_ctx *rc, uint64_t pk_index);

/* Decides what happens to one candidate row (filters, PER PARTITION LIMIT,
 * LIMIT, page size, aggregates). pk_index is the row's position in the sorted
 * IN list (0 otherwise). Returns ROW_* or < 0. */
int on_row(sel_run *run, row_ctx *rc, uint64_t pk_index, sib_err *err);
/* Paging state: the "Invalid value for the paging state" error; the kind 2
 * (row index) encoding appended to b; decoding the client's state (if any)
 * into ps, where `kind` is what this query produces. */
int ps_invalid(sib_err *err);
void ps_encode_rowindex(uint64_t next, int64_t limit_left, sib_buf *b);
int ps_decode(const cql_params *params, uint8_t kind, pstate *ps, sib_err *err);
/* Replies with the buffered page and paging state ps (may be empty);
 * `limit` trims post-ordered results (-1 = all). */
void reply_rows(sel_run *run, const sib_buf *ps, int64_t limit);
/* Checks shared by user and system tables, with Cassandra's messages:
 * ORDER BY -> *reversed (ck_eq[i]: clustering column i restricted by EQ),
 * LIMIT / PER PARTITION LIMIT terms (-1 = none), SELECT DISTINCT
 * (key_range: the partition key is not fully restricted). */
int check_order_by(const sch_table *t, const prs_select *s, bool pk_restricted, const bool *ck_eq,
                   bool *reversed, sib_err *err);
int check_limit(exec_ctx *c, const prs_term *term, int64_t *out, sib_err *err);
int check_distinct(sel_run *run, bool key_range, sib_err *err);

/* The paging state of kind 1 for the last emitted row (run->last_*), appended to b. */
void ps_encode_partitions(sel_run *run, sib_buf *b);
/* The slices restricted to rows strictly after ck (before it when
 * reversed); out has room for n (or 1) slices; 0 = nothing left. */
size_t cut_slices(const st_slice *in, size_t n, const uint8_t *ck, size_t cl, bool reversed, st_slice *out);
/* qsort_r order of buffered rows by clustering key (ctx: bool *reversed). */
int post_order_cmp(const void *a, const void *b, void *ctx);

/* ---- exec_bucket.c: the salts of a SALT table, merged ------------------------ */

/* Before the read (after ps_decode): caps each salt's rows, cuts the slices
 * after the paging state's row, sets post_order; pk_in: IN on the natural
 * key (refused). */
int exec_salt_merge_start(sel_run *run, exec_restr *r, int64_t limit, bool pk_in, sib_err *err);
/* After the read: how many of the sorted rows to send, and the paging state
 * in ps when more remain (first_pk: the read's first partition, NULL when
 * none); -2 when out of memory. */
int64_t exec_salt_merge_finish(sel_run *run, const sch_val *first_pk, sib_buf *ps);

/* ---- exec_system.c ----------------------------------------------------------- */

/* Runs run->s on a system table and replies with a page of rows; an error
 * is returned unreplied (exec_select() replies with it). */
int select_system(sel_run *run, sib_err *err);

#endif
