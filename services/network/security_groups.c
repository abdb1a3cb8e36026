/* security_groups.c - CreateSecurityGroup, DescribeSecurityGroups, DeleteSecurityGroup
 * and the "default" group every VPC has. A group belongs to one VPC; its name is unique
 * in the VPC. New groups allow all egress and no ingress, as on AWS; the default group
 * also lets its own members in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "jsonutil.h"
#include "network.h"
#include "tags.h"

static int insert_rule(db_t *db, const char *group, int egress, const char *cidr, const char *ref, verr_t *e)
{
    char id[IDS_MAX];
    ids_new("sgr", id);
    const char *p[] = {id, group, egress ? "t" : "f", cidr, ref};
    PG_AUTO PGresult *r = db_prepared(db, e, "sg_rule_default",
        "INSERT INTO sg_rules (id, group_id, egress, protocol, from_port, to_port, cidr, ref_group) "
        "VALUES ($1, $2, $3, '-1', -1, -1, $4, $5)", 5, p);
    return r ? 0 : -1;
}

static int insert_group(db_t *db, const char *id, const char *account, const char *vpc, const char *name,
                        const char *desc, verr_t *e)
{
    const char *p[] = {id, account, vpc, name, desc};
    PG_AUTO PGresult *r = db_prepared(db, e, "sg_insert", "INSERT INTO security_groups (id, account_id, vpc_id, name, "
                                      "description) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (vpc_id, name) DO NOTHING",
                                      5, p);
    if (!r)
        return -1;
    if (strcmp(PQcmdTuples(r), "1"))
        return verr_set(e, 400, "InvalidGroup.Duplicate", "The security group '%.255s' already exists for VPC '%s'",
                        name, vpc);
    return insert_rule(db, id, 1, "0.0.0.0/0", NULL, e);
}

int default_group_create(db_t *db, const char *account, const char *vpc_id, char *sg_id, verr_t *e)
{
    ids_new("sg", sg_id);
    if (insert_group(db, sg_id, account, vpc_id, "default", "default VPC security group", e) < 0)
        return -1;
    return insert_rule(db, sg_id, 0, NULL, sg_id, e);
}

static int valid_text(const char *what, const char *s, verr_t *e)
{
    size_t n = s ? strlen(s) : 0;
    int ok = n >= 1 && n <= 255;
    for (size_t i = 0; ok && i < n; i++)
        ok = s[i] >= 0x20 && s[i] < 0x7f;
    if (!ok)
        return verr_set(e, 400, "InvalidParameterValue", "Value for %s is invalid: 1 to 255 ASCII characters", what);
    return 0;
}

/* At most network.groups_per_vpc groups (2500, AWS's default) in a VPC, its default group
 * included; counted under the VPC's row lock the caller holds, so concurrent creates queue
 * and the count is exact. */
static int within_group_limit(bus_ctx_t *ctx, const char *vpc, verr_t *e)
{
    long max = config_int(service_of(ctx)->cfg, "network.groups_per_vpc", 2500);
    const char *p[] = {vpc};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "sg_count_vpc",
                                      "SELECT count(*) FROM security_groups WHERE vpc_id = $1", 1, p);
    if (!r)
        return -1;
    if (atol(PQgetvalue(r, 0, 0)) >= max)
        return verr_set(e, 400, "SecurityGroupLimitExceeded",
                        "The maximum number of security groups for VPC '%s' (%ld) has been reached", vpc, max);
    return 0;
}

