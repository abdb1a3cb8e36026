/* launch_network.c - the network part of RunInstances: SubnetId, SecurityGroupIds,
 * SecurityGroups (names, default VPC), PrivateIpAddress, or the same given as the primary
 * entry of NetworkInterfaces (DeviceIndex 0: SubnetId, Groups, PrivateIpAddress,
 * AssociatePublicIpAddress, which port_create obeys over the subnet's
 * MapPublicIpOnLaunch), and the entries beyond it (DeviceIndex 1..15: new interfaces, or
 * existing ones by NetworkInterfaceId, which the launch task has the network attach after
 * the primary: launch_net_more_ports), or an existing interface as the primary (its
 * subnet, VPC, zone, address and groups are the instance's; the launch task adopts it:
 * network.port_adopt); then checked against the network's data as compute
 * holds it (launch_facts_network: network.launch_check's answer), so an unknown subnet or
 * group is the EC2 error of RunInstances itself, names become ids and a given subnet
 * decides the zone. The launch task's port_create stays the last word (an address taken
 * meanwhile, a group deleted since). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
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

/* DeviceIndex as the Query API sends it (a string) or a JSON number. */
static int device_index_of(const json_t *x, long *out, verr_t *e)
{
    const json_t *v = json_object_get(x, "DeviceIndex");
    char *end = NULL;
    if (json_is_integer(v))
        *out = (long)json_integer_value(v);
    else if (json_is_string(v) && *json_string_value(v))
        *out = strtol(json_string_value(v), &end, 10);
    else
        return verr_set(e, 400, "InvalidParameterValue", "Each network interface requires a device index.");
    if ((end && *end) || *out < 0 || *out >= LAUNCH_NET_MAX_IFACES)
        return verr_set(e, 400, "InvalidParameterValue", "Value for parameter DeviceIndex is invalid: a device index "
                        "is 0 to %d", LAUNCH_NET_MAX_IFACES - 1);
    return 0;
}

/* "true"/"false" (the Query API's) or a JSON boolean: 1, 0, or def when absent. */
static int flag_of(const json_t *x, const char *k, int def, int *out, verr_t *e)
{
    if (json_bool_strict(x, k, def, out) < 0) {
        const char *s = json_string_value(json_object_get(x, k));
        return verr_set(e, 400, "InvalidParameterValue", "%s must be true or false, not %.16s", k, s ? s : "?");
    }
    return 0;
}

/* An entry's members: what is honoured, and what is accepted only at the one value that
 * changes nothing here (anything else is refused, naming it, rather than ignored). */
static const struct {
    const char *key, *only;   /* only: the one accepted value; NULL: honoured */
    const char *what;
} entry_keys[] = {
    {"DeviceIndex", NULL, NULL},
    {"NetworkInterfaceId", NULL, NULL},
    {"SubnetId", NULL, NULL},
    {"SecurityGroupId", NULL, NULL},
    {"PrivateIpAddress", NULL, NULL},
    {"PrivateIpAddresses", NULL, NULL},
    {"Description", NULL, NULL},
    {"DeleteOnTermination", NULL, NULL},
    {"AssociatePublicIpAddress", NULL, NULL},
    {"SecondaryPrivateIpAddressCount", "0", "secondary private IPv4 addresses (an interface has one address)"},
    {"NetworkCardIndex", "0", "network cards other than 0"},
    {"InterfaceType", "interface", "interface types other than interface"},
    {"Ipv6AddressCount", "0", "IPv6 addresses"},
};

static int entry_members_known(const json_t *x, verr_t *e)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)x, k, v) {
        size_t i = 0;
        while (i < ARRAY_LEN(entry_keys) && strcmp(entry_keys[i].key, k))
            i++;
        if (i == ARRAY_LEN(entry_keys))
            return verr_set(e, 400, "Unsupported", "NetworkInterfaces: %.64s is not supported", k);
        const char *s = json_string_value(v);
        char num[24];
        if (json_is_integer(v))
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        if (entry_keys[i].only && strcmp(json_is_integer(v) ? num : s ? s : "", entry_keys[i].only))
            return verr_set(e, 400, "Unsupported", "NetworkInterfaces: %s is not supported: %s", k, entry_keys[i].what);
    }
    return 0;
}

