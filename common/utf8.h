/* utf8.h - UTF-8 validation shared by everything that emits text to clients or logs
 * (XML, JSON, log lines): tenant input and error messages truncated mid-character must
 * not make a document invalid. */
#ifndef VIRGA_UTF8_H
#define VIRGA_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there are not
 * well-formed UTF-8 (overlong forms, surrogates and values past U+10FFFF included).
 * *cp receives the code point. */
size_t utf8_seq_len(const unsigned char *s, size_t avail, unsigned *cp);
/* 1 when the n bytes at s are all well-formed UTF-8, else 0. */
int utf8_valid(const char *s, size_t n);
/* A copy of s with every byte of broken UTF-8 replaced by '?'. Caller frees. */
char *utf8_sanitize(const char *s);

#endif
