/* hybrid_launch.c - compute's side of launches in a public cloud (hybrid_launch.h,
 * docs/hybrid.md "Failed launches"). A launch there fails for good in two ways: the
 * driver says no retry fixes the remote's answer (an image map to a missing AMI, no
 * permission), or it keeps failing (throttling, timeouts, no capacity there) past the
 * region's deadline. Either way the instance ends as EC2 ends a failed launch:
 * shutting-down with the reason, the agent terminates whatever exists remotely, then
 * terminated. The deadline is kept here, not in the agent, so an agent's restart does
 * not start the clock again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hybrid_launch.h"
#include "instance_state.h"
#include "jsonutil.h"
#include "log.h"

json_t *hybrid_launch_doc(db_t *db, const char *id)
{
    verr_t e;
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(db, &e, "hl_doc",
        "SELECT i.account_id, coalesce(i.user_data, ''), coalesce(i.key_name, ''), coalesce(k.public_key, ''), "
        "coalesce((SELECT f.groups::text FROM instance_interfaces f WHERE f.instance_id = i.id AND NOT f.deleted "
        "ORDER BY f.device_index LIMIT 1), '[]') FROM instances i "
        "LEFT JOIN key_pairs k ON k.account_id = i.account_id AND k.name = i.key_name WHERE i.id = $1", 1, p);
    if (!r || !PQntuples(r)) {
        log_warn("launch parameters of %s: %s", id, r ? "no such instance" : e.message);
        return json_null();
    }
    json_t *groups = json_loads(PQgetvalue(r, 0, 4), 0, NULL);
    if (!json_is_array(groups)) {
        json_decref(groups);
        groups = json_array();
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "account_id", PQgetvalue(r, 0, 0), "user_data",
                     PQgetvalue(r, 0, 1), "key_name", PQgetvalue(r, 0, 2), "public_key", PQgetvalue(r, 0, 3),
                     "groups", groups);
}

/* A local host's launch (qemu, container) has compute.launch_deadline_s: a guest its agent
 * can never boot (a root file system without an init, a disk that does not start) would
 * otherwise stay pending for ever, holding its quota and room on the host. */
static long deadline_s(const service_t *svc, const char *cloud)
{
    if (!strcmp(cloud, "private"))
        return config_int(svc->cfg, "compute.launch_deadline_s", 900);
    char k[160];
    snprintf(k, sizeof k, "hybrid.clouds.%.100s.launch_deadline_s", cloud);
    return config_int(svc->cfg, k, config_int(svc->cfg, "hybrid.launch_deadline_s", 900));
}

int hybrid_launch_verdicts(const service_t *svc, db_t *db, const char *host, const json_t *seen, long long *gen,
                           verr_t *e)
{
    const char *p[] = {host};
    PG_AUTO PGresult *r = db_prepared(db, e, "hl_pending",
        "SELECT i.id, h.cloud, extract(epoch FROM now() - i.updated_at)::bigint, i.observed_error, i.remote_state "
        "FROM instances i JOIN hosts h USING (host_id) WHERE i.host_id = $1 AND i.state = 'pending' AND i.prepared",
        1, p);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0), *cloud = PQgetvalue(r, i, 1), *err = PQgetvalue(r, i, 3);
        const json_t *ob = json_object_get(seen, id);
        long age = atol(PQgetvalue(r, i, 2)), limit = deadline_s(svc, cloud);
        char reason[700];
        if (ob && json_flag(ob, "failed"))
            snprintf(reason, sizeof reason, "Server.InternalError: Launch failed for good: %.500s",
                     json_str(ob, "error", "no reason given"));
        else if (!strcmp(cloud, "private") && limit > 0 && age > limit)
            snprintf(reason, sizeof reason, "Server.InternalError: Launch did not complete within %ld s on host "
                     "%.64s: %.400s", limit, host, *err ? err : "the guest did not reach running");
        else if (limit > 0 && age > limit)
            snprintf(reason, sizeof reason, "Server.InternalError: Launch did not complete within %ld s in the "
                     "public cloud %.64s: %.400s", limit, cloud, *err ? err : *PQgetvalue(r, i, 4) ?
                     "the remote instance did not reach running" : "no remote instance was made");
        else
            continue;
        inst_change_t ch;
        if (instance_transition(db, id, "pending", EV_LAUNCH_FAILED, reason, &ch, e) < 0)
            return -1;
        if (ch.changed)
            log_warn("launch of %s on %s failed: %s", id, host, reason);
        if (ch.host[0])
            *gen = ch.gen;
    }
    return 0;
}
