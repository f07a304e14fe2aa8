/* derive.c: bucketed partition keys, the schema side: BUCKET(col, width)
 * and SALT(n) in a table's partition key (docs/cql.md "Bucketed partition
 * keys").
 *
 * A derived column is an ordinary partition key column (drivers and
 * system_schema see it like any other); what makes it derived is recorded
 * next to the columns: its position in the partition key, the bucket width
 * (in the source column's units, and its text as written, for DESCRIBE) or
 * the salt count. The writes compute its value from the row (cql/), so the
 * rules that keep that value right live here:
 *   - the bucket's source is the FIRST clustering column, so that the
 *     buckets of one natural key, read in bucket order, give the rows in
 *     clustering order;
 *   - buckets are floor(v / width) * width: aligned on the UTC epoch (or
 *     0), negative values floor downwards (-1 ms is in the bucket starting
 *     at -width);
 *   - the salt hashes the encoded full clustering key (sch_ck_encode: the
 *     storage's own bytes, stable across versions), so a row always lands in
 *     the same salt; a static row would split across salts, hence SALT
 *     refuses static columns and tables without clustering columns;
 *   - a static row of a bucketed table would be one per bucket, not one per
 *     natural partition as a time-series user means it: BUCKET refuses
 *     static columns too.
 *   - renaming, dropping or retyping a derived column or a bucket's source
 *     would break the rule for the rows already written: refused.
 *
 * Persisted form (persist.c appends it after the options, only for a table
 * that has one, so other tables keep their bytes and schema version):
 *   u8 'D' | u8 flags (1 bucket, 2 salt)
 *   [bucket: u32 pk position | u64 width | str width text]
 *   [salt:   u32 pk position | u32 count]
 */
#include "schema_int.h"

#include <errno.h>
#include <stdlib.h>

#define DERIVE_TAG 'D'
#define SALT_MAX 1024
#define MS_PER_DAY 86400000LL
#define NS_PER_MS 1000000LL

static bool bucketable(sch_type_code code)
{
    switch (code) {
    case SCH_T_TIMESTAMP: case SCH_T_DATE: case SCH_T_TINYINT: case SCH_T_SMALLINT: case SCH_T_INT: case SCH_T_BIGINT:
        return true;
    default:
        return false;
    }
}

/* ---- units and values ---- */

int sch_bucket_units(const sch_type *type, const uint8_t *v, size_t len, int64_t *out, sib_err *err)
{
    size_t want = type ? sch_type_fixed_len(type) : 0;
    if (!type || !bucketable(type->code) || !want)
        return sib_err_set(err, SIB_EINVAL, "a bucket needs a timestamp, date or integer column");
    if (len != want || !v) return sib_err_set(err, SIB_EINVAL, "Invalid empty value for a bucketed column");
    switch (type->code) {
    case SCH_T_TINYINT: *out = (int8_t)v[0]; break;
    case SCH_T_SMALLINT: *out = (int16_t)(uint16_t)((unsigned)v[0] << 8 | v[1]); break;
    case SCH_T_INT: *out = (int32_t)get_be32(v); break;
    case SCH_T_DATE: *out = (int64_t)get_be32(v) - ((int64_t)1 << 31); break;
    default: *out = (int64_t)get_be64(v); break; /* timestamp, bigint */
    }
    return 0;
}

