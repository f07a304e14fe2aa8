/* exec_write.c: INSERT, UPDATE, DELETE and BATCH -> storage mutations.
 *
 * Each statement is validated completely and turned into mutations (one per
 * partition it touches) before anything is written; the coordinator then
 * checks the consistency level for every partition, and storage_apply logs
 * all of them as ONE commitlog entry. So a statement or a batch that fails
 * writes nothing, and a logged batch is all-or-nothing on replay. When other
 * nodes replicate some partition the mutations go through the coordinator
 * (coord_write), a logged batch of several partitions through the batchlog
 * first (coord_write_logged: all of it eventually, or none).
 *
 * Cells follow Cassandra: INSERT writes a row liveness marker (a row stays
 * visible after its cells are deleted), UPDATE writes only cells, a null
 * value is a cell tombstone and an unset bound value leaves the column
 * alone. TTL comes from USING TTL or the table's default_time_to_live.
 * A non-frozen collection assigned as a whole replaces the old one, as in
 * Cassandra; element-wise operations write single cells. The list
 * operations that need the list's current cells (l[i] = v, DELETE l[i],
 * l = l - [..]) read the rows first (locally, or through the replicas when
 * this node does not replicate the partition alone) and are built once the
 * reads are back (list_read, docs/cql-compat.md).
 */
#include "exec_int.h"

#include <stdlib.h>

#define MAX_TTL 630720000 /* 20 years, Cassandra's Attributes.MAX_TTL */

/* The mutations of one statement or batch. The first few entries live in
 * the struct and the mutations come from the executor's spares, so a
 * single-partition write allocates nothing here (it was seven mallocs and
 * frees, and freeing next to the heap top made glibc consolidate each time). */
#define MUTSET_INLINE 4
#define SPARE_MUT_MAX_BYTES (64 * 1024) /* a bigger mutation's buffer is not kept */
typedef struct list_op list_op;
typedef struct mutset {
    cql_exec *ex;
    list_op *lops; /* list operations waiting for a read of the list (list_read) */
    size_t nlops, caplops;
    st_mutation **m;
    const sch_table **tables;
    int64_t *tokens; /* partition tokens, for the coordinator */
    size_t n, cap;
    st_mutation *m_in[MUTSET_INLINE];
    const sch_table *tables_in[MUTSET_INLINE];
    int64_t tokens_in[MUTSET_INLINE];
} mutset;

/* An empty set: its header only (the inline arrays are read only below n,
 * so the 100 bytes of them are not cleared on every write). */
static void mutset_init(mutset *ms, cql_exec *ex)
{
    ms->ex = ex;
    ms->lops = NULL;
    ms->nlops = ms->caplops = 0;
    ms->m = NULL;
    ms->tables = NULL;
    ms->tokens = NULL;
    ms->n = ms->cap = 0;
}

void exec_spare_muts_free(cql_exec *ex)
{
    while (ex->nspare_muts) st_mutation_destroy(ex->spare_muts[--ex->nspare_muts]);
}

/* Frees the arrays if they moved to the heap (mutset_grow). */
static void mutset_free_arrays(mutset *ms)
{
    if (ms->m == ms->m_in) return;
    free(ms->m);
    free(ms->tables);
    free(ms->tokens);
}

static void mutset_free(mutset *ms)
{
    cql_exec *ex = ms->ex;
    for (size_t i = 0; i < ms->n; i++) {
        if (ex->nspare_muts < SIB_ARRAY_LEN(ex->spare_muts) && st_mutation_size(ms->m[i]) <= SPARE_MUT_MAX_BYTES)
            ex->spare_muts[ex->nspare_muts++] = ms->m[i];
        else
            st_mutation_destroy(ms->m[i]);
    }
    mutset_free_arrays(ms);
    free(ms->lops);
    mutset_init(ms, ex);
}

/* Moves src's content to dst (the inline arrays are copied, not pointed at). */
static void mutset_move(mutset *dst, mutset *src)
{
    *dst = *src;
    if (src->m == src->m_in) {
        dst->m = dst->m_in;
        dst->tables = dst->tables_in;
        dst->tokens = dst->tokens_in;
    }
    mutset_init(src, src->ex);
}

/* Grows the arrays past the inline ones (moving them to the heap). */
static int mutset_grow(mutset *ms)
{
    size_t ncap = ms->cap ? ms->cap * 2 : MUTSET_INLINE;
    if (!ms->cap) {
        ms->m = ms->m_in;
        ms->tables = ms->tables_in;
        ms->tokens = ms->tokens_in;
        ms->cap = ncap;
        return 0;
    }
    st_mutation **m = malloc(sizeof *m * ncap);
    const sch_table **tb = malloc(sizeof *tb * ncap);
    int64_t *tk = malloc(sizeof *tk * ncap);
    if (!m || !tb || !tk) {
        free(m);
        free(tb);
        free(tk);
        return SIB_ENOMEM;
    }
    memcpy(m, ms->m, sizeof *m * ms->n);
    memcpy(tb, ms->tables, sizeof *tb * ms->n);
    memcpy(tk, ms->tokens, sizeof *tk * ms->n);
    mutset_free_arrays(ms);
    ms->m = m;
    ms->tables = tb;
    ms->tokens = tk;
    ms->cap = ncap;
    return 0;
}

static st_mutation *mutset_add(mutset *ms, const sch_table *t, const sch_val *pk, sib_err *err)
{
    if (ms->n == ms->cap && mutset_grow(ms)) {
        sib_err_set(err, SIB_ENOMEM, "mutations");
        return NULL;
    }
    cql_exec *ex = ms->ex;
    st_mutation *m;
    if (ex->nspare_muts) {
        m = ex->spare_muts[--ex->nspare_muts];
        (void)st_mutation_reset(m, sch_table_id(t), pk->p, (size_t)pk->len); /* an error sticks in m */
    } else if (!(m = st_mutation_create(sch_table_id(t), pk->p, (size_t)pk->len))) {
        sib_err_set(err, SIB_ENOMEM, "mutation");
        return NULL;
    }
    ms->m[ms->n] = m;
    ms->tokens[ms->n] = 0; /* mutset_tokens */
    ms->tables[ms->n++] = t;
    return m;
}

/* The partitions' tokens, for the coordinator, worked out as the mutations
 * are applied (the member count may change while a list operation reads
 * first). A ring of one member has the same replicas for every token (all
 * of it is that member's), so they are left 0 then: a murmur3 hash less a
 * write. A mutation reaching here has no error (each build step checks),
 * so its key is there to hash. */
static void mutset_tokens(mutset *ms, const coord *co)
{
    if (coord_members(co) == 1) return;
    for (size_t i = 0; i < ms->n; i++) {
        size_t len;
        const uint8_t *pk = st_mutation_pk(ms->m[i], &len);
        ms->tokens[i] = sib_murmur3_token(pk, len);
    }
}

static int mut_rc(int rc, sib_err *err)
{
    if (!rc) return 0;
    if (rc == SIB_ETOOBIG) return sib_err_set(err, SIB_EINVAL, "Mutation too large");
    return sib_err_set(err, rc, "mutation: %s", sib_strerror(rc));
}

/* ---- attributes ---- */

typedef struct attrs {
    int64_t ts;
    int32_t ttl;
} attrs;

static int get_attrs(exec_ctx *c, const sch_table *t, const prs_using *u, int64_t batch_ts, attrs *a, sib_err *err)
{
    a->ts = batch_ts != INT64_MIN ? batch_ts : c->timestamp;
    a->ttl = sch_table_options(t)->default_time_to_live;
    bool present;
    int64_t v;
    int rc;
    if (u->timestamp) {
        if (batch_ts != INT64_MIN)
            return sib_err_set(err, SIB_EINVAL, "Timestamp must be set either on BATCH or individual statements");
        if ((rc = exec_term_int(c, u->timestamp, "timestamp", &v, &present, err))) return rc;
        if (present) a->ts = v;
    }
    if (u->ttl) {
        if ((rc = exec_term_int(c, u->ttl, "TTL", &v, &present, err))) return rc;
        if (present) {
            if (v < 0) return sib_err_set(err, SIB_EINVAL, "A TTL must be greater or equal to 0, but was %lld", (long long)v);
            if (v > MAX_TTL)
                return sib_err_set(err, SIB_EINVAL, "ttl is too large. requested (%lld) maximum (%d)", (long long)v, MAX_TTL);
            a->ttl = (int32_t)v;
        }
    }
    /* Expiry times are 32-bit seconds (as in Cassandra 4.x); Cassandra's
     * default overflow policy REJECTs a TTL that reaches past 2038. */
    if (a->ttl && (int64_t)c->now_s + a->ttl > (int64_t)INT32_MAX - 1)
        return sib_err_set(err, SIB_EINVAL,
                           "Request on table %s.%s with %sttl of %d seconds exceeds maximum supported expiration date of "
                           "2038-01-19T03:14:06+00:00 and will have its expiration capped to that date. In order to avoid "
                           "this use a lower TTL, change the expiration date overflow policy or upgrade to a version where "
                           "this limitation is fixed. See CASSANDRA-14092 for more details.",
                           sch_table_keyspace(t), sch_table_name(t), u->ttl ? "" : "default ", a->ttl);
    return 0;
}

/* ---- list operations that read the list first ----
 * l[i] = v, DELETE l[i] and l = l - [..] need the list's current cells: the
 * i-th live cell's path, or the paths of the cells holding a value. As in
 * Cassandra, the statement reads the rows first (at its consistency level,
 * off the loop: list_read below) and then writes ordinary cells and cell
 * tombstones at those paths. Building the statement records each such
 * operation here, one per row it touches; everything else in the statement
 * is built at once as usual. */
typedef enum { LOP_SET, LOP_DELETE, LOP_DISCARD, LOP_APPEND, LOP_PREPEND } lop_kind;

struct list_op {
    const sch_table *t;
    const sch_column *col;
    lop_kind kind;
    int32_t idx;     /* LOP_SET, LOP_DELETE */
    bool val_unset;  /* LOP_SET with an unset value: only the index is checked */
    sch_val val;     /* LOP_SET: the element (len < 0: null); else the list of values */
    sch_val pk, ck;  /* request memory (arena or frame) */
    bool is_static;
    attrs a;
};

/* ANY cannot read (Cassandra's readRequiredLists). */
static int check_read_cl(const exec_ctx *c, sib_err *err)
{
    if (c->consistency == CL_ANY)
        return sib_err_set(err, SIB_EINVAL, "Write operation require a read but consistency %s is not supported on reads",
                           coord_cl_name(c->consistency));
    return 0;
}

