/* pump.c - the accounting service's three threads: a listener (common/pg_listen.c)
 * that LISTENs for the logs' and the outbox's NOTIFYs (sent by triggers, so only at
 * commit) and wakes the other two; a puller that reads every event log past its cursor into usage records;
 * a publisher that empties the outbox onto virga.usage. A lost or missed notification
 * costs at most accounting.poll_ms: both loops also run on that timer (and on the
 * service's reconcile timer), so the doorbell only makes them prompt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accounting.h"
#include "config.h"
#include "log.h"
#include "pg_listen.h"
#include "ticker.h"

/* A loop: a ticker (common/ticker.c), the database connection of its passes and when
 * its last pass ended (CLOCK_MONOTONIC, ms). */
typedef struct loop {
    ticker_t *ticker;
    db_t *db;
    int64_t last_end_ms;
} loop_t;

static struct {
    service_t *svc;
    volatile int stop;
    int poll_ms, batch, grace_s, gap_ms;
    pg_listen_t *listener;   /* the doorbell (common/pg_listen.c) */
    loop_t puller, publisher;
    int publish_failures;
} pump;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A pass woken right after the last one first waits out accounting.pass_gap_ms (200):
 * every commit of an event log rings, so a burst of launches rang the puller (a pass
 * reads all the feeds, a transaction each) and the publisher dozens of times a second,
 * most passes finding one record (issue 11's launch rate: 9 pulls a launch, PostgreSQL's
 * busiest client after the network). Waiting gathers a burst's events into one pass;
 * a record is taken at most this much later, nothing is missed (the wait is part of the
 * pass, and the events rung meanwhile are read by it). */
static void wait_gap(loop_t *l)
{
    int64_t left = l->last_end_ms + pump.gap_ms - now_ms();
    if (l->last_end_ms && left > 0 && !pump.stop) {
        struct timespec ts = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* The loop's connection, made when it has none. */
static db_t *loop_db(loop_t *l, const char *who)
{
    verr_t e;
    if (!l->db && !(l->db = service_db_connect(pump.svc, &e)))
        log_warn("accounting: %s: %s", who, e.message);
    return l->db;
}

/* One statement pulls every feed (accounting.feeds: sql/002_usage.sql and later
 * migrations), one batch each, in the feeds' order, and answers each feed's count: a
 * statement is its own transaction, so each feed's cursor and records commit together
 * as before, and a pass that finds a record or two (a launch's) costs one statement
 * instead of a BEGIN, a pull and a COMMIT per feed. A feed whose batch was full is
 * pulled again on its own until it is not. */
long pump_pull(db_t *db, int batch, int grace_s, verr_t *e)
{
    char b[16], g[32];
    snprintf(b, sizeof b, "%d", batch);
    snprintf(g, sizeof g, "%d seconds", grace_s);
    const char *p[] = {b};
    PG_AUTO PGresult *r = db_prepared(db, e, "pull_all",
        "SELECT f.log, pull(f.log, $1::int) FROM (SELECT log FROM feeds ORDER BY log) f", 1, p);
    if (!r)
        return -1;
    long total = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        long n = atol(PQgetvalue(r, i, 1));
        total += n;
        while (n >= batch && !pump.stop) {
            const char *q[] = {PQgetvalue(r, i, 0), b};
            PG_AUTO PGresult *more = db_prepared(db, e, "pull", "SELECT pull($1, $2::int)", 2, q);
            if (!more)
                return -1;
            n = atol(PQgetvalue(more, 0, 0));
            total += n;
        }
    }
    const char *q[] = {g};
    PG_AUTO PGresult *m = db_query(db, e, "SELECT meter_open($1::interval)", 1, q);
    return m ? total : -1;
}

static void puller(void *arg)
{
    (void)arg;
    wait_gap(&pump.puller);
    db_t *db = loop_db(&pump.puller, "puller");
    verr_t e;
    long n = db ? pump_pull(db, pump.batch, pump.grace_s, &e) : 0;
    if (n < 0)
        log_warn("accounting: reading the event logs: %s", e.message);
    else if (n > 0)
        log_debug("accounting: %ld events taken", n);
    pump.puller.last_end_ms = now_ms();
}

static void publish_pass(void)
{
    db_t *db = loop_db(&pump.publisher, "publisher");
    verr_t e;
    if (!db)
        return;
    if (publish_outbox(pump.svc->bus, db, pump.batch, &e) < 0) {
        /* the broker away: the records wait in the outbox; try again, less often */
        log_warn("accounting: publishing usage records: %s", e.message);
        pump.publish_failures += pump.publish_failures < 5;
        int64_t backoff = (int64_t)1000 << pump.publish_failures;
        ticker_set_period(pump.publisher.ticker, pump.poll_ms < backoff ? pump.poll_ms : backoff);
    } else if (pump.publish_failures) {
        pump.publish_failures = 0;
        ticker_set_period(pump.publisher.ticker, pump.poll_ms);
    }
}

static void publisher(void *arg)
{
    (void)arg;
    wait_gap(&pump.publisher);
    publish_pass();
    pump.publisher.last_end_ms = now_ms();
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
    (void)arg, (void)payload;
    ticker_wake(strcmp(channel, "virga_usage_records") ? pump.puller.ticker : pump.publisher.ticker);
}

static void on_connect(void *arg)
{
    (void)arg;
    ticker_wake(pump.puller.ticker);   /* whatever committed while nobody listened */
    ticker_wake(pump.publisher.ticker);
}

int pump_start(service_t *svc, verr_t *e)
{
    pump.svc = svc;
    pump.poll_ms = (int)config_int(svc->cfg, "accounting.poll_ms", 5000);
    pump.batch = (int)config_int(svc->cfg, "accounting.batch", 1000);
    pump.grace_s = (int)config_int(svc->cfg, "accounting.close_grace_s", 300);
    pump.gap_ms = (int)config_int(svc->cfg, "accounting.pass_gap_ms", 200);
    if (pump.gap_ms < 0 || pump.gap_ms > 10000)
        return verr_set(e, 400, "InvalidParameterValue", "accounting.pass_gap_ms is 0..10000");
    if (pump.poll_ms < 10 || pump.poll_ms > 3600000 || pump.batch < 1 || pump.batch > 100000 || pump.grace_s < 0 ||
        pump.grace_s > 86400)
        return verr_set(e, 400, "InvalidParameterValue",
                        "accounting.poll_ms (10..3600000), accounting.batch (1..100000) or "
                        "accounting.close_grace_s (0..86400) out of range");
    /* a first pass at once each */
    if (!(pump.puller.ticker = ticker_start("acct-puller", pump.poll_ms, 1, puller, NULL, e)) ||
        !(pump.publisher.ticker = ticker_start("acct-publisher", pump.poll_ms, 1, publisher, NULL, e)))
        return -1;
    static const char *const channels[] = {"virga_usage_events", "virga_usage_records", NULL};
    pg_listen_spec_t spec = {.name = "accounting", .channels = channels, .on_notify = on_notify,
                             .on_connect = on_connect};
    return (pump.listener = pg_listen_start(svc, &spec, e)) ? 0 : -1;
}

void pump_wake(void)
{
    ticker_wake(pump.puller.ticker);
    ticker_wake(pump.publisher.ticker);
}

static void loop_stop(loop_t *l)
{
    ticker_stop(l->ticker);
    l->ticker = NULL;
    db_close(l->db);
    l->db = NULL;
}

void pump_stop(void)
{
    pump.stop = 1;
    pg_listen_stop(pump.listener);
    pump.listener = NULL;
    loop_stop(&pump.puller);
    loop_stop(&pump.publisher);
}
