/* test_bus.c - unit tests for common/bus.c against librdkafka's mock cluster hosted
 * inside this process (one broker, no sockets of ours, nothing left behind). One
 * serving bus and one client bus are shared by all tests because a new consumer
 * group's first join takes ~3 s on the mock. Covered: an RPC round trip returning
 * the handler's body, with the caller, deadline and request id carried to the
 * handler; handler errors reaching the caller with code, message and status
 * (InternalError when the handler set none, with an error line naming the message
 * type in the serving process' log, since that is a bug); InvalidAction for an unknown type; a
 * RequestTimeout after about timeout_ms when nobody serves the topic; 8 threads x 50
 * concurrent calls each getting its own reply; bus_publish arriving as an event
 * (no reply_to); the worker_init/worker_fini hooks and ctx->worker; a request whose
 * deadline has passed being dropped unexecuted while a live one runs; malformed
 * messages not disturbing the server; bus_serve twice; statistics; and bus_close
 * running worker_fini once per worker. Asynchronous calls: the reply reaches the
 * callback; a call nobody answers times out exactly once with RequestTimeout; 400
 * concurrent calls are each delivered exactly once with their own reply. Principals
 * (bus_auth.h): an unsigned message, one whose signature is another principal's, and one
 * from a principal not in the principals file never reach a handler (and are counted as
 * rejected); a message type whose row does not name the sender is AccessDenied; a caller
 * named by a principal that may not assert one is AccessDenied; sys.health is answered
 * while every worker is busy (its own lane). */
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
#include "bus_mac.h"
#include "jsonutil.h"
#include "bus_fixture.h"
#include "config.h"
#include "log.h"
#include "strbuf.h"

#define TOPIC "virga.rpc.t"
#define WORKERS 4
#define WORKER_MAGIC 0x57524b52u

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static char brokers[256];
static config_t *cfg, *cfg_cli, *cfg_plain;
static bus_t *srv, *cli, *plain;   /* cli may name callers; plain may not */
static bus_credential_t cred_cli, cred_plain, cred_stranger;
static int app_marker;   /* its address is the app pointer handlers must see */

/* ---- handlers and worker hooks ------------------------------------------------- */

typedef struct worker {
    unsigned magic;
    int id;
} worker_t;

static int inits, finis, init_bad_app;
static int events, expired_runs, live_runs, unsigned_runs, blocked, released;

static void *w_init(void *app)
{
    if (app != &app_marker)
        __atomic_add_fetch(&init_bad_app, 1, __ATOMIC_SEQ_CST);
    worker_t *w = calloc(1, sizeof *w);
    w->magic = WORKER_MAGIC;
    w->id = __atomic_fetch_add(&inits, 1, __ATOMIC_SEQ_CST);
    return w;
}

static void w_fini(void *p)
{
    worker_t *w = p;
    if (w && w->magic == WORKER_MAGIC)
        __atomic_add_fetch(&finis, 1, __ATOMIC_SEQ_CST);
    if (w)
        w->magic = 0;
    free(w);
}

/* Echo the body plus what the handler could see of its context. */
static int h_echo(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *err)
{
    (void)err;
    const worker_t *w = ctx->worker;
    json_t *r = json_deep_copy(body);
    json_object_set_new(r, "worker", json_integer(w && w->magic == WORKER_MAGIC ? w->id : -1));
    json_object_set_new(r, "app_ok", json_boolean(ctx->app == &app_marker));
    json_object_set_new(r, "bus_ok", json_boolean(ctx->bus == srv));
    json_object_set_new(r, "type", json_string(ctx->msg->type));
    json_object_set_new(r, "has_reply_to", json_boolean(ctx->msg->reply_to != NULL));
    json_object_set_new(r, "deadline", json_integer(ctx->msg->deadline_ms));
    json_object_set_new(r, "rid", json_string(log_request_id()));
    if (ctx->msg->caller)
        json_object_set(r, "caller", (json_t *)ctx->msg->caller);
    *reply = r;
    return 0;
}

static int h_fail(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *err)
{
    (void)ctx;
    (void)reply;
    return verr_set(err, 400, "InvalidParameterValue", "bad value '%s'",
                    json_string_value(json_object_get(body, "x")));
}

/* Fails without saying why: the bus must still answer with an error. */
static int h_fail_silent(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *err)
{
    (void)ctx;
    (void)body;
    (void)reply;
    (void)err;
    return -1;
}

/* Builds a reply, then fails: the caller must see the error, not the half reply. */
static int h_fail_after_reply(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *err)
{
    (void)ctx;
    (void)body;
    *reply = json_pack("{s:s}", "partial", "yes");
    return verr_set(err, 409, "IncorrectState", "changed my mind");
}

static int h_empty(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *err)
{
    (void)ctx;
    (void)body;
    (void)reply;   /* left NULL: the caller gets {} */
    (void)err;
    return 0;
}

