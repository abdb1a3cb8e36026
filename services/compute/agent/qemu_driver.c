/* qemu_driver.c - the `qemu` driver: one QEMU process per running instance, KVM when a
 * guest really runs under it here, else TCG (qemu_accel.c, cached). Direct kernel boot
 * from the spec's kernel and ramdisk; the machine image, when there is one, is the
 * backing file of the instance's own qcow2 overlay (kept while the instance is
 * stopped). The bytes it boots from are hard-linked (else copied) from the agent's image
 * cache into <state>/bases/<sha256>, so evicting them from the cache cannot break an
 * instance; a base goes when no instance lists it any more. Serial console appended to
 * <instance>/console.log; QMP on <instance>/qmp (quit to stop, system_reset to reboot).
 * QEMU daemonizes itself (-daemonize -pidfile): its parent's exit status says whether it
 * started, and the instance is nobody's child in the agent (it outlives an agent
 * restart; liveness is pid + start time). Interfaces are taps the datapath made in the
 * host namespace <prefix>h-<host>, which QEMU opens by name, so it runs in that
 * namespace (ip netns exec); with no interface, -nic none. Start waits for the guest's
 * ready line (agent.qemu.ready_line) for at most agent.qemu.boot_timeout_s, so the
 * agent's bound on parallel boots covers the boot itself.
 *
 * A tap the datapath deletes (it rebuilds an interface it finds half made or changed)
 * takes the guest's link with it: QEMU keeps its file descriptor on a device that is
 * gone, and the tap made again under the same name is another device that nothing
 * opened. Such a guest is cut off for good, so it is listed as starting and the next
 * ensure stops it and starts it again on the new tap, as a container on a stand-in made
 * anew is (container_netns.c; the vm_moving marker keeps it starting in between). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dp_inproc.h"
#include "log.h"
#include "qemu.h"

extern char **environ;

typedef struct qd {
    char dir[PATH_MAX / 2];
    char prefix[32], host[64];
    char qemu[PATH_MAX / 2], accel[8];
    char ready[128], append[512];
    int stop_timeout_ms, boot_timeout_s;
    const _Atomic int *cancel;
    pthread_mutex_t bases_mu;
} qd_t;

static int find_in_path(const char *name, char *out, size_t n)
{
    if (strchr(name, '/'))
        return access(name, X_OK) == 0 ? vm_pathf(out, n, "%s", name) : -1;
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path ? path : "/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save))
        if (vm_pathf(out, n, "%s/%s", d, name) == 0 && access(out, X_OK) == 0)
            return 0;
    return -1;
}

static const char *cfg_str(const vm_driver_cfg_t *c, const char *k, const char *def)
{
    return c->cfg ? config_str(c->cfg, k, def) : def;
}

static void *q_open(const vm_driver_cfg_t *c, verr_t *e)
{
    qd_t *d = xcalloc(1, sizeof *d);
    const char *bin = cfg_str(c, "agent.qemu.binary", "qemu-system-x86_64");
    if (find_in_path(bin, d->qemu, sizeof d->qemu) < 0) {
        verr_set(e, 501, "NotImplemented", "no %s (apt-get install qemu-system-x86)", bin);
        free(d);
        return NULL;
    }
    /* QEMU daemonizes into "/": every path it gets must be absolute */
    if (!realpath(c->state_dir, d->dir)) {
        verr_set(e, 500, "InternalError", "%s: %s", c->state_dir, strerror(errno));
        free(d);
        return NULL;
    }
    snprintf(d->prefix, sizeof d->prefix, "%s", c->prefix ? c->prefix : "virga-");
    snprintf(d->host, sizeof d->host, "%s", c->host_id ? c->host_id : "host");
    snprintf(d->ready, sizeof d->ready, "%s", cfg_str(c, "agent.qemu.ready_line", "VIRGA-GUEST-READY"));
    snprintf(d->append, sizeof d->append, "%s", cfg_str(c, "agent.qemu.append", "console=ttyS0 quiet panic=-1"));
    d->stop_timeout_ms = c->cfg ? (int)config_int(c->cfg, "agent.qemu.stop_timeout_ms", 10000) : 10000;
    d->boot_timeout_s = c->cfg ? (int)config_int(c->cfg, "agent.qemu.boot_timeout_s", 120) : 120;
    d->cancel = c->cancel;
    char why[300];
    snprintf(d->accel, sizeof d->accel, "%s",
             qemu_accel(d->dir, d->qemu, cfg_str(c, "agent.qemu.accel", "auto"), why, sizeof why));
    vlog(LOG_INFO, "qemu driver: %s, accelerator %s: %s", d->qemu, d->accel, why);
    pthread_mutex_init(&d->bases_mu, NULL);
    return d;
}

