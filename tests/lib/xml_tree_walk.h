/* xml_tree_walk.h - the gateway's former JSON-to-XML rendering, a jansson tree walked
 * with xml.h, kept for the tests and benchmarks as the reference that common/json_xml.c
 * must match byte for byte (tests/unit/test_json_xml.c) and the cost it replaced
 * (tests/bench/reply_path_cost.c). */
#ifndef VIRGA_TESTS_XML_TREE_WALK_H
#define VIRGA_TESTS_XML_TREE_WALK_H

#include <jansson.h>

#include "xml.h"

static void tree_walk_value(xml_t *x, const char *tag, json_t *v, const char *item_tag);

static inline void tree_walk_object(xml_t *x, json_t *o, const char *item_tag)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
        tree_walk_value(x, k, v, item_tag);
}

static void tree_walk_value(xml_t *x, const char *tag, json_t *v, const char *item_tag)
{
    size_t i;
    json_t *it;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        xml_open(x, tag, NULL);
        tree_walk_object(x, v, item_tag);
        xml_close(x);
        break;
    case JSON_ARRAY:
        xml_open(x, tag, NULL);
        json_array_foreach(v, i, it)
            tree_walk_value(x, item_tag, it, item_tag);
        xml_close(x);
        break;
    case JSON_STRING:
        xml_elem(x, tag, json_string_value(v));
        break;
    case JSON_INTEGER:
        xml_elem_int(x, tag, (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        xml_elemf(x, tag, "%.15g", json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        xml_elem_bool(x, tag, json_is_true(v));
        break;
    case JSON_NULL:
        break;
    }
}

#endif
