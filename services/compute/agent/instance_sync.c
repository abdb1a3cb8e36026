/* instance_sync.c - the instance loop (instance_sync.h): one thread that, when woken
 * (agent.instances_changed, the timer, a job's end), pulls the desired instances or
 * applies a doorbell's changes to the document it holds, plans jobs for what differs
 * from what the drivers list, and reports what they list. */
#include "instance_sync.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadline.h"
#include "instance_sync_int.h"
#include "jsonutil.h"
#include "log.h"
#include "vm_spec.h"
#include "vm_state.h"

#define log_info(...) vlog(LOG_INFO, __VA_ARGS__)
#define log_warn(...) vlog(LOG_WARN, __VA_ARGS__)

inst_t *sync_inst(instance_sync_t *s, const char *id)
{
    for (size_t i = 0; i < s->n_inst; i++)
        if (!strcmp(s->inst[i].id, id))
            return &s->inst[i];
    s->inst = xrealloc(s->inst, (s->n_inst + 1) * sizeof *s->inst);
    inst_t *in = &s->inst[s->n_inst++];
    memset(in, 0, sizeof *in);
    snprintf(in->id, sizeof in->id, "%s", id);
    return in;
}

/* What one driver lists, tagged with the driver. */
typedef struct seen {
    vm_status_t st;
    size_t drv;
    int desired;
} seen_t;

/* *failed: some driver could not list (a public cloud that did not answer). */
static seen_t *observe(instance_sync_t *s, size_t *n, int *failed)
{
    seen_t *v = NULL;
    *n = 0;
    *failed = 0;
    for (size_t d = 0; d < s->n_drv; d++) {
        vm_status_t *l = NULL;
        size_t k = 0;
        verr_t e;
        if (vm_driver_list(s->drv[d], &l, &k, &e) < 0) {
            log_warn("list %s: %s %s", s->drv_name[d], e.code, e.message);
            *failed = 1;
            continue;
        }
        v = xrealloc(v, (*n + k + 1) * sizeof *v);
        for (size_t i = 0; i < k; i++)
            v[(*n)++] = (seen_t){.st = l[i], .drv = d};
        free(l);
    }
    return v;
}

static seen_t *find_seen(seen_t *v, size_t n, size_t drv, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].drv == drv && !strcmp(v[i].st.id, id))
            return &v[i];
    return NULL;
}

/* An instance compute wants but the agent cannot take as asked (a malformed spec, a
 * driver not offered) is left alone, never removed for it. */
static void keep_listed(seen_t *v, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].st.id, id))
            v[i].desired = 1;
}

static int drv_index(instance_sync_t *s, const char *name)
{
    for (size_t d = 0; d < s->n_drv; d++)
        if (!strcmp(s->drv_name[d], name))
            return (int)d;
    return -1;
}

/* Does the instance need an ensure, and is it a boot? (0: nothing, 1: light, 2: boot) */
static int needs(const vm_spec_t *sp, const seen_t *x)
{
    int up = sp->power == VM_POWER_RUNNING;
    if (!x || x->st.power == VM_POWER_ERROR)
        return up ? 2 : 1;
    if (up && (x->st.power != VM_POWER_RUNNING || sp->reboot_seq > x->st.reboot_seq))
        return 2;
    if (up && x->st.nics_known && x->st.nics_sig != vm_spec_nics_sig(sp))
        return 1;   /* an interface to plug in or take out (qemu) */
    if (!up && (x->st.power != VM_POWER_STOPPED || sp->reboot_seq > x->st.reboot_seq))
        return 1;
    return 0;
}

/* Plan against the desired document (mu held): jobs for what differs, removals for what
 * is listed and not desired. Specs the agent cannot take get an error record. */
