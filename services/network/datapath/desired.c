/* desired.c - parse and validate the per-host desired-state document.
 *
 * Every string that later reaches a command line, an interface name or an nftables script
 * is checked here against a narrow shape, so the drivers and renderers can trust it. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datapath.h"
#include "jsonutil.h"

#define BAD(e, ...) verr_set(e, 400, "InvalidParameterValue", __VA_ARGS__)

/* ids: letters, digits, '-' and '_' (eni-0abc, sg-0aa1, host-1). */
static int valid_id(const char *s)
{
    if (!*s || strlen(s) >= DP_NAME_MAX) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_') return 0;
    return 1;
}

static int valid_ip4(const char *s)
{
    struct in_addr a;
    return strlen(s) < 48 && inet_pton(AF_INET, s, &a) == 1;
}

/* a.b.c.d/n (n 0..32) */
static int valid_cidr4(const char *s, int *plen)
{
    char buf[48];
    if (strlen(s) >= sizeof buf) return 0;
    strcpy(buf, s);
    char *slash = strchr(buf, '/');
    if (!slash) return 0;
    *slash = 0;
    char *end;
    long n = strtol(slash + 1, &end, 10);
    if (*end || end == slash + 1 || n < 0 || n > 32 || !valid_ip4(buf)) return 0;
    if (plen) *plen = (int)n;
    return 1;
}

static int valid_mac(const char *s)
{
    if (strlen(s) != 17) return 0;
    for (int i = 0; i < 17; i++) {
        if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i])) return 0;
    }
    return 1;
}

static int copy_str(const json_t *o, const char *key, char *dst, size_t cap, int required,
                    const char *what, verr_t *e)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required) return BAD(e, "%s: missing %s", what, key);
        dst[0] = 0;
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return BAD(e, "%s: %s is not a string of at most %zu characters", what, key, cap - 1);
    strcpy(dst, json_string_value(v));
    return 0;
}

/* A JSON array of strings, each checked by `ok`. */
static int str_list(const json_t *o, const char *key, char ***out, size_t *n,
                    int (*ok)(const char *), const char *what, verr_t *e)
{
    const json_t *a = json_object_get(o, key);
    *out = NULL;
    *n = 0;
    if (!a || json_is_null(a)) return 0;
    if (!json_is_array(a)) return BAD(e, "%s: %s is not a list", what, key);
    *out = xcalloc(json_array_size(a) + 1, sizeof(char *));
    size_t i;
    const json_t *v;
    json_array_foreach(a, i, v) {
        if (!json_is_string(v) || !ok(json_string_value(v)))
            return BAD(e, "%s: %s[%zu] is not valid", what, key, i);
        (*out)[(*n)++] = xstrdup(json_string_value(v));
    }
    return 0;
}

static int ok_cidr(const char *s) { return valid_cidr4(s, NULL); }

/* The subnet's routes through an interface (target eni-..., with its next hop); routes
 * to local or a gateway are the router's default behaviour and skipped. */
static int parse_routes(const json_t *s, dp_subnet_t *sn, verr_t *e)
{
    const json_t *a = json_object_get(s, "routes"), *r;
    size_t i;
    if (a && !json_is_array(a)) return BAD(e, "subnet %s: routes is not a list", sn->subnet_id);
    sn->routes = xcalloc(json_array_size(a) + 1, sizeof *sn->routes);
    json_array_foreach(a, i, r) {
        if (strncmp(json_str(r, "target", ""), "eni-", 4)) continue;
        dp_route_t *rt = &sn->routes[sn->n_routes++];
        if (copy_str(r, "destination", rt->dest, sizeof rt->dest, 1, sn->subnet_id, e) < 0 ||
            copy_str(r, "next_hop", rt->via, sizeof rt->via, 1, sn->subnet_id, e) < 0 ||
            copy_str(r, "next_hop_mac", rt->mac, sizeof rt->mac, 1, sn->subnet_id, e) < 0)
            return -1;
        if (!valid_cidr4(rt->dest, NULL) || !valid_ip4(rt->via) || !valid_mac(rt->mac))
            return BAD(e, "subnet %s: a route needs a destination, next_hop and next_hop_mac", sn->subnet_id);
        for (char *p = rt->mac; *p; p++) *p = (char)tolower((unsigned char)*p);
    }
    return 0;
}

