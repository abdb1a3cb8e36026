/* bus.c - the bus itself: librdkafka producer, publishing signed messages, checking who
 * sent one, the envelope, and closing. Calls and their replies are in bus_rpc.c, the
 * reader of replies and broadcasts in bus_read.c, serving a topic in bus_serve.c. See
 * bus.h for the envelope and the guarantees, bus_auth.h for principals. */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus_internal.h"
#include "deadline.h"
#include "ids.h"
#include "jsonutil.h"
#include "log.h"
#include "service_memory.h"

int64_t bus_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int bus_conf_set(rd_kafka_conf_t *c, const char *k, const char *v, verr_t *e)
{
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof err) != RD_KAFKA_CONF_OK)
        return verr_set(e, 500, "InternalError", "bus config %s=%s: %s", k, v, err);
    return 0;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    /* A producer asking for its idempotence id on the bootstrap connection just as
     * librdkafka retires that connection for the broker's own (2.10 and later) is told
     * "Broker handle destroyed without termination: retrying", and gets its id on the
     * next try: routine, not a warning (a short virgadm run printed it on stderr). */
    if (level == 4 && !strcmp(fac, "GETPID") && strstr(buf, "retrying"))
        level = 7;
    /* A connection closed while it logs in (the handle destroyed at a short run's end,
     * or a bootstrap connection retired for the broker's own) fails its SASL exchange
     * with a transport failure, not a refusal: routine too (a CLI's stderr, which
     * scripts read, printed it). Wrong credentials say otherwise and stay errors. */
    if (level <= 4 && strstr(buf, "SASL authentication error") && strstr(buf, "Broker transport failure"))
        level = 7;
    if (level <= 3)
        log_error("kafka %s: %s", fac, buf);
    else if (level <= 4)
        log_warn("kafka %s: %s", fac, buf);
    else
        log_debug("kafka %s: %s", fac, buf);
}

/* Settings shared by every client: loopback brokers answer in microseconds, so what
 * dominates latency is batching and fetch waits. A producer batches for bus.linger_ms
 * (1 ms: each produce request to the broker carries what came in that time, which under
 * load halves the CPU of a call, docs/performance.md); a fetch
 * returns as soon as one byte is there (fetch.min.bytes 1), so on a real broker a long
 * fetch wait costs no latency, only idle polling (docs/bus.md). Every client logs in
 * as this process's principal. */
rd_kafka_conf_t *bus_base_conf(bus_t *b, int consumer, verr_t *e)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char fw[16], maxb[24];
    snprintf(fw, sizeof fw, "%d", b->fetch_wait_ms);
    /* a message of bus.max_message_bytes with its headers and framing: sent whole by a
     * producer, fetched in one go by a consumer (without it librdkafka grows its fetch
     * size step by step, a round trip each, when a large reply comes) */
    snprintf(maxb, sizeof maxb, "%zu", b->max_msg + BUS_MSG_SLACK);
    int sasl = !strncmp(b->security, "sasl", 4);
    if (bus_conf_set(c, "bootstrap.servers", b->brokers, e) < 0 ||
        bus_conf_set(c, "client.id", b->name, e) < 0 ||
        bus_conf_set(c, "security.protocol", b->security, e) < 0 ||
        (sasl && bus_conf_set(c, "sasl.mechanisms", b->mechanism, e) < 0) ||
        (sasl && bus_conf_set(c, "sasl.username", b->cred.principal, e) < 0) ||
        (sasl && bus_conf_set(c, "sasl.password", b->cred.password, e) < 0) ||
        (b->ca_file[0] && bus_conf_set(c, "ssl.ca.location", b->ca_file, e) < 0) ||
        bus_conf_set(c, "socket.nagle.disable", "true", e) < 0 ||
        (consumer && bus_conf_set(c, "fetch.wait.max.ms", fw, e) < 0) ||
        (consumer && bus_conf_set(c, "fetch.min.bytes", "1", e) < 0) ||
        (consumer && bus_conf_set(c, "fetch.error.backoff.ms", "50", e) < 0) ||
        /* no producer here is transactional, so read_committed (librdkafka's default)
         * returns the same messages, and costs the broker a look at the aborted
         * transactions' index on every fetch: 3 % of its CPU a message (docs/bus.md) */
        (consumer && bus_conf_set(c, "isolation.level", "read_uncommitted", e) < 0) ||
        (consumer && bus_conf_set(c, "max.partition.fetch.bytes", maxb, e) < 0) ||
        (consumer && b->max_msg + BUS_MSG_SLACK > 52428800 && bus_conf_set(c, "fetch.max.bytes", maxb, e) < 0) ||
        (!consumer && bus_conf_set(c, "message.max.bytes", maxb, e) < 0) ||
        bus_conf_set(c, "reconnect.backoff.ms", "50", e) < 0 ||
        bus_conf_set(c, "reconnect.backoff.max.ms", "1000", e) < 0 ||
        bus_conf_set(c, "topic.metadata.refresh.interval.ms", b->metadata_refresh, e) < 0 ||
        /* KIP-714 client metrics: nothing here collects them, and asking the broker for a
         * subscription is idle work for every client */
        bus_conf_set(c, "enable.metrics.push", "false", e) < 0 ||
        bus_client_stats(c, b->client_stats_ms, e) < 0) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(c, log_cb);
    return c;
}

