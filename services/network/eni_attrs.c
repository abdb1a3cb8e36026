/* eni_attrs.c - ModifyNetworkInterfaceAttribute and DescribeNetworkInterfaceAttribute for
 * an interface's SourceDestCheck and Description (one attribute per call, as on EC2), and
 * Modify of its attachment's DeleteOnTermination, the primary's too, as EC2 allows: a
 * primary with it false outlives its instance, available again with its address, MAC,
 * groups and tags (port_delete detaches it as it does an interface adopted at launch,
 * whose flag is false from its adoption: ports.c's port_keep), and one adopted at launch
 * set true goes with its instance.
 * The check is enforced by each host's datapath (docs/network.md, "Security groups"), so
 * changing it grows the generation of the hosts of the interface's VPC. */
#include <stdio.h>
#include <string.h>

#include "jsonutil.h"
#include "network.h"

/* The parameters of ModifyNetworkInterfaceAttribute that name an attribute. */
static const char *const attrs[] = {"SourceDestCheck", "Description", "SecurityGroupId", "Attachment",
                                    "EnaSrdSpecification", "EnablePrimaryIpv6", "ConnectionTrackingSpecification",
                                    "AssociatePublicIpAddress", "AssociatedSubnetId"};

/* Attachment {AttachmentId, DeleteOnTermination}: the interface's current attachment's
 * flag, which decides whether it is deleted or detached when its instance's primary goes
 * (attachments.c). */
static int delete_on_termination(bus_ctx_t *ctx, const char *account, const char *id, const json_t *att,
                                 const json_t *body, json_t **reply, verr_t *e)
{
    const char *aid = json_str(att, "AttachmentId", NULL), *val = json_str(att, "DeleteOnTermination", NULL);
    const json_t *b = json_object_get(att, "DeleteOnTermination");
    if (json_is_boolean(b))
        val = json_is_true(b) ? "true" : "false";
    if (!aid || !val)
        return verr_set(e, 400, "MissingParameter", "Attachment needs AttachmentId and DeleteOnTermination");
    if (strcmp(val, "true") && strcmp(val, "false"))
        return verr_set(e, 400, "InvalidParameterValue", "Attachment.DeleteOnTermination is true or false");
    db_t *db = service_db(ctx);
    const char *p[] = {id, aid};
    PG_AUTO PGresult *r = NULL;
    if (net_owned(db, &NET_ENI, id, account, 0, e) < 0 ||
        !(r = db_prepared(db, e, "eni_att_of", "SELECT device_index FROM enis WHERE id = $1 AND attachment_id = $2",
                          2, p)))
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 400, "InvalidAttachmentID.NotFound", "The attachment ID '%.64s' does not exist", aid);
    if (net_dry_run(body, e) < 0)
        return -1;
    const char *q[] = {id, aid, val};
    PG_AUTO PGresult *u = db_prepared(db, e, "eni_set_dot", "UPDATE enis SET delete_on_termination = $3::boolean "
                                      "WHERE id = $1 AND attachment_id = $2", 3, q);
    if (!u)
        return -1;
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
}

int net_modify_network_interface_attribute(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *id = json_str(body, "NetworkInterfaceId", NULL);
    if (!account)
        return -1;
    const char *which = NULL;
    int n = 0;
    for (size_t i = 0; i < ARRAY_LEN(attrs); i++)
        if (json_object_get(body, attrs[i])) {
            which = attrs[i];
            n++;
        }
    if (n != 1)
        return verr_set(e, 400, "InvalidParameterCombination", "Exactly one attribute is modified per call "
                        "(SourceDestCheck, Description or Attachment here).");
    if (!strcmp(which, "Attachment"))
        return delete_on_termination(ctx, account, id, json_object_get(body, which), body, reply, e);
    if (strcmp(which, "SourceDestCheck") && strcmp(which, "Description"))
        return verr_set(e, 400, "InvalidParameterCombination",
                        "%s cannot be modified here: only SourceDestCheck, Description and Attachment can.", which);
    const char *val = json_str(json_object_get(body, which), "Value", NULL);
    if (!val)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter %s.Value", which);
    if (!strcmp(which, "SourceDestCheck") ? strcmp(val, "true") && strcmp(val, "false") : strlen(val) > 255)
        return verr_set(e, 400, "InvalidParameterValue", "%s.Value is invalid: %s", which,
                        strcmp(which, "Description") ? "true or false" : "at most 255 characters");
    db_t *db = service_db(ctx);
    if (net_owned(db, &NET_ENI, id, account, 0, e) < 0 || net_dry_run(body, e) < 0)
        return -1;
    const char *p[] = {id, val};
    PG_AUTO PGresult *r = NULL;
    if (!strcmp(which, "Description")) {
        if (!(r = db_prepared(db, e, "eni_set_desc", "UPDATE enis SET description = $2 WHERE id = $1", 2, p)))
            return -1;
    } else if (db_begin(db, e) < 0 || eni_set_source_dest_check(db, id, val, e) < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;
    }
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
}

int eni_set_source_dest_check(db_t *db, const char *eni_id, const char *value, verr_t *e)
{
    const char *p[] = {eni_id, value};
    PG_AUTO PGresult *r = db_prepared(db, e, "eni_set_sdc", "UPDATE enis SET source_dest_check = $2 WHERE id = $1 "
                                      "AND source_dest_check <> $2 RETURNING vpc_id, host", 2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))   /* already so: nothing for the hosts */
        return 0;
    return hosts_touch_vpc(db, PQgetvalue(r, 0, 0), PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1), e);
}

int net_describe_network_interface_attribute(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = net_account(ctx, e), *id = json_str(body, "NetworkInterfaceId", NULL);
    const char *attr = json_str(body, "Attribute", "");
    if (!account)
        return -1;
    if (strcmp(attr, "sourceDestCheck") && strcmp(attr, "description"))
        return verr_set(e, 400, "InvalidParameterValue", "Value (%.64s) for parameter attribute is invalid: "
                        "sourceDestCheck and description are supported here", attr);
    db_t *db = service_db(ctx);
    if (net_owned(db, &NET_ENI, id, account, 0, e) < 0)
        return -1;
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, e, "eni_get_attrs", "SELECT source_dest_check, description FROM enis "
                                      "WHERE id = $1", 1, p);
    if (!r || !PQntuples(r))
        return r ? verr_set(e, 400, "InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '%.64s' does not "
                            "exist", id) : -1;
    *reply = json_pack("{s:s}", "networkInterfaceId", id);
    if (!strcmp(attr, "sourceDestCheck"))
        json_object_set_new(*reply, "sourceDestCheck", json_pack("{s:b}", "value", PQgetvalue(r, 0, 0)[0] == 't'));
    else
        json_object_set_new(*reply, "description", json_pack("{s:s}", "value", PQgetvalue(r, 0, 1)));
    return 0;
}
