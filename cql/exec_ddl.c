/* exec_ddl.c: USE, keyspace and table DDL, TRUNCATE, and schema persistence.
 *
 * The catalog (schema/) validates and applies each change; this file turns
 * the parser's AST into catalog calls, makes the change durable and then
 * answers. Persistence: every keyspace and table is one row of an internal
 * table (id SCHEMA_TABLE_ID, never in the catalog) whose partition key is
 * "k\0<ks>" or "t\0<ks>\0<table>" and whose only cell (column 1) holds
 * sch_catalog_serialize_* bytes, or for a DROP a tombstone value
 * (sch_def_tombstone) that keeps the drop's timestamp: the schema rows of
 * schema.h, also kept in memory (ex->defs) with their write timestamps.
 * Being an ordinary table of the engine, it goes through the commitlog like
 * user data, so the schema survives kill -9 exactly as writes do. The
 * Schema_change reply and the event are sent only once that write is
 * durable, and after the catalog shows the change (drivers re-read
 * system_schema immediately).
 *
 * Between nodes (cql_exec_schema_snapshot / cql_exec_schema_merge; docs/
 * membership.md "Schema"): a peer's rows are merged by last write wins
 * (sch_defs_merge), and each winner is stored with ITS timestamp, applied
 * to the catalog and storage as the DDL would (tables created, replaced or
 * dropped), and announced to this node's clients once durable.
 */
#include "exec_int.h"

#include <stdlib.h>
#include <strings.h>

