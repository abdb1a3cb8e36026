/* linux_driver.c - the real datapath: namespaces, bridges, VXLAN, veth, nftables, dnsmasq.
 *
 * Every object lives in a namespace this driver creates (prefix from the configuration,
 * "virga-" by default); the root namespace's links, routes and firewall are never touched.
 * Each ensure builds its unit from scratch when the fingerprint differs (removing what is
 * there first) and writes the fingerprint last, so an agent killed half-way leaves a unit
 * that the next apply sees as broken and rebuilds. */
#include <dirent.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "linux.h"
#include "strbuf.h"

#define VX_MTU "1450"   /* 1500 on the underlay minus VXLAN's 50 bytes */
#define DP_LOCK_WAIT_S 60

void lx_ns_host(const dp_driver_t *d, const char *host, char *out, size_t n)
{
    snprintf(out, n, "%sh-%s", d->prefix, host);
}

void lx_ns_router(const dp_driver_t *d, const char *host, unsigned vni, char *out, size_t n)
{
    snprintf(out, n, "%sr-%s.%u", d->prefix, host, vni);
}

void lx_ns_inst(const dp_driver_t *d, const char *host, const char *eni, char *out, size_t n)
{
    snprintf(out, n, "%si-%s.%s", d->prefix, host, eni);
}

void lx_ns_shared(const dp_driver_t *d, const char *what, char *out, size_t n)
{
    snprintf(out, n, "%s%s", d->prefix, what);
}

void lx_host_dir(const dp_driver_t *d, const char *host, char *out, size_t n)
{
    snprintf(out, n, "%s/%sh-%s", d->state_dir, d->prefix, host);
}

/* A namespace is there when its file has one mounted on it. An applier killed inside
 * its add (between the file's creation and the bind mount: a moment `ip netns add` had
 * too, now in this process: dp_netns.c) leaves an empty file, which cannot be entered
 * (setns: EINVAL) and would otherwise stop every later apply and teardown of that host:
 * it counts as absent, and lx_ns_add and lx_ns_del remove it. */
int lx_ns_exists(const char *ns)
{
    char path[512];
    struct statfs st;
    snprintf(path, sizeof path, "/run/netns/%s", ns);
    return statfs(path, &st) == 0 && st.f_type == NSFS_MAGIC;
}

static int ns_file_exists(const char *ns)
{
    char path[512];
    snprintf(path, sizeof path, "/run/netns/%s", ns);
    return access(path, F_OK) == 0;
}

char **lx_ns_list(const char *prefix, size_t *n)
{
    *n = 0;
    char **v = NULL;
    DIR *dh = opendir("/run/netns");
    if (!dh) return NULL;
    struct dirent *de;
    size_t plen = strlen(prefix);
    while ((de = readdir(dh))) {
        if (strncmp(de->d_name, prefix, plen) || !de->d_name[plen]) continue;
        v = xrealloc(v, (*n + 1) * sizeof *v);
        v[(*n)++] = xstrdup(de->d_name + plen);
    }
    closedir(dh);
    return v;
}

int lx_ns_add(const char *ns, verr_t *e)
{
    if (lx_ns_exists(ns)) return 0;
    lx_ns_del(ns);   /* a killed add's empty file */
    if (dp_runv(NULL, 0, e, "ip", "netns", "add", ns, NULL) < 0) return -1;
    return dp_runv(ns, 0, e, "ip", "link", "set", "lo", "up", NULL);
}

void lx_ns_del(const char *ns)
{
    if (ns_file_exists(ns)) dp_runv(NULL, DP_QUIET, NULL, "ip", "netns", "del", ns, NULL);
}

static int sysctl_in(const char *ns, const char *kv, verr_t *e)
{
    return dp_runv(ns, 0, e, "sysctl", "-q", "-w", kv, NULL);
}

/* ---- host ---- */

static int shared_ns(dp_driver_t *d, char *uns, char *ons, size_t n, verr_t *e)
{
    lx_ns_shared(d, "underlay", uns, n);
    lx_ns_shared(d, "outside", ons, n);
    /* Each step again when its namespace is new or half made: an applier killed between
     * `ip netns add` and the bridge left a namespace without it, which the next host
     * ensure would trip on. */
    if (!lx_ns_exists(uns) && lx_ns_add(uns, e) < 0) return -1;
    if (dp_runv(uns, DP_QUIET, NULL, "ip", "link", "show", UL_BRIDGE, NULL) < 0 &&
        (dp_runv(uns, 0, e, "ip", "link", "add", UL_BRIDGE, "type", "bridge", NULL) < 0 ||
         dp_runv(uns, 0, e, "ip", "link", "set", UL_BRIDGE, "up", NULL) < 0))
        return -1;
    if (!lx_ns_exists(ons) && lx_ns_add(ons, e) < 0) return -1;
    return dp_runv(ons, 0, e, "ip", "addr", "replace", DP_OUTSIDE_CLIENT "/32", "dev", "lo", NULL);
}

