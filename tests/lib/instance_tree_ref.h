/* instance_tree_ref.h - DescribeInstances' former item builder (services/compute/
 * describe_instances.c before the items were written as text), a jansson tree per
 * instance, kept for the tests as the reference that services/compute/instance_json.c
 * must match member for member (tests/unit/test_instance_json.c). Ported from a
 * PGresult row to instance_row_t (PQgetvalue's "" for NULL is ref_col), with the members
 * added since: public DNS names, and the fixed members at the end (docs/api.md, sweep11). */
#ifndef VIRGA_TESTS_INSTANCE_TREE_REF_H
#define VIRGA_TESTS_INSTANCE_TREE_REF_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "describe.h"
#include "instance_json.h"
#include "instance_state.h"
#include "jsonutil.h"
#include "public_dns.h"

static inline const char *ref_col(const instance_row_t *r, int k) { return r->v[k] ? r->v[k] : ""; }

static inline void ref_private_dns(const char *ip, char *out, size_t n)
{
    char dashed[64];
    snprintf(dashed, sizeof dashed, "%s", ip);
    for (char *s = dashed; *s; s++)
        if (*s == '.')
            *s = '-';
    snprintf(out, n, "ip-%s.ec2.internal", dashed);
}

static inline json_t *ref_public_address_interface(json_t *iface, const char *ip, const char *owner)
{
    if (!iface || !ip || !*ip)
        return iface;
    char dns[320];
    public_dns_name(ip, dns, sizeof dns);
    json_t *assoc = json_pack("{s:s, s:s, s:s}", "publicIp", ip, "ipOwnerId", owner ? owner : "", "publicDnsName", dns);
    json_t *primary = json_array_get(json_object_get(iface, "privateIpAddressesSet"), 0);
    if (primary)
        json_object_set(primary, "association", assoc);
    json_object_set_new(iface, "association", assoc);
    return iface;
}

static inline void ref_public_address_instance(json_t *item)
{
    json_t *primary = json_array_get(json_object_get(item, "networkInterfaceSet"), 0);
    json_t *assoc = json_object_get(primary, "association");
    json_t *ip = json_object_get(assoc, "publicIp");
    if (ip) {
        json_object_set(item, "ipAddress", ip);
        json_object_set(item, "dnsName", json_object_get(assoc, "publicDnsName"));
    }
}

typedef struct ref_iface {
    const char *eni, *subnet, *vpc, *mac, *ip, *description, *attachment;
    const char *public_ip, *public_owner;
    long long index, attach_time;
    int sdc;
    json_t *groups;
} ref_iface_t;

static inline json_t *ref_interface_item(const ref_iface_t *f, const char *owner, const char *launched)
{
    char dns[96], att[96], when[32];
    if (f->attach_time > 0)
        describe_time(f->attach_time, when);
    ref_private_dns(f->ip, dns, sizeof dns);
    snprintf(att, sizeof att, "eni-attach-%s", strlen(f->eni) > 4 ? f->eni + 4 : f->eni);
    return ref_public_address_interface(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:O, "
                     "s:{s:s, s:I, s:s, s:s, s:b, s:i}, s:[{s:s, s:s, s:b}]}",
                     "networkInterfaceId", f->eni, "subnetId", f->subnet, "vpcId", f->vpc, "description",
                     f->description, "ownerId", owner, "status", "in-use", "macAddress", f->mac, "privateIpAddress",
                     f->ip, "privateDnsName", dns, "sourceDestCheck", f->sdc, "groupSet", f->groups, "attachment",
                     "attachmentId", *f->attachment ? f->attachment : att, "deviceIndex", (json_int_t)f->index,
                     "status", "attached", "attachTime", f->attach_time > 0 ? when : launched, "deleteOnTermination",
                     f->index == 0, "networkCardIndex", 0, "privateIpAddressesSet", "privateIpAddress", f->ip,
                     "privateDnsName", dns, "primary", 1),
                                        f->public_ip, f->public_owner);
}

