/* test_metadata_http.c - the metadata service's HTTP layer (services/compute/agent/
 * metadata_http.c) with a test double in place of compute.instance_metadata: listings from
 * flat keys as EC2 formats them, values, user-data, the identity document, IMDSv2 tokens
 * (TTL bounds, 401 for a bad one), the cache, and errors. As root, also over the linux
 * datapath: a stand-in instance namespace curls 169.254.169.254 in its VPC's router
 * namespace (the socket opened there by md_listen_in_netns), and a process behind a NAT
 * inside the instance reads metadata but gets no token (the hop limit). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "datapath.h"
#include "dp_exec.h"
#include "metadata_http.h"
#include "metadata_server.h"

/* What compute would answer for the one instance the double knows. */
static const char INSTANCE[] =
    "{\"instance_id\":\"i-0123456789abcdef0\","
    " \"meta_data\":{\"instance-id\":\"i-0123456789abcdef0\",\"ami-id\":\"ami-0aaaaaaaaaaaaaaaa\","
    "  \"instance-type\":\"t3.micro\",\"local-ipv4\":\"%s\",\"mac\":\"02:00:00:00:00:05\","
    "  \"hostname\":\"ip-172-31-0-5\",\"placement/availability-zone\":\"us-east-1a\","
    "  \"public-keys/0/openssh-key\":\"ssh-ed25519 AAAA test\",\"security-groups\":[\"default\",\"web\"],"
    "  \"network/interfaces/macs/02:00:00:00:00:05/local-ipv4s\":\"%s\","
    "  \"network/interfaces/macs/02:00:00:00:00:05/subnet-id\":\"subnet-1\"},"
    " \"user_data\":\"IyEvYmluL3NoCmVjaG8gaGkK\","
    " \"identity_document\":{\"instanceId\":\"i-0123456789abcdef0\",\"region\":\"us-east-1\",\"privateIp\":\"%s\"}}";

typedef struct dbl {
    const char *vpc_id, *ip;    /* the instance it knows */
    int calls;
    int user_data_null;
    int refuse;                 /* answer every lookup with this status (a compute refusing) */
    const char *options;        /* the instance's metadata_options, as JSON text */
    const char *tags;           /* its meta_data's tags/instance/<key> members, as JSON text */
} dbl_t;

static int lookup(void *app, const char *vpc_id, const char *ip, bus_reply_fn cb, void *arg, verr_t *e)
{
    (void)e;
    dbl_t *d = app;
    __atomic_add_fetch(&d->calls, 1, __ATOMIC_SEQ_CST);
    if (d->refuse) {
        verr_t no;
        verr_set(&no, d->refuse, "AccessDenied", "refused");
        cb(arg, NULL, &no);
        return 0;
    }
    if (strcmp(vpc_id, d->vpc_id) || strcmp(ip, d->ip)) {
        verr_t nf;
        verr_set(&nf, 404, "InvalidInstanceID.NotFound", "no instance with %s in %s", ip, vpc_id);
        cb(arg, NULL, &nf);
        return 0;
    }
    char *text = xasprintf(INSTANCE, ip, ip, ip);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    if (d->user_data_null) json_object_set_new(j, "user_data", json_null());
    if (d->options) json_object_set_new(j, "metadata_options", json_loads(d->options, 0, NULL));
    if (d->tags) {
        json_t *t = json_loads(d->tags, 0, NULL);
        json_object_update(json_object_get(j, "meta_data"), t);
        json_decref(t);
    }
    cb(arg, j, NULL);
    return 0;
}

/* curl, in a namespace (or not): the body, and the status in *status (0: no answer). */
static char *curl(const char *ns, const char *method, const char *url, const char *header, int *status)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s%s%s curl -s -m 5 -X %s %s%s%s -w '\\n%%{http_code}' '%s'", ns ? "ip netns exec " : "",
             ns ? ns : "", ns ? "" : "", method, header ? "-H '" : "", header ? header : "", header ? "'" : "", url);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char *out = xcalloc(1, 65536);
    size_t n = fread(out, 1, 65535, p);
    pclose(p);
    out[n] = 0;
    char *nl = strrchr(out, '\n');
    *status = nl ? atoi(nl + 1) : 0;
    if (nl) *nl = 0;
    return out;
}

