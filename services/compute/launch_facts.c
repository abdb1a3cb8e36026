/* launch_facts.c - what RunInstances needs to know from other services (may this account
 * launch this image, and what it is; the account's quotas), kept in compute's own tables
 * (008_launch_facts.sql) so the handler decides from its database and never waits on
 * another service while holding a bus worker.
 *
 * One refresher thread of compute's own fills the tables: it asks image.fetch_url (as
 * the account, so the image service decides launchability as it always has) and
 * identity.quota_get, and network.launch_check (the subnet, zone and security group ids a
 * launch's interface would get, or the EC2 refusal; keyed by the request's hash, aged
 * after compute.network_facts_ttl_s as the network announces no changes). It is woken by
 *   - the handler, on a cold row (none yet, or a change announced and not yet fetched):
 *     the message is parked (bus_await) until the refresher has done that row, at most
 *     compute.launch_facts_wait_ms (then 503 ServiceUnavailable), and the bus worker
 *     serves other messages meanwhile; one call serves every request waiting for that
 *     row. An aged row is refreshed in the background while it keeps being used;
 *   - events on virga.events: image.changed {image_id} (the image service, after a
 *     deregistration, a change of launch permissions or an image becoming available)
 *     refreshes every row of that image; identity.changed {what: quota, id, quotas}
 *     writes the account's new quotas as the event carries them (believed from
 *     identity only);
 *   - a failed launch task (the image service refused the image after all).
 * A refusal (InvalidAMIID.NotFound...) is answered only from a row at most
 * compute.image_refusal_fresh_s old; an acceptance from any row, rows older than
 * compute.launch_facts_ttl_s being refreshed, because the launch task asks the image
 * service again anyway (for the grant URL) and fails the instance if it refuses now. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "compute.h"
#include "jsonutil.h"
#include "launch_grants.h"
#include "log.h"

#define QUEUE_MAX 1024

typedef struct want {
    char kind;            /* 'i' image for an account, 'I' every row of an image, 'q' quotas,
                             'n' a network check; 'r' / 'Q' / 'N': the same as 'i' / 'q' /
                             'n' for a row that only aged */
    char account[16];
    char id[72];          /* image id, or the network check's key */
    json_t *quotas;       /* 'q' from an event: the new quotas (no call needed); 'n': the check */
} want_t;

/* A message parked on a cold row (bus_await): answered when the refresher has done the
 * row, or at its deadline; the handler then reads the row again. */
typedef struct waiter {
    char kind, account[16], id[72];
    bus_waiter_t *w;
    struct timespec until;
    struct waiter *next;
} waiter_t;

struct launch_facts {
    service_t *svc;
    waiter_t *waiters;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t thread;
    int stop, started;
    want_t q[QUEUE_MAX];
    int n;
    want_t cur[64];       /* the refresher's batch in hand */
    int ncur;
    int ttl_s, refusal_fresh_s, quota_ttl_s, network_ttl_s, timeout_ms, wait_ms;
};

static void push(launch_facts_t *f, char kind, const char *account, const char *id, json_t *quotas)
{
    if (kind == 'I')   /* the image changed: the next launch asks the image service again */
        launch_grants_forget(((compute_t *)f->svc->state)->grants, id);
    pthread_mutex_lock(&f->mu);
    for (int j = 0; j < f->ncur && !(kind == 'q' && quotas); j++)   /* in hand now: its answer will do */
        if (f->cur[j].kind == kind && !strcmp(f->cur[j].account, account) && !strcmp(f->cur[j].id, id)) {
            pthread_mutex_unlock(&f->mu);
            return;
        }
    int i = 0;
    while (i < f->n && !(f->q[i].kind == kind && !strcmp(f->q[i].account, account) && !strcmp(f->q[i].id, id)))
        i++;
    if (i < f->n) {             /* already wanted: the newest quotas win */
        if (quotas) {
            json_decref(f->q[i].quotas);
            f->q[i].quotas = json_incref(quotas);
        }
    } else if (f->n < QUEUE_MAX) {
        want_t *w = &f->q[f->n++];
        w->kind = kind;
        snprintf(w->account, sizeof w->account, "%s", account);
        snprintf(w->id, sizeof w->id, "%s", id);
        w->quotas = quotas ? json_incref(quotas) : NULL;
    }   /* full: the requests that want it ask again after their retry */
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->mu);
}

