/* desired.c - network.host_desired {host}: the one document the host's datapath applies
 * (/work/notes/datapath-desired.md, docs/network.md "Datapath desired state"): the
 * VPCs, subnets, interfaces plugged on the host, their security groups with rules, the
 * addresses of every member of the groups the rules refer to, and the public pool. The
 * host's own rows are one statement; what is the VPC's (subnets, groups, members, the
 * other hosts) comes from desired_vpc.c at the generation that statement saw, built once
 * per VPC generation for every host running it. So the document is one consistent state
 * and its generation is the one that state had. Callers: compute, or the host's agent
 * (network.host_desired), and host_events.c, which pushes the documents of the hosts a
 * change rang (their rows in one statement for all of them). */
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

/* The hosts' own parts, in one statement (one snapshot): each host's name, generation
 * and underlay address, and its plugged interfaces, each with its VPC's generation;
 * ordered by host. hosts is a text[] literal ({"h1","h2"}: quoted, so that a host named
 * null is not NULL; host names have no quote or backslash, hosts_valid_name).
 * A host with no row does not exist. */
static PGresult *host_rows(db_t *db, const char *hosts, verr_t *e)
{
    const char *p[] = {hosts};
    return db_prepared(db, e, "hd_hosts_ifaces",
        "SELECT h.generation, host(h.underlay_ip), n.id, n.vpc_id, n.subnet_id, n.mac::text, host(n.ip), "
        "masklen(s.cidr), host(a.public_ip), (SELECT coalesce(json_agg(group_id ORDER BY group_id), '[]') "
        "FROM eni_groups WHERE eni_id = n.id)::text, n.device_kind, n.parent_eni, n.device_index, v.generation, "
        "n.source_dest_check, h.name "
        "FROM hosts h LEFT JOIN (enis n JOIN subnets s ON s.id = n.subnet_id JOIN vpcs v ON v.id = n.vpc_id "
        "LEFT JOIN addresses a ON a.eni_id = n.id) ON n.host = h.name AND n.plugged "
        "WHERE h.name = ANY($1::text[]) ORDER BY h.name, n.parent_eni IS NOT NULL, n.id", 1, p);
}

#define COL_HOST 15

static json_t *interface(PGresult *r, int i)
{
    const char *id = PQgetvalue(r, i, 2);
    char dev[16];
    snprintf(dev, sizeof dev, "vt-%.12s", strchr(id, '-') ? strchr(id, '-') + 1 : id);
    json_t *it = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:o, s:s?, s:s, s:b}", "eni_id", id, "vpc_id",
                           PQgetvalue(r, i, 3), "subnet_id", PQgetvalue(r, i, 4), "mac", PQgetvalue(r, i, 5), "ip",
                           PQgetvalue(r, i, 6), "prefix_len", atoi(PQgetvalue(r, i, 7)), "device", dev, "groups",
                           jparse(PQgetvalue(r, i, 9)), "public_ip", PQgetisnull(r, i, 8) ? NULL : PQgetvalue(r, i, 8),
                           "device_kind", PQgetvalue(r, i, 10), "source_dest_check", PQgetvalue(r, i, 14)[0] == 't');
    /* attached after launch: it goes where its instance's primary interface is; a QEMU
     * guest's (a tap, given at launch) is a tap of its own on the bridge, as the primary */
    if (!PQgetisnull(r, i, 11) && strcmp(PQgetvalue(r, i, 10), "tap"))
        json_object_set_new(it, "attach", json_pack("{s:s, s:i}", "parent", PQgetvalue(r, i, 11), "device_index",
                                                    atoi(PQgetvalue(r, i, 12))));
    return it;
}

/* From the VPC parts (desired_vpc.c), what this host's interfaces need: their VPCs (the
 * other hosts as peers), their subnets, their groups, the members of the groups those
 * rules refer to. */
static void assemble(json_t *doc, const char *host, const json_t *ifs, const json_t *parts)
{
    json_t *vs = json_array(), *sgs = json_array(), *members = json_object();
    JSON_AUTO json_t *used = json_object(), *refs = json_object();
    const char *vid, *gid;
    json_t *part, *f, *g;
    size_t i, k;
    json_object_foreach((json_t *)parts, vid, part) {
        const json_t *v = json_object_get(part, "vpc");
        json_t *peers = json_array(), *subs = json_array(), *seen = json_object(), *ip;
        const char *h;
        json_object_foreach(json_object_get(v, "hosts"), h, ip)
            if (strcmp(h, host))
                json_array_append(peers, ip);
        json_array_foreach(ifs, i, f) {
            const char *sid = json_str(f, "subnet_id", "");
            if (strcmp(json_str(f, "vpc_id", ""), vid))
                continue;
            json_array_foreach(json_object_get(f, "groups"), k, g)
                json_object_set(used, json_string_value(g), part);
            if (json_object_get(seen, sid))
                continue;       /* each subnet once */
            json_object_set_new(seen, sid, json_true());
            const json_t *s = json_object_get(json_object_get(part, "subnets"), sid);
            if (s)
                json_array_append_new(subs, json_deep_copy(s));
        }
        json_decref(seen);
        json_array_append_new(vs, json_pack("{s:s, s:O, s:O, s:o, s:o, s:O}", "vpc_id", vid, "vni",
                              json_object_get(v, "vni"), "cidr", json_object_get(v, "cidr"), "peers", peers,
                              "subnets", subs, "internet_gateway", json_object_get(v, "internet_gateway")));
    }
    /* a group with no rule is in no part: it grants nothing, and is listed as such */
    json_object_foreach(used, gid, part) {
        const json_t *grp = json_object_get(json_object_get(part, "groups"), gid);
        json_array_append_new(sgs, grp ? json_deep_copy(grp) : json_pack("{s:s, s:[], s:[]}", "group_id", gid,
                                                                         "ingress", "egress"));
        for (int dir = 0; grp && dir < 2; dir++)
            json_array_foreach(json_object_get(grp, dir ? "egress" : "ingress"), i, f)
                json_array_foreach(json_object_get(f, "groups"), k, g)
                    json_object_set(refs, json_string_value(g), part);
    }
    json_object_foreach(refs, gid, part) {
        const json_t *m = json_object_get(json_object_get(part, "members"), gid);
        if (m)
            json_object_set_new(members, gid, json_deep_copy(m));
    }
    json_object_set_new(doc, "vpcs", vs);
    json_object_set_new(doc, "security_groups", sgs);
    json_object_set_new(doc, "group_members", members);
}

