/* test_network.c - unit tests for the network service's pure parts: CIDR math
 * (services/network/cidr.c: strict parsing, containment, overlap, the five reserved
 * addresses, default subnets, MACs) and security group rule normalisation
 * (services/network/sg_rule.c: IpPermissions and the flat parameters to one rule per
 * source, protocols by name or number, port ranges, ICMP type/code). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cidr.h"
#include "jsonutil.h"
#include "sg_rule.h"

static void test_parse(void **state)
{
    (void)state;
    cidr_t c;
    char out[CIDR_STR_MAX];
    assert_int_equal(cidr_parse("10.0.0.0/8", &c), 0);
    assert_int_equal(c.addr, 10u << 24);
    assert_int_equal(c.len, 8);
    assert_int_equal(cidr_parse("0.0.0.0/0", &c), 0);
    assert_int_equal(cidr_parse("255.255.255.255/32", &c), 0);
    cidr_format(&c, out);
    assert_string_equal(out, "255.255.255.255/32");
    static const char *bad[] = {"10.0.0.1/8", "10.0.0.0", "10.0.0.0/33", "10.0.0/8", "10.0.0.256/32",
                                "10.0.0.0/-1", "10.0.0.0/", "a.b.c.d/8", " 10.0.0.0/8", "10.0.0.0/8 ",
                                "010.0.0.0/8x", "10.0.0.0.0/8", "1000.0.0.0/8", "", "10.0.0.0/0008"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(cidr_parse(bad[i], &c), -1);
    assert_int_equal(cidr_parse(NULL, &c), -1);
    uint32_t ip;
    assert_int_equal(cidr_ip_parse("172.31.0.5", &ip), 0);
    cidr_ip_format(ip, out);
    assert_string_equal(out, "172.31.0.5");
    assert_int_equal(cidr_ip_parse("172.31.0", &ip), -1);
}

static void test_relations(void **state)
{
    (void)state;
    cidr_t vpc, a, b, c, other;
    cidr_parse("10.20.0.0/16", &vpc);
    cidr_parse("10.20.1.0/24", &a);
    cidr_parse("10.20.1.128/25", &b);
    cidr_parse("10.20.2.0/24", &c);
    cidr_parse("10.21.0.0/24", &other);
    assert_true(cidr_contains(&vpc, &a));
    assert_false(cidr_contains(&a, &vpc));
    assert_false(cidr_contains(&vpc, &other));
    assert_true(cidr_overlaps(&a, &b));
    assert_true(cidr_overlaps(&b, &a));
    assert_false(cidr_overlaps(&a, &c));
    assert_true(cidr_contains_ip(&a, (10u << 24) | (20u << 16) | (1u << 8) | 200));
    assert_false(cidr_contains_ip(&a, (10u << 24) | (20u << 16) | (2u << 8)));
    cidr_t all;
    cidr_parse("0.0.0.0/0", &all);
    assert_true(cidr_contains(&all, &vpc));
}

static void test_reserved(void **state)
{
    (void)state;
    cidr_t c;
    uint32_t first, last;
    char s[CIDR_STR_MAX];
    cidr_parse("10.0.0.0/24", &c);
    assert_int_equal(cidr_size(&c), 256);
    assert_true(cidr_usable(&c, &first, &last));
    cidr_ip_format(first, s);
    assert_string_equal(s, "10.0.0.4");
    cidr_ip_format(last, s);
    assert_string_equal(s, "10.0.0.254");
    assert_int_equal(last - first + 1, 256 - CIDR_RESERVED);
    cidr_ip_format(cidr_gateway(&c), s);
    assert_string_equal(s, "10.0.0.1");
    cidr_ip_format(cidr_dns(&c), s);
    assert_string_equal(s, "10.0.0.2");
    cidr_parse("10.0.0.16/28", &c);
    assert_true(cidr_usable(&c, &first, &last));
    assert_int_equal(last - first + 1, 11);
    cidr_parse("10.0.0.0/30", &c);
    assert_false(cidr_usable(&c, &first, &last));
}

static void test_default_subnets_and_mac(void **state)
{
    (void)state;
    cidr_t c, vpc;
    char s[CIDR_STR_MAX];
    cidr_parse("172.31.0.0/16", &vpc);
    cidr_default_subnet(0, &c);
    cidr_format(&c, s);
    assert_string_equal(s, "172.31.0.0/20");
    cidr_default_subnet(2, &c);
    cidr_format(&c, s);
    assert_string_equal(s, "172.31.32.0/20");
    cidr_t prev;
    for (int i = 0; i < 16; i++) {   /* sixteen /20s fill the /16 without overlapping */
        cidr_t d;
        cidr_default_subnet(i, &d);
        assert_true(cidr_contains(&vpc, &d));
        if (i)
            assert_false(cidr_overlaps(&prev, &d));
        prev = d;
    }
    char mac[18];
    cidr_mac_for("eni-0123456789abcdef0", mac);
    assert_string_equal(mac, "02:78:9a:bc:de:f0");
    char mac2[18];
    cidr_mac_for("eni-0123456789abcdef1", mac2);
    assert_string_not_equal(mac, mac2);
}