static int remove_host(dp_driver_t *d, const char *host)
{
    char pfx[160], dir[700], hns[128];
    lx_host_dir(d, host, dir, sizeof dir);
    DIR *dh = opendir(dir);
    if (dh) {
        struct dirent *de;
        unsigned vni;
        char tail[16];
        while ((de = readdir(dh)))
            if (sscanf(de->d_name, "dhcp-%u.%15s", &vni, tail) == 2 && !strcmp(tail, "pid"))
                lx_dhcp_stop(dir, vni);
        closedir(dh);
    }
    lx_dhcp_kill_strays(dir, -1);   /* one no pid file names (an applier killed as it started it) */
    static const char *const kinds[] = {"r", "i"};
    for (size_t k = 0; k < ARRAY_LEN(kinds); k++) {
        snprintf(pfx, sizeof pfx, "%s%s-%s.", d->prefix, kinds[k], host);
        size_t n = 0;
        char **v = lx_ns_list(pfx, &n);
        for (size_t i = 0; i < n; i++) {
            char ns[300];
            snprintf(ns, sizeof ns, "%s%s", pfx, v[i]);
            lx_ns_del(ns);
            free(v[i]);
        }
        free(v);
    }
    lx_ns_host(d, host, hns, sizeof hns);
    lx_ns_del(hns);
    if (dh) {
        dh = opendir(dir);
        struct dirent *de;
        while (dh && (de = readdir(dh))) {
            char p[1100];
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            if (de->d_name[0] != '.') unlink(p);
        }
        if (dh) closedir(dh);
        rmdir(dir);
    }
    return 0;
}

static int ensure_host(dp_driver_t *d, const dp_desired_t *w, const dp_unit_t *u, verr_t *e)
{
    char hns[128], uns[128], ons[128], leg[16], addr[64], plen[8], h[9];
    lx_ns_host(d, w->host, hns, sizeof hns);
    if (shared_ns(d, uns, ons, sizeof uns, e) < 0) return -1;
    /* A host whose underlay address changed is rebuilt whole: every tunnel depends on it. */
    remove_host(d, w->host);
    dp_hash8(hns, h);
    snprintf(leg, sizeof leg, "vu-%s", h);
    snprintf(plen, sizeof plen, "%d", w->underlay_prefix_len);
    snprintf(addr, sizeof addr, "%s/%s", w->underlay_ip, plen);
    dp_runv(uns, DP_QUIET, NULL, "ip", "link", "del", leg, NULL);   /* a leg left by a crash */
    if (lx_ns_add(hns, e) < 0 ||
        sysctl_in(hns, "net.bridge.bridge-nf-call-iptables=1", e) < 0 ||
        dp_runv(hns, 0, e, "ip", "link", "add", UL_BRIDGE, "type", "veth", "peer", "name", leg,
                "netns", uns, NULL) < 0 ||
        dp_runv(uns, 0, e, "ip", "link", "set", leg, "master", UL_BRIDGE, "up", NULL) < 0 ||
        dp_runv(hns, 0, e, "ip", "addr", "add", addr, "dev", UL_BRIDGE, NULL) < 0 ||
        dp_runv(hns, 0, e, "ip", "link", "set", UL_BRIDGE, "up", NULL) < 0)
        return -1;
    return dp_runv(hns, 0, e, "ip", "link", "set", UL_BRIDGE, "alias", u->fp, NULL);
}

/* ---- VPC: bridge, VXLAN, router namespace and its legs ---- */

static void remove_vpc(dp_driver_t *d, const char *host, unsigned vni)
{
    char hns[128], rns[128], dir[700], dev[16];
    lx_ns_host(d, host, hns, sizeof hns);
    lx_ns_router(d, host, vni, rns, sizeof rns);
    lx_host_dir(d, host, dir, sizeof dir);
    lx_dhcp_stop(dir, vni);
    lx_ns_del(rns);
    if (!lx_ns_exists(hns)) return;
    static const char *const kinds[] = {"vr", "vx", "vb"};
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
        snprintf(dev, sizeof dev, "%s-%u", kinds[i], vni);
        dp_runv(hns, DP_QUIET, NULL, "ip", "link", "del", dev, NULL);
    }
}

