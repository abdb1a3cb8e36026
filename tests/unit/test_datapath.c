/* test_datapath.c - the datapath contract, run against every driver of the table: `fake`
 * always, `linux` when run as root (in namespaces with a prefix of its own, torn down at
 * the end). Then the parts that are text: document validation, the nftables and dnsmasq
 * renderings, and the order in which the reconciler builds a host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "datapath.h"
#include "dp_exec.h"
#include "jsonutil.h"

/* h1 with two VPCs, five interfaces (one a tap, one attached after launch into eni-0abd's
 * namespace, listed last but sorting first by id), a group referencing another. */
static const char DOC_FULL[] =
    "{\"host\":\"h1\",\"generation\":1,\"underlay_ip\":\"10.254.0.11\","
    "\"vpcs\":[{\"vpc_id\":\"vpc-a\",\"vni\":1001,\"cidr\":\"172.31.0.0/16\",\"peers\":[\"10.254.0.12\",\"10.254.0.13\"],"
    "  \"subnets\":[{\"subnet_id\":\"subnet-a\",\"cidr\":\"172.31.0.0/20\",\"gateway\":\"172.31.0.1\",\"dns\":\"172.31.0.2\","
    "    \"routes\":[{\"destination\":\"0.0.0.0/0\",\"target\":\"igw-1\"},{\"destination\":\"10.99.0.0/24\",\"target\":\"eni-0abd\","
    "                \"next_hop\":\"172.31.0.6\",\"next_hop_mac\":\"02:00:AC:1f:00:06\"}]}]},"
    " {\"vpc_id\":\"vpc-b\",\"vni\":1002,\"cidr\":\"172.31.0.0/16\",\"peers\":[],"
    "  \"subnets\":[{\"subnet_id\":\"subnet-b\",\"cidr\":\"172.31.16.0/20\",\"gateway\":\"172.31.16.1\",\"dns\":\"172.31.0.2\"}]}],"
    "\"interfaces\":["
    " {\"eni_id\":\"eni-0abc\",\"vpc_id\":\"vpc-a\",\"subnet_id\":\"subnet-a\",\"mac\":\"02:00:AC:1f:00:05\",\"ip\":\"172.31.0.5\","
    "  \"prefix_len\":20,\"device\":\"vt-0abc\",\"groups\":[\"sg-0aa1\"],\"public_ip\":\"198.51.100.7\"},"
    " {\"eni_id\":\"eni-0abd\",\"vpc_id\":\"vpc-a\",\"subnet_id\":\"subnet-a\",\"mac\":\"02:00:ac:1f:00:06\",\"ip\":\"172.31.0.6\","
    "  \"prefix_len\":20,\"device\":\"vt-0abd\",\"groups\":[\"sg-0aa1\"],\"public_ip\":null},"
    " {\"eni_id\":\"eni-0abe\",\"vpc_id\":\"vpc-b\",\"subnet_id\":\"subnet-b\",\"mac\":\"02:00:ac:1f:10:05\",\"ip\":\"172.31.16.5\","
    "  \"prefix_len\":20,\"device\":\"vt-0abe\",\"groups\":[],\"public_ip\":null},"
    " {\"eni_id\":\"eni-0abf\",\"vpc_id\":\"vpc-a\",\"subnet_id\":\"subnet-a\",\"mac\":\"02:00:ac:1f:00:07\",\"ip\":\"172.31.0.7\","
    "  \"prefix_len\":20,\"device\":\"vt-0abf\",\"device_kind\":\"tap\",\"groups\":[\"sg-0aa1\"],\"public_ip\":null},"
    " {\"eni_id\":\"eni-0aa0\",\"vpc_id\":\"vpc-a\",\"subnet_id\":\"subnet-a\",\"mac\":\"02:00:ac:1f:00:08\",\"ip\":\"172.31.0.8\","
    "  \"prefix_len\":20,\"device\":\"vt-0aa0\",\"groups\":[],\"public_ip\":null,"
    "  \"attach\":{\"parent\":\"eni-0abd\",\"device_index\":1}}],"
    "\"security_groups\":[{\"group_id\":\"sg-0aa1\","
    "  \"ingress\":[{\"protocol\":\"tcp\",\"from_port\":8080,\"to_port\":8080,\"cidrs\":[\"10.0.0.0/8\"],\"groups\":[\"sg-0bb2\"]},"
    "             {\"protocol\":\"icmp\",\"from_port\":8,\"to_port\":-1,\"cidrs\":[\"172.31.0.0/16\"],\"groups\":[]}],"
    "  \"egress\":[{\"protocol\":\"-1\",\"from_port\":-1,\"to_port\":-1,\"cidrs\":[\"0.0.0.0/0\"],\"groups\":[]}]}],"
    "\"group_members\":{\"sg-0bb2\":[\"172.31.0.9\",\"172.31.0.10\"]},"
    "\"outside\":{\"public_cidr\":\"198.51.100.0/24\"}}";

/* The same host after vpc-b and one interface went away and a peer left. */
static const char DOC_SMALL[] =
    "{\"host\":\"h1\",\"generation\":2,\"underlay_ip\":\"10.254.0.11\","
    "\"vpcs\":[{\"vpc_id\":\"vpc-a\",\"vni\":1001,\"cidr\":\"172.31.0.0/16\",\"peers\":[\"10.254.0.12\"],"
    "  \"subnets\":[{\"subnet_id\":\"subnet-a\",\"cidr\":\"172.31.0.0/20\",\"gateway\":\"172.31.0.1\",\"dns\":\"172.31.0.2\"}]}],"
    "\"interfaces\":["
    " {\"eni_id\":\"eni-0abc\",\"vpc_id\":\"vpc-a\",\"subnet_id\":\"subnet-a\",\"mac\":\"02:00:ac:1f:00:05\",\"ip\":\"172.31.0.5\","
    "  \"prefix_len\":20,\"device\":\"vt-0abc\",\"groups\":[],\"public_ip\":null}],"
    "\"security_groups\":[],\"group_members\":{},\"outside\":null}";

typedef struct ctx {
    const char *driver;
    dp_driver_t *d;
    char prefix[32];
    char state[64];
} ctx_t;

static ctx_t drivers[] = {{.driver = "fake"}, {.driver = "linux"}};

static int setup(void **state)
{
    ctx_t *c = *state;
    snprintf(c->prefix, sizeof c->prefix, "virga-u%d-", (int)getpid() % 100000);
    snprintf(c->state, sizeof c->state, "/tmp/virga-dp-unit-%d", (int)getpid());
    dp_config_t cfg = {.prefix = c->prefix, .state_dir = c->state};
    verr_t e = {0};
    c->d = dp_open(c->driver, &cfg, &e);
    if (!c->d) fprintf(stderr, "%s: %s\n", c->driver, e.message);
    return c->d ? 0 : -1;
}

static int teardown(void **state)
{
    ctx_t *c = *state;
    verr_t e = {0};
    int rc = dp_teardown_all(c->d, &e);
    dp_close(c->d);
    rmdir(c->state);
    return rc;
}

