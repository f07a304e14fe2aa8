/* parser.h: CQL text -> statement AST (one statement per call).
 *
 * A Ragel scanner (lexer.rl) turns the text into tokens; a hand-written
 * recursive-descent parser builds the plain structs below. The grammar and
 * the error texts follow shared/ref/cql.md (Cassandra 4.x Parser.g).
 *
 * Ownership: every node, string and array of a parse result is allocated
 * from the caller's sib_arena and lives until that arena is reset or
 * destroyed. Nothing points into the input text, so the text may be freed
 * right after cql_parse() returns.
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
    CQL_CL_ANY = 0, CQL_CL_ONE = 1, CQL_CL_TWO = 2, CQL_CL_THREE = 3, CQL_CL_QUORUM = 4,
    CQL_CL_ALL = 5, CQL_CL_LOCAL_QUORUM = 6, CQL_CL_EACH_QUORUM = 7, CQL_CL_SERIAL = 8,
    CQL_CL_LOCAL_SERIAL = 9, CQL_CL_LOCAL_ONE = 10,
};
/* "ONE", "LOCAL_QUORUM", ...; NULL for an unknown code. Static string. */
const char *cql_consistency_name(int code);
/* Case-insensitive name -> code; -1 if s is not a level name. */
int cql_consistency_parse(const char *s);

/* True if word (any case) is a reserved CQL keyword, i.e. must be quoted to
 * be used as a name (helps the executor print "Undefined column name %s"). */
bool cql_is_reserved_keyword(const char *word);

/* ---- names and types --------------------------------------------------- */

/* A possibly keyspace-qualified name: ks is NULL when not given. */
typedef struct cql_qname {
    const char *ks;
    const char *name;
} cql_qname;

typedef enum {
    CQL_TYPE_NATIVE,  /* name = lower-case native type ("int", "text", "varchar", ...) */
    CQL_TYPE_LIST,    /* sub[0] */
    CQL_TYPE_SET,     /* sub[0] */
    CQL_TYPE_MAP,     /* sub[0] key, sub[1] value */
    CQL_TYPE_TUPLE,   /* sub[0..nsub) */
    CQL_TYPE_FROZEN,  /* sub[0] is the frozen type */
    CQL_TYPE_UDT,     /* user type: name (and ks when qualified) */
} cql_type_kind;

typedef struct cql_typeref {
    cql_type_kind kind;
    const char *name; /* native or user type name; for the others "list", "set", ... */
    const char *ks;   /* CQL_TYPE_UDT only, NULL unless qualified */
    size_t nsub;
    struct cql_typeref **sub;
} cql_typeref;

/* ---- terms -------------------------------------------------------------- */

typedef enum {
    CQL_CONST_STRING,   /* '..' or $$..$$; text unescaped */
    CQL_CONST_INTEGER,  /* "-12" */
    CQL_CONST_FLOAT,    /* "1.5", "-2e3", "NaN", "-Infinity" (text as written) */
    CQL_CONST_BOOLEAN,  /* "true"/"false" as written (any case) */
    CQL_CONST_UUID,     /* 8-4-4-4-12 hex as written */
    CQL_CONST_HEX,      /* "0x..." as written (blob) */
    CQL_CONST_DURATION, /* "1h30m", "P1D", ... as written */
} cql_const_kind;

typedef struct cql_const {
    cql_const_kind kind;
    const char *text; /* NUL-terminated; a STRING may also contain NULs, hence len */
    size_t len;
} cql_const;

typedef enum {
    CQL_TERM_CONST,    /* cst */
    CQL_TERM_NULL,
    CQL_TERM_MARKER,   /* marker: index into cql_stmt.markers */
    CQL_TERM_FUNC,     /* func: name(args) e.g. now(), token(k), toTimestamp(now()) */
    CQL_TERM_LIST,     /* coll: [a, b] */
    CQL_TERM_SET,      /* coll: {a, b}; also the empty {} (retyped by the receiver) */
    CQL_TERM_MAP,      /* map: {k: v, ...} (never empty) */
    CQL_TERM_TUPLE,    /* coll: (a, ...) with one or more items */
    CQL_TERM_TYPEHINT, /* cast: (type) term */
    CQL_TERM_CAST,     /* cast: CAST(term AS native_type) */
} cql_term_kind;