static int ensure_vpc(dp_driver_t *d, const dp_desired_t *w, const dp_unit_t *u, verr_t *e)
{
    const dp_vpc_t *v = u->spec;
    char hns[128], rns[128], uns[128], ons[128], vb[16], vx[16], vr[16], vo[16], id[16], h[9];
    lx_ns_host(d, w->host, hns, sizeof hns);
    lx_ns_router(d, w->host, v->vni, rns, sizeof rns);
    if (shared_ns(d, uns, ons, sizeof uns, e) < 0) return -1;
    remove_vpc(d, w->host, v->vni);
    snprintf(vb, sizeof vb, "vb-%u", v->vni);
    snprintf(vx, sizeof vx, "vx-%u", v->vni);
    snprintf(vr, sizeof vr, "vr-%u", v->vni);
    snprintf(id, sizeof id, "%u", v->vni);
    dp_hash8(rns, h);
    snprintf(vo, sizeof vo, "vo-%s", h);
    dp_runv(ons, DP_QUIET, NULL, "ip", "link", "del", vo, NULL);
    /* The gateway has one MAC per VPC on every host (a distributed gateway). */
    char gw_mac[18];
    snprintf(gw_mac, sizeof gw_mac, "02:fe:%02x:%02x:%02x:01", (v->vni >> 16) & 0xff,
             (v->vni >> 8) & 0xff, v->vni & 0xff);
    /* Two things keep the gateway MAC on this host's own router port, from the first
     * frame on (docs/network.md, "The gateway MAC stays home"): the router's namespace
     * has no IPv6, so its leg coming up sends nothing by itself (it sent MLD reports, DAD
     * and router solicitations with that MAC, which the bridge flooded through the tunnel
     * before this VPC's bridge rules existed, some held in the underlay's ARP queue until
     * the peer host came up); and the bridge holds that MAC on the router's port as a
     * static, sticky entry, so that a frame from the tunnel carrying it (another host's
     * router) can never move it there: learned behind the tunnel, the MAC sent this
     * host's instances' gateway traffic to the other host, where it is dropped. */
    if (dp_runv(hns, 0, e, "ip", "link", "add", vb, "type", "bridge", NULL) < 0 ||
        dp_runv(hns, 0, e, "ip", "link", "set", vb, "up", NULL) < 0 ||
        dp_runv(hns, 0, e, "ip", "link", "add", vx, "type", "vxlan", "id", id, "local",
                w->underlay_ip, "dstport", "4789", "nolearning", "dev", UL_BRIDGE, NULL) < 0 ||
        dp_runv(hns, 0, e, "ip", "link", "set", vx, "master", vb, "up", NULL) < 0 ||
        lx_ns_add(rns, e) < 0 ||
        dp_runv(rns, 0, e, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1", NULL) < 0 ||
        dp_runv(hns, 0, e, "ip", "link", "add", vr, "mtu", VX_MTU, "type", "veth", "peer", "name",
                DP_ROUTER_IF, "mtu", VX_MTU, "netns", rns, NULL) < 0 ||
        dp_runv(hns, 0, e, "ip", "link", "set", vr, "master", vb, "up", NULL) < 0 ||
        dp_runv(hns, 0, e, "bridge", "fdb", "replace", gw_mac, "dev", vr, "master", "static", "sticky", NULL) < 0 ||
        dp_runv(rns, 0, e, "ip", "link", "set", DP_ROUTER_IF, "address", gw_mac, "up", NULL) < 0 ||
        dp_runv(rns, 0, e, "ip", "link", "add", DP_OUTSIDE_IF, "type", "veth", "peer", "name", vo,
                "netns", ons, NULL) < 0 ||
        dp_runv(ons, 0, e, "ip", "link", "set", vo, "up", NULL) < 0 ||
        dp_runv(rns, 0, e, "ip", "link", "set", DP_OUTSIDE_IF, "up", NULL) < 0)
        return -1;
    return dp_runv(hns, 0, e, "ip", "link", "set", vx, "alias", u->fp, NULL);
}

static int fdb_op(dp_driver_t *d, const char *host, const char *key, const char *op, int flags,
                  verr_t *e)
{
    char hns[128], vx[24], peer[64];
    unsigned vni;
    if (sscanf(key, "%u/%63s", &vni, peer) != 2) return 0;
    lx_ns_host(d, host, hns, sizeof hns);
    snprintf(vx, sizeof vx, "vx-%u", vni);
    return dp_runv(hns, flags, e, "bridge", "fdb", op, "00:00:00:00:00:00", "dev", vx, "dst",
                   peer, NULL);
}

/* ---- interfaces: a veth pair into a stand-in namespace (a container joins it), or a
 * persistent tap in the host namespace (QEMU, running there, opens it by name) ---- */

/* Several `ip` commands in one namespace, one request each (`ip -batch`, stops at the first error):
 * plugging an interface is on the path every instance start waits for. */
static int ip_batch(const char *ns, const char *cmds, verr_t *e)
{
    static const char *const argv[] = {"ip", "-batch", "-", NULL};
    return dp_run(ns, argv, cmds, NULL, 0, e);
}

/* A stand-in found whole but for its label (an applier killed after it made the pair,
 * before it named the host side): its namespace exists, the host side of the document's
 * name exists there, and its eth0 is in the namespace (the pair is made in one step, so
 * both ends are one pair). Finished in place, the same namespace kept: a guest may run in
 * it already. Anything amiss (a step fails) and it is made anew by the caller. */
static int adopt_iface(const dp_iface_t *f, const char *hns, const char *ins, const char *attach,
                       const char *inst_cmds)
{
    if (!lx_ns_exists(ins) || dp_runv(ins, DP_QUIET, NULL, "ip", "link", "show", "eth0", NULL) < 0) return -1;
    AUTOFREE char *host_cmds = xasprintf("link set %s master vb-%u up\n", f->device, f->vpc->vni);
    AUTOFREE char *eth0 = xasprintf("link set eth0 address %s\n%s", f->mac, inst_cmds);
    if (ip_batch(hns, host_cmds, NULL) < 0 || ip_batch(ins, eth0, NULL) < 0 || ip_batch(hns, attach, NULL) < 0)
        return -1;
    fprintf(stderr, "datapath: %s: adopted the half-made interface %s (its stand-in kept)\n", hns, f->eni_id);
    return 0;
}

static void remove_iface(dp_driver_t *d, const char *host, const dp_unit_t *u)
{
    char hns[128], ins[200];
    lx_ns_host(d, host, hns, sizeof hns);
    if (u->dev[0] && lx_ns_exists(hns)) dp_runv(hns, DP_QUIET, NULL, "ip", "link", "del", u->dev, NULL);
    if (strncmp(u->key, "dev:", 4)) {
        lx_ns_inst(d, host, u->key, ins, sizeof ins);
        lx_ns_del(ins);
    }
}

/* The same at the commit, with every other interface the apply removes: one `ip -batch`
 * in the host namespace, one in the root for the stand-ins (linux_commit.c). */
static void defer_remove_iface(dp_driver_t *d, const char *host, const dp_unit_t *u)
{
    char hns[128], ins[200];
    lx_ns_host(d, host, hns, sizeof hns);
    if (!lx_ns_exists(hns)) return;     /* the host went, and everything with it */
    lx_pending_t *p = lx_pending(d, hns);
    if (u->dev[0]) strbuf_printf(&p->unplug, "link set %s group " LX_GONE_GROUP "\n", u->dev);
    if (strncmp(u->key, "dev:", 4)) {
        lx_ns_inst(d, host, u->key, ins, sizeof ins);
        if (lx_ns_exists(ins)) strbuf_printf(&p->ns_del, "netns del %s\n", ins);
    }
}

/* An interface that is not a new stand-in: a tap, an attached one, one rebuilt or
 * finished in place. */
static int ensure_iface_now(dp_driver_t *d, const dp_desired_t *w, const dp_unit_t *u, const dp_unit_t *seen,
                            const char *hns, const char *ins, verr_t *e)
{
    const dp_iface_t *f = u->spec;
    int stand_in = strcmp(f->kind, "tap") && !f->parent[0];
    if (seen && !stand_in) remove_iface(d, w->host, u);
    AUTOFREE char *attach = xasprintf("link set %s master vb-%u up\nlink set %s alias \"eni=%s %s\"\n",
                                      f->device, f->vpc->vni, f->device, f->eni_id, u->fp);
    /* A tap has no stand-in: the guest's MAC is the interface's (QEMU's -netdev), the
     * tap's own is the host side's and never on the wire. It outlives QEMU: a restarted
     * guest opens the same one. */
    if (!strcmp(f->kind, "tap")) {
        AUTOFREE char *tap = xasprintf("tuntap add dev %s mode tap\nlink set %s mtu " VX_MTU "\n%s", f->device,
                                       f->device, attach);
        return ip_batch(hns, tap, e);
    }
    /* Attached after launch: a veth whose peer goes into the primary's namespace (the
     * running container's) as eth<N>, with its address and no route of its own, as a
     * second interface comes up on EC2 until the guest configures it. */
    if (f->parent[0]) {
        char pns[200], eth[8];
        lx_ns_inst(d, w->host, f->parent, pns, sizeof pns);
        snprintf(eth, sizeof eth, "eth%d", f->device_index);
        AUTOFREE char *host_cmds = xasprintf("link add %s mtu " VX_MTU " type veth peer name %s mtu " VX_MTU
                                             " netns %s\n", f->device, eth, pns);
        AUTOFREE char *inst_cmds = xasprintf("link set %s address %s up\naddr add %s/%d dev %s\n", eth, f->mac,
                                             f->ip, f->prefix_len, eth);
        if (ip_batch(hns, host_cmds, e) < 0 || ip_batch(pns, inst_cmds, e) < 0) return -1;
        return ip_batch(hns, attach, e);
    }
    /* The stand-in gets the document's address statically, as its DHCP lease would, and
     * only once the host side is on the VPC's bridge: a guest waits for its address with
     * a carrier (container_netns.c), so one that starts against a half-made interface
     * already has its way out. The host side is named last: its alias is the unit's
     * fingerprint. Each step is one `ip -batch`, and each command there is idempotent
     * (replace), so that a stand-in half made by a killed applier is finished in place
     * (adopt_iface) rather than made anew under a guest that may already run in it. */
    AUTOFREE char *inst_cmds = xasprintf("link set lo up\nlink set eth0 up\naddr replace %s/%d dev eth0\n"
                                         "route replace default via %s\n", f->ip, f->prefix_len, f->subnet->gateway);
    if (seen && !seen->fp[0] && adopt_iface(f, hns, ins, attach, inst_cmds) == 0) return 0;
    if (seen) remove_iface(d, w->host, u);
    if (dp_runv(NULL, 0, e, "ip", "netns", "add", ins, NULL) < 0) return -1;
    AUTOFREE char *host_cmds = xasprintf(
        "link add %s mtu " VX_MTU " type veth peer name eth0 address %s mtu " VX_MTU " netns %s\n"
        "link set %s master vb-%u up\n", f->device, f->mac, ins, f->device, f->vpc->vni);
    if (ip_batch(hns, host_cmds, e) < 0 || ip_batch(ins, inst_cmds, e) < 0) return -1;
    return ip_batch(hns, attach, e);
}

static int ensure_iface(dp_driver_t *d, const dp_desired_t *w, const dp_unit_t *u,
                        const dp_unit_t *seen, verr_t *e)
{
    const dp_iface_t *f = u->spec;
    char hns[128], ins[200], vb[16];
    lx_ns_host(d, w->host, hns, sizeof hns);
    lx_ns_inst(d, w->host, f->eni_id, ins, sizeof ins);
    /* Whole but detached (its VPC was rebuilt): attach it again. The instance keeps its
     * interface; rebuilding it would cut the instance off. */
    snprintf(vb, sizeof vb, "vb-%u", f->vpc->vni);
    if (seen && seen->reattach && seen->text && !strcmp(seen->text, u->fp))
        return dp_runv(hns, 0, e, "ip", "link", "set", f->device, "master", vb, "up", NULL);
    /* A broken one is rebuilt from scratch (a stand-in's after adopt_iface declined). One
     * never observed has nothing to remove (observe reports every vt- device and stand-in
     * namespace of the host), and the `ip link del` of a missing device is not free on
     * the path of every plug. */
    int stand_in = strcmp(f->kind, "tap") && !f->parent[0];
    /* A new stand-in waits for the commit, with every other of this apply: see there. */
    if (stand_in && !seen) {
        lx_pending_t *p = lx_pending(d, hns);
        strbuf_printf(&p->ns_add, "netns add %s\n", ins);
        AUTOFREE char *cmds = xasprintf("link add eth0 address %s mtu " VX_MTU " type veth peer name %s mtu " VX_MTU
                                        " netns %s\nlink set lo up\nlink set eth0 up\naddr replace %s/%d dev eth0\n"
                                        "route replace default via %s\n", f->mac, f->device, hns, f->ip,
                                        f->prefix_len, f->subnet->gateway);
        lx_defer_inst(p, ins, cmds);
        strbuf_printf(&p->plug, "link set %s master %s up\nlink set %s alias \"eni=%s %s\"\n", f->device, vb,
                      f->device, f->eni_id, u->fp);
        return 0;
    }
    /* Anything else runs now, after what was deferred (an attached interface goes into
     * its primary's stand-in, which may be one of those). */
    int again = lx_commit(d, e);
    if (again < 0) return -1;
    int rc = ensure_iface_now(d, w, u, seen, hns, ins, e);
    return rc < 0 ? -1 : rc | again;
}

/* ---- router: gateways, public addresses, NAT ---- */

#define RT_TABLE0 1000  /* subnet i's routes: table and rule priority RT_TABLE0 + i */
#define RT_TABLES 256

/* Routes through an interface ("rt=" tokens of the router's text2, units.c): per subnet
 * a table of its own, chosen by a rule on the source (the subnet's block), since
 * subnets of one VPC may use different route tables; the next hop's MAC is a permanent
 * neighbour, so the router never ARPs across the tunnel (the bridge drops gateway
 * broadcasts toward it; render.c lets unicast to these MACs through). Everything of
 * ours is cleared first, so a route removed from the document is gone. */
static int router_routes(const char *rns, const char *spec, verr_t *e)
{
    static const char *const force[] = {"ip", "-force", "-batch", "-", NULL};
    static const char *const batch[] = {"ip", "-batch", "-", NULL};
    strbuf_t clear = {0}, add = {0};
    strbuf_puts(&clear, "neigh flush dev " DP_ROUTER_IF " nud permanent\n");
    for (int t = 0; t < RT_TABLES; t++)
        strbuf_printf(&clear, "rule del priority %d\nroute flush table %d\n", RT_TABLE0 + t, RT_TABLE0 + t);
    AUTOFREE char *copy = xstrdup(spec ? spec : "");
    char *save = NULL, cidr[48], dest[48], via[48], mac[18];
    int last = -1;
    unsigned idx;
    for (char *g = strtok_r(copy, " ", &save); g; g = strtok_r(NULL, " ", &save)) {
        if (sscanf(g, "rt=%u,%47[^,],%47[^,],%47[^,],%17s", &idx, cidr, dest, via, mac) != 5 || idx >= RT_TABLES)
            continue;
        if ((int)idx != last)
            strbuf_printf(&add, "rule add priority %u from %s lookup %u\n", RT_TABLE0 + idx, cidr, RT_TABLE0 + idx);
        last = (int)idx;
        strbuf_printf(&add, "neigh replace %s lladdr %s dev " DP_ROUTER_IF " nud permanent\n"
                      "route replace %s via %s dev " DP_ROUTER_IF " onlink table %u\n", via, mac, dest, via,
                      RT_TABLE0 + idx);
    }
    dp_run(rns, force, clear.s, NULL, DP_QUIET, NULL);    /* most of these find nothing */
    /* A next hop on the sender's own subnet would make the router send ICMP redirects,
     * and the sender would then bypass it (and keep doing so after the route is gone):
     * EC2's router never redirects. */
    int rc = !add.len ? 0
        : dp_runv(rns, 0, e, "sysctl", "-q", "-w", "net.ipv4.conf.all.send_redirects=0",
                  "net.ipv4.conf." DP_ROUTER_IF ".send_redirects=0", NULL) < 0 ? -1
        : dp_run(rns, batch, add.s, NULL, 0, e);
    free(clear.s);
    free(add.s);
    return rc;
}

/* The public addresses of a NAT script (render.c: "ip daddr <public> dnat to <private>"),
 * one per line of the result, each followed by '\n'. */
static char *nat_publics(const char *nat)
{
    strbuf_t b = {0};
    strbuf_puts(&b, "");
    char pub[48];
    for (const char *l = nat; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (sscanf(l, " ip daddr %47s dnat to", pub) == 1) strbuf_printf(&b, "%s\n", pub);
    return b.s;
}

static int has_line(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *l = list; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, item, n) && l[n] == '\n') return 1;
    return 0;
}

