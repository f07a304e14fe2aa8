/* workload.c: what each operation of sibyl-stress sends.
 *
 * Built-in commands (write / read / mixed): keyspace1.standard1 as
 * cassandra-stress creates it (key blob PRIMARY KEY, "C0" blob); WRITE
 * binds (key, value), READ binds key. The key of operation seq is
 * stress_key(keygen_next(pop, rng, seq)); the value is a slice of a random
 * pool chosen by the key, so the same key always gets the same bytes.
 *
 * User profiles (profile.c): the table's columns come from
 * system_schema.columns (partition key and clustering columns in position
 * order, then the others by name), their types from the bind metadata of
 * the INSERT it prepares. Every value is a pure function of a seed, so a
 * query regenerates exactly the rows inserts wrote:
 *
 *   partition index s   -pop if given, else the first partition-key
 *                       column's population (seq(a..b) walks it by
 *                       operation number, other distributions draw)
 *   partition key       first column: s; others: their population at mix(s, i)
 *   rows of partition s each clustering column j has cluster(j) values
 *                       (drawn from mix(s, j), the same every time), rows =
 *                       product; row r is the mixed-radix digits d_j of r
 *   clustering value j  seq population: lo + d_j (ordered rows, e.g. time);
 *                       otherwise its population at h_j = mix(h_j-1, d_j)
 *   other columns       their population at mix(h_last, column)
 *
 * A population index v becomes a value by type: integers, timestamps
 * (v ms), dates (day v after the epoch) and floats are v itself; text
 * and blob take a length from `size` and bytes from an rng seeded by v;
 * uuid/timeuuid/inet are bits of mix(v) (with version bits set).
 * Collections, UDTs, tuples, durations and counters are refused at setup.
 *
 * A table with BUCKET(...) / SALT(...) in its partition key (its
 * system_schema.tables extensions name them) has derived partition key
 * columns that the node computes: they are left out of the INSERT and of
 * the key generation, so a "partition" here is the natural key, and the
 * PREPARED answer carries no partition key indexes (no token routing).
 *
 * insert: `partitions` partitions, each with the share `select` of its
 * rows (at least one); one statement is an EXECUTE, more go as one BATCH
 * of `batchtype`. The largest possible batch (max partitions x max rows)
 * must fit the protocol's 65535 statements, checked at setup.
 * A query binds each marker from the column of the same name: samerow
 * takes all from one random row of a partition, multirow each from its
 * own random row.
 */
#include "stress.h"

#include <math.h>
#include <stdlib.h>
#include <strings.h>

enum { COL_PK, COL_CK, COL_REG };
enum { MAX_BATCH = 65535, MAX_CK = 16 };

typedef struct wcol {
    char *name;
    int kind, position;
    sch_type_code type;
    stress_dist pop_d;
    keygen pop, size, cluster;
} wcol;

struct workload {
    wcol *cols;            /* INSERT order: partition key, clustering, the rest */
    size_t ncols, npk, nck;
    keygen part;           /* partition index s */
    keygen partitions;     /* partitions per insert */
    keygen select;         /* rows per select_den written per partition */
    uint64_t select_den;
    cql_batch_type batch_type;
    int16_t *markers[STRESS_MAX_OPS]; /* query ops: the column of each bind marker */
    uint16_t nmarkers[STRESS_MAX_OPS];
};

/* ---- requests ---- */

void stress_req_init(stress_req *r)
{
    memset(r, 0, sizeof(*r));
    sib_buf_init(&r->data);
}

void stress_req_free(stress_req *r)
{
    sib_buf_free(&r->data);
    free(r->vals);
    free(r->off);
    free(r->stmts);
    stress_req_init(r);
}

static void req_reset(stress_req *r)
{
    sib_buf_reset(&r->data);
    r->nvals = 0;
    r->nstmts = 1;
    r->per_stmt = 0;
    r->batch = false;
    r->partitions = r->rows = 0;
}

/* Room for one more value of len bytes; NULL on OOM. The pointer is valid
 * until the next req_add. */
static uint8_t *req_add(stress_req *r, size_t len)
{
    if (!sib_grow((void **)&r->vals, &r->cap, r->nvals + 1, sizeof(*r->vals)) ||
        !sib_grow((void **)&r->off, &r->off_cap, r->nvals + 1, sizeof(*r->off)))
        return NULL;
    uint8_t *p = sib_buf_reserve(&r->data, len ? len : 1);
    if (!p) return NULL;
    r->off[r->nvals] = r->data.len;
    r->vals[r->nvals++].len = (int32_t)len;
    r->data.len += len;
    return p;
}

