/* parser.h: CQL text -> statement AST (one statement per call).
 *
 * A Ragel scanner (lexer.rl) turns the text into tokens; a hand-written
 * recursive-descent parser builds the plain structs below. The grammar and
 * the error texts follow docs/cql.md (Cassandra 4.x Parser.g).
 *
 * Ownership: every node, string and array of a parse result is allocated
 * from the caller's sib_arena and lives until that arena is reset or
 * destroyed. Nothing points into the input text, so the text may be freed
 * right after prs_parse() returns.
 *
 * Names: unquoted identifiers are folded to lower case, quoted ones are
 * unescaped ("" -> ") and kept verbatim; every name below is that internal
 * form, NUL-terminated. Constants keep their literal kind and unescaped
 * text: the executor converts them using the receiver's type (Cassandra's
 * "Invalid STRING constant (a) for "k" of type int" needs both).
 *
 * Arrays are (count, pointer) pairs; a zero count may come with a NULL
 * pointer. Optional sub-nodes are NULL when absent.
 *
 * Invariants: a successful parse returns a tree whose every kind/enum field
 * is one of the listed values; a failed parse leaves *out untouched and
 * fills err (code SIB_ESYNTAX, message as Cassandra words it). The parser
 * never reads outside [text, text+len) and bounds its recursion, so any
 * byte string is safe input.
 */
#ifndef SIB_PARSER_H
#define SIB_PARSER_H

#include "common.h"

/* ---- consistency levels (protocol codes) ------------------------------- */

enum {
    PRS_CL_ANY = 0, PRS_CL_ONE = 1, PRS_CL_TWO = 2, PRS_CL_THREE = 3, PRS_CL_QUORUM = 4,
    PRS_CL_ALL = 5, PRS_CL_LOCAL_QUORUM = 6, PRS_CL_EACH_QUORUM = 7, PRS_CL_SERIAL = 8,
    PRS_CL_LOCAL_SERIAL = 9, PRS_CL_LOCAL_ONE = 10,
};
/* "ONE", "LOCAL_QUORUM", ...; NULL for an unknown code. Static string. */
const char *prs_consistency_name(int code);
/* Case-insensitive name -> code; -1 if s is not a level name. */
int prs_consistency_parse(const char *s);

/* True if word (any case) is a reserved CQL keyword, i.e. must be quoted to
 * be used as a name (helps the executor print "Undefined column name %s"). */
bool prs_is_reserved_keyword(const char *word);

/* ---- names and types --------------------------------------------------- */

/* A possibly keyspace-qualified name: ks is NULL when not given. */
typedef struct prs_qname {
    const char *ks;
    const char *name;
} prs_qname;

typedef enum {
    PRS_TYPE_NATIVE,  /* name = lower-case native type ("int", "text", "varchar", ...) */
    PRS_TYPE_LIST,    /* sub[0] */
    PRS_TYPE_SET,     /* sub[0] */
    PRS_TYPE_MAP,     /* sub[0] key, sub[1] value */
    PRS_TYPE_TUPLE,   /* sub[0..nsub) */
    PRS_TYPE_FROZEN,  /* sub[0] is the frozen type */
    PRS_TYPE_UDT,     /* user type: name (and ks when qualified) */
} prs_type_kind;

typedef struct prs_typeref {
    prs_type_kind kind;
    const char *name; /* native or user type name; for the others "list", "set", ... */
    const char *ks;   /* PRS_TYPE_UDT only, NULL unless qualified */
    size_t nsub;
    struct prs_typeref **sub;
} prs_typeref;

/* ---- terms -------------------------------------------------------------- */

typedef enum {
    PRS_CONST_STRING,   /* '..' or $$..$$; text unescaped */
    PRS_CONST_INTEGER,  /* "-12" */
    PRS_CONST_FLOAT,    /* "1.5", "-2e3", "NaN", "-Infinity" (text as written) */
    PRS_CONST_BOOLEAN,  /* "true"/"false" as written (any case) */
    PRS_CONST_UUID,     /* 8-4-4-4-12 hex as written */
    PRS_CONST_HEX,      /* "0x..." as written (blob) */
    PRS_CONST_DURATION, /* "1h30m", "P1D", ... as written */
} prs_const_kind;

typedef struct prs_const {
    prs_const_kind kind;
    const char *text; /* NUL-terminated; a STRING may also contain NULs, hence len */
    size_t len;
} prs_const;

