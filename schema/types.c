/* types.c: the CQL type system — native type constants, interning of
 * collection types, name resolution and Cassandra's type text.
 *
 * Native types are static const instances (one per wire code), so they need
 * no registry. Collections are interned in a sch_types registry: a linear
 * array of heap-allocated sch_type, searched structurally on each request.
 * Schemas hold a handful of distinct collection types, so a linear search is
 * cheaper than a hash table and keeps pointer equality == type equality.
 */
#include "schema_int.h"

#include <ctype.h>
#include <stdlib.h>

struct sch_types {
    sch_type **v;
    size_t n, cap;
};

#define NATIVE(c) { .code = (c), .frozen = false, .sub = { NULL, NULL } }
static const sch_type native_types[] = {
    NATIVE(SCH_T_ASCII),    NATIVE(SCH_T_BIGINT),   NATIVE(SCH_T_BLOB),     NATIVE(SCH_T_BOOLEAN),
    NATIVE(SCH_T_COUNTER),  NATIVE(SCH_T_DECIMAL),  NATIVE(SCH_T_DOUBLE),   NATIVE(SCH_T_FLOAT),
    NATIVE(SCH_T_INT),      NATIVE(SCH_T_TIMESTAMP), NATIVE(SCH_T_UUID),    NATIVE(SCH_T_VARCHAR),
    NATIVE(SCH_T_VARINT),   NATIVE(SCH_T_TIMEUUID), NATIVE(SCH_T_INET),     NATIVE(SCH_T_DATE),
    NATIVE(SCH_T_TIME),     NATIVE(SCH_T_SMALLINT), NATIVE(SCH_T_TINYINT),  NATIVE(SCH_T_DURATION),
};

static const struct {
    sch_type_code code;
    const char *name;
    const char *java;
    size_t fixed;
} native_info[] = {
    { SCH_T_ASCII, "ascii", "AsciiType", 0 },
    { SCH_T_BIGINT, "bigint", "LongType", 8 },
    { SCH_T_BLOB, "blob", "BytesType", 0 },
    { SCH_T_BOOLEAN, "boolean", "BooleanType", 1 },
    { SCH_T_COUNTER, "counter", "CounterColumnType", 8 },
    { SCH_T_DECIMAL, "decimal", "DecimalType", 0 },
    { SCH_T_DOUBLE, "double", "DoubleType", 8 },
    { SCH_T_FLOAT, "float", "FloatType", 4 },
    { SCH_T_INT, "int", "Int32Type", 4 },
    { SCH_T_TIMESTAMP, "timestamp", "TimestampType", 8 },
    { SCH_T_UUID, "uuid", "UUIDType", 16 },
    { SCH_T_VARCHAR, "text", "UTF8Type", 0 },
    { SCH_T_VARINT, "varint", "IntegerType", 0 },
    { SCH_T_TIMEUUID, "timeuuid", "TimeUUIDType", 16 },
    { SCH_T_INET, "inet", "InetAddressType", 0 },
    { SCH_T_DATE, "date", "SimpleDateType", 4 },
    { SCH_T_TIME, "time", "TimeType", 8 },
    { SCH_T_SMALLINT, "smallint", "ShortType", 2 },
    { SCH_T_TINYINT, "tinyint", "ByteType", 1 },
    { SCH_T_DURATION, "duration", "DurationType", 0 },
};

static int native_index(sch_type_code code)
{
    for (size_t i = 0; i < SIB_ARRAY_LEN(native_info); i++)
        if (native_info[i].code == code) return (int)i;
    return -1;
}

const sch_type *sch_type_native(sch_type_code code)
{
    for (size_t i = 0; i < SIB_ARRAY_LEN(native_types); i++)
        if (native_types[i].code == code) return &native_types[i];
    return NULL;
}

bool type_is_native(const sch_type *t) { return native_index(t->code) >= 0; }

const char *sch_type_native_name(sch_type_code code)
{
    int i = native_index(code);
    return i < 0 ? "" : native_info[i].name;
}

