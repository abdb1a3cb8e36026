/* instance_sync.h - the agent's instance loop: pull what compute wants on this host
 * (compute.host_instances), keep it up to date from the doorbells' changes, make the
 * drivers match it (ensure what is desired, remove what is not), and report what runs
 * (compute.instances_observed). Level-triggered: a doorbell that skips a generation
 * makes it pull, and it pulls on the reconcile timer whatever else happens, so a lost
 * doorbell costs a delay and never a divergence. Driver work runs on the loop's own worker
 * threads, at most agent.max_parallel_boots boots at once; never on a bus worker. */
#ifndef VIRGA_AGENT_INSTANCE_SYNC_H
#define VIRGA_AGENT_INSTANCE_SYNC_H

#include <jansson.h>

#include "config.h"
#include "image_cache.h"
#include "vm_driver.h"

typedef struct instance_sync instance_sync_t;

/* How the loop talks to compute; the agent's are bus calls, a test's are its own. */
typedef struct instance_sync_io {
    /* compute.host_instances: *doc a new reference to {"generation", "instances": [...]} */
    int (*desired)(void *arg, json_t **doc, verr_t *e);
    /* compute.instances_observed; body is stolen */
    int (*observed)(void *arg, json_t *body, verr_t *e);
    /* may be NULL: a doorbell's change applied (in generation order), with the metadata
     * document compute sent ahead for the instance or NULL (md_servers_prime); and
     * (instance_id NULL) a pull's instances, for which alone such documents stay */
    void (*metadata)(void *arg, const char *instance_id, const json_t *md);
    void *arg;
} instance_sync_io_t;

typedef struct instance_sync_opts {
    const config_t *cfg;      /* agent.* keys (docs/compute.md); may be NULL */
    const char *host_id;
    image_cache_t *images;    /* may be NULL when no offered driver needs images */
    instance_sync_io_t io;
} instance_sync_opts_t;

/* Open the drivers of agent.drivers (under agent.state_dir/<driver>) and start the
 * loop's threads. The first pass runs at once. */
instance_sync_t *instance_sync_start(const instance_sync_opts_t *o, verr_t *e);
/* Ask for a pass (a full one: desired state pulled again). Never blocks. */
void instance_sync_wake(instance_sync_t *s);
/* agent.instances_changed {generation, changes?}: with changes (the specs of the
 * instances whose last change is that generation, or {"instance_id", "gone": true}) the
 * loop applies them to the document it holds when it has every generation before, and
 * pulls otherwise; without, it pulls. Never blocks. */
void instance_sync_doorbell(instance_sync_t *s, const json_t *bell);
/* The datapath applied a new document (net_sync.c): instances whose ensure failed with
 * NetworkNotReady (the instance's namespace or tap not made yet; the network's doorbell
 * and compute's race) are retried at once instead of after their 1 s back-off. */
void instance_sync_network_applied(instance_sync_t *s);
/* Run one full pass now on the calling thread and wait until the jobs it started have
 * ended and their result was reported: for tests and tools. */
int instance_sync_pass_and_wait(instance_sync_t *s, int timeout_ms, verr_t *e);
/* Make long driver waits give up and start no new pass (for a stopping service, whose
 * bus workers may still call instance_sync_wake). */
void instance_sync_cancel(instance_sync_t *s);
/* Make long driver waits give up, then join the threads and close the drivers, leaving
 * instances running (a restarted agent adopts them). NULL is a no-op. */
void instance_sync_stop(instance_sync_t *s);

/* The host's inventory for compute.host_report: vcpus, memory_mib, disk_gib, drivers,
 * zone, labels (agent.* keys, defaults from the machine). A new reference. */
json_t *instance_sync_inventory(instance_sync_t *s);

/* The open driver of that name, or NULL (for tests). */
vm_driver_t *instance_sync_driver(instance_sync_t *s, const char *name);

#endif
