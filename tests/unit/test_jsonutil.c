/* test_jsonutil.c - unit tests for common/jsonutil.c: typed getters fall back to the
 * default on missing keys and on every wrong type, json_path walks objects (and array
 * indexes), json_parse_bounded refuses oversized, truncated, duplicated and garbage
 * input, and JSON_AUTO drops its reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsonutil.h"

static const char *doc =
    "{\"s\":\"text\",\"empty\":\"\",\"i\":42,\"neg\":-7,\"big\":9007199254740993,"
    "\"r\":1.5,\"t\":true,\"f\":false,\"n\":null,\"a\":[1,{\"x\":\"in-array\"}],"
    "\"caller\":{\"account\":\"123456789012\",\"user\":{\"name\":\"alice\"}},"
    "\"dot.key\":1}";

static json_t *load(void)
{
    json_t *o = json_parse_bounded(doc, strlen(doc), 4096);
    assert_non_null(o);
    return o;
}

static void test_str(void **state)
{
    (void)state;
    JSON_AUTO json_t *o = load();
    assert_string_equal(json_str(o, "s", "def"), "text");
    assert_string_equal(json_str(o, "empty", "def"), "");
    assert_string_equal(json_str(o, "missing", "def"), "def");
    static const char *wrong[] = {"i", "r", "t", "f", "n", "a", "caller"};
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++)
        assert_string_equal(json_str(o, wrong[i], "def"), "def");
    assert_null(json_str(o, "missing", NULL));
    assert_string_equal(json_str(NULL, "s", "def"), "def");
    assert_string_equal(json_str(o, NULL, "def"), "def");
    /* a non-object holder yields the default */
    assert_string_equal(json_str(json_object_get(o, "a"), "s", "def"), "def");
}

static void test_int(void **state)
{
    (void)state;
    JSON_AUTO json_t *o = load();
    assert_int_equal(json_int(o, "i", -1), 42);
    assert_int_equal(json_int(o, "neg", 0), -7);
    assert_true(json_int(o, "big", 0) == INT64_C(9007199254740993));
    assert_int_equal(json_int(o, "missing", 5), 5);
    static const char *wrong[] = {"s", "empty", "r", "t", "f", "n", "a", "caller"};
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++)
        assert_int_equal(json_int(o, wrong[i], -99), -99);
    assert_int_equal(json_int(NULL, "i", 3), 3);
}

static void test_bool(void **state)
{
    (void)state;
    JSON_AUTO json_t *o = load();
    assert_int_equal(json_bool(o, "t", 0), 1);
    assert_int_equal(json_bool(o, "f", 1), 0);
    assert_int_equal(json_bool(o, "missing", 7), 7);
    /* truthy values of other types are not booleans */
    static const char *wrong[] = {"s", "i", "r", "n", "a", "caller"};
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++)
        assert_int_equal(json_bool(o, wrong[i], -1), -1);
    assert_int_equal(json_bool(NULL, "t", 2), 2);
}

/* json_bool_strict: true/false in either form, def when absent or null, anything else an
 * error that leaves *out alone. */
static void test_bool_strict(void **state)
{
    (void)state;
    JSON_AUTO json_t *o = json_pack("{s:b, s:b, s:s, s:s, s:n, s:s, s:s, s:i, s:i, s:f, s:[], s:{}}", "t", 1, "f", 0,
                                    "st", "true", "sf", "false", "null", "yes", "yes", "one", "1", "i1", 1, "i0", 0,
                                    "r", 1.0, "a", "o");
    int out = 9;
    assert_int_equal(json_bool_strict(o, "t", -1, &out), 0);
    assert_int_equal(out, 1);
    assert_int_equal(json_bool_strict(o, "f", -1, &out), 0);
    assert_int_equal(out, 0);
    assert_int_equal(json_bool_strict(o, "st", -1, &out), 0);
    assert_int_equal(out, 1);
    assert_int_equal(json_bool_strict(o, "sf", -1, &out), 0);
    assert_int_equal(out, 0);
    assert_int_equal(json_bool_strict(o, "missing", 7, &out), 0);
    assert_int_equal(out, 7);
    assert_int_equal(json_bool_strict(o, "null", -1, &out), 0);
    assert_int_equal(out, -1);
    static const char *wrong[] = {"yes", "one", "i1", "i0", "r", "a", "o"};
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        out = 5;
        assert_int_equal(json_bool_strict(o, wrong[i], 0, &out), -1);
        assert_int_equal(out, 5);
    }
    JSON_AUTO json_t *cap = json_pack("{s:s, s:s}", "T", "True", "e", "");
    assert_int_equal(json_bool_strict(cap, "T", 0, &out), -1);
    assert_int_equal(json_bool_strict(cap, "e", 0, &out), -1);
    assert_int_equal(json_bool_strict(NULL, "t", 3, &out), 0);
    assert_int_equal(out, 3);
}

