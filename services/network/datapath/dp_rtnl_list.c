/* dp_rtnl_list.c - observe's listings (linux_observe.c) through rtnetlink dumps, in the
 * namespace's own thread, instead of an `ip -j` or `bridge -j` process each.
 *
 * Why: after the applies went in-process (dp_rtnl.c), the observation that follows a
 * host's or a VPC's build, the agent's start and every agent.datapath_resync_s still
 * exec'd one `ip -j -d link show` a host, one `bridge -j fdb show dev vx-<vni>` a VPC and
 * one `ip -j addr show dev lo` a router (docs/performance.md, "The datapath's other
 * applies in-process", "The agent's CPU per launch, second pass"). The forms read here,
 * and the JSON they answer with (only the fields observe reads, named as ip and bridge
 * name them, so the caller parses either the same way):
 *
 *   ip -j -d link show           [{"ifname", "ifalias"?, "master"?, "linkinfo"?: {"info_kind"}}...]
 *   bridge -j fdb show dev DEV   [{"mac", "dst"?}...]              (DEV's own entries)
 *   ip -j addr show dev DEV      [{"ifname", "addr_info": [{"local", "prefixlen"}...]}]  (IPv4)
 *
 * Any other listing is exec'd as before (dp_exec.c), and VIRGA_DP_EXEC=1 execs all. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>

#include "dp_inproc.h"
#include "dp_nl.h"
#include "jsonutil.h"


enum list_kind { LIST_LINKS, LIST_FDB, LIST_ADDRS };

typedef struct listing {
    enum list_kind kind;
    const char *dev;        /* FDB, ADDRS: the device */
    json_t *out;            /* the array answered */
    strbuf_t *err;
    /* links: index -> name, for "master" (a second pass over what the dump kept) */
    struct link_row {
        unsigned index, master;
        json_t *o;
    } *links;
    size_t n_links;
    unsigned dev_index;
} listing_t;

static int is(const char *a, const char *b)
{
    return a && !strcmp(a, b);
}

/* The forms above, from argv (with the program's name); 0 when not one of them. */
static int parse(const char *const argv[], listing_t *l)
{
    if (is(argv[0], "ip") && is(argv[1], "-j") && is(argv[2], "-d") && is(argv[3], "link") && is(argv[4], "show") &&
        !argv[5]) {
        l->kind = LIST_LINKS;
        return 1;
    }
    if (is(argv[0], "bridge") && is(argv[1], "-j") && is(argv[2], "fdb") && is(argv[3], "show") &&
        is(argv[4], "dev") && argv[5] && !argv[6]) {
        l->kind = LIST_FDB;
        l->dev = argv[5];
        return 1;
    }
    if (is(argv[0], "ip") && is(argv[1], "-j") && is(argv[2], "addr") && is(argv[3], "show") && is(argv[4], "dev") &&
        argv[5] && !argv[6]) {
        l->kind = LIST_ADDRS;
        l->dev = argv[5];
        return 1;
    }
    return 0;
}

static int link_attr(const struct nlattr *a, void *data)
{
    const struct nlattr **tb = data;
    int type = mnl_attr_get_type(a);
    if (type <= IFLA_MAX) tb[type] = a;
    return MNL_CB_OK;
}

static int one_link(const struct nlmsghdr *h, void *data)
{
    listing_t *l = data;
    if (h->nlmsg_type != RTM_NEWLINK) return MNL_CB_OK;
    const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(h);
    const struct nlattr *tb[IFLA_MAX + 1] = {0};
    mnl_attr_parse(h, sizeof *ifi, link_attr, tb);
    if (!tb[IFLA_IFNAME]) return MNL_CB_OK;
    json_t *o = json_pack("{s:s}", "ifname", mnl_attr_get_str(tb[IFLA_IFNAME]));
    if (tb[IFLA_IFALIAS] && mnl_attr_get_payload_len(tb[IFLA_IFALIAS]) > 0)
        json_object_set_new(o, "ifalias", json_string(mnl_attr_get_str(tb[IFLA_IFALIAS])));
    if (tb[IFLA_LINKINFO]) {
        const struct nlattr *info[IFLA_INFO_MAX + 1] = {0}, *a;
        mnl_attr_for_each_nested(a, tb[IFLA_LINKINFO])
            if (mnl_attr_get_type(a) <= IFLA_INFO_MAX) info[mnl_attr_get_type(a)] = a;
        if (info[IFLA_INFO_KIND])
            json_object_set_new(o, "linkinfo", json_pack("{s:s}", "info_kind", mnl_attr_get_str(info[IFLA_INFO_KIND])));
    }
    l->links = xrealloc(l->links, (l->n_links + 1) * sizeof *l->links);
    l->links[l->n_links++] = (struct link_row){(unsigned)ifi->ifi_index,
                                               tb[IFLA_MASTER] ? mnl_attr_get_u32(tb[IFLA_MASTER]) : 0, o};
    return MNL_CB_OK;
}

