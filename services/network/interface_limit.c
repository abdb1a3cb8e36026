/* interface_limit.c - the instance type's network interface limit, for the changes of an
 * instance's interfaces after its launch (RunInstances checks its own, in compute).
 *
 * The network does not know instance types: compute does (compute.instance_types
 * :max_interfaces). AttachNetworkInterface asks compute for the instance's limit
 * (compute.instance_interface_limit) with bus_ask, so no worker of the network waits on
 * it: the handler unwinds and runs again with the answer, before it has written
 * anything. The count is then taken under the instance's primary interface's row lock,
 * which every attach to that instance takes first (attachments.c): two attaches at once
 * are serialised there, and the second counts the first's interface (READ COMMITTED: the
 * count is a statement after the lock). The other way round, compute's
 * ModifyInstanceAttribute instanceType asks network.instance_interface_count here
 * (uncached: its own copy may lag an attach just answered) before it changes the type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interface_limit.h"
#include "jsonutil.h"

int interface_limit_ask(bus_ctx_t *ctx, const char *account, const char *instance, interface_limit_t *out, verr_t *e)
{
    JSON_AUTO json_t *r = NULL;
    if (bus_ask(ctx, "compute", "compute.instance_interface_limit",
                json_pack("{s:s, s:s}", "account", account, "instance_id", instance), net_timeout_ms(ctx), &r, e) < 0)
        return -1;
    out->max = (int)json_int(r, "max_interfaces", 0);
    snprintf(out->type, sizeof out->type, "%s", json_str(r, "instance_type", ""));
    if (out->max < 1)
        return verr_set(e, 500, "InternalError", "compute answered no interface limit for %.64s", instance);
    return 0;
}

/* The interfaces attached to the instance now, its primary included. */
static int count_of(db_t *db, const char *instance, long *n, verr_t *e)
{
    const char *p[] = {instance};
    PG_AUTO PGresult *r = db_prepared(db, e, "ilim_count", "SELECT count(*) FROM enis WHERE instance_id = $1", 1, p);
    if (!r)
        return -1;
    *n = atol(PQgetvalue(r, 0, 0));
    return 0;
}

int interface_limit_check(db_t *db, const char *instance, const interface_limit_t *lim, verr_t *e)
{
    long n;
    if (count_of(db, instance, &n, e) < 0)
        return -1;
    if (n + 1 > lim->max)   /* EC2's words for it (as RunInstances says them) */
        return verr_set(e, 400, "AttachmentLimitExceeded", "Interface count %ld exceeds the limit for %s", n + 1,
                        lim->type);
    return 0;
}

int net_instance_interface_count(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = json_str(body, "account", NULL), *inst = json_str(body, "instance_id", NULL);
    if (!account || !inst)
        return verr_set(e, 400, "InvalidParameterValue", "account and instance_id are required");
    const char *p[] = {inst, account};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "ilim_count_of",
                                      "SELECT count(*) FROM enis WHERE instance_id = $1 AND account_id = $2", 2, p);
    if (!r)
        return -1;
    *reply = json_pack("{s:I}", "count", (json_int_t)atoll(PQgetvalue(r, 0, 0)));
    return 0;
}
