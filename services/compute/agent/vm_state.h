/* vm_state.h - what the drivers share: the per-instance state file, processes named by
 * pid *and* start time (so a pid reused after a reboot or a crash is never mistaken for
 * an instance), bounded console tails, and directory trees removed without crossing a
 * mount. Layout of a driver's state dir:
 *   <state_dir>/<instance id>/state.json   what was applied (vm_state_t)
 *   <state_dir>/<instance id>/console.log  the console (container, qemu)
 *   ... driver files (overlay dirs, QMP socket, disk overlay)
 * An instance exists for list() exactly when its directory has a state.json. */
#ifndef VIRGA_AGENT_VM_STATE_H
#define VIRGA_AGENT_VM_STATE_H

#include <stdint.h>
#include <sys/types.h>

#include "vm_driver.h"

typedef struct vm_state {
    vm_power_t power;         /* applied: running or stopped (as last ensured) */
    uint64_t reboot_seq;      /* applied */
    pid_t pid;                /* the instance's process, 0 when none */
    uint64_t start_time;      /* its start time (clock ticks after boot, /proc/PID/stat) */
    char image_sha256[65];    /* the base it was made from, for garbage collection */
    char error[256];          /* why it is in error; "" when not */
} vm_state_t;

/* <dir>/<id> into out. */
void vm_inst_dir(const char *dir, const char *id, char *out, size_t n);
/* 0 and *st, or -1 when there is no (readable) state file; e is set then. */
int vm_state_read(const char *inst_dir, vm_state_t *st, verr_t *e);
/* Atomic (temp file, rename): a crash leaves the old or the new state. how is
 * VM_WRITE_DURABLE (fsync before the rename) for what outlives the machine (an ec2
 * instance's state: the public cloud's instance runs on through a host's power loss), or
 * VM_WRITE_RUNTIME for what dies with it (vm_write_file). */
int vm_state_write(const char *inst_dir, const vm_state_t *st, int how, verr_t *e);

/* Instance ids that have a directory under dir (caller frees each and the array). */
char **vm_state_ids(const char *dir, size_t *n);

/* The start time of a live process (not a zombie), or 0 when there is none. */
uint64_t vm_proc_start_time(pid_t pid);
/* 1 when pid is alive and is the process that started at start_time. */
int vm_proc_is(pid_t pid, uint64_t start_time);
/* SIGTERM, wait up to timeout_ms for it to go (not at all when it has no SIGTERM
 * handler), then SIGKILL and wait up to 5 s more. Only if pid still is that process.
 * 0 when it is gone. */
int vm_proc_stop(pid_t pid, uint64_t start_time, int timeout_ms);

/* mkdir -p with mode for the directories it makes. */
int vm_mkdirs(const char *path, mode_t mode, verr_t *e);
/* rm -rf that does not cross into another file system (a mount left behind is not
 * emptied; the call then fails with the path named). Absent is success. */
int vm_rmtree(const char *path, verr_t *e);
/* Run argv (argv[0] looked up in PATH), stdin /dev/null, its output to the agent's
 * stderr; -1 with InternalError naming the command when it does not exit 0. */
int vm_run(char *const argv[], verr_t *e);

/* The last max bytes of a file and its size; an absent file is empty. */
int vm_file_tail(const char *path, size_t max, char **buf, size_t *len, uint64_t *total, verr_t *e);
/* vm_console.c: a console's last max bytes and its total since the instance was made,
 * cutting the file's head off once it passes the cap (agent.console_max_bytes; 0 = no
 * cap), so a chatty guest never fills the host's disk. */
int vm_console_tail(const char *path, size_t max, char **buf, size_t *len, uint64_t *total, verr_t *e);
void vm_console_cap_set(uint64_t bytes);
/* Read a small file (a /proc or /sys entry, a marker) into buf, NUL-terminated, at most
 * size - 1 bytes: its length, or -1 when it cannot be read. */
ssize_t vm_read_small(const char *path, char *buf, size_t size);
/* How a small file is written:
 *   VM_WRITE_PLAIN    in place (a partial file is possible after any crash);
 *   VM_WRITE_RUNTIME  through a temp name and rename, without fsync: other processes,
 *                     and a restarted agent after a kill -9, see the old or the new file
 *                     whole (the page cache outlives the process). Only a crash of the
 *                     machine can leave it empty or old, and that is for files that
 *                     describe what dies with the machine (processes, cgroups, namespaces
 *                     under /run): a file that cannot be read is taken for an instance
 *                     not made, which the next ensure makes again. An fsync is ~10 ms
 *                     here, and a container's start wrote four (docs/compute.md);
 *   VM_WRITE_DURABLE  temp name, fsync, rename: for what outlives the machine. */
enum { VM_WRITE_PLAIN = 0, VM_WRITE_DURABLE = 1, VM_WRITE_RUNTIME = 2 };
int vm_write_file(const char *path, const char *data, size_t len, int how, verr_t *e);

/* vm_moving.c: the marker of a guest stopped to be started again (on a network made
 * anew, or after the host stopped it), listed as starting, never stopped, while it is there. */
int vm_moving_mark(const char *inst_dir, verr_t *e);
void vm_moving_clear(const char *inst_dir);
int vm_moving(const char *inst_dir);
/* A guest whose state says it runs, last applied before this boot of the machine: it went
 * with the host (reboot, power loss), not by a shutdown from inside; listed starting, so
 * the ensure starts it again. */
int vm_lost_with_host(const char *inst_dir, const vm_state_t *st);

/* snprintf for paths: -1 when out is too small (it then holds a truncated string). */
int vm_pathf(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Milliseconds of a monotonic clock. */
int64_t vm_now_ms(void);
void vm_sleep_ms(int ms);

#endif
