/* instance_types.c - the instance types this cloud offers, from config
 * compute.instance_types (a list of "name:vcpus:memory_mib[:max_interfaces]"), and the
 * EC2 actions that describe them: DescribeInstanceTypes and DescribeInstanceTypeOfferings
 * (every type is offered in the region and in each zone of gateway.availability_zones). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "describe.h"
#include "ec2_hypervisor.h"
#include "jsonutil.h"
#include "zones.h"

#define DEFAULT_TYPES "t3.nano:2:512,t3.micro:2:1024,t3.small:2:2048,t3.medium:2:4096," \
                      "m5.large:2:8192,m5.xlarge:4:16384,c5.large:2:4096"

/* A type's network interface limit when its entry names none: AWS's for types of that
 * size (t3.nano and t3.micro 2; the other 2-vCPU types 3; 4 vCPUs 4; up to 16 vCPUs 8; 15
 * beyond), which is what each default type has on AWS. Never past the 16 device indexes
 * an instance has here (launch_network.h). */
static int default_max_enis(const instance_type_t *t)
{
    if (t->vcpus <= 2)
        return t->memory_mib < 2048 ? 2 : 3;
    return t->vcpus <= 4 ? 4 : t->vcpus <= 16 ? 8 : 15;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const instance_type_t *)a)->name, ((const instance_type_t *)b)->name);
}

int instance_types_load(compute_t *c, const config_t *cfg, verr_t *e)
{
    AUTOFREE char *list = xstrdup(config_str(cfg, "compute.instance_types", DEFAULT_TYPES));
    char *save = NULL;
    c->ntypes = 0;
    for (char *tok = strtok_r(list, ", \n", &save); tok; tok = strtok_r(NULL, ", \n", &save)) {
        instance_type_t t = {0};
        char name[64];
        int got = sscanf(tok, "%63[^:]:%d:%lld:%d", name, &t.vcpus, &t.memory_mib, &t.max_enis);
        if (got < 3 || t.vcpus < 1 || t.vcpus > 1024 || t.memory_mib < 16 || t.memory_mib > (1LL << 30) ||
            strlen(name) >= sizeof t.name || (got == 4 && (t.max_enis < 1 || t.max_enis > 16)))
            return verr_set(e, 400, "InvalidParameterValue", "compute.instance_types: '%.64s' is not "
                            "name:vcpus:memory_mib[:max_interfaces 1..16]", tok);
        if (got == 3)
            t.max_enis = default_max_enis(&t);
        if (c->ntypes == COMPUTE_MAX_TYPES)
            return verr_set(e, 400, "InvalidParameterValue", "compute.instance_types: at most %d types",
                            COMPUTE_MAX_TYPES);
        snprintf(t.name, sizeof t.name, "%s", name);
        c->types[c->ntypes++] = t;
    }
    if (!c->ntypes)
        return verr_set(e, 400, "InvalidParameterValue", "compute.instance_types names no type");
    qsort(c->types, (size_t)c->ntypes, sizeof c->types[0], by_name);
    return 0;
}

const instance_type_t *instance_type_find(const compute_t *c, const char *name)
{
    for (int i = 0; name && i < c->ntypes; i++)
        if (!strcmp(c->types[i].name, name))
            return &c->types[i];
    return NULL;
}

/* One type as EC2 shapes it. Its root device type is the one every image and instance
 * here has (instance-store: the disk is the image's copy on the host, no EBS), so a
 * tool matching an image's RootDeviceType to the types finds them (it said ebs). The
 * capabilities EC2 reports and this cloud does not have are said false rather than left
 * out, so that their filters (burstable-performance-supported, hibernation-supported,
 * supported-usage-class, ...) answer what is true here: on-demand only (no Spot), no
 * hibernation (RunInstances refuses HibernationOptions), no CPU credits (a t3's vCPUs
 * are a cgroup's share like any other type's), no auto recovery, no dedicated hosts, no
 * IPv6. */
static json_t *type_item(const instance_type_t *t)
{
    return json_pack("{s:s, s:b, s:b, s:[s], s:s, s:{s:i, s:i, s:i}, s:{s:I}, s:{s:[s]}, s:[s], s:[s], s:b, "
                     "s:{s:s, s:i, s:i, s:i, s:i, s:b}, s:b, s:b, s:b, s:b, s:b}",
                     "instanceType", t->name, "currentGeneration", 1, "freeTierEligible", 0,
                     "supportedUsageClasses", "on-demand", "hypervisor",
                     ec2_hypervisor(EC2_HV_TYPE),
                     "vCpuInfo", "defaultVCpus", t->vcpus, "defaultCores", t->vcpus, "defaultThreadsPerCore", 1,
                     "memoryInfo", "sizeInMiB", (json_int_t)t->memory_mib,
                     "processorInfo", "supportedArchitectures", "x86_64",
                     "supportedVirtualizationTypes", "hvm", "supportedRootDeviceTypes", "instance-store",
                     "instanceStorageSupported", 0, "networkInfo", "enaSupport", "supported",
                     "maximumNetworkInterfaces", t->max_enis, "maximumNetworkCards", 1, "defaultNetworkCardIndex", 0,
                     "ipv4AddressesPerInterface", 1, "ipv6Supported", 0, "bareMetal", 0,
                     "burstablePerformanceSupported", 0, "hibernationSupported", 0, "autoRecoverySupported", 0,
                     "dedicatedHostsSupported", 0);
}