static int h_event(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *err)
{
    (void)body;
    (void)reply;
    (void)err;
    /* count only well-formed events: no reply_to, no deadline */
    if (!ctx->msg->reply_to && ctx->msg->deadline_ms == 0)
        __atomic_add_fetch(&events, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static int h_deadline(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *err)
{
    (void)ctx;
    (void)reply;
    (void)err;
    if (json_is_true(json_object_get(body, "expired")))
        __atomic_add_fetch(&expired_runs, 1, __ATOMIC_SEQ_CST);
    else
        __atomic_add_fetch(&live_runs, 1, __ATOMIC_SEQ_CST);
    return 0;
}

/* Counts what reaches it: an unsigned or forged message must not. */
static int h_count(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *err)
{
    (void)ctx;
    (void)body;
    (void)reply;
    (void)err;
    __atomic_add_fetch(&unsigned_runs, 1, __ATOMIC_SEQ_CST);
    return 0;
}

/* Holds its worker until released (at most 10 s). */
static int h_block(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *err)
{
    (void)ctx;
    (void)body;
    (void)reply;
    (void)err;
    __atomic_add_fetch(&blocked, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 1000 && !__atomic_load_n(&released, __ATOMIC_SEQ_CST); i++)
        usleep(10 * 1000);
    return 0;
}

static int h_health(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *err)
{
    (void)ctx;
    (void)body;
    (void)err;
    *reply = json_pack("{s:s, s:s}", "status", "healthy", "from", ctx->msg->from->name);
    return 0;
}

/* Asks two questions of a service (t itself unless body.to says) without holding its
 * worker: it runs three times, and answers both replies. */
static int ask_runs;
static int h_ask(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *err)
{
    __atomic_add_fetch(&ask_runs, 1, __ATOMIC_SEQ_CST);
    const char *to = json_str(body, "to", "t");
    int timeout = (int)json_int(body, "timeout", 10000);
    json_t *a = NULL, *b = NULL;
    if (bus_ask(ctx, to, "t.echo", json_pack("{s:s, s:O?}", "q", "first", "i", json_object_get(body, "i")),
                timeout, &a, err) < 0)
        return -1;
    if (bus_ask(ctx, to, "t.echo", json_pack("{s:s}", "q", "second"), timeout, &b, err) < 0) {
        json_decref(a);
        return -1;
    }
    *reply = json_pack("{s:o, s:o, s:O?, s:b}", "a", a, "b", b, "i", json_object_get(body, "i"), "app_ok",
                       ctx->app == &app_marker);
    return 0;
}

/* Awaits a question this process answers itself (bus_await): another thread answers it
 * 20 ms later, or the start function at once when body.now; then asks t.echo as a caller
 * (bus_ask_as). It runs three times and answers what it was told by both. */
static int await_runs;

static void *answer_later(void *w)
{
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    bus_answer(w, json_pack("{s:s}", "local", "later"), NULL);
    return NULL;
}

static void await_start(void *arg, bus_waiter_t *w)
{
    if (*(const int *)arg) {
        bus_answer(w, json_pack("{s:s}", "local", "now"), NULL);
        return;
    }
    pthread_t t;
    pthread_create(&t, NULL, answer_later, w);
    pthread_detach(t);
}

static int h_await(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *err)
{
    __atomic_add_fetch(&await_runs, 1, __ATOMIC_SEQ_CST);
    int now = json_flag(body, "now");
    char key[64];
    snprintf(key, sizeof key, "local %d", (int)json_int(body, "i", 0));
    json_t *a = NULL, *b = NULL;
    if (bus_await(ctx, key, await_start, &now, &a, err) < 0)
        return -1;
    /* the caller goes with the question: this test's principal may not act for a tenant,
     * so the answer is t's refusal, kept like any answer */
    JSON_AUTO json_t *caller = json_pack("{s:s}", "account_id", "123456789012");
    verr_t as = {0};
    if (bus_ask_as(ctx, "t", "t.echo", json_pack("{s:s}", "q", "as"), caller, 10000, &b, &as) < 0 && ctx->waiting) {
        json_decref(a);
        *err = as;
        return -1;
    }
    *reply = json_pack("{s:O?, s:o, s:s, s:b}", "i", json_object_get(body, "i"), "local", a, "as", b ? "answered" : as.code,
                       "app_ok", ctx->app == &app_marker);
    json_decref(b);
    return 0;
}

/* A reply of {"blob": "xxx..."} with body.bytes characters: larger than the old 1 MB
 * bound, or than bus.max_message_bytes. */
static int h_big(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *err)
{
    (void)ctx;
    (void)err;
    size_t n = (size_t)json_int(body, "bytes", 0);
    char *blob = malloc(n + 1);
    memset(blob, 'x', n);
    blob[n] = 0;
    *reply = json_pack("{s:s}", "blob", blob);
    free(blob);
    return 0;
}

static const bus_route_t routes[] = {
    {"t.big", h_big, BUS_FROM_ANY},
    {"t.echo", h_echo, BUS_FROM_ANY},
    {"t.ask", h_ask, BUS_FROM_ANY},
    {"t.await", h_await, BUS_FROM_ANY},
    {"t.fail", h_fail, BUS_FROM_ANY},
    {"t.fail_silent", h_fail_silent, BUS_FROM_ANY},
    {"t.fail_after_reply", h_fail_after_reply, BUS_FROM_ANY},
    {"t.empty", h_empty, BUS_FROM_ANY},
    {"t.event", h_event, BUS_FROM_ANY},
    {"t.deadline", h_deadline, BUS_FROM_ANY},
    {"t.count", h_count, BUS_FROM_ANY},
    {"t.block", h_block, BUS_FROM_ANY},
    {"t.operator_only", h_empty, BUS_P_OPERATOR},
    {"sys.health", h_health, BUS_FROM_ANY},
    {NULL, NULL, 0},
};

/* ---- helpers ------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait (bounded) until *v reaches want. */
static int wait_count(int *v, int want, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    while (__atomic_load_n(v, __ATOMIC_SEQ_CST) < want && mono_ms() < end)
        sleep_ms(10);
    return __atomic_load_n(v, __ATOMIC_SEQ_CST) >= want;
}

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

/* Produce one raw message to TOPIC with a private producer, bypassing bus.c's
 * envelope so the test controls every field: claiming to come from claim (no headers
 * when NULL), with header hname = val (a signature or a MAC). */
static int produce_with(const char *payload, const char *claim, const char *hname, const void *val, size_t vlen)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(c, "linger.ms", "0", err, sizeof err) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(c);
        return -1;
    }
    rd_kafka_conf_set_log_cb(c, quiet_log);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!p)
        return -1;
    rd_kafka_resp_err_t e;
    if (claim) {
        e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_VALUE((void *)payload, strlen(payload)), RD_KAFKA_V_HEADER("vp", claim, -1),
                              RD_KAFKA_V_HEADER(hname, val, vlen), RD_KAFKA_V_END);
    } else {
        e = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_VALUE((void *)payload, strlen(payload)), RD_KAFKA_V_END);
    }
    int left = rd_kafka_flush(p, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : 1;
    rd_kafka_destroy(p);
    return e || left ? -1 : 0;
}

/* unsigned when signer is NULL, else signed by signer's key and claiming to come from claim */
static int produce_as(const char *payload, const char *claim, const bus_credential_t *signer)
{
    unsigned char sig[BUS_SIG_BYTES];
    if (!signer)
        return produce_with(payload, NULL, NULL, NULL, 0);
    bus_sign(signer, TOPIC, payload, strlen(payload), sig);
    return produce_with(payload, claim, "vs", sig, sizeof sig);
}

/* with a MAC that maker made for reader, claiming to come from claim */
static int produce_mac(const char *payload, const char *claim, const bus_credential_t *maker, const char *reader)
{
    char pubs[160];
    verr_t e;
    snprintf(pubs, sizeof pubs, "%s/principals.json", fixture_dir);
    bus_keys_t *k = bus_keys_open(pubs, &e);
    if (!k)
        return -1;
    bus_macs_t *m = bus_macs_new(maker, k);
    unsigned char mac[BUS_MAC_BYTES];
    int rc = bus_mac(m, reader, TOPIC, payload, strlen(payload), mac);
    bus_macs_free(m);
    bus_keys_free(k);
    return rc < 0 ? -1 : produce_with(payload, claim, "vm", mac, sizeof mac);
}

static int produce_raw(const char *payload) { return produce_as(payload, "test-asserts-cli", &cred_cli); }