static void plan(instance_sync_t *s, const json_t *doc, seen_t *seen, size_t n_seen)
{
    int64_t now = vm_now_ms();
    for (size_t i = 0; i < s->n_inst; i++)
        s->inst[i].mark = s->inst[i].wanted_up = 0;
    const json_t *arr = json_object_get(doc, "instances");
    size_t i;
    const json_t *it;
    json_array_foreach(arr, i, it) {
        vm_spec_t sp;
        verr_t e;
        if (vm_spec_parse(it, &sp, &e) < 0) {
            const char *id = json_str(it, "instance_id", NULL);
            log_warn("desired instance %s: %s", id ? id : "?", e.message);
            if (vm_id_valid(id)) {
                keep_listed(seen, n_seen, id);
                inst_t *in = sync_inst(s, id);
                in->mark = 1;
                in->plan_error = 1;
                snprintf(in->error, sizeof in->error, "%s: %s", e.code, e.message);
            }
            continue;
        }
        inst_t *in = sync_inst(s, sp.id);
        in->mark = 1;
        int d = drv_index(s, sp.driver);
        if (d < 0) {
            snprintf(in->error, sizeof in->error, "InvalidParameterValue: driver '%s' is not offered by this host",
                     sp.driver);
            keep_listed(seen, n_seen, sp.id);
            in->plan_error = 1;
            vm_spec_clear(&sp);
            continue;
        }
        if (in->plan_error) {
            in->plan_error = 0;
            in->error[0] = 0;
        }
        in->wanted_up = sp.power == VM_POWER_RUNNING;
        seen_t *x = find_seen(seen, n_seen, (size_t)d, sp.id);
        if (x)
            x->desired = 1;
        int k = needs(&sp, x);
        if (!k || in->job || in->not_before_ms > now) {
            vm_spec_clear(&sp);
            continue;
        }
        job_t *j = xcalloc(1, sizeof *j);
        j->drv = s->drv[d];
        j->boot = k == 2;
        j->spec = sp;   /* the job owns the URLs now */
        snprintf(j->id, sizeof j->id, "%s", sp.id);
        sync_job_queue(s, j);
    }
    for (size_t k = 0; k < n_seen; k++) {
        inst_t *in = sync_inst(s, seen[k].st.id);
        in->mark = 1;
        if (seen[k].desired || in->job || in->not_before_ms > now)
            continue;
        job_t *j = xcalloc(1, sizeof *j);
        j->drv = s->drv[seen[k].drv];
        j->remove = 1;
        snprintf(j->id, sizeof j->id, "%s", seen[k].st.id);
        sync_job_queue(s, j);
    }
    /* a boot whose instance is no longer wanted running (terminated or stopped while it
     * boots) stops waiting for the guest, so its stop or removal runs now (vm_spec_t's
     * abandon): only the next job may touch the instance */
    for (size_t k = 0; k < s->n_inst; k++)
        if (s->inst[k].job && s->inst[k].job->boot && !s->inst[k].wanted_up)
            atomic_store(&s->inst[k].job->abandon, 1);
    /* forget what is neither desired, listed nor being worked on */
    for (size_t k = 0; k < s->n_inst;) {
        if (!s->inst[k].mark && !s->inst[k].job)
            s->inst[k] = s->inst[--s->n_inst];
        else
            k++;
    }
}

/* One reported instance, before its console is read. */
typedef struct row {
    char id[VM_ID_MAX];
    int drv;                  /* -1: not listed by any driver */
    vm_power_t power;
    uint64_t reboot_seq;
    char error[600];
    int failed;               /* the driver said the error is permanent */
    uint64_t console_seq;
    int console_sent;         /* this report carries the console */
    vm_remote_t remote;
} row_t;

static int desired_has(const instance_sync_t *s, const char *id)
{
    size_t i;
    const json_t *it;
    json_array_foreach(json_object_get(s->desired, "instances"), i, it)
        if (!strcmp(json_str(it, "instance_id", ""), id))
            return 1;
    return 0;
}

