/* coordinator.h: where a request goes and how many answers it needs.
 *
 * The coordinator owns the token ring (every member's vnode tokens), turns a
 * keyspace's replication options into a strategy, lists the replicas of a
 * token by walking the ring clockwise, and decides whether a consistency
 * level can be met by the replicas that are alive (Unavailable otherwise).
 * The ring starts with the local member; gossip adds every NORMAL peer's
 * tokens and liveness (coord_member_update / coord_member_set_alive).
 * Writes go through the replicas (coord_write, write.c): the local replica
 * applies through storage, remote ones get a MUTATION message and ack once
 * the write is durable, and the caller hears back once blockFor acks are in
 * (WriteTimeout / WriteFailure otherwise). A write whose every replica is
 * the local node keeps the direct storage path (coord_local_only).
 * Single-partition reads go through blockFor replicas (coord_read,
 * read.c): unfiltered answers reconciled by LWW, blocking read repair.
 * Scans go through them range by range (coord_range_read, range.c).
 * docs/architecture.md ("The cluster") has the request flow.
 *
 * Invariants: ring tokens are sorted and unique; a replica list never names
 * the same member twice; blockFor follows Cassandra's
 * ConsistencyLevel.blockFor (QUORUM = sum(rf)/2 + 1, ...).
 */
#ifndef SIB_COORDINATOR_H
#define SIB_COORDINATOR_H

#include "common.h"
#include "storage.h"

struct ev_loop;
struct msg_service;

/* Protocol consistency codes. */
enum {
    CL_ANY = 0, CL_ONE = 1, CL_TWO = 2, CL_THREE = 3, CL_QUORUM = 4, CL_ALL = 5,
    CL_LOCAL_QUORUM = 6, CL_EACH_QUORUM = 7, CL_SERIAL = 8, CL_LOCAL_SERIAL = 9,
    CL_LOCAL_ONE = 10,
};
const char *coord_cl_name(int cl);  /* "QUORUM"; "UNKNOWN" when out of range */

#define COORD_MAX_DCS 16

typedef enum { REPL_LOCAL, REPL_SIMPLE, REPL_NTS, REPL_EVERYWHERE } coord_repl_kind;

typedef struct coord_repl {
    coord_repl_kind kind;
    int rf;                       /* SimpleStrategy */
    int ndcs;                     /* NetworkTopologyStrategy */
    struct { char dc[64]; int rf; } dcs[COORD_MAX_DCS];
} coord_repl;

/* Parses a keyspace `replication` map (keys/values as given in CQL) into a
 * strategy. Accepts short and full class names. Errors are
 * SIB_ECONFIG with Cassandra's wording. On success *full_class (if non-NULL)
 * points at the canonical Java class name (static storage). */
int coord_repl_parse(const char *const *keys, const char *const *vals, size_t n, coord_repl *out,
                     const char **full_class, sib_err *err);
/* Total replication factor (sum over DCs for NTS). */
int coord_repl_total(const coord_repl *r);

typedef struct coord coord;

typedef struct coord_member_opts {
    char addr[64];           /* listen address, e.g. "127.0.0.1" */
    char dc[64], rack[64];
    uint16_t port;           /* storage_port; 0 = the local member's */
    uint8_t host_id[16];
    const int64_t *tokens;   /* copied */
    size_t ntokens;
} coord_member_opts;

coord *coord_create(const coord_member_opts *local, sib_log *log);
void coord_destroy(coord *c);

/* Random vnode tokens for a new node (Cassandra's default allocator for a
 * first node is random too); sorted, unique. */
void coord_random_tokens(sib_rng *rng, int64_t *out, size_t n);

/* Tokens for a member joining a ring, balancing the share of the ring each
 * member replicates at `rf` (Cassandra's
 * allocate_tokens_for_local_replication_factor; tokens.c has the method).
 * The ring is given as ntokens (token, owner) pairs whose owners are
 * 0..nmembers-1; the joiner is member nmembers. Writes n sorted, unique
 * tokens, none already on the ring, to out. An empty ring gets n evenly
 * spaced tokens from a random start. SIB_EINVAL on an owner out of range. */
