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

/* A CreateTags or DeleteTags in flight: the ids grouped by owning service. */
struct change {
    const char *action;       /* "CreateTags" */
    json_t *groups;           /* {"image": [...], ...} */
    int checking;             /* this round is the DryRun check */
};

static void change_round(gw_req_t *r, struct change *c);

static void change_free(struct change *c)
{
    json_decref(c->groups);
    free(c);
}

/* A round's answers: the first error (in the services' order) is the answer; a check
 * that passed everywhere is followed by the change itself, unless DryRun was asked. */
static void change_done(gw_req_t *r, void *arg, json_t **replies, const verr_t *errs, size_t n)
{
    struct change *c = arg;
    const verr_t *failed = NULL;
    verr_t e = {0};
    for (size_t i = 0; i < n; i++) {
        json_decref(replies[i]);
        int passed_check = c->checking && !replies[i] && !strcmp(errs[i].code, "DryRunOperation");
        if (!failed && !replies[i] && !passed_check)
            failed = &errs[i];
        else if (!failed && c->checking && replies[i]) {   /* a check that passes is DryRunOperation, never a reply */
            verr_set(&e, 500, "InternalError", "a service answered a DryRun %s", c->action);
            failed = &e;
        }
    }
    if (failed) {
        gw_finish(r, -1, NULL, failed);
    } else if (c->checking && json_flag(r->params, "DryRun")) {
        verr_set(&e, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.");
        gw_finish(r, -1, NULL, &e);
    } else if (c->checking) {
        c->checking = 0;
        change_round(r, c);
        return;
    } else {
        gw_finish(r, 0, json_pack("{s:b}", "return", 1), NULL);
    }
    change_free(c);
}

/* Every service its own ids at once, as a check (DryRun) or for real. */
static void change_round(gw_req_t *r, struct change *c)
{
    size_t n = json_object_size(c->groups), i = 0;
    const char **services = xcalloc(n + 1, sizeof *services), **types = xcalloc(n + 1, sizeof *types);
    json_t **bodies = xcalloc(n + 1, sizeof *bodies);
    char **typebuf = xcalloc(n + 1, sizeof *typebuf);
    json_t *tags = json_object_get(r->params, "Tag");
    const char *svc;
    json_t *ids;
    json_object_foreach(c->groups, svc, ids) {
        services[i] = svc;
        typebuf[i] = xasprintf("%s.%s", svc, c->action);
        types[i] = typebuf[i];
        bodies[i] = json_pack("{s:O}", "ResourceId", ids);
        if (tags)
            json_object_set(bodies[i], "Tag", tags);
        if (c->checking)
            json_object_set_new(bodies[i], "DryRun", json_string("true"));
        i++;
    }
    gw_fanout(r, n, services, types, bodies, change_done, c);
    for (i = 0; i < n; i++)
        free(typebuf[i]);
    free(typebuf);
    free(services);
    free(types);
    free(bodies);
}

/* Each service applies its part in one transaction. When the request spans several,
 * every part is first checked with DryRun, so a missing or foreign id in one leaves
 * the others unchanged too (short of a change between the two passes). A DryRun
 * request stops after the check, as EC2 does, with DryRunOperation. The calls of a
 * round go out at once, and no thread waits for them. */
static int change(gw_req_t *r, const char *action, json_t **result, verr_t *e)
{
    (void)result;
    json_t *groups = group_ids(r->params, e);
    if (!groups)
        return -1;
    struct change *c = xcalloc(1, sizeof *c);
    c->action = action;
    c->groups = groups;
    c->checking = json_flag(r->params, "DryRun") || json_object_size(groups) > 1;
    change_round(r, c);
    return GW_ASYNC;
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

/* The services that own taggable resources, each once (common/tags.c's table). */
static size_t tag_services(const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; tags_resources[i].prefix && n < max; i++) {
        const char *svc = tags_resources[i].service;
        size_t j = 0;
        while (j < n && strcmp(out[j], svc))
            j++;
        if (j == n)
            out[n++] = svc;
    }
    return n;
}

/* Every service's tags (each filtered its own), merged, sorted and paged. */
static void describe_tags_done(gw_req_t *r, void *arg, json_t **replies, const verr_t *errs, size_t n)
{
    (void)arg;
    const verr_t *failed = NULL;
    for (size_t i = 0; i < n && !failed; i++)
        if (!replies[i])
            failed = &errs[i];
    if (failed) {
        for (size_t i = 0; i < n; i++)
            json_decref(replies[i]);
        gw_finish(r, -1, NULL, failed);
        return;
    }
    JSON_AUTO json_t *all = json_array();
    for (size_t i = 0; i < n; i++) {
        size_t k;
        json_t *it;
        json_array_foreach(json_object_get(replies[i], "tagSet"), k, it) {
            json_t *o = order_of(json_str(it, "resourceId", ""), json_str(it, "key", ""));
            if (!o)
                continue;   /* not UTF-8: not a tag of ours */
            json_t *item = json_pack("{s:s, s:s, s:s, s:s, s:o}", "resourceId", json_str(it, "resourceId", ""),
                                     "resourceType", json_str(it, "resourceType", ""), "key", json_str(it, "key", ""),
                                     "value", json_str(it, "value", ""), "order", o);
            if (item)
                json_array_append_new(all, item);
        }
        json_decref(replies[i]);
    }
    size_t total = json_array_size(all);
    json_t **v = xcalloc(total + 1, sizeof *v);
    for (size_t i = 0; i < total; i++)
        v[i] = json_incref(json_array_get(all, i));
    qsort(v, total, sizeof *v, by_order);
    json_array_clear(all);
    for (size_t i = 0; i < total; i++)
        json_array_append_new(all, v[i]);
    free(v);
    json_t *page = NULL, *next = NULL, *it;
    verr_t e = {0};
    if (describe_page(all, r->params, "order", 5, 1000, &page, &next, &e) < 0) {
        gw_finish(r, -1, NULL, &e);
        return;
    }
    size_t i;
    json_array_foreach(page, i, it)
        json_object_del(it, "order");
    json_t *result = json_pack("{s:o}", "tagSet", page);
    if (next)
        json_object_set_new(result, "nextToken", next);
    gw_finish(r, 0, result, NULL);
}

int ec2_describe_tags(gw_req_t *r, json_t **result, verr_t *e)
{
    (void)result;
    (void)e;
    const char *services[16];
    size_t n = tag_services(services, ARRAY_LEN(services));
    char types[16][96];
    const char *tp[16];
    json_t *bodies[16];
    json_t *filters = json_object_get(r->params, "Filter");
    for (size_t i = 0; i < n; i++) {
        snprintf(types[i], sizeof types[i], "%s.DescribeTags", services[i]);
        tp[i] = types[i];
        bodies[i] = json_object();
        if (filters)
            json_object_set(bodies[i], "Filter", filters);
    }
    gw_fanout(r, n, services, tp, bodies, describe_tags_done, NULL);
    return GW_ASYNC;
}
