/* store.c: the storage object: tables by id, the write path, replay,
 * truncate/drop and stats.
 *
 * Write path (storage_apply): validate every mutation, frame them as ONE
 * commitlog entry, write it (page cache), apply each mutation to its table's
 * memtable, then acknowledge per the sync mode (at once in periodic mode,
 * after the sync thread's fsync otherwise). Writes are visible to reads as
 * soon as they are in the log, as in Cassandra's periodic mode; the ack is
 * what waits for the fsync. With a loop the entry is only queued
 * (clog_entry_queue): the iteration's entries are written together at its
 * end, and apply_logged then fills the memtables, so a write is never
 * visible before its entry is in the file. TRUNCATE/DROP records and
 * storage_sync/storage_flush first write out what is queued (clog_flush),
 * which keeps log order = memtable order.
 *
 * Commitlog entry payload (inside commitlog.c's framing):
 *   | u8 version (1) | u8 kind | body                                      |
 *   kind 1 MUTATIONS: uvarint n, n x (uvarint len, serialized mutation)
 *   kind 2 TRUNCATE:  table_id[16]
 *   kind 3 DROP:      table_id[16]
 * A payload is fully validated before any of it is applied, so a batch is
 * all-or-nothing on replay too. Replay applies truncate/drop in log order:
 * the table's memtable is emptied (or forgotten), so earlier writes do not
 * come back, and later ones do.
 *
 * Tables live in an open-addressing hash map keyed by the 16-byte id.
 *
 * With a data_dir, storage_open first loads every table directory's live
 * SSTables (flush.c), then opens the commitlog with segment ids above all
 * their recorded positions; replay skips what an SSTable already holds and
 * turns truncate/drop records into SSTable deletions (flush.c's header).
 * TRUNCATE/DROP at run time log their record first, then (auto_snapshot:
 * hard-link the SSTables into snapshots/ first) delete the table's SSTables
 * and cancel its compactions: a crash in between is repaired by replaying
 * the record. DROP also removes the table directory once it is empty.
 *
 * Compaction (compact.c) starts after the flush thread and stops before it;
 * its counters (flush and compaction bytes) live in `totals` so write
 * amplification survives dropped tables.
 */
#define _GNU_SOURCE
#include "storage_int.h"

#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <stdlib.h>
#include <time.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <unistd.h>

/* The delayed write rate of the loop-less path (write_delay). */
typedef struct st_wdelay {
    double rate;          /* bytes/s writes may go at while delayed; 0 = not delayed */
    int64_t next_ns;      /* when the next write may go (monotonic) */
    size_t last_frozen;   /* memtables frozen at the last adjustment */
    uint64_t delayed, waited_ns; /* writes that slept, and how long in all (stats) */
} st_wdelay;

/* A write held back on the loop while flushes are behind (defer_write). */
typedef struct st_deferred {
    struct st_deferred *next;
    st_mutation **muts; /* copies: the caller's are its own again on return */
    size_t n, bytes;
    unsigned flags;
    st_done_fn done;
    void *ctx;
    int64_t since_ns, due_ns;
} st_deferred;

struct storage {
    storage_opts o;
    clog *cl;
    st_flusher *fl;
    st_compactor *cm;
    sst_bcache *bc;      /* decompressed Data blocks of every table; NULL = none */
    st_readpool *rp;     /* read pool (readpool.c); NULL without a loop */
    st_prefault *pf;     /* memtable memory faulted in ahead (prefault.c); NULL without a loop */
    uint64_t epochs;     /* table uid/epoch source */
    uint64_t layout_moves; /* old-layout directories moved by this process (layout.c) */
    storage_stats totals; /* flush/compaction counters that outlive tables */
    uint64_t applies;
    sst_clpos replay_pos; /* position of the entry being replayed */
    bool replayed, written; /* replay must come first, and once */
    bool backlog_full; /* frozen memtables over their bound: writes are refused (backlog_check) */
    int64_t backlog_retry_ns; /* meanwhile, failed flushes are retried once a second (monotonic) */
    st_wdelay wd;      /* the delayed write rate of the loop-less path (write_delay) */
    /* with a loop: writes deferred on a timer, in arrival order (defer_write) */
    st_deferred *dq, *dq_tail;
    size_t dq_bytes;
    /* memtables as last counted (count_memtables): waiting for flush, all
     * (active and frozen), and how many are frozen */
    size_t frozen_bytes, mem_bytes, nfrozen;
    ev_timer dtimer;
    st_table **map; /* capacity a power of two; NULL = empty */
    size_t cap, n;
};

/* ---- table map ---- */

static size_t id_hash(const uint8_t id[16])
{
    uint64_t h = get_le64(id) ^ (get_le64(id + 8) * 0x9E3779B97F4A7C15ull);
    return (size_t)(h ^ (h >> 29));
}

/* Two words compared, not a memcmp call per probe: every write looks its
 * table up, and a probe past another table (ids are random) was a call. */
static bool id_eq(const uint8_t a[16], const uint8_t b[16])
{
    return !((get_le64(a) ^ get_le64(b)) | (get_le64(a + 8) ^ get_le64(b + 8)));
}

static size_t map_slot(const storage *s, const uint8_t id[16])
{
    size_t m = s->cap - 1, i = id_hash(id) & m;
    while (s->map[i] && !id_eq(s->map[i]->id, id)) i = (i + 1) & m;
    return i;
}

static int map_grow(storage *s)
{
    size_t oc = s->cap;
    st_table **om = s->map;
    size_t cap = oc ? oc * 2 : 16;
    st_table **nm = calloc(cap, sizeof *nm);
    if (!nm) return SIB_ENOMEM;
    s->map = nm;
    s->cap = cap;
    for (size_t i = 0; i < oc; i++)
        if (om[i]) s->map[map_slot(s, om[i]->id)] = om[i];
    free(om);
    return 0;
}

