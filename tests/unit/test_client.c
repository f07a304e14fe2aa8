/* test_client.c: the native protocol client through its public header.
 *
 * Decoding is tested on byte fixtures made by the server's own response
 * encoders (cql.h: cql_rows_begin, cql_encode_error, cql_encode_prepared,
 * cql_encode_schema_change), so client and server agree on the wire by
 * construction. The connection (handshake, stream ids, pipelining with
 * out-of-order answers, lz4, broken connections) is tested against a tiny
 * scripted server thread on an ephemeral 127.0.0.1 port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "client.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- decoding ---- */

typedef struct fx {
    sch_types *ts;
    sib_buf b;
    cli_result r;
    sib_err err;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->ts = sch_types_create();
    sib_buf_init(&f->b);
    *state = f;
    return f->ts ? 0 : -1;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    cli_result_free(&f->r);
    sib_buf_free(&f->b);
    sch_types_destroy(f->ts);
    free(f);
    return 0;
}

static int decode(fx *f, uint8_t opcode, uint8_t flags)
{
    cli_result_free(&f->r);
    return cli_result_decode(f->ts, 4, opcode, flags, f->b.p, f->b.len, &f->r, &f->err);
}

static void test_rows_with_metadata(void **state)
{
    fx *f = *state;
    const sch_type *t_int = sch_type_native(SCH_T_INT), *t_text = sch_type_native(SCH_T_VARCHAR);
    const sch_type *t_list = sch_type_list(f->ts, t_int, false);
    const sch_type *t_map = sch_type_map(f->ts, t_text, t_list, true);
    const char *names[] = {"k", "v", "l", "m"};
    const sch_type *types[] = {t_int, t_text, t_list, t_map};
    const uint8_t ps[] = {1, 2, 3};
    cql_rows_meta m = {.ks = "ks1", .table = "t1", .ncols = 4, .names = names, .types = types,
                       .paging_state = ps, .paging_state_len = 3};
    cql_rows rw;
    assert_int_equal(cql_rows_begin(&rw, &f->b, 4, &m, &f->err), 0);
    const uint8_t one[] = {0, 0, 0, 1}, two[] = {0, 0, 0, 2}, list[] = {0, 0, 0, 0};
    cql_rows_cell(&rw, one, 4);
    cql_rows_cell(&rw, "a", 1);
    cql_rows_cell(&rw, list, 4);
    cql_rows_cell(&rw, NULL, -1);
    cql_rows_cell(&rw, two, 4);
    cql_rows_cell(&rw, NULL, 0); /* empty, not null */
    cql_rows_cell(&rw, NULL, -1);
    cql_rows_cell(&rw, NULL, -1);
    assert_int_equal(cql_rows_finish(&rw, &f->err), 0);

    assert_int_equal(decode(f, CQL_OP_RESULT, 0), 0);
    const cli_result *r = &f->r;
    assert_int_equal(r->kind, CLI_RESULT_ROWS);
    assert_int_equal(r->u.rows.meta.ncols, 4);
    assert_int_equal(r->u.rows.nrows, 2);
    assert_true(r->u.rows.meta.flags & CQL_ROWS_HAS_MORE_PAGES);
    assert_int_equal(r->u.rows.meta.paging_state.len, 3);
    assert_memory_equal(r->u.rows.meta.paging_state.p, ps, 3);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(r->u.rows.meta.cols[i].ks, "ks1");
        assert_string_equal(r->u.rows.meta.cols[i].table, "t1");
        assert_string_equal(r->u.rows.meta.cols[i].name, names[i]);
    }
    assert_ptr_equal(r->u.rows.meta.cols[0].type, t_int);
    assert_ptr_equal(r->u.rows.meta.cols[1].type, t_text);
    assert_ptr_equal(r->u.rows.meta.cols[2].type, t_list); /* interned in the same registry */
    assert_int_equal(r->u.rows.meta.cols[3].type->code, SCH_T_MAP);
    assert_ptr_equal(r->u.rows.meta.cols[3].type->sub[1], t_list);
    assert_int_equal(r->u.rows.meta.cols[3].wire_code, SCH_T_MAP);
    cql_value c = cli_result_cell(r, 0, 1);
    assert_int_equal(c.len, 1);
    assert_memory_equal(c.p, "a", 1);
    assert_int_equal(cli_result_cell(r, 0, 3).len, CQL_VALUE_NULL);
    assert_memory_equal(cli_result_cell(r, 1, 0).p, two, 4);
    assert_int_equal(cli_result_cell(r, 1, 1).len, 0);
    assert_int_equal(cli_result_cell(r, 1, 2).len, CQL_VALUE_NULL);
}

