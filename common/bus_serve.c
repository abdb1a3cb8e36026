/* bus_serve.c - serving a topic in a consumer group with a pool of handler threads,
 * and stopping it and the broadcast listener (bus.h; the listener is bus_read.c's). */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "answers.h"
#include "bigbuf.h"
#include "bus_internal.h"
#include "ids.h"
#include "jsonutil.h"
#include "log.h"
#include "utf8.h"

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

/* ---- lanes: a bounded queue of received requests and the threads serving it ---------- */

static void lane_init(struct lane *l, int max)
{
    memset(l, 0, sizeof *l);
    l->max = max;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    pthread_cond_init(&l->space, NULL);
    pthread_cond_init(&l->consumer, NULL);
}

static void job_free(struct job *j)
{
    rd_kafka_message_destroy(j->m);
    json_decref(j->asked);
    free(j->asking);
    free(j);
}

/* Append j. Caller holds l->mu. */
static void lane_append(struct lane *l, struct job *j)
{
    j->queued_us = metrics_now_us();
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->len++;
    pthread_cond_signal(&l->cv);
}

static struct job *job_new(bus_t *b, struct lane *l, rd_kafka_message_t *m)
{
    struct job *j = xcalloc(1, sizeof *j);
    j->m = m;
    j->bus = b;
    j->lane = l;
    return j;
}

