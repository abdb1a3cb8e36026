/* hosts.c - the host registry: compute.host_report, which each host's agent sends on a
 * timer (its heartbeat and inventory). Who reports is the sending principal, checked by
 * the bus from the message's signature; a report that names another host is refused, so
 * a host's credential cannot make it any other host (docs/security.md). */
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "jsonutil.h"

/* {"host_id"?, "inventory": {...}} from agent-<host> -> {"host_id", "reports"} */
int compute_host_report(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *host = ctx->msg->from->host;
    const char *claimed = json_str(body, "host_id", host);
    if (!host)
        return verr_set(e, 403, "AccessDenied", "only a host's agent reports for it");
    if (strcmp(claimed, host))
        return verr_set(e, 403, "AccessDenied", "agent-%s may report only for host %s, not for '%.64s'", host, host,
                        claimed);
    json_t *inv = json_object_get(body, "inventory");
    if (inv && !json_is_object(inv))
        return verr_set(e, 400, "InvalidParameterValue", "inventory must be an object");
    JSON_AUTO json_t *empty = json_object();
    AUTOFREE char *doc = json_dumps(inv ? inv : empty, JSON_COMPACT);
    const char *p[] = {host, doc};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "host_report",
        "INSERT INTO hosts (host_id, inventory) VALUES ($1, $2::jsonb) ON CONFLICT (host_id) DO UPDATE "
        "SET inventory = EXCLUDED.inventory, reports = hosts.reports + 1, last_seen = now() RETURNING reports", 2, p);
    if (!r)
        return -1;
    *reply = json_pack("{s:s, s:I}", "host_id", host, "reports", (json_int_t)atoll(PQgetvalue(r, 0, 0)));
    return 0;
}
