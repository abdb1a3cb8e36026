/* strbuf.h - a growing, always NUL-terminated string, and hex digit decoding: the two
 * small things every text encoder in common/ (SigV4 canonicalisation, XML, Query API
 * decoding) needs. Allocation failure aborts (xrealloc). */
#ifndef VIRGA_STRBUF_H
#define VIRGA_STRBUF_H

#include <stddef.h>
#include <string.h>

typedef struct strbuf {
    char *s;          /* owned; NULL until the first put */
    size_t len, cap;
    /* how s grows to cap bytes (at least): NULL, realloc; a buffer in a mapping of its own
     * (bigbuf.h) moves to a bigger one */
    char *(*grow)(char *s, size_t cap);
} strbuf_t;

/* Room for n more bytes (and the NUL) without another allocation: for a writer that knows
 * about how much it will write, or that copies from the buffer into itself. */
void strbuf_reserve(strbuf_t *b, size_t n);

/* Inline: the text writers of large answers (a DescribeInstances page is ~100,000 puts)
 * spent a tenth of their time in the calls themselves. */
static inline void strbuf_put(strbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap)
        strbuf_reserve(b, n);
    if (n)
        memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static inline void strbuf_puts(strbuf_t *b, const char *s) { strbuf_put(b, s, strlen(s)); }

static inline void strbuf_putc(strbuf_t *b, char c)
{
    if (b->len + 2 > b->cap)
        strbuf_reserve(b, 1);
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
}

/* Append formatted text. */
void strbuf_printf(strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Value of one hex digit (either case), or -1. */
int hex_digit_value(int c);
/* 1 if s is exactly n lowercase hex digits (a SHA-256 in hex, a canonical user id). */
int hex_lower_exact(const char *s, size_t n);

#endif
