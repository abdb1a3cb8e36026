/* s3_acl.c - S3 access control lists: what a request asks for (a canned ACL in x-amz-acl,
 * x-amz-grant-* headers, or an AccessControlPolicy document), the permissions an ACL
 * gives an account, and the AccessControlPolicy answer.
 *
 * Stored form (a bucket row's acl column holds the grants; an object's index entry holds
 * {"owner", "grants"}): grants are [{"g": grantee, "p": permission}] where the grantee is
 * an account id or a group (AllUsers, AuthenticatedUsers, LogDelivery). Accounts are
 * named on the wire by canonical user id (common/ids.c, derived from the account id) or by
 * e-mail; both are resolved through identity when an ACL is set, so the stored form needs
 * no lookup to evaluate. Display names are looked up when an ACL is read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ids.h"
#include "jsonutil.h"
#include "log.h"
#include "objectstore.h"
#include "s3_xmlbody.h"
#include "xml.h"

#define XSI "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
#define MAX_GRANTS 100   /* S3's limit on grants in one ACL */
#define GROUPS "http://acs.amazonaws.com/groups/"

static const struct {
    const char *name;
    unsigned bits;
} perms[] = {
    {"FULL_CONTROL", S3_FULL_CONTROL}, {"READ", S3_READ}, {"WRITE", S3_WRITE},
    {"READ_ACP", S3_READ_ACP},         {"WRITE_ACP", S3_WRITE_ACP},
};

static const struct {
    const char *name, *uri;
} groups[] = {
    {"AllUsers", GROUPS "global/AllUsers"},
    {"AuthenticatedUsers", GROUPS "global/AuthenticatedUsers"},
    {"LogDelivery", GROUPS "s3/LogDelivery"},
};

static unsigned perm_bits(const char *name)
{
    for (size_t i = 0; name && i < ARRAY_LEN(perms); i++)
        if (!strcmp(perms[i].name, name))
            return perms[i].bits;
    return 0;
}

static const char *group_of_uri(const char *uri)
{
    for (size_t i = 0; uri && i < ARRAY_LEN(groups); i++)
        if (!strcmp(groups[i].uri, uri))
            return groups[i].name;
    return NULL;
}

static const char *uri_of_group(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(groups); i++)
        if (!strcmp(groups[i].name, name))
            return groups[i].uri;
    return NULL;
}

/* ---- evaluation ----------------------------------------------------------------- */

unsigned s3_acl_perms(const json_t *grants, const char *account, int public_ok)
{
    unsigned bits = 0;
    size_t i;
    json_t *g;
    json_array_foreach(grants, i, g) {
        const char *who = json_str(g, "g", "");
        int applies = (account && *account && !strcmp(who, account)) ||
                      (public_ok && (!strcmp(who, "AllUsers") ||
                                     (account && *account && !strcmp(who, "AuthenticatedUsers"))));
        if (applies)
            bits |= perm_bits(json_str(g, "p", NULL));
    }
    return bits;
}

int s3_acl_is_public(const json_t *grants)
{
    size_t i;
    json_t *g;
    json_array_foreach(grants, i, g) {
        const char *who = json_str(g, "g", "");
        if (!strcmp(who, "AllUsers") || !strcmp(who, "AuthenticatedUsers"))
            return 1;
    }
    return 0;
}

int s3_acl_owner_only(const json_t *grants, const char *owner)
{
    size_t i;
    json_t *g;
    json_array_foreach(grants, i, g)
        if (strcmp(json_str(g, "g", ""), owner) || perm_bits(json_str(g, "p", NULL)) != S3_FULL_CONTROL)
            return 0;
    return 1;
}

static void grant(json_t *grants, const char *who, const char *perm)
{
    size_t i;
    json_t *g;
    json_array_foreach(grants, i, g)   /* canned ACLs name the owner twice at most */
        if (!strcmp(json_str(g, "g", ""), who) && !strcmp(json_str(g, "p", ""), perm))
            return;
    json_array_append_new(grants, json_pack("{s:s, s:s}", "g", who, "p", perm));
}

static json_t *acl_new(const char *owner)
{
    return json_pack("{s:s, s:[]}", "owner", owner, "grants");
}

/* ---- canned ACLs ---------------------------------------------------------------- */

enum { W_OWNER, W_BUCKET_OWNER, W_ALL, W_AUTH, W_LOG, W_EXEC };

