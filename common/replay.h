/* replay.h - the answer to a request that has no idempotency token of its own
 * (CreateKeyPair, ImportKeyPair, CreateUser), remembered for a while, so that a client
 * that lost the answer (the gateway died, the broker restarted past its deadline) and
 * sends the same request again gets the original result, not a "duplicate" error; and a
 * created private key is never lost without a way to get it (docs/bus.md, "No ghost
 * operations").
 *
 * A request is "the same" when the same caller (account and user) sends the same action
 * with the same parameters: the key is a SHA-256 over all of them. Answers holding a
 * secret are sealed (libsodium secretbox) with a key of the service's own. Each service
 * keeps them in its schema's request_results table and forgets them after ttl. */
#ifndef VIRGA_REPLAY_H
#define VIRGA_REPLAY_H

#include <jansson.h>
#include <sodium.h>

#include "bus.h"
#include "db.h"

#define REPLAY_KEY_LEN 65

/* The key of this request: caller's account and user, action, parameters. */
void replay_key(const bus_ctx_t *ctx, const char *action, const json_t *body, char out[REPLAY_KEY_LEN]);

/* Remember reply for key (inside the caller's transaction), for ttl_s seconds; resource is
 * what the request made (a recall checks it still exists). seal: a secretbox key, or NULL
 * to keep reply as it is. */
int replay_remember(db_t *db, const char *key, const char *resource, const json_t *reply,
                    const unsigned char *seal, int ttl_s, verr_t *e);

/* The remembered reply for key, if any and not expired: 1 with *reply and *resource (the
 * caller frees both), 0 when there is none, -1 with e set. */
int replay_recall(db_t *db, const char *key, const unsigned char *seal, json_t **reply, char **resource, verr_t *e);

/* replay_recall, kept only while what the request made still exists in account: the
 * table (trusted, a constant) has columns id and account_id. 1 with *reply, 0, or -1. */
int replay_recall_existing(db_t *db, const char *key, const unsigned char *seal, const char *table,
                           const char *account, json_t **reply, verr_t *e);

/* Forget what has expired (on the service's reconcile timer). */
int replay_expire(db_t *db, verr_t *e);

/* A 32-byte secretbox key from a file (0600), or -1 with e set. */
int replay_load_key(const char *path, unsigned char key[crypto_secretbox_KEYBYTES], verr_t *e);

#endif
