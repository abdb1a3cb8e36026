/* test_query.c - unit tests for common/query.c: form decoding ('+', %XX in either case,
 * refused bad escapes, NUL and invalid UTF-8), the documented limits (1000 parameters,
 * name and value sizes), repeated names, appending a body to a query string, and the
 * dotted-name structuring (index rules, gaps closed up in index order, scalar/structure
 * and list/structure conflicts, empty components, depth, skip list), checked on the
 * header's examples and on real awscli-shaped EC2 and IAM requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "query.h"

static const char *const SKIP[] = {"Action", "Version", NULL};

/* Parse text (must succeed) and structure it (must succeed). */
static json_t *to_json(const char *text)
{
    query_t q;
    verr_t e = {0};
    if (query_parse(text, strlen(text), &q, &e) != 0)
        fail_msg("query_parse(%s): %s: %s", text, e.code, e.message);
    json_t *j = query_to_json(&q, SKIP, &e);
    if (!j)
        fail_msg("query_to_json(%s): %s: %s", text, e.code, e.message);
    query_free(&q);
    return j;
}

/* Assert that text structures to the JSON written in expect. */
static void assert_structured(const char *text, const char *expect)
{
    json_t *want = json_loads(expect, 0, NULL);
    assert_non_null(want);
    json_t *got = to_json(text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("%s: got %s, want %s", text, g, expect);
    }
    json_decref(got);
    json_decref(want);
}

/* Parse must fail with InvalidParameterValue 400, leave q empty and mention needle. */
static void assert_parse_fails(const char *text, size_t len, const char *needle)
{
    query_t q = {0};
    verr_t e = {0};
    assert_int_equal(query_parse(text, len, &q, &e), -1);
    assert_string_equal(e.code, "InvalidParameterValue");
    assert_int_equal(e.http_status, 400);
    if (needle && !strstr(e.message, needle))
        fail_msg("message '%s' lacks '%s'", e.message, needle);
    assert_int_equal(q.n, 0);
    assert_null(q.p);
}

/* Parse must succeed but structuring must fail, naming needle in the message. */
static void assert_structure_fails(const char *text, const char *needle)
{
    query_t q;
    verr_t e = {0};
    assert_int_equal(query_parse(text, strlen(text), &q, &e), 0);
    json_t *j = query_to_json(&q, SKIP, &e);
    if (j) {
        char *s = json_dumps(j, JSON_COMPACT);
        fail_msg("%s: expected an error, got %s", text, s);
    }
    assert_string_equal(e.code, "InvalidParameterValue");
    assert_int_equal(e.http_status, 400);
    if (needle && !strstr(e.message, needle))
        fail_msg("message '%s' lacks '%s'", e.message, needle);
    query_free(&q);
}

static void test_header_examples(void **state)
{
    (void)state;
    assert_structured("Action=DescribeKeyPairs&Version=2016-11-15&KeyName.1=a&KeyName.2=b",
                      "{\"KeyName\": [\"a\", \"b\"]}");
    assert_structured("Filter.1.Name=x&Filter.1.Value.1=y",
                      "{\"Filter\": [{\"Name\": \"x\", \"Value\": [\"y\"]}]}");
    assert_structured("Attribute.Name=a", "{\"Attribute\": {\"Name\": \"a\"}}");
}

static void test_parse_basic(void **state)
{
    (void)state;
    const char *t = "Action=RunInstances&&MinCount=1&Flag&=orphan&Empty=";
    query_t q;
    verr_t e = {0};
    assert_int_equal(query_parse(t, strlen(t), &q, &e), 0);
    assert_int_equal(q.n, 4);   /* Action, MinCount, Flag, Empty */
    assert_string_equal(query_get(&q, "Action"), "RunInstances");
    assert_string_equal(query_get(&q, "MinCount"), "1");
    assert_string_equal(query_get(&q, "Flag"), "");
    assert_string_equal(query_get(&q, "Empty"), "");
    assert_null(query_get(&q, "orphan"));
    assert_null(query_get(&q, ""));
    assert_null(query_get(&q, "action"));   /* names are case-sensitive */
    query_free(&q);
    assert_int_equal(q.n, 0);
    assert_null(q.p);
    query_free(&q);   /* twice is harmless */
}

