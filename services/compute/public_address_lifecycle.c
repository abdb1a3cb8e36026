/* public_address_lifecycle.c - an instance's auto-assigned public address lasts while
 * the instance runs, as on AWS: a stop releases it (its billing ends), a start gives a new one from the pool (billed again); an elastic IP
 * stays through both. Every transition that crosses that line (instance_state.c) queues a
 * public:<instance>:<n> task in its transaction; the task asks the network
 * (network.instance_public_ip) for what the instance's state is when it runs and stores
 * the facts the answer carries, so DescribeInstances and the metadata follow without
 * waiting for the push. The network's answer is idempotent, and the task reads the
 * state again after it: a stop and a start whose tasks run in any order, or a task
 * retried after a crash, end with what the last state wants. */
#include <stdio.h>
#include <string.h>

#include "compute.h"
#include "jsonutil.h"
#include "log.h"

/* pending and running hold their auto-assigned address; stopping and stopped do not
 * (shutting-down and terminated: their interfaces' deletion releases it). */
static int holds_public(const char *state) { return !strcmp(state, "pending") || !strcmp(state, "running"); }
static int keeps_interfaces(const char *state) { return strcmp(state, "shutting-down") && strcmp(state, "terminated"); }

int public_address_follows(const char *from, const char *to)
{
    return keeps_interfaces(from) && keeps_interfaces(to) && holds_public(from) != holds_public(to);
}

/* The instance's account, state and driver; 0 when it is gone. */
static int instance_now(db_t *db, const char *id, char account[16], char state[32], char driver[16], verr_t *e)
{
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, e, "pub_task_inst", "SELECT account_id, state, driver FROM instances "
                                      "WHERE id = $1", 1, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return 0;
    snprintf(account, 16, "%s", PQgetvalue(r, 0, 0));
    snprintf(state, 32, "%s", PQgetvalue(r, 0, 1));
    snprintf(driver, 16, "%s", PQgetvalue(r, 0, 2));
    return 1;
}

#define PUBLIC_ROUNDS 4   /* the state changed under the task this often: look again later */

int compute_run_public(task_t *t, verr_t *e)
{
    const compute_t *c = t->svc->state;
    const char *id = json_str(t->payload, "instance_id", "");
    char account[16], state[32], driver[16];
    int found = instance_now(t->db, id, account, state, driver, e);
    if (found <= 0)
        return found < 0 ? TASK_FAILED : TASK_DONE;
    /* an instance in a public cloud region has that cloud's address, never this pool's */
    if (!strcmp(driver, "ec2"))
        return TASK_DONE;
    for (int round = 0; round < PUBLIC_ROUNDS; round++) {
        if (!keeps_interfaces(state))
            return TASK_DONE;   /* terminated meanwhile: the cleanup deletes its ports */
        int want = holds_public(state);
        JSON_AUTO json_t *reply = NULL;
        if (bus_call(t->svc->bus, "network", "network.instance_public_ip",
                     json_pack("{s:s, s:s, s:b}", "account", account, "instance", id, "want", want), NULL,
                     c->call_timeout_ms, &reply, e) < 0)
            return TASK_FAILED;
        if (network_enis_store(t->db, json_object_get(reply, "facts"), e) < 0)
            return TASK_FAILED;
        if (json_array_size(json_object_get(reply, "without")))
            log_warn("%s started without a public address: the pool has no free address", id);
        if ((found = instance_now(t->db, id, account, state, driver, e)) <= 0)
            return found < 0 ? TASK_FAILED : TASK_DONE;
        if (!keeps_interfaces(state) || holds_public(state) == want)
            return TASK_DONE;
    }
    t->again_ms = 100;
    return TASK_AGAIN;
}
