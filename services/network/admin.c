/* admin.c - the operator's view of every account's network (virgadm network list/show):
 *   network.admin_list {account_id?}  -> {"accounts": [{account_id, elastic_ips, vpcs: [...]}]}
 *   network.admin_show {account_id}   -> that account's VPCs, subnets, groups, interfaces
 *                                        and addresses, whole
 * Served to the operator's principal only (the route's sender mask, and checked again
 * here from the message's signature): a tenant's caller never reaches it, and no gateway
 * action names it. Read-only. */
#include <string.h>

#include "jsonutil.h"
#include "enis.h"
#include "network.h"

static int operator_only(bus_ctx_t *ctx, verr_t *e)
{
    if (ctx->msg->from && ctx->msg->from->kind == BUS_P_OPERATOR)
        return 0;
    return verr_set(e, 403, "UnauthorizedOperation", "%s is for the operator only", ctx->msg->type);
}

static int valid_account(const char *a, verr_t *e)
{
    if (a && strlen(a) == 12 && strspn(a, "0123456789") == 12)
        return 0;
    return verr_set(e, 400, "InvalidParameterValue", "account_id is 12 digits");
}

/* One query, its single text column a JSON array (or object), as a new reference. */
static json_t *json_query(db_t *db, const char *name, const char *sql, int n, const char *const *p, verr_t *e)
{
    PG_AUTO PGresult *r = db_prepared(db, e, name, sql, n, p);
    if (!r)
        return NULL;
    json_t *j = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    return j ? j : json_array();
}

int net_admin_list(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = json_str(body, "account_id", NULL);
    if (operator_only(ctx, e) < 0 || (account && valid_account(account, e) < 0))
        return -1;
    const char *p[] = {account};
    json_t *accounts = json_query(service_db(ctx), "adm_list",
        "SELECT coalesce(json_agg(a ORDER BY a.account_id), '[]')::text FROM ("
        " SELECT v.account_id, (SELECT count(*) FROM elastic_ips x WHERE x.account_id = v.account_id) AS elastic_ips,"
        "  json_agg(json_build_object('vpc_id', v.id, 'cidr', v.cidr::text, 'vni', v.vni, 'is_default', v.is_default,"
        "   'subnets', (SELECT count(*) FROM subnets s WHERE s.vpc_id = v.id),"
        "   'security_groups', (SELECT count(*) FROM security_groups g WHERE g.vpc_id = v.id),"
        "   'interfaces', (SELECT count(*) FROM enis n WHERE n.vpc_id = v.id),"
        "   'plugged', (SELECT count(*) FROM enis n WHERE n.vpc_id = v.id AND n.plugged),"
        "   'hosts', (SELECT coalesce(json_agg(DISTINCT n.host), '[]') FROM enis n WHERE n.vpc_id = v.id AND n.plugged))"
        "   ORDER BY v.id) AS vpcs"
        " FROM vpcs v WHERE $1::text IS NULL OR v.account_id = $1 GROUP BY v.account_id) a", 1, p, e);
    if (!accounts)
        return -1;
    *reply = json_pack("{s:o}", "accounts", accounts);
    return 0;
}

int net_admin_show(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = json_str(body, "account_id", NULL);
    if (operator_only(ctx, e) < 0 || valid_account(account, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    const char *p[] = {account};
    static const struct {
        const char *key, *name, *sql;
    } parts[] = {
        {"vpcs", "adm_vpcs", "SELECT coalesce(json_agg(json_build_object('vpc_id', id, 'cidr', cidr::text, 'vni', vni, "
         "'is_default', is_default) ORDER BY id), '[]')::text FROM vpcs WHERE account_id = $1"},
        {"subnets", "adm_subnets", "SELECT coalesce(json_agg(json_build_object('subnet_id', id, 'vpc_id', vpc_id, 'cidr', "
         "cidr::text, 'availability_zone', az, 'is_default', is_default) ORDER BY id), '[]')::text FROM subnets WHERE "
         "account_id = $1"},
        {"security_groups", "adm_groups", "SELECT coalesce(json_agg(json_build_object('group_id', g.id, 'name', g.name, "
         "'vpc_id', g.vpc_id, 'rules', (SELECT count(*) FROM sg_rules r WHERE r.group_id = g.id)) ORDER BY g.id), "
         "'[]')::text FROM security_groups g WHERE g.account_id = $1"},
        {"addresses", "adm_addrs", "SELECT coalesce(json_agg(json_build_object('allocation_id', id, 'public_ip', "
         "host(public_ip), 'network_interface_id', eni_id, 'auto_assigned', auto_assigned) ORDER BY id), '[]')::text "
         "FROM addresses WHERE "
         "account_id = $1"},
    };
    json_t *out = json_pack("{s:s}", "account_id", account);
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        json_t *j = json_query(db, parts[i].name, parts[i].sql, 1, p, e);
        if (!j) {
            json_decref(out);
            return -1;
        }
        json_object_set_new(out, parts[i].key, j);
    }
    json_t *enis = eni_items(db, account, NULL, e);
    if (!enis) {
        json_decref(out);
        return -1;
    }
    json_object_set_new(out, "network_interfaces", enis);
    *reply = out;
    return 0;
}
