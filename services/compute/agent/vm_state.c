/* vm_state.c - the drivers' shared pieces: state files, processes by pid + start time,
 * console tails, tree removal. See vm_state.h. */
#include "vm_state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jsonutil.h"

extern char **environ;

void vm_inst_dir(const char *dir, const char *id, char *out, size_t n) { snprintf(out, n, "%s/%s", dir, id); }

ssize_t vm_read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t r;
    while ((r = read(fd, buf, size - 1)) < 0 && errno == EINTR)
        ;
    close(fd);
    buf[r > 0 ? r : 0] = 0;
    return r;
}

int vm_write_file(const char *path, const char *data, size_t len, int how, verr_t *e)
{
    int atomic = how != VM_WRITE_PLAIN;
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, atomic ? "%s.tmp" : "%s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return verr_set(e, 500, "InternalError", "open %s: %s", tmp, strerror(errno));
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int err = errno;
            close(fd);
            return verr_set(e, 500, "InternalError", "write %s: %s", tmp, strerror(err));
        }
        off += (size_t)w;
    }
    if ((how == VM_WRITE_DURABLE && fsync(fd) < 0) || close(fd) < 0)
        return verr_set(e, 500, "InternalError", "sync %s: %s", tmp, strerror(errno));
    if (atomic && rename(tmp, path) < 0)
        return verr_set(e, 500, "InternalError", "rename %s: %s", tmp, strerror(errno));
    return 0;
}

int vm_state_write(const char *inst_dir, const vm_state_t *st, int how, verr_t *e)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/state.json", inst_dir);
    JSON_AUTO json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:s, s:s}", "power", vm_power_name(st->power),
                                    "reboot_seq", (json_int_t)st->reboot_seq, "pid", (json_int_t)st->pid,
                                    "start_time", (json_int_t)st->start_time, "image_sha256", st->image_sha256,
                                    "error", st->error);
    AUTOFREE char *s = json_compact(o);
    return vm_write_file(path, s, strlen(s), how == VM_WRITE_DURABLE ? VM_WRITE_DURABLE : VM_WRITE_RUNTIME, e);
}

int vm_state_read(const char *inst_dir, vm_state_t *st, verr_t *e)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/state.json", inst_dir);
    memset(st, 0, sizeof *st);
    json_error_t je;
    JSON_AUTO json_t *o = json_load_file(path, 0, &je);
    if (!o)
        return verr_set(e, 404, "InvalidInstanceID.NotFound", "%s: %s", path, je.text);
    int p = vm_power_parse(json_str(o, "power", ""));
    st->power = p < 0 ? VM_POWER_STOPPED : (vm_power_t)p;
    st->reboot_seq = (uint64_t)json_int(o, "reboot_seq", 0);
    st->pid = (pid_t)json_int(o, "pid", 0);
    st->start_time = (uint64_t)json_int(o, "start_time", 0);
    snprintf(st->image_sha256, sizeof st->image_sha256, "%s", json_str(o, "image_sha256", ""));
    snprintf(st->error, sizeof st->error, "%s", json_str(o, "error", ""));
    return 0;
}

char **vm_state_ids(const char *dir, size_t *n)
{
    *n = 0;
    char **v = NULL;
    DIR *dh = opendir(dir);
    if (!dh)
        return NULL;
    struct dirent *de;
    while ((de = readdir(dh))) {
        if (!vm_id_valid(de->d_name))
            continue;
        v = xrealloc(v, (*n + 1) * sizeof *v);
        v[(*n)++] = xstrdup(de->d_name);
    }
    closedir(dh);
    return v;
}

/* Field 22 of /proc/PID/stat; the state (field 3) tells a zombie, which kill(pid, 0)
 * would take for alive. comm (field 2) may hold spaces and parentheses: parse after
 * the last ')'. */
uint64_t vm_proc_start_time(pid_t pid)
{
    if (pid <= 0)
        return 0;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (vm_read_small(path, buf, sizeof buf) <= 0)
        return 0;
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return 0;
    p += 2;
    if (*p == 'Z' || *p == 'X')
        return 0;
    /* p is at field 3; step to field 22 */
    for (int f = 3; f < 22 && p; f++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return p ? strtoull(p, NULL, 10) : 0;
}

int vm_proc_is(pid_t pid, uint64_t start_time)
{
    uint64_t t = vm_proc_start_time(pid);
    return t && t == start_time;
}

static int wait_gone(pid_t pid, uint64_t start, int timeout_ms)
{
    int64_t end = vm_now_ms() + timeout_ms;
    for (;;) {
        /* our own child: reap it, or it stays a zombie as long as the agent lives */
        waitpid(pid, NULL, WNOHANG);
        if (!vm_proc_is(pid, start))
            return 0;
        if (vm_now_ms() >= end)
            return -1;
        vm_sleep_ms(20);
    }
}

/* Does pid have a handler for sig (SigCgt of /proc/PID/status)? Unknown counts as yes:
 * the caller then waits as it always did. */
static int catches(pid_t pid, int sig)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 1;
    int yes = 1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "SigCgt:", 7)) {
            yes = (strtoull(line + 7, NULL, 16) >> (sig - 1)) & 1;
            break;
        }
    fclose(f);
    return yes;
}

