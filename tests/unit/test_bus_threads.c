/* test_bus_threads.c - common/bus.c when a thread cannot be started, and the worker
 * count it accepts. This program defines pthread_create itself (calling the C
 * library's through dlsym) so that a test can make the Nth call of bus.c fail with
 * EAGAIN, as under a process or memory limit; librdkafka's own threads do not go
 * through it. Covered: bus_open fails cleanly when its producer thread cannot start;
 * bus_serve with a worker that cannot start fails with ServiceUnavailable, having
 * joined the workers that did start (each ran worker_fini), and the bus closes; a
 * reader thread (replies and broadcasts, bus_read.c) that cannot start fails the
 * bus_listen or the call that started it, and a later one works; worker
 * counts outside 1..BUS_MAX_WORKERS are refused with InvalidParameterValue (0 is the
 * default); a serving, listening bus closes when the broker is already gone. Sanitizer builds intercept pthread_create themselves, so there the
 * interposition is left out and only the worker-count test runs. */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
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

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static int fail_in = -1;   /* fail the call after this many more; -1 = never */

#if !SANITIZED
int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "pthread_create");
    int n = __atomic_load_n(&fail_in, __ATOMIC_SEQ_CST);
    if (n >= 0) {
        if (n == 0) {
            __atomic_store_n(&fail_in, -1, __ATOMIC_SEQ_CST);
            return EAGAIN;
        }
        __atomic_store_n(&fail_in, n - 1, __ATOMIC_SEQ_CST);
    }
    return real(t, a, fn, arg);
}
#endif

static config_t *cfg;
static int inits, finis;

static void *w_init(void *app)
{
    (void)app;
    __atomic_add_fetch(&inits, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void w_fini(void *w)
{
    (void)w;
    __atomic_add_fetch(&finis, 1, __ATOMIC_SEQ_CST);
}

static int on_event(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)ctx;
    (void)body;
    (void)reply;
    (void)e;
    return 0;
}

static const bus_route_t routes[] = {{"t.echo", fixture_echo, BUS_FROM_ANY}, {NULL, NULL, 0}};

static int setup(void **state)
{
    (void)state;
    log_init("test_bus_threads", "error", "text");
    static const struct fixture_topic topics[] = {
        {"virga.rpc.tt", 2}, {"virga.events", 2}, {"virga.reply.test-a", 1}, {NULL, 0}};
    static const char *const names[] = {"test-a", NULL};
    const char *brokers = fixture_mock_start(topics);
    if (!brokers || fixture_credentials(names) < 0)
        return -1;
    cfg = fixture_config(brokers, "test-a");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    config_free(cfg);
    fixture_cleanup();
    fixture_mock_stop();
    return 0;
}

static void test_worker_count_bounds(void **state)
{
    (void)state;
    verr_t e = {0};
    bus_t *b = bus_open(cfg, "tcount", &e);
    assert_non_null(b);
    int bad[] = {-1, BUS_MAX_WORKERS + 1, 1000000};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        verr_clear(&e);
        bus_serve_opts_t o = {.topic = "virga.rpc.tt", .group = "tcount", .routes = routes, .workers = bad[i]};
        assert_int_equal(bus_serve(b, &o, &e), -1);
        assert_string_equal(e.code, "InvalidParameterValue");
        assert_non_null(strstr(e.message, "bus.workers"));
    }
    /* the most that is allowed starts, and closes */
    bus_serve_opts_t o = {.topic = "virga.rpc.tt", .group = "tcount", .routes = routes, .workers = BUS_MAX_WORKERS};
    assert_int_equal(bus_serve(b, &o, &e), 0);
    bus_close(b);
}

static void test_producer_thread_fails(void **state)
{
    (void)state;
    if (SANITIZED)
        skip();
    verr_t e = {0};
    fail_in = 0;
    bus_t *b = bus_open(cfg, "tprod", &e);
    fail_in = -1;
    assert_null(b);
    assert_string_equal(e.code, "ServiceUnavailable");
    assert_non_null(strstr(e.message, "thread"));
}

static void test_worker_thread_fails(void **state)
{
    (void)state;
    if (SANITIZED)
        skip();
    verr_t e = {0};
    bus_t *b = bus_open(cfg, "tserve", &e);
    assert_non_null(b);
    inits = finis = 0;
    bus_serve_opts_t o = {.topic = "virga.rpc.tt", .group = "tserve", .routes = routes, .workers = 4,
                          .worker_init = w_init, .worker_fini = w_fini};
    fail_in = 2;   /* the third worker */
    assert_int_equal(bus_serve(b, &o, &e), -1);
    fail_in = -1;
    assert_string_equal(e.code, "ServiceUnavailable");
    assert_int_equal(bus_serving(b), 0);
    /* the two that started were joined, each after its worker_fini */
    assert_int_equal(__atomic_load_n(&finis, __ATOMIC_SEQ_CST), 2);
    assert_int_equal(__atomic_load_n(&inits, __ATOMIC_SEQ_CST), 2);

    fail_in = 5;   /* the consumer thread, after four workers and the health lane's thread */
    assert_int_equal(bus_serve(b, &o, &e), -1);
    fail_in = -1;
    assert_int_equal(__atomic_load_n(&finis, __ATOMIC_SEQ_CST), 7);
    bus_close(b);   /* nothing left running: no hang, no crash */
}

