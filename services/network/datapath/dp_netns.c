/* dp_netns.c - network namespaces in-process: a thread that joins one to work there, and
 * a namespace made or deleted as `ip netns add`/`del` does it.
 *
 * Why in-process: an apply on a launch's path made each new stand-in's namespace with an
 * `ip -batch` of `netns add` in the root, and a terminate's deleted it with another; each
 * command is a fork+exec of `ip` (the dynamic loader, page faults, exit: most of its CPU;
 * perf, docs/performance.md "Agent CPU per launch"). The kernel's own work (a namespace's
 * setup and teardown) is the same either way.
 *
 * Only a thread made for the purpose ever changes namespace, and it ends right after: the
 * agent's other threads (its bus, its HTTP) stay in the namespace they started in. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dp_inproc.h"

#define NETNS_RUN_DIR "/run/netns"

typedef struct in_netns {
    const char *netns;
    int (*fn)(void *);
    void *arg;
    int rc;
    char *why;
    size_t why_len;
} in_netns_t;

static void *in_netns_thread(void *p)
{
    in_netns_t *t = p;
    char path[512];
    snprintf(path, sizeof path, NETNS_RUN_DIR "/%s", t->netns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
        snprintf(t->why, t->why_len, "cannot enter namespace %s: %s", t->netns, strerror(errno));
        if (fd >= 0) close(fd);
        t->rc = -1;
        return NULL;
    }
    close(fd);
    t->rc = t->fn(t->arg);
    return NULL;
}

int dp_in_netns(const char *netns, int (*fn)(void *), void *arg, char *why, size_t why_len)
{
    if (!netns) return fn(arg);
    in_netns_t t = {netns, fn, arg, -1, why, why_len};
    pthread_t th;
    int err = pthread_create(&th, NULL, in_netns_thread, &t);
    if (err) {
        snprintf(why, why_len, "thread: %s", strerror(err));
        return -1;
    }
    pthread_join(th, NULL);
    return t.rc;
}

/* /run/netns a mount point of its own, shared: a namespace bind-mounted there is then seen
 * in every mount namespace, including those made after (as `ip netns add` makes it). */
static int run_dir_shared(strbuf_t *err)
{
    if (mkdir(NETNS_RUN_DIR, 0755) < 0 && errno != EEXIST) {
        strbuf_printf(err, "mkdir " NETNS_RUN_DIR " failed: %s\n", strerror(errno));
        return -1;
    }
    if (mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) == 0) return 0;
    if (errno != EINVAL ||
        mount(NETNS_RUN_DIR, NETNS_RUN_DIR, "none", MS_BIND | MS_REC, NULL) < 0 ||
        mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) < 0) {
        strbuf_printf(err, "mount --make-shared " NETNS_RUN_DIR " failed: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

typedef struct new_ns {
    const char *path;
    int err;
} new_ns_t;

/* On a thread of its own (it is left in the new namespace and ends). */
static void *new_ns_thread(void *p)
{
    new_ns_t *n = p;
    char self[64];
    snprintf(self, sizeof self, "/proc/self/task/%d/ns/net", (int)gettid());
    if (unshare(CLONE_NEWNET) < 0 || mount(self, n->path, "none", MS_BIND, NULL) < 0) n->err = errno;
    return NULL;
}

int dp_netns_add(const char *name, strbuf_t *err)
{
    char path[512];
    snprintf(path, sizeof path, NETNS_RUN_DIR "/%s", name);
    if (run_dir_shared(err) < 0) return -1;
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0) {
        strbuf_printf(err, "Cannot create namespace file \"%s\": %s\n", path, strerror(errno));
        return -1;
    }
    close(fd);
    new_ns_t n = {path, 0};
    pthread_t th;
    int rc = pthread_create(&th, NULL, new_ns_thread, &n);
    if (rc) n.err = rc;
    else pthread_join(th, NULL);
    if (n.err) {
        strbuf_printf(err, "Cannot create namespace \"%s\": %s\n", name, strerror(n.err));
        unlink(path);
        return -1;
    }
    return 0;
}

int dp_netns_del(const char *name, strbuf_t *err)
{
    char path[512];
    snprintf(path, sizeof path, NETNS_RUN_DIR "/%s", name);
    umount2(path, MNT_DETACH);
    if (unlink(path) < 0) {
        strbuf_printf(err, "Cannot remove namespace file \"%s\": %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}
