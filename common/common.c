/* common.c: errors, buffers, readers, varints, time, logging, arenas, uuids.
 * Murmur3 and CRC32C live in hash.c. */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* ---- errors ---- */

int sib_err_set(sib_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int sib_err_errno(sib_err *err, const char *fmt, ...)
{
    int e = errno;
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < sizeof err->msg)
            snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(e));
        err->code = SIB_EIO;
    }
    return SIB_EIO;
}


const char *sib_strerror(int code)
{
    switch (code) {
    case SIB_OK: return "ok";
    case SIB_EINVAL: return "invalid request";
    case SIB_ENOMEM: return "out of memory";
    case SIB_EIO: return "i/o error";
    case SIB_ECORRUPT: return "corrupt data";
    case SIB_ENOTFOUND: return "not found";
    case SIB_EEXIST: return "already exists";
    case SIB_ESYNTAX: return "syntax error";
    case SIB_EPROTO: return "protocol error";
    case SIB_EUNAVAIL: return "unavailable";
    case SIB_ETOOBIG: return "too large";
    case SIB_ECONFIG: return "configuration error";
    case SIB_EUNPREPARED: return "unprepared";
    case SIB_EREADFAIL: return "read failure";
    case SIB_EWRITEFAIL: return "write failure";
    case SIB_EAGAIN: return "try again";
    case SIB_ETIMEDOUT: return "timed out";
    case SIB_EOVERLOADED: return "overloaded";
    default: return "server error";
    }
}

void sib_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

/* ---- varints ---- */

/* Values of 2 to 8 bytes (below 2^56: a zigzagged microsecond timestamp
 * takes 8) are built in one little-endian word: the 7-bit groups are
 * spread out to a byte each (28-bit halves, then 14-bit quarters, then 7-bit
 * eighths), then every byte but the last gets its continuation bit. The
 * word is stored whole: p needs 10 bytes anyway, the bytes past the varint
 * are scratch. */
size_t sib_put_uvarint_long(uint8_t *p, uint64_t v)
{
    if (v < 0x80) {
        *p = (uint8_t)v;
        return 1;
    }
    if (v < 0x4000) { /* a length of 128 bytes to 16 KiB: common enough to skip the word's steps */
        p[0] = (uint8_t)(v | 0x80);
        p[1] = (uint8_t)(v >> 7);
        return 2;
    }
    if (v < (1ull << 56)) return put_uvarint_word(p, v);
    size_t i = 0;
    while (v >= 0x80) { p[i++] = (uint8_t)(v | 0x80); v >>= 7; }
    p[i++] = (uint8_t)v;
    return i;
}

/* The reverse: with 8 bytes to read, a varint that ends within them comes
 * from one word (get_uvarint_word); a longer one (9 or 10 bytes) or a
 * short input goes byte by byte. */
size_t sib_get_uvarint_long(const uint8_t *p, size_t n, uint64_t *out)
{
    if (n >= 2 && p[0] >= 0x80 && p[1] < 0x80) { /* two bytes (see sib_put_uvarint_long) */
        *out = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
        return 2;
    }
    if (n >= 8) {
        size_t len = get_uvarint_word(p, out);
        if (len) return len;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) { *out = v; return i + 1; }
    }
    return 0;
}

/* ---- buffer ---- */

void sib_buf_init(sib_buf *b) { memset(b, 0, sizeof *b); }
void sib_buf_free(sib_buf *b) { free(b->p); memset(b, 0, sizeof *b); }

uint8_t *sib_buf_reserve_grow(sib_buf *b, size_t n)
{
    if (b->oom) return NULL;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) { b->oom = true; return NULL; }
            cap *= 2;
        }
        uint8_t *np = realloc(b->p, cap);
        if (!np) { b->oom = true; return NULL; }
        b->p = np;
        b->cap = cap;
    }
    return b->p + b->len;
}

void sib_buf_append_grow(sib_buf *b, const void *p, size_t n)
{
    if (n == 0) return;
    uint8_t *d = sib_buf_reserve(b, n);
    if (!d) return;
    memcpy(d, p, n);
    b->len += n;
}

void sib_buf_be16(sib_buf *b, uint16_t v) { uint8_t t[2]; put_be16(t, v); sib_buf_append(b, t, 2); }
void sib_buf_be64(sib_buf *b, uint64_t v) { uint8_t t[8]; put_be64(t, v); sib_buf_append(b, t, 8); }

void sib_buf_printf(sib_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    char *d = (char *)sib_buf_reserve(b, (size_t)n + 1);
    if (!d) return;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

bool sib_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) return false;
        c *= 2;
    }
    void *n = realloc(*p, c * elem);
    if (!n) return false;
    *p = n;
    *cap = c;
    return true;
}

