/* test_launch_network.c - services/compute/launch_network.c: RunInstances'
 * NetworkInterfaces checked for form (device indexes, the instance-level parameters they
 * exclude, existing interfaces, AssociatePublicIpAddress, members this cloud does not
 * honour) and against the network's facts (one VPC, one zone, decided by the first
 * subnet or interface), with a test double for launch_facts_network; and the launch
 * task's document of the interfaces beyond the primary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "compute.h"
#include "jsonutil.h"
#include "launch_network.h"

/* The network as the double knows it: subnets and interfaces by id (vpc, az); no subnet:
 * the default VPC's default subnet of the zone asked (az-a when none). */
static const struct {
    const char *id, *vpc, *az;
} known[] = {
    {"subnet-0000000000000000a", "vpc-00000000000000001", "az-a"},
    {"subnet-0000000000000000b", "vpc-00000000000000001", "az-b"},
    {"subnet-0000000000000000c", "vpc-00000000000000002", "az-a"},
    {"eni-0000000000000000a", "vpc-00000000000000001", "az-a"},
};

int launch_facts_network(bus_ctx_t *ctx, const char *account, json_t *check, json_t **out, verr_t *e)
{
    (void)ctx;
    (void)account;
    const char *id = json_str(check, "eni", json_str(check, "subnet", NULL)), *az = json_str(check, "az", NULL);
    const char *vpc = "vpc-00000000000000001", *where = az ? az : "az-a", *subnet = "subnet-default";
    for (size_t i = 0; id && i < ARRAY_LEN(known); i++)
        if (!strcmp(known[i].id, id)) {
            vpc = known[i].vpc;
            where = known[i].az;
            subnet = json_str(check, "subnet", "subnet-of-eni");
        }
    if (az && strcmp(az, where))
        return verr_set(e, 400, "InvalidParameterValue", "%s is in %s, not in %s", id, where, az);
    *out = json_pack("{s:s, s:s, s:s, s:[s]}", "subnet_id", subnet, "vpc_id", vpc, "az", where, "group_ids",
                     "sg-0000000000000000d");
    if (json_str(check, "eni", NULL))   /* an existing interface's address */
        json_object_set_new(*out, "ip", json_string("172.31.9.9"));
    if (!json_str(check, "subnet", NULL) && !json_str(check, "eni", NULL))   /* the default subnet of each zone */
        json_object_set_new(*out, "default_subnets", json_pack("{s:s, s:s}", "az-a", "subnet-default", "az-b",
                                                                "subnet-default-b"));
    return 0;
}

/* n borrows from the body, as from the request: the bodies are freed at the end */
static json_t *bodies[128];
static size_t nbodies;

/* compute's copy of the attached interfaces: this one is in use */
int network_enis_refuse_in_use(bus_ctx_t *ctx, const char *eni, verr_t *e)
{
    (void)ctx;
    if (!strcmp(eni, "eni-0000000000000000b"))
        return verr_set(e, 400, "InvalidNetworkInterface.InUse", "in use");
    return 0;
}

/* RunInstances' body from JSON text; parse with max_count; the error code or "". */
static const char *parse(const char *body, int max_count, launch_net_t *n)
{
    static verr_t e;
    json_t *b = json_loads(body, 0, NULL);
    assert_non_null(b);
    memset(&e, 0, sizeof e);
    int rc = launch_net_parse(b, max_count, n, &e);
    assert_true(nbodies < ARRAY_LEN(bodies));
    bodies[nbodies++] = b;
    return rc < 0 ? e.code : "";
}

#define NI(...) "{\"NetworkInterface\": [" __VA_ARGS__ "]}"

static void test_one_primary_as_before(void **state)
{
    (void)state;
    launch_net_t n;
    assert_string_equal(parse(NI("{\"DeviceIndex\": \"0\", \"SubnetId\": \"subnet-0000000000000000a\", "
                                 "\"AssociatePublicIpAddress\": \"true\"}"), 1, &n), "");
    assert_string_equal(n.subnet, "subnet-0000000000000000a");
    assert_int_equal(n.public_ip, 1);
    assert_int_equal(n.n_more, 0);
    assert_null(launch_net_more_doc(&n));
    assert_string_equal(parse("{\"SubnetId\": \"subnet-0000000000000000a\"}", 3, &n), "");
    assert_int_equal(n.public_ip, -1);
}