static void test_rows_no_metadata_and_custom_types(void **state)
{
    fx *f = *state;
    /* NO_METADATA (an EXECUTE with SKIP_METADATA): counts only. */
    cql_rows_meta m = {.ncols = 2, .flags = CQL_ROWS_NO_METADATA};
    cql_rows rw;
    assert_int_equal(cql_rows_begin(&rw, &f->b, 4, &m, &f->err), 0);
    cql_rows_cell(&rw, "x", 1);
    cql_rows_cell(&rw, "yz", 2);
    assert_int_equal(cql_rows_finish(&rw, &f->err), 0);
    assert_int_equal(decode(f, CQL_OP_RESULT, 0), 0);
    assert_int_equal(f->r.kind, CLI_RESULT_ROWS);
    assert_null(f->r.u.rows.meta.cols);
    assert_int_equal(f->r.u.rows.nrows, 1);
    assert_int_equal(cli_result_cell(&f->r, 0, 1).len, 2);

    /* duration goes out as a custom class in v4; a UDT and a tuple have no
     * sch_type form and come back as blob with their wire code. */
    sib_buf_reset(&f->b);
    cql_put_int(&f->b, CQL_RESULT_ROWS);
    cql_put_int(&f->b, CQL_ROWS_GLOBAL_TABLES_SPEC);
    cql_put_int(&f->b, 3);
    cql_put_cstring(&f->b, "ks");
    cql_put_cstring(&f->b, "t");
    cql_put_cstring(&f->b, "d");
    assert_int_equal(cql_put_type(&f->b, sch_type_native(SCH_T_DURATION), 4, &f->err), 0);
    cql_put_cstring(&f->b, "u");
    cql_put_short(&f->b, SCH_T_UDT);
    cql_put_cstring(&f->b, "ks");
    cql_put_cstring(&f->b, "addr");
    cql_put_short(&f->b, 2);
    cql_put_cstring(&f->b, "street");
    cql_put_short(&f->b, SCH_T_VARCHAR);
    cql_put_cstring(&f->b, "zips");
    cql_put_short(&f->b, SCH_T_SET);
    cql_put_short(&f->b, SCH_T_INT);
    cql_put_cstring(&f->b, "tu");
    cql_put_short(&f->b, SCH_T_TUPLE);
    cql_put_short(&f->b, 2);
    cql_put_short(&f->b, SCH_T_INT);
    cql_put_short(&f->b, SCH_T_BLOB);
    cql_put_int(&f->b, 0);
    assert_int_equal(decode(f, CQL_OP_RESULT, 0), 0);
    const cli_col_spec *c = f->r.u.rows.meta.cols;
    assert_ptr_equal(c[0].type, sch_type_native(SCH_T_DURATION));
    assert_string_equal(c[0].custom_class, "org.apache.cassandra.db.marshal.DurationType");
    assert_int_equal(c[1].wire_code, SCH_T_UDT);
    assert_ptr_equal(c[1].type, sch_type_native(SCH_T_BLOB));
    assert_int_equal(c[2].wire_code, SCH_T_TUPLE);
    assert_string_equal(c[2].name, "tu");
    assert_int_equal(f->r.u.rows.nrows, 0);
}

