/* merge.c: the schema rows of a node as a set of timestamped definitions,
 * their wire form, and the last-write-wins rule that merges two nodes'
 * schemas (docs/membership.md "Schema").
 *
 * One entry per keyspace and per table (key: kind, keyspace, table name).
 * Its value is either the definition in persist.c's binary form (SIBK / SIBT,
 * table and column ids included) or a tombstone left by a DROP:
 *
 *   tombstone = "SIBX" | u8 version (1) | u8 kind ('k' / 't') | 16 table id
 *               (zeros for a keyspace)
 *
 * The rule, for two entries of the same key: the higher write timestamp
 * wins; on equal timestamps the greater value bytes win. That is exactly
 * the storage engine's rule for two cells (DESIGN.md "Last write wins"), so
 * the in-memory entries and the persisted schema rows never disagree, and
 * it gives the tie-breaks the design asks for: "SIBX" sorts after "SIBK" and
 * "SIBT", so a DROP beats a create of the same microsecond; two tables of
 * the same name differ first in their ids (keyspace and name, which come
 * before the id in SIBT, are equal), so the greater table id wins.
 *
 * Snapshot (what SCHEMA_PULL answers and SCHEMA_PUSH carries):
 *
 *   "SIBS" | u8 version (1) | uvarint n | n * (u8 kind, str keyspace,
 *          str name ("" for a keyspace), u64 timestamp, str value)
 *   str = uvarint length + bytes
 *
 * Decoding checks that every name is a valid CQL name, every value's magic
 * fits its kind, that a definition names the keyspace (and table) of its key
 * and that no key repeats; anything else is SIB_ECORRUPT and nothing is
 * kept. Entries are kept sorted by key, so a snapshot is deterministic.
 */
#include "schema_int.h"

#include <stdlib.h>

#define SNAP_VERSION 1
#define TOMB_VERSION 1
#define SNAP_MAX_ENTRIES 1000000

typedef struct def_entry {
    sch_def d;       /* d.ks, d.name, d.val point into the malloc'd strings below */
    char *ks, *name;
    uint8_t *val;
} def_entry;

struct sch_defs {
    def_entry *e;    /* sorted by (kind, ks, name) */
    size_t n, cap;
};

sch_defs *sch_defs_create(void) { return calloc(1, sizeof(sch_defs)); }

void sch_defs_destroy(sch_defs *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->e[i].ks);
        free(d->e[i].name);
        free(d->e[i].val);
    }
    free(d->e);
    free(d);
}

static int key_cmp(sch_def_kind ak, const char *aks, const char *aname, const sch_def *b)
{
    if (ak != b->kind) return (int)ak < (int)b->kind ? -1 : 1;
    int c = strcmp(aks, b->ks);
    return c ? c : strcmp(aname, b->name);
}

