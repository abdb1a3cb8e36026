/* loadgen.c - worker threads, pacing and latency percentiles for the benchmarks. */
#include "loadgen.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"

struct worker {
    const loadgen_t *lg;
    int idx;
    double *lat;   /* ms, one per successful call */
    size_t n, cap, errors, bytes;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    const loadgen_t *lg = w->lg;
    void *state = lg->thread_start ? lg->thread_start(lg->arg, w->idx) : NULL;
    double start = now_s();
    /* Paced threads are staggered evenly over one interval. */
    double interval = lg->rate > 0 ? lg->threads / lg->rate : 0;
    double next = start + interval * w->idx / lg->threads;
    for (long seq = w->idx;; seq += lg->threads) {
        double t = now_s();
        if (t - start >= lg->seconds)
            break;
        if (t < next) {
            struct timespec ts = {0, (long)((next - t) * 1e9)};
            nanosleep(&ts, NULL);
        }
        next += interval;
        double t0 = now_s();
        if (lg->call(lg->arg, state, seq, &w->bytes) < 0) {
            w->errors++;
            continue;
        }
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 4096;
            w->lat = xrealloc(w->lat, w->cap * sizeof *w->lat);
        }
        w->lat[w->n++] = (now_s() - t0) * 1e3;
    }
    if (lg->thread_stop)
        lg->thread_stop(lg->arg, state);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void loadgen_run(const loadgen_t *lg, loadgen_result_t *out)
{
    struct worker *ws = xcalloc((size_t)lg->threads, sizeof *ws);
    pthread_t *th = xcalloc((size_t)lg->threads, sizeof *th);
    double t0 = now_s();
    for (int i = 0; i < lg->threads; i++) {
        ws[i] = (struct worker){.lg = lg, .idx = i};
        pthread_create(&th[i], NULL, run, &ws[i]);
    }
    *out = (loadgen_result_t){0};
    for (int i = 0; i < lg->threads; i++) {
        pthread_join(th[i], NULL);
        out->calls += ws[i].n;
        out->errors += ws[i].errors;
        out->bytes += ws[i].bytes;
    }
    out->elapsed = now_s() - t0;
    out->per_s = out->calls / out->elapsed;
    size_t n = out->calls, k = 0;
    double *all = xmalloc((n ? n : 1) * sizeof *all);
    for (int i = 0; i < lg->threads; i++) {
        if (ws[i].n)
            memcpy(all + k, ws[i].lat, ws[i].n * sizeof *all);
        k += ws[i].n;
        free(ws[i].lat);
    }
    qsort(all, n, sizeof *all, cmp);
    if (n) {
        out->p50 = all[n / 2];
        out->p99 = all[(size_t)(n * 0.99)];
        out->max = all[n - 1];
    }
    free(all);
    free(ws);
    free(th);
}
