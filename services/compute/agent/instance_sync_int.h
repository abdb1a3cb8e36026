/* instance_sync_int.h - the sync loop's internals, shared by instance_sync.c (the loop,
 * plan and report) and instance_jobs.c (the job queue and its worker threads). */
#ifndef VIRGA_AGENT_INSTANCE_SYNC_INT_H
#define VIRGA_AGENT_INSTANCE_SYNC_INT_H

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>

#include "instance_sync.h"

#define SYNC_MAX_DRIVERS 8

/* One piece of driver work. */
typedef struct job {
    struct job *next;
    int remove;               /* else ensure */
    int boot;                 /* takes one of the max_parallel_boots slots */
    vm_driver_t *drv;
    vm_spec_t spec;           /* for ensure (owns its URLs) */
    char id[VM_ID_MAX];
    uint64_t net_applies;     /* the loop's net_applies when the job started */
    _Atomic int abandon;      /* a boot no longer wanted running: spec.abandon points here */
} job_t;

/* What the loop remembers of one instance between passes. */
typedef struct inst {
    char id[VM_ID_MAX];
    job_t *job;               /* the job queued or running for it, NULL when none (mu held) */
    int wanted_up;            /* the current plan wants it running */
    char error[600];          /* the last job's failure, "" after a success */
    int transient;            /* the failure is a wait (503): reported as starting */
    int plan_error;           /* error is about the spec itself (cleared by a good one) */
    int permanent;            /* the driver says no retry will fix error: reported "failed" */
    int fails;                /* in a row, for the back-off */
    int64_t not_before_ms;    /* no new job before (back-off after failures) */
    uint64_t console_sent;    /* console_seq compute has acknowledged */
    int mark;                 /* kept by the current pass */
} inst_t;

struct instance_sync {
    instance_sync_io_t io;
    image_cache_t *images;
    char host_id[64];
    char state_dir[PATH_MAX];
    char zone[64];
    const config_t *cfg;
    vm_driver_t *drv[SYNC_MAX_DRIVERS];
    const char *drv_name[SYNC_MAX_DRIVERS];
    size_t n_drv;
    int max_boots, n_workers, interval_ms;
    size_t console_budget;    /* console bytes per report, all instances together */

    pthread_mutex_t mu;       /* everything below */
    pthread_cond_t loop_cv;   /* wakes the loop */
    pthread_cond_t jobs_cv;   /* wakes workers */
    pthread_cond_t idle_cv;   /* a job ended */
    int want_sync;            /* pull the desired document (a doorbell without changes, the timer) */
    int want_plan;            /* plan against the document held (a back-off's end, a datapath apply) */
    int want_report, stopping;
    int64_t retry_at_ms;      /* earliest back-off end: a plan then */
    int64_t pulled_ms;        /* the last pull: one at least every interval_ms, whatever else wakes */
    json_t *desired;          /* the last pull's document with the doorbells since applied; NULL before one */
    json_t *bells;            /* doorbells with changes, not applied yet (a list) */
    int64_t report_seq;       /* the last report's seq: compute applies none older than the last */
    unsigned char reported[32];   /* digest of the last report sent, its consoles left out */
    int64_t reported_ms;      /* when it was sent */
    int64_t report_at_ms;     /* a report then: console text held back (CONSOLE_GAP_MS) */
    job_t *q_head;
    int booting, running;     /* jobs running, boots among them */
    inst_t *inst;
    size_t n_inst;
    int64_t generation;       /* of desired: every change up to it is in it */
    uint64_t net_applies;     /* datapath applies seen (instance_sync_network_applied) */

    pthread_mutex_t pass_mu;  /* one pass at a time */
    _Atomic int cancel;
    pthread_t loop;
    pthread_t *workers;
    int started_workers, loop_started;
};

/* instance_sync.c: the record of id, created when absent (mu held). */
inst_t *sync_inst(instance_sync_t *s, const char *id);

/* An ensure that failed only because the datapath had not made the instance's network
 * yet (NetworkNotReady): retried as soon as the datapath applies, not after a back-off. */
int sync_waits_for_network(const inst_t *in);

/* instance_jobs.c */
int sync_jobs_start(instance_sync_t *s, verr_t *e);
/* Queue a job (mu held); it is the instance's job until it ends. */
void sync_job_queue(instance_sync_t *s, job_t *j);
/* Wake the workers, drop queued jobs, join (mu not held). */
void sync_jobs_stop(instance_sync_t *s);

#endif