static row_t *rows_of(instance_sync_t *s, seen_t *seen, size_t n_seen, size_t *n, int force)
{
    row_t *r = xcalloc(n_seen + s->n_inst + 1, sizeof *r);
    *n = 0;
    for (size_t k = 0; k < n_seen; k++) {
        row_t *x = &r[(*n)++];
        snprintf(x->id, sizeof x->id, "%s", seen[k].st.id);
        x->drv = (int)seen[k].drv;
        x->power = seen[k].st.power;
        x->reboot_seq = seen[k].st.reboot_seq;
        x->remote = seen[k].st.remote;
        snprintf(x->error, sizeof x->error, "%s", seen[k].st.error);
        inst_t *in = sync_inst(s, x->id);
        /* A listing taken while a job works on the instance (queued or running) is not
         * proof that it runs: a container's start has its init in the cgroup before that
         * init fails (a root file system without /proc), and compute, told `running`,
         * took a launch that never booted for running. Its job's end says. */
        if (in->job && x->power == VM_POWER_RUNNING && in->error[0])
            x->power = VM_POWER_STARTING;
        /* the last failure is said; a running instance stays running */
        if (in->error[0]) {
            snprintf(x->error, sizeof x->error, "%s", in->error);
            x->failed = in->permanent;
            if (x->power != VM_POWER_RUNNING)
                x->power = in->transient ? VM_POWER_STARTING : VM_POWER_ERROR;
        }
    }
    /* desired instances that no driver lists yet: failed, or being made. One being made
     * tells compute nothing (it acts on running, stopped, absent and errors), and said at
     * every launch's doorbell it was most of the reports, so it is said only when not
     * desired (a removal under way: not yet absent for compute); one that waits (503,
     * NetworkNotReady: the datapath's doorbell and compute's race at every launch) only
     * in the timer's report, so a wait that lasts still shows */
    for (size_t i = 0; i < s->n_inst; i++) {
        inst_t *in = &s->inst[i];
        int listed = 0;
        for (size_t k = 0; k < n_seen && !listed; k++)
            listed = !strcmp(seen[k].st.id, in->id);
        if (listed || (!in->job && !in->error[0]) ||
            ((!in->error[0] || (in->transient && !force)) && desired_has(s, in->id)))
            continue;
        row_t *x = &r[(*n)++];
        snprintf(x->id, sizeof x->id, "%s", in->id);
        x->drv = -1;
        x->power = in->error[0] && !in->transient ? VM_POWER_ERROR : VM_POWER_STARTING;
        snprintf(x->error, sizeof x->error, "%s", in->error);
        x->failed = in->error[0] && in->permanent;
    }
    return r;
}

/* The console's tail when it changed since compute acknowledged sent bytes: its length
 * is asked first (nothing read), the text only then. */
static int console_changed(vm_driver_t *d, const char *id, uint64_t sent, size_t budget, char **buf, size_t *len,
                           uint64_t *total)
{
    verr_t e;
    if (vm_driver_console(d, id, 0, buf, len, total, &e) < 0)
        return 0;
    free(*buf);
    *buf = NULL;
    if (*total == sent)
        return 0;
    return vm_driver_console(d, id, budget < VM_CONSOLE_MAX ? budget : VM_CONSOLE_MAX, buf, len, total, &e) == 0;
}

#define CONSOLE_GAP_MS 1000
#define BUSY_GAP_MS 20

/* Build and send compute.instances_observed (one-way: its seq orders it). Consoles go
 * only when they changed since the last sent (or since the one compute has, per the last
 * pull), within console_budget bytes per report (the rest
 * follow in the next reports), so a report stays far below the bus's message size. */
