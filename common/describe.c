/* describe.c - filters, pagination and tag specifications for EC2 Describe* handlers. */
#include "describe.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"
#include "policy.h"

/* The values at a dotted path, descending through every element of the arrays met on
 * the way ("ipPermissions.ipProtocol": each permission's protocol). */
static void collect(const json_t *at, const char *path, json_t *out)
{
    size_t i;
    json_t *x;
    if (json_is_array(at)) {
        json_array_foreach(at, i, x)
            collect(x, path, out);
        return;
    }
    if (!*path) {
        if (at)
            json_array_append(out, (json_t *)at);
        return;
    }
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    char key[128];
    if (!json_is_object(at) || n >= sizeof key)
        return;
    memcpy(key, path, n);
    key[n] = 0;
    collect(json_object_get(at, key), dot ? dot + 1 : "", out);
}

/* Collect the item's values for one filter into vals (strings). */
static void values_for(const json_t *item, const char *filter, const char *path, json_t *vals)
{
    if (!path) {   /* tag filters */
        json_t *tags = json_object_get(item, "tagSet"), *t;
        size_t i;
        json_array_foreach(tags, i, t) {
            const char *k = json_str(t, "key", ""), *v = json_str(t, "value", "");
            if (!strncmp(filter, "tag:", 4) && !strcmp(filter + 4, k))
                json_array_append_new(vals, json_string(v));
            else if (!strcmp(filter, "tag-key"))
                json_array_append_new(vals, json_string(k));
            else if (!strcmp(filter, "tag-value"))
                json_array_append_new(vals, json_string(v));
        }
        return;
    }
    json_t *list = json_array(), *x;
    size_t i;
    collect(item, path, list);
    json_array_foreach(list, i, x) {
        char buf[64];
        if (json_is_string(x))
            json_array_append_new(vals, json_string(json_string_value(x)));
        else if (json_is_integer(x)) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(x));
            json_array_append_new(vals, json_string(buf));
        } else if (json_is_boolean(x))
            json_array_append_new(vals, json_string(json_is_true(x) ? "true" : "false"));
    }
    json_decref(list);
}

static int matches(const json_t *item, const char *name, const char *path, const json_t *wanted)
{
    json_t *vals = json_array(), *v, *w;
    values_for(item, name, path, vals);
    size_t i, j;
    int hit = 0;
    json_array_foreach(vals, i, v) {
        json_array_foreach(wanted, j, w) {
            if (json_is_string(w) && policy_glob(json_string_value(w), json_string_value(v), 0)) {
                hit = 1;
                break;
            }
        }
        if (hit)
            break;
    }
    json_decref(vals);
    return hit;
}

json_t *describe_filter(const json_t *items, const json_t *filters, const describe_field_t *fields, verr_t *e)
{
    size_t i;
    json_t *f;
    /* resolve every filter's path first, so an unknown name fails even with no items */
    size_t nf = json_is_array(filters) ? json_array_size(filters) : 0;
    const char **paths = xcalloc(nf + 1, sizeof *paths);
    json_array_foreach(filters, i, f) {
        const char *name = json_str(f, "Name", NULL);
        if (!name) {
            free(paths);
            verr_set(e, 400, "InvalidParameterValue", "Filter.%zu.Name is required", i + 1);
            return NULL;
        }
        if (!json_is_array(json_object_get(f, "Value"))) {
            free(paths);
            verr_set(e, 400, "InvalidParameterValue", "The filter '%s' needs at least one Value", name);
            return NULL;
        }
        int tag = !strncmp(name, "tag:", 4) || !strcmp(name, "tag-key") || !strcmp(name, "tag-value");
        const describe_field_t *d = fields;
        while (!tag && d && d->filter && strcmp(d->filter, name))
            d++;
        if (!tag && (!d || !d->filter)) {
            free(paths);
            verr_set(e, 400, "InvalidParameterValue", "The filter '%s' is invalid", name);
            return NULL;
        }
        paths[i] = tag ? NULL : d->path;
    }
    json_t *out = json_array(), *it;
    json_array_foreach(items, i, it) {
        int keep = 1;
        size_t k;
        json_array_foreach(filters, k, f) {
            if (!matches(it, json_str(f, "Name", ""), paths[k], json_object_get(f, "Value"))) {
                keep = 0;
                break;
            }
        }
        if (keep)
            json_array_append(out, it);
    }
    free(paths);
    return out;
}