const char *sch_type_java_class(sch_type_code code)
{
    static const char *const full[] = {
#define J(x) "org.apache.cassandra.db.marshal." x
        J("AsciiType"), J("LongType"), J("BytesType"), J("BooleanType"), J("CounterColumnType"),
        J("DecimalType"), J("DoubleType"), J("FloatType"), J("Int32Type"), J("TimestampType"),
        J("UUIDType"), J("UTF8Type"), J("IntegerType"), J("TimeUUIDType"), J("InetAddressType"),
        J("SimpleDateType"), J("TimeType"), J("ShortType"), J("ByteType"), J("DurationType"),
#undef J
    };
    int i = native_index(code);
    return i < 0 ? NULL : full[i];
}

size_t sch_type_fixed_len(const sch_type *t)
{
    int i = native_index(t->code);
    return i < 0 ? 0 : native_info[i].fixed;
}

bool sch_type_is_collection(const sch_type *t)
{
    return t->code == SCH_T_LIST || t->code == SCH_T_SET || t->code == SCH_T_MAP;
}

bool sch_type_is_multicell(const sch_type *t) { return sch_type_is_collection(t) && !t->frozen; }

/* ---- registry ---- */

sch_types *sch_types_create(void) { return calloc(1, sizeof(sch_types)); }

void sch_types_destroy(sch_types *ts)
{
    if (!ts) return;
    for (size_t i = 0; i < ts->n; i++) free(ts->v[i]);
    free(ts->v);
    free(ts);
}

static const sch_type *intern(sch_types *ts, sch_type_code code, const sch_type *a, const sch_type *b, bool frozen)
{
    for (size_t i = 0; i < ts->n; i++) {
        const sch_type *t = ts->v[i];
        if (t->code == code && t->frozen == frozen && t->sub[0] == a && t->sub[1] == b) return t;
    }
    if (ts->n == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 16;
        sch_type **v = realloc(ts->v, cap * sizeof *v);
        if (!v) return NULL;
        ts->v = v;
        ts->cap = cap;
    }
    sch_type *t = malloc(sizeof *t);
    if (!t) return NULL;
    t->code = code;
    t->frozen = frozen;
    t->sub[0] = a;
    t->sub[1] = b;
    ts->v[ts->n++] = t;
    return t;
}

const sch_type *sch_type_list(sch_types *ts, const sch_type *elem, bool frozen)
{
    if (!elem) return NULL;
    if (frozen) elem = sch_type_freeze(ts, elem);
    return elem ? intern(ts, SCH_T_LIST, elem, NULL, frozen) : NULL;
}

const sch_type *sch_type_set(sch_types *ts, const sch_type *elem, bool frozen)
{
    if (!elem) return NULL;
    if (frozen) elem = sch_type_freeze(ts, elem);
    return elem ? intern(ts, SCH_T_SET, elem, NULL, frozen) : NULL;
}

const sch_type *sch_type_map(sch_types *ts, const sch_type *key, const sch_type *val, bool frozen)
{
    if (!key || !val) return NULL;
    if (frozen) {
        key = sch_type_freeze(ts, key);
        val = sch_type_freeze(ts, val);
        if (!key || !val) return NULL;
    }
    return intern(ts, SCH_T_MAP, key, val, frozen);
}

const sch_type *sch_type_tuple(sch_types *ts, const sch_type *const *elems, size_t n)
{
    const sch_type *rest = NULL;
    for (size_t i = n; i-- > 0;) {
        rest = intern(ts, SCH_T_TUPLE, elems[i], rest, true);
        if (!rest) return NULL;
    }
    return rest;
}

size_t sch_type_tuple_size(const sch_type *t)
{
    size_t n = 0;
    for (; t && t->code == SCH_T_TUPLE; t = t->sub[1]) n++;
    return n;
}

const sch_type *sch_type_tuple_elem(const sch_type *t, size_t i)
{
    for (; t && t->code == SCH_T_TUPLE; t = t->sub[1], i--)
        if (i == 0) return t->sub[0];
    return NULL;
}

