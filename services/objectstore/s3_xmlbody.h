/* s3_xmlbody.h - reading the small XML documents S3 requests carry (DeleteObjects,
 * CompleteMultipartUpload), with libxml2: no network, no DTDs (a document declaring one
 * is refused before parsing, so no entity tricks), bounded by S3_SMALL_BODY. */
#ifndef VIRGA_S3_XMLBODY_H
#define VIRGA_S3_XMLBODY_H

#include <libxml/tree.h>

#include "err.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"   /* the namespace of S3's XML */

/* Parse and check the root element's name: MalformedXML 400 otherwise. Free with
 * xmlFreeDoc. */
xmlDocPtr s3_xml_parse(const char *body, size_t len, const char *root, verr_t *e);
/* Text of the first child element named name (caller frees with xmlFree), or NULL. */
xmlChar *s3_xml_child_text(xmlNodePtr parent, const char *name);

#endif