static int listen_local(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static md_http_opts_t opts(dbl_t *d)
{
    md_http_opts_t o = {.lookup = lookup, .lookup_app = d, .cache_s = 30, .hop_limit = 1};
    crypto_auth_hmacsha256_keygen(o.token_key);
    return o;
}

/* A server of VPC vpc-1 on a loopback port with options o; base = its URL. */
static md_http_t *serve_local(const md_http_opts_t *o, char base[64])
{
    int port;
    int fd = listen_local(&port);
    verr_t e = {0};
    md_http_t *m = md_http_start(fd, "vpc-1", o, &e);
    assert_non_null(m);
    snprintf(base, 64, "http://127.0.0.1:%d", port);
    return m;
}

static void test_listing_from_flat_keys(void **state)
{
    (void)state;
    json_t *md = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s,s]}", "instance-id", "i-1", "placement/availability-zone",
                           "az1", "public-keys/0/openssh-key", "k", "public-keys", "0=my-key",
                           "network/interfaces/macs/02:00/local-ipv4s", "10.0.0.5", "security-groups", "a", "b");
    char *t = md_meta_data_text(md, "");
    assert_string_equal(t, "instance-id\nnetwork/\nplacement/\npublic-keys/\nsecurity-groups");
    free(t);
    /* public-keys lists "<index>=<key name>" as EC2 does, its index the key's fields */
    t = md_meta_data_text(md, "public-keys/");
    assert_string_equal(t, "0=my-key");
    free(t);
    t = md_meta_data_text(md, "public-keys/0/");
    assert_string_equal(t, "openssh-key");
    free(t);
    t = md_meta_data_text(md, "placement/");
    assert_string_equal(t, "availability-zone");
    free(t);
    t = md_meta_data_text(md, "network/interfaces/macs");
    assert_string_equal(t, "02:00/");
    free(t);
    t = md_meta_data_text(md, "public-keys/0/openssh-key");
    assert_string_equal(t, "k");
    free(t);
    t = md_meta_data_text(md, "security-groups");
    assert_string_equal(t, "a\nb");
    free(t);
    assert_null(md_meta_data_text(md, "nothing"));
    assert_null(md_meta_data_text(md, "placement/region"));
    json_decref(md);
}

/* GET path with header hdr (NULL: none) from the server at base; the status into st */
#define GET(path, hdr) (snprintf(url, sizeof url, "%s%s", base, path), curl(NULL, "GET", url, hdr, &st))

/* GET base+path answers status with body (NULL: any body). */
static void expect_get(const char *base, const char *path, int status, const char *body)
{
    char url[256];
    int st;
    snprintf(url, sizeof url, "%s%s", base, path);
    char *b = curl(NULL, "GET", url, NULL, &st);
    if (st != status || (body && strcmp(b, body)))
        fail_msg("GET %s: %d \"%s\", not %d \"%s\"", path, st, b, status, body ? body : "*");
    free(b);
}

/* InstanceMetadataTags enabled: compute's document has a tags/instance/<key> member per
 * tag (compute's metadata_options.c); the keys are listed one a line, each gives its
 * value (an empty one too); disabled (no such members): 404, as on AWS. */
