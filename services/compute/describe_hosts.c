/* describe_hosts.c - EC2 DescribeHosts as the operator's view of the host registry (the
 * web console's Hosts page, docs/console.md): every host with its state, zone, capacity,
 * what its instances use and which instances run there. EC2 lists a tenant's Dedicated
 * Hosts; Virga has none to rent, so a tenant (and any caller but the operator account's
 * administrator) gets an empty list. Beside EC2's fields each host carries Virga's own
 * (memoryMiB, usedMemoryMiB, diskGiB, drivers, lastSeen), which EC2 clients ignore. */
#include <stdlib.h>
#include <string.h>

#include "caller.h"
#include "compute.h"
#include "describe.h"
#include "jsonutil.h"

static const describe_field_t host_fields[] = {
    {"availability-zone", "availabilityZone"},
    {"state", "state"},
    {NULL, NULL},
};

int compute_describe_hosts(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    JSON_AUTO json_t *all = json_array();
    if (caller_is_operator_admin(ctx->msg->caller)) {
        PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "describe_hosts",
            "SELECT h.host_id, h.state, h.zone, h.vcpus, h.memory_mib, h.disk_gib, array_to_string(h.drivers, ','), "
            "  to_char(h.first_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
            "  to_char(h.last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
            "  coalesce(sum(i.vcpus), 0), coalesce(sum(i.memory_mib), 0), "
            "  coalesce(json_agg(json_build_object('instanceId', i.id, 'instanceType', i.instance_type, "
            "    'ownerId', i.account_id) ORDER BY i.id) FILTER (WHERE i.id IS NOT NULL), '[]')::text "
            "FROM hosts h LEFT JOIN instances i ON i.host_id = h.host_id AND i.state <> 'terminated' "
            "GROUP BY h.host_id ORDER BY h.host_id", 0, NULL);
        if (!r)
            return -1;
        for (int i = 0; i < PQntuples(r); i++) {
            long long vcpus = atoll(PQgetvalue(r, i, 3)), used = atoll(PQgetvalue(r, i, 9));
            json_t *inst = json_loads(PQgetvalue(r, i, 11), 0, NULL);
            json_array_append_new(all, json_pack(
                "{s:s, s:s, s:s, s:{s:I, s:I}, s:{s:I}, s:o, s:s, s:I, s:I, s:I, s:s, s:s}",
                "hostId", PQgetvalue(r, i, 0), "state", strcmp(PQgetvalue(r, i, 1), "up") ? "under-assessment" : "available",
                "availabilityZone", PQgetvalue(r, i, 2),
                "hostProperties", "totalVCpus", vcpus, "cores", vcpus,
                "availableCapacity", "availableVCpus", vcpus > used ? vcpus - used : 0,
                "instances", inst ? inst : json_array(), "allocationTime", PQgetvalue(r, i, 7),
                "memoryMiB", atoll(PQgetvalue(r, i, 4)), "usedMemoryMiB", atoll(PQgetvalue(r, i, 10)),
                "diskGiB", atoll(PQgetvalue(r, i, 5)), "drivers", PQgetvalue(r, i, 6), "lastSeen", PQgetvalue(r, i, 8)));
        }
    }
    const char *missing = NULL;
    JSON_AUTO json_t *sel = describe_select(all, body, "HostId", "hostId", &missing);
    if (!sel)
        return verr_set(e, 400, "InvalidHostID.NotFound", "The host ID '%.64s' was not found", missing);
    json_t *items = describe_filter(sel, json_object_get(body, "Filter"), host_fields, e);
    if (!items)
        return -1;
    *reply = json_pack("{s:o}", "hostSet", items);
    return 0;
}
