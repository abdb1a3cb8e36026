/* test_instance_json.c - services/compute/instance_json.c writes a DescribeInstances item
 * as text member for member as the former jansson builder (tests/lib/instance_tree_ref.h)
 * dumped it: instances with and without a primary interface, tags, key names, kernel and
 * ramdisk, client tokens, state reasons (with and without "code: message"), public
 * addresses (auto-assigned and elastic), interfaces attached later (with public
 * addresses, attach times, a null SourceDestCheck, a missing groups member), burst
 * instances in a public cloud, strings that need escaping; with and without the hidden
 * fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "instance_tree_ref.h"
#include "metadata_options.h"
#include "public_dns.h"

/* instance_state.c's, whose objects pull in the lifecycle: a test double (the writer and
 * the reference call the same one) */
int instance_state_code(const char *state)
{
    static const char *names[] = {"pending", "running", "shutting-down", "terminated", "stopping", "stopped"};
    static const int codes[] = {0, 16, 32, 48, 64, 80};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(names[i], state))
            return codes[i];
    return -1;
}

/* A row with the columns every item has; NULL columns are SQL NULLs. */
static instance_row_t base(void)
{
    instance_row_t r = {{NULL}};
    r.v[IR_ID] = "i-0123456789abcdef0";
    r.v[IR_RESERVATION] = "r-0aaaaaaaaaaaaaaaa";
    r.v[IR_ACCOUNT] = "123456789012";
    r.v[IR_IMAGE] = "ami-0123456789abcdef0";
    r.v[IR_STATE] = "pending";
    r.v[IR_TRANSITION] = "";
    r.v[IR_LAUNCH_INDEX] = "0";
    r.v[IR_TYPE] = "t3.nano";
    r.v[IR_LAUNCH_TIME] = "1796000000";
    r.v[IR_ZONE] = "virga-1a";
    r.v[IR_STATE_REASON] = "";
    r.v[IR_CLIENT_TOKEN] = "";
    r.v[IR_VCPUS] = "2";
    r.v[IR_HOST_UP] = "f";
    r.v[IR_CLOUD] = "private";
    r.v[IR_SDC] = "t";
    r.v[IR_DESCRIPTION] = "";
    r.v[IR_ATTACHMENT] = "";
    r.v[IR_PUBLIC_IP] = "";
    r.v[IR_PUBLIC_OWNER] = "";
    r.v[IR_MD_OFF] = "f";
    return r;
}

static void with_primary(instance_row_t *r)
{
    r->v[IR_STATE] = "running";
    r->v[IR_HOST_UP] = "t";
    r->v[IR_ENI] = "eni-0fedcba9876543210";
    r->v[IR_SUBNET] = "subnet-0123";
    r->v[IR_VPC] = "vpc-0123";
    r->v[IR_MAC] = "02:00:0a:00:00:05";
    r->v[IR_IP] = "172.31.0.5";
    r->v[IR_GROUPS] = "[\"sg-0aaa\", \"sg-0bbb\"]";   /* PostgreSQL's text of jsonb */
}

/* The writer's text, with and without the hidden fields, against the reference's dump. */
static void check(const instance_row_t *r, const char *tags_json)
{
    JSON_AUTO json_t *tags = tags_json ? json_loads(tags_json, 0, NULL) : NULL;
    JSON_AUTO json_t *ref = ref_item(r, tags);
    assert_non_null(ref);
    char *want = json_dumps(ref, JSON_COMPACT);
    groups_text_t gc = {0};
    strbuf_t b = {0};
    instance_json_put(&b, r, tags, &gc, 1);
    assert_string_equal(b.s, want);
    free(want);
    json_object_del(ref, "_reservationId");
    json_object_del(ref, "_ownerId");
    json_object_del(ref, "_hostUp");
    want = json_dumps(ref, JSON_COMPACT);
    b.len = 0;
    instance_json_put(&b, r, tags, &gc, 0);
    b.s[b.len] = 0;
    assert_string_equal(b.s, want);
    /* twice with one cache of groups: the cached text is the same */
    b.len = 0;
    instance_json_put(&b, r, tags, &gc, 0);
    b.s[b.len] = 0;
    assert_string_equal(b.s, want);
    free(want);
    free(b.s);
    groups_text_free(&gc);
}

