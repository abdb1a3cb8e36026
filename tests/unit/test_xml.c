/* test_xml.c - unit tests for common/xml.c: documents are compared byte for byte,
 * because EC2 and S3 clients parse exactly what we write, and tenant text with markup,
 * control characters or broken UTF-8 must come out as well-formed XML. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "strbuf.h"
#include "xml.h"

#define DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

static void test_empty_document(void **state)
{
    (void)state;
    xml_t *x = xml_new();
    assert_string_equal(xml_str(x), DECL);
    assert_int_equal(xml_len(x), strlen(DECL));
    size_t len = 99;
    char *doc = xml_take(x, &len);
    assert_string_equal(doc, DECL);
    assert_int_equal(len, strlen(DECL));
    free(doc);
}

static void test_nesting(void **state)
{
    (void)state;
    xml_t *x = xml_new();
    xml_open(x, "DescribeInstancesResponse", "http://ec2.amazonaws.com/doc/2016-11-15/");
    xml_elem(x, "requestId", "r-1");
    xml_open(x, "reservationSet", NULL);
    xml_open(x, "item", NULL);
    xml_elem(x, "instanceId", "i-0123456789abcdef0");
    xml_elem_int(x, "amiLaunchIndex", 0);
    xml_elem_int(x, "big", -9223372036854775807LL - 1);
    xml_elem_bool(x, "ebsOptimized", 0);
    xml_elem_bool(x, "enaSupport", 7);
    xml_elemf(x, "dnsName", "ip-%d-%d.%s", 10, 2, "internal");
    xml_close(x);
    xml_close(x);
    xml_close(x);
    const char *want =
        DECL "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
        "<requestId>r-1</requestId><reservationSet><item>"
        "<instanceId>i-0123456789abcdef0</instanceId><amiLaunchIndex>0</amiLaunchIndex>"
        "<big>-9223372036854775808</big><ebsOptimized>false</ebsOptimized>"
        "<enaSupport>true</enaSupport><dnsName>ip-10-2.internal</dnsName>"
        "</item></reservationSet></DescribeInstancesResponse>";
    assert_string_equal(xml_str(x), want);
    assert_int_equal(xml_len(x), strlen(want));
    xml_close(x); /* nothing open: no-op */
    assert_string_equal(xml_str(x), want);
    xml_free(x);
}

static void test_escaping(void **state)
{
    (void)state;
    xml_t *x = xml_new();
    xml_elem(x, "Key", "a&b<c>d\"e'f");
    xml_elemf(x, "V", "%s&%s", "<x>", "'y'");
    xml_open(x, "R", "urn:a&b\"<>");
    char *doc = xml_take(x, NULL);
    assert_string_equal(doc, DECL "<Key>a&amp;b&lt;c&gt;d&quot;e&apos;f</Key>"
                             "<V>&lt;x&gt;&amp;&apos;y&apos;</V>"
                             "<R xmlns=\"urn:a&amp;b&quot;&lt;&gt;\"></R>");
    free(doc);

    /* an already escaped string is escaped again, not trusted */
    char *s = xml_escape("&amp;");
    assert_string_equal(s, "&amp;amp;");
    free(s);
}

/* XML 1.0 cannot carry most C0 controls: they are dropped; tab and LF stay, CR is
 * written as a character reference so parsers do not fold it into LF. */
static void test_control_characters(void **state)
{
    (void)state;
    char in[40], *p = in;
    *p++ = 'a';
    for (int c = 1; c < 0x20; c++)
        *p++ = (char)c;
    *p++ = 0x7f; /* DEL is a legal XML character */
    *p++ = 'z';
    *p = '\0';
    char *s = xml_escape(in);
    assert_string_equal(s, "a\t\n&#13;\x7fz");
    free(s);

    xml_t *x = xml_new();
    xml_elem(x, "T", "x\x01y\x1bz\x0b");
    char *doc = xml_take(x, NULL);
    assert_string_equal(doc, DECL "<T>xyz</T>");
    free(doc);
}

