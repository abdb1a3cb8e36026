/* public_dns.h - the public DNS name of a public address, as EC2 names them:
 * "ec2-203-0-113-5.<region>.<domain>" (EC2's own: "ec2-203-0-113-5.us-west-2.compute.
 * amazonaws.com"). The domain is the config's `public_dns_domain` (docs/config.md). */
#ifndef VIRGA_PUBLIC_DNS_H
#define VIRGA_PUBLIC_DNS_H

#include <stddef.h>

/* Remember the region and domain the names are made in (a service's start; an empty
 * domain: no public names, public_dns_name gives ""). */
void public_dns_configure(const char *region, const char *domain);
/* The name of ip in out ("" for an empty ip, or no domain); its length. */
size_t public_dns_name(const char *ip, char *out, size_t size);

#endif