int coord_allocate_tokens(const int64_t *tokens, const uint32_t *owners, size_t ntokens, size_t nmembers, int rf,
                          sib_rng *rng, int64_t *out, size_t n, sib_err *err);

/* The fraction of the ring each member replicates under SimpleStrategy at
 * rf (out[0..nmembers-1]; they add up to min(rf, nmembers)); rf 1 gives
 * plain ownership. Same ring form as coord_allocate_tokens. */
int coord_ownership(const int64_t *tokens, const uint32_t *owners, size_t ntokens, size_t nmembers, int rf,
                    double *out, sib_err *err);

/* Number of members; index 0 is always the local member. */
size_t coord_members(const coord *c);
/* Listen address of member i ("" past the end). */
const char *coord_member_addr(const coord *c, size_t i);
bool coord_member_alive(const coord *c, size_t i);
const char *coord_member_dc(const coord *c, size_t i);   /* "" past the end */
const char *coord_member_rack(const coord *c, size_t i); /* "" past the end */
uint16_t coord_member_port(const coord *c, size_t i);    /* storage_port; 0 past the end */

/* The ring: every member's tokens, sorted; token i and its owner. */
size_t coord_ring_size(const coord *c);
int64_t coord_ring_token(const coord *c, size_t i);

/* Membership from gossip: adds the member at m->addr, or replaces its
 * tokens, dc, rack and host id, and rebuilds the ring. The local member
 * (index 0) cannot be replaced this way. A peer's tokens may not collide
 * with tokens already in the ring: those are skipped (logged), as the
 * first owner of a token keeps it. SIB_ENOMEM leaves the ring as it was. */
int coord_member_update(coord *c, const coord_member_opts *m);
/* Marks a (non-local) member alive or down for consistency checks; no-op
 * for an unknown or removed address. */
void coord_member_set_alive(coord *c, const char *addr, bool alive);
/* removenode: the member at addr leaves the ring (its tokens go, it is
 * never a replica or alive again, it no longer counts in any datacenter).
 * Its index stays taken, as requests in flight hold member indexes; a
 * later coord_member_update for the address makes it a member again.
 * True when a ring member was removed (false: unknown, local, or removed
 * already). */
bool coord_member_remove(coord *c, const char *addr);
/* Whether addr names a ring member (known, and not removed). */
bool coord_member_in_ring(const coord *c, const char *addr);
const char *coord_local_dc(const coord *c);

/* Members owning `token` under strategy r, in ring order; returns the count
 * written to out (at most cap). */
size_t coord_replicas(const coord *c, const coord_repl *r, int64_t token, size_t *out, size_t cap);

/* Number of replica answers consistency level `cl` needs (Cassandra's blockFor). */
int coord_block_for(const coord *c, const coord_repl *r, int cl);

/* Checks that `cl` is usable for this kind of request and that enough replicas
 * of `token` are alive. Fails with SIB_EINVAL for levels the request kind does
 * not accept (ANY on reads; SERIAL and LOCAL_SERIAL everywhere, as there are
 * no lightweight transactions) and with SIB_EUNAVAIL + extras (consistency,
 * required, alive) otherwise; EACH_QUORUM is checked per datacenter and names
 * the one that falls short. ANY needs one live replica until hints exist. */
int coord_check(const coord *c, const coord_repl *r, int cl, bool is_write, int64_t token, sib_err *err);

/* True when the local member is the only replica of `token` under r
 * (always for LocalStrategy and for a one-member ring): the write or read
 * then needs no messaging at all. */
bool coord_local_only(const coord *c, const coord_repl *r, int64_t token);

/* ---- requests through the replicas (write.c) ---- */

/* The replica-side check that a mutation's table exists at this node.
 * Returns 0, or SIB_ENOTFOUND (the replica answers 'unknown table', which
 * the coordinator counts as a failure). Schema propagation plugs in here;
 * without a hook the local storage's tables are asked. */
