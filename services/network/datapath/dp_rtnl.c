/* dp_rtnl.c - the `ip` requests of the datapath's applies through rtnetlink (libmnl), in
 * the namespace's own thread, instead of an `ip` process each.
 *
 * Why: a launch's apply ran five `ip` (the new stand-in's namespace, its veth and address
 * from inside, the host end's plug, the router's public address in its namespace and in
 * the outside one) and a terminate's four; perf of the agent and its commands in a launch
 * rate put most of each `ip`'s CPU in its start (loader, page faults) and exit, not in the
 * kernel's work (docs/performance.md, "Agent CPU per launch"). The datapath still writes
 * its requests as `ip` command lines (what VIRGA_DP_TRACE shows and an operator can replay
 * by hand); this file reads the few forms those use, the same requests `ip` sends:
 *
 *   netns add|del NAME                         (the root namespace only; dp_netns.c)
 *   link add NAME [address MAC] [mtu N] type veth peer name NAME [address MAC] [mtu N] [netns NS]
 *   link set NAME [address MAC] [mtu N] [master DEV] [group N] [alias TEXT] [up|down]
 *   link del NAME | link del group N
 *   addr add|replace|del A.B.C.D/LEN dev DEV
 *   route add|replace|del A.B.C.D[/LEN]|default [via A.B.C.D] [dev DEV]
 *
 * A batch with any other line (IPv6, route tables, `tuntap`, `show`...) is not understood
 * as a whole and the caller execs `ip` for it, as before: nothing is half done here. Each
 * line is one request, answered before the next; without -force the first failure ends
 * the batch, as `ip -batch` does, and its message is ip's ("RTNETLINK answers: ..."). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/if_tun.h>
#include <linux/veth.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "dp_inproc.h"
#include "dp_nl.h"

#define MAX_TOKS 48

typedef struct line {
    char *tok[MAX_TOKS];
    int n;
    int no;                  /* line number, for ip's "Command failed -:N" */
} line_t;

typedef struct batch {
    line_t *lines;
    size_t n;
    int force;
    strbuf_t *err;
    int run;                 /* 0: lines only checked */
    int bridge;              /* the lines are `bridge` commands (fdb), not `ip` ones */
    struct mnl_socket *nl;
    unsigned seq, portid;
} batch_t;

/* Words of one line as ip's batch reader splits them: blanks, "quoted" or 'quoted' words. */
static int split(char *s, line_t *l)
{
    l->n = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t') s++;
        if (!*s || *s == '#') break;
        if (l->n == MAX_TOKS) return -1;
        if (*s == '"' || *s == '\'') {
            char q = *s++;
            l->tok[l->n++] = s;
            while (*s && *s != q) s++;
            if (!*s) return -1;
            *s++ = 0;
        } else {
            l->tok[l->n++] = s;
            while (*s && *s != ' ' && *s != '\t') s++;
            if (*s) *s++ = 0;
        }
    }
    return 0;
}

static int is(const char *a, const char *b)
{
    return a && !strcmp(a, b);
}

static int ipv4(const char *s, struct in_addr *a)
{
    return s && inet_pton(AF_INET, s, a) == 1;
}

/* A.B.C.D/LEN (LEN 32 when absent) or "default" (when allowed). */
static int prefix(const char *s, int dflt_ok, struct in_addr *a, int *len)
{
    if (dflt_ok && is(s, "default")) {
        a->s_addr = 0;
        *len = 0;
        return 1;
    }
    char buf[64];
    if (!s || strlen(s) >= sizeof buf) return 0;
    snprintf(buf, sizeof buf, "%s", s);
    char *slash = strchr(buf, '/');
    *len = 32;
    if (slash) {
        char *end;
        *slash = 0;
        long v = strtol(slash + 1, &end, 10);
        if (*end || end == slash + 1 || v < 0 || v > 32) return 0;
        *len = (int)v;
    }
    return ipv4(buf, a);
}

static int mac(const char *s, unsigned char m[6])
{
    return s && sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) == 6 &&
           strlen(s) == 17;
}

static int number(const char *s, unsigned *v)
{
    char *end;
    if (!s || !*s) return 0;
    unsigned long n = strtoul(s, &end, 10);
    if (*end || n > 0xffffffffUL) return 0;
    *v = (unsigned)n;
    return 1;
}

/* ---- the requests; with nl NULL only checked (the whole batch is checked before any
 * request is sent) ---- */

typedef struct link_opts {
    const char *name;
    unsigned char mac[6];
    int has_mac;
    unsigned mtu;
    const char *netns;
} link_opts_t;

