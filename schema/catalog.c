/* catalog.c: keyspaces and tables in memory, lookups, and the DDL operations
 * with Cassandra 4.0's validation order and messages (docs/cql.md 3.1, 3.2, 6;
 * CreateTableStatement, AlterTableStatement, Create/Alter/DropKeyspace).
 *
 * Every DDL validates completely before it mutates anything, so a failed
 * statement leaves the catalog unchanged. Tables keep their columns in
 * `SELECT *` order (table_sort_columns) so the executor can index them
 * directly; column ids are assigned once and never reused (next_col_id only
 * grows, dropped ids stay in the dropped list).
 */
#include "schema_int.h"

#include <stdlib.h>

/* ---- lifetime ---- */

void table_free(sch_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->ncols; i++) free((char *)t->cols[i].name);
    for (size_t i = 0; i < t->ndropped; i++) free((char *)t->dropped[i].name);
    free(t->cols);
    free(t->dropped);
    free(t->ks);
    free(t->name);
    free(t->sys_comment);
    free(t->bucket_text);
    opts_free(&t->opts);
    free(t);
}

void keyspace_free(sch_keyspace *ks)
{
    if (!ks) return;
    for (size_t i = 0; i < ks->ntables; i++) table_free(ks->tables[i]);
    free(ks->tables);
    free(ks->name);
    strmap_free(&ks->repl);
    free(ks);
}

sch_catalog *sch_catalog_create(void)
{
    sch_catalog *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->types = sch_types_create();
    sib_rng_seed(&c->rng);
    if (!c->types || catalog_add_system_keyspaces(c)) {
        sch_catalog_destroy(c);
        return NULL;
    }
    catalog_bump_version(c);
    return c;
}

void sch_catalog_destroy(sch_catalog *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->nks; i++) keyspace_free(c->ks[i]);
    free(c->ks);
    sch_types_destroy(c->types);
    free(c);
}

sch_types *sch_catalog_types(sch_catalog *c) { return c->types; }

/* ---- lookups ---- */

