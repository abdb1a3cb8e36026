/* transfer.c - bytes sent out by GetObject, for billing (sql/008_usage_logs.sql), and
 * the hourly samples of each bucket's stored bytes.
 *
 * Counting in the request's own transaction would cost every GET a database write, so
 * each process adds the bytes it is about to send (the response's Content-Length) to an
 * in-memory table per bucket, and a flusher thread writes the table every
 * objectstore.transfer_flush_ms (1000) as one transfer_events row per bucket and window,
 * all in one statement: one database write per second per process, whatever the GET
 * rate. A stop (SIGTERM) writes the last window after the HTTP endpoint has drained, so
 * it loses nothing; a process killed outright (kill -9, a crash) loses the counts of its
 * current window: at most transfer_flush_ms plus the time of one flush. A body cut short
 * still counts whole. Thread-safety: any thread may add; only the flusher (and, once it
 * has stopped, transfer_stop) flushes. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "objectstore.h"
#include "strbuf.h"
#include "ticker.h"

#define SLOTS 1024   /* buckets counted per window; more are written at once (below) */

typedef struct slot {
    char bucket[64];
    char account[13];
    unsigned long long bytes, requests;
} slot_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static slot_t table[SLOTS];
static int used;
static struct timespec window_start;

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

/* Add to a bucket's slot; mu held. */
static void add_locked(const char *account, const char *bucket, unsigned long long bytes, unsigned long long n)
{
    unsigned i = hash(bucket) % SLOTS;
    for (int probe = 0; probe < SLOTS; probe++, i = (i + 1) % SLOTS) {
        slot_t *s = &table[i];
        if (!s->bucket[0]) {
            snprintf(s->bucket, sizeof s->bucket, "%s", bucket);
            snprintf(s->account, sizeof s->account, "%s", account);
            used++;
        }
        if (!strcmp(s->bucket, bucket)) {
            s->bytes += bytes;
            s->requests += n;
            return;
        }
    }
    log_warn("transfer out of %s (%llu bytes) not counted: more than %d buckets in one window", bucket, bytes, SLOTS);
}

void transfer_count(const char *account, const char *bucket, unsigned long long bytes)
{
    if (!bytes || !account[0] || strlen(bucket) >= sizeof table[0].bucket)
        return;
    pthread_mutex_lock(&mu);
    if (!window_start.tv_sec)
        clock_gettime(CLOCK_REALTIME, &window_start);
    add_locked(account, bucket, bytes, 1);
    pthread_mutex_unlock(&mu);
}

/* Append item to a PostgreSQL array literal, quoted (whatever a name holds). */
static void sb_array(strbuf_t *b, const char *item)
{
    strbuf_puts(b, b->len ? ",\"" : "{\"");
    for (; *item; item++) {
        if (*item == '"' || *item == '\\')
            strbuf_putc(b, '\\');
        strbuf_putc(b, *item);
    }
    strbuf_putc(b, '"');
}

/* Write the counts so far as one transfer_events row per bucket, in one statement; on
 * failure they go back into the table for the next flush. */
