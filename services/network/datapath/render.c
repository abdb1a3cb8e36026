/* render.c - configuration texts from a desired document: the host's security group
 * rules, a VPC's NAT and its dnsmasq configuration. Pure functions, unit-tested as text.
 *
 * Security groups. The kernel here has no bridge-family conntrack, so filtering is split
 * in two tables replaced in one nftables transaction: a bridge table marks each frame with
 * the interfaces it comes from and goes to (low 16 bits: source interface, high: target),
 * and an inet table, reached through br_netfilter (on by default in each namespace we
 * create, never touched in the root namespace), jumps per mark into that interface's
 * chains where conntrack keeps the rules stateful. Out chains `return` what they allow so
 * the target's in chain is still consulted for traffic between two local interfaces.
 * Replacing the tables does not touch conntrack, so established connections survive
 * every rule change. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datapath.h"
#include "strbuf.h"

#define SG_TABLE  "virga_sg"
#define NAT_TABLE "virga_nat"
/* The fingerprint sits in an empty chain's comment: observe() lists that chain alone,
 * which stays small however many rules the table holds. */
#define FP_CHAIN  "  chain fp {\n    comment \"%s\"\n  }\n"

/* nftables identifiers take no '-': sg-0aa1 -> g_sg_0aa1 */
static void set_name(char *out, size_t n, const char *group_id)
{
    snprintf(out, n, "g_%s", group_id);
    for (char *p = out; *p; p++)
        if (*p == '-') *p = '_';
}

static const dp_members_t *members_of(const dp_desired_t *d, const char *gid)
{
    for (size_t i = 0; i < d->n_members; i++)
        if (!strcmp(d->members[i].group_id, gid)) return &d->members[i];
    return NULL;
}

static const dp_group_t *group_of(const dp_desired_t *d, const char *gid)
{
    for (size_t i = 0; i < d->n_groups; i++)
        if (!strcmp(d->groups[i].group_id, gid)) return &d->groups[i];
    return NULL;
}

/* The protocol and port part of one rule ("" for all traffic). */
static void proto_match(const dp_rule_t *r, char *out, size_t n)
{
    int any = r->from_port < 0 || (r->from_port == 0 && r->to_port == 65535);
    if (!strcmp(r->protocol, "-1")) {
        snprintf(out, n, "meta nfproto ipv4");
    } else if (!strcmp(r->protocol, "icmp")) {
        if (r->from_port < 0) snprintf(out, n, "meta l4proto icmp");
        else if (r->to_port < 0) snprintf(out, n, "icmp type %d", r->from_port);
        else snprintf(out, n, "icmp type %d icmp code %d", r->from_port, r->to_port);
    } else if (any) {
        snprintf(out, n, "meta l4proto %s", r->protocol);
    } else if (r->from_port == r->to_port) {
        snprintf(out, n, "%s dport %d", r->protocol, r->from_port);
    } else {
        snprintf(out, n, "%s dport %d-%d", r->protocol, r->from_port, r->to_port);
    }
}

/* Every rule of every group of one interface, in one direction. */
static void iface_rules(strbuf_t *b, const dp_desired_t *d, const dp_iface_t *f, int ingress)
{
    const char *dir = ingress ? "saddr" : "daddr";
    const char *verdict = ingress ? "accept" : "return";
    for (size_t g = 0; g < f->n_groups; g++) {
        const dp_group_t *grp = group_of(d, f->groups[g]);
        if (!grp) continue;   /* an unknown group grants nothing */
        const dp_rule_t *rules = ingress ? grp->ingress : grp->egress;
        size_t n = ingress ? grp->n_ingress : grp->n_egress;
        for (size_t i = 0; i < n; i++) {
            char pm[96], sn[DP_NAME_MAX + 4];
            proto_match(&rules[i], pm, sizeof pm);
            for (size_t c = 0; c < rules[i].n_cidrs; c++)
                strbuf_printf(b, "    ip %s %s %s %s\n", dir, rules[i].cidrs[c], pm, verdict);
            for (size_t c = 0; c < rules[i].n_groups; c++) {
                set_name(sn, sizeof sn, rules[i].groups[c]);
                strbuf_printf(b, "    ip %s @%s %s %s\n", dir, sn, pm, verdict);
            }
        }
    }
}

