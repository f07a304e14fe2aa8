/* messaging.c: frames, connections and request correlation (messaging.h).
 *
 * Connections. An outbound connection belongs to a peer (host:port) for the
 * service's lifetime; its socket comes and goes. States:
 *
 *   IDLE ──send──▶ CONNECTING ──writable, SO_ERROR 0──▶ READY
 *     ▲                │ error                             │ EOF / error
 *     └── retry timer ◀┴───────── BACKOFF ◀────────────────┘
 *
 * A send while IDLE starts a connect; while CONNECTING or in BACKOFF the
 * frame waits in the (bounded) queue. Each failure doubles the back-off
 * (backoff_min_ms .. backoff_max_ms); a connection that got as far as
 * READY starts again from the minimum. The HELLO frame is put in front of
 * the queue on every (re)connect.
 *
 * Inbound connections are accepted sockets. Their first frame must be a
 * HELLO of our cluster; anything else closes them. Frames of either kind of
 * connection go to the same dispatcher: responses find their request by id
 * in the pending table, others go to the verb's handler.
 *
 * Pending requests live in a hash of id -> request with a per-request
 * ev_timer; a response or the timer removes the entry, so the callback runs
 * once. Ids start at 1 and never repeat within a process.
 */
#define _GNU_SOURCE /* accept4 */
#include "messaging.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static const uint8_t MAGIC[4] = {'S', 'I', 'B', 'M'};

enum { PENDING_BUCKETS = 256, MAX_INBOUND = 1024 };

/* ---- frames ---- */

void msg_frame_encode(sib_buf *out, uint8_t verb, uint8_t flags, uint64_t id, const void *payload, uint32_t len)
{
    size_t start = out->len;
    uint8_t *h = sib_buf_reserve(out, MSG_HEADER_LEN + (size_t)len + MSG_TRAILER_LEN);
    if (!h) return;
    memcpy(h, MAGIC, 4);
    h[4] = MSG_VERSION;
    h[5] = verb;
    h[6] = flags;
    h[7] = 0;
    put_be64(h + 8, id);
    put_be32(h + 16, len);
    if (len) memcpy(h + MSG_HEADER_LEN, payload, len);
    put_be32(h + MSG_HEADER_LEN + len, sib_crc32c(0, h, MSG_HEADER_LEN + (size_t)len));
    out->len = start + MSG_HEADER_LEN + len + MSG_TRAILER_LEN;
}

long msg_frame_decode(const uint8_t *p, size_t n, uint32_t max_len, msg_header *h, const uint8_t **payload,
                      sib_err *err)
{
    if (n < 5) return 0;
    if (memcmp(p, MAGIC, 4)) return sib_err_set(err, SIB_EPROTO, "not a Sibyl internode frame (bad magic)");
    if (p[4] != MSG_VERSION)
        return sib_err_set(err, SIB_EPROTO, "internode frame version %u, this node speaks %u", p[4], MSG_VERSION);
    if (n < MSG_HEADER_LEN) return 0;
    uint32_t len = get_be32(p + 16);
    if (len > max_len) return sib_err_set(err, SIB_ETOOBIG, "internode frame of %u bytes (limit %u)", len, max_len);
    size_t total = MSG_HEADER_LEN + (size_t)len + MSG_TRAILER_LEN;
    if (n < total) return 0;
    uint32_t want = get_be32(p + MSG_HEADER_LEN + len);
    if (sib_crc32c(0, p, MSG_HEADER_LEN + (size_t)len) != want)
        return sib_err_set(err, SIB_ECORRUPT, "internode frame checksum mismatch");
    h->version = p[4];
    h->verb = p[5];
    h->flags = p[6];
    h->id = get_be64(p + 8);
    h->len = len;
    *payload = p + MSG_HEADER_LEN;
    return (long)total;
}

/* ---- state ---- */

typedef enum { C_IDLE, C_CONNECTING, C_READY, C_BACKOFF } conn_state;

typedef struct msg_conn {
    msg_service *ms;
    int fd;
    ev_io rio, wio;
    conn_state state;
    bool outbound;
    bool hello_ok;        /* inbound: a valid HELLO arrived */
    uint64_t id;
    char host[64];        /* outbound: the peer; inbound: from its HELLO */
    uint16_t port;
    sib_buf in;
    sib_buf out;
    size_t out_off;       /* bytes of out already written */
    bool dirty;           /* frames queued this loop iteration: flush_prep writes them */
    int backoff_ms;
    ev_timer retry;
    struct msg_conn *next;
} msg_conn;

