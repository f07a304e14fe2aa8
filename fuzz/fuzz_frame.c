/* fuzz_frame.c: arbitrary bytes through the native protocol decoders.
 *
 * The input is read as a stream of frames, exactly as a connection reads
 * it: 9-byte header, then up to `length` body bytes (truncated at the end of
 * the input), lz4 decompression when the flag says so, custom payload
 * skipping, then every body decoder (QUERY, PREPARE, EXECUTE, BATCH) in both
 * protocol versions, plus the handshake readers ([string map], [string
 * list]). Decoders must reject or accept without reading out of bounds,
 * and accepted views must lie inside the body they came from. */
#include "cql.h"

#include <stdlib.h>

enum { MAX_BODY = 1 << 20 };

static void check_view(const void *p, size_t n, const uint8_t *body, size_t len)
{
    if (n == 0) return;
    const uint8_t *q = p;
    if (q < body || q + n > body + len) abort();
}

static void check_params(const cql_params *pr, const uint8_t *body, size_t len)
{
    for (uint16_t i = 0; i < pr->nvalues; i++) {
        if (pr->values[i].len > 0) check_view(pr->values[i].p, (size_t)pr->values[i].len, body, len);
        if (pr->names) check_view(pr->names[i].p, pr->names[i].len, body, len);
    }
    if (pr->paging_state.len > 0) check_view(pr->paging_state.p, (size_t)pr->paging_state.len, body, len);
}

static void decode_all(const uint8_t *body, size_t len, sib_arena *a)
{
    for (int version = 3; version <= 4; version++) {
        cql_query_req q;
        cql_prepare_req p;
        cql_execute_req e;
        cql_batch_req b;
        sib_err err;
        if (cql_decode_query(body, len, version, a, &q, &err) == 0) {
            check_view(q.query.p, q.query.len, body, len);
            check_params(&q.params, body, len);
        }
        if (cql_decode_prepare(body, len, version, a, &p, &err) == 0) check_view(p.query.p, p.query.len, body, len);
        if (cql_decode_execute(body, len, version, a, &e, &err) == 0) {
            check_view(e.id.p, (size_t)e.id.len, body, len);
            check_params(&e.params, body, len);
        }
        if (cql_decode_batch(body, len, version, a, &b, &err) == 0) {
            for (uint16_t i = 0; i < b.nstmts; i++) {
                const cql_batch_stmt *s = &b.stmts[i];
                if (s->prepared) check_view(s->id.p, (size_t)s->id.len, body, len);
                else check_view(s->query.p, s->query.len, body, len);
                for (uint16_t j = 0; j < s->nvalues; j++)
                    if (s->values[j].len > 0) check_view(s->values[j].p, (size_t)s->values[j].len, body, len);
            }
        }
    }
    cql_str k[64], v[64];
    size_t n;
    sib_rd r;
    sib_rd_init(&r, body, len);
    (void)cql_get_string_map(&r, k, v, 64, &n);
    sib_rd_init(&r, body, len);
    (void)cql_get_string_list(&r, k, 64, &n);
    sib_rd_init(&r, body, len);
    (void)cql_skip_string_multimap(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sib_arena *a = sib_arena_create(4096);
    sib_buf tmp;
    sib_buf_init(&tmp);
    if (!a) return 0;
    while (size >= CQL_HEADER_LEN) {
        cql_header h;
        if (cql_header_decode(data, size, &h) < 0) break;
        data += CQL_HEADER_LEN;
        size -= CQL_HEADER_LEN;
        size_t len = h.length < size ? h.length : size;
        const uint8_t *body = data;
        size_t blen = len;
        data += len;
        size -= len;
        sib_buf_reset(&tmp);
        if (h.flags & CQL_FLAG_COMPRESSION) {
            if (cql_lz4_decompress(body, blen, MAX_BODY, &tmp, NULL) < 0) continue;
            body = tmp.p;
            blen = tmp.len;
        }
        if (h.flags & CQL_FLAG_CUSTOM_PAYLOAD) {
            sib_rd r;
            sib_rd_init(&r, body, blen);
            if (!cql_skip_bytes_map(&r)) continue;
            body = r.p;
            blen = sib_rd_left(&r);
        }
        /* Copy to an exact-size allocation so ASan sees any overread. */
        uint8_t *copy = malloc(blen ? blen : 1);
        if (!copy) break;
        if (blen) memcpy(copy, body, blen);
        decode_all(copy, blen, a);
        free(copy);
        sib_arena_reset(a);
    }
    sib_buf_free(&tmp);
    sib_arena_destroy(a);
    return 0;
}
