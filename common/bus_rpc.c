/* bus_rpc.c - RPC over the bus: calls with correlation ids and deadlines, answered on
 * the caller's principal's reply topic, virga.reply.<principal> (bus.h, docs/bus.md).
 * The process's reader (bus_read.c) reads that topic and hands each reply here, and
 * times calls out by the table's earliest deadline. */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_internal.h"
#include "jsonutil.h"
#include "log.h"

static unsigned corr_bucket(const char *corr)
{
    unsigned h = 2166136261u;
    for (; *corr; corr++)
        h = (h ^ (unsigned char)*corr) * 16777619u;
    return h % PENDING_BUCKETS;
}

/* Take the call with this correlation id out of the table; NULL when it is not there
 * (answered or timed out already, or a duplicate reply). Caller holds b->mu. */
static struct pending *pending_take(bus_t *b, const char *corr)
{
    for (struct pending **pp = &b->pending[corr_bucket(corr)]; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->corr, corr)) {
            struct pending *p = *pp;
            *pp = p->next;
            return p;
        }
    return NULL;
}

static int reply_error(json_t *env, verr_t *e)
{
    json_t *err = json_object_get(env, "error");
    return verr_set(e, (int)json_int(err, "status", 500), json_str(err, "code", "InternalError"), "%s",
                    json_str(err, "message", "remote error"));
}

static void timed_out(bus_t *b, struct pending *p)
{
    verr_t e = {0};
    bus_stat_inc(&b->stats.call_timeouts);
    verr_set(&e, 504, "RequestTimeout", "no reply from %s within %d ms", p->what, p->timeout_ms);
    p->cb(p->arg, NULL, &e);
    free(p);
}

/* A reply counts only when the one called signed it: a reply topic is written by every
 * principal this one calls, and none of them may answer for another. */
static void deliver_reply(bus_t *b, json_t *env, const bus_principal_t *from)
{
    const char *corr = json_str(env, "corr", "");
    pthread_mutex_lock(&b->mu);
    struct pending *p = NULL;
    for (p = b->pending[corr_bucket(corr)]; p && strcmp(p->corr, corr); p = p->next)
        ;
    if (p && p->expect[0] && strcmp(p->expect, from->name)) {
        log_warn("bus: dropping a reply to %s signed by %s, not by %s", p->what, from->name, p->expect);
        p = NULL;
    } else if (p) {
        p = pending_take(b, corr);
    }
    pthread_mutex_unlock(&b->mu);
    if (!p)
        return;
    if (json_is_true(json_object_get(env, "ok"))) {
        json_t *rb = json_object_get(env, "body");
        p->cb(p->arg, rb ? json_incref(rb) : json_object(), NULL);
    } else {
        verr_t e = {0};
        reply_error(env, &e);
        p->cb(p->arg, NULL, &e);
    }
    free(p);
}

/* Time out every call past its deadline (all of them when closing), and note when the
 * next one will be due. The expired calls are unlinked under the lock and called back
 * outside it. */
void bus_rpc_sweep(bus_t *b, int all)
{
    int64_t now = bus_now_ms(), next = INT64_MAX;
    struct pending *expired = NULL;
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < PENDING_BUCKETS; i++)
        for (struct pending **pp = &b->pending[i]; *pp;) {
            struct pending *p = *pp;
            if (all || now >= p->deadline) {
                *pp = p->next;
                p->next = expired;
                expired = p;
            } else {
                if (p->deadline < next)
                    next = p->deadline;
                pp = &p->next;
            }
        }
    b->sweep_at = next;
    pthread_mutex_unlock(&b->mu);
    while (expired) {
        struct pending *p = expired;
        expired = p->next;
        timed_out(b, p);
    }
}

void bus_rpc_on_reply(bus_t *b, const rd_kafka_message_t *m)
{
    if (m->len > BUS_MAX_MSG)
        return;
    bus_principal_t from;
    json_t *env = bus_message_sender(b, m, &from) == 0 ? json_parse_bounded(m->payload, m->len, BUS_MAX_MSG) : NULL;
    if (env && !strcmp(json_str(env, "type", ""), "reply"))
        deliver_reply(b, env, &from);
    json_decref(env);
}