st_table *storage_table_find(storage *s, const uint8_t id[16])
{
    return s->cap ? s->map[map_slot(s, id)] : NULL;
}

/* storage_table with the reason of a failure in *err (NULL on failure). */
static st_table *table_get(storage *s, const uint8_t id[16], sib_err *err)
{
    st_table *t = storage_table_find(s, id);
    if (t) return t;
    sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    if ((s->n + 1) * 4 > s->cap * 3 && map_grow(s)) return NULL;
    if (!(t = calloc(1, sizeof *t))) return NULL;
    memcpy(t->id, id, 16);
    t->s = s;
    t->uid = ++s->epochs;
    t->epoch = ++s->epochs;
    cm_options_default(&t->copts);
    if (cm_strategy_create(&t->cms, err) || !(t->mem = st_mem_create_in(s)) || st_table_load(s, t, err)) {
        if (t->mem) sib_log(s->o.log, SIB_ERROR, "storage: %s", err->msg);
        cm_strategy_destroy(t->cms);
        st_mem_unref(t->mem);
        for (size_t i = 0; i < t->nssts; i++) sst_unref(t->ssts[i]);
        free(t->ssts);
        free(t->dir);
        free(t);
        return NULL;
    }
    s->map[map_slot(s, id)] = t;
    s->n++;
    return t;
}

st_table *storage_table(storage *s, const uint8_t id[16])
{
    sib_err err = {0};
    return table_get(s, id, &err);
}

void st_table_id(const st_table *t, uint8_t out[16]) { memcpy(out, t->id, 16); }

static void table_free(st_table *t)
{
    st_mem_unref(t->mem);
    for (st_mem *m = t->frozen, *n; m; m = n) {
        n = m->next;
        m->dropped = true;
        st_mem_unref(m);
    }
    for (size_t i = 0; i < t->nssts; i++) {
        sst_bcache_forget(storage_bcache(t->s), t->ssts[i]);
        sst_unref(t->ssts[i]);
    }
    for (size_t i = 0; i < t->nsuspect; i++) sst_unref(t->suspect[i]);
    cm_strategy_destroy(t->cms);
    free(t->suspect);
    free(t->ssts);
    free(t->dir);
    free(t);
}

/* Removes the table from the map (rehashing its cluster). */
static void map_remove(storage *s, const uint8_t id[16])
{
    size_t m = s->cap - 1, i = map_slot(s, id);
    if (!s->map[i]) return;
    table_free(s->map[i]);
    s->map[i] = NULL;
    s->n--;
    for (size_t j = (i + 1) & m; s->map[j]; j = (j + 1) & m) {
        st_table *t = s->map[j];
        s->map[j] = NULL;
        s->map[map_slot(s, t->id)] = t;
    }
}

/* Truncate at position upto: memtables go, SSTables up to it are deleted,
 * running compactions are cancelled (their outputs are discarded). */
static int table_clear(st_table *t, sst_clpos upto)
{
    st_mem *fresh = st_mem_create_in(t->s);
    if (!fresh) return SIB_ENOMEM;
    st_compaction_reset(t->s, t);
    st_mem_unref(t->mem);
    t->mem = fresh;
    for (st_mem *m = t->frozen, *n; m; m = n) {
        n = m->next;
        m->dropped = true;
        m->next = NULL;
        st_mem_unref(m);
    }
    t->frozen = NULL;
    st_table_drop_ssts(t, upto);
    return 0;
}

const storage_opts *storage_get_opts(const storage *s) { return &s->o; }
clog *storage_clog(storage *s) { return s->cl; }
st_flusher *storage_flusher(storage *s) { return s->fl; }
st_prefault *storage_prefault(storage *s) { return s->pf; }
/* No compaction before replay is over: a replayed write may be older than a
 * tombstone a compaction would purge (client timestamps), and the memtables
 * must hold it for the purge check to see it. */
st_compactor *storage_compactor(storage *s) { return s->written ? s->cm : NULL; }
st_compactor *storage_compactor_any(storage *s) { return s->cm; }
uint64_t storage_next_epoch(storage *s) { return ++s->epochs; }
storage_stats *storage_totals(storage *s) { return &s->totals; }
sst_bcache *storage_bcache(storage *s) { return s->bc; }
st_readpool *storage_readpool(storage *s) { return s->rp; }
st_table *storage_table_next(storage *s, size_t *i)
{
    while (*i < s->cap)
        if (s->map[(*i)++]) return s->map[*i - 1];
    return NULL;
}

uint64_t *storage_layout_moves(storage *s) { return &s->layout_moves; }

static int load_one(void *arg, const uint8_t id[16], const char *dir, sib_err *err)
{
    storage *s = arg;
    (void)dir;
    return table_get(s, id, err) ? 0 : err->code;
}

/* Opens every table directory under data_dir (either layout, layout.c);
 * returns the highest clpos seg. */
static int load_tables(storage *s, uint64_t *max_seg, sib_err *err)
{
    *max_seg = 0;
    if (mkdir(s->o.data_dir, 0755) && errno != EEXIST) return sib_err_errno(err, "storage: mkdir %s", s->o.data_dir);
    int rc = st_layout_walk(s->o.data_dir, load_one, s, err);
    size_t i = 0;
    for (st_table *t; !rc && (t = storage_table_next(s, &i));)
        if (t->flushed.seg > *max_seg) *max_seg = t->flushed.seg;
    return rc;
}

/* ---- open / close ---- */

