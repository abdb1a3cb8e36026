/* service_memory.c - malloc's settings and the periodic trim (service_memory.h).
 *
 * Why each setting:
 * - arenas: glibc gives a thread that finds the arenas busy an arena of its own, up to 8
 *   per core; a service runs 15-50 threads (bus workers, HTTP pool, librdkafka's and
 *   librados' own), so a busy moment leaves up to 16 arenas, each keeping the freed memory
 *   of the work it served. The threads allocate little at a time and each has malloc's
 *   per-thread cache (tcache) in front of the arena, so a few arenas are enough.
 * - trim: free memory inside a heap is given back only when the top of the heap is free
 *   and larger than the trim threshold, which glibc raises to twice the largest block it
 *   ever mmapped (up to 64 MiB): after one 4 MiB object stripe, freed memory stayed
 *   resident for good. malloc_trim(0) gives back the free pages anywhere in every arena.
 * - mmap threshold: blocks at least this large get their own mapping, unmapped as soon
 *   as they are freed. glibc's adaptive threshold (up to 32 MiB) is kept by default:
 *   re-mapping a 4 MiB stripe for every request costs page faults that the trim on a
 *   timer does not.
 * - the timer: every trim_interval_s (2 s), when the process did anything since the last
 *   trim; the work of a reconcile pass or of a batch of small messages left 1.5-3 MiB free
 *   in compute's and the agent's heaps, resident until the next trim (tail12).
 * - the trim after a burst: a page of 1,000 instances leaves 3-5 MiB free in compute's
 *   and the gateway's heaps (its text, its envelope, the fetched reply, the XML), which
 *   the timer gave back up to trim_interval_s later; so a large message also brings the
 *   trim forward to SERVICE_MEMORY_QUIET_MS after the last of a burst of them. Not at
 *   each free: a burst of pages reuses that memory, and handing it back at every page
 *   would cost its page faults again at the next (about 0.3 ms per MB). */
#include "service_memory.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static _Atomic int quiet_ms = SERVICE_MEMORY_QUIET_MS;   /* memory.burst_quiet_ms */

int service_memory_setup(const config_t *cfg, service_memory_opts_t *out, verr_t *e)
{
    service_memory_opts_t o = {
        .malloc_arenas = (int)config_int(cfg, "memory.malloc_arenas", 1),
        .mmap_threshold_bytes = config_int(cfg, "memory.mmap_threshold_bytes", 0),
        .trim_interval_s = (int)config_int(cfg, "memory.trim_interval_s", SERVICE_MEMORY_TRIM_INTERVAL_S),
        .burst_quiet_ms = (int)config_int(cfg, "memory.burst_quiet_ms", SERVICE_MEMORY_QUIET_MS),
    };
    if (o.malloc_arenas < 0 || o.malloc_arenas > 256)
        return verr_set(e, 500, "InvalidConfig", "memory.malloc_arenas must be 0..256 (0: glibc's default)");
    /* glibc accepts at most HEAP_MAX_SIZE/2 (32 MiB on 64-bit) */
    if (o.mmap_threshold_bytes != 0 && (o.mmap_threshold_bytes < 4096 || o.mmap_threshold_bytes > 32L << 20))
        return verr_set(e, 500, "InvalidConfig", "memory.mmap_threshold_bytes must be 0 or 4096..33554432");
    if (o.trim_interval_s < 0 || o.trim_interval_s > 86400)
        return verr_set(e, 500, "InvalidConfig", "memory.trim_interval_s must be 0..86400 (0: never)");
    if (o.burst_quiet_ms < 1 || o.burst_quiet_ms > 60000)
        return verr_set(e, 500, "InvalidConfig", "memory.burst_quiet_ms must be 1..60000");
    atomic_store(&quiet_ms, o.burst_quiet_ms);
    /* another malloc (AddressSanitizer's) may ignore them: the service runs all the same */
    if (o.malloc_arenas > 0 && !mallopt(M_ARENA_MAX, o.malloc_arenas))
        log_warn("memory: malloc ignored memory.malloc_arenas %d", o.malloc_arenas);
    if (o.mmap_threshold_bytes > 0 && !mallopt(M_MMAP_THRESHOLD, (int)o.mmap_threshold_bytes))
        log_warn("memory: malloc ignored memory.mmap_threshold_bytes %ld", o.mmap_threshold_bytes);
    if (out)
        *out = o;
    return 0;
}

static long resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static _Atomic int worked;   /* work was done since the last trim */

void service_memory_note_work(void)
{
    if (!atomic_load_explicit(&worked, memory_order_relaxed))   /* a read, not a write, per message */
        atomic_store_explicit(&worked, 1, memory_order_relaxed);
}

int service_memory_trim_if_busy(void)
{
    if (!atomic_load_explicit(&worked, memory_order_relaxed))
        return 0;
    /* without service_memory_trim's two reads of /proc/self/statm (for its log line and
     * its answer): this one runs every few seconds while the service works */
    atomic_store_explicit(&worked, 0, memory_order_relaxed);
    malloc_trim(0);
    return 1;
}

long service_memory_trim(void)
{
    atomic_store_explicit(&worked, 0, memory_order_relaxed);   /* what comes meanwhile sets it again */
    long before = resident_bytes();
    if (!malloc_trim(0))
        return 0;
    long given = before - resident_bytes();
    if (given > 1L << 20)
        log_debug("memory: gave %ld KiB back to the system", given / 1024);
    return given > 0 ? given : 0;
}

static _Atomic int64_t large_at;   /* ms of the last large message since the last trim; 0: none */
static sem_t *_Atomic waker;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void service_memory_wake_with(sem_t *wake) { atomic_store(&waker, wake); }

void service_memory_note_message(size_t bytes)
{
    service_memory_note_work();
    if (bytes < SERVICE_MEMORY_LARGE_BYTES)
        return;
    sem_t *w = atomic_load(&waker);
    if (atomic_exchange(&large_at, now_ms()) == 0 && w)
        sem_post(w);   /* the main thread sets its alarm */
}

int64_t service_memory_burst_trim_at(void)
{
    int64_t at = atomic_load(&large_at);
    return at ? at + atomic_load(&quiet_ms) : 0;
}

int service_memory_trim_after_burst(void)
{
    int64_t at = atomic_load(&large_at);
    if (!at || now_ms() < at + atomic_load(&quiet_ms))
        return 0;
    /* a large message that comes meanwhile sets its own time: the next trim is its */
    atomic_compare_exchange_strong(&large_at, &at, 0);
    service_memory_trim();
    return 1;
}
