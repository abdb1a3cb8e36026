/* attachments.c - AttachNetworkInterface and DetachNetworkInterface: an interface of the
 * account plugged into a running instance after launch, and taken out again.
 *
 * The network knows an instance by its primary interface (port_create, device index 0):
 * an instance with none is InvalidInstanceID.NotFound here, whatever compute holds. An
 * attached interface names that primary (parent_eni) and takes its host and plugged
 * state, so the host's datapath puts it in the primary's place: for a container the
 * same network namespace as eth<DeviceIndex>, which the running container sees at once.
 * A QEMU guest (its primary is a tap) cannot take one this way: UnsupportedOperation,
 * before anything changes. plug/unplug of the primary carries its attached interfaces
 * along (ports.c); deleting the primary (the instance terminated) detaches them, as EC2
 * does for interfaces attached with DeleteOnTermination false. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "jsonutil.h"
#include "network.h"

#define MAX_DEVICE_INDEX 15
/* what an interface is once detached, whoever detaches it */
#define DETACHED "instance_id = NULL, device_index = NULL, attachment_id = NULL, parent_eni = NULL, host = NULL, " \
                 "plugged = false"

/* DeviceIndex as the Query API sends it (a string) or a JSON number. */
static int device_index(const json_t *body, long *out, verr_t *e)
{
    json_t *v = json_object_get(body, "DeviceIndex");
    char *end = NULL;
    if (json_is_integer(v))
        *out = (long)json_integer_value(v);
    else if (json_is_string(v) && *json_string_value(v))
        *out = strtol(json_string_value(v), &end, 10);
    else
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter DeviceIndex");
    if ((end && *end) || *out < 0 || *out > MAX_DEVICE_INDEX)
        return verr_set(e, 400, "InvalidParameterValue", "Value for parameter DeviceIndex is invalid: a device index "
                        "is 0 to %d", MAX_DEVICE_INDEX);
    return 0;
}

/* The instance's primary interface, locked: id, host ("" none), plugged, kind, zone, VPC. */
typedef struct primary {
    char eni[IDS_MAX], host[64], kind[8], az[64], vpc[IDS_MAX];
    int plugged;
} primary_t;

