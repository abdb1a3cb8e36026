/* units.c - the units a desired document asks for, with their fingerprints.
 *
 * A fingerprint is what the driver stores with the unit (a link alias, an nftables table
 * comment, a file hash) and observe() reads back: equal fingerprints mean "already as
 * wanted", so a second apply of the same document does nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datapath.h"
#include "strbuf.h"

/* FNV-1a, 32 bits: fingerprints and short device names, not security. */
void dp_hash8(const char *text, char out[9])
{
    unsigned h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) h = (h ^ *p) * 16777619u;
    snprintf(out, 9, "%08x", h);
}

static void vni_key(char *buf, size_t n, unsigned vni)
{
    snprintf(buf, n, "%u", vni);
}

/* Gateways of the router leg, "a.b.c.d/n ..." in document order, then each route
 * through an interface as "rt=<subnet index>,<subnet cidr>,<dest>,<via>,<mac>" (part of
 * the router's fingerprint, so a changed route rebuilds the router's routing). */
static char *router_addrs(const dp_vpc_t *v)
{
    strbuf_t b = {0};
    strbuf_puts(&b, "");
    for (size_t i = 0; i < v->n_subnets; i++)
        strbuf_printf(&b, "%s%s/%d", i ? " " : "", v->subnets[i].gateway, v->subnets[i].prefix_len);
    for (size_t i = 0; i < v->n_subnets; i++)
        for (size_t k = 0; k < v->subnets[i].n_routes; k++) {
            const dp_route_t *r = &v->subnets[i].routes[k];
            strbuf_printf(&b, " rt=%zu,%s,%s,%s,%s", i, v->subnets[i].cidr, r->dest, r->via, r->mac);
        }
    return b.s;
}

static void add_rendered(dp_units_t *out, dp_kind_t kind, const char *key, const void *spec,
                         const char *tag, char *(*render)(const dp_desired_t *, const dp_vpc_t *, const char *),
                         const dp_desired_t *d, const dp_vpc_t *v, char *extra)
{
    char h[9];
    AUTOFREE char *body = render(d, v, "");
    AUTOFREE char *all = xasprintf("%s|%s", body, extra ? extra : "");
    dp_hash8(all, h);
    dp_unit_t *u = dp_units_add(out, kind, key);
    snprintf(u->fp, sizeof u->fp, "%s=%s", tag, h);
    u->spec = spec;
    u->text = render(d, v, u->fp);
    u->text2 = extra;
}

static void hashed_fp(dp_unit_t *u, const char *tag, const char *text)
{
    char h[9];
    dp_hash8(text, h);
    snprintf(u->fp, sizeof u->fp, "%s=%s", tag, h);
}

/* The security group units: the skeleton, each VPC's bridge rules, one set per group a
 * rule refers to (each once), one per group (its rules), one per interface (its groups).
 * An interface's fingerprint is its script without mark and comment: the mark is the
 * host's business (the driver picks a free one). */
