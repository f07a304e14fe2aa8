/* exec_describe.c: DESCRIBE answered by the server, as Cassandra 4.0 does
 * (cql3/statements/DescribeStatement.java), because cqlsh >= 4.0 sends
 * DESCRIBE as a query once release_version says 4.x.
 *
 * Result sets (global table spec system.describe, every column text):
 *   listings (KEYSPACES, TABLES, TYPES, FUNCTIONS, AGGREGATES):
 *       keyspace_name | type | name
 *   elements (KEYSPACE, TABLE, SCHEMA, a bare name):
 *       keyspace_name | type | name | create_statement
 *   CLUSTER: cluster | partitioner | snitch [| range_ownership map<text,
 *       list<text>> when the session uses a non-system keyspace]
 * `type` is the element kind in lower case ("keyspace", "table"); names are
 * quoted when CQL needs it. Elements come sorted by name, a keyspace first
 * and then its tables. The CREATE statements follow Cassandra's CqlBuilder
 * layout (4-space indent, options in alphabetical order, `;` at the end), so
 * running them recreates the schema exactly.
 *
 * Paging, like Cassandra, is by row offset; the state carries the schema
 * version so a page never mixes two schemas:
 *   u8 version (1) | u8 kind (3) | 16-byte schema version | uvarint offset |
 *   u32 BE crc32c of the preceding bytes
 */
#include "exec_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>

#define DS_VERSION 1
#define DS_KIND 3

typedef struct desc_rows {
    exec_ctx *c;
    size_t ncols;
    const char **cells; /* n * ncols */
    size_t n, cap;
} desc_rows;

static int oom(sib_err *err) { return sib_err_set(err, SIB_ENOMEM, "out of memory"); }

static char *buf_str(exec_ctx *c, sib_buf *b)
{
    char *s = b->oom ? NULL : sib_arena_strndup(c->arena, b->len ? (const char *)b->p : "", b->len);
    sib_buf_free(b);
    return s;
}

static const char *quoted(exec_ctx *c, const char *name)
{
    sib_buf b;
    sib_buf_init(&b);
    sch_ident_quote(name, &b);
    return buf_str(c, &b);
}

static int add_row(desc_rows *r, const char *const *vals, sib_err *err)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        const char **cells = sib_arena_alloc(r->c->arena, sizeof(*cells) * cap * r->ncols);
        if (!cells) return oom(err);
        if (r->n) memcpy(cells, r->cells, sizeof(*cells) * r->n * r->ncols);
        r->cells = cells;
        r->cap = cap;
    }
    for (size_t i = 0; i < r->ncols; i++) {
        if (!vals[i]) return oom(err);
        r->cells[r->n * r->ncols + i] = vals[i];
    }
    r->n++;
    return 0;
}

/* ---- CQL text helpers ------------------------------------------------------- */

static void put_quoted_string(sib_buf *b, const char *s)
{
    sib_buf_u8(b, '\'');
    for (; *s; s++) {
        if (*s == '\'') sib_buf_u8(b, '\'');
        sib_buf_u8(b, (uint8_t)*s);
    }
    sib_buf_u8(b, '\'');
}

/* {'k': 'v', ...} in key order (the catalog keeps maps sorted, like TreeMap). */
static void put_strmap(sib_buf *b, const sch_strmap *m)
{
    sib_buf_u8(b, '{');
    for (size_t i = 0; i < m->n; i++) {
        if (i) sib_buf_append(b, ", ", 2);
        put_quoted_string(b, m->kv[i].key);
        sib_buf_append(b, ": ", 2);
        put_quoted_string(b, m->kv[i].value);
    }
    sib_buf_u8(b, '}');
}

/* Java's Double.toString: shortest round-trip digits, plain notation for
 * 1e-3 <= |d| < 1e7 (always with a fractional digit), else d.dddE[-]n. */
