/* test_policy.c - unit tests for common/policy.c: the glob ('*', '?', case folding, and
 * patterns that would blow up a naive recursive matcher), evaluation (Allow, explicit and
 * implicit deny, action wildcards, case-insensitive actions and case-sensitive resource
 * ARNs, NotAction/NotResource, Deny winning across documents, failing closed on
 * statements it cannot understand) and validation of stored documents. */
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
                   "Condition is not supported");
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
