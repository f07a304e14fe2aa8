/* server.c: the libev TCP server: listener, connections, frame parsing,
 * the handshake (OPTIONS, STARTUP, REGISTER), version negotiation and
 * events. QUERY/PREPARE/EXECUTE/BATCH go to the executor.
 *
 * Per connection:
 *
 *   socket ──read──▶ rbuf ──frames──▶ dispatch ──▶ reply (now or later)
 *                                                     │
 *   socket ◀──sendmsg── write queue (whole frames) ◀──┘
 *
 *  - Frames are parsed as soon as they are complete; requests are pipelined
 *    and their replies may go out in any order (the stream id matches them).
 *  - Backpressure: reading stops while the connection has max_inflight
 *    unanswered requests or more than WQ_HIGH bytes queued for writing, so
 *    a client that does not read cannot make us buffer without bound.
 *  - Bytes in flight (all connections): unparsed input, the bodies of
 *    unanswered requests and unsent output. Past max_bytes_in_flight a
 *    connection that holds replies, unanswered requests or more than a read
 *    chunk of input is neither read nor parsed until the total falls below
 *    LOW_WATER of the cap; one holding none of these still gets one request
 *    at a time through, so clients that never read their replies (they keep
 *    their bytes) cannot starve the others. A THROW_ON_OVERLOAD session is
 *    read on and answered Overloaded instead.
 *  - The read buffer grows with the bytes that arrive (doubling), never to
 *    the length a header declares, and a big one is let go once empty.
 *  - Limits at accept: max_conns, the descriptor budget (conn_budget) and
 *    max_conns_per_ip; a connection past them is closed at once, with one
 *    log line per REFUSE_LOG_INTERVAL. EMFILE/ENFILE pause the listener for
 *    ACCEPT_BACKOFF instead of spinning on a socket that stays readable.
 *  - Timeouts, one ev_timer per connection armed at the nearest deadline:
 *    STARTUP not answered within startup_timeout, no traffic for
 *    idle_timeout (and nothing in flight), a frame unfinished for
 *    frame_timeout (not counted while we are the ones not reading).
 *  - Fatal errors (unsupported version, oversized frame): the error frame is
 *    queued, nothing after it is processed, and once it is flushed the write
 *    side is shut down and input is drained until EOF (bounded by a timer).
 *    Closing with unread input would send an RST that can destroy the
 *    error before the client reads it, and the driver then never downgrades.
 *  - Lifetime: see cql_int.h. close() makes the connection inert (srv =
 *    NULL, fd closed, watchers stopped); the memory goes when the last
 *    reference (a pending request, a running callback) is dropped.
 *
 * Version rules: the first frame fixes the session version (3 or 4). A
 * header whose low 7 version bits are neither gets Protocol error "Invalid
 * or unsupported protocol version (N); ..." on its stream, with response
 * version byte 0x84 (node.js retries with that version), then the close.
 */
#define _GNU_SOURCE
#include "cql_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
    READ_CHUNK = 64 * 1024,
    WQ_HIGH = 4 * 1024 * 1024, /* queued output that pauses reading */
    WBUF_KEEP = 1024 * 1024,   /* an emptied output buffer bigger than this is freed */
    RBUF_KEEP = 256 * 1024,    /* likewise for the input buffer */
    STARTUP_MAX_KEYS = 64,
    REGISTER_MAX_EVENTS = 16,
};
static const double LINGER_SECONDS = 2.0;
static const double ACCEPT_BACKOFF = 0.1;       /* seconds the listener rests after EMFILE */
static const int64_t REFUSE_LOG_INTERVAL = 10 * 1000000000LL; /* ns between "refused" lines */
static const double LOW_WATER = 0.75;           /* backpressure ends below this share of the cap */
static const char supported_versions[] = "3/v3, 4/v4";

static void conn_close(cql_conn *c, const char *why);
static void conn_unref(cql_conn *c);
static void conn_update_reading(cql_conn *c);
static inline void bytes_changed(cql_server *srv);
static void ip_release(cql_server *srv, cql_conn *c);

/* ---- small helpers ---- */

static bool replies_compressed(const cql_conn *c) { return c->s.lz4 && c->s.ready; }

/* Sends a server-generated frame (not tied to an executor request). */
static void send_frame(cql_conn *c, int16_t stream, uint8_t opcode, const sib_buf *body, bool compress)
{
    uint8_t *p;
    size_t len;
    sib_err err;
    sib_err_clear(&err);
    if (body->oom || cql_encode_frame(c->s.version, compress, stream, opcode, body->p, body->len, &p, &len, &err) < 0) {
        cql_conn_send(c, NULL, 0);
        return;
    }
    cql_conn_send(c, p, len);
    free(p);
}

static void send_error(cql_conn *c, int16_t stream, int32_t code, const char *msg)
{
    sib_buf b;
    sib_buf_init(&b);
    cql_encode_error(&b, c->s.version, code, msg, NULL);
    send_frame(c, stream, CQL_OP_ERROR, &b, replies_compressed(c));
    sib_buf_free(&b);
}

