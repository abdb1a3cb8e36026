/* container_cgroup.c - the container driver's cgroups: limits for memory, CPU and pids
 * from the instance type. cgroup v2 when its hierarchy has those controllers, else v1
 * (this kind of machine: v2 carries only hugetlb, the v1 hierarchies are writable).
 *
 * v1: one cgroup per controller, nested under the agent's own cgroup of that controller
 * (/proc/self/cgroup) as <prefix>agent-<host>/<instance id>. v2: under the hierarchy's
 * root as <prefix>agent-<host>/<instance id>, controllers enabled on the way down (the
 * root may hold processes; the agent's own cgroup could not also delegate them).
 * The directories of an instance are written to <instance dir>/cgroups before they are
 * made, so a later agent (whose own cgroup may differ) removes exactly those. */
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define V1_ROOT "/sys/fs/cgroup"

static const char *const v1_controllers[] = {"memory", "cpu", "pids"};

static int has_all(const char *controllers_file)
{
    char buf[512];
    if (vm_read_small(controllers_file, buf, sizeof buf) < 0)
        return 0;
    char padded[520];
    vm_pathf(padded, sizeof padded, " %s ", buf);
    for (char *p = padded; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return strstr(padded, " memory ") && strstr(padded, " cpu ") && strstr(padded, " pids ");
}

/* The agent's own path in the v1 hierarchy that has this controller. */
static int own_v1_path(const char *ctl, char *out, size_t n)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return -1;
    char line[1024];
    int found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b)
            continue;
        *b = 0;
        char ctls[256];
        vm_pathf(ctls, sizeof ctls, ",%s,", a + 1);
        char key[64];
        vm_pathf(key, sizeof key, ",%s,", ctl);
        if (!strstr(ctls, key))
            continue;
        b[1 + strcspn(b + 1, "\n")] = 0;
        vm_pathf(out, n, "%s", strcmp(b + 1, "/") ? b + 1 : "");
        found = 0;
    }
    fclose(f);
    return found;
}

int ct_cgroup_detect(ct_cgroups_t *cg, const char *prefix, const char *host, verr_t *e)
{
    memset(cg, 0, sizeof *cg);
    const char *v2roots[] = {V1_ROOT, V1_ROOT "/unified"};
    for (size_t i = 0; i < ARRAY_LEN(v2roots); i++) {
        char f[PATH_MAX];
        vm_pathf(f, sizeof f, "%s/cgroup.controllers", v2roots[i]);
        if (has_all(f)) {
            cg->v2 = 1;
            cg->n = 1;
            vm_pathf(cg->base[0], sizeof cg->base[0], "%s/%sagent-%s", v2roots[i], prefix, host);
            return 0;
        }
    }
    for (size_t i = 0; i < ARRAY_LEN(v1_controllers); i++) {
        char own[PATH_MAX / 2], dir[PATH_MAX];
        vm_pathf(dir, sizeof dir, "%s/%s", V1_ROOT, v1_controllers[i]);
        struct stat sb;
        if (stat(dir, &sb) < 0 || own_v1_path(v1_controllers[i], own, sizeof own) < 0)
            return verr_set(e, 501, "NotImplemented",
                            "no cgroup v2 with memory, cpu and pids, and no v1 %s hierarchy", v1_controllers[i]);
        vm_pathf(cg->base[cg->n], sizeof cg->base[cg->n], "%s%s/%sagent-%s", dir, own, prefix, host);
        vm_pathf(cg->ctl[cg->n], sizeof cg->ctl[cg->n], "%s", v1_controllers[i]);
        cg->n++;
    }
    return 0;
}

static int put(const char *dir, const char *file, const char *value, verr_t *e)
{
    char p[PATH_MAX + 64];
    vm_pathf(p, sizeof p, "%s/%s", dir, file);
    FILE *f = fopen(p, "we");
    if (!f)
        return verr_set(e, 500, "InternalError", "open %s: %s", p, strerror(errno));
    int bad = fputs(value, f) < 0;
    bad |= fclose(f) != 0;
    if (bad)
        return verr_set(e, 500, "InternalError", "write %s to %s: %s", value, p, strerror(errno));
    return 0;
}

/* v2: enable the controllers for the children of every level from the root to base. */
static int v2_delegate(const char *base, verr_t *e)
{
    char p[PATH_MAX];
    vm_pathf(p, sizeof p, "%s", base);
    char *slash = strrchr(p, '/');
    if (!slash)
        return 0;
    *slash = 0;
    if (put(p, "cgroup.subtree_control", "+memory +cpu +pids", e) < 0)
        return -1;
    return put(base, "cgroup.subtree_control", "+memory +cpu +pids", e);
}

