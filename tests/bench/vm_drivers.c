/* vm_drivers.c - how long the agent's instance drivers take (docs/performance.md):
 * ensure(running) from nothing until it returns and until the console's ready line,
 * then remove. One instance at a time, so the figures are the driver's own, not the
 * machine's parallelism. Root for container and qemu; images from build/images.
 *
 *   build/bench/vm_drivers [--driver sim|container|qemu] [--count N] [--images DIR]
 *
 * Bounded: N instances (default sim 200, container 30, qemu 3) and 120 s; everything it
 * made is removed at the end. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/file_sha256.h"
#include "vm_state.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[(int)((n - 1) * p / 100 + 0.5)];
}

static void set_file(vm_file_t *f, const char *dir, const char *name, const char *fmt)
{
    vm_pathf(f->path, sizeof f->path, "%s/%s", dir, name);
    snprintf(f->format, sizeof f->format, "%s", fmt);
    if (file_sha(f->path, f->sha256) < 0) {
        fprintf(stderr, "vm_drivers: no %s (deploy/images/build)\n", f->path);
        exit(2);
    }
}

static double thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

static int ready(vm_driver_t *d, const char *id, const char *line)
{
    char *buf = NULL;
    size_t len;
    uint64_t total;
    verr_t e;
    int ok = vm_driver_console(d, id, VM_CONSOLE_MAX, &buf, &len, &total, &e) == 0 && strstr(buf, line);
    free(buf);
    return ok;
}

int main(int argc, char **argv)
{
    const char *drv = "sim", *images = "build/images";
    int count = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--driver"))
            drv = argv[i + 1];
        else if (!strcmp(argv[i], "--count"))
            count = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--images"))
            images = argv[i + 1];
    }
    if (sodium_init() < 0)
        return 1;
    int is_ct = !strcmp(drv, "container"), is_q = !strcmp(drv, "qemu");
    if (count <= 0)
        count = is_q ? 3 : is_ct ? 30 : 200;
    if ((is_ct || is_q) && geteuid() != 0) {
        printf("%s: skipped (needs root)\n", drv);
        return 0;
    }
    config_t *cfg = config_new();
    config_set(cfg, "agent.sim.delay_ms", "0");
    config_set(cfg, "agent.container.stop_timeout_ms", "0");
    vm_driver_cfg_t c = {.host_id = "bench", .prefix = "vbench-", .cfg = cfg};
    verr_t e;
    vm_spec_t s = {.vcpus = 1, .memory_mib = is_q ? 160 : 64, .power = VM_POWER_RUNNING};
    snprintf(s.driver, sizeof s.driver, "%s", drv);
    if (is_ct)
        set_file(&s.image, images, "busybox-rootfs.tar.gz", "tar.gz");
    if (is_q) {
        set_file(&s.kernel, images, "vmlinuz-cloud", "");
        set_file(&s.ramdisk, images, "initrd-virga.cpio.gz", "");
    }
    /* made once the images are found: a missing image exits before (it left the directory) */
    char dir[] = "/tmp/virga-vmbench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    c.state_dir = dir;
    vm_driver_t *d = vm_driver_open(drv, &c, &e);
    if (!d) {
        fprintf(stderr, "vm_drivers: open %s: %s %s\n", drv, e.code, e.message);
        rmdir(dir);
        return 1;
    }
    const char *line = is_ct ? "VIRGA-CONTAINER-READY" : "VIRGA-GUEST-READY";
    double *ens = calloc((size_t)count, sizeof *ens), *rdy = calloc((size_t)count, sizeof *rdy),
           *rem = calloc((size_t)count, sizeof *rem);
    int64_t end = vm_now_ms() + 120000;
    int n = 0, failed = 0;
    for (; n < count && vm_now_ms() < end; n++) {
        snprintf(s.id, sizeof s.id, "i-%017x", n + 1);
        int64_t t0 = vm_now_ms();
        if (vm_driver_ensure(d, &s, &e) < 0) {
            fprintf(stderr, "ensure %s: %s %s\n", s.id, e.code, e.message);
            failed = 1;
            break;
        }
        int64_t t1 = vm_now_ms();
        while (!ready(d, s.id, line) && vm_now_ms() < end)
            vm_sleep_ms(is_q ? 20 : 1);
        int64_t t2 = vm_now_ms();
        ens[n] = (double)(t1 - t0);
        rdy[n] = (double)(t2 - t0);
    }
    /* list() with the n instances running: the instance loop lists at each pass. The
     * first listing of a driver just opened reads every instance's files (as each listing
     * did before the container driver kept them, container_seen.c); the later ones are
     * what a pass costs now. CPU of this thread, the driver's work alone. */
    double first = 0, later = 0;
    int rounds = 20;
    for (int r = 0; r < rounds && n > 0; r++) {
        vm_driver_close(d);
        d = vm_driver_open(drv, &c, &e);
        if (!d) {
            fprintf(stderr, "vm_drivers: open %s again: %s %s\n", drv, e.code, e.message);
            return 1;
        }
        for (int k = 0; k < 2; k++) {
            vm_status_t *l = NULL;
            size_t ln = 0;
            double t0 = thread_cpu_ms();
            if (vm_driver_list(d, &l, &ln, &e) < 0)
                fprintf(stderr, "list: %s %s\n", e.code, e.message);
            *(k ? &later : &first) += thread_cpu_ms() - t0;
            free(l);
        }
    }
    for (int i = 0; i < n; i++) {
        snprintf(s.id, sizeof s.id, "i-%017x", i + 1);
        int64_t t0 = vm_now_ms();
        if (vm_driver_remove(d, s.id, &e) < 0)
            fprintf(stderr, "remove %s: %s %s\n", s.id, e.code, e.message);
        rem[i] = (double)(vm_now_ms() - t0);
    }
    vm_driver_close(d);
    vm_rmtree(dir, &e);
    config_free(cfg);
    if (n > 0)
        printf("%s driver, %d instances one at a time: ensure(running) p50 %.0f ms p99 %.0f ms; "
               "to the ready line p50 %.0f ms p99 %.0f ms; remove p50 %.0f ms p99 %.0f ms\n",
               drv, n, pct(ens, n, 50), pct(ens, n, 99), pct(rdy, n, 50), pct(rdy, n, 99), pct(rem, n, 50),
               pct(rem, n, 99));
    if (n > 0)
        printf("%s driver, list() of %d running instances, CPU: the first after open %.3f ms, a later one %.3f ms\n",
               drv, n, first / rounds, later / rounds);
    free(ens);
    free(rdy);
    free(rem);
    return failed;
}
