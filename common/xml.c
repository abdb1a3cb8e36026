/* xml.c - the streaming XML writer behind every EC2 and S3 response body. It appends
 * to one growing buffer and keeps a stack of open tags so callers can close without
 * repeating names and xml_take() can finish a document a handler left open. Every
 * text and attribute value is escaped and cleaned to what XML 1.0 can carry, since
 * values (tag values, object keys, descriptions) come from tenants. Tag names are
 * trusted: they are literals in our own code. */
#include "xml.h"
#include "byte_runs.h"
#include "strbuf.h"
#include "utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

struct xml {
    strbuf_t b;
    char **open;          /* names of the open tags, innermost last */
    size_t nopen, capopen;
};


static void put(xml_t *x, const char *s)
{
    strbuf_put(&x->b, s, strlen(s));
}

/* ---- escaping ------------------------------------------------------------------ */

/* XML 1.0 Char production: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | ... */
static int xml_char_ok(unsigned cp)
{
    if (cp < 0x20)
        return cp == '\t' || cp == '\n' || cp == '\r';
    return cp != 0xfffe && cp != 0xffff;
}

static const char *entity(unsigned char c)
{
    switch (c) {
    case '&':  return "&amp;";
    case '<':  return "&lt;";
    case '>':  return "&gt;";
    case '"':  return "&quot;";
    case '\'': return "&apos;";
    /* A raw CR would be turned into LF by every parser; the reference keeps it. */
    case '\r': return "&#13;";
    default:   return NULL;
    }
}

/* A byte that stands for itself in XML text and attribute values is printable ASCII but
 * the five that have entities: runs of them are found eight bytes at a time
 * (xml_plain_run, byte_runs.h) and copied at once. */
void xml_escape_append(strbuf_t *b, const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t left = len;

    while (left > 0) {
        size_t run = xml_plain_run(s, left);
        if (run) {
            strbuf_put(b, (const char *)s, run);
            s += run;
            left -= run;
            if (!left)
                break;
        }
        unsigned cp;
        size_t n = utf8_seq_len(s, left, &cp);
        if (n == 0) {
            n = 1; /* drop one byte of broken UTF-8 and resync */
        } else if (xml_char_ok(cp)) {
            const char *ent = entity(*s);
            if (ent)
                strbuf_put(b, ent, strlen(ent));
            else
                strbuf_put(b, (const char *)s, n);
        }
        s += n;
        left -= n;
    }
}

static void escape_into(strbuf_t *b, const char *text)
{
    xml_escape_append(b, text, strlen(text));
}

char *xml_escape(const char *s)
{
    strbuf_t b = {0};

    strbuf_put(&b, "", 0);
    if (s)
        escape_into(&b, s);
    return b.s;
}

static void put_escaped(xml_t *x, const char *text)
{
    escape_into(&x->b, text ? text : "");
}

/* ---- document ------------------------------------------------------------------ */

xml_t *xml_new(void)
{
    xml_t *x = xcalloc(1, sizeof *x);
    put(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    return x;
}

void xml_free(xml_t *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->nopen; i++)
        free(x->open[i]);
    free(x->open);
    free(x->b.s);
    free(x);
}

static void push_tag(xml_t *x, const char *tag)
{
    if (x->nopen == x->capopen) {
        x->capopen = x->capopen ? x->capopen * 2 : 8;
        x->open = xrealloc(x->open, x->capopen * sizeof *x->open);
    }
    x->open[x->nopen++] = xstrdup(tag);
}

void xml_open(xml_t *x, const char *tag, const char *xmlns)
{
    if (!x || !tag)
        return;
    put(x, "<");
    put(x, tag);
    if (xmlns) {
        put(x, " xmlns=\"");
        put_escaped(x, xmlns);
        put(x, "\"");
    }
    put(x, ">");
    push_tag(x, tag);
}

void xml_open_attrs(xml_t *x, const char *tag, const char *attrs)
{
    if (!x || !tag)
        return;
    put(x, "<");
    put(x, tag);
    if (attrs && *attrs) {
        put(x, " ");
        put(x, attrs);
    }
    put(x, ">");
    push_tag(x, tag);
}

void xml_close(xml_t *x)
{
    if (!x || x->nopen == 0)
        return;
    char *tag = x->open[--x->nopen];
    put(x, "</");
    put(x, tag);
    put(x, ">");
    free(tag);
}

/* NULL text gives an empty element, so an optional value can never crash a handler. */
void xml_elem(xml_t *x, const char *tag, const char *text)
{
    if (!x || !tag)
        return;
    put(x, "<");
    put(x, tag);
    put(x, ">");
    put_escaped(x, text);
    put(x, "</");
    put(x, tag);
    put(x, ">");
}

void xml_elemf(xml_t *x, const char *tag, const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;

    if (!x || !tag || !fmt)
        return;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fprintf(stderr, "virga: out of memory formatting <%s>\n", tag);
        abort();
    }
    xml_elem(x, tag, text);
    free(text);
}

void xml_elem_int(xml_t *x, const char *tag, long long v)
{
    char num[32];

    snprintf(num, sizeof num, "%lld", v);
    xml_elem(x, tag, num);
}

void xml_elem_bool(xml_t *x, const char *tag, int v)
{
    xml_elem(x, tag, v ? "true" : "false");
}

const char *xml_str(const xml_t *x)
{
    return x ? x->b.s : NULL;
}

size_t xml_len(const xml_t *x)
{
    return x ? x->b.len : 0;
}

char *xml_take(xml_t *x, size_t *len)
{
    if (!x) {
        if (len)
            *len = 0;
        return NULL;
    }
    while (x->nopen > 0)
        xml_close(x);
    char *doc = x->b.s;
    if (len)
        *len = x->b.len;
    x->b.s = NULL;
    xml_free(x);
    return doc;
}
