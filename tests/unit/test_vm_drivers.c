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
 * remove leaves nothing (no state dir, no process, no cgroup, no mount, no unused base
 * layer) and is idempotent; a driver opened again on the same state dir (an agent
 * restart) adopts what runs without restarting it, also when the pid was never written
 * down, and removes it; bad ids and powers are refused. Then what only the container
 * driver (namespaces, console FIFO, cgroup limits, the datapath's network namespace) and
 * the qemu driver (taps in the host namespace) promise. The sync loop is
 * test_instance_sync.c. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>

#include "vm_fixture.h"

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
    if (x->c->images == 2) {   /* the machine image is the backing file of its own overlay */
        char cmd[PATH_MAX * 2];
        snprintf(cmd, sizeof cmd, "qemu-img info -U %s/qemu/%s/disk.qcow2 | grep -q 'backing file: .*/bases/%s'",
                 x->dir, ID1, x->disk_sha);
        assert_int_equal(system(cmd), 0);
    }

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

    /* a second instance, created stopped: a reboot of a stopped instance is only recorded */
    ensure_ok(x, ID2, VM_POWER_STOPPED, 7);
    ensure_ok(x, ID2, VM_POWER_STOPPED, 8);
    size_t n = 0;
    st = listed(x, ID2, &n);
    assert_int_equal(n, 2);
    assert_int_equal(st.power, VM_POWER_STOPPED);
    assert_int_equal(st.reboot_seq, 8);
    assert_int_equal(ready_count(x, ID2), 0);

    /* remove the running one and the stopped one: nothing left */
    vm_state_t s2 = state_of(x, ID1);
    verr_t e = {0};
    assert_int_equal(vm_driver_remove(x->d, ID1, &e), 0);
    assert_int_equal(vm_driver_remove(x->d, ID2, &e), 0);
    assert_int_equal(vm_driver_remove(x->d, ID1, &e), 0);   /* absent is success */
    assert_int_equal(count_listed(x), 0);
    assert_gone(x, ID1, s2.pid, s2.start_time);
    assert_gone(x, ID2, 0, 0);
    assert_no_bases(x);
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
    /* and it died before it wrote the pid down: the instance is still found */
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s/%s", x->drv_dir, ID1);
    vm_state_t lost = s0;
    lost.pid = 0;
    lost.start_time = 0;
    verr_t we;
    assert_int_equal(vm_state_write(d, &lost, VM_WRITE_RUNTIME, &we), 0);
    open_driver(x);
    vm_status_t st = listed(x, ID1, NULL);
    assert_int_equal(st.power, VM_POWER_RUNNING);
    assert_int_equal(st.reboot_seq, 3);
    ensure_ok(x, ID1, VM_POWER_RUNNING, 3);            /* adopted: not restarted */
    if (s0.pid)
        assert_true(vm_proc_is(s0.pid, s0.start_time));
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

static void wait_line(ctx_t *x, const char *id, const char *line)
{
    int64_t end = vm_now_ms() + x->c->boot_s * 1000;
    for (;;) {
        char *buf = NULL;
        size_t len;
        uint64_t total;
        verr_t e;
        assert_int_equal(vm_driver_console(x->d, id, VM_CONSOLE_MAX, &buf, &len, &total, &e), 0);
        int ok = strstr(buf, line) != NULL;
        if (!ok && vm_now_ms() > end)
            fail_msg("no '%s' on the console:\n%s", line, buf);
        free(buf);
        if (ok)
            return;
        vm_sleep_ms(50);
    }
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
    /* the image's init knows it runs as an instance: no metadata in an empty namespace */
    snprintf(line, sizeof line, "VIRGA-GUEST-READY instance-id=unknown addr=none");
    wait_line(x, ID1, line);
    snprintf(line, sizeof line, "probe pid=1 host=test-host ppid=0");
    wait_line(x, ID1, line);
    /* CreateImage's export: the root file system as the instance changed it (a file
     * written, one deleted: the upper layer's whiteout hides the image's), while it is
     * paused; it runs on after */
    in = fopen(p, "w");
    assert_non_null(in);
    fputs("echo exported-$((6*7)) > /etc/probe; rm /etc/hostname; echo wrote-probe\n", in);
    fclose(in);
    wait_line(x, ID1, "wrote-probe");
    char tgz[PATH_MAX + 32], cmd[3 * PATH_MAX];
    snprintf(tgz, sizeof tgz, "%s/export-test.tar.gz", x->dir);
    verr_t xe = {0};
    if (vm_driver_export(x->d, ID1, tgz, 1, &xe) < 0)
        fail_msg("export: %s %s", xe.code, xe.message);
    snprintf(cmd, sizeof cmd, "test \"$(tar -xzOf %s ./etc/probe)\" = exported-42", tgz);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "tar -tzf %s | grep -q '^./sbin/init$' && ! tar -tzf %s | grep -q '^./etc/hostname$'", tgz, tgz);
    assert_int_equal(system(cmd), 0);
    unlink(tgz);
    assert_true(vm_proc_is(st.pid, st.start_time));
    in = fopen(p, "w");
    assert_non_null(in);
    fputs("echo still-running\n", in);
    fclose(in);
    wait_line(x, ID1, "still-running");
    char a[64], b[128];
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
    snprintf(s.ifaces[0].ip, sizeof s.ifaces[0].ip, "10.99.0.5");
    assert_int_equal(sh("ip netns del vtest-i-%s.eni-0000000000000test 2>/dev/null; true"), 0);
    assert_int_equal(vm_driver_ensure(x->d, &s, &e), -1);
    assert_string_equal(e.code, "NetworkNotReady");
    assert_int_equal(e.http_status, 503);
    assert_int_equal(sh("ip netns add vtest-i-%s.eni-0000000000000test"), 0);
    /* the namespace without the interface's address yet: still a wait (a guest started
     * now found no address and no metadata service: it ran without its user-data) */
    memset(&e, 0, sizeof e);
    assert_int_equal(vm_driver_ensure(x->d, &s, &e), -1);
    assert_string_equal(e.code, "NetworkNotReady");
    /* its address on a link without a carrier (the host's end not attached and up yet):
     * still a wait; a pair of veths inside the stand-in plays eth0 and the host's end */
    assert_int_equal(sh("ip -n vtest-i-%s.eni-0000000000000test link add eth0 type veth peer name hostend"), 0);
    assert_int_equal(sh("ip -n vtest-i-%s.eni-0000000000000test addr add 10.99.0.5/24 dev eth0"), 0);
    assert_int_equal(sh("ip -n vtest-i-%s.eni-0000000000000test link set eth0 up"), 0);
    memset(&e, 0, sizeof e);
    assert_int_equal(vm_driver_ensure(x->d, &s, &e), -1);
    assert_string_equal(e.code, "NetworkNotReady");
    assert_int_equal(sh("ip -n vtest-i-%s.eni-0000000000000test link set hostend up"), 0);
    /* the carrier reaches eth0's flags through the kernel's linkwatch, which may take a
     * moment on a loaded machine: a wait, as the agent's next ensure would (bounded) */
    int rc = -1;
    for (int i = 0; i < 50; i++) {
        memset(&e, 0, sizeof e);
        if ((rc = vm_driver_ensure(x->d, &s, &e)) == 0 || strcmp(e.code, "NetworkNotReady"))
            break;
        usleep(100000);
    }
    if (rc == 0) {
        st = state_of(x, ID2);
        snprintf(a, sizeof a, "/proc/%d/ns/net", (int)st.pid);
        snprintf(b, sizeof b, "/run/netns/vtest-i-%s.eni-0000000000000test", host);
        assert_int_equal(ns_inode(a), ns_inode(b));
        rc = vm_driver_remove(x->d, ID2, &e);
    }
    assert_int_equal(sh("ip netns del vtest-i-%s.eni-0000000000000test"), 0);
    if (rc < 0)
        fail_msg("%s %s", e.code, e.message);
    assert_gone(x, ID2, st.pid, st.start_time);
}

