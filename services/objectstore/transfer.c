/* transfer.c - bytes sent out by GetObject, for billing (sql/008_usage_logs.sql).
 *
 * Counting in the request's own transaction would cost every GET a database write, so
 * each process adds the bytes it is about to send (the response's Content-Length) to an
 * in-memory table per bucket, and the reconcile timer writes the table as one
 * transfer_events row per bucket and window. The price: a process that dies loses the
 * counts of its current window (at most objectstore.reconcile_interval_s, 10 s), and a
 * body cut short still counts whole. Thread-safety: any thread may add; flush runs on
 * the service's main thread. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "objectstore.h"
#include "strbuf.h"

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

void transfer_count(const char *account, const char *bucket, unsigned long long bytes)
{
    if (!bytes || !account[0] || strlen(bucket) >= sizeof table[0].bucket)
        return;
    pthread_mutex_lock(&mu);
    if (!window_start.tv_sec)
        clock_gettime(CLOCK_REALTIME, &window_start);
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
            s->requests++;
            break;
        }
    }
    /* a full table keeps counting in the slots it has; the flush empties it */
    pthread_mutex_unlock(&mu);
}

void transfer_flush(objectstore_t *os, db_t *db)
{
    static slot_t taken[SLOTS];
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
    char f[64], t[64];
    snprintf(f, sizeof f, "%lld.%06ld", (long long)from.tv_sec, from.tv_nsec / 1000);
    snprintf(t, sizeof t, "%lld.%06ld", (long long)to.tv_sec, to.tv_nsec / 1000);
    verr_t e;
    for (int i = 0; i < SLOTS; i++) {
        if (!taken[i].bucket[0])
            continue;
        char id[256], b[32], n[32];   /* instance (96) + bucket (63) + time */
        snprintf(id, sizeof id, "%.96s/%.63s/%.40s", os->svc->instance, taken[i].bucket, f);
        snprintf(b, sizeof b, "%llu", taken[i].bytes);
        snprintf(n, sizeof n, "%llu", taken[i].requests);
        const char *p[] = {id, taken[i].account, taken[i].bucket, b, n, f, t};
        PG_AUTO PGresult *r = db_prepared(db, &e, "transfer_log",
            "INSERT INTO transfer_events (id, account_id, bucket, bytes, requests, from_at, to_at) "
            "VALUES ($1, $2, $3, $4::bigint, $5::bigint, to_timestamp($6::double precision), "
            "to_timestamp($7::double precision)) ON CONFLICT (id) DO NOTHING", 7, p);
        if (!r)
            log_warn("transfer out of %s (%s bytes) not logged: %s", taken[i].bucket, b, e.message);
    }
}

/* Every pass: accounts that store bytes and have no sample for this hour yet get one
 * (the first pass of an hour samples everyone; an account that starts storing mid-hour
 * is sampled when first seen). One indexed statement, cheap at thousands of accounts. */
void storage_sample(db_t *db)
{
    verr_t e;
    PG_AUTO PGresult *r = db_prepared(db, &e, "storage_sample",
        "INSERT INTO storage_samples (account_id, hour, bytes) "
        "SELECT account_id, date_trunc('hour', now(), 'UTC'), bytes FROM stored s WHERE bytes > 0 "
        "AND NOT EXISTS (SELECT 1 FROM storage_samples x WHERE x.account_id = s.account_id "
        "                AND x.hour = date_trunc('hour', now(), 'UTC')) "   /* no seq drawn for nothing */
        "ON CONFLICT (account_id, hour) DO NOTHING", 0, NULL);
    if (!r)
        log_warn("stored bytes not sampled: %s", e.message);
}