int net_create_security_group(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e);
    const char *name = json_str(body, "GroupName", NULL), *desc = json_str(body, "GroupDescription", NULL);
    if (!account || valid_text("GroupName", name, e) < 0 || valid_text("GroupDescription", desc, e) < 0)
        return -1;
    if (!strcmp(name, "default") || !strncmp(name, "sg-", 3))
        return verr_set(e, 400, "InvalidParameterValue", "Cannot use reserved security group name: %s", name);
    JSON_AUTO json_t *tags = describe_tag_spec(body, "security-group", e);
    if (!tags)
        return -1;
    char vpc_buf[IDS_MAX];
    const char *vpc = json_str(body, "VpcId", NULL);
    if (!vpc) {
        if (default_vpc(ctx, account, vpc_buf, e) < 0)
            return -1;
        vpc = vpc_buf;
    }
    db_t *db = service_db(ctx);
    char id[IDS_MAX];
    ids_new("sg", id);
    if (db_begin(db, e) < 0 || net_owned(db, &NET_VPC, vpc, account, 1, e) < 0 ||
        within_group_limit(ctx, vpc, e) < 0 || net_dry_run(body, e) < 0 ||
        insert_group(db, id, account, vpc, name, desc, e) < 0 || tags_put(db, id, account, tags, e) < 0 ||
        db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;
    }
    *reply = json_pack("{s:s, s:O}", "groupId", id, "tagSet", tags);
    return 0;
}

int sg_resolve(bus_ctx_t *ctx, const json_t *body, const char *account, int allow_name, char *id, char *vpc,
               verr_t *e)
{
    const char *gid = json_str(body, "GroupId", NULL), *name = allow_name ? json_str(body, "GroupName", NULL) : NULL;
    db_t *db = service_db(ctx);
    PG_AUTO PGresult *r = NULL;
    if (gid) {
        const char *p[] = {gid, account};
        r = db_prepared(db, e, "sg_by_id", "SELECT id, vpc_id FROM security_groups WHERE id = $1 AND account_id = $2",
                        2, p);
    } else if (name) {
        char def[IDS_MAX];
        if (default_vpc(ctx, account, def, e) < 0)
            return -1;
        const char *p[] = {name, def};
        r = db_prepared(db, e, "sg_by_name", "SELECT id, vpc_id FROM security_groups WHERE name = $1 AND vpc_id = $2",
                        2, p);
    } else {
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter GroupId%s",
                        allow_name ? " or GroupName" : "");
    }
    if (!r)
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 400, "InvalidGroup.NotFound", "The security group '%.64s' does not exist",
                        gid ? gid : name);
    snprintf(id, IDS_MAX, "%s", PQgetvalue(r, 0, 0));
    snprintf(vpc, IDS_MAX, "%s", PQgetvalue(r, 0, 1));
    return 0;
}

json_t *sg_rule_rows(db_t *db, const char *account, const char *group_ids, verr_t *e)
{
    const char *p[] = {account, group_ids};
    PG_AUTO PGresult *r = db_prepared(db, e, "sg_rule_rows",
        "SELECT r.id, r.group_id, r.egress, r.protocol, r.from_port, r.to_port, r.cidr, r.ref_group, r.description, "
        "g.account_id FROM sg_rules r JOIN security_groups g ON g.id = r.group_id "
        "WHERE ($1::text IS NULL OR g.account_id = $1) AND ($2::text[] IS NULL OR g.id = ANY($2::text[])) "
        "ORDER BY r.id", 2, p);
    if (!r)
        return NULL;
    json_t *out = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(out, json_pack(
            "{s:s, s:s, s:b, s:s, s:i, s:i, s:s?, s:s?, s:s, s:s}", "id", PQgetvalue(r, i, 0), "group_id",
            PQgetvalue(r, i, 1), "egress", PQgetvalue(r, i, 2)[0] == 't', "protocol", PQgetvalue(r, i, 3), "from_port",
            atoi(PQgetvalue(r, i, 4)), "to_port", atoi(PQgetvalue(r, i, 5)), "cidr",
            PQgetisnull(r, i, 6) ? NULL : PQgetvalue(r, i, 6), "ref_group", PQgetisnull(r, i, 7) ? NULL : PQgetvalue(r, i, 7),
            "description", PQgetvalue(r, i, 8), "account_id", PQgetvalue(r, i, 9)));
    return out;
}

