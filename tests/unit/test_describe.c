/* test_describe.c - unit tests for common/describe.c, the shared machinery of EC2
 * Describe* handlers: describe_filter() with EC2 Filter semantics (values OR-ed,
 * filters AND-ed, '*' and '?' wildcards, tag:KEY / tag-key / tag-value looking in the
 * item's tagSet, integer / boolean / array / nested fields, unknown names and missing
 * values rejected, NULL filters keeping everything, a new array that leaves the input
 * untouched); describe_page() MaxResults bounds and NextToken paging (25 items 10 at a
 * time give 10, 10, 5 with every id exactly once, forged or garbage tokens refused, a
 * token past the end giving an empty last page); describe_tag_spec() EC2 tag limits;
 * and describe_time() ISO-8601 formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "describe.h"
#include "err.h"

/* ---- helpers ------------------------------------------------------------------- */

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        fail_msg("bad test JSON at %d: %s\n%s", err.position, err.text, text);
    return j;
}

static const describe_field_t FIELDS[] = {
    {"key-name", "keyName"},   {"key-pair-id", "keyPairId"}, {"key-type", "keyType"},
    {"state", "state.name"},   {"count", "count"},           {"is-default", "isDefault"},
    {"group", "groups"},       {"attachment.vpc-id", "attachments.vpcId"}, {NULL, NULL}};

static const char *ITEMS_JSON =
    "["
    "{\"keyName\":\"alpha\",\"keyPairId\":\"key-01\",\"keyType\":\"rsa\",\"state\":{\"name\":\"available\"},"
    " \"count\":3,\"isDefault\":true,\"groups\":[\"web\",\"db\"],"
    " \"attachments\":[{\"vpcId\":\"vpc-1\"},{\"vpcId\":\"vpc-2\"}],"
    " \"tagSet\":[{\"key\":\"env\",\"value\":\"prod\"},{\"key\":\"team\",\"value\":\"blue\"}]},"
    "{\"keyName\":\"beta\",\"keyPairId\":\"key-02\",\"keyType\":\"ed25519\",\"state\":{\"name\":\"pending\"},"
    " \"count\":10,\"isDefault\":false,\"groups\":[\"db\"],\"attachments\":[{\"vpcId\":\"vpc-2\"}],"
    " \"tagSet\":[{\"key\":\"env\",\"value\":\"dev\"}]},"
    "{\"keyName\":\"gamma\",\"keyPairId\":\"key-03\",\"keyType\":\"rsa\",\"state\":{\"name\":\"available\"},"
    " \"count\":-7,\"isDefault\":false,\"groups\":[],\"tagSet\":[]},"
    "{\"keyName\":\"alphabet\",\"keyPairId\":\"key-04\",\"keyType\":\"rsa\",\"count\":0}"
    "]";

/* The keyNames of a result, comma-joined, for compact comparisons. */
static void names_of(const json_t *arr, char *out, size_t outsz)
{
    size_t i, used = 0;
    json_t *it;
    out[0] = '\0';
    json_array_foreach(arr, i, it) {
        const char *n = json_string_value(json_object_get(it, "keyName"));
        int w = snprintf(out + used, outsz - used, "%s%s", i ? "," : "", n ? n : "(null)");
        assert_true(w > 0 && (size_t)w < outsz - used);
        used += (size_t)w;
    }
}

/* Run describe_filter over ITEMS_JSON with filters given as JSON text; expect success
 * and the given comma-joined keyNames. The input must come back unmodified. */
static void expect_filter(const char *filters_json, const char *want)
{
    json_t *items = parse(ITEMS_JSON);
    json_t *before = json_deep_copy(items);
    json_t *filters = filters_json ? parse(filters_json) : NULL;
    verr_t e;
    memset(&e, 0, sizeof e);
    json_t *out = describe_filter(items, filters, FIELDS, &e);
    if (!out)
        fail_msg("describe_filter(%s) failed: %s %s", filters_json ? filters_json : "NULL", e.code, e.message);
    assert_true(json_is_array(out));
    assert_ptr_not_equal(out, items);
    char got[512];
    names_of(out, got, sizeof got);
    if (strcmp(got, want))
        fail_msg("filters %s: got [%s], want [%s]", filters_json ? filters_json : "NULL", got, want);
    assert_true(json_equal(items, before));
    json_decref(out);
    json_decref(filters);
    json_decref(before);
    json_decref(items);
}

/* Expect describe_filter to fail with code; the message must contain needle (if any). */
static void expect_filter_error(const char *items_json, const char *filters_json, const char *code,
                                const char *needle)
{
    json_t *items = parse(items_json);
    json_t *filters = parse(filters_json);
    verr_t e;
    memset(&e, 0, sizeof e);
    json_t *out = describe_filter(items, filters, FIELDS, &e);
    if (out) {
        char got[512];
        names_of(out, got, sizeof got);
        json_decref(out);
        fail_msg("filters %s: expected %s, got success [%s]", filters_json, code, got);
    }
    assert_string_equal(e.code, code);
    assert_int_equal(e.http_status, 400);
    if (needle && !strstr(e.message, needle))
        fail_msg("message '%s' does not name '%s'", e.message, needle);
    json_decref(filters);
    json_decref(items);
}

/* ---- describe_filter ------------------------------------------------------------ */

static void test_filter_null_keeps_all(void **state)
{
    (void)state;
    expect_filter(NULL, "alpha,beta,gamma,alphabet");
    expect_filter("[]", "alpha,beta,gamma,alphabet");
}

