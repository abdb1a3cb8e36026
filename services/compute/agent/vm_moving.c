/* vm_moving.c - the marker of a guest being moved to a network made anew.
 *
 * A guest cut off from its network by the datapath rebuilding its interface (a
 * container's stand-in namespace made again, container_netns.c; a QEMU guest's tap
 * deleted and made again, qemu_driver.c) is stopped and started again on the new one.
 * Between that stop and the start the guest does not run, and list() must not report it
 * stopped: compute takes a stopped listing of a guest it wants running for a shutdown
 * from inside. The marker, <instance dir>/moving, keeps it `starting` until the start is
 * done; it is a file, so an agent killed in between still lists the guest as starting
 * and its successor's ensure finishes the move. */
#include <stdio.h>
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
