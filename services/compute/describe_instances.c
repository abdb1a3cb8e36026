/* describe_instances.c - instances as EC2 shapes them: DescribeInstances (reservations
 * holding instances; filters, tags, MaxResults/NextToken over instances sorted by id),
 * DescribeInstanceStatus, and the reservation RunInstances answers. Terminated instances
 * stay visible for compute.terminated_visible_s. Scoped to the caller's account; the
 * operator's administrator sees every account's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caller.h"
#include "compute.h"
#include "describe.h"
#include "ids.h"
#include "instance_state.h"
#include "jsonutil.h"
#include "tags.h"

int instances_scope(bus_ctx_t *ctx, const char **account, verr_t *e)
{
    const char *a = caller_account(ctx->msg->caller, e);
    if (!a)
        return -1;
    *account = caller_is_operator_admin(ctx->msg->caller) ? NULL : a;
    return 0;
}

#define ITEM_SQL                                                                                                   \
    "SELECT i.id, i.reservation_id, i.account_id, i.image_id, i.state, i.transition, i.key_name, i.launch_index, "   \
    "i.instance_type, extract(epoch FROM i.launch_time)::bigint, i.zone, i.kernel_id, i.ramdisk_id, "                \
    "i.state_reason, i.client_token, i.vcpus, COALESCE(h.state = 'up' AND h.last_seen > now() - "                   \
    "make_interval(secs => $4::int), false), "                                                                       \
    "(SELECT json_agg(json_build_object('eni', f.eni_id, 'index', f.device_index, 'subnet', f.subnet_id, "           \
    "'vpc', f.vpc_id, 'mac', f.mac, 'ip', f.ip, 'groups', f.groups) ORDER BY f.device_index) "                       \
    "FROM instance_interfaces f WHERE f.instance_id = i.id AND NOT f.deleted)::text, "                              \
    "COALESCE(h.cloud, 'private'), i.remote_id, i.remote_public_ip, i.remote_private_ip "                            \
    "FROM instances i LEFT JOIN hosts h ON h.host_id = i.host_id "                                                   \
    "WHERE ($1::text IS NULL OR i.account_id = $1) AND ($2::text IS NULL OR i.reservation_id = $2) "                 \
    "AND (i.state <> 'terminated' OR i.terminated_at > now() - make_interval(secs => $3::int)) "

/* "ip-172-31-0-5.ec2.internal" */
static void private_dns(const char *ip, char *out, size_t n)
{
    char dashed[64];
    snprintf(dashed, sizeof dashed, "%s", ip);
    for (char *s = dashed; *s; s++)
        if (*s == '.')
            *s = '-';
    snprintf(out, n, "ip-%s.ec2.internal", dashed);
}

static json_t *interface_item(const json_t *f, const char *owner, long long launched)
{
    char dns[96], when[32];
    private_dns(json_str(f, "ip", ""), dns, sizeof dns);
    describe_time(launched, when);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:O, "
                     "s:{s:s, s:I, s:s, s:s, s:b}, s:[{s:s, s:s, s:b}]}",
                     "networkInterfaceId", json_str(f, "eni", ""), "subnetId", json_str(f, "subnet", ""), "vpcId",
                     json_str(f, "vpc", ""), "description", "", "ownerId", owner, "status", "in-use", "macAddress",
                     json_str(f, "mac", ""), "privateIpAddress", json_str(f, "ip", ""), "privateDnsName", dns,
                     "sourceDestCheck", 1, "groupSet", json_object_get(f, "groups"),
                     "attachment", "attachmentId", "eni-attach-0", "deviceIndex", (json_int_t)json_int(f, "index", 0),
                     "status", "attached", "attachTime", when, "deleteOnTermination", 1,
                     "privateIpAddressesSet", "privateIpAddress", json_str(f, "ip", ""), "privateDnsName", dns,
                     "primary", 1);
}

/* An instance in a public cloud (docs/hybrid.md): the address it has there (public, else
 * the remote private one) as ipAddress, and the cloud and the remote id as tags
 * virga:cloud and virga:remote-instance-id, so a tenant can filter on them. */