static void test_utf8(void **state)
{
    (void)state;
    /* valid: 2, 3 and 4 byte sequences pass untouched */
    const char *ok = "caf\xc3\xa9 \xe1\x88\xb4 \xf0\x9f\x98\x80 \xef\xbf\xbd";
    char *s = xml_escape(ok);
    assert_string_equal(s, ok);
    free(s);
    /* broken: stray continuation, truncated sequence, overlong '<', a surrogate,
     * beyond U+10FFFF, and the noncharacter U+FFFE are dropped */
    s = xml_escape("a\x80" "b\xc3" "c\xc0\xbc" "d\xed\xa0\x80" "e\xf4\x90\x80\x80" "f"
                   "\xef\xbf\xbe" "g\xe1\x88");
    assert_string_equal(s, "abcdefg");
    free(s);
}

static void test_null_safety(void **state)
{
    (void)state;
    xml_free(NULL);
    xml_open(NULL, "a", NULL);
    xml_close(NULL);
    xml_elem(NULL, "a", "b");
    xml_elemf(NULL, "a", "%d", 1);
    xml_elem_int(NULL, "a", 1);
    xml_elem_bool(NULL, "a", 1);
    assert_null(xml_str(NULL));
    assert_int_equal(xml_len(NULL), 0);
    size_t len = 5;
    assert_null(xml_take(NULL, &len));
    assert_int_equal(len, 0);

    char *s = xml_escape(NULL);
    assert_string_equal(s, "");
    free(s);

    xml_t *x = xml_new();
    xml_elem(x, "Empty", NULL);
    xml_elem(x, "Blank", "");
    xml_open(x, NULL, NULL);
    xml_elem(x, NULL, "lost");
    char *doc = xml_take(x, NULL);
    assert_string_equal(doc, DECL "<Empty></Empty><Blank></Blank>");
    free(doc);
}

static void test_take_closes_open_tags(void **state)
{
    (void)state;
    xml_t *x = xml_new();
    xml_open(x, "ListBucketResult", "http://s3.amazonaws.com/doc/2006-03-01/");
    xml_elem(x, "Name", "b");
    xml_open(x, "Contents", NULL);
    xml_open(x, "Owner", NULL);
    xml_elem(x, "ID", "42");
    size_t len;
    char *doc = xml_take(x, &len);
    const char *want = DECL "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                            "<Name>b</Name><Contents><Owner><ID>42</ID></Owner></Contents>"
                            "</ListBucketResult>";
    assert_string_equal(doc, want);
    assert_int_equal(len, strlen(want));
    free(doc);
}

/* Large documents and deep nesting exercise buffer and stack growth. */
static void test_growth(void **state)
{
    (void)state;
    xml_t *x = xml_new();
    for (int i = 0; i < 100; i++)
        xml_open(x, "d", NULL);
    for (int i = 0; i < 20000; i++)
        xml_elem_int(x, "n", i);
    char *doc = xml_take(x, NULL);
    size_t n = strlen(doc);
    assert_true(n > 20000 * 10);
    for (int i = 0; i < 100; i++)
        assert_memory_equal(doc + n - 4 * (size_t)(i + 1), "</d>", 4);
    assert_non_null(strstr(doc, "<n>19999</n></d>"));
    free(doc);
}

/* xml_escape_append: a length, not a NUL, ends the text (a NUL inside is dropped like any
 * control character), runs of plain bytes and the escapes interleave, broken UTF-8 is
 * dropped byte by byte. */
static void test_escape_append(void **state)
{
    (void)state;
    strbuf_t b = {0};
    strbuf_puts(&b, "[");
    xml_escape_append(&b, "a\0b<c>&\"'\r\n\t\x01\x7f\xc3\xa9\xff\xe2\x82 d", 21);
    strbuf_puts(&b, "]");
    assert_string_equal(b.s, "[ab&lt;c&gt;&amp;&quot;&apos;&#13;\n\t\x7f\xc3\xa9 d]");
    b.len = 0;
    xml_escape_append(&b, "", 0);
    xml_escape_append(&b, "plain text only", 5);
    assert_string_equal(b.s, "plain");
    free(b.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_document),
        cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_control_characters),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_null_safety),
        cmocka_unit_test(test_take_closes_open_tags),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_escape_append),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
