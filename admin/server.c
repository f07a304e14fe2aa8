/* server.c: libmicrohttpd driven by the node's libev loop.
 *
 * MHD runs in "external select" mode with its epoll backend and no thread
 * of its own. The daemon keeps every socket (listener and connections) in
 * one epoll set and exposes that set's fd: it becomes readable when any of
 * them has work. The loop watches it with one ev_io and calls MHD_run(),
 * which accepts, reads, calls on_request (on the loop thread, so handlers
 * read node state without locks) and writes what fits, never blocking. MHD
 * also has timeouts (idle connections, and "work is ready now" after a
 * response was queued), which the ev_timer re-armed after every MHD_run
 * covers.
 *
 *   loop ── ev_io(epoll fd) ──▶ MHD_run ──▶ on_request ──▶ admin_route
 *        └─ ev_timer(MHD_get_timeout) ─┘
 *
 * Request bodies are ignored: every endpoint takes its arguments from the
 * path, and POST /flush or /compact carry none.
 */
#include "admin_int.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

/* MHD calls this once the request line and headers are in (first call, no
 * body yet), once per body chunk, and a last time with no more body: only
 * then is the reply queued, as MHD requires for requests with a body. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    admin_server *s = cls;
    if (!*req_cls) {
        *req_cls = s; /* any non-NULL value: "headers seen" */
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    int status = 500;
    const char *ctype = "application/json";
    sib_buf body;
    sib_buf_init(&body);
    admin_route(s, method, url, &status, &body, &ctype);
    if (body.oom) {
        sib_buf_free(&body);
        return MHD_NO; /* MHD closes the connection */
    }
    size_t len = 0;
    uint8_t *p = sib_buf_take(&body, &len);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, p, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(p);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static void rearm(admin_server *s)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;
    ev_timer_stop(s->loop, &s->timer);
    if (MHD_get_timeout(s->mhd, &ms) != MHD_YES) return; /* nothing timed */
    ev_timer_set(&s->timer, (double)ms / 1000.0, 0.0);
    ev_timer_start(s->loop, &s->timer);
}

static void drive(admin_server *s)
{
    MHD_run(s->mhd);
    rearm(s);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents) { drive(w->data); }
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents) { drive(w->data); }

/* MHD's own diagnostics (bind failures, broken connections) go to the node
 * log instead of stderr. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    admin_server *s = cls;
    if (!sib_log_enabled(s->log, SIB_WARN)) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    sib_logf(s->log, SIB_WARN, "admin: %s", msg);
}

static int copy_node(admin_server *s, const admin_node_info *n, sib_err *err)
{
    s->node = *n;
    s->tokens = malloc(sizeof(int64_t) * (n->ntokens ? n->ntokens : 1));
    if (!s->tokens) return sib_err_set(err, SIB_ENOMEM, "admin tokens");
    if (n->ntokens) memcpy(s->tokens, n->tokens, sizeof(int64_t) * n->ntokens);
    /* Insertion sort: a node has tens of tokens, and they arrive sorted. */
    for (size_t i = 1; i < n->ntokens; i++)
        for (size_t j = i; j > 0 && s->tokens[j - 1] > s->tokens[j]; j--) {
            int64_t t = s->tokens[j];
            s->tokens[j] = s->tokens[j - 1];
            s->tokens[j - 1] = t;
        }
    s->node.tokens = s->tokens;
    return 0;
}

static int start_daemon(admin_server *s, const char *addr, uint16_t port, sib_err *err)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        return sib_err_set(err, SIB_ECONFIG, "admin: listen_address %s is not an IPv4 address", addr);
    /* No MHD thread: MHD_USE_EPOLL without MHD_USE_INTERNAL_POLLING_THREAD
     * is the external-select mode with an epoll fd we can watch. */
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    s->mhd = MHD_start_daemon(flags, port, NULL, NULL, on_request, s,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                              MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                              MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                              MHD_OPTION_END);
    if (!s->mhd) return sib_err_set(err, SIB_EIO, "admin: cannot serve HTTP on %s:%u (port in use?)", addr, port);
    const union MHD_DaemonInfo *ep = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *bp = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    if (!ep || ep->epoll_fd < 0) return sib_err_set(err, SIB_EIO, "admin: no epoll fd from libmicrohttpd");
    s->port = bp ? bp->port : port;
    ev_io_init(&s->io, on_io, ep->epoll_fd, EV_READ);
    s->io.data = s;
    ev_io_start(s->loop, &s->io);
    ev_init(&s->timer, on_timer);
    s->timer.data = s;
    rearm(s);
    return 0;
}

admin_server *admin_server_create(const admin_opts *o, sib_err *err)
{
    admin_server *s = calloc(1, sizeof *s);
    if (!s) { sib_err_set(err, SIB_ENOMEM, "admin server"); return NULL; }
    s->loop = o->loop;
    s->log = o->log;
    s->st = o->st;
    s->cat = o->cat;
    s->co = o->co;
    s->metrics = o->metrics;
    s->hooks = o->hooks;
    s->start_us = sib_now_us();
    const char *addr = o->bind_addr && *o->bind_addr ? o->bind_addr : "127.0.0.1";
    if (copy_node(s, o->node, err) || (o->loop && start_daemon(s, addr, o->port, err))) {
        admin_server_destroy(s);
        return NULL;
    }
    if (o->loop) sib_log(s->log, SIB_INFO, "admin: serving HTTP admin API and /metrics on %s:%u", addr, s->port);
    return s;
}

void admin_server_destroy(admin_server *s)
{
    if (!s) return;
    if (s->mhd) {
        ev_io_stop(s->loop, &s->io);
        ev_timer_stop(s->loop, &s->timer);
        MHD_stop_daemon(s->mhd);
    }
    free(s->tokens);
    free(s);
}

uint16_t admin_server_port(const admin_server *s) { return s->port; }

int admin_server_handle(admin_server *s, const char *method, const char *url, int *status, sib_buf *body)
{
    const char *ctype;
    admin_route(s, method, url, status, body, &ctype);
    return body->oom ? SIB_ENOMEM : 0;
}