sch_keyspace *catalog_find_ks(const sch_catalog *c, const char *name)
{
    size_t lo = 0, hi = c->nks;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcmp(c->ks[mid]->name, name);
        if (!r) return c->ks[mid];
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static sch_table *ks_find_table(const sch_keyspace *ks, const char *name, size_t *pos)
{
    size_t lo = 0, hi = ks->ntables;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcmp(ks->tables[mid]->name, name);
        if (!r) { if (pos) *pos = mid; return ks->tables[mid]; }
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    if (pos) *pos = lo;
    return NULL;
}

const sch_keyspace *sch_catalog_keyspace(const sch_catalog *c, const char *name) { return catalog_find_ks(c, name); }

const sch_table *sch_catalog_table(const sch_catalog *c, const char *ks, const char *name)
{
    const sch_keyspace *k = catalog_find_ks(c, ks);
    return k ? ks_find_table(k, name, NULL) : NULL;
}

const sch_table *sch_catalog_table_by_id(const sch_catalog *c, const uint8_t id[16])
{
    for (size_t i = 0; i < c->nks; i++)
        for (size_t j = 0; j < c->ks[i]->ntables; j++)
            if (!memcmp(c->ks[i]->tables[j]->id, id, 16)) return c->ks[i]->tables[j];
    return NULL;
}

size_t sch_catalog_keyspace_count(const sch_catalog *c) { return c->nks; }
const sch_keyspace *sch_catalog_keyspace_at(const sch_catalog *c, size_t i) { return i < c->nks ? c->ks[i] : NULL; }

int catalog_insert_keyspace(sch_catalog *c, sch_keyspace *ks)
{
    size_t pos = 0;
    while (pos < c->nks && strcmp(c->ks[pos]->name, ks->name) < 0) pos++;
    sch_keyspace **v = realloc(c->ks, (c->nks + 1) * sizeof *v);
    if (!v) return SIB_ENOMEM;
    c->ks = v;
    memmove(&v[pos + 1], &v[pos], (c->nks - pos) * sizeof *v);
    v[pos] = ks;
    c->nks++;
    return 0;
}

int keyspace_insert_table(sch_keyspace *ks, sch_table *t)
{
    size_t pos;
    ks_find_table(ks, t->name, &pos);
    sch_table **v = realloc(ks->tables, (ks->ntables + 1) * sizeof *v);
    if (!v) return SIB_ENOMEM;
    ks->tables = v;
    memmove(&v[pos + 1], &v[pos], (ks->ntables - pos) * sizeof *v);
    v[pos] = t;
    ks->ntables++;
    return 0;
}

static void keyspace_remove_table(sch_keyspace *ks, const sch_table *t)
{
    for (size_t i = 0; i < ks->ntables; i++)
        if (ks->tables[i] == t) {
            memmove(&ks->tables[i], &ks->tables[i + 1], (ks->ntables - i - 1) * sizeof *ks->tables);
            ks->ntables--;
            return;
        }
}

/* ---- accessors ---- */

const char *sch_keyspace_name(const sch_keyspace *ks) { return ks->name; }
bool sch_keyspace_durable_writes(const sch_keyspace *ks) { return ks->durable_writes; }
const sch_strmap *sch_keyspace_replication(const sch_keyspace *ks) { return &ks->repl; }
const char *sch_keyspace_strategy(const sch_keyspace *ks)
{
    const char *c = sch_strmap_get(&ks->repl, "class");
    return c ? c : "";
}
bool sch_keyspace_is_system(const sch_keyspace *ks) { return ks->system; }
size_t sch_keyspace_table_count(const sch_keyspace *ks) { return ks->ntables; }
const sch_table *sch_keyspace_table_at(const sch_keyspace *ks, size_t i) { return i < ks->ntables ? ks->tables[i] : NULL; }

const char *sch_table_keyspace(const sch_table *t) { return t->ks; }
const char *sch_table_name(const sch_table *t) { return t->name; }
const uint8_t *sch_table_id(const sch_table *t) { return t->id; }
sch_table_kind sch_table_kind_of(const sch_table *t) { return t->kind; }
bool sch_table_is_counter(const sch_table *t) { return t->counter; }
bool sch_table_has_static(const sch_table *t) { return t->has_static; }
const sch_table_opts *sch_table_options(const sch_table *t) { return &t->opts; }
size_t sch_table_column_count(const sch_table *t) { return t->ncols; }
const sch_column *sch_table_column(const sch_table *t, size_t i) { return i < t->ncols ? &t->cols[i] : NULL; }
size_t sch_table_pk_count(const sch_table *t) { return t->npk; }
const sch_column *sch_table_pk(const sch_table *t, size_t i) { return i < t->npk ? &t->cols[i] : NULL; }
size_t sch_table_clustering_count(const sch_table *t) { return t->nck; }
const sch_column *sch_table_clustering(const sch_table *t, size_t i) { return i < t->nck ? &t->cols[t->npk + i] : NULL; }
size_t sch_table_dropped_count(const sch_table *t) { return t->ndropped; }
const sch_dropped_column *sch_table_dropped(const sch_table *t, size_t i) { return i < t->ndropped ? &t->dropped[i] : NULL; }

const sch_column *sch_table_column_by_name(const sch_table *t, const char *name)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (!strcmp(t->cols[i].name, name)) return &t->cols[i];
    return NULL;
}

const sch_column *sch_table_column_by_id(const sch_table *t, uint32_t id)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (t->cols[i].id == id) return &t->cols[i];
    return NULL;
}

/* ---- column order ---- */

static int col_cmp(const void *a, const void *b)
{
    const sch_column *x = a, *y = b;
    /* select order (Cassandra's allColumnsInSelectOrder): partition key,
     * clustering, statics, regulars; the last two alphabetically */
    static const int rank[] = { [SCH_COL_PARTITION_KEY] = 0, [SCH_COL_CLUSTERING] = 1, [SCH_COL_STATIC] = 2,
                                [SCH_COL_REGULAR] = 3 };
    if (x->kind != y->kind) return rank[x->kind] < rank[y->kind] ? -1 : 1;
    if (x->kind == SCH_COL_PARTITION_KEY || x->kind == SCH_COL_CLUSTERING) return x->position - y->position;
    return strcmp(x->name, y->name);
}

void table_sort_columns(sch_table *t)
{
    qsort(t->cols, t->ncols, sizeof *t->cols, col_cmp);
    t->npk = t->nck = 0;
    t->has_static = t->counter = false;
    for (size_t i = 0; i < t->ncols; i++) {
        sch_column *c = &t->cols[i];
        c->index = (uint32_t)i;
        if (c->kind == SCH_COL_PARTITION_KEY) t->npk++;
        else if (c->kind == SCH_COL_CLUSTERING) t->nck++;
        else if (c->kind == SCH_COL_STATIC) t->has_static = true;
        if (c->type->code == SCH_T_COUNTER) t->counter = true;
    }
}

/* ---- names ---- */

bool sch_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (!n || n > 48) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_'))
            return false;
    }
    return true;
}

