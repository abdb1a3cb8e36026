/* test_vm_drivers.c - one contract suite for every instance driver of the agent
 * (services/compute/agent/vm_driver.h), run against `sim` always and against
 * `container` and `qemu` when this runs as root with the guest images built
 * (build/images, or $VIRGA_IMAGES_DIR; deploy/images/build makes them) and, for qemu,
 * qemu-system-x86_64 installed. VIRGA_VM_DRIVERS=sim,container limits the drivers.
 *
 * The contract: ensure(running) makes a running instance whose console gets the
 * image's ready line; ensure is idempotent (the same process); ensure(stopped) stops
 * it (no process) and ensure(running) starts it again; a higher reboot_seq reboots a
 * running instance once (a second ready line) and is only recorded for a stopped one;
 * remove leaves nothing (no state dir, no process, no cgroup, no mount) and is
 * idempotent; a driver opened again on the same state dir (an agent restart) adopts what
 * runs without restarting it and removes it; bad ids and powers are refused. The sync
 * loop (instance_sync.h) with `sim` and a fake compute: desired instances are created,
 * an instance nobody desires is removed, the report carries power, reboot_seq and the
 * console, a spec for a driver the host does not offer is reported as an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "instance_sync.h"
#include "jsonutil.h"
#include "vm_state.h"

#define ID1 "i-0123456789abcdef0"
#define ID2 "i-0000000000000000a"

typedef struct drv_case {
    const char *name;
    int root;                 /* needs root */
    int images;               /* 1: container rootfs, 2: kernel + ramdisk */
    const char *ready;        /* the console's ready line */
    int boot_s;               /* how long a boot may take here */
} drv_case_t;

static const drv_case_t cases[] = {
    {"sim", 0, 0, "VIRGA-GUEST-READY", 5},
    {"container", 1, 1, "VIRGA-CONTAINER-READY", 20},
    {"qemu", 1, 2, "VIRGA-GUEST-READY", 120},
};

typedef struct ctx {
    const drv_case_t *c;
    char dir[256];
    config_t *cfg;
    vm_driver_t *d;
    char rootfs[PATH_MAX], kernel[PATH_MAX], ramdisk[PATH_MAX];
    char rootfs_sha[65], kernel_sha[65], ramdisk_sha[65];
} ctx_t;

static const char *images_dir(void)
{
    const char *d = getenv("VIRGA_IMAGES_DIR");
    return d && *d ? d : "build/images";
}

static int file_sha(const char *path, char hex[65])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char buf[65536], d[32];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0)
        crypto_hash_sha256_update(&st, buf, r);
    fclose(f);
    crypto_hash_sha256_final(&st, d);
    sodium_bin2hex(hex, 65, d, 32);
    return 0;
}

static int wanted(const char *name)
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
static const char *unavailable(ctx_t *x)
{
    if (!wanted(x->c->name))
        return "not in VIRGA_VM_DRIVERS";
    if (x->c->root && geteuid() != 0)
        return "needs root";
    char p[PATH_MAX];
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
    }
    return NULL;
}

static int setup(void **state)
{
    ctx_t *x = calloc(1, sizeof *x);
    x->c = *state;
    snprintf(x->dir, sizeof x->dir, "/tmp/virga-vmtest-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    x->cfg = config_new();
    config_set(x->cfg, "agent.sim.delay_ms", "5");
    config_set(x->cfg, "agent.container.stop_timeout_ms", "1000");
    config_set(x->cfg, "agent.qemu.stop_timeout_ms", "2000");
    config_set(x->cfg, "agent.qemu.boot_timeout_s", "100");
    config_set(x->cfg, "agent.datapath_prefix", "vtest-");
    *state = x;
    return 0;
}

static void open_driver(ctx_t *x)
{
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/%s", x->dir, x->c->name);
    vm_driver_cfg_t c = {.state_dir = dir, .host_id = "hosttest", .prefix = "vtest-", .cfg = x->cfg};
    verr_t e = {0};
    x->d = vm_driver_open(x->c->name, &c, &e);
    if (!x->d)
        fail_msg("open %s: %s %s", x->c->name, e.code, e.message);
}

static int teardown(void **state)
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

static void spec_of(ctx_t *x, vm_spec_t *s, const char *id, vm_power_t power, uint64_t seq)
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
    }
}

