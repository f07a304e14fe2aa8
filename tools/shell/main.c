/* main.c: sibylsh entry point, the read-eval loops and statement splitting.
 *
 * Invocation, as cqlsh:
 *   sibylsh [host [port]] [-u user -p pass] [-k keyspace] [-e 'stmt' | -f file]
 *           [--no-color] [-C] [--request-timeout N] [--connect-timeout N]
 *
 * Three ways to get input, one splitter:
 *   interactive  stdin is a terminal and neither -e nor -f: libedit lines,
 *                prompt "cqlsh:ks> ", continuation "   ... ".
 *   stream       -f file, SOURCE, or a piped stdin: lines from a FILE*.
 *   -e           one string, run to its end.
 * Lines accumulate in a buffer; shell_stmt_end() cuts complete statements
 * off its front. A statement ends at `;` outside quotes and comments, except
 * the shell commands cqlsh ends at the newline (cqlsh's
 * commands_end_with_newline: HELP, CONSISTENCY, DESCRIBE, EXIT, ...).
 *
 * Exit status, as cqlsh: 2 when a statement of -e / -f printed an error
 * (cqlsh's statement_error; piped stdin is not batch mode and exits 0),
 * 2 for usage errors, 1 when the connection cannot be made.
 */
#include "shell.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* cqlsh's commands_end_with_newline: these end at the end of their line. */
static const char *const newline_cmds[] = {
    "help", "?", "consistency", "serial", "describe", "desc", "show", "source", "capture", "login",
    "debug", "tracing", "expand", "paging", "exit", "quit", "clear", "cls", "history",
};

/* Ctrl-C while typing discards the statement being typed, as in cqlsh.
 * A signal handler gets no context argument, so this flag is the one static
 * the style allows ("signal flags"). */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* No SA_RESTART: the terminal read returns so the loop sees the flag. The
 * client retries its own reads and polls on EINTR, so a running request
 * completes and only its ---MORE--- pager stops. */
static void catch_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

/* ---- statement splitting ------------------------------------------------------ */

/* Skips blanks and comments from i. Returns the new offset, or n + 1 when an
 * unterminated block comment runs to the end (more input needed). */
static size_t skip_blank(const char *s, size_t n, size_t i)
{
    while (i < n) {
        if (isspace((unsigned char)s[i])) {
            i++;
        } else if ((s[i] == '-' && i + 1 < n && s[i + 1] == '-') || (s[i] == '/' && i + 1 < n && s[i + 1] == '/')) {
            while (i < n && s[i] != '\n') i++;
        } else if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
            const char *e = NULL;
            for (size_t j = i + 2; j + 1 < n; j++)
                if (s[j] == '*' && s[j + 1] == '/') { e = s + j; break; }
            if (!e) return n + 1;
            i = (size_t)(e - s) + 2;
        } else {
            break;
        }
    }
    return i;
}

static bool is_newline_cmd(const char *s, size_t n)
{
    size_t w = 0;
    if (n > 0 && s[0] == '?') return true;
    while (w < n && (isalnum((unsigned char)s[w]) || s[w] == '_')) w++;
    for (size_t k = 0; k < SIB_ARRAY_LEN(newline_cmds); k++)
        if (strlen(newline_cmds[k]) == w && strncasecmp(s, newline_cmds[k], w) == 0) return true;
    return false;
}

/* True when s[from..semi) ends with the words APPLY BATCH: the `;` that
 * ends a BEGIN BATCH statement (the ones inside it end its members). */
static bool ends_batch(const char *s, size_t from, size_t semi)
{
    size_t e = semi;
    while (e > from && isspace((unsigned char)s[e - 1])) e--;
    if (e - from < 5 || strncasecmp(s + e - 5, "BATCH", 5) != 0) return false;
    e -= 5;
    size_t b = e;
    while (b > from && isspace((unsigned char)s[b - 1])) b--;
    if (b == e || b - from < 5) return false;
    return strncasecmp(s + b - 5, "APPLY", 5) == 0 && (b - 5 == from || !isalnum((unsigned char)s[b - 6]));
}

/* Offset just past the terminator (`;`, or newline when nl_ends) of the
 * statement starting at i, or 0 when it is not terminated yet. Quotes:
 * '..' strings ('' is an escaped quote: two toggles), "..", $$..$$. */
