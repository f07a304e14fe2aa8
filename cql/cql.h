/* cql.h: the CQL native protocol (v4, and v3) layer of a Sibyl node.
 *
 * Three parts, usable separately:
 *  1. Codec: frame header, the spec's notation types ([string], [bytes],
 *     [value], [string map] ...), lz4 body compression, <type> encoding. Pure
 *     functions over sib_buf (writers) and sib_rd (readers); the shell, the
 *     stress tool and client/ reuse them.
 *  2. Requests and replies: decoded QUERY/PREPARE/EXECUTE/BATCH bodies and
 *     the reply functions the statement executor answers with.
 *  3. Server: a libev TCP listener with connections, the handshake (OPTIONS,
 *     STARTUP, REGISTER), version negotiation and events.
 *
 * The executor contract (see cql_executor below):
 *  - the server calls ex->request(ex, req) for QUERY/PREPARE/EXECUTE/BATCH;
 *  - the executor answers EXACTLY ONCE with one cql_reply_*() call (or a
 *    cql_reply_rows_begin() .. cql_reply_rows_end() sequence), now or later,
 *    always on the loop thread. The reply consumes req: it is freed inside the
 *    reply call and must not be touched afterwards;
 *  - if the client disconnected meanwhile, the reply is dropped silently
 *    (cql_request_orphaned() tells the executor it may skip work). The
 *    session stays valid until the request is answered.
 *
 * Wire facts: docs/protocol.md and apache/cassandra
 * doc/native_protocol_v4.spec. All integers on the wire are big-endian.
 */
#ifndef SIB_CQL_H
#define SIB_CQL_H

#include "common.h"
#include "schema.h"

struct ev_loop;

/* ====================================================================== */
/* 1. Codec                                                               */
/* ====================================================================== */

enum {
    CQL_HEADER_LEN = 9,                       /* v3+ header */
    CQL_MAX_FRAME_DEFAULT = 16 * 1024 * 1024, /* body bytes, like C* 4.0 */
    CQL_VERSION_MIN = 3,
    CQL_VERSION_MAX = 4,
    CQL_VERSION_RESPONSE = 0x80, /* direction bit of the version byte */
    CQL_NAME_MAX = 255,          /* longest keyspace name a session keeps */
};

typedef enum {
    CQL_OP_ERROR = 0x00,
    CQL_OP_STARTUP = 0x01,
    CQL_OP_READY = 0x02,
    CQL_OP_AUTHENTICATE = 0x03,
    CQL_OP_OPTIONS = 0x05,
    CQL_OP_SUPPORTED = 0x06,
    CQL_OP_QUERY = 0x07,
    CQL_OP_RESULT = 0x08,
    CQL_OP_PREPARE = 0x09,
    CQL_OP_EXECUTE = 0x0A,
    CQL_OP_REGISTER = 0x0B,
    CQL_OP_EVENT = 0x0C,
    CQL_OP_BATCH = 0x0D,
    CQL_OP_AUTH_CHALLENGE = 0x0E,
    CQL_OP_AUTH_RESPONSE = 0x0F,
    CQL_OP_AUTH_SUCCESS = 0x10,
} cql_opcode;

/* Frame header flags. */
enum {
    CQL_FLAG_COMPRESSION = 0x01,
    CQL_FLAG_TRACING = 0x02,
    CQL_FLAG_CUSTOM_PAYLOAD = 0x04,
    CQL_FLAG_WARNING = 0x08,
    CQL_FLAG_USE_BETA = 0x10,
};

typedef enum {
    CQL_ANY = 0x0000,
    CQL_ONE = 0x0001,
    CQL_TWO = 0x0002,
    CQL_THREE = 0x0003,
    CQL_QUORUM = 0x0004,
    CQL_ALL = 0x0005,
    CQL_LOCAL_QUORUM = 0x0006,
    CQL_EACH_QUORUM = 0x0007,
    CQL_SERIAL = 0x0008,
    CQL_LOCAL_SERIAL = 0x0009,
    CQL_LOCAL_ONE = 0x000A,
} cql_consistency;

