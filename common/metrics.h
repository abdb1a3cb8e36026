/* metrics.h - Prometheus counters and fixed-bucket latency histograms that cost a few
 * relaxed atomic additions to update and take no lock, for request paths (per-action
 * counters of an HTTP endpoint, per-message-type counters of a bus server). Rendering
 * reads the same atomics: a scrape sees each value as of some instant, not a snapshot
 * of all of them at once (Prometheus' own client libraries behave the same). */
#ifndef VIRGA_METRICS_H
#define VIRGA_METRICS_H

#include <stdint.h>

#include "strbuf.h"

/* The upper bounds of the latency buckets, in seconds (le="..."), +Inf besides. Fixed
 * for every histogram so that dashboards can sum across actions and processes. */
#define METRICS_NBUCKETS 14
extern const double metrics_bucket_le[METRICS_NBUCKETS];

typedef struct metrics_hist {
    uint64_t bucket[METRICS_NBUCKETS + 1];   /* not cumulative; the last is +Inf only */
    uint64_t sum_us;
} metrics_hist_t;

/* Microseconds on the monotonic clock (for measuring what to observe). */
uint64_t metrics_now_us(void);
/* Count one observation of us microseconds. Thread-safe, lock-free. */
void metrics_hist_observe(metrics_hist_t *h, uint64_t us);

static inline void metrics_inc(uint64_t *c) { __atomic_add_fetch(c, 1, __ATOMIC_RELAXED); }
static inline void metrics_gauge_add(int64_t *g, int64_t d) { __atomic_add_fetch(g, d, __ATOMIC_RELAXED); }
static inline uint64_t metrics_read(const uint64_t *c) { return __atomic_load_n(c, __ATOMIC_RELAXED); }

/* "# HELP name help\n# TYPE name type\n", once per metric family. */
void metrics_family(strbuf_t *out, const char *name, const char *type, const char *help);
/* One sample: name{labels} value (labels without braces, "" for none). */
void metrics_sample(strbuf_t *out, const char *name, const char *labels, uint64_t value);
/* name_bucket{labels,le=...} (cumulative), name_sum (seconds) and name_count. */
void metrics_hist_render(strbuf_t *out, const char *name, const char *labels, const metrics_hist_t *h);

#endif
