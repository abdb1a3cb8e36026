/* interface_limit.c - the instance type's network interface limit, for the changes of an
 * instance's interfaces after its launch (RunInstances checks its own, in compute).
 *
 * The network does not know instance types: compute does (compute.instance_types
 * :max_interfaces). Two changes must meet: AttachNetworkInterface (here) and
 * ModifyInstanceAttribute instanceType of a stopped instance (compute). They meet under
 * the instance's primary interface's row lock, which every attach to the instance takes
 * first (attachments.c), with no handler of either service waiting on the other:
 *
 * - a type change numbers the type it writes (compute's instances.type_seq + 1) and,
 *   before it writes it, asks network.interface_limit_set {seq, max_interfaces} here
 *   (bus_ask): under the row lock the interfaces are counted (AttachmentLimitExceeded
 *   when they are more than the new type takes) and (seq, limit) recorded on the primary's
 *   row (enis.interface_limit_seq / interface_limit, migration 018; two changes with the
 *   same number keep the lower limit). Compute then writes the type only if its number is
 *   still the one it read, so at most one change is written per number;
 * - an attach asks compute.instance_interface_limit (bus_ask, before it writes) for the
 *   type's limit and number c, then locks the primary's row and reads its (seq j, limit R):
 *     j <= c: no change since compute answered: compute's limit is the type's;
 *     j == c + 1: a change is in flight (or died between its two steps): the type is
 *       c's or the change's, whose limit is R or more: the lower of the two holds;
 *     j > c + 1: compute's answer is older than a change written since: asked again
 *       (at_least j, a new question), then as above (the lower of the two if it is
 *       still behind).
 *   The count is then taken under the lock (READ COMMITTED: after it), so a change that
 *   counted before this attach is seen by its record, and one that counts after sees
 *   this attach's interface.
 * A change that died after its record and before its write leaves (c + 1, R): attaches
 * are held to the lower of the two types until the next type change of the instance (a
 * retry of the same one, as every SDK retries) writes c + 1: never more interfaces than
 * the type takes, possibly fewer for that while (docs/compute.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interface_limit.h"
#include "jsonutil.h"

int interface_limit_ask(bus_ctx_t *ctx, const char *account, const char *instance, long long at_least,
                        interface_limit_t *out, verr_t *e)
{
    JSON_AUTO json_t *r = NULL;
    json_t *q = json_pack("{s:s, s:s}", "account", account, "instance_id", instance);
    if (at_least > 0)
        json_object_set_new(q, "at_least", json_integer(at_least));
    if (bus_ask(ctx, "compute", "compute.instance_interface_limit", q, net_timeout_ms(ctx), &r, e) < 0)
        return -1;
    out->max = (int)json_int(r, "max_interfaces", 0);
    out->seq = json_int(r, "seq", 0);   /* a compute older than migration 021: 0 */
    snprintf(out->type, sizeof out->type, "%s", json_str(r, "instance_type", ""));
    if (out->max < 1)
        return verr_set(e, 500, "InternalError", "compute answered no interface limit for %.64s", instance);
    return 0;
}

int interface_limit_settle(interface_limit_t *lim, long long row_seq, int row_limit, int asked_again)
{
    if (row_limit < 0 || row_seq <= lim->seq)
        return 0;
    if (row_seq > lim->seq + 1 && !asked_again)
        return 1;
    if (row_limit < lim->max)
        lim->max = row_limit;
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

/* EC2's words for too many interfaces (as RunInstances says them). */
static int exceeded(long n, const char *type, verr_t *e)
{
    return verr_set(e, 400, "AttachmentLimitExceeded", "Interface count %ld exceeds the limit for %s", n, type);
}

int interface_limit_check(db_t *db, const char *instance, const interface_limit_t *lim, verr_t *e)
{
    long n;
    if (count_of(db, instance, &n, e) < 0)
        return -1;
    return n + 1 > lim->max ? exceeded(n + 1, lim->type, e) : 0;
}

int net_interface_limit_set(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = json_str(body, "account", NULL), *inst = json_str(body, "instance_id", NULL);
    const char *type = json_str(body, "instance_type", "");
    json_int_t seq = json_int(body, "seq", 0), max = json_int(body, "max_interfaces", 0);
    if (!account || !inst || seq < 1 || max < 1 || max > 1000)
        return verr_set(e, 400, "InvalidParameterValue", "account, instance_id, seq and max_interfaces are required");
    db_t *db = service_db(ctx);
    char seq_s[24], max_s[24];
    snprintf(seq_s, sizeof seq_s, "%lld", (long long)seq);
    snprintf(max_s, sizeof max_s, "%lld", (long long)max);
    const char *p[] = {account, inst};
    PG_AUTO PGresult *r = NULL;
    PG_AUTO PGresult *u = NULL;
    long n = 0;
    if (db_begin(db, e) < 0 ||
        !(r = db_prepared(db, e, "ilim_lock", "SELECT id FROM enis WHERE account_id = $1 AND instance_id = $2 AND "
                          "device_index = 0 FOR UPDATE", 2, p)))
        goto fail;
    /* no primary (an instance whose launch made none): nothing can be attached to it */
    if (PQntuples(r)) {
        if (count_of(db, inst, &n, e) < 0)
            goto fail;
        if (n > max) {
            exceeded(n, type, e);
            goto fail;
        }
        /* a newer number replaces, the same keeps the lower, an older one (a change
         * whose write compute will refuse: its number is taken) changes nothing */
        const char *q[] = {PQgetvalue(r, 0, 0), seq_s, max_s};
        if (!(u = db_prepared(db, e, "ilim_set", "UPDATE enis SET interface_limit = CASE WHEN $2::bigint > "
                              "interface_limit_seq THEN $3::int ELSE least(coalesce(interface_limit, $3::int), "
                              "$3::int) END, interface_limit_seq = $2::bigint WHERE id = $1 AND "
                              "interface_limit_seq <= $2::bigint", 3, q)))
            goto fail;
    }
    if (db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:I}", "count", (json_int_t)n);
    return 0;
fail:
    db_rollback(db);
    return -1;
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