int sch_bucket_value(const sch_type *type, int64_t u, sib_buf *out, sib_err *err)
{
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    switch (type->code) {
    case SCH_T_TINYINT: lo = INT8_MIN; hi = INT8_MAX; break;
    case SCH_T_SMALLINT: lo = INT16_MIN; hi = INT16_MAX; break;
    case SCH_T_INT: lo = INT32_MIN; hi = INT32_MAX; break;
    case SCH_T_DATE: lo = -((int64_t)1 << 31); hi = ((int64_t)1 << 31) - 1; break;
    case SCH_T_TIMESTAMP: case SCH_T_BIGINT: break;
    default: return sib_err_set(err, SIB_EINVAL, "a bucket needs a timestamp, date or integer column");
    }
    if (u < lo || u > hi)
        return sib_err_set(err, SIB_EINVAL, "The bucket starting at %lld is out of range for %s", (long long)u,
                           sch_type_native_name(type->code));
    switch (type->code) {
    case SCH_T_TINYINT: sib_buf_u8(out, (uint8_t)(int8_t)u); break;
    case SCH_T_SMALLINT: sib_buf_u8(out, (uint8_t)((uint16_t)u >> 8)); sib_buf_u8(out, (uint8_t)u); break;
    case SCH_T_INT: sib_buf_be32(out, (uint32_t)(int32_t)u); break;
    case SCH_T_DATE: sib_buf_be32(out, (uint32_t)(u + ((int64_t)1 << 31))); break;
    default: sib_buf_be64(out, (uint64_t)u); break;
    }
    return out->oom ? sib_err_set(err, SIB_ENOMEM, "bucket value") : 0;
}

bool sch_bucket_floor(int64_t v, int64_t width, int64_t *start)
{
    if (width <= 0) return false;
    int64_t q = v / width, r = v % width;
    if (r < 0) q--; /* C truncates towards zero; buckets floor */
    __int128 s = (__int128)q * width;
    if (s < INT64_MIN) return false;
    *start = (int64_t)s;
    return true;
}

int sch_bucket_of(const sch_bucket *b, const uint8_t *v, size_t len, sib_buf *out, sib_err *err)
{
    int64_t u = 0, start;
    int rc = sch_bucket_units(b->source->type, v, len, &u, err);
    if (rc) return rc;
    if (!sch_bucket_floor(u, b->width, &start))
        return sib_err_set(err, SIB_EINVAL, "%s = %lld has no bucket of width %s", b->source->name, (long long)u,
                           b->width_text);
    return sch_bucket_value(b->col->type, start, out, err);
}

uint32_t sch_salt_of(uint32_t count, const uint8_t *ck, size_t cklen)
{
    if (count <= 1) return 0;
    uint64_t h = (uint64_t)sib_murmur3_h1(ck ? ck : (const uint8_t *)"", cklen);
    return (uint32_t)(h % count);
}

/* ---- table views ---- */

bool sch_table_bucket(const sch_table *t, sch_bucket *out)
{
    if (!t->has_bucket) return false;
    out->pk_pos = t->bucket_pk;
    out->col = &t->cols[t->bucket_pk];
    out->source = &t->cols[t->npk]; /* first clustering column */
    out->width = t->bucket_width;
    out->width_text = t->bucket_text;
    return true;
}

bool sch_table_salt(const sch_table *t, sch_salt *out)
{
    if (!t->has_salt) return false;
    out->pk_pos = t->salt_pk;
    out->col = &t->cols[t->salt_pk];
    out->count = t->salt_count;
    return true;
}

bool sch_table_has_derived(const sch_table *t) { return t->has_bucket || t->has_salt; }

bool sch_column_is_derived(const sch_table *t, const sch_column *col)
{
    if (!col || col->kind != SCH_COL_PARTITION_KEY) return false;
    return (t->has_bucket && (uint32_t)col->position == t->bucket_pk) ||
           (t->has_salt && (uint32_t)col->position == t->salt_pk);
}

void sch_bucket_cql(const sch_table *t, sib_buf *out)
{
    if (!t->has_bucket) return;
    sib_buf_printf(out, "BUCKET(");
    sch_ident_quote(t->cols[t->npk].name, out);
    sib_buf_printf(out, ", %s)", t->bucket_text);
}

void sch_salt_cql(const sch_table *t, sib_buf *out)
{
    if (t->has_salt) sib_buf_printf(out, "SALT(%u)", t->salt_count);
}

/* ---- CREATE TABLE ---- */

static bool parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s) return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

