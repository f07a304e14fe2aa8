/* read.c: partition reads (st_iter) and token-ordered scans (st_scan).
 *
 * A read resolves deletions at read time, Cassandra's way: the active
 * deletion of a row is the superseding one of (partition deletion, every
 * range tombstone covering its clustering key, the row deletion); a marker or
 * cell is live iff its timestamp is above that deletion's, it is not a
 * tombstone, not older than its column's complex deletion, and not expired
 * (now_s < expiry). A row is returned iff its marker or a cell is live.
 *
 * Sources: today the only source is the memtable; with SSTables the iterator
 * becomes a merge of per-source cursors in clustering order (reconciling
 * equal keys with the same LWW rules) before this evaluation. The public
 * iterator state (slices, reversed, now_s, status) already carries what that
 * merge needs.
 *
 * Cursors survive writes between calls: each remembers the last entry it
 * returned and re-seeks past it when the tree's version moved.
 */
#include "storage_int.h"

#include <stdlib.h>

typedef struct it_slice { mt_bound start, end; } it_slice;

struct st_iter {
    mt_part *p;
    int32_t now;
    bool reversed, positioned;
    size_t nslices, si;
    it_slice *sl;
    bt_cur cur;
    uint64_t ver;
    mt_row *last;
    st_cell_view *cv;
    size_t cvcap;
    int status;
};

struct st_scan {
    st_table *t;
    int32_t now;
    bool positioned, has_start, start_pk, start_incl;
    uint64_t start_prefix;
    bt_ent start_probe;
    uint8_t *start_key;
    bt_cur cur;
    uint64_t ver;
    mt_part *last;
};

/* ---- row evaluation ---- */

static st_deletion active_deletion(const mt_part *p, const mt_row *r, bool is_static)
{
    st_deletion d = mt_part_del(p);
    if (is_static) return d; /* range tombstones and row deletions never cover the static row */
    for (uint32_t i = 0, n = p->x ? p->x->nrt : 0; i < n; i++) {
        const mt_rt *rt = &p->x->rts[i];
        if (st_del_supersedes(rt->del, d) && mt_bound_cmp(r->ck, r->e.keylen, &rt->start, true) > 0 &&
            mt_bound_cmp(r->ck, r->e.keylen, &rt->end, false) < 0)
            d = rt->del;
    }
    if (st_del_supersedes(mt_row_del(r), d)) d = mt_row_del(r);
    return d;
}

static int64_t cdel_ts(const mt_row *r, uint32_t col)
{
    for (uint32_t i = 1, n = r->cdels[0].col; i <= n; i++)
        if (r->cdels[i].col == col) return r->cdels[i].del.ts;
    return ST_NO_TIMESTAMP;
}

static bool cell_live(const mt_row *r, const mt_cell *c, int64_t del_ts, int32_t now)
{
    if (mt_cell_tomb(c) || c->ts <= del_ts) return false;
    if (c->ttl > 0 && now >= c->ldt) return false;
    return !r->cdels || c->ts > cdel_ts(r, c->col);
}

/* Evaluates r at now. With it == NULL only answers "is it live". */
static bool row_eval(st_iter *it, const mt_part *p, const mt_row *r, bool is_static, int32_t now, st_row *out)
{
    st_deletion d = active_deletion(p, r, is_static);
    bool marker = !is_static && r->marker_ts != ST_NO_TIMESTAMP && r->marker_ts > d.ts &&
                  (r->marker_ttl == 0 || now < r->marker_ldt);
    if (!it) {
        if (marker) return true;
        for (uint32_t i = 0; i < r->ncells; i++)
            if (cell_live(r, r->cells[i], d.ts, now)) return true;
        return false;
    }
    if (it->cvcap < r->ncells) {
        size_t cap = r->ncells < 16 ? 16 : r->ncells;
        st_cell_view *n = realloc(it->cv, cap * sizeof *n);
        if (!n) {
            it->status = SIB_ENOMEM;
            return false;
        }
        it->cv = n;
        it->cvcap = cap;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < r->ncells; i++) {
        const mt_cell *c = r->cells[i];
        if (!cell_live(r, c, d.ts, now)) continue;
        st_cell_view *v = &it->cv[k++];
        v->col = c->col;
        v->path = c->pathlen ? c->data : NULL;
        v->pathlen = c->pathlen;
        v->val = c->data + c->pathlen;
        v->vlen = c->vlen;
        v->ts = c->ts;
        v->ttl = c->ttl;
        v->expiry = c->ldt;
    }
    if (!marker && !k) return false;
    out->ck = r->ck;
    out->cklen = r->e.keylen;
    out->is_static = is_static;
    out->has_marker = marker;
    out->marker_ts = marker ? r->marker_ts : ST_NO_TIMESTAMP;
    out->marker_ttl = marker ? r->marker_ttl : 0;
    out->marker_expiry = marker ? r->marker_ldt : ST_NO_DELETION_TIME;
    out->cells = it->cv;
    out->ncells = k;
    return true;
}

