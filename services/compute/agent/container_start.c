/* container_start.c - start one container: the agent clones P1, which moves itself into
 * the instance's cgroups, becomes a session leader, joins the network namespace the
 * datapath made for the instance's interface (setns) or makes an empty one, unshares
 * pid/mount/uts/ipc namespaces and clones P2, which is PID 1 inside. P2 makes its mounts
 * private, mounts the overlay and /proc, pivot_root()s into it, sets the hostname, takes
 * the console FIFO as stdin and console.log as stdout/stderr, and execs /sbin/init. P1
 * reports P2's pid and exits, so the container is nobody's child in the agent (it
 * outlives an agent restart, and liveness is read from /proc by pid and start time). The
 * mounts live only in the container's mount namespace: they go when it ends, so nothing
 * is left mounted on the host.
 *
 * P1 and P2 share the agent's memory (clone with CLONE_VM | CLONE_VFORK, each on a stack
 * of its own): a fork() copied the agent's page tables for P1, P1's fork() copied them
 * again for P2, and both copies were torn down at P2's exec and P1's exit; perf of the
 * agent in a launch rate put a fifth of its own CPU there (docs/performance.md, "Agent
 * CPU per launch"). The calling thread sleeps until P1 has exited, P1 until P2 has
 * exec'd, so nothing else of the agent's runs on those stacks meanwhile; the children
 * make system calls only, on strings and descriptors made before the clone, write only
 * their own stacks, and run with every signal blocked and every handler reset (a handler
 * of the agent's must never run on the shared memory). P1 enters the cgroups itself,
 * through cgroup.procs files the agent opened: the agent cannot move it while it sleeps. */
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the children tell the agent over the result pipe. */
enum { REC_PID = 1, REC_FAIL = 2 };
typedef struct rec {
    int kind;
    int value;                /* the pid, or the step that failed */
    int err;                  /* errno of that step */
} rec_t;

static const char *const steps[] = {
    "enter the cgroups", "join the network namespace", "new network namespace", "unshare namespaces",
    "fork init", "make mounts private", "mount the overlay", "mount /proc", "chdir to the root",
    "pivot_root", "detach the old root", "set the hostname", "console", "exec /sbin/init",
};

static void report(int fd, int kind, int value, int err)
{
    rec_t r = {kind, value, err};
    ssize_t w = write(fd, &r, sizeof r);
    (void)w;
}

static __attribute__((noreturn)) void fail(int fd, int step)
{
    report(fd, REC_FAIL, step, errno);
    _exit(127);
}

static void close_others(int keep)
{
    /* every fd but 0-2 and the result pipe: the agent's sockets must not leak inside */
    if (keep > 3)
        syscall(SYS_close_range, 3U, (unsigned)keep - 1, 0U);
    syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U);
}

/* What P1 and P2 are given: one struct on the agent's stack, read-only to them. */
typedef struct ct_child_args {
    const ct_launch_t *l;
    int res, con_in, con_out;
    int cg[CT_MAX_CG];
    int n_cg;
    char *p2_stack_top;
    sigset_t mask;            /* the agent thread's own, for P2's exec */
} ct_child_args_t;

#define CT_CHILD_STACK (64 * 1024)

static int init_child(void *arg)
{
    const ct_child_args_t *a = arg;
    const ct_launch_t *l = a->l;
    int res = a->res;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        fail(res, 5);
    if (mount("overlay", l->root, "overlay", 0, l->overlay_opts) < 0)
        fail(res, 6);
    if (chdir(l->root) < 0)
        fail(res, 8);
    if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        fail(res, 7);
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        fail(res, 9);
    if (umount2(".", MNT_DETACH) < 0)
        fail(res, 10);
    if (chdir("/") < 0)
        fail(res, 8);
    if (sethostname(l->hostname, strlen(l->hostname)) < 0)
        fail(res, 11);
    if (dup2(a->con_in, 0) < 0 || dup2(a->con_out, 1) < 0 || dup2(a->con_out, 2) < 0)
        fail(res, 12);
    close_others(res);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    char *argv[] = {"/sbin/init", NULL};
    /* VIRGA_INSTANCE: the image's init may ask the metadata service (docs/images.md) */
    char *envp[] = {"PATH=/sbin:/usr/sbin:/bin:/usr/bin", "HOME=/root", "TERM=linux", "container=virga",
                    "VIRGA_INSTANCE=1", NULL};
    execve(argv[0], argv, envp);
    fail(res, 13);
}

