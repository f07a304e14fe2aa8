/* options.c: table options (WITH ...) and keyspace properties (replication,
 * durable_writes), with Cassandra 4.0's defaults, short-name expansion and
 * validation messages (TableParams.validate, KeyspaceParams, the replication
 * strategies' validateOptions).
 *
 * Error classes: unknown property / wrong property shape -> SyntaxError
 * (PropertyDefinitions), bad option values -> ConfigurationException.
 */
#include "schema_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- string maps ---- */

const char *sch_strmap_get(const sch_strmap *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->kv[i].key, key)) return m->kv[i].value;
    return NULL;
}

void strmap_free(sch_strmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->kv[i].key);
        free(m->kv[i].value);
    }
    free(m->kv);
    m->kv = NULL;
    m->n = 0;
}

int strmap_set(sch_strmap *m, const char *k, const char *v)
{
    size_t i = 0;
    while (i < m->n && strcmp(m->kv[i].key, k) < 0) i++;
    char *nv = xstrdup(v);
    if (!nv) return SIB_ENOMEM;
    if (i < m->n && !strcmp(m->kv[i].key, k)) {
        free(m->kv[i].value);
        m->kv[i].value = nv;
        return 0;
    }
    char *nk = xstrdup(k);
    sch_kv *kv = nk ? realloc(m->kv, (m->n + 1) * sizeof *kv) : NULL;
    if (!kv) { free(nk); free(nv); return SIB_ENOMEM; }
    m->kv = kv;
    memmove(&kv[i + 1], &kv[i], (m->n - i) * sizeof *kv);
    kv[i].key = nk;
    kv[i].value = nv;
    m->n++;
    return 0;
}

int strmap_copy(sch_strmap *dst, const sch_strmap *src)
{
    dst->kv = NULL;
    dst->n = 0;
    for (size_t i = 0; i < src->n; i++)
        if (strmap_set(dst, src->kv[i].key, src->kv[i].value)) { strmap_free(dst); return SIB_ENOMEM; }
    return 0;
}

void strmap_serialize(const sch_strmap *m, const sch_type *type, sib_buf *out)
{
    (void)type; /* keys are already sorted bytewise, which is text's order */
    sib_buf_be32(out, (uint32_t)m->n);
    for (size_t i = 0; i < m->n; i++) {
        size_t kl = strlen(m->kv[i].key), vl = strlen(m->kv[i].value);
        sib_buf_be32(out, (uint32_t)kl);
        sib_buf_append(out, m->kv[i].key, kl);
        sib_buf_be32(out, (uint32_t)vl);
        sib_buf_append(out, m->kv[i].value, vl);
    }
}

/* ---- table options ---- */

#define STCS "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy"
#define LZ4 "org.apache.cassandra.io.compress.LZ4Compressor"

int opts_init_default(sch_table_opts *o)
{
    memset(o, 0, sizeof *o);
    o->default_time_to_live = 0;
    o->gc_grace_seconds = 864000;
    o->bloom_filter_fp_chance = 0.01;
    o->crc_check_chance = 1.0;
    o->max_index_interval = 2048;
    o->min_index_interval = 128;
    o->memtable_flush_period_in_ms = 0;
    o->cdc = false;
    o->comment = xstrdup("");
    o->speculative_retry = xstrdup("99p");
    o->additional_write_policy = xstrdup("99p");
    o->read_repair = xstrdup("BLOCKING");
    int rc = !o->comment || !o->speculative_retry || !o->additional_write_policy || !o->read_repair;
    rc |= strmap_set(&o->caching, "keys", "ALL") | strmap_set(&o->caching, "rows_per_partition", "NONE");
    rc |= strmap_set(&o->compaction, "class", STCS) | strmap_set(&o->compaction, "max_threshold", "32") |
          strmap_set(&o->compaction, "min_threshold", "4");
    rc |= strmap_set(&o->compression, "chunk_length_in_kb", "16") | strmap_set(&o->compression, "class", LZ4);
    if (rc) { opts_free(o); return SIB_ENOMEM; }
    return 0;
}