/* What a produced message carries to its delivery report: the correlation id of a
 * request, or the waiter of bus_publish_acked. */
struct sent {
    bus_ack_t *ack;
    void (*payload_free)(void *);   /* a payload librdkafka does not free (not malloc's) */
    char corr[];
};

/* A message left the producer for good: delivered, or not (refused by the broker's
 * ACLs, or undeliverable within message.timeout.ms). A request that failed fails its
 * call now rather than at its deadline. */
static void delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct bus_producer *p = opaque;
    bus_t *b = p->b;
    struct sent *sent = m->_private;
    if (sent && sent->ack) {   /* bus_publish_acked waits for this one */
        bus_ack_t *a = sent->ack;
        pthread_mutex_lock(&a->mu);
        a->pending--;
        if (m->err && !a->failed++)
            a->first_err = m->err;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
    } else if (m->err && sent && sent->corr[0]) {   /* the caller hears of it */
        log_debug("bus: request to %s not delivered: %s", rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        bus_rpc_undeliverable(b, sent->corr, m->err);
    } else if (m->err) {
        log_warn("bus: message to %s not delivered: %s", rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
    }
    if (sent && sent->payload_free)
        sent->payload_free(m->payload);
    free(sent);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    struct bus_producer *p = opaque;
    /* the broker going away and coming back is routine: librdkafka reconnects */
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
        (err == RD_KAFKA_RESP_ERR__AUTHENTICATION && strstr(reason, "Broker transport failure")))   /* see log_cb */
        log_debug("bus: %s", reason);
    else
        log_warn("bus: %s: %s", rd_kafka_err2name(err), reason);
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        p->fatal = 1;
}

static rd_kafka_t *new_producer(struct bus_producer *p, verr_t *e)
{
    /* Idempotent: a request or reply the producer retries across a broker restart is
     * written once, in order (acks=all is what idempotence needs). */
    bus_t *b = p->b;
    rd_kafka_conf_t *c = bus_base_conf(b, 0, e);
    if (!c || bus_conf_set(c, "linger.ms", p->at_once ? "0" : b->linger, e) < 0 ||
        bus_conf_set(c, "enable.idempotence", b->idempotence ? "true" : "false", e) < 0 ||
        bus_conf_set(c, "acks", "all", e) < 0 ||
        bus_conf_set(c, "message.timeout.ms", b->message_timeout, e) < 0) {
        if (c)
            rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(c, delivered);
    rd_kafka_conf_set_error_cb(c, error_cb);
    rd_kafka_conf_set_opaque(c, p);
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!rk)
        verr_set(e, 503, "ServiceUnavailable", "bus producer: %s", err);
    return rk;
}

