/* instance_state.h - the instance state machine: every change of an instance's state is
 * one row of instance_state.c's table, applied by instance_transition in the caller's
 * transaction (written to the database before anyone is told: the caller publishes
 * agent.instances_changed with hosts_notify after its commit). */
#ifndef VIRGA_INSTANCE_STATE_H
#define VIRGA_INSTANCE_STATE_H

#include "db.h"

typedef enum inst_event {
    EV_STOP,            /* StopInstances */
    EV_START,           /* StartInstances */
    EV_REBOOT,          /* RebootInstances: reboot_seq + 1, the state stays */
    EV_TERMINATE,       /* TerminateInstances */
    EV_GONE,            /* shutting-down and no agent runs it (unplaced, or observed absent):
                           its cleanup task releases its interfaces */
    EV_RELEASED,        /* the cleanup task deleted its interfaces: terminated */
    EV_SEEN_RUNNING,    /* the agent observed it running */
    EV_SEEN_STOPPED,    /* the agent observed it stopped */
    EV_LAUNCH_FAILED,   /* the launch task gave up (image gone, no port) */
} inst_event_t;

/* What a transition did, for the caller to act on after commit. */
typedef struct inst_change {
    int changed;            /* the row changed */
    char from[16], to[16];
    char host[64];          /* set when the host's agent must be told */
    long long gen;          /* the host's new generation */
} inst_change_t;

/* EC2's code of a state name (pending 0, running 16, ...), -1 if unknown. */
int instance_state_code(const char *state);

/* Apply event ev to instance id whose current state (read under the caller's row lock)
 * is `state`. API events a state does not allow: IncorrectInstanceState (400); events
 * that change nothing (stopping a stopped instance) succeed with changed = 0; observed
 * events that do not apply are ignored. `reason` overrides the row's state reason
 * (e.g. the error an agent reported); may be NULL. Reaching terminated queues the
 * instance's cleanup task in the same transaction. */
int instance_transition(db_t *db, const char *id, const char *state, inst_event_t ev, const char *reason,
                        inst_change_t *out, verr_t *e);

/* The usage event (sql/006_usage_events.sql) a change from -> to is: "started",
 * "stopped", "terminated", or NULL when billing does not depend on it. */
const char *instance_usage_event_of(const char *from, const char *to);
/* Append event ("started", "stopped", "terminated", "resized") for instance id to the
 * usage log, in the caller's transaction (usage_events.c). */
int instance_usage_event(db_t *db, const char *id, const char *event, verr_t *e);

#endif
