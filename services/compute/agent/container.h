/* container.h - the container driver's parts: cgroups (container_cgroup.c) and the
 * start of a container process (container_start.c); the driver is container_driver.c. */
#ifndef VIRGA_AGENT_CONTAINER_H
#define VIRGA_AGENT_CONTAINER_H

#include <sys/types.h>

#include "vm_state.h"

#define CT_MAX_CG 4

typedef struct ct_cgroups {
    int v2;
    size_t n;
    char base[CT_MAX_CG][PATH_MAX / 2];   /* <hierarchy>/<own path>/<prefix>agent-<host> */
    char ctl[CT_MAX_CG][16];              /* v1 controller of each base */
} ct_cgroups_t;

/* Which hierarchy and where; NotImplemented when neither has memory, cpu and pids. */
int ct_cgroup_detect(ct_cgroups_t *cg, const char *prefix, const char *host, verr_t *e);
/* Record <inst_dir>/cgroups, make the instance's cgroups and set the limits. */
int ct_cgroup_create(const ct_cgroups_t *cg, const char *inst_dir, const char *id, const vm_spec_t *spec,
                     long pids_max, verr_t *e);
/* The recorded cgroups' cgroup.procs, opened for writing into fds: a process that writes
 * "0" there moves itself (its children follow). How many, or -1. */
int ct_cgroup_open_procs(const char *inst_dir, int fds[CT_MAX_CG], verr_t *e);
/* 1 when a process is in the recorded cgroups. */
int ct_cgroup_busy(const char *inst_dir);
/* SIGKILL everything in the recorded cgroups until they are empty (5 s at most). */
int ct_cgroup_kill(const char *inst_dir, verr_t *e);
/* Send sig to every process of the instance's cgroups (SIGSTOP/SIGCONT: CreateImage's pause). */
void ct_cgroup_signal(const char *inst_dir, int sig);
/* Kill, then remove the recorded cgroups. */
int ct_cgroup_remove(const char *inst_dir, verr_t *e);

/* What a container start needs, all prepared before fork (the children only make
 * system calls: the agent is multi-threaded). */
typedef struct ct_launch {
    char inst_dir[PATH_MAX];
    char root[PATH_MAX];          /* mount point of the overlay */
    char overlay_opts[3 * PATH_MAX];
    char netns[PATH_MAX];         /* /run/netns/<name> to join, "" for a new empty one */
    char hostname[64];
    int stop_timeout_ms;
} ct_launch_t;

/* container_netns.c. Whether the network namespace at path has the IPv4 address ip on
 * an interface with a carrier: the datapath makes the namespace, then configures the
 * interface in it, then attaches the host's end. */
int ct_netns_has_ip(const char *path, const char *ip);
/* Note in inst_dir the namespace (its path, "" for none) a container just joined. */
int ct_netns_note(const char *inst_dir, const char *netns, verr_t *e);
/* 1 when the running container of st is no longer in the namespace its path names (the
 * datapath made it anew): cut off, it must be started again there. */
int ct_netns_moved(const char *inst_dir, const vm_state_t *st);

/* container_seen.c. What listings keep of each instance between them, so that a listing
 * of a running instance costs a stat, a pidfd's poll and a stat (not its files read and
 * parsed, nor /proc read). One listing: ct_seen_begin, ct_seen_status for each instance
 * (-1: no readable state; else *st, whether it runs (its process, or anything in its
 * cgroups) and whether it was cut off from its namespace, as ct_netns_moved says),
 * ct_seen_end (what was not listed is forgotten). */
typedef struct ct_seen ct_seen_t;
ct_seen_t *ct_seen_new(void);
void ct_seen_free(ct_seen_t *s);
void ct_seen_begin(ct_seen_t *s);
int ct_seen_status(ct_seen_t *s, const char *inst_dir, const char *id, vm_state_t *st, int *up, int *moved);
void ct_seen_end(ct_seen_t *s);

/* Start the container; *pid and *start_time name its init (PID 1 inside). */
int ct_start(const ct_launch_t *l, pid_t *pid, uint64_t *start_time, verr_t *e);

#endif
