/* shell.h: private header of sibylsh, the cqlsh-like interactive shell.
 *
 * The shell is one `shell` context passed to every function (STYLE.md 5):
 * the connection (client/client.h does all the protocol work), the session
 * settings the shell commands change (consistency, paging, expand), where
 * input comes from (a terminal through libedit, a file, or -e) and how
 * output looks (colour only on a terminal).
 *
 * Modules:
 *   main.c    argument parsing, connecting, the read-eval loop, statement
 *             splitting (`;`, and the shell commands that end at newline)
 *   edit.c    libedit: prompt, persistent history, tab completion
 *   output.c  result sets as cqlsh prints them, errors, DESCRIBE output
 *   command.c dispatch of one statement: shell commands or a server query
 *   copy.c    COPY TO / COPY FROM (CSV, files or STDIN/STDOUT)
 *   trace.c   the trace of a statement run with TRACING ON
 *
 * Output goes to stdout, errors to stderr, as cqlsh does; query results go
 * to sh->out, which CAPTURE points at a file.
 */
#ifndef SIB_SHELL_H
#define SIB_SHELL_H

#include "client.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SHELL_VERSION "6.0.0"     /* reported like cqlsh's own version */
#define SHELL_DEFAULT_PAGE 100    /* cqlsh's default page size */

typedef struct shell_edit shell_edit; /* libedit state; edit.c */

typedef struct shell {
    cli_client *cl;         /* never NULL once connected */
    bool broken;            /* cl lost its connection: reconnect before the next request */
    cli_client_opts copts;
    char host[256];
    uint16_t port;

    int consistency;        /* cql_consistency used for every request */
    int serial_consistency; /* SERIAL or LOCAL_SERIAL */
    bool paging;
    int32_t page_size;
    bool expand;
    bool tracing;    /* TRACING ON: queries ask for a server trace, printed after the result */

    /* Where query results go (rows, DESCRIBE, traces): stdout, or the
     * CAPTURE file. Shell messages and errors never go there (cqlsh's
     * query_out). */
    FILE *out;
    FILE *capture;          /* the CAPTURE file, NULL when not capturing */
    char capture_name[4096];
    bool capture_color;     /* colour setting to restore at CAPTURE OFF */

    bool color;      /* ANSI colours: stdout is a terminal and not --no-color */
    bool tty;        /* interactive: prompts, ---MORE---, blank after each page */
    bool prefix_errors; /* "<src>:<line>:" before errors: input is not a terminal */
    const char *src; /* input name for error prefixes: "<stdin>" or the -f file */
    int lineno;      /* line of the statement being run (error prefixes) */
    int nerrors;     /* errors printed so far: -e/-f exit 2 when > 0 */
    bool quit;       /* EXIT / QUIT seen */
    int source_depth; /* nesting of SOURCE, bounded against loops */

    char server_version[64];
    char cluster_name[128];
    shell_edit *ed; /* NULL unless interactive */
} shell;

/* ---- main.c ---------------------------------------------------------------- */

/* Runs every complete statement of a stream (a -f file, SOURCE, or a non-tty
 * stdin) named `name` for error prefixes. Returns 0, or -1 when at least one
 * statement failed. */
int shell_run_stream(shell *sh, FILE *in, const char *name);

/* A line from the terminal with a prompt: libedit when it runs, plain stdin
 * otherwise (*line / *cap are the getline buffer of the plain case, which
 * the caller frees). Newline stripped; NULL at end of input. The result is
 * valid until the next call. */
const char *shell_read_line(shell *sh, const char *prompt, char **line, size_t *cap);

/* ---- statement splitting (main.c) -------------------------------------- */

/* Length of the first complete statement of s[0..n) including its `;`, or
 * including its terminating newline for the commands that end there (HELP,
 * CONSISTENCY, DESCRIBE, ...). 0 when more input is needed. `eof` treats the
 * end of s as the end of input. *start is set to the offset of the
 * statement's first token (after blanks and comments): *start == the
 * returned length means the piece held only blanks and comments. */
size_t shell_stmt_end(const char *s, size_t n, bool eof, size_t *start);

/* ---- command.c ------------------------------------------------------------- */

/* Runs one statement (text without its trailing `;`). Returns 0, or -1 after
 * printing an error. */
int shell_exec(shell *sh, const char *stmt);
/* Sends a query and returns its first page (paged when page_size > 0). 0 with
 * out filled (possibly a server error), or -1 after printing a client error. */
int shell_query(shell *sh, const char *cql, int32_t page_size, const cql_value *paging_state, cli_result *out);
/* A file name as the user wrote it with a leading ~ expanded ($HOME). */
void shell_expand_path(const char *path, char *out, size_t cap);
/* The prompt for the current keyspace: "cqlsh> " or "cqlsh:ks> ". */
void shell_prompt(const shell *sh, char *buf, size_t cap);

/* ---- output.c -------------------------------------------------------------- */

/* Prints an error cqlsh-style to stderr (with "<src>:<line>:" in
 * non-interactive mode) and counts it. */
void shell_error(shell *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints a server ERROR result as cqlsh does ("InvalidRequest: Error from
 * server: code=2200 [Invalid query] message=\"...\""). */
void shell_server_error(shell *sh, const cli_result *r);
/* Prints a ROWS result and every following page. Returns 0 or -1. */
int shell_print_rows(shell *sh, const char *cql, cli_result *first);
/* DESCRIBE output: names in columns for listings, CREATE statements for
 * elements. `what` is the word after DESCRIBE, upper case. */
int shell_print_describe(shell *sh, const char *what, const char *cql, cli_result *first);
/* Preformatted cells (NUL-terminated UTF-8, nrows * ncols in row order) as
 * cqlsh's print_formatted_result prints them to sh->out: a header, then the
 * rows right-aligned. numeric[c] gives column c the number colour. */
int shell_print_text_table(shell *sh, const char *const *names, uint32_t ncols, const char *const *cells,
                           uint32_t nrows, const bool *numeric);
/* The index of result column `name` of a ROWS result, -1 when absent. */
int shell_col_index(const cli_result *r, const char *name);
/* Python cmd.Cmd.columnize: names in columns of total width <= 80. */
void shell_columnize(FILE *out, const char *const *names, size_t n);
/* Display width of a UTF-8 string (terminal columns). */
size_t shell_display_width(const char *s, size_t len);

/* ---- edit.c ---------------------------------------------------------------- */

/* Creates the line editor with history in $HOME/.sibylsh_history. NULL when
 * libedit cannot run (then the caller reads plain lines). */
shell_edit *shell_edit_create(shell *sh);
void shell_edit_destroy(shell_edit *ed);
/* Reads one line with the given prompt. Returns a pointer valid until the
 * next call (newline stripped), or NULL at end of input. */
const char *shell_edit_line(shell_edit *ed, const char *prompt);
/* Adds an entered line to the history and saves the history file. */
void shell_edit_remember(shell_edit *ed, const char *line);
/* The statement text typed on previous lines (for completion context). */
void shell_edit_set_pending(shell_edit *ed, const char *pending);

/* ---- trace.c --------------------------------------------------------------- */

/* Fetches trace session `id` from system_traces and prints it like cqlsh
 * ("Tracing session: <uuid>" and the activity table). Returns 0 or -1. */
int shell_print_trace(shell *sh, const uint8_t id[16]);

/* ---- copy.c ---------------------------------------------------------------- */

/* COPY t [(cols)] TO|FROM 'file' | STDOUT | STDIN [WITH opt = v [AND ...]].
 * stmt is the whole statement text. Returns 0 or -1. */
int shell_copy(shell *sh, const char *stmt);

#endif