/* An idempotent producer that hit a fatal error (the broker refused it a producer id,
 * or lost messages it had acknowledged) never sends again: make a new one, so that the
 * process recovers by itself. What the old one still held fails its calls now. */
static void replace_producer(struct bus_producer *p)
{
    bus_t *b = p->b;
    char why[256] = "";
    rd_kafka_fatal_error(p->rk, why, sizeof why);
    verr_t e;
    rd_kafka_t *fresh = new_producer(p, &e);
    if (!fresh) {
        log_error("bus: the producer failed (%s) and a new one cannot be made: %s", why, e.message);
        return;
    }
    pthread_rwlock_wrlock(&b->prod_lock);
    rd_kafka_t *old = p->rk;
    p->rk = fresh;
    p->fatal = 0;
    pthread_rwlock_unlock(&b->prod_lock);
    log_warn("bus: the producer failed (%s): replaced by a new one", why);
    rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(old, 0);   /* their delivery reports fail their calls */
    rd_kafka_destroy(old);
}

/* Serves one producer's delivery reports and errors as they come; bus_close wakes it. */
static void *prod_loop(void *arg)
{
    struct bus_producer *p = arg;
    /* for top -H and perf */
    pthread_setname_np(pthread_self(), p->at_once ? "bus-produce-now" : "bus-produce");
    while (p->b->running) {
        rd_kafka_poll(p->rk, p->b->idle_ms);
        if (p->fatal) {
            replace_producer(p);
            if (p->fatal)
                sleep(1);
        }
    }
    return NULL;
}

/* Wake the first n producers' threads (b->running is 0), join them, and send what the
 * producers still hold (up to 2 s) before freeing them. */
static void close_producers(bus_t *b, int n)
{
    pthread_rwlock_rdlock(&b->prod_lock);   /* a producer thread may be replacing its producer */
    for (int i = 0; i < n; i++) {
        rd_kafka_queue_t *q = rd_kafka_queue_get_main(b->prods[i].rk);
        rd_kafka_queue_yield(q);
        rd_kafka_queue_destroy(q);
    }
    pthread_rwlock_unlock(&b->prod_lock);
    for (int i = 0; i < n; i++) {
        pthread_join(b->prods[i].thr, NULL);
        rd_kafka_flush(b->prods[i].rk, 2000);
        rd_kafka_destroy(b->prods[i].rk);
    }
}

/* Which producer sends this message. A request or a reply goes on the linger-0 producer
 * when it is alone: the request of the only call this process has in flight, or the reply
 * of the only request its workers are on with none queued, and neither producer has
 * anything in flight. On an idle cloud that is every message of a call, which then leaves
 * at once instead of waiting bus.linger_ms for company that will not come, which was most
 * of a lone call's time (docs/bus.md). With other calls or requests going, company is
 * likely and the message waits for its batch, as all did before: under load nearly
 * everything is batched, so the CPU per call stays that of batching. (Nothing in flight
 * alone was not enough: a compute at 700 calls/s often has an idle producer for a
 * moment, and up to a quarter of its replies went alone.) Broadcasts, host
 * documents and acknowledged publishes always go on the batching producer, whose one
 * queue per partition keeps them in order; calls and replies need no order between
 * them (each is matched by its id, and a service's workers take them in any order). */
static struct bus_producer *producer_for(bus_t *b, const char *topic, const char *corr, const bus_ack_t *ack)
{
    struct bus_producer *now = &b->prods[1];
    if (b->nprods < 2 || ack)
        return &b->prods[0];
    int alone = corr ? __atomic_load_n(&b->calls_in_flight, __ATOMIC_RELAXED) <= 1
                     : !strncmp(topic, "virga.reply.", 12) && __atomic_load_n(&b->work.busy, __ATOMIC_RELAXED) <= 1 &&
                           __atomic_load_n(&b->work.len, __ATOMIC_RELAXED) == 0;
    if (alone && rd_kafka_outq_len(now->rk) == 0 && rd_kafka_outq_len(b->prods[0].rk) == 0)
        return now;
    return &b->prods[0];
}