static int lock_primary(db_t *db, const char *account, const char *instance, primary_t *pr, verr_t *e)
{
    const char *p[] = {account, instance};
    PG_AUTO PGresult *r = db_prepared(db, e, "att_primary",
        "SELECT n.id, coalesce(n.host, ''), n.plugged, n.device_kind, s.az, n.vpc_id FROM enis n JOIN subnets s ON "
        "s.id = n.subnet_id WHERE n.account_id = $1 AND n.instance_id = $2 AND n.device_index = 0 FOR UPDATE OF n",
        2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance ID '%.64s' does not exist", instance);
    snprintf(pr->eni, sizeof pr->eni, "%s", PQgetvalue(r, 0, 0));
    snprintf(pr->host, sizeof pr->host, "%s", PQgetvalue(r, 0, 1));
    pr->plugged = PQgetvalue(r, 0, 2)[0] == 't';
    snprintf(pr->kind, sizeof pr->kind, "%s", PQgetvalue(r, 0, 3));
    snprintf(pr->az, sizeof pr->az, "%s", PQgetvalue(r, 0, 4));
    snprintf(pr->vpc, sizeof pr->vpc, "%s", PQgetvalue(r, 0, 5));
    return 0;
}

int net_attach_network_interface(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *eni = json_str(body, "NetworkInterfaceId", NULL);
    const char *inst = json_str(body, "InstanceId", NULL);
    long idx = 0;
    if (!account || device_index(body, &idx, e) < 0)
        return -1;
    if (!inst || strncmp(inst, "i-", 2) || strlen(inst) > 64)
        return verr_set(e, 400, "InvalidInstanceID.Malformed", "Invalid id: \"%.64s\"", inst ? inst : "");
    if (strcmp(json_str(body, "NetworkCardIndex", "0"), "0"))
        return verr_set(e, 400, "InvalidParameterValue", "Every instance has one network card: NetworkCardIndex is 0");
    db_t *db = service_db(ctx);
    primary_t pr;
    char att[IDS_MAX], idx_s[8];
    ids_new("eni-attach", att);
    snprintf(idx_s, sizeof idx_s, "%ld", idx);
    const char *p[] = {eni};
    PG_AUTO PGresult *r = NULL;
    PG_AUTO PGresult *u = NULL;
    if (db_begin(db, e) < 0 || net_owned(db, &NET_ENI, eni, account, 1, e) < 0 ||
        !(r = db_prepared(db, e, "att_eni", "SELECT n.instance_id, s.az, n.vpc_id FROM enis n JOIN subnets s ON "
                          "s.id = n.subnet_id WHERE n.id = $1", 1, p)) ||
        lock_primary(db, account, inst, &pr, e) < 0)
        goto fail;
    if (!PQgetisnull(r, 0, 0)) {
        verr_set(e, 400, "InvalidNetworkInterface.InUse", "Interface %s is currently in use by %s.", eni,
                 PQgetvalue(r, 0, 0));
        goto fail;
    }
    if (strcmp(PQgetvalue(r, 0, 1), pr.az) || strcmp(PQgetvalue(r, 0, 2), pr.vpc)) {
        verr_set(e, 400, "InvalidParameterCombination", "Interface %s (%s, %s) and instance %s (%s, %s) are not in "
                 "the same VPC and availability zone", eni, PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 1), inst, pr.vpc,
                 pr.az);
        goto fail;
    }
    /* QEMU opens its taps when it starts; a running guest would need a device hot-added
     * over QMP, which the qemu driver does not do yet */
    if (!strcmp(pr.kind, "tap")) {
        verr_set(e, 400, "UnsupportedOperation", "Instance %s runs under a driver (qemu) that cannot hot-plug a "
                 "network interface; only container instances can take one after launch", inst);
        goto fail;
    }
    if (net_dry_run(body, e) < 0)
        goto fail;
    const char *q[] = {eni, inst, idx_s, att, pr.eni, *pr.host ? pr.host : NULL, pr.plugged ? "t" : "f"};
    if (!(u = db_prepared(db, e, "att_set", "UPDATE enis SET instance_id = $2, device_index = $3::int, attachment_id = "
                          "$4, parent_eni = $5, host = $6, plugged = $7, device_kind = 'veth' WHERE id = $1", 7, q))) {
        int taken = !strcmp(db_last_sqlstate(db), "23505");
        db_rollback(db);
        if (!taken)
            return -1;
        *e = (verr_t){0};
        return verr_set(e, 400, "InvalidParameterValue", "Instance '%s' already has an interface attached at device "
                        "index '%ld'.", inst, idx);
    }
    if (hosts_touch_vpc(db, pr.vpc, *pr.host ? pr.host : NULL, e) < 0 || db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:s, s:i}", "attachmentId", att, "networkCardIndex", 0);
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int net_detach_network_interface(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *att = json_str(body, "AttachmentId", NULL);
    if (!account)
        return -1;
    if (!att)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter AttachmentId");
    db_t *db = service_db(ctx);
    const char *p[] = {att, account};
    PG_AUTO PGresult *r = NULL;
    PG_AUTO PGresult *u = NULL;
    if (db_begin(db, e) < 0 ||
        !(r = db_prepared(db, e, "det_find", "SELECT id, vpc_id, host, device_index FROM enis WHERE attachment_id = "
                          "$1 AND account_id = $2 FOR UPDATE", 2, p)))
        goto fail;
    if (!PQntuples(r)) {
        verr_set(e, 400, "InvalidAttachmentID.NotFound", "The attachment ID '%.64s' does not exist", att);
        goto fail;
    }
    if (!strcmp(PQgetvalue(r, 0, 3), "0")) {
        verr_set(e, 400, "OperationNotPermitted", "The network interface at device index 0 cannot be detached.");
        goto fail;
    }
    /* Force changes nothing here: the host's datapath takes the interface out whatever
     * the guest is doing with it, which is what Force asks of EC2 */
    const char *q[] = {PQgetvalue(r, 0, 0)};
    if (net_dry_run(body, e) < 0 ||
        !(u = db_prepared(db, e, "det_set", "UPDATE enis SET " DETACHED " WHERE id = $1", 1, q)) ||
        hosts_touch_vpc(db, PQgetvalue(r, 0, 1), PQgetisnull(r, 0, 2) ? NULL : PQgetvalue(r, 0, 2), e) < 0 ||
        db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int eni_detach_children(db_t *db, const char *primary, verr_t *e)
{
    const char *p[] = {primary};
    PG_AUTO PGresult *r = db_prepared(db, e, "det_children", "UPDATE enis SET " DETACHED " WHERE parent_eni = $1",
                                      1, p);
    return r ? 0 : -1;
}
