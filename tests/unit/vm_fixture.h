/* vm_fixture.h - what the instance driver tests share (test_vm_drivers.c: the driver
 * contract; test_instance_sync.c: the sync loop): a temporary state dir per test, the
 * drivers that can run here, specs with the built guest images, and the checks that an
 * instance is running, booted, or gone without a trace. */
#ifndef VIRGA_TEST_VM_FIXTURE_H
#define VIRGA_TEST_VM_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/file_sha256.h"
#include "vm_state.h"

#define ID1 "i-0123456789abcdef0"
#define ID2 "i-0000000000000000a"

#define ID1 "i-0123456789abcdef0"
#define ID2 "i-0000000000000000a"

/* This run's host id: namespaces and cgroups are named by it, so runs at the same time
 * (two checkouts testing on one machine) never meet. */
static char host[32];

/* system() of a formatted command; every %s is the host id. */
static inline int sh(const char *fmt)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, fmt, host, host, host);
    return system(cmd);
}

typedef struct drv_case {
    const char *name;
    int root;                 /* needs root */
    int images;               /* 1: container rootfs, 2: kernel + ramdisk */
    const char *ready;        /* the console's ready line */
    int boot_s;               /* how long a boot may take here */
} drv_case_t;

static const drv_case_t cases[] = {
    {"sim", 0, 0, "VIRGA-GUEST-READY", 5},
    {"container", 1, 1, "VIRGA-CONTAINER-READY", 120},
    {"qemu", 1, 2, "VIRGA-GUEST-READY", 600},
};

typedef struct ctx {
    const drv_case_t *c;
    char dir[256];
    char drv_dir[320];        /* the driver's state dir: <dir>/<driver> */
    config_t *cfg;
    vm_driver_t *d;
    char rootfs[PATH_MAX], kernel[PATH_MAX], ramdisk[PATH_MAX];
    char rootfs_sha[65], kernel_sha[65], ramdisk_sha[65];
    char disk[PATH_MAX], disk_sha[65];    /* qemu: a qcow2 machine image */
} ctx_t;

static inline const char *images_dir(void)
{
    const char *d = getenv("VIRGA_IMAGES_DIR");
    return d && *d ? d : "build/images";
}

static inline int wanted(const char *name)
{
    const char *w = getenv("VIRGA_VM_DRIVERS");
    if (!w || !*w)
        return 1;
    char buf[256];
    snprintf(buf, sizeof buf, ",%s,", w);
    char key[64];
    snprintf(key, sizeof key, ",%s,", name);
    return strstr(buf, key) != NULL;
}

/* Why this driver cannot be tested here, or NULL. */
static inline const char *unavailable(ctx_t *x)
{
    if (!wanted(x->c->name))
        return "not in VIRGA_VM_DRIVERS";
    if (x->c->root && geteuid() != 0)
        return "needs root";
    char p[PATH_MAX * 2];
    if (x->c->images == 1) {
        snprintf(x->rootfs, sizeof x->rootfs, "%s/busybox-rootfs.tar.gz", images_dir());
        if (file_sha(x->rootfs, x->rootfs_sha) < 0)
            return "no busybox-rootfs.tar.gz (deploy/images/build)";
    }
    if (x->c->images == 2) {
        snprintf(x->kernel, sizeof x->kernel, "%s/vmlinuz-cloud", images_dir());
        snprintf(x->ramdisk, sizeof x->ramdisk, "%s/initrd-virga.cpio.gz", images_dir());
        if (file_sha(x->kernel, x->kernel_sha) < 0 || file_sha(x->ramdisk, x->ramdisk_sha) < 0)
            return "no vmlinuz-cloud / initrd-virga.cpio.gz (deploy/images/build)";
        snprintf(p, sizeof p, "command -v qemu-system-x86_64 > /dev/null");
        if (system(p) != 0)
            return "no qemu-system-x86_64";
        snprintf(x->disk, sizeof x->disk, "%s/base.qcow2", x->dir);
        snprintf(p, sizeof p, "qemu-img create -q -f qcow2 %s 64M", x->disk);
        if (system(p) != 0 || file_sha(x->disk, x->disk_sha) < 0)
            return "qemu-img cannot make a qcow2 image";
    }
    return NULL;
}

