/* test_lifecycle.c - unit tests for services/objectstore/lifecycle.c: the
 * LifecycleConfiguration document as awscli and boto3 send it (every filter form, every
 * action, the legacy top-level Prefix) parsed and written back; every refusal with S3's
 * code (MalformedXML, InvalidArgument, InvalidRequest, NotImplemented for transitions);
 * which rule applies to which version (prefix, tags, sizes, And, disabled rules, delete
 * markers); due times rounded up to the next "midnight" of any day length; and what the
 * rules decide for current versions, noncurrent versions (NoncurrentDays,
 * NewerNoncurrentVersions), expired object delete markers and uploads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsonutil.h"
#include "lifecycle.h"

#define DOC(rules) "<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">" rules \
                   "</LifecycleConfiguration>"
#define DAY 86400

static json_t *parse_ok(const char *doc)
{
    json_t *rules = NULL;
    verr_t e = {0};
    int rc = lc_parse(doc, strlen(doc), &rules, &e);
    if (rc)
        print_error("lc_parse: %s %s\n", e.code, e.message);
    assert_int_equal(rc, 0);
    return rules;
}

static void parse_fails(const char *doc, const char *code, int status)
{
    json_t *rules = NULL;
    verr_t e = {0};
    int rc = lc_parse(doc, strlen(doc), &rules, &e);
    if (rc != -1)
        print_error("accepted: %s\n", doc);
    assert_int_equal(rc, -1);
    if (strcmp(e.code, code))
        print_error("for %s\n got %s: %s\n", doc, e.code, e.message);
    assert_string_equal(e.code, code);
    assert_int_equal(e.http_status, status);
    assert_null(rules);
}

static void test_parse_forms(void **state)
{
    (void)state;
    json_t *rules = parse_ok(DOC(
        "<Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status>"
        "<Expiration><Days>30</Days></Expiration></Rule>"
        "<Rule><ID>tmp</ID><Filter><Tag><Key>class</Key><Value>tmp</Value></Tag></Filter><Status>Disabled</Status>"
        "<Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration></Rule>"
        "<Rule><ID>and</ID><Filter><And><Prefix>a/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>"
        "<ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>100</ObjectSizeLessThan></And>"
        "</Filter><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays>"
        "<NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>"
        "<Rule><Prefix>old/</Prefix><Status>Enabled</Status>"
        "<AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation>"
        "</AbortIncompleteMultipartUpload><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker>"
        "</Expiration></Rule>"
        "<Rule><ID>all</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"));
    assert_int_equal(json_array_size(rules), 5);
    json_t *r = json_array_get(rules, 0);
    assert_string_equal(json_str(r, "id", ""), "logs");
    assert_true(json_is_true(json_object_get(r, "enabled")));
    assert_string_equal(json_str(json_object_get(r, "filter"), "prefix", ""), "logs/");
    assert_int_equal(json_int(json_object_get(r, "exp"), "days", 0), 30);
    r = json_array_get(rules, 1);
    assert_false(json_is_true(json_object_get(r, "enabled")));
    assert_int_equal(json_int(json_object_get(r, "exp"), "t", 0), 1893456000);
    r = json_array_get(rules, 2);
    json_t *f = json_object_get(r, "filter");
    assert_int_equal(json_int(f, "gt", 0), 10);
    assert_int_equal(json_int(f, "lt", 0), 100);
    assert_int_equal(json_int(json_object_get(r, "nc"), "newer", 0), 2);
    r = json_array_get(rules, 3);
    assert_string_equal(json_str(r, "prefix", ""), "old/");
    assert_null(json_object_get(r, "filter"));
    assert_int_equal(strlen(json_str(r, "id", "")), 32);   /* generated */
    assert_int_equal(json_int(json_object_get(r, "abort"), "days", 0), 3);

    /* written back and read again: the same rules */
    size_t len;
    char *xml = lc_to_xml(rules, &len);
    assert_non_null(strstr(xml, "<Filter><And><Prefix>a/</Prefix><Tag><Key>k</Key>"));
    assert_non_null(strstr(xml, "<Prefix>old/</Prefix>"));
    assert_non_null(strstr(xml, "<Date>2030-01-01T00:00:00.000Z</Date>"));
    assert_non_null(strstr(xml, "<Filter></Filter>") ? "" : strstr(xml, "<Filter/>"));
    json_t *again = parse_ok(xml);
    assert_true(json_equal(rules, again));
    free(xml);
    json_decref(again);
    json_decref(rules);
}

