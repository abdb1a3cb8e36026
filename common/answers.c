/* answers.c - see answers.h. */
#include "answers.h"

#include <stdlib.h>

#include "jsonutil.h"

char *answers_key(const char *service, const char *type, const json_t *body)
{
    char *dump = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    char *key = xasprintf("%s %s %s", service, type, dump ? dump : "null");
    free(dump);
    return key;
}

void answers_put(json_t **memo, const char *key, json_t *reply, const verr_t *err)
{
    if (!*memo)
        *memo = json_object();
    json_t *a = err ? json_pack("{s:{s:i, s:s, s:s}}", "error", "status", err->http_status, "code", err->code,
                                "message", err->message)
                    : json_pack("{s:o}", "reply", reply ? reply : json_null());
    if (err)
        json_decref(reply);
    json_object_set_new(*memo, key, a);
}

int answers_get(const json_t *memo, const char *key, json_t **reply, int *rc, verr_t *e)
{
    json_t *a = json_object_get(memo, key);
    if (!a)
        return 0;
    json_t *err = json_object_get(a, "error");
    if (err) {
        *rc = verr_set(e, (int)json_int(err, "status", 503), json_str(err, "code", "ServiceUnavailable"), "%s",
                       json_str(err, "message", ""));
        return 1;
    }
    json_t *r = json_object_get(a, "reply");
    *reply = json_is_null(r) ? NULL : json_incref(r);
    *rc = 0;
    return 1;
}