void opts_free(sch_table_opts *o)
{
    free(o->comment);
    free(o->speculative_retry);
    free(o->additional_write_policy);
    free(o->read_repair);
    strmap_free(&o->caching);
    strmap_free(&o->compaction);
    strmap_free(&o->compression);
    memset(o, 0, sizeof *o);
}

int opts_copy(sch_table_opts *dst, const sch_table_opts *src)
{
    *dst = *src;
    dst->comment = xstrdup(src->comment);
    dst->speculative_retry = xstrdup(src->speculative_retry);
    dst->additional_write_policy = xstrdup(src->additional_write_policy);
    dst->read_repair = xstrdup(src->read_repair);
    memset(&dst->caching, 0, sizeof dst->caching);
    memset(&dst->compaction, 0, sizeof dst->compaction);
    memset(&dst->compression, 0, sizeof dst->compression);
    int rc = !dst->comment || !dst->speculative_retry || !dst->additional_write_policy || !dst->read_repair;
    rc |= strmap_copy(&dst->caching, &src->caching) | strmap_copy(&dst->compaction, &src->compaction) |
          strmap_copy(&dst->compression, &src->compression);
    if (rc) { opts_free(dst); return SIB_ENOMEM; }
    return 0;
}

static int want_scalar(const sch_prop *p, sib_err *err)
{
    if (p->is_map) return sib_err_set(err, SIB_ESYNTAX, "Invalid value for property '%s'. It should be a string", p->name);
    return 0;
}

static int want_map(const sch_prop *p, sib_err *err)
{
    if (!p->is_map) return sib_err_set(err, SIB_ESYNTAX, "Invalid value for property '%s'. It should be a map.", p->name);
    return 0;
}

static bool parse_int_str(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno) return false;
    *out = v;
    return true;
}

static int prop_int(const sch_prop *p, int32_t *out, sib_err *err)
{
    int rc = want_scalar(p, err);
    if (rc) return rc;
    int64_t v;
    if (!parse_int_str(p->value, &v) || v < INT32_MIN || v > INT32_MAX)
        return sib_err_set(err, SIB_ESYNTAX, "Invalid integer value %s for '%s'", p->value, p->name);
    *out = (int32_t)v;
    return 0;
}

static int prop_double(const sch_prop *p, double *out, sib_err *err)
{
    int rc = want_scalar(p, err);
    if (rc) return rc;
    char *end;
    double v = strtod(p->value, &end);
    if (!*p->value || *end) return sib_err_set(err, SIB_ESYNTAX, "Invalid double value %s for '%s'", p->value, p->name);
    *out = v;
    return 0;
}

static int prop_bool(const sch_prop *p, bool *out, sib_err *err)
{
    int rc = want_scalar(p, err);
    if (rc) return rc;
    if (!strcasecmp(p->value, "true")) *out = true;
    else if (!strcasecmp(p->value, "false")) *out = false;
    else
        return sib_err_set(err, SIB_ESYNTAX, "Invalid boolean value %s for '%s'. Only 'true' and 'false' are allowed.",
                           p->value, p->name);
    return 0;
}

static int prop_str(const sch_prop *p, char **slot, sib_err *err)
{
    int rc = want_scalar(p, err);
    if (rc) return rc;
    char *d = xstrdup(p->value);
    if (!d) return SIB_ENOMEM;
    free(*slot);
    *slot = d;
    return 0;
}

/* Expands a short class name within a package, e.g. LZ4Compressor. */
static int expand_class(const char *v, const char *pkg, const char *const *known, size_t nknown, char *dst, size_t cap)
{
    const char *shortname = v;
    size_t pl = strlen(pkg);
    if (!strncmp(v, pkg, pl)) shortname = v + pl;
    for (size_t i = 0; i < nknown; i++)
        if (!strcmp(shortname, known[i])) {
            snprintf(dst, cap, "%s%s", pkg, known[i]);
            return 0;
        }
    return -1;
}