uint8_t *sib_buf_take(sib_buf *b, size_t *len)
{
    uint8_t *p = b->p;
    if (len) *len = b->len;
    memset(b, 0, sizeof *b);
    return p;
}

/* ---- threads ---- */

void sib_thread_setup(const char *name, bool background)
{
    char n[16];
    snprintf(n, sizeof n, "%s", name); /* Linux thread names: 15 chars */
    pthread_setname_np(pthread_self(), n);
    /* On Linux, nice applies per thread when given the thread id. */
    if (background) (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
}

/* ---- time ---- */

int64_t sib_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t sib_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- logging ---- */

struct sib_log {
    FILE *out;
    sib_level min;
};

sib_log *sib_log_create(FILE *out, sib_level min)
{
    sib_log *l = calloc(1, sizeof *l);
    if (l) { l->out = out; l->min = min; }
    return l;
}
void sib_log_destroy(sib_log *l) { free(l); }
void sib_log_set_level(sib_log *l, sib_level min) { if (l) l->min = min; }
bool sib_log_enabled(const sib_log *l, sib_level lv) { return l && lv >= l->min; }

void sib_logf(sib_log *l, sib_level lv, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (!sib_log_enabled(l, lv)) return;
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(l->out, "%s %-5s %s\n", ts, names[lv], line);
    fflush(l->out);
}

/* ---- huge pages ---- */

static size_t huge_round(size_t n) { return (n + SIB_HUGE_PAGE - 1) & ~(SIB_HUGE_PAGE - 1); }

void *sib_huge_alloc(size_t n)
{
    n = huge_round(n ? n : 1);
    if (n + SIB_HUGE_PAGE < n) return NULL;
    /* map one page more, keep the aligned part */
    size_t m = n + SIB_HUGE_PAGE;
    uint8_t *p = mmap(NULL, m, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uintptr_t a = ((uintptr_t)p + SIB_HUGE_PAGE - 1) & ~(uintptr_t)(SIB_HUGE_PAGE - 1);
    size_t head = a - (uintptr_t)p, tail = m - head - n;
    if (head) munmap(p, head);
    if (tail) munmap((uint8_t *)a + n, tail);
    (void)madvise((void *)a, n, MADV_HUGEPAGE); /* a hint: small pages work too */
    return (void *)a;
}

void sib_huge_free(void *p, size_t n)
{
    if (p) munmap(p, huge_round(n ? n : 1));
}

/* ---- arena ---- */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t size;
    max_align_t data[];
} arena_chunk;

/* room (first: sib_arena_alloc reads it) is the head chunk's free space;
 * the chunks behind the head are not allocated from again. */
struct sib_arena {
    sib_arena_room room;
    arena_chunk *head;
    size_t chunk;
    size_t total;
};

/* Makes c's data, from its start, the room allocations bump through. */
static void arena_room(sib_arena *a, arena_chunk *c)
{
    a->room.cur = (uint8_t *)c->data;
    a->room.left = c->size;
}

sib_arena *sib_arena_create(size_t chunk)
{
    sib_arena *a = calloc(1, sizeof *a);
    if (a) a->chunk = chunk ? chunk : 64 * 1024;
    return a;
}

void sib_arena_reset(sib_arena *a)
{
    arena_chunk *c = a->head;
    while (c) {
        arena_chunk *n = c->next;
        SIB_UNPOISON(c->data, c->size);
        free(c);
        c = n;
    }
    a->head = NULL;
    a->room = (sib_arena_room){NULL, 0};
    a->total = 0;
}

void sib_arena_clear(sib_arena *a)
{
    arena_chunk *h = a->head;
    if (h && !h->next && h->size == a->chunk) { /* one standard chunk (most requests): no walk */
        arena_room(a, h);
        a->total = h->size;
        SIB_POISON(h->data, h->size);
        return;
    }
    arena_chunk *keep = NULL, *c = h;
    while (c) {
        arena_chunk *n = c->next;
        if (!keep && c->size == a->chunk) {
            keep = c;
        } else {
            SIB_UNPOISON(c->data, c->size);
            free(c);
        }
        c = n;
    }
    a->head = keep;
    a->room = (sib_arena_room){NULL, 0};
    a->total = 0;
    if (keep) {
        keep->next = NULL;
        arena_room(a, keep);
        a->total = keep->size;
        SIB_POISON(keep->data, keep->size);
    }
}

void sib_arena_destroy(sib_arena *a)
{
    if (!a) return;
    sib_arena_reset(a);
    free(a);
}

/* sib_arena_alloc when the head chunk has no room for n (rounded up to 8
 * already): a new chunk. */
void *sib_arena_alloc_slow(sib_arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (!n && a->room.cur) return a->room.cur; /* nothing to take: no new chunk */
    size_t sz = n > a->chunk / 4 ? n : a->chunk;
    arena_chunk *c = malloc(sizeof *c + sz);
    if (!c) return NULL;
    c->size = sz;
    a->total += sz;
    if (n > a->chunk / 4 && a->head) {
        /* Big allocations get their own chunk behind the head so the
         * head's free space is not wasted. */
        c->next = a->head->next;
        a->head->next = c;
        SIB_UNPOISON(c->data, n);
        return c->data;
    }
    c->next = a->head;
    a->head = c;
    arena_room(a, c);
    void *p = a->room.cur;
    a->room.cur += n;
    a->room.left -= n;
    SIB_UNPOISON(p, n);
    return p;
}

void *sib_arena_memdup(sib_arena *a, const void *p, size_t n)
{
    void *d = sib_arena_alloc(a, n ? n : 1);
    if (d && n) memcpy(d, p, n);
    return d;
}
char *sib_arena_strndup(sib_arena *a, const char *s, size_t n)
{
    char *d = sib_arena_alloc(a, n + 1);
    if (d) { memcpy(d, s, n); d[n] = 0; }
    return d;
}
char *sib_arena_strdup(sib_arena *a, const char *s) { return sib_arena_strndup(a, s, strlen(s)); }
size_t sib_arena_used(const sib_arena *a) { return a->total; }

/* ---- rng and uuids ---- */

void sib_rng_seed(sib_rng *r)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    bool ok = fd >= 0 && read(fd, r->s, sizeof r->s) == (ssize_t)sizeof r->s;
    if (fd >= 0) close(fd);
    if (!ok) { r->s[0] = (uint64_t)sib_mono_ns() ^ 0x9E3779B97F4A7C15ull; r->s[1] = (uint64_t)getpid() * 0xBF58476D1CE4E5B9ull; }
    if (!r->s[0] && !r->s[1]) r->s[0] = 1;
}