static const uint8_t SCHEMA_TABLE_ID[16] = {0x5b, 0x1b, 0x5c, 0x4e, 0x00, 0x00, 0x40, 0x00,
                                            0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
enum { DEF_COLUMN = 1 };

/* ---- persistence ---- */

static void def_key(sib_buf *b, char kind, const char *ks, const char *table)
{
    sib_buf_u8(b, (uint8_t)kind);
    sib_buf_u8(b, 0);
    sib_buf_append(b, ks, strlen(ks));
    if (table) {
        sib_buf_u8(b, 0);
        sib_buf_append(b, table, strlen(table));
    }
}

/* The mutation that stores one schema row: the value (a definition or a
 * tombstone) at ts, over a partition deletion at ts - 1 that clears the
 * older values. NULL on OOM. */
static st_mutation *def_mutation(const sch_def *d)
{
    sib_buf key;
    sib_buf_init(&key);
    def_key(&key, (char)d->kind, d->ks, d->kind == SCH_DEF_TABLE ? d->name : NULL);
    st_mutation *m = key.oom ? NULL : st_mutation_create(SCHEMA_TABLE_ID, key.p, key.len);
    sib_buf_free(&key);
    if (!m) return NULL;
    int rc = st_mut_partition_delete(m, d->ts - 1, (int32_t)(d->ts / 1000000));
    if (!rc) rc = st_mut_row(m, (const uint8_t *)"", 0);
    if (!rc) rc = st_mut_cell(m, DEF_COLUMN, d->val, d->len, d->ts, 0, ST_NO_DELETION_TIME);
    if (rc) { st_mutation_destroy(m); return NULL; }
    return m;
}

/* A local DDL's timestamp: the executor's clock, but always above the
 * row's current one, so a DDL here wins over a peer's row from a clock
 * ahead of ours (the storage engine would otherwise keep that row). */
static int64_t def_timestamp(cql_exec *ex, sch_def_kind kind, const char *ks, const char *name)
{
    int64_t ts = exec_next_timestamp(ex);
    const sch_def *old = ex->defs ? sch_defs_get(ex->defs, kind, ks, name) : NULL;
    if (old && old->ts >= ts) ts = old->ts + 1;
    return ts;
}

static int persist(cql_exec *ex, sch_def *d, st_done_fn done, void *ctx, sib_err *err)
{
    st_mutation *m = def_mutation(d);
    if (!m) return sib_err_set(err, SIB_ENOMEM, "schema mutation");
    if (sch_defs_put(ex->defs, d)) {
        st_mutation_destroy(m);
        return sib_err_set(err, SIB_ENOMEM, "schema rows");
    }
    int rc = storage_apply(ex->st, &m, 1, done, ctx, err);
    st_mutation_destroy(m);
    return rc;
}

int exec_schema_persist_keyspace(cql_exec *ex, const char *ks, bool dropped, st_done_fn done, void *ctx, sib_err *err)
{
    sib_buf def;
    sib_buf_init(&def);
    int rc = 0;
    if (!dropped) {
        const sch_keyspace *k = sch_catalog_keyspace(ex->cat, ks);
        rc = k ? sch_catalog_serialize_keyspace(k, &def) : sib_err_set(err, SIB_ENOTFOUND, "keyspace %s", ks);
    } else if (sch_def_tombstone(SCH_DEF_KEYSPACE, NULL, &def)) {
        rc = sib_err_set(err, SIB_ENOMEM, "schema tombstone");
    }
    sch_def d = {.kind = SCH_DEF_KEYSPACE, .ks = ks, .name = "", .ts = def_timestamp(ex, SCH_DEF_KEYSPACE, ks, ""),
                 .val = def.p, .len = def.len};
    if (!rc) rc = persist(ex, &d, done, ctx, err);
    sib_buf_free(&def);
    return rc;
}

/* One table row: its definition (t), or a tombstone naming the dropped
 * table's id (t NULL, id given). */
static int persist_table_row(cql_exec *ex, const sch_table *t, const uint8_t *id, const char *ks, const char *name,
                             st_done_fn done, void *ctx, sib_err *err)
{
    sib_buf def;
    sib_buf_init(&def);
    int rc = t ? sch_catalog_serialize_table(t, &def) : sch_def_tombstone(SCH_DEF_TABLE, id, &def);
    if (rc) rc = sib_err_set(err, rc, "schema definition");
    sch_def d = {.kind = SCH_DEF_TABLE, .ks = ks, .name = name, .ts = def_timestamp(ex, SCH_DEF_TABLE, ks, name),
                 .val = def.p, .len = def.len};
    if (!rc) rc = persist(ex, &d, done, ctx, err);
    sib_buf_free(&def);
    return rc;
}

/* For a drop, t is the table being dropped (its id goes into the tombstone). */
int exec_schema_persist_table(cql_exec *ex, const sch_table *t, bool dropped, const char *ks, const char *name,
                              st_done_fn done, void *ctx, sib_err *err)
{
    if (dropped) return persist_table_row(ex, NULL, t ? sch_table_id(t) : NULL, ks, name, done, ctx, err);
    return persist_table_row(ex, t, NULL, ks, name, done, ctx, err);
}

void exec_table_options_to_storage(cql_exec *ex, const sch_table *t)
{
    st_table *st = storage_table(ex->st, sch_table_id(t));
    if (!st) return;
    sib_err nerr = {0};
    /* the table's folder gets its name (an old-layout one moves there) */
    if (st_table_set_name(st, sch_table_keyspace(t), sch_table_name(t), &nerr))
        sib_log(ex->log, SIB_WARN, "schema: %s.%s: %s", sch_table_keyspace(t), sch_table_name(t), nerr.msg);
    const sch_table_opts *o = sch_table_options(t);
    const char *keys[64], *vals[64];
    size_t n = 0;
    for (size_t i = 0; i < o->compaction.n && n < SIB_ARRAY_LEN(keys); i++, n++) {
        keys[n] = o->compaction.kv[i].key;
        vals[n] = o->compaction.kv[i].value;
    }
    sib_err err = {0};
    if (st_table_set_options(st, keys, vals, n, o->gc_grace_seconds, &err))
        sib_log(ex->log, SIB_WARN, "schema: %s.%s: compaction options not applied: %s", sch_table_keyspace(t),
                sch_table_name(t), err.msg);
}

/* One stored schema row: a definition goes into the catalog, and either
 * kind into the schema rows with the cell's timestamp. The key names the
 * entry ("k\0<ks>" or "t\0<ks>\0<table>"). */
static int load_row(cql_exec *ex, const uint8_t *pk, size_t pklen, const st_cell_view *cv, sib_err *err)
{
    char key[160];
    if (pklen < 3 || pklen >= sizeof key || pk[1] != 0) return sib_err_set(err, SIB_ECORRUPT, "bad schema row key");
    memcpy(key, pk, pklen);
    key[pklen] = 0;
    const char *ks = key + 2, *name = "";
    if (key[0] == 't') {
        char *sep = memchr(key + 2, 0, pklen - 2);
        if (!sep || sep == key + pklen) return sib_err_set(err, SIB_ECORRUPT, "bad schema row key");
        name = sep + 1;
    }
    sch_def d = {.kind = key[0] == 'k' ? SCH_DEF_KEYSPACE : SCH_DEF_TABLE, .ks = ks, .name = name, .ts = cv->ts,
                 .val = cv->val, .len = cv->vlen};
    int rc = 0;
    if (!sch_def_is_tombstone(&d))
        rc = d.kind == SCH_DEF_KEYSPACE ? sch_catalog_load_keyspace(ex->cat, cv->val, cv->vlen, err)
                                        : sch_catalog_load_table(ex->cat, cv->val, cv->vlen, err);
    if (!rc && sch_defs_put(ex->defs, &d)) rc = sib_err_set(err, SIB_ENOMEM, "schema rows");
    return rc;
}

/* Loads keyspaces first (tables need theirs), then tables. */
int exec_schema_load(cql_exec *ex, sib_err *err)
{
    st_table *t = storage_table(ex->st, SCHEMA_TABLE_ID);
    if (!t) return sib_err_set(err, SIB_ENOMEM, "schema table");
    if (!ex->defs && !(ex->defs = sch_defs_create())) return sib_err_set(err, SIB_ENOMEM, "schema rows");
    /* the definitions' own folder: system_schema/definitions-<id> */
    int nrc = st_table_set_name(t, "system_schema", "definitions", err);
    if (nrc) return nrc;
    int32_t now = (int32_t)(sib_now_us() / 1000000);
    int loaded = 0;
    for (int pass = 0; pass < 2; pass++) {
        st_scan *sc = st_scan_open(t, NULL, now);
        if (!sc) return sib_err_set(err, SIB_ENOMEM, "schema scan");
        const uint8_t *pk;
        size_t pklen;
        int64_t tok;
        int rc = 0;
        while (!rc && st_scan_next_partition(sc, &pk, &pklen, &tok)) {
            if (!pklen || (pk[0] == 'k') != (pass == 0)) continue;
            st_iter *it = st_read(t, pk, pklen, NULL, 0, false, now);
            if (!it) { rc = sib_err_set(err, SIB_ENOMEM, "schema read"); break; }
            st_row row;
            while (!rc && st_iter_next(it, &row))
                for (size_t i = 0; !rc && i < row.ncells; i++) {
                    if (row.cells[i].col != DEF_COLUMN) continue;
                    rc = load_row(ex, pk, pklen, &row.cells[i], err);
                    loaded++;
                }
            st_iter_destroy(it);
        }
        if (!rc) rc = st_scan_status(sc, err);
        st_scan_destroy(sc);
        if (rc) return rc;
    }
    for (size_t i = 0; i < sch_catalog_keyspace_count(ex->cat); i++) {
        const sch_keyspace *k = sch_catalog_keyspace_at(ex->cat, i);
        for (size_t j = 0; !sch_keyspace_is_system(k) && j < sch_keyspace_table_count(k); j++)
            exec_table_options_to_storage(ex, sch_keyspace_table_at(k, j));
    }
    sib_log(ex->log, SIB_INFO, "schema: loaded %d definitions", loaded);
    return 0;
}

/* ---- AST -> catalog arguments ---- */

static sch_lit_kind prop_kind(prs_const_kind k)
{
    switch (k) {
    case PRS_CONST_INTEGER: return SCH_LIT_INTEGER;
    case PRS_CONST_FLOAT: return SCH_LIT_FLOAT;
    case PRS_CONST_BOOLEAN: return SCH_LIT_BOOLEAN;
    case PRS_CONST_UUID: return SCH_LIT_UUID;
    case PRS_CONST_HEX: return SCH_LIT_HEX;
    case PRS_CONST_DURATION: return SCH_LIT_DURATION;
    default: return SCH_LIT_STRING;
    }
}

static sch_prop *convert_props(exec_ctx *c, const prs_prop *p, size_t n)
{
    sch_prop *out = sib_arena_alloc(c->arena, sizeof *out * (n + 1));
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = (sch_prop){.name = p[i].name, .is_map = p[i].kind == PRS_PROP_MAP};
        if (!out[i].is_map) {
            out[i].kind = prop_kind(p[i].value.kind);
            out[i].value = p[i].value.text;
            continue;
        }
        const char **k = sib_arena_alloc(c->arena, sizeof *k * (p[i].nentries + 1));
        const char **v = sib_arena_alloc(c->arena, sizeof *v * (p[i].nentries + 1));
        if (!k || !v) return NULL;
        for (size_t j = 0; j < p[i].nentries; j++) { k[j] = p[i].keys[j].text; v[j] = p[i].values[j].text; }
        out[i].keys = k;
        out[i].values = v;
        out[i].n = p[i].nentries;
    }
    return out;
}