/* ---- what only the qemu driver promises --------------------------------------------- */

static int tap_has_carrier(void)
{
    return sh("ip -n vtest-h-%s link show dev vt-0000000000aa | grep -q NO-CARRIER") != 0;
}

/* An interface is the datapath's tap in the host namespace, opened by name by a QEMU
 * running in that namespace (the tap gets carrier); absent namespace or tap: a wait
 * (NetworkNotReady). After removal the tap stays (the datapath owns it), without QEMU. */
static void test_qemu_tap(void **state)
{
    ctx_t *x = *state;
    config_set(x->cfg, "agent.qemu.ready_line", "");   /* no DHCP here: do not wait for the boot */
    start(x);
    vm_spec_t s;
    verr_t e = {0};
    spec_of(x, &s, ID1, VM_POWER_RUNNING, 0);
    s.n_ifaces = 1;
    snprintf(s.ifaces[0].eni_id, sizeof s.ifaces[0].eni_id, "eni-00000000000000aa");
    snprintf(s.ifaces[0].device, sizeof s.ifaces[0].device, "vt-0000000000aa");
    snprintf(s.ifaces[0].mac, sizeof s.ifaces[0].mac, "02:00:00:00:00:aa");
    assert_int_equal(sh("ip netns del vtest-h-%s 2>/dev/null; true"), 0);
    assert_int_equal(vm_driver_ensure(x->d, &s, &e), -1);
    assert_string_equal(e.code, "NetworkNotReady");
    assert_int_equal(sh("ip netns add vtest-h-%s"), 0);
    assert_int_equal(vm_driver_ensure(x->d, &s, &e), -1);
    assert_string_equal(e.code, "NetworkNotReady");
    assert_int_equal(sh("ip -n vtest-h-%s tuntap add dev vt-0000000000aa mode tap && "
                               "ip -n vtest-h-%s link set vt-0000000000aa up"), 0);
    assert_false(tap_has_carrier());
    int rc = vm_driver_ensure(x->d, &s, &e);
    int carrier = rc == 0 && tap_has_carrier();
    vm_state_t st = {0};
    if (rc == 0) {
        st = state_of(x, ID1);
        rc = vm_driver_remove(x->d, ID1, &e);
    }
    int after = tap_has_carrier();
    assert_int_equal(sh("ip netns del vtest-h-%s"), 0);
    if (rc < 0)
        fail_msg("%s %s", e.code, e.message);
    assert_true(carrier);
    assert_false(after);
    assert_gone(x, ID1, st.pid, st.start_time);
}

