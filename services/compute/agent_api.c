/* agent_api.c - what a host's agent asks of compute (docs/compute.md, "Agent contract"):
 *   compute.host_instances     what the host should run, at which generation (host_specs.c);
 *   compute.instances_observed what runs there: drives pending -> running, stopping ->
 *                              stopped, shutting-down -> terminated (state machine), and
 *                              stores console text for GetConsoleOutput;
 *   compute.instance_metadata  the metadata service's document for one instance
 *                              (instance_metadata.c).
 * The host is always the sending agent's principal (agent-<host>), never a field, and an
 * agent sees and changes only its own host's instances. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compute.h"
#include "hybrid_launch.h"
#include "ids.h"
#include "instance_state.h"
#include "jsonutil.h"
#include "log.h"

#define MAX_OBSERVED 20000
#define MAX_CONSOLE_B64 (96 * 1024)

const char *sender_host(bus_ctx_t *ctx, verr_t *e)
{
    const char *h = ctx->msg->from ? ctx->msg->from->host : NULL;
    if (!h || !*h)
        verr_set(e, 403, "AccessDenied", "%s is for host agents only", ctx->msg->type);
    return h;
}

/* Store an instance's console text when it changed: the agent's report is the latest
 * (its console_seq is kept, not compared: a restarted agent may count from 0 again).
 * The pull answers the seq kept, which is how the agent learns what compute has: its
 * reports get no reply. */
static int store_console(db_t *db, const char *id, const json_t *o, verr_t *e)
{
    const char *console = json_str(o, "console", NULL);
    if (!console)
        return 0;
    if (strlen(console) > MAX_CONSOLE_B64)
        console += strlen(console) - MAX_CONSOLE_B64 + (strlen(console) - MAX_CONSOLE_B64) % 4;   /* keep the end */
    char seq[32];
    snprintf(seq, sizeof seq, "%lld", (long long)json_int(o, "console_seq", 0));
    const char *p[] = {id, console, seq};
    PG_AUTO PGresult *r = db_prepared(db, e, "obs_console",
        "INSERT INTO instance_console (instance_id, output, seq) VALUES ($1, $2, $3::bigint) "
        "ON CONFLICT (instance_id) DO UPDATE SET output = EXCLUDED.output, seq = EXCLUDED.seq, updated_at = now() "
        "WHERE (instance_console.output, instance_console.seq) IS DISTINCT FROM (EXCLUDED.output, EXCLUDED.seq)", 3, p);
    return r ? 0 : -1;
}

/* The agent's error becomes the instance's state reason (a launch that cannot boot says
 * why), except while shutting down: the reason then says why it ends (user initiated, a
 * failed launch), not that a removal is retried. When the error is gone, a reason that
 * was that error goes too: a guest started again after a transient failure
 * (NetworkNotReady while its host came back) ran on showing Server.InternalError; a
 * reason of compute's own (a stop's) is kept. */
static int note_error(db_t *db, const char *id, const char *power, const char *error, verr_t *e)
{
    char reason[600];
    snprintf(reason, sizeof reason, "Server.InternalError: %.500s", error);
    const char *p[] = {id, power, error, reason};
    PG_AUTO PGresult *r = db_prepared(db, e, "obs_note",
        "UPDATE instances SET observed_power = $2, observed_error = $3, "
        "state_reason = CASE WHEN state = 'shutting-down' THEN state_reason "
        "WHEN $3 <> '' THEN $4 "
        "WHEN state_reason = 'Server.InternalError: ' || observed_error THEN '' ELSE state_reason END "
        "WHERE id = $1 AND (observed_power <> $2 OR observed_error <> $3)", 4, p);
    return r ? 0 : -1;
}

/* What an ec2 host's agent saw of the remote instance (its id, addresses and state
 * there), shown on the local instance by DescribeInstances (docs/hybrid.md). */
static int note_remote(db_t *db, const char *id, const json_t *o, verr_t *e)
{
    const json_t *rm = json_object_get(o, "remote");
    if (!json_is_object(rm))
        return 0;
    const char *rid = json_str(rm, "id", ""), *pub = json_str(rm, "public_ip", ""),
               *priv = json_str(rm, "private_ip", ""), *st = json_str(rm, "state", "");
    if (strlen(rid) > 64 || strlen(pub) > 64 || strlen(priv) > 64 || strlen(st) > 32)
        return 0;
    const char *p[] = {id, rid, pub, priv, st};
    PG_AUTO PGresult *r = db_prepared(db, e, "obs_remote",
        "UPDATE instances SET remote_id = $2, remote_public_ip = $3, remote_private_ip = $4, remote_state = $5 "
        "WHERE id = $1 AND (remote_id, remote_public_ip, remote_private_ip, remote_state) IS DISTINCT FROM "
        "($2, $3, $4, $5)", 5, p);
    return r ? 0 : -1;
}