int storage_open(storage **out, const storage_opts *o, sib_err *err)
{
    *out = NULL;
    storage *s = calloc(1, sizeof *s);
    if (!s) return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    s->o = *o;
    if (!s->o.sync_period_ms) s->o.sync_period_ms = 10000;
    if (!s->o.group_window_ms) s->o.group_window_ms = 2;
    if (!s->o.segment_size) s->o.segment_size = 32u << 20;
    if (s->o.sync_period_ms < 0 || s->o.group_window_ms < 0 || s->o.sync > ST_SYNC_GROUP) {
        free(s);
        return sib_err_set(err, SIB_EINVAL, "storage: bad commitlog sync options");
    }
    /* Defaults as Cassandra sizes them from its heap (sib_memory_budget):
     * memtables a quarter of it, the block cache (Cassandra's chunk cache,
     * file_cache_size) a quarter of it up to 512 MiB, and the commitlog
     * (commitlog_total_space) a quarter of its volume up to 8 GiB. */
    uint64_t budget = sib_memory_budget();
    if (!s->o.memtable_heap_space) {
        const char *e = getenv("SIBYL_MEMTABLE_HEAP_SPACE");
        s->o.memtable_heap_space = e && atoll(e) > 0 ? (size_t)atoll(e) : (size_t)(budget / 4);
    }
    if (!s->o.block_cache_size) s->o.block_cache_size = (int64_t)SIB_MIN(budget / 4, (uint64_t)512 << 20);
    if (!s->o.commitlog_total_space) {
        struct statvfs v;
        uint64_t vol = statvfs(s->o.commitlog_dir, &v) ? 0 : (uint64_t)v.f_blocks * v.f_frsize;
        s->o.commitlog_total_space = vol ? SIB_MIN(vol / 4, (uint64_t)8 << 30) : (uint64_t)8 << 30;
    }
    uint64_t max_seg = 0;
    int rc = 0;
    if (s->o.data_dir && s->o.block_cache_size > 0 &&
        (rc = sst_bcache_create(&s->bc, (size_t)s->o.block_cache_size, err)))
        goto fail;
    /* Before the tables: their memtables take memory from it. Only with a
     * loop, whose iterations it keeps short; tools write without one. */
    if (o->loop && (rc = st_prefault_start(&s->pf, err))) goto fail;
    if (s->o.data_dir && (rc = load_tables(s, &max_seg, err))) goto fail;
    clog_opts co = {o->commitlog_dir, s->o.sync, s->o.sync_period_ms, s->o.group_window_ms,
                    s->o.segment_size, o->loop, o->log, max_seg, o->commitlog_ignore_replay_errors};
    if ((rc = clog_open(&s->cl, &co, err))) goto fail;
    if (s->o.data_dir && (rc = st_flusher_start(&s->fl, s, o->loop, err))) goto fail;
    if (s->o.data_dir && (rc = st_compactor_start(&s->cm, s, o->loop, err))) goto fail;
    if (o->loop && (rc = st_readpool_start(&s->rp, s, o->loop, err))) goto fail;
    *out = s;
    return 0;
fail:
    storage_close(s);
    return rc;
}

static void defer_drain(storage *s, bool all);

void storage_close(storage *s)
{
    if (!s) return;
    st_readpool_stop(s->rp); /* delivers the reads in flight: they pin tables */
    defer_drain(s, true); /* deferred writes go in now, before the commitlog closes */
    if (s->cl) clog_flush(s->cl); /* queued writes reach the memtables while flush runs */
    st_compactor_stop(s->cm); /* cancels running compactions (inputs stay live) */
    s->cm = NULL; /* a flush that completes below must not queue a compaction on it */
    st_flusher_stop(s->fl); /* running flushes finish and go live first */
    clog_close(s->cl);
    for (size_t i = 0; i < s->cap; i++)
        if (s->map[i]) table_free(s->map[i]);
    free(s->map);
    sst_bcache_destroy(s->bc); /* after the tables: nothing reads through it now */
    st_prefault_stop(s->pf);   /* after the tables: no memtable allocates now */
    free(s);
}

/* ---- payload apply (write path and replay) ---- */

/* token: the mutation's partition's, when the caller has it (else NULL). */
static int apply_one(storage *s, const uint8_t *p, size_t n, bool logged, const int64_t *token, sib_err *err)
{
    sib_rd r;
    mut_hdr h;
    sib_rd_init(&r, p, n);
    if (mut_decode_hdr(&r, &h)) return sib_err_set(err, SIB_ECORRUPT, "storage: corrupt mutation");
    /* found first: storage_table zeroes an error record per call */
    st_table *t = storage_table_find(s, h.table_id);
    if (!t && !(t = storage_table(s, h.table_id))) return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    if (s->replayed && !s->written && sst_clpos_cmp(s->replay_pos, t->flushed) < 0)
        return 0; /* replay: already in an SSTable */
    if (logged) {
        clog_mark_dirty(s->cl, t->id, &t->dirty_seg);
        if (!t->mem->first_seg) t->mem->first_seg = t->dirty_seg;
    }
    return memtable_apply(&t->mem->mt, &h, token ? *token : sib_murmur3_token(h.pk, h.pklen), &r, err);
}

/* The token of m's partition, hashed once for the write (apply_logged
 * gets it back). With a loop the memtable is written at the end of the
 * iteration: start fetching what the write will touch now
 * (memtable_prefetch). */
static int64_t mut_token(storage *s, const st_mutation *m)
{
    sib_rd r;
    mut_hdr h;
    sib_rd_init(&r, m->b.p, m->b.len);
    if (mut_decode_hdr(&r, &h)) return 0; /* (storage_apply took only valid ones) */
    int64_t token = sib_murmur3_token(h.pk, h.pklen);
    st_table *t = s->o.loop ? storage_table_find(s, h.table_id) : NULL;
    if (t && t->mem) memtable_prefetch(&t->mem->mt, token);
    return token;
}

/* Validates a MUTATIONS body; calls apply on each mutation if s != NULL.
 * tok0: the first mutation's token when the caller has it (else NULL). */
