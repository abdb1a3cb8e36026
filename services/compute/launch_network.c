/* launch_network.c - the network part of RunInstances: SubnetId, SecurityGroupIds,
 * SecurityGroups (names, default VPC), PrivateIpAddress, or the same given as the primary
 * entry of NetworkInterfaces (DeviceIndex 0: SubnetId, Groups, PrivateIpAddress,
 * AssociatePublicIpAddress, which port_create obeys over the subnet's
 * MapPublicIpOnLaunch); then checked against the network's data as compute
 * holds it (launch_facts_network: network.launch_check's answer), so an unknown subnet or
 * group is the EC2 error of RunInstances itself, names become ids and a given subnet
 * decides the zone. The launch task's port_create stays the last word (an address taken
 * meanwhile, a group deleted since). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "compute.h"
#include "ids.h"
#include "jsonutil.h"
#include "launch_network.h"

int launch_net_group_ids_valid(const json_t *g, const char *param, verr_t *e)
{
    if (g && !json_is_array(g))
        return verr_set(e, 400, "InvalidParameterValue", "%s must be a list", param);
    size_t i;
    json_t *v;
    json_array_foreach(g, i, v)
        if (!ids_valid("sg", json_string_value(v)))
            return verr_set(e, 400, "InvalidGroupId.Malformed", "Invalid id: \"%.64s\"",
                            json_string_value(v) ? json_string_value(v) : "");
    return 0;
}

/* NetworkInterfaces: one new primary interface (what an instance here has). */
static int primary_interface(const json_t *body, launch_net_t *n, verr_t *e)
{
    const json_t *ni = json_object_get(body, "NetworkInterface");
    if (!json_is_array(ni) || json_array_size(ni) != 1)
        return verr_set(e, 400, "InvalidParameterValue",
                        "NetworkInterfaces: exactly one interface, the primary (DeviceIndex 0), is supported");
    static const char *const top[] = {"SubnetId", "SecurityGroupId", "SecurityGroup", "PrivateIpAddress"};
    for (size_t i = 0; i < ARRAY_LEN(top); i++)
        if (json_object_get(body, top[i]))
            return verr_set(e, 400, "InvalidParameterCombination",
                            "Network interfaces and an instance-level %s may not be specified on the same request",
                            top[i]);
    const json_t *x = json_array_get(ni, 0);
    const char *idx = json_str(x, "DeviceIndex", NULL);
    if (!idx || strcmp(idx, "0"))
        return verr_set(e, 400, "InvalidParameterValue", "NetworkInterfaces: DeviceIndex must be 0, not %.16s",
                        idx ? idx : "(none)");
    if (json_object_get(x, "NetworkInterfaceId"))
        return verr_set(e, 400, "InvalidParameterValue",
                        "NetworkInterfaces: attaching an existing interface (NetworkInterfaceId) is not supported");
    const char *pub = json_str(x, "AssociatePublicIpAddress", NULL);
    if (pub && strcmp(pub, "true") && strcmp(pub, "false"))
        return verr_set(e, 400, "InvalidParameterValue", "AssociatePublicIpAddress must be true or false, not %.16s",
                        pub);
    n->public_ip = pub ? !strcmp(pub, "true") : -1;
    n->subnet = json_str(x, "SubnetId", NULL);
    n->private_ip = json_str(x, "PrivateIpAddress", NULL);
    n->ids = json_object_get(x, "SecurityGroupId");
    return launch_net_group_ids_valid(n->ids, "NetworkInterfaces.Groups", e);
}

int launch_net_parse(const json_t *body, int max_count, launch_net_t *n, verr_t *e)
{
    memset(n, 0, sizeof *n);
    n->public_ip = -1;
    if (json_object_get(body, "NetworkInterface")) {
        if (primary_interface(body, n, e) < 0)
            return -1;
    } else {
        n->subnet = json_str(body, "SubnetId", NULL);
        n->private_ip = json_str(body, "PrivateIpAddress", NULL);
        n->ids = json_object_get(body, "SecurityGroupId");
        n->names = json_object_get(body, "SecurityGroup");
        if (launch_net_group_ids_valid(n->ids, "SecurityGroupId", e) < 0)
            return -1;
        if (n->names && !json_is_array(n->names))
            return verr_set(e, 400, "InvalidParameterValue", "SecurityGroup must be a list");
    }
    if (n->subnet && !ids_valid("subnet", n->subnet))
        return verr_set(e, 400, "InvalidSubnetID.Malformed", "Invalid id: \"%.64s\"", n->subnet);
    struct in_addr a;
    if (n->private_ip && inet_pton(AF_INET, n->private_ip, &a) != 1)
        return verr_set(e, 400, "InvalidParameterValue", "Invalid IPv4 address: %.64s", n->private_ip);
    if (n->private_ip && max_count > 1)
        return verr_set(e, 400, "InvalidParameterCombination",
                        "PrivateIpAddress cannot be used when launching more than one instance");
    if (json_array_size(n->ids) + json_array_size(n->names) > 5)
        return verr_set(e, 400, "SecurityGroupsPerInterfaceLimitExceeded", "At most 5 security groups");
    return 0;
}

int launch_net_check(bus_ctx_t *ctx, const char *account, const char *zone, launch_net_t *n, verr_t *e)
{
    JSON_AUTO json_t *check = json_pack("{s:s}", "account", account);
    if (zone)
        json_object_set_new(check, "az", json_string(zone));
    if (n->subnet)
        json_object_set_new(check, "subnet", json_string(n->subnet));
    if (n->private_ip)
        json_object_set_new(check, "private_ip", json_string(n->private_ip));
    if (json_array_size(n->ids))
        json_object_set(check, "groups", (json_t *)n->ids);
    if (json_array_size(n->names))
        json_object_set(check, "group_names", (json_t *)n->names);
    JSON_AUTO json_t *out = NULL;
    if (launch_facts_network(ctx, account, check, &out, e) < 0)
        return -1;
    json_t *g = json_object_get(out, "group_ids");
    /* what was asked, as ids; none asked: the task's port gets the VPC's default group */
    n->group_ids = json_array_size(n->ids) || json_array_size(n->names) ? json_incref(g) : json_array();
    if (n->subnet)
        snprintf(n->zone, sizeof n->zone, "%s", json_str(out, "az", ""));
    return 0;
}

void launch_net_free(launch_net_t *n)
{
    json_decref(n->group_ids);
    n->group_ids = NULL;
}