static inline json_t *ref_attached_item(const json_t *f, const char *owner, const char *launched)
{
    json_t *sdc = json_object_get(f, "sdc");
    const ref_iface_t x = {.eni = json_str(f, "eni", ""), .subnet = json_str(f, "subnet", ""),
                           .vpc = json_str(f, "vpc", ""), .mac = json_str(f, "mac", ""), .ip = json_str(f, "ip", ""),
                           .description = json_str(f, "description", ""), .attachment = json_str(f, "attachment", ""),
                           .index = json_int(f, "index", 0), .attach_time = json_int(f, "attach_time", 0),
                           .sdc = !sdc || json_is_true(sdc), .groups = json_object_get(f, "groups"),
                           .public_ip = json_str(f, "public_ip", ""), .public_owner = json_str(f, "public_owner", "")};
    return ref_interface_item(&x, owner, launched);
}

static inline void ref_burst_fields(json_t *it, const instance_row_t *r)
{
    const char *cloud = ref_col(r, IR_CLOUD), *rid = ref_col(r, IR_REMOTE_ID), *pub = ref_col(r, IR_REMOTE_PUBLIC_IP),
               *priv = ref_col(r, IR_REMOTE_PRIVATE_IP);
    if (!strcmp(cloud, "private"))
        return;
    json_t *tags = json_copy(json_object_get(it, "tagSet"));
    json_array_append_new(tags, json_pack("{s:s, s:s}", "key", "virga:cloud", "value", cloud));
    if (*rid)
        json_array_append_new(tags, json_pack("{s:s, s:s}", "key", "virga:remote-instance-id", "value", rid));
    json_object_set_new(it, "tagSet", tags);
    const char *addr = *pub ? pub : priv;
    if (*addr)
        json_object_set_new(it, "ipAddress", json_string(addr));
    json_object_set_new(it, "dnsName", json_string(""));
}

