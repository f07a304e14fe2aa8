/* hash.c: Cassandra-compatible Murmur3 token and CRC32C.
 *
 * Murmur3: Cassandra's MurmurHash.hash3_x64_128 reads the tail with Java
 * `byte`s, which are signed, so each tail byte is sign-extended before it is
 * shifted into k1/k2. Standard murmur3 agrees only when every tail byte is
 * below 0x80. Everything wraps mod 2^64; fmix uses logical shifts.
 *
 * CRC32C: the SSE4.2 instruction when the CPU has it, otherwise
 * slicing-by-8 tables built once (a constant-after-init table, allowed by
 * STYLE.md 5) under pthread_once so worker threads may checksum too. */
#include "common.h"

#include <pthread.h>

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

int64_t sib_murmur3_h1(const void *key, size_t len)
{
    const uint8_t *data = key;
    const size_t nblocks = len / 16;
    uint64_t h1 = 0, h2 = 0;
    const uint64_t c1 = 0x87c37b91114253d5ull, c2 = 0x4cf5ad432745937full;

    for (size_t i = 0; i < nblocks; i++) {
        uint64_t k1 = get_le64(data + i * 16), k2 = get_le64(data + i * 16 + 8);
        k1 *= c1; k1 = rotl64(k1, 31); k1 *= c2; h1 ^= k1;
        h1 = rotl64(h1, 27); h1 += h2; h1 = h1 * 5 + 0x52dce729;
        k2 *= c2; k2 = rotl64(k2, 33); k2 *= c1; h2 ^= k2;
        h2 = rotl64(h2, 31); h2 += h1; h2 = h2 * 5 + 0x38495ab5;
    }

    const uint8_t *tail = data + nblocks * 16;
    uint64_t k1 = 0, k2 = 0;
#define SX(i) ((uint64_t)(int64_t)(int8_t)tail[i])
    switch (len & 15) {
    case 15: k2 ^= SX(14) << 48; /* fall through */
    case 14: k2 ^= SX(13) << 40; /* fall through */
    case 13: k2 ^= SX(12) << 32; /* fall through */
    case 12: k2 ^= SX(11) << 24; /* fall through */
    case 11: k2 ^= SX(10) << 16; /* fall through */
    case 10: k2 ^= SX(9) << 8;   /* fall through */
    case 9:
        k2 ^= SX(8);
        k2 *= c2; k2 = rotl64(k2, 33); k2 *= c1; h2 ^= k2;
        /* fall through */
    case 8: k1 ^= SX(7) << 56; /* fall through */
    case 7: k1 ^= SX(6) << 48; /* fall through */
    case 6: k1 ^= SX(5) << 40; /* fall through */
    case 5: k1 ^= SX(4) << 32; /* fall through */
    case 4: k1 ^= SX(3) << 24; /* fall through */
    case 3: k1 ^= SX(2) << 16; /* fall through */
    case 2: k1 ^= SX(1) << 8;  /* fall through */
    case 1:
        k1 ^= SX(0);
        k1 *= c1; k1 = rotl64(k1, 31); k1 *= c2; h1 ^= k1;
    }
#undef SX
    h1 ^= (uint64_t)len;
    h2 ^= (uint64_t)len;
    h1 += h2;
    h2 += h1;
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 += h2;
    return (int64_t)h1;
}

int64_t sib_murmur3_token(const void *key, size_t len)
{
    if (len == 0) return INT64_MIN;
    int64_t h = sib_murmur3_h1(key, len);
    return h == INT64_MIN ? INT64_MAX : h;
}

/* ---- CRC32C ---- */

/* The SSE4.2 crc32 instruction does 8 bytes a cycle or so; the table version
 * is the fallback. The choice is made once, at run time, so one binary
 * serves machines with and without SSE4.2. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const uint8_t *b, size_t n)
{
    uint64_t c = ~crc;
    /* 32 bytes a turn: the loop's own steps were as many as its crcs on a
     * commitlog entry's hundred-odd bytes */
    while (n >= 32) {
        c = __builtin_ia32_crc32di(c, get_le64(b));
        c = __builtin_ia32_crc32di(c, get_le64(b + 8));
        c = __builtin_ia32_crc32di(c, get_le64(b + 16));
        c = __builtin_ia32_crc32di(c, get_le64(b + 24));
        b += 32;
        n -= 32;
    }
    while (n >= 8) { c = __builtin_ia32_crc32di(c, get_le64(b)); b += 8; n -= 8; }
    uint32_t c32 = (uint32_t)c;
    /* the tail in at most three steps, not a byte at a time (a commitlog
     * entry's crcs end in one) */
    if (n & 4) { c32 = __builtin_ia32_crc32si(c32, get_le32(b)); b += 4; }
    if (n & 2) { c32 = __builtin_ia32_crc32hi(c32, (uint16_t)(b[0] | b[1] << 8)); b += 2; }
    if (n & 1) c32 = __builtin_ia32_crc32qi(c32, *b);
    return ~c32;
}
#endif

static uint32_t crc_soft(uint32_t crc, const uint8_t *b, size_t n)
{
    pthread_once(&crc_once, crc_init);
    uint32_t c = ~crc;
    while (n >= 8) {
        uint32_t lo = c ^ get_le32(b), hi = get_le32(b + 4);
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
            crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
            crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        b += 8;
        n -= 8;
    }
    while (n--) c = (c >> 8) ^ crc_table[0][(c ^ *b++) & 0xff];
    return ~c;
}

uint32_t sib_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
    if (crc_hw) return crc_sse42(crc, p, n);
#endif
    return crc_soft(crc, p, n);
}

void sib_crc32c_pair(const void *a, size_t na, uint32_t *ca, const void *b, size_t nb, uint32_t *cb)
{
    pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
    if (crc_hw) {
        *ca = crc_sse42(0, a, na);
        *cb = crc_sse42(0, b, nb);
        return;
    }
#endif
    *ca = crc_soft(0, a, na);
    *cb = crc_soft(0, b, nb);
}

uint32_t sib_crc32c_portable(uint32_t crc, const void *p, size_t n) { return crc_soft(crc, p, n); }