/* PrivateIpAddresses: one address, the primary (an interface here has no secondary ones);
 * with PrivateIpAddress too, the same one. */
static int primary_address(const json_t *x, const char **ip, verr_t *e)
{
    const json_t *list = json_object_get(x, "PrivateIpAddresses");
    if (!list)
        return 0;
    const json_t *a = json_array_get(list, 0);
    int primary = 1;
    if (json_array_size(list) == 1 && flag_of(a, "Primary", 1, &primary, e) < 0)
        return -1;
    if (json_array_size(list) != 1 || !primary)
        return verr_set(e, 400, "Unsupported", "NetworkInterfaces: PrivateIpAddresses is not supported beyond the "
                        "primary address (an interface has one address)");
    const char *one = json_str(a, "PrivateIpAddress", NULL);
    if (!one)
        return verr_set(e, 400, "MissingParameter", "PrivateIpAddresses: the entry needs a PrivateIpAddress");
    if (*ip && strcmp(*ip, one))
        return verr_set(e, 400, "InvalidParameterCombination", "PrivateIpAddress %.64s and the primary of "
                        "PrivateIpAddresses %.64s differ", *ip, one);
    *ip = one;
    return 0;
}

/* One entry, checked for form, into the primary's fields (index 0) or a launch_nic_t. */
static int entry(const json_t *x, size_t count, int max_count, launch_net_t *n, long idx, verr_t *e)
{
    launch_nic_t c = {.index = idx, .eni = json_str(x, "NetworkInterfaceId", NULL),
                      .subnet = json_str(x, "SubnetId", NULL), .private_ip = json_str(x, "PrivateIpAddress", NULL),
                      .description = json_str(x, "Description", NULL), .ids = json_object_get(x, "SecurityGroupId")};
    int pub = -1;
    if (entry_members_known(x, e) < 0 || primary_address(x, &c.private_ip, e) < 0 ||
        flag_of(x, "AssociatePublicIpAddress", -1, &pub, e) < 0 ||
        flag_of(x, "DeleteOnTermination", !c.eni, &c.delete_on_termination, e) < 0 ||
        launch_net_group_ids_valid(c.ids, "NetworkInterfaces.Groups", e) < 0)
        return -1;
    if (pub >= 0 && count > 1)
        return verr_set(e, 400, "InvalidParameterCombination", "The associatePublicIPAddress parameter cannot be "
                        "specified when launching with multiple network interfaces.");
    if (c.description && strlen(c.description) > 255)
        return verr_set(e, 400, "InvalidParameterValue", "NetworkInterfaces: Description is at most 255 characters");
    if (json_array_size(c.ids) > 5)
        return verr_set(e, 400, "SecurityGroupsPerInterfaceLimitExceeded", "At most 5 security groups");
    if (c.subnet && !ids_valid("subnet", c.subnet))
        return verr_set(e, 400, "InvalidSubnetID.Malformed", "Invalid id: \"%.64s\"", c.subnet);
    struct in_addr a;
    if (c.private_ip && inet_pton(AF_INET, c.private_ip, &a) != 1)
        return verr_set(e, 400, "InvalidParameterValue", "Invalid IPv4 address: %.64s", c.private_ip);
    if (c.private_ip && max_count > 1)
        return verr_set(e, 400, "InvalidParameterCombination",
                        "PrivateIpAddress cannot be used when launching more than one instance");
    if (c.eni) {
        if (!ids_valid("eni", c.eni))
            return verr_set(e, 400, "InvalidNetworkInterfaceID.Malformed", "Invalid id: \"%.64s\"", c.eni);
        if (c.subnet || c.private_ip || c.ids || c.description || pub >= 0)
            return verr_set(e, 400, "InvalidParameterCombination", "NetworkInterfaces: an existing interface (%s) "
                            "brings its own subnet, groups, address and description; none may be given with it",
                            c.eni);
        /* EC2's rule and words: only an interface the launch makes may go with the instance */
        if (c.delete_on_termination)
            return verr_set(e, 400, "InvalidParameterCombination", "A network interface may not specify a network "
                            "interface ID and delete on termination as true");
        if (max_count > 1)
            return verr_set(e, 400, "InvalidParameterCombination", "An existing network interface (%s) can be "
                            "attached to one instance only: MaxCount must be 1", c.eni);
    }
    if (idx == 0) {
        n->eni = c.eni;   /* an existing primary: no public address from the pool (EC2 gives it none) */
        n->public_ip = c.eni ? 0 : pub >= 0 ? pub : count > 1 ? 0 : -1;   /* none to a multi-interface launch */
        n->subnet = c.subnet;
        n->private_ip = c.private_ip;
        n->ids = c.ids;
        return 0;
    }
    n->more[n->n_more++] = c;
    return 0;
}

