/* command.c: runs one statement: a shell command handled here, or CQL sent
 * to the server.
 *
 * The shell commands and their messages are cqlsh's (cqlsh.py do_*):
 *   CONSISTENCY [level]         "Current consistency level is ONE." /
 *                               "Consistency level set to QUORUM."
 *   SERIAL CONSISTENCY [level]  the same for the serial level
 *   PAGING [ON|OFF|n]           cqlsh's SwitchCommandWithValue texts
 *   EXPAND [ON|OFF]             cqlsh's SwitchCommand texts
 *   TRACING [ON|OFF]            the same; traces are printed by trace.c
 *   CAPTURE ['file'|OFF]        query results appended to a file (sh->out)
 *   SHOW VERSION | HOST, HELP [topic], EXIT | QUIT, CLEAR | CLS
 *   SOURCE 'file'               runs the file like -f, errors prefixed by it
 *   COPY ...                    copy.c
 *   DESCRIBE | DESC ...         sent to the server (Cassandra 4.0 answers
 *                               DESCRIBE itself), printed by output.c
 * Everything else goes to the server as is; USE changes the prompt through
 * the client's record of the session keyspace.
 *
 * A lost connection is reported as the driver reports it and reopened once
 * for the next statement, so a restarted node does not end the session.
 */
#include "shell.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SOURCE_MAX_DEPTH 16 /* SOURCE of a file that SOURCEs itself stops here */

/* Help texts of the shell commands: "HELP <cmd>"; sorted, as HELP lists them. */
static const struct {
    const char *cmd;
    const char *text;
} help_topics[] = {
    {"CAPTURE", "CAPTURE ['file' | OFF]\n\n  Appends query results to a file instead of printing them; CAPTURE OFF\n"
                "  stops, CAPTURE alone shows where output goes.\n"},
    {"CLEAR", "CLEAR | CLS\n\n  Clears the terminal.\n"},
    {"CLS", "CLEAR | CLS\n\n  Clears the terminal.\n"},
    {"CONSISTENCY", "CONSISTENCY [level]\n\n  Shows or sets the consistency level of the requests: ANY, ONE, TWO,\n"
                    "  THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, SERIAL, LOCAL_SERIAL, LOCAL_ONE.\n"
                    "  One statement can carry its own level instead (a Sibyl extension, see HELP USING).\n"},
    {"COPY", "COPY table [(col, ...)] TO 'file.csv' | STDOUT [WITH HEADER = true [AND DELIMITER = ',']]\n"
             "COPY table [(col, ...)] FROM 'file.csv' | STDIN [WITH ...]\n\n"
             "  Exports a table to CSV or imports CSV rows into it. FROM STDIN reads lines\n"
             "  until one holding only \\. (or the end of input).\n"},
    {"DESC", "DESC is DESCRIBE.\n"},
    {"DESCRIBE", "DESCRIBE [KEYSPACES | KEYSPACE ks | TABLES | TABLE t | SCHEMA | name]\n\n"
                 "  Prints the CQL that recreates the schema element (answered by the server).\n"},
    {"EXIT", "EXIT | QUIT\n\n  Ends the shell.\n"},
    {"EXPAND", "EXPAND [ON | OFF]\n\n  Prints each row vertically, one column per line.\n"},
    {"HELP", "HELP [topic]\n\n  Lists the topics, or shows help on one.\n"},
    {"PAGING", "PAGING [ON | OFF | n]\n\n  Pages long results (default page size 100); 'PAGING n' sets the size.\n"},
    {"QUIT", "EXIT | QUIT\n\n  Ends the shell.\n"},
    {"SERIAL", "SERIAL CONSISTENCY [level]\n\n  Shows or sets the serial consistency level: SERIAL or LOCAL_SERIAL.\n"},
    {"SHOW", "SHOW VERSION | HOST\n\n  Shows the shell and server versions, or the connected host.\n"},
    {"SOURCE", "SOURCE 'file'\n\n  Runs the CQL statements of a file.\n"},
    {"TRACING", "TRACING [ON | OFF]\n\n  Traces every following statement on the server and prints the trace\n"
                "  (system_traces) after its result.\n"},
    {"USING", "... USING CONSISTENCY level   (Sibyl extension)\n\n"
              "  Runs one statement at the given level, whatever CONSISTENCY says. It is a USING\n"
              "  option of INSERT, UPDATE, DELETE and BATCH (USING TTL 60 AND CONSISTENCY ONE)\n"
              "  and a trailing clause of every SELECT, INSERT, UPDATE, DELETE and BATCH:\n"
              "    SELECT * FROM t WHERE k = 1 USING CONSISTENCY QUORUM;\n"
              "    UPDATE t SET v = 2 WHERE k = 1 USING CONSISTENCY ALL;\n"
              "  A prepared statement keeps the level it was prepared with.\n"},
};

