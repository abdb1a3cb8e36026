/* bus_rpc.c - RPC over the bus: calls with correlation ids and deadlines, answered on
 * the caller's principal's reply topic, virga.reply.<principal> (bus.h, docs/bus.md).
 * The process's reader (bus_read.c) reads that topic and hands each reply here, and
 * times calls out by the table's earliest deadline. */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_internal.h"
#include "json_scan.h"
#include "jsonutil.h"
#include "log.h"
#include "service_memory.h"

static unsigned corr_bucket(const char *corr)
{
    unsigned h = 2166136261u;
    for (; *corr; corr++)
        h = (h ^ (unsigned char)*corr) * 16777619u;
    return h % PENDING_BUCKETS;
}

/* Take the call with this correlation id out of the table; NULL when it is not there
 * (answered or timed out already, or a duplicate reply). Caller holds b->mu. */
static struct pending *pending_take(bus_t *b, const char *corr)
{
    for (struct pending **pp = &b->pending[corr_bucket(corr)]; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->corr, corr)) {
            struct pending *p = *pp;
            *pp = p->next;
            __atomic_sub_fetch(&b->calls_in_flight, 1, __ATOMIC_RELAXED);
            return p;
        }
    return NULL;
}

/* A call's failure to whichever callback it has. */
static void pending_fail(struct pending *p, const verr_t *e)
{
    if (p->text_cb)
        p->text_cb(p->arg, NULL, 0, e);
    else
        p->cb(p->arg, NULL, e);
}

static void timed_out(bus_t *b, struct pending *p)
{
    verr_t e = {0};
    bus_stat_inc(&b->stats.call_timeouts);
    verr_set(&e, 504, "RequestTimeout", "no reply from %s within %d ms", p->what, p->timeout_ms);
    pending_fail(p, &e);
    free(p);
}

/* What a reply's envelope says, read in place (json_scan.h): the body, which may be a
 * large document, is handed on as text or parsed on its own, never twice. */
struct reply {
    int seen;                  /* bits of the members met, to refuse a duplicate */
    int is_reply, ok;
    char corr[40];
    json_span_t body, error;
};

static int reply_member(void *arg, const char *key, json_span_t v)
{
    static const char *const names[] = {"type", "corr", "ok", "body", "error"};
    struct reply *r = arg;
    size_t i = 0;
    while (i < ARRAY_LEN(names) && strcmp(names[i], key))
        i++;
    if (i == ARRAY_LEN(names))
        return 0;   /* v, id, ts: not needed to deliver */
    if (r->seen & (1 << i))
        return -1;  /* two readers must not disagree on which call this answers */
    r->seen |= (1 << i);
    strbuf_t scratch = {0};
    json_span_t s = {0};
    switch (i) {
    case 0:
        r->is_reply = *v.p == '"' && json_scan_string(v.p, v.p + v.n, &scratch, &s) && s.n == 5 &&
                      !memcmp(s.p, "reply", 5);
        break;
    case 1:
        if (*v.p == '"' && json_scan_string(v.p, v.p + v.n, &scratch, &s) && s.n < sizeof r->corr &&
            !memchr(s.p, 0, s.n)) {
            memcpy(r->corr, s.p, s.n);
            r->corr[s.n] = 0;
        }
        break;
    case 2:
        r->ok = v.n == 4 && !memcmp(v.p, "true", 4);
        break;
    case 3:
        r->body = v;
        break;
    default:
        r->error = v;
    }
    free(scratch.s);
    return 0;
}

static void reply_error(json_span_t span, verr_t *e)
{
    json_t *err = span.p ? json_parse_bounded(span.p, span.n, BUS_MAX_MSG_LIMIT) : NULL;
    verr_set(e, (int)json_int(err, "status", 500), json_str(err, "code", "InternalError"), "%s",
             json_str(err, "message", "remote error"));
    json_decref(err);
}

