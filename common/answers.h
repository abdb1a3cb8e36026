/* answers.h - the answers a piece of work was given by other services while it ran,
 * kept by question (service, message type, body), so that work which runs again from its
 * start after a wait (an S3 request's begin or end, a bus handler) asks nothing twice.
 * A question's answer is either a reply or an error, kept as the callback delivered it. */
#ifndef VIRGA_ANSWERS_H
#define VIRGA_ANSWERS_H

#include <jansson.h>

#include "err.h"

/* The question's key (malloc'd): service, type and the body's canonical JSON. */
char *answers_key(const char *service, const char *type, const json_t *body);
/* Keep the answer to key in *memo (made when NULL): reply (stolen; NULL is kept as
 * null) when err is NULL, else the error. */
void answers_put(json_t **memo, const char *key, json_t *reply, const verr_t *err);
/* The answer to key: 1 with *reply (a new reference, or NULL for null) or 1 after
 * setting e (-1 in *rc) for a kept error; 0 when the question was never answered. */
int answers_get(const json_t *memo, const char *key, json_t **reply, int *rc, verr_t *e);

#endif
