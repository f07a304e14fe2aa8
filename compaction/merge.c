/* merge.c: the ONE implementation of row reconciliation, shadowing and
 * tombstone purge, used by storage's read path (cm_merge_rows), flush
 * (cm_part_compact / cm_row_compact with nothing purgeable) and compaction
 * (the same with a real purge context).
 *
 * Rules (docs/compaction.md, "Reconciliation and purge"):
 *
 *   | what                | wins / survives                                          |
 *   |---------------------|----------------------------------------------------------|
 *   | two cells           | sst_cell_supersedes (Cassandra Cells.resolveRegular)     |
 *   | two markers         | higher ts, then expiring, then later expiry              |
 *   | two deletions       | higher ts, then higher ldt (DeletionTime.supersedes)      |
 *   | data vs deletion    | shadowed iff data ts <= deletion ts                      |
 *   | row del / range     | dropped unless it supersedes the partition deletion      |
 *   | expired cell        | now >= expiry -> tombstone(ts, expiry - ttl)             |
 *   | expired marker      | kept until purgeable with (ts, expiry)                   |
 *   | tombstone purge     | ldt < gc_before AND ts < max_purgeable(partition)        |
 *
 * Order inside cm_row_compact: first everything the (unpurged) deletions
 * shadow is dropped, then the gc-able deletions themselves go. Dropping
 * shadowed data inside the compaction is always safe; dropping a deletion is
 * safe only under the purge rule, which the caller's max_purgeable encodes
 * (SSTables outside the compaction and memtables that may hold the
 * partition).
 *
 * Invariant: nothing here allocates per row beyond the scratch in
 * cm_rowmerge, which only grows.
 */
#include "compaction.h"

#include <stdlib.h>

void cm_rowmerge_free(cm_rowmerge *m)
{
    free(m->mc);
    free(m->oc);
    free(m->md);
    free(m->od);
    free(m->rts);
    memset(m, 0, sizeof *m);
}

int cm_cell_key_cmp(const sst_cell *a, const sst_cell *b)
{
    if (a->col != b->col) return a->col < b->col ? -1 : 1;
    size_t n = SIB_MIN(a->pathlen, b->pathlen);
    int c = n ? memcmp(a->path, b->path, n) : 0;
    return c ? c : (a->pathlen < b->pathlen ? -1 : a->pathlen > b->pathlen);
}

static int cell_sort_cmp(const void *x, const void *y) { return cm_cell_key_cmp(x, y); }

bool cm_marker_supersedes(const sst_row *a, const sst_row *b)
{
    if (b->marker_ts == SST_NO_TS) return true;
    if (a->marker_ts != b->marker_ts) return a->marker_ts > b->marker_ts;
    if ((a->marker_ttl > 0) != (b->marker_ttl > 0)) return a->marker_ttl > 0;
    return a->marker_ldt > b->marker_ldt;
}

/* Cells of each row are sorted by (col, path); a stable sort of the
 * concatenation followed by one pass keeps, per key, the superseding one. */
int cm_merge_rows(cm_rowmerge *m, const sst_row *const *rows, size_t n, sst_row *out)
{
    *out = *rows[0];
    if (n == 1) return 0;
    size_t nc = 0, nd = 0;
    for (size_t i = 0; i < n; i++) nc += rows[i]->ncells, nd += rows[i]->ncdels;
    if (!sib_grow((void **)&m->mc, &m->capmc, nc, sizeof *m->mc) || !sib_grow((void **)&m->md, &m->capmd, nd, sizeof *m->md))
        return SIB_ENOMEM;
    nc = nd = 0;
    for (size_t i = 0; i < n; i++) {
        const sst_row *r = rows[i];
        if (i && r->marker_ts != SST_NO_TS && cm_marker_supersedes(r, out)) {
            out->marker_ts = r->marker_ts;
            out->marker_ttl = r->marker_ttl;
            out->marker_ldt = r->marker_ldt;
        }
        if (i && r->del.ts != SST_NO_TS && (out->del.ts == SST_NO_TS || sst_del_supersedes(r->del, out->del)))
            out->del = r->del;
        for (uint32_t k = 0; k < r->ncdels; k++) {
            size_t j = 0;
            while (j < nd && m->md[j].col != r->cdels[k].col) j++;
            if (j == nd) m->md[nd++] = r->cdels[k];
            else if (sst_del_supersedes(r->cdels[k].del, m->md[j].del)) m->md[j].del = r->cdels[k].del;
        }
        if (r->ncells) memcpy(m->mc + nc, r->cells, r->ncells * sizeof *m->mc);
        nc += r->ncells;
    }
    if (nc > 1) qsort(m->mc, nc, sizeof *m->mc, cell_sort_cmp);
    size_t k = 0;
    for (size_t i = 0; i < nc; i++) {
        if (k && !cm_cell_key_cmp(&m->mc[k - 1], &m->mc[i])) {
            if (sst_cell_supersedes(&m->mc[i], &m->mc[k - 1])) m->mc[k - 1] = m->mc[i];
        } else {
            m->mc[k++] = m->mc[i];
        }
    }
    out->cells = m->mc;
    out->ncells = (uint32_t)k;
    out->cdels = m->md;
    out->ncdels = (uint32_t)nd;
    return 0;
}

/* ---- purge ---- */

cm_purge cm_purge_none(void)
{
    return (cm_purge){.now = INT32_MIN, .gc_before = INT32_MIN, .mp_known = true, .mp = INT64_MIN};
}

