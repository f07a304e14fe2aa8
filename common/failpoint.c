/* failpoint.c: named fault-injection points for crash tests (see common.h).
 *
 * Compiled only into test builds (SIB_FAILPOINTS). The armed set is parsed
 * once from SIBYL_FAILPOINTS into a small fixed table. It is the one piece of
 * process-wide mutable state in the code base, on purpose: the points sit
 * deep inside worker-thread code (a compaction's output loop) that has no
 * context to carry a test hook, the environment it mirrors is itself
 * process-wide, and release builds contain none of it. After the first
 * parse the table is only read, so workers need no lock.
 *
 * Spec: "name=action[;name=action...]", action one of
 *   | action     | effect at the point                                   |
 *   |------------|-------------------------------------------------------|
 *   | kill       | raise(SIGKILL): the process stops as under kill -9    |
 *   | abort      | abort()                                               |
 *   | sleep:<ms> | the calling thread sleeps, then goes on               |
 *   | error      | the point returns SIB_EIO ("failpoint <name>")        |
 */
#define _GNU_SOURCE
#include "common.h"

#ifdef SIB_FAILPOINTS

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { FP_KILL, FP_ABORT, FP_SLEEP, FP_ERROR };
enum { FP_MAX = 16, FP_NAME = 80 };

typedef struct fp_entry {
    char name[FP_NAME];
    int action;
    long ms;
} fp_entry;

typedef struct fp_set {
    fp_entry e[FP_MAX];
    size_t n;
} fp_set;

static fp_set fp_armed;
static pthread_once_t fp_once = PTHREAD_ONCE_INIT;

static int parse_one(const char *s, size_t len, fp_entry *e, sib_err *err)
{
    const char *eq = memchr(s, '=', len);
    if (!eq || eq == s || (size_t)(eq - s) >= FP_NAME)
        return sib_err_set(err, SIB_EINVAL, "failpoint: bad entry '%.*s'", (int)len, s);
    memcpy(e->name, s, (size_t)(eq - s));
    e->name[eq - s] = 0;
    const char *a = eq + 1;
    size_t alen = len - (size_t)(a - s);
    e->ms = 0;
    if (alen == 4 && !memcmp(a, "kill", 4)) e->action = FP_KILL;
    else if (alen == 5 && !memcmp(a, "abort", 5)) e->action = FP_ABORT;
    else if (alen == 5 && !memcmp(a, "error", 5)) e->action = FP_ERROR;
    else if (alen > 6 && !memcmp(a, "sleep:", 6)) {
        char num[24];
        size_t nl = alen - 6;
        if (nl >= sizeof num) return sib_err_set(err, SIB_EINVAL, "failpoint: bad sleep in '%.*s'", (int)len, s);
        memcpy(num, a + 6, nl);
        num[nl] = 0;
        char *end;
        e->ms = strtol(num, &end, 10);
        if (*end || e->ms < 0) return sib_err_set(err, SIB_EINVAL, "failpoint: bad sleep in '%.*s'", (int)len, s);
        e->action = FP_SLEEP;
    } else {
        return sib_err_set(err, SIB_EINVAL, "failpoint: unknown action in '%.*s'", (int)len, s);
    }
    return 0;
}

static int parse_spec(const char *spec, fp_set *out, sib_err *err)
{
    fp_set x = {.n = 0};
    for (const char *p = spec ? spec : ""; *p;) {
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        if (len) {
            if (x.n == FP_MAX) return sib_err_set(err, SIB_EINVAL, "failpoint: more than %d points", FP_MAX);
            int rc = parse_one(p, len, &x.e[x.n], err);
            if (rc) return rc;
            x.n++;
        }
        p += len + (semi ? 1 : 0);
    }
    *out = x;
    return 0;
}

static void load_env(void)
{
    sib_err err;
    const char *spec = getenv("SIBYL_FAILPOINTS");
    if (spec && parse_spec(spec, &fp_armed, &err)) fprintf(stderr, "SIBYL_FAILPOINTS ignored: %s\n", err.msg);
    else if (spec && *spec) fprintf(stderr, "failpoints armed: %s\n", spec);
}

/* Read at process start, so a test sees "failpoints armed" in the log
 * before any point is reached. */
__attribute__((constructor)) static void fp_init(void) { pthread_once(&fp_once, load_env); }

int sib_failpoints_set(const char *spec, sib_err *err)
{
    pthread_once(&fp_once, load_env);
    fp_set x;
    int rc = parse_spec(spec, &x, err);
    if (!rc) fp_armed = x;
    return rc;
}

int sib_failpoint(const char *name, long n, sib_err *err)
{
    pthread_once(&fp_once, load_env);
    if (!fp_armed.n) return 0;
    char full[FP_NAME + 24];
    if (n >= 0) snprintf(full, sizeof full, "%s_%ld", name, n);
    else snprintf(full, sizeof full, "%s", name);
    for (size_t i = 0; i < fp_armed.n; i++) {
        const fp_entry *e = &fp_armed.e[i];
        if (strcmp(e->name, full)) continue;
        switch (e->action) {
        case FP_KILL:
            fprintf(stderr, "failpoint %s: kill\n", full);
            raise(SIGKILL);
            break;
        case FP_ABORT:
            fprintf(stderr, "failpoint %s: abort\n", full);
            abort();
        case FP_SLEEP: {
            struct timespec ts = {e->ms / 1000, (e->ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts)) {}
            return 0;
        }
        default:
            return sib_err_set(err, SIB_EIO, "failpoint %s", full);
        }
    }
    return 0;
}

#endif