/* The width in the source's units, with the rules of docs/cql.md. */
static int bucket_width(const sch_derive_spec *d, const sch_type *type, int64_t *w, sib_err *err)
{
    const char *col = d->bucket_column, *txt = d->bucket_width;
    if (type->code != SCH_T_TIMESTAMP && type->code != SCH_T_DATE) {
        if (d->bucket_width_kind != SCH_LIT_INTEGER || !parse_i64(txt, w) || *w <= 0)
            return sib_err_set(err, SIB_EINVAL,
                               "Invalid width %s in BUCKET(%s, %s): a %s column takes a positive integer width", txt,
                               col, txt, sch_type_native_name(type->code));
        return 0;
    }
    const char *unit = type->code == SCH_T_DATE ? "whole days, e.g. 7d" : "a duration without months, e.g. 1h or 1d";
    if (d->bucket_width_kind != SCH_LIT_DURATION)
        return sib_err_set(err, SIB_EINVAL, "Invalid width %s in BUCKET(%s, %s): a %s column takes %s", txt, col, txt,
                           sch_type_native_name(type->code), unit);
    sib_buf b;
    sib_buf_init(&b);
    int64_t mo = 0, days = 0, ns = 0;
    int rc = sch_value_from_literal(sch_type_native(SCH_T_DURATION), SCH_LIT_DURATION, txt, strlen(txt), col, &b, err);
    if (!rc && duration_decode(b.p, b.len, &mo, &days, &ns)) rc = SIB_EINVAL;
    sib_buf_free(&b);
    bool ok = !rc && mo == 0 && days >= 0 && ns >= 0 && (days > 0 || ns > 0) && days < 106751991LL;
    if (ok && type->code == SCH_T_DATE) {
        ok = ns % (MS_PER_DAY * NS_PER_MS) == 0;
        *w = days + ns / (MS_PER_DAY * NS_PER_MS);
    } else if (ok) {
        ok = ns % NS_PER_MS == 0;
        *w = days * MS_PER_DAY + ns / NS_PER_MS;
    }
    if (!ok)
        return sib_err_set(err, SIB_EINVAL, "Invalid width %s in BUCKET(%s, %s): a %s column takes %s", txt, col, txt,
                           sch_type_native_name(type->code), unit);
    return 0;
}

static const sch_coldef *spec_col(const sch_table_spec *s, const char *name)
{
    for (size_t i = 0; i < s->ncols; i++)
        if (!strcmp(s->cols[i].name, name)) return &s->cols[i];
    return NULL;
}

static int check_bucket(const sch_table_spec *s, const sch_coldef **src, int64_t *w, sib_err *err)
{
    const sch_derive_spec *d = s->derive;
    const char *col = d->bucket_column;
    *src = spec_col(s, col);
    if (!*src) return sib_err_set(err, SIB_EINVAL, "Unknown column '%s' referenced in BUCKET(%s, %s)", col, col, d->bucket_width);
    if (!s->nck || strcmp(s->ck[0], col))
        return sib_err_set(err, SIB_EINVAL,
                           "BUCKET(%s, %s) needs %s as the first clustering column, so that bucket order is clustering order",
                           col, d->bucket_width, col);
    if (!bucketable((*src)->type->code))
        return sib_err_set(err, SIB_EINVAL, "BUCKET(%s, %s): %s must be a timestamp, date or integer column", col,
                           d->bucket_width, col);
    int rc = bucket_width(d, (*src)->type, w, err);
    for (size_t i = 0; !rc && i < s->ncols; i++)
        if (s->cols[i].is_static)
            rc = sib_err_set(err, SIB_EINVAL,
                             "BUCKET(%s, %s) cannot be used with static columns (%s): a static row would be one per bucket, not one per natural partition",
                             col, d->bucket_width, s->cols[i].name);
    return rc;
}