static void send_protocol_error(cql_conn *c, int16_t stream, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void send_protocol_error(cql_conn *c, int16_t stream, const char *fmt, ...)
{
    char msg[256];
    if (!cql_conn_open(c)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sib_log(c->srv->log, SIB_DEBUG, "cql: %s stream %d: protocol error: %s", c->s.peer, stream, msg);
    send_error(c, stream, CQL_ERR_PROTOCOL, msg);
}

/* The fatal error is out: half-close and read until the client goes. */
static void start_drain(cql_conn *c)
{
    if (c->draining) return;
    c->draining = true;
    shutdown(c->fd, SHUT_WR);
}

/* Queues the error, then stops processing: flush, shut down, drain, close. */
static void fail_connection(cql_conn *c, int16_t stream, const char *msg)
{
    send_protocol_error(c, stream, "%s", msg);
    if (!cql_conn_open(c)) return;
    c->fatal = true;
    ev_timer_start(c->srv->loop, &c->linger);
    /* The error may already be written out; the flush path then never
     * runs again, so start the drain here. */
    if (c->wpos == c->wbuf.len) start_drain(c);
    conn_update_reading(c);
}

/* ---- writing ---- */

static size_t wq_bytes(const cql_conn *c) { return c->wbuf.len - c->wpos; }

static void conn_flush(cql_conn *c)
{
    cql_conn_unbuild(c); /* a partial frame is never written */
    while (c->wpos < c->wbuf.len) {
        ssize_t w = send(c->fd, c->wbuf.p + c->wpos, c->wbuf.len - c->wpos, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            conn_close(c, strerror(errno));
            return;
        }
        c->wpos += (size_t)w;
        c->last_active = ev_now(c->srv->loop);
    }
    struct ev_loop *loop = c->srv->loop;
    if (c->wpos < c->wbuf.len) {
        ev_io_start(loop, &c->wio);
        return;
    }
    /* All written: the buffer is reused, unless a big reply grew it. */
    if (c->wbuf.cap > WBUF_KEEP) sib_buf_free(&c->wbuf);
    sib_buf_reset(&c->wbuf);
    c->wpos = 0;
    ev_io_stop(loop, &c->wio);
    if (c->fatal) start_drain(c);
    conn_update_reading(c);
}

/* Replies are copied into one buffer per connection rather than queued as
 * separate allocations: a small reply then costs no malloc or free (two of
 * each before, a twentieth of a write's CPU), and the flush is one send. */
void cql_conn_send(cql_conn *c, const uint8_t *p, size_t len)
{
    if (!cql_conn_open(c) || c->fatal) return;
    cql_conn_queue(c, p, len);
    conn_update_reading(c);
}

void cql_conn_queue(cql_conn *c, const uint8_t *p, size_t len)
{
    if (!cql_conn_open(c) || c->fatal) return;
    if (!p) {
        conn_close(c, "out of memory for a reply");
        return;
    }
    cql_conn_unbuild(c);
    sib_buf_append(&c->wbuf, p, len);
    cql_conn_queued(c);
}

void cql_conn_queued(cql_conn *c)
{
    if (c->wbuf.oom) {
        conn_close(c, "out of memory for the write queue");
        return;
    }
    /* While EV_WRITE is pending the socket is full: just queue. Otherwise
     * the flush waits for the end of this loop iteration (on_flush), where
     * every reply queued meanwhile leaves in one send. */
    if (!ev_is_active(&c->wio) && !c->dirty) {
        c->dirty = true;
        c->refs++; /* the dirty list's reference */
        c->dirty_next = c->srv->dirty;
        c->srv->dirty = c;
        if (!ev_is_active(&c->srv->nowait_w)) ev_idle_start(c->srv->loop, &c->srv->nowait_w);
    }
}

/* ev_idle: only there to keep the poll from blocking until on_flush ran. */
static void on_nowait(struct ev_loop *loop, ev_idle *w, int revents) { ev_idle_stop(loop, w); }

/* ev_prepare: runs after the iteration's callbacks, before the loop blocks. */
static void on_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
    cql_server *srv = w->data;
    while (srv->dirty) {
        cql_conn *c = srv->dirty;
        srv->dirty = c->dirty_next;
        c->dirty = false;
        c->dirty_next = NULL;
        if (cql_conn_open(c)) conn_flush(c);
        conn_unref(c);
    }
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    cql_conn *c = w->data;
    c->refs++;
    conn_flush(c);
    conn_unref(c);
}

/* ---- connection lifetime ---- */

static void conn_free(cql_conn *c)
{
    sib_buf_free(&c->wbuf);
    sib_buf_free(&c->rbuf);
    free(c);
}

static void conn_unref(cql_conn *c)
{
    SIB_ASSERT(c->refs > 0);
    if (--c->refs == 0) conn_free(c);
}

static void conn_close(cql_conn *c, const char *why)
{
    cql_server *srv = c->srv;
    if (!srv) return;
    cql_conn_unbuild(c); /* its request completes later and finds c closed */
    sib_log(srv->log, SIB_DEBUG, "cql: %s closed (%s)", c->s.peer, why);
    ev_io_stop(srv->loop, &c->rio);
    ev_io_stop(srv->loop, &c->wio);
    ev_timer_stop(srv->loop, &c->linger);
    ev_timer_stop(srv->loop, &c->deadline);
    close(c->fd);
    c->fd = -1;
    if (c->prev) c->prev->next = c->next;
    else srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    srv->nconns--;
    ip_release(srv, c);
    /* Its unanswered requests stay counted until they are answered; its
     * buffers no longer are. */
    srv->bytes_in_flight -= c->acct;
    c->acct = 0;
    c->srv = NULL;
    bytes_changed(srv);
    if (srv->ex && srv->ex->session_closed) srv->ex->session_closed(srv->ex, &c->s);
    conn_unref(c); /* the socket's reference */
}

void cql_conn_request_done(cql_conn *c)
{
    SIB_ASSERT(c->inflight > 0);
    c->inflight--;
    /* An answer given while on_readable parses (a read answered at once)
     * leaves reading to its one update at the end: process_input checks
     * the in-flight count and the cap before each frame itself. */
    if (!c->in_input) conn_update_reading(c);
    conn_unref(c);
}

/* Bytes this connection holds in flight. Request bodies of a closed
 * connection are no longer counted: the executor frees them soon. */
static size_t conn_bytes(const cql_conn *c)
{
    return (c->rbuf.len - c->rpos) + wq_bytes(c) + c->req_bytes;
}

static void bytes_toggle(cql_server *srv);

/* Backpressure on or off after the total changed. Inline for the common
 * case, no cap or under it and not overloaded: nothing changes. */
static inline void bytes_changed(cql_server *srv)
{
    if (srv->max_bytes && (srv->overloaded || srv->bytes_in_flight >= srv->max_bytes)) bytes_toggle(srv);
}

/* Turning backpressure off walks every connection (only at that
 * transition) to restart paused readers. */
static void bytes_toggle(cql_server *srv)
{
    if (!srv->overloaded && srv->bytes_in_flight >= srv->max_bytes) {
        srv->overloaded = true;
        sib_log(srv->log, SIB_DEBUG, "cql: %zu bytes in flight reach the cap of %zu: backpressure",
                srv->bytes_in_flight, srv->max_bytes);
    } else if (srv->overloaded && (double)srv->bytes_in_flight < LOW_WATER * (double)srv->max_bytes) {
        srv->overloaded = false;
        for (cql_conn *c = srv->conns, *next; c; c = next) {
            next = c->next;
            conn_update_reading(c);
        }
    }
}

static void conn_account(cql_conn *c)
{
    cql_server *srv = c->srv;
    size_t now = conn_bytes(c);
    if (now == c->acct) return;
    srv->bytes_in_flight = srv->bytes_in_flight - c->acct + now;
    c->acct = now;
    bytes_changed(srv);
}

/* Over the global cap a connection waits while it holds replies, requests
 * or more than `unparsed` bytes of input; THROW_ON_OVERLOAD sessions are
 * answered Overloaded instead of waiting. */
static bool held_by_cap(cql_conn *c, size_t unparsed)
{
    conn_account(c);
    if (!c->srv->overloaded || c->throw_on_overload) return false;
    return wq_bytes(c) || c->req_bytes || c->rbuf.len - c->rpos > unparsed;
}

static void conn_update_reading(cql_conn *c)
{
    if (!cql_conn_open(c)) return;
    struct ev_loop *loop = c->srv->loop;
    /* A request smaller than a read chunk still gets through the cap; a
     * partial frame bigger than that waits. */
    bool want = c->draining || (!c->fatal && !held_by_cap(c, READ_CHUNK) && c->inflight < c->srv->max_inflight &&
                                wq_bytes(c) < WQ_HIGH);
    if (want && !ev_is_active(&c->rio)) {
        ev_io_start(loop, &c->rio);
        /* Frames may already sit in rbuf with no new bytes to wake us. */
        if (c->rbuf.len > c->rpos) ev_feed_event(loop, &c->rio, EV_READ);
    } else if (!want && ev_is_active(&c->rio)) {
        ev_io_stop(loop, &c->rio);
    }
}

static void on_linger(struct ev_loop *loop, ev_timer *t, int revents)
{
    cql_conn *c = t->data;
    conn_close(c, "linger timeout after a fatal protocol error");
}

/* ---- STARTUP / REGISTER / OPTIONS ---- */

static void handle_startup(cql_conn *c, const cql_header *h, sib_rd *r)
{
    cql_str keys[STARTUP_MAX_KEYS], vals[STARTUP_MAX_KEYS];
    size_t n = 0;
    if (c->s.ready) {
        send_protocol_error(c, h->stream, "Unexpected message STARTUP, the connection is already initialized");
        return;
    }
    if (!cql_get_string_map(r, keys, vals, STARTUP_MAX_KEYS, &n) || sib_rd_left(r) != 0) {
        send_protocol_error(c, h->stream, "Invalid STARTUP message: malformed options map");
        return;
    }
    bool have_version = false, lz4 = false, throw_on_overload = false;
    for (size_t i = 0; i < n; i++) {
        if (cql_str_eq(keys[i], "CQL_VERSION")) {
            /* Drivers send "3.0.0" or our own "3.4.5": any 3.x is fine. */
            if (vals[i].len < 1 || vals[i].p[0] != '3' || (vals[i].len > 1 && vals[i].p[1] != '.')) {
                send_protocol_error(c, h->stream, "Invalid or unsupported CQL version %.*s", (int)vals[i].len,
                                    vals[i].p);
                return;
            }
            have_version = true;
        } else if (cql_str_eq(keys[i], "THROW_ON_OVERLOAD")) {
            throw_on_overload = cql_str_eq(vals[i], "1") || cql_str_eq(vals[i], "true");
        } else if (cql_str_eq(keys[i], "COMPRESSION")) {
            if (cql_str_eq(vals[i], "lz4") || cql_str_eq(vals[i], "LZ4")) {
                lz4 = true;
            } else if (vals[i].len > 0) {
                send_protocol_error(c, h->stream, "Unknown compression algorithm: %.*s", (int)SIB_MIN(vals[i].len, 64),
                                    vals[i].p);
                return;
            }
        }
    }
    if (!have_version) {
        send_protocol_error(c, h->stream, "Missing value CQL_VERSION in STARTUP message");
        return;
    }
    c->s.lz4 = lz4;
    c->throw_on_overload = throw_on_overload;
    sib_buf empty;
    sib_buf_init(&empty);
    send_frame(c, h->stream, CQL_OP_READY, &empty, false); /* READY is never compressed */
    c->s.ready = true;
}

static void handle_register(cql_conn *c, const cql_header *h, sib_rd *r)
{
    static const struct { const char *name; uint32_t bit; } events[] = {
        {"TOPOLOGY_CHANGE", CQL_EVENT_TOPOLOGY_CHANGE},
        {"STATUS_CHANGE", CQL_EVENT_STATUS_CHANGE},
        {"SCHEMA_CHANGE", CQL_EVENT_SCHEMA_CHANGE},
    };
    cql_str list[REGISTER_MAX_EVENTS];
    size_t n = 0;
    if (!cql_get_string_list(r, list, REGISTER_MAX_EVENTS, &n) || sib_rd_left(r) != 0) {
        send_protocol_error(c, h->stream, "Invalid REGISTER message: malformed event list");
        return;
    }
    uint32_t bits = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < SIB_ARRAY_LEN(events) && !cql_str_eq(list[i], events[j].name)) j++;
        if (j == SIB_ARRAY_LEN(events)) {
            send_protocol_error(c, h->stream, "Invalid value '%.*s' for Type", (int)SIB_MIN(list[i].len, 64),
                                list[i].p);
            return;
        }
        bits |= events[j].bit;
    }
    c->s.events |= bits;
    sib_buf empty;
    sib_buf_init(&empty);
    send_frame(c, h->stream, CQL_OP_READY, &empty, replies_compressed(c));
}

