/* desired_vpc.c - the part of the hosts' datapath documents that is the VPC's: its
 * subnets and their routes, its groups and their rules, the members of its groups, the
 * hosts running it. Every host running the VPC needs the same, and a change in the VPC
 * (a rule, a member) rings all of them at once: built per host, 100 hosts were 100 times
 * the same five queries, and the last host waited for all of them (docs/network.md,
 * "Figures"). Built here once per VPC generation (vpcs.generation grows with the hosts'
 * in hosts_touch_vpc) and kept for the hosts that follow.
 *
 * Consistency: the part is read in one statement (one snapshot) and stored under the
 * generation that statement saw; since every change of the VPC's part grows that
 * generation in its own transaction, (VPC, generation) names one content. A part is kept
 * at most PART_TTL_S seconds all the same, so that a change that forgot to grow the
 * generation is stale only that long (the agents' periodic resync reads again). Shared
 * between the bus workers under a mutex; a part is never changed once stored (jansson's
 * reference counts are atomic), and callers copy what they take from it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cidr.h"
#include "jsonutil.h"
#include "network.h"

#define PART_SLOTS 64
#define PART_TTL_S 10

typedef struct part_slot {
    char vpc_id[40];
    long long gen;
    time_t at;
    json_t *part;
} part_slot_t;

static part_slot_t slots[PART_SLOTS];
static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;

static json_t *jparse(const char *s, int object)
{
    json_t *j = json_loads(s, 0, NULL);
    return j ? j : object ? json_object() : json_array();
}

static json_t *cached(const char *vpc_id, long long gen)
{
    time_t now = time(NULL);
    json_t *j = NULL;
    pthread_mutex_lock(&slots_mu);
    for (size_t i = 0; i < PART_SLOTS && !j; i++)
        if (slots[i].part && slots[i].gen == gen && now - slots[i].at < PART_TTL_S && !strcmp(slots[i].vpc_id, vpc_id))
            j = json_incref(slots[i].part);
    pthread_mutex_unlock(&slots_mu);
    return j;
}

/* The VPC's slot, else a free one, else the oldest. */
static void keep(const char *vpc_id, long long gen, json_t *part)
{
    pthread_mutex_lock(&slots_mu);
    size_t at = 0;
    for (size_t i = 0; i < PART_SLOTS; i++) {
        if (slots[i].part && !strcmp(slots[i].vpc_id, vpc_id)) {
            at = i;
            break;
        }
        if (!slots[i].part || (slots[at].part && slots[i].at < slots[at].at))
            at = i;
    }
    json_decref(slots[at].part);
    snprintf(slots[at].vpc_id, sizeof slots[at].vpc_id, "%s", vpc_id);
    slots[at].gen = gen;
    slots[at].at = time(NULL);
    slots[at].part = json_incref(part);
    pthread_mutex_unlock(&slots_mu);
}

/* The VPC's part in one statement, so one snapshot (what a REPEATABLE READ transaction
 * of five statements gave before, at one round trip instead of seven): the VPC's row,
 * then its subnets with their routes, its groups' rules and the groups' members, each a
 * JSON array of arrays (columns 5, 6, 7). */
#define PART_SQL                                                                                                      \
    "SELECT v.generation, v.vni, v.cidr::text, (SELECT id FROM internet_gateways WHERE vpc_id = v.id), "              \
    "(SELECT coalesce(json_object_agg(h.name, host(h.underlay_ip)), '{}') FROM hosts h WHERE h.name IN "             \
    "(SELECT host FROM enis WHERE vpc_id = v.id AND plugged AND host IS NOT NULL))::text, "                           \
    "(SELECT coalesce(json_agg(json_build_array(s.id, s.cidr::text, (SELECT coalesce(json_agg(json_strip_nulls("     \
    "json_build_object('destination', r.destination::text, 'target', r.target, 'next_hop', host(n.ip), "             \
    "'next_hop_mac', n.mac::text)) ORDER BY r.destination), '[]') FROM routes r LEFT JOIN enis n ON n.id = r.target " \
    "AND n.vpc_id = s.vpc_id AND n.plugged WHERE r.route_table_id = coalesce((SELECT route_table_id FROM "            \
    "route_table_assocs WHERE subnet_id = s.id), (SELECT id FROM route_tables WHERE vpc_id = s.vpc_id AND is_main)) " \
    "AND (r.target = 'local' OR n.id IS NOT NULL OR EXISTS (SELECT 1 FROM internet_gateways g WHERE g.id = r.target " \
    "AND g.vpc_id = s.vpc_id)))) ORDER BY s.id), '[]') FROM subnets s WHERE s.vpc_id = v.id)::text, "                \
    "(SELECT coalesce(json_agg(json_build_array(r.group_id, r.egress, r.protocol, r.from_port, r.to_port, "          \
    "r.cidr::text, r.ref_group) ORDER BY r.id), '[]') FROM sg_rules r JOIN security_groups g ON g.id = r.group_id "   \
    "WHERE g.vpc_id = v.id)::text, "                                                                                  \
    "(SELECT coalesce(json_agg(json_build_array(eg.group_id, host(n.ip)) ORDER BY eg.group_id, n.ip), '[]') FROM "   \
    "eni_groups eg JOIN enis n ON n.id = eg.eni_id WHERE n.plugged AND n.vpc_id = v.id)::text "                       \
    "FROM vpcs v WHERE v.id = $1"