static size_t scan_terminator(const char *s, size_t n, size_t i, bool nl_ends)
{
    size_t from = i;
    bool batch = n - i >= 6 && strncasecmp(s + i, "BEGIN", 5) == 0 && isspace((unsigned char)s[i + 5]);
    while (i < n) {
        char c = s[i];
        if ((c == ';' && (!batch || ends_batch(s, from, i))) || (nl_ends && c == '\n')) return i + 1;
        if (c == '\'' || c == '"') {
            const char *q = memchr(s + i + 1, c, n - i - 1);
            if (!q) return 0;
            i = (size_t)(q - s) + 1;
        } else if (c == '$' && i + 1 < n && s[i + 1] == '$') {
            size_t j = i + 2;
            while (j + 1 < n && !(s[j] == '$' && s[j + 1] == '$')) j++;
            if (j + 1 >= n) return 0;
            i = j + 2;
        } else if ((c == '-' || c == '/') && i + 1 < n && s[i + 1] == c) {
            while (i < n && s[i] != '\n') i++;
        } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
            size_t j = skip_blank(s, n, i);
            if (j > n) return 0;
            i = j;
        } else {
            i++;
        }
    }
    return 0;
}

size_t shell_stmt_end(const char *s, size_t n, bool eof, size_t *start)
{
    size_t i = skip_blank(s, n, 0);
    if (i > n) { /* open block comment */
        *start = n;
        return eof ? n : 0;
    }
    *start = i;
    if (i == n) return n; /* blanks and comments only: drop them */
    size_t e = scan_terminator(s, n, i, is_newline_cmd(s + i, n - i));
    if (e) return e;
    return eof ? n : 0;
}

/* Copies s[start..end) without the trailing `;` and blanks into a new string
 * (the caller frees it). */
static char *stmt_text(const char *s, size_t start, size_t end)
{
    while (end > start && (isspace((unsigned char)s[end - 1]) || s[end - 1] == ';')) end--;
    char *t = malloc(end - start + 1);
    if (!t) return NULL;
    memcpy(t, s + start, end - start);
    t[end - start] = '\0';
    return t;
}

static size_t count_lines(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '\n';
    return k;
}

/* Runs every complete statement at the front of buf and removes it. first_line
 * is the input line buf starts at; it moves with what is consumed. Returns
 * the number of failed statements. */
static int drain(shell *sh, sib_buf *buf, bool eof, int *first_line)
{
    int failed = 0;
    size_t start;
    size_t end;
    while (!sh->quit && buf->len > 0 && (end = shell_stmt_end((const char *)buf->p, buf->len, eof, &start)) > 0) {
        char *text = stmt_text((const char *)buf->p, start, end);
        sh->lineno = *first_line + (int)count_lines((const char *)buf->p, start);
        if (!text) {
            shell_error(sh, "out of memory");
            failed++;
        } else if (text[0] && shell_exec(sh, text) < 0) {
            failed++;
        }
        if (sh->capture) fflush(sh->capture); /* the file is complete after each statement */
        free(text);
        *first_line += (int)count_lines((const char *)buf->p, end);
        memmove(buf->p, buf->p + end, buf->len - end);
        buf->len -= end;
    }
    return failed;
}

int shell_run_stream(shell *sh, FILE *in, const char *name)
{
    const char *saved_src = sh->src;
    int saved_line = sh->lineno;
    sh->src = name;
    sib_buf buf;
    sib_buf_init(&buf);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int first_line = 1, failed = 0;
    while (!sh->quit && (len = getline(&line, &cap, in)) >= 0) {
        sib_buf_append(&buf, line, (size_t)len);
        failed += drain(sh, &buf, false, &first_line);
    }
    if (!sh->quit) failed += drain(sh, &buf, true, &first_line);
    free(line);
    sib_buf_free(&buf);
    sh->src = saved_src;
    sh->lineno = saved_line;
    return failed ? -1 : 0;
}

static int run_string(shell *sh, const char *text)
{
    sib_buf buf;
    sib_buf_init(&buf);
    sib_buf_append(&buf, text, strlen(text));
    sib_buf_u8(&buf, '\n');
    int first_line = 1;
    int failed = drain(sh, &buf, true, &first_line);
    sib_buf_free(&buf);
    return failed ? -1 : 0;
}

const char *shell_read_line(shell *sh, const char *prompt, char **line, size_t *cap)
{
    if (sh->ed) return shell_edit_line(sh->ed, prompt);
    fputs(prompt, stdout);
    fflush(stdout);
    ssize_t len = getline(line, cap, stdin);
    if (len < 0) return NULL;
    if (len > 0 && (*line)[len - 1] == '\n') (*line)[len - 1] = '\0';
    return *line;
}

static void run_interactive(shell *sh)
{
    sib_buf buf;
    sib_buf_init(&buf);
    char prompt[160];
    char *plain = NULL;
    size_t plain_cap = 0;
    int first_line = 1;
    while (!sh->quit) {
        if (buf.len == 0)
            shell_prompt(sh, prompt, sizeof(prompt));
        else
            snprintf(prompt, sizeof(prompt), "   ... ");
        if (sh->ed) {
            sib_buf_u8(&buf, '\0'); /* the pending text as a C string for completion */
            shell_edit_set_pending(sh->ed, (const char *)buf.p);
            buf.len--;
        }
        interrupted = 0;
        const char *line = shell_read_line(sh, prompt, &plain, &plain_cap);
        if (!line && interrupted) {
            clearerr(stdin);
            buf.len = 0;
            putchar('\n');
            continue;
        }
        if (!line) {
            putchar('\n');
            break;
        }
        if (sh->ed && line[strspn(line, " \t")]) shell_edit_remember(sh->ed, line);
        sib_buf_append(&buf, line, strlen(line));
        sib_buf_u8(&buf, '\n');
        drain(sh, &buf, false, &first_line);
        fflush(stdout);
    }
    free(plain);
    sib_buf_free(&buf);
}