static int add_list_op(mutset *ms, const list_op *op, sib_err *err)
{
    if (ms->nlops == ms->caplops) {
        size_t ncap = ms->caplops ? ms->caplops * 2 : 4;
        list_op *n = realloc(ms->lops, sizeof *n * ncap);
        if (!n) return sib_err_set(err, SIB_ENOMEM, "list operations");
        ms->lops = n;
        ms->caplops = ncap;
    }
    ms->lops[ms->nlops++] = *op;
    return 0;
}

static int check_user_table(exec_ctx *c, const prs_qname *q, const sch_table **t, sib_err *err)
{
    int rc = exec_resolve_table(c, q, t, err);
    if (rc) return rc;
    if (sch_table_kind_of(*t) != SCH_TABLE_USER)
        return sib_err_set(err, SIB_EUNAUTHORIZED, "%s keyspace is not user-modifiable", sch_table_keyspace(*t));
    if (sch_table_is_counter(*t)) return sib_err_set(err, SIB_EINVAL, "Counter tables are not supported");
    return 0;
}

/* ---- non-frozen collections ----
 * One cell per element, ordered by its path (the layout exec_select.c reads
 * back, see exec_int.h): sets and maps are keyed by the byte-comparable form
 * of the element/key; lists by a position that orders appends after older
 * elements and prepends before them:
 *   append:  0x80 | be64(ts) | be32(i)     prepend: 0x40 | be64(~ts) | be32(i)
 * Map cell values are be32(key length) + key + value. */

static int elem_path(const sch_type *t, const sch_val *e, sib_buf *out, sib_err *err)
{
    sib_buf_reset(out);
    int rc = sch_ck_encode_component(t, false, e->p, (size_t)e->len, out, err);
    if (!rc && out->oom) rc = sib_err_set(err, SIB_ENOMEM, "collection path");
    return rc;
}

static int list_path(sib_buf *out, bool prepend, int64_t ts, uint32_t i)
{
    sib_buf_reset(out);
    sib_buf_u8(out, prepend ? 0x40 : 0x80);
    sib_buf_be64(out, prepend ? ~(uint64_t)ts : (uint64_t)ts);
    sib_buf_be32(out, prepend ? ~i : i);
    return out->oom ? SIB_ENOMEM : 0;
}

/* Adds (or, with remove, deletes) the elements of collection value v. */
static int put_elements(exec_ctx *c, st_mutation *m, const sch_column *col, const sch_val *v, const attrs *a,
                        bool remove, bool prepend, sib_err *err)
{
    const sch_type *t = col->type;
    /* Removing from a map takes a set of keys (m = m - {'a'}). */
    const sch_type *vt = remove && t->code == SCH_T_MAP ? sch_type_set(sch_catalog_types(c->ex->cat), t->sub[0], false) : t;
    if (!vt) return sib_err_set(err, SIB_ENOMEM, "collection type");
    sch_coll_iter it;
    int n = sch_coll_iter_init(&it, vt, v->p, (size_t)v->len);
    if (n < 0) return sib_err_set(err, SIB_EINVAL, "Invalid collection value for %s", col->name);
    int32_t expiry = a->ttl ? c->now_s + a->ttl : ST_NO_DELETION_TIME;
    sib_buf path, val;
    sib_buf_init(&path);
    sib_buf_init(&val);
    sch_val k, e, mapv; /* mapv: a map cell's value, built in val */
    int rc = 0;
    for (uint32_t i = 0; !rc && sch_coll_next(&it, &k, &e); i++) {
        const sch_val *elem = &k;
        if (t->code == SCH_T_LIST) {
            /* removal by value needs the list's cells: list_read does it */
            if (remove) { rc = sib_err_set(err, SIB_ESERVER, "list removal of %s without its read", col->name); break; }
            rc = list_path(&path, prepend, a->ts, prepend ? (uint32_t)n - 1 - i : i);
        } else {
            rc = elem_path(t->sub[0], &k, &path, err);
        }
        if (rc) break;
        if (remove) {
            rc = mut_rc(st_mut_cell_path_tombstone(m, col->id, path.p, path.len, a->ts, c->now_s), err);
            continue;
        }
        if (t->code == SCH_T_MAP) {
            sib_buf_reset(&val);
            sib_buf_be32(&val, (uint32_t)k.len);
            sib_buf_append(&val, k.p, (size_t)k.len);
            sib_buf_append(&val, e.p, e.len > 0 ? (size_t)e.len : 0);
            mapv = (sch_val){val.p, (int32_t)val.len};
            elem = &mapv;
        }
        rc = mut_rc(st_mut_cell_path(m, col->id, path.p, path.len, elem->p, (size_t)elem->len, a->ts, a->ttl, expiry), err);
    }
    if (!rc && it.rd.bad) rc = sib_err_set(err, SIB_EINVAL, "Invalid collection value for %s", col->name);
    sib_buf_free(&path);
    sib_buf_free(&val);
    return rc;
}

/* Writes one regular/static cell (null -> tombstone). A non-frozen collection
 * assigned as a whole replaces the old one: a collection tombstone just
 * below the write's timestamp, then one cell per element. */
static int put_cell(exec_ctx *c, st_mutation *m, const sch_column *col, const sch_val *v, const attrs *a, sib_err *err)
{
    if (sch_type_is_multicell(col->type)) {
        if (v->len < 0) return mut_rc(st_mut_complex_delete(m, col->id, a->ts, c->now_s), err);
        int rc = mut_rc(st_mut_complex_delete(m, col->id, a->ts - 1, c->now_s), err);
        return rc ? rc : put_elements(c, m, col, v, a, false, false, err);
    }
    if (v->len < 0) return mut_rc(st_mut_cell_tombstone(m, col->id, a->ts, c->now_s), err);
    int32_t expiry = a->ttl ? c->now_s + a->ttl : ST_NO_DELETION_TIME;
    return mut_rc(st_mut_cell(m, col->id, v->p, (size_t)v->len, a->ts, a->ttl, expiry), err);
}

static int encode_ck(exec_ctx *c, const sch_table *t, const sch_val *vals, sch_val *out, sib_err *err)
{
    size_t n = sch_table_clustering_count(t);
    if (!n) { /* the one row of a table without clustering columns: nothing to encode */
        *out = (sch_val){(const uint8_t *)"", 0};
        return 0;
    }
    const uint8_t *p[64];
    size_t l[64];
    if (n > 64) return sib_err_set(err, SIB_EINVAL, "too many clustering columns");
    size_t total = 0; /* Cassandra bounds the clustering's data size, all components together */
    for (size_t i = 0; i < n; i++) {
        p[i] = vals[i].p;
        l[i] = (size_t)vals[i].len;
        total += l[i];
    }
    if (total > EXEC_MAX_KEY_LEN)
        return sib_err_set(err, SIB_EINVAL, "Key length of %zu is longer than maximum of %d", total, EXEC_MAX_KEY_LEN);
    sib_buf b;
    sib_buf_init(&b);
    int rc = sch_ck_encode(t, p, l, n, &b, err);
    if (!rc && b.oom) rc = sib_err_set(err, SIB_ENOMEM, "clustering key");
    if (!rc) {
        out->p = sib_arena_memdup(c->arena, b.p ? b.p : (const uint8_t *)"", b.len);
        out->len = (int32_t)b.len;
        if (!out->p) rc = sib_err_set(err, SIB_ENOMEM, "clustering key");
    }
    sib_buf_free(&b);
    return rc;
}

/* ---- INSERT ---- */

/* The partition key of an INSERT, checked (no unset/null part) and encoded:
 * *pk is the bound value itself for a one-column key, else bytes in pkb
 * (the executor's kept buffer, so a write allocates nothing for its key). */
static int insert_pk(const sch_table *t, const sch_val *vals, const bool *unset, sib_buf *pkb, sch_val *pk,
                     sib_err *err)
{
    const uint8_t *pkv[64];
    size_t pkl[64], npk = sch_table_pk_count(t);
    if (npk > SIB_ARRAY_LEN(pkv)) return sib_err_set(err, SIB_EINVAL, "too many partition key columns");
    for (size_t i = 0; i < npk; i++) {
        const sch_column *col = sch_table_pk(t, i);
        const sch_val *v = &vals[col->index];
        if (unset[col->index]) return sib_err_set(err, SIB_EINVAL, "Invalid unset value for column %s", col->name);
        if (v->len < 0) return sib_err_set(err, SIB_EINVAL, "Invalid null value in condition for column %s", col->name);
        pkv[i] = v->p;
        pkl[i] = (size_t)v->len;
    }
    return sch_pk_encode_view(t, pkv, pkl, npk, false, pkb, pk, err);
}

/* The executor's kept key buffer, emptied, for one statement's key:
 * nothing uses it again before mutset_add copies the key into its
 * mutation. A key is at most 64 KiB or so (EXEC_MAX_KEY_LEN), so what it
 * keeps stays small. */
static sib_buf *pk_scratch(cql_exec *ex)
{
    sib_buf_reset(&ex->pk_scratch);
    return &ex->pk_scratch;
}

/* INSERT of the partition key and static columns only. */
static int insert_static_only(exec_ctx *c, const sch_table *t, const sch_val *vals, const bool *set,
                              const bool *unset, const attrs *a, mutset *ms, sib_err *err)
{
    sch_val pk;
    int rc = insert_pk(t, vals, unset, pk_scratch(c->ex), &pk, err);
    st_mutation *m = NULL;
    if (!rc && !(m = mutset_add(ms, t, &pk, err))) rc = err->code;
    if (rc) return rc;
    bool started = false;
    for (size_t i = 0; i < sch_table_column_count(t); i++) {
        const sch_column *col = sch_table_column(t, i);
        if (!set[i] || unset[i] || col->kind != SCH_COL_STATIC) continue;
        if (!started && (rc = mut_rc(st_mut_static(m), err))) return rc;
        started = true;
        if ((rc = put_cell(c, m, col, &vals[i], a, err))) return rc;
    }
    return 0;
}

/* Does prepared INSERT s, whose columns are at p->plan_ins_col in t, have
 * the simple shape insert_simple writes: every value a bound marker, every
 * primary key column named, no static or derived (BUCKET / SALT) column in
 * the table? Fills p->plan_ins_pos; 2 = yes, 1 = no. */
static int8_t insert_plan_shape(const sch_table *t, const prs_insert *s, exec_prepared *p)
{
    size_t n = s->ncols, nkey = sch_table_pk_count(t) + sch_table_clustering_count(t);
    if (sch_table_has_derived(t) || sch_table_has_static(t) || n < nkey) return 1;
    for (size_t i = 0; i < n; i++) {
        if (s->values[i]->kind != PRS_TERM_MARKER) return 1;
        size_t j = i; /* insertion sort by column index: done once per plan */
        for (; j > 0 && p->plan_ins_col[p->plan_ins_pos[j - 1]] > p->plan_ins_col[i]; j--)
            p->plan_ins_pos[j] = p->plan_ins_pos[j - 1];
        p->plan_ins_pos[j] = (uint8_t)i;
    }
    /* the table's columns start with the partition key's, then the
     * clustering ones: all of them named, each once */
    for (size_t j = 0; j < nkey; j++)
        if (p->plan_ins_col[p->plan_ins_pos[j]] != j) return 1;
    return 2;
}

