/* scheduler.h - placement of new instances on hosts (scheduler.c). */
#ifndef VIRGA_SCHEDULER_H
#define VIRGA_SCHEDULER_H

#include "compute.h"

/* Where an account's instances may run (docs/hybrid.md): only this cloud's own hosts,
 * those first and a public cloud region (a host of driver ec2) for the overflow, or only
 * a public region. */
typedef enum sched_policy {
    SCHED_PRIVATE = 0,
    SCHED_BURST,
    SCHED_PUBLIC,
} sched_policy_t;

/* "private", "burst", "public" -> 0; -1 for anything else. */
int sched_policy_parse(const char *s, sched_policy_t *out);
const char *sched_policy_name(sched_policy_t p);

typedef struct sched_req {
    int vcpus;
    long long memory_mib, disk_gib;
    const char *image_kind;    /* "container-rootfs" or "machine" */
    const char *zone;          /* NULL: any */
    const char *type_name;     /* for the error message */
    int min_count, max_count;
    sched_policy_t policy;
} sched_req_t;

typedef struct sched_pick {
    char host[64];
    char driver[16];
    char zone[64];
} sched_pick_t;

/* Inside the caller's transaction: lock the host rows (FOR UPDATE, so concurrent
 * launches see each other's placements and never overcommit), then place up to
 * max_count instances (picks[] has room for max_count). Returns how many were placed
 * (>= min_count), or -1 with InsufficientInstanceCapacity naming how many hosts each
 * filter rejected, and whether bursting was not allowed or the public clouds were full
 * too. With policy burst, a public host is picked only when no private host fits. */
int scheduler_place(db_t *db, const compute_t *c, const sched_req_t *r, sched_pick_t *picks, verr_t *e);

#endif
