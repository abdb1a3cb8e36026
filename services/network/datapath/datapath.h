/* datapath.h - the network datapath of one host, level-triggered.
 *
 * The control plane hands each host one JSON document (docs/network.md, "Datapath desired
 * state"); dp_apply() makes the host match it exactly, creating, changing and removing, and
 * dp_observe() reads what is there. Both work on "units": the smallest things that are
 * created, changed or removed as a whole (the host namespace, one VPC on the host, one fdb
 * peer, one interface, one DHCP server, the NAT of one VPC, the security group rules). A unit
 * has a kind, a key and a fingerprint of its configuration; the reconciler (reconcile.c)
 * compares desired and observed units and calls the driver's ensure/remove for the
 * difference, so a restarted agent adopts what runs and removes what the document does not
 * name.
 *
 * Drivers are rows of a table (driver_table.c): `linux` (namespaces, bridges, VXLAN,
 * nftables, dnsmasq; all of its system calls go through dp_exec.c) and `fake` (records what
 * it would do, for unit tests). Not thread-safe: one datapath per agent, one caller. */
#ifndef VIRGA_DATAPATH_H
#define VIRGA_DATAPATH_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define DP_NAME_MAX 64

/* A route of the subnet's table through an interface of the VPC: the router sends what
 * goes to dest to that interface's address and MAC (routes to local and to the internet
 * gateway need nothing of the router beyond what it already does). */
typedef struct dp_route {
    char dest[48];
    char via[48];
    char mac[18];
} dp_route_t;

typedef struct dp_subnet {
    char subnet_id[DP_NAME_MAX];
    char cidr[48];
    char gateway[48];
    char dns[48];
    int  prefix_len;
    dp_route_t *routes;
    size_t n_routes;
} dp_subnet_t;

typedef struct dp_vpc {
    char vpc_id[DP_NAME_MAX];
    unsigned vni;
    char cidr[48];
    char **peers;           /* underlay addresses of the other hosts with this VPC */
    size_t n_peers;
    dp_subnet_t *subnets;
    size_t n_subnets;
} dp_vpc_t;

typedef struct dp_iface {
    char eni_id[DP_NAME_MAX];
    char vpc_id[DP_NAME_MAX];
    char subnet_id[DP_NAME_MAX];
    char mac[18];
    char ip[48];
    int  prefix_len;
    char device[16];
    char kind[8];           /* "veth" (a stand-in namespace a container joins) or "tap" (QEMU's) */
    char **groups;
    size_t n_groups;
    char public_ip[48];     /* "" when none */
    int no_sdcheck;         /* source_dest_check false: it may send from and receive for
                             * addresses not its own (a NAT instance, a route's target) */
    char parent[DP_NAME_MAX];   /* attached after launch: the instance's primary interface, whose
                                 * stand-in namespace it joins as eth<device_index>; "" = primary */
    int  device_index;
    const dp_vpc_t *vpc;    /* resolved by dp_desired_parse */
    const dp_subnet_t *subnet;
} dp_iface_t;

typedef struct dp_rule {
    char protocol[8];       /* "-1", "tcp", "udp", "icmp" */
    int from_port, to_port; /* ICMP: type and code; -1 any */
    char **cidrs;
    size_t n_cidrs;
    char **groups;
    size_t n_groups;
} dp_rule_t;

typedef struct dp_group {
    char group_id[DP_NAME_MAX];
    dp_rule_t *ingress, *egress;
    size_t n_ingress, n_egress;
} dp_group_t;

typedef struct dp_members {
    char group_id[DP_NAME_MAX];
    char **addrs;
    size_t n_addrs;
} dp_members_t;

typedef struct dp_desired {
    char host[DP_NAME_MAX];
    long long generation;
    char underlay_ip[48];
    int underlay_prefix_len;    /* optional field, default 16 */
    dp_vpc_t *vpcs;
    size_t n_vpcs;
    dp_iface_t *ifaces;
    size_t n_ifaces;
    dp_group_t *groups;
    size_t n_groups;
    dp_members_t *members;
    size_t n_members;
    char public_cidr[48];       /* "" when no outside */
} dp_desired_t;

/* Parse and validate a document; every name that reaches a command or an nftables script
 * is checked here (InvalidParameterValue), so drivers never see hostile text. */
dp_desired_t *dp_desired_parse(const char *json_text, verr_t *e);
void dp_desired_free(dp_desired_t *d);
const dp_vpc_t *dp_desired_vpc(const dp_desired_t *d, const char *vpc_id);

