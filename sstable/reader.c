/* reader.c: open SSTables, point lookups, clustering slices, partition scans,
 * and the table directory (live generations, leftovers).
 *
 * Open reads: Data's footer + chunk table, Index's footer + summary (first
 * token of every ~512-byte index page), Filter, Statistics; every section's crc
 * is checked, and a bad one fails the open with SIB_ECORRUPT naming the file.
 *
 * Point lookup (sst_part_open): bloom filter on the token, binary search of
 * the summary, one index page (crc checked), a binary search of its
 * entries for the run that holds the token (writer.c), and a walk of that
 * run's partitions in its block comparing keys (run_find). Then the
 * partition:
 *   - without samples (at most index_interval bytes): the whole partition is
 *     read (the blocks it spans, each crc-checked and decompressed) and
 *     decoded at once;
 *   - with samples: the header + static row [0, sample 0), then "segments"
 *     [sample i, sample i+1) read one at a time, each decoded whole into a
 *     row array. A seek picks the segment from the samples (binary search),
 *     so a slice reads only the blocks it touches; reversed reads walk the
 *     row array backwards, segment by segment.
 * A crc mismatch anywhere is SIB_ECORRUPT "corrupted block ... in <file>";
 * other partitions stay readable. Blocks and index pages are verified the
 * first time they are read after open (a bit per block remembers it), like
 * Cassandra's crc_check_chance but per open instead of per read: the crc
 * then costs once, not on every lookup.
 *
 * Block cache: sst_part_open_cached reads compressed blocks through an
 * sst_bcache (bcache.c): a hit skips the crc and LZ4 entirely, a miss
 * checks the crc (first read after open, as above), decompresses into a new
 * entry and inserts it. The part holds a reference on its current block's
 * entry until it moves to another block or closes.
 *
 * Threads: everything but the refcount and the block cache fields is
 * read-only after open; reads go through read-only mappings of Data.db and
 * Index.db (immutable files). bc_gone is set once by the loop
 * (sst_bcache_forget) and read by the readers going through a cache, any
 * thread: it is accessed atomically; sst_part_open never touches it.
 */
#define _GNU_SOURCE
#include "sst_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct sum_ent {
    int64_t token; /* the page's first */
    uint32_t len;
    uint64_t off;
} sum_ent;

struct sstable {
    int refs;
    bool obsolete;
    char *dir, *data_path, *index_path;
    uint64_t gen;
    int dfd, ifd;
    const uint8_t *imap;        /* read-only mapping of Index.db (Data.db is read with pread) */
    uint64_t *vpage;            /* bit per index page: crc verified */
    uint64_t dsize, isize;
    uint32_t block_size;
    uint64_t *chunks, table_off, logical;
    size_t nchunks;
    int64_t ts_base; /* Data's timestamp base */
    sum_ent *sum;
    size_t nsum;
    sst_bloom bloom;
    sst_stats st;
    uint8_t *statbuf;
    int64_t created_s;
    uint64_t uid;  /* unique per open in the process: the block cache key */
    uint16_t version; /* Data's format version: 2 = an index entry per partition */
    int64_t (*token_of)(const void *key, size_t len); /* the partitioner (writer.c) */
    bool bc_gone;  /* forgotten by the block cache (left the read path):
                    * nothing more is cached; only the cache's thread */
};

typedef struct sample { const uint8_t *ck; uint32_t cklen; uint64_t off; } sample;

/* An index page, checked and parsed (see writer.c): entries in place. */
typedef struct ix_page {
    const uint8_t *ents, *samp;
    size_t samplen;
    uint32_t n, end;
    uint64_t base;
} ix_page;

/* One entry: where its run is (pos, size: every partition up to the next
 * entry), the length of its first partition when the index says it (psize:
 * a run of one partition in a version 2 file, a partition with samples;
 * else 0: found by walking the run), and the first partition's samples. */
typedef struct ix_ent {
    int64_t token;
    uint64_t pos, size, psize, nsamples;
    const uint8_t *samples;
    size_t samples_len;
} ix_ent;

struct sst_part {
    sstable *s;
    uint64_t pos, size;
    const uint8_t *pk; /* in hdr */
    uint32_t pklen;
    uint8_t *idxcopy; /* index entry bytes the samples point into */
    uint8_t *walk;    /* run_part's copy of partitions that cross a block end */
    size_t walkcap;
    sample *samples;
    uint32_t nsamples;
    uint8_t *hdr;      /* owned copy of hb when it spans blocks, else NULL */
    const uint8_t *hb; /* header (+ static row) bytes; whole partition without samples */
    sst_del pdel;
    sst_rt *rts;
    size_t nrt;
    sst_rowbuf srb; /* static row */
    /* rows: the current segment */
    uint8_t *seg;
    uint64_t rows_off; /* where segment 0 starts when there are no samples */
    sst_rowbuf rb;
    long seg_idx, cur;
    bool reversed, positioned;
    /* the current block */
    long blk_idx;
    uint8_t *blk;        /* decompression buffer (uncached reads) */
    uint8_t *zbuf;       /* a block as stored (read buffer; raw blocks are used in it) */
    size_t zcap;
    const uint8_t *blkp; /* the current block's bytes (blk, ent or the mapping) */
    size_t blk_len;
    sst_bcache *bc;      /* NULL: uncached */
    sst_bc_ent *ent;     /* held: the current block when it came from bc */
    bool cache_only;     /* a block not in bc is SIB_EAGAIN, never read */
};

struct sst_pscan {
    sstable *s;
    size_t page;      /* next page to open */
    ix_page pg;       /* the current page */
    uint32_t ent;     /* next entry of pg */
    ix_ent run;       /* the current run (entry ent - 1) */
    uint64_t x;       /* Data offset of the run's next partition */
    bool in_run;
    sst_part *rd;     /* block reader for the keys (in Data) */
    ix_ent last;      /* the entry last returned */
    bool has_last;
    uint8_t *key;     /* the last key returned */
    size_t keycap;
    int64_t token;
    uint8_t *pk;
    size_t pklen;
    bool has_pk, incl, started;
};

/* ---- block reads ---- */

static int corrupt(sstable *s, sib_err *err, const char *what, uint64_t off)
{
    return sib_err_set(err, SIB_ECORRUPT, "sstable: corrupted %s at offset %llu in %s", what,
                       (unsigned long long)off, s->data_path);
}

/* A block or index page is checked against its crc the first time it is
 * read after open (the mapping of an immutable file cannot change under
 * us); the bit is set atomically, so concurrent readers are fine. */
static bool verified(const uint64_t *bits, size_t i)
{
    return __atomic_load_n(&bits[i / 64], __ATOMIC_RELAXED) & (1ull << (i % 64));
}
static void set_verified(uint64_t *bits, size_t i) { __atomic_fetch_or(&bits[i / 64], 1ull << (i % 64), __ATOMIC_RELAXED); }

/* Reads block i's stored bytes (after its 12-byte header) into *buf
 * (grown as needed) and checks them: table bounds, header, crc. Data.db is
 * read with pread, not mapped: a mapping's touched pages count in the
 * process's resident size (2.3 GiB at 10M keys against 0.2 for RocksDB),
 * and the block cache is what keeps hot blocks (Cassandra 5.0's default,
 * disk_access_mode: mmap_index_only). */