/* EC2's IpPermission list from rule rows: one permission per (protocol, ports), with
 * its CIDRs and groups. */
static json_t *permissions(const json_t *rules, const char *group, int egress)
{
    json_t *perms = json_array(), *r;
    size_t i;
    json_array_foreach(rules, i, r) {
        if (strcmp(json_str(r, "group_id", ""), group) || json_bool(r, "egress", 0) != egress)
            continue;
        json_t *perm = NULL, *p;
        size_t j;
        json_array_foreach(perms, j, p)
            if (!strcmp(json_str(p, "ipProtocol", ""), json_str(r, "protocol", "")) &&
                json_int(p, "fromPort", 0) == json_int(r, "from_port", 0) &&
                json_int(p, "toPort", 0) == json_int(r, "to_port", 0))
                perm = p;
        if (!perm) {
            perm = json_pack("{s:s, s:I, s:I, s:[], s:[], s:[], s:[]}", "ipProtocol", json_str(r, "protocol", ""),
                             "fromPort", json_int(r, "from_port", 0), "toPort", json_int(r, "to_port", 0), "groups",
                             "ipRanges", "ipv6Ranges", "prefixListIds");
            if (!strcmp(json_str(r, "protocol", ""), "-1")) {   /* EC2 shows no ports for all traffic */
                json_object_del(perm, "fromPort");
                json_object_del(perm, "toPort");
            }
            json_array_append_new(perms, perm);
        }
        const char *desc = json_str(r, "description", "");
        json_t *src = json_str(r, "cidr", NULL)
            ? json_pack("{s:s}", "cidrIp", json_str(r, "cidr", ""))
            : json_pack("{s:s, s:s}", "groupId", json_str(r, "ref_group", ""), "userId", json_str(r, "account_id", ""));
        if (*desc)
            json_object_set_new(src, "description", json_string(desc));
        json_array_append_new(json_object_get(perm, json_str(r, "cidr", NULL) ? "ipRanges" : "groups"), src);
    }
    return perms;
}

/* Every group of the account as DescribeSecurityGroups shows it (sg_cache.c keeps it). */
static json_t *listing(db_t *db, const char *account, verr_t *e)
{
    const char *p[] = {account};
    PG_AUTO PGresult *r = db_prepared(db, e, "sg_all", "SELECT id, name, description, vpc_id FROM security_groups "
                                      "WHERE account_id = $1 ORDER BY id", 1, p);
    JSON_AUTO json_t *rules = r ? sg_rule_rows(db, account, NULL, e) : NULL;
    JSON_AUTO json_t *tags = rules ? net_tags(db, account, e) : NULL;
    if (!tags)
        return NULL;
    /* each group's rules, found once: scanning every rule for every group made a listing
     * of 1,000 groups cost a million comparisons */
    JSON_AUTO json_t *by_group = json_object();
    JSON_AUTO json_t *none = json_array();
    json_t *rule;
    size_t k;
    json_array_foreach(rules, k, rule) {
        const char *gid = json_str(rule, "group_id", "");
        json_t *list = json_object_get(by_group, gid);
        if (!list)
            json_object_set_new(by_group, gid, list = json_array());
        json_array_append(list, rule);
    }
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0);
        const json_t *mine = json_object_get(by_group, id) ? json_object_get(by_group, id) : none;
        json_array_append_new(items, json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "groupId", id, "groupName", PQgetvalue(r, i, 1),
            "groupDescription", PQgetvalue(r, i, 2), "ownerId", account, "vpcId", PQgetvalue(r, i, 3), "ipPermissions",
            permissions(mine, id, 0), "ipPermissionsEgress", permissions(mine, id, 1), "tagSet", net_tag_set(tags, id)));
    }
    return items;
}

