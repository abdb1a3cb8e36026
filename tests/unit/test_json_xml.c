/* test_json_xml.c - unit tests for common/json_xml.c and common/json_scan.c: the JSON text
 * of an answer turned straight into the XML elements the gateway sends. Compared byte for
 * byte with the tree walk the gateway used before (a jansson tree written with xml.h,
 * kept here as the reference), over documents with nested objects and lists, empty lists
 * and objects, nulls, booleans, numbers and every kind of escape; the shapes AWS's
 * parsers expect are also spelled out; text that jansson would refuse (malformed, \u0000,
 * lone surrogates, broken UTF-8, numbers out of range, hostile nesting) is refused and
 * leaves the output as it was; the envelope walk (json_scan_members) sees every member
 * in order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "json_scan.h"
#include "json_xml.h"
#include "xml.h"

#include "../lib/xml_tree_walk.h"

/* What the tree walk wrote for text inside <r>...</r>. */
static char *reference(const char *text, const char *item_tag)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        fail_msg("reference parse: %s", err.text);
    xml_t *x = xml_new();
    xml_open(x, "r", NULL);
    if (json_is_object(j))
        tree_walk_object(x, j, item_tag);
    json_decref(j);
    return xml_take(x, NULL);
}

static char *converted(const char *text, const char *item_tag)
{
    strbuf_t b = {0};
    strbuf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<r>");
    assert_int_equal(json_xml_members(&b, text, strlen(text), item_tag), 0);
    strbuf_puts(&b, "</r>");
    return b.s;
}

static const char *const docs[] = {
    "{}",
    "{\"return\":true}",
    "{\"a\":null,\"b\":false,\"c\":0,\"d\":-9223372036854775808,\"e\":9223372036854775807}",
    "{\"securityGroupInfo\":[{\"groupId\":\"sg-1\",\"ipPermissions\":[],\"ipPermissionsEgress\":[{\"ipProtocol\":\"-1\","
    "\"ipRanges\":[{\"cidrIp\":\"0.0.0.0/0\"}],\"groups\":[],\"prefixListIds\":[]}],\"tagSet\":[{\"key\":\"k\",\"value\":"
    "\"<v & 'w'>\"}],\"vpcId\":null}]}",
    "{\"reservationSet\":[{\"instancesSet\":[{\"instanceId\":\"i-1\",\"instanceState\":{\"code\":16,\"name\":\"running\"},"
    "\"blockDeviceMapping\":{},\"ebsOptimized\":false}],\"groupSet\":[]}],\"nextToken\":null}",
    "{\"nested\":[[1,2],[],[[\"x\"]],null,[null,{}]],\"empty\":[],\"obj\":{}}",
    "{\"sizes\":[1.5,3.0,0.1,1e20,-2.5e-7,1E3,123456789012345678.0,1e-400,-0,-0.0]}",
    "{\"esc\":\"quote\\\" back\\\\ slash\\/ \\b\\f\\n\\r\\t end\",\"u\":\"\\u00e9\\u20ac\\ud83d\\ude00 \\u0001\\u001f\\u007f "
    "\\ufffe\\uffff\\ufffd\",\"raw\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\",\"markup\":\"<a href=\\\"x\\\">&amp;'</a>\"}",
    "{ \"spaced\" : [ 1 , { \"k\" : \"v\" } ] ,\n\t\"t\" : true }",
    "{\"k\\u0041y\":\"escaped key\",\"\":\"empty key\"}",
    /* integers copied as their text (but -0), strings copied in one pass when plain: runs
     * longer than a word with what is not plain at each place of one (byte_runs.h) */
    "{\"ints\":[-0,0,-1,123456789012345678,1234567890123456789,-123456789012345678,-9223372036854775807],"
    "\"aLongerKeyThanAWord\":\"abcdefghijklmnopqrstuvwxyz0123456789<abcdefgh\",\"b\":\"abcdefgh\\\\ijklmnop\","
    "\"c\":\"abcdefghijklmnopqrstuvw\xc3\xa9xyz\",\"d\":\"abcdefg'hijklmn&opqrstu>vwxyz01\\\"2\",\"e\":\"\x7f"
    "abcdefghijklmno\\tp\",\"f\":\"0123456789abcdef\",\"g\":\"0123456\\u0041789abcdef\"}",
    "[1,2,3]",
    "\"just a string\"",
    "null",
};