static int upsert_image(db_t *db, const char *account, const char *id, int found, const json_t *facts, const char *code,
                        const char *msg, verr_t *e)
{
    AUTOFREE char *doc = json_dumps(facts, JSON_COMPACT);
    const char *p[] = {account, id, found ? "t" : "f", doc, code, msg};
    PG_AUTO PGresult *r = db_prepared(db, e, "lf_img_put",
        "INSERT INTO launch_images (account_id, image_id, found, facts, code, message, fetched_at) VALUES ($1, $2, "
        "$3::boolean, $4::jsonb, $5, $6, now()) ON CONFLICT (account_id, image_id) DO UPDATE SET found = "
        "EXCLUDED.found, facts = EXCLUDED.facts, code = EXCLUDED.code, message = EXCLUDED.message, fetched_at = now()",
        6, p);
    return r ? 0 : -1;
}

/* One image for one account; its kernel and ramdisk too, so one retry finds all three. */
static void refresh_image(launch_facts_t *f, db_t *db, const char *account, const char *id, int parts)
{
    JSON_AUTO json_t *caller = json_pack("{s:s}", "account_id", account);
    json_t *ans = NULL;
    verr_t e, de;
    if (bus_call(f->svc->bus, "image", "image.fetch_url", json_pack("{s:s}", "image_id", id), caller, f->timeout_ms,
                 &ans, &e) < 0) {
        if (e.http_status >= 400 && e.http_status < 500 && e.http_status != 429) {
            JSON_AUTO json_t *none = json_object();
            if (upsert_image(db, account, id, 0, none, e.code, e.message, &de) < 0)
                log_warn("recording image %s for %s: %s", id, account, de.message);
        } else {
            log_warn("image facts of %s for %s: %s", id, account, e.message);
        }
        return;
    }
    json_object_del(ans, "url");      /* a grant is for the host, made when it launches */
    json_object_del(ans, "expires");
    if (upsert_image(db, account, id, 1, ans, "", "", &de) < 0)
        log_warn("recording image %s for %s: %s", id, account, de.message);
    static const char *const keys[] = {"kernel_id", "ramdisk_id"};
    for (size_t i = 0; parts && i < 2; i++) {
        const char *pid = json_str(ans, keys[i], NULL);
        if (pid && *pid)
            refresh_image(f, db, account, pid, 0);
    }
    json_decref(ans);
}

/* network.launch_check for a launch's interface: its answer or its refusal. */
static void refresh_network(launch_facts_t *f, db_t *db, const char *account, const char *key, const json_t *check)
{
    json_t *ans = NULL;
    verr_t e, de;
    int found = bus_call(f->svc->bus, "network", "network.launch_check", json_deep_copy(check), NULL, f->timeout_ms,
                         &ans, &e) == 0;
    if (!found && (e.http_status < 400 || e.http_status >= 500 || e.http_status == 429)) {
        log_warn("network check for %s: %s", account, e.message);
        return;
    }
    JSON_AUTO json_t *none = json_object();
    AUTOFREE char *doc = json_dumps(found ? ans : none, JSON_COMPACT);
    const char *p[] = {account, key, found ? "t" : "f", doc, found ? "" : e.code, found ? "" : e.message};
    PG_AUTO PGresult *r = db_prepared(db, &de, "lf_net_put",
        "INSERT INTO launch_networks (account_id, key, found, facts, code, message, fetched_at) VALUES ($1, $2, "
        "$3::boolean, $4::jsonb, $5, $6, now()) ON CONFLICT (account_id, key) DO UPDATE SET found = EXCLUDED.found, "
        "facts = EXCLUDED.facts, code = EXCLUDED.code, message = EXCLUDED.message, fetched_at = now()", 6, p);
    if (!r)
        log_warn("recording a network check for %s: %s", account, de.message);
    json_decref(ans);
}

