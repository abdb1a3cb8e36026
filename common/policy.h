/* policy.h - IAM-style policy evaluation, done by the gateway on every request.
 *
 * A policy document is JSON: {"Version": "2012-10-17", "Statement": [ {"Effect":
 * "Allow"|"Deny", "Action": "ec2:Describe*" | [...], "Resource": "*" | "arn:..." | [...]}
 * ]} (a single Statement object is accepted too; NotAction/NotResource too).
 * Matching is case-insensitive for actions ("ec2:describe*" matches
 * "ec2:DescribeKeyPairs") and case-sensitive for resources; '*' matches any run of
 * characters and '?' one character. An explicit Deny in any document wins over every
 * Allow; with no matching Allow the answer is an implicit deny. */
#ifndef VIRGA_POLICY_H
#define VIRGA_POLICY_H

#include <jansson.h>

#include "err.h"

typedef enum policy_decision {
    POLICY_IMPLICIT_DENY = 0,
    POLICY_ALLOW = 1,
    POLICY_EXPLICIT_DENY = 2,
} policy_decision_t;

/* Check that a document is well-formed (for PutUserPolicy): MalformedPolicyDocument 400
 * with a message saying what is wrong. */
int policy_validate(const json_t *doc, verr_t *e);
/* Evaluate an array of documents (or a single document) for action ("ec2:RunInstances")
 * and resource ("*" or an ARN). */
policy_decision_t policy_evaluate(const json_t *docs, const char *action, const char *resource);
/* Glob match used above; exposed for tests. ci = case-insensitive. */
int policy_glob(const char *pattern, const char *s, int ci);

#endif
