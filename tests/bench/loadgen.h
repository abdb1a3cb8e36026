/* loadgen.h - the load loop shared by the benchmark programs (bus_rpc, s3_load).
 *
 * N threads each call one operation until a deadline, either unpaced or open-loop paced
 * at a total rate (a thread that falls behind does not slow the schedule); the latencies
 * of the calls that succeeded are gathered into p50/p99/max, with errors, bytes and
 * calls/s. The program keeps its own command line and output lines. */
#ifndef VIRGA_BENCH_LOADGEN_H
#define VIRGA_BENCH_LOADGEN_H

#include <stddef.h>

typedef struct loadgen {
    int threads;
    double seconds;   /* each thread starts no call after this long */
    double rate;      /* calls/s across all threads, open loop; 0: unpaced */
    void *arg;        /* passed to the callbacks */
    /* Per-thread state (NULL when not needed); thread_start may be NULL. */
    void *(*thread_start)(void *arg, int thread);
    /* One call: 0 on success, -1 on error. seq numbers the calls across threads (thread
     * t makes calls t, t + threads, t + 2 * threads, ...); bytes moved go into *bytes. */
    int (*call)(void *arg, void *state, long seq, size_t *bytes);
    void (*thread_stop)(void *arg, void *state);   /* may be NULL */
} loadgen_t;

typedef struct loadgen_result {
    size_t calls;             /* successful calls */
    size_t errors;
    size_t bytes;
    double elapsed;           /* s, from starting the threads to the last one ending */
    double per_s;             /* successful calls / elapsed */
    double p50, p99, max;     /* ms over the successful calls; 0 when there were none */
} loadgen_result_t;

/* Run one phase and wait for it to finish. */
void loadgen_run(const loadgen_t *lg, loadgen_result_t *out);

#endif