int vm_proc_stop(pid_t pid, uint64_t start_time, int timeout_ms)
{
    if (!vm_proc_is(pid, start_time))
        return 0;
    /* A process without a SIGTERM handler has nothing to do on it: it dies of it at once,
     * or, as the init of a PID namespace (a container's /bin/sh), never even sees it.
     * Waiting the grace for it only made every terminate of a busybox container take
     * agent.container.stop_timeout_ms (5 s). */
    if (!catches(pid, SIGTERM))
        timeout_ms = 0;
    kill(pid, SIGTERM);
    if (wait_gone(pid, start_time, timeout_ms) == 0)
        return 0;
    if (vm_proc_is(pid, start_time))
        kill(pid, SIGKILL);
    return wait_gone(pid, start_time, 5000);
}

int vm_mkdirs(const char *path, mode_t mode, verr_t *e)
{
    /* the whole path first: its parents almost always exist, and each level tried was a
     * system call and a path walk (a launch made three directories, ten levels deep) */
    if (mkdir(path, mode) == 0 || errno == EEXIST)
        return 0;
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return verr_set(e, 500, "InternalError", "mkdir %s: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return verr_set(e, 500, "InternalError", "mkdir %s: %s", p, strerror(errno));
    return 0;
}

/* nftw's callback has no argument of its own, hence thread-local state; the path is kept
 * on the heap, not in a PATH_MAX array: static TLS is zeroed, so resident, in every thread
 * of the agent at its start (docs/performance.md, tail12). */
static __thread int rm_failed;
static __thread char *rm_what;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    int r = (flag == FTW_DP || flag == FTW_D) ? rmdir(path) : unlink(path);
    if (r < 0 && errno != ENOENT && !rm_failed) {
        rm_failed = errno;
        rm_what = xstrdup(path);
    }
    return 0;
}

int vm_rmtree(const char *path, verr_t *e)
{
    struct stat sb;
    if (lstat(path, &sb) < 0)
        return errno == ENOENT ? 0 : verr_set(e, 500, "InternalError", "stat %s: %s", path, strerror(errno));
    rm_failed = 0;
    /* FTW_MOUNT: a mount below is not entered (its mount point then fails to go, and
     * the error names it), FTW_PHYS: symlinks are removed, never followed. */
    nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    if (!rm_failed)
        return 0;
    verr_set(e, 500, "InternalError", "remove %s: %s", rm_what, strerror(rm_failed));
    free(rm_what);
    rm_what = NULL;
    return -1;
}

int vm_run(char *const argv[], verr_t *e)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, 2, 1);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        return verr_set(e, 500, "InternalError", "%s: %s", argv[0], strerror(rc));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return verr_set(e, 500, "InternalError", "%s: wait: %s", argv[0], strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st))
        return verr_set(e, 500, "InternalError", "%s %s failed (status %d)", argv[0], argv[1] ? argv[1] : "",
                        WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return 0;
}

int vm_file_tail(const char *path, size_t max, char **buf, size_t *len, uint64_t *total, verr_t *e)
{
    *buf = NULL;
    *len = 0;
    *total = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) {
            *buf = xstrdup("");
            return 0;
        }
        return verr_set(e, 500, "InternalError", "open %s: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        close(fd);
        return verr_set(e, 500, "InternalError", "stat %s: %s", path, strerror(errno));
    }
    uint64_t size = (uint64_t)sb.st_size;
    size_t want = size < max ? (size_t)size : max;
    char *b = xmalloc(want + 1);
    ssize_t r = pread(fd, b, want, (off_t)(size - want));
    close(fd);
    if (r < 0) {
        free(b);
        return verr_set(e, 500, "InternalError", "read %s: %s", path, strerror(errno));
    }
    b[r] = 0;
    *buf = b;
    *len = (size_t)r;
    *total = size;
    return 0;
}

int vm_pathf(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    return r < 0 || (size_t)r >= n ? -1 : 0;
}

int64_t vm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vm_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}
