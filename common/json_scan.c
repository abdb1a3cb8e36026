/* json_scan.c - reading JSON text in place (json_scan.h): skipping a value by its
 * grammar, decoding a string only when it has escapes, and walking an object's members,
 * so that a large bus reply is read once, by whoever uses it, instead of being parsed
 * into a tree first. */
#include "json_scan.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "byte_runs.h"
#include "utf8.h"

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

const char *json_scan_ws_run(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

static int hex4(const char *p, const char *end, unsigned *v)
{
    if (end - p < 4)
        return -1;
    unsigned x = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit_value((unsigned char)p[i]);
        if (d < 0)
            return -1;
        x = x << 4 | (unsigned)d;
    }
    *v = x;
    return 0;
}

/* The end of the string at p (its opening quote): the first quote not escaped, found
 * with memchr (a large answer's strings are most of its bytes). What lies between is not
 * checked: whoever reads the string does (json_scan_string). */
static const char *skip_string(const char *p, const char *end)
{
    const char *s = p + 1;
    for (p = s; p < end;) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            return NULL;
        size_t slashes = 0;   /* an odd number of backslashes before it escapes it */
        while (q - slashes > s && q[-1 - (ptrdiff_t)slashes] == '\\')
            slashes++;
        if (!(slashes & 1))
            return q + 1;
        p = q + 1;
    }
    return NULL;
}

int json_scan_next(const char **p, const char *end, char close)
{
    const char *q = json_scan_ws(*p, end);
    if (q >= end || (*q != ',' && *q != close))
        return -1;
    *p = q + 1;
    return *q == ',';
}

static const char *digits(const char *p, const char *end)
{
    const char *s = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return p > s ? p : NULL;
}

const char *json_scan_number(const char *p, const char *end, int *is_real)
{
    *is_real = 0;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return NULL;
    if (*p == '0')
        p++;   /* no leading zeros: "01" is two values, which the caller refuses */
    else if (!(p = digits(p, end)))
        return NULL;
    if (p < end && *p == '.') {
        *is_real = 1;
        if (!(p = digits(p + 1, end)))
            return NULL;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *is_real = 1;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!(p = digits(p, end)))
            return NULL;
    }
    return p;
}

static const char *literal(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(end - p) >= n && !memcmp(p, word, n) ? p + n : NULL;
}

const char *json_scan_skip(const char *p, const char *end, int depth)
{
    int real;
    p = json_scan_ws(p, end);
    if (p >= end)
        return NULL;
    switch (*p) {
    case '{':
    case '[': {
        char close = *p == '{' ? '}' : ']';
        if (depth >= JSON_SCAN_MAX_DEPTH)
            return NULL;
        p = json_scan_ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (close == '}') {
                p = json_scan_ws(p, end);
                if (p >= end || *p != '"' || !(p = skip_string(p, end)))
                    return NULL;
                p = json_scan_ws(p, end);
                if (p >= end || *p++ != ':')
                    return NULL;
            }
            if (!(p = json_scan_skip(p, end, depth + 1)))
                return NULL;
            int more = json_scan_next(&p, end, close);
            if (more <= 0)
                return more ? NULL : p;
        }
    }
    case '"':
        return skip_string(p, end);
    case 't':
        return literal(p, end, "true");
    case 'f':
        return literal(p, end, "false");
    case 'n':
        return literal(p, end, "null");
    default:
        return json_scan_number(p, end, &real);
    }
}

static void put_utf8(strbuf_t *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3f)), u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    strbuf_put(b, u, n);
}

/* p at the 'u' of a \u escape: its code point (a surrogate pair taken whole) into b, and
 * the end of the escape; NULL for \u0000 and lone surrogates, as jansson refuses them. */
static const char *unicode_escape(const char *p, const char *end, strbuf_t *b)
{
    unsigned cp, lo;
    if (hex4(p + 1, end, &cp) < 0 || cp == 0)
        return NULL;
    p += 5;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return NULL;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
            return NULL;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        p += 6;
    }
    put_utf8(b, cp);
    return p;
}