/* address/mtu/netns words of a link from *i on; stops at the first other word */
static void link_opts(const line_t *l, int *i, link_opts_t *o)
{
    while (*i + 1 < l->n) {
        if (is(l->tok[*i], "address") && mac(l->tok[*i + 1], o->mac)) o->has_mac = 1;
        else if (is(l->tok[*i], "mtu") && number(l->tok[*i + 1], &o->mtu)) {}
        else if (is(l->tok[*i], "netns")) o->netns = l->tok[*i + 1];
        else return;
        *i += 2;
    }
}

static void put_link_opts(struct nlmsghdr *h, const link_opts_t *o, int ns_fd)
{
    mnl_attr_put_strz(h, IFLA_IFNAME, o->name);
    if (o->has_mac) mnl_attr_put(h, IFLA_ADDRESS, 6, o->mac);
    if (o->mtu) mnl_attr_put_u32(h, IFLA_MTU, o->mtu);
    if (ns_fd >= 0) mnl_attr_put_u32(h, IFLA_NET_NS_FD, (uint32_t)ns_fd);
}

static struct nlmsghdr *start(char *buf, batch_t *b, uint16_t type, uint16_t flags)
{
    struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
    h->nlmsg_type = type;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    h->nlmsg_seq = ++b->seq;
    return h;
}

/* Send h and read its answer: 0, or -1 with errno the kernel's. */
static int ask(batch_t *b, struct nlmsghdr *h)
{
    char buf[MNL_SOCKET_BUFFER_SIZE];
    if (mnl_socket_sendto(b->nl, h, h->nlmsg_len) < 0) return -1;
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(b->nl, buf, sizeof buf);
        if (n < 0) return -1;
        int rc = mnl_cb_run(buf, (size_t)n, h->nlmsg_seq, b->portid, NULL, NULL);
        if (rc <= MNL_CB_STOP) return rc < 0 ? -1 : 0;
    }
}

static int ifindex(batch_t *b, const char *dev, unsigned *idx)
{
    *idx = if_nametoindex(dev);
    if (*idx) return 0;
    strbuf_printf(b->err, "Cannot find device \"%s\"\n", dev);
    return -1;
}

static int open_ns(batch_t *b, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "/run/netns/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) strbuf_printf(b->err, "Cannot open network namespace \"%s\": %s\n", name, strerror(errno));
    return fd;
}

typedef struct vxlan {
    unsigned id, port;
    struct in_addr local;
    const char *dev;
} vxlan_t;

/* the words of `type vxlan` from *i on: id N local A.B.C.D dstport P nolearning dev DEV, each
 * of them (ours always says all; another form is ip's) */
static int vxlan_opts(const line_t *l, int i, vxlan_t *v)
{
    int seen = 0;
    for (; i < l->n; i++) {
        const char *t = l->tok[i], *val = i + 1 < l->n ? l->tok[i + 1] : NULL;
        if (is(t, "nolearning")) {
            seen |= 1;
            continue;
        }
        if (is(t, "id") && number(val, &v->id) && v->id < (1u << 24)) seen |= 2;
        else if (is(t, "local") && ipv4(val, &v->local)) seen |= 4;
        else if (is(t, "dstport") && number(val, &v->port) && v->port < 65536) seen |= 8;
        else if (is(t, "dev") && val && strlen(val) < IFNAMSIZ) {
            v->dev = val;
            seen |= 16;
        } else return -1;
        i++;
    }
    return seen == 31 ? 0 : -1;
}

/* link add NAME [address|mtu] type bridge | type vxlan ... (as ip: VNI, local, port,
 * learning off, the underlay device) */