/* ---- setup --------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    log_init("test_bus", "error", "text");
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(c, quiet_log);
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!mock_rk) {
        fprintf(stderr, "mock host: %s\n", err);
        return -1;
    }
    mock = rd_kafka_mock_cluster_new(mock_rk, 1);
    if (!mock)
        return -1;
    snprintf(brokers, sizeof brokers, "%s", rd_kafka_mock_cluster_bootstraps(mock));
    if (rd_kafka_mock_topic_create(mock, TOPIC, 4, 1) || rd_kafka_mock_topic_create(mock, "virga.rpc.nobody", 4, 1) ||
        rd_kafka_mock_topic_create(mock, "virga.rpc.refused", 1, 1) ||
        rd_kafka_mock_topic_create(mock, "virga.rpc.solo", 1, 1))
        return -1;
    static const char *const names[] = {"test-srv", "test-asserts-cli", "test-plain", NULL};
    if (fixture_credentials(names) < 0)
        return -1;
    for (int i = 0; names[i]; i++) {
        char t[96];
        snprintf(t, sizeof t, "virga.reply.%s", names[i]);
        if (rd_kafka_mock_topic_create(mock, t, 1, 1))
            return -1;
    }
    verr_t e = {0};
    char path[160];
    snprintf(path, sizeof path, "%s/test-asserts-cli.cred", fixture_dir);
    if (bus_credential_load(path, &cred_cli, &e) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/test-plain.cred", fixture_dir);
    if (bus_credential_load(path, &cred_plain, &e) < 0)
        return -1;
    /* a principal whose key is in no principals file */
    snprintf(path, sizeof path, "%s/stranger.cred", fixture_dir);
    char pubs[160];
    snprintf(pubs, sizeof pubs, "%s/stranger-pubs.json", fixture_dir);
    if (bus_credential_create("test-stranger", path, pubs, &e) < 0 || bus_credential_load(path, &cred_stranger, &e) < 0)
        return -1;

    cfg = fixture_config(brokers, "test-srv");
    cfg_cli = fixture_config(brokers, "test-asserts-cli");
    cfg_plain = fixture_config(brokers, "test-plain");
    srv = bus_open(cfg, "tsrv", &e);
    cli = bus_open(cfg_cli, "tcli", &e);
    plain = bus_open(cfg_plain, "tplain", &e);
    if (!srv || !cli || !plain) {
        fprintf(stderr, "bus_open: %s\n", e.message);
        return -1;
    }
    bus_serve_opts_t o = {.topic = TOPIC, .group = "tgroup", .routes = routes, .workers = WORKERS,
                          .worker_init = w_init, .worker_fini = w_fini, .app = &app_marker};
    if (bus_serve(srv, &o, &e) < 0) {
        fprintf(stderr, "bus_serve: %s\n", e.message);
        return -1;
    }
    /* the mock's first group join takes ~3 s */
    int64_t end = mono_ms() + 20000;
    while (!bus_serving(srv) && mono_ms() < end)
        sleep_ms(20);
    if (!bus_serving(srv)) {
        fprintf(stderr, "consumer group never got partitions\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    bus_close(cli);
    bus_close(plain);
    bus_close(srv);   /* NULL if test_close already closed it */
    cli = srv = plain = NULL;
    config_free(cfg);
    config_free(cfg_cli);
    config_free(cfg_plain);
    bus_credential_wipe(&cred_cli);
    bus_credential_wipe(&cred_plain);
    bus_credential_wipe(&cred_stranger);
    fixture_cleanup();
    if (mock)
        rd_kafka_mock_cluster_destroy(mock);
    if (mock_rk)
        rd_kafka_destroy(mock_rk);
    return 0;
}

/* ---- tests --------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    verr_t e = {0};
    json_t *reply = NULL;
    json_t *caller = json_pack("{s:s, s:s, s:s}", "account", "123456789012", "user", "alice",
                               "request_id", "rid-round-trip");
    int64_t t0 = wall_ms();
    /* generous timeout: the client's first call also sets up its reply topic */
    int rc = bus_call(cli, "t", "t.echo", json_pack("{s:s, s:i}", "hello", "world", "n", 7), caller, 15000,
                      &reply, &e);
    int64_t t1 = wall_ms();
    json_decref(caller);
    if (rc != 0)
        fail_msg("bus_call: %s %s", e.code, e.message);
    assert_non_null(reply);
    assert_string_equal(json_string_value(json_object_get(reply, "hello")), "world");
    assert_int_equal(json_integer_value(json_object_get(reply, "n")), 7);
    assert_string_equal(json_string_value(json_object_get(reply, "type")), "t.echo");
    assert_true(json_is_true(json_object_get(reply, "app_ok")));
    assert_true(json_is_true(json_object_get(reply, "bus_ok")));
    assert_true(json_is_true(json_object_get(reply, "has_reply_to")));
    /* the handler saw the caller and ran under its request id */
    assert_string_equal(json_string_value(json_object_get(reply, "rid")), "rid-round-trip");
    json_t *c = json_object_get(reply, "caller");
    assert_string_equal(json_string_value(json_object_get(c, "user")), "alice");
    /* deadline = call time + timeout_ms */
    int64_t dl = json_integer_value(json_object_get(reply, "deadline"));
    assert_true(dl >= t0 + 15000 && dl <= t1 + 15000);
    json_decref(reply);

    /* a handler that leaves *reply NULL answers {} and the body defaults to {} */
    rc = bus_call(cli, "virga.rpc.t", "t.empty", NULL, NULL, 5000, &reply, &e);   /* full topic name */
    if (rc != 0)
        fail_msg("bus_call t.empty: %s %s", e.code, e.message);
    assert_true(json_is_object(reply));
    assert_int_equal(json_object_size(reply), 0);
    json_decref(reply);
}

static void test_handler_errors(void **state)
{
    (void)state;
    verr_t e = {0};
    json_t *reply = (json_t *)&e;   /* must be reset to NULL by bus_call */
    assert_int_equal(bus_call(cli, "t", "t.fail", json_pack("{s:s}", "x", "nope"), NULL, 5000, &reply, &e), -1);
    assert_null(reply);
    assert_string_equal(e.code, "InvalidParameterValue");
    assert_string_equal(e.message, "bad value 'nope'");
    assert_int_equal(e.http_status, 400);

    /* a handler that fails without saying why is a bug: InternalError for the caller,
     * and an error line naming the message type in the serving process' log */
    verr_clear(&e);
    fflush(stderr);
    FILE *cap = tmpfile();
    assert_non_null(cap);
    int saved = dup(STDERR_FILENO);
    dup2(fileno(cap), STDERR_FILENO);
    int rc = bus_call(cli, "t", "t.fail_silent", NULL, NULL, 5000, &reply, &e);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char logged[4096] = "";
    rewind(cap);
    size_t got = fread(logged, 1, sizeof logged - 1, cap);
    logged[got] = 0;
    fclose(cap);
    assert_int_equal(rc, -1);
    assert_string_equal(e.code, "InternalError");
    assert_int_equal(e.http_status, 500);
    assert_non_null(strstr(e.message, "internal error"));
    assert_non_null(strstr(logged, " error "));
    assert_non_null(strstr(logged, "BUG"));
    assert_non_null(strstr(logged, "t.fail_silent"));

    verr_clear(&e);
    assert_int_equal(bus_call(cli, "t", "t.fail_after_reply", NULL, NULL, 5000, &reply, &e), -1);
    assert_null(reply);
    assert_string_equal(e.code, "IncorrectState");
    assert_string_equal(e.message, "changed my mind");
    assert_int_equal(e.http_status, 409);

    verr_clear(&e);
    assert_int_equal(bus_call(cli, "t", "t.no_such_type", NULL, NULL, 5000, &reply, &e), -1);
    assert_string_equal(e.code, "InvalidAction");
    assert_int_equal(e.http_status, 400);
    assert_non_null(strstr(e.message, "t.no_such_type"));
}

