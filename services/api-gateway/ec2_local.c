/* ec2_local.c - the EC2 actions the gateway answers from its own configuration:
 * DescribeRegions, DescribeAvailabilityZones, DescribeAccountAttributes (the last asks
 * identity for the account's quotas and the network service for its default VPC). */
#include <stdio.h>
#include <string.h>

#include "describe.h"
#include "gateway.h"
#include "jsonutil.h"
#include "zones.h"

/* Keep items whose field is one of the names in params[list] (RegionName.N etc.);
 * a requested name that does not exist is an error, as in EC2. */
static json_t *select_named(json_t *items, const json_t *params, const char *list, const char *field,
                            const char *err_code, verr_t *e)
{
    const char *missing = NULL;
    json_t *out = describe_select(items, params, list, field, &missing);
    if (!out)
        verr_set(e, 400, err_code, "The value '%s' for %s is not valid.", missing, list);
    return out;
}

static json_t *finish(json_t *items, const json_t *params, const describe_field_t *fields, const char *list,
                      const char *field, const char *err_code, verr_t *e)
{
    json_t *named = select_named(items, params, list, field, err_code, e);
    json_decref(items);
    if (!named)
        return NULL;
    json_t *out = describe_filter(named, json_object_get(params, "Filter"), fields, e);
    json_decref(named);
    return out;
}

int ec2_describe_regions(gw_req_t *r, json_t **result, verr_t *e)
{
    static const describe_field_t fields[] = {
        {"region-name", "regionName"}, {"endpoint", "regionEndpoint"}, {"opt-in-status", "optInStatus"}, {NULL, NULL}};
    const char *host = r->host;
    json_t *items = json_pack("[{s:s, s:s, s:s}]", "regionName", r->gw->region, "regionEndpoint",
                              host ? host : "127.0.0.1", "optInStatus", "opt-in-not-required");
    json_t *out = finish(items, r->params, fields, "RegionName", "regionName", "InvalidParameterValue", e);
    if (!out)
        return -1;
    *result = json_pack("{s:o}", "regionInfo", out);
    return 0;
}

int ec2_describe_availability_zones(gw_req_t *r, json_t **result, verr_t *e)
{
    static const describe_field_t fields[] = {
        {"zone-name", "zoneName"}, {"zone-id", "zoneId"}, {"state", "zoneState"}, {"region-name", "regionName"},
        {"zone-type", "zoneType"}, {"group-name", "groupName"}, {"opt-in-status", "optInStatus"}, {NULL, NULL}};
    json_t *items = json_array();
    char *zones = xstrdup(r->gw->zones), *save = NULL;
    int n = 0;
    for (char *z = strtok_r(zones, ",", &save); z; z = strtok_r(NULL, ",", &save)) {
        char zid[96];
        zone_id(r->gw->region, ++n, zid, sizeof zid);
        json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[]}", "zoneName", z,
                                               "zoneId", zid, "zoneState", "available", "regionName", r->gw->region,
                                               "zoneType", "availability-zone", "groupName", r->gw->region,
                                               "networkBorderGroup", r->gw->region, "optInStatus", "opt-in-not-required",
                                               "messageSet"));
    }
    free(zones);
    json_t *out = finish(items, r->params, fields, "ZoneName", "zoneName", "InvalidParameterValue", e);
    if (!out)
        return -1;
    *result = json_pack("{s:o}", "availabilityZoneInfo", out);
    return 0;
}

/* Both answers in: the quotas (identity) and the default VPC (network). */
static void account_attributes_done(gw_req_t *r, void *arg, json_t **replies, const verr_t *errs, size_t n)
{
    (void)arg;
    (void)n;
    json_t *quota = replies[0], *vpc = replies[1];
    for (int i = 0; i < 2; i++)
        if (!replies[i]) {
            json_decref(quota);
            json_decref(vpc);
            gw_finish(r, -1, NULL, &errs[i]);
            return;
        }
    char default_vpc[64];
    snprintf(default_vpc, sizeof default_vpc, "%s", json_str(vpc, "vpcId", "none"));
    json_decref(vpc);
    json_t *q = json_object_get(quota, "quotas");
    char inst[32], eips[32];
    snprintf(inst, sizeof inst, "%lld", (long long)json_int(q, "instances", 0));
    snprintf(eips, sizeof eips, "%lld", (long long)json_int(q, "elastic_ips", 0));
    struct { const char *name, *value; } attrs[] = {
        {"supported-platforms", "VPC"}, {"default-vpc", default_vpc}, {"max-instances", inst},
        {"max-elastic-ips", eips}, {"vpc-max-elastic-ips", eips}, {"vpc-max-security-groups-per-interface", "5"},
    };
    json_t *items = json_array();
    for (size_t i = 0; i < ARRAY_LEN(attrs); i++)
        json_array_append_new(items, json_pack("{s:s, s:[{s:s}]}", "attributeName", attrs[i].name,
                                               "attributeValueSet", "attributeValue", attrs[i].value));
    json_decref(quota);
    verr_t e = {0};
    json_t *out = select_named(items, r->params, "AttributeName", "attributeName", "InvalidParameterValue", &e);
    json_decref(items);
    if (!out)
        gw_finish(r, -1, NULL, &e);
    else
        gw_finish(r, 0, json_pack("{s:o}", "accountAttributeSet", out), NULL);
}

/* The account's quotas from identity and its default VPC from the network service
 * (which makes it on first use), asked at once, holding no thread. */
int ec2_describe_account_attributes(gw_req_t *r, json_t **result, verr_t *e)
{
    (void)result;
    (void)e;
    static const char *const services[] = {"identity", "network"};
    static const char *const types[] = {"identity.quota_get", "network.default_vpc"};
    json_t *bodies[] = {json_pack("{s:s}", "account_id", json_str(r->caller, "account_id", "")), NULL};
    gw_fanout(r, 2, services, types, bodies, account_attributes_done, NULL);
    return GW_ASYNC;
}
