/* linux.h - names and helpers shared by the linux driver's files (linux_*.c). */
#ifndef VIRGA_DP_LINUX_H
#define VIRGA_DP_LINUX_H

#include "datapath.h"
#include "dp_exec.h"

#define UL_BRIDGE "virga-ul"    /* the underlay bridge, and each host's leg on it */
#define LX_MARKS 32768          /* packet marks of interfaces: 15 bits, 0 unused (render_sg.c) */

typedef struct lx_driver {
    dp_driver_t base;       /* first: the handle is an lx_driver_t */
    int lock_fd;
    /* Marks in use on the host last observed (observe fills it, ensure and remove of an
     * interface's rules keep it current): a new interface takes the lowest free one. */
    unsigned char marks[LX_MARKS / 8];
} lx_driver_t;

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

/* Security groups (linux_sg.c): the DP_SG* units of the host namespace `hns`. */
int lx_sg_observe(dp_driver_t *d, const char *hns, dp_units_t *out, verr_t *e);
int lx_sg_ensure(dp_driver_t *d, const dp_desired_t *w, dp_unit_t *u, const dp_unit_t *seen, verr_t *e);
int lx_sg_remove(dp_driver_t *d, const char *host, const dp_unit_t *u, verr_t *e);

#endif