const sch_type *sch_type_freeze(sch_types *ts, const sch_type *t)
{
    if (!t || !sch_type_is_collection(t) || t->frozen) return t;
    switch (t->code) {
    case SCH_T_LIST: return sch_type_list(ts, t->sub[0], true);
    case SCH_T_SET: return sch_type_set(ts, t->sub[0], true);
    default: return sch_type_map(ts, t->sub[0], t->sub[1], true);
    }
}

/* ---- names ---- */

void sch_type_cql_name(const sch_type *t, sib_buf *out)
{
    if (t->frozen) sib_buf_append(out, "frozen<", 7);
    switch (t->code) {
    case SCH_T_LIST:
    case SCH_T_SET:
        sib_buf_printf(out, "%s<", t->code == SCH_T_LIST ? "list" : "set");
        sch_type_cql_name(t->sub[0], out);
        sib_buf_u8(out, '>');
        break;
    case SCH_T_MAP:
        sib_buf_append(out, "map<", 4);
        sch_type_cql_name(t->sub[0], out);
        sib_buf_append(out, ", ", 2);
        sch_type_cql_name(t->sub[1], out);
        sib_buf_u8(out, '>');
        break;
    case SCH_T_TUPLE:
        sib_buf_append(out, "tuple<", 6);
        for (const sch_type *e = t; e; e = e->sub[1]) {
            sch_type_cql_name(e->sub[0], out);
            if (e->sub[1]) sib_buf_append(out, ", ", 2);
        }
        sib_buf_u8(out, '>');
        break;
    default: {
        const char *n = sch_type_native_name(t->code);
        sib_buf_append(out, n, strlen(n));
    }
    }
    if (t->frozen) sib_buf_u8(out, '>');
}

/* Formats the type name into a fixed buffer for error messages. */
static const char *tname(const sch_type *t, char *dst, size_t cap)
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

static bool name_eq(const char *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    if (alen != n) return false;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)a[i]) != lit[i]) return false;
    return true;
}

int sch_type_resolve(sch_types *ts, const char *name, size_t name_len, const sch_type *const subs[], size_t nsubs,
                     const sch_type **out, sib_err *err)
{
    *out = NULL;
    char nm[128];
    snprintf(nm, sizeof nm, "%.*s", (int)SIB_MIN(name_len, 120), name);
    if (name_eq(name, name_len, "varchar")) name = "text", name_len = 4;
    for (size_t i = 0; i < SIB_ARRAY_LEN(native_info); i++) {
        if (!name_eq(name, name_len, native_info[i].name)) continue;
        if (nsubs) return sib_err_set(err, SIB_ESYNTAX, "Type %s takes no type parameters", nm);
        *out = sch_type_native(native_info[i].code);
        return 0;
    }
    bool is_list = name_eq(name, name_len, "list"), is_set = name_eq(name, name_len, "set");
    if (is_list || is_set || name_eq(name, name_len, "frozen")) {
        if (nsubs != 1 || !subs[0])
            return sib_err_set(err, SIB_ESYNTAX, "Type %s takes exactly one type parameter", nm);
        if (is_list) *out = sch_type_list(ts, subs[0], false);
        else if (is_set) *out = sch_type_set(ts, subs[0], false);
        else if (!sch_type_is_collection(subs[0])) {
            char tn[128];
            return sib_err_set(err, SIB_EINVAL,
                               "frozen<> is only allowed on collections, tuples, and user-defined types (got %s)",
                               tname(subs[0], tn, sizeof tn));
        } else *out = sch_type_freeze(ts, subs[0]);
    } else if (name_eq(name, name_len, "map")) {
        if (nsubs != 2 || !subs[0] || !subs[1])
            return sib_err_set(err, SIB_ESYNTAX, "Type map takes exactly two type parameters");
        *out = sch_type_map(ts, subs[0], subs[1], false);
    } else if (name_eq(name, name_len, "tuple")) {
        return sib_err_set(err, SIB_EINVAL, "Tuple types are not supported");
    } else {
        return sib_err_set(err, SIB_EINVAL, "Unknown type %s", nm);
    }
    if (!*out) return sib_err_set(err, SIB_ENOMEM, "out of memory interning type");
    return 0;
}