/* Points the values into data (final now) and splits a batch into stmts. */
static int req_done(stress_req *r)
{
    if (r->data.oom) return SIB_ENOMEM;
    for (size_t i = 0; i < r->nvals; i++) r->vals[i].p = r->data.p + r->off[i];
    if (!r->batch) return 0;
    if (!sib_grow((void **)&r->stmts, &r->stmt_cap, r->nstmts, sizeof(*r->stmts))) return SIB_ENOMEM;
    for (uint16_t i = 0; i < r->nstmts; i++)
        r->stmts[i] = (cli_batch_stmt){.values = r->vals + (size_t)i * r->per_stmt, .nvalues = r->per_stmt};
    return 0;
}

/* ---- generated values ---- */

static sib_rng rng_of(uint64_t seed)
{
    return (sib_rng){{stress_mix(seed, 1), stress_mix(seed, 2)}};
}

/* Column c's population index for a seed. */
static uint64_t index_of(const wcol *c, uint64_t seed)
{
    sib_rng r = rng_of(seed);
    return keygen_next(&c->pop, &r, sib_rng_next(&r));
}

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/* Variable-length types: size bytes from an rng seeded by v. */
static int put_bytes(stress_req *req, const wcol *c, uint64_t v, bool text)
{
    sib_rng r = rng_of(stress_mix(v, 0x5a17));
    size_t len = (size_t)keygen_next(&c->size, &r, v);
    uint8_t *p = req_add(req, len);
    if (!p) return SIB_ENOMEM;
    for (size_t i = 0; i < len; i++) {
        uint64_t x = sib_rng_next(&r);
        p[i] = text ? (uint8_t)alphabet[x % (sizeof(alphabet) - 1)] : (uint8_t)x;
    }
    return 0;
}

static int put_fixed(stress_req *req, const void *bytes, size_t len)
{
    uint8_t *p = req_add(req, len);
    if (!p) return SIB_ENOMEM;
    memcpy(p, bytes, len);
    return 0;
}

/* A varint (two's complement, shortest) of v. */
static void varint_of(uint64_t v, uint8_t out[9], size_t *len)
{
    out[0] = 0;
    put_be64(out + 1, v);
    size_t start = 0;
    while (start < 8 && out[start] == 0 && !(out[start + 1] & 0x80)) start++;
    *len = 9 - start;
    memmove(out, out + start, *len);
}

static uint64_t double_bits(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    return bits;
}

static uint32_t float_bits(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof(bits));
    return bits;
}

static int put_value(stress_req *req, const wcol *c, uint64_t v)
{
    uint8_t b[16];
    size_t n;
    switch (c->type) {
    case SCH_T_ASCII:
    case SCH_T_VARCHAR: return put_bytes(req, c, v, true);
    case SCH_T_BLOB: return put_bytes(req, c, v, false);
    case SCH_T_BOOLEAN: b[0] = (uint8_t)(v & 1); return put_fixed(req, b, 1);
    case SCH_T_TINYINT: b[0] = (uint8_t)v; return put_fixed(req, b, 1);
    case SCH_T_SMALLINT: put_be16(b, (uint16_t)v); return put_fixed(req, b, 2);
    case SCH_T_INT: put_be32(b, (uint32_t)v); return put_fixed(req, b, 4);
    case SCH_T_DATE: put_be32(b, (uint32_t)(0x80000000u + v % 0x7fffffffu)); return put_fixed(req, b, 4);
    case SCH_T_BIGINT:
    case SCH_T_TIMESTAMP: put_be64(b, v); return put_fixed(req, b, 8);
    case SCH_T_TIME: put_be64(b, v % 86400000000000ull); return put_fixed(req, b, 8);
    case SCH_T_DOUBLE: put_be64(b, double_bits((double)v)); return put_fixed(req, b, 8);
    case SCH_T_FLOAT: put_be32(b, float_bits((float)v)); return put_fixed(req, b, 4);
    case SCH_T_VARINT: varint_of(v, b, &n); return put_fixed(req, b, n);
    case SCH_T_DECIMAL: /* scale 0, unscaled v */
        put_be32(b, 0);
        varint_of(v, b + 4, &n);
        return put_fixed(req, b, 4 + n);
    case SCH_T_INET: put_be32(b, (uint32_t)stress_mix(v, 4)); return put_fixed(req, b, 4);
    case SCH_T_UUID:
    case SCH_T_TIMEUUID:
        put_be64(b, stress_mix(v, 16));
        put_be64(b + 8, stress_mix(v, 17));
        b[6] = (uint8_t)((b[6] & 0x0f) | (c->type == SCH_T_UUID ? 0x40 : 0x10)); /* version 4 / 1 */
        b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);                                  /* RFC 4122 variant */
        return put_fixed(req, b, 16);
    default: return SIB_EINVAL; /* refused at setup */
    }
}