/* ERROR codes (spec section 9). */
typedef enum {
    CQL_ERR_SERVER = 0x0000,
    CQL_ERR_PROTOCOL = 0x000A,
    CQL_ERR_BAD_CREDENTIALS = 0x0100,
    CQL_ERR_UNAVAILABLE = 0x1000,
    CQL_ERR_OVERLOADED = 0x1001,
    CQL_ERR_BOOTSTRAPPING = 0x1002,
    CQL_ERR_TRUNCATE = 0x1003,
    CQL_ERR_WRITE_TIMEOUT = 0x1100,
    CQL_ERR_READ_TIMEOUT = 0x1200,
    CQL_ERR_READ_FAILURE = 0x1300,
    CQL_ERR_FUNCTION_FAILURE = 0x1400,
    CQL_ERR_WRITE_FAILURE = 0x1500,
    CQL_ERR_SYNTAX = 0x2000,
    CQL_ERR_UNAUTHORIZED = 0x2100,
    CQL_ERR_INVALID = 0x2200,
    CQL_ERR_CONFIG = 0x2300,
    CQL_ERR_ALREADY_EXISTS = 0x2400,
    CQL_ERR_UNPREPARED = 0x2500,
} cql_errcode;

/* RESULT kinds. */
enum {
    CQL_RESULT_VOID = 1,
    CQL_RESULT_ROWS = 2,
    CQL_RESULT_SET_KEYSPACE = 3,
    CQL_RESULT_PREPARED = 4,
    CQL_RESULT_SCHEMA_CHANGE = 5,
};

/* <rows metadata> flags. */
enum {
    CQL_ROWS_GLOBAL_TABLES_SPEC = 0x0001,
    CQL_ROWS_HAS_MORE_PAGES = 0x0002,
    CQL_ROWS_NO_METADATA = 0x0004,
};

/* <query_parameters> flags (QUERY/EXECUTE); BATCH uses 0x10/0x20/0x40. */
enum {
    CQL_QF_VALUES = 0x01,
    CQL_QF_SKIP_METADATA = 0x02,
    CQL_QF_PAGE_SIZE = 0x04,
    CQL_QF_PAGING_STATE = 0x08,
    CQL_QF_SERIAL_CONSISTENCY = 0x10,
    CQL_QF_DEFAULT_TIMESTAMP = 0x20,
    CQL_QF_NAMES_FOR_VALUES = 0x40,
};

typedef enum { CQL_BATCHTYPE_LOGGED = 0, CQL_BATCHTYPE_UNLOGGED = 1, CQL_BATCHTYPE_COUNTER = 2 } cql_batch_type;

/* SCHEMA_CHANGE result/event vocabulary; the names on the wire come from
 * constant tables, so a caller cannot send a string a driver does not know. */
typedef enum { CQL_CHANGE_CREATED, CQL_CHANGE_UPDATED, CQL_CHANGE_DROPPED } cql_change;
typedef enum {
    CQL_TARGET_KEYSPACE,
    CQL_TARGET_TABLE,
    CQL_TARGET_TYPE,
    CQL_TARGET_FUNCTION,
    CQL_TARGET_AGGREGATE,
} cql_target;

/* writeType of Write_timeout / Write_failure: py decodes it with a dict
 * lookup, so only these names may ever be sent. */
typedef enum {
    CQL_WRITE_SIMPLE,
    CQL_WRITE_BATCH,
    CQL_WRITE_UNLOGGED_BATCH,
    CQL_WRITE_COUNTER,
    CQL_WRITE_BATCH_LOG,
    CQL_WRITE_CAS,
    CQL_WRITE_VIEW,
    CQL_WRITE_CDC,
} cql_write_type;

/* Registered-event bits (REGISTER). */
enum {
    CQL_EVENT_TOPOLOGY_CHANGE = 0x1,
    CQL_EVENT_STATUS_CHANGE = 0x2,
    CQL_EVENT_SCHEMA_CHANGE = 0x4,
};

typedef enum { CQL_TOPO_NEW_NODE, CQL_TOPO_REMOVED_NODE, CQL_TOPO_MOVED_NODE } cql_topology_change;

