/* virga-network - wiring only: the network service's message table and life cycle. */
#include "instance_enis.h"
#include "interface_limit.h"
#include "network.h"
#include "public_dns.h"

/* Who may send what (bus_auth.h): the tenant API from the gateway or the operator; ports
 * from compute; a host's datapath document from compute or that host's own agent
 * (desired.c checks the host). */
#define TENANT_API (BUS_P_GATEWAY | BUS_P_OPERATOR)

static const bus_route_t routes[] = {
    {"network.CreateVpc", net_create_vpc, TENANT_API},
    {"network.DescribeVpcs", net_describe_vpcs, TENANT_API},
    {"network.DeleteVpc", net_delete_vpc, TENANT_API},
    {"network.ModifyVpcAttribute", net_modify_vpc_attribute, TENANT_API},
    {"network.DescribeVpcAttribute", net_describe_vpc_attribute, TENANT_API},
    {"network.CreateSubnet", net_create_subnet, TENANT_API},
    {"network.DescribeSubnets", net_describe_subnets, TENANT_API},
    {"network.DeleteSubnet", net_delete_subnet, TENANT_API},
    {"network.ModifySubnetAttribute", net_modify_subnet_attribute, TENANT_API},
    {"network.CreateSecurityGroup", net_create_security_group, TENANT_API},
    {"network.DescribeSecurityGroups", net_describe_security_groups, TENANT_API},
    {"network.DeleteSecurityGroup", net_delete_security_group, TENANT_API},
    {"network.AuthorizeSecurityGroupIngress", net_authorize_ingress, TENANT_API},
    {"network.AuthorizeSecurityGroupEgress", net_authorize_egress, TENANT_API},
    {"network.RevokeSecurityGroupIngress", net_revoke_ingress, TENANT_API},
    {"network.RevokeSecurityGroupEgress", net_revoke_egress, TENANT_API},
    {"network.DescribeSecurityGroupRules", net_describe_security_group_rules, TENANT_API},
    /* compute too: RunInstances' TagSpecification of network-interface, as the tenant */
    {"network.CreateTags", net_create_tags, TENANT_API | BUS_P_COMPUTE},
    {"network.DeleteTags", net_delete_tags, TENANT_API},
    {"network.DescribeTags", net_describe_tags, TENANT_API},
    {"network.CreateNetworkInterface", net_create_network_interface, TENANT_API},
    {"network.DeleteNetworkInterface", net_delete_network_interface, TENANT_API},
    {"network.DescribeNetworkInterfaces", net_describe_network_interfaces, TENANT_API},
    {"network.AttachNetworkInterface", net_attach_network_interface, TENANT_API},
    {"network.DetachNetworkInterface", net_detach_network_interface, TENANT_API},
    {"network.ModifyNetworkInterfaceAttribute", net_modify_network_interface_attribute, TENANT_API},
    {"network.DescribeNetworkInterfaceAttribute", net_describe_network_interface_attribute, TENANT_API},
    {"network.AllocateAddress", net_allocate_address, TENANT_API},
    {"network.AssociateAddress", net_associate_address, TENANT_API},
    {"network.DisassociateAddress", net_disassociate_address, TENANT_API},
    {"network.ReleaseAddress", net_release_address, TENANT_API},
    {"network.DescribeAddresses", net_describe_addresses, TENANT_API},
    {"network.CreateInternetGateway", net_create_internet_gateway, TENANT_API},
    {"network.AttachInternetGateway", net_attach_internet_gateway, TENANT_API},
    {"network.DetachInternetGateway", net_detach_internet_gateway, TENANT_API},
    {"network.DeleteInternetGateway", net_delete_internet_gateway, TENANT_API},
    {"network.DescribeInternetGateways", net_describe_internet_gateways, TENANT_API},
    {"network.CreateRouteTable", net_create_route_table, TENANT_API},
    {"network.DeleteRouteTable", net_delete_route_table, TENANT_API},
    {"network.CreateRoute", net_create_route, TENANT_API},
    {"network.DeleteRoute", net_delete_route, TENANT_API},
    {"network.ReplaceRoute", net_replace_route, TENANT_API},
    {"network.AssociateRouteTable", net_associate_route_table, TENANT_API},
    {"network.DisassociateRouteTable", net_disassociate_route_table, TENANT_API},
    {"network.DescribeRouteTables", net_describe_route_tables, TENANT_API},
    {"network.default_vpc", net_default_vpc_id, BUS_P_GATEWAY | BUS_P_OPERATOR},   /* DescribeAccountAttributes' default-vpc */
    /* for compute's instances (ports.c) and the hosts' datapath (desired.c) */
    {"network.port_create", net_port_create, BUS_P_COMPUTE},
    {"network.port_create_many", net_port_create_many, BUS_P_COMPUTE},
    {"network.port_adopt", net_port_adopt, BUS_P_COMPUTE},
    {"network.launch_check", net_launch_check, BUS_P_COMPUTE},
    {"network.addresses_free", net_addresses_free, BUS_P_COMPUTE},   /* enis.c */
    {"network.launch_interfaces", net_launch_interfaces, BUS_P_COMPUTE},   /* attachments.c */
    {"network.port_set_groups", net_port_set_groups, BUS_P_COMPUTE},
    {"network.port_plug", net_port_plug, BUS_P_COMPUTE},
    {"network.port_unplug", net_port_unplug, BUS_P_COMPUTE},
    {"network.port_delete", net_port_delete, BUS_P_COMPUTE},
    {"network.instance_public_ip", net_instance_public_ip, BUS_P_COMPUTE},
    {"network.host_desired", net_host_desired, BUS_P_COMPUTE | BUS_P_AGENT},
    {"network.vpcs_exist", net_vpcs_exist, BUS_P_AGENT},   /* an agent's idle VPCs (vpcs.c) */
    /* compute's copy of its instances' interfaces (its pull), ModifyInstanceAttribute
     * SourceDestCheck (instance_enis.c) */
    {"network.instance_interfaces", net_instance_interfaces, BUS_P_COMPUTE},
    {"network.interface_digest", net_interface_digest, BUS_P_COMPUTE},
    {"network.instance_source_dest_check", net_instance_source_dest_check, BUS_P_COMPUTE},
    {"network.instance_interface_count", net_instance_interface_count, BUS_P_COMPUTE},   /* interface_limit.c */
    {"network.interface_limit_set", net_interface_limit_set, BUS_P_COMPUTE},             /* interface_limit.c */
    /* the operator's view of every account (admin.c) */
    {"network.admin_list", net_admin_list, BUS_P_OPERATOR},
    {"network.admin_show", net_admin_show, BUS_P_OPERATOR},
    {NULL, NULL, 0},
};

static int init(service_t *svc, verr_t *e)
{
    /* the public DNS names of public addresses, as compute names them (DescribeNetworkInterfaces) */
    public_dns_configure(config_str(svc->cfg, "region", "us-east-1"),
                         config_str(svc->cfg, "public_dns_domain", "compute.virga.internal"));
    return host_events_start(svc, e) < 0 ? -1 : instance_eni_events_start(svc, e);
}
static void fini(service_t *svc)
{
    (void)svc;
    instance_eni_events_stop();
    host_events_stop();
}

int main(int argc, char **argv)
{
    static const service_def_t def = {
        .name = "network",
        .makes_calls = 1,
        .schema = "network",
        .routes = routes,
        .init = init,
        .fini = fini,
    };
    return service_main(argc, argv, &def);
}