static bool type_supported(sch_type_code t)
{
    switch (t) {
    case SCH_T_ASCII: case SCH_T_VARCHAR: case SCH_T_BLOB: case SCH_T_BOOLEAN: case SCH_T_TINYINT:
    case SCH_T_SMALLINT: case SCH_T_INT: case SCH_T_DATE: case SCH_T_BIGINT: case SCH_T_TIMESTAMP:
    case SCH_T_TIME: case SCH_T_DOUBLE: case SCH_T_FLOAT: case SCH_T_VARINT: case SCH_T_DECIMAL:
    case SCH_T_INET: case SCH_T_UUID: case SCH_T_TIMEUUID: return true;
    default: return false;
    }
}

/* ---- partitions and rows ---- */

/* The shape of partition s: values per clustering level and row count. */
typedef struct shape {
    uint64_t s;
    uint64_t counts[MAX_CK];
    uint64_t nrows;
} shape;

static void shape_of(const workload *wl, uint64_t s, shape *sh)
{
    sh->s = s;
    sh->nrows = 1;
    for (size_t j = 0; j < wl->nck; j++) {
        sib_rng r = rng_of(stress_mix(s, 1000 + j));
        uint64_t n = keygen_next(&wl->cols[wl->npk + j].cluster, &r, 0);
        sh->counts[j] = n ? n : 1;
        sh->nrows *= sh->counts[j];
    }
}

/* The population index of column col in row r of partition sh. */
static uint64_t cell_index(const workload *wl, const shape *sh, uint64_t r, size_t col)
{
    const wcol *c = &wl->cols[col];
    if (c->kind == COL_PK) return col == 0 ? sh->s : index_of(c, stress_mix(sh->s, col));
    uint64_t digits[MAX_CK], rem = r;
    for (size_t j = wl->nck; j-- > 0;) {
        digits[j] = rem % sh->counts[j];
        rem /= sh->counts[j];
    }
    uint64_t h = stress_mix(sh->s, 0xc1);
    for (size_t j = 0; j < wl->nck; j++) {
        h = stress_mix(h, digits[j]);
        if (col != wl->npk + j) continue;
        if (c->pop_d.kind == DIST_SEQ) return c->pop_d.lo + digits[j] % (c->pop_d.hi - c->pop_d.lo + 1);
        return index_of(c, h);
    }
    return index_of(c, stress_mix(h, col));
}

static int put_row(stress_req *req, const workload *wl, const shape *sh, uint64_t r)
{
    for (size_t col = 0; col < wl->ncols; col++) {
        int rc = put_value(req, &wl->cols[col], cell_index(wl, sh, r, col));
        if (rc < 0) return rc;
    }
    return 0;
}

static int build_insert(const stress_shared *sh, sib_rng *rng, uint64_t seq, stress_req *req)
{
    const workload *wl = sh->wl;
    uint64_t k = keygen_next(&wl->partitions, rng, seq);
    if (k == 0) k = 1;
    for (uint64_t i = 0; i < k; i++) {
        shape p;
        shape_of(wl, keygen_next(&wl->part, rng, seq * k + i), &p);
        uint64_t num = keygen_next(&wl->select, rng, seq), before = req->rows;
        for (uint64_t r = 0; r < p.nrows; r++) {
            if (num < wl->select_den && sib_rng_next(rng) % wl->select_den >= num) continue;
            if (put_row(req, wl, &p, r) < 0) return SIB_ENOMEM;
            req->rows++;
        }
        if (req->rows == before) { /* the share rounded to nothing: still one row */
            if (put_row(req, wl, &p, sib_rng_next(rng) % p.nrows) < 0) return SIB_ENOMEM;
            req->rows++;
        }
        req->partitions++;
    }
    req->per_stmt = (uint16_t)wl->ncols;
    req->nstmts = (uint16_t)req->rows;
    req->batch = req->rows > 1;
    req->batch_type = wl->batch_type;
    return 0;
}