static void test_errors_with_extras(void **state)
{
    fx *f = *state;
    cql_error_extra x = {.consistency = CQL_QUORUM, .required = 2, .alive = 1};
    cql_encode_error(&f->b, 4, CQL_ERR_UNAVAILABLE, "Cannot achieve consistency level QUORUM", &x);
    assert_int_equal(decode(f, CQL_OP_ERROR, 0), 0);
    assert_int_equal(f->r.kind, CLI_RESULT_ERROR);
    assert_int_equal(f->r.u.error.code, CQL_ERR_UNAVAILABLE);
    assert_string_equal(f->r.u.error.msg, "Cannot achieve consistency level QUORUM");
    assert_int_equal(f->r.u.error.x.consistency, CQL_QUORUM);
    assert_int_equal(f->r.u.error.x.required, 2);
    assert_int_equal(f->r.u.error.x.alive, 1);
    sib_err e;
    assert_int_equal(cli_result_to_err(&f->r, &e), SIB_EUNAVAIL);
    assert_int_equal(e.ex[1], 2);
    assert_string_equal(cli_client_error_class(f->r.u.error.code), "Unavailable");

    sib_buf_reset(&f->b);
    x = (cql_error_extra){.consistency = CQL_ONE, .received = 0, .blockfor = 1, .write_type = CQL_WRITE_BATCH_LOG};
    cql_encode_error(&f->b, 4, CQL_ERR_WRITE_TIMEOUT, "timeout", &x);
    assert_int_equal(decode(f, CQL_OP_ERROR, 0), 0);
    assert_int_equal(f->r.u.error.x.blockfor, 1);
    assert_int_equal(f->r.u.error.x.write_type, CQL_WRITE_BATCH_LOG);

    sib_buf_reset(&f->b);
    x = (cql_error_extra){.consistency = CQL_ALL, .received = 1, .blockfor = 3, .numfailures = 2, .data_present = true};
    cql_encode_error(&f->b, 4, CQL_ERR_READ_FAILURE, "failed", &x);
    assert_int_equal(decode(f, CQL_OP_ERROR, 0), 0);
    assert_int_equal(f->r.u.error.x.numfailures, 2);
    assert_true(f->r.u.error.x.data_present);

    sib_buf_reset(&f->b);
    x = (cql_error_extra){.ks = "ks1", .table = "t1"};
    cql_encode_error(&f->b, 4, CQL_ERR_ALREADY_EXISTS, "Cannot add already existing table", &x);
    assert_int_equal(decode(f, CQL_OP_ERROR, 0), 0);
    assert_string_equal(f->r.u.error.x.ks, "ks1");
    assert_string_equal(f->r.u.error.x.table, "t1");
    assert_int_equal(cli_result_to_err(&f->r, &e), SIB_EEXIST);
    assert_string_equal(e.table, "t1");

    sib_buf_reset(&f->b);
    const uint8_t id[] = {0xde, 0xad, 0xbe, 0xef};
    x = (cql_error_extra){.id = id, .id_len = 4};
    cql_encode_error(&f->b, 4, CQL_ERR_UNPREPARED, "unknown id", &x);
    assert_int_equal(decode(f, CQL_OP_ERROR, 0), 0);
    assert_int_equal(f->r.u.error.x.id_len, 4);
    assert_memory_equal(f->r.u.error.x.id, id, 4);

    sib_buf_reset(&f->b);
    const char *args[] = {"int", "text"};
    x = (cql_error_extra){.ks = "ks", .function = "f", .arg_types = args, .nargs = 2};
    cql_encode_error(&f->b, 4, CQL_ERR_FUNCTION_FAILURE, "boom", &x);
    assert_int_equal(decode(f, CQL_OP_ERROR, 0), 0);
    assert_int_equal(f->r.u.error.x.nargs, 2);
    assert_string_equal(f->r.u.error.x.arg_types[1], "text");

    sib_buf_reset(&f->b);
    cql_encode_error(&f->b, 4, CQL_ERR_SYNTAX, "line 1:0 no viable alternative", NULL);
    assert_int_equal(decode(f, CQL_OP_ERROR, 0), 0);
    assert_int_equal(cli_result_to_err(&f->r, &e), SIB_ESYNTAX);
    assert_string_equal(e.msg, "line 1:0 no viable alternative");
    assert_string_equal(cli_client_error_class(CQL_ERR_SYNTAX), "SyntaxException");
}