static void ensure_ok(ctx_t *x, const char *id, vm_power_t power, uint64_t seq)
{
    vm_spec_t s;
    spec_of(x, &s, id, power, seq);
    verr_t e = {0};
    if (vm_driver_ensure(x->d, &s, &e) < 0)
        fail_msg("ensure %s %s seq %llu: %s %s", id, vm_power_name(power), (unsigned long long)seq, e.code,
                 e.message);
}

/* The one listed instance with this id (fails if absent). */
static vm_status_t listed(ctx_t *x, const char *id, size_t *count)
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

static size_t count_listed(ctx_t *x)
{
    vm_status_t *l = NULL;
    size_t n = 0;
    verr_t e;
    assert_int_equal(vm_driver_list(x->d, &l, &n, &e), 0);
    free(l);
    return n;
}

static int count_lines(const char *text, const char *needle)
{
    int k = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        k++;
    return k;
}

/* Wait until the console has at least `want` ready lines. */
static void wait_ready(ctx_t *x, const char *id, int want)
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

static int ready_count(ctx_t *x, const char *id)
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

static vm_state_t state_of(ctx_t *x, const char *id)
{
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s/%s/%s", x->dir, x->c->name, id);
    vm_state_t st;
    verr_t e;
    assert_int_equal(vm_state_read(d, &st, &e), 0);
    return st;
}

static const char *found_cgroup;
static char cg_id[VM_ID_MAX];
static char cg_path[PATH_MAX];
static int cg_find(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    if (flag == FTW_D && !strcmp(path + f->base, cg_id)) {
        snprintf(cg_path, sizeof cg_path, "%s", path);
        found_cgroup = cg_path;
        return 1;
    }
    return 0;
}

