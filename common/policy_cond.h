/* policy_cond.h - the Condition element of policy statements (policy_cond.c), for
 * policy.c only. */
#ifndef VIRGA_POLICY_COND_H
#define VIRGA_POLICY_COND_H

#include "policy.h"

/* Check a statement's Condition element; code is the error code of the document kind. */
int policy_cond_validate(const json_t *cond, size_t sn, const char *code, verr_t *e);
/* 1 the block holds for the request, 0 it does not, -1 it cannot be decided here (a key
 * the evaluator does not know, or a block that never passed validation). */
int policy_cond_holds(const json_t *cond, const policy_request_t *q);

#endif