/* Every group referenced by a rule of an interface of this host, once. */
static void group_sets(strbuf_t *b, const dp_desired_t *d)
{
    strbuf_t seen = {0};
    strbuf_puts(&seen, " ");
    for (size_t g = 0; g < d->n_groups; g++) {
        const dp_group_t *grp = &d->groups[g];
        for (int dir = 0; dir < 2; dir++) {
            const dp_rule_t *rules = dir ? grp->egress : grp->ingress;
            size_t n = dir ? grp->n_egress : grp->n_ingress;
            for (size_t i = 0; i < n; i++)
                for (size_t c = 0; c < rules[i].n_groups; c++) {
                    char sn[DP_NAME_MAX + 4], probe[DP_NAME_MAX + 8];
                    set_name(sn, sizeof sn, rules[i].groups[c]);
                    snprintf(probe, sizeof probe, " %s ", sn);
                    if (strstr(seen.s, probe)) continue;
                    strbuf_printf(&seen, "%s ", sn);
                    strbuf_printf(b, "  set %s { type ipv4_addr; flags interval; auto-merge;", sn);
                    const dp_members_t *m = members_of(d, rules[i].groups[c]);
                    if (m && m->n_addrs) {
                        strbuf_puts(b, " elements = {");
                        for (size_t a = 0; a < m->n_addrs; a++)
                            strbuf_printf(b, "%s %s", a ? "," : "", m->addrs[a]);
                        strbuf_puts(b, " }");
                    }
                    strbuf_puts(b, " }\n");
                }
        }
    }
    free(seen.s);
}

/* "iifname vr-N oifname vx-N ether daddr { macs } ... accept" for the route targets of a
 * VPC's subnets, each MAC once; nothing when there are none. The frame leaves with this
 * host's own router MAC (02:fd + its underlay address) instead of the gateway MAC every
 * host shares: the far bridge would otherwise learn the gateway behind its tunnel and
 * send its own instances' gateway traffic there. */
static void route_macs(strbuf_t *b, const dp_vpc_t *v, const char *underlay_ip)
{
    unsigned o[4] = {0};
    sscanf(underlay_ip, "%u.%u.%u.%u", &o[0], &o[1], &o[2], &o[3]);
    strbuf_t set = {0};
    for (size_t i = 0; i < v->n_subnets; i++)
        for (size_t k = 0; k < v->subnets[i].n_routes; k++) {
            const char *mac = v->subnets[i].routes[k].mac;
            if (set.s && strstr(set.s, mac)) continue;
            strbuf_printf(&set, "%s%s", set.len ? ", " : "", mac);
        }
    if (set.len)
        strbuf_printf(b, "    iifname \"vr-%u\" oifname \"vx-%u\" ether daddr { %s } ether saddr set "
                      "02:fd:%02x:%02x:%02x:%02x accept\n", v->vni, v->vni, set.s, o[0] & 255, o[1] & 255, o[2] & 255,
                      o[3] & 255);
    free(set.s);
}

char *dp_render_sg(const dp_desired_t *d, const char *fp)
{
    strbuf_t b = {0};
    strbuf_puts(&b, "table bridge " SG_TABLE "\ndelete table bridge " SG_TABLE "\n"
                    "table inet " SG_TABLE "\ndelete table inet " SG_TABLE "\n");
    strbuf_puts(&b, "table bridge " SG_TABLE " {\n  chain vmarks {\n"
                    "    type filter hook forward priority -200; policy accept;\n"
                    "    meta mark set 0\n");
    /* Each host's router answers for the gateway and DHCP of its own interfaces only: the
     * same gateway address and MAC exist on every host of the VPC, so their frames never
     * cross the tunnel (a distributed gateway). */
    for (size_t i = 0; i < d->n_vpcs; i++) {
        unsigned vni = d->vpcs[i].vni;
        /* except what the router routes to an interface (a route's target) on another
         * host: unicast to that interface's MAC */
        route_macs(&b, &d->vpcs[i], d->underlay_ip);
        strbuf_printf(&b, "    iifname \"vr-%u\" oifname \"vx-%u\" drop\n", vni, vni);
        strbuf_printf(&b, "    iifname \"vx-%u\" oifname \"vr-%u\" drop\n", vni, vni);
    }
    for (size_t i = 0; i < d->n_ifaces; i++) {
        const dp_iface_t *f = &d->ifaces[i];
        strbuf_printf(&b, "    iifname \"%s\" ether saddr != %s drop\n", f->device, f->mac);
        strbuf_printf(&b, "    iifname \"%s\" meta mark set meta mark or 0x%x\n", f->device, (unsigned)(i + 1));
        strbuf_printf(&b, "    oifname \"%s\" meta mark set meta mark or 0x%x\n", f->device, (unsigned)(i + 1) << 16);
    }
    strbuf_printf(&b, "  }\n}\ntable inet " SG_TABLE " {\n" FP_CHAIN, fp);
    group_sets(&b, d);
    strbuf_puts(&b, "  chain vfilter {\n    type filter hook forward priority 0; policy accept;\n");
    for (size_t i = 0; i < d->n_ifaces; i++) {
        strbuf_printf(&b, "    meta mark and 0xffff == 0x%x jump out_%zu\n", (unsigned)(i + 1), i + 1);
        strbuf_printf(&b, "    meta mark and 0xffff0000 == 0x%x jump in_%zu\n", (unsigned)(i + 1) << 16, i + 1);
    }
    strbuf_puts(&b, "  }\n");
    for (size_t i = 0; i < d->n_ifaces; i++) {
        const dp_iface_t *f = &d->ifaces[i];
        /* in: stateful, DHCP answers, then the groups' ingress rules; default deny */
        strbuf_printf(&b, "  chain in_%zu {\n    ct state established,related accept\n"
                          "    ct state invalid drop\n    udp sport 67 udp dport 68 accept\n", i + 1);
        iface_rules(&b, d, f, 1);
        strbuf_puts(&b, "    drop\n  }\n");
        /* out: DHCP, no spoofed source, the metadata service (reachable whatever the
         * egress rules say, as on AWS), stateful, then egress rules; default deny */
        strbuf_printf(&b, "  chain out_%zu {\n    udp sport 68 udp dport 67 return\n"
                          "    ip saddr != %s drop\n    ip daddr " DP_METADATA_IP " tcp dport 80 return\n"
                          "    ct state established,related return\n",
                      i + 1, f->ip);
        iface_rules(&b, d, f, 0);
        strbuf_puts(&b, "    drop\n  }\n");
    }
    strbuf_puts(&b, "}\n");
    return b.s;
}