/* Nothing of the instance is left: state dir, process, cgroup, mount. */
static void assert_gone(ctx_t *x, const char *id, pid_t pid, uint64_t start)
{
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s/%s/%s", x->dir, x->c->name, id);
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
static void start(ctx_t *x)
{
    const char *why = unavailable(x);
    if (why) {
        print_message("[  SKIP    ] %s: %s\n", x->c->name, why);
        skip();
    }
    open_driver(x);
}

static void test_lifecycle(void **state)
{
    ctx_t *x = *state;
    start(x);
    assert_int_equal(count_listed(x), 0);

    ensure_ok(x, ID1, VM_POWER_RUNNING, 0);
    wait_ready(x, ID1, 1);
    vm_status_t st = listed(x, ID1, NULL);
    assert_int_equal(st.power, VM_POWER_RUNNING);
    assert_int_equal(st.reboot_seq, 0);
    vm_state_t s0 = state_of(x, ID1);
    if (x->c->root)
        assert_true(vm_proc_is(s0.pid, s0.start_time));

    /* idempotent: the same process, no new boot */
    ensure_ok(x, ID1, VM_POWER_RUNNING, 0);
    vm_state_t s1 = state_of(x, ID1);
    assert_int_equal(s1.pid, s0.pid);
    assert_int_equal(ready_count(x, ID1), 1);

    /* stop: no process; start again: a new boot */
    ensure_ok(x, ID1, VM_POWER_STOPPED, 0);
    assert_int_equal(listed(x, ID1, NULL).power, VM_POWER_STOPPED);
    if (s0.pid)
        assert_false(vm_proc_is(s0.pid, s0.start_time));
    ensure_ok(x, ID1, VM_POWER_RUNNING, 0);
    wait_ready(x, ID1, 2);
    assert_int_equal(listed(x, ID1, NULL).power, VM_POWER_RUNNING);

    /* reboot: once per step of reboot_seq */
    ensure_ok(x, ID1, VM_POWER_RUNNING, 1);
    wait_ready(x, ID1, 3);
    st = listed(x, ID1, NULL);
    assert_int_equal(st.power, VM_POWER_RUNNING);
    assert_int_equal(st.reboot_seq, 1);
    ensure_ok(x, ID1, VM_POWER_RUNNING, 1);
    assert_int_equal(ready_count(x, ID1), 3);

    /* a stopped instance only records the reboot */
    ensure_ok(x, ID1, VM_POWER_STOPPED, 1);
    ensure_ok(x, ID1, VM_POWER_STOPPED, 2);
    st = listed(x, ID1, NULL);
    assert_int_equal(st.power, VM_POWER_STOPPED);
    assert_int_equal(st.reboot_seq, 2);

    /* a second instance, created stopped, then remove both: nothing left */
    ensure_ok(x, ID2, VM_POWER_STOPPED, 7);
    size_t n = 0;
    st = listed(x, ID2, &n);
    assert_int_equal(n, 2);
    assert_int_equal(st.power, VM_POWER_STOPPED);
    assert_int_equal(st.reboot_seq, 7);
    ensure_ok(x, ID1, VM_POWER_RUNNING, 2);
    wait_ready(x, ID1, 4);
    vm_state_t s2 = state_of(x, ID1);
    verr_t e = {0};
    assert_int_equal(vm_driver_remove(x->d, ID1, &e), 0);
    assert_int_equal(vm_driver_remove(x->d, ID2, &e), 0);
    assert_int_equal(vm_driver_remove(x->d, ID1, &e), 0);   /* absent is success */
    assert_int_equal(count_listed(x), 0);
    assert_gone(x, ID1, s2.pid, s2.start_time);
    assert_gone(x, ID2, 0, 0);
}

static void test_adopt_after_restart(void **state)
{
    ctx_t *x = *state;
    start(x);
    ensure_ok(x, ID1, VM_POWER_RUNNING, 3);
    wait_ready(x, ID1, 1);
    vm_state_t s0 = state_of(x, ID1);

    /* the agent restarts: the driver is closed (instances go on) and opened again */
    vm_driver_close(x->d);
    x->d = NULL;
    if (s0.pid)
        assert_true(vm_proc_is(s0.pid, s0.start_time));
    open_driver(x);
    vm_status_t st = listed(x, ID1, NULL);
    assert_int_equal(st.power, VM_POWER_RUNNING);
    assert_int_equal(st.reboot_seq, 3);
    ensure_ok(x, ID1, VM_POWER_RUNNING, 3);            /* adopted: not restarted */
    assert_int_equal(state_of(x, ID1).pid, s0.pid);
    assert_int_equal(ready_count(x, ID1), 1);

    /* what should not exist is removed by the new driver */
    verr_t e = {0};
    assert_int_equal(vm_driver_remove(x->d, ID1, &e), 0);
    assert_int_equal(count_listed(x), 0);
    assert_gone(x, ID1, s0.pid, s0.start_time);
}

static void test_bad_input(void **state)
{
    ctx_t *x = *state;
    start(x);
    vm_spec_t s;
    verr_t e = {0};
    spec_of(x, &s, "i-../../etc", VM_POWER_RUNNING, 0);
    assert_int_equal(vm_driver_ensure(x->d, &s, &e), -1);
    assert_string_equal(e.code, "InvalidParameterValue");
    spec_of(x, &s, ID1, VM_POWER_STARTING, 0);
    assert_int_equal(vm_driver_ensure(x->d, &s, &e), -1);
    assert_string_equal(e.code, "InvalidParameterValue");
    assert_int_equal(vm_driver_remove(x->d, "../x", &e), -1);
    assert_string_equal(e.code, "InvalidParameterValue");
    assert_int_equal(count_listed(x), 0);
    verr_t e2 = {0};
    vm_driver_cfg_t c = {.state_dir = x->dir};
    assert_null(vm_driver_open("vmware", &c, &e2));
    assert_string_equal(e2.code, "NotImplemented");
}

/* ---- what only the container driver promises ---------------------------------------- */

static ino_t ns_inode(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_ino : 0;
}

static void read_line(const char *path, char *out, size_t n)
{
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (f && fgets(out, (int)n, f))
        out[strcspn(out, "\n")] = 0;
    if (f)
        fclose(f);
}

/* PID 1 of its own namespaces, the hostname of the spec, the console's stdin a FIFO
 * (typed commands run), memory/CPU/pids limits in its cgroups, an empty network
 * namespace without an interface and the datapath's namespace with one (absent: a
 * wait, NetworkNotReady). */
static void test_container_details(void **state)
{
    ctx_t *x = *state;
    start(x);
    ensure_ok(x, ID1, VM_POWER_RUNNING, 0);
    wait_ready(x, ID1, 1);
    vm_state_t st = state_of(x, ID1);
    char p[PATH_MAX], line[512];
    snprintf(p, sizeof p, "%s/container/%s/console.in", x->dir, ID1);
    FILE *in = fopen(p, "w");
    assert_non_null(in);
    fputs("echo probe pid=$$ host=$(hostname) ppid=$PPID\n", in);
    fclose(in);
    snprintf(line, sizeof line, "probe pid=1 host=test-host ppid=0");
    int64_t end = vm_now_ms() + 10000;
    for (;;) {
        char *buf = NULL;
        size_t len;
        uint64_t total;
        verr_t e;
        assert_int_equal(vm_driver_console(x->d, ID1, VM_CONSOLE_MAX, &buf, &len, &total, &e), 0);
        int ok = strstr(buf, line) != NULL;
        if (!ok && vm_now_ms() > end)
            fail_msg("no '%s' on the console:\n%s", line, buf);
        free(buf);
        if (ok)
            break;
        vm_sleep_ms(50);
    }
    char a[64], b[64];
    snprintf(a, sizeof a, "/proc/%d/ns/net", (int)st.pid);
    assert_int_not_equal(ns_inode(a), ns_inode("/proc/self/ns/net"));
    snprintf(a, sizeof a, "/proc/%d/ns/pid", (int)st.pid);
    assert_int_not_equal(ns_inode(a), ns_inode("/proc/self/ns/pid"));
    /* its cgroups and their limits */
    snprintf(p, sizeof p, "/proc/%d/cgroup", (int)st.pid);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    int in_mem = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, ":memory:") && strstr(line, ID1))
            in_mem = 1;
    fclose(f);
    if (!in_mem)
        fail_msg("the container is not in its memory cgroup");
    found_cgroup = NULL;
    snprintf(cg_id, sizeof cg_id, "%s", ID1);
    nftw("/sys/fs/cgroup/memory", cg_find, 16, FTW_PHYS);
    assert_non_null(found_cgroup);
    snprintf(p, sizeof p, "%s/memory.limit_in_bytes", found_cgroup);
    read_line(p, line, sizeof line);
    assert_string_equal(line, "67108864");
    verr_t e = {0};
    assert_int_equal(vm_driver_remove(x->d, ID1, &e), 0);
    assert_gone(x, ID1, st.pid, st.start_time);

    /* with an interface: the datapath's namespace, or a wait until it exists */
    vm_spec_t s;
    spec_of(x, &s, ID2, VM_POWER_RUNNING, 0);
    s.n_ifaces = 1;
    snprintf(s.ifaces[0].eni_id, sizeof s.ifaces[0].eni_id, "eni-0000000000000test");
    assert_int_equal(system("ip netns del vtest-i-hosttest.eni-0000000000000test 2>/dev/null; true"), 0);
    assert_int_equal(vm_driver_ensure(x->d, &s, &e), -1);
    assert_string_equal(e.code, "NetworkNotReady");
    assert_int_equal(e.http_status, 503);
    assert_int_equal(system("ip netns add vtest-i-hosttest.eni-0000000000000test"), 0);
    int rc = vm_driver_ensure(x->d, &s, &e);
    if (rc == 0) {
        st = state_of(x, ID2);
        snprintf(a, sizeof a, "/proc/%d/ns/net", (int)st.pid);
        snprintf(b, sizeof b, "/run/netns/vtest-i-hosttest.eni-0000000000000test");
        assert_int_equal(ns_inode(a), ns_inode(b));
        rc = vm_driver_remove(x->d, ID2, &e);
    }
    assert_int_equal(system("ip netns del vtest-i-hosttest.eni-0000000000000test"), 0);
    if (rc < 0)
        fail_msg("%s %s", e.code, e.message);
    assert_gone(x, ID2, st.pid, st.start_time);
}