static void test_pending_bare(void **state)
{
    (void)state;
    instance_row_t r = base();
    check(&r, NULL);
}

static void test_running_full(void **state)
{
    (void)state;
    instance_row_t r = base();
    with_primary(&r);
    r.v[IR_KEY_NAME] = "my key";
    r.v[IR_KERNEL] = "aki-1";
    r.v[IR_RAMDISK] = "ari-1";
    r.v[IR_CLIENT_TOKEN] = "tok-\"quoted\"\\";
    r.v[IR_LAUNCH_INDEX] = "7";
    r.v[IR_DESCRIPTION] = "line1\nline2\t\x01 caf\xc3\xa9";
    r.v[IR_ATTACHMENT] = "eni-attach-0abc";
    r.v[IR_PUBLIC_IP] = "198.51.100.7";
    r.v[IR_PUBLIC_OWNER] = "amazon";
    r.v[IR_MD_TOKENS] = "required";   /* its own metadata options (ModifyInstanceMetadataOptions) */
    r.v[IR_MD_HOP_LIMIT] = "2";
    r.v[IR_MD_OFF] = "t";
    r.v[IR_MD_TAGS] = "t";   /* InstanceMetadataTags enabled */
    check(&r, "[{\"key\":\"Name\",\"value\":\"web \\\"1\\\"\"},{\"key\":\"env\",\"value\":\"\"}]");
}

static void test_state_reasons(void **state)
{
    (void)state;
    instance_row_t r = base();
    with_primary(&r);
    r.v[IR_STATE] = "stopped";
    r.v[IR_TRANSITION] = "User initiated (2026-12-07 06:00:00 GMT)";
    r.v[IR_STATE_REASON] = "Client.UserInitiatedShutdown: User initiated shutdown";
    r.v[IR_SDC] = "f";
    r.v[IR_GROUPS] = "[]";
    check(&r, NULL);
    r.v[IR_STATE_REASON] = "Server.InternalError";
    r.v[IR_GROUPS] = "not json";
    check(&r, NULL);
    r.v[IR_STATE] = "terminated";
    r.v[IR_STATE_REASON] = "a: b: c";
    check(&r, NULL);
}

static void test_attached_interfaces(void **state)
{
    (void)state;
    instance_row_t r = base();
    with_primary(&r);
    r.v[IR_PUBLIC_IP] = "203.0.113.9";
    r.v[IR_PUBLIC_OWNER] = "123456789012";   /* an elastic IP */
    r.v[IR_ATTACHED] =
        "[{\"eni\" : \"eni-0111\", \"index\" : 1, \"attachment\" : \"eni-attach-0111\", \"subnet\" : \"subnet-1\", "
        "\"vpc\" : \"vpc-0123\", \"mac\" : \"02:00:00:00:01:01\", \"ip\" : \"172.31.1.9\", \"description\" : \"second\", "
        "\"sdc\" : false, \"groups\" : [\"sg-0ccc\"], \"attach_time\" : 1796000500, \"public_ip\" : \"198.51.100.8\", "
        "\"public_owner\" : \"amazon\"}, "
        "{\"eni\" : \"eni-0222\", \"index\" : 2, \"attachment\" : null, \"subnet\" : \"subnet-1\", \"vpc\" : "
        "\"vpc-0123\", \"mac\" : \"02:00:00:00:01:02\", \"ip\" : \"172.31.1.10\", \"description\" : null, \"sdc\" : "
        "null, \"groups\" : null, \"attach_time\" : null, \"public_ip\" : null, \"public_owner\" : null}]";
    check(&r, "[{\"key\":\"Name\",\"value\":\"two nics\"}]");
    /* without a primary: the first interface attached is the instance's first */
    instance_row_t q = base();
    q.v[IR_ATTACHED] = r.v[IR_ATTACHED];
    check(&q, NULL);
}

static void test_attached_without_groups(void **state)
{
    (void)state;
    instance_row_t r = base();
    r.v[IR_ATTACHED] = "[{\"eni\": \"eni-0333\", \"index\": 1, \"ip\": \"172.31.1.11\"}, {\"eni\": \"eni-0444\", "
                       "\"index\": 2, \"ip\": \"172.31.1.12\", \"groups\": []}]";
    check(&r, NULL);
    with_primary(&r);
    check(&r, NULL);
}