/* A prepared INSERT of the simple shape (insert_plan_shape), written
 * straight from its bound values: no per-column bookkeeping of the general
 * path. Returns 1, having written nothing, when a value needs that path (a
 * null or unset key part, a value of the wrong form, a missing value): it
 * then answers exactly as for any INSERT. Else 0 or an error, as the
 * general path would give it. */
static int insert_simple(exec_ctx *c, const sch_table *t, const prs_insert *s, const exec_prepared *p,
                         const attrs *a, mutset *ms, sib_err *err)
{
    size_t n = s->ncols, npk = sch_table_pk_count(t), nkey = npk + sch_table_clustering_count(t);
    sch_val v[EXEC_INSERT_PLAN_COLS];
    const sch_column *cols[EXEC_INSERT_PLAN_COLS];
    const uint8_t *kp[EXEC_INSERT_PLAN_COLS];
    size_t kl[EXEC_INSERT_PLAN_COLS];
    bool skip[EXEC_INSERT_PLAN_COLS]; /* unset: the column is left alone */
    for (size_t j = 0; j < n; j++) { /* in the table's column order */
        size_t i = p->plan_ins_pos[j];
        const sch_column *col = cols[j] = sch_table_column(t, p->plan_ins_col[i]);
        int mk = s->values[i]->marker;
        if (mk < 0 || (size_t)mk >= c->nvalues) return 1;
        const cql_value *cv = &c->values[mk];
        skip[j] = cv->len == CQL_VALUE_UNSET;
        if (cv->len < 0) {
            if (j < nkey) return 1;
            v[j] = (sch_val){NULL, -1};
            continue;
        }
        if (sch_value_validate(col->type, cv->p, (size_t)cv->len, err)) return 1;
        v[j] = (sch_val){cv->p, cv->len};
        if (j < npk) {
            kp[j] = cv->p;
            kl[j] = (size_t)cv->len;
        }
    }
    sch_val pk, ck;
    st_mutation *m = NULL;
    int rc = 0;
    /* A one-column key of an allowed length is its value: no call (what
     * sch_pk_encode_view gives it, which words the errors of the others) */
    if (npk == 1 && kl[0] && kl[0] <= 65535) pk = (sch_val){kp[0], (int32_t)kl[0]};
    else rc = sch_pk_encode_view(t, kp, kl, npk, true, pk_scratch(c->ex), &pk, err);
    if (!rc && !(rc = encode_ck(c, t, v + npk, &ck, err)) && !(m = mutset_add(ms, t, &pk, err))) rc = err->code;
    if (rc || (rc = mut_rc(st_mut_row(m, ck.p, (size_t)ck.len), err))) return rc;
    int32_t expiry = a->ttl ? c->now_s + a->ttl : ST_NO_DELETION_TIME;
    if ((rc = mut_rc(st_mut_row_marker(m, a->ts, a->ttl, expiry), err))) return rc;
    for (size_t j = nkey; j < n; j++) /* regular columns, in the table's order as build_insert writes them */
        if (!skip[j] && (rc = put_cell(c, m, cols[j], &v[j], a, err))) return rc;
    return 0;
}

static int build_insert(exec_ctx *c, const prs_insert *s, int64_t batch_ts, mutset *ms, sib_err *err)
{
    const sch_table *t;
    int rc = check_user_table(c, &s->table, &t, err);
    if (rc) return rc;
    if (s->if_not_exists) return sib_err_set(err, SIB_EINVAL, "Conditional updates (IF NOT EXISTS) are not supported by Sibyl");
    prs_insert from_json;
    if (s->json) { /* the object's members become columns and fromJson() terms */
        if ((rc = exec_json_insert(c, t, s, &from_json, err))) return rc;
        s = &from_json;
    }
    if (s->ncols != s->nvalues) return sib_err_set(err, SIB_EINVAL, "Unmatched column names/values");
    if (!s->ncols) return sib_err_set(err, SIB_EINVAL, "No columns provided to INSERT");
    attrs a;
    if ((rc = get_attrs(c, t, &s->using, batch_ts, &a, err))) return rc;
    /* An EXECUTE of a prepared INSERT finds its columns by index in its
     * plan (kept while plan_table is the current schema's table: a DDL
     * clears the plan, so an ALTER or a DROP and CREATE is seen); the first
     * EXECUTE looks the names up and fills it. */
    exec_prepared *p = c->ex->cur_prep;
    bool plan = p && p->stmt->kind == PRS_STMT_INSERT && &p->stmt->insert == s && p->plan_table == t &&
                p->plan_gen == c->ex->ddl_gen && p->plan_ins >= 0;
    if (plan && p->plan_ins == 2 && (rc = insert_simple(c, t, s, p, &a, ms, err)) != 1) return rc;

    size_t ncols = sch_table_column_count(t);
    sch_val *vals = sib_arena_alloc(c->arena, sizeof *vals * (ncols + 1));
    bool *set = sib_arena_alloc(c->arena, 2 * (ncols + 1)), *unset = set + ncols + 1;
    if (!vals || !set) return sib_err_set(err, SIB_ENOMEM, "insert");
    memset(set, 0, 2 * (ncols + 1));
    bool by_plan = plan && p->plan_ins > 0, fill = plan && !p->plan_ins && s->ncols <= EXEC_INSERT_PLAN_COLS;
    for (size_t i = 0; i < s->ncols; i++) {
        const sch_column *col = by_plan ? sch_table_column(t, p->plan_ins_col[i]) : sch_table_column_by_name(t, s->cols[i]);
        if (!col) return sib_err_set(err, SIB_EINVAL, "Undefined column name %s", s->cols[i]);
        if (set[col->index]) return sib_err_set(err, SIB_EINVAL, "The column names contains duplicates");
        set[col->index] = true;
        if (fill) p->plan_ins_col[i] = (uint16_t)col->index;
        if ((rc = exec_term_value(c, s->values[i], col->type, col->name, &vals[col->index], &unset[col->index], err)))
            return rc;
    }
    if (plan && !p->plan_ins) p->plan_ins = fill ? insert_plan_shape(t, s, p) : -1;
    /* BUCKET / SALT: the derived partition key columns come from the row */
    if (sch_table_has_derived(t) && (rc = exec_bucket_insert(c, t, vals, set, unset, err))) return rc;
    /* Primary key: every column present, non-null, set. miss is read only
     * after something is printed into it, so it is not zeroed (512 bytes on
     * every INSERT). */
    char miss[512];
    miss[0] = 0;
    size_t o = 0;
    for (size_t i = 0; i < sch_table_pk_count(t); i++) {
        const sch_column *col = sch_table_pk(t, i);
        if (!set[col->index]) o += (size_t)snprintf(miss + o, sizeof miss - o, "%s%s", o ? ", " : "", col->name);
    }
    if (o) return sib_err_set(err, SIB_EINVAL, "Some partition key parts are missing: %s", miss);
    /* Only partition key and static columns: the partition's static row
     * alone, no clustering key needed (nor any row written). */
    bool any_ck = false, only_static = false;
    for (size_t i = 0; i < ncols; i++) {
        const sch_column *col = sch_table_column(t, i);
        if (!set[i]) continue;
        any_ck |= col->kind == SCH_COL_CLUSTERING;
        if (col->kind == SCH_COL_STATIC) only_static = true;
        else if (col->kind == SCH_COL_REGULAR) { only_static = false; break; }
    }
    if (only_static && !any_ck) return insert_static_only(c, t, vals, set, unset, &a, ms, err);
    for (size_t i = 0; i < sch_table_clustering_count(t); i++) {
        const sch_column *col = sch_table_clustering(t, i);
        if (!set[col->index] && o < sizeof miss)
            o += (size_t)snprintf(miss + o, sizeof miss - o, "%s%s", o ? ", " : "", col->name);
    }
    if (o) return sib_err_set(err, SIB_EINVAL, "Some clustering keys are missing: %s", miss);
    sch_val ckv[64];
    size_t nck = sch_table_clustering_count(t);
    if (nck > SIB_ARRAY_LEN(ckv)) return sib_err_set(err, SIB_EINVAL, "too many clustering columns");
    for (size_t i = 0; i < nck; i++) {
        const sch_column *col = sch_table_clustering(t, i);
        const sch_val *v = &vals[col->index];
        if (unset[col->index]) return sib_err_set(err, SIB_EINVAL, "Invalid unset value for column %s", col->name);
        if (v->len < 0) return sib_err_set(err, SIB_EINVAL, "Invalid null value in condition for column %s", col->name);
        ckv[i] = *v;
    }
    sch_val pk, ck = {NULL, 0};
    st_mutation *m = NULL;
    if (!(rc = insert_pk(t, vals, unset, pk_scratch(c->ex), &pk, err)) && !(rc = encode_ck(c, t, ckv, &ck, err)) &&
        !(m = mutset_add(ms, t, &pk, err)))
        rc = err->code;
    if (rc) return rc;

    bool has_regular = false;
    for (size_t i = 0; i < ncols; i++) {
        const sch_column *col = sch_table_column(t, i);
        has_regular |= col->kind == SCH_COL_REGULAR && set[i];
    }
    if ((rc = mut_rc(st_mut_row(m, ck.p, (size_t)ck.len), err))) return rc;
    if (nck || has_regular || !sch_table_has_static(t)) {
        int32_t expiry = a.ttl ? c->now_s + a.ttl : ST_NO_DELETION_TIME;
        if ((rc = mut_rc(st_mut_row_marker(m, a.ts, a.ttl, expiry), err))) return rc;
    }
    for (size_t i = 0; i < ncols; i++) {
        const sch_column *col = sch_table_column(t, i);
        if (!set[i] || unset[i] || col->kind != SCH_COL_REGULAR) continue;
        if ((rc = put_cell(c, m, col, &vals[i], &a, err))) return rc;
    }
    for (size_t i = 0; i < ncols; i++) {
        const sch_column *col = sch_table_column(t, i);
        if (!set[i] || unset[i] || col->kind != SCH_COL_STATIC) continue;
        if ((rc = mut_rc(st_mut_static(m), err)) || (rc = put_cell(c, m, col, &vals[i], &a, err))) return rc;
    }
    return 0;
}

/* ---- UPDATE ---- */