static const char *const cql_topics[] = {
    "ALTER_KEYSPACE", "ALTER_TABLE", "APPLY", "ASCII", "BATCH", "BEGIN", "BLOB", "BOOLEAN",
    "COUNTER", "CREATE_KEYSPACE", "CREATE_TABLE", "DATE", "DELETE", "DROP_KEYSPACE", "DROP_TABLE",
    "INSERT", "INT", "SELECT", "TEXT", "TIME", "TIMESTAMP", "TRUNCATE", "TYPES", "UPDATE", "USE", "UUID",
};

void shell_expand_path(const char *path, char *out, size_t cap)
{
    const char *home = getenv("HOME");
    if (path[0] == '~' && (path[1] == '/' || path[1] == '\0') && home)
        snprintf(out, cap, "%s%s", home, path + 1);
    else
        snprintf(out, cap, "%s", path);
}

void shell_prompt(const shell *sh, char *buf, size_t cap)
{
    const char *ks = cli_client_keyspace(sh->cl);
    if (ks && ks[0])
        snprintf(buf, cap, "cqlsh:%s> ", ks);
    else
        snprintf(buf, cap, "cqlsh> ");
}

/* Copies the next word of *p (a blank-separated token; '..' quoted as one
 * word with '' unescaped) into out and advances *p. Returns false at end. */
static bool next_word(const char **p, char *out, size_t cap)
{
    const char *s = *p;
    while (isspace((unsigned char)*s)) s++;
    if (!*s) return false;
    size_t n = 0;
    if (*s == '\'') {
        s++;
        while (*s && !(s[0] == '\'' && s[1] != '\'')) {
            if (s[0] == '\'') s++; /* '' */
            if (n + 1 < cap) out[n++] = *s;
            s++;
        }
        if (*s) s++;
    } else {
        while (*s && !isspace((unsigned char)*s) && *s != ';') {
            if (n + 1 < cap) out[n++] = *s;
            s++;
        }
    }
    out[n] = '\0';
    *p = s;
    return true;
}

static bool rest_empty(const char *p)
{
    while (isspace((unsigned char)*p) || *p == ';') p++;
    return *p == '\0';
}

/* ---- talking to the server ---------------------------------------------------- */

/* Replaces a broken connection by a new one in the same keyspace. The old
 * client stays until the new one works, so the prompt keeps its keyspace
 * while the node is away. */
static int reconnect(shell *sh)
{
    cli_client *fresh = NULL;
    sib_err err;
    sib_err_clear(&err);
    const char *ks = cli_client_keyspace(sh->cl);
    sh->copts.keyspace = ks && ks[0] ? ks : NULL;
    int rc = cli_client_connect(&fresh, &sh->copts, &err);
    sh->copts.keyspace = NULL;
    if (rc < 0) return rc;
    cli_client_close(sh->cl);
    sh->cl = fresh;
    sh->broken = false;
    return 0;
}

/* shell_query, optionally asking the server to trace the request. */
static int query_traced(shell *sh, const char *cql, int32_t page_size, const cql_value *paging_state, bool trace,
                        cli_result *out)
{
    memset(out, 0, sizeof(*out));
    if (sh->broken && reconnect(sh) < 0) {
        shell_error(sh, "NoHostAvailable: ('Unable to complete the operation against any hosts', {'%s:%u': "
                        "'connection closed'})",
                    sh->host, (unsigned)sh->port);
        return -1;
    }
    cli_query_opts qo = {
        .consistency = sh->consistency,
        .any_cl = sh->consistency == CQL_ANY,
        .page_size = page_size,
        .serial_consistency = sh->serial_consistency,
        .tracing = trace,
    };
    if (paging_state && paging_state->len >= 0) {
        qo.paging_state = paging_state->p;
        qo.paging_state_len = paging_state->len;
    }
    sib_err err;
    sib_err_clear(&err);
    int rc = cli_client_query_opts(sh->cl, cql, &qo, out, &err);
    if (rc == 0) return 0;
    /* The client says "host:port: what"; the driver's shape names the host once. */
    const char *why = err.msg, *peer = cli_client_peer(sh->cl);
    size_t pl = strlen(peer);
    if (strncmp(why, peer, pl) == 0 && strncmp(why + pl, ": ", 2) == 0) why += pl + 2;
    shell_error(sh, "NoHostAvailable: ('Unable to complete the operation against any hosts', {'%s:%u': '%s'})",
                sh->host, (unsigned)sh->port, why);
    if (rc == SIB_EIO) sh->broken = true; /* unusable now; the next statement reconnects */
    return -1;
}

