/* launch_port_tags.c - RunInstances' TagSpecification of `network-interface`: EC2 tags
 * the interfaces the launch makes. RunInstances keeps the tags in the launch task's
 * payload ("eni_tags", run_instances.c); the task, once the network made the ports (the
 * primary's, and those of NetworkInterface.N beyond it), tags them through the network's
 * own CreateTags as the launching account, before it records the launch as prepared: a
 * launch whose answer the tenant has sees its interfaces tagged. Interfaces that existed
 * before the launch (NetworkInterfaceId) keep their own tags, as on EC2. A retry (the
 * task taken again after a crash) tags again with the same values: CreateTags replaces a
 * key's value, so it repeats safely. The ports are made by the network's port calls,
 * untouched: the tags come after. */
#include <string.h>

#include "compute.h"
#include "jsonutil.h"

/* Whether eni is one of the existing interfaces the payload's "interfaces" names. */
static int given(const json_t *payload, const char *eni)
{
    size_t i;
    const json_t *x;
    json_array_foreach(json_object_get(payload, "interfaces"), i, x)
        if (!strcmp(json_str(x, "eni", ""), eni))
            return 1;
    return 0;
}

int launch_tag_ports(service_t *svc, int timeout_ms, const char *account, const char *adopted_primary,
                     const json_t *port, const json_t *more, const json_t *payload, verr_t *e)
{
    const json_t *tags = json_object_get(payload, "eni_tags");
    if (!json_array_size(tags))
        return 0;
    JSON_AUTO json_t *ids = json_array();
    if (!adopted_primary && *json_str(port, "eni_id", ""))
        json_array_append_new(ids, json_string(json_str(port, "eni_id", "")));
    size_t i;
    const json_t *p;
    json_array_foreach(more, i, p) {
        const char *eni = json_str(p, "eni_id", "");
        if (*eni && !given(payload, eni))
            json_array_append_new(ids, json_string(eni));
    }
    if (!json_array_size(ids))
        return 0;
    json_t *tag = json_array();   /* the tagSet's {key, value} as CreateTags' Tag.N */
    const json_t *t;
    json_array_foreach(tags, i, t)
        json_array_append_new(tag, json_pack("{s:s, s:s}", "Key", json_str(t, "key", ""), "Value",
                                             json_str(t, "value", "")));
    JSON_AUTO json_t *caller = json_pack("{s:s}", "account_id", account);
    JSON_AUTO json_t *reply = NULL;
    return bus_call(svc->bus, "network", "network.CreateTags", json_pack("{s:O, s:o}", "ResourceId", ids, "Tag", tag),
                    caller, timeout_ms, &reply, e);
}
