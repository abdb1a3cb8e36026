/* contacts.c - what other services name an account by besides its id: the e-mail
 * address the operator gives it (identity.account_set_email, virgadm account email) and
 * its S3 canonical user id (derived: common/ids.c ids_canonical_user). The object store
 * resolves ACL grantees and display names with identity.account_lookup. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "jsonutil.h"

#define LOOKUP_MAX 100   /* ids and addresses per lookup */

/* A plausible address: one '@' with something on each side, no spaces or controls,
 * at most 254 bytes (RFC 5321's path limit). Stored lower-case: S3 matches e-mail
 * grantees case-insensitively. */
static int email_normal(const char *in, char out[256])
{
    size_t n = in ? strlen(in) : 0;
    if (n < 3 || n > 254)
        return -1;
    int at = -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',' || c == '"')
            return -1;
        if (c == '@') {
            if (at >= 0)
                return -1;
            at = (int)i;
        }
        out[i] = (char)tolower(c);
    }
    out[n] = 0;
    return at > 0 && (size_t)at < n - 1 ? 0 : -1;
}

/* {account_id, email} (email "" removes it) → {account_id, email}. Operator only (virgadm). */
int identity_account_set_email(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *acct = json_str(body, "account_id", NULL), *email = json_str(body, "email", NULL);
    char norm[256] = "";
    if (!acct || strlen(acct) != 12)
        return verr_set(e, 400, "InvalidParameterValue", "account_id must be 12 digits");
    if (!email || (*email && email_normal(email, norm) < 0))
        return verr_set(e, 400, "InvalidParameterValue", "email must be an address like name@example.com");
    const char *p[] = {acct, *norm ? norm : NULL};
    PG_AUTO PGresult *r = db_query(service_db(ctx), e,
        "UPDATE accounts SET email = $2::text WHERE id = $1 AND ($2::text IS NULL OR NOT EXISTS "
        "(SELECT 1 FROM accounts WHERE email = $2::text AND id <> $1)) RETURNING id", 2, p);
    if (!r)
        return -1;
    if (PQntuples(r) == 0) {
        const char *q[] = {acct};
        PG_AUTO PGresult *x = db_query(service_db(ctx), e, "SELECT 1 FROM accounts WHERE id = $1", 1, q);
        if (!x)
            return -1;
        if (PQntuples(x) == 0)
            return verr_set(e, 404, "NoSuchEntity", "no account %s", acct);
        return verr_set(e, 409, "EntityAlreadyExists", "another account has the address %s", norm);
    }
    identity_changed(ctx, "account", acct);
    *reply = json_pack("{s:s, s:s}", "account_id", acct, "email", norm);
    return 0;
}

/* The strings of body[name] (an array of at most LOOKUP_MAX strings) as JSON text. */
static char *string_list(const json_t *body, const char *name, int lower, size_t *count, verr_t *e)
{
    json_t *in = json_object_get(body, name), *out = json_array(), *v;
    size_t i;
    if (in && !json_is_array(in)) {
        json_decref(out);
        verr_set(e, 400, "InvalidParameterValue", "%s must be an array of strings", name);
        return NULL;
    }
    json_array_foreach(in, i, v) {
        char norm[256];
        const char *s = json_string_value(v);
        if (!s || strlen(s) > 254) {
            json_decref(out);
            verr_set(e, 400, "InvalidParameterValue", "%s must be an array of strings", name);
            return NULL;
        }
        if (lower && email_normal(s, norm) == 0)
            s = norm;
        json_array_append_new(out, json_string(s));
    }
    *count += json_array_size(out);
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    return text;
}

static int lookup(bus_ctx_t *ctx, const char *ids, const char *canon, const char *mails, json_t **reply, verr_t *e)
{
    const char *p[] = {ids, canon, mails};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "account_lookup",
        "SELECT id, name, canonical_id, coalesce(email, '') FROM accounts "
        "WHERE id::text IN (SELECT jsonb_array_elements_text($1::jsonb)) "
        "OR canonical_id IN (SELECT jsonb_array_elements_text($2::jsonb)) "
        "OR email IN (SELECT jsonb_array_elements_text($3::jsonb)) ORDER BY id", 3, p);
    if (!r)
        return -1;
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s}", "account_id", PQgetvalue(r, i, 0),
                                              "name", PQgetvalue(r, i, 1), "canonical_id", PQgetvalue(r, i, 2),
                                              "email", PQgetvalue(r, i, 3)));
    *reply = json_pack("{s:o}", "accounts", list);
    return 0;
}

/* {account_ids?, canonical_ids?, emails?} → {accounts: [{account_id, name, canonical_id,
 * email}]} for those that exist (unknown ones are simply missing from the answer). */
int identity_account_lookup(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    size_t n = 0;
    char *ids = string_list(body, "account_ids", 0, &n, e);
    char *canon = ids ? string_list(body, "canonical_ids", 0, &n, e) : NULL;
    char *mails = canon ? string_list(body, "emails", 1, &n, e) : NULL;
    int rc = -1;
    if (mails && n > LOOKUP_MAX)
        verr_set(e, 400, "InvalidParameterValue", "at most %d accounts per lookup", LOOKUP_MAX);
    else if (mails)
        rc = lookup(ctx, ids, canon, mails, reply, e);
    free(ids);
    free(canon);
    free(mails);
    return rc;
}
