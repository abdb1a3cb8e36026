/* tags.c - EC2 tags on a service's resources, kept in the `tags` table of the calling
 * connection's schema (each service that has taggable resources creates one) and
 * returned as EC2 tagSet lists; and the service side of CreateTags, DeleteTags and
 * DescribeTags, shared by every service that owns taggable resources. */
#include "tags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caller.h"
#include "describe.h"
#include "ids.h"
#include "jsonutil.h"
#include "not_found.h"

int tags_put(db_t *db, const char *resource_id, const char *account, const json_t *tag_set, verr_t *e)
{
    size_t i;
    json_t *t;
    json_array_foreach(tag_set, i, t) {
        const char *p[] = {resource_id, account, json_str(t, "key", ""), json_str(t, "value", "")};
        PG_AUTO PGresult *r = db_prepared(db, e, "tag_put",
            "INSERT INTO tags (resource_id, account_id, key, value) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (resource_id, key) DO UPDATE SET value = EXCLUDED.value", 4, p);
        if (!r)
            return -1;
    }
    return 0;
}

/* Rows (resource_id, key, value) as {resource_id: [{"key","value"}...]}. */
static json_t *by_resource(PGresult *r)
{
    json_t *by_id = json_object();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0);
        json_t *list = json_object_get(by_id, id);
        if (!list) {
            list = json_array();
            json_object_set_new(by_id, id, list);
        }
        json_array_append_new(list, json_pack("{s:s, s:s}", "key", PQgetvalue(r, i, 1), "value", PQgetvalue(r, i, 2)));
    }
    return by_id;
}

json_t *tags_load(db_t *db, const char *account, verr_t *e)
{
    const char *p[] = {account};
    PG_AUTO PGresult *r = account
        ? db_prepared(db, e, "tag_load", "SELECT resource_id, key, value FROM tags WHERE account_id = $1 ORDER BY key", 1, p)
        : db_prepared(db, e, "tag_load_all", "SELECT resource_id, key, value FROM tags ORDER BY key", 0, NULL);
    return r ? by_resource(r) : NULL;
}

json_t *tags_load_ids(db_t *db, const char *const *ids, size_t n, verr_t *e)
{
    AUTOFREE char *list = db_text_array(ids, n);
    const char *p[] = {list};
    PG_AUTO PGresult *r = db_prepared(db, e, "tag_load_ids",
        "SELECT resource_id, key, value FROM tags WHERE resource_id = ANY($1::text[]) ORDER BY key", 1, p);
    return r ? by_resource(r) : NULL;
}