static int parse_vpc(const json_t *o, dp_vpc_t *v, verr_t *e)
{
    if (copy_str(o, "vpc_id", v->vpc_id, sizeof v->vpc_id, 1, "vpc", e) < 0) return -1;
    if (!valid_id(v->vpc_id)) return BAD(e, "vpc: invalid vpc_id");
    json_int_t vni = json_integer_value(json_object_get(o, "vni"));
    if (vni < 1 || vni > 16777215) return BAD(e, "%s: vni must be 1..16777215", v->vpc_id);
    v->vni = (unsigned)vni;
    if (copy_str(o, "cidr", v->cidr, sizeof v->cidr, 1, v->vpc_id, e) < 0) return -1;
    if (!valid_cidr4(v->cidr, NULL)) return BAD(e, "%s: invalid cidr", v->vpc_id);
    if (str_list(o, "peers", &v->peers, &v->n_peers, valid_ip4, v->vpc_id, e) < 0) return -1;
    const json_t *a = json_object_get(o, "subnets");
    if (a && !json_is_array(a)) return BAD(e, "%s: subnets is not a list", v->vpc_id);
    v->subnets = xcalloc(json_array_size(a) + 1, sizeof *v->subnets);
    size_t i;
    const json_t *s;
    json_array_foreach(a, i, s) {
        dp_subnet_t *sn = &v->subnets[v->n_subnets++];
        if (copy_str(s, "subnet_id", sn->subnet_id, sizeof sn->subnet_id, 1, "subnet", e) < 0 ||
            copy_str(s, "cidr", sn->cidr, sizeof sn->cidr, 1, "subnet", e) < 0 ||
            copy_str(s, "gateway", sn->gateway, sizeof sn->gateway, 1, "subnet", e) < 0 ||
            copy_str(s, "dns", sn->dns, sizeof sn->dns, 0, "subnet", e) < 0)
            return -1;
        if (!valid_id(sn->subnet_id) || !valid_cidr4(sn->cidr, &sn->prefix_len) ||
            !valid_ip4(sn->gateway) || (sn->dns[0] && !valid_ip4(sn->dns)))
            return BAD(e, "subnet %s: invalid id, cidr, gateway or dns", sn->subnet_id);
        if (parse_routes(s, sn, e) < 0) return -1;
    }
    return 0;
}