typedef struct pending {
    uint64_t id;
    msg_service *ms;
    msg_response_fn cb;
    void *ctx;
    ev_timer timer;
    struct pending *next;
} pending;

typedef struct handler {
    msg_handler_fn fn;
    void *ctx;
} handler;

struct msg_service {
    struct ev_loop *loop;
    sib_log *log;
    char cluster[128];
    char host[64];
    uint16_t port;
    size_t max_queued, max_pending;
    uint32_t max_frame;
    int backoff_min, backoff_max;
    int lfd;
    ev_io accept_io;
    ev_prepare flush_prep; /* writes each connection's frames once per loop iteration */
    msg_conn *outbound;   /* one per peer */
    msg_conn *inbound;
    size_t ninbound;
    uint64_t next_conn_id;
    uint64_t next_req_id;
    pending *pend[PENDING_BUCKETS];
    size_t npending;
    handler handlers[MSG_MAX_VERBS];
};

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);
static void conn_start_connect(msg_conn *c);

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static bool parse_addr(const char *host, uint16_t port, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1;
}

/* ---- connections ---- */

static msg_conn *conn_new(msg_service *ms, bool outbound)
{
    msg_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->ms = ms;
    c->fd = -1;
    c->outbound = outbound;
    c->id = ++ms->next_conn_id;
    sib_buf_init(&c->in);
    sib_buf_init(&c->out);
    ev_init(&c->retry, NULL);
    return c;
}

static void conn_stop_io(msg_conn *c)
{
    ev_io_stop(c->ms->loop, &c->rio);
    ev_io_stop(c->ms->loop, &c->wio);
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    sib_buf_reset(&c->in);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    msg_conn *c = w->data;
    c->state = C_IDLE;
    if (c->out.len) conn_start_connect(c);
}

/* An outbound socket failed or closed: drop what was unsent (a partial
 * frame cannot continue on another socket) and retry after the back-off. */
static void conn_broken(msg_conn *c, const char *why)
{
    msg_service *ms = c->ms;
    bool was_ready = c->state == C_READY;
    conn_stop_io(c);
    if (c->out.len)
        sib_log(ms->log, SIB_DEBUG, "messaging: dropping %zu unsent bytes to %s:%u", c->out.len - c->out_off, c->host,
                c->port);
    sib_buf_reset(&c->out);
    c->out_off = 0;
    if (was_ready) {
        sib_log(ms->log, SIB_INFO, "messaging: connection to %s:%u closed (%s)", c->host, c->port, why);
        c->backoff_ms = 0;
    }
    c->backoff_ms = c->backoff_ms ? SIB_MIN(c->backoff_ms * 2, ms->backoff_max) : ms->backoff_min;
    c->state = C_BACKOFF;
    ev_timer_init(&c->retry, on_retry, c->backoff_ms / 1000.0, 0);
    c->retry.data = c;
    ev_timer_start(ms->loop, &c->retry);
}

static void conn_free(msg_conn *c)
{
    conn_stop_io(c);
    ev_timer_stop(c->ms->loop, &c->retry);
    sib_buf_free(&c->in);
    sib_buf_free(&c->out);
    free(c);
}

static void inbound_close(msg_conn *c)
{
    msg_service *ms = c->ms;
    for (msg_conn **pp = &ms->inbound; *pp; pp = &(*pp)->next)
        if (*pp == c) { *pp = c->next; ms->ninbound--; break; }
    conn_free(c);
}

static void conn_fail(msg_conn *c, const char *why)
{
    if (c->outbound) conn_broken(c, why);
    else inbound_close(c);
}

/* Writes what the socket takes; arms the write watcher for the rest. */
static void conn_flush(msg_conn *c)
{
    if (c->fd < 0 || c->state == C_CONNECTING) return;
    while (c->out_off < c->out.len) {
        ssize_t w = write(c->fd, c->out.p + c->out_off, c->out.len - c->out_off);
        if (w > 0) { c->out_off += (size_t)w; continue; }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ev_io_start(c->ms->loop, &c->wio);
            return;
        }
        conn_fail(c, w < 0 ? strerror(errno) : "write returned 0");
        return;
    }
    sib_buf_reset(&c->out);
    c->out_off = 0;
    ev_io_stop(c->ms->loop, &c->wio);
}

