/* image.h - the image service: the AMI registry (RegisterImage, DescribeImages,
 * DeregisterImage, Describe/ModifyImageAttribute, CopyImage), ImportImage and its tasks,
 * and image.fetch_url for the hosts that boot images.
 *
 * Image bytes stay in the object store. The service never holds S3 credentials: it asks
 * the object store over the bus for a grant URL to one object (objects.c), checked as the
 * account it acts for. Anything that takes longer than a request (hashing a registered
 * image, converting an imported disk, copying bytes) is a row in image_tasks run by the
 * worker threads (worker.c, pipeline.c). */
#ifndef VIRGA_IMAGE_H
#define VIRGA_IMAGE_H

#include <pthread.h>

#include "service.h"

/* registry.c */
int image_register(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int image_describe(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int image_deregister(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* image.fetch_url {image_id} → {url, sha256, size, disk_format, ...} for a launch */
int image_fetch_url(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* attributes.c */
int image_describe_attribute(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int image_modify_attribute(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* import.c */
int image_import(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int image_describe_import_tasks(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int image_cancel_import(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* copy.c */
int image_copy(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* create.c: CreateImage's image and task, after the gateway had compute check the instance */
int image_create_from_instance(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);

/* Image ids: ami- (machine), aki- (kernel), ari- (ramdisk). */
int image_id_valid(const char *id);
/* An AMI name as EC2 takes it: 3..128 letters, digits and ()[] ./-'@_ */
int image_name_valid(const char *name);
const char *image_id_prefix(const char *image_type);
/* The caller's image `id` if it exists and the caller owns it (or is the operator's
 * administrator): InvalidAMIID.Malformed / InvalidAMIID.NotFound / AuthFailure. */
int image_owned(bus_ctx_t *ctx, const char *id, verr_t *e);
/* Image `id` exists, is available and the account may launch it (owner, public, or a
 * launch permission): else InvalidAMIID.NotFound. */
int image_launchable(db_t *db, const char *id, const char *account, verr_t *e);
/* After a committed change of who may launch an image or whether it is available:
 * image.changed {image_id} on virga.events (compute refreshes what it holds). */
void image_changed(bus_t *bus, const char *id);

/* objects.c: the object store, over the bus */
/* {bucket, key} of "bucket/key"; InvalidParameterValue when it is not one. */
int image_split_location(const char *loc, char bucket[64], const char **key, verr_t *e);
/* A grant URL (GET or PUT) to location, checked as account (NULL: as the operator, for
 * the service's own bucket and for launches already checked). *out: {url, size, ...}. */
int image_grant(service_t *svc, const char *account, const char *location, const char *method, json_t **out,
                verr_t *e);
/* image_grant from a bus handler: asked without holding the worker (bus_ask_as), so -1
 * with ctx->waiting means the handler unwinds and runs again with the answer. */
int image_grant_ask(bus_ctx_t *ctx, const char *account, const char *location, const char *method, json_t **out,
                    verr_t *e);
/* image_grant_ask for a request that names an object the caller must be able to read: a
 * refusal becomes `code` with "<what> <location>: <why>" (Unavailable is kept as it is). */
int image_grant_readable(bus_ctx_t *ctx, const char *account, const char *location, const char *code,
                         const char *what, json_t **out, verr_t *e);
/* The operator's bucket for imported and copied images (image.bucket), made on first use. */
const char *image_bucket(service_t *svc, verr_t *e);

/* pipeline.c: qemu-img's name for an ImportImage DiskContainer Format (NULL: unsupported) */
const char *image_qemu_format(const char *ec2_format);

/* cleanup.c: delete the stored bytes of deregistered imported/copied images (reconcile) */
void image_collect_deregistered(service_t *svc);
/* cleanup.c: abort the multipart uploads of tasks nobody runs any more (reconcile), and
 * those an earlier attempt of task `id` left (when a worker takes the task over) */
void image_abort_abandoned_uploads(service_t *svc);
void image_abort_task_uploads(service_t *svc, db_t *db, const char *id);

/* worker.c: background tasks on the common task pool (common/task.h): image.workers
 * threads (0..TASK_MAX_WORKERS; each holds a database connection and runs qemu-img) */
typedef struct image_service {
    pthread_mutex_t mu;
    service_t *svc;
    int bucket_ready;
    struct task_pool *pool;
} image_service_t;

int image_workers_start(service_t *svc, verr_t *e);
void image_workers_stop(service_t *svc);
/* The reconcile pass: free the leases of this host's dead image processes, and fail for
 * good the tasks that used up image.task_max_attempts. */
void image_tasks_reconcile(service_t *svc);
/* A new task row was committed: let an idle worker take it now. */
void image_workers_wake(service_t *svc);

/* Insert an image_tasks row (in the caller's transaction). */
int image_task_insert(db_t *db, const char *id, const char *kind, const char *account, const char *image_id,
                      const json_t *source, const json_t *params, const char *client_token, verr_t *e);

/* pending.c: a new image (RegisterImage, CreateImage, CopyImage). In the caller's
 * transaction, the images row in state 'pending' (sql inserts it); a name the account
 * already uses is InvalidAMIName.Duplicate, and any failure rolls the transaction back. */
int image_insert_pending_row(db_t *db, const char *stmt, const char *sql, int nparams, const char *const *params,
                             const char *name, verr_t *e);
/* The task that makes the pending image available (its id is the image's), then commit,
 * wake a worker and answer {"imageId"}; on failure the transaction is rolled back. */
typedef struct {
    const char *image_id, *kind, *account;
    const json_t *source, *params;
    const char *client_token;
} image_task_row_t;
int image_commit_pending(service_t *svc, db_t *db, const image_task_row_t *t, json_t **reply, verr_t *e);

#endif
