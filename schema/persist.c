/* persist.c: binary forms of keyspace and table definitions, and the
 * schema version derived from them.
 *
 * Format (all integers big-endian unless noted; str = uvarint length + bytes;
 * map = uvarint count + (str key, str value)*):
 *
 *   keyspace: "SIBK" u8 version(1) str name, u8 durable_writes, map replication
 *   table:    "SIBT" u8 version(1) str keyspace, str name, 16 id, u32 next_col_id,
 *             uvarint ncols, ncols * (str name, str type (CQL text), u8 kind,
 *                                      u32 position+1 (0 = none), u8 order, u32 id),
 *             uvarint ndropped, ndropped * (str name, str type, u8 kind,
 *                                           u64 dropped_time_us, u32 id),
 *             options: str comment, u32 default_time_to_live, u32 gc_grace_seconds,
 *             u64 bloom_filter_fp_chance bits, u64 crc_check_chance bits,
 *             u32 max_index_interval, u32 min_index_interval,
 *             u32 memtable_flush_period_in_ms, u8 cdc, str speculative_retry,
 *             str additional_write_policy, str read_repair,
 *             map caching, map compaction, map compression,
 *             [BUCKET / SALT trailer, only when the table has one: derive.c]
 *
 * Types are stored as their CQL text and re-parsed, so the format does not
 * depend on in-memory type identity. Loading checks every structural
 * invariant (pk/clustering positions dense, names and ids unique) and
 * returns SIB_ECORRUPT on anything else.
 */
#include "schema_int.h"

#include <stdlib.h>

#define FORMAT_VERSION 1

static void put_str(sib_buf *b, const char *s)
{
    size_t n = strlen(s);
    sib_buf_uvarint(b, n);
    sib_buf_append(b, s, n);
}

static void put_map(sib_buf *b, const sch_strmap *m)
{
    sib_buf_uvarint(b, m->n);
    for (size_t i = 0; i < m->n; i++) {
        put_str(b, m->kv[i].key);
        put_str(b, m->kv[i].value);
    }
}

static void put_type(sib_buf *b, const sch_type *t)
{
    sib_buf tmp;
    sib_buf_init(&tmp);
    sch_type_cql_name(t, &tmp);
    sib_buf_uvarint(b, tmp.len);
    sib_buf_append(b, tmp.p, tmp.len);
    if (tmp.oom) b->oom = true;
    sib_buf_free(&tmp);
}

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

int sch_catalog_serialize_keyspace(const sch_keyspace *ks, sib_buf *out)
{
    sib_buf_append(out, "SIBK", 4);
    sib_buf_u8(out, FORMAT_VERSION);
    put_str(out, ks->name);
    sib_buf_u8(out, ks->durable_writes);
    put_map(out, &ks->repl);
    return out->oom ? SIB_ENOMEM : 0;
}

int sch_catalog_serialize_table(const sch_table *t, sib_buf *out)
{
    sib_buf_append(out, "SIBT", 4);
    sib_buf_u8(out, FORMAT_VERSION);
    put_str(out, t->ks);
    put_str(out, t->name);
    sib_buf_append(out, t->id, 16);
    sib_buf_be32(out, t->next_col_id);
    sib_buf_uvarint(out, t->ncols);
    for (size_t i = 0; i < t->ncols; i++) {
        const sch_column *c = &t->cols[i];
        put_str(out, c->name);
        put_type(out, c->type);
        sib_buf_u8(out, (uint8_t)c->kind);
        sib_buf_be32(out, (uint32_t)(c->position + 1));
        sib_buf_u8(out, (uint8_t)c->order);
        sib_buf_be32(out, c->id);
    }
    sib_buf_uvarint(out, t->ndropped);
    for (size_t i = 0; i < t->ndropped; i++) {
        const sch_dropped_column *d = &t->dropped[i];
        put_str(out, d->name);
        put_type(out, d->type);
        sib_buf_u8(out, (uint8_t)d->kind);
        sib_buf_be64(out, (uint64_t)d->dropped_time_us);
        sib_buf_be32(out, d->id);
    }
    const sch_table_opts *o = &t->opts;
    put_str(out, o->comment);
    sib_buf_be32(out, (uint32_t)o->default_time_to_live);
    sib_buf_be32(out, (uint32_t)o->gc_grace_seconds);
    sib_buf_be64(out, dbits(o->bloom_filter_fp_chance));
    sib_buf_be64(out, dbits(o->crc_check_chance));
    sib_buf_be32(out, (uint32_t)o->max_index_interval);
    sib_buf_be32(out, (uint32_t)o->min_index_interval);
    sib_buf_be32(out, (uint32_t)o->memtable_flush_period_in_ms);
    sib_buf_u8(out, o->cdc);
    put_str(out, o->speculative_retry);
    put_str(out, o->additional_write_policy);
    put_str(out, o->read_repair);
    put_map(out, &o->caching);
    put_map(out, &o->compaction);
    put_map(out, &o->compression);
    derive_serialize(t, out); /* BUCKET / SALT: only tables that have one */
    return out->oom ? SIB_ENOMEM : 0;
}