static void test_set_keyspace_and_schema_change(void **state)
{
    fx *f = *state;
    cql_put_int(&f->b, CQL_RESULT_SET_KEYSPACE);
    cql_put_cstring(&f->b, "ks1");
    assert_int_equal(decode(f, CQL_OP_RESULT, 0), 0);
    assert_int_equal(f->r.kind, CLI_RESULT_SET_KEYSPACE);
    assert_string_equal(f->r.u.keyspace, "ks1");

    sib_buf_reset(&f->b);
    cql_put_int(&f->b, CQL_RESULT_SCHEMA_CHANGE);
    cql_encode_schema_change(&f->b, CQL_CHANGE_CREATED, CQL_TARGET_TABLE, "ks1", "t1", NULL, 0);
    assert_int_equal(decode(f, CQL_OP_RESULT, 0), 0);
    assert_int_equal(f->r.kind, CLI_RESULT_SCHEMA_CHANGE);
    assert_int_equal(f->r.u.schema_change.change, CQL_CHANGE_CREATED);
    assert_int_equal(f->r.u.schema_change.target, CQL_TARGET_TABLE);
    assert_string_equal(f->r.u.schema_change.ks, "ks1");
    assert_string_equal(f->r.u.schema_change.name, "t1");

    sib_buf_reset(&f->b);
    cql_put_int(&f->b, CQL_RESULT_SCHEMA_CHANGE);
    cql_encode_schema_change(&f->b, CQL_CHANGE_DROPPED, CQL_TARGET_KEYSPACE, "ks1", NULL, NULL, 0);
    assert_int_equal(decode(f, CQL_OP_RESULT, 0), 0);
    assert_int_equal(f->r.u.schema_change.change, CQL_CHANGE_DROPPED);
    assert_null(f->r.u.schema_change.name);

    sib_buf_reset(&f->b);
    const char *args[] = {"int"};
    cql_put_int(&f->b, CQL_RESULT_SCHEMA_CHANGE);
    cql_encode_schema_change(&f->b, CQL_CHANGE_UPDATED, CQL_TARGET_FUNCTION, "ks1", "fn", args, 1);
    assert_int_equal(decode(f, CQL_OP_RESULT, 0), 0);
    assert_int_equal(f->r.u.schema_change.nargs, 1);
    assert_string_equal(f->r.u.schema_change.arg_types[0], "int");

    sib_buf_reset(&f->b);
    cql_put_int(&f->b, CQL_RESULT_VOID);
    assert_int_equal(decode(f, CQL_OP_RESULT, 0), 0);
    assert_int_equal(f->r.kind, CLI_RESULT_VOID);
}

