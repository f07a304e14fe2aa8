/* resp.c: a pipelined Redis (RESP2) connection for sibyl-stress -mode redis.
 *
 * Why a stress tool for CQL speaks Redis: issue 5 judges Sibyl against
 * Redis on the same machine, and its latency target is measured at a fixed
 * rate from each request's intended start. redis-benchmark has no fixed-rate
 * mode, so the Redis side of that comparison is driven by this tool's own
 * workers: the same pacing, connections, slots and histogram as a CQL run,
 * with only the wire protocol swapped.
 *
 * The shape mirrors cli_client's asynchronous half: requests are queued
 * (resp_send) and written by resp_flush / resp_io; resp_io reads what
 * arrived and calls each request's callback in order (RESP answers in
 * request order, so a FIFO of callbacks is the whole correlation). When
 * the connection breaks, every pending callback is called with
 * RESP_BROKEN before the error is returned, as cli_client does.
 *
 * Only what SET and GET answer is understood: simple strings, errors,
 * integers and bulk strings (nil included). An array answer is a protocol
 * error: no command this tool sends has one.
 */
#define _GNU_SOURCE
#include "stress.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { RESP_READ_CHUNK = 64 * 1024, RESP_MAX_BULK = 512 * 1024 * 1024, RESP_CONNECT_MS = 10000 };

typedef struct resp_pending {
    resp_cb cb;
    void *ud;
} resp_pending;

struct resp_conn {
    int fd;
    sib_buf out, in;
    size_t out_off;        /* bytes of out already written */
    resp_pending *q;       /* ring of callbacks awaiting answers */
    uint32_t cap, head, n;
    bool broken;
    char peer[96];
};

