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
 * along (ports.c); deleting the primary (the instance terminated) deletes those attached
 * with DeleteOnTermination and detaches the others, as EC2 does.
 *
 * network.launch_interfaces (compute's launch task, after port_create) attaches the
 * interfaces RunInstances asked for beyond the primary (NetworkInterfaces DeviceIndex
 * 1..15: existing ones by id, or new ones made here) in one transaction: all or none.
 * They take the primary's kind too, so a QEMU guest gets a tap for each, which it opens
 * at its start (compute lists them in the instance's spec). Only compute's principal
 * may call it (the route's sender mask). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "enis.h"
#include "ids.h"
#include "interface_limit.h"
#include "jsonutil.h"
#include "network.h"

#define MAX_DEVICE_INDEX 15

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

/* The instance's primary interface, locked: id, host ("" none), plugged, kind, zone, VPC,
 * and the type change recorded on it (interface_limit.c: limit -1 none). */
typedef struct primary {
    char eni[IDS_MAX], host[64], kind[8], az[64], vpc[IDS_MAX];
    int plugged, limit;
    long long limit_seq;
} primary_t;

static int lock_primary(db_t *db, const char *account, const char *instance, primary_t *pr, verr_t *e)
{
    const char *p[] = {account, instance};
    PG_AUTO PGresult *r = db_prepared(db, e, "att_primary",
        "SELECT n.id, coalesce(n.host, ''), n.plugged, n.device_kind, s.az, n.vpc_id, coalesce(n.interface_limit, -1), "
        "n.interface_limit_seq FROM enis n JOIN subnets s ON s.id = n.subnet_id WHERE n.account_id = $1 AND "
        "n.instance_id = $2 AND n.device_index = 0 FOR UPDATE OF n", 2, p);
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
    pr->limit = atoi(PQgetvalue(r, 0, 6));
    pr->limit_seq = atoll(PQgetvalue(r, 0, 7));
    return 0;
}

/* The interface attached to the instance at idx, in the primary's place (its host, plugged
 * state and kind: a QEMU guest's is a tap it opens at its start); writes the attachment id. */
static int attach_set(db_t *db, const char *eni, const char *inst, long idx, const primary_t *pr, int dot,
                      char att[IDS_MAX], verr_t *e)
{
    char idx_s[8];
    ids_new("eni-attach", att);
    snprintf(idx_s, sizeof idx_s, "%ld", idx);
    const char *q[] = {eni, inst, idx_s, att, pr->eni, *pr->host ? pr->host : NULL, pr->plugged ? "t" : "f",
                       pr->kind, dot ? "t" : "f"};
    PG_AUTO PGresult *u = db_prepared(db, e, "att_set", "UPDATE enis SET instance_id = $2, device_index = $3::int, "
                                      "attachment_id = $4, parent_eni = $5, host = $6, plugged = $7, device_kind = "
                                      "$8, delete_on_termination = $9 WHERE id = $1", 9, q);
    return u ? 0 : -1;
}

/* The interface may join the instance: detached, in its primary's VPC and zone. */
static int attachable(db_t *db, const char *eni, const char *inst, const primary_t *pr, verr_t *e)
{
    const char *p[] = {eni};
    PG_AUTO PGresult *r = db_prepared(db, e, "att_eni", "SELECT n.instance_id, s.az, n.vpc_id FROM enis n JOIN "
                                      "subnets s ON s.id = n.subnet_id WHERE n.id = $1", 1, p);
    if (!r)
        return -1;
    if (!PQgetisnull(r, 0, 0))
        return verr_set(e, 400, "InvalidNetworkInterface.InUse", "Interface %s is currently in use by %s.", eni,
                        PQgetvalue(r, 0, 0));
    if (strcmp(PQgetvalue(r, 0, 1), pr->az) || strcmp(PQgetvalue(r, 0, 2), pr->vpc))
        return verr_set(e, 400, "InvalidParameterCombination", "Interface %s (%s, %s) and instance %s (%s, %s) are "
                        "not in the same VPC and availability zone", eni, PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 1),
                        inst, pr->vpc, pr->az);
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
    interface_limit_t lim;   /* the type's, asked of compute before anything is written */
    char att[IDS_MAX];
    if (interface_limit_ask(ctx, account, inst, 0, &lim, e) < 0)
        return -1;
    for (int again = 0;; again = 1) {
        if (db_begin(db, e) < 0 || net_owned(db, &NET_ENI, eni, account, 1, e) < 0 ||
            lock_primary(db, account, inst, &pr, e) < 0 || attachable(db, eni, inst, &pr, e) < 0)
            goto fail;
        /* compute's answer older than a type change written since: asked again (the
         * handler runs again from its start with it), nothing written yet */
        if (!interface_limit_settle(&lim, pr.limit_seq, pr.limit, again))
            break;
        db_rollback(db);
        if (interface_limit_ask(ctx, account, inst, pr.limit_seq, &lim, e) < 0)
            return -1;
    }
    if (interface_limit_check(db, inst, &lim, e) < 0)
        goto fail;
    /* a running QEMU guest gets the tap plugged in over QMP (the agent's qemu_nics.c) */
    if (net_dry_run(body, e) < 0)
        goto fail;
    if (attach_set(db, eni, inst, idx, &pr, 0, att, e) < 0) {
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
        !(r = db_prepared(db, e, "det_find", "SELECT id, vpc_id, host, device_index, device_kind FROM enis WHERE "
                          "attachment_id = $1 AND account_id = $2 FOR UPDATE", 2, p)))
        goto fail;
    if (!PQntuples(r)) {
        verr_set(e, 400, "InvalidAttachmentID.NotFound", "The attachment ID '%.64s' does not exist", att);
        goto fail;
    }
    if (!strcmp(PQgetvalue(r, 0, 3), "0")) {
        verr_set(e, 400, "OperationNotPermitted", "The network interface at device index 0 cannot be detached.");
        goto fail;
    }
    /* a running QEMU guest's tap is taken out over QMP (the agent's qemu_nics.c) */
    /* Force changes nothing here: the host's datapath takes the interface out whatever
     * the guest is doing with it, which is what Force asks of EC2 */
    const char *q[] = {PQgetvalue(r, 0, 0)};
    if (net_dry_run(body, e) < 0 ||
        !(u = db_prepared(db, e, "det_set", "UPDATE enis SET " ENI_DETACHED " WHERE id = $1", 1, q)) ||
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
    PG_AUTO PGresult *d = db_prepared(db, e, "det_dot", "SELECT id FROM enis WHERE parent_eni = $1 AND "
                                      "delete_on_termination ORDER BY id FOR UPDATE", 1, p);
    if (!d)
        return -1;
    for (int i = 0; i < PQntuples(d); i++)
        if (eni_remove(db, PQgetvalue(d, i, 0), e) < 0)
            return -1;
    PG_AUTO PGresult *r = db_prepared(db, e, "det_children", "UPDATE enis SET " ENI_DETACHED " WHERE parent_eni = $1",
                                      1, p);
    return r ? 0 : -1;
}

int eni_launch_check(db_t *db, const char *account, const char *eni, const char *az, json_t **reply, verr_t *e)
{
    const char *p[] = {eni};
    PG_AUTO PGresult *r = NULL;
    if (net_owned(db, &NET_ENI, eni, account, 0, e) < 0 ||
        !(r = db_prepared(db, e, "lc_eni", "SELECT n.subnet_id, n.vpc_id, s.az, n.instance_id, (SELECT "
                          "coalesce(json_agg(group_id ORDER BY group_id), '[]') FROM eni_groups WHERE eni_id = n.id)"
                          "::text, host(n.ip) FROM enis n JOIN subnets s ON s.id = n.subnet_id WHERE n.id = $1", 1,
                          p)))
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 400, "InvalidNetworkInterfaceID.NotFound", "The network interface '%.64s' does not exist",
                        eni);
    if (!PQgetisnull(r, 0, 3))
        return verr_set(e, 400, "InvalidNetworkInterface.InUse", "Interface %s is currently in use by %s.", eni,
                        PQgetvalue(r, 0, 3));
    if (az && *az && strcmp(az, PQgetvalue(r, 0, 2)))
        return verr_set(e, 400, "InvalidParameterCombination", "The network interface '%s' is in %s, not in %.64s",
                        eni, PQgetvalue(r, 0, 2), az);
    *reply = json_pack("{s:s, s:s, s:s, s:o, s:s}", "subnet_id", PQgetvalue(r, 0, 0), "vpc_id", PQgetvalue(r, 0, 1),
                       "az", PQgetvalue(r, 0, 2), "group_ids", json_loads(PQgetvalue(r, 0, 4), 0, NULL), "ip",
                       PQgetvalue(r, 0, 5));
    return 0;
}

/* One interface a launch gives its instance at idx: the existing one x names (available,
 * in the primary's VPC and zone), or a new one made now, without a public address (EC2
 * gives none to an instance launched with more than one interface). */
static int launch_one(bus_ctx_t *ctx, const char *account, const char *inst, const primary_t *pr, const json_t *x,
                      long idx, verr_t *e)
{
    db_t *db = service_db(ctx);
    char made[IDS_MAX], att[IDS_MAX];
    const char *eni = json_str(x, "eni", NULL);
    if (!eni) {
        eni_spec_t s = {.account = account, .subnet_id = json_str(x, "subnet", NULL),
                        .private_ip = json_str(x, "private_ip", NULL), .groups = json_object_get(x, "groups"),
                        .description = json_str(x, "description", ""), .device_kind = pr->kind};
        if (!s.subnet_id)
            return verr_set(e, 400, "InvalidParameterValue", "interface %ld: subnet or eni is required", idx);
        if (eni_insert(db, service_of(ctx), &s, NULL, made, e) < 0)
            return -1;
        eni = made;
    } else if (net_owned(db, &NET_ENI, eni, account, 1, e) < 0) {
        return -1;
    }
    if (attachable(db, eni, inst, pr, e) < 0)
        return -1;
    return attach_set(db, eni, inst, idx, pr, json_is_true(json_object_get(x, "delete_on_termination")), att, e);
}

/* The instance's interfaces beyond the primary, as compute records them (port_create's
 * fields, with device_index), each with its facts: compute stores them at once, so the
 * RunInstances answer that waits for this launch shows an existing interface attached
 * here without waiting for the facts' push (under load it came after the answer). */
static json_t *launch_reply(db_t *db, const char *primary, verr_t *e)
{
    const char *p[] = {primary};
    PG_AUTO PGresult *r = db_prepared(db, e, "li_list",
        "SELECT n.id, n.subnet_id, n.vpc_id, n.mac::text, host(n.ip), s.cidr::text, n.device_index, (SELECT "
        "coalesce(json_agg(json_build_object('groupId', g.id, 'groupName', g.name) ORDER BY g.id), '[]') FROM "
        "eni_groups eg JOIN security_groups g ON g.id = eg.group_id WHERE eg.eni_id = n.id)::text, eni_facts(n)::text "
        "FROM enis n JOIN subnets s ON s.id = n.subnet_id WHERE n.parent_eni = $1 ORDER BY n.device_index", 1, p);
    if (!r)
        return NULL;
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        cidr_t c;
        char gw[CIDR_STR_MAX];
        cidr_parse(PQgetvalue(r, i, 5), &c);
        cidr_ip_format(cidr_gateway(&c), gw);
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:i, s:o, s:o*}", "eni_id",
                              PQgetvalue(r, i, 0), "subnet_id", PQgetvalue(r, i, 1), "vpc_id", PQgetvalue(r, i, 2),
                              "mac", PQgetvalue(r, i, 3), "ip", PQgetvalue(r, i, 4), "prefix_len", c.len, "gateway",
                              gw, "device_index", atoi(PQgetvalue(r, i, 6)), "groups",
                              json_loads(PQgetvalue(r, i, 7), 0, NULL), "facts",
                              json_loads(PQgetvalue(r, i, 8), 0, NULL)));
    }
    return list;
}