static void hello_payload(msg_service *ms, sib_buf *b)
{
    size_t cl = strlen(ms->cluster), hl = strlen(ms->host);
    sib_buf_be16(b, (uint16_t)cl);
    sib_buf_append(b, ms->cluster, cl);
    sib_buf_be16(b, (uint16_t)hl);
    sib_buf_append(b, ms->host, hl);
    sib_buf_be16(b, ms->port);
}

static void conn_start_connect(msg_conn *c)
{
    msg_service *ms = c->ms;
    struct sockaddr_in sa, local;
    if (!parse_addr(c->host, c->port, &sa)) return;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || set_nonblock(fd)) {
        if (fd >= 0) close(fd);
        conn_broken(c, "socket");
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* From our listen address, so the peer's logs and netstat show which
     * node this is even on a machine with many loopback addresses. */
    if (parse_addr(ms->host, 0, &local)) (void)bind(fd, (struct sockaddr *)&local, sizeof local);
    c->fd = fd;
    /* HELLO goes before whatever waited for this connection. */
    sib_buf hello, frame;
    sib_buf_init(&hello);
    sib_buf_init(&frame);
    hello_payload(ms, &hello);
    msg_frame_encode(&frame, MSG_VERB_HELLO, 0, 0, hello.p, (uint32_t)hello.len);
    sib_buf_append(&frame, c->out.p + c->out_off, c->out.len - c->out_off);
    sib_buf_free(&hello);
    if (frame.oom) {
        sib_buf_free(&frame);
        conn_broken(c, "out of memory");
        return;
    }
    sib_buf_free(&c->out);
    c->out = frame;
    c->out_off = 0;
    ev_io_init(&c->rio, on_read, fd, EV_READ);
    ev_io_init(&c->wio, on_write, fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (rc < 0 && errno != EINPROGRESS) {
        sib_log(ms->log, SIB_DEBUG, "messaging: connect %s:%u: %s", c->host, c->port, strerror(errno));
        conn_broken(c, strerror(errno));
        return;
    }
    c->state = C_CONNECTING;
    ev_io_start(ms->loop, &c->wio);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    msg_conn *c = w->data;
    if (c->state == C_CONNECTING) {
        int e = 0;
        socklen_t l = sizeof e;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0) e = errno;
        if (e) {
            sib_log(c->ms->log, SIB_DEBUG, "messaging: connect %s:%u: %s", c->host, c->port, strerror(e));
            conn_broken(c, strerror(e));
            return;
        }
        c->state = C_READY;
        c->backoff_ms = 0;
        ev_io_start(loop, &c->rio);
        sib_log(c->ms->log, SIB_DEBUG, "messaging: connected to %s:%u", c->host, c->port);
    }
    conn_flush(c);
}

/* Queues a frame on c, within the connection's byte bound. */
static int conn_queue(msg_conn *c, uint8_t verb, uint8_t flags, uint64_t id, const void *p, uint32_t len,
                      sib_err *err)
{
    msg_service *ms = c->ms;
    if (len > ms->max_frame) return sib_err_set(err, SIB_ETOOBIG, "internode message of %u bytes (limit %u)", len, ms->max_frame);
    size_t queued = c->out.len - c->out_off;
    if (queued + MSG_HEADER_LEN + len + MSG_TRAILER_LEN > ms->max_queued)
        return sib_err_set(err, SIB_EOVERLOADED, "queue to %s:%u is full (%zu bytes unsent)", c->host, c->port, queued);
    msg_frame_encode(&c->out, verb, flags, id, p, len);
    if (c->out.oom) {
        sib_buf_reset(&c->out);
        c->out.oom = false;
        c->out_off = 0;
        return sib_err_set(err, SIB_ENOMEM, "internode queue");
    }
    if (c->outbound && c->state == C_IDLE) conn_start_connect(c);
    else if (c->state == C_READY || !c->outbound) c->dirty = true; /* written by on_flush_prep */
    return 0;
}

/* End of every loop iteration: one write() per connection for all the
 * frames queued during the iteration, instead of one per frame (at a few
 * thousand requests a second the syscalls and loopback wakeups were most of
 * the internode cost). A prepare watcher runs after the commitlog's
 * (EV_MAXPRI), so acks of writes made durable in this iteration go out in
 * the same write. Always active but unreferenced: it never keeps the loop
 * alive by itself. */
static void flush_dirty(msg_conn *list)
{
    for (msg_conn *c = list, *next; c; c = next) {
        next = c->next; /* conn_flush may free c (a broken inbound connection) */
        if (!c->dirty) continue;
        c->dirty = false;
        conn_flush(c);
    }
}