static void put_quotas(db_t *db, const char *account, const json_t *quotas)
{
    verr_t e;
    AUTOFREE char *doc = json_dumps(quotas, JSON_COMPACT);
    const char *p[] = {account, doc};
    PG_AUTO PGresult *r = db_prepared(db, &e, "lf_quota_put",
        "INSERT INTO account_quotas (account_id, quotas, fetched_at) VALUES ($1, $2::jsonb, now()) ON CONFLICT "
        "(account_id) DO UPDATE SET quotas = EXCLUDED.quotas, fetched_at = now()", 2, p);
    if (!r)
        log_warn("recording the quotas of %s: %s", account, e.message);
}

static void refresh_quotas(launch_facts_t *f, db_t *db, const char *account)
{
    json_t *ans = NULL;
    verr_t e;
    if (bus_call(f->svc->bus, "identity", "identity.quota_get", json_pack("{s:s}", "account_id", account), NULL,
                 f->timeout_ms, &ans, &e) < 0) {
        log_warn("quotas of %s: %s", account, e.message);
        return;
    }
    json_t *q = json_object_get(ans, "quotas");
    if (json_is_object(q))
        put_quotas(db, account, q);
    json_decref(ans);
}

/* An image changed: what every account that asked about it may do now. */
static void refresh_image_everywhere(launch_facts_t *f, db_t *db, const char *id)
{
    verr_t e;
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, &e, "lf_img_accounts",
                                      "SELECT account_id FROM launch_images WHERE image_id = $1", 1, p);
    if (!r) {
        log_warn("image %s changed: %s", id, e.message);
        return;
    }
    for (int i = 0; i < PQntuples(r); i++)
        refresh_image(f, db, PQgetvalue(r, i, 0), id, 1);
}

static int wanted(launch_facts_t *f, char kind, const char *account, const char *id);

/* (f->mu held) Take out the waiters whose row is done, or whose wait is over (all of them
 * when the refresher stops); the caller answers them once the lock is released. */
static waiter_t *waiters_due(launch_facts_t *f, int all)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    waiter_t *due = NULL, **pp = &f->waiters;
    while (*pp) {
        waiter_t *x = *pp;
        int late = now.tv_sec > x->until.tv_sec || (now.tv_sec == x->until.tv_sec && now.tv_nsec >= x->until.tv_nsec);
        if (all || late || !wanted(f, x->kind, x->account, x->id)) {
            *pp = x->next;
            x->next = due;
            due = x;
        } else {
            pp = &x->next;
        }
    }
    return due;
}

/* The handler runs again and reads the row: fresh now, or still cold (503, retried). */
static void waiters_answer(waiter_t *due)
{
    for (waiter_t *n; due; due = n) {
        n = due->next;
        bus_answer(due->w, NULL, NULL);
        free(due);
    }
}