/* ---- units ---- */
typedef enum {
    DP_HOST = 0,    /* host namespace and its underlay leg        key: host       */
    DP_VPC,         /* bridge, VXLAN, router namespace            key: vni        */
    DP_FDB,         /* one unicast VXLAN peer                      key: vni/peer   */
    DP_ROUTER,      /* gateways and 1:1 NAT of one VPC             key: vni        */
    DP_DHCP,        /* dnsmasq of one VPC                          key: vni        */
    DP_META,        /* the metadata address on the router's lo     key: vni        */
    DP_SG,          /* the security group tables, their maps and base chains  key: "sg" */
    DP_SGVPC,       /* one VPC's bridge rules (gateway stays local)  key: vni          */
    DP_SGSET,       /* a referenced group's member addresses      key: set name (g_…)  */
    DP_SGGRP,       /* one group's rules (two chains)             key: group id         */
    DP_SGIF,        /* one interface's chains and map elements    key: eni id           */
    DP_IFACE,       /* an interface (veth + stand-in, or a tap)    key: eni id     */
    DP_KINDS
} dp_kind_t;

typedef struct dp_unit {
    dp_kind_t kind;
    char key[96];
    char fp[1024];          /* fingerprint of the configuration; "" = broken, rebuild */
    char dev[16];           /* IFACE: host-side device, when known */
    int order;              /* IFACE: 1 for an attached one, ensured after (removed before) primaries */
    unsigned mark;          /* observed SGIF: its packet mark (1..32767) */
    int reattach;           /* observed IFACE: whole but off its bridge (a VPC was rebuilt);
                             * its fingerprint is then in text */
    const void *spec;       /* desired units: the dp_vpc_t / dp_iface_t it comes from */
    char *text;             /* desired DHCP/ROUTER units: rendered configuration; SGSET: its
                             * elements ("a, b", sorted) */
    char *text2;
} dp_unit_t;

typedef struct dp_units {
    dp_unit_t *v;
    size_t n, cap;
} dp_units_t;

dp_unit_t *dp_units_add(dp_units_t *u, dp_kind_t kind, const char *key);
const dp_unit_t *dp_units_find(const dp_units_t *u, dp_kind_t kind, const char *key);
void dp_units_clear(dp_units_t *u);
const char *dp_kind_name(dp_kind_t k);
/* A piece of the security group tables (DP_SGVPC, DP_SGSET, DP_SGGRP, DP_SGIF): written with
 * them when DP_SG is ensured, removed with them when it is removed. */
int dp_sg_part(dp_kind_t k);

/* The units a document asks for, with fingerprints and rendered configurations. */
void dp_desired_units(const dp_desired_t *d, dp_units_t *out);

/* ---- drivers ---- */
typedef struct dp_driver dp_driver_t;

typedef struct dp_config {
    const char *prefix;     /* namespace prefix, default "virga-" (tests use their own) */
    const char *state_dir;  /* dnsmasq configurations, pid files and leases */
} dp_config_t;

typedef struct dp_ops {
    const char *name;
    dp_driver_t *(*open)(const dp_config_t *cfg, verr_t *e);
    void (*close)(dp_driver_t *d);
    /* Every unit of `host` found on the machine. */
    int (*observe)(dp_driver_t *d, const char *host, dp_units_t *out, verr_t *e);
    /* Make one unit match (create, or rebuild when its fingerprint differs); `seen` is
     * the unit as observed, NULL when there was none. ensure and remove answer 1 when the
     * host must be observed again (they did more, or less, than the one unit). ensure
     * notes on `u` what it chose that observe would read back (an interface's packet
     * mark): the reconciler keeps `u` as what is there (dp_apply_changes). */
    int (*ensure)(dp_driver_t *d, const dp_desired_t *want, dp_unit_t *u,
                  const dp_unit_t *seen, verr_t *e);
    /* Remove one observed unit and everything it owns. */
    int (*remove)(dp_driver_t *d, const char *host, const dp_unit_t *u, verr_t *e);
    /* Optional. ensure and remove may defer their commands so that many units cost one
     * command per namespace (linux: the security group pieces as one `nft` transaction,
     * new stand-ins and removed interfaces as one `ip -batch` per namespace); commit runs
     * what was deferred, in an order that keeps the unit order's promises (an interface
     * unplugged before its rules go, rules there before an interface is plugged). The
     * reconciler commits before the first interface is ensured and after the ensures
     * and the late removals; answers as ensure does (1: observe again). discard drops
     * what was deferred (an apply that failed half-way: the next one observes). */
    int (*commit)(dp_driver_t *d, verr_t *e);
    void (*discard)(dp_driver_t *d);
    /* Remove what hosts share (underlay, outside) when no host is left. */
    int (*teardown_shared)(dp_driver_t *d, verr_t *e);
    /* Hosts that have a namespace (for teardown of everything). */
    int (*hosts)(dp_driver_t *d, char ***names, size_t *n, verr_t *e);
} dp_ops_t;

struct dp_driver {
    const dp_ops_t *ops;
    char prefix[32];
    char state_dir[512];
    /* What the host was left as by the last apply that converged (the reconciler's, see
     * dp_apply_changes): valid only for known_host, and only while nothing failed. */
    dp_units_t known;
    char known_host[DP_NAME_MAX];
    int known_ok;
};

const dp_ops_t *dp_driver_find(const char *name);
dp_driver_t *dp_open(const char *driver_name, const dp_config_t *cfg, verr_t *e);
void dp_close(dp_driver_t *d);