typedef enum {
    PRS_TERM_CONST,    /* cst */
    PRS_TERM_NULL,
    PRS_TERM_MARKER,   /* marker: index into prs_stmt.markers */
    PRS_TERM_FUNC,     /* func: name(args) e.g. now(), token(k), toTimestamp(now()) */
    PRS_TERM_LIST,     /* coll: [a, b] */
    PRS_TERM_SET,      /* coll: {a, b}; also the empty {} (retyped by the receiver) */
    PRS_TERM_MAP,      /* map: {k: v, ...} (never empty) */
    PRS_TERM_TUPLE,    /* coll: (a, ...) with one or more items */
    PRS_TERM_TYPEHINT, /* cast: (type) term */
    PRS_TERM_CAST,     /* cast: CAST(term AS native_type) */
} prs_term_kind;

typedef struct prs_term {
    prs_term_kind kind;
    int line, col; /* where the term starts: 1-based line, 0-based column */
    union {
        prs_const cst;
        int marker;
        struct {
            const char *ks;   /* NULL unless written ks.f(...) */
            const char *name; /* lower-cased unless quoted */
            size_t nargs;
            struct prs_term **args;
        } func;
        struct {
            size_t n;
            struct prs_term **items;
        } coll;
        struct {
            size_t n;
            struct prs_term **keys, **values;
        } map;
        struct {
            prs_typeref *type;
            struct prs_term *term;
        } cast;
    };
} prs_term;

/* One bind marker, in order of appearance (the bind index). */
typedef struct prs_marker {
    const char *name; /* ":name" -> "name"; NULL for '?' (named after its receiver) */
    int line, col;    /* source position of the marker */
    size_t offset;    /* byte offset of the marker in the text */
} prs_marker;

/* ---- WHERE relations and IF conditions ---------------------------------- */

typedef enum {
    PRS_OP_EQ, PRS_OP_LT, PRS_OP_LTE, PRS_OP_GT, PRS_OP_GTE, PRS_OP_NEQ,
    PRS_OP_IN,
    PRS_OP_CONTAINS, PRS_OP_CONTAINS_KEY,
    PRS_OP_IS_NOT_NULL, /* value NULL */
} prs_op;

typedef enum {
    PRS_REL_SINGLE, /* col op value (cols[0]); IF conditions may have key: col[key] op value */
    PRS_REL_TOKEN,  /* token(cols...) op value */
    PRS_REL_MULTI,  /* (cols...) op tuple-or-marker, or (cols...) IN (...) */
} prs_rel_kind;

typedef struct prs_relation {
    prs_rel_kind kind;
    prs_op op;
    size_t ncols;
    const char **cols;
    prs_term *key;   /* IF col[key] op value, WHERE m[key] op value; otherwise NULL */
    /* op != IN: value is the right-hand side.
     * op == IN: either value is a marker (col IN ?) and nin == 0, or value is
     * NULL and in[0..nin) are the listed terms (tuples/markers for MULTI). */
    prs_term *value;
    size_t nin;
    prs_term **in;
    int line, col; /* position of the relation's first token */
} prs_relation;

/* ---- DML pieces ---------------------------------------------------------- */

/* USING TTL/TIMESTAMP operands: an INTEGER constant or a marker, NULL when absent.
 * USING CONSISTENCY goes to prs_stmt.consistency. */
typedef struct prs_using {
    prs_term *ttl;
    prs_term *timestamp;
} prs_using;

typedef enum {
    PRS_ASSIGN_SET,     /* c = value */
    PRS_ASSIGN_ADD,     /* c = c + value, c += value; also c = c -3 (value INTEGER "-3") */
    PRS_ASSIGN_SUB,     /* c = c - value, c -= value */
    PRS_ASSIGN_PREPEND, /* c = value + c */
    PRS_ASSIGN_ELEM,    /* c[key] = value */
} prs_assign_kind;

typedef struct prs_assignment {
    prs_assign_kind kind;
    const char *col;
    prs_term *key; /* PRS_ASSIGN_ELEM only */
    prs_term *value;
} prs_assignment;

typedef struct prs_ordering {
    const char *col;
    bool desc;
} prs_ordering;

typedef enum {
    PRS_SEL_COLUMN,       /* column */
    PRS_SEL_COUNT,        /* COUNT(*) or COUNT(1) */
    PRS_SEL_WRITETIME,    /* WRITETIME(column) */
    PRS_SEL_MAXWRITETIME, /* MAXWRITETIME(column) */
    PRS_SEL_TTL,          /* TTL(column) */
    PRS_SEL_FUNC,         /* func_ks.func_name(args), e.g. token(k), count(v), toTimestamp(now()) */
    PRS_SEL_CAST,         /* CAST(args[0] AS type) */
    PRS_SEL_TERM,         /* a constant, NULL or marker (term) */
    PRS_SEL_ELEMENT,      /* args[0][term]: a map value or set element */
    PRS_SEL_SLICE,        /* args[0][from..to]: from/to NULL when omitted */
} prs_sel_kind;