static int walk_mutations(storage *s, sib_rd *r, bool logged, const int64_t *tok0, sib_err *err)
{
    uint64_t n;
    if (!sib_rd_uvarint(r, &n) || n == 0) return sib_err_set(err, SIB_ECORRUPT, "storage: corrupt entry");
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        const uint8_t *m;
        if (!sib_rd_uvarint(r, &len) || len > sib_rd_left(r) || !sib_rd_bytes(r, (size_t)len, &m))
            return sib_err_set(err, SIB_ECORRUPT, "storage: corrupt entry");
        if (!s && mut_validate(m, (size_t)len)) return sib_err_set(err, SIB_ECORRUPT, "storage: corrupt mutation");
        if (s) {
            int rc = apply_one(s, m, (size_t)len, logged, i ? NULL : tok0, err);
            if (rc) return rc;
        }
    }
    if (sib_rd_left(r)) return sib_err_set(err, SIB_ECORRUPT, "storage: trailing bytes in entry");
    return 0;
}

static int replay_entry(storage *s, const uint8_t *p, size_t n, sib_err *err)
{
    sib_rd r;
    uint8_t ver, kind;
    const uint8_t *id;
    sib_rd_init(&r, p, n);
    if (!sib_rd_u8(&r, &ver) || ver != ST_ENTRY_VERSION || !sib_rd_u8(&r, &kind)) return SIB_ECORRUPT;
    if (kind == ST_ENTRY_MUTATIONS) {
        sib_rd v = r;
        if (walk_mutations(NULL, &v, true, NULL, err)) return SIB_ECORRUPT;
        return walk_mutations(s, &r, true, NULL, err);
    }
    if ((kind != ST_ENTRY_TRUNCATE && kind != ST_ENTRY_DROP) || !sib_rd_bytes(&r, 16, &id) || sib_rd_left(&r))
        return SIB_ECORRUPT;
    st_table *t = storage_table_find(s, id);
    if (t && table_clear(t, s->replay_pos)) return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    if (kind == ST_ENTRY_DROP && t && !t->nssts) {
        if (t->dir && s->fl) { /* replay re-created it: startup, so wait for the unlinks */
            st_flusher_drain(s->fl);
            st_layout_rmdir(t->dir);
        }
        map_remove(s, id);
    }
    return 0;
}

typedef struct replay_ctx { storage *s; storage_replay_stats *st; } replay_ctx;

static int replay_cb(void *arg, const uint8_t *p, size_t n, const char *seg, uint64_t seg_id, uint64_t off,
                     sib_err *err)
{
    replay_ctx *c = arg;
    c->s->replay_pos = (sst_clpos){seg_id, off};
    int rc = replay_entry(c->s, p, n, err);
    if (rc == 0 && n >= 2 && p[1] == ST_ENTRY_MUTATIONS) {
        sib_rd r;
        uint64_t k;
        sib_rd_init(&r, p + 2, n - 2);
        if (sib_rd_uvarint(&r, &k)) c->st->mutations += k;
    }
    return rc;
}

int storage_replay(storage *s, storage_replay_stats *stats, sib_err *err)
{
    storage_replay_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (s->replayed || s->written)
        return sib_err_set(err, SIB_EINVAL, "storage: replay must run once, before any write");
    s->replayed = true;
    replay_ctx c = {s, stats};
    int rc = clog_replay(s->cl, replay_cb, &c, stats, err);
    s->written = true; /* replay is over: apply_one stops skipping */
    size_t ti = 0;
    for (st_table *t; s->cm && (t = storage_table_next(s, &ti));) st_compaction_check(s, t); /* loaded backlog */
    sib_log(s->o.log, SIB_INFO,
            "storage: replay done: %llu segments, %llu entries, %llu mutations, %llu bad segments",
            (unsigned long long)stats->segments, (unsigned long long)stats->entries,
            (unsigned long long)stats->mutations, (unsigned long long)stats->bad_segments);
    return rc;
}

/* ---- writes ---- */

/* Write admission. The memtables, active and frozen (waiting for their
 * flush) together, count against L = max(memtable_heap_space, 64 MiB): a
 * flush starts when the active ones reach half of memtable_heap_space
 * (maybe_flush), so while one flush keeps up they stay under L. Flushes
 * that cannot keep up, or fail (a full data disk), would otherwise pile
 * memtables up until the process runs out of memory. Cassandra blocks
 * writers at that point; a loop cannot block, and refusing every write at
 * once (Overloaded) was a cliff. So, as RocksDB's delayed write rate does,
 * writers are slowed gradually. With a loop (the server):
 *   - memtables + deferred writes up to 3/4 of L, or nothing frozen to wait
 *     for: a write goes straight on;
 *   - from 3/4 of L to 2L: each write is deferred on an ev_timer by a delay
 *     growing linearly from 0 to DEFER_MAX (100 ms), in arrival order (a
 *     write arriving behind deferred ones waits behind them). The loop
 *     never sleeps; the client sees latency, far under the 2 s write
 *     timeout, and nothing else;
 *   - frozen memtables + deferred writes over 2L (flushes are not going at
 *     all): the write is refused with Overloaded (SIB_EAGAIN) before it is
 *     logged, and accepted again as soon as flushes catch up.
 * Without a loop: write_delay. */
#define BACKLOG_MIN ((size_t)64 << 20)
#define DEFER_MAX_NS 100000000ll

static size_t backlog_limit(const storage *s) { return SIB_MAX(s->o.memtable_heap_space, BACKLOG_MIN); }

/* Counts the memtables: frozen_bytes (waiting for flush), mem_bytes (all,
 * active and frozen) and nfrozen. A walk over the tables, short. */
