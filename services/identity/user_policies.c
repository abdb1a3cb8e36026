/* user_policies.c - IAM inline user policies: PutUserPolicy (validated with
 * common/policy.c), GetUserPolicy (the document URL-encoded, as IAM returns it and
 * botocore expects), ListUserPolicies, DeleteUserPolicy. A change publishes an
 * invalidation event: gateways cache a user's policies with its signing key. */
#include <ctype.h>
#include <string.h>

#include "identity.h"
#include "jsonutil.h"
#include "policy.h"
#include "sigv4.h"

#define MAX_POLICY_BYTES 2048   /* IAM's limit for inline user policies */

static int valid_policy_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 128)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_+=,.@-", *s))
            return 0;
    return 1;
}

static int policy_name_arg(const json_t *body, const char **name, verr_t *e)
{
    *name = json_str(body, "PolicyName", NULL);
    if (!valid_policy_name(*name))
        return verr_set(e, 400, "ValidationError", "PolicyName must match [\\w+=,.@-]+ and be 1 to 128 characters");
    return 0;
}

int iam_put_user_policy(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *name, *doc = json_str(body, "PolicyDocument", NULL);
    if (policy_name_arg(body, &name, e) < 0)
        return -1;
    if (!doc || !*doc)
        return verr_set(e, 400, "ValidationError", "PolicyDocument is required");
    if (strlen(doc) > MAX_POLICY_BYTES)
        return verr_set(e, 409, "LimitExceeded", "Maximum policy size of %d bytes exceeded for user", MAX_POLICY_BYTES);
    json_t *parsed = json_parse_bounded(doc, strlen(doc), MAX_POLICY_BYTES);
    if (!parsed)
        return verr_set(e, 400, "MalformedPolicyDocument", "Syntax errors in policy.");
    int valid = policy_validate(parsed, e);
    json_decref(parsed);
    if (valid < 0)
        return -1;
    identity_user_t u;
    if (identity_find_user(ctx, body, &u, e) < 0)
        return -1;
    const char *p[] = {u.id, name, doc};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "policy_put",
        "INSERT INTO user_policies (user_id, name, document) VALUES ($1, $2, $3) "
        "ON CONFLICT (user_id, name) DO UPDATE SET document = EXCLUDED.document", 3, p);
    if (!r && !strcmp(db_last_sqlstate(service_db(ctx)), "23503"))   /* foreign key: DeleteUser won */
        return verr_set(e, 404, "NoSuchEntity", "The user with name %s cannot be found.", u.name);
    if (!r)
        return -1;
    identity_changed(ctx, "user", u.id);
    *reply = json_object();
    return 0;
}

int iam_get_user_policy(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *name;
    identity_user_t u;
    if (policy_name_arg(body, &name, e) < 0 || identity_find_user(ctx, body, &u, e) < 0)
        return -1;
    const char *p[] = {u.id, name};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "policy_get",
        "SELECT document FROM user_policies WHERE user_id = $1 AND name = $2", 2, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0)
        return verr_set(e, 404, "NoSuchEntity", "The user policy with name %s cannot be found.", name);
    const char *doc = PQgetvalue(r, 0, 0);
    char *enc = sigv4_uri_encode(doc, strlen(doc), 0);
    *reply = json_pack("{s:s, s:s, s:s}", "UserName", u.name, "PolicyName", name, "PolicyDocument", enc);
    free(enc);
    return 0;
}

int iam_list_user_policies(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    identity_user_t u;
    if (identity_find_user(ctx, body, &u, e) < 0)
        return -1;
    const char *p[] = {u.id};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "policy_list",
        "SELECT name FROM user_policies WHERE user_id = $1 ORDER BY name", 1, p);
    if (!r)
        return -1;
    json_t *names = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(names, json_string(PQgetvalue(r, i, 0)));
    *reply = json_pack("{s:o, s:b}", "PolicyNames", names, "IsTruncated", 0);
    return 0;
}

int iam_delete_user_policy(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *name;
    identity_user_t u;
    if (policy_name_arg(body, &name, e) < 0 || identity_find_user(ctx, body, &u, e) < 0)
        return -1;
    const char *p[] = {u.id, name};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "policy_delete",
        "DELETE FROM user_policies WHERE user_id = $1 AND name = $2", 2, p);
    if (!r)
        return -1;
    if (strcmp(PQcmdTuples(r), "1"))
        return verr_set(e, 404, "NoSuchEntity", "The user policy with name %s cannot be found.", name);
    identity_changed(ctx, "user", u.id);
    *reply = json_object();
    return 0;
}
