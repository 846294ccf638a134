/* LD_PRELOAD shim for test sanlock daemons: root here lacks CAP_SYS_RESOURCE, and sanlock exits when it cannot
 * raise RLIMIT_MEMLOCK/RTPRIO/CORE to unlimited. Clamp such requests to the hard limit instead. Tests only. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/resource.h>
int setrlimit(__rlimit_resource_t res, const struct rlimit *rl) {
    static int (*real)(__rlimit_resource_t, const struct rlimit *);
    struct rlimit cur, n;
    if (!real) real = dlsym(RTLD_NEXT, "setrlimit");
    if (real(res, rl) == 0) return 0;
    if (errno != EPERM || getrlimit(res, &cur) != 0) return -1;
    n.rlim_max = cur.rlim_max;
    n.rlim_cur = (rl->rlim_cur == RLIM_INFINITY || rl->rlim_cur > cur.rlim_max) ? cur.rlim_max : rl->rlim_cur;
    real(res, &n);
    return 0;
}