/* The result is a new array: changing it leaves the input alone. */
static void test_filter_result_is_new_array(void **state)
{
    (void)state;
    json_t *items = parse(ITEMS_JSON);
    json_t *before = json_deep_copy(items);
    verr_t e;
    memset(&e, 0, sizeof e);
    json_t *out = describe_filter(items, NULL, FIELDS, &e);
    assert_non_null(out);
    assert_ptr_not_equal(out, items);
    assert_int_equal(json_array_size(out), 4);
    assert_int_equal(json_array_clear(out), 0);
    json_array_append_new(out, json_string("extra"));
    assert_int_equal(json_array_size(items), 4);
    assert_true(json_equal(items, before));
    json_decref(out);

    json_t *filters = parse("[{\"Name\":\"key-name\",\"Value\":[\"beta\"]}]");
    out = describe_filter(items, filters, FIELDS, &e);
    assert_non_null(out);
    assert_int_equal(json_array_size(out), 1);
    assert_true(json_equal(items, before));
    json_decref(out);
    json_decref(filters);
    json_decref(before);
    json_decref(items);
}

static void test_filter_exact_value(void **state)
{
    (void)state;
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"alpha\"]}]", "alpha");   /* not alphabet */
    expect_filter("[{\"Name\":\"key-pair-id\",\"Value\":[\"key-03\"]}]", "gamma");
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"delta\"]}]", "");
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"ALPHA\"]}]", "");      /* case-sensitive */
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"alph\"]}]", "");       /* no prefix match */
}

static void test_filter_values_or(void **state)
{
    (void)state;
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"alpha\",\"gamma\"]}]", "alpha,gamma");
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"nope\",\"beta\",\"also-nope\"]}]", "beta");
    expect_filter("[{\"Name\":\"key-type\",\"Value\":[\"rsa\",\"ed25519\"]}]", "alpha,beta,gamma,alphabet");
}

static void test_filter_filters_and(void **state)
{
    (void)state;
    expect_filter("[{\"Name\":\"key-type\",\"Value\":[\"rsa\"]},"
                  " {\"Name\":\"state\",\"Value\":[\"available\"]}]",
                  "alpha,gamma");
    expect_filter("[{\"Name\":\"key-type\",\"Value\":[\"rsa\"]},"
                  " {\"Name\":\"state\",\"Value\":[\"available\"]},"
                  " {\"Name\":\"key-name\",\"Value\":[\"alpha*\"]}]",
                  "alpha");
    /* AND of two filters that never hold together */
    expect_filter("[{\"Name\":\"key-type\",\"Value\":[\"ed25519\"]},"
                  " {\"Name\":\"state\",\"Value\":[\"available\"]}]",
                  "");
    /* OR inside, AND across */
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"alpha\",\"beta\",\"gamma\"]},"
                  " {\"Name\":\"state\",\"Value\":[\"pending\",\"available\"]},"
                  " {\"Name\":\"key-type\",\"Value\":[\"ed25519\"]}]",
                  "beta");
}

static void test_filter_wildcards(void **state)
{
    (void)state;
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"alpha*\"]}]", "alpha,alphabet");
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"*a\"]}]", "alpha,beta,gamma");
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"*ph*\"]}]", "alpha,alphabet");
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"*\"]}]", "alpha,beta,gamma,alphabet");
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"gamm?\"]}]", "gamma");
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"?eta\"]}]", "beta");
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"b?ta\"]}]", "beta");
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"alph?\"]}]", "alpha");  /* '?' is one char */
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"?\"]}]", "");
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"?????\"]}]", "alpha,gamma");
    expect_filter("[{\"Name\":\"key-pair-id\",\"Value\":[\"key-0?\"]}]", "alpha,beta,gamma,alphabet");
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"a*t\"]}]", "alphabet");
    expect_filter("[{\"Name\":\"key-name\",\"Value\":[\"a*x\"]}]", "");
    /* a field the item does not have matches nothing, not even '*' */
    expect_filter("[{\"Name\":\"state\",\"Value\":[\"*\"]}]", "alpha,beta,gamma");
}

static void test_filter_nested_path(void **state)
{
    (void)state;
    expect_filter("[{\"Name\":\"state\",\"Value\":[\"available\"]}]", "alpha,gamma");
    expect_filter("[{\"Name\":\"state\",\"Value\":[\"pending\"]}]", "beta");
    expect_filter("[{\"Name\":\"state\",\"Value\":[\"pend*\"]}]", "beta");
}

static void test_filter_integer_values(void **state)
{
    (void)state;
    expect_filter("[{\"Name\":\"count\",\"Value\":[\"3\"]}]", "alpha");
    expect_filter("[{\"Name\":\"count\",\"Value\":[\"10\"]}]", "beta");
    expect_filter("[{\"Name\":\"count\",\"Value\":[\"-7\"]}]", "gamma");
    expect_filter("[{\"Name\":\"count\",\"Value\":[\"0\"]}]", "alphabet");
    expect_filter("[{\"Name\":\"count\",\"Value\":[\"1*\"]}]", "beta");
    expect_filter("[{\"Name\":\"count\",\"Value\":[\"03\"]}]", "");   /* string compare of the decimal form */
    expect_filter("[{\"Name\":\"count\",\"Value\":[\"3\",\"0\"]}]", "alpha,alphabet");
}