static const describe_field_t type_fields[] = {
    {"instance-type", "instanceType"},
    {"vcpu-info.default-vcpus", "vCpuInfo.defaultVCpus"},
    {"memory-info.size-in-mib", "memoryInfo.sizeInMiB"},
    {"network-info.maximum-network-interfaces", "networkInfo.maximumNetworkInterfaces"},
    {"current-generation", "currentGeneration"},
    {"hypervisor", "hypervisor"},
    {"processor-info.supported-architecture", "processorInfo.supportedArchitectures"},
    {"vcpu-info.default-cores", "vCpuInfo.defaultCores"},
    {"vcpu-info.default-threads-per-core", "vCpuInfo.defaultThreadsPerCore"},
    {"supported-virtualization-type", "supportedVirtualizationTypes"},
    {"supported-root-device-type", "supportedRootDeviceTypes"},
    {"free-tier-eligible", "freeTierEligible"},
    {"bare-metal", "bareMetal"},
    {"instance-storage-supported", "instanceStorageSupported"},
    {"network-info.ena-support", "networkInfo.enaSupport"},
    {"network-info.maximum-network-cards", "networkInfo.maximumNetworkCards"},
    {"network-info.ipv4-addresses-per-interface", "networkInfo.ipv4AddressesPerInterface"},
    {"network-info.ipv6-supported", "networkInfo.ipv6Supported"},
    {"supported-usage-class", "supportedUsageClasses"},
    {"burstable-performance-supported", "burstablePerformanceSupported"},
    {"hibernation-supported", "hibernationSupported"},
    {"auto-recovery-supported", "autoRecoverySupported"},
    {NULL, NULL},
};

int compute_describe_instance_types(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const compute_t *c = compute_of(ctx);
    JSON_AUTO json_t *all = json_array();
    for (int i = 0; i < c->ntypes; i++)
        json_array_append_new(all, type_item(&c->types[i]));
    const char *missing = NULL;
    JSON_AUTO json_t *sel = describe_select(all, body, "InstanceType", "instanceType", &missing);
    if (!sel)
        return verr_set(e, 400, "InvalidInstanceType", "The following supplied instance types do not exist: [%.64s]",
                        missing);
    JSON_AUTO json_t *items = describe_filter(sel, json_object_get(body, "Filter"), type_fields, e);
    if (!items)
        return -1;
    json_t *page, *next;
    if (describe_page(items, body, "instanceType", 5, 100, &page, &next, e) < 0)
        return -1;
    *reply = json_pack("{s:o, s:o*}", "instanceTypeSet", page, "nextToken", next);
    return 0;
}

static const describe_field_t offering_fields[] = {
    {"instance-type", "instanceType"},
    {"location", "location"},
    {NULL, NULL},
};

int compute_describe_instance_type_offerings(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const compute_t *c = compute_of(ctx);
    const char *lt = json_str(body, "LocationType", "region");
    if (strcmp(lt, "region") && strcmp(lt, "availability-zone") && strcmp(lt, "availability-zone-id"))
        return verr_set(e, 400, "InvalidParameterValue", "Value (%.64s) for parameter LocationType is invalid", lt);
    JSON_AUTO json_t *all = json_array();
    for (int i = 0; i < c->ntypes; i++) {
        if (!strcmp(lt, "region")) {
            json_array_append_new(all, json_pack("{s:s, s:s, s:s, s:s}", "instanceType", c->types[i].name,
                                                 "locationType", lt, "location", c->region, "order",
                                                 c->types[i].name));
            continue;
        }
        AUTOFREE char *zones = xstrdup(c->zones);
        char *save = NULL;
        int n = 0;
        for (char *z = strtok_r(zones, ",", &save); z; z = strtok_r(NULL, ",", &save)) {
            char order[160], zid[96];
            zone_id(c->region, ++n, zid, sizeof zid);
            const char *where = strcmp(lt, "availability-zone-id") ? z : zid;
            snprintf(order, sizeof order, "%s/%s", c->types[i].name, where);
            json_array_append_new(all, json_pack("{s:s, s:s, s:s, s:s}", "instanceType", c->types[i].name,
                                                 "locationType", lt, "location", where, "order", order));
        }
    }
    JSON_AUTO json_t *items = describe_filter(all, json_object_get(body, "Filter"), offering_fields, e);
    if (!items)
        return -1;
    json_t *page, *next, *it;
    if (describe_page(items, body, "order", 5, 1000, &page, &next, e) < 0)
        return -1;
    size_t i;
    json_array_foreach(page, i, it)
        json_object_del(it, "order");
    *reply = json_pack("{s:o, s:o*}", "instanceTypeOfferingSet", page, "nextToken", next);
    return 0;
}