/* Queue m; when the lane is full, wait for room (wait) or drop it (returns -1). */
static int lane_push(bus_t *b, struct lane *l, rd_kafka_message_t *m, int wait)
{
    pthread_mutex_lock(&l->mu);
    while (l->len >= l->max && b->serving && wait)
        pthread_cond_wait(&l->space, &l->mu);
    if (l->len >= l->max) {
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    lane_append(l, job_new(b, l, m));
    pthread_mutex_unlock(&l->mu);
    return 0;
}

/* The job at the head of the lane, now a worker's. Caller holds l->mu. */
static struct job *lane_take(struct lane *l)
{
    struct job *j = l->head;
    l->head = j->next;
    if (!l->head)
        l->tail = NULL;
    l->len--;
    __atomic_add_fetch(&l->busy, 1, __ATOMIC_RELAXED);   /* until lane_loop is done with it */
    pthread_cond_signal(&l->space);
    return j;
}

/* The health lane's next request, or NULL once the bus stops serving and the lane is
 * empty. */
static struct job *lane_pop(bus_t *b, struct lane *l)
{
    pthread_mutex_lock(&l->mu);
    while (!l->head && (b->serving || l->parked))
        pthread_cond_wait(&l->cv, &l->mu);
    struct job *j = l->head ? lane_take(l) : NULL;
    pthread_mutex_unlock(&l->mu);
    return j;
}

/* ---- who polls the consumer ------------------------------------------------------------
 * A request used to go from librdkafka's broker thread to the consumer thread, and from
 * it through the lane to a worker: two threads woken, one after the other, before its
 * handler ran, on two cores shared with everything else. Now an idle worker polls the
 * consumer itself and handles what it gets, so a request that finds a worker idle wakes
 * one thread. The consumer thread polls only while no worker is idle (so that sys.health
 * is still read and the lane still bounds what waits, as before), and leaves the poll to
 * the workers as soon as one is idle again. One thread polls at a time (l->poller). */
enum { POLL_NONE, POLL_WORKER, POLL_CONSUMER };

/* Poll as who, without l->mu (held on entry and on return). A message or NULL. */
static rd_kafka_message_t *poll_consumer(bus_t *b, struct lane *l, int who)
{
    l->poller = who;
    pthread_mutex_unlock(&l->mu);
    rd_kafka_message_t *m = rd_kafka_consumer_poll(b->cons, b->idle_ms);
    if (m && m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warn("consume %s: %s", b->opts.topic, rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        m = NULL;
    }
    pthread_mutex_lock(&l->mu);
    l->poller = POLL_NONE;
    return m;
}

static struct lane *lane_for(bus_t *b, const rd_kafka_message_t *m);

/* A worker's next request: one queued in the work lane (a parked job's answer came, or
 * the consumer thread queued it), or one it polled itself when nobody polls. NULL once
 * the bus stops serving, the lane is empty and no job waits for an answer (bus_ask). */
static struct job *work_pop(bus_t *b, struct lane *l)
{
    struct job *j = NULL;
    pthread_mutex_lock(&l->mu);
    l->idle++;
    for (;;) {
        if (l->head) {
            j = lane_take(l);
            break;
        }
        if (!b->serving && !l->parked)
            break;
        if (b->serving && l->poller == POLL_NONE) {
            rd_kafka_message_t *m = poll_consumer(b, l, POLL_WORKER);
            if (m && lane_for(b, m) == &b->health) {
                pthread_mutex_unlock(&l->mu);
                if (lane_push(b, &b->health, m, 0) < 0)   /* full: the prober times out */
                    rd_kafka_message_destroy(m);
                pthread_mutex_lock(&l->mu);
            } else if (m) {
                j = job_new(b, l, m);
                j->queued_us = metrics_now_us();
                __atomic_add_fetch(&l->busy, 1, __ATOMIC_RELAXED);
                break;
            }
            continue;
        }
        pthread_cond_wait(&l->cv, &l->mu);
    }
    l->idle--;
    /* the poll is free: to another idle worker, else to the consumer thread */
    if (l->poller == POLL_NONE && b->serving)
        pthread_cond_signal(l->idle > 0 ? &l->cv : &l->consumer);
    pthread_mutex_unlock(&l->mu);
    return j;
}

/* On the reply reader's thread: the answer to a parked job's question. Keep it and queue
 * the job again, past the lane's bound (it was taken already) and even when serving has
 * stopped (the workers stay while jobs are parked). */
static void asked_answered(void *arg, json_t *reply, const verr_t *err)
{
    struct job *j = arg;
    answers_put(&j->asked, j->asking, reply, err);
    free(j->asking);
    j->asking = NULL;
    struct lane *l = j->lane;
    pthread_mutex_lock(&l->mu);
    l->parked--;
    lane_append(l, j);
    pthread_cond_broadcast(&l->cv);   /* a worker leaving at stop may be the one to wake */
    if (l->poller == POLL_WORKER)     /* it looks at the lane when its poll returns */
        rd_kafka_queue_yield(j->bus->cons_q);
    pthread_mutex_unlock(&l->mu);
}

/* The common start of bus_ask and bus_await: 1 when the answer to key is kept (0 or -1
 * in *rc, with *reply or e as the answer was), else 0 after parking the job with key as
 * its question (the caller then starts what answers it). key is freed unless parked. */
static int ask_begin(bus_ctx_t *ctx, char *key, json_t **reply, int *rc, verr_t *e)
{
    struct job *j = ctx->job;
    *reply = NULL;
    if (ctx->waiting || !j) {   /* asked already in this run, or not a served message */
        free(key);
        *rc = ctx->waiting ? verr_set(e, 503, "ServiceUnavailable", "waiting for an answer")
                           : verr_set(e, 500, "InternalError", "bus_ask outside a handler");
        return 1;
    }
    if (answers_get(j->asked, key, reply, rc, e)) {
        free(key);
        return 1;
    }
    j->asking = key;
    struct lane *l = j->lane;
    pthread_mutex_lock(&l->mu);
    l->parked++;
    pthread_mutex_unlock(&l->mu);
    ctx->waiting = 1;
    return 0;
}

int bus_ask_as(bus_ctx_t *ctx, const char *service, const char *type, json_t *body, const json_t *caller,
               int timeout_ms, json_t **reply, verr_t *e)
{
    char *key = answers_key(service, type, body);
    if (caller) {   /* another caller may get another answer */
        AUTOFREE char *who = json_dumps(caller, JSON_COMPACT | JSON_SORT_KEYS);
        char *both = xasprintf("%s\n%s", key, who);
        free(key);
        key = both;
    }
    int rc;
    if (ask_begin(ctx, key, reply, &rc, e)) {
        json_decref(body);
        return rc;
    }
    struct job *j = ctx->job;
    verr_t sent = {0};
    if (bus_call_async(ctx->bus, service, type, body, caller, timeout_ms, asked_answered, j, &sent) < 0)
        asked_answered(j, NULL, &sent);   /* not sent: the handler runs again and finds the error */
    return verr_set(e, 503, "ServiceUnavailable", "waiting for %s", type);
}

int bus_ask(bus_ctx_t *ctx, const char *service, const char *type, json_t *body, int timeout_ms,
            json_t **reply, verr_t *e)
{
    return bus_ask_as(ctx, service, type, body, NULL, timeout_ms, reply, e);
}

int bus_await(bus_ctx_t *ctx, const char *key, void (*start)(void *arg, bus_waiter_t *w), void *arg, json_t **reply,
              verr_t *e)
{
    int rc;
    if (ask_begin(ctx, xstrdup(key), reply, &rc, e))
        return rc;
    start(arg, (bus_waiter_t *)ctx->job);
    return verr_set(e, 503, "ServiceUnavailable", "waiting for %.100s", key);
}

void bus_answer(bus_waiter_t *w, json_t *reply, const verr_t *err) { asked_answered(w, reply, err); }

int bus_kept(bus_ctx_t *ctx, const char *key, json_t **reply, verr_t *e)
{
    int rc;
    *reply = NULL;
    return ctx->job && answers_get(ctx->job->asked, key, reply, &rc, e) ? 1 : 0;
}

static void lane_wake(struct lane *l)
{
    pthread_mutex_lock(&l->mu);
    pthread_cond_broadcast(&l->cv);
    pthread_cond_broadcast(&l->space);
    pthread_cond_broadcast(&l->consumer);
    pthread_mutex_unlock(&l->mu);
}

/* After its threads are joined: free what is left (nothing, they drain it) and the lane. */
static void lane_free(struct lane *l)
{
    for (struct job *j = l->head, *n; j; j = n) {
        n = j->next;
        job_free(j);
    }
    free(l->threads);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    pthread_cond_destroy(&l->space);
    pthread_cond_destroy(&l->consumer);
    memset(l, 0, sizeof *l);
}

/* sys.health has a lane of its own: a service whose workers are all busy (RSA key
 * generation under load) still says it is alive within a status probe's 2 s. The
 * sender names the type in a header, so this needs no parsing; a health probe sent
 * without it just waits in the work lane. */
static struct lane *lane_for(bus_t *b, const rd_kafka_message_t *m)
{
    char type[32];
    const char *t = bus_message_type(m, type, sizeof type);
    return t && !strcmp(t, "sys.health") ? &b->health : &b->work;
}

/* The consumer thread: polls while every worker is busy ("who polls" above). */
static void *consume_loop(void *arg)
{
    bus_t *b = arg;
    struct lane *w = &b->work;
    pthread_setname_np(pthread_self(), "bus-consume");   /* for top -H and perf */
    pthread_mutex_lock(&w->mu);
    while (b->serving) {
        if (w->idle > 0 || w->poller != POLL_NONE) {   /* a worker polls, or is about to */
            pthread_cond_wait(&w->consumer, &w->mu);
            continue;
        }
        /* bus_stop_serving wakes it: the timeout is only a bound */
        rd_kafka_message_t *m = poll_consumer(b, w, POLL_CONSUMER);
        if (w->idle > 0)
            pthread_cond_signal(&w->cv);   /* a worker idle meanwhile takes the poll */
        if (!m)
            continue;
        pthread_mutex_unlock(&w->mu);
        struct lane *l = lane_for(b, m);
        /* past BUS_QUEUE_MAX queued requests the consumer waits (the service is
         * overloaded); a full health lane drops the probe (the prober times out) */
        if (lane_push(b, l, m, l == &b->work) < 0)
            rd_kafka_message_destroy(m);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
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
    int sent = bus_produce(b, msg->reply_to, 0, env, NULL, &pe);
    json_decref(env);
    if (sent < 0 && rc == 0) {
        /* the answer could not go (over bus.max_message_bytes): the caller hears why now,
         * in a small error reply, instead of timing out */
        log_warn("the reply to %s could not be sent: %s", msg->type, pe.message);
        send_reply(b, msg, -1, NULL, &pe);
    } else if (sent < 0) {
        log_warn("reply to %s lost: %s", msg->reply_to, pe.message);
    }
}

void bus_reply_text_start(strbuf_t *b)
{
    b->len = 0;
    strbuf_reserve(b, BUS_REPLY_ROOM);
    memset(b->s, ' ', BUS_REPLY_ROOM);   /* JSON whitespace where the head does not fill it */
    b->len = BUS_REPLY_ROOM;
    b->s[b->len] = 0;
}

void bus_reply_text(bus_ctx_t *ctx, strbuf_t *b)
{
    strbuf_putc(b, '}');   /* the envelope's, after the body */
    if (ctx->reply_free)
        ctx->reply_free(ctx->reply_text);
    ctx->reply_text = b->s;
    ctx->reply_len = b->len;
    ctx->reply_free = bigbuf_free_of(b);
    *b = (strbuf_t){0};
}

/* send_reply's envelope, member for member (the body last, which the reader relies on:
 * bus_rpc.c), written around a body that is already text (bus_reply_text): the head goes
 * into the room before the body, right-aligned after the opening brace, the spaces
 * between are JSON whitespace. A head longer than the room (a request id of over a
 * hundred bytes, which Virga's senders never make) gets a buffer of its own. */
static void send_text_reply(bus_t *b, const bus_msg_t *msg, char *buf, size_t len, void (*buf_free)(void *))
{
    char id[33];
    ids_hex(id, 32);
    strbuf_t head = {0};
    strbuf_printf(&head, "\"v\":1,\"id\":\"%s\",\"type\":\"reply\",\"corr\":", id);
    json_put_string(&head, msg->id, strlen(msg->id));
    strbuf_puts(&head, ",\"ok\":true,\"body\":");
    if (head.len < BUS_REPLY_ROOM) {
        buf[0] = '{';
        memcpy(buf + BUS_REPLY_ROOM - head.len, head.s, head.len);
    } else {
        strbuf_t env = {0};
        size_t body = len - BUS_REPLY_ROOM - 1;   /* and the closing brace */
        strbuf_reserve(&env, head.len + body + 2);
        strbuf_putc(&env, '{');
        strbuf_put(&env, head.s, head.len);
        strbuf_put(&env, buf + BUS_REPLY_ROOM, body);
        strbuf_putc(&env, '}');
        buf_free(buf);
        buf = env.s;
        len = env.len;
        buf_free = free;
    }
    free(head.s);
    verr_t pe;
    /* malloc's buffer as ever (librdkafka frees it); a bigbuf is freed in its delivery report */
    if (bus_produce_text(b, msg->reply_to, 0, buf, len, "reply", buf_free == free ? NULL : buf_free, &pe) < 0) {
        log_warn("the reply to %s could not be sent: %s", msg->type, pe.message);
        send_reply(b, msg, -1, NULL, &pe);   /* over bus.max_message_bytes: say why now */
    }
}

static const bus_route_t *find_route(const bus_t *b, const char *type)
{
    const bus_route_t *r = b->opts.routes;
    while (r && r->type && strcmp(r->type, type))
        r++;
    return r && r->type ? r : NULL;
}

/* May this sender have this message handled? 0, or -1 with the error to answer. */
static int allowed(const bus_route_t *r, const bus_msg_t *msg, const char *service, verr_t *e)
{
    if (!r)
        return verr_set(e, 400, "InvalidAction", "%s does not handle '%s'", service, msg->type);
    if (!(r->from & msg->from->kind))
        return verr_set(e, 403, "AccessDenied", "principal %s may not send %s", msg->from->name, msg->type);
    if (msg->caller && !json_is_null(msg->caller) && !msg->from->asserts_callers)
        return verr_set(e, 403, "AccessDenied", "principal %s may not act for a tenant (%s names a caller)",
                        msg->from->name, msg->type);
    return 0;
}

/* Only a message whose signature verifies gets this far; an unsigned or forged one is
 * dropped unanswered (who would the answer go to?). 1 when the handler waits for an
 * answer (bus_ask): the job is queued again by the answer's callback, not freed. */
static int dispatch(bus_t *b, void *worker, struct job *j)
{
    rd_kafka_message_t *m = j->m;
    uint64_t queued_us = j->queued_us;
    int parked = 0;
    bus_principal_t from;
    if (bus_message_sender(b, m, &from) < 0)
        return 0;
    /* read up to the largest any process may be set to send, so that a request over this
     * one's bound is answered with why rather than dropped (its caller would time out) */
    json_t *env = json_parse_bounded(m->payload, m->len, BUS_MAX_MSG_LIMIT);
    if (!env || !json_is_object(env)) {
        log_warn("dropping malformed message on %s (%zu bytes)", b->opts.topic, m->len);
        json_decref(env);
        return 0;
    }
    bus_msg_t msg = {
        .id = json_str(env, "id", ""),
        .type = json_str(env, "type", ""),
        .reply_to = json_str(env, "reply_to", NULL),
        .deadline_ms = json_int(env, "deadline", 0),
        .caller = json_object_get(env, "caller"),
        .body = json_object_get(env, "body"),
        .from = &from,
    };
    const char *rid = json_str(msg.caller, "request_id", msg.id);
    log_set_request_id(rid);
    if (msg.deadline_ms && bus_now_ms() > msg.deadline_ms) {
        bus_stat_inc(&b->stats.expired);
        log_debug("dropping %s: deadline passed", msg.type);
        goto out;
    }
    const bus_route_t *r = find_route(b, msg.type);
    json_t *reply = NULL;
    char *text = NULL;   /* bus_reply_text's: room, body, '}' */
    size_t text_len = 0;
    void (*text_free)(void *) = free;
    verr_t err = {0};
    uint64_t t0 = metrics_now_us();
    int rc = allowed(r, &msg, b->name, &err);
    if (rc == 0 && m->len > b->max_msg)
        rc = verr_set(&err, 500, BUS_TOO_LARGE, "%s to %s is %zu bytes, over its bound of %zu (bus.max_message_bytes)",
                      msg.type, b->name, m->len, b->max_msg);
    if (rc == 0) {
        bus_ctx_t ctx = {.bus = b, .msg = &msg, .worker = worker, .app = b->opts.app, .job = j};
        json_t *body = msg.body ? (json_t *)msg.body : json_object();
        rc = r->fn(&ctx, body, &reply, &err);
        if (!msg.body)
            json_decref(body);
        text = ctx.reply_text;
        text_len = ctx.reply_len;
        if (ctx.reply_free)
            text_free = ctx.reply_free;
        if (rc < 0 || ctx.waiting) {
            text_free(text);
            text = NULL;
        }
        if (ctx.waiting) {   /* it runs again when the answer comes: nothing to say yet */
            json_decref(reply);
            parked = 1;
            goto out;
        }
        if (rc < 0 && !err.code[0]) {
            /* every failure must say why where it is detected: this one is a bug */
            log_error("BUG: the handler for %s failed without setting an error", msg.type);
            verr_set(&err, 500, "InternalError", "We encountered an internal error (%s). Please try again.", msg.type);
        }
    }
    bus_stat_inc(&b->stats.served);
    bus_metrics_observe(b, r ? (size_t)(r - b->opts.routes) : b->ntypes - 1, t0 - queued_us,
                        metrics_now_us() - t0, rc < 0);
    if (rc < 0) {
        bus_stat_inc(&b->stats.handler_errors);
        log_info("%s -> %s: %s", msg.type, err.code, err.message);
    }
    if (msg.reply_to && *msg.reply_to && text) {
        json_decref(reply);
        send_text_reply(b, &msg, text, text_len, text_free);   /* takes text */
    } else if (msg.reply_to && *msg.reply_to) {
        send_reply(b, &msg, rc, reply, &err);   /* takes reply */
    } else {
        json_decref(reply);
        text_free(text);
    }
out:
    log_set_request_id(NULL);
    json_decref(env);
    return parked;
}

struct lane_thread {
    bus_t *b;
    struct lane *l;
};

static void *lane_loop(void *arg)
{
    struct lane_thread lt = *(struct lane_thread *)arg;
    free(arg);
    pthread_setname_np(pthread_self(), "bus-work");
    bus_t *b = lt.b;
    void *w = b->opts.worker_init ? b->opts.worker_init(b->opts.app) : NULL;
    struct job *j;
    while ((j = lt.l == &b->work ? work_pop(b, lt.l) : lane_pop(b, lt.l))) {
        if (!dispatch(b, w, j))
            job_free(j);
        __atomic_sub_fetch(&lt.l->busy, 1, __ATOMIC_RELAXED);
    }
    if (b->opts.worker_fini)
        b->opts.worker_fini(w);
    return NULL;
}

/* Start n threads on lane l: all of them (0) or none (the error code; those that did
 * start are left running, for stop_lanes to join). */
static int lane_start(bus_t *b, struct lane *l, int n)
{
    l->threads = xcalloc((size_t)n, sizeof *l->threads);
    for (int i = 0; i < n; i++) {
        struct lane_thread *lt = xmalloc(sizeof *lt);
        *lt = (struct lane_thread){b, l};
        int rc = pthread_create(&l->threads[i], NULL, lane_loop, lt);
        if (rc) {
            free(lt);
            return rc;
        }
        l->nthreads++;
    }
    return 0;
}

/* Clear `serving`, wake every waiter, and join the lanes' threads, which first answer
 * what is already queued. The consumer thread, when started, is joined by the caller. */
static void stop_lanes(bus_t *b)
{
    b->serving = 0;
    if (b->cons_q)
        rd_kafka_queue_yield(b->cons_q);   /* a worker polling the consumer looks again */
    lane_wake(&b->work);
    lane_wake(&b->health);
    for (int i = 0; i < b->work.nthreads; i++)
        pthread_join(b->work.threads[i], NULL);
    for (int i = 0; i < b->health.nthreads; i++)
        pthread_join(b->health.threads[i], NULL);
    lane_free(&b->work);
    lane_free(&b->health);
}

int bus_serve(bus_t *b, const bus_serve_opts_t *opts, verr_t *e)
{
    if (b->serving_started)
        return verr_set(e, 500, "InternalError", "bus_serve called twice");
    if (opts->workers < 0 || opts->workers > BUS_MAX_WORKERS)
        return verr_set(e, 400, "InvalidParameterValue", "bus.workers must be 1..%d (0: the default, 4), not %d",
                        BUS_MAX_WORKERS, opts->workers);
    for (const bus_route_t *r = opts->routes; r && r->type; r++)
        if (!r->from)
            return verr_set(e, 500, "InternalError", "the handler row for %s does not say who may send it", r->type);
    b->opts = *opts;
    size_t nroutes = 0;
    while (opts->routes && opts->routes[nroutes].type)
        nroutes++;
    if (!b->types) {
        b->ntypes = nroutes + 1;
        b->types = xcalloc(b->ntypes, sizeof *b->types);
    }
    int nworkers = opts->workers > 0 ? opts->workers : 4;

    rd_kafka_conf_t *c = bus_base_conf(b, 1, e);
    char st[16];
    snprintf(st, sizeof st, "%d", b->session_timeout_ms);
    if (!c || bus_conf_set(c, "group.id", opts->group, e) < 0 ||
        bus_conf_set(c, "session.timeout.ms", st, e) < 0 ||
        bus_conf_set(c, "heartbeat.interval.ms", b->heartbeat, e) < 0 ||
        bus_conf_set(c, "auto.offset.reset", "earliest", e) < 0 ||
        bus_conf_set(c, "enable.auto.commit", "true", e) < 0 ||
        bus_conf_set(c, "auto.commit.interval.ms", "1000", e) < 0 ||
        bus_conf_set(c, "allow.auto.create.topics", "false", e) < 0) {
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
    b->cons_q = rd_kafka_queue_get_consumer(b->cons);
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, opts->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t r = rd_kafka_subscribe(b->cons, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    if (r) {
        rd_kafka_queue_destroy(b->cons_q);
        b->cons_q = NULL;
        rd_kafka_destroy(b->cons);
        b->cons = NULL;
        free(b->group);
        b->group = NULL;
        return verr_set(e, 503, "ServiceUnavailable", "subscribe %s: %s", opts->topic, rd_kafka_err2str(r));
    }
    lane_init(&b->work, BUS_QUEUE_MAX);
    lane_init(&b->health, 64);
    b->serving = 1;
    int trc = lane_start(b, &b->work, nworkers);
    if (!trc)
        trc = lane_start(b, &b->health, 1);
    if (!trc)
        trc = pthread_create(&b->cons_thr, NULL, consume_loop, b);
    if (trc) {
        /* take back what did start, so the bus is as before the call */
        stop_lanes(b);
        rd_kafka_queue_destroy(b->cons_q);
        b->cons_q = NULL;
        if (bus_consumer_destroy(b, b->cons, CLOSE_LIMIT(b)))
            free(b->group);
        b->cons = NULL;
        b->group = NULL;
        return verr_set(e, 503, "ServiceUnavailable", "bus handler threads: %s", strerror(trc));
    }
    b->serving_started = 1;
    return 0;
}

int bus_serving(bus_t *b) { return b && b->group && b->cons && b->group->assigned; }

void bus_stop_serving(bus_t *b)
{
    if (!b)
        return;
    if (b->cons) {
        b->serving = 0;   /* the consumer may wait for a message or for queue space: wake it */
        rd_kafka_queue_yield(b->cons_q);
        lane_wake(&b->work);
        pthread_join(b->cons_thr, NULL);
        /* the lanes drain their queues: messages already taken are answered */
        stop_lanes(b);
        rd_kafka_queue_destroy(b->cons_q);
        b->cons_q = NULL;
        if (bus_consumer_destroy(b, b->cons, CLOSE_LIMIT(b)))
            free(b->group);
        b->cons = NULL;
        b->group = NULL;
    }
    bus_read_stop_listening(b);
}
