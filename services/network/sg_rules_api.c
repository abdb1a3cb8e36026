/* sg_rules_api.c - AuthorizeSecurityGroupIngress/Egress, RevokeSecurityGroupIngress/
 * Egress, DescribeSecurityGroupRules. Rules arrive in either of EC2's forms and are
 * normalised by sg_rule.c into one row per source; a rule that exists already is
 * InvalidPermission.Duplicate (the table's unique constraint), one that does not is
 * InvalidPermission.NotFound, and the whole request changes nothing on any error. Every
 * change bumps the datapath generation of the hosts running the group's VPC. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "jsonutil.h"
#include "network.h"
#include "sg_rule.h"
#include "tags.h"

/* A rule's group reference as an id of a group of the same account and VPC: a tenant
 * can refer only to its own groups. */
static int resolve_ref(db_t *db, json_t *rule, const char *account, const char *vpc, verr_t *e)
{
    const char *gid = json_str(rule, "group_id", NULL), *name = json_str(rule, "group_name", NULL);
    if (!gid && !name)
        return 0;
    const char *p[] = {gid ? gid : name, account, vpc};
    PG_AUTO PGresult *r = gid
        ? db_prepared(db, e, "sg_ref_id", "SELECT id FROM security_groups WHERE id = $1 AND account_id = $2 "
                      "AND vpc_id = $3", 3, p)
        : db_prepared(db, e, "sg_ref_name", "SELECT id FROM security_groups WHERE name = $1 AND account_id = $2 "
                      "AND vpc_id = $3", 3, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 400, "InvalidGroup.NotFound", "The security group '%.64s' does not exist in VPC '%s'",
                        gid ? gid : name, vpc);
    json_object_set_new(rule, "group_id", json_string(PQgetvalue(r, 0, 0)));
    json_object_del(rule, "group_name");
    return 0;
}

static json_t *rule_item(const char *id, const char *group, const char *account, int egress, const json_t *rule)
{
    json_t *it = json_pack("{s:s, s:s, s:s, s:b, s:s, s:I, s:I, s:s, s:[]}", "securityGroupRuleId", id, "groupId",
                           group, "groupOwnerId", account, "isEgress", egress, "ipProtocol",
                           json_str(rule, "protocol", ""), "fromPort", json_int(rule, "from_port", -1), "toPort",
                           json_int(rule, "to_port", -1), "description", json_str(rule, "description", ""), "tagSet");
    if (json_str(rule, "cidr", NULL))
        json_object_set_new(it, "cidrIpv4", json_string(json_str(rule, "cidr", "")));
    else
        json_object_set_new(it, "referencedGroupInfo",
                            json_pack("{s:s, s:s}", "groupId", json_str(rule, "group_id", ""), "userId", account));
    return it;
}

/* At most network.rules_per_group rules (60, AWS's default) per group and direction,
 * counted with the new ones inside the caller's transaction, which holds the group's row
 * lock: concurrent authorizations of one group queue, so the count is exact. */
static int within_rule_limit(bus_ctx_t *ctx, const char *group, int egress, verr_t *e)
{
    long max = config_int(service_of(ctx)->cfg, "network.rules_per_group", 60);
    const char *p[] = {group, egress ? "t" : "f"};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "sg_rule_count",
                                      "SELECT count(*) FROM sg_rules WHERE group_id = $1 AND egress = $2", 2, p);
    if (!r)
        return -1;
    if (atol(PQgetvalue(r, 0, 0)) > max)
        return verr_set(e, 400, "RulesPerSecurityGroupLimitExceeded",
                        "The maximum number of rules per security group (%ld %s) has been reached", max,
                        egress ? "outbound" : "inbound");
    return 0;
}