/* Name tables; return "?" for out-of-range values. */
const char *cql_opcode_name(int op);
const char *cql_cl_name(int cl);
const char *cql_change_name(cql_change c);
const char *cql_target_name(cql_target t);
const char *cql_write_type_name(cql_write_type w);

/* ---- frame header ---- */

typedef struct cql_header {
    uint8_t version; /* the raw byte, direction bit included */
    uint8_t flags;
    int16_t stream;
    uint8_t opcode;
    uint32_t length; /* body bytes */
} cql_header;

void cql_header_encode(uint8_t out[CQL_HEADER_LEN], const cql_header *h);
/* Decodes the 9-byte (v3+) header at p. Returns 0, or SIB_EAGAIN when
 * n < CQL_HEADER_LEN. No semantic checks: the caller judges version/opcode.
 * Inline: the server reads one a request. */
static inline int cql_header_decode(const uint8_t *p, size_t n, cql_header *h)
{
    if (n < CQL_HEADER_LEN) return SIB_EAGAIN;
    h->version = p[0];
    h->flags = p[1];
    h->stream = (int16_t)get_be16(p + 2);
    h->opcode = p[4];
    h->length = get_be32(p + 5);
    return 0;
}

/* Builds a frame in b: begin writes a header with length 0 and returns its
 * offset; end patches the body length. end with compress=true replaces the
 * body by its lz4 form and sets the COMPRESSION flag (empty bodies are left
 * uncompressed: every driver reads the flag, not the session state). */
size_t cql_frame_begin_grow(sib_buf *b, uint8_t version, uint8_t flags, int16_t stream, uint8_t opcode);
int cql_frame_end_slow(sib_buf *b, size_t start, bool compress, sib_err *err);

/* Inline for every reply: the header written in place when it fits (a call
 * and a reserve cost about 60 instructions a point read), the length patched
 * in place when the frame is not compressed. */
static inline size_t cql_frame_begin(sib_buf *b, uint8_t version, uint8_t flags, int16_t stream, uint8_t opcode)
{
    if (b->oom || b->cap - b->len < CQL_HEADER_LEN) return cql_frame_begin_grow(b, version, flags, stream, opcode);
    size_t start = b->len;
    uint8_t *p = b->p + start;
    p[0] = version;
    p[1] = flags;
    put_be16(p + 2, (uint16_t)stream);
    p[4] = opcode;
    put_be32(p + 5, 0);
    b->len += CQL_HEADER_LEN;
    return start;
}

static inline int cql_frame_end(sib_buf *b, size_t start, bool compress, sib_err *err)
{
    size_t body = b->len - start - CQL_HEADER_LEN;
    if (compress || b->oom || b->len < start + CQL_HEADER_LEN || body > UINT32_MAX)
        return cql_frame_end_slow(b, start, compress, err);
    put_be32(b->p + start + 5, (uint32_t)body);
    return 0;
}

/* ---- lz4 (raw block with a u32 BIG-endian uncompressed-length prefix) ---- */

/* Appends the compressed form of in[0..n) to out. */
int cql_lz4_compress(const uint8_t *in, size_t n, sib_buf *out, sib_err *err);
/* Appends the decompressed bytes to out; fails (SIB_EPROTO) on a corrupt
 * block, a length mismatch, or a prefix above max_out. */
int cql_lz4_decompress(const uint8_t *in, size_t n, size_t max_out, sib_buf *out, sib_err *err);

/* ---- notation: views and readers ---- */

/* A view into the decoded body; not NUL-terminated. */
typedef struct cql_str {
    const char *p;
    size_t len;
} cql_str;

enum { CQL_VALUE_NULL = -1, CQL_VALUE_UNSET = -2 };

/* A [bytes]/[value]/[short bytes] view: len >= 0 is data at p,
 * CQL_VALUE_NULL is null, CQL_VALUE_UNSET is "not set" (v4 [value] only). */
typedef struct cql_value {
    const uint8_t *p;
    int32_t len;
} cql_value;

bool cql_str_eq(cql_str s, const char *cstr);

/* Readers over untrusted input: each returns false (and sets r->bad) on
 * truncation or an invalid length, never reads past the end. The
 * fixed-size ones are inline: a request's decoding calls them a dozen times. */
