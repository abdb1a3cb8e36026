/* image.h - the image service: the AMI registry (RegisterImage, DescribeImages,
 * DeregisterImage, Describe/ModifyImageAttribute). Image bytes stay in the object store;
 * the registry checks through objectstore.head_object that the caller may read them. */
#ifndef VIRGA_IMAGE_H
#define VIRGA_IMAGE_H

#include "service.h"

/* registry.c */
int image_register(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int image_describe(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int image_deregister(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* attributes.c */
int image_describe_attribute(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int image_modify_attribute(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);

/* The caller's image `id` if it exists and the caller owns it (or is the operator's
 * administrator): InvalidAMIID.Malformed / InvalidAMIID.NotFound / AuthFailure. */
int image_owned(bus_ctx_t *ctx, const char *id, verr_t *e);
const char *image_caller_account(bus_ctx_t *ctx, verr_t *e);
int image_is_operator(bus_ctx_t *ctx);

#endif
