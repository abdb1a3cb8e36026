/* container_driver.c - the `container` driver: an instance is a process tree in its own
 * pid, mount, uts, ipc and network namespaces (the network namespace the datapath made
 * for its interface, <prefix>i-<host>.<eni>, or a new empty one), on an overlay whose
 * lower layer is the image's root filesystem unpacked once per SHA-256
 * (<state>/images/<sha256>) and whose upper layer is the instance's own (kept while it
 * is stopped, like a disk), with cgroup limits for memory, CPU and pids from the instance
 * type (container_cgroup.c) and the console (stdin a FIFO, stdout/stderr a file).
 * Start: container_start.c. Stop: SIGTERM to its init, SIGKILL after
 * agent.container.stop_timeout_ms (a busybox init ignores SIGTERM as PID 1), then
 * SIGKILL to whatever is left in its cgroups. Reboot: stop + start. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "container.h"
#include "log.h"

typedef struct ctd {
    char dir[PATH_MAX / 2];
    char prefix[32], host[64];
    int stop_timeout_ms;
    long pids_max;
    ct_cgroups_t cg;
    pthread_mutex_t images_mu;    /* unpacking and collecting base layers */
    int base_keep_s;              /* an unused base layer is kept this long after its last use */
    int64_t collected_ms;         /* the last collect_bases */
    ct_seen_t *seen;              /* what listings keep (container_seen.c) */
} ctd_t;

static void *ct_open(const vm_driver_cfg_t *c, verr_t *e)
{
    if (geteuid() != 0) {
        verr_set(e, 501, "NotImplemented", "the container driver needs root (namespaces, mounts, cgroups)");
        return NULL;
    }
    ctd_t *d = xcalloc(1, sizeof *d);
    vm_pathf(d->dir, sizeof d->dir, "%s", c->state_dir);
    vm_pathf(d->prefix, sizeof d->prefix, "%s", c->prefix ? c->prefix : "virga-");
    vm_pathf(d->host, sizeof d->host, "%s", c->host_id ? c->host_id : "host");
    d->stop_timeout_ms = c->cfg ? (int)config_int(c->cfg, "agent.container.stop_timeout_ms", 5000) : 5000;
    d->pids_max = c->cfg ? config_int(c->cfg, "agent.container.pids_max", 1024) : 1024;
    d->base_keep_s = c->cfg ? (int)config_int(c->cfg, "agent.container.base_keep_s", 600) : 600;
    if (ct_cgroup_detect(&d->cg, d->prefix, d->host, e) < 0) {
        free(d);
        return NULL;
    }
    pthread_mutex_init(&d->images_mu, NULL);
    d->seen = ct_seen_new();
    return d;
}

static void base_dir(ctd_t *d, const char *sha, char *out, size_t n) { vm_pathf(out, n, "%s/images/%s", d->dir, sha); }

/* The image's root filesystem, unpacked once (into a temporary name, then renamed, so
 * a crash never leaves a half-unpacked base under the real name). Its modification time
 * is its last use (collect_bases). images_mu held. */
static int unpack(ctd_t *d, const vm_file_t *img, verr_t *e)
{
    char base[PATH_MAX], tmp[PATH_MAX + 16];
    base_dir(d, img->sha256, base, sizeof base);
    struct stat sb;
    /* used now (tar gave a new base the archive's own time); failing only shortens its keep */
    if (stat(base, &sb) == 0)
        return utimensat(AT_FDCWD, base, NULL, 0), 0;
    vm_pathf(tmp, sizeof tmp, "%s.partial", base);
    if (vm_rmtree(tmp, e) < 0 || vm_mkdirs(tmp, 0755, e) < 0)
        return -1;
    /* GNU tar: no absolute names, no members through "..", compression detected */
    char *argv[] = {"tar", "-xpf", (char *)img->path, "-C", tmp, "--numeric-owner", NULL};
    if (vm_run(argv, e) < 0) {
        verr_t ig;
        vm_rmtree(tmp, &ig);
        return verr_recode(e, 400, "InvalidParameterValue");
    }
    if (rename(tmp, base) < 0)
        return verr_set(e, 500, "InternalError", "rename %s: %s", tmp, strerror(errno));
    utimensat(AT_FDCWD, base, NULL, 0);
    return 0;
}