static void handle_options(cql_conn *c, const cql_header *h)
{
    sib_buf b;
    sib_buf_init(&b);
    cql_encode_supported(&b);
    send_frame(c, h->stream, CQL_OP_SUPPORTED, &b, replies_compressed(c));
    sib_buf_free(&b);
}

/* ---- executor requests ---- */

static int decode_request(cql_request *req, const uint8_t *body, size_t n, sib_err *err)
{
    switch (req->opcode) {
    case CQL_OP_QUERY: return cql_decode_query(body, n, req->version, req->arena, &req->u.query, err);
    case CQL_OP_PREPARE: return cql_decode_prepare(body, n, req->version, req->arena, &req->u.prepare, err);
    case CQL_OP_EXECUTE: return cql_decode_execute(body, n, req->version, req->arena, &req->u.execute, err);
    case CQL_OP_BATCH: return cql_decode_batch(body, n, req->version, req->arena, &req->u.batch, err);
    default: return sib_err_set(err, SIB_EPROTO, "not an executor request");
    }
}

static void handle_exec(cql_conn *c, const cql_header *h, const uint8_t *body, size_t n)
{
    if (c->srv->overloaded && c->throw_on_overload) {
        c->srv->stats.overloaded++;
        send_error(c, h->stream, CQL_ERR_OVERLOADED,
                   "Server is in overloaded state. Cannot accept more requests at this point");
        return;
    }
    const uint8_t *copy;
    cql_request *req = cql_request_new(c, h, body, n, &copy);
    if (!req) {
        send_error(c, h->stream, CQL_ERR_SERVER, "out of memory");
        return;
    }
    sib_err err;
    sib_err_clear(&err);
    if (decode_request(req, copy, n, &err) < 0) {
        sib_log(c->srv->log, SIB_DEBUG, "cql: %s stream %d: %s", c->s.peer, h->stream, err.msg);
        cql_reply_error(req, cql_errcode_from_sib(err.code), err.msg, NULL);
        return;
    }
    cql_executor *ex = c->srv->ex;
    cql_exec_request(ex, req);
}