typedef struct prs_selector {
    prs_sel_kind kind;
    const char *column;    /* COLUMN, WRITETIME, MAXWRITETIME, TTL */
    /* WRITETIME/MAXWRITETIME/TTL of one element: column[elem] (NULL if none),
     * or of a slice: column[from..to] (elem_slice set; from/to NULL when open) */
    struct prs_term *elem;
    bool elem_slice;
    struct prs_term *from, *to; /* SLICE bounds */
    const char *func_ks;   /* FUNC: NULL unless qualified */
    const char *func_name; /* FUNC: lower-cased unless quoted */
    size_t nargs;          /* FUNC, CAST (1) */
    struct prs_selector **args;
    prs_typeref *type;     /* CAST */
    prs_term *term;        /* TERM */
    const char *alias;     /* AS alias, NULL when absent */
    const char *text;      /* the selector's source text, whitespace-collapsed, without alias */
} prs_selector;

typedef struct prs_delete_sel {
    const char *col;
    prs_term *key; /* DELETE c[key]; NULL for a whole column */
} prs_delete_sel;

/* Table/keyspace option "name = value". Map values are constant-only. */
typedef enum {
    PRS_PROP_CONST, /* value */
    PRS_PROP_IDENT, /* an unquoted word (e.g. an unreserved keyword), value.kind STRING, text folded */
    PRS_PROP_MAP,   /* keys[i] -> values[i] */
} prs_prop_kind;

typedef struct prs_prop {
    const char *name;
    prs_prop_kind kind;
    prs_const value;
    size_t nentries;
    prs_const *keys, *values;
} prs_prop;

/* ---- statements --------------------------------------------------------- */

typedef enum {
    PRS_STMT_SELECT,
    PRS_STMT_INSERT,
    PRS_STMT_UPDATE,
    PRS_STMT_DELETE,
    PRS_STMT_BATCH,
    PRS_STMT_USE,
    PRS_STMT_CREATE_KEYSPACE,
    PRS_STMT_ALTER_KEYSPACE,
    PRS_STMT_DROP_KEYSPACE,
    PRS_STMT_CREATE_TABLE,
    PRS_STMT_ALTER_TABLE,
    PRS_STMT_DROP_TABLE,
    PRS_STMT_TRUNCATE,
    PRS_STMT_DESCRIBE,
} prs_stmt_kind;

typedef struct prs_select {
    bool json;
    bool distinct;
    bool star;                 /* SELECT *; then nsel == 0 */
    size_t nsel;
    prs_selector *sel;
    prs_qname table;
    size_t nwhere;
    prs_relation *where;
    size_t ngroup;             /* GROUP BY columns */
    const char **group_by;
    size_t norder;
    prs_ordering *order;
    prs_term *per_partition_limit; /* INTEGER constant or marker */
    prs_term *limit;
    bool allow_filtering;
} prs_select;

typedef struct prs_insert {
    prs_qname table;
    size_t ncols;              /* ncols == nvalues is NOT checked here (executor: "Unmatched column names/values") */
    const char **cols;
    size_t nvalues;
    prs_term **values;
    bool if_not_exists;
    prs_using using;
    prs_term *json;            /* INSERT ... JSON term (cols/values empty) */
    bool json_default_unset;   /* ... DEFAULT UNSET (else DEFAULT NULL) */
} prs_insert;

typedef struct prs_update {
    prs_qname table;
    prs_using using;
    size_t nassign;
    prs_assignment *assign;
    size_t nwhere;
    prs_relation *where;
    bool if_exists;
    size_t nconds;             /* IF c = v AND ... (kind SINGLE, op any but CONTAINS/IS NOT NULL) */
    prs_relation *conds;
} prs_update;

typedef struct prs_delete {
    size_t ncols;              /* 0: delete whole rows */
    prs_delete_sel *cols;
    prs_qname table;
    prs_using using;           /* only timestamp can be set */
    size_t nwhere;
    prs_relation *where;
    bool if_exists;
    size_t nconds;
    prs_relation *conds;
} prs_delete;

typedef enum { PRS_BATCH_LOGGED, PRS_BATCH_UNLOGGED, PRS_BATCH_COUNTER } prs_batch_kind;

typedef struct prs_batch {
    prs_batch_kind kind;
    prs_using using;
    size_t nstmts;
    struct prs_stmt **stmts;   /* INSERT/UPDATE/DELETE; markers live on the batch statement */
} prs_batch;

/* USE, CREATE/ALTER/DROP KEYSPACE. */
typedef struct prs_keyspace_stmt {
    const char *name;
    bool if_exists;            /* DROP / ALTER ... IF EXISTS */
    bool if_not_exists;        /* CREATE ... IF NOT EXISTS */
    size_t nprops;
    prs_prop *props;
} prs_keyspace_stmt;

typedef struct prs_coldef {
    const char *name;
    prs_typeref *type;
    bool is_static;
    bool primary_key;          /* inline "col type PRIMARY KEY" */
} prs_coldef;