typedef int (*coord_table_check_fn)(void *ctx, const uint8_t table_id[16], const uint8_t schema_version[16]);

/* The replica side's way to catch up on schema: a MUTATION for a table id
 * this node does not know is kept while the schema of its sender (host,
 * port) is pulled and merged; done(ctx, rc) then runs on the loop exactly
 * once (rc 0: merged, or nothing newer), and the table is looked up again:
 * still unknown means the table was dropped, and the replica answers
 * 'unknown table'. Returns < 0 when no pull could start (done is not
 * called). The node plugs in its schema sync here (node_schema_pull). */
typedef void (*coord_schema_done_fn)(void *ctx, int rc);
typedef int (*coord_schema_pull_fn)(void *ctx, const char *host, uint16_t port, coord_schema_done_fn done,
                                    void *done_ctx);

/* The batchlog replay's way to route a stored mutation: the replication of
 * the keyspace of table `table_id` as the schema has it now; SIB_ENOTFOUND
 * for a table that is gone (its mutations are dropped from the replay, as
 * Cassandra skips dropped tables). */
typedef int (*coord_table_repl_fn)(void *ctx, const uint8_t table_id[16], coord_repl *out);

typedef struct coord_io {
    struct ev_loop *loop;
    struct msg_service *ms;
    storage *st;
    int write_timeout_ms;            /* write_request_timeout; 0 -> 2000 */
    int read_timeout_ms;             /* read_request_timeout; 0 -> 5000 */
    int range_timeout_ms;            /* range_request_timeout; 0 -> 10000 */
    coord_table_check_fn table_check; /* may be NULL */
    void *table_check_ctx;
    coord_schema_pull_fn schema_pull; /* may be NULL: unknown tables are refused at once */
    void *schema_pull_ctx;
    coord_table_repl_fn table_repl;   /* batchlog replay; NULL: entries are kept, never replayed */
    void *table_repl_ctx;
    int batchlog_replay_interval_ms;  /* 0 -> 10000 (Cassandra's replay interval); < 0: no replay */
} coord_io;

/* Hands the coordinator its services and registers the MUTATION verb's
 * replica side on io->ms. Before it, coord_write fails with SIB_EINVAL. */
void coord_attach(coord *c, const coord_io *io);

/* Verbs of the coordinator (messaging.h's verb space; gossip has 1..4). */
enum { COORD_VERB_MUTATION = 8, COORD_VERB_READ = 9, COORD_VERB_RANGE_READ = 10 };

/* MUTATION payload (version 1), big-endian:
 *   version (1) | flags (1: bit 0 = no commitlog, durable_writes false)
 *   | schema version (16) | count (4) | count x (length (4) | mutation)
 * Each mutation is storage's serialized form (st_mutation_bytes: the table
 * id comes first), the same bytes the commitlog holds. */
#define COORD_MUTATION_VERSION 1
typedef struct coord_mutation_msg {
    uint8_t version;
    unsigned flags;             /* ST_APPLY_* */
    uint8_t schema_version[16];
    size_t n;
    st_mutation **muts;         /* n decoded mutations, owned: coord_mutation_msg_free */
} coord_mutation_msg;

/* Appends the payload for muts[idx[0..n)] (all of them when idx is NULL).
 * SIB_EINVAL for a mutation with a builder error. */
int coord_mutation_encode(sib_buf *out, unsigned flags, const uint8_t schema_version[16], st_mutation *const *muts,
                          const size_t *idx, size_t n, sib_err *err);
/* Decodes and checks a whole payload: SIB_EPROTO for another version,
 * SIB_ECORRUPT for a truncated, trailing or undecodable mutation. On
 * error nothing is left to free. */
int coord_mutation_decode(const uint8_t *p, size_t len, coord_mutation_msg *out, sib_err *err);
void coord_mutation_msg_free(coord_mutation_msg *m);

/* MUTATION answer: status (1: 0 ok, 1 unknown table, 2 failed) | message
 * length (2) | message. */