static const struct canned {
    const char *name;
    struct {
        int who;
        const char *perm;
    } g[3];
    int n;
} canned[] = {
    {"private", {{W_OWNER, "FULL_CONTROL"}}, 1},
    {"public-read", {{W_OWNER, "FULL_CONTROL"}, {W_ALL, "READ"}}, 2},
    {"public-read-write", {{W_OWNER, "FULL_CONTROL"}, {W_ALL, "READ"}, {W_ALL, "WRITE"}}, 3},
    {"authenticated-read", {{W_OWNER, "FULL_CONTROL"}, {W_AUTH, "READ"}}, 2},
    /* EC2 reads AMI bundles with it on AWS; here the operator account's image service */
    {"aws-exec-read", {{W_OWNER, "FULL_CONTROL"}, {W_EXEC, "READ"}}, 2},
    {"bucket-owner-read", {{W_OWNER, "FULL_CONTROL"}, {W_BUCKET_OWNER, "READ"}}, 2},
    {"bucket-owner-full-control", {{W_OWNER, "FULL_CONTROL"}, {W_BUCKET_OWNER, "FULL_CONTROL"}}, 2},
    {"log-delivery-write", {{W_OWNER, "FULL_CONTROL"}, {W_LOG, "WRITE"}, {W_LOG, "READ_ACP"}}, 3},
};

json_t *s3_acl_canned(const objectstore_t *os, const char *name, const char *owner, const char *bucket_owner,
                      verr_t *e)
{
    for (size_t i = 0; i < ARRAY_LEN(canned); i++) {
        if (strcmp(canned[i].name, name))
            continue;
        json_t *acl = acl_new(owner), *grants = json_object_get(acl, "grants");
        for (int k = 0; k < canned[i].n; k++) {
            int w = canned[i].g[k].who;
            const char *who = w == W_OWNER ? owner : w == W_BUCKET_OWNER ? bucket_owner : w == W_ALL ? "AllUsers"
                            : w == W_AUTH ? "AuthenticatedUsers" : w == W_LOG ? "LogDelivery" : os->operator_account;
            if (*who && !(w == W_BUCKET_OWNER && !strcmp(who, owner)))   /* the owner has full control */
                grant(grants, who, canned[i].g[k].perm);
        }
        return acl;
    }
    verr_set(e, 400, "InvalidArgument", "Invalid canned ACL: %.64s", name);
    return NULL;
}

/* ---- grantees named by the request ---------------------------------------------- */

/* The accounts behind named's {"id"} and {"email"} grantees, asked of identity once per
 * request (s3_ask: without holding this thread). *reply stays NULL when none is named. */
static int lookup(s3_req_t *r, const json_t *named, json_t **reply, verr_t *e)
{
    json_t *ids = json_array(), *mails = json_array(), *g;
    size_t i;
    json_array_foreach(named, i, g) {
        if (json_object_get(g, "id"))
            json_array_append(ids, json_object_get(g, "id"));
        if (json_object_get(g, "email"))
            json_array_append(mails, json_object_get(g, "email"));
    }
    *reply = NULL;
    if (!json_array_size(ids) && !json_array_size(mails)) {
        json_decref(ids);
        json_decref(mails);
        return 0;
    }
    json_t *body = json_pack("{s:o, s:o}", "canonical_ids", ids, "emails", mails);
    return s3_ask(r, "identity", "identity.account_lookup", body, reply, e);
}

/* Replace {"id"} and {"email"} grantees by account ids. */
static int resolve(s3_req_t *r, json_t *named, json_t *grants, verr_t *e)
{
    json_t *reply = NULL, *g;
    size_t i;
    int rc = lookup(r, named, &reply, e);
    json_t *found = json_object_get(reply, "accounts");
    json_array_foreach(named, i, g) {
        if (rc < 0)
            break;
        const char *id = json_str(g, "id", NULL), *mail = json_str(g, "email", NULL), *account = NULL;
        size_t k;
        json_t *a;
        json_array_foreach(found, k, a)
            if ((id && !strcmp(json_str(a, "canonical_id", ""), id)) ||
                (mail && !strcasecmp(json_str(a, "email", ""), mail)))
                account = json_str(a, "account_id", NULL);
        if (json_object_get(g, "g"))
            account = json_str(g, "g", NULL);
        if (!account && mail)
            rc = verr_set(e, 400, "UnresolvableGrantByEmailAddress",
                          "The e-mail address you provided does not match any account on record.");
        else if (!account)
            rc = verr_set(e, 400, "InvalidArgument", "Invalid id");
        else
            grant(grants, account, json_str(g, "p", ""));
    }
    json_decref(reply);
    return rc;
}