/* This process's credential and everyone's public keys, from the config. */
static int load_identity(bus_t *b, const config_t *cfg, const char *name, verr_t *e)
{
    const char *dir = config_str(cfg, "bus.credentials_dir", "/etc/virga/bus");
    const char *who = config_str(cfg, "bus.principal", name);
    AUTOFREE char *cred = xasprintf("%s/%s.cred", dir, who);
    AUTOFREE char *pubs = xasprintf("%s/principals.json", dir);
    const char *cpath = config_str(cfg, "bus.credential_file", cred);
    if (bus_credential_load(cpath, &b->cred, e) < 0)
        return -1;
    if (!(b->keys = bus_keys_open(config_str(cfg, "bus.principals_file", pubs), e)))
        return -1;
    b->macs = bus_macs_new(&b->cred, b->keys);
    return 0;
}

static void free_bus(bus_t *b)
{
    bus_credential_wipe(&b->cred);
    bus_macs_free(b->macs);
    bus_keys_free(b->keys);
    pthread_mutex_destroy(&b->mu);
    pthread_mutex_destroy(&b->reader_mu);
    pthread_mutex_destroy(&b->listen_mu);
    pthread_rwlock_destroy(&b->prod_lock);
    free(b->types);
    free(b);
}

static bus_t *open_bus(const config_t *cfg, const char *name, int publisher, verr_t *e)
{
    bus_t *b = xcalloc(1, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    snprintf(b->brokers, sizeof b->brokers, "%s", config_str(cfg, "bus.brokers", "127.0.0.1:9092"));
    snprintf(b->security, sizeof b->security, "%s", config_str(cfg, "bus.security_protocol", "sasl_plaintext"));
    snprintf(b->mechanism, sizeof b->mechanism, "%s", config_str(cfg, "bus.sasl_mechanism", "SCRAM-SHA-512"));
    snprintf(b->ca_file, sizeof b->ca_file, "%s", config_str(cfg, "bus.ssl_ca_file", ""));
    b->fetch_wait_ms = (int)config_int(cfg, "bus.fetch_wait_ms", 5000);
    b->session_timeout_ms = (int)config_int(cfg, "bus.session_timeout_ms", 6000);
    b->client_stats_ms = (int)config_int(cfg, "bus.client_stats_ms", 0);
    b->max_msg = bus_max_message_config(cfg);
    /* the producer's, consumer's and reader's threads wait for work with this timeout
     * and are woken when they must act (a deadline, bus_close): it only bounds a lost
     * wake-up, and each expiry costs an idle process a few wake-ups */
    long idle = config_int(cfg, "bus.idle_poll_ms", 2000);
    b->idle_ms = idle < 10 ? 10 : idle > 600000 ? 600000 : (int)idle;
    b->idempotence = config_bool(cfg, "bus.idempotence", 1);
    /* MACs for messages with one reader (bus_mac.h); off: sign everything, for a rolling
     * upgrade from a version that only checks signatures */
    b->use_mac = config_bool(cfg, "bus.mac", 1);
    /* how long a message waits for a broker that is away (a restart) before it is given up */
    snprintf(b->message_timeout, sizeof b->message_timeout, "%lld",
             (long long)config_int(cfg, "bus.message_timeout_ms", 60000));
    /* what an idle process costs the broker: heartbeats and metadata refreshes (a leader
     * change or an error refreshes metadata at once anyway) */
    /* how long the producer waits to batch messages to one partition, in ms: 0 sends
     * each at once, lowest latency on an idle cloud, highest CPU per call under load */
    snprintf(b->linger, sizeof b->linger, "%s", config_str(cfg, "bus.linger_ms", "1"));
    snprintf(b->heartbeat, sizeof b->heartbeat, "%lld", (long long)config_int(cfg, "bus.heartbeat_ms", 1000));
    snprintf(b->metadata_refresh, sizeof b->metadata_refresh, "%lld",
             (long long)config_int(cfg, "bus.metadata_refresh_ms", 30000));
    b->running = 1;
    b->sweep_at = b->reader_wake = INT64_MAX;
    pthread_mutex_init(&b->mu, NULL);
    pthread_mutex_init(&b->reader_mu, NULL);
    pthread_mutex_init(&b->listen_mu, NULL);
    pthread_rwlock_init(&b->prod_lock, NULL);
    /* a second producer only when the first one lingers (bus.linger_ms above 0) */
    b->nprods = !publisher && config_bool(cfg, "bus.send_alone_at_once", 1) && strtod(b->linger, NULL) > 0 ? 2 : 1;
    if (load_identity(b, cfg, name, e) < 0) {
        free_bus(b);
        return NULL;
    }
    snprintf(b->reply_topic, sizeof b->reply_topic, "virga.reply.%s", b->cred.principal);
    for (int i = 0; i < b->nprods; i++) {
        struct bus_producer *p = &b->prods[i];
        p->b = b;
        p->at_once = i == 1;
        int rc = 0;
        if ((p->rk = new_producer(p, e)) && (rc = pthread_create(&p->thr, NULL, prod_loop, p)) != 0) {
            verr_set(e, 503, "ServiceUnavailable", "bus producer thread: %s", strerror(rc));
            rd_kafka_destroy(p->rk);
            p->rk = NULL;
        }
        if (!p->rk) {
            b->running = 0;
            close_producers(b, i);
            free_bus(b);
            return NULL;
        }
    }
    return b;
}

bus_t *bus_open(const config_t *cfg, const char *name, verr_t *e) { return open_bus(cfg, name, 0, e); }

bus_t *bus_open_publisher(const config_t *cfg, const char *name, verr_t *e) { return open_bus(cfg, name, 1, e); }

const char *bus_principal(const bus_t *b) { return b->cred.principal; }

size_t bus_max_message_bytes(const bus_t *b) { return b->max_msg; }

/* The largest message (a page of a thousand instances is about 1.3 MB of JSON), within
 * 64 KiB .. BUS_MAX_MSG_LIMIT. */
size_t bus_max_message_config(const config_t *cfg)
{
    long v = config_int(cfg, "bus.max_message_bytes", BUS_MAX_MSG_DEFAULT);
    return v < 65536 ? 65536 : v > BUS_MAX_MSG_LIMIT ? BUS_MAX_MSG_LIMIT : (size_t)v;
}

/* Headers of every message: "vp" the sender; "vm" its MAC of topic and payload for the
 * one principal that reads the topic (bus_mac.h), or, on a topic several principals read
 * or when that reader has no key, "vs" its Ed25519 signature of them; "vt" the message
 * type (so a consumer can pick a lane without parsing). */
static int produce_text(bus_t *b, const char *topic, int32_t partition, char *s, size_t len, const char *type,
                        const char *corr, const char *key, bus_ack_t *ack, void (*s_free)(void *), verr_t *e)
{
    if (len > b->max_msg) {   /* refused here, with the sizes, not by librdkafka or the broker */
        s_free ? s_free(s) : free(s);
        return verr_set(e, 500, BUS_TOO_LARGE, "%s to %s is %zu bytes, over the bus's bound of %zu "
                        "(bus.max_message_bytes)", *type ? type : "a message", topic, len, b->max_msg);
    }
    service_memory_note_message(len);   /* its buffers, once freed: trimmed soon after */
    _Static_assert(BUS_MAC_BYTES <= BUS_SIG_BYTES, "a MAC fits where a signature does");
    unsigned char sig[BUS_SIG_BYTES];   /* a MAC or a signature */
    char reader[BUS_PRINCIPAL_MAX];
    bus_topic_reader(topic, reader);
    int mac = b->use_mac && reader[0] && bus_mac(b->macs, reader, topic, s, len, sig) == 0;
    if (!mac)
        bus_sign(&b->cred, topic, s, len, sig);
    const char *hname = mac ? "vm" : "vs";   /* not inside the macro: it casts its argument */
    ssize_t hlen = mac ? BUS_MAC_BYTES : BUS_SIG_BYTES;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    pthread_rwlock_rdlock(&b->prod_lock);
    struct bus_producer *p = producer_for(b, topic, corr, ack);
    bus_stat_inc(p->at_once ? &b->sent_at_once : &b->sent_batched);
    /* every producer reports successes too: a bigbuf reply is freed in its report
     * (tail12's failures-only linger-0 producer was undone at the merge with page12) */
    struct sent *opaque = NULL;
    if (corr || ack || s_free) {
        size_t n = corr ? strlen(corr) : 0;
        opaque = xmalloc(sizeof *opaque + n + 1);
        opaque->ack = ack;
        opaque->payload_free = s_free;   /* freed in its delivery report: librdkafka only free()s */
        memcpy(opaque->corr, corr ? corr : "", n + 1);
    }
    int flags = s_free ? 0 : RD_KAFKA_MSG_F_FREE;   /* not inside the macro: it casts its argument */
    for (int tries = 0; tries < 50; tries++) {
        err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
                                RD_KAFKA_V_MSGFLAGS(flags),
                                RD_KAFKA_V_VALUE(s, len),
                                RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                                RD_KAFKA_V_HEADER("vp", b->cred.principal, -1),
                                RD_KAFKA_V_HEADER(hname, sig, hlen),
                                RD_KAFKA_V_HEADER("vt", type, -1),
                                RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(p->rk, 10);
    }
    pthread_rwlock_unlock(&b->prod_lock);
    if (err) {
        s_free ? s_free(s) : free(s);
        free(opaque);
        return verr_set(e, 503, "ServiceUnavailable", "bus publish to %s: %s", topic, rd_kafka_err2str(err));
    }
    return 0;
}

static int produce(bus_t *b, const char *topic, int32_t partition, json_t *env, const char *corr,
                   const char *key, bus_ack_t *ack, verr_t *e)
{
    size_t len;
    char *s = json_compact_len(env, &len);   /* a large reply: jansson's own dump cost a third of its CPU */
    if (!s)
        return verr_set(e, 500, "InternalError", "cannot encode bus message");
    return produce_text(b, topic, partition, s, len, json_str(env, "type", ""), corr, key, ack, NULL, e);
}

int bus_produce(bus_t *b, const char *topic, int32_t partition, json_t *env, const char *corr, verr_t *e)
{
    return produce(b, topic, partition, env, corr, NULL, NULL, e);
}

int bus_produce_text(bus_t *b, const char *topic, int32_t partition, char *env, size_t len, const char *type,
                     void (*env_free)(void *), verr_t *e)
{
    return produce_text(b, topic, partition, env, len, type, NULL, NULL, NULL, env_free, e);
}

int bus_publish_acked(bus_t *b, const char *topic, const char *type, size_t n, const char *const *keys,
                      json_t *const *bodies, size_t *acked, verr_t *e)
{
    bus_ack_t a = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    size_t sent = 0;
    int rc = 0;
    for (; sent < n; sent++) {
        json_t *env = bus_envelope(type, json_incref(bodies[sent]), NULL);
        pthread_mutex_lock(&a.mu);
        a.pending++;
        pthread_mutex_unlock(&a.mu);
        rc = produce(b, topic, -1, env, NULL, keys[sent], &a, e);
        json_decref(env);
        if (rc < 0) {
            pthread_mutex_lock(&a.mu);
            a.pending--;
            pthread_mutex_unlock(&a.mu);
            break;
        }
    }
    /* every message produced has a delivery report coming (delivered, failed, or given
     * up at bus.message_timeout_ms), and they point at `a`: wait for all of them */
    pthread_mutex_lock(&a.mu);
    while (a.pending > 0)
        pthread_cond_wait(&a.cv, &a.mu);
    int failed = a.failed, why = a.first_err;
    pthread_mutex_unlock(&a.mu);
    pthread_mutex_destroy(&a.mu);
    pthread_cond_destroy(&a.cv);
    *acked = failed ? 0 : sent;
    if (rc == 0 && failed)
        rc = verr_set(e, 503, "ServiceUnavailable", "bus publish to %s: %d of %zu not acknowledged (%s)", topic,
                      failed, sent, rd_kafka_err2str((rd_kafka_resp_err_t)why));
    return rc;
}

static const char *header(const rd_kafka_message_t *m, const char *name, size_t *len)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, len))
        return NULL;
    return v;
}