static void flush(objectstore_t *os, db_t *db)
{
    static slot_t taken[SLOTS];   /* only one flusher at a time (see the header) */
    struct timespec from, to;
    pthread_mutex_lock(&mu);
    if (!used) {
        pthread_mutex_unlock(&mu);
        return;
    }
    memcpy(taken, table, sizeof table);
    memset(table, 0, sizeof table);
    used = 0;
    from = window_start;
    window_start.tv_sec = 0;
    pthread_mutex_unlock(&mu);
    clock_gettime(CLOCK_REALTIME, &to);
    char f[64], t[64], item[256];
    snprintf(f, sizeof f, "%lld.%06ld", (long long)from.tv_sec, from.tv_nsec / 1000);
    snprintf(t, sizeof t, "%lld.%06ld", (long long)to.tv_sec, to.tv_nsec / 1000);
    strbuf_t ids = {0}, accts = {0}, buckets = {0}, bytes = {0}, reqs = {0};
    for (int i = 0; i < SLOTS; i++) {
        if (!taken[i].bucket[0])
            continue;
        snprintf(item, sizeof item, "%.96s/%.63s/%.40s", os->svc->instance, taken[i].bucket, f);
        sb_array(&ids, item);
        sb_array(&accts, taken[i].account);
        sb_array(&buckets, taken[i].bucket);
        snprintf(item, sizeof item, "%llu", taken[i].bytes);
        sb_array(&bytes, item);
        snprintf(item, sizeof item, "%llu", taken[i].requests);
        sb_array(&reqs, item);
    }
    strbuf_puts(&ids, "}"), strbuf_puts(&accts, "}"), strbuf_puts(&buckets, "}");
    strbuf_puts(&bytes, "}"), strbuf_puts(&reqs, "}");
    const char *p[] = {ids.s, accts.s, buckets.s, bytes.s, reqs.s, f, t};
    verr_t e = {0};
    PG_AUTO PGresult *r = db ? db_prepared(db, &e, "transfer_log",
        "INSERT INTO transfer_events (id, account_id, bucket, bytes, requests, from_at, to_at) "
        "SELECT id, account_id, bucket, bytes, requests, to_timestamp($6::double precision), "
        "to_timestamp($7::double precision) "
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) "
        "AS u(id, account_id, bucket, bytes, requests) ON CONFLICT (id) DO NOTHING", 7, p) : NULL;
    if (!r) {
        log_warn("transfer out not logged yet (next flush): %s", db ? e.message : "no database");
        pthread_mutex_lock(&mu);
        for (int i = 0; i < SLOTS; i++)
            if (taken[i].bucket[0])
                add_locked(taken[i].account, taken[i].bucket, taken[i].bytes, taken[i].requests);
        window_start = from;   /* the window goes on from where it began */
        pthread_mutex_unlock(&mu);
    }
    free(ids.s), free(accts.s), free(buckets.s), free(bytes.s), free(reqs.s);
}

static ticker_t *flusher;

static void flush_tick(void *arg)
{
    objectstore_t *os = arg;
    verr_t e;
    flush(os, s3_db(os, &e));
}

int transfer_start(objectstore_t *os, verr_t *e)
{
    long ms = config_int(os->svc->cfg, "objectstore.transfer_flush_ms", 1000);
    flusher = ticker_start("s3-transfer", ms > 0 ? ms : 1000, 0, flush_tick, os, e);
    return flusher ? 0 : -1;
}

void transfer_stop(objectstore_t *os, db_t *db)
{
    ticker_stop(flusher);
    flusher = NULL;
    flush(os, db);   /* the HTTP endpoint has drained: this is the last window */
}

/* Every pass: buckets that store bytes and have no sample for this hour yet get one
 * (the first pass of an hour samples every bucket; a bucket that starts storing
 * mid-hour is sampled when first seen). One indexed statement, cheap at thousands of
 * buckets. A bucket deleted meanwhile (no row in buckets) is not sampled. */
void storage_sample(db_t *db)
{
    verr_t e;
    PG_AUTO PGresult *r = db_prepared(db, &e, "storage_sample",
        "INSERT INTO storage_samples (account_id, bucket, hour, bytes) "
        "SELECT s.account_id, b.name, date_trunc('hour', now(), 'UTC'), s.bytes "
        "FROM bucket_stored s JOIN buckets b ON b.id = s.bucket_id WHERE s.bytes > 0 "
        "AND NOT EXISTS (SELECT 1 FROM storage_samples x WHERE x.account_id = s.account_id "
        "                AND coalesce(x.bucket, '') = b.name "
        "                AND x.hour = date_trunc('hour', now(), 'UTC')) "   /* no seq drawn for nothing */
        "ON CONFLICT (account_id, (coalesce(bucket, '')), hour) DO NOTHING", 0, NULL);
    if (!r)
        log_warn("stored bytes not sampled: %s", e.message);
}