static void test_filter_boolean_values(void **state)
{
    (void)state;
    expect_filter("[{\"Name\":\"is-default\",\"Value\":[\"true\"]}]", "alpha");
    expect_filter("[{\"Name\":\"is-default\",\"Value\":[\"false\"]}]", "beta,gamma");  /* alphabet has none */
    expect_filter("[{\"Name\":\"is-default\",\"Value\":[\"1\"]}]", "");
    expect_filter("[{\"Name\":\"is-default\",\"Value\":[\"TRUE\"]}]", "");
}

static void test_filter_array_values(void **state)
{
    (void)state;
    expect_filter("[{\"Name\":\"group\",\"Value\":[\"db\"]}]", "alpha,beta");
    expect_filter("[{\"Name\":\"group\",\"Value\":[\"web\"]}]", "alpha");
    expect_filter("[{\"Name\":\"group\",\"Value\":[\"w*\"]}]", "alpha");
    expect_filter("[{\"Name\":\"group\",\"Value\":[\"cache\"]}]", "");
    expect_filter("[{\"Name\":\"group\",\"Value\":[\"*\"]}]", "alpha,beta");  /* gamma's list is empty */
}

/* A path through an array of objects: every element's value counts (EC2's
 * attachment.vpc-id, ip-permission.protocol...). */
static void test_filter_path_through_array(void **state)
{
    (void)state;
    expect_filter("[{\"Name\":\"attachment.vpc-id\",\"Value\":[\"vpc-1\"]}]", "alpha");
    expect_filter("[{\"Name\":\"attachment.vpc-id\",\"Value\":[\"vpc-2\"]}]", "alpha,beta");
    expect_filter("[{\"Name\":\"attachment.vpc-id\",\"Value\":[\"*\"]}]", "alpha,beta");
}

static void test_filter_tags(void **state)
{
    (void)state;
    expect_filter("[{\"Name\":\"tag:env\",\"Value\":[\"prod\"]}]", "alpha");
    expect_filter("[{\"Name\":\"tag:env\",\"Value\":[\"dev\",\"prod\"]}]", "alpha,beta");
    expect_filter("[{\"Name\":\"tag:env\",\"Value\":[\"*\"]}]", "alpha,beta");
    expect_filter("[{\"Name\":\"tag:team\",\"Value\":[\"blue\"]}]", "alpha");
    expect_filter("[{\"Name\":\"tag:env\",\"Value\":[\"blue\"]}]", "");      /* team's value, not env's */
    expect_filter("[{\"Name\":\"tag:missing\",\"Value\":[\"*\"]}]", "");
    expect_filter("[{\"Name\":\"tag:Env\",\"Value\":[\"prod\"]}]", "");     /* keys are case-sensitive */
    expect_filter("[{\"Name\":\"tag-key\",\"Value\":[\"team\"]}]", "alpha");
    expect_filter("[{\"Name\":\"tag-key\",\"Value\":[\"env\"]}]", "alpha,beta");
    expect_filter("[{\"Name\":\"tag-key\",\"Value\":[\"prod\"]}]", "");      /* a value, not a key */
    expect_filter("[{\"Name\":\"tag-key\",\"Value\":[\"*\"]}]", "alpha,beta");
    expect_filter("[{\"Name\":\"tag-value\",\"Value\":[\"dev\"]}]", "beta");
    expect_filter("[{\"Name\":\"tag-value\",\"Value\":[\"blue\"]}]", "alpha");
    expect_filter("[{\"Name\":\"tag-value\",\"Value\":[\"env\"]}]", "");     /* a key, not a value */
    expect_filter("[{\"Name\":\"tag-value\",\"Value\":[\"?e?\"]}]", "beta");
    /* tags AND-ed with ordinary fields */
    expect_filter("[{\"Name\":\"tag-key\",\"Value\":[\"env\"]},"
                  " {\"Name\":\"key-type\",\"Value\":[\"ed25519\"]}]",
                  "beta");
    expect_filter("[{\"Name\":\"tag:env\",\"Value\":[\"prod\"]},"
                  " {\"Name\":\"tag:team\",\"Value\":[\"red\"]}]",
                  "");
}

static void test_filter_unknown_name(void **state)
{
    (void)state;
    expect_filter_error(ITEMS_JSON, "[{\"Name\":\"bogus-name\",\"Value\":[\"x\"]}]", "InvalidParameterValue",
                        "bogus-name");
    /* even with nothing to filter */
    expect_filter_error("[]", "[{\"Name\":\"bogus-name\",\"Value\":[\"x\"]}]", "InvalidParameterValue",
                        "bogus-name");
    /* after a valid one */
    expect_filter_error(ITEMS_JSON,
                        "[{\"Name\":\"key-name\",\"Value\":[\"alpha\"]},"
                        " {\"Name\":\"keyName\",\"Value\":[\"alpha\"]}]",
                        "InvalidParameterValue", "keyName");
    /* a filter name is not a prefix match */
    expect_filter_error(ITEMS_JSON, "[{\"Name\":\"key\",\"Value\":[\"x\"]}]", "InvalidParameterValue", "'key'");
    expect_filter_error(ITEMS_JSON, "[{\"Name\":\"key-name-x\",\"Value\":[\"x\"]}]", "InvalidParameterValue",
                        "key-name-x");
    expect_filter_error(ITEMS_JSON, "[{\"Name\":\"tagkey\",\"Value\":[\"x\"]}]", "InvalidParameterValue",
                        "tagkey");
}