/* ---- connecting ------------------------------------------------------------------ */

/* Fills cluster name and release version from system.local for the banner
 * and SHOW VERSION; "unknown" when the server has no such table. */
static void read_server_info(shell *sh)
{
    snprintf(sh->server_version, sizeof(sh->server_version), "unknown");
    snprintf(sh->cluster_name, sizeof(sh->cluster_name), "unknown");
    cli_result r;
    sib_err err;
    if (cli_client_query(sh->cl, "SELECT cluster_name, release_version FROM system.local", CQL_ONE, 0, NULL, &r,
                         &err) == 0 &&
        r.kind == CLI_RESULT_ROWS && r.u.rows.nrows == 1 && r.u.rows.meta.ncols == 2) {
        cql_value c = cli_result_cell(&r, 0, 0), v = cli_result_cell(&r, 0, 1);
        if (c.len >= 0) snprintf(sh->cluster_name, sizeof(sh->cluster_name), "%.*s", (int)c.len, (const char *)c.p);
        if (v.len >= 0)
            snprintf(sh->server_version, sizeof(sh->server_version), "%.*s", (int)v.len, (const char *)v.p);
    }
    cli_result_free(&r);
}

static int connect_shell(shell *sh)
{
    sib_err err;
    sib_err_clear(&err);
    if (cli_client_connect(&sh->cl, &sh->copts, &err) < 0) {
        /* The cqlsh shape: the driver's NoHostAvailable with one entry, the
         * message quoted as Python's repr() quotes a str. */
        char q = strchr(err.msg, '\'') && !strchr(err.msg, '"') ? '"' : '\'';
        fprintf(stderr, "Connection error: ('Unable to connect to any servers', {'%s:%u': %c%s%c})\n", sh->host,
                (unsigned)sh->port, q, err.msg, q);
        return -1;
    }
    read_server_info(sh);
    return 0;
}

/* ---- arguments --------------------------------------------------------------- */

typedef struct shell_args {
    const char *execute;
    const char *file;
    const char *keyspace;
    const char *user;
    const char *pass;
    int color; /* -1 auto, 0 off, 1 forced */
    double request_timeout, connect_timeout;
} shell_args;

static void usage(FILE *f)
{
    fprintf(f, "Usage: sibylsh [options] [host [port]]\n\n"
               "CQL Shell for Sibyl and Apache Cassandra (cqlsh-compatible).\n\n"
               "Options:\n"
               "  -C, --color             Always use color output\n"
               "  --no-color              Never use color output\n"
               "  -u, --username=USER     Authenticate as user\n"
               "  -p, --password=PASS     Authenticate using password\n"
               "  -k, --keyspace=KS       Authenticate to the given keyspace\n"
               "  -f, --file=FILE         Execute commands from FILE, then exit\n"
               "  -e, --execute=STMT      Execute the statement and quit\n"
               "  --connect-timeout=SECS  Connection timeout in seconds (default 5)\n"
               "  --request-timeout=SECS  Request timeout in seconds (default 10)\n"
               "  --version               Show the version and exit\n"
               "  -h, --help              Show this help and exit\n");
}

/* Returns 0, 1 (help/version printed: exit 0), or -1 (usage error). */
static int parse_args(shell *sh, shell_args *a, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"color", no_argument, NULL, 'C'},         {"no-color", no_argument, NULL, 'N'},
        {"username", required_argument, NULL, 'u'}, {"password", required_argument, NULL, 'p'},
        {"keyspace", required_argument, NULL, 'k'}, {"file", required_argument, NULL, 'f'},
        {"execute", required_argument, NULL, 'e'},  {"request-timeout", required_argument, NULL, 'R'},
        {"connect-timeout", required_argument, NULL, 'T'}, {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "Cu:p:k:f:e:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'C': a->color = 1; break;
        case 'N': a->color = 0; break;
        case 'u': a->user = optarg; break;
        case 'p': a->pass = optarg; break;
        case 'k': a->keyspace = optarg; break;
        case 'f': a->file = optarg; break;
        case 'e': a->execute = optarg; break;
        case 'R': a->request_timeout = atof(optarg); break;
        case 'T': a->connect_timeout = atof(optarg); break;
        case 'V': printf("cqlsh %s\n", SHELL_VERSION); return 1;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
    }
    if (a->execute && a->file) {
        fprintf(stderr, "sibylsh: -e and -f cannot be used together\n");
        return -1;
    }
    if (optind < argc) snprintf(sh->host, sizeof(sh->host), "%s", argv[optind++]);
    if (optind < argc) {
        long port = strtol(argv[optind++], NULL, 10);
        if (port <= 0 || port > 65535) {
            fprintf(stderr, "sibylsh: bad port '%s'\n", argv[optind - 1]);
            return -1;
        }
        sh->port = (uint16_t)port;
    }
    if (optind < argc) {
        usage(stderr);
        return -1;
    }
    return 0;
}

