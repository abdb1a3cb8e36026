/* bus_read.c - the process's reader: one consumer outside any consumer group
 * (partitions assigned, never joined) and one thread for both the replies to this
 * principal (virga.reply.<principal>, handed to bus_rpc.c) and the broadcast topic
 * (bus_listen). Each librdkafka client has a main thread, a thread per broker
 * connection, fetches and timers of its own, and on an idle cloud those are most of
 * what a process spends: replies and broadcasts share one client instead of one each
 * (docs/bus.md, "Idle cost").
 *
 * The thread sleeps until a message arrives or the earliest deadline of the calls in
 * flight comes (bus_rpc_sweep), and no longer than bus.idle_poll_ms; a call with an
 * earlier deadline, and bus_close, wake it (rd_kafka_queue_yield). So a timeout is
 * delivered at its deadline and an idle process does not wake every few milliseconds. */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus_internal.h"
#include "ids.h"
#include "jsonutil.h"
#include "log.h"

/* The consumer, without its thread. */
static int reader_new(bus_t *b, verr_t *e)
{
    if (b->reader)
        return 0;
    rd_kafka_conf_t *c = bus_base_conf(b, 1, e);
    char rnd[9];
    ids_hex(rnd, 8);
    AUTOFREE char *gid = xasprintf("%s.read.%s", b->cred.principal, rnd);   /* never joined: assign only */
    if (!c || bus_conf_set(c, "group.id", gid, e) < 0 || bus_conf_set(c, "enable.auto.commit", "false", e) < 0 ||
        bus_conf_set(c, "allow.auto.create.topics", "false", e) < 0) {
        if (c)
            rd_kafka_conf_destroy(c);
        return -1;
    }
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!rk)
        return verr_set(e, 503, "ServiceUnavailable", "bus reader: %s", err);
    rd_kafka_poll_set_consumer(rk);
    b->reader = rk;
    b->reader_q = rd_kafka_queue_get_consumer(rk);
    return 0;
}

/* Free a reader whose thread never started (a start that failed part-way). */
static void reader_drop(bus_t *b)
{
    rd_kafka_queue_destroy(b->reader_q);
    bus_consumer_destroy(b, b->reader, CLOSE_LIMIT(b));
    b->reader = NULL;
    b->reader_q = NULL;
}

/* Add partitions [0, n) of topic to what the reader reads, each from its end as it is
 * now, asked before returning: a message produced after this returns is read however
 * late the first fetch (OFFSET_END would be resolved only then).
 *
 * The ends are asked through the producer, not the reader: the broker answers a
 * connection's requests one at a time, in order, and once the reader runs its
 * connection mostly holds a fetch the broker keeps until a message comes or
 * bus.fetch_wait_ms passes, so a question behind it would wait that long. A partition
 * added while a fetch is out is fetched from the next one on, so the reply topic is
 * assigned with the first of the reader's topics (start_listening). */
static rd_kafka_resp_err_t reader_assign(bus_t *b, const char *topic, int n)
{
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(n);
    rd_kafka_resp_err_t r = RD_KAFKA_RESP_ERR_NO_ERROR;
    pthread_rwlock_rdlock(&b->prod_lock);   /* a producer replaced meanwhile waits */
    for (int i = 0; i < n && !r; i++) {
        int64_t lo = 0, hi = 0;
        r = rd_kafka_query_watermark_offsets(b->prods[0].rk, topic, i, &lo, &hi, 10000);
        rd_kafka_topic_partition_list_add(tp, topic, i)->offset = hi;
    }
    pthread_rwlock_unlock(&b->prod_lock);
    if (!r) {
        rd_kafka_error_t *err = rd_kafka_incremental_assign(b->reader, tp);
        if (err) {
            r = rd_kafka_error_code(err);
            log_warn("bus reader: assigning %s: %s", topic, rd_kafka_error_string(err));
            rd_kafka_error_destroy(err);
        }
    }
    rd_kafka_topic_partition_list_destroy(tp);
    return r;
}

/* A broadcast: to the listener while it listens (bus_stop_serving ends that, waiting for
 * a callback in flight). Only what verifies gets this far. */
