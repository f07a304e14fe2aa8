/* frame.c: the native protocol codec: frame header, notation types, lz4
 * body compression and the <type> option.
 *
 * Frame (v3/v4, spec section 2), big-endian:
 *
 *   offset  size  field
 *   0       1     version   0x03/0x04 request, 0x83/0x84 response
 *   1       1     flags     0x01 compressed, 0x02 tracing, 0x04 custom
 *                           payload, 0x08 warning, 0x10 use-beta (v5)
 *   2       2     stream    signed; -1 = server event
 *   4       1     opcode
 *   5       4     length    body bytes (after compression, if any)
 *
 * Notation (spec section 3):
 *   [int] i32   [long] i64   [short] u16   [byte] u8
 *   [string] u16 n + n bytes           [long string] i32 n + n bytes
 *   [bytes] i32 n + n bytes, n < 0 null
 *   [value] i32 n + n bytes, -1 null, -2 not set (v4)
 *   [short bytes] u16 n + n bytes      [uuid] 16 bytes
 *   [inet] u8 size (4|16) + address + i32 port
 *   [string list] u16 n + n [string]   [string map] u16 n + n ([string],[string])
 *   [string multimap] u16 n + n ([string],[string list])
 *   [bytes map] u16 n + n ([string],[bytes])
 *
 * lz4 body: u32 BIG-endian uncompressed length + one raw LZ4 block (not the
 * LZ4 frame format); the python driver rewrites python-lz4's little-endian
 * prefix into this form, Cassandra writes it directly.
 *
 * Readers never trust a length: each is checked against what is left.
 */
#include "cql.h"

#include <lz4.h>
#include <stdlib.h>

/* ---- name tables ---- */

static const char *const opcode_names[] = {
    [CQL_OP_ERROR] = "ERROR",       [CQL_OP_STARTUP] = "STARTUP",
    [CQL_OP_READY] = "READY",       [CQL_OP_AUTHENTICATE] = "AUTHENTICATE",
    [CQL_OP_OPTIONS] = "OPTIONS",   [CQL_OP_SUPPORTED] = "SUPPORTED",
    [CQL_OP_QUERY] = "QUERY",       [CQL_OP_RESULT] = "RESULT",
    [CQL_OP_PREPARE] = "PREPARE",   [CQL_OP_EXECUTE] = "EXECUTE",
    [CQL_OP_REGISTER] = "REGISTER", [CQL_OP_EVENT] = "EVENT",
    [CQL_OP_BATCH] = "BATCH",       [CQL_OP_AUTH_CHALLENGE] = "AUTH_CHALLENGE",
    [CQL_OP_AUTH_RESPONSE] = "AUTH_RESPONSE", [CQL_OP_AUTH_SUCCESS] = "AUTH_SUCCESS",
};

static const char *const consistency_names[] = {
    "ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE",
};

static const char *const change_names[] = {"CREATED", "UPDATED", "DROPPED"};
static const char *const target_names[] = {"KEYSPACE", "TABLE", "TYPE", "FUNCTION", "AGGREGATE"};
static const char *const write_type_names[] = {
    "SIMPLE", "BATCH", "UNLOGGED_BATCH", "COUNTER", "BATCH_LOG", "CAS", "VIEW", "CDC",
};

static const char *table_name(const char *const *t, size_t n, int i)
{
    if (i < 0 || (size_t)i >= n || !t[i]) return "?";
    return t[i];
}

const char *cql_opcode_name(int op) { return table_name(opcode_names, SIB_ARRAY_LEN(opcode_names), op); }
const char *cql_cl_name(int cl)
{
    return table_name(consistency_names, SIB_ARRAY_LEN(consistency_names), cl);
}
const char *cql_change_name(cql_change c) { return table_name(change_names, SIB_ARRAY_LEN(change_names), (int)c); }
const char *cql_target_name(cql_target t) { return table_name(target_names, SIB_ARRAY_LEN(target_names), (int)t); }
const char *cql_write_type_name(cql_write_type w)
{
    /* An unknown write type must never reach the wire: fall back to SIMPLE. */
    if ((int)w < 0 || (size_t)w >= SIB_ARRAY_LEN(write_type_names)) return "SIMPLE";
    return write_type_names[w];
}

/* ---- header ---- */

void cql_header_encode(uint8_t out[CQL_HEADER_LEN], const cql_header *h)
{
    out[0] = h->version;
    out[1] = h->flags;
    put_be16(out + 2, (uint16_t)h->stream);
    out[4] = h->opcode;
    put_be32(out + 5, h->length);
}