static void test_burst(void **state)
{
    (void)state;
    instance_row_t r = base();
    with_primary(&r);
    r.v[IR_CLOUD] = "aws";
    r.v[IR_REMOTE_ID] = "i-0remote";
    r.v[IR_REMOTE_PUBLIC_IP] = "54.1.2.3";
    r.v[IR_REMOTE_PRIVATE_IP] = "10.0.0.4";
    r.v[IR_PUBLIC_IP] = "198.51.100.9";
    r.v[IR_PUBLIC_OWNER] = "amazon";
    check(&r, "[{\"key\":\"Name\",\"value\":\"burst\"}]");
    r.v[IR_REMOTE_PUBLIC_IP] = "";
    check(&r, NULL);
    r.v[IR_REMOTE_PRIVATE_IP] = NULL;
    r.v[IR_REMOTE_ID] = NULL;
    check(&r, NULL);   /* no remote address yet: the primary's public one */
    r.v[IR_PUBLIC_IP] = "";
    check(&r, NULL);
}

/* The metadata options' defaults (read once from the configuration) are what
 * metadataOptions shows where an instance set nothing; InstanceMetadataTags' key rule and
 * the tags' place in the metadata document (services/compute/metadata_options.c). */
static void test_metadata_defaults_and_tags(void **state)
{
    (void)state;
    verr_t e = {0};
    config_t *cfg = config_new();
    config_set(cfg, "agent.metadata_tokens", "required");
    config_set(cfg, "agent.metadata_hop_limit", "3");
    md_options_defaults_load(cfg);
    assert_string_equal(md_options_default_tokens(), "required");
    assert_int_equal(md_options_default_hop_limit(), 3);
    instance_row_t r = base();
    strbuf_t b = {0};
    instance_json_put(&b, &r, NULL, NULL, 0);
    assert_non_null(strstr(b.s, "\"metadataOptions\":{\"state\":\"applied\",\"httpTokens\":\"required\","
                                "\"httpPutResponseHopLimit\":3,"));
    assert_non_null(strstr(b.s, "\"instanceMetadataTags\":\"disabled\"}"));
    free(b.s);
    config_free(cfg);
    cfg = config_new();
    md_options_defaults_load(cfg);   /* back to the built-in ones for the other tests */
    assert_string_equal(md_options_default_tokens(), "optional");
    assert_int_equal(md_options_default_hop_limit(), 1);
    config_free(cfg);

    static const char *const good[] = {"Name", "a.b", "k-1_+=,.@:", "..."};
    static const char *const bad[] = {"Patch Group", "k8s.io/x", ".", "..", "_index", "", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(md_tag_key_valid(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(md_tag_key_valid(bad[i]));
    json_t *tags = json_pack("[{s:s, s:s}, {s:s, s:s}]", "key", "ok", "value", "", "key", "Patch Group", "value", "");
    assert_int_equal(md_tag_keys_check(tags, &e), -1);
    assert_string_equal(e.code, "InvalidParameterValue");
    assert_non_null(strstr(e.message, "'Patch Group' is not a valid tag key."));
    json_decref(tags);
    json_t *md = json_object();
    md_options_put_tags(md, "{\"Name\":\"web 1\",\"a/b\":\"left out\",\"env\":\"\"}");
    assert_int_equal(json_object_size(md), 2);
    assert_string_equal(json_string_value(json_object_get(md, "tags/instance/Name")), "web 1");
    assert_string_equal(json_string_value(json_object_get(md, "tags/instance/env")), "");
    json_decref(md);
}

int main(void)
{
    /* public addresses get names (dnsName, publicDnsName) */
    public_dns_configure("virga-1", "compute.test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_bare),        cmocka_unit_test(test_running_full),
        cmocka_unit_test(test_state_reasons),       cmocka_unit_test(test_attached_interfaces),
        cmocka_unit_test(test_attached_without_groups),
        cmocka_unit_test(test_burst),
        cmocka_unit_test(test_metadata_defaults_and_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
