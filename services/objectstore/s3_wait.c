/* s3_wait.c - an S3 request asks another service (identity: a signing key, a SigV2
 * signature, an account lookup, a quota) without holding an HTTP thread. The stream
 * route's begin or end starts the call, suspends the connection (http_stream_wait) and
 * returns; the bus callback stores the answer and wakes the connection; begin or end then
 * runs again from its start and finds the answer at hand. Answers are kept for the rest
 * of the request (by message type and body), so a step that runs again after a later
 * wait does not ask twice. One call is in flight per request at a time. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answers.h"
#include "jsonutil.h"
#include "metrics.h"
#include "objectstore.h"
#include "quota.h"

/* The message types s3_ask sends, counted on /metrics (the last row counts the rest). */
static const char *const asked_types[] = {"identity.sign_v2", "identity.account_lookup", "identity.quota_get",
                                          "other"};
_Static_assert(ARRAY_LEN(asked_types) == ARRAY_LEN(((objectstore_t *)0)->asked), "one counter per type");

static void count_ask(objectstore_t *os, const char *type)
{
    size_t i = 0;
    while (i + 1 < ARRAY_LEN(asked_types) && strcmp(asked_types[i], type))
        i++;
    __atomic_add_fetch(&os->asked[i], 1, __ATOMIC_RELAXED);
}

void s3_wait_render_metrics(objectstore_t *os, strbuf_t *out)
{
    static const char *family = "virga_objectstore_waits_total";
    metrics_family(out, family, "counter",
                   "Calls to another service an S3 request waited for without holding an HTTP thread, by type "
                   "(signing keys: virga_objectstore_signing_key_lookups_total).");
    for (size_t i = 0; i < ARRAY_LEN(asked_types); i++) {
        char label[80];
        snprintf(label, sizeof label, "type=\"%s\"", asked_types[i]);
        metrics_sample(out, family, label, __atomic_load_n(&os->asked[i], __ATOMIC_RELAXED));
    }
}

/* Shared by the request and the bus callback (either may go first), freed by the last
 * to let go. */
struct s3_wait {
    pthread_mutex_t mu;
    int refs;
    int done;
    uint8_t key[SIGV4_KEY_LEN];   /* a signing key's wait */
    json_t *reply;                /* the key's owner, or the service's reply */
    verr_t err;
    char *memo;                   /* s3_ask's key for the answer; NULL for a signing key */
    http_deferred_t *wake;
};

static void unref(s3_wait_t *w)
{
    pthread_mutex_lock(&w->mu);
    int left = --w->refs;
    pthread_mutex_unlock(&w->mu);
    if (left)
        return;
    sodium_memzero(w->key, sizeof w->key);
    json_decref(w->reply);
    free(w->memo);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void s3_wait_release(s3_req_t *r)
{
    if (r->wait)
        unref(r->wait);
    r->wait = NULL;
    json_decref(r->asked);
    r->asked = NULL;
}

/* On a bus thread: store the answer (key may be NULL) or the error, then wake. */
static void answered(s3_wait_t *w, const uint8_t *key, json_t *reply, const verr_t *err)
{
    pthread_mutex_lock(&w->mu);
    if (err)
        w->err = *err;
    else if (key)
        memcpy(w->key, key, sizeof w->key);
    w->reply = reply;
    w->done = 1;
    http_deferred_t *wake = w->wake;
    pthread_mutex_unlock(&w->mu);
    http_stream_wake(wake);   /* the request may end and let go of w from here on */
    unref(w);
}

void s3_wait_key_fetched(void *arg, const uint8_t *key, json_t *who, const verr_t *err)
{
    answered(arg, key, who, err);
}

static void reply_fetched(void *arg, json_t *reply, const verr_t *err)
{
    answered(arg, NULL, reply, err);
}

s3_wait_t *s3_wait_start(s3_req_t *r)
{
    s3_wait_t *w = xcalloc(1, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    w->refs = 2;   /* the request's and the callback's */
    w->wake = http_stream_wait(r->http);
    r->wait = w;
    r->waiting = 1;
    return w;
}

void s3_wait_not_sent(s3_wait_t *w, const verr_t *e)
{
    answered(w, NULL, NULL, e);   /* begin or end runs again and finds the error */
}

/* The woken wait's answer; lets go of the wait. 0, or -1 with e. */
int s3_wait_take(s3_req_t *r, uint8_t key[SIGV4_KEY_LEN], json_t **reply, verr_t *e)
{
    s3_wait_t *w = r->wait;
    pthread_mutex_lock(&w->mu);
    int ok = w->done && !w->err.code[0];
    if (ok) {
        if (key)
            memcpy(key, w->key, SIGV4_KEY_LEN);
        *reply = json_incref(w->reply);
    } else {
        *e = w->err;
    }
    pthread_mutex_unlock(&w->mu);
    unref(w);
    r->wait = NULL;
    return ok ? 0 : -1;
}

int s3_ask(s3_req_t *r, const char *service, const char *type, json_t *body, json_t **reply, verr_t *e)
{
    char *key = answers_key(service, type, body);
    if (r->wait && r->wait->memo && !strcmp(r->wait->memo, key)) {   /* woken: keep its answer */
        json_t *got = NULL;
        verr_t err = {0};
        int ok = s3_wait_take(r, NULL, &got, &err) == 0;
        answers_put(&r->asked, key, got, ok ? NULL : &err);
    }
    int rc;
    if (answers_get(r->asked, key, reply, &rc, e)) {
        free(key);
        json_decref(body);
        return rc;
    }
    s3_wait_t *w = s3_wait_start(r);
    w->memo = key;
    verr_t sent = {0};
    if (bus_call_async(r->os->svc->bus, service, type, body, NULL, r->os->call_timeout_ms, reply_fetched, w,
                       &sent) < 0)
        s3_wait_not_sent(w, &sent);
    else
        count_ask(r->os, type);
    return verr_set(e, 503, "ServiceUnavailable", "waiting for %s", type);   /* r->waiting says so */
}

int s3_quota(s3_req_t *r, const char *account, const char *resource, long long def, long long *max, verr_t *e)
{
    json_t *q = NULL;
    if (s3_ask(r, "identity", QUOTA_MESSAGE, quota_question(account), &q, e) < 0)
        return -1;
    *max = quota_of(q, resource, def);
    return 0;
}