static json_t *rules_of(const char *json, verr_t *e)
{
    JSON_AUTO json_t *body = json_loads(json, 0, NULL);
    assert_non_null(body);
    return sg_rules_from_request(body, e);
}

static void test_rules_from_permissions(void **state)
{
    (void)state;
    verr_t e = {0};
    JSON_AUTO json_t *r = rules_of(
        "{\"IpPermissions\": [{\"IpProtocol\": \"6\", \"FromPort\": \"8080\", \"ToPort\": \"8081\","
        " \"IpRanges\": [{\"CidrIp\": \"10.0.0.0/8\", \"Description\": \"lan\"}, {\"CidrIp\": \"192.0.2.0/24\"}],"
        " \"Groups\": [{\"GroupId\": \"sg-0123456789abcdef0\"}]},"
        " {\"IpProtocol\": \"icmp\", \"FromPort\": \"8\", \"ToPort\": \"-1\", \"IpRanges\": [{\"CidrIp\": \"0.0.0.0/0\"}]},"
        " {\"IpProtocol\": \"all\", \"FromPort\": \"1\", \"ToPort\": \"2\", \"IpRanges\": [{\"CidrIp\": \"0.0.0.0/0\"}]},"
        " {\"IpProtocol\": \"50\", \"IpRanges\": [{\"CidrIp\": \"0.0.0.0/0\"}]}]}", &e);
    assert_non_null(r);
    assert_int_equal(json_array_size(r), 6);
    json_t *x = json_array_get(r, 0);
    assert_string_equal(json_str(x, "protocol", ""), "tcp");
    assert_int_equal(json_int(x, "from_port", 0), 8080);
    assert_int_equal(json_int(x, "to_port", 0), 8081);
    assert_string_equal(json_str(x, "cidr", ""), "10.0.0.0/8");
    assert_string_equal(json_str(x, "description", ""), "lan");
    assert_string_equal(json_str(json_array_get(r, 2), "group_id", ""), "sg-0123456789abcdef0");
    x = json_array_get(r, 3);
    assert_string_equal(json_str(x, "protocol", ""), "icmp");
    assert_int_equal(json_int(x, "from_port", 0), 8);
    assert_int_equal(json_int(x, "to_port", 0), -1);
    x = json_array_get(r, 4);   /* all traffic: the ports sent mean nothing */
    assert_string_equal(json_str(x, "protocol", ""), "-1");
    assert_int_equal(json_int(x, "from_port", 0), -1);
    assert_int_equal(json_int(x, "to_port", 0), -1);
    assert_string_equal(json_str(json_array_get(r, 5), "protocol", ""), "50");
}

