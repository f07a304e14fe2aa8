/* profile.c: cassandra-stress user profiles (YAML, read with libyaml).
 *
 * The subset of cassandra-stress's format (tools/cqlstress-example.yaml in
 * Apache Cassandra) sibyl-stress runs:
 *
 *   keyspace: stresscql                  # required
 *   keyspace_definition: |               # optional: run first; "already exists" is fine
 *     CREATE KEYSPACE stresscql WITH replication = {...};
 *   table: events                        # required
 *   table_definition: |                  # optional, run in the keyspace
 *     CREATE TABLE events (...)
 *   columnspec:                          # optional, per column
 *     - name: sensor
 *       size: uniform(4..8)              # text/blob length (default uniform(4..8))
 *       population: uniform(1..1000)     # distinct values (default uniform(1..100B))
 *       cluster: fixed(10)               # clustering columns: values per parent (default fixed(1))
 *   insert:
 *     partitions: fixed(1)               # partitions per insert operation (default fixed(1))
 *     batchtype: UNLOGGED                # LOGGED (default) or UNLOGGED
 *     select: fixed(1)/1                 # share of a partition's rows each insert writes
 *   queries:
 *     latest:
 *       cql: SELECT * FROM events WHERE sensor = ? LIMIT 10
 *       fields: samerow                  # samerow (default) or multirow
 *
 * Distributions: fixed(n), uniform(lo..hi), seq(lo..hi), gaussian(lo..hi[,stdvrng])
 * (also gauss/normal/norm), zipf(lo..hi[,s]); counts take k/m/b suffixes.
 * Anything else -- other top-level keys (token_range_queries,
 * extra_definitions, ...), other column / insert / query keys, exp/extreme
 * distributions, "~" inversion -- is an error naming it, never silently
 * ignored: a profile that runs here runs as its author meant.
 */
#include "stress.h"

#include <stdlib.h>
#include <strings.h>
#include <yaml.h>

typedef struct pctx {
    yaml_document_t *d;
    const char *path;
    sib_err *err;
} pctx;

static const char *scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int bad(const pctx *c, yaml_node_t *n, const char *what, const char *name)
{
    return sib_err_set(c->err, SIB_EINVAL, "profile %s line %zu: %s '%s'", c->path,
                       n ? n->start_mark.line + 1 : 0, what, name);
}

static char *dup_scalar(const pctx *c, yaml_node_t *n, const char *key, char **out)
{
    const char *s = scalar(n);
    if (!s) {
        bad(c, n, "expected a string for", key);
        return NULL;
    }
    free(*out);
    *out = strdup(s);
    if (!*out) sib_err_set(c->err, SIB_ENOMEM, "profile");
    return *out;
}

static int dist_value(const pctx *c, yaml_node_t *n, const char *key, stress_dist *d)
{
    const char *s = scalar(n);
    if (!s) return bad(c, n, "expected a distribution for", key);
    sib_err e;
    if (stress_dist_parse(s, d, &e) < 0)
        return sib_err_set(c->err, SIB_EINVAL, "profile %s line %zu: %s: %s", c->path, n->start_mark.line + 1, key,
                           e.msg);
    return 0;
}

/* A word that is either no or yes (case-insensitive): *is_yes tells which. */
static int one_of(const pctx *c, yaml_node_t *v, const char *problem, const char *no, const char *yes, bool *is_yes)
{
    const char *s = scalar(v);
    *is_yes = s && !strcasecmp(s, yes);
    if (!*is_yes && !(s && !strcasecmp(s, no))) return bad(c, v, problem, s ? s : "?");
    return 0;
}

/* Walks the pairs of a mapping node: fn(key, value) for each. */
typedef int (*pair_fn)(const pctx *c, const char *key, yaml_node_t *v, void *arg);

