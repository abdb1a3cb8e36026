/* describe.h - what every EC2 Describe* handler shares: Filter.N.Name/Value.M matching
 * (values may use '*' and '?' wildcards, as EC2 allows; several values of one filter
 * are OR-ed, several filters AND-ed; "tag:<key>", "tag-key" and "tag-value" look in the
 * item's tagSet), and MaxResults/NextToken pagination over items sorted by id.
 *
 * Items are the JSON objects the handler will return (the response shape), so a filter
 * is just a name -> dotted path in that object. */
#ifndef VIRGA_DESCRIBE_H
#define VIRGA_DESCRIBE_H

#include <jansson.h>

#include "err.h"

typedef struct describe_field {
    const char *filter;   /* "key-name" */
    const char *path;     /* "keyName" (json_path syntax) */
} describe_field_t;

/* Keep the items matching every filter. filters is the "Filter" array from
 * query_to_json ([{"Name": "...", "Value": ["..."]}]) or NULL. fields ends with
 * {NULL, NULL}. An unknown filter name: InvalidParameterValue 400 "The filter 'x' is
 * invalid". Returns a new array (NULL + e on error). */
json_t *describe_filter(const json_t *items, const json_t *filters, const describe_field_t *fields, verr_t *e);

/* The items whose `field` is one of the names listed in params[list] (ImageId.N,
 * KeyName.N, RegionName.N...), in the order asked, a name listed twice once. Without the list: every item (a new
 * reference). EC2 answers an error when a listed name does not exist: NULL is returned
 * with *missing pointing at the first such name (inside params), for the caller's own
 * error code. */
json_t *describe_select(const json_t *items, const json_t *params, const char *list, const char *field,
                        const char **missing);

/* One page of items (already sorted by id_field): MaxResults must be within
 * [min_results, max_results] (InvalidParameterValue otherwise); NextToken continues after
 * the id it encodes (InvalidPaginationToken if it is not one of ours). Sets *page (new
 * array) and *next_token (new string, or NULL on the last page). Without MaxResults every
 * item is returned. */
int describe_page(const json_t *items, const json_t *params, const char *id_field, int min_results,
                  int max_results, json_t **page, json_t **next_token, verr_t *e);

/* A page (from describe_page) cut to about budget bytes of compact JSON, for answers that
 * must fit a bus message: the items past the budget are dropped (never the first) and
 * *next_token (replaced) continues after the last one kept, as EC2 may answer fewer than
 * MaxResults with a NextToken. 1 when it cut, else 0. */
int describe_page_bytes(json_t *page, const char *id_field, size_t budget, json_t **next_token);

/* describe_page's checks of MaxResults (*max: -1 without it) and NextToken (after: the
 * id it continues after, "" without it), for a handler that pages in SQL: 0, or -1 with
 * describe_page's error. */
int describe_page_params(const json_t *params, int min_results, int max_results, long *max, char *after,
                         size_t aftersz, verr_t *e);
/* The NextToken that continues after id (caller frees). */
char *describe_token(const char *id);

/* The id a NextToken of describe_page continues after: 0, or -1 when it is not one. */
int describe_token_id(const char *tok, char *id, size_t idsz);

/* The tag list of a TagSpecification for resource_type ("key-pair") as a tagSet array
 * ([{"key": "...", "value": "..."}]); checks EC2's limits (50 tags, key 1..128 chars
 * not starting with "aws:", value <= 256). Returns a new array or NULL + e. */
json_t *describe_tag_spec(const json_t *params, const char *resource_type, verr_t *e);
/* The same where the action also takes specifications of one other type (RunInstances:
 * instance and network-interface): those are skipped here, read by their own call. */
json_t *describe_tag_spec_beside(const json_t *params, const char *resource_type, const char *other, verr_t *e);

/* "2026-11-26T08:50:00.000Z" for EC2 timestamps, from a Unix time. */
void describe_time(long long unix_seconds, char out[32]);

#endif