static void test_filter_missing_value_or_name(void **state)
{
    (void)state;
    expect_filter_error(ITEMS_JSON, "[{\"Name\":\"key-name\"}]", "InvalidParameterValue", "key-name");
    expect_filter_error(ITEMS_JSON, "[{\"Name\":\"key-name\",\"Value\":\"alpha\"}]", "InvalidParameterValue",
                        "key-name");
    expect_filter_error(ITEMS_JSON, "[{\"Name\":\"tag:env\"}]", "InvalidParameterValue", "tag:env");
    expect_filter_error(ITEMS_JSON, "[{\"Value\":[\"alpha\"]}]", "InvalidParameterValue", NULL);
    expect_filter_error(ITEMS_JSON,
                        "[{\"Name\":\"key-name\",\"Value\":[\"alpha\"]}, {\"Name\":\"key-type\"}]",
                        "InvalidParameterValue", "key-type");
}

/* ---- describe_page -------------------------------------------------------------- */

static json_t *make_items(int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "id-%02d", i);
        json_array_append_new(a, json_pack("{s:s, s:i}", "id", id, "n", i));
    }
    return a;
}

/* A NextToken built the way describe.c documents it: base64url("v1:" id). */
static char *forge(const char *raw)
{
    size_t n = sodium_base64_encoded_len(strlen(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *tok = malloc(n);
    assert_non_null(tok);
    sodium_bin2base64(tok, n, (const unsigned char *)raw, strlen(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return tok;
}

static json_t *page_params(const char *max_results, const char *token)
{
    json_t *p = json_object();
    if (max_results)
        json_object_set_new(p, "MaxResults", json_string(max_results));
    if (token)
        json_object_set_new(p, "NextToken", json_string(token));
    return p;
}

static void test_page_no_max_results(void **state)
{
    (void)state;
    json_t *items = make_items(25), *before = json_deep_copy(items);
    json_t *params = page_params(NULL, NULL);
    json_t *page = (json_t *)1, *next = (json_t *)1;
    verr_t e;
    memset(&e, 0, sizeof e);
    assert_int_equal(describe_page(items, params, "id", 5, 1000, &page, &next, &e), 0);
    assert_non_null(page);
    assert_ptr_not_equal(page, items);
    assert_null(next);
    assert_true(json_equal(page, items));
    assert_true(json_equal(items, before));
    json_decref(page);
    json_decref(params);

    /* NULL params likewise */
    page = next = (json_t *)1;
    assert_int_equal(describe_page(items, NULL, "id", 5, 1000, &page, &next, &e), 0);
    assert_int_equal(json_array_size(page), 25);
    assert_null(next);
    json_decref(page);

    /* an empty list */
    json_t *none = json_array();
    page = next = (json_t *)1;
    assert_int_equal(describe_page(none, NULL, "id", 5, 1000, &page, &next, &e), 0);
    assert_non_null(page);
    assert_int_equal(json_array_size(page), 0);
    assert_null(next);
    json_decref(page);
    json_decref(none);
    json_decref(before);
    json_decref(items);
}

static void expect_max_results_error(const char *mr)
{
    json_t *items = make_items(25);
    json_t *params = page_params(mr, NULL);
    json_t *page = (json_t *)1, *next = (json_t *)1;
    verr_t e;
    memset(&e, 0, sizeof e);
    int rc = describe_page(items, params, "id", 5, 1000, &page, &next, &e);
    if (rc != -1)
        fail_msg("MaxResults '%s' accepted", mr);
    assert_null(page);
    assert_null(next);
    assert_string_equal(e.code, "InvalidParameterValue");
    assert_int_equal(e.http_status, 400);
    json_decref(params);
    json_decref(items);
}

static size_t page_size_for(const char *mr, int nitems, int *has_next)
{
    json_t *items = make_items(nitems);
    json_t *params = page_params(mr, NULL);
    json_t *page = NULL, *next = NULL;
    verr_t e;
    memset(&e, 0, sizeof e);
    if (describe_page(items, params, "id", 5, 1000, &page, &next, &e) != 0)
        fail_msg("MaxResults '%s' refused: %s %s", mr, e.code, e.message);
    size_t n = json_array_size(page);
    *has_next = next != NULL;
    json_decref(page);
    json_decref(next);
    json_decref(params);
    json_decref(items);
    return n;
}

static void test_page_max_results_bounds(void **state)
{
    (void)state;
    int has_next;
    assert_int_equal(page_size_for("5", 25, &has_next), 5);
    assert_true(has_next);
    assert_int_equal(page_size_for("24", 25, &has_next), 24);
    assert_true(has_next);
    assert_int_equal(page_size_for("25", 25, &has_next), 25);
    assert_false(has_next);
    assert_int_equal(page_size_for("1000", 25, &has_next), 25);
    assert_false(has_next);

    expect_max_results_error("4");
    expect_max_results_error("0");
    expect_max_results_error("-1");
    expect_max_results_error("1001");
    expect_max_results_error("99999999999999999999999");
    expect_max_results_error("");
    expect_max_results_error("abc");
    expect_max_results_error("10x");
    expect_max_results_error("10.5");
}

static void test_page_through_25(void **state)
{
    (void)state;
    json_t *items = make_items(25), *before = json_deep_copy(items);
    int seen[25] = {0};
    size_t sizes[8];
    int pages = 0, last = -1;
    char *token = NULL;
    verr_t e;
    memset(&e, 0, sizeof e);
    for (;;) {
        assert_true(pages < 8);
        json_t *params = page_params("10", token);
        json_t *page = NULL, *next = NULL;
        if (describe_page(items, params, "id", 5, 1000, &page, &next, &e) != 0)
            fail_msg("page %d: %s %s", pages, e.code, e.message);
        sizes[pages++] = json_array_size(page);
        size_t i;
        json_t *it;
        json_array_foreach(page, i, it) {
            int n = (int)json_integer_value(json_object_get(it, "n"));
            assert_in_range(n, 0, 24);
            assert_int_equal(seen[n], 0);
            seen[n] = 1;
            assert_true(n > last);   /* ascending, continuing where the last page ended */
            last = n;
        }
        free(token);
        token = NULL;
        if (next) {
            assert_true(json_is_string(next));
            const char *t = json_string_value(next);
            assert_true(strlen(t) > 0);
            /* an opaque token, not the bare id of the last item */
            assert_null(strstr(t, "id-"));
            token = strdup(t);
            assert_non_null(token);
        }
        json_decref(next);
        json_decref(page);
        json_decref(params);
        if (!token)
            break;
    }
    assert_int_equal(pages, 3);
    assert_int_equal(sizes[0], 10);
    assert_int_equal(sizes[1], 10);
    assert_int_equal(sizes[2], 5);
    for (int i = 0; i < 25; i++)
        assert_int_equal(seen[i], 1);
    assert_true(json_equal(items, before));
    json_decref(before);
    json_decref(items);
}

/* When the items divide evenly there is no empty trailing page and no token on the last. */
static void test_page_exact_multiple(void **state)
{
    (void)state;
    json_t *items = make_items(20);
    verr_t e;
    memset(&e, 0, sizeof e);
    json_t *params = page_params("10", NULL), *page = NULL, *next = NULL;
    assert_int_equal(describe_page(items, params, "id", 5, 1000, &page, &next, &e), 0);
    assert_int_equal(json_array_size(page), 10);
    assert_non_null(next);
    assert_string_equal(json_string_value(json_object_get(json_array_get(page, 9), "id")), "id-09");
    json_t *params2 = page_params("10", json_string_value(next));
    json_t *page2 = NULL, *next2 = (json_t *)1;
    assert_int_equal(describe_page(items, params2, "id", 5, 1000, &page2, &next2, &e), 0);
    assert_int_equal(json_array_size(page2), 10);
    assert_string_equal(json_string_value(json_object_get(json_array_get(page2, 0), "id")), "id-10");
    assert_string_equal(json_string_value(json_object_get(json_array_get(page2, 9), "id")), "id-19");
    assert_null(next2);
    json_decref(page2);
    json_decref(params2);
    json_decref(next);
    json_decref(page);
    json_decref(params);
    json_decref(items);
}

/* A token may be used without MaxResults (the rest), or with a different page size. */
static void test_page_token_reuse(void **state)
{
    (void)state;
    json_t *items = make_items(25);
    verr_t e;
    memset(&e, 0, sizeof e);
    json_t *params = page_params("7", NULL), *page = NULL, *next = NULL;
    assert_int_equal(describe_page(items, params, "id", 5, 1000, &page, &next, &e), 0);
    assert_int_equal(json_array_size(page), 7);
    assert_non_null(next);

    json_t *p2 = page_params(NULL, json_string_value(next)), *pg2 = NULL, *nx2 = (json_t *)1;
    assert_int_equal(describe_page(items, p2, "id", 5, 1000, &pg2, &nx2, &e), 0);
    assert_int_equal(json_array_size(pg2), 18);
    assert_string_equal(json_string_value(json_object_get(json_array_get(pg2, 0), "id")), "id-07");
    assert_null(nx2);

    json_t *p3 = page_params("5", json_string_value(next)), *pg3 = NULL, *nx3 = NULL;
    assert_int_equal(describe_page(items, p3, "id", 5, 1000, &pg3, &nx3, &e), 0);
    assert_int_equal(json_array_size(pg3), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(pg3, 0), "id")), "id-07");
    assert_string_equal(json_string_value(json_object_get(json_array_get(pg3, 4), "id")), "id-11");
    assert_non_null(nx3);

    /* an empty NextToken is the first page */
    json_t *p4 = page_params("5", ""), *pg4 = NULL, *nx4 = NULL;
    assert_int_equal(describe_page(items, p4, "id", 5, 1000, &pg4, &nx4, &e), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(pg4, 0), "id")), "id-00");

    json_decref(nx4);
    json_decref(pg4);
    json_decref(p4);
    json_decref(nx3);
    json_decref(pg3);
    json_decref(p3);
    json_decref(pg2);
    json_decref(p2);
    json_decref(next);
    json_decref(page);
    json_decref(params);
    json_decref(items);
}