/* One grantee as a request names it: id (canonical), emailAddress or uri (a group). */
static int named_grantee(json_t *named, const char *type, const char *value, const char *perm, verr_t *e)
{
    if (json_array_size(named) >= MAX_GRANTS)
        return verr_set(e, 400, "MalformedACLError", "An ACL may have at most %d grants.", MAX_GRANTS);
    if (!strcasecmp(type, "id") || !strcmp(type, "CanonicalUser")) {
        if (!ids_canonical_valid(value))
            return verr_set(e, 400, "InvalidArgument", "Invalid id");
        json_array_append_new(named, json_pack("{s:s, s:s}", "id", value, "p", perm));
    } else if (!strcasecmp(type, "emailAddress") || !strcmp(type, "AmazonCustomerByEmail")) {
        if (!*value || strlen(value) > 254)
            return verr_set(e, 400, "UnresolvableGrantByEmailAddress",
                            "The e-mail address you provided does not match any account on record.");
        json_array_append_new(named, json_pack("{s:s, s:s}", "email", value, "p", perm));
    } else if (!strcasecmp(type, "uri") || !strcmp(type, "Group")) {
        const char *g = group_of_uri(value);
        if (!g)
            return verr_set(e, 400, "InvalidArgument", "Invalid group uri");
        json_array_append_new(named, json_pack("{s:s, s:s}", "g", g, "p", perm));
    } else
        return verr_set(e, 400, "InvalidArgument", "Invalid grantee type: %.32s", type);
    return 0;
}

/* x-amz-grant-read: id="...", emailAddress="...", uri="..." (values quoted or not). */
static int parse_grant_header(json_t *named, const char *value, const char *perm, verr_t *e)
{
    const char *p = value;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            return 0;
        const char *eq = strchr(p, '=');
        if (!eq || eq == p || eq - p > 32)
            return verr_set(e, 400, "InvalidArgument", "Invalid grant header: %.128s", value);
        char type[40];
        snprintf(type, sizeof type, "%.*s", (int)(eq - p), p);
        type[strcspn(type, " \t")] = 0;
        const char *v = eq + 1;
        while (*v == ' ')
            v++;
        size_t n;
        const char *end;
        if (*v == '"') {
            v++;
            const char *q = strchr(v, '"');
            if (!q)
                return verr_set(e, 400, "InvalidArgument", "Invalid grant header: %.128s", value);
            n = (size_t)(q - v);
            end = q + 1;
        } else {
            n = strcspn(v, ",");
            end = v + n;
            while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
        }
        char *val = xasprintf("%.*s", (int)n, v);
        int rc = named_grantee(named, type, val, perm, e);
        free(val);
        if (rc < 0)
            return -1;
        p = end;
    }
}

static const struct {
    const char *header, *perm;
} grant_headers[] = {
    {"x-amz-grant-read", "READ"},          {"x-amz-grant-write", "WRITE"},
    {"x-amz-grant-read-acp", "READ_ACP"},  {"x-amz-grant-write-acp", "WRITE_ACP"},
    {"x-amz-grant-full-control", "FULL_CONTROL"},
};

/* With BucketOwnerEnforced, ACLs no longer grant anything: S3 refuses to set any other
 * than the bucket owner's full control (bucket-owner-full-control, or its equivalent). */
static int enforced_ok(const s3_bucket_t *b, const json_t *acl, verr_t *e)
{
    if (strcmp(b->ownership, "BucketOwnerEnforced") || !acl)
        return 0;
    const json_t *grants = json_object_get(acl, "grants");
    size_t i;
    json_t *g;
    int ok = s3_acl_perms(grants, b->owner, 0) == S3_FULL_CONTROL;
    json_array_foreach(grants, i, g) {
        const char *who = json_str(g, "g", "");
        if ((strcmp(who, b->owner) && strcmp(who, json_str(acl, "owner", ""))) ||
            perm_bits(json_str(g, "p", NULL)) != S3_FULL_CONTROL)
            ok = 0;
    }
    return ok ? 0 : verr_set(e, 400, "AccessControlListNotSupported", "The bucket does not allow ACLs");
}

/* The grantees the x-amz-grant-* headers name, into named. */
static int header_grantees(s3_req_t *r, json_t *named, verr_t *e)
{
    int rc = 0;
    for (size_t i = 0; i < ARRAY_LEN(grant_headers) && rc == 0; i++) {
        const char *v = s3_header(r, grant_headers[i].header);
        if (v)
            rc = parse_grant_header(named, v, grant_headers[i].perm, e);
    }
    return rc;
}

