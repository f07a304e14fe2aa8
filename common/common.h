/* common.h: small shared utilities every Sibyl module may use.
 *
 *  - sib_err: error code + message, filled by the failing callee (STYLE.md 3).
 *  - byte-order helpers: the ONLY place that encodes/decodes big/little endian.
 *  - sib_buf: a growable byte buffer (append-only writer).
 *  - sib_murmur3_token: Cassandra's Murmur3Partitioner token, bit for bit.
 *  - sib_crc32c: CRC32C (Castagnoli), used by every on-disk record.
 *  - sib_log: levelled logging to a FILE*, hung off the node.
 *  - sib_arena: bump allocator for request/memtable lifetimes.
 *
 * Nothing here holds global state.
 */
#ifndef SIB_COMMON_H
#define SIB_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The Cassandra release a node reports (system.local, gossip, the admin API):
 * drivers and cqlsh pick their behaviour from it, and 4.1 is the target. */
#define SIB_RELEASE_VERSION "4.1.7"

/* ---- errors ------------------------------------------------------------ */

/* 0 is success; failures are negative. The CQL layer maps them to protocol
 * error codes (see cql/cql.h), so pick the code that says what a client did. */
enum {
    SIB_OK = 0,
    SIB_EINVAL = -1,     /* invalid request (CQL Invalid 0x2200) */
    SIB_ENOMEM = -2,
    SIB_EIO = -3,        /* I/O failure (server error) */
    SIB_ECORRUPT = -4,   /* checksum / format failure on disk */
    SIB_ENOTFOUND = -5,
    SIB_EEXIST = -6,     /* AlreadyExists 0x2400 */
    SIB_ESYNTAX = -7,    /* SyntaxError 0x2000 */
    SIB_EPROTO = -8,     /* Protocol error 0x000A */
    SIB_EUNAVAIL = -9,   /* Unavailable 0x1000 */
    SIB_ETOOBIG = -10,   /* a limit was exceeded (Invalid for requests) */
    SIB_ECONFIG = -11,   /* ConfigurationException 0x2300 */
    SIB_EUNPREPARED = -12, /* Unprepared 0x2500 */
    SIB_ESERVER = -13,   /* generic server error 0x0000 */
    SIB_EREADFAIL = -14, /* ReadFailure 0x1300 */
    SIB_EWRITEFAIL = -15,/* WriteFailure 0x1500 */
    SIB_EAGAIN = -16,
    SIB_EUNAUTHORIZED = -17, /* Unauthorized 0x2100 (e.g. altering a system keyspace) */
    SIB_ETIMEDOUT = -18,  /* an internode request got no answer in time */
    SIB_EOVERLOADED = -19,/* a bounded queue is full: fail fast (Overloaded 0x1001) */
};

typedef struct sib_err {
    int code;
    char msg[512];
    /* Structured extras some codes carry to the client (protocol error bodies):
     *   SIB_EUNAVAIL:    ex[0] consistency, ex[1] required, ex[2] alive
     *   SIB_EREADFAIL / SIB_EWRITEFAIL: ex[0] consistency, ex[1] received,
     *                    ex[2] blockfor, ex[3] failures
     *   SIB_EEXIST:      ks / table names ("" table for a keyspace)
     *   SIB_EUNPREPARED: id (ex_id_len bytes)
     * Callers that set them do so after sib_err_set(). */
    int64_t ex[4];
    char ks[64], table[64];
    uint8_t ex_id[16];
    uint8_t ex_id_len;
} sib_err;