static void on_flush_prep(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    msg_service *ms = w->data;
    flush_dirty(ms->outbound);
    flush_dirty(ms->inbound);
}

static msg_conn *peer_conn(msg_service *ms, const char *host, uint16_t port, sib_err *err)
{
    for (msg_conn *c = ms->outbound; c; c = c->next)
        if (c->port == port && !strcmp(c->host, host)) return c;
    struct sockaddr_in sa;
    if (strlen(host) >= sizeof ms->outbound->host || !parse_addr(host, port, &sa)) {
        sib_err_set(err, SIB_EINVAL, "not an IPv4 address: %s", host);
        return NULL;
    }
    msg_conn *c = conn_new(ms, true);
    if (!c) {
        sib_err_set(err, SIB_ENOMEM, "connection");
        return NULL;
    }
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    c->next = ms->outbound;
    ms->outbound = c;
    return c;
}

/* ---- pending requests ---- */

static pending **pend_slot(msg_service *ms, uint64_t id)
{
    pending **pp = &ms->pend[id % PENDING_BUCKETS];
    while (*pp && (*pp)->id != id) pp = &(*pp)->next;
    return pp;
}

static pending *pend_take(msg_service *ms, uint64_t id)
{
    pending **pp = pend_slot(ms, id);
    pending *p = *pp;
    if (!p) return NULL;
    *pp = p->next;
    ev_timer_stop(ms->loop, &p->timer);
    ms->npending--;
    return p;
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    pending *p = w->data;
    msg_service *ms = p->ms;
    pend_take(ms, p->id);
    p->cb(p->ctx, SIB_ETIMEDOUT, NULL);
    free(p);
}

/* ---- receiving ---- */

static bool check_hello(msg_conn *c, const uint8_t *p, uint32_t n)
{
    msg_service *ms = c->ms;
    sib_rd r;
    sib_rd_init(&r, p, n);
    uint16_t cl, hl, port;
    const uint8_t *cn, *hn;
    if (!sib_rd_be16(&r, &cl) || !sib_rd_bytes(&r, cl, &cn) || !sib_rd_be16(&r, &hl) || !sib_rd_bytes(&r, hl, &hn) ||
        !sib_rd_be16(&r, &port) || hl >= sizeof c->host) {
        sib_log(ms->log, SIB_WARN, "messaging: malformed HELLO, closing the connection");
        return false;
    }
    memcpy(c->host, hn, hl);
    c->host[hl] = 0;
    c->port = port;
    if (cl != strlen(ms->cluster) || memcmp(cn, ms->cluster, cl)) {
        sib_log(ms->log, SIB_WARN, "messaging: refusing /%s: its cluster name '%.*s' is not ours ('%s')", c->host,
                (int)cl, (const char *)cn, ms->cluster);
        return false;
    }
    c->hello_ok = true;
    return true;
}

/* Handles one decoded frame; false when the connection must close. */
static bool dispatch(msg_conn *c, const msg_header *h, const uint8_t *payload)
{
    msg_service *ms = c->ms;
    if (!c->outbound && !c->hello_ok) {
        if (h->verb != MSG_VERB_HELLO || (h->flags & MSG_FLAG_RESPONSE)) {
            sib_log(ms->log, SIB_WARN, "messaging: first frame from a peer was not a HELLO, closing");
            return false;
        }
        return check_hello(c, payload, h->len);
    }
    msg_in m = {.verb = h->verb, .id = h->id, .conn_id = c->id, .from_port = c->port, .payload = payload,
                .len = h->len};
    snprintf(m.from, sizeof m.from, "%s", c->host);
    if (h->flags & MSG_FLAG_RESPONSE) {
        pending *p = pend_take(ms, h->id);
        if (!p) return true; /* answered after its timeout: dropped */
        p->cb(p->ctx, 0, &m);
        free(p);
        return true;
    }
    if (h->verb == MSG_VERB_HELLO || h->verb >= MSG_MAX_VERBS || !ms->handlers[h->verb].fn) {
        sib_log(ms->log, SIB_DEBUG, "messaging: no handler for verb %u from %s", h->verb, c->host);
        return true;
    }
    ms->handlers[h->verb].fn(ms->handlers[h->verb].ctx, ms, &m);
    return true;
}