static void test_prepared(void **state)
{
    fx *f = *state;
    const sch_type *blob = sch_type_native(SCH_T_BLOB);
    const char *bnames[] = {"key", "C0"};
    const sch_type *btypes[] = {blob, blob};
    const uint16_t pk[] = {0};
    cql_prepared_meta bind = {.ks = "keyspace1", .table = "standard1", .nbind = 2, .names = bnames, .types = btypes,
                              .npk = 1, .pk_index = pk};
    cql_rows_meta res = {.ks = "keyspace1", .table = "standard1", .ncols = 2, .names = bnames, .types = btypes};
    const uint8_t id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    cql_put_int(&f->b, CQL_RESULT_PREPARED);
    assert_int_equal(cql_encode_prepared(&f->b, 4, id, 16, &bind, &res, &f->err), 0);
    assert_int_equal(decode(f, CQL_OP_RESULT, 0), 0);
    assert_int_equal(f->r.kind, CLI_RESULT_PREPARED);
    assert_int_equal(f->r.u.prepared.id.len, 16);
    assert_memory_equal(f->r.u.prepared.id.p, id, 16);
    assert_int_equal(f->r.u.prepared.bind.ncols, 2);
    assert_string_equal(f->r.u.prepared.bind.cols[1].name, "C0");
    assert_int_equal(f->r.u.prepared.npk, 1);
    assert_int_equal(f->r.u.prepared.pk_index[0], 0);
    assert_int_equal(f->r.u.prepared.result.ncols, 2);
    assert_string_equal(f->r.u.prepared.result.cols[0].table, "standard1");

    /* A DML statement: no result columns (NO_METADATA, 0 columns). */
    sib_buf_reset(&f->b);
    cql_put_int(&f->b, CQL_RESULT_PREPARED);
    assert_int_equal(cql_encode_prepared(&f->b, 4, id, 16, &bind, NULL, &f->err), 0);
    assert_int_equal(decode(f, CQL_OP_RESULT, 0), 0);
    assert_int_equal(f->r.u.prepared.result.ncols, 0);
}

static void test_warnings_prefix_and_malformed(void **state)
{
    fx *f = *state;
    const char *w[] = {"Aggregation query used without partition key"};
    cql_put_string_list(&f->b, w, 1);
    cql_put_int(&f->b, CQL_RESULT_VOID);
    assert_int_equal(decode(f, CQL_OP_RESULT, CQL_FLAG_WARNING), 0);
    assert_int_equal(f->r.nwarnings, 1);
    assert_string_equal(f->r.warnings[0], w[0]);
    assert_int_equal(f->r.kind, CLI_RESULT_VOID);

    /* Truncated rows: a cell claims more bytes than there are. */
    sib_buf_reset(&f->b);
    cql_put_int(&f->b, CQL_RESULT_ROWS);
    cql_put_int(&f->b, CQL_ROWS_NO_METADATA);
    cql_put_int(&f->b, 1);
    cql_put_int(&f->b, 1);
    cql_put_int(&f->b, 100);
    cql_put_byte(&f->b, 'x');
    assert_int_equal(decode(f, CQL_OP_RESULT, 0), SIB_EPROTO);
    /* A row count far beyond the body. */
    sib_buf_reset(&f->b);
    cql_put_int(&f->b, CQL_RESULT_ROWS);
    cql_put_int(&f->b, CQL_ROWS_NO_METADATA);
    cql_put_int(&f->b, 1000);
    cql_put_int(&f->b, 0x7fffffff);
    assert_int_equal(decode(f, CQL_OP_RESULT, 0), SIB_EPROTO);
    /* Unknown result kind, unknown type code. */
    sib_buf_reset(&f->b);
    cql_put_int(&f->b, 42);
    assert_int_equal(decode(f, CQL_OP_RESULT, 0), SIB_EPROTO);
    sib_buf_reset(&f->b);
    cql_put_int(&f->b, CQL_RESULT_ROWS);
    cql_put_int(&f->b, CQL_ROWS_GLOBAL_TABLES_SPEC);
    cql_put_int(&f->b, 1);
    cql_put_cstring(&f->b, "ks");
    cql_put_cstring(&f->b, "t");
    cql_put_cstring(&f->b, "c");
    cql_put_short(&f->b, 0x0777);
    cql_put_int(&f->b, 0);
    assert_int_equal(decode(f, CQL_OP_RESULT, 0), SIB_EPROTO);
    assert_int_equal(cli_client_parse_cl("local_quorum"), CQL_LOCAL_QUORUM);
    assert_int_equal(cli_client_parse_cl("nope"), -1);
}

/* ---- a scripted server ---- */

