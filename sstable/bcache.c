/* bcache.c: the block cache, a bounded LRU of DECOMPRESSED Data.db blocks
 * shared by the SSTables of one owner (storage/ keeps one per storage object).
 *
 * Why: a point read needs a few hundred bytes of a block but used to LZ4
 * decompress the whole block (16 KiB by default) in every SSTable whose
 * bloom filter passed; under a point-read load that was about half of the
 * server's CPU. A hit costs one hash lookup and a copy of the partition.
 *
 *   key      (uid of the sstable, block index). The uid is unique per
 *            sst_open in the process (reader.c), never the path or the
 *            generation: a new SSTable that reuses a generation (drop and
 *            re-create) or a freed sstable's address gets a new uid, so it
 *            cannot find a stale block, whichever cache it is read through.
 *   value    the block's bytes after LZ4, crc-checked before they enter the
 *            cache (raw blocks are read in place from the mapping and never
 *            cached: there is nothing to save).
 *   bound    bytes = sum over cached entries of (block length + entry
 *            overhead) <= capacity after every insert; the least recently
 *            used entries go first.
 *
 * Reference counts: the cache holds one reference on each entry it links; a
 * reader (an sst_part) holds one on the block it is reading. Evicting or
 * forgetting an entry unlinks it (it stops counting against the bound and
 * can no longer be found) and drops the cache's reference; the memory goes
 * with the last reference, so a block in use is never freed under its
 * reader. Releasing never touches the cache object, so parts may even
 * outlive sst_bcache_destroy.
 *
 * Threads: the owning loop (inline point reads) and the read pool's
 * workers (storage/readpool.c) share the cache, so the table and the LRU
 * list are under one mutex, held only for a lookup, a link or an unlink
 * (never across a read or a decompression). Entry reference counts are
 * atomic: a part releases its block without the cache. Compaction workers
 * and tools read through sst_part_open, which bypasses the cache (and does
 * not pollute it with one-off sequential reads).
 */
#include "sst_int.h"

#include <pthread.h>
#include <stdlib.h>

struct sst_bcache {
    pthread_mutex_t mu;
    sst_bc_ent **buckets; /* chains by hash; power-of-two count */
    size_t nbuckets, n;
    sst_bc_ent *head, *tail; /* LRU list: head = most recently used */
    size_t bytes, capacity;
    uint64_t hits, misses, evictions;
};

#define BC_ENT_OVERHEAD (sizeof(sst_bc_ent) + 16) /* + a malloc header, roughly */

static size_t bc_hash(uint64_t id, uint32_t blk)
{
    uint64_t h = id * 0x9E3779B97F4A7C15ull ^ ((uint64_t)blk + 1) * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h ^ (h >> 29));
}

int sst_bcache_create(sst_bcache **out, size_t capacity, sib_err *err)
{
    *out = NULL;
    sst_bcache *bc = calloc(1, sizeof *bc);
    if (!bc || !(bc->buckets = calloc(1024, sizeof *bc->buckets))) {
        free(bc);
        return sib_err_set(err, SIB_ENOMEM, "sstable: out of memory (block cache)");
    }
    bc->nbuckets = 1024;
    bc->capacity = capacity;
    pthread_mutex_init(&bc->mu, NULL);
    *out = bc;
    return 0;
}

void sst_bc_release(sst_bc_ent *e)
{
    if (e && __atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) == 0) free(e);
}