static int resolve_type(exec_ctx *c, const prs_typeref *tr, const sch_type **out, sib_err *err)
{
    const sch_type *subs[8];
    if (tr->nsub > SIB_ARRAY_LEN(subs)) return sib_err_set(err, SIB_EINVAL, "too many type parameters");
    if (tr->kind == PRS_TYPE_UDT) return sib_err_set(err, SIB_EINVAL, "Unknown type %s", tr->name);
    if (tr->kind == PRS_TYPE_TUPLE) return sib_err_set(err, SIB_EINVAL, "tuple types are not supported");
    for (size_t i = 0; i < tr->nsub; i++) {
        int rc = resolve_type(c, tr->sub[i], &subs[i], err);
        if (rc) return rc;
    }
    return sch_type_resolve(sch_catalog_types(c->ex->cat), tr->name, strlen(tr->name), subs, tr->nsub, out, err);
}

static int convert_cols(exec_ctx *c, const prs_coldef *cols, size_t n, sch_coldef **out, sib_err *err)
{
    sch_coldef *d = sib_arena_alloc(c->arena, sizeof *d * (n + 1));
    if (!d) return sib_err_set(err, SIB_ENOMEM, "columns");
    for (size_t i = 0; i < n; i++) {
        d[i].name = cols[i].name;
        d[i].is_static = cols[i].is_static;
        int rc = resolve_type(c, cols[i].type, &d[i].type, err);
        if (rc) return rc;
    }
    *out = d;
    return 0;
}

/* ---- replies after durability ---- */

typedef struct ddl_done {
    exec_ctx *c;
    cql_change change;
    cql_target target;
    const char *ks, *name;
} ddl_done;

static void on_ddl_durable(void *ctx, int rc, const sib_err *err)
{
    ddl_done *d = ctx;
    if (rc) { exec_reply_err(d->c, err); return; }
    cql_exec *ex = d->c->ex;
    if (ex->srv) cql_server_broadcast_schema_change(ex->srv, d->change, d->target, d->ks, d->name);
    if (ex->schema_changed) ex->schema_changed(ex->schema_ctx);
    cql_reply_schema_change(d->c->req, d->change, d->target, d->ks, d->name);
}

static ddl_done *new_done(exec_ctx *c, cql_change ch, cql_target tg, const char *ks, const char *name)
{
    ddl_done *d = sib_arena_alloc(c->arena, sizeof *d);
    if (!d) return NULL;
    *d = (ddl_done){c, ch, tg, sib_arena_strdup(c->arena, ks), name ? sib_arena_strdup(c->arena, name) : NULL};
    return d;
}

static void on_void_durable(void *ctx, int rc, const sib_err *err)
{
    exec_ctx *c = ctx;
    if (rc) exec_reply_err(c, err);
    else cql_reply_void(c->req);
}

/* ---- statements ---- */