static int check_salt(const sch_table_spec *s, int64_t *n, sib_err *err)
{
    const char *txt = s->derive->salt_count;
    if (!parse_i64(txt, n) || *n < 1 || *n > SALT_MAX)
        return sib_err_set(err, SIB_EINVAL, "Invalid salt count %s in SALT(%s): it must be between 1 and %d", txt, txt,
                           SALT_MAX);
    if (!s->nck)
        return sib_err_set(err, SIB_EINVAL, "SALT(%s) needs at least one clustering column: the salt is a hash of the clustering key",
                           txt);
    for (size_t i = 0; i < s->ncols; i++)
        if (s->cols[i].is_static)
            return sib_err_set(err, SIB_EINVAL, "SALT(%s) cannot be used with static columns (%s): a static row would split across salts",
                               txt, s->cols[i].name);
    return 0;
}

static ssize_t pk_index(const sch_table_spec *s, const char *name)
{
    for (size_t i = 0; i < s->npk; i++)
        if (!strcmp(s->pk[i], name)) return (ssize_t)i;
    return -1;
}

int derive_spec_expand(const sch_table_spec *s, sch_table_spec *s2, sch_coldef **extra, sib_err *err)
{
    *s2 = *s;
    *extra = NULL;
    const sch_derive_spec *d = s->derive;
    if (!d || (!d->bucket_column && !d->salt_count)) return 0;
    sch_coldef add[2];
    size_t nadd = 0;
    if (d->bucket_column) {
        const sch_coldef *src;
        int64_t w;
        int rc = check_bucket(s, &src, &w, err);
        if (rc) return rc;
        char name[128];
        snprintf(name, sizeof name, "%s_bucket", d->bucket_column);
        if (spec_col(s, name))
            return sib_err_set(err, SIB_EINVAL, "Column %s is the one BUCKET(%s, %s) derives: it cannot also be declared",
                               name, d->bucket_column, d->bucket_width);
        ssize_t at = pk_index(s, name);
        if (at < 0) return sib_err_set(err, SIB_EINVAL, "BUCKET(%s, %s) is not in the partition key", d->bucket_column, d->bucket_width);
        add[nadd++] = (sch_coldef){.name = s->pk[at], .type = src->type}; /* pk[] outlives s2 */
    }
    if (d->salt_count) {
        int64_t n;
        int rc = check_salt(s, &n, err);
        if (rc) return rc;
        if (spec_col(s, "salt"))
            return sib_err_set(err, SIB_EINVAL, "Column salt is the one SALT(%s) derives: it cannot also be declared",
                               d->salt_count);
        if (pk_index(s, "salt") < 0) return sib_err_set(err, SIB_EINVAL, "SALT(%s) is not in the partition key", d->salt_count);
        add[nadd++] = (sch_coldef){.name = "salt", .type = sch_type_native(SCH_T_INT)};
    }
    sch_coldef *cols = malloc(sizeof *cols * (s->ncols + nadd));
    if (!cols) return sib_err_set(err, SIB_ENOMEM, "out of memory");
    memcpy(cols, s->cols, sizeof *cols * s->ncols);
    for (size_t i = 0; i < nadd; i++) cols[s->ncols + i] = add[i];
    s2->cols = cols;
    s2->ncols = s->ncols + nadd;
    *extra = cols;
    return 0;
}

int derive_attach(sch_table *t, const sch_table_spec *s)
{
    const sch_derive_spec *d = s->derive;
    if (!d) return 0;
    sib_err e;
    if (d->bucket_column) {
        char name[128];
        snprintf(name, sizeof name, "%s_bucket", d->bucket_column);
        const sch_column *col = sch_table_column_by_name(t, name);
        int64_t w;
        if (!col || bucket_width(d, t->cols[t->npk].type, &w, &e)) return SIB_EINVAL;
        if (!(t->bucket_text = xstrdup(d->bucket_width))) return SIB_ENOMEM;
        t->has_bucket = true;
        t->bucket_pk = (uint32_t)col->position;
        t->bucket_width = w;
    }
    if (d->salt_count) {
        const sch_column *col = sch_table_column_by_name(t, "salt");
        int64_t n;
        if (!col || !parse_i64(d->salt_count, &n)) return SIB_EINVAL;
        t->has_salt = true;
        t->salt_pk = (uint32_t)col->position;
        t->salt_count = (uint32_t)n;
    }
    return 0;
}