static inline bool cql_get_byte(sib_rd *r, uint8_t *v) { return sib_rd_u8(r, v); }
static inline bool cql_get_short(sib_rd *r, uint16_t *v) { return sib_rd_be16(r, v); }
static inline bool cql_get_int(sib_rd *r, int32_t *v)
{
    uint32_t u;
    if (!sib_rd_be32(r, &u)) return false;
    *v = (int32_t)u;
    return true;
}
bool cql_get_long(sib_rd *r, int64_t *v);
bool cql_get_string(sib_rd *r, cql_str *s);
bool cql_get_long_string(sib_rd *r, cql_str *s);
bool cql_get_uuid(sib_rd *r, uint8_t out[16]);
/* [bytes] (is_value false: any negative length is null) or [value] (-1
 * null, -2 unset, anything lower is malformed): the two readers below. */
static inline bool cql_get_sized(sib_rd *r, cql_value *v, bool is_value)
{
    int32_t n;
    if (!cql_get_int(r, &n)) return false;
    if (n < 0) {
        if (is_value && n < CQL_VALUE_UNSET) {
            r->bad = true;
            return false;
        }
        v->p = NULL;
        v->len = is_value ? n : CQL_VALUE_NULL;
        return true;
    }
    if (!sib_rd_bytes(r, (size_t)n, &v->p)) return false;
    v->len = n;
    return true;
}
bool cql_get_bytes(sib_rd *r, cql_value *v); /* len < 0 -> null */
/* -1 null, -2 unset, < -2 bad (inline: an EXECUTE reads one per bound value) */
static inline bool cql_get_value(sib_rd *r, cql_value *v) { return cql_get_sized(r, v, true); }
/* never null (inline: every EXECUTE starts with one) */
static inline bool cql_get_short_bytes(sib_rd *r, cql_value *v)
{
    uint16_t n;
    if (!sib_rd_be16(r, &n) || !sib_rd_bytes(r, n, &v->p)) return false;
    v->len = n;
    return true;
}
/* [inet]: addr_len is 4 or 16. */
bool cql_get_inet(sib_rd *r, uint8_t addr[16], uint8_t *addr_len, int32_t *port);
/* [string list] into out[0..max); more than max entries is an error. */
bool cql_get_string_list(sib_rd *r, cql_str *out, size_t max, size_t *n);
/* [string map] into keys/vals[0..max). */
bool cql_get_string_map(sib_rd *r, cql_str *keys, cql_str *vals, size_t max, size_t *n);
/* Skips a [bytes map] (custom payloads) or a [string multimap]. */
bool cql_skip_bytes_map(sib_rd *r);
bool cql_skip_string_multimap(sib_rd *r);

/* ---- notation: writers (errors surface as b->oom) ---- */

void cql_put_byte(sib_buf *b, uint8_t v);
void cql_put_short(sib_buf *b, uint16_t v);
static inline void cql_put_int(sib_buf *b, int32_t v) { sib_buf_be32(b, (uint32_t)v); } /* a reply puts several */
void cql_put_long(sib_buf *b, int64_t v);
/* [string]: n is clamped to 65535 bytes (callers keep names shorter). */
void cql_put_string(sib_buf *b, const char *s, size_t n);
void cql_put_cstring(sib_buf *b, const char *s); /* NULL writes "" */
void cql_put_long_string(sib_buf *b, const char *s, size_t n);
void cql_put_uuid(sib_buf *b, const uint8_t u[16]);
/* [bytes]: len < 0 writes null (-1); so does p == NULL with len > 0. */
void cql_put_bytes(sib_buf *b, const void *p, int32_t len);
/* [value]: len may be CQL_VALUE_NULL or CQL_VALUE_UNSET. */
void cql_put_value(sib_buf *b, const void *p, int32_t len);
void cql_put_short_bytes(sib_buf *b, const void *p, uint16_t len);
void cql_put_inet(sib_buf *b, const uint8_t *addr, uint8_t addr_len, int32_t port);
void cql_put_string_list(sib_buf *b, const char *const *v, size_t n);
/* [string map] from n (key, value) pairs: kv[2i], kv[2i+1]. */
void cql_put_string_map(sib_buf *b, const char *const *kv, size_t n);

