/* json_scan.h - reading JSON text where it lies, without building a jansson tree.
 *
 * A large answer (a page of 390 instances, 1,005 security groups: 0.3 to 1 MB) was parsed
 * into a tree only to be walked once and freed: a node and a hash table entry per value,
 * most of a gateway's CPU per call. These read the text in place instead: the bus finds
 * a reply's envelope fields and hands the body on as text, and the gateway turns that
 * text straight into XML (json_xml.h).
 *
 * What they accept is what jansson's json_loadb accepts (RFC 8259 with well-formed UTF-8,
 * no \u0000, no lone surrogate, integers that fit in 64 bits, finite reals), except that
 * duplicate keys are not looked for: the reader decides what a duplicate means. */
#ifndef VIRGA_JSON_SCAN_H
#define VIRGA_JSON_SCAN_H

#include <stddef.h>

#include "strbuf.h"

/* Deeper nesting is refused (jansson's own bound is 2048; nothing Virga sends nests past
 * ten), so a hostile document cannot exhaust a thread's stack. */
#define JSON_SCAN_MAX_DEPTH 512

typedef struct json_span {
    const char *p;
    size_t n;
} json_span_t;

/* p past any JSON whitespace (at most end). Inline for the usual case, compact text with
 * none, met between every two tokens of a large answer (the gateway's XML writer of a
 * page: 2.91-2.99 -> 2.76-2.94 ms, docs/performance.md, page8). */
const char *json_scan_ws_run(const char *p, const char *end);
static inline const char *json_scan_ws(const char *p, const char *end)
{
    return p < end && (unsigned char)*p > ' ' ? p : json_scan_ws_run(p, end);
}

/* The end of the value starting at p (whitespace before it skipped), or NULL when the
 * text there is not one JSON value. The grammar is checked (brackets, commas, colons,
 * literals, numbers), but strings are only delimited (their closing quote found):
 * whoever reads a string's content checks its escapes, control characters and UTF-8
 * (json_scan_string, json_xml.c, jansson). */
const char *json_scan_skip(const char *p, const char *end, int depth);

/* The string whose opening quote is at p: returns the end past its closing quote, or NULL
 * when it is malformed (a raw control character, a bad escape, \u0000, a lone surrogate,
 * broken UTF-8). *out is its content: the bytes of the text itself when it has no escape
 * (nothing copied), else its decoding, written over scratch (which the caller frees). */
const char *json_scan_string(const char *p, const char *end, strbuf_t *scratch, json_span_t *out);

/* After a member or an item of an object or array that ends with close ('}' or ']'):
 * 1 with *p past the comma when another follows, 0 with *p past close when it ends, -1
 * when neither comes next. */
int json_scan_next(const char **p, const char *end, char close);

/* The end of the number at p, or NULL when the text there is not a JSON number; *is_real
 * says whether it has a fraction or an exponent (jansson's real, else its integer). */
const char *json_scan_number(const char *p, const char *end, int *is_real);

/* Calls fn(arg, key, value) for each member of the object that is the whole text, in
 * order: key decoded and NUL-terminated (valid during the call), value the span of its
 * text (framed as json_scan_skip frames it). 0, or -1 when the text is not one object or
 * fn returned non-zero. */
typedef int (*json_member_fn)(void *arg, const char *key, json_span_t value);
int json_scan_members(const char *text, size_t len, json_member_fn fn, void *arg);

/* The same, but the member named last, when met, is taken to be the object's last: its
 * value is the rest of the text up to the closing brace, handed to fn without a pass
 * over it, and the walk ends there. For an envelope whose writer puts a large body last
 * (a bus reply: 1.4 MB for a page of 1,000 instances), read by a consumer that checks
 * the body anyway (json_xml_members, json_loadb refuse anything after the value): one
 * pass over the body instead of two. Members after it, if a writer put any, are not
 * seen: the body's reader then fails on them. */
int json_scan_members_last(const char *text, size_t len, const char *last, json_member_fn fn, void *arg);

#endif
