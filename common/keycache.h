/* keycache.h - SigV4 signing keys and who they belong to, cached per credential scope
 * (access key / date / region / service), for every endpoint that verifies SigV4 (the
 * EC2/IAM gateway, the S3 object store). On a miss the key is asked of identity over
 * the bus (identity.signing_key); the secret itself never leaves identity. Entries
 * expire after a TTL and are then freed, the cache holds at most KEYCACHE_MAX_ENTRIES,
 * and identity.changed events drop matching ones at once. Access keys identity said it
 * does not know (or are inactive) are remembered too, for a few seconds
 * (keycache_set_unknown_ttl, common/negcache.h): a flood of made-up keys costs one
 * identity call per key and TTL, not one per request. */
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
/* How long an access key identity called unknown is refused without asking again
 * (default KEYCACHE_UNKNOWN_TTL_S; 0 disables). Call before use. */
#define KEYCACHE_UNKNOWN_TTL_S 5
void keycache_set_unknown_ttl(keycache_t *c, int ttl_s);

/* What lookups did, for /metrics. */
typedef struct keycache_stats {
    uint64_t hits;            /* answered from the cache */
    uint64_t fetches;         /* asked identity */
    uint64_t unknown_hits;    /* refused as a key identity called unknown moments ago */
} keycache_stats_t;
void keycache_get_stats(keycache_t *c, keycache_stats_t *out);
/* Those figures as the Prometheus counter family (e.g. "virga_gateway_signing_key_lookups_total"),
 * labelled result="hit" | "fetched" | "unknown". */
struct strbuf;
void keycache_render_metrics(keycache_t *c, const char *family, struct strbuf *out);

/* keycache_fetch in two halves, for a caller that must not wait. keycache_lookup: 1
 * with key and *who (new reference) when the cache answers; -1 with e set (AuthFailure)
 * when identity called the access key unknown moments ago; 0 when identity must be
 * asked: keycache_fetch_async then sends the request and returns 0, after which cb runs
 * exactly once on a bus thread (it must not block) with key and who (a reference cb
 * owns), or with err set; or it returns -1 with e set (not sent; cb never runs). */
int keycache_lookup(keycache_t *c, const sigv4_auth_t *a, uint8_t key[SIGV4_KEY_LEN], json_t **who, verr_t *e);
typedef void (*keycache_fetch_fn)(void *arg, const uint8_t *key, json_t *who, const verr_t *err);
int keycache_fetch_async(keycache_t *c, bus_t *bus, const sigv4_auth_t *a, int timeout_ms, keycache_fetch_fn cb,
                         void *arg, verr_t *e);

/* Apply an identity.changed event body ({"what": "access_key"|"user"|"account", "id"}). */
void keycache_apply_event(keycache_t *c, const json_t *body);

#endif