/* Is a base layer under images last used at keep_until or before? */
static int any_base_older(const char *images, time_t keep_until)
{
    DIR *dh = opendir(images);
    if (!dh)
        return 0;
    int old = 0;
    struct dirent *de;
    while (!old && (de = readdir(dh))) {
        struct stat sb;
        if (strlen(de->d_name) == 64)
            old = fstatat(dirfd(dh), de->d_name, &sb, 0) < 0 || sb.st_mtime <= keep_until;
    }
    closedir(dh);
    return old;
}

/* Remove base layers no instance uses any more and none was made from for
 * agent.container.base_keep_s: unpacking busybox's is 300-600 ms, and a host whose last
 * instance of an image went (a sequential launch, terminate, launch) unpacked it again
 * for the next one (docs/performance.md). images_mu held. */
static void collect_bases(ctd_t *d)
{
    d->collected_ms = vm_now_ms();
    time_t keep_until = time(NULL) - d->base_keep_s;
    char images[PATH_MAX];
    vm_pathf(images, sizeof images, "%s/images", d->dir);
    /* only a base unused for its keep can go: with none that old (a burst of launches and
     * terminates, which touch theirs), every instance's state need not be read (each
     * terminate read them all: N terminates read N*N/2 state files) */
    if (!any_base_older(images, keep_until))
        return;
    size_t n = 0;
    char **ids = vm_state_ids(d->dir, &n);
    char (*used)[65] = xcalloc(n + 1, sizeof *used);
    for (size_t i = 0; i < n; i++) {
        char id_dir[PATH_MAX];
        vm_state_t st;
        vm_inst_dir(d->dir, ids[i], id_dir, sizeof id_dir);
        if (vm_state_read(id_dir, &st, NULL) == 0)
            vm_pathf(used[i], sizeof used[i], "%s", st.image_sha256);
        free(ids[i]);
    }
    free(ids);
    DIR *dh = opendir(images);
    struct dirent *de;
    while (dh && (de = readdir(dh))) {
        if (strlen(de->d_name) != 64)
            continue;
        int in_use = 0;
        for (size_t i = 0; i < n && !in_use; i++)
            in_use = !strcmp(used[i], de->d_name);
        char p[PATH_MAX + 80];
        vm_pathf(p, sizeof p, "%s/%s", images, de->d_name);
        struct stat sb;
        if (!in_use && (stat(p, &sb) < 0 || sb.st_mtime <= keep_until)) {
            verr_t e;
            vm_rmtree(p, &e);
        }
    }
    if (dh)
        closedir(dh);
    free(used);
}

static int running(const char *inst_dir, const vm_state_t *st)
{
    return vm_proc_is(st->pid, st->start_time) || ct_cgroup_busy(inst_dir);
}

static int stop(ctd_t *d, const char *inst_dir, vm_state_t *st, verr_t *e)
{
    vm_proc_stop(st->pid, st->start_time, d->stop_timeout_ms);
    if (ct_cgroup_kill(inst_dir, e) < 0)
        return -1;
    st->pid = 0;
    st->start_time = 0;
    return 0;
}

/* The stand-in namespace of the instance's interface into netns ("" without one), or
 * NetworkNotReady (tried again soon) while the datapath has not made it whole: a guest
 * started before would find no address (and no metadata service) and run without its
 * user-data. */
