/* run_params_supported.c - RunInstances' parameters this cloud does not honour. The
 * gateway passes on every parameter EC2 defines, and a launch that went on without one the
 * tenant asked for (a Spot request launched on demand, a 100 GiB root volume asked and the
 * image's disk given, an instance profile whose credentials never come) would look like success
 * and be something else. So a parameter is either honoured, harmless to ignore (listed
 * below as allowed), or refused with `Unsupported` naming it, before anything is recorded.
 * Parameters not in the table are the ones the handler reads (ImageId, Placement's zone,
 * NetworkInterfaces, ...). */
#include <stdio.h>
#include <string.h>

#include "compute.h"
#include "jsonutil.h"

typedef struct rule {
    const char *param;    /* the request's key, as the gateway names it (query form) */
    const char *member;   /* a member of that structure; NULL: the parameter's own value */
    const char *allowed;  /* '|'-separated values accepted; "*" any; NULL none (present = refused) */
    const char *what;     /* what the tenant asked for, in the error */
} rule_t;

static const rule_t rules[] = {
    {"BlockDeviceMapping", NULL, NULL, "block device mappings (an instance has its image's disk; there are no volumes)"},
    {"Ipv6Address", NULL, NULL, "IPv6 addresses"},
    {"Ipv6AddressCount", NULL, "0", "IPv6 addresses"},
    {"EnablePrimaryIpv6", NULL, "false", "IPv6 addresses"},
    {"KernelId", NULL, NULL, "a kernel other than the image's"},
    {"RamdiskId", NULL, NULL, "a ramdisk other than the image's"},
    {"IamInstanceProfile", NULL, NULL, "instance profiles (IAM roles for instances)"},
    {"ElasticGpuSpecification", NULL, NULL, "elastic GPUs"},
    {"ElasticInferenceAccelerator", NULL, NULL, "elastic inference accelerators"},
    {"LicenseSpecification", NULL, NULL, "license configurations"},
    {"LaunchTemplate", NULL, NULL, "launch templates"},
    {"InstanceMarketOptions", NULL, NULL, "Spot instances (every instance here is on demand)"},
    {"CpuOptions", NULL, NULL, "CPU options (cores and threads come from the instance type)"},
    {"SecondaryInterface", NULL, NULL, "secondary interfaces"},
    {"NetworkPerformanceOptions", NULL, NULL, "network performance options"},
    {"Operator", NULL, NULL, "managed instances"},
    {"DisableApiStop", NULL, "false", "stop protection"},
    {"InstanceInitiatedShutdownBehavior", NULL, "stop", "terminate on instance-initiated shutdown"},
    /* hints that change nothing a tenant sees here */
    {"EbsOptimized", NULL, "*", NULL},
    {"AdditionalInfo", NULL, "*", NULL},
    {"CreditSpecification", "CpuCredits", "*", NULL},
    {"MaintenanceOptions", "AutoRecovery", "*", NULL},
    {"Monitoring", "Enabled", "false", "detailed monitoring"},
    {"HibernationOptions", "Configured", "false", "hibernation"},
    {"EnclaveOptions", "Enabled", "false", "Nitro enclaves"},
    {"CapacityReservationSpecification", "CapacityReservationPreference", "open|none", "capacity reservations"},
    {"PrivateDnsNameOptions", "HostnameType", "ip-name", "resource-name hostnames"},
    {"PrivateDnsNameOptions", "EnableResourceNameDnsARecord", "false", "resource-name DNS records"},
    {"PrivateDnsNameOptions", "EnableResourceNameDnsAAAARecord", "false", "resource-name DNS records"},
    {"Placement", "AvailabilityZone", "*", NULL},
    {"Placement", "Tenancy", "default", "dedicated tenancy"},
    {"Placement", "GroupName", "", "placement groups"},
    /* honoured (metadata_options.c), which also refuses IPv6 turned on */
    {"MetadataOptions", "HttpEndpoint", "*", NULL},
    {"MetadataOptions", "HttpTokens", "*", NULL},
    {"MetadataOptions", "HttpPutResponseHopLimit", "*", NULL},
    {"MetadataOptions", "HttpProtocolIpv6", "*", NULL},
    {"MetadataOptions", "InstanceMetadataTags", "*", NULL},
};

