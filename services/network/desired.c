/* desired.c - network.host_desired {host}: the one document the host's datapath applies
 * (/work/notes/datapath-desired.md, docs/network.md "Datapath desired state"): the
 * VPCs, subnets, interfaces plugged on the host, their security groups with rules, the
 * addresses of every member of the groups the rules refer to, and the public pool. Read
 * in one REPEATABLE READ transaction, so the document is one consistent state and its
 * generation is the one that state had. Callers: compute, or the host's own agent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caller.h"
#include "cidr.h"
#include "ids.h"
#include "ipam.h"
#include "jsonutil.h"
#include "network.h"
#include "strbuf.h"

static json_t *jparse(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);
    return j ? j : json_array();
}

static json_t *interfaces(db_t *db, const char *host, json_t *groups, verr_t *e)
{
    const char *p[] = {host};
    PG_AUTO PGresult *r = db_prepared(db, e, "hd_ifaces",
        "SELECT n.id, n.vpc_id, n.subnet_id, n.mac::text, host(n.ip), masklen(s.cidr), host(a.public_ip), "
        "(SELECT coalesce(json_agg(group_id ORDER BY group_id), '[]') FROM eni_groups WHERE eni_id = n.id)::text, "
        "n.device_kind, n.parent_eni, n.device_index FROM enis n JOIN subnets s ON s.id = n.subnet_id LEFT JOIN "
        "addresses a ON a.eni_id = n.id WHERE n.host = $1 AND n.plugged ORDER BY n.parent_eni IS NOT NULL, n.id", 1, p);
    if (!r)
        return NULL;
    json_t *out = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0);
        char dev[16];
        snprintf(dev, sizeof dev, "vt-%.12s", strchr(id, '-') ? strchr(id, '-') + 1 : id);
        json_t *gs = jparse(PQgetvalue(r, i, 7)), *g;
        size_t k;
        json_array_foreach(gs, k, g)
            json_object_set_new(groups, json_string_value(g), json_true());
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:o, s:s?}", "eni_id", id, "vpc_id",
                                             PQgetvalue(r, i, 1), "subnet_id", PQgetvalue(r, i, 2), "mac",
                                             PQgetvalue(r, i, 3), "ip", PQgetvalue(r, i, 4), "prefix_len",
                                             atoi(PQgetvalue(r, i, 5)), "device", dev, "groups", gs, "public_ip",
                                             PQgetisnull(r, i, 6) ? NULL : PQgetvalue(r, i, 6)));
        json_t *it = json_array_get(out, json_array_size(out) - 1);
        json_object_set_new(it, "device_kind", json_string(PQgetvalue(r, i, 8)));
        /* attached after launch: it goes where its instance's primary interface is */
        if (!PQgetisnull(r, i, 9))
            json_object_set_new(it, "attach", json_pack("{s:s, s:i}", "parent", PQgetvalue(r, i, 9), "device_index",
                                                        atoi(PQgetvalue(r, i, 10))));
    }
    return out;
}

static json_t *vpcs(db_t *db, const char *host, verr_t *e)
{
    const char *p[] = {host};
    PG_AUTO PGresult *v = db_prepared(db, e, "hd_vpcs",
        "SELECT v.id, v.vni, v.cidr::text, (SELECT coalesce(json_agg(DISTINCT host(h.underlay_ip)), '[]') FROM enis m "
        "JOIN hosts h ON h.name = m.host WHERE m.vpc_id = v.id AND m.plugged AND m.host <> $1)::text, "
        "(SELECT id FROM internet_gateways WHERE vpc_id = v.id) "
        "FROM vpcs v WHERE v.id IN (SELECT vpc_id FROM enis WHERE host = $1 AND plugged) ORDER BY v.id", 1, p);
    PG_AUTO PGresult *s = v ? db_prepared(db, e, "hd_subnets",
        "SELECT s.id, s.vpc_id, s.cidr::text, (SELECT coalesce(json_agg(json_strip_nulls(json_build_object("
        "'destination', r.destination::text, 'target', r.target, 'next_hop', host(n.ip), 'next_hop_mac', n.mac::text)) "
        "ORDER BY r.destination), '[]') FROM routes r LEFT JOIN enis n ON n.id = r.target AND n.vpc_id = s.vpc_id AND "
        "n.plugged WHERE r.route_table_id = "
        "coalesce((SELECT route_table_id FROM route_table_assocs WHERE subnet_id = s.id), "
        "(SELECT id FROM route_tables WHERE vpc_id = s.vpc_id AND is_main)) AND (r.target = 'local' OR n.id IS NOT "
        "NULL OR EXISTS (SELECT 1 FROM internet_gateways g WHERE g.id = r.target AND g.vpc_id = s.vpc_id)))::text "
        "FROM subnets s WHERE s.id IN (SELECT subnet_id FROM enis WHERE host = $1 AND plugged) ORDER BY s.id", 1, p)
        : NULL;
    if (!s)
        return NULL;
    json_t *out = json_array();
    for (int i = 0; i < PQntuples(v); i++) {
        json_t *subs = json_array();
        for (int j = 0; j < PQntuples(s); j++) {
            if (strcmp(PQgetvalue(s, j, 1), PQgetvalue(v, i, 0)))
                continue;
            cidr_t c;
            char gw[CIDR_STR_MAX], dns[CIDR_STR_MAX];
            cidr_parse(PQgetvalue(s, j, 2), &c);
            cidr_ip_format(cidr_gateway(&c), gw);
            cidr_ip_format(cidr_dns(&c), dns);
            json_array_append_new(subs, json_pack("{s:s, s:s, s:s, s:s, s:o}", "subnet_id", PQgetvalue(s, j, 0), "cidr",
                                                  PQgetvalue(s, j, 2), "gateway", gw, "dns", dns, "routes",
                                                  jparse(PQgetvalue(s, j, 3))));
        }
        json_array_append_new(out, json_pack("{s:s, s:i, s:s, s:o, s:o, s:s?}", "vpc_id", PQgetvalue(v, i, 0), "vni",
                                             atoi(PQgetvalue(v, i, 1)), "cidr", PQgetvalue(v, i, 2), "peers",
                                             jparse(PQgetvalue(v, i, 3)), "subnets", subs, "internet_gateway",
                                             PQgetisnull(v, i, 4) ? NULL : PQgetvalue(v, i, 4)));
    }
    return out;
}

