/* render_sg.c - the security groups of a host as nftables scripts, one piece at a time.
 *
 * The kernel here has no bridge-family conntrack, so filtering is split in two tables: a
 * bridge table marks each frame with the interfaces it comes from and goes to (low 16
 * bits: source interface, high: target), and an inet table, reached through br_netfilter
 * (on in each host namespace we create, never touched in the root namespace), jumps per
 * mark into that interface's chains where conntrack keeps the rules stateful. Out chains
 * `return` what they allow so the target's in chain is still consulted for traffic
 * between two local interfaces.
 *
 * The mark: bits 0-14 the source interface, 15 "an egress rule allowed it", 16-30 the
 * target interface.
 *
 * The base chains never change: they dispatch through verdict maps (`iifname vmap @bin`,
 * `meta mark and 0x7fff vmap @outs`), so plugging an interface is adding its four chains
 * and four map elements, and unplugging it deleting them. An interface's chains jump to
 * one chain per group and direction (gi_<group>, go_<group>) holding the group's rules,
 * so a rule change replaces the rules of that group's two chains only, however many
 * interfaces use it; a group a rule refers to is a named set whose elements are replaced.
 * Each of these is one small `nft -f` transaction of its own statements, instead of
 * rewriting every rule of the host (which grew with the number of interfaces and
 * dominated plug time). Nothing here touches conntrack, so established connections
 * survive every change.
 *
 * Fingerprints live in chain comments, which nftables cannot change on an existing
 * chain: a changed interface or VPC is deleted and added again in the same transaction;
 * a group's chains, which interfaces' chains jump to and so cannot be deleted, keep theirs
 * in an empty chain of its own (gf_<group>) that is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datapath.h"
#include "strbuf.h"

#define T "virga_sg"
#define EGRESS_OK 0x8000u   /* mark bit: an egress rule of one of the interface's groups matched */

/* nftables identifiers take no '-': eni-0aa1 -> eni_0aa1 */
static void ident(char *out, size_t n, const char *prefix, const char *id)
{
    snprintf(out, n, "%s%s", prefix, id);
    for (char *p = out; *p; p++)
        if (*p == '-') *p = '_';
}