/* BUCKET / SALT: with several clustering keys a row is written only in the
 * partition its derived columns name (exec_bucket.c). */
static bool row_in_partition(exec_ctx *c, const sch_table *t, const sch_val *pk, const sch_val *ck)
{
    return !sch_table_has_derived(t) || exec_bucket_owns(c, t, pk, ck);
}

/* An element-wise operation on a non-frozen collection (c = c + {..},
 * c = c - {..}, c = [..] + c, m[k] = v). */
typedef struct coll_op {
    const sch_column *col;
    prs_assign_kind kind;
    sch_val key, val;
    bool rbw;       /* a list operation that reads the list first (list_op) */
    bool val_unset; /* l[i] = unset: nothing written, the index still checked */
    int32_t idx;
} coll_op;

static int op_error(const prs_assignment *as, const sch_column *col, const char *what, sib_err *err)
{
    const char *op = as->kind == PRS_ASSIGN_SUB ? "-" : "+";
    /* constants as Cassandra prints them: strings quoted */
    const prs_term *vt = as->value, *kt = as->key;
    bool vc = vt && vt->kind == PRS_TERM_CONST, kc = kt && kt->kind == PRS_TERM_CONST;
    const char *vq = vc && vt->cst.kind == PRS_CONST_STRING ? "'" : "", *kq = kc && kt->cst.kind == PRS_CONST_STRING ? "'" : "";
    const char *val = vc ? vt->cst.text : "?", *key = kc ? kt->cst.text : "?";
    if (as->kind == PRS_ASSIGN_ELEM)
        return sib_err_set(err, SIB_EINVAL, "Invalid operation (%s[%s%s%s] = %s%s%s) for %s column %s", col->name, kq, key,
                           kq, vq, val, vq, what, col->name);
    return sib_err_set(err, SIB_EINVAL, "Invalid operation (%s = %s %s %s%s%s) for %s column %s", col->name, col->name, op,
                       vq, val, vq, what, col->name);
}

/* A list index (an int; null and unset are errors only where Cassandra
 * makes them so: *unset tells the caller). */
static int eval_list_index(exec_ctx *c, const prs_term *key, const sch_column *col, int32_t *idx, bool *unset,
                           sib_err *err)
{
    sch_val v;
    int rc = exec_term_value(c, key, sch_type_native(SCH_T_INT), col->name, &v, unset, err);
    if (rc || *unset) return rc;
    if (v.len < 0) return sib_err_set(err, SIB_EINVAL, "Invalid null value for list index");
    if (v.len != 4) return sib_err_set(err, SIB_EINVAL, "Invalid list index for %s", col->name);
    *idx = (int32_t)get_be32(v.p);
    return 0;
}

/* l[i] = v: checked against the list's size once it is read. */
static int eval_list_set(exec_ctx *c, const prs_assignment *as, const sch_column *col, coll_op *op, sib_err *err)
{
    bool unset;
    int rc = check_read_cl(c, err);
    if (!rc) rc = eval_list_index(c, as->key, col, &op->idx, &unset, err);
    if (!rc && unset) rc = sib_err_set(err, SIB_EINVAL, "Invalid unset value for list index");
    if (!rc) rc = exec_term_value(c, as->value, col->type->sub[0], col->name, &op->val, &op->val_unset, err);
    op->rbw = true;
    return rc;
}

/* Evaluates an element-wise assignment into op (types per Cassandra: a map
 * subtraction takes a set of keys). */
static int eval_coll_op(exec_ctx *c, const prs_assignment *as, const sch_column *col, coll_op *op, sib_err *err)
{
    const sch_type *t = col->type;
    sch_types *ts = sch_catalog_types(c->ex->cat);
    *op = (coll_op){.col = col, .kind = as->kind};
    if (!sch_type_is_collection(t)) return op_error(as, col, as->kind == PRS_ASSIGN_ELEM ? "non collection" : "non counter", err);
    if (!sch_type_is_multicell(t)) return op_error(as, col, "frozen collection", err);
    const sch_type *vt = t;
    switch (as->kind) {
    case PRS_ASSIGN_PREPEND:
        if (t->code != SCH_T_LIST) return op_error(as, col, "non list", err);
        break;
    case PRS_ASSIGN_SUB:
        if (t->code == SCH_T_LIST) {
            int rc = check_read_cl(c, err);
            if (rc) return rc;
            op->rbw = true;
        }
        if (t->code == SCH_T_MAP) vt = sch_type_set(ts, t->sub[0], false);
        break;
    case PRS_ASSIGN_ELEM: {
        if (t->code == SCH_T_SET) return op_error(as, col, "set", err);
        if (t->code == SCH_T_LIST) return eval_list_set(c, as, col, op, err);
        bool key_unset;
        int rc = exec_term_value(c, as->key, t->sub[0], col->name, &op->key, &key_unset, err);
        if (rc) return rc;
        if (key_unset) return sib_err_set(err, SIB_EINVAL, "Invalid unset map key");
        if (op->key.len < 0) return sib_err_set(err, SIB_EINVAL, "Invalid null map key");
        vt = t->sub[1];
        break;
    }
    default:
        break;
    }
    bool unset;
    int rc = exec_term_value(c, as->value, vt, col->name, &op->val, &unset, err);
    if (rc) return rc;
    if (unset) op->col = NULL; /* an unset value leaves the column alone */
    if (op->rbw && op->val.len < 0) op->col = NULL; /* l = l - null: nothing to remove */
    return 0;
}

static int apply_coll_op(exec_ctx *c, st_mutation *m, const coll_op *op, const attrs *a, sib_err *err)
{
    if (!op->col) return 0;
    if (op->kind == PRS_ASSIGN_ELEM) {
        sib_buf path;
        sib_buf_init(&path);
        int rc = elem_path(op->col->type->sub[0], &op->key, &path, err);
        if (!rc && op->val.len < 0)
            rc = mut_rc(st_mut_cell_path_tombstone(m, op->col->id, path.p, path.len, a->ts, c->now_s), err);
        else if (!rc) {
            sib_buf v;
            sib_buf_init(&v);
            sib_buf_be32(&v, (uint32_t)op->key.len);
            sib_buf_append(&v, op->key.p, (size_t)op->key.len);
            sib_buf_append(&v, op->val.p, (size_t)op->val.len);
            int32_t expiry = a->ttl ? c->now_s + a->ttl : ST_NO_DELETION_TIME;
            rc = mut_rc(st_mut_cell_path(m, op->col->id, path.p, path.len, v.p, v.len, a->ts, a->ttl, expiry), err);
            sib_buf_free(&v);
        }
        sib_buf_free(&path);
        return rc;
    }
    if (op->val.len < 0) return 0; /* c = c + null: nothing to add or remove */
    return put_elements(c, m, op->col, &op->val, a, op->kind == PRS_ASSIGN_SUB, op->kind == PRS_ASSIGN_PREPEND, err);
}

/* Applies op to one row (ck NULL: the static row), or records it for
 * list_read when it needs the list first. */
static int row_coll_op(exec_ctx *c, mutset *ms, st_mutation *m, const sch_table *t, const sch_val *pk,
                       const sch_val *ck, const coll_op *op, const attrs *a, sib_err *err)
{
    if (!op->rbw) return apply_coll_op(c, m, op, a, err);
    if (!op->col) return 0;
    lop_kind k = op->kind == PRS_ASSIGN_SUB ? LOP_DISCARD : op->kind == PRS_ASSIGN_ADD ? LOP_APPEND
               : op->kind == PRS_ASSIGN_PREPEND ? LOP_PREPEND : LOP_SET;
    list_op lo = {.t = t, .col = op->col, .kind = k,
                  .idx = op->idx, .val_unset = op->val_unset, .val = op->val, .pk = *pk,
                  .ck = ck ? *ck : (sch_val){NULL, 0}, .is_static = !ck, .a = *a};
    return add_list_op(ms, &lo, err);
}

static int build_update(exec_ctx *c, const prs_update *s, int64_t batch_ts, mutset *ms, sib_err *err)
{
    const sch_table *t;
    int rc = check_user_table(c, &s->table, &t, err);
    if (rc) return rc;
    if (s->if_exists || s->nconds) return sib_err_set(err, SIB_EINVAL, "Conditional updates (IF) are not supported by Sibyl");
    attrs a;
    if ((rc = get_attrs(c, t, &s->using, batch_ts, &a, err))) return rc;
    size_t ncols = sch_table_column_count(t), nops = 0;
    sch_val *vals = sib_arena_alloc(c->arena, sizeof *vals * (ncols + 1));
    bool *set = sib_arena_alloc(c->arena, ncols + 1), *unset = sib_arena_alloc(c->arena, ncols + 1);
    coll_op *ops = sib_arena_alloc(c->arena, sizeof *ops * (s->nassign + 1));
    if (!vals || !set || !unset || !ops) return sib_err_set(err, SIB_ENOMEM, "update");
    memset(set, 0, ncols + 1);
    memset(unset, 0, ncols + 1);
    bool only_static = true;
    for (size_t i = 0; i < s->nassign; i++) {
        const prs_assignment *as = &s->assign[i];
        const sch_column *col = sch_table_column_by_name(t, as->col);
        if (!col) return sib_err_set(err, SIB_EINVAL, "Undefined column name %s", as->col);
        if (col->kind == SCH_COL_PARTITION_KEY || col->kind == SCH_COL_CLUSTERING)
            return sib_err_set(err, SIB_EINVAL, "PRIMARY KEY part %s found in SET part", col->name);
        only_static &= col->kind == SCH_COL_STATIC;
        if (as->kind != PRS_ASSIGN_SET) {
            if ((rc = eval_coll_op(c, as, col, &ops[nops], err))) return rc;
            nops++;
            continue;
        }
        if (set[col->index]) return sib_err_set(err, SIB_ESYNTAX, "Multiple incompatible setting of column %s", col->name);
        set[col->index] = true;
        if ((rc = exec_term_value(c, as->value, col->type, col->name, &vals[col->index], &unset[col->index], err)))
            return rc;
    }
    /* A list one operation reads takes every operation of the statement on
     * that list through the read, in order: each sees the ones before it
     * (list_read). */
    for (size_t i = 0; i < nops; i++)
        for (size_t j = 0; ops[i].rbw && ops[i].col && j < nops; j++)
            if (ops[j].col == ops[i].col) ops[j].rbw = true;
    exec_restr r;
    bool static_only = only_static && s->nassign;
    if ((rc = exec_analyze_where(c, t, s->where, s->nwhere, static_only ? EXEC_WHERE_DELETE : EXEC_WHERE_UPDATE, false,
                                 &r, err)))
        return rc;
    if (static_only && (r.ck_eq_prefix || r.ck_has_slice))
        return sib_err_set(err, SIB_EINVAL, "Invalid restrictions on clustering columns since the UPDATE statement modifies only static columns");
    for (size_t p = 0; p < r.npks; p++) {
        st_mutation *m = mutset_add(ms, t, &r.pks[p], err);
        if (!m) return err->code;
        for (size_t k = 0; !static_only && k < r.ncks; k++) {
            if (!row_in_partition(c, t, &r.pks[p], &r.cks[k])) continue;
            if ((rc = mut_rc(st_mut_row(m, r.cks[k].p, (size_t)r.cks[k].len), err))) return rc;
            for (size_t i = 0; i < ncols; i++) {
                const sch_column *col = sch_table_column(t, i);
                if (set[i] && !unset[i] && col->kind == SCH_COL_REGULAR && (rc = put_cell(c, m, col, &vals[i], &a, err)))
                    return rc;
            }
            for (size_t i = 0; i < nops; i++)
                if (ops[i].col && ops[i].col->kind == SCH_COL_REGULAR &&
                    (rc = row_coll_op(c, ms, m, t, &r.pks[p], &r.cks[k], &ops[i], &a, err)))
                    return rc;
        }
        bool static_started = false;
        for (size_t i = 0; i < ncols; i++) {
            const sch_column *col = sch_table_column(t, i);
            if (!set[i] || unset[i] || col->kind != SCH_COL_STATIC) continue;
            if (!static_started && (rc = mut_rc(st_mut_static(m), err))) return rc;
            static_started = true;
            if ((rc = put_cell(c, m, col, &vals[i], &a, err))) return rc;
        }
        for (size_t i = 0; i < nops; i++) {
            if (!ops[i].col || ops[i].col->kind != SCH_COL_STATIC) continue;
            if (!static_started && (rc = mut_rc(st_mut_static(m), err))) return rc;
            static_started = true;
            if ((rc = row_coll_op(c, ms, m, t, &r.pks[p], NULL, &ops[i], &a, err))) return rc;
        }
    }
    return 0;
}

