/* ring.c: the token ring sibyl-stress routes by (token-aware routing).
 *
 * Discovery: every contact point of -node is asked for its own row of
 * system.local (host_id, tokens, data_center) and for the rows of
 * system.peers; the ring is the union, nodes told apart by host_id (the
 * same node listed twice, or listed and also a peer of another, is one
 * node). Reading system.local of EVERY contact point rather than only the
 * first one's peers makes a ring of nodes that do not know each other yet
 * (separate processes given the same schema) as well as of a real cluster.
 * A contact point is reached at the address and port it was given; a peer
 * at its rpc_address (its peer address when that is unset or the any
 * address) and the port of the contact point that named it.
 *
 * Routing: the primary replica of a partition is the node owning the
 * first ring token >= the partition key's token, wrapping past the
 * largest to the smallest (ranges are (previous token, token]). That is the
 * first replica a driver's TokenAwarePolicy tries. The key's token is
 * Cassandra's Murmur3Partitioner over the serialized partition key: a
 * single column's value as bound (the CQL serialization of the value), or
 * for several columns each component as a 16-bit big-endian length, the
 * bytes and a 0 byte (CompositeType), the form the server hashes
 * (schema.h: sch_pk_encode).
 *
 * A token claimed by two nodes (a misconfigured ring, or two processes
 * that happened to draw the same token) goes to the node discovered first,
 * so every client routes it the same way.
 */
#include "stress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>

void ring_init(stress_ring *r)
{
    memset(r, 0, sizeof(*r));
}

void ring_free(stress_ring *r)
{
    free(r->tokens);
    free(r->owner);
    ring_init(r);
}

int ring_add_node(stress_ring *r, const char *host, uint16_t port, const uint8_t *host_id, const char *dc)
{
    for (size_t i = 0; i < r->nnodes; i++) {
        const stress_node *n = &r->nodes[i];
        if (host_id && n->has_id ? memcmp(n->host_id, host_id, 16) == 0
                                 : !host_id && !n->has_id && n->port == port && strcmp(n->host, host) == 0)
            return (int)i;
    }
    if (r->nnodes == STRESS_RING_MAX || strlen(host) >= STRESS_HOST_LEN) return -1;
    stress_node *n = &r->nodes[r->nnodes];
    memset(n, 0, sizeof(*n));
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    if (host_id) {
        memcpy(n->host_id, host_id, 16);
        n->has_id = true;
    }
    snprintf(n->dc, sizeof(n->dc), "%s", dc ? dc : "");
    bool v6 = strchr(host, ':') != NULL;
    snprintf(n->name, sizeof(n->name), "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", port);
    return (int)r->nnodes++;
}

int ring_add_token(stress_ring *r, int node, int64_t token)
{
    if (node < 0 || (size_t)node >= r->nnodes) return SIB_EINVAL;
    size_t cap = r->cap;
    if (!sib_grow((void **)&r->tokens, &cap, r->ntokens + 1, sizeof(*r->tokens)) ||
        !sib_grow((void **)&r->owner, &r->cap, r->ntokens + 1, sizeof(*r->owner)))
        return SIB_ENOMEM;
    r->tokens[r->ntokens] = token;
    r->owner[r->ntokens++] = (uint16_t)node;
    r->nodes[node].ntokens++;
    return 0;
}

typedef struct tok_owner {
    int64_t token;
    uint16_t owner;
} tok_owner;

static int by_token(const void *a, const void *b)
{
    const tok_owner *x = a, *y = b;
    if (x->token != y->token) return x->token < y->token ? -1 : 1;
    return (int)x->owner - (int)y->owner;
}