size_t cql_frame_begin_grow(sib_buf *b, uint8_t version, uint8_t flags, int16_t stream, uint8_t opcode)
{
    size_t start = b->len;
    uint8_t *p = sib_buf_reserve(b, CQL_HEADER_LEN);
    if (!p) return start;
    cql_header h = {.version = version, .flags = flags, .stream = stream, .opcode = opcode, .length = 0};
    cql_header_encode(p, &h);
    b->len += CQL_HEADER_LEN;
    return start;
}

int cql_frame_end_slow(sib_buf *b, size_t start, bool compress, sib_err *err)
{
    if (b->oom) return sib_err_set(err, SIB_ENOMEM, "frame buffer");
    SIB_ASSERT(b->len >= start + CQL_HEADER_LEN);
    size_t body = b->len - start - CQL_HEADER_LEN;
    if (compress && body > 0) {
        sib_buf z;
        sib_buf_init(&z);
        int rc = cql_lz4_compress(b->p + start + CQL_HEADER_LEN, body, &z, err);
        if (rc < 0) {
            sib_buf_free(&z);
            return rc;
        }
        b->len = start + CQL_HEADER_LEN;
        sib_buf_append(b, z.p, z.len);
        sib_buf_free(&z);
        if (b->oom) return sib_err_set(err, SIB_ENOMEM, "frame buffer");
        b->p[start + 1] |= CQL_FLAG_COMPRESSION;
        body = b->len - start - CQL_HEADER_LEN;
    }
    if (body > UINT32_MAX) return sib_err_set(err, SIB_ETOOBIG, "frame body of %zu bytes", body);
    put_be32(b->p + start + 5, (uint32_t)body);
    return 0;
}

/* ---- lz4 ---- */

int cql_lz4_compress(const uint8_t *in, size_t n, sib_buf *out, sib_err *err)
{
    if (n > (size_t)LZ4_MAX_INPUT_SIZE) return sib_err_set(err, SIB_ETOOBIG, "lz4 input of %zu bytes", n);
    int bound = LZ4_compressBound((int)n);
    uint8_t *p = sib_buf_reserve(out, 4 + (size_t)bound);
    if (!p) return sib_err_set(err, SIB_ENOMEM, "lz4 output");
    put_be32(p, (uint32_t)n);
    int z = LZ4_compress_default((const char *)in, (char *)p + 4, (int)n, bound);
    if (z <= 0) return sib_err_set(err, SIB_ESERVER, "lz4 compression failed");
    out->len += 4 + (size_t)z;
    return 0;
}

int cql_lz4_decompress(const uint8_t *in, size_t n, size_t max_out, sib_buf *out, sib_err *err)
{
    if (n < 4) return sib_err_set(err, SIB_EPROTO, "lz4 body shorter than its length prefix");
    uint32_t ulen = get_be32(in);
    if (ulen > max_out || ulen > (uint32_t)LZ4_MAX_INPUT_SIZE)
        return sib_err_set(err, SIB_EPROTO, "lz4 body claims %u uncompressed bytes (max %zu)", ulen, max_out);
    if (n - 4 > (size_t)INT32_MAX) return sib_err_set(err, SIB_EPROTO, "lz4 body too large");
    uint8_t *p = sib_buf_reserve(out, ulen ? ulen : 1);
    if (!p) return sib_err_set(err, SIB_ENOMEM, "lz4 output of %u bytes", ulen);
    int got = LZ4_decompress_safe((const char *)in + 4, (char *)p, (int)(n - 4), (int)ulen);
    if (got < 0 || (uint32_t)got != ulen)
        return sib_err_set(err, SIB_EPROTO, "corrupt lz4 body (%d of %u bytes)", got, ulen);
    out->len += ulen;
    return 0;
}

/* ---- readers ---- */

bool cql_str_eq(cql_str s, const char *cstr)
{
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.p, cstr, n) == 0);
}

bool cql_get_long(sib_rd *r, int64_t *v)
{
    uint64_t u;
    if (!sib_rd_be64(r, &u)) return false;
    *v = (int64_t)u;
    return true;
}

static bool rd_fail(sib_rd *r)
{
    r->bad = true;
    return false;
}

bool cql_get_string(sib_rd *r, cql_str *s)
{
    uint16_t n;
    const uint8_t *p;
    if (!sib_rd_be16(r, &n) || !sib_rd_bytes(r, n, &p)) return false;
    s->p = (const char *)p;
    s->len = n;
    return true;
}