static int network_ready(ctd_t *d, const vm_spec_t *spec, char *netns, size_t n, verr_t *e)
{
    netns[0] = 0;
    if (!spec->n_ifaces)
        return 0;
    vm_pathf(netns, n, "/run/netns/%si-%s.%s", d->prefix, d->host, spec->ifaces[0].eni_id);
    struct stat sb;
    if (stat(netns, &sb) < 0)
        return verr_set(e, 503, "NetworkNotReady", "no network namespace %s yet", netns + 11);
    if (spec->ifaces[0].ip[0] && !ct_netns_has_ip(netns, spec->ifaces[0].ip))
        return verr_set(e, 503, "NetworkNotReady", "no address %s with a carrier in network namespace %s yet",
                        spec->ifaces[0].ip, netns + 11);
    return 0;
}

static int start(ctd_t *d, const vm_spec_t *spec, const char *inst_dir, vm_state_t *st, verr_t *e)
{
    ct_launch_t l = {.stop_timeout_ms = d->stop_timeout_ms};
    char base[PATH_MAX];
    base_dir(d, st->image_sha256, base, sizeof base);
    vm_pathf(l.inst_dir, sizeof l.inst_dir, "%s", inst_dir);
    vm_pathf(l.root, sizeof l.root, "%s/root", inst_dir);
    vm_pathf(l.overlay_opts, sizeof l.overlay_opts, "lowerdir=%s,upperdir=%s/upper,workdir=%s/work", base, inst_dir,
             inst_dir);
    vm_pathf(l.hostname, sizeof l.hostname, "%s", spec->hostname[0] ? spec->hostname : "virga");
    /* each step's time in the log: a start shares the machine with the datapath's apply
     * of its interface (docs/performance.md) */
    int64_t t0 = vm_now_ms();
    if (network_ready(d, spec, l.netns, sizeof l.netns, e) < 0)
        return -1;
    int64_t t_net = vm_now_ms();
    if (ct_cgroup_create(&d->cg, inst_dir, spec->id, spec, d->pids_max, e) < 0)
        return -1;
    int64_t t_cg = vm_now_ms();
    pid_t pid = 0;
    uint64_t t = 0;
    if (ct_start(&l, &pid, &t, e) < 0) {
        verr_t ig;
        ct_cgroup_kill(inst_dir, &ig);
        return -1;
    }
    st->pid = pid;
    st->start_time = t;
    log_info("%s: started (network checked %lld ms, cgroups %lld ms, start %lld ms)", spec->id,
             (long long)(t_net - t0), (long long)(t_cg - t_net), (long long)(vm_now_ms() - t_cg));
    return ct_netns_note(inst_dir, l.netns, e);
}

/* A new instance's directory and layers; images_mu held. */
static int create(ctd_t *d, const vm_spec_t *spec, const char *inst_dir, vm_state_t *st, verr_t *e)
{
    const vm_file_t *img = &spec->image;
    if (!img->path[0] || strlen(img->sha256) != 64)
        return verr_set(e, 400, "InvalidParameterValue", "%s: the container driver needs a root filesystem image",
                        spec->id);
    if (strcmp(img->format, "tar.gz") && strcmp(img->format, "tar") && img->format[0])
        return verr_set(e, 400, "InvalidParameterValue", "%s: a container image is a tar.gz root filesystem, not %s",
                        spec->id, img->format);
    if (unpack(d, img, e) < 0)
        return -1;
    char p[PATH_MAX + 16];
    const char *sub[] = {"upper", "work", "root"};
    for (size_t i = 0; i < ARRAY_LEN(sub); i++) {
        vm_pathf(p, sizeof p, "%s/%s", inst_dir, sub[i]);
        if (vm_mkdirs(p, 0755, e) < 0)
            return -1;
    }
    memset(st, 0, sizeof *st);
    st->power = VM_POWER_STOPPED;
    st->reboot_seq = spec->reboot_seq;
    vm_pathf(st->image_sha256, sizeof st->image_sha256, "%s", img->sha256);
    return vm_state_write(inst_dir, st, VM_WRITE_RUNTIME, e);
}