int ring_finish(stress_ring *r)
{
    if (r->ntokens == 0) return 0;
    tok_owner *t = malloc(r->ntokens * sizeof(*t));
    if (!t) return SIB_ENOMEM;
    for (size_t i = 0; i < r->ntokens; i++) t[i] = (tok_owner){r->tokens[i], r->owner[i]};
    qsort(t, r->ntokens, sizeof(*t), by_token);
    size_t n = 0;
    for (size_t i = 0; i < r->ntokens; i++) {
        if (n && r->tokens[n - 1] == t[i].token) continue; /* the lowest node index keeps it */
        r->tokens[n] = t[i].token;
        r->owner[n++] = t[i].owner;
    }
    r->ntokens = n;
    free(t);
    return 0;
}

int ring_lookup(const stress_ring *r, int64_t token)
{
    if (r->ntokens == 0) return -1;
    size_t lo = 0, hi = r->ntokens; /* the first index whose token is >= token */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->tokens[mid] < token) lo = mid + 1;
        else hi = mid;
    }
    return r->owner[lo == r->ntokens ? 0 : lo];
}

bool stress_routing_token(const cql_value *vals, size_t nvals, const uint16_t *pk_index, size_t npk,
                          sib_buf *scratch, int64_t *out)
{
    if (npk == 0) return false;
    for (size_t i = 0; i < npk; i++)
        if (pk_index[i] >= nvals || vals[pk_index[i]].len < 0 || vals[pk_index[i]].len > 65535) return false;
    if (npk == 1) {
        const cql_value *v = &vals[pk_index[0]];
        *out = sib_murmur3_token(v->p, (size_t)v->len);
        return true;
    }
    sib_buf_reset(scratch);
    for (size_t i = 0; i < npk; i++) {
        const cql_value *v = &vals[pk_index[i]];
        sib_buf_be16(scratch, (uint16_t)v->len);
        sib_buf_append(scratch, v->p, (size_t)v->len);
        sib_buf_u8(scratch, 0);
    }
    if (scratch->oom) return false;
    *out = sib_murmur3_token(scratch->p, scratch->len);
    return true;
}

int ring_add_tokens_cell(stress_ring *r, int node, cql_value cell)
{
    if (cell.len < 0) return 0; /* a node without tokens (not joined) */
    sib_rd rd;
    sib_rd_init(&rd, cell.p, (size_t)cell.len);
    int32_t n;
    if (!cql_get_int(&rd, &n) || n < 0) return SIB_EPROTO;
    for (int32_t i = 0; i < n; i++) {
        cql_value t;
        char buf[32];
        if (!cql_get_bytes(&rd, &t) || t.len <= 0 || (size_t)t.len >= sizeof(buf)) return SIB_EPROTO;
        memcpy(buf, t.p, (size_t)t.len);
        buf[t.len] = 0;
        char *end;
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        if (errno || *end) return SIB_EPROTO;
        int rc = ring_add_token(r, node, (int64_t)v);
        if (rc < 0) return rc;
    }
    return 0;
}

/* ---- discovery ---- */

static void text_of(cql_value v, char *out, size_t len)
{
    size_t n = v.len < 0 ? 0 : SIB_MIN((size_t)v.len, len - 1);
    memcpy(out, v.p, n);
    out[n] = 0;
}

/* An inet cell as text; false when null, malformed or the any address. */
static bool inet_of(cql_value v, char *out, size_t len)
{
    static const uint8_t zero[16];
    if ((v.len != 4 && v.len != 16) || memcmp(v.p, zero, (size_t)v.len) == 0) return false;
    return inet_ntop(v.len == 4 ? AF_INET : AF_INET6, v.p, out, (socklen_t)len) != NULL;
}

static int query_rows(cli_client *cl, const char *cql, cli_result *res, sib_err *err)
{
    int rc = cli_client_query(cl, cql, CQL_ONE, 0, NULL, res, err);
    if (rc == 0 && res->kind == CLI_RESULT_ERROR) rc = cli_result_to_err(res, err);
    else if (rc == 0 && res->kind != CLI_RESULT_ROWS) rc = sib_err_set(err, SIB_EPROTO, "%s: not rows", cql);
    return rc;
}

