/* image_task.h - one claimed task as the worker (worker.c) hands it to the pipeline
 * (pipeline.c), and the few things the pipeline may ask of the worker. */
#ifndef VIRGA_IMAGE_TASK_H
#define VIRGA_IMAGE_TASK_H

#include <time.h>

#include "image.h"
#include "task.h"

typedef struct image_task {
    task_t *task;                 /* the pool's claim of it (common/task.h) */
    service_t *svc;
    db_t *db;                     /* the worker thread's own connection */
    char id[64], kind[16], account[13], image_id[32];
    json_t *source, *params;
    char lease_owner[160];
    int lease_s;
    time_t renewed;
    char work_dir[512];
} image_task_t;

/* Record progress (and renew the lease). -1 with code "Canceled" when the task is no
 * longer this worker's to run: canceled, or taken over after a lost lease. */
int image_task_progress(image_task_t *t, int percent, const char *message, verr_t *e);
/* Renew the lease at most every few seconds; for long waits (downloads, qemu-img). */
int image_task_keepalive(image_task_t *t, verr_t *e);

/* pipeline.c: run the task to its end (the final state is written here). */
int pipeline_run(image_task_t *t, verr_t *e);

/* qemu_img.c */
/* `qemu-img info --output=json` of an untrusted file, in a resource-limited child. */
int qemu_img_info(const char *path, const char *format, json_t **info, verr_t *e);
/* `qemu-img convert`; tick(arg) is called about every 200 ms while it runs, and a
 * non-zero answer kills it (canceled task, lost lease). */
int qemu_img_convert(const char *src, const char *src_format, const char *dst, const char *dst_format,
                     int (*tick)(void *arg), void *arg, verr_t *e);

#endif