static int fetch_block(sstable *s, size_t i, uint8_t **buf, size_t *cap, uint32_t *sn, uint32_t *ulen, bool *raw,
                       sib_err *err)
{
    uint64_t off = s->chunks[i], end = i + 1 < s->nchunks ? s->chunks[i + 1] : s->table_off;
    if (end <= off + 12 || end - off > SST_MAX_BLOCK + 12 || end > s->dsize) return corrupt(s, err, "block table", off);
    size_t n = (size_t)(end - off);
    if (n > *cap) {
        uint8_t *b = realloc(*buf, n);
        if (!b) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
        *buf = b;
        *cap = n;
    }
    if (sst_pread_full(s->dfd, *buf, n, off)) return sib_err_errno(err, "sstable: read %s", s->data_path);
    const uint8_t *z = *buf;
    uint32_t slen = get_be32(z);
    *sn = slen & ~SST_BLOCK_RAW;
    *ulen = get_be32(z + 4);
    *raw = slen & SST_BLOCK_RAW;
    if (*sn != n - 12 || *ulen > s->block_size || (*raw && *sn != *ulen)) return corrupt(s, err, "block", off);
    if (sib_crc32c(0, z + 12, *sn) != get_be32(z + 8)) return corrupt(s, err, "block (crc mismatch)", off);
    return 0;
}

/* Makes block i current (p->blkp): from the block cache (a hit: no read,
 * no crc, no LZ4), else read and checked (fetch_block); raw blocks are used
 * in the read buffer, LZ4 ones decompressed into a new cache entry (p->bc)
 * or p->blk. */
static int load_block(sst_part *p, size_t i, sib_err *err)
{
    sstable *s = p->s;
    if (p->blk_idx == (long)i) return 0;
    p->blk_idx = -1;
    sst_bc_release(p->ent);
    p->ent = NULL;
    bool cached = p->bc && !__atomic_load_n(&s->bc_gone, __ATOMIC_ACQUIRE); /* raw blocks are never cached: a lookup just misses */
    if (cached && (p->ent = sst_bc_get(p->bc, s->uid, (uint32_t)i))) {
        p->blkp = p->ent->data;
        p->blk_idx = (long)i;
        p->blk_len = p->ent->len;
        return 0;
    }
    if (p->cache_only) return sib_err_set(err, SIB_EAGAIN, "sstable: block %zu of %s is not cached", i, s->data_path);
    uint32_t sn = 0, ulen = 0;
    bool raw = false;
    int rc = fetch_block(s, i, &p->zbuf, &p->zcap, &sn, &ulen, &raw, err);
    if (rc) return rc;
    const uint8_t *z = p->zbuf + 12;
    if (raw) {
        p->blkp = z;
    } else if (cached) {
        sst_bc_ent *e = sst_bc_alloc(ulen);
        if (!e) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
        if (LZ4_decompress_safe((const char *)z, (char *)e->data, (int)sn, (int)ulen) != (int)ulen) {
            sst_bc_release(e);
            return corrupt(s, err, "block (bad LZ4 data)", s->chunks[i]);
        }
        sst_bc_insert(p->bc, e, s->uid, (uint32_t)i);
        p->ent = e;
        p->blkp = e->data;
    } else {
        if (!p->blk && !(p->blk = malloc(s->block_size))) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
        if (LZ4_decompress_safe((const char *)z, (char *)p->blk, (int)sn, (int)ulen) != (int)ulen)
            return corrupt(s, err, "block (bad LZ4 data)", s->chunks[i]);
        p->blkp = p->blk;
    }
    p->blk_idx = (long)i;
    p->blk_len = ulen;
    return 0;
}

static int read_range(sst_part *p, uint64_t off, size_t len, uint8_t *out, sib_err *err)
{
    sstable *s = p->s;
    if (off + len > s->logical) return corrupt(s, err, "partition position", off);
    while (len) {
        size_t bi = (size_t)(off / s->block_size), in = (size_t)(off % s->block_size);
        if (bi >= s->nchunks) return corrupt(s, err, "partition position", off);
        int rc = load_block(p, bi, err);
        if (rc) return rc;
        if (in >= p->blk_len) return corrupt(s, err, "block length", off);
        size_t k = SIB_MIN(len, p->blk_len - in);
        memcpy(out, p->blkp + in, k);
        out += k;
        off += k;
        len -= k;
    }
    return 0;
}

/* ---- open ---- */

static int read_file_tail(int fd, const char *path, uint32_t magic, uint8_t **tbl, size_t *tlen, uint64_t *tbl_off,
                          sib_err *err)
{
    struct stat stt;
    if (fstat(fd, &stt)) return sib_err_errno(err, "sstable: stat %s", path);
    uint64_t size = (uint64_t)stt.st_size;
    uint8_t h[SST_HDR_LEN], f[SST_FOOTER_LEN];
    if (size < SST_HDR_LEN + SST_FOOTER_LEN || sst_pread_full(fd, h, sizeof h, 0) ||
        sst_pread_full(fd, f, sizeof f, size - SST_FOOTER_LEN))
        return sib_err_set(err, SIB_ECORRUPT, "sstable: %s is truncated", path);
    if (!sst_check_hdr(h, magic, NULL, NULL) || get_be32(f + 16) != magic || get_be32(f + 20) != sib_crc32c(0, f, 20))
        return sib_err_set(err, SIB_ECORRUPT, "sstable: %s has a bad header or footer", path);
    uint64_t off = get_be64(f);
    size_t n = get_be32(f + 8);
    if (off + n + SST_FOOTER_LEN != size) return sib_err_set(err, SIB_ECORRUPT, "sstable: %s footer is corrupt", path);
    uint8_t *t = malloc(n ? n : 1);
    if (!t) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    if (sst_pread_full(fd, t, n, off) || sib_crc32c(0, t, n) != get_be32(f + 12)) {
        free(t);
        return sib_err_set(err, SIB_ECORRUPT, "sstable: %s: corrupt table (crc mismatch)", path);
    }
    *tbl = t;
    *tlen = n;
    *tbl_off = off;
    return 0;
}

static int open_data(sstable *s, sib_err *err)
{
    uint8_t h[SST_HDR_LEN], *t;
    size_t n;
    if (sst_pread_full(s->dfd, h, sizeof h, 0)) return sib_err_set(err, SIB_ECORRUPT, "sstable: %s is truncated", s->data_path);
    s->version = get_be16(h + 4);
    if (get_be32(h) == SST_MAGIC_DATA && get_be32(h + 12) == sib_crc32c(0, h, 12) &&
        (s->version < SST_VERSION_MIN || s->version > SST_VERSION))
        return sib_err_set(err, SIB_ECORRUPT, "sstable: %s is in format version %u; this build reads versions %u to %u",
                           s->data_path, s->version, SST_VERSION_MIN, SST_VERSION);
    if (!sst_check_hdr(h, SST_MAGIC_DATA, NULL, &s->block_size) || !s->block_size || s->block_size > SST_MAX_BLOCK)
        return sib_err_set(err, SIB_ECORRUPT, "sstable: %s has a bad header", s->data_path);
    int rc = read_file_tail(s->dfd, s->data_path, SST_MAGIC_DATA, &t, &n, &s->table_off, err);
    if (rc) return rc;
    if (n < 20 || (n - 20) % 8 || get_be32(t + n - 4) != (n - 20) / 8) {
        free(t);
        return sib_err_set(err, SIB_ECORRUPT, "sstable: %s: bad chunk table", s->data_path);
    }
    s->nchunks = (n - 20) / 8;
    s->logical = get_be64(t + n - 20);
    s->ts_base = (int64_t)get_be64(t + n - 12);
    if (!(s->chunks = malloc((s->nchunks ? s->nchunks : 1) * 8))) rc = SIB_ENOMEM;
    for (size_t i = 0; !rc && i < s->nchunks; i++) s->chunks[i] = get_be64(t + 8 * i);
    free(t);
    return rc ? sib_err_set(err, rc, "sstable: out of memory") : 0;
}

