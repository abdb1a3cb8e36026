/* metrics.c - lock-free counters and histograms in Prometheus' text format (metrics.h). */
#include "metrics.h"

#include <stdio.h>
#include <time.h>

const double metrics_bucket_le[METRICS_NBUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

uint64_t metrics_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void metrics_hist_observe(metrics_hist_t *h, uint64_t us)
{
    int i = 0;
    while (i < METRICS_NBUCKETS && (double)us > metrics_bucket_le[i] * 1e6)
        i++;
    __atomic_add_fetch(&h->bucket[i], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->sum_us, us, __ATOMIC_RELAXED);
}

void metrics_family(strbuf_t *out, const char *name, const char *type, const char *help)
{
    strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_sample(strbuf_t *out, const char *name, const char *labels, uint64_t value)
{
    if (labels && *labels)
        strbuf_printf(out, "%s{%s} %llu\n", name, labels, (unsigned long long)value);
    else
        strbuf_printf(out, "%s %llu\n", name, (unsigned long long)value);
}

void metrics_hist_render(strbuf_t *out, const char *name, const char *labels, const metrics_hist_t *h)
{
    const char *sep = labels && *labels ? "," : "";
    uint64_t cum = 0;
    for (int i = 0; i <= METRICS_NBUCKETS; i++) {
        cum += metrics_read(&h->bucket[i]);
        if (i < METRICS_NBUCKETS)
            strbuf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels ? labels : "", sep,
                          metrics_bucket_le[i], (unsigned long long)cum);
        else
            strbuf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels ? labels : "", sep,
                          (unsigned long long)cum);
    }
    /* _count is the buckets' total, so a scrape never shows fewer in +Inf than counted */
    strbuf_printf(out, "%s_sum%s%s%s %.6f\n", name, *sep ? "{" : "", labels ? labels : "", *sep ? "}" : "",
                  (double)metrics_read(&h->sum_us) / 1e6);
    strbuf_printf(out, "%s_count%s%s%s %llu\n", name, *sep ? "{" : "", labels ? labels : "", *sep ? "}" : "",
                  (unsigned long long)cum);
}