static int apply_compaction(sch_table_opts *o, const sch_prop *p, sib_err *err)
{
    static const char *const known[] = { "SizeTieredCompactionStrategy", "LeveledCompactionStrategy",
                                         "TimeWindowCompactionStrategy", "UnifiedCompactionStrategy" };
    int rc = want_map(p, err);
    if (rc) return rc;
    sch_strmap m = { 0 };
    const char *cls = NULL;
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->keys[i], "class")) cls = p->values[i];
    if (!cls) return sib_err_set(err, SIB_ECONFIG, "Missing sub-option 'class' for the 'compaction' option.");
    char full[256];
    if (expand_class(cls, "org.apache.cassandra.db.compaction.", known, SIB_ARRAY_LEN(known), full, sizeof full))
        return sib_err_set(err, SIB_ECONFIG, "Unable to find compaction strategy class '%s'", cls);
    for (size_t i = 0; i < p->n && !rc; i++) {
        const char *k = p->keys[i], *v = p->values[i];
        if (!strcmp(k, "min_threshold") || !strcmp(k, "max_threshold")) {
            int64_t x;
            if (!parse_int_str(v, &x) || x < 0)
                rc = sib_err_set(err, SIB_ECONFIG, "%s is not a parsable int (base10) for %s", v, k);
        }
        if (!rc) rc = strmap_set(&m, k, !strcmp(k, "class") ? full : v);
    }
    if (!rc && !sch_strmap_get(&m, "max_threshold")) rc = strmap_set(&m, "max_threshold", "32");
    if (!rc && !sch_strmap_get(&m, "min_threshold")) rc = strmap_set(&m, "min_threshold", "4");
    if (!rc) {
        int64_t mn = 0, mx = 0;
        parse_int_str(sch_strmap_get(&m, "min_threshold"), &mn);
        parse_int_str(sch_strmap_get(&m, "max_threshold"), &mx);
        if (mn < 2) rc = sib_err_set(err, SIB_ECONFIG, "Disabling compaction by setting compaction thresholds to 0 has been removed, set the compaction option 'enabled' to false instead.");
        else if (mx < mn) rc = sib_err_set(err, SIB_ECONFIG, "max_threshold cannot be less than min_threshold");
    }
    if (rc) { strmap_free(&m); return rc == SIB_ENOMEM ? sib_err_set(err, rc, "out of memory") : rc; }
    strmap_free(&o->compaction);
    o->compaction = m;
    return 0;
}

static int apply_compression(sch_table_opts *o, const sch_prop *p, sib_err *err)
{
    static const char *const known[] = { "LZ4Compressor", "SnappyCompressor", "DeflateCompressor", "ZstdCompressor",
                                         "NoopCompressor" };
    int rc = want_map(p, err);
    if (rc) return rc;
    sch_strmap m = { 0 };
    bool disabled = false;
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->keys[i], "enabled") && !strcasecmp(p->values[i], "false")) disabled = true;
    if (disabled) {
        rc = strmap_set(&m, "enabled", "false");
    } else {
        const char *cls = LZ4;
        for (size_t i = 0; i < p->n; i++)
            if (!strcmp(p->keys[i], "class") || !strcmp(p->keys[i], "sstable_compression")) cls = p->values[i];
        char full[256];
        if (expand_class(cls, "org.apache.cassandra.io.compress.", known, SIB_ARRAY_LEN(known), full, sizeof full))
            return sib_err_set(err, SIB_ECONFIG, "Could not create Compression for type %s", cls);
        rc = strmap_set(&m, "class", full);
        for (size_t i = 0; i < p->n && !rc; i++) {
            const char *k = p->keys[i], *v = p->values[i];
            if (!strcmp(k, "class") || !strcmp(k, "sstable_compression") || !strcmp(k, "enabled")) continue;
            if (!strcmp(k, "chunk_length_kb")) k = "chunk_length_in_kb";
            if (!strcmp(k, "chunk_length_in_kb")) {
                int64_t x;
                if (!parse_int_str(v, &x) || x <= 0 || (x & (x - 1)))
                    rc = sib_err_set(err, SIB_ECONFIG, "chunk_length_in_kb must be a power of 2");
            } else if (strcmp(k, "crc_check_chance") && strcmp(k, "min_compress_ratio") &&
                       strcmp(k, "max_compressed_length") && strcmp(k, "compression_level")) {
                rc = sib_err_set(err, SIB_ECONFIG, "Unknown compression options %s", k);
            }
            if (!rc) rc = strmap_set(&m, k, v);
        }
        if (!rc && !sch_strmap_get(&m, "chunk_length_in_kb")) rc = strmap_set(&m, "chunk_length_in_kb", "16");
    }
    if (rc) { strmap_free(&m); return rc == SIB_ENOMEM ? sib_err_set(err, rc, "out of memory") : rc; }
    strmap_free(&o->compression);
    o->compression = m;
    return 0;
}

