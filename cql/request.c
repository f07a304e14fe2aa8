/* request.c: decoding of QUERY, PREPARE, EXECUTE and BATCH bodies.
 *
 *   QUERY    [long string] query  <query_parameters>
 *   PREPARE  [long string] query                     (v3/v4: nothing else)
 *   EXECUTE  [short bytes] id     <query_parameters>
 *   BATCH    [byte] type [short] n  n * <stmt>  [consistency] [byte] flags
 *            [[consistency] serial if 0x10] [[long] timestamp if 0x20]
 *     <stmt> = [byte] kind (0: [long string] query, 1: [short bytes] id)
 *              [short] nv  nv * ([string] name if flag 0x40) [value]
 *
 *   <query_parameters> = [consistency] [byte] flags, then in this order:
 *     0x01 [short] n + n * ([string] name if 0x40) [value]
 *     0x02 skip metadata (no bytes)
 *     0x04 [int] page size
 *     0x08 [bytes] paging state
 *     0x10 [consistency] serial consistency
 *     0x20 [long] default timestamp (µs)
 *     0x40 names for values (no bytes; changes 0x01)
 *
 * Decoding never trusts a count: arrays are allocated only after checking
 * that the remaining body can hold that many minimal entries, so a 4-byte
 * body cannot make us allocate 65535 values. Views point into the body.
 */
#include "cql.h"

#include <stddef.h>

/* The smallest encoding of one [value] is its 4-byte length; of a batch
 * statement a kind byte + a 2-byte id/4-byte query length + a 2-byte count. */
enum { MIN_VALUE_BYTES = 4, MIN_NAMED_VALUE_BYTES = 6, MIN_BATCH_STMT_BYTES = 5 };

static int truncated(sib_err *err, const char *what)
{
    return sib_err_set(err, SIB_EPROTO, "Invalid %s message: truncated or malformed body", what);
}

static bool valid_consistency(uint16_t cl) { return cl <= CQL_LOCAL_ONE; }

/* n values (optionally named) into arena arrays, or into room (room_n of
 * them) when they fit. */
static inline int decode_values(sib_rd *r, int version, uint16_t n, bool named, sib_arena *a, cql_value *room,
                                size_t room_n, const cql_value **values, const cql_str **names, const char *what,
                                sib_err *err)
{
    *values = NULL;
    *names = NULL;
    if (n == 0) return 0;
    if ((size_t)n * (named ? MIN_NAMED_VALUE_BYTES : MIN_VALUE_BYTES) > sib_rd_left(r)) return truncated(err, what);
    cql_value *v = n <= room_n ? room : sib_arena_alloc(a, sizeof *v * n);
    cql_str *nm = named ? sib_arena_alloc(a, sizeof *nm * n) : NULL;
    if (!v || (named && !nm)) return sib_err_set(err, SIB_ENOMEM, "values of %s", what);
    if (!named) {
        /* Off a local cursor: each value's pointer store would otherwise
         * make the compiler reload the reader's position (they may alias),
         * a good part of an EXECUTE's decoding. Same checks as
         * cql_get_value. */
        const uint8_t *q = r->p, *end = r->end;
        for (uint16_t i = 0; i < n; i++) {
            if (end - q < 4) return truncated(err, what);
            int32_t len = (int32_t)get_be32(q);
            q += 4;
            if (len >= 0) {
                if ((size_t)(end - q) < (size_t)len) return truncated(err, what);
                v[i].p = q;
                q += len;
            } else if (len == CQL_VALUE_NULL || (len == CQL_VALUE_UNSET && version >= 4)) {
                v[i].p = NULL;
            } else if (len == CQL_VALUE_UNSET) {
                return sib_err_set(err, SIB_EPROTO, "Invalid %s message: unset values need protocol v4", what);
            } else {
                return truncated(err, what);
            }
            v[i].len = len;
        }
        r->p = q;
        *values = v;
        return 0;
    }
    for (uint16_t i = 0; i < n; i++) {
        if (named && !cql_get_string(r, &nm[i])) return truncated(err, what);
        if (!cql_get_value(r, &v[i])) return truncated(err, what);
        if (v[i].len == CQL_VALUE_UNSET && version < 4)
            return sib_err_set(err, SIB_EPROTO, "Invalid %s message: unset values need protocol v4", what);
    }
    *values = v;
    *names = nm;
    return 0;
}

/* Inline in its two callers (QUERY, EXECUTE): a call a request, and the
 * reader kept in registers. */
