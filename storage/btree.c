/* btree.c: an insert-only B+tree over arena-allocated entries.
 *
 * Used for the rows of a memtable's general partitions (memtable.c), keyed
 * by clustering key. Entries begin with bt_ent; the
 * tree orders them by (prefix, key memcmp, shorter key first). Nodes keep
 * every entry's 64-bit prefix inline, so a search touches one node per level
 * and dereferences an entry only when prefixes tie (clustering keys sharing
 * 8 leading bytes).
 *
 * Node layout (one arena allocation):
 *     header | u64 keys[cap] | bt_ent *ents[cap] | bt_node *kids[cap] (inner only)
 * In an inner node ents[i]/keys[i] are the smallest entry of kids[i]; as
 * nothing is ever deleted, that is exact. Leaves are doubly linked for
 * cursors. A one-entry tree is just the entry (no node: a one-row
 * general partition pays nothing for its row tree); the first
 * leaf has capacity 2 and doubles up to BT_FANOUT before the first split.
 * Appending at the right edge splits 'all left' (full leaves for sequential
 * clustering keys); other splits halve.
 *
 * Memtables are freed whole (arena), so there is no delete. A cursor is valid
 * until the next insert; readers compare bt.version and re-seek.
 */
#include "storage_int.h"

#define BT_FANOUT 32
#define BT_MAX_DEPTH 16

struct bt_node {
    uint16_t n, cap;
    uint8_t leaf;
    bt_node *prev, *next;
    uint64_t keys[];
};

static inline bt_ent **node_ents(bt_node *x) { return (bt_ent **)(x->keys + x->cap); }
static inline bt_node **node_kids(bt_node *x) { return (bt_node **)(x->keys + 2 * x->cap); }

static bt_node *node_new(sib_arena *a, bool leaf, uint16_t cap)
{
    size_t sz = sizeof(bt_node) + (size_t)cap * (leaf ? 16 : 24);
    bt_node *x = sib_arena_alloc(a, sz);
    if (!x) return NULL;
    x->n = 0;
    x->cap = cap;
    x->leaf = leaf;
    x->prev = x->next = NULL;
    return x;
}

uint64_t bt_key_prefix(const uint8_t *k, size_t n)
{
    uint8_t b[8] = {0};
    if (n) memcpy(b, k, n < 8 ? n : 8);
    return get_be64(b);
}

int bt_ent_cmp(const bt_ent *a, const bt_ent *b)
{
    if (a->prefix != b->prefix) return a->prefix < b->prefix ? -1 : 1;
    size_t n = a->keylen < b->keylen ? a->keylen : b->keylen;
    int c = n ? memcmp(a->key, b->key, n) : 0;
    if (c) return c;
    return a->keylen < b->keylen ? -1 : a->keylen > b->keylen;
}

