/* tags.h - EC2 tags stored per service in its own `tags` table:
 *   CREATE TABLE tags (resource_id text, account_id char(12), key text, value text,
 *                      PRIMARY KEY (resource_id, key));
 * The connection's search_path picks the service's table; account_id is the account
 * that owns the resource (also when the operator's administrator tags it).
 *
 * Besides the helpers a service uses when it creates and describes its resources, this
 * is the whole of CreateTags, DeleteTags and DescribeTags on a service's side: the
 * service lists its kinds of taggable resources, each with its ownership check, and
 * routes "<service>.CreateTags" etc. to tags_*_handler. The gateway sends each service
 * only ids with one of its prefixes. */
#ifndef VIRGA_TAGS_H
#define VIRGA_TAGS_H

#include <jansson.h>

#include "db.h"
#include "strbuf.h"
#include "service.h"

#define TAGS_MAX_PER_RESOURCE 50
#define TAGS_ACCOUNT_MAX 16   /* an account id (12 digits) + NUL, with room */

/* The service's ownership check for one kind: write into owner the account that owns
 * resource `id` (which has the kind's prefix). When account is not NULL the resource
 * must belong to that account; NULL means any account's (the operator's administrator).
 * A resource that does not exist (or, for account, is another account's) is the
 * service's own NotFound error with a 4xx status ("InvalidAMIID.NotFound"); database
 * failures are 5xx. Create and Delete call it inside their transaction; Describe calls
 * it once per tagged resource to leave out tags whose resource is gone. */
typedef int (*tags_owner_fn)(db_t *db, const char *id, const char *account, char owner[TAGS_ACCOUNT_MAX],
                             verr_t *e);

/* Every taggable kind of resource in the cloud: which id prefix, what EC2 calls it, and
 * which service keeps it (and its tags). The gateway routes tag actions with it; each
 * service's tags_kind_t table says how to find an owner for its own prefixes. The table
 * ends with {NULL, NULL, NULL}. */
typedef struct tags_resource {
    const char *prefix;         /* "ami": ids are "ami-<hex>" */
    const char *resource_type;  /* as EC2 names it in DescribeTags: "image", "key-pair" */
    const char *service;        /* "image": answers "image.CreateTags" ... */
} tags_resource_t;
extern const tags_resource_t tags_resources[];
/* The entry whose prefix id has (a well-formed id), or NULL. */
const tags_resource_t *tags_resource_of(const char *id);

/* One kind of taggable resource a service keeps; its table ends with {NULL, NULL}. */
typedef struct tags_kind {
    const char *prefix;         /* one of tags_resources[]'s */
    tags_owner_fn owner;
} tags_kind_t;

/* Set the tags of tag_set ([{"key","value"}], as describe_tag_spec returns) on a resource. */
int tags_put(db_t *db, const char *resource_id, const char *account, const json_t *tag_set, verr_t *e);
/* {resource_id: [{"key","value"}...]} for the account's resources (every account's when
 * account is NULL). */
json_t *tags_load(db_t *db, const char *account, verr_t *e);
/* The same for the n resources named (a page of a describe: what it shows, not the
 * whole account's tags). */
json_t *tags_load_ids(db_t *db, const char *const *ids, size_t n, verr_t *e);

/* The tags of n resources as the JSON text of their tagSet items, each resource's
 * {"key":..,"value":..} objects joined by commas in key order: what tags_load_ids' lists
 * dump to, without a jansson tree per tag (a page of 1,000 instances built 1,000 arrays
 * and objects, about 1 MB of fresh memory a page, to dump them again). */
typedef struct tags_text {
    strbuf_t text;              /* the items, resource after resource */
    strbuf_t names;             /* the resources that have tags, sorted by strcmp, each ending in NUL */
    size_t *name, *off, *len, n;   /* each one's name in names, its items in text */
} tags_text_t;
int tags_text_load_ids(db_t *db, const char *const *ids, size_t n, tags_text_t *out, verr_t *e);
/* The items of id's tags (*len 0 and "" when it has none). */
const char *tags_text_of(const tags_text_t *t, const char *id, size_t *len);
void tags_text_free(tags_text_t *t);

/* The Tag.N list of CreateTags ([{"Key","Value"}], Value defaulting to "") as a tagSet
 * ([{"key","value"}]), with EC2's checks (those of TagSpecification: at most 50 tags,
 * keys 1..128 characters not starting with "aws:", values <= 256, no key twice).
 * New array or NULL + e. */
json_t *tags_parse_create(const json_t *tag_list, verr_t *e);
/* The Tag.N list of DeleteTags: [{"key"}] (any value) or [{"key","value"}] (only that
 * value, even ""); an empty array when tag_list is NULL (every tag). NULL + e if bad. */
json_t *tags_parse_delete(const json_t *tag_list, verr_t *e);

/* The bus handlers, with the service's kinds. Bodies are the EC2 parameters as the
 * gateway passes them: ResourceId (array of ids), Tag (array), Filter, DryRun.
 * Create and Delete apply the whole request in one transaction (any error: nothing
 * changes); with DryRun "true" they check everything, change nothing and answer
 * DryRunOperation (412). An account may tag only its own resources; the operator's
 * administrator (caller is_operator and is_admin) any. */
int tags_create_handler(bus_ctx_t *ctx, const json_t *body, const tags_kind_t *kinds, json_t **reply, verr_t *e);
int tags_delete_handler(bus_ctx_t *ctx, const json_t *body, const tags_kind_t *kinds, json_t **reply, verr_t *e);
/* {"tagSet": [{"resourceId","resourceType","key","value"}]}: the tags of the caller's
 * live resources (every account's for the operator's administrator) matching Filter
 * (key, value, resource-id, resource-type, tag:<key>; wildcards), sorted by resource id
 * then key. */
int tags_describe_handler(bus_ctx_t *ctx, const json_t *body, const tags_kind_t *kinds, json_t **reply,
                          verr_t *e);

#endif
