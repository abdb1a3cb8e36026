/* query.h - the EC2/IAM Query API request format.
 *
 * A request's parameters come from the query string (GET) or a form-encoded body
 * (POST): "Action=DescribeKeyPairs&Version=2016-11-15&KeyName.1=a&Filter.1.Name=x&
 * Filter.1.Value.1=y". query_parse() decodes them into a flat list, bounded in count and
 * size; query_to_json() turns the dotted names into structure, so services read JSON:
 *   KeyName.1=a, KeyName.2=b            -> {"KeyName": ["a", "b"]}
 *   Filter.1.Name=x, Filter.1.Value.1=y -> {"Filter": [{"Name": "x", "Value": ["y"]}]}
 *   Attribute.Name=a                    -> {"Attribute": {"Name": "a"}}
 * Indexes are 1-based as in the API; gaps are closed up in order of index; an index of 0,
 * above QUERY_MAX_INDEX, a component that is neither an index nor a name (a letter, then
 * letters, digits, '_' or '-': "KeyName.-1"), or a name used both as a scalar and as a
 * structure is an InvalidParameterValue error naming the parameter. */
#ifndef VIRGA_QUERY_H
#define VIRGA_QUERY_H

#include <jansson.h>
#include <stddef.h>

#include "err.h"

#define QUERY_MAX_PARAMS 1000
#define QUERY_MAX_NAME 256
#define QUERY_MAX_VALUE (256 * 1024)
#define QUERY_MAX_INDEX 1000

typedef struct query_param {
    char *name;
    char *value;
} query_param_t;

typedef struct query {
    query_param_t *p;
    size_t n;
} query_t;

/* Parse application/x-www-form-urlencoded text ('+' is a space, %XX decoded). Errors
 * (code, http 400): InvalidParameterCombination for a name given twice (also across the
 * query string and the body, with query_parse_append); InvalidParameterValue for bad
 * percent-encoding, a name or value over the limits, invalid UTF-8, or more than
 * QUERY_MAX_PARAMS parameters. On error *q is left empty. */
int query_parse(const char *text, size_t len, query_t *q, verr_t *e);
/* Append the parameters of a second source (the body after the query string). */
int query_parse_append(const char *text, size_t len, query_t *q, verr_t *e);
const char *query_get(const query_t *q, const char *name);
void query_free(query_t *q);

/* Structure the parameters (see above), leaving out the names in skip[] (NULL-ended,
 * e.g. Action, Version and the X-Amz-* auth parameters). New reference or NULL + e. */
json_t *query_to_json(const query_t *q, const char *const *skip, verr_t *e);

#endif