static void count_memtables(storage *s)
{
    size_t frozen = 0, all = 0, n = 0;
    for (size_t i = 0; i < s->cap; i++) {
        st_table *t = s->map[i];
        if (!t) continue;
        all += memtable_bytes(&t->mem->mt);
        for (st_mem *m = t->frozen; m; m = m->next) frozen += memtable_bytes(&m->mt), n++;
    }
    s->frozen_bytes = frozen;
    s->mem_bytes = all + frozen;
    s->nfrozen = n;
}

static bool backlog_over(storage *s)
{
    count_memtables(s);
    return s->frozen_bytes + s->dq_bytes > 2 * backlog_limit(s);
}

/* Checked on every write while the backlog is full (a walk over the
 * tables' frozen lists, short), else every 64 writes (maybe_flush). A
 * failed flush is otherwise retried by the next freeze, and refused writes
 * freeze nothing: so while writes are refused, failed flushes are queued
 * again once a second (the disk may have room again). */
static int backlog_check(storage *s, sib_err *err)
{
    if (!s->backlog_full || !(s->backlog_full = backlog_over(s))) return 0;
    int64_t now = sib_mono_ns();
    if (now >= s->backlog_retry_ns) {
        s->backlog_retry_ns = now + 1000000000;
        sib_err e;
        for (size_t i = 0; i < s->cap; i++)
            if (s->map[i] && st_table_retry_flushes(s, s->map[i], &e))
                sib_log(s->o.log, SIB_ERROR, "storage: %s", e.msg);
    }
    return sib_err_set(err, SIB_EAGAIN,
                       "storage: memtables waiting for flush are over %zu MiB; write refused until they flush",
                       (2 * backlog_limit(s)) >> 20);
}

/* The deferral a write gets now (0: none), from the memtables and the
 * writes deferred already. */
static int64_t defer_ns(const storage *s)
{
    size_t limit = backlog_limit(s), load = s->mem_bytes + s->dq_bytes, from = limit / 4 * 3;
    if (!s->nfrozen || load <= from) return 0;
    double frac = (double)(load - from) / (double)(2 * limit - from);
    return (int64_t)(SIB_MIN(frac, 1.0) * (double)DEFER_MAX_NS) + 1;
}

/* Every 64 applies: when the active memtables together reach half of
 * memtable_heap_space, freeze the largest (Cassandra's cleanup policy, its
 * memtable_cleanup_threshold of 1 / (1 + flush writers) with our one flush
 * thread), unless it still fits in its first arena chunks. The memtables
 * being flushed count against memtable_heap_space too, as in Cassandra:
 * active and frozen together stay under it while one flush keeps up, and
 * writers are slowed when they reach it (write_delay, defer_ns). */
static void maybe_flush(storage *s)
{
    if (++s->applies % 64) return;
    size_t total = 0, best = 0;
    st_table *big = NULL;
    for (size_t i = 0; i < s->cap; i++) {
        st_table *t = s->map[i];
        if (!t) continue;
        size_t b = memtable_bytes(&t->mem->mt);
        total += b;
        if (b > best) best = b, big = t;
    }
    sib_err err;
    /* arenas grow by 1 MiB chunks: a memtable within its first chunks is not
     * worth an SSTable, whatever the total */
    if (total >= s->o.memtable_heap_space / 2 && big && !memtable_in_first_chunks(&big->mem->mt) &&
        st_table_freeze(s, big, &err))
        sib_log(s->o.log, SIB_ERROR, "storage: %s", err.msg);
    if (s->o.loop && !s->backlog_full && (s->backlog_full = backlog_over(s)))
        sib_log(s->o.log, SIB_WARN, "storage: memtables waiting for flush are over their bound: writes are refused "
                                    "(Overloaded) until they flush");
    if (!s->fl) return; /* (commitlog_total_space always has a value: storage_open) */
    uint64_t live;
    const uint8_t(*ids)[16];
    size_t n;
    uint64_t seg = clog_oldest(s->cl, &live, &ids, &n);
    if (!seg || live <= s->o.commitlog_total_space) return;
    if (!n) { /* nothing of it left in a memtable (e.g. all flushed earlier): let it go */
        st_release_segments(s);
        if (!(seg = clog_oldest(s->cl, &live, &ids, &n)) || live <= s->o.commitlog_total_space) return;
    }
    /* Flush the active memtables still holding writes of the oldest
     * segment (frozen ones are flushing already); once they are SSTables
     * the segment is released. */
    for (size_t i = 0; i < n; i++) {
        st_table *t = storage_table_find(s, ids[i]);
        if (t && t->mem->first_seg && t->mem->first_seg <= seg && st_table_freeze(s, t, &err)) {
            sib_log(s->o.log, SIB_ERROR, "storage: %s", err.msg);
            return;
        }
    }
}

/* clog_apply_fn of a MUTATIONS entry: it is in the file now, apply it (a
 * failure, OOM, reaches done; replay will apply it). */
static int apply_logged(void *arg, const uint8_t *p, size_t n, int64_t tok0, sib_err *err)
{
    sib_rd r;
    sib_rd_init(&r, p + 2, n - 2); /* after version and kind */
    return walk_mutations(arg, &r, true, &tok0, err);
}