void dp_sg_set_name(char *out, size_t n, const char *group_id)
{
    ident(out, n, "g_", group_id);
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

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *dp_sg_join_elems(const char **v, size_t n)
{
    strbuf_t b = {0};
    strbuf_puts(&b, "");
    qsort(v, n, sizeof *v, cmp_str);
    for (size_t i = 0; i < n; i++)
        if (!i || strcmp(v[i], v[i - 1])) strbuf_printf(&b, "%s%s", b.len ? ", " : "", v[i]);
    return b.s;
}

char *dp_sg_set_elems(const dp_desired_t *d, const char *group_id)
{
    const dp_members_t *m = members_of(d, group_id);
    size_t n = m ? m->n_addrs : 0;
    const char **v = xmalloc((n + 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = m->addrs[i];
    char *s = dp_sg_join_elems(v, n);
    free(v);
    return s;
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

/* The rules of one group in one direction: ingress accepts; egress marks the packet and
 * returns, and the interface's out chain returns what is marked, so that traffic between
 * two interfaces of this host still meets the target's in chain. */
static void group_rules(strbuf_t *b, const dp_group_t *grp, int ingress)
{
    const char *dir = ingress ? "saddr" : "daddr";
    char verdict[64];
    snprintf(verdict, sizeof verdict, ingress ? "accept" : "meta mark set meta mark or 0x%x return", EGRESS_OK);
    const dp_rule_t *rules = ingress ? grp->ingress : grp->egress;
    size_t n = ingress ? grp->n_ingress : grp->n_egress;
    for (size_t i = 0; i < n; i++) {
        char pm[96], sn[DP_NAME_MAX + 4];
        proto_match(&rules[i], pm, sizeof pm);
        for (size_t c = 0; c < rules[i].n_cidrs; c++)
            strbuf_printf(b, "    ip %s %s %s %s\n", dir, rules[i].cidrs[c], pm, verdict);
        for (size_t c = 0; c < rules[i].n_groups; c++) {
            dp_sg_set_name(sn, sizeof sn, rules[i].groups[c]);
            strbuf_printf(b, "    ip %s @%s %s %s\n", dir, sn, pm, verdict);
        }
    }
}

/* An interface's jumps to its groups' chains, in one direction. */
static void iface_jumps(strbuf_t *b, const dp_desired_t *d, const dp_iface_t *f, int ingress)
{
    for (size_t g = 0; g < f->n_groups; g++) {
        if (!group_of(d, f->groups[g])) continue;   /* an unknown group grants nothing */
        char s[DP_NAME_MAX + 4];
        ident(s, sizeof s, ingress ? "gi_" : "go_", f->groups[g]);
        strbuf_printf(b, "    jump %s\n", s);
    }
}

/* A group's two chains and its fingerprint chain "grp=<group> <fp>". An existing group
 * has its chains flushed (they are jumped to) and its fingerprint chain replaced. */
char *dp_render_sg_group(const dp_group_t *g, int exists, const char *fp)
{
    char gi[DP_NAME_MAX + 4], go[DP_NAME_MAX + 4], gf[DP_NAME_MAX + 4];
    ident(gi, sizeof gi, "gi_", g->group_id);
    ident(go, sizeof go, "go_", g->group_id);
    ident(gf, sizeof gf, "gf_", g->group_id);
    strbuf_t b = {0};
    if (exists)
        strbuf_printf(&b, "flush chain inet " T " %s\nflush chain inet " T " %s\ndelete chain inet " T " %s\n", gi, go,
                      gf);
    strbuf_printf(&b, "table inet " T " {\n  chain %s {\n", gi);
    group_rules(&b, g, 1);
    strbuf_printf(&b, "  }\n  chain %s {\n", go);
    group_rules(&b, g, 0);
    strbuf_printf(&b, "  }\n  chain %s {\n    comment \"grp=%s %s\"\n  }\n}\n", gf, g->group_id, fp);
    return b.s;
}

char *dp_render_sg_group_del(const char *group_id)
{
    char gi[DP_NAME_MAX + 4], go[DP_NAME_MAX + 4], gf[DP_NAME_MAX + 4];
    ident(gi, sizeof gi, "gi_", group_id);
    ident(go, sizeof go, "go_", group_id);
    ident(gf, sizeof gf, "gf_", group_id);
    return xasprintf("flush chain inet " T " %s\ndelete chain inet " T " %s\nflush chain inet " T " %s\n"
                     "delete chain inet " T " %s\ndelete chain inet " T " %s\n", gi, gi, go, go, gf);
}

char *dp_render_sg_skeleton(void)
{
    /* "table X" first: deleting a table that is not there would fail the transaction */
    return xstrdup("table bridge " T "\ndelete table bridge " T "\n"
                   "table inet " T "\ndelete table inet " T "\n"
                   "table bridge " T " {\n"
                   "  map vpcs { type ifname : verdict; }\n"
                   "  map bin { type ifname : verdict; }\n"
                   "  map bout { type ifname : verdict; }\n"
                   "  chain vmarks {\n    type filter hook forward priority -200; policy accept;\n"
                   "    meta mark set 0\n    iifname vmap @vpcs\n    iifname vmap @bin\n    oifname vmap @bout\n"
                   "  }\n}\n"
                   "table inet " T " {\n"
                   "  chain fp {\n    comment \"" DP_SG_LAYOUT "\"\n  }\n"
                   "  map outs { type mark : verdict; }\n"
                   "  map ins { type mark : verdict; }\n"
                   "  chain vfilter {\n    type filter hook forward priority 0; policy accept;\n"
                   "    meta mark and 0x7fff vmap @outs\n    meta mark and 0x7fff0000 vmap @ins\n"
                   "  }\n}\n");
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

/* Each host's router answers for the gateway and DHCP of its own interfaces only: the
 * same gateway address and MAC exist on every host of the VPC, so their frames never
 * cross the tunnel (a distributed gateway), except what the router routes to an
 * interface (a route's target) on another host. */
char *dp_render_sg_vpc(const dp_desired_t *d, const dp_vpc_t *v, const char *fp)
{
    strbuf_t b = {0};
    strbuf_printf(&b, "table bridge " T " {\n  chain v_%u {\n    comment \"%s\"\n", v->vni, fp);
    route_macs(&b, v, d->underlay_ip);
    strbuf_printf(&b, "    iifname \"vr-%u\" oifname \"vx-%u\" drop\n", v->vni, v->vni);
    strbuf_printf(&b, "    iifname \"vx-%u\" oifname \"vr-%u\" drop\n  }\n}\n", v->vni, v->vni);
    strbuf_printf(&b, "add element bridge " T " vpcs { \"vr-%u\" : jump v_%u, \"vx-%u\" : jump v_%u }\n",
                  v->vni, v->vni, v->vni, v->vni);
    return b.s;
}

char *dp_render_sg_vpc_del(unsigned vni)
{
    return xasprintf("delete element bridge " T " vpcs { \"vr-%u\", \"vx-%u\" }\n"
                     "flush chain bridge " T " v_%u\ndelete chain bridge " T " v_%u\n", vni, vni, vni, vni);
}

/* `add set` is a no-op on an existing set; flush then add replaces the elements. */
char *dp_render_sg_set(const char *set, const char *elems)
{
    strbuf_t b = {0};
    strbuf_printf(&b, "add set inet " T " %s { type ipv4_addr; }\nflush set inet " T " %s\n", set, set);
    if (elems && *elems) strbuf_printf(&b, "add element inet " T " %s { %s }\n", set, elems);
    return b.s;
}

char *dp_render_sg_set_del(const char *set)
{
    return xasprintf("delete set inet " T " %s\n", set);
}

/* One interface: anti-spoofing and its mark in the bridge table, its in and out chains
 * (with the source/destination check unless the interface has it off)
 * in the inet table, and the four map elements that lead to them. The comment of its
 * in chain is "eni=<eni> dev=<device> m=<mark> <fp>", which observe() reads back. */
char *dp_render_sg_iface(const dp_desired_t *d, const dp_iface_t *f, unsigned mark, const char *fp)
{
    char s[DP_NAME_MAX + 4];
    ident(s, sizeof s, "", f->eni_id);
    strbuf_t b = {0};
    strbuf_printf(&b, "table bridge " T " {\n"
                      "  chain bi_%s {\n    ether saddr != %s drop\n    meta mark set meta mark or 0x%x\n  }\n"
                      "  chain bo_%s {\n    meta mark set meta mark or 0x%x\n  }\n}\n",
                  s, f->mac, mark, s, mark << 16);
    /* out: DHCP, no spoofed source, the metadata service (reachable whatever the egress
     * rules say, as on AWS), stateful, then the groups' egress rules; default deny */
    strbuf_printf(&b, "table inet " T " {\n  chain o_%s {\n    udp sport 68 udp dport 67 return\n", s);
    if (!f->no_sdcheck)     /* the source half of EC2's source/destination check */
        strbuf_printf(&b, "    ip saddr != %s drop\n", f->ip);
    strbuf_puts(&b, "    ip daddr " DP_METADATA_IP " tcp dport 80 return\n    ct state established,related return\n");
    iface_jumps(&b, d, f, 0);
    strbuf_printf(&b, "    meta mark and 0x%x == 0x%x return\n", EGRESS_OK, EGRESS_OK);
    /* in: stateful, DHCP answers, then the groups' ingress rules; default deny */
    strbuf_printf(&b, "    drop\n  }\n  chain i_%s {\n    comment \"eni=%s dev=%s m=%u %s\"\n"
                      "    ct state established,related accept\n"
                      "    ct state invalid drop\n    udp sport 67 udp dport 68 accept\n",
                  s, f->eni_id, f->device, mark, fp);
    if (!f->no_sdcheck)     /* and its destination half */
        strbuf_printf(&b, "    ip daddr != %s drop\n", f->ip);
    iface_jumps(&b, d, f, 1);
    strbuf_puts(&b, "    drop\n  }\n}\n");
    strbuf_printf(&b, "add element bridge " T " bin { \"%s\" : jump bi_%s }\n"
                      "add element bridge " T " bout { \"%s\" : jump bo_%s }\n"
                      "add element inet " T " outs { 0x%x : jump o_%s }\n"
                      "add element inet " T " ins { 0x%x : jump i_%s }\n",
                  f->device, s, f->device, s, mark, s, mark << 16, s);
    return b.s;
}

char *dp_render_sg_iface_del(const char *eni, const char *dev, unsigned mark)
{
    char s[DP_NAME_MAX + 4];
    ident(s, sizeof s, "", eni);
    strbuf_t b = {0};
    strbuf_printf(&b, "delete element bridge " T " bin { \"%s\" }\ndelete element bridge " T " bout { \"%s\" }\n"
                      "delete element inet " T " outs { 0x%x }\ndelete element inet " T " ins { 0x%x }\n",
                  dev, dev, mark, mark << 16);
    static const char *const chains[][2] = {{"bridge", "bi_"}, {"bridge", "bo_"}, {"inet", "o_"}, {"inet", "i_"}};
    for (size_t i = 0; i < ARRAY_LEN(chains); i++)
        strbuf_printf(&b, "flush chain %s " T " %s%s\ndelete chain %s " T " %s%s\n", chains[i][0], chains[i][1], s,
                      chains[i][0], chains[i][1], s);
    return b.s;
}

char *dp_render_sg_full(const dp_desired_t *d, const dp_units_t *units)
{
    strbuf_t b = {0};
    char *sk = dp_render_sg_skeleton();
    strbuf_puts(&b, sk);
    free(sk);
    unsigned mark = 0;
    /* sets before the chains that name them, groups before the interfaces jumping there */
    static const dp_kind_t order[] = {DP_SGVPC, DP_SGSET, DP_SGGRP, DP_SGIF};
    for (size_t k = 0; k < ARRAY_LEN(order); k++)
        for (size_t i = 0; i < units->n; i++) {
            const dp_unit_t *u = &units->v[i];
            if (u->kind != order[k]) continue;
            char *t = u->kind == DP_SGVPC ? dp_render_sg_vpc(d, u->spec, u->fp)
                    : u->kind == DP_SGSET ? dp_render_sg_set(u->key, u->text)
                    : u->kind == DP_SGGRP ? dp_render_sg_group(u->spec, 0, u->fp)
                    : dp_render_sg_iface(d, u->spec, ++mark, u->fp);
            strbuf_puts(&b, t);
            free(t);
        }
    return b.s;
}