/* The fake driver's record of what it did ("ensure vpc 1001", "remove iface eni-1"), one
 * line per step, and a way to plant leftovers as a crashed agent would leave them. */
const char *dp_fake_log(dp_driver_t *d);
void dp_fake_log_clear(dp_driver_t *d);
/* How many times the fake was observed (dp_apply_changes skips it when it can). */
int dp_fake_observations(const dp_driver_t *d);
void dp_fake_plant(dp_driver_t *d, const char *host, dp_kind_t kind, const char *key,
                   const char *fp);

typedef struct dp_stats {
    int ensured, removed;
    /* Optional: called after each interface is plugged (its rules, DHCP entry and VPC are
     * there by then: interfaces come last) when this apply built no VPC, whose metadata
     * server the caller starts after the apply. An instance waiting for its interface
     * may start then instead of when the whole apply ends (30 ports in one apply). */
    void (*plugged)(void *arg, const char *eni_id);
    void *plugged_arg;
} dp_stats_t;

/* Make the host match `want` exactly: observe the whole host, then change what differs
 * (the start, the periodic repair, the command line). */
int dp_apply(dp_driver_t *d, const dp_desired_t *want, dp_stats_t *st, verr_t *e);
/* The same, taking the host to be as the last apply that converged left it (no
 * observation) when that is known; otherwise, and after anything failed or a unit that
 * takes others with it was rebuilt, it observes as dp_apply does. What changed under the
 * datapath since is repaired by the next dp_apply (the agent's periodic resync). */
int dp_apply_changes(dp_driver_t *d, const dp_desired_t *want, dp_stats_t *st, verr_t *e);
int dp_observe(dp_driver_t *d, const char *host, dp_units_t *out, verr_t *e);
/* Remove every unit of `host`, its namespace included. */
int dp_teardown(dp_driver_t *d, const char *host, verr_t *e);
/* Every host of this prefix, then the underlay and outside namespaces. */
int dp_teardown_all(dp_driver_t *d, verr_t *e);

/* ---- renderers (pure) ---- */
/* Security groups (render_sg.c): nftables scripts, each one atomic transaction. The
 * skeleton (DP_SG_LAYOUT is its fingerprint) holds the tables, the verdict maps and the
 * base chains; each VPC, group set and interface is added, replaced or deleted on its own
 * (`fp` becomes the comment observe() reads back). dp_render_sg_full() is all of it at
 * once from nothing: the repair and adoption path. */
#define DP_SG_LAYOUT "sg=2"
char *dp_render_sg_skeleton(void);
char *dp_render_sg_vpc(const dp_desired_t *d, const dp_vpc_t *v, const char *fp);
char *dp_render_sg_vpc_del(unsigned vni);
char *dp_render_sg_set(const char *set, const char *elems);
char *dp_render_sg_set_del(const char *set);
char *dp_render_sg_group(const dp_group_t *g, int exists, const char *fp);
char *dp_render_sg_group_del(const char *group_id);
char *dp_render_sg_iface(const dp_desired_t *d, const dp_iface_t *f, unsigned mark, const char *fp);
char *dp_render_sg_iface_del(const char *eni, const char *dev, unsigned mark);
char *dp_render_sg_full(const dp_desired_t *d, const dp_units_t *units);
/* The set of a referenced group: g_<id>, '-' made '_' (nftables names take no '-'). */
void dp_sg_set_name(char *out, size_t n, const char *group_id);
/* The member addresses of a group as set elements: "a, b", sorted, each once ("" none). */
char *dp_sg_set_elems(const dp_desired_t *d, const char *group_id);
/* The same form of any list of addresses (sorts `v`). */
char *dp_sg_join_elems(const char **v, size_t n);
/* nftables script of one VPC's 1:1 NAT in its router namespace (same shape). */
char *dp_render_nat(const dp_desired_t *d, const dp_vpc_t *v, const char *fp);
/* dnsmasq configuration (served on DP_ROUTER_IF) and hosts file of one VPC; file paths
 * are given on dnsmasq's command line by the driver. */
char *dp_render_dhcp_conf(const dp_vpc_t *v);
char *dp_render_dhcp_hosts(const dp_desired_t *d, const dp_vpc_t *v);

/* Names inside a VPC's router namespace. */
#define DP_ROUTER_IF  "gw0"     /* its leg on the VPC bridge: the subnets' gateways */
#define DP_OUTSIDE_IF "out0"    /* its leg to the outside namespace: public addresses */
#define DP_OUTSIDE_CLIENT "192.0.2.1"   /* the outside namespace's own address (TEST-NET-1) */
/* The instance metadata service: this address on the router namespace's lo, where the
 * host's agent listens (services/compute/agent/metadata_server.c). */
#define DP_METADATA_IP "169.254.169.254"

/* A short stable hash (hex) of a text, for fingerprints and device names. */
void dp_hash8(const char *text, char out[9]);

#endif
