/* test_policy.c - unit tests for common/policy.c: the glob ('*', '?', case folding, and
 * patterns that would blow up a naive recursive matcher), evaluation (Allow, explicit and
 * implicit deny, action wildcards, case-insensitive actions and case-sensitive resource
 * ARNs, NotAction/NotResource, Deny winning across documents, failing closed on
 * statements it cannot understand) and validation of stored documents; conditions
 * (every operator family, IfExists, absent and unknown keys, IP blocks, dates), principals
 * of resource policies (accounts, users, canonical ids, NotPrincipal, the delegation rule
 * for an account's users) and the global condition keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "policy.h"

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        fail_msg("bad test JSON (%s): %s", je.text, text);
    return j;
}

/* Evaluate one document given as text. */
static policy_decision_t eval1(const char *doc, const char *action, const char *resource)
{
    json_t *d = load(doc);
    policy_decision_t r = policy_evaluate(d, action, resource);
    json_decref(d);
    return r;
}

static void assert_valid(const char *doc)
{
    json_t *d = load(doc);
    verr_t e = {0};
    if (policy_validate(d, &e) != 0)
        fail_msg("%s rejected: %s", doc, e.message);
    json_decref(d);
}

static void assert_invalid(const char *doc, const char *needle)
{
    json_t *d = load(doc);
    verr_t e = {0};
    assert_int_equal(policy_validate(d, &e), -1);
    assert_string_equal(e.code, "MalformedPolicyDocument");
    assert_int_equal(e.http_status, 400);
    if (!strstr(e.message, needle))
        fail_msg("%s: message '%s' lacks '%s'", doc, e.message, needle);
    json_decref(d);
}

static void test_glob(void **state)
{
    (void)state;
    assert_true(policy_glob("abc", "abc", 0));
    assert_false(policy_glob("abc", "abcd", 0));
    assert_false(policy_glob("abcd", "abc", 0));
    assert_true(policy_glob("*", "", 0));
    assert_true(policy_glob("*", "anything", 0));
    assert_true(policy_glob("", "", 0));
    assert_false(policy_glob("", "a", 0));
    assert_true(policy_glob("a*", "a", 0));
    assert_true(policy_glob("a**b", "ab", 0));
    assert_true(policy_glob("*b*", "abc", 0));
    assert_false(policy_glob("*b*", "acd", 0));
    assert_true(policy_glob("a?c", "abc", 0));
    assert_false(policy_glob("a?c", "ac", 0));
    assert_false(policy_glob("?", "", 0));
    assert_true(policy_glob("*ab", "aab", 0));   /* needs the backtrack */
    assert_true(policy_glob("*a*b", "xaxxayb", 0));
    assert_false(policy_glob("*a*b", "xaxxay", 0));
    assert_true(policy_glob("ABC", "abc", 1));
    assert_false(policy_glob("ABC", "abc", 0));
    assert_true(policy_glob("a\\*", "a\\xyz", 0));   /* no escapes: backslash is literal */
    assert_false(policy_glob(NULL, "a", 0));
    assert_false(policy_glob("a", NULL, 0));
}

/* A recursive matcher takes exponential time on these; the two-pointer one is at worst
 * len(pattern) * len(subject). */
static void test_glob_pathological(void **state)
{
    (void)state;
    char subject[20001], pattern[4001];
    memset(subject, 'a', sizeof subject - 1);
    subject[sizeof subject - 1] = '\0';
    for (size_t i = 0; i < sizeof pattern - 1; i += 2)
        memcpy(pattern + i, "a*", 2);
    pattern[sizeof pattern - 2] = 'b';
    pattern[sizeof pattern - 1] = '\0';

    clock_t t0 = clock();
    assert_false(policy_glob("a*a*a*a*a*a*a*a*a*a*a*a*b", subject, 0));
    assert_false(policy_glob("*a*a*a*a*a*a*a*a*a*a*a*a*?b", subject, 1));
    assert_false(policy_glob(pattern, subject, 0));
    assert_true(policy_glob("a*a*a*a*a*a*a*a*a*a*a*a*", subject, 0));
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 1.0);
}

static const char *READ_EC2 =
    "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\","
    " \"Action\": \"ec2:Describe*\", \"Resource\": \"*\"}]}";

static void test_allow_and_implicit_deny(void **state)
{
    (void)state;
    assert_int_equal(eval1(READ_EC2, "ec2:DescribeInstances", "*"), POLICY_ALLOW);
    assert_int_equal(eval1(READ_EC2, "ec2:RunInstances", "*"), POLICY_IMPLICIT_DENY);
    assert_int_equal(eval1(READ_EC2, "iam:DescribeThings", "*"), POLICY_IMPLICIT_DENY);
    assert_int_equal(eval1(READ_EC2, "ec2:Describe", "*"), POLICY_ALLOW);
    /* no documents at all: implicit deny */
    json_t *none = json_array();
    assert_int_equal(policy_evaluate(none, "ec2:DescribeInstances", "*"), POLICY_IMPLICIT_DENY);
    json_decref(none);
    assert_int_equal(policy_evaluate(NULL, "ec2:DescribeInstances", "*"), POLICY_IMPLICIT_DENY);
    assert_int_equal(eval1(READ_EC2, NULL, "*"), POLICY_IMPLICIT_DENY);
}

