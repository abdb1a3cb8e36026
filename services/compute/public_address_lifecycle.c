/* public_address_lifecycle.c - an instance's auto-assigned public address lasts while
 * the instance runs, as on AWS: a stop releases it (its billing ends), a start gives a new one from the pool (billed again); an elastic IP
 * stays through both. Every transition that crosses that line (instance_state.c) queues a
 * public:<instance>:<n> task in its transaction, unless the instance has and gets no
 * public address (public_address_queue); the task asks the network
 * (network.instance_public_ip) for what the instance's state is when it runs and stores
 * the facts the answer carries, so DescribeInstances and the metadata follow without
 * waiting for the push. The network's answer is idempotent, and the task reads the
 * state again after it: a stop and a start whose tasks run in any order, or a task
 * retried after a crash, end with what the last state wants.
 *
 * Until the task has run, the instance is marked (instances.public_changing_since): the
 * metadata service answers it 503 meanwhile (agent_api.c), as AWS gives an instance its
 * public address before it boots, so a guest that starts reads its new public-ipv4 and not
 * none or the one it had (its init retries until the metadata answers). A task that
 * cannot reach the network does not hold the metadata longer than
 * compute.public_address_wait_s (10); one that gave up (every retry failed) is queued
 * again by the reconcile pass while the mark stays, so the address converges once the
 * network is back. */
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

/* Whether the change needs the task, decided from compute's own rows (no question to the
 * network on a transition): a stop, only if an interface of the instance holds a public
 * address (compute's copy network_enis: the launch task stored its primary's facts with
 * its port) or its interfaces are not made yet (not known); a start, unless its stops
 * found it with none (public_at_start, migration 017: once true, it stays true, so a
 * start that found the pool empty still gets one at the next start). An instance in a
 * subnet without MapPublicIpOnLaunch, or launched with AssociatePublicIpAddress false,
 * thus has no task, no network call and no metadata wait at its stops and starts. */
int public_address_queue(db_t *db, const char *id, const char *to, verr_t *e)
{
    const char *p[] = {id, holds_public(to) ? "f" : "t"};
    PG_AUTO PGresult *r = db_prepared(db, e, "pub_changing",
        "WITH s AS (SELECT i.id, i.public_at_start AS was, EXISTS (SELECT 1 FROM network_enis n WHERE n.instance_id "
        "= i.id AND n.public_ip <> '') AS pub, EXISTS (SELECT 1 FROM instance_interfaces f WHERE f.instance_id = i.id "
        "AND f.device_index = 0) AS made FROM instances i WHERE i.id = $1), "
        "d AS (SELECT id, CASE WHEN $2::boolean THEN pub OR NOT made ELSE was IS DISTINCT FROM false END AS need, "
        "CASE WHEN $2::boolean AND made THEN coalesce(was, false) OR pub ELSE was END AS at_start FROM s) "
        "UPDATE instances i SET public_at_start = d.at_start, public_changing_since = CASE WHEN d.need THEN now() "
        "ELSE i.public_changing_since END FROM d WHERE i.id = d.id RETURNING d.need", 2, p);
    if (!r)
        return -1;
    if (!PQntuples(r) || PQgetvalue(r, 0, 0)[0] != 't')
        return 0;
    return compute_task_add_each(db, "public", id, e);
}

/* The task's work is done: its metadata may answer (the row read under its lock). */
static int settled(db_t *db, const char *id, verr_t *e)
{
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, e, "pub_settled", "UPDATE instances SET public_changing_since = NULL "
                                      "WHERE id = $1", 1, p);
    return r ? 0 : -1;
}

/* The instance's account, state and driver, its row locked (a transition waits); 0 when
 * it is gone. */
static int instance_now(db_t *db, const char *id, char account[16], char state[32], char driver[16], verr_t *e)
{
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, e, "pub_task_inst", "SELECT account_id, state, driver FROM instances "
                                      "WHERE id = $1 FOR UPDATE", 1, p);
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
        return settled(t->db, id, e) < 0 ? TASK_FAILED : TASK_DONE;
    for (int round = 0; round < PUBLIC_ROUNDS; round++) {
        if (!keeps_interfaces(state))
            return TASK_DONE;   /* terminated meanwhile: the cleanup deletes its ports */
        int want = holds_public(state);
        JSON_AUTO json_t *reply = NULL;
        if (bus_call(t->svc->bus, "network", "network.instance_public_ip",
                     json_pack("{s:s, s:s, s:b}", "account", account, "instance", id, "want", want), NULL,
                     c->call_timeout_ms, &reply, e) < 0)
            return TASK_FAILED;
        if (json_array_size(json_object_get(reply, "without")))
            log_warn("%s started without a public address: the pool has no free address", id);
        /* the facts, and whether the state is still the one asked for, in one transaction
         * with the mark's end: the metadata answers with the address it shows */
        int done = 0;
        if (db_begin(t->db, e) < 0 || network_enis_store(t->db, json_object_get(reply, "facts"), e) < 0 ||
            (found = instance_now(t->db, id, account, state, driver, e)) < 0 ||
            (found && (done = !keeps_interfaces(state) || holds_public(state) == want) && settled(t->db, id, e) < 0) ||
            db_commit(t->db, e) < 0) {
            db_rollback(t->db);
            return TASK_FAILED;
        }
        if (!found || done)
            return TASK_DONE;
    }
    t->again_ms = 100;
    return TASK_AGAIN;
}

/* The reconcile pass: an instance still marked a minute after its change, with no public
 * task left to run (it used up its attempts: the network away for long), gets a new one. */
void public_addresses_reconcile(service_t *svc)
{
    compute_t *c = svc->state;
    verr_t e;
    PG_AUTO PGresult *r = db_prepared(svc->db, &e, "pub_stale",
        "SELECT i.id FROM instances i WHERE i.public_changing_since < now() - interval '60 seconds' "
        "AND i.state NOT IN ('shutting-down', 'terminated') AND NOT EXISTS (SELECT 1 FROM tasks t WHERE "
        "t.status = 'active' AND t.kind = 'public' AND t.payload->>'instance_id' = i.id) "
        "ORDER BY i.public_changing_since LIMIT 100", 0, NULL);
    if (!r) {
        log_warn("public addresses to retry: %s", e.message);
        return;
    }
    for (int i = 0; i < PQntuples(r); i++)
        if (compute_task_add_each(svc->db, "public", PQgetvalue(r, i, 0), &e) < 0)
            log_warn("retrying the public address of %s: %s", PQgetvalue(r, i, 0), e.message);
    if (PQntuples(r))
        task_pool_wake(c->tasks);
}
