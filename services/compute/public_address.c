/* public_address.c - an instance's public address as DescribeInstances shows it. The
 * network's facts of an interface (compute's network_enis: public_ip, public_ip_owner)
 * carry its public address: an elastic IP associated with it, or the one its launch got
 * from the operator's pool (MapPublicIpOnLaunch, AssociatePublicIpAddress). EC2 shows it
 * as the interface's `association` {publicIp, ipOwnerId, publicDnsName} (ipOwnerId the
 * account for an elastic IP, "amazon" for an auto-assigned one), the same on the
 * interface's primary private address, and the primary interface's as the instance's
 * ipAddress (boto3's PublicIpAddress). No public DNS names here: publicDnsName is "". */
#include "compute.h"
#include "jsonutil.h"

json_t *public_address_interface(json_t *iface, const char *ip, const char *owner)
{
    if (!iface || !ip || !*ip)
        return iface;
    json_t *assoc = json_pack("{s:s, s:s, s:s}", "publicIp", ip, "ipOwnerId", owner ? owner : "", "publicDnsName", "");
    json_t *primary = json_array_get(json_object_get(iface, "privateIpAddressesSet"), 0);
    if (primary)
        json_object_set(primary, "association", assoc);
    json_object_set_new(iface, "association", assoc);
    return iface;
}

void public_address_instance(json_t *item)
{
    json_t *primary = json_array_get(json_object_get(item, "networkInterfaceSet"), 0);
    json_t *ip = json_object_get(json_object_get(primary, "association"), "publicIp");
    if (ip)
        json_object_set(item, "ipAddress", ip);
}