char *dp_render_nat(const dp_desired_t *d, const dp_vpc_t *v, const char *fp)
{
    strbuf_t b = {0};
    strbuf_printf(&b, "table ip " NAT_TABLE "\ndelete table ip " NAT_TABLE "\n"
                      "table ip " NAT_TABLE " {\n" FP_CHAIN
                      "  chain pre {\n    type nat hook prerouting priority -100; policy accept;\n", fp);
    for (size_t i = 0; i < d->n_ifaces; i++)
        if (d->ifaces[i].vpc == v && d->ifaces[i].public_ip[0])
            strbuf_printf(&b, "    ip daddr %s dnat to %s\n", d->ifaces[i].public_ip, d->ifaces[i].ip);
    strbuf_puts(&b, "  }\n  chain post {\n    type nat hook postrouting priority 100; policy accept;\n");
    for (size_t i = 0; i < d->n_ifaces; i++)
        if (d->ifaces[i].vpc == v && d->ifaces[i].public_ip[0])
            strbuf_printf(&b, "    oifname \"" DP_OUTSIDE_IF "\" ip saddr %s snat to %s\n",
                          d->ifaces[i].ip, d->ifaces[i].public_ip);
    strbuf_puts(&b, "  }\n}\n");
    return b.s;
}

char *dp_render_dhcp_conf(const dp_vpc_t *v)
{
    strbuf_t b = {0};
    strbuf_puts(&b, "interface=" DP_ROUTER_IF "\nbind-interfaces\nexcept-interface=lo\nport=0\n"
                    "no-resolv\nno-hosts\ndhcp-authoritative\n");
    for (size_t i = 0; i < v->n_subnets; i++) {
        const dp_subnet_t *s = &v->subnets[i];
        char net[48];
        snprintf(net, sizeof net, "%s", s->cidr);
        *strchr(net, '/') = 0;
        struct in_addr m = {.s_addr = htonl(s->prefix_len ? ~0u << (32 - s->prefix_len) : 0)};
        char mask[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &m, mask, sizeof mask);
        strbuf_printf(&b, "dhcp-range=set:%s,%s,static,%s,1h\n", s->subnet_id, net, mask);
        strbuf_printf(&b, "dhcp-option=tag:%s,option:router,%s\n", s->subnet_id, s->gateway);
        if (s->dns[0]) strbuf_printf(&b, "dhcp-option=tag:%s,option:dns-server,%s\n", s->subnet_id, s->dns);
    }
    return b.s;
}

char *dp_render_dhcp_hosts(const dp_desired_t *d, const dp_vpc_t *v)
{
    strbuf_t b = {0};
    strbuf_puts(&b, "");
    for (size_t i = 0; i < d->n_ifaces; i++)
        if (d->ifaces[i].vpc == v)
            strbuf_printf(&b, "%s,%s,%s\n", d->ifaces[i].mac, d->ifaces[i].ip, d->ifaces[i].eni_id);
    return b.s;
}
