/* image_tags.h - CreateTags, DeleteTags and DescribeTags on images (ami-, aki-, ari-),
 * the image service's side of the gateway's tag actions (services/image/tags.c). */
#ifndef VIRGA_IMAGE_TAGS_H
#define VIRGA_IMAGE_TAGS_H

#include "service.h"

int image_create_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int image_delete_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int image_describe_tags(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);

#endif