static int one_fdb(const struct nlmsghdr *h, void *data)
{
    listing_t *l = data;
    if (h->nlmsg_type != RTM_NEWNEIGH) return MNL_CB_OK;
    const struct ndmsg *nd = mnl_nlmsg_get_payload(h);
    if ((unsigned)nd->ndm_ifindex != l->dev_index) return MNL_CB_OK;
    const struct nlattr *a;
    const unsigned char *mac = NULL;
    char dst[INET6_ADDRSTRLEN] = "";
    mnl_attr_for_each(a, h, sizeof *nd) {
        int type = mnl_attr_get_type(a);
        size_t len = mnl_attr_get_payload_len(a);
        if (type == NDA_LLADDR && len == 6) mac = mnl_attr_get_payload(a);
        else if (type == NDA_DST && (len == 4 || len == 16))
            inet_ntop(len == 4 ? AF_INET : AF_INET6, mnl_attr_get_payload(a), dst, sizeof dst);
    }
    if (!mac) return MNL_CB_OK;
    char m[18];
    snprintf(m, sizeof m, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    json_t *o = json_pack("{s:s}", "mac", m);
    if (dst[0]) json_object_set_new(o, "dst", json_string(dst));
    json_array_append_new(l->out, o);
    return MNL_CB_OK;
}

static int one_addr(const struct nlmsghdr *h, void *data)
{
    listing_t *l = data;
    if (h->nlmsg_type != RTM_NEWADDR) return MNL_CB_OK;
    const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(h);
    if (ifa->ifa_index != l->dev_index || ifa->ifa_family != AF_INET) return MNL_CB_OK;
    const struct nlattr *a, *local = NULL, *address = NULL;
    mnl_attr_for_each(a, h, sizeof *ifa) {
        if (mnl_attr_get_payload_len(a) != 4) continue;
        if (mnl_attr_get_type(a) == IFA_LOCAL) local = a;
        else if (mnl_attr_get_type(a) == IFA_ADDRESS) address = a;
    }
    if (!local) local = address;   /* as ip: the local address, else the address */
    if (!local) return MNL_CB_OK;
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, mnl_attr_get_payload(local), ip, sizeof ip);
    json_t *info = json_object_get(json_array_get(l->out, 0), "addr_info");
    json_array_append_new(info, json_pack("{s:s, s:i}", "local", ip, "prefixlen", (int)ifa->ifa_prefixlen));
    return MNL_CB_OK;
}

/* On the namespace's thread: the dump, into l->out; 0, or -1 with l->err set as the tool
 * would have said it. */
static int dump(void *p)
{
    listing_t *l = p;
    if (l->dev) {
        l->dev_index = if_nametoindex(l->dev);
        if (!l->dev_index) {
            strbuf_printf(l->err, "Cannot find device \"%s\"\n", l->dev);
            return -1;
        }
    }
    struct mnl_socket *nl = dp_nl_open(l->err);
    if (!nl) return -1;
    char buf[MNL_SOCKET_BUFFER_SIZE];    /* the request only */
    struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    h->nlmsg_seq = (unsigned)time(NULL);
    mnl_cb_t cb;
    if (l->kind == LIST_LINKS) {
        h->nlmsg_type = RTM_GETLINK;
        struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(h, sizeof *ifi);
        ifi->ifi_family = AF_UNSPEC;
        cb = one_link;
    } else if (l->kind == LIST_FDB) {
        h->nlmsg_type = RTM_GETNEIGH;
        struct ndmsg *nd = mnl_nlmsg_put_extra_header(h, sizeof *nd);
        nd->ndm_family = PF_BRIDGE;
        cb = one_fdb;
    } else {
        h->nlmsg_type = RTM_GETADDR;
        struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(h, sizeof *ifa);
        ifa->ifa_family = AF_INET;
        json_array_append_new(l->out, json_pack("{s:s, s:[]}", "ifname", l->dev, "addr_info"));
        cb = one_addr;
    }
    int rc = dp_nl_dump(nl, h, cb, l);
    if (rc < 0) strbuf_printf(l->err, "Dump terminated: %s\n", strerror(errno));
    mnl_socket_close(nl);
    return rc < 0 ? -1 : 0;
}

int dp_list_inproc(const char *netns, const char *const argv[], strbuf_t *out, strbuf_t *err)
{
    listing_t l = {.err = err};
    if (!parse(argv, &l)) return 1;
    l.out = json_array();
    char why[600] = "";
    int rc = dp_in_netns(netns, dump, &l, why, sizeof why);
    if (why[0]) strbuf_printf(err, "%s\n", why);
    /* links in the order the kernel gave them, each with its master's name */
    for (size_t i = 0; i < l.n_links; i++) {
        for (size_t k = 0; k < l.n_links && l.links[i].master; k++)
            if (l.links[k].index == l.links[i].master) {
                json_object_set(l.links[i].o, "master", json_object_get(l.links[k].o, "ifname"));
                break;
            }
        json_array_append_new(l.out, l.links[i].o);
    }
    free(l.links);
    if (rc == 0) json_compact_put(out, l.out);
    json_decref(l.out);
    return rc < 0 ? -1 : 0;
}