typedef struct fake_srv {
    int lfd;
    uint16_t port;
    int nqueries;       /* QUERY frames to collect before answering, in reverse order */
    bool close_after;   /* hang up instead of answering the queries */
    pthread_t th;
} fake_srv;

static bool read_full(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0) return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

/* Reads one frame; returns its header, body into b. */
static bool read_frame(int fd, cql_header *h, sib_buf *b)
{
    uint8_t hdr[CQL_HEADER_LEN];
    if (!read_full(fd, hdr, sizeof(hdr))) return false;
    cql_header_decode(hdr, sizeof(hdr), h);
    sib_buf_reset(b);
    uint8_t *p = sib_buf_reserve(b, h->length + 1);
    if (!read_full(fd, p, h->length)) return false;
    b->len = h->length;
    return true;
}

static void send_frame_flags(int fd, uint8_t flags, int16_t stream, uint8_t opcode, const sib_buf *body)
{
    sib_buf f;
    sib_buf_init(&f);
    size_t start = cql_frame_begin(&f, 0x84, flags, stream, opcode);
    sib_buf_append(&f, body->p, body->len);
    cql_frame_end(&f, start, false, NULL);
    assert_true(write(fd, f.p, f.len) == (ssize_t)f.len);
    sib_buf_free(&f);
}

static void send_frame(int fd, int16_t stream, uint8_t opcode, const sib_buf *body)
{
    send_frame_flags(fd, 0, stream, opcode, body);
}

static void *fake_main(void *arg)
{
    fake_srv *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    sib_buf b, out;
    sib_buf_init(&b);
    sib_buf_init(&out);
    cql_header h;
    int16_t streams[16];
    uint8_t flags[16];
    int n = 0;
    while (fd >= 0 && read_frame(fd, &h, &b)) {
        sib_buf_reset(&out);
        if (h.opcode == CQL_OP_OPTIONS) {
            cql_put_short(&out, 1);
            cql_put_cstring(&out, "CQL_VERSION");
            const char *v[] = {"3.4.5"};
            cql_put_string_list(&out, v, 1);
            send_frame(fd, h.stream, CQL_OP_SUPPORTED, &out);
        } else if (h.opcode == CQL_OP_STARTUP) {
            send_frame(fd, h.stream, CQL_OP_READY, &out);
        } else if (h.opcode == CQL_OP_PREPARE) {
            /* The id is the statement's text: the client must send it. */
            sib_rd r;
            cql_value q = {0};
            int32_t qlen = 0;
            sib_rd_init(&r, b.p, b.len);
            assert_true(cql_get_int(&r, &qlen) && sib_rd_bytes(&r, (size_t)qlen, &q.p));
            cql_prepared_meta bind = {.ks = "ks", .table = "t"};
            cql_put_int(&out, CQL_RESULT_PREPARED);
            assert_int_equal(cql_encode_prepared(&out, 4, q.p, (uint16_t)qlen, &bind, NULL, NULL), 0);
            send_frame(fd, h.stream, CQL_OP_RESULT, &out);
        } else if (h.opcode == CQL_OP_QUERY) {
            if (s->close_after) break;
            flags[n] = h.flags;
            streams[n++] = h.stream;
            if (n < s->nqueries) continue;
            /* Answer newest first: the client must match by stream id. */
            for (int i = n - 1; i >= 0; i--) {
                sib_buf_reset(&out);
                /* A TRACING request gets a traced reply: the flag and a
                 * session id (0x10..0x1f) before the message. */
                uint8_t traced = flags[i] & CQL_FLAG_TRACING;
                for (int k = 0; traced && k < 16; k++) sib_buf_u8(&out, (uint8_t)(0x10 + k));
                cql_put_int(&out, CQL_RESULT_SET_KEYSPACE);
                char ks[16];
                snprintf(ks, sizeof(ks), "ks%d", i);
                cql_put_cstring(&out, ks);
                send_frame_flags(fd, traced, streams[i], CQL_OP_RESULT, &out);
            }
            n = 0;
        }
    }
    if (fd >= 0) close(fd);
    sib_buf_free(&b);
    sib_buf_free(&out);
    return NULL;
}

