/* schema_int.h: private declarations shared by the schema/ sources.
 *
 * The catalog's in-memory layout: a catalog owns a sorted array of keyspaces,
 * each owning a sorted array of tables; a table owns its columns (kept in
 * `SELECT *` order, see table_sort_columns), its dropped columns and options.
 * All strings are malloc'd and owned by the struct that points to them.
 */
#ifndef SCH_SCHEMA_INT_H
#define SCH_SCHEMA_INT_H

#include "schema.h"

struct sch_table {
    char *ks;
    char *name;
    uint8_t id[16];
    sch_table_kind kind;
    sch_column *cols;        /* SELECT * order; cols[i].index == i */
    size_t ncols;
    size_t npk, nck;         /* cols[0..npk) partition key, then nck clustering */
    sch_dropped_column *dropped;
    size_t ndropped;
    uint32_t next_col_id;
    bool counter, has_static;
    sch_table_opts opts;
    char *sys_comment;       /* comment for system tables (NULL for user tables) */
    /* BUCKET / SALT (derive.c): positions in the partition key */
    bool has_bucket, has_salt;
    uint32_t bucket_pk, salt_pk, salt_count;
    int64_t bucket_width;
    char *bucket_text;
};

struct sch_keyspace {
    char *name;
    bool durable_writes;
    bool system;
    bool virt;               /* system_virtual_schema */
    sch_strmap repl;
    sch_table **tables;      /* sorted by name */
    size_t ntables;
};

struct sch_catalog {
    sch_types *types;
    sch_keyspace **ks;       /* sorted by name */
    size_t nks;
    sib_rng rng;
    uint8_t version[16];
};

/* ---- types.c ---- */
bool type_is_native(const sch_type *t);

/* ---- bignum.c: arbitrary precision integers as text <-> two's complement ---- */
/* Appends the minimal big-endian two's complement of the decimal digit string
 * (digits only, no sign) with the given sign. */
int big_from_digits(const char *digits, size_t n, bool neg, sib_buf *out);
/* Decimal digits (no sign, no leading zeros, "0" for zero) of a two's
 * complement big-endian value; *neg receives the sign. Empty input = 0. */
void big_to_digits(const uint8_t *v, size_t n, sib_buf *digits, bool *neg);
/* Sign of a two's complement value (-1, 0, 1). */
int big_sign(const uint8_t *v, size_t n);
int big_compare(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* Normalized decimal: sign (-1/0/1), adjusted exponent E and significant
 * digits D without trailing zeros, so value = sign * 0.D * 10^E. */
int decimal_norm(const uint8_t *v, size_t len, int *sign, int64_t *adj, sib_buf *digits);
/* Numeric compare of two decimals (i32 scale + varint). */
int decimal_compare(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* Java BigDecimal.toString() of a decimal value. */
void decimal_format(const uint8_t *v, size_t len, sib_buf *out);

/* ---- literal.c ---- */
int days_from_civil(int64_t y, unsigned m, unsigned d, int64_t *out);
/* tzone.c: the offset (seconds east of UTC) of zone text s[0..n) for a
 * local time (seconds since the epoch read as UTC): "UTC", "PST",
 * "GMT+01:00", "-0800", "Europe/Paris". False if s names no zone. */
bool sch_zone_offset(const char *s, size_t n, int64_t local, int64_t *off);
void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);
void duration_encode(int32_t months, int32_t days, int64_t nanos, sib_buf *out);
bool sch_utf8_valid(const uint8_t *s, size_t n);

/* ---- value.c ---- */
int duration_decode(const uint8_t *v, size_t len, int64_t *mo, int64_t *d, int64_t *ns);
uint32_t float_key(uint32_t bits);   /* order-preserving unsigned key (canonical NaN) */
uint64_t double_key(uint64_t bits);
uint64_t uuid_ts_key(const uint8_t *u); /* v1 timestamp fields reordered, version nibble on top */

/* ---- strmap helpers (options.c) ---- */
void strmap_free(sch_strmap *m);
int strmap_set(sch_strmap *m, const char *k, const char *v);   /* keeps keys sorted */
int strmap_copy(sch_strmap *dst, const sch_strmap *src);
void strmap_serialize(const sch_strmap *m, const sch_type *type, sib_buf *out); /* as map<text,text> value */
char *xstrdup(const char *s);

/* ---- options.c ---- */
int opts_init_default(sch_table_opts *o);
void opts_free(sch_table_opts *o);
int opts_copy(sch_table_opts *dst, const sch_table_opts *src);
/* Applies WITH properties to o (validated); on error o may be partially changed,
 * so callers apply to a copy. */
int opts_apply(sch_table_opts *o, const sch_prop *props, size_t n, sib_err *err);
int opts_validate(const sch_table_opts *o, sib_err *err);
/* keyspace replication + durable_writes from props; repl must start empty
 * (create) or hold the current map (alter). */
int ks_props_apply(const char *ks, sch_strmap *repl, bool *durable, bool creating, const sch_prop *props, size_t n,
                   const sch_ks_env *env, sib_err *err);

/* ---- catalog.c ---- */
void table_free(sch_table *t);
void keyspace_free(sch_keyspace *ks);
void table_sort_columns(sch_table *t);
void catalog_bump_version(sch_catalog *c);
int table_from_spec(sch_catalog *c, const sch_table_spec *s, sch_table **out, sib_err *err);
int catalog_insert_keyspace(sch_catalog *c, sch_keyspace *ks); /* takes ownership */
int keyspace_insert_table(sch_keyspace *ks, sch_table *t);     /* takes ownership */
sch_keyspace *catalog_find_ks(const sch_catalog *c, const char *name);

/* ---- derive.c ---- */
/* The spec with the derived columns added to cols (s2 borrows from s;
 * *extra is malloc'd, free it after use), validated against s. */
int derive_spec_expand(const sch_table_spec *s, sch_table_spec *s2, sch_coldef **extra, sib_err *err);
/* Records s's BUCKET / SALT in the built table t. */
int derive_attach(sch_table *t, const sch_table_spec *s);
/* persist.c's trailer of a table with BUCKET / SALT (nothing otherwise). */
void derive_serialize(const sch_table *t, sib_buf *out);
bool derive_decode(sib_rd *r, sch_table *t);
bool derive_consistent(const sch_table *t);
/* ALTER checks: renaming, dropping or retyping a derived column or its
 * source; adding a static column to a salted table. */
int derive_check_alter_column(const sch_table *t, const char *name, const char *what, sib_err *err);

/* ---- systables.c ---- */
int catalog_add_system_keyspaces(sch_catalog *c);

#endif
