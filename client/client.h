/* client.h: a small CQL native protocol v4 client (the C client the shell,
 * the stress tool and anyone else in the project use).
 *
 * Two ways to use one connection, which may be mixed:
 *  - synchronous: cli_client_query / _prepare / _execute / _batch send one
 *    request and wait (up to the connect options' timeout) for its answer,
 *    decoded into a cli_result (rows with column specs + raw [bytes] cells,
 *    void, set_keyspace, prepared, schema_change, or a server error with its
 *    extras). Used by the shell.
 *  - asynchronous / pipelined: sib_client_send_* queue a request with its
 *    own stream id and return at once; cli_client_io (or
 *    cli_client_poll_many over many connections) writes queued bytes, reads
 *    what arrived and calls each request's callback with the raw response
 *    frame. Used by the stress tool for thousands of requests in flight.
 *
 * Framing, lz4 and the notation types come from cql/cql.h: this module only
 * assembles request bodies and decodes response bodies with that codec.
 * Values stay in their serialized form; formatting them for display is the
 * caller's business (schema.h: sch_value_format).
 *
 * Threading: a cli_client is used by one thread at a time. Callbacks run on
 * the thread that calls cli_client_io / cli_client_poll_many / a synchronous
 * call, and may queue new requests (sib_client_send_*) on any client, but
 * must not make a synchronous call or close the client they run for.
 *
 * Ownership: everything a cli_result points at lives in its arena and is
 * freed by cli_result_free; its sch_type pointers live in the client's type
 * registry (cli_client_types) and stay valid until cli_client_close.
 */
#ifndef CLI_CLIENT_H
#define CLI_CLIENT_H

#include "common.h"
#include "schema.h"
#include "cql.h"

typedef struct cli_client cli_client;

/* ---- connecting --------------------------------------------------------- */

typedef struct cli_client_opts {
    const char *host;        /* IPv4/IPv6 literal or name; NULL = "127.0.0.1" */
    uint16_t port;           /* 0 = 9042 */
    int timeout_ms;          /* connect and synchronous-request timeout; 0 = 10000 */
    bool lz4;                /* ask for lz4 body compression if SUPPORTED lists it */
    const char *username;    /* PasswordAuthenticator credentials (SASL PLAIN) */
    const char *password;    /*   used only when the server sends AUTHENTICATE */
    const char *keyspace;    /* NULL, or a keyspace to USE after the handshake */
    uint32_t max_streams;    /* requests in flight; 0 = 1024, at most 32768 */
    uint32_t max_frame_size; /* largest response body accepted; 0 = 256 MiB */
} cli_client_opts;

/* Connects (blocking, with the timeout), sends OPTIONS then STARTUP (with
 * COMPRESSION=lz4 when asked and supported), answers AUTHENTICATE, and USEs
 * o->keyspace. On success *out is a ready, non-blocking connection. Errors:
 * SIB_EIO (network / timeout), SIB_EPROTO (unexpected answer), or the
 * server's error mapped to a SIB_E* code with its message in err->msg. */
int cli_client_connect(cli_client **out, const cli_client_opts *o, sib_err *err);
/* A connected, non-blocking TCP socket (TCP_NODELAY) to host:port, trying
 * each address host resolves to: the fd, or SIB_EIO with the reason. What
 * cli_client_connect opens before its handshake; the stress tool's Redis
 * mode uses it too. */
int cli_client_tcp_connect(const char *host, uint16_t port, int timeout_ms, sib_err *err);
/* Closes the socket and frees the client. Callbacks of requests still in
 * flight are NOT called. NULL is a no-op. */
void cli_client_close(cli_client *cl);

/* The registry that owns the composite types of decoded results. */
sch_types *cli_client_types(cli_client *cl);
/* True when lz4 was negotiated. */
bool cli_client_lz4(const cli_client *cl);
/* The keyspace of the last successful USE ("" = none). */
const char *cli_client_keyspace(const cli_client *cl);
/* "host:port" as given to connect. */
const char *cli_client_peer(const cli_client *cl);

/* ---- results ------------------------------------------------------------ */

/* cli_result.kind: the RESULT kinds of cql.h, plus ERROR. */
enum {
    CLI_RESULT_VOID = CQL_RESULT_VOID,
    CLI_RESULT_ROWS = CQL_RESULT_ROWS,
    CLI_RESULT_SET_KEYSPACE = CQL_RESULT_SET_KEYSPACE,
    CLI_RESULT_PREPARED = CQL_RESULT_PREPARED,
    CLI_RESULT_SCHEMA_CHANGE = CQL_RESULT_SCHEMA_CHANGE,
    CLI_RESULT_ERROR = 0x100, /* an ERROR frame: see cli_result.error */
    CLI_RESULT_OTHER = 0x101, /* READY, SUPPORTED, AUTH_* ...: nothing decoded */
};

