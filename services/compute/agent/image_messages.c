/* image_messages.c - the agent's image messages: agent.image_fetch (make an image's
 * bytes present on this host, verified by SHA-256) and agent.image_cache_list (what the
 * host holds). The bytes come over HTTP from wherever the URL points (a presigned object
 * store URL), never over the bus. */
#include <stdlib.h>

#include "agent.h"
#include "jsonutil.h"

static image_cache_t *cache_of(bus_ctx_t *ctx) { return ((agent_t *)service_of(ctx)->state)->images; }

/* {"url", "sha256", "size"} -> {"path", "size", "sha256", "cached"}. A long download
 * holds this worker thread until it ends (bounded by agent.fetch_timeout_s); a caller
 * that gave up sooner can ask again and gets the cached copy. */
int agent_image_fetch(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *url = json_str(body, "url", NULL), *sha = json_str(body, "sha256", NULL);
    const json_t *size = json_object_get(body, "size");
    if (!url || !sha || !size)
        return verr_set(e, 400, "MissingParameter", "agent.image_fetch needs url, sha256 and size");
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return verr_set(e, 400, "InvalidParameterValue", "size must be a whole number of bytes");
    image_cache_result_t r;
    if (image_cache_get(cache_of(ctx), url, sha, (uint64_t)json_integer_value(size), &r, e) < 0)
        return -1;
    *reply = json_pack("{s:s, s:I, s:s, s:b}", "path", r.path, "size", (json_int_t)r.size, "sha256", r.sha256,
                       "cached", r.cached);
    return 0;
}

/* {} -> {"dir", "entries": [{"sha256", "size", "last_used"}], "count", "total_bytes",
 * "limit_bytes"}, most recently used first. */
int agent_image_cache_list(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)body;
    image_cache_t *c = cache_of(ctx);
    image_cache_entry_t *v = NULL;
    size_t n = 0;
    uint64_t total = 0;
    if (image_cache_list(c, &v, &n, &total, e) < 0)
        return -1;
    json_t *entries = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(entries, json_pack("{s:s, s:I, s:I}", "sha256", v[i].sha256, "size",
                                                 (json_int_t)v[i].size, "last_used",
                                                 (json_int_t)(v[i].used_ns / 1000000000)));
    free(v);
    *reply = json_pack("{s:s, s:o, s:I, s:I, s:I}", "dir", image_cache_dir(c), "entries", entries, "count",
                       (json_int_t)n, "total_bytes", (json_int_t)total, "limit_bytes",
                       (json_int_t)image_cache_limit(c));
    return 0;
}