static int open_index(sstable *s, sib_err *err)
{
    size_t n;
    uint64_t off, np;
    uint8_t *tbl;
    int rc = read_file_tail(s->ifd, s->index_path, SST_MAGIC_INDEX, &tbl, &n, &off, err);
    if (rc) return rc;
    sib_rd r;
    sib_rd_init(&r, tbl, n);
    if (!sib_rd_uvarint(&r, &np) || np > n) goto bad;
    if (!(s->sum = calloc(np ? np : 1, sizeof *s->sum))) {
        free(tbl);
        return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    }
    for (s->nsum = 0; s->nsum < np; s->nsum++) {
        sum_ent *e = &s->sum[s->nsum];
        uint64_t len, tok;
        if (!sib_rd_be64(&r, &tok) || !sib_rd_uvarint(&r, &e->off) || !sib_rd_uvarint(&r, &len) || len > (1u << 30) ||
            (s->nsum && (int64_t)tok < s->sum[s->nsum - 1].token))
            goto bad;
        e->token = (int64_t)tok;
        e->len = (uint32_t)len;
    }
    free(tbl);
    return 0;
bad:
    free(tbl);
    return sib_err_set(err, SIB_ECORRUPT, "sstable: %s: bad summary", s->index_path);
}

static int slurp(const char *path, uint8_t **out, size_t *n, sib_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sib_err_errno(err, "sstable: open %s", path);
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st)) rc = sib_err_errno(err, "sstable: stat %s", path);
    else if (!(*out = malloc((size_t)st.st_size + 1))) rc = sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    else if (sst_pread_full(fd, *out, (size_t)st.st_size, 0)) rc = sib_err_errno(err, "sstable: read %s", path);
    *n = (size_t)st.st_size;
    close(fd);
    return rc;
}

static int open_filter(sstable *s, sib_err *err)
{
    char *path = sst_path(s->dir, s->gen, "Filter.db", "");
    uint8_t *b = NULL;
    size_t n;
    uint32_t k;
    int rc = path ? slurp(path, &b, &n, err) : sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    if (!rc && (n < SST_HDR_LEN + 12 || !sst_check_hdr(b, SST_MAGIC_FILTER, NULL, &k) || !k || k > 64 ||
                get_be32(b + n - 4) != sib_crc32c(0, b, n - 4) ||
                get_be64(b + SST_HDR_LEN) / 8 != n - SST_HDR_LEN - 12 || !get_be64(b + SST_HDR_LEN)))
        rc = sib_err_set(err, SIB_ECORRUPT, "sstable: %s is corrupt", path);
    if (!rc) {
        s->bloom.k = k;
        s->bloom.nbits = get_be64(b + SST_HDR_LEN);
        if (!(s->bloom.bits = malloc(s->bloom.nbits / 8))) rc = sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
        else memcpy(s->bloom.bits, b + SST_HDR_LEN + 8, s->bloom.nbits / 8);
    }
    free(b);
    free(path);
    return rc;
}

static bool rd_key(sib_rd *r, const uint8_t **k, uint32_t *len)
{
    uint64_t n;
    if (!sib_rd_uvarint(r, &n) || n > sib_rd_left(r) || !sib_rd_bytes(r, n, k)) return false;
    *len = (uint32_t)n;
    return true;
}

static int open_stats(sstable *s, sib_err *err)
{
    char *path = sst_path(s->dir, s->gen, "Statistics.db", "");
    size_t n;
    int rc = path ? slurp(path, &s->statbuf, &n, err) : sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    sst_stats *st = &s->st;
    if (rc) goto out;
    uint8_t *b = s->statbuf;
    if (n < SST_HDR_LEN + 4 || !sst_check_hdr(b, SST_MAGIC_STATS, NULL, NULL) ||
        get_be32(b + n - 4) != sib_crc32c(0, b + SST_HDR_LEN, n - SST_HDR_LEN - 4))
        goto bad;
    sib_rd r;
    sib_rd_init(&r, b + SST_HDR_LEN, n - SST_HDR_LEN - 4);
    uint64_t v[64];
    uint32_t w[3];
    uint8_t flags = 0; /* a short record fails the reader's bad flag below; gcc -O2 cannot tell */
    for (int i = 0; i < 2; i++) sib_rd_be64(&r, &v[i]);
    for (int i = 0; i < 2; i++) sib_rd_be32(&r, &w[i]);
    st->min_ts = (int64_t)v[0];
    st->max_ts = (int64_t)v[1];
    st->min_ldt = (int32_t)w[0];
    st->max_ldt = (int32_t)w[1];
    for (int i = 0; i < 4; i++) sib_rd_be64(&r, &v[i]);
    st->partitions = v[0], st->rows = v[1], st->cells = v[2], st->tombstones = v[3];
    for (int i = 0; i < SST_LDT_BINS; i++) sib_rd_be64(&r, &st->ldt_bins[i]);
    sib_rd_be64(&r, &st->data_bytes);
    sib_rd_be64(&r, &st->data_file_bytes);
    sib_rd_be32(&r, &st->level);
    sib_rd_be64(&r, &st->repaired_at);
    sib_rd_be64(&r, &st->clpos.seg);
    sib_rd_be64(&r, &st->clpos.off);
    sib_rd_u8(&r, &flags);
    sib_rd_be64(&r, &v[0]);
    sib_rd_be64(&r, &v[1]);
    st->first_token = (int64_t)v[0];
    st->last_token = (int64_t)v[1];
    st->has_partition_deletions = flags & 1;
    st->has_range_tombstones = flags & 2;
    if (r.bad || !rd_key(&r, &st->first_key, &st->first_keylen) || !rd_key(&r, &st->last_key, &st->last_keylen) ||
        !rd_key(&r, &st->min_ck, &st->min_cklen) || !rd_key(&r, &st->max_ck, &st->max_cklen))
        goto bad;
    if (!(flags & 4)) st->min_ck = st->max_ck = NULL;
    st->live_forever = UINT64_MAX;
    if ((flags & 8) && !sib_rd_be64(&r, &st->live_forever)) goto bad;
    goto out;
bad:
    rc = sib_err_set(err, SIB_ECORRUPT, "sstable: %s is corrupt", path);
out:
    free(path);
    return rc;
}

static int file_size(int fd, const char *path, uint64_t *size, sib_err *err)
{
    struct stat st;
    if (fstat(fd, &st)) return sib_err_errno(err, "sstable: stat %s", path);
    *size = (uint64_t)st.st_size;
    return 0;
}

/* Index.db is immutable once live and small (12 bytes a run of ~4 KiB): lookups
 * binary-search its pages in place in a shared read-only mapping. */