static int parse_iface(const dp_desired_t *d, const json_t *o, dp_iface_t *f, verr_t *e)
{
    if (copy_str(o, "eni_id", f->eni_id, sizeof f->eni_id, 1, "interface", e) < 0 ||
        copy_str(o, "vpc_id", f->vpc_id, sizeof f->vpc_id, 1, "interface", e) < 0 ||
        copy_str(o, "subnet_id", f->subnet_id, sizeof f->subnet_id, 1, "interface", e) < 0 ||
        copy_str(o, "mac", f->mac, sizeof f->mac, 1, "interface", e) < 0 ||
        copy_str(o, "ip", f->ip, sizeof f->ip, 1, "interface", e) < 0 ||
        copy_str(o, "device", f->device, sizeof f->device, 1, "interface", e) < 0 ||
        copy_str(o, "public_ip", f->public_ip, sizeof f->public_ip, 0, "interface", e) < 0 ||
        copy_str(o, "device_kind", f->kind, sizeof f->kind, 0, "interface", e) < 0)
        return -1;
    if (!f->kind[0]) strcpy(f->kind, "veth");
    if (strcmp(f->kind, "veth") && strcmp(f->kind, "tap"))
        return BAD(e, "%s: device_kind must be veth or tap", f->eni_id);
    if (!valid_id(f->eni_id)) return BAD(e, "interface: invalid eni_id");
    if (!valid_mac(f->mac)) return BAD(e, "%s: invalid mac", f->eni_id);
    for (char *p = f->mac; *p; p++) *p = (char)tolower((unsigned char)*p);
    if (!valid_ip4(f->ip)) return BAD(e, "%s: invalid ip", f->eni_id);
    if (f->public_ip[0] && !valid_ip4(f->public_ip)) return BAD(e, "%s: invalid public_ip", f->eni_id);
    if (strncmp(f->device, "vt-", 3) != 0 || !valid_id(f->device) || strlen(f->device) > 15)
        return BAD(e, "%s: device must be vt-... of at most 15 characters", f->eni_id);
    json_int_t pl = json_integer_value(json_object_get(o, "prefix_len"));
    if (pl < 1 || pl > 30) return BAD(e, "%s: prefix_len must be 1..30", f->eni_id);
    f->prefix_len = (int)pl;
    if (str_list(o, "groups", &f->groups, &f->n_groups, valid_id, f->eni_id, e) < 0) return -1;
    /* optional, default on (as on EC2) */
    int sdc = 1;
    if (json_bool_strict(o, "source_dest_check", 1, &sdc) < 0)
        return BAD(e, "%s: source_dest_check must be true or false", f->eni_id);
    f->no_sdcheck = !sdc;
    const json_t *att = json_object_get(o, "attach");
    if (att && !json_is_null(att)) {
        if (copy_str(att, "parent", f->parent, sizeof f->parent, 1, f->eni_id, e) < 0) return -1;
        json_int_t di = json_integer_value(json_object_get(att, "device_index"));
        if (!valid_id(f->parent) || di < 1 || di > 15 || strcmp(f->kind, "veth"))
            return BAD(e, "%s: attach needs a parent interface and a device_index 1..15, on a veth", f->eni_id);
        f->device_index = (int)di;
    }
    f->vpc = dp_desired_vpc(d, f->vpc_id);
    if (!f->vpc) return verr_set(e, 400, "InvalidVpcID.NotFound", "%s: vpc %s not in the document", f->eni_id, f->vpc_id);
    for (size_t i = 0; i < f->vpc->n_subnets; i++)
        if (!strcmp(f->vpc->subnets[i].subnet_id, f->subnet_id)) f->subnet = &f->vpc->subnets[i];
    if (!f->subnet) return verr_set(e, 400, "InvalidSubnetID.NotFound", "%s: subnet %s not in its vpc", f->eni_id, f->subnet_id);
    return 0;
}

/* An attached interface joins its parent's stand-in namespace: the parent is a primary
 * veth of this document, and no two interfaces share one of its device indexes. */
static int check_attached(const dp_desired_t *d, verr_t *e)
{
    for (size_t i = 0; i < d->n_ifaces; i++) {
        const dp_iface_t *f = &d->ifaces[i], *p = NULL;
        if (!f->parent[0]) continue;
        for (size_t k = 0; k < d->n_ifaces; k++) {
            if (!strcmp(d->ifaces[k].eni_id, f->parent)) p = &d->ifaces[k];
            if (k != i && !strcmp(d->ifaces[k].parent, f->parent) && d->ifaces[k].device_index == f->device_index)
                return BAD(e, "%s: device index %d of %s is taken", f->eni_id, f->device_index, f->parent);
        }
        if (!p || p->parent[0] || strcmp(p->kind, "veth"))
            return BAD(e, "%s: its parent %s is not a primary veth interface of this host", f->eni_id, f->parent);
    }
    return 0;
}

