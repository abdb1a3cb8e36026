/* interface_limit.c - the instance type's network interface limit (compute.instance_types
 * :max_interfaces, instance_types.c) where an instance's interfaces or its type change
 * after its launch (RunInstances checks its own launch: run_instances.c). The two meet in
 * the network, under the instance's primary interface's row lock (the network's
 * interface_limit.c says how), with no handler of either service waiting on the other:
 *
 * - compute.instance_interface_limit {account, instance_id, at_least?} -> {instance_type,
 *   max_interfaces, seq}: the network's AttachNetworkInterface asks it (with bus_ask);
 *   seq is the number of the instance's type (instances.type_seq, migration 021), which
 *   tells the network whether a type change recorded on the primary's row is newer than
 *   this answer (at_least: the network asks again for that reason; it changes nothing
 *   here but the question);
 * - ModifyInstanceAttribute instanceType of a stopped instance (attributes.c) first asks
 *   network.interface_limit_set {seq: type_seq + 1, max_interfaces} (interface_limit_hold):
 *   the network counts the interfaces under the lock, refuses when they are more than the
 *   new type takes, and records the new limit; then the type is written with that number
 *   only if the instance's number is still the one read (a concurrent change of the same
 *   instance: IncorrectModificationState), so the network's record always covers the
 *   type written. A DryRun only counts (network.instance_interface_count, uncached).
 * - A change that dies between the two (its process killed, its bus_ask timed out while
 *   the network did record) leaves the network's record (type_seq + 1, the new type's
 *   limit) of a type never written: the network holds attaches to the lower of the two
 *   limits while compute's number is behind it. The change marks the instance
 *   (instances.type_change_since, migration 023) before it asks; the write clears the
 *   mark. The reconcile pass takes the number of every mark older than
 *   compute.type_change_orphan_s (default: the call timeout + 5 s, past which no live
 *   change is still between its two steps) for the instance's current type: type_seq + 1,
 *   no type change. The network's record is then no newer than compute's answer, so the
 *   current type's limit holds; a change still in flight (slower than that) finds the
 *   number taken and is refused with IncorrectModificationState, as when two changes
 *   race. One UPDATE, conditional on the mark: idempotent, no other service asked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "jsonutil.h"
#include "log.h"

#define DEVICE_INDEXES 16   /* every instance's device indexes (0..15), whatever its type */

int compute_instance_interface_limit(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = json_str(body, "account", NULL), *id = json_str(body, "instance_id", NULL);
    if (!account || !id)
        return verr_set(e, 400, "InvalidParameterValue", "account and instance_id are required");
    const char *p[] = {id, account};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "ilim_type",
                                      "SELECT instance_type, type_seq FROM instances WHERE id = $1 AND account_id = $2",
                                      2, p);
    if (!r)
        return -1;
    /* Whether the instance exists is the network's to say (it knows an instance by its
     * primary interface, whatever compute holds: attachments.c); one compute does not hold
     * for the account, or whose type was taken out of the config since its launch, has no
     * limit but the device indexes */
    const char *name = PQntuples(r) ? PQgetvalue(r, 0, 0) : "";
    const instance_type_t *t = instance_type_find(compute_of(ctx), name);
    *reply = json_pack("{s:s, s:i, s:I}", "instance_type", name, "max_interfaces", t ? t->max_enis : DEVICE_INDEXES,
                       "seq", (json_int_t)(PQntuples(r) ? atoll(PQgetvalue(r, 0, 1)) : 0));
    return 0;
}

int interface_limit_hold(bus_ctx_t *ctx, const char *account, const char *id, long long seq, const instance_type_t *t,
                         verr_t *e)
{
    JSON_AUTO json_t *r = NULL;
    return bus_ask(ctx, "network", "network.interface_limit_set",
                   json_pack("{s:s, s:s, s:I, s:i, s:s}", "account", account, "instance_id", id, "seq",
                             (json_int_t)seq, "max_interfaces", t->max_enis, "instance_type", t->name),
                   compute_of(ctx)->call_timeout_ms, &r, e);
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

int interface_limit_mark(db_t *db, const char *id, long long seq, verr_t *e)
{
    char seq_s[24];
    snprintf(seq_s, sizeof seq_s, "%lld", seq);
    const char *p[] = {id, seq_s};
    /* its number changed since it was read: the write will refuse it; the mark of the
     * change that wrote it was cleared with its write */
    PG_AUTO PGresult *r = db_prepared(db, e, "ilim_mark", "UPDATE instances SET type_change_since = now() WHERE id = $1 "
                                      "AND type_seq = $2::bigint", 2, p);
    return r ? 0 : -1;
}

void interface_limits_reconcile(service_t *svc)
{
    const compute_t *c = svc->state;
    char age[24];
    snprintf(age, sizeof age, "%d", c->type_change_orphan_s);
    const char *p[] = {age};
    verr_t e;
    PG_AUTO PGresult *r = db_prepared(svc->db, &e, "ilim_orphans",
        "UPDATE instances SET type_seq = type_seq + 1, type_change_since = NULL WHERE type_change_since IS NOT NULL "
        "AND type_change_since < now() - make_interval(secs => $1::int) RETURNING id, instance_type, type_seq", 1, p);
    if (!r) {
        log_warn("type changes that died halfway: %s", e.message);
        return;
    }
    for (int i = 0; i < PQntuples(r); i++)
        log_info("%s: a type change was asked %d s ago or more and never written; number %s is its type %s's now",
                 PQgetvalue(r, i, 0), c->type_change_orphan_s, PQgetvalue(r, i, 2), PQgetvalue(r, i, 1));
}