static void *refresher(void *arg)
{
    launch_facts_t *f = arg;
    db_t *db = NULL;
    want_t *batch = f->cur;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        while (!f->n && !f->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&f->wake, &f->mu, &ts);
            waiter_t *due = waiters_due(f, 0);   /* those whose wait is over */
            if (due) {
                pthread_mutex_unlock(&f->mu);
                waiters_answer(due);
                pthread_mutex_lock(&f->mu);
            }
        }
        if (f->stop) {
            pthread_mutex_unlock(&f->mu);
            break;
        }
        int k = f->n < 64 ? f->n : 64;
        memcpy(batch, f->q, k * sizeof *batch);
        memmove(f->q, f->q + k, (f->n - k) * sizeof *f->q);
        f->n -= k;
        f->ncur = k;
        pthread_mutex_unlock(&f->mu);
        verr_t e;
        if (!db && !(db = service_db_connect(f->svc, &e)))
            log_warn("launch facts: %s", e.message);
        for (int i = 0; i < k; i++) {
            want_t *w = &batch[i];
            if (db && (w->kind == 'i' || w->kind == 'r'))
                refresh_image(f, db, w->account, w->id, 1);
            else if (db && (w->kind == 'n' || w->kind == 'N') && w->quotas)
                refresh_network(f, db, w->account, w->id, w->quotas);
            else if (db && w->kind == 'I')
                refresh_image_everywhere(f, db, w->id);
            else if (db && w->kind == 'q' && w->quotas)
                put_quotas(db, w->account, w->quotas);
            else if (db && (w->kind == 'q' || w->kind == 'Q'))
                refresh_quotas(f, db, w->account);
        }
        pthread_mutex_lock(&f->mu);
        for (int i = 0; i < k; i++)
            json_decref(batch[i].quotas);
        f->ncur = 0;
        waiter_t *due = waiters_due(f, 0);
        pthread_mutex_unlock(&f->mu);
        waiters_answer(due);
        if (!db) {
            struct timespec d = {1, 0};
            nanosleep(&d, NULL);
        }
    }
    db_close(db);
    return NULL;
}

launch_facts_t *launch_facts_start(service_t *svc, verr_t *e)
{
    launch_facts_t *f = xcalloc(1, sizeof *f);
    f->svc = svc;
    f->ttl_s = (int)config_int(svc->cfg, "compute.launch_facts_ttl_s", 300);
    f->refusal_fresh_s = (int)config_int(svc->cfg, "compute.image_refusal_fresh_s", 10);
    f->quota_ttl_s = (int)config_int(svc->cfg, "compute.quota_ttl_s", 60);
    f->network_ttl_s = (int)config_int(svc->cfg, "compute.network_facts_ttl_s", 30);
    f->timeout_ms = (int)config_int(svc->cfg, "compute.call_timeout_ms", 10000);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->wake, NULL);
    f->wait_ms = (int)config_int(svc->cfg, "compute.launch_facts_wait_ms", 3000);
    if (pthread_create(&f->thread, NULL, refresher, f)) {
        free(f);
        verr_set(e, 503, "ServiceUnavailable", "cannot start the launch facts thread");
        return NULL;
    }
    f->started = 1;
    return f;
}

void launch_facts_stop(launch_facts_t *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->mu);
    if (f->started)
        pthread_join(f->thread, NULL);
    waiters_answer(waiters_due(f, 1));   /* none are left once the bus has stopped serving */
    for (int i = 0; i < f->n; i++)
        json_decref(f->q[i].quotas);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->wake);
    free(f);
}

/* 1 when a refresh that concerns this row is queued or in hand (f->mu held): a change was
 * announced (an event) and the row may not show it yet. */
static int wanted(launch_facts_t *f, char kind, const char *account, const char *id)
{
    for (int j = 0; j < 2; j++) {
        const want_t *w = j ? f->cur : f->q;
        int n = j ? f->ncur : f->n;
        for (int i = 0; i < n; i++)
            if ((w[i].kind == kind && !strcmp(w[i].account, account) && !strcmp(w[i].id, id)) ||
                (kind == 'i' && w[i].kind == 'I' && !strcmp(w[i].id, id)))
                return 1;
    }
    return 0;
}

struct cold_row {
    launch_facts_t *f;
    char kind;
    const char *account, *id;
    json_t *data;
};

/* bus_await's start: ask the refresher for the row and wait for it, unless it is done
 * already (then answered at once). */
