/* launch_grants.h - image.fetch_url's answers, reused by the next launches of the same
 * image by the same account for a few seconds (launch_grants.c). */
#ifndef VIRGA_COMPUTE_LAUNCH_GRANTS_H
#define VIRGA_COMPUTE_LAUNCH_GRANTS_H

#include <jansson.h>

typedef struct launch_grants launch_grants_t;

/* reuse_s 0: nothing is kept (every launch asks the image service) */
launch_grants_t *launch_grants_new(int reuse_s);
void launch_grants_free(launch_grants_t *g);
/* A copy of the answer kept for (account, image), or NULL when none may be reused. */
json_t *launch_grants_get(launch_grants_t *g, const char *account, const char *image_id);
/* Keep the answer the image service just gave for (account, image). */
void launch_grants_put(launch_grants_t *g, const char *account, const char *image_id, const json_t *answer);
/* The image changed (image.changed, or a launch refused it): no answer of it is reused. */
void launch_grants_forget(launch_grants_t *g, const char *image_id);

#endif
