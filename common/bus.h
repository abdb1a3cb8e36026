/* bus.h - the Kafka-protocol message bus (librdkafka): publish, serve a topic with a
 * consumer group and a message-type -> handler table, and RPC with correlation ids,
 * deadlines and a per-process reply topic.
 *
 * Every message is one JSON envelope:
 *   {"v":1, "id":"<msg id>", "type":"identity.health", "corr":"<corr id>",
 *    "reply_to":"virga.reply.<...>", "deadline":<unix ms>, "caller":{...}, "body":{...}}
 * A reply has type "reply", corr = the request's id, and either "ok":true + "body" or
 * "ok":false + "error":{"code","message","status"}.
 *
 * Every message is signed by its sender, a principal (bus_auth.h): a receiver drops what
 * does not verify, serves a message type only to the principals its table row names,
 * and believes the tenant `caller` only from principals that may assert one.
 *
 * The bus is a doorbell, not a log: a message may be lost, duplicated or reordered.
 * Handlers are idempotent, requests past their deadline are dropped unprocessed, and
 * callers see a clear RequestTimeout instead of hanging. */
#ifndef VIRGA_BUS_H
#define VIRGA_BUS_H

#include <jansson.h>
#include <stdint.h>

#include "bus_auth.h"
#include "config.h"
#include "err.h"
#include "strbuf.h"

typedef struct bus bus_t;

/* A received request, valid for the duration of the handler call. */
typedef struct bus_msg {
    const char *id;
    const char *type;
    const char *reply_to;      /* NULL for events */
    int64_t deadline_ms;       /* 0 = none */
    const json_t *caller;      /* {"account":..,"user":..,"request_id":..} or NULL; only ever
                                  set from a principal that may assert one */
    const json_t *body;
    const bus_principal_t *from;   /* who sent it, checked by its signature */
} bus_msg_t;

/* What a handler gets: the bus (to call other services), the message, the state its
 * worker thread owns (e.g. a db_t), and the service's shared state. */
typedef struct bus_ctx {
    bus_t *bus;
    const bus_msg_t *msg;
    void *worker;
    void *app;
    struct job *job;           /* bus_ask's state (bus_serve.c) */
    int waiting;               /* the handler asked and waits: it runs again with the answer */
    char *reply_text;          /* bus_reply_text's buffer (room, body, '}'), sent instead of *reply */
    size_t reply_len;
    void (*reply_free)(void *);   /* how reply_text is freed: free, or bigbuf_free (bigbuf.h) */
} bus_ctx_t;

/* A handler's answer already written as JSON text (a DescribeInstances page, written
 * straight from its rows without a tree): the handler begins an empty buffer with
 * bus_reply_text_start, appends one JSON value, and hands the buffer over with
 * bus_reply_text (it is taken: *b is left empty). It is sent as the reply's body when the
 * handler returns 0, in place of *reply (which it leaves NULL); freed unsent if it fails.
 * The writer vouches for the text: it is not parsed again before it goes.
 * The envelope is written around the body in that same buffer, in the room left at its
 * start: a page of 1,000 instances (1.4 MB) is not copied into a new buffer on its way
 * to the bus (each fresh megabyte is also page faults: docs/performance.md, page8). The
 * buffer may be a bigbuf.h one (on huge pages): it is freed as such once the broker has it. */
#define BUS_REPLY_ROOM 192
void bus_reply_text_start(strbuf_t *b);
void bus_reply_text(bus_ctx_t *ctx, strbuf_t *b);

/* Return 0 and set *reply (a new reference, or leave NULL for {}), or -1 with err set. */
typedef int (*bus_handler_fn)(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *err);

/* One message type: its handler and who may send it (BUS_P_* bits, bus_auth.h). A
 * message from anyone else is answered AccessDenied without reaching the handler; a row
 * with from == 0 is refused by bus_serve, so every row says. */
typedef struct bus_route {
    const char *type;
    bus_handler_fn fn;
    unsigned from;
} bus_route_t;

/* Per-worker state: init returns what handlers see as ctx->worker; fini frees it. */
typedef void *(*bus_worker_init_fn)(void *app);
typedef void (*bus_worker_fini_fn)(void *worker);

#define BUS_MAX_WORKERS 64

typedef struct bus_serve_opts {
    const char *topic;            /* e.g. "virga.rpc.identity" */
    const char *group;            /* consumer group, e.g. "identity" */
    const bus_route_t *routes;    /* terminated by {NULL, NULL, 0} */
    int workers;                  /* handler threads: 1..BUS_MAX_WORKERS, 0 = 4; sys.health
                                     has a thread of its own besides (its own lane) */
    bus_worker_init_fn worker_init;
    bus_worker_fini_fn worker_fini;
    void *app;
} bus_serve_opts_t;

