/* main.c: the sibyld program. `sibyld [--config PATH]`: defaults without a
 * file (127.0.0.1:9042, data under ./data). Logs go to stderr; a bad config
 * exits 1 with a message. SIGINT/SIGTERM stop gracefully: the node tells
 * its live peers it is going (node_stop), then the loop stops for a clean
 * close. A second signal stops the loop at once. */
#include <ev.h>
#include <signal.h>
#include <stdlib.h>

#include "node.h"

typedef struct stopper {
    struct ev_loop *loop;
    node *n;
    bool stopping;
} stopper;

static void on_stopped(void *ctx) { ev_break(((stopper *)ctx)->loop, EVBREAK_ALL); }

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    stopper *s = w->data;
    if (s->stopping) { ev_break(loop, EVBREAK_ALL); return; }
    s->stopping = true;
    node_stop(s->n, on_stopped, s);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sibyld [--config PATH] [--log-level debug|info|warn|error]\n");
}

int main(int argc, char **argv)
{
    const char *cfg_path = NULL, *level = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--config") || !strcmp(argv[i], "-c")) && i + 1 < argc) cfg_path = argv[++i];
        else if (!strcmp(argv[i], "--log-level") && i + 1 < argc) level = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else { usage(stderr); return 2; }
    }
    sib_log *log = sib_log_create(stderr, SIB_INFO);
    node_config cfg;
    node_config_defaults(&cfg);
    sib_err err = {0};
    if (cfg_path && node_config_load(&cfg, cfg_path, log, &err)) {
        fprintf(stderr, "sibyld: %s\n", err.msg);
        sib_log_destroy(log);
        return 1;
    }
    if (level) {
        if (!strcmp(level, "debug")) cfg.log_level = SIB_DEBUG;
        else if (!strcmp(level, "warn")) cfg.log_level = SIB_WARN;
        else if (!strcmp(level, "error")) cfg.log_level = SIB_ERROR;
        else cfg.log_level = SIB_INFO;
    }
    sib_log_set_level(log, (sib_level)cfg.log_level);
    signal(SIGPIPE, SIG_IGN);

    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    node *n;
    if (node_open(&n, &cfg, loop, log, &err)) {
        fprintf(stderr, "sibyld: %s\n", err.msg);
        sib_log_destroy(log);
        return 1;
    }
    stopper st = {.loop = loop, .n = n};
    ev_signal sint, sterm;
    ev_signal_init(&sint, on_signal, SIGINT);
    ev_signal_init(&sterm, on_signal, SIGTERM);
    sint.data = sterm.data = &st;
    ev_signal_start(loop, &sint);
    ev_signal_start(loop, &sterm);
    ev_unref(loop); /* signal watchers alone do not keep the loop alive */
    ev_unref(loop);
    ev_run(loop, 0);
    sib_log(log, SIB_INFO, "sibyld: shutting down");
    node_close(n);
    sib_log_destroy(log);
    return 0;
}
