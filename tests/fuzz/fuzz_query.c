/* fuzz_query.c - libFuzzer target for common/query.c. The gateway runs query_parse and
 * query_to_json on bytes from clients that have not been authenticated yet, so any input
 * must come back as either a structure or an InvalidParameterValue error, with no memory
 * error, leak or undefined behaviour. Beyond not crashing, a few contract properties are
 * checked (and trap when broken) so the fuzzer finds wrong answers too. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

static const char *const SKIP[] = {"Action", "Version", NULL};

/* Properties every successful parse has: bounded count and sizes, no empty names,
 * and query_get finds each parameter's own value (names are unique). */
static void check_parsed(const query_t *q)
{
    if (q->n > QUERY_MAX_PARAMS)
        __builtin_trap();
    for (size_t i = 0; i < q->n; i++) {
        size_t nl = strlen(q->p[i].name);
        if (nl == 0 || nl > QUERY_MAX_NAME || strlen(q->p[i].value) > QUERY_MAX_VALUE)
            __builtin_trap();
        if (query_get(q, q->p[i].name) != q->p[i].value)
            __builtin_trap();
    }
}

/* A skipped name never appears as a value (skip is an exact match, so "Action.Name"
 * may still build an "Action" structure), and the result always serialises. */
static void check_json(json_t *j)
{
    if (!json_is_object(j))
        __builtin_trap();
    for (size_t i = 0; SKIP[i]; i++)
        if (json_is_string(json_object_get(j, SKIP[i])))
            __builtin_trap();
    char *s = json_dumps(j, JSON_COMPACT);
    if (!s)
        __builtin_trap();
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    query_t q;
    verr_t e = {0};

    if (query_parse((const char *)data, size, &q, &e) < 0) {
        if (q.n != 0 || q.p != NULL || e.http_status != 400)
            __builtin_trap();
        return 0;
    }
    check_parsed(&q);
    json_t *j = query_to_json(&q, SKIP, &e);
    if (j) {
        check_json(j);
        json_decref(j);
    } else if (e.http_status != 400) {
        __builtin_trap();
    }
    query_free(&q);
    return 0;
}