/* ---- frame dispatch ---- */

static bool is_exec_opcode(uint8_t op)
{
    return op == CQL_OP_QUERY || op == CQL_OP_PREPARE || op == CQL_OP_EXECUTE || op == CQL_OP_BATCH;
}

/* Decompresses and strips the custom payload; body/n are updated to the
 * message itself (pointing into *tmp when decompressed). */
static bool unwrap_body(cql_conn *c, const cql_header *h, const uint8_t **body, size_t *n, sib_buf *tmp)
{
    if (h->flags & CQL_FLAG_COMPRESSION) {
        if (!c->s.lz4) {
            send_protocol_error(c, h->stream, "Compressed frame received but no compression was negotiated");
            return false;
        }
        sib_err err;
        sib_err_clear(&err);
        if (cql_lz4_decompress(*body, *n, c->srv->max_frame, tmp, &err) < 0) {
            send_protocol_error(c, h->stream, "%s", err.msg);
            return false;
        }
        *body = tmp->p;
        *n = tmp->len;
    }
    if (h->flags & CQL_FLAG_CUSTOM_PAYLOAD) {
        sib_rd r;
        sib_rd_init(&r, *body, *n);
        if (!cql_skip_bytes_map(&r)) {
            send_protocol_error(c, h->stream, "Invalid custom payload");
            return false;
        }
        *n = sib_rd_left(&r);
        *body = r.p;
    }
    return true;
}

static void dispatch(cql_conn *c, const cql_header *h, const uint8_t *body, size_t n)
{
    uint8_t op = h->opcode;
    if (!c->s.ready && op != CQL_OP_STARTUP && op != CQL_OP_OPTIONS) {
        send_protocol_error(c, h->stream, "Unexpected message %s, expecting STARTUP or OPTIONS", cql_opcode_name(op));
        return;
    }
    sib_buf tmp = {0}; /* empty: only a compressed frame uses it */
    /* the call only for a frame with something to unwrap (not a point read's) */
    if ((h->flags & (CQL_FLAG_COMPRESSION | CQL_FLAG_CUSTOM_PAYLOAD)) && !unwrap_body(c, h, &body, &n, &tmp)) goto out;
    sib_rd r;
    sib_rd_init(&r, body, n);
    switch (op) {
    case CQL_OP_OPTIONS: handle_options(c, h); break;
    case CQL_OP_STARTUP: handle_startup(c, h, &r); break;
    case CQL_OP_REGISTER: handle_register(c, h, &r); break;
    case CQL_OP_AUTH_RESPONSE:
        send_protocol_error(c, h->stream, "Unexpected message AUTH_RESPONSE: no authentication is required");
        break;
    default:
        if (is_exec_opcode(op)) handle_exec(c, h, body, n);
        else send_protocol_error(c, h->stream, "Unknown or unexpected opcode 0x%02x (%s)", op, cql_opcode_name(op));
        break;
    }
out:
    if (tmp.p) sib_buf_free(&tmp);
}

