/* lru.c: a cache of values keyed by 16-byte ids, bounded by the sum of the
 * values' weights in bytes (the prepared-statement cache: 300,000 distinct
 * PREPAREs used to keep 2.47 GB alive).
 *
 * Layout: a chained hash table (buckets of entry pointers, chained through
 * hnext) for lookups, and one doubly linked list in recency order (head =
 * most recently used) for eviction. Both are O(1) per operation; the table
 * doubles when it holds more entries than buckets. Chaining, not open
 * addressing, so an eviction unlinks an entry without tombstones.
 */
#include "common.h"

#include <stdlib.h>

typedef struct lru_entry {
    uint8_t key[16];
    void *value;
    size_t weight;
    struct lru_entry *hnext;       /* bucket chain */
    struct lru_entry *prev, *next; /* recency list */
} lru_entry;

struct sib_lru {
    size_t capacity, weight, count;
    uint64_t evictions;
    lru_entry **buckets;
    size_t nbuckets; /* a power of two */
    lru_entry *head, *tail;
    sib_lru_free_fn free_fn;
    void *ctx;
};

static size_t bucket_of(const sib_lru *l, const uint8_t key[16])
{
    /* Keys are hashes already (murmur3 or MD5 of the statement). */
    return (size_t)(get_le64(key) ^ get_le64(key + 8)) & (l->nbuckets - 1);
}

sib_lru *sib_lru_create(size_t capacity, sib_lru_free_fn free_fn, void *ctx)
{
    sib_lru *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->nbuckets = 64;
    l->buckets = calloc(l->nbuckets, sizeof *l->buckets);
    if (!l->buckets) {
        free(l);
        return NULL;
    }
    l->capacity = capacity;
    l->free_fn = free_fn;
    l->ctx = ctx;
    return l;
}

void sib_lru_destroy(sib_lru *l)
{
    if (!l) return;
    for (lru_entry *e = l->head, *next; e; e = next) {
        next = e->next;
        if (l->free_fn) l->free_fn(l->ctx, e->value);
        free(e);
    }
    free(l->buckets);
    free(l);
}

static void list_unlink(sib_lru *l, lru_entry *e)
{
    if (e->prev) e->prev->next = e->next;
    else l->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else l->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_head(sib_lru *l, lru_entry *e)
{
    e->prev = NULL;
    e->next = l->head;
    if (l->head) l->head->prev = e;
    l->head = e;
    if (!l->tail) l->tail = e;
}

static lru_entry **find_slot(sib_lru *l, const uint8_t key[16])
{
    lru_entry **pp = &l->buckets[bucket_of(l, key)];
    while (*pp && memcmp((*pp)->key, key, 16)) pp = &(*pp)->hnext;
    return pp;
}

void *sib_lru_get(sib_lru *l, const uint8_t key[16])
{
    lru_entry *e = *find_slot(l, key);
    if (!e) return NULL;
    if (l->head != e) {
        list_unlink(l, e);
        list_push_head(l, e);
    }
    return e->value;
}

static void evict_tail(sib_lru *l)
{
    lru_entry *e = l->tail;
    lru_entry **pp = find_slot(l, e->key);
    SIB_ASSERT(*pp == e);
    *pp = e->hnext;
    list_unlink(l, e);
    l->weight -= e->weight;
    l->count--;
    l->evictions++;
    if (l->free_fn) l->free_fn(l->ctx, e->value);
    free(e);
}

/* Doubles the bucket array; on OOM the chains just get longer. */
static void grow(sib_lru *l)
{
    size_t n = l->nbuckets * 2;
    lru_entry **b = calloc(n, sizeof *b);
    if (!b) return;
    lru_entry **old = l->buckets;
    size_t oldn = l->nbuckets;
    l->buckets = b;
    l->nbuckets = n;
    for (size_t i = 0; i < oldn; i++)
        for (lru_entry *e = old[i], *next; e; e = next) {
            next = e->hnext;
            size_t j = bucket_of(l, e->key);
            e->hnext = b[j];
            b[j] = e;
        }
    free(old);
}

int sib_lru_put(sib_lru *l, const uint8_t key[16], void *value, size_t weight)
{
    SIB_ASSERT(!*find_slot(l, key));
    if (weight > l->capacity) return SIB_ETOOBIG;
    lru_entry *e = calloc(1, sizeof *e);
    if (!e) return SIB_ENOMEM;
    memcpy(e->key, key, 16);
    e->value = value;
    e->weight = weight;
    while (l->weight + weight > l->capacity) evict_tail(l);
    if (l->count + 1 > l->nbuckets) grow(l);
    size_t j = bucket_of(l, key);
    e->hnext = l->buckets[j];
    l->buckets[j] = e;
    list_push_head(l, e);
    l->weight += weight;
    l->count++;
    return 0;
}

size_t sib_lru_count(const sib_lru *l) { return l->count; }
size_t sib_lru_weight(const sib_lru *l) { return l->weight; }
size_t sib_lru_capacity(const sib_lru *l) { return l->capacity; }
uint64_t sib_lru_evictions(const sib_lru *l) { return l->evictions; }
