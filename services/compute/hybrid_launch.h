/* hybrid_launch.h - compute's side of launches in a public cloud (docs/hybrid.md): what
 * an ec2 agent's RunInstances also takes, and ending launches that will not succeed. */
#ifndef VIRGA_COMPUTE_HYBRID_LAUNCH_H
#define VIRGA_COMPUTE_HYBRID_LAUNCH_H

#include <jansson.h>

#include "compute.h"

/* {"account_id", "user_data", "key_name", "public_key", "groups": [{groupId, groupName}]}
 * of instance id, for compute.host_instances (ec2 instances only); null on a DB error
 * (the agent then launches without them, and the next document has them). */
json_t *hybrid_launch_doc(db_t *db, const char *id);

/* In compute.instances_observed's transaction (the host's instances locked): end the
 * launch (EV_LAUNCH_FAILED, then the agent removes what exists remotely) of every pending
 * instance of host that its agent reports "failed" (the driver's permanent error), or
 * that is on a public cloud's host and pending for longer than its launch deadline
 * (hybrid.clouds.<cloud>.launch_deadline_s, else hybrid.launch_deadline_s). *gen gets the
 * host's new generation when its agent must be told (hosts_notify after commit). */
int hybrid_launch_verdicts(const service_t *svc, db_t *db, const char *host, const json_t *seen, long long *gen,
                           verr_t *e);

#endif