int compute_instances_observed(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *host = sender_host(ctx, e);
    if (!host)
        return -1;
    json_t *list = json_object_get(body, "instances");
    if (list && !json_is_array(list))
        return verr_set(e, 400, "InvalidParameterValue", "instances must be a list");
    if (json_array_size(list) > MAX_OBSERVED)
        return verr_set(e, 400, "InvalidParameterValue", "at most %d instances per report", MAX_OBSERVED);
    long long gen = json_int(body, "generation", 0);
    int incomplete = json_flag(body, "incomplete");   /* added: some driver's list failed */
    JSON_AUTO json_t *seen = json_object();
    size_t k;
    json_t *o;
    json_array_foreach(list, k, o) {
        const char *id = json_str(o, "instance_id", NULL);
        if (id && ids_valid("i", id))
            json_object_set(seen, id, o);
    }
    db_t *db = service_db(ctx);
    int ended = 0, pending = 0;
    PG_AUTO PGresult *r = NULL;
    PG_AUTO PGresult *h = NULL;
    if (db_begin(db, e) < 0)
        return -1;
    /* the agent sends its reports one-way (instance_messages.c), so they may come in any
     * order: one numbered (seq, added) before the last applied locks nothing here, and
     * is undone below if a newer one was applied meanwhile */
    char seq[32];
    snprintf(seq, sizeof seq, "%lld", (long long)json_int(body, "seq", 0));
    const char *q[] = {host, seq};
    /* column 5: a shutting-down instance whose cleanup task is queued already (what a
     * report that finds it gone would queue: the insert did nothing, in a statement of its
     * own, at every report until the task had run, about 1.7 times a terminate) */
    r = db_prepared(db, e, "obs_lock",
        "SELECT id, state, changed_gen, coalesce(observed_power, ''), coalesce(observed_error, ''), "
        "state = 'shutting-down' AND EXISTS (SELECT 1 FROM tasks t WHERE t.id = 'cleanup:' || instances.id) "
        "FROM instances WHERE host_id = $1 AND state <> 'terminated' AND prepared AND ($2::bigint = 0 OR "
        "$2::bigint > (SELECT observed_seq FROM hosts WHERE host_id = $1)) ORDER BY id FOR UPDATE", 2, q);
    if (!r)
        goto fail;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0), *state = PQgetvalue(r, i, 1);
        int current = gen >= atoll(PQgetvalue(r, i, 2));   /* the report knows the last change */
        pending |= !strcmp(state, "pending");
        json_t *ob = json_object_get(seen, id);
        inst_change_t ch;
        if (!ob) {
            /* a driver that could not list (a public cloud that did not answer) proves
             * nothing about what is absent */
            if (incomplete || PQgetvalue(r, i, 5)[0] == 't')
                continue;
            if (current && instance_transition(db, id, state, EV_GONE, NULL, &ch, e) < 0)
                goto fail;
            ended |= current && ch.changed;
            continue;
        }
        const char *power = json_str(ob, "power", ""), *error = json_str(ob, "error", "");
        /* what the last report said already is not written again: a report carries every
         * instance of the host, and one statement each held the host's rows longer */
        int noted = !strcmp(PQgetvalue(r, i, 3), power) && !strcmp(PQgetvalue(r, i, 4), error);
        if (store_console(db, id, ob, e) < 0 || (!noted && note_error(db, id, power, error, e) < 0) ||
            note_remote(db, id, ob, e) < 0)
            goto fail;
        inst_event_t ev = !strcmp(power, "running") ? EV_SEEN_RUNNING : EV_SEEN_STOPPED;
        if (current && (!strcmp(power, "running") || !strcmp(power, "stopped"))) {
            if (instance_transition(db, id, state, ev, NULL, &ch, e) < 0)
                goto fail;
            ended |= ch.changed && public_address_follows(ch.from, ch.to);   /* its public task to run */
        }
    }
    long long told = 0;   /* added: launches that will not succeed end (hybrid_launch.c); only a
                           * host with a pending launch (its rows are all locked above) has one */
    if (pending && hybrid_launch_verdicts(service_of(ctx), db, host, seen, &told, e) < 0)
        goto fail;
    /* the host's row locked last, as every change of compute takes instances then hosts */
    h = db_prepared(db, e, "obs_host",
        "UPDATE hosts SET observed_at = now(), observed_seq = greatest(observed_seq, $2::bigint) WHERE host_id = $1 "
        "AND ($2::bigint = 0 OR observed_seq < $2::bigint) RETURNING generation", 2, q);
    if (!h)
        goto fail;
    if (!PQntuples(h) && strcmp(seq, "0")) {
        db_rollback(db);
        log_info("report %s of host %s is older than the last applied: ignored", seq, host);
        *reply = json_pack("{s:I, s:b}", "generation", (json_int_t)0, "stale", 1);
        return 0;
    }
    if (db_commit(db, e) < 0)
        goto fail;
    log_debug("report %s of host %s applied", seq, host);
    if (ended)
        task_pool_wake(compute_of(ctx)->tasks);
    if (told)
        hosts_notify(service_of(ctx), host, told);
    *reply = json_pack("{s:I}", "generation", (json_int_t)(PQntuples(h) ? atoll(PQgetvalue(h, 0, 0)) : 0));
    return 0;
fail:
    db_rollback(db);
    return -1;
}