/* ---- DELETE ---- */

/* Deletes a column (a whole collection, or one map entry when key is set). */
static int delete_col(exec_ctx *c, st_mutation *m, const sch_column *col, const sch_val *key, const attrs *a,
                      sib_err *err)
{
    if (key) {
        coll_op op = {.col = col, .kind = PRS_ASSIGN_ELEM, .key = *key, .val = {NULL, -1}};
        return apply_coll_op(c, m, &op, a, err);
    }
    if (sch_type_is_multicell(col->type)) return mut_rc(st_mut_complex_delete(m, col->id, a->ts, c->now_s), err);
    return mut_rc(st_mut_cell_tombstone(m, col->id, a->ts, c->now_s), err);
}

/* delete_col, or for a list element (DELETE l[i]) a list_op for list_read. */
static int delete_elem_or_col(exec_ctx *c, mutset *ms, st_mutation *m, const sch_table *t, const sch_val *pk,
                              const sch_val *ck, const sch_column *col, const sch_val *key, int32_t idx, bool skip,
                              const attrs *a, sib_err *err)
{
    if (skip) return 0;
    if (!key || col->type->code != SCH_T_LIST) return delete_col(c, m, col, key, a, err);
    list_op lo = {.t = t, .col = col, .kind = LOP_DELETE, .idx = idx, .pk = *pk,
                  .ck = ck ? *ck : (sch_val){NULL, 0}, .is_static = !ck, .a = *a};
    return add_list_op(ms, &lo, err);
}

static int build_delete(exec_ctx *c, const prs_delete *s, int64_t batch_ts, mutset *ms, sib_err *err)
{
    const sch_table *t;
    int rc = check_user_table(c, &s->table, &t, err);
    if (rc) return rc;
    if (s->if_exists || s->nconds) return sib_err_set(err, SIB_EINVAL, "Conditional deletions (IF) are not supported by Sibyl");
    attrs a;
    if ((rc = get_attrs(c, t, &s->using, batch_ts, &a, err))) return rc;
    const sch_column **cols = sib_arena_alloc(c->arena, sizeof *cols * (s->ncols + 1));
    sch_val *keyv = sib_arena_alloc(c->arena, sizeof *keyv * (s->ncols + 1));
    const sch_val **keys = sib_arena_alloc(c->arena, sizeof *keys * (s->ncols + 1));
    int32_t *lidx = sib_arena_alloc(c->arena, sizeof *lidx * (s->ncols + 1));
    bool *lskip = sib_arena_alloc(c->arena, s->ncols + 1); /* DELETE l[unset]: nothing to do */
    if (!cols || !keyv || !keys || !lidx || !lskip) return sib_err_set(err, SIB_ENOMEM, "delete");
    memset(lskip, 0, s->ncols + 1);
    bool only_static = s->ncols > 0;
    for (size_t i = 0; i < s->ncols; i++) {
        cols[i] = sch_table_column_by_name(t, s->cols[i].col);
        if (!cols[i]) return sib_err_set(err, SIB_EINVAL, "Undefined column name %s", s->cols[i].col);
        if (cols[i]->kind == SCH_COL_PARTITION_KEY || cols[i]->kind == SCH_COL_CLUSTERING)
            return sib_err_set(err, SIB_EINVAL, "Invalid identifier %s for deletion (should not be a PRIMARY KEY part)", cols[i]->name);
        if (s->cols[i].key) {
            if (!sch_type_is_collection(cols[i]->type))
                return sib_err_set(err, SIB_EINVAL, "Invalid deletion operation for non collection column %s", cols[i]->name);
            if (!sch_type_is_multicell(cols[i]->type))
                return sib_err_set(err, SIB_EINVAL, "Invalid deletion operation for frozen collection column %s", cols[i]->name);
            if (cols[i]->type->code == SCH_T_LIST) {
                keys[i] = &keyv[i]; /* marks an element deletion; the index is lidx[i] */
                if ((rc = check_read_cl(c, err)) ||
                    (rc = eval_list_index(c, s->cols[i].key, cols[i], &lidx[i], &lskip[i], err)))
                    return rc;
                only_static &= cols[i]->kind == SCH_COL_STATIC;
                continue;
            }
            bool key_unset;
            if ((rc = exec_term_value(c, s->cols[i].key, cols[i]->type->sub[0], cols[i]->name, &keyv[i], &key_unset, err)))
                return rc;
            bool is_map = cols[i]->type->code == SCH_T_MAP;
            if (key_unset && is_map) return sib_err_set(err, SIB_EINVAL, "Invalid unset map key");
            if (key_unset) { /* DELETE s[unset]: nothing to delete */
                keys[i] = &keyv[i];
                lskip[i] = true;
                only_static &= cols[i]->kind == SCH_COL_STATIC;
                continue;
            }
            if (keyv[i].len < 0)
                return sib_err_set(err, SIB_EINVAL, cols[i]->type->code == SCH_T_MAP ? "Invalid null map key"
                                                                                   : "Invalid null set element");
            keys[i] = &keyv[i];
        } else {
            keys[i] = NULL;
        }
        only_static &= cols[i]->kind == SCH_COL_STATIC;
    }
    exec_restr r;
    if ((rc = exec_analyze_where(c, t, s->where, s->nwhere, EXEC_WHERE_DELETE, false, &r, err))) return rc;
    size_t nck = sch_table_clustering_count(t);
    if (only_static && (r.ck_eq_prefix || r.ck_has_slice))
        return sib_err_set(err, SIB_EINVAL, "Invalid restrictions on clustering columns since the DELETE statement modifies only static columns");
    if (r.ck_none) return 0; /* e.g. c IN (): no row can match, nothing to write */
    if (s->ncols && !only_static && r.ck_eq_prefix < nck) {
        if (r.ck_has_slice || r.ck_eq_prefix) return sib_err_set(err, SIB_EINVAL, "Range deletions are not supported for specific columns");
        return sib_err_set(err, SIB_EINVAL, "Some clustering keys are missing: %s", sch_table_clustering(t, 0)->name);
    }
    for (size_t p = 0; p < r.npks; p++) {
        st_mutation *m = mutset_add(ms, t, &r.pks[p], err);
        if (!m) return err->code;
        if (s->ncols) {
            for (size_t k = 0; !only_static && k < r.ncks; k++) {
                if (!row_in_partition(c, t, &r.pks[p], &r.cks[k])) continue;
                if ((rc = mut_rc(st_mut_row(m, r.cks[k].p, (size_t)r.cks[k].len), err))) return rc;
                for (size_t i = 0; i < s->ncols; i++)
                    if (cols[i]->kind == SCH_COL_REGULAR &&
                        (rc = delete_elem_or_col(c, ms, m, t, &r.pks[p], &r.cks[k], cols[i], keys[i], lidx[i], lskip[i], &a, err)))
                        return rc;
            }
            for (size_t i = 0; i < s->ncols; i++)
                if (cols[i]->kind == SCH_COL_STATIC &&
                    ((rc = mut_rc(st_mut_static(m), err)) ||
                     (rc = delete_elem_or_col(c, ms, m, t, &r.pks[p], NULL, cols[i], keys[i], lidx[i], lskip[i], &a, err))))
                    return rc;
        } else if (r.ck_eq_prefix == nck && nck) {
            for (size_t k = 0; k < r.ncks; k++)
                if (row_in_partition(c, t, &r.pks[p], &r.cks[k]) &&
                    ((rc = mut_rc(st_mut_row(m, r.cks[k].p, (size_t)r.cks[k].len), err)) ||
                     (rc = mut_rc(st_mut_row_delete(m, a.ts, c->now_s), err))))
                    return rc;
        } else if (r.nslices) {
            for (size_t k = 0; k < r.nslices; k++)
                if ((rc = mut_rc(st_mut_range_delete(m, &r.slices[k].start, &r.slices[k].end, a.ts, c->now_s), err)))
                    return rc;
        } else if ((rc = mut_rc(st_mut_partition_delete(m, a.ts, c->now_s), err))) {
            return rc;
        }
    }
    return 0;
}

static int build_modification(exec_ctx *c, const prs_stmt *s, int64_t batch_ts, mutset *ms, sib_err *err)
{
    switch (s->kind) {
    case PRS_STMT_INSERT: return build_insert(c, &s->insert, batch_ts, ms, err);
    case PRS_STMT_UPDATE: return build_update(c, &s->update, batch_ts, ms, err);
    case PRS_STMT_DELETE: return build_delete(c, &s->del, batch_ts, ms, err);
    default:
        return sib_err_set(err, SIB_EINVAL, "Invalid statement in batch: only UPDATE, INSERT and DELETE statements are allowed.");
    }
}

/* ---- apply ---- */

/* What a pending write reports once durable: the request context and the
 * distinct tables it wrote (for per-table metrics). */