static void test_more_interfaces(void **state)
{
    (void)state;
    launch_net_t n;
    /* in any order; a new one deleted with the instance by default, an existing one not */
    assert_string_equal(parse(NI("{\"DeviceIndex\": \"2\", \"NetworkInterfaceId\": \"eni-0000000000000000a\"},"
                                 "{\"DeviceIndex\": \"0\", \"SubnetId\": \"subnet-0000000000000000a\"},"
                                 "{\"DeviceIndex\": 1, \"SubnetId\": \"subnet-0000000000000000a\", "
                                 "\"Description\": \"second\", \"PrivateIpAddresses\": [{\"PrivateIpAddress\": "
                                 "\"10.0.0.9\", \"Primary\": \"true\"}], \"SecondaryPrivateIpAddressCount\": \"0\"}"),
                              1, &n), "");
    assert_int_equal(n.public_ip, 0);   /* EC2 gives none to a multi-interface launch */
    assert_int_equal(n.n_more, 2);
    assert_int_equal(n.more[0].index, 1);
    assert_string_equal(n.more[0].private_ip, "10.0.0.9");
    assert_true(n.more[0].delete_on_termination);
    assert_int_equal(n.more[1].index, 2);
    assert_string_equal(n.more[1].eni, "eni-0000000000000000a");
    assert_false(n.more[1].delete_on_termination);
    verr_t e = {0};
    assert_int_equal(launch_net_check(NULL, "123456789012", NULL, &n, &e), 0);
    assert_string_equal(n.zone, "az-a");
    json_t *doc = launch_net_more_doc(&n);
    assert_int_equal(json_array_size(doc), 2);
    json_t *a = json_array_get(doc, 0), *b = json_array_get(doc, 1);
    assert_int_equal(json_int(a, "device_index", -1), 1);
    assert_string_equal(json_str(a, "subnet", ""), "subnet-0000000000000000a");
    assert_string_equal(json_str(a, "description", ""), "second");
    assert_string_equal(json_str(a, "private_ip", ""), "10.0.0.9");
    assert_true(json_is_true(json_object_get(a, "delete_on_termination")));
    assert_string_equal(json_str(b, "eni", ""), "eni-0000000000000000a");
    assert_null(json_object_get(b, "subnet"));
    assert_true(json_is_false(json_object_get(b, "delete_on_termination")));
    json_decref(doc);
    launch_net_free(&n);
    /* DeleteOnTermination as asked (an existing one's can only be false: EC2's rule) */
    assert_string_equal(parse(NI("{\"DeviceIndex\": \"0\"}, {\"DeviceIndex\": \"1\", \"DeleteOnTermination\": "
                                 "\"false\"}, {\"DeviceIndex\": \"2\", \"NetworkInterfaceId\": "
                                 "\"eni-0000000000000000a\", \"DeleteOnTermination\": \"false\"}"), 1, &n), "");
    assert_false(n.more[0].delete_on_termination);
    assert_false(n.more[1].delete_on_termination);
}