static void lru_unlink(sst_bcache *bc, sst_bc_ent *e)
{
    if (e->prev) e->prev->next = e->next;
    else bc->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else bc->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(sst_bcache *bc, sst_bc_ent *e)
{
    e->prev = NULL;
    e->next = bc->head;
    if (bc->head) bc->head->prev = e;
    else bc->tail = e;
    bc->head = e;
}

/* Unlinks e from the table and the LRU list and drops the cache's reference. */
static void detach(sst_bcache *bc, sst_bc_ent *e)
{
    sst_bc_ent **pp = &bc->buckets[bc_hash(e->id, e->blk) & (bc->nbuckets - 1)];
    while (*pp != e) pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(bc, e);
    bc->n--;
    bc->bytes -= e->len + BC_ENT_OVERHEAD;
    sst_bc_release(e);
}

void sst_bcache_destroy(sst_bcache *bc)
{
    if (!bc) return;
    while (bc->head) detach(bc, bc->head);
    pthread_mutex_destroy(&bc->mu);
    free(bc->buckets);
    free(bc);
}

sst_bc_ent *sst_bc_get(sst_bcache *bc, uint64_t id, uint32_t blk)
{
    pthread_mutex_lock(&bc->mu);
    for (sst_bc_ent *e = bc->buckets[bc_hash(id, blk) & (bc->nbuckets - 1)]; e; e = e->hnext)
        if (e->id == id && e->blk == blk) {
            if (bc->head != e) {
                lru_unlink(bc, e);
                lru_push(bc, e);
            }
            __atomic_add_fetch(&e->refs, 1, __ATOMIC_RELAXED);
            bc->hits++;
            pthread_mutex_unlock(&bc->mu);
            return e;
        }
    bc->misses++;
    pthread_mutex_unlock(&bc->mu);
    return NULL;
}

sst_bc_ent *sst_bc_alloc(uint32_t len)
{
    sst_bc_ent *e = malloc(sizeof *e + (len ? len : 1));
    if (!e) return NULL;
    memset(e, 0, sizeof *e);
    e->len = len;
    e->refs = 1;
    return e;
}

static void grow(sst_bcache *bc)
{
    size_t nb = bc->nbuckets * 2;
    sst_bc_ent **b = calloc(nb, sizeof *b);
    if (!b) return; /* longer chains, still correct */
    for (size_t i = 0; i < bc->nbuckets; i++)
        for (sst_bc_ent *e = bc->buckets[i], *nx; e; e = nx) {
            nx = e->hnext;
            size_t h = bc_hash(e->id, e->blk) & (nb - 1);
            e->hnext = b[h];
            b[h] = e;
        }
    free(bc->buckets);
    bc->buckets = b;
    bc->nbuckets = nb;
}

void sst_bc_insert(sst_bcache *bc, sst_bc_ent *e, uint64_t id, uint32_t blk)
{
    pthread_mutex_lock(&bc->mu);
    SIB_ASSERT(e->refs >= 1 && !e->prev && !e->next && bc->head != e);
    e->id = id;
    e->blk = blk;
    /* Two readers may miss the same block at once: the second link would
     * shadow the first; keep one (the loser's reader still holds its copy). */
    for (sst_bc_ent *o = bc->buckets[bc_hash(id, blk) & (bc->nbuckets - 1)]; o; o = o->hnext)
        if (o->id == id && o->blk == blk) {
            pthread_mutex_unlock(&bc->mu);
            return;
        }
    if (bc->n >= bc->nbuckets) grow(bc);
    size_t h = bc_hash(id, blk) & (bc->nbuckets - 1);
    e->hnext = bc->buckets[h];
    bc->buckets[h] = e;
    __atomic_add_fetch(&e->refs, 1, __ATOMIC_RELAXED); /* the cache's reference */
    lru_push(bc, e);
    bc->n++;
    bc->bytes += e->len + BC_ENT_OVERHEAD;
    /* Oldest first; a block larger than the whole cache is detached at once
     * (its reader keeps it until it moves on). */
    while (bc->bytes > bc->capacity && bc->tail) {
        detach(bc, bc->tail);
        bc->evictions++;
    }
    pthread_mutex_unlock(&bc->mu);
}

void sst_bc_drop_id(sst_bcache *bc, uint64_t id)
{
    pthread_mutex_lock(&bc->mu);
    for (sst_bc_ent *e = bc->head, *nx; e; e = nx) {
        nx = e->next;
        if (e->id == id) detach(bc, e);
    }
    pthread_mutex_unlock(&bc->mu);
}

void sst_bcache_get_stats(const sst_bcache *bc, sst_bcache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!bc) return;
    pthread_mutex_lock((pthread_mutex_t *)&bc->mu);
    out->hits = bc->hits;
    out->misses = bc->misses;
    out->evictions = bc->evictions;
    out->entries = bc->n;
    out->bytes = bc->bytes;
    out->capacity = bc->capacity;
    pthread_mutex_unlock((pthread_mutex_t *)&bc->mu);
}