/* A chatty guest cannot fill the disk: past agent.console_max_bytes the console file's
 * head is cut off (by whole blocks, in place), the tail and the running total stay right,
 * and a guest that keeps appending through the descriptor it had loses nothing. */
static void test_console_capped(void **state)
{
    ctx_t *x = *state;
    start(x);
    ensure_ok(x, ID1, VM_POWER_RUNNING, 0);
    wait_ready(x, ID1, 1);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s/console.log", x->drv_dir, ID1);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    uint64_t before = (uint64_t)sb.st_size;
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);   /* as the guest's console */
    assert_true(fd >= 0);
    char line[32];
    uint64_t written = 0;
    for (int i = 0; i < 100000; i++) {   /* 1.3 MB */
        int n = snprintf(line, sizeof line, "line %07d\n", i);
        assert_int_equal(write(fd, line, (size_t)n), n);
        written += (uint64_t)n;
    }
    vm_console_cap_set(256 * 1024);
    char *buf = NULL;
    size_t len = 0;
    uint64_t total = 0;
    verr_t e = {0};
    assert_int_equal(vm_driver_console(x->d, ID1, VM_CONSOLE_MAX, &buf, &len, &total, &e), 0);
    assert_int_equal(total, before + written);
    assert_int_equal(len, VM_CONSOLE_MAX);
    assert_true(len >= 13 && !memcmp(buf + len - 13, "line 0099999\n", 13));
    free(buf);
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size <= 256 * 1024);
    assert_true(sb.st_size >= VM_CONSOLE_MAX);
    /* the guest writes on through its descriptor: appended after what was kept */
    assert_int_equal(write(fd, "after the cut\n", 14), 14);
    close(fd);
    assert_int_equal(vm_driver_console(x->d, ID1, VM_CONSOLE_MAX, &buf, &len, &total, &e), 0);
    assert_int_equal(total, before + written + 14);
    assert_true(!memcmp(buf + len - 27, "line 0099999\nafter the cut\n", 27));
    free(buf);
    vm_console_cap_set(1024 * 1024);
    assert_int_equal(vm_driver_remove(x->d, ID1, &e), 0);
    assert_gone(x, ID1, 0, 0);
}

