/* linux.h - names and helpers shared by the linux driver's files (linux_*.c). */
#ifndef VIRGA_DP_LINUX_H
#define VIRGA_DP_LINUX_H

#include "datapath.h"
#include "dp_exec.h"
#include "strbuf.h"

#define UL_BRIDGE "virga-ul"    /* the underlay bridge, and each host's leg on it */
/* The device group of host ends being removed: the commit deletes them with one
 * `ip link del group`, one request for all of them (the kernel then unregisters them
 * together; one `link del` each cost ~20 ms, 370 ms for 18). Nothing else of ours is in
 * a group. */
#define LX_GONE_GROUP "4057"
#define LX_MARKS 32768          /* packet marks of interfaces: 15 bits, 0 unused (render_sg.c) */

/* Commands deferred to the apply's commit (linux_commit.c): one per namespace and step. */
typedef struct lx_pending {
    char hns[128];          /* the host namespace of all of it */
    strbuf_t unplug;        /* hns: removed interfaces' host ends */
    strbuf_t ns_del;        /* root: their stand-in namespaces */
    strbuf_t nft;           /* hns: security group pieces, one transaction */
    int nft_pieces;
    strbuf_t ns_add;        /* root: new stand-ins' namespaces */
    struct lx_inst_cmds {
        char ns[200];
        char *cmds;
    } *inst;                /* each new stand-in's own commands */
    size_t n_inst;
    strbuf_t plug;          /* hns: new host ends onto their bridges, then named */
} lx_pending_t;

typedef struct lx_driver {
    dp_driver_t base;       /* first: the handle is an lx_driver_t */
    int lock_fd;
    lx_pending_t pending;
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
void lx_dhcp_kill_strays(const char *dir, int vni);

int lx_observe(dp_driver_t *d, const char *host, dp_units_t *out, verr_t *e);

/* Deferred commands (linux_commit.c): the list for host namespace `hns`, a new stand-in's
 * own commands, and the ops' commit and discard. */
lx_pending_t *lx_pending(dp_driver_t *d, const char *hns);
void lx_defer_inst(lx_pending_t *p, const char *ns, const char *cmds);
int lx_commit(dp_driver_t *d, verr_t *e);
void lx_discard(dp_driver_t *d);

/* Security groups (linux_sg.c): the DP_SG* units of the host namespace `hns`. */
int lx_sg_observe(dp_driver_t *d, const char *hns, dp_units_t *out, verr_t *e);
int lx_sg_ensure(dp_driver_t *d, const dp_desired_t *w, dp_unit_t *u, const dp_unit_t *seen, verr_t *e);
int lx_sg_remove(dp_driver_t *d, const char *host, const dp_unit_t *u, verr_t *e);

#endif