json_t *describe_select(const json_t *items, const json_t *params, const char *list, const char *field,
                        const char **missing)
{
    json_t *want = json_object_get(params, list);
    if (!json_is_array(want))
        return json_incref((json_t *)items);
    json_t *out = json_array(), *w, *it;
    size_t i, j;
    json_array_foreach(want, i, w) {
        /* a name listed twice is answered once, as EC2 answers
         * `describe-instances --instance-ids i-a i-a` with one instance */
        int again = 0;
        for (size_t k = 0; k < i && !again; k++)
            again = json_equal(json_array_get(want, k), w);
        if (again)
            continue;
        int found = 0;
        json_array_foreach(items, j, it)
            if (json_is_string(w) && !strcmp(json_str(it, field, ""), json_string_value(w))) {
                json_array_append(out, it);
                found = 1;
            }
        if (!found) {
            *missing = json_is_string(w) ? json_string_value(w) : "?";
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* Tokens are the base64url of "v1:<last id>", so a client cannot mistake them for ids. */
static char *token_for(const char *id)
{
    char *raw = xasprintf("v1:%s", id);
    size_t n = sodium_base64_encoded_len(strlen(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *tok = xmalloc(n);
    sodium_bin2base64(tok, n, (const unsigned char *)raw, strlen(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    free(raw);
    return tok;
}

static int id_from_token(const char *tok, char *id, size_t idsz)
{
    unsigned char bin[512];
    size_t len;
    if (strlen(tok) > 600 || sodium_base642bin(bin, sizeof bin - 1, tok, strlen(tok), NULL, &len, NULL,
                                               sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return -1;
    bin[len] = 0;
    if (len < 4 || memcmp(bin, "v1:", 3) || len - 3 >= idsz)
        return -1;
    memcpy(id, bin + 3, len - 3 + 1);
    return 0;
}

int describe_token_id(const char *tok, char *id, size_t idsz) { return id_from_token(tok, id, idsz); }

int describe_page_bytes(json_t *page, const char *id_field, size_t budget, json_t **next_token)
{
    size_t used = 0, n = json_array_size(page), keep = 0;
    for (; keep < n; keep++) {
        used += json_compact_size(json_array_get(page, keep));
        if (used > budget && keep > 0)
            break;
    }
    if (keep == n)
        return 0;
    char *t = token_for(json_str(json_array_get(page, keep - 1), id_field, ""));
    json_decref(*next_token);
    *next_token = json_string(t);
    free(t);
    while (json_array_size(page) > keep)
        json_array_remove(page, json_array_size(page) - 1);
    return 1;
}

int describe_page_params(const json_t *params, int min_results, int max_results, long *max, char *after,
                         size_t aftersz, verr_t *e)
{
    const char *mr = json_str(params, "MaxResults", NULL), *tok = json_str(params, "NextToken", NULL);
    *max = -1;
    after[0] = 0;
    if (mr) {
        char *end;
        *max = strtol(mr, &end, 10);
        if (*end || *max < min_results || *max > max_results)
            return verr_set(e, 400, "InvalidParameterValue",
                            "Value (%s) for parameter maxResults is invalid. Expecting a value between %d and %d.",
                            mr, min_results, max_results);
    }
    if (tok && *tok && id_from_token(tok, after, aftersz) < 0)
        return verr_set(e, 400, "InvalidPaginationToken", "Invalid pagination token: %.64s", tok);
    return 0;
}

char *describe_token(const char *id) { return token_for(id); }

int describe_page(const json_t *items, const json_t *params, const char *id_field, int min_results,
                  int max_results, json_t **page, json_t **next_token, verr_t *e)
{
    *page = NULL;
    *next_token = NULL;
    long max;
    char after[256];
    if (describe_page_params(params, min_results, max_results, &max, after, sizeof after, e) < 0)
        return -1;
    json_t *out = json_array(), *it;
    size_t i;
    json_array_foreach(items, i, it) {
        const char *id = json_str(it, id_field, "");
        if (after[0] && strcmp(id, after) <= 0)
            continue;
        if (max >= 0 && (long)json_array_size(out) == max) {
            if (max == 0)
                break;   /* no item to continue after */
            char *t = token_for(json_str(json_array_get(out, (size_t)max - 1), id_field, ""));
            *next_token = json_string(t);
            free(t);
            break;
        }
        json_array_append(out, it);
    }
    *page = out;
    return 0;
}

/* EC2 counts tag lengths in characters, not bytes (input is valid UTF-8 already). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

json_t *describe_tag_spec(const json_t *params, const char *resource_type, verr_t *e)
{
    return describe_tag_spec_beside(params, resource_type, NULL, e);
}

json_t *describe_tag_spec_beside(const json_t *params, const char *resource_type, const char *other, verr_t *e)
{
    json_t *tags = json_array(), *spec;
    size_t i;
    json_array_foreach(json_object_get(params, "TagSpecification"), i, spec) {
        const char *rt = json_str(spec, "ResourceType", "");
        if (other && !strcmp(rt, other))
            continue;
        if (strcmp(rt, resource_type)) {
            json_decref(tags);
            verr_set(e, 400, "InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", rt);
            return NULL;
        }
        json_t *t;
        size_t j;
        json_array_foreach(json_object_get(spec, "Tag"), j, t) {
            const char *k = json_str(t, "Key", NULL), *v = json_str(t, "Value", "");
            if (!k || !*k || utf8_chars(k) > 128 || utf8_chars(v) > 256 || !strncmp(k, "aws:", 4)) {
                json_decref(tags);
                verr_set(e, 400, "InvalidParameterValue", "Tag keys are 1 to 128 characters not starting with 'aws:'; values at most 256");
                return NULL;
            }
            json_t *seen;
            size_t n;
            json_array_foreach(tags, n, seen) {
                if (!strcmp(json_str(seen, "key", ""), k)) {
                    json_decref(tags);
                    verr_set(e, 400, "InvalidParameterValue", "Duplicate tag key '%.128s' specified.", k);
                    return NULL;
                }
            }
            json_array_append_new(tags, json_pack("{s:s, s:s}", "key", k, "value", v));
        }
    }
    if (json_array_size(tags) > 50) {
        json_decref(tags);
        verr_set(e, 400, "TagLimitExceeded", "The maximum number of tags per resource is 50");
        return NULL;
    }
    return tags;
}

void describe_time(long long unix_seconds, char out[32])
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    /* years past 9999 do not fit the format (nor any real timestamp) */
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0 ||
        !strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm))
        snprintf(out, 32, "1970-01-01T00:00:00.000Z");
}