/* A call to service that must fail with code and HTTP status: how long it took, in ms. */
static int64_t call_fails(const char *service, int timeout_ms, const char *code, int status)
{
    verr_t e = {0};
    json_t *reply = NULL;
    int64_t t0 = mono_ms();
    int rc = bus_call(cli, service, "t.echo", json_object(), NULL, timeout_ms, &reply, &e);
    int64_t dt = mono_ms() - t0;
    assert_int_equal(rc, -1);
    assert_null(reply);
    assert_string_equal(e.code, code);
    assert_int_equal(e.http_status, status);
    return dt;
}

static void test_timeout(void **state)
{
    (void)state;
    bus_stats_t before, after;
    bus_get_stats(cli, &before);
    int64_t dt = call_fails("nobody", 800, "RequestTimeout", 504);
    if (dt < 700 || dt > 5000)
        fail_msg("timed out after %lld ms, expected ~800", (long long)dt);
    bus_get_stats(cli, &after);
    assert_int_equal(after.call_timeouts - before.call_timeouts, 1);
    assert_int_equal(after.calls - before.calls, 1);
}

#define CALL_THREADS 8
#define CALLS_EACH 50

static void *caller_thread(void *arg)
{
    intptr_t t = (intptr_t)arg;
    intptr_t ok = 0;
    for (int i = 0; i < CALLS_EACH; i++) {
        char tag[64];
        snprintf(tag, sizeof tag, "t%d-c%d-%ld", (int)t, i, (long)random());
        json_t *reply = NULL;
        verr_t e = {0};
        if (bus_call(cli, "t", "t.echo", json_pack("{s:s, s:i}", "tag", tag, "i", i), NULL, 10000, &reply, &e) == 0) {
            const char *got = json_string_value(json_object_get(reply, "tag"));
            if (got && !strcmp(got, tag) && json_integer_value(json_object_get(reply, "i")) == i)
                ok++;
            json_decref(reply);
        }
    }
    return (void *)ok;
}

/* CALL_THREADS threads making CALLS_EACH calls each at once: the calls that succeeded */
static intptr_t calls_from_threads(void)
{
    pthread_t th[CALL_THREADS];
    for (intptr_t i = 0; i < CALL_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, caller_thread, (void *)i), 0);
    intptr_t ok = 0;
    for (int i = 0; i < CALL_THREADS; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        ok += (intptr_t)rv;
    }
    return ok;
}

static void test_concurrent_calls(void **state)
{
    (void)state;
    bus_stats_t s0, s1;
    bus_get_stats(srv, &s0);
    assert_int_equal(calls_from_threads(), CALL_THREADS * CALLS_EACH);
    bus_get_stats(srv, &s1);
    assert_true(s1.served - s0.served >= CALL_THREADS * CALLS_EACH);
}

/* virga_bus_sent_total of bus b for producer "at_once" or "batched" (bus_metrics_render) */
static uint64_t sent_by(bus_t *b, const char *producer)
{
    strbuf_t sb = {0};
    bus_metrics_render(b, &sb);
    char key[128];
    snprintf(key, sizeof key, "producer=\"%s\"} ", producer);
    const char *at = sb.s ? strstr(sb.s, key) : NULL;
    uint64_t n = at ? strtoull(at + strlen(key), NULL, 10) : UINT64_MAX;
    free(sb.s);
    return n;
}

/* A call alone goes at once, request and reply, on the linger-0 producers; calls from
 * several threads at a time mostly wait for their batch (docs/bus.md, "Latency against
 * idle cost"). Counted by virga_bus_sent_total, not timed. */
static void test_lone_calls_go_at_once(void **state)
{
    (void)state;
    uint64_t cli0 = sent_by(cli, "at_once"), srv0 = sent_by(srv, "at_once");
    assert_true(cli0 != UINT64_MAX && srv0 != UINT64_MAX);
    for (int i = 0; i < 5; i++) {
        sleep_ms(100);   /* the previous call's delivery reports served: nothing in flight */
        json_t *reply = NULL;
        verr_t e = {0};
        if (bus_call(cli, "t", "t.echo", json_pack("{s:i}", "i", i), NULL, 10000, &reply, &e) != 0)
            fail_msg("bus_call: %s %s", e.code, e.message);
        json_decref(reply);
    }
    /* at least most of them: a delivery report served late on a loaded machine makes a
     * message wait for its batch, which is allowed */
    assert_true(sent_by(cli, "at_once") - cli0 >= 3);
    assert_true(sent_by(srv, "at_once") - srv0 >= 3);

    uint64_t batched0 = sent_by(cli, "batched");
    assert_int_equal(calls_from_threads(), CALL_THREADS * CALLS_EACH);
    assert_true(sent_by(cli, "batched") - batched0 > 0);
}

/* A lone call whose request the broker refuses (an ACL) fails at once with AccessDenied,
 * not at its deadline: the call is found by the correlation id of the refused
 * message's delivery report. */
