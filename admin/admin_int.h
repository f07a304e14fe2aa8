/* admin_int.h: private to admin/ (server.c and guard.c).
 *
 * admin_conns tracks the admin API's HTTP connections (guard.c): a limit
 * that makes room by closing the connection that waited longest, and a
 * per-connection deadline for a complete request. */
#ifndef SIB_ADMIN_INT_H
#define SIB_ADMIN_INT_H

#include "admin.h"

struct ev_loop;
struct MHD_Connection;

typedef struct admin_conns admin_conns;

/* NULL on OOM. max 0 = 16, timeout <= 0 = 10 s. */
admin_conns *admin_conns_create(struct ev_loop *loop, sib_log *log, unsigned max, double timeout);
/* After MHD_stop_daemon (every connection reported closed). */
void admin_conns_destroy(admin_conns *cs);
/* MHD_OPTION_NOTIFY_CONNECTION: code is MHD_CONNECTION_NOTIFY_STARTED or
 * _CLOSED; socket_ctx is MHD's per-socket slot. */
void admin_conns_notify(admin_conns *cs, struct MHD_Connection *conn, void **socket_ctx, int code);
/* A response was queued on conn: its clock restarts. */
void admin_conns_answered(admin_conns *cs, struct MHD_Connection *conn);

#endif