static void shell_init(shell *sh)
{
    memset(sh, 0, sizeof(*sh));
    snprintf(sh->host, sizeof(sh->host), "127.0.0.1");
    sh->port = 9042;
    sh->consistency = CQL_ONE;
    sh->serial_consistency = CQL_SERIAL;
    sh->paging = true;
    sh->page_size = SHELL_DEFAULT_PAGE;
    sh->src = "<stdin>";
    sh->lineno = 1;
    sh->out = stdout;
}

/* wcwidth() needs a UTF-8 LC_CTYPE for non-ASCII text; fall back to C.UTF-8
 * when the environment asks for plain "C". */
static void setup_locale(void)
{
    const char *loc = setlocale(LC_CTYPE, "");
    if (!loc || strcmp(loc, "C") == 0 || strcmp(loc, "POSIX") == 0) setlocale(LC_CTYPE, "C.UTF-8");
}

int main(int argc, char **argv)
{
    shell sh;
    shell_args a = {.color = -1, .request_timeout = 10, .connect_timeout = 5};
    shell_init(&sh);
    setup_locale();
    int rc = parse_args(&sh, &a, argc, argv);
    if (rc != 0) return rc > 0 ? 0 : 2;

    bool interactive = !a.execute && !a.file && isatty(STDIN_FILENO);
    sh.tty = interactive;
    sh.prefix_errors = a.file != NULL || !isatty(STDIN_FILENO);
    sh.color = a.color == 1 || (a.color == -1 && interactive && isatty(STDOUT_FILENO));

    /* The client has one timeout for connect and requests; the larger of the
     * two keeps a slow connect from failing while honouring long requests. */
    double t = a.request_timeout > a.connect_timeout ? a.request_timeout : a.connect_timeout;
    sh.copts.host = sh.host;
    sh.copts.port = sh.port;
    sh.copts.timeout_ms = t > 0 ? (int)(t * 1000) : 0;
    /* The client answers AUTHENTICATE with these; a server that does not
     * ask (Sibyl today) never sees them. */
    sh.copts.username = a.user && a.pass ? a.user : NULL;
    sh.copts.password = a.user && a.pass ? a.pass : NULL;
    sh.copts.keyspace = a.keyspace;
    /* As cqlsh: a username without a password asks for it on the terminal. */
    if (a.user && !a.pass && isatty(STDIN_FILENO)) a.pass = getpass("Password: ");
    if ((a.user != NULL) != (a.pass != NULL))
        fprintf(stderr, "Warning: both -u and -p are needed for authentication; credentials ignored.\n");
    if (a.user && a.pass && interactive)
        fprintf(stderr, "Warning: Using a password on the command line interface can be insecure.\n"
                        "Recommendation: use the credentials file to securely provide the password.\n\n");
    if (connect_shell(&sh) < 0) return 1;

    rc = 0;
    if (a.execute) {
        rc = run_string(&sh, a.execute);
    } else if (a.file) {
        char path[4096];
        shell_expand_path(a.file, path, sizeof(path));
        FILE *f = fopen(path, "r");
        if (!f) {
            fprintf(stderr, "Could not open '%s': %s\n", a.file, strerror(errno));
            rc = -1;
        } else {
            rc = shell_run_stream(&sh, f, a.file);
            fclose(f);
        }
    } else if (!interactive) {
        rc = shell_run_stream(&sh, stdin, "<stdin>");
    } else {
        printf("Connected to %s at %s:%u\n", sh.cluster_name, sh.host, (unsigned)sh.port);
        printf("[cqlsh %s | Cassandra %s | CQL spec 3.4.5 | Native protocol v4]\n", SHELL_VERSION,
               sh.server_version);
        printf("Use HELP for help.\n");
        catch_sigint();
        sh.ed = shell_edit_create(&sh);
        run_interactive(&sh);
        shell_edit_destroy(sh.ed);
    }
    fflush(stdout);
    if (sh.capture) fclose(sh.capture);
    cli_client_close(sh.cl);
    bool batch = a.execute || a.file;
    return batch && (rc < 0 || sh.nerrors > 0) ? 2 : 0;
}