static void test_refused_lone_call_fails_at_once(void **state)
{
    (void)state;
    /* a topic of its own: librdkafka keeps a refused topic refused until its next
     * metadata refresh, and the other tests call on theirs */
    sleep_ms(100);   /* nothing in flight: the call goes alone */
    uint64_t at0 = sent_by(cli, "at_once");
    rd_kafka_mock_push_request_errors(mock, 0 /* Produce: ApiKey 0 */, 1, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    int64_t dt = call_fails("refused", 20000, "AccessDenied", 403);
    if (dt > 10000)
        fail_msg("the refused call failed after %lld ms, not at once", (long long)dt);
    assert_int_equal(sent_by(cli, "at_once") - at0, 1);
}

/* ---- asynchronous calls ---------------------------------------------------------- */

typedef struct async_slot {
    int calls;                /* times the callback ran */
    int ok;                   /* the reply was this call's own */
    int i;
    char code[64];
    int status;
    int64_t at;               /* mono ms of the (first) callback */
} async_slot_t;

static int async_done;

static void async_cb(void *arg, json_t *reply, const verr_t *err)
{
    async_slot_t *s = arg;
    if (__atomic_add_fetch(&s->calls, 1, __ATOMIC_SEQ_CST) == 1)
        s->at = mono_ms();
    if (reply && !err)
        s->ok = json_integer_value(json_object_get(reply, "i")) == s->i &&
                json_is_true(json_object_get(reply, "app_ok"));
    if (err) {
        snprintf(s->code, sizeof s->code, "%s", err->code);
        s->status = err->http_status;
    }
    json_decref(reply);
    __atomic_add_fetch(&async_done, 1, __ATOMIC_SEQ_CST);
}

static void test_async_reply(void **state)
{
    (void)state;
    async_slot_t slot = {.i = 42};
    verr_t e = {0};
    int before = __atomic_load_n(&async_done, __ATOMIC_SEQ_CST);
    assert_int_equal(bus_call_async(cli, "t", "t.echo", json_pack("{s:i}", "i", 42), NULL, 5000, async_cb, &slot, &e), 0);
    assert_true(wait_count(&async_done, before + 1, 10000));
    assert_int_equal(slot.calls, 1);
    assert_int_equal(slot.ok, 1);

    /* a remote error arrives as err, with no reply */
    async_slot_t bad = {.i = -1};
    before = __atomic_load_n(&async_done, __ATOMIC_SEQ_CST);
    assert_int_equal(bus_call_async(cli, "t", "t.fail", json_pack("{s:s}", "x", "no"), NULL, 5000, async_cb, &bad, &e), 0);
    assert_true(wait_count(&async_done, before + 1, 10000));
    assert_int_equal(bad.calls, 1);
    assert_string_equal(bad.code, "InvalidParameterValue");
    assert_int_equal(bad.status, 400);
}

/* bus_call_async_text: the body arrives as the JSON text the service sent (here the same
 * dump the tree path parses), a remote error and a timeout as err with no text. */
typedef struct text_slot {
    int calls;
    char *text;               /* a copy of the body text */
    char code[64];
    int status;
} text_slot_t;

static void text_cb(void *arg, const char *body, size_t len, const verr_t *err)
{
    text_slot_t *s = arg;
    if (body && !err)
        s->text = strndup(body, len);
    if (err) {
        snprintf(s->code, sizeof s->code, "%s", err->code);
        s->status = err->http_status;
    }
    __atomic_add_fetch(&s->calls, 1, __ATOMIC_SEQ_CST);
}

static void test_async_text_reply(void **state)
{
    (void)state;
    text_slot_t ok = {0}, bad = {0}, late = {0};
    verr_t e = {0};
    assert_int_equal(bus_call_async_text(cli, "t", "t.echo", json_pack("{s:i, s:s}", "i", 42, "s", "a\"<b>\u00e9"), NULL,
                                         5000, text_cb, &ok, &e), 0);
    assert_int_equal(bus_call_async_text(cli, "t", "t.fail", json_pack("{s:s}", "x", "no"), NULL, 5000, text_cb, &bad,
                                         &e), 0);
    assert_int_equal(bus_call_async_text(cli, "nobody", "t.echo", json_object(), NULL, 600, text_cb, &late, &e), 0);
    assert_true(wait_count(&ok.calls, 1, 10000));
    assert_true(wait_count(&bad.calls, 1, 10000));
    assert_true(wait_count(&late.calls, 1, 5000));
    sleep_ms(200);   /* each exactly once */
    assert_int_equal(ok.calls + bad.calls + late.calls, 3);

    assert_non_null(ok.text);
    json_t *j = json_loads(ok.text, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "i")), 42);
    assert_string_equal(json_string_value(json_object_get(j, "s")), "a\"<b>\u00e9");
    assert_true(json_is_true(json_object_get(j, "app_ok")));
    assert_string_equal(json_string_value(json_object_get(j, "type")), "t.echo");
    json_decref(j);
    free(ok.text);

    assert_null(bad.text);
    assert_string_equal(bad.code, "InvalidParameterValue");
    assert_int_equal(bad.status, 400);
    assert_null(late.text);
    assert_string_equal(late.code, "RequestTimeout");
    assert_int_equal(late.status, 504);
}

static void test_async_timeout(void **state)
{
    (void)state;
    bus_stats_t before, after;
    bus_get_stats(cli, &before);
    async_slot_t slot = {.i = 1};
    verr_t e = {0};
    int done0 = __atomic_load_n(&async_done, __ATOMIC_SEQ_CST);
    int64_t t0 = mono_ms();
    assert_int_equal(bus_call_async(cli, "nobody", "t.echo", json_object(), NULL, 600, async_cb, &slot, &e), 0);
    assert_true(wait_count(&async_done, done0 + 1, 5000));
    int64_t dt = slot.at - t0;
    if (dt < 550 || dt > 3000)
        fail_msg("timed out after %lld ms, expected ~600", (long long)dt);
    assert_string_equal(slot.code, "RequestTimeout");
    assert_int_equal(slot.status, 504);
    sleep_ms(500);   /* and never again */
    assert_int_equal(__atomic_load_n(&slot.calls, __ATOMIC_SEQ_CST), 1);
    bus_get_stats(cli, &after);
    assert_int_equal(after.call_timeouts - before.call_timeouts, 1);
    assert_int_equal(after.calls - before.calls, 1);
}

/* A handler asks other services (here its own, t.echo, on the same WORKERS workers)
 * with bus_ask: three times as many such requests at once as there are workers all get
 * their answers, which blocking calls could not (every worker would wait for an echo
 * that no free worker is left to answer); each handler runs once per question plus
 * once, and a question that times out comes back to the handler as its error. */
#define ASKS (3 * WORKERS)

static void test_ask_does_not_hold_the_worker(void **state)
{
    (void)state;
    async_slot_t slots[ASKS];
    verr_t e = {0};
    int runs0 = __atomic_load_n(&ask_runs, __ATOMIC_SEQ_CST);
    int done0 = __atomic_load_n(&async_done, __ATOMIC_SEQ_CST);
    for (int i = 0; i < ASKS; i++) {
        slots[i] = (async_slot_t){.i = i};
        assert_int_equal(bus_call_async(cli, "t", "t.ask", json_pack("{s:i}", "i", i), NULL, 20000, async_cb,
                                        &slots[i], &e), 0);
    }
    assert_true(wait_count(&async_done, done0 + ASKS, 30000));
    for (int i = 0; i < ASKS; i++) {
        assert_int_equal(slots[i].calls, 1);
        assert_int_equal(slots[i].ok, 1);
    }
    assert_int_equal(__atomic_load_n(&ask_runs, __ATOMIC_SEQ_CST) - runs0, 3 * ASKS);

    json_t *reply = NULL;
    assert_int_equal(bus_call(cli, "t", "t.ask", json_pack("{s:i}", "i", 7), NULL, 20000, &reply, &e), 0);
    assert_string_equal(json_str(json_object_get(reply, "a"), "q", ""), "first");
    assert_int_equal(json_int(json_object_get(reply, "a"), "i", -1), 7);
    assert_string_equal(json_str(json_object_get(reply, "b"), "q", ""), "second");
    json_decref(reply);

    reply = NULL;
    assert_int_equal(bus_call(cli, "t", "t.ask", json_pack("{s:s, s:i}", "to", "nobody", "timeout", 600), NULL,
                              20000, &reply, &e), -1);
    assert_string_equal(e.code, "RequestTimeout");
    assert_null(reply);
}

/* "Who polls" (bus_serve.c): with one worker, that worker is the one polling the
 * consumer while its job is parked, and the answer to the job's question must wake it
 * at once, not when its poll times out (bus.idle_poll_ms, a minute here). The handler asks
 * its own service, so the one worker also serves the question. */
