/* prefault.c: memtable memory mapped and faulted in ahead of need, off the loop.
 *
 * A memtable's record arena grows by 2 MiB huge-page chunks, and its ordered
 * index doubles into a new zeroed array (memtable.c). The first write to a
 * fresh mapping faults its pages in, and the kernel zeroes each page on the
 * thread that touches it. On the loop that was the longest stall of a write
 * run that inserts new keys: during a 2,000,000-key insert run, one iteration
 * took 64 to 121 ms of CPU, nearly all of it in the kernel's clear_page for
 * the 32 MiB index the doubling had just mapped, and a record chunk's first
 * touch cost the loop another millisecond or more each (measured with a
 * per-iteration CPU probe and perf on this 2-core VM).
 *
 * So one thread (not niced: the loop waits for what it does not do) keeps
 * ready:
 *   - PF_CHUNKS record-arena chunks of SIB_HUGE_PAGE bytes;
 *   - one array of the size the index will need next, once memtable.c asks
 *     for it (st_prefault_want, when the index is 3/4 full, before the
 *     doubling at 7/8).
 * Every mapping comes from sib_huge_alloc and is faulted in by writing zeros,
 * so it is as zeroed as a fresh one and goes back with sib_huge_free like any
 * other: a memtable does not care where its memory came from.
 *
 * The loop never waits here: it only trylocks the mutex (held by the worker
 * for a few instructions, never across a fault), and whatever is not ready,
 * or not of the size asked for, the memtable maps inline as before.
 */
#define _GNU_SOURCE
#include "storage_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#define PF_CHUNKS 2 /* record chunks kept ready: 4 MiB, about 30k 100-byte rows */

struct st_prefault {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thr;
    bool stop;
    void *chunks[PF_CHUNKS]; /* ready SIB_HUGE_PAGE mappings */
    int nchunks;
    size_t want;  /* bytes of the array asked for (0: none) */
    void *sized;  /* a ready array of sized_len bytes, or NULL */
    size_t sized_len;
    uint64_t taken, inline_maps; /* mappings handed out, and asked for but not ready */
};

/* Maps n bytes (sib_huge_alloc) and faults every page in. */
static void *map_faulted(size_t n)
{
    uint8_t *p = sib_huge_alloc(n);
    if (!p) return NULL;
#ifdef MADV_POPULATE_WRITE
    if (!madvise(p, n, MADV_POPULATE_WRITE)) return p;
#endif
    for (size_t i = 0; i < n; i += 4096) ((volatile uint8_t *)p)[i] = 0; /* kernels before 5.14 */
    return p;
}

static void *pf_main(void *arg)
{
    st_prefault *pf = arg;
    sib_thread_setup("sib-prefault", false);
    pthread_mutex_lock(&pf->mu);
    while (!pf->stop) {
        if (pf->nchunks < PF_CHUNKS) {
            pthread_mutex_unlock(&pf->mu);
            void *c = map_faulted(SIB_HUGE_PAGE);
            pthread_mutex_lock(&pf->mu);
            if (!c) { /* out of memory: the memtable's own mapping will say so */
                pthread_cond_wait(&pf->cv, &pf->mu);
                continue;
            }
            pf->chunks[pf->nchunks++] = c;
            continue;
        }
        if (pf->want && !(pf->sized && pf->sized_len == pf->want)) {
            size_t n = pf->want;
            void *old = pf->sized;
            size_t old_len = pf->sized_len;
            pf->sized = NULL;
            pthread_mutex_unlock(&pf->mu);
            sib_huge_free(old, old_len);
            void *a = map_faulted(n);
            pthread_mutex_lock(&pf->mu);
            if (a && pf->want == n) {
                pf->sized = a;
                pf->sized_len = n;
            } else { /* asked for another size meanwhile (or taken) */
                pthread_mutex_unlock(&pf->mu);
                sib_huge_free(a, n);
                pthread_mutex_lock(&pf->mu);
                if (!a && pf->want == n) pf->want = 0; /* out of memory: drop the request */
            }
            continue;
        }
        pthread_cond_wait(&pf->cv, &pf->mu);
    }
    pthread_mutex_unlock(&pf->mu);
    return NULL;
}

int st_prefault_start(st_prefault **out, sib_err *err)
{
    st_prefault *pf = calloc(1, sizeof *pf);
    if (!pf) return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    pthread_mutex_init(&pf->mu, NULL);
    pthread_cond_init(&pf->cv, NULL);
    if (pthread_create(&pf->thr, NULL, pf_main, pf)) {
        pthread_cond_destroy(&pf->cv);
        pthread_mutex_destroy(&pf->mu);
        free(pf);
        return sib_err_set(err, SIB_EIO, "storage: cannot start the prefault thread");
    }
    *out = pf;
    return 0;
}

void st_prefault_stop(st_prefault *pf)
{
    if (!pf) return;
    pthread_mutex_lock(&pf->mu);
    pf->stop = true;
    pthread_cond_signal(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
    pthread_join(pf->thr, NULL);
    for (int i = 0; i < pf->nchunks; i++) sib_huge_free(pf->chunks[i], SIB_HUGE_PAGE);
    sib_huge_free(pf->sized, pf->sized_len);
    pthread_cond_destroy(&pf->cv);
    pthread_mutex_destroy(&pf->mu);
    free(pf);
}

void *st_prefault_take(st_prefault *pf, size_t n)
{
    if (!pf || pthread_mutex_trylock(&pf->mu)) return NULL;
    void *p = NULL;
    if (n == SIB_HUGE_PAGE && pf->nchunks) {
        p = pf->chunks[--pf->nchunks];
        pthread_cond_signal(&pf->cv); /* make the next one */
    } else if (pf->sized && pf->sized_len == n) {
        p = pf->sized;
        pf->sized = NULL;
        pf->want = 0;
    }
    if (p) pf->taken++;
    else pf->inline_maps++;
    pthread_mutex_unlock(&pf->mu);
    return p;
}

bool st_prefault_want(st_prefault *pf, size_t n)
{
    if (!pf || pthread_mutex_trylock(&pf->mu)) return false;
    if (pf->want != n) {
        pf->want = n;
        pthread_cond_signal(&pf->cv);
    }
    pthread_mutex_unlock(&pf->mu);
    return true;
}

void st_prefault_counts(st_prefault *pf, uint64_t *taken, uint64_t *inline_maps)
{
    *taken = *inline_maps = 0;
    if (!pf) return;
    pthread_mutex_lock(&pf->mu);
    *taken = pf->taken;
    *inline_maps = pf->inline_maps;
    pthread_mutex_unlock(&pf->mu);
}