/* Byte for byte what the tree walk wrote, with both item tags. */
static void test_same_as_tree_walk(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        const char *text = docs[i];
        json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
        assert_non_null(j);
        int object = json_is_object(j);
        json_decref(j);
        for (int t = 0; t < 2; t++) {
            const char *tag = t ? "member" : "item";
            char *want = object ? reference(text, tag) : strdup("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<r></r>");
            char *got = converted(text, tag);
            if (strcmp(want, got))
                fail_msg("document %zu (%s):\n want %s\n  got %s", i, tag, want, got);
            free(want);
            free(got);
        }
    }
}

static char *members(const char *text, const char *tag)
{
    strbuf_t b = {0};
    strbuf_put(&b, "", 0);
    assert_int_equal(json_xml_members(&b, text, strlen(text), tag), 0);
    return b.s;
}

/* The shapes EC2's and IAM's parsers read, spelled out. */
static void test_shapes(void **state)
{
    (void)state;
    char *s = members("{\"groupSet\":[],\"gone\":null,\"b\":{\"c\":[1,{\"d\":true}],\"e\":{}},\"f\":false}", "item");
    assert_string_equal(s, "<groupSet></groupSet><b><c><item>1</item><item><d>true</d></item></c><e></e></b>"
                           "<f>false</f>");
    free(s);
    s = members("{\"Users\":[{\"UserName\":\"a\"},{\"UserName\":\"b\"}]}", "member");
    assert_string_equal(s, "<Users><member><UserName>a</UserName></member><member><UserName>b</UserName></member>"
                           "</Users>");
    free(s);
    s = members("{\"l\":[[\"x\",null,\"y\"]]}", "item");   /* a null item is left out too */
    assert_string_equal(s, "<l><item><item>x</item><item>y</item></item></l>");
    free(s);
    s = members("{\"size\":8589934592.0,\"n\":-42,\"r\":0.30000000000000004}", "item");
    assert_string_equal(s, "<size>8589934592</size><n>-42</n><r>0.3</r>");
    free(s);
}

/* Tenant text can never break the document: the five markup characters as entities,
 * CR as a reference, other control characters and non-characters dropped. */
static void test_escaping(void **state)
{
    (void)state;
    char *s = members("{\"k\":\"<a b=\\\"c\\\">&'</a>\"}", "item");
    assert_string_equal(s, "<k>&lt;a b=&quot;c&quot;&gt;&amp;&apos;&lt;/a&gt;</k>");
    free(s);
    s = members("{\"k\":\"tab\\tnl\\ncr\\r\\u0001\\u0008\\u000b\\u000c\\u001f\\u007f|\\ufffe\\uffff|\\ud83d\\ude00\"}",
                "item");
    assert_string_equal(s, "<k>tab\tnl\ncr&#13;\x7f||\xf0\x9f\x98\x80</k>");
    free(s);
    s = members("{\"k\":\"\"}", "item");
    assert_string_equal(s, "<k></k>");
    free(s);
}

/* What jansson refuses is refused, and the output is left as it was. */
static void test_refuses_what_jansson_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", " ", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1 \"b\":2}", "{a:1}", "{\"a\":[1 2]}",
        "{\"a\":[1,]}", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\\ud800\"}",
        "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\xff\"}",
        "{\"a\":\"\xc0\x80\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"raw\nnewline\"}", "{\"a\":01}", "{\"a\":1.}",
        "{\"a\":.5}", "{\"a\":1e}", "{\"a\":-}", "{\"a\":+1}", "{\"a\":1}x", "{\"a\":1}{}",
        "{\"a\":99999999999999999999}", "{\"a\":1e999}", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":\"open}",
        "{\"a\":NaN}", "{\"a\":\"x\"", "[\"\\u0000\"]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_error_t err;
        json_t *j = json_loadb(bad[i], strlen(bad[i]), JSON_DECODE_ANY, &err);
        if (j)
            fail_msg("jansson reads bad[%zu] %s", i, bad[i]);
        strbuf_t b = {0};
        strbuf_puts(&b, "kept");
        if (json_xml_members(&b, bad[i], strlen(bad[i]), "item") != -1)
            fail_msg("bad[%zu] %s was converted: %s", i, bad[i], b.s);
        assert_string_equal(b.s, "kept");
        assert_int_equal(b.len, 4);
        free(b.s);
    }
    /* nesting deeper than JSON_SCAN_MAX_DEPTH: refused, not a stack overflow */
    size_t depth = 100000;
    char *deep = malloc(depth * 2 + 16);
    size_t n = 0;
    n += (size_t)sprintf(deep, "{\"a\":");
    for (size_t i = 0; i < depth; i++)
        deep[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    strbuf_t b = {0};
    assert_int_equal(json_xml_members(&b, deep, n, "item"), -1);
    assert_null(json_scan_skip(deep + 5, deep + n - 1, 0));
    free(b.s);
    free(deep);
}