bool mt_part_live(const mt_part *p, int32_t now_s)
{
    if (p->x && p->x->static_row && row_eval(NULL, p, p->x->static_row, true, now_s, NULL)) return true;
    bt_cur c;
    for (bt_first(&p->rows, &c); bt_cur_valid(&c); bt_cur_next(&c))
        if (row_eval(NULL, p, (const mt_row *)bt_cur_get(&c), false, now_s, NULL)) return true;
    return false;
}

bool st_partition_live(st_table *t, const uint8_t *pk, size_t pklen, int32_t now_s)
{
    const mt_part *p = memtable_find(&t->mt, pk, pklen);
    return p && mt_part_live(p, now_s);
}

/* ---- st_iter ---- */

static void bound_copy(mt_bound *d, const st_bound *s, uint8_t **keys)
{
    d->incl = s->incl;
    d->unbounded = s->unbounded;
    d->len = s->unbounded ? 0 : (uint32_t)s->len;
    d->key = *keys;
    if (d->len) memcpy(*keys, s->key, d->len);
    *keys += d->len;
}

st_iter *st_read(st_table *t, const uint8_t *pk, size_t pklen, const st_slice *slices, size_t nslices,
                 bool reversed, int32_t now_s)
{
    size_t keybytes = 0;
    for (size_t i = 0; i < nslices; i++) {
        if (!slices[i].start.unbounded) keybytes += slices[i].start.len;
        if (!slices[i].end.unbounded) keybytes += slices[i].end.len;
    }
    size_t ns = nslices ? nslices : 1;
    st_iter *it = calloc(1, sizeof *it + ns * sizeof(it_slice) + keybytes);
    if (!it) return NULL;
    it->sl = (it_slice *)(it + 1);
    it->nslices = ns;
    it->reversed = reversed;
    it->now = now_s;
    it->p = memtable_find(&t->mt, pk, pklen);
    if (!nslices) {
        it->sl[0].start.unbounded = it->sl[0].end.unbounded = true;
        return it;
    }
    uint8_t *keys = (uint8_t *)(it->sl + ns);
    for (size_t i = 0; i < nslices; i++) {
        bound_copy(&it->sl[i].start, &slices[i].start, &keys);
        bound_copy(&it->sl[i].end, &slices[i].end, &keys);
    }
    return it;
}

static bool before_start(const bt_ent *e, const void *arg)
{
    return mt_bound_cmp(e->key, e->keylen, arg, true) < 0;
}
static bool not_after_end(const bt_ent *e, const void *arg)
{
    return mt_bound_cmp(e->key, e->keylen, arg, false) < 0;
}
static bool not_after_ent(const bt_ent *e, const void *arg) { return bt_ent_cmp(e, arg) <= 0; }
static bool before_ent(const bt_ent *e, const void *arg) { return bt_ent_cmp(e, arg) < 0; }

/* Positions the cursor on the first candidate of the current slice, or (when
 * resuming) on the first candidate past it->last. Reversed reads seek the
 * first entry after the target and step back. */
static void iter_position(st_iter *it, const it_slice *s, bool resume)
{
    const bt *rows = &it->p->rows;
    if (!it->reversed) {
        if (resume) bt_seek(rows, not_after_ent, &it->last->e, &it->cur);
        else bt_seek(rows, before_start, &s->start, &it->cur);
        return;
    }
    bool found = resume ? bt_seek(rows, before_ent, &it->last->e, &it->cur)
                        : bt_seek(rows, not_after_end, &s->end, &it->cur);
    if (found) bt_cur_prev(&it->cur);
    else bt_last(rows, &it->cur);
}