static bool conn_find(msg_service *ms, msg_conn *want)
{
    for (msg_conn *c = ms->inbound; c; c = c->next)
        if (c == want) return true;
    for (msg_conn *c = ms->outbound; c; c = c->next)
        if (c == want) return true;
    return false;
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    msg_conn *c = w->data;
    msg_service *ms = c->ms;
    uint8_t *dst = sib_buf_reserve(&c->in, 64 * 1024);
    if (!dst) { conn_fail(c, "out of memory"); return; }
    ssize_t r = read(c->fd, dst, 64 * 1024);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (r <= 0) { conn_fail(c, r == 0 ? "closed by peer" : strerror(errno)); return; }
    c->in.len += (size_t)r;
    size_t off = 0;
    uint64_t id = c->id;
    int fd = c->fd;
    bool outbound = c->outbound;
    while (off < c->in.len) {
        msg_header h;
        const uint8_t *payload;
        sib_err err = {0};
        long n = msg_frame_decode(c->in.p + off, c->in.len - off, ms->max_frame, &h, &payload, &err);
        if (n == 0) break;
        if (n < 0) {
            sib_log(ms->log, SIB_WARN, "messaging: from %s: %s; closing the connection", c->host, err.msg);
            conn_fail(c, err.msg);
            return;
        }
        off += (size_t)n;
        if (!dispatch(c, &h, payload)) { conn_fail(c, "refused"); return; }
        /* A handler may have closed this connection (a reply that failed to
         * write) or, for inbound ones, freed it. */
        if ((!outbound && !conn_find(ms, c)) || c->id != id || c->fd != fd) return;
    }
    if (off) {
        memmove(c->in.p, c->in.p + off, c->in.len - off);
        c->in.len -= off;
    }
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    msg_service *ms = w->data;
    for (int i = 0; i < 16; i++) {
        int fd = accept4(ms->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        /* Peers need one connection each; past the bound something is
         * misbehaving, and it must not cost this node its memory. */
        if (ms->ninbound >= MAX_INBOUND) {
            sib_log(ms->log, SIB_WARN, "messaging: %zu internode connections already, refusing another", ms->ninbound);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        msg_conn *c = conn_new(ms, false);
        if (!c) { close(fd); return; }
        c->fd = fd;
        c->state = C_READY;
        snprintf(c->host, sizeof c->host, "?");
        ev_io_init(&c->rio, on_read, fd, EV_READ);
        ev_io_init(&c->wio, on_write, fd, EV_WRITE);
        c->rio.data = c->wio.data = c;
        ev_io_start(loop, &c->rio);
        c->next = ms->inbound;
        ms->inbound = c;
        ms->ninbound++;
    }
}

/* ---- public ---- */

msg_service *msg_service_create(const msg_opts *o, sib_err *err)
{
    msg_service *ms = calloc(1, sizeof *ms);
    if (!ms) { sib_err_set(err, SIB_ENOMEM, "messaging"); return NULL; }
    ms->loop = o->loop;
    ms->log = o->log;
    ms->lfd = -1;
    snprintf(ms->cluster, sizeof ms->cluster, "%s", o->cluster_name ? o->cluster_name : "");
    snprintf(ms->host, sizeof ms->host, "%s", o->bind_addr);
    ms->max_queued = o->max_queued_bytes ? o->max_queued_bytes : 4u << 20;
    ms->max_pending = o->max_pending ? o->max_pending : 4096;
    ms->max_frame = o->max_frame ? o->max_frame : 16u << 20;
    ms->backoff_min = o->backoff_min_ms > 0 ? o->backoff_min_ms : 100;
    ms->backoff_max = o->backoff_max_ms > 0 ? o->backoff_max_ms : 4000;
    struct sockaddr_in sa;
    if (!parse_addr(o->bind_addr, o->port, &sa)) {
        sib_err_set(err, SIB_ECONFIG, "listen_address must be an IPv4 address (got '%s')", o->bind_addr);
        free(ms);
        return NULL;
    }
    ms->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (ms->lfd < 0 || setsockopt(ms->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(ms->lfd, (struct sockaddr *)&sa, sizeof sa) || listen(ms->lfd, 128)) {
        sib_err_errno(err, "cannot bind the internode port %s:%u", o->bind_addr, o->port);
        if (ms->lfd >= 0) close(ms->lfd);
        free(ms);
        return NULL;
    }
    socklen_t sl = sizeof sa;
    getsockname(ms->lfd, (struct sockaddr *)&sa, &sl);
    ms->port = ntohs(sa.sin_port);
    ev_io_init(&ms->accept_io, on_accept, ms->lfd, EV_READ);
    ms->accept_io.data = ms;
    ev_io_start(ms->loop, &ms->accept_io);
    ev_prepare_init(&ms->flush_prep, on_flush_prep);
    ms->flush_prep.data = ms;
    ev_prepare_start(ms->loop, &ms->flush_prep);
    ev_unref(ms->loop);
    return ms;
}

void msg_service_destroy(msg_service *ms)
{
    if (!ms) return;
    ev_io_stop(ms->loop, &ms->accept_io);
    ev_ref(ms->loop);
    ev_prepare_stop(ms->loop, &ms->flush_prep);
    if (ms->lfd >= 0) close(ms->lfd);
    while (ms->inbound) {
        msg_conn *c = ms->inbound;
        ms->inbound = c->next;
        conn_free(c);
    }
    while (ms->outbound) {
        msg_conn *c = ms->outbound;
        ms->outbound = c->next;
        conn_free(c);
    }
    for (size_t b = 0; b < PENDING_BUCKETS; b++)
        while (ms->pend[b]) {
            pending *p = ms->pend[b];
            ms->pend[b] = p->next;
            ev_timer_stop(ms->loop, &p->timer);
            free(p);
        }
    free(ms);
}

uint16_t msg_service_port(const msg_service *ms) { return ms->port; }

void msg_set_handler(msg_service *ms, uint8_t verb, msg_handler_fn fn, void *ctx)
{
    SIB_ASSERT(verb > MSG_VERB_HELLO && verb < MSG_MAX_VERBS);
    ms->handlers[verb] = (handler){fn, ctx};
}

int msg_send(msg_service *ms, const char *host, uint16_t port, uint8_t verb, const void *payload, uint32_t len,
             sib_err *err)
{
    msg_conn *c = peer_conn(ms, host, port, err);
    if (!c) return err && err->code ? err->code : SIB_EINVAL;
    return conn_queue(c, verb, 0, 0, payload, len, err);
}

int msg_request(msg_service *ms, const char *host, uint16_t port, uint8_t verb, const void *payload, uint32_t len,
                int timeout_ms, msg_response_fn cb, void *ctx, sib_err *err)
{
    if (ms->npending >= ms->max_pending)
        return sib_err_set(err, SIB_EOVERLOADED, "%zu internode requests await an answer", ms->npending);
    msg_conn *c = peer_conn(ms, host, port, err);
    if (!c) return err && err->code ? err->code : SIB_EINVAL;
    pending *p = calloc(1, sizeof *p);
    if (!p) return sib_err_set(err, SIB_ENOMEM, "request");
    p->id = ++ms->next_req_id;
    p->ms = ms;
    p->cb = cb;
    p->ctx = ctx;
    int rc = conn_queue(c, verb, 0, p->id, payload, len, err);
    if (rc) { free(p); return rc; }
    ev_timer_init(&p->timer, on_timeout, timeout_ms / 1000.0, 0);
    p->timer.data = p;
    ev_timer_start(ms->loop, &p->timer);
    pending **slot = pend_slot(ms, p->id);
    *slot = p;
    ms->npending++;
    return 0;
}

int msg_reply(msg_service *ms, const msg_in *req, const void *payload, uint32_t len, sib_err *err)
{
    msg_conn *c = NULL;
    for (msg_conn *x = ms->inbound; x && !c; x = x->next)
        if (x->id == req->conn_id) c = x;
    for (msg_conn *x = ms->outbound; x && !c; x = x->next)
        if (x->id == req->conn_id && x->state == C_READY) c = x;
    if (!c) return sib_err_set(err, SIB_ENOTFOUND, "the connection of the request from %s has closed", req->from);
    return conn_queue(c, req->verb, MSG_FLAG_RESPONSE, req->id, payload, len, err);
}

size_t msg_queued_bytes(const msg_service *ms, const char *host, uint16_t port)
{
    size_t n = 0;
    for (msg_conn *c = ms->inbound; c && !host; c = c->next) n += c->out.len - c->out_off;
    for (msg_conn *c = ms->outbound; c; c = c->next)
        if (!host || (c->port == port && !strcmp(c->host, host))) n += c->out.len - c->out_off;
    return n;
}

size_t msg_pending_requests(const msg_service *ms) { return ms->npending; }

bool msg_connected(const msg_service *ms, const char *host, uint16_t port)
{
    for (msg_conn *c = ms->outbound; c; c = c->next)
        if (c->port == port && !strcmp(c->host, host)) return c->state == C_READY;
    return false;
}