typedef struct cql_term {
    cql_term_kind kind;
    int line, col; /* where the term starts: 1-based line, 0-based column */
    union {
        cql_const cst;
        int marker;
        struct {
            const char *ks;   /* NULL unless written ks.f(...) */
            const char *name; /* lower-cased unless quoted */
            size_t nargs;
            struct cql_term **args;
        } func;
        struct {
            size_t n;
            struct cql_term **items;
        } coll;
        struct {
            size_t n;
            struct cql_term **keys, **values;
        } map;
        struct {
            cql_typeref *type;
            struct cql_term *term;
        } cast;
    };
} cql_term;

/* One bind marker, in order of appearance (the bind index). */
typedef struct cql_marker {
    const char *name; /* ":name" -> "name"; NULL for '?' (named after its receiver) */
    int line, col;    /* source position of the marker */
    size_t offset;    /* byte offset of the marker in the text */
} cql_marker;

/* ---- WHERE relations and IF conditions ---------------------------------- */

typedef enum {
    CQL_OP_EQ, CQL_OP_LT, CQL_OP_LTE, CQL_OP_GT, CQL_OP_GTE, CQL_OP_NEQ,
    CQL_OP_IN,
    CQL_OP_CONTAINS, CQL_OP_CONTAINS_KEY,
    CQL_OP_IS_NOT_NULL, /* value NULL */
} cql_op;

typedef enum {
    CQL_REL_SINGLE, /* col op value (cols[0]); IF conditions may have key: col[key] op value */
    CQL_REL_TOKEN,  /* token(cols...) op value */
    CQL_REL_MULTI,  /* (cols...) op tuple-or-marker, or (cols...) IN (...) */
} cql_rel_kind;

typedef struct cql_relation {
    cql_rel_kind kind;
    cql_op op;
    size_t ncols;
    const char **cols;
    cql_term *key;   /* IF col[key] op value; otherwise NULL */
    /* op != IN: value is the right-hand side.
     * op == IN: either value is a marker (col IN ?) and nin == 0, or value is
     * NULL and in[0..nin) are the listed terms (tuples/markers for MULTI). */
    cql_term *value;
    size_t nin;
    cql_term **in;
    int line, col; /* position of the relation's first token */
} cql_relation;

/* ---- DML pieces ---------------------------------------------------------- */

/* USING TTL/TIMESTAMP operands: an INTEGER constant or a marker, NULL when absent.
 * USING CONSISTENCY goes to cql_stmt.consistency. */
typedef struct cql_using {
    cql_term *ttl;
    cql_term *timestamp;
} cql_using;

typedef enum {
    CQL_ASSIGN_SET,     /* c = value */
    CQL_ASSIGN_ADD,     /* c = c + value, c += value; also c = c -3 (value INTEGER "-3") */
    CQL_ASSIGN_SUB,     /* c = c - value, c -= value */
    CQL_ASSIGN_PREPEND, /* c = value + c */
    CQL_ASSIGN_ELEM,    /* c[key] = value */
} cql_assign_kind;

typedef struct cql_assignment {
    cql_assign_kind kind;
    const char *col;
    cql_term *key; /* CQL_ASSIGN_ELEM only */
    cql_term *value;
} cql_assignment;

typedef struct cql_ordering {
    const char *col;
    bool desc;
} cql_ordering;

typedef enum {
    CQL_SEL_COLUMN,       /* column */
    CQL_SEL_COUNT,        /* COUNT(*) or COUNT(1) */
    CQL_SEL_WRITETIME,    /* WRITETIME(column) */
    CQL_SEL_MAXWRITETIME, /* MAXWRITETIME(column) */
    CQL_SEL_TTL,          /* TTL(column) */
    CQL_SEL_FUNC,         /* func_ks.func_name(args), e.g. token(k), count(v), toTimestamp(now()) */
    CQL_SEL_CAST,         /* CAST(args[0] AS type) */
    CQL_SEL_TERM,         /* a constant, NULL or marker (term) */
    CQL_SEL_ELEMENT,      /* args[0][term]: a map value or set element */
    CQL_SEL_SLICE,        /* args[0][from..to]: from/to NULL when omitted */
} cql_sel_kind;