/* Without a loop (an embedded engine, bench_engine), the writer's own
 * thread is the only place to hold a write back. Draining every flush once
 * three were in flight stalled single writes for seconds; instead, as
 * RocksDB's delayed write rate does, writes are slowed gradually while
 * flushes fall behind. The signal is the memtables' memory, active and
 * frozen together, against L = max(memtable_heap_space, 64 MiB) (write
 * admission, above):
 *   - from 3/4 of L, with a flush pending: writes go at `rate` bytes/s,
 *     starting at WD_RATE0; each further memtable frozen meanwhile
 *     multiplies it by 0.8, each one flushed by 1.25 (never above
 *     WD_RATE0). A write sleeps only once its debt reaches WD_MIN_SLEEP;
 *   - at L: the write also waits, polling completions each millisecond,
 *     until the memtables are back under L;
 *   - under 3/4 of L (or nothing frozen to wait for): no delay, and the
 *     rate is forgotten.
 * Either way one write waits at most WD_MAX_WAIT (50 ms) in all: other
 * steps of the write (a commitlog segment switch) may wait too, and the
 * sum must stay far under 100 ms. While flushes stay behind each write
 * waits again, which bounds how far the memtables go past L. The server
 * (with a loop) never sleeps: see defer_ns. */
#define WD_RATE0 (16.0 * 1048576.0)  /* RocksDB's default delayed_write_rate, 16 MiB/s */
#define WD_RATE_MIN (64.0 * 1024.0)  /* the slowest rate: a floor, so the debt stays small */
#define WD_MIN_SLEEP 1000000ll       /* 1 ms */
#define WD_MAX_WAIT 50000000ll       /* 50 ms */

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    while (nanosleep(&ts, &ts) && errno == EINTR) {}
}

static void write_delay(storage *s, st_mutation *const *muts, size_t n)
{
    st_wdelay *d = &s->wd;
    count_memtables(s);
    size_t nfrozen = s->nfrozen, limit = backlog_limit(s);
    int64_t now = sib_mono_ns(), start = now;
    if (!nfrozen || s->mem_bytes < limit / 4 * 3) {
        d->rate = 0;
        d->last_frozen = nfrozen;
        return;
    }
    if (d->rate == 0) {
        d->rate = WD_RATE0;
        d->next_ns = now;
    } else if (nfrozen > d->last_frozen) {
        d->rate = SIB_MAX(d->rate * 0.8, WD_RATE_MIN);
    } else if (nfrozen < d->last_frozen) {
        d->rate = SIB_MIN(d->rate * 1.25, WD_RATE0);
    }
    d->last_frozen = nfrozen;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) bytes += muts[i]->b.len;
    d->next_ns = SIB_MAX(d->next_ns, now - WD_MAX_WAIT) + (int64_t)((double)bytes / d->rate * 1e9);
    int64_t debt = d->next_ns - now;
    if (debt >= WD_MIN_SLEEP) sleep_ns(SIB_MIN(debt, WD_MAX_WAIT));
    /* at the bound: wait for flushes to bring the memtables under it, still bounded */
    while (s->mem_bytes >= limit && s->nfrozen && (now = sib_mono_ns()) - start < WD_MAX_WAIT) {
        sleep_ns(SIB_MIN(WD_MIN_SLEEP, start + WD_MAX_WAIT - now));
        st_flusher_poll(s->fl);
        count_memtables(s);
    }
    now = sib_mono_ns();
    if (now - start >= WD_MIN_SLEEP) d->delayed++, d->waited_ns += (uint64_t)(now - start);
}

/* The write itself, once admitted (now or from the deferral timer). */
static int apply_now(storage *s, st_mutation *const *muts, size_t n, unsigned flags, st_done_fn done, void *ctx,
                     sib_err *err)
{
    bool logged = !(flags & ST_APPLY_NO_COMMITLOG);
    s->written = true;
    if (s->fl && !s->o.loop) {
        st_flusher_poll(s->fl);
        st_compactor_poll(s->cm);
        write_delay(s, muts, n);
    }
    if (logged) {
        sib_buf *b = clog_queue_begin(s->cl);
        sib_buf_u8(b, ST_ENTRY_VERSION);
        sib_buf_u8(b, ST_ENTRY_MUTATIONS);
        sib_buf_uvarint(b, n);
        int64_t tok0 = 0;
        for (size_t i = 0; i < n; i++) {
            sib_buf_uvarint(b, muts[i]->b.len);
            sib_buf_append(b, muts[i]->b.p, muts[i]->b.len);
            if (!i) tok0 = mut_token(s, muts[i]);
            else if (s->o.loop) (void)mut_token(s, muts[i]); /* for its prefetch */
        }
        /* memtables and done follow once the entry is written (apply_logged) */
        int rc = clog_entry_queue(s->cl, apply_logged, s, tok0, done, ctx, err);
        if (rc) return rc;
        if (s->fl) maybe_flush(s); /* a freeze now bounds before the queued entry */
        return 0;
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) rc = apply_one(s, muts[i]->b.p, muts[i]->b.len, logged, NULL, err);
    if (s->fl) maybe_flush(s);
    if (rc) { /* not applied (OOM): report it */
        if (done) done(ctx, rc, err);
        return 0;
    }
    if (done) done(ctx, 0, NULL);
    return 0;
}

static void deferred_free(st_deferred *d)
{
    for (size_t i = 0; i < d->n; i++) st_mutation_destroy(d->muts[i]);
    free(d->muts);
    free(d);
}

/* Applies the deferred writes that are due (all of them if `all`), in
 * order, and sets the timer for the next one. */
static void defer_drain(storage *s, bool all)
{
    if (!s->o.loop) return;
    ev_timer_stop(s->o.loop, &s->dtimer);
    count_memtables(s);
    int64_t now = sib_mono_ns();
    while (s->dq && (all || s->dq->due_ns <= now)) {
        st_deferred *d = s->dq;
        if (!(s->dq = d->next)) s->dq_tail = NULL;
        s->dq_bytes -= d->bytes;
        s->wd.delayed++;
        s->wd.waited_ns += (uint64_t)SIB_MAX(now - d->since_ns, 0);
        sib_err err;
        int rc = apply_now(s, d->muts, d->n, d->flags, d->done, d->ctx, &err);
        if (rc && d->done) d->done(d->ctx, rc, &err);
        else if (rc) sib_log(s->o.log, SIB_ERROR, "storage: deferred write: %s", err.msg);
        deferred_free(d);
    }
    if (s->dq) {
        ev_timer_set(&s->dtimer, (double)(s->dq->due_ns - now) / 1e9, 0.);
        ev_timer_start(s->o.loop, &s->dtimer);
    }
}