enum { COORD_ACK_OK = 0, COORD_ACK_UNKNOWN_TABLE = 1, COORD_ACK_FAILED = 2 };
void coord_ack_encode(sib_buf *out, int status, const char *msg);
int coord_ack_decode(const uint8_t *p, size_t len, int *status, char *msg, size_t cap);

/* How a write ended: rc 0, SIB_ETIMEDOUT (WriteTimeout: err->ex[0]
 * consistency, ex[1] received, ex[2] blockFor), SIB_EWRITEFAIL (ex[0..3]
 * as in common.h) or another error. */
typedef void (*coord_write_fn)(void *ctx, int rc, const sib_err *err);

/* Writes n mutations through their replicas: mutation i belongs to the
 * partition at tokens[i] of a keyspace replicated as repls[i]. Replicas
 * that are alive get the mutations they hold (one message each; the local
 * one through storage_apply_ex as ONE commitlog entry); `done` runs once
 * on the loop when every mutation has blockFor acks at `cl`, when too many
 * replicas failed, or after write_request_timeout. The caller has checked
 * availability (coord_check) and keeps its mutations (they are copied).
 * Returns <0 without calling done when nothing was sent. */
int coord_write(coord *c, st_mutation *const *muts, const int64_t *tokens, const coord_repl *const *repls, size_t n,
                int cl, unsigned flags, const uint8_t schema_version[16], coord_write_fn done, void *ctx,
                sib_err *err);

/* ---- logged batches: the batchlog (batchlog.c) ---- */

/* Verbs of the batchlog: BATCH_STORE is a request (answered like MUTATION,
 * COORD_ACK_*), BATCH_REMOVE a one-way message. */
enum { COORD_VERB_BATCH_STORE = 12, COORD_VERB_BATCH_REMOVE = 13 };

/* A batchlog entry (version 1): what BATCH_STORE carries and what a holder
 * keeps in its system.batches table, big-endian:
 *   version (1) | batch id (16, a time UUID) | written at (8, µs since the
 *   epoch, the coordinator's clock) | a MUTATION payload (schema version,
 *   flags and the mutations in their wire form, coord_mutation_encode)
 * BATCH_REMOVE: version (1) | batch id (16). */
#define COORD_BATCH_VERSION 1
typedef struct coord_batch {
    uint8_t id[16];
    int64_t written_us;
    coord_mutation_msg mm; /* owned: coord_batch_free */
} coord_batch;

int coord_batch_encode(sib_buf *out, const uint8_t id[16], int64_t written_us, unsigned flags,
                       const uint8_t schema_version[16], st_mutation *const *muts, size_t n, sib_err *err);
/* Decodes and checks a whole entry (SIB_EPROTO for another version,
 * SIB_ECORRUPT for anything truncated, trailing or undecodable); on error
 * nothing is left to free. */
int coord_batch_decode(const uint8_t *p, size_t len, coord_batch *out, sib_err *err);
void coord_batch_free(coord_batch *b);
void coord_batch_remove_encode(sib_buf *out, const uint8_t id[16]);
int coord_batch_remove_decode(const uint8_t *p, size_t len, uint8_t id[16], sib_err *err);

/* The members (indexes) that would hold a batchlog entry now: up to two
 * live members of the local datacenter other than this one, chosen by
 * Cassandra's rule (all of them when two or fewer; otherwise from other
 * racks than ours when at least two live there, one member from each of
 * two racks when there are two racks to pick from, random among equals);
 * this node alone when it is the only member of its datacenter, or when
 * `any` (level ANY) and no other member is alive. 0: none (Unavailable). */
size_t coord_batchlog_holders(coord *c, bool any, size_t out[2]);

/* How a logged write ended: as coord_write_fn, and batch_log true when the
 * batchlog step failed (the client's error then names write type
 * BATCH_LOG; nothing was sent to the replicas). */
typedef void (*coord_logged_fn)(void *ctx, int rc, const sib_err *err, bool batch_log);

