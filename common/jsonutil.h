/* jsonutil.h - small helpers over jansson used by every handler. */
#ifndef VIRGA_JSONUTIL_H
#define VIRGA_JSONUTIL_H

#include <jansson.h>
#include <stdint.h>

#include "strbuf.h"

/* `JSON_AUTO json_t *o = ...;` drops the reference at scope exit. */
void json_autodecref(json_t **j);
#define JSON_AUTO __attribute__((cleanup(json_autodecref)))

/* Typed getters: return def when the key is missing or of another type. */
const char *json_str(const json_t *o, const char *key, const char *def);
int64_t json_int(const json_t *o, const char *key, int64_t def);
int json_bool(const json_t *o, const char *key, int def);
/* A Query API flag: JSON true or the string "true" (query parameters arrive as strings). */
int json_flag(const json_t *o, const char *key);
/* A boolean member, strictly: JSON true or false, or the Query API's "true" or "false"
 * (query parameters arrive as strings). *out is 1 or 0, or def when the member is missing
 * or JSON null. Returns 0, or -1 (*out untouched) for anything else, another string or a
 * number ("yes", "1", 1): the caller reports that with its own error, naming the member. */
int json_bool_strict(const json_t *o, const char *key, int def, int *out);
/* Dotted path lookup: json_path(o, "caller.account"). NULL when missing. */
json_t *json_path(const json_t *o, const char *path);
/* Parse with a size bound; NULL on error or if the text is larger than max. */
json_t *json_parse_bounded(const char *text, size_t len, size_t max);
/* Compact dump, byte for byte what json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY) writes,
 * without jansson's cost: its dump checks every object and array for loops through a
 * hash table keyed by the printed address, a third of a service's CPU for a large bus
 * reply. Caller frees. json_compact aborts (a loop: a bug) where json_compact_len
 * returns NULL; *len (if given) gets the length. */
char *json_compact(const json_t *o);
char *json_compact_len(const json_t *o, size_t *len);
/* Writers of that compact form into a buffer, for a handler that writes its answer as
 * JSON text without building a tree (a DescribeInstances page): n bytes of s as a JSON
 * string, escaped as jansson does; a value appended (0, or -1 nested too deep). */
void json_put_string(strbuf_t *b, const char *s, size_t n);
int json_compact_put(strbuf_t *b, const json_t *o);
/* strlen(json_compact(o)), computed without dumping (a DescribeInstances page is sized item by item). */
size_t json_compact_size(const json_t *o);

#endif
