/* schema.h: CQL types, value codecs and the schema catalog (keyspaces,
 * tables, columns) of a Sibyl node.
 *
 * (Seed written by the lead: the type representation below is shared with
 * cql/ (wire metadata) and parser/-driven execution. Extend, don't change.) */
#ifndef SCH_SCHEMA_H
#define SCH_SCHEMA_H

#include "common.h"

/* Native protocol v4 type codes (spec section 6); the enum values ARE the
 * wire codes so cql/ writes them directly. */
typedef enum {
    SCH_T_CUSTOM = 0x0000,
    SCH_T_ASCII = 0x0001,
    SCH_T_BIGINT = 0x0002,
    SCH_T_BLOB = 0x0003,
    SCH_T_BOOLEAN = 0x0004,
    SCH_T_COUNTER = 0x0005,
    SCH_T_DECIMAL = 0x0006,
    SCH_T_DOUBLE = 0x0007,
    SCH_T_FLOAT = 0x0008,
    SCH_T_INT = 0x0009,
    SCH_T_TIMESTAMP = 0x000B,
    SCH_T_UUID = 0x000C,
    SCH_T_VARCHAR = 0x000D, /* text */
    SCH_T_VARINT = 0x000E,
    SCH_T_TIMEUUID = 0x000F,
    SCH_T_INET = 0x0010,
    SCH_T_DATE = 0x0011,
    SCH_T_TIME = 0x0012,
    SCH_T_SMALLINT = 0x0013,
    SCH_T_TINYINT = 0x0014,
    SCH_T_DURATION = 0x0015,
    SCH_T_LIST = 0x0020,
    SCH_T_MAP = 0x0021,
    SCH_T_SET = 0x0022,
    SCH_T_UDT = 0x0030,
    SCH_T_TUPLE = 0x0031,
} sch_type_code;

/* An immutable, interned type. Native types have no subtypes; list/set have
 * sub[0]; map has sub[0] (key) and sub[1] (value). Compare types by pointer
 * only after interning (sib_type_get). */
typedef struct sch_type {
    sch_type_code code;
    bool frozen;
    const struct sch_type *sub[2];
} sch_type;

/* ======================================================================
 * Everything below extends the seed. Ownership rules, in one place:
 *  - interned types live in a sch_types registry (the catalog owns one; see
 *    sch_catalog_types) and stay valid until that registry is destroyed;
 *    native types are static constants valid forever.
 *  - const sch_keyspace / sch_table / sch_column pointers returned by the
 *    catalog are views valid until the next DDL call (create/drop/alter/load)
 *    on that catalog; do not free them.
 *  - values are ALWAYS in native-protocol serialized form (docs/protocol.md
 *    section 9); functions that produce values APPEND them to a sib_buf.
 * ====================================================================== */

/* A serialized value view, like the protocol's [bytes]: len < 0 = null. */
typedef struct sch_val {
    const uint8_t *p;
    int32_t len;
} sch_val;

/* ---- types ---------------------------------------------------------------- */

typedef struct sch_types sch_types; /* intern registry for composite types */

sch_types *sch_types_create(void);            /* NULL on OOM */
void sch_types_destroy(sch_types *ts);        /* frees every type it interned */

/* The static instance of a native type (ascii..duration, counter); NULL for
 * list/set/map/udt/tuple/custom. Never freed. */
const sch_type *sch_type_native(sch_type_code code);
/* Interned collections (NULL on OOM). Pointer-equal iff structurally equal.
 * frozen=true gives frozen<...>. Nested non-frozen collections are allowed
 * here (frozen<list<list<int>>> is built bottom-up); sch_type_check_column
 * rejects them where Cassandra does. */
const sch_type *sch_type_list(sch_types *ts, const sch_type *elem, bool frozen);
const sch_type *sch_type_set(sch_types *ts, const sch_type *elem, bool frozen);
const sch_type *sch_type_map(sch_types *ts, const sch_type *key, const sch_type *val, bool frozen);
/* Interned tuple<elems[0..n)> (n >= 1). Tuples are frozen values, as in
 * Cassandra; the executor uses them for multi-column relations ((a, b) = ?,
 * (a, b) IN ?), not as column types. Stored as a chain so that the two
 * sub-type slots suffice: sub[0] is the first element type and sub[1] the
 * tuple of the remaining elements (NULL after the last one). */
const sch_type *sch_type_tuple(sch_types *ts, const sch_type *const *elems, size_t n);
size_t sch_type_tuple_size(const sch_type *t);                     /* element count */
const sch_type *sch_type_tuple_elem(const sch_type *t, size_t i); /* NULL past the end */
/* frozen variant: collections get frozen (recursively, like Cassandra's
 * freeze()); native types are returned unchanged. */