static dp_desired_t *parse(const char *text)
{
    verr_t e = {0};
    dp_desired_t *d = dp_desired_parse(text, &e);
    if (!d) fail_msg("%s", e.message);
    return d;
}

/* observe() reports exactly the document's units, fingerprints included. */
static void assert_matches(dp_driver_t *drv, const dp_desired_t *want)
{
    dp_units_t des = {0}, obs = {0};
    verr_t e = {0};
    dp_desired_units(want, &des);
    assert_int_equal(dp_observe(drv, want->host, &obs, &e), 0);
    for (size_t i = 0; i < des.n; i++) {
        const dp_unit_t *o = dp_units_find(&obs, des.v[i].kind, des.v[i].key);
        if (!o) fail_msg("missing %s %s", dp_kind_name(des.v[i].kind), des.v[i].key);
        assert_string_equal(o->fp, des.v[i].fp);
    }
    for (size_t i = 0; i < obs.n; i++)
        if (!dp_units_find(&des, obs.v[i].kind, obs.v[i].key))
            fail_msg("left over %s %s", dp_kind_name(obs.v[i].kind), obs.v[i].key);
    dp_units_clear(&des);
    dp_units_clear(&obs);
}

static void apply_ok(dp_driver_t *drv, const dp_desired_t *want, dp_stats_t *st)
{
    verr_t e = {0};
    *st = (dp_stats_t){0};
    if (dp_apply(drv, want, st, &e) < 0) fail_msg("apply: %s", e.message);
}

/* Leave what a crashed agent would: an interface nobody asked for, a tap nobody named, a
 * broken SG unit, a router that lost its metadata address. */
static void plant_leftovers(ctx_t *c)
{
    if (!strcmp(c->driver, "fake")) {
        dp_fake_plant(c->d, "h1", DP_IFACE, "eni-ghost", "dev=vt-ghost");
        dp_fake_plant(c->d, "h1", DP_IFACE, "dev:vt-ghosttap", "");
        dp_fake_plant(c->d, "h1", DP_SG, "sg", "");
        dp_fake_plant(c->d, "h1", DP_META, "1001", "");
        return;
    }
    char ns[96], hns[96], rns[96];
    snprintf(ns, sizeof ns, "%si-h1.eni-ghost", c->prefix);
    snprintf(hns, sizeof hns, "%sh-h1", c->prefix);
    snprintf(rns, sizeof rns, "%sr-h1.1001", c->prefix);
    assert_int_equal(dp_runv(NULL, 0, NULL, "ip", "netns", "add", ns, NULL), 0);
    assert_int_equal(dp_runv(hns, 0, NULL, "ip", "tuntap", "add", "dev", "vt-ghosttap", "mode", "tap", NULL), 0);
    assert_int_equal(dp_runv(hns, 0, NULL, "nft", "delete", "table", "inet", "virga_sg", NULL), 0);
    assert_int_equal(dp_runv(rns, 0, NULL, "ip", "addr", "del", DP_METADATA_IP "/32", "dev", "lo", NULL), 0);
}

/* What identifies the host's security group tables: the linux driver's inet table handle
 * (a rewrite makes a new table, with a new handle), the fake's count of whole rewrites. */
static char *sg_table_id(ctx_t *c)
{
    if (!strcmp(c->driver, "fake")) {
        const char *log = dp_fake_log(c->d);
        int n = 0;
        for (const char *p = log; (p = strstr(p, "ensure sg sg\n")); p++) n++;
        return xasprintf("%d rewrites", n);
    }
    char hns[96];
    snprintf(hns, sizeof hns, "%sh-h1", c->prefix);
    static const char *const argv[] = {"nft", "-a", "list", "table", "inet", "virga_sg", NULL};
    char *out = NULL;
    assert_int_equal(dp_run(hns, argv, NULL, &out, 0, NULL), 0);
    const char *t = strstr(out, "table inet virga_sg { # handle ");
    assert_non_null(t);
    char *id = xasprintf("%.*s", (int)strcspn(t, "\n"), t);
    free(out);
    return id;
}

static void test_contract(void **state)
{
    ctx_t *c = *state;
    dp_desired_t *full = parse(DOC_FULL), *small = parse(DOC_SMALL);
    dp_stats_t st;

    apply_ok(c->d, full, &st);                  /* from nothing */
    assert_true(st.ensured >= 10);
    assert_int_equal(st.removed, 0);
    assert_matches(c->d, full);

    apply_ok(c->d, full, &st);                  /* level-triggered: nothing to do */
    assert_int_equal(st.ensured + st.removed, 0);

    plant_leftovers(c);                         /* adopt, repair, remove the unknown */
    apply_ok(c->d, full, &st);
    assert_int_equal(st.ensured, 2);            /* sg, meta */
    assert_int_equal(st.removed, 2);            /* the ghost interface and tap */
    assert_matches(c->d, full);

    apply_ok(c->d, small, &st);                 /* shrink */
    /* vpc, router, dhcp, meta, sgvpc of 1002; 4 ifaces and their sgif; 1 fdb; the set
     * and the group sg-0aa1 */
    assert_int_equal(st.removed, 16);
    assert_matches(c->d, small);

    /* grow again: the security group tables are changed in place, not rewritten */
    if (!strcmp(c->driver, "fake")) dp_fake_log_clear(c->d);
    char *table_before = sg_table_id(c);
    apply_ok(c->d, full, &st);
    assert_matches(c->d, full);
    char *table_after = sg_table_id(c);
    assert_string_equal(table_before, table_after);
    free(table_before);
    free(table_after);
    apply_ok(c->d, small, &st);

    verr_t e = {0};                             /* teardown: nothing of h1 is left */
    assert_int_equal(dp_teardown(c->d, "h1", &e), 0);
    dp_units_t obs = {0};
    assert_int_equal(dp_observe(c->d, "h1", &obs, &e), 0);
    assert_int_equal(obs.n, 0);
    dp_units_clear(&obs);
    dp_desired_free(full);
    dp_desired_free(small);
}

static void changes_ok(dp_driver_t *drv, const dp_desired_t *want, dp_stats_t *st)
{
    verr_t e = {0};
    *st = (dp_stats_t){0};
    if (dp_apply_changes(drv, want, st, &e) < 0) fail_msg("apply_changes: %s", e.message);
}

/* dp_apply_changes after a converged apply changes only the difference, without observing
 * the host, and leaves it as a full apply would (observe agrees, marks included: the
 * linux driver removes an interface's rules by the mark it chose). */