static void sg_units(const dp_desired_t *d, dp_units_t *out)
{
    dp_unit_t *u = dp_units_add(out, DP_SG, "sg");
    snprintf(u->fp, sizeof u->fp, "%s", DP_SG_LAYOUT);
    for (size_t i = 0; i < d->n_vpcs; i++) {
        char key[16];
        vni_key(key, sizeof key, d->vpcs[i].vni);
        u = dp_units_add(out, DP_SGVPC, key);
        AUTOFREE char *t = dp_render_sg_vpc(d, &d->vpcs[i], "");
        hashed_fp(u, "n", t);
        u->spec = &d->vpcs[i];
    }
    for (size_t g = 0; g < d->n_groups; g++)
        for (int dir = 0; dir < 2; dir++) {
            const dp_group_t *grp = &d->groups[g];
            const dp_rule_t *rules = dir ? grp->egress : grp->ingress;
            size_t n = dir ? grp->n_egress : grp->n_ingress;
            for (size_t i = 0; i < n; i++)
                for (size_t c = 0; c < rules[i].n_groups; c++) {
                    char sn[DP_NAME_MAX + 4];
                    dp_sg_set_name(sn, sizeof sn, rules[i].groups[c]);
                    if (dp_units_find(out, DP_SGSET, sn)) continue;
                    u = dp_units_add(out, DP_SGSET, sn);
                    u->text = dp_sg_set_elems(d, rules[i].groups[c]);
                    hashed_fp(u, "m", u->text);
                }
        }
    for (size_t g = 0; g < d->n_groups; g++) {
        u = dp_units_add(out, DP_SGGRP, d->groups[g].group_id);
        AUTOFREE char *t = dp_render_sg_group(&d->groups[g], 0, "");
        hashed_fp(u, "g", t);
        u->spec = &d->groups[g];
    }
    for (size_t i = 0; i < d->n_ifaces; i++) {
        u = dp_units_add(out, DP_SGIF, d->ifaces[i].eni_id);
        AUTOFREE char *t = dp_render_sg_iface(d, &d->ifaces[i], 0, "");
        hashed_fp(u, "f", t);
        u->spec = &d->ifaces[i];
        snprintf(u->dev, sizeof u->dev, "%s", d->ifaces[i].device);
    }
}

void dp_desired_units(const dp_desired_t *d, dp_units_t *out)
{
    char key[96];
    dp_unit_t *u = dp_units_add(out, DP_HOST, d->host);
    snprintf(u->fp, sizeof u->fp, "ul=%s/%d", d->underlay_ip, d->underlay_prefix_len);

    for (size_t i = 0; i < d->n_vpcs; i++) {
        const dp_vpc_t *v = &d->vpcs[i];
        vni_key(key, sizeof key, v->vni);
        u = dp_units_add(out, DP_VPC, key);
        snprintf(u->fp, sizeof u->fp, "vni=%u local=%s", v->vni, d->underlay_ip);
        u->spec = v;
        for (size_t p = 0; p < v->n_peers; p++) {
            snprintf(key, sizeof key, "%u/%s", v->vni, v->peers[p]);
            u = dp_units_add(out, DP_FDB, key);
            snprintf(u->fp, sizeof u->fp, "%s", key);
            u->spec = v;
        }
        vni_key(key, sizeof key, v->vni);
        add_rendered(out, DP_ROUTER, key, v, "r", dp_render_nat, d, v, router_addrs(v));
        /* DHCP: the text is the configuration, text2 the hosts file; both are hashed. */
        AUTOFREE char *conf = dp_render_dhcp_conf(v);
        char *hosts = dp_render_dhcp_hosts(d, v);
        AUTOFREE char *both = xasprintf("%s|%s", conf, hosts);
        char h[9];
        dp_hash8(both, h);
        u = dp_units_add(out, DP_DHCP, key);
        snprintf(u->fp, sizeof u->fp, "d=%s", h);
        u->spec = v;
        u->text = xstrdup(conf);
        u->text2 = hosts;
        u = dp_units_add(out, DP_META, key);
        snprintf(u->fp, sizeof u->fp, "md=%s", DP_METADATA_IP);
        u->spec = v;
    }
    for (size_t i = 0; i < d->n_ifaces; i++) {
        const dp_iface_t *f = &d->ifaces[i];
        u = dp_units_add(out, DP_IFACE, f->eni_id);
        /* a veth's fingerprint has no kind, as before taps existed: nothing rebuilds */
        char in[DP_NAME_MAX + 16] = "";
        if (f->parent[0]) snprintf(in, sizeof in, " in=%s/eth%d", f->parent, f->device_index);
        snprintf(u->fp, sizeof u->fp, "dev=%s vni=%u mac=%s ip=%s/%d gw=%s%s%s", f->device,
                 f->vpc->vni, f->mac, f->ip, f->prefix_len, f->subnet->gateway,
                 strcmp(f->kind, "tap") ? "" : " kind=tap", in);
        u->order = f->parent[0] != 0;
        snprintf(u->dev, sizeof u->dev, "%s", f->device);
        u->spec = f;
    }
    sg_units(d, out);
}