/* A router whose gateways and routes are as the last apply left them (`seen` from
 * dp_apply_changes, with its texts) and only its public addresses or NAT differ (an
 * interface with a public address came or went): those addresses and their routes in
 * the outside namespace change, one `ip -batch` in each, and the NAT table is replaced,
 * three commands whatever the number of interfaces, where a rebuild flushed and added
 * every address one command each. 1 when it cannot (the caller rebuilds). */
static int router_publics(const dp_desired_t *w, const dp_unit_t *u, const dp_unit_t *seen, const char *rns,
                          const char *ons, const char *vo, verr_t *e)
{
    const dp_vpc_t *v = u->spec;
    if (!seen || !seen->text || !seen->text2 || !u->text2 || strcmp(seen->text2, u->text2)) return 1;
    AUTOFREE char *before = nat_publics(seen->text), *after = nat_publics(u->text);
    strbuf_t in_router = {0}, outside = {0};
    for (const char *l = before; *l; l = strchr(l, '\n') + 1) {
        char pub[48];
        snprintf(pub, sizeof pub, "%.*s", (int)(strchr(l, '\n') - l), l);
        if (has_line(after, pub)) continue;
        strbuf_printf(&in_router, "addr del %s/32 dev " DP_OUTSIDE_IF "\n", pub);
        strbuf_printf(&outside, "route del %s/32 dev %s\n", pub, vo);
    }
    for (size_t i = 0; i < w->n_ifaces; i++) {
        const dp_iface_t *f = &w->ifaces[i];
        if (f->vpc != v || !f->public_ip[0] || has_line(before, f->public_ip)) continue;
        strbuf_printf(&in_router, "addr replace %s/32 dev " DP_OUTSIDE_IF "\n", f->public_ip);
        strbuf_printf(&outside, "route replace %s/32 dev %s\n", f->public_ip, vo);
    }
    /* removing the device's last address drops its routes: the default again */
    if (in_router.len) strbuf_puts(&in_router, "route replace default dev " DP_OUTSIDE_IF "\n");
    static const char *const nft[] = {"nft", "-f", "-", NULL};
    verr_t err = {0};
    int rc = (in_router.len && ip_batch(rns, in_router.s, &err) < 0) || (outside.len && ip_batch(ons, outside.s, &err) < 0)
        ? 1 : dp_run(rns, nft, u->text, NULL, 0, e);
    if (rc > 0) fprintf(stderr, "datapath: %s: public addresses not changed in place (%s); rebuilding its router\n",
                        rns, err.message);
    free(in_router.s);
    free(outside.s);
    return rc;
}

