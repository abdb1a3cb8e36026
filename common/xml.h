/* xml.h - a small streaming XML writer for EC2/S3 responses.
 *
 * Text and attribute values are escaped (& < > " ' and control characters that XML 1.0
 * cannot carry are dropped), so a tenant's tag value or object key can never break the
 * document. The writer grows its buffer; xml_take() hands the string to the caller. */
#ifndef VIRGA_XML_H
#define VIRGA_XML_H

#include <stddef.h>

typedef struct xml xml_t;

/* Starts with <?xml version="1.0" encoding="UTF-8"?> */
xml_t *xml_new(void);
void xml_free(xml_t *x);
/* Open <tag xmlns="ns"> (ns may be NULL). */
void xml_open(xml_t *x, const char *tag, const char *xmlns);
/* Open <tag attrs>: attrs is written as it is, so only literals from our own code
 * (xmlns:xsi="..." xsi:type="Group"), never tenant data. */
void xml_open_attrs(xml_t *x, const char *tag, const char *attrs);
void xml_close(xml_t *x);                 /* closes the innermost open tag */
void xml_elem(xml_t *x, const char *tag, const char *text);   /* <tag>escaped</tag> */
void xml_elemf(xml_t *x, const char *tag, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void xml_elem_int(xml_t *x, const char *tag, long long v);
void xml_elem_bool(xml_t *x, const char *tag, int v);      /* true/false */
/* s escaped, in a new string (caller frees). */
char *xml_escape(const char *s);
/* The len bytes at s escaped and cleaned as above, appended to b (NUL bytes dropped like
 * every other control character): for callers writing a document into their own buffer
 * (json_xml.c). */
struct strbuf;
void xml_escape_append(struct strbuf *b, const char *s, size_t len);
const char *xml_str(const xml_t *x);      /* current document */
size_t xml_len(const xml_t *x);
char *xml_take(xml_t *x, size_t *len);    /* closes all open tags, frees x, returns doc */

#endif