/* Index of the key, or of where it would be inserted (*found false). */
static size_t find(const sch_defs *d, sch_def_kind kind, const char *ks, const char *name, bool *found)
{
    size_t lo = 0, hi = d->n;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(kind, ks, name, &d->e[mid].d);
        if (!c) { *found = true; return mid; }
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

const sch_def *sch_defs_get(const sch_defs *d, sch_def_kind kind, const char *ks, const char *name)
{
    bool found;
    size_t i = find(d, kind, ks, name ? name : "", &found);
    return found ? &d->e[i].d : NULL;
}

size_t sch_defs_count(const sch_defs *d) { return d->n; }
const sch_def *sch_defs_at(const sch_defs *d, size_t i) { return i < d->n ? &d->e[i].d : NULL; }

int sch_defs_put(sch_defs *d, const sch_def *def)
{
    const char *name = def->kind == SCH_DEF_KEYSPACE ? "" : def->name;
    def_entry ne = {0};
    ne.ks = xstrdup(def->ks);
    ne.name = xstrdup(name);
    ne.val = malloc(def->len ? def->len : 1);
    if (!ne.ks || !ne.name || !ne.val) goto oom;
    memcpy(ne.val, def->val, def->len);
    ne.d = (sch_def){.kind = def->kind, .ks = ne.ks, .name = ne.name, .ts = def->ts, .val = ne.val, .len = def->len};
    bool found;
    size_t i = find(d, def->kind, def->ks, name, &found);
    if (found) {
        free(d->e[i].ks);
        free(d->e[i].name);
        free(d->e[i].val);
        d->e[i] = ne;
        return 0;
    }
    if (!sib_grow((void **)&d->e, &d->cap, d->n + 1, sizeof *d->e)) goto oom;
    memmove(&d->e[i + 1], &d->e[i], (d->n - i) * sizeof *d->e);
    d->e[i] = ne;
    d->n++;
    return 0;
oom:
    free(ne.ks);
    free(ne.name);
    free(ne.val);
    return SIB_ENOMEM;
}

/* ---- tombstones and the rule ---- */

int sch_def_tombstone(sch_def_kind kind, const uint8_t *table_id, sib_buf *out)
{
    static const uint8_t zero[16];
    sib_buf_append(out, "SIBX", 4);
    sib_buf_u8(out, TOMB_VERSION);
    sib_buf_u8(out, (uint8_t)kind);
    sib_buf_append(out, table_id ? table_id : zero, 16);
    return out->oom ? SIB_ENOMEM : 0;
}

bool sch_def_is_tombstone(const sch_def *d) { return d->len >= 4 && !memcmp(d->val, "SIBX", 4); }

int sch_def_compare(const sch_def *a, const sch_def *b)
{
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    size_t n = SIB_MIN(a->len, b->len);
    int c = n ? memcmp(a->val, b->val, n) : 0;
    if (c) return c < 0 ? -1 : 1;
    return a->len == b->len ? 0 : a->len < b->len ? -1 : 1;
}

/* The order winners are applied in: keyspaces that (re)appear first, as
 * their tables need them; then tables; then keyspace drops, which take the
 * remaining tables of the keyspace with them. */
static int apply_rank(const sch_def *d)
{
    if (d->kind == SCH_DEF_TABLE) return 1;
    return sch_def_is_tombstone(d) ? 2 : 0;
}

int sch_defs_merge(const sch_defs *local, const sch_defs *remote, const sch_def ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const sch_def **w = malloc((remote->n ? remote->n : 1) * sizeof *w);
    if (!w) return SIB_ENOMEM;
    size_t k = 0;
    for (int rank = 0; rank < 3; rank++)
        for (size_t i = 0; i < remote->n; i++) {
            const sch_def *r = &remote->e[i].d;
            if (apply_rank(r) != rank) continue;
            const sch_def *l = sch_defs_get(local, r->kind, r->ks, r->name);
            if (!l || sch_def_compare(r, l) > 0) w[k++] = r;
        }
    if (!k) { free(w); return 0; }
    *out = w;
    *n = k;
    return 0;
}

/* ---- snapshot codec ---- */

static void put_bytes(sib_buf *b, const void *p, size_t n)
{
    sib_buf_uvarint(b, n);
    sib_buf_append(b, p, n);
}

int sch_defs_encode(const sch_defs *d, sib_buf *out)
{
    sib_buf_append(out, "SIBS", 4);
    sib_buf_u8(out, SNAP_VERSION);
    sib_buf_uvarint(out, d->n);
    for (size_t i = 0; i < d->n; i++) {
        const sch_def *e = &d->e[i].d;
        sib_buf_u8(out, (uint8_t)e->kind);
        put_bytes(out, e->ks, strlen(e->ks));
        put_bytes(out, e->name, strlen(e->name));
        sib_buf_be64(out, (uint64_t)e->ts);
        put_bytes(out, e->val, e->len);
    }
    return out->oom ? SIB_ENOMEM : 0;
}

/* A length-prefixed string copied into buf (cap bytes, NUL-terminated). */
static bool get_name(sib_rd *r, char *buf, size_t cap)
{
    uint64_t n;
    const uint8_t *p;
    if (!sib_rd_uvarint(r, &n) || n >= cap || !sib_rd_bytes(r, (size_t)n, &p)) return false;
    memcpy(buf, p, (size_t)n);
    buf[n] = 0;
    return strlen(buf) == n;
}

/* The value fits the key: a tombstone of the same kind, or a definition
 * whose own keyspace (and table) name is the key's. */
static bool value_fits(sch_def_kind kind, const char *ks, const char *name, const uint8_t *v, size_t len)
{
    sib_rd r;
    const uint8_t *m;
    uint8_t ver, k;
    sib_rd_init(&r, v, len);
    if (!sib_rd_bytes(&r, 4, &m) || !sib_rd_u8(&r, &ver)) return false;
    if (!memcmp(m, "SIBX", 4))
        return ver == TOMB_VERSION && sib_rd_u8(&r, &k) && k == (uint8_t)kind && sib_rd_left(&r) == 16;
    if (memcmp(m, kind == SCH_DEF_KEYSPACE ? "SIBK" : "SIBT", 4)) return false;
    char dks[64], dname[64];
    if (!get_name(&r, dks, sizeof dks) || strcmp(dks, ks)) return false;
    return kind == SCH_DEF_KEYSPACE || (get_name(&r, dname, sizeof dname) && !strcmp(dname, name));
}

static int decode_entry(sib_rd *r, sch_defs *d, sib_err *err)
{
    uint8_t kind;
    char ks[64], name[64];
    uint64_t ts, vlen;
    const uint8_t *v;
    if (!sib_rd_u8(r, &kind) || (kind != SCH_DEF_KEYSPACE && kind != SCH_DEF_TABLE) || !get_name(r, ks, sizeof ks) ||
        !get_name(r, name, sizeof name) || !sib_rd_be64(r, &ts) || !sib_rd_uvarint(r, &vlen) ||
        vlen > sib_rd_left(r) || !sib_rd_bytes(r, (size_t)vlen, &v))
        return sib_err_set(err, SIB_ECORRUPT, "schema snapshot: truncated entry");
    if (!sch_name_valid(ks) || (kind == SCH_DEF_TABLE ? !sch_name_valid(name) : name[0] != 0))
        return sib_err_set(err, SIB_ECORRUPT, "schema snapshot: bad name %s.%s", ks, name);
    if (!value_fits((sch_def_kind)kind, ks, name, v, (size_t)vlen))
        return sib_err_set(err, SIB_ECORRUPT, "schema snapshot: the value of %s.%s is no definition of it", ks, name);
    if (sch_defs_get(d, (sch_def_kind)kind, ks, name))
        return sib_err_set(err, SIB_ECORRUPT, "schema snapshot: %s.%s twice", ks, name);
    sch_def e = {.kind = (sch_def_kind)kind, .ks = ks, .name = name, .ts = (int64_t)ts, .val = v, .len = (size_t)vlen};
    return sch_defs_put(d, &e) ? sib_err_set(err, SIB_ENOMEM, "schema snapshot") : 0;
}

int sch_defs_decode(sch_defs **out, const uint8_t *p, size_t len, sib_err *err)
{
    *out = NULL;
    sib_rd r;
    const uint8_t *m;
    uint8_t ver;
    uint64_t n;
    sib_rd_init(&r, p, len);
    if (!sib_rd_bytes(&r, 4, &m) || memcmp(m, "SIBS", 4) || !sib_rd_u8(&r, &ver) || ver != SNAP_VERSION)
        return sib_err_set(err, SIB_ECORRUPT, "not a schema snapshot (bad magic or version)");
    if (!sib_rd_uvarint(&r, &n) || n > SNAP_MAX_ENTRIES || n > sib_rd_left(&r))
        return sib_err_set(err, SIB_ECORRUPT, "schema snapshot: bad entry count");
    sch_defs *d = sch_defs_create();
    if (!d) return sib_err_set(err, SIB_ENOMEM, "schema snapshot");
    int rc = 0;
    for (uint64_t i = 0; !rc && i < n; i++) rc = decode_entry(&r, d, err);
    if (!rc && sib_rd_left(&r)) rc = sib_err_set(err, SIB_ECORRUPT, "schema snapshot: trailing bytes");
    if (rc) { sch_defs_destroy(d); return rc; }
    *out = d;
    return 0;
}

/* The table id of a definition or tombstone (false for keyspaces). */
bool sch_def_table_id(const sch_def *d, uint8_t id[16])
{
    if (d->kind != SCH_DEF_TABLE) return false;
    if (sch_def_is_tombstone(d)) {
        if (d->len != 22) return false;
        memcpy(id, d->val + 6, 16);
        return true;
    }
    sib_rd r;
    const uint8_t *p;
    uint64_t n;
    sib_rd_init(&r, d->val, d->len);
    if (!sib_rd_bytes(&r, 5, &p)) return false;
    for (int i = 0; i < 2; i++)
        if (!sib_rd_uvarint(&r, &n) || n > sib_rd_left(&r) || !sib_rd_bytes(&r, (size_t)n, &p)) return false;
    if (!sib_rd_bytes(&r, 16, &p)) return false;
    memcpy(id, p, 16);
    return true;
}