typedef struct cql_selector {
    cql_sel_kind kind;
    const char *column;    /* COLUMN, WRITETIME, MAXWRITETIME, TTL */
    /* WRITETIME/MAXWRITETIME/TTL of one element: column[elem] (NULL if none),
     * or of a slice: column[from..to] (elem_slice set; from/to NULL when open) */
    struct cql_term *elem;
    bool elem_slice;
    struct cql_term *from, *to; /* SLICE bounds */
    const char *func_ks;   /* FUNC: NULL unless qualified */
    const char *func_name; /* FUNC: lower-cased unless quoted */
    size_t nargs;          /* FUNC, CAST (1) */
    struct cql_selector **args;
    cql_typeref *type;     /* CAST */
    cql_term *term;        /* TERM */
    const char *alias;     /* AS alias, NULL when absent */
    const char *text;      /* the selector's source text, whitespace-collapsed, without alias */
} cql_selector;

typedef struct cql_delete_sel {
    const char *col;
    cql_term *key; /* DELETE c[key]; NULL for a whole column */
} cql_delete_sel;

/* Table/keyspace option "name = value". Map values are constant-only. */
typedef enum {
    CQL_PROP_CONST, /* value */
    CQL_PROP_IDENT, /* an unquoted word (e.g. an unreserved keyword), value.kind STRING, text folded */
    CQL_PROP_MAP,   /* keys[i] -> values[i] */
} cql_prop_kind;

typedef struct cql_prop {
    const char *name;
    cql_prop_kind kind;
    cql_const value;
    size_t nentries;
    cql_const *keys, *values;
} cql_prop;

/* ---- statements --------------------------------------------------------- */

typedef enum {
    CQL_STMT_SELECT,
    CQL_STMT_INSERT,
    CQL_STMT_UPDATE,
    CQL_STMT_DELETE,
    CQL_STMT_BATCH,
    CQL_STMT_USE,
    CQL_STMT_CREATE_KEYSPACE,
    CQL_STMT_ALTER_KEYSPACE,
    CQL_STMT_DROP_KEYSPACE,
    CQL_STMT_CREATE_TABLE,
    CQL_STMT_ALTER_TABLE,
    CQL_STMT_DROP_TABLE,
    CQL_STMT_TRUNCATE,
    CQL_STMT_DESCRIBE,
} cql_stmt_kind;

typedef struct cql_select {
    bool json;
    bool distinct;
    bool star;                 /* SELECT *; then nsel == 0 */
    size_t nsel;
    cql_selector *sel;
    cql_qname table;
    size_t nwhere;
    cql_relation *where;
    size_t ngroup;             /* GROUP BY columns */
    const char **group_by;
    size_t norder;
    cql_ordering *order;
    cql_term *per_partition_limit; /* INTEGER constant or marker */
    cql_term *limit;
    bool allow_filtering;
} cql_select;

typedef struct cql_insert {
    cql_qname table;
    size_t ncols;              /* ncols == nvalues is NOT checked here (executor: "Unmatched column names/values") */
    const char **cols;
    size_t nvalues;
    cql_term **values;
    bool if_not_exists;
    cql_using using;
} cql_insert;

typedef struct cql_update {
    cql_qname table;
    cql_using using;
    size_t nassign;
    cql_assignment *assign;
    size_t nwhere;
    cql_relation *where;
    bool if_exists;
    size_t nconds;             /* IF c = v AND ... (kind SINGLE, op any but CONTAINS/IS NOT NULL) */
    cql_relation *conds;
} cql_update;

typedef struct cql_delete {
    size_t ncols;              /* 0: delete whole rows */
    cql_delete_sel *cols;
    cql_qname table;
    cql_using using;           /* only timestamp can be set */
    size_t nwhere;
    cql_relation *where;
    bool if_exists;
    size_t nconds;
    cql_relation *conds;
} cql_delete;

typedef enum { CQL_BATCH_LOGGED, CQL_BATCH_UNLOGGED, CQL_BATCH_COUNTER } cql_batch_kind;

typedef struct cql_batch {
    cql_batch_kind kind;
    cql_using using;
    size_t nstmts;
    struct cql_stmt **stmts;   /* INSERT/UPDATE/DELETE; markers live on the batch statement */
} cql_batch;

/* USE, CREATE/ALTER/DROP KEYSPACE. */
typedef struct cql_keyspace_stmt {
    const char *name;
    bool if_exists;            /* DROP / ALTER ... IF EXISTS */
    bool if_not_exists;        /* CREATE ... IF NOT EXISTS */
    size_t nprops;
    cql_prop *props;
} cql_keyspace_stmt;

typedef struct cql_coldef {
    const char *name;
    cql_typeref *type;
    bool is_static;
    bool primary_key;          /* inline "col type PRIMARY KEY" */
} cql_coldef;

