/* bus_feed.c - reading a whole topic as a member of a consumer group, with commits the
 * reader makes itself: for consumers that must see every message at least once, such as
 * a billing system reading virga.usage (virgadm usage-feed is one). Offsets are
 * committed only when the caller says it has handled what it read (bus_feed_commit),
 * so a reader that dies between the two reads those messages again after a restart:
 * at least once, and the message key is there to dedupe by. Messages whose signature
 * does not check are skipped (counted in the bus's rejected statistic). */
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

#include "bus_feed.h"
#include "bus_internal.h"
#include "log.h"

struct bus_feed {
    bus_t *bus;
    rd_kafka_t *rk;
};

bus_feed_t *bus_feed_open(bus_t *b, const char *topic, const char *group, verr_t *e)
{
    rd_kafka_conf_t *c = bus_base_conf(b, 1, e);
    if (!c || bus_conf_set(c, "group.id", group, e) < 0 || bus_conf_set(c, "enable.auto.commit", "false", e) < 0 ||
        bus_conf_set(c, "auto.offset.reset", "earliest", e) < 0 ||
        /* A feed's assignment starts at its committed offsets, and a partition with none
         * is looked up (ListOffsets) on the connection that fetches: the broker answers a
         * connection's requests in order, so the lookup waits for the fetch out, up to its
         * wait. At the services' bus.fetch_wait_ms (5 s) a feed restarted after a crash
         * read the partitions it had committed and not the others for 5 s, and one that
         * stops when idle (virgadm usage-feed --idle-ms) stopped before reading them. A
         * feed is one reader a billing system runs, so its idle fetches cost little. */
        bus_conf_set(c, "fetch.wait.max.ms", "500", e) < 0 ||
        bus_conf_set(c, "session.timeout.ms", "6000", e) < 0 ||
        bus_conf_set(c, "heartbeat.interval.ms", "500", e) < 0 ||
        bus_conf_set(c, "allow.auto.create.topics", "false", e) < 0) {
        if (c)
            rd_kafka_conf_destroy(c);
        return NULL;
    }
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!rk) {
        verr_set(e, 503, "ServiceUnavailable", "bus feed: %s", err);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t r = rd_kafka_subscribe(rk, tp);
    rd_kafka_topic_partition_list_destroy(tp);
    if (r) {
        rd_kafka_destroy(rk);
        verr_set(e, 503, "ServiceUnavailable", "bus feed: subscribe to %s: %s", topic, rd_kafka_err2str(r));
        return NULL;
    }
    bus_feed_t *f = xcalloc(1, sizeof *f);
    f->bus = b;
    f->rk = rk;
    return f;
}

int bus_feed_next(bus_feed_t *f, int timeout_ms, bus_feed_msg_t *out, verr_t *e)
{
    memset(out, 0, sizeof *out);
    int64_t until = bus_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = until - bus_now_ms();
        if (left <= 0)
            return 0;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(f->rk, (int)left);
        if (!m)
            return 0;
        if (m->err) {
            int soft = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || m->err == RD_KAFKA_RESP_ERR__TRANSPORT ||
                       m->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN;
            if (!soft)
                verr_set(e, 503, "ServiceUnavailable", "bus feed: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            if (!soft)
                return -1;
            continue;
        }
        bus_principal_t p;
        json_t *env = NULL;
        if (bus_message_sender(f->bus, m, &p) == 0)
            env = json_loadb(m->payload, m->len, 0, NULL);
        if (!env) {
            rd_kafka_message_destroy(m);
            continue;   /* unsigned, forged or not JSON: not from a principal of the cloud */
        }
        out->envelope = env;
        out->key = m->key ? strndup(m->key, m->key_len) : xstrdup("");
        if (!out->key)
            abort();
        snprintf(out->sender, sizeof out->sender, "%s", p.name);
        out->partition = m->partition;
        out->offset = m->offset;
        rd_kafka_message_destroy(m);
        return 1;
    }
}

void bus_feed_msg_clear(bus_feed_msg_t *m)
{
    json_decref(m->envelope);
    free(m->key);
    memset(m, 0, sizeof *m);
}

int bus_feed_commit(bus_feed_t *f, verr_t *e)
{
    rd_kafka_resp_err_t r = rd_kafka_commit(f->rk, NULL, 0);
    if (r && r != RD_KAFKA_RESP_ERR__NO_OFFSET)
        return verr_set(e, 503, "ServiceUnavailable", "bus feed: commit: %s", rd_kafka_err2str(r));
    return 0;
}

void bus_feed_close(bus_feed_t *f)
{
    if (!f)
        return;
    bus_consumer_destroy(f->bus, f->rk, 5000);
    free(f);
}