static int check_replication(const sch_prop *props, size_t n, sib_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(props[i].name, "replication") || !props[i].is_map) continue;
        /* SimpleStrategy without a factor takes default_keyspace_rf: the
         * schema fills it in */
        bool simple = false, has_rf = false;
        for (size_t j = 0; j < props[i].n; j++) {
            const char *k = props[i].keys[j], *v = props[i].values[j];
            has_rf |= !strcmp(k, "replication_factor");
            simple |= !strcmp(k, "class") && (!strcmp(v, "SimpleStrategy") ||
                                              !strcmp(v, "org.apache.cassandra.locator.SimpleStrategy"));
        }
        if (simple && !has_rf) return 0;
        coord_repl r;
        return coord_repl_parse(props[i].keys, props[i].values, props[i].n, &r, NULL, err);
    }
    return 0;
}

/* The datacenters the cluster knows: ours and those of the members gossip
 * reported (in the request arena), with default_keyspace_rf. */
static int ks_env(exec_ctx *c, sch_ks_env *env, sib_err *err)
{
    const coord *co = c->ex->co;
    size_t nm = co ? coord_members(co) : 0;
    const char **dcs = sib_arena_alloc(c->arena, sizeof *dcs * (nm + 1));
    if (!dcs) return sib_err_set(err, SIB_ENOMEM, "datacenters");
    size_t n = 0;
    for (size_t i = 0; i <= nm; i++) {
        const char *dc = i == nm ? c->ex->node.dc : coord_member_dc(co, i);
        bool seen = !*dc;
        for (size_t j = 0; j < n && !seen; j++) seen = !strcmp(dcs[j], dc);
        if (!seen) dcs[n++] = dc;
    }
    *env = (sch_ks_env){.dcs = dcs, .ndcs = n, .default_rf = c->ex->default_keyspace_rf};
    return 0;
}

static int do_keyspace(exec_ctx *c, const prs_stmt *s, ddl_done **dd, sib_err *err)
{
    const prs_keyspace_stmt *k = &s->keyspace;
    sch_prop *props = convert_props(c, k->props, k->nprops);
    if (!props) return sib_err_set(err, SIB_ENOMEM, "properties");
    int rc;
    if (s->kind == PRS_STMT_CREATE_KEYSPACE) {
        if (!sch_name_valid(k->name))
            return sib_err_set(err, SIB_ECONFIG, "Keyspace name must not be empty, more than 48 characters long, or contain non-alphanumeric-underscore characters (got \"%s\")",
                               k->name);
        sch_ks_env env;
        if ((rc = check_replication(props, k->nprops, err)) || (rc = ks_env(c, &env, err))) return rc;
        rc = sch_catalog_create_keyspace_env(c->ex->cat, k->name, props, k->nprops, k->if_not_exists, &env, err);
        if (rc == SIB_EEXIST) { snprintf(err->ks, sizeof err->ks, "%s", k->name); err->table[0] = 0; }
        if (rc) return rc;
        *dd = new_done(c, CQL_CHANGE_CREATED, CQL_TARGET_KEYSPACE, k->name, NULL);
        return exec_schema_persist_keyspace(c->ex, k->name, false, on_ddl_durable, *dd, err);
    }
    if (s->kind == PRS_STMT_ALTER_KEYSPACE) {
        sch_ks_env env;
        if ((rc = check_replication(props, k->nprops, err)) || (rc = ks_env(c, &env, err))) return rc;
        rc = sch_catalog_alter_keyspace_env(c->ex->cat, k->name, props, k->nprops, k->if_exists, &env, err);
        if (rc) return rc;
        *dd = new_done(c, CQL_CHANGE_UPDATED, CQL_TARGET_KEYSPACE, k->name, NULL);
        return exec_schema_persist_keyspace(c->ex, k->name, false, on_ddl_durable, *dd, err);
    }
    /* DROP KEYSPACE: its tables' data first, then the definitions. */
    const sch_keyspace *ks = sch_catalog_keyspace(c->ex->cat, k->name);
    if (ks && sch_keyspace_is_system(ks))
        return sib_err_set(err, SIB_EUNAUTHORIZED, "%s keyspace is not user-modifiable", k->name);
    if (ks) {
        for (size_t i = 0; i < sch_keyspace_table_count(ks); i++) {
            const sch_table *t = sch_keyspace_table_at(ks, i);
            if ((rc = exec_schema_persist_table(c->ex, t, true, k->name, sch_table_name(t), NULL, NULL, err))) return rc;
            if ((rc = storage_table_drop(c->ex->st, sch_table_id(t), NULL, NULL, err))) return rc;
        }
    }
    rc = sch_catalog_drop_keyspace(c->ex->cat, k->name, k->if_exists, err);
    if (rc) return rc;
    *dd = new_done(c, CQL_CHANGE_DROPPED, CQL_TARGET_KEYSPACE, k->name, NULL);
    return exec_schema_persist_keyspace(c->ex, k->name, true, on_ddl_durable, *dd, err);
}

static const char *table_ks(exec_ctx *c, const prs_qname *q, sib_err *err)
{
    const char *ks = q->ks ? q->ks : c->keyspace;
    if (!ks || !*ks) {
        sib_err_set(err, SIB_EINVAL, "No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename");
        return NULL;
    }
    return ks;
}

/* The compaction map is checked against the strategy before the schema
 * changes, so a rejected option changes nothing. */
