/* bus_rpc - bus RPC round trip latency and throughput against a running cloud.
 *
 *   bus_rpc -c virga.yaml [--service compute] [--rate 1000] [--seconds 10] [--threads 8]
 *           [--throughput-seconds 5]
 *
 * Phase 1 paces sys.echo calls at --rate calls/s in total across --threads callers
 * (open loop: a caller that falls behind does not slow the schedule) and prints
 * p50/p99/max. Phase 2 runs the same callers unpaced for --throughput-seconds and
 * prints calls/s. Every loop is bounded by its time limit. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.h"
#include "config.h"
#include "log.h"

static bus_t *bus;
static const char *service = "compute";
static double rate = 1000, seconds = 10, tput_seconds = 5;
static int nthreads = 8;

struct worker {
    int idx;
    int paced;
    double *lat;
    size_t n, cap;
    size_t errors;
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
    double start = now_s(), limit = w->paced ? seconds : tput_seconds;
    double interval = w->paced ? nthreads / rate : 0;
    double next = start + (w->paced ? interval * w->idx / nthreads : 0);
    json_t *payload = json_pack("{s:s, s:i}", "hello", "virga", "n", w->idx);
    for (;;) {
        double t = now_s();
        if (t - start >= limit)
            break;
        if (w->paced && t < next) {
            struct timespec ts = {0, (long)((next - t) * 1e9)};
            nanosleep(&ts, NULL);
        }
        next += interval;
        double t0 = now_s();
        json_t *r = NULL;
        verr_t e;
        if (bus_call(bus, service, "sys.echo", json_incref(payload), NULL, 5000, &r, &e) < 0) {
            w->errors++;
            continue;
        }
        json_decref(r);
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 4096;
            w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
        }
        w->lat[w->n++] = (now_s() - t0) * 1e3;
    }
    json_decref(payload);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void phase(int paced)
{
    struct worker *ws = calloc((size_t)nthreads, sizeof *ws);
    pthread_t *th = calloc((size_t)nthreads, sizeof *th);
    double t0 = now_s();
    for (int i = 0; i < nthreads; i++) {
        ws[i].idx = i;
        ws[i].paced = paced;
        pthread_create(&th[i], NULL, run, &ws[i]);
    }
    size_t total = 0, errors = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        total += ws[i].n;
        errors += ws[i].errors;
    }
    double elapsed = now_s() - t0;
    double *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < nthreads; i++) {
        memcpy(all + k, ws[i].lat, ws[i].n * sizeof *all);
        k += ws[i].n;
        free(ws[i].lat);
    }
    qsort(all, total, sizeof *all, cmp);
    if (total == 0) {
        printf("bus_rpc %s: no successful calls (%zu errors)\n", paced ? "latency" : "throughput", errors);
    } else if (paced) {
        printf("bus_rpc latency: target %.0f calls/s, achieved %.0f calls/s over %.1f s, %zu calls, %zu errors: "
               "p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
               rate, total / elapsed, elapsed, total, errors, all[total / 2], all[(size_t)(total * 0.99)],
               all[total - 1]);
    } else {
        printf("bus_rpc throughput: %d callers unpaced: %.0f calls/s over %.1f s (%zu calls, %zu errors), p50 %.2f ms\n",
               nthreads, total / elapsed, elapsed, total, errors, all[total / 2]);
    }
    free(all);
    free(ws);
    free(th);
}

int main(int argc, char **argv)
{
    config_t *cfg = config_new();
    verr_t e = {0};
    char *rest[32];
    int nrest = 0;
    if (argc > 32 || config_parse_args(cfg, argc, argv, &nrest, rest, &e) < 0) {
        fprintf(stderr, "bus_rpc: %s\n", e.message);
        return 2;
    }
    for (int i = 0; i + 1 < nrest; i += 2) {
        if (!strcmp(rest[i], "--service")) service = rest[i + 1];
        else if (!strcmp(rest[i], "--rate")) rate = atof(rest[i + 1]);
        else if (!strcmp(rest[i], "--seconds")) seconds = atof(rest[i + 1]);
        else if (!strcmp(rest[i], "--threads")) nthreads = atoi(rest[i + 1]);
        else if (!strcmp(rest[i], "--throughput-seconds")) tput_seconds = atof(rest[i + 1]);
        else {
            fprintf(stderr, "bus_rpc: unknown option %s\n", rest[i]);
            return 2;
        }
    }
    if (rate <= 0 || seconds <= 0 || seconds > 600 || tput_seconds > 600 || nthreads < 1 || nthreads > 256) {
        fprintf(stderr, "bus_rpc: rate > 0, 0 < seconds <= 600, 1 <= threads <= 256\n");
        return 2;
    }
    log_init("bench", config_str(cfg, "log.level", "warn"), "text");
    if (!(bus = bus_open(cfg, "bench", &e))) {
        fprintf(stderr, "bus_rpc: %s\n", e.message);
        return 1;
    }
    json_t *r = NULL;
    if (bus_call(bus, service, "sys.health", NULL, NULL, 10000, &r, &e) < 0) { /* warm up */
        fprintf(stderr, "bus_rpc: %s is not answering: %s\n", service, e.message);
        return 1;
    }
    json_decref(r);
    phase(1);
    if (tput_seconds > 0)
        phase(0);
    bus_close(bus);
    config_free(cfg);
    return 0;
}
