/* systables.c: the system keyspaces as catalog entries, and the rows of the
 * virtual schema tables produced from the catalog.
 *
 *   system                 LocalStrategy: local, peers, peers_v2 (rows come
 *                          from node state: SCH_TABLE_LOCAL_SYSTEM)
 *   system_schema          LocalStrategy: keyspaces, tables, columns, types,
 *                          functions, aggregates, indexes, views, triggers,
 *                          dropped_columns (Cassandra 4.0 SchemaKeyspace)
 *   system_virtual_schema  keyspaces, tables, columns (4.0 virtual tables)
 *   system_traces          LocalStrategy: sessions, events (Cassandra 4.0's
 *                          columns; rows come from the executor's in-memory
 *                          trace ring, so they are node-local: LOCAL_SYSTEM)
 *
 * system_schema rows describe every keyspace but the virtual one (which is
 * described by system_virtual_schema, as in Cassandra). Rows are produced in
 * primary key order with text components compared bytewise.
 */
#include "schema_int.h"

#include <stdlib.h>

typedef struct {
    const char *ks, *name;
    const char *cols; /* "name type; name type; ..." */
    const char *pk;   /* "a, b" */
    const char *ck;
    const char *comment;
} sysdef;

static const sysdef sysdefs[] = {
    { "system", "local",
      "key text; bootstrapped text; broadcast_address inet; broadcast_port int; cluster_name text; "
      "cql_version text; data_center text; gossip_generation int; host_id uuid; listen_address inet; "
      "listen_port int; native_protocol_version text; partitioner text; rack text; release_version text; "
      "rpc_address inet; rpc_port int; schema_version uuid; tokens set<text>; truncated_at map<uuid, blob>",
      "key", "", "information about the local node" },
    { "system", "peers",
      "peer inet; data_center text; host_id uuid; preferred_ip inet; rack text; release_version text; "
      "rpc_address inet; schema_version uuid; tokens set<text>",
      "peer", "", "information about known peers in the cluster" },
    { "system", "peers_v2",
      "peer inet; peer_port int; data_center text; host_id uuid; native_address inet; native_port int; "
      "preferred_ip inet; preferred_port int; rack text; release_version text; schema_version uuid; tokens set<text>",
      "peer", "peer_port", "information about known peers in the cluster" },
    /* Cassandra 4.0 TraceKeyspace; rows come from the executor's trace ring. */
    { "system_traces", "sessions",
      "session_id uuid; client inet; command text; coordinator inet; coordinator_port int; duration int; "
      "parameters map<text, text>; request text; started_at timestamp",
      "session_id", "", "tracing sessions" },
    { "system_traces", "events",
      "session_id uuid; event_id timeuuid; activity text; source inet; source_elapsed int; source_port int; "
      "thread text",
      "session_id", "event_id", "tracing events" },
    { "system_schema", "keyspaces",
      "keyspace_name text; durable_writes boolean; replication frozen<map<text, text>>", "keyspace_name", "",
      "keyspace definitions" },
    { "system_schema", "tables",
      "keyspace_name text; table_name text; bloom_filter_fp_chance double; caching frozen<map<text, text>>; "
      "comment text; compaction frozen<map<text, text>>; compression frozen<map<text, text>>; "
      "crc_check_chance double; dclocal_read_repair_chance double; default_time_to_live int; "
      "extensions frozen<map<text, blob>>; flags frozen<set<text>>; gc_grace_seconds int; id uuid; "
      "max_index_interval int; memtable_flush_period_in_ms int; min_index_interval int; read_repair_chance double; "
      "speculative_retry text; additional_write_policy text; cdc boolean; read_repair text",
      "keyspace_name", "table_name", "table definitions" },
    { "system_schema", "columns",
      "keyspace_name text; table_name text; column_name text; clustering_order text; column_name_bytes blob; "
      "kind text; position int; type text",
      "keyspace_name", "table_name, column_name", "column definitions" },
    { "system_schema", "dropped_columns",
      "keyspace_name text; table_name text; column_name text; dropped_time timestamp; kind text; type text",
      "keyspace_name", "table_name, column_name", "dropped column registry" },
    { "system_schema", "triggers",
      "keyspace_name text; table_name text; trigger_name text; options frozen<map<text, text>>", "keyspace_name",
      "table_name, trigger_name", "trigger definitions" },
    { "system_schema", "views",
      "keyspace_name text; view_name text; base_table_id uuid; base_table_name text; where_clause text; "
      "bloom_filter_fp_chance double; caching frozen<map<text, text>>; comment text; "
      "compaction frozen<map<text, text>>; compression frozen<map<text, text>>; crc_check_chance double; "
      "dclocal_read_repair_chance double; default_time_to_live int; extensions frozen<map<text, blob>>; "
      "gc_grace_seconds int; id uuid; include_all_columns boolean; max_index_interval int; "
      "memtable_flush_period_in_ms int; min_index_interval int; read_repair_chance double; speculative_retry text; "
      "additional_write_policy text; cdc boolean; read_repair text",
      "keyspace_name", "view_name", "view definitions" },
    { "system_schema", "types",
      "keyspace_name text; type_name text; field_names frozen<list<text>>; field_types frozen<list<text>>",
      "keyspace_name", "type_name", "user defined type definitions" },
    { "system_schema", "functions",
      "keyspace_name text; function_name text; argument_types frozen<list<text>>; argument_names frozen<list<text>>; "
      "body text; language text; return_type text; called_on_null_input boolean",
      "keyspace_name", "function_name, argument_types", "user defined function definitions" },
    { "system_schema", "aggregates",
      "keyspace_name text; aggregate_name text; argument_types frozen<list<text>>; final_func text; initcond text; "
      "return_type text; state_func text; state_type text",
      "keyspace_name", "aggregate_name, argument_types", "user defined aggregate definitions" },
    { "system_schema", "indexes",
      "keyspace_name text; table_name text; index_name text; kind text; options frozen<map<text, text>>",
      "keyspace_name", "table_name, index_name", "secondary index definitions" },
    { "system_virtual_schema", "keyspaces", "keyspace_name text", "keyspace_name", "", "virtual keyspace definitions" },
    { "system_virtual_schema", "tables", "keyspace_name text; table_name text; comment text", "keyspace_name",
      "table_name", "virtual table definitions" },
    { "system_virtual_schema", "columns",
      "keyspace_name text; table_name text; column_name text; clustering_order text; column_name_bytes blob; "
      "kind text; position int; type text",
      "keyspace_name", "table_name, column_name", "virtual column definitions" },
};