static void fake_start(fake_srv *s)
{
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    socklen_t al = sizeof(a);
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, fake_main, s), 0);
}

/* Starts s and connects a client to it with o (its port filled in). */
static cli_client *fake_connect(fake_srv *s, cli_client_opts o)
{
    fake_start(s);
    o.port = s->port;
    cli_client *cl;
    sib_err err;
    assert_int_equal(cli_client_connect(&cl, &o, &err), 0);
    return cl;
}

static void fake_stop(fake_srv *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
}

typedef struct answer {
    int n;
    char ks[4][16];
    bool failed;
} answer;

static void on_answer(cli_client *cl, void *ud, const cli_frame *f, const sib_err *err)
{
    answer *a = ud;
    if (!f) {
        a->failed = true;
        return;
    }
    cli_result r;
    sib_err e;
    assert_int_equal(cli_result_decode(cli_client_types(cl), 4, f->opcode, f->flags, f->body, f->len, &r, &e), 0);
    assert_int_equal(r.kind, CLI_RESULT_SET_KEYSPACE);
    snprintf(a->ks[a->n++], sizeof(a->ks[0]), "%s", r.u.keyspace);
    cli_result_free(&r);
}

static void test_pipelined_out_of_order(void **state)
{
    (void)state;
    fake_srv s = {.nqueries = 3};
    cli_client *cl = fake_connect(&s, (cli_client_opts){.lz4 = true, .max_streams = 3});
    sib_err err;
    assert_false(cli_client_lz4(cl)); /* the server offered no lz4 */
    answer a[3] = {{0}};
    for (int i = 0; i < 3; i++) assert_int_equal(cli_client_send_query(cl, "USE x", NULL, on_answer, &a[i], &err), 0);
    assert_int_equal(cli_client_inflight(cl), 3);
    assert_int_equal(cli_client_send_query(cl, "USE y", NULL, on_answer, &a[0], &err), SIB_EAGAIN);
    int got = 0;
    while (got < 3) {
        int rc = cli_client_poll_many(&cl, 1, 5000, NULL, &err);
        assert_true(rc >= 0);
        got += rc;
    }
    /* Each callback got the answer to its own stream (ks0 for the first). */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(a[i].n, 1);
        char exp[16];
        snprintf(exp, sizeof(exp), "ks%d", i);
        assert_string_equal(a[i].ks[0], exp);
    }
    assert_int_equal(cli_client_inflight(cl), 0);
    cli_client_close(cl);
    fake_stop(&s);
}

static void on_prepared(cli_client *cl, void *ud, const cli_frame *f, const sib_err *err)
{
    answer *a = ud;
    (void)err;
    cli_result r;
    sib_err e;
    assert_non_null(f);
    assert_int_equal(cli_result_decode(cli_client_types(cl), 4, f->opcode, f->flags, f->body, f->len, &r, &e), 0);
    assert_int_equal(r.kind, CLI_RESULT_PREPARED);
    snprintf(a->ks[a->n++], sizeof(a->ks[0]), "%.*s", (int)r.u.prepared.id.len, (const char *)r.u.prepared.id.p);
    cli_result_free(&r);
}

/* PREPARE without waiting, as the stress tool re-prepares after Unprepared. */
static void test_send_prepare(void **state)
{
    (void)state;
    fake_srv s = {.close_after = true};
    cli_client *cl = fake_connect(&s, (cli_client_opts){0});
    sib_err err;
    answer a = {0};
    assert_int_equal(cli_client_send_prepare(cl, "SELECT 1", on_prepared, &a, &err), 0);
    assert_int_equal(cli_client_inflight(cl), 1);
    for (int i = 0; i < 50 && a.n == 0; i++) assert_true(cli_client_poll_many(&cl, 1, 100, NULL, &err) >= 0);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.ks[0], "SELECT 1");
    assert_int_equal(cli_client_inflight(cl), 0);
    cli_client_close(cl);
    fake_stop(&s);
}