/* The item with its hidden fields (_reservationId, _ownerId, _hostUp). */
static inline json_t *ref_item(const instance_row_t *r, json_t *t)
{
    const char *id = ref_col(r, IR_ID), *state = ref_col(r, IR_STATE), *owner = ref_col(r, IR_ACCOUNT);
    char when[32];
    long long launched = atoll(ref_col(r, IR_LAUNCH_TIME));
    describe_time(launched, when);
    (void)id;
    json_t *it = json_pack(
        "{s:s, s:s, s:{s:i, s:s}, s:s, s:s, s:i, s:[], s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s}, s:s, s:s, s:s, "
        "s:s, s:s, s:O, s:b, s:b, s:{s:i, s:i}, s:s, s:s, s:s, s:s, s:b}",
        "instanceId", id, "imageId", ref_col(r, IR_IMAGE), "instanceState", "code", instance_state_code(state), "name",
        state, "privateDnsName", "", "dnsName", "", "amiLaunchIndex", atoi(ref_col(r, IR_LAUNCH_INDEX)), "productCodes",
        "instanceType", ref_col(r, IR_TYPE), "launchTime", when, "placement", "availabilityZone",
        ref_col(r, IR_ZONE), "groupName", "", "tenancy", "default", "monitoring", "state", "disabled",
        "architecture", "x86_64", "rootDeviceType", "instance-store", "rootDeviceName", "/dev/vda",
        "virtualizationType", "hvm", "hypervisor", "xen", "tagSet", t ? t : json_array(), "ebsOptimized", 0,
        "enaSupport", 1, "cpuOptions", "coreCount", atoi(ref_col(r, IR_VCPUS)), "threadsPerCore", 1, "reason",
        ref_col(r, IR_TRANSITION), "platformDetails", "Linux/UNIX", "_reservationId", ref_col(r, IR_RESERVATION),
        "_ownerId", owner, "_hostUp", ref_col(r, IR_HOST_UP)[0] == 't');
    if (!t)
        json_decref(json_object_get(it, "tagSet"));
    if (r->v[IR_KEY_NAME])
        json_object_set_new(it, "keyName", json_string(r->v[IR_KEY_NAME]));
    if (r->v[IR_KERNEL])
        json_object_set_new(it, "kernelId", json_string(r->v[IR_KERNEL]));
    if (r->v[IR_RAMDISK])
        json_object_set_new(it, "ramdiskId", json_string(r->v[IR_RAMDISK]));
    if (*ref_col(r, IR_CLIENT_TOKEN))
        json_object_set_new(it, "clientToken", json_string(ref_col(r, IR_CLIENT_TOKEN)));
    const char *reason = ref_col(r, IR_STATE_REASON);
    if (*reason) {
        const char *colon = strstr(reason, ": ");
        json_object_set_new(it, "stateReason",
                            json_pack("{s:s%, s:s}", "code", reason, colon ? (size_t)(colon - reason) : strlen(reason),
                                      "message", colon ? colon + 2 : reason));
    }
    json_t *set = json_array();
    if (r->v[IR_ENI]) {
        const char *ip = ref_col(r, IR_IP);
        json_t *groups = json_loads(ref_col(r, IR_GROUPS), 0, NULL);
        if (!groups)
            groups = json_array();
        const ref_iface_t f = {.eni = r->v[IR_ENI], .subnet = ref_col(r, IR_SUBNET), .vpc = ref_col(r, IR_VPC),
                               .mac = ref_col(r, IR_MAC), .ip = ip, .description = ref_col(r, IR_DESCRIPTION),
                               .attachment = ref_col(r, IR_ATTACHMENT), .sdc = ref_col(r, IR_SDC)[0] == 't',
                               .groups = groups, .public_ip = ref_col(r, IR_PUBLIC_IP),
                               .public_owner = ref_col(r, IR_PUBLIC_OWNER)};
        json_array_append_new(set, ref_interface_item(&f, owner, when));
        char dns[96];
        ref_private_dns(ip, dns, sizeof dns);
        json_object_set_new(it, "privateIpAddress", json_string(ip));
        json_object_set_new(it, "privateDnsName", json_string(dns));
        json_object_set_new(it, "subnetId", json_string(f.subnet));
        json_object_set_new(it, "vpcId", json_string(f.vpc));
        json_object_set(it, "groupSet", groups);
        json_object_set_new(it, "sourceDestCheck", json_boolean(f.sdc));
        json_decref(groups);
    }
    if (r->v[IR_ATTACHED]) {
        JSON_AUTO json_t *more = json_loads(r->v[IR_ATTACHED], 0, NULL);
        size_t k;
        json_t *f;
        json_array_foreach(more, k, f)
            json_array_append_new(set, ref_attached_item(f, owner, when));
    }
    json_object_set_new(it, "networkInterfaceSet", set);
    ref_public_address_instance(it);
    ref_burst_fields(it, r);
    if (!json_object_get(it, "groupSet"))
        json_object_set_new(it, "groupSet", json_array());
    json_object_set_new(it, "metadataOptions",
                        json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "state", "applied", "httpTokens",
                                  r->v[IR_MD_TOKENS] ? r->v[IR_MD_TOKENS] : "optional", "httpPutResponseHopLimit",
                                  (json_int_t)(r->v[IR_MD_HOP_LIMIT] ? atoll(r->v[IR_MD_HOP_LIMIT]) : 1),
                                  "httpEndpoint", ref_col(r, IR_MD_OFF)[0] == 't' ? "disabled" : "enabled",
                                  "httpProtocolIpv6", "disabled", "instanceMetadataTags",
                                  ref_col(r, IR_MD_TAGS)[0] == 't' ? "enabled" : "disabled"));
    json_object_set_new(it, "blockDeviceMapping", json_array());
    json_object_set_new(it, "usageOperation", json_string("RunInstances"));
    json_object_set_new(it, "usageOperationUpdateTime", json_string(when));
    json_object_set_new(it, "privateDnsNameOptions",
                        json_pack("{s:s, s:b, s:b}", "hostnameType", "ip-name", "enableResourceNameDnsARecord", 0,
                                  "enableResourceNameDnsAAAARecord", 0));
    json_object_set_new(it, "maintenanceOptions", json_pack("{s:s}", "autoRecovery", "disabled"));
    json_object_set_new(it, "hibernationOptions", json_pack("{s:b}", "configured", 0));
    json_object_set_new(it, "enclaveOptions", json_pack("{s:b}", "enabled", 0));
    json_object_set_new(it, "capacityReservationSpecification", json_pack("{s:s}", "capacityReservationPreference", "open"));
    return it;
}

#endif