const char *bus_message_type(const rd_kafka_message_t *m, char *buf, size_t size)
{
    size_t len = 0;
    const char *v = header(m, "vt", &len);
    if (!v || len >= size)
        return NULL;
    memcpy(buf, v, len);
    buf[len] = 0;
    return buf;
}

int bus_message_sender(bus_t *b, const rd_kafka_message_t *m, bus_principal_t *p)
{
    size_t nlen = 0, slen = 0, mlen = 0;
    const char *name = header(m, "vp", &nlen);
    const unsigned char *mac = (const unsigned char *)header(m, "vm", &mlen);
    const unsigned char *sig = mac ? NULL : (const unsigned char *)header(m, "vs", &slen);
    char who[BUS_PRINCIPAL_MAX] = "";
    if (name && nlen < sizeof who) {
        memcpy(who, name, nlen);
        who[nlen] = 0;
    }
    verr_t e;
    const char *topic = rd_kafka_topic_name(m->rkt);
    if (!who[0] || bus_principal_parse(who, p, &e) < 0 ||
        (mac ? bus_mac_verify(b->macs, who, topic, m->payload, m->len, mac, mlen)
             : bus_verify(b->keys, who, topic, m->payload, m->len, sig, slen)) < 0) {
        bus_stat_inc(&b->stats.rejected);
        log_warn("bus: dropping a message on %s: %s", topic,
                 !name ? "it is not signed" : !who[0] ? "bad sender name" : "its signature does not verify");
        return -1;
    }
    return 0;
}

