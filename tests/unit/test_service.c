/* test_service.c - the shutdown order of common/service.c, against librdkafka's mock
 * cluster hosted in this process. A service is run with service_main in a thread; a
 * bus handler and a broadcast-listener callback are both in the middle of their work
 * (each holding for a while) when SIGTERM arrives. The service's fini frees the state
 * they use, so it must run only after both have returned and after no new one can
 * start: fini records what it saw, and each callback checks that the state is still
 * alive while it runs. The stop hook runs before the handlers in flight are waited for,
 * and fini after. service_main can run once per process (its stop flag is static), so
 * this is one scenario. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "bus.h"
#include "bus_fixture.h"
#include "config.h"
#include "log.h"
#include "service.h"

/* service.c applies a service's migrations; this one has no schema. */
const db_migration_t virga_migrations[] = {{0, NULL, NULL}};
const unsigned long virga_migrations_count = 0;

#define STATE_MAGIC 0x53544154u
#define HOLD_MS 600

typedef struct state {
    unsigned magic;
} state_t;

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static char brokers[256];

static int in_handler, in_listener;       /* callbacks running now */
static int handler_entered, listener_entered;
static int used_after_free;               /* a callback saw the state freed */
static int fini_ran, fini_saw_running, stop_ran, stop_before_fini, stop_saw_running;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int load(int *v) { return __atomic_load_n(v, __ATOMIC_SEQ_CST); }
static void add(int *v, int n) { __atomic_add_fetch(v, n, __ATOMIC_SEQ_CST); }

/* Hold for HOLD_MS, checking all along that the state is still there. */
static void hold(service_t *svc, int *running, int *entered)
{
    add(running, 1);
    add(entered, 1);
    for (int i = 0; i < HOLD_MS / 20; i++) {
        state_t *st = __atomic_load_n((state_t **)&svc->state, __ATOMIC_SEQ_CST);
        if (!st || st->magic != STATE_MAGIC)
            add(&used_after_free, 1);
        sleep_ms(20);
    }
    add(running, -1);
}

static int h_slow(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)body;
    (void)e;
    hold(service_of(ctx), &in_handler, &handler_entered);
    *reply = json_object();
    return 0;
}

static int on_event(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)body;
    (void)reply;
    (void)e;
    if (!strcmp(ctx->msg->type, "t.slow_event"))
        hold(ctx->app, &in_listener, &listener_entered);
    return 0;
}

static int init(service_t *svc, verr_t *e)
{
    state_t *st = calloc(1, sizeof *st);
    st->magic = STATE_MAGIC;
    svc->state = st;
    return bus_listen(svc->bus, "virga.events", on_event, svc, e);
}

static void stop(service_t *svc)
{
    (void)svc;
    if (load(&in_handler) || load(&in_listener))
        add(&stop_saw_running, 1);
    if (!load(&fini_ran))
        add(&stop_before_fini, 1);
    add(&stop_ran, 1);
}

static void fini(service_t *svc)
{
    if (load(&in_handler) || load(&in_listener))
        add(&fini_saw_running, 1);
    add(&fini_ran, 1);
    state_t *st = svc->state;
    __atomic_store_n((state_t **)&svc->state, NULL, __ATOMIC_SEQ_CST);
    if (st)
        st->magic = 0;
    free(st);
}

static const bus_route_t routes[] = {
    {"tsvc.slow", h_slow, BUS_FROM_ANY},
    {NULL, NULL, 0},
};

static const service_def_t def = {
    .name = "tsvc",
    .routes = routes,
    .init = init,
    .stop = stop,
    .fini = fini,
};

static int service_rc = -1;

static void *run_service(void *arg)
{
    (void)arg;
    char set_brokers[300];
    snprintf(set_brokers, sizeof set_brokers, "bus.brokers=%s", brokers);
    char set_creds[160];
    snprintf(set_creds, sizeof set_creds, "bus.credentials_dir=%s", fixture_dir);
    char *argv[] = {"virga-tsvc", "--set", set_brokers, "--set", "bus.workers=2", "--set", "log.level=error",
                    "--set", set_creds, "--set", "bus.principal=test-svc", "--set", "bus.security_protocol=plaintext",
                    "--set", "bus.fetch_wait_ms=2", NULL};
    service_rc = service_main(15, argv, &def);
    return NULL;
}

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static void ignore_reply(void *arg, json_t *reply, const verr_t *err)
{
    (void)arg;
    (void)err;
    json_decref(reply);
}

static void test_fini_runs_after_handlers_and_listener(void **state)
{
    (void)state;
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(c, quiet_log);
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    assert_non_null(mock_rk);
    mock = rd_kafka_mock_cluster_new(mock_rk, 1);
    assert_non_null(mock);
    snprintf(brokers, sizeof brokers, "%s", rd_kafka_mock_cluster_bootstraps(mock));
    assert_int_equal(rd_kafka_mock_topic_create(mock, "virga.rpc.tsvc", 2, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(mock, "virga.events", 2, 1), 0);
    static const char *const names[] = {"test-svc", "test-cli", NULL};
    assert_int_equal(fixture_credentials(names), 0);
    assert_int_equal(rd_kafka_mock_topic_create(mock, "virga.reply.test-svc", 1, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(mock, "virga.reply.test-cli", 1, 1), 0);

    config_t *cfg = fixture_config(brokers, "test-cli");
    verr_t e = {0};
    bus_t *cli = bus_open(cfg, "tcli", &e);
    assert_non_null(cli);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_service, NULL), 0);

    /* served: the mock's first group join takes a few seconds */
    json_t *r = NULL;
    int64_t end = mono_ms() + 30000;
    int up = 0;
    while (!up && mono_ms() < end) {
        up = bus_call(cli, "tsvc", "sys.health", NULL, NULL, 1000, &r, &e) == 0;
        json_decref(r);
        r = NULL;
    }
    assert_true(up);

    /* a handler in flight ... */
    assert_int_equal(bus_call_async(cli, "tsvc", "tsvc.slow", NULL, NULL, 10000, ignore_reply, NULL, &e), 0);
    /* ... and a listener callback in flight (the listener starts at the end of the
     * topic, so publish until it has seen one) */
    end = mono_ms() + 20000;
    while ((!load(&handler_entered) || !load(&listener_entered)) && mono_ms() < end) {
        if (!load(&listener_entered))
            bus_publish(cli, "virga.events", "t.slow_event", NULL, &e);
        sleep_ms(50);
    }
    assert_true(load(&handler_entered) && load(&listener_entered));
    assert_true(load(&in_handler) || load(&in_listener));

    kill(getpid(), SIGTERM);
    pthread_join(th, NULL);
    assert_int_equal(service_rc, 0);

    assert_int_equal(load(&stop_ran), 1);
    assert_int_equal(load(&stop_before_fini), 1);
    assert_int_equal(load(&fini_ran), 1);
    assert_int_equal(load(&fini_saw_running), 0);    /* fini waited for both */
    assert_int_equal(load(&used_after_free), 0);
    assert_int_equal(load(&in_handler), 0);
    assert_int_equal(load(&in_listener), 0);

    bus_close(cli);
    config_free(cfg);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(mock_rk);
    fixture_cleanup();
}

int main(void)
{
    log_init("test_service", "error", "text");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fini_runs_after_handlers_and_listener),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
