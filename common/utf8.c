/* utf8.c - UTF-8 validation and repair. */
#include "utf8.h"

#include <string.h>

#include "err.h"

size_t utf8_seq_len(const unsigned char *s, size_t avail, unsigned *cp)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 2, min = 0x80, c &= 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, min = 0x800, c &= 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

int utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned cp;
        size_t l = utf8_seq_len((const unsigned char *)s + i, n - i, &cp);
        if (l == 0)
            return 0;
        i += l;
    }
    return 1;
}

char *utf8_sanitize(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    char *out = xmalloc(len + 1);
    size_t i = 0;
    while (i < len) {
        unsigned cp;
        size_t n = utf8_seq_len((const unsigned char *)s + i, len - i, &cp);
        if (n == 0) {
            out[i++] = '?';
            continue;
        }
        memcpy(out + i, s + i, n);
        i += n;
    }
    out[len] = 0;
    return out;
}