/* Answers a frame whose version we do not speak, then closes. v1/v2 use an
 * 8-byte header with a one-byte stream id. */
static void reject_version(cql_conn *c, const uint8_t *p)
{
    int v = p[0] & 0x7F;
    int16_t stream = v < 3 ? (int16_t)(int8_t)p[2] : (int16_t)get_be16(p + 2);
    char msg[160];
    snprintf(msg, sizeof msg, "Invalid or unsupported protocol version (%d); supported versions are (%s)", v,
             supported_versions);
    c->s.version = CQL_VERSION_MAX; /* the reply carries 0x84 */
    c->s.ready = false;
    fail_connection(c, stream, msg);
}

/* Validates the header of a complete-or-partial frame. Returns 1 to
 * dispatch, 0 to skip the body with an error sent, -1 when the stream is
 * lost (fatal). */
static int check_header(cql_conn *c, const cql_header *h)
{
    int v = h->version & 0x7F;
    if (h->length > c->srv->max_frame) {
        char msg[128];
        snprintf(msg, sizeof msg, "Request is too big: length %u exceeds maximum allowed length %u", h->length,
                 c->srv->max_frame);
        fail_connection(c, h->stream, msg);
        return -1;
    }
    if (h->version & CQL_VERSION_RESPONSE) {
        send_protocol_error(c, h->stream, "Wrong protocol direction (expected REQUEST, got RESPONSE)");
        return 0;
    }
    if (c->version_fixed && v != c->s.version) {
        send_protocol_error(c, h->stream,
                            "Invalid message version. Got %d but previous messages on this connection had version %d",
                            v, c->s.version);
        return 0;
    }
    return 1;
}

/* Parses and dispatches every complete frame in rbuf; true when at least
 * one frame was consumed. */
static bool process_input(cql_conn *c)
{
    bool consumed = false;
    while (cql_conn_open(c) && !c->fatal && !c->draining) {
        if (c->inflight >= c->srv->max_inflight || wq_bytes(c) >= WQ_HIGH) break;
        if (held_by_cap(c, SIZE_MAX)) break; /* over the cap: one request at a time */
        const uint8_t *p = c->rbuf.p + c->rpos;
        size_t avail = c->rbuf.len - c->rpos;
        if (avail < 1) break;
        int v = p[0] & 0x7F;
        if (v < CQL_VERSION_MIN || v > CQL_VERSION_MAX) {
            /* Wait for the stream id: a v1/v2 header is 8 bytes, others 9. */
            if (avail < (size_t)(v < 3 ? 8 : CQL_HEADER_LEN)) break;
            reject_version(c, p);
            break;
        }
        cql_header h;
        if (cql_header_decode(p, avail, &h) < 0) break;
        int ok = check_header(c, &h);
        if (ok < 0) break;
        if (avail - CQL_HEADER_LEN < h.length) break;
        c->rpos += CQL_HEADER_LEN + h.length;
        consumed = true;
        if (!ok) continue;
        if (!c->version_fixed) {
            c->version_fixed = true;
            c->s.version = v;
        }
        /* dispatch may reply synchronously, even close c (we hold a ref);
         * rbuf is not touched by replies, so p stays valid. */
        dispatch(c, &h, p + CQL_HEADER_LEN, h.length);
    }
    if (c->rpos > 0 && c->rpos == c->rbuf.len) {
        if (c->rbuf.cap > RBUF_KEEP) sib_buf_free(&c->rbuf);
        sib_buf_reset(&c->rbuf);
        c->rpos = 0;
    } else if (c->rpos > 0 && (c->rpos >= READ_CHUNK || c->rbuf.len - c->rpos < c->rpos)) {
        memmove(c->rbuf.p, c->rbuf.p + c->rpos, c->rbuf.len - c->rpos);
        c->rbuf.len -= c->rpos;
        c->rpos = 0;
    }
    return consumed;
}

/* How much to read next: a chunk, or for a large frame as much again as
 * has arrived (at most its rest), so the buffer doubles with the bytes that
 * came rather than jumping to a length the header merely declares. */
static size_t read_size(const cql_conn *c)
{
    size_t avail = c->rbuf.len - c->rpos;
    if (avail >= CQL_HEADER_LEN) {
        uint32_t len = get_be32(c->rbuf.p + c->rpos + 5);
        size_t rest = CQL_HEADER_LEN + (size_t)len - SIB_MIN(avail, CQL_HEADER_LEN + (size_t)len);
        if (len <= c->srv->max_frame && rest > READ_CHUNK) return SIB_MIN(rest, SIB_MAX(avail, (size_t)READ_CHUNK));
    }
    return READ_CHUNK;
}

/* ---- deadlines ---- */

/* The nearest deadline of c (0 = none), in ev_now time. */
static ev_tstamp conn_next_deadline(const cql_conn *c)
{
    const cql_server *srv = c->srv;
    ev_tstamp due = 0;
    if (!c->s.ready && srv->startup_timeout > 0) due = c->opened + srv->startup_timeout;
    if (srv->idle_timeout > 0) {
        ev_tstamp d = c->last_active + srv->idle_timeout;
        if (!due || d < due) due = d;
    }
    if (srv->frame_timeout > 0 && c->frame_started > 0) {
        ev_tstamp d = c->frame_started + srv->frame_timeout;
        if (!due || d < due) due = d;
    }
    return due;
}