static const char *const reserved_words[] = {
    "add", "allow", "alter", "and", "apply", "asc", "authorize", "batch", "begin", "by", "columnfamily", "create",
    "delete", "desc", "describe", "drop", "entries", "execute", "from", "full", "grant", "if", "in", "index",
    "infinity", "insert", "into", "is", "keyspace", "limit", "materialized", "modify", "nan", "norecursive", "not",
    "null", "of", "on", "or", "order", "primary", "rename", "revoke", "schema", "select", "set", "table", "to",
    "token", "truncate", "unlogged", "update", "use", "using", "view", "where", "with",
};

void sch_ident_quote(const char *name, sib_buf *out)
{
    bool bare = name[0] >= 'a' && name[0] <= 'z';
    for (const char *p = name; bare && *p; p++)
        bare = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
    for (size_t i = 0; bare && i < SIB_ARRAY_LEN(reserved_words); i++)
        if (!strcmp(name, reserved_words[i])) bare = false;
    if (bare) { sib_buf_append(out, name, strlen(name)); return; }
    sib_buf_u8(out, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"') sib_buf_u8(out, '"');
        sib_buf_u8(out, (uint8_t)*p);
    }
    sib_buf_u8(out, '"');
}

static bool is_system_name(const char *ks)
{
    return !strcmp(ks, "system") || !strcmp(ks, "system_schema") || !strcmp(ks, "system_virtual_schema");
}

static int not_modifiable(const char *ks, sib_err *err)
{
    if (!strcmp(ks, "system_virtual_schema"))
        return sib_err_set(err, SIB_EINVAL, "Virtual keyspace '%s' is not user-modifiable", ks);
    return sib_err_set(err, SIB_EINVAL, "System keyspace '%s' is not user-modifiable", ks);
}

static const char *type_str(const sch_type *t, char *dst, size_t cap)
{
    sib_buf b;
    sib_buf_init(&b);
    sch_type_cql_name(t, &b);
    size_t n = b.oom ? 0 : SIB_MIN(b.len, cap - 1);
    if (n) memcpy(dst, b.p, n);
    dst[n] = 0;
    sib_buf_free(&b);
    return dst;
}

/* ---- keyspaces ---- */

int sch_catalog_create_keyspace_env(sch_catalog *c, const char *name, const sch_prop *props, size_t nprops,
                                    bool if_not_exists, const sch_ks_env *env, sib_err *err)
{
    if (is_system_name(name)) return not_modifiable(name, err);
    if (!sch_name_valid(name))
        return sib_err_set(err, SIB_ECONFIG,
                           "Keyspace name must not be empty, more than 48 characters long, or contain non-alphanumeric-underscore characters (got \"%s\")",
                           name);
    /* Cassandra's order: mandatory replication, then existence, then the
     * strategy's own validation (so IF NOT EXISTS skips the latter). */
    bool has_repl = false;
    for (size_t i = 0; i < nprops; i++) {
        if (strcmp(props[i].name, "replication") && strcmp(props[i].name, "durable_writes"))
            return sib_err_set(err, SIB_ESYNTAX, "Unknown property '%s'", props[i].name);
        has_repl |= !strcmp(props[i].name, "replication");
    }
    if (!has_repl) return sib_err_set(err, SIB_EINVAL, "Missing mandatory option 'replication'");
    if (catalog_find_ks(c, name)) {
        if (if_not_exists) return 1;
        return sib_err_set(err, SIB_EEXIST, "Cannot add existing keyspace \"%s\"", name);
    }
    sch_strmap repl = { 0 };
    bool durable = true;
    int rc = ks_props_apply(name, &repl, &durable, true, props, nprops, env, err);
    if (rc) return rc;
    sch_keyspace *ks = calloc(1, sizeof *ks);
    if (ks) ks->name = xstrdup(name);
    if (!ks || !ks->name || catalog_insert_keyspace(c, ks)) {
        strmap_free(&repl);
        if (ks) keyspace_free(ks);
        return sib_err_set(err, SIB_ENOMEM, "out of memory");
    }
    ks->repl = repl;
    ks->durable_writes = durable;
    catalog_bump_version(c);
    return 0;
}

int sch_catalog_create_keyspace(sch_catalog *c, const char *name, const sch_prop *props, size_t nprops,
                                bool if_not_exists, sib_err *err)
{
    return sch_catalog_create_keyspace_env(c, name, props, nprops, if_not_exists, NULL, err);
}

int sch_catalog_alter_keyspace(sch_catalog *c, const char *name, const sch_prop *props, size_t nprops,
                               bool if_exists, sib_err *err)
{
    return sch_catalog_alter_keyspace_env(c, name, props, nprops, if_exists, NULL, err);
}

