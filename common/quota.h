/* quota.h - an account's limit for one resource, as identity keeps it (quota.<resource>
 * defaults, per-account overrides: services/identity/quotas.c), for the service that
 * owns the resource. The owner enforces it in the transaction that inserts, under
 * db_lock_xact on the account, so that concurrent requests cannot pass it together. */
#ifndef VIRGA_QUOTA_H
#define VIRGA_QUOTA_H

#include "bus.h"

/* The question to identity (QUOTA_MESSAGE) for account's limits, and the limit for
 * resource ("buckets", "key_pairs", ...) in its answer (def when the answer has no such
 * resource); quota_of takes the answer's reference. For a caller with its own way of
 * asking without holding a thread (the object store's s3_ask). */
#define QUOTA_MESSAGE "identity.quota_get"
json_t *quota_question(const char *account);
long long quota_of(json_t *reply, const char *resource, long long def);

/* *max = the account's limit for resource, from a bus handler, without holding its
 * worker (bus_ask): -1 with ctx->waiting set means the handler runs again with the
 * answer, so ask before writing. */
int quota_ask(bus_ctx_t *ctx, const char *account, const char *resource, long long def, int timeout_ms,
              long long *max, verr_t *e);

#endif