static void conn_arm_deadline(cql_conn *c)
{
    struct ev_loop *loop = c->srv->loop;
    ev_tstamp due = conn_next_deadline(c);
    ev_timer_stop(loop, &c->deadline);
    if (!due) return;
    ev_tstamp in = due - ev_now(loop);
    ev_timer_set(&c->deadline, in > 0.001 ? in : 0.001, 0.);
    ev_timer_start(loop, &c->deadline);
}

static void conn_timed_out(cql_conn *c, const char *what, double secs)
{
    char why[128];
    snprintf(why, sizeof why, "%s within %.3g s", what, secs);
    c->srv->stats.conns_timed_out++;
    sib_log(c->srv->log, SIB_DEBUG, "cql: %s: %s", c->s.peer, why);
    conn_close(c, why);
}

static void on_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
    cql_conn *c = t->data;
    cql_server *srv = c->srv;
    if (!srv) return;
    ev_tstamp now = ev_now(loop);
    if (!c->s.ready && srv->startup_timeout > 0 && now >= c->opened + srv->startup_timeout) {
        conn_timed_out(c, "no STARTUP", srv->startup_timeout);
        return;
    }
    if (srv->idle_timeout > 0 && now >= c->last_active + srv->idle_timeout) {
        /* A long request is not idleness: look again after it. */
        if (!c->inflight && !wq_bytes(c)) {
            conn_timed_out(c, "no traffic", srv->idle_timeout);
            return;
        }
        c->last_active = now;
    }
    if (srv->frame_timeout > 0 && c->frame_started > 0 && now >= c->frame_started + srv->frame_timeout) {
        /* Time we spent not reading (backpressure) is not the client's. */
        if (ev_is_active(&c->rio)) {
            conn_timed_out(c, "frame not complete", srv->frame_timeout);
            return;
        }
        c->frame_started = now;
    }
    conn_arm_deadline(c);
}

/* After input was parsed: a leftover partial frame starts its clock (a new
 * one when a frame was just consumed). */
static void note_partial_frame(cql_conn *c, bool consumed)
{
    if (consumed) c->frame_started = 0;
    if (c->rbuf.len == c->rpos) {
        c->frame_started = 0;
    } else if (!c->frame_started) {
        c->frame_started = ev_now(c->srv->loop);
        if (c->srv->frame_timeout > 0) conn_arm_deadline(c);
    }
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    cql_conn *c = w->data;
    c->refs++;
    size_t want = READ_CHUNK;
    if (c->draining) {
        sib_buf_reset(&c->rbuf);
        c->rpos = 0;
    } else {
        want = read_size(c);
    }
    uint8_t *dst = sib_buf_reserve(&c->rbuf, want);
    if (!dst) {
        conn_close(c, "out of memory for the read buffer");
        goto out;
    }
    ssize_t got = read(c->fd, dst, want);
    if (got == 0) {
        conn_close(c, "EOF");
        goto out;
    }
    if (got < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            conn_close(c, strerror(errno));
            goto out;
        }
        got = 0;
    }
    c->rbuf.len += (size_t)got;
    if (got > 0) c->last_active = ev_now(loop);
    if (c->draining) {
        sib_buf_reset(&c->rbuf);
        goto out;
    }
    c->in_input = true;
    bool consumed = process_input(c);
    c->in_input = false;
    if (cql_conn_open(c)) note_partial_frame(c, consumed);
    conn_update_reading(c);
out:
    conn_unref(c);
}

/* ---- accepting: per-IP counts (kept only with max_conns_per_ip) ---- */

struct ip_count {
    uint8_t ip[16];
    uint8_t len;
    uint32_t n;
};

/* Linear: a per-IP limit is for a handful of abusive sources, and the
 * table holds one entry per distinct peer address currently connected. */
static struct ip_count *ip_find(cql_server *srv, const uint8_t *ip, uint8_t len)
{
    for (size_t i = 0; i < srv->nips; i++)
        if (srv->ips[i].len == len && !memcmp(srv->ips[i].ip, ip, len)) return &srv->ips[i];
    return NULL;
}

/* Counts c against its address; false when the address is at its limit. */
static bool ip_admit(cql_server *srv, cql_conn *c)
{
    if (!srv->max_conns_per_ip || !c->iplen) return true;
    struct ip_count *e = ip_find(srv, c->ip, c->iplen);
    if (e && e->n >= srv->max_conns_per_ip) return false;
    if (!e) {
        if (!sib_grow((void **)&srv->ips, &srv->ips_cap, srv->nips + 1, sizeof *srv->ips)) return false;
        e = &srv->ips[srv->nips++];
        memcpy(e->ip, c->ip, c->iplen);
        e->len = c->iplen;
        e->n = 0;
    }
    e->n++;
    return true;
}

static void ip_release(cql_server *srv, cql_conn *c)
{
    if (!srv->max_conns_per_ip || !c->iplen) return;
    struct ip_count *e = ip_find(srv, c->ip, c->iplen);
    if (!e) return;
    if (--e->n == 0) *e = srv->ips[--srv->nips];
}

/* The peer's address (c->ip, for the per-IP limit) and "addr:port" (logs). */
static void peer_of(int fd, cql_conn *c)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            memcpy(c->ip, &a->sin_addr, 4);
            c->iplen = 4;
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            memcpy(c->ip, &a->sin6_addr, 16);
            c->iplen = 16;
            port = ntohs(a->sin6_port);
        }
        if (c->iplen) inet_ntop(ss.ss_family, c->ip, host, sizeof host);
    }
    snprintf(c->s.peer, sizeof c->s.peer, "%s:%d", host, port);
}