static int check_compaction(const sch_prop *props, size_t n, sib_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!props[i].is_map || strcmp(props[i].name, "compaction")) continue;
        bool has_class = false;
        for (size_t k = 0; k < props[i].n; k++) has_class |= !strcmp(props[i].keys[k], "class");
        if (has_class) return st_compaction_options_check(props[i].keys, props[i].values, props[i].n, err);
    }
    return 0;
}

/* CREATE TABLE ... WITH id = '<uuid>' (Cassandra's table attribute ID): the
 * table gets that id instead of a fresh one, so the same table created on
 * several nodes is one table to the replicas (a mutation names its table by
 * id). Taken out of props, which the other options fill. */
static int take_table_id(exec_ctx *c, sch_prop *props, size_t *n, const uint8_t **id, sib_err *err)
{
    *id = NULL;
    for (size_t i = 0; i < *n; i++) {
        if (strcasecmp(props[i].name, "id")) continue;
        uint8_t *u = sib_arena_alloc(c->arena, 16);
        if (!u) return sib_err_set(err, SIB_ENOMEM, "table");
        if (props[i].is_map || !props[i].value || !sib_uuid_parse(props[i].value, strlen(props[i].value), u))
            return sib_err_set(err, SIB_ESYNTAX, "Invalid value for property id: expecting a uuid");
        if (*id) return sib_err_set(err, SIB_ESYNTAX, "Multiple definition for property id");
        *id = u;
        memmove(&props[i], &props[i + 1], (*n - i - 1) * sizeof *props);
        (*n)--;
        i--;
    }
    return 0;
}

static int do_create_table(exec_ctx *c, const prs_create_table *ct, ddl_done **dd, sib_err *err)
{
    const char *ks = table_ks(c, &ct->table, err);
    if (!ks) return err->code;
    if (!sch_catalog_keyspace(c->ex->cat, ks)) return sib_err_set(err, SIB_EINVAL, "Keyspace '%s' doesn't exist", ks);
    sch_coldef *cols = NULL; /* (set by convert_cols on success; gcc -O2 cannot tell) */
    int rc = convert_cols(c, ct->cols, ct->ncols, &cols, err);
    if (rc) return rc;
    sch_orderdef *order = sib_arena_alloc(c->arena, sizeof *order * (ct->norder + 1));
    sch_prop *props = convert_props(c, ct->props, ct->nprops);
    if (!order || !props) return sib_err_set(err, SIB_ENOMEM, "table");
    size_t nprops = ct->nprops;
    const uint8_t *id;
    if ((rc = take_table_id(c, props, &nprops, &id, err))) return rc;
    if ((rc = check_compaction(props, nprops, err))) return rc;
    for (size_t i = 0; i < ct->norder; i++) order[i] = (sch_orderdef){ct->clustering_order[i].col, ct->clustering_order[i].desc};
    char *display = sib_arena_alloc(c->arena, strlen(ks) + strlen(ct->table.name) + 2);
    if (!display) return sib_err_set(err, SIB_ENOMEM, "table");
    if (ct->table.ks) sprintf(display, "%s.%s", ks, ct->table.name);
    else strcpy(display, ct->table.name);
    /* BUCKET(...) / SALT(...) in the partition key: the catalog checks them */
    sch_derive_spec derive = {0};
    if (ct->bucket_col) {
        derive.bucket_column = ct->bucket_col;
        derive.bucket_width_kind = prop_kind(ct->bucket_width.kind);
        derive.bucket_width = ct->bucket_width.text;
    }
    if (ct->has_salt) {
        if (ct->salt_count.kind != PRS_CONST_INTEGER)
            return sib_err_set(err, SIB_EINVAL, "Invalid salt count %s in SALT(%s): it must be an integer",
                               ct->salt_count.text, ct->salt_count.text);
        derive.salt_count = ct->salt_count.text;
    }
    sch_table_spec spec = {
        .derive = (ct->bucket_col || ct->has_salt) ? &derive : NULL,
        .keyspace = ks, .name = ct->table.name, .display_name = display, .cols = cols, .ncols = ct->ncols,
        .npk_decls = (size_t)ct->npk_decls, .pk = ct->partition, .npk = ct->npartition, .ck = ct->clustering,
        .nck = ct->nclustering, .order = order, .norder = ct->norder, .props = props, .nprops = nprops,
        .compact_storage = ct->compact_storage, .if_not_exists = ct->if_not_exists, .id = id,
    };
    const sch_table *t;
    rc = sch_catalog_create_table(c->ex->cat, &spec, &t, err);
    if (rc == SIB_EEXIST) {
        snprintf(err->ks, sizeof err->ks, "%s", ks);
        snprintf(err->table, sizeof err->table, "%s", ct->table.name);
    }
    if (rc) return rc;
    exec_table_options_to_storage(c->ex, t);
    *dd = new_done(c, CQL_CHANGE_CREATED, CQL_TARGET_TABLE, ks, ct->table.name);
    return exec_schema_persist_table(c->ex, t, false, ks, ct->table.name, on_ddl_durable, *dd, err);
}