static int build_query(const stress_shared *sh, int op, sib_rng *rng, uint64_t seq, stress_req *req)
{
    const workload *wl = sh->wl;
    const prof_query *q = &sh->profile->queries[sh->defs[op].query];
    shape p;
    shape_of(wl, keygen_next(&wl->part, rng, seq), &p);
    uint64_t row = sib_rng_next(rng) % p.nrows;
    for (uint16_t m = 0; m < wl->nmarkers[op]; m++) {
        if (q->multirow) row = sib_rng_next(rng) % p.nrows;
        size_t col = (size_t)wl->markers[op][m];
        if (put_value(req, &wl->cols[col], cell_index(wl, &p, row, col)) < 0) return SIB_ENOMEM;
    }
    return 0;
}

/* keyspace1.standard1: WRITE (key, value) or READ (key). */
static int build_standard(const stress_shared *sh, int op, sib_rng *rng, uint64_t seq, stress_req *req)
{
    const stress_opts *o = sh->o;
    uint64_t idx = keygen_next(&sh->keys, rng, seq);
    uint8_t *key = req_add(req, STRESS_KEY_LEN);
    if (!key) return SIB_ENOMEM;
    stress_key(idx, key);
    if (sh->defs[op].kind == OPK_READ) return 0;
    size_t off = (size_t)((idx * 2654435761u) % (STRESS_VALUE_POOL - o->value_size));
    if (put_fixed(req, sh->values + off, o->value_size) < 0) return SIB_ENOMEM;
    req->partitions = req->rows = 1;
    return 0;
}

int stress_build(const stress_shared *sh, int op, sib_rng *rng, uint64_t seq, stress_req *req)
{
    req_reset(req);
    int rc;
    switch (sh->defs[op].kind) {
    case OPK_INSERT: rc = build_insert(sh, rng, seq, req); break;
    case OPK_QUERY: rc = build_query(sh, op, rng, seq, req); break;
    default: rc = build_standard(sh, op, rng, seq, req); break;
    }
    return rc < 0 ? rc : req_done(req);
}

/* ====================================================================== */
/* Setup                                                                  */
/* ====================================================================== */

/* Runs one statement; AlreadyExists is success when tolerated. */
static int run_cql(cli_client *cl, const char *cql, const char *what, bool exists_ok, sib_err *err)
{
    cli_result r;
    int rc = cli_client_query(cl, cql, CQL_ONE, 0, NULL, &r, err);
    if (rc == 0 && r.kind == CLI_RESULT_ERROR && !(exists_ok && r.u.error.code == CQL_ERR_ALREADY_EXISTS)) {
        cli_result_to_err(&r, err);
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "%.64s: %.400s", what, err->msg);
        memcpy(err->msg, msg, sizeof(msg));
        rc = err->code;
    }
    cli_result_free(&r);
    return rc;
}

/* What write and read send: the statements, or SET / GET in -mode redis. */
static void standard_defs(stress_shared *sh)
{
    for (int i = 0; i < sh->o->nops; i++) {
        stress_opdef *d = &sh->defs[i];
        d->kind = strcmp(sh->o->ops[i].name, "WRITE") == 0 ? OPK_WRITE : OPK_READ;
        d->npk = 1; /* both bind the key first */
        d->pk_index[0] = 0;
        snprintf(d->cql, sizeof(d->cql), "%s",
                 d->kind == OPK_WRITE ? "INSERT INTO keyspace1.standard1 (key, \"C0\") VALUES (?, ?)"
                                      : "SELECT key, \"C0\" FROM keyspace1.standard1 WHERE key = ?");
    }
}

static int setup_standard(stress_shared *sh, cli_client *cl, sib_err *err)
{
    if (sh->o->redis) {
        standard_defs(sh);
        return 0;
    }
    char ddl[512];
    snprintf(ddl, sizeof(ddl),
             "CREATE KEYSPACE IF NOT EXISTS keyspace1 WITH replication = "
             "{'class': 'SimpleStrategy', 'replication_factor': %d} AND durable_writes = true",
             sh->o->rf);
    int rc = run_cql(cl, ddl, "create keyspace", false, err);
    if (rc == 0)
        rc = run_cql(cl, "CREATE TABLE IF NOT EXISTS keyspace1.standard1 (key blob PRIMARY KEY, \"C0\" blob)",
                     "create table", false, err);
    if (rc == 0) standard_defs(sh);
    return rc;
}