/* A name given twice is refused, in one source or across the query and the body:
 * which value the client meant is not ours to guess. */
static void test_parse_duplicate_refused(void **state)
{
    (void)state;
    query_t q;
    verr_t e = {0};
    const char *t = "Action=A&Action=B";
    assert_int_equal(query_parse(t, strlen(t), &q, &e), -1);
    assert_string_equal(e.code, "InvalidParameterCombination");
    assert_int_equal(q.n, 0);
    verr_t e2 = {0};
    assert_int_equal(query_parse("Action=A", 8, &q, &e2), 0);
    assert_int_equal(query_parse_append("Version=1&Action=B", 18, &q, &e2), -1);
    assert_string_equal(e2.code, "InvalidParameterCombination");
    assert_int_equal(q.n, 0);
}

/* A dotted component is a list index or a name: "KeyName.-1" is neither. */
static void test_bad_components(void **state)
{
    (void)state;
    const char *bad[] = {"KeyName.-1=x", "KeyName.1e3=x", "Filter.1.Na%20me=x", "Filter.1._x=x", NULL};
    for (int i = 0; bad[i]; i++) {
        query_t q;
        verr_t e = {0};
        assert_int_equal(query_parse(bad[i], strlen(bad[i]), &q, &e), 0);
        assert_null(query_to_json(&q, SKIP, &e));
        assert_string_equal(e.code, "InvalidParameterValue");
        query_free(&q);
    }
}

static void test_parse_empty(void **state)
{
    (void)state;
    query_t q;
    verr_t e = {0};
    assert_int_equal(query_parse("", 0, &q, &e), 0);
    assert_int_equal(q.n, 0);
    assert_int_equal(query_parse(NULL, 5, &q, &e), 0);
    assert_int_equal(q.n, 0);
    assert_int_equal(query_parse("&&&", 3, &q, &e), 0);
    assert_int_equal(q.n, 0);
    json_t *j = query_to_json(&q, SKIP, &e);
    assert_true(json_is_object(j) && json_object_size(j) == 0);
    json_decref(j);
    query_free(&q);
    /* len bounds the text: the part after it is not read */
    assert_int_equal(query_parse("A=1&B=2", 3, &q, &e), 0);
    assert_int_equal(q.n, 1);
    assert_null(query_get(&q, "B"));
    query_free(&q);
}

static void test_percent_and_plus(void **state)
{
    (void)state;
    const char *t = "a%62c=%41%2f%2F&sp=a+b%20c&plus=1%2B1&utf=%C3%a9t%C3%A9&emoji=%F0%9F%98%80"
                    "&raw=caf\xc3\xa9";
    query_t q;
    verr_t e = {0};
    assert_int_equal(query_parse(t, strlen(t), &q, &e), 0);
    assert_string_equal(query_get(&q, "abc"), "A//");
    assert_string_equal(query_get(&q, "sp"), "a b c");
    assert_string_equal(query_get(&q, "plus"), "1+1");
    assert_string_equal(query_get(&q, "utf"), "\xc3\xa9t\xc3\xa9");
    assert_string_equal(query_get(&q, "emoji"), "\xf0\x9f\x98\x80");
    assert_string_equal(query_get(&q, "raw"), "caf\xc3\xa9");
    query_free(&q);

    /* '+' in a name is a space too, and '=' after the first is part of the value */
    t = "a+b=x=y%3D";
    assert_int_equal(query_parse(t, strlen(t), &q, &e), 0);
    assert_string_equal(query_get(&q, "a b"), "x=y=");
    query_free(&q);
}