/* ---- bases: the bytes instances boot from, pinned outside the cache ---------------- */

static int pin(qd_t *d, const vm_file_t *f, char *out, size_t n, verr_t *e)
{
    if (vm_pathf(out, n, "%s/bases/%s", d->dir, f->sha256) < 0)
        return verr_set(e, 500, "InternalError", "state dir path too long");
    struct stat sb;
    if (stat(out, &sb) == 0)
        return 0;
    char dir[PATH_MAX], tmp[PATH_MAX + 16];
    vm_pathf(dir, sizeof dir, "%s/bases", d->dir);
    if (vm_mkdirs(dir, 0700, e) < 0)
        return -1;
    if (link(f->path, out) == 0 || errno == EEXIST)
        return 0;
    vm_pathf(tmp, sizeof tmp, "%s.partial", out);
    char *argv[] = {"cp", "--reflink=auto", (char *)f->path, tmp, NULL};
    if (vm_run(argv, e) < 0)
        return -1;
    if (rename(tmp, out) < 0)
        return verr_set(e, 500, "InternalError", "rename %s: %s", tmp, strerror(errno));
    return 0;
}

/* Remove bases no instance lists in its "bases" file. bases_mu held. */
static void collect_bases(qd_t *d)
{
    size_t n = 0;
    char **ids = vm_state_ids(d->dir, &n);
    char *used = xstrdup("");
    for (size_t i = 0; i < n; i++) {
        char p[PATH_MAX], *buf = NULL;
        size_t len;
        uint64_t total;
        verr_t e;
        vm_pathf(p, sizeof p, "%s/%s/bases", d->dir, ids[i]);
        if (vm_file_tail(p, 4096, &buf, &len, &total, &e) == 0) {
            char *u = xasprintf("%s%s", used, buf);
            free(used);
            used = u;
        }
        free(buf);
        free(ids[i]);
    }
    free(ids);
    char dir[PATH_MAX];
    vm_pathf(dir, sizeof dir, "%s/bases", d->dir);
    DIR *dh = opendir(dir);
    struct dirent *de;
    while (dh && (de = readdir(dh))) {
        if (de->d_name[0] == '.' || strstr(used, de->d_name))
            continue;
        char p[PATH_MAX + 80];
        vm_pathf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (dh)
        closedir(dh);
    free(used);
}

/* A new instance: pinned bases, the disk overlay, the state. bases_mu held. */
static int create(qd_t *d, const vm_spec_t *s, const char *inst, vm_state_t *st, verr_t *e)
{
    if (!s->kernel.path[0] && !s->image.path[0])
        return verr_set(e, 400, "InvalidParameterValue", "%s: the qemu driver needs a kernel or a disk image", s->id);
    if (s->image.path[0] && strcmp(s->image.format, "qcow2") && strcmp(s->image.format, "raw"))
        return verr_set(e, 400, "InvalidParameterValue", "%s: a machine image is qcow2 or raw, not '%s'", s->id,
                        s->image.format);
    if (vm_mkdirs(inst, 0700, e) < 0)
        return -1;
    char list[4 * 66] = "", base[PATH_MAX];
    const vm_file_t *files[] = {&s->kernel, &s->ramdisk, &s->image};
    for (size_t i = 0; i < ARRAY_LEN(files); i++) {
        if (!files[i]->path[0])
            continue;
        if (pin(d, files[i], base, sizeof base, e) < 0)
            return -1;
        strcat(list, files[i]->sha256);
        strcat(list, "\n");
    }
    char p[PATH_MAX + 16];
    vm_pathf(p, sizeof p, "%s/bases", inst);
    if (vm_write_file(p, list, strlen(list), VM_WRITE_RUNTIME, e) < 0)
        return -1;
    if (s->image.path[0]) {
        char disk[PATH_MAX + 16], size[32];
        vm_pathf(disk, sizeof disk, "%s/disk.qcow2", inst);
        snprintf(size, sizeof size, "%dG", s->disk_gib);
        char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-F", (char *)s->image.format, "-b", base, disk,
                        s->disk_gib > 0 ? size : NULL, NULL};
        if (vm_run(argv, e) < 0)
            return -1;
    }
    memset(st, 0, sizeof *st);
    st->power = VM_POWER_STOPPED;
    st->reboot_seq = s->reboot_seq;
    snprintf(st->image_sha256, sizeof st->image_sha256, "%s", s->image.sha256);
    /* durable: an instance whose state cannot be read is made again, and making it again
     * is a new disk.qcow2 over the guest's (its later writes only change pid and power) */
    return vm_state_write(inst, st, VM_WRITE_DURABLE, e);
}