static void put_java_double(sib_buf *b, double d)
{
    if (isnan(d)) { sib_buf_printf(b, "NaN"); return; }
    if (isinf(d)) { sib_buf_printf(b, d < 0 ? "-Infinity" : "Infinity"); return; }
    if (d == 0) { sib_buf_printf(b, signbit(d) ? "-0.0" : "0.0"); return; }
    char e[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof(e), "%.*e", p - 1, d);
        if (strtod(e, NULL) == d) break;
    }
    /* e = [-]D[.DDD]e[+-]XX */
    char digits[24];
    size_t nd = 0;
    const char *q = e;
    bool neg = *q == '-';
    if (neg) q++;
    for (; *q && *q != 'e'; q++)
        if (*q != '.') digits[nd++] = *q;
    int exp = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    if (neg) sib_buf_u8(b, '-');
    if (fabs(d) >= 1e-3 && fabs(d) < 1e7) {
        if (exp < 0) {
            sib_buf_append(b, "0.", 2);
            for (int i = -1; i > exp; i--) sib_buf_u8(b, '0');
            sib_buf_append(b, digits, nd);
        } else {
            for (int i = 0; i <= exp; i++) sib_buf_u8(b, i < (int)nd ? (uint8_t)digits[i] : '0');
            sib_buf_u8(b, '.');
            if ((int)nd > exp + 1) sib_buf_append(b, digits + exp + 1, nd - (size_t)exp - 1);
            else sib_buf_u8(b, '0');
        }
        return;
    }
    sib_buf_printf(b, "%c.%sE%d", digits[0], nd > 1 ? digits + 1 : "0", exp);
}

static void put_table_name(sib_buf *b, const sch_table *t)
{
    sch_ident_quote(sch_table_keyspace(t), b);
    sib_buf_u8(b, '.');
    sch_ident_quote(sch_table_name(t), b);
}

static bool is_virtual_keyspace(const char *ks)
{
    return strcmp(ks, "system_virtual_schema") == 0 || strcmp(ks, "system_views") == 0;
}

static void put_column(sib_buf *b, const char *name, const sch_type *type, bool is_static)
{
    sch_ident_quote(name, b);
    sib_buf_u8(b, ' ');
    sch_type_cql_name(type, b);
    if (is_static) sib_buf_append(b, " static", 7);
}

/* ---- CREATE KEYSPACE / CREATE TABLE ----------------------------------------- */

static void keyspace_cql(const sch_keyspace *ks, sib_buf *b)
{
    const char *name = sch_keyspace_name(ks);
    if (is_virtual_keyspace(name)) {
        sib_buf_printf(b, "/*\nWarning: Keyspace ");
        sch_ident_quote(name, b);
        sib_buf_printf(b, " is a virtual keyspace and cannot be recreated with CQL.\nStructure, for reference:\n"
                          "VIRTUAL KEYSPACE ");
        sch_ident_quote(name, b);
        sib_buf_printf(b, ";\n*/");
        return;
    }
    const char *cls = sch_keyspace_strategy(ks);
    const char *pkg = "org.apache.cassandra.locator.";
    /* Cassandra prints its own strategies by their short name */
    if (strncmp(cls, pkg, strlen(pkg)) == 0 && !strchr(cls + strlen(pkg), '.')) cls += strlen(pkg);
    sib_buf_printf(b, "CREATE KEYSPACE ");
    sch_ident_quote(name, b);
    sib_buf_printf(b, " WITH replication = {'class': ");
    put_quoted_string(b, cls);
    const sch_strmap *m = sch_keyspace_replication(ks);
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->kv[i].key, "class") == 0) continue;
        sib_buf_append(b, ", ", 2);
        put_quoted_string(b, m->kv[i].key);
        sib_buf_append(b, ": ", 2);
        put_quoted_string(b, m->kv[i].value);
    }
    sib_buf_printf(b, "}  AND durable_writes = %s;", sch_keyspace_durable_writes(ks) ? "true" : "false");
}

static const sch_dropped_column *dropped_named(const sch_table *t, const char *name)
{
    for (size_t i = 0; i < sch_table_dropped_count(t); i++)
        if (strcmp(sch_table_dropped(t, i)->name, name) == 0) return sch_table_dropped(t, i);
    return NULL;
}

