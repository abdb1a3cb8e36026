/* image_export.h - the agent's CreateImage exports (image_export.c). */
#ifndef VIRGA_AGENT_IMAGE_EXPORT_H
#define VIRGA_AGENT_IMAGE_EXPORT_H

#include "instance_sync.h"
#include "service.h"

typedef struct image_export image_export_t;

/* Start the export thread (scratch files under agent.state_dir/<host>/exports); its first
 * pass runs at once. */
image_export_t *image_export_start(service_t *svc, instance_sync_t *sync, const char *host_id, verr_t *e);
/* Ask for a pass (agent.instances_changed). Never blocks; NULL is a no-op. */
void image_export_wake(image_export_t *x);
/* An export in flight gives up its upload (the service is stopping). */
void image_export_cancel(image_export_t *x);
/* Cancel, join, free. NULL is a no-op. */
void image_export_stop(image_export_t *x);

#endif
