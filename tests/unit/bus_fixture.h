/* bus_fixture.h - what the bus unit tests share: credentials for test principals in a
 * temporary directory, and a config that points a bus at librdkafka's mock cluster
 * (plaintext: the mock has no SASL; messages are signed all the same). */
#ifndef VIRGA_TEST_BUS_FIXTURE_H
#define VIRGA_TEST_BUS_FIXTURE_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.h"
#include "bus_auth.h"
#include "config.h"

static char fixture_dir[64];

/* Make a credential for each name (NULL-terminated) in a new temporary directory. */
static inline int fixture_credentials(const char *const *names)
{
    snprintf(fixture_dir, sizeof fixture_dir, "/tmp/virga-bus-test.XXXXXX");
    if (!mkdtemp(fixture_dir))
        return -1;
    char pubs[128];
    snprintf(pubs, sizeof pubs, "%s/principals.json", fixture_dir);
    for (int i = 0; names[i]; i++) {
        char path[160];
        verr_t e;
        snprintf(path, sizeof path, "%s/%s.cred", fixture_dir, names[i]);
        if (bus_credential_create(names[i], path, pubs, &e) < 0) {
            fprintf(stderr, "credential %s: %s\n", names[i], e.message);
            return -1;
        }
    }
    return 0;
}

/* A config for a bus on the mock cluster at brokers, as principal. */
static inline config_t *fixture_config(const char *brokers, const char *principal)
{
    config_t *c = config_new();
    config_set(c, "bus.brokers", brokers);
    config_set(c, "bus.security_protocol", "plaintext");
    config_set(c, "bus.credentials_dir", fixture_dir);
    config_set(c, "bus.principal", principal);
    config_set(c, "bus.fetch_wait_ms", "2");   /* the mock does not long-poll */
    config_set(c, "bus.session_timeout_ms", "6000");
    config_set(c, "bus.heartbeat_ms", "500");   /* the mock's groups want it short */
    return c;
}

static inline int64_t fixture_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void fixture_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* For the mock cluster's own client: its complaints while a test stops it are expected. */
static inline void fixture_quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static rd_kafka_t *fixture_mock_rk;
static rd_kafka_mock_cluster_t *fixture_mock;

/* librdkafka's mock cluster (one broker) in this process, with these topics
 * ({name, partitions}, ending with {NULL, 0}): its bootstrap servers, or NULL. */
struct fixture_topic {
    const char *name;
    int partitions;
};
static inline const char *fixture_mock_start(const struct fixture_topic *topics)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(c, fixture_quiet_log);
    fixture_mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!fixture_mock_rk || !(fixture_mock = rd_kafka_mock_cluster_new(fixture_mock_rk, 1)))
        return NULL;
    for (int i = 0; topics[i].name; i++)
        if (rd_kafka_mock_topic_create(fixture_mock, topics[i].name, topics[i].partitions, 1))
            return NULL;
    return rd_kafka_mock_cluster_bootstraps(fixture_mock);
}

static inline void fixture_mock_stop(void)
{
    if (fixture_mock)
        rd_kafka_mock_cluster_destroy(fixture_mock);
    if (fixture_mock_rk)
        rd_kafka_destroy(fixture_mock_rk);
    fixture_mock = NULL;
    fixture_mock_rk = NULL;
}

/* A handler that answers with its request's body. */
static inline int fixture_echo(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)ctx;
    (void)e;
    *reply = json_deep_copy(body);
    return 0;
}

static inline void fixture_cleanup(void)
{
    if (fixture_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", fixture_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", fixture_dir);
    }
}

#endif