/* Column lines; with internals, dropped columns come last (TableMetadata.appendColumnDefinitions). */
static void table_columns(const sch_table *t, bool internals, bool single_pk, sib_buf *b)
{
    size_t ncols = sch_table_column_count(t), ndropped = internals ? sch_table_dropped_count(t) : 0;
    for (size_t i = 0; i < ncols; i++) {
        const sch_column *col = sch_table_column(t, i);
        if (internals && dropped_named(t, col->name)) continue; /* re-added: shown by ALTER ... ADD */
        if (sch_column_is_derived(t, col)) continue; /* BUCKET(...) / SALT(...) in PRIMARY KEY */
        sib_buf_append(b, "    ", 4);
        put_column(b, col->name, col->type, col->kind == SCH_COL_STATIC);
        if (single_pk && col->kind == SCH_COL_PARTITION_KEY) sib_buf_printf(b, " PRIMARY KEY");
        if (!single_pk || ndropped || i + 1 < ncols) sib_buf_u8(b, ',');
        sib_buf_u8(b, '\n');
    }
    for (size_t i = 0; i < ndropped; i++) {
        const sch_dropped_column *d = sch_table_dropped(t, i);
        sib_buf_append(b, "    ", 4);
        put_column(b, d->name, d->type, false);
        if (!single_pk) sib_buf_u8(b, ',');
        sib_buf_u8(b, '\n');
    }
}

static void table_primary_key(const sch_table *t, sib_buf *b)
{
    size_t npk = sch_table_pk_count(t);
    sib_buf_printf(b, "    PRIMARY KEY (%s", npk > 1 ? "(" : "");
    for (size_t i = 0; i < npk; i++) {
        if (i) sib_buf_append(b, ", ", 2);
        sch_bucket bk;
        sch_salt sl;
        if (sch_table_bucket(t, &bk) && bk.pk_pos == i) sch_bucket_cql(t, b);
        else if (sch_table_salt(t, &sl) && sl.pk_pos == i) sch_salt_cql(t, b);
        else sch_ident_quote(sch_table_pk(t, i)->name, b);
    }
    if (npk > 1) sib_buf_u8(b, ')');
    for (size_t i = 0; i < sch_table_clustering_count(t); i++) {
        sib_buf_append(b, ", ", 2);
        sch_ident_quote(sch_table_clustering(t, i)->name, b);
    }
    sib_buf_printf(b, ")\n");
}

/* TableParams.appendCqlTo (4.0): every option, alphabetical. */
static void table_options(const sch_table *t, sib_buf *b)
{
    static const sch_table_opts defaults = {.gc_grace_seconds = 864000, .bloom_filter_fp_chance = 0.01,
                                            .crc_check_chance = 1.0, .max_index_interval = 2048,
                                            .min_index_interval = 128};
    const sch_table_opts *o = sch_table_options(t) ? sch_table_options(t) : &defaults;
    const char *nl = "\n    AND ";
    sib_buf_printf(b, "additional_write_policy = ");
    put_quoted_string(b, o->additional_write_policy ? o->additional_write_policy : "99p");
    sib_buf_printf(b, "%sbloom_filter_fp_chance = ", nl);
    put_java_double(b, o->bloom_filter_fp_chance);
    sib_buf_printf(b, "%scaching = ", nl);
    put_strmap(b, &o->caching);
    sib_buf_printf(b, "%scdc = %s%scomment = ", nl, o->cdc ? "true" : "false", nl);
    put_quoted_string(b, o->comment ? o->comment : "");
    sib_buf_printf(b, "%scompaction = ", nl);
    put_strmap(b, &o->compaction);
    sib_buf_printf(b, "%scompression = ", nl);
    put_strmap(b, &o->compression);
    sib_buf_printf(b, "%scrc_check_chance = ", nl);
    put_java_double(b, o->crc_check_chance);
    sib_buf_printf(b, "%sdefault_time_to_live = %" PRId32 "%sextensions = {}", nl, o->default_time_to_live, nl);
    sib_buf_printf(b, "%sgc_grace_seconds = %" PRId32 "%smax_index_interval = %" PRId32, nl, o->gc_grace_seconds, nl,
                   o->max_index_interval);
    sib_buf_printf(b, "%smemtable_flush_period_in_ms = %" PRId32 "%smin_index_interval = %" PRId32, nl,
                   o->memtable_flush_period_in_ms, nl, o->min_index_interval);
    sib_buf_printf(b, "%sread_repair = ", nl);
    put_quoted_string(b, o->read_repair ? o->read_repair : "BLOCKING");
    sib_buf_printf(b, "%sspeculative_retry = ", nl);
    put_quoted_string(b, o->speculative_retry ? o->speculative_retry : "99p");
}