/* ---- persistence ---- */

void derive_serialize(const sch_table *t, sib_buf *out)
{
    if (!t->has_bucket && !t->has_salt) return;
    sib_buf_u8(out, DERIVE_TAG);
    sib_buf_u8(out, (uint8_t)(t->has_bucket | t->has_salt << 1));
    if (t->has_bucket) {
        sib_buf_be32(out, t->bucket_pk);
        sib_buf_be64(out, (uint64_t)t->bucket_width);
        size_t n = strlen(t->bucket_text);
        sib_buf_uvarint(out, n);
        sib_buf_append(out, t->bucket_text, n);
    }
    if (t->has_salt) {
        sib_buf_be32(out, t->salt_pk);
        sib_buf_be32(out, t->salt_count);
    }
}

bool derive_decode(sib_rd *r, sch_table *t)
{
    uint8_t tag, flags;
    if (!sib_rd_u8(r, &tag) || tag != DERIVE_TAG || !sib_rd_u8(r, &flags) || !flags || flags > 3) return false;
    if (flags & 1) {
        uint64_t w, n;
        const uint8_t *p;
        if (!sib_rd_be32(r, &t->bucket_pk) || !sib_rd_be64(r, &w) || !sib_rd_uvarint(r, &n) || n > 64 ||
            !sib_rd_bytes(r, (size_t)n, &p) || memchr(p, 0, (size_t)n))
            return false;
        if (!(t->bucket_text = malloc((size_t)n + 1))) return false;
        memcpy(t->bucket_text, p, (size_t)n);
        t->bucket_text[n] = 0;
        t->bucket_width = (int64_t)w;
        t->has_bucket = true;
    }
    if (flags & 2) {
        if (!sib_rd_be32(r, &t->salt_pk) || !sib_rd_be32(r, &t->salt_count)) return false;
        t->has_salt = true;
    }
    return true;
}

/* Called on a sorted table (cols[0..npk) partition key, then clustering). */
bool derive_consistent(const sch_table *t)
{
    if (t->has_bucket) {
        if (t->bucket_pk >= t->npk || !t->nck || t->bucket_width <= 0 || t->has_static) return false;
        if (t->cols[t->bucket_pk].type != t->cols[t->npk].type || !bucketable(t->cols[t->npk].type->code)) return false;
    }
    if (t->has_salt) {
        if (t->salt_pk >= t->npk || !t->nck || t->has_static || t->salt_count < 1 || t->salt_count > SALT_MAX) return false;
        if (t->cols[t->salt_pk].type->code != SCH_T_INT) return false;
        if (t->has_bucket && t->salt_pk == t->bucket_pk) return false;
    }
    return true;
}

int derive_check_alter_column(const sch_table *t, const char *name, const char *what, sib_err *err)
{
    const sch_column *col = sch_table_column_by_name(t, name);
    if (!col) return 0;
    sib_buf def;
    sib_buf_init(&def);
    if (t->has_bucket && ((uint32_t)col->position == t->bucket_pk && col->kind == SCH_COL_PARTITION_KEY))
        sch_bucket_cql(t, &def);
    else if (t->has_bucket && col->kind == SCH_COL_CLUSTERING && col->position == 0)
        sch_bucket_cql(t, &def);
    else if (t->has_salt && col->kind == SCH_COL_PARTITION_KEY && (uint32_t)col->position == t->salt_pk)
        sch_salt_cql(t, &def);
    int rc = 0;
    if (def.len && col->kind == SCH_COL_PARTITION_KEY)
        rc = sib_err_set(err, SIB_EINVAL, "Cannot %s column %s of table %s.%s: it is derived by %.*s in the partition key",
                         what, name, t->ks, t->name, (int)def.len, (const char *)def.p);
    else if (def.len)
        rc = sib_err_set(err, SIB_EINVAL, "Cannot %s column %s of table %s.%s: the partition key's %.*s derives from it",
                         what, name, t->ks, t->name, (int)def.len, (const char *)def.p);
    sib_buf_free(&def);
    return rc;
}
