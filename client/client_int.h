/* client_int.h: private to client/. The connection struct shared by
 * conn.c (socket, streams, dispatch) and request.c (request bodies,
 * handshake, synchronous calls). */
#ifndef CLI_CLIENT_INT_H
#define CLI_CLIENT_INT_H

#include "client.h"

typedef struct client_slot {
    cli_client_cb cb; /* NULL once abandoned: the answer is dropped */
    void *ud;
    bool busy;
} client_slot;

struct cli_client {
    int fd;
    int version;        /* protocol version of every frame (4) */
    bool lz4;           /* compress requests / expect compressed responses */
    bool broken;        /* sticky; see conn.c */
    int timeout_ms;
    uint32_t max_frame;
    sib_err broken_err;

    sib_buf out;        /* framed requests not yet written from out_off */
    size_t out_off;
    sib_buf in;         /* bytes read, frames start at in_off */
    size_t in_off;
    sib_buf scratch;    /* decompressed body of the frame being dispatched */

    client_slot *slots; /* nslots entries, indexed by stream id */
    int16_t *free_ids;  /* stack of free ids, nfree deep */
    uint32_t nslots, nfree;

    sch_types *ts;
    char keyspace[CQL_NAME_MAX + 1];
    char peer[300];
};

/* Takes a free stream id for (cb, ud): the id, or SIB_EAGAIN / SIB_EIO. */
int client_stream_take(cli_client *cl, cli_client_cb cb, void *ud, sib_err *err);
void client_stream_release(cli_client *cl, int16_t id);
/* Forgets the callback of a request still in flight. */
void client_stream_abandon(cli_client *cl, int16_t id);

/* A synchronous request's state: callback data of client_sync_cb. */
typedef struct client_sync {
    bool done;
    int rc;
    cli_result *out;    /* decoded answer, unless raw is set */
    sib_buf *raw;       /* handshake: copy the body here instead */
    uint8_t raw_opcode;
    sib_err err;
} client_sync;

void client_sync_cb(cli_client *cl, void *ud, const cli_frame *f, const sib_err *err);
int client_sync_wait(cli_client *cl, client_sync *w, int stream, sib_err *err);

/* OPTIONS, STARTUP, authentication and USE (request.c). */
int client_handshake(cli_client *cl, const cli_client_opts *o, sib_err *err);

#endif