static void table_cql(const sch_table *t, bool internals, sib_buf *b)
{
    bool virt = is_virtual_keyspace(sch_table_keyspace(t));
    size_t nck = sch_table_clustering_count(t);
    bool single_pk = sch_table_pk_count(t) == 1 && nck == 0;
    if (virt) {
        sib_buf_printf(b, "/*\nWarning: Table ");
        put_table_name(b, t);
        sib_buf_printf(b, " is a virtual table and cannot be recreated with CQL.\nStructure, for reference:\n");
    }
    sib_buf_printf(b, "%s TABLE ", virt ? "VIRTUAL" : "CREATE");
    put_table_name(b, t);
    sib_buf_printf(b, " (\n");
    table_columns(t, internals, single_pk, b);
    if (!single_pk) table_primary_key(t, b);
    sib_buf_printf(b, ") WITH ");
    if (internals) {
        char id[37];
        sib_uuid_format(sch_table_id(t), id);
        sib_buf_printf(b, "ID = %s\n    AND ", id);
    }
    if (nck) {
        sib_buf_printf(b, "CLUSTERING ORDER BY (");
        for (size_t i = 0; i < nck; i++) {
            const sch_column *col = sch_table_clustering(t, i);
            if (i) sib_buf_append(b, ", ", 2);
            sch_ident_quote(col->name, b);
            sib_buf_printf(b, col->order == SCH_ORDER_DESC ? " DESC" : " ASC");
        }
        sib_buf_printf(b, ")\n    AND ");
    }
    if (virt) {
        sib_buf_printf(b, "comment = ");
        const sch_table_opts *o = sch_table_options(t);
        put_quoted_string(b, o && o->comment ? o->comment : "");
        sib_buf_printf(b, ";\n*/");
        return;
    }
    table_options(t, b);
    sib_buf_u8(b, ';');
    for (size_t i = 0; internals && i < sch_table_dropped_count(t); i++) {
        const sch_dropped_column *d = sch_table_dropped(t, i);
        sib_buf_printf(b, "\nALTER TABLE ");
        put_table_name(b, t);
        sib_buf_printf(b, " DROP ");
        sch_ident_quote(d->name, b);
        sib_buf_printf(b, " USING TIMESTAMP %" PRId64 ";", d->dropped_time_us);
        const sch_column *col = sch_table_column_by_name(t, d->name);
        if (!col) continue;
        sib_buf_printf(b, "\nALTER TABLE ");
        put_table_name(b, t);
        sib_buf_printf(b, " ADD ");
        put_column(b, col->name, col->type, col->kind == SCH_COL_STATIC);
        sib_buf_u8(b, ';');
    }
}

/* ---- elements ----------------------------------------------------------------- */

static int name_cmp(const char *a, const char *b)
{
    int c = strcasecmp(a, b);
    return c ? c : strcmp(a, b);
}

static int ks_cmp(const void *a, const void *b)
{
    return name_cmp(sch_keyspace_name(*(const sch_keyspace *const *)a),
                    sch_keyspace_name(*(const sch_keyspace *const *)b));
}

static int table_cmp(const void *a, const void *b)
{
    return name_cmp(sch_table_name(*(const sch_table *const *)a), sch_table_name(*(const sch_table *const *)b));
}