/* A definition with its trailing ';' and blanks cut (one statement per QUERY). */
static int run_definition(cli_client *cl, const char *def, const char *what, sib_err *err)
{
    if (!def) return 0;
    sib_buf b;
    sib_buf_init(&b);
    size_t n = strlen(def);
    while (n && (def[n - 1] == ';' || def[n - 1] == ' ' || def[n - 1] == '\n' || def[n - 1] == '\t')) n--;
    sib_buf_append(&b, def, n);
    sib_buf_u8(&b, 0);
    int rc = b.oom ? sib_err_set(err, SIB_ENOMEM, "definition") : run_cql(cl, (const char *)b.p, what, true, err);
    sib_buf_free(&b);
    return rc;
}

static int text_cell(const cli_result *r, uint32_t row, uint32_t col, char *out, size_t len)
{
    cql_value v = cli_result_cell(r, row, col);
    if (v.len < 0 || (size_t)v.len >= len) return -1;
    memcpy(out, v.p, (size_t)v.len);
    out[v.len] = 0;
    return 0;
}

static int col_order(const void *a, const void *b)
{
    const wcol *x = a, *y = b;
    if (x->kind != y->kind) return x->kind - y->kind;
    if (x->kind != COL_REG) return x->position - y->position;
    return strcmp(x->name, y->name);
}

/* The table's columns, from system_schema.columns. */
static int load_columns(workload *wl, cli_client *cl, const stress_profile *p, sib_err *err)
{
    cql_value vals[2] = {{(const uint8_t *)p->keyspace, (int32_t)strlen(p->keyspace)},
                         {(const uint8_t *)p->table, (int32_t)strlen(p->table)}};
    cli_query_opts qo = {.consistency = CQL_ONE, .values = vals, .nvalues = 2};
    cli_result r;
    int rc = cli_client_query_opts(cl,
                                   "SELECT column_name, kind, position FROM system_schema.columns "
                                   "WHERE keyspace_name = ? AND table_name = ?",
                                   &qo, &r, err);
    if (rc == 0 && r.kind != CLI_RESULT_ROWS) rc = sib_err_set(err, SIB_EPROTO, "reading system_schema.columns");
    if (rc == 0 && r.u.rows.nrows == 0)
        rc = sib_err_set(err, SIB_EINVAL, "table %s.%s not found (and no table_definition in the profile?)",
                         p->keyspace, p->table);
    if (rc == 0 && !(wl->cols = calloc(r.u.rows.nrows, sizeof(*wl->cols))))
        rc = sib_err_set(err, SIB_ENOMEM, "columns");
    for (uint32_t i = 0; rc == 0 && i < r.u.rows.nrows; i++) {
        char name[256], kind[32];
        cql_value pos = cli_result_cell(&r, i, 2);
        wcol *c = &wl->cols[wl->ncols++];
        if (text_cell(&r, i, 0, name, sizeof(name)) < 0 || text_cell(&r, i, 1, kind, sizeof(kind)) < 0 ||
            pos.len != 4 || !(c->name = strdup(name))) {
            rc = sib_err_set(err, SIB_EPROTO, "bad system_schema.columns row");
            break;
        }
        c->kind = !strcmp(kind, "partition_key") ? COL_PK : !strcmp(kind, "clustering") ? COL_CK : COL_REG;
        c->position = (int)get_be32(pos.p);
        wl->npk += c->kind == COL_PK;
        wl->nck += c->kind == COL_CK;
    }
    cli_result_free(&r);
    if (rc == 0 && wl->nck > MAX_CK) rc = sib_err_set(err, SIB_EINVAL, "more than %d clustering columns", MAX_CK);
    if (rc == 0) qsort(wl->cols, wl->ncols, sizeof(*wl->cols), col_order);
    return rc;
}

/* The derived column a table extension value names: "BUCKET(ts, 1h)" ->
 * "ts_bucket", "SALT(8)" -> "salt"; "" for anything else. */