static void expect_bad_token(const char *tok)
{
    json_t *items = make_items(25);
    json_t *params = page_params("10", tok);
    json_t *page = (json_t *)1, *next = (json_t *)1;
    verr_t e;
    memset(&e, 0, sizeof e);
    int rc = describe_page(items, params, "id", 5, 1000, &page, &next, &e);
    if (rc != -1) {
        json_decref(page);
        json_decref(next);
        fail_msg("token '%s' accepted", tok);
    }
    assert_null(page);
    assert_null(next);
    assert_string_equal(e.code, "InvalidPaginationToken");
    assert_int_equal(e.http_status, 400);
    json_decref(params);
    json_decref(items);
}

static void test_page_bad_tokens(void **state)
{
    (void)state;
    expect_bad_token("garbage!!");
    expect_bad_token("id-03");                 /* a bare id is not a token */
    expect_bad_token("djE6aWQtMDM=");          /* "v1:id-03" with padding (standard alphabet) */
    expect_bad_token("djE6aWQtMDM.");
    expect_bad_token("djE6aWQtMDM djE6");
    char *t;
    t = forge("v2:id-03");                     /* wrong version */
    expect_bad_token(t);
    free(t);
    t = forge("id-03");                        /* no prefix */
    expect_bad_token(t);
    free(t);
    t = forge("v1:");                          /* no id */
    expect_bad_token(t);
    free(t);
    t = forge("V1:id-03");
    expect_bad_token(t);
    free(t);

    /* an overlong token (and one encoding an id too long for any of ours) */
    char big[1200];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    expect_bad_token(big);
    char raw[400] = "v1:";
    memset(raw + 3, 'x', 300);
    raw[303] = '\0';
    t = forge(raw);
    expect_bad_token(t);
    free(t);
}

