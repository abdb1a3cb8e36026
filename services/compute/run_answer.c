/* run_answer.c - RunInstances answers once its instances have their interfaces, as EC2's
 * answer does: each instance with its PrivateIpAddress, PrivateDnsName, MAC, subnet and
 * network interfaces, which scripts read straight from it
 * (`run-instances --query 'Instances[0].PrivateIpAddress'`).
 *
 * The addresses are the network's, made by the launch task's network.port_create after
 * the reservation is recorded (tasks.c). RunInstances does not make them itself: its
 * handler would then have to undo ports when the quota or the placement refused the
 * launch. So its handler records, wakes the task pool, and waits for the reservation's
 * launch tasks without holding its bus worker (bus_await: the message is set aside and
 * handled again from its start, where bus_kept finds the reservation this wait
 * recorded). The waiter is answered when every instance of the reservation has ended its
 * launch task (prepared, failed, or terminated meanwhile), or at compute.run_answer_wait_ms
 * (5000; 0: answer at once, without addresses) when a task is slow or runs in another
 * compute process: the answer then says what is known, as before.
 *
 * The waiters live in this process only; a restart loses them with the messages they
 * hold, which the gateway's call then times out (a ClientToken retry, which every AWS SDK
 * sends, finds the reservation recorded). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "ticker.h"
#include "db.h"
#include "jsonutil.h"

#define IDLE_PERIOD_MS 3600000   /* no waiter: the ticker sleeps (woken by the next one) */

typedef struct waiter {
    struct waiter *next;
    bus_waiter_t *w;
    char rid[IDS_MAX];
    uint64_t deadline_us;
    size_t n, left;
    char (*ids)[IDS_MAX];
    unsigned char *done;
    /* registered before its instances are read (see start): meanwhile it hears every
     * launch that ends, and keeps them to mark its own once it knows them */
    int reading;
    size_t n_heard, cap_heard;
    char (*heard)[IDS_MAX];
} waiter_t;

struct run_answers {
    pthread_mutex_t mu;
    waiter_t *head;
    ticker_t *ticker;   /* answers waiters past their deadline */
    int wait_ms;
};

/* The waiter's answer: the reservation, whatever became of its instances. Frees it. */
static void answer(waiter_t *wt)
{
    bus_answer(wt->w, json_pack("{s:s}", "reservation", wt->rid), NULL);
    free(wt->ids);
    free(wt->done);
    free(wt->heard);
    free(wt);
}

/* Keep id in a reading waiter (under mu). */
static void hear(waiter_t *wt, const char *id)
{
    if (wt->n_heard == wt->cap_heard) {
        wt->cap_heard = wt->cap_heard ? 2 * wt->cap_heard : 8;
        wt->heard = xrealloc(wt->heard, wt->cap_heard * sizeof *wt->heard);
    }
    snprintf(wt->heard[wt->n_heard++], IDS_MAX, "%s", id);
}

/* Mark instance id done in the waiters (under mu), or keep it in those still reading;
 * the finished ones are moved to *out. */
static void mark(run_answers_t *ra, const char *id, waiter_t **out)
{
    for (waiter_t **p = &ra->head; *p;) {
        waiter_t *wt = *p;
        if (wt->reading) {
            hear(wt, id);
            p = &wt->next;
            continue;
        }
        for (size_t i = 0; i < wt->n; i++)
            if (!wt->done[i] && !strcmp(wt->ids[i], id)) {
                wt->done[i] = 1;
                wt->left--;
            }
        if (!wt->left) {
            *p = wt->next;
            wt->next = *out;
            *out = wt;
        } else {
            p = &wt->next;
        }
    }
}

static void answer_all(waiter_t *list)
{
    for (waiter_t *n; list; list = n) {
        n = list->next;
        answer(list);
    }
}

/* The ticker's pass: answer the waiters whose time is up, and sleep until the next. */
static void expire(void *arg)
{
    run_answers_t *ra = arg;
    uint64_t now = metrics_now_us(), next = 0;
    waiter_t *due = NULL;
    pthread_mutex_lock(&ra->mu);
    for (waiter_t **p = &ra->head; *p;) {
        waiter_t *wt = *p;
        if (!wt->reading && wt->deadline_us <= now) {
            *p = wt->next;
            wt->next = due;
            due = wt;
            continue;
        }
        if (!next || wt->deadline_us < next)
            next = wt->deadline_us;
        p = &wt->next;
    }
    ticker_set_period(ra->ticker, next ? (int64_t)((next - now) / 1000) + 1 : IDLE_PERIOD_MS);
    pthread_mutex_unlock(&ra->mu);
    for (waiter_t *wt = due; wt; wt = wt->next)
        log_info("RunInstances: reservation %s answered after %d ms with %zu of %zu launch(es) still running",
                 wt->rid, ra->wait_ms, wt->left, wt->n);
    answer_all(due);
}