/* One column of result or bind metadata. */
typedef struct cli_col_spec {
    const char *ks, *table, *name;
    /* The decoded <type>. UDTs, tuples and custom types other than the
     * ones schema.h knows (e.g. DurationType in v4) have no sch_type form:
     * they come back as blob, with wire_code/custom_class telling the truth. */
    const sch_type *type;
    uint16_t wire_code;       /* the option id on the wire (0x0030 for a UDT, ...) */
    const char *custom_class; /* the class name of a custom (0x0000) type, else NULL */
} cli_col_spec;

typedef struct cli_result_meta {
    uint32_t flags;     /* CQL_ROWS_* */
    uint32_t ncols;
    cli_col_spec *cols; /* NULL when the server sent NO_METADATA */
    cql_value paging_state; /* len CQL_VALUE_NULL when there are no more pages */
} cli_result_meta;

typedef struct cli_result_error {
    int32_t code;    /* cql_errcode */
    const char *msg;
    /* Extras of the code (cql.h), e.g. consistency/required/alive for
     * Unavailable, received/blockfor/write_type for Write_timeout, ks/table
     * for Already_exists, id/id_len for Unprepared. */
    cql_error_extra x;
} cli_result_error;

typedef struct cli_result {
    int kind;            /* SIB_RESULT_* */
    uint8_t opcode;      /* the response opcode */
    uint8_t frame_flags; /* CQL_FLAG_* of the response */
    uint8_t tracing_id[16]; /* valid when frame_flags has CQL_FLAG_TRACING */
    size_t nwarnings;    /* server warnings (v4 WARNING flag) */
    const char **warnings;

    union {
        cli_result_error error;
        struct {
            cli_result_meta meta;
            uint32_t nrows;
            cql_value *cells; /* nrows * meta.ncols cells in row order; len < 0 = null */
        } rows;
        const char *keyspace; /* SET_KEYSPACE */
        struct {
            cql_change change;
            cql_target target;
            const char *ks;
            const char *name;     /* NULL for a keyspace target */
            size_t nargs;         /* FUNCTION/AGGREGATE argument types */
            const char **arg_types;
        } schema_change;
        struct {
            cql_value id;        /* [short bytes] statement id */
            cli_result_meta bind; /* bind markers (flags, ncols, cols) */
            uint32_t npk;
            uint16_t *pk_index;  /* npk bind positions of the partition key */
            cli_result_meta result; /* columns an EXECUTE returns (ncols may be 0) */
        } prepared;
    } u;

    sib_arena *arena; /* owns the body copy and every decoded array/string */
} cli_result;

/* Cell (row, col) of a ROWS result. */
static inline cql_value cli_result_cell(const cli_result *r, uint32_t row, uint32_t col)
{
    return r->u.rows.cells[(size_t)row * r->u.rows.meta.ncols + col];
}

/* Frees what r owns and zeroes it. Safe on a zeroed result and twice. */
void cli_result_free(cli_result *r);

/* Decodes a response body (already decompressed) with the frame's opcode
 * and flags for protocol `version` into *out (which the caller frees with
 * cli_result_free, also on failure). The body is copied; types are interned
 * in ts. Returns 0 (also for an ERROR frame: out->kind == CLI_RESULT_ERROR),
 * or SIB_EPROTO / SIB_ENOMEM when the body is malformed. */
int cli_result_decode(sch_types *ts, int version, uint8_t opcode, uint8_t frame_flags, const uint8_t *body,
                      size_t len, cli_result *out, sib_err *err);

/* Fills err from an ERROR result: code mapped back to SIB_E* (Syntax ->
 * SIB_ESYNTAX, Invalid -> SIB_EINVAL, ...), msg copied, extras into
 * err->ex / ks / table / ex_id like common.h describes. Returns err->code. */
int cli_result_to_err(const cli_result *r, sib_err *err);

/* cqlsh's exception class name for an error code: "SyntaxException",
 * "InvalidRequest", "Unavailable", "WriteTimeout", "AlreadyExists", ... */
const char *cli_client_error_class(int32_t code);
/* Parses a consistency level name ("ONE", "local_quorum", ...); -1 if unknown. */
int cli_client_parse_cl(const char *name);

/* ---- synchronous requests ------------------------------------------------ */

/* Query / execute parameters. Zero-initialised means: CL ONE, no values,
 * no paging (whole result), no paging state, server timestamp. */
typedef struct cli_query_opts {
    int consistency;              /* cql_consistency; 0 (ANY) is taken as ONE unless any_cl is set */
    bool any_cl;                  /* really send CL ANY */
    int32_t page_size;            /* <= 0: no paging */
    const uint8_t *paging_state;  /* NULL: first page */
    int32_t paging_state_len;
    const cql_value *values;      /* bound values ([value]: len -1 null, -2 unset) */
    uint16_t nvalues;
    const char *const *names;     /* value names (NAMES_FOR_VALUES), QUERY only; NULL = positional */
    int serial_consistency;       /* 0 = none sent (server default SERIAL) */
    bool has_timestamp;
    int64_t timestamp;            /* µs, when has_timestamp */
    bool skip_metadata;           /* EXECUTE: rows come without column specs */
    bool tracing;                 /* QUERY: ask the server to trace it (the
                                   * result's tracing_id names the session) */
} cli_query_opts;