/* <type> option for protocol `version`. Native codes are written directly;
 * list/set recurse into sub[0], map into sub[0], sub[1]. Types without a
 * code in that version go out as custom 0x0000 + the Cassandra class name
 * (duration in v4; date/time/smallint/tinyint/duration in v3), as C* does.
 * UDT and tuple need field lists the seed sch_type does not carry: SIB_EINVAL. */
int cql_put_type(sib_buf *b, const sch_type *t, int version, sib_err *err);

/* ====================================================================== */
/* 2. Requests                                                            */
/* ====================================================================== */

/* <query_parameters> of QUERY/EXECUTE. All views point into the request
 * body or arena and live as long as the request. */
typedef struct cql_params {
    uint16_t consistency;
    uint8_t flags;          /* the raw CQL_QF_* byte */
    uint16_t nvalues;
    const cql_value *values; /* nvalues entries (NULL when none) */
    const cql_str *names;    /* nvalues entries when CQL_QF_NAMES_FOR_VALUES, else NULL */
    bool skip_metadata;
    int32_t page_size;      /* -1 when absent (return everything); > 0 otherwise */
    cql_value paging_state; /* len CQL_VALUE_NULL when absent */
    uint16_t serial_consistency; /* CQL_SERIAL when absent */
    int64_t timestamp;      /* µs; INT64_MIN when absent */
    /* values points here when there are few (no arena block): last, as
     * decoding clears what is before it */
    cql_value values_room[4];
} cql_params;

typedef struct cql_query_req {
    cql_str query;
    cql_params params;
} cql_query_req;

typedef struct cql_prepare_req {
    cql_str query;
} cql_prepare_req;

typedef struct cql_execute_req {
    cql_value id; /* [short bytes] */
    cql_params params;
} cql_execute_req;

typedef struct cql_batch_stmt {
    bool prepared;  /* kind 1: id is set; kind 0: query is set */
    cql_str query;
    cql_value id;
    uint16_t nvalues;
    const cql_value *values;
    const cql_str *names; /* only with flag 0x40 (the spec calls it broken; accepted anyway) */
} cql_batch_stmt;

typedef struct cql_batch_req {
    uint8_t type; /* cql_batch_type */
    uint16_t nstmts;
    const cql_batch_stmt *stmts;
    uint16_t consistency;
    uint8_t flags;
    uint16_t serial_consistency; /* CQL_SERIAL when absent */
    int64_t timestamp;           /* INT64_MIN when absent */
} cql_batch_req;

/* Body decoders: body is the (decompressed, custom-payload-stripped) body;
 * the arrays are allocated from `a`; the views point into body. Return 0, or
 * SIB_EPROTO / SIB_ENOMEM with err set. Trailing bytes are an error. */
int cql_decode_query(const uint8_t *body, size_t n, int version, sib_arena *a, cql_query_req *out, sib_err *err);
int cql_decode_prepare(const uint8_t *body, size_t n, int version, sib_arena *a, cql_prepare_req *out, sib_err *err);
int cql_decode_execute(const uint8_t *body, size_t n, int version, sib_arena *a, cql_execute_req *out, sib_err *err);
int cql_decode_batch(const uint8_t *body, size_t n, int version, sib_arena *a, cql_batch_req *out, sib_err *err);

/* ====================================================================== */
/* 2b. Response bodies (pure encoders; the reply functions use them)      */
/* ====================================================================== */

/* Extra fields of an ERROR; zero-initialise and fill what the code needs.
 * Codes that carry no extras ignore it. */
typedef struct cql_error_extra {
    uint16_t consistency;  /* Unavailable, timeouts, failures */
    int32_t required;      /* Unavailable */
    int32_t alive;         /* Unavailable */
    int32_t received;      /* timeouts, failures */
    int32_t blockfor;      /* timeouts, failures */
    int32_t numfailures;   /* Read_failure, Write_failure */
    bool data_present;     /* Read_timeout, Read_failure */
    cql_write_type write_type; /* Write_timeout, Write_failure */
    const char *ks;        /* Already_exists ("" for a keyspace), Function_failure */
    const char *table;     /* Already_exists */
    const char *function;  /* Function_failure */
    const char *const *arg_types; /* Function_failure */
    size_t nargs;
    const uint8_t *id;     /* Unprepared: the unknown statement id */
    uint16_t id_len;
} cql_error_extra;