static void test_bad_percent(void **state)
{
    (void)state;
    static const char *bad[] = {"A=%", "A=%4", "A=%zz", "A=%G1", "A=%1G", "A=x%", "A%=1",
                                "%=1", "A=%%41", "A=% 1", "A=1&B=ok%2"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        assert_parse_fails(bad[i], strlen(bad[i]), "percent-encoding");
    /* the message names the parameter whose value is broken */
    assert_parse_fails("Good=1&KeyName=%zz", 18, "KeyName");
    /* NUL, raw or encoded, cannot live in a C string service */
    assert_parse_fails("A=%00", 5, "NUL");
    assert_parse_fails("A=x\0y", 5, "NUL");
    assert_parse_fails("A%00B=1", 7, "NUL");
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    static const char *bad[] = {
        "A=%FF",             /* never valid */
        "A=%C3",             /* truncated 2-byte */
        "A=%E2%82",          /* truncated 3-byte */
        "A=%C0%AF",          /* overlong '/' */
        "A=%E0%80%AF",       /* overlong 3-byte */
        "A=%ED%A0%80",       /* UTF-16 surrogate */
        "A=%F4%90%80%80",    /* above U+10FFFF */
        "A=%80",             /* lone continuation */
        "A=\xff",            /* raw, not encoded */
        "%FF=1",             /* in a name */
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        assert_parse_fails(bad[i], strlen(bad[i]), "UTF-8");
    /* the largest valid code point is fine */
    query_t q;
    verr_t e = {0};
    assert_int_equal(query_parse("A=%F4%8F%BF%BF", 14, &q, &e), 0);
    assert_string_equal(query_get(&q, "A"), "\xf4\x8f\xbf\xbf");
    query_free(&q);
}

/* Build "P1=v&P2=v&...&Pn=v". */
static char *many_params(size_t n)
{
    size_t cap = n * 16 + 1, o = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    s[0] = '\0';
    for (size_t i = 1; i <= n; i++)
        o += (size_t)snprintf(s + o, cap - o, "%sP%zu=v", i > 1 ? "&" : "", i);
    return s;
}

static void test_param_count_limit(void **state)
{
    (void)state;
    query_t q;
    verr_t e = {0};
    char *s = many_params(QUERY_MAX_PARAMS);
    assert_int_equal(query_parse(s, strlen(s), &q, &e), 0);
    assert_int_equal(q.n, QUERY_MAX_PARAMS);
    assert_string_equal(query_get(&q, "P1000"), "v");
    query_free(&q);
    free(s);

    s = many_params(QUERY_MAX_PARAMS + 1);
    assert_parse_fails(s, strlen(s), "Too many");
    free(s);

    /* one name repeated 2000 times is refused at its second use */
    size_t cap = 2000 * 4 + 1, o = 0;
    s = malloc(cap);
    for (int i = 0; i < 2000; i++)
        o += (size_t)snprintf(s + o, cap - o, "%sA=%d", i ? "&" : "", i % 10);
    assert_int_equal(query_parse(s, o, &q, &e), -1);
    assert_string_equal(e.code, "InvalidParameterCombination");
    assert_int_equal(q.n, 0);
    free(s);
}

static void test_size_limits(void **state)
{
    (void)state;
    query_t q;
    verr_t e = {0};
    size_t cap = QUERY_MAX_VALUE + QUERY_MAX_NAME + 16;
    char *s = malloc(cap);

    /* a name of exactly the limit passes, one byte more fails */
    memset(s, 'n', QUERY_MAX_NAME);
    memcpy(s + QUERY_MAX_NAME, "=1", 3);
    assert_int_equal(query_parse(s, strlen(s), &q, &e), 0);
    assert_int_equal(q.n, 1);
    query_free(&q);
    memset(s, 'n', QUERY_MAX_NAME + 1);
    memcpy(s + QUERY_MAX_NAME + 1, "=1", 3);
    assert_parse_fails(s, strlen(s), "too long");

    /* the limit is on the decoded size: %41 counts as one byte */
    memcpy(s, "V=", 2);
    memset(s + 2, 'v', QUERY_MAX_VALUE);
    s[2 + QUERY_MAX_VALUE] = '\0';
    assert_int_equal(query_parse(s, strlen(s), &q, &e), 0);
    assert_int_equal(strlen(query_get(&q, "V")), QUERY_MAX_VALUE);
    query_free(&q);
    memcpy(s + 2 + QUERY_MAX_VALUE - 1, "%41", 4);
    assert_int_equal(query_parse(s, strlen(s), &q, &e), 0);
    query_free(&q);
    memset(s + 2, 'v', QUERY_MAX_VALUE + 1);
    s[2 + QUERY_MAX_VALUE + 1] = '\0';
    assert_parse_fails(s, strlen(s), "too long");
    free(s);
}

static void test_append(void **state)
{
    (void)state;
    query_t q;
    verr_t e = {0};
    assert_int_equal(query_parse("Action=A&X=1", 12, &q, &e), 0);
    assert_int_equal(query_parse_append("W=2&Y=3", 7, &q, &e), 0);
    assert_int_equal(q.n, 4);
    assert_string_equal(query_get(&q, "Action"), "A");
    assert_string_equal(query_get(&q, "X"), "1");
    assert_string_equal(query_get(&q, "W"), "2");
    assert_string_equal(query_get(&q, "Y"), "3");
    /* a bad body fails the whole request: q is emptied */
    assert_int_equal(query_parse_append("Z=%", 3, &q, &e), -1);
    assert_int_equal(q.n, 0);
    assert_null(q.p);

    /* the count limit covers both sources together */
    char *s = many_params(QUERY_MAX_PARAMS);
    assert_int_equal(query_parse(s, strlen(s), &q, &e), 0);
    assert_int_equal(query_parse_append("Extra=1", 7, &q, &e), -1);
    assert_string_equal(e.code, "InvalidParameterValue");
    assert_int_equal(q.n, 0);
    free(s);
}

static void test_index_edges(void **state)
{
    (void)state;
    assert_structure_fails("KeyName.0=a", "KeyName.0");
    assert_structure_fails("KeyName.01=a", "leading zeros");
    assert_structure_fails("KeyName.00=a", "KeyName.00");
    assert_structure_fails("KeyName.1001=a", "above 1000");
    assert_structure_fails("KeyName.99999999999999999999999=a", "above 1000");
    assert_structure_fails("1=a", "index");
    assert_structure_fails("1.Name=a", NULL);
    assert_structured("KeyName.1000=a", "{\"KeyName\": [\"a\"]}");
    /* digits inside a name are fine; a component that starts with one and is not all
     * digits is neither a name nor an index */
    assert_structured("Ipv6.A1=x&A1=y", "{\"Ipv6\": {\"A1\": \"x\"}, \"A1\": \"y\"}");
    assert_structure_fails("Ipv6.1a=x", "Ipv6.1a");
}

static void test_conflicts(void **state)
{
    (void)state;
    assert_structure_fails("A=1&A.1=2", "A.1");
    assert_structure_fails("A.1=2&A=1", "A.1");   /* order in the request does not matter */
    assert_structure_fails("A=1&A.B=2", "A.B");
    assert_structure_fails("A.1=x&A.B=y", "A.B");
    assert_structure_fails("A.B=y&A.1=x", "A.B");
    assert_structure_fails("F.1.Name=x&F.1=y", "F.1.Name");
    assert_structure_fails("F.1.V.1=x&F.1.V.K=y", "F.1.V.K");
    /* same prefix, different leaves: no conflict */
    assert_structured("A.B=1&A.C=2&AB=3", "{\"A\": {\"B\": \"1\", \"C\": \"2\"}, \"AB\": \"3\"}");
}

static void test_empty_components_and_depth(void **state)
{
    (void)state;
    assert_structure_fails("A..B=1", "empty component");
    assert_structure_fails("A.=1", "empty component");
    assert_structure_fails(".A=1", "empty component");
    assert_structure_fails(".=1", "empty component");
    assert_structured("A.B.C.D.E.F.G.H=1",
                      "{\"A\":{\"B\":{\"C\":{\"D\":{\"E\":{\"F\":{\"G\":{\"H\":\"1\"}}}}}}}}");
    assert_structure_fails("A.B.C.D.E.F.G.H.I=1", "components");
    assert_structure_fails("A.1.1.1.1.1.1.1.1=1", "components");
}

static void test_gaps_and_order(void **state)
{
    (void)state;
    assert_structured("Filter.3.Name=c&Filter.1.Name=a",
                      "{\"Filter\": [{\"Name\": \"a\"}, {\"Name\": \"c\"}]}");
    /* numeric, not lexicographic: 10 after 9, 100 after 20 */
    assert_structured("I.10=j&I.9=i&I.100=k&I.20=x&I.2=b",
                      "{\"I\": [\"b\", \"i\", \"j\", \"x\", \"k\"]}");
    /* nested lists close their gaps independently */
    assert_structured("F.5.V.7=b&F.5.V.2=a&F.2.V.9=z&F.5.Name=n",
                      "{\"F\": [{\"V\": [\"z\"]}, {\"Name\": \"n\", \"V\": [\"a\", \"b\"]}]}");
}

static void test_skip(void **state)
{
    (void)state;
    assert_structured("Action=X&Version=1&ActionX=2&Version.1=3",
                      "{\"ActionX\": \"2\", \"Version\": [\"3\"]}");
    /* a skipped name does not conflict with anything */
    assert_structured("Action=X&Action.1=y", "{\"Action\": [\"y\"]}");

    const char *const auth_skip[] = {"Action", "X-Amz-Signature", NULL};
    query_t q;
    verr_t e = {0};
    const char *t = "Action=A&X-Amz-Signature=abc&X-Amz-Date=d";
    assert_int_equal(query_parse(t, strlen(t), &q, &e), 0);
    json_t *j = query_to_json(&q, auth_skip, &e);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(j, "X-Amz-Date")), "d");
    json_decref(j);
    /* no skip list: everything is kept */
    j = query_to_json(&q, NULL, &e);
    assert_int_equal(json_object_size(j), 3);
    json_decref(j);
    query_free(&q);
}

