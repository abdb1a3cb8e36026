/* sg_rule.h - security group rules from the request to one canonical form.
 *
 * EC2 takes rules as IpPermissions.N (IpProtocol, FromPort, ToPort, IpRanges.M.CidrIp,
 * Groups.M.GroupId/GroupName/UserId) or, the old way, as flat parameters (IpProtocol,
 * FromPort, ToPort, CidrIp, SourceSecurityGroupName, SourceSecurityGroupOwnerId). Both
 * become a list of rules with one source each, the form the sg_rules table keeps and
 * DescribeSecurityGroupRules shows:
 *   {"protocol": "tcp"|"udp"|"icmp"|"-1"|"<number>", "from_port": n, "to_port": n,
 *    "cidr": "10.0.0.0/8" | "group_id": "sg-..." | "group_name": "web",
 *    "description": "..."}
 * Protocols by name or number ("6" is "tcp", "all" is "-1"); TCP and UDP need a port
 * range 0..65535 with from <= to; ICMP takes type and code (-1 any; a code needs a
 * type); "-1" and other protocols have no ports (-1, -1). Pure: group references are
 * resolved by the caller. */
#ifndef VIRGA_NETWORK_SG_RULE_H
#define VIRGA_NETWORK_SG_RULE_H

#include <jansson.h>

#include "err.h"

/* The request's rules (body of Authorize/Revoke...) as a new array of canonical
 * rules, or NULL + InvalidParameterValue / MissingParameter / InvalidPermission.Malformed. */
json_t *sg_rules_from_request(const json_t *body, verr_t *e);

/* One IpPermission ({"IpProtocol", "FromPort", ...}) appended to out as canonical rules. */
int sg_rules_from_permission(const json_t *perm, json_t *out, verr_t *e);

/* Canonical protocol name for "tcp"/"6"/"TCP"..., or NULL if not a protocol. Writes into buf. */
const char *sg_protocol(const char *in, char buf[8]);

#endif