/* One host's document from its rows [from, to) of host_rows (all of one host): each VPC's
 * part at the generation that snapshot saw. 0 done, 1 read again (a VPC changed in
 * between). */
static int document_of_rows(db_t *db, service_t *svc, PGresult *r, int from, int to, json_t **reply, verr_t *e)
{
    const char *host = PQgetvalue(r, from, COL_HOST);
    JSON_AUTO json_t *ifs = json_array(), *parts = json_object();
    for (int i = from; i < to; i++) {
        if (PQgetisnull(r, i, 2))
            continue;       /* the host with no interface */
        json_array_append_new(ifs, interface(r, i));
        const char *vid = PQgetvalue(r, i, 3);
        if (json_object_get(parts, vid))
            continue;
        long long want = atoll(PQgetvalue(r, i, 13)), got = 0;
        json_t *part = desired_vpc_part(db, vid, want, &got, e);
        if (!part)
            return -1;
        json_object_set_new(parts, vid, part);
        if (got != want)
            return 1;
    }
    *reply = json_pack("{s:s, s:I, s:s, s:O, s:{s:s}}", "host", host, "generation",
                       (json_int_t)atoll(PQgetvalue(r, from, 0)), "underlay_ip", PQgetvalue(r, from, 1), "interfaces",
                       ifs, "outside", "public_cidr", ipam_public_pool(svc->cfg));
    assemble(*reply, host, ifs, parts);
    return 0;
}

/* One consistent document: the host's rows in one snapshot, each VPC's part at the
 * generation that snapshot saw. 0 done, 1 read again (a VPC changed in between, or the
 * host was just made). */
static int host_document(db_t *db, service_t *svc, const char *host, json_t **reply, verr_t *e)
{
    AUTOFREE char *one = xasprintf("{\"%s\"}", host);
    PG_AUTO PGresult *r = host_rows(db, one, e);
    if (!r)
        return -1;
    if (!PQntuples(r)) {
        if (db_begin(db, e) < 0 || hosts_ensure(db, svc, host, e) < 0 || db_commit(db, e) < 0) {
            db_rollback(db);
            return -1;
        }
        return 1;
    }
    return document_of_rows(db, svc, r, 0, PQntuples(r), reply, e);
}

int desired_host_document(db_t *db, service_t *svc, const char *host, json_t **reply, verr_t *e)
{
    /* bounded: each retry means a VPC of the host changed while it was read */
    for (int attempt = 0; attempt < 8; attempt++) {
        int rc = host_document(db, svc, host, reply, e);
        if (rc <= 0)
            return rc;
    }
    return verr_set(e, 503, "ServiceUnavailable", "host %s: its VPCs kept changing while its document was read", host);
}

void desired_host_documents(db_t *db, service_t *svc, const char *const *hosts, size_t n, json_t **docs)
{
    strbuf_t list = {0};
    strbuf_putc(&list, '{');
    for (size_t i = 0; i < n; i++) {
        docs[i] = NULL;
        strbuf_printf(&list, "%s\"%s\"", i ? "," : "", hosts[i]);
    }
    strbuf_putc(&list, '}');
    verr_t e = {0};
    PG_AUTO PGresult *r = host_rows(db, list.s, &e);
    free(list.s);
    int rows = r ? PQntuples(r) : 0;
    for (int from = 0, to; from < rows; from = to) {
        const char *host = PQgetvalue(r, from, COL_HOST);
        for (to = from + 1; to < rows && !strcmp(PQgetvalue(r, to, COL_HOST), host);)
            to++;
        size_t i = 0;
        while (i < n && strcmp(hosts[i], host))
            i++;
        /* a VPC that changed in between: this host alone, read again (as a pull would) */
        if (i < n && document_of_rows(db, svc, r, from, to, &docs[i], &e) == 1)
            desired_host_document(db, svc, host, &docs[i], &e);
    }
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
    return desired_host_document(service_db(ctx), service_of(ctx), host, reply, e);
}
