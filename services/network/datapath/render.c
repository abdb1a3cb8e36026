/* render.c - configuration texts from a desired document: a VPC's NAT and its dnsmasq
 * configuration (the security groups' nftables texts are render_sg.c). Pure functions,
 * unit-tested as text. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datapath.h"
#include "strbuf.h"

#define NAT_TABLE "virga_nat"
/* The fingerprint sits in an empty chain's comment: observe() lists that chain alone. */
#define FP_CHAIN  "  chain fp {\n    comment \"%s\"\n  }\n"

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