int sch_catalog_alter_keyspace_env(sch_catalog *c, const char *name, const sch_prop *props, size_t nprops,
                                   bool if_exists, const sch_ks_env *env, sib_err *err)
{
    if (is_system_name(name)) return not_modifiable(name, err);
    sch_keyspace *ks = catalog_find_ks(c, name);
    if (!ks) {
        if (if_exists) return 1;
        return sib_err_set(err, SIB_EINVAL, "Keyspace '%s' doesn't exist", name);
    }
    sch_strmap repl;
    if (strmap_copy(&repl, &ks->repl)) return sib_err_set(err, SIB_ENOMEM, "out of memory");
    bool durable = ks->durable_writes;
    int rc = ks_props_apply(name, &repl, &durable, false, props, nprops, env, err);
    if (rc) { strmap_free(&repl); return rc; }
    strmap_free(&ks->repl);
    ks->repl = repl;
    ks->durable_writes = durable;
    catalog_bump_version(c);
    return 0;
}

int sch_catalog_drop_keyspace(sch_catalog *c, const char *name, bool if_exists, sib_err *err)
{
    if (is_system_name(name)) return not_modifiable(name, err);
    for (size_t i = 0; i < c->nks; i++) {
        if (strcmp(c->ks[i]->name, name)) continue;
        keyspace_free(c->ks[i]);
        memmove(&c->ks[i], &c->ks[i + 1], (c->nks - i - 1) * sizeof *c->ks);
        c->nks--;
        catalog_bump_version(c);
        return 0;
    }
    if (if_exists) return 1;
    return sib_err_set(err, SIB_EINVAL, "Keyspace '%s' doesn't exist", name);
}

/* ---- CREATE TABLE ---- */

static ssize_t find_name(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return (ssize_t)i;
    return -1;
}

static const sch_coldef *find_coldef(const sch_table_spec *s, const char *name)
{
    for (size_t i = 0; i < s->ncols; i++)
        if (!strcmp(s->cols[i].name, name)) return &s->cols[i];
    return NULL;
}

/* Checks done by Cassandra's parser and CreateTableStatement.Raw.prepare. */
static int check_spec_raw(const sch_table_spec *s, sib_err *err)
{
    const char *disp = s->display_name ? s->display_name : s->name;
    for (size_t i = 0; i < s->ncols; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(s->cols[i].name, s->cols[j].name))
                return sib_err_set(err, SIB_EINVAL, "Duplicate column '%s' declaration for table '%s'", s->cols[i].name, disp);
    if (s->npk_decls > 1)
        return sib_err_set(err, SIB_EINVAL, "Multiple PRIMARY KEY specified for table '%s' (exactly one required)", disp);
    for (size_t i = 0; i < s->norder; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(s->order[i].name, s->order[j].name))
                return sib_err_set(err, SIB_EINVAL, "Duplicate column '%s' in CLUSTERING ORDER BY clause for table '%s'",
                                   s->order[i].name, disp);
    if (s->npk_decls == 0 || s->npk == 0)
        return sib_err_set(err, SIB_EINVAL, "No PRIMARY KEY specifed for table '%s' (exactly one required)", disp);
    if (s->compact_storage)
        return sib_err_set(err, SIB_EINVAL, "COMPACT STORAGE tables are not supported");
    return 0;
}