/* ---- decoding ---- */

static char *get_str(sib_rd *r)
{
    uint64_t n;
    const uint8_t *p;
    if (!sib_rd_uvarint(r, &n) || n > sib_rd_left(r) || !sib_rd_bytes(r, (size_t)n, &p)) { r->bad = true; return NULL; }
    if (memchr(p, 0, (size_t)n)) { r->bad = true; return NULL; }
    char *s = malloc((size_t)n + 1);
    if (!s) { r->bad = true; return NULL; }
    memcpy(s, p, (size_t)n);
    s[n] = 0;
    return s;
}

static bool get_map(sib_rd *r, sch_strmap *m)
{
    uint64_t n;
    memset(m, 0, sizeof *m);
    if (!sib_rd_uvarint(r, &n) || n > sib_rd_left(r)) return false;
    for (uint64_t i = 0; i < n; i++) {
        char *k = get_str(r), *v = k ? get_str(r) : NULL;
        bool ok = k && v && !strmap_set(m, k, v);
        free(k);
        free(v);
        if (!ok) { strmap_free(m); return false; }
    }
    return true;
}

static const sch_type *get_type(sch_catalog *c, sib_rd *r)
{
    char *s = get_str(r);
    if (!s) return NULL;
    const sch_type *t = NULL;
    sib_err e;
    if (sch_type_parse(c->types, s, strlen(s), &t, &e)) t = NULL;
    free(s);
    return t;
}

static bool check_magic(sib_rd *r, const char *magic)
{
    const uint8_t *m;
    uint8_t ver;
    return sib_rd_bytes(r, 4, &m) && !memcmp(m, magic, 4) && sib_rd_u8(r, &ver) && ver == FORMAT_VERSION;
}

int sch_catalog_load_keyspace(sch_catalog *c, const uint8_t *p, size_t len, sib_err *err)
{
    sib_rd r;
    sib_rd_init(&r, p, len);
    if (!check_magic(&r, "SIBK")) return sib_err_set(err, SIB_ECORRUPT, "not a keyspace definition (bad magic/version)");
    char *name = get_str(&r);
    uint8_t durable = 0;
    sch_strmap repl = { 0 };
    bool ok = name && sib_rd_u8(&r, &durable) && durable <= 1 && get_map(&r, &repl) && !sib_rd_left(&r) && !r.bad;
    ok = ok && sch_name_valid(name) && sch_strmap_get(&repl, "class");
    if (!ok) {
        free(name);
        strmap_free(&repl);
        return sib_err_set(err, SIB_ECORRUPT, "corrupt keyspace definition");
    }
    sch_keyspace *ks = catalog_find_ks(c, name);
    if (ks) {
        if (ks->system) {
            free(name);
            strmap_free(&repl);
            return sib_err_set(err, SIB_EINVAL, "cannot load over system keyspace %s", ks->name);
        }
        free(name);
        strmap_free(&ks->repl);
        ks->repl = repl;
        ks->durable_writes = durable;
    } else {
        ks = calloc(1, sizeof *ks);
        if (ks) {
            /* catalog_insert_keyspace orders by name: set it first. */
            ks->name = name;
            ks->repl = repl;
            ks->durable_writes = durable;
        }
        if (!ks || catalog_insert_keyspace(c, ks)) {
            free(ks);
            free(name);
            strmap_free(&repl);
            return sib_err_set(err, SIB_ENOMEM, "out of memory");
        }
    }
    catalog_bump_version(c);
    return 0;
}