/* ---- the sync loop with a fake compute ------------------------------------------------ */

typedef struct fake {
    pthread_mutex_t mu;
    json_t *desired;          /* the document compute.host_instances answers */
    json_t *last;             /* the last compute.instances_observed body */
    json_t *consoles;         /* id -> the last console any report carried */
    int reports;
} fake_t;

static int fake_desired(void *arg, json_t **doc, verr_t *e)
{
    (void)e;
    fake_t *f = arg;
    pthread_mutex_lock(&f->mu);
    *doc = json_deep_copy(f->desired);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static int fake_observed(void *arg, json_t *body, verr_t *e)
{
    (void)e;
    fake_t *f = arg;
    pthread_mutex_lock(&f->mu);
    json_decref(f->last);
    f->last = body;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(body, "instances"), i, it)
        if (json_object_get(it, "console"))
            json_object_set(f->consoles, json_str(it, "instance_id", ""), json_object_get(it, "console"));
    f->reports++;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static void set_desired(fake_t *f, const char *json)
{
    json_error_t je;
    json_t *d = json_loads(json, 0, &je);
    assert_non_null(d);
    pthread_mutex_lock(&f->mu);
    json_decref(f->desired);
    f->desired = d;
    pthread_mutex_unlock(&f->mu);
}

static json_t *reported(fake_t *f, const char *id)
{
    pthread_mutex_lock(&f->mu);
    json_t *r = NULL;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(f->last, "instances"), i, it)
        if (!strcmp(json_str(it, "instance_id", ""), id))
            r = json_incref(it);
    pthread_mutex_unlock(&f->mu);
    return r;
}