static void cold_row_start(void *arg, bus_waiter_t *w)
{
    const struct cold_row *c = arg;
    launch_facts_t *f = c->f;
    push(f, c->kind, c->account, c->id, c->data);
    waiter_t *x = xcalloc(1, sizeof *x);
    x->kind = c->kind;
    snprintf(x->account, sizeof x->account, "%s", c->account);
    snprintf(x->id, sizeof x->id, "%s", c->id);
    x->w = w;
    clock_gettime(CLOCK_MONOTONIC, &x->until);
    long long ns = x->until.tv_nsec + (long long)f->wait_ms * 1000000LL;
    x->until.tv_sec += ns / 1000000000LL;
    x->until.tv_nsec = ns % 1000000000LL;
    pthread_mutex_lock(&f->mu);
    int now = !wanted(f, c->kind, c->account, c->id);
    if (!now) {
        x->next = f->waiters;
        f->waiters = x;
    }
    pthread_mutex_unlock(&f->mu);
    if (now)
        waiters_answer(x);
}

/* The one wait of RunInstances, on a cold row only (an account's first launch of an
 * image, its first launch at all, or a change announced a moment ago): 0 once the
 * refresher has done the row (or the wait is over), -1 with ctx->waiting while the
 * message is parked. The call to the other service is the refresher's, one for all the
 * requests that wait for the same row. */
static int cold_row_wait(launch_facts_t *f, bus_ctx_t *ctx, char kind, const char *account, const char *id,
                         json_t *data, verr_t *e)
{
    char key[128];
    snprintf(key, sizeof key, "launch_facts %c %s %s", kind, account, id);
    struct cold_row c = {f, kind, account, id, data};
    json_t *ans = NULL;
    int rc = bus_await(ctx, key, cold_row_start, &c, &ans, e);
    json_decref(ans);
    return rc;
}

static int pending(launch_facts_t *f, char kind, const char *account, const char *id)
{
    pthread_mutex_lock(&f->mu);
    int w = wanted(f, kind, account, id);
    pthread_mutex_unlock(&f->mu);
    return w;
}

static int not_yet(const char *what, const char *id, verr_t *e)
{
    return verr_set(e, 503, "ServiceUnavailable", "Compute could not yet learn %s %.64s; retry the request", what, id);
}

/* A row of launch_images or launch_networks (found, facts, code, message, age): the
 * facts, the stored refusal when fresh, or (cold) ask the refresher and wait once. */
static int facts_row(bus_ctx_t *ctx, const char *stmt, const char *sql, char kind, const char *account,
                     const char *id, json_t *data, int ttl_s, json_t **facts, verr_t *e)
{
    launch_facts_t *f = compute_of(ctx)->facts;
    db_t *db = service_db(ctx);
    const char *p[] = {account, id};
    for (int asked = 0;; asked = 1) {
        PG_AUTO PGresult *r = db_prepared(db, e, stmt, sql, 2, p);
        if (!r)
            return -1;
        int have = PQntuples(r) > 0, found = have && PQgetvalue(r, 0, 0)[0] == 't';
        double age = have ? atof(PQgetvalue(r, 0, 4)) : 0;
        /* a refusal is answered only from a fresh row; an acceptance from any (the task checks) */
        int cold = !have || pending(f, kind, account, id) || (!found && age > f->refusal_fresh_s);
        if (cold && !asked) {
            if (cold_row_wait(f, ctx, kind, account, id, data, e) < 0)
                return -1;
            continue;
        }
        if (!have)
            return not_yet(kind == 'i' ? "image" : "the network of this launch", kind == 'i' ? id : "", e);
        if (!found)
            return verr_set(e, 400, PQgetvalue(r, 0, 2), "%s", PQgetvalue(r, 0, 3));
        if (age > ttl_s)
            push(f, kind == 'i' ? 'r' : 'N', account, id, data);
        *facts = json_loads(PQgetvalue(r, 0, 1), 0, NULL);
        return *facts ? 0 : verr_set(e, 500, "InternalError", "unreadable launch facts %s", id);
    }
}