static int apply_caching(sch_table_opts *o, const sch_prop *p, sib_err *err)
{
    int rc = want_map(p, err);
    if (rc) return rc;
    sch_strmap m = { 0 };
    rc = strmap_copy(&m, &o->caching);
    for (size_t i = 0; i < p->n && !rc; i++) {
        const char *k = p->keys[i], *v = p->values[i];
        int64_t x;
        if (!strcmp(k, "keys")) {
            if (strcasecmp(v, "ALL") && strcasecmp(v, "NONE"))
                rc = sib_err_set(err, SIB_ECONFIG, "Invalid value '%s' for caching sub-option 'keys': only 'ALL' and 'NONE' are accepted", v);
            else rc = strmap_set(&m, k, strcasecmp(v, "ALL") ? "NONE" : "ALL");
        } else if (!strcmp(k, "rows_per_partition")) {
            if (strcasecmp(v, "ALL") && strcasecmp(v, "NONE") && !(parse_int_str(v, &x) && x >= 0))
                rc = sib_err_set(err, SIB_ECONFIG, "Invalid value '%s' for caching sub-option 'rows_per_partition': only 'ALL', 'NONE' or a positive integer are accepted", v);
            else rc = strmap_set(&m, k, !strcasecmp(v, "ALL") ? "ALL" : !strcasecmp(v, "NONE") ? "NONE" : v);
        } else {
            rc = sib_err_set(err, SIB_ECONFIG, "Invalid caching sub-options %s: only 'keys' and 'rows_per_partition' are allowed", k);
        }
    }
    if (rc) { strmap_free(&m); return rc; }
    strmap_free(&o->caching);
    o->caching = m;
    return 0;
}

static bool valid_spec_retry(const char *v)
{
    if (!strcasecmp(v, "NONE") || !strcasecmp(v, "ALWAYS")) return true;
    char *end;
    double x = strtod(v, &end);
    if (end == v || x < 0) return false;
    return !strcasecmp(end, "p") || !strcasecmp(end, "ms") || !strcasecmp(end, "PERCENTILE");
}

int opts_apply(sch_table_opts *o, const sch_prop *props, size_t n, sib_err *err)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++)
            if (!strcmp(props[i].name, props[j].name))
                return sib_err_set(err, SIB_ESYNTAX, "Multiple definition for property %s", props[i].name);
        const sch_prop *p = &props[i];
        const char *k = p->name;
        int rc;
        if (!strcmp(k, "comment")) rc = prop_str(p, &o->comment, err);
        else if (!strcmp(k, "default_time_to_live")) rc = prop_int(p, &o->default_time_to_live, err);
        else if (!strcmp(k, "gc_grace_seconds")) rc = prop_int(p, &o->gc_grace_seconds, err);
        else if (!strcmp(k, "bloom_filter_fp_chance")) rc = prop_double(p, &o->bloom_filter_fp_chance, err);
        else if (!strcmp(k, "crc_check_chance")) rc = prop_double(p, &o->crc_check_chance, err);
        else if (!strcmp(k, "max_index_interval")) rc = prop_int(p, &o->max_index_interval, err);
        else if (!strcmp(k, "min_index_interval")) rc = prop_int(p, &o->min_index_interval, err);
        else if (!strcmp(k, "memtable_flush_period_in_ms")) rc = prop_int(p, &o->memtable_flush_period_in_ms, err);
        else if (!strcmp(k, "cdc")) rc = prop_bool(p, &o->cdc, err);
        else if (!strcmp(k, "speculative_retry") || !strcmp(k, "additional_write_policy")) {
            rc = want_scalar(p, err);
            if (!rc && !valid_spec_retry(p->value))
                rc = sib_err_set(err, SIB_ECONFIG, "Invalid value %s for option '%s'", p->value, k);
            if (!rc) rc = prop_str(p, k[0] == 's' ? &o->speculative_retry : &o->additional_write_policy, err);
        } else if (!strcmp(k, "read_repair")) {
            rc = want_scalar(p, err);
            if (!rc && strcasecmp(p->value, "BLOCKING") && strcasecmp(p->value, "NONE"))
                rc = sib_err_set(err, SIB_ECONFIG, "Invalid value %s for option '%s'", p->value, k);
            if (!rc) rc = prop_str(p, &o->read_repair, err);
            if (!rc) for (char *c = o->read_repair; *c; c++) *c = (char)toupper((unsigned char)*c);
        } else if (!strcmp(k, "compaction")) rc = apply_compaction(o, p, err);
        else if (!strcmp(k, "compression")) rc = apply_compression(o, p, err);
        else if (!strcmp(k, "caching")) rc = apply_caching(o, p, err);
        else if (!strcmp(k, "extensions")) {
            /* DESCRIBE prints `extensions = {}` as Cassandra 4.0 does, so the
             * empty map must read back; Sibyl implements no extension. */
            if (!p->is_map) rc = sib_err_set(err, SIB_ESYNTAX, "Invalid value for property 'extensions': a map is expected");
            else if (p->n) rc = sib_err_set(err, SIB_ECONFIG, "Unknown table extension '%s'", p->keys[0]);
            else rc = 0;
        } else rc = sib_err_set(err, SIB_ESYNTAX, "Unknown property '%s'", k);
        if (rc) return rc == SIB_ENOMEM ? sib_err_set(err, rc, "out of memory") : rc;
    }
    return opts_validate(o, err);
}

