/* interface_limit.h - the instance type's interface limit for AttachNetworkInterface, and
 * the count compute asks before a type change (interface_limit.c). */
#ifndef VIRGA_NETWORK_INTERFACE_LIMIT_H
#define VIRGA_NETWORK_INTERFACE_LIMIT_H

#include "network.h"

typedef struct interface_limit {
    int max;          /* interfaces the instance's type takes, its primary included */
    char type[64];    /* the type's name, for the error */
} interface_limit_t;

/* The instance's limit, asked of compute with bus_ask: -1 with ctx->waiting set on the
 * first pass (the handler unwinds and runs again with the answer), -1 with e on a
 * refusal (InvalidInstanceID.NotFound), 0 with *out. Ask before writing anything. */
int interface_limit_ask(bus_ctx_t *ctx, const char *account, const char *instance, interface_limit_t *out,
                        verr_t *e);
/* One more interface fits (AttachmentLimitExceeded otherwise). Call it inside the
 * transaction, after the instance's primary row is locked, so attaches are serialised. */
int interface_limit_check(db_t *db, const char *instance, const interface_limit_t *lim, verr_t *e);
/* network.instance_interface_count {account, instance_id} -> {count}: the interfaces
 * attached to the instance, its primary included (compute's principal only). */
int net_instance_interface_count(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);

#endif
