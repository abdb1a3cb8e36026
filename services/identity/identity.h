/* identity.h - the identity service: accounts (tenants), users, access keys, passwords,
 * inline user policies, quotas, and SigV4 signing keys for the gateway. Secrets never
 * leave the service except once, in the reply that creates a key. */
#ifndef VIRGA_IDENTITY_H
#define VIRGA_IDENTITY_H

#include <sodium.h>

#include "service.h"

typedef struct identity {
    unsigned char master_key[crypto_secretbox_KEYBYTES];
} identity_t;

int identity_init(service_t *svc, verr_t *e);
void identity_fini(service_t *svc);

/* keys.c: access key ids, secrets, sealing at rest */
int identity_seal(const identity_t *id, const char *secret, unsigned char **out, size_t *outlen);
int identity_open(const identity_t *id, const unsigned char *box, size_t len, char *secret, size_t secretsz);
void identity_new_access_key(char id_out[21], char secret_out[41]);
/* Insert a new key for user_id (at most two per user: LimitExceeded); fills key_id and
 * secret. identity_insert_key runs its own transaction; the _tx form runs inside the
 * caller's, which must roll back if it fails. */
int identity_insert_key(bus_ctx_t *ctx, const char *user_id, char key_id[21], char secret[41], verr_t *e);
int identity_insert_key_tx(bus_ctx_t *ctx, const char *user_id, char key_id[21], char secret[41], verr_t *e);

/* users.c helpers shared by the handlers */
typedef struct identity_user {
    char id[32], account_id[13], name[72], path[520], arn[700], created[32];
    int is_admin;
} identity_user_t;
/* Find user `name` in the caller's account (NULL/"" name: the caller itself).
 * NoSuchEntity 404 when absent. */
int identity_find_user(bus_ctx_t *ctx, const json_t *body, identity_user_t *u, verr_t *e);
/* The caller's account id (from the envelope); ValidationError if none. */
const char *identity_caller_account(bus_ctx_t *ctx, verr_t *e);
json_t *identity_user_json(const identity_user_t *u);
/* Publish an invalidation event so every gateway drops cached keys/policies. */
void identity_changed(bus_ctx_t *ctx, const char *what, const char *id);

/* handlers: bootstrap.c */
int identity_bootstrap(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* signing.c */
int identity_signing_key(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int identity_sign_v2(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* The caller object (account_id, user_id, user_name, arn, is_admin, is_operator,
 * policies, account_name) of the user in row 0 of res, columns c.. c+6: user id, name,
 * path, is_admin, account id, is_operator, account name. */
int identity_who(bus_ctx_t *ctx, PGresult *res, int c, json_t **who, verr_t *e);
/* sessions.c: web console logins (docs/console.md) */
int identity_console_login(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int identity_console_session(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int identity_console_logout(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int identity_console_revoke(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* Forget every console session of user_id (a password change, a revocation). */
int identity_console_end_sessions(bus_ctx_t *ctx, const char *user_id, verr_t *e);
/* Housekeeping: delete expired sessions and stale failure counts. */
void identity_console_expire(db_t *db);
/* users.c (IAM) */
int iam_create_user(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int iam_get_user(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int iam_list_users(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int iam_delete_user(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* access_keys.c (IAM) */
int iam_create_access_key(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int iam_list_access_keys(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int iam_update_access_key(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int iam_delete_access_key(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* user_policies.c (IAM) */
int iam_put_user_policy(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int iam_get_user_policy(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int iam_list_user_policies(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int iam_delete_user_policy(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* accounts.c (operator, over the bus only) */
int identity_create_account(bus_ctx_t *ctx, const char *acct, const char *name, int is_operator,
                            json_t **reply, verr_t *e);
int identity_account_create(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int identity_account_list(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int identity_account_delete(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int identity_set_password(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int identity_verify_password(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* contacts.c: e-mail addresses and canonical user ids */
int identity_account_set_email(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int identity_account_lookup(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* quotas.c */
/* The account's limit for resource (a per-account override, else quota.<resource>). */
int identity_quota_of(bus_ctx_t *ctx, const char *acct, const char *resource, long long *max, verr_t *e);
int identity_quota_get(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int identity_quota_set(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* operator_api.c: the same as API actions for the operator account (the console) */
int identity_describe_accounts(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int identity_describe_account_quotas(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
int identity_modify_account_quota(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);

#endif