/* ---- start, stop, reboot ------------------------------------------------------------ */

typedef struct args {
    char *v[96];
    int n;
} args_t;

static void add(args_t *a, const char *s)
{
    if (a->n < (int)ARRAY_LEN(a->v) - 1)
        a->v[a->n++] = xstrdup(s);
}

static void addf(args_t *a, const char *fmt, const char *s)
{
    char buf[PATH_MAX * 2];
    vm_pathf(buf, sizeof buf, fmt, s);
    add(a, buf);
}

static void args_free(args_t *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
}

/* The size of the console now: where a boot's lines start. */
static uint64_t console_size(const char *inst)
{
    char p[PATH_MAX + 16];
    vm_pathf(p, sizeof p, "%s/console.log", inst);
    struct stat sb;
    return stat(p, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

/* Wait for the ready line after offset: 0 when seen or when the wait ends (the guest
 * boots on, compute sees it running), -1 when QEMU died. The wait also ends when the
 * agent stops (cancel) or no longer wants the instance running (spec.abandon): a
 * terminate during a boot once waited for this wait's whole timeout. */
static int wait_ready(qd_t *d, const vm_spec_t *s, const char *inst, uint64_t offset, const vm_state_t *st,
                      verr_t *e)
{
    if (!d->ready[0])
        return 0;
    char p[PATH_MAX + 16];
    vm_pathf(p, sizeof p, "%s/console.log", inst);
    int64_t end = vm_now_ms() + (int64_t)d->boot_timeout_s * 1000;
    while (vm_now_ms() < end && !(d->cancel && atomic_load(d->cancel))) {
        if (vm_spec_abandoned(s)) {
            vlog(LOG_INFO, "%s: boot wait ended, the instance is no longer wanted running", s->id);
            return 0;
        }
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char buf[65536];
            ssize_t r = pread(fd, buf, sizeof buf - 1, (off_t)offset);
            close(fd);
            if (r > 0) {
                buf[r] = 0;
                for (ssize_t i = 0; i < r; i++)   /* the console may carry NULs */
                    if (!buf[i])
                        buf[i] = ' ';
                if (strstr(buf, d->ready))
                    return 0;
            }
        }
        if (!vm_proc_is(st->pid, st->start_time))
            return verr_set(e, 500, "InternalError", "QEMU exited during the boot (see the console)");
        vm_sleep_ms(100);
    }
    return 0;
}

/* On a thread inside the host's namespace: the first of the spec's taps not there yet
 * (its index), or -1 when all are. */
static int first_missing_tap(void *p)
{
    const vm_spec_t *s = p;
    for (size_t i = 0; i < s->n_ifaces; i++)
        if (!s->ifaces[i].device[0] || !if_nametoindex(s->ifaces[i].device))
            return (int)i;
    return -1;
}

/* The host's namespace and every tap the spec plugs into: looked up in the namespace
 * in-process (an `ip netns exec ... ip link show` a tap was two processes a boot, and
 * their output went to the agent's log). */
static int netns_ready(qd_t *d, const vm_spec_t *s, char *ns, size_t n, verr_t *e)
{
    ns[0] = 0;
    if (!s->n_ifaces)
        return 0;
    vm_pathf(ns, n, "%sh-%s", d->prefix, d->host);
    char p[PATH_MAX];
    vm_pathf(p, sizeof p, "/run/netns/%s", ns);
    if (access(p, F_OK) < 0)
        return verr_set(e, 503, "NetworkNotReady", "no host network namespace %s yet", ns);
    char why[600] = "";
    int missing = dp_in_netns(ns, first_missing_tap, (void *)s, why, sizeof why);
    if (why[0])
        return verr_set(e, 503, "NetworkNotReady", "host network namespace %s: %s", ns, why);
    if (missing >= 0)
        return verr_set(e, 503, "NetworkNotReady", "no tap %s in %s yet", s->ifaces[missing].device, ns);
    return 0;
}

/* Run QEMU (daemonizing) with its output in <inst>/qemu.log; its status says whether
 * the VM started. */
static int spawn_qemu(const char *inst, args_t *a, verr_t *e)
{
    char log[PATH_MAX + 16];
    vm_pathf(log, sizeof log, "%s/qemu.log", inst);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, a->v[0], &fa, NULL, a->v, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        return verr_set(e, 500, "InternalError", "%s: %s", a->v[0], strerror(rc));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return verr_set(e, 500, "InternalError", "wait for QEMU: %s", strerror(errno));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    char *buf = NULL;
    size_t len;
    uint64_t total;
    verr_t ig;
    vm_file_tail(log, 300, &buf, &len, &total, &ig);
    verr_set(e, 500, "InternalError", "QEMU did not start: %s", buf ? buf : "");
    free(buf);
    return -1;
}

static int start(qd_t *d, const vm_spec_t *s, const char *inst, vm_state_t *st, verr_t *e)
{
    char ns[128], mem[16], cpus[16], pidfile[PATH_MAX + 16], disk[PATH_MAX + 16], kernel[PATH_MAX],
        ramdisk[PATH_MAX];
    if (netns_ready(d, s, ns, sizeof ns, e) < 0)
        return -1;
    vm_pathf(pidfile, sizeof pidfile, "%s/qemu.pid", inst);
    unlink(pidfile);
    args_t a = {0};
    if (ns[0]) {
        add(&a, "ip");
        add(&a, "netns");
        add(&a, "exec");
        add(&a, ns);
    }
    add(&a, d->qemu);
    add(&a, "-name");
    add(&a, s->id);
    add(&a, "-accel");
    add(&a, d->accel);
    if (!strcmp(d->accel, "kvm")) {
        add(&a, "-cpu");
        add(&a, "host");
    }
    snprintf(mem, sizeof mem, "%d", s->memory_mib);
    snprintf(cpus, sizeof cpus, "%d", s->vcpus);
    const char *fixed[] = {"-m", mem, "-smp", cpus, "-nodefaults", "-no-user-config", "-display", "none",
                           "-daemonize", "-pidfile", pidfile, "-serial", "chardev:con"};
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        add(&a, fixed[i]);
    add(&a, "-chardev");
    addf(&a, "file,id=con,path=%s/console.log,append=on", inst);
    add(&a, "-qmp");
    addf(&a, "unix:%s/qmp,server=on,wait=off", inst);
    if (s->kernel.path[0]) {
        pin(d, &s->kernel, kernel, sizeof kernel, e);
        add(&a, "-kernel");
        add(&a, kernel);
        add(&a, "-append");
        add(&a, d->append);
        if (s->ramdisk.path[0] && pin(d, &s->ramdisk, ramdisk, sizeof ramdisk, e) == 0) {
            add(&a, "-initrd");
            add(&a, ramdisk);
        }
    }
    vm_pathf(disk, sizeof disk, "%s/disk.qcow2", inst);
    if (access(disk, F_OK) == 0) {
        add(&a, "-drive");
        addf(&a, "file=%s,format=qcow2,if=virtio", disk);
    }
    qemu_nics_t nics = {0};
    for (size_t i = 0; i < s->n_ifaces && i < ARRAY_LEN(nics.v); i++) {
        char nd[200];
        qemu_nic_t *x = &nics.v[nics.n++];
        qemu_nic_ids(s->ifaces[i].device, x);
        snprintf(nd, sizeof nd, "tap,id=%s,ifname=%s,script=no,downscript=no", x->netdev, s->ifaces[i].device);
        add(&a, "-netdev");
        add(&a, nd);
        snprintf(nd, sizeof nd, "virtio-net-pci,netdev=%s,id=%s%s%s", x->netdev, x->device,
                 s->ifaces[i].mac[0] ? ",mac=" : "", s->ifaces[i].mac);
        add(&a, "-device");
        add(&a, nd);
    }
    if (!s->n_ifaces) {
        add(&a, "-nic");
        add(&a, "none");
    }
    uint64_t offset = console_size(inst);
    int rc = spawn_qemu(inst, &a, e);
    args_free(&a);
    if (rc < 0)
        return -1;
    char *buf = NULL;
    size_t len;
    uint64_t total;
    if (vm_file_tail(pidfile, 32, &buf, &len, &total, e) < 0)
        return -1;
    st->pid = (pid_t)atoi(buf);
    free(buf);
    st->start_time = vm_proc_start_time(st->pid);
    verr_t ig;
    vm_state_write(inst, st, VM_WRITE_RUNTIME, &ig);   /* the pid, before the wait: a crash now still knows it */
    nics.start_time = st->start_time;
    qemu_nics_write(inst, &nics, &ig);   /* else rebuilt from the command line */
    return wait_ready(d, s, inst, offset, st, e);
}

static void qmp_path(const char *inst, char *out, size_t n) { vm_pathf(out, n, "%s/qmp", inst); }

/* 1 when the QEMU of pid holds a tap whose device is gone. The kernel names the device a
 * /dev/net/tun descriptor is attached to in its fdinfo (`iff:\t<name>`), and names none
 * once the device is deleted: that is the cut-off guest, whatever the tap's new self. */
static int tap_lost(pid_t pid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    int lost = 0;
    struct dirent *de;
    while (!lost && (de = readdir(dp))) {
        char p[PATH_MAX], target[32], info[512];
        vm_pathf(p, sizeof p, "%s/%s", dir, de->d_name);
        ssize_t n = readlink(p, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = 0;
        if (strcmp(target, "/dev/net/tun"))
            continue;
        vm_pathf(p, sizeof p, "/proc/%d/fdinfo/%s", (int)pid, de->d_name);
        if (vm_read_small(p, info, sizeof info) <= 0)
            continue;
        const char *iff = strstr(info, "iff:");
        if (iff) {
            iff += 4;
            iff += strspn(iff, " \t");
            lost = *iff == '\n' || !*iff;
        }
    }
    closedir(dp);
    return lost;
}

/* The instance's QEMU even when state.json does not name it (an agent killed between
 * QEMU's start and the state write): the pid QEMU wrote, if that process is a QEMU with
 * this instance's QMP socket on its command line. Updates *st; 1 when it runs. */
static int alive(const char *inst, vm_state_t *st)
{
    if (vm_proc_is(st->pid, st->start_time))
        return 1;
    char p[PATH_MAX + 16], *buf = NULL;
    size_t len;
    uint64_t total;
    verr_t ig;
    vm_pathf(p, sizeof p, "%s/qemu.pid", inst);
    if (vm_file_tail(p, 32, &buf, &len, &total, &ig) < 0)
        return 0;
    pid_t pid = (pid_t)atoi(buf);
    free(buf);
    uint64_t t = vm_proc_start_time(pid);
    if (!t)
        return 0;
    char cmd[8192], q[PATH_MAX + 8];
    snprintf(p, sizeof p, "/proc/%d/cmdline", (int)pid);
    ssize_t r = vm_read_small(p, cmd, sizeof cmd);
    if (r <= 0)
        return 0;
    for (ssize_t i = 0; i < r; i++)
        if (!cmd[i])
            cmd[i] = ' ';
    cmd[r] = 0;
    qmp_path(inst, q, sizeof q);
    if (!strstr(cmd, q))
        return 0;
    st->pid = pid;
    st->start_time = t;
    return 1;
}

static int stop(qd_t *d, const char *inst, vm_state_t *st, verr_t *e)
{
    char q[PATH_MAX + 8];
    qmp_path(inst, q, sizeof q);
    verr_t ig;
    if (vm_proc_is(st->pid, st->start_time))
        qemu_qmp(q, "quit", 2000, &ig);   /* else SIGTERM, then SIGKILL */
    if (vm_proc_stop(st->pid, st->start_time, d->stop_timeout_ms) < 0)
        return verr_set(e, 500, "InternalError", "QEMU %d does not stop", (int)st->pid);
    st->pid = 0;
    st->start_time = 0;
    return 0;
}

static int reboot(qd_t *d, const vm_spec_t *s, const char *inst, vm_state_t *st, verr_t *e)
{
    char q[PATH_MAX + 8];
    qmp_path(inst, q, sizeof q);
    uint64_t offset = console_size(inst);
    if (qemu_qmp(q, "system_reset", 5000, e) == 0)
        return wait_ready(d, s, inst, offset, st, e);
    /* no monitor: a cold reboot */
    if (stop(d, inst, st, e) < 0)
        return -1;
    return start(d, s, inst, st, e);
}

static int plug_nics(qd_t *d, const vm_spec_t *s, const char *inst, const vm_state_t *st, verr_t *e)
{
    qemu_nics_t have;
    qemu_nics_read(inst, st, &have);
    if (qemu_nics_sig(&have) == vm_spec_nics_sig(s))
        return 0;
    char ns[128], q[PATH_MAX + 8];
    if (qemu_nics_missing(&have, s) && netns_ready(d, s, ns, sizeof ns, e) < 0)
        return -1;   /* a tap to plug in is not made yet: the next pass */
    qmp_path(inst, q, sizeof q);
    return qemu_nics_converge(inst, q, s, &have, e);
}

static int q_ensure(void *p, const vm_spec_t *s, verr_t *e)
{
    qd_t *d = p;
    char inst[PATH_MAX];
    vm_inst_dir(d->dir, s->id, inst, sizeof inst);
    vm_state_t st;
    if (vm_state_read(inst, &st, NULL) < 0) {
        pthread_mutex_lock(&d->bases_mu);
        int rc = create(d, s, inst, &st, e);
        pthread_mutex_unlock(&d->bases_mu);
        if (rc < 0) {
            verr_t ig;
            vm_rmtree(inst, &ig);
            return -1;
        }
    }
    int up = alive(inst, &st), rc = 0;
    /* interfaces attached or detached while it runs: plugged in or taken out first, so
     * a tap the datapath deleted after its detach does not count as a lost one below */
    if (up && s->power == VM_POWER_RUNNING && plug_nics(d, s, inst, &st, e) < 0)
        return -1;
    /* cut off from its tap (above): started again once the new tap is there */
    if (up && s->power == VM_POWER_RUNNING && tap_lost(st.pid)) {
        char ns[128];
        if (netns_ready(d, s, ns, sizeof ns, e) < 0 || vm_moving_mark(inst, e) < 0)
            return -1;
        log_warn("%s: its tap was made anew; starting it again on the new one", s->id);
        if (stop(d, inst, &st, e) < 0)
            return -1;
        up = 0;
    }
    if (s->power == VM_POWER_RUNNING && !up)
        rc = start(d, s, inst, &st, e);
    else if (s->power == VM_POWER_RUNNING && s->reboot_seq > st.reboot_seq)
        rc = reboot(d, s, inst, &st, e);
    else if (s->power == VM_POWER_STOPPED && up)
        rc = stop(d, inst, &st, e);
    if (rc < 0)
        return -1;
    st.power = s->power;
    if (s->reboot_seq > st.reboot_seq)
        st.reboot_seq = s->reboot_seq;
    if (vm_state_write(inst, &st, VM_WRITE_RUNTIME, e) < 0)
        return -1;
    vm_moving_clear(inst);
    return 0;
}

static int q_list(void *p, vm_status_t **out, size_t *n, verr_t *e)
{
    (void)e;
    qd_t *d = p;
    size_t k = 0;
    char **ids = vm_state_ids(d->dir, &k);
    *out = xcalloc(k + 1, sizeof **out);
    for (size_t i = 0; i < k; i++) {
        char inst[PATH_MAX];
        vm_state_t st;
        vm_inst_dir(d->dir, ids[i], inst, sizeof inst);
        int have = vm_state_read(inst, &st, NULL) == 0;
        vm_status_t *x = &(*out)[(*n)++];
        snprintf(x->id, sizeof x->id, "%s", ids[i]);
        x->reboot_seq = have ? st.reboot_seq : 0;
        /* one cut off from its tap, or between the stop and the start that move it, or
         * stopped by the host (vm_moving.c), is starting */
        int up = have && alive(inst, &st);
        if (up) {
            qemu_nics_t nics;
            qemu_nics_read(inst, &st, &nics);
            x->nics_known = 1;
            x->nics_sig = qemu_nics_sig(&nics);
        }
        if (up && !tap_lost(st.pid))
            x->power = VM_POWER_RUNNING;
        else if (up || (have && (vm_moving(inst) || vm_lost_with_host(inst, &st))))
            x->power = VM_POWER_STARTING;
        else
            x->power = VM_POWER_STOPPED;
        free(ids[i]);
    }
    free(ids);
    return 0;
}

static int q_remove(void *p, const char *id, verr_t *e)
{
    qd_t *d = p;
    char inst[PATH_MAX];
    vm_inst_dir(d->dir, id, inst, sizeof inst);
    struct stat sb;
    if (lstat(inst, &sb) < 0)
        return 0;
    vm_state_t st = {0};
    vm_state_read(inst, &st, NULL);
    alive(inst, &st);
    if (stop(d, inst, &st, e) < 0)
        return -1;
    if (vm_rmtree(inst, e) < 0)
        return -1;
    pthread_mutex_lock(&d->bases_mu);
    collect_bases(d);
    pthread_mutex_unlock(&d->bases_mu);
    return 0;
}

static int q_console(void *p, const char *id, size_t max, char **buf, size_t *len, uint64_t *total, verr_t *e)
{
    qd_t *d = p;
    char path[PATH_MAX + 32];
    vm_pathf(path, sizeof path, "%s/%s/console.log", d->dir, id);
    return vm_console_tail(path, max, buf, len, total, e);
}

static void q_close(void *p)
{
    qd_t *d = p;
    if (!d)
        return;
    pthread_mutex_destroy(&d->bases_mu);
    free(d);
}

/* The instance's disk (its overlay and the base under it) as one standalone qcow2; a
 * running VM's vCPUs are stopped over QMP meanwhile unless pause is 0 (qemu-img reads
 * the image QEMU holds open with -U, force-share). */
static int q_export(void *p, const char *id, const char *path, int pause, verr_t *e)
{
    qd_t *d = p;
    char inst[PATH_MAX], disk[PATH_MAX + 16], q[PATH_MAX + 8];
    vm_inst_dir(d->dir, id, inst, sizeof inst);
    vm_pathf(disk, sizeof disk, "%s/disk.qcow2", inst);
    qmp_path(inst, q, sizeof q);
    struct stat sb;
    if (stat(disk, &sb) < 0)
        return verr_set(e, 404, "InvalidInstanceID.NotFound", "instance %s has no disk on this host", id);
    vm_state_t st = {0};
    vm_state_read(inst, &st, NULL);
    verr_t ig;
    int paused = pause && alive(inst, &st) && qemu_qmp(q, "stop", 5000, &ig) == 0;
    char *argv[] = {"qemu-img", "convert", "-U", "-O", "qcow2", disk, (char *)path, NULL};
    int rc = vm_run(argv, e);
    if (paused)
        qemu_qmp(q, "cont", 5000, &ig);
    return rc;
}

const vm_driver_ops_t vm_qemu_driver = {
    .name = "qemu",
    .about = "QEMU virtual machines (KVM when it works, else TCG), QMP, serial console to a file",
    .flags = VM_DRV_NEEDS_IMAGES,
    .open = q_open,
    .ensure = q_ensure,
    .list = q_list,
    .remove = q_remove,
    .console = q_console,
    .close = q_close,
    .export_disk = q_export,
};
