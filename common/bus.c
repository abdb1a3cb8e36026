/* bus.c - librdkafka producer, consumer-group server with a worker pool, and RPC
 * over a per-process reply topic. See bus.h for the envelope and the guarantees. */
#include "bus.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"
#include "ids.h"
#include "jsonutil.h"
#include "log.h"
#include "utf8.h"

#define BUS_MAX_MSG (1024 * 1024)
#define BUS_QUEUE_MAX 1024
/* librdkafka bounds a healthy close by about the session timeout */
#define CLOSE_LIMIT(b) ((b)->session_timeout_ms + 2000)

/* One RPC in flight. Whoever unlinks it from the table (the reply loop on a reply or
 * at its deadline, bus_close, or bus_call_async when the publish failed) owns it and
 * is the only one to call cb: that is what makes delivery exactly-once. */
struct pending {
    char corr[40];
    int64_t deadline;          /* unix ms */
    bus_reply_fn cb;
    void *arg;
    char what[320];            /* "<service> to <type>" for the timeout message */
    int timeout_ms;
    struct pending *next;
};

#define PENDING_BUCKETS 256

/* What the rebalance callback of the serving consumer touches, apart from the bus: a
 * consumer whose close is abandoned (consumer_destroy) may still call back after
 * bus_close has freed the bus, so this is then left allocated. */
struct group {
    volatile int assigned;
    char topic[256];
};

struct job {
    rd_kafka_message_t *m;
    struct job *next;
};

struct bus {
    char name[64];
    char brokers[512];
    int fetch_wait_ms, session_timeout_ms;
    volatile int running;

    rd_kafka_t *prod;
    pthread_t prod_thr;

    /* RPC client side: started on the first call */
    pthread_mutex_t mu;
    struct pending *pending[PENDING_BUCKETS];   /* by hash of corr */
    int64_t next_sweep;                         /* reply thread only */
    rd_kafka_t *reply_rk;
    pthread_t reply_thr;
    int reply_started;
    char reply_topic[200];

    /* server side: `serving` is cleared by bus_stop_serving, before `running` */
    bus_serve_opts_t opts;
    rd_kafka_t *cons;
    pthread_t cons_thr;
    pthread_t *workers;
    int nworkers;
    int serving_started;
    volatile int serving;
    struct group *group;       /* the consumer's rebalance state */
    pthread_mutex_t qmu;
    pthread_cond_t qcv, qspace;
    struct job *qhead, *qtail;
    int qlen;

    /* broadcast listener */
    rd_kafka_t *listen_rk;
    pthread_t listen_thr;
    volatile int listening;
    bus_handler_fn listen_fn;
    void *listen_app;
    char listen_topic[128];

    bus_stats_t stats;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void stat_inc(uint64_t *v) { __atomic_add_fetch(v, 1, __ATOMIC_RELAXED); }

static int conf_set(rd_kafka_conf_t *c, const char *k, const char *v, verr_t *e)
{
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK)
        return verr_set(e, 500, "InternalError", "bus config %s=%s: %s", k, v, err);
    return 0;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 3)
        log_error("kafka %s: %s", fac, buf);
    else if (level <= 4)
        log_warn("kafka %s: %s", fac, buf);
    else
        log_debug("kafka %s: %s", fac, buf);
}

/* Settings shared by every client: loopback brokers answer in microseconds, so what
 * dominates latency is batching and fetch waits; turn both down. */
static rd_kafka_conf_t *base_conf(bus_t *b, int consumer, verr_t *e)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char fw[16];
    snprintf(fw, sizeof fw, "%d", b->fetch_wait_ms);
    if (conf_set(c, "bootstrap.servers", b->brokers, e) < 0 ||
        conf_set(c, "client.id", b->name, e) < 0 ||
        conf_set(c, "socket.nagle.disable", "true", e) < 0 ||
        (consumer && conf_set(c, "fetch.wait.max.ms", fw, e) < 0) ||
        (consumer && conf_set(c, "fetch.error.backoff.ms", "50", e) < 0) ||
        conf_set(c, "reconnect.backoff.ms", "50", e) < 0 ||
        conf_set(c, "reconnect.backoff.max.ms", "1000", e) < 0 ||
        conf_set(c, "topic.metadata.refresh.interval.ms", "10000", e) < 0) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(c, log_cb);
    return c;
}

