/* virga-network - wiring only: the network service's message table and life cycle. */
#include "network.h"

static const bus_route_t routes[] = {
    {"network.CreateVpc", net_create_vpc},
    {"network.DescribeVpcs", net_describe_vpcs},
    {"network.DeleteVpc", net_delete_vpc},
    {"network.ModifyVpcAttribute", net_modify_vpc_attribute},
    {"network.DescribeVpcAttribute", net_describe_vpc_attribute},
    {"network.CreateSubnet", net_create_subnet},
    {"network.DescribeSubnets", net_describe_subnets},
    {"network.DeleteSubnet", net_delete_subnet},
    {"network.ModifySubnetAttribute", net_modify_subnet_attribute},
    {"network.CreateSecurityGroup", net_create_security_group},
    {"network.DescribeSecurityGroups", net_describe_security_groups},
    {"network.DeleteSecurityGroup", net_delete_security_group},
    {"network.AuthorizeSecurityGroupIngress", net_authorize_ingress},
    {"network.AuthorizeSecurityGroupEgress", net_authorize_egress},
    {"network.RevokeSecurityGroupIngress", net_revoke_ingress},
    {"network.RevokeSecurityGroupEgress", net_revoke_egress},
    {"network.DescribeSecurityGroupRules", net_describe_security_group_rules},
    {"network.CreateTags", net_create_tags},
    {"network.DeleteTags", net_delete_tags},
    {"network.DescribeTags", net_describe_tags},
    {"network.CreateNetworkInterface", net_create_network_interface},
    {"network.DeleteNetworkInterface", net_delete_network_interface},
    {"network.DescribeNetworkInterfaces", net_describe_network_interfaces},
    {"network.AllocateAddress", net_allocate_address},
    {"network.AssociateAddress", net_associate_address},
    {"network.DisassociateAddress", net_disassociate_address},
    {"network.ReleaseAddress", net_release_address},
    {"network.DescribeAddresses", net_describe_addresses},
    {"network.CreateInternetGateway", net_create_internet_gateway},
    {"network.AttachInternetGateway", net_attach_internet_gateway},
    {"network.DetachInternetGateway", net_detach_internet_gateway},
    {"network.DeleteInternetGateway", net_delete_internet_gateway},
    {"network.DescribeInternetGateways", net_describe_internet_gateways},
    {"network.CreateRouteTable", net_create_route_table},
    {"network.DeleteRouteTable", net_delete_route_table},
    {"network.CreateRoute", net_create_route},
    {"network.DeleteRoute", net_delete_route},
    {"network.AssociateRouteTable", net_associate_route_table},
    {"network.DisassociateRouteTable", net_disassociate_route_table},
    {"network.DescribeRouteTables", net_describe_route_tables},
    {"network.default_vpc", net_default_vpc_id},   /* DescribeAccountAttributes' default-vpc */
    /* for compute's instances (ports.c) and the hosts' datapath (desired.c) */
    {"network.port_create", net_port_create},
    {"network.port_plug", net_port_plug},
    {"network.port_unplug", net_port_unplug},
    {"network.port_delete", net_port_delete},
    {"network.host_desired", net_host_desired},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static const service_def_t def = {
        .name = "network",
        .schema = "network",
        .routes = routes,
    };
    return service_main(argc, argv, &def);
}
