/* interface_limit.c - the instance type's network interface limit (compute.instance_types
 * :max_interfaces, instance_types.c) where an instance's interfaces or its type change
 * after its launch (RunInstances checks its own launch: run_instances.c):
 *
 * - compute.instance_interface_limit {account, instance_id} -> {instance_type,
 *   max_interfaces}: the network's AttachNetworkInterface asks it (with bus_ask) and
 *   counts the instance's interfaces under its own lock (network/interface_limit.c), as
 *   the network knows no instance types;
 * - ModifyInstanceAttribute instanceType refuses a type that takes fewer interfaces than
 *   the instance has, counted by the network uncached (network.instance_interface_count:
 *   compute's copy network_enis may not hold an attach just answered yet).
 *
 * What stays open: a type change and an attach to the same stopped instance at the very
 * same moment are checked in two services and can both pass (docs/compute.md, "Not yet"). */
#include <stdio.h>
#include <string.h>

#include "compute.h"
#include "jsonutil.h"

#define DEVICE_INDEXES 16   /* every instance's device indexes (0..15), whatever its type */

int compute_instance_interface_limit(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = json_str(body, "account", NULL), *id = json_str(body, "instance_id", NULL);
    if (!account || !id)
        return verr_set(e, 400, "InvalidParameterValue", "account and instance_id are required");
    const char *p[] = {id, account};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "ilim_type",
                                      "SELECT instance_type FROM instances WHERE id = $1 AND account_id = $2", 2, p);
    if (!r)
        return -1;
    /* Whether the instance exists is the network's to say (it knows an instance by its
     * primary interface, whatever compute holds: attachments.c); one compute does not hold
     * for the account, or whose type was taken out of the config since its launch, has no
     * limit but the device indexes */
    const char *name = PQntuples(r) ? PQgetvalue(r, 0, 0) : "";
    const instance_type_t *t = instance_type_find(compute_of(ctx), name);
    *reply = json_pack("{s:s, s:i}", "instance_type", name, "max_interfaces", t ? t->max_enis : DEVICE_INDEXES);
    return 0;
}

int interface_limit_fits(bus_ctx_t *ctx, const char *account, const char *id, const instance_type_t *t, verr_t *e)
{
    JSON_AUTO json_t *r = NULL;
    if (bus_ask(ctx, "network", "network.instance_interface_count",
                json_pack("{s:s, s:s}", "account", account, "instance_id", id), compute_of(ctx)->call_timeout_ms, &r,
                e) < 0)
        return -1;
    json_int_t n = json_int(r, "count", 0);
    if (n > t->max_enis)
        return verr_set(e, 400, "AttachmentLimitExceeded", "Interface count %lld exceeds the limit for %s",
                        (long long)n, t->name);
    return 0;
}