static inline int setup(void **state)
{
    ctx_t *x = calloc(1, sizeof *x);
    x->c = *state;
    snprintf(x->dir, sizeof x->dir, "/tmp/virga-vmtest-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    snprintf(x->drv_dir, sizeof x->drv_dir, "%s/%s", x->dir, x->c->name);
    x->cfg = config_new();
    config_set(x->cfg, "agent.sim.delay_ms", "5");
    config_set(x->cfg, "agent.container.stop_timeout_ms", "1000");
    /* the contract checks that no base is left once no instance uses it: none kept */
    config_set(x->cfg, "agent.container.base_keep_s", "0");
    config_set(x->cfg, "agent.qemu.stop_timeout_ms", "2000");
    config_set(x->cfg, "agent.qemu.boot_timeout_s", "600");
    config_set(x->cfg, "agent.datapath_prefix", "vtest-");
    *state = x;
    return 0;
}

static inline void open_driver(ctx_t *x)
{
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s", x->drv_dir);
    vm_driver_cfg_t c = {.state_dir = dir, .host_id = host, .prefix = "vtest-", .cfg = x->cfg};
    verr_t e = {0};
    x->d = vm_driver_open(x->c->name, &c, &e);
    if (!x->d)
        fail_msg("open %s: %s %s", x->c->name, e.code, e.message);
}

static inline int teardown(void **state)
{
    ctx_t *x = *state;
    if (x->d) {
        /* nothing may outlive the test: remove what a failed test left */
        vm_status_t *l = NULL;
        size_t n = 0;
        verr_t e;
        if (vm_driver_list(x->d, &l, &n, &e) == 0)
            for (size_t i = 0; i < n; i++)
                vm_driver_remove(x->d, l[i].id, &e);
        free(l);
        vm_driver_close(x->d);
    }
    verr_t e;
    vm_rmtree(x->dir, &e);
    config_free(x->cfg);
    free(x);
    return 0;
}

static inline void spec_of(ctx_t *x, vm_spec_t *s, const char *id, vm_power_t power, uint64_t seq)
{
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->driver, sizeof s->driver, "%s", x->c->name);
    s->vcpus = 1;
    s->memory_mib = x->c->images == 2 ? 160 : 64;
    s->power = power;
    s->reboot_seq = seq;
    snprintf(s->hostname, sizeof s->hostname, "test-host");
    if (x->c->images == 1) {
        snprintf(s->image.path, sizeof s->image.path, "%s", x->rootfs);
        snprintf(s->image.sha256, sizeof s->image.sha256, "%s", x->rootfs_sha);
        snprintf(s->image.format, sizeof s->image.format, "tar.gz");
        snprintf(s->image.type, sizeof s->image.type, "container-rootfs");
    }
    if (x->c->images == 2) {
        snprintf(s->kernel.path, sizeof s->kernel.path, "%s", x->kernel);
        snprintf(s->kernel.sha256, sizeof s->kernel.sha256, "%s", x->kernel_sha);
        snprintf(s->ramdisk.path, sizeof s->ramdisk.path, "%s", x->ramdisk);
        snprintf(s->ramdisk.sha256, sizeof s->ramdisk.sha256, "%s", x->ramdisk_sha);
        snprintf(s->image.path, sizeof s->image.path, "%s", x->disk);
        snprintf(s->image.sha256, sizeof s->image.sha256, "%s", x->disk_sha);
        snprintf(s->image.format, sizeof s->image.format, "qcow2");
        s->disk_gib = 1;
    }
}

/* The driver's shared layers (container: unpacked roots, qemu: pinned bases) are gone
 * once no instance uses them. */
static inline void assert_no_bases(ctx_t *x)
{
    const char *sub[] = {"images", "bases"};
    for (size_t i = 0; i < 2; i++) {
        char d[PATH_MAX];
        snprintf(d, sizeof d, "%s/%s", x->drv_dir, sub[i]);
        size_t n = 0;
        DIR *dh = opendir(d);
        struct dirent *de;
        while (dh && (de = readdir(dh)))
            n += de->d_name[0] != '.';
        if (dh)
            closedir(dh);
        if (n)
            fail_msg("%zu entries left in %s", n, d);
    }
}