bool cql_get_long_string(sib_rd *r, cql_str *s)
{
    int32_t n;
    const uint8_t *p;
    if (!cql_get_int(r, &n)) return false;
    if (n < 0) return rd_fail(r);
    if (!sib_rd_bytes(r, (size_t)n, &p)) return false;
    s->p = (const char *)p;
    s->len = (size_t)n;
    return true;
}

bool cql_get_uuid(sib_rd *r, uint8_t out[16])
{
    const uint8_t *p;
    if (!sib_rd_bytes(r, 16, &p)) return false;
    memcpy(out, p, 16);
    return true;
}

bool cql_get_bytes(sib_rd *r, cql_value *v) { return cql_get_sized(r, v, false); }

bool cql_get_inet(sib_rd *r, uint8_t addr[16], uint8_t *addr_len, int32_t *port)
{
    uint8_t n;
    const uint8_t *p;
    if (!sib_rd_u8(r, &n)) return false;
    if (n != 4 && n != 16) return rd_fail(r);
    if (!sib_rd_bytes(r, n, &p) || !cql_get_int(r, port)) return false;
    memcpy(addr, p, n);
    *addr_len = n;
    return true;
}

bool cql_get_string_list(sib_rd *r, cql_str *out, size_t max, size_t *n)
{
    uint16_t cnt;
    if (!sib_rd_be16(r, &cnt)) return false;
    if (cnt > max) return rd_fail(r);
    for (size_t i = 0; i < cnt; i++)
        if (!cql_get_string(r, &out[i])) return false;
    *n = cnt;
    return true;
}

bool cql_get_string_map(sib_rd *r, cql_str *keys, cql_str *vals, size_t max, size_t *n)
{
    uint16_t cnt;
    if (!sib_rd_be16(r, &cnt)) return false;
    if (cnt > max) return rd_fail(r);
    for (size_t i = 0; i < cnt; i++)
        if (!cql_get_string(r, &keys[i]) || !cql_get_string(r, &vals[i])) return false;
    *n = cnt;
    return true;
}

bool cql_skip_bytes_map(sib_rd *r)
{
    uint16_t cnt;
    cql_str k;
    cql_value v;
    if (!sib_rd_be16(r, &cnt)) return false;
    for (uint16_t i = 0; i < cnt; i++)
        if (!cql_get_string(r, &k) || !cql_get_bytes(r, &v)) return false;
    return true;
}

bool cql_skip_string_multimap(sib_rd *r)
{
    uint16_t cnt, m;
    cql_str s;
    if (!sib_rd_be16(r, &cnt)) return false;
    for (uint16_t i = 0; i < cnt; i++) {
        if (!cql_get_string(r, &s) || !sib_rd_be16(r, &m)) return false;
        for (uint16_t j = 0; j < m; j++)
            if (!cql_get_string(r, &s)) return false;
    }
    return true;
}

/* ---- writers ---- */

void cql_put_byte(sib_buf *b, uint8_t v) { sib_buf_u8(b, v); }
void cql_put_short(sib_buf *b, uint16_t v) { sib_buf_be16(b, v); }
void cql_put_long(sib_buf *b, int64_t v) { sib_buf_be64(b, (uint64_t)v); }

void cql_put_string(sib_buf *b, const char *s, size_t n)
{
    if (n > UINT16_MAX) n = UINT16_MAX;
    sib_buf_be16(b, (uint16_t)n);
    if (n) sib_buf_append(b, s, n);
}

void cql_put_cstring(sib_buf *b, const char *s) { cql_put_string(b, s ? s : "", s ? strlen(s) : 0); }

void cql_put_long_string(sib_buf *b, const char *s, size_t n)
{
    if (n > INT32_MAX) n = INT32_MAX;
    sib_buf_be32(b, (uint32_t)n);
    if (n) sib_buf_append(b, s, n);
}

void cql_put_uuid(sib_buf *b, const uint8_t u[16]) { sib_buf_append(b, u, 16); }

void cql_put_bytes(sib_buf *b, const void *p, int32_t len)
{
    if (len < 0 || (!p && len > 0)) {
        sib_buf_be32(b, (uint32_t)CQL_VALUE_NULL);
        return;
    }
    sib_buf_be32(b, (uint32_t)len);
    if (len) sib_buf_append(b, p, (size_t)len);
}

void cql_put_value(sib_buf *b, const void *p, int32_t len)
{
    if (len == CQL_VALUE_UNSET) {
        sib_buf_be32(b, (uint32_t)CQL_VALUE_UNSET);
        return;
    }
    cql_put_bytes(b, p, len);
}

