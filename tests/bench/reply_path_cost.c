/* reply_path_cost.c - CPU time of the reply path of a large answer, each step, old way and
 * new (docs/performance.md, "The reply path of large answers"): a DescribeSecurityGroups
 * answer of N groups shaped as the network writes it (default 1,005, each with an ingress
 * rule, the default egress rule and a tag) in its bus envelope.
 *
 *   serving side: the envelope dumped by jansson (json_dumps) / by json_compact_len
 *   gateway side: the envelope parsed by jansson and the tree walked into XML with xml.h /
 *                 the envelope read in place (json_scan_members) and its body written
 *                 straight into XML (json_xml_members)
 *
 * Both ways give the same bytes (checked). Thread CPU time, so a loaded machine changes
 * the figures little. Bounded: ROUNDS documents each way (default 30).
 *
 *   build/bench/reply_path_cost [GROUPS] [ROUNDS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "json_scan.h"
#include "json_xml.h"
#include "jsonutil.h"
#include "xml.h"

#include "../lib/xml_tree_walk.h"

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static json_t *answer(int groups)
{
    json_t *items = json_array();
    for (int i = 0; i < groups; i++) {
        char id[32], name[32];
        snprintf(id, sizeof id, "sg-%017x", 0x1000 + i);
        snprintf(name, sizeof name, "g%04d", i);
        json_array_append_new(items, json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:i, s:i, s:[], s:[{s:s, s:s}], s:[], s:[]}],"
            " s:[{s:s, s:[], s:[{s:s}], s:[], s:[]}], s:[{s:s, s:s}]}",
            "groupId", id, "groupName", name, "groupDescription", "bench <group> & 'rules'", "ownerId", "123456789012",
            "vpcId", "vpc-0123456789abcdef0", "ipPermissions", "ipProtocol", "tcp", "fromPort", 22, "toPort", 22,
            "groups", "ipRanges", "cidrIp", "10.0.0.0/8", "description", "ssh from the office", "ipv6Ranges",
            "prefixListIds", "ipPermissionsEgress", "ipProtocol", "-1", "groups", "ipRanges", "cidrIp", "0.0.0.0/0",
            "ipv6Ranges", "prefixListIds", "tagSet", "key", "Name", "value", name));
    }
    json_t *env = json_pack("{s:i, s:s, s:s, s:s, s:b}", "v", 1, "id", "0123456789abcdef0123456789abcdef", "type",
                            "reply", "corr", "fedcba9876543210fedcba9876543210", "ok", 1);
    json_object_set_new(env, "body", json_pack("{s:o}", "securityGroupInfo", items));
    return env;
}

static char *old_gateway(const char *text, size_t len)
{
    json_t *env = json_parse_bounded(text, len, 1 << 24);
    xml_t *x = xml_new();
    xml_open(x, "DescribeSecurityGroupsResponse", "http://ec2.amazonaws.com/doc/2016-11-15/");
    xml_elem(x, "requestId", "r-1");
    tree_walk_object(x, json_object_get(env, "body"), "item");
    json_decref(env);
    return xml_take(x, NULL);
}

static int body_member(void *arg, const char *key, json_span_t v)
{
    if (!strcmp(key, "body"))
        *(json_span_t *)arg = v;
    return 0;
}

static char *new_gateway(const char *text, size_t len)
{
    json_span_t body = {0};
    if (json_scan_members(text, len, body_member, &body) < 0 || !body.p)
        return NULL;
    strbuf_t b = {0};
    strbuf_reserve(&b, body.n * 2 + 512);
    strbuf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeSecurityGroupsResponse "
                    "xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r-1</requestId>");
    if (json_xml_members(&b, body.p, body.n, "item") < 0) {
        free(b.s);
        return NULL;
    }
    strbuf_puts(&b, "</DescribeSecurityGroupsResponse>");
    return b.s;
}

int main(int argc, char **argv)
{
    int groups = argc > 1 ? atoi(argv[1]) : 1005, rounds = argc > 2 ? atoi(argv[2]) : 30;
    if (groups <= 0 || groups > 100000 || rounds <= 0 || rounds > 10000)
        return 2;
    json_t *env = answer(groups);
    size_t len = 0;
    char *text = json_compact_len(env, &len);
    char *want = json_dumps(env, JSON_COMPACT);
    char *xml_old = old_gateway(text, len), *xml_new_ = new_gateway(text, len);
    int bad = strcmp(text, want) != 0 || !xml_new_ || strcmp(xml_old, xml_new_) != 0;
    size_t xml_len = strlen(xml_old);
    free(want);
    free(xml_old);
    free(xml_new_);

    double t[5];
    t[0] = cpu_s();
    for (int i = 0; i < rounds; i++)
        free(json_dumps(env, JSON_COMPACT));
    t[1] = cpu_s();
    for (int i = 0; i < rounds; i++)
        free(json_compact_len(env, NULL));
    t[2] = cpu_s();
    for (int i = 0; i < rounds; i++)
        free(old_gateway(text, len));
    t[3] = cpu_s();
    for (int i = 0; i < rounds; i++)
        free(new_gateway(text, len));
    t[4] = cpu_s();

    printf("reply path of DescribeSecurityGroups, %d groups: %zu bytes of JSON, %zu of XML; CPU ms per answer "
           "(%d each)%s\n", groups, len, xml_len, rounds, bad ? " -- OUTPUTS DIFFER" : "");
    printf("  serving side, envelope dump: jansson json_dumps %.2f, json_compact_len %.2f\n",
           (t[1] - t[0]) / rounds * 1e3, (t[2] - t[1]) / rounds * 1e3);
    printf("  gateway, reply to XML: jansson parse + tree walk %.2f, read in place + json_xml %.2f\n",
           (t[3] - t[2]) / rounds * 1e3, (t[4] - t[3]) / rounds * 1e3);
    free(text);
    json_decref(env);
    return bad ? 1 : 0;
}