bool st_iter_next(st_iter *it, st_row *out)
{
    if (!it->p || it->status) return false;
    while (it->si < it->nslices) {
        const it_slice *s = &it->sl[it->reversed ? it->nslices - 1 - it->si : it->si];
        if (!it->positioned || it->ver != it->p->rows.version) {
            iter_position(it, s, it->positioned && it->last);
            it->positioned = true;
            it->ver = it->p->rows.version;
        }
        if (!bt_cur_valid(&it->cur)) {
            it->si++;
            it->positioned = false;
            continue;
        }
        mt_row *r = (mt_row *)bt_cur_get(&it->cur);
        bool in = it->reversed ? mt_bound_cmp(r->ck, r->e.keylen, &s->start, true) > 0
                               : mt_bound_cmp(r->ck, r->e.keylen, &s->end, false) < 0;
        if (!in) {
            it->si++;
            it->positioned = false;
            continue;
        }
        if (it->reversed) bt_cur_prev(&it->cur);
        else bt_cur_next(&it->cur);
        it->last = r;
        if (row_eval(it, it->p, r, false, it->now, out)) return true;
        if (it->status) return false;
    }
    return false;
}

bool st_iter_static(st_iter *it, st_row *out)
{
    if (!it->p || !it->p->x || !it->p->x->static_row || it->status) return false;
    return row_eval(it, it->p, it->p->x->static_row, true, it->now, out);
}

int st_iter_status(const st_iter *it, sib_err *err)
{
    if (it->status) return sib_err_set(err, it->status, "storage: read failed: %s", sib_strerror(it->status));
    return 0;
}

void st_iter_destroy(st_iter *it)
{
    if (!it) return;
    free(it->cv);
    free(it);
}

/* ---- st_scan ---- */

st_scan *st_scan_open(st_table *t, const st_position *start, int32_t now_s)
{
    size_t klen = start && start->pk ? start->pklen : 0;
    st_scan *sc = calloc(1, sizeof *sc + klen);
    if (!sc) return NULL;
    sc->t = t;
    sc->now = now_s;
    if (start) {
        sc->has_start = true;
        sc->start_incl = start->inclusive;
        sc->start_prefix = bt_token_prefix(start->token);
        if (start->pk) {
            sc->start_pk = true;
            sc->start_key = (uint8_t *)(sc + 1);
            if (klen) memcpy(sc->start_key, start->pk, klen);
            sc->start_probe.prefix = sc->start_prefix;
            sc->start_probe.key = sc->start_key;
            sc->start_probe.keylen = (uint32_t)klen;
        }
    }
    return sc;
}

static bool scan_before_start(const bt_ent *e, const void *arg)
{
    const st_scan *sc = arg;
    if (sc->start_pk) {
        int c = bt_ent_cmp(e, &sc->start_probe);
        return sc->start_incl ? c < 0 : c <= 0;
    }
    return sc->start_incl ? e->prefix < sc->start_prefix : e->prefix <= sc->start_prefix;
}

bool st_scan_next_partition(st_scan *sc, const uint8_t **pk, size_t *pklen, int64_t *token)
{
    const bt *parts = &sc->t->mt.parts;
    for (;;) {
        if (!sc->positioned || sc->ver != parts->version) {
            if (sc->last) bt_seek(parts, not_after_ent, &sc->last->e, &sc->cur);
            else if (sc->has_start) bt_seek(parts, scan_before_start, sc, &sc->cur);
            else bt_first(parts, &sc->cur);
            sc->positioned = true;
            sc->ver = parts->version;
        }
        if (!bt_cur_valid(&sc->cur)) return false;
        mt_part *p = (mt_part *)bt_cur_get(&sc->cur);
        bt_cur_next(&sc->cur);
        sc->last = p;
        if (!mt_part_live(p, sc->now)) continue;
        *pk = p->pk;
        *pklen = p->e.keylen;
        *token = mt_part_token(p);
        return true;
    }
}

int st_scan_status(const st_scan *sc, sib_err *err) { return 0; }

void st_scan_destroy(st_scan *sc) { free(sc); }