typedef struct write_done {
    exec_ctx *c;
    cql_write_type type; /* for WriteTimeout / WriteFailure */
    size_t ntables;
    uint8_t (*tables)[16];
    uint8_t table_in[1][16]; /* tables when there is one: no second allocation */
} write_done;

static void on_write_durable(void *ctx, int rc, const sib_err *err)
{
    write_done *d = ctx;
    exec_ctx *c = d->c;
    if (rc == SIB_ETIMEDOUT || rc == SIB_EWRITEFAIL) {
        /* The coordinator's counts, with this statement's write type. */
        cql_error_extra x = {.consistency = (uint16_t)err->ex[0], .received = (int32_t)err->ex[1],
                             .blockfor = (int32_t)err->ex[2], .numfailures = (int32_t)err->ex[3],
                             .write_type = d->type};
        int32_t code = rc == SIB_ETIMEDOUT ? CQL_ERR_WRITE_TIMEOUT : cql_errcode_from_sib(rc);
        if (c->ex->obs.error) c->ex->obs.error(c->ex->obs.ctx, code);
        cql_reply_error(c->req, code, err->msg, &x);
        return;
    }
    if (rc) { exec_reply_err(c, err); return; }
    cql_exec *ex = c->ex;
    int64_t start = c->now_us;
    for (size_t i = 0; i < d->ntables; i++) exec_note_table_op(ex, d->tables[i], true, start);
    cql_reply_void(c->req); /* frees c and d */
}

/* The distinct tables of ms, in the request arena (NULL on OOM: then no
 * per-table metrics for this write, nothing else changes). */
static write_done *new_write_done(exec_ctx *c, const mutset *ms, cql_write_type type)
{
    write_done *d = sib_arena_alloc(c->arena, sizeof *d);
    if (!d) return NULL;
    d->c = c;
    d->type = type;
    d->ntables = 0;
    d->tables = ms->n <= 1 ? d->table_in : sib_arena_alloc(c->arena, 16 * (ms->n + 1));
    for (size_t i = 0; d->tables && i < ms->n; i++) {
        const uint8_t *id = sch_table_id(ms->tables[i]);
        bool seen = false;
        for (size_t j = 0; j < d->ntables && !seen; j++) seen = !memcmp(d->tables[j], id, 16);
        if (!seen) memcpy(d->tables[d->ntables++], id, 16);
    }
    return d;
}

/* What storage_apply is about to do with ms, as trace events. */
static void trace_apply(exec_ctx *c, const mutset *ms, unsigned flags)
{
    if (!(flags & ST_APPLY_NO_COMMITLOG)) EXEC_TRACE(c->req, "Appending to commitlog");
    for (size_t i = 0; i < ms->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) seen = ms->tables[j] == ms->tables[i];
        if (!seen) EXEC_TRACE(c->req, "Adding to %s memtable", sch_table_name(ms->tables[i]));
    }
}

/* A logged batch's answer: a failed batchlog step reports write type
 * BATCH_LOG. */
static void on_logged_durable(void *ctx, int rc, const sib_err *err, bool batch_log)
{
    write_done *d = ctx;
    if (batch_log) d->type = CQL_WRITE_BATCH_LOG;
    on_write_durable(d, rc, err);
}

/* A logged batch goes through the batchlog when it writes more than one
 * partition (Cassandra's rule: logged and more than one mutation, a
 * mutation being one partition of one keyspace); one partition is one
 * commitlog entry on each replica, atomic without it. */
static bool needs_batchlog(const mutset *ms)
{
    size_t l0, l;
    const uint8_t *pk0 = st_mutation_pk(ms->m[0], &l0);
    for (size_t i = 1; i < ms->n; i++) {
        const uint8_t *pk = st_mutation_pk(ms->m[i], &l);
        if (!pk0 || !pk || l != l0 || memcmp(pk, pk0, l) ||
            strcmp(sch_table_keyspace(ms->tables[i]), sch_table_keyspace(ms->tables[0])))
            return true;
    }
    return false;
}

/* Hands ms to the coordinator, which sends each mutation to its replicas
 * (coordinator/write.c; a logged batch of several partitions through the
 * batchlog first, coordinator/batchlog.c); d replies once blockFor acks are
 * in. */
static int write_through_replicas(exec_ctx *c, mutset *ms, int cl, unsigned flags, write_done *d, sib_err *err)
{
    const coord_repl **repls = sib_arena_alloc(c->arena, ms->n * sizeof *repls);
    if (!repls) return sib_err_set(err, SIB_ENOMEM, "write");
    for (size_t i = 0; i < ms->n; i++) {
        coord_repl *r = sib_arena_alloc(c->arena, sizeof *r);
        if (!r) return sib_err_set(err, SIB_ENOMEM, "write");
        int rc = exec_keyspace_repl(c, sch_table_keyspace(ms->tables[i]), r, err);
        if (rc) return rc;
        repls[i] = r;
    }
    uint8_t version[16];
    sch_catalog_schema_version(c->ex->cat, version);
    if (d->type == CQL_WRITE_BATCH && needs_batchlog(ms)) {
        EXEC_TRACE(c->req, "Storing the batch in the batchlog, then sending mutations to the replicas");
        int rc = coord_write_logged(c->ex->co, ms->m, ms->tokens, repls, ms->n, cl, flags, version,
                                    on_logged_durable, d, err);
        if (rc == SIB_EWRITEFAIL) d->type = CQL_WRITE_BATCH_LOG; /* no holder could be sent the entry */
        return rc;
    }
    EXEC_TRACE(c->req, "Sending mutations to the replicas");
    return coord_write(c->ex->co, ms->m, ms->tokens, repls, ms->n, cl, flags, version, on_write_durable, d, err);
}

/* durable_writes is decided per mutation's keyspace. A statement or batch
 * is one commitlog entry, so it skips the commitlog only when every
 * keyspace it writes has durable_writes = false: a batch that mixes
 * keyspaces is logged whole, and a durable keyspace's rows are never left
 * out because another keyspace came first. */
static unsigned commitlog_flags(exec_ctx *c, const mutset *ms)
{
    cql_exec *ex = c->ex;
    for (size_t i = 0; i < ms->n; i++) {
        /* the table whose replication was asked last (apply_and_reply asked
         * for every table) has its keyspace at hand: no lookup by name */
        bool known = ms->tables[i] == ex->repl_table && ex->repl_ks && ex->repl_gen == ex->ddl_gen;
        const sch_keyspace *ks = known ? ex->repl_ks : sch_catalog_keyspace(ex->cat, sch_table_keyspace(ms->tables[i]));
        if (!ks || sch_keyspace_durable_writes(ks)) return 0;
    }
    return ST_APPLY_NO_COMMITLOG;
}

/* Checks the consistency level for every partition, then applies all the
 * mutations and replies once they are durable: as one local commitlog
 * entry when this node is the only replica of every partition (no
 * messaging, nothing allocated beyond the request), through the
 * coordinator otherwise. */
static void apply_and_reply(exec_ctx *c, mutset *ms, int cl, cql_write_type type)
{
    sib_err err;
    sib_err_clear(&err);
    int rc = 0;
    bool local = true;
    EXEC_TRACE(c->req, "Determining replicas for mutation");
    mutset_tokens(ms, c->ex->co);
    for (size_t i = 0; !rc && i < ms->n; i++) {
        const coord_repl *repl;
        if ((rc = exec_table_repl(c, ms->tables[i], &repl, &err))) break;
        rc = coord_check(c->ex->co, repl, cl, true, ms->tokens[i], &err);
        local = local && coord_local_only(c->ex->co, repl, ms->tokens[i]);
    }
    if (!rc && ms->n) {
        unsigned flags = commitlog_flags(c, ms);
        write_done *d = new_write_done(c, ms, type);
        if (c->req->trace_data) trace_apply(c, ms, flags);
        if (!d) rc = sib_err_set(&err, SIB_ENOMEM, "write");
        else if (local) rc = storage_apply_ex(c->ex->st, ms->m, ms->n, flags, on_write_durable, d, &err);
        else rc = write_through_replicas(c, ms, cl, flags, d, &err);
        mutset_free(ms);
        if (rc && d) on_write_durable(d, rc, &err); /* WriteFailure / WriteTimeout with d's write type */
        else if (rc) exec_reply_err(c, &err);
        return;
    }
    mutset_free(ms);
    if (rc) exec_reply_err(c, &err);
    else cql_reply_void(c->req);
}

/* ---- reading lists before writing (list_op) ----
 * The rows the recorded list operations touch are read one at a time with
 * st_read_page (inline when memory answers, else on the read pool; the
 * page comes back on the loop); consecutive operations on the same row
 * share its read. Each read's page turns its operations into cells and
 * cell tombstones at the paths of the list's current cells, in a mutation
 * of their own, and once every row is read the whole statement (or batch)
 * goes to apply_and_reply as one. An error (an index out of bounds) fails
 * the statement before anything is written. */

typedef struct list_read {
    exec_ctx *c;
    int cl;
    cql_write_type type; /* what a WriteTimeout reports */
    uint64_t ddl_gen; /* the schema the statement was built against */
    size_t next;      /* the first operation whose row is not read yet */
    mutset ms;
} list_read;

static bool same_row(const list_op *x, const list_op *y)
{
    return x->t == y->t && x->is_static == y->is_static && x->pk.len == y->pk.len &&
           !memcmp(x->pk.p, y->pk.p, (size_t)x->pk.len) && (x->is_static || (x->ck.len == y->ck.len &&
           (!x->ck.len || !memcmp(x->ck.p, y->ck.p, (size_t)x->ck.len))));
}

/* A list column of the row as the statement's operations so far leave it:
 * Cassandra merges the statement's pending updates into the row it read
 * (tombstones purged) before each operation, so each operation sees the
 * ones before it (`l = l + [x], l[3] = y` can set an appended element,
 * `DELETE l[2], l[2]` removes two). Elements are in path order; those the
 * statement touched are written once, in their final state, when the row
 * is done. Reconciling follows Cassandra's cells: the higher timestamp
 * wins, at equal ones a tombstone, then the greater value. */
typedef struct lelem {
    const uint8_t *path, *val;
    size_t pathlen, vlen;
    int64_t ts;
    int32_t ttl;
    bool dead, touched;
} lelem;

typedef struct lmodel {
    uint32_t col;
    lelem *e;
    size_t n, cap;
} lmodel;

static int bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    return c ? c : (al > bl) - (al < bl);
}

static int lm_grow(lmodel *m, sib_arena *a)
{
    if (m->n < m->cap) return 0;
    size_t ncap = m->cap ? m->cap * 2 : 8;
    lelem *e = sib_arena_alloc(a, sizeof *e * ncap);
    if (!e) return SIB_ENOMEM;
    if (m->n) memcpy(e, m->e, sizeof *e * m->n);
    m->e = e;
    m->cap = ncap;
    return 0;
}