static void derived_name(const uint8_t *v, size_t n, char *out, size_t cap)
{
    out[0] = 0;
    if (n > 7 && !memcmp(v, "BUCKET(", 7)) {
        const uint8_t *comma = memchr(v, ',', n);
        size_t len = comma ? (size_t)(comma - v) - 7 : 0;
        const uint8_t *src = v + 7;
        if (len && src[0] == '"' && src[len - 1] == '"' && len >= 2) src++, len -= 2; /* a quoted name */
        if (len && len + sizeof "_bucket" <= cap) snprintf(out, cap, "%.*s_bucket", (int)len, (const char *)src);
    } else if (n > 5 && !memcmp(v, "SALT(", 5)) {
        snprintf(out, cap, "salt");
    }
}

/* Leaves out the partition key columns the node derives (BUCKET / SALT). */
static int drop_derived(workload *wl, cli_client *cl, const stress_profile *p, sib_err *err)
{
    cql_value vals[2] = {{(const uint8_t *)p->keyspace, (int32_t)strlen(p->keyspace)},
                         {(const uint8_t *)p->table, (int32_t)strlen(p->table)}};
    cli_query_opts qo = {.consistency = CQL_ONE, .values = vals, .nvalues = 2};
    cli_result r;
    int rc = cli_client_query_opts(cl, "SELECT extensions FROM system_schema.tables "
                                       "WHERE keyspace_name = ? AND table_name = ?", &qo, &r, err);
    if (rc) return rc;
    cql_value m = r.kind == CLI_RESULT_ROWS && r.u.rows.nrows ? cli_result_cell(&r, 0, 0) : (cql_value){NULL, -1};
    /* map<text, blob>: i32 count, then [i32 len | bytes] key and value */
    const uint8_t *q = m.p, *end = m.len > 0 ? m.p + m.len : m.p;
    uint32_t count = m.len >= 4 ? get_be32(q) : 0;
    q += m.len >= 4 ? 4 : 0;
    for (uint32_t e = 0; e < count; e++) {
        int32_t kl, vl;
        if (end - q < 4 || (kl = (int32_t)get_be32(q)) < 0 || end - q - 4 < kl) break;
        q += 4 + kl;
        if (end - q < 4 || (vl = (int32_t)get_be32(q)) < 0 || end - q - 4 < vl) break;
        char name[300];
        derived_name(q + 4, (size_t)vl, name, sizeof name);
        q += 4 + vl;
        for (size_t k = 0; name[0] && k < wl->ncols; k++) {
            if (strcmp(wl->cols[k].name, name) || wl->cols[k].kind != COL_PK) continue;
            free(wl->cols[k].name);
            memmove(&wl->cols[k], &wl->cols[k + 1], (wl->ncols - k - 1) * sizeof *wl->cols);
            wl->ncols--;
            wl->npk--;
            break;
        }
    }
    cli_result_free(&r);
    if (!wl->npk) return sib_err_set(err, SIB_EINVAL, "table %s.%s: no natural partition key column", p->keyspace, p->table);
    return 0;
}

/* Applies the columnspec (and cassandra-stress's defaults) to the columns. */
static int apply_columnspec(workload *wl, const stress_profile *p, sib_err *err)
{
    static const stress_dist def_size = {.kind = DIST_UNIFORM, .lo = 4, .hi = 8};
    static const stress_dist def_pop = {.kind = DIST_UNIFORM, .lo = 1, .hi = 100000000000ull};
    static const stress_dist def_cluster = {.kind = DIST_FIXED, .lo = 1, .hi = 1};
    for (size_t i = 0; i < p->ncols; i++) {
        size_t k = 0;
        while (k < wl->ncols && strcmp(wl->cols[k].name, p->cols[i].name) != 0) k++;
        if (k == wl->ncols)
            return sib_err_set(err, SIB_EINVAL, "columnspec: no column '%s' in %s.%s", p->cols[i].name, p->keyspace,
                               p->table);
        if (p->cols[i].has_cluster && wl->cols[k].kind != COL_CK)
            return sib_err_set(err, SIB_EINVAL, "columnspec: cluster given for '%s', which is not a clustering column",
                               p->cols[i].name);
    }
    for (size_t k = 0; k < wl->ncols; k++) {
        wcol *c = &wl->cols[k];
        const prof_column *pc = NULL;
        for (size_t i = 0; i < p->ncols && !pc; i++)
            if (!strcmp(p->cols[i].name, c->name)) pc = &p->cols[i];
        c->pop_d = pc && pc->has_population ? pc->population : def_pop;
        keygen_init(&c->pop, &c->pop_d);
        keygen_init(&c->size, pc && pc->has_size ? &pc->size : &def_size);
        keygen_init(&c->cluster, pc && pc->has_cluster ? &pc->cluster : &def_cluster);
    }
    return 0;
}