int tags_text_load_ids(db_t *db, const char *const *ids, size_t n, tags_text_t *out, verr_t *e)
{
    memset(out, 0, sizeof *out);
    AUTOFREE char *list = db_text_array(ids, n);
    const char *p[] = {list};
    /* by resource in strcmp's order (binary search), then by key as tags_load_ids */
    PG_AUTO PGresult *r = db_prepared(db, e, "tag_text_ids",
        "SELECT resource_id, key, value FROM tags WHERE resource_id = ANY($1::text[]) "
        "ORDER BY resource_id COLLATE \"C\", key", 1, p);
    if (!r)
        return -1;
    int rows = PQntuples(r);
    out->name = xcalloc((size_t)rows + 1, sizeof *out->name);
    out->off = xcalloc((size_t)rows + 1, sizeof *out->off);
    out->len = xcalloc((size_t)rows + 1, sizeof *out->len);
    strbuf_put(&out->text, "", 0);
    for (int i = 0; i < rows; i++) {
        const char *id = PQgetvalue(r, i, 0);
        if (out->n && !strcmp(out->names.s + out->name[out->n - 1], id)) {
            strbuf_putc(&out->text, ',');
        } else {
            out->name[out->n] = out->names.len;
            strbuf_put(&out->names, id, strlen(id) + 1);   /* and its NUL */
            out->off[out->n++] = out->text.len;
        }
        strbuf_puts(&out->text, "{\"key\":");
        json_put_string(&out->text, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
        strbuf_puts(&out->text, ",\"value\":");
        json_put_string(&out->text, PQgetvalue(r, i, 2), (size_t)PQgetlength(r, i, 2));
        strbuf_putc(&out->text, '}');
        out->len[out->n - 1] = out->text.len - out->off[out->n - 1];
    }
    return 0;
}

const char *tags_text_of(const tags_text_t *t, const char *id, size_t *len)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->names.s + t->name[mid], id);
        if (!c) {
            *len = t->len[mid];
            return t->text.s + t->off[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *len = 0;
    return "";
}

void tags_text_free(tags_text_t *t)
{
    free(t->name);
    free(t->off);
    free(t->len);
    free(t->text.s);
    free(t->names.s);
    memset(t, 0, sizeof *t);
}

json_t *tags_parse_create(const json_t *tag_list, verr_t *e)
{
    if (!json_is_array(tag_list) || !json_array_size(tag_list)) {
        verr_set(e, 400, "MissingParameter", "The request must contain the parameter tag");
        return NULL;
    }
    /* the same rules as a TagSpecification's, so both are checked by one function */
    JSON_AUTO json_t *spec = json_pack("{s:[{s:s, s:O}]}", "TagSpecification", "ResourceType", "-", "Tag", tag_list);
    return describe_tag_spec(spec, "-", e);
}

json_t *tags_parse_delete(const json_t *tag_list, verr_t *e)
{
    json_t *out = json_array(), *t;
    size_t i;
    if (tag_list && !json_is_array(tag_list)) {
        json_decref(out);
        verr_set(e, 400, "InvalidParameterValue", "Tag must be a list: Tag.N.Key, Tag.N.Value");
        return NULL;
    }
    json_array_foreach(tag_list, i, t) {
        const char *k = json_str(t, "Key", NULL);
        json_t *v = json_object_get(t, "Value");
        if (!k || !*k || (v && !json_is_string(v))) {
            json_decref(out);
            verr_set(e, 400, "InvalidParameterValue", "Tag.%zu.Key is required (and Tag.%zu.Value, if given, a string)",
                     i + 1, i + 1);
            return NULL;
        }
        json_t *d = json_pack("{s:s}", "key", k);
        if (v)   /* present, even empty: only that value is deleted */
            json_object_set(d, "value", v);
        json_array_append_new(out, d);
    }
    return out;
}

/* ---- the bus handlers ---- */

/* The caller's account, or NULL (via *account) for the operator's administrator, who
 * may tag any account's resources. */
static int caller_scope(bus_ctx_t *ctx, const char **account, verr_t *e)
{
    const char *a = caller_account(ctx->msg->caller, e);
    if (!a)
        return -1;
    *account = caller_is_operator_admin(ctx->msg->caller) ? NULL : a;
    return 0;
}

const tags_resource_t tags_resources[] = {
    {"ami", "image", "image"},
    {"aki", "image", "image"},     /* kernel images */
    {"ari", "image", "image"},     /* ramdisk images */
    {"key", "key-pair", "compute"},
    {"i", "instance", "compute"},
    {"vpc", "vpc", "network"},
    {"subnet", "subnet", "network"},
    {"sg", "security-group", "network"},
    {"eni", "network-interface", "network"},
    {"eipalloc", "elastic-ip", "network"},
    {"igw", "internet-gateway", "network"},
    {"rtb", "route-table", "network"},
    {NULL, NULL, NULL},
};

const tags_resource_t *tags_resource_of(const char *id)
{
    for (const tags_resource_t *t = tags_resources; id && t->prefix; t++)
        if (ids_valid(t->prefix, id))
            return t;
    return NULL;
}

static const tags_kind_t *kind_of(const tags_kind_t *kinds, const char *id)
{
    for (const tags_kind_t *k = kinds; id && k->prefix; k++)
        if (ids_valid(k->prefix, id))
            return k;
    return NULL;
}

/* What CreateTags or DeleteTags does to one resource, inside the transaction. */
typedef int (*apply_fn)(db_t *db, const char *id, const char *owner, const json_t *tags, verr_t *e);

static int create_on(db_t *db, const char *id, const char *owner, const json_t *tags, verr_t *e)
{
    if (tags_put(db, id, owner, tags, e) < 0)
        return -1;
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, e, "tags_count", "SELECT count(*) FROM tags WHERE resource_id = $1", 1, p);
    if (!r)
        return -1;
    if (atoi(PQgetvalue(r, 0, 0)) > TAGS_MAX_PER_RESOURCE)
        return verr_set(e, 400, "TagLimitExceeded", "The maximum number of tags per resource is %d: '%s' would have %s",
                        TAGS_MAX_PER_RESOURCE, id, PQgetvalue(r, 0, 0));
    return 0;
}

