/* dp_exec.c - the one place where the datapath enters a network namespace and runs a
 * system tool (ip, bridge, nft, sysctl, dnsmasq).
 *
 * The datapath says what it does as `ip`, `nft`, `bridge`, `sysctl` command lines: their
 * text is what an operator reads when debugging (VIRGA_DP_TRACE=1) and can replay by hand,
 * and iproute2 and nftables speak every message we need. The forms an apply uses are run
 * in-process (dp_inproc.h: rtnetlink through libmnl, nftables through libnftables,
 * namespaces as `ip netns` makes them, sysctls written in the namespace), each on a thread
 * of its own in the namespace: a fork+exec costs far more CPU than the request it carries
 * (docs/performance.md, "Agent CPU per launch", "The datapath's other applies
 * in-process"); observe's listings are rtnetlink dumps (dp_rtnl_list.c). dnsmasq, any
 * other form, and everything when VIRGA_DP_EXEC=1, is exec'd: the child enters the namespace with setns() before exec, so
 * no thread of the caller ever changes namespace, and there is no shell: arguments are an
 * argv array of strings validated by desired.c. Every run is bounded in time. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dp_exec.h"
#include "dp_inproc.h"
#include "strbuf.h"

#define DP_EXEC_TIMEOUT_MS 15000

/* Commands run by this process, and of them those exec'd, for the appliers' logs (a
 * process is most of a command's cost). Atomic: cheap, and correct whichever thread
 * applies. */
static long exec_count, proc_count;

long dp_exec_count(void)
{
    return __atomic_load_n(&exec_count, __ATOMIC_RELAXED);
}

long dp_proc_count(void)
{
    return __atomic_load_n(&proc_count, __ATOMIC_RELAXED);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The child between vfork() and exec (dp_run): it shares the applier's memory, so it
 * writes only its own stack, calls no allocator and never returns. Its signal handlers
 * are its own copy (vfork shares no handler table): a handler of the agent's, run here
 * on a signal before the exec, would run on the shared memory, so every caught signal
 * goes back to its default before the mask (all blocked by the parent) is restored. */
static void child(const char *netns, const char *const argv[], int in, int out, int err,
                  int detached, pid_t parent, const sigset_t *mask)
{
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN)
            signal(sig, SIG_DFL);
    }
    sigprocmask(SIG_SETMASK, mask, NULL);
    /* A command dies with the applier that runs it (dnsmasq, detached, outlives it): a
     * killed applier releases its lock at once, and an `ip netns del` it had started
     * must not then run under the next applier's feet. */
    if (!detached && (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)) _exit(125);
    if (netns) {
        char path[512];
        snprintf(path, sizeof path, "/run/netns/%s", netns);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
            dprintf(err, "cannot enter namespace %s: %s\n", netns, strerror(errno));
            _exit(126);
        }
    }
    if (detached) setsid();
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    for (int fd = 3; fd < 1024; fd++) close(fd);
    execvp(argv[0], (char *const *)argv);
    dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* A failed command's error, its stderr in it (as the tool printed it). */
static int failed(const char *const argv[], strbuf_t *se, int flags, verr_t *e)
{
    size_t n = se->len;
    while (n && (se->s[n - 1] == '\n')) se->s[--n] = 0;
    if ((flags & DP_QUIET) && e) return -1;
    return verr_set(e, 500, "InternalError", "%s %s%s%s failed: %s", argv[0], argv[1] ? argv[1] : "",
                    argv[1] && argv[2] ? " " : "", argv[1] && argv[2] ? argv[2] : "", se->s ? se->s : "");
}

/* VIRGA_DP_TRACE=1: each command and its time on stderr (where an apply spends it). */
static void trace(const char *netns, const char *const argv[], long long t0, const char *how)
{
    if (getenv("VIRGA_DP_TRACE"))
        fprintf(stderr, "dp: %6.1f ms %s %s %s %s %s%s\n", (double)(now_ms() - t0), netns ? netns : "-", argv[0],
                argv[1] ? argv[1] : "", argv[1] && argv[2] ? argv[2] : "",
                argv[1] && argv[2] && argv[3] ? argv[3] : "", how);
}

/* The command in-process when dp_inproc.h knows it: 1 when it does not (exec it). A caller
 * that wants what `ip` or `bridge` print gets it in-process for observe's listings
 * (dp_rtnl_list.c: their JSON, the fields observe reads), the program for anything else:
 * the other forms print nothing in-process. */