/* Bytes from p that need no decoding (well-formed UTF-8, no control character, quote or
 * backslash): the end of that run, or NULL at broken UTF-8 or a control character. */
static const char *plain_run(const char *p, const char *end)
{
    while (p < end) {
        p += json_ascii_run((const unsigned char *)p, (size_t)(end - p));
        if (p >= end)
            break;
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            return p;
        if (c < 0x20)
            return NULL;
        unsigned cp;   /* past ASCII: one whole UTF-8 sequence, or broken */
        size_t n = utf8_seq_len((const unsigned char *)p, (size_t)(end - p), &cp);
        if (!n)
            return NULL;
        p += n;
    }
    return p;
}

const char *json_scan_string(const char *p, const char *end, strbuf_t *scratch, json_span_t *out)
{
    if (p >= end || *p != '"')
        return NULL;
    const char *s = ++p;
    if (!(p = plain_run(p, end)) || p >= end)
        return NULL;
    if (*p == '"') {   /* the common case: the text is the content */
        out->p = s;
        out->n = (size_t)(p - s);
        return p + 1;
    }
    scratch->len = 0;
    strbuf_put(scratch, s, (size_t)(p - s));
    while (p < end && *p != '"') {   /* at a backslash */
        const char *esc = p + 1;
        if (esc >= end)
            return NULL;
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *k = *esc ? strchr(from, *esc) : NULL;
        if (k) {
            strbuf_putc(scratch, to[k - from]);
            p = esc + 1;
        } else if (*esc == 'u') {
            if (!(p = unicode_escape(esc, end, scratch)))
                return NULL;
        } else {
            return NULL;
        }
        s = p;
        if (!(p = plain_run(p, end)) || p >= end)
            return NULL;
        strbuf_put(scratch, s, (size_t)(p - s));
    }
    if (p >= end)
        return NULL;
    out->p = scratch->s;
    out->n = scratch->len;
    return p + 1;
}

/* The value of the object's last member, at v: the rest of the text up to the object's
 * closing brace (whitespace around it left out), not read here. 0, or -1 when there is
 * no brace or no value. */
static int rest_of_object(const char *v, const char *end, json_span_t *out)
{
    const char *q = end;
    while (q > v && is_ws(q[-1]))
        q--;
    if (q <= v || q[-1] != '}')
        return -1;
    q--;
    while (q > v && is_ws(q[-1]))
        q--;
    if (q == v)
        return -1;
    *out = (json_span_t){v, (size_t)(q - v)};
    return 0;
}

int json_scan_members(const char *text, size_t len, json_member_fn fn, void *arg)
{
    return json_scan_members_last(text, len, NULL, fn, arg);
}

int json_scan_members_last(const char *text, size_t len, const char *last, json_member_fn fn, void *arg)
{
    const char *end = text + len, *p = json_scan_ws(text, end);
    strbuf_t scratch = {0}, key = {0};
    int rc = -1;
    if (p >= end || *p != '{')
        goto out;
    p = json_scan_ws(p + 1, end);
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            json_span_t k;
            p = json_scan_ws(p, end);
            if (!(p = json_scan_string(p, end, &scratch, &k)))
                goto out;
            key.len = 0;
            strbuf_put(&key, k.p, k.n);
            p = json_scan_ws(p, end);
            if (p >= end || *p != ':')
                goto out;
            const char *v = json_scan_ws(p + 1, end);
            if (last && !strcmp(key.s, last)) {   /* the rest is its value: handed on unread */
                json_span_t rest;
                rc = rest_of_object(v, end, &rest) == 0 && !fn(arg, key.s, rest) ? 0 : -1;
                goto out;
            }
            if (!(p = json_scan_skip(v, end, 1)) || fn(arg, key.s, (json_span_t){v, (size_t)(p - v)}))
                goto out;
            int more = json_scan_next(&p, end, '}');
            if (more < 0)
                goto out;
            if (!more)
                break;
        }
    }
    rc = json_scan_ws(p, end) == end ? 0 : -1;
out:
    free(scratch.s);
    free(key.s);
    return rc;
}