/* Number of entries of x that are <= probe (prefixes compared inline). */
static uint32_t node_upper(bt_node *x, const bt_ent *probe)
{
    uint32_t lo = 0, hi = x->n;
    bt_ent **ents = node_ents(x);
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int c = x->keys[mid] < probe->prefix ? -1
                : x->keys[mid] > probe->prefix ? 1
                                                : bt_ent_cmp(ents[mid], probe);
        if (c <= 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

void bt_init(bt *t) { memset(t, 0, sizeof *t); }

static inline int ent_vs(uint64_t key, const bt_ent *e, const bt_ent *probe)
{
    if (key != probe->prefix) return key < probe->prefix ? -1 : 1;
    return bt_ent_cmp(e, probe);
}

bt_ent *bt_find(const bt *t, const bt_ent *probe)
{
    if (!t->count) return NULL;
    if (!t->depth) {
        bt_ent *e = t->root;
        return bt_ent_cmp(e, probe) == 0 ? e : NULL;
    }
    bt_node *x = t->root;
    while (!x->leaf) {
        uint32_t i = node_upper(x, probe);
        if (!i) return NULL;
        x = node_kids(x)[i - 1];
    }
    uint32_t i = node_upper(x, probe);
    if (!i || x->keys[i - 1] != probe->prefix) return NULL; /* no entry dereference on a miss */
    bt_ent *e = node_ents(x)[i - 1];
    return bt_ent_cmp(e, probe) == 0 ? e : NULL;
}

static void node_put(bt_node *x, uint32_t i, uint64_t key, bt_ent *e, bt_node *kid)
{
    SIB_ASSERT(x->n < x->cap && i <= x->n);
    uint32_t m = x->n - i;
    memmove(x->keys + i + 1, x->keys + i, m * sizeof x->keys[0]);
    memmove(node_ents(x) + i + 1, node_ents(x) + i, m * sizeof(bt_ent *));
    x->keys[i] = key;
    node_ents(x)[i] = e;
    if (!x->leaf) {
        memmove(node_kids(x) + i + 1, node_kids(x) + i, m * sizeof(bt_node *));
        node_kids(x)[i] = kid;
    }
    x->n++;
}

/* Moves entries [from, n) of x into the empty node r. */
static void node_move(bt_node *x, uint32_t from, bt_node *r)
{
    uint32_t m = x->n - from;
    memcpy(r->keys, x->keys + from, m * sizeof x->keys[0]);
    memcpy(node_ents(r), node_ents(x) + from, m * sizeof(bt_ent *));
    if (!x->leaf) memcpy(node_kids(r), node_kids(x) + from, m * sizeof(bt_node *));
    r->n = (uint16_t)m;
    x->n = (uint16_t)from;
}

/* Inserts (key, e, kid) at i of full node x, splitting it; returns the new
 * right sibling (already linked if a leaf), NULL on OOM. */
static bt_node *node_split_put(sib_arena *a, bt_node *x, uint32_t i, uint64_t key, bt_ent *e, bt_node *kid)
{
    bt_node *r = node_new(a, x->leaf, BT_FANOUT);
    if (!r) return NULL;
    uint32_t at = (i == x->n && x->leaf && !x->next) ? x->n : x->n / 2;
    node_move(x, at, r);
    if (i < at || (i == at && at < x->cap)) node_put(x, i, key, e, kid);
    else node_put(r, i - at, key, e, kid);
    if (x->leaf) {
        r->next = x->next;
        r->prev = x;
        if (x->next) x->next->prev = r;
        x->next = r;
    }
    return r;
}

static int root_leaf_grow(bt *t, sib_arena *a)
{
    bt_node *x = t->root;
    bt_node *g = node_new(a, true, (uint16_t)SIB_MIN(x->cap * 2, BT_FANOUT));
    if (!g) return SIB_ENOMEM;
    node_move(x, 0, g);
    t->root = g;
    return 0;
}

/* Second entry of a one-entry tree: the tree gets its first leaf. */
static bt_ent *single_to_leaf(bt *t, sib_arena *a, bt_ent *fresh)
{
    bt_ent *only = t->root;
    bt_node *x = node_new(a, true, 2);
    if (!x) return NULL;
    bool first = bt_ent_cmp(fresh, only) < 0;
    node_put(x, 0, only->prefix, only, NULL);
    node_put(x, first ? 0 : 1, fresh->prefix, fresh, NULL);
    t->root = x;
    t->depth = 1;
    return fresh;
}

/* Pushes the split-off right sibling r up the recorded path. */
static int push_up(bt *t, sib_arena *a, bt_node **path, uint32_t *pidx, uint32_t d, bt_node *r)
{
    while (d > 0) {
        bt_node *p = path[--d];
        uint32_t i = pidx[d] + 1;
        if (p->n < p->cap) {
            node_put(p, i, r->keys[0], node_ents(r)[0], r);
            return 0;
        }
        if (!(r = node_split_put(a, p, i, r->keys[0], node_ents(r)[0], r))) return SIB_ENOMEM;
    }
    bt_node *nr = node_new(a, false, BT_FANOUT);
    if (!nr) return SIB_ENOMEM;
    bt_node *l = t->root;
    node_put(nr, 0, l->keys[0], node_ents(l)[0], l);
    node_put(nr, 1, r->keys[0], node_ents(r)[0], r);
    t->root = nr;
    t->depth++;
    SIB_ASSERT(t->depth < BT_MAX_DEPTH);
    return 0;
}

bt_ent *bt_get_or_insert(bt *t, sib_arena *a, const bt_ent *probe, bt_make_fn make, void *arg, bool *inserted)
{
    bt_node *path[BT_MAX_DEPTH];
    uint32_t pidx[BT_MAX_DEPTH], d = 0;
    uint32_t newmin = 0; /* bit L: probe is below every key of path[L] */
    *inserted = false;
    if (t->count <= 1) {
        if (t->count && bt_ent_cmp(t->root, probe) == 0) return t->root;
        bt_ent *fresh = make(arg);
        if (!fresh) return NULL;
        if (t->count && !single_to_leaf(t, a, fresh)) return NULL;
        if (!t->count) t->root = fresh;
        t->count++;
        t->version++;
        *inserted = true;
        return fresh;
    }
    bt_node *x = t->root;
    while (!x->leaf) {
        uint32_t i = node_upper(x, probe);
        if (!i) newmin |= 1u << d;
        else i--;
        path[d] = x;
        pidx[d++] = i;
        x = node_kids(x)[i];
    }
    uint32_t pos = node_upper(x, probe);
    if (pos && ent_vs(x->keys[pos - 1], node_ents(x)[pos - 1], probe) == 0) return node_ents(x)[pos - 1];
    bt_ent *fresh = make(arg);
    if (!fresh) return NULL;
    for (uint32_t l = 0; l < d; l++) { /* it becomes the minimum of those subtrees */
        if (newmin & (1u << l)) {
            path[l]->keys[0] = fresh->prefix;
            node_ents(path[l])[0] = fresh;
        }
    }
    t->version++;
    if (x->n == x->cap && x->cap < BT_FANOUT) { /* small root leaf: grow instead of splitting */
        SIB_ASSERT(x == t->root);
        if (root_leaf_grow(t, a)) return NULL;
        x = t->root;
    }
    if (x->n < x->cap) node_put(x, pos, fresh->prefix, fresh, NULL);
    else {
        bt_node *r = node_split_put(a, x, pos, fresh->prefix, fresh, NULL);
        if (!r || push_up(t, a, path, pidx, d, r)) return NULL;
    }
    t->count++;
    *inserted = true;
    return fresh;
}

bool bt_seek(const bt *t, bt_before_fn before, const void *arg, bt_cur *c)
{
    c->leaf = NULL;
    c->single = NULL;
    c->idx = 0;
    if (!t->count) return false;
    if (!t->depth) {
        c->single = before(t->root, arg) ? NULL : t->root;
        return c->single != NULL;
    }
    bt_node *x = t->root;
    while (!x->leaf) { /* last child whose minimum is before the target, else the first */
        uint32_t lo = 0, hi = x->n;
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (before(node_ents(x)[mid], arg)) lo = mid + 1;
            else hi = mid;
        }
        x = node_kids(x)[lo ? lo - 1 : 0];
    }
    uint32_t lo = 0, hi = x->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (before(node_ents(x)[mid], arg)) lo = mid + 1;
        else hi = mid;
    }
    c->leaf = x;
    c->idx = lo;
    if (lo == x->n) {
        c->leaf = x->next;
        c->idx = 0;
    }
    return c->leaf != NULL;
}