static void *prod_loop(void *arg)
{
    bus_t *b = arg;
    while (b->running)
        rd_kafka_poll(b->prod, 100);
    return NULL;
}

bus_t *bus_open(const config_t *cfg, const char *name, verr_t *e)
{
    bus_t *b = xcalloc(1, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    snprintf(b->brokers, sizeof b->brokers, "%s", config_str(cfg, "bus.brokers", "127.0.0.1:9092"));
    b->fetch_wait_ms = (int)config_int(cfg, "bus.fetch_wait_ms", 2);
    b->session_timeout_ms = (int)config_int(cfg, "bus.session_timeout_ms", 6000);
    b->running = 1;
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_init(&b->qmu, NULL);
    pthread_cond_init(&b->qcv, NULL);
    pthread_cond_init(&b->qspace, NULL);

    rd_kafka_conf_t *c = base_conf(b, 0, e);
    if (!c || conf_set(c, "linger.ms", "0", e) < 0 || conf_set(c, "acks", "1", e) < 0 ||
        conf_set(c, "message.timeout.ms", "30000", e) < 0) {
        if (c)
            rd_kafka_conf_destroy(c);
        free(b);
        return NULL;
    }
    char err[256];
    b->prod = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!b->prod) {
        verr_set(e, 503, "ServiceUnavailable", "bus producer: %s", err);
        free(b);
        return NULL;
    }
    int rc = pthread_create(&b->prod_thr, NULL, prod_loop, b);
    if (rc != 0) {
        verr_set(e, 503, "ServiceUnavailable", "bus producer thread: %s", strerror(rc));
        rd_kafka_destroy(b->prod);
        free(b);
        return NULL;
    }
    return b;
}

/* Produce one envelope; partition -1 lets the partitioner spread requests. */
static int produce(bus_t *b, const char *topic, int32_t partition, json_t *env, verr_t *e)
{
    char *s = json_dumps(env, JSON_COMPACT);
    if (!s)
        return verr_set(e, 500, "InternalError", "cannot encode bus message");
    size_t len = strlen(s);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int tries = 0; tries < 50; tries++) {
        err = rd_kafka_producev(b->prod, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                RD_KAFKA_V_VALUE(s, len), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(b->prod, 10);
    }
    if (err) {
        free(s);
        return verr_set(e, 503, "ServiceUnavailable", "bus publish to %s: %s", topic, rd_kafka_err2str(err));
    }
    return 0;
}

static json_t *envelope(const char *type, json_t *body, const json_t *caller)
{
    char id[33];
    ids_hex(id, 32);
    json_t *env = json_pack("{s:i, s:s, s:s, s:I}", "v", 1, "id", id, "type", type, "ts", (json_int_t)now_ms());
    json_object_set_new(env, "body", body ? body : json_object());
    if (caller)
        json_object_set(env, "caller", (json_t *)caller);
    return env;
}

int bus_publish(bus_t *b, const char *topic, const char *type, json_t *body, verr_t *e)
{
    json_t *env = envelope(type, body, NULL);
    int rc = produce(b, topic, -1, env, e);
    json_decref(env);
    return rc;
}

/* A consumer being closed on a thread of its own (see consumer_destroy). */
struct closing {
    rd_kafka_t *rk;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, abandoned;
};

static void *close_thread(void *arg)
{
    struct closing *c = arg;
    rd_kafka_consumer_close(c->rk);
    pthread_mutex_lock(&c->mu);
    c->done = 1;
    int abandoned = c->abandoned;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (abandoned) {   /* its owner gave up waiting: finish alone */
        rd_kafka_destroy(c->rk);
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c);
    }
    return NULL;
}

/* Close and free a consumer within about limit_ms. rd_kafka_consumer_close leaves the
 * group and commits offsets, and when the broker goes away in the middle (a Ctrl-C
 * stops every process of a devcloud at once, the broker first) librdkafka 2.0 waits
 * for it for minutes. So: when the cluster does not even answer a metadata request,
 * free the consumer without the goodbye (the group notices at its session timeout, as
 * after a crash); else close it on a thread of its own, and past limit_ms leave that
 * thread to finish (and free the consumer) alone, so that the process can stop.
 * 1 when the consumer is gone, 0 when it was left to its thread (and may still call
 * back). */
