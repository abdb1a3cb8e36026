/* fanout.c - several bus calls for one request at once, none holding a thread: the
 * request is suspended (gw_defer), every call goes out with bus_call_async, and the
 * last answer to arrive (or the last send to fail) runs the continuation. Local actions
 * that need other services (DescribeAccountAttributes, the tag actions) are built on it
 * (gateway.h). */
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "log.h"

struct fanout {
    gw_req_t *r;
    gw_fanout_fn done;
    void *arg;
    size_t n;
    int left;                 /* answers still to come, plus one while sending */
    json_t **replies;
    verr_t *errs;
};

struct one {
    struct fanout *f;
    size_t i;
};

static void release(struct fanout *f)
{
    if (__atomic_sub_fetch(&f->left, 1, __ATOMIC_ACQ_REL))
        return;
    log_set_request_id(f->r->http->request_id);
    f->done(f->r, f->arg, f->replies, f->errs, f->n);
    log_set_request_id(NULL);
    free(f->replies);
    free(f->errs);
    free(f);
}

static void one_done(void *arg, json_t *reply, const verr_t *err)
{
    struct one *o = arg;
    struct fanout *f = o->f;
    if (err)
        f->errs[o->i] = *err;
    else
        f->replies[o->i] = reply;
    free(o);
    release(f);
}

void gw_fanout(gw_req_t *r, size_t n, const char *const *services, const char *const *types, json_t **bodies,
               gw_fanout_fn done, void *arg)
{
    gw_fanout_within(r, r->gw->call_timeout_ms, n, services, types, bodies, done, arg);
}

void gw_fanout_within(gw_req_t *r, int timeout_ms, size_t n, const char *const *services, const char *const *types,
                      json_t **bodies, gw_fanout_fn done, void *arg)
{
    struct fanout *f = xcalloc(1, sizeof *f);
    *f = (struct fanout){.r = r, .done = done, .arg = arg, .n = n, .left = (int)n + 1,
                         .replies = xcalloc(n + 1, sizeof *f->replies), .errs = xcalloc(n + 1, sizeof *f->errs)};
    gw_defer(r);
    json_t *caller = gw_bus_caller(r);
    for (size_t i = 0; i < n; i++) {
        struct one *o = xmalloc(sizeof *o);
        *o = (struct one){f, i};
        if (bus_call_async(r->svc->bus, services[i], types[i], bodies[i], caller, timeout_ms, one_done, o,
                           &f->errs[i]) < 0) {
            free(o);
            release(f);
        }
    }
    json_decref(caller);
    release(f);   /* the sender's own count: done runs once everything is in */
}