/* NetworkInterfaces: the primary (DeviceIndex 0) and up to 15 more, each index once,
 * instead of the instance-level network parameters. */
static int interfaces(const json_t *body, int max_count, launch_net_t *n, verr_t *e)
{
    const json_t *ni = json_object_get(body, "NetworkInterface");
    size_t count = json_array_size(ni);
    if (!json_is_array(ni) || !count)
        return verr_set(e, 400, "InvalidParameterValue", "NetworkInterfaces must be a list of interfaces");
    if (count > LAUNCH_NET_MAX_IFACES)
        return verr_set(e, 400, "InvalidParameterValue", "NetworkInterfaces: at most %d interfaces",
                        LAUNCH_NET_MAX_IFACES);
    static const struct {
        const char *key, *what;
    } top[] = {{"SubnetId", "subnet ID"}, {"SecurityGroupId", "security groups"}, {"SecurityGroup", "security groups"},
               {"PrivateIpAddress", "private IP address"}};
    for (size_t i = 0; i < ARRAY_LEN(top); i++)
        if (json_object_get(body, top[i].key))
            return verr_set(e, 400, "InvalidParameterCombination",
                            "Network interfaces and an instance-level %s may not be specified on the same request",
                            top[i].what);
    const json_t *at[LAUNCH_NET_MAX_IFACES] = {0};
    size_t i;
    json_t *x;
    json_array_foreach(ni, i, x) {
        long idx = 0;
        if (!json_is_object(x))
            return verr_set(e, 400, "InvalidParameterValue", "NetworkInterfaces: an entry is not a structure");
        if (device_index_of(x, &idx, e) < 0)
            return -1;
        if (at[idx])
            return verr_set(e, 400, "InvalidParameterValue", "Each network interface requires a unique device index.");
        at[idx] = x;
    }
    if (!at[0])
        return verr_set(e, 400, "InvalidParameterValue", "When specifying network interfaces, you must include a "
                        "device at index 0");
    for (long idx = 0; idx < LAUNCH_NET_MAX_IFACES; idx++)
        if (at[idx] && entry(at[idx], count, max_count, n, idx, e) < 0)
            return -1;
    /* one interface, one address, one instance: a second mention would fail only later */
    for (size_t a = 0; a < n->n_more; a++)
        for (size_t b = 0; b <= a; b++) {
            const launch_nic_t *p = &n->more[a], *q = &n->more[b];
            const char *other = b < a ? q->eni : n->eni;   /* b == a: the primary */
            if (p->eni && other && !strcmp(p->eni, other))
                return verr_set(e, 400, "InvalidParameterValue", "NetworkInterfaces: interface %s is given twice",
                                p->eni);
        }
    for (size_t a = 0; a < n->n_more; a++) {
        const char *ip = n->more[a].private_ip;
        int twice = ip && n->private_ip && !strcmp(ip, n->private_ip);
        for (size_t b = 0; ip && b < a; b++)
            twice |= n->more[b].private_ip && !strcmp(ip, n->more[b].private_ip);
        if (twice)
            return verr_set(e, 400, "InvalidParameterValue", "NetworkInterfaces: address %s is given twice", ip);
    }
    return 0;
}