static void test_changes(void **state)
{
    ctx_t *c = *state;
    dp_desired_t *full = parse(DOC_FULL), *small = parse(DOC_SMALL);
    dp_stats_t st;
    int fake = !strcmp(c->driver, "fake");

    apply_ok(c->d, full, &st);                  /* a full apply: observes */
    int seen = fake ? dp_fake_observations(c->d) : 0;
    changes_ok(c->d, full, &st);                /* nothing changed: nothing done */
    assert_int_equal(st.ensured + st.removed, 0);
    changes_ok(c->d, small, &st);               /* shrink: the same 16 removals */
    assert_int_equal(st.removed, 16);
    if (fake) assert_int_equal(dp_fake_observations(c->d), seen);
    assert_matches(c->d, small);
    changes_ok(c->d, full, &st);                /* grow: from what the shrink left */
    assert_true(st.ensured >= 10);
    assert_int_equal(st.removed, 0);
    assert_matches(c->d, full);
    changes_ok(c->d, small, &st);               /* and back, by the marks it chose */
    assert_int_equal(st.removed, 16);
    assert_matches(c->d, small);
    /* assert_matches' three, and one after the grow built vpc-b (a rebuilt VPC takes its
     * dependents with it on a real host, so the reconciler looks again) */
    if (fake) assert_int_equal(dp_fake_observations(c->d), seen + 4);

    /* a teardown leaves the host unknown: the next apply observes (and builds it all) */
    verr_t e = {0};
    assert_int_equal(dp_teardown(c->d, "h1", &e), 0);
    changes_ok(c->d, small, &st);
    assert_true(st.ensured >= 8);
    assert_matches(c->d, small);
    dp_desired_free(full);
    dp_desired_free(small);
}

/* A host of one VPC whose interfaces eni-1..eni-n (vt-1..) all have a public address and
 * the group sg-self, whose rule refers to its own members (the default group's shape). */
static dp_desired_t *launched(int gen, const int *ifaces, int n)
{
    char buf[16384];
    int off = snprintf(buf, sizeof buf,
        "{\"host\":\"h1\",\"generation\":%d,\"underlay_ip\":\"10.254.0.11\","
        "\"vpcs\":[{\"vpc_id\":\"vpc-a\",\"vni\":1001,\"cidr\":\"172.31.0.0/16\",\"peers\":[],"
        "  \"subnets\":[{\"subnet_id\":\"subnet-a\",\"cidr\":\"172.31.0.0/20\",\"gateway\":\"172.31.0.1\"}]}],"
        "\"interfaces\":[", gen);
    for (int i = 0; i < n; i++)
        off += snprintf(buf + off, sizeof buf - (size_t)off,
            "%s{\"eni_id\":\"eni-%d\",\"vpc_id\":\"vpc-a\",\"subnet_id\":\"subnet-a\",\"mac\":\"02:00:00:00:00:%02x\","
            "\"ip\":\"172.31.0.%d\",\"prefix_len\":20,\"device\":\"vt-%d\",\"groups\":[\"sg-self\"],"
            "\"public_ip\":\"198.51.100.%d\"}", i ? "," : "", ifaces[i], ifaces[i], 10 + ifaces[i], ifaces[i],
            10 + ifaces[i]);
    off += snprintf(buf + off, sizeof buf - (size_t)off,
        "],\"security_groups\":[{\"group_id\":\"sg-self\",\"ingress\":[{\"protocol\":\"-1\",\"from_port\":-1,"
        "\"to_port\":-1,\"cidrs\":[],\"groups\":[\"sg-self\"]}],\"egress\":[]}],\"group_members\":{\"sg-self\":[");
    for (int i = 0; i < n; i++)
        off += snprintf(buf + off, sizeof buf - (size_t)off, "%s\"172.31.0.%d\"", i ? "," : "", 10 + ifaces[i]);
    snprintf(buf + off, sizeof buf - (size_t)off, "]},\"outside\":{\"public_cidr\":\"198.51.100.0/24\"}}");
    return parse(buf);
}

/* How many commands an apply of changes ran; how many of them were a process of their
 * own in *procs (the rest ran in-process, dp_inproc.h). */
static long changes_commands(dp_driver_t *drv, const dp_desired_t *want, long *procs)
{
    dp_stats_t st;
    long before = dp_exec_count(), procs_before = dp_proc_count();
    changes_ok(drv, want, &st);
    *procs = dp_proc_count() - procs_before;
    return dp_exec_count() - before;
}

/* What a launch and a terminate cost the linux driver, in commands (each a fork+exec, the
 * bulk of an apply's time): interfaces with public addresses coming and going together
 * are one `nft` transaction and one `ip -batch` per namespace, a new stand-in's own
 * namespace included, however many they are; and what that leaves is what a full apply
 * leaves. */
static void test_launch_commands(void **state)
{
    ctx_t *c = *state;
    static const int one[] = {1}, two[] = {1, 2}, many[] = {1, 3, 4, 5, 6, 7, 8, 9, 10};
    dp_desired_t *d1 = launched(1, one, 1), *d2 = launched(2, two, 2), *d3 = launched(3, one, 1),
                 *d4 = launched(4, many, 9), *d5 = launched(5, one, 1);
    dp_stats_t st;
    apply_ok(c->d, d1, &st);
    /* one launch: netns add, nft, the stand-in's batch, the host's; the router's address
     * (its namespace, the outside's) and NAT */
    long procs;
    assert_int_equal(changes_commands(c->d, d2, &procs), 7);
    /* none of them a process: they run in-process (rtnetlink, libnftables) */
    assert_int_equal(procs, 0);
    assert_matches(c->d, d2);
    /* its terminate: the host end, the stand-in, nft; the router's three */
    assert_int_equal(changes_commands(c->d, d3, &procs), 6);
    assert_int_equal(procs, 0);
    assert_matches(c->d, d3);
    /* eight at once: one more command each (its stand-in's own batch) */
    assert_int_equal(changes_commands(c->d, d4, &procs), 6 + 8);
    assert_int_equal(procs, 0);
    assert_matches(c->d, d4);
    assert_int_equal(changes_commands(c->d, d5, &procs), 6);
    assert_int_equal(procs, 0);
    assert_matches(c->d, d5);
    dp_desired_free(d1);
    dp_desired_free(d2);
    dp_desired_free(d3);
    dp_desired_free(d4);
    dp_desired_free(d5);
}

/* A stand-in whose host side lost its label (an applier killed between making the pair
 * and naming it) is finished in place: the same namespace, where a guest may run. */
static void test_unlabelled_stand_in_adopted(void **state)
{
    ctx_t *c = *state;
    dp_desired_t *small = parse(DOC_SMALL);
    dp_stats_t st;
    apply_ok(c->d, small, &st);
    char ins[128], hns[96];
    snprintf(ins, sizeof ins, "/run/netns/%si-h1.eni-0abc", c->prefix);
    snprintf(hns, sizeof hns, "%sh-h1", c->prefix);
    struct stat before, after;
    if (!strcmp(c->driver, "fake")) {
        dp_fake_plant(c->d, "h1", DP_IFACE, "eni-0abc", "");
        dp_fake_plant(c->d, "h1", DP_IFACE, "dev:vt-0abc", "");
        dp_fake_log_clear(c->d);
    } else {
        assert_int_equal(stat(ins, &before), 0);
        assert_int_equal(dp_runv(hns, 0, NULL, "ip", "link", "set", "vt-0abc", "alias", "", NULL), 0);
    }
    apply_ok(c->d, small, &st);
    assert_int_equal(st.ensured, 1);
    assert_int_equal(st.removed, 0);
    assert_matches(c->d, small);
    if (!strcmp(c->driver, "fake")) {
        assert_string_equal(dp_fake_log(c->d), "ensure iface eni-0abc\n");
    } else {
        assert_int_equal(stat(ins, &after), 0);
        assert_true(before.st_ino == after.st_ino);
    }
    dp_desired_free(small);
}