static int each_pair(const pctx *c, yaml_node_t *m, const char *what, pair_fn fn, void *arg)
{
    if (!m || m->type != YAML_MAPPING_NODE) return bad(c, m, "expected a mapping for", what);
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(c->d, p->key);
        const char *k = scalar(kn);
        if (!k) return bad(c, kn, "expected a scalar key in", what);
        int rc = fn(c, k, yaml_document_get_node(c->d, p->value), arg);
        if (rc < 0) return rc;
    }
    return 0;
}

/* ---- columnspec ---- */

static int column_key(const pctx *c, const char *k, yaml_node_t *v, void *arg)
{
    prof_column *col = arg;
    if (!strcmp(k, "name")) return dup_scalar(c, v, k, &col->name) ? 0 : c->err->code;
    if (!strcmp(k, "size")) return (col->has_size = true), dist_value(c, v, k, &col->size);
    if (!strcmp(k, "population")) return (col->has_population = true), dist_value(c, v, k, &col->population);
    if (!strcmp(k, "cluster")) return (col->has_cluster = true), dist_value(c, v, k, &col->cluster);
    return bad(c, v, "unsupported columnspec key", k);
}

static int load_columns(const pctx *c, yaml_node_t *seq, stress_profile *p)
{
    if (seq->type != YAML_SEQUENCE_NODE) return bad(c, seq, "expected a list for", "columnspec");
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    p->cols = calloc(n ? n : 1, sizeof(*p->cols));
    if (!p->cols) return sib_err_set(c->err, SIB_ENOMEM, "profile");
    for (size_t i = 0; i < n; i++) {
        prof_column *col = &p->cols[p->ncols++];
        int rc = each_pair(c, yaml_document_get_node(c->d, seq->data.sequence.items.start[i]), "columnspec entry",
                           column_key, col);
        if (rc < 0) return rc;
        if (!col->name) return bad(c, seq, "a columnspec entry has no", "name");
    }
    return 0;
}

/* ---- insert ---- */

/* "fixed(1)/1", "uniform(1..10)/10": a distribution over a denominator. */
static int select_value(const pctx *c, yaml_node_t *v, stress_profile *p)
{
    const char *s = scalar(v);
    const char *slash = s ? strrchr(s, '/') : NULL;
    char buf[128];
    if (!slash || (size_t)(slash - s) >= sizeof(buf) || !stress_parse_count(slash + 1, &p->select_den) ||
        p->select_den == 0)
        return bad(c, v, "expected dist/denominator (fixed(1)/1) for select, got", s ? s : "?");
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = 0;
    yaml_node_t tmp = *v;
    tmp.data.scalar.value = (yaml_char_t *)buf;
    int rc = dist_value(c, &tmp, "select", &p->select);
    if (rc == 0 && p->select.hi > p->select_den) return bad(c, v, "select above 1 in", s);
    return rc;
}

static int insert_key(const pctx *c, const char *k, yaml_node_t *v, void *arg)
{
    stress_profile *p = arg;
    if (!strcmp(k, "partitions")) return dist_value(c, v, k, &p->partitions);
    if (!strcmp(k, "select")) return select_value(c, v, p);
    if (!strcmp(k, "batchtype")) {
        bool unlogged;
        int rc = one_of(c, v, "batchtype must be LOGGED or UNLOGGED, not", "LOGGED", "UNLOGGED", &unlogged);
        p->batch_type = unlogged ? CQL_BATCHTYPE_UNLOGGED : CQL_BATCHTYPE_LOGGED;
        return rc;
    }
    return bad(c, v, "unsupported insert key", k);
}

/* ---- queries ---- */

static int query_key(const pctx *c, const char *k, yaml_node_t *v, void *arg)
{
    prof_query *q = arg;
    if (!strcmp(k, "cql")) return dup_scalar(c, v, k, &q->cql) ? 0 : c->err->code;
    if (!strcmp(k, "fields"))
        return one_of(c, v, "fields must be samerow or multirow, not", "samerow", "multirow", &q->multirow);
    return bad(c, v, "unsupported query key", k);
}