static bool bt_edge(const bt *t, bt_cur *c, bool last)
{
    c->leaf = NULL;
    c->single = NULL;
    c->idx = 0;
    if (!t->count) return false;
    if (!t->depth) {
        c->single = t->root;
        return true;
    }
    bt_node *x = t->root;
    while (!x->leaf) x = node_kids(x)[last ? x->n - 1 : 0];
    c->leaf = x;
    c->idx = last ? x->n - 1u : 0;
    return true;
}

bool bt_first(const bt *t, bt_cur *c) { return bt_edge(t, c, false); }
bool bt_last(const bt *t, bt_cur *c) { return bt_edge(t, c, true); }

bool bt_cur_valid(const bt_cur *c) { return c->leaf || c->single; }
bt_ent *bt_cur_get(const bt_cur *c) { return c->single ? c->single : node_ents(c->leaf)[c->idx]; }

void bt_cur_next(bt_cur *c)
{
    if (c->single) {
        c->single = NULL;
        return;
    }
    if (++c->idx < c->leaf->n) return;
    c->leaf = c->leaf->next;
    c->idx = 0;
}

void bt_cur_prev(bt_cur *c)
{
    if (c->single) {
        c->single = NULL;
        return;
    }
    if (c->idx > 0) {
        c->idx--;
        return;
    }
    c->leaf = c->leaf->prev;
    c->idx = c->leaf ? c->leaf->n - 1u : 0;
}