/* Recursive descent over "name" [ '<' type {',' type} '>' ]. */
static int parse_type(sch_types *ts, const char **pp, const char *end, int depth, const sch_type **out, sib_err *err)
{
    const char *p = *pp;
    if (depth > 32) return sib_err_set(err, SIB_ESYNTAX, "type nesting too deep");
    while (p < end && isspace((unsigned char)*p)) p++;
    const char *nm = p;
    while (p < end && (isalnum((unsigned char)*p) || *p == '_')) p++;
    size_t nlen = (size_t)(p - nm);
    if (!nlen) return sib_err_set(err, SIB_ESYNTAX, "expected a type name");
    while (p < end && isspace((unsigned char)*p)) p++;
    const sch_type *subs[2] = { NULL, NULL };
    size_t nsubs = 0;
    if (p < end && *p == '<') {
        p++;
        for (;;) {
            if (nsubs == 2) return sib_err_set(err, SIB_ESYNTAX, "too many type parameters");
            int rc = parse_type(ts, &p, end, depth + 1, &subs[nsubs], err);
            if (rc) return rc;
            nsubs++;
            while (p < end && isspace((unsigned char)*p)) p++;
            if (p < end && *p == ',') { p++; continue; }
            if (p < end && *p == '>') { p++; break; }
            return sib_err_set(err, SIB_ESYNTAX, "expected ',' or '>' in type");
        }
    }
    *pp = p;
    return sch_type_resolve(ts, nm, nlen, subs, nsubs, out, err);
}

int sch_type_parse(sch_types *ts, const char *text, size_t len, const sch_type **out, sib_err *err)
{
    const char *p = text, *end = text + len;
    *out = NULL;
    int rc = parse_type(ts, &p, end, 0, out, err);
    if (rc) return rc;
    while (p < end && isspace((unsigned char)*p)) p++;
    if (p != end) {
        *out = NULL;
        return sib_err_set(err, SIB_ESYNTAX, "trailing characters after type '%.*s'", (int)SIB_MIN(len, 200), text);
    }
    return 0;
}

static bool contains_counter(const sch_type *t)
{
    if (t->code == SCH_T_COUNTER) return true;
    for (int i = 0; i < 2; i++)
        if (t->sub[i] && contains_counter(t->sub[i])) return true;
    return false;
}

static int check_nested(const sch_type *top, const sch_type *t, sib_err *err)
{
    if (!sch_type_is_collection(t)) return 0;
    char tn[256];
    for (int i = 0; i < 2; i++) {
        const sch_type *s = t->sub[i];
        if (!s) continue;
        if (sch_type_is_multicell(s))
            return sib_err_set(err, SIB_EINVAL, "Non-frozen collections are not allowed inside collections: %s",
                               tname(top, tn, sizeof tn));
        if (s->code == SCH_T_COUNTER)
            return sib_err_set(err, SIB_EINVAL, "Counters are not allowed inside collections: %s",
                               tname(top, tn, sizeof tn));
        if (s->code == SCH_T_DURATION && t->code == SCH_T_SET)
            return sib_err_set(err, SIB_EINVAL, "Durations are not allowed inside sets: %s", tname(top, tn, sizeof tn));
        if (s->code == SCH_T_DURATION && t->code == SCH_T_MAP && i == 0)
            return sib_err_set(err, SIB_EINVAL, "Durations are not allowed as map keys: %s", tname(top, tn, sizeof tn));
        int rc = check_nested(top, s, err);
        if (rc) return rc;
    }
    return 0;
}

int sch_type_check_column(const sch_type *t, sib_err *err)
{
    if (sch_type_is_collection(t) && contains_counter(t)) {
        char tn[256];
        return sib_err_set(err, SIB_EINVAL, "Counters are not allowed inside collections: %s", tname(t, tn, sizeof tn));
    }
    return check_nested(t, t, err);
}