/* Structural invariants of a decoded table. */
static bool table_consistent(const sch_table *t)
{
    size_t npk = 0, nck = 0;
    for (size_t i = 0; i < t->ncols; i++) {
        const sch_column *c = &t->cols[i];
        if (c->kind == SCH_COL_PARTITION_KEY) npk++;
        if (c->kind == SCH_COL_CLUSTERING) nck++;
        if (c->id >= t->next_col_id) return false;
        bool key = c->kind == SCH_COL_PARTITION_KEY || c->kind == SCH_COL_CLUSTERING;
        if (key != (c->position >= 0)) return false;
        if ((c->kind == SCH_COL_CLUSTERING) != (c->order != SCH_ORDER_NONE)) return false;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(t->cols[j].name, c->name) || t->cols[j].id == c->id) return false;
    }
    if (!npk) return false;
    for (size_t i = 0; i < t->ncols; i++) {
        const sch_column *c = &t->cols[i];
        if (c->kind == SCH_COL_PARTITION_KEY && (size_t)c->position >= npk) return false;
        if (c->kind == SCH_COL_CLUSTERING && (size_t)c->position >= nck) return false;
    }
    /* sorted: positions are dense exactly when column i has position i */
    for (size_t i = 0; i < t->npk; i++)
        if (t->cols[i].position != (int)i) return false;
    for (size_t i = 0; i < t->nck; i++)
        if (t->cols[t->npk + i].position != (int)i) return false;
    return true;
}

static bool decode_columns(sch_catalog *c, sib_rd *r, sch_table *t)
{
    uint64_t n;
    if (!sib_rd_uvarint(r, &n) || n > sib_rd_left(r)) return false;
    t->cols = calloc(n ? n : 1, sizeof *t->cols);
    if (!t->cols) return false;
    for (uint64_t i = 0; i < n; i++) {
        sch_column *col = &t->cols[t->ncols];
        uint8_t kind, order;
        uint32_t pos, id;
        col->name = get_str(r);
        if (!col->name) return false;
        t->ncols++;
        col->type = get_type(c, r);
        if (!col->type || !sib_rd_u8(r, &kind) || kind > SCH_COL_STATIC || !sib_rd_be32(r, &pos) ||
            pos > 0x10000 || !sib_rd_u8(r, &order) || order > SCH_ORDER_DESC || !sib_rd_be32(r, &id))
            return false;
        col->kind = (sch_col_kind)kind;
        col->position = (int)pos - 1;
        col->order = (sch_order)order;
        col->id = id;
    }
    if (!sib_rd_uvarint(r, &n) || n > sib_rd_left(r)) return false;
    t->dropped = calloc(n ? n : 1, sizeof *t->dropped);
    if (!t->dropped) return false;
    for (uint64_t i = 0; i < n; i++) {
        sch_dropped_column *d = &t->dropped[t->ndropped];
        uint8_t kind;
        uint64_t ts;
        d->name = get_str(r);
        if (!d->name) return false;
        t->ndropped++;
        d->type = get_type(c, r);
        if (!d->type || !sib_rd_u8(r, &kind) || (kind != SCH_COL_REGULAR && kind != SCH_COL_STATIC) ||
            !sib_rd_be64(r, &ts) || !sib_rd_be32(r, &d->id))
            return false;
        d->kind = (sch_col_kind)kind;
        d->dropped_time_us = (int64_t)ts;
    }
    return true;
}

static bool decode_options(sib_rd *r, sch_table_opts *o)
{
    uint32_t ttl, gc, maxii, minii, flush;
    uint64_t bloom, crc;
    uint8_t cdc;
    memset(o, 0, sizeof *o);
    o->comment = get_str(r);
    if (!o->comment || !sib_rd_be32(r, &ttl) || !sib_rd_be32(r, &gc) || !sib_rd_be64(r, &bloom) ||
        !sib_rd_be64(r, &crc) || !sib_rd_be32(r, &maxii) || !sib_rd_be32(r, &minii) || !sib_rd_be32(r, &flush) ||
        !sib_rd_u8(r, &cdc) || cdc > 1)
        return false;
    o->default_time_to_live = (int32_t)ttl;
    o->gc_grace_seconds = (int32_t)gc;
    memcpy(&o->bloom_filter_fp_chance, &bloom, 8);
    memcpy(&o->crc_check_chance, &crc, 8);
    o->max_index_interval = (int32_t)maxii;
    o->min_index_interval = (int32_t)minii;
    o->memtable_flush_period_in_ms = (int32_t)flush;
    o->cdc = cdc;
    if (!(o->speculative_retry = get_str(r)) || !(o->additional_write_policy = get_str(r)) ||
        !(o->read_repair = get_str(r)))
        return false;
    return get_map(r, &o->caching) && get_map(r, &o->compaction) && get_map(r, &o->compression);
}