static int do_alter_table(exec_ctx *c, const prs_alter_table *a, ddl_done **dd, sib_err *err)
{
    const char *ks = table_ks(c, &a->table, err);
    if (!ks) return err->code;
    const sch_table *t = sch_catalog_table(c->ex->cat, ks, a->table.name);
    if (!t) {
        if (a->if_exists) return 1;
        return sib_err_set(err, SIB_EINVAL, "Table '%s.%s' doesn't exist", ks, a->table.name);
    }
    if (sch_keyspace_is_system(sch_catalog_keyspace(c->ex->cat, ks)))
        return sib_err_set(err, SIB_EUNAUTHORIZED, "%s keyspace is not user-modifiable", ks);
    int rc;
    switch (a->kind) {
    case PRS_ALTER_ADD: {
        sch_coldef *cols = NULL;
        if ((rc = convert_cols(c, a->cols, a->ncols, &cols, err))) return rc;
        rc = sch_catalog_alter_add(c->ex->cat, ks, a->table.name, cols, a->ncols, a->col_if, err);
        break;
    }
    case PRS_ALTER_DROP: {
        int64_t ts = c->timestamp;
        bool present = false;
        if (a->drop_timestamp && (rc = exec_term_int(c, a->drop_timestamp, "timestamp", &ts, &present, err))) return rc;
        rc = sch_catalog_alter_drop(c->ex->cat, ks, a->table.name, a->names, a->nnames, ts, a->col_if, err);
        break;
    }
    case PRS_ALTER_RENAME:
        rc = sch_catalog_alter_rename(c->ex->cat, ks, a->table.name, a->names, a->new_names, a->nnames, err);
        break;
    case PRS_ALTER_WITH: {
        sch_prop *props = convert_props(c, a->props, a->nprops);
        if (!props) return sib_err_set(err, SIB_ENOMEM, "properties");
        if ((rc = check_compaction(props, a->nprops, err))) return rc;
        rc = sch_catalog_alter_options(c->ex->cat, ks, a->table.name, props, a->nprops, err);
        break;
    }
    default:
        return sib_err_set(err, SIB_EINVAL, "Altering column types is no longer supported");
    }
    if (rc) return rc;
    t = sch_catalog_table(c->ex->cat, ks, a->table.name);
    exec_table_options_to_storage(c->ex, t);
    *dd = new_done(c, CQL_CHANGE_UPDATED, CQL_TARGET_TABLE, ks, a->table.name);
    return exec_schema_persist_table(c->ex, t, false, ks, a->table.name, on_ddl_durable, *dd, err);
}

static int do_drop_table(exec_ctx *c, const prs_table_stmt *d, ddl_done **dd, sib_err *err)
{
    const char *ks = table_ks(c, &d->table, err);
    if (!ks) return err->code;
    const sch_table *t = sch_catalog_table(c->ex->cat, ks, d->table.name);
    if (!t) {
        if (d->if_exists) return 1;
        return sib_err_set(err, SIB_EINVAL, "Table '%s.%s' doesn't exist", ks, d->table.name);
    }
    if (sch_table_kind_of(t) != SCH_TABLE_USER)
        return sib_err_set(err, SIB_EUNAUTHORIZED, "%s keyspace is not user-modifiable", ks);
    uint8_t id[16];
    memcpy(id, sch_table_id(t), 16);
    int rc = storage_table_drop(c->ex->st, id, NULL, NULL, err);
    if (rc) return rc;
    rc = sch_catalog_drop_table(c->ex->cat, ks, d->table.name, d->if_exists, err);
    if (rc) return rc;
    *dd = new_done(c, CQL_CHANGE_DROPPED, CQL_TARGET_TABLE, ks, d->table.name);
    return persist_table_row(c->ex, NULL, id, ks, d->table.name, on_ddl_durable, *dd, err);
}

static int do_truncate(exec_ctx *c, const prs_table_stmt *d, sib_err *err)
{
    const sch_table *t;
    int rc = exec_resolve_table(c, &d->table, &t, err);
    if (rc) return rc;
    if (sch_table_kind_of(t) != SCH_TABLE_USER)
        return sib_err_set(err, SIB_EUNAUTHORIZED, "Cannot TRUNCATE a system table");
    return storage_table_truncate(c->ex->st, sch_table_id(t), on_void_durable, c, err);
}

void exec_ddl(exec_ctx *c, const prs_stmt *s)
{
    c->ex->ddl_gen++; /* catalog views cached by the executor go stale */
    sib_err err = {0};
    ddl_done *dd = NULL;
    int rc;
    switch (s->kind) {
    case PRS_STMT_USE:
        if (!sch_catalog_keyspace(c->ex->cat, s->keyspace.name)) {
            sib_err_set(&err, SIB_EINVAL, "Keyspace '%s' does not exist", s->keyspace.name);
            exec_reply_err(c, &err);
            return;
        }
        cql_reply_set_keyspace(c->req, s->keyspace.name);
        return;
    case PRS_STMT_CREATE_KEYSPACE:
    case PRS_STMT_ALTER_KEYSPACE:
    case PRS_STMT_DROP_KEYSPACE: rc = do_keyspace(c, s, &dd, &err); break;
    case PRS_STMT_CREATE_TABLE: rc = do_create_table(c, &s->create_table, &dd, &err); break;
    case PRS_STMT_ALTER_TABLE: rc = do_alter_table(c, &s->alter_table, &dd, &err); break;
    case PRS_STMT_DROP_TABLE: rc = do_drop_table(c, &s->table, &dd, &err); break;
    case PRS_STMT_TRUNCATE:
        rc = do_truncate(c, &s->table, &err);
        if (rc) exec_reply_err(c, &err);
        return;
    default: rc = sib_err_set(&err, SIB_EINVAL, "Unsupported statement %s", prs_stmt_kind_name(s->kind)); break;
    }
    /* rc 1: IF [NOT] EXISTS made it a no-op; Cassandra answers Void. On
     * success the durable callback replies. */
    if (rc == 1) cql_reply_void(c->req);
    else if (rc) exec_reply_err(c, &err);
}