/* What a prepared statement's requests are routed by (none past
 * STRESS_MAX_PK columns). */
static void routing_of(const cli_result *r, stress_opdef *d)
{
    d->npk = r->u.prepared.npk <= STRESS_MAX_PK ? (uint16_t)r->u.prepared.npk : 0;
    for (uint16_t i = 0; i < d->npk; i++) d->pk_index[i] = r->u.prepared.pk_index[i];
}

/* INSERT INTO ks.t (every column) VALUES (?...): prepared here to learn the types. */
static int insert_cql(workload *wl, cli_client *cl, const stress_profile *p, stress_opdef *d, sib_err *err)
{
    sib_buf b;
    sib_buf_init(&b);
    sib_buf_printf(&b, "INSERT INTO ");
    sch_ident_quote(p->keyspace, &b);
    sib_buf_u8(&b, '.');
    sch_ident_quote(p->table, &b);
    for (size_t k = 0; k < wl->ncols; k++) {
        sib_buf_printf(&b, k ? ", " : " (");
        sch_ident_quote(wl->cols[k].name, &b);
    }
    sib_buf_printf(&b, ") VALUES (");
    for (size_t k = 0; k < wl->ncols; k++) sib_buf_printf(&b, k ? ", ?" : "?");
    sib_buf_printf(&b, ")");
    int rc = b.oom || b.len >= sizeof(d->cql) ? sib_err_set(err, SIB_EINVAL, "INSERT statement too long") : 0;
    if (rc == 0) snprintf(d->cql, sizeof(d->cql), "%.*s", (int)b.len, (const char *)b.p);
    sib_buf_free(&b);
    cli_result r;
    if (rc == 0) rc = cli_client_prepare(cl, d->cql, &r, err);
    else return rc;
    if (rc == 0 && r.kind == CLI_RESULT_ERROR) rc = cli_result_to_err(&r, err);
    else if (rc == 0 &&
             (r.kind != CLI_RESULT_PREPARED || r.u.prepared.bind.ncols != wl->ncols || !r.u.prepared.bind.cols))
        rc = sib_err_set(err, SIB_EPROTO, "unexpected answer to PREPARE of the INSERT");
    if (rc == 0) routing_of(&r, d);
    for (size_t k = 0; rc == 0 && k < wl->ncols; k++) {
        const sch_type *t = r.u.prepared.bind.cols[k].type;
        wl->cols[k].type = t->code;
        if (!type_supported(t->code) || r.u.prepared.bind.cols[k].wire_code != (uint16_t)t->code) {
            sib_buf tn;
            sib_buf_init(&tn);
            sch_type_cql_name(t, &tn);
            rc = sib_err_set(err, SIB_EINVAL, "column '%s': type %.*s is not supported by sibyl-stress profiles",
                             wl->cols[k].name, (int)tn.len, (const char *)tn.p);
            sib_buf_free(&tn);
        }
    }
    cli_result_free(&r);
    return rc;
}

/* A query op: prepares its cql and maps each bind marker to a column. */
static int bind_query(workload *wl, cli_client *cl, int op, stress_opdef *d, const prof_query *q, sib_err *err)
{
    if (strlen(q->cql) >= sizeof(d->cql)) return sib_err_set(err, SIB_EINVAL, "query '%s' too long", q->name);
    snprintf(d->cql, sizeof(d->cql), "%s", q->cql);
    cli_result r;
    int rc = cli_client_prepare(cl, d->cql, &r, err);
    if (rc == 0 && r.kind == CLI_RESULT_ERROR) {
        cli_result_to_err(&r, err);
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "query '%.64s': %.400s", q->name, err->msg);
        memcpy(err->msg, msg, sizeof(msg));
        rc = err->code;
    } else if (rc == 0 && (r.kind != CLI_RESULT_PREPARED || (r.u.prepared.bind.ncols && !r.u.prepared.bind.cols))) {
        rc = sib_err_set(err, SIB_EPROTO, "unexpected answer to PREPARE of query '%s'", q->name);
    }
    if (rc == 0) routing_of(&r, d);
    uint32_t n = rc == 0 ? r.u.prepared.bind.ncols : 0;
    if (rc == 0 && !(wl->markers[op] = calloc(n ? n : 1, sizeof(int16_t)))) rc = sib_err_set(err, SIB_ENOMEM, "query");
    for (uint32_t m = 0; rc == 0 && m < n; m++) {
        const char *name = r.u.prepared.bind.cols[m].name;
        size_t k = 0;
        while (k < wl->ncols && strcmp(wl->cols[k].name, name) != 0) k++;
        if (k == wl->ncols)
            rc = sib_err_set(err, SIB_EINVAL, "query '%s': bind marker %u ('%s') is not a column of the table", q->name,
                             m + 1, name);
        wl->markers[op][m] = (int16_t)k;
    }
    wl->nmarkers[op] = (uint16_t)n;
    cli_result_free(&r);
    return rc;
}