typedef struct cql_create_table {
    cql_qname table;
    bool if_not_exists;
    size_t ncols;
    cql_coldef *cols;
    /* Number of PRIMARY KEY declarations (inline or clause); the executor
     * reports 0 or >1. partition/clustering come from the first one. */
    int npk_decls;
    size_t npartition;
    const char **partition;
    size_t nclustering;
    const char **clustering;
    size_t norder;             /* CLUSTERING ORDER BY (c DESC, ...) */
    cql_ordering *clustering_order;
    bool compact_storage;
    size_t nprops;
    cql_prop *props;
} cql_create_table;

typedef enum {
    CQL_ALTER_ADD,      /* cols[0..ncols) */
    CQL_ALTER_DROP,     /* names[0..nnames), optional drop_timestamp */
    CQL_ALTER_RENAME,   /* names[i] TO new_names[i] */
    CQL_ALTER_TYPE,     /* ALTER cols[0].name TYPE cols[0].type */
    CQL_ALTER_WITH,     /* props / clustering order / compact storage as in CREATE */
} cql_alter_kind;

typedef struct cql_alter_table {
    cql_qname table;
    bool if_exists;            /* ALTER TABLE IF EXISTS */
    cql_alter_kind kind;
    bool col_if;               /* ADD IF NOT EXISTS / DROP IF EXISTS / RENAME IF EXISTS */
    size_t ncols;
    cql_coldef *cols;
    size_t nnames;
    const char **names;
    const char **new_names;
    cql_term *drop_timestamp;
    size_t nprops;
    cql_prop *props;
} cql_alter_table;

/* DROP TABLE, TRUNCATE. */
typedef struct cql_table_stmt {
    cql_qname table;
    bool if_exists;
} cql_table_stmt;

typedef enum {
    CQL_DESC_CLUSTER,
    CQL_DESC_KEYSPACES,
    CQL_DESC_KEYSPACE,    /* name.name = keyspace or NULL for the current one */
    CQL_DESC_TABLES,
    CQL_DESC_TABLE,       /* name */
    CQL_DESC_SCHEMA,      /* [FULL] SCHEMA: full */
    CQL_DESC_TYPES,
    CQL_DESC_FUNCTIONS,
    CQL_DESC_AGGREGATES,
    CQL_DESC_NAME,        /* DESCRIBE <name>: keyspace or table, resolved by the executor */
} cql_describe_kind;

typedef struct cql_describe {
    cql_describe_kind kind;
    cql_qname name;
    bool full;                 /* DESCRIBE FULL SCHEMA */
    bool only;                 /* DESCRIBE ONLY KEYSPACE */
    bool with_internals;       /* ... WITH INTERNALS */
} cql_describe;

typedef struct cql_stmt {
    cql_stmt_kind kind;
    /* USING CONSISTENCY <level> (Sibyl extension) as a protocol code, -1 when
     * absent. Set on SELECT/INSERT/UPDATE/DELETE/BATCH (inner batch statements too). */
    int consistency;
    /* Bind markers of the whole statement in order (for a BATCH: all inner
     * statements' markers; inner statements have nmarkers == 0). */
    size_t nmarkers;
    cql_marker *markers;
    union {
        cql_select select;
        cql_insert insert;
        cql_update update;
        cql_delete del;
        cql_batch batch;
        cql_keyspace_stmt keyspace; /* USE / CREATE / ALTER / DROP KEYSPACE */
        cql_create_table create_table;
        cql_alter_table alter_table;
        cql_table_stmt table;       /* DROP TABLE / TRUNCATE */
        cql_describe describe;
    };
} cql_stmt;

/* Parses exactly one statement (trailing ';'s allowed) from text[0..len).
 * On success returns 0 and sets *out (allocated from arena). On a syntax
 * error returns SIB_ESYNTAX with err->msg like Cassandra's:
 *   "line 1:7 no viable alternative at input 'FORM' (SELECT * [FORM]...)"
 * or a bare parser-action message ("Bind variables cannot be used for table
 * names"). SIB_ENOMEM if the arena runs out. */
int cql_parse(const char *text, size_t len, sib_arena *arena, cql_stmt **out, sib_err *err);

/* "SELECT", "INSERT", ... "CREATE_KEYSPACE": for logs and tests. Static string. */
const char *cql_stmt_kind_name(cql_stmt_kind k);

#endif
