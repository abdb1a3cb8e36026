/* public_address.c - an instance's public address as DescribeInstances shows it. The
 * network's facts of an interface (compute's network_enis: public_ip, public_ip_owner)
 * carry its public address: an elastic IP associated with it, or the one its launch got
 * from the operator's pool (MapPublicIpOnLaunch, AssociatePublicIpAddress). EC2 shows it
 * as the interface's `association` {publicIp, ipOwnerId, publicDnsName} (ipOwnerId the
 * account for an elastic IP, "amazon" for an auto-assigned one), the same on the
 * interface's primary private address, and the primary interface's as the instance's
 * ipAddress (boto3's PublicIpAddress). Its publicDnsName is the address's name in the
 * config's public_dns_domain (common/public_dns.c), also the instance's dnsName. */
#include <string.h>

#include "compute.h"
#include "jsonutil.h"
#include "public_dns.h"

void public_address_put(strbuf_t *b, const char *ip, const char *owner)
{
    strbuf_puts(b, ",\"association\":{\"publicIp\":");
    json_put_string(b, ip, strlen(ip));
    strbuf_puts(b, ",\"ipOwnerId\":");
    json_put_string(b, owner ? owner : "", owner ? strlen(owner) : 0);
    char dns[320];
    size_t len = public_dns_name(ip, dns, sizeof dns);
    strbuf_puts(b, ",\"publicDnsName\":");
    json_put_string(b, dns, len);
    strbuf_putc(b, '}');
}