/* What `aws ec2 describe-instances --filters ... --instance-ids ...` sends. */
static void test_ec2_describe_instances(void **state)
{
    (void)state;
    assert_structured(
        "Action=DescribeInstances&Version=2016-11-15"
        "&Filter.1.Name=instance-state-name&Filter.1.Value.1=running&Filter.1.Value.2=pending"
        "&Filter.2.Name=tag%3AName&Filter.2.Value.1=web-%2A"
        "&Filter.3.Name=tag-key&Filter.3.Value.1=Team+Blue"
        "&InstanceId.1=i-0123456789abcdef0&InstanceId.2=i-0fedcba9876543210"
        "&MaxResults=50&NextToken=abc%2Fdef%3D%3D",
        "{\"Filter\": ["
        "  {\"Name\": \"instance-state-name\", \"Value\": [\"running\", \"pending\"]},"
        "  {\"Name\": \"tag:Name\", \"Value\": [\"web-*\"]},"
        "  {\"Name\": \"tag-key\", \"Value\": [\"Team Blue\"]}],"
        " \"InstanceId\": [\"i-0123456789abcdef0\", \"i-0fedcba9876543210\"],"
        " \"MaxResults\": \"50\", \"NextToken\": \"abc/def==\"}");
    /* RunInstances with a block device mapping: lists of structures of structures */
    assert_structured(
        "Action=RunInstances&ImageId=ami-1&MinCount=1&MaxCount=1"
        "&BlockDeviceMapping.1.DeviceName=%2Fdev%2Fsda1&BlockDeviceMapping.1.Ebs.VolumeSize=20"
        "&BlockDeviceMapping.1.Ebs.DeleteOnTermination=true"
        "&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=Name"
        "&TagSpecification.1.Tag.1.Value=web",
        "{\"ImageId\": \"ami-1\", \"MinCount\": \"1\", \"MaxCount\": \"1\","
        " \"BlockDeviceMapping\": [{\"DeviceName\": \"/dev/sda1\","
        "   \"Ebs\": {\"VolumeSize\": \"20\", \"DeleteOnTermination\": \"true\"}}],"
        " \"TagSpecification\": [{\"ResourceType\": \"instance\","
        "   \"Tag\": [{\"Key\": \"Name\", \"Value\": \"web\"}]}]}");
}

