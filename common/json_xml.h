/* json_xml.h - JSON text straight into AWS-shaped XML elements, the generic mapping the
 * gateway answers EC2 and IAM calls with (services/api-gateway/render.c): an object's
 * keys are element names, in order; an object is an element holding its members; an
 * array is an element holding one item_tag element per value ("item" for EC2, "member"
 * for IAM; an empty one is <k></k>); a string is its escaped text (xml.h's cleaning); an
 * integer in decimal; a real as "%.15g" (EC2's sizes are doubles: every digit of a byte
 * count kept); true/false as such; null leaves its element out.
 *
 * It reads the text once, writing as it goes, without a jansson tree: for a 0.3 to 1 MB
 * answer the tree was most of the gateway's CPU per call. Keys are written as they are
 * (they are names from our services' code, as with xml.h's tag names). */
#ifndef VIRGA_JSON_XML_H
#define VIRGA_JSON_XML_H

#include <stddef.h>

#include "strbuf.h"

/* Appends the elements of the members of the object that is the whole text (nothing when
 * it is another JSON value) to out: 0, or -1 when the text is not well-formed JSON as
 * jansson would read it (json_scan.h), with out as it was before the call. */
int json_xml_members(strbuf_t *out, const char *json, size_t len, const char *item_tag);

#endif
