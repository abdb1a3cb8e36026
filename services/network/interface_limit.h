/* interface_limit.h - the instance type's interface limit for AttachNetworkInterface, held
 * under the primary interface's row lock against a type change (interface_limit.c). */
#ifndef VIRGA_NETWORK_INTERFACE_LIMIT_H
#define VIRGA_NETWORK_INTERFACE_LIMIT_H

#include "network.h"

typedef struct interface_limit {
    int max;          /* interfaces the instance's type takes, its primary included */
    long long seq;    /* compute's number of that type (instances.type_seq) */
    char type[64];    /* the type's name, for the error */
} interface_limit_t;

/* The instance's limit, asked of compute with bus_ask (at_least > 0: again, because the
 * primary's row records a change numbered at_least): -1 with ctx->waiting set on the
 * first pass (the handler unwinds and runs again with the answer), -1 with e on a
 * refusal, 0 with *out. Ask before writing anything. */
int interface_limit_ask(bus_ctx_t *ctx, const char *account, const char *instance, long long at_least,
                        interface_limit_t *out, verr_t *e);
/* Compute's answer against what the primary's row records (row_limit -1: nothing), read
 * under its lock: 0 with lim->max the limit that holds, 1 when compute's answer is older
 * than a change written since (ask again with at_least row_seq; asked_again: it was,
 * and the lower of the two holds). */
int interface_limit_settle(interface_limit_t *lim, long long row_seq, int row_limit, int asked_again);
/* One more interface fits (AttachmentLimitExceeded otherwise). Call it inside the
 * transaction, after the instance's primary row is locked, so attaches are serialised. */
int interface_limit_check(db_t *db, const char *instance, const interface_limit_t *lim, verr_t *e);
/* network.interface_limit_set {account, instance_id, seq, max_interfaces, instance_type}
 * -> {count}: a type change's record, before compute writes the type (compute's
 * principal only): AttachmentLimitExceeded when the instance has more interfaces. */
int net_interface_limit_set(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* network.instance_interface_count {account, instance_id} -> {count}: the interfaces
 * attached to the instance, its primary included (compute's principal only: a DryRun
 * type change, which records nothing). */
int net_instance_interface_count(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);

#endif