/* The builder checks of CreateTableStatement (4.0), in its order. */
static int check_spec_build(const sch_table_spec *s, const sch_table_opts *opts, sib_err *err)
{
    const char *tn = s->name;
    char tb[256];
    for (size_t i = 0; i < s->ncols; i++) {
        int rc = sch_type_check_column(s->cols[i].type, err);
        if (rc) return rc;
    }
    for (size_t i = 0; i < s->npk + s->nck; i++) {
        const char *name = i < s->npk ? s->pk[i] : s->ck[i - s->npk];
        const sch_coldef *d = find_coldef(s, name);
        if (!d) return sib_err_set(err, SIB_EINVAL, "Unknown column '%s' referenced in PRIMARY KEY for table '%s'", name, tn);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(j < s->npk ? s->pk[j] : s->ck[j - s->npk], name))
                return sib_err_set(err, SIB_EINVAL, "Duplicate column '%s' in PRIMARY KEY clause for table '%s'", name, tn);
        if (sch_type_is_multicell(d->type))
            return sib_err_set(err, SIB_EINVAL, "Invalid non-frozen collection type %s for PRIMARY KEY column '%s'",
                               type_str(d->type, tb, sizeof tb), name);
        if (d->type->code == SCH_T_COUNTER)
            return sib_err_set(err, SIB_EINVAL, "counter type is not supported for PRIMARY KEY column '%s'", name);
        bool dur = d->type->code == SCH_T_DURATION;
        for (int k = 0; k < 2 && !dur; k++) dur = d->type->sub[k] && d->type->sub[k]->code == SCH_T_DURATION;
        if (dur) return sib_err_set(err, SIB_EINVAL, "duration type is not supported for PRIMARY KEY column '%s'", name);
        if (d->is_static) return sib_err_set(err, SIB_EINVAL, "Static column '%s' cannot be part of the PRIMARY KEY", name);
    }
    if (s->norder > s->nck)
        return sib_err_set(err, SIB_EINVAL, "Only clustering columns can be defined in CLUSTERING ORDER directive");
    for (size_t n = 0; n < s->norder; n++) {
        const char *want = s->ck[n], *got = s->order[n].name;
        if (strcmp(want, got)) {
            bool listed = false;
            for (size_t k = 0; k < s->norder; k++) listed |= !strcmp(s->order[k].name, want);
            if (find_name(s->ck, s->nck, got) < 0)
                return sib_err_set(err, SIB_EINVAL, "Only clustering columns can be defined in CLUSTERING ORDER directive");
            if (listed)
                return sib_err_set(err, SIB_EINVAL,
                                   "The order of columns in the CLUSTERING ORDER directive must match that of the clustering columns (%s must appear before %s)",
                                   want, got);
            return sib_err_set(err, SIB_EINVAL, "Missing CLUSTERING ORDER for column %s", want);
        }
    }
    bool has_static = false, has_counter = false, has_noncounter = false;
    for (size_t i = 0; i < s->ncols; i++) {
        const sch_coldef *d = &s->cols[i];
        has_static |= d->is_static;
        if (d->type->code == SCH_T_COUNTER) has_counter = true;
        else if (find_name(s->pk, s->npk, d->name) < 0 && find_name(s->ck, s->nck, d->name) < 0) has_noncounter = true;
    }
    if (s->nck == 0 && has_static)
        return sib_err_set(err, SIB_EINVAL,
                           "Static columns are only useful (and thus allowed) if the table has at least one clustering column");
    if (has_counter && has_noncounter)
        return sib_err_set(err, SIB_EINVAL, "Cannot mix counter and non counter columns in the same table");
    if (has_counter && opts->default_time_to_live > 0)
        return sib_err_set(err, SIB_EINVAL, "Cannot set default_time_to_live on a table with counters");
    return 0;
}

static int build_table(sch_catalog *c, const sch_table_spec *s, const sch_table_opts *opts, sch_table **out, sib_err *err)
{
    sch_table *t = calloc(1, sizeof *t);
    if (!t) return sib_err_set(err, SIB_ENOMEM, "out of memory");
    t->ks = xstrdup(s->keyspace);
    t->name = xstrdup(s->name);
    t->cols = calloc(s->ncols ? s->ncols : 1, sizeof *t->cols);
    if (!t->ks || !t->name || !t->cols || opts_copy(&t->opts, opts)) {
        table_free(t);
        return sib_err_set(err, SIB_ENOMEM, "out of memory");
    }
    if (s->id) memcpy(t->id, s->id, 16);
    else sib_uuid_v4(&c->rng, t->id);
    for (size_t i = 0; i < s->ncols; i++) {
        const sch_coldef *d = &s->cols[i];
        sch_column *col = &t->cols[t->ncols];
        col->name = xstrdup(d->name);
        if (!col->name) { table_free(t); return sib_err_set(err, SIB_ENOMEM, "out of memory"); }
        t->ncols++;
        col->type = d->type;
        col->id = (uint32_t)i;
        col->position = -1;
        col->order = SCH_ORDER_NONE;
        ssize_t p = find_name(s->pk, s->npk, d->name), k = find_name(s->ck, s->nck, d->name);
        if (p >= 0) col->kind = SCH_COL_PARTITION_KEY, col->position = (int)p;
        else if (k >= 0) {
            col->kind = SCH_COL_CLUSTERING;
            col->position = (int)k;
            col->order = (size_t)k < s->norder && s->order[k].desc ? SCH_ORDER_DESC : SCH_ORDER_ASC;
        } else col->kind = d->is_static ? SCH_COL_STATIC : SCH_COL_REGULAR;
    }
    t->next_col_id = (uint32_t)s->ncols;
    table_sort_columns(t);
    *out = t;
    return 0;
}

/* Builds a validated table without inserting it (also used for system tables). */
int table_from_spec(sch_catalog *c, const sch_table_spec *s, sch_table **out, sib_err *err)
{
    sch_table_opts opts;
    if (opts_init_default(&opts)) return sib_err_set(err, SIB_ENOMEM, "out of memory");
    int rc = opts_apply(&opts, s->props, s->nprops, err);
    /* BUCKET / SALT add their derived columns, then the usual checks */
    sch_table_spec s2;
    sch_coldef *extra = NULL;
    if (!rc) rc = derive_spec_expand(s, &s2, &extra, err);
    if (!rc) rc = check_spec_build(&s2, &opts, err);
    if (!rc) rc = build_table(c, &s2, &opts, out, err);
    if (!rc && (rc = derive_attach(*out, s))) {
        table_free(*out);
        *out = NULL;
        rc = sib_err_set(err, rc, "table: BUCKET / SALT");
    }
    free(extra);
    opts_free(&opts);
    return rc;
}

