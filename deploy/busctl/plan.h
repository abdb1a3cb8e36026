/* plan.h - what the broker must hold for a Virga cloud: its topics (partitions,
 * retention) and, for every principal, the ACLs that let it do its job and nothing else
 * (docs/security.md has the same table in prose). One source of truth for devcloud and
 * for a deployment on an existing cluster (virga-busctl provision). */
#ifndef VIRGA_BUSCTL_PLAN_H
#define VIRGA_BUSCTL_PLAN_H

#include <jansson.h>

/* {"topics": [{"name", "partitions", "retention_ms"}],
 *  "acls":   [{"principal", "resource": "topic"|"group", "pattern": "literal"|"prefixed",
 *              "name", "operation": "read"|"write"|"describe"}]}
 * for the fixed principals and one agent per host id in agents (NULL-terminated). */
json_t *plan_build(const char *const *agents);

#endif
