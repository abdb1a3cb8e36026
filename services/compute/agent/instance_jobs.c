/* instance_jobs.c - the sync loop's worker threads. Jobs (ensure or remove one
 * instance) wait in one queue; a worker takes the first that may run now: any remove or
 * stop, a boot only while fewer than agent.max_parallel_boots boots run. There are
 * max_parallel_boots + 2 workers, so a stop or a terminate never waits behind boots. */
#include <stdlib.h>
#include <string.h>

#include "instance_sync_int.h"
#include "log.h"
#include "vm_spec.h"
#include "vm_state.h"

#define log_info(...) vlog(LOG_INFO, __VA_ARGS__)
#define log_warn(...) vlog(LOG_WARN, __VA_ARGS__)

void sync_job_queue(instance_sync_t *s, job_t *j)
{
    job_t **p = &s->q_head;
    while (*p)
        p = &(*p)->next;
    j->next = NULL;
    *p = j;
    inst_t *in = sync_inst(s, j->id);
    in->job = j;
    j->spec.abandon = &j->abandon;
    pthread_cond_signal(&s->jobs_cv);
}

static job_t *take(instance_sync_t *s)
{
    for (job_t **p = &s->q_head; *p; p = &(*p)->next) {
        job_t *j = *p;
        if (j->boot && s->booting >= s->max_boots)
            continue;
        *p = j->next;
        j->net_applies = s->net_applies;
        return j;
    }
    return NULL;
}

static void job_free(job_t *j)
{
    vm_spec_clear(&j->spec);
    free(j);
}

/* Image bytes through the agent's cache (fetched once per SHA-256, verified). */
static int fetch(instance_sync_t *s, vm_file_t *f, verr_t *e)
{
    if (!f->url)
        return 0;
    if (!s->images)
        return verr_set(e, 500, "InternalError", "this agent has no image cache");
    image_cache_result_t r;
    if (image_cache_get(s->images, f->url, f->sha256, f->size, &r, e) < 0)
        return -1;
    snprintf(f->path, sizeof f->path, "%s", r.path);
    return 0;
}

/* *images_ms: the part spent getting the image bytes (the cache's lookup, or a download) */
static int run(instance_sync_t *s, job_t *j, int64_t *images_ms, verr_t *e)
{
    if (j->remove)
        return vm_driver_remove(j->drv, j->id, e);
    int64_t t0 = vm_now_ms();
    if (j->drv->ops->flags & VM_DRV_NEEDS_IMAGES)
        if (fetch(s, &j->spec.image, e) < 0 || fetch(s, &j->spec.kernel, e) < 0 ||
            fetch(s, &j->spec.ramdisk, e) < 0)
            return -1;
    *images_ms = vm_now_ms() - t0;
    return vm_driver_ensure(j->drv, &j->spec, e);
}

static void record(instance_sync_t *s, job_t *j, int rc, const verr_t *e)
{
    inst_t *in = sync_inst(s, j->id);
    in->job = NULL;
    if (atomic_load(&j->abandon))
        s->want_plan = 1;   /* what made it give up (a terminate, a stop) is planned now */
    if (rc == 0) {
        in->error[0] = 0;
        in->transient = 0;
        in->permanent = 0;
        in->fails = 0;
        in->not_before_ms = 0;
        return;
    }
    in->transient = e->http_status == 503;
    in->permanent = !j->remove && j->drv->ops->permanent && j->drv->ops->permanent(j->drv->priv, e);
    snprintf(in->error, sizeof in->error, "%s: %s", e->code, e->message);
    in->fails++;
    if (sync_waits_for_network(in) && j->net_applies != s->net_applies) {
        /* the datapath applied while the job ran: what it missed may be there now */
        in->not_before_ms = 0;
        s->want_plan = 1;
        return;
    }
    int shift = in->fails < 6 ? in->fails : 6;
    /* 2 s .. 64 s; a permanent failure waits for compute to end the launch: the longest */
    int64_t wait = in->transient ? 1000 : (int64_t)1000 << (in->permanent ? 6 : shift);
    in->not_before_ms = vm_now_ms() + wait;
    if (!s->retry_at_ms || in->not_before_ms < s->retry_at_ms)
        s->retry_at_ms = in->not_before_ms;
}

static void *worker(void *arg)
{
    instance_sync_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        job_t *j = NULL;
        while (!s->stopping && !(j = take(s)))
            pthread_cond_wait(&s->jobs_cv, &s->mu);
        if (!j)
            break;
        s->running++;
        s->booting += j->boot;
        pthread_mutex_unlock(&s->mu);

        verr_t e = {0};
        int64_t t0 = vm_now_ms(), images_ms = 0;
        int rc = run(s, j, &images_ms, &e);
        /* the driver's own time, so a launch's figures (tests/bench/bench_instances.py)
         * tell the guest's boot from the control plane around it */
        if (rc < 0)
            log_warn("%s %s: %s %s", j->remove ? "remove" : "ensure", j->id, e.code, e.message);
        else if (j->remove)
            log_info("removed %s: done (%lld ms)", j->id, (long long)(vm_now_ms() - t0));
        else
            log_info("ensured %s: done (%lld ms, images %lld ms)", j->id, (long long)(vm_now_ms() - t0),
                     (long long)images_ms);

        pthread_mutex_lock(&s->mu);
        record(s, j, rc, &e);
        s->running--;
        s->booting -= j->boot;
        s->want_report = 1;
        pthread_cond_signal(&s->loop_cv);
        pthread_cond_broadcast(&s->jobs_cv);   /* a boot slot may be free */
        pthread_cond_broadcast(&s->idle_cv);
        pthread_mutex_unlock(&s->mu);
        job_free(j);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int sync_jobs_start(instance_sync_t *s, verr_t *e)
{
    s->workers = xcalloc((size_t)s->n_workers, sizeof *s->workers);
    for (int i = 0; i < s->n_workers; i++) {
        if (pthread_create(&s->workers[i], NULL, worker, s)) {
            return verr_set(e, 503, "ServiceUnavailable", "cannot start instance worker threads");
        }
        s->started_workers++;
    }
    return 0;
}

void sync_jobs_stop(instance_sync_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    while (s->q_head) {
        job_t *j = s->q_head;
        s->q_head = j->next;
        inst_t *in = sync_inst(s, j->id);
        in->job = NULL;
        job_free(j);
    }
    pthread_cond_broadcast(&s->jobs_cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->started_workers; i++)
        pthread_join(s->workers[i], NULL);
    free(s->workers);
    s->workers = NULL;
    s->started_workers = 0;
}