int sch_catalog_load_table(sch_catalog *c, const uint8_t *p, size_t len, sib_err *err)
{
    sib_rd r;
    sib_rd_init(&r, p, len);
    if (!check_magic(&r, "SIBT")) return sib_err_set(err, SIB_ECORRUPT, "not a table definition (bad magic/version)");
    sch_table *t = calloc(1, sizeof *t);
    if (!t) return sib_err_set(err, SIB_ENOMEM, "out of memory");
    const uint8_t *id;
    bool ok = (t->ks = get_str(&r)) && (t->name = get_str(&r)) && sib_rd_bytes(&r, 16, &id) &&
              sib_rd_be32(&r, &t->next_col_id);
    if (ok) memcpy(t->id, id, 16);
    ok = ok && decode_columns(c, &r, t) && decode_options(&r, &t->opts) && (!sib_rd_left(&r) || derive_decode(&r, t)) &&
         !sib_rd_left(&r) && !r.bad;
    sib_err verr;
    ok = ok && sch_name_valid(t->name) && opts_validate(&t->opts, &verr) == 0;
    if (ok) {
        table_sort_columns(t);
        ok = table_consistent(t) && derive_consistent(t);
    }
    if (!ok) {
        table_free(t);
        return sib_err_set(err, SIB_ECORRUPT, "corrupt table definition");
    }
    sch_keyspace *ks = catalog_find_ks(c, t->ks);
    if (!ks || ks->system) {
        int rc = sib_err_set(err, ks ? SIB_EINVAL : SIB_ENOTFOUND, "keyspace %s of table %s is %s", t->ks, t->name,
                             ks ? "a system keyspace" : "not loaded");
        table_free(t);
        return rc;
    }
    const sch_table *same_id = sch_catalog_table_by_id(c, t->id);
    for (size_t i = 0; i < ks->ntables; i++) {
        sch_table *old = ks->tables[i];
        if (strcmp(old->name, t->name)) continue;
        if (memcmp(old->id, t->id, 16)) {
            table_free(t);
            return sib_err_set(err, SIB_EEXIST, "table %s.%s exists with another id", ks->name, old->name);
        }
    }
    if (same_id && (strcmp(same_id->ks, t->ks) || strcmp(same_id->name, t->name))) {
        table_free(t);
        return sib_err_set(err, SIB_EEXIST, "table id already used by %s.%s", same_id->ks, same_id->name);
    }
    for (size_t i = 0; i < ks->ntables; i++)
        if (ks->tables[i] == same_id) {
            table_free(ks->tables[i]);
            memmove(&ks->tables[i], &ks->tables[i + 1], (ks->ntables - i - 1) * sizeof *ks->tables);
            ks->ntables--;
            break;
        }
    if (keyspace_insert_table(ks, t)) {
        table_free(t);
        return sib_err_set(err, SIB_ENOMEM, "out of memory");
    }
    catalog_bump_version(c);
    return 0;
}

/* ---- schema version ---- */

void catalog_bump_version(sch_catalog *c)
{
    sib_buf b;
    sib_buf_init(&b);
    for (size_t i = 0; i < c->nks; i++) {
        const sch_keyspace *ks = c->ks[i];
        if (ks->system) continue;
        sch_catalog_serialize_keyspace(ks, &b);
        for (size_t j = 0; j < ks->ntables; j++) sch_catalog_serialize_table(ks->tables[j], &b);
    }
    /* two independent 64-bit halves: h1 of the bytes, and of the bytes + a salt */
    uint64_t h1 = (uint64_t)sib_murmur3_h1(b.p ? b.p : (const uint8_t *)"", b.len);
    sib_buf_append(&b, "sibyl-schema", 12);
    uint64_t h2 = (uint64_t)sib_murmur3_h1(b.p ? b.p : (const uint8_t *)"", b.len);
    sib_buf_free(&b);
    put_be64(c->version, h1);
    put_be64(c->version + 8, h2);
    c->version[6] = (uint8_t)((c->version[6] & 0x0F) | 0x30); /* version 3: name-based */
    c->version[8] = (uint8_t)((c->version[8] & 0x3F) | 0x80); /* IETF variant */
}

void sch_catalog_schema_version(const sch_catalog *c, uint8_t out[16]) { memcpy(out, c->version, 16); }