/* Connect using config keys bus.brokers, bus.fetch_wait_ms, bus.session_timeout_ms,
 * bus.idle_poll_ms, the
 * security settings (bus.security_protocol, bus.sasl_mechanism, bus.ssl_ca_file) and this
 * process's credential: bus.credential_file, else <bus.credentials_dir>/<principal>.cred
 * with the principal bus.principal, else name; the public keys from bus.principals_file
 * (default <bus.credentials_dir>/principals.json). name identifies the process in logs. */
bus_t *bus_open(const config_t *cfg, const char *name, verr_t *e);
/* The same for a bus that only publishes (bus_publish: no calls, replies or serving),
 * such as the network's extra producers of host documents: one producer, the batching
 * one, without the linger-0 producer for lone calls and replies, which such a bus never
 * uses and which is a librdkafka client of its own (threads, buffers: docs/bus.md). */
bus_t *bus_open_publisher(const config_t *cfg, const char *name, verr_t *e);
/* The principal this process is on the bus. */
const char *bus_principal(const bus_t *b);

/* The largest message the bus carries (bus.max_message_bytes, default 4 MiB): a sender
 * whose answer can grow (a page of a listing) cuts it below this. A message over it is
 * refused at once with the error code BUS_TOO_LARGE; a reply that is, is answered with
 * that error instead (the caller hears why, at once, rather than timing out). */
size_t bus_max_message_bytes(const bus_t *b);
/* The same from a config, before any bus is open (virga-busctl sets the topics' bound from
 * it); clients and topics are set BUS_MSG_SLACK above it, for headers and framing. */
size_t bus_max_message_config(const config_t *cfg);
#define BUS_MSG_SLACK (64 * 1024)
#define BUS_TOO_LARGE "InternalError"
/* Stop serving (finishing handlers in flight), then free. NULL is a no-op. */
void bus_close(bus_t *b);
/* Stop consuming the served topic and the broadcast listener: the handlers in flight
 * and those already queued finish, their worker_fini runs, and no handler or listener
 * callback starts after this returns. Calls (bus_call, bus_call_async) and publishing
 * keep working until bus_close, so a service can stop taking work, then wait for its
 * own calls in flight, then free what its handlers used. Idempotent; NULL is a no-op. */
void bus_stop_serving(bus_t *b);

/* Start consuming opts->topic in the background. May be called once per bus_t. Every
 * thread it needs is started, or none (-1 with e set: InvalidParameterValue for a
 * worker count out of range, ServiceUnavailable when a thread cannot be created). */
int bus_serve(bus_t *b, const bus_serve_opts_t *opts, verr_t *e);
/* 1 once the consumer group has given this process partitions to serve. */
int bus_serving(bus_t *b);

/* Make sure this process reads its reply topic (bus_read.c): every call does it
 * before its request leaves, the first one at the cost of a consumer and its
 * connection (about a second); service_main does it right after a start so that the
 * first request does not pay. 0, or -1 with e set (the next call tries again). */
int bus_read_replies(bus_t *b, verr_t *e);

/* RPC to "virga.rpc.<service>" (or to a full topic name if service contains a '.').
 * body is stolen (may be NULL). caller may be NULL. On success *reply is a new
 * reference to the reply body, signed by the service called ("agent-<host>" for
 * virga.host.<host>). On failure e carries the remote error, AccessDenied (403) when
 * the broker does not let this principal write to the topic, or RequestTimeout (504)
 * when no reply came within timeout_ms. */
int bus_call(bus_t *b, const char *service, const char *type, json_t *body,
             const json_t *caller, int timeout_ms, json_t **reply, verr_t *e);

/* bus_call in two halves, for a thread that has other work meanwhile (a task asking two
 * services at once): bus_call_start sends the request (NULL with e set when it could not
 * be sent), bus_call_finish waits for its answer as bus_call would and frees the call.
 * Every started call must be finished exactly once. body is stolen; caller may be NULL. */
typedef struct bus_pending bus_pending_t;
bus_pending_t *bus_call_start(bus_t *b, const char *service, const char *type, json_t *body,
                              const json_t *caller, int timeout_ms, verr_t *e);
int bus_call_finish(bus_pending_t *pc, json_t **reply, verr_t *e);

/* What an asynchronous call delivers: reply (a new reference the callback owns) with
 * err NULL, or reply NULL with err set (the remote error, or RequestTimeout 504). */
typedef void (*bus_reply_fn)(void *arg, json_t *reply, const verr_t *err);

/* bus_call without the wait. Returns 0 when the request is out: cb(arg, ...) then runs
 * exactly once, on one of the bus's threads, when the reply arrives, when the broker
 * refuses the request, at timeout_ms, or from bus_close for calls still in flight. cb
 * must not block: it holds up every other reply and broadcast of this bus (they share
 * the process's one reader thread). Returns -1 with e set when the request could not be
 * sent; cb is then never called. body is stolen; caller may be NULL. */
int bus_call_async(bus_t *b, const char *service, const char *type, json_t *body,
                   const json_t *caller, int timeout_ms, bus_reply_fn cb, void *arg, verr_t *e);