static void test_parked_job_wakes_the_polling_worker(void **state)
{
    (void)state;
    config_t *c = fixture_config(brokers, "test-srv");
    config_set(c, "bus.idle_poll_ms", "60000");
    verr_t e = {0};
    bus_t *solo = bus_open(c, "tsolo", &e);
    assert_non_null(solo);
    bus_serve_opts_t o = {.topic = "virga.rpc.solo", .group = "tsolo", .routes = routes, .workers = 1,
                          .app = &app_marker};   /* no worker hooks: test_worker_hooks counts srv's */
    assert_int_equal(bus_serve(solo, &o, &e), 0);
    int64_t end = mono_ms() + 20000;
    while (!bus_serving(solo) && mono_ms() < end)
        sleep_ms(20);
    assert_true(bus_serving(solo));
    sleep_ms(200);   /* its one worker polls by now */
    json_t *reply = NULL;
    int64_t t0 = mono_ms();
    if (bus_call(cli, "solo", "t.ask", json_pack("{s:s, s:i}", "to", "solo", "i", 3), NULL, 20000, &reply, &e) != 0)
        fail_msg("t.ask on one worker: %s %s", e.code, e.message);
    int64_t dt = mono_ms() - t0;
    assert_int_equal(json_int(json_object_get(reply, "a"), "i", -1), 3);
    json_decref(reply);
    if (dt > 10000)
        fail_msg("the parked job waited %lld ms for its worker's poll", (long long)dt);
    bus_close(solo);
    config_free(c);
}

/* bus_await: a question the service answers itself (answered later by another thread,
 * or at once before the handler has returned) parks the message like bus_ask; three
 * times as many such requests as there are workers are all answered, each handler run
 * once per question plus once; bus_ask_as asks as the caller it names (refused here:
 * the test's principal may not act for a tenant). */
static void test_await_does_not_hold_the_worker(void **state)
{
    (void)state;
    async_slot_t slots[ASKS];
    verr_t e = {0};
    int runs0 = __atomic_load_n(&await_runs, __ATOMIC_SEQ_CST);
    int done0 = __atomic_load_n(&async_done, __ATOMIC_SEQ_CST);
    for (int i = 0; i < ASKS; i++) {
        slots[i] = (async_slot_t){.i = i};
        assert_int_equal(bus_call_async(cli, "t", "t.await", json_pack("{s:i, s:b}", "i", i, "now", i % 2), NULL,
                                        20000, async_cb, &slots[i], &e), 0);
    }
    assert_true(wait_count(&async_done, done0 + ASKS, 30000));
    for (int i = 0; i < ASKS; i++) {
        assert_int_equal(slots[i].calls, 1);
        if (!slots[i].ok)
            fail_msg("t.await %d: %s", i, slots[i].code);
    }
    assert_int_equal(__atomic_load_n(&await_runs, __ATOMIC_SEQ_CST) - runs0, 3 * ASKS);

    for (int now = 0; now < 2; now++) {
        json_t *reply = NULL;
        assert_int_equal(bus_call(cli, "t", "t.await", json_pack("{s:i, s:b}", "i", 1000 + now, "now", now), NULL,
                                  20000, &reply, &e), 0);
        assert_string_equal(json_str(json_object_get(reply, "local"), "local", ""), now ? "now" : "later");
        assert_string_equal(json_str(reply, "as", ""), "AccessDenied");
        json_decref(reply);
    }
}

#define ASYNC_CALLS 400

static void test_async_many(void **state)
{
    (void)state;
    async_slot_t *slots = calloc(ASYNC_CALLS, sizeof *slots);
    int done0 = __atomic_load_n(&async_done, __ATOMIC_SEQ_CST);
    for (int i = 0; i < ASYNC_CALLS; i++) {
        verr_t e = {0};
        slots[i].i = i;
        /* a few with a deadline about when their reply comes: still exactly once */
        int timeout = i % 10 == 0 ? 20 + i % 40 : 10000;
        if (bus_call_async(cli, "t", "t.echo", json_pack("{s:i}", "i", i), NULL, timeout, async_cb, &slots[i], &e) < 0)
            fail_msg("bus_call_async %d: %s", i, e.message);
    }
    assert_true(wait_count(&async_done, done0 + ASYNC_CALLS, 20000));
    sleep_ms(300);
    int ok = 0, late = 0;
    for (int i = 0; i < ASYNC_CALLS; i++) {
        assert_int_equal(__atomic_load_n(&slots[i].calls, __ATOMIC_SEQ_CST), 1);
        if (slots[i].ok)
            ok++;
        else if (!strcmp(slots[i].code, "RequestTimeout") && i % 10 == 0)
            late++;
        else
            fail_msg("call %d: neither its reply nor a timeout (%s)", i, slots[i].code);
    }
    assert_int_equal(ok + late, ASYNC_CALLS);
    assert_true(ok >= ASYNC_CALLS - ASYNC_CALLS / 10);
    free(slots);
}

static void test_publish_event(void **state)
{
    (void)state;
    int before = __atomic_load_n(&events, __ATOMIC_SEQ_CST);
    verr_t e = {0};
    for (int i = 0; i < 5; i++)
        assert_int_equal(bus_publish(cli, TOPIC, "t.event", json_pack("{s:i}", "i", i), &e), 0);
    assert_int_equal(bus_publish(cli, TOPIC, "t.event", NULL, &e), 0);   /* NULL body is fine */
    if (!wait_count(&events, before + 6, 10000))
        fail_msg("only %d of 6 events handled", __atomic_load_n(&events, __ATOMIC_SEQ_CST) - before);
}

static void test_worker_hooks(void **state)
{
    (void)state;
    /* the workers and the health lane's thread each have their own state */
    assert_int_equal(__atomic_load_n(&inits, __ATOMIC_SEQ_CST), WORKERS + 1);
    assert_int_equal(__atomic_load_n(&init_bad_app, __ATOMIC_SEQ_CST), 0);
    /* Every handler ran with the state its own init returned: collect worker ids
     * over enough calls to see several workers. */
    int seen[WORKERS + 1] = {0};
    for (int i = 0; i < 40; i++) {
        json_t *reply = NULL;
        verr_t e = {0};
        if (bus_call(cli, "t", "t.echo", NULL, NULL, 5000, &reply, &e) != 0)
            fail_msg("bus_call: %s", e.message);
        json_int_t w = json_integer_value(json_object_get(reply, "worker"));
        json_decref(reply);
        assert_true(w >= 0 && w <= WORKERS);
        seen[w]++;
    }
    int distinct = 0;
    for (int i = 0; i <= WORKERS; i++)
        distinct += seen[i] > 0;
    assert_true(distinct >= 1);
    assert_int_equal(__atomic_load_n(&finis, __ATOMIC_SEQ_CST), 0);   /* not before close */
}

