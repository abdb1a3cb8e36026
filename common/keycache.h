/* keycache.h - SigV4 signing keys and who they belong to, cached per credential scope
 * (access key / date / region / service), for every endpoint that verifies SigV4 (the
 * EC2/IAM gateway, the S3 object store). On a miss the key is asked of identity over
 * the bus (identity.signing_key); the secret itself never leaves identity. Entries
 * expire after a TTL and are then freed, the cache holds at most KEYCACHE_MAX_ENTRIES,
 * and identity.changed events drop matching ones at once. */
#ifndef VIRGA_KEYCACHE_H
#define VIRGA_KEYCACHE_H

#include <jansson.h>
#include <stdint.h>

#include "bus.h"
#include "sigv4.h"

typedef struct keycache keycache_t;

/* At most this many entries (a few hundred bytes each): one per access key, day,
 * region and service in use. When full, the entry nearest its expiry goes. */
#define KEYCACHE_MAX_ENTRIES 10000

keycache_t *keycache_new(int ttl_s);
keycache_t *keycache_new_max(int ttl_s, size_t max_entries);
void keycache_free(keycache_t *c);
/* Entries held now, expired ones not yet freed included (they are freed at most a TTL
 * after they expire). */
size_t keycache_size(keycache_t *c);
/* who: new reference on hit. Returns 1 on hit, 0 on miss. */
int keycache_get(keycache_t *c, const char *scope, uint8_t key[SIGV4_KEY_LEN], json_t **who);
void keycache_put(keycache_t *c, const char *scope, const uint8_t key[SIGV4_KEY_LEN], json_t *who);
/* Drop every entry whose who[field] equals value (field: access_key_id, user_id,
 * account_id), or every entry when field is NULL. */
void keycache_invalidate(keycache_t *c, const char *field, const char *value);

/* The signing key for a's scope, from the cache or from identity. *who (new reference)
 * describes the key's owner: account_id, user_id, user_name, arn, is_admin, is_operator,
 * policies, access_key_id. Unknown or inactive keys: AuthFailure 401; identity not
 * answering: Unavailable 503. */
int keycache_fetch(keycache_t *c, bus_t *bus, const sigv4_auth_t *a, int timeout_ms,
                   uint8_t key[SIGV4_KEY_LEN], json_t **who, verr_t *e);
/* Apply an identity.changed event body ({"what": "access_key"|"user"|"account", "id"}). */
void keycache_apply_event(keycache_t *c, const json_t *body);

#endif