const sch_type *sch_type_freeze(sch_types *ts, const sch_type *t);

/* Resolves a parsed type: name is case-insensitive ("int", "text", "varchar"
 * (= text), "list"/"set" (1 sub), "map" (2 subs), "frozen" (1 sub)).
 * Errors: SIB_EINVAL `Unknown type <name>` (UDT names included),
 * `frozen<> is only allowed on collections, tuples, and user-defined types
 * (got int)`, `Tuple types are not supported`; SIB_ESYNTAX for a wrong number
 * of type parameters. */
int sch_type_resolve(sch_types *ts, const char *name, size_t name_len, const sch_type *const subs[],
                     size_t nsubs, const sch_type **out, sib_err *err);
/* Parses a full type text, e.g. "frozen<map<text, int>>" (the format of
 * sch_type_cql_name and system_schema.columns.type). */
int sch_type_parse(sch_types *ts, const char *text, size_t len, const sch_type **out, sib_err *err);
/* Checks a column type the way CREATE TABLE / ALTER ADD do: non-frozen
 * collections inside collections, counters inside collections, durations in
 * sets / as map keys. Message names the type, e.g. `Non-frozen collections
 * are not allowed inside collections: list<list<int>>`. */
int sch_type_check_column(const sch_type *t, sib_err *err);

/* Appends Cassandra's system_schema text: `int`, `text` (never varchar),
 * `frozen<list<int>>`, `map<text, int>`, `set<text>`. */
void sch_type_cql_name(const sch_type *t, sib_buf *out);
/* Static name of a native type ("int", "text", ...); "" for non-native. */
const char *sch_type_native_name(sch_type_code code);
/* Java marshal class, e.g. "org.apache.cassandra.db.marshal.DurationType"
 * (what v4 sends as a custom type for duration). NULL for non-native. */
const char *sch_type_java_class(sch_type_code code);
bool sch_type_is_collection(const sch_type *t);     /* list/set/map, frozen or not */
bool sch_type_is_multicell(const sch_type *t);      /* a non-frozen collection */
/* Serialized size of fixed-width types (int 4, uuid 16, boolean 1, ...);
 * 0 for variable-length types. */
size_t sch_type_fixed_len(const sch_type *t);

/* ---- literals (docs/cql.md sections 3.6, 5) -------------------------------------- */

/* The kind of a CQL constant token. The parser keeps its own enum; the
 * executor maps it to this one. NaN/Infinity/-NaN/-Infinity are FLOAT. */
typedef enum {
    SCH_LIT_STRING,
    SCH_LIT_INTEGER,
    SCH_LIT_FLOAT,
    SCH_LIT_BOOLEAN,
    SCH_LIT_UUID,
    SCH_LIT_HEX,
    SCH_LIT_DURATION,
} sch_lit_kind;

const char *sch_lit_kind_name(sch_lit_kind k); /* "STRING", "INTEGER", ... */
/* Can a constant of this kind be assigned to a native type at all (cql.md
 * section 5)? A value may still fail to convert. */
bool sch_literal_accepted(sch_type_code c, sch_lit_kind k);

/* Converts a constant (text = unescaped token text, e.g. `a` for 'a', `0xff`,
 * `-12`, `1h30m`) for a receiver of type t (native type, or a collection:
 * collections never accept a constant) and APPENDS the serialized value to
 * out (nothing is appended on error). column_name is only used in messages.
 * Errors (SIB_EINVAL) with Cassandra's texts:
 *   kind not accepted: `Invalid STRING constant (a) for "k" of type int`
 *   bad value (the type's marshal message):
 *     `Unable to make int from '3000000000'` (byte/short/int/long by type),
 *     `Unable to coerce '%s' to a formatted date (long)` (timestamp, date),
 *     `(TimeType) Unable to coerce '%s' to a formatted time (long)`,
 *     `Unable to make unsigned int (for date) from: '%s'`,
 *     `TimeUUID supports only version 1 UUIDs`, `cannot parse '%s' as hex bytes`
 *     (odd digit count), `Unable to make inet address from '%s'`,
 *     `unable to make BigDecimal from '%s'`, `Unable to convert '%s' to a duration`.
 * Empty STRING for timestamp/date/time/inet gives the empty value, as
 * Cassandra's fromString does. */
int sch_value_from_literal(const sch_type *t, sch_lit_kind kind, const char *text, size_t len,
                           const char *column_name, sib_buf *out, sib_err *err);

/* ---- values --------------------------------------------------------------- */

/* Validates a bound value (never null here; len may be 0 = empty value, which
 * is valid for every type but collections need their count). Messages as
 * Cassandra's marshal layer: `Expected 4 or 0 byte int (3)`, `Expected 8 or 0
 * byte long (5)`, `String didn't validate.` (bad UTF-8), `Invalid byte for
 * ascii: %d`, `Unable to make UUID from...` style for bad v1 timeuuid, etc. */