/* bus_call_async for a caller that turns a large reply into something else (the gateway:
 * XML) and needs no tree of it: cb gets the reply's body as the JSON text the service
 * sent ("{}" when it sent none), valid only during the call, or NULL with err. The text
 * is only framed here (its grammar checked as json_scan_skip does): reading it is the
 * caller's, who must refuse what is not well-formed (json_scan.h, json_xml.h do). The
 * rest is bus_call_async's contract. */
typedef void (*bus_text_reply_fn)(void *arg, const char *body, size_t len, const verr_t *err);
int bus_call_async_text(bus_t *b, const char *service, const char *type, json_t *body,
                        const json_t *caller, int timeout_ms, bus_text_reply_fn cb, void *arg, verr_t *e);

/* Asking another service from a handler without holding its worker: when this message
 * already had the answer to this question (service, type, body), 0 with *reply (a new
 * reference, or NULL) or -1 with the remote error; else the call is sent and -1 comes
 * back with ctx->waiting set: the handler unwinds as on an error (nothing is answered,
 * nothing is counted), the worker takes other messages, and when the answer comes (or
 * the call times out) the message is queued again and the handler runs again from its
 * start, where the same bus_ask answers. So a handler must ask before it writes, and a
 * message may be handled a few times. body is stolen. */
int bus_ask(bus_ctx_t *ctx, const char *service, const char *type, json_t *body, int timeout_ms,
            json_t **reply, verr_t *e);
/* bus_ask with a caller (who the question is asked as: the other service decides by it,
 * as for bus_call); the answer is kept per caller. */
int bus_ask_as(bus_ctx_t *ctx, const char *service, const char *type, json_t *body, const json_t *caller,
               int timeout_ms, json_t **reply, verr_t *e);

/* A question that this process answers itself (a thread of its own fetching what the
 * handler needs), with bus_ask's contract: the kept answer to key (0 with *reply, or -1),
 * or -1 with ctx->waiting set after start(arg, w) was called, which must lead to exactly
 * one bus_answer(w, ...) from any thread, at once or later; the message is then queued
 * again and the handler runs from its start. */
typedef struct bus_waiter bus_waiter_t;
int bus_await(bus_ctx_t *ctx, const char *key, void (*start)(void *arg, bus_waiter_t *w), void *arg, json_t **reply,
              verr_t *e);
/* The answer to an awaited question: reply (stolen, may be NULL) or err. */
void bus_answer(bus_waiter_t *w, json_t *reply, const verr_t *err);
/* Whether an earlier run of this handler for this message was answered on key (by
 * bus_await or bus_ask): 1 with *reply (a new reference, or NULL) or 1 with e set for a
 * kept error, else 0, and nothing is asked. For a handler that writes, then waits: its
 * next run must find what the first one wrote rather than write it again. */
int bus_kept(bus_ctx_t *ctx, const char *key, json_t **reply, verr_t *e);

/* Broadcast listening: every process that listens sees every message published to
 * topic from now on (no consumer group: all partitions assigned, starting at the end).
 * For cache invalidation events; fn's reply is ignored. One listener per bus_t. fn runs
 * on the thread that also delivers this process's replies (one reader per process, for
 * less idle cost): it must not block, and must not make a synchronous bus_call. */
int bus_listen(bus_t *b, const char *topic, bus_handler_fn fn, void *app, verr_t *e);

/* Fire-and-forget message (events, usage doorbells, agent commands). body is stolen. */
int bus_publish(bus_t *b, const char *topic, const char *type, json_t *body, verr_t *e);

/* Publish n messages to topic, each with its Kafka key (consumers dedupe by it, and a
 * key's messages stay in one partition), and wait for the broker to acknowledge them
 * all (acks=all; at most bus.message_timeout_ms, after which librdkafka gives up). 0 with *acked = n when all were written; -1 with e
 * set (ServiceUnavailable) and *acked = 0 otherwise: some may still have been written,
 * so the caller sends them again later (at least once). bodies are not stolen. Must not
 * run on a bus thread. For an outbox (accounting's usage records). */
int bus_publish_acked(bus_t *b, const char *topic, const char *type, size_t n, const char *const *keys,
                      json_t *const *bodies, size_t *acked, verr_t *e);

/* Statistics for benchmarks and /metrics. */
typedef struct bus_stats {
    uint64_t calls, call_timeouts, served, expired, handler_errors;
    uint64_t rejected;   /* received messages dropped: unsigned, unknown or forged sender */
} bus_stats_t;
void bus_get_stats(bus_t *b, bus_stats_t *out);
/* Per message type served: virga_bus_handled_total, virga_bus_failed_total and the
 * histograms virga_bus_queue_wait_seconds (received to picked up by a worker) and
 * virga_bus_handler_seconds, labelled service and type, in Prometheus' text format
 * (nothing before bus_serve). */
struct strbuf;
void bus_metrics_render(bus_t *b, struct strbuf *out);

#endif
