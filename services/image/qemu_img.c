/* qemu_img.c - running qemu-img on tenants' disk images.
 *
 * The files are untrusted: a crafted image can make the format probe slow or hungry, and
 * some formats can name other files (qcow2 backing files, vmdk extents) that would make
 * qemu-img read the host's disk. So: the format is always given (-f), never probed on the
 * conversion; `info` runs with CPU-time and address-space limits (as OpenStack does); and
 * pipeline.c refuses images that reference any file but themselves. No shell is involved. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "image_task.h"
#include "strbuf.h"

/* Start argv with stdout to a pipe (*out_fd) and stderr to another (*err_fd). */
static pid_t spawn(char *const argv[], int limit, int *out_fd, int *err_fd, verr_t *e)
{
    int o[2], er[2];
    if (pipe(o) < 0)
        return verr_set(e, 500, "InternalError", "pipe: %s", strerror(errno));
    if (pipe(er) < 0) {
        close(o[0]);
        close(o[1]);
        return verr_set(e, 500, "InternalError", "pipe: %s", strerror(errno));
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(o[0]); close(o[1]); close(er[0]); close(er[1]);
        return verr_set(e, 500, "InternalError", "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        /* qemu-img dies with the service: one left running after a kill -9 went on
         * writing the task's scratch file after the task's new owner had finished and
         * removed it (test_image_import's crash test found the file left behind) */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(127);
        dup2(o[1], 1);
        dup2(er[1], 2);
        close(o[0]); close(o[1]); close(er[0]); close(er[1]);
        if (limit) {
            struct rlimit cpu = {30, 30}, as = {1UL << 30, 1UL << 30};
            setrlimit(RLIMIT_CPU, &cpu);
            setrlimit(RLIMIT_AS, &as);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(o[1]);
    close(er[1]);
    *out_fd = o[0];
    *err_fd = er[0];
    return pid;
}

/* Read what is there from fd without blocking forever (the child may be slow). */
static void drain(int fd, strbuf_t *b, int wait_ms)
{
    fd_set s;
    FD_ZERO(&s);
    FD_SET(fd, &s);
    struct timeval tv = {wait_ms / 1000, (wait_ms % 1000) * 1000};
    if (select(fd + 1, &s, NULL, NULL, &tv) <= 0)
        return;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0 && b->len < (1 << 20))
        strbuf_put(b, buf, (size_t)n);
}

/* Run to the end; tick may stop it. Returns the exit status, -1 + e on failure. */
static int run(char *const argv[], int limit, strbuf_t *out, int (*tick)(void *), void *arg, verr_t *e)
{
    int ofd = -1, efd = -1;
    pid_t pid = spawn(argv, limit, &ofd, &efd, e);
    if (pid < 0)
        return -1;
    strbuf_t err = {0};
    int status = 0, rc = -1, done = 0;
    while (!done) {
        drain(ofd, out, 100);
        drain(efd, &err, 100);
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            done = 1;
        else if (tick && tick(arg)) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            close(ofd);
            close(efd);
            free(err.s);
            return -1;   /* tick set e */
        }
    }
    /* whatever is still buffered in the pipes */
    for (int i = 0; i < 64; i++) {
        size_t before = out->len + err.len;
        drain(ofd, out, 0);
        drain(efd, &err, 0);
        if (out->len + err.len == before)
            break;
    }
    close(ofd);
    close(efd);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        rc = 0;
    } else {
        char *msg = err.s ? err.s : "";
        size_t l = strlen(msg);
        while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
            msg[--l] = 0;
        const char *pfx = strncmp(msg, "qemu-img: ", 10) ? msg : msg + 10;
        if (WIFSIGNALED(status))
            rc = verr_set(e, 400, "QemuImgFailed", "qemu-img was stopped by signal %d (resource limit)", WTERMSIG(status));
        else
            rc = verr_set(e, 400, "QemuImgFailed", "%.400s", *pfx ? pfx : "qemu-img failed");
    }
    free(err.s);
    return rc;
}

int qemu_img_info(const char *path, const char *format, json_t **info, verr_t *e)
{
    char *argv[] = {"qemu-img", "info", "--output=json", "-f", (char *)format, (char *)path, NULL};
    if (!format) {
        argv[3] = (char *)path;
        argv[4] = NULL;
    }
    strbuf_t out = {0};
    if (run(argv, 1, &out, NULL, NULL, e) < 0) {
        free(out.s);
        return -1;
    }
    json_error_t je;
    *info = json_loads(out.s ? out.s : "", 0, &je);
    free(out.s);
    if (!*info)
        return verr_set(e, 500, "InternalError", "qemu-img info printed no JSON: %s", je.text);
    return 0;
}

int qemu_img_convert(const char *src, const char *src_format, const char *dst, const char *dst_format,
                     int (*tick)(void *arg), void *arg, verr_t *e)
{
    char *argv[] = {"qemu-img", "convert", "-q", "-f", (char *)src_format, "-O", (char *)dst_format,
                    (char *)src, (char *)dst, NULL};
    strbuf_t out = {0};
    int rc = run(argv, 0, &out, tick, arg, e);
    free(out.s);
    return rc;
}