/* The contact point's own row: the node, reached as it was given. */
static int read_local(stress_ring *r, cli_client *cl, const char *host, uint16_t port, sib_err *err)
{
    cli_result res;
    int rc = query_rows(cl, "SELECT host_id, tokens, rpc_address, data_center FROM system.local", &res, err);
    if (rc == 0 && res.u.rows.nrows != 1) rc = sib_err_set(err, SIB_EPROTO, "system.local has no row");
    if (rc == 0) {
        cql_value id = cli_result_cell(&res, 0, 0);
        char dc[64];
        text_of(cli_result_cell(&res, 0, 3), dc, sizeof(dc));
        int node = ring_add_node(r, host, port, id.len == 16 ? id.p : NULL, dc);
        if (node < 0) rc = sib_err_set(err, SIB_EINVAL, "more than %d nodes (or address '%s' too long)", STRESS_RING_MAX, host);
        else if (r->nodes[node].ntokens == 0 && (rc = ring_add_tokens_cell(r, node, cli_result_cell(&res, 0, 1))) < 0)
            sib_err_set(err, rc, "%s: malformed tokens in system.local", host);
    }
    cli_result_free(&res);
    return rc;
}

/* The nodes the contact point knows of. A server without the table (or
 * with an empty one: a single node) adds nothing. */
static int read_peers(stress_ring *r, cli_client *cl, uint16_t port, sib_err *err)
{
    cli_result res;
    sib_err ignored;
    if (query_rows(cl, "SELECT peer, rpc_address, host_id, tokens, data_center FROM system.peers", &res, &ignored) < 0) {
        cli_result_free(&res);
        return 0;
    }
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < res.u.rows.nrows; i++) {
        char host[INET6_ADDRSTRLEN], dc[64];
        if (!inet_of(cli_result_cell(&res, i, 1), host, sizeof(host)) &&
            !inet_of(cli_result_cell(&res, i, 0), host, sizeof(host)))
            continue;
        cql_value id = cli_result_cell(&res, i, 2);
        text_of(cli_result_cell(&res, i, 4), dc, sizeof(dc));
        int node = ring_add_node(r, host, port, id.len == 16 ? id.p : NULL, dc);
        if (node < 0) rc = sib_err_set(err, SIB_EINVAL, "more than %d nodes", STRESS_RING_MAX);
        else if (r->nodes[node].ntokens == 0 && (rc = ring_add_tokens_cell(r, node, cli_result_cell(&res, i, 3))) < 0)
            sib_err_set(err, rc, "%s: malformed tokens in system.peers", host);
    }
    cli_result_free(&res);
    return rc;
}

int ring_discover(stress_ring *r, const stress_opts *o, cli_client **first, sib_err *err)
{
    *first = NULL;
    sib_err last = {0};
    for (size_t i = 0; i < o->nnodes; i++) {
        cli_client *cl;
        uint16_t port = o->node_ports[i] ? o->node_ports[i] : o->port;
        cli_client_opts co = {.host = o->nodes[i], .port = port, .lz4 = o->lz4};
        if (cli_client_connect(&cl, &co, &last) < 0) {
            bool v6 = strchr(o->nodes[i], ':') != NULL;
            fprintf(stderr, "sibyl-stress: contact point %s%s%s:%u: %s\n", v6 ? "[" : "", o->nodes[i], v6 ? "]" : "",
                    port, last.msg);
            continue;
        }
        int rc = read_local(r, cl, o->nodes[i], port, err);
        if (rc == 0) rc = read_peers(r, cl, port, err);
        if (rc < 0) {
            cli_client_close(cl);
            cli_client_close(*first);
            *first = NULL;
            return rc;
        }
        if (!*first) *first = cl;
        else cli_client_close(cl);
    }
    if (!*first) { /* every contact point refused: the last one's reason */
        *err = last;
        return err->code;
    }
    return ring_finish(r) < 0 ? sib_err_set(err, SIB_ENOMEM, "ring") : 0;
}