static void test_sync_loop(void **state)
{
    ctx_t *x = *state;
    fake_t f = {.mu = PTHREAD_MUTEX_INITIALIZER, .consoles = json_object()};
    set_desired(&f, "{\"generation\": 5, \"instances\": [{\"instance_id\": \"" ID1 "\", \"driver\": \"sim\","
                    " \"vcpus\": 1, \"memory_mib\": 64, \"power\": \"running\", \"reboot_seq\": 0,"
                    " \"interfaces\": [{\"eni_id\": \"eni-1\", \"device\": \"vt-000000000001\", \"ip\": \"172.31.0.5\"}]},"
                    " {\"instance_id\": \"i-00000000000000bad\", \"driver\": \"qemu\", \"power\": \"running\"}]}");
    config_set(x->cfg, "agent.state_dir", x->dir);
    config_set(x->cfg, "agent.drivers", "sim");
    config_set(x->cfg, "agent.max_parallel_boots", "1");
    instance_sync_opts_t o = {.cfg = x->cfg, .host_id = "hosttest",
                              .io = {.desired = fake_desired, .observed = fake_observed, .arg = &f}};
    verr_t e = {0};
    instance_sync_t *s = instance_sync_start(&o, &e);
    assert_non_null(s);
    json_t *inv = instance_sync_inventory(s);
    assert_string_equal(json_string_value(json_array_get(json_object_get(inv, "drivers"), 0)), "sim");
    assert_true(json_is_true(json_object_get(inv, "simulated")));
    assert_true(json_int(inv, "vcpus", 0) >= 1);
    json_decref(inv);

    /* an instance nobody desires (left by an earlier agent) */
    x->c = &cases[0];
    x->d = instance_sync_driver(s, "sim");
    ensure_ok(x, ID2, VM_POWER_RUNNING, 0);

    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    vm_status_t st = listed(x, ID1, NULL);
    assert_int_equal(st.power, VM_POWER_RUNNING);
    assert_int_equal(count_listed(x), 1);                   /* ID2 removed */
    json_t *r = reported(&f, ID1);
    assert_non_null(r);
    assert_string_equal(json_str(r, "power", ""), "running");
    assert_int_equal(json_int(r, "reboot_seq", -1), 0);
    unsigned char con[4096];
    size_t clen = 0;
    pthread_mutex_lock(&f.mu);
    const char *b64 = json_str(f.consoles, ID1, "");
    pthread_mutex_unlock(&f.mu);
    assert_int_equal(sodium_base642bin(con, sizeof con - 1, b64, strlen(b64), NULL, &clen, NULL,
                                       sodium_base64_VARIANT_ORIGINAL), 0);
    con[clen] = 0;
    assert_non_null(strstr((char *)con, "VIRGA-GUEST-READY instance-id=" ID1 " addr=172.31.0.5"));
    json_decref(r);
    r = reported(&f, "i-00000000000000bad");
    assert_non_null(r);
    assert_string_equal(json_str(r, "power", ""), "error");
    assert_non_null(strstr(json_str(r, "error", ""), "not offered"));
    json_decref(r);
    assert_null(reported(&f, ID2));
    pthread_mutex_lock(&f.mu);
    assert_int_equal(json_int(f.last, "generation", 0), 5);
    pthread_mutex_unlock(&f.mu);

    /* reboot, then stop, through the loop */
    set_desired(&f, "{\"generation\": 6, \"instances\": [{\"instance_id\": \"" ID1 "\", \"driver\": \"sim\","
                    " \"power\": \"running\", \"reboot_seq\": 1}]}");
    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    assert_int_equal(listed(x, ID1, NULL).reboot_seq, 1);
    r = reported(&f, ID1);
    assert_int_equal(json_int(r, "reboot_seq", -1), 1);
    json_decref(r);
    set_desired(&f, "{\"generation\": 7, \"instances\": [{\"instance_id\": \"" ID1 "\", \"driver\": \"sim\","
                    " \"power\": \"stopped\", \"reboot_seq\": 1}]}");
    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    r = reported(&f, ID1);
    assert_string_equal(json_str(r, "power", ""), "stopped");
    json_decref(r);
    /* a console compute has is not sent again */
    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    r = reported(&f, ID1);
    assert_null(json_object_get(r, "console"));
    json_decref(r);

    /* terminated: absent from the desired state, so removed and no longer reported */
    set_desired(&f, "{\"generation\": 8, \"instances\": []}");
    assert_int_equal(instance_sync_pass_and_wait(s, 10000, &e), 0);
    assert_int_equal(count_listed(x), 0);
    assert_null(reported(&f, ID1));
    assert_gone(x, ID1, 0, 0);

    x->d = NULL;                /* closed by the loop */
    instance_sync_stop(s);
    json_decref(f.desired);
    json_decref(f.last);
    json_decref(f.consoles);
}

#define CONTRACT(i)                                                                            \
    cmocka_unit_test_prestate_setup_teardown(test_lifecycle, setup, teardown, (void *)&cases[i]), \
    cmocka_unit_test_prestate_setup_teardown(test_adopt_after_restart, setup, teardown, (void *)&cases[i]), \
    cmocka_unit_test_prestate_setup_teardown(test_bad_input, setup, teardown, (void *)&cases[i])

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        CONTRACT(0),
        CONTRACT(1),
        CONTRACT(2),
        cmocka_unit_test_prestate_setup_teardown(test_container_details, setup, teardown, (void *)&cases[1]),
        cmocka_unit_test_prestate_setup_teardown(test_sync_loop, setup, teardown, (void *)&cases[0]),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