/* Keyspaces (or one keyspace's tables) sorted like SchemaElement.NAME_COMPARATOR. */
static const sch_keyspace **sorted_keyspaces(exec_ctx *c, size_t *n)
{
    *n = sch_catalog_keyspace_count(c->ex->cat);
    const sch_keyspace **v = sib_arena_alloc(c->arena, sizeof(*v) * (*n ? *n : 1));
    if (!v) return NULL;
    for (size_t i = 0; i < *n; i++) v[i] = sch_catalog_keyspace_at(c->ex->cat, i);
    qsort(v, *n, sizeof(*v), ks_cmp);
    return v;
}

static const sch_table **sorted_tables(exec_ctx *c, const sch_keyspace *ks, size_t *n)
{
    *n = sch_keyspace_table_count(ks);
    const sch_table **v = sib_arena_alloc(c->arena, sizeof(*v) * (*n ? *n : 1));
    if (!v) return NULL;
    for (size_t i = 0; i < *n; i++) v[i] = sch_keyspace_table_at(ks, i);
    qsort(v, *n, sizeof(*v), table_cmp);
    return v;
}

static int add_table(desc_rows *r, const sch_table *t, bool internals, sib_err *err)
{
    sib_buf b;
    sib_buf_init(&b);
    table_cql(t, internals, &b);
    const char *row[4] = {quoted(r->c, sch_table_keyspace(t)), "table", quoted(r->c, sch_table_name(t)),
                          buf_str(r->c, &b)};
    return add_row(r, row, err);
}

/* The keyspace, then (unless only) each of its tables. */
static int add_keyspace(desc_rows *r, const sch_keyspace *ks, bool only, bool internals, sib_err *err)
{
    sib_buf b;
    sib_buf_init(&b);
    keyspace_cql(ks, &b);
    const char *qn = quoted(r->c, sch_keyspace_name(ks));
    const char *row[4] = {qn, "keyspace", qn, buf_str(r->c, &b)};
    int rc = add_row(r, row, err);
    if (rc || only) return rc;
    size_t n;
    const sch_table **ts = sorted_tables(r->c, ks, &n);
    if (!ts) return oom(err);
    for (size_t i = 0; i < n && !rc; i++) rc = add_table(r, ts[i], internals, err);
    return rc;
}

static int find_keyspace(exec_ctx *c, const char *name, const sch_keyspace **out, sib_err *err)
{
    if (!name || !*name) name = c->keyspace;
    if (!name || !*name) return sib_err_set(err, SIB_EINVAL, "No keyspace specified and no current keyspace");
    *out = sch_catalog_keyspace(c->ex->cat, name);
    if (!*out) return sib_err_set(err, SIB_EINVAL, "'%s' not found in keyspaces", name);
    return 0;
}

/* DESCRIBE TABLES (and the empty TYPES / FUNCTIONS / AGGREGATES): the
 * current keyspace only, or every keyspace when none is in use. */
static int list_elements(desc_rows *r, bool tables, sib_err *err)
{
    exec_ctx *c = r->c;
    const sch_keyspace *one = NULL;
    if (c->keyspace && *c->keyspace) {
        int rc = find_keyspace(c, c->keyspace, &one, err);
        if (rc) return rc;
    }
    size_t nks = 1;
    const sch_keyspace **kss = one ? &one : sorted_keyspaces(c, &nks);
    if (!kss) return oom(err);
    for (size_t k = 0; tables && k < nks; k++) {
        size_t n;
        const sch_table **ts = sorted_tables(c, kss[k], &n);
        if (!ts) return oom(err);
        for (size_t i = 0; i < n; i++) {
            const char *row[3] = {quoted(c, sch_keyspace_name(kss[k])), "table", quoted(c, sch_table_name(ts[i]))};
            int rc = add_row(r, row, err);
            if (rc) return rc;
        }
    }
    return 0;
}

static int list_keyspaces(desc_rows *r, sib_err *err)
{
    size_t n;
    const sch_keyspace **kss = sorted_keyspaces(r->c, &n);
    if (!kss) return oom(err);
    for (size_t i = 0; i < n; i++) {
        const char *qn = quoted(r->c, sch_keyspace_name(kss[i]));
        const char *row[3] = {qn, "keyspace", qn};
        int rc = add_row(r, row, err);
        if (rc) return rc;
    }
    return 0;
}

