/* coord_int.h: the coordinator's state, shared by its files (not public).
 *
 * coordinator.c owns the ring and the members; write.c routes mutations to
 * the replicas through the services coord_attach hands over. Loop thread
 * only. */
#ifndef SIB_COORD_INT_H
#define SIB_COORD_INT_H

#include "coordinator.h"

#include <ev.h>

typedef struct member {
    char addr[64], dc[64], rack[64];
    uint16_t port; /* storage_port; 0 = unknown (the local port is used) */
    uint8_t host_id[16];
    bool alive;
    bool removed; /* coord_member_remove: no tokens, never alive, slot kept (ops hold indexes) */
} member;

typedef struct ring_entry {
    int64_t token;
    size_t member;
} ring_entry;

typedef struct coord_write_op coord_write_op;
typedef struct coord_read_op coord_read_op;

struct coord {
    member *members;
    size_t nmembers;
    ring_entry *ring;
    size_t nring;
    sib_log *log;
    coord_io io;              /* zeroed until coord_attach */
    coord_write_op *writes;   /* in flight (remote replicas), freed by coord_destroy */
    coord_read_op *reads;     /* in flight, freed by coord_destroy */
    /* Single-flight (read.c): rounds formed in this loop iteration and not
     * yet sent; `flight` sends them just before the loop waits again. */
    coord_read_op **forming;
    size_t nforming, forming_cap;
    ev_prepare flight;
    uint64_t read_rounds, reads_coalesced;
    int64_t last_write_warn_us; /* write failures are logged at most once a second */
};

/* Frees every write still in flight, without calling its callback (the
 * node is closing; messaging dropped their requests already). */
void coord_writes_free(coord *c);
void coord_reads_free(coord *c);
/* 0 when the table of a MUTATION or READ exists here (the table hook, or
 * local storage), else SIB_ENOTFOUND. */
int coord_table_known(coord *c, const uint8_t id[16], const uint8_t schema_version[16]);
/* Registers the READ verb (coord_attach). */
void coord_read_attach(coord *c);

#endif