static void test_expired_request_dropped(void **state)
{
    (void)state;
    bus_stats_t s0, s1;
    bus_get_stats(srv, &s0);
    char msg[512];
    /* deadline 10 s ago, with a reply_to: a real request, only too late */
    snprintf(msg, sizeof msg,
             "{\"v\":1,\"id\":\"expired-1\",\"type\":\"t.deadline\",\"reply_to\":\"virga.reply.nowhere\","
             "\"deadline\":%lld,\"body\":{\"expired\":true}}",
             (long long)(wall_ms() - 10000));
    assert_int_equal(produce_raw(msg), 0);
    /* the control: the same request with a deadline a minute ahead does run */
    snprintf(msg, sizeof msg,
             "{\"v\":1,\"id\":\"live-1\",\"type\":\"t.deadline\",\"reply_to\":\"virga.reply.nowhere\","
             "\"deadline\":%lld,\"body\":{\"expired\":false}}",
             (long long)(wall_ms() + 60000));
    assert_int_equal(produce_raw(msg), 0);
    assert_true(wait_count(&live_runs, 1, 10000));
    int64_t end = mono_ms() + 10000;
    do {
        bus_get_stats(srv, &s1);
        if (s1.expired > s0.expired)
            break;
        sleep_ms(10);
    } while (mono_ms() < end);
    assert_int_equal(s1.expired - s0.expired, 1);
    assert_int_equal(__atomic_load_n(&expired_runs, __ATOMIC_SEQ_CST), 0);
}

static void test_malformed_messages(void **state)
{
    (void)state;
    /* garbage, a JSON non-object, and an object without a type: all dropped or
     * refused, and the server keeps answering */
    assert_int_equal(produce_raw("this is not json"), 0);
    assert_int_equal(produce_raw("[1,2,3]"), 0);
    assert_int_equal(produce_raw("{\"v\":1,\"id\":\"x\"}"), 0);
    json_t *reply = NULL;
    verr_t e = {0};
    if (bus_call(cli, "t", "t.echo", json_pack("{s:s}", "after", "garbage"), NULL, 5000, &reply, &e) != 0)
        fail_msg("bus_call after garbage: %s %s", e.code, e.message);
    assert_string_equal(json_string_value(json_object_get(reply, "after")), "garbage");
    json_decref(reply);
}

/* ---- principals ----------------------------------------------------------------- */

/* A live request (deadline a minute ahead, with a reply_to) to t.count. */
static void count_request(char *buf, size_t size, const char *id)
{
    snprintf(buf, size,
             "{\"v\":1,\"id\":\"%s\",\"type\":\"t.count\",\"reply_to\":\"virga.reply.nowhere\","
             "\"deadline\":%lld,\"body\":{}}",
             id, (long long)(wall_ms() + 60000));
}

/* Wait (bounded) until the server has rejected `want` more messages than before. */
static uint64_t wait_rejected(uint64_t before, uint64_t want)
{
    bus_stats_t s;
    int64_t end = mono_ms() + 10000;
    do {
        bus_get_stats(srv, &s);
        if (s.rejected >= before + want)
            break;
        sleep_ms(10);
    } while (mono_ms() < end);
    return s.rejected - before;
}

static void test_unsigned_and_forged_never_reach_a_handler(void **state)
{
    (void)state;
    bus_stats_t s0;
    bus_get_stats(srv, &s0);
    char msg[512];
    count_request(msg, sizeof msg, "unsigned-1");
    assert_int_equal(produce_as(msg, NULL, NULL), 0);                       /* no signature */
    count_request(msg, sizeof msg, "forged-1");
    assert_int_equal(produce_as(msg, "test-asserts-cli", &cred_plain), 0);  /* another's key */
    count_request(msg, sizeof msg, "stranger-1");
    assert_int_equal(produce_as(msg, "test-stranger", &cred_stranger), 0);  /* key in no file */
    count_request(msg, sizeof msg, "noname-1");
    assert_int_equal(produce_as(msg, "", &cred_cli), 0);                    /* no sender name */
    assert_int_equal(wait_rejected(s0.rejected, 4), 4);
    /* the control: the same request, signed by its sender, is handled */
    count_request(msg, sizeof msg, "signed-1");
    assert_int_equal(produce_as(msg, "test-plain", &cred_plain), 0);
    assert_true(wait_count(&unsigned_runs, 1, 10000));
    sleep_ms(200);
    assert_int_equal(__atomic_load_n(&unsigned_runs, __ATOMIC_SEQ_CST), 1);
}

/* A MAC (header vm) counts only when made with the key of the sender it names and of
 * this reader (common/bus_mac.c): another principal's, or one made for another reader,
 * is dropped like a forged signature. */
static void test_forged_macs_never_reach_a_handler(void **state)
{
    (void)state;
    bus_stats_t s0;
    bus_get_stats(srv, &s0);
    int runs0 = __atomic_load_n(&unsigned_runs, __ATOMIC_SEQ_CST);
    char msg[512];
    count_request(msg, sizeof msg, "mac-forged-1");
    assert_int_equal(produce_mac(msg, "test-asserts-cli", &cred_plain, "test-srv"), 0);   /* another's key */
    count_request(msg, sizeof msg, "mac-other-reader-1");
    assert_int_equal(produce_mac(msg, "test-asserts-cli", &cred_cli, "test-plain"), 0);   /* for another reader */
    count_request(msg, sizeof msg, "mac-stranger-1");
    assert_int_equal(produce_mac(msg, "test-stranger", &cred_stranger, "test-srv"), 0);   /* key in no file */
    assert_int_equal(wait_rejected(s0.rejected, 3), 3);
    /* the control: a MAC its sender made for this reader is handled */
    count_request(msg, sizeof msg, "mac-1");
    assert_int_equal(produce_mac(msg, "test-asserts-cli", &cred_cli, "test-srv"), 0);
    assert_true(wait_count(&unsigned_runs, runs0 + 1, 10000));
    sleep_ms(200);
    assert_int_equal(__atomic_load_n(&unsigned_runs, __ATOMIC_SEQ_CST), runs0 + 1);
}

static void test_handler_rows_name_their_senders(void **state)
{
    (void)state;
    json_t *reply = NULL;
    verr_t e = {0};
    /* t.operator_only is for the operator: a test principal is refused, with a reason */
    assert_int_equal(bus_call(plain, "t", "t.operator_only", NULL, NULL, 10000, &reply, &e), -1);
    assert_string_equal(e.code, "AccessDenied");
    assert_int_equal(e.http_status, 403);
    assert_non_null(strstr(e.message, "test-plain"));
    assert_non_null(strstr(e.message, "t.operator_only"));
    /* the handler saw who sent what it does handle */
    verr_clear(&e);
    assert_int_equal(bus_call(plain, "t", "sys.health", NULL, NULL, 10000, &reply, &e), 0);
    assert_string_equal(json_string_value(json_object_get(reply, "from")), "test-plain");
    json_decref(reply);
}

