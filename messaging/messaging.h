/* messaging.h: internode TCP between Sibyl nodes (storage_port, bound to
 * listen_address), driven by the node's libev loop.
 *
 * A msg_service listens for peers and keeps one outbound connection per
 * peer, opened on first use and re-opened with exponential back-off when
 * it breaks. Messages are frames (format below) with a verb, a correlation
 * id and a CRC32C. The first frame on every connection is a HELLO naming
 * the sender's cluster and address: a peer of another cluster_name is
 * refused (the connection is closed and logged), so two clusters never
 * exchange a single message.
 *
 *   frame = magic "SIBM" (4) | version (1) | verb (1) | flags (1) | 0 (1)
 *         | id (8, be) | payload length (4, be) | payload | crc32c (4, be)
 *   crc32c covers everything from the magic to the end of the payload;
 *   flags bit 0 = response (id is the id of the request it answers).
 *
 * Requests (msg_request) get their answer through a callback, called once:
 * with the response, or with SIB_ETIMEDOUT when none came in time. Replies
 * travel back on the connection the request came in on.
 *
 * Backpressure: every connection's unsent bytes, the number of requests
 * awaiting an answer and the number of accepted connections (1024) are
 * bounded. Past either bound a send fails at once
 * with SIB_EOVERLOADED, so a slow or frozen (SIGSTOPped) peer cannot make
 * the node queue without limit. When a connection breaks, its unsent bytes
 * are dropped (a partly written frame cannot be resumed on a new socket);
 * requests among them then time out, which is what a caller already
 * handles for a peer that died.
 *
 * Frames queued during one loop iteration are written together at its end
 * (an ev_prepare watcher): one write() per connection per iteration.
 *
 * Loop thread only; no globals. Payload bytes handed to a callback are
 * valid only during the call.
 */
#ifndef SIB_MESSAGING_H
#define SIB_MESSAGING_H

#include "common.h"

struct ev_loop;

#define MSG_VERSION 1
#define MSG_HEADER_LEN 20
#define MSG_TRAILER_LEN 4
#define MSG_MAX_VERBS 64
#define MSG_VERB_HELLO 0 /* reserved: the connection handshake */
#define MSG_FLAG_RESPONSE 0x1

/* ---- frames (pure functions, exposed for tests and fuzzing) ---- */

typedef struct msg_header {
    uint8_t version, verb, flags;
    uint64_t id;
    uint32_t len; /* payload bytes */
} msg_header;

/* Appends one frame (header, payload, crc) to out. */
void msg_frame_encode(sib_buf *out, uint8_t verb, uint8_t flags, uint64_t id, const void *payload, uint32_t len);
/* Decodes the frame at the start of p[0..n). Returns 0 when more bytes are
 * needed, the frame's total length when one is complete (h and *payload
 * filled; payload points into p), or a negative error: SIB_EPROTO for a bad
 * magic or another version, SIB_ECORRUPT for a checksum mismatch,
 * SIB_ETOOBIG for a payload above max_len. */
long msg_frame_decode(const uint8_t *p, size_t n, uint32_t max_len, msg_header *h, const uint8_t **payload,
                      sib_err *err);

/* ---- the service ---- */

typedef struct msg_service msg_service;

typedef struct msg_opts {
    struct ev_loop *loop;
    sib_log *log;
    const char *cluster_name;
    const char *bind_addr;      /* listen_address (IPv4 literal) */
    uint16_t port;              /* storage_port; 0 = ephemeral (tests) */
    size_t max_queued_bytes;    /* unsent bytes per connection; 0 = 4 MiB */
    size_t max_pending;         /* requests awaiting an answer; 0 = 4096 */
    uint32_t max_frame;         /* payload bytes; 0 = 16 MiB */
    int backoff_min_ms;         /* first reconnect delay; 0 = 100 ms */
    int backoff_max_ms;         /* 0 = 4000 ms */
} msg_opts;

/* A received message. `from` is the sender's listen address and storage
 * port as its HELLO named them. Valid only during the handler call. */
typedef struct msg_in {
    uint8_t verb;
    uint64_t id;
    uint64_t conn_id; /* where msg_reply sends the answer */
    char from[64];
    uint16_t from_port;
    const uint8_t *payload;
    uint32_t len;
} msg_in;

typedef void (*msg_handler_fn)(void *ctx, msg_service *ms, const msg_in *m);
/* rc 0: payload is the response. rc SIB_ETIMEDOUT: no answer in time
 * (payload NULL). Called exactly once per accepted request, never from
 * inside msg_request itself. */
typedef void (*msg_response_fn)(void *ctx, int rc, const msg_in *resp);

/* Binds, listens and starts accepting on o->loop. NULL with err set when
 * the port cannot be bound. */
msg_service *msg_service_create(const msg_opts *o, sib_err *err);
/* Closes every connection; pending requests are dropped without their
 * callbacks (their owners are going away too). */
void msg_service_destroy(msg_service *ms);
uint16_t msg_service_port(const msg_service *ms);

/* Routes incoming requests/one-way messages of `verb` (1..63) to fn. */
void msg_set_handler(msg_service *ms, uint8_t verb, msg_handler_fn fn, void *ctx);

/* One-way message to host:port (no answer expected). 0 when queued;
 * SIB_EOVERLOADED when that peer's queue is full; SIB_EINVAL for a bad
 * address. The payload is copied. */
int msg_send(msg_service *ms, const char *host, uint16_t port, uint8_t verb, const void *payload, uint32_t len,
             sib_err *err);
/* A request: cb gets the answer or SIB_ETIMEDOUT after timeout_ms. Fails
 * at once (cb not called) with SIB_EOVERLOADED past a bound. */
int msg_request(msg_service *ms, const char *host, uint16_t port, uint8_t verb, const void *payload, uint32_t len,
                int timeout_ms, msg_response_fn cb, void *ctx, sib_err *err);
/* Answers request `req` on the connection it came from. SIB_ENOTFOUND if
 * that connection has closed meanwhile (the answer is dropped). */
int msg_reply(msg_service *ms, const msg_in *req, const void *payload, uint32_t len, sib_err *err);

/* Bytes queued but not yet written: to host:port, or over every
 * connection when host is NULL. */
size_t msg_queued_bytes(const msg_service *ms, const char *host, uint16_t port);
/* Requests awaiting an answer. */
size_t msg_pending_requests(const msg_service *ms);
/* Whether an outbound connection to host:port is established. */
bool msg_connected(const msg_service *ms, const char *host, uint16_t port);

#endif
