/* sg_rule.c - see sg_rule.h. */
#include "sg_rule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cidr.h"
#include "jsonutil.h"

static const struct {
    const char *name, *number;
} protocols[] = {
    {"tcp", "6"}, {"udp", "17"}, {"icmp", "1"}, {"-1", "-1"}, {"-1", "all"},
};

const char *sg_protocol(const char *in, char buf[8])
{
    if (!in || !*in)
        return NULL;
    for (size_t i = 0; i < sizeof protocols / sizeof protocols[0]; i++)
        if (!strcasecmp(in, protocols[i].name) || !strcasecmp(in, protocols[i].number))
            return protocols[i].name;
    char *end;
    long n = strtol(in, &end, 10);
    if (*end || n < 0 || n > 255)
        return NULL;
    snprintf(buf, 8, "%ld", n);
    return buf;
}

/* A port value: query parameters arrive as strings, JSON callers may send numbers. */
static int port_of(const json_t *perm, const char *key, long *out, int *given)
{
    json_t *v = json_object_get(perm, key);
    *given = v != NULL;
    if (!v) {
        *out = -1;
        return 0;
    }
    if (json_is_integer(v)) {
        *out = (long)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    char *end;
    const char *s = json_string_value(v);
    *out = strtol(s, &end, 10);
    return *s && !*end && *out >= -1 && *out <= 65535 ? 0 : -1;
}

static int ports(const char *proto, const json_t *perm, long *from, long *to, verr_t *e)
{
    int has_from, has_to;
    if (port_of(perm, "FromPort", from, &has_from) < 0 || port_of(perm, "ToPort", to, &has_to) < 0)
        return verr_set(e, 400, "InvalidParameterValue", "FromPort and ToPort are integers from -1 to 65535");
    if (!strcmp(proto, "tcp") || !strcmp(proto, "udp")) {
        if (!has_from || !has_to || *from < 0 || *to < 0 || *from > *to)
            return verr_set(e, 400, "InvalidParameterValue",
                            "Invalid value for portRange. Must specify both from and to ports with TCP/UDP "
                            "(0 to 65535, from <= to).");
        return 0;
    }
    if (!strcmp(proto, "icmp")) {
        if (!has_from)
            *from = -1;
        if (!has_to)
            *to = -1;
        if (*from > 255 || *to > 255 || (*from == -1 && *to != -1))
            return verr_set(e, 400, "InvalidParameterValue",
                            "Invalid ICMP type/code: type and code are -1 (any) or 0..255; a code needs a type");
        return 0;
    }
    *from = *to = -1;   /* all protocols, or one without ports: EC2 ignores what was sent */
    return 0;
}

static json_t *rule(const char *proto, long from, long to, const char *key, const char *val, const char *desc)
{
    json_t *r = json_pack("{s:s, s:I, s:I, s:s, s:s}", "protocol", proto, "from_port", (json_int_t)from, "to_port",
                          (json_int_t)to, key, val, "description", desc ? desc : "");
    return r;
}

static int valid_description(const char *d, verr_t *e)
{
    if (d && strlen(d) > 255)
        return verr_set(e, 400, "InvalidParameterValue", "A rule description is at most 255 characters");
    return 0;
}

int sg_rules_from_permission(const json_t *perm, json_t *out, verr_t *e)
{
    char buf[8];
    const char *in = json_str(perm, "IpProtocol", NULL);
    const char *proto = sg_protocol(in, buf);
    if (!in)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter ipProtocol");
    if (!proto)
        return verr_set(e, 400, "InvalidParameterValue", "Invalid value '%.32s' for IP protocol. Unknown protocol.", in);
    long from, to;
    if (ports(proto, perm, &from, &to, e) < 0)
        return -1;
    size_t before = json_array_size(out), i;
    json_t *x;
    json_array_foreach(json_object_get(perm, "IpRanges"), i, x) {
        const char *c = json_str(x, "CidrIp", NULL);
        cidr_t cc;
        if (!c || cidr_parse(c, &cc) < 0)
            return verr_set(e, 400, "InvalidParameterValue", "CIDR block %.64s is malformed", c ? c : "(missing)");
        const char *d = json_str(x, "Description", "");
        if (valid_description(d, e) < 0)
            return -1;
        json_array_append_new(out, rule(proto, from, to, "cidr", c, d));
    }
    json_array_foreach(json_object_get(perm, "Groups"), i, x) {
        const char *id = json_str(x, "GroupId", NULL), *name = json_str(x, "GroupName", NULL);
        const char *d = json_str(x, "Description", "");
        if (!id && !name)
            return verr_set(e, 400, "InvalidParameterValue", "A group reference needs GroupId or GroupName");
        if (valid_description(d, e) < 0)
            return -1;
        json_array_append_new(out, rule(proto, from, to, id ? "group_id" : "group_name", id ? id : name, d));
    }
    if (json_array_size(json_object_get(perm, "Ipv6Ranges")) || json_array_size(json_object_get(perm, "PrefixListIds")))
        return verr_set(e, 400, "InvalidParameterValue", "IPv6 ranges and prefix lists are not supported");
    if (json_array_size(out) == before)
        return verr_set(e, 400, "InvalidPermission.Malformed",
                        "A permission needs at least one source or destination: IpRanges or Groups");
    return 0;
}

json_t *sg_rules_from_request(const json_t *body, verr_t *e)
{
    json_t *out = json_array(), *p;
    size_t i;
    json_array_foreach(json_object_get(body, "IpPermissions"), i, p) {
        if (sg_rules_from_permission(p, out, e) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    /* the flat parameters: one permission, the source a CIDR or a group by name */
    const char *cidr = json_str(body, "CidrIp", NULL), *src = json_str(body, "SourceSecurityGroupName", NULL);
    if (cidr || src || json_object_get(body, "IpProtocol")) {
        JSON_AUTO json_t *perm = json_object();
        const char *keys[] = {"IpProtocol", "FromPort", "ToPort"};
        for (size_t k = 0; k < 3; k++)
            if (json_object_get(body, keys[k]))
                json_object_set(perm, keys[k], json_object_get(body, keys[k]));
        if (!json_object_get(perm, "IpProtocol") && src)
            json_object_set_new(perm, "IpProtocol", json_string("-1"));   /* a group given alone: all traffic */
        if (cidr)
            json_object_set_new(perm, "IpRanges", json_pack("[{s:s}]", "CidrIp", cidr));
        if (src)
            json_object_set_new(perm, "Groups", json_pack("[{s:s}]", "GroupName", src));
        if (sg_rules_from_permission(perm, out, e) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    if (!json_array_size(out)) {
        json_decref(out);
        verr_set(e, 400, "MissingParameter", "The request must contain the parameter IpPermissions");
        return NULL;
    }
    return out;
}