static void test_instance_tags_paths(void **state)
{
    (void)state;
    dbl_t d = {.vpc_id = "vpc-1", .ip = "127.0.0.1",
               .tags = "{\"tags/instance/Name\":\"web 1\",\"tags/instance/env\":\"\","
                       "\"tags/instance/a.b:c@d\":\"x/y\"}"};
    md_http_opts_t o = opts(&d);
    char base[64];
    md_http_t *m = serve_local(&o, base);
    static const struct {
        const char *path;
        int status;
        const char *body;
    } on[] = {
        {"/latest/meta-data/tags/", 200, "instance/"},
        {"/latest/meta-data/tags/instance", 200, "Name\na.b:c@d\nenv"},
        {"/latest/meta-data/tags/instance/", 200, "Name\na.b:c@d\nenv"},
        {"/latest/meta-data/tags/instance/Name", 200, "web 1"},
        {"/latest/meta-data/tags/instance/a.b:c@d", 200, "x/y"},
        {"/latest/meta-data/tags/instance/env", 200, ""},
        {"/latest/meta-data/tags/instance/nope", 404, NULL},
        {"/latest/meta-data/", 200, "ami-id\nhostname\ninstance-id\ninstance-type\nlocal-ipv4\nmac\nnetwork/\n"
                                    "placement/\npublic-keys/\nsecurity-groups\ntags/"},
    }, off[] = {
        {"/latest/meta-data/tags", 404, NULL},
        {"/latest/meta-data/tags/instance", 404, NULL},
        {"/latest/meta-data/tags/instance/Name", 404, NULL},
        {"/latest/meta-data/", 200, "ami-id\nhostname\ninstance-id\ninstance-type\nlocal-ipv4\nmac\nnetwork/\n"
                                    "placement/\npublic-keys/\nsecurity-groups"},
    };
    for (size_t i = 0; i < ARRAY_LEN(on); i++)
        expect_get(base, on[i].path, on[i].status, on[i].body);
    md_http_stop(m);

    d = (dbl_t){.vpc_id = "vpc-1", .ip = "127.0.0.1"};   /* tags not in the metadata */
    o = opts(&d);
    m = serve_local(&o, base);
    for (size_t i = 0; i < ARRAY_LEN(off); i++)
        expect_get(base, off[i].path, off[i].status, off[i].body);
    md_http_stop(m);
}

