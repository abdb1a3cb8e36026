/* json_xml.c - JSON text to XML elements in one pass (json_xml.h). Each element's name
 * is either the item tag or a key this pass has just written into the output itself
 * (the opening tag), so the closing tag is copied from there: nothing is allocated per
 * element. A null member's opening tag is taken back. */
#include "json_xml.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "byte_runs.h"
#include "json_scan.h"
#include "xml.h"

struct conv {
    strbuf_t *out;
    const char *end;
    const char *item;
    size_t item_len;
    strbuf_t scratch;   /* decoded strings with escapes, number tokens */
};

/* An element's name: a literal, or len bytes of the output at off. */
typedef struct {
    const char *lit;
    size_t off, len;
} tag_t;

static void close_tag(strbuf_t *b, tag_t t)
{
    strbuf_reserve(b, t.len + 3);   /* before copying from b itself */
    char *w = b->s + b->len;
    *w++ = '<';
    *w++ = '/';
    memcpy(w, t.lit ? t.lit : b->s + t.off, t.len);
    w += t.len;
    *w++ = '>';
    *w = 0;
    b->len = (size_t)(w - b->s);
}

static const char *element(struct conv *c, const char *p, tag_t t, size_t mark, int depth);

/* The string at p (its opening quote) when every byte of it is the same in JSON and in
 * XML (printable ASCII, no escape, nothing XML has an entity for): its end past the
 * closing quote, *out its content in place; else NULL, and the caller reads it the long
 * way (json_scan_string, xml_escape_append). Keys and values of Virga's answers are
 * almost all such strings: one pass over them instead of two. */
static const char *plain_string(const struct conv *c, const char *p, json_span_t *out)
{
    if (p >= c->end || *p != '"')
        return NULL;
    const char *s = p + 1;
    size_t n = json_xml_plain_run((const unsigned char *)s, (size_t)(c->end - s));
    if (s + n >= c->end || s[n] != '"')
        return NULL;
    out->p = s;
    out->n = n;
    return s + n + 1;
}

/* p at '{': each member as an element; the end past '}', or NULL. */
static const char *members(struct conv *c, const char *p, int depth)
{
    if (depth >= JSON_SCAN_MAX_DEPTH)
        return NULL;
    p = json_scan_ws(p + 1, c->end);
    if (p < c->end && *p == '}')
        return p + 1;
    for (;;) {
        json_span_t k;
        size_t mark = c->out->len;
        p = json_scan_ws(p, c->end);
        const char *q = plain_string(c, p, &k);
        if (!(p = q ? q : json_scan_string(p, c->end, &c->scratch, &k)))
            return NULL;
        strbuf_putc(c->out, '<');
        tag_t t = {NULL, c->out->len, k.n};
        strbuf_put(c->out, k.p, k.n);
        strbuf_putc(c->out, '>');
        p = json_scan_ws(p, c->end);
        if (p >= c->end || *p != ':')
            return NULL;
        if (!(p = element(c, json_scan_ws(p + 1, c->end), t, mark, depth + 1)))
            return NULL;
        int more = json_scan_next(&p, c->end, '}');
        if (more <= 0)
            return more ? NULL : p;
    }
}

/* p at '[': each value as an item element; the end past ']', or NULL. */
static const char *items(struct conv *c, const char *p, int depth)
{
    if (depth >= JSON_SCAN_MAX_DEPTH)
        return NULL;
    p = json_scan_ws(p + 1, c->end);
    if (p < c->end && *p == ']')
        return p + 1;
    tag_t t = {c->item, 0, c->item_len};
    for (;;) {
        size_t mark = c->out->len;
        strbuf_putc(c->out, '<');
        strbuf_put(c->out, c->item, c->item_len);
        strbuf_putc(c->out, '>');
        if (!(p = element(c, json_scan_ws(p, c->end), t, mark, depth + 1)))
            return NULL;
        int more = json_scan_next(&p, c->end, ']');
        if (more <= 0)
            return more ? NULL : p;
    }
}

/* The number at p as jansson reads it: an integer that must fit in 64 bits, or a finite
 * real. */
static const char *number(struct conv *c, const char *p)
{
    int real;
    const char *e = json_scan_number(p, c->end, &real);
    if (!e)
        return NULL;
    /* an integer of up to 18 digits is its own text (JSON has no leading zeros nor '+'),
     * but for "-0", which jansson reads as 0 */
    if (!real && e - p <= 18 && !(e - p == 2 && p[0] == '-' && p[1] == '0')) {
        strbuf_put(c->out, p, (size_t)(e - p));
        return e;
    }
    c->scratch.len = 0;
    strbuf_put(&c->scratch, p, (size_t)(e - p));
    char num[40];
    errno = 0;
    if (real) {
        double d = strtod(c->scratch.s, NULL);
        if (isinf(d))
            return NULL;
        snprintf(num, sizeof num, "%.15g", d);
    } else {
        long long v = strtoll(c->scratch.s, NULL, 10);
        if (errno == ERANGE)
            return NULL;
        snprintf(num, sizeof num, "%lld", v);
    }
    strbuf_puts(c->out, num);
    return e;
}

/* The value at p, whose opening tag t ends the output (written from mark on): its
 * content and closing tag, or for null nothing at all. The end of the value, or NULL. */
static const char *element(struct conv *c, const char *p, tag_t t, size_t mark, int depth)
{
    json_span_t s;
    if (p >= c->end)
        return NULL;
    switch (*p) {
    case '{':
        p = members(c, p, depth);
        break;
    case '[':
        p = items(c, p, depth);
        break;
    case '"': {
        const char *q = plain_string(c, p, &s);
        if (q) {   /* the usual string: its text is its XML */
            strbuf_put(c->out, s.p, s.n);
            p = q;
        } else if ((p = json_scan_string(p, c->end, &c->scratch, &s))) {
            xml_escape_append(c->out, s.p, s.n);
        }
        break;
    }
    case 't':
    case 'f': {
        const char *word = *p == 't' ? "true" : "false";
        size_t n = strlen(word);
        if ((size_t)(c->end - p) < n || memcmp(p, word, n))
            return NULL;
        strbuf_put(c->out, word, n);
        p += n;
        break;
    }
    case 'n':
        if (c->end - p < 4 || memcmp(p, "null", 4))
            return NULL;
        c->out->len = mark;   /* left out, opening tag and all */
        c->out->s[mark] = 0;
        return p + 4;
    default:
        p = number(c, p);
        break;
    }
    if (p)
        close_tag(c->out, t);
    return p;
}

int json_xml_members(strbuf_t *out, const char *json, size_t len, const char *item_tag)
{
    struct conv c = {.out = out, .end = json + len, .item = item_tag, .item_len = strlen(item_tag)};
    size_t mark = out->len;
    strbuf_put(out, "", 0);   /* out->s exists, so it can be cut back to mark */
    const char *p = json_scan_ws(json, c.end);
    if (p < c.end && *p == '{') {
        p = members(&c, p, 0);
    } else {   /* rendered as nothing, but read all the same */
        p = element(&c, p, (tag_t){"-", 0, 1}, mark, 0);
        out->len = mark;
        out->s[mark] = 0;
    }
    free(c.scratch.s);
    if (!p || json_scan_ws(p, c.end) != c.end) {
        out->len = mark;
        out->s[mark] = 0;
        return -1;
    }
    return 0;
}
