/* qemu_accel.c - does KVM really work here? /dev/kvm may exist and even create VMs while
 * no guest can run (a nested hypervisor: QEMU aborts with "failed to set MSR 0x10a", or
 * the guest hangs). So the probe boots a real guest under KVM, the smallest there is:
 * a 512-byte boot sector, loaded by the BIOS, that writes to an isa-debug-exit port,
 * which makes QEMU exit with status (0x31 << 1) | 1 = 99. Any other outcome within
 * 15 s means TCG. About 0.2-0.6 s; the answer is cached (qemu.h). */
#include "qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jsonutil.h"

extern char **environ;

#define PROBE_EXIT 99
#define PROBE_TIMEOUT_MS 15000

/* mov al, 0x31; out 0xf4, al; cli; hlt; jmp $ */
static const unsigned char boot_code[] = {0xB0, 0x31, 0xE6, 0xF4, 0xFA, 0xF4, 0xEB, 0xFE};

static int kvm_device(char *why, size_t n)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, n, "/dev/kvm: %s", strerror(errno));
        return -1;
    }
    int v = ioctl(fd, KVM_GET_API_VERSION, 0);
    int vm = v == KVM_API_VERSION ? ioctl(fd, KVM_CREATE_VM, 0) : -1;
    if (vm < 0)
        snprintf(why, n, "/dev/kvm: API version %d, KVM_CREATE_VM %s", v, strerror(errno));
    else
        close(vm);
    close(fd);
    return vm < 0 ? -1 : 0;
}

static int probe_boot(const char *dir, const char *qemu, char *why, size_t n)
{
    char img[PATH_MAX], drive[PATH_MAX + 64];
    if (vm_pathf(img, sizeof img, "%s/kvm-probe.img", dir) < 0)
        return -1;
    unsigned char sector[512] = {0};
    memcpy(sector, boot_code, sizeof boot_code);
    sector[510] = 0x55;
    sector[511] = 0xAA;
    verr_t e;
    if (vm_write_file(img, (const char *)sector, sizeof sector, VM_WRITE_PLAIN, &e) < 0) {
        snprintf(why, n, "%s", e.message);
        return -1;
    }
    vm_pathf(drive, sizeof drive, "file=%s,format=raw,if=ide", img);
    char *argv[] = {(char *)qemu, "-accel", "kvm", "-cpu", "host", "-m", "16", "-nodefaults", "-no-user-config",
                    "-display", "none", "-no-reboot", "-drive", drive, "-device",
                    "isa-debug-exit,iobase=0xf4,iosize=0x04", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, qemu, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        snprintf(why, n, "%s: %s", qemu, strerror(rc));
        unlink(img);
        return -1;
    }
    int st = 0;
    int64_t end = vm_now_ms() + PROBE_TIMEOUT_MS;
    pid_t w;
    while ((w = waitpid(pid, &st, WNOHANG)) == 0 && vm_now_ms() < end)
        vm_sleep_ms(20);
    unlink(img);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        snprintf(why, n, "a KVM guest did not finish a boot sector in %d s", PROBE_TIMEOUT_MS / 1000);
        return -1;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == PROBE_EXIT)
        return 0;
    snprintf(why, n, "a KVM guest failed (QEMU %s %d)", WIFEXITED(st) ? "exit status" : "signal",
             WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return -1;
}

const char *qemu_accel(const char *state_dir, const char *qemu, const char *mode, char *why, size_t why_n)
{
    if (!strcmp(mode, "kvm") || !strcmp(mode, "tcg")) {
        snprintf(why, why_n, "agent.qemu.accel = %s", mode);
        return !strcmp(mode, "kvm") ? "kvm" : "tcg";
    }
    /* what the answer depends on */
    struct utsname u;
    uname(&u);
    char key[512], cache[PATH_MAX];
    struct stat sb;
    long long mtime = stat(qemu, &sb) == 0 ? (long long)sb.st_mtime : 0;
    snprintf(key, sizeof key, "%s %s %lld", u.release, qemu, mtime);
    vm_pathf(cache, sizeof cache, "%s/accel.json", state_dir);
    JSON_AUTO json_t *old = json_load_file(cache, 0, NULL);
    if (old && !strcmp(json_str(old, "key", ""), key)) {
        snprintf(why, why_n, "%s (cached)", json_str(old, "why", ""));
        return !strcmp(json_str(old, "accel", ""), "kvm") ? "kvm" : "tcg";
    }
    const char *accel = "tcg";
    if (kvm_device(why, why_n) == 0 && probe_boot(state_dir, qemu, why, why_n) == 0) {
        accel = "kvm";
        snprintf(why, why_n, "a KVM guest ran");
    }
    JSON_AUTO json_t *o = json_pack("{s:s, s:s, s:s}", "accel", accel, "why", why, "key", key);
    AUTOFREE char *s = json_compact(o);
    verr_t e;
    vm_write_file(cache, s, strlen(s), VM_WRITE_DURABLE, &e);
    return accel;
}
