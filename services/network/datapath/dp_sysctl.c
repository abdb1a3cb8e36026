/* dp_sysctl.c - `sysctl -q -w KEY=VALUE...` in-process: each value written to its file
 * under /proc/sys by a thread that joined the namespace (dp_in_netns), where net.* keys
 * are that namespace's own, as they are for a `sysctl` run inside it. A VPC's build wrote
 * three of them (the router's forwarding and no IPv6) and a router with routes two more,
 * a fork+exec each (docs/performance.md, "The datapath's other applies in-process"). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dp_inproc.h"

typedef struct writes {
    const char *const *kv;   /* KEY=VALUE words, NULL-terminated */
    strbuf_t *err;
} writes_t;

static int write_all(void *p)
{
    writes_t *w = p;
    for (const char *const *kv = w->kv; *kv; kv++) {
        const char *eq = strchr(*kv, '=');
        char path[256];
        int n = snprintf(path, sizeof path, "/proc/sys/%.*s", (int)(eq - *kv), *kv);
        if (n < 0 || (size_t)n >= sizeof path) return -1;
        for (char *c = path + strlen("/proc/sys/"); *c; c++)
            if (*c == '.') *c = '/';
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        size_t len = strlen(eq + 1);
        if (fd < 0 || write(fd, eq + 1, len) != (ssize_t)len) {
            strbuf_printf(w->err, "sysctl: %s \"%.*s\": %s\n", fd < 0 ? "cannot stat" : "setting key",
                          (int)(eq - *kv), *kv, strerror(errno));
            if (fd >= 0) close(fd);
            return -1;
        }
        close(fd);
    }
    return 0;
}

int dp_sysctl_inproc(const char *netns, const char *const argv[], strbuf_t *err)
{
    if (!argv[1] || strcmp(argv[1], "-q") || !argv[2] || strcmp(argv[2], "-w") || !argv[3]) return 1;
    for (size_t i = 3; argv[i]; i++) {
        const char *eq = strchr(argv[i], '=');
        /* keys of dots and names, nothing that could leave /proc/sys */
        if (!eq || eq == argv[i] || !eq[1] || strstr(argv[i], "..") || strchr(argv[i], '/') ||
            strspn(argv[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") <
                (size_t)(eq - argv[i]))
            return 1;
    }
    writes_t w = {argv + 3, err};
    char why[600] = "";
    int rc = dp_in_netns(netns, write_all, &w, why, sizeof why);
    if (why[0]) strbuf_printf(err, "%s\n", why);
    return rc < 0 ? -1 : 0;
}