/* What `aws iam put-user-policy --policy-document file://p.json` sends (botocore
 * percent-encodes everything but unreserved characters). */
static void test_iam_put_user_policy(void **state)
{
    (void)state;
    const char *t =
        "Action=PutUserPolicy&Version=2010-05-08&UserName=alice&PolicyName=ec2-read"
        "&PolicyDocument=%7B%0A++%22Version%22%3A+%222012-10-17%22%2C%0A++%22Statement%22"
        "%3A+%5B%7B%22Effect%22%3A+%22Allow%22%2C+%22Action%22%3A+%22ec2%3ADescribe%2A%22"
        "%2C+%22Resource%22%3A+%22%2A%22%7D%5D%0A%7D%0A";
    json_t *j = to_json(t);
    assert_string_equal(json_string_value(json_object_get(j, "UserName")), "alice");
    const char *doc = json_string_value(json_object_get(j, "PolicyDocument"));
    assert_non_null(doc);
    assert_non_null(strchr(doc, '\n'));   /* %0A kept, '+' became ' ' */
    json_error_t je;
    json_t *p = json_loads(doc, 0, &je);
    if (!p)
        fail_msg("policy does not parse: %s in %s", je.text, doc);
    assert_string_equal(json_string_value(json_object_get(p, "Version")), "2012-10-17");
    json_t *st = json_array_get(json_object_get(p, "Statement"), 0);
    assert_string_equal(json_string_value(json_object_get(st, "Action")), "ec2:Describe*");
    json_decref(p);
    json_decref(j);
}