run_answers_t *run_answers_start(int wait_ms, verr_t *e)
{
    run_answers_t *ra = xcalloc(1, sizeof *ra);
    pthread_mutex_init(&ra->mu, NULL);
    ra->wait_ms = wait_ms;
    if (wait_ms > 0 && !(ra->ticker = ticker_start("run-answers", IDLE_PERIOD_MS, 0, expire, ra, e))) {
        pthread_mutex_destroy(&ra->mu);
        free(ra);
        return NULL;
    }
    return ra;
}

void run_answers_stop(run_answers_t *ra)
{
    if (!ra)
        return;
    ticker_stop(ra->ticker);
    pthread_mutex_lock(&ra->mu);
    waiter_t *left = ra->head;
    ra->head = NULL;
    pthread_mutex_unlock(&ra->mu);
    answer_all(left);   /* their messages run again and answer without the addresses */
    pthread_mutex_destroy(&ra->mu);
    free(ra);
}

int run_answers_wait_ms(const run_answers_t *ra) { return ra ? ra->wait_ms : 0; }

typedef struct start_arg {
    run_answers_t *ra;
    db_t *db;
    const char *rid;
} start_arg_t;

/* Take wt out of the waiters (under mu). */
static void unlink_waiter(run_answers_t *ra, waiter_t *wt)
{
    for (waiter_t **p = &ra->head; *p; p = &(*p)->next)
        if (*p == wt) {
            *p = wt->next;
            return;
        }
}

/* bus_await's start: the waiter registered first, reading (it hears every launch that
 * ends), then the reservation's instances read, with those whose launch task had ended;
 * then, under mu, it marks those and those it heard of meanwhile: a task that ends in
 * between is seen by one or the other. (Before, a ring of the 1,024 launches that ended
 * last was scanned whole at every registration, for the same guarantee: without either,
 * a task that ended in between was seen by neither, and the answer waited for
 * compute.run_answer_wait_ms and went without the addresses.) */
static void start(void *arg, bus_waiter_t *w)
{
    start_arg_t *a = arg;
    run_answers_t *ra = a->ra;
    waiter_t *wt = xcalloc(1, sizeof *wt);
    wt->w = w;
    snprintf(wt->rid, sizeof wt->rid, "%s", a->rid);
    wt->deadline_us = metrics_now_us() + (uint64_t)ra->wait_ms * 1000;
    wt->reading = 1;
    pthread_mutex_lock(&ra->mu);
    wt->next = ra->head;
    ra->head = wt;
    pthread_mutex_unlock(&ra->mu);
    verr_t e;
    const char *p[] = {a->rid};
    PG_AUTO PGresult *r = db_prepared(a->db, &e, "run_answer_ids",
        "SELECT id, prepared OR state <> 'pending' FROM instances WHERE reservation_id = $1 ORDER BY launch_index",
        1, p);
    size_t n = r ? (size_t)PQntuples(r) : 0;
    if (n) {   /* the waiter's own fields: mark leaves a reading waiter alone */
        wt->ids = xcalloc(n, sizeof *wt->ids);
        wt->done = xcalloc(n, 1);
        for (size_t i = 0; i < n; i++)
            snprintf(wt->ids[i], IDS_MAX, "%s", PQgetvalue(r, (int)i, 0));
    }
    pthread_mutex_lock(&ra->mu);
    wt->reading = 0;
    wt->n = wt->left = n;
    for (size_t i = 0; i < n; i++) {
        int ended = !strcmp(PQgetvalue(r, (int)i, 1), "t");
        for (size_t k = 0; !ended && k < wt->n_heard; k++)
            ended = !strcmp(wt->heard[k], wt->ids[i]);
        if (ended) {
            wt->done[i] = 1;
            wt->left--;
        }
    }
    int finished = !wt->left;   /* read under mu: once it is unlocked, a mark may answer (free) it */
    if (finished)
        unlink_waiter(ra, wt);
    pthread_mutex_unlock(&ra->mu);
    if (!n && !r)   /* nothing to wait for (or the read failed): answer with what is known */
        log_warn("RunInstances: reservation %s: %s", a->rid, e.message);
    if (finished)
        answer(wt);
    else
        ticker_wake(ra->ticker);   /* its deadline may be the next */
}

int run_answers_await(bus_ctx_t *ctx, run_answers_t *ra, const char *rid, verr_t *e)
{
    start_arg_t a = {ra, service_db(ctx), rid};
    JSON_AUTO json_t *ans = NULL;
    return bus_await(ctx, RUN_ANSWER_KEY, start, &a, &ans, e);
}

void run_answers_launched(run_answers_t *ra, const char *instance_id)
{
    if (!ra || !ra->wait_ms)
        return;
    waiter_t *finished = NULL;
    pthread_mutex_lock(&ra->mu);
    if (ra->head)
        mark(ra, instance_id, &finished);
    pthread_mutex_unlock(&ra->mu);
    if (finished)
        log_debug("RunInstances: %s launched, reservation %s answered", instance_id, finished->rid);
    answer_all(finished);
}
