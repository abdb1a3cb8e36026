/* strbuf.c - growing strings and hex digits (see strbuf.h). */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

void strbuf_reserve(strbuf_t *b, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t want = b->cap ? b->cap : 128;
        while (want < b->len + n + 1)
            want *= 2;
        b->s = b->grow ? b->grow(b->s, want) : xrealloc(b->s, want);
        b->cap = want;
    }
}

void strbuf_printf(strbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    strbuf_put(b, "", 0);
    if (b->len + (size_t)n + 1 > b->cap) {
        strbuf_reserve(b, (size_t)n);
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int hex_lower_exact(const char *s, size_t n)
{
    if (!s || strlen(s) != n)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

int hex_digit_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