/* Closes a connection past a limit at once; one log line per interval. */
static void refuse(cql_server *srv, int fd, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void refuse(cql_server *srv, int fd, const char *fmt, ...)
{
    close(fd);
    srv->stats.conns_refused++;
    uint64_t dropped;
    if (!sib_ratelimit_allow(&srv->refuse_rl, sib_mono_ns(), &dropped) || !sib_log_enabled(srv->log, SIB_WARN)) return;
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    sib_logf(srv->log, SIB_WARN, "cql: refusing connections: %s; %llu more refused since the last line", why,
             (unsigned long long)dropped);
}

static void conn_open(cql_server *srv, int fd)
{
    cql_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->srv = srv;
    c->fd = fd;
    c->refs = 1;
    c->s.id = ++srv->next_session_id;
    c->s.version = CQL_VERSION_MAX;
    peer_of(fd, c);
    if (!ip_admit(srv, c)) {
        refuse(srv, fd, "%s has %u connections from its address (native_transport_max_concurrent_connections_per_ip)",
               c->s.peer, srv->max_conns_per_ip);
        free(c);
        return;
    }
    sib_buf_init(&c->rbuf);
    ev_io_init(&c->rio, on_readable, fd, EV_READ);
    ev_io_init(&c->wio, on_writable, fd, EV_WRITE);
    ev_timer_init(&c->linger, on_linger, LINGER_SECONDS, 0.);
    ev_init(&c->deadline, on_deadline);
    c->rio.data = c->wio.data = c->linger.data = c->deadline.data = c;
    c->opened = c->last_active = ev_now(srv->loop);
    c->next = srv->conns;
    if (srv->conns) srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    conn_update_reading(c);
    conn_arm_deadline(c);
    sib_log(srv->log, SIB_DEBUG, "cql: %s connected (session %llu)", c->s.peer, (unsigned long long)c->s.id);
}

/* The connection limit now: max_conns and the descriptor budget. */
static uint64_t conn_limit(const cql_server *srv)
{
    uint64_t lim = srv->max_conns ? srv->max_conns : UINT64_MAX;
    if (srv->conn_budget) lim = SIB_MIN(lim, srv->conn_budget(srv->conn_budget_ctx));
    return lim;
}


static void on_accept_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
    cql_server *srv = t->data;
    ev_io_start(loop, &srv->accept_w);
}

/* Out of descriptors: the pending connection stays in the backlog and the
 * listener stays readable, so retrying at once would spin. Rest a while. */
static void accept_backoff(cql_server *srv, int e)
{
    srv->stats.accept_backoffs++;
    uint64_t dropped;
    if (sib_ratelimit_allow(&srv->accept_rl, sib_mono_ns(), &dropped))
        sib_log(srv->log, SIB_WARN, "cql: accept: %s; pausing new connections for %.0f ms (%llu more since the last line)",
                strerror(e), ACCEPT_BACKOFF * 1000, (unsigned long long)dropped);
    ev_io_stop(srv->loop, &srv->accept_w);
    ev_timer_set(&srv->accept_retry, ACCEPT_BACKOFF, 0.);
    ev_timer_start(srv->loop, &srv->accept_retry);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    cql_server *srv = w->data;
    for (;;) {
        int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EINTR || e == ECONNABORTED) continue;
            if (e == EAGAIN || e == EWOULDBLOCK) return;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                accept_backoff(srv, e);
                return;
            }
            uint64_t dropped;
            if (sib_ratelimit_allow(&srv->accept_rl, sib_mono_ns(), &dropped))
                sib_log(srv->log, SIB_WARN, "cql: accept: %s", strerror(e));
            return;
        }
        uint64_t limit = conn_limit(srv);
        if (srv->nconns >= limit) {
            refuse(srv, fd,
                   "%zu open, limit %llu (native_transport_max_concurrent_connections and the descriptors kept "
                   "for storage)",
                   srv->nconns, (unsigned long long)limit);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_open(srv, fd);
    }
}

/* ---- server ---- */

static int parse_bind(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *sl, sib_err *err)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *sl = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *sl = sizeof *a6;
        return 0;
    }
    return sib_err_set(err, SIB_ECONFIG, "rpc_address '%s' is not an IP address", addr);
}

