/* bus_feed.h - read every message of a topic at least once, as a member of a consumer
 * group, committing only what the caller has handled (bus_feed.c). Used by readers of
 * virga.usage. One thread per feed. */
#ifndef VIRGA_BUS_FEED_H
#define VIRGA_BUS_FEED_H

#include <stdint.h>

#include "bus.h"
#include "bus_auth.h"

typedef struct bus_feed bus_feed_t;

typedef struct bus_feed_msg {
    json_t *envelope;                 /* owned: {v, id, type, ts, body} */
    char *key;                        /* owned: the Kafka key ("" when none) */
    char sender[BUS_PRINCIPAL_MAX];   /* the signing principal, checked */
    int32_t partition;
    int64_t offset;
} bus_feed_msg_t;

/* Join group (a name under the principal's prefix: "<principal>.<name>") on topic; a
 * new group starts at the earliest message kept. */
bus_feed_t *bus_feed_open(bus_t *b, const char *topic, const char *group, verr_t *e);
/* The next signed message within timeout_ms: 1 with *out filled (clear it with
 * bus_feed_msg_clear), 0 when none came, -1 with e set. */
int bus_feed_next(bus_feed_t *f, int timeout_ms, bus_feed_msg_t *out, verr_t *e);
void bus_feed_msg_clear(bus_feed_msg_t *m);
/* Commit, synchronously, the offsets after every message returned so far. */
int bus_feed_commit(bus_feed_t *f, verr_t *e);
void bus_feed_close(bus_feed_t *f);

#endif