static int ensure_router(dp_driver_t *d, const dp_desired_t *w, const dp_unit_t *u, const dp_unit_t *seen, verr_t *e)
{
    const dp_vpc_t *v = u->spec;
    char rns[128], ons[128], vo[16], h[9], pub[64];
    lx_ns_router(d, w->host, v->vni, rns, sizeof rns);
    lx_ns_shared(d, "outside", ons, sizeof ons);
    dp_hash8(rns, h);
    snprintf(vo, sizeof vo, "vo-%s", h);
    int in_place = router_publics(w, u, seen, rns, ons, vo, e);
    if (in_place <= 0) return in_place;
    /* an outside namespace with no route at all yet has no main table to flush ("FIB table
     * does not exist"): nothing to remove, and the route added below would say if the
     * namespace itself were broken */
    dp_runv(ons, DP_QUIET, NULL, "ip", "route", "flush", "dev", vo, NULL);
    if (dp_runv(rns, 0, e, "ip", "addr", "flush", "dev", DP_ROUTER_IF, NULL) < 0 ||
        dp_runv(rns, 0, e, "ip", "addr", "flush", "dev", DP_OUTSIDE_IF, NULL) < 0)
        return -1;
    AUTOFREE char *gws = xstrdup(u->text2);
    char *save = NULL;
    for (char *g = strtok_r(gws, " ", &save); g; g = strtok_r(NULL, " ", &save))
        if (strncmp(g, "rt=", 3) && dp_runv(rns, 0, e, "ip", "addr", "add", g, "dev", DP_ROUTER_IF, NULL) < 0)
            return -1;
    if (router_routes(rns, u->text2, e) < 0) return -1;
    for (size_t i = 0; i < w->n_ifaces; i++) {
        if (w->ifaces[i].vpc != v || !w->ifaces[i].public_ip[0]) continue;
        snprintf(pub, sizeof pub, "%s/32", w->ifaces[i].public_ip);
        if (dp_runv(rns, 0, e, "ip", "addr", "add", pub, "dev", DP_OUTSIDE_IF, NULL) < 0 ||
            dp_runv(ons, 0, e, "ip", "route", "replace", pub, "dev", vo, NULL) < 0)
            return -1;
    }
    /* After the addresses: removing a device's last address drops its routes. */
    if (dp_runv(rns, 0, e, "ip", "route", "replace", "default", "dev", DP_OUTSIDE_IF, NULL) < 0)
        return -1;
    static const char *const nft[] = {"nft", "-f", "-", NULL};
    return dp_run(rns, nft, u->text, NULL, 0, e);
}