/* An answer to the call it belongs to: its body as text or as a tree, as the call asked. */
static void answer(struct pending *p, const struct reply *r)
{
    static const char empty[] = "{}";
    json_span_t body = r->body.p ? r->body : (json_span_t){empty, 2};
    if (p->text_cb) {
        p->text_cb(p->arg, body.p, body.n, NULL);
        return;
    }
    json_error_t je;   /* any value, as the whole envelope's parse gave it; duplicates refused as there */
    json_t *tree = json_loadb(body.p, body.n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (tree) {
        p->cb(p->arg, tree, NULL);
        return;
    }
    verr_t e = {0};
    verr_set(&e, 500, "InternalError", "the reply of %s is not well-formed JSON", p->what);
    p->cb(p->arg, NULL, &e);
}

/* A reply counts only when the one called signed it: a reply topic is written by every
 * principal this one calls, and none of them may answer for another. */
static void deliver_reply(bus_t *b, const struct reply *r, const bus_principal_t *from, size_t len)
{
    const char *corr = r->corr;
    pthread_mutex_lock(&b->mu);
    struct pending *p = NULL;
    for (p = b->pending[corr_bucket(corr)]; p && strcmp(p->corr, corr); p = p->next)
        ;
    if (p && p->expect[0] && strcmp(p->expect, from->name)) {
        log_warn("bus: dropping a reply to %s signed by %s, not by %s", p->what, from->name, p->expect);
        p = NULL;
    } else if (p) {
        p = pending_take(b, corr);
    }
    pthread_mutex_unlock(&b->mu);
    if (!p)
        return;
    if (r->ok && len > b->max_msg) {   /* a sender set larger than this process: say so now */
        verr_t e = {0};
        verr_set(&e, 500, BUS_TOO_LARGE, "the reply of %s is %zu bytes, over this process's bound of %zu "
                 "(bus.max_message_bytes)", p->what, len, b->max_msg);
        pending_fail(p, &e);
    } else if (r->ok) {
        answer(p, r);
    } else {
        verr_t e = {0};
        reply_error(r->error, &e);
        pending_fail(p, &e);
    }
    free(p);
}

/* Time out every call past its deadline (all of them when closing), and note when the
 * next one will be due. The expired calls are unlinked under the lock and called back
 * outside it. */
void bus_rpc_sweep(bus_t *b, int all)
{
    int64_t now = bus_now_ms(), next = INT64_MAX;
    struct pending *expired = NULL;
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < PENDING_BUCKETS; i++)
        for (struct pending **pp = &b->pending[i]; *pp;) {
            struct pending *p = *pp;
            if (all || now >= p->deadline) {
                *pp = p->next;
                __atomic_sub_fetch(&b->calls_in_flight, 1, __ATOMIC_RELAXED);
                p->next = expired;
                expired = p;
            } else {
                if (p->deadline < next)
                    next = p->deadline;
                pp = &p->next;
            }
        }
    b->sweep_at = next;
    pthread_mutex_unlock(&b->mu);
    while (expired) {
        struct pending *p = expired;
        expired = p->next;
        timed_out(b, p);
    }
}

/* The envelope is read in place, its body not parsed here: a malformed envelope, or one
 * that is not a reply, is dropped (its call times out), as when it was parsed whole.
 * Every reply's writer puts the body last (send_reply, send_text_reply), so the body is
 * the rest of the message, not skipped over here and then read again by its consumer
 * (the gateway's XML writer, or jansson), which refuses whatever might follow it. */
void bus_rpc_on_reply(bus_t *b, const rd_kafka_message_t *m)
{
    if (m->len > BUS_MAX_MSG_LIMIT || m->len == 0)
        return;
    bus_principal_t from;
    struct reply r = {0};
    if (bus_message_sender(b, m, &from) == 0 && json_scan_members_last(m->payload, m->len, "body", reply_member, &r) == 0 &&
        r.is_reply && r.corr[0])
        deliver_reply(b, &r, &from, m->len);
    service_memory_note_message(m->len);   /* what it and its caller's answer leave: trimmed soon */
}