int sch_value_validate_typed(const sch_type *t, const uint8_t *v, size_t len, sib_err *err);
/* Inline: any bytes are a blob (the commonest column of a write) or a
 * varint, so those take no call. */
static inline int sch_value_validate(const sch_type *t, const uint8_t *v, size_t len, sib_err *err)
{
    if (t->code == SCH_T_BLOB || t->code == SCH_T_VARINT) return 0;
    return sch_value_validate_typed(t, v, len, err);
}

/* Cassandra comparator order (<0, 0, >0). Empty values sort before every
 * non-empty value. ints signed, text/ascii/blob unsigned bytewise, uuid as
 * UUIDType, timeuuid as TimeUUIDType, inet unsigned bytewise, float /
 * double by numeric value (Java Float.compare: -0 < +0, NaN greatest),
 * varint/decimal numerically, boolean false < true, date unsigned, frozen collections element-wise. Inputs are
 * assumed valid (sch_value_validate); invalid input still gives a total order. */
int sch_value_compare(const sch_type *t, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* Appends cqlsh-like text: timestamps `2024-01-02 03:04:05.000000+0000`,
 * dates `2024-01-02`, times `03:04:05.000000000`, uuids lower case, blobs
 * `0x..`, text unquoted, floats/doubles like cqlsh (shortest repr, `NaN`,
 * `Infinity`), booleans `True`/`False`, collections `[1, 2]` / `{'a': 1}`
 * (strings inside collections quoted), invalid input `<invalid ...>`. */
void sch_value_format(const sch_type *t, const uint8_t *v, size_t len, sib_buf *out);
/* Appends a CQL literal that sch_value_from_literal / the parser accept back:
 * strings quoted with '' escaping, timestamps as quoted strings, blobs 0x..,
 * booleans true/false. Used for DESCRIBE and defaults. */
void sch_value_format_cql(const sch_type *t, const uint8_t *v, size_t len, sib_buf *out);

/* ---- collections (list/set/map values: i32 n + [bytes] elements) ------------ */

/* Builds a collection value of type t from serialized elements and APPENDS it.
 * list/set: elems[0..n); map: n entries as elems[2i] (key), elems[2i+1] (value).
 * Sets are sorted and deduplicated and maps sorted by key (last duplicate key
 * wins) with the element type's sch_value_compare. A null element ->
 * SIB_EINVAL `null is not supported inside collections`. */
int sch_coll_build(const sch_type *t, const sch_val *elems, size_t n, sib_buf *out, sib_err *err);

/* Re-sorts/deduplicates a (validated) set or map value as sch_coll_build does
 * (drivers may send sets unsorted); lists are copied. APPENDS to out. */
int sch_coll_normalize(const sch_type *t, const uint8_t *v, size_t len, sib_buf *out, sib_err *err);

/* Reads a collection value element by element (no allocation). */
typedef struct sch_coll_iter {
    sib_rd rd;
    uint32_t left;
    bool is_map;
} sch_coll_iter;
/* Returns the element count, or SIB_ECORRUPT/EINVAL on a malformed header. */
int sch_coll_iter_init(sch_coll_iter *it, const sch_type *t, const uint8_t *v, size_t len);
/* Next element (list/set: *key; map: *key and *val). false at the end or on
 * malformed input (then it->rd.bad is set). */
bool sch_coll_next(sch_coll_iter *it, sch_val *key, sch_val *val);

/* ---- keys ------------------------------------------------------------------- */

typedef struct sch_table sch_table;
typedef struct sch_keyspace sch_keyspace;

/* Partition key bytes as Cassandra hashes them (docs/protocol.md 10): one
 * column = the raw value; several = per component u16 len + bytes + 0x00.
 * n must equal the partition key column count. Empty single-column key ->
 * `Key may not be empty`; a component over 65535 bytes -> `Key length of %d is
 * longer than maximum of 65535`. APPENDS to out. */
int sch_pk_encode(const sch_table *t, const uint8_t *const vals[], const size_t lens[], size_t n, sib_buf *out,
                  sib_err *err);
/* sch_pk_encode without copying a one-column key: *key is the key, vals[0]
 * itself for one column, else the bytes appended to out (valid until out
 * changes). checked: the values passed sch_value_validate for their
 * columns' types already (a bound marker is checked as it is bound), so the
 * key's own checks alone run, with the same messages. */
int sch_pk_encode_view(const sch_table *t, const uint8_t *const vals[], const size_t lens[], size_t n, bool checked,
                       sib_buf *out, sch_val *key, sib_err *err);
/* Splits partition key bytes into per-column views pointing into pk. */
int sch_pk_decode(const sch_table *t, const uint8_t *pk, size_t len, sch_val vals[], size_t nvals, sib_err *err);

/* BYTE-COMPARABLE clustering keys: memcmp(enc(a), enc(b)) orders like
 * Cassandra's clustering comparator (per column sch_value_compare, DESC columns
 * reversed). A prefix (nvals < clustering count) is allowed; the encoding of a
 * prefix is a byte prefix of every full key extending it. Per component:
 *   fixed-width types: a fixed-width order-preserving form (sign bit flipped
 *     for signed ints, IEEE total order for float/double, uuid/timeuuid
 *     rearranged to their comparator order, ...);
 *   variable-length types (text, ascii, blob, inet, frozen collections):
 *     bytes with 0x00 escaped as 0x00 0xFF, terminated by 0x00 0x00
 *     (collections: their element encodings in order, then a terminator);
 *   varint: sign + length + magnitude (fully order-preserving);
 *   decimal: the unscaled value is normalized (trailing zeros stripped) and
 *     encoded as sign + adjusted exponent + digit string, which IS order
 *     preserving across scales; decoding returns the normalized form (the same
 *     number, possibly with a different scale, e.g. 1.50 comes back as 1.5).
 *   DESC: every byte of the component's encoding inverted.
 * Empty values for fixed-width types -> SIB_EINVAL (`Invalid empty value for
 * clustering column %s of type %s`). APPENDS to out (reset it yourself). */
int sch_ck_encode(const sch_table *t, const uint8_t *const vals[], const size_t lens[], size_t nvals, sib_buf *out,
                  sib_err *err);
/* One component (for callers building keys incrementally). */
int sch_ck_encode_component(const sch_type *type, bool desc, const uint8_t *v, size_t len, sib_buf *out,
                            sib_err *err);
/* Decodes a (possibly prefix) key: vals[i] (caller-initialized sib_bufs, at
 * least sch_table_clustering_count(t) of them) are reset and receive the
 * serialized value of column i; *nvals = number of components present.
 * Malformed input -> SIB_ECORRUPT. */
int sch_ck_decode(const sch_table *t, const uint8_t *ck, size_t len, sib_buf vals[], size_t *nvals, sib_err *err);
/* Replaces b by the smallest byte string greater than every string that
 * starts with b (drop trailing 0xFF bytes, increment the last). Returns false
 * (b emptied) when no such string exists (b was all 0xFF or empty): the bound
 * is then "unbounded". Slices: `c1 = 5 AND c2 > 3` = start successor(enc(5,3))
 * inclusive; `c1 = 5` = [enc(5), successor(enc(5))). */
bool sch_ck_successor(sib_buf *b);

/* ---- catalog ----------------------------------------------------------------- */

typedef enum {
    SCH_COL_PARTITION_KEY = 0,
    SCH_COL_CLUSTERING = 1,
    SCH_COL_REGULAR = 2,
    SCH_COL_STATIC = 3,
} sch_col_kind;

typedef enum { SCH_ORDER_NONE = 0, SCH_ORDER_ASC = 1, SCH_ORDER_DESC = 2 } sch_order;

/* A column view (read-only). */
typedef struct sch_column {
    const char *name;       /* internal (case-preserved) name */
    const sch_type *type;
    sch_col_kind kind;
    int position;           /* 0-based within partition key / clustering; -1 otherwise */
    sch_order order;        /* ASC/DESC for clustering columns, NONE otherwise */
    uint32_t id;            /* stable within the table, never reused after a drop */
    uint32_t index;         /* index in sch_table_column order */
} sch_column;

/* A column dropped by ALTER TABLE DROP (kept so ADD can check the type and
 * storage can ignore older cells). */
typedef struct sch_dropped_column {
    const char *name;
    const sch_type *type;
    int64_t dropped_time_us; /* USING TIMESTAMP or the DDL's time */
    uint32_t id;
    sch_col_kind kind;       /* REGULAR or STATIC */
} sch_dropped_column;

/* A string map with keys sorted bytewise (replication, compaction, ...). */
typedef struct sch_kv {
    char *key, *value;
} sch_kv;
typedef struct sch_strmap {
    sch_kv *kv;
    size_t n;
} sch_strmap;
const char *sch_strmap_get(const sch_strmap *m, const char *key); /* NULL if absent */

/* Table options as system_schema.tables shows them. */
typedef struct sch_table_opts {
    char *comment;                  /* "" by default */
    int32_t default_time_to_live;   /* 0 */
    int32_t gc_grace_seconds;       /* 864000 */
    double bloom_filter_fp_chance;  /* 0.01 */
    double crc_check_chance;        /* 1.0 */
    int32_t max_index_interval;     /* 2048 */
    int32_t min_index_interval;     /* 128 */
    int32_t memtable_flush_period_in_ms; /* 0 */
    bool cdc;                       /* false */
    char *speculative_retry;        /* "99p" */
    char *additional_write_policy;  /* "99p" */
    char *read_repair;              /* "BLOCKING" */
    sch_strmap caching;     /* {'keys': 'ALL', 'rows_per_partition': 'NONE'} */
    sch_strmap compaction;  /* {'class': '...SizeTieredCompactionStrategy', 'max_threshold': '32', 'min_threshold': '4'} */
    sch_strmap compression; /* {'chunk_length_in_kb': '16', 'class': '...LZ4Compressor'} */
} sch_table_opts;

/* A DDL property as parsed: `name = constant` or `name = {map}`. Strings are
 * NUL-terminated; for constants `value` is the unescaped token text and
 * `kind` its literal kind; for maps keys[i]/values[i] are the entries' texts
 * (numbers as written, e.g. 'replication_factor': 1 -> "1"). Names are the
 * internal (case-folded) names. */
typedef struct sch_prop {
    const char *name;
    bool is_map;
    sch_lit_kind kind;
    const char *value;
    const char *const *keys;
    const char *const *values;
    size_t n;
} sch_prop;

typedef enum {
    SCH_TABLE_USER = 0,
    SCH_TABLE_LOCAL_SYSTEM,  /* system.local / peers / peers_v2, system_traces.*: rows come from node state */
    SCH_TABLE_VIRTUAL_SCHEMA,/* system_schema.* / system_virtual_schema.*: rows from sch_catalog_system_rows */
} sch_table_kind;

typedef struct sch_catalog sch_catalog;

/* Creates a catalog holding the system keyspaces (system, system_schema,
 * system_virtual_schema) and nothing else. NULL on OOM. */
sch_catalog *sch_catalog_create(void);
void sch_catalog_destroy(sch_catalog *c);
/* The catalog's type registry: resolve column types for DDL with it. */
sch_types *sch_catalog_types(sch_catalog *c);

/* Lookups (NULL if absent). Names are internal names, exact match. */
const sch_keyspace *sch_catalog_keyspace(const sch_catalog *c, const char *name);
const sch_table *sch_catalog_table(const sch_catalog *c, const char *ks, const char *name);
const sch_table *sch_catalog_table_by_id(const sch_catalog *c, const uint8_t id[16]);
/* All keyspaces, system ones included, in name order (bytewise). */
size_t sch_catalog_keyspace_count(const sch_catalog *c);
const sch_keyspace *sch_catalog_keyspace_at(const sch_catalog *c, size_t i);

const char *sch_keyspace_name(const sch_keyspace *ks);
bool sch_keyspace_durable_writes(const sch_keyspace *ks);
/* The full replication map incl. 'class' with the full class name, e.g.
 * {'class': 'org.apache.cassandra.locator.SimpleStrategy', 'replication_factor': '1'}. */
const sch_strmap *sch_keyspace_replication(const sch_keyspace *ks);
const char *sch_keyspace_strategy(const sch_keyspace *ks); /* full class name */
bool sch_keyspace_is_system(const sch_keyspace *ks);    /* system, system_schema, system_virtual_schema */
size_t sch_keyspace_table_count(const sch_keyspace *ks);
const sch_table *sch_keyspace_table_at(const sch_keyspace *ks, size_t i); /* name order */

const char *sch_table_keyspace(const sch_table *t);
const char *sch_table_name(const sch_table *t);
const uint8_t *sch_table_id(const sch_table *t); /* 16 bytes */
sch_table_kind sch_table_kind_of(const sch_table *t);
bool sch_table_is_counter(const sch_table *t);
bool sch_table_has_static(const sch_table *t);
const sch_table_opts *sch_table_options(const sch_table *t);
/* Columns in `SELECT *` order: partition key, clustering (both by position),
 * then static, then regular columns, each of the last two groups by name
 * (bytewise), as Cassandra 4.0's select order. */
size_t sch_table_column_count(const sch_table *t);
const sch_column *sch_table_column(const sch_table *t, size_t i);
const sch_column *sch_table_column_by_name(const sch_table *t, const char *name);
const sch_column *sch_table_column_by_id(const sch_table *t, uint32_t id);
size_t sch_table_pk_count(const sch_table *t);
const sch_column *sch_table_pk(const sch_table *t, size_t i);
size_t sch_table_clustering_count(const sch_table *t);
const sch_column *sch_table_clustering(const sch_table *t, size_t i);
size_t sch_table_dropped_count(const sch_table *t);
const sch_dropped_column *sch_table_dropped(const sch_table *t, size_t i);

/* ---- DDL ------------------------------------------------------------------- *
 * Every DDL call validates first and changes nothing on error. Return values:
 * 0 = applied; 1 = nothing to do because of IF [NOT] EXISTS (no schema change
 * event); negative SIB_E* with err set. Error codes: SIB_EEXIST = AlreadyExists
 * (0x2400), SIB_ECONFIG = ConfigurationException (0x2300) for bad names,
 * SIB_EINVAL for everything else (docs/cql.md 3.1, 3.2, 6). */

/* CREATE KEYSPACE: props `replication` (map, mandatory: `Missing mandatory
 * option 'replication'`) and `durable_writes` (boolean). Short strategy names
 * are expanded (SimpleStrategy -> org.apache.cassandra.locator.SimpleStrategy).
 * Existing: `Cannot add existing keyspace "%s"` (SIB_EEXIST). */
int sch_catalog_create_keyspace(sch_catalog *c, const char *name, const sch_prop *props, size_t nprops,
                                bool if_not_exists, sib_err *err);
int sch_catalog_alter_keyspace(sch_catalog *c, const char *name, const sch_prop *props, size_t nprops,
                               bool if_exists, sib_err *err);

/* What a replication map is prepared and checked against (docs/cql.md,
 * section 6): the datacenters the cluster knows (the local node's and those
 * gossip reported) and cassandra.yaml's default_keyspace_rf. With it,
 * NetworkTopologyStrategy refuses unknown datacenters and expands
 * 'replication_factor' to the known ones, and a strategy given without a
 * factor takes default_keyspace_rf. The calls above (no env) take any
 * datacenter name and require SimpleStrategy's factor. */
typedef struct sch_ks_env {
    const char *const *dcs;
    size_t ndcs;
    int default_rf;
} sch_ks_env;
int sch_catalog_create_keyspace_env(sch_catalog *c, const char *name, const sch_prop *props, size_t nprops,
                                    bool if_not_exists, const sch_ks_env *env, sib_err *err);
int sch_catalog_alter_keyspace_env(sch_catalog *c, const char *name, const sch_prop *props, size_t nprops,
                                   bool if_exists, const sch_ks_env *env, sib_err *err);
/* Drops the keyspace and its tables (`Keyspace '%s' doesn't exist`). */
int sch_catalog_drop_keyspace(sch_catalog *c, const char *name, bool if_exists, sib_err *err);

/* CREATE TABLE as the parser saw it. Columns are in declaration order;
 * inline `PRIMARY KEY` on a column counts as one pk declaration (npk_decls)
 * with pk = {that column}. display_name is the table as written for messages
 * ("ks.t" or "t"). */
typedef struct sch_coldef {
    const char *name;
    const sch_type *type;
    bool is_static;
} sch_coldef;

typedef struct sch_orderdef {
    const char *name;
    bool desc;
} sch_orderdef;

/* BUCKET(col, width) and SALT(n) in a CREATE TABLE's partition key (Sibyl's
 * bucketed partition keys, docs/cql.md "Bucketed partition keys"). pk[]
 * names the derived columns at their positions ("<col>_bucket", "salt");
 * they are not in cols[]: the catalog adds them (the source's type; int).
 * NULL bucket_column / salt_count = absent. */
typedef struct sch_derive_spec {
    const char *bucket_column;   /* the source: must be the first clustering column */
    sch_lit_kind bucket_width_kind;
    const char *bucket_width;    /* literal text: a duration (`1d`) or an integer */
    const char *salt_count;      /* integer literal text */
} sch_derive_spec;

typedef struct sch_table_spec {
    const char *keyspace;
    const char *name;
    const char *display_name;   /* NULL = name */
    const sch_coldef *cols;
    size_t ncols;
    size_t npk_decls;           /* PRIMARY KEY declarations seen: must be 1 */
    const char *const *pk;      /* partition key column names */
    size_t npk;
    const char *const *ck;      /* clustering column names, in order */
    size_t nck;
    const sch_orderdef *order;  /* CLUSTERING ORDER BY entries, as written */
    size_t norder;
    const sch_prop *props;      /* WITH options (not CLUSTERING ORDER) */
    size_t nprops;
    bool compact_storage;       /* rejected */
    bool if_not_exists;
    const uint8_t *id;          /* 16-byte table id to use, or NULL = fresh v4 uuid */
    const sch_derive_spec *derive; /* BUCKET / SALT, or NULL */
} sch_table_spec;

/* out (optional) receives the created (or, with return 1, existing) table. */
int sch_catalog_create_table(sch_catalog *c, const sch_table_spec *s, const sch_table **out, sib_err *err);
/* `Table '%s.%s' doesn't exist` */
int sch_catalog_drop_table(sch_catalog *c, const char *ks, const char *name, bool if_exists, sib_err *err);
/* ALTER TABLE ks.t ADD (cols). Messages: `Column with name '%s' already
 * exists`, counter/non-counter mixing, static without clustering, re-adding a
 * dropped column with another type. if_not_exists skips existing columns. */
int sch_catalog_alter_add(sch_catalog *c, const char *ks, const char *name, const sch_coldef *cols, size_t n,
                          bool if_not_exists, sib_err *err);
/* ALTER TABLE ks.t DROP (names) [USING TIMESTAMP ts_us]. Messages: `Column %s
 * was not found in table '%s.%s'`, `Cannot drop PRIMARY KEY column %s`. */
int sch_catalog_alter_drop(sch_catalog *c, const char *ks, const char *name, const char *const *cols, size_t n,
                           int64_t timestamp_us, bool if_exists, sib_err *err);
/* ALTER TABLE ks.t RENAME a TO b AND ... (primary key columns only). */
int sch_catalog_alter_rename(sch_catalog *c, const char *ks, const char *name, const char *const *from,
                             const char *const *to, size_t n, sib_err *err);
/* ALTER TABLE ks.t WITH props. */
int sch_catalog_alter_options(sch_catalog *c, const char *ks, const char *name, const sch_prop *props,
                              size_t nprops, sib_err *err);

/* Name rule (docs/cql.md 6): [A-Za-z0-9_]{1,48}. */
bool sch_name_valid(const char *name);
/* Appends name as CQL shows it: bare if [a-z][a-z0-9_]* and not reserved,
 * else double-quoted with "" escaping. */
void sch_ident_quote(const char *name, sib_buf *out);

/* ---- bucketed partition keys (derive.c) -------------------------------------
 *
 * A time bucket: the partition key column `<ts>_bucket` (ts's type) holds
 * floor(ts / width) * width, counted from the UTC epoch (timestamps, in ms;
 * dates, in days) or from 0 (integers); ts is the first clustering column,
 * so bucket order is clustering order. A salt: the int partition key column
 * `salt` holds a hash of the row's full clustering key modulo the count, so
 * one natural key's rows spread over `count` partitions. Both are computed
 * on every write; the natural columns are what applications name. */

typedef struct sch_bucket {
    size_t pk_pos;              /* position of the derived column in the partition key */
    const sch_column *col;      /* the derived column (`<source>_bucket`) */
    const sch_column *source;   /* the first clustering column */
    int64_t width;              /* in the source's units: ms, days, or integer steps */
    const char *width_text;     /* as written (`1d`): DESCRIBE prints it back */
} sch_bucket;

typedef struct sch_salt {
    size_t pk_pos;
    const sch_column *col;      /* the derived `salt` column (int) */
    uint32_t count;
} sch_salt;

/* false when the table has no BUCKET / SALT. Views valid like the table's. */
bool sch_table_bucket(const sch_table *t, sch_bucket *out);
bool sch_table_salt(const sch_table *t, sch_salt *out);
/* The table has a BUCKET or a SALT; col is one of its derived columns. */
bool sch_table_has_derived(const sch_table *t);
bool sch_column_is_derived(const sch_table *t, const sch_column *col);
/* The definition as DESCRIBE prints it: `BUCKET(ts, 1d)` / `SALT(8)`
 * (names quoted as needed). APPENDS; nothing when absent. */
void sch_bucket_cql(const sch_table *t, sib_buf *out);
void sch_salt_cql(const sch_table *t, sib_buf *out);

/* A bucketable value in its units: timestamp ms, date days from the epoch
 * (signed), tinyint..bigint as is. SIB_EINVAL for an empty or malformed
 * value or another type. */
int sch_bucket_units(const sch_type *type, const uint8_t *v, size_t len, int64_t *out, sib_err *err);
/* Units back to a serialized value of type; SIB_EINVAL when out of the
 * type's range. APPENDS. */
int sch_bucket_value(const sch_type *type, int64_t units, sib_buf *out, sib_err *err);
/* floor(v / width) * width (width > 0); false when that is below INT64_MIN. */
bool sch_bucket_floor(int64_t v, int64_t width, int64_t *start);
/* The bucket start of source value v, serialized (APPENDS). */
int sch_bucket_of(const sch_bucket *b, const uint8_t *v, size_t len, sib_buf *out, sib_err *err);
/* The salt of a row: murmur3 of its encoded full clustering key (sch_ck_encode),
 * modulo count. */
uint32_t sch_salt_of(uint32_t count, const uint8_t *ck, size_t cklen);

/* ---- persistence & schema version ---------------------------------------- */

/* Versioned binary forms of one keyspace's definition (without its tables) and
 * one table (with columns, dropped columns and options). APPEND to out. */
int sch_catalog_serialize_keyspace(const sch_keyspace *ks, sib_buf *out);
int sch_catalog_serialize_table(const sch_table *t, sib_buf *out);
/* Inverse: adds (or replaces, by name) the keyspace; adds or replaces (same id)
 * the table, whose keyspace must already be loaded. Bad input -> SIB_ECORRUPT,
 * never a crash. Loading does not re-run DDL validation messages. */
int sch_catalog_load_keyspace(sch_catalog *c, const uint8_t *p, size_t len, sib_err *err);
int sch_catalog_load_table(sch_catalog *c, const uint8_t *p, size_t len, sib_err *err);

/* A deterministic name-based (version 3 style) uuid from a hash of the
 * serialized non-system keyspaces and tables: changes whenever a DDL changes
 * the schema, identical for identical schemas (across restarts and nodes). */
void sch_catalog_schema_version(const sch_catalog *c, uint8_t out[16]);

/* ---- schema rows and their merge (merge.c; docs/membership.md "Schema") ----
 *
 * A node's schema as one timestamped entry per keyspace and per table: the
 * definition (sch_catalog_serialize_*, with its table and column ids) or, for
 * a DROP, a tombstone that keeps the dropped name's timestamp. Two nodes'
 * entries for the same key merge by last write wins: the higher timestamp,
 * then the greater value bytes, which makes a DROP win a tie with a create
 * and, between two tables of the same name, the greater table id win. This
 * is the storage engine's cell rule, so the persisted rows agree with it. */

typedef enum { SCH_DEF_KEYSPACE = 'k', SCH_DEF_TABLE = 't' } sch_def_kind;

typedef struct sch_def {
    sch_def_kind kind;
    const char *ks;
    const char *name;     /* table name; "" for a keyspace */
    int64_t ts;           /* write timestamp, µs */
    const uint8_t *val;   /* SIBK / SIBT definition, or a SIBX tombstone */
    size_t len;
} sch_def;

typedef struct sch_defs sch_defs;

sch_defs *sch_defs_create(void); /* NULL on OOM */
void sch_defs_destroy(sch_defs *d);
/* Sets the entry of def's key (copied), replacing any previous one whatever
 * its timestamp: callers decide with sch_def_compare or sch_defs_merge. */
int sch_defs_put(sch_defs *d, const sch_def *def);
/* NULL when absent; name NULL or "" for a keyspace. Views valid until the
 * next put or destroy. */
const sch_def *sch_defs_get(const sch_defs *d, sch_def_kind kind, const char *ks, const char *name);
size_t sch_defs_count(const sch_defs *d);
const sch_def *sch_defs_at(const sch_defs *d, size_t i); /* sorted by key */

/* Appends the tombstone value of a DROP (table_id NULL for a keyspace). */
int sch_def_tombstone(sch_def_kind kind, const uint8_t *table_id, sib_buf *out);
bool sch_def_is_tombstone(const sch_def *d);
/* The table id a table entry names (definition or tombstone); false for a
 * keyspace or a malformed value. */
bool sch_def_table_id(const sch_def *d, uint8_t id[16]);
/* <0, 0, >0 as a loses to, equals, or wins over b (same key assumed). */
int sch_def_compare(const sch_def *a, const sch_def *b);
/* The entries of remote that win over local's (or that local lacks), in the
 * order to apply them: keyspace definitions, table entries, keyspace
 * tombstones. *out is a malloc'd array of views into remote (free() it;
 * NULL when *n is 0). SIB_ENOMEM on OOM. */
int sch_defs_merge(const sch_defs *local, const sch_defs *remote, const sch_def ***out, size_t *n);
/* The snapshot wire form (merge.c's header comment). Decoding validates
 * everything (SIB_ECORRUPT, *out NULL) and never trusts a length. */
int sch_defs_encode(const sch_defs *d, sib_buf *out);
int sch_defs_decode(sch_defs **out, const uint8_t *p, size_t len, sib_err *err);

/* ---- virtual system_schema rows -------------------------------------------- */

/* Called once per row; vals[i] is column sch_table_column(systable, i) (len<0
 * = null); the views are valid only during the call. Return non-zero to stop
 * (that value is returned by sch_catalog_system_rows). */
typedef int (*sch_row_fn)(void *ctx, const sch_val *vals, size_t nvals);
/* Produces the rows of a SCH_TABLE_VIRTUAL_SCHEMA table (system_schema.* and
 * system_virtual_schema.*) from the catalog, sorted by primary key (bytewise
 * per component), system keyspaces included. SIB_EINVAL for other tables. */
int sch_catalog_system_rows(const sch_catalog *c, const sch_table *systable, sch_row_fn emit, void *ctx,
                            sib_err *err);

#endif