static int ct_ensure(void *p, const vm_spec_t *spec, verr_t *e)
{
    ctd_t *d = p;
    char inst_dir[PATH_MAX];
    vm_inst_dir(d->dir, spec->id, inst_dir, sizeof inst_dir);
    vm_state_t st;
    if (vm_state_read(inst_dir, &st, NULL) < 0) {
        int64_t t0 = vm_now_ms();
        pthread_mutex_lock(&d->images_mu);
        int rc = create(d, spec, inst_dir, &st, e);
        pthread_mutex_unlock(&d->images_mu);
        log_info("%s: made (%lld ms)", spec->id, (long long)(vm_now_ms() - t0));
        if (rc < 0) {
            verr_t ig;
            vm_rmtree(inst_dir, &ig);
            return -1;
        }
    }
    int up = running(inst_dir, &st);
    int rc = 0;
    /* cut off from its network (container_netns.c): started again once the new stand-in
     * is whole, and listed as starting meanwhile, never as stopped (compute would take a
     * stopped listing for a shutdown from inside) */
    int moved = up && spec->power == VM_POWER_RUNNING && ct_netns_moved(inst_dir, &st);
    if (moved) {
        char netns[PATH_MAX];
        if (network_ready(d, spec, netns, sizeof netns, e) < 0 || vm_moving_mark(inst_dir, e) < 0)
            return -1;
        log_warn("%s: its network namespace was made anew; starting it again in the new one", spec->id);
    }
    if (spec->power == VM_POWER_RUNNING) {
        if (up && (moved || spec->reboot_seq > st.reboot_seq))
            rc = stop(d, inst_dir, &st, e);
        if (rc == 0 && (!up || moved || spec->reboot_seq > st.reboot_seq))
            rc = start(d, spec, inst_dir, &st, e);
    } else if (up) {
        rc = stop(d, inst_dir, &st, e);
    }
    if (rc < 0)
        return -1;
    st.power = spec->power;
    if (spec->reboot_seq > st.reboot_seq)
        st.reboot_seq = spec->reboot_seq;
    if (vm_state_write(inst_dir, &st, VM_WRITE_RUNTIME, e) < 0)
        return -1;
    vm_moving_clear(inst_dir);
    return 0;
}

static int ct_list(void *p, vm_status_t **out, size_t *n, verr_t *e)
{
    (void)e;
    ctd_t *d = p;
    /* a base kept past its time with no removal since: collected by a listing, once a
     * minute at most, never waiting behind an unpack */
    if (vm_now_ms() - d->collected_ms > 60000 && pthread_mutex_trylock(&d->images_mu) == 0) {
        collect_bases(d);
        pthread_mutex_unlock(&d->images_mu);
    }
    size_t k = 0;
    char **ids = vm_state_ids(d->dir, &k);
    *out = xcalloc(k + 1, sizeof **out);
    ct_seen_begin(d->seen);
    for (size_t i = 0; i < k; i++) {
        char inst_dir[PATH_MAX];
        vm_state_t st;
        vm_inst_dir(d->dir, ids[i], inst_dir, sizeof inst_dir);
        /* a directory without state is a create that crashed: list it, so it is removed */
        int up = 0, moved = 0;
        int have = ct_seen_status(d->seen, inst_dir, ids[i], &st, &up, &moved) == 0;
        vm_status_t *x = &(*out)[(*n)++];
        vm_pathf(x->id, sizeof x->id, "%s", ids[i]);
        x->reboot_seq = have ? st.reboot_seq : 0;
        /* one cut off from its network, or between the stop and the start that move it
         * (ct_ensure), or stopped by the host (vm_moving.c), is starting */
        if (have && up && !moved)
            x->power = VM_POWER_RUNNING;
        else if ((have && up) || (have && (vm_moving(inst_dir) || vm_lost_with_host(inst_dir, &st))))
            x->power = VM_POWER_STARTING;
        else
            x->power = VM_POWER_STOPPED;
        free(ids[i]);
    }
    ct_seen_end(d->seen);
    free(ids);
    return 0;
}

