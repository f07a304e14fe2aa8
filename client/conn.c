/* conn.c: the connection of a cli_client: socket, stream ids, the output
 * and input buffers, response dispatch, and the handshake.
 *
 * Pipelining model: every request gets a free stream id (a stack of free
 * ids; 0..max_streams-1) and a slot holding its callback. Requests are
 * framed straight into `out` (cql_frame_begin/_end, lz4 once negotiated);
 * cli_client_flush writes as much of `out` as the socket takes. Reads go
 * into `in`; every complete frame is decompressed if flagged and handed to
 * its slot's callback, after the slot has been released, so the callback may
 * queue the next request on the same id. Stream -1 (EVENT) frames are
 * dropped: this client never REGISTERs.
 *
 * A synchronous call is an asynchronous one plus a poll(2) loop on this
 * socket until its own slot is answered. If it times out the slot is
 * abandoned (its callback cleared) rather than the connection closed, so a
 * late answer is simply discarded and the id reused afterwards.
 *
 * Invariants: a slot is busy iff its id is not on the free stack; `broken`
 * is sticky and, once set, every busy slot has been failed exactly once.
 */
#include "client_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    DEFAULT_PORT = 9042,
    DEFAULT_TIMEOUT_MS = 10000,
    DEFAULT_STREAMS = 1024,
    MAX_STREAMS = 32768,
    DEFAULT_MAX_FRAME = 256 * 1024 * 1024,
    READ_CHUNK = 64 * 1024,
    POLL_STACK = 64,
};

/* ---- stream ids ---- */

int client_stream_take(cli_client *cl, cli_client_cb cb, void *ud, sib_err *err)
{
    if (cl->broken) return sib_err_set(err, SIB_EIO, "%s", cl->broken_err.msg);
    if (cl->nfree == 0) return sib_err_set(err, SIB_EAGAIN, "all %u stream ids in flight", cl->nslots);
    int16_t id = cl->free_ids[--cl->nfree];
    client_slot *s = &cl->slots[id];
    SIB_ASSERT(!s->busy);
    s->busy = true;
    s->cb = cb;
    s->ud = ud;
    return id;
}

void client_stream_release(cli_client *cl, int16_t id)
{
    client_slot *s = &cl->slots[id];
    SIB_ASSERT(s->busy);
    s->busy = false;
    s->cb = NULL;
    s->ud = NULL;
    cl->free_ids[cl->nfree++] = id;
}

void client_stream_abandon(cli_client *cl, int16_t id)
{
    if (id >= 0 && (uint32_t)id < cl->nslots && cl->slots[id].busy) cl->slots[id].cb = NULL;
}

uint32_t cli_client_inflight(const cli_client *cl) { return cl->nslots - cl->nfree; }
uint32_t cli_client_capacity(const cli_client *cl) { return cl->nslots; }
int cli_client_fd(const cli_client *cl) { return cl->fd; }
sch_types *cli_client_types(cli_client *cl) { return cl->ts; }
bool cli_client_lz4(const cli_client *cl) { return cl->lz4; }
const char *cli_client_keyspace(const cli_client *cl) { return cl->keyspace; }
const char *cli_client_peer(const cli_client *cl) { return cl->peer; }

short cli_client_events(const cli_client *cl)
{
    if (cl->broken) return 0;
    return (short)(POLLIN | (cl->out.len > cl->out_off ? POLLOUT : 0));
}

/* ---- failure ---- */

/* Marks the connection broken and fails every request in flight. Returns
 * the code, copied into err. */
static int client_break(cli_client *cl, int code, const char *why, sib_err *err)
{
    if (!cl->broken) {
        cl->broken = true;
        sib_err_set(&cl->broken_err, code, "%s: %s", cl->peer, why);
        for (uint32_t i = 0; i < cl->nslots; i++) {
            client_slot *s = &cl->slots[i];
            if (!s->busy) continue;
            cli_client_cb cb = s->cb;
            void *ud = s->ud;
            client_stream_release(cl, (int16_t)i);
            if (cb) cb(cl, ud, NULL, &cl->broken_err);
        }
    }
    if (err) *err = cl->broken_err;
    return cl->broken_err.code;
}