void bus_rpc_undeliverable(bus_t *b, const char *corr, rd_kafka_resp_err_t err)
{
    pthread_mutex_lock(&b->mu);
    struct pending *p = pending_take(b, corr);
    pthread_mutex_unlock(&b->mu);
    if (!p)
        return;   /* answered or timed out already */
    verr_t e = {0};
    if (err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
        verr_set(&e, 403, "AccessDenied", "the broker does not let principal %s send %s", b->cred.principal,
                 p->what);
    else
        verr_set(&e, 503, "ServiceUnavailable", "the bus could not deliver %s: %s", p->what, rd_kafka_err2str(err));
    pending_fail(p, &e);
    free(p);
}

static int call_async(bus_t *b, const char *service, const char *type, json_t *body, const json_t *caller,
                      int timeout_ms, bus_reply_fn cb, bus_text_reply_fn text_cb, void *arg, verr_t *e)
{
    if (timeout_ms <= 0)
        timeout_ms = 5000;
    int rc = bus_read_replies(b, e);
    if (rc < 0) {
        json_decref(body);
        return -1;
    }
    bus_stat_inc(&b->stats.calls);

    char topic[256];
    if (strchr(service, '.'))
        snprintf(topic, sizeof topic, "%s", service);
    else
        snprintf(topic, sizeof topic, "virga.rpc.%s", service);

    int64_t deadline = bus_now_ms() + timeout_ms;
    json_t *env = bus_envelope(type, body, caller);
    json_object_set_new(env, "reply_to", json_string(b->reply_topic));
    json_object_set_new(env, "deadline", json_integer(deadline));

    /* in the table before the request leaves, so no reply can arrive unexpected */
    struct pending *p = xcalloc(1, sizeof *p);
    snprintf(p->corr, sizeof p->corr, "%s", json_str(env, "id", ""));
    snprintf(p->what, sizeof p->what, "%s to %s", service, type);
    bus_topic_server(topic, p->expect);
    p->deadline = deadline;
    p->timeout_ms = timeout_ms;
    p->cb = cb;
    p->text_cb = text_cb;
    p->arg = arg;
    unsigned h = corr_bucket(p->corr);
    char corr[40];
    memcpy(corr, p->corr, sizeof corr);
    pthread_mutex_lock(&b->mu);
    p->next = b->pending[h];
    b->pending[h] = p;
    __atomic_add_fetch(&b->calls_in_flight, 1, __ATOMIC_RELAXED);
    if (deadline < b->sweep_at)
        b->sweep_at = deadline;
    pthread_mutex_unlock(&b->mu);
    bus_read_deadline(b, deadline);

    rc = bus_produce(b, topic, -1, env, corr, e);
    json_decref(env);
    if (rc < 0) {
        /* not sent: take the call back unless the deadline sweep already has it
         * (then cb runs with RequestTimeout, as promised once we return 0) */
        pthread_mutex_lock(&b->mu);
        struct pending *mine = pending_take(b, corr);
        pthread_mutex_unlock(&b->mu);
        if (!mine)
            return 0;
        free(mine);
        return -1;
    }
    return 0;
}

int bus_call_async(bus_t *b, const char *service, const char *type, json_t *body,
                   const json_t *caller, int timeout_ms, bus_reply_fn cb, void *arg, verr_t *e)
{
    return call_async(b, service, type, body, caller, timeout_ms, cb, NULL, arg, e);
}

int bus_call_async_text(bus_t *b, const char *service, const char *type, json_t *body,
                        const json_t *caller, int timeout_ms, bus_text_reply_fn cb, void *arg, verr_t *e)
{
    return call_async(b, service, type, body, caller, timeout_ms, NULL, cb, arg, e);
}

/* bus_call is bus_call_async plus a wait: one pending table, one delivery path. */
struct bus_pending {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    json_t *reply;
    verr_t err;
};

static void pending_done(void *arg, json_t *reply, const verr_t *err)
{
    bus_pending_t *pc = arg;
    pthread_mutex_lock(&pc->mu);
    pc->reply = reply;
    if (err)
        pc->err = *err;
    pc->done = 1;
    pthread_cond_signal(&pc->cv);
    pthread_mutex_unlock(&pc->mu);
}

static void pending_free(bus_pending_t *pc)
{
    pthread_mutex_destroy(&pc->mu);
    pthread_cond_destroy(&pc->cv);
    free(pc);
}

bus_pending_t *bus_call_start(bus_t *b, const char *service, const char *type, json_t *body,
                              const json_t *caller, int timeout_ms, verr_t *e)
{
    bus_pending_t *pc = xcalloc(1, sizeof *pc);
    pthread_mutex_init(&pc->mu, NULL);
    pthread_cond_init(&pc->cv, NULL);
    if (bus_call_async(b, service, type, body, caller, timeout_ms, pending_done, pc, e) < 0) {
        pending_free(pc);
        return NULL;
    }
    return pc;
}

int bus_call_finish(bus_pending_t *pc, json_t **reply, verr_t *e)
{
    *reply = NULL;
    /* the reply loop calls back by the deadline (or bus_close does) */
    pthread_mutex_lock(&pc->mu);
    while (!pc->done)
        pthread_cond_wait(&pc->cv, &pc->mu);
    pthread_mutex_unlock(&pc->mu);
    int rc = 0;
    if (pc->reply)
        *reply = pc->reply;
    else {
        if (e)
            *e = pc->err;
        rc = -1;
    }
    pending_free(pc);
    return rc;
}

int bus_call(bus_t *b, const char *service, const char *type, json_t *body,
             const json_t *caller, int timeout_ms, json_t **reply, verr_t *e)
{
    *reply = NULL;
    bus_pending_t *pc = bus_call_start(b, service, type, body, caller, timeout_ms, e);
    return pc ? bus_call_finish(pc, reply, e) : -1;
}
