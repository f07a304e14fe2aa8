/* schema.h: CQL types, value codecs and the schema catalog (keyspaces,
 * tables, columns) of a Sibyl node.
 *
 * (Seed written by the lead: the type representation below is shared with
 * cql/ (wire metadata) and parser/-driven execution. Extend, don't change.) */
#ifndef SIB_SCHEMA_H
#define SIB_SCHEMA_H

#include "common.h"

/* Native protocol v4 type codes (spec section 6); the enum values ARE the
 * wire codes so cql/ writes them directly. */
typedef enum {
    SIB_T_CUSTOM = 0x0000,
    SIB_T_ASCII = 0x0001,
    SIB_T_BIGINT = 0x0002,
    SIB_T_BLOB = 0x0003,
    SIB_T_BOOLEAN = 0x0004,
    SIB_T_COUNTER = 0x0005,
    SIB_T_DECIMAL = 0x0006,
    SIB_T_DOUBLE = 0x0007,
    SIB_T_FLOAT = 0x0008,
    SIB_T_INT = 0x0009,
    SIB_T_TIMESTAMP = 0x000B,
    SIB_T_UUID = 0x000C,
    SIB_T_VARCHAR = 0x000D, /* text */
    SIB_T_VARINT = 0x000E,
    SIB_T_TIMEUUID = 0x000F,
    SIB_T_INET = 0x0010,
    SIB_T_DATE = 0x0011,
    SIB_T_TIME = 0x0012,
    SIB_T_SMALLINT = 0x0013,
    SIB_T_TINYINT = 0x0014,
    SIB_T_DURATION = 0x0015,
    SIB_T_LIST = 0x0020,
    SIB_T_MAP = 0x0021,
    SIB_T_SET = 0x0022,
    SIB_T_UDT = 0x0030,
    SIB_T_TUPLE = 0x0031,
} sib_type_code;

/* An immutable, interned type. Native types have no subtypes; list/set have
 * sub[0]; map has sub[0] (key) and sub[1] (value). Compare types by pointer
 * only after interning (sib_type_get). */
typedef struct sib_type {
    sib_type_code code;
    bool frozen;
    const struct sib_type *sub[2];
} sib_type;

/* ======================================================================
 * Everything below extends the seed. Ownership rules, in one place:
 *  - interned types live in a sib_types registry (the catalog owns one; see
 *    sib_catalog_types) and stay valid until that registry is destroyed;
 *    native types are static constants valid forever.
 *  - const sib_keyspace / sib_table / sib_column pointers returned by the
 *    catalog are views valid until the next DDL call (create/drop/alter/load)
 *    on that catalog; do not free them.
 *  - values are ALWAYS in native-protocol serialized form (driver-compat.md
 *    section 8); functions that produce values APPEND them to a sib_buf.
 * ====================================================================== */

/* A serialized value view, like the protocol's [bytes]: len < 0 = null. */
typedef struct sib_val {
    const uint8_t *p;
    int32_t len;
} sib_val;

/* ---- types ---------------------------------------------------------------- */

typedef struct sib_types sib_types; /* intern registry for composite types */

sib_types *sib_types_create(void);            /* NULL on OOM */
void sib_types_destroy(sib_types *ts);        /* frees every type it interned */

/* The static instance of a native type (ascii..duration, counter); NULL for
 * list/set/map/udt/tuple/custom. Never freed. */
const sib_type *sib_type_native(sib_type_code code);
/* Interned collections (NULL on OOM). Pointer-equal iff structurally equal.
 * frozen=true gives frozen<...>. Nested non-frozen collections are allowed
 * here (frozen<list<list<int>>> is built bottom-up); sib_type_check_column
 * rejects them where Cassandra does. */
const sib_type *sib_type_list(sib_types *ts, const sib_type *elem, bool frozen);
const sib_type *sib_type_set(sib_types *ts, const sib_type *elem, bool frozen);
const sib_type *sib_type_map(sib_types *ts, const sib_type *key, const sib_type *val, bool frozen);
/* Interned tuple<elems[0..n)> (n >= 1). Tuples are frozen values, as in
 * Cassandra; the executor uses them for multi-column relations ((a, b) = ?,
 * (a, b) IN ?), not as column types. Stored as a chain so that the two
 * sub-type slots suffice: sub[0] is the first element type and sub[1] the
 * tuple of the remaining elements (NULL after the last one). */
