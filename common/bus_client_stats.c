/* bus_client_stats.c - what librdkafka itself measures of each client, in the log, to
 * tell where a message's time goes: in the client's own queue before it is sent
 * (int_latency, producer), waiting behind other requests to the broker (outbuf_latency),
 * or at the broker and on the wire (rtt, from the request sent to its answer). Off unless
 * bus.client_stats_ms is set (a figure's bench, or an operator chasing a slow bus): each
 * client then logs one line per interval and broker, at info level. */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>

#include "bus_internal.h"
#include "jsonutil.h"
#include "log.h"

/* "avg p50 p99 max" of one of librdkafka's windows (microseconds), in ms, into buf. */
static const char *window(const json_t *w, char *buf, size_t size)
{
    snprintf(buf, size, "avg %.2f p50 %.2f p99 %.2f max %.2f ms (%lld)", json_int(w, "avg", 0) / 1000.0,
             json_int(w, "p50", 0) / 1000.0, json_int(w, "p99", 0) / 1000.0, json_int(w, "max", 0) / 1000.0,
             (long long)json_int(w, "cnt", 0));
    return buf;
}

static int stats_cb(rd_kafka_t *rk, char *text, size_t len, void *opaque)
{
    (void)opaque;
    json_t *st = json_loadb(text, len, 0, NULL);
    const char *key;
    json_t *br;
    json_object_foreach(json_object_get(st, "brokers"), key, br) {
        if (json_int(br, "nodeid", -1) < 0 || !json_int(json_object_get(br, "rtt"), "cnt", 0))
            continue;   /* the bootstrap entry, or nothing sent in this interval */
        char rtt[96], outbuf[96], internal[96];
        log_info("bus stats %s %s: rtt %s; outbuf %s; int_latency %s; tx %lld reqs", rd_kafka_name(rk), key,
                 window(json_object_get(br, "rtt"), rtt, sizeof rtt),
                 window(json_object_get(br, "outbuf_latency"), outbuf, sizeof outbuf),
                 window(json_object_get(br, "int_latency"), internal, sizeof internal),
                 (long long)json_int(br, "tx", 0));
    }
    json_decref(st);
    return 0;   /* librdkafka frees the text */
}

int bus_client_stats(rd_kafka_conf_t *c, int interval_ms, verr_t *e)
{
    if (interval_ms <= 0)
        return 0;
    char v[16];
    snprintf(v, sizeof v, "%d", interval_ms);
    if (bus_conf_set(c, "statistics.interval.ms", v, e) < 0)
        return -1;
    rd_kafka_conf_set_stats_cb(c, stats_cb);
    return 0;
}