int shell_query(shell *sh, const char *cql, int32_t page_size, const cql_value *paging_state, cli_result *out)
{
    return query_traced(sh, cql, page_size, paging_state, false, out);
}

static void print_warnings(const cli_result *r)
{
    if (r->nwarnings == 0) return;
    fprintf(stderr, "\nWarnings :\n");
    for (size_t i = 0; i < r->nwarnings; i++) fprintf(stderr, "%s\n", r->warnings[i]);
    fprintf(stderr, "\n");
}

/* Sends CQL and prints what comes back, then (TRACING ON) its trace, as
 * cqlsh does: only for a statement that did not fail, and for the request
 * of its first page (later pages are not traced). */
static int exec_cql(shell *sh, const char *cql)
{
    cli_result r;
    if (query_traced(sh, cql, sh->paging ? sh->page_size : 0, NULL, sh->tracing, &r) < 0) return -1;
    int rc = 0;
    print_warnings(&r);
    if (r.kind == CLI_RESULT_ERROR) {
        shell_server_error(sh, &r);
        rc = -1;
    } else if (r.kind == CLI_RESULT_ROWS) {
        rc = shell_print_rows(sh, cql, &r);
    }
    uint8_t trace_id[16];
    bool traced = rc == 0 && r.kind != CLI_RESULT_ERROR && (r.frame_flags & CQL_FLAG_TRACING);
    if (traced) memcpy(trace_id, r.tracing_id, 16);
    cli_result_free(&r);
    if (traced && shell_print_trace(sh, trace_id) < 0) rc = -1;
    return rc;
}

static int exec_describe(shell *sh, const char *args)
{
    char what[64] = "";
    const char *p = args;
    next_word(&p, what, sizeof(what));
    for (char *c = what; *c; c++) *c = (char)toupper((unsigned char)*c);
    /* The server knows DESCRIBE; DESC is cqlsh's abbreviation of it. */
    char *cql = malloc(strlen(args) + 16);
    if (!cql) {
        shell_error(sh, "out of memory");
        return -1;
    }
    sprintf(cql, "DESCRIBE %s", args);
    cli_result r;
    int rc = shell_query(sh, cql, sh->page_size > 0 ? sh->page_size : SHELL_DEFAULT_PAGE, NULL, &r);
    if (rc == 0) {
        if (r.kind == CLI_RESULT_ERROR) {
            shell_server_error(sh, &r);
            rc = -1;
        } else if (r.kind == CLI_RESULT_ROWS) {
            rc = shell_print_describe(sh, what, cql, &r);
        }
    }
    cli_result_free(&r);
    free(cql);
    return rc;
}

/* ---- shell commands ------------------------------------------------------------- */

static int cmd_consistency(shell *sh, const char *args, bool serial)
{
    char level[64];
    const char *p = args;
    int *target = serial ? &sh->serial_consistency : &sh->consistency;
    const char *what = serial ? "serial consistency level" : "consistency level";
    if (!next_word(&p, level, sizeof(level))) {
        printf("Current %s is %s.\n", what, cql_cl_name(*target));
        return 0;
    }
    int cl = cli_client_parse_cl(level);
    if (cl < 0 || !rest_empty(p) || (serial && cl != CQL_SERIAL && cl != CQL_LOCAL_SERIAL)) {
        shell_error(sh, "Improper %s command.", serial ? "SERIAL CONSISTENCY" : "CONSISTENCY");
        return -1;
    }
    *target = cl;
    printf("%s set to %s.\n", serial ? "Serial consistency level" : "Consistency level", cql_cl_name(cl));
    return 0;
}

/* cqlsh's SwitchCommand: ON / OFF / status, with its exact texts; like
 * cqlsh, "already enabled" goes through printerr and so counts as an error.
 * Returns 1 when the word was neither ON nor OFF (PAGING n), 0 otherwise. */
static int switch_cmd(shell *sh, const char *cmd, const char *desc, bool *state, const char *word)
{
    if (!word) {
        if (*state)
            printf("%s is currently enabled. Use %s OFF to disable\n", desc, cmd);
        else
            printf("%s is currently disabled. Use %s ON to enable.\n", desc, cmd);
    } else if (strcasecmp(word, "ON") == 0) {
        if (*state)
            shell_error(sh, "%s is already enabled. Use %s OFF to disable.", desc, cmd);
        else
            printf("Now %s is enabled\n", desc);
        *state = true;
    } else if (strcasecmp(word, "OFF") == 0) {
        if (!*state)
            shell_error(sh, "%s is not enabled.", desc);
        else
            printf("Disabled %s.\n", desc);
        *state = false;
    } else {
        return 1;
    }
    return 0;
}

