/* container_start.c - start one container: the agent forks P1, puts it into the
 * instance's cgroups, then lets it go on; P1 (a session leader) joins the network
 * namespace the datapath made for the instance's interface (setns) or makes an empty
 * one, unshares pid/mount/uts/ipc namespaces and forks P2, which is PID 1 inside. P2
 * makes its mounts private, mounts the overlay and /proc, pivot_root()s into it, sets
 * the hostname, takes the console FIFO as stdin and console.log as stdout/stderr, and
 * execs /sbin/init. P1 reports P2's pid and exits, so the container is nobody's child in
 * the agent (it outlives an agent restart, and liveness is read from /proc by pid and
 * start time). The mounts live only in the container's mount namespace: they go when it
 * ends, so nothing is left mounted on the host. Between fork and exec the children make
 * system calls only, on strings made before the fork. */
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
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
    "wait for the agent", "join the network namespace", "new network namespace", "unshare namespaces",
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

static __attribute__((noreturn)) void init_child(const ct_launch_t *l, int res, int con_in, int con_out)
{
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
    if (dup2(con_in, 0) < 0 || dup2(con_out, 1) < 0 || dup2(con_out, 2) < 0)
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

static __attribute__((noreturn)) void p1(const ct_launch_t *l, int go, int res, int con_in, int con_out)
{
    char c;
    if (read(go, &c, 1) != 1)
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
    pid_t pid = fork();
    if (pid < 0)
        fail(res, 4);
    if (pid == 0)
        init_child(l, res, con_in, con_out);
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
    int con_in = open(in_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    int con_out = open(out_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    int go[2] = {-1, -1}, res[2] = {-1, -1};
    int rc = -1;
    pid_t p = -1;
    if (con_in < 0 || con_out < 0 || pipe2(go, O_CLOEXEC) < 0 || pipe2(res, O_CLOEXEC) < 0) {
        verr_set(e, 500, "InternalError", "console or pipes of %s: %s", l->inst_dir, strerror(errno));
        goto out;
    }
    p = fork();
    if (p < 0) {
        verr_set(e, 500, "InternalError", "fork: %s", strerror(errno));
        goto out;
    }
    if (p == 0) {
        close(go[1]);
        close(res[0]);
        p1(l, go[0], res[1], con_in, con_out);
    }
    close(go[0]);
    go[0] = -1;
    close(res[1]);
    res[1] = -1;
    if (ct_cgroup_enter(l->inst_dir, p, e) < 0) {
        kill(p, SIGKILL);
        goto out;
    }
    if (write(go[1], "g", 1) != 1) {
        verr_set(e, 500, "InternalError", "start %s: %s", l->inst_dir, strerror(errno));
        goto out;
    }
    /* a pid record, then end-of-file when init was exec'd, or a failure record */
    *pid = 0;
    for (;;) {
        struct pollfd pf = {.fd = res[0], .events = POLLIN};
        if (poll(&pf, 1, 10000) <= 0) {
            verr_set(e, 500, "InternalError", "start %s: no answer from the container in 10 s", l->inst_dir);
            break;
        }
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
    if (p > 0)
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
            ;
    int fds[] = {con_in, con_out, go[0], go[1], res[0], res[1]};
    for (size_t i = 0; i < ARRAY_LEN(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return rc;
}