/* The model of op's column, made from the row read on first use. */
static lmodel *lm_get(lmodel *ms, size_t *nms, const list_op *op, const st_row *row, sib_arena *a)
{
    for (size_t i = 0; i < *nms; i++)
        if (ms[i].col == op->col->id) return &ms[i];
    lmodel *m = &ms[(*nms)++];
    *m = (lmodel){.col = op->col->id};
    for (size_t i = 0; row && i < row->ncells; i++) {
        const st_cell_view *cv = &row->cells[i];
        if (cv->col != m->col) continue;
        if (lm_grow(m, a)) return NULL;
        m->e[m->n++] = (lelem){cv->path, cv->val, cv->pathlen, cv->vlen, cv->ts, cv->ttl, false, false};
    }
    return m;
}

static size_t lm_live(const lmodel *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++) n += !m->e[i].dead;
    return n;
}

/* The entry of the idx-th live element. */
static lelem *lm_at(lmodel *m, size_t idx)
{
    for (size_t i = 0; i < m->n; i++)
        if (!m->e[i].dead && idx-- == 0) return &m->e[i];
    return NULL;
}

static void lm_kill(lelem *e, int64_t ts)
{
    if (e->dead || e->ts > ts) return;
    e->dead = e->touched = true;
    e->ts = ts;
}

static int lm_put(lmodel *m, const uint8_t *path, size_t pathlen, const sch_val *v, int64_t ts, int32_t ttl,
                  sib_arena *a)
{
    size_t i = 0;
    int c = 1;
    while (i < m->n && (c = bytes_cmp(m->e[i].path, m->e[i].pathlen, path, pathlen)) < 0) i++;
    if (i < m->n && !c) {
        lelem *e = &m->e[i];
        bool wins = e->dead ? ts > e->ts
                            : ts > e->ts || (ts == e->ts && bytes_cmp(v->p, (size_t)v->len, e->val, e->vlen) > 0);
        if (wins) *e = (lelem){e->path, v->p, e->pathlen, (size_t)v->len, ts, ttl, false, true};
        return 0;
    }
    if (lm_grow(m, a)) return SIB_ENOMEM;
    uint8_t *pc = sib_arena_memdup(a, path, pathlen);
    if (!pc) return SIB_ENOMEM;
    memmove(&m->e[i + 1], &m->e[i], sizeof *m->e * (m->n - i));
    m->e[i] = (lelem){pc, v->p, pathlen, (size_t)v->len, ts, ttl, false, true};
    m->n++;
    return 0;
}

static bool list_has_value(const list_op *op, const lelem *e)
{
    sch_coll_iter it;
    sch_val k, v;
    if (sch_coll_iter_init(&it, op->col->type, op->val.p, (size_t)op->val.len) < 0) return false;
    while (sch_coll_next(&it, &k, &v))
        if (k.len >= 0 && !bytes_cmp(k.p, (size_t)k.len, e->val, e->vlen)) return true;
    return false;
}

/* Appends or prepends op's values (the paths put_elements gives them). */
static int lm_add(lmodel *m, const list_op *op, sib_arena *a)
{
    if (op->val.len < 0) return 0;
    sch_coll_iter it;
    int n = sch_coll_iter_init(&it, op->col->type, op->val.p, (size_t)op->val.len);
    if (n < 0) return SIB_EINVAL;
    bool pre = op->kind == LOP_PREPEND;
    sib_buf path;
    sib_buf_init(&path);
    sch_val k, v;
    int rc = 0;
    for (uint32_t i = 0; !rc && sch_coll_next(&it, &k, &v); i++) {
        rc = list_path(&path, pre, op->a.ts, pre ? (uint32_t)n - 1 - i : i);
        if (!rc) rc = lm_put(m, path.p, path.len, &k, op->a.ts, op->a.ttl, a);
    }
    sib_buf_free(&path);
    return rc;
}

/* One operation against the list as the operations before it left it. */
static int list_op_apply(lmodel *m, const list_op *op, sib_arena *a, sib_err *err)
{
    if (op->kind == LOP_APPEND || op->kind == LOP_PREPEND) {
        int rc = lm_add(m, op, a);
        if (rc == SIB_EINVAL) return sib_err_set(err, SIB_EINVAL, "Invalid collection value for %s", op->col->name);
        return rc ? sib_err_set(err, rc, "list operation") : 0;
    }
    if (op->kind == LOP_DISCARD) {
        for (size_t i = 0; i < m->n; i++)
            if (!m->e[i].dead && list_has_value(op, &m->e[i])) lm_kill(&m->e[i], op->a.ts);
        return 0;
    }
    size_t n = lm_live(m);
    if (!n)
        return sib_err_set(err, SIB_EINVAL, op->kind == LOP_SET ? "Attempted to set an element on a list which is null"
                                                                : "Attempted to delete an element from a list which is null");
    if (op->idx < 0 || (size_t)op->idx >= n)
        return sib_err_set(err, SIB_EINVAL, "List index %d out of bound, list has size %zu", (int)op->idx, n);
    lelem *e = lm_at(m, (size_t)op->idx);
    if (op->kind == LOP_SET && op->val_unset) return 0;
    if (op->kind == LOP_DELETE || op->val.len < 0) {
        lm_kill(e, op->a.ts);
        return 0;
    }
    int rc = lm_put(m, e->path, e->pathlen, &op->val, op->a.ts, op->a.ttl, a);
    return rc ? sib_err_set(err, rc, "list operation") : 0;
}

/* The elements the statement touched, as cells and cell tombstones. */
static int lm_write(exec_ctx *c, st_mutation *m, const lmodel *lm, sib_err *err)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < lm->n; i++) {
        const lelem *e = &lm->e[i];
        if (!e->touched) continue;
        if (e->dead) {
            rc = mut_rc(st_mut_cell_path_tombstone(m, lm->col, e->path, e->pathlen, e->ts, c->now_s), err);
        } else {
            int32_t expiry = e->ttl ? c->now_s + e->ttl : ST_NO_DELETION_TIME;
            rc = mut_rc(st_mut_cell_path(m, lm->col, e->path, e->pathlen, e->val, e->vlen, e->ts, e->ttl, expiry), err);
        }
    }
    return rc;
}

/* The page read for operation lr->next: it and the following operations
 * on the same row. */
static int list_read_take(list_read *lr, st_rpage *pg, sib_err *err)
{
    int rc = st_rpage_status(pg, err);
    if (rc) return rc;
    const list_op *op0 = &lr->ms.lops[lr->next];
    st_row row;
    bool found = false;
    if (st_rpage_parts(pg)) {
        st_rpart part;
        st_rpage_part(pg, 0, &part);
        if (op0->is_static) found = st_rpage_static(pg, 0, &row);
        else if (part.nrows) {
            st_rpage_row(pg, 0, 0, &row);
            found = true;
        }
    }
    st_mutation *m = mutset_add(&lr->ms, op0->t, &op0->pk, err);
    if (!m) return err->code;
    if (op0->is_static) rc = mut_rc(st_mut_static(m), err);
    else rc = mut_rc(st_mut_row(m, op0->ck.p ? op0->ck.p : (const uint8_t *)"", (size_t)op0->ck.len), err);
    size_t j = lr->next;
    while (j < lr->ms.nlops && same_row(op0, &lr->ms.lops[j])) j++;
    sib_arena *a = lr->c->arena;
    size_t nm = 0;
    lmodel *models = sib_arena_alloc(a, sizeof *models * (j - lr->next));
    if (!models && !rc) rc = sib_err_set(err, SIB_ENOMEM, "list operation");
    for (size_t i = lr->next; !rc && i < j; i++) {
        const list_op *op = &lr->ms.lops[i];
        lmodel *lm = lm_get(models, &nm, op, found ? &row : NULL, a);
        rc = lm ? list_op_apply(lm, op, a, err) : sib_err_set(err, SIB_ENOMEM, "list operation");
    }
    for (size_t i = 1; i < nm; i++) /* cells in column order */
        for (size_t k = i; k > 0 && models[k - 1].col > models[k].col; k--) {
            lmodel tmp = models[k];
            models[k] = models[k - 1];
            models[k - 1] = tmp;
        }
    for (size_t i = 0; !rc && i < nm; i++) rc = lm_write(lr->c, m, &models[i], err);
    lr->next = j;
    return rc;
}

static void list_read_page(void *ctx, st_rpage *pg);
static void list_read_replicas(void *ctx, int rc, const sib_err *err, st_merge *mg);

/* The read of operation op's row: that row (the static row for a static
 * column), or the whole partition of a table without clustering columns. */
static void list_rreq(const list_read *lr, const list_op *op, st_rreq *rq, st_slice *sl)
{
    *sl = (st_slice){{op->ck.p, (size_t)op->ck.len, true, false}, {op->ck.p, (size_t)op->ck.len, true, false}};
    *rq = (st_rreq){.pk = op->pk.p, .pklen = (size_t)op->pk.len, .now_s = lr->c->now_s, .max_rows = 1, .max_parts = 1,
                    .static_only = op->is_static, .with_static = op->is_static};
    if (!op->is_static && sch_table_clustering_count(op->t)) {
        rq->slices = sl;
        rq->nslices = 1;
    }
}

/* A row whose partition this node does not replicate alone is read
 * through its replicas at the statement's level (coord_read, reconciled
 * and read-repaired like a SELECT), so a coordinator that is not a replica
 * sees the list its replicas hold: 1 = asked (list_read_replicas goes on),
 * 0 = read it here, <0 = failed. A static row is asked with its whole
 * partition (the replicas' answer always carries the static row). */
static int list_read_remote(list_read *lr, const list_op *op, const st_rreq *rq, sib_err *err)
{
    exec_ctx *c = lr->c;
    if (!c->ex->co) return 0;
    coord_repl repl;
    int rc = exec_keyspace_repl(c, sch_table_keyspace(op->t), &repl, err);
    if (rc) return rc;
    int64_t tok = sib_murmur3_token(op->pk.p, (size_t)op->pk.len);
    if (coord_local_only(c->ex->co, &repl, tok)) return 0;
    const sch_table_opts *o = sch_table_options(op->t);
    bool repair = !o || !o->read_repair || strcmp(o->read_repair, "NONE") != 0;
    uint8_t version[16];
    sch_catalog_schema_version(c->ex->cat, version);
    coord_read_req cr = {.table_id = sch_table_id(op->t), .schema_version = version, .pk = rq->pk, .pklen = rq->pklen,
                         .slices = op->is_static ? NULL : rq->slices, .nslices = op->is_static ? 0 : rq->nslices,
                         .now_s = rq->now_s};
    rc = coord_read(c->ex->co, &cr, &repl, tok, lr->cl, repair, list_read_replicas, lr, err);
    return rc ? rc : 1;
}