static int parse_rules(const json_t *a, dp_rule_t **out, size_t *n, const char *gid, verr_t *e)
{
    static const char *const protos[] = {"-1", "tcp", "udp", "icmp"};
    *out = xcalloc(json_array_size(a) + 1, sizeof **out);
    *n = 0;
    if (a && !json_is_array(a)) return BAD(e, "%s: rules are not a list", gid);
    size_t i;
    const json_t *r;
    json_array_foreach(a, i, r) {
        dp_rule_t *ru = &(*out)[(*n)++];
        if (copy_str(r, "protocol", ru->protocol, sizeof ru->protocol, 1, gid, e) < 0) return -1;
        int known = 0;
        for (size_t k = 0; k < ARRAY_LEN(protos); k++) known |= !strcmp(protos[k], ru->protocol);
        if (!known) return BAD(e, "%s: protocol %s is not -1, tcp, udp or icmp", gid, ru->protocol);
        ru->from_port = (int)json_int(r, "from_port", -1);
        ru->to_port = (int)json_int(r, "to_port", -1);
        int maxp = strcmp(ru->protocol, "icmp") ? 65535 : 255;
        if (ru->from_port < -1 || ru->from_port > maxp || ru->to_port < -1 || ru->to_port > maxp ||
            (strcmp(ru->protocol, "icmp") && ru->from_port > ru->to_port))
            return BAD(e, "%s: invalid port range %d-%d", gid, ru->from_port, ru->to_port);
        if (str_list(r, "cidrs", &ru->cidrs, &ru->n_cidrs, ok_cidr, gid, e) < 0 ||
            str_list(r, "groups", &ru->groups, &ru->n_groups, valid_id, gid, e) < 0)
            return -1;
    }
    return 0;
}

const dp_vpc_t *dp_desired_vpc(const dp_desired_t *d, const char *vpc_id)
{
    for (size_t i = 0; i < d->n_vpcs; i++)
        if (!strcmp(d->vpcs[i].vpc_id, vpc_id)) return &d->vpcs[i];
    return NULL;
}