int launch_net_parse(const json_t *body, int max_count, launch_net_t *n, verr_t *e)
{
    memset(n, 0, sizeof *n);
    n->public_ip = -1;
    if (json_object_get(body, "NetworkInterface")) {
        if (interfaces(body, max_count, n, e) < 0)
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

/* An interface beyond the primary, against the network's data: in the primary's VPC and
 * the instance's zone (the first that a subnet or an interface decides). */
static int check_more(bus_ctx_t *ctx, const char *account, const char *vpc, launch_net_t *n, launch_nic_t *c,
                      verr_t *e)
{
    JSON_AUTO json_t *check = json_pack("{s:s}", "account", account);
    if (n->zone[0])
        json_object_set_new(check, "az", json_string(n->zone));
    if (c->eni && network_enis_refuse_in_use(ctx, c->eni, e) < 0)
        return -1;
    if (c->eni)
        json_object_set_new(check, "eni", json_string(c->eni));
    if (c->subnet)
        json_object_set_new(check, "subnet", json_string(c->subnet));
    if (c->private_ip)
        json_object_set_new(check, "private_ip", json_string(c->private_ip));
    if (json_array_size(c->ids))
        json_object_set(check, "groups", (json_t *)c->ids);
    if (launch_facts_network(ctx, account, check, &c->facts, e) < 0)
        return -1;
    const char *v = json_str(c->facts, "vpc_id", "");
    if (strcmp(v, vpc))
        return verr_set(e, 400, "InvalidParameterCombination", "The network interfaces of an instance must be in one "
                        "VPC: DeviceIndex %ld is in %s, the primary in %s", c->index, v, vpc);
    if (!n->zone[0])
        snprintf(n->zone, sizeof n->zone, "%s", json_str(c->facts, "az", ""));
    return 0;
}

int launch_net_check(bus_ctx_t *ctx, const char *account, const char *zone, launch_net_t *n, verr_t *e)
{
    JSON_AUTO json_t *check = json_pack("{s:s}", "account", account);
    if (zone)
        json_object_set_new(check, "az", json_string(zone));
    /* an existing primary: compute's copy says at once that it is attached; the
     * network's answer is its subnet, VPC, zone and address (in use: refused) */
    if (n->eni && network_enis_refuse_in_use(ctx, n->eni, e) < 0)
        return -1;
    if (n->eni)
        json_object_set_new(check, "eni", json_string(n->eni));
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
    snprintf(n->subnet_id, sizeof n->subnet_id, "%s", json_str(out, "subnet_id", ""));
    snprintf(n->vpc_id, sizeof n->vpc_id, "%s", json_str(out, "vpc_id", ""));
    json_t *defaults = json_object_get(out, "default_subnets");   /* a network of before: none */
    if (!n->subnet && json_is_object(defaults))
        n->default_subnets = json_incref(defaults);
    snprintf(n->eni_ip, sizeof n->eni_ip, "%s", n->eni ? json_str(out, "ip", "") : "");
    /* what was asked, as ids; none asked: the task's port gets the VPC's default group
     * (an existing primary keeps its own) */
    n->group_ids = json_array_size(n->ids) || json_array_size(n->names) ? json_incref(g) : json_array();
    n->groups = json_incref(json_object_get(out, "groups"));
    /* an address asked in the default subnet pins its zone, where port_create takes that
     * subnet; an existing primary is where it is */
    if (n->subnet || n->private_ip || n->eni || zone)
        snprintf(n->zone, sizeof n->zone, "%s", n->subnet || n->private_ip || n->eni ? json_str(out, "az", "") : zone);
    for (size_t i = 0; i < n->n_more; i++)
        if (check_more(ctx, account, json_str(out, "vpc_id", ""), n, &n->more[i], e) < 0)
            return -1;
    if (!n->subnet && !n->private_ip && !n->eni && !n->n_more)   /* the zone stays the scheduler's choice */
        n->zone[0] = 0;
    return 0;
}

const char *launch_net_subnet_in(const launch_net_t *n, const char *zone)
{
    /* a subnet given; else the default one of the zone the instance was placed in (or a
     * later interface decided), which port_create takes; a network of before that lists
     * no default subnets: the one its check used */
    if (!n->subnet && n->default_subnets)   /* none there (a public cloud's zone): not said */
        return json_str(n->default_subnets, zone, NULL);
    return *n->subnet_id ? n->subnet_id : NULL;
}

/* One interface of RunInstances' answer as far as it is known before its port exists
 * (instance_json.c writes the whole one once it does). */
static json_t *answer_interface(const char *eni, const char *subnet, const char *vpc, const char *ip,
                                const char *description, const char *owner, long index, int delete_on_termination)
{
    json_t *x = json_object();
    if (eni)
        json_object_set_new(x, "networkInterfaceId", json_string(eni));
    if (subnet)
        json_object_set_new(x, "subnetId", json_string(subnet));
    json_object_set_new(x, "vpcId", json_string(vpc));
    json_object_set_new(x, "description", json_string(description ? description : ""));
    json_object_set_new(x, "ownerId", json_string(owner));
    json_object_set_new(x, "status", json_string("in-use"));
    if (ip)
        json_object_set_new(x, "privateIpAddress", json_string(ip));
    json_object_set_new(x, "sourceDestCheck", json_true());
    json_object_set_new(x, "attachment", json_pack("{s:I, s:s, s:b, s:i}", "deviceIndex", (json_int_t)index, "status",
                                                   "attaching", "deleteOnTermination", delete_on_termination,
                                                   "networkCardIndex", 0));
    return x;
}

void launch_net_answer(const launch_net_t *n, json_t *instance, const char *owner)
{
    if (json_object_get(instance, "subnetId") || !*n->vpc_id)
        return;
    const char *subnet = launch_net_subnet_in(n, json_str(json_object_get(instance, "placement"), "availabilityZone",
                                                          ""));
    const char *ip = n->eni ? (*n->eni_ip ? n->eni_ip : NULL) : n->private_ip;
    if (ip)
        json_object_set_new(instance, "privateIpAddress", json_string(ip));
    if (subnet)
        json_object_set_new(instance, "subnetId", json_string(subnet));
    json_object_set_new(instance, "vpcId", json_string(n->vpc_id));
    json_t *set = json_array();
    json_array_append_new(set, answer_interface(n->eni, subnet, n->vpc_id, ip, NULL, owner, 0, !n->eni));
    /* the groups its port will have, as DescribeInstances shows them once it exists (an
     * existing primary keeps its own, which the answer does not know) */
    if (!n->eni && json_array_size(n->groups)) {
        json_object_set(instance, "groupSet", n->groups);
        json_object_set(json_array_get(set, 0), "groupSet", n->groups);
    }
    for (size_t i = 0; i < n->n_more; i++) {
        const launch_nic_t *c = &n->more[i];
        json_array_append_new(set, answer_interface(c->eni, json_str(c->facts, "subnet_id", NULL), n->vpc_id,
                                                    c->private_ip, c->description, owner, c->index,
                                                    c->delete_on_termination));
    }
    json_object_set_new(instance, "networkInterfaceSet", set);
}

int launch_net_claim(db_t *db, const char *instance, const launch_net_t *n, verr_t *e)
{
    if (!n->eni)
        return 0;
    const char *p[] = {n->eni, instance};
    PG_AUTO PGresult *r = db_prepared(db, e, "lnet_claimed", "SELECT id FROM instances WHERE primary_eni = $1 AND "
                                      "state <> 'terminated' AND id <> $2", 2, p);
    if (!r)
        return -1;
    if (PQntuples(r))
        return verr_set(e, 400, "InvalidNetworkInterface.InUse", "Interface %s is currently in use by %s.", n->eni,
                        PQgetvalue(r, 0, 0));
    PG_AUTO PGresult *u = db_prepared(db, e, "lnet_claim", "UPDATE instances SET primary_eni = $1 WHERE id = $2", 2, p);
    return u ? 0 : -1;
}

/* {subnet, ip} of an address asked, onto list. */
static void address_add(json_t *list, const char *subnet, const char *ip)
{
    if (ip && subnet && *subnet)
        json_array_append_new(list, json_pack("{s:s, s:s}", "subnet", subnet, "ip", ip));
}

json_t *launch_net_addresses(const launch_net_t *n)
{
    json_t *list = json_array();
    address_add(list, n->subnet_id, n->private_ip);
    for (size_t i = 0; i < n->n_more; i++)
        address_add(list, json_str(n->more[i].facts, "subnet_id", ""), n->more[i].private_ip);
    if (!json_array_size(list)) {
        json_decref(list);
        return NULL;
    }
    return list;
}

void launch_net_free(launch_net_t *n)
{
    json_decref(n->group_ids);
    n->group_ids = NULL;
    json_decref(n->groups);
    n->groups = NULL;
    json_decref(n->default_subnets);
    n->default_subnets = NULL;
    for (size_t i = 0; i < n->n_more; i++) {
        json_decref(n->more[i].facts);
        n->more[i].facts = NULL;
    }
}

json_t *launch_net_more_doc(const launch_net_t *n)
{
    if (!n->n_more)
        return NULL;
    json_t *list = json_array();
    for (size_t i = 0; i < n->n_more; i++) {
        const launch_nic_t *c = &n->more[i];
        json_t *x = json_pack("{s:I, s:b}", "device_index", (json_int_t)c->index, "delete_on_termination",
                              c->delete_on_termination);
        if (c->eni) {
            json_object_set_new(x, "eni", json_string(c->eni));
        } else {
            /* the subnet the check resolved (a default one when none was named) and the
             * groups asked, as ids (none: the VPC's default group) */
            json_object_set_new(x, "subnet", json_string(json_str(c->facts, "subnet_id", "")));
            json_object_set_new(x, "groups", json_array_size(c->ids) ? json_incref(json_object_get(c->facts,
                                "group_ids")) : json_array());
            json_object_set_new(x, "description", json_string(c->description ? c->description : ""));
            if (c->private_ip)
                json_object_set_new(x, "private_ip", json_string(c->private_ip));
        }
        json_array_append_new(list, x);
    }
    return list;
}

int launch_net_more_ports(service_t *svc, int timeout_ms, const char *instance, const char *account,
                          const json_t *primary_port, const json_t *payload, json_t **ports, verr_t *e)
{
    const json_t *more = json_object_get(payload, "interfaces");
    *ports = NULL;
    if (!json_array_size(more)) {
        *ports = json_array();
        return 0;
    }
    JSON_AUTO json_t *reply = NULL;
    if (bus_call(svc->bus, "network", "network.launch_interfaces",
                 json_pack("{s:s, s:s, s:s, s:O}", "account", account, "instance_id", instance, "primary",
                           json_str(primary_port, "eni_id", ""), "interfaces", more),
                 NULL, timeout_ms, &reply, e) < 0)
        return -1;
    json_t *list = json_object_get(reply, "interfaces");
    *ports = json_is_array(list) ? json_incref(list) : json_array();
    return 0;
}