/* The protocol code for a SIB_E* code:
 * ESYNTAX 0x2000; EINVAL, ETOOBIG, ENOTFOUND 0x2200; EEXIST 0x2400;
 * ECONFIG 0x2300; EUNAVAIL 0x1000; EUNPREPARED 0x2500; EPROTO 0x000A;
 * EREADFAIL 0x1300; EWRITEFAIL 0x1500; EAGAIN 0x1001 (Overloaded);
 * everything else 0x0000. Timeouts have no SIB_E code: pass
 * CQL_ERR_WRITE_TIMEOUT / CQL_ERR_READ_TIMEOUT to cql_reply_error directly. */
int32_t cql_errcode_from_sib(int sib_code);

/* ERROR body: [int] code [string] msg + the extras of `code`. For a v3
 * session, codes v3 lacks (0x1300/0x1400/0x1500) become Server error. */
void cql_encode_error(sib_buf *b, int version, int32_t code, const char *msg, const cql_error_extra *x);

/* Schema_change body without the kind (shared by RESULT and EVENT):
 * change, target, ks, then name unless KEYSPACE, then arg types for
 * FUNCTION/AGGREGATE. */
void cql_encode_schema_change(sib_buf *b, cql_change c, cql_target t, const char *ks, const char *name,
                              const char *const *arg_types, size_t nargs);

/* Column specs of a result (rows metadata) with one global table spec. */
typedef struct cql_rows_meta {
    const char *ks, *table;    /* the global table spec; NULL writes "" */
    uint32_t ncols;
    const char *const *names;  /* ncols names */
    const sch_type *const *types; /* ncols types */
    uint32_t flags;            /* CQL_ROWS_NO_METADATA to omit the specs */
    const uint8_t *paging_state; /* non-NULL: sets HAS_MORE_PAGES */
    int32_t paging_state_len;
} cql_rows_meta;

/* Bind-marker metadata of a Prepared result. */
typedef struct cql_prepared_meta {
    const char *ks, *table;
    uint32_t nbind;
    const char *const *names;      /* column name, "[limit]", or the :name */
    const sch_type *const *types;
    uint32_t npk;                  /* 0 when the partition key is not fully bound */
    const uint16_t *pk_index;      /* npk bind positions, in partition-key order */
} cql_prepared_meta;

/* <rows metadata> (also the result metadata of Prepared). */
int cql_encode_rows_meta(sib_buf *b, int version, const cql_rows_meta *m, sib_err *err);
/* Prepared body without the kind: id, <prepared metadata> (v4: with
 * pk_count/pk_index), <result metadata>; result NULL = no columns. */
int cql_encode_prepared(sib_buf *b, int version, const uint8_t *id, uint16_t id_len, const cql_prepared_meta *bind,
                        const cql_rows_meta *result, sib_err *err);

/* Rows writer: RESULT kind 2 into b. begin writes the kind, metadata and a
 * row-count placeholder; cell appends one [bytes] cell (len < 0 is null;
 * (NULL, 0) is an empty value, not null); finish checks that whole rows were written and
 * patches the count. cell_reserve returns room for a len-byte cell that the
 * caller fills in place (handy for encoding collections). */
typedef struct cql_rows {
    sib_buf *b;
    size_t count_off;
    uint32_t ncols;
    uint64_t ncells;
} cql_rows;

int cql_rows_begin(cql_rows *rw, sib_buf *b, int version, const cql_rows_meta *m, sib_err *err);
void cql_rows_cell(cql_rows *rw, const void *p, int32_t len);
uint8_t *cql_rows_cell_reserve(cql_rows *rw, int32_t len);
/* Appends ncells cells already in [bytes] form (an int length, -1 for null,
 * then that many bytes), len bytes in all: a row encoded elsewhere in one
 * copy instead of a call a cell. */