static int link_add_kind(batch_t *b, const line_t *l, const link_opts_t *me, int i)
{
    vxlan_t vx = {0};
    int bridge = i + 2 == l->n && is(l->tok[i + 1], "bridge");
    if (!bridge && !(is(l->tok[i + 1], "vxlan") && vxlan_opts(l, i + 2, &vx) == 0)) return 1;
    if (me->netns || strlen(me->name) >= IFNAMSIZ) return 1;
    if (!b->run) return 0;
    unsigned lower = 0;
    if (!bridge && ifindex(b, vx.dev, &lower) < 0) return -2;
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = start(buf, b, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    put_link_opts(h, me, -1);
    struct nlattr *info = mnl_attr_nest_start(h, IFLA_LINKINFO);
    mnl_attr_put_strz(h, IFLA_INFO_KIND, bridge ? "bridge" : "vxlan");
    if (!bridge) {
        struct nlattr *data = mnl_attr_nest_start(h, IFLA_INFO_DATA);
        mnl_attr_put_u32(h, IFLA_VXLAN_LINK, lower);
        mnl_attr_put_u32(h, IFLA_VXLAN_ID, vx.id);
        mnl_attr_put(h, IFLA_VXLAN_LOCAL, 4, &vx.local);
        mnl_attr_put_u8(h, IFLA_VXLAN_LEARNING, 0);
        mnl_attr_put_u16(h, IFLA_VXLAN_PORT, htons((uint16_t)vx.port));
        mnl_attr_nest_end(h, data);
    }
    mnl_attr_nest_end(h, info);
    return ask(b, h);
}

/* link add NAME ... type veth peer name NAME ... (or a bridge, a VXLAN: link_add_kind) */
static int link_add(batch_t *b, const line_t *l)
{
    link_opts_t me = {.name = l->tok[2]}, peer = {0};
    int i = 3;
    link_opts(l, &i, &me);
    if (i + 1 < l->n && is(l->tok[i], "type") && !is(l->tok[i + 1], "veth")) return link_add_kind(b, l, &me, i);
    if (me.netns || i + 4 >= l->n || !is(l->tok[i], "type") || !is(l->tok[i + 1], "veth") ||
        !is(l->tok[i + 2], "peer") || !is(l->tok[i + 3], "name"))
        return 1;
    peer.name = l->tok[i + 4];
    i += 5;
    link_opts(l, &i, &peer);
    if (i != l->n || strlen(me.name) >= IFNAMSIZ || strlen(peer.name) >= IFNAMSIZ) return 1;
    if (!b->run) return 0;
    int ns_fd = -1;
    if (peer.netns && (ns_fd = open_ns(b, peer.netns)) < 0) return -1;
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = start(buf, b, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    put_link_opts(h, &me, -1);
    struct nlattr *info = mnl_attr_nest_start(h, IFLA_LINKINFO);
    mnl_attr_put_strz(h, IFLA_INFO_KIND, "veth");
    struct nlattr *data = mnl_attr_nest_start(h, IFLA_INFO_DATA);
    struct nlattr *p = mnl_attr_nest_start(h, VETH_INFO_PEER);
    mnl_nlmsg_put_extra_header(h, sizeof(struct ifinfomsg));   /* the peer's own, zeroed */
    put_link_opts(h, &peer, ns_fd);
    mnl_attr_nest_end(h, p);
    mnl_attr_nest_end(h, data);
    mnl_attr_nest_end(h, info);
    int rc = ask(b, h);
    int saved = errno;
    if (ns_fd >= 0) close(ns_fd);
    errno = saved;
    return rc;
}

/* link set NAME [address MAC] [mtu N] [master DEV] [group N] [alias TEXT] [up|down] */
static int link_set(batch_t *b, const line_t *l)
{
    const char *master = NULL, *alias = NULL;
    unsigned group = 0, mtu = 0, flags = 0, change = 0;
    int has_group = 0, has_mac = 0;
    unsigned char m[6];
    for (int i = 3; i < l->n; i++) {
        const char *t = l->tok[i], *v = i + 1 < l->n ? l->tok[i + 1] : NULL;
        if (is(t, "up") || is(t, "down")) {
            change |= IFF_UP;
            flags = is(t, "up") ? IFF_UP : 0;
            continue;
        }
        if (!v) return 1;
        if (is(t, "master")) master = v;
        else if (is(t, "alias")) alias = v;
        else if (is(t, "group") && number(v, &group)) has_group = 1;
        else if (is(t, "mtu") && number(v, &mtu)) {}
        else if (is(t, "address") && mac(v, m)) has_mac = 1;
        else return 1;
        i++;
    }
    if (l->n < 3 || strlen(l->tok[2]) >= IFNAMSIZ) return 1;
    if (!b->run) return 0;
    unsigned idx, midx = 0;
    if (ifindex(b, l->tok[2], &idx) < 0 || (master && ifindex(b, master, &midx) < 0)) return -2;
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = start(buf, b, RTM_NEWLINK, 0);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = (int)idx;
    ifi->ifi_flags = flags;
    ifi->ifi_change = change;
    if (has_mac) mnl_attr_put(h, IFLA_ADDRESS, 6, m);
    if (mtu) mnl_attr_put_u32(h, IFLA_MTU, mtu);
    if (master) mnl_attr_put_u32(h, IFLA_MASTER, midx);
    if (has_group) mnl_attr_put_u32(h, IFLA_GROUP, group);
    if (alias) mnl_attr_put(h, IFLA_IFALIAS, strlen(alias), alias);
    return ask(b, h);
}

/* link show NAME: whether it exists (a probe: its text is ip's business, so a caller that
 * wants the output is exec'd, dp_exec.c) */
static int link_show(batch_t *b, const line_t *l)
{
    if (l->n != 3 || strlen(l->tok[2]) >= IFNAMSIZ) return 1;
    if (!b->run) return 0;
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = start(buf, b, RTM_GETLINK, 0);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(h, IFLA_IFNAME, l->tok[2]);
    mnl_attr_put_u32(h, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    if (ask(b, h) == 0) return 0;
    if (errno != ENODEV) return -1;
    strbuf_printf(b->err, "Device \"%s\" does not exist.\n", l->tok[2]);
    return -2;
}

/* bridge fdb append|replace|del MAC dev DEV [dst A.B.C.D] [master|self] [static] [sticky]:
 * as bridge(8) sends it (NTF_SELF unless master; static is NOARP|REACHABLE, else
 * NOARP|PERMANENT) */
static int fdb(batch_t *b, const line_t *l)
{
    const char *op = l->tok[1], *dev = NULL;
    unsigned char m[6];
    struct in_addr dst;
    int has_dst = 0;
    unsigned char flags = 0;
    uint16_t state = NUD_NOARP;
    if (l->n < 5 || !(is(op, "append") || is(op, "replace") || is(op, "del")) || !mac(l->tok[2], m)) return 1;
    for (int i = 3; i < l->n; i++) {
        const char *t = l->tok[i], *v = i + 1 < l->n ? l->tok[i + 1] : NULL;
        if (is(t, "master")) flags |= NTF_MASTER;
        else if (is(t, "self")) flags |= NTF_SELF;
        else if (is(t, "static")) state |= NUD_REACHABLE;
        else if (is(t, "sticky")) flags |= NTF_STICKY;
        else if (is(t, "dev") && v && strlen(v) < IFNAMSIZ) {
            dev = v;
            i++;
        } else if (is(t, "dst") && ipv4(v, &dst)) {
            has_dst = 1;
            i++;
        } else return 1;
    }
    if (!dev) return 1;
    if (!b->run) return 0;
    if (!(flags & (NTF_SELF | NTF_MASTER))) flags |= NTF_SELF;
    if (!(state & NUD_REACHABLE)) state |= NUD_PERMANENT;
    unsigned idx;
    if (ifindex(b, dev, &idx) < 0) return -2;
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = start(buf, b, is(op, "del") ? RTM_DELNEIGH : RTM_NEWNEIGH,
                               is(op, "append") ? NLM_F_CREATE | NLM_F_APPEND
                               : is(op, "replace") ? NLM_F_CREATE | NLM_F_REPLACE : 0);
    struct ndmsg *nd = mnl_nlmsg_put_extra_header(h, sizeof *nd);
    nd->ndm_family = AF_BRIDGE;
    nd->ndm_ifindex = (int)idx;
    nd->ndm_state = state;
    nd->ndm_flags = flags;
    mnl_attr_put(h, NDA_LLADDR, 6, m);
    if (has_dst) mnl_attr_put(h, NDA_DST, 4, &dst);
    return ask(b, h);
}

/* tuntap add dev NAME mode tap: a persistent tap as ip makes it (no packet information,
 * no vnet header: QEMU asks for its own when it opens it), in this thread's namespace,
 * where /dev/net/tun makes its device */
static int tuntap_add(batch_t *b, const line_t *l)
{
    if (l->n != 6 || !is(l->tok[1], "add") || !is(l->tok[2], "dev") || strlen(l->tok[3]) >= IFNAMSIZ ||
        !is(l->tok[4], "mode") || !is(l->tok[5], "tap"))
        return 1;
    if (!b->run) return 0;
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", l->tok[3]);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        strbuf_printf(b->err, "open: %s\n", strerror(errno));
        return -2;
    }
    const char *step = ioctl(fd, TUNSETIFF, &ifr) < 0 ? "TUNSETIFF" : ioctl(fd, TUNSETPERSIST, 1) < 0 ? "TUNSETPERSIST" : NULL;
    if (step) strbuf_printf(b->err, "ioctl(%s): %s\n", step, strerror(errno));
    close(fd);
    return step ? -2 : 0;
}

/* link del NAME | link del group N */
static int link_del(batch_t *b, const line_t *l)
{
    unsigned group = 0;
    int by_group = l->n == 4 && is(l->tok[2], "group");
    if (by_group ? !number(l->tok[3], &group) : l->n != 3 || strlen(l->tok[2]) >= IFNAMSIZ) return 1;
    if (!b->run) return 0;
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = start(buf, b, RTM_DELLINK, 0);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    if (by_group) {
        mnl_attr_put_u32(h, IFLA_GROUP, group);
    } else {
        unsigned idx;
        if (ifindex(b, l->tok[2], &idx) < 0) return -2;
        ifi->ifi_index = (int)idx;
    }
    return ask(b, h);
}

static uint16_t op_flags(const char *op)
{
    return is(op, "replace") ? NLM_F_CREATE | NLM_F_REPLACE : is(op, "add") ? NLM_F_CREATE | NLM_F_EXCL : 0;
}

/* addr add|replace|del A.B.C.D/LEN dev DEV */
static int addr(batch_t *b, const line_t *l)
{
    const char *op = l->tok[1];
    struct in_addr a;
    int len;
    if (l->n != 5 || !(is(op, "add") || is(op, "replace") || is(op, "del")) || !prefix(l->tok[2], 0, &a, &len) ||
        !is(l->tok[3], "dev"))
        return 1;
    if (!b->run) return 0;
    unsigned idx;
    if (ifindex(b, l->tok[4], &idx) < 0) return -2;
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = start(buf, b, is(op, "del") ? RTM_DELADDR : RTM_NEWADDR, op_flags(op));
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(h, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (unsigned char)len;
    ifa->ifa_index = idx;
    /* ip's default scope: host for 127/8, else global */
    if (!is(op, "del") && (ntohl(a.s_addr) >> 24) == 127) ifa->ifa_scope = RT_SCOPE_HOST;
    mnl_attr_put(h, IFA_LOCAL, 4, &a);
    mnl_attr_put(h, IFA_ADDRESS, 4, &a);
    return ask(b, h);
}

/* route add|replace|del PREFIX|default [via A.B.C.D] [dev DEV] [onlink] [table N] */
static int route(batch_t *b, const line_t *l)
{
    const char *op = l->tok[1], *dev = NULL;
    struct in_addr dst, gw;
    int len, has_gw = 0, onlink = 0;
    unsigned table = RT_TABLE_MAIN;
    if (l->n < 3 || !(is(op, "add") || is(op, "replace") || is(op, "del")) || !prefix(l->tok[2], 1, &dst, &len))
        return 1;
    for (int i = 3; i < l->n; i += 2) {
        if (is(l->tok[i], "onlink")) {
            onlink = 1;
            i--;
            continue;
        }
        if (i + 1 >= l->n) return 1;
        if (is(l->tok[i], "via") && ipv4(l->tok[i + 1], &gw)) has_gw = 1;
        else if (is(l->tok[i], "dev")) dev = l->tok[i + 1];
        else if (is(l->tok[i], "table") && number(l->tok[i + 1], &table) && table) {}
        else return 1;
    }
    if (!b->run) return 0;
    unsigned idx = 0;
    if (dev && ifindex(b, dev, &idx) < 0) return -2;
    int del = is(op, "del");
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = start(buf, b, del ? RTM_DELROUTE : RTM_NEWROUTE, op_flags(op));
    struct rtmsg *rt = mnl_nlmsg_put_extra_header(h, sizeof *rt);
    rt->rtm_family = AF_INET;
    rt->rtm_dst_len = (unsigned char)len;
    /* as ip: a table past 255 goes in its own attribute */
    rt->rtm_table = table < 256 ? (unsigned char)table : RT_TABLE_UNSPEC;
    /* as ip: a route of ours is "boot"; one without a gateway is on the link */
    rt->rtm_scope = del ? RT_SCOPE_NOWHERE : has_gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    if (!del) {
        rt->rtm_protocol = RTPROT_BOOT;
        rt->rtm_type = RTN_UNICAST;
    }
    if (onlink) rt->rtm_flags |= RTNH_F_ONLINK;
    if (len) mnl_attr_put(h, RTA_DST, 4, &dst);
    if (has_gw) mnl_attr_put(h, RTA_GATEWAY, 4, &gw);
    if (table >= 256) mnl_attr_put_u32(h, RTA_TABLE, table);
    if (dev) mnl_attr_put_u32(h, RTA_OIF, idx);
    return ask(b, h);
}

/* ---- flushes: a dump, then each entry it matched sent back as a delete, as ip does ---- */

typedef struct dumped {
    struct nlmsghdr **v;
    size_t n;
    int (*match)(const struct nlmsghdr *h, const void *want);
    const void *want;
} dumped_t;

static int keep_match(const struct nlmsghdr *h, void *data)
{
    dumped_t *d = data;
    if (!d->match(h, d->want)) return MNL_CB_OK;
    d->v = xrealloc(d->v, (d->n + 1) * sizeof *d->v);
    d->v[d->n] = xmalloc(h->nlmsg_len);
    memcpy(d->v[d->n++], h, h->nlmsg_len);
    return MNL_CB_OK;
}

/* Dump with request h, delete (type del) every entry match() picks; errors of the deletes
 * are ignored (an entry gone meanwhile, a secondary address gone with its primary). 0, or
 * -1 when the dump itself failed. */
static int flush(batch_t *b, struct nlmsghdr *h, uint16_t del, int (*match)(const struct nlmsghdr *, const void *),
                 const void *want)
{
    dumped_t d = {NULL, 0, match, want};
    int rc = dp_nl_dump(b->nl, h, keep_match, &d);
    int saved = errno;
    for (size_t i = 0; i < d.n; i++) {
        struct nlmsghdr *m = d.v[i];
        if (rc == 0) {
            m->nlmsg_type = del;
            m->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
            m->nlmsg_seq = ++b->seq;
            m->nlmsg_pid = 0;
            ask(b, m);
        }
        free(m);
    }
    free(d.v);
    errno = saved;
    return rc < 0 ? -1 : 0;
}

static struct nlmsghdr *dump_start(char *buf, batch_t *b, uint16_t type)
{
    struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
    h->nlmsg_type = type;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    h->nlmsg_seq = ++b->seq;
    return h;
}

static int addr_of_dev(const struct nlmsghdr *h, const void *want)
{
    const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(h);
    return h->nlmsg_type == RTM_NEWADDR && ifa->ifa_index == *(const unsigned *)want;
}

typedef struct route_want {
    unsigned table, oif;     /* oif 0: any */
} route_want_t;

static int route_of(const struct nlmsghdr *h, const void *want)
{
    const route_want_t *w = want;
    const struct rtmsg *rt = mnl_nlmsg_get_payload(h);
    if (h->nlmsg_type != RTM_NEWROUTE || rt->rtm_family != AF_INET || (rt->rtm_flags & RTM_F_CLONED)) return 0;
    unsigned table = rt->rtm_table, oif = 0;
    struct nlattr *a;
    mnl_attr_for_each(a, h, sizeof *rt) {
        if (mnl_attr_get_type(a) == RTA_TABLE) table = mnl_attr_get_u32(a);
        else if (mnl_attr_get_type(a) == RTA_OIF) oif = mnl_attr_get_u32(a);
    }
    return table == w->table && (!w->oif || oif == w->oif);
}

static int permanent_neigh_of_dev(const struct nlmsghdr *h, const void *want)
{
    const struct ndmsg *nd = mnl_nlmsg_get_payload(h);
    return h->nlmsg_type == RTM_NEWNEIGH && (unsigned)nd->ndm_ifindex == *(const unsigned *)want &&
           (nd->ndm_state & NUD_PERMANENT);
}

/* addr flush dev DEV (every family, as ip) */
static int addr_flush(batch_t *b, const line_t *l)
{
    if (l->n != 4 || !is(l->tok[2], "dev")) return 1;
    if (!b->run) return 0;
    unsigned idx;
    if (ifindex(b, l->tok[3], &idx) < 0) return -2;
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = dump_start(buf, b, RTM_GETADDR);
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(h, sizeof *ifa);
    ifa->ifa_family = AF_UNSPEC;
    return flush(b, h, RTM_DELADDR, addr_of_dev, &idx);
}

/* route flush dev DEV (the main table) | route flush table N: IPv4, as ip's default */
static int route_flush(batch_t *b, const line_t *l)
{
    route_want_t w = {RT_TABLE_MAIN, 0};
    if (l->n != 4 || !(is(l->tok[2], "dev") || (is(l->tok[2], "table") && number(l->tok[3], &w.table) && w.table)))
        return 1;
    if (!b->run) return 0;
    if (is(l->tok[2], "dev") && ifindex(b, l->tok[3], &w.oif) < 0) return -2;
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = dump_start(buf, b, RTM_GETROUTE);
    struct rtmsg *rt = mnl_nlmsg_put_extra_header(h, sizeof *rt);
    rt->rtm_family = AF_INET;
    return flush(b, h, RTM_DELROUTE, route_of, &w);
}

/* neigh flush dev DEV nud permanent | neigh replace A.B.C.D lladdr MAC dev DEV nud permanent */
static int neigh(batch_t *b, const line_t *l)
{
    struct in_addr a;
    unsigned char m[6];
    int fl = l->n == 6 && is(l->tok[1], "flush") && is(l->tok[2], "dev") && is(l->tok[4], "nud") &&
             is(l->tok[5], "permanent");
    int rep = l->n == 9 && is(l->tok[1], "replace") && ipv4(l->tok[2], &a) && is(l->tok[3], "lladdr") &&
              mac(l->tok[4], m) && is(l->tok[5], "dev") && is(l->tok[7], "nud") && is(l->tok[8], "permanent");
    if (!fl && !rep) return 1;
    if (!b->run) return 0;
    unsigned idx;
    if (ifindex(b, l->tok[fl ? 3 : 6], &idx) < 0) return -2;
    char buf[MNL_SOCKET_BUFFER_SIZE];
    if (fl) {
        struct nlmsghdr *h = dump_start(buf, b, RTM_GETNEIGH);
        struct ndmsg *nd = mnl_nlmsg_put_extra_header(h, sizeof *nd);
        nd->ndm_family = AF_UNSPEC;
        mnl_attr_put_u32(h, NDA_IFINDEX, idx);
        return flush(b, h, RTM_DELNEIGH, permanent_neigh_of_dev, &idx);
    }
    struct nlmsghdr *h = start(buf, b, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
    struct ndmsg *nd = mnl_nlmsg_put_extra_header(h, sizeof *nd);
    nd->ndm_family = AF_INET;
    nd->ndm_ifindex = (int)idx;
    nd->ndm_state = NUD_PERMANENT;
    mnl_attr_put(h, NDA_DST, 4, &a);
    mnl_attr_put(h, NDA_LLADDR, 6, m);
    return ask(b, h);
}

/* rule add priority P from A.B.C.D/LEN lookup T | rule del priority P */
static int rule(batch_t *b, const line_t *l)
{
    unsigned prio, table = 0;
    struct in_addr src;
    int len = 0;
    int add = l->n == 8 && is(l->tok[1], "add") && is(l->tok[2], "priority") && number(l->tok[3], &prio) &&
              is(l->tok[4], "from") && prefix(l->tok[5], 0, &src, &len) && is(l->tok[6], "lookup") &&
              number(l->tok[7], &table) && table;
    int del = l->n == 4 && is(l->tok[1], "del") && is(l->tok[2], "priority") && number(l->tok[3], &prio);
    if (!add && !del) return 1;
    if (!b->run) return 0;
    char buf[MNL_SOCKET_BUFFER_SIZE];
    struct nlmsghdr *h = start(buf, b, add ? RTM_NEWRULE : RTM_DELRULE, add ? NLM_F_CREATE | NLM_F_EXCL : 0);
    struct fib_rule_hdr *fr = mnl_nlmsg_put_extra_header(h, sizeof *fr);
    fr->family = AF_INET;
    fr->table = RT_TABLE_UNSPEC;
    mnl_attr_put_u32(h, FRA_PRIORITY, prio);
    if (add) {
        fr->action = FR_ACT_TO_TBL;
        fr->src_len = (unsigned char)len;
        if (len) mnl_attr_put(h, FRA_SRC, 4, &src);
        if (table < 256) fr->table = (unsigned char)table;
        mnl_attr_put_u32(h, FRA_TABLE, table);
    }
    return ask(b, h);
}

/* netns add|del NAME: root only */
static int netns_line(batch_t *b, const line_t *l, int in_root)
{
    if (!in_root || l->n != 3 || !(is(l->tok[1], "add") || is(l->tok[1], "del")) || strchr(l->tok[2], '/') ||
        l->tok[2][0] == '.')
        return 1;
    if (!b->run) return 0;
    return (is(l->tok[1], "add") ? dp_netns_add(l->tok[2], b->err) : dp_netns_del(l->tok[2], b->err)) < 0 ? -2 : 0;
}

/* One line: 1 not understood, 0 done, -1 the kernel said no (errno), -2 failed and said why. */
static int run_line(batch_t *b, const line_t *l, int in_root)
{
    if (l->n < 2) return l->n == 0 ? 0 : 1;
    const char *obj = l->tok[0], *op = l->tok[1];
    if (b->bridge) return is(obj, "fdb") ? fdb(b, l) : 1;
    if (is(obj, "netns")) return netns_line(b, l, in_root);
    if (is(obj, "link") && is(op, "add") && l->n > 2) return link_add(b, l);
    if (is(obj, "link") && is(op, "set")) return link_set(b, l);
    if (is(obj, "link") && is(op, "del") && l->n > 2) return link_del(b, l);
    if (is(obj, "link") && is(op, "show")) return link_show(b, l);
    if ((is(obj, "addr") || is(obj, "address")) && is(op, "flush")) return addr_flush(b, l);
    if (is(obj, "addr") || is(obj, "address")) return addr(b, l);
    if (is(obj, "route") && is(op, "flush")) return route_flush(b, l);
    if (is(obj, "route")) return route(b, l);
    if (is(obj, "neigh")) return neigh(b, l);
    if (is(obj, "tuntap")) return tuntap_add(b, l);
    if (is(obj, "rule")) return rule(b, l);
    return 1;
}

typedef struct run_args {
    batch_t *b;
    int in_root;
} run_args_t;

static int run_batch(void *p)
{
    run_args_t *a = p;
    batch_t *b = a->b;
    int any_netlink = 0;
    for (size_t i = 0; i < b->n; i++) any_netlink |= !is(b->lines[i].tok[0], "netns");
    if (any_netlink) {
        if (!(b->nl = dp_nl_open(b->err))) return -1;
        b->portid = mnl_socket_get_portid(b->nl);
        b->seq = (unsigned)time(NULL);
    }
    b->run = 1;
    int failed = 0;
    for (size_t i = 0; i < b->n; i++) {
        int rc = run_line(b, &b->lines[i], a->in_root);
        if (rc == 0) continue;
        if (rc == -1) strbuf_printf(b->err, "RTNETLINK answers: %s\n", strerror(errno));
        strbuf_printf(b->err, "Command failed -:%d\n", b->lines[i].no);
        failed = 1;
        if (!b->force) break;
    }
    if (b->nl) mnl_socket_close(b->nl);
    b->nl = NULL;
    return failed ? -1 : 0;
}

/* An `ip` (bridge 0) or `bridge` (bridge 1) command line run in-process: see dp_inproc.h. */
static int inproc(const char *netns, const char *const argv[], const char *input, int bridge, strbuf_t *err)
{
    int force = 0, i = 1;
    if (!bridge && is(argv[i], "-force")) {
        force = 1;
        i++;
    }
    char *text;
    if (!bridge && is(argv[i], "-batch")) {
        if (!is(argv[i + 1], "-") || argv[i + 2] || !input) return 1;
        text = xstrdup(input);
    } else {
        /* one command: its words joined as a line, one with blanks (an alias) quoted */
        strbuf_t s = {0};
        strbuf_puts(&s, "");
        for (; argv[i]; i++) {
            if (argv[i][0] == '-' || !argv[i][0] || strpbrk(argv[i], "\t\n\"'#")) {
                free(s.s);
                return 1;
            }
            const char *q = strchr(argv[i], ' ') ? "\"" : "";
            strbuf_printf(&s, "%s%s%s%s", s.len ? " " : "", q, argv[i], q);
        }
        text = s.s;
    }
    batch_t b = {.force = force, .err = err, .bridge = bridge};
    int no = 0, rc = 0;
    for (char *ln = text, *next; ln && *ln; ln = next) {
        if ((next = strchr(ln, '\n'))) *next++ = 0;
        no++;
        line_t l = {.no = no};
        if (split(ln, &l) < 0 || run_line(&b, &l, netns == NULL) != 0) {   /* checked only: b.run is 0 */
            rc = 1;
            break;
        }
        if (!l.n) continue;
        b.lines = xrealloc(b.lines, (b.n + 1) * sizeof *b.lines);
        b.lines[b.n++] = l;
    }
    if (rc == 0 && b.n) {
        run_args_t a = {&b, netns == NULL};
        char why[600] = "";
        rc = dp_in_netns(netns, run_batch, &a, why, sizeof why);
        if (why[0]) strbuf_printf(err, "%s\n", why);
        rc = rc < 0 ? -1 : 0;
    }
    free(b.lines);
    free(text);
    return rc;
}

int dp_ip_inproc(const char *netns, const char *const argv[], const char *input, strbuf_t *err)
{
    return inproc(netns, argv, input, 0, err);
}

int dp_bridge_inproc(const char *netns, const char *const argv[], strbuf_t *err)
{
    return inproc(netns, argv, NULL, 1, err);
}