static void test_refused_forms(void **state)
{
    (void)state;
    launch_net_t n;
    static const struct {
        const char *body;
        int max_count;
        const char *code;
    } cases[] = {
        {NI("{\"SubnetId\": \"subnet-0000000000000000a\"}"), 1, "InvalidParameterValue"},   /* no DeviceIndex */
        {NI("{\"DeviceIndex\": \"0\"}, {\"DeviceIndex\": \"0\"}"), 1, "InvalidParameterValue"},
        {NI("{\"DeviceIndex\": \"1\"}"), 1, "InvalidParameterValue"},                      /* no index 0 */
        {NI("{\"DeviceIndex\": \"16\"}"), 1, "InvalidParameterValue"},
        {NI("{\"DeviceIndex\": \"x\"}"), 1, "InvalidParameterValue"},
        {NI("{\"DeviceIndex\": \"0\", \"AssociatePublicIpAddress\": \"true\"}, {\"DeviceIndex\": \"1\"}"), 1,
         "InvalidParameterCombination"},
        {NI("{\"DeviceIndex\": \"0\"}, {\"DeviceIndex\": \"1\", \"NetworkInterfaceId\": \"eni-0000000000000000a\"}"),
         2, "InvalidParameterCombination"},                                              /* an existing one, 2 instances */
        {NI("{\"DeviceIndex\": \"0\"}, {\"DeviceIndex\": \"1\", \"NetworkInterfaceId\": \"eni-0000000000000000a\", "
            "\"SubnetId\": \"subnet-0000000000000000a\"}"), 1, "InvalidParameterCombination"},
        {NI("{\"DeviceIndex\": \"0\"}, {\"DeviceIndex\": \"1\", \"NetworkInterfaceId\": \"eni-0000000000000000a\"}, "
            "{\"DeviceIndex\": \"2\", \"NetworkInterfaceId\": \"eni-0000000000000000a\"}"), 1, "InvalidParameterValue"},
        {NI("{\"DeviceIndex\": \"0\"}, {\"DeviceIndex\": \"1\", \"NetworkInterfaceId\": \"bogus\"}"), 1,
         "InvalidNetworkInterfaceID.Malformed"},
        {NI("{\"DeviceIndex\": \"0\"}, {\"DeviceIndex\": \"1\", \"NetworkInterfaceId\": \"eni-0000000000000000a\", "
            "\"DeleteOnTermination\": true}"), 1, "InvalidParameterCombination"},
        {NI("{\"DeviceIndex\": \"0\", \"PrivateIpAddress\": \"10.0.0.5\"}, {\"DeviceIndex\": \"1\", "
            "\"PrivateIpAddress\": \"10.0.0.5\"}"), 1, "InvalidParameterValue"},        /* one address twice */
        {NI("{\"DeviceIndex\": \"0\"}, {\"DeviceIndex\": \"1\", \"PrivateIpAddress\": \"10.0.0.5\"}"), 2,
         "InvalidParameterCombination"},
        {NI("{\"DeviceIndex\": \"0\", \"SecondaryPrivateIpAddressCount\": \"2\"}"), 1, "Unsupported"},
        {NI("{\"DeviceIndex\": \"0\", \"PrivateIpAddresses\": [{\"PrivateIpAddress\": \"10.0.0.5\"}, "
            "{\"PrivateIpAddress\": \"10.0.0.6\"}]}"), 1, "Unsupported"},
        {NI("{\"DeviceIndex\": \"0\", \"NetworkCardIndex\": \"1\"}"), 1, "Unsupported"},
        {NI("{\"DeviceIndex\": \"0\", \"InterfaceType\": \"efa\"}"), 1, "Unsupported"},
        {NI("{\"DeviceIndex\": \"0\", \"Ipv4PrefixCount\": \"1\"}"), 1, "Unsupported"},
        {NI("{\"DeviceIndex\": \"0\", \"DeleteOnTermination\": \"maybe\"}"), 1, "InvalidParameterValue"},
        {NI("{\"DeviceIndex\": \"0\"}, {\"DeviceIndex\": \"1\", \"SecurityGroupId\": [\"bad\"]}"), 1,
         "InvalidGroupId.Malformed"},
        {"{\"SubnetId\": \"subnet-0000000000000000a\", \"NetworkInterface\": [{\"DeviceIndex\": \"0\"}]}", 1,
         "InvalidParameterCombination"},
        {"{\"SecurityGroupId\": [\"sg-0000000000000000d\"], \"NetworkInterface\": [{\"DeviceIndex\": \"0\"}]}", 1,
         "InvalidParameterCombination"},
        {"{\"NetworkInterface\": [\"x\"]}", 1, "InvalidParameterValue"},
        {"{\"NetworkInterface\": []}", 1, "InvalidParameterValue"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const char *got = parse(cases[i].body, cases[i].max_count, &n);
        if (strcmp(got, cases[i].code))
            fail_msg("case %zu (%s): %s, not %s", i, cases[i].body, got, cases[i].code);
    }
}

static void test_one_vpc_one_zone(void **state)
{
    (void)state;
    static const struct {
        const char *body, *zone;   /* zone: Placement's */
        const char *code, *decided;   /* code "": accepted, the zone decided */
    } cases[] = {
        /* another VPC than the primary's */
        {NI("{\"DeviceIndex\": \"0\", \"SubnetId\": \"subnet-0000000000000000a\"}, "
            "{\"DeviceIndex\": \"1\", \"SubnetId\": \"subnet-0000000000000000c\"}"), NULL,
         "InvalidParameterCombination", NULL},
        /* another zone than the primary's subnet */
        {NI("{\"DeviceIndex\": \"0\", \"SubnetId\": \"subnet-0000000000000000a\"}, "
            "{\"DeviceIndex\": \"1\", \"SubnetId\": \"subnet-0000000000000000b\"}"), NULL,
         "InvalidParameterValue", NULL},
        /* the primary in the default subnet: a later interface's subnet decides the zone */
        {NI("{\"DeviceIndex\": \"0\"}, {\"DeviceIndex\": \"1\", \"SubnetId\": \"subnet-0000000000000000b\"}"),
         NULL, "", "az-b"},
        /* an interface compute knows attached */
        {NI("{\"DeviceIndex\": \"0\"}, {\"DeviceIndex\": \"1\", \"NetworkInterfaceId\": "
            "\"eni-0000000000000000b\"}"), NULL, "InvalidNetworkInterface.InUse", NULL},
        /* one interface and no subnet: the scheduler's choice, as before */
        {NI("{\"DeviceIndex\": \"0\"}"), "az-b", "", ""},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        launch_net_t n;
        verr_t e = {0};
        assert_string_equal(parse(cases[i].body, 1, &n), "");
        int rc = launch_net_check(NULL, "123456789012", cases[i].zone, &n, &e);
        if (strcmp(rc < 0 ? e.code : "", cases[i].code) || (rc == 0 && strcmp(n.zone, cases[i].decided)))
            fail_msg("case %zu: %s (zone %s), not %s", i, rc < 0 ? e.code : "accepted", n.zone, cases[i].code);
        launch_net_free(&n);
    }
}

/* The addresses asked are the primary's (in the subnet the check resolved) and the new
 * interfaces', each in its subnet; none asked, no question. And the
 * answer's network before the ports exist: subnet, VPC, the address asked, the interfaces. */
static void test_addresses_asked_and_the_answer(void **state)
{
    (void)state;
    launch_net_t n;
    verr_t e = {0};
    assert_string_equal(parse(NI("{\"DeviceIndex\": \"0\", \"SubnetId\": \"subnet-0000000000000000a\", "
                                 "\"PrivateIpAddress\": \"172.31.0.8\"}, {\"DeviceIndex\": \"1\", \"SubnetId\": "
                                 "\"subnet-0000000000000000a\", \"PrivateIpAddress\": \"172.31.0.7\"}, "
                                 "{\"DeviceIndex\": \"2\", \"NetworkInterfaceId\": \"eni-0000000000000000a\"}"),
                              1, &n), "");
    assert_int_equal(launch_net_check(NULL, "123456789012", NULL, &n, &e), 0);
    JSON_AUTO json_t *asked = launch_net_addresses(&n);
    JSON_AUTO json_t *want = json_pack("[{s:s, s:s}, {s:s, s:s}]", "subnet", "subnet-0000000000000000a", "ip",
                                       "172.31.0.8", "subnet", "subnet-0000000000000000a", "ip", "172.31.0.7");
    assert_true(json_equal(asked, want));
    JSON_AUTO json_t *it = json_pack("{s:{s:s}}", "placement", "availabilityZone", "az-a");
    launch_net_answer(&n, it, "123456789012");
    assert_string_equal(json_str(it, "subnetId", ""), "subnet-0000000000000000a");
    assert_string_equal(json_str(it, "vpcId", ""), "vpc-00000000000000001");
    assert_string_equal(json_str(it, "privateIpAddress", ""), "172.31.0.8");
    json_t *set = json_object_get(it, "networkInterfaceSet");
    assert_int_equal(json_array_size(set), 3);
    assert_string_equal(json_str(json_array_get(set, 2), "networkInterfaceId", ""), "eni-0000000000000000a");
    assert_false(json_is_true(json_object_get(json_object_get(json_array_get(set, 2), "attachment"),
                                              "deleteOnTermination")));
    launch_net_free(&n);

    assert_string_equal(parse("{\"ImageId\": \"ami-0000000000000000a\"}", 1, &n), "");
    assert_int_equal(launch_net_check(NULL, "123456789012", NULL, &n, &e), 0);
    assert_null(launch_net_addresses(&n));
    /* no subnet: the default one of the zone the scheduler chose */
    assert_string_equal(launch_net_subnet_in(&n, "az-b"), "subnet-default-b");
    launch_net_free(&n);
    /* the primary in the default subnet, a later interface deciding the zone: that zone's */
    assert_string_equal(parse(NI("{\"DeviceIndex\": \"0\"}, {\"DeviceIndex\": \"1\", \"SubnetId\": "
                                 "\"subnet-0000000000000000b\"}"), 1, &n), "");
    assert_int_equal(launch_net_check(NULL, "123456789012", NULL, &n, &e), 0);
    assert_string_equal(launch_net_subnet_in(&n, n.zone), "subnet-default-b");
    launch_net_free(&n);
}

/* An existing interface as the primary: its subnet, VPC, zone and address are the
 * instance's; nothing of a new interface may go with it, nor a second instance. */
static void test_existing_primary(void **state)
{
    (void)state;
    launch_net_t n;
    verr_t e = {0};
    static const struct {
        const char *body;
        int max_count;
        const char *code;
    } refused[] = {
        {NI("{\"DeviceIndex\": \"0\", \"NetworkInterfaceId\": \"eni-0000000000000000a\"}"), 2,
         "InvalidParameterCombination"},
        {NI("{\"DeviceIndex\": \"0\", \"NetworkInterfaceId\": \"eni-0000000000000000a\", \"SubnetId\": "
            "\"subnet-0000000000000000a\"}"), 1, "InvalidParameterCombination"},
        {NI("{\"DeviceIndex\": \"0\", \"NetworkInterfaceId\": \"eni-0000000000000000a\", \"SecurityGroupId\": "
            "[\"sg-0000000000000000d\"]}"), 1, "InvalidParameterCombination"},
        {NI("{\"DeviceIndex\": \"0\", \"NetworkInterfaceId\": \"eni-0000000000000000a\", \"PrivateIpAddress\": "
            "\"172.31.0.5\"}"), 1, "InvalidParameterCombination"},
        {NI("{\"DeviceIndex\": \"0\", \"NetworkInterfaceId\": \"eni-0000000000000000a\", "
            "\"AssociatePublicIpAddress\": \"true\"}"), 1, "InvalidParameterCombination"},
        {NI("{\"DeviceIndex\": \"0\", \"NetworkInterfaceId\": \"eni-0000000000000000a\", "
            "\"DeleteOnTermination\": \"true\"}"), 1, "InvalidParameterCombination"},
        {"{\"SubnetId\": \"subnet-0000000000000000a\", \"NetworkInterface\": [{\"DeviceIndex\": \"0\", "
         "\"NetworkInterfaceId\": \"eni-0000000000000000a\"}]}", 1, "InvalidParameterCombination"},
        {NI("{\"DeviceIndex\": \"0\", \"NetworkInterfaceId\": \"eni-0000000000000000a\"}, {\"DeviceIndex\": \"1\", "
            "\"NetworkInterfaceId\": \"eni-0000000000000000a\"}"), 1, "InvalidParameterValue"},   /* twice */
    };
    for (size_t i = 0; i < ARRAY_LEN(refused); i++) {
        const char *got = parse(refused[i].body, refused[i].max_count, &n);
        if (strcmp(got, refused[i].code))
            fail_msg("case %zu (%s): %s, not %s", i, refused[i].body, got, refused[i].code);
    }
    assert_string_equal(parse(NI("{\"DeviceIndex\": 0, \"NetworkInterfaceId\": \"eni-0000000000000000a\", "
                                 "\"DeleteOnTermination\": false}"), 1, &n), "");
    assert_string_equal(n.eni, "eni-0000000000000000a");
    assert_int_equal(n.public_ip, 0);   /* none from the pool for an existing interface */
    assert_int_equal(launch_net_check(NULL, "123456789012", NULL, &n, &e), 0);
    assert_string_equal(n.zone, "az-a");   /* where the interface is */
    assert_string_equal(n.subnet_id, "subnet-of-eni");
    assert_int_equal(json_array_size(n.group_ids), 0);   /* its own groups, none asked */
    assert_null(launch_net_addresses(&n));
    JSON_AUTO json_t *it = json_pack("{s:{s:s}}", "placement", "availabilityZone", "az-a");
    launch_net_answer(&n, it, "123456789012");
    assert_string_equal(json_str(it, "subnetId", ""), "subnet-of-eni");
    assert_string_equal(json_str(it, "privateIpAddress", ""), "172.31.9.9");
    json_t *primary = json_array_get(json_object_get(it, "networkInterfaceSet"), 0);
    assert_string_equal(json_str(primary, "networkInterfaceId", ""), "eni-0000000000000000a");
    assert_true(json_is_false(json_object_get(json_object_get(primary, "attachment"), "deleteOnTermination")));
    launch_net_free(&n);
    /* in use (compute's copy says so), or in another zone than Placement's */
    assert_string_equal(parse(NI("{\"DeviceIndex\": \"0\", \"NetworkInterfaceId\": \"eni-0000000000000000b\"}"),
                              1, &n), "");
    assert_int_equal(launch_net_check(NULL, "123456789012", NULL, &n, &e), -1);
    assert_string_equal(e.code, "InvalidNetworkInterface.InUse");
    launch_net_free(&n);
    assert_string_equal(parse(NI("{\"DeviceIndex\": \"0\", \"NetworkInterfaceId\": \"eni-0000000000000000a\"}"),
                              1, &n), "");
    assert_int_equal(launch_net_check(NULL, "123456789012", "az-b", &n, &e), -1);
    launch_net_free(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_primary_as_before),
        cmocka_unit_test(test_more_interfaces),
        cmocka_unit_test(test_refused_forms),
        cmocka_unit_test(test_one_vpc_one_zone),
        cmocka_unit_test(test_addresses_asked_and_the_answer),
        cmocka_unit_test(test_existing_primary),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    while (nbodies)
        json_decref(bodies[--nbodies]);
    return failed;
}
