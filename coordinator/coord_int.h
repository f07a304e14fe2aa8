/* coord_int.h: the coordinator's state, shared by its files (not public).
 *
 * coordinator.c owns the ring and the members; write.c routes mutations to
 * the replicas through the services coord_attach hands over. Loop thread
 * only. */
#ifndef SIB_COORD_INT_H
#define SIB_COORD_INT_H

#include "coordinator.h"
#include "messaging.h"

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
typedef struct coord_logged_op coord_logged_op;
typedef struct bl_replay bl_replay;

/* The batchlog's state (batchlog.c). */
typedef struct coord_batchlog {
    sib_timeuuid_gen ids;      /* batch ids */
    sib_rng rng;               /* holder choice */
    coord_logged_op *ops;      /* logged batches in flight, freed by coord_destroy */
    bl_replay *replays;        /* entries being replayed from here */
    size_t nreplays;
    ev_timer timer;            /* the replay round */
    bool timer_on, scanning;   /* scanning: a scan of the local entries is under way */
    bool stopped;              /* coord_batchlog_stop: the node is closing */
    bool has_resume;           /* the scan goes on after (resume_token, resume_pk) */
    int64_t resume_token;
    uint8_t resume_pk[16];
    size_t seen;               /* entries the running scan found so far */
    coord_batchlog_stats stats;
    int64_t last_warn_us;
} coord_batchlog;
typedef struct coord_range_op coord_range_op;

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
    uint64_t read_repair_writes; /* repair mutations sent (point and range reads) */
    coord_range_op *ranges;   /* range reads in flight, freed by coord_destroy */
    int64_t last_write_warn_us; /* write failures are logged at most once a second */
    int64_t ring_changed_us;    /* the last coord_member_update */
    coord_batchlog bl;
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
/* Registers the batchlog verbs, names the batches table and starts the
 * replay timer (coord_attach); coord_batchlog_free stops it and frees what
 * is in flight without calling back. */
void coord_batchlog_attach(coord *c);
void coord_batchlog_free(coord *c);
/* The MUTATION replica side, shared with the batchlog's store: answers
 * `req` with status/msg, or applies muts as one commitlog entry and
 * answers once durable. */
void coord_replica_answer(coord *c, const msg_in *req, int status, const char *msg);
void coord_replica_apply(coord *c, const msg_in *req, st_mutation *const *muts, size_t n, unsigned flags);
/* Index of the first ring token >= t (0 past the last: the ring wraps). */
size_t ring_first(const coord *c, int64_t t);
/* Registers the RANGE_READ verb (coord_attach); range.c. */
void coord_range_attach(coord *c);
void coord_ranges_free(coord *c);
/* A slice bound on the wire (read.c): flags (1: bit 0 inclusive, bit 1
 * unbounded) | length (4) | key; rd_bound refuses anything out of bounds. */
void put_bound(sib_buf *b, const st_bound *x);
bool rd_bound(sib_rd *r, st_bound *x);
/* The errors every replica round (point or range read, read.c and
 * range.c) answers with, Cassandra's words and counts in err->ex:
 * ReadTimeout (cl, received, blockFor, data_present), or while repairs are
 * awaited (repairs >= 0) naming them; ReadFailure (cl, received, blockFor,
 * failures). They return the code. */
int coord_read_timeout_err(sib_err *err, int cl, int block_for, int received, bool data_present, int repairs);
int coord_read_failure_err(sib_err *err, int cl, int block_for, int received, int failed);
/* A replica's answer to READ or RANGE_READ: true with its payload, or false
 * with why it is no answer. */
bool coord_answer_payload(const struct msg_in *resp, const uint8_t **p, size_t *len, const char **why);

/* Read repair's writes (read.c): muts, the reconciled state, applied to
 * member mi (0: this node, through storage) or sent to it as a MUTATION
 * within read_request_timeout. done(ctx, ok) runs once, later, on the loop;
 * <0 (err set) when nothing was sent, and done never runs. */
typedef void (*coord_repair_fn)(void *ctx, bool ok);
int coord_repair_send(coord *c, size_t mi, st_mutation *const *muts, size_t n, coord_repair_fn done, void *ctx,
                      sib_err *err);

/* Answers a READ or RANGE_READ (coord_read_answer framing); read.c. */
struct msg_in;
void read_answer(coord *c, const struct msg_in *req, int status, const uint8_t *p, size_t len);
/* The table a READ or RANGE_READ names, or NULL once the sender got
 * 'unknown table' (range.c). */
st_table *replica_table(coord *c, const struct msg_in *m, const uint8_t id[16], const uint8_t schema_version[16]);
/* Does member m's answer count at cl (LOCAL_*: only the local datacenter's)? */
bool counts_for(const coord *c, int cl, size_t m);

#endif