static void test_only_asserting_principals_name_a_caller(void **state)
{
    (void)state;
    json_t *caller = json_pack("{s:s, s:b}", "account_id", "123456789012", "is_operator", 1);
    json_t *reply = NULL;
    verr_t e = {0};
    assert_int_equal(bus_call(plain, "t", "t.echo", json_object(), caller, 10000, &reply, &e), -1);
    assert_string_equal(e.code, "AccessDenied");
    assert_non_null(strstr(e.message, "may not act for a tenant"));
    /* the same principal without a caller, and an asserting one with it, are served */
    verr_clear(&e);
    assert_int_equal(bus_call(plain, "t", "t.echo", json_object(), NULL, 10000, &reply, &e), 0);
    assert_null(json_object_get(reply, "caller"));
    json_decref(reply);
    assert_int_equal(bus_call(cli, "t", "t.echo", json_object(), caller, 10000, &reply, &e), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(reply, "caller"), "account_id")),
                        "123456789012");
    json_decref(reply);
    json_decref(caller);
}

static void test_health_has_its_own_lane(void **state)
{
    (void)state;
    async_slot_t slots[WORKERS];
    memset(slots, 0, sizeof slots);
    int done0 = __atomic_load_n(&async_done, __ATOMIC_SEQ_CST);
    __atomic_store_n(&released, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&blocked, 0, __ATOMIC_SEQ_CST);
    verr_t e = {0};
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(bus_call_async(cli, "t", "t.block", json_object(), NULL, 20000, async_cb, &slots[i], &e), 0);
    assert_true(wait_count(&blocked, WORKERS, 10000));   /* every worker is held */
    json_t *reply = NULL;
    int rc = bus_call(cli, "t", "sys.health", NULL, NULL, 3000, &reply, &e);
    __atomic_store_n(&released, 1, __ATOMIC_SEQ_CST);
    if (rc != 0)
        fail_msg("sys.health while the workers are busy: %s %s", e.code, e.message);
    assert_string_equal(json_string_value(json_object_get(reply, "status")), "healthy");
    json_decref(reply);
    assert_true(wait_count(&async_done, done0 + WORKERS, 15000));
}

/* Messages of several MB cross the bus (a page of a thousand instances is about 1.3 MB);
 * one over bus.max_message_bytes (4 MiB by default) fails at once with an error naming
 * the bound: a request before it leaves, a reply as an error answer to its caller, never
 * a silent drop that the caller would see only as a timeout. */
static void test_large_messages(void **state)
{
    (void)state;
    verr_t e = {0};
    json_t *reply = NULL;
    assert_int_equal(bus_max_message_bytes(srv), 4 * 1024 * 1024);
    size_t big = 2500 * 1000;   /* 2.5 MB each way */
    char *blob = malloc(big + 1);
    memset(blob, 'y', big);
    blob[big] = 0;
    int rc = bus_call(cli, "t", "t.echo", json_pack("{s:s}", "blob", blob), NULL, 15000, &reply, &e);
    if (rc != 0)
        fail_msg("a 2.5 MB round trip: %s %s", e.code, e.message);
    assert_int_equal(strlen(json_str(reply, "blob", "")), big);
    json_decref(reply);
    /* (the mock keeps 5 MB per partition: two messages of 2.5 MB on one reply topic is its limit) */
    rc = bus_call(cli, "t", "t.big", json_pack("{s:I}", "bytes", (json_int_t)2400 * 1000), NULL, 15000, &reply, &e);
    if (rc != 0)
        fail_msg("a 3 MB reply: %s %s", e.code, e.message);
    assert_int_equal(strlen(json_str(reply, "blob", "")), 2400 * 1000);
    json_decref(reply);

    /* a reply over the bound: the caller hears why, long before its 15 s deadline */
    int64_t t0 = wall_ms();
    rc = bus_call(cli, "t", "t.big", json_pack("{s:I}", "bytes", (json_int_t)5 * 1000 * 1000), NULL, 15000, &reply, &e);
    assert_int_equal(rc, -1);
    assert_string_equal(e.code, BUS_TOO_LARGE);
    assert_non_null(strstr(e.message, "bus.max_message_bytes"));
    assert_true(wall_ms() - t0 < 10000);

    /* a request over the bound does not leave */
    free(blob);
    big = 5 * 1000 * 1000;
    blob = malloc(big + 1);
    memset(blob, 'z', big);
    blob[big] = 0;
    rc = bus_call(cli, "t", "t.echo", json_pack("{s:s}", "blob", blob), NULL, 15000, &reply, &e);
    assert_int_equal(rc, -1);
    assert_string_equal(e.code, BUS_TOO_LARGE);
    assert_non_null(strstr(e.message, "bus.max_message_bytes"));
    free(blob);
}

static void test_api_edges(void **state)
{
    (void)state;
    verr_t e = {0};
    bus_serve_opts_t o = {.topic = TOPIC, .group = "tgroup", .routes = routes};
    assert_int_equal(bus_serve(srv, &o, &e), -1);   /* once per bus */
    assert_string_equal(e.code, "InternalError");
    assert_int_equal(bus_serving(NULL), 0);
    assert_int_equal(bus_serving(cli), 0);          /* the client serves nothing */
    bus_close(NULL);

    bus_stats_t s;
    bus_get_stats(srv, &s);
    assert_true(s.served > 0);
    assert_true(s.handler_errors >= 3);
    bus_get_stats(cli, &s);
    assert_true(s.calls >= CALL_THREADS * CALLS_EACH);
}

/* Last: closing the serving bus runs worker_fini once per worker (and for the health
 * lane's thread), on what init made. */
static void test_close_runs_fini(void **state)
{
    (void)state;
    bus_close(srv);
    srv = NULL;
    assert_int_equal(__atomic_load_n(&finis, __ATOMIC_SEQ_CST), WORKERS + 1);
    assert_int_equal(__atomic_load_n(&inits, __ATOMIC_SEQ_CST), WORKERS + 1);
}

int main(void)
{
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_handler_errors),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_concurrent_calls),
        cmocka_unit_test(test_lone_calls_go_at_once),
        cmocka_unit_test(test_refused_lone_call_fails_at_once),
        cmocka_unit_test(test_async_reply),
        cmocka_unit_test(test_async_timeout),
        cmocka_unit_test(test_async_text_reply),
        cmocka_unit_test(test_async_many),
        cmocka_unit_test(test_ask_does_not_hold_the_worker),
        cmocka_unit_test(test_await_does_not_hold_the_worker),
        cmocka_unit_test(test_parked_job_wakes_the_polling_worker),
        cmocka_unit_test(test_publish_event),
        cmocka_unit_test(test_worker_hooks),
        cmocka_unit_test(test_expired_request_dropped),
        cmocka_unit_test(test_malformed_messages),
        cmocka_unit_test(test_unsigned_and_forged_never_reach_a_handler),
        cmocka_unit_test(test_forged_macs_never_reach_a_handler),
        cmocka_unit_test(test_handler_rows_name_their_senders),
        cmocka_unit_test(test_only_asserting_principals_name_a_caller),
        cmocka_unit_test(test_health_has_its_own_lane),
        cmocka_unit_test(test_large_messages),
        cmocka_unit_test(test_api_edges),
        cmocka_unit_test(test_close_runs_fini),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