int sch_catalog_create_table(sch_catalog *c, const sch_table_spec *s, const sch_table **out, sib_err *err)
{
    if (out) *out = NULL;
    int rc = check_spec_raw(s, err);
    if (rc) return rc;
    if (is_system_name(s->keyspace)) return not_modifiable(s->keyspace, err);
    sch_keyspace *ks = catalog_find_ks(c, s->keyspace);
    if (!ks) return sib_err_set(err, SIB_EINVAL, "Keyspace '%s' doesn't exist", s->keyspace);
    sch_table *existing = ks_find_table(ks, s->name, NULL);
    if (existing) {
        if (s->if_not_exists) {
            if (out) *out = existing;
            return 1;
        }
        return sib_err_set(err, SIB_EEXIST, "Cannot add already existing table \"%s\" to keyspace \"%s\"", s->name,
                           s->keyspace);
    }
    if (!sch_name_valid(s->name))
        return sib_err_set(err, SIB_ECONFIG,
                           "Table name must not be empty, more than 48 characters long, or contain non-alphanumeric-underscore characters (got \"%s\")",
                           s->name);
    if (s->id && sch_catalog_table_by_id(c, s->id)) return sib_err_set(err, SIB_EEXIST, "table id already in use");
    sch_table *t;
    rc = table_from_spec(c, s, &t, err);
    if (rc) return rc;
    if (keyspace_insert_table(ks, t)) {
        table_free(t);
        return sib_err_set(err, SIB_ENOMEM, "out of memory");
    }
    catalog_bump_version(c);
    if (out) *out = t;
    return 0;
}

/* ---- DROP / ALTER TABLE ---- */

static int find_table_for_ddl(sch_catalog *c, const char *ks, const char *name, bool if_exists, sch_keyspace **kout,
                              sch_table **tout, sib_err *err)
{
    if (is_system_name(ks)) return not_modifiable(ks, err);
    sch_keyspace *k = catalog_find_ks(c, ks);
    if (!k) return if_exists ? 1 : sib_err_set(err, SIB_EINVAL, "Keyspace '%s' doesn't exist", ks);
    sch_table *t = ks_find_table(k, name, NULL);
    if (!t) return if_exists ? 1 : sib_err_set(err, SIB_EINVAL, "Table '%s.%s' doesn't exist", ks, name);
    *kout = k;
    *tout = t;
    return 0;
}

int sch_catalog_drop_table(sch_catalog *c, const char *ks, const char *name, bool if_exists, sib_err *err)
{
    sch_keyspace *k;
    sch_table *t;
    int rc = find_table_for_ddl(c, ks, name, if_exists, &k, &t, err);
    if (rc) return rc;
    keyspace_remove_table(k, t);
    table_free(t);
    catalog_bump_version(c);
    return 0;
}

static const sch_dropped_column *find_dropped(const sch_table *t, const char *name)
{
    for (size_t i = 0; i < t->ndropped; i++)
        if (!strcmp(t->dropped[i].name, name)) return &t->dropped[i];
    return NULL;
}

/* AlterTableStatement.AddColumns checks for one new column (not a duplicate). */
static int check_add_column(const sch_table *t, const sch_coldef *d, sib_err *err)
{
    char tb[256], tb2[256];
    int rc = sch_type_check_column(d->type, err);
    if (rc) return rc;
    if (d->is_static && t->nck == 0)
        return sib_err_set(err, SIB_EINVAL,
                           "Static columns are only useful (and thus allowed) if the table has at least one clustering column");
    const sch_dropped_column *dc = find_dropped(t, d->name);
    if (dc && dc->type != d->type)
        return sib_err_set(err, SIB_EINVAL,
                           "Cannot re-add previously dropped column '%s' of type %s, incompatible with previous type %s",
                           d->name, type_str(d->type, tb, sizeof tb), type_str(dc->type, tb2, sizeof tb2));
    if (dc && (dc->kind == SCH_COL_STATIC) != d->is_static)
        return sib_err_set(err, SIB_EINVAL,
                           "Cannot re-add previously dropped column '%s' of kind %s, incompatible with previous kind %s",
                           d->name, d->is_static ? "STATIC" : "REGULAR", dc->kind == SCH_COL_STATIC ? "STATIC" : "REGULAR");
    if (dc && t->counter)
        return sib_err_set(err, SIB_EINVAL, "Cannot re-add previously dropped counter column %s", d->name);
    if (d->type->code == SCH_T_COUNTER && !t->counter)
        return sib_err_set(err, SIB_ECONFIG, "Cannot add a counter column (%s) in a non counter table", d->name);
    if (d->type->code != SCH_T_COUNTER && t->counter)
        return sib_err_set(err, SIB_ECONFIG, "Cannot add a non counter column (%s) in a counter table", d->name);
    return 0;
}

