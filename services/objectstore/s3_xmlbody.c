/* s3_xmlbody.c - safe parsing of S3 request documents (see s3_xmlbody.h). */
#include "s3_xmlbody.h"

#include <libxml/parser.h>
#include <string.h>

xmlDocPtr s3_xml_parse(const char *body, size_t len, const char *root, verr_t *e)
{
    if (!body || !len || memmem(body, len, "<!DOCTYPE", 9) || memmem(body, len, "<!ENTITY", 8)) {
        verr_set(e, 400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.");
        return NULL;
    }
    xmlDocPtr doc = xmlReadMemory(body, (int)len, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOBLANKS |
                                                           XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr r = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!r || strcmp((const char *)r->name, root)) {
        xmlFreeDoc(doc);
        verr_set(e, 400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.");
        return NULL;
    }
    return doc;
}

xmlChar *s3_xml_child_text(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name))
            return xmlNodeGetContent(c);
    return NULL;
}