/* A logged batch (Cassandra's mutateAtomically): first the whole batch is
 * stored as one batchlog entry on up to two other live members of the
 * local datacenter (different racks preferred; the local node only when it
 * is alone in its datacenter, or for ANY) and every holder's ack is
 * awaited; then the mutations go out as coord_write at `cl`; once every
 * mutation reached `cl` the holders are told to remove the entry and done
 * runs with 0. A holder that does not ack in write_request_timeout ends it
 * as WriteTimeout (batch_log, consistency ONE or TWO); a batch whose
 * mutations fail or time out keeps its entry, and the holders replay it
 * once it is older than 2 x write_request_timeout. SIB_EUNAVAIL (ex: ONE,
 * 1 required, 0 alive) without calling done when no holder is alive.
 * Arguments as coord_write (the mutations are copied). */
int coord_write_logged(coord *c, st_mutation *const *muts, const int64_t *tokens, const coord_repl *const *repls,
                       size_t n, int cl, unsigned flags, const uint8_t schema_version[16], coord_logged_fn done,
                       void *ctx, sib_err *err);

/* The node is closing: no more replay rounds, and nothing the batchlog
 * still has in flight writes to storage any more (call before storage
 * drains its reads). */
void coord_batchlog_stop(coord *c);

typedef struct coord_batchlog_stats {
    uint64_t writes;          /* logged batches this node coordinated through the batchlog */
    uint64_t stored;          /* entries stored here for a coordinator */
    uint64_t removed;         /* entries removed here (the coordinator's remove, or after a replay) */
    uint64_t replayed;        /* entries this node replayed to every replica */
    uint64_t replay_failures; /* replays that did not reach every replica (kept for the next round) */
    uint64_t entries;         /* entries the last finished replay scan found here */
} coord_batchlog_stats;
void coord_batchlog_stats_get(const coord *c, coord_batchlog_stats *out);

/* ---- reads through the replicas (read.c) ---- */

/* READ payload (version 1), big-endian:
 *   version (1) | flags (1: COORD_READ_DIGEST) | schema version (16) | table id (16) | now_s (4)
 *   | pk length (4) | pk | slice count (4) | per slice: start, end bound,
 *   each flags (1: bit 0 inclusive, bit 1 unbounded) | length (4) | key
 * Answer: status (1, COORD_ACK_*) | length (4) | the partition's
 * unfiltered state in the slices as a serialized mutation (ok; a digest
 * request gets coord_read_digest of those bytes), or the error message. */
#define COORD_READ_VERSION 1
#define COORD_READ_DIGEST 1 /* flags: answer with a digest of the data */
#define COORD_DIGEST_LEN 16
typedef struct coord_read_req {
    const uint8_t *table_id;       /* 16 bytes */
    const uint8_t *schema_version; /* 16 bytes */
    const uint8_t *pk;
    size_t pklen;
    const st_slice *slices;        /* as st_read (0: the whole partition) */
    size_t nslices;
    int32_t now_s;
    bool digest;                   /* a digest request */
    st_slice *slices_owned;        /* decode: the slices array (coord_read_msg_free) */
} coord_read_req;

int coord_read_encode(sib_buf *out, const coord_read_req *rq, sib_err *err);
/* Views into p (the slices array is allocated): SIB_EPROTO for another
 * version, SIB_ECORRUPT for anything truncated, trailing or out of bounds. */
int coord_read_decode(const uint8_t *p, size_t len, coord_read_req *out, sib_err *err);
void coord_read_msg_free(coord_read_req *rq);
/* A digest of an answer's bytes: murmur3 h1 (8) | crc32c (4) | length (4).
 * Replicas in the same state produce the same bytes, so equal digests mean
 * nothing to reconcile. */
void coord_read_digest(const uint8_t *p, size_t len, uint8_t out[COORD_DIGEST_LEN]);
void coord_read_answer_encode(sib_buf *out, int status, const uint8_t *p, size_t len);
int coord_read_answer_decode(const uint8_t *p, size_t len, int *status, const uint8_t **data, size_t *dlen);

/* How a read ended: rc 0 with mg, the replicas' answers reconciled (valid
 * during the call only: st_merge_read it there), or SIB_ETIMEDOUT
 * (ReadTimeout: err->ex[0] consistency, ex[1] received, ex[2] blockFor,
 * ex[3] data present), SIB_EREADFAIL (ex as in common.h) or another error. */