static int cmd_paging(shell *sh, const char *args)
{
    char w[64];
    const char *p = args;
    bool has = next_word(&p, w, sizeof(w));
    if (switch_cmd(sh, "PAGING", "Query paging", &sh->paging, has ? w : NULL) == 1) {
        char *end;
        long n = strtol(w, &end, 10);
        if (*end || n <= 0 || n > INT32_MAX) {
            shell_error(sh, "Improper PAGING command.");
            return -1;
        }
        sh->paging = true;
        sh->page_size = (int32_t)n;
    }
    if (sh->paging)
        printf("Page size: %d\n", (int)sh->page_size);
    else
        sh->page_size = SHELL_DEFAULT_PAGE;
    return 0;
}

static int cmd_expand(shell *sh, const char *args)
{
    char w[64];
    const char *p = args;
    bool has = next_word(&p, w, sizeof(w));
    if (switch_cmd(sh, "EXPAND", "Expanded output", &sh->expand, has ? w : NULL) == 1) {
        shell_error(sh, "Improper EXPAND command.");
        return -1;
    }
    return 0;
}

static int cmd_tracing(shell *sh, const char *args)
{
    char w[64];
    const char *p = args;
    bool has = next_word(&p, w, sizeof(w));
    if ((has && !rest_empty(p)) || switch_cmd(sh, "TRACING", "Tracing", &sh->tracing, has ? w : NULL) == 1) {
        shell_error(sh, "Improper TRACING command.");
        return -1;
    }
    return 0;
}

/* CAPTURE 'file' | OFF | (status), with cqlsh's do_capture texts. Query
 * results are appended to the file, uncoloured; messages and errors stay on
 * the terminal. */
static int cmd_capture(shell *sh, const char *args)
{
    char word[4096], path[4096];
    const char *p = args + strspn(args, " \t\n");
    bool quoted = *p == '\'';
    if (!next_word(&p, word, sizeof(word))) {
        if (sh->capture)
            printf("Currently capturing query output to '%s'.\n", sh->capture_name);
        else
            printf("Currently not capturing query output.\n");
        return 0;
    }
    /* cqlsh's grammar: a quoted file name, or the word OFF. */
    if (!rest_empty(p) || (!quoted && strcasecmp(word, "OFF") != 0)) {
        shell_error(sh, "Improper CAPTURE command.");
        return -1;
    }
    if (!quoted) {
        if (!sh->capture) {
            shell_error(sh, "Not currently capturing output.");
            return -1;
        }
        fclose(sh->capture);
        sh->capture = NULL;
        sh->out = stdout;
        sh->color = sh->capture_color;
        return 0;
    }
    if (sh->capture) {
        shell_error(sh, "Already capturing output to %s. Use CAPTURE OFF to disable.", sh->capture_name);
        return -1;
    }
    shell_expand_path(word, path, sizeof(path));
    FILE *f = fopen(path, "a");
    if (!f) {
        /* Python's IOError text, as cqlsh prints it */
        int e = errno;
        shell_error(sh, "Could not open '%s' for append: [Errno %d] %s: '%s'", path, e, strerror(e), path);
        return -1;
    }
    fflush(stdout);
    sh->capture = f;
    sh->out = f;
    snprintf(sh->capture_name, sizeof(sh->capture_name), "%s", path);
    sh->capture_color = sh->color;
    sh->color = false;
    printf("Now capturing query output to '%s'.\n", path);
    return 0;
}

static int cmd_show(shell *sh, const char *args)
{
    char w[64];
    const char *p = args;
    if (!next_word(&p, w, sizeof(w))) w[0] = '\0';
    if (strcasecmp(w, "VERSION") == 0) {
        printf("[cqlsh %s | Cassandra %s | CQL spec 3.4.5 | Native protocol v4]\n", SHELL_VERSION,
               sh->server_version);
    } else if (strcasecmp(w, "HOST") == 0) {
        printf("Connected to %s at %s:%u\n", sh->cluster_name, sh->host, (unsigned)sh->port);
    } else {
        shell_error(sh, "Improper SHOW command.");
        return -1;
    }
    return 0;
}