static void test_explicit_deny(void **state)
{
    (void)state;
    const char *doc =
        "{\"Statement\": ["
        " {\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\"},"
        " {\"Effect\": \"Deny\", \"Action\": [\"ec2:TerminateInstances\", \"iam:*\"],"
        "  \"Resource\": \"*\"}]}";
    assert_int_equal(eval1(doc, "ec2:RunInstances", "*"), POLICY_ALLOW);
    assert_int_equal(eval1(doc, "ec2:TerminateInstances", "*"), POLICY_EXPLICIT_DENY);
    assert_int_equal(eval1(doc, "iam:CreateUser", "*"), POLICY_EXPLICIT_DENY);
    /* Deny first in the list wins just the same */
    const char *rev =
        "{\"Statement\": ["
        " {\"Effect\": \"Deny\", \"Action\": \"ec2:*\", \"Resource\": \"*\"},"
        " {\"Effect\": \"Allow\", \"Action\": \"ec2:*\", \"Resource\": \"*\"}]}";
    assert_int_equal(eval1(rev, "ec2:RunInstances", "*"), POLICY_EXPLICIT_DENY);
}

static void test_action_wildcards(void **state)
{
    (void)state;
    const char *users =
        "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"iam:*User*\", \"Resource\": \"*\"}}";
    assert_int_equal(eval1(users, "iam:CreateUser", "*"), POLICY_ALLOW);
    assert_int_equal(eval1(users, "iam:ListUsers", "*"), POLICY_ALLOW);
    assert_int_equal(eval1(users, "iam:PutUserPolicy", "*"), POLICY_ALLOW);
    assert_int_equal(eval1(users, "iam:CreateAccessKey", "*"), POLICY_IMPLICIT_DENY);
    assert_int_equal(eval1(users, "ec2:User", "*"), POLICY_IMPLICIT_DENY);

    const char *all =
        "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\"}}";
    assert_int_equal(eval1(all, "s3:GetObject", "*"), POLICY_ALLOW);

    const char *q = "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"ec2:?escribe*\","
                    " \"Resource\": \"*\"}}";
    assert_int_equal(eval1(q, "ec2:DescribeVpcs", "*"), POLICY_ALLOW);
    assert_int_equal(eval1(q, "ec2:Dscribe", "*"), POLICY_IMPLICIT_DENY);
}

static void test_case_sensitivity(void **state)
{
    (void)state;
    const char *doc =
        "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"EC2:describe*\","
        " \"Resource\": \"arn:aws:ec2:*:123456789012:instance/i-ABC*\"}}";
    assert_int_equal(eval1(doc, "ec2:DescribeKeyPairs",
                           "arn:aws:ec2:us-east-1:123456789012:instance/i-ABC1"), POLICY_ALLOW);
    assert_int_equal(eval1(doc, "Ec2:DESCRIBEKEYPAIRS",
                           "arn:aws:ec2:us-east-1:123456789012:instance/i-ABC1"), POLICY_ALLOW);
    /* resources compare case-sensitively */
    assert_int_equal(eval1(doc, "ec2:DescribeKeyPairs",
                           "arn:aws:ec2:us-east-1:123456789012:instance/i-abc1"),
                     POLICY_IMPLICIT_DENY);
    assert_int_equal(eval1(doc, "ec2:DescribeKeyPairs",
                           "ARN:aws:ec2:us-east-1:123456789012:instance/i-ABC1"),
                     POLICY_IMPLICIT_DENY);
}

static void test_resource_arns(void **state)
{
    (void)state;
    const char *doc =
        "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"ec2:*Instances\","
        " \"Resource\": [\"arn:aws:ec2:us-east-1:111122223333:instance/*\","
        "                \"arn:aws:ec2:*:111122223333:volume/vol-0?\"]}}";
    assert_int_equal(eval1(doc, "ec2:StopInstances",
                           "arn:aws:ec2:us-east-1:111122223333:instance/i-1"), POLICY_ALLOW);
    assert_int_equal(eval1(doc, "ec2:StopInstances",
                           "arn:aws:ec2:eu-west-1:111122223333:instance/i-1"),
                     POLICY_IMPLICIT_DENY);
    assert_int_equal(eval1(doc, "ec2:StopInstances",
                           "arn:aws:ec2:eu-west-1:111122223333:volume/vol-07"), POLICY_ALLOW);
    assert_int_equal(eval1(doc, "ec2:StopInstances",
                           "arn:aws:ec2:eu-west-1:111122223333:volume/vol-071"),
                     POLICY_IMPLICIT_DENY);
    assert_int_equal(eval1(doc, "ec2:StopInstances",
                           "arn:aws:ec2:us-east-1:999999999999:instance/i-1"),
                     POLICY_IMPLICIT_DENY);
    /* a NULL resource is "*": it does not match an ARN pattern */
    assert_int_equal(eval1(doc, "ec2:StopInstances", NULL), POLICY_IMPLICIT_DENY);
}