static int p1(void *arg)
{
    const ct_child_args_t *a = arg;
    const ct_launch_t *l = a->l;
    int res = a->res;
    /* its own copy of the handler table (no CLONE_SIGHAND): none of the agent's may run */
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN)
            signal(sig, SIG_DFL);
    }
    for (int i = 0; i < a->n_cg; i++)
        if (write(a->cg[i], "0", 1) != 1)
            fail(res, 0);
    setsid();
    if (l->netns[0]) {
        int fd = open(l->netns, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
            fail(res, 1);
        close(fd);
    } else if (unshare(CLONE_NEWNET) < 0) {
        fail(res, 2);
    }
    if (unshare(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC) < 0)
        fail(res, 3);
    /* P1 sleeps until P2 has exec'd (or failed and exited), so their stacks never overlap
     * in time with anything else of the agent's */
    pid_t pid = clone(init_child, a->p2_stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)a);
    if (pid < 0)
        fail(res, 4);
    report(res, REC_PID, pid, 0);
    _exit(0);
}

int ct_start(const ct_launch_t *l, pid_t *pid, uint64_t *start_time, verr_t *e)
{
    char in_path[PATH_MAX + 16], out_path[PATH_MAX + 16];
    vm_pathf(in_path, sizeof in_path, "%s/console.in", l->inst_dir);
    vm_pathf(out_path, sizeof out_path, "%s/console.log", l->inst_dir);
    if (mkfifo(in_path, 0600) < 0 && errno != EEXIST)
        return verr_set(e, 500, "InternalError", "mkfifo %s: %s", in_path, strerror(errno));
    /* Read-write: init's stdin never sees end-of-file (the shell waits for input), and
     * whoever writes to the FIFO types on the console. */
    ct_child_args_t a = {.l = l, .res = -1, .n_cg = 0};
    a.con_in = open(in_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    a.con_out = open(out_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    int res[2] = {-1, -1};
    int rc = -1;
    pid_t p = -1;
    char *stacks = NULL;
    if (a.con_in < 0 || a.con_out < 0 || pipe2(res, O_CLOEXEC) < 0) {
        verr_set(e, 500, "InternalError", "console or pipes of %s: %s", l->inst_dir, strerror(errno));
        goto out;
    }
    if ((a.n_cg = ct_cgroup_open_procs(l->inst_dir, a.cg, e)) < 0) {
        a.n_cg = 0;
        goto out;
    }
    stacks = malloc(2 * CT_CHILD_STACK);
    if (!stacks) {
        verr_set(e, 500, "InternalError", "start %s: out of memory", l->inst_dir);
        goto out;
    }
    a.res = res[1];
    a.p2_stack_top = stacks + 2 * CT_CHILD_STACK;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &a.mask);
    p = clone(p1, stacks + CT_CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &a.mask, NULL);
    if (p < 0) {
        verr_set(e, 500, "InternalError", "clone: %s", strerror(clone_errno));
        goto out;
    }
    /* P1 has exited (CLONE_VFORK): its records are in the pipe, then end-of-file */
    while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
        ;
    p = -1;
    close(res[1]);
    res[1] = -1;
    *pid = 0;
    for (;;) {
        rec_t r;
        ssize_t got = read(res[0], &r, sizeof r);
        if (got < 0 && errno == EINTR)
            continue;
        if (got == 0) {
            rc = *pid ? 0 : verr_set(e, 500, "InternalError", "start %s: the container went away", l->inst_dir);
            break;
        }
        if (got != sizeof r) {
            verr_set(e, 500, "InternalError", "start %s: short record", l->inst_dir);
            break;
        }
        if (r.kind == REC_PID) {
            *pid = r.value;
            *start_time = vm_proc_start_time(*pid);
        } else {
            const char *step = (unsigned)r.value < ARRAY_LEN(steps) ? steps[r.value] : "?";
            verr_set(e, 500, "InternalError", "start container: %s: %s", step, strerror(r.err));
            break;
        }
    }
out:
    free(stacks);
    int fds[] = {a.con_in, a.con_out, res[0], res[1]};
    for (size_t i = 0; i < ARRAY_LEN(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    for (int i = 0; i < a.n_cg; i++)
        close(a.cg[i]);
    return rc;
}