/* "{a,b}" for ids that are [a-z0-9-] only. */
static char *pg_array(const json_t *set)
{
    strbuf_t b = {0};
    strbuf_putc(&b, '{');
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)set, k, v) {
        if (b.len > 1)
            strbuf_putc(&b, ',');
        strbuf_puts(&b, k);
    }
    strbuf_putc(&b, '}');
    return b.s;
}

static json_t *groups_doc(db_t *db, const json_t *used, json_t **members, verr_t *e)
{
    AUTOFREE char *ids = pg_array(used);
    JSON_AUTO json_t *rules = sg_rule_rows(db, NULL, ids, e);
    if (!rules)
        return NULL;
    json_t *out = json_array(), *refs = json_object(), *r;
    const char *gid;
    json_t *unused;
    json_object_foreach((json_t *)used, gid, unused) {
        json_t *in = json_array(), *eg = json_array();
        size_t i;
        json_array_foreach(rules, i, r) {
            if (strcmp(json_str(r, "group_id", ""), gid))
                continue;
            const char *cidr = json_str(r, "cidr", NULL), *ref = json_str(r, "ref_group", NULL);
            if (ref)
                json_object_set_new(refs, ref, json_true());
            json_array_append_new(json_bool(r, "egress", 0) ? eg : in, json_pack(
                "{s:s, s:I, s:I, s:o, s:o}", "protocol", json_str(r, "protocol", ""), "from_port",
                json_int(r, "from_port", -1), "to_port", json_int(r, "to_port", -1), "cidrs",
                cidr ? json_pack("[s]", cidr) : json_array(), "groups", ref ? json_pack("[s]", ref) : json_array()));
        }
        json_array_append_new(out, json_pack("{s:s, s:o, s:o}", "group_id", gid, "ingress", in, "egress", eg));
    }
    AUTOFREE char *ref_ids = pg_array(refs);
    json_decref(refs);
    const char *p[] = {ref_ids};
    PG_AUTO PGresult *m = db_prepared(db, e, "hd_members",
        "SELECT eg.group_id, host(n.ip) FROM eni_groups eg JOIN enis n ON n.id = eg.eni_id WHERE n.plugged AND "
        "eg.group_id = ANY($1::text[]) ORDER BY 1, n.ip", 1, p);
    if (!m) {
        json_decref(out);
        return NULL;
    }
    *members = json_object();
    for (int i = 0; i < PQntuples(m); i++) {
        json_t *list = json_object_get(*members, PQgetvalue(m, i, 0));
        if (!list) {
            list = json_array();
            json_object_set_new(*members, PQgetvalue(m, i, 0), list);
        }
        json_array_append_new(list, json_string(PQgetvalue(m, i, 1)));
    }
    return out;
}

/* compute, or the agent of that host: who sent it is the message's signed principal */
static int trusted(bus_ctx_t *ctx, const char *host, verr_t *e)
{
    const bus_principal_t *from = ctx->msg->from;
    if (from && (from->kind == BUS_P_COMPUTE || (from->kind == BUS_P_AGENT && !strcmp(from->host, host))))
        return 0;
    return verr_set(e, 403, "UnauthorizedOperation", "network.host_desired is for compute and the host's own agent");
}

int net_host_desired(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *host = json_str(body, "host", NULL);
    if (hosts_valid_name(host, e) < 0)
        return -1;
    if (trusted(ctx, host, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    if (db_begin(db, e) < 0 || hosts_ensure(db, service_of(ctx), host, e) < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;
    }
    const char *p[] = {host};
    PG_AUTO PGresult *h = NULL;
    JSON_AUTO json_t *used = json_object();
    json_t *ifs = NULL, *vs = NULL, *sgs = NULL, *members = NULL;
    if (db_begin(db, e) < 0 || db_exec(db, e, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ") < 0 ||
        !(h = db_prepared(db, e, "hd_host", "SELECT generation, host(underlay_ip) FROM hosts WHERE name = $1", 1, p)) ||
        !(ifs = interfaces(db, host, used, e)) || !(vs = vpcs(db, host, e)) ||
        !(sgs = groups_doc(db, used, &members, e)) || db_commit(db, e) < 0) {
        db_rollback(db);
        json_decref(ifs);
        json_decref(vs);
        json_decref(sgs);
        json_decref(members);
        return -1;
    }
    *reply = json_pack("{s:s, s:I, s:s, s:o, s:o, s:o, s:o, s:{s:s}}", "host", host, "generation",
                       (json_int_t)atoll(PQgetvalue(h, 0, 0)), "underlay_ip", PQgetvalue(h, 0, 1), "vpcs", vs,
                       "interfaces", ifs, "security_groups", sgs, "group_members", members, "outside", "public_cidr",
                       ipam_public_pool(service_of(ctx)->cfg));
    return 0;
}