static int ct_remove(void *p, const char *id, verr_t *e)
{
    ctd_t *d = p;
    char inst_dir[PATH_MAX];
    vm_inst_dir(d->dir, id, inst_dir, sizeof inst_dir);
    struct stat sb;
    if (lstat(inst_dir, &sb) < 0)
        return 0;
    vm_state_t st;
    if (vm_state_read(inst_dir, &st, NULL) == 0)
        vm_proc_stop(st.pid, st.start_time, d->stop_timeout_ms);
    if (ct_cgroup_remove(inst_dir, e) < 0 || vm_rmtree(inst_dir, e) < 0)
        return -1;
    pthread_mutex_lock(&d->images_mu);
    collect_bases(d);
    pthread_mutex_unlock(&d->images_mu);
    return 0;
}

static int ct_console(void *p, const char *id, size_t max, char **buf, size_t *len, uint64_t *total, verr_t *e)
{
    ctd_t *d = p;
    char path[PATH_MAX + 32];
    vm_pathf(path, sizeof path, "%s/%s/console.log", d->dir, id);
    return vm_console_tail(path, max, buf, len, total, e);
}

/* The instance's root file system as a tar.gz: its upper layer over the image's, mounted
 * read-only in a mount namespace of the tar's own (nothing is mounted on the host), with
 * every process of the instance stopped meanwhile unless pause is 0. */
static int ct_export(void *p, const char *id, const char *path, int pause, verr_t *e)
{
    ctd_t *d = p;
    char inst_dir[PATH_MAX], base[PATH_MAX], mnt[PATH_MAX + 16], opts[3 * PATH_MAX];
    vm_inst_dir(d->dir, id, inst_dir, sizeof inst_dir);
    vm_state_t st;
    if (vm_state_read(inst_dir, &st, NULL) < 0)
        return verr_set(e, 404, "InvalidInstanceID.NotFound", "instance %s is not on this host", id);
    base_dir(d, st.image_sha256, base, sizeof base);
    vm_pathf(mnt, sizeof mnt, "%s/export", inst_dir);
    vm_pathf(opts, sizeof opts, "lowerdir=%s/upper:%s", inst_dir, base);
    if (mkdir(mnt, 0700) < 0 && errno != EEXIST)
        return verr_set(e, 500, "InternalError", "%s: %s", mnt, strerror(errno));
    char *argv[] = {"unshare", "--mount", "--propagation", "private", "sh", "-c",
                    "mount -t overlay virga-export -o \"$1\" \"$2\" && tar -C \"$2\" --numeric-owner -czf \"$3\" .",
                    "sh", opts, mnt, (char *)path, NULL};
    if (pause)
        ct_cgroup_signal(inst_dir, SIGSTOP);
    int rc = vm_run(argv, e);
    if (pause)
        ct_cgroup_signal(inst_dir, SIGCONT);
    rmdir(mnt);
    return rc;
}

static void ct_close(void *p)
{
    ctd_t *d = p;
    if (!d)
        return;
    for (size_t i = 0; i < d->cg.n; i++)
        rmdir(d->cg.base[i]);   /* only when no instance is left in it */
    pthread_mutex_destroy(&d->images_mu);
    ct_seen_free(d->seen);
    free(d);
}

const vm_driver_ops_t vm_container_driver = {
    .name = "container",
    .about = "namespaces + overlay + cgroups, console to a file",
    .flags = VM_DRV_NEEDS_IMAGES,
    .open = ct_open,
    .ensure = ct_ensure,
    .list = ct_list,
    .remove = ct_remove,
    .console = ct_console,
    .close = ct_close,
    .export_disk = ct_export,
};
