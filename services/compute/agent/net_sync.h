/* net_sync.h - the agent's network sync: keep this host's datapath equal to the network
 * service's document for it (network.host_desired), and serve the instance metadata
 * service on every VPC the document places here (metadata_server.h).
 *
 * Level-triggered, on a thread of its own (never a bus worker). `agent.network_changed`
 * from the network service carries the host's document: applied as it is when its
 * generation is newer than the one applied (never an older one), with no pull. The
 * event without a document (one too big to push, an older network), the agent's start
 * and its reconcile timer pull it (network.host_desired) and apply it when its
 * generation differs from the one applied, when the last apply failed, or every
 * agent.datapath_resync_s (repairing what changed under it). Config (docs/network.md):
 * agent.datapath (linux | fake | none), agent.datapath_prefix, agent.datapath_state_dir. */
#ifndef VIRGA_AGENT_NET_SYNC_H
#define VIRGA_AGENT_NET_SYNC_H

#include "service.h"

/* Open the datapath and start the thread (nothing with agent.datapath = none). */
int net_sync_start(service_t *svc, const char *host_id, verr_t *e);
/* fn(arg) after every apply that changed the datapath (on the sync thread; it must not
 * block): the instance loop retries the launches that waited for their network. */
void net_sync_on_applied(void (*fn)(void *arg), void *arg);
/* Wake the thread for a pull (the reconcile timer). */
void net_sync_kick(void);
/* agent.network_changed {"generation": G, "document"?: {...}} (route sender: the network
 * service only; a document for another host is ignored). */
int net_sync_event(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e);
/* This host's network in the inventory (compute.host_report):
 * "network": {"datapath", "generation" (applied; -1 none yet), "error"?}. */
void net_sync_report(json_t *inventory);
/* Stop the thread and the metadata servers; the datapath stays as it is (instances keep
 * their network across an agent restart). */
void net_sync_stop(void);

#endif