int s3_acl_prefetch(s3_req_t *r, verr_t *e)
{
    int any_grant = 0;
    for (size_t i = 0; i < ARRAY_LEN(grant_headers); i++)
        any_grant |= s3_header(r, grant_headers[i].header) != NULL;
    if (!any_grant)
        return 0;
    json_t *named = json_array(), *reply = NULL;
    verr_t ignored = {0};
    int rc = 0;
    /* a header that does not parse is refused later, by the operation, in its own words */
    if (header_grantees(r, named, &ignored) == 0 && lookup(r, named, &reply, e) < 0 && r->waiting)
        rc = -1;
    json_decref(reply);
    json_decref(named);
    return rc;
}

int s3_acl_from_request(s3_req_t *r, const s3_bucket_t *b, const char *owner, json_t **acl, verr_t *e)
{
    *acl = NULL;
    const char *cannedname = s3_header(r, "x-amz-acl");
    int any_grant = 0;
    for (size_t i = 0; i < ARRAY_LEN(grant_headers); i++)
        any_grant |= s3_header(r, grant_headers[i].header) != NULL;
    if (cannedname && any_grant)
        return verr_set(e, 400, "InvalidRequest", "Specifying both Canned ACLs and Header Grants is not allowed");
    if (cannedname) {
        if (!(*acl = s3_acl_canned(r->os, cannedname, owner, b->owner, e)))
            return -1;
    } else if (any_grant) {
        json_t *named = json_array();
        int rc = header_grantees(r, named, e);
        *acl = acl_new(owner);
        if (rc == 0)
            rc = resolve(r, named, json_object_get(*acl, "grants"), e);
        json_decref(named);
        if (rc < 0) {
            json_decref(*acl);
            *acl = NULL;
            return -1;
        }
    }
    if (enforced_ok(b, *acl, e) < 0) {
        json_decref(*acl);
        *acl = NULL;
        return -1;
    }
    return 0;
}

/* ---- AccessControlPolicy documents ---------------------------------------------- */

static int malformed(verr_t *e)
{
    return verr_set(e, 400, "MalformedACLError",
                    "The XML you provided was not well-formed or did not validate against our published schema");
}

static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name))
            return c;
    return NULL;
}

/* One <Grant>: its grantee (by xsi:type) and permission into named. */
static int xml_grant(xmlNodePtr g, json_t *named, verr_t *e)
{
    xmlNodePtr grantee = child(g, "Grantee");
    xmlChar *perm = s3_xml_child_text(g, "Permission");
    xmlChar *type = grantee ? xmlGetProp(grantee, (const xmlChar *)"type") : NULL;
    static const struct {
        const char *type, *elem;
    } kinds[] = {{"CanonicalUser", "ID"}, {"AmazonCustomerByEmail", "EmailAddress"}, {"Group", "URI"}};
    int rc = -1;
    if (!grantee || !perm || !perm_bits((const char *)perm)) {
        malformed(e);
        goto out;
    }
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
        if (type && strcmp((const char *)type, kinds[i].type))
            continue;
        xmlChar *v = s3_xml_child_text(grantee, kinds[i].elem);
        if (!v)
            continue;
        rc = named_grantee(named, kinds[i].type, (const char *)v, (const char *)perm, e);
        xmlFree(v);
        goto out;
    }
    malformed(e);
out:
    xmlFree(perm);
    xmlFree(type);
    return rc;
}

int s3_acl_from_xml(s3_req_t *r, const s3_bucket_t *b, const char *owner, json_t **acl, verr_t *e)
{
    *acl = NULL;
    xmlDocPtr doc = s3_xml_parse(r->body, r->body_len, "AccessControlPolicy", e);
    if (!doc)
        return malformed(e);
    xmlNodePtr root = xmlDocGetRootElement(doc), list = child(root, "AccessControlList");
    json_t *named = json_array();
    int rc = list ? 0 : malformed(e);
    /* An Owner, if given, must be the resource's owner: an ACL cannot give a resource away. */
    xmlChar *oid = s3_xml_child_text(child(root, "Owner"), "ID");
    if (rc == 0 && oid) {
        char canon[65];
        ids_canonical_user(owner, canon);
        if (strcmp((const char *)oid, canon))
            rc = verr_set(e, 403, "AccessDenied", "The Owner ID in the ACL is not the owner of the resource");
    }
    xmlFree(oid);
    for (xmlNodePtr g = list ? list->children : NULL; g && rc == 0; g = g->next)
        if (g->type == XML_ELEMENT_NODE)
            rc = strcmp((const char *)g->name, "Grant") ? malformed(e) : xml_grant(g, named, e);
    xmlFreeDoc(doc);
    if (rc == 0) {
        *acl = acl_new(owner);
        rc = resolve(r, named, json_object_get(*acl, "grants"), e);
    }
    json_decref(named);
    if (rc == 0)
        rc = enforced_ok(b, *acl, e);
    if (rc < 0) {
        json_decref(*acl);
        *acl = NULL;
    }
    return rc;
}