static void on_defer_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    defer_drain(w->data, false);
}

/* Queues a write to go in `delay` ns from now, behind those deferred
 * already. The mutations are copied: the caller's are its own on return. */
static int defer_write(storage *s, st_mutation *const *muts, size_t n, unsigned flags, st_done_fn done, void *ctx,
                       int64_t delay, sib_err *err)
{
    st_deferred *d = calloc(1, sizeof *d);
    if (!d || !(d->muts = calloc(n, sizeof *d->muts))) {
        free(d);
        return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
    }
    for (size_t i = 0; i < n; i++, d->n++) {
        st_mutation *c = calloc(1, sizeof *c);
        if (!c) {
            deferred_free(d);
            return sib_err_set(err, SIB_ENOMEM, "storage: out of memory");
        }
        sib_buf_init(&c->b);
        sib_buf_append(&c->b, muts[i]->b.p, muts[i]->b.len);
        c->hdr_len = muts[i]->hdr_len;
        c->row_sel = muts[i]->row_sel;
        d->muts[i] = c;
        d->bytes += muts[i]->b.len;
    }
    d->flags = flags;
    d->done = done;
    d->ctx = ctx;
    d->since_ns = sib_mono_ns();
    d->due_ns = d->since_ns + delay;
    if (s->dq_tail && s->dq_tail->due_ns > d->due_ns) d->due_ns = s->dq_tail->due_ns; /* arrival order */
    if (s->dq_tail) s->dq_tail->next = d;
    else s->dq = d;
    s->dq_tail = d;
    s->dq_bytes += d->bytes;
    if (!ev_is_active(&s->dtimer)) {
        ev_timer_init(&s->dtimer, on_defer_timer, (double)(s->dq->due_ns - d->since_ns) / 1e9, 0.);
        s->dtimer.data = s;
        ev_timer_start(s->o.loop, &s->dtimer);
    }
    return 0;
}

int storage_apply_ex(storage *s, st_mutation *const *muts, size_t n, unsigned flags, st_done_fn done, void *ctx,
                     sib_err *err)
{
    if (n == 0) return sib_err_set(err, SIB_EINVAL, "storage: empty batch");
    for (size_t i = 0; i < n; i++) {
        if (muts[i]->err)
            return sib_err_set(err, muts[i]->err, "storage: mutation %zu is invalid: %s", i,
                               sib_strerror(muts[i]->err));
    }
    int brc = backlog_check(s, err);
    if (brc) return brc;
    if (s->o.loop && s->fl && !(flags & ST_APPLY_NO_COMMITLOG)) {
        int64_t delay = defer_ns(s);
        if (delay || s->dq) return defer_write(s, muts, n, flags, done, ctx, delay, err);
    }
    return apply_now(s, muts, n, flags, done, ctx, err);
}

int storage_apply(storage *s, st_mutation *const *muts, size_t n, st_done_fn done, void *ctx, sib_err *err)
{
    return storage_apply_ex(s, muts, n, 0, done, ctx, err);
}

int storage_sync(storage *s, st_done_fn done, void *ctx, sib_err *err)
{
    clog_flush(s->cl); /* writes accepted so far are covered too */
    return clog_wait(s->cl, clog_pos(s->cl), done, ctx, err);
}

static int log_table_op(storage *s, uint8_t kind, const uint8_t id[16], uint64_t *pos, sib_err *err)
{
    s->written = true;
    sib_buf *b = clog_entry_begin(s->cl);
    sib_buf_u8(b, ST_ENTRY_VERSION);
    sib_buf_u8(b, kind);
    sib_buf_append(b, id, 16);
    return clog_entry_commit(s->cl, pos, err);
}

/* auto_snapshot: hard links of every live SSTable's files into
 * <dir>/snapshots/<kind>-<ms>/, on the flush thread before the deletions
 * queued after it. */
static void snapshot(storage *s, st_table *t, const char *kind)
{
    if (!s->o.auto_snapshot || !t->dir || !t->nssts || !s->fl) return;
    size_t n = t->nssts * 5, k = 0;
    char **src = calloc(n, sizeof *src), **dst = calloc(n, sizeof *dst);
    if (!src || !dst) goto fail;
    long long ms = (long long)(sib_now_us() / 1000);
    for (size_t i = 0; i < t->nssts; i++, k += 5) {
        if (sst_files(t->dir, sst_gen(t->ssts[i]), src + k)) goto fail;
        for (int c = 0; c < 5; c++) {
            const char *base = strrchr(src[k + c], '/');
            if (asprintf(&dst[k + c], "%s/snapshots/%s-%lld%s", t->dir, kind, ms, base) < 0) {
                dst[k + c] = NULL;
                goto fail;
            }
        }
    }
    st_flusher_link(s->fl, src, dst, n);
    return;
fail:
    sib_log(s->o.log, SIB_ERROR, "storage: out of memory: no snapshot of %s", t->dir);
    for (size_t i = 0; i < n && src && dst; i++) free(src[i]), free(dst[i]);
    free(src);
    free(dst);
}

int storage_table_truncate(storage *s, const uint8_t id[16], st_done_fn done, void *ctx, sib_err *err)
{
    uint64_t pos;
    int rc = log_table_op(s, ST_ENTRY_TRUNCATE, id, &pos, err);
    if (rc) return rc;
    st_table *t = storage_table_find(s, id);
    if (t) snapshot(s, t, "truncated");
    if (t && table_clear(t, clog_position(s->cl))) {
        if (done) done(ctx, SIB_ENOMEM, err);
        return 0;
    }
    return clog_wait(s->cl, pos, done, ctx, err);
}

