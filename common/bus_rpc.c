/* bus_rpc.c - RPC over the bus: calls with correlation ids and deadlines, answered on
 * a per-process reply topic (bus.h). */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus_internal.h"
#include "ids.h"
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

static void deliver_reply(bus_t *b, json_t *env)
{
    pthread_mutex_lock(&b->mu);
    struct pending *p = pending_take(b, json_str(env, "corr", ""));
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

/* Time out every call past its deadline (all of them when closing). The expired calls
 * are unlinked under the lock and called back outside it. */
static void sweep_pending(bus_t *b, int all)
{
    int64_t now = bus_now_ms();
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
                pp = &p->next;
            }
        }
    pthread_mutex_unlock(&b->mu);
    while (expired) {
        struct pending *p = expired;
        expired = p->next;
        timed_out(b, p);
    }
}

static void *reply_loop(void *arg)
{
    bus_t *b = arg;
    while (b->running) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(b->reply_rk, 50);
        if (bus_now_ms() >= b->next_sweep) {
            sweep_pending(b, 0);
            b->next_sweep = bus_now_ms() + 50;
        }
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_debug("reply topic: %s", rd_kafka_message_errstr(m));
        } else if (m->len <= BUS_MAX_MSG) {
            json_t *env = json_parse_bounded(m->payload, m->len, BUS_MAX_MSG);
            if (env && !strcmp(json_str(env, "type", ""), "reply"))
                deliver_reply(b, env);
            json_decref(env);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

/* The reply topic is new and private to this process, so reading it from the
 * beginning can never miss a reply, whenever the first fetch happens. */
static int start_replies(bus_t *b, verr_t *e)
{
    if (b->reply_started)
        return 0;
    char rnd[9];
    ids_hex(rnd, 8);
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    for (char *h = host; *h; h++)
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') || *h == '-'))
            *h = '-';
    snprintf(b->reply_topic, sizeof b->reply_topic, "virga.reply.%s.%s.%d.%s", b->name, host, (int)getpid(), rnd);

    rd_kafka_conf_t *c = bus_base_conf(b, 1, e);
    AUTOFREE char *gid = xasprintf("virga-reply-%s", rnd);
    if (!c || bus_conf_set(c, "group.id", gid, e) < 0 || bus_conf_set(c, "enable.auto.commit", "false", e) < 0 ||
        bus_conf_set(c, "allow.auto.create.topics", "true", e) < 0 ||
        bus_conf_set(c, "auto.offset.reset", "earliest", e) < 0) {
        if (c)
            rd_kafka_conf_destroy(c);
        return -1;
    }
    char err[256];
    b->reply_rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!b->reply_rk)
        return verr_set(e, 503, "ServiceUnavailable", "bus reply consumer: %s", err);
    rd_kafka_poll_set_consumer(b->reply_rk);

    /* A first message creates the topic on brokers that auto-create (the mock and
     * Kafka's default); the reply loop ignores it. */
    json_t *hello = bus_envelope("hello", NULL, NULL);
    bus_produce(b, b->reply_topic, 0, hello, NULL);
    json_decref(hello);

    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, b->reply_topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t r = rd_kafka_assign(b->reply_rk, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    int trc = r ? 0 : pthread_create(&b->reply_thr, NULL, reply_loop, b);
    if (r || trc) {
        /* the next call tries again from scratch */
        bus_consumer_destroy(b->reply_rk, CLOSE_LIMIT(b));
        b->reply_rk = NULL;
        if (r)
            return verr_set(e, 503, "ServiceUnavailable", "bus reply assign: %s", rd_kafka_err2str(r));
        return verr_set(e, 503, "ServiceUnavailable", "bus reply thread: %s", strerror(trc));
    }
    b->reply_started = 1;
    return 0;
}

int bus_call_async(bus_t *b, const char *service, const char *type, json_t *body,
                   const json_t *caller, int timeout_ms, bus_reply_fn cb, void *arg, verr_t *e)
{
    if (timeout_ms <= 0)
        timeout_ms = 5000;
    pthread_mutex_lock(&b->mu);
    int rc = start_replies(b, e);
    pthread_mutex_unlock(&b->mu);
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
    pthread_mutex_unlock(&b->mu);

    rc = bus_produce(b, topic, -1, env, e);
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

void bus_rpc_close(bus_t *b)
{
    if (!b->reply_started)
        return;
    pthread_join(b->reply_thr, NULL);
    sweep_pending(b, 1);   /* calls still waiting will get no reply now */
    bus_consumer_destroy(b->reply_rk, CLOSE_LIMIT(b));
}
