/* caller.h - the `caller` of a bus message, as the gateway or the object store sets it
 * from the signature it checked: {"account_id", "user_id", "is_admin", "is_operator",
 * ...}. What handlers ask of it. */
#ifndef VIRGA_CALLER_H
#define VIRGA_CALLER_H

#include <jansson.h>

#include "err.h"

/* The calling account (12 digits), or NULL + AuthFailure (401) when there is none. */
const char *caller_account(const json_t *caller, verr_t *e);
/* The operator account's administrator, who may act on every account's resources.
 * caller may be NULL (anonymous). */
int caller_is_operator_admin(const json_t *caller);

/* 1 if the message comes from the named service's own principal ("compute"): the
 * caller {"principal": "<service>"} that services put on their internal calls. The
 * gateway and the object store never forward such a field from a tenant (their caller
 * is built from identity's answer), so a tenant cannot claim one; the bus itself
 * authenticates no principal yet (docs/network.md, "Port API"). */
int caller_is_service(const json_t *caller, const char *service);

#endif