/* Splits "a; b; c" (or with ',') into trimmed copies; returns count or -1. */
static int split(const char *s, char sep, char ***out)
{
    int n = 0;
    char **v = NULL;
    while (*s) {
        while (*s == ' ' || *s == sep) s++;
        if (!*s) break;
        const char *e = s;
        int depth = 0;
        while (*e && (depth || *e != sep)) {
            depth += *e == '<';
            depth -= *e == '>';
            e++;
        }
        const char *te = e;
        while (te > s && te[-1] == ' ') te--;
        char **nv = realloc(v, (size_t)(n + 1) * sizeof *nv);
        if (!nv) goto fail;
        v = nv;
        v[n] = malloc((size_t)(te - s) + 1);
        if (!v[n]) goto fail;
        memcpy(v[n], s, (size_t)(te - s));
        v[n][te - s] = 0;
        n++;
        s = e;
    }
    *out = v;
    return n;
fail:
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
    return -1;
}

static void free_strs(char **v, int n)
{
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static int add_system_table(sch_catalog *c, sch_keyspace *ks, const sysdef *d)
{
    char **cols = NULL, **pk = NULL, **ck = NULL;
    int nc = split(d->cols, ';', &cols), np = split(d->pk, ',', &pk), nk = split(d->ck, ',', &ck);
    int rc = SIB_ENOMEM;
    sch_coldef *defs = NULL;
    if (nc < 0 || np < 0 || nk < 0) goto out;
    defs = calloc((size_t)nc, sizeof *defs);
    if (!defs) goto out;
    sib_err err;
    for (int i = 0; i < nc; i++) {
        char *sp = strchr(cols[i], ' ');
        SIB_ASSERT(sp);
        *sp = 0;
        defs[i].name = cols[i];
        rc = sch_type_parse(c->types, sp + 1, strlen(sp + 1), &defs[i].type, &err);
        SIB_ASSERT(rc == 0 || rc == SIB_ENOMEM);
        if (rc) goto out;
    }
    bool schema_ks = !strcmp(d->ks, "system_schema");
    const char *pkeys[] = { "comment", "gc_grace_seconds", "memtable_flush_period_in_ms" };
    sch_prop props[3] = {
        { .name = pkeys[0], .kind = SCH_LIT_STRING, .value = d->comment },
        { .name = pkeys[1], .kind = SCH_LIT_INTEGER, .value = schema_ks ? "604800" : "0" },
        { .name = pkeys[2], .kind = SCH_LIT_INTEGER, .value = "3600000" }, /* one hour, as Cassandra */
    };
    uint8_t id[16];
    char seed[160];
    int sn = snprintf(seed, sizeof seed, "%s%s", d->ks, d->name);
    put_be64(id, (uint64_t)sib_murmur3_h1(seed, (size_t)sn));
    put_be64(id + 8, (uint64_t)sib_murmur3_h1(seed, (size_t)sn - 1) ^ 0x5bd1e995u);
    id[6] = (uint8_t)((id[6] & 0x0F) | 0x30);
    id[8] = (uint8_t)((id[8] & 0x3F) | 0x80);
    sch_table_spec s = {
        .keyspace = d->ks, .name = d->name, .cols = defs, .ncols = (size_t)nc, .npk_decls = 1,
        .pk = (const char *const *)pk, .npk = (size_t)np, .ck = (const char *const *)ck, .nck = (size_t)nk,
        .props = props, .nprops = 3, .id = id,
    };
    sch_table *t;
    rc = table_from_spec(c, &s, &t, &err);
    SIB_ASSERT(rc == 0 || rc == SIB_ENOMEM);
    if (rc) goto out;
    bool local = !strcmp(d->ks, "system") || !strcmp(d->ks, "system_traces");
    t->kind = local ? SCH_TABLE_LOCAL_SYSTEM : SCH_TABLE_VIRTUAL_SCHEMA;
    rc = keyspace_insert_table(ks, t);
    if (rc) table_free(t);
out:
    free(defs);
    if (nc > 0) free_strs(cols, nc);
    if (np > 0) free_strs(pk, np);
    if (nk > 0) free_strs(ck, nk);
    return rc;
}

int catalog_add_system_keyspaces(sch_catalog *c)
{
    static const char *const names[] = { "system", "system_schema", "system_traces", "system_virtual_schema" };
    for (size_t i = 0; i < SIB_ARRAY_LEN(names); i++) {
        sch_keyspace *ks = calloc(1, sizeof *ks);
        if (!ks) return SIB_ENOMEM;
        ks->name = xstrdup(names[i]);
        ks->system = true;
        ks->virt = !strcmp(names[i], "system_virtual_schema");
        ks->durable_writes = true;
        if (!ks->name || strmap_set(&ks->repl, "class", "org.apache.cassandra.locator.LocalStrategy") ||
            catalog_insert_keyspace(c, ks)) {
            keyspace_free(ks);
            return SIB_ENOMEM;
        }
        for (size_t j = 0; j < SIB_ARRAY_LEN(sysdefs); j++) {
            if (strcmp(sysdefs[j].ks, names[i])) continue;
            int rc = add_system_table(c, ks, &sysdefs[j]);
            if (rc) return rc;
        }
    }
    return 0;
}

/* ---- row building ---- */

typedef struct {
    const sch_table *t;
    sib_buf buf;
    size_t *off;
    int32_t *len;
    sch_val *vals;
} rowb;

static int rowb_init(rowb *r, const sch_table *t)
{
    memset(r, 0, sizeof *r);
    r->t = t;
    sib_buf_init(&r->buf);
    r->off = calloc(t->ncols, sizeof *r->off);
    r->len = calloc(t->ncols, sizeof *r->len);
    r->vals = calloc(t->ncols, sizeof *r->vals);
    return r->off && r->len && r->vals ? 0 : SIB_ENOMEM;
}

static void rowb_free(rowb *r)
{
    sib_buf_free(&r->buf);
    free(r->off);
    free(r->len);
    free(r->vals);
}

static void rowb_reset(rowb *r)
{
    sib_buf_reset(&r->buf);
    for (size_t i = 0; i < r->t->ncols; i++) r->len[i] = -1;
}

/* Starts column `name`; returns its index or -1 if the table lacks it. */
static ssize_t rowb_begin(rowb *r, const char *name)
{
    const sch_column *c = sch_table_column_by_name(r->t, name);
    if (!c) return -1;
    r->off[c->index] = r->buf.len;
    return c->index;
}

static void rowb_end(rowb *r, ssize_t i)
{
    if (i >= 0) r->len[i] = (int32_t)(r->buf.len - r->off[i]);
}

static void rowb_bytes(rowb *r, const char *name, const void *p, size_t n)
{
    ssize_t i = rowb_begin(r, name);
    if (i < 0) return;
    sib_buf_append(&r->buf, p, n);
    rowb_end(r, i);
}

static void rowb_text(rowb *r, const char *name, const char *s) { rowb_bytes(r, name, s, strlen(s)); }

static void rowb_bool(rowb *r, const char *name, bool v)
{
    uint8_t b = v;
    rowb_bytes(r, name, &b, 1);
}

static void rowb_int(rowb *r, const char *name, int32_t v)
{
    uint8_t b[4];
    put_be32(b, (uint32_t)v);
    rowb_bytes(r, name, b, 4);
}

static void rowb_double(rowb *r, const char *name, double v)
{
    uint8_t b[8];
    uint64_t u;
    memcpy(&u, &v, 8);
    put_be64(b, u);
    rowb_bytes(r, name, b, 8);
}

static void rowb_map(rowb *r, const char *name, const sch_strmap *m)
{
    ssize_t i = rowb_begin(r, name);
    if (i < 0) return;
    strmap_serialize(m, NULL, &r->buf);
    rowb_end(r, i);
}

static void rowb_type(rowb *r, const char *name, const sch_type *t)
{
    ssize_t i = rowb_begin(r, name);
    if (i < 0) return;
    sch_type_cql_name(t, &r->buf);
    rowb_end(r, i);
}

/* Emits the row; returns the callback's value or SIB_ENOMEM. */
static int rowb_emit(rowb *r, sch_row_fn emit, void *ctx)
{
    if (r->buf.oom) return SIB_ENOMEM;
    for (size_t i = 0; i < r->t->ncols; i++) {
        r->vals[i].len = r->len[i];
        r->vals[i].p = r->len[i] >= 0 ? r->buf.p + r->off[i] : NULL;
    }
    return emit(ctx, r->vals, r->t->ncols);
}

/* ---- producers ---- */

static const char *kind_name(sch_col_kind k)
{
    switch (k) {
    case SCH_COL_PARTITION_KEY: return "partition_key";
    case SCH_COL_CLUSTERING: return "clustering";
    case SCH_COL_STATIC: return "static";
    default: return "regular";
    }
}

static int rows_keyspaces(const sch_catalog *c, rowb *r, bool virt, sch_row_fn emit, void *ctx)
{
    for (size_t i = 0; i < c->nks; i++) {
        const sch_keyspace *ks = c->ks[i];
        if (ks->virt != virt) continue;
        rowb_reset(r);
        rowb_text(r, "keyspace_name", ks->name);
        if (!virt) {
            rowb_bool(r, "durable_writes", ks->durable_writes);
            rowb_map(r, "replication", &ks->repl);
        }
        int rc = rowb_emit(r, emit, ctx);
        if (rc) return rc;
    }
    return 0;
}

/* extensions (map<text, blob>) of a table with BUCKET / SALT: the
 * definitions as DESCRIBE prints them, under sibyl.bucket / sibyl.salt. */
static void table_extensions_row(rowb *r, const sch_table *t)
{
    sch_strmap m = {NULL, 0};
    sib_buf b;
    sib_buf_init(&b);
    sch_bucket_cql(t, &b);
    sib_buf_u8(&b, 0);
    if (t->has_bucket && !b.oom) strmap_set(&m, "sibyl.bucket", (const char *)b.p);
    sib_buf_reset(&b);
    sch_salt_cql(t, &b);
    sib_buf_u8(&b, 0);
    if (t->has_salt && !b.oom) strmap_set(&m, "sibyl.salt", (const char *)b.p);
    sib_buf_free(&b);
    rowb_map(r, "extensions", &m);
    strmap_free(&m);
}

static int rows_tables(const sch_catalog *c, rowb *r, bool virt, sch_row_fn emit, void *ctx)
{
    static const sch_strmap empty = { NULL, 0 };
    for (size_t i = 0; i < c->nks; i++) {
        const sch_keyspace *ks = c->ks[i];
        if (ks->virt != virt) continue;
        for (size_t j = 0; j < ks->ntables; j++) {
            const sch_table *t = ks->tables[j];
            const sch_table_opts *o = &t->opts;
            rowb_reset(r);
            rowb_text(r, "keyspace_name", ks->name);
            rowb_text(r, "table_name", t->name);
            rowb_text(r, "comment", o->comment);
            if (!virt) {
                rowb_double(r, "bloom_filter_fp_chance", o->bloom_filter_fp_chance);
                rowb_map(r, "caching", &o->caching);
                rowb_map(r, "compaction", &o->compaction);
                rowb_map(r, "compression", &o->compression);
                rowb_double(r, "crc_check_chance", o->crc_check_chance);
                rowb_double(r, "dclocal_read_repair_chance", 0.0);
                rowb_int(r, "default_time_to_live", o->default_time_to_live);
                if (t->has_bucket || t->has_salt) table_extensions_row(r, t);
                else rowb_map(r, "extensions", &empty);
                ssize_t fi = rowb_begin(r, "flags");
                if (fi >= 0) {
                    const char *f1 = "compound", *f2 = "counter";
                    sib_buf_be32(&r->buf, t->counter ? 2 : 1);
                    sib_buf_be32(&r->buf, (uint32_t)strlen(f1));
                    sib_buf_append(&r->buf, f1, strlen(f1));
                    if (t->counter) {
                        sib_buf_be32(&r->buf, (uint32_t)strlen(f2));
                        sib_buf_append(&r->buf, f2, strlen(f2));
                    }
                    rowb_end(r, fi);
                }
                rowb_int(r, "gc_grace_seconds", o->gc_grace_seconds);
                rowb_bytes(r, "id", t->id, 16);
                rowb_int(r, "max_index_interval", o->max_index_interval);
                rowb_int(r, "memtable_flush_period_in_ms", o->memtable_flush_period_in_ms);
                rowb_int(r, "min_index_interval", o->min_index_interval);
                rowb_double(r, "read_repair_chance", 0.0);
                rowb_text(r, "speculative_retry", o->speculative_retry);
                rowb_text(r, "additional_write_policy", o->additional_write_policy);
                rowb_bool(r, "cdc", o->cdc);
                rowb_text(r, "read_repair", o->read_repair);
            }
            int rc = rowb_emit(r, emit, ctx);
            if (rc) return rc;
        }
    }
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp((*(const sch_column *const *)a)->name, (*(const sch_column *const *)b)->name);
}

static int rows_columns(const sch_catalog *c, rowb *r, bool virt, sch_row_fn emit, void *ctx)
{
    for (size_t i = 0; i < c->nks; i++) {
        const sch_keyspace *ks = c->ks[i];
        if (ks->virt != virt) continue;
        for (size_t j = 0; j < ks->ntables; j++) {
            const sch_table *t = ks->tables[j];
            const sch_column **sorted = malloc((t->ncols ? t->ncols : 1) * sizeof *sorted);
            if (!sorted) return SIB_ENOMEM;
            for (size_t k = 0; k < t->ncols; k++) sorted[k] = &t->cols[k];
            qsort(sorted, t->ncols, sizeof *sorted, name_cmp);
            int rc = 0;
            for (size_t k = 0; k < t->ncols && !rc; k++) {
                const sch_column *col = sorted[k];
                rowb_reset(r);
                rowb_text(r, "keyspace_name", ks->name);
                rowb_text(r, "table_name", t->name);
                rowb_text(r, "column_name", col->name);
                rowb_text(r, "clustering_order",
                          col->order == SCH_ORDER_ASC ? "asc" : col->order == SCH_ORDER_DESC ? "desc" : "none");
                rowb_text(r, "column_name_bytes", col->name);
                rowb_text(r, "kind", kind_name(col->kind));
                rowb_int(r, "position", col->position);
                rowb_type(r, "type", col->type);
                rc = rowb_emit(r, emit, ctx);
            }
            free(sorted);
            if (rc) return rc;
        }
    }
    return 0;
}

static int dropped_cmp(const void *a, const void *b)
{
    return strcmp((*(const sch_dropped_column *const *)a)->name, (*(const sch_dropped_column *const *)b)->name);
}

static int rows_dropped(const sch_catalog *c, rowb *r, sch_row_fn emit, void *ctx)
{
    for (size_t i = 0; i < c->nks; i++) {
        const sch_keyspace *ks = c->ks[i];
        for (size_t j = 0; j < ks->ntables; j++) {
            const sch_table *t = ks->tables[j];
            if (!t->ndropped) continue;
            const sch_dropped_column **sorted = malloc(t->ndropped * sizeof *sorted);
            if (!sorted) return SIB_ENOMEM;
            for (size_t k = 0; k < t->ndropped; k++) sorted[k] = &t->dropped[k];
            qsort(sorted, t->ndropped, sizeof *sorted, dropped_cmp);
            int rc = 0;
            for (size_t k = 0; k < t->ndropped && !rc; k++) {
                const sch_dropped_column *d = sorted[k];
                uint8_t ts[8];
                int64_t ms = d->dropped_time_us / 1000;
                put_be64(ts, (uint64_t)ms);
                rowb_reset(r);
                rowb_text(r, "keyspace_name", ks->name);
                rowb_text(r, "table_name", t->name);
                rowb_text(r, "column_name", d->name);
                rowb_bytes(r, "dropped_time", ts, 8);
                rowb_text(r, "kind", kind_name(d->kind));
                rowb_type(r, "type", d->type);
                rc = rowb_emit(r, emit, ctx);
            }
            free(sorted);
            if (rc) return rc;
        }
    }
    return 0;
}

int sch_catalog_system_rows(const sch_catalog *c, const sch_table *systable, sch_row_fn emit, void *ctx,
                            sib_err *err)
{
    if (systable->kind != SCH_TABLE_VIRTUAL_SCHEMA)
        return sib_err_set(err, SIB_EINVAL, "%s.%s is not a virtual schema table", systable->ks, systable->name);
    rowb r;
    int rc = rowb_init(&r, systable);
    if (rc) { rowb_free(&r); return sib_err_set(err, SIB_ENOMEM, "out of memory"); }
    bool virt = !strcmp(systable->ks, "system_virtual_schema");
    const char *n = systable->name;
    if (!strcmp(n, "keyspaces")) rc = rows_keyspaces(c, &r, virt, emit, ctx);
    else if (!strcmp(n, "tables")) rc = rows_tables(c, &r, virt, emit, ctx);
    else if (!strcmp(n, "columns")) rc = rows_columns(c, &r, virt, emit, ctx);
    else if (!strcmp(n, "dropped_columns")) rc = rows_dropped(c, &r, emit, ctx);
    /* types, functions, aggregates, indexes, views, triggers: Sibyl has none */
    rowb_free(&r);
    if (rc == SIB_ENOMEM) return sib_err_set(err, SIB_ENOMEM, "out of memory");
    return rc;
}
