/* strbuf.h - a growing, always NUL-terminated string, and hex digit decoding: the two
 * small things every text encoder in common/ (SigV4 canonicalisation, XML, Query API
 * decoding) needs. Allocation failure aborts (xrealloc). */
#ifndef VIRGA_STRBUF_H
#define VIRGA_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
    char *s;          /* owned; NULL until the first put */
    size_t len, cap;
} strbuf_t;

void strbuf_put(strbuf_t *b, const char *s, size_t n);
/* Room for n more bytes (and the NUL) without another allocation: for a writer that knows
 * about how much it will write, or that copies from the buffer into itself. */
void strbuf_reserve(strbuf_t *b, size_t n);
void strbuf_puts(strbuf_t *b, const char *s);
void strbuf_putc(strbuf_t *b, char c);
/* Append formatted text. */
void strbuf_printf(strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Value of one hex digit (either case), or -1. */
int hex_digit_value(int c);
/* 1 if s is exactly n lowercase hex digits (a SHA-256 in hex, a canonical user id). */
int hex_lower_exact(const char *s, size_t n);

#endif
