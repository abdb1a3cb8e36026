/* instance_groups.c - ModifyInstanceAttribute groupSet (GroupId.N): an instance's
 * security groups changed, running or stopped, as EC2 does. The groups are checked as a
 * launch's are (launch_facts_network with the instance's subnet: unknown
 * InvalidGroup.NotFound, of another VPC InvalidParameter), written to the instance in one
 * transaction with a groups:<instance>:<n> task; the task sets them on the instance's
 * port (network.port_set_groups, whose hosts then apply the rules) and records the port's
 * answer, which DescribeInstances shows. Every task reads the instance's groups when it
 * runs, so the last change wins whatever order the tasks run in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "ids.h"
#include "jsonutil.h"
#include "launch_network.h"
#include "log.h"

static int gone(const char *state) { return !strcmp(state, "terminated") || !strcmp(state, "shutting-down"); }

static int not_modifiable(const char *id, verr_t *e)
{
    return verr_set(e, 400, "IncorrectInstanceState",
                    "The instance '%s' is not in a state from which it can be modified.", id);
}

/* The subnet (or zone) the instance's interface is in, for the check. */
static int where(db_t *db, const char *scope, const char *id, char account[16], json_t *check, verr_t *e)
{
    const char *p[] = {id, scope};
    PG_AUTO PGresult *r = db_prepared(db, e, "grp_where",
        "SELECT i.account_id, COALESCE((SELECT f.subnet_id FROM instance_interfaces f WHERE f.instance_id = i.id "
        "AND f.device_index = 0 AND NOT f.deleted), i.subnet_id), i.zone, i.state FROM instances i WHERE i.id = $1 "
        "AND ($2::text IS NULL OR i.account_id = $2)", 2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id);
    if (gone(PQgetvalue(r, 0, 3)))
        return not_modifiable(id, e);
    snprintf(account, 16, "%s", PQgetvalue(r, 0, 0));
    json_object_set_new(check, "account", json_string(account));
    if (!PQgetisnull(r, 0, 1) && *PQgetvalue(r, 0, 1))
        json_object_set_new(check, "subnet", json_string(PQgetvalue(r, 0, 1)));
    else
        json_object_set_new(check, "az", json_string(PQgetvalue(r, 0, 2)));
    return 0;
}

int instance_groups_modify(bus_ctx_t *ctx, const char *scope, const char *id, const json_t *groups, int dry_run,
                           json_t **reply, verr_t *e)
{
    if (!id || !ids_valid("i", id))
        return verr_set(e, 400, "InvalidInstanceID.Malformed", "Invalid id: \"%.64s\"", id ? id : "");
    if (!json_is_array(groups) || !json_array_size(groups))
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter groupId");
    if (launch_net_group_ids_valid(groups, "GroupId", e) < 0)
        return -1;
    if (json_array_size(groups) > 5)
        return verr_set(e, 400, "SecurityGroupsPerInterfaceLimitExceeded", "At most 5 security groups");
    db_t *db = service_db(ctx);
    char account[16], state[32];
    JSON_AUTO json_t *check = json_object(), *facts = NULL;
    if (where(db, scope, id, account, check, e) < 0 || network_enis_refuse_several(db, id, e) < 0)
        return -1;
    json_object_set(check, "groups", (json_t *)groups);
    if (launch_facts_network(ctx, account, check, &facts, e) < 0)
        return -1;
    AUTOFREE char *doc = json_dumps(json_object_get(facts, "group_ids"), JSON_COMPACT);
    const char *p[] = {id, doc};
    PG_AUTO PGresult *u = NULL;
    if (db_begin(db, e) < 0 || instance_lock(db, account, id, state, e) < 0)
        goto fail;
    if (gone(state)) {
        not_modifiable(id, e);
        goto fail;
    }
    if (dry_run) {
        verr_set(e, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.");
        goto fail;
    }
    u = db_prepared(db, e, "grp_set",
        "UPDATE instances SET group_ids = $2::jsonb, updated_at = now() WHERE id = $1", 2, p);
    if (!u || compute_task_add_each(db, "groups", id, e) < 0 || db_commit(db, e) < 0)
        goto fail;
    task_pool_wake(compute_of(ctx)->tasks);
    *reply = json_pack("{s:b}", "return", 1);
    return 0;
fail:
    db_rollback(db);
    return -1;
}

int compute_run_groups(task_t *t, verr_t *e)
{
    const compute_t *c = t->svc->state;
    const char *id = json_str(t->payload, "instance_id", "");
    char launch[96];
    snprintf(launch, sizeof launch, "launch:%s", id);
    const char *p[] = {id, launch};
    PG_AUTO PGresult *r = db_prepared(t->db, e, "grp_task",
        "SELECT i.account_id, i.state, i.group_ids::text, f.eni_id, EXISTS (SELECT 1 FROM tasks WHERE id = $2 AND "
        "status = 'active') FROM instances i LEFT JOIN instance_interfaces f ON f.instance_id = i.id AND "
        "f.device_index = 0 AND NOT f.deleted WHERE i.id = $1", 2, p);
    if (!r)
        return TASK_FAILED;
    if (!PQntuples(r) || !strcmp(PQgetvalue(r, 0, 1), "terminated"))
        return TASK_DONE;
    if (PQgetisnull(r, 0, 3)) {   /* no port yet: the launch makes it with these groups */
        if (PQgetvalue(r, 0, 4)[0] != 't')
            return TASK_DONE;
        t->again_ms = 500;
        return TASK_AGAIN;
    }
    json_t *groups = json_loads(PQgetvalue(r, 0, 2), 0, NULL);
    JSON_AUTO json_t *port = NULL;
    if (bus_call(t->svc->bus, "network", "network.port_set_groups",
                 json_pack("{s:s, s:s, s:o}", "eni", PQgetvalue(r, 0, 3), "account", PQgetvalue(r, 0, 0), "groups",
                           groups ? groups : json_array()),
                 NULL, c->call_timeout_ms, &port, e) < 0) {
        if (e->http_status >= 400 && e->http_status < 500 && e->http_status != 429) {
            log_warn("the groups of %s could not be set: %s", id, e->message);   /* a group deleted since */
            return TASK_DONE;
        }
        return TASK_FAILED;
    }
    AUTOFREE char *doc = json_dumps(json_object_get(port, "groups"), JSON_COMPACT);
    const char *q[] = {id, PQgetvalue(r, 0, 3), doc};
    PG_AUTO PGresult *u = db_prepared(t->db, e, "grp_port",
        "UPDATE instance_interfaces SET groups = $3::jsonb WHERE instance_id = $1 AND eni_id = $2", 3, q);
    return u ? TASK_DONE : TASK_FAILED;
}