int net_launch_interfaces(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = json_str(body, "account", NULL), *inst = json_str(body, "instance_id", NULL);
    const char *primary = json_str(body, "primary", NULL);
    const json_t *list = json_object_get(body, "interfaces");
    if (!account || !inst || !primary || !json_is_array(list) || json_array_size(list) > MAX_DEVICE_INDEX)
        return verr_set(e, 400, "InvalidParameterValue", "account, instance_id, primary and up to %d interfaces are "
                        "required", MAX_DEVICE_INDEX);
    db_t *db = service_db(ctx);
    primary_t pr;
    if (db_begin(db, e) < 0 || lock_primary(db, account, inst, &pr, e) < 0)
        goto fail;
    if (strcmp(pr.eni, primary)) {
        verr_set(e, 400, "InvalidParameterValue", "The primary interface of %s is %s, not %.64s", inst, pr.eni,
                 primary);
        goto fail;
    }
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x) {
        long idx = (long)json_int(x, "device_index", -1);
        char idx_s[24];
        snprintf(idx_s, sizeof idx_s, "%ld", idx);
        const char *p[] = {inst, idx_s};
        if (idx < 1 || idx > MAX_DEVICE_INDEX) {
            verr_set(e, 400, "InvalidParameterValue", "device_index is 1 to %d", MAX_DEVICE_INDEX);
            goto fail;
        }
        /* there already: this call's retry, after its commit (one transaction made all) */
        PG_AUTO PGresult *had = db_prepared(db, e, "li_had", "SELECT id FROM enis WHERE instance_id = $1 AND "
                                            "device_index = $2::int", 2, p);
        if (!had || (!PQntuples(had) && launch_one(ctx, account, inst, &pr, x, idx, e) < 0))
            goto fail;
    }
    if (hosts_touch_vpc(db, pr.vpc, *pr.host ? pr.host : NULL, e) < 0 || db_commit(db, e) < 0)
        goto fail;
    json_t *ports = launch_reply(db, pr.eni, e);
    if (!ports)
        return -1;
    *reply = json_pack("{s:o}", "interfaces", ports);
    return 0;
fail:
    db_rollback(db);
    return -1;
}
