/* test_bus_reader.c - the process's reader (common/bus_read.c) and the bus's idle
 * behaviour, against librdkafka's mock cluster hosted in this process. Covered: a bus
 * that calls and listens has one librdkafka client for both (three in all with its two
 * producers, the batching one and the one for lone messages: counted by librdkafka's
 * "rdk:main" threads), and gets its replies and the
 * broadcasts whichever of the call and bus_listen comes first; after
 * bus_stop_serving the listener is never called again while calls still get their
 * replies on the same reader; with the bus threads' idle wait set to a minute
 * (bus.idle_poll_ms), a call's timeout still comes at its deadline and bus_close
 * still returns at once, so both wake the sleeping threads rather than wait for the
 * idle wait to end; and an idle serving, calling, listening bus's own threads sleep
 * instead of waking several times a second (counted from their context switches). */
#include <dirent.h>
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

#include "bus.h"
#include "bus_fixture.h"
#include "config.h"
#include "log.h"

static config_t *cfg_srv, *cfg_cli;
static bus_t *srv;
static int events;

static int on_event(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)ctx;
    (void)body;
    (void)reply;
    (void)e;
    __atomic_add_fetch(&events, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static const bus_route_t routes[] = {{"r.echo", fixture_echo, BUS_FROM_ANY}, {NULL, NULL, 0}};

/* Threads of this process whose name is comm (librdkafka names its own). */
static int threads_named(const char *comm)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char path[300], name[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
        FILE *f = fopen(path, "r");
        if (f && fgets(name, sizeof name, f)) {
            name[strcspn(name, "\n")] = 0;
            n += !strcmp(name, comm);
        }
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}

/* Context switches so far of this process's threads not named "rdk:..." (the bus's
 * own threads and the test's), which count their wake-ups. */
static long own_switches(void)
{
    DIR *d = opendir("/proc/self/task");
    long n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char path[300], name[64] = "", line[128];
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
        FILE *f = fopen(path, "r");
        if (f && fgets(name, sizeof name, f) && strncmp(name, "rdk:", 4)) {
            fclose(f);
            snprintf(path, sizeof path, "/proc/self/task/%s/status", de->d_name);
            f = fopen(path, "r");
            while (f && fgets(line, sizeof line, f))
                if (!strncmp(line, "voluntary_ctxt_switches:", 24) || !strncmp(line, "nonvoluntary_ctxt_switches:", 27))
                    n += atol(strchr(line, ':') + 1);
        }
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}

/* The first call to a new group's service waits for the mock's first join (~3 s). */
static int call_echo(bus_t *b, int n, int timeout_ms)
{
    json_t *r = NULL;
    verr_t e = {0};
    if (bus_call(b, "rsrv", "r.echo", json_pack("{s:i}", "n", n), NULL, timeout_ms, &r, &e) < 0)
        return -1;
    int ok = json_integer_value(json_object_get(r, "n")) == n;
    json_decref(r);
    return ok ? 0 : -1;
}

/* Publish until the listener has seen one more event (it starts at the end). */
static int event_arrives(bus_t *b)
{
    int before = __atomic_load_n(&events, __ATOMIC_SEQ_CST);
    verr_t e = {0};
    for (int i = 0; i < 100; i++) {
        bus_publish(b, "virga.events", "r.event", json_pack("{s:i}", "i", i), &e);
        for (int j = 0; j < 10; j++) {
            if (__atomic_load_n(&events, __ATOMIC_SEQ_CST) > before)
                return 1;
            fixture_sleep_ms(20);
        }
    }
    return 0;
}

/* A bus that serves (a topic nobody calls), listens and has made a call: every thread
 * it can have is running. */
static bus_t *busy_bus(const char *group)
{
    verr_t e = {0};
    bus_t *b = bus_open(cfg_cli, "rcli", &e);
    assert_non_null(b);
    bus_serve_opts_t o = {.topic = "virga.rpc.nobody", .group = group, .routes = routes, .workers = 1};
    assert_int_equal(bus_serve(b, &o, &e), 0);
    assert_int_equal(bus_listen(b, "virga.events", on_event, NULL, &e), 0);
    assert_int_equal(call_echo(b, 1, 10000), 0);
    return b;
}

static int setup(void **state)
{
    (void)state;
    log_init("test_bus_reader", "error", "text");
    static const struct fixture_topic topics[] = {
        {"virga.rpc.rsrv", 2}, {"virga.rpc.nobody", 2}, {"virga.rpc.silent", 2}, {"virga.events", 2},
        {"virga.reply.test-rsrv", 1}, {"virga.reply.test-rcli", 1}, {NULL, 0}};
    static const char *const names[] = {"test-rsrv", "test-rcli", NULL};
    const char *brokers = fixture_mock_start(topics);
    if (!brokers || fixture_credentials(names) < 0)
        return -1;
    cfg_srv = fixture_config(brokers, "test-rsrv");
    cfg_cli = fixture_config(brokers, "test-rcli");
    verr_t e = {0};
    if (!(srv = bus_open(cfg_srv, "rsrv", &e)))
        return -1;
    bus_serve_opts_t o = {.topic = "virga.rpc.rsrv", .group = "rsrv", .routes = routes, .workers = 2};
    if (bus_serve(srv, &o, &e) < 0)
        return -1;
    int64_t end = fixture_mono_ms() + 30000;
    while (!bus_serving(srv) && fixture_mono_ms() < end)
        fixture_sleep_ms(20);
    return bus_serving(srv) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    bus_close(srv);
    config_free(cfg_srv);
    config_free(cfg_cli);
    fixture_cleanup();
    fixture_mock_stop();
    return 0;
}

/* bus_listen first, then a call (a gateway's order), and the other way round: one
 * client beside the producer, replies and broadcasts both arrive. */
static void test_one_reader_either_order(void **state)
{
    (void)state;
    for (int order = 0; order < 2; order++) {
        int rdk0 = threads_named("rdk:main");
        verr_t e = {0};
        bus_t *b = bus_open(cfg_cli, "rcli", &e);
        assert_non_null(b);
        if (order == 0) {
            assert_int_equal(bus_listen(b, "virga.events", on_event, NULL, &e), 0);
            assert_int_equal(call_echo(b, 1, 10000), 0);
        } else {
            assert_int_equal(call_echo(b, 1, 10000), 0);
            assert_int_equal(bus_listen(b, "virga.events", on_event, NULL, &e), 0);
        }
        assert_true(event_arrives(b));
        assert_int_equal(call_echo(b, 2, 10000), 0);
        assert_int_equal(threads_named("rdk:main") - rdk0, 3);   /* the two producers and the reader */
        bus_close(b);
    }
}

/* bus_stop_serving ends the listener, not the replies that share its reader. */
static void test_stop_serving_keeps_replies(void **state)
{
    (void)state;
    verr_t e = {0};
    bus_t *b = bus_open(cfg_cli, "rcli", &e);
    assert_non_null(b);
    assert_int_equal(bus_listen(b, "virga.events", on_event, NULL, &e), 0);
    assert_int_equal(call_echo(b, 1, 10000), 0);
    assert_true(event_arrives(b));
    bus_stop_serving(b);
    int before = __atomic_load_n(&events, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 5; i++)
        assert_int_equal(bus_publish(b, "virga.events", "r.event", NULL, &e), 0);
    assert_int_equal(call_echo(b, 3, 10000), 0);   /* after the events on the same reader */
    fixture_sleep_ms(300);
    assert_int_equal(__atomic_load_n(&events, __ATOMIC_SEQ_CST), before);
    bus_close(b);
}

/* Idle threads wait a minute here: a deadline and bus_close must wake them. */
static void test_sleeping_threads_are_woken(void **state)
{
    (void)state;
    config_set(cfg_cli, "bus.idle_poll_ms", "60000");
    verr_t e = {0};
    bus_t *b = busy_bus("rnobody");
    fixture_sleep_ms(300);   /* the reader is asleep, with nothing in flight */

    /* to a topic nobody serves: RequestTimeout at 300 ms, not after the idle minute */
    json_t *r = NULL;
    int64_t t0 = fixture_mono_ms();
    assert_int_equal(bus_call(b, "silent", "r.echo", NULL, NULL, 300, &r, &e), -1);
    int64_t dt = fixture_mono_ms() - t0;
    assert_string_equal(e.code, "RequestTimeout");
    if (dt < 250 || dt > 30000)
        fail_msg("timed out after %lld ms, expected ~300", (long long)dt);

    t0 = fixture_mono_ms();
    bus_close(b);   /* producer, consumer and reader threads: each woken, none waits a minute */
    dt = fixture_mono_ms() - t0;
    config_set(cfg_cli, "bus.idle_poll_ms", "2000");
    if (dt > 30000)
        fail_msg("bus_close took %lld ms", (long long)dt);
}

/* An idle bus that serves, has called and listens: its threads sleep. Before, each of
 * them (producer, consumer, reply reader, listener) woke 10 to 20 times a second. */
static void test_idle_bus_sleeps(void **state)
{
    (void)state;
    bus_t *b = busy_bus("rnobody2");
    fixture_sleep_ms(500);
    long s0 = own_switches();
    fixture_sleep_ms(3000);
    long woke = own_switches() - s0;
    bus_close(b);
    /* the default idle wait is 2 s: a few wake-ups in 3 s (the old loops: over 100) */
    if (woke > 30)
        fail_msg("the bus's threads woke %ld times in 3 s of idleness", woke);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_reader_either_order),
        cmocka_unit_test(test_stop_serving_keeps_replies),
        cmocka_unit_test(test_sleeping_threads_are_woken),
        cmocka_unit_test(test_idle_bus_sleeps),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
