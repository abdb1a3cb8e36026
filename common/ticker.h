/* ticker.h - a background thread that runs one function every period, and at once when
 * woken, until it is stopped.
 *
 * The services' periodic work (compute's interface sync, the object store's transfer
 * flush, writer heartbeat and RADOS probe, the HTTP body watchdog) each wrote the same
 * loop: a mutex, a condition variable, a stop flag, a timed wait and a join. It is
 * written once here, on a monotonic clock (a wall-clock step can neither stall a pass
 * nor run many at once). The function runs without any lock of the ticker's held; a
 * wake that comes during a pass makes one more pass right after it, so no wake is lost
 * and none is run twice. */
#ifndef VIRGA_TICKER_H
#define VIRGA_TICKER_H

#include <stdint.h>

#include "err.h"

typedef struct ticker ticker_t;

typedef void (*ticker_fn)(void *arg);

/* Start the thread: fn(arg) every period_ms (at least 1), the first pass at once when
 * at_once, else one period after the start. NULL and e (ServiceUnavailable) when the
 * thread cannot be made. name is for the logs and the thread's name (15 bytes kept). */
ticker_t *ticker_start(const char *name, int64_t period_ms, int at_once, ticker_fn fn, void *arg, verr_t *e);
/* A pass as soon as possible (after the running one, if any). Safe from any thread and
 * from fn itself; a NULL ticker is ignored. */
void ticker_wake(ticker_t *t);
/* The period from the next wait on (at least 1 ms): a pass that failed may ask for the
 * next one sooner or later. Safe from fn itself. */
void ticker_set_period(ticker_t *t, int64_t period_ms);
/* No pass starts after this; waits for the running one to end, then frees the ticker.
 * NULL is ignored. Not from fn itself. */
void ticker_stop(ticker_t *t);

#endif