static void test_rules_flat(void **state)
{
    (void)state;
    verr_t e = {0};
    JSON_AUTO json_t *r = rules_of("{\"IpProtocol\": \"TCP\", \"FromPort\": \"22\", \"ToPort\": \"22\", "
                                   "\"CidrIp\": \"203.0.113.0/24\"}", &e);
    assert_non_null(r);
    assert_int_equal(json_array_size(r), 1);
    assert_string_equal(json_str(json_array_get(r, 0), "protocol", ""), "tcp");
    JSON_AUTO json_t *g = rules_of("{\"SourceSecurityGroupName\": \"web\"}", &e);
    assert_non_null(g);
    assert_string_equal(json_str(json_array_get(g, 0), "protocol", ""), "-1");
    assert_string_equal(json_str(json_array_get(g, 0), "group_name", ""), "web");
}

static void test_rules_refused(void **state)
{
    (void)state;
    static const struct {
        const char *json, *code;
    } bad[] = {
        {"{}", "MissingParameter"},
        {"{\"IpPermissions\": [{\"IpProtocol\": \"tcp\", \"FromPort\": \"90\", \"ToPort\": \"80\", "
         "\"IpRanges\": [{\"CidrIp\": \"10.0.0.0/8\"}]}]}", "InvalidParameterValue"},
        {"{\"IpPermissions\": [{\"IpProtocol\": \"udp\", \"IpRanges\": [{\"CidrIp\": \"10.0.0.0/8\"}]}]}",
         "InvalidParameterValue"},
        {"{\"IpPermissions\": [{\"IpProtocol\": \"tcp\", \"FromPort\": \"1\", \"ToPort\": \"65536\", "
         "\"IpRanges\": [{\"CidrIp\": \"10.0.0.0/8\"}]}]}", "InvalidParameterValue"},
        {"{\"IpPermissions\": [{\"IpProtocol\": \"icmp\", \"FromPort\": \"-1\", \"ToPort\": \"0\", "
         "\"IpRanges\": [{\"CidrIp\": \"10.0.0.0/8\"}]}]}", "InvalidParameterValue"},
        {"{\"IpPermissions\": [{\"IpProtocol\": \"icmp\", \"FromPort\": \"300\", "
         "\"IpRanges\": [{\"CidrIp\": \"10.0.0.0/8\"}]}]}", "InvalidParameterValue"},
        {"{\"IpPermissions\": [{\"IpProtocol\": \"256\", \"IpRanges\": [{\"CidrIp\": \"10.0.0.0/8\"}]}]}",
         "InvalidParameterValue"},
        {"{\"IpPermissions\": [{\"IpProtocol\": \"tcp\", \"FromPort\": \"1\", \"ToPort\": \"2\", "
         "\"IpRanges\": [{\"CidrIp\": \"10.0.0.1/8\"}]}]}", "InvalidParameterValue"},
        {"{\"IpPermissions\": [{\"IpProtocol\": \"tcp\", \"FromPort\": \"1\", \"ToPort\": \"2\"}]}",
         "InvalidPermission.Malformed"},
        {"{\"IpPermissions\": [{\"FromPort\": \"1\", \"ToPort\": \"2\", \"IpRanges\": [{\"CidrIp\": \"10.0.0.0/8\"}]}]}",
         "MissingParameter"},
        {"{\"IpPermissions\": [{\"IpProtocol\": \"tcp\", \"FromPort\": \"x\", \"ToPort\": \"2\", "
         "\"IpRanges\": [{\"CidrIp\": \"10.0.0.0/8\"}]}]}", "InvalidParameterValue"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        verr_t e = {0};
        json_t *r = rules_of(bad[i].json, &e);
        if (r)
            fail_msg("accepted: %s", bad[i].json);
        assert_string_equal(e.code, bad[i].code);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_relations),
        cmocka_unit_test(test_reserved),
        cmocka_unit_test(test_default_subnets_and_mac),
        cmocka_unit_test(test_rules_from_permissions),
        cmocka_unit_test(test_rules_flat),
        cmocka_unit_test(test_rules_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