static int one_query(const pctx *c, const char *name, yaml_node_t *v, void *arg)
{
    stress_profile *p = arg;
    if (!strcasecmp(name, "insert")) return bad(c, v, "a query may not be named", name);
    if (strlen(name) >= STRESS_OP_NAME) return bad(c, v, "query name too long", name);
    prof_query *q = &p->queries[p->nqueries++];
    q->name = strdup(name);
    if (!q->name) return sib_err_set(c->err, SIB_ENOMEM, "profile");
    int rc = each_pair(c, v, name, query_key, q);
    if (rc == 0 && !q->cql) return bad(c, v, "no cql for query", name);
    return rc;
}

static int load_queries(const pctx *c, yaml_node_t *m, stress_profile *p)
{
    if (m->type != YAML_MAPPING_NODE) return bad(c, m, "expected a mapping for", "queries");
    size_t n = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
    p->queries = calloc(n ? n : 1, sizeof(*p->queries));
    if (!p->queries) return sib_err_set(c->err, SIB_ENOMEM, "profile");
    return each_pair(c, m, "queries", one_query, p);
}

/* ---- top level ---- */

static int top_key(const pctx *c, const char *k, yaml_node_t *v, void *arg)
{
    stress_profile *p = arg;
    if (!strcmp(k, "keyspace")) return dup_scalar(c, v, k, &p->keyspace) ? 0 : c->err->code;
    if (!strcmp(k, "keyspace_definition")) return dup_scalar(c, v, k, &p->keyspace_def) ? 0 : c->err->code;
    if (!strcmp(k, "table")) return dup_scalar(c, v, k, &p->table) ? 0 : c->err->code;
    if (!strcmp(k, "table_definition")) return dup_scalar(c, v, k, &p->table_def) ? 0 : c->err->code;
    if (!strcmp(k, "columnspec")) return load_columns(c, v, p);
    if (!strcmp(k, "insert")) return each_pair(c, v, k, insert_key, p);
    if (!strcmp(k, "queries")) return load_queries(c, v, p);
    return bad(c, v, "unsupported profile key", k);
}

int profile_load(const char *path, stress_profile **out, sib_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return sib_err_errno(err, "profile: cannot open %s", path);
    stress_profile *p = calloc(1, sizeof(*p));
    if (!p) {
        fclose(f);
        return sib_err_set(err, SIB_ENOMEM, "profile");
    }
    p->partitions = (stress_dist){.kind = DIST_FIXED, .lo = 1, .hi = 1};
    p->select = p->partitions;
    p->select_den = 1;
    p->batch_type = CQL_BATCHTYPE_LOGGED;
    yaml_parser_t yp;
    yaml_document_t d;
    int rc;
    yaml_parser_initialize(&yp);
    yaml_parser_set_input_file(&yp, f);
    if (!yaml_parser_load(&yp, &d)) {
        rc = sib_err_set(err, SIB_EINVAL, "profile %s: %s at line %zu", path, yp.problem ? yp.problem : "parse error",
                         yp.problem_mark.line + 1);
    } else {
        pctx c = {.d = &d, .path = path, .err = err};
        yaml_node_t *root = yaml_document_get_root_node(&d);
        rc = root ? each_pair(&c, root, "the profile", top_key, p)
                  : sib_err_set(err, SIB_EINVAL, "profile %s is empty", path);
        if (rc == 0 && (!p->keyspace || !p->table))
            rc = sib_err_set(err, SIB_EINVAL, "profile %s: keyspace and table are required", path);
        yaml_document_delete(&d);
    }
    yaml_parser_delete(&yp);
    fclose(f);
    if (rc < 0) {
        profile_destroy(p);
        return rc;
    }
    *out = p;
    return 0;
}

void profile_destroy(stress_profile *p)
{
    if (!p) return;
    free(p->keyspace);
    free(p->keyspace_def);
    free(p->table);
    free(p->table_def);
    for (size_t i = 0; i < p->ncols; i++) free(p->cols[i].name);
    free(p->cols);
    for (size_t i = 0; i < p->nqueries; i++) {
        free(p->queries[i].name);
        free(p->queries[i].cql);
    }
    free(p->queries);
    free(p);
}