void cql_rows_cells_raw(cql_rows *rw, const void *p, size_t len, uint32_t ncells);
int cql_rows_finish(cql_rows *rw, sib_err *err);

/* ====================================================================== */
/* 3. Sessions, requests, executor, server                                */
/* ====================================================================== */

/* Per-connection state visible to the executor. Owned by the connection;
 * valid while any request of it is unanswered. Loop thread only. */
typedef struct cql_session {
    uint64_t id;              /* unique per server */
    int version;              /* 3 or 4, fixed by the first frame */
    bool lz4;                 /* STARTUP chose lz4 (responses after READY are compressed) */
    bool ready;               /* STARTUP answered */
    uint32_t events;          /* CQL_EVENT_* bits from REGISTER */
    char keyspace[CQL_NAME_MAX + 1]; /* current keyspace ("" = none); set by cql_reply_set_keyspace */
    char peer[64];            /* "addr:port" of the client, for logs */
    void *exec_data;          /* the executor's slot; the server never touches it */
} cql_session;

/* One QUERY/PREPARE/EXECUTE/BATCH in flight. Fields are read-only for the
 * executor except `arena`, which it may allocate from (freed with req). */
typedef struct cql_request cql_request;
struct cql_request {
    cql_session *session;
    uint8_t opcode;      /* CQL_OP_QUERY, _PREPARE, _EXECUTE or _BATCH */
    int16_t stream;
    int version;         /* == session->version */
    uint8_t frame_flags; /* the request's header flags (TRACING etc.) */
    sib_arena *arena;    /* request lifetime */
    /* Tracing. The executor sets these when it traces the request (the
     * client set CQL_FLAG_TRACING): every reply then carries the TRACING
     * flag with trace_id first in its body (spec 2.2), and trace_done(req)
     * runs once, when the reply is complete and before req is freed (also
     * for an orphaned request). Untraced requests leave them zero. */
    uint8_t trace_id[16];
    void (*trace_done)(cql_request *req);
    void *trace_data;    /* the executor's; the server never touches it */
    union {
        cql_query_req query;
        cql_prepare_req prepare;
        cql_execute_req execute;
        cql_batch_req batch;
    } u;
    struct cql_request_priv *priv; /* protocol layer only */
};

/* The executor: embed this as the first member of your executor struct (or
 * point at a static table) and pass it to cql_server_create. */
typedef struct cql_executor {
    /* QUERY/PREPARE/EXECUTE/BATCH. Must lead to exactly one reply. */
    void (*request)(struct cql_executor *ex, cql_request *req);
    /* Optional: the connection of s closed. Requests of s may still be
     * unanswered (they are orphaned); s stays valid until they are. */
    void (*session_closed)(struct cql_executor *ex, cql_session *s);
} cql_executor;

static inline void cql_exec_request(cql_executor *ex, cql_request *req) { ex->request(ex, req); }

/* True when the client is gone: any reply will be dropped. */
bool cql_request_orphaned(const cql_request *req);

/* Replies. Each consumes req (frees it) and returns 0, or a negative code
 * when the reply could not be built (e.g. ENOMEM, a type cql_put_type
 * rejects): in that case a Server error was sent instead. Dropped replies
 * (orphaned requests) return 0. */
int cql_reply_void(cql_request *req);
/* Also sets req->session->keyspace (truncated to CQL_NAME_MAX). */
int cql_reply_set_keyspace(cql_request *req, const char *ks);
int cql_reply_schema_change(cql_request *req, cql_change c, cql_target t, const char *ks, const char *name);
int cql_reply_schema_change_fn(cql_request *req, cql_change c, cql_target t, const char *ks, const char *name,
                               const char *const *arg_types, size_t nargs);
int cql_reply_prepared(cql_request *req, const uint8_t *id, uint16_t id_len, const cql_prepared_meta *bind,
                       const cql_rows_meta *result);
int cql_reply_error(cql_request *req, int32_t code, const char *msg, const cql_error_extra *extra);
/* Maps err->code with cql_errcode_from_sib; the message is err->msg.
 * extra NULL takes the extras from err itself (common.h: ex[] for
 * Unavailable/Read_failure/Write_failure, ks/table for Already_exists,
 * ex_id for Unprepared; writeType SIMPLE). */