void bus_rpc_undeliverable(bus_t *b, const char *corr, rd_kafka_resp_err_t err)
{
    pthread_mutex_lock(&b->mu);
    struct pending *p = pending_take(b, corr);
    pthread_mutex_unlock(&b->mu);
    if (!p)
        return;   /* answered or timed out already */
    verr_t e = {0};
    if (err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
        verr_set(&e, 403, "AccessDenied", "the broker does not let principal %s send %s", b->cred.principal,
                 p->what);
    else
        verr_set(&e, 503, "ServiceUnavailable", "the bus could not deliver %s: %s", p->what, rd_kafka_err2str(err));
    p->cb(p->arg, NULL, &e);
    free(p);
}

int bus_call_async(bus_t *b, const char *service, const char *type, json_t *body,
                   const json_t *caller, int timeout_ms, bus_reply_fn cb, void *arg, verr_t *e)
{
    if (timeout_ms <= 0)
        timeout_ms = 5000;
    int rc = bus_read_replies(b, e);
    if (rc < 0) {
        json_decref(body);
        return -1;
    }
    bus_stat_inc(&b->stats.calls);

    char topic[256];
    if (strchr(service, '.'))
        snprintf(topic, sizeof topic, "%s", service);
    else
        snprintf(topic, sizeof topic, "virga.rpc.%s", service);

    int64_t deadline = bus_now_ms() + timeout_ms;
    json_t *env = bus_envelope(type, body, caller);
    json_object_set_new(env, "reply_to", json_string(b->reply_topic));
    json_object_set_new(env, "deadline", json_integer(deadline));

    /* in the table before the request leaves, so no reply can arrive unexpected */
    struct pending *p = xcalloc(1, sizeof *p);
    snprintf(p->corr, sizeof p->corr, "%s", json_str(env, "id", ""));
    snprintf(p->what, sizeof p->what, "%s to %s", service, type);
    bus_topic_server(topic, p->expect);
    p->deadline = deadline;
    p->timeout_ms = timeout_ms;
    p->cb = cb;
    p->arg = arg;
    unsigned h = corr_bucket(p->corr);
    char corr[40];
    memcpy(corr, p->corr, sizeof corr);
    pthread_mutex_lock(&b->mu);
    p->next = b->pending[h];
    b->pending[h] = p;
    if (deadline < b->sweep_at)
        b->sweep_at = deadline;
    pthread_mutex_unlock(&b->mu);
    bus_read_deadline(b, deadline);

    rc = bus_produce(b, topic, -1, env, corr, e);
    json_decref(env);
    if (rc < 0) {
        /* not sent: take the call back unless the deadline sweep already has it
         * (then cb runs with RequestTimeout, as promised once we return 0) */
        pthread_mutex_lock(&b->mu);
        struct pending *mine = pending_take(b, corr);
        pthread_mutex_unlock(&b->mu);
        if (!mine)
            return 0;
        free(mine);
        return -1;
    }
    return 0;
}

/* bus_call is bus_call_async plus a wait: one pending table, one delivery path. */
struct sync_call {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    json_t *reply;
    verr_t err;
};

static void sync_done(void *arg, json_t *reply, const verr_t *err)
{
    struct sync_call *sc = arg;
    pthread_mutex_lock(&sc->mu);
    sc->reply = reply;
    if (err)
        sc->err = *err;
    sc->done = 1;
    pthread_cond_signal(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
}

int bus_call(bus_t *b, const char *service, const char *type, json_t *body,
             const json_t *caller, int timeout_ms, json_t **reply, verr_t *e)
{
    *reply = NULL;
    struct sync_call sc = {.done = 0};
    pthread_mutex_init(&sc.mu, NULL);
    pthread_cond_init(&sc.cv, NULL);
    int rc = bus_call_async(b, service, type, body, caller, timeout_ms, sync_done, &sc, e);
    if (rc == 0) {
        /* the reply loop calls back by the deadline (or bus_close does) */
        pthread_mutex_lock(&sc.mu);
        while (!sc.done)
            pthread_cond_wait(&sc.cv, &sc.mu);
        pthread_mutex_unlock(&sc.mu);
        if (sc.reply)
            *reply = sc.reply;
        else {
            if (e)
                *e = sc.err;
            rc = -1;
        }
    }
    pthread_mutex_destroy(&sc.mu);
    pthread_cond_destroy(&sc.cv);
    return rc;
}