static void burst_fields(json_t *it, PGresult *r, int i)
{
    const char *cloud = PQgetvalue(r, i, 18), *rid = PQgetvalue(r, i, 19), *pub = PQgetvalue(r, i, 20),
               *priv = PQgetvalue(r, i, 21);
    if (!strcmp(cloud, "private"))
        return;
    json_t *tags = json_copy(json_object_get(it, "tagSet"));
    json_array_append_new(tags, json_pack("{s:s, s:s}", "key", "virga:cloud", "value", cloud));
    if (*rid)
        json_array_append_new(tags, json_pack("{s:s, s:s}", "key", "virga:remote-instance-id", "value", rid));
    json_object_set_new(it, "tagSet", tags);
    const char *addr = *pub ? pub : priv;
    if (*addr)
        json_object_set_new(it, "ipAddress", json_string(addr));
}

/* One instance (row i of r) as DescribeInstances shows it, with the hidden fields
 * _reservationId, _ownerId and _hostUp the callers use and drop. */
static json_t *item(PGresult *r, int i, json_t *tags)
{
    const char *id = PQgetvalue(r, i, 0), *state = PQgetvalue(r, i, 4), *owner = PQgetvalue(r, i, 2);
    char when[32];
    long long launched = atoll(PQgetvalue(r, i, 9));
    describe_time(launched, when);
    json_t *t = tags ? json_object_get(tags, id) : NULL;
    json_t *it = json_pack(
        "{s:s, s:s, s:{s:i, s:s}, s:s, s:s, s:i, s:[], s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s}, s:s, s:s, s:s, "
        "s:s, s:s, s:O, s:b, s:b, s:{s:i, s:i}, s:s, s:s, s:s, s:s, s:b}",
        "instanceId", id, "imageId", PQgetvalue(r, i, 3), "instanceState", "code", instance_state_code(state), "name",
        state, "privateDnsName", "", "dnsName", "", "amiLaunchIndex", atoi(PQgetvalue(r, i, 7)), "productCodes",
        "instanceType", PQgetvalue(r, i, 8), "launchTime", when, "placement", "availabilityZone",
        PQgetvalue(r, i, 10), "groupName", "", "tenancy", "default", "monitoring", "state", "disabled",
        "architecture", "x86_64", "rootDeviceType", "instance-store", "rootDeviceName", "/dev/vda",
        "virtualizationType", "hvm", "hypervisor", "xen", "tagSet", t ? t : json_array(), "ebsOptimized", 0,
        "enaSupport", 1, "cpuOptions", "coreCount", atoi(PQgetvalue(r, i, 15)), "threadsPerCore", 1, "reason",
        PQgetvalue(r, i, 5), "platformDetails", "Linux/UNIX", "_reservationId", PQgetvalue(r, i, 1), "_ownerId",
        owner, "_hostUp", PQgetvalue(r, i, 16)[0] == 't');
    if (!t)
        json_decref(json_object_get(it, "tagSet"));   /* the pack's new array: keep one reference */
    if (!PQgetisnull(r, i, 6))
        json_object_set_new(it, "keyName", json_string(PQgetvalue(r, i, 6)));
    if (!PQgetisnull(r, i, 11))
        json_object_set_new(it, "kernelId", json_string(PQgetvalue(r, i, 11)));
    if (!PQgetisnull(r, i, 12))
        json_object_set_new(it, "ramdiskId", json_string(PQgetvalue(r, i, 12)));
    if (*PQgetvalue(r, i, 14))
        json_object_set_new(it, "clientToken", json_string(PQgetvalue(r, i, 14)));
    const char *reason = PQgetvalue(r, i, 13);
    if (*reason) {
        const char *colon = strstr(reason, ": ");
        json_object_set_new(it, "stateReason",
                            json_pack("{s:s%, s:s}", "code", reason, colon ? (size_t)(colon - reason) : strlen(reason),
                                      "message", colon ? colon + 2 : reason));
    }
    JSON_AUTO json_t *ifs = PQgetisnull(r, i, 17) ? NULL : json_loads(PQgetvalue(r, i, 17), 0, NULL);
    json_t *set = json_array(), *f;
    size_t k;
    json_array_foreach(ifs, k, f) {
        json_array_append_new(set, interface_item(f, owner, launched));
        if (json_int(f, "index", 0) != 0)
            continue;
        char dns[96];
        private_dns(json_str(f, "ip", ""), dns, sizeof dns);
        json_object_set_new(it, "privateIpAddress", json_string(json_str(f, "ip", "")));
        json_object_set_new(it, "privateDnsName", json_string(dns));
        json_object_set_new(it, "subnetId", json_string(json_str(f, "subnet", "")));
        json_object_set_new(it, "vpcId", json_string(json_str(f, "vpc", "")));
        json_object_set(it, "groupSet", json_object_get(f, "groups"));
        json_object_set_new(it, "sourceDestCheck", json_true());
    }
    json_object_set_new(it, "networkInterfaceSet", set);
    burst_fields(it, r, i);
    if (!json_object_get(it, "groupSet"))
        json_object_set_new(it, "groupSet", json_array());
    return it;
}