static void remove_router(dp_driver_t *d, const char *host, unsigned vni)
{
    char rns[128];
    lx_ns_router(d, host, vni, rns, sizeof rns);
    if (!lx_ns_exists(rns)) return;
    dp_runv(rns, DP_QUIET, NULL, "nft", "delete", "table", "ip", "virga_nat", NULL);
    dp_runv(rns, DP_QUIET, NULL, "ip", "addr", "flush", "dev", DP_OUTSIDE_IF, NULL);
}

/* ---- the metadata address: instances reach 169.254.169.254 through their gateway,
 * the router, which holds it on lo; the agent listens there ---- */

static int meta_op(dp_driver_t *d, const char *host, unsigned vni, const char *op, int flags, verr_t *e)
{
    char rns[128];
    lx_ns_router(d, host, vni, rns, sizeof rns);
    if (!lx_ns_exists(rns)) return flags & DP_QUIET ? 0 : verr_set(e, 500, "InternalError", "%s: no such namespace", rns);
    return dp_runv(rns, flags, e, "ip", "addr", op, DP_METADATA_IP "/32", "dev", "lo", NULL);
}

/* ---- DHCP ---- */

static int write_file(const char *path, const char *text, verr_t *e)
{
    AUTOFREE char *tmp = xasprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return verr_set(e, 500, "InternalError", "%s: %s", tmp, strerror(errno));
    int ok = fputs(text, f) >= 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) < 0) return verr_set(e, 500, "InternalError", "cannot write %s", path);
    return 0;
}

