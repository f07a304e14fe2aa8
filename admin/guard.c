/* guard.c: who may talk to the admin API, and for how long.
 *
 * Requests. The API changes the node (POST /flush, /compact), so a web page
 * in an operator's browser must not reach it: a browser sends any page's
 * "simple" cross-site POST without asking, and used to get 200.
 *   - Host must name the node by IP literal, "localhost" or the address it
 *     is bound to: a DNS name that resolves to 127.0.0.1 (DNS rebinding)
 *     would make the page same-origin with the API.
 *   - Origin, when present, must be the API's own origin, http://<Host>;
 *     Sec-Fetch-Site, when present, must be same-origin or none. Browsers
 *     send both on cross-site requests; sibyltool, curl and Prometheus send
 *     neither. Either failing answers 403.
 *   - With admin_auth_token set, every request (GET /metrics included) must
 *     carry "Authorization: Bearer <token>", compared in constant time;
 *     otherwise 401.
 *
 * Connections. MHD's own limit refuses newcomers once full, so 70 slow
 * clients used to lock operators out. Here every connection gets `timeout`
 * seconds from accept (or from its last answer) to deliver a complete
 * request, enforced by a sweep timer; and when a newcomer finds the table
 * full, the connection that has waited longest without being answered is
 * shut down to make room. An operator's request arrives at once and is
 * answered in the same callback, so it is never the one that waited
 * longest. shutdown(2) on the socket makes MHD see EOF and close it
 * itself: MHD has no call to close a connection from outside.
 */
#include "admin_int.h"

#include <arpa/inet.h>
#include <ev.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>

/* ---- requests ---- */

/* host without its ":port" (and without the brackets of "[v6]:port"). */
static void host_part(const char *host, char *out, size_t n)
{
    const char *end;
    if (host[0] == '[') {
        host++;
        end = strchr(host, ']');
        if (!end) end = host + strlen(host);
    } else {
        end = strrchr(host, ':');
        /* Two colons or more without brackets: a bare IPv6 literal. */
        if (!end || strchr(host, ':') != end) end = host + strlen(host);
    }
    size_t len = (size_t)(end - host);
    if (len >= n) len = n - 1;
    memcpy(out, host, len);
    out[len] = 0;
}

static bool host_allowed(const admin_guard *g, const char *host)
{
    char h[256];
    host_part(host, h, sizeof h);
    uint8_t buf[16];
    if (inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1) return true;
    if (!strcasecmp(h, "localhost")) return true;
    return g->bind_addr && !strcasecmp(h, g->bind_addr);
}

static bool token_matches(const char *want, const char *auth)
{
    static const char bearer[] = "Bearer ";
    if (!auth || strncasecmp(auth, bearer, sizeof bearer - 1)) return false;
    const char *got = auth + sizeof bearer - 1;
    size_t wn = strlen(want), gn = strlen(got);
    /* Constant time in the token's length: no early exit on a mismatch. */
    unsigned diff = (unsigned)(wn ^ gn);
    for (size_t i = 0; i < wn; i++) diff |= (unsigned)(uint8_t)want[i] ^ (unsigned)(uint8_t)(i < gn ? got[i] : 0);
    return diff == 0;
}

int admin_check_request(const admin_guard *g, const admin_req_headers *h, const char **why)
{
    if (h->host && !host_allowed(g, h->host)) {
        *why = "the Host header must be an IP address, localhost or the admin_address";
        return 403;
    }
    if (h->sec_fetch_site && strcmp(h->sec_fetch_site, "same-origin") && strcmp(h->sec_fetch_site, "none")) {
        *why = "cross-site requests are refused";
        return 403;
    }
    if (h->origin) {
        char own[300];
        snprintf(own, sizeof own, "http://%s", h->host ? h->host : "");
        if (!h->host || strcasecmp(h->origin, own)) {
            *why = "cross-origin requests are refused";
            return 403;
        }
    }
    if (g->token && *g->token && !token_matches(g->token, h->authorization)) {
        *why = "this node requires an admin token (Authorization: Bearer <admin_auth_token>)";
        return 401;
    }
    return 0;
}

/* ---- connections ---- */

