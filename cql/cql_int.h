/* cql_int.h: private to cql/ (protocol layer and the executor files).
 *
 * Ownership model:
 *  - a cql_conn is reference counted: one reference while its socket is
 *    open, one per unanswered request, one while a callback runs on it.
 *    It is freed when the count reaches zero, so a late reply after the
 *    client disconnected finds a closed (srv == NULL) but valid conn and
 *    drops the frame;
 *  - a cql_request and its arena are allocated together and freed by the
 *    reply call; the request body lives beside it (small) or in the arena;
 *  - frames queued for writing are malloc'd buffers owned by the queue.
 */
#ifndef SIB_CQL_INT_H
#define SIB_CQL_INT_H

#include "cql.h"

#include <ev.h>

typedef struct cql_conn cql_conn;

/* The protocol-layer part of a request. */
struct cql_request_priv {
    cql_conn *conn;
    sib_buf out;        /* the response frame, when not built in the connection's wbuf */
    sib_buf *ob;        /* where the frame is built: out, or conn->wbuf while conn->building is this */
    size_t body_len;    /* request bytes it holds, counted in flight */
    size_t frame_start; /* offset of the header in *ob */
    cql_rows rows;      /* valid between cql_reply_rows_begin and _end */
    bool rows_open;
};

struct cql_conn {
    cql_server *srv; /* NULL once closed */
    cql_session s;
    int fd;
    int refs;
    ev_io rio, wio;
    ev_timer linger; /* bounds the drain after a fatal protocol error */
    sib_buf rbuf;    /* unparsed input starts at rpos */
    size_t rpos;
    sib_buf wbuf;    /* replies not yet written start at wpos */
    /* The request whose reply is being built at the end of wbuf, from its
     * frame_start (no copy from a buffer of its own): moved out by
     * cql_conn_unbuild before anything else is queued or written. */
    cql_request *building;
    size_t wpos;
    uint32_t inflight;
    size_t req_bytes;    /* bodies of the unanswered requests */
    size_t acct;         /* this connection's share of srv->bytes_in_flight */
    ev_timer deadline;   /* startup, idle and partial-frame timeouts */
    ev_tstamp opened, last_active;
    ev_tstamp frame_started; /* first byte of the unfinished frame; 0 = none */
    uint8_t ip[16];      /* peer address (per-IP limit) */
    uint8_t iplen;
    bool throw_on_overload; /* STARTUP THROW_ON_OVERLOAD=1 */
    bool version_fixed;  /* the first frame fixed s.version */
    bool fatal;          /* a fatal error was queued: flush, then close */
    bool draining;       /* write side shut down; discarding input until EOF */
    bool dirty;          /* queued output waits for the flush before the loop sleeps */
    bool in_input;       /* on_readable is parsing: it updates reading once, at its end */
    cql_conn *dirty_next;
    cql_conn *prev, *next;
};

struct cql_server {
    struct ev_loop *loop;
    cql_executor *ex;
    sib_log *log;
    int fd;
    ev_io accept_w;
    uint16_t port;
    uint32_t max_frame, max_inflight, max_conns, max_conns_per_ip;
    size_t nconns;
    uint64_t (*conn_budget)(void *ctx);
    void *conn_budget_ctx;
    double startup_timeout, idle_timeout, frame_timeout;
    /* Bytes in flight (see cql_server_opts) and the backpressure flag. */
    size_t bytes_in_flight, max_bytes;
    bool overloaded;
    /* Connections per peer address, only kept with a per-IP limit. */
    struct ip_count *ips;
    size_t nips, ips_cap;
    /* The listener pauses after EMFILE/ENFILE instead of spinning. */
    ev_timer accept_retry;
    sib_ratelimit refuse_rl, accept_rl;
    cql_server_stats stats;
    uint64_t next_session_id;
    cql_conn *conns;
    /* Connections with queued replies, flushed once per loop iteration by
     * flush_w (an ev_prepare), so the replies to a burst of pipelined
     * requests go out in one sendmsg instead of one each. */
    ev_prepare flush_w;
    /* Active while the dirty list is not empty: an active idle watcher makes
     * libev poll without blocking, so replies queued by callbacks that run
     * after this iteration's prepare phase (fed read events, timers) are
     * flushed by the next prepare instead of waiting for unrelated I/O. */
    ev_idle nowait_w;
    cql_conn *dirty;
    /* Finished requests kept for reuse with their arena's first chunk: a
     * request then costs no malloc/free of its own (they were a tenth of
     * the CPU of a small write). */
    struct request_block *req_pool;
    size_t req_pooled;
};
/* Frees the server's pooled requests (response.c). */
void cql_request_pool_free(cql_server *srv);

/* Queues a copy of a complete frame; it is written when the loop iteration
 * ends. Dropped when the connection is closed or failing. p == NULL means
 * "this connection cannot go on" (e.g. out of memory for a reply): it is
 * closed. */
void cql_conn_send(cql_conn *c, const uint8_t *p, size_t len);
/* cql_conn_send for a request's reply: whether c reads on is decided once,
 * by the cql_conn_request_done that follows. */
void cql_conn_queue(cql_conn *c, const uint8_t *p, size_t len);
/* A reply was completed in place at the end of c's wbuf: it is written
 * when the loop iteration ends. */
void cql_conn_queued(cql_conn *c);
/* Moves the partial reply c is building in its wbuf (c->building) into
 * that request's own buffer (response.c). */
void cql_conn_move_partial(cql_conn *c);
/* A request of c was answered: releases its in-flight slot and reference. */
void cql_conn_request_done(cql_conn *c);
static inline bool cql_conn_open(const cql_conn *c) { return c->srv != NULL; }
/* Before anything else is queued or written, and when c closes. */
static inline void cql_conn_unbuild(cql_conn *c)
{
    if (c->building) cql_conn_move_partial(c);
}

/* Finishes the frame in req->priv->ob (compressing when the session
 * negotiated it), hands it to the connection and frees req. Returns 0 or
 * the error that made it send a Server error instead. */
int cql_request_complete(cql_request *req);
/* Frees a request that was never handed out or whose reply was sent. */
void cql_request_free(cql_request *req);
/* Allocates a request for conn with its arena and a copy of body
 * (*copy_out, beside the request or in its arena). Takes a reference and
 * an in-flight slot of c. NULL when out of memory. */
cql_request *cql_request_new(cql_conn *c, const cql_header *h, const uint8_t *body, size_t n, const uint8_t **copy_out);

/* Encodes a whole response frame into a new malloc'd buffer. */
int cql_encode_frame(int version, bool compress, int16_t stream, uint8_t opcode, const uint8_t *body, size_t n,
                     uint8_t **out, size_t *out_len, sib_err *err);

/* SUPPORTED body. */
void cql_encode_supported(sib_buf *b);

#endif
