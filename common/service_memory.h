/* service_memory.h - how a service process keeps its resident memory small (issue 11:
 * every service together under 150 MiB). glibc's malloc keeps what a burst of work freed
 * (a page of 1,000 instances, the stripes of an S3 upload) for reuse, in as many arenas as
 * threads ran at once, and rarely gives it back: a service stayed at its high-water mark.
 * So each service limits its arenas at start and, on a timer, hands the free memory back
 * to the kernel. Keys and defaults: docs/config.md (memory.*). */
#ifndef VIRGA_SERVICE_MEMORY_H
#define VIRGA_SERVICE_MEMORY_H

#include "config.h"
#include "err.h"

typedef struct service_memory_opts {
    int malloc_arenas;          /* memory.malloc_arenas; 0: glibc's own (8 per core) */
    long mmap_threshold_bytes;  /* memory.mmap_threshold_bytes; 0: glibc's own (adaptive) */
    int trim_interval_s;        /* memory.trim_interval_s; 0: never */
} service_memory_opts_t;

/* Reads the memory.* keys and applies the malloc settings. Call before the process makes
 * any thread: an arena limit does not undo arenas already made. -1 with e set when a
 * value is out of its range. */
int service_memory_setup(const config_t *cfg, service_memory_opts_t *out, verr_t *e);

/* Gives the free memory malloc holds back to the kernel, in every arena (malloc_trim):
 * the top of each heap and whole free pages inside it. Costs a walk of the free lists,
 * under each arena's lock in turn. Returns the resident bytes given back (VmRSS before
 * less after; 0 when nothing was given back). */
long service_memory_trim(void);

#endif