static void test_not_action_not_resource(void **state)
{
    (void)state;
    /* everything except IAM */
    const char *na = "{\"Statement\": {\"Effect\": \"Allow\", \"NotAction\": [\"iam:*\"],"
                     " \"Resource\": \"*\"}}";
    assert_int_equal(eval1(na, "ec2:RunInstances", "*"), POLICY_ALLOW);
    assert_int_equal(eval1(na, "IAM:CreateUser", "*"), POLICY_IMPLICIT_DENY);

    /* deny everything outside one region */
    const char *nr =
        "{\"Statement\": ["
        " {\"Effect\": \"Allow\", \"Action\": \"ec2:*\", \"Resource\": \"*\"},"
        " {\"Effect\": \"Deny\", \"Action\": \"ec2:*\","
        "  \"NotResource\": \"arn:aws:ec2:us-east-1:*\"}]}";
    assert_int_equal(eval1(nr, "ec2:RunInstances", "arn:aws:ec2:us-east-1:1:instance/i-1"),
                     POLICY_ALLOW);
    assert_int_equal(eval1(nr, "ec2:RunInstances", "arn:aws:ec2:eu-west-1:1:instance/i-1"),
                     POLICY_EXPLICIT_DENY);

    /* Deny with NotAction: everything but the listed actions is denied */
    const char *dna =
        "{\"Statement\": ["
        " {\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\"},"
        " {\"Effect\": \"Deny\", \"NotAction\": \"ec2:Describe*\", \"Resource\": \"*\"}]}";
    assert_int_equal(eval1(dna, "ec2:DescribeImages", "*"), POLICY_ALLOW);
    assert_int_equal(eval1(dna, "ec2:DeleteVpc", "*"), POLICY_EXPLICIT_DENY);
}

static void test_deny_across_documents(void **state)
{
    (void)state;
    json_t *docs = json_array();
    json_array_append_new(docs, load("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": "
                                     "\"ec2:*\", \"Resource\": \"*\"}}"));
    json_array_append_new(docs, load(READ_EC2));
    assert_int_equal(policy_evaluate(docs, "ec2:RunInstances", "*"), POLICY_ALLOW);
    json_array_append_new(docs, load("{\"Statement\": [{\"Effect\": \"Deny\", \"Action\": "
                                     "\"ec2:RunInstances\", \"Resource\": \"*\"}]}"));
    assert_int_equal(policy_evaluate(docs, "ec2:RunInstances", "*"), POLICY_EXPLICIT_DENY);
    assert_int_equal(policy_evaluate(docs, "ec2:StopInstances", "*"), POLICY_ALLOW);
    /* the order of documents does not matter */
    json_array_insert_new(docs, 0, load("{\"Statement\": {\"Effect\": \"Deny\", \"Action\": "
                                        "\"ec2:Stop*\", \"Resource\": \"*\"}}"));
    assert_int_equal(policy_evaluate(docs, "ec2:StopInstances", "*"), POLICY_EXPLICIT_DENY);
    json_decref(docs);
}

/* What evaluation does with documents that never passed validation: never grant on a
 * statement it cannot read. */
static void test_fail_closed(void **state)
{
    (void)state;
    assert_int_equal(eval1("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\","
                           " \"Resource\": \"*\", \"Condition\": {}}}", "ec2:X", "*"),
                     POLICY_IMPLICIT_DENY);
    assert_int_equal(eval1("{\"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"*\","
                           " \"Resource\": \"*\"}, {\"Effect\": \"Deny\", \"Action\": \"*\","
                           " \"Resource\": \"*\", \"Condition\": {}}]}", "ec2:X", "*"),
                     POLICY_EXPLICIT_DENY);
    assert_int_equal(eval1("{\"Statement\": {\"Effect\": \"allow\", \"Action\": \"*\","
                           " \"Resource\": \"*\"}}", "ec2:X", "*"), POLICY_IMPLICIT_DENY);
    assert_int_equal(eval1("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\"}}",
                           "ec2:X", "*"), POLICY_IMPLICIT_DENY);
    assert_int_equal(eval1("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\","
                           " \"NotAction\": \"iam:*\", \"Resource\": \"*\"}}", "ec2:X", "*"),
                     POLICY_IMPLICIT_DENY);
    assert_int_equal(eval1("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": 7,"
                           " \"Resource\": \"*\"}}", "ec2:X", "*"), POLICY_IMPLICIT_DENY);
    assert_int_equal(eval1("[\"not a doc\", 3]", "ec2:X", "*"), POLICY_IMPLICIT_DENY);
}