static void test_http_on_loopback(void **state)
{
    (void)state;
    dbl_t d = {.vpc_id = "vpc-1", .ip = "127.0.0.1"};
    md_http_opts_t o = opts(&d);
    int st;
    char base[64], url[256];
    md_http_t *m = serve_local(&o, base);
    char *b = GET("/latest/meta-data/", NULL);
    assert_int_equal(st, 200);
    assert_string_equal(b, "ami-id\nhostname\ninstance-id\ninstance-type\nlocal-ipv4\nmac\nnetwork/\nplacement/\n"
                           "public-keys/\nsecurity-groups");
    free(b);
    b = GET("/latest/meta-data/instance-id", NULL);
    assert_string_equal(b, "i-0123456789abcdef0");
    free(b);
    b = GET("/latest/meta-data/placement/availability-zone", NULL);
    assert_string_equal(b, "us-east-1a");
    free(b);
    b = GET("/latest/meta-data/nope", NULL);
    assert_int_equal(st, 404);
    free(b);
    b = GET("/latest/user-data", NULL);
    assert_int_equal(st, 200);
    assert_string_equal(b, "#!/bin/sh\necho hi\n");
    free(b);
    b = GET("/latest/dynamic/instance-identity/document", NULL);
    json_t *doc = json_loads(b, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "instanceId")), "i-0123456789abcdef0");
    json_decref(doc);
    free(b);
    b = GET("/latest/", NULL);
    assert_string_equal(b, "dynamic\nmeta-data\nuser-data");
    free(b);
    /* compute was asked once: the rest came from the cache */
    assert_int_equal(d.calls, 1);
    /* its answer forgotten (its public address changed: metadata_server.c), the next
     * request asks again; another address's forgetting changes nothing */
    md_http_forget(m, "10.1.2.3");
    free(GET("/latest/meta-data/instance-id", NULL));
    assert_int_equal(d.calls, 1);
    md_http_forget(m, "127.0.0.1");
    free(GET("/latest/meta-data/instance-id", NULL));
    assert_int_equal(st, 200);
    assert_int_equal(d.calls, 2);

    /* IMDSv2 */
    snprintf(url, sizeof url, "%s/latest/api/token", base);
    char *tok = curl(NULL, "PUT", url, "X-aws-ec2-metadata-token-ttl-seconds: 60", &st);
    assert_int_equal(st, 200);
    assert_true(strlen(tok) > 64);
    char hdr[256];
    snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", tok);
    b = GET("/latest/meta-data/instance-id", hdr);
    assert_int_equal(st, 200);
    free(b);
    tok[strlen(tok) - 1] ^= 1;   /* a forged token */
    snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", tok);
    b = GET("/latest/meta-data/instance-id", hdr);
    assert_int_equal(st, 401);
    free(b);
    free(tok);
    snprintf(url, sizeof url, "%s/latest/api/token", base);
    static const char *const bad_ttls[] = {NULL, "0", "21601", "12x"};
    for (size_t i = 0; i < ARRAY_LEN(bad_ttls); i++) {
        snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token-ttl-seconds: %s", bad_ttls[i] ? bad_ttls[i] : "");
        free(curl(NULL, "PUT", url, bad_ttls[i] ? hdr : NULL, &st));
        assert_int_equal(st, 400);
    }
    free(curl(NULL, "POST", url, NULL, &st));
    assert_int_equal(st, 405);
    md_http_stop(m);

    /* tokens required; an instance without user-data; one the lookup does not know */
    d = (dbl_t){.vpc_id = "vpc-1", .ip = "127.0.0.1", .user_data_null = 1};
    o = opts(&d);
    o.tokens_required = 1;
    m = serve_local(&o, base);
    free(GET("/latest/meta-data/", NULL));
    assert_int_equal(st, 401);
    snprintf(url, sizeof url, "%s/latest/api/token", base);
    tok = curl(NULL, "PUT", url, "X-aws-ec2-metadata-token-ttl-seconds: 21600", &st);
    snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", tok);
    free(tok);
    free(GET("/latest/user-data", hdr));
    assert_int_equal(st, 404);
    md_http_stop(m);
    d = (dbl_t){.vpc_id = "vpc-1", .ip = "10.9.9.9"};
    o = opts(&d);
    m = serve_local(&o, base);
    free(GET("/latest/meta-data/instance-id", NULL));
    assert_int_equal(st, 404);
    md_http_stop(m);
    /* the instance's own options over the server's: tokens required though the host's
     * default is optional, a token still given; then its endpoint turned off: 403 to all */
    d = (dbl_t){.vpc_id = "vpc-1", .ip = "127.0.0.1", .options = "{\"http_tokens\":\"required\",\"hop_limit\":2}"};
    o = opts(&d);
    m = serve_local(&o, base);
    free(GET("/latest/meta-data/instance-id", NULL));
    assert_int_equal(st, 401);
    snprintf(url, sizeof url, "%s/latest/api/token", base);
    tok = curl(NULL, "PUT", url, "X-aws-ec2-metadata-token-ttl-seconds: 60", &st);
    assert_int_equal(st, 200);
    snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %s", tok);
    free(tok);
    b = GET("/latest/meta-data/instance-id", hdr);
    assert_int_equal(st, 200);
    assert_string_equal(b, "i-0123456789abcdef0");
    free(b);
    md_http_stop(m);
    d = (dbl_t){.vpc_id = "vpc-1", .ip = "127.0.0.1", .options = "{\"http_endpoint\":\"disabled\"}"};
    o = opts(&d);
    m = serve_local(&o, base);
    free(GET("/latest/meta-data/instance-id", NULL));
    assert_int_equal(st, 403);
    free(GET("/latest/", NULL));
    assert_int_equal(st, 403);
    snprintf(url, sizeof url, "%s/latest/api/token", base);
    free(curl(NULL, "PUT", url, "X-aws-ec2-metadata-token-ttl-seconds: 60", &st));
    assert_int_equal(st, 403);
    md_http_stop(m);
    /* any other refusal from compute (one just restarted) is not the instance's absence:
     * 503, which the guest asks again, never 404, which it takes as absent for good */
    d = (dbl_t){.vpc_id = "vpc-1", .ip = "127.0.0.1", .refuse = 403};
    o = opts(&d);
    m = serve_local(&o, base);
    free(GET("/latest/user-data", NULL));
    assert_int_equal(st, 503);
    md_http_stop(m);
