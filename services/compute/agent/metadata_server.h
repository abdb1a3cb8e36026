/* metadata_server.h - the instance metadata service of this host: one HTTP server
 * (metadata_http.h) per VPC present here, listening on 169.254.169.254:80 inside that
 * VPC's router namespace, where the datapath puts the address (its `meta` unit) and
 * where instances' traffic to it arrives through their gateway. Answers come from the
 * document compute sent ahead with a launch's doorbell (md_servers_prime), else from
 * compute.instance_metadata. Driven by the network sync thread only (net_sync.c).
 * Config: agent.metadata_cache_s (5), agent.metadata_hop_limit (1),
 * agent.metadata_tokens (optional | required), agent.metadata_timeout_ms (3000). */
#ifndef VIRGA_AGENT_METADATA_SERVER_H
#define VIRGA_AGENT_METADATA_SERVER_H

#include <jansson.h>

#include "service.h"

typedef struct md_vpc {
    char vpc_id[64];
    char netns[160];    /* its router namespace on this host */
} md_vpc_t;

int md_servers_open(service_t *svc, verr_t *e);
/* Serve exactly these VPCs: start what is missing (or whose namespace was made anew),
 * stop what is gone. -1 with e when a server could not start (the rest still run). */
int md_servers_sync(const md_vpc_t *v, size_t n, verr_t *e);
void md_servers_close(void);
/* The document about to be applied: each address whose interface changed since the last
 * document (its public address: a stop released it, a start gave a new one, an elastic
 * IP came or went; or the interface itself: a new instance has the address of one gone,
 * or an interface moved to another instance) has its cached metadata dropped, so a guest
 * never reads another boot's or another instance's answer (instance id, user-data) for
 * agent.metadata_cache_s. Same thread as md_servers_sync. */
struct dp_desired;
void md_servers_addresses(const struct dp_desired *d);

/* A launch's doorbell (instance_sync.c, in generation order): md, the change's "metadata"
 * {vpc_id, ip, eni_id, public_ip, document} or NULL, replaces what was sent ahead for that
 * instance; its guest's questions from that address are answered from it for
 * agent.metadata_cache_s, unless a later change of the instance, a pull without it, or
 * the network's line for the address naming another interface or public address drops
 * it first. Any thread. */
void md_servers_prime(const char *instance_id, const json_t *md);
/* A pull's instances: what was sent ahead for any other instance is dropped. */
void md_servers_primed_keep(const json_t *instances);

/* A TCP socket bound to ip:port and listening, inside network namespace netns (the
 * namespace is entered by a short-lived thread of its own: no other thread of the
 * process ever changes namespace). -1 with e on failure. */
int md_listen_in_netns(const char *netns, const char *ip, int port, verr_t *e);

#endif