static int delete_on(db_t *db, const char *id, const char *owner, const json_t *tags, verr_t *e)
{
    (void)owner;
    if (!json_array_size(tags)) {
        const char *p[] = {id};
        PG_AUTO PGresult *r = db_prepared(db, e, "tags_del_all", "DELETE FROM tags WHERE resource_id = $1", 1, p);
        return r ? 0 : -1;
    }
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
        const char *v = json_str(t, "value", NULL);
        const char *p[] = {id, json_str(t, "key", ""), v};
        PG_AUTO PGresult *r = v
            ? db_prepared(db, e, "tags_del_kv", "DELETE FROM tags WHERE resource_id = $1 AND key = $2 AND value = $3", 3, p)
            : db_prepared(db, e, "tags_del_key", "DELETE FROM tags WHERE resource_id = $1 AND key = $2", 2, p);
        if (!r)
            return -1;
    }
    return 0;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Lock each resource's tags for the transaction, in one order for every request so two
 * requests naming the same resources cannot deadlock: the count that checks the
 * 50-tag limit (create_on) then sees every tag committed before it, none racing it. */
static int lock_resources(db_t *db, const json_t *ids, verr_t *e)
{
    size_t n = json_array_size(ids);
    const char **sorted = xcalloc(n ? n : 1, sizeof *sorted);
    for (size_t i = 0; i < n; i++)
        sorted[i] = json_string_value(json_array_get(ids, i));
    qsort(sorted, n, sizeof *sorted, by_string);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (i == 0 || strcmp(sorted[i], sorted[i - 1]))
            rc = db_lock_xact(db, "tags", sorted[i], e);
    free(sorted);
    return rc;
}

/* The owner of every id, or the NotFound error naming each id that does not exist, as
 * EC2 names them ("The instance IDs 'i-a, i-b' do not exist"), not only the first. The
 * ids named are those of the first missing id's kind (its error code): EC2 answers one
 * code. The owner functions word a missing id "The <what> '<id>' does not exist"; the
 * plural is made from that <what> (common/not_found.c). */
static int find_owners(db_t *db, const tags_kind_t *kinds, const json_t *ids, const char *account,
                       char (*owners)[TAGS_ACCOUNT_MAX], verr_t *e)
{
    size_t n = json_array_size(ids), missing = 0;
    AUTOFREE const char **names = xcalloc(n + 1, sizeof *names);
    verr_t first = {0};
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        verr_t one = {0};
        if (kind_of(kinds, id)->owner(db, id, account, owners[i], &one) == 0)
            continue;
        if (one.http_status >= 500 || !strstr(one.code, ".NotFound")) {
            if (e)
                *e = one;
            return -1;
        }
        if (!missing)
            first = one;
        if (!strcmp(one.code, first.code))
            names[missing++] = id;
    }
    if (!missing)
        return 0;
    const char *quote = strstr(first.message, " '");
    if (missing == 1 || strncmp(first.message, "The ", 4) || !quote) {
        if (e)
            *e = first;
        return -1;
    }
    char what[128];
    snprintf(what, sizeof what, "%.*s", (int)(quote - first.message - 4), first.message + 4);
    return ids_not_found(e, first.code, what, names, missing, quote[2] == '[');
}