/* The items (sorted by id) of account (NULL: all), of one reservation or all. */
static json_t *load_items(db_t *db, const compute_t *c, const char *account, const char *reservation, verr_t *e)
{
    char vis[16], down[16];
    snprintf(vis, sizeof vis, "%d", c->terminated_visible_s);
    snprintf(down, sizeof down, "%d", c->host_down_after_s);
    const char *p[] = {account, reservation, vis, down};
    PG_AUTO PGresult *r = db_prepared(db, e, "inst_items", ITEM_SQL "ORDER BY i.id", 4, p);
    if (!r)
        return NULL;
    JSON_AUTO json_t *tags = tags_load(db, account, e);
    if (!tags)
        return NULL;
    json_t *items = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(items, item(r, i, tags));
    return items;
}

static void strip(json_t *it)
{
    json_object_del(it, "_reservationId");
    json_object_del(it, "_ownerId");
    json_object_del(it, "_hostUp");
}

/* Group items (in order) into reservations: consecutive runs of one reservation id are
 * not enough (items are sorted by instance id), so the set is built by id. */
static json_t *group(json_t *items)
{
    json_t *out = json_array(), *byid = json_object(), *it;
    size_t i;
    json_array_foreach(items, i, it) {
        const char *rid = json_str(it, "_reservationId", "");
        json_t *res = json_object_get(byid, rid);
        if (!res) {
            res = json_pack("{s:s, s:s, s:[], s:[]}", "reservationId", rid, "ownerId", json_str(it, "_ownerId", ""),
                            "groupSet", "instancesSet");
            json_object_set_new(byid, rid, res);
            json_array_append(out, res);
        }
        json_t *copy = json_copy(it);
        strip(copy);
        json_array_append_new(json_object_get(res, "instancesSet"), copy);
    }
    json_decref(byid);
    return out;
}

int instances_reservations(db_t *db, const compute_t *c, const char *account, const char *reservation_id, json_t **out,
                           verr_t *e)
{
    JSON_AUTO json_t *items = load_items(db, c, account, reservation_id, e);
    if (!items)
        return -1;
    *out = group(items);
    return 0;
}

static const describe_field_t instance_fields[] = {
    {"instance-id", "instanceId"},
    {"instance-state-name", "instanceState.name"},
    {"instance-state-code", "instanceState.code"},
    {"image-id", "imageId"},
    {"instance-type", "instanceType"},
    {"private-ip-address", "privateIpAddress"},
    {"private-dns-name", "privateDnsName"},
    {"subnet-id", "subnetId"},
    {"vpc-id", "vpcId"},
    {"availability-zone", "placement.availabilityZone"},
    {"key-name", "keyName"},
    {"reservation-id", "_reservationId"},
    {"owner-id", "_ownerId"},
    {"client-token", "clientToken"},
    {"launch-index", "amiLaunchIndex"},
    {"architecture", "architecture"},
    {"kernel-id", "kernelId"},
    {"ramdisk-id", "ramdiskId"},
    {NULL, NULL},
};

