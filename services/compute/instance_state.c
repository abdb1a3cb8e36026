/* instance_state.c - the instance state machine (instance_state.h), as one table: which
 * event moves which state where, with which EC2 state reason, and whether the host's
 * agent must be told. Nothing else in compute writes instances.state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "instance_state.h"

enum {
    TELL = 1 << 0,       /* the agent's desired document changes: bump the host's generation */
    NOOP = 1 << 1,       /* already there: success, nothing changes */
    REBOOT = 1 << 2,     /* reboot_seq + 1 */
    CLEAR = 1 << 3,      /* clear the state reason and StateTransitionReason (EC2's after a start) */
    CLEANUP = 1 << 4,    /* the state stays; the cleanup task is queued (once) */
};

typedef struct transition {
    const char *from;
    inst_event_t ev;
    const char *to;
    unsigned flags;
    const char *reason;       /* EC2 stateReason "Code: message" ("" = keep) */
    const char *transition;   /* EC2 StateTransitionReason ("" = keep) */
} transition_t;

#define USER_STOP "Client.UserInitiatedShutdown: User initiated shutdown"
static const transition_t table[] = {
    /* tenant actions */
    {"running", EV_STOP, "stopping", TELL, USER_STOP, "User initiated"},
    {"stopping", EV_STOP, "stopping", NOOP, "", ""},
    {"stopped", EV_STOP, "stopped", NOOP, "", ""},
    {"stopped", EV_START, "pending", TELL | CLEAR, "", ""},
    {"pending", EV_START, "pending", NOOP, "", ""},
    {"running", EV_START, "running", NOOP, "", ""},
    {"running", EV_REBOOT, "running", TELL | REBOOT, "", ""},
    {"pending", EV_TERMINATE, "shutting-down", TELL, USER_STOP, "User initiated"},
    {"running", EV_TERMINATE, "shutting-down", TELL, USER_STOP, "User initiated"},
    {"stopping", EV_TERMINATE, "shutting-down", TELL, USER_STOP, "User initiated"},
    {"stopped", EV_TERMINATE, "shutting-down", TELL, USER_STOP, "User initiated"},
    {"shutting-down", EV_TERMINATE, "shutting-down", NOOP, "", ""},
    {"terminated", EV_TERMINATE, "terminated", NOOP, "", ""},
    /* what the host's agent observed (compute.instances_observed) */
    {"pending", EV_SEEN_RUNNING, "running", CLEAR, "", ""},
    {"stopping", EV_SEEN_STOPPED, "stopped", 0, "", ""},
    {"running", EV_SEEN_STOPPED, "stopped", 0,
     "Client.InstanceInitiatedShutdown: Instance initiated shutdown", "Instance initiated shutdown"},
    /* terminated only once its interfaces are deleted (the cleanup task), as on EC2: a
     * script that waits for `terminated` and then releases the elastic IP, deletes the
     * group or the subnet finds nothing holding them */
    {"shutting-down", EV_GONE, "shutting-down", CLEANUP, "", ""},
    {"shutting-down", EV_RELEASED, "terminated", 0, "", ""},
    {"terminated", EV_RELEASED, "terminated", NOOP, "", ""},
    /* the launch task gave up: the instance ends as EC2 ends a failed launch */
    {"pending", EV_LAUNCH_FAILED, "shutting-down", TELL, "Server.InternalError: Internal error on launch", ""},
};

static const struct {
    const char *name;
    int code;
} codes[] = {
    {"pending", 0}, {"running", 16}, {"shutting-down", 32}, {"terminated", 48}, {"stopping", 64}, {"stopped", 80},
};

int instance_state_code(const char *state)
{
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (!strcmp(codes[i].name, state))
            return codes[i].code;
    return -1;
}

static int is_api_event(inst_event_t ev)
{
    return ev == EV_STOP || ev == EV_START || ev == EV_REBOOT || ev == EV_TERMINATE;
}

int instance_transition(db_t *db, const char *id, const char *state, inst_event_t ev, const char *reason,
                        inst_change_t *out, verr_t *e)
{
    memset(out, 0, sizeof *out);
    snprintf(out->from, sizeof out->from, "%s", state);
    snprintf(out->to, sizeof out->to, "%s", state);
    const transition_t *t = NULL;
    for (size_t i = 0; i < sizeof table / sizeof table[0] && !t; i++)
        if (table[i].ev == ev && !strcmp(table[i].from, state))
            t = &table[i];
    if (!t)
        return is_api_event(ev) ? verr_set(e, 400, "IncorrectInstanceState",
                                           "The instance '%s' is not in a state from which it can be %s.", id,
                                           ev == EV_STOP ? "stopped" : ev == EV_START ? "started"
                                           : ev == EV_REBOOT ? "rebooted" : "terminated")
                                : 0;
    if (t->flags & NOOP)
        return 0;
    if (t->flags & CLEANUP) {
        out->changed = 1;   /* for the caller: wake the task pool */
        return compute_task_add(db, "cleanup", id, e);
    }
    const char *why = reason && *reason ? reason : (t->flags & CLEAR) ? "" : t->reason;
    const char *p[] = {id, state, t->to, why, (t->flags & CLEAR) || *why ? "t" : "f", t->transition,
                       (t->flags & REBOOT) ? "1" : "0", (t->flags & CLEAR) ? "t" : "f"};
    PG_AUTO PGresult *r = db_prepared(db, e, "inst_transition",
        "UPDATE instances SET state = $3, state_reason = CASE WHEN $5::boolean THEN $4 ELSE state_reason END, "
        "transition = CASE WHEN $6 = '' AND $8::boolean THEN '' WHEN $6 = '' THEN transition ELSE $6 || ' (' || to_char(now() AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD HH24:MI:SS') || ' GMT)' END, reboot_seq = reboot_seq + $7::int, "
        "terminated_at = CASE WHEN $3 = 'terminated' THEN now() ELSE terminated_at END, updated_at = now() "
        "WHERE id = $1 AND state = $2 RETURNING host_id, prepared", 8, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return 0;   /* changed meanwhile: the caller's lock makes this not happen */
    out->changed = 1;
    snprintf(out->to, sizeof out->to, "%s", t->to);
    const char *usage = instance_usage_event_of(state, t->to);   /* the bill's log, same transaction */
    if (usage && instance_usage_event(db, id, usage, e) < 0)
        return -1;
    if ((t->flags & TELL) && !PQgetisnull(r, 0, 0) && PQgetvalue(r, 0, 1)[0] == 't') {
        snprintf(out->host, sizeof out->host, "%s", PQgetvalue(r, 0, 0));
        char gen[32];
        if (hosts_bump(db, out->host, &out->gen, e) < 0)
            return -1;
        snprintf(gen, sizeof gen, "%lld", out->gen);
        const char *q[] = {id, gen};
        PG_AUTO PGresult *u = db_prepared(db, e, "inst_changed_gen",
                                          "UPDATE instances SET changed_gen = $2::bigint WHERE id = $1", 2, q);
        if (!u)
            return -1;
    }
    /* a stop releases the auto-assigned public address, a start gives a new one (if it has
     * or gets one: public_address_lifecycle.c) */
    if (public_address_follows(state, t->to) && public_address_queue(db, id, t->to, e) < 0)
        return -1;
    return 0;
}
