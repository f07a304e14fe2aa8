/* fuzz_schema_snapshot.c: arbitrary bytes as a peer's schema snapshot
 * (SCHEMA_PULL answer / SCHEMA_PUSH; schema/merge.c).
 *
 * The decoder must reject or accept without reading out of bounds. An
 * accepted snapshot must re-encode into one that decodes to as many
 * entries, merge against an empty schema with every entry winning, and each definition in it must load
 * into a catalog or be refused with an error, never crash: that is what a
 * node does with a peer's rows. */
#include "schema.h"

#include <stdlib.h>

static void load_all(const sch_defs *d)
{
    sch_catalog *c = sch_catalog_create();
    if (!c) return;
    sib_err err;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < sch_defs_count(d); i++) {
            const sch_def *e = sch_defs_at(d, i);
            if (sch_def_is_tombstone(e) || (e->kind == SCH_DEF_KEYSPACE) != (pass == 0)) continue;
            if (e->kind == SCH_DEF_KEYSPACE) sch_catalog_load_keyspace(c, e->val, e->len, &err);
            else sch_catalog_load_table(c, e->val, e->len, &err);
        }
    sch_catalog_destroy(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sch_defs *d;
    sib_err err;
    if (sch_defs_decode(&d, data, size, &err)) return 0;
    sib_buf b;
    sib_buf_init(&b);
    if (sch_defs_encode(d, &b) == 0) {
        sch_defs *again;
        if (sch_defs_decode(&again, b.p, b.len, &err) || sch_defs_count(again) != sch_defs_count(d)) abort();
        sch_defs_destroy(again);
    }
    sib_buf_free(&b);
    sch_defs *empty = sch_defs_create();
    const sch_def **w;
    size_t n;
    if (empty && sch_defs_merge(empty, d, &w, &n) == 0) {
        if (n != sch_defs_count(d)) abort();
        free(w);
    }
    sch_defs_destroy(empty);
    load_all(d);
    sch_defs_destroy(d);
    return 0;
}
