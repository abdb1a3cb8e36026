/* qemu_qmp.c - a minimal QMP client: one connection per command (QEMU serves one
 * monitor client at a time; commands are rare: stop, reboot, an interface plugged),
 * bounded in time. */
#include "qemu.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "jsonutil.h"

/* One line (QMP answers are one JSON object per line) into buf; -1 on timeout or EOF. */
static int read_line(int fd, char *buf, size_t n, int64_t end)
{
    size_t k = 0;
    for (;;) {
        int left = (int)(end - vm_now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return -1;
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        if (c == '\n') {
            buf[k] = 0;
            return 0;
        }
        if (k + 1 < n)
            buf[k++] = c;
    }
}

/* Wait for the answer to the last command: "return" (into *ret when ret is not NULL) or
 * "error" (events skipped). */
static int answer(int fd, int64_t end, const char *what, json_t **ret, verr_t *e)
{
    char line[8192];
    for (;;) {
        if (read_line(fd, line, sizeof line, end) < 0)
            return verr_set(e, 500, "InternalError", "QMP %s: no answer", what);
        JSON_AUTO json_t *o = json_loads(line, 0, NULL);
        if (!o)
            continue;
        if (json_object_get(o, "return")) {
            if (ret)
                *ret = json_incref(json_object_get(o, "return"));
            return 0;
        }
        if (json_object_get(o, "error"))
            return verr_set(e, 500, "InternalError", "QMP %s: %s", what, json_str(json_object_get(o, "error"), "desc", "?"));
    }
}

static int send_cmd(int fd, const char *cmd, const json_t *args, verr_t *e)
{
    JSON_AUTO json_t *o = json_pack("{s:s}", "execute", cmd);
    if (args)
        json_object_set(o, "arguments", (json_t *)args);
    AUTOFREE char *text = json_dumps(o, JSON_COMPACT);
    AUTOFREE char *line = xasprintf("%s\n", text);
    /* one send, never SIGPIPE: QEMU runs a command as soon as its JSON object is complete
     * and closes the socket after `quit`, so a second write (the newline alone) met a
     * closed socket and killed a process that does not ignore SIGPIPE (the drivers' unit
     * test, once in three runs under load) */
    size_t n = strlen(line);
    if (send(fd, line, n, MSG_NOSIGNAL) != (ssize_t)n)
        return verr_set(e, 500, "InternalError", "QMP %s: %s", cmd, strerror(errno));
    return 0;
}

int qemu_qmp(const char *socket_path, const char *cmd, int timeout_ms, verr_t *e)
{
    return qemu_qmp_args(socket_path, cmd, NULL, timeout_ms, e);
}

int qemu_qmp_args(const char *socket_path, const char *cmd, const json_t *args, int timeout_ms, verr_t *e)
{
    return qemu_qmp_value(socket_path, cmd, args, timeout_ms, NULL, e);
}

int qemu_qmp_value(const char *socket_path, const char *cmd, const json_t *args, int timeout_ms, json_t **ret,
                   verr_t *e)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof a.sun_path)
        return verr_set(e, 500, "InternalError", "QMP socket path too long: %s", socket_path);
    memcpy(a.sun_path, socket_path, strlen(socket_path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return verr_set(e, 500, "InternalError", "socket: %s", strerror(errno));
    int64_t end = vm_now_ms() + timeout_ms;
    char greet[4096];
    int rc = -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        verr_set(e, 500, "InternalError", "QMP connect %s: %s", socket_path, strerror(errno));
    else if (read_line(fd, greet, sizeof greet, end) < 0)
        verr_set(e, 500, "InternalError", "QMP %s: no greeting", socket_path);
    else if (send_cmd(fd, "qmp_capabilities", NULL, e) == 0 &&
             answer(fd, end, "qmp_capabilities", NULL, e) == 0 && send_cmd(fd, cmd, args, e) == 0)
        rc = answer(fd, end, cmd, ret, e);
    close(fd);
    return rc;
}