int opts_validate(const sch_table_opts *o, sib_err *err)
{
    if (o->bloom_filter_fp_chance <= 0 || o->bloom_filter_fp_chance > 1)
        return sib_err_set(err, SIB_ECONFIG, "bloom_filter_fp_chance must be larger than 0.0 and less than or equal to 1.0 (got %g)",
                           o->bloom_filter_fp_chance);
    if (o->crc_check_chance < 0 || o->crc_check_chance > 1 || isnan(o->crc_check_chance))
        return sib_err_set(err, SIB_ECONFIG, "crc_check_chance should be between 0.0 and 1.0 (got %g)", o->crc_check_chance);
    if (o->default_time_to_live < 0)
        return sib_err_set(err, SIB_ECONFIG, "default_time_to_live must be greater than or equal to 0 (got %d)",
                           o->default_time_to_live);
    if (o->default_time_to_live > 630720000)
        return sib_err_set(err, SIB_ECONFIG, "default_time_to_live must be less than or equal to 630720000 (got %d)",
                           o->default_time_to_live);
    if (o->gc_grace_seconds < 0)
        return sib_err_set(err, SIB_ECONFIG, "gc_grace_seconds must be greater than or equal to 0 (got %d)", o->gc_grace_seconds);
    if (o->min_index_interval < 1)
        return sib_err_set(err, SIB_ECONFIG, "min_index_interval must be greater than or equal to 1 (got %d)", o->min_index_interval);
    if (o->max_index_interval < o->min_index_interval)
        return sib_err_set(err, SIB_ECONFIG, "max_index_interval must be greater than or equal to min_index_interval (%d) (got %d)",
                           o->min_index_interval, o->max_index_interval);
    if (o->memtable_flush_period_in_ms < 0)
        return sib_err_set(err, SIB_ECONFIG, "memtable_flush_period_in_ms must be greater than or equal to 0 (got %d)",
                           o->memtable_flush_period_in_ms);
    return 0;
}

/* ---- keyspace properties ---- */

#define LOCATOR "org.apache.cassandra.locator."

static int check_rf(const char *v, sib_err *err)
{
    /* "N" or "N/T" (transient replicas) */
    int64_t full;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", v);
    char *slash = strchr(buf, '/');
    if (slash) *slash = 0;
    if (!parse_int_str(buf, &full)) return sib_err_set(err, SIB_ECONFIG, "Replication factor must be numeric; found %s", v);
    if (full < 0) return sib_err_set(err, SIB_ECONFIG, "Replication factor must be non-negative; found %s", v);
    if (slash) {
        int64_t tr;
        if (!parse_int_str(slash + 1, &tr) || tr < 0 || tr > full)
            return sib_err_set(err, SIB_ECONFIG, "Replication factor must be numeric; found %s", v);
    }
    return 0;
}