typedef struct prs_create_table {
    prs_qname table;
    bool if_not_exists;
    size_t ncols;
    prs_coldef *cols;
    /* Number of PRIMARY KEY declarations (inline or clause); the executor
     * reports 0 or >1. partition/clustering come from the first one. */
    int npk_decls;
    size_t npartition;
    const char **partition;
    size_t nclustering;
    const char **clustering;
    size_t norder;             /* CLUSTERING ORDER BY (c DESC, ...) */
    prs_ordering *clustering_order;
    /* Sibyl's bucketed partition keys: BUCKET(col, width) and SALT(n) among
     * the partition key components. partition[] holds the derived columns'
     * names at their places ("<col>_bucket", "salt"). bucket_col NULL /
     * has_salt false when absent. */
    const char *bucket_col;
    prs_const bucket_width;
    bool has_salt;
    prs_const salt_count;
    bool compact_storage;
    size_t nprops;
    prs_prop *props;
} prs_create_table;

typedef enum {
    PRS_ALTER_ADD,      /* cols[0..ncols) */
    PRS_ALTER_DROP,     /* names[0..nnames), optional drop_timestamp */
    PRS_ALTER_RENAME,   /* names[i] TO new_names[i] */
    PRS_ALTER_TYPE,     /* ALTER cols[0].name TYPE cols[0].type */
    PRS_ALTER_WITH,     /* props / clustering order / compact storage as in CREATE */
} prs_alter_kind;

typedef struct prs_alter_table {
    prs_qname table;
    bool if_exists;            /* ALTER TABLE IF EXISTS */
    prs_alter_kind kind;
    bool col_if;               /* ADD IF NOT EXISTS / DROP IF EXISTS / RENAME IF EXISTS */
    size_t ncols;
    prs_coldef *cols;
    size_t nnames;
    const char **names;
    const char **new_names;
    prs_term *drop_timestamp;
    size_t nprops;
    prs_prop *props;
} prs_alter_table;

/* DROP TABLE, TRUNCATE. */
typedef struct prs_table_stmt {
    prs_qname table;
    bool if_exists;
} prs_table_stmt;

typedef enum {
    PRS_DESC_CLUSTER,
    PRS_DESC_KEYSPACES,
    PRS_DESC_KEYSPACE,    /* name.name = keyspace or NULL for the current one */
    PRS_DESC_TABLES,
    PRS_DESC_TABLE,       /* name */
    PRS_DESC_SCHEMA,      /* [FULL] SCHEMA: full */
    PRS_DESC_TYPES,
    PRS_DESC_FUNCTIONS,
    PRS_DESC_AGGREGATES,
    PRS_DESC_NAME,        /* DESCRIBE <name>: keyspace or table, resolved by the executor */
} prs_describe_kind;

typedef struct prs_describe {
    prs_describe_kind kind;
    prs_qname name;
    bool full;                 /* DESCRIBE FULL SCHEMA */
    bool only;                 /* DESCRIBE ONLY KEYSPACE */
    bool with_internals;       /* ... WITH INTERNALS */
} prs_describe;

typedef struct prs_stmt {
    prs_stmt_kind kind;
    /* USING CONSISTENCY <level> (Sibyl extension) as a protocol code, -1 when
     * absent. Set on SELECT/INSERT/UPDATE/DELETE/BATCH (inner batch statements too). */
    int consistency;
    /* Bind markers of the whole statement in order (for a BATCH: all inner
     * statements' markers; inner statements have nmarkers == 0). */
    size_t nmarkers;
    prs_marker *markers;
    union {
        prs_select select;
        prs_insert insert;
        prs_update update;
        prs_delete del;
        prs_batch batch;
        prs_keyspace_stmt keyspace; /* USE / CREATE / ALTER / DROP KEYSPACE */
        prs_create_table create_table;
        prs_alter_table alter_table;
        prs_table_stmt table;       /* DROP TABLE / TRUNCATE */
        prs_describe describe;
    };
} prs_stmt;

/* Parses exactly one statement (trailing ';'s allowed) from text[0..len).
 * On success returns 0 and sets *out (allocated from arena). On a syntax
 * error returns SIB_ESYNTAX with err->msg like Cassandra's:
 *   "line 1:7 no viable alternative at input 'FORM' (SELECT * [FORM]...)"
 * or a bare parser-action message ("Bind variables cannot be used for table
 * names"). SIB_ENOMEM if the arena runs out. */
int prs_parse(const char *text, size_t len, sib_arena *arena, prs_stmt **out, sib_err *err);

/* "SELECT", "INSERT", ... "CREATE_KEYSPACE": for logs and tests. Static string. */
const char *prs_stmt_kind_name(prs_stmt_kind k);

#endif
