/* service_memory.h - how a service process keeps its resident memory small (issue 11:
 * every service together under 150 MiB). glibc's malloc keeps what a burst of work freed
 * (a page of 1,000 instances, the stripes of an S3 upload) for reuse, in as many arenas as
 * threads ran at once, and rarely gives it back: a service stayed at its high-water mark.
 * So each service limits its arenas at start and, on a timer, hands the free memory back
 * to the kernel. Keys and defaults: docs/config.md (memory.*). */
#ifndef VIRGA_SERVICE_MEMORY_H
#define VIRGA_SERVICE_MEMORY_H

#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

typedef struct service_memory_opts {
    int malloc_arenas;          /* memory.malloc_arenas; 0: glibc's own (8 per core) */
    long mmap_threshold_bytes;  /* memory.mmap_threshold_bytes; 0: glibc's own (adaptive) */
    int trim_interval_s;        /* memory.trim_interval_s; 0: never */
    int burst_quiet_ms;         /* memory.burst_quiet_ms (SERVICE_MEMORY_QUIET_MS) */
} service_memory_opts_t;

/* Reads the memory.* keys and applies the malloc settings. Call before the process makes
 * any thread: an arena limit does not undo arenas already made. -1 with e set when a
 * value is out of its range. */
int service_memory_setup(const config_t *cfg, service_memory_opts_t *out, verr_t *e);

/* memory.trim_interval_s by default. 2 s, not 10: what a service's work frees between
 * two trims stays resident until the next (compute and the agent held 1.5-3 MiB more
 * for up to 10 s after every reconcile pass and every batch of the agents' reports,
 * which any reading of the services' memory could meet); the timer trims only when
 * something happened since the last trim (service_memory_trim_if_busy), so an idle
 * service's timer costs a wake-up, not a walk of the heap (docs/performance.md, tail12). */
#define SERVICE_MEMORY_TRIM_INTERVAL_S 2

/* Gives the free memory malloc holds back to the kernel, in every arena (malloc_trim):
 * the top of each heap and whole free pages inside it. Costs a walk of the free lists,
 * under each arena's lock in turn. Returns the resident bytes given back (VmRSS before
 * less after; 0 when nothing was given back). */
long service_memory_trim(void);

/* Says that the process did some work (a reconcile pass): the next timer trim is worth
 * its walk. Every bus message says so too (service_memory_note_message). Any thread. */
void service_memory_note_work(void);

/* The timer's trim: service_memory_trim when work was done since the last trim, else
 * nothing. 1 when it trimmed. */
int service_memory_trim_if_busy(void);

/* A message of this many bytes or more (a page of a listing: about 1.4 MB for 1,000
 * instances) leaves that much and more free in the heap once it is done with. */
#define SERVICE_MEMORY_LARGE_BYTES (256 * 1024)

/* Says that a message was just made or read (the bus calls it for every message it sends
 * or receives): work for the timer's trim, and, when it is large, the process then trims
 * memory.burst_quiet_ms (SERVICE_MEMORY_QUIET_MS) after the last of a burst of them,
 * instead of up to memory.trim_interval_s later. Cheap: one atomic exchange; any thread.
 * The quiet time weighs two of issue 11's aims (docs/performance.md, page9): longer keeps
 * a client's next page in memory already faulted in (a page's p99), shorter gives it back
 * before the services' memory is read. */
void service_memory_note_message(size_t bytes);

#define SERVICE_MEMORY_QUIET_MS 200

/* The service's main thread: the semaphore it sleeps on, posted at the first large
 * message after a trim (NULL: nobody to wake, as in virgadm). */
void service_memory_wake_with(sem_t *wake);

/* When the trim after a burst of large messages is due, in ms (bus_now_ms' clock);
 * 0 when none is. */
int64_t service_memory_burst_trim_at(void);

/* Trims when the trim after a burst is due (no large message for the quiet time): 1
 * when it trimmed. */
int service_memory_trim_after_burst(void);

#endif