/* 1 when the hosts file (lines "mac,ip,eni") gives ip to mac. */
static int hosts_give(const char *hosts, const char *mac, const char *ip)
{
    char want[96];
    int n = snprintf(want, sizeof want, "%s,%s,", mac, ip);
    for (const char *l = hosts; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncasecmp(l, want, (size_t)n))
            return 1;
    return 0;
}

/* Leases (lines "expiry mac ip name client-id") that the hosts file no longer backs: a
 * guest gone, its address maybe given to another interface. dnsmasq keeps a lease for
 * its hour and refuses the address to any other MAC meanwhile ("not using configured
 * address ... because it is leased to ..."), so a QEMU guest launched on the address of
 * one just terminated would get no lease. dnsmasq reads its lease file only when it
 * starts: the caller stops it, this drops such lines (drop 1), and it starts again;
 * with drop 0 it only counts them. */
static int stale_leases(const char *leases, const char *hosts, int drop)
{
    FILE *f = fopen(leases, "r");
    if (!f)
        return 0;
    strbuf_t keep = {0};
    strbuf_puts(&keep, "");
    char line[512];
    int stale = 0;
    while (fgets(line, sizeof line, f)) {
        char mac[64], ip[64];
        if (sscanf(line, "%*s %63s %63s", mac, ip) == 2 && !hosts_give(hosts, mac, ip))
            stale++;
        else
            strbuf_puts(&keep, line);
    }
    fclose(f);
    if (drop && stale) {
        verr_t ig;
        write_file(leases, keep.s, &ig);
    }
    free(keep.s);
    return stale;
}

static int ensure_dhcp(dp_driver_t *d, const dp_desired_t *w, const dp_unit_t *u, verr_t *e)
{
    const dp_vpc_t *v = u->spec;
    char dir[700], rns[128];
    lx_host_dir(d, w->host, dir, sizeof dir);
    lx_ns_router(d, w->host, v->vni, rns, sizeof rns);
    mkdir(d->state_dir, 0755);
    mkdir(dir, 0755);
    AUTOFREE char *conf = xasprintf("%s/dhcp-%u.conf", dir, v->vni);
    AUTOFREE char *hosts = xasprintf("%s/dhcp-%u.hosts", dir, v->vni);
    AUTOFREE char *old = NULL;
    FILE *f = fopen(conf, "r");
    if (f) {
        size_t n = 0;
        old = NULL;
        if (getdelim(&old, &n, 0, f) < 0) {
            free(old);
            old = NULL;
        }
        fclose(f);
    }
    AUTOFREE char *leases = xasprintf("%s/dhcp-%u.leases", dir, v->vni);
    int pid = lx_dhcp_pid(dir, v->vni);
    /* Only the hosts changed: dnsmasq rereads its hosts file on SIGHUP, no restart,
     * unless a lease it holds is no longer backed (stale_leases) */
    if (pid > 0 && old && !strcmp(old, u->text) && !stale_leases(leases, u->text2, 0)) {
        if (write_file(hosts, u->text2, e) < 0) return -1;
        kill(pid, SIGHUP);
        return 0;
    }
    lx_dhcp_stop(dir, v->vni);
    stale_leases(leases, u->text2, 1);
    if (write_file(hosts, u->text2, e) < 0 || write_file(conf, u->text, e) < 0) return -1;
    AUTOFREE char *a_conf = xasprintf("--conf-file=%s", conf);
    AUTOFREE char *a_pid = xasprintf("--pid-file=%s/dhcp-%u.pid", dir, v->vni);
    AUTOFREE char *a_hosts = xasprintf("--dhcp-hostsfile=%s", hosts);
    AUTOFREE char *a_lease = xasprintf("--dhcp-leasefile=%s", leases);
    const char *const argv[] = {"dnsmasq", a_conf, a_pid, a_hosts, a_lease, NULL};
    if (dp_run(rns, argv, NULL, NULL, DP_DETACHED, e) < 0) return -1;
    /* Done only once its pid file names it: otherwise the next observe could take a
     * starting dnsmasq for a dead one and start a second (bounded: 5 s). */
    for (int i = 0; i < 500; i++) {
        if (lx_dhcp_pid(dir, v->vni) > 0) return 0;
        usleep(10000);
    }
    return verr_set(e, 500, "InternalError", "dnsmasq for vni %u did not start", v->vni);
}

/* ---- the ops ---- */

static int lx_ensure(dp_driver_t *d, const dp_desired_t *w, dp_unit_t *u,
                     const dp_unit_t *seen, verr_t *e)
{
    switch (u->kind) {
    case DP_HOST:   return lx_commit(d, e) < 0 ? -1 : ensure_host(d, w, u, e);
    case DP_VPC:    return ensure_vpc(d, w, u, e);
    case DP_FDB:    return fdb_op(d, w->host, u->key, "append", 0, e);
    case DP_IFACE:  return ensure_iface(d, w, u, seen, e);
    case DP_ROUTER: return ensure_router(d, w, u, seen, e);
    case DP_DHCP:   return ensure_dhcp(d, w, u, e);
    case DP_META:   return meta_op(d, w->host, ((const dp_vpc_t *)u->spec)->vni, "replace", 0, e);
    case DP_SG:     /* the tables rewritten whole, after what was deferred */
        return lx_commit(d, e) < 0 ? -1 : lx_sg_ensure(d, w, u, seen, e);
    case DP_SGVPC: case DP_SGSET: case DP_SGGRP: case DP_SGIF:
        return lx_sg_ensure(d, w, u, seen, e);
    default:        return verr_set(e, 500, "InternalError", "unknown unit kind");
    }
}