static int describe_schema(desc_rows *r, bool full, bool internals, sib_err *err)
{
    size_t n;
    const sch_keyspace **kss = sorted_keyspaces(r->c, &n);
    if (!kss) return oom(err);
    for (size_t i = 0; i < n; i++) {
        if (!full && sch_keyspace_is_system(kss[i])) continue;
        int rc = add_keyspace(r, kss[i], false, internals, err);
        if (rc) return rc;
    }
    return 0;
}

static int describe_table(desc_rows *r, const char *ks_name, const char *name, bool internals, sib_err *err)
{
    const sch_keyspace *ks;
    int rc = find_keyspace(r->c, ks_name, &ks, err);
    if (rc) return rc;
    const sch_table *t = sch_catalog_table(r->c->ex->cat, sch_keyspace_name(ks), name);
    if (!t) return sib_err_set(err, SIB_EINVAL, "Table '%s' not found in keyspace '%s'", name, sch_keyspace_name(ks));
    return add_table(r, t, internals, err);
}

/* DESCRIBE <name>: a keyspace, else a table of the current keyspace. */
static int describe_name(desc_rows *r, const prs_qname *q, bool internals, sib_err *err)
{
    exec_ctx *c = r->c;
    const sch_keyspace *ks;
    if (!q->ks && (ks = sch_catalog_keyspace(c->ex->cat, q->name))) return add_keyspace(r, ks, false, internals, err);
    const char *ks_name = q->ks ? q->ks : (c->keyspace && *c->keyspace) ? c->keyspace : q->name;
    if (!(ks = sch_catalog_keyspace(c->ex->cat, ks_name)))
        return sib_err_set(err, SIB_EINVAL, "'%s' not found in keyspaces", ks_name);
    const sch_table *t = sch_catalog_table(c->ex->cat, ks_name, q->name);
    if (!t) return sib_err_set(err, SIB_EINVAL, "'%s' not found in keyspace '%s'", q->name, ks_name);
    return add_table(r, t, internals, err);
}

/* ---- DESCRIBE CLUSTER ------------------------------------------------------------ */

/* range_ownership: every range of the whole ring (named by its end token)
 * -> the keyspace's replicas of it, as "address:storage_port" (every node of
 * a cluster uses the same storage_port). */
static int range_ownership(exec_ctx *c, const char *ks, const sch_type *type, sib_buf *out, sib_err *err)
{
    const cql_exec_node_info *n = &c->ex->node;
    const coord *co = c->ex->co;
    const sch_type *lt = type->sub[1];
    coord_repl repl;
    int rc = exec_keyspace_repl(c, ks, &repl, err);
    if (rc) return rc;
    size_t nring = coord_ring_size(co);
    sch_val *el = sib_arena_alloc(c->arena, sizeof(*el) * 2 * (nring ? nring : 1));
    if (!el) return oom(err);
    sib_buf eps;
    sib_buf_init(&eps);
    for (size_t i = 0; !rc && i < nring; i++) {
        int64_t token = coord_ring_token(co, i);
        size_t reps[64];
        size_t nrep = coord_replicas(co, &repl, token, reps, SIB_ARRAY_LEN(reps));
        sch_val ev[64];
        for (size_t k = 0; k < nrep; k++) {
            const char *addr = coord_member_addr(co, reps[k]);
            const char *ep = arena_printf(c, strchr(addr, ':') ? "[%s]:%d" : "%s:%d", addr,
                                          n->storage_port ? n->storage_port : 7000);
            if (!ep) { rc = oom(err); break; }
            ev[k] = (sch_val){(const uint8_t *)ep, (int32_t)strlen(ep)};
        }
        sib_buf_reset(&eps);
        if (!rc) rc = sch_coll_build(lt, ev, nrep, &eps, err);
        if (!rc && eps.oom) rc = oom(err);
        const char *tok = rc ? NULL : arena_printf(c, "%" PRId64, token);
        void *list = rc ? NULL : sib_arena_memdup(c->arena, eps.p, eps.len ? eps.len : 1);
        if (!rc && (!tok || !list)) rc = oom(err);
        if (rc) break;
        el[2 * i] = (sch_val){(const uint8_t *)tok, (int32_t)strlen(tok)};
        el[2 * i + 1] = (sch_val){list, (int32_t)eps.len};
    }
    if (!rc) rc = sch_coll_build(type, el, nring, out, err);
    sib_buf_free(&eps);
    return rc;
}

