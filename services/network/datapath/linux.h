/* linux.h - names and helpers shared by the linux driver's files (linux_*.c). */
#ifndef VIRGA_DP_LINUX_H
#define VIRGA_DP_LINUX_H

#include "datapath.h"
#include "dp_exec.h"

#define UL_BRIDGE "virga-ul"    /* the underlay bridge, and each host's leg on it */

/* Namespaces: <prefix>h-<host>, <prefix>underlay, <prefix>outside,
 * <prefix>r-<host>.<vni> (a VPC's router: gateways, DHCP, NAT), <prefix>i-<host>.<eni>
 * (the stand-in for an instance until compute lands). */
void lx_ns_host(const dp_driver_t *d, const char *host, char *out, size_t n);
void lx_ns_router(const dp_driver_t *d, const char *host, unsigned vni, char *out, size_t n);
void lx_ns_inst(const dp_driver_t *d, const char *host, const char *eni, char *out, size_t n);
void lx_ns_shared(const dp_driver_t *d, const char *what, char *out, size_t n);
/* Per-host state directory (dnsmasq files). */
void lx_host_dir(const dp_driver_t *d, const char *host, char *out, size_t n);

int lx_ns_exists(const char *ns);
/* Namespaces whose name starts with `prefix`: the rest of each name (caller frees). */
char **lx_ns_list(const char *prefix, size_t *n);
int lx_ns_add(const char *ns, verr_t *e);
void lx_ns_del(const char *ns);

/* dnsmasq of one VPC: pid when running with our configuration, else 0. */
int lx_dhcp_pid(const char *dir, unsigned vni);
void lx_dhcp_stop(const char *dir, unsigned vni);

int lx_observe(dp_driver_t *d, const char *host, dp_units_t *out, verr_t *e);

#endif