static void test_page_token_past_end(void **state)
{
    (void)state;
    json_t *items = make_items(25);
    char *t = forge("v1:id-99");
    json_t *params = page_params("10", t);
    json_t *page = NULL, *next = (json_t *)1;
    verr_t e;
    memset(&e, 0, sizeof e);
    assert_int_equal(describe_page(items, params, "id", 5, 1000, &page, &next, &e), 0);
    assert_non_null(page);
    assert_int_equal(json_array_size(page), 0);
    assert_null(next);
    json_decref(page);
    json_decref(params);
    free(t);

    /* the token of the very last id: also empty */
    t = forge("v1:id-24");
    params = page_params(NULL, t);
    page = NULL;
    next = (json_t *)1;
    assert_int_equal(describe_page(items, params, "id", 5, 1000, &page, &next, &e), 0);
    assert_int_equal(json_array_size(page), 0);
    assert_null(next);
    json_decref(page);
    json_decref(params);
    free(t);

    /* a token between ids continues at the next larger one */
    t = forge("v1:id-12x");
    params = page_params("5", t);
    page = NULL;
    next = NULL;
    assert_int_equal(describe_page(items, params, "id", 5, 1000, &page, &next, &e), 0);
    assert_int_equal(json_array_size(page), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(page, 0), "id")), "id-13");
    assert_non_null(next);
    json_decref(next);
    json_decref(page);
    json_decref(params);
    free(t);
    json_decref(items);
}

/* ---- describe_tag_spec ---------------------------------------------------------- */

static void expect_tags(const char *params_json, const char *want_json)
{
    json_t *params = params_json ? parse(params_json) : NULL;
    json_t *want = parse(want_json);
    verr_t e;
    memset(&e, 0, sizeof e);
    json_t *got = describe_tag_spec(params, "key-pair", &e);
    if (!got)
        fail_msg("describe_tag_spec(%s) failed: %s %s", params_json ? params_json : "NULL", e.code, e.message);
    if (!json_equal(got, want)) {
        char *s = json_dumps(got, JSON_COMPACT);
        fail_msg("describe_tag_spec(%s) = %s, want %s", params_json ? params_json : "NULL", s, want_json);
    }
    json_decref(got);
    json_decref(want);
    json_decref(params);
}

static void expect_tags_error_j(json_t *params, const char *code, const char *needle)
{
    verr_t e;
    memset(&e, 0, sizeof e);
    json_t *got = describe_tag_spec(params, "key-pair", &e);
    if (got) {
        char *s = json_dumps(got, JSON_COMPACT);
        json_decref(got);
        fail_msg("expected %s, got %s", code, s);
    }
    assert_string_equal(e.code, code);
    assert_int_equal(e.http_status, 400);
    if (needle && !strstr(e.message, needle))
        fail_msg("message '%s' does not name '%s'", e.message, needle);
}

static void expect_tags_error(const char *params_json, const char *code, const char *needle)
{
    json_t *params = parse(params_json);
    expect_tags_error_j(params, code, needle);
    json_decref(params);
}

/* {"TagSpecification":[{"ResourceType":"key-pair","Tag":[{"Key":k,"Value":v}]}]} */
static json_t *one_tag(const char *k, const char *v)
{
    json_t *tag = json_object();
    if (k)
        json_object_set_new(tag, "Key", json_string(k));
    if (v)
        json_object_set_new(tag, "Value", json_string(v));
    return json_pack("{s:[{s:s, s:[o]}]}", "TagSpecification", "ResourceType", "key-pair", "Tag", tag);
}