#undef GET
}

/* ---- over the linux datapath (root) ---- */

static const char HOST_DOC[] =
    "{\"host\":\"m1\",\"generation\":1,\"underlay_ip\":\"10.254.0.11\","
    "\"vpcs\":[{\"vpc_id\":\"vpc-1\",\"vni\":1001,\"cidr\":\"172.31.0.0/16\",\"peers\":[],"
    "  \"subnets\":[{\"subnet_id\":\"subnet-1\",\"cidr\":\"172.31.0.0/20\",\"gateway\":\"172.31.0.1\",\"dns\":\"172.31.0.2\"}]}],"
    "\"interfaces\":[{\"eni_id\":\"eni-5\",\"vpc_id\":\"vpc-1\",\"subnet_id\":\"subnet-1\",\"mac\":\"02:00:00:00:00:05\","
    "  \"ip\":\"172.31.0.5\",\"prefix_len\":20,\"device\":\"vt-5\",\"groups\":[\"sg-1\"]}],"
    "\"security_groups\":[{\"group_id\":\"sg-1\",\"ingress\":[],\"egress\":[]}],\"group_members\":{}}";

static void sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) fail_msg("%s failed", cmd);
}

static char prefix[32], statedir[64], behind[96];
static dp_driver_t *dp;

static int ns_setup(void **state)
{
    (void)state;
    snprintf(prefix, sizeof prefix, "virga-m%d-", (int)getpid() % 100000);
    snprintf(statedir, sizeof statedir, "/tmp/virga-md-unit-%d", (int)getpid());
    snprintf(behind, sizeof behind, "%si-m1.behind", prefix);
    dp_config_t cfg = {.prefix = prefix, .state_dir = statedir};
    verr_t e = {0};
    dp = dp_open("linux", &cfg, &e);
    return dp ? 0 : -1;
}

/* Whatever the test reached: nothing of it is left. */
static int ns_teardown(void **state)
{
    (void)state;
    verr_t e = {0};
    dp_runv(NULL, DP_QUIET, NULL, "ip", "netns", "del", behind, NULL);
    int rc = dp_teardown_all(dp, &e);
    dp_close(dp);
    rmdir(statedir);
    return rc;
}

static void test_from_a_stand_in_namespace(void **state)
{
    (void)state;
    char rns[96], ins[96];
    verr_t e = {0};
    dp_desired_t *want = dp_desired_parse(HOST_DOC, &e);
    assert_non_null(want);
    dp_stats_t st = {0};
    if (dp_apply(dp, want, &st, &e) < 0) fail_msg("apply: %s", e.message);
    snprintf(rns, sizeof rns, "%sr-m1.1001", prefix);
    snprintf(ins, sizeof ins, "%si-m1.eni-5", prefix);

    dbl_t d = {.vpc_id = "vpc-1", .ip = "172.31.0.5"};
    md_http_opts_t o = opts(&d);
    int fd = md_listen_in_netns(rns, DP_METADATA_IP, 80, &e);
    if (fd < 0) fail_msg("%s", e.message);
    md_http_t *m = md_http_start(fd, "vpc-1", &o, &e);
    assert_non_null(m);
    int code;
    char *b = curl(ins, "GET", "http://169.254.169.254/latest/meta-data/local-ipv4", NULL, &code);
    assert_int_equal(code, 200);
    assert_string_equal(b, "172.31.0.5");   /* known by its source address, through its gateway */
    free(b);
    b = curl(ins, "PUT", "http://169.254.169.254/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 30", &code);
    assert_int_equal(code, 200);
    free(b);

    /* A container inside the instance, behind its NAT: one hop more. It reads metadata
     * (IMDSv1) but the token's answer, sent with TTL 1, dies at the instance. */
    sh("ip netns add %s", behind);
    sh("ip netns exec %s ip link add c1 type veth peer name c0 netns %s", ins, behind);
    sh("ip netns exec %s ip addr add 10.99.0.1/24 dev c1 && ip netns exec %s ip link set c1 up", ins, ins);
    sh("ip netns exec %s ip addr add 10.99.0.2/24 dev c0 && ip netns exec %s ip link set c0 up", behind, behind);
    sh("ip netns exec %s ip route add default via 10.99.0.1", behind);
    sh("ip netns exec %s sysctl -q -w net.ipv4.ip_forward=1", ins);
    sh("echo 'table ip nat { chain post { type nat hook postrouting priority 100; oifname \"eth0\" masquerade; }; }'"
       " | ip netns exec %s nft -f -", ins);
    b = curl(behind, "GET", "http://169.254.169.254/latest/meta-data/instance-id", NULL, &code);
    assert_int_equal(code, 200);
    assert_string_equal(b, "i-0123456789abcdef0");
    free(b);
    b = curl(behind, "PUT", "http://169.254.169.254/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 30",
             &code);
    assert_int_equal(code, 0);   /* no answer reached it */
    free(b);
    md_http_stop(m);
    /* the instance's own hop limit of 2 (ModifyInstanceMetadataOptions), over the host's 1:
     * the container gets its token */
    d = (dbl_t){.vpc_id = "vpc-1", .ip = "172.31.0.5", .options = "{\"hop_limit\":2}"};
    o = opts(&d);
    fd = md_listen_in_netns(rns, DP_METADATA_IP, 80, &e);
    if (fd < 0) fail_msg("%s", e.message);
    assert_non_null(m = md_http_start(fd, "vpc-1", &o, &e));
    b = curl(behind, "PUT", "http://169.254.169.254/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds: 30",
             &code);
    assert_int_equal(code, 200);
    free(b);
    sh("ip netns del %s", behind);

    md_http_stop(m);
    dp_desired_free(want);
}

