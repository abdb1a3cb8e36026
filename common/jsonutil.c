/* jsonutil.c - small helpers over jansson shared by every handler and bus consumer:
 * typed getters that fall back to a default instead of failing on a missing or
 * mistyped field, dotted-path lookup, a size-bounded parser for untrusted bodies and
 * bus messages, and a compact dump that follows the aborting-allocator idiom. */
#include "jsonutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_autodecref(json_t **j)
{
    if (j && *j) {
        json_decref(*j);
        *j = NULL;
    }
}

/* json_object_get wants a non-NULL object; every getter goes through here. */
static json_t *member(const json_t *o, const char *key)
{
    if (!o || !key || !json_is_object(o))
        return NULL;
    return json_object_get(o, key);
}

const char *json_str(const json_t *o, const char *key, const char *def)
{
    json_t *v = member(o, key);
    return json_is_string(v) ? json_string_value(v) : def;
}

/* Only JSON integers count: 1.5 or "1" is a different type and yields def, so a
 * sloppy client cannot smuggle a float through an integer field. */
int64_t json_int(const json_t *o, const char *key, int64_t def)
{
    json_t *v = member(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

int json_bool(const json_t *o, const char *key, int def)
{
    json_t *v = member(o, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

int json_flag(const json_t *o, const char *key)
{
    json_t *v = member(o, key);
    return json_is_true(v) || (json_is_string(v) && !strcmp(json_string_value(v), "true"));
}

/* A segment of all digits indexes into an array ("items.0.id"); anything else is an
 * object key. Empty segments ("a..b", ".a") match nothing. */
static json_t *step(const json_t *cur, const char *seg, size_t n)
{
    if (n == 0)
        return NULL;
    if (json_is_object(cur))
        return json_object_getn(cur, seg, n);
    if (!json_is_array(cur) || n > 9)
        return NULL;
    size_t idx = 0;
    for (size_t i = 0; i < n; i++) {
        if (seg[i] < '0' || seg[i] > '9')
            return NULL;
        idx = idx * 10 + (size_t)(seg[i] - '0');
    }
    return json_array_get(cur, idx);
}

json_t *json_path(const json_t *o, const char *path)
{
    if (!o || !path)
        return NULL;
    const json_t *at = o;
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        json_t *next = step(at, p, n);
        if (!next || !dot)
            return next;
        at = next;
        p = dot + 1;
    }
}

/* Duplicate keys are refused: two readers of the same body must not disagree on
 * which "Action" or "account" it carries. */
json_t *json_parse_bounded(const char *text, size_t len, size_t max)
{
    if (!text || len == 0 || len > max)
        return NULL;
    json_error_t err;
    return json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
}

char *json_compact(const json_t *o)
{
    if (!o)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) {
        /* jansson only fails here for lack of memory: same policy as xmalloc. */
        fprintf(stderr, "virga: out of memory dumping JSON\n");
        abort();
    }
    return s;
}

/* The length of json_dumps(o, JSON_COMPACT) without making it: jansson's dump checks
 * every object and array for loops through a hash table keyed by its printed address,
 * which made the sizing of a DescribeInstances page cost more than building it. Strings
 * as jansson writes them by default: '"', '\\' and control characters escaped (\n and
 * friends in two bytes, others as \u00XX), everything else as is. */
static size_t string_size(const char *s, size_t n)
{
    size_t out = 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out += c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t' ? 2
             : c < 0x20 ? 6 : 1;
    }
    return out;
}

size_t json_compact_size(const json_t *o)
{
    char buf[64];
    size_t n = 0, i;
    const char *k;
    json_t *v;
    switch (json_typeof(o)) {
    case JSON_OBJECT:
        json_object_foreach((json_t *)o, k, v)
            n += (n ? 1 : 0) + string_size(k, strlen(k)) + 1 + json_compact_size(v);
        return n + 2;
    case JSON_ARRAY:
        json_array_foreach(o, i, v)
            n += (i ? 1 : 0) + json_compact_size(v);
        return n + 2;
    case JSON_STRING:
        return string_size(json_string_value(o), json_string_length(o));
    case JSON_INTEGER:
        return (size_t)snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(o));
    case JSON_REAL:
        return (size_t)snprintf(buf, sizeof buf, "%.17g", json_real_value(o)) + 2;   /* an upper bound */
    case JSON_TRUE:
    case JSON_NULL:
        return 4;
    case JSON_FALSE:
        return 5;
    }
    return 0;
}