/* Reads rows until one read is queued (1), all are read (0) or one failed. */
static int list_read_more(list_read *lr, sib_err *err)
{
    while (lr->next < lr->ms.nlops) {
        const list_op *op = &lr->ms.lops[lr->next];
        st_table *store = storage_table(lr->c->ex->st, sch_table_id(op->t));
        if (!store) return sib_err_set(err, SIB_EINVAL, "unconfigured table %s", sch_table_name(op->t));
        st_slice sl;
        st_rreq rq;
        list_rreq(lr, op, &rq, &sl);
        int rc = list_read_remote(lr, op, &rq, err);
        if (rc) return rc;
        st_rpage *pg;
        rc = st_read_page(store, &rq, &pg, list_read_page, lr, err);
        if (rc) return rc;
        rc = list_read_take(lr, pg, err);
        st_rpage_destroy(pg);
        if (rc) return rc;
    }
    return 0;
}

/* The reads are over: apply everything (rc 0) or reply the error (a read
 * through the replicas that timed out is a ReadTimeout, with the
 * coordinator's counts). */
static void list_read_done(list_read *lr, int rc, const sib_err *err)
{
    if (rc == SIB_ETIMEDOUT) {
        mutset_free(&lr->ms);
        cql_error_extra x = {.consistency = (uint16_t)err->ex[0], .received = (int32_t)err->ex[1],
                             .blockfor = (int32_t)err->ex[2], .data_present = err->ex[3] != 0};
        if (lr->c->ex->obs.error) lr->c->ex->obs.error(lr->c->ex->obs.ctx, CQL_ERR_READ_TIMEOUT);
        cql_reply_error(lr->c->req, CQL_ERR_READ_TIMEOUT, err->msg, &x);
    } else if (rc) {
        mutset_free(&lr->ms);
        exec_reply_err(lr->c, err);
    } else {
        apply_and_reply(lr->c, &lr->ms, lr->cl, lr->type);
    }
    free(lr);
}

/* A row came back: from the read pool (pg), or from the replicas (pg, or
 * prc/perr when their read failed). */
static void list_read_back(list_read *lr, st_rpage *pg, int prc, const sib_err *perr)
{
    sib_err err;
    sib_err_clear(&err);
    int rc;
    if (lr->c->ex->ddl_gen != lr->ddl_gen) {
        /* the table or its columns may be gone: nothing was written */
        rc = sib_err_set(&err, SIB_EINVAL, "The schema changed while the statement read its lists; retry it");
    } else if (cql_request_orphaned(lr->c->req)) {
        rc = sib_err_set(&err, SIB_ESERVER, "the connection closed during the read");
    } else if (prc) {
        err = *perr;
        rc = prc;
    } else {
        rc = list_read_take(lr, pg, &err);
        if (!rc) rc = list_read_more(lr, &err);
    }
    if (pg) st_rpage_destroy(pg);
    if (rc != 1) list_read_done(lr, rc, &err);
}

static void list_read_page(void *ctx, st_rpage *pg) { list_read_back(ctx, pg, 0, NULL); }

/* The replicas answered (list_read_remote): their reconciled partition is
 * read like the local one, while the schema the statement was built
 * against still holds (list_read_back reports it otherwise). */
static void list_read_replicas(void *ctx, int rc, const sib_err *err, st_merge *mg)
{
    list_read *lr = ctx;
    sib_err e;
    sib_err_clear(&e);
    st_rpage *pg = NULL;
    if (!rc && lr->c->ex->ddl_gen == lr->ddl_gen && !cql_request_orphaned(lr->c->req)) {
        const list_op *op = &lr->ms.lops[lr->next];
        st_slice sl;
        st_rreq rq;
        list_rreq(lr, op, &rq, &sl);
        rc = st_merge_read(mg, sch_table_id(op->t), &rq, &pg, &e);
        err = &e;
    }
    list_read_back(lr, pg, rc, err);
}

/* Checks the read's consistency level for every row to read, then reads
 * them; ms moves into the read. */
static void list_read_start(exec_ctx *c, mutset *ms, int cl, cql_write_type type)
{
    sib_err err;
    sib_err_clear(&err);
    int rc = 0;
    for (size_t i = 0; !rc && c->ex->co && i < ms->nlops; i++) {
        coord_repl repl;
        const list_op *op = &ms->lops[i];
        if (!(rc = exec_keyspace_repl(c, sch_table_keyspace(op->t), &repl, &err)))
            rc = coord_check(c->ex->co, &repl, cl, false, sib_murmur3_token(op->pk.p, (size_t)op->pk.len), &err);
    }
    list_read *lr = rc ? NULL : calloc(1, sizeof *lr);
    if (!rc && !lr) rc = sib_err_set(&err, SIB_ENOMEM, "list read");
    if (rc) {
        mutset_free(ms);
        exec_reply_err(c, &err);
        return;
    }
    lr->c = c;
    lr->cl = cl;
    lr->type = type;
    lr->ddl_gen = c->ex->ddl_gen;
    mutset_move(&lr->ms, ms);
    rc = list_read_more(lr, &err);
    if (rc != 1) list_read_done(lr, rc, &err);
}

/* A statement or batch is written at once, or after reading its lists. */
static void write_or_read(exec_ctx *c, mutset *ms, int cl, cql_write_type type)
{
    if (ms->nlops) list_read_start(c, ms, cl, type);
    else apply_and_reply(c, ms, cl, type);
}

void exec_modification(exec_ctx *c, const prs_stmt *s)
{
    sib_err err;
    sib_err_clear(&err);
    mutset ms;
    mutset_init(&ms, c->ex);
    if (build_modification(c, s, INT64_MIN, &ms, &err)) {
        mutset_free(&ms);
        exec_reply_err(c, &err);
        return;
    }
    write_or_read(c, &ms, c->consistency, CQL_WRITE_SIMPLE);
}

/* ---- BATCH ---- */

static int batch_checks(exec_ctx *c, const prs_batch *b, int64_t *batch_ts, sib_err *err)
{
    *batch_ts = INT64_MIN;
    if (b->kind == PRS_BATCH_COUNTER) return sib_err_set(err, SIB_EINVAL, "Counter batches are not supported");
    if (b->using.ttl) return sib_err_set(err, SIB_EINVAL, "Global TTL on the BATCH statement is not supported.");
    if (b->using.timestamp) {
        bool present;
        int64_t v;
        int rc = exec_term_int(c, b->using.timestamp, "timestamp", &v, &present, err);
        if (rc) return rc;
        if (present) *batch_ts = v;
    }
    return 0;
}

static size_t mutset_bytes(const mutset *ms)
{
    size_t n = 0;
    for (size_t i = 0; i < ms->n; i++) n += st_mutation_size(ms->m[i]);
    return n;
}

static int batch_size_check(exec_ctx *c, const mutset *ms, sib_err *err)
{
    size_t bytes = mutset_bytes(ms);
    if (bytes > c->ex->batch_fail_bytes)
        return sib_err_set(err, SIB_EINVAL, "Batch too large");
    return 0;
}

void exec_batch_query(exec_ctx *c, const prs_stmt *s)
{
    sib_err err;
    sib_err_clear(&err);
    mutset ms;
    mutset_init(&ms, c->ex);
    int64_t bts;
    int rc = batch_checks(c, &s->batch, &bts, &err);
    for (size_t i = 0; !rc && i < s->batch.nstmts; i++) {
        c->stmt = s->batch.stmts[i];
        rc = build_modification(c, s->batch.stmts[i], bts, &ms, &err);
    }
    c->stmt = s;
    if (!rc) rc = batch_size_check(c, &ms, &err);
    if (rc) {
        mutset_free(&ms);
        exec_reply_err(c, &err);
        return;
    }
    write_or_read(c, &ms, c->consistency,
                    s->batch.kind == PRS_BATCH_UNLOGGED ? CQL_WRITE_UNLOGGED_BATCH : CQL_WRITE_BATCH);
}

/* The BATCH opcode: each entry is a query string (parsed into the request
 * arena) or a prepared id, with its own values. */
void exec_batch_request(cql_exec *ex, cql_request *req)
{
    sib_err err;
    sib_err_clear(&err);
    const cql_batch_req *b = &req->u.batch;
    mutset ms;
    mutset_init(&ms, ex);
    exec_ctx *top = NULL;
    int rc = 0;
    if (b->type == PRS_BATCH_COUNTER) rc = sib_err_set(&err, SIB_EINVAL, "Counter batches are not supported");
    for (size_t i = 0; !rc && i < b->nstmts; i++) {
        const cql_batch_stmt *bs = &b->stmts[i];
        const prs_stmt *st;
        const char *ks = req->session->keyspace;
        if (bs->prepared) {
            exec_prepared *p = exec_prepared_find(ex, bs->id.p, (size_t)(bs->id.len > 0 ? bs->id.len : 0));
            if (!p) { rc = exec_unprepared(bs->id.p, (size_t)(bs->id.len > 0 ? bs->id.len : 0), &err); break; }
            st = p->stmt;
            ks = p->keyspace;
        } else {
            prs_stmt *parsed;
            if ((rc = prs_parse(bs->query.p, bs->query.len, req->arena, &parsed, &err))) break;
            st = parsed;
        }
        exec_ctx *c = sib_arena_alloc(req->arena, sizeof *c);
        if (!c) { rc = sib_err_set(&err, SIB_ENOMEM, "batch"); break; }
        exec_ctx_init(c, ex, req, st, NULL, ks);
        c->values = bs->values;
        c->nvalues = bs->nvalues;
        c->consistency = b->consistency;
        if (top) c->timestamp = top->timestamp;
        else if (b->timestamp != INT64_MIN) c->timestamp = b->timestamp;
        if (!top) top = c;
        if (c->nvalues != c->nmarkers) {
            rc = sib_err_set(&err, SIB_EINVAL, "There were %zu markers(?) in CQL but %zu bound variables", c->nmarkers, c->nvalues);
            break;
        }
        rc = build_modification(c, st, INT64_MIN, &ms, &err);
    }
    if (!rc) rc = top ? batch_size_check(top, &ms, &err) : 0;
    if (rc || !top) {
        mutset_free(&ms);
        if (rc) exec_reply_err_req(req, &err);
        else cql_reply_void(req);
        return;
    }
    write_or_read(top, &ms, b->consistency,
                    b->type == PRS_BATCH_UNLOGGED ? CQL_WRITE_UNLOGGED_BATCH : CQL_WRITE_BATCH);
}