static int consumer_destroy(rd_kafka_t *rk, int limit_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 0, NULL, &md, 1000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_warn("bus: the broker does not answer: leaving without closing the consumer");
        rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        return 1;
    }
    rd_kafka_metadata_destroy(md);
    struct closing *c = xcalloc(1, sizeof *c);
    c->rk = rk;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, close_thread, c) != 0) {
        rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        free(c);
        return 1;
    }
    struct timespec until = deadline_in_ms(limit_ms);
    pthread_mutex_lock(&c->mu);
    while (!c->done && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
        ;
    int done = c->done;
    c->abandoned = !done;
    pthread_mutex_unlock(&c->mu);
    if (!done) {
        log_warn("bus: the consumer did not close within %d ms (the broker does not answer): going on without it",
                 limit_ms);
        pthread_detach(th);
        return 0;
    }
    pthread_join(th, NULL);
    rd_kafka_destroy(rk);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
    return 1;
}

/* ---- RPC client ---------------------------------------------------------------- */

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
    stat_inc(&b->stats.call_timeouts);
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
    int64_t now = now_ms();
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
        if (now_ms() >= b->next_sweep) {
            sweep_pending(b, 0);
            b->next_sweep = now_ms() + 50;
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

    rd_kafka_conf_t *c = base_conf(b, 1, e);
    AUTOFREE char *gid = xasprintf("virga-reply-%s", rnd);
    if (!c || conf_set(c, "group.id", gid, e) < 0 || conf_set(c, "enable.auto.commit", "false", e) < 0 ||
        conf_set(c, "allow.auto.create.topics", "true", e) < 0 ||
        conf_set(c, "auto.offset.reset", "earliest", e) < 0) {
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
    json_t *hello = envelope("hello", NULL, NULL);
    produce(b, b->reply_topic, 0, hello, NULL);
    json_decref(hello);

    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, b->reply_topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t r = rd_kafka_assign(b->reply_rk, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    int trc = r ? 0 : pthread_create(&b->reply_thr, NULL, reply_loop, b);
    if (r || trc) {
        /* the next call tries again from scratch */
        consumer_destroy(b->reply_rk, CLOSE_LIMIT(b));
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
    stat_inc(&b->stats.calls);

    char topic[256];
    if (strchr(service, '.'))
        snprintf(topic, sizeof topic, "%s", service);
    else
        snprintf(topic, sizeof topic, "virga.rpc.%s", service);

    int64_t deadline = now_ms() + timeout_ms;
    json_t *env = envelope(type, body, caller);
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

    rc = produce(b, topic, -1, env, e);
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

/* ---- server ------------------------------------------------------------------- */

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct group *g = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, parts);
        g->assigned = parts->cnt > 0;
        log_info("serving %s: %d partition(s) assigned", g->topic, parts->cnt);
    } else {
        rd_kafka_assign(rk, NULL);
        g->assigned = 0;
        log_info("serving %s: partitions revoked", g->topic);
    }
}

static void *consume_loop(void *arg)
{
    bus_t *b = arg;
    while (b->serving) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(b->cons, 100);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("consume %s: %s", b->opts.topic, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        struct job *j = xmalloc(sizeof *j);
        j->m = m;
        j->next = NULL;
        pthread_mutex_lock(&b->qmu);
        while (b->qlen >= BUS_QUEUE_MAX && b->serving)
            pthread_cond_wait(&b->qspace, &b->qmu);
        if (b->qtail)
            b->qtail->next = j;
        else
            b->qhead = j;
        b->qtail = j;
        b->qlen++;
        pthread_cond_signal(&b->qcv);
        pthread_mutex_unlock(&b->qmu);
    }
    return NULL;
}

static void send_reply(bus_t *b, const bus_msg_t *msg, int rc, json_t *reply, const verr_t *err)
{
    json_t *env = json_pack("{s:i, s:s, s:s, s:s, s:b}", "v", 1, "id", "", "type", "reply",
                            "corr", msg->id, "ok", rc == 0);
    char id[33];
    ids_hex(id, 32);
    json_object_set_new(env, "id", json_string(id));
    if (rc == 0)
        json_object_set_new(env, "body", reply ? reply : json_object());
    else {
        json_decref(reply);   /* a failing handler's half-built reply is not sent */
        char *msgtxt = utf8_sanitize(err->message);   /* may quote tenant bytes, cut short */
        json_object_set_new(env, "error", json_pack("{s:s, s:s, s:i}", "code", err->code[0] ? err->code : "InternalError",
                                                     "message", msgtxt, "status", err->http_status ? err->http_status : 500));
        free(msgtxt);
    }
    verr_t pe;
    if (produce(b, msg->reply_to, 0, env, &pe) < 0)
        log_warn("reply to %s lost: %s", msg->reply_to, pe.message);
    json_decref(env);
}

static void dispatch(bus_t *b, void *worker, rd_kafka_message_t *m)
{
    json_t *env = json_parse_bounded(m->payload, m->len, BUS_MAX_MSG);
    if (!env || !json_is_object(env)) {
        log_warn("dropping malformed message on %s (%zu bytes)", b->opts.topic, m->len);
        json_decref(env);
        return;
    }
    bus_msg_t msg = {
        .id = json_str(env, "id", ""),
        .type = json_str(env, "type", ""),
        .reply_to = json_str(env, "reply_to", NULL),
        .deadline_ms = json_int(env, "deadline", 0),
        .caller = json_object_get(env, "caller"),
        .body = json_object_get(env, "body"),
    };
    const char *rid = json_str(msg.caller, "request_id", msg.id);
    log_set_request_id(rid);
    if (msg.deadline_ms && now_ms() > msg.deadline_ms) {
        stat_inc(&b->stats.expired);
        log_debug("dropping %s: deadline passed", msg.type);
        goto out;
    }
    const bus_route_t *r = b->opts.routes;
    while (r && r->type && strcmp(r->type, msg.type))
        r++;
    json_t *reply = NULL;
    verr_t err = {0};
    int rc;
    if (!r || !r->type) {
        rc = verr_set(&err, 400, "InvalidAction", "%s does not handle '%s'", b->name, msg.type);
    } else {
        bus_ctx_t ctx = {.bus = b, .msg = &msg, .worker = worker, .app = b->opts.app};
        json_t *body = msg.body ? (json_t *)msg.body : json_object();
        rc = r->fn(&ctx, body, &reply, &err);
        if (!msg.body)
            json_decref(body);
        if (rc < 0 && !err.code[0]) {
            /* every failure must say why where it is detected: this one is a bug */
            log_error("BUG: the handler for %s failed without setting an error", msg.type);
            verr_set(&err, 500, "InternalError", "We encountered an internal error (%s). Please try again.", msg.type);
        }
    }
    stat_inc(&b->stats.served);
    if (rc < 0) {
        stat_inc(&b->stats.handler_errors);
        log_info("%s -> %s: %s", msg.type, err.code, err.message);
    }
    if (msg.reply_to && *msg.reply_to)
        send_reply(b, &msg, rc, reply, &err);   /* takes reply */
    else
        json_decref(reply);
out:
    log_set_request_id(NULL);
    json_decref(env);
}

static void *worker_loop(void *arg)
{
    bus_t *b = arg;
    void *w = b->opts.worker_init ? b->opts.worker_init(b->opts.app) : NULL;
    for (;;) {
        pthread_mutex_lock(&b->qmu);
        while (!b->qhead && b->serving)
            pthread_cond_wait(&b->qcv, &b->qmu);
        struct job *j = b->qhead;
        if (!j) {
            pthread_mutex_unlock(&b->qmu);
            break;
        }
        b->qhead = j->next;
        if (!b->qhead)
            b->qtail = NULL;
        b->qlen--;
        pthread_cond_signal(&b->qspace);
        pthread_mutex_unlock(&b->qmu);
        dispatch(b, w, j->m);
        rd_kafka_message_destroy(j->m);
        free(j);
    }
    if (b->opts.worker_fini)
        b->opts.worker_fini(w);
    return NULL;
}

/* Clear `serving`, wake every waiter, and join the workers, which first answer what
 * is already queued. The consumer thread, when started, is joined by the caller. */
static void stop_workers(bus_t *b)
{
    pthread_mutex_lock(&b->qmu);
    b->serving = 0;
    pthread_cond_broadcast(&b->qcv);
    pthread_cond_broadcast(&b->qspace);
    pthread_mutex_unlock(&b->qmu);
    for (int i = 0; i < b->nworkers; i++)
        pthread_join(b->workers[i], NULL);
}

int bus_serve(bus_t *b, const bus_serve_opts_t *opts, verr_t *e)
{
    if (b->serving_started)
        return verr_set(e, 500, "InternalError", "bus_serve called twice");
    if (opts->workers < 0 || opts->workers > BUS_MAX_WORKERS)
        return verr_set(e, 400, "InvalidParameterValue", "bus.workers must be 1..%d (0: the default, 4), not %d",
                        BUS_MAX_WORKERS, opts->workers);
    b->opts = *opts;
    b->nworkers = opts->workers > 0 ? opts->workers : 4;

    rd_kafka_conf_t *c = base_conf(b, 1, e);
    char st[16];
    snprintf(st, sizeof st, "%d", b->session_timeout_ms);
    if (!c || conf_set(c, "group.id", opts->group, e) < 0 ||
        conf_set(c, "session.timeout.ms", st, e) < 0 ||
        conf_set(c, "heartbeat.interval.ms", "500", e) < 0 ||
        conf_set(c, "auto.offset.reset", "earliest", e) < 0 ||
        conf_set(c, "enable.auto.commit", "true", e) < 0 ||
        conf_set(c, "auto.commit.interval.ms", "1000", e) < 0 ||
        conf_set(c, "allow.auto.create.topics", "true", e) < 0) {
        if (c)
            rd_kafka_conf_destroy(c);
        return -1;
    }
    b->group = xcalloc(1, sizeof *b->group);
    snprintf(b->group->topic, sizeof b->group->topic, "%s", opts->topic);
    rd_kafka_conf_set_rebalance_cb(c, rebalance_cb);
    rd_kafka_conf_set_opaque(c, b->group);
    char err[256];
    b->cons = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!b->cons) {
        free(b->group);
        b->group = NULL;
        return verr_set(e, 503, "ServiceUnavailable", "bus consumer: %s", err);
    }
    rd_kafka_poll_set_consumer(b->cons);
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, opts->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t r = rd_kafka_subscribe(b->cons, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    if (r) {
        rd_kafka_destroy(b->cons);
        b->cons = NULL;
        free(b->group);
        b->group = NULL;
        return verr_set(e, 503, "ServiceUnavailable", "subscribe %s: %s", opts->topic, rd_kafka_err2str(r));
    }
    b->workers = xcalloc((size_t)b->nworkers, sizeof *b->workers);
    b->serving = 1;
    int started = 0, trc = 0;
    while (started < b->nworkers && !(trc = pthread_create(&b->workers[started], NULL, worker_loop, b)))
        started++;
    if (!trc)
        trc = pthread_create(&b->cons_thr, NULL, consume_loop, b);
    if (trc) {
        /* take back what did start, so the bus is as before the call */
        b->nworkers = started;
        stop_workers(b);
        if (consumer_destroy(b->cons, CLOSE_LIMIT(b)))
            free(b->group);
        b->cons = NULL;
        b->group = NULL;
        free(b->workers);
        b->workers = NULL;
        b->nworkers = 0;
        return verr_set(e, 503, "ServiceUnavailable", "bus handler threads: %s", strerror(trc));
    }
    b->serving_started = 1;
    return 0;
}

static void *listen_loop(void *arg)
{
    bus_t *b = arg;
    while (b->listening) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(b->listen_rk, 100);
        if (!m)
            continue;
        if (!m->err) {
            json_t *env = json_parse_bounded(m->payload, m->len, BUS_MAX_MSG);
            if (env && json_is_object(env)) {
                bus_msg_t msg = {.id = json_str(env, "id", ""), .type = json_str(env, "type", ""),
                                 .caller = json_object_get(env, "caller"), .body = json_object_get(env, "body")};
                bus_ctx_t ctx = {.bus = b, .msg = &msg, .app = b->listen_app};
                json_t *reply = NULL;
                verr_t err;
                if (msg.body)
                    b->listen_fn(&ctx, msg.body, &reply, &err);
                json_decref(reply);
            }
            json_decref(env);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

int bus_listen(bus_t *b, const char *topic, bus_handler_fn fn, void *app, verr_t *e)
{
    if (b->listen_rk)
        return verr_set(e, 500, "InternalError", "bus_listen called twice");
    rd_kafka_conf_t *c = base_conf(b, 1, e);
    char rnd[9];
    ids_hex(rnd, 8);
    AUTOFREE char *gid = xasprintf("virga-listen-%s", rnd);
    if (!c || conf_set(c, "group.id", gid, e) < 0 || conf_set(c, "enable.auto.commit", "false", e) < 0) {
        if (c)
            rd_kafka_conf_destroy(c);
        return -1;
    }
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!rk)
        return verr_set(e, 503, "ServiceUnavailable", "bus listener: %s", err);
    rd_kafka_poll_set_consumer(rk);
    /* every partition, from the end: a listener wants what happens from now on */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t r = rd_kafka_metadata(rk, 0, t, &md, 5000);
    int nparts = (r == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && !md->topics[0].err)
                     ? md->topics[0].partition_cnt : 0;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    if (nparts <= 0) {
        rd_kafka_destroy(rk);
        return verr_set(e, 503, "ServiceUnavailable", "bus listener: no partitions for %s", topic);
    }
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(nparts);
    for (int i = 0; i < nparts; i++)
        rd_kafka_topic_partition_list_add(tp, topic, i)->offset = RD_KAFKA_OFFSET_END;
    r = rd_kafka_assign(rk, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    if (r) {
        rd_kafka_destroy(rk);
        return verr_set(e, 503, "ServiceUnavailable", "bus listener assign: %s", rd_kafka_err2str(r));
    }
    b->listen_rk = rk;
    b->listen_fn = fn;
    b->listen_app = app;
    snprintf(b->listen_topic, sizeof b->listen_topic, "%s", topic);
    b->listening = 1;
    int trc = pthread_create(&b->listen_thr, NULL, listen_loop, b);
    if (trc) {
        b->listening = 0;
        b->listen_rk = NULL;
        consumer_destroy(rk, CLOSE_LIMIT(b));
        return verr_set(e, 503, "ServiceUnavailable", "bus listener thread: %s", strerror(trc));
    }
    return 0;
}

int bus_serving(bus_t *b) { return b && b->group && b->cons && b->group->assigned; }

void bus_get_stats(bus_t *b, bus_stats_t *out)
{
    out->calls = __atomic_load_n(&b->stats.calls, __ATOMIC_RELAXED);
    out->call_timeouts = __atomic_load_n(&b->stats.call_timeouts, __ATOMIC_RELAXED);
    out->served = __atomic_load_n(&b->stats.served, __ATOMIC_RELAXED);
    out->expired = __atomic_load_n(&b->stats.expired, __ATOMIC_RELAXED);
    out->handler_errors = __atomic_load_n(&b->stats.handler_errors, __ATOMIC_RELAXED);
}

void bus_stop_serving(bus_t *b)
{
    if (!b)
        return;
    if (b->cons) {
        pthread_mutex_lock(&b->qmu);
        b->serving = 0;   /* the consumer may wait for queue space: wake it */
        pthread_cond_broadcast(&b->qspace);
        pthread_mutex_unlock(&b->qmu);
        pthread_join(b->cons_thr, NULL);
        /* workers drain the queue: messages already taken are answered */
        stop_workers(b);
        if (consumer_destroy(b->cons, CLOSE_LIMIT(b)))
            free(b->group);
        b->cons = NULL;
        b->group = NULL;
        for (struct job *j = b->qhead, *n; j; j = n) {   /* none: the workers drained it */
            n = j->next;
            rd_kafka_message_destroy(j->m);
            free(j);
        }
        b->qhead = b->qtail = NULL;
        b->qlen = 0;
        free(b->workers);
        b->workers = NULL;
    }
    if (b->listen_rk) {
        b->listening = 0;
        pthread_join(b->listen_thr, NULL);
        consumer_destroy(b->listen_rk, CLOSE_LIMIT(b));
        b->listen_rk = NULL;
    }
}

void bus_close(bus_t *b)
{
    if (!b)
        return;
    bus_stop_serving(b);
    b->running = 0;
    if (b->reply_started) {
        pthread_join(b->reply_thr, NULL);
        sweep_pending(b, 1);   /* calls still waiting will get no reply now */
        consumer_destroy(b->reply_rk, CLOSE_LIMIT(b));
    }
    pthread_join(b->prod_thr, NULL);
    rd_kafka_flush(b->prod, 2000);
    rd_kafka_destroy(b->prod);
    pthread_mutex_destroy(&b->mu);
    pthread_mutex_destroy(&b->qmu);
    pthread_cond_destroy(&b->qcv);
    pthread_cond_destroy(&b->qspace);
    free(b);
}