static bool is_system_keyspace_name(const char *ks)
{
    static const char *const sys[] = {"system", "system_schema", "system_auth", "system_distributed",
                                      "system_traces", "system_views", "system_virtual_schema"};
    for (size_t i = 0; i < SIB_ARRAY_LEN(sys); i++)
        if (strcmp(ks, sys[i]) == 0) return true;
    return false;
}

static void describe_cluster(exec_ctx *c)
{
    sib_err err;
    sib_err_clear(&err);
    const cql_exec_node_info *n = &c->ex->node;
    const sch_type *text = sch_type_native(SCH_T_VARCHAR);
    const char *ks = c->keyspace;
    bool ranges = ks && *ks && !is_system_keyspace_name(ks) && sch_catalog_keyspace(c->ex->cat, ks);
    sch_types *ts = sch_catalog_types(c->ex->cat);
    const sch_type *rt = sch_type_map(ts, text, sch_type_list(ts, text, true), false);
    const char *names[4] = {"cluster", "partitioner", "snitch", "range_ownership"};
    const sch_type *types[4] = {text, text, text, rt};
    /* dc/rack come from Sibyl's config, which is what GossipingPropertyFileSnitch
     * reads; the defaults are what SimpleSnitch reports */
    bool simple = strcmp(n->dc, "datacenter1") == 0 && strcmp(n->rack, "rack1") == 0;
    const char *snitch = simple ? "SimpleSnitch" : "GossipingPropertyFileSnitch";
    sib_buf map;
    sib_buf_init(&map);
    int rc = (ranges && !rt) ? oom(&err) : ranges ? range_ownership(c, ks, rt, &map, &err) : 0;
    if (!rc && map.oom) rc = oom(&err);
    if (rc) {
        sib_buf_free(&map);
        exec_reply_err(c, &err);
        return;
    }
    cql_rows_meta m;
    memset(&m, 0, sizeof(m));
    m.ks = "system";
    m.table = "describe";
    m.ncols = ranges ? 4 : 3;
    m.names = names;
    m.types = types;
    cql_rows *rw = cql_reply_rows_begin(c->req, &m);
    if (rw) {
        cql_rows_cell(rw, n->cluster_name, (int32_t)strlen(n->cluster_name));
        cql_rows_cell(rw, "Murmur3Partitioner", 18);
        cql_rows_cell(rw, snitch, (int32_t)strlen(snitch));
        if (ranges) cql_rows_cell(rw, map.p, (int32_t)map.len);
        cql_reply_rows_end(c->req);
    }
    sib_buf_free(&map);
}

/* ---- paging and reply --------------------------------------------------------------- */

static int page_start(exec_ctx *c, const uint8_t sv[16], uint64_t *offset, sib_err *err)
{
    *offset = 0;
    if (!c->params || c->params->paging_state.len < 0) return 0;
    const cql_value *v = &c->params->paging_state;
    sib_rd r;
    uint8_t ver, kind;
    const uint8_t *u;
    if (v->len < 4 || get_be32(v->p + v->len - 4) != sib_crc32c(0, v->p, (size_t)v->len - 4))
        return sib_err_set(err, SIB_EINVAL, "Invalid value for the paging state");
    sib_rd_init(&r, v->p, (size_t)v->len - 4);
    if (!sib_rd_u8(&r, &ver) || !sib_rd_u8(&r, &kind) || ver != DS_VERSION || kind != DS_KIND ||
        !sib_rd_bytes(&r, 16, &u) || !sib_rd_uvarint(&r, offset) || sib_rd_left(&r))
        return sib_err_set(err, SIB_EINVAL, "Invalid value for the paging state");
    if (memcmp(u, sv, 16) != 0)
        return sib_err_set(err, SIB_EINVAL, "The schema has changed since the previous page of the DESCRIBE "
                                            "statement result. Please retry the DESCRIBE statement.");
    return 0;
}