static void test_listener_thread_fails(void **state)
{
    (void)state;
    if (SANITIZED)
        skip();
    verr_t e = {0};
    bus_t *b = bus_open(cfg, "tlisten", &e);
    assert_non_null(b);
    fail_in = 0;
    assert_int_equal(bus_listen(b, "virga.events", on_event, NULL, &e), -1);
    fail_in = -1;
    assert_string_equal(e.code, "ServiceUnavailable");
    verr_clear(&e);
    assert_int_equal(bus_listen(b, "virga.events", on_event, NULL, &e), 0);
    bus_close(b);
}

static void test_reply_thread_fails(void **state)
{
    (void)state;
    if (SANITIZED)
        skip();
    verr_t e = {0};
    bus_t *srv = bus_open(cfg, "tsrv", &e), *cli = bus_open(cfg, "tcli", &e);
    assert_non_null(srv);
    assert_non_null(cli);
    bus_serve_opts_t o = {.topic = "virga.rpc.tt", .group = "treply", .routes = routes, .workers = 1};
    assert_int_equal(bus_serve(srv, &o, &e), 0);
    json_t *r = NULL;
    fail_in = 0;   /* the client's reader thread, started by its first call */
    assert_int_equal(bus_call(cli, "tt", "t.echo", json_pack("{s:i}", "n", 1), NULL, 2000, &r, &e), -1);
    fail_in = -1;
    assert_string_equal(e.code, "ServiceUnavailable");
    assert_null(r);
    /* the next call sets the reply topic up again and gets its answer (the mock's
     * first group join takes a few seconds: bounded retries) */
    int ok = 0;
    for (int i = 0; i < 20 && !ok; i++) {
        verr_clear(&e);
        ok = bus_call(cli, "tt", "t.echo", json_pack("{s:i}", "n", 2), NULL, 2000, &r, &e) == 0;
    }
    assert_true(ok);
    assert_int_equal(json_integer_value(json_object_get(r, "n")), 2);
    json_decref(r);
    bus_close(cli);
    bus_close(srv);
}

struct closer {
    bus_t *b;
    int done;
};

static void *close_it(void *arg)
{
    struct closer *c = arg;
    bus_close(c->b);
    __atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* The broker stops first (a Ctrl-C reaches every process of a devcloud at once): a bus
 * that serves a topic in a consumer group, listens on another and has made a call must
 * still close, and within a bound: bus.c gives a consumer's close about the session
 * timeout, then goes on without it. */
static void test_close_without_broker(void **state)
{
    (void)state;
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(c, fixture_quiet_log);
    rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    assert_non_null(host);
    rd_kafka_mock_cluster_t *gone = rd_kafka_mock_cluster_new(host, 1);
    assert_non_null(gone);
    assert_int_equal(rd_kafka_mock_topic_create(gone, "virga.rpc.tgone", 2, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(gone, "virga.events", 2, 1), 0);
    assert_int_equal(rd_kafka_mock_topic_create(gone, "virga.reply.test-a", 1, 1), 0);
    config_t *gcfg = fixture_config(rd_kafka_mock_cluster_bootstraps(gone), "test-a");
    verr_t e = {0};
    bus_t *b = bus_open(gcfg, "tgone", &e);
    assert_non_null(b);
    bus_serve_opts_t o = {.topic = "virga.rpc.tgone", .group = "tgone", .routes = routes, .workers = 2};
    assert_int_equal(bus_serve(b, &o, &e), 0);
    assert_int_equal(bus_listen(b, "virga.events", on_event, NULL, &e), 0);
    for (int i = 0; i < 300 && !bus_serving(b); i++)
        usleep(100 * 1000);
    assert_true(bus_serving(b));   /* in the group, with partitions */
    json_t *r = NULL;
    bus_call(b, "tgone", "t.echo", json_pack("{s:i}", "n", 1), NULL, 5000, &r, &e);   /* the reader too */
    json_decref(r);

    rd_kafka_mock_cluster_destroy(gone);
    struct closer cl = {.b = b};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, close_it, &cl), 0);
    for (int i = 0; i < 600 && !__atomic_load_n(&cl.done, __ATOMIC_SEQ_CST); i++)
        usleep(100 * 1000);
    int closed = __atomic_load_n(&cl.done, __ATOMIC_SEQ_CST);
    if (closed)
        pthread_join(th, NULL);
    else
        pthread_detach(th);
    rd_kafka_destroy(host);
    config_free(gcfg);
    assert_true(closed);   /* within a minute, not never */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_count_bounds),
        cmocka_unit_test(test_producer_thread_fails),
        cmocka_unit_test(test_worker_thread_fails),
        cmocka_unit_test(test_listener_thread_fails),
        cmocka_unit_test(test_reply_thread_fails),
        cmocka_unit_test(test_close_without_broker),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