struct seen {
    char keys[8][16];
    char values[8][64];
    int n;
};

static int collect(void *arg, const char *key, json_span_t v)
{
    struct seen *s = arg;
    if (s->n == 8)
        return -1;
    snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
    snprintf(s->values[s->n], sizeof s->values[0], "%.*s", (int)v.n, v.p);
    s->n++;
    return 0;
}

/* The envelope walk: members in order, spans exactly their values' text. */
static void test_members_walk(void **state)
{
    (void)state;
    const char *env = " {\"v\":1,\"type\":\"reply\",\"corr\":\"ab\\u0063\",\"ok\":true,\"body\":{\"x\":[1,{\"y\":\"}\"}]},"
                      "\"error\" : null } ";
    struct seen s = {0};
    assert_int_equal(json_scan_members(env, strlen(env), collect, &s), 0);
    assert_int_equal(s.n, 6);
    assert_string_equal(s.keys[2], "corr");
    assert_string_equal(s.values[2], "\"ab\\u0063\"");
    assert_string_equal(s.keys[4], "body");
    assert_string_equal(s.values[4], "{\"x\":[1,{\"y\":\"}\"}]}");
    assert_string_equal(s.keys[5], "error");
    assert_string_equal(s.values[5], "null");

    static const char *const bad[] = {"", "[]", "{\"a\":1", "{\"a\":1}}", "{\"a\" 1}", "{\"a\":[}", "\"s\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct seen t = {0};
        assert_int_equal(json_scan_members(bad[i], strlen(bad[i]), collect, &t), -1);
    }
    struct seen e = {0};
    assert_int_equal(json_scan_members("{}", 2, collect, &e), 0);
    assert_int_equal(e.n, 0);

    /* a string decoded only when it has escapes */
    strbuf_t scratch = {0};
    json_span_t sp;
    const char *plain = "\"abc\"";
    assert_ptr_equal(json_scan_string(plain, plain + 5, &scratch, &sp), plain + 5);
    assert_ptr_equal(sp.p, plain + 1);
    assert_int_equal(sp.n, 3);
    const char *esc = "\"a\\nb\"";
    assert_ptr_equal(json_scan_string(esc, esc + 6, &scratch, &sp), esc + 6);
    assert_int_equal(sp.n, 3);
    assert_memory_equal(sp.p, "a\nb", 3);
    free(scratch.s);
}

/* A reply's body, written last, is the rest of the envelope: handed on unread, the
 * whitespace around it left out; the members before it are walked as before. */
static void test_members_last(void **state)
{
    (void)state;
    const char *env = " {\"v\":1,\"corr\":\"ab\",\"ok\":true,\"body\": {\"x\":[1,{\"y\":\"}\"}]} \n} ";
    struct seen s = {0};
    assert_int_equal(json_scan_members_last(env, strlen(env), "body", collect, &s), 0);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.keys[3], "body");
    assert_string_equal(s.values[3], "{\"x\":[1,{\"y\":\"}\"}]}");
    /* a member after it is not seen: it stays in the body's text, which its reader refuses */
    const char *after = "{\"body\":{\"x\":1},\"corr\":\"b\"}";
    struct seen t = {0};
    assert_int_equal(json_scan_members_last(after, strlen(after), "body", collect, &t), 0);
    assert_int_equal(t.n, 1);
    assert_string_equal(t.values[0], "{\"x\":1},\"corr\":\"b\"");
    strbuf_t out = {0};
    assert_int_equal(json_xml_members(&out, t.values[0], strlen(t.values[0]), "item"), -1);
    free(out.s);
    /* no closing brace, or no value before it (a body cut short, "{\"body\":{}", is handed
     * on as "{", which its reader refuses) */
    static const char *const bad[] = {"{\"body\": }", "{\"body\":", "{\"body\":1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct seen u = {0};
        assert_int_equal(json_scan_members_last(bad[i], strlen(bad[i]), "body", collect, &u), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_tree_walk),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_refuses_what_jansson_refuses),
        cmocka_unit_test(test_members_walk),
        cmocka_unit_test(test_members_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