static int check_batch_size(const workload *wl, const stress_profile *p, sib_err *err)
{
    double rows = (double)p->partitions.hi;
    for (size_t j = 0; j < wl->nck; j++) rows *= (double)wl->cols[wl->npk + j].cluster.hi;
    if (rows > MAX_BATCH)
        return sib_err_set(err, SIB_EINVAL,
                           "an insert could write %.0f rows (partitions x clustering values), more than one batch's "
                           "%d statements",
                           rows, MAX_BATCH);
    return 0;
}

static int bind_ops(stress_shared *sh, cli_client *cl, sib_err *err)
{
    const stress_opts *o = sh->o;
    const stress_profile *p = sh->profile;
    workload *wl = sh->wl;
    for (int i = 0; i < o->nops; i++) {
        stress_opdef *d = &sh->defs[i];
        int rc = 0;
        if (strcmp(o->ops[i].name, "insert") == 0) {
            d->kind = OPK_INSERT;
            rc = insert_cql(wl, cl, p, d, err);
            if (rc == 0) rc = check_batch_size(wl, p, err);
        } else {
            size_t q = 0;
            while (q < p->nqueries && strcmp(p->queries[q].name, o->ops[i].name) != 0) q++;
            if (q == p->nqueries)
                return sib_err_set(err, SIB_EINVAL, "ops(): '%s' is neither insert nor a query of the profile",
                                   o->ops[i].name);
            d->kind = OPK_QUERY;
            d->query = (int)q;
            rc = bind_query(wl, cl, i, d, &p->queries[q], err);
        }
        if (rc < 0) return rc;
    }
    return 0;
}

/* The insert statement's types are needed by queries too (they bind the
 * same columns), so it is prepared even when only queries run. */
static int setup_user(stress_shared *sh, cli_client *cl, sib_err *err)
{
    const stress_profile *p = sh->profile;
    workload *wl = calloc(1, sizeof(*wl));
    if (!wl) return sib_err_set(err, SIB_ENOMEM, "workload");
    sh->wl = wl;
    int rc = run_definition(cl, p->keyspace_def, "keyspace_definition", err);
    sib_buf use;
    sib_buf_init(&use);
    sib_buf_printf(&use, "USE ");
    sch_ident_quote(p->keyspace, &use);
    sib_buf_u8(&use, 0);
    if (rc == 0) rc = use.oom ? SIB_ENOMEM : run_cql(cl, (const char *)use.p, "use keyspace", false, err);
    sib_buf_free(&use);
    if (rc == 0) rc = run_definition(cl, p->table_def, "table_definition", err);
    if (rc == 0) rc = load_columns(wl, cl, p, err);
    if (rc == 0) rc = drop_derived(wl, cl, p, err);
    if (rc == 0) rc = apply_columnspec(wl, p, err);
    stress_opdef probe;
    if (rc == 0) rc = insert_cql(wl, cl, p, &probe, err);
    if (rc == 0) rc = bind_ops(sh, cl, err);
    if (rc < 0) return rc;
    keygen_init(&wl->part, sh->o->pop_given ? &sh->o->pop : &wl->cols[0].pop_d);
    keygen_init(&wl->partitions, &p->partitions);
    keygen_init(&wl->select, &p->select);
    wl->select_den = p->select_den;
    wl->batch_type = p->batch_type;
    return 0;
}

int workload_setup(stress_shared *sh, cli_client *cl, sib_err *err)
{
    return sh->o->cmd == CMD_USER ? setup_user(sh, cl, err) : setup_standard(sh, cl, err);
}

void workload_destroy(workload *wl)
{
    if (!wl) return;
    for (size_t k = 0; k < wl->ncols; k++) free(wl->cols[k].name);
    free(wl->cols);
    for (int i = 0; i < STRESS_MAX_OPS; i++) free(wl->markers[i]);
    free(wl);
}