static int map_file(int fd, const char *path, const uint8_t **map, uint64_t *size, sib_err *err)
{
    struct stat st;
    if (fstat(fd, &st)) return sib_err_errno(err, "sstable: stat %s", path);
    *size = (uint64_t)st.st_size;
    void *m = mmap(NULL, st.st_size ? (size_t)st.st_size : 1, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return sib_err_errno(err, "sstable: mmap %s", path);
    *map = m;
    return 0;
}

/* The block cache keys blocks by this id, never by path, generation or
 * address: a new SSTable reusing a generation (drop and re-create, a
 * restart of the table) or a freed sstable's memory must never find an
 * older one's blocks, in any cache. It is the one piece of process-wide
 * state in the module (an atomic counter; nothing owns every cache). */
static uint64_t next_uid;

static int open_gen(sstable **out, const char *dir, uint64_t gen, bool salvage, sib_err *err);

int sst_open(sstable **out, const char *dir, uint64_t gen, sib_err *err) { return open_gen(out, dir, gen, false, err); }

int sst_open_salvage(sstable **out, const char *dir, uint64_t gen, sib_err *err)
{
    return open_gen(out, dir, gen, true, err);
}

/* salvage: without Filter.db and Statistics.db (either may be damaged): no
 * bloom filter and zeroed stats, enough for a scan that rewrites it. */
static int open_gen(sstable **out, const char *dir, uint64_t gen, bool salvage, sib_err *err)
{
    *out = NULL;
    sstable *s = calloc(1, sizeof *s);
    if (!s) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    s->refs = 1;
    s->uid = __atomic_add_fetch(&next_uid, 1, __ATOMIC_RELAXED);
    s->gen = gen;
    s->dfd = s->ifd = -1;
    s->token_of = sib_murmur3_token;
    int rc;
    if (!(s->dir = strdup(dir)) || !(s->data_path = sst_path(dir, gen, "Data.db", "")) ||
        !(s->index_path = sst_path(dir, gen, "Index.db", ""))) {
        rc = sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
        goto fail;
    }
    if ((s->dfd = open(s->data_path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = sib_err_errno(err, "sstable: open %s", s->data_path);
        goto fail;
    }
    if ((s->ifd = open(s->index_path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = sib_err_errno(err, "sstable: open %s", s->index_path);
        goto fail;
    }
    if ((rc = open_data(s, err)) || (rc = open_index(s, err)) || (!salvage && (rc = open_filter(s, err))) ||
        (!salvage && (rc = open_stats(s, err))) || (rc = file_size(s->dfd, s->data_path, &s->dsize, err)) ||
        (rc = map_file(s->ifd, s->index_path, &s->imap, &s->isize, err)))
        goto fail;
    struct stat dst;
    s->created_s = fstat(s->dfd, &dst) ? 0 : (int64_t)dst.st_mtime;
    if (!(s->vpage = calloc(s->nsum / 64 + 1, 8))) {
        rc = sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
        goto fail;
    }
    *out = s;
    return 0;
fail:
    sst_unref(s);
    return rc;
}

/* Atomic: compaction workers open partitions of live SSTables while the
 * loop takes and drops its own references. */
void sst_ref(sstable *s) { __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED); }
void sst_mark_obsolete(sstable *s) { __atomic_store_n(&s->obsolete, true, __ATOMIC_RELEASE); }
const sst_stats *sst_get_stats(const sstable *s) { return &s->st; }
uint64_t sst_gen(const sstable *s) { return s->gen; }
const char *sst_data_path(const sstable *s) { return s->data_path; }
int64_t sst_created(const sstable *s) { return s->created_s; }
bool sst_may_contain(const sstable *s, int64_t token) { return sst_bloom_test(&s->bloom, token); }

void sst_unref(sstable *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
    if (s->dfd >= 0) close(s->dfd);
    if (s->ifd >= 0) close(s->ifd);
    if (s->imap) munmap((void *)s->imap, s->isize ? (size_t)s->isize : 1);
    if (s->obsolete && s->dir) sst_remove(s->dir, s->gen, NULL);
    sst_bloom_free(&s->bloom);
    free(s->chunks);
    free(s->vpage);
    free(s->sum);
    free(s->statbuf);
    free(s->dir);
    free(s->data_path);
    free(s->index_path);
    free(s);
}

/* ---- index ---- */

static int key_cmp(int64_t t1, const uint8_t *k1, size_t n1, int64_t t2, const uint8_t *k2, size_t n2)
{
    if (t1 != t2) return t1 < t2 ? -1 : 1;
    size_t n = SIB_MIN(n1, n2);
    int c = n ? memcmp(k1, k2, n) : 0;
    return c ? c : (n1 < n2 ? -1 : n1 > n2);
}

/* The page that holds token's entries: the last whose first token is not
 * above it; -1 if before all. */
static long sum_find(const sstable *s, int64_t token)
{
    long lo = 0, hi = (long)s->nsum - 1, ans = -1;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        if (s->sum[mid].token <= token) ans = mid, lo = mid + 1;
        else hi = mid - 1;
    }
    return ans;
}

static int bad_page(const sstable *s, const sum_ent *e, sib_err *err)
{
    return sib_err_set(err, SIB_ECORRUPT, "sstable: corrupted index page at offset %llu in %s",
                       (unsigned long long)e->off, s->index_path);
}

static int page_open(sstable *s, size_t i, ix_page *pg, sib_err *err)
{
    const sum_ent *e = &s->sum[i];
    const uint8_t *b = s->imap + e->off;
    if (e->len < 24 || e->off + e->len > s->isize || get_be32(b) != e->len - 8) return bad_page(s, e, err);
    if (!verified(s->vpage, i)) {
        if (get_be32(b + 4) != sib_crc32c(0, b + 8, e->len - 8)) return bad_page(s, e, err);
        set_verified(s->vpage, i);
    }
    pg->n = get_be32(b + 8);
    pg->base = get_be64(b + 12);
    if (!pg->n || pg->n > (e->len - 24) / 12) return bad_page(s, e, err);
    pg->ents = b + 20;
    pg->end = get_be32(pg->ents + 12 * (size_t)pg->n);
    pg->samp = pg->ents + 12 * (size_t)pg->n + 4;
    pg->samplen = e->len - 24 - 12 * (size_t)pg->n;
    if ((int64_t)get_be64(pg->ents) != e->token) return bad_page(s, e, err);
    return 0;
}

static int64_t pg_token(const ix_page *pg, uint32_t i) { return (int64_t)get_be64(pg->ents + 12 * (size_t)i); }
static uint32_t pg_rel(const ix_page *pg, uint32_t i) { return get_be32(pg->ents + 12 * (size_t)i + 8); }

/* First entry whose token is not below token (n if none). */
static uint32_t pg_lower(const ix_page *pg, int64_t token)
{
    uint32_t lo = 0, hi = pg->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (pg_token(pg, mid) < token) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Entry i of pg, checked against its neighbours and the Data length. */
static int pg_entry(sstable *s, const ix_page *pg, uint32_t i, ix_ent *e, sib_err *err)
{
    uint32_t rel = pg_rel(pg, i), r = rel & 0x7fffffffu;
    uint32_t next = i + 1 < pg->n ? pg_rel(pg, i + 1) & 0x7fffffffu : pg->end;
    e->token = pg_token(pg, i);
    e->pos = pg->base + r;
    e->size = (uint64_t)next - r;
    e->psize = s->version < 3 ? e->size : 0;
    e->nsamples = 0;
    e->samples = NULL;
    e->samples_len = 0;
    if (next <= r || e->pos + e->size > s->logical || (i && pg_token(pg, i - 1) > e->token)) goto bad;
    if (rel & 0x80000000u) { /* find its samples: records in entry order */
        sib_rd rd;
        sib_rd_init(&rd, pg->samp, pg->samplen);
        for (;;) {
            uint64_t idx, ns;
            if (!sib_rd_uvarint(&rd, &idx) || !sib_rd_uvarint(&rd, &ns) || !ns || ns > sib_rd_left(&rd) || idx > i)
                goto bad;
            const uint8_t *start = rd.p;
            for (uint64_t k = 0; k < ns; k++) {
                const uint8_t *ck;
                uint32_t cklen;
                uint64_t off;
                if (!rd_key(&rd, &ck, &cklen) || !sib_rd_uvarint(&rd, &off)) goto bad;
            }
            size_t slen = (size_t)(rd.p - start);
            uint64_t psize = 0; /* version 3: the partition's length follows its samples */
            if (s->version >= 3 && (!sib_rd_uvarint(&rd, &psize) || !psize)) goto bad;
            if (idx == i) {
                if (psize > e->size) goto bad;
                e->nsamples = ns;
                e->samples = start;
                e->samples_len = slen;
                if (psize) e->psize = psize;
                break;
            }
        }
    }
    return 0;
bad:
    return sib_err_set(err, SIB_ECORRUPT, "sstable: corrupted index entry in %s", s->index_path);
}

/* ---- partitions ---- */

static int decode_header(sst_part *p, const uint8_t *b, size_t n, size_t *used, sib_err *err)
{
    sib_rd r;
    uint64_t kl, nrt;
    const uint8_t *k;
    uint8_t f;
    sib_rd_init(&r, b, n);
    p->pdel = (sst_del){SST_NO_TS, SST_NO_LDT};
    if (!sib_rd_uvarint(&r, &kl) || kl > sib_rd_left(&r) || !sib_rd_bytes(&r, kl, &k) || !sib_rd_u8(&r, &f))
        goto bad;
    p->pk = k;
    p->pklen = (uint32_t)kl;
    int64_t base = p->s->ts_base;
    if ((f & SP_PDEL) && !sst_dec_del(&r, &p->pdel, base)) goto bad;
    if (f & SP_RTS) {
        if (!sib_rd_uvarint(&r, &nrt) || nrt > sib_rd_left(&r)) goto bad;
        if (!(p->rts = calloc(nrt ? nrt : 1, sizeof *p->rts))) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
        for (p->nrt = 0; p->nrt < nrt; p->nrt++) {
            sst_rt *rt = &p->rts[p->nrt];
            if (!sst_dec_bound(&r, &rt->start) || !sst_dec_bound(&r, &rt->end) || !sst_dec_del(&r, &rt->del, base))
                goto bad;
        }
    }
    if (sib_rd_left(&r) && (*r.p & SR_STATIC)) {
        uint8_t rf = 0; /* (a byte is left: checked above) */
        sib_rd_u8(&r, &rf);
        int rc = sst_dec_row_body(&r, rf, true, &p->srb, base);
        if (rc == SIB_ENOMEM) return sib_err_set(err, rc, "sstable: out of memory");
        if (rc) goto bad;
        sst_rowbuf_fix(&p->srb);
    }
    *used = (size_t)(r.p - b);
    return 0;
bad:
    return corrupt(p->s, err, "partition header", p->pos);
}

/* Decodes rows of buf into p->rb until the end marker or the buffer end. */
static int decode_rows(sst_part *p, const uint8_t *b, size_t n, sib_err *err)
{
    sib_rd r;
    sib_rd_init(&r, b, n);
    sst_rowbuf_reset(&p->rb);
    while (sib_rd_left(&r)) {
        uint8_t f = 0; /* (a byte is left: the loop's test) */
        sib_rd_u8(&r, &f);
        if (!f) break;
        if (!(f & SR_ROW) || (f & SR_STATIC)) return corrupt(p->s, err, "row", p->pos);
        int rc = sst_dec_row_body(&r, f, false, &p->rb, p->s->ts_base);
        if (rc == SIB_ENOMEM) return sib_err_set(err, rc, "sstable: out of memory");
        if (rc) return corrupt(p->s, err, "row", p->pos);
    }
    sst_rowbuf_fix(&p->rb);
    return 0;
}

static long nsegs(const sst_part *p) { return p->nsamples ? (long)p->nsamples : 1; }

static int load_seg(sst_part *p, long i, sib_err *err)
{
    if (p->seg_idx == i) return 0;
    p->seg_idx = -1;
    if (!p->nsamples) { /* the whole partition is in p->hb already */
        int rc = decode_rows(p, p->hb + p->rows_off, (size_t)(p->size - p->rows_off), err);
        if (!rc) p->seg_idx = 0;
        return rc;
    }
    uint64_t a = p->samples[i].off, b = i + 1 < (long)p->nsamples ? p->samples[i + 1].off : p->size;
    if (b < a || b > p->size) return corrupt(p->s, err, "clustering index", p->pos);
    uint8_t *seg = realloc(p->seg, (size_t)(b - a) + 1);
    if (!seg) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    p->seg = seg;
    int rc = read_range(p, p->pos + a, (size_t)(b - a), seg, err);
    if (!rc) rc = decode_rows(p, seg, (size_t)(b - a), err);
    if (!rc) p->seg_idx = i;
    return rc;
}

static int part_load(sst_part *p, const ix_ent *e, sib_err *err)
{
    p->pos = e->pos;
    p->size = e->size;
    p->nsamples = (uint32_t)e->nsamples;
    if (e->nsamples) {
        if (!(p->idxcopy = malloc(e->samples_len)) || !(p->samples = calloc(e->nsamples, sizeof *p->samples)))
            return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
        memcpy(p->idxcopy, e->samples, e->samples_len);
        sib_rd r;
        sib_rd_init(&r, p->idxcopy, e->samples_len);
        for (uint32_t i = 0; i < p->nsamples; i++) {
            rd_key(&r, &p->samples[i].ck, &p->samples[i].cklen);
            sib_rd_uvarint(&r, &p->samples[i].off);
        }
    }
    uint64_t hlen = p->nsamples ? p->samples[0].off : p->size;
    if (hlen > p->size || p->size > (1ull << 40)) return corrupt(p->s, err, "index entry", p->pos);
    /* A partition without samples never loads another block after this,
     * so when it lies in one block it is decoded in place: no copy. */
    uint64_t bs = p->s->block_size, in = p->pos % bs;
    int rc;
    if (!p->nsamples && in + hlen <= bs && p->pos + hlen <= p->s->logical && p->pos / bs < p->s->nchunks) {
        if (!(rc = load_block(p, (size_t)(p->pos / bs), err)) && in + hlen > p->blk_len)
            rc = corrupt(p->s, err, "block length", p->pos);
        p->hb = p->blkp + in;
    } else {
        if (!(p->hdr = malloc((size_t)hlen + 1))) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
        rc = read_range(p, p->pos, (size_t)hlen, p->hdr, err);
        p->hb = p->hdr;
    }
    size_t used = 0;
    if (!rc) rc = decode_header(p, p->hb, (size_t)hlen, &used, err);
    p->rows_off = used;
    return rc;
}

int sst_part_open(sstable *s, const uint8_t *pk, size_t pklen, int64_t token, sst_part **out, sib_err *err)
{
    return sst_part_open_cached(s, NULL, pk, pklen, token, out, err);
}

void sst_bcache_forget(sst_bcache *bc, sstable *s)
{
    if (!bc || __atomic_load_n(&s->bc_gone, __ATOMIC_ACQUIRE)) return;
    /* A worker that read the flag just before may still link one block of
     * s after the drop below: it is never looked up again (the uid is
     * gone) and ages out of the LRU like any other. */
    __atomic_store_n(&s->bc_gone, true, __ATOMIC_RELEASE);
    sst_bc_drop_id(bc, s->uid);
}

static sst_part *part_new(sstable *s, sst_bcache *bc)
{
    sst_part *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->s = s;
    sst_ref(s);
    p->bc = bc;
    p->blk_idx = p->seg_idx = -1;
    return p;
}

static int part_open(sstable *s, sst_bcache *bc, bool cache_only, const uint8_t *pk, size_t pklen, int64_t token,
                     sst_part **out, sib_err *err);

int sst_part_open_cached(sstable *s, sst_bcache *bc, const uint8_t *pk, size_t pklen, int64_t token, sst_part **out,
                         sib_err *err)
{
    return part_open(s, bc, false, pk, pklen, token, out, err);
}

int sst_part_open_cache_only(sstable *s, sst_bcache *bc, const uint8_t *pk, size_t pklen, int64_t token,
                             sst_part **out, sib_err *err)
{
    return part_open(s, bc, true, pk, pklen, token, out, err);
}

/* The partition at Data offset x inside a run that ends at end (see
 * writer.c): its key (valid until p reads another block) and length. It is
 * parsed in place in x's block when it ends there, which is the rule: a
 * run's partitions all start in one block, so only its last one (or, after
 * equal tokens, any) may cross the block end; that one is parsed from a copy
 * of the run's bytes, grown until it fits. Nothing is decoded or allocated
 * for a partition that is only passed over. */
static int run_part(sst_part *p, uint64_t x, uint64_t end, const uint8_t **pk, uint32_t *pklen, uint64_t *size,
                    sib_err *err)
{
    sstable *s = p->s;
    uint64_t bs = s->block_size;
    if (x >= end || end > s->logical || x / bs >= s->nchunks) return corrupt(s, err, "index run", x);
    int rc = load_block(p, (size_t)(x / bs), err);
    if (rc) return rc;
    size_t in = (size_t)(x % bs), used;
    if (in >= p->blk_len) return corrupt(s, err, "block length", x);
    const uint8_t *b = p->blkp + in;
    size_t n = (size_t)SIB_MIN(p->blk_len - in, end - x);
    while (!sst_skip_partition(b, n, pk, pklen, &used)) {
        if (n >= end - x) return corrupt(s, err, "partition", x);
        size_t want = (size_t)SIB_MIN(end - x, (uint64_t)SIB_MAX(2 * n, (size_t)4096));
        if (want > p->walkcap) {
            uint8_t *w = realloc(p->walk, want);
            if (!w) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
            p->walk = w;
            p->walkcap = want;
        }
        if ((rc = read_range(p, x, want, p->walk, err))) return rc;
        b = p->walk;
        n = want;
    }
    *size = used;
    return 0;
}

/* The key of the partition at Data offset x (size bytes long): in place in
 * its block, or copied into p->walk when it crosses the block end. */
static int part_key(sst_part *p, uint64_t x, uint64_t size, const uint8_t **k, uint32_t *kl, sib_err *err)
{
    sstable *s = p->s;
    uint64_t bs = s->block_size, len;
    if (!size || x + size > s->logical || x / bs >= s->nchunks) return corrupt(s, err, "partition position", x);
    int rc = load_block(p, (size_t)(x / bs), err);
    if (rc) return rc;
    size_t in = (size_t)(x % bs);
    if (in >= p->blk_len) return corrupt(s, err, "block length", x);
    size_t n = (size_t)SIB_MIN(p->blk_len - in, size), h = get_uvarint(p->blkp + in, n, &len);
    if (h && len <= n - h) {
        *k = p->blkp + in + h;
        *kl = (uint32_t)len;
        return 0;
    }
    uint8_t hb[10];
    size_t hn = (size_t)SIB_MIN(size, sizeof hb);
    if ((rc = read_range(p, x, hn, hb, err))) return rc;
    if (!(h = get_uvarint(hb, hn, &len)) || len > size - h || len > UINT32_MAX) return corrupt(s, err, "partition key", x);
    if (len > p->walkcap) {
        uint8_t *w = realloc(p->walk, (size_t)len);
        if (!w) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
        p->walk = w;
        p->walkcap = (size_t)len;
    }
    *k = p->walk;
    *kl = (uint32_t)len;
    return len ? read_range(p, x + h, (size_t)len, p->walk, err) : 0;
}

/* The partition at x, the first of run e (first) or a later one: its key
 * and length, from the index (e->psize) or from walking the run. */
static int run_next(sst_part *p, const ix_ent *e, uint64_t x, const uint8_t **k, uint32_t *kl, uint64_t *size,
                    sib_err *err)
{
    if (x == e->pos && e->psize) {
        *size = e->psize;
        return part_key(p, x, e->psize, k, kl, err);
    }
    return run_part(p, x, e->pos + e->size, k, kl, size, err);
}

/* Looks for pk in run e, key by key; on a match p is loaded with the
 * partition (*found). p only reads blocks until then. */
static int run_find(sst_part *p, const ix_ent *e, const uint8_t *pk, size_t pklen, bool *found, sib_err *err)
{
    *found = false;
    for (uint64_t x = e->pos, end = e->pos + e->size, size; x < end; x += size) {
        const uint8_t *k;
        uint32_t kl;
        int rc = run_next(p, e, x, &k, &kl, &size, err);
        if (rc) return rc;
        if (kl == pklen && (!pklen || !memcmp(k, pk, pklen))) {
            *found = true;
            bool first = x == e->pos;
            return part_load(p, &(ix_ent){.token = e->token, .pos = x, .size = size, .nsamples = first ? e->nsamples : 0,
                                          .samples = e->samples, .samples_len = e->samples_len}, err);
        }
    }
    return 0;
}

static int part_open(sstable *s, sst_bcache *bc, bool cache_only, const uint8_t *pk, size_t pklen, int64_t token,
                     sst_part **out, sib_err *err)
{
    *out = NULL;
    if (!sst_bloom_test(&s->bloom, token)) return 0;
    long pgi = sum_find(s, token);
    if (pgi < 0) return 0;
    ix_page pg;
    int rc = page_open(s, (size_t)pgi, &pg, err);
    if (rc) return rc;
    /* Entries never fall between partitions of equal token, so token's
     * partitions are in the run of the last entry not above it; in a
     * version 2 file, in the runs (of one) of the entries with it. */
    uint32_t lo = pg_lower(&pg, token), hi = lo;
    while (hi < pg.n && pg_token(&pg, hi) == token) hi++;
    if (lo == hi && !lo) return 0;
    sst_part *p = NULL;
    for (uint32_t i = lo < hi ? lo : lo - 1; i < SIB_MAX(hi, lo); i++) {
        ix_ent e;
        if ((rc = pg_entry(s, &pg, i, &e, err))) break;
        if (e.psize == e.size && e.token != token) continue; /* a run of one other partition */
        if (!p && !(p = part_new(s, bc))) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
        p->cache_only = cache_only; /* without a cache every block is a miss */
        bool found;
        if ((rc = run_find(p, &e, pk, pklen, &found, err))) break;
        if (found) {
            *out = p;
            return 0;
        }
    }
    sst_part_close(p);
    return rc;
}

void sst_part_close(sst_part *p)
{
    if (!p) return;
    sst_bc_release(p->ent);
    sst_unref(p->s);
    free(p->idxcopy);
    free(p->walk);
    free(p->samples);
    free(p->hdr);
    free(p->rts);
    free(p->seg);
    free(p->blk);
    free(p->zbuf);
    sst_rowbuf_free(&p->srb);
    sst_rowbuf_free(&p->rb);
    free(p);
}

sst_del sst_part_deletion(const sst_part *p) { return p->pdel; }
uint64_t sst_part_size(const sst_part *p) { return p->size; }

/* ---- offline verification ---- */

int sst_verify(sstable *s, uint64_t *blocks, sib_err *err)
{
    uint64_t n = 0;
    uint8_t *buf = malloc(s->block_size ? s->block_size : 1), *z = NULL;
    size_t zcap = 0;
    if (!buf) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    int rc = 0;
    for (size_t i = 0; !rc && i < s->nchunks; i++, n++) {
        uint32_t sn = 0, ulen = 0;
        bool raw = false;
        rc = fetch_block(s, i, &z, &zcap, &sn, &ulen, &raw, err);
        if (!rc && !raw && LZ4_decompress_safe((const char *)z + 12, (char *)buf, (int)sn, (int)ulen) != (int)ulen)
            rc = corrupt(s, err, "block (bad LZ4 data)", s->chunks[i]);
    }
    free(buf);
    free(z);
    /* every index page and entry, and every run parsed through to its end:
     * its partitions must tile it exactly */
    sst_part *p = rc ? NULL : part_new(s, NULL);
    if (!rc && !p) rc = sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    for (size_t i = 0; !rc && i < s->nsum; i++, n++) {
        ix_page pg;
        ix_ent e;
        rc = page_open(s, i, &pg, err);
        for (uint32_t k = 0; !rc && k < pg.n; k++) {
            rc = pg_entry(s, &pg, k, &e, err);
            for (uint64_t x = e.pos, size = 0; !rc && x < e.pos + e.size; x += size) {
                const uint8_t *key;
                uint32_t kl;
                rc = run_next(p, &e, x, &key, &kl, &size, err);
            }
        }
    }
    sst_part_close(p);
    if (blocks) *blocks = n;
    return rc;
}
size_t sst_part_rts(const sst_part *p, const sst_rt **rts)
{
    *rts = p->rts;
    return p->nrt;
}
const sst_row *sst_part_static(const sst_part *p) { return p->srb.nrows ? &p->srb.rows[0] : NULL; }

/* Segment whose first sample is the last one before b (forward) or not
 * after b (reversed). */
static long seg_for(const sst_part *p, const sst_bound *b, bool reversed)
{
    long lo = 0, hi = (long)p->nsamples - 1, ans = 0;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        int c = sst_bound_cmp(p->samples[mid].ck, p->samples[mid].cklen, b, !reversed);
        if (c < 0) ans = mid, lo = mid + 1;
        else hi = mid - 1;
    }
    return ans;
}

int sst_part_seek(sst_part *p, const sst_bound *b, bool reversed, sib_err *err)
{
    p->reversed = reversed;
    p->positioned = true;
    long si = p->nsamples ? seg_for(p, b, reversed) : 0;
    for (;;) {
        int rc = load_seg(p, si, err);
        if (rc) return rc;
        long n = (long)p->rb.nrows;
        if (!reversed) {
            long i = 0;
            while (i < n && sst_bound_cmp(p->rb.rows[i].ck, p->rb.rows[i].cklen, b, true) < 0) i++;
            if (i < n || si + 1 >= nsegs(p)) {
                p->cur = i;
                return 0;
            }
            si++;
        } else {
            long i = n - 1;
            while (i >= 0 && sst_bound_cmp(p->rb.rows[i].ck, p->rb.rows[i].cklen, b, false) > 0) i--;
            p->cur = i;
            return 0;
        }
    }
}

int sst_part_next(sst_part *p, const sst_row **out, sib_err *err)
{
    if (!p->positioned) {
        sst_bound all = {NULL, 0, true, true};
        int rc = sst_part_seek(p, &all, false, err);
        if (rc) return rc;
    }
    for (;;) {
        if (p->cur >= 0 && p->cur < (long)p->rb.nrows) {
            *out = &p->rb.rows[p->cur];
            p->cur += p->reversed ? -1 : 1;
            return 1;
        }
        long si = p->seg_idx + (p->reversed ? -1 : 1);
        if (p->seg_idx < 0 || si < 0 || si >= nsegs(p)) return 0;
        int rc = load_seg(p, si, err);
        if (rc) return rc;
        p->cur = p->reversed ? (long)p->rb.nrows - 1 : 0;
    }
}

/* ---- partition scans ---- */

int sst_pscan_open(sstable *s, int64_t token, const uint8_t *pk, size_t pklen, bool inclusive, sst_pscan **out,
                   sib_err *err)
{
    sst_pscan *sc = calloc(1, sizeof *sc);
    if (!sc || (pk && pklen && !(sc->pk = malloc(pklen))) || !(sc->rd = part_new(s, NULL))) {
        if (sc) free(sc->pk);
        free(sc);
        return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    }
    sc->s = s;
    sst_ref(s);
    sc->token = token;
    sc->has_pk = pk != NULL;
    sc->incl = inclusive;
    if (pk && pklen) memcpy(sc->pk, pk, pklen);
    sc->pklen = pk ? pklen : 0;
    long pgi = sum_find(s, token);
    sc->page = pgi < 0 ? 0 : (size_t)pgi;
    *out = sc;
    return 0;
}

/* The next partition of the scan's current run into sc->last and sc->key. */
static int pscan_step(sst_pscan *sc, size_t *klen, sib_err *err)
{
    const uint8_t *k;
    uint32_t kl;
    uint64_t size;
    bool first = sc->x == sc->run.pos;
    int rc = run_next(sc->rd, &sc->run, sc->x, &k, &kl, &size, err);
    if (rc) return rc;
    if (kl > sc->keycap) {
        uint8_t *nk = realloc(sc->key, kl);
        if (!nk) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
        sc->key = nk;
        sc->keycap = kl;
    }
    if (kl) memcpy(sc->key, k, kl);
    *klen = kl;
    sc->last = first ? sc->run : (ix_ent){0};
    sc->last.pos = sc->x;
    sc->last.size = size;
    /* the index has the first partition's token; the others' come from their keys */
    sc->last.token = first ? sc->run.token : sc->s->token_of(sc->key, kl);
    sc->x += size;
    return 0;
}

int sst_pscan_next(sst_pscan *sc, const uint8_t **pk, size_t *pklen, int64_t *token, sib_err *err)
{
    for (;;) {
        if (!sc->in_run) {
            if (sc->ent >= sc->pg.n) {
                if (sc->page >= sc->s->nsum) return 0;
                int rc = page_open(sc->s, sc->page++, &sc->pg, err);
                if (rc) { /* the next call goes on with the next page */
                    sc->pg.n = sc->ent = 0;
                    return rc;
                }
                /* the run before the first entry at or above token may hold partitions above it */
                uint32_t lo = sc->started ? 0 : pg_lower(&sc->pg, sc->token);
                sc->ent = lo ? lo - 1 : 0;
                continue;
            }
            int rc = pg_entry(sc->s, &sc->pg, sc->ent++, &sc->run, err);
            if (rc) return rc; /* the next call goes on with the next run */
            sc->in_run = true;
            sc->x = sc->run.pos;
        }
        if (sc->x >= sc->run.pos + sc->run.size) {
            sc->in_run = false;
            continue;
        }
        size_t klen = 0;
        int rc = pscan_step(sc, &klen, err);
        if (rc) { /* the rest of the run cannot be found: the next call goes on with the next run */
            sc->in_run = false;
            sc->has_last = false;
            return rc;
        }
        if (!sc->started) {
            int c = sc->has_pk ? key_cmp(sc->last.token, sc->key, klen, sc->token, sc->pk, sc->pklen)
                               : (sc->last.token < sc->token ? -1 : sc->last.token > sc->token);
            if (c < 0 || (c == 0 && !sc->incl)) continue;
            sc->started = true;
        }
        sc->has_last = true;
        *pk = sc->key;
        *pklen = klen;
        *token = sc->last.token;
        return 1;
    }
}

int sst_pscan_part(sst_pscan *sc, sst_part **out, sib_err *err)
{
    *out = NULL;
    if (!sc->has_last) return sib_err_set(err, SIB_EINVAL, "sstable: no partition to open");
    sst_part *p = part_new(sc->s, NULL);
    if (!p) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    /* Borrow the scan's current block (the one the key was read from):
     * a scan of small partitions decompresses each block once, not once a
     * partition. A switch to another block gets p its own buffer. */
    p->blk_idx = sc->rd->blk_idx;
    p->blkp = sc->rd->blkp;
    p->blk_len = sc->rd->blk_len;
    int rc = part_load(p, &sc->last, err);
    if (rc) {
        sst_part_close(p);
        return rc;
    }
    *out = p;
    return 0;
}

int64_t sst_ts_base(const sstable *s) { return s->ts_base; }
/* Statistics.db counts the partitions; without it (a salvage open) a dense
 * index has 12 bytes a partition, and a sparse one says little: Data's
 * length over 32 bytes, a small partition, sizes the bloom filter of a
 * rewrite generously rather than too small. */
uint64_t sst_key_estimate(const sstable *s)
{
    if (s->st.partitions) return s->st.partitions;
    return (s->version < 3 ? s->isize / 12 : s->logical / 32) + 1;
}

void sst_set_token_fn(sstable *s, int64_t (*fn)(const void *key, size_t len)) { s->token_of = fn; }

void sst_pscan_close(sst_pscan *sc)
{
    if (!sc) return;
    sst_part_close(sc->rd);
    sst_unref(sc->s);
    free(sc->key);
    free(sc->pk);
    free(sc);
}

/* ---- directory ---- */

static bool parse_name(const char *name, uint64_t *gen, const char **comp)
{
    char *end;
    if (name[0] < '0' || name[0] > '9') return false;
    unsigned long long g = strtoull(name, &end, 10);
    if (*end != '-') return false;
    *gen = g;
    *comp = end + 1;
    return true;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* What the directory holds of one generation. */
typedef struct gen_files {
    uint64_t gen;
    uint8_t comps; /* bit c: final sst_components[c] present */
    bool toc, tmp;
} gen_files;

#define ALL_COMPS 0xf

static int gen_cmp(const void *a, const void *b) { return u64_cmp(&((const gen_files *)a)->gen, &((const gen_files *)b)->gen); }

/* Collects every generation's files; deletes nothing. */
static int scan_gens(const char *dir, gen_files **out, size_t *nout, uint64_t *max_gen, sib_err *err)
{
    DIR *d = opendir(dir);
    if (!d) return sib_err_errno(err, "sstable: opendir %s", dir);
    gen_files *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        uint64_t g;
        const char *comp;
        if (!parse_name(de->d_name, &g, &comp)) continue;
        if (g > *max_gen) *max_gen = g;
        size_t i = 0;
        while (i < n && v[i].gen != g) i++;
        if (i == n) {
            if (n == cap) {
                size_t c = cap ? cap * 2 : 16;
                gen_files *x = realloc(v, c * sizeof *x);
                if (!x) {
                    rc = sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
                    break;
                }
                v = x;
                cap = c;
            }
            v[n++] = (gen_files){.gen = g};
        }
        size_t len = strlen(comp);
        if (len > 4 && !strcmp(comp + len - 4, ".tmp")) v[i].tmp = true;
        else if (!strcmp(comp, "TOC.txt")) v[i].toc = true;
        for (int c = 0; c < 4; c++)
            if (!strcmp(comp, sst_components[c])) v[i].comps |= (uint8_t)(1u << c);
    }
    closedir(d);
    if (rc) {
        free(v);
        return rc;
    }
    if (n) qsort(v, n, sizeof *v, gen_cmp);
    *out = v;
    *nout = n;
    return 0;
}

/* A generation with every component but no TOC and no tmp name: nothing
 * proves it unfinished (the writer keeps TOC.txt.tmp until the TOC exists,
 * a deletion removes Data.db first), so the TOC was lost. It is rebuilt if
 * the whole SSTable verifies; otherwise the files stay untouched and
 * unloaded. Either way the operator is told. True = live now. */
static bool rescue_tocless(const char *dir, uint64_t gen, sib_log *log)
{
    sib_err e = {0};
    sstable *s = NULL;
    uint64_t blocks = 0;
    /* verified before the TOC exists: a crash meanwhile leaves the same state */
    int rc = sst_open(&s, dir, gen, &e);
    if (!rc) rc = sst_verify(s, &blocks, &e);
    if (s) sst_unref(s);
    if (!rc) rc = sst_toc_write(dir, gen, &e);
    if (!rc) {
        sib_log(log, SIB_WARN, "sstable: %s/%llu-TOC.txt was missing; the SSTable verified (%llu blocks and pages) "
                               "and its TOC was rebuilt", dir, (unsigned long long)gen, (unsigned long long)blocks);
        return true;
    }
    sib_log(log, SIB_WARN, "sstable: generation %llu in %s has no TOC.txt and does not verify (%s); its files are "
                           "kept but not loaded", (unsigned long long)gen, dir, e.msg);
    return false;
}

/* Unlinks every file of gen, its tmp names last (they are the proof the
 * generation is unfinished until the very end). */
static void remove_unfinished(const char *dir, uint64_t gen, sib_log *log)
{
    char *toc = sst_path(dir, gen, "TOC.txt", "");
    if (toc) unlink(toc);
    free(toc);
    for (int pass = 0; pass < 2; pass++)
        for (int c = 0; c <= 4; c++) {
            char *p = sst_path(dir, gen, c < 4 ? sst_components[c] : "TOC.txt", pass ? ".tmp" : "");
            if (p && unlink(p) == 0) sib_log(log, SIB_INFO, "sstable: removed leftover %s", p);
            free(p);
        }
    sst_fsync_dir(dir);
}

int sst_dir_scan(const char *dir, uint64_t **gens, size_t *n, uint64_t *max_gen, sib_log *log, sib_err *err)
{
    *gens = NULL;
    *n = 0;
    *max_gen = 0;
    gen_files *v = NULL;
    size_t nv = 0;
    int rc = scan_gens(dir, &v, &nv, max_gen, err);
    if (rc) return rc;
    uint64_t *live = malloc((nv ? nv : 1) * sizeof *live);
    if (!live) {
        free(v);
        return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    }
    size_t nl = 0;
    for (size_t i = 0; i < nv; i++) {
        const gen_files *g = &v[i];
        if (g->toc && (g->comps & 1)) { /* live; a stray tmp name of it is a leftover */
            if (g->tmp)
                for (int c = 0; c <= 4; c++) {
                    char *p = sst_path(dir, g->gen, c < 4 ? sst_components[c] : "TOC.txt", ".tmp");
                    if (p && unlink(p) == 0) sib_log(log, SIB_INFO, "sstable: removed leftover %s", p);
                    free(p);
                }
            live[nl++] = g->gen;
        } else if (g->toc) { /* a TOC without Data.db: a deletion (Data first, TOC last) was cut short */
            sib_log(log, SIB_WARN, "sstable: generation %llu in %s has a TOC but no Data.db: finishing its deletion",
                    (unsigned long long)g->gen, dir);
            sst_remove(dir, g->gen, NULL);
        } else if (g->tmp) { /* a write was cut short */
            remove_unfinished(dir, g->gen, log);
        } else if (g->comps == ALL_COMPS) {
            if (rescue_tocless(dir, g->gen, log)) live[nl++] = g->gen;
        } else {
            sib_log(log, SIB_WARN, "sstable: generation %llu in %s is incomplete and has no TOC.txt; its files are "
                                   "kept but not loaded", (unsigned long long)g->gen, dir);
        }
    }
    free(v);
    *gens = live;
    *n = nl;
    return 0;
}

int sst_files(const char *dir, uint64_t gen, char *out[5])
{
    /* deletion order: Data.db first (a TOC without it reads as a deletion
     * cut short), TOC.txt last */
    for (int c = 0; c < 4; c++) out[c] = sst_path(dir, gen, sst_components[c], "");
    out[4] = sst_path(dir, gen, "TOC.txt", "");
    for (int c = 0; c < 5; c++)
        if (!out[c]) {
            for (int k = 0; k < 5; k++) free(out[k]);
            return SIB_ENOMEM;
        }
    return 0;
}

int sst_remove(const char *dir, uint64_t gen, sib_err *err)
{
    int rc = 0;
    char *p = sst_path(dir, gen, sst_components[0], "");
    if (!p) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    if (unlink(p) && errno != ENOENT) rc = sib_err_errno(err, "sstable: unlink %s", p);
    free(p);
    /* Data.db's removal is durable before anything else goes */
    if (!rc && sst_fsync_dir(dir)) rc = sib_err_errno(err, "sstable: fsync %s", dir);
    for (int pass = 0; !rc && pass < 2; pass++)
        for (int c = pass ? 0 : 1; c <= 4; c++) {
            p = sst_path(dir, gen, c < 4 ? sst_components[c] : "TOC.txt", pass ? ".tmp" : "");
            if (p) unlink(p);
            free(p);
        }
    if (!rc && sst_fsync_dir(dir)) rc = sib_err_errno(err, "sstable: fsync %s", dir);
    return rc;
}