static void forget_dropped(sch_table *t, const char *name)
{
    for (size_t j = 0; j < t->ndropped; j++)
        if (!strcmp(t->dropped[j].name, name)) {
            free((char *)t->dropped[j].name);
            memmove(&t->dropped[j], &t->dropped[j + 1], (t->ndropped - j - 1) * sizeof *t->dropped);
            t->ndropped--;
            return;
        }
}

int sch_catalog_alter_add(sch_catalog *c, const char *ks, const char *name, const sch_coldef *cols, size_t n,
                          bool if_not_exists, sib_err *err)
{
    sch_keyspace *k;
    sch_table *t;
    int rc = find_table_for_ddl(c, ks, name, false, &k, &t, err);
    if (rc) return rc;
    bool *skip = calloc(n ? n : 1, sizeof *skip);
    if (!skip) return sib_err_set(err, SIB_ENOMEM, "out of memory");
    size_t nadd = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        bool dup = sch_table_column_by_name(t, cols[i].name) != NULL;
        for (size_t j = 0; j < i; j++) dup |= !skip[j] && !strcmp(cols[j].name, cols[i].name);
        if (dup && if_not_exists) skip[i] = true;
        else if (dup) rc = sib_err_set(err, SIB_EINVAL, "Column with name '%s' already exists", cols[i].name);
        else if (cols[i].is_static && t->has_salt)
            rc = sib_err_set(err, SIB_EINVAL, "Cannot add static column %s to a table with SALT(%u): a static row would split across salts",
                             cols[i].name, t->salt_count);
        else if (cols[i].is_static && t->has_bucket)
            rc = sib_err_set(err, SIB_EINVAL,
                             "Cannot add static column %s to a table with BUCKET(...): a static row would be one per bucket, not one per natural partition",
                             cols[i].name);
        else if (!(rc = check_add_column(t, &cols[i], err))) nadd++;
    }
    sch_column *nc = NULL;
    if (!rc && nadd && !(nc = realloc(t->cols, (t->ncols + nadd) * sizeof *nc)))
        rc = sib_err_set(err, SIB_ENOMEM, "out of memory");
    char **names = rc || !nadd ? NULL : calloc(n, sizeof *names);
    if (!rc && nadd && !names) rc = sib_err_set(err, SIB_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc && nadd; i++)
        if (!skip[i] && !(names[i] = xstrdup(cols[i].name))) rc = sib_err_set(err, SIB_ENOMEM, "out of memory");
    if (nc) t->cols = nc; /* a grown array is harmless even if we stop here */
    if (!rc && nadd) {
        for (size_t i = 0; i < n; i++) {
            if (skip[i]) continue;
            sch_column *col = &t->cols[t->ncols++];
            *col = (sch_column){ .name = names[i], .type = cols[i].type, .position = -1, .order = SCH_ORDER_NONE,
                                 .kind = cols[i].is_static ? SCH_COL_STATIC : SCH_COL_REGULAR, .id = t->next_col_id++ };
            forget_dropped(t, cols[i].name); /* a re-added column is live again */
        }
        table_sort_columns(t);
        catalog_bump_version(c);
    } else if (names) {
        for (size_t i = 0; i < n; i++) free(names[i]);
    }
    free(names);
    free(skip);
    if (!rc && !nadd) return 1;
    return rc;
}