typedef void (*coord_read_fn)(void *ctx, int rc, const sib_err *err, st_merge *mg);

/* Reads one partition (token, replicated as repl) through blockFor live
 * replicas at `cl`: each answers with its unfiltered state in the slices,
 * the answers are reconciled (LWW) and, with `repair` (read_repair
 * 'BLOCKING'), replicas whose answer differs get the reconciled state and
 * their acks are awaited; `done` runs once, on the loop, never from inside
 * this call; read_request_timeout bounds the whole. SIB_EUNAVAIL when too
 * few replicas are alive; <0 without calling done when nothing started. */
int coord_read(coord *c, const coord_read_req *rq, const coord_repl *repl, int64_t token, int cl, bool repair,
               coord_read_fn done, void *ctx, sib_err *err);

/* Single-flight: concurrent identical reads of one partition at this
 * coordinator share one replica round. A round is formed by the first
 * read and sent at the end of the loop iteration it arrived in (an
 * ev_prepare, just before the loop waits); a read arriving in the same
 * iteration with the same request joins it and gets the same answer
 * (done runs once per read, each with the round's merge). A read never
 * joins a round already sent, so it never misses a write acknowledged
 * before it arrived. Identical means: the same READ request bytes (table
 * id, schema version, partition key, slices, now_s), the same consistency
 * level and read repair setting, and the same replicas asked (so a change
 * of liveness or of the ring in between forms a new round). */
typedef struct coord_read_stats {
    uint64_t rounds;    /* replica rounds sent */
    uint64_t coalesced; /* reads answered by a round another read formed */
    uint64_t repair_writes; /* read repair: reconciled partitions written to a replica that differed */
} coord_read_stats;
void coord_read_stats_get(const coord *c, coord_read_stats *out);
/* ---- range reads through the replicas (range.c) ---- */

/* RANGE_READ payload (version 1), big-endian:
 *   version (1) | flags (1: bit 0 start inclusive, bit 1 start has a key)
 *   | schema version (16) | table id (16) | now_s (4) | start token (8)
 *   | [key length (4) | key] | end token (8, inclusive) | max partitions (4)
 *   | max bytes (4) | slice count (4) | slices as READ's
 * The replica answers (coord_read_answer framing, status ok) with the
 * unfiltered state of its partitions after start up to end, in token
 * order, each in the slices (deleted ones included: their tombstones must
 * shadow other replicas' rows), stopping after max partitions looked at
 * or once the answer passes max bytes; the body:
 *   flags (1: bit 0 more) | [resume token (8) | key length (4) | key]
 *   | count (4) | count x (token (8) | key length (4) | key
 *   | mutation length (4) | mutation)
 * "more": partitions after resume (the last one the replica looked at,
 * shown or not) may follow; without it the replica holds nothing else up
 * to end. */
#define COORD_RANGE_VERSION 1
typedef struct coord_range_req {
    const uint8_t *table_id;       /* 16 bytes */
    const uint8_t *schema_version; /* 16 bytes */
    st_position start;             /* after (or at, inclusive) this; pk NULL: a token bound */
    int64_t end_token;             /* inclusive */
    const st_slice *slices;        /* 0: whole partitions */
    size_t nslices;
    int32_t now_s;
    uint32_t max_parts;            /* >= 1 */
    uint32_t max_bytes;            /* 0: no bound */
    st_slice *slices_owned;        /* decode: the slices array (coord_range_msg_free) */
} coord_range_req;

int coord_range_encode(sib_buf *out, const coord_range_req *rq, sib_err *err);
/* Views into p: SIB_EPROTO for another version, SIB_ECORRUPT for anything
 * truncated, trailing or out of bounds (an end before the start, no
 * partitions asked for). */
int coord_range_decode(const uint8_t *p, size_t len, coord_range_req *out, sib_err *err);
void coord_range_msg_free(coord_range_req *rq);