/* Sets err (if non-NULL) and returns code, so callers can `return sib_err_set(...)`. */
int sib_err_set(sib_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like sib_err_set with SIB_EIO, appending ": strerror(errno)". */
int sib_err_errno(sib_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An empty error: code 0, message and extras empty. What `= {0}` gives
 * every reader at a few stores, not 700 bytes' worth (a request clears
 * several); inline for the same reason. */
static inline void sib_err_clear(sib_err *err)
{
    if (!err) return;
    err->code = 0;
    err->msg[0] = 0;
    memset(err->ex, 0, sizeof err->ex);
    err->ks[0] = err->table[0] = 0;
    err->ex_id_len = 0;
}
const char *sib_strerror(int code);

#define SIB_ASSERT(c)                                                                     \
    do {                                                                                  \
        if (!(c)) sib_assert_fail(#c, __FILE__, __LINE__);                                \
    } while (0)
void sib_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

#define SIB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SIB_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SIB_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- byte order (STYLE.md 11) ----------------------------------------- */

static inline uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t get_be64(const uint8_t *p) { return (uint64_t)get_be32(p) << 32 | get_be32(p + 4); }
static inline void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void put_be64(uint8_t *p, uint64_t v) { put_be32(p, (uint32_t)(v >> 32)); put_be32(p + 4, (uint32_t)v); }
static inline uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
static inline uint64_t get_le64(const uint8_t *p) { return (uint64_t)get_le32(p + 4) << 32 | get_le32(p); }
static inline void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void put_le64(uint8_t *p, uint64_t v) { put_le32(p, (uint32_t)v); put_le32(p + 4, (uint32_t)(v >> 32)); }

/* Unsigned LEB128-style varint (7 bits a byte, low first). Returns bytes used;
 * get_uvarint returns 0 on truncated/overlong input. A one-byte value (a
 * column id, a length, a flag) is handled inline; longer ones (timestamps:
 * 8 bytes) go to the out-of-line halves, which take up to 8 bytes in one
 * word where the room allows. */
size_t sib_put_uvarint_long(uint8_t *p, uint64_t v);
size_t sib_get_uvarint_long(const uint8_t *p, size_t n, uint64_t *out);
/* The varint at p when it ends within the 8 bytes from p (all 8 must be
 * readable): found by its first byte without a continuation bit and
 * gathered back in three steps. Returns its length, or 0 when it runs on
 * (9 or 10 bytes). Inline for a decoder whose fields are mostly 8-byte
 * timestamps. */
static inline size_t get_uvarint_word(const uint8_t *p, uint64_t *out)
{
    uint64_t w = get_le64(p), stop = ~w & 0x8080808080808080ull;
    if (!stop) return 0;
    size_t len = (size_t)(__builtin_ctzll(stop) + 1) / 8; /* 1..8 */
    uint64_t x = (len == 8 ? w : w & ((1ull << (8 * len)) - 1)) & 0x7F7F7F7F7F7F7F7Full;
    x = (x & 0x007F007F007F007Full) | (x & 0x7F007F007F007F00ull) >> 1;
    x = (x & 0x00003FFF00003FFFull) | (x & 0x3FFF00003FFF0000ull) >> 2;
    x = (x & 0x000000000FFFFFFFull) | (x & 0x0FFFFFFF00000000ull) >> 4;
    *out = x;
    return len;
}
/* v (under 2^56: 1 to 8 bytes) written as one word: 8 bytes at p are
 * written, the varint's length returned. Inline for an encoder whose
 * fields are mostly 8-byte timestamps. */
static inline size_t put_uvarint_word(uint8_t *p, uint64_t v)
{
    size_t n = (size_t)(63 - __builtin_clzll(v | 1)) / 7 + 1; /* 1..8 */
    uint64_t x = (v & 0x000000000FFFFFFFull) | (v & 0x00FFFFFFF0000000ull) << 4;
    x = (x & 0x00003FFF00003FFFull) | (x & 0x0FFFC0000FFFC000ull) << 2;
    x = (x & 0x007F007F007F007Full) | (x & 0x3F803F803F803F80ull) << 1;
    put_le64(p, x | 0x8080808080808080ull >> 8 >> (8 * (8 - n))); /* continuation bits on bytes 0..n-2 */
    return n;
}
static inline size_t put_uvarint(uint8_t *p, uint64_t v) /* p needs 10 bytes */
{
    if (v < 0x80) {
        *p = (uint8_t)v;
        return 1;
    }
    return sib_put_uvarint_long(p, v);
}
static inline size_t get_uvarint(const uint8_t *p, size_t n, uint64_t *out)
{
    if (n && p[0] < 0x80) {
        *out = p[0];
        return 1;
    }
    return sib_get_uvarint_long(p, n, out);
}
static inline uint64_t zigzag_enc(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t zigzag_dec(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* ---- growable buffer --------------------------------------------------- */

typedef struct sib_buf {
    uint8_t *p;
    size_t len, cap;
    bool oom; /* sticky: set when an append could not allocate */
} sib_buf;

void sib_buf_init(sib_buf *b);
void sib_buf_free(sib_buf *b);
static inline void sib_buf_reset(sib_buf *b) { b->len = 0; b->oom = false; } /* keeps memory */
/* Ensures room for n more bytes; returns a pointer to write them, or NULL
 * (and sets oom). Inline when the room is there; sib_buf_reserve_grow grows. */
uint8_t *sib_buf_reserve_grow(sib_buf *b, size_t n);
static inline uint8_t *sib_buf_reserve(sib_buf *b, size_t n)
{
    if (!b->oom && b->cap - b->len >= n) return b->p + b->len;
    return sib_buf_reserve_grow(b, n);
}
/* sib_buf_append's growing path. */
void sib_buf_append_grow(sib_buf *b, const void *p, size_t n);
/* Inline for the common case, a buffer with room already (a kept one): a
 * point read makes dozens of small appends. */
static inline void sib_buf_append(sib_buf *b, const void *p, size_t n)
{
    if (n && !b->oom && b->cap - b->len >= n) {
        memcpy(b->p + b->len, p, n);
        b->len += n;
        return;
    }
    sib_buf_append_grow(b, p, n);
}
static inline void sib_buf_u8(sib_buf *b, uint8_t v) { sib_buf_append(b, &v, 1); }
void sib_buf_be16(sib_buf *b, uint16_t v);
static inline void sib_buf_be32(sib_buf *b, uint32_t v)
{
    uint8_t t[4];
    put_be32(t, v);
    sib_buf_append(b, t, 4);
}
void sib_buf_be64(sib_buf *b, uint64_t v);
/* Encoded in place when the buffer has the 10 bytes a varint may take. */
static inline void sib_buf_uvarint(sib_buf *b, uint64_t v)
{
    uint8_t *d = sib_buf_reserve(b, 10);
    if (d) b->len += put_uvarint(d, v);
}
void sib_buf_printf(sib_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Grows the malloc'd array *p (elements of elem bytes, capacity *cap) to
 * hold at least need elements, doubling from 16. False (array untouched)
 * on OOM. */
bool sib_grow(void **p, size_t *cap, size_t need, size_t elem);

/* Detaches the bytes (caller frees with free()); b is left empty. */
uint8_t *sib_buf_take(sib_buf *b, size_t *len);

/* ---- bounded reader ---------------------------------------------------- */

/* A cursor over a byte range; every get fails (returns false, sets bad) instead
 * of reading past the end, so decoders of untrusted input stay simple. */
typedef struct sib_rd {
    const uint8_t *p, *end;
    bool bad;
} sib_rd;

static inline void sib_rd_init(sib_rd *r, const void *p, size_t n)
{
    r->p = p; r->end = (const uint8_t *)p + n; r->bad = false;
}
static inline size_t sib_rd_left(const sib_rd *r) { return (size_t)(r->end - r->p); }
/* The fixed-size gets are inline: a request's decode and storage's record
 * decoders make many, each a bound check and a load. */
static inline bool sib_rd_need(sib_rd *r, size_t n)
{
    if (r->bad || sib_rd_left(r) < n) { r->bad = true; return false; }
    return true;
}
static inline bool sib_rd_u8(sib_rd *r, uint8_t *v)
{
    if (!sib_rd_need(r, 1)) return false;
    *v = *r->p++;
    return true;
}
static inline bool sib_rd_be16(sib_rd *r, uint16_t *v)
{
    if (!sib_rd_need(r, 2)) return false;
    *v = get_be16(r->p);
    r->p += 2;
    return true;
}
static inline bool sib_rd_be32(sib_rd *r, uint32_t *v)
{
    if (!sib_rd_need(r, 4)) return false;
    *v = get_be32(r->p);
    r->p += 4;
    return true;
}
static inline bool sib_rd_be64(sib_rd *r, uint64_t *v)
{
    if (!sib_rd_need(r, 8)) return false;
    *v = get_be64(r->p);
    r->p += 8;
    return true;
}
/* *v is 0 after a failure (so no caller's value is ever left unset). */
static inline bool sib_rd_uvarint(sib_rd *r, uint64_t *v)
{
    size_t n = r->bad ? 0 : get_uvarint(r->p, sib_rd_left(r), v);
    if (!n) {
        *v = 0;
        r->bad = true;
        return false;
    }
    r->p += n;
    return true;
}
/* Points *out at the next n bytes (no copy). */
static inline bool sib_rd_bytes(sib_rd *r, size_t n, const uint8_t **out)
{
    if (!sib_rd_need(r, n)) return false;
    *out = r->p;
    r->p += n;
    return true;
}

/* ---- hashing and checksums --------------------------------------------- */

/* Cassandra Murmur3Partitioner.getToken over a serialized partition key:
 * h1 of MurmurHash3_x64_128 (seed 0) with Java's sign-extended tail bytes,
 * Long.MIN_VALUE normalized to Long.MAX_VALUE, and an empty key mapping to
 * Long.MIN_VALUE (the partitioner's minimum token). */
int64_t sib_murmur3_token(const void *key, size_t len);
/* The raw h1 (no normalization, empty key -> 0), as the Python driver's murmur3(). */
int64_t sib_murmur3_h1(const void *key, size_t len);

uint32_t sib_crc32c(uint32_t crc, const void *p, size_t n);
/* The CRC32Cs (from 0) of two ranges in one call: *ca of a, *cb of b. A
 * commitlog entry has two, and a call with the CPU check per crc showed in
 * the per-write cost. */
void sib_crc32c_pair(const void *a, size_t na, uint32_t *ca, const void *b, size_t nb, uint32_t *cb);
/* The table-driven version, whatever the CPU has (tests compare the two). */
uint32_t sib_crc32c_portable(uint32_t crc, const void *p, size_t n);

/* ---- time -------------------------------------------------------------- */

int64_t sib_now_us(void);      /* wall clock, microseconds since epoch */
/* The memory a node sizes its defaults by: the heap Cassandra's
 * cassandra-env.sh picks for this machine, max(min(RAM/2, 1 GiB),
 * min(RAM/4, 8 GiB)); 1 GiB if the RAM size cannot be read. */
uint64_t sib_memory_budget(void);
int64_t sib_mono_ns(void);     /* monotonic clock */

/* ---- threads ---------------------------------------------------------- */

/* Names the calling thread (visible in top/perf) and, when background is
 * set, lowers its CPU priority (nice +10) so request threads win the CPU,
 * as Cassandra runs compaction at low priority. Best effort. */
void sib_thread_setup(const char *name, bool background);

/* ---- logging (STYLE.md 12) --------------------------------------------- */

typedef enum { SIB_DEBUG = 0, SIB_INFO = 1, SIB_WARN = 2, SIB_ERROR = 3 } sib_level;
typedef struct sib_log sib_log;
sib_log *sib_log_create(FILE *out, sib_level min);
void sib_log_destroy(sib_log *l);
void sib_log_set_level(sib_log *l, sib_level min);
bool sib_log_enabled(const sib_log *l, sib_level lv);
void sib_logf(sib_log *l, sib_level lv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* DEBUG costs one branch when off. A NULL log discards everything. */
#define sib_log(l, lv, ...)                                                               \
    do {                                                                                  \
        if (sib_log_enabled((l), (lv))) sib_logf((l), (lv), __VA_ARGS__);                 \
    } while (0)

/* Memory kept for reuse (pools, cleared arenas) is poisoned under
 * AddressSanitizer, so a stale pointer into it is still reported. */
#if defined(__SANITIZE_ADDRESS__)
#define SIB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIB_ASAN 1
#endif
#endif
#ifdef SIB_ASAN
#include <sanitizer/asan_interface.h>
#define SIB_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define SIB_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SIB_POISON(p, n) ((void)(p), (void)(n))
#define SIB_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* ---- huge pages ---------------------------------------------------------- */

/* Zeroed memory in whole 2 MiB pages, aligned to 2 MiB and advised for
 * transparent huge pages (MADV_HUGEPAGE, where the kernel allows): for big
 * tables read at random, such as a memtable's, where a TLB miss per access
 * (a nested page walk in a VM) costs as much as the cache miss. n is
 * rounded up to SIB_HUGE_PAGE; free with the same n. NULL on failure. */
#define SIB_HUGE_PAGE ((size_t)2 << 20)
void *sib_huge_alloc(size_t n);
void sib_huge_free(void *p, size_t n);

/* ---- arena ------------------------------------------------------------- */

typedef struct sib_arena sib_arena;
sib_arena *sib_arena_create(size_t chunk);
void sib_arena_destroy(sib_arena *a);
void sib_arena_reset(sib_arena *a);
/* Empties a for reuse, keeping one chunk of the standard size (if it has
 * one) so the next user allocates nothing. */
void sib_arena_clear(sib_arena *a);
/* The free space of an arena's current chunk, which every arena starts
 * with: the common allocation is a bump of cur, inline (a call per
 * allocation showed in the per-request cost); the rest of the arena is
 * common.c's own. */
typedef struct sib_arena_room {
    uint8_t *cur;
    size_t left;
} sib_arena_room;
void *sib_arena_alloc_slow(sib_arena *a, size_t n);
/* Returns 8-byte aligned memory valid until reset/destroy, or NULL on OOM. */
static inline void *sib_arena_alloc(sib_arena *a, size_t n)
{
    sib_arena_room *r = (sib_arena_room *)a;
    n = (n + 7) & ~(size_t)7;
    /* n - 1: a zero-byte allocation takes the slow path, which never
     * answers NULL for it (an arena without a chunk has cur NULL) */
    if (n - 1 < r->left) {
        void *p = r->cur;
        r->cur += n;
        r->left -= n;
        SIB_UNPOISON(p, n);
        return p;
    }
    return sib_arena_alloc_slow(a, n);
}
void *sib_arena_memdup(sib_arena *a, const void *p, size_t n);
char *sib_arena_strdup(sib_arena *a, const char *s);
char *sib_arena_strndup(sib_arena *a, const char *s, size_t n);
size_t sib_arena_used(const sib_arena *a);

/* ---- resource limits (limits.c) ---------------------------------------- */

/* Raises the soft RLIMIT_NOFILE to the hard limit (services often start at
 * 1,024 while the hard limit is far higher). soft_out and hard_out get the
 * limits in force afterwards; a failure to raise keeps the old soft limit
 * and returns SIB_EIO with err set (the caller logs it and goes on). */
int sib_fd_limit_raise(uint64_t *soft_out, uint64_t *hard_out, sib_err *err);

/* The descriptors a node keeps away from client connections so that the
 * commitlog, flushes and compaction can always open files. The reserve is
 * `base` (commitlog segments, flush and compaction outputs, listeners, the
 * admin API's connections, the process's own pipes and logs), plus two per
 * open SSTable (Data and Index stay open), plus one per internode
 * connection. Plain arithmetic, so it is unit-tested on its own. */
typedef struct sib_fd_budget {
    uint64_t limit;     /* the soft RLIMIT_NOFILE in force */
    uint64_t base;      /* fixed part of the reserve */
    uint64_t sstables;  /* open SSTables now */
    uint64_t internode; /* internode connections now */
} sib_fd_budget;
uint64_t sib_fd_reserve(const sib_fd_budget *b);
/* Client connections the budget allows now: limit - reserve, 0 when the
 * reserve takes everything. */
uint64_t sib_fd_client_max(const sib_fd_budget *b);

/* A log line limiter: at most one line per interval, with the number of
 * events that were not logged since the last line. */
typedef struct sib_ratelimit {
    int64_t interval_ns;
    int64_t last_ns;     /* INT64_MIN: nothing logged yet */
    uint64_t suppressed; /* events since the last logged one */
} sib_ratelimit;
void sib_ratelimit_init(sib_ratelimit *r, int64_t interval_ns);
/* True when an event at now_ns may be logged; *suppressed then gets the
 * events dropped before it (and the count restarts). */
bool sib_ratelimit_allow(sib_ratelimit *r, int64_t now_ns, uint64_t *suppressed);

/* ---- LRU cache weighted by bytes (lru.c) ------------------------------- */

/* Values keyed by a 16-byte id (such as a prepared statement id), each with
 * a weight in bytes; the total weight stays at or below the capacity by
 * evicting the least recently used values, which go to free_fn. Lookups
 * move a value to the most recently used end. Not thread-safe. */
typedef struct sib_lru sib_lru;
typedef void (*sib_lru_free_fn)(void *ctx, void *value);
/* NULL on OOM. free_fn may be NULL (values are then not freed). */
sib_lru *sib_lru_create(size_t capacity, sib_lru_free_fn free_fn, void *ctx);
/* Frees every value still held. */
void sib_lru_destroy(sib_lru *l);
/* The value of key, now the most recently used; NULL when absent. */
void *sib_lru_get(sib_lru *l, const uint8_t key[16]);
/* Adds value under key (the key must be absent) and evicts least recently
 * used values until the total fits. SIB_ETOOBIG when weight alone exceeds
 * the capacity, SIB_ENOMEM: in both cases nothing changed and the caller
 * still owns value. */
int sib_lru_put(sib_lru *l, const uint8_t key[16], void *value, size_t weight);
size_t sib_lru_count(const sib_lru *l);
size_t sib_lru_weight(const sib_lru *l);  /* total bytes held */
size_t sib_lru_capacity(const sib_lru *l);
uint64_t sib_lru_evictions(const sib_lru *l);

/* ---- uuids ------------------------------------------------------------- */

/* Random (v4) uuid from /dev/urandom-seeded state passed by the caller. */
typedef struct sib_rng { uint64_t s[2]; } sib_rng;
void sib_rng_seed(sib_rng *r);
uint64_t sib_rng_next(sib_rng *r);
void sib_uuid_v4(sib_rng *r, uint8_t out[16]);
/* Time-based (v1) uuid for now(); clock_seq/node from rng, monotonic per state. */
typedef struct sib_timeuuid_gen { sib_rng rng; int64_t last_ticks; uint64_t node; uint16_t clock_seq; } sib_timeuuid_gen;
void sib_timeuuid_init(sib_timeuuid_gen *g);
void sib_timeuuid_next(sib_timeuuid_gen *g, uint8_t out[16]);
/* 36-char lower-case text form + NUL. */
void sib_uuid_format(const uint8_t u[16], char out[37]);
bool sib_uuid_parse(const char *s, size_t n, uint8_t out[16]);


/* ---- failpoints (test builds only) -------------------------------------------
 *
 * Named points between the steps of a multi-step disk protocol (a compaction's
 * outputs, its commit, its deletions) at which a test stops the process or
 * injects a failure, so a crash test lands exactly between two steps instead
 * of hoping a timer does. Compiled in only with -DSIB_FAILPOINTS (CMake option
 * SIB_FAILPOINTS, on by default in sanitizer builds); otherwise every
 * SIB_FAILPOINT is the constant 0.
 *
 * Armed by the environment variable SIBYL_FAILPOINTS, read once:
 *   SIBYL_FAILPOINTS="name=action[;name=action...]"
 * actions: kill (SIGKILL: a kill -9 at that point), abort, sleep:<ms>,
 * error (the point returns SIB_EIO with a message naming it).
 * A name may carry a number: SIB_FAILPOINT_N("compaction.after_output", 2)
 * checks "compaction.after_output_2". */
#ifdef SIB_FAILPOINTS
/* 0, or the injected error (action "error"); kill/abort do not return. */
int sib_failpoint(const char *name, long n, sib_err *err);
/* Replaces the armed set with spec (same syntax as the variable; "" or NULL
 * disarms everything). For unit tests; not thread-safe against a running
 * sib_failpoint. SIB_EINVAL on a bad spec (nothing armed then). */
int sib_failpoints_set(const char *spec, sib_err *err);
#define SIB_FAILPOINT(name, err) sib_failpoint((name), -1, (err))
#define SIB_FAILPOINT_N(name, n, err) sib_failpoint((name), (long)(n), (err))
#else
#define SIB_FAILPOINT(name, err) ((void)(err), 0)
#define SIB_FAILPOINT_N(name, n, err) ((void)(n), (void)(err), 0)
#endif

#endif