static int run_inproc(const char *netns, const char *const argv[], const char *input, char **out, int flags,
                      verr_t *e)
{
    static int exec_only = -1;
    if (exec_only < 0) exec_only = getenv("VIRGA_DP_EXEC") && !strcmp(getenv("VIRGA_DP_EXEC"), "1");
    int nft = !strcmp(argv[0], "nft");
    if (exec_only || (flags & DP_DETACHED) || (out && !nft && input)) return 1;
    long long t0 = now_ms();
    strbuf_t so = {0}, se = {0};
    strbuf_puts(&so, "");
    strbuf_puts(&se, "");
    int rc = nft ? dp_nft_inproc(netns, argv, input, &so, &se)
           : out ? dp_list_inproc(netns, argv, &so, &se)
           : !strcmp(argv[0], "ip") ? dp_ip_inproc(netns, argv, input, &se)
           : !strcmp(argv[0], "bridge") && !input ? dp_bridge_inproc(netns, argv, &se)
           : !strcmp(argv[0], "sysctl") && !input ? dp_sysctl_inproc(netns, argv, &se) : 1;
    if (rc != 1) {
        __atomic_add_fetch(&exec_count, 1, __ATOMIC_RELAXED);
        if (rc < 0) rc = failed(argv, &se, flags, e);
        trace(netns, argv, t0, " (in-process)");
    }
    if (out && rc == 0) *out = so.s;
    else free(so.s);
    free(se.s);
    return rc;
}

int dp_run(const char *netns, const char *const argv[], const char *input, char **out,
           int flags, verr_t *e)
{
    int pin[2], pout[2], perr[2];
    if (out) *out = NULL;
    int done = run_inproc(netns, argv, input, out, flags, e);
    if (done != 1) return done;
    if (pipe2(pin, O_CLOEXEC) < 0) return verr_set(e, 500, "InternalError", "pipe: %s", strerror(errno));
    if (pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0) {
        close(pin[0]);
        close(pin[1]);
        return verr_set(e, 500, "InternalError", "pipe: %s", strerror(errno));
    }
    int detached = flags & DP_DETACHED;
    __atomic_add_fetch(&exec_count, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&proc_count, 1, __ATOMIC_RELAXED);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    /* vfork, not fork: fork copied the agent's page tables (its threads, librdkafka's
     * buffers) for each command only for the exec to throw them away (perf of the agent
     * and its commands in a rate phase: fork 12% of the samples, the exec's unmapping of
     * the copy a few more; issue 11's launch rate). The calling thread waits until
     * the child has exec'd (or exited); the others run on. Signals are blocked meanwhile
     * so that no handler runs in the child on the shared memory (see child). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t self = getpid(), pid = vfork();
    if (pid == 0)
        child(netns, argv, detached || !input ? devnull : pin[0], detached ? devnull : pout[1],
              detached ? devnull : perr[1], detached, self, &old);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        close(devnull);
        for (int i = 0; i < 2; i++) {
            close(pin[i]);
            close(pout[i]);
            close(perr[i]);
        }
        return verr_set(e, 500, "InternalError", "vfork: %s", strerror(fork_errno));
    }
    close(devnull);
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    if (input && !detached) {
        /* Scripts are small (under a pipe buffer for any sane host); a child that stops
         * reading early gets EPIPE, which we ignore and report through its exit status. */
        signal(SIGPIPE, SIG_IGN);
        size_t len = strlen(input), off = 0;
        while (off < len) {
            ssize_t w = write(pin[1], input + off, len - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
    }
    close(pin[1]);
    strbuf_t so = {0}, se = {0};
    strbuf_puts(&so, "");
    strbuf_puts(&se, "");
    long long deadline = now_ms() + DP_EXEC_TIMEOUT_MS;
    int open_fds = 2, timed_out = 0;
    struct pollfd pf[2] = {{pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}};
    while (open_fds > 0) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            timed_out = 1;
            kill(pid, SIGKILL);
            break;
        }
        if (poll(pf, 2, (int)left) < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; i++) {
            if (pf[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            ssize_t r = read(pf[i].fd, buf, sizeof buf);
            if (r > 0) {
                strbuf_put(i ? &se : &so, buf, (size_t)r);
            } else if (r == 0 || errno != EINTR) {
                close(pf[i].fd);
                pf[i].fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (pf[i].fd >= 0) close(pf[i].fd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    int rc = 0;
    if (timed_out) {
        rc = verr_set(e, 500, "InternalError", "%s timed out", argv[0]);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rc = failed(argv, &se, flags, e);
    }
    free(se.s);
    trace(netns, argv, deadline - DP_EXEC_TIMEOUT_MS, "");
    if (out && rc == 0) *out = so.s;
    else free(so.s);
    return rc;
}

int dp_runv(const char *netns, int flags, verr_t *e, ...)
{
    const char *argv[64];
    size_t n = 0;
    va_list ap;
    va_start(ap, e);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n + 1 < ARRAY_LEN(argv)) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return dp_run(netns, argv, NULL, NULL, flags, e);
}
