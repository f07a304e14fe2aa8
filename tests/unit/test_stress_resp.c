/* test_stress_resp.c: sibyl-stress's Redis connection (tools/stress/resp.c)
 * against a scripted peer on an ephemeral 127.0.0.1 port: the requests it
 * writes, answers matched to callbacks in order even when they arrive a
 * byte at a time, nil and error answers, and what a malformed answer or a
 * closed connection does to the requests still waiting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../tools/stress/stress.h"

#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct answer {
    int status;
    char msg[64];
} answer;

typedef struct seen {
    answer a[16];
    int n;
} seen;

static void on_answer(void *ud, int status, const char *msg, size_t len)
{
    seen *s = ud;
    assert_true(s->n < 16);
    answer *a = &s->a[s->n++];
    a->status = status;
    snprintf(a->msg, sizeof a->msg, "%.*s", (int)len, msg ? msg : "");
}

/* A listening socket and a connection to it: *peer is the server's end. */
static resp_conn *connect_pair(int *peer)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 1), 0);
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    resp_conn *c = NULL;
    sib_err err;
    assert_int_equal(resp_connect(&c, "127.0.0.1", ntohs(a.sin_port), 1000, &err), 0);
    *peer = accept(lfd, NULL, NULL);
    assert_true(*peer >= 0);
    close(lfd);
    return c;
}

/* Reads exactly what the client wrote so far (bounded wait). */
static void expect_written(int peer, const char *want)
{
    size_t n = strlen(want), got = 0;
    char buf[512];
    assert_true(n < sizeof buf);
    while (got < n) {
        struct pollfd p = {.fd = peer, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 5000), 1);
        ssize_t r = read(peer, buf + got, n - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    assert_memory_equal(buf, want, n);
}

/* Lets the client take whatever is readable (bounded): resp_io's result. */
static int pump(resp_conn *c, sib_err *err)
{
    struct pollfd p = {.fd = resp_fd(c), .events = resp_events(c)};
    assert_int_equal(poll(&p, 1, 5000), 1);
    return resp_io(c, p.revents, err);
}

static cql_value str(const char *s) { return (cql_value){(const uint8_t *)s, (int32_t)strlen(s)}; }

/* n requests GET k, written. */
static void send_gets(resp_conn *c, seen *s, int n)
{
    sib_err err;
    cql_value get[2] = {str("GET"), str("k")};
    for (int i = 0; i < n; i++) assert_int_equal(resp_send(c, 2, get, on_answer, s, &err), 0);
    assert_int_equal(resp_flush(c, &err), 0);
}

static void test_answers_in_order_byte_by_byte(void **state)
{
    (void)state;
    int peer;
    resp_conn *c = connect_pair(&peer);
    seen s = {0};
    sib_err err;
    cql_value set[3] = {str("SET"), str("k1"), str("v\r\n1")}, get[2] = {str("GET"), str("k1")};
    cql_value miss[2] = {str("GET"), str("nope")}, bad[2] = {str("INCR"), str("k1")};
    assert_int_equal(resp_send(c, 3, set, on_answer, &s, &err), 0);
    assert_int_equal(resp_send(c, 2, get, on_answer, &s, &err), 0);
    assert_int_equal(resp_send(c, 2, miss, on_answer, &s, &err), 0);
    assert_int_equal(resp_send(c, 2, bad, on_answer, &s, &err), 0);
    assert_int_equal(resp_inflight(c), 4);
    assert_true(resp_events(c) & POLLOUT); /* queued, not written yet */
    assert_int_equal(resp_flush(c, &err), 0);
    assert_false(resp_events(c) & POLLOUT);
    /* Values are sent as bulk strings, so CR LF inside one is just bytes. */
    expect_written(peer, "*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$4\r\nv\r\n1\r\n"
                         "*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n*2\r\n$3\r\nGET\r\n$4\r\nnope\r\n"
                         "*2\r\n$4\r\nINCR\r\n$2\r\nk1\r\n");
    const char *answers = "+OK\r\n$4\r\nv\r\n1\r\n$-1\r\n-ERR value is not an integer or out of range\r\n";
    int total = 0;
    for (const char *p = answers; *p; p++) { /* one byte per read: every split point */
        assert_int_equal(write(peer, p, 1), 1);
        int r = pump(c, &err);
        assert_true(r >= 0);
        total += r;
        assert_int_equal(s.n, total);
    }
    assert_int_equal(total, 4);
    assert_int_equal(s.a[0].status, RESP_OK);
    assert_string_equal(s.a[0].msg, "OK");
    assert_int_equal(s.a[1].status, RESP_OK);
    assert_string_equal(s.a[1].msg, "v\r\n1");
    assert_int_equal(s.a[2].status, RESP_NIL);
    assert_int_equal(s.a[3].status, RESP_ERROR);
    assert_string_equal(s.a[3].msg, "ERR value is not an integer or out of range");
    assert_int_equal(resp_inflight(c), 0);
    resp_close(c);
    close(peer);
}

static void test_malformed_answer_breaks_the_connection(void **state)
{
    (void)state;
    int peer;
    resp_conn *c = connect_pair(&peer);
    seen s = {0};
    sib_err err;
    send_gets(c, &s, 3);
    /* One good answer, then an array, which no command sent here returns. */
    const char *bytes = ":7\r\n*1\r\n$1\r\nx\r\n";
    assert_int_equal(write(peer, bytes, strlen(bytes)), (ssize_t)strlen(bytes));
    assert_int_equal(pump(c, &err), SIB_EPROTO);
    assert_non_null(strstr(err.msg, "malformed answer"));
    assert_int_equal(s.n, 3); /* the answered one, then both waiting ones as broken */
    assert_int_equal(s.a[0].status, RESP_OK);
    assert_string_equal(s.a[0].msg, "7");
    assert_int_equal(s.a[1].status, RESP_BROKEN);
    assert_int_equal(s.a[2].status, RESP_BROKEN);
    assert_int_equal(resp_inflight(c), 0);
    cql_value get[2] = {str("GET"), str("k")};
    assert_int_equal(resp_send(c, 2, get, on_answer, &s, &err), SIB_EIO);
    resp_close(c);
    close(peer);
}

static void test_closed_by_peer(void **state)
{
    (void)state;
    int peer;
    resp_conn *c = connect_pair(&peer);
    seen s = {0};
    sib_err err;
    send_gets(c, &s, 2);
    expect_written(peer, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    assert_int_equal(write(peer, "$1\r\na\r\n$5\r\nab", 13), 13); /* the second answer cut short */
    close(peer); /* (after reading: unread bytes would make it a reset) */
    int r = 0, answered = 0;
    for (int i = 0; i < 10 && r >= 0; i++)
        if ((r = pump(c, &err)) > 0) answered += r;
    assert_int_equal(r, SIB_EIO);
    assert_non_null(strstr(err.msg, "closed"));
    assert_int_equal(answered, 1);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.a[0].status, RESP_OK);
    assert_string_equal(s.a[0].msg, "a");
    assert_int_equal(s.a[1].status, RESP_BROKEN);
    resp_close(c);
}

static void test_connect_refused(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd); /* nothing listens there now */
    resp_conn *c = NULL;
    sib_err err;
    assert_int_equal(resp_connect(&c, "127.0.0.1", ntohs(a.sin_port), 1000, &err), SIB_EIO);
    assert_null(c);
    assert_non_null(strstr(err.msg, "connect"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_in_order_byte_by_byte),
        cmocka_unit_test(test_malformed_answer_breaks_the_connection),
        cmocka_unit_test(test_closed_by_peer),
        cmocka_unit_test(test_connect_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