static void test_tags_basic(void **state)
{
    (void)state;
    expect_tags("{\"TagSpecification\":[{\"ResourceType\":\"key-pair\",\"Tag\":[{\"Key\":\"a\",\"Value\":\"b\"}]}]}",
                "[{\"key\":\"a\",\"value\":\"b\"}]");
    expect_tags("{\"TagSpecification\":[{\"ResourceType\":\"key-pair\",\"Tag\":["
                "{\"Key\":\"env\",\"Value\":\"prod\"},{\"Key\":\"team\",\"Value\":\"blue\"},"
                "{\"Key\":\"Name\",\"Value\":\"my key\"}]}]}",
                "[{\"key\":\"env\",\"value\":\"prod\"},{\"key\":\"team\",\"value\":\"blue\"},"
                "{\"key\":\"Name\",\"value\":\"my key\"}]");
    /* a missing Value is the empty string (EC2 allows empty values) */
    expect_tags("{\"TagSpecification\":[{\"ResourceType\":\"key-pair\",\"Tag\":[{\"Key\":\"k\"}]}]}",
                "[{\"key\":\"k\",\"value\":\"\"}]");
    expect_tags("{\"TagSpecification\":[{\"ResourceType\":\"key-pair\",\"Tag\":[{\"Key\":\"k\",\"Value\":\"\"}]}]}",
                "[{\"key\":\"k\",\"value\":\"\"}]");
    /* "aws:" only matters as a prefix of the key */
    expect_tags("{\"TagSpecification\":[{\"ResourceType\":\"key-pair\",\"Tag\":[{\"Key\":\"x-aws:y\",\"Value\":\"aws:z\"}]}]}",
                "[{\"key\":\"x-aws:y\",\"value\":\"aws:z\"}]");
}

static void test_tags_none(void **state)
{
    (void)state;
    expect_tags("{}", "[]");
    expect_tags(NULL, "[]");
    expect_tags("{\"KeyName\":\"k\"}", "[]");
    expect_tags("{\"TagSpecification\":[]}", "[]");
}

static void test_tags_wrong_resource_type(void **state)
{
    (void)state;
    expect_tags_error("{\"TagSpecification\":[{\"ResourceType\":\"instance\",\"Tag\":[{\"Key\":\"a\",\"Value\":\"b\"}]}]}",
                      "InvalidParameterValue", "instance");
    expect_tags_error("{\"TagSpecification\":[{\"Tag\":[{\"Key\":\"a\",\"Value\":\"b\"}]}]}",
                      "InvalidParameterValue", NULL);
    expect_tags_error("{\"TagSpecification\":[{\"ResourceType\":\"key-pair\",\"Tag\":[{\"Key\":\"a\"}]},"
                      "{\"ResourceType\":\"Key-Pair\",\"Tag\":[{\"Key\":\"b\"}]}]}",
                      "InvalidParameterValue", "Key-Pair");
}

static void test_tags_key_value_limits(void **state)
{
    (void)state;
    char k128[129], k129[130], v256[257], v257[258];
    memset(k128, 'k', 128);
    k128[128] = '\0';
    memset(k129, 'k', 129);
    k129[129] = '\0';
    memset(v256, 'v', 256);
    v256[256] = '\0';
    memset(v257, 'v', 257);
    v257[257] = '\0';

    json_t *p = one_tag(k128, v256);
    verr_t e;
    memset(&e, 0, sizeof e);
    json_t *got = describe_tag_spec(p, "key-pair", &e);
    assert_non_null(got);
    assert_int_equal(json_array_size(got), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(got, 0), "key")), k128);
    assert_string_equal(json_string_value(json_object_get(json_array_get(got, 0), "value")), v256);
    json_decref(got);
    json_decref(p);

    static const struct { const char *k, *v; } bad[] = {
        {"aws:x", "b"}, {"aws:", "b"}, {"", "b"}, {NULL, "b"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p = one_tag(bad[i].k, bad[i].v);
        expect_tags_error_j(p, "InvalidParameterValue", NULL);
        json_decref(p);
    }
    p = one_tag(k129, "b");
    expect_tags_error_j(p, "InvalidParameterValue", NULL);
    json_decref(p);
    p = one_tag("a", v257);
    expect_tags_error_j(p, "InvalidParameterValue", NULL);
    json_decref(p);

    /* one bad tag among good ones fails the whole list */
    expect_tags_error("{\"TagSpecification\":[{\"ResourceType\":\"key-pair\",\"Tag\":["
                      "{\"Key\":\"ok\",\"Value\":\"1\"},{\"Key\":\"aws:cloudformation:x\",\"Value\":\"2\"}]}]}",
                      "InvalidParameterValue", NULL);
}

static json_t *n_tags(int n, int specs)
{
    json_t *arr = json_array();
    for (int s = 0; s < specs; s++) {
        json_t *tags = json_array();
        for (int i = s; i < n; i += specs) {
            char k[16], v[16];
            snprintf(k, sizeof k, "k%d", i);
            snprintf(v, sizeof v, "v%d", i);
            json_array_append_new(tags, json_pack("{s:s, s:s}", "Key", k, "Value", v));
        }
        json_array_append_new(arr, json_pack("{s:s, s:o}", "ResourceType", "key-pair", "Tag", tags));
    }
    return json_pack("{s:o}", "TagSpecification", arr);
}

static void test_tags_limit(void **state)
{
    (void)state;
    verr_t e;
    memset(&e, 0, sizeof e);
    json_t *p = n_tags(50, 1);
    json_t *got = describe_tag_spec(p, "key-pair", &e);
    assert_non_null(got);
    assert_int_equal(json_array_size(got), 50);
    assert_string_equal(json_string_value(json_object_get(json_array_get(got, 49), "key")), "k49");
    assert_string_equal(json_string_value(json_object_get(json_array_get(got, 49), "value")), "v49");
    json_decref(got);
    json_decref(p);

    p = n_tags(51, 1);
    expect_tags_error_j(p, "TagLimitExceeded", NULL);
    json_decref(p);

    /* the limit counts every specification's tags together */
    p = n_tags(51, 2);
    expect_tags_error_j(p, "TagLimitExceeded", NULL);
    json_decref(p);

    p = n_tags(200, 1);
    expect_tags_error_j(p, "TagLimitExceeded", NULL);
    json_decref(p);
}

