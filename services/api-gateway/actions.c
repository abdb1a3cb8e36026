/* actions.c - the gateway's API, one row per Action: which API it belongs to, who
 * answers it (a local handler or a bus service, which receives "<service>.<Action>"),
 * the parameters it requires, for IAM changes which parameter names the cache entries
 * to drop, and whether it reads or changes and honours a ClientToken (gateway.h). Adding
 * an action touches only this table and its handler. */
#include <string.h>

#include "gateway.h"

static const gw_action_t actions[] = {
    /* EC2: answered by the gateway */
    {API_EC2, "DescribeRegions", NULL, {NULL}, ec2_describe_regions, NULL, GW_READS},
    {API_EC2, "DescribeAvailabilityZones", NULL, {NULL}, ec2_describe_availability_zones, NULL, GW_READS},
    {API_EC2, "DescribeAccountAttributes", NULL, {NULL}, ec2_describe_account_attributes, NULL, GW_READS},
    /* EC2: key pairs live in compute, beside the instances that use them */
    {API_EC2, "CreateKeyPair", "compute", {"KeyName"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "ImportKeyPair", "compute", {"KeyName", "PublicKeyMaterial"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DescribeKeyPairs", "compute", {NULL}, NULL, NULL, GW_READS},
    {API_EC2, "DeleteKeyPair", "compute", {NULL}, NULL, NULL, GW_MUTATES},
    /* EC2: instances, their types and their lifecycle (compute) */
    {API_EC2, "RunInstances", "compute", {"ImageId"}, NULL, NULL, GW_MUTATES | GW_CLIENT_TOKEN},
    {API_EC2, "DescribeInstances", "compute", {NULL}, NULL, NULL, GW_READS},
    {API_EC2, "DescribeInstanceStatus", "compute", {NULL}, NULL, NULL, GW_READS},
    {API_EC2, "StopInstances", "compute", {"InstanceId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "StartInstances", "compute", {"InstanceId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "RebootInstances", "compute", {"InstanceId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "TerminateInstances", "compute", {"InstanceId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "GetConsoleOutput", "compute", {"InstanceId"}, NULL, NULL, GW_READS},
    {API_EC2, "DescribeInstanceAttribute", "compute", {"InstanceId", "Attribute"}, NULL, NULL, GW_READS},
    {API_EC2, "ModifyInstanceAttribute", "compute", {"InstanceId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "ModifyInstanceMetadataOptions", "compute", {"InstanceId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DescribeInstanceTypes", "compute", {NULL}, NULL, NULL, GW_READS},
    {API_EC2, "DescribeInstanceTypeOfferings", "compute", {NULL}, NULL, NULL, GW_READS},
    {API_EC2, "DescribeHosts", "compute", {NULL}, NULL, NULL, GW_READS},
    /* EC2: the image registry */
    {API_EC2, "RegisterImage", "image", {"Name"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DescribeImages", "image", {NULL}, NULL, NULL, GW_READS},
    {API_EC2, "DeregisterImage", NULL, {"ImageId"}, ec2_image_change, NULL, GW_MUTATES},   /* image, then compute */
    {API_EC2, "DescribeImageAttribute", "image", {"ImageId", "Attribute"}, NULL, NULL, GW_READS},
    {API_EC2, "ModifyImageAttribute", NULL, {"ImageId"}, ec2_image_change, NULL, GW_MUTATES},   /* image, then compute */
    {API_EC2, "CopyImage", "image", {"SourceImageId", "SourceRegion", "Name"}, NULL, NULL,
     GW_MUTATES | GW_CLIENT_TOKEN},
    {API_EC2, "ImportImage", "image", {NULL}, NULL, NULL, GW_MUTATES | GW_CLIENT_TOKEN},
    {API_EC2, "DescribeImportImageTasks", "image", {NULL}, NULL, NULL, GW_READS},
    {API_EC2, "CancelImportTask", "image", {"ImportTaskId"}, NULL, NULL, GW_MUTATES},
    /* EC2: an image from an instance's disk: compute checks the instance, then the image service */
    {API_EC2, "CreateImage", NULL, {"InstanceId", "Name"}, ec2_create_image, NULL, GW_MUTATES},
    /* EC2: the network (VPCs, subnets, security groups, interfaces, addresses) */
    {API_EC2, "CreateVpc", "network", {"CidrBlock"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DescribeVpcs", "network", {NULL}, NULL, NULL, GW_READS},
    {API_EC2, "DeleteVpc", "network", {"VpcId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "ModifyVpcAttribute", "network", {"VpcId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DescribeVpcAttribute", "network", {"VpcId", "Attribute"}, NULL, NULL, GW_READS},
    {API_EC2, "CreateSubnet", "network", {"VpcId", "CidrBlock"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DescribeSubnets", "network", {NULL}, NULL, NULL, GW_READS},
    {API_EC2, "DeleteSubnet", "network", {"SubnetId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "ModifySubnetAttribute", "network", {"SubnetId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "CreateSecurityGroup", "network", {"GroupName", "GroupDescription"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DescribeSecurityGroups", "network", {NULL}, NULL, NULL, GW_READS},
    {API_EC2, "DeleteSecurityGroup", "network", {NULL}, NULL, NULL, GW_MUTATES},
    {API_EC2, "AuthorizeSecurityGroupIngress", "network", {NULL}, NULL, NULL, GW_MUTATES},
    {API_EC2, "AuthorizeSecurityGroupEgress", "network", {"GroupId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "RevokeSecurityGroupIngress", "network", {NULL}, NULL, NULL, GW_MUTATES},
    {API_EC2, "RevokeSecurityGroupEgress", "network", {"GroupId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DescribeSecurityGroupRules", "network", {NULL}, NULL, NULL, GW_READS},
    {API_EC2, "CreateNetworkInterface", "network", {"SubnetId"}, NULL, NULL, GW_MUTATES | GW_CLIENT_TOKEN},
    {API_EC2, "DeleteNetworkInterface", "network", {"NetworkInterfaceId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DescribeNetworkInterfaces", "network", {NULL}, NULL, NULL, GW_READS},
    {API_EC2, "AttachNetworkInterface", "network", {"NetworkInterfaceId", "InstanceId", "DeviceIndex"}, NULL, NULL,
     GW_MUTATES},
    {API_EC2, "DetachNetworkInterface", "network", {"AttachmentId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "ModifyNetworkInterfaceAttribute", "network", {"NetworkInterfaceId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DescribeNetworkInterfaceAttribute", "network", {"NetworkInterfaceId", "Attribute"}, NULL, NULL,
     GW_READS},
    {API_EC2, "AllocateAddress", "network", {NULL}, NULL, NULL, GW_MUTATES},
    {API_EC2, "AssociateAddress", "network", {NULL}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DisassociateAddress", "network", {NULL}, NULL, NULL, GW_MUTATES},
    {API_EC2, "ReleaseAddress", "network", {NULL}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DescribeAddresses", "network", {NULL}, NULL, NULL, GW_READS},
    {API_EC2, "CreateInternetGateway", "network", {NULL}, NULL, NULL, GW_MUTATES},
    {API_EC2, "AttachInternetGateway", "network", {"InternetGatewayId", "VpcId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DetachInternetGateway", "network", {"InternetGatewayId", "VpcId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DeleteInternetGateway", "network", {"InternetGatewayId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DescribeInternetGateways", "network", {NULL}, NULL, NULL, GW_READS},
    {API_EC2, "CreateRouteTable", "network", {"VpcId"}, NULL, NULL, GW_MUTATES | GW_CLIENT_TOKEN},
    {API_EC2, "DeleteRouteTable", "network", {"RouteTableId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "CreateRoute", "network", {"RouteTableId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DeleteRoute", "network", {"RouteTableId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "ReplaceRoute", "network", {"RouteTableId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "AssociateRouteTable", "network", {"RouteTableId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DisassociateRouteTable", "network", {"AssociationId"}, NULL, NULL, GW_MUTATES},
    {API_EC2, "DescribeRouteTables", "network", {NULL}, NULL, NULL, GW_READS},
    /* EC2: tags, sent by resource id prefix to the services owning the resources */
    {API_EC2, "CreateTags", NULL, {"ResourceId", "Tag"}, ec2_create_tags, NULL, GW_MUTATES},
    {API_EC2, "DeleteTags", NULL, {"ResourceId"}, ec2_delete_tags, NULL, GW_MUTATES},
    {API_EC2, "DescribeTags", NULL, {NULL}, ec2_describe_tags, NULL, GW_READS},
    /* Virga: showback, the caller's own usage and cost (accounting; docs/api.md) */
    {API_EC2, "DescribeUsage", "accounting", {NULL}, NULL, NULL, GW_READS},
    {API_EC2, "GetInvoice", "accounting", {"Month"}, NULL, NULL, GW_READS},
    /* Virga: the operator's accounts, quotas and services (docs/api.md; the console's
     * operator pages): the operator account only (GW_OPERATOR), then IAM as any action */
    {API_EC2, "DescribeAccounts", "identity", {NULL}, NULL, NULL, GW_READS | GW_OPERATOR},
    {API_EC2, "DescribeAccountQuotas", "identity", {"AccountId"}, NULL, NULL, GW_READS | GW_OPERATOR},
    {API_EC2, "ModifyAccountQuota", "identity", {"AccountId", "Resource", "Value"}, NULL, NULL,
     GW_MUTATES | GW_OPERATOR},
    {API_EC2, "DescribeServiceHealth", NULL, {NULL}, ec2_describe_service_health, NULL, GW_READS | GW_OPERATOR},
    /* IAM subset: identity */
    {API_IAM, "CreateUser", "identity", {"UserName"}, NULL, NULL, GW_MUTATES},
    {API_IAM, "GetUser", "identity", {NULL}, NULL, NULL, GW_READS},
    {API_IAM, "ListUsers", "identity", {NULL}, NULL, NULL, GW_READS},
    {API_IAM, "DeleteUser", "identity", {"UserName"}, NULL, "UserName", GW_MUTATES},
    {API_IAM, "CreateAccessKey", "identity", {NULL}, NULL, NULL, GW_MUTATES},
    {API_IAM, "ListAccessKeys", "identity", {NULL}, NULL, NULL, GW_READS},
    {API_IAM, "UpdateAccessKey", "identity", {"AccessKeyId", "Status"}, NULL, "AccessKeyId", GW_MUTATES},
    {API_IAM, "DeleteAccessKey", "identity", {"AccessKeyId"}, NULL, "AccessKeyId", GW_MUTATES},
    {API_IAM, "PutUserPolicy", "identity", {"UserName", "PolicyName", "PolicyDocument"}, NULL, "UserName", GW_MUTATES},
    {API_IAM, "GetUserPolicy", "identity", {"UserName", "PolicyName"}, NULL, NULL, GW_READS},
    {API_IAM, "ListUserPolicies", "identity", {"UserName"}, NULL, NULL, GW_READS},
    {API_IAM, "DeleteUserPolicy", "identity", {"UserName", "PolicyName"}, NULL, "UserName", GW_MUTATES},
};

const gw_action_t *gw_find_action(gw_api_t api, const char *name)
{
    for (size_t i = 0; name && i < ARRAY_LEN(actions); i++)
        if (actions[i].api == api && !strcmp(actions[i].name, name))
            return &actions[i];
    return NULL;
}

static const gw_action_params_t *model_of(const gw_action_t *a)
{
    for (const gw_action_params_t *p = gw_action_params; p->name; p++)
        if (p->api == a->api && !strcmp(p->name, a->name))
            return p;
    return NULL;
}

const char *const *gw_action_param_names(const gw_action_t *a)
{
    const gw_action_params_t *p = model_of(a);
    return p ? p->params : NULL;
}

static int takes(const char *const *params, const char *name)
{
    for (; *params; params++)
        if (!strcmp(*params, name))
            return 1;
    return 0;
}

/* The table against itself and the API models, at start: a row that would misbehave in
 * production is a service that does not start (and so a failed test). */
int gw_check_actions(verr_t *e)
{
    for (size_t i = 0; i < ARRAY_LEN(actions); i++) {
        const gw_action_t *a = &actions[i];
        const gw_action_params_t *model = model_of(a);
        unsigned kind = a->flags & (GW_READS | GW_MUTATES);
        if (!model)
            return verr_set(e, 500, "InternalError", "action %s has no parameter names: run tools/gen-api-params.py",
                            a->name);
        if (kind != GW_READS && kind != GW_MUTATES)
            return verr_set(e, 500, "InternalError", "action %s must say GW_READS or GW_MUTATES", a->name);
        if ((a->flags & GW_CLIENT_TOKEN) && kind != GW_MUTATES)
            return verr_set(e, 500, "InternalError", "action %s: only a change takes a ClientToken", a->name);
        if ((a->flags & GW_CLIENT_TOKEN) && !takes(model->params, "ClientToken"))
            return verr_set(e, 500, "InternalError", "action %s has no ClientToken parameter", a->name);
        if (model->token && kind == GW_MUTATES && !(a->flags & GW_CLIENT_TOKEN))
            return verr_set(e, 500, "InternalError",
                            "action %s: its model's %s makes SDK retries idempotent; its handler must honour it "
                            "(GW_CLIENT_TOKEN)", a->name, model->token);
    }
    return 0;
}

size_t gw_action_count(void) { return ARRAY_LEN(actions); }

const gw_action_t *gw_action_at(size_t i) { return i < ARRAY_LEN(actions) ? &actions[i] : NULL; }

/* The row's position, or gw_action_count() for NULL (a request whose action is unknown). */
size_t gw_action_index(const gw_action_t *a)
{
    return a && a >= actions && a < actions + ARRAY_LEN(actions) ? (size_t)(a - actions) : ARRAY_LEN(actions);
}