static void test_validate_ok(void **state)
{
    (void)state;
    assert_valid(READ_EC2);
    assert_valid("{\"Statement\": {\"Effect\": \"Deny\", \"NotAction\": \"iam:*\","
                 " \"NotResource\": [\"arn:aws:iam::1:user/*\"]}}");
    assert_valid("{\"Version\": \"2008-10-17\", \"Id\": \"p1\", \"Statement\": [{\"Sid\": \"A1\","
                 " \"Effect\": \"Allow\", \"Action\": [\"ec2:Describe*\", \"ec2:Get*\"],"
                 " \"Resource\": []}]}");
}

static void test_validate_errors(void **state)
{
    (void)state;
    assert_invalid("[]", "JSON object");
    assert_invalid("{\"Version\": \"2012-10-18\", \"Statement\": []}", "Version");
    assert_invalid("{\"Version\": 2012, \"Statement\": []}", "Version");
    assert_invalid("{\"Version\": \"2012-10-17\"}", "no Statement");
    assert_invalid("{\"Statement\": []}", "non-empty");
    assert_invalid("{\"Statement\": \"Allow\"}", "non-empty");
    assert_invalid("{\"Statement\": [7]}", "Statement 1 must be a JSON object");
    assert_invalid("{\"Statement\": {\"Action\": \"*\", \"Resource\": \"*\"}}", "Effect");
    assert_invalid("{\"Statement\": {\"Effect\": \"allow\", \"Action\": \"*\","
                   " \"Resource\": \"*\"}}", "Effect must be Allow or Deny");
    assert_invalid("{\"Statement\": ["
                   "{\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\"},"
                   "{\"Effect\": \"Allow\", \"Resource\": \"*\"}]}", "Statement 2: missing Action");
    assert_invalid("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\","
                   " \"NotAction\": \"*\", \"Resource\": \"*\"}}", "cannot both");
    assert_invalid("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": [],"
                   " \"Resource\": \"*\"}}", "must not be empty");
    assert_invalid("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": [\"ec2:A\", 3],"
                   " \"Resource\": \"*\"}}", "only strings");
    assert_invalid("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": {},"
                   " \"Resource\": \"*\"}}", "string or an array");
    assert_invalid("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"DescribeInstances\","
                   " \"Resource\": \"*\"}}", "prefixed by a service");
    assert_invalid("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\"}}",
                   "missing Resource");
    assert_invalid("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\","
                   " \"Resource\": \"*\", \"NotResource\": \"*\"}}", "cannot both");
    assert_invalid("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\","
                   " \"Resource\": \"instance/i-1\"}}", "ARN");
    assert_invalid("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\","
                   " \"Resource\": \"*\", \"Condition\": {\"Bool\": {}}}}",
                   "must map condition keys");
    assert_invalid("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\","
                   " \"Resource\": \"*\", \"Principal\": \"*\"}}", "Principal");
    assert_invalid("{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\","
                   " \"Resource\": \"*\", \"Sid\": 1}}", "Sid");
    assert_invalid("{\"Statement\": {\"Effect\": \"Allow\", \"Actions\": \"*\","
                   " \"Resource\": \"*\"}}", "unknown element 'Actions'");
    assert_invalid("{\"Statement\": [], \"Statment\": []}", "Unknown policy element");

    verr_t e = {0};
    assert_int_equal(policy_validate(NULL, &e), -1);
    assert_string_equal(e.code, "MalformedPolicyDocument");
}


/* ---- conditions ---- */

/* A request context from "key=value;key=value" ("key=" present and empty; keys not
 * listed are absent; "?key" unknown to the evaluator). */
static const char *ctx_text;

static int ctx_key(void *arg, const char *key, const char **value)
{
    static char buf[256];
    (void)arg;
    char want[96];
    snprintf(want, sizeof want, "?%s;", key);
    if (strstr(ctx_text, want))
        return -1;
    snprintf(want, sizeof want, "%s=", key);
    const char *p = ctx_text;
    while ((p = strstr(p, want))) {
        if (p == ctx_text || p[-1] == ';') {
            p += strlen(want);
            size_t n = strcspn(p, ";");
            snprintf(buf, sizeof buf, "%.*s", (int)n, p);
            *value = buf;
            return 1;
        }
        p++;
    }
    return 0;
}

/* Decide one Allow statement with condition block cond against context ctx. */
static policy_decision_t cond_allow(const char *cond, const char *ctx)
{
    char doc[2048];
    snprintf(doc, sizeof doc, "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"s3:*\","
             " \"Resource\": \"*\", \"Condition\": %s}}", cond);
    json_t *d = load(doc);
    verr_t e = {0};
    if (policy_validate(d, &e) != 0)
        fail_msg("%s rejected: %s", doc, e.message);
    ctx_text = ctx;
    policy_request_t q = {.action = "s3:GetObject", .resource = "arn:aws:s3:::b/k", .key = ctx_key};
    policy_decision_t r = policy_decide(d, &q);
    json_decref(d);
    return r;
}

#define HOLDS(cond, ctx) assert_int_equal(cond_allow(cond, ctx), POLICY_ALLOW)
#define FAILS(cond, ctx) assert_int_equal(cond_allow(cond, ctx), POLICY_IMPLICIT_DENY)

static void test_condition_strings(void **state)
{
    (void)state;
    HOLDS("{\"StringEquals\": {\"s3:prefix\": \"home/\"}}", "s3:prefix=home/");
    FAILS("{\"StringEquals\": {\"s3:prefix\": \"home/\"}}", "s3:prefix=Home/");
    FAILS("{\"StringEquals\": {\"s3:prefix\": \"home/\"}}", "");          /* absent: false */
    HOLDS("{\"StringEquals\": {\"s3:prefix\": [\"a\", \"home/\"]}}", "s3:prefix=home/");  /* OR */
    HOLDS("{\"StringNotEquals\": {\"s3:prefix\": \"x\"}}", "s3:prefix=y");
    FAILS("{\"StringNotEquals\": {\"s3:prefix\": [\"x\", \"y\"]}}", "s3:prefix=y");   /* NOR */
    HOLDS("{\"StringNotEquals\": {\"s3:prefix\": \"x\"}}", "");          /* negated, absent: true */
    HOLDS("{\"StringEqualsIgnoreCase\": {\"s3:prefix\": \"HOME\"}}", "s3:prefix=home");
    HOLDS("{\"StringLike\": {\"s3:prefix\": \"home/*\"}}", "s3:prefix=home/alice/");
    FAILS("{\"StringLike\": {\"s3:prefix\": \"home/*\"}}", "s3:prefix=other/");
    HOLDS("{\"StringNotLike\": {\"aws:UserAgent\": \"*curl*\"}}", "aws:UserAgent=Boto3/1.26");
    FAILS("{\"StringNotLike\": {\"aws:UserAgent\": \"*curl*\"}}", "aws:UserAgent=curl/8");
    HOLDS("{\"StringEqualsIfExists\": {\"s3:x-amz-acl\": \"private\"}}", "");
    FAILS("{\"StringEqualsIfExists\": {\"s3:x-amz-acl\": \"private\"}}", "s3:x-amz-acl=public-read");
    /* key names are case-insensitive, values are not */
    HOLDS("{\"StringEquals\": {\"S3:Prefix\": \"a\"}}", "s3:prefix=a");
    /* operators AND, keys AND */
    HOLDS("{\"StringEquals\": {\"s3:prefix\": \"a\", \"s3:delimiter\": \"/\"},"
          " \"Bool\": {\"aws:SecureTransport\": \"false\"}}", "s3:prefix=a;s3:delimiter=/;aws:SecureTransport=false");
    FAILS("{\"StringEquals\": {\"s3:prefix\": \"a\", \"s3:delimiter\": \"/\"}}", "s3:prefix=a");
    HOLDS("{\"Null\": {\"s3:prefix\": \"true\"}}", "");
    FAILS("{\"Null\": {\"s3:prefix\": \"true\"}}", "s3:prefix=");
    HOLDS("{\"Null\": {\"s3:prefix\": false}}", "s3:prefix=x");
    HOLDS("{\"ArnLike\": {\"aws:PrincipalArn\": \"arn:aws:iam::*:user/ops-*\"}}",
          "aws:PrincipalArn=arn:aws:iam::123456789012:user/ops-1");
}

static void test_condition_numbers_dates_bools(void **state)
{
    (void)state;
    HOLDS("{\"NumericLessThanEquals\": {\"s3:max-keys\": 10}}", "s3:max-keys=10");
    FAILS("{\"NumericLessThan\": {\"s3:max-keys\": \"10\"}}", "s3:max-keys=10");
    HOLDS("{\"NumericGreaterThan\": {\"s3:max-keys\": 2.5}}", "s3:max-keys=3");
    FAILS("{\"NumericEquals\": {\"s3:max-keys\": 3}}", "s3:max-keys=abc");
    HOLDS("{\"NumericNotEquals\": {\"s3:max-keys\": 3}}", "s3:max-keys=4");
    HOLDS("{\"DateLessThan\": {\"aws:CurrentTime\": \"2030-01-01T00:00:00Z\"}}",
          "aws:CurrentTime=2026-12-06T05:00:00Z");
    FAILS("{\"DateGreaterThan\": {\"aws:CurrentTime\": \"2030-01-01\"}}",
          "aws:CurrentTime=2026-12-06T05:00:00Z");
    HOLDS("{\"DateGreaterThanEquals\": {\"aws:EpochTime\": \"2026-12-06T05:00:00+01:00\"}}",
          "aws:EpochTime=1796529600");   /* 04:00Z */
    HOLDS("{\"DateEquals\": {\"aws:CurrentTime\": \"2026-12-06T05:00:00.000Z\"}}",
          "aws:CurrentTime=2026-12-06T05:00:00Z");
    HOLDS("{\"Bool\": {\"aws:SecureTransport\": false}}", "aws:SecureTransport=false");
    FAILS("{\"Bool\": {\"aws:SecureTransport\": \"true\"}}", "aws:SecureTransport=false");
}

static void test_condition_ip(void **state)
{
    (void)state;
    HOLDS("{\"IpAddress\": {\"aws:SourceIp\": \"127.0.0.1/32\"}}", "aws:SourceIp=127.0.0.1");
    HOLDS("{\"IpAddress\": {\"aws:SourceIp\": \"127.0.0.1\"}}", "aws:SourceIp=127.0.0.1");
    FAILS("{\"IpAddress\": {\"aws:SourceIp\": \"127.0.0.1/32\"}}", "aws:SourceIp=127.0.0.2");
    HOLDS("{\"IpAddress\": {\"aws:SourceIp\": \"10.1.0.0/16\"}}", "aws:SourceIp=10.1.200.3");
    FAILS("{\"IpAddress\": {\"aws:SourceIp\": \"10.1.0.0/16\"}}", "aws:SourceIp=10.2.0.3");
    HOLDS("{\"IpAddress\": {\"aws:SourceIp\": \"10.0.0.0/9\"}}", "aws:SourceIp=10.127.0.1");
    FAILS("{\"IpAddress\": {\"aws:SourceIp\": \"10.0.0.0/9\"}}", "aws:SourceIp=10.128.0.1");
    HOLDS("{\"IpAddress\": {\"aws:SourceIp\": \"0.0.0.0/0\"}}", "aws:SourceIp=8.8.8.8");
    HOLDS("{\"NotIpAddress\": {\"aws:SourceIp\": \"192.0.2.0/24\"}}", "aws:SourceIp=127.0.0.1");
    FAILS("{\"NotIpAddress\": {\"aws:SourceIp\": [\"192.0.2.0/24\", \"127.0.0.0/8\"]}}",
          "aws:SourceIp=127.0.0.1");
    HOLDS("{\"IpAddress\": {\"aws:SourceIp\": \"2001:db8::/32\"}}", "aws:SourceIp=2001:db8::7");
    FAILS("{\"IpAddress\": {\"aws:SourceIp\": \"2001:db8::/32\"}}", "aws:SourceIp=2001:db9::7");
    HOLDS("{\"IpAddress\": {\"aws:SourceIp\": \"127.0.0.1\"}}", "aws:SourceIp=::ffff:127.0.0.1");
    FAILS("{\"IpAddress\": {\"aws:SourceIp\": \"127.0.0.1\"}}", "aws:SourceIp=not-an-ip");
}

/* Keys the evaluator cannot answer: an Allow never applies, a Deny always does. */
static void test_condition_unknown_keys(void **state)
{
    (void)state;
    FAILS("{\"StringEquals\": {\"s3:prefix\": \"a\"}}", "?s3:prefix;");
    FAILS("{\"StringNotEquals\": {\"s3:prefix\": \"a\"}}", "?s3:prefix;");
    /* one false part decides even when another is unknown */
    FAILS("{\"StringEquals\": {\"s3:prefix\": \"a\", \"s3:delimiter\": \"/\"}}", "?s3:prefix;s3:delimiter=x");
    json_t *d = load("{\"Statement\": {\"Effect\": \"Deny\", \"Action\": \"*\", \"Resource\": \"*\","
                     " \"Condition\": {\"IpAddress\": {\"aws:SourceIp\": \"10.0.0.0/8\"}}}}");
    assert_int_equal(policy_evaluate(d, "ec2:X", "*"), POLICY_EXPLICIT_DENY);   /* no context */
    ctx_text = "aws:SourceIp=127.0.0.1";
    policy_request_t q = {.action = "ec2:X", .resource = "*", .key = ctx_key};
    assert_int_equal(policy_decide(d, &q), POLICY_IMPLICIT_DENY);
    ctx_text = "aws:SourceIp=10.0.0.1";
    assert_int_equal(policy_decide(d, &q), POLICY_EXPLICIT_DENY);
    json_decref(d);
}

static void test_condition_validation(void **state)
{
    (void)state;
#define STMT(c) "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\", \"Condition\": " c "}}"
    assert_valid(STMT("{\"StringLikeIfExists\": {\"aws:Referer\": [\"https://a/*\", \"https://b/*\"]}}"));
    assert_valid(STMT("{\"ForAnyValue:StringEquals\": {\"aws:username\": \"bob\"}}"));
    assert_invalid(STMT("{}"), "non-empty object");
    assert_invalid(STMT("[]"), "non-empty object");
    assert_invalid(STMT("{\"StringEqualz\": {\"aws:username\": \"x\"}}"), "unknown condition operator 'StringEqualz'");
    assert_invalid(STMT("{\"NullIfExists\": {\"aws:username\": \"true\"}}"), "unknown condition operator");
    assert_invalid(STMT("{\"StringEquals\": {\"ec2:Region\": \"x\"}}"), "condition key 'ec2:Region' is not supported");
    assert_invalid(STMT("{\"StringEquals\": {\"aws:username\": []}}"), "has no values");
    assert_invalid(STMT("{\"StringEquals\": {\"aws:username\": {}}}"), "invalid value");
    assert_invalid(STMT("{\"IpAddress\": {\"aws:SourceIp\": \"10.0.0.0/33\"}}"), "invalid value for IpAddress");
    assert_invalid(STMT("{\"IpAddress\": {\"aws:SourceIp\": \"example.com\"}}"), "invalid value");
    assert_invalid(STMT("{\"NumericLessThan\": {\"s3:max-keys\": \"ten\"}}"), "invalid value");
    assert_invalid(STMT("{\"DateLessThan\": {\"aws:CurrentTime\": \"yesterday\"}}"), "invalid value");
    assert_invalid(STMT("{\"Bool\": {\"aws:SecureTransport\": \"yes\"}}"), "invalid value");
#undef STMT
}

/* ---- resource policies: principals ---- */

#define ACCT "111122223333"
#define OTHER "444455556666"
#define CANON "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"

static policy_decision_t bucket_decide(const char *principal, const char *effect, const policy_request_t *q)
{
    char doc[1024];
    snprintf(doc, sizeof doc, "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"%s\", %s,"
             " \"Action\": \"s3:GetObject\", \"Resource\": \"arn:aws:s3:::b/pub/*\"}]}", effect, principal);
    json_t *d = load(doc);
    verr_t e = {0};
    if (policy_validate_kind(d, POLICY_RESOURCE, &e) != 0)
        fail_msg("%s rejected: %s", doc, e.message);
    policy_decision_t r = policy_decide(d, q);
    json_decref(d);
    return r;
}

static void test_principals(void **state)
{
    (void)state;
    policy_request_t anon = {.action = "s3:GetObject", .resource = "arn:aws:s3:::b/pub/x"};
    policy_request_t user = {.action = "s3:GetObject", .resource = "arn:aws:s3:::b/pub/x", .account = ACCT,
                             .canonical_id = CANON, .user_arn = "arn:aws:iam::" ACCT ":user/alice"};
    policy_request_t root = user;
    root.is_root = 1;
    root.user_arn = "arn:aws:iam::" ACCT ":user/admin";

    assert_int_equal(bucket_decide("\"Principal\": \"*\"", "Allow", &anon), POLICY_ALLOW);
    assert_int_equal(bucket_decide("\"Principal\": {\"AWS\": \"*\"}", "Allow", &anon), POLICY_ALLOW);
    assert_int_equal(bucket_decide("\"Principal\": {\"AWS\": \"" ACCT "\"}", "Allow", &anon), POLICY_IMPLICIT_DENY);
    assert_int_equal(bucket_decide("\"Principal\": {\"AWS\": \"" ACCT "\"}", "Allow", &user), POLICY_ALLOW);
    assert_int_equal(bucket_decide("\"Principal\": {\"AWS\": \"arn:aws:iam::" ACCT ":root\"}", "Allow", &user),
                     POLICY_ALLOW);
    assert_int_equal(bucket_decide("\"Principal\": {\"AWS\": [\"" OTHER "\"]}", "Allow", &user), POLICY_IMPLICIT_DENY);
    assert_int_equal(bucket_decide("\"Principal\": {\"CanonicalUser\": \"" CANON "\"}", "Allow", &user), POLICY_ALLOW);
    assert_int_equal(bucket_decide("\"Principal\": {\"AWS\": \"" CANON "\"}", "Allow", &user), POLICY_ALLOW);
    assert_int_equal(bucket_decide("\"Principal\": {\"AWS\": \"arn:aws:iam::" ACCT ":user/alice\"}", "Allow", &user),
                     POLICY_ALLOW);
    assert_int_equal(bucket_decide("\"Principal\": {\"AWS\": \"arn:aws:iam::" ACCT ":user/bob\"}", "Allow", &user),
                     POLICY_IMPLICIT_DENY);
    /* the resource must match too */
    policy_request_t elsewhere = user;
    elsewhere.resource = "arn:aws:s3:::b/private/x";
    assert_int_equal(bucket_decide("\"Principal\": \"*\"", "Allow", &elsewhere), POLICY_IMPLICIT_DENY);

    /* delegation: naming the account allows its root, not its users */
    user.account_principal_root_only = root.account_principal_root_only = 1;
    assert_int_equal(bucket_decide("\"Principal\": {\"AWS\": \"" ACCT "\"}", "Allow", &user), POLICY_IMPLICIT_DENY);
    assert_int_equal(bucket_decide("\"Principal\": {\"AWS\": \"" ACCT "\"}", "Allow", &root), POLICY_ALLOW);
    assert_int_equal(bucket_decide("\"Principal\": {\"AWS\": \"arn:aws:iam::" ACCT ":user/alice\"}", "Allow", &user),
                     POLICY_ALLOW);
    /* ... while a Deny naming the account reaches every user in it */
    assert_int_equal(bucket_decide("\"Principal\": {\"AWS\": \"" ACCT "\"}", "Deny", &user), POLICY_EXPLICIT_DENY);

    /* NotPrincipal: everyone but those named */
    assert_int_equal(bucket_decide("\"NotPrincipal\": {\"AWS\": \"" ACCT "\"}", "Deny", &user), POLICY_IMPLICIT_DENY);
    assert_int_equal(bucket_decide("\"NotPrincipal\": {\"AWS\": \"" ACCT "\"}", "Deny", &anon), POLICY_EXPLICIT_DENY);
}

static void assert_invalid_bucket(const char *doc, const char *needle)
{
    json_t *d = load(doc);
    verr_t e = {0};
    assert_int_equal(policy_validate_kind(d, POLICY_RESOURCE, &e), -1);
    assert_string_equal(e.code, "MalformedPolicy");
    if (!strstr(e.message, needle))
        fail_msg("%s: message '%s' lacks '%s'", doc, e.message, needle);
    json_decref(d);
}

static void test_resource_policy_validation(void **state)
{
    (void)state;
#define BST(p) "{\"Statement\": {\"Effect\": \"Allow\", " p " \"Action\": \"s3:*\", \"Resource\": \"arn:aws:s3:::b/*\"}}"
    assert_invalid_bucket(BST(""), "missing Principal");
    assert_invalid_bucket(BST("\"Principal\": \"me\","), "Invalid principal");
    assert_invalid_bucket(BST("\"Principal\": {\"AWS\": \"12345\"},"), "Invalid principal");
    assert_invalid_bucket(BST("\"Principal\": {\"AWS\": []},"), "Invalid principal");
    assert_invalid_bucket(BST("\"Principal\": {\"Service\": \"ec2.amazonaws.com\"},"), "Invalid principal");
    assert_invalid_bucket(BST("\"Principal\": {\"AWS\": \"arn:aws:iam::" ACCT ":group/x\"},"), "Invalid principal");
    assert_invalid_bucket(BST("\"Principal\": \"*\", \"NotPrincipal\": \"*\","), "cannot both");
    assert_invalid_bucket("{\"Statement\": []}", "non-empty");
    /* and identity policies still refuse a Principal */
    assert_invalid(BST("\"Principal\": \"*\","), "must not specify a Principal");
#undef BST
}

static void test_global_keys(void **state)
{
    (void)state;
    json_t *caller = load("{\"account_id\": \"" ACCT "\", \"user_name\": \"alice\", \"user_id\": \"AIDAX\","
                          " \"arn\": \"arn:aws:iam::" ACCT ":user/alice\", \"is_admin\": false}");
    policy_globals_t g = {.caller = caller, .source_ip = "127.0.0.1", .user_agent = "ua", .now = 1796529600};
    const char *v;
    assert_int_equal(policy_global_key(&g, "aws:SourceIp", &v), 1);
    assert_string_equal(v, "127.0.0.1");
    assert_int_equal(policy_global_key(&g, "aws:PrincipalAccount", &v), 1);
    assert_string_equal(v, ACCT);
    assert_int_equal(policy_global_key(&g, "aws:username", &v), 1);
    assert_string_equal(v, "alice");
    assert_int_equal(policy_global_key(&g, "aws:PrincipalType", &v), 1);
    assert_string_equal(v, "User");
    assert_int_equal(policy_global_key(&g, "aws:CurrentTime", &v), 1);
    assert_string_equal(v, "2026-12-06T04:00:00Z");
    assert_int_equal(policy_global_key(&g, "aws:EpochTime", &v), 1);
    assert_string_equal(v, "1796529600");
    assert_int_equal(policy_global_key(&g, "aws:SecureTransport", &v), 1);
    assert_string_equal(v, "false");
    assert_int_equal(policy_global_key(&g, "aws:Referer", &v), 0);
    assert_int_equal(policy_global_key(&g, "s3:prefix", &v), -1);
    g.caller = NULL;
    assert_int_equal(policy_global_key(&g, "aws:username", &v), 0);
    assert_int_equal(policy_global_key(&g, "aws:PrincipalType", &v), 1);
    assert_string_equal(v, "Anonymous");
    json_decref(caller);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_glob_pathological),
        cmocka_unit_test(test_allow_and_implicit_deny),
        cmocka_unit_test(test_explicit_deny),
        cmocka_unit_test(test_action_wildcards),
        cmocka_unit_test(test_case_sensitivity),
        cmocka_unit_test(test_resource_arns),
        cmocka_unit_test(test_not_action_not_resource),
        cmocka_unit_test(test_deny_across_documents),
        cmocka_unit_test(test_fail_closed),
        cmocka_unit_test(test_validate_ok),
        cmocka_unit_test(test_validate_errors),
        cmocka_unit_test(test_condition_strings),
        cmocka_unit_test(test_condition_numbers_dates_bools),
        cmocka_unit_test(test_condition_ip),
        cmocka_unit_test(test_condition_unknown_keys),
        cmocka_unit_test(test_condition_validation),
        cmocka_unit_test(test_principals),
        cmocka_unit_test(test_resource_policy_validation),
        cmocka_unit_test(test_global_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
