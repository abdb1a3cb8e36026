/* byte_runs.h - how many bytes from the start of a text need no escaping, for the text
 * encoders and readers of large answers (JSON strings: jsonutil.c's json_put_string,
 * json_scan.c's reading; XML text: xml.c). Eight bytes are checked at a time (the
 * "has a zero byte" word tricks): a page of 1,000 instances is 1.8 MB of JSON and 2.6 MB
 * of XML, almost all of it plain ASCII, which the byte-at-a-time loops walked at a few
 * cycles a byte (the gateway's and compute's largest costs per page after the copies).
 * Each run stops at the first byte that is not plain, or before it: the caller then
 * looks at that byte itself, so the answer is the same as a loop over each byte's test. */
#ifndef VIRGA_BYTE_RUNS_H
#define VIRGA_BYTE_RUNS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define BYTE_RUNS_ONES 0x0101010101010101ULL
#define BYTE_RUNS_HIGHS 0x8080808080808080ULL

/* Non-zero when some byte of w is below n (n at most 128) or has its high bit set. */
static inline uint64_t byte_runs_below_or_high(uint64_t w, unsigned n)
{
    return ((w - BYTE_RUNS_ONES * n) & ~w & BYTE_RUNS_HIGHS) | (w & BYTE_RUNS_HIGHS);
}

/* Non-zero when some byte of w is c. */
static inline uint64_t byte_runs_has(uint64_t w, unsigned char c)
{
    uint64_t x = w ^ (BYTE_RUNS_ONES * c);
    return (x - BYTE_RUNS_ONES) & ~x & BYTE_RUNS_HIGHS;
}

static inline uint64_t byte_runs_load(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* Bytes from s (n of them) that a JSON string holds as themselves and that are ASCII:
 * 0x20-0x7f but '"' and '\\'. */
static inline size_t json_ascii_run(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i + 8 <= n) {
        uint64_t w = byte_runs_load(s + i);
        if (byte_runs_below_or_high(w, 0x20) | byte_runs_has(w, '"') | byte_runs_has(w, '\\'))
            break;
        i += 8;
    }
    while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

/* Bytes from s (n of them) that stand for themselves in XML text and attribute values:
 * printable ASCII but the five that have entities (& < > " '); with json also '\\', so
 * that the run is the same text in a JSON string and in XML (json_xml.c copies such a
 * string across in one pass). */
static inline size_t xml_run(const unsigned char *s, size_t n, int json)
{
    size_t i = 0;
    unsigned char backslash = json ? '\\' : '&';   /* '&' again: no further byte stops the run */
    while (i + 8 <= n) {
        uint64_t w = byte_runs_load(s + i);
        if (byte_runs_below_or_high(w, 0x20) | byte_runs_has(w, '&') | byte_runs_has(w, '<') |
            byte_runs_has(w, '>') | byte_runs_has(w, '"') | byte_runs_has(w, '\'') | byte_runs_has(w, backslash))
            break;
        i += 8;
    }
    while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '&' && s[i] != '<' && s[i] != '>' && s[i] != '"' &&
           s[i] != '\'' && s[i] != backslash)
        i++;
    return i;
}

static inline size_t xml_plain_run(const unsigned char *s, size_t n) { return xml_run(s, n, 0); }

/* The same, and no '\\': plain in a JSON string and in XML alike. */
static inline size_t json_xml_plain_run(const unsigned char *s, size_t n) { return xml_run(s, n, 1); }

#endif