static void reply_describe(exec_ctx *c, const desc_rows *r)
{
    static const char *const names[4] = {"keyspace_name", "type", "name", "create_statement"};
    const sch_type *text = sch_type_native(SCH_T_VARCHAR);
    const sch_type *types[4] = {text, text, text, text};
    sib_err err;
    sib_err_clear(&err);
    uint8_t sv[16];
    sch_catalog_schema_version(c->ex->cat, sv);
    uint64_t off;
    if (page_start(c, sv, &off, &err)) {
        exec_reply_err(c, &err);
        return;
    }
    if (off > r->n) off = r->n;
    size_t end = r->n;
    int32_t page = c->params ? c->params->page_size : -1;
    sib_buf ps;
    sib_buf_init(&ps);
    if (page > 0 && r->n - off > (uint64_t)page) { /* more rows after this page */
        end = (size_t)off + (size_t)page;
        sib_buf_u8(&ps, DS_VERSION);
        sib_buf_u8(&ps, DS_KIND);
        sib_buf_append(&ps, sv, 16);
        sib_buf_uvarint(&ps, end);
        sib_buf_be32(&ps, sib_crc32c(0, ps.p, ps.len));
    }
    cql_rows_meta m;
    memset(&m, 0, sizeof(m));
    m.ks = "system";
    m.table = "describe";
    m.ncols = (uint32_t)r->ncols;
    m.names = names;
    m.types = types;
    if (ps.len && !ps.oom) {
        m.paging_state = ps.p;
        m.paging_state_len = (int32_t)ps.len;
    }
    cql_rows *rw = cql_reply_rows_begin(c->req, &m);
    if (rw) {
        for (size_t i = (size_t)off; i < end; i++)
            for (size_t j = 0; j < r->ncols; j++) {
                const char *s = r->cells[i * r->ncols + j];
                cql_rows_cell(rw, s, (int32_t)strlen(s));
            }
        cql_reply_rows_end(c->req);
    }
    sib_buf_free(&ps);
}

void exec_describe(exec_ctx *c, const prs_describe *d)
{
    if (d->kind == PRS_DESC_CLUSTER) {
        describe_cluster(c);
        return;
    }
    sib_err err;
    sib_err_clear(&err);
    bool listing = d->kind == PRS_DESC_KEYSPACES || d->kind == PRS_DESC_TABLES || d->kind == PRS_DESC_TYPES ||
                   d->kind == PRS_DESC_FUNCTIONS || d->kind == PRS_DESC_AGGREGATES;
    desc_rows r = {.c = c, .ncols = listing ? 3 : 4};
    const sch_keyspace *ks;
    int rc = 0;
    switch (d->kind) {
    case PRS_DESC_KEYSPACES: rc = list_keyspaces(&r, &err); break;
    case PRS_DESC_TABLES: rc = list_elements(&r, true, &err); break;
    case PRS_DESC_TYPES:
    case PRS_DESC_FUNCTIONS:
    case PRS_DESC_AGGREGATES: rc = list_elements(&r, false, &err); break; /* no UDTs/UDFs/UDAs */
    case PRS_DESC_KEYSPACE:
        rc = find_keyspace(c, d->name.name, &ks, &err);
        if (!rc) rc = add_keyspace(&r, ks, d->only, d->with_internals, &err);
        break;
    case PRS_DESC_TABLE: rc = describe_table(&r, d->name.ks, d->name.name, d->with_internals, &err); break;
    case PRS_DESC_SCHEMA: rc = describe_schema(&r, d->full, d->with_internals, &err); break;
    case PRS_DESC_NAME: rc = describe_name(&r, &d->name, d->with_internals, &err); break;
    case PRS_DESC_CLUSTER: break;
    }
    if (rc) exec_reply_err(c, &err);
    else reply_describe(c, &r);
}
