/* ticker.c - see ticker.h. */
#include "ticker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


struct ticker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* on CLOCK_MONOTONIC */
    int64_t period_ms;
    int woken, stop;
    ticker_fn fn;
    void *arg;
    char name[16];
};

static struct timespec mono_in_ms(int64_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static int before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void *ticker_main(void *p)
{
    ticker_t *t = p;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        /* the next pass is due a period after the last one began; a wake or a stop
         * ends the wait early */
        struct timespec due = mono_in_ms(t->period_ms), now;
        while (!t->stop && !t->woken) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (!before(&now, &due))
                break;
            pthread_cond_timedwait(&t->cv, &t->mu, &due);
        }
        if (t->stop)
            break;
        t->woken = 0;
        pthread_mutex_unlock(&t->mu);
        t->fn(t->arg);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

ticker_t *ticker_start(const char *name, int64_t period_ms, int at_once, ticker_fn fn, void *arg, verr_t *e)
{
    ticker_t *t = xcalloc(1, sizeof *t);
    t->period_ms = period_ms < 1 ? 1 : period_ms;
    t->woken = at_once;
    t->fn = fn;
    t->arg = arg;
    snprintf(t->name, sizeof t->name, "%s", name);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&t->mu, NULL);
    int rc = pthread_create(&t->thread, NULL, ticker_main, t);
    if (rc) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        free(t);
        verr_set(e, 503, "ServiceUnavailable", "cannot start the %s thread: %s", name, strerror(rc));
        return NULL;
    }
    pthread_setname_np(t->thread, t->name);
    return t;
}

void ticker_wake(ticker_t *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->woken = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

void ticker_set_period(ticker_t *t, int64_t period_ms)
{
    pthread_mutex_lock(&t->mu);
    t->period_ms = period_ms < 1 ? 1 : period_ms;
    pthread_mutex_unlock(&t->mu);
}

void ticker_stop(ticker_t *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