/* All synchronous calls return 0 once the response arrived (out then holds
 * it, possibly a server error: out->kind == CLI_RESULT_ERROR), or a negative
 * SIB_E* with err set when no answer could be had (SIB_EIO: connection lost
 * or timeout; the connection is then unusable). out is always initialised;
 * free it with cli_result_free. */

/* QUERY with only consistency and paging: what the shell sends. page_size
 * <= 0 asks for everything; paging_state NULL asks for the first page. */
int cli_client_query(cli_client *cl, const char *cql, int consistency, int32_t page_size,
                     const cql_value *paging_state, cli_result *out, sib_err *err);
/* QUERY with every parameter (qo NULL = defaults). */
int cli_client_query_opts(cli_client *cl, const char *cql, const cli_query_opts *qo, cli_result *out,
                          sib_err *err);
/* PREPARE: out->kind == CLI_RESULT_PREPARED carries the id and metadata. */
int cli_client_prepare(cli_client *cl, const char *cql, cli_result *out, sib_err *err);
/* EXECUTE a prepared id (e.g. prepared.u.prepared.id.p / .len). */
int cli_client_execute(cli_client *cl, const uint8_t *id, uint16_t id_len, const cli_query_opts *qo,
                       cli_result *out, sib_err *err);

/* One statement of a BATCH: query text, or a prepared id when id != NULL. */
typedef struct cli_batch_stmt {
    const char *query;
    const uint8_t *id;
    uint16_t id_len;
    const cql_value *values;
    uint16_t nvalues;
} cli_batch_stmt;

/* BATCH (type cql_batch_type) of n statements at consistency cl. */
int cli_client_batch(cli_client *cl, cql_batch_type type, const cli_batch_stmt *stmts, uint16_t n, int cl_level,
                     cli_result *out, sib_err *err);

/* ---- asynchronous / pipelined requests ----------------------------------- */

/* A response frame as it arrived, body decompressed. Views valid only during
 * the callback; decode it with cli_result_decode if more than the opcode is
 * needed. */
typedef struct cli_frame {
    uint8_t opcode;
    uint8_t flags;
    int16_t stream;
    const uint8_t *body;
    size_t len;
} cli_frame;

/* Called once per request with its response, or with f == NULL when the
 * connection failed before the response came (err says why). */
typedef void (*cli_client_cb)(cli_client *cl, void *ud, const cli_frame *f, const sib_err *err);

/* Queue a request (nothing is written until cli_client_flush / _io).
 * Return 0, SIB_EAGAIN when every stream id is in flight (answer some
 * first), or SIB_EIO when the connection is broken. The request's bytes are
 * copied: values etc. may be reused once the call returns. */
int cli_client_send_query(cli_client *cl, const char *cql, const cli_query_opts *qo, cli_client_cb cb, void *ud,
                          sib_err *err);
int cli_client_send_execute(cli_client *cl, const uint8_t *id, uint16_t id_len, const cli_query_opts *qo,
                            cli_client_cb cb, void *ud, sib_err *err);
int cli_client_send_batch(cli_client *cl, cql_batch_type type, const cli_batch_stmt *stmts, uint16_t n,
                          int cl_level, cli_client_cb cb, void *ud, sib_err *err);
/* PREPARE without waiting: how a pipelined caller re-prepares a statement
 * the server answered Unprepared for (decode the answer with
 * cli_result_decode to get the id). */
int cli_client_send_prepare(cli_client *cl, const char *cql, cli_client_cb cb, void *ud, sib_err *err);

/* Requests sent and not yet answered; the stream-id capacity. */
uint32_t cli_client_inflight(const cli_client *cl);
uint32_t cli_client_capacity(const cli_client *cl);

/* The socket, and the poll(2) events the client wants now (POLLIN, plus
 * POLLOUT while queued bytes wait), for callers with their own loop. */
int cli_client_fd(const cli_client *cl);
short cli_client_events(const cli_client *cl);
/* Writes what it can without blocking. 0, or SIB_EIO (connection broken:
 * every pending callback has been called with f == NULL). */
int cli_client_flush(cli_client *cl, sib_err *err);
/* Handles poll(2) revents for the socket: writes queued bytes, reads and
 * dispatches every complete response. Returns the number of responses
 * dispatched, or SIB_EIO / SIB_EPROTO (connection broken, pending callbacks
 * failed as above). */
int cli_client_io(cli_client *cl, short revents, sib_err *err);

/* poll(2) over n clients for up to timeout_ms (-1 = forever, 0 = just look)
 * and cli_client_io on each ready one. Returns the number of responses
 * dispatched, or a negative code from the first client that broke (its
 * index in *broken when non-NULL; the others are still served). */
int cli_client_poll_many(cli_client *const *cls, size_t n, int timeout_ms, size_t *broken, sib_err *err);

#endif