/* A root file system the container cannot start in (one file: no /proc, no /sbin/init):
 * every ensure fails with the step that failed, and list never shows it running (a
 * failed start's processes, still being killed, once made a busy cgroup count as a
 * running guest, and compute took the launch for running). */
static void test_container_unstartable(void **state)
{
    ctx_t *x = *state;
    start(x);
    char dir[PATH_MAX], tgz[PATH_MAX + 32], cmd[5 * PATH_MAX];
    snprintf(dir, sizeof dir, "%s/badroot", x->dir);
    snprintf(tgz, sizeof tgz, "%s/bad.tar.gz", x->dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/etc && echo no-init > %s/etc/motd && tar -czf %s -C %s .", dir, dir, tgz, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(x->rootfs, sizeof x->rootfs, "%.*s", (int)sizeof x->rootfs - 1, tgz);
    assert_int_equal(file_sha(x->rootfs, x->rootfs_sha), 0);
    for (int i = 0; i < 30; i++) {
        vm_spec_t s;
        spec_of(x, &s, ID1, VM_POWER_RUNNING, 0);
        verr_t e = {0};
        assert_int_equal(vm_driver_ensure(x->d, &s, &e), -1);
        assert_non_null(strstr(e.message, "start container"));
        size_t n = 0;
        vm_status_t st = listed(x, ID1, &n);
        assert_int_equal(n, 1);
        if (st.power == VM_POWER_RUNNING)
            fail_msg("listed running after failed start %d: %s", i, e.message);
    }
}

/* A power loss before the kernel wrote a state file back (VM_WRITE_RUNTIME: no fsync)
 * leaves it empty; the guest died with the machine. The instance is then one not made:
 * listed stopped, and its next ensure starts it in the same directory, the files the
 * guest wrote in its upper layer kept. */
static void test_container_state_lost(void **state)
{
    ctx_t *x = *state;
    start(x);
    ensure_ok(x, ID1, VM_POWER_RUNNING, 0);
    ensure_ok(x, ID1, VM_POWER_STOPPED, 0);
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s/upper/written-by-guest", x->drv_dir, ID1);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(p, sizeof p, "%s/%s/state.json", x->drv_dir, ID1);
    assert_int_equal(truncate(p, 0), 0);
    size_t n = 0;
    vm_status_t st = listed(x, ID1, &n);
    assert_int_equal(n, 1);
    assert_int_equal(st.power, VM_POWER_STOPPED);
    ensure_ok(x, ID1, VM_POWER_RUNNING, 0);
    assert_int_equal(listed(x, ID1, NULL).power, VM_POWER_RUNNING);
    snprintf(p, sizeof p, "%s/%s/upper/written-by-guest", x->drv_dir, ID1);
    assert_int_equal(access(p, F_OK), 0);
    verr_t e = {0};
    assert_int_equal(vm_driver_remove(x->d, ID1, &e), 0);
    assert_int_equal(count_listed(x), 0);

    /* with a keep (agent.container.base_keep_s), the base no instance uses stays for the
     * next launch, and goes once that time has passed since its last use */
    vm_driver_close(x->d);
    x->d = NULL;
    config_set(x->cfg, "agent.container.base_keep_s", "600");
    open_driver(x);
    ensure_ok(x, ID1, VM_POWER_RUNNING, 0);
    assert_int_equal(vm_driver_remove(x->d, ID1, &e), 0);
    snprintf(p, sizeof p, "%s/images/%s", x->drv_dir, x->rootfs_sha);
    assert_int_equal(access(p, F_OK), 0);
    struct timespec old[2] = {{.tv_sec = time(NULL) - 700}, {.tv_sec = time(NULL) - 700}};
    assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0);
    vm_driver_close(x->d);
    x->d = NULL;
    open_driver(x);
    assert_int_equal(count_listed(x), 0);   /* the first listing collects */
    assert_no_bases(x);
}