static void test_parse_errors(void **state)
{
    (void)state;
#define RULE(body) DOC("<Rule><ID>r</ID>" body "</Rule>")
#define ENABLED "<Filter><Prefix>p</Prefix></Filter><Status>Enabled</Status>"
    static const struct {
        const char *doc, *code;
        int status;
    } cases[] = {
        {"<LifecycleConfiguration/>", "MalformedXML", 400},
        {"<Lifecycle><Rule/></Lifecycle>", "MalformedXML", 400},
        {"not xml", "MalformedXML", 400},
        {DOC("<Bogus/>"), "MalformedXML", 400},
        {RULE("<Filter/><Expiration><Days>1</Days></Expiration>"), "MalformedXML", 400},             /* no Status */
        {RULE("<Filter/><Status>On</Status><Expiration><Days>1</Days></Expiration>"), "MalformedXML", 400},
        {RULE("<Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"), "MalformedXML", 400},   /* no filter */
        {RULE("<Prefix/><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"), "MalformedXML", 400},
        {RULE("<Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status>"
              "<Expiration><Days>1</Days></Expiration>"), "MalformedXML", 400},                      /* two without And */
        {RULE("<Filter><And><Prefix>a</Prefix></And></Filter><Status>Enabled</Status>"
              "<Expiration><Days>1</Days></Expiration>"), "MalformedXML", 400},                      /* And of one */
        {RULE(ENABLED "<Expiration><Days>1</Days></Expiration><Expiration><Days>2</Days></Expiration>"),
         "MalformedXML", 400},
        {RULE(ENABLED "<Expiration/>"), "MalformedXML", 400},
        {RULE(ENABLED "<Expiration><Days>x</Days></Expiration>"), "MalformedXML", 400},
        {RULE(ENABLED "<Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker>"
              "</Expiration>"), "MalformedXML", 400},
        {RULE(ENABLED "<Expiration><ExpiredObjectDeleteMarker>yes</ExpiredObjectDeleteMarker></Expiration>"),
         "MalformedXML", 400},
        {RULE(ENABLED "<Expiration><Date>someday</Date></Expiration>"), "MalformedXML", 400},
        {RULE(ENABLED "<NoncurrentVersionExpiration><NewerNoncurrentVersions>1</NewerNoncurrentVersions>"
              "</NoncurrentVersionExpiration>"), "MalformedXML", 400},
        {RULE(ENABLED "<Expiration><Days>0</Days></Expiration>"), "InvalidArgument", 400},
        {RULE(ENABLED "<Expiration><Days>-3</Days></Expiration>"), "InvalidArgument", 400},
        {RULE(ENABLED "<Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration>"), "InvalidArgument", 400},
        {RULE(ENABLED "<Expiration><Date>2030-01-01T00:00:00.5Z</Date></Expiration>"), "InvalidArgument", 400},
        {RULE(ENABLED "<NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays>"
              "</NoncurrentVersionExpiration>"), "InvalidArgument", 400},
        {RULE(ENABLED "<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays>"
              "<NewerNoncurrentVersions>101</NewerNoncurrentVersions></NoncurrentVersionExpiration>"),
         "InvalidArgument", 400},
        {RULE(ENABLED "<AbortIncompleteMultipartUpload><DaysAfterInitiation>0</DaysAfterInitiation>"
              "</AbortIncompleteMultipartUpload>"), "InvalidArgument", 400},
        {DOC("<Rule><ID>same</ID>" ENABLED "<Expiration><Days>1</Days></Expiration></Rule>"
             "<Rule><ID>same</ID>" ENABLED "<Expiration><Days>2</Days></Expiration></Rule>"), "InvalidArgument", 400},
        {RULE(ENABLED), "InvalidRequest", 400},                                                     /* no action */
        {RULE("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status>"
              "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
              "</AbortIncompleteMultipartUpload>"), "InvalidRequest", 400},
        {RULE("<Filter><ObjectSizeGreaterThan>5</ObjectSizeGreaterThan></Filter><Status>Enabled</Status>"
              "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
              "</AbortIncompleteMultipartUpload>"), "InvalidRequest", 400},
        {RULE("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status>"
              "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"),
         "InvalidRequest", 400},
        {RULE("<Filter><And><ObjectSizeGreaterThan>100</ObjectSizeGreaterThan><ObjectSizeLessThan>100"
              "</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"),
         "InvalidRequest", 400},
        {RULE("<Filter><And><Tag><Key>k</Key><Value>1</Value></Tag><Tag><Key>k</Key><Value>2</Value></Tag></And>"
              "</Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"), "InvalidRequest", 400},
        {RULE(ENABLED "<Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>"),
         "NotImplemented", 501},
        {RULE(ENABLED "<NoncurrentVersionTransition><NoncurrentDays>1</NoncurrentDays>"
              "<StorageClass>GLACIER</StorageClass></NoncurrentVersionTransition>"), "NotImplemented", 501},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        parse_fails(cases[i].doc, cases[i].code, cases[i].status);
    /* an ID of 255 characters is the longest */
    char id[257], doc[1024];
    for (int len = 255; len <= 256; len++) {
        memset(id, 'x', (size_t)len);
        id[len] = '\0';
        snprintf(doc, sizeof doc, DOC("<Rule><ID>%s</ID>" ENABLED "<Expiration><Days>1</Days></Expiration></Rule>"), id);
        if (len == 255)
            json_decref(parse_ok(doc));
        else
            parse_fails(doc, "InvalidArgument", 400);
    }
}

static void test_too_many_rules(void **state)
{
    (void)state;
    size_t cap = 1100 * 160, n = 0;
    char *doc = malloc(cap);
    n += (size_t)snprintf(doc + n, cap - n, "<LifecycleConfiguration>");
    for (int i = 0; i < 1001; i++) {
        n += (size_t)snprintf(doc + n, cap - n, "<Rule><ID>r%d</ID><Filter/><Status>Enabled</Status>"
                              "<Expiration><Days>1</Days></Expiration></Rule>", i);
        if (i == 999) {   /* exactly 1000 is fine */
            char *ok = malloc(n + 32);
            snprintf(ok, n + 32, "%s</LifecycleConfiguration>", doc);
            json_decref(parse_ok(ok));
            free(ok);
        }
    }
    snprintf(doc + n, cap - n, "</LifecycleConfiguration>");
    parse_fails(doc, "MalformedXML", 400);
    free(doc);
}

static void test_matching(void **state)
{
    (void)state;
    json_t *rules = parse_ok(DOC(
        "<Rule><ID>p</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status>"
        "<Expiration><Days>1</Days></Expiration></Rule>"
        "<Rule><ID>and</ID><Filter><And><Prefix>a/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>"
        "<ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>100</ObjectSizeLessThan></And>"
        "</Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
        "<Rule><ID>off</ID><Filter/><Status>Disabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
        "<Rule><ID>legacy</ID><Prefix>x</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"));
    json_t *p = json_array_get(rules, 0), *and = json_array_get(rules, 1), *off = json_array_get(rules, 2),
           *legacy = json_array_get(rules, 3);
    json_t *tags = json_pack("{s:s, s:s}", "k", "v", "other", "x"), *wrong = json_pack("{s:s}", "k", "w");
    assert_true(lc_rule_matches(p, "logs/a", 5, NULL, 0));
    assert_false(lc_rule_matches(p, "log", 5, NULL, 0));
    assert_true(lc_rule_matches(p, "logs/a", 0, NULL, 1));        /* a marker: prefix only */
    assert_true(lc_rule_matches(and, "a/b", 50, tags, 0));
    assert_false(lc_rule_matches(and, "a/b", 50, wrong, 0));
    assert_false(lc_rule_matches(and, "a/b", 50, NULL, 0));
    assert_false(lc_rule_matches(and, "a/b", 10, tags, 0));       /* greater than is strict */
    assert_false(lc_rule_matches(and, "a/b", 100, tags, 0));      /* less than is strict */
    assert_false(lc_rule_matches(and, "b/b", 50, tags, 0));
    assert_false(lc_rule_matches(and, "a/b", 0, NULL, 1));        /* markers have no tags */
    assert_false(lc_rule_matches(off, "anything", 1, NULL, 0));
    assert_true(lc_rule_matches(legacy, "xyz", 1, NULL, 0));
    assert_false(lc_rule_matches(legacy, "yx", 1, NULL, 0));
    json_decref(tags);
    json_decref(wrong);
    json_decref(rules);
}

static void test_due(void **state)
{
    (void)state;
    /* S3's example: created 2014-01-15 10:30 UTC, 3 days: due 2014-01-19 00:00 UTC */
    assert_int_equal(lc_due(1389781800, 3, DAY), 1390089600);
    assert_int_equal(lc_due(0, 1, DAY), 2 * DAY);                 /* at midnight: the next one */
    assert_int_equal(lc_due(7, 1, 2), 10);                        /* a 2-second test day */
    assert_int_equal(lc_due(100, 1, 0), lc_due(100, 1, DAY));     /* nonsense day: a real one */
}

static void test_decide(void **state)
{
    (void)state;
    json_t *rules = parse_ok(DOC(
        "<Rule><ID>cur</ID><Filter><Prefix>c/</Prefix></Filter><Status>Enabled</Status>"
        "<Expiration><Days>2</Days></Expiration></Rule>"
        "<Rule><ID>nc</ID><Filter><Prefix>n/</Prefix></Filter><Status>Enabled</Status>"
        "<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>1"
        "</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>"
        "<Rule><ID>dm</ID><Filter><Prefix>m/</Prefix></Filter><Status>Enabled</Status>"
        "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>"
        "<Rule><ID>up</ID><Filter><Prefix>u/</Prefix></Filter><Status>Enabled</Status>"
        "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
        "</AbortIncompleteMultipartUpload></Rule>"
        "<Rule><ID>date</ID><Filter><Prefix>d/</Prefix></Filter><Status>Enabled</Status>"
        "<Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration></Rule>"));
    int64_t t0 = 1000 * DAY + 3600;   /* 01:00 on some day */
    lc_version_t v = {.key = "c/obj", .size = 1, .mtime = t0, .latest = 1, .lone = 1};
    assert_int_equal(lc_decide(rules, &v, t0 + 2 * DAY, DAY), LC_KEEP);             /* 01:00 two days on */
    assert_int_equal(lc_decide(rules, &v, 1003 * DAY - 1, DAY), LC_KEEP);
    assert_int_equal(lc_decide(rules, &v, 1003 * DAY, DAY), LC_EXPIRE_CURRENT);     /* the midnight after */
    v.key = "other/obj";
    assert_int_equal(lc_decide(rules, &v, 2000 * DAY, DAY), LC_KEEP);
    v.key = "c/obj";
    v.delete_marker = 1;   /* a lone marker under an age rule: removed once due */
    assert_int_equal(lc_decide(rules, &v, 1003 * DAY, DAY), LC_REMOVE_MARKER);
    v.lone = 0;            /* with versions under it: kept */
    assert_int_equal(lc_decide(rules, &v, 2000 * DAY, DAY), LC_KEEP);

    /* noncurrent: counted from the successor's creation, the newest one kept */
    lc_version_t n = {.key = "n/obj", .size = 1, .mtime = 10, .latest = 0, .noncurrent_since = t0,
                      .newer_noncurrent = 0};
    assert_int_equal(lc_decide(rules, &n, 2000 * DAY, DAY), LC_KEEP);               /* the one retained */
    n.newer_noncurrent = 1;
    assert_int_equal(lc_decide(rules, &n, 1002 * DAY - 1, DAY), LC_KEEP);
    assert_int_equal(lc_decide(rules, &n, 1002 * DAY, DAY), LC_EXPIRE_NONCURRENT);
    n.latest = 1;          /* the current version is not touched by a noncurrent rule */
    assert_int_equal(lc_decide(rules, &n, 2000 * DAY, DAY), LC_KEEP);

    /* expired object delete markers: only when alone */
    lc_version_t m = {.key = "m/obj", .mtime = t0, .delete_marker = 1, .latest = 1, .lone = 1};
    assert_int_equal(lc_decide(rules, &m, t0, DAY), LC_REMOVE_MARKER);
    m.lone = 0;
    assert_int_equal(lc_decide(rules, &m, t0, DAY), LC_KEEP);
    m.delete_marker = 0;   /* an object under an ExpiredObjectDeleteMarker-only rule stays */
    m.lone = 1;
    assert_int_equal(lc_decide(rules, &m, 2000 * DAY, DAY), LC_KEEP);

    /* a date: everything matching, from that midnight on */
    lc_version_t d = {.key = "d/x", .mtime = 1, .latest = 1, .lone = 1};
    assert_int_equal(lc_decide(rules, &d, 1893456000 - 1, DAY), LC_KEEP);
    assert_int_equal(lc_decide(rules, &d, 1893456000, DAY), LC_EXPIRE_CURRENT);

    /* uploads */
    assert_true(lc_wants_uploads(rules));
    assert_false(lc_upload_due(rules, "u/x", t0, t0 + DAY, DAY));
    assert_true(lc_upload_due(rules, "u/x", t0, 1002 * DAY, DAY));
    assert_false(lc_upload_due(rules, "c/x", t0, 2000 * DAY, DAY));
    json_decref(rules);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms), cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_too_many_rules), cmocka_unit_test(test_matching),
        cmocka_unit_test(test_due), cmocka_unit_test(test_decide),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