json_t *bus_envelope(const char *type, json_t *body, const json_t *caller)
{
    char id[33];
    ids_hex(id, 32);
    json_t *env = json_pack("{s:i, s:s, s:s, s:I}", "v", 1, "id", id, "type", type, "ts", (json_int_t)bus_now_ms());
    json_object_set_new(env, "body", body ? body : json_object());
    if (caller)
        json_object_set(env, "caller", (json_t *)caller);
    return env;
}

int bus_publish(bus_t *b, const char *topic, const char *type, json_t *body, verr_t *e)
{
    json_t *env = bus_envelope(type, body, NULL);
    int rc = bus_produce(b, topic, -1, env, NULL, e);
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
int bus_consumer_destroy(bus_t *b, rd_kafka_t *rk, int limit_ms)
{
    /* Asked through the producer: the broker answers a connection's requests in order,
     * and the consumer's connection may hold a fetch waiting up to bus.fetch_wait_ms,
     * so a question behind it would look like a broker that does not answer. */
    const struct rd_kafka_metadata *md = NULL;
    pthread_rwlock_rdlock(&b->prod_lock);
    rd_kafka_resp_err_t probe = rd_kafka_metadata(b->prods[0].rk ? b->prods[0].rk : rk, 0, NULL, &md, 1000);
    pthread_rwlock_unlock(&b->prod_lock);
    if (probe != RD_KAFKA_RESP_ERR_NO_ERROR) {
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

void bus_get_stats(bus_t *b, bus_stats_t *out)
{
    out->calls = __atomic_load_n(&b->stats.calls, __ATOMIC_RELAXED);
    out->call_timeouts = __atomic_load_n(&b->stats.call_timeouts, __ATOMIC_RELAXED);
    out->served = __atomic_load_n(&b->stats.served, __ATOMIC_RELAXED);
    out->expired = __atomic_load_n(&b->stats.expired, __ATOMIC_RELAXED);
    out->handler_errors = __atomic_load_n(&b->stats.handler_errors, __ATOMIC_RELAXED);
    out->rejected = __atomic_load_n(&b->stats.rejected, __ATOMIC_RELAXED);
}

void bus_close(bus_t *b)
{
    if (!b)
        return;
    bus_stop_serving(b);
    b->running = 0;
    bus_read_close(b);
    close_producers(b, b->nprods);
    free_bus(b);
}

