/* byte_runs.h - how many bytes from the start of a text need no escaping, for the text
 * encoders and readers of large answers (JSON strings: jsonutil.c's json_put_string,
 * json_scan.c's reading; XML text: xml.c; JSON straight to XML: json_xml.c). A page of
 * 1,000 instances is 1.8 MB of JSON and 2.6 MB of XML, almost all of it plain ASCII in
 * short strings (keys, ids), which loops testing each byte against five to eight
 * characters walked at several cycles a byte. Here each byte is one lookup in a class
 * table (byte_runs.c), four at a time. Each run stops at the first byte that is not
 * plain: the caller then looks at that byte itself, so the answer is the same as a loop
 * over each byte's own test. */
#ifndef VIRGA_BYTE_RUNS_H
#define VIRGA_BYTE_RUNS_H

#include <stddef.h>

enum {
    BYTE_JSON_PLAIN = 1,      /* ASCII a JSON string holds as itself: 0x20-0x7f but '"' and '\\' */
    BYTE_XML_PLAIN = 2,       /* stands for itself in XML text and attribute values: printable
                               * ASCII but the five that have entities (& < > " ') */
    BYTE_JSON_XML_PLAIN = 4,  /* both: the same text in a JSON string and in XML */
};

extern const unsigned char byte_runs_class[256];

/* Bytes from s (n of them) whose class has the bit `class`. */
static inline size_t byte_run(const unsigned char *s, size_t n, unsigned char class)
{
    const unsigned char *c = byte_runs_class;
    size_t i = 0;
    while (i + 4 <= n && (c[s[i]] & c[s[i + 1]] & c[s[i + 2]] & c[s[i + 3]] & class))
        i += 4;
    while (i < n && (c[s[i]] & class))
        i++;
    return i;
}

static inline size_t json_ascii_run(const unsigned char *s, size_t n) { return byte_run(s, n, BYTE_JSON_PLAIN); }
static inline size_t xml_plain_run(const unsigned char *s, size_t n) { return byte_run(s, n, BYTE_XML_PLAIN); }
static inline size_t json_xml_plain_run(const unsigned char *s, size_t n)
{
    return byte_run(s, n, BYTE_JSON_XML_PLAIN);
}

#endif