/* ---- schema from peers (docs/membership.md "Schema") ---- */

void cql_exec_set_schema_listener(cql_exec *ex, cql_exec_schema_fn fn, void *ctx)
{
    ex->schema_changed = fn;
    ex->schema_ctx = ctx;
}

int cql_exec_schema_snapshot(cql_exec *ex, sib_buf *out) { return sch_defs_encode(ex->defs, out); }

typedef struct merge_event {
    cql_change change;
    cql_target target;
    char ks[64], name[64];
} merge_event;

typedef struct merge_job {
    cql_exec *ex;             /* NULL once the executor is gone */
    struct merge_job *prev, *next; /* ex->merges */
    cql_exec_merge_fn done;
    void *ctx;
    merge_event *ev;
    size_t nev;
    st_mutation **muts;
    size_t nmuts;
} merge_job;

static void merge_job_free(merge_job *j)
{
    if (j->prev) j->prev->next = j->next;
    else if (j->ex && j->ex->merges == j) j->ex->merges = j->next;
    if (j->next) j->next->prev = j->prev;
    for (size_t i = 0; i < j->nmuts; i++) st_mutation_destroy(j->muts[i]);
    free(j->muts);
    free(j->ev);
    free(j);
}

void exec_schema_merges_orphan(cql_exec *ex)
{
    merge_job *next;
    for (merge_job *j = ex->merges; j; j = next) {
        next = j->next;
        *j = (merge_job){.ev = j->ev, .muts = j->muts, .nmuts = j->nmuts};
    }
    ex->merges = NULL;
}

static void merge_event_add(merge_job *j, cql_change ch, cql_target tg, const char *ks, const char *name)
{
    merge_event *e = &j->ev[j->nev++];
    *e = (merge_event){.change = ch, .target = tg};
    snprintf(e->ks, sizeof e->ks, "%s", ks);
    snprintf(e->name, sizeof e->name, "%s", name ? name : "");
}

/* Records the winning row: in memory now, on disk with the job's write. */
static int merge_keep(merge_job *j, const sch_def *d)
{
    st_mutation *m = def_mutation(d);
    if (!m) return SIB_ENOMEM;
    if (sch_defs_put(j->ex->defs, d)) { st_mutation_destroy(m); return SIB_ENOMEM; }
    j->muts[j->nmuts++] = m;
    return 0;
}

/* Drops a table from storage and the catalog (as DROP TABLE does). */
static void merge_drop_table(merge_job *j, const sch_table *t)
{
    uint8_t id[16];
    char ks[64], name[64];
    memcpy(id, sch_table_id(t), 16);
    snprintf(ks, sizeof ks, "%s", sch_table_keyspace(t));
    snprintf(name, sizeof name, "%s", sch_table_name(t));
    sib_err err = {0};
    if (storage_table_drop(j->ex->st, id, NULL, NULL, &err))
        sib_log(j->ex->log, SIB_WARN, "schema: dropping the data of %s.%s: %s", ks, name, err.msg);
    sch_catalog_drop_table(j->ex->cat, ks, name, true, &err);
}

static int merge_table(merge_job *j, const sch_def *d, sib_err *err)
{
    cql_exec *ex = j->ex;
    const sch_table *old = sch_catalog_table(ex->cat, d->ks, d->name);
    uint8_t id[16];
    if (sch_def_is_tombstone(d)) {
        if (old) {
            merge_drop_table(j, old);
            merge_event_add(j, CQL_CHANGE_DROPPED, CQL_TARGET_TABLE, d->ks, d->name);
        }
        return merge_keep(j, d);
    }
    if (!sch_catalog_keyspace(ex->cat, d->ks)) {
        sib_log(ex->log, SIB_WARN, "schema: peer's table %s.%s skipped: its keyspace is not here", d->ks, d->name);
        return 0;
    }
    /* the same name with another id: the winner replaces it (its data goes) */
    bool existed = old != NULL;
    if (old && sch_def_table_id(d, id) && memcmp(id, sch_table_id(old), 16)) {
        sib_log(ex->log, SIB_INFO, "schema: %s.%s replaced by the peer's definition with another id", d->ks, d->name);
        merge_drop_table(j, old);
    }
    int rc = sch_catalog_load_table(ex->cat, d->val, d->len, err);
    if (rc) {
        sib_log(ex->log, SIB_WARN, "schema: peer's table %s.%s not applied: %s", d->ks, d->name, err->msg);
        return 0;
    }
    const sch_table *t = sch_catalog_table(ex->cat, d->ks, d->name);
    if (t && !storage_table(ex->st, sch_table_id(t))) return sib_err_set(err, SIB_ENOMEM, "table store");
    if (t) exec_table_options_to_storage(ex, t);
    merge_event_add(j, existed ? CQL_CHANGE_UPDATED : CQL_CHANGE_CREATED, CQL_TARGET_TABLE, d->ks, d->name);
    return merge_keep(j, d);
}

/* A keyspace tombstone takes the keyspace's tables with it; each gets a
 * tombstone of the same timestamp. */