static inline __attribute__((always_inline)) int decode_params(sib_rd *r, int version, sib_arena *a, cql_params *p,
                                                               const char *what, sib_err *err)
{
    memset(p, 0, offsetof(cql_params, values_room)); /* the room is written before it is read */
    p->page_size = -1;
    p->paging_state.len = CQL_VALUE_NULL;
    p->serial_consistency = CQL_SERIAL;
    p->timestamp = INT64_MIN;
    if (!cql_get_short(r, &p->consistency) || !cql_get_byte(r, &p->flags)) return truncated(err, what);
    if (!valid_consistency(p->consistency))
        return sib_err_set(err, SIB_EPROTO, "Unknown code %u for a consistency level", p->consistency);
    if (p->flags & 0x80) return sib_err_set(err, SIB_EPROTO, "Invalid %s message: unknown flags 0x%02x", what, p->flags);
    if (p->flags & CQL_QF_VALUES) {
        uint16_t n;
        if (!cql_get_short(r, &n)) return truncated(err, what);
        int rc = decode_values(r, version, n, p->flags & CQL_QF_NAMES_FOR_VALUES, a, p->values_room,
                               SIB_ARRAY_LEN(p->values_room), &p->values, &p->names, what, err);
        if (rc < 0) return rc;
        p->nvalues = n;
    }
    p->skip_metadata = p->flags & CQL_QF_SKIP_METADATA;
    if (p->flags & CQL_QF_PAGE_SIZE) {
        if (!cql_get_int(r, &p->page_size)) return truncated(err, what);
        /* C* treats a non-positive page size as "no paging". */
        if (p->page_size <= 0) p->page_size = -1;
    }
    if ((p->flags & CQL_QF_PAGING_STATE) && !cql_get_bytes(r, &p->paging_state)) return truncated(err, what);
    if (p->flags & CQL_QF_SERIAL_CONSISTENCY) {
        if (!cql_get_short(r, &p->serial_consistency)) return truncated(err, what);
        if (p->serial_consistency != CQL_SERIAL && p->serial_consistency != CQL_LOCAL_SERIAL)
            return sib_err_set(err, SIB_EPROTO, "Invalid serial consistency %u", p->serial_consistency);
    }
    if (p->flags & CQL_QF_DEFAULT_TIMESTAMP) {
        if (!cql_get_long(r, &p->timestamp)) return truncated(err, what);
        if (p->timestamp == INT64_MIN)
            return sib_err_set(err, SIB_EPROTO, "Out of bound timestamp, must be greater than %lld", (long long)INT64_MIN);
    }
    return 0;
}

static int finish(const sib_rd *r, const char *what, sib_err *err)
{
    if (r->bad) return truncated(err, what);
    if (sib_rd_left(r) != 0)
        return sib_err_set(err, SIB_EPROTO, "Invalid %s message: %zu unexpected trailing bytes", what, sib_rd_left(r));
    return 0;
}

int cql_decode_query(const uint8_t *body, size_t n, int version, sib_arena *a, cql_query_req *out, sib_err *err)
{
    sib_rd r;
    sib_rd_init(&r, body, n);
    memset(out, 0, offsetof(cql_query_req, params)); /* decode_params clears the rest */
    if (!cql_get_long_string(&r, &out->query)) return truncated(err, "QUERY");
    int rc = decode_params(&r, version, a, &out->params, "QUERY", err);
    return rc < 0 ? rc : finish(&r, "QUERY", err);
}

int cql_decode_prepare(const uint8_t *body, size_t n, int version, sib_arena *a, cql_prepare_req *out, sib_err *err)
{
    sib_rd r;
    sib_rd_init(&r, body, n);
    memset(out, 0, sizeof *out);
    if (!cql_get_long_string(&r, &out->query)) return truncated(err, "PREPARE");
    return finish(&r, "PREPARE", err);
}

int cql_decode_execute(const uint8_t *body, size_t n, int version, sib_arena *a, cql_execute_req *out, sib_err *err)
{
    sib_rd r;
    sib_rd_init(&r, body, n);
    memset(out, 0, offsetof(cql_execute_req, params)); /* decode_params clears the rest */
    if (!cql_get_short_bytes(&r, &out->id)) return truncated(err, "EXECUTE");
    if (out->id.len == 0) return sib_err_set(err, SIB_EPROTO, "Invalid EXECUTE message: empty statement id");
    int rc = decode_params(&r, version, a, &out->params, "EXECUTE", err);
    return rc < 0 ? rc : finish(&r, "EXECUTE", err);
}