/* 1000 list items in reverse order: must come out sorted and quickly. */
static void test_many_items_fast(void **state)
{
    (void)state;
    size_t cap = 1000 * 40, o = 0;
    char *s = malloc(cap);
    for (int i = 500; i >= 1; i--)
        o += (size_t)snprintf(s + o, cap - o, "%sTag.%d.Key=k%d&Tag.%d.Value=v", o ? "&" : "",
                              i, i, i);
    query_t q;
    verr_t e = {0};
    clock_t t0 = clock();
    assert_int_equal(query_parse(s, o, &q, &e), 0);
    assert_int_equal(q.n, 1000);
    json_t *j = query_to_json(&q, SKIP, &e);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_non_null(j);
    json_t *tags = json_object_get(j, "Tag");
    assert_int_equal(json_array_size(tags), 500);
    for (size_t i = 0; i < 500; i++) {
        char want[16];
        snprintf(want, sizeof want, "k%zu", i + 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(tags, i), "Key")),
                            want);
    }
    assert_true(secs < 0.5);
    json_decref(j);
    query_free(&q);
    free(s);
}

/* A query_t built by hand (not by query_parse) is structured the same way. */
static void test_hand_built(void **state)
{
    (void)state;
    query_param_t p[] = {{"B.2", "y"}, {"B.1", "x"}, {"C", NULL}};
    query_t q = {p, ARRAY_LEN(p)};
    verr_t e = {0};
    json_t *j = query_to_json(&q, NULL, &e);
    json_t *want = json_loads("{\"B\": [\"x\", \"y\"], \"C\": \"\"}", 0, NULL);
    assert_true(json_equal(j, want));
    json_decref(j);
    json_decref(want);
    assert_string_equal(query_get(&q, "B.1"), "x");
    assert_null(query_get(NULL, "B.1"));

    /* invalid UTF-8 that did not come through query_parse is still refused */
    query_param_t bad[] = {{"A", "\xff"}};
    query_t qb = {bad, 1};
    assert_null(query_to_json(&qb, NULL, &e));
    assert_string_equal(e.code, "InvalidParameterValue");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_examples),
        cmocka_unit_test(test_parse_basic),
        cmocka_unit_test(test_parse_duplicate_refused),
        cmocka_unit_test(test_bad_components),
        cmocka_unit_test(test_parse_empty),
        cmocka_unit_test(test_percent_and_plus),
        cmocka_unit_test(test_bad_percent),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_param_count_limit),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_index_edges),
        cmocka_unit_test(test_conflicts),
        cmocka_unit_test(test_empty_components_and_depth),
        cmocka_unit_test(test_gaps_and_order),
        cmocka_unit_test(test_skip),
        cmocka_unit_test(test_ec2_describe_instances),
        cmocka_unit_test(test_iam_put_user_policy),
        cmocka_unit_test(test_many_items_fast),
        cmocka_unit_test(test_hand_built),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
