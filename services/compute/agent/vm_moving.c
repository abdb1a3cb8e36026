/* vm_moving.c - the marker of a guest being moved to a network made anew.
 *
 * A guest cut off from its network by the datapath rebuilding its interface (a
 * container's stand-in namespace made again, container_netns.c; a QEMU guest's tap
 * deleted and made again, qemu_driver.c) is stopped and started again on the new one.
 * Between that stop and the start the guest does not run, and list() must not report it
 * stopped: compute takes a stopped listing of a guest it wants running for a shutdown
 * from inside. The marker, <instance dir>/moving, keeps it `starting` until the start is
 * done; it is a file, so an agent killed in between still lists the guest as starting
 * and its successor's ensure finishes the move.
 *
 * The host itself stops guests too, and those must come back as well: `devcloud down`
 * kills its guests after the agent (it writes this marker first), and a reboot or a
 * power loss of the machine kills them all (vm_lost_with_host). Listed `stopped`, compute
 * would take each for a shutdown from inside and stop it: `make run`, Ctrl-C, `make run`
 * left every instance stopped. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm_state.h"

static void moving_path(const char *inst_dir, char *out, size_t n)
{
    vm_pathf(out, n, "%s/moving", inst_dir);
}

int vm_moving_mark(const char *inst_dir, verr_t *e)
{
    char p[PATH_MAX + 16];
    moving_path(inst_dir, p, sizeof p);
    return vm_write_file(p, "", 0, VM_WRITE_PLAIN, e);
}

void vm_moving_clear(const char *inst_dir)
{
    char p[PATH_MAX + 16];
    moving_path(inst_dir, p, sizeof p);
    unlink(p);
}

int vm_moving(const char *inst_dir)
{
    char p[PATH_MAX + 16];
    struct stat sb;
    moving_path(inst_dir, p, sizeof p);
    return stat(p, &sb) == 0;
}

/* The machine's boot time (seconds since the epoch), from /proc/stat's btime; 0 if unknown. */
static long long boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char line[256];
    long long bt = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lld", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

int vm_lost_with_host(const char *inst_dir, const vm_state_t *st)
{
    if (st->power != VM_POWER_RUNNING)
        return 0;
    /* the state is written at each ensure (a start included): one older than this boot
     * was last applied before the machine went down, and the guest went with it */
    char p[PATH_MAX + 16];
    struct stat sb;
    vm_pathf(p, sizeof p, "%s/state.json", inst_dir);
    long long bt = boot_time();
    return bt > 0 && stat(p, &sb) == 0 && (long long)sb.st_mtime < bt;
}