/* timeout_ms <= 0: 10 s, as cli_client's default. */
int resp_connect(resp_conn **out, const char *host, uint16_t port, int timeout_ms, sib_err *err)
{
    *out = NULL;
    resp_conn *c = calloc(1, sizeof *c);
    if (!c) return sib_err_set(err, SIB_ENOMEM, "redis connection");
    sib_buf_init(&c->out);
    sib_buf_init(&c->in);
    snprintf(c->peer, sizeof c->peer, "%s:%u", host, port);
    c->fd = cli_client_tcp_connect(host, port, timeout_ms > 0 ? timeout_ms : RESP_CONNECT_MS, err);
    if (c->fd < 0) {
        int rc = c->fd;
        resp_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* Every pending callback learns the connection is gone, oldest first. */
static void fail_pending(resp_conn *c)
{
    c->broken = true;
    while (c->n) {
        resp_pending p = c->q[c->head];
        c->head = (c->head + 1) % c->cap;
        c->n--;
        p.cb(p.ud, RESP_BROKEN, NULL, 0);
    }
}

void resp_close(resp_conn *c)
{
    if (!c) return;
    fail_pending(c);
    if (c->fd >= 0) close(c->fd);
    sib_buf_free(&c->out);
    sib_buf_free(&c->in);
    free(c->q);
    free(c);
}

int resp_fd(const resp_conn *c) { return c->fd; }
uint32_t resp_inflight(const resp_conn *c) { return c->n; }

short resp_events(const resp_conn *c)
{
    return (short)(POLLIN | (c->out.len > c->out_off ? POLLOUT : 0));
}

/* The connection is gone (err already says why): every waiting request
 * hears so. Returns code. */
static int broken(resp_conn *c, int code)
{
    fail_pending(c);
    return code;
}

static int push_pending(resp_conn *c, resp_cb cb, void *ud)
{
    if (c->n == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : 64;
        resp_pending *q = malloc(cap * sizeof *q);
        if (!q) return SIB_ENOMEM;
        for (uint32_t i = 0; i < c->n; i++) q[i] = c->q[(c->head + i) % c->cap];
        free(c->q);
        c->q = q;
        c->cap = cap;
        c->head = 0;
    }
    c->q[(c->head + c->n) % c->cap] = (resp_pending){cb, ud};
    c->n++;
    return 0;
}

int resp_send(resp_conn *c, int argc, const cql_value *argv, resp_cb cb, void *ud, sib_err *err)
{
    if (c->broken) return sib_err_set(err, SIB_EIO, "redis %s: connection broken", c->peer);
    size_t mark = c->out.len;
    char hdr[32];
    sib_buf_append(&c->out, hdr, (size_t)snprintf(hdr, sizeof hdr, "*%d\r\n", argc));
    for (int i = 0; i < argc; i++) {
        size_t len = argv[i].len > 0 ? (size_t)argv[i].len : 0;
        sib_buf_append(&c->out, hdr, (size_t)snprintf(hdr, sizeof hdr, "$%zu\r\n", len));
        sib_buf_append(&c->out, argv[i].p, len);
        sib_buf_append(&c->out, "\r\n", 2);
    }
    if (c->out.oom || push_pending(c, cb, ud) < 0) {
        c->out.len = mark;
        c->out.oom = false;
        return sib_err_set(err, SIB_ENOMEM, "redis request");
    }
    return 0;
}

int resp_flush(resp_conn *c, sib_err *err)
{
    if (c->broken) return sib_err_set(err, SIB_EIO, "redis %s: connection broken", c->peer);
    while (c->out_off < c->out.len) {
        ssize_t w = write(c->fd, c->out.p + c->out_off, c->out.len - c->out_off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (w <= 0) return broken(c, sib_err_errno(err, "write to %s", c->peer));
        c->out_off += (size_t)w;
    }
    sib_buf_reset(&c->out);
    c->out_off = 0;
    return 0;
}

/* Parses one answer at in[*off, len). 1 = parsed (status, message set and
 * *off moved past it), 0 = incomplete, SIB_EPROTO = not an answer to SET or
 * GET. */
static int parse_one(const uint8_t *p, size_t len, size_t *off, int *status, const char **msg, size_t *mlen)
{
    const uint8_t *s = p + *off, *end = p + len;
    const uint8_t *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl) return 0;
    if (nl == s || nl[-1] != '\r') return SIB_EPROTO;
    size_t line = (size_t)(nl - 1 - s - 1); /* after the type byte, before \r */
    switch (s[0]) {
    case '+':
    case ':':
        *status = RESP_OK;
        *msg = (const char *)s + 1;
        *mlen = line;
        *off = (size_t)(nl + 1 - p);
        return 1;
    case '-':
        *status = RESP_ERROR;
        *msg = (const char *)s + 1;
        *mlen = line;
        *off = (size_t)(nl + 1 - p);
        return 1;
    case '$': {
        char num[24];
        if (line == 0 || line >= sizeof num) return SIB_EPROTO;
        memcpy(num, s + 1, line);
        num[line] = 0;
        char *e;
        long long n = strtoll(num, &e, 10);
        if (*e || n < -1 || n > RESP_MAX_BULK) return SIB_EPROTO;
        const uint8_t *body = nl + 1;
        if (n == -1) {
            *status = RESP_NIL;
            *msg = NULL;
            *mlen = 0;
            *off = (size_t)(body - p);
            return 1;
        }
        if ((size_t)(end - body) < (size_t)n + 2) return 0;
        if (body[n] != '\r' || body[n + 1] != '\n') return SIB_EPROTO;
        *status = RESP_OK;
        *msg = (const char *)body;
        *mlen = (size_t)n;
        *off = (size_t)(body + n + 2 - p);
        return 1;
    }
    default:
        return SIB_EPROTO;
    }
}

int resp_io(resp_conn *c, short revents, sib_err *err)
{
    if (c->broken) return sib_err_set(err, SIB_EIO, "redis %s: connection broken", c->peer);
    if ((revents & POLLOUT) && resp_flush(c, err) < 0) return SIB_EIO;
    if (!(revents & (POLLIN | POLLERR | POLLHUP))) return 0;
    int answered = 0;
    for (;;) {
        if (!sib_buf_reserve(&c->in, RESP_READ_CHUNK))
            return broken(c, sib_err_set(err, SIB_ENOMEM, "read buffer for %s", c->peer));
        ssize_t r = read(c->fd, c->in.p + c->in.len, RESP_READ_CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (r == 0) return broken(c, sib_err_set(err, SIB_EIO, "connection closed by %s", c->peer));
        if (r < 0) return broken(c, sib_err_errno(err, "read from %s", c->peer));
        c->in.len += (size_t)r;
        size_t off = 0;
        for (;;) {
            int status;
            const char *msg;
            size_t mlen;
            int pr = parse_one(c->in.p, c->in.len, &off, &status, &msg, &mlen);
            if (pr == 0) break;
            if (pr < 0 || c->n == 0)
                return broken(c, sib_err_set(err, SIB_EPROTO, "%s answer from %s",
                                             pr < 0 ? "malformed" : "unrequested", c->peer));
            resp_pending p = c->q[c->head];
            c->head = (c->head + 1) % c->cap;
            c->n--;
            p.cb(p.ud, status, msg, mlen);
            answered++;
        }
        memmove(c->in.p, c->in.p + off, c->in.len - off);
        c->in.len -= off;
        if ((size_t)r < RESP_READ_CHUNK) break; /* drained: no need for the EAGAIN round trip */
    }
    return answered;
}