static int authorize(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e, int egress)
{
    const char *account = net_account(ctx, e);
    char group[IDS_MAX], vpc[IDS_MAX];
    if (!account)
        return -1;
    JSON_AUTO json_t *rules = sg_rules_from_request(body, e);
    if (!rules || sg_resolve(ctx, body, account, !egress, group, vpc, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    json_t *set = json_array(), *rule;
    size_t i;
    if (db_begin(db, e) < 0 || net_owned(db, &NET_SG, group, account, 1, e) < 0)
        goto fail;
    json_array_foreach(rules, i, rule) {
        if (resolve_ref(db, rule, account, vpc, e) < 0)
            goto fail;
        char id[IDS_MAX], from[16], to[16];
        ids_new("sgr", id);
        snprintf(from, sizeof from, "%lld", (long long)json_int(rule, "from_port", -1));
        snprintf(to, sizeof to, "%lld", (long long)json_int(rule, "to_port", -1));
        const char *p[] = {id, group, egress ? "t" : "f", json_str(rule, "protocol", ""), from, to,
                           json_str(rule, "cidr", NULL), json_str(rule, "group_id", NULL),
                           json_str(rule, "description", "")};
        PG_AUTO PGresult *r = db_prepared(db, e, "sg_rule_add",
            "INSERT INTO sg_rules (id, group_id, egress, protocol, from_port, to_port, cidr, ref_group, description) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING", 9, p);
        if (!r)
            goto fail;
        if (strcmp(PQcmdTuples(r), "1")) {
            verr_set(e, 400, "InvalidPermission.Duplicate", "the specified rule \"peer: %s, %s, ALLOW\" already exists",
                     json_str(rule, "cidr", json_str(rule, "group_id", "")), json_str(rule, "protocol", ""));
            goto fail;
        }
        json_array_append_new(set, rule_item(id, group, account, egress, rule));
    }
    if (within_rule_limit(ctx, group, egress, e) < 0 || net_dry_run(body, e) < 0 ||
        hosts_touch_vpc(db, vpc, NULL, e) < 0 || db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:b, s:o}", "return", 1, "securityGroupRuleSet", set);
    return 0;
fail:
    db_rollback(db);
    json_decref(set);
    return -1;
}

int net_authorize_ingress(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return authorize(ctx, body, reply, e, 0);
}

int net_authorize_egress(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return authorize(ctx, body, reply, e, 1);
}

/* Delete the rule rows a request names, by SecurityGroupRuleId.N or by permission. */
static int revoke_rules(db_t *db, const json_t *body, const char *account, const char *group, const char *vpc,
                        int egress, verr_t *e)
{
    json_t *ids = json_object_get(body, "SecurityGroupRuleId"), *x;
    size_t i;
    json_array_foreach(ids, i, x) {
        const char *p[] = {json_is_string(x) ? json_string_value(x) : "", group, egress ? "t" : "f"};
        PG_AUTO PGresult *r = db_prepared(db, e, "sg_rule_del_id", "DELETE FROM sg_rules WHERE id = $1 AND "
                                          "group_id = $2 AND egress = $3", 3, p);
        if (!r)
            return -1;
        if (strcmp(PQcmdTuples(r), "1"))
            return verr_set(e, 400, "InvalidSecurityGroupRuleId.NotFound", "The security group rule ID '%.64s' does "
                            "not exist", p[0]);
    }
    if (json_array_size(ids) && !json_object_get(body, "IpPermissions") && !json_object_get(body, "IpProtocol"))
        return 0;
    JSON_AUTO json_t *rules = sg_rules_from_request(body, e);
    if (!rules)
        return -1;
    json_array_foreach(rules, i, x) {
        if (resolve_ref(db, x, account, vpc, e) < 0)
            return -1;
        char from[16], to[16];
        snprintf(from, sizeof from, "%lld", (long long)json_int(x, "from_port", -1));
        snprintf(to, sizeof to, "%lld", (long long)json_int(x, "to_port", -1));
        const char *p[] = {group, egress ? "t" : "f", json_str(x, "protocol", ""), from, to, json_str(x, "cidr", NULL),
                           json_str(x, "group_id", NULL)};
        PG_AUTO PGresult *r = db_prepared(db, e, "sg_rule_del",
            "DELETE FROM sg_rules WHERE group_id = $1 AND egress = $2 AND protocol = $3 AND from_port = $4 AND "
            "to_port = $5 AND cidr IS NOT DISTINCT FROM $6::cidr AND ref_group IS NOT DISTINCT FROM $7", 7, p);
        if (!r)
            return -1;
        if (strcmp(PQcmdTuples(r), "1"))
            return verr_set(e, 400, "InvalidPermission.NotFound", "The specified rule does not exist in this security "
                            "group.");
    }
    return 0;
}

static int revoke(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e, int egress)
{
    const char *account = net_account(ctx, e);
    char group[IDS_MAX], vpc[IDS_MAX];
    if (!account || sg_resolve(ctx, body, account, !egress, group, vpc, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    if (db_begin(db, e) < 0 || net_owned(db, &NET_SG, group, account, 1, e) < 0 ||
        revoke_rules(db, body, account, group, vpc, egress, e) < 0 || net_dry_run(body, e) < 0 ||
        hosts_touch_vpc(db, vpc, NULL, e) < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;
    }
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
}

int net_revoke_ingress(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return revoke(ctx, body, reply, e, 0);
}

int net_revoke_egress(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return revoke(ctx, body, reply, e, 1);
}

int net_describe_security_group_rules(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    static const describe_field_t fields[] = {
        {"group-id", "groupId"}, {"security-group-rule-id", "securityGroupRuleId"}, {NULL, NULL}};
    const char *account = net_account(ctx, e);
    if (!account)
        return -1;
    JSON_AUTO json_t *rows = sg_rule_rows(service_db(ctx), account, NULL, e);
    if (!rows)
        return -1;
    json_t *items = json_array(), *r;
    size_t i;
    json_array_foreach(rows, i, r) {
        JSON_AUTO json_t *rule = json_pack("{s:s, s:I, s:I, s:s?, s:s?, s:s}", "protocol", json_str(r, "protocol", ""),
                                           "from_port", json_int(r, "from_port", -1), "to_port",
                                           json_int(r, "to_port", -1), "cidr", json_str(r, "cidr", NULL), "group_id",
                                           json_str(r, "ref_group", NULL), "description",
                                           json_str(r, "description", ""));
        json_array_append_new(items, rule_item(json_str(r, "id", ""), json_str(r, "group_id", ""), account,
                                               json_bool(r, "egress", 0), rule));
    }
    return net_describe(items, body, "SecurityGroupRuleId", "securityGroupRuleId",
                        "InvalidSecurityGroupRuleId.NotFound", fields, 1, "securityGroupRuleSet", reply, e);
}