typedef struct coord_range_part {
    int64_t token;
    const uint8_t *pk, *mut;
    size_t pklen, mutlen;
} coord_range_part;

typedef struct coord_range_answer {
    bool more;
    int64_t resume_token;      /* more: the last partition looked at */
    const uint8_t *resume_pk;
    size_t resume_pklen;
    size_t nparts;
    coord_range_part *parts;   /* decode: allocated (coord_range_answer_free) */
} coord_range_answer;

void coord_range_answer_encode(sib_buf *out, const coord_range_answer *a);
/* Views into p; SIB_ECORRUPT for anything truncated or trailing, a key
 * whose token is not the one given, or partitions out of token order. */
int coord_range_answer_decode(const uint8_t *p, size_t len, coord_range_answer *out, sib_err *err);
void coord_range_answer_free(coord_range_answer *a);

/* Splits the tokens [lo, hi] at the ring's vnode boundaries: writes the
 * (inclusive) last token of each piece to ends, in token order, and
 * returns how many there are (at most cap are written). A vnode token T
 * owns (previous token, T]; the stretch after the last ring token belongs
 * to the first one's replicas. With `merge`, adjacent pieces with the
 * same replicas under r are one piece (fewer messages). */
size_t coord_range_split(const coord *c, const coord_repl *r, int64_t lo, int64_t hi, bool merge, int64_t *ends,
                         size_t cap);

/* True when the local member is the only replica of every token under r
 * (LocalStrategy, a one-member ring): a scan then needs no messaging. */
bool coord_range_local_only(const coord *c, const coord_repl *r);

/* A shortcut for blockFor 1 (ONE, LOCAL_ONE): when this node replicates
 * the stretch a scan from start reads next (as coord_range_read picks it)
 * and is alive, the local replica alone is that read's answer: true with
 * *end the stretch's last token, and the caller reads it from its own
 * storage (no serialization, no merge), then goes on after *end. */
bool coord_range_local_stretch(const coord *c, const coord_repl *r, int cl, const st_position *start,
                               int64_t end_token, int64_t *end);

/* Where a range read's piece ends. The merge holds, reconciled, every
 * partition of the replicas after the request's start up to and including
 * through (through_pk NULL: every partition of through_token); done: that
 * is the request's end, nothing follows. */
typedef struct coord_range_result {
    bool done;
    int64_t through_token;
    const uint8_t *through_pk;
    size_t through_pklen;
} coord_range_result;

/* How a range read ended: rc 0 with mg and res (valid during the call
 * only: st_merge_read the piece there), or as coord_read_fn's errors. */
typedef void (*coord_range_fn)(void *ctx, int rc, const sib_err *err, st_merge *mg, const coord_range_result *res);

/* Reads the next piece of a scan: the partitions after rq->start up to
 * rq->end_token, within the first stretch of the ring (coord_range_split,
 * merged) that start falls in. blockFor live replicas of that stretch at
 * `cl` each answer with their unfiltered partitions (the local one
 * through storage's read pool, the others with RANGE_READ), up to
 * rq->max_parts each; the answers are reconciled by LWW (st_merge) up to
 * the first place a replica stopped, so no row another replica's
 * tombstone removed is missed past a cut answer (short-read protection:
 * the caller asks for the next piece from there). `done` runs once, on
 * the loop, never from inside this call. range_request_timeout counts
 * from began_us (sib_now_us() of the query's start, so it bounds the
 * whole query, as Cassandra's does; 0: now) -> ReadTimeout. SIB_EUNAVAIL
 * when too few replicas of the stretch are alive; <0 without calling done
 * when nothing started. With `repair` (read_repair 'BLOCKING') replicas
 * whose answers differ from the reconciled piece get its state for the
 * partitions they missed or had otherwise, and the answer waits for their
 * acknowledgements (ReadTimeout if they do not come in time), as point
 * reads' blocking read repair does. */
int coord_range_read(coord *c, const coord_range_req *rq, const coord_repl *repl, int cl, bool repair,
                     int64_t began_us, coord_range_fn done, void *ctx, sib_err *err);

#endif