static int decode_batch_stmt(sib_rd *r, int version, sib_arena *a, cql_batch_stmt *s, sib_err *err)
{
    uint8_t kind;
    if (!cql_get_byte(r, &kind)) return truncated(err, "BATCH");
    if (kind == 0) {
        if (!cql_get_long_string(r, &s->query)) return truncated(err, "BATCH");
    } else if (kind == 1) {
        s->prepared = true;
        if (!cql_get_short_bytes(r, &s->id)) return truncated(err, "BATCH");
        if (s->id.len == 0) return sib_err_set(err, SIB_EPROTO, "Invalid BATCH message: empty statement id");
    } else {
        return sib_err_set(err, SIB_EPROTO, "Invalid query kind in BATCH messages. Must be 0 or 1 but got %u", kind);
    }
    if (!cql_get_short(r, &s->nvalues)) return truncated(err, "BATCH");
    return 0;
}

/* The 0x40 flag (names for values) comes after the statements it changes,
 * so one pass cannot know whether names are present. Decode once assuming
 * no names; if that fails or the trailer says 0x40, decode again with names
 * and accept only if that pass agrees (0x40 set). The spec calls the flag
 * broken and no driver sends it, so the second pass is the rare path. */
static int decode_batch_pass(sib_rd *r, int version, bool named, sib_arena *a, cql_batch_req *out, sib_err *err)
{
    uint16_t n = out->nstmts;
    cql_batch_stmt *st = sib_arena_alloc(a, sizeof *st * (n ? n : 1));
    if (!st) return sib_err_set(err, SIB_ENOMEM, "BATCH statements");
    memset(st, 0, sizeof *st * (n ? n : 1));
    for (uint16_t i = 0; i < n; i++) {
        int rc = decode_batch_stmt(r, version, a, &st[i], err);
        if (rc < 0) return rc;
        rc = decode_values(r, version, st[i].nvalues, named, a, NULL, 0, &st[i].values, &st[i].names, "BATCH", err);
        if (rc < 0) return rc;
    }
    out->stmts = st;
    if (!cql_get_short(r, &out->consistency) || !cql_get_byte(r, &out->flags)) return truncated(err, "BATCH");
    return 0;
}

int cql_decode_batch(const uint8_t *body, size_t n, int version, sib_arena *a, cql_batch_req *out, sib_err *err)
{
    sib_rd r;
    memset(out, 0, sizeof *out);
    sib_rd_init(&r, body, n);
    if (!cql_get_byte(&r, &out->type) || !cql_get_short(&r, &out->nstmts)) return truncated(err, "BATCH");
    if (out->type > CQL_BATCHTYPE_COUNTER)
        return sib_err_set(err, SIB_EPROTO, "Invalid BATCH message: unknown batch type %u", out->type);
    if (sib_rd_left(&r) / MIN_BATCH_STMT_BYTES < out->nstmts) return truncated(err, "BATCH");
    sib_rd start = r;
    int rc = decode_batch_pass(&r, version, false, a, out, err);
    if (rc < 0 || (out->flags & CQL_QF_NAMES_FOR_VALUES)) {
        sib_err first = err ? *err : (sib_err){0};
        sib_rd named = start;
        int rc2 = decode_batch_pass(&named, version, true, a, out, err);
        if (rc2 == 0 && (out->flags & CQL_QF_NAMES_FOR_VALUES)) {
            rc = 0;
            r = named;
        } else if (rc < 0) {
            if (err) *err = first;
        } else {
            rc = truncated(err, "BATCH");
        }
    }
    if (rc < 0) return rc;
    if (!valid_consistency(out->consistency))
        return sib_err_set(err, SIB_EPROTO, "Unknown code %u for a consistency level", out->consistency);
    if (out->flags & ~(CQL_QF_SERIAL_CONSISTENCY | CQL_QF_DEFAULT_TIMESTAMP | CQL_QF_NAMES_FOR_VALUES))
        return sib_err_set(err, SIB_EPROTO, "Invalid BATCH message: unknown flags 0x%02x", out->flags);
    out->serial_consistency = CQL_SERIAL;
    out->timestamp = INT64_MIN;
    if (out->flags & CQL_QF_SERIAL_CONSISTENCY) {
        if (!cql_get_short(&r, &out->serial_consistency)) return truncated(err, "BATCH");
        if (out->serial_consistency != CQL_SERIAL && out->serial_consistency != CQL_LOCAL_SERIAL)
            return sib_err_set(err, SIB_EPROTO, "Invalid serial consistency %u", out->serial_consistency);
    }
    if ((out->flags & CQL_QF_DEFAULT_TIMESTAMP) && !cql_get_long(&r, &out->timestamp)) return truncated(err, "BATCH");
    return finish(&r, "BATCH", err);
}