static int merge_drop_keyspace(merge_job *j, const sch_def *d)
{
    cql_exec *ex = j->ex;
    const sch_keyspace *k = sch_catalog_keyspace(ex->cat, d->ks);
    if (!k) return merge_keep(j, d);
    while (sch_keyspace_table_count(k)) {
        const sch_table *t = sch_keyspace_table_at(k, 0);
        sib_buf tomb;
        sib_buf_init(&tomb);
        int rc = sch_def_tombstone(SCH_DEF_TABLE, sch_table_id(t), &tomb);
        char name[64];
        snprintf(name, sizeof name, "%s", sch_table_name(t));
        sch_def td = {.kind = SCH_DEF_TABLE, .ks = d->ks, .name = name, .ts = d->ts, .val = tomb.p, .len = tomb.len};
        const sch_def *cur = sch_defs_get(ex->defs, SCH_DEF_TABLE, d->ks, name);
        merge_drop_table(j, t);
        if (!rc && (!cur || sch_def_compare(&td, cur) > 0)) rc = merge_keep(j, &td);
        sib_buf_free(&tomb);
        if (rc) return rc;
        k = sch_catalog_keyspace(ex->cat, d->ks);
    }
    sib_err err = {0};
    sch_catalog_drop_keyspace(ex->cat, d->ks, true, &err);
    merge_event_add(j, CQL_CHANGE_DROPPED, CQL_TARGET_KEYSPACE, d->ks, NULL);
    return merge_keep(j, d);
}

static int merge_one(merge_job *j, const sch_def *d, sib_err *err)
{
    /* system keyspaces are every node's own: never changed by a peer */
    const sch_keyspace *k = sch_catalog_keyspace(j->ex->cat, d->ks);
    if (k && sch_keyspace_is_system(k)) {
        sib_log(j->ex->log, SIB_WARN, "schema: peer's row for system keyspace %s ignored", d->ks);
        return 0;
    }
    if (d->kind == SCH_DEF_TABLE) return merge_table(j, d, err);
    if (sch_def_is_tombstone(d)) return merge_drop_keyspace(j, d);
    bool existed = sch_catalog_keyspace(j->ex->cat, d->ks) != NULL;
    int rc = sch_catalog_load_keyspace(j->ex->cat, d->val, d->len, err);
    if (rc) {
        sib_log(j->ex->log, SIB_WARN, "schema: peer's keyspace %s not applied: %s", d->ks, err->msg);
        return 0;
    }
    merge_event_add(j, existed ? CQL_CHANGE_UPDATED : CQL_CHANGE_CREATED, CQL_TARGET_KEYSPACE, d->ks, NULL);
    return merge_keep(j, d);
}

/* The rows are durable: now the clients hear of the changes. */
static void on_merge_durable(void *ctx, int rc, const sib_err *err)
{
    merge_job *j = ctx;
    if (!j->ex) { merge_job_free(j); return; }
    if (rc) sib_log(j->ex->log, SIB_ERROR, "schema: persisting a peer's schema failed: %s", err ? err->msg : "");
    for (size_t i = 0; !rc && j->ex->srv && i < j->nev; i++) {
        const merge_event *e = &j->ev[i];
        cql_server_broadcast_schema_change(j->ex->srv, e->change, e->target, e->ks,
                                           e->target == CQL_TARGET_KEYSPACE ? NULL : e->name);
    }
    j->done(j->ctx, rc);
    merge_job_free(j);
}

int cql_exec_schema_merge(cql_exec *ex, const uint8_t *snap, size_t len, cql_exec_merge_fn done, void *ctx,
                          sib_err *err)
{
    sch_defs *remote;
    int rc = sch_defs_decode(&remote, snap, len, err);
    if (rc) return rc;
    const sch_def **win = NULL;
    size_t nwin = 0;
    merge_job *j = NULL;
    if ((rc = sch_defs_merge(ex->defs, remote, &win, &nwin))) { rc = sib_err_set(err, rc, "schema merge"); goto out; }
    if (!nwin) goto out;
    /* a keyspace drop may add one tombstone per table it takes with it */
    size_t cap = nwin;
    for (size_t i = 0; i < nwin; i++) {
        const sch_keyspace *k = win[i]->kind == SCH_DEF_KEYSPACE ? sch_catalog_keyspace(ex->cat, win[i]->ks) : NULL;
        if (k) cap += sch_keyspace_table_count(k);
    }
    j = calloc(1, sizeof *j);
    if (j) {
        *j = (merge_job){.ex = ex, .done = done, .ctx = ctx};
        j->ev = calloc(cap, sizeof *j->ev);
        j->muts = calloc(cap, sizeof *j->muts);
    }
    if (!j || !j->ev || !j->muts) { rc = sib_err_set(err, SIB_ENOMEM, "schema merge"); goto out; }
    ex->ddl_gen++; /* catalog views cached by the executor go stale */
    int mrc = 0;
    for (size_t i = 0; !mrc && i < nwin; i++) mrc = merge_one(j, win[i], err);
    /* an error here is OOM: what was applied so far is still written */
    if (mrc) sib_log(ex->log, SIB_ERROR, "schema: merging a peer's schema stopped: out of memory");
    if (!j->nmuts) { rc = mrc; goto out; }
    rc = storage_apply(ex->st, j->muts, j->nmuts, on_merge_durable, j, err);
    if (rc) goto out;
    rc = (int)SIB_MIN(j->nmuts, (size_t)INT32_MAX);
    j->next = ex->merges; /* on_merge_durable owns it now */
    if (ex->merges) ex->merges->prev = j;
    ex->merges = j;
    j = NULL;
out:
    if (j) merge_job_free(j);
    free(win);
    sch_defs_destroy(remote);
    return rc;
}
