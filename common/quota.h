/* quota.h - an account's limit for one resource, as identity keeps it (quota.<resource>
 * defaults, per-account overrides: services/identity/quotas.c), for the service that
 * owns the resource. The owner enforces it in the transaction that inserts, under
 * db_lock_xact on the account, so that concurrent requests cannot pass it together. */
#ifndef VIRGA_QUOTA_H
#define VIRGA_QUOTA_H

#include "bus.h"

/* *max = the account's limit for resource ("buckets", "key_pairs", ...), asked of
 * identity over the bus; def when identity's answer has no such resource. */
int quota_get(bus_t *bus, const char *account, const char *resource, long long def, int timeout_ms,
              long long *max, verr_t *e);

/* The same from a bus handler, without holding its worker (bus_ask): -1 with
 * ctx->waiting set means the handler runs again with the answer, so ask before writing. */
int quota_ask(bus_ctx_t *ctx, const char *account, const char *resource, long long def, int timeout_ms,
              long long *max, verr_t *e);

#endif