/* ---- writing ---- */

int cli_client_flush(cli_client *cl, sib_err *err)
{
    if (cl->broken) return client_break(cl, SIB_EIO, "broken", err);
    while (cl->out_off < cl->out.len) {
        ssize_t n = send(cl->fd, cl->out.p + cl->out_off, cl->out.len - cl->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            cl->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return client_break(cl, SIB_EIO, n < 0 ? strerror(errno) : "send returned 0", err);
    }
    sib_buf_reset(&cl->out);
    cl->out_off = 0;
    return 0;
}

/* ---- reading and dispatch ---- */

static int dispatch(cli_client *cl, const cql_header *h, const uint8_t *body, sib_err *err)
{
    cli_frame f = {.opcode = h->opcode, .flags = h->flags, .stream = h->stream, .body = body, .len = h->length};
    if (h->flags & CQL_FLAG_COMPRESSION) {
        sib_buf_reset(&cl->scratch);
        if (cql_lz4_decompress(body, h->length, cl->max_frame, &cl->scratch, err) < 0)
            return client_break(cl, SIB_EPROTO, err->msg, err);
        f.body = cl->scratch.p ? cl->scratch.p : (const uint8_t *)"";
        f.len = cl->scratch.len;
        f.flags &= (uint8_t)~CQL_FLAG_COMPRESSION;
    }
    if (h->stream < 0) return 0; /* an EVENT: never registered for, dropped */
    if ((uint32_t)h->stream >= cl->nslots || !cl->slots[h->stream].busy)
        return client_break(cl, SIB_EPROTO, "response on a stream id with no request", err);
    client_slot *s = &cl->slots[h->stream];
    cli_client_cb cb = s->cb;
    void *ud = s->ud;
    client_stream_release(cl, h->stream);
    if (cb) cb(cl, ud, &f, NULL);
    return 1;
}

/* Dispatches every complete frame in `in`. */
static int drain(cli_client *cl, sib_err *err)
{
    int n = 0;
    for (;;) {
        size_t avail = cl->in.len - cl->in_off;
        cql_header h;
        if (cql_header_decode(cl->in.p + cl->in_off, avail, &h) < 0) break;
        if ((h.version & 0x7f) != cl->version || !(h.version & CQL_VERSION_RESPONSE))
            return client_break(cl, SIB_EPROTO, "bad protocol version in response", err);
        if (h.length > cl->max_frame) return client_break(cl, SIB_EPROTO, "response frame too large", err);
        if (avail < CQL_HEADER_LEN + (size_t)h.length) {
            /* Make room for the whole frame now: one reserve, not many. */
            if (!sib_buf_reserve(&cl->in, CQL_HEADER_LEN + (size_t)h.length - avail))
                return client_break(cl, SIB_ENOMEM, "input buffer", err);
            break;
        }
        const uint8_t *body = cl->in.p + cl->in_off + CQL_HEADER_LEN;
        cl->in_off += CQL_HEADER_LEN + (size_t)h.length;
        int rc = dispatch(cl, &h, body, err);
        if (rc < 0) return rc;
        n += rc;
        if (cl->broken) break;
    }
    if (cl->in_off == cl->in.len) {
        sib_buf_reset(&cl->in);
        cl->in_off = 0;
    } else if (cl->in_off > cl->in.cap / 2) {
        memmove(cl->in.p, cl->in.p + cl->in_off, cl->in.len - cl->in_off);
        cl->in.len -= cl->in_off;
        cl->in_off = 0;
    }
    return n;
}

/* Reads what the socket has (until EAGAIN) and dispatches. */
static int read_some(cli_client *cl, sib_err *err)
{
    int total = 0;
    for (;;) {
        uint8_t *p = sib_buf_reserve(&cl->in, READ_CHUNK);
        if (!p) return client_break(cl, SIB_ENOMEM, "input buffer", err);
        size_t room = cl->in.cap - cl->in.len;
        ssize_t n = recv(cl->fd, p, room, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return total;
        if (n <= 0) return client_break(cl, SIB_EIO, n < 0 ? strerror(errno) : "connection closed by server", err);
        cl->in.len += (size_t)n;
        int rc = drain(cl, err);
        if (rc < 0) return rc;
        total += rc;
        if ((size_t)n < room) return total; /* socket drained: skip the EAGAIN round trip */
    }
}

int cli_client_io(cli_client *cl, short revents, sib_err *err)
{
    if (cl->broken) return client_break(cl, SIB_EIO, "broken", err);
    if (revents & (POLLERR | POLLNVAL)) return client_break(cl, SIB_EIO, "socket error", err);
    int n = 0;
    if (revents & (POLLIN | POLLHUP)) {
        n = read_some(cl, err);
        if (n < 0) return n;
    }
    /* Callbacks usually queue follow-up requests: send them right away. */
    if (cl->out.len > cl->out_off) {
        int rc = cli_client_flush(cl, err);
        if (rc < 0) return rc;
    }
    return n;
}

int cli_client_poll_many(cli_client *const *cls, size_t n, int timeout_ms, size_t *broken, sib_err *err)
{
    struct pollfd stackfds[POLL_STACK];
    struct pollfd *fds = n <= POLL_STACK ? stackfds : malloc(sizeof(*fds) * n);
    if (!fds) return sib_err_set(err, SIB_ENOMEM, "pollfd array");
    for (size_t i = 0; i < n; i++) fds[i] = (struct pollfd){.fd = cls[i]->fd, .events = cli_client_events(cls[i])};
    int total = 0, first_rc = 0;
    int pr = poll(fds, (nfds_t)n, timeout_ms);
    if (pr < 0 && errno != EINTR) {
        first_rc = sib_err_errno(err, "poll");
        goto out;
    }
    for (size_t i = 0; pr > 0 && i < n; i++) {
        if (!fds[i].revents) continue;
        sib_err e;
        int rc = cli_client_io(cls[i], fds[i].revents, &e);
        if (rc >= 0) {
            total += rc;
        } else if (first_rc == 0) {
            first_rc = rc;
            if (err) *err = e;
            if (broken) *broken = i;
        }
    }
out:
    if (fds != stackfds) free(fds);
    return first_rc < 0 ? first_rc : total;
}

/* ---- synchronous waiting ---- */

void client_sync_cb(cli_client *cl, void *ud, const cli_frame *f, const sib_err *err)
{
    client_sync *w = ud;
    w->done = true;
    if (!f) {
        w->err = *err;
        w->rc = err->code;
        return;
    }
    if (w->raw) {
        w->raw_opcode = f->opcode;
        sib_buf_append(w->raw, f->body, f->len);
        w->rc = w->raw->oom ? sib_err_set(&w->err, SIB_ENOMEM, "response body") : 0;
        return;
    }
    w->rc = cli_result_decode(cl->ts, cl->version, f->opcode, f->flags, f->body, f->len, w->out, &w->err);
}

/* Waits until w (the callback data of the request on `stream`) is done.
 * w may live on the caller's stack: on a timeout the slot is abandoned, so
 * nothing touches w after this returns. */
int client_sync_wait(cli_client *cl, client_sync *w, int stream, sib_err *err)
{
    int64_t deadline = sib_mono_ns() + (int64_t)cl->timeout_ms * 1000000;
    while (!w->done) {
        int rc = cli_client_flush(cl, err);
        if (rc < 0 && !w->done) return rc;
        int64_t left_ms = (deadline - sib_mono_ns()) / 1000000;
        if (left_ms <= 0) {
            client_stream_abandon(cl, (int16_t)stream);
            return sib_err_set(err, SIB_EIO, "%s: no response within %d ms", cl->peer, cl->timeout_ms);
        }
        struct pollfd pfd = {.fd = cl->fd, .events = cli_client_events(cl)};
        int pr = poll(&pfd, 1, (int)SIB_MIN(left_ms, 1000));
        if (pr < 0 && errno != EINTR) {
            client_stream_abandon(cl, (int16_t)stream);
            return sib_err_errno(err, "poll");
        }
        if (pr > 0) {
            rc = cli_client_io(cl, pfd.revents, err);
            if (rc < 0 && !w->done) return rc;
        }
    }
    if (w->rc < 0 && err) *err = w->err;
    return w->rc;
}

/* ---- connect and handshake ---- */

static int connect_addr(const struct addrinfo *ai, int timeout_ms, sib_err *err)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) return sib_err_errno(err, "socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            sib_err_errno(err, "connect");
            close(fd);
            return SIB_EIO;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int pr;
        do pr = poll(&pfd, 1, timeout_ms);
        while (pr < 0 && errno == EINTR);
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (pr == 0) {
            close(fd);
            return sib_err_set(err, SIB_EIO, "connect: timed out after %d ms", timeout_ms);
        }
        if (pr < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            errno = soerr ? soerr : errno;
            sib_err_errno(err, "connect");
            close(fd);
            return SIB_EIO;
        }
    }
    return fd;
}