/* Check every id, then apply to each in one transaction: all or nothing. */
static int change(bus_ctx_t *ctx, const json_t *body, const tags_kind_t *kinds, const json_t *tags, apply_fn apply,
                  json_t **reply, verr_t *e)
{
    const char *account;
    if (caller_scope(ctx, &account, e) < 0)
        return -1;
    const json_t *ids = json_object_get(body, "ResourceId");
    if (!json_is_array(ids) || !json_array_size(ids))
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter resourceIdSet");
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
        if (!kind_of(kinds, json_string_value(v)))
            return verr_set(e, 400, "InvalidID", "The ID '%.64s' is not valid",
                            json_is_string(v) ? json_string_value(v) : "?");
    db_t *db = service_db(ctx);
    if (db_begin(db, e) < 0 || lock_resources(db, ids, e) < 0) {
        db_rollback(db);
        return -1;
    }
    size_t n = json_array_size(ids);
    AUTOFREE char (*owners)[TAGS_ACCOUNT_MAX] = xcalloc(n, sizeof *owners);
    if (find_owners(db, kinds, ids, account, owners, e) < 0) {
        db_rollback(db);
        return -1;
    }
    json_array_foreach(ids, i, v) {
        if (apply(db, json_string_value(v), owners[i], tags, e) < 0) {
            db_rollback(db);
            return -1;
        }
    }
    if (json_flag(body, "DryRun")) {
        db_rollback(db);
        return verr_set(e, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.");
    }
    if (db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;
    }
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
}

int tags_create_handler(bus_ctx_t *ctx, const json_t *body, const tags_kind_t *kinds, json_t **reply, verr_t *e)
{
    JSON_AUTO json_t *tags = tags_parse_create(json_object_get(body, "Tag"), e);
    if (!tags)
        return -1;
    return change(ctx, body, kinds, tags, create_on, reply, e);
}

int tags_delete_handler(bus_ctx_t *ctx, const json_t *body, const tags_kind_t *kinds, json_t **reply, verr_t *e)
{
    JSON_AUTO json_t *tags = tags_parse_delete(json_object_get(body, "Tag"), e);
    if (!tags)
        return -1;
    return change(ctx, body, kinds, tags, delete_on, reply, e);
}

int tags_describe_handler(bus_ctx_t *ctx, const json_t *body, const tags_kind_t *kinds, json_t **reply, verr_t *e)
{
    static const describe_field_t fields[] = {
        {"key", "key"}, {"value", "value"}, {"resource-id", "resourceId"}, {"resource-type", "resourceType"},
        {NULL, NULL}};
    const char *account;
    if (caller_scope(ctx, &account, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    const char *p[] = {account};
    /* byte order (COLLATE "C"), as the gateway merges services' answers with strcmp */
    PG_AUTO PGresult *r = account
        ? db_prepared(db, e, "tags_list", "SELECT resource_id, key, value FROM tags WHERE account_id = $1 "
                      "ORDER BY resource_id COLLATE \"C\", key COLLATE \"C\"", 1, p)
        : db_prepared(db, e, "tags_list_all", "SELECT resource_id, key, value FROM tags "
                      "ORDER BY resource_id COLLATE \"C\", key COLLATE \"C\"", 0, NULL);
    if (!r)
        return -1;
    JSON_AUTO json_t *items = json_array();
    const char *last = NULL;
    int live = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0), *k = PQgetvalue(r, i, 1), *v = PQgetvalue(r, i, 2);
        const tags_kind_t *kind = kind_of(kinds, id);
        if (!kind)
            continue;
        if (!last || strcmp(last, id)) {
            /* tags may outlive their resource (a deregistered image): only live ones count */
            char owner[TAGS_ACCOUNT_MAX];
            last = id;
            live = kind->owner(db, id, account, owner, e) == 0;
            if (!live && e->http_status >= 500)
                return -1;
            verr_clear(e);
        }
        if (live)
            json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s}]}", "resourceId", id,
                                                   "resourceType", tags_resource_of(id)->resource_type, "key", k, "value", v,
                                                   "tagSet", "key", k, "value", v));
    }
    json_t *out = describe_filter(items, json_object_get(body, "Filter"), fields, e);
    if (!out)
        return -1;
    size_t i;
    json_t *it;
    json_array_foreach(out, i, it)
        json_object_del(it, "tagSet");   /* only there for the tag:<key> filter */
    *reply = json_pack("{s:o}", "tagSet", out);
    return 0;
}
