/* writer.c: writes one SSTable generation.
 *
 * Data.db:
 *   | header (16, flags 1 = LZ4, param = block size)                      |
 *   | block*: be32 stored len (| 0x80000000 if raw), be32 logical len,     |
 *   |         be32 crc32c of the stored bytes, stored bytes                |
 *   | chunk table: be64 file offset per block, be64 logical length,       |
 *   |              be64 timestamp base, be32 block count                  |
 *   | footer (24): be64 table offset, be32 table length, be32 table crc,   |
 *   |              be32 magic, be32 crc of the footer's first 20 bytes     |
 * The logical stream (format.c's partitions, back to back) is cut into
 * blocks of block_size bytes regardless of partition boundaries: logical
 * offset x lives in block x / block_size.
 *
 * Index.db (version 3: sparse, an entry per run of partitions):
 *   | header (16) | page* | summary | footer (24, as Data's, magic SBIX)   |
 *   page:    be32 len, be32 crc32c, body (~512 bytes):
 *     be32 n, be64 base (logical Data offset of the page's first run),
 *     n x (be64 token, be32 rel) -- fixed width, so a lookup binary-searches
 *       the page in place; token = the run's first partition's, rel = run
 *       start - base, bit 31 set when that partition has clustering samples,
 *     be32 end (rel of the byte after the page's last run; a run's length
 *       is the next rel minus its own),
 *     samples: per flagged entry, in order: uvarint entry number, uvarint
 *       nsamples, nsamples x (uvarint cklen, ck, uvarint offset in partition),
 *       uvarint partition length (version 3)
 *   summary: uvarint npages, npages x (be64 first token, uvarint page
 *            offset, uvarint page length)
 * A run is the partitions from one entry to the next. A partition starts a
 * run (gets an entry) when it is the first, or has clustering samples, or
 * follows a run that starts with one, or starts index_run bytes (4 KiB,
 * like RocksDB's block-based index) or more past the run's start, or starts
 * in another Data block than the run's start -- but never when its token is
 * the previous partition's: a run of equal tokens stays in one run, and
 * pages break only at entries. So a wide partition is always alone in its
 * run (unless equal tokens follow it; its length is then in its samples
 * record), a run of small partitions spans at most ~4 KiB (+ its last
 * partition) and its partitions all start in one block. With 116-byte
 * partitions in 4 KiB blocks that is ~0.46 index bytes a partition, not 12.9.
 * The index holds no keys and no partition lengths: they are in Data,
 * where a lookup reads them anyway. A point lookup for (token, key) takes
 * the run of the last entry whose token is not above the token (the page:
 * the last whose first token is not above it) and walks it, comparing each
 * partition's key and passing over the others without decoding them
 * (format.c's sst_skip_partition); a scan walks every run, taking each
 * later partition's token from its key (the partitioner, Murmur3).
 * Version 2 (still read; written when index_run is 1, for older builds) is
 * the same layout with an entry for every partition and no partition length
 * after the samples: runs of one partition, whose lengths come from the
 * index.
 * Samples (the clustering index) are row starts at least index_interval
 * bytes apart, the first at the first regular row; only partitions longer
 * than index_interval carry them (and only at an entry: a wide partition of
 * a token shared with the one before it, which Murmur3 makes astronomically
 * rare, is read whole). A slice reads from the last sample at or before
 * its start.
 *
 * Filter.db: header (param = k) | be64 nbits | bits | be32 crc32c of all before
 * Statistics.db: header | body (see put_stats) | be32 crc32c of the body
 * TOC.txt: component names, one a line, written and renamed last.
 *
 * Invariants: nothing gets its final name before its content is fsynced;
 * TOC.txt.tmp exists from before the first component is renamed until
 * TOC.txt gets its name, after all the others. So at any crash a generation
 * has either its TOC (finished) or a file under a .tmp name (unfinished):
 * sst_dir_scan's proof for deleting it.
 */
#define _GNU_SOURCE
#include "sst_int.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

enum { C_DATA, C_INDEX, C_FILTER, C_STATS, C_NCOMP };

struct sst_writer {
    char *dir;
    uint64_t gen;
    sst_writer_opts o;
    char *tmp[C_NCOMP + 1], *fin[C_NCOMP + 1]; /* + TOC */
    int fd[C_NCOMP];
    bool finished;
    /* data */
    sib_buf blk, zbuf, rowenc;
    uint64_t file_off, logical;
    uint64_t *chunks;
    size_t nchunks, capchunks;
    /* current partition */
    bool in_part;
    uint64_t part_start, last_sample;
    sib_buf samples, pk;
    uint32_t nsamples;
    int64_t token;
    /* index */
    sib_buf page, psamp, summary; /* page entries, page samples area */
    uint32_t page_n, npages;
    uint64_t page_base;
    int64_t page_token, prev_token;
    uint64_t index_off, run_start;
    bool run_sampled; /* the current run starts with a partition that has samples */
    uint16_t version; /* 2 when index_run is 1: the dense format older builds read */
    int64_t (*token_of)(const void *key, size_t len);
    sst_bloom bloom;
    /* stats */
    sst_stats st;
    sib_buf first_key, last_key, min_ck, max_ck;
    bool have_ck;
    int32_t *ldts;
    size_t nldts, capldts;
};