/* The options being built: user options, then defaults and expansions. */
#define REPL_MAX_OPTS 64
typedef struct repl_opts {
    const char *k[REPL_MAX_OPTS], *v[REPL_MAX_OPTS];
    size_t n;
} repl_opts;

static ssize_t opts_find(const repl_opts *o, const char *k)
{
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->k[i], k)) return (ssize_t)i;
    return -1;
}

static int opts_put_absent(repl_opts *o, const char *k, const char *v, sib_err *err)
{
    if (opts_find(o, k) >= 0) return 0;
    if (o->n == REPL_MAX_OPTS) return sib_err_set(err, SIB_ECONFIG, "too many replication options (max %d)", REPL_MAX_OPTS);
    o->k[o->n] = k;
    o->v[o->n++] = v;
    return 0;
}

static void opts_remove(repl_opts *o, size_t i)
{
    memmove(&o->k[i], &o->k[i + 1], (o->n - i - 1) * sizeof o->k[0]);
    memmove(&o->v[i], &o->v[i + 1], (o->n - i - 1) * sizeof o->v[0]);
    o->n--;
}

static bool known_dc(const sch_ks_env *env, const char *dc)
{
    for (size_t i = 0; i < env->ndcs; i++)
        if (!strcmp(env->dcs[i], dc)) return true;
    return false;
}

/* NetworkTopologyStrategy's defaults and checks, in Cassandra's order
 * (its prepareOptions, then validateExpectedOptions and validateOptions):
 * no option at all means 'replication_factor' = the previous one (ALTER
 * from SimpleStrategy) or default_keyspace_rf; 'replication_factor'
 * (exactly that spelling) expands to every known datacenter not named,
 * keeping on ALTER the datacenters the keyspace already had; a factor of
 * "0" drops the datacenter; then the map must name at least one
 * datacenter, and only known ones. Without env (no cluster view) nothing
 * is expanded and any name is taken. */
static int nts_prepare(const char *ks, repl_opts *o, const sch_strmap *prev, const sch_ks_env *env, char *rfbuf,
                       size_t rfcap, sib_err *err)
{
    int rc = 0;
    const char *prev_rf = prev ? sch_strmap_get(prev, "replication_factor") : NULL;
    if (!o->n) {
        if (!prev_rf) snprintf(rfbuf, rfcap, "%d", env ? env->default_rf : 1);
        rc = opts_put_absent(o, "replication_factor", prev_rf ? prev_rf : rfbuf, err);
    }
    ssize_t at = opts_find(o, "replication_factor");
    const char *rf = at >= 0 ? o->v[at] : NULL;
    if (rf && env) {
        opts_remove(o, (size_t)at);
        for (size_t i = 0; !rc && prev && i < prev->n; i++)
            if (strcmp(prev->kv[i].key, "class") && strcmp(prev->kv[i].key, "replication_factor"))
                rc = opts_put_absent(o, prev->kv[i].key, prev->kv[i].value, err);
        for (size_t i = 0; !rc && i < env->ndcs; i++) rc = opts_put_absent(o, env->dcs[i], rf, err);
    }
    if (rc) return rc;
    for (size_t i = 0; i < o->n;) {
        if (!strcmp(o->v[i], "0")) opts_remove(o, i);
        else i++;
    }
    if (!o->n) return sib_err_set(err, SIB_ECONFIG, "Configuration for at least one datacenter must be present");
    for (size_t i = 0; env && i < o->n; i++)
        if (!known_dc(env, o->k[i]))
            return sib_err_set(err, SIB_ECONFIG,
                               "Unrecognized strategy option {%s} passed to NetworkTopologyStrategy for keyspace %s",
                               o->k[i], ks);
    for (size_t i = 0; env && i < o->n; i++)
        if (!strcasecmp(o->k[i], "replication_factor"))
            return sib_err_set(err, SIB_ECONFIG, "replication_factor should not appear as an option to NetworkTopologyStrategy");
    return 0;
}

/* The replication map of CREATE/ALTER KEYSPACE (prev: the keyspace's
 * current map on ALTER, else NULL), as Cassandra's ReplicationParams and
 * strategies prepare and check it. */