static int parse_doc(const json_t *doc, dp_desired_t *d, verr_t *e)
{
    if (!json_is_object(doc)) return BAD(e, "the document is not a JSON object");
    if (copy_str(doc, "host", d->host, sizeof d->host, 1, "document", e) < 0) return -1;
    if (!valid_id(d->host) || strlen(d->host) > 24) return BAD(e, "invalid host name");
    d->generation = json_int(doc, "generation", 0);
    if (copy_str(doc, "underlay_ip", d->underlay_ip, sizeof d->underlay_ip, 1, d->host, e) < 0) return -1;
    if (!valid_ip4(d->underlay_ip)) return BAD(e, "%s: invalid underlay_ip", d->host);
    d->underlay_prefix_len = (int)json_int(doc, "underlay_prefix_len", 16);
    if (d->underlay_prefix_len < 8 || d->underlay_prefix_len > 30) return BAD(e, "invalid underlay_prefix_len");

    const json_t *a = json_object_get(doc, "vpcs");
    d->vpcs = xcalloc(json_array_size(a) + 1, sizeof *d->vpcs);
    size_t i;
    const json_t *o;
    json_array_foreach(a, i, o) {
        if (parse_vpc(o, &d->vpcs[d->n_vpcs++], e) < 0) return -1;
        for (size_t k = 0; k + 1 < d->n_vpcs; k++)
            if (d->vpcs[k].vni == d->vpcs[i].vni || !strcmp(d->vpcs[k].vpc_id, d->vpcs[i].vpc_id))
                return BAD(e, "vpc %s: duplicate vni or vpc_id", d->vpcs[i].vpc_id);
    }
    a = json_object_get(doc, "interfaces");
    d->ifaces = xcalloc(json_array_size(a) + 1, sizeof *d->ifaces);
    json_array_foreach(a, i, o) {
        if (parse_iface(d, o, &d->ifaces[d->n_ifaces++], e) < 0) return -1;
        for (size_t k = 0; k + 1 < d->n_ifaces; k++)
            if (!strcmp(d->ifaces[k].eni_id, d->ifaces[i].eni_id) ||
                !strcmp(d->ifaces[k].device, d->ifaces[i].device) ||
                !strcmp(d->ifaces[k].mac, d->ifaces[i].mac))
                return BAD(e, "interface %s: duplicate eni_id, device or mac", d->ifaces[i].eni_id);
    }
    if (check_attached(d, e) < 0) return -1;
    a = json_object_get(doc, "security_groups");
    d->groups = xcalloc(json_array_size(a) + 1, sizeof *d->groups);
    json_array_foreach(a, i, o) {
        dp_group_t *g = &d->groups[d->n_groups++];
        if (copy_str(o, "group_id", g->group_id, sizeof g->group_id, 1, "group", e) < 0) return -1;
        if (!valid_id(g->group_id)) return BAD(e, "invalid group_id");
        if (parse_rules(json_object_get(o, "ingress"), &g->ingress, &g->n_ingress, g->group_id, e) < 0 ||
            parse_rules(json_object_get(o, "egress"), &g->egress, &g->n_egress, g->group_id, e) < 0)
            return -1;
    }
    const json_t *m = json_object_get(doc, "group_members");
    if (m && !json_is_object(m)) return BAD(e, "group_members is not an object");
    d->members = xcalloc(json_object_size(m) + 1, sizeof *d->members);
    const char *gid;
    json_object_foreach((json_t *)m, gid, o) {
        dp_members_t *mm = &d->members[d->n_members++];
        if (!valid_id(gid)) return BAD(e, "group_members: invalid group id");
        strcpy(mm->group_id, gid);
        json_t *wrap = json_pack("{sO}", "m", o);
        int rc = str_list(wrap, "m", &mm->addrs, &mm->n_addrs, valid_ip4, gid, e);
        json_decref(wrap);
        if (rc < 0) return -1;
    }
    const json_t *out = json_object_get(doc, "outside");
    if (out && !json_is_null(out) &&
        copy_str(out, "public_cidr", d->public_cidr, sizeof d->public_cidr, 0, "outside", e) < 0)
        return -1;
    if (d->public_cidr[0] && !valid_cidr4(d->public_cidr, NULL)) return BAD(e, "outside: invalid public_cidr");
    return 0;
}

dp_desired_t *dp_desired_parse(const char *json_text, verr_t *e)
{
    JSON_AUTO json_t *doc = json_parse_bounded(json_text, strlen(json_text), 16 << 20);
    if (!doc) {
        BAD(e, "the document is not valid JSON");
        return NULL;
    }
    dp_desired_t *d = xcalloc(1, sizeof *d);
    if (parse_doc(doc, d, e) < 0) {
        dp_desired_free(d);
        return NULL;
    }
    return d;
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static void free_rules(dp_rule_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free_strs(r[i].cidrs, r[i].n_cidrs);
        free_strs(r[i].groups, r[i].n_groups);
    }
    free(r);
}

void dp_desired_free(dp_desired_t *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->n_vpcs; i++) {
        free_strs(d->vpcs[i].peers, d->vpcs[i].n_peers);
        for (size_t k = 0; k < d->vpcs[i].n_subnets; k++) free(d->vpcs[i].subnets[k].routes);
        free(d->vpcs[i].subnets);
    }
    free(d->vpcs);
    for (size_t i = 0; i < d->n_ifaces; i++) free_strs(d->ifaces[i].groups, d->ifaces[i].n_groups);
    free(d->ifaces);
    for (size_t i = 0; i < d->n_groups; i++) {
        free_rules(d->groups[i].ingress, d->groups[i].n_ingress);
        free_rules(d->groups[i].egress, d->groups[i].n_egress);
    }
    free(d->groups);
    for (size_t i = 0; i < d->n_members; i++) free_strs(d->members[i].addrs, d->members[i].n_addrs);
    free(d->members);
    free(d);
}
