/* container_seen.c - what the container driver's list() knows of each instance between
 * two listings (container.h, ct_seen_*).
 *
 * Why: the instance loop lists every instance at each pass (a doorbell, a job's end, a
 * report), and a launch makes several passes, so a host with N instances paid N times,
 * per pass: its state file parsed as JSON, /proc/PID/stat read twice (is it alive, and
 * again for its namespace), the netns file read, two stats (docs/performance.md, "The
 * agent's CPU per launch, second pass"). Here a listing costs a running instance one
 * stat of its state file, one poll of a pidfd and one stat of its namespace's path:
 *
 * - the parsed state is kept while the state file is the same file (device, inode, size,
 *   modification time: every write is a new file renamed over the old one);
 * - the process of (pid, start time) is proven once, by opening a pidfd and then reading
 *   its start time (the pidfd then names that very process, never a later one of the
 *   same pid), and is alive for as long as its pidfd does not poll readable (it exited;
 *   a zombie counts as gone, as vm_proc_is says). Once gone it stays gone for that state;
 * - the namespace the container joined (its netns file, written before the state that
 *   records the start) is read once per state file, and the process's own namespace once
 *   per process.
 * Only listings use it; ensure and remove read the files themselves as before. */
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Past this many open pidfds a listing reads /proc as before (the agent's descriptors
 * are a bounded resource; a host with more instances than this pays the old price for
 * the rest). */
#define SEEN_MAX_PIDFDS 512

typedef struct seen_one {
    char id[VM_ID_MAX];
    struct stat file;       /* the state file these fields were read from */
    vm_state_t st;
    int pidfd;              /* -1: not opened (or over the cap) */
    int gone;               /* the state's process is proven gone */
    int ns_known;           /* proc_ns below is the process's namespace */
    dev_t ns_dev;
    ino_t ns_ino;
    char netns[PATH_MAX];   /* what the netns file said; "" when none */
    int mark;               /* listed in the current listing */
} seen_one_t;

struct ct_seen {
    pthread_mutex_t mu;
    seen_one_t *v;
    size_t n;
    size_t pidfds;
};

ct_seen_t *ct_seen_new(void)
{
    ct_seen_t *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

static void drop_pidfd(ct_seen_t *s, seen_one_t *o)
{
    if (o->pidfd >= 0) {
        close(o->pidfd);
        s->pidfds--;
    }
    o->pidfd = -1;
}

void ct_seen_free(ct_seen_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        drop_pidfd(s, &s->v[i]);
    free(s->v);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static seen_one_t *entry(ct_seen_t *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].id, id))
            return &s->v[i];
    s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
    seen_one_t *o = &s->v[s->n++];
    memset(o, 0, sizeof *o);
    snprintf(o->id, sizeof o->id, "%s", id);
    o->pidfd = -1;
    return o;
}

/* Is the process of o->st alive? Proven once, then its pidfd says. */
static int alive(ct_seen_t *s, seen_one_t *o)
{
    if (o->gone || o->st.pid <= 0)
        return 0;
    if (o->pidfd >= 0) {
        struct pollfd p = {o->pidfd, POLLIN, 0};
        if (poll(&p, 1, 0) == 0)
            return 1;
        o->gone = 1;   /* exited: POLLIN (or an error: the old way would not see it either) */
        drop_pidfd(s, o);
        return 0;
    }
    int fd = s->pidfds < SEEN_MAX_PIDFDS ? (int)syscall(SYS_pidfd_open, o->st.pid, 0) : -1;
    /* opened first, then the start time read: a pid reused before the open fails here */
    if (!vm_proc_is(o->st.pid, o->st.start_time)) {
        if (fd >= 0)
            close(fd);
        return 0;   /* asked again next time, as before (it is rare: a stop clears the pid) */
    }
    if (fd >= 0) {
        o->pidfd = fd;
        s->pidfds++;
    }
    return 1;
}

/* ct_netns_moved's question, from what is kept: is the running process still in the
 * namespace that its netns file's path now names? */
static int moved(seen_one_t *o)
{
    if (!o->netns[0])
        return 0;
    if (!o->ns_known) {
        char own[64];
        struct stat sb;
        vm_pathf(own, sizeof own, "/proc/%d/ns/net", (int)o->st.pid);
        if (stat(own, &sb) < 0)
            return 0;
        o->ns_dev = sb.st_dev;
        o->ns_ino = sb.st_ino;
        o->ns_known = 1;
    }
    struct stat now;
    if (stat(o->netns, &now) < 0)   /* gone (the instance is leaving) or not made yet */
        return 0;
    return now.st_dev != o->ns_dev || now.st_ino != o->ns_ino;
}

int ct_seen_status(ct_seen_t *s, const char *inst_dir, const char *id, vm_state_t *st, int *up, int *is_moved)
{
    char path[PATH_MAX + 16];
    vm_pathf(path, sizeof path, "%s/state.json", inst_dir);
    struct stat sb;
    *up = *is_moved = 0;
    pthread_mutex_lock(&s->mu);
    seen_one_t *o = entry(s, id);
    o->mark = 1;
    vm_state_t fresh;
    if (stat(path, &sb) < 0 ||
        ((!o->file.st_ino || !same_file(&sb, &o->file)) && vm_state_read(inst_dir, &fresh, NULL) < 0)) {
        /* no state, or none readable: forget what was kept, so its next one is read whole */
        drop_pidfd(s, o);
        o->file.st_ino = 0;
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    if (!o->file.st_ino || !same_file(&sb, &o->file)) {
        if (fresh.pid != o->st.pid || fresh.start_time != o->st.start_time || !o->file.st_ino) {
            drop_pidfd(s, o);
            o->gone = o->ns_known = 0;
        }
        o->st = fresh;
        o->file = sb;
        char f[PATH_MAX + 16];
        vm_pathf(f, sizeof f, "%s/netns", inst_dir);
        if (vm_read_small(f, o->netns, sizeof o->netns) < 0)
            o->netns[0] = 0;
    }
    *st = o->st;
    int a = alive(s, o);
    *is_moved = a && moved(o);
    pthread_mutex_unlock(&s->mu);
    *up = a || ct_cgroup_busy(inst_dir);
    return 0;
}

void ct_seen_begin(ct_seen_t *s)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++)
        s->v[i].mark = 0;
    pthread_mutex_unlock(&s->mu);
}

void ct_seen_end(ct_seen_t *s)
{
    pthread_mutex_lock(&s->mu);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->v[i].mark) {
            drop_pidfd(s, &s->v[i]);
            continue;
        }
        s->v[k++] = s->v[i];
    }
    s->n = k;
    pthread_mutex_unlock(&s->mu);
}