static void test_sync_and_broken_connection(void **state)
{
    (void)state;
    fake_srv s = {.nqueries = 1};
    cli_client *cl = fake_connect(&s, (cli_client_opts){.timeout_ms = 5000});
    sib_err err;
    cli_result r;
    assert_int_equal(cli_client_query(cl, "USE ks0", CQL_ONE, 0, NULL, &r, &err), 0);
    assert_int_equal(r.kind, CLI_RESULT_SET_KEYSPACE);
    assert_string_equal(cli_client_keyspace(cl), "ks0");
    cli_result_free(&r);
    cli_client_close(cl);
    fake_stop(&s);

    fake_srv s2 = {.close_after = true};
    cl = fake_connect(&s2, (cli_client_opts){.timeout_ms = 5000});
    answer a = {0};
    assert_int_equal(cli_client_send_query(cl, "SELECT 1", NULL, on_answer, &a, &err), 0);
    assert_int_equal(cli_client_query(cl, "SELECT 2", CQL_ONE, 0, NULL, &r, &err), SIB_EIO);
    assert_true(a.failed); /* the pending request was failed once */
    assert_int_equal(cli_client_send_query(cl, "SELECT 3", NULL, on_answer, &a, &err), SIB_EIO);
    cli_result_free(&r);
    cli_client_close(cl);
    fake_stop(&s2);
}

/* cli_query_opts.tracing sets the TRACING header flag; the traced reply's
 * session id lands in tracing_id, and an untraced reply has no flag. */
static void test_tracing_flag(void **state)
{
    (void)state;
    fake_srv s = {.nqueries = 1};
    cli_client *cl = fake_connect(&s, (cli_client_opts){.timeout_ms = 5000});
    sib_err err;
    cli_query_opts qo = {.consistency = CQL_ONE, .tracing = true};
    cli_result r;
    assert_int_equal(cli_client_query_opts(cl, "USE ks0", &qo, &r, &err), 0);
    assert_int_equal(r.kind, CLI_RESULT_SET_KEYSPACE);
    assert_int_equal(r.frame_flags & CQL_FLAG_TRACING, CQL_FLAG_TRACING);
    for (int k = 0; k < 16; k++) assert_int_equal(r.tracing_id[k], 0x10 + k);
    assert_string_equal(r.u.keyspace, "ks0");
    cli_result_free(&r);
    qo.tracing = false;
    assert_int_equal(cli_client_query_opts(cl, "USE ks0", &qo, &r, &err), 0);
    assert_int_equal(r.frame_flags & CQL_FLAG_TRACING, 0);
    assert_string_equal(r.u.keyspace, "ks0");
    cli_result_free(&r);
    cli_client_close(cl);
    fake_stop(&s);
}

static void test_connect_refused(void **state)
{
    (void)state;
    /* Bind then close a port: nothing listens there now. */
    fake_srv s = {0};
    s.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    getsockname(s.lfd, (struct sockaddr *)&a, &al);
    close(s.lfd);
    cli_client *cl = NULL;
    sib_err err;
    cli_client_opts o = {.port = ntohs(a.sin_port), .timeout_ms = 1000};
    assert_int_equal(cli_client_connect(&cl, &o, &err), SIB_EIO);
    assert_null(cl);
    assert_non_null(strstr(err.msg, "connect"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rows_with_metadata, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_rows_no_metadata_and_custom_types, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_errors_with_extras, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_set_keyspace_and_schema_change, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_prepared, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_warnings_prefix_and_malformed, fx_setup, fx_teardown),
        cmocka_unit_test(test_pipelined_out_of_order),
        cmocka_unit_test(test_send_prepare),
        cmocka_unit_test(test_sync_and_broken_connection),
        cmocka_unit_test(test_tracing_flag),
        cmocka_unit_test(test_connect_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
