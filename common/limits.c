/* limits.c: the process's descriptor limit, the descriptors kept away from
 * clients, and a rate limiter for log lines that a flood could repeat.
 *
 * Why a reserve: with the soft limit at 1,024 and no reserve, 1,024 idle
 * client sockets took every descriptor; the commitlog could then not open a
 * segment, flushes failed, and writes on healthy sessions failed with EMFILE.
 * Clients get what the limit leaves after the reserve, never more.
 */
#include "common.h"

#include <errno.h>
#include <sys/resource.h>

int sib_fd_limit_raise(uint64_t *soft_out, uint64_t *hard_out, sib_err *err)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return sib_err_errno(err, "getrlimit(RLIMIT_NOFILE)");
    int rc = 0;
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
        else rc = sib_err_errno(err, "setrlimit(RLIMIT_NOFILE, %llu)", (unsigned long long)rl.rlim_max);
    }
    /* RLIM_INFINITY is not a count; no kernel lets fds go past INT_MAX. */
    *soft_out = rl.rlim_cur == RLIM_INFINITY ? (uint64_t)INT32_MAX : (uint64_t)rl.rlim_cur;
    *hard_out = rl.rlim_max == RLIM_INFINITY ? (uint64_t)INT32_MAX : (uint64_t)rl.rlim_max;
    return rc;
}

uint64_t sib_fd_reserve(const sib_fd_budget *b)
{
    return b->base + 2 * b->sstables + b->internode;
}

uint64_t sib_fd_client_max(const sib_fd_budget *b)
{
    uint64_t r = sib_fd_reserve(b);
    return b->limit > r ? b->limit - r : 0;
}

void sib_ratelimit_init(sib_ratelimit *r, int64_t interval_ns)
{
    r->interval_ns = interval_ns;
    r->last_ns = INT64_MIN;
    r->suppressed = 0;
}

bool sib_ratelimit_allow(sib_ratelimit *r, int64_t now_ns, uint64_t *suppressed)
{
    if (r->last_ns != INT64_MIN && now_ns - r->last_ns < r->interval_ns) {
        r->suppressed++;
        return false;
    }
    r->last_ns = now_ns;
    *suppressed = r->suppressed;
    r->suppressed = 0;
    return true;
}
