/* test_tags.c - unit tests for the request parsing of common/tags.c: CreateTags' Tag.N
 * list (EC2's limits: 50 tags, keys of 1..128 characters counted as characters not
 * bytes, no "aws:" prefix, values up to 256 characters, no key twice, a missing Value
 * meaning "") and DeleteTags' (a key alone deletes whatever the value, a key with a
 * value, even empty, only that value; no list at all means every tag). The handlers
 * themselves need a database and are covered end to end by tests/e2e/test_tags.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "err.h"
#include "tags.h"

/* tags.c's bus handlers bring in service.c, which links against the migrations every
 * service binary has compiled in: this one has none. */
const db_migration_t virga_migrations[1];
const unsigned long virga_migrations_count = 0;

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &err);
    if (!j)
        fail_msg("bad test JSON at %d: %s\n%s", err.position, err.text, text);
    return j;
}

static char *repeat(const char *s, int n)
{
    size_t l = strlen(s);
    char *out = calloc(1, l * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        memcpy(out + l * (size_t)i, s, l);
    return out;
}

/* Parse a CreateTags list; NULL on error with the code in e. */
static json_t *create(json_t *list, verr_t *e)
{
    json_t *out = tags_parse_create(list, e);
    json_decref(list);
    return out;
}

static void test_create_ok(void **state)
{
    (void)state;
    verr_t e = {0};
    json_t *t = create(parse("[{\"Key\":\"a\",\"Value\":\"1\"},{\"Key\":\"b\"},{\"Key\":\"c\",\"Value\":\"\"}]"), &e);
    assert_non_null(t);
    json_t *want = parse("[{\"key\":\"a\",\"value\":\"1\"},{\"key\":\"b\",\"value\":\"\"},{\"key\":\"c\",\"value\":\"\"}]");
    assert_true(json_equal(t, want));
    json_decref(want);
    json_decref(t);
}

static void test_create_missing(void **state)
{
    (void)state;
    verr_t e = {0};
    assert_null(tags_parse_create(NULL, &e));
    assert_string_equal(e.code, "MissingParameter");
    verr_clear(&e);
    assert_null(create(parse("[]"), &e));
    assert_string_equal(e.code, "MissingParameter");
}

static void test_create_bad_keys_and_values(void **state)
{
    (void)state;
    const char *bad[] = {
        "[{\"Key\":\"aws:x\",\"Value\":\"1\"}]",
        "[{\"Key\":\"\",\"Value\":\"1\"}]",
        "[{\"Value\":\"1\"}]",
        "[\"just-a-string\"]",
        "[{\"Key\":\"a\",\"Value\":\"1\"},{\"Key\":\"a\",\"Value\":\"2\"}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        verr_t e = {0};
        assert_null(create(parse(bad[i]), &e));
        assert_string_equal(e.code, "InvalidParameterValue");
        assert_int_equal(e.http_status, 400);
    }
}

static void test_create_lengths_in_characters(void **state)
{
    (void)state;
    char *k128 = repeat("\xc3\xa9", 128), *k129 = repeat("k", 129);   /* é: 2 bytes, 1 character */
    char *v256 = repeat("\xc3\xbc", 256), *v257 = repeat("v", 257);
    verr_t e = {0};
    json_t *t = create(json_pack("[{s:s, s:s}]", "Key", k128, "Value", v256), &e);
    assert_non_null(t);
    json_decref(t);
    assert_null(create(json_pack("[{s:s, s:s}]", "Key", k129, "Value", "v"), &e));
    assert_string_equal(e.code, "InvalidParameterValue");
    verr_clear(&e);
    assert_null(create(json_pack("[{s:s, s:s}]", "Key", "k", "Value", v257), &e));
    assert_string_equal(e.code, "InvalidParameterValue");
    free(k128);
    free(k129);
    free(v256);
    free(v257);
}

static void test_create_limit(void **state)
{
    (void)state;
    json_t *fifty = json_array();
    for (int i = 0; i < 50; i++) {
        char k[8];
        snprintf(k, sizeof k, "t%d", i);
        json_array_append_new(fifty, json_pack("{s:s, s:s}", "Key", k, "Value", "v"));
    }
    verr_t e = {0};
    json_t *t = tags_parse_create(fifty, &e);
    assert_non_null(t);
    assert_int_equal(json_array_size(t), 50);
    json_decref(t);
    json_array_append_new(fifty, json_pack("{s:s, s:s}", "Key", "t50", "Value", "v"));
    assert_null(create(fifty, &e));
    assert_string_equal(e.code, "TagLimitExceeded");
}

static void test_delete(void **state)
{
    (void)state;
    verr_t e = {0};
    json_t *all = tags_parse_delete(NULL, &e);
    assert_non_null(all);
    assert_int_equal(json_array_size(all), 0);
    json_decref(all);

    json_t *in = parse("[{\"Key\":\"any\"},{\"Key\":\"only\",\"Value\":\"v\"},{\"Key\":\"empty\",\"Value\":\"\"}]");
    json_t *t = tags_parse_delete(in, &e);
    json_decref(in);
    json_t *want = parse("[{\"key\":\"any\"},{\"key\":\"only\",\"value\":\"v\"},{\"key\":\"empty\",\"value\":\"\"}]");
    assert_true(json_equal(t, want));
    json_decref(want);
    json_decref(t);

    const char *bad[] = {"[{\"Value\":\"v\"}]", "[{\"Key\":\"\"}]", "\"scalar\"", "[{\"Key\":\"k\",\"Value\":{\"x\":1}}]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        in = parse(bad[i]);
        verr_clear(&e);
        assert_null(tags_parse_delete(in, &e));
        assert_string_equal(e.code, "InvalidParameterValue");
        json_decref(in);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_ok),
        cmocka_unit_test(test_create_missing),
        cmocka_unit_test(test_create_bad_keys_and_values),
        cmocka_unit_test(test_create_lengths_in_characters),
        cmocka_unit_test(test_create_limit),
        cmocka_unit_test(test_delete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