int launch_facts_image(bus_ctx_t *ctx, const char *account, const char *id, json_t **facts, verr_t *e)
{
    return facts_row(ctx, "lf_img_get",
                     "SELECT found, facts::text, code, message, EXTRACT(EPOCH FROM now() - fetched_at)::float8 FROM "
                     "launch_images WHERE account_id = $1 AND image_id = $2",
                     'i', account, id, NULL, compute_of(ctx)->facts->ttl_s, facts, e);
}

int launch_facts_network(bus_ctx_t *ctx, const char *account, json_t *check, json_t **facts, verr_t *e)
{
    AUTOFREE char *doc = json_dumps(check, JSON_COMPACT | JSON_SORT_KEYS);
    unsigned char h[crypto_hash_sha256_BYTES];
    char key[65];
    crypto_hash_sha256(h, (const unsigned char *)doc, strlen(doc));
    sodium_bin2hex(key, sizeof key, h, sizeof h);
    return facts_row(ctx, "lf_net_get",
                     "SELECT found, facts::text, code, message, EXTRACT(EPOCH FROM now() - fetched_at)::float8 FROM "
                     "launch_networks WHERE account_id = $1 AND key = $2",
                     'n', account, key, check, compute_of(ctx)->facts->network_ttl_s, facts, e);
}

int launch_facts_quotas(bus_ctx_t *ctx, const char *account, json_t **quotas, verr_t *e)
{
    launch_facts_t *f = compute_of(ctx)->facts;
    db_t *db = service_db(ctx);
    const char *p[] = {account};
    for (int asked = 0;; asked = 1) {
        PG_AUTO PGresult *r = db_prepared(db, e, "lf_quota_get",
            "SELECT quotas::text, EXTRACT(EPOCH FROM now() - fetched_at)::float8 FROM account_quotas "
            "WHERE account_id = $1", 1, p);
        if (!r)
            return -1;
        int have = PQntuples(r) > 0;
        if ((!have || pending(f, 'q', account, "")) && !asked) {
            if (cold_row_wait(f, ctx, 'q', account, "", NULL, e) < 0)
                return -1;
            continue;
        }
        if (!have)
            return not_yet("the quotas of account", account, e);
        if (atof(PQgetvalue(r, 0, 1)) > f->quota_ttl_s)
            push(f, 'Q', account, "", NULL);
        *quotas = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
        return *quotas ? 0 : verr_set(e, 500, "InternalError", "unreadable quotas of %s", account);
    }
}

void launch_facts_image_changed(launch_facts_t *f, const char *image_id) { push(f, 'I', "", image_id, NULL); }

int launch_facts_image_changed_msg(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)reply;
    launch_facts_t *f = compute_of(ctx)->facts;
    const char *id = json_str(body, "image_id", "");
    if (!*id || strlen(id) >= 72)
        return verr_set(e, 400, "InvalidParameterValue", "image_id is required");
    if (f)
        launch_facts_image_changed(f, id);   /* queued now: a RunInstances after this waits for it */
    return 0;
}

/* virga.events (runs on the bus's reader thread: only queues). */
int launch_facts_on_event(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)reply;
    (void)e;
    launch_facts_t *f = ((compute_t *)((service_t *)ctx->app)->state)->facts;
    const char *id = json_str(body, "id", json_str(body, "image_id", ""));
    if (!f || !*id || strlen(id) >= 72)
        return 0;
    unsigned from = ctx->msg->from ? ctx->msg->from->kind : 0;
    json_t *q = json_object_get(body, "quotas");
    if (!strcmp(ctx->msg->type, "image.changed"))
        push(f, 'I', "", id, NULL);
    else if (!strcmp(ctx->msg->type, "identity.changed") && !strcmp(json_str(body, "what", ""), "quota") &&
             strlen(id) == 12)   /* quotas believed only from identity; else asked again */
        push(f, 'q', id, "", from == BUS_P_IDENTITY && json_is_object(q) ? q : NULL);
    return 0;
}
