/* source_dest_check.c - an instance's SourceDestCheck, which is its primary interface's
 * (EC2: "the value must be false for a NAT instance"): ModifyInstanceAttribute
 * SourceDestCheck.Value (awscli --[no-]source-dest-check) or Attribute sourceDestCheck +
 * Value sets it on that interface in the network service (which makes its hosts'
 * datapaths apply it), DescribeInstanceAttribute sourceDestCheck reads it back. Both ask
 * the network with bus_ask, so no worker of compute waits on it; compute writes nothing. */
#include <stdio.h>
#include <string.h>

#include "compute.h"
#include "ids.h"
#include "jsonutil.h"

/* The instance of the caller (scope NULL: any) and its account; terminated ones cannot
 * be changed (IncorrectInstanceState), as EC2 answers. */
static int instance_of(bus_ctx_t *ctx, const char *scope, const char *id, int changing, char account[16],
                       verr_t *e)
{
    if (!id || !ids_valid("i", id))
        return verr_set(e, 400, "InvalidInstanceID.Malformed", "Invalid id: \"%.64s\"", id ? id : "");
    const char *p[] = {id, scope};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "sdc_inst",
        "SELECT account_id, state FROM instances WHERE id = $1 AND ($2::text IS NULL OR account_id = $2)", 2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id);
    if (changing && !strcmp(PQgetvalue(r, 0, 1), "terminated"))
        return verr_set(e, 400, "IncorrectInstanceState",
                        "The instance '%s' is not in a state from which it can be modified.", id);
    snprintf(account, 16, "%s", PQgetvalue(r, 0, 0));
    return 0;
}

int instance_sdc_modify(bus_ctx_t *ctx, const char *scope, const char *id, const json_t *body, json_t **reply,
                        verr_t *e)
{
    const json_t *v = json_object_get(body, "SourceDestCheck");
    const char *value = v ? json_str(v, "Value", NULL) : json_str(body, "Value", NULL);
    if (v && json_object_get(body, "Attribute"))
        return verr_set(e, 400, "InvalidParameterCombination", "Only one attribute can be modified at a time");
    if (!value)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter value");
    if (strcmp(value, "true") && strcmp(value, "false"))
        return verr_set(e, 400, "InvalidParameterValue", "Value (%.16s) for sourceDestCheck is invalid", value);
    char account[16];
    if (instance_of(ctx, scope, id, 1, account, e) < 0 || network_enis_refuse_several(service_db(ctx), id, e) < 0)
        return -1;
    if (json_flag(body, "DryRun"))
        return verr_set(e, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.");
    JSON_AUTO json_t *r = NULL;
    if (bus_ask(ctx, "network", "network.instance_source_dest_check",
                json_pack("{s:s, s:s, s:s}", "account", account, "instance", id, "value", value),
                compute_of(ctx)->call_timeout_ms, &r, e) < 0) {
        if (!ctx->waiting && !strcmp(e->code, "InvalidInstanceID.NotFound")) {
            *e = (verr_t){0};   /* the launch has not made its interface yet */
            return verr_set(e, 400, "IncorrectInstanceState", "The instance '%s' has no network interface yet.", id);
        }
        return -1;
    }
    /* asked before anything is written: the handler runs again with the answer, and
     * storing a version twice changes nothing */
    if (network_enis_store_answer(service_db(ctx), r, e) < 0)
        return -1;
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
}

int instance_sdc_describe(bus_ctx_t *ctx, const char *scope, const char *id, json_t **reply, verr_t *e)
{
    char account[16];
    if (instance_of(ctx, scope, id, 0, account, e) < 0)
        return -1;
    /* the primary's, as the network last told compute; on until it has (EC2's default) */
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "sdc_of",
        "SELECT source_dest_check FROM network_enis WHERE instance_id = $1 AND device_index = 0", 1, p);
    if (!r)
        return -1;
    int on = !PQntuples(r) || PQgetvalue(r, 0, 0)[0] == 't';
    *reply = json_pack("{s:s, s:{s:b}}", "instanceId", id, "sourceDestCheck", "value", on);
    return 0;
}