static void report(instance_sync_t *s, seen_t *seen, size_t n_seen, int incomplete, int force)
{
    pthread_mutex_lock(&s->mu);
    size_t n = 0;
    row_t *r = rows_of(s, seen, n_seen, &n, force);
    int64_t gen = s->generation;
    /* numbered above every earlier report, this process's and (after the first pull)
     * its predecessors': the clock in microseconds when it is ahead */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t seq = s->report_seq + 1, now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    s->report_seq = seq = seq > now_us ? seq : now_us;
    uint64_t *sent = xcalloc(n + 1, sizeof *sent);
    for (size_t i = 0; i < n; i++)
        sent[i] = sync_inst(s, r[i].id)->console_sent;
    pthread_mutex_unlock(&s->mu);

    json_t *list = json_array();
    size_t budget = s->console_budget;
    int consoles = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_pack("{s:s, s:s, s:I}", "instance_id", r[i].id, "power", vm_power_name(r[i].power),
                              "reboot_seq", (json_int_t)r[i].reboot_seq);
        if (r[i].drv >= 0)
            json_object_set_new(o, "driver", json_string(s->drv_name[r[i].drv]));
        if (r[i].error[0])
            json_object_set_new(o, "error", json_string(r[i].error));
        if (r[i].failed)   /* added: compute ends the launch (docs/hybrid.md) */
            json_object_set_new(o, "failed", json_true());
        if (r[i].remote.id[0])
            json_object_set_new(o, "remote", json_pack("{s:s, s:s, s:s, s:s}", "id", r[i].remote.id, "public_ip",
                                                       r[i].remote.public_ip, "private_ip", r[i].remote.private_ip,
                                                       "state", r[i].remote.state));
        json_array_append(list, o);
        char *buf = NULL;
        size_t len = 0;
        uint64_t total = 0;
        if (r[i].drv >= 0 && budget > 0 &&
            console_changed(s->drv[r[i].drv], r[i].id, sent[i], budget, &buf, &len, &total)) {
            size_t blen = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
            char *b64 = xmalloc(blen);
            sodium_bin2base64(b64, blen, (const unsigned char *)buf, len, sodium_base64_VARIANT_ORIGINAL);
            json_object_set_new(o, "console", json_string(b64));
            json_object_set_new(o, "console_seq", json_integer((json_int_t)total));
            free(b64);
            r[i].console_seq = total;
            r[i].console_sent = 1;
            budget -= len < budget ? len : budget;
            consoles = 1;
        }
        free(buf);
        json_decref(o);
    }
    free(sent);
    /* A report that says what the last one said is not sent again, but on the timer's
     * pass (a report lost: they get no reply): each doorbell's and job's pass reports,
     * and one-way reports are no longer spaced by compute's round trip, so without this
     * a launch and its terminate sent four where the calls had been one or two. */
    unsigned char digest[crypto_generichash_BYTES];
    {
        JSON_AUTO json_t *what = json_pack("{s:o, s:b}", "instances", json_deep_copy(list), "incomplete", incomplete);
        json_t *it;
        size_t k;
        json_array_foreach(json_object_get(what, "instances"), k, it) {   /* without the consoles */
            json_object_del(it, "console");
            json_object_del(it, "console_seq");
        }
        AUTOFREE char *text = json_dumps(what, JSON_COMPACT | JSON_SORT_KEYS);
        crypto_generichash(digest, sizeof digest, (const unsigned char *)text, strlen(text), NULL, 0);
    }
    /* One that has only new console text goes at most once a CONSOLE_GAP_MS (a guest's
     * first lines come in a burst after it runs), and while other jobs run (a burst of
     * launches or terminates) one with news at most once a BUSY_GAP_MS: what is held
     * back goes then, with what came meanwhile. A lone launch's news goes at once. */
    int64_t now = vm_now_ms(), gap = 0;
    int same = !memcmp(digest, s->reported, sizeof digest);
    pthread_mutex_lock(&s->mu);
    int others = s->running > 0 || s->q_head;
    pthread_mutex_unlock(&s->mu);
    if (same)
        gap = consoles ? CONSOLE_GAP_MS : -1;
    else if (others)
        gap = BUSY_GAP_MS;
    if (!force && (gap < 0 || now - s->reported_ms < gap)) {
        if (gap > 0) {
            pthread_mutex_lock(&s->mu);
            if (!s->report_at_ms || s->reported_ms + gap < s->report_at_ms)
                s->report_at_ms = s->reported_ms + gap;
            pthread_mutex_unlock(&s->mu);
        }
        json_decref(list);
        free(r);
        return;
    }
    verr_t e;
    json_t *body = json_pack("{s:I, s:I, s:o}", "generation", (json_int_t)gen, "seq", (json_int_t)seq, "instances",
                             list);
    if (incomplete)   /* what no driver lists is not proven gone */
        json_object_set_new(body, "incomplete", json_true());
    if (s->io.observed(s->io.arg, body, &e) < 0) {
        log_warn("instances_observed: %s %s", e.code, e.message);
    } else {
        log_debug("report %lld sent: %zu instance(s)%s", (long long)seq, n, force ? " (pull)" : "");
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < n; i++)
            if (r[i].console_sent)
                sync_inst(s, r[i].id)->console_sent = r[i].console_seq;
        pthread_mutex_unlock(&s->mu);
        memcpy(s->reported, digest, sizeof digest);
        s->reported_ms = now;
    }
    free(r);
}