/* xorshift128+ */
uint64_t sib_rng_next(sib_rng *r)
{
    uint64_t s1 = r->s[0];
    const uint64_t s0 = r->s[1];
    r->s[0] = s0;
    s1 ^= s1 << 23;
    r->s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return r->s[1] + s0;
}

void sib_uuid_v4(sib_rng *r, uint8_t out[16])
{
    put_be64(out, sib_rng_next(r));
    put_be64(out + 8, sib_rng_next(r));
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x40);
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

void sib_timeuuid_init(sib_timeuuid_gen *g)
{
    sib_rng_seed(&g->rng);
    g->last_ticks = 0;
    g->node = (sib_rng_next(&g->rng) & 0xffffffffffffull) | 0x010000000000ull; /* multicast bit: not a MAC */
    g->clock_seq = (uint16_t)(sib_rng_next(&g->rng) & 0x3fff);
}

void sib_timeuuid_next(sib_timeuuid_gen *g, uint8_t out[16])
{
    /* 100 ns ticks since 1582-10-15; strictly increasing per generator. */
    int64_t ticks = sib_now_us() * 10 + 0x01B21DD213814000ll;
    if (ticks <= g->last_ticks) ticks = g->last_ticks + 1;
    g->last_ticks = ticks;
    uint64_t t = (uint64_t)ticks;
    put_be32(out, (uint32_t)t);
    put_be16(out + 4, (uint16_t)(t >> 32));
    put_be16(out + 6, (uint16_t)(((t >> 48) & 0x0fff) | 0x1000));
    put_be16(out + 8, (uint16_t)(g->clock_seq | 0x8000));
    for (int i = 0; i < 6; i++) out[10 + i] = (uint8_t)(g->node >> (40 - 8 * i));
}

void sib_uuid_format(const uint8_t u[16], char out[37])
{
    static const char hx[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hx[u[i] >> 4];
        out[o++] = hx[u[i] & 15];
    }
    out[o] = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool sib_uuid_parse(const char *s, size_t n, uint8_t out[16])
{
    if (n != 36) return false;
    int b = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
            i++;
            continue;
        }
        int h = hexval(s[i]), l = hexval(s[i + 1]);
        if (h < 0 || l < 0) return false;
        out[b++] = (uint8_t)(h << 4 | l);
        i += 2;
    }
    return b == 16;
}

uint64_t sib_memory_budget(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psz <= 0) return (uint64_t)1 << 30;
    uint64_t ram = (uint64_t)pages * (uint64_t)psz, g = (uint64_t)1 << 30;
    uint64_t a = SIB_MIN(ram / 2, g), b = SIB_MIN(ram / 4, 8 * g);
    return SIB_MAX(a, b);
}