/* Instance ids of a list parameter: each well-formed (InvalidInstanceID.Malformed). */
static int check_ids(const json_t *list, verr_t *e)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        const char *s = json_string_value(v);
        if (!s || !ids_valid("i", s))
            return verr_set(e, 400, "InvalidInstanceID.Malformed", "Invalid id: \"%.64s\"", s ? s : "");
    }
    return 0;
}

/* The caller's visible instances, narrowed to the InstanceId list (all must exist) and
 * the filters. */
static json_t *selected(bus_ctx_t *ctx, const json_t *body, verr_t *e)
{
    const char *account;
    if (instances_scope(ctx, &account, e) < 0)
        return NULL;
    json_t *ids = json_object_get(body, "InstanceId");
    if (check_ids(ids, e) < 0)
        return NULL;
    JSON_AUTO json_t *all = load_items(service_db(ctx), compute_of(ctx), account, NULL, e);
    if (!all)
        return NULL;
    const char *missing = NULL;
    JSON_AUTO json_t *sel = describe_select(all, body, "InstanceId", "instanceId", &missing);
    if (!sel) {
        verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance ID '%.64s' does not exist", missing);
        return NULL;
    }
    return describe_filter(sel, json_object_get(body, "Filter"), instance_fields, e);
}

int compute_describe_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (json_object_get(body, "InstanceId") && json_object_get(body, "MaxResults"))
        return verr_set(e, 400, "InvalidParameterCombination",
                        "The parameter instancesSet cannot be used with the parameter maxResults");
    JSON_AUTO json_t *items = selected(ctx, body, e);
    if (!items)
        return -1;
    JSON_AUTO json_t *page = NULL;
    json_t *next = NULL;
    if (describe_page(items, body, "instanceId", 5, 1000, &page, &next, e) < 0)
        return -1;
    *reply = json_pack("{s:o, s:o*}", "reservationSet", group(page), "nextToken", next);
    return 0;
}

static const describe_field_t status_fields[] = {
    {"availability-zone", "availabilityZone"},
    {"instance-state-name", "instanceState.name"},
    {"instance-state-code", "instanceState.code"},
    {"instance-status.status", "instanceStatus.status"},
    {"system-status.status", "systemStatus.status"},
    {NULL, NULL},
};

/* EC2's status checks: a host that stopped reporting makes its instances impaired. */
static json_t *status_item(const json_t *it)
{
    const char *state = json_str(json_object_get(it, "instanceState"), "name", "");
    int running = !strcmp(state, "running"), up = json_is_true(json_object_get(it, "_hostUp"));
    const char *st = !running ? "not-applicable" : up ? "ok" : "impaired";
    const char *det = !running ? "initializing" : up ? "passed" : "failed";
    return json_pack("{s:s, s:s, s:O, s:{s:s, s:[{s:s, s:s}]}, s:{s:s, s:[{s:s, s:s}]}, s:[]}", "instanceId",
                     json_str(it, "instanceId", ""), "availabilityZone",
                     json_str(json_object_get(it, "placement"), "availabilityZone", ""), "instanceState",
                     json_object_get(it, "instanceState"), "systemStatus", "status", st, "details", "name",
                     "reachability", "status", det, "instanceStatus", "status", st, "details", "name", "reachability",
                     "status", det, "eventsSet");
}

int compute_describe_instance_status(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    JSON_AUTO json_t *items = selected(ctx, body, e);
    if (!items)
        return -1;
    int all = json_flag(body, "IncludeAllInstances") || json_object_get(body, "InstanceId");
    JSON_AUTO json_t *st = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        const char *state = json_str(json_object_get(it, "instanceState"), "name", "");
        if (all ? strcmp(state, "terminated") != 0 : !strcmp(state, "running"))
            json_array_append_new(st, status_item(it));
    }
    JSON_AUTO json_t *filtered = describe_filter(st, json_object_get(body, "Filter"), status_fields, e);
    if (!filtered)
        return -1;
    json_t *page, *next;
    if (describe_page(filtered, body, "instanceId", 5, 1000, &page, &next, e) < 0)
        return -1;
    *reply = json_pack("{s:o, s:o*}", "instanceStatusSet", page, "nextToken", next);
    return 0;
}