static int lx_remove(dp_driver_t *d, const char *host, const dp_unit_t *u, verr_t *e)
{
    (void)e;
    unsigned vni = (unsigned)strtoul(u->key, NULL, 10);
    char dir[700];
    switch (u->kind) {
    case DP_HOST:   lx_discard(d); return remove_host(d, host);     /* all of it goes */
    case DP_VPC:    remove_vpc(d, host, vni); return 0;
    case DP_FDB:    fdb_op(d, host, u->key, "del", DP_QUIET, NULL); return 0;
    case DP_IFACE:  defer_remove_iface(d, host, u); return 0;
    case DP_ROUTER: remove_router(d, host, vni); return 0;
    case DP_DHCP:   lx_host_dir(d, host, dir, sizeof dir); lx_dhcp_stop(dir, vni); return 0;
    case DP_META:   meta_op(d, host, vni, "del", DP_QUIET, NULL); return 0;
    case DP_SG: case DP_SGVPC: case DP_SGSET: case DP_SGGRP: case DP_SGIF:
        return lx_sg_remove(d, host, u, e);
    default:        return 0;
    }
}

/* dnsmasq drops to nobody after it starts and reads its hosts file then: every directory
 * from / to the state directory must let others through, or guests get "no address
 * available" from DHCP with nothing said anywhere. Said here, once, at open. */
static int traversable(const char *state_dir, verr_t *e)
{
    char path[512];
    snprintf(path, sizeof path, "%s", state_dir);
    for (char *cut; *path; *cut = 0) {
        struct stat st;
        if (stat(path, &st) == 0 && !(st.st_mode & S_IXOTH))
            return verr_set(e, 500, "InvalidParameterValue", "datapath state directory %s: %s has mode %04o and is "
                            "not traversable by others; dnsmasq reads its files there as nobody, so every directory "
                            "on the path must be (chmod o+x, e.g. 0755)", state_dir, path, st.st_mode & 07777);
        if (!(cut = strrchr(path, '/')))
            break;
    }
    return 0;
}

static dp_driver_t *lx_open(const dp_config_t *cfg, verr_t *e)
{
    if (geteuid() != 0) {
        verr_set(e, 500, "InternalError", "the linux datapath needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)");
        return NULL;
    }
    dp_driver_t *d = xcalloc(1, sizeof(lx_driver_t));
    snprintf(d->state_dir, sizeof d->state_dir, "%s", cfg && cfg->state_dir ? cfg->state_dir : "/run/virga/datapath");
    char *p = d->state_dir;
    for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = 0;
        mkdir(p, 0755);
        *s = '/';
    }
    mkdir(p, 0755);
    if (traversable(d->state_dir, e) < 0) {
        free(d);
        return NULL;
    }
    /* One applier per state directory (one per machine in production): a lock on the
     * directory itself, held while the driver is open, released by the kernel when a
     * killed applier dies. Waits at most DP_LOCK_WAIT_S for the holder. */
    int fd = open(d->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int locked = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0;
    for (int i = 0; fd >= 0 && !locked && i < DP_LOCK_WAIT_S * 20; i++) {
        usleep(50000);
        locked = flock(fd, LOCK_EX | LOCK_NB) == 0;
    }
    if (!locked) {
        verr_set(e, 500, "InternalError", "%s: %s", d->state_dir,
                 fd < 0 ? strerror(errno) : "another datapath process holds it");
        if (fd >= 0) close(fd);
        free(d);
        return NULL;
    }
    ((lx_driver_t *)d)->lock_fd = fd;
    return d;
}

static void lx_close(dp_driver_t *d)
{
    lx_discard(d);
    close(((lx_driver_t *)d)->lock_fd);
    free(d);
}

static int lx_hosts(dp_driver_t *d, char ***names, size_t *n, verr_t *e)
{
    (void)e;
    char pfx[64];
    snprintf(pfx, sizeof pfx, "%sh-", d->prefix);
    *names = lx_ns_list(pfx, n);
    return 0;
}

static int lx_teardown_shared(dp_driver_t *d, verr_t *e)
{
    char **left = NULL, ns[128];
    size_t n = 0;
    lx_hosts(d, &left, &n, e);
    for (size_t i = 0; i < n; i++) free(left[i]);
    free(left);
    if (n) return 0;    /* another host still uses them */
    lx_ns_shared(d, "underlay", ns, sizeof ns);
    lx_ns_del(ns);
    lx_ns_shared(d, "outside", ns, sizeof ns);
    lx_ns_del(ns);
    return 0;
}

const dp_ops_t dp_linux_ops = {
    .name = "linux",
    .open = lx_open,
    .close = lx_close,
    .observe = lx_observe,
    .ensure = lx_ensure,
    .remove = lx_remove,
    .commit = lx_commit,
    .discard = lx_discard,
    .teardown_shared = lx_teardown_shared,
    .hosts = lx_hosts,
};