const sib_type *sib_type_tuple(sib_types *ts, const sib_type *const *elems, size_t n);
size_t sib_type_tuple_size(const sib_type *t);                     /* element count */
const sib_type *sib_type_tuple_elem(const sib_type *t, size_t i); /* NULL past the end */
/* frozen variant: collections get frozen (recursively, like Cassandra's
 * freeze()); native types are returned unchanged. */
const sib_type *sib_type_freeze(sib_types *ts, const sib_type *t);

/* Resolves a parsed type: name is case-insensitive ("int", "text", "varchar"
 * (= text), "list"/"set" (1 sub), "map" (2 subs), "frozen" (1 sub)).
 * Errors: SIB_EINVAL `Unknown type <name>` (UDT names included),
 * `frozen<> is only allowed on collections, tuples, and user-defined types
 * (got int)`, `Tuple types are not supported`; SIB_ESYNTAX for a wrong number
 * of type parameters. */
int sib_type_resolve(sib_types *ts, const char *name, size_t name_len, const sib_type *const subs[],
                     size_t nsubs, const sib_type **out, sib_err *err);
/* Parses a full type text, e.g. "frozen<map<text, int>>" (the format of
 * sib_type_cql_name and system_schema.columns.type). */
int sib_type_parse(sib_types *ts, const char *text, size_t len, const sib_type **out, sib_err *err);
/* Checks a column type the way CREATE TABLE / ALTER ADD do: non-frozen
 * collections inside collections, counters inside collections, durations in
 * sets / as map keys. Message names the type, e.g. `Non-frozen collections
 * are not allowed inside collections: list<list<int>>`. */
int sib_type_check_column(const sib_type *t, sib_err *err);

/* Appends Cassandra's system_schema text: `int`, `text` (never varchar),
 * `frozen<list<int>>`, `map<text, int>`, `set<text>`. */
void sib_type_cql_name(const sib_type *t, sib_buf *out);
/* Static name of a native type ("int", "text", ...); "" for non-native. */
const char *sib_type_native_name(sib_type_code code);
/* Java marshal class, e.g. "org.apache.cassandra.db.marshal.DurationType"
 * (what v4 sends as a custom type for duration). NULL for non-native. */
const char *sib_type_java_class(sib_type_code code);
bool sib_type_is_collection(const sib_type *t);     /* list/set/map, frozen or not */
bool sib_type_is_multicell(const sib_type *t);      /* a non-frozen collection */
/* Serialized size of fixed-width types (int 4, uuid 16, boolean 1, ...);
 * 0 for variable-length types. */
size_t sib_type_fixed_len(const sib_type *t);

/* ---- literals (cql.md sections 3.6, 5) -------------------------------------- */

/* The kind of a CQL constant token. The parser keeps its own enum; the
 * executor maps it to this one. NaN/Infinity/-NaN/-Infinity are FLOAT. */
typedef enum {
    SIB_LIT_STRING,
    SIB_LIT_INTEGER,
    SIB_LIT_FLOAT,
    SIB_LIT_BOOLEAN,
    SIB_LIT_UUID,
    SIB_LIT_HEX,
    SIB_LIT_DURATION,
} sib_lit_kind;

const char *sib_lit_kind_name(sib_lit_kind k); /* "STRING", "INTEGER", ... */

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
int sib_value_from_literal(const sib_type *t, sib_lit_kind kind, const char *text, size_t len,
                           const char *column_name, sib_buf *out, sib_err *err);

/* ---- values --------------------------------------------------------------- */

/* Validates a bound value (never null here; len may be 0 = empty value, which
 * is valid for every type but collections need their count). Messages as
 * Cassandra's marshal layer: `Expected 4 or 0 byte int (3)`, `Expected 8 or 0
 * byte long (5)`, `String didn't validate.` (bad UTF-8), `Invalid byte for
 * ascii: %d`, `Unable to make UUID from...` style for bad v1 timeuuid, etc. */
int sib_value_validate(const sib_type *t, const uint8_t *v, size_t len, sib_err *err);

/* Cassandra comparator order (<0, 0, >0). Empty values sort before every
 * non-empty value. ints signed, text/ascii/blob unsigned bytewise, uuid as
 * UUIDType, timeuuid as TimeUUIDType, inet unsigned bytewise, float /
 * double by numeric value (Java Float.compare: -0 < +0, NaN greatest),
 * varint/decimal numerically, boolean false < true, date unsigned, frozen collections element-wise. Inputs are
 * assumed valid (sib_value_validate); invalid input still gives a total order. */
