/* sst_int.h: private interfaces between the sstable/ files.
 *
 *   format.c  constants, row/partition codec, bloom filter, file helpers
 *   writer.c  sst_writer: Data blocks, Index pages + summary, Filter, Statistics, TOC
 *   reader.c  sstable: open, point lookups, clustering index, scans, directory
 *   bcache.c  sst_bcache: the shared LRU cache of decompressed Data blocks
 */
#ifndef SIB_SST_INT_H
#define SIB_SST_INT_H

#include "sstable.h"

#define SST_VERSION 3 /* written: 3 = sparse index (an entry per run of partitions, writer.c) */
#define SST_VERSION_MIN 2 /* read: 2 = an index entry per partition (a v3 file with runs of one) */
#define SST_MAGIC_DATA 0x53424454u  /* "SBDT" */
#define SST_MAGIC_INDEX 0x53424958u /* "SBIX" */
#define SST_MAGIC_FILTER 0x5342464Cu /* "SBFL" */
#define SST_MAGIC_STATS 0x53425354u /* "SBST" */
#define SST_HDR_LEN 16              /* magic, version, flags, u32 param, crc */
#define SST_FOOTER_LEN 24
#define SST_BLOCK_RAW 0x80000000u   /* block length flag: stored uncompressed */
#define SST_INDEX_PAGE 512 /* index page target: ~40 entries, binary-searched in place */
#define SST_MAX_BLOCK (1u << 24)

/* partition header flags */
enum { SP_PDEL = 1, SP_RTS = 2 };
/* row flags (0 = end of partition) */
enum { SR_ROW = 1, SR_MARKER = 2, SR_DEL = 4, SR_CDELS = 8, SR_STATIC = 16 };
/* cell flags */
enum { SC_PATH = 1, SC_LDT = 2, SC_VAL = 4 };

/* codec (format.c) */
void sst_enc_bound(sib_buf *b, const sst_bound *bd);
void sst_enc_row_body(sib_buf *b, const sst_row *r, int64_t ts_base);
bool sst_dec_bound(sib_rd *r, sst_bound *bd);
void sst_enc_del(sib_buf *b, sst_del d, int64_t ts_base);
bool sst_dec_del(sib_rd *r, sst_del *d, int64_t ts_base);

/* A decoded row with its arrays (reader scratch). */
typedef struct sst_rowbuf {
    sst_row *rows;
    size_t nrows, caprows;
    sst_cell *cells;
    size_t ncells, capcells;
    sst_cdel *cdels;
    size_t ncdels, capcdels;
} sst_rowbuf;
void sst_rowbuf_reset(sst_rowbuf *rb);
void sst_rowbuf_free(sst_rowbuf *rb);
/* Decodes one row body (after its flags byte) into rb; cells/cdels pointers of
 * rows are fixed up by sst_rowbuf_fix once a run is complete. */
int sst_dec_row_body(sib_rd *r, uint8_t flags, bool is_static, sst_rowbuf *rb, int64_t ts_base);
void sst_rowbuf_fix(sst_rowbuf *rb);
/* The partition that starts at b (n bytes available): its key and length,
 * without decoding its rows. False when it does not end within n bytes or
 * is malformed. */
bool sst_skip_partition(const uint8_t *b, size_t n, const uint8_t **pk, uint32_t *pklen, size_t *used);

/* The partitioner: Murmur3 (sib_murmur3_token) unless replaced before the
 * first partition is written / the first lookup. Tests use another one to
 * make equal tokens, which Murmur3's 64 bits never give on demand. */
void sst_writer_set_token_fn(sst_writer *w, int64_t (*fn)(const void *key, size_t len));
void sst_set_token_fn(sstable *s, int64_t (*fn)(const void *key, size_t len));

/* files (format.c) */
int sst_write_full(int fd, const void *p, size_t n);
int sst_pread_full(int fd, void *p, size_t n, uint64_t off);
int sst_fsync_dir(const char *dir);
char *sst_path(const char *dir, uint64_t gen, const char *component, const char *suffix);
void sst_put_hdr(uint8_t h[SST_HDR_LEN], uint32_t magic, uint16_t version, uint16_t flags, uint32_t param);
bool sst_check_hdr(const uint8_t h[SST_HDR_LEN], uint32_t magic, uint16_t *flags, uint32_t *param);

extern const char *const sst_components[4]; /* Data, Index, Filter, Statistics */
/* Writes <gen>-TOC.txt of a complete generation (under <gen>-TOC.txt.rebuild,
 * fsync, rename, directory fsync: never under a .tmp name, which would mark
 * the generation unfinished if a crash came first). */
int sst_toc_write(const char *dir, uint64_t gen, sib_err *err);

/* block cache (bcache.c); see the top of bcache.c. One thread only. */
typedef struct sst_bc_ent {
    uint64_t id;  /* the sstable's uid */
    uint32_t blk; /* block index in Data.db */
    uint32_t len; /* bytes in data */
    int refs;     /* readers + 1 while linked in the cache */
    struct sst_bc_ent *hnext, *prev, *next;
    uint8_t data[];
} sst_bc_ent;
/* A held reference to block blk of id, or NULL (a miss). Counts hit/miss. */
sst_bc_ent *sst_bc_get(sst_bcache *bc, uint64_t id, uint32_t blk);
/* A new unlinked entry of len bytes, held once by the caller (NULL on OOM). */
sst_bc_ent *sst_bc_alloc(uint32_t len);
/* Links e (filled in) under (id, blk); the caller keeps its reference.
 * Evicts least recently used entries down to the bound. */
void sst_bc_insert(sst_bcache *bc, sst_bc_ent *e, uint64_t id, uint32_t blk);
/* Drops a reference (e may be NULL); the last one frees the entry. */
void sst_bc_release(sst_bc_ent *e);
/* Unlinks every entry of id. */
void sst_bc_drop_id(sst_bcache *bc, uint64_t id);

#endif