typedef struct admin_conn {
    int fd;
    ev_tstamp since; /* accept, or the last answer */
    bool shut;       /* shut down by us; MHD closes it soon */
    struct admin_conn *prev, *next; /* oldest `since` first */
} admin_conn;

struct admin_conns {
    struct ev_loop *loop;
    sib_log *log;
    unsigned max;
    double timeout;
    size_t live; /* not shut */
    admin_conn *head, *tail;
    ev_timer sweep;
    sib_ratelimit rl;
};

static void unlink_conn(admin_conns *cs, admin_conn *c)
{
    if (c->prev) c->prev->next = c->next;
    else cs->head = c->next;
    if (c->next) c->next->prev = c->prev;
    else cs->tail = c->prev;
    c->prev = c->next = NULL;
}

static void append_conn(admin_conns *cs, admin_conn *c)
{
    c->prev = cs->tail;
    c->next = NULL;
    if (cs->tail) cs->tail->next = c;
    else cs->head = c;
    cs->tail = c;
}

static void shut(admin_conns *cs, admin_conn *c, const char *why)
{
    if (c->shut) return;
    c->shut = true;
    cs->live--;
    shutdown(c->fd, SHUT_RDWR);
    uint64_t dropped;
    if (sib_ratelimit_allow(&cs->rl, sib_mono_ns(), &dropped))
        sib_log(cs->log, SIB_WARN, "admin: closing a connection: %s (%llu more since the last line)", why,
                (unsigned long long)dropped);
}

static void on_sweep(struct ev_loop *loop, ev_timer *t, int revents)
{
    admin_conns *cs = t->data;
    ev_tstamp now = ev_now(loop);
    for (admin_conn *c = cs->head; c && now - c->since >= cs->timeout; c = c->next)
        shut(cs, c, "no complete request within admin_connection_timeout");
    if (!cs->head) ev_timer_stop(loop, t);
}

admin_conns *admin_conns_create(struct ev_loop *loop, sib_log *log, unsigned max, double timeout)
{
    admin_conns *cs = calloc(1, sizeof *cs);
    if (!cs) return NULL;
    cs->loop = loop;
    cs->log = log;
    cs->max = max ? max : 16;
    cs->timeout = timeout > 0 ? timeout : 10.0;
    double every = cs->timeout / 4;
    ev_timer_init(&cs->sweep, on_sweep, 0., every < 0.05 ? 0.05 : every > 1.0 ? 1.0 : every);
    cs->sweep.data = cs;
    sib_ratelimit_init(&cs->rl, 10 * 1000000000LL);
    return cs;
}

void admin_conns_destroy(admin_conns *cs)
{
    if (!cs) return;
    ev_timer_stop(cs->loop, &cs->sweep);
    /* MHD_stop_daemon ran first; whatever it did not report is freed here. */
    while (cs->head) {
        admin_conn *c = cs->head;
        unlink_conn(cs, c);
        free(c);
    }
    free(cs);
}

void admin_conns_notify(admin_conns *cs, struct MHD_Connection *conn, void **socket_ctx, int code)
{
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        admin_conn *c = calloc(1, sizeof *c);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!c || !ci) {
            free(c);
            return; /* untracked: MHD's own limit and timeout still apply */
        }
        c->fd = ci->connect_fd;
        c->since = ev_now(cs->loop);
        append_conn(cs, c);
        cs->live++;
        *socket_ctx = c;
        /* Full: the one that waited longest without an answer makes room. */
        for (admin_conn *o = cs->head; o && cs->live > cs->max; o = o->next)
            if (!o->shut && o != c) shut(cs, o, "admin_max_connections reached; it waited longest");
        if (!ev_is_active(&cs->sweep)) ev_timer_again(cs->loop, &cs->sweep);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        admin_conn *c = *socket_ctx;
        if (!c) return;
        unlink_conn(cs, c);
        if (!c->shut) cs->live--;
        free(c);
        *socket_ctx = NULL;
    }
}

void admin_conns_answered(admin_conns *cs, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    admin_conn *c = ci ? ci->socket_context : NULL;
    if (!c) return;
    c->since = ev_now(cs->loop);
    unlink_conn(cs, c);
    append_conn(cs, c);
}
