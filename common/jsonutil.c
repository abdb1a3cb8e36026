/* jsonutil.c - small helpers over jansson shared by every handler and bus consumer:
 * typed getters that fall back to a default instead of failing on a missing or
 * mistyped field, dotted-path lookup, a size-bounded parser for untrusted bodies and
 * bus messages, and a compact dump that follows the aborting-allocator idiom. */
#include "jsonutil.h"
#include "byte_runs.h"
#include "strbuf.h"

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

int json_bool_strict(const json_t *o, const char *key, int def, int *out)
{
    json_t *v = member(o, key);
    const char *s = json_string_value(v);
    if (!v || json_is_null(v))
        *out = def;
    else if (json_is_boolean(v))
        *out = json_is_true(v);
    else if (s && (!strcmp(s, "true") || !strcmp(s, "false")))
        *out = s[0] == 't';
    else
        return -1;
    return 0;
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

/* How jansson writes a string by default: '"', '\\' and control characters escaped (\n
 * and friends in two bytes, others as \u00XX), everything else as it is. */
static const char *short_escape(unsigned char c)
{
    switch (c) {
    case '"':  return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default:   return NULL;
    }
}

void json_put_string(strbuf_t *b, const char *s, size_t n)
{
    strbuf_reserve(b, n + 2);
    strbuf_putc(b, '"');
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        i += json_ascii_run((const unsigned char *)s + i, n - i);   /* a plain ASCII run at once */
        if (i >= n)
            break;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;   /* past ASCII: UTF-8 is written as it is */
        strbuf_put(b, s + from, i - from);
        from = i + 1;
        const char *esc = short_escape(c);
        if (esc) {
            strbuf_put(b, esc, 2);
        } else {
            char u[8];
            snprintf(u, sizeof u, "\\u%04X", c);
            strbuf_put(b, u, 6);
        }
    }
    strbuf_put(b, s + from, n - from);
    strbuf_putc(b, '"');
}

/* A real as jansson writes it (jsonp_dtostr): 17 significant digits, ".0" when that
 * looks like an integer, no '+' nor leading zeros in the exponent. */
static void write_real(strbuf_t *b, double v)
{
    char num[64];
    snprintf(num, sizeof num, "%.17g", v);
    if (!strchr(num, '.') && !strchr(num, 'e'))
        strcat(num, ".0");
    char *e = strchr(num, 'e');
    if (e) {
        char *start = e + 1, *digit;
        if (*start == '-')
            start++;
        digit = start;
        while (*digit == '+' || *digit == '0')
            digit++;
        if (!*digit)
            digit--;   /* an exponent of 0 keeps its digit */
        memmove(start, digit, strlen(digit) + 1);
    }
    strbuf_puts(b, num);
}

static int write_value(strbuf_t *b, const json_t *o, int depth)
{
    char num[32];
    size_t i;
    const char *k;
    json_t *v;
    if (depth > 2048)   /* jansson's bound too: a loop, or hostile nesting */
        return -1;
    switch (json_typeof(o)) {
    case JSON_OBJECT:
        strbuf_putc(b, '{');
        i = 0;
        json_object_foreach((json_t *)o, k, v) {
            if (i++)
                strbuf_putc(b, ',');
            json_put_string(b, k, strlen(k));
            strbuf_putc(b, ':');
            if (write_value(b, v, depth + 1) < 0)
                return -1;
        }
        strbuf_putc(b, '}');
        return 0;
    case JSON_ARRAY:
        strbuf_putc(b, '[');
        json_array_foreach(o, i, v) {
            if (i)
                strbuf_putc(b, ',');
            if (write_value(b, v, depth + 1) < 0)
                return -1;
        }
        strbuf_putc(b, ']');
        return 0;
    case JSON_STRING:
        json_put_string(b, json_string_value(o), json_string_length(o));
        return 0;
    case JSON_INTEGER:
        strbuf_put(b, num, (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(o)));
        return 0;
    case JSON_REAL:
        write_real(b, json_real_value(o));
        return 0;
    case JSON_TRUE:
        strbuf_put(b, "true", 4);
        return 0;
    case JSON_FALSE:
        strbuf_put(b, "false", 5);
        return 0;
    case JSON_NULL:
        strbuf_put(b, "null", 4);
        return 0;
    }
    return -1;
}

int json_compact_put(strbuf_t *b, const json_t *o) { return o ? write_value(b, o, 0) : -1; }

char *json_compact_len(const json_t *o, size_t *len)
{
    strbuf_t b = {0};
    if (!o || write_value(&b, o, 0) < 0) {
        free(b.s);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.s;
}

char *json_compact(const json_t *o)
{
    if (!o)
        return NULL;
    char *s = json_compact_len(o, NULL);
    if (!s) {
        /* nested past any document of ours: a reference loop, a bug */
        fprintf(stderr, "virga: cannot dump JSON (nested too deep)\n");
        abort();
    }
    return s;
}

/* The length of json_dumps(o, JSON_COMPACT) without making it: jansson's dump checks
 * every object and array for loops through a hash table keyed by its printed address,
 * which made the sizing of a DescribeInstances page cost more than building it. A
 * string's length by the escapes json_put_string makes. */
static size_t string_size(const char *s, size_t n)
{
    size_t out = 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out += short_escape(c) ? 2 : c < 0x20 ? 6 : 1;
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