static inline void ensure_ok(ctx_t *x, const char *id, vm_power_t power, uint64_t seq)
{
    vm_spec_t s;
    spec_of(x, &s, id, power, seq);
    verr_t e = {0};
    if (vm_driver_ensure(x->d, &s, &e) < 0)
        fail_msg("ensure %s %s seq %llu: %s %s", id, vm_power_name(power), (unsigned long long)seq, e.code,
                 e.message);
}

/* The one listed instance with this id (fails if absent). */
static inline vm_status_t listed(ctx_t *x, const char *id, size_t *count)
{
    vm_status_t *l = NULL, r = {0};
    size_t n = 0;
    verr_t e;
    assert_int_equal(vm_driver_list(x->d, &l, &n, &e), 0);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(l[i].id, id)) {
            r = l[i];
            found = 1;
        }
    free(l);
    if (count)
        *count = n;
    if (!found)
        fail_msg("%s not listed", id);
    return r;
}

static inline size_t count_listed(ctx_t *x)
{
    vm_status_t *l = NULL;
    size_t n = 0;
    verr_t e;
    assert_int_equal(vm_driver_list(x->d, &l, &n, &e), 0);
    free(l);
    return n;
}

static inline int count_lines(const char *text, const char *needle)
{
    int k = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        k++;
    return k;
}

/* Wait until the console has at least `want` ready lines. */
static inline void wait_ready(ctx_t *x, const char *id, int want)
{
    int64_t end = vm_now_ms() + x->c->boot_s * 1000;
    char *buf = NULL;
    for (;;) {
        size_t len;
        uint64_t total;
        verr_t e;
        free(buf);
        buf = NULL;
        assert_int_equal(vm_driver_console(x->d, id, VM_CONSOLE_MAX, &buf, &len, &total, &e), 0);
        if (count_lines(buf, x->c->ready) >= want)
            break;
        if (vm_now_ms() > end)
            fail_msg("%s: %d ready line(s) wanted; console:\n%s", id, want, buf);
        vm_sleep_ms(100);
    }
    free(buf);
}

static inline int ready_count(ctx_t *x, const char *id)
{
    char *buf = NULL;
    size_t len;
    uint64_t total;
    verr_t e;
    assert_int_equal(vm_driver_console(x->d, id, VM_CONSOLE_MAX, &buf, &len, &total, &e), 0);
    int k = count_lines(buf, x->c->ready);
    free(buf);
    return k;
}

static inline vm_state_t state_of(ctx_t *x, const char *id)
{
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s/%s", x->drv_dir, id);
    vm_state_t st;
    verr_t e;
    assert_int_equal(vm_state_read(d, &st, &e), 0);
    return st;
}

static const char *found_cgroup;
static char cg_id[VM_ID_MAX];
static char cg_path[PATH_MAX];
/* Only this run's cgroups (under a directory named ...-<host>): the instance ids are the
   same in every run, and another run at the same time has its own. */
static inline int cg_find(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    char mine[sizeof host + 3];
    snprintf(mine, sizeof mine, "-%s/", host);
    if (flag == FTW_D && !strcmp(path + f->base, cg_id) && strstr(path, mine)) {
        snprintf(cg_path, sizeof cg_path, "%s", path);
        found_cgroup = cg_path;
        return 1;
    }
    return 0;
}

/* Nothing of the instance is left: state dir, process, cgroup, mount. */
static inline void assert_gone(ctx_t *x, const char *id, pid_t pid, uint64_t start)
{
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s/%s", x->drv_dir, id);
    struct stat sb;
    assert_int_not_equal(lstat(d, &sb), 0);
    if (pid)
        assert_false(vm_proc_is(pid, start));
    found_cgroup = NULL;
    snprintf(cg_id, sizeof cg_id, "%s", id);
    nftw("/sys/fs/cgroup", cg_find, 16, FTW_PHYS);
    if (found_cgroup)
        fail_msg("cgroup %s left behind", found_cgroup);
    FILE *m = fopen("/proc/self/mountinfo", "r");
    char line[4096];
    while (m && fgets(line, sizeof line, m))
        if (strstr(line, x->dir))
            fail_msg("mount left behind: %s", line);
    if (m)
        fclose(m);
}

/* Skip the test when the driver cannot run here, else open it. */
static inline void start(ctx_t *x)
{
    const char *why = unavailable(x);
    if (why) {
        print_message("[  SKIP    ] %s: %s\n", x->c->name, why);
        skip();
    }
    open_driver(x);
}


#endif