int cli_client_tcp_connect(const char *host, uint16_t port, int timeout_ms, sib_err *err)
{
    char ps[8];
    snprintf(ps, sizeof(ps), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(host, ps, &hints, &res);
    if (gai != 0) return sib_err_set(err, SIB_EIO, "resolve %s: %s", host, gai_strerror(gai));
    int fd = SIB_EIO;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = connect_addr(ai, timeout_ms, err);
        if (fd >= 0) break;
    }
    freeaddrinfo(res);
    if (fd < 0 && err) {
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "%.200s (%.200s:%u)", err->msg, host, port);
        memcpy(err->msg, msg, sizeof(msg));
    }
    return fd;
}

static int client_alloc(cli_client **out, const cli_client_opts *o, sib_err *err)
{
    cli_client *cl = calloc(1, sizeof(*cl));
    if (!cl) return sib_err_set(err, SIB_ENOMEM, "client");
    cl->fd = -1;
    cl->version = CQL_VERSION_MAX;
    cl->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    cl->max_frame = o->max_frame_size ? o->max_frame_size : DEFAULT_MAX_FRAME;
    cl->nslots = o->max_streams ? SIB_MIN(o->max_streams, (uint32_t)MAX_STREAMS) : DEFAULT_STREAMS;
    cl->slots = calloc(cl->nslots, sizeof(*cl->slots));
    cl->free_ids = malloc(sizeof(*cl->free_ids) * cl->nslots);
    cl->ts = sch_types_create();
    sib_buf_init(&cl->out);
    sib_buf_init(&cl->in);
    sib_buf_init(&cl->scratch);
    *out = cl;
    if (!cl->slots || !cl->free_ids || !cl->ts) return sib_err_set(err, SIB_ENOMEM, "client streams");
    /* Hand out low ids first: the free stack pops from its end. */
    for (uint32_t i = 0; i < cl->nslots; i++) cl->free_ids[i] = (int16_t)(cl->nslots - 1 - i);
    cl->nfree = cl->nslots;
    return 0;
}

void cli_client_close(cli_client *cl)
{
    if (!cl) return;
    if (cl->fd >= 0) close(cl->fd);
    free(cl->slots);
    free(cl->free_ids);
    sch_types_destroy(cl->ts);
    sib_buf_free(&cl->out);
    sib_buf_free(&cl->in);
    sib_buf_free(&cl->scratch);
    free(cl);
}

int cli_client_connect(cli_client **out, const cli_client_opts *o, sib_err *err)
{
    static const cli_client_opts defaults;
    if (!o) o = &defaults;
    *out = NULL;
    cli_client *cl = NULL;
    int rc = client_alloc(&cl, o, err);
    if (rc < 0) goto fail;
    const char *host = o->host ? o->host : "127.0.0.1";
    uint16_t port = o->port ? o->port : DEFAULT_PORT;
    snprintf(cl->peer, sizeof(cl->peer), "%s:%u", host, port);
    rc = cl->fd = cli_client_tcp_connect(host, port, cl->timeout_ms, err);
    if (rc < 0) goto fail;
    rc = client_handshake(cl, o, err);
    if (rc < 0) goto fail;
    *out = cl;
    return 0;
fail:
    cli_client_close(cl);
    return rc;
}