/* [[id, cidr, routes], ...] -> {id: {subnet_id, cidr, gateway, dns, routes}} */
static json_t *subnets(const json_t *rows)
{
    json_t *out = json_object();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *id = json_string_value(json_array_get(row, 0)), *cidr = json_string_value(json_array_get(row, 1));
        json_t *routes = json_array_get(row, 2);
        cidr_t c;
        char gw[CIDR_STR_MAX], dns[CIDR_STR_MAX];
        if (!id || !cidr || cidr_parse(cidr, &c) < 0)
            continue;
        cidr_ip_format(cidr_gateway(&c), gw);
        cidr_ip_format(cidr_dns(&c), dns);
        json_object_set_new(out, id, json_pack("{s:s, s:s, s:s, s:s, s:O}", "subnet_id", id, "cidr", cidr, "gateway",
                                               gw, "dns", dns, "routes", json_is_array(routes) ? routes : json_array()));
    }
    return out;
}

/* [[group, egress, protocol, from, to, cidr, ref group], ...] (by rule id) -> every group
 * of the VPC that has a rule, with its rules (one source each). */
static json_t *groups(const json_t *rows)
{
    json_t *out = json_object();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *gid = json_string_value(json_array_get(row, 0));
        if (!gid)
            continue;
        json_t *g = json_object_get(out, gid);
        if (!g)
            json_object_set_new(out, gid, g = json_pack("{s:s, s:[], s:[]}", "group_id", gid, "ingress", "egress"));
        const char *cidr = json_string_value(json_array_get(row, 5)), *ref = json_string_value(json_array_get(row, 6));
        const char *proto = json_string_value(json_array_get(row, 2));
        json_array_append_new(json_object_get(g, json_is_true(json_array_get(row, 1)) ? "egress" : "ingress"), json_pack(
            "{s:s, s:i, s:i, s:o, s:o}", "protocol", proto ? proto : "", "from_port",
            (int)json_integer_value(json_array_get(row, 3)), "to_port", (int)json_integer_value(json_array_get(row, 4)),
            "cidrs", cidr ? json_pack("[s]", cidr) : json_array(), "groups", ref ? json_pack("[s]", ref) : json_array()));
    }
    return out;
}

/* [[group, ip], ...] -> {group: [ip, ...]} */
static json_t *members(const json_t *rows)
{
    json_t *out = json_object();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *gid = json_string_value(json_array_get(row, 0)), *ip = json_string_value(json_array_get(row, 1));
        if (!gid || !ip)
            continue;
        json_t *list = json_object_get(out, gid);
        if (!list)
            json_object_set_new(out, gid, list = json_array());
        json_array_append_new(list, json_string(ip));
    }
    return out;
}

static json_t *build(db_t *db, const char *vpc_id, long long *gen, verr_t *e)
{
    const char *p[] = {vpc_id};
    PG_AUTO PGresult *v = db_prepared(db, e, "vp_part", PART_SQL, 1, p);
    if (!v)
        return NULL;
    if (!PQntuples(v)) {
        /* deleted since the host's interfaces were read: the caller reads again */
        *gen = -1;
        return json_object();
    }
    JSON_AUTO json_t *subs = jparse(PQgetvalue(v, 0, 5), 0);
    JSON_AUTO json_t *rules = jparse(PQgetvalue(v, 0, 6), 0);
    JSON_AUTO json_t *mems = jparse(PQgetvalue(v, 0, 7), 0);
    *gen = atoll(PQgetvalue(v, 0, 0));
    return json_pack("{s:{s:s, s:i, s:s, s:s?, s:o}, s:o, s:o, s:o}", "vpc", "vpc_id", vpc_id, "vni",
                     atoi(PQgetvalue(v, 0, 1)), "cidr", PQgetvalue(v, 0, 2), "internet_gateway",
                     PQgetisnull(v, 0, 3) ? NULL : PQgetvalue(v, 0, 3), "hosts", jparse(PQgetvalue(v, 0, 4), 1),
                     "subnets", subnets(subs), "groups", groups(rules), "members", members(mems));
}

json_t *desired_vpc_part(db_t *db, const char *vpc_id, long long gen, long long *got, verr_t *e)
{
    json_t *part = cached(vpc_id, gen);
    if (part) {
        *got = gen;
        return part;
    }
    part = build(db, vpc_id, got, e);
    if (part && *got >= 0)
        keep(vpc_id, *got, part);
    return part;
}