static int open_listener(cql_server *srv, const char *addr, uint16_t port, sib_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = parse_bind(addr, port, &ss, &sl, err);
    if (rc < 0) return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return sib_err_errno(err, "socket");
    int one = 1;
    /* Nodes of a local cluster bind 127.0.0.x with the same port. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
        rc = sib_err_errno(err, "bind %s:%u", addr, port);
        goto fail;
    }
    if (listen(fd, 512) < 0) {
        rc = sib_err_errno(err, "listen %s:%u", addr, port);
        goto fail;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        rc = sib_err_errno(err, "getsockname");
        goto fail;
    }
    srv->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    srv->fd = fd;
    return 0;
fail:
    close(fd);
    return rc;
}

cql_server *cql_server_create(struct ev_loop *loop, const cql_server_opts *o, cql_executor *ex, sib_err *err)
{
    SIB_ASSERT(loop && o && ex && ex->request);
    cql_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        sib_err_set(err, SIB_ENOMEM, "cql server");
        return NULL;
    }
    srv->loop = loop;
    srv->ex = ex;
    srv->log = o->log;
    srv->max_frame = o->max_frame_size ? o->max_frame_size : CQL_MAX_FRAME_DEFAULT;
    srv->max_inflight = o->max_inflight ? o->max_inflight : 1024;
    srv->max_conns = o->max_conns;
    srv->max_conns_per_ip = o->max_conns_per_ip;
    srv->conn_budget = o->conn_budget;
    srv->conn_budget_ctx = o->conn_budget_ctx;
    srv->max_bytes = o->max_bytes_in_flight;
    srv->startup_timeout = o->startup_timeout;
    srv->idle_timeout = o->idle_timeout;
    srv->frame_timeout = o->frame_timeout;
    sib_ratelimit_init(&srv->refuse_rl, REFUSE_LOG_INTERVAL);
    sib_ratelimit_init(&srv->accept_rl, REFUSE_LOG_INTERVAL);
    /* A frame bigger than half the cap could hold the cap by itself: its
     * connection would wait for a total its own bytes keep up. Such frames
     * are refused like any oversized frame. */
    if (srv->max_bytes && srv->max_frame > srv->max_bytes / 2) {
        srv->max_frame = (uint32_t)SIB_MAX(srv->max_bytes / 2, (size_t)CQL_HEADER_LEN);
        sib_log(srv->log, SIB_INFO, "cql: frames limited to %u bytes, half of native_transport_max_request_data_in_flight",
                srv->max_frame);
    }
    const char *addr = o->bind_addr ? o->bind_addr : "127.0.0.1";
    if (open_listener(srv, addr, o->port, err) < 0) {
        free(srv);
        return NULL;
    }
    ev_io_init(&srv->accept_w, on_accept, srv->fd, EV_READ);
    srv->accept_w.data = srv;
    ev_init(&srv->accept_retry, on_accept_retry);
    srv->accept_retry.data = srv;
    ev_io_start(loop, &srv->accept_w);
    ev_prepare_init(&srv->flush_w, on_flush);
    srv->flush_w.data = srv;
    ev_idle_init(&srv->nowait_w, on_nowait);
    ev_prepare_start(loop, &srv->flush_w);
    ev_unref(loop); /* the flusher alone does not keep the loop running */
    sib_log(srv->log, SIB_INFO, "cql: listening for native protocol clients on %s:%u", addr, srv->port);
    return srv;
}

void cql_server_destroy(cql_server *srv)
{
    if (!srv) return;
    ev_io_stop(srv->loop, &srv->accept_w);
    ev_timer_stop(srv->loop, &srv->accept_retry);
    ev_ref(srv->loop);
    ev_prepare_stop(srv->loop, &srv->flush_w);
    ev_idle_stop(srv->loop, &srv->nowait_w);
    close(srv->fd);
    srv->max_bytes = 0; /* no backpressure bookkeeping while everything closes */
    while (srv->conns) conn_close(srv->conns, "server shutdown");
    while (srv->dirty) { /* closed above: drop the list's references */
        cql_conn *c = srv->dirty;
        srv->dirty = c->dirty_next;
        c->dirty = false;
        conn_unref(c);
    }
    cql_request_pool_free(srv);
    free(srv->ips);
    free(srv);
}

uint16_t cql_server_port(const cql_server *srv) { return srv->port; }
size_t cql_server_conn_count(const cql_server *srv) { return srv->nconns; }

void cql_server_get_stats(const cql_server *srv, cql_server_stats *out)
{
    *out = srv->stats;
    out->conns = srv->nconns;
    out->bytes_in_flight = srv->bytes_in_flight;
    out->backpressure = srv->overloaded;
    out->max_bytes_in_flight = srv->max_bytes;
}

/* ---- events ---- */

static void broadcast(cql_server *srv, uint32_t bit, const sib_buf *body)
{
    if (body->oom) return;
    cql_conn *c = srv->conns;
    while (c) {
        /* A write error closes (and may free) c, never another connection:
         * step to the next one first. */
        cql_conn *next = c->next;
        if (c->s.ready && (c->s.events & bit) && !c->fatal)
            send_frame(c, -1, CQL_OP_EVENT, body, replies_compressed(c));
        c = next;
    }
}

void cql_server_broadcast_schema_change(cql_server *srv, cql_change ch, cql_target t, const char *ks, const char *name)
{
    sib_buf b;
    sib_buf_init(&b);
    cql_put_cstring(&b, "SCHEMA_CHANGE");
    cql_encode_schema_change(&b, ch, t, ks, name, NULL, 0);
    broadcast(srv, CQL_EVENT_SCHEMA_CHANGE, &b);
    sib_buf_free(&b);
}

void cql_server_broadcast_status(cql_server *srv, bool up, const uint8_t *addr, uint8_t addr_len, int32_t port)
{
    sib_buf b;
    sib_buf_init(&b);
    cql_put_cstring(&b, "STATUS_CHANGE");
    cql_put_cstring(&b, up ? "UP" : "DOWN");
    cql_put_inet(&b, addr, addr_len, port);
    broadcast(srv, CQL_EVENT_STATUS_CHANGE, &b);
    sib_buf_free(&b);
}

void cql_server_broadcast_topology(cql_server *srv, cql_topology_change ch, const uint8_t *addr, uint8_t addr_len,
                                   int32_t port)
{
    static const char *const names[] = {"NEW_NODE", "REMOVED_NODE", "MOVED_NODE"};
    sib_buf b;
    sib_buf_init(&b);
    cql_put_cstring(&b, "TOPOLOGY_CHANGE");
    cql_put_cstring(&b, (size_t)ch < SIB_ARRAY_LEN(names) ? names[ch] : "NEW_NODE");
    cql_put_inet(&b, addr, addr_len, port);
    broadcast(srv, CQL_EVENT_TOPOLOGY_CHANGE, &b);
    sib_buf_free(&b);
}