int ct_cgroup_create(const ct_cgroups_t *cg, const char *inst_dir, const char *id, const vm_spec_t *spec,
                     long pids_max, verr_t *e)
{
    char list[CT_MAX_CG * PATH_MAX] = "", dirs[CT_MAX_CG][PATH_MAX];
    size_t off = 0;
    for (size_t i = 0; i < cg->n; i++) {
        vm_pathf(dirs[i], sizeof dirs[i], "%s/%s", cg->base[i], id);
        size_t k = strlen(dirs[i]);
        memcpy(list + off, dirs[i], k);
        list[off + k] = '\n';
        off += k + 1;
    }
    char lp[PATH_MAX + 16];
    vm_pathf(lp, sizeof lp, "%s/cgroups", inst_dir);
    if (vm_write_file(lp, list, off, VM_WRITE_RUNTIME, e) < 0)
        return -1;
    char mem[32], cpu[64], pids[32];
    vm_pathf(mem, sizeof mem, "%llu", (unsigned long long)spec->memory_mib << 20);
    vm_pathf(pids, sizeof pids, "%ld", pids_max);
    for (size_t i = 0; i < cg->n; i++) {
        if (vm_mkdirs(dirs[i], 0755, e) < 0)
            return -1;
        if (cg->v2) {
            vm_pathf(cpu, sizeof cpu, "%d 100000", spec->vcpus * 100000);
            if (v2_delegate(cg->base[i], e) < 0 || put(dirs[i], "memory.max", mem, e) < 0 ||
                put(dirs[i], "cpu.max", cpu, e) < 0 || put(dirs[i], "pids.max", pids, e) < 0)
                return -1;
        } else if (!strcmp(cg->ctl[i], "memory")) {
            if (put(dirs[i], "memory.limit_in_bytes", mem, e) < 0)
                return -1;
        } else if (!strcmp(cg->ctl[i], "cpu")) {
            vm_pathf(cpu, sizeof cpu, "%d", spec->vcpus * 100000);
            if (put(dirs[i], "cpu.cfs_period_us", "100000", e) < 0 || put(dirs[i], "cpu.cfs_quota_us", cpu, e) < 0)
                return -1;
        } else if (!strcmp(cg->ctl[i], "pids")) {
            if (put(dirs[i], "pids.max", pids, e) < 0)
                return -1;
        }
    }
    return 0;
}

/* The directories recorded for an instance. */
static size_t recorded(const char *inst_dir, char dirs[CT_MAX_CG][PATH_MAX])
{
    char lp[PATH_MAX + 16];
    vm_pathf(lp, sizeof lp, "%s/cgroups", inst_dir);
    FILE *f = fopen(lp, "re");
    size_t n = 0;
    while (f && n < CT_MAX_CG && fgets(dirs[n], PATH_MAX, f)) {
        dirs[n][strcspn(dirs[n], "\n")] = 0;
        /* only what this driver makes: a directory named after the instance */
        if (!strncmp(dirs[n], V1_ROOT "/", strlen(V1_ROOT) + 1) && !strstr(dirs[n], "/../") &&
            vm_id_valid(strrchr(dirs[n], '/') + 1))
            n++;
    }
    if (f)
        fclose(f);
    return n;
}

int ct_cgroup_open_procs(const char *inst_dir, int fds[CT_MAX_CG], verr_t *e)
{
    char dirs[CT_MAX_CG][PATH_MAX];
    size_t n = recorded(inst_dir, dirs);
    for (size_t i = 0; i < n; i++) {
        char p[PATH_MAX + 16];
        vm_pathf(p, sizeof p, "%s/cgroup.procs", dirs[i]);
        if ((fds[i] = open(p, O_WRONLY | O_CLOEXEC)) < 0) {
            verr_set(e, 500, "InternalError", "open %s: %s", p, strerror(errno));
            while (i-- > 0)
                close(fds[i]);
            return -1;
        }
    }
    return (int)n;
}

/* Processes still in the instance's cgroups (sent sig unless it is 0). */
static int procs(char dirs[CT_MAX_CG][PATH_MAX], size_t n, int sig)
{
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        char p[PATH_MAX + 16];
        vm_pathf(p, sizeof p, "%s/cgroup.procs", dirs[i]);
        FILE *f = fopen(p, "re");
        int pid;
        while (f && fscanf(f, "%d", &pid) == 1) {
            count++;
            if (sig)
                kill(pid, sig);
        }
        if (f)
            fclose(f);
    }
    return count;
}

int ct_cgroup_busy(const char *inst_dir)
{
    char dirs[CT_MAX_CG][PATH_MAX];
    size_t n = recorded(inst_dir, dirs);
    return procs(dirs, n, 0) > 0;
}

int ct_cgroup_kill(const char *inst_dir, verr_t *e)
{
    char dirs[CT_MAX_CG][PATH_MAX];
    size_t n = recorded(inst_dir, dirs);
    int64_t end = vm_now_ms() + 5000;
    while (procs(dirs, n, SIGKILL) > 0) {
        if (vm_now_ms() > end)
            return verr_set(e, 500, "InternalError", "processes of %s survive SIGKILL", inst_dir);
        vm_sleep_ms(20);
    }
    return 0;
}

void ct_cgroup_signal(const char *inst_dir, int sig)
{
    char dirs[CT_MAX_CG][PATH_MAX];
    procs(dirs, recorded(inst_dir, dirs), sig);
}

int ct_cgroup_remove(const char *inst_dir, verr_t *e)
{
    if (ct_cgroup_kill(inst_dir, e) < 0)
        return -1;
    char dirs[CT_MAX_CG][PATH_MAX];
    size_t n = recorded(inst_dir, dirs);
    for (size_t i = 0; i < n; i++) {
        int64_t end = vm_now_ms() + 5000;
        /* EBUSY while the last exiting tasks leave */
        while (rmdir(dirs[i]) < 0 && errno != ENOENT) {
            if (errno != EBUSY || vm_now_ms() > end)
                return verr_set(e, 500, "InternalError", "rmdir %s: %s", dirs[i], strerror(errno));
            vm_sleep_ms(20);
        }
    }
    return 0;
}