/* The document compute sent ahead (a launch's doorbell: metadata_server.c) answers
 * before the cache and the lookup; without one for the address, compute is asked. */
static dbl_t *primed_dbl;
static json_t *primed(void *app, const char *vpc_id, const char *ip)
{
    (void)app;
    if (strcmp(vpc_id, "vpc-1") || strcmp(ip, "127.0.0.1") || !primed_dbl)
        return NULL;
    char *text = xasprintf(INSTANCE, ip, ip, ip);
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    json_object_set_new(json_object_get(j, "meta_data"), "instance-id", json_string("i-0000000000000sent"));
    return j;
}

static void test_sent_ahead_answers_first(void **state)
{
    (void)state;
    dbl_t d = {.vpc_id = "vpc-1", .ip = "127.0.0.1"};
    md_http_opts_t o = opts(&d);
    o.primed = primed;
    primed_dbl = &d;
    int st;
    char base[64], url[256];
    md_http_t *m = serve_local(&o, base);
#define GET(path, hdr) (snprintf(url, sizeof url, "%s%s", base, path), curl(NULL, "GET", url, hdr, &st))
    char *b = GET("/latest/meta-data/instance-id", NULL);
    assert_int_equal(st, 200);
    assert_string_equal(b, "i-0000000000000sent");
    free(b);
    b = GET("/latest/user-data", NULL);
    assert_string_equal(b, "#!/bin/sh\necho hi\n");
    free(b);
    assert_int_equal(d.calls, 0);
    /* none sent ahead (or dropped): compute is asked */
    primed_dbl = NULL;
    b = GET("/latest/meta-data/instance-id", NULL);
    assert_string_equal(b, "i-0123456789abcdef0");
    free(b);
    assert_int_equal(d.calls, 1);
#undef GET
    md_http_stop(m);
}

int main(void)
{
    struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listing_from_flat_keys),
        cmocka_unit_test(test_http_on_loopback),
        cmocka_unit_test(test_sent_ahead_answers_first),
        cmocka_unit_test(test_instance_tags_paths),
        cmocka_unit_test_setup_teardown(test_from_a_stand_in_namespace, ns_setup, ns_teardown),
    };
    size_t n = ARRAY_LEN(tests);
    if (geteuid() != 0) n--;   /* namespaces need root: that test is skipped */
    return _cmocka_run_group_tests("metadata_http", tests, n, NULL, NULL);
}