static int one_of(const char *allowed, const char *v)
{
    if (!strcmp(allowed, "*"))
        return 1;
    size_t vl = strlen(v);
    for (const char *s = allowed;;) {
        size_t n = strcspn(s, "|");
        if (n == vl && !strncmp(s, v, n))
            return 1;
        if (!s[n])
            return 0;
        s += n + 1;
    }
}

static const char *value_text(const json_t *v, char *buf, size_t size)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v))
        snprintf(buf, size, "%lld", (long long)json_integer_value(v));
    else
        snprintf(buf, size, "%s", json_is_true(v) ? "true" : json_is_false(v) ? "false" : "(a structure)");
    return buf;
}

static int check(const rule_t *r, const char *name, const json_t *v, verr_t *e)
{
    char buf[32];
    const char *s = value_text(v, buf, sizeof buf);
    if (r->allowed && one_of(r->allowed, s))
        return 0;
    return verr_set(e, 400, "Unsupported", "%s%s%.64s%s is not supported here: %s", name, r->allowed ? " '" : "",
                    r->allowed ? s : "", r->allowed ? "'" : "", r->what);
}

/* TagSpecification's resource types that EC2 takes at launch and this cloud has not or
 * does not tag at launch: Unsupported naming it, not the "not a valid taggable resource
 * type" of a type EC2 itself refuses (a script copied from EC2's examples tags its
 * volumes, and that answer told it its request was wrong). */
static const struct {
    const char *type, *what;
} launch_tag_types[] = {
    {"volume", "tags on volumes (an instance has its image's disk; there are no volumes)"},
    {"spot-instances-request", "Spot instance requests"},
    {"elastic-gpu", "elastic GPUs"},
};

static int tag_types_supported(const json_t *specs, verr_t *e)
{
    size_t i;
    const json_t *spec;
    json_array_foreach(specs, i, spec) {
        const char *type = json_str(spec, "ResourceType", "");
        for (size_t k = 0; k < sizeof launch_tag_types / sizeof launch_tag_types[0]; k++)
            if (!strcmp(type, launch_tag_types[k].type))
                return verr_set(e, 400, "Unsupported", "TagSpecification.%zu.ResourceType '%s' is not supported here: %s",
                                i + 1, type, launch_tag_types[k].what);
    }
    return 0;
}

int run_params_supported(const json_t *body, verr_t *e)
{
    if (tag_types_supported(json_object_get(body, "TagSpecification"), e) < 0)
        return -1;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const rule_t *r = &rules[i];
        if (i && !strcmp(rules[i - 1].param, r->param))
            continue;   /* a structure's rules are read together, at its first */
        const json_t *v = json_object_get(body, r->param);
        if (!v)
            continue;
        if (!r->member) {
            if (check(r, r->param, v, e) < 0)
                return -1;
            continue;
        }
        if (!json_is_object(v))
            return verr_set(e, 400, "InvalidParameterValue", "%s must be a structure", r->param);
        const char *key;
        const json_t *m;
        json_object_foreach((json_t *)v, key, m) {
            const rule_t *found = NULL;
            for (size_t j = i; j < sizeof rules / sizeof rules[0] && !strcmp(rules[j].param, r->param) && !found; j++)
                if (!strcmp(rules[j].member, key))
                    found = &rules[j];
            char name[128];
            snprintf(name, sizeof name, "%s.%s", r->param, key);
            if (!found)
                return verr_set(e, 400, "Unsupported", "%.100s is not supported here", name);
            if (check(found, name, m, e) < 0)
                return -1;
        }
    }
    return 0;
}