enum pass_mode { PASS_REPORT, PASS_PLAN, PASS_PULL };

/* Pull the desired document (pass_mu held). Without it nothing is removed: the document
 * held stays (or none, before the first pull) and the pass only plans what it has. */
static int pull(instance_sync_t *s)
{
    json_t *doc = NULL;
    verr_t e;
    pthread_mutex_lock(&s->mu);
    s->pulled_ms = vm_now_ms();
    pthread_mutex_unlock(&s->mu);
    if (s->io.desired(s->io.arg, &doc, &e) < 0) {
        log_warn("host_instances: %s %s", e.code, e.message);
        return -1;
    }
    if (!json_is_array(json_object_get(doc, "instances")))
        json_object_set_new(doc, "instances", json_array());
    pthread_mutex_lock(&s->mu);
    json_decref(s->desired);
    s->desired = doc;
    s->generation = json_int(doc, "generation", s->generation);
    /* what compute has: reports are numbered after its last, consoles sent again when
     * the one it keeps is not the one last sent (a report lost: they get no reply) */
    if (json_int(doc, "observed_seq", 0) > s->report_seq)
        s->report_seq = json_int(doc, "observed_seq", 0);
    size_t i;
    const json_t *it;
    json_array_foreach(json_object_get(doc, "instances"), i, it) {
        const char *id = json_str(it, "instance_id", NULL);
        if (vm_id_valid(id))
            sync_inst(s, id)->console_sent = (uint64_t)json_int(it, "console_seq", 0);
    }
    if (s->io.metadata)
        s->io.metadata(s->io.arg, NULL, json_object_get(doc, "instances"));
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* One doorbell's changes into the document held (mu held): a spec replaces the one held
 * unless that one is of a later change; "gone" takes it out. */
static void apply_changes(instance_sync_t *s, const json_t *changes)
{
    json_t *list = json_object_get(s->desired, "instances");
    size_t i;
    const json_t *c;
    json_array_foreach(changes, i, c) {
        const char *id = json_str(c, "instance_id", NULL);
        if (!vm_id_valid(id))
            continue;
        size_t k, at = json_array_size(list);
        const json_t *it;
        json_array_foreach(list, k, it)
            if (!strcmp(json_str(it, "instance_id", ""), id)) {
                at = k;
                break;
            }
        const json_t *held = json_array_get(list, at);
        if (held && json_int(held, "changed_gen", 0) > json_int(c, "changed_gen", 0))
            continue;
        /* the metadata document sent ahead goes to the metadata servers, not into the
         * spec (which the pull's, without it, must equal) */
        if (s->io.metadata)
            s->io.metadata(s->io.arg, id, json_object_get(c, "metadata"));
        json_object_del((json_t *)c, "metadata");
        if (json_is_true(json_object_get(c, "gone"))) {
            if (held)
                json_array_remove(list, at);
        } else if (held) {
            json_array_set(list, at, (json_t *)c);
        } else {
            json_array_append(list, (json_t *)c);
        }
    }
}

/* A doorbell the document held already covers (a pull came first: doorbells crossed, or
 * one was lost): its metadata documents still go to the metadata servers for the
 * instances whose spec held is of that same change (mu held). */
static void prime_covered(instance_sync_t *s, const json_t *changes)
{
    if (!s->io.metadata)
        return;
    size_t i, k;
    const json_t *c, *it;
    json_array_foreach(changes, i, c) {
        const json_t *md = json_object_get(c, "metadata");
        const char *id = json_str(c, "instance_id", NULL);
        if (!md || !vm_id_valid(id))
            continue;
        json_array_foreach(json_object_get(s->desired, "instances"), k, it)
            if (!strcmp(json_str(it, "instance_id", ""), id)) {
                if (json_int(it, "changed_gen", -1) == json_int(c, "changed_gen", -2))
                    s->io.metadata(s->io.arg, id, md);
                break;
            }
    }
}

static int bell_order(const void *a, const void *b)
{
    json_int_t x = json_int(*(json_t *const *)a, "generation", 0), y = json_int(*(json_t *const *)b, "generation", 0);
    return (x > y) - (x < y);
}

/* The doorbells received since the last pass, in generation order: each one the next
 * generation is applied; one that skips a generation (a doorbell lost, or one that
 * carried no changes) makes the pass pull, once: a pull made after these doorbells came
 * has every change they carry (each was rung after its commit), so what is left is
 * older than it. A pull made before they were taken (the timer's, at the pass's start)
 * does not count: its snapshot may predate a doorbell taken here, whose change would be
 * lost were the doorbell dropped for it. */
static void apply_bells(instance_sync_t *s)
{
    int pulled = 0;
    pthread_mutex_lock(&s->mu);
    json_t *bells = s->bells;
    s->bells = json_array();
    pthread_mutex_unlock(&s->mu);
    size_t n = json_array_size(bells);
    json_t **v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(bells, i);
    qsort(v, n, sizeof *v, bell_order);
    for (size_t i = 0; i < n; i++) {
        json_int_t g = json_int(v[i], "generation", 0);
        pthread_mutex_lock(&s->mu);
        int next = s->desired && g == s->generation + 1, old = s->desired && g <= s->generation;
        if (next) {
            apply_changes(s, json_object_get(v[i], "changes"));
            s->generation = g;
        } else if (old) {
            prime_covered(s, json_object_get(v[i], "changes"));
        }
        pthread_mutex_unlock(&s->mu);
        if (next || old)
            continue;
        if (pulled)
            break;   /* cannot be (see above): the timer's pull heals it anyway */
        log_info("doorbell of generation %lld after %lld: pulling", (long long)g, (long long)s->generation);
        pulled = 1;
        if (pull(s) < 0)
            break;   /* compute away: the timer pulls again */
        pthread_mutex_lock(&s->mu);
        prime_covered(s, json_object_get(v[i], "changes"));
        pthread_mutex_unlock(&s->mu);
    }
    free(v);
    json_decref(bells);
}

static void pass(instance_sync_t *s, enum pass_mode mode)
{
    pthread_mutex_lock(&s->pass_mu);
    if (mode == PASS_PULL)
        pull(s);
    if (mode != PASS_REPORT)
        apply_bells(s);
    size_t n_seen = 0;
    int incomplete = 0;
    seen_t *seen = observe(s, &n_seen, &incomplete);
    pthread_mutex_lock(&s->mu);
    if (s->desired && mode != PASS_REPORT)
        plan(s, s->desired, seen, n_seen);
    pthread_mutex_unlock(&s->mu);
    report(s, seen, n_seen, incomplete, mode == PASS_PULL);
    free(seen);
    pthread_mutex_unlock(&s->pass_mu);
}

static void *loop(void *arg)
{
    instance_sync_t *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        int64_t now = vm_now_ms();
        if (s->retry_at_ms && s->retry_at_ms <= now) {
            s->retry_at_ms = 0;
            s->want_plan = 1;
        }
        if (s->report_at_ms && s->report_at_ms <= now) {
            s->report_at_ms = 0;
            s->want_report = 1;
        }
        /* the reconcile timer: a pull at least every interval, however busy the
         * doorbells keep the loop (they heal nothing they did not carry) */
        if (now - s->pulled_ms >= s->interval_ms)
            s->want_sync = 1;
        if (!s->want_sync && !s->want_report && !s->want_plan && !json_array_size(s->bells)) {
            int64_t wait = s->pulled_ms + s->interval_ms - now;
            if (s->retry_at_ms && s->retry_at_ms - now < wait)
                wait = s->retry_at_ms - now;
            if (s->report_at_ms && s->report_at_ms - now < wait)
                wait = s->report_at_ms - now;
            struct timespec ts = deadline_in_ms((long)(wait > 0 ? wait : 1));
            pthread_cond_timedwait(&s->loop_cv, &s->mu, &ts);
            continue;
        }
        enum pass_mode mode = s->want_sync                                   ? PASS_PULL
                              : s->want_plan || json_array_size(s->bells) ? PASS_PLAN
                                                                            : PASS_REPORT;
        s->want_sync = s->want_report = s->want_plan = 0;
        pthread_mutex_unlock(&s->mu);
        pass(s, mode);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

void instance_sync_wake(instance_sync_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->want_sync = 1;
    pthread_cond_signal(&s->loop_cv);
    pthread_mutex_unlock(&s->mu);
}

int sync_waits_for_network(const inst_t *in)
{
    return in->transient && !strncmp(in->error, "NetworkNotReady:", 16);
}

/* Bounds the doorbells waiting for the loop: past it they are dropped for a pull. */
#define MAX_BELLS 256

void instance_sync_doorbell(instance_sync_t *s, const json_t *bell)
{
    if (!s)
        return;
    const json_t *changes = json_object_get(bell, "changes");
    pthread_mutex_lock(&s->mu);
    if (!json_is_array(changes) || json_array_size(s->bells) >= MAX_BELLS) {
        json_array_clear(s->bells);
        s->want_sync = 1;
    } else if (json_int(bell, "generation", 0) > s->generation) {   /* else the document has it */
        json_array_append(s->bells, (json_t *)bell);
    } else {
        prime_covered(s, changes);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    pthread_cond_signal(&s->loop_cv);
    pthread_mutex_unlock(&s->mu);
}

void instance_sync_network_applied(instance_sync_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->net_applies++;
    int any = 0;
    for (size_t i = 0; i < s->n_inst; i++)
        if (!s->inst[i].job && sync_waits_for_network(&s->inst[i])) {
            s->inst[i].not_before_ms = 0;
            any = 1;
        }
    if (any) {
        s->want_plan = 1;
        pthread_cond_signal(&s->loop_cv);
    }
    pthread_mutex_unlock(&s->mu);
}

int instance_sync_pass_and_wait(instance_sync_t *s, int timeout_ms, verr_t *e)
{
    pass(s, PASS_PULL);
    int64_t end = vm_now_ms() + timeout_ms;
    pthread_mutex_lock(&s->mu);
    while ((s->q_head || s->running) && vm_now_ms() < end) {
        struct timespec ts = deadline_in_ms(50);
        pthread_cond_timedwait(&s->idle_cv, &s->mu, &ts);
    }
    int busy = s->q_head || s->running;
    pthread_mutex_unlock(&s->mu);
    if (busy)
        return verr_set(e, 504, "RequestTimeout", "instance jobs still running after %d ms", timeout_ms);
    pass(s, PASS_REPORT);
    return 0;
}

static void split_drivers(instance_sync_t *s, const char *list, const vm_driver_cfg_t *base)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t && s->n_drv < SYNC_MAX_DRIVERS; t = strtok_r(NULL, ", ", &save)) {
        const vm_driver_ops_t *ops = vm_driver_find(t);
        if (!ops) {
            log_warn("agent.drivers: no driver '%s' (ignored)", t);
            continue;
        }
        if (drv_index(s, ops->name) >= 0)
            continue;
        char dir[PATH_MAX + 32];
        snprintf(dir, sizeof dir, "%s/%s", s->state_dir, ops->name);
        vm_driver_cfg_t c = *base;
        c.state_dir = dir;
        verr_t e;
        vm_driver_t *d = vm_driver_open(ops->name, &c, &e);
        if (!d) {
            /* A driver this machine cannot run is not offered (and so not in the
             * inventory): compute places nothing of it here. */
            log_warn("driver %s not offered: %s %s", ops->name, e.code, e.message);
            continue;
        }
        log_info("driver %s: %s", ops->name, ops->about);
        s->drv[s->n_drv] = d;
        s->drv_name[s->n_drv++] = ops->name;
    }
}

instance_sync_t *instance_sync_start(const instance_sync_opts_t *o, verr_t *e)
{
    if (!o->host_id || !*o->host_id || strchr(o->host_id, '/') || o->host_id[0] == '.') {
        verr_set(e, 400, "InvalidParameterValue", "the instance loop needs a host id (a plain word)");
        return NULL;
    }
    instance_sync_t *s = xcalloc(1, sizeof *s);
    s->io = o->io;
    s->images = o->images;
    s->cfg = o->cfg;
    snprintf(s->host_id, sizeof s->host_id, "%s", o->host_id ? o->host_id : "");
    const config_t *c = o->cfg;
    /* per host: two agents of one machine (a devcloud with two hosts) never list, adopt
     * or remove each other's instances */
    snprintf(s->state_dir, sizeof s->state_dir, "%s/%s",
             c ? config_str(c, "agent.state_dir", "/var/lib/virga/agent") : "/var/lib/virga/agent", s->host_id);
    s->max_boots = c ? (int)config_int(c, "agent.max_parallel_boots", 2) : 2;
    if (s->max_boots < 1)
        s->max_boots = 1;
    s->n_workers = s->max_boots + 2;
    s->interval_ms = (int)(c ? config_int(c, "agent.sync_interval_s", 10) : 10) * 1000;
    if (s->interval_ms < 100)
        s->interval_ms = 100;
    s->console_budget = (size_t)(c ? config_int(c, "agent.console_report_bytes", 256 * 1024) : 256 * 1024);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->pass_mu, NULL);
    pthread_cond_init(&s->loop_cv, NULL);
    pthread_cond_init(&s->jobs_cv, NULL);
    pthread_cond_init(&s->idle_cv, NULL);
    s->bells = json_array();
    if (vm_mkdirs(s->state_dir, 0700, e) < 0) {
        instance_sync_stop(s);
        return NULL;
    }
    vm_driver_cfg_t base = {
        .host_id = s->host_id,
        .prefix = c ? config_str(c, "agent.datapath_prefix", "virga-") : "virga-",
        .cfg = c,
        .cancel = &s->cancel,
    };
    split_drivers(s, c ? config_str(c, "agent.drivers", "container,qemu") : "container,qemu", &base);
    if (sync_jobs_start(s, e) < 0) {
        instance_sync_stop(s);
        return NULL;
    }
    s->want_sync = 1;
    if (pthread_create(&s->loop, NULL, loop, s)) {
        verr_set(e, 503, "ServiceUnavailable", "cannot start the instance loop");
        instance_sync_stop(s);
        return NULL;
    }
    s->loop_started = 1;
    return s;
}

void instance_sync_cancel(instance_sync_t *s)
{
    if (!s)
        return;
    atomic_store(&s->cancel, 1);
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->loop_cv);
    pthread_cond_broadcast(&s->jobs_cv);
    pthread_mutex_unlock(&s->mu);
}

void instance_sync_stop(instance_sync_t *s)
{
    if (!s)
        return;
    instance_sync_cancel(s);
    if (s->loop_started)
        pthread_join(s->loop, NULL);
    sync_jobs_stop(s);
    for (size_t d = 0; d < s->n_drv; d++)
        vm_driver_close(s->drv[d]);
    free(s->inst);
    json_decref(s->desired);
    json_decref(s->bells);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->pass_mu);
    pthread_cond_destroy(&s->loop_cv);
    pthread_cond_destroy(&s->jobs_cv);
    pthread_cond_destroy(&s->idle_cv);
    free(s);
}

vm_driver_t *instance_sync_driver(instance_sync_t *s, const char *name)
{
    int d = drv_index(s, name);
    return d < 0 ? NULL : s->drv[d];
}