int sib_value_compare(const sib_type *t, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* Appends cqlsh-like text: timestamps `2024-01-02 03:04:05.000000+0000`,
 * dates `2024-01-02`, times `03:04:05.000000000`, uuids lower case, blobs
 * `0x..`, text unquoted, floats/doubles like cqlsh (shortest repr, `NaN`,
 * `Infinity`), booleans `True`/`False`, collections `[1, 2]` / `{'a': 1}`
 * (strings inside collections quoted), invalid input `<invalid ...>`. */
void sib_value_format(const sib_type *t, const uint8_t *v, size_t len, sib_buf *out);
/* Appends a CQL literal that sib_value_from_literal / the parser accept back:
 * strings quoted with '' escaping, timestamps as quoted strings, blobs 0x..,
 * booleans true/false. Used for DESCRIBE and defaults. */
void sib_value_format_cql(const sib_type *t, const uint8_t *v, size_t len, sib_buf *out);

/* ---- collections (list/set/map values: i32 n + [bytes] elements) ------------ */

/* Builds a collection value of type t from serialized elements and APPENDS it.
 * list/set: elems[0..n); map: n entries as elems[2i] (key), elems[2i+1] (value).
 * Sets are sorted and deduplicated and maps sorted by key (last duplicate key
 * wins) with the element type's sib_value_compare. A null element ->
 * SIB_EINVAL `null is not supported inside collections`. */
int sib_coll_build(const sib_type *t, const sib_val *elems, size_t n, sib_buf *out, sib_err *err);

/* Re-sorts/deduplicates a (validated) set or map value as sib_coll_build does
 * (drivers may send sets unsorted); lists are copied. APPENDS to out. */
int sib_coll_normalize(const sib_type *t, const uint8_t *v, size_t len, sib_buf *out, sib_err *err);

/* Reads a collection value element by element (no allocation). */
typedef struct sib_coll_iter {
    sib_rd rd;
    uint32_t left;
    bool is_map;
} sib_coll_iter;
/* Returns the element count, or SIB_ECORRUPT/EINVAL on a malformed header. */
int sib_coll_iter_init(sib_coll_iter *it, const sib_type *t, const uint8_t *v, size_t len);
/* Next element (list/set: *key; map: *key and *val). false at the end or on
 * malformed input (then it->rd.bad is set). */
bool sib_coll_next(sib_coll_iter *it, sib_val *key, sib_val *val);

/* ---- keys ------------------------------------------------------------------- */

typedef struct sib_table sib_table;
typedef struct sib_keyspace sib_keyspace;

/* Partition key bytes as Cassandra hashes them (driver-compat.md 7): one
 * column = the raw value; several = per component u16 len + bytes + 0x00.
 * n must equal the partition key column count. Empty single-column key ->
 * `Key may not be empty`; a component over 65535 bytes -> `Key length of %d is
 * longer than maximum of 65535`. APPENDS to out. */
int sib_pk_encode(const sib_table *t, const uint8_t *const vals[], const size_t lens[], size_t n, sib_buf *out,
                  sib_err *err);
/* Splits partition key bytes into per-column views pointing into pk. */
int sib_pk_decode(const sib_table *t, const uint8_t *pk, size_t len, sib_val vals[], size_t nvals, sib_err *err);

/* BYTE-COMPARABLE clustering keys: memcmp(enc(a), enc(b)) orders like
 * Cassandra's clustering comparator (per column sib_value_compare, DESC columns
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
int sib_ck_encode(const sib_table *t, const uint8_t *const vals[], const size_t lens[], size_t nvals, sib_buf *out,
                  sib_err *err);
/* One component (for callers building keys incrementally). */
int sib_ck_encode_component(const sib_type *type, bool desc, const uint8_t *v, size_t len, sib_buf *out,
                            sib_err *err);
/* Decodes a (possibly prefix) key: vals[i] (caller-initialized sib_bufs, at
 * least sib_table_clustering_count(t) of them) are reset and receive the
 * serialized value of column i; *nvals = number of components present.
 * Malformed input -> SIB_ECORRUPT. */
int sib_ck_decode(const sib_table *t, const uint8_t *ck, size_t len, sib_buf vals[], size_t *nvals, sib_err *err);
/* Replaces b by the smallest byte string greater than every string that
 * starts with b (drop trailing 0xFF bytes, increment the last). Returns false
 * (b emptied) when no such string exists (b was all 0xFF or empty): the bound
 * is then "unbounded". Slices: `c1 = 5 AND c2 > 3` = start successor(enc(5,3))
 * inclusive; `c1 = 5` = [enc(5), successor(enc(5))). */
bool sib_ck_successor(sib_buf *b);

/* ---- catalog ----------------------------------------------------------------- */

typedef enum {
    SIB_COL_PARTITION_KEY = 0,
    SIB_COL_CLUSTERING = 1,
    SIB_COL_REGULAR = 2,
    SIB_COL_STATIC = 3,
} sib_col_kind;

typedef enum { SIB_ORDER_NONE = 0, SIB_ORDER_ASC = 1, SIB_ORDER_DESC = 2 } sib_order;

/* A column view (read-only). */
typedef struct sib_column {
    const char *name;       /* internal (case-preserved) name */
    const sib_type *type;
    sib_col_kind kind;
    int position;           /* 0-based within partition key / clustering; -1 otherwise */
    sib_order order;        /* ASC/DESC for clustering columns, NONE otherwise */
    uint32_t id;            /* stable within the table, never reused after a drop */
    uint32_t index;         /* index in sib_table_column order */
} sib_column;

/* A column dropped by ALTER TABLE DROP (kept so ADD can check the type and
 * storage can ignore older cells). */
typedef struct sib_dropped_column {
    const char *name;
    const sib_type *type;
    int64_t dropped_time_us; /* USING TIMESTAMP or the DDL's time */
    uint32_t id;
    sib_col_kind kind;       /* REGULAR or STATIC */
} sib_dropped_column;

/* A string map with keys sorted bytewise (replication, compaction, ...). */
typedef struct sib_kv {
    char *key, *value;
} sib_kv;
typedef struct sib_strmap {
    sib_kv *kv;
    size_t n;
} sib_strmap;
const char *sib_strmap_get(const sib_strmap *m, const char *key); /* NULL if absent */

/* Table options as system_schema.tables shows them. */
typedef struct sib_table_opts {
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
    sib_strmap caching;     /* {'keys': 'ALL', 'rows_per_partition': 'NONE'} */
    sib_strmap compaction;  /* {'class': '...SizeTieredCompactionStrategy', 'max_threshold': '32', 'min_threshold': '4'} */
    sib_strmap compression; /* {'chunk_length_in_kb': '16', 'class': '...LZ4Compressor'} */
} sib_table_opts;

/* A DDL property as parsed: `name = constant` or `name = {map}`. Strings are
 * NUL-terminated; for constants `value` is the unescaped token text and
 * `kind` its literal kind; for maps keys[i]/values[i] are the entries' texts
 * (numbers as written, e.g. 'replication_factor': 1 -> "1"). Names are the
 * internal (case-folded) names. */
typedef struct sib_prop {
    const char *name;
    bool is_map;
    sib_lit_kind kind;
    const char *value;
    const char *const *keys;
    const char *const *values;
    size_t n;
} sib_prop;

typedef enum {
    SIB_TABLE_USER = 0,
    SIB_TABLE_LOCAL_SYSTEM,  /* system.local / peers / peers_v2, system_traces.*: rows come from node state */
    SIB_TABLE_VIRTUAL_SCHEMA,/* system_schema.* / system_virtual_schema.*: rows from sib_catalog_system_rows */
} sib_table_kind;

typedef struct sib_catalog sib_catalog;

/* Creates a catalog holding the system keyspaces (system, system_schema,
 * system_virtual_schema) and nothing else. NULL on OOM. */
sib_catalog *sib_catalog_create(void);
void sib_catalog_destroy(sib_catalog *c);
/* The catalog's type registry: resolve column types for DDL with it. */
sib_types *sib_catalog_types(sib_catalog *c);

/* Lookups (NULL if absent). Names are internal names, exact match. */
const sib_keyspace *sib_catalog_keyspace(const sib_catalog *c, const char *name);
const sib_table *sib_catalog_table(const sib_catalog *c, const char *ks, const char *name);
const sib_table *sib_catalog_table_by_id(const sib_catalog *c, const uint8_t id[16]);
/* All keyspaces, system ones included, in name order (bytewise). */
size_t sib_catalog_keyspace_count(const sib_catalog *c);
const sib_keyspace *sib_catalog_keyspace_at(const sib_catalog *c, size_t i);

const char *sib_keyspace_name(const sib_keyspace *ks);
bool sib_keyspace_durable_writes(const sib_keyspace *ks);
/* The full replication map incl. 'class' with the full class name, e.g.
 * {'class': 'org.apache.cassandra.locator.SimpleStrategy', 'replication_factor': '1'}. */
const sib_strmap *sib_keyspace_replication(const sib_keyspace *ks);
const char *sib_keyspace_strategy(const sib_keyspace *ks); /* full class name */
bool sib_keyspace_is_system(const sib_keyspace *ks);    /* system, system_schema, system_virtual_schema */
size_t sib_keyspace_table_count(const sib_keyspace *ks);
const sib_table *sib_keyspace_table_at(const sib_keyspace *ks, size_t i); /* name order */

const char *sib_table_keyspace(const sib_table *t);
const char *sib_table_name(const sib_table *t);
const uint8_t *sib_table_id(const sib_table *t); /* 16 bytes */
sib_table_kind sib_table_kind_of(const sib_table *t);
bool sib_table_is_counter(const sib_table *t);
bool sib_table_has_static(const sib_table *t);
const sib_table_opts *sib_table_options(const sib_table *t);
/* Columns in `SELECT *` order: partition key, clustering (both by position),
 * then static, then regular columns, each of the last two groups by name
 * (bytewise), as Cassandra 4.0's select order. */
size_t sib_table_column_count(const sib_table *t);
const sib_column *sib_table_column(const sib_table *t, size_t i);
const sib_column *sib_table_column_by_name(const sib_table *t, const char *name);
const sib_column *sib_table_column_by_id(const sib_table *t, uint32_t id);
size_t sib_table_pk_count(const sib_table *t);
const sib_column *sib_table_pk(const sib_table *t, size_t i);
size_t sib_table_clustering_count(const sib_table *t);
const sib_column *sib_table_clustering(const sib_table *t, size_t i);
size_t sib_table_dropped_count(const sib_table *t);
const sib_dropped_column *sib_table_dropped(const sib_table *t, size_t i);

/* ---- DDL ------------------------------------------------------------------- *
 * Every DDL call validates first and changes nothing on error. Return values:
 * 0 = applied; 1 = nothing to do because of IF [NOT] EXISTS (no schema change
 * event); negative SIB_E* with err set. Error codes: SIB_EEXIST = AlreadyExists
 * (0x2400), SIB_ECONFIG = ConfigurationException (0x2300) for bad names,
 * SIB_EINVAL for everything else (cql.md 3.1, 3.2, 6). */

/* CREATE KEYSPACE: props `replication` (map, mandatory: `Missing mandatory
 * option 'replication'`) and `durable_writes` (boolean). Short strategy names
 * are expanded (SimpleStrategy -> org.apache.cassandra.locator.SimpleStrategy).
 * Existing: `Cannot add existing keyspace "%s"` (SIB_EEXIST). */
int sib_catalog_create_keyspace(sib_catalog *c, const char *name, const sib_prop *props, size_t nprops,
                                bool if_not_exists, sib_err *err);
int sib_catalog_alter_keyspace(sib_catalog *c, const char *name, const sib_prop *props, size_t nprops,
                               bool if_exists, sib_err *err);
/* Drops the keyspace and its tables (`Keyspace '%s' doesn't exist`). */
int sib_catalog_drop_keyspace(sib_catalog *c, const char *name, bool if_exists, sib_err *err);

/* CREATE TABLE as the parser saw it. Columns are in declaration order;
 * inline `PRIMARY KEY` on a column counts as one pk declaration (npk_decls)
 * with pk = {that column}. display_name is the table as written for messages
 * ("ks.t" or "t"). */
typedef struct sib_coldef {
    const char *name;
    const sib_type *type;
    bool is_static;
} sib_coldef;

typedef struct sib_orderdef {
    const char *name;
    bool desc;
} sib_orderdef;

typedef struct sib_table_spec {
    const char *keyspace;
    const char *name;
    const char *display_name;   /* NULL = name */
    const sib_coldef *cols;
    size_t ncols;
    size_t npk_decls;           /* PRIMARY KEY declarations seen: must be 1 */
    const char *const *pk;      /* partition key column names */
    size_t npk;
    const char *const *ck;      /* clustering column names, in order */
    size_t nck;
    const sib_orderdef *order;  /* CLUSTERING ORDER BY entries, as written */
    size_t norder;
    const sib_prop *props;      /* WITH options (not CLUSTERING ORDER) */
    size_t nprops;
    bool compact_storage;       /* rejected */
    bool if_not_exists;
    const uint8_t *id;          /* 16-byte table id to use, or NULL = fresh v4 uuid */
} sib_table_spec;

/* out (optional) receives the created (or, with return 1, existing) table. */
int sib_catalog_create_table(sib_catalog *c, const sib_table_spec *s, const sib_table **out, sib_err *err);
/* `Table '%s.%s' doesn't exist` */
int sib_catalog_drop_table(sib_catalog *c, const char *ks, const char *name, bool if_exists, sib_err *err);
/* ALTER TABLE ks.t ADD (cols). Messages: `Column with name '%s' already
 * exists`, counter/non-counter mixing, static without clustering, re-adding a
 * dropped column with another type. if_not_exists skips existing columns. */
int sib_catalog_alter_add(sib_catalog *c, const char *ks, const char *name, const sib_coldef *cols, size_t n,
                          bool if_not_exists, sib_err *err);
/* ALTER TABLE ks.t DROP (names) [USING TIMESTAMP ts_us]. Messages: `Column %s
 * was not found in table '%s.%s'`, `Cannot drop PRIMARY KEY column %s`. */
int sib_catalog_alter_drop(sib_catalog *c, const char *ks, const char *name, const char *const *cols, size_t n,
                           int64_t timestamp_us, bool if_exists, sib_err *err);
/* ALTER TABLE ks.t RENAME a TO b AND ... (primary key columns only). */
int sib_catalog_alter_rename(sib_catalog *c, const char *ks, const char *name, const char *const *from,
                             const char *const *to, size_t n, sib_err *err);
/* ALTER TABLE ks.t WITH props. */
int sib_catalog_alter_options(sib_catalog *c, const char *ks, const char *name, const sib_prop *props,
                              size_t nprops, sib_err *err);

/* Name rule (cql.md 6): [A-Za-z0-9_]{1,48}. */
bool sib_name_valid(const char *name);
/* Appends name as CQL shows it: bare if [a-z][a-z0-9_]* and not reserved,
 * else double-quoted with "" escaping. */
void sib_ident_quote(const char *name, sib_buf *out);

/* ---- persistence & schema version ---------------------------------------- */

/* Versioned binary forms of one keyspace's definition (without its tables) and
 * one table (with columns, dropped columns and options). APPEND to out. */
int sib_catalog_serialize_keyspace(const sib_keyspace *ks, sib_buf *out);
int sib_catalog_serialize_table(const sib_table *t, sib_buf *out);
/* Inverse: adds (or replaces, by name) the keyspace; adds or replaces (same id)
 * the table, whose keyspace must already be loaded. Bad input -> SIB_ECORRUPT,
 * never a crash. Loading does not re-run DDL validation messages. */
int sib_catalog_load_keyspace(sib_catalog *c, const uint8_t *p, size_t len, sib_err *err);
int sib_catalog_load_table(sib_catalog *c, const uint8_t *p, size_t len, sib_err *err);

/* A deterministic name-based (version 3 style) uuid from a hash of the
 * serialized non-system keyspaces and tables: changes whenever a DDL changes
 * the schema, identical for identical schemas (across restarts and nodes). */
void sib_catalog_schema_version(const sib_catalog *c, uint8_t out[16]);

/* ---- virtual system_schema rows -------------------------------------------- */

/* Called once per row; vals[i] is column sib_table_column(systable, i) (len<0
 * = null); the views are valid only during the call. Return non-zero to stop
 * (that value is returned by sib_catalog_system_rows). */
typedef int (*sib_row_fn)(void *ctx, const sib_val *vals, size_t nvals);
/* Produces the rows of a SIB_TABLE_VIRTUAL_SCHEMA table (system_schema.* and
 * system_virtual_schema.*) from the catalog, sorted by primary key (bytewise
 * per component), system keyspaces included. SIB_EINVAL for other tables. */
int sib_catalog_system_rows(const sib_catalog *c, const sib_table *systable, sib_row_fn emit, void *ctx,
                            sib_err *err);

#endif
