/* usage_events.c - the instance usage log (sql/006_usage_events.sql): one row per change
 * an instance's bill depends on, inserted in the transaction of the change (by
 * instance_transition and by a resize), with the instance's type, owner, host, zone and
 * the host's cloud as they are at that moment. virga-accounting reads the log with a
 * cursor (docs/accounting.md); nothing here talks to it. */
#include <string.h>

#include "compute.h"
#include "instance_state.h"

/* Which state changes are usage events. Billing counts the time an instance is
 * `running` (as EC2 does): entering it starts the meter, leaving it stops it. */
static const struct {
    const char *from, *to, *event;   /* NULL from/to = any */
} events[] = {
    {NULL, "running", "started"},
    {"running", "stopping", "stopped"},
    {"running", "stopped", "stopped"},
    {NULL, "shutting-down", "terminated"},
};

const char *instance_usage_event_of(const char *from, const char *to)
{
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        if ((!events[i].from || !strcmp(events[i].from, from)) && !strcmp(events[i].to, to) && strcmp(from, to))
            return events[i].event;
    return NULL;
}

int instance_usage_event(db_t *db, const char *id, const char *event, verr_t *e)
{
    const char *p[] = {id, event};
    PG_AUTO PGresult *r = db_prepared(db, e, "usage_event",
        "WITH i AS (UPDATE instances SET usage_seq = usage_seq + 1 WHERE id = $1 "
        "  RETURNING id, usage_seq, account_id, owner_user, instance_type, host_id, zone) "
        "INSERT INTO instance_events (instance_id, instance_seq, event, account_id, user_id, instance_type, "
        "  host_id, zone, cloud) "
        "SELECT i.id, i.usage_seq, $2, i.account_id, i.owner_user, i.instance_type, COALESCE(i.host_id, ''), "
        "  i.zone, COALESCE(h.cloud, 'private') FROM i LEFT JOIN hosts h ON h.host_id = i.host_id", 2, p);
    return r ? 0 : -1;
}