static int build_replication(const char *ks, const sch_prop *p, const sch_strmap *prev, const sch_ks_env *env,
                             sch_strmap *out, sib_err *err)
{
    const char *cls = NULL;
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->keys[i], "class")) cls = p->values[i];
    if (!cls) return sib_err_set(err, SIB_ECONFIG, "Missing replication strategy class");
    const char *shortname = strncmp(cls, LOCATOR, strlen(LOCATOR)) ? cls : cls + strlen(LOCATOR);
    bool simple = !strcmp(shortname, "SimpleStrategy"), nts = !strcmp(shortname, "NetworkTopologyStrategy");
    if (!strcmp(shortname, "LocalStrategy") || !strcmp(shortname, "EverywhereStrategy"))
        return sib_err_set(err, SIB_ECONFIG, "Unable to use given strategy class: %s is reserved for internal use.", shortname);
    if (!simple && !nts)
        return sib_err_set(err, SIB_ECONFIG, "Unable to find replication strategy class '%s%s'",
                           strchr(cls, '.') ? "" : LOCATOR, cls);
    repl_opts o = {.n = 0};
    int rc = 0;
    for (size_t i = 0; i < p->n && !rc; i++) {
        const char *k = p->keys[i], *v = p->values[i];
        if (!strcmp(k, "class")) continue;
        if (opts_find(&o, k) >= 0) return sib_err_set(err, SIB_ESYNTAX, "Multiple definition for property %s", k);
        if (simple && strcmp(k, "replication_factor"))
            return sib_err_set(err, SIB_ECONFIG, "Unrecognized strategy option {%s} passed to SimpleStrategy for keyspace %s", k, ks);
        if ((rc = check_rf(v, err)) || (rc = opts_put_absent(&o, k, v, err))) return rc;
    }
    char rfbuf[16];
    if (simple && !o.n) {
        /* no factor: the previous one (ALTER), else default_keyspace_rf */
        const char *prev_rf = prev ? sch_strmap_get(prev, "replication_factor") : NULL;
        if (!prev_rf && !env) return sib_err_set(err, SIB_ECONFIG, "SimpleStrategy requires a replication_factor strategy option.");
        if (!prev_rf) snprintf(rfbuf, sizeof rfbuf, "%d", env->default_rf);
        rc = opts_put_absent(&o, "replication_factor", prev_rf ? prev_rf : rfbuf, err);
    }
    if (!rc && nts) rc = nts_prepare(ks, &o, prev, env, rfbuf, sizeof rfbuf, err);
    if (rc) return rc;
    char full[128];
    snprintf(full, sizeof full, LOCATOR "%s", shortname);
    sch_strmap m = { 0 };
    rc = strmap_set(&m, "class", full);
    for (size_t i = 0; !rc && i < o.n; i++) rc = strmap_set(&m, o.k[i], o.v[i]);
    if (rc) {
        strmap_free(&m);
        return sib_err_set(err, SIB_ENOMEM, "out of memory");
    }
    *out = m;
    return 0;
}

int ks_props_apply(const char *ks, sch_strmap *repl, bool *durable, bool creating, const sch_prop *props, size_t n,
                   const sch_ks_env *env, sib_err *err)
{
    const sch_prop *rp = NULL;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < i; j++)
            if (!strcmp(props[i].name, props[j].name))
                return sib_err_set(err, SIB_ESYNTAX, "Multiple definition for property %s", props[i].name);
        if (!strcmp(props[i].name, "replication")) {
            int rc = want_map(&props[i], err);
            if (rc) return rc;
            rp = &props[i];
        } else if (!strcmp(props[i].name, "durable_writes")) {
            int rc = prop_bool(&props[i], durable, err);
            if (rc) return rc;
        } else {
            return sib_err_set(err, SIB_ESYNTAX, "Unknown property '%s'", props[i].name);
        }
    }
    if (!rp) return creating ? sib_err_set(err, SIB_EINVAL, "Missing mandatory option 'replication'") : 0;
    sch_strmap m;
    int rc = build_replication(ks, rp, creating ? NULL : repl, env, &m, err);
    if (rc) return rc;
    strmap_free(repl);
    *repl = m;
    return 0;
}
