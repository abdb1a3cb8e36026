/* scheduler.h - placement of new instances on hosts (scheduler.c). */
#ifndef VIRGA_SCHEDULER_H
#define VIRGA_SCHEDULER_H

#include "compute.h"

typedef struct sched_req {
    int vcpus;
    long long memory_mib, disk_gib;
    const char *image_kind;    /* "container-rootfs" or "machine" */
    const char *zone;          /* NULL: any */
    const char *type_name;     /* for the error message */
    int min_count, max_count;
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
 * filter rejected. */
int scheduler_place(db_t *db, const compute_t *c, const sched_req_t *r, sched_pick_t *picks, verr_t *e);

/* A placed instance gets a new size (ModifyInstanceAttribute instanceType, while stopped:
 * stopped instances keep their room): inside the caller's transaction, the host's row
 * locked, its capacity (overcommit applied) minus its other instances' must hold it, else
 * InsufficientInstanceCapacity. */
int scheduler_resize(db_t *db, const compute_t *c, const char *host, const char *instance, int vcpus,
                     long long memory_mib, const char *type_name, verr_t *e);

#endif