/* A boot's wait is given up when the agent no longer wants the instance running
 * (spec.abandon, set when a terminate or stop comes during the boot): ensure returns
 * long before the boot's timeout, as on that timeout, and the instance is then removed
 * at once. Before, a terminate of a QEMU guest still booting waited for the whole
 * agent.qemu.boot_timeout_s. sim's boot is a sleep given up the same way; a container's
 * ensure does not wait for its guest. */
typedef struct {
    ctx_t *x;
    vm_spec_t spec;
    int rc;
    verr_t e;
} ensure_arg_t;

static void *ensure_thread(void *p)
{
    ensure_arg_t *a = p;
    a->rc = vm_driver_ensure(a->x->d, &a->spec, &a->e);
    return NULL;
}

static void test_boot_wait_abandoned(void **state)
{
    ctx_t *x = *state;
    /* a ready line no guest prints, and a boot that lasts: only abandon ends the wait */
    config_set(x->cfg, "agent.qemu.ready_line", "VIRGA-READY-LINE-NO-GUEST-PRINTS");
    config_set(x->cfg, "agent.qemu.boot_timeout_s", "900");
    config_set(x->cfg, "agent.sim.boot_delay_ms", "900000");
    start(x);
    _Atomic int abandon = 0;
    ensure_arg_t a = {.x = x};
    spec_of(x, &a.spec, ID1, VM_POWER_RUNNING, 0);
    a.spec.abandon = &abandon;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, ensure_thread, &a), 0);
    usleep(500 * 1000);   /* the boot under way (qemu: started, waiting for the line) */
    atomic_store(&abandon, 1);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 300;   /* a third of the boot's timeout: a wait not given up fails */
    int joined = pthread_timedjoin_np(t, NULL, &until);
    if (joined) {
        atomic_store(&abandon, 1);
        fail_msg("ensure still waits for the boot 300 s after it was abandoned");
    }
    if (a.rc < 0)
        fail_msg("abandoned ensure: %s %s", a.e.code, a.e.message);
    vm_state_t st = state_of(x, ID1);
    verr_t e = {0};
    assert_int_equal(vm_driver_remove(x->d, ID1, &e), 0);
    assert_gone(x, ID1, st.pid, st.start_time);
}

#define CONTRACT(i)                                                                            \
    cmocka_unit_test_prestate_setup_teardown(test_lifecycle, setup, teardown, (void *)&cases[i]), \
    cmocka_unit_test_prestate_setup_teardown(test_adopt_after_restart, setup, teardown, (void *)&cases[i]), \
    cmocka_unit_test_prestate_setup_teardown(test_bad_input, setup, teardown, (void *)&cases[i])

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    snprintf(host, sizeof host, "ht%d", (int)getpid());
    const struct CMUnitTest tests[] = {
        CONTRACT(0),
        CONTRACT(1),
        CONTRACT(2),
        cmocka_unit_test_prestate_setup_teardown(test_console_capped, setup, teardown, (void *)&cases[0]),
        cmocka_unit_test_prestate_setup_teardown(test_container_details, setup, teardown, (void *)&cases[1]),
        cmocka_unit_test_prestate_setup_teardown(test_container_unstartable, setup, teardown, (void *)&cases[1]),
        cmocka_unit_test_prestate_setup_teardown(test_container_state_lost, setup, teardown, (void *)&cases[1]),
        cmocka_unit_test_prestate_setup_teardown(test_qemu_tap, setup, teardown, (void *)&cases[2]),
        cmocka_unit_test_prestate_setup_teardown(test_boot_wait_abandoned, setup, teardown, (void *)&cases[0]),
        cmocka_unit_test_prestate_setup_teardown(test_boot_wait_abandoned, setup, teardown, (void *)&cases[2]),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