int storage_table_drop(storage *s, const uint8_t id[16], st_done_fn done, void *ctx, sib_err *err)
{
    uint64_t pos;
    int rc = log_table_op(s, ST_ENTRY_DROP, id, &pos, err);
    if (rc) return rc;
    st_table *t = storage_table_find(s, id);
    if (t) {
        snapshot(s, t, "dropped");
        table_clear(t, clog_position(s->cl));
        /* after the unlinks queued by table_clear; a snapshot keeps it */
        char *dir = t->dir && s->fl ? strdup(t->dir) : NULL;
        if (dir) st_flusher_rmdir(s->fl, dir);
    }
    if (s->cap) map_remove(s, id);
    return clog_wait(s->cl, pos, done, ctx, err);
}

/* ---- stats ---- */

void st_table_get_stats(const st_table *t, st_table_stats *out)
{
    const memtable *mt = &t->mem->mt;
    out->memtable_bytes = memtable_bytes(mt);
    out->partitions = memtable_partitions(mt);
    out->rows = mt->rows;
    out->cells = mt->cells;
    out->min_ts = mt->min_ts;
    out->max_ts = mt->max_ts;
    out->sstables = t->nssts;
    out->sstable_bytes = 0;
    out->flushes = t->flushes;
    out->flush_bytes = t->flush_bytes;
    out->compactions = t->compactions;
    out->compaction_bytes_read = t->cm_bytes_read;
    out->compaction_bytes_written = t->cm_bytes_written;
    memcpy(out->cm_into, t->cm_into, sizeof out->cm_into);
    memcpy(out->cm_into_n, t->cm_into_n, sizeof out->cm_into_n);
    memcpy(out->cm_into_l0, t->cm_into_l0, sizeof out->cm_into_l0);
    out->cm_tombstone_bytes = t->cm_tombstone_bytes;
    out->cm_moves = t->cm_moves;
    out->cm_moved_bytes = t->cm_moved_bytes;
    out->tombstones_purged = t->purged;
    for (size_t i = 0; i < ST_SPR_BUCKETS; i++) out->spr[i] = __atomic_load_n(&t->spr[i], __ATOMIC_RELAXED);
    out->spr_sum = __atomic_load_n(&t->spr_sum, __ATOMIC_RELAXED);
    st_compaction_running(t->s, t, &out->compactions_running);
    out->sstables_damaged = t->damaged;
    out->sstables_suspect = t->nsuspect;
    st_compaction_levels(t, out);
    for (st_mem *m = t->frozen; m; m = m->next) {
        out->memtable_bytes += memtable_bytes(&m->mt);
        if (m->mt.min_ts != ST_NO_TIMESTAMP && (out->min_ts == ST_NO_TIMESTAMP || m->mt.min_ts < out->min_ts))
            out->min_ts = m->mt.min_ts;
        if (m->mt.max_ts > out->max_ts) out->max_ts = m->mt.max_ts;
    }
    for (size_t i = 0; i < t->nssts; i++) {
        const sst_stats *st = sst_get_stats(t->ssts[i]);
        out->sstable_bytes += st->data_file_bytes;
        if (st->min_ts != SST_NO_TS && (out->min_ts == ST_NO_TIMESTAMP || st->min_ts < out->min_ts))
            out->min_ts = st->min_ts;
        if (st->max_ts > out->max_ts) out->max_ts = st->max_ts;
    }
}

void storage_get_stats(storage *s, storage_stats *out)
{
    *out = s->totals;
    out->tables = out->memtable_bytes = 0;
    out->partitions = out->rows = out->cells = out->sstables = out->sstable_bytes = out->flushes_pending = 0;
    st_compaction_info ci[64];
    size_t nci = storage_compaction_progress(s, ci, 64);
    out->compactions_running = nci;
    out->writes_delayed = s->wd.delayed;
    out->write_delay_ns = s->wd.waited_ns;
    out->compaction_bytes_done = out->compaction_bytes_total = 0;
    for (size_t i = 0; i < SIB_MIN(nci, 64); i++) {
        out->compaction_bytes_done += ci[i].bytes_done;
        out->compaction_bytes_total += ci[i].bytes_total;
    }
    for (size_t i = 0; i < s->cap; i++) {
        st_table *t = s->map[i];
        if (!t) continue;
        st_table_stats ts;
        st_table_get_stats(t, &ts);
        out->tables++;
        out->memtable_bytes += ts.memtable_bytes;
        out->partitions += ts.partitions;
        out->rows += ts.rows;
        out->cells += ts.cells;
        out->sstables += t->nssts;
        for (size_t k = 0; k < t->nssts; k++) out->sstable_bytes += sst_get_stats(t->ssts[k])->data_file_bytes;
        for (st_mem *m = t->frozen; m; m = m->next) out->flushes_pending++;
    }
    clog_stats cs;
    clog_get_stats(s->cl, &cs);
    out->cl_bytes_written = cs.bytes;
    out->cl_entries = cs.entries;
    out->cl_segments_created = cs.segments_created;
    out->cl_segments_live = cs.segments_live;
    out->cl_syncs = cs.syncs;
    out->cl_writebacks = cs.writebacks;
    out->cl_pending = cs.pending;
    out->cl_writes = cs.writes;
    sst_bcache_stats bs;
    sst_bcache_get_stats(s->bc, &bs);
    out->block_cache_hits = bs.hits;
    out->block_cache_misses = bs.misses;
    out->block_cache_evictions = bs.evictions;
    out->block_cache_entries = bs.entries;
    out->block_cache_bytes = bs.bytes;
    out->block_cache_capacity = bs.capacity;
}