static void test_path(void **state)
{
    (void)state;
    JSON_AUTO json_t *o = load();
    assert_string_equal(json_string_value(json_path(o, "caller.account")), "123456789012");
    assert_string_equal(json_string_value(json_path(o, "caller.user.name")), "alice");
    assert_ptr_equal(json_path(o, "caller"), json_object_get(o, "caller"));
    assert_int_equal(json_integer_value(json_path(o, "a.0")), 1);
    assert_string_equal(json_string_value(json_path(o, "a.1.x")), "in-array");
    assert_int_equal(json_integer_value(json_path(o, "i")), 42);
    assert_true(json_is_null(json_path(o, "n")));

    assert_null(json_path(o, "caller.missing"));
    assert_null(json_path(o, "caller.account.more"));  /* through a string */
    assert_null(json_path(o, "a.2"));                   /* past the end */
    assert_null(json_path(o, "a.x"));                   /* not an index */
    assert_null(json_path(o, "a.-1"));
    assert_null(json_path(o, "a.99999999999999999999"));
    assert_null(json_path(o, "dot.key"));               /* dots always split */
    assert_null(json_path(o, ""));
    assert_null(json_path(o, "caller."));
    assert_null(json_path(o, ".caller"));
    assert_null(json_path(o, "caller..account"));
    assert_null(json_path(NULL, "caller"));
    assert_null(json_path(o, NULL));
}

static void test_parse_bounded(void **state)
{
    (void)state;
    const char *small = "{\"a\":1}";
    json_t *j = json_parse_bounded(small, strlen(small), strlen(small));
    assert_non_null(j);
    assert_int_equal(json_int(j, "a", 0), 1);
    json_decref(j);

    /* one byte over the bound */
    assert_null(json_parse_bounded(small, strlen(small), strlen(small) - 1));
    /* only len bytes are read: the text need not be NUL-terminated */
    const char *two = "{\"a\":1}{\"b\":2}";
    j = json_parse_bounded(two, 7, 100);
    assert_non_null(j);
    json_decref(j);

    static const char *bad[] = {
        "", "{", "{\"a\":}", "{\"a\":1,}", "[1,2", "{'a':1}", "garbage", "{\"a\":1} x",
        "{\"a\":1}{\"b\":2}", "{\"a\":1,\"a\":2}", "{\"a\":\"\\u0000\"}", "{\"a\":NaN}",
        "\xff\xfe{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_null(json_parse_bounded(bad[i], strlen(bad[i]), 1 << 20));
    assert_null(json_parse_bounded(NULL, 10, 100));

    /* a large valid document: accepted under the bound, refused over it */
    size_t n = 100000;
    char *big = malloc(n + 16);
    assert_non_null(big);
    memcpy(big, "[", 1);
    size_t len = 1;
    while (len < n - 4)
        len += (size_t)snprintf(big + len, 16, "1,");
    big[len++] = '1';
    big[len++] = ']';
    j = json_parse_bounded(big, len, len);
    assert_non_null(j);
    assert_true(json_array_size(j) > 40000);
    json_decref(j);
    assert_null(json_parse_bounded(big, len, len - 1));
    free(big);
}

static void test_compact(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:s, s:i, s:[b, n]}", "k", "v\"q", "n", 3, "l", 1);
    char *s = json_compact(o);
    assert_string_equal(s, "{\"k\":\"v\\\"q\",\"n\":3,\"l\":[true,null]}");
    free(s);
    json_decref(o);

    json_t *str = json_string("x");
    s = json_compact(str); /* scalars too */
    assert_string_equal(s, "\"x\"");
    free(s);
    json_decref(str);
    assert_null(json_compact(NULL));
}

static void test_autodecref(void **state)
{
    (void)state;
    json_t *keep = json_object();
    {
        JSON_AUTO json_t *ref = json_incref(keep);
        assert_ptr_equal(ref, keep);
        assert_int_equal(keep->refcount, 2);
    }
    assert_int_equal(keep->refcount, 1);
    json_t *j = json_object();
    json_autodecref(&j);
    assert_null(j);
    json_autodecref(&j);   /* already NULL */
    json_autodecref(NULL);
    json_decref(keep);
}

