/* cidr.h - IPv4 addresses and CIDR blocks as VPCs, subnets, security group rules and
 * the public pool use them: strict parsing (a block's host bits must be zero, as EC2
 * requires), containment, overlap, and the addresses a subnet may hand out (AWS keeps
 * five per subnet: the network address, .1 the router, .2 DNS, .3 reserved, and the
 * broadcast address). Pure functions, unit-tested in tests/unit/test_network.c. */
#ifndef VIRGA_NETWORK_CIDR_H
#define VIRGA_NETWORK_CIDR_H

#include <stdint.h>

#define CIDR_STR_MAX 20   /* "255.255.255.255/32" + NUL */
#define CIDR_RESERVED 5   /* addresses AWS keeps in every subnet */

typedef struct cidr {
    uint32_t addr;   /* network address, host order */
    int len;         /* prefix length 0..32 */
} cidr_t;

/* "a.b.c.d" (four decimal octets, no leading '+'/spaces) -> host-order address. */
int cidr_ip_parse(const char *s, uint32_t *ip);
void cidr_ip_format(uint32_t ip, char out[CIDR_STR_MAX]);
/* "a.b.c.d/n": -1 for anything else or for host bits set ("10.0.0.1/24"). */
int cidr_parse(const char *s, cidr_t *c);
void cidr_format(const cidr_t *c, char out[CIDR_STR_MAX]);

uint32_t cidr_mask(int len);
uint64_t cidr_size(const cidr_t *c);
uint32_t cidr_broadcast(const cidr_t *c);
/* 1 if inner lies wholly in outer. */
int cidr_contains(const cidr_t *outer, const cidr_t *inner);
int cidr_contains_ip(const cidr_t *c, uint32_t ip);
int cidr_overlaps(const cidr_t *a, const cidr_t *b);

/* The addresses of a subnet an interface may get: [network+4, broadcast-1]. 0 when the
 * block is too small to have any (a /29 or longer prefix has none left after five...
 * a /28, the smallest subnet, has 11). */
int cidr_usable(const cidr_t *c, uint32_t *first, uint32_t *last);
/* The router (.1) and the DNS server (.2) of a subnet. */
uint32_t cidr_gateway(const cidr_t *c);
uint32_t cidr_dns(const cidr_t *c);

/* The i-th default subnet of the default VPC 172.31.0.0/16: 172.31.(16*i).0/20. */
void cidr_default_subnet(int i, cidr_t *c);

/* A MAC for an interface: locally administered 02:xx, the rest from the id's hex digits
 * (17 hex digits after "eni-"): distinct ids give distinct MACs except on a collision
 * of 40 random bits, which the enis.mac unique constraint turns into a retry. */
void cidr_mac_for(const char *eni_id, char out[18]);

#endif