/* ---- answers -------------------------------------------------------------------- */

/* Account id -> display name (the account's name), for every account the ACL names. */
static json_t *display_names(s3_req_t *r, const char *owner, const json_t *grants)
{
    json_t *ids = json_array(), *names = json_object(), *g, *reply = NULL;
    size_t i;
    verr_t e = {0};
    if (*owner)
        json_array_append_new(ids, json_string(owner));
    json_array_foreach(grants, i, g)
        if (!uri_of_group(json_str(g, "g", "")))
            json_array_append_new(ids, json_string(json_str(g, "g", "")));
    json_t *body = json_pack("{s:o}", "account_ids", ids);
    if (s3_ask(r, "identity", "identity.account_lookup", body, &reply, &e) < 0 && !r->waiting)
        log_warn("GetAcl: no display names: %s", e.message);   /* the ACL is still right without them */
    json_array_foreach(json_object_get(reply, "accounts"), i, g)
        json_object_set(names, json_str(g, "account_id", ""), json_object_get(g, "name"));
    json_decref(reply);
    return names;
}

void s3_acl_reply(s3_req_t *r, const char *owner, const json_t *grants, http_resp_t *resp, verr_t *e)
{
    (void)e;
    JSON_AUTO json_t *names = display_names(r, owner, grants);
    if (r->waiting)
        return;   /* end runs again when identity has answered */
    char canon[65];
    xml_t *x = xml_new();
    xml_open(x, "AccessControlPolicy", S3_NS);
    xml_open(x, "Owner", NULL);
    ids_canonical_user(owner, canon);
    xml_elem(x, "ID", canon);
    xml_elem(x, "DisplayName", json_str(names, owner, ""));
    xml_close(x);
    xml_open(x, "AccessControlList", NULL);
    size_t i;
    json_t *g;
    json_array_foreach(grants, i, g) {
        const char *who = json_str(g, "g", ""), *uri = uri_of_group(who);
        xml_open(x, "Grant", NULL);
        if (uri) {
            xml_open_attrs(x, "Grantee", XSI " xsi:type=\"Group\"");
            xml_elem(x, "URI", uri);
        } else {
            xml_open_attrs(x, "Grantee", XSI " xsi:type=\"CanonicalUser\"");
            ids_canonical_user(who, canon);
            xml_elem(x, "ID", canon);
            xml_elem(x, "DisplayName", json_str(names, who, ""));
        }
        xml_close(x);
        xml_elem(x, "Permission", json_str(g, "p", ""));
        xml_close(x);
    }
    s3_xml_send(resp, x);
}

/* ---- objects ------------------------------------------------------------------- */

json_t *s3_object_acl(const s3_bucket_t *b, const os_meta_t *m)
{
    if (json_is_object(m->acl) && json_is_array(json_object_get(m->acl, "grants")))
        return json_incref(m->acl);
    /* written before ACLs were kept: the bucket owner's, public-read if it said so */
    json_t *acl = acl_new(b->owner), *grants = json_object_get(acl, "grants");
    grant(grants, b->owner, "FULL_CONTROL");
    if (!strcmp(json_str(m->extra, "x-amz-acl", "private"), "public-read"))
        grant(grants, "AllUsers", "READ");
    return acl;
}

const char *s3_object_owner(const s3_bucket_t *b, const char *account, json_t **acl)
{
    const char *owner = account && *account ? account : b->owner;
    if (!strcmp(b->ownership, "BucketOwnerEnforced"))
        owner = b->owner;
    else if (!strcmp(b->ownership, "BucketOwnerPreferred") && *acl &&
             s3_acl_perms(json_object_get(*acl, "grants"), b->owner, 0) == S3_FULL_CONTROL)
        owner = b->owner;   /* the writer handed it over with bucket-owner-full-control */
    if (!*acl) {
        *acl = acl_new(owner);
        grant(json_object_get(*acl, "grants"), owner, "FULL_CONTROL");
    } else
        json_object_set_new(*acl, "owner", json_string(owner));
    if (!strcmp(b->ownership, "BucketOwnerEnforced")) {
        json_decref(*acl);   /* ACLs do not count any more: keep only the owner's */
        *acl = acl_new(owner);
        grant(json_object_get(*acl, "grants"), owner, "FULL_CONTROL");
    }
    return owner;
}