/* ---- describe_time -------------------------------------------------------------- */

static void test_time(void **state)
{
    (void)state;
    static const struct { long long t; const char *want; } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1, "1970-01-01T00:00:01.000Z"},
        {-1, "1969-12-31T23:59:59.000Z"},
        {951782400, "2000-02-29T00:00:00.000Z"},
        {1234567890, "2009-02-13T23:31:30.000Z"},
        {1700000000, "2023-11-14T22:13:20.000Z"},
        {4102444800LL, "2100-01-01T00:00:00.000Z"},
        {253402300799LL, "9999-12-31T23:59:59.000Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[32];
        memset(out, 'Z', sizeof out);
        describe_time(cases[i].t, out);
        assert_string_equal(out, cases[i].want);
    }
}

/* A page that would not fit a bus message is cut by bytes: the first items kept, a token
 * that continues right after the last one kept, and nothing cut when it fits. */
static void test_page_bytes(void **state)
{
    (void)state;
    json_t *page = json_array();
    char id[16], pad[1001];
    memset(pad, 'x', 1000);
    pad[1000] = 0;
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "i-%02d", i);
        json_array_append_new(page, json_pack("{s:s, s:s}", "id", id, "pad", pad));
    }
    json_t *next = NULL;
    assert_int_equal(describe_page_bytes(page, "id", 100000, &next), 0);
    assert_null(next);
    assert_int_equal(json_array_size(page), 10);
    assert_int_equal(describe_page_bytes(page, "id", 3500, &next), 1);   /* 3 items of ~1 KiB */
    assert_int_equal(json_array_size(page), 3);
    char after[32];
    assert_int_equal(describe_token_id(json_string_value(next), after, sizeof after), 0);
    assert_string_equal(after, "i-02");
    json_decref(next);
    next = NULL;
    assert_int_equal(describe_page_bytes(page, "id", 10, &next), 1);   /* never less than one */
    assert_int_equal(json_array_size(page), 1);
    json_decref(next);
    json_decref(page);
}

/* describe_page_params: describe_page's checks for a handler that pages in SQL, and
 * describe_token's NextToken continues after its id in describe_page too. */
static void test_page_params(void **state)
{
    (void)state;
    verr_t e;
    memset(&e, 0, sizeof e);
    long max = 0;
    char after[64] = "junk";
    json_t *p = page_params(NULL, NULL);
    assert_int_equal(describe_page_params(p, 5, 1000, &max, after, sizeof after, &e), 0);
    assert_int_equal(max, -1);
    assert_string_equal(after, "");
    json_decref(p);
    p = page_params("4", NULL);
    assert_int_equal(describe_page_params(p, 5, 1000, &max, after, sizeof after, &e), -1);
    assert_string_equal(e.code, "InvalidParameterValue");
    json_decref(p);
    p = page_params("5", "not-a-token");
    memset(&e, 0, sizeof e);
    assert_int_equal(describe_page_params(p, 5, 1000, &max, after, sizeof after, &e), -1);
    assert_string_equal(e.code, "InvalidPaginationToken");
    json_decref(p);
    char *tok = describe_token("id-11");
    p = page_params("1000", tok);
    assert_int_equal(describe_page_params(p, 5, 1000, &max, after, sizeof after, &e), 0);
    assert_int_equal(max, 1000);
    assert_string_equal(after, "id-11");
    json_t *items = make_items(25), *page = NULL, *next = NULL;
    assert_int_equal(describe_page(items, p, "id", 5, 1000, &page, &next, &e), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(page, 0), "id")), "id-12");
    free(tok);
    json_decref(p);
    json_decref(page);
    json_decref(next);
    json_decref(items);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_null_keeps_all),
        cmocka_unit_test(test_filter_result_is_new_array),
        cmocka_unit_test(test_filter_exact_value),
        cmocka_unit_test(test_filter_values_or),
        cmocka_unit_test(test_filter_filters_and),
        cmocka_unit_test(test_filter_wildcards),
        cmocka_unit_test(test_filter_nested_path),
        cmocka_unit_test(test_filter_integer_values),
        cmocka_unit_test(test_filter_boolean_values),
        cmocka_unit_test(test_filter_array_values),
        cmocka_unit_test(test_filter_path_through_array),
        cmocka_unit_test(test_filter_tags),
        cmocka_unit_test(test_filter_unknown_name),
        cmocka_unit_test(test_filter_missing_value_or_name),
        cmocka_unit_test(test_page_no_max_results),
        cmocka_unit_test(test_page_max_results_bounds),
        cmocka_unit_test(test_page_through_25),
        cmocka_unit_test(test_page_exact_multiple),
        cmocka_unit_test(test_page_token_reuse),
        cmocka_unit_test(test_page_params),
        cmocka_unit_test(test_page_bad_tokens),
        cmocka_unit_test(test_page_token_past_end),
        cmocka_unit_test(test_page_bytes),
        cmocka_unit_test(test_tags_basic),
        cmocka_unit_test(test_tags_none),
        cmocka_unit_test(test_tags_wrong_resource_type),
        cmocka_unit_test(test_tags_key_value_limits),
        cmocka_unit_test(test_tags_limit),
        cmocka_unit_test(test_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