void cql_put_short_bytes(sib_buf *b, const void *p, uint16_t len)
{
    sib_buf_be16(b, len);
    if (len) sib_buf_append(b, p, len);
}

void cql_put_inet(sib_buf *b, const uint8_t *addr, uint8_t addr_len, int32_t port)
{
    SIB_ASSERT(addr_len == 4 || addr_len == 16);
    sib_buf_u8(b, addr_len);
    sib_buf_append(b, addr, addr_len);
    cql_put_int(b, port);
}

void cql_put_string_list(sib_buf *b, const char *const *v, size_t n)
{
    SIB_ASSERT(n <= UINT16_MAX);
    sib_buf_be16(b, (uint16_t)n);
    for (size_t i = 0; i < n; i++) cql_put_cstring(b, v[i]);
}

void cql_put_string_map(sib_buf *b, const char *const *kv, size_t n)
{
    SIB_ASSERT(n <= UINT16_MAX);
    sib_buf_be16(b, (uint16_t)n);
    for (size_t i = 0; i < n; i++) {
        cql_put_cstring(b, kv[2 * i]);
        cql_put_cstring(b, kv[2 * i + 1]);
    }
}

/* ---- <type> ---- */

/* Class names Cassandra sends for types that have no native code in the
 * session's protocol version (transport/DataType.java fromType). */
static const char *custom_class(sch_type_code code, int version)
{
    switch (code) {
    case SCH_T_DURATION: return "org.apache.cassandra.db.marshal.DurationType";
    case SCH_T_DATE: return version < 4 ? "org.apache.cassandra.db.marshal.SimpleDateType" : NULL;
    case SCH_T_TIME: return version < 4 ? "org.apache.cassandra.db.marshal.TimeType" : NULL;
    case SCH_T_SMALLINT: return version < 4 ? "org.apache.cassandra.db.marshal.ShortType" : NULL;
    case SCH_T_TINYINT: return version < 4 ? "org.apache.cassandra.db.marshal.ByteType" : NULL;
    default: return NULL;
    }
}

static int put_type_depth(sib_buf *b, const sch_type *t, int version, int depth, sib_err *err)
{
    if (!t) return sib_err_set(err, SIB_EINVAL, "missing column type");
    if (depth > 32) return sib_err_set(err, SIB_EINVAL, "type nested too deeply");
    const char *cls = custom_class(t->code, version);
    if (cls) {
        cql_put_short(b, SCH_T_CUSTOM);
        cql_put_cstring(b, cls);
        return 0;
    }
    switch (t->code) {
    case SCH_T_ASCII: case SCH_T_BIGINT: case SCH_T_BLOB: case SCH_T_BOOLEAN: case SCH_T_COUNTER:
    case SCH_T_DECIMAL: case SCH_T_DOUBLE: case SCH_T_FLOAT: case SCH_T_INT: case SCH_T_TIMESTAMP:
    case SCH_T_UUID: case SCH_T_VARCHAR: case SCH_T_VARINT: case SCH_T_TIMEUUID: case SCH_T_INET:
    case SCH_T_DATE: case SCH_T_TIME: case SCH_T_SMALLINT: case SCH_T_TINYINT:
        cql_put_short(b, (uint16_t)t->code);
        return 0;
    case SCH_T_LIST:
    case SCH_T_SET:
        cql_put_short(b, (uint16_t)t->code);
        return put_type_depth(b, t->sub[0], version, depth + 1, err);
    case SCH_T_MAP: {
        cql_put_short(b, (uint16_t)t->code);
        int rc = put_type_depth(b, t->sub[0], version, depth + 1, err);
        return rc < 0 ? rc : put_type_depth(b, t->sub[1], version, depth + 1, err);
    }
    case SCH_T_TUPLE: {
        size_t n = sch_type_tuple_size(t);
        cql_put_short(b, SCH_T_TUPLE);
        cql_put_short(b, (uint16_t)n);
        for (size_t i = 0; i < n; i++) {
            int rc = put_type_depth(b, sch_type_tuple_elem(t, i), version, depth + 1, err);
            if (rc < 0) return rc;
        }
        return 0;
    }
    default:
        return sib_err_set(err, SIB_EINVAL, "type code 0x%04x cannot be described in result metadata", t->code);
    }
}

int cql_put_type(sib_buf *b, const sch_type *t, int version, sib_err *err)
{
    return put_type_depth(b, t, version, 0, err);
}