int net_describe_security_groups(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    static const describe_field_t fields[] = {
        {"group-id", "groupId"}, {"group-name", "groupName"}, {"vpc-id", "vpcId"}, {"description", "groupDescription"},
        {"owner-id", "ownerId"}, {"ip-permission.protocol", "ipPermissions.ipProtocol"},
        {"egress.ip-permission.protocol", "ipPermissionsEgress.ipProtocol"}, {NULL, NULL}};
    const char *account = net_account(ctx, e);
    char def[IDS_MAX];
    if (!account || default_vpc(ctx, account, def, e) < 0)
        return -1;
    /* shared with other calls: selected, filtered and paged into new arrays, never changed */
    json_t *items = sg_listing(service_db(ctx), account, listing, e);
    if (!items)
        return -1;
    /* GroupName.N names groups of the default VPC, as on AWS */
    json_t *names = json_object_get(body, "GroupName");
    if (json_is_array(names)) {
        JSON_AUTO json_t *in_default = json_array();
        size_t k;
        json_t *it;
        json_array_foreach(items, k, it)
            if (!strcmp(json_str(it, "vpcId", ""), def))
                json_array_append(in_default, it);
        const char *missing = NULL;
        json_t *named = describe_select(in_default, body, "GroupName", "groupName", &missing);
        json_decref(items);
        if (!named)
            return verr_set(e, 400, "InvalidGroup.NotFound", "The security group '%.255s' does not exist in default VPC "
                            "'%s'", missing, def);
        items = named;
    }
    return net_describe(items, body, "GroupId", "groupId", "InvalidGroup.NotFound", fields, 1, "securityGroupInfo",
                        reply, e);
}

/* Why a group cannot go: an interface uses it, another group's rule refers to it. */
static int group_in_use(db_t *db, const char *id, verr_t *e)
{
    const char *p[] = {id};
    PG_AUTO PGresult *n = db_prepared(db, e, "sg_used_eni", "SELECT eni_id FROM eni_groups WHERE group_id = $1 LIMIT 1",
                                      1, p);
    PG_AUTO PGresult *g = n ? db_prepared(db, e, "sg_used_ref", "SELECT group_id FROM sg_rules WHERE ref_group = $1 "
                                          "AND group_id <> $1 LIMIT 1", 1, p) : NULL;
    if (!g)
        return -1;
    if (PQntuples(n))
        return verr_set(e, 400, "DependencyViolation", "resource %s has a dependent object (network interface %s)", id,
                        PQgetvalue(n, 0, 0));
    if (PQntuples(g))
        return verr_set(e, 400, "InvalidGroup.InUse", "Group %s is used by groups in other accounts or by group %s",
                        id, PQgetvalue(g, 0, 0));
    return 0;
}

int net_delete_security_group(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e);
    char id[IDS_MAX], vpc[IDS_MAX];
    if (!account || sg_resolve(ctx, body, account, 1, id, vpc, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    const char *p[] = {id};
    PG_AUTO PGresult *n = NULL;
    PG_AUTO PGresult *d = NULL;
    if (db_begin(db, e) < 0 || net_owned(db, &NET_SG, id, account, 1, e) < 0 ||
        !(n = db_prepared(db, e, "sg_name", "SELECT name FROM security_groups WHERE id = $1", 1, p)))
        goto fail;
    if (!strcmp(PQgetvalue(n, 0, 0), "default")) {
        verr_set(e, 400, "CannotDelete", "the specified group: \"%s\" name: \"default\" cannot be deleted by a user", id);
        goto fail;
    }
    if (group_in_use(db, id, e) < 0 || net_dry_run(body, e) < 0 ||
        !(d = db_prepared(db, e, "sg_del", "DELETE FROM security_groups WHERE id = $1", 1, p)) ||
        net_untag(db, id, e) < 0 || hosts_touch_vpc(db, vpc, NULL, e) < 0 || db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:b, s:s}", "return", 1, "groupId", id);
    return 0;
fail:
    db_rollback(db);
    return -1;
}