int sch_catalog_alter_drop(sch_catalog *c, const char *ks, const char *name, const char *const *cols, size_t n,
                           int64_t timestamp_us, bool if_exists, sib_err *err)
{
    sch_keyspace *k;
    sch_table *t;
    int rc = find_table_for_ddl(c, ks, name, false, &k, &t, err);
    if (rc) return rc;
    size_t ndrop = 0;
    for (size_t i = 0; i < n; i++) {
        const sch_column *col = sch_table_column_by_name(t, cols[i]);
        if (!col) {
            if (if_exists) continue;
            return sib_err_set(err, SIB_EINVAL, "Column %s was not found in table '%s.%s'", cols[i], ks, name);
        }
        if ((rc = derive_check_alter_column(t, cols[i], "drop", err))) return rc;
        if (col->kind == SCH_COL_PARTITION_KEY || col->kind == SCH_COL_CLUSTERING)
            return sib_err_set(err, SIB_EINVAL, "Cannot drop PRIMARY KEY column %s", cols[i]);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(cols[j], cols[i])) return sib_err_set(err, SIB_EINVAL, "Column %s was not found in table '%s.%s'", cols[i], ks, name);
        ndrop++;
    }
    if (!ndrop) return 1;
    sch_dropped_column *nd = realloc(t->dropped, (t->ndropped + ndrop) * sizeof *nd);
    if (!nd) return sib_err_set(err, SIB_ENOMEM, "out of memory");
    t->dropped = nd;
    for (size_t i = 0; i < n; i++) {
        const sch_column *col = sch_table_column_by_name(t, cols[i]);
        if (!col) continue;
        forget_dropped(t, col->name); /* replaces an older drop record of the same name */
        sch_dropped_column *d = &t->dropped[t->ndropped++];
        d->name = col->name; /* ownership moves from the column */
        d->type = col->type;
        d->kind = col->kind;
        d->id = col->id;
        d->dropped_time_us = timestamp_us;
        size_t idx = col->index;
        memmove(&t->cols[idx], &t->cols[idx + 1], (t->ncols - idx - 1) * sizeof *t->cols);
        t->ncols--;
        table_sort_columns(t);
    }
    catalog_bump_version(c);
    return 0;
}

int sch_catalog_alter_rename(sch_catalog *c, const char *ks, const char *name, const char *const *from,
                             const char *const *to, size_t n, sib_err *err)
{
    sch_keyspace *k;
    sch_table *t;
    int rc = find_table_for_ddl(c, ks, name, false, &k, &t, err);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        const sch_column *col = sch_table_column_by_name(t, from[i]);
        bool renamed_away = false, taken = false;
        for (size_t j = 0; j < i; j++) {
            renamed_away |= !strcmp(from[j], from[i]);
            taken |= !strcmp(to[j], to[i]);
        }
        if (!col || renamed_away)
            return sib_err_set(err, SIB_EINVAL, "Column %s was not found in table %s.%s", from[i], ks, name);
        if ((rc = derive_check_alter_column(t, from[i], "rename", err))) return rc;
        if (col->kind != SCH_COL_PARTITION_KEY && col->kind != SCH_COL_CLUSTERING)
            return sib_err_set(err, SIB_EINVAL, "Cannot rename non PRIMARY KEY column %s", from[i]);
        const sch_column *other = sch_table_column_by_name(t, to[i]);
        bool freed = false;
        for (size_t j = 0; j < i; j++) freed |= !strcmp(from[j], to[i]);
        if ((other && !freed) || taken)
            return sib_err_set(err, SIB_EINVAL,
                               "Cannot rename column %s to %s in table '%s.%s'; another column with that name already exists",
                               from[i], to[i], ks, name);
    }
    char **names = calloc(n ? n : 1, sizeof *names);
    if (!names) return sib_err_set(err, SIB_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!(names[i] = xstrdup(to[i]))) {
            for (size_t j = 0; j < i; j++) free(names[j]);
            free(names);
            return sib_err_set(err, SIB_ENOMEM, "out of memory");
        }
    /* resolve all sources first so chained renames (a->b AND b->a) swap */
    sch_column **targets = calloc(n ? n : 1, sizeof *targets);
    if (!targets) {
        for (size_t j = 0; j < n; j++) free(names[j]);
        free(names);
        return sib_err_set(err, SIB_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) targets[i] = (sch_column *)sch_table_column_by_name(t, from[i]);
    for (size_t i = 0; i < n; i++) {
        free((char *)targets[i]->name);
        targets[i]->name = names[i];
    }
    free(targets);
    free(names);
    table_sort_columns(t);
    catalog_bump_version(c);
    return 0;
}

int sch_catalog_alter_options(sch_catalog *c, const char *ks, const char *name, const sch_prop *props, size_t nprops,
                              sib_err *err)
{
    sch_keyspace *k;
    sch_table *t;
    int rc = find_table_for_ddl(c, ks, name, false, &k, &t, err);
    if (rc) return rc;
    sch_table_opts o;
    if (opts_copy(&o, &t->opts)) return sib_err_set(err, SIB_ENOMEM, "out of memory");
    rc = opts_apply(&o, props, nprops, err);
    if (!rc && t->counter && o.default_time_to_live > 0)
        rc = sib_err_set(err, SIB_EINVAL, "Cannot set default_time_to_live on a table with counters");
    if (rc) { opts_free(&o); return rc; }
    opts_free(&t->opts);
    t->opts = o;
    catalog_bump_version(c);
    return 0;
}
