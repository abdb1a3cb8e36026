/* instance_enis.c - what compute shows of an instance's interfaces and cannot know by
 * itself: the interfaces attached after launch (AttachNetworkInterface, attachments.c)
 * and the SourceDestCheck of each (ModifyNetworkInterfaceAttribute, eni_attrs.c), and
 * ModifyInstanceAttribute SourceDestCheck, which is set on the instance's primary
 * interface. Compute asks these with bus_ask (no worker of it waits), so they stay small:
 * network.instance_enis answers only the exceptions, the interfaces that are not a
 * primary with the check on; a primary with it on, which compute already shows, is left
 * out, so a page of 1,000 instances with one interface each is an empty answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "instance_enis.h"
#include "jsonutil.h"
#include "network.h"

static int from_compute(bus_ctx_t *ctx, verr_t *e)
{
    if (ctx->msg->from && ctx->msg->from->kind == BUS_P_COMPUTE)
        return 0;
    return verr_set(e, 403, "UnauthorizedOperation", "%s is for the compute service only", ctx->msg->type);
}

#define IFACE_COLS                                                                                                   \
    "SELECT n.instance_id, n.id, n.device_index, coalesce(n.attachment_id, ''), n.subnet_id, n.vpc_id, n.mac::text, " \
    "host(n.ip), n.description, n.source_dest_check, (SELECT coalesce(json_agg(json_build_object('groupId', g.id, "  \
    "'groupName', g.name) ORDER BY g.id), '[]')::text FROM eni_groups eg JOIN security_groups g ON g.id = "           \
    "eg.group_id WHERE eg.eni_id = n.id) FROM enis n WHERE n.instance_id IS NOT NULL AND (n.device_index <> 0 OR "   \
    "NOT n.source_dest_check) AND ($1::text IS NULL OR n.account_id = $1) "

/* network.instance_enis {account?, instances?: [ids]} -> {"interfaces": [{instance, eni,
 * index, attachment, subnet, vpc, mac, ip, description, sdc, groups}]} sorted by instance
 * and device index: every interface of the account's instances (all accounts' when
 * account is absent: the operator's view; the listed instances only when instances is
 * given) that is attached at a device index above 0 or has SourceDestCheck off. */
int net_instance_enis(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (from_compute(ctx, e) < 0)
        return -1;
    const char *account = json_str(body, "account", NULL);
    const json_t *list = json_object_get(body, "instances");
    size_t n = json_array_size(list);
    AUTOFREE const char **ids = xcalloc(n + 1, sizeof *ids);
    for (size_t i = 0; i < n; i++)
        if (!(ids[i] = json_string_value(json_array_get(list, i))))
            return verr_set(e, 400, "InvalidParameterValue", "instances are instance ids");
    AUTOFREE char *arr = list ? db_text_array(ids, n) : NULL;
    const char *p[] = {account, arr};
    db_t *db = service_db(ctx);
    /* by instances: its own statement, so its plan uses (instance_id, device_index) */
    PG_AUTO PGresult *r = arr
        ? db_prepared(db, e, "ienis_ids", IFACE_COLS "AND n.instance_id = ANY($2::text[]) ORDER BY 1, 3", 2, p)
        : db_prepared(db, e, "ienis_all", IFACE_COLS "AND $2::text IS NULL ORDER BY 1, 3", 2, p);
    if (!r)
        return -1;
    json_t *out = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(out, json_pack(
            "{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:o}", "instance", PQgetvalue(r, i, 0), "eni",
            PQgetvalue(r, i, 1), "index", atoi(PQgetvalue(r, i, 2)), "attachment", PQgetvalue(r, i, 3), "subnet",
            PQgetvalue(r, i, 4), "vpc", PQgetvalue(r, i, 5), "mac", PQgetvalue(r, i, 6), "ip", PQgetvalue(r, i, 7),
            "description", PQgetvalue(r, i, 8), "sdc", PQgetvalue(r, i, 9)[0] == 't', "groups",
            json_loads(PQgetvalue(r, i, 10), 0, NULL)));
    *reply = json_pack("{s:o}", "interfaces", out);
    return 0;
}

/* network.instance_source_dest_check {account, instance, value: "true"|"false"} ->
 * {eni, sourceDestCheck}: ModifyInstanceAttribute SourceDestCheck, set on the instance's
 * primary interface as ModifyNetworkInterfaceAttribute would (the hosts of its VPC get a
 * new generation when it changes; setting it again changes nothing). An instance without
 * a primary interface yet (its launch has not made the port) is
 * InvalidInstanceID.NotFound here; compute, which knows the instance, says so better. */
int net_instance_source_dest_check(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (from_compute(ctx, e) < 0)
        return -1;
    const char *account = json_str(body, "account", NULL), *inst = json_str(body, "instance", NULL);
    const char *val = json_str(body, "value", "");
    if (!account || !inst || (strcmp(val, "true") && strcmp(val, "false")))
        return verr_set(e, 400, "InvalidParameterValue", "account, instance and value (true or false) are required");
    db_t *db = service_db(ctx);
    const char *p[] = {account, inst};
    PG_AUTO PGresult *r = NULL;
    if (db_begin(db, e) < 0 ||
        !(r = db_prepared(db, e, "isdc_find", "SELECT id FROM enis WHERE account_id = $1 AND instance_id = $2 "
                          "AND device_index = 0 FOR UPDATE", 2, p)))
        goto fail;
    if (!PQntuples(r)) {
        verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance '%.64s' has no network interface", inst);
        goto fail;
    }
    if (eni_set_source_dest_check(db, PQgetvalue(r, 0, 0), val, e) < 0 || db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:s, s:b}", "eni", PQgetvalue(r, 0, 0), "sourceDestCheck", !strcmp(val, "true"));
    return 0;
fail:
    db_rollback(db);
    return -1;
}