/* json_compact_size is exactly the length of the compact dump, escapes included. */
static void test_compact_size(void **state)
{
    (void)state;
    json_t *docs[] = {
        json_pack("{s:s, s:i, s:b, s:b, s:n, s:[], s:{}}", "a", "plain", "n", -1234567, "t", 1, "f", 0, "z", "e", "o"),
        json_pack("{s:s, s:[s, s, s]}", "quote\"key", "back\\slash \n\t\r\b\f", "list", "\x01\x1f ctl",
                  "caf\xc3\xa9 \xe2\x82\xac", "slash / here"),
        json_pack("[i, [[[]]], {s:[{s:s}]}, I]", 0, "k", "k2", "v", (json_int_t)9007199254740993LL),
        json_string(""),
        json_integer(7),
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        char *d = json_dumps(docs[i], JSON_COMPACT | JSON_ENCODE_ANY);
        assert_non_null(d);
        assert_int_equal(json_compact_size(docs[i]), strlen(d));
        free(d);
        json_decref(docs[i]);
    }
}

/* json_compact writes byte for byte what jansson's compact dump writes: key order, every
 * escape (\u00XX in upper case), integers, and reals in jansson's own form. */
static void test_compact_matches_jansson(void **state)
{
    (void)state;
    json_t *docs[] = {
        json_pack("{s:s, s:i, s:b, s:b, s:n, s:[], s:{}}", "a", "plain", "n", -1234567, "t", 1, "f", 0, "z", "e", "o"),
        json_pack("{s:s, s:[s, s, s, s]}", "quote\"key", "back\\slash \n\t\r\b\f", "list", "\x01\x1f\x7f ctl",
                  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "slash / here", "<&>'"),
        json_pack("[i, [[[]]], {s:[{s:s}]}, I, I]", 0, "k", "k2", "v", (json_int_t)9007199254740993LL,
                  (json_int_t)(-9223372036854775807LL - 1)),
        json_pack("[f, f, f, f, f, f, f, f, f, f]", 1.5, 3.0, 0.1, 1e20, -2.5e-7, 1e300, 123456789012345678.0, 0.0,
                  -0.0, 5e-324),
        json_string(""),
        json_integer(7),
        json_real(1e100),
        json_true(),
        json_null(),
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        char *want = json_dumps(docs[i], JSON_COMPACT | JSON_ENCODE_ANY);
        size_t len = 0;
        char *got = json_compact_len(docs[i], &len);
        assert_non_null(want);
        assert_non_null(got);
        assert_string_equal(got, want);
        assert_int_equal(len, strlen(want));
        free(want);
        free(got);
        json_decref(docs[i]);
    }
    /* keys in the order they were set, as jansson keeps them */
    json_t *o = json_object();
    json_object_set_new(o, "z", json_integer(1));
    json_object_set_new(o, "a", json_integer(2));
    json_object_set_new(o, "m", json_integer(3));
    char *s = json_compact(o);
    assert_string_equal(s, "{\"z\":1,\"a\":2,\"m\":3}");
    free(s);
    json_decref(o);
}

/* The writers for text answers: json_put_string escapes as the compact dump does, and
 * json_compact_put appends a value's compact form to what the buffer holds. */
static void test_put_string_and_value(void **state)
{
    (void)state;
    const char *s = "a\"b\\c\n\x01\x1f caf\xc3\xa9 /";
    json_t *str = json_string(s), *doc = json_pack("{s:[i, s], s:b}", "k", 1, s, "t", 1);
    char *want_s = json_dumps(str, JSON_COMPACT | JSON_ENCODE_ANY), *want_d = json_dumps(doc, JSON_COMPACT);
    strbuf_t b = {0};
    strbuf_puts(&b, "[");
    json_put_string(&b, s, strlen(s));
    strbuf_puts(&b, ",");
    assert_int_equal(json_compact_put(&b, doc), 0);
    strbuf_puts(&b, "]");
    char *want = NULL;
    assert_true(asprintf(&want, "[%s,%s]", want_s, want_d) > 0);
    assert_string_equal(b.s, want);
    json_put_string(&b, "x\0y", 3);   /* n bytes, a NUL among them: \u0000 */
    assert_string_equal(b.s + strlen(want), "\"x\\u0000y\"");
    assert_int_equal(json_compact_put(&b, NULL), -1);
    free(want);
    free(want_s);
    free(want_d);
    free(b.s);
    json_decref(str);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_bool_strict),
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_parse_bounded),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_autodecref),
        cmocka_unit_test(test_compact_size),
        cmocka_unit_test(test_compact_matches_jansson),
        cmocka_unit_test(test_put_string_and_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