static void on_broadcast(bus_t *b, const rd_kafka_message_t *m)
{
    bus_principal_t from;
    if (bus_message_sender(b, m, &from) < 0)
        return;
    json_t *env = json_parse_bounded(m->payload, m->len, b->max_msg);
    if (env && json_is_object(env)) {
        bus_msg_t msg = {.id = json_str(env, "id", ""), .type = json_str(env, "type", ""),
                         .caller = from.asserts_callers ? json_object_get(env, "caller") : NULL,
                         .body = json_object_get(env, "body"), .from = &from};
        pthread_mutex_lock(&b->listen_mu);
        if (b->listening && msg.body) {
            bus_ctx_t ctx = {.bus = b, .msg = &msg, .app = b->listen_app};
            json_t *reply = NULL;
            verr_t err;
            b->listen_fn(&ctx, msg.body, &reply, &err);
            json_decref(reply);
        }
        pthread_mutex_unlock(&b->listen_mu);
    }
    json_decref(env);
}

static void *read_loop(void *arg)
{
    bus_t *b = arg;
    pthread_setname_np(pthread_self(), "bus-read");   /* for top -H and perf */
    while (b->reading) {
        int64_t now = bus_now_ms();
        pthread_mutex_lock(&b->mu);
        if (now >= b->sweep_at) {
            pthread_mutex_unlock(&b->mu);
            bus_rpc_sweep(b, 0);
            now = bus_now_ms();
            pthread_mutex_lock(&b->mu);
        }
        /* published under mu, so a call added meanwhile either is in sweep_at or sees
         * this and wakes the thread (bus_read_deadline) */
        int64_t wake = b->sweep_at < now + b->idle_ms ? b->sweep_at : now + b->idle_ms;
        b->reader_wake = wake;
        pthread_mutex_unlock(&b->mu);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(b->reader, wake > now ? (int)(wake - now) : 0);
        if (!m)
            continue;   /* the deadline came, or a wake-up */
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_debug("bus reader: %s", rd_kafka_message_errstr(m));
        } else if (!strcmp(rd_kafka_topic_name(m->rkt), b->reply_topic)) {
            bus_rpc_on_reply(b, m);
        } else {
            on_broadcast(b, m);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static int reader_run(bus_t *b, verr_t *e)
{
    if (b->reader_started)
        return 0;
    b->reading = 1;
    int rc = pthread_create(&b->reader_thr, NULL, read_loop, b);
    if (rc) {
        b->reading = 0;
        return verr_set(e, 503, "ServiceUnavailable", "bus reader thread: %s", strerror(rc));
    }
    b->reader_started = 1;
    return 0;
}

/* Replies to every process of a principal come on virga.reply.<principal> (made by the
 * deployment, with ACLs that let only that principal read it), partition 0, read from
 * the end found before the first request leaves; replies to the principal's other
 * processes are skipped by their correlation ids. Caller holds reader_mu. */
static int start_replies(bus_t *b, verr_t *e)
{
    if (reader_new(b, e) < 0)
        return -1;
    rd_kafka_resp_err_t r = reader_assign(b, b->reply_topic, 1);
    int rc = r ? -1 : reader_run(b, e);
    if (rc < 0) {
        /* the next call tries again from scratch */
        if (!b->reader_started)
            reader_drop(b);
        if (r == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED || r == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            return verr_set(e, 503, "ServiceUnavailable", "bus: cannot read the reply topic %s (%s): is principal %s "
                            "provisioned on the broker?", b->reply_topic, rd_kafka_err2str(r), b->cred.principal);
        if (r)
            return verr_set(e, 503, "ServiceUnavailable", "bus reply topic %s: %s", b->reply_topic, rd_kafka_err2str(r));
        return -1;
    }
    __atomic_store_n(&b->replies_on, 1, __ATOMIC_RELEASE);
    return 0;
}

int bus_read_replies(bus_t *b, verr_t *e)
{
    if (__atomic_load_n(&b->replies_on, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&b->reader_mu);
    int rc = b->replies_on ? 0 : start_replies(b, e);
    pthread_mutex_unlock(&b->reader_mu);
    return rc;
}

void bus_read_deadline(bus_t *b, int64_t deadline)
{
    pthread_mutex_lock(&b->mu);
    int wake = deadline < b->reader_wake;
    if (wake)
        b->reader_wake = deadline;   /* one wake-up is enough */
    pthread_mutex_unlock(&b->mu);
    if (wake && b->reader_q)
        rd_kafka_queue_yield(b->reader_q);
}

/* How long bus_listen keeps asking for the topic's partitions. */
#define LISTEN_METADATA_MS 30000

/* The number of partitions of topic, or 0. Asked through the producer, for the reason
 * reader_assign says. */
static int partitions(bus_t *b, const char *topic)
{
    const struct rd_kafka_metadata *md = NULL;
    pthread_rwlock_rdlock(&b->prod_lock);
    rd_kafka_t *rk = b->prods[0].rk;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t r = rd_kafka_metadata(rk, 0, t, &md, 5000);
    int n = (r == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && !md->topics[0].err)
                ? md->topics[0].partition_cnt : 0;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    pthread_rwlock_unlock(&b->prod_lock);
    return n;
}

/* Caller holds reader_mu. */
static int start_listening(bus_t *b, const char *topic, bus_handler_fn fn, void *app, verr_t *e)
{
    if (b->listen_fn)
        return verr_set(e, 500, "InternalError", "bus_listen called twice");
    if (reader_new(b, e) < 0)
        return -1;
    /* A broker that is up but slow (a loaded machine, a cluster still electing leaders)
     * may miss one 5 s metadata answer: ask again for a while before giving up, rather
     * than fail the service's start over one late reply. */
    int64_t until = bus_now_ms() + LISTEN_METADATA_MS;
    int n;
    while ((n = partitions(b, topic)) <= 0 && bus_now_ms() < until) {
        log_warn("bus listener: no partitions for %s yet; asking again", topic);
        usleep(250 * 1000);
    }
    if (n <= 0) {
        if (!b->reader_started)
            reader_drop(b);
        return verr_set(e, 503, "ServiceUnavailable", "bus listener: no partitions for %s", topic);
    }
    /* listening before the partitions are: the first broadcast already finds it */
    pthread_mutex_lock(&b->listen_mu);
    b->listen_fn = fn;
    b->listen_app = app;
    b->listening = 1;
    pthread_mutex_unlock(&b->listen_mu);
    /* The replies too, when the reader is new: a partition added once the reader runs
     * waits for the fetch out (up to bus.fetch_wait_ms), which the process's first call
     * would pay. Best effort: if it fails, the first call assigns it (start_replies). */
    int with_replies = !b->replies_on && !b->reader_started && !reader_assign(b, b->reply_topic, 1);
    rd_kafka_resp_err_t r = reader_assign(b, topic, n);
    if (r)
        verr_set(e, 503, "ServiceUnavailable", "bus listener assign: %s", rd_kafka_err2str(r));
    if (r || reader_run(b, e) < 0) {
        pthread_mutex_lock(&b->listen_mu);
        b->listen_fn = NULL;
        b->listening = 0;
        pthread_mutex_unlock(&b->listen_mu);
        if (!b->reader_started)
            reader_drop(b);
        return -1;
    }
    if (with_replies)
        __atomic_store_n(&b->replies_on, 1, __ATOMIC_RELEASE);
    return 0;
}

int bus_listen(bus_t *b, const char *topic, bus_handler_fn fn, void *app, verr_t *e)
{
    pthread_mutex_lock(&b->reader_mu);
    int rc = start_listening(b, topic, fn, app, e);
    pthread_mutex_unlock(&b->reader_mu);
    return rc;
}

void bus_read_stop_listening(bus_t *b)
{
    pthread_mutex_lock(&b->listen_mu);   /* a callback in flight finishes first */
    b->listening = 0;
    pthread_mutex_unlock(&b->listen_mu);
}

void bus_read_close(bus_t *b)
{
    if (b->reader_started) {
        b->reading = 0;
        rd_kafka_queue_yield(b->reader_q);
        pthread_join(b->reader_thr, NULL);
        b->reader_started = 0;
    }
    bus_rpc_sweep(b, 1);   /* calls still waiting will get no reply now */
    if (b->reader)
        reader_drop(b);
}