int cql_reply_sib_err(cql_request *req, const sib_err *err, const cql_error_extra *extra);

/* Rows, streamed: begin (NO_METADATA is added automatically when the
 * request set SKIP_METADATA), add cells row by row, then end (consumes
 * req). Returns NULL on failure, after replying Server error (req consumed).
 * To abandon a started result, call cql_reply_error instead of end. */
cql_rows *cql_reply_rows_begin(cql_request *req, const cql_rows_meta *m);
int cql_reply_rows_end(cql_request *req);
/* A complete result in one call: cells is nrows*ncols values in row order. */
int cql_reply_rows(cql_request *req, const cql_rows_meta *m, const cql_value *cells, uint32_t nrows);

/* ---- server ---- */

typedef struct cql_server_opts {
    const char *bind_addr;   /* IPv4/IPv6 literal; NULL = "127.0.0.1" */
    uint16_t port;           /* 0 = ephemeral (see cql_server_port) */
    uint32_t max_frame_size; /* body bytes; 0 = CQL_MAX_FRAME_DEFAULT */
    uint32_t max_inflight;   /* per connection; reading pauses beyond it; 0 = 1024 */
    uint32_t max_conns;      /* native_transport_max_concurrent_connections; 0 = unlimited */
    uint32_t max_conns_per_ip; /* ..._per_ip; 0 = unlimited */
    /* Optional: how many client connections the descriptor budget allows
     * right now (the node: the fd limit minus what storage keeps in
     * reserve). Asked at every accept; the lower of it and max_conns wins. */
    uint64_t (*conn_budget)(void *ctx);
    void *conn_budget_ctx;
    /* Bytes in flight over all connections: request bytes read but not yet
     * answered (partial frames included) plus responses not yet sent. Past
     * it, connections holding bytes are not read (backpressure) and
     * THROW_ON_OVERLOAD sessions get Overloaded. 0 = unlimited. A frame
     * longer than half of it is refused as too big. */
    size_t max_bytes_in_flight;
    /* Seconds; 0 disables each. startup: from accept until STARTUP is
     * answered. idle: no byte read or written and nothing in flight. frame:
     * a frame whose first bytes arrived but whose end has not. */
    double startup_timeout, idle_timeout, frame_timeout;
    sib_log *log;            /* may be NULL */
} cql_server_opts;

/* Counters for the admin API and tests. */
typedef struct cql_server_stats {
    size_t conns;
    size_t bytes_in_flight;
    uint64_t conns_refused;   /* over a connection limit */
    uint64_t conns_timed_out; /* startup, idle or frame timeout */
    uint64_t accept_backoffs; /* EMFILE/ENFILE pauses of the listener */
    uint64_t overloaded;      /* Overloaded answers (THROW_ON_OVERLOAD) */
    bool backpressure;        /* bytes in flight are over the cap now */
    size_t max_bytes_in_flight; /* the cap (0 = none) */
} cql_server_stats;

typedef struct cql_server cql_server;

/* Binds (SO_REUSEADDR), listens and starts accepting on loop. ex must
 * outlive the server. Returns NULL with err set on failure. */
cql_server *cql_server_create(struct ev_loop *loop, const cql_server_opts *o, cql_executor *ex, sib_err *err);
/* Closes the listener and every connection (their requests become orphans). */
void cql_server_destroy(cql_server *srv);
uint16_t cql_server_port(const cql_server *srv);
size_t cql_server_conn_count(const cql_server *srv);
void cql_server_get_stats(const cql_server *srv, cql_server_stats *out);

/* EVENT frames (stream -1) to every ready connection that REGISTERed the
 * event type. */
void cql_server_broadcast_schema_change(cql_server *srv, cql_change c, cql_target t, const char *ks, const char *name);
void cql_server_broadcast_status(cql_server *srv, bool up, const uint8_t *addr, uint8_t addr_len, int32_t port);
void cql_server_broadcast_topology(cql_server *srv, cql_topology_change c, const uint8_t *addr, uint8_t addr_len,
                                   int32_t port);

#endif