bool cm_purgeable(cm_purge *p, int64_t ts, int32_t ldt)
{
    if (ldt >= p->gc_before) return false; /* not gc-able yet (or never: INT32_MIN) */
    if (!p->mp_known) {
        p->mp = p->mp_fn ? p->mp_fn(p->mp_arg) : INT64_MAX;
        p->mp_known = true;
    }
    return ts < p->mp;
}

static bool del_set(sst_del d) { return d.ts != SST_NO_TS; }
static bool del_beats(sst_del a, sst_del b) { return del_set(a) && (!del_set(b) || sst_del_supersedes(a, b)); }

sst_del cm_active_deletion(sst_del pdel, const sst_rt *rts, size_t nrt, const uint8_t *ck, size_t cklen,
                           bool is_static)
{
    sst_del d = pdel;
    if (is_static) return d; /* range tombstones never cover the static row */
    for (size_t i = 0; i < nrt; i++) {
        const sst_rt *rt = &rts[i];
        if (del_beats(rt->del, d) && sst_bound_cmp(ck, cklen, &rt->start, true) > 0 &&
            sst_bound_cmp(ck, cklen, &rt->end, false) < 0)
            d = rt->del;
    }
    return d;
}

int cm_part_compact(cm_rowmerge *m, cm_purge *p, sst_del *pdel, const sst_rt *rts, size_t nrt, const sst_rt **out_rts,
                    size_t *out_nrt)
{
    sst_del orig = *pdel;
    if (del_set(orig) && cm_purgeable(p, orig.ts, orig.ldt)) {
        *pdel = (sst_del){SST_NO_TS, SST_NO_LDT};
        p->purged++;
    }
    if (!sib_grow((void **)&m->rts, &m->caprts, nrt, sizeof *m->rts)) return SIB_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < nrt; i++) {
        if (!del_beats(rts[i].del, orig)) continue; /* shadowed by the partition deletion */
        if (cm_purgeable(p, rts[i].del.ts, rts[i].del.ldt)) {
            p->purged++;
            continue;
        }
        m->rts[k++] = rts[i];
    }
    *out_rts = m->rts;
    *out_nrt = k;
    return 0;
}

static int64_t cdel_ts(const sst_row *r, uint32_t col)
{
    for (uint32_t i = 0; i < r->ncdels; i++)
        if (r->cdels[i].col == col) return r->cdels[i].del.ts;
    return SST_NO_TS;
}

/* The marker of in, if it survives eff and the purge. */
static void compact_marker(cm_purge *p, const sst_row *in, sst_del eff, sst_row *out)
{
    out->marker_ts = SST_NO_TS;
    out->marker_ttl = 0;
    out->marker_ldt = SST_NO_LDT;
    if (in->is_static || in->marker_ts == SST_NO_TS || (del_set(eff) && in->marker_ts <= eff.ts)) return;
    bool expired = in->marker_ttl > 0 && p->now >= in->marker_ldt;
    if (expired && cm_purgeable(p, in->marker_ts, in->marker_ldt)) {
        p->purged++;
        return;
    }
    out->marker_ts = in->marker_ts;
    out->marker_ttl = in->marker_ttl;
    out->marker_ldt = in->marker_ldt;
}

int cm_row_compact(cm_rowmerge *m, cm_purge *p, const sst_row *in, sst_del active, sst_row *out)
{
    if (!sib_grow((void **)&m->oc, &m->capoc, in->ncells, sizeof *m->oc) ||
        !sib_grow((void **)&m->od, &m->capod, in->ncdels, sizeof *m->od))
        return SIB_ENOMEM;
    *out = *in;
    sst_del eff = active;
    out->del = (sst_del){SST_NO_TS, SST_NO_LDT};
    if (!in->is_static && del_beats(in->del, active)) {
        eff = in->del;
        if (cm_purgeable(p, in->del.ts, in->del.ldt)) p->purged++;
        else out->del = in->del;
    }
    compact_marker(p, in, eff, out);
    uint32_t nd = 0;
    for (uint32_t i = 0; i < in->ncdels; i++) {
        const sst_cdel *d = &in->cdels[i];
        if (!del_beats(d->del, eff)) continue;
        if (cm_purgeable(p, d->del.ts, d->del.ldt)) {
            p->purged++;
            continue;
        }
        m->od[nd++] = *d;
    }
    uint32_t nc = 0;
    for (uint32_t i = 0; i < in->ncells; i++) {
        const sst_cell *c = &in->cells[i];
        if (del_set(eff) && c->ts <= eff.ts) continue;
        if (in->ncdels) {
            int64_t cd = cdel_ts(in, c->col);
            if (cd != SST_NO_TS && c->ts <= cd) continue;
        }
        sst_cell x = *c;
        if (x.ttl > 0 && p->now >= x.ldt) { /* expired: a tombstone from its write time */
            x.ldt = c->ldt - c->ttl;
            x.ttl = 0;
            x.val = NULL;
            x.vlen = 0;
        }
        if (sst_cell_tomb(&x) && cm_purgeable(p, x.ts, x.ldt)) {
            p->purged++;
            continue;
        }
        m->oc[nc++] = x;
    }
    out->cells = m->oc;
    out->ncells = nc;
    out->cdels = m->od;
    out->ncdels = nd;
    return (del_set(out->del) || out->marker_ts != SST_NO_TS || nc || nd) ? 1 : 0;
}