static void note_ts(sst_writer *w, int64_t ts)
{
    if (ts == SST_NO_TS) return;
    if (w->st.min_ts == SST_NO_TS || ts < w->st.min_ts) w->st.min_ts = ts;
    if (w->st.max_ts == SST_NO_TS || ts > w->st.max_ts) w->st.max_ts = ts;
}

static void note_ldt(sst_writer *w, int32_t ldt)
{
    if (ldt == SST_NO_LDT) return;
    w->st.tombstones++;
    if (w->st.min_ldt == SST_NO_LDT || ldt < w->st.min_ldt) w->st.min_ldt = ldt;
    if (w->st.max_ldt == SST_NO_LDT || ldt > w->st.max_ldt) w->st.max_ldt = ldt;
    if (w->nldts == w->capldts) {
        size_t cap = w->capldts ? w->capldts * 2 : 256;
        int32_t *n = realloc(w->ldts, cap * sizeof *n);
        if (!n) return; /* histogram only: an estimate */
        w->ldts = n;
        w->capldts = cap;
    }
    w->ldts[w->nldts++] = ldt;
}

int sst_writer_create(sst_writer **out, const char *dir, uint64_t gen, const sst_writer_opts *o, sib_err *err)
{
    *out = NULL;
    sst_writer *w = calloc(1, sizeof *w);
    if (!w) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    w->o = *o;
    if (!w->o.block_size) w->o.block_size = 16384;
    if (w->o.block_size > SST_MAX_BLOCK / 2) w->o.block_size = SST_MAX_BLOCK / 2;
    if (!w->o.index_interval) w->o.index_interval = 16384;
    if (!w->o.index_run) w->o.index_run = 4096;
    w->version = w->o.index_run == 1 ? 2 : SST_VERSION;
    if (w->o.fp_chance <= 0) w->o.fp_chance = 0.01;
    w->gen = gen;
    w->token_of = sib_murmur3_token;
    w->st.min_ts = w->st.max_ts = SST_NO_TS;
    w->st.min_ldt = w->st.max_ldt = SST_NO_LDT;
    for (int i = 0; i < C_NCOMP; i++) w->fd[i] = -1;
    sib_buf *bufs[] = {&w->blk, &w->zbuf, &w->rowenc, &w->samples, &w->pk, &w->page, &w->psamp, &w->summary,
                       &w->first_key, &w->last_key, &w->min_ck, &w->max_ck};
    for (size_t i = 0; i < SIB_ARRAY_LEN(bufs); i++) sib_buf_init(bufs[i]);
    int rc = SIB_ENOMEM;
    if (!(w->dir = strdup(dir))) goto fail;
    for (int i = 0; i <= C_NCOMP; i++) {
        const char *c = i < C_NCOMP ? sst_components[i] : "TOC.txt";
        if (!(w->tmp[i] = sst_path(dir, gen, c, ".tmp")) || !(w->fin[i] = sst_path(dir, gen, c, ""))) goto fail;
    }
    if (sst_bloom_init(&w->bloom, w->o.expected_keys, w->o.fp_chance)) goto fail;
    for (int i = 0; i < C_NCOMP; i++) {
        w->fd[i] = open(w->tmp[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (w->fd[i] < 0) {
            rc = sib_err_errno(err, "sstable: create %s", w->tmp[i]);
            goto fail_nomsg;
        }
    }
    uint8_t h[SST_HDR_LEN];
    sst_put_hdr(h, SST_MAGIC_DATA, w->version, w->o.no_compress ? 0 : 1, (uint32_t)w->o.block_size);
    if (sst_write_full(w->fd[C_DATA], h, sizeof h)) goto fail_io;
    sst_put_hdr(h, SST_MAGIC_INDEX, w->version, 0, 0);
    if (sst_write_full(w->fd[C_INDEX], h, sizeof h)) goto fail_io;
    w->file_off = w->index_off = SST_HDR_LEN;
    *out = w;
    return 0;
fail_io:
    rc = sib_err_errno(err, "sstable: write %s", w->tmp[C_DATA]);
    goto fail_nomsg;
fail:
    sib_err_set(err, rc, "sstable: out of memory");
fail_nomsg:
    sst_writer_destroy(w);
    return rc;
}

/* ---- data blocks ---- */

static int flush_block(sst_writer *w, sib_err *err)
{
    if (!w->blk.len) return 0;
    size_t ulen = w->blk.len;
    const uint8_t *stored = w->blk.p;
    uint32_t slen = (uint32_t)ulen | SST_BLOCK_RAW;
    if (!w->o.no_compress) {
        int bound = LZ4_compressBound((int)ulen);
        uint8_t *z = (sib_buf_reset(&w->zbuf), sib_buf_reserve(&w->zbuf, (size_t)bound + 12));
        if (!z) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
        int n = LZ4_compress_default((const char *)w->blk.p, (char *)z + 12, (int)ulen, bound);
        if (n > 0 && (size_t)n < ulen) { /* keep raw when LZ4 does not help */
            stored = z + 12;
            slen = (uint32_t)n;
        }
    }
    size_t n = slen & ~SST_BLOCK_RAW;
    uint8_t hdr[12];
    put_be32(hdr, slen);
    put_be32(hdr + 4, (uint32_t)ulen);
    put_be32(hdr + 8, sib_crc32c(0, stored, n));
    if (w->nchunks == w->capchunks) {
        size_t cap = w->capchunks ? w->capchunks * 2 : 256;
        uint64_t *c = realloc(w->chunks, cap * sizeof *c);
        if (!c) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
        w->chunks = c;
        w->capchunks = cap;
    }
    w->chunks[w->nchunks++] = w->file_off;
    if (sst_write_full(w->fd[C_DATA], hdr, 12) || sst_write_full(w->fd[C_DATA], stored, n))
        return sib_err_errno(err, "sstable: write %s", w->tmp[C_DATA]);
    w->file_off += 12 + n;
    sib_buf_reset(&w->blk);
    return 0;
}

static int data_put(sst_writer *w, const uint8_t *p, size_t n, sib_err *err)
{
    while (n) {
        size_t room = w->o.block_size - w->blk.len, k = n < room ? n : room;
        sib_buf_append(&w->blk, p, k);
        if (w->blk.oom) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
        p += k;
        n -= k;
        w->logical += k;
        if (w->blk.len == w->o.block_size) {
            int rc = flush_block(w, err);
            if (rc) return rc;
        }
    }
    return 0;
}

static int data_put_buf(sst_writer *w, sib_buf *b, sib_err *err)
{
    if (b->oom) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    return data_put(w, b->p, b->len, err);
}

/* ---- partitions and rows ---- */

static void copy_buf(sib_buf *b, const uint8_t *p, size_t n)
{
    sib_buf_reset(b);
    if (n) sib_buf_append(b, p, n);
}

int sst_write_partition(sst_writer *w, const uint8_t *pk, size_t pklen, sst_del pdel, const sst_rt *rts, size_t nrt,
                        sib_err *err)
{
    SIB_ASSERT(!w->in_part);
    int64_t token = w->token_of(pk, pklen);
    if (w->st.partitions) {
        int c = token != w->token ? (token < w->token ? -1 : 1) : 0;
        if (!c) {
            size_t n = SIB_MIN(pklen, w->pk.len);
            c = n ? memcmp(pk, w->pk.p, n) : 0;
            if (!c) c = pklen < w->pk.len ? -1 : pklen > w->pk.len;
        }
        if (c <= 0) return sib_err_set(err, SIB_EINVAL, "sstable: partitions out of order");
    } else {
        w->st.first_token = token;
        copy_buf(&w->first_key, pk, pklen);
    }
    w->in_part = true;
    w->token = token;
    copy_buf(&w->pk, pk, pklen);
    w->part_start = w->logical;
    w->last_sample = 0;
    w->nsamples = 0;
    sib_buf_reset(&w->samples);
    sst_bloom_add(&w->bloom, token);
    w->st.partitions++;
    sib_buf *b = &w->rowenc;
    sib_buf_reset(b);
    sib_buf_uvarint(b, pklen);
    sib_buf_append(b, pk, pklen);
    uint8_t f = (pdel.ts != SST_NO_TS ? SP_PDEL : 0) | (nrt ? SP_RTS : 0);
    sib_buf_u8(b, f);
    if (pdel.ts != SST_NO_TS) {
        sst_enc_del(b, pdel, w->o.ts_base);
        note_ts(w, pdel.ts);
        note_ldt(w, pdel.ldt);
        w->st.has_partition_deletions = true;
    }
    if (nrt) {
        w->st.has_range_tombstones = true;
        sib_buf_uvarint(b, nrt);
        for (size_t i = 0; i < nrt; i++) {
            sst_enc_bound(b, &rts[i].start);
            sst_enc_bound(b, &rts[i].end);
            sst_enc_del(b, rts[i].del, w->o.ts_base);
            note_ts(w, rts[i].del.ts);
            note_ldt(w, rts[i].del.ldt);
        }
    }
    return data_put_buf(w, b, err);
}

static void row_stats(sst_writer *w, const sst_row *r)
{
    note_ts(w, r->marker_ts);
    if (r->marker_ts != SST_NO_TS && r->marker_ttl > 0) note_ldt(w, r->marker_ldt);
    else if (r->marker_ts != SST_NO_TS) w->st.live_forever++;
    if (r->del.ts != SST_NO_TS) {
        note_ts(w, r->del.ts);
        note_ldt(w, r->del.ldt);
    }
    for (uint32_t i = 0; i < r->ncdels; i++) {
        note_ts(w, r->cdels[i].del.ts);
        note_ldt(w, r->cdels[i].del.ldt);
    }
    for (uint32_t i = 0; i < r->ncells; i++) {
        note_ts(w, r->cells[i].ts);
        note_ldt(w, r->cells[i].ldt);
        w->st.live_forever += r->cells[i].ldt == SST_NO_LDT;
    }
    w->st.cells += r->ncells;
    if (r->is_static) return;
    w->st.rows++;
    if (!w->have_ck || sst_bound_cmp(r->ck, r->cklen, &(sst_bound){w->min_ck.p, (uint32_t)w->min_ck.len, true, false}, true) < 0)
        copy_buf(&w->min_ck, r->ck, r->cklen);
    if (!w->have_ck || sst_bound_cmp(r->ck, r->cklen, &(sst_bound){w->max_ck.p, (uint32_t)w->max_ck.len, true, false}, false) > 0)
        copy_buf(&w->max_ck, r->ck, r->cklen);
    w->have_ck = true;
}

int sst_write_row(sst_writer *w, const sst_row *r, sib_err *err)
{
    SIB_ASSERT(w->in_part);
    sib_buf *b = &w->rowenc;
    sib_buf_reset(b);
    uint8_t f = (uint8_t)(SR_ROW | (r->marker_ts != SST_NO_TS ? SR_MARKER : 0) | (r->del.ts != SST_NO_TS ? SR_DEL : 0) |
                          (r->ncdels ? SR_CDELS : 0));
    if (r->is_static) {
        sib_buf_u8(b, (uint8_t)(f | SR_STATIC)); /* first row of the partition */
    } else {
        uint64_t off = w->logical - w->part_start;
        if (!w->nsamples || off - w->last_sample >= w->o.index_interval) {
            sib_buf_uvarint(&w->samples, r->cklen);
            sib_buf_append(&w->samples, r->ck, r->cklen);
            sib_buf_uvarint(&w->samples, off);
            w->nsamples++;
            w->last_sample = off;
        }
        sib_buf_u8(b, f);
    }
    sst_enc_row_body(b, r, w->o.ts_base);
    row_stats(w, r);
    return data_put_buf(w, b, err);
}

/* Writes the pending page; end = logical offset just past its last partition. */
static int index_flush_page(sst_writer *w, uint64_t end, sib_err *err)
{
    if (!w->page_n) return 0;
    sib_buf *b = &w->rowenc; /* free between partitions */
    sib_buf_reset(b);
    sib_buf_be32(b, 0); /* len, crc: below */
    sib_buf_be32(b, 0);
    sib_buf_be32(b, w->page_n);
    sib_buf_be64(b, w->page_base);
    sib_buf_append(b, w->page.p, w->page.len);
    sib_buf_be32(b, (uint32_t)(end - w->page_base));
    if (w->psamp.len) sib_buf_append(b, w->psamp.p, w->psamp.len);
    if (b->oom || w->page.oom || w->psamp.oom) return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    put_be32(b->p, (uint32_t)(b->len - 8));
    put_be32(b->p + 4, sib_crc32c(0, b->p + 8, b->len - 8));
    if (sst_write_full(w->fd[C_INDEX], b->p, b->len)) return sib_err_errno(err, "sstable: write %s", w->tmp[C_INDEX]);
    sib_buf *s = &w->summary;
    sib_buf_be64(s, (uint64_t)w->page_token);
    sib_buf_uvarint(s, w->index_off);
    sib_buf_uvarint(s, b->len);
    w->npages++;
    w->index_off += b->len;
    w->page_n = 0;
    sib_buf_reset(&w->page);
    sib_buf_reset(&w->psamp);
    return s->oom ? sib_err_set(err, SIB_ENOMEM, "sstable: out of memory") : 0;
}

/* Whether the partition just written starts a new index run (see the top). */
static bool starts_run(const sst_writer *w, bool tie)
{
    if (w->st.partitions == 1 || w->version < 3) return true;
    if (tie) return false; /* a run of equal tokens stays in one run */
    uint64_t bs = w->o.block_size;
    return w->nsamples || w->run_sampled || w->part_start - w->run_start >= w->o.index_run ||
           w->part_start / bs != w->run_start / bs;
}

int sst_write_partition_end(sst_writer *w, sib_err *err)
{
    SIB_ASSERT(w->in_part);
    uint8_t end = 0;
    int rc = data_put(w, &end, 1, err);
    if (rc) return rc;
    w->in_part = false;
    uint64_t size = w->logical - w->part_start;
    if (size <= w->o.index_interval) w->nsamples = 0;
    bool tie = w->st.partitions > 1 && w->token == w->prev_token, entry = starts_run(w, tie);
    w->prev_token = w->token;
    if (!entry) { /* inside the run: its samples, if any, are not kept (equal tokens only) */
        if (w->logical - w->page_base > UINT32_MAX)
            return sib_err_set(err, SIB_EINVAL, "sstable: partitions of one token exceed 4 GiB");
        return 0;
    }
    /* A new page once this one is full (never inside a run: entries are
     * never between equal tokens); rel must also stay below bit 31. */
    if (w->page_n && !tie &&
        (w->page.len + w->psamp.len >= SST_INDEX_PAGE || w->part_start - w->page_base >= (1u << 30)) &&
        (rc = index_flush_page(w, w->part_start, err)))
        return rc;
    if (!w->page_n) w->page_base = w->part_start;
    uint64_t rel = w->part_start - w->page_base;
    if (rel >= (1u << 31)) return sib_err_set(err, SIB_EINVAL, "sstable: partitions of one token exceed 2 GiB");
    if (w->logical - w->page_base > UINT32_MAX) return sib_err_set(err, SIB_EINVAL, "sstable: a partition exceeds 4 GiB");
    if (!w->page_n) w->page_token = w->token;
    sib_buf_be64(&w->page, (uint64_t)w->token);
    sib_buf_be32(&w->page, (uint32_t)rel | (w->nsamples ? 0x80000000u : 0));
    if (w->nsamples) {
        sib_buf_uvarint(&w->psamp, w->page_n);
        sib_buf_uvarint(&w->psamp, w->nsamples);
        sib_buf_append(&w->psamp, w->samples.p, w->samples.len);
        if (w->version >= 3) sib_buf_uvarint(&w->psamp, size);
    }
    w->page_n++;
    w->run_start = w->part_start;
    w->run_sampled = w->nsamples != 0;
    return w->page.oom || w->psamp.oom ? sib_err_set(err, SIB_ENOMEM, "sstable: out of memory") : 0;
}

/* ---- finishing ---- */

static int put_footer(int fd, uint32_t magic, uint64_t off, const sib_buf *tbl)
{
    uint8_t f[SST_FOOTER_LEN];
    put_be64(f, off);
    put_be32(f + 8, (uint32_t)tbl->len);
    put_be32(f + 12, sib_crc32c(0, tbl->p, tbl->len));
    put_be32(f + 16, magic);
    put_be32(f + 20, sib_crc32c(0, f, 20));
    if (sst_write_full(fd, tbl->p, tbl->len)) return -1;
    return sst_write_full(fd, f, sizeof f);
}

static int finish_data(sst_writer *w, sib_err *err)
{
    int rc = flush_block(w, err);
    if (rc) return rc;
    sib_buf t;
    sib_buf_init(&t);
    for (size_t i = 0; i < w->nchunks; i++) sib_buf_be64(&t, w->chunks[i]);
    sib_buf_be64(&t, w->logical);
    sib_buf_be64(&t, (uint64_t)w->o.ts_base);
    sib_buf_be32(&t, (uint32_t)w->nchunks);
    if (t.oom) rc = sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    else if (put_footer(w->fd[C_DATA], SST_MAGIC_DATA, w->file_off, &t))
        rc = sib_err_errno(err, "sstable: write %s", w->tmp[C_DATA]);
    w->st.data_bytes = w->logical;
    w->st.data_file_bytes = w->file_off + t.len + SST_FOOTER_LEN;
    sib_buf_free(&t);
    return rc;
}

static int finish_index(sst_writer *w, sib_err *err)
{
    int rc = index_flush_page(w, w->logical, err);
    if (rc) return rc;
    sib_buf t;
    sib_buf_init(&t);
    sib_buf_uvarint(&t, w->npages);
    sib_buf_append(&t, w->summary.p, w->summary.len);
    if (t.oom || w->summary.oom) rc = sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    else if (put_footer(w->fd[C_INDEX], SST_MAGIC_INDEX, w->index_off, &t))
        rc = sib_err_errno(err, "sstable: write %s", w->tmp[C_INDEX]);
    sib_buf_free(&t);
    return rc;
}

static int finish_filter(sst_writer *w, sib_err *err)
{
    sib_buf t;
    sib_buf_init(&t);
    uint8_t *h = sib_buf_reserve(&t, SST_HDR_LEN);
    if (h) {
        sst_put_hdr(h, SST_MAGIC_FILTER, w->version, 0, w->bloom.k);
        t.len = SST_HDR_LEN;
    }
    sib_buf_be64(&t, w->bloom.nbits);
    sib_buf_append(&t, w->bloom.bits, w->bloom.nbits / 8);
    sib_buf_be32(&t, sib_crc32c(0, t.p, t.len));
    int rc = 0;
    if (t.oom) rc = sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    else if (sst_write_full(w->fd[C_FILTER], t.p, t.len)) rc = sib_err_errno(err, "sstable: write %s", w->tmp[C_FILTER]);
    sib_buf_free(&t);
    return rc;
}

static void put_key(sib_buf *b, const sib_buf *k)
{
    sib_buf_uvarint(b, k->len);
    sib_buf_append(b, k->p, k->len);
}

/* Statistics body: be64 min_ts, max_ts; be32 min_ldt, max_ldt; be64
 * partitions, rows, cells, tombstones; 32 x be64 ldt histogram; be64
 * data_bytes, data_file_bytes; be32 level; be64 repaired_at; be64 clpos seg,
 * off; u8 flags (1 partition deletions, 2 range tombstones, 4 has ck range,
 * 8 live_forever follows); be64 first token, last token; first key, last
 * key, min ck, max ck (uvarint len + bytes each); be64 live_forever (files
 * written before it was counted end after max ck, without flag 8). */
static int finish_stats(sst_writer *w, sib_err *err)
{
    sst_stats *st = &w->st;
    if (st->tombstones && w->nldts) {
        double span = (double)st->max_ldt - (double)st->min_ldt + 1;
        for (size_t i = 0; i < w->nldts; i++) {
            int bin = (int)(((double)w->ldts[i] - (double)st->min_ldt) / span * SST_LDT_BINS);
            st->ldt_bins[bin < 0 ? 0 : bin >= SST_LDT_BINS ? SST_LDT_BINS - 1 : bin]++;
        }
    }
    sib_buf t;
    sib_buf_init(&t);
    uint8_t *h = sib_buf_reserve(&t, SST_HDR_LEN);
    if (h) {
        sst_put_hdr(h, SST_MAGIC_STATS, w->version, 0, 0);
        t.len = SST_HDR_LEN;
    }
    sib_buf_be64(&t, (uint64_t)st->min_ts);
    sib_buf_be64(&t, (uint64_t)st->max_ts);
    sib_buf_be32(&t, (uint32_t)st->min_ldt);
    sib_buf_be32(&t, (uint32_t)st->max_ldt);
    uint64_t counts[] = {st->partitions, st->rows, st->cells, st->tombstones};
    for (size_t i = 0; i < 4; i++) sib_buf_be64(&t, counts[i]);
    for (int i = 0; i < SST_LDT_BINS; i++) sib_buf_be64(&t, st->ldt_bins[i]);
    sib_buf_be64(&t, st->data_bytes);
    sib_buf_be64(&t, st->data_file_bytes);
    sib_buf_be32(&t, w->o.level);
    sib_buf_be64(&t, w->o.repaired_at);
    sib_buf_be64(&t, w->o.clpos.seg);
    sib_buf_be64(&t, w->o.clpos.off);
    sib_buf_u8(&t, (uint8_t)((st->has_partition_deletions ? 1 : 0) | (st->has_range_tombstones ? 2 : 0) |
                             (w->have_ck ? 4 : 0) | 8));
    sib_buf_be64(&t, (uint64_t)st->first_token);
    sib_buf_be64(&t, (uint64_t)w->token);
    put_key(&t, &w->first_key);
    put_key(&t, &w->pk);
    put_key(&t, &w->min_ck);
    put_key(&t, &w->max_ck);
    sib_buf_be64(&t, st->live_forever);
    sib_buf_be32(&t, sib_crc32c(0, t.p + SST_HDR_LEN, t.len - SST_HDR_LEN));
    int rc = 0;
    if (t.oom) rc = sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    else if (sst_write_full(w->fd[C_STATS], t.p, t.len)) rc = sib_err_errno(err, "sstable: write %s", w->tmp[C_STATS]);
    sib_buf_free(&t);
    return rc;
}

uint64_t sst_writer_data_bytes(const sst_writer *w) { return w->file_off; }

void sst_writer_set_token_fn(sst_writer *w, int64_t (*fn)(const void *key, size_t len)) { w->token_of = fn; }

/* The TOC under its tmp name, fsynced. From its creation until its rename
 * this tmp name is what proves the generation unfinished to sst_dir_scan,
 * so it is created before any component takes its final name. */
static int toc_tmp_write(const char *path, sib_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return sib_err_errno(err, "sstable: create %s", path);
    char toc[128];
    int n = snprintf(toc, sizeof toc, "%s\n%s\n%s\n%s\nTOC.txt\n", sst_components[0], sst_components[1],
                     sst_components[2], sst_components[3]);
    int rc = 0;
    if (sst_write_full(fd, toc, (size_t)n) || fsync(fd)) rc = sib_err_errno(err, "sstable: write %s", path);
    close(fd);
    return rc;
}

int sst_toc_write(const char *dir, uint64_t gen, sib_err *err)
{
    /* not ".tmp": that suffix tells the sweep the generation is unfinished,
     * and this rebuilds the TOC of one that is complete */
    char *tmp = sst_path(dir, gen, "TOC.txt", ".rebuild"), *fin = sst_path(dir, gen, "TOC.txt", "");
    int rc = tmp && fin ? toc_tmp_write(tmp, err) : sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    if (!rc && rename(tmp, fin)) rc = sib_err_errno(err, "sstable: rename %s", tmp);
    if (!rc && sst_fsync_dir(dir)) rc = sib_err_errno(err, "sstable: fsync %s", dir);
    if (rc && tmp) unlink(tmp);
    free(tmp);
    free(fin);
    return rc;
}

/* Offset of the level in a Statistics.db body (see finish_stats). */
#define STATS_LEVEL_OFF (8 + 8 + 4 + 4 + 4 * 8 + SST_LDT_BINS * 8 + 8 + 8)

/* gen's Statistics.db with the level set to level, written whole to fd. */
static int relevel_stats(const char *src, int fd, uint32_t level, sib_err *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return sib_err_errno(err, "sstable: open %s", src);
    struct stat stt;
    uint8_t *b = NULL;
    int rc = 0;
    if (fstat(in, &stt)) rc = sib_err_errno(err, "sstable: stat %s", src);
    else if ((size_t)stt.st_size < SST_HDR_LEN + STATS_LEVEL_OFF + 4 + 4 || stt.st_size > (1 << 26))
        rc = sib_err_set(err, SIB_ECORRUPT, "sstable: %s: bad size %lld", src, (long long)stt.st_size);
    else if (!(b = malloc((size_t)stt.st_size))) rc = sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    else if (pread(in, b, (size_t)stt.st_size, 0) != stt.st_size) rc = sib_err_errno(err, "sstable: read %s", src);
    close(in);
    size_t n = (size_t)stt.st_size;
    if (!rc && (!sst_check_hdr(b, SST_MAGIC_STATS, NULL, NULL) ||
                sib_crc32c(0, b + SST_HDR_LEN, n - SST_HDR_LEN - 4) != get_be32(b + n - 4)))
        rc = sib_err_set(err, SIB_ECORRUPT, "sstable: %s: checksum mismatch", src);
    if (!rc) {
        put_be32(b + SST_HDR_LEN + STATS_LEVEL_OFF, level);
        put_be32(b + n - 4, sib_crc32c(0, b + SST_HDR_LEN, n - SST_HDR_LEN - 4));
        if (sst_write_full(fd, b, n) || fsync(fd)) rc = sib_err_errno(err, "sstable: write Statistics.db");
    }
    free(b);
    return rc;
}

int sst_link_relevel(const char *dir, uint64_t gen, uint64_t newgen, uint32_t level, sib_err *err)
{
    char *toc_tmp = sst_path(dir, newgen, "TOC.txt", ".tmp"), *toc = sst_path(dir, newgen, "TOC.txt", "");
    char *from[C_NCOMP] = {0}, *to[C_NCOMP] = {0}, *stats_tmp = sst_path(dir, newgen, sst_components[C_STATS], ".tmp");
    bool ok = toc_tmp && toc && stats_tmp;
    for (int i = 0; i < C_NCOMP; i++) {
        from[i] = sst_path(dir, gen, sst_components[i], "");
        to[i] = sst_path(dir, newgen, sst_components[i], "");
        ok = ok && from[i] && to[i];
    }
    int rc = ok ? toc_tmp_write(toc_tmp, err) : sib_err_set(err, SIB_ENOMEM, "sstable: out of memory");
    for (int i = 0; !rc && i < C_NCOMP; i++) {
        if (i != C_STATS) {
            if (link(from[i], to[i])) rc = sib_err_errno(err, "sstable: link %s", from[i]);
            continue;
        }
        int fd = open(stats_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            rc = sib_err_errno(err, "sstable: create %s", stats_tmp);
            continue;
        }
        rc = relevel_stats(from[i], fd, level, err);
        close(fd);
        if (!rc && rename(stats_tmp, to[i])) rc = sib_err_errno(err, "sstable: rename %s", stats_tmp);
    }
    if (!rc && sst_fsync_dir(dir)) rc = sib_err_errno(err, "sstable: fsync %s", dir);
    if (!rc && rename(toc_tmp, toc)) rc = sib_err_errno(err, "sstable: rename %s", toc_tmp);
    if (!rc && sst_fsync_dir(dir)) rc = sib_err_errno(err, "sstable: fsync %s", dir);
    if (rc && ok) { /* nothing of newgen stays: its links, its Statistics, the TOC last */
        for (int i = 0; i < C_NCOMP; i++) unlink(to[i]);
        unlink(stats_tmp);
        unlink(toc);
        unlink(toc_tmp);
    }
    for (int i = 0; i < C_NCOMP; i++) free(from[i]), free(to[i]);
    free(stats_tmp);
    free(toc_tmp);
    free(toc);
    return rc;
}

int sst_writer_finish(sst_writer *w, uint64_t *bytes_out, sib_err *err)
{
    SIB_ASSERT(!w->in_part);
    int rc;
    if ((rc = finish_data(w, err)) || (rc = finish_index(w, err)) || (rc = finish_filter(w, err)) ||
        (rc = finish_stats(w, err)))
        return rc;
    uint64_t total = 0;
    for (int i = 0; i < C_NCOMP; i++) {
        off_t end = lseek(w->fd[i], 0, SEEK_END);
        if (end > 0) total += (uint64_t)end;
        if (fsync(w->fd[i])) return sib_err_errno(err, "sstable: fsync %s", w->tmp[i]);
        close(w->fd[i]);
        w->fd[i] = -1;
    }
    /* TOC.txt.tmp exists (durably) before any component is renamed: a crash
     * during the renames leaves it as the proof of an unfinished write */
    if ((rc = toc_tmp_write(w->tmp[C_NCOMP], err))) return rc;
    if (sst_fsync_dir(w->dir)) return sib_err_errno(err, "sstable: fsync %s", w->dir);
    for (int i = 0; i < C_NCOMP; i++)
        if (rename(w->tmp[i], w->fin[i])) return sib_err_errno(err, "sstable: rename %s", w->tmp[i]);
    /* the components' names must be durable before the TOC makes them live */
    if (sst_fsync_dir(w->dir)) return sib_err_errno(err, "sstable: fsync %s", w->dir);
    if (rename(w->tmp[C_NCOMP], w->fin[C_NCOMP])) return sib_err_errno(err, "sstable: rename %s", w->tmp[C_NCOMP]);
    if (sst_fsync_dir(w->dir)) return sib_err_errno(err, "sstable: fsync %s", w->dir);
    w->finished = true;
    if (bytes_out) *bytes_out = total;
    return 0;
}

void sst_writer_destroy(sst_writer *w)
{
    if (!w) return;
    for (int i = 0; i < C_NCOMP; i++)
        if (w->fd[i] >= 0) close(w->fd[i]);
    if (!w->finished) {
        /* the TOC first (nothing left is live), TOC.txt.tmp last: until it
         * goes, sst_dir_scan knows the rest for an unfinished write */
        if (w->fin[C_NCOMP]) unlink(w->fin[C_NCOMP]);
        for (int i = 0; i < C_NCOMP; i++) {
            if (w->fin[i]) unlink(w->fin[i]);
            if (w->tmp[i]) unlink(w->tmp[i]);
        }
        if (w->tmp[C_NCOMP]) unlink(w->tmp[C_NCOMP]);
    }
    for (int i = 0; i <= C_NCOMP; i++) {
        free(w->tmp[i]);
        free(w->fin[i]);
    }
    sib_buf *bufs[] = {&w->blk, &w->zbuf, &w->rowenc, &w->samples, &w->pk, &w->page, &w->psamp, &w->summary,
                       &w->first_key, &w->last_key, &w->min_ck, &w->max_ck};
    for (size_t i = 0; i < SIB_ARRAY_LEN(bufs); i++) sib_buf_free(bufs[i]);
    sst_bloom_free(&w->bloom);
    free(w->chunks);
    free(w->ldts);
    free(w->dir);
    free(w);
}