static int cmd_help(shell *sh, const char *args)
{
    char w[64];
    const char *p = args;
    if (next_word(&p, w, sizeof(w))) {
        for (size_t i = 0; i < SIB_ARRAY_LEN(help_topics); i++) {
            if (strcasecmp(w, help_topics[i].cmd) == 0) {
                printf("\n%s\n", help_topics[i].text);
                return 0;
            }
        }
        for (size_t i = 0; i < SIB_ARRAY_LEN(cql_topics); i++) {
            if (strcasecmp(w, cql_topics[i]) == 0) {
                printf("\nSee the CQL reference: https://cassandra.apache.org/doc/latest/cassandra/cql/\n\n");
                return 0;
            }
        }
        shell_error(sh, "*** No help on %s", w);
        return -1;
    }
    const char *cmds[SIB_ARRAY_LEN(help_topics)];
    for (size_t i = 0; i < SIB_ARRAY_LEN(help_topics); i++) cmds[i] = help_topics[i].cmd;
    printf("\nDocumented shell commands:\n===========================\n");
    shell_columnize(stdout, cmds, SIB_ARRAY_LEN(cmds));
    printf("\nCQL help topics:\n================\n");
    shell_columnize(stdout, cql_topics, SIB_ARRAY_LEN(cql_topics));
    printf("\n");
    return 0;
}

static int cmd_source(shell *sh, const char *args)
{
    char word[4096], path[4096];
    const char *p = args;
    if (!next_word(&p, word, sizeof(word))) {
        shell_error(sh, "Improper SOURCE command.");
        return -1;
    }
    shell_expand_path(word, path, sizeof(path));
    if (sh->source_depth >= SOURCE_MAX_DEPTH) {
        shell_error(sh, "SOURCE nested more than %d deep", SOURCE_MAX_DEPTH);
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        shell_error(sh, "Could not open '%s': %s", path, strerror(errno));
        return -1;
    }
    /* Statements of a sourced file never prompt for ---MORE---. */
    bool saved_tty = sh->tty, saved_prefix = sh->prefix_errors;
    sh->tty = false;
    sh->prefix_errors = true;
    sh->source_depth++;
    int rc = shell_run_stream(sh, f, path);
    sh->source_depth--;
    sh->tty = saved_tty;
    sh->prefix_errors = saved_prefix;
    fclose(f);
    return rc;
}

/* Case-insensitive match of the statement's first word. */
static bool first_word_is(const char *stmt, const char *word, const char **rest)
{
    size_t n = strlen(word);
    if (strncasecmp(stmt, word, n) != 0) return false;
    char c = stmt[n];
    if (c && !isspace((unsigned char)c) && c != ';') return false;
    *rest = stmt + n;
    return true;
}

int shell_exec(shell *sh, const char *stmt)
{
    const char *rest;
    if (first_word_is(stmt, "EXIT", &rest) || first_word_is(stmt, "QUIT", &rest)) {
        sh->quit = true;
        return 0;
    }
    if (first_word_is(stmt, "CONSISTENCY", &rest)) return cmd_consistency(sh, rest, false);
    if (first_word_is(stmt, "SERIAL", &rest)) {
        const char *r2;
        if (first_word_is(rest + strspn(rest, " \t\n"), "CONSISTENCY", &r2)) return cmd_consistency(sh, r2, true);
        shell_error(sh, "Improper SERIAL CONSISTENCY command.");
        return -1;
    }
    if (first_word_is(stmt, "PAGING", &rest)) return cmd_paging(sh, rest);
    if (first_word_is(stmt, "EXPAND", &rest)) return cmd_expand(sh, rest);
    if (first_word_is(stmt, "TRACING", &rest)) return cmd_tracing(sh, rest);
    if (first_word_is(stmt, "CAPTURE", &rest)) return cmd_capture(sh, rest);
    if (first_word_is(stmt, "SHOW", &rest)) return cmd_show(sh, rest);
    if (first_word_is(stmt, "HELP", &rest) || first_word_is(stmt, "?", &rest)) return cmd_help(sh, rest);
    if (first_word_is(stmt, "SOURCE", &rest)) return cmd_source(sh, rest);
    if (first_word_is(stmt, "COPY", &rest)) return shell_copy(sh, stmt);
    if (first_word_is(stmt, "DESCRIBE", &rest) || first_word_is(stmt, "DESC", &rest))
        return exec_describe(sh, rest + strspn(rest, " \t\n"));
    if (first_word_is(stmt, "CLEAR", &rest) || first_word_is(stmt, "CLS", &rest)) {
        if (sh->tty) fputs("\033[H\033[2J", stdout);
        return 0;
    }
    return exec_cql(sh, stmt);
}
