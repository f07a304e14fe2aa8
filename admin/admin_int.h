/* admin_int.h: private to admin/ (server.c runs the HTTP daemon, routes.c
 * answers requests). Both run on the node's loop thread only. */
#ifndef SIB_ADMIN_INT_H
#define SIB_ADMIN_INT_H

#include <ev.h>

#include "admin.h"
#include "coordinator.h"
#include "schema.h"
#include "storage.h"

struct MHD_Daemon;

struct admin_server {
    struct ev_loop *loop;
    sib_log *log;
    struct MHD_Daemon *mhd;
    ev_io io;        /* MHD's epoll fd: readable when a socket has work */
    ev_timer timer;  /* MHD's own timeouts (idle connections, pending work) */
    uint16_t port;
    storage *st;
    sib_catalog *cat;
    coord *co;
    admin_metrics *metrics;
    admin_node_info node; /* node.tokens points at tokens below */
    int64_t *tokens;      /* sorted copy */
    admin_hooks hooks;
    int64_t start_us;
};

/* Routes one request. *ctype gets a static content type. Never fails: errors
 * become a JSON error body with a 4xx/5xx status. */
void admin_route(admin_server *s, const char *method, const char *url, int *status, sib_buf *body,
                 const char **ctype);

#endif