/* From the same state, dp_apply_changes does exactly what a full dp_apply does. */
static void test_changes_as_full(void **state)
{
    (void)state;
    verr_t e = {0};
    dp_driver_t *a = dp_open("fake", NULL, &e), *b = dp_open("fake", NULL, &e);
    dp_desired_t *full = parse(DOC_FULL), *small = parse(DOC_SMALL);
    dp_stats_t st;
    apply_ok(a, full, &st);
    apply_ok(b, full, &st);
    const dp_desired_t *steps[] = {small, full, small};
    for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
        dp_fake_log_clear(a);
        dp_fake_log_clear(b);
        apply_ok(a, steps[i], &st);
        changes_ok(b, steps[i], &st);
        assert_string_equal(dp_fake_log(a), dp_fake_log(b));
    }
    dp_desired_free(full);
    dp_desired_free(small);
    dp_close(a);
    dp_close(b);
}

static void test_invalid_documents(void **state)
{
    (void)state;
    static const struct { const char *from, *to, *code; } cases[] = {
        {"\"vt-0abc\"", "\"eth0; reboot\"", "InvalidParameterValue"},
        {"\"vt-0abc\"", "\"vt-0123456789abc\"", "InvalidParameterValue"},   /* > 15 chars */
        {"\"vni\":1001", "\"vni\":0", "InvalidParameterValue"},
        {"\"10.0.0.0/8\"", "\"10.0.0.0/33\"", "InvalidParameterValue"},
        {"\"protocol\":\"tcp\"", "\"protocol\":\"sctp\"", "InvalidParameterValue"},
        {"\"sg-0bb2\":[", "\"sg 0bb2\":[", "InvalidParameterValue"},
        {"02:00:AC:1f:00:05", "02:00:AC:1f:00:0g", "InvalidParameterValue"},
        {"\"vpc_id\":\"vpc-b\",\"subnet_id\"", "\"vpc_id\":\"vpc-z\",\"subnet_id\"", "InvalidVpcID.NotFound"},
        {"\"from_port\":8080,\"to_port\":8080", "\"from_port\":9000,\"to_port\":8080", "InvalidParameterValue"},
        {"\"device_kind\":\"tap\"", "\"device_kind\":\"macvtap\"", "InvalidParameterValue"},
        {"\"device_kind\":\"tap\"", "\"device_kind\":\"tap\",\"source_dest_check\":\"no\"", "InvalidParameterValue"},
        {"\"parent\":\"eni-0abd\"", "\"parent\":\"eni-0abf\"", "InvalidParameterValue"},    /* a tap */
        {"\"parent\":\"eni-0abd\"", "\"parent\":\"eni-0zzz\"", "InvalidParameterValue"},    /* absent */
        {"\"device_index\":1", "\"device_index\":0", "InvalidParameterValue"},
        {"\"next_hop\":\"172.31.0.6\"", "\"next_hop\":\"172.31.0.6 dev lo\"", "InvalidParameterValue"},
        {"\"next_hop\":\"172.31.0.6\",", "", "InvalidParameterValue"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const char *at = strstr(DOC_FULL, cases[i].from);
        assert_non_null(at);
        char *doc = xasprintf("%.*s%s%s", (int)(at - DOC_FULL), DOC_FULL, cases[i].to,
                              at + strlen(cases[i].from));
        verr_t e = {0};
        dp_desired_t *d = dp_desired_parse(doc, &e);
        if (d) fail_msg("case %zu accepted", i);
        assert_string_equal(e.code, cases[i].code);
        free(doc);
    }
    verr_t e = {0};
    assert_null(dp_desired_parse("[1,2]", &e));
    assert_null(dp_desired_parse("{\"host\":", &e));
}

static void test_render_security_groups(void **state)
{
    (void)state;
    dp_desired_t *d = parse(DOC_FULL);
    dp_units_t u = {0};
    dp_desired_units(d, &u);
    char *s = dp_render_sg_full(d, &u);
    /* the repair path: both tables replaced in one transaction, the layout in a comment */
    assert_non_null(strstr(s, "delete table inet virga_sg\n"));
    assert_non_null(strstr(s, "delete table bridge virga_sg\n"));
    assert_non_null(strstr(s, "comment \"" DP_SG_LAYOUT "\""));
    /* the base chains dispatch through maps and never change */
    assert_non_null(strstr(s, "    iifname vmap @bin\n    oifname vmap @bout\n"));
    assert_non_null(strstr(s, "    meta mark and 0x7fff vmap @outs\n    meta mark and 0x7fff0000 vmap @ins\n"));
    /* group references become sets of the members' addresses, sorted */
    assert_non_null(strstr(s, "add set inet virga_sg g_sg_0bb2 { type ipv4_addr; }\nflush set inet virga_sg g_sg_0bb2\n"
                              "add element inet virga_sg g_sg_0bb2 { 172.31.0.10, 172.31.0.9 }\n"));
    /* eni-0abc (mark 1): anti-spoofing, stateful, its rules, default deny */
    assert_non_null(strstr(s, "chain bi_eni_0abc {\n    ether saddr != 02:00:ac:1f:00:05 drop\n"
                              "    meta mark set meta mark or 0x1\n"));
    assert_non_null(strstr(s, "chain i_eni_0abc {\n    comment \"eni=eni-0abc dev=vt-0abc m=1 f="));
    assert_non_null(strstr(s, "add element inet virga_sg ins { 0x10000 : jump i_eni_0abc }\n"));
    assert_non_null(strstr(s, "add element bridge virga_sg bin { \"vt-0abc\" : jump bi_eni_0abc }\n"));
    /* the group's rules, in chains of its own that its interfaces jump to */
    assert_non_null(strstr(s, "  chain gi_sg_0aa1 {\n    ip saddr 10.0.0.0/8 tcp dport 8080 accept\n"
                              "    ip saddr @g_sg_0bb2 tcp dport 8080 accept\n"
                              "    ip saddr 172.31.0.0/16 icmp type 8 accept\n  }\n"));
    assert_non_null(strstr(s, "  chain go_sg_0aa1 {\n    ip daddr 0.0.0.0/0 meta nfproto ipv4 meta mark set meta mark or 0x8000 return\n"));
    assert_non_null(strstr(s, "  chain gf_sg_0aa1 {\n    comment \"grp=sg-0aa1 g="));
    assert_non_null(strstr(s, "ip saddr != 172.31.0.5 drop\n"));
    assert_non_null(strstr(s, "ip daddr != 172.31.0.5 drop\n"));
    assert_non_null(strstr(s, "    ct state established,related return\n    jump go_sg_0aa1\n"
                              "    meta mark and 0x8000 == 0x8000 return\n    drop\n"));
    assert_non_null(strstr(s, "    udp sport 67 udp dport 68 accept\n    ip daddr != 172.31.0.5 drop\n"
                              "    jump gi_sg_0aa1\n    drop\n"));
    /* a rule change is the group's chains alone */
    char *g = dp_render_sg_group(&d->groups[0], 1, "g=2");
    assert_non_null(strstr(g, "flush chain inet virga_sg gi_sg_0aa1\nflush chain inet virga_sg go_sg_0aa1\n"
                              "delete chain inet virga_sg gf_sg_0aa1\n"));
    assert_null(strstr(g, "eni"));
    free(g);
    /* eni-0abe has no group: its in chain accepts only replies and DHCP, then drops */
    const char *abe = strstr(s, "chain i_eni_0abe {\n    comment \"eni=eni-0abe dev=vt-0abe m=");
    assert_non_null(abe);
    assert_non_null(strstr(abe, "\"\n    ct state established,related accept\n"
                                "    ct state invalid drop\n    udp sport 67 udp dport 68 accept\n"
                                "    ip daddr != 172.31.16.5 drop\n    drop\n  }"));
    /* a route target on another host: unicast to it crosses, from this host's router MAC */
    assert_non_null(strstr(s, "iifname \"vr-1001\" oifname \"vx-1001\" ether daddr { 02:00:ac:1f:00:06 } ether saddr set "
                              "02:fd:0a:fe:00:0b accept\n"));
    assert_null(strstr(s, "iifname \"vr-1002\" oifname \"vx-1002\" ether daddr"));
    /* gateway frames never cross the tunnel */
    assert_non_null(strstr(s, "iifname \"vr-1001\" oifname \"vx-1001\" drop"));
    assert_non_null(strstr(s, "add element bridge virga_sg vpcs { \"vr-1001\" : jump v_1001, \"vx-1001\" : jump v_1001 }"));
    free(s);
    /* the source/destination check off: neither half */
    d->ifaces[0].no_sdcheck = 1;
    s = dp_render_sg_iface(d, &d->ifaces[0], 7, "f=1");
    assert_null(strstr(s, "ip saddr != 172.31.0.5 drop"));
    assert_null(strstr(s, "ip daddr != 172.31.0.5 drop"));
    free(s);
    d->ifaces[0].no_sdcheck = 0;
    /* one interface alone: its statements and nothing of the others */
    s = dp_render_sg_iface(d, &d->ifaces[0], 7, "f=1");
    assert_null(strstr(s, "table inet virga_sg\n"));
    assert_null(strstr(s, "eni_0abd"));
    assert_non_null(strstr(s, "add element inet virga_sg outs { 0x7 : jump o_eni_0abc }\n"));
    free(s);
    s = dp_render_sg_iface_del("eni-0abc", "vt-0abc", 7);
    assert_string_equal(s, "delete element bridge virga_sg bin { \"vt-0abc\" }\n"
                           "delete element bridge virga_sg bout { \"vt-0abc\" }\n"
                           "delete element inet virga_sg outs { 0x7 }\ndelete element inet virga_sg ins { 0x70000 }\n"
                           "flush chain bridge virga_sg bi_eni_0abc\ndelete chain bridge virga_sg bi_eni_0abc\n"
                           "flush chain bridge virga_sg bo_eni_0abc\ndelete chain bridge virga_sg bo_eni_0abc\n"
                           "flush chain inet virga_sg o_eni_0abc\ndelete chain inet virga_sg o_eni_0abc\n"
                           "flush chain inet virga_sg i_eni_0abc\ndelete chain inet virga_sg i_eni_0abc\n");
    free(s);
    dp_units_clear(&u);
    dp_desired_free(d);
}

static void test_render_nat_and_dhcp(void **state)
{
    (void)state;
    dp_desired_t *d = parse(DOC_FULL);
    char *nat = dp_render_nat(d, &d->vpcs[0], "r=1");
    assert_non_null(strstr(nat, "ip daddr 198.51.100.7 dnat to 172.31.0.5\n"));
    assert_non_null(strstr(nat, "oifname \"out0\" ip saddr 172.31.0.5 snat to 198.51.100.7\n"));
    assert_null(strstr(nat, "172.31.0.6"));
    char *nat_b = dp_render_nat(d, &d->vpcs[1], "r=1");
    assert_null(strstr(nat_b, "dnat"));
    char *conf = dp_render_dhcp_conf(&d->vpcs[0]);
    assert_non_null(strstr(conf, "dhcp-range=set:subnet-a,172.31.0.0,static,255.255.240.0,1h\n"));
    assert_non_null(strstr(conf, "dhcp-option=tag:subnet-a,option:router,172.31.0.1\n"));
    char *hosts = dp_render_dhcp_hosts(d, &d->vpcs[0]);
    assert_string_equal(hosts, "02:00:ac:1f:00:05,172.31.0.5,eni-0abc\n02:00:ac:1f:00:06,172.31.0.6,eni-0abd\n"
                               "02:00:ac:1f:00:07,172.31.0.7,eni-0abf\n"     /* a tap's guest asks DHCP too */
                               "02:00:ac:1f:00:08,172.31.0.8,eni-0aa0\n");
    free(nat);
    free(nat_b);
    free(conf);
    free(hosts);
    dp_desired_free(d);
}

/* A fresh host is built outside-in, and filtering exists before any interface is plugged. */
static void test_build_order(void **state)
{
    (void)state;
    verr_t e = {0};
    dp_driver_t *d = dp_open("fake", NULL, &e);
    dp_desired_t *want = parse(DOC_SMALL);
    dp_stats_t st = {0};
    assert_int_equal(dp_apply(d, want, &st, &e), 0);
    assert_string_equal(dp_fake_log(d),
                        "ensure host h1\nensure vpc 1001\nensure fdb 1001/10.254.0.12\n"
                        "ensure router 1001\nensure dhcp 1001\nensure meta 1001\nensure sg sg\n"
                        "ensure iface eni-0abc\n");
    dp_fake_log_clear(d);
    assert_int_equal(dp_teardown_all(d, &e), 0);
    assert_string_equal(dp_fake_log(d),
                        "remove iface eni-0abc\nremove sg sg\nremove meta 1001\nremove dhcp 1001\n"
                        "remove router 1001\n"
                        "remove fdb 1001/10.254.0.12\nremove vpc 1001\nremove host h1\nteardown shared\n");
    assert_null(dp_open("nope", NULL, &e));
    assert_string_equal(e.code, "InvalidParameterValue");
    dp_desired_free(want);
    dp_close(d);
}

/* An interface attached after launch is made after its instance's primary (it joins the
 * primary's namespace) and removed before it, whatever their ids. */
static void test_attached_order(void **state)
{
    (void)state;
    verr_t e = {0};
    dp_driver_t *d = dp_open("fake", NULL, &e);
    dp_desired_t *want = parse(DOC_FULL);
    dp_stats_t st = {0};
    assert_int_equal(dp_apply(d, want, &st, &e), 0);
    const char *log = dp_fake_log(d);
    assert_non_null(strstr(log, "ensure iface eni-0abf\nensure iface eni-0aa0\n"));
    dp_fake_log_clear(d);
    assert_int_equal(dp_teardown_all(d, &e), 0);
    assert_non_null(strstr(dp_fake_log(d), "remove iface eni-0aa0\nremove iface eni-0abf\n"));
    dp_desired_free(want);
    dp_close(d);
}

/* A state directory dnsmasq (as nobody) could not read through is refused at open, with
 * the directory that stops it named. */
static void test_state_dir_must_be_traversable(void **state)
{
    (void)state;
    if (geteuid() != 0) skip();
    char top[64], sub[96];
    snprintf(top, sizeof top, "/tmp/virga-dp-closed-%d", (int)getpid());
    snprintf(sub, sizeof sub, "%s/state", top);
    assert_int_equal(mkdir(top, 0700), 0);
    dp_config_t cfg = {.prefix = "virga-uclosed-", .state_dir = sub};
    verr_t e = {0};
    dp_driver_t *d = dp_open("linux", &cfg, &e);
    rmdir(sub);
    rmdir(top);
    assert_null(d);
    assert_string_equal(e.code, "InvalidParameterValue");
    assert_non_null(strstr(e.message, "has mode 0700 and is not traversable"));
    assert_non_null(strstr(e.message, top));
}

/* The in-process `ip` (dp_rtnl.c) does what `ip` does, errors included, and leaves to
 * `ip` what it does not know: in a namespace of this test's own, a veth pair, addresses
 * and routes made in-process; a failed line ends a batch unless -force, with ip's words;
 * a command whose output is wanted runs as a process. */
static int drop_inproc_namespaces(void **state)
{
    (void)state;
    char ns[64];
    for (int i = 0; i < 2; i++) {
        snprintf(ns, sizeof ns, "virga-u%d-inproc%s", (int)getpid(), i ? "2" : "");
        if (dp_runv(NULL, DP_QUIET, NULL, "ip", "netns", "del", ns, NULL) < 0) {}   /* gone already */
    }
    return 0;
}

static void test_ip_in_process(void **state)
{
    (void)state;
    char ns[64], out_ns[64];
    snprintf(ns, sizeof ns, "virga-u%d-inproc", (int)getpid());
    snprintf(out_ns, sizeof out_ns, "virga-u%d-inproc2", (int)getpid());
    static const char *const batch[] = {"ip", "-batch", "-", NULL}, *const force[] = {"ip", "-force", "-batch", "-", NULL};
    verr_t e = {0};
    long procs = dp_proc_count();
    const char *a1[] = {"ip", "netns", "add", ns, NULL}, *a2[] = {"ip", "netns", "add", out_ns, NULL};
    assert_int_equal(dp_run(NULL, a1, NULL, NULL, 0, &e), 0);
    assert_int_equal(dp_run(NULL, a2, NULL, NULL, 0, &e), 0);
    /* the veth from inside, its peer into the other namespace, as a stand-in's batch */
    char cmds[512];
    snprintf(cmds, sizeof cmds, "link add eth0 address 02:00:00:00:00:01 mtu 1450 type veth peer name vt-x mtu 1450 "
             "netns %s\nlink set lo up\nlink set eth0 up\naddr replace 10.9.0.5/24 dev eth0\n"
             "route replace default via 10.9.0.1\n", out_ns);
    assert_int_equal(dp_run(ns, batch, cmds, NULL, 0, &e), 0);
    assert_int_equal(dp_run(out_ns, batch, "link set vt-x alias \"eni=eni-x fp1\" up\naddr add 198.51.100.9/32 dev vt-x\n"
                            "route replace 198.51.100.0/24 dev vt-x\n", NULL, 0, &e), 0);
    assert_int_equal(dp_proc_count() - procs, 0);
    /* what `ip` itself reads back (an unknown form: a process of its own) */
    char *o = NULL;
    assert_int_equal(dp_runv(ns, 0, &e, "ip", "link", "show", "eth0", NULL), 0);
    static const char *const show[] = {"ip", "-o", "addr", "show", "dev", "eth0", NULL};
    assert_int_equal(dp_run(ns, show, NULL, &o, 0, &e), 0);
    assert_non_null(strstr(o, "10.9.0.5/24"));
    free(o);
    static const char *const route[] = {"ip", "route", "show", "default", NULL};
    assert_int_equal(dp_run(ns, route, NULL, &o, 0, &e), 0);
    assert_non_null(strstr(o, "default via 10.9.0.1 dev eth0"));
    free(o);
    static const char *const link[] = {"ip", "-o", "link", "show", "vt-x", NULL};
    assert_int_equal(dp_run(out_ns, link, NULL, &o, 0, &e), 0);
    assert_non_null(strstr(o, "alias eni=eni-x fp1"));
    assert_non_null(strstr(o, "mtu 1450"));
    free(o);
    assert_true(dp_proc_count() - procs >= 3);    /* the link's probe is in-process (no output wanted) */
    /* the first failure ends a batch: eth0 stays up; with -force the next line still runs */
    verr_t f = {0};
    assert_int_equal(dp_run(ns, batch, "link set nosuch down\nlink set eth0 down\n", NULL, 0, &f), -1);
    assert_non_null(strstr(f.message, "Cannot find device \"nosuch\""));
    assert_int_equal(dp_run(ns, show, NULL, &o, 0, &e), 0);
    assert_non_null(strstr(o, "10.9.0.5/24"));
    free(o);
    memset(&f, 0, sizeof f);
    assert_int_equal(dp_run(ns, batch, "addr add 10.9.0.5/24 dev eth0\n", NULL, 0, &f), -1);
    assert_non_null(strstr(f.message, "RTNETLINK answers: File exists"));
    assert_int_equal(dp_run(ns, force, "link set nosuch down\nlink del eth0\n", NULL, DP_QUIET, NULL), -1);
    assert_int_not_equal(dp_runv(ns, DP_QUIET, NULL, "ip", "link", "show", "eth0", NULL), 0);
    assert_int_equal(dp_runv(NULL, 0, &e, "ip", "netns", "del", ns, NULL), 0);
    assert_int_equal(dp_runv(NULL, 0, &e, "ip", "netns", "del", out_ns, NULL), 0);
    struct stat sb;
    char path[128];
    snprintf(path, sizeof path, "/run/netns/%s", ns);
    assert_int_not_equal(stat(path, &sb), 0);
}

/* What observe reads, in-process (rtnetlink dumps) against the programs' own JSON (the
 * same listing spelt so that dp_run execs it): the fields observe reads are the same. */
static json_t *listed(const char *ns, const char *const argv[])
{
    verr_t e = {0};
    char *o = NULL;
    assert_int_equal(dp_run(ns, argv, NULL, &o, 0, &e), 0);
    json_t *j = json_loads(o, 0, NULL);
    free(o);
    assert_true(json_is_array(j));
    return j;
}

static void same_fields(json_t *a, json_t *b, const char *const keys[])
{
    assert_int_equal(json_array_size(a), json_array_size(b));
    for (size_t i = 0; i < json_array_size(a); i++)
        for (size_t k = 0; keys[k]; k++) {
            json_t *x = json_object_get(json_array_get(a, i), keys[k]), *y = json_object_get(json_array_get(b, i), keys[k]);
            if (!strcmp(keys[k], "linkinfo")) {
                x = json_object_get(x, "info_kind");
                y = json_object_get(y, "info_kind");
            }
            if (!(x == y || json_equal(x, y))) fprintf(stderr, "entry %zu: %s differs\n", i, keys[k]);
            assert_true(x == y || json_equal(x, y));
        }
}

static void test_listings_in_process(void **state)
{
    (void)state;
    char ns[64];
    snprintf(ns, sizeof ns, "virga-u%d-inproc", (int)getpid());
    verr_t e = {0};
    static const char *const batch[] = {"ip", "-batch", "-", NULL};
    assert_int_equal(dp_runv(NULL, 0, &e, "ip", "netns", "add", ns, NULL), 0);
    assert_int_equal(dp_run(ns, batch, "link set lo up\naddr add 169.254.169.254/32 dev lo\n"
                            "link add vb-9 type bridge\nlink set vb-9 alias \"fp one\" up\n"
                            "link add vx-9 type vxlan id 9 local 10.254.9.1 dstport 4789 nolearning\n"
                            "link set vx-9 master vb-9 up\nlink add vt-1 type veth peer name vtp-1\n"
                            "link set vt-1 alias \"eni=eni-1 fp vni=9\" master vb-9\ntuntap add dev vt-2 mode tap\n",
                            NULL, 0, &e), 0);
    assert_int_equal(dp_runv(ns, 0, &e, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx-9", "dst", "10.254.9.2",
                             NULL), 0);
    assert_int_equal(dp_runv(ns, 0, &e, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx-9", "dst", "10.254.9.3",
                             NULL), 0);
    long procs = dp_proc_count();
    static const char *const links[] = {"ip", "-j", "-d", "link", "show", NULL},
                             *const links_x[] = {"ip", "-json", "-details", "link", "show", NULL},
                             *const fdb[] = {"bridge", "-j", "fdb", "show", "dev", "vx-9", NULL},
                             *const fdb_x[] = {"bridge", "-json", "fdb", "show", "dev", "vx-9", NULL},
                             *const lo[] = {"ip", "-j", "addr", "show", "dev", "lo", NULL},
                             *const lo_x[] = {"ip", "-json", "-4", "addr", "show", "dev", "lo", NULL};
    json_t *l = listed(ns, links), *f = listed(ns, fdb), *a = listed(ns, lo);
    assert_int_equal(dp_proc_count() - procs, 0);
    json_t *lx = listed(ns, links_x), *fx = listed(ns, fdb_x), *ax = listed(ns, lo_x);
    assert_int_equal(dp_proc_count() - procs, 3);
    static const char *const link_keys[] = {"ifname", "ifalias", "master", "linkinfo", NULL},
                             *const fdb_keys[] = {"mac", "dst", NULL}, *const addr_keys[] = {"ifname", NULL};
    same_fields(l, lx, link_keys);
    same_fields(f, fx, fdb_keys);
    same_fields(a, ax, addr_keys);
    json_t *ai = json_object_get(json_array_get(a, 0), "addr_info"), *aix = json_object_get(json_array_get(ax, 0), "addr_info");
    assert_int_equal(json_array_size(ai), 2);
    static const char *const info_keys[] = {"local", "prefixlen", NULL};
    same_fields(ai, aix, info_keys);
    json_decref(l), json_decref(f), json_decref(a), json_decref(lx), json_decref(fx), json_decref(ax);
    /* a device that is not there: the tool's words */
    static const char *const none[] = {"bridge", "-j", "fdb", "show", "dev", "vx-8", NULL};
    char *o = NULL;
    verr_t g = {0};
    assert_int_equal(dp_run(ns, none, NULL, &o, 0, &g), -1);
    assert_non_null(strstr(g.message, "Cannot find device \"vx-8\""));
    assert_int_equal(dp_runv(NULL, 0, &e, "ip", "netns", "del", ns, NULL), 0);
}

/* The forms of a host's and a VPC's build and of a router's rebuild, in-process, read back
 * by the programs themselves: a bridge, a VXLAN as `ip` makes it, fdb entries as `bridge`
 * makes them (the gateway's sticky one), a sysctl of the namespace, rules, a table's
 * routes on the link, permanent neighbours, and the flushes that clear them. */
static void out_of(const char *ns, const char *const argv[], const char *want)
{
    verr_t e = {0};
    char *o = NULL;
    assert_int_equal(dp_run(ns, argv, NULL, &o, 0, &e), 0);
    if (!strstr(o, want)) fprintf(stderr, "%s: wanted \"%s\" in:\n%s\n", argv[1], want, o);
    assert_non_null(strstr(o, want));
    free(o);
}

/* (a listing of nothing may fail: "FIB table does not exist") */
static void out_lacks(const char *ns, const char *const argv[], const char *unwanted)
{
    verr_t e = {0};
    char *o = NULL;
    if (dp_run(ns, argv, NULL, &o, DP_QUIET, &e) < 0) o = NULL;
    assert_null(o ? strstr(o, unwanted) : NULL);
    free(o);
}

static void test_build_forms_in_process(void **state)
{
    (void)state;
    char ns[64];
    snprintf(ns, sizeof ns, "virga-u%d-inproc", (int)getpid());
    verr_t e = {0};
    long procs = dp_proc_count();
    assert_int_equal(dp_runv(NULL, 0, &e, "ip", "netns", "add", ns, NULL), 0);
    static const char *const batch[] = {"ip", "-batch", "-", NULL}, *const force[] = {"ip", "-force", "-batch", "-", NULL};
    assert_int_equal(dp_run(ns, batch, "link add ul type bridge\naddr add 10.254.9.1/24 dev ul\nlink set ul up\n"
                            "link add vb-9 type bridge\nlink set vb-9 up\n"
                            "link add vx-9 type vxlan id 9 local 10.254.9.1 dstport 4789 nolearning dev ul\n"
                            "link set vx-9 master vb-9 up\nlink add vr-9 mtu 1450 type veth peer name gw0 mtu 1450\n"
                            "link set vr-9 master vb-9 up\nlink set gw0 address 02:fe:00:00:09:01 up\n"
                            "addr add 172.31.0.1/20 dev gw0\n", NULL, 0, &e), 0);
    assert_int_equal(dp_runv(ns, 0, &e, "bridge", "fdb", "replace", "02:fe:00:00:09:01", "dev", "vr-9", "master", "static",
                             "sticky", NULL), 0);
    assert_int_equal(dp_runv(ns, 0, &e, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx-9", "dst", "10.254.9.2",
                             NULL), 0);
    assert_int_equal(dp_runv(ns, 0, &e, "ip", "link", "set", "vx-9", "alias", "vni=9 local=10.254.9.1", NULL), 0);
    assert_int_equal(dp_runv(ns, 0, &e, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
                             "net.ipv4.conf.gw0.send_redirects=0", NULL), 0);
    assert_int_equal(dp_run(ns, batch, "rule add priority 1000 from 172.31.0.0/20 lookup 1000\n"
                            "neigh replace 172.31.0.6 lladdr 02:00:00:00:00:02 dev gw0 nud permanent\n"
                            "route replace 10.99.0.0/24 via 172.31.0.6 dev gw0 onlink table 1000\n", NULL, 0, &e), 0);
    assert_int_equal(dp_proc_count() - procs, 0);
    static const char *const vx[] = {"ip", "-d", "link", "show", "vx-9", NULL};
    out_of(ns, vx, "vxlan id 9 local 10.254.9.1 dev ul srcport 0 0 dstport 4789 nolearning ttl auto ageing 300 udpcsum");
    out_of(ns, vx, "master vb-9");
    out_of(ns, vx, "alias vni=9 local=10.254.9.1");
    static const char *const fdb_vr[] = {"bridge", "fdb", "show", "dev", "vr-9", NULL};
    out_of(ns, fdb_vr, "02:fe:00:00:09:01 sticky master vb-9 static");
    static const char *const fdb_vx[] = {"bridge", "fdb", "show", "dev", "vx-9", NULL};
    out_of(ns, fdb_vx, "00:00:00:00:00:00 dst 10.254.9.2 self permanent");
    static const char *const fwd[] = {"sysctl", "-n", "net.ipv4.ip_forward", "net.ipv4.conf.gw0.send_redirects", NULL};
    out_of(ns, fwd, "1\n0\n");
    static const char *const rules[] = {"ip", "rule", "show", NULL};
    out_of(ns, rules, "1000:\tfrom 172.31.0.0/20 lookup 1000");
    static const char *const neigh[] = {"ip", "neigh", "show", "dev", "gw0", NULL};
    out_of(ns, neigh, "172.31.0.6 lladdr 02:00:00:00:00:02 PERMANENT");
    static const char *const table[] = {"ip", "route", "show", "table", "1000", NULL};
    out_of(ns, table, "10.99.0.0/24 via 172.31.0.6 dev gw0 onlink");
    /* a router's rebuild clears all of it, as router_routes does (the rule 1001 it also tries
     * is not there: that line fails, the others ran, as with ip -force), and the addresses */
    assert_int_equal(dp_run(ns, force, "neigh flush dev gw0 nud permanent\nrule del priority 1000\nroute flush table 1000\n"
                            "rule del priority 1001\nroute flush table 1001\n", NULL, DP_QUIET, NULL), -1);
    assert_int_equal(dp_runv(ns, 0, &e, "ip", "addr", "flush", "dev", "gw0", NULL), 0);
    assert_int_equal(dp_runv(ns, DP_QUIET, NULL, "ip", "route", "flush", "dev", "gw0", NULL), 0);
    out_lacks(ns, rules, "lookup 1000");
    out_lacks(ns, neigh, "PERMANENT");
    out_lacks(ns, table, "10.99.0.0");
    static const char *const addrs[] = {"ip", "addr", "show", "dev", "gw0", NULL};
    out_lacks(ns, addrs, "172.31.0.1");
    /* a QEMU interface's tap, persistent, as `ip tuntap add` makes it */
    assert_int_equal(dp_run(ns, batch, "tuntap add dev vt-9 mode tap\nlink set vt-9 mtu 1450\nlink set vt-9 master vb-9 up\n",
                            NULL, 0, &e), 0);
    static const char *const tap[] = {"ip", "-d", "link", "show", "vt-9", NULL};
    out_of(ns, tap, "tun type tap pi off vnet_hdr off persist on");
    out_of(ns, tap, "mtu 1450");
    /* the probe, and what is not understood (a listing) goes to the program */
    assert_int_equal(dp_runv(ns, 0, &e, "ip", "link", "show", "vb-9", NULL), 0);
    verr_t f = {0};
    assert_int_equal(dp_runv(ns, 0, &f, "ip", "link", "show", "nosuch", NULL), -1);
    assert_non_null(strstr(f.message, "Device \"nosuch\" does not exist"));
    assert_int_equal(dp_runv(ns, 0, &e, "bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vx-9", "dst", "10.254.9.2",
                             NULL), 0);
    out_lacks(ns, fdb_vx, "10.254.9.2");
    assert_int_equal(dp_runv(NULL, 0, &e, "ip", "netns", "del", ns, NULL), 0);
}

int main(void)
{
    struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_contract, setup, teardown, &drivers[0]),
        cmocka_unit_test_prestate_setup_teardown(test_contract, setup, teardown, &drivers[1]),
        cmocka_unit_test_prestate_setup_teardown(test_changes, setup, teardown, &drivers[0]),
        cmocka_unit_test_prestate_setup_teardown(test_changes, setup, teardown, &drivers[1]),
        cmocka_unit_test(test_changes_as_full),
        cmocka_unit_test_prestate_setup_teardown(test_unlabelled_stand_in_adopted, setup, teardown, &drivers[0]),
        cmocka_unit_test_prestate_setup_teardown(test_unlabelled_stand_in_adopted, setup, teardown, &drivers[1]),
        cmocka_unit_test(test_invalid_documents),
        cmocka_unit_test(test_render_security_groups),
        cmocka_unit_test(test_render_nat_and_dhcp),
        cmocka_unit_test(test_build_order),
        cmocka_unit_test(test_attached_order),
        cmocka_unit_test(test_state_dir_must_be_traversable),
        /* last: the linux driver's only, dropped below when not root */
        cmocka_unit_test_prestate_setup_teardown(test_launch_commands, setup, teardown, &drivers[1]),
        cmocka_unit_test_teardown(test_ip_in_process, drop_inproc_namespaces),
        cmocka_unit_test_teardown(test_build_forms_in_process, drop_inproc_namespaces),
        cmocka_unit_test_teardown(test_listings_in_process, drop_inproc_namespaces),
    };
    size_t n = ARRAY_LEN(tests);
    if (geteuid() != 0) {       /* the linux driver needs root: its rows are skipped */
        memmove(&tests[1], &tests[2], (n - 2) * sizeof tests[0]);
        n--;
        memmove(&tests[2], &tests[3], (n - 3) * sizeof tests[0]);
        n--;
        memmove(&tests[4], &tests[5], (n - 5) * sizeof tests[0]);
        n--;
        n -= 3;    /* test_launch_commands, test_ip_in_process, test_build_forms_in_process */
    }
    return _cmocka_run_group_tests("datapath", tests, n, NULL, NULL);
}
