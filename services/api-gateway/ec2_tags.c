/* ec2_tags.c - CreateTags, DeleteTags and DescribeTags. A tag lives beside its resource,
 * in the `tags` table of the service that owns the resource (common/tags.c), so the
 * gateway tells owners apart by id prefix: Create and Delete send each service its own
 * ids ("image.CreateTags" with the ami-/aki-/ari- ids, "compute.CreateTags" with the
 * key- ids), and DescribeTags asks every service that has taggable resources and
 * merges their answers into one list, sorted and paged here. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "describe.h"
#include "gateway.h"
#include "jsonutil.h"
#include "tags.h"

/* The service that keeps id's resource (common/tags.c's table), or NULL. */
static const char *owner_of(const char *id)
{
    const tags_resource_t *t = tags_resource_of(id);
    return t ? t->service : NULL;
}

/* ResourceId.N grouped by owning service: {"image": ["ami-..."], "compute": [...]}. */
static json_t *group_ids(const json_t *params, verr_t *e)
{
    json_t *ids = json_object_get(params, "ResourceId"), *v;
    if (!json_is_array(ids)) {
        verr_set(e, 400, "InvalidParameterValue", "Resource ids are a list: ResourceId.N");
        return NULL;
    }
    json_t *groups = json_object();
    size_t i;
    json_array_foreach(ids, i, v) {
        const char *svc = owner_of(json_string_value(v));
        if (!svc) {
            json_decref(groups);
            verr_set(e, 400, "InvalidID", "The ID '%.64s' is not valid", json_is_string(v) ? json_string_value(v) : "?");
            return NULL;
        }
        json_t *list = json_object_get(groups, svc);
        if (!list) {
            list = json_array();
            json_object_set_new(groups, svc, list);
        }
        json_array_append(list, v);
    }
    return groups;
}

/* Each service applies its part in one transaction. When the request spans several,
 * every part is first checked with DryRun, so a missing or foreign id in one leaves
 * the others unchanged too (short of a change between the two passes). A DryRun
 * request stops after the check, as EC2 does, with DryRunOperation. */
static int change(gw_req_t *r, const char *action, json_t **result, verr_t *e)
{
    JSON_AUTO json_t *groups = group_ids(r->params, e);
    if (!groups)
        return -1;
    json_t *tags = json_object_get(r->params, "Tag");
    int dry = json_flag(r->params, "DryRun");
    for (int check = dry || json_object_size(groups) > 1; check >= 0; check--) {
        const char *svc;
        json_t *ids;
        json_object_foreach(groups, svc, ids) {
            char type[96];
            snprintf(type, sizeof type, "%s.%s", svc, action);
            json_t *body = json_pack("{s:O}", "ResourceId", ids), *reply = NULL;
            if (tags)
                json_object_set(body, "Tag", tags);
            if (check)
                json_object_set_new(body, "DryRun", json_string("true"));
            int rc = gw_call(r, svc, type, body, &reply, e);
            json_decref(reply);
            if (check && rc < 0 && !strcmp(e->code, "DryRunOperation"))
                verr_clear(e);
            else if (rc < 0 || check)   /* a check that passes is DryRunOperation, never a reply */
                return rc < 0 ? -1 : verr_set(e, 500, "InternalError", "%s answered a DryRun %s", svc, action);
        }
        if (dry)
            return verr_set(e, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.");
    }
    *result = json_pack("{s:b}", "return", 1);
    return 0;
}

int ec2_create_tags(gw_req_t *r, json_t **result, verr_t *e)
{
    /* checked here too, so a bad tag fails before any service is asked */
    json_t *tags = tags_parse_create(json_object_get(r->params, "Tag"), e);
    if (!tags)
        return -1;
    json_decref(tags);
    return change(r, "CreateTags", result, e);
}

int ec2_delete_tags(gw_req_t *r, json_t **result, verr_t *e)
{
    json_t *tags = tags_parse_delete(json_object_get(r->params, "Tag"), e);
    if (!tags)
        return -1;
    json_decref(tags);
    return change(r, "DeleteTags", result, e);
}

/* The order of DescribeTags' answer, which NextToken resumes after: resource id, then
 * key (byte order). describe_page keeps these in tokens of under 256 bytes, so a long
 * key (128 characters may be 512 bytes) is cut, with a digest of the whole key after
 * the cut: still unique, still in key order up to the cut. */
static json_t *order_of(const char *rid, const char *key)
{
    size_t len = strlen(key);
    if (len <= 160)
        return json_sprintf("%.64s\x01%s", rid, key);
    size_t cut = 140;
    while (cut && ((unsigned char)key[cut] & 0xc0) == 0x80)   /* not inside a UTF-8 character */
        cut--;
    unsigned char h[crypto_generichash_BYTES_MIN];
    char hex[2 * sizeof h + 1];
    crypto_generichash(h, sizeof h, (const unsigned char *)key, len, NULL, 0);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    return json_sprintf("%.64s\x01%.*s\x02%s", rid, (int)cut, key, hex);
}

static int by_order(const void *a, const void *b)
{
    return strcmp(json_str(*(json_t *const *)a, "order", ""), json_str(*(json_t *const *)b, "order", ""));
}

/* Every service's tags matching the filters (each service filters its own), sorted. */
static json_t *gather(gw_req_t *r, verr_t *e)
{
    json_t *all = json_array();
    json_t *filters = json_object_get(r->params, "Filter");
    for (size_t i = 0; tags_resources[i].prefix; i++) {
        const char *svc = tags_resources[i].service;
        size_t j = 0;
        while (j < i && strcmp(tags_resources[j].service, svc))
            j++;
        if (j < i)
            continue;   /* asked already */
        char type[96];
        snprintf(type, sizeof type, "%s.DescribeTags", svc);
        json_t *body = json_object(), *reply = NULL, *it;
        if (filters)
            json_object_set(body, "Filter", filters);
        if (gw_call(r, svc, type, body, &reply, e) < 0) {
            json_decref(all);
            return NULL;
        }
        size_t k;
        json_array_foreach(json_object_get(reply, "tagSet"), k, it) {
            json_t *o = order_of(json_str(it, "resourceId", ""), json_str(it, "key", ""));
            if (!o)
                continue;   /* not UTF-8: not a tag of ours */
            json_t *item = json_pack("{s:s, s:s, s:s, s:s, s:o}", "resourceId", json_str(it, "resourceId", ""),
                                     "resourceType", json_str(it, "resourceType", ""), "key", json_str(it, "key", ""),
                                     "value", json_str(it, "value", ""), "order", o);
            if (item)
                json_array_append_new(all, item);
        }
        json_decref(reply);
    }
    size_t n = json_array_size(all);
    json_t **v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(all, i));
    qsort(v, n, sizeof *v, by_order);
    json_array_clear(all);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(all, v[i]);
    free(v);
    return all;
}

int ec2_describe_tags(gw_req_t *r, json_t **result, verr_t *e)
{
    JSON_AUTO json_t *all = gather(r, e);
    if (!all)
        return -1;
    json_t *page = NULL, *next = NULL, *it;
    if (describe_page(all, r->params, "order", 5, 1000, &page, &next, e) < 0)
        return -1;
    size_t i;
    json_array_foreach(page, i, it)
        json_object_del(it, "order");
    *result = json_pack("{s:o}", "tagSet", page);
    if (next)
        json_object_set_new(*result, "nextToken", next);
    return 0;
}
