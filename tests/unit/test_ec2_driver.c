/* test_ec2_driver.c - the instance driver contract (vm_driver.h) run against the `ec2`
 * driver, with moto's EC2 server (tests/.venv-moto, made by tests/moto-setup.sh) as the
 * public cloud: ensure running / idempotent (one remote instance, the same remote id) /
 * stopped / running again, reboot_seq applied and only recorded while stopped, remove
 * terminates it there and is idempotent; a driver opened again after its agent died
 * before writing anything down adopts the remote instance (no second one); a second
 * remote instance claiming the same local id (moto ignores ClientToken) is terminated by
 * list; an image with no mapping is InvalidAMIID.NotFound; a public cloud that does not
 * answer is PublicCloudUnavailable after the retries, and list fails rather than
 * claiming nothing runs; bad ids are refused. Skipped, saying why, without moto. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "ec2_api.h"
#include "sealed.h"
#include "vm_driver.h"
#include "vm_state.h"

#define ID1 "i-0000000000000e0c1"
#define ID2 "i-0000000000000e0c2"
#define MOTO_AMI "ami-03cf127a"

static pid_t moto_pid;
static int moto_port;
static char moto_why[256];

typedef struct ctx {
    char dir[PATH_MAX];
    config_t *cfg;
    vm_driver_t *d;
} ctx_t;

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &l);
    close(s);
    return ntohs(a.sin_port);
}

static int port_open(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return ok;
}

static int group_setup(void **state)
{
    (void)state;
    const char *bin = getenv("VIRGA_MOTO_SERVER");
    static char def[PATH_MAX];
    if (!bin) {
        snprintf(def, sizeof def, "tests/.venv-moto/bin/moto_server");
        bin = def;
    }
    if (access(bin, X_OK) != 0) {
        snprintf(moto_why, sizeof moto_why, "no moto server at %.160s: run tests/moto-setup.sh", bin);
        return 0;
    }
    moto_port = free_port();
    char port[16];
    snprintf(port, sizeof port, "%d", moto_port);
    moto_pid = fork();
    if (moto_pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl(bin, bin, "-H", "127.0.0.1", "-p", port, (char *)NULL);
        _exit(127);
    }
    /* up to 60 s: moto imports a large Python package, and make test runs this beside
       the RADOS test and fuzzing on two cores */
    for (int i = 0; i < 1200 && !port_open(moto_port); i++)
        usleep(50000);
    if (!port_open(moto_port))
        snprintf(moto_why, sizeof moto_why, "moto_server did not open port %d", moto_port);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (moto_pid > 0) {
        kill(moto_pid, SIGTERM);
        waitpid(moto_pid, NULL, 0);
    }
    return 0;
}

static void set(ctx_t *x, const char *key, const char *fmt, ...)
{
    char v[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    config_set(x->cfg, key, v);
}

static int setup(void **state)
{
    /* Without moto, make nothing: cmocka runs no teardown after a setup that fails (a
     * skip() here is a failure), so a directory made first was left in /tmp by every run;
     * the test body skips instead (open_driver). */
    *state = NULL;
    if (moto_why[0])
        return 0;
    ctx_t *x = calloc(1, sizeof *x);
    snprintf(x->dir, sizeof x->dir, "/tmp/virga-ec2-test-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    x->cfg = config_new();
    char keyf[PATH_MAX + 16], credf[PATH_MAX + 16];
    snprintf(keyf, sizeof keyf, "%s/hybrid.key", x->dir);
    snprintf(credf, sizeof credf, "%s/moto.cred", x->dir);
    unsigned char key[SEALED_KEY_LEN];
    randombytes_buf(key, sizeof key);
    verr_t e;
    assert_int_equal(vm_write_file(keyf, (const char *)key, sizeof key, VM_WRITE_PLAIN, &e), 0);
    char *sealed = sealed_seal(key, "{\"access_key_id\":\"AKIAMOTO\",\"secret_access_key\":\"secret\"}");
    assert_int_equal(vm_write_file(credf, sealed, strlen(sealed), VM_WRITE_PLAIN, &e), 0);
    free(sealed);
    set(x, "hybrid.key_file", "%s", keyf);
    set(x, "hybrid.owner", "test-%d", (int)getpid());
    set(x, "hybrid.clouds.moto.endpoint", "http://127.0.0.1:%d/", moto_port);
    set(x, "hybrid.clouds.moto.credentials_file", "%s", credf);
    set(x, "hybrid.clouds.moto.images.ami-00000000000000001", MOTO_AMI);
    set(x, "hybrid.clouds.moto.instance_types.t3.nano", "t2.micro");
    set(x, "hybrid.clouds.moto.poll_ms", "50");
    set(x, "hybrid.clouds.moto.console_refresh_s", "0");
    *state = x;
    return 0;
}

static void open_driver(ctx_t *x)
{
    if (!x)
        skip();
    char sd[PATH_MAX + 8];
    snprintf(sd, sizeof sd, "%s/ec2", x->dir);
    vm_driver_cfg_t c = {.state_dir = sd, .host_id = "moto", .prefix = "vtest-", .cfg = x->cfg};
    verr_t e = {0};
    x->d = vm_driver_open("ec2", &c, &e);
    if (!x->d)
        fail_msg("open: %s %s", e.code, e.message);
}

static int teardown(void **state)
{
    ctx_t *x = *state;
    if (!x)
        return 0;
    if (x->d) {   /* leave nothing running at moto */
        vm_status_t *v = NULL;
        size_t n = 0;
        verr_t e;
        if (vm_driver_list(x->d, &v, &n, &e) == 0)
            for (size_t i = 0; i < n; i++)
                vm_driver_remove(x->d, v[i].id, &e);
        free(v);
    }
    vm_driver_close(x->d);
    config_free(x->cfg);
    verr_t e;
    vm_rmtree(x->dir, &e);
    free(x);
    return 0;
}

static void spec_of(vm_spec_t *s, const char *id, vm_power_t p, uint64_t seq)
{
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->driver, sizeof s->driver, "ec2");
    snprintf(s->image_id, sizeof s->image_id, "ami-00000000000000001");
    snprintf(s->instance_type, sizeof s->instance_type, "t3.nano");
    s->vcpus = 1;
    s->memory_mib = 512;
    s->power = p;
    s->reboot_seq = seq;
}

static void ensure_ok(ctx_t *x, const char *id, vm_power_t p, uint64_t seq)
{
    vm_spec_t s;
    spec_of(&s, id, p, seq);
    verr_t e = {0};
    if (vm_driver_ensure(x->d, &s, &e) < 0)
        fail_msg("ensure %s: %s %s", id, e.code, e.message);
}

/* The listed status of id (fails when absent); *n = how many are listed. */
static vm_status_t listed(ctx_t *x, const char *id, size_t *count)
{
    vm_status_t *v = NULL, out = {0};
    size_t n = 0;
    verr_t e = {0};
    if (vm_driver_list(x->d, &v, &n, &e) < 0)
        fail_msg("list: %s %s", e.code, e.message);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].id, id)) {
            out = v[i];
            found = 1;
        }
    free(v);
    if (count)
        *count = n;
    if (id && !found)
        fail_msg("%s is not listed", id);
    return out;
}

/* Live instances at moto that carry this test's owner tag and the local id. */
static size_t remote_count(ctx_t *x, const char *id)
{
    ec2_client_t *c;
    verr_t e = {0};
    assert_non_null(c = ec2_client_open(x->cfg, "moto", NULL, &e));
    ec2_params_t p = {0};
    ec2_param(&p, "Filter.1.Name", "tag:virga:instance-id");
    ec2_param(&p, "Filter.1.Value.1", id);
    ec2_instance_t *v = NULL;
    size_t n = 0, alive = 0;
    assert_int_equal(ec2_call_instances(c, "DescribeInstances", &p, &v, &n, NULL, 0, &e), 0);
    for (size_t i = 0; i < n; i++)
        alive += strcmp(v[i].state, "terminated") && strcmp(v[i].state, "shutting-down") &&
                 !strncmp(v[i].owner_tag, config_str(x->cfg, "hybrid.owner", ""), strlen(config_str(x->cfg, "hybrid.owner", "")));
    free(v);
    ec2_params_free(&p);
    ec2_client_close(c);
    return alive;
}

static void test_lifecycle(void **state)
{
    ctx_t *x = *state;
    open_driver(x);
    size_t n = 9;
    listed(x, NULL, &n);
    assert_int_equal(n, 0);

    ensure_ok(x, ID1, VM_POWER_RUNNING, 0);
    vm_status_t st = listed(x, ID1, &n);
    assert_int_equal(n, 1);
    assert_int_equal(st.power, VM_POWER_RUNNING);
    assert_true(!strncmp(st.remote.id, "i-", 2));
    assert_string_equal(st.remote.state, "running");
    assert_true(st.remote.private_ip[0] != 0);
    char rid[32];
    snprintf(rid, sizeof rid, "%s", st.remote.id);

    /* idempotent: the same remote instance, no second one */
    ensure_ok(x, ID1, VM_POWER_RUNNING, 0);
    assert_string_equal(listed(x, ID1, NULL).remote.id, rid);
    assert_int_equal(remote_count(x, ID1), 1);

    /* the console is the remote's (GetConsoleOutput) */
    char *buf = NULL;
    size_t len = 0;
    uint64_t total = 0;
    verr_t e = {0};
    assert_int_equal(vm_driver_console(x->d, ID1, 4096, &buf, &len, &total, &e), 0);
    assert_true(len > 0 && total == len);
    free(buf);

    ensure_ok(x, ID1, VM_POWER_STOPPED, 0);
    st = listed(x, ID1, NULL);
    assert_int_equal(st.power, VM_POWER_STOPPED);
    assert_string_equal(st.remote.id, rid);
    ensure_ok(x, ID1, VM_POWER_RUNNING, 0);
    assert_int_equal(listed(x, ID1, NULL).power, VM_POWER_RUNNING);
    ensure_ok(x, ID1, VM_POWER_RUNNING, 1);
    st = listed(x, ID1, NULL);
    assert_int_equal(st.reboot_seq, 1);
    assert_int_equal(st.power, VM_POWER_RUNNING);

    /* made stopped, a reboot only recorded */
    ensure_ok(x, ID2, VM_POWER_STOPPED, 7);
    ensure_ok(x, ID2, VM_POWER_STOPPED, 8);
    st = listed(x, ID2, &n);
    assert_int_equal(n, 2);
    assert_int_equal(st.power, VM_POWER_STOPPED);
    assert_int_equal(st.reboot_seq, 8);

    assert_int_equal(vm_driver_remove(x->d, ID1, &e), 0);
    assert_int_equal(vm_driver_remove(x->d, ID2, &e), 0);
    assert_int_equal(vm_driver_remove(x->d, ID1, &e), 0);   /* absent is success */
    listed(x, NULL, &n);
    assert_int_equal(n, 0);
    assert_int_equal(remote_count(x, ID1), 0);
    assert_int_equal(remote_count(x, ID2), 0);
}

/* The agent died right after RunInstances, before it wrote anything down. */
static void test_adopt_and_duplicates(void **state)
{
    ctx_t *x = *state;
    open_driver(x);
    ensure_ok(x, ID1, VM_POWER_RUNNING, 0);
    char rid[32];
    snprintf(rid, sizeof rid, "%s", listed(x, ID1, NULL).remote.id);
    vm_driver_close(x->d);
    x->d = NULL;
    char sd[PATH_MAX + 8];
    snprintf(sd, sizeof sd, "%s/ec2", x->dir);
    verr_t e = {0};
    assert_int_equal(vm_rmtree(sd, &e), 0);
    open_driver(x);
    vm_status_t st = listed(x, ID1, NULL);
    assert_int_equal(st.power, VM_POWER_RUNNING);
    assert_string_equal(st.remote.id, rid);
    ensure_ok(x, ID1, VM_POWER_RUNNING, 0);
    assert_string_equal(listed(x, ID1, NULL).remote.id, rid);
    assert_int_equal(remote_count(x, ID1), 1);

    /* a remote cloud that ignores ClientToken (moto does) made a second one: list keeps
     * the recorded one and terminates the other */
    ec2_client_t *c = ec2_client_open(x->cfg, "moto", NULL, &e);
    assert_non_null(c);
    ec2_params_t p = {0};
    ec2_param(&p, "ImageId", MOTO_AMI);
    ec2_param(&p, "MinCount", "1");
    ec2_param(&p, "MaxCount", "1");
    ec2_param(&p, "TagSpecification.1.ResourceType", "instance");
    ec2_param(&p, "TagSpecification.1.Tag.1.Key", "virga:owner");
    ec2_paramf(&p, "TagSpecification.1.Tag.1.Value", "%s/moto", config_str(x->cfg, "hybrid.owner", ""));
    ec2_param(&p, "TagSpecification.1.Tag.2.Key", "virga:instance-id");
    ec2_param(&p, "TagSpecification.1.Tag.2.Value", ID1);
    assert_int_equal(ec2_call_instances(c, "RunInstances", &p, NULL, NULL, NULL, 0, &e), 0);
    ec2_params_free(&p);
    ec2_client_close(c);
    assert_int_equal(remote_count(x, ID1), 2);
    size_t n = 0;
    assert_string_equal(listed(x, ID1, &n).remote.id, rid);
    assert_int_equal(n, 1);
    assert_int_equal(remote_count(x, ID1), 1);
    assert_int_equal(vm_driver_remove(x->d, ID1, &e), 0);
    assert_int_equal(remote_count(x, ID1), 0);
}

static void test_errors(void **state)
{
    ctx_t *x = *state;
    open_driver(x);
    vm_spec_t s;
    verr_t e = {0};
    spec_of(&s, ID1, VM_POWER_RUNNING, 0);
    snprintf(s.image_id, sizeof s.image_id, "ami-0000000000000000f");
    assert_int_equal(vm_driver_ensure(x->d, &s, &e), -1);
    assert_string_equal(e.code, "InvalidAMIID.NotFound");
    assert_non_null(strstr(e.message, "moto"));
    /* no retry fixes an unmapped image: the agent reports the launch failed */
    assert_int_equal(x->d->ops->permanent(x->d->priv, &e), 1);
    spec_of(&s, "i-../../etc", VM_POWER_RUNNING, 0);
    assert_int_equal(vm_driver_ensure(x->d, &s, &e), -1);
    assert_string_equal(e.code, "InvalidParameterValue");
    assert_int_equal(vm_driver_remove(x->d, "../x", &e), -1);
    vm_driver_close(x->d);
    x->d = NULL;

    /* nobody answers: the retries, then a clear error; list fails (it proves nothing) */
    set(x, "hybrid.clouds.moto.endpoint", "http://127.0.0.1:%d/", free_port());
    set(x, "hybrid.clouds.moto.retries", "2");
    set(x, "hybrid.clouds.moto.retry_base_ms", "10");
    set(x, "hybrid.clouds.moto.timeout_ms", "500");
    open_driver(x);
    spec_of(&s, ID1, VM_POWER_RUNNING, 0);
    assert_int_equal(vm_driver_ensure(x->d, &s, &e), -1);
    assert_string_equal(e.code, "PublicCloudUnavailable");
    assert_non_null(strstr(e.message, "moto"));
    assert_int_equal(x->d->ops->permanent(x->d->priv, &e), 0);   /* retried, within the deadline */
    verr_set(&e, 503, "RequestLimitExceeded", "moto RunInstances: slow down");
    assert_int_equal(x->d->ops->permanent(x->d->priv, &e), 0);
    verr_set(&e, 403, "UnauthorizedOperation", "moto RunInstances: no");
    assert_int_equal(x->d->ops->permanent(x->d->priv, &e), 1);
    vm_status_t *v = NULL;
    size_t n = 0;
    assert_int_equal(vm_driver_list(x->d, &v, &n, &e), -1);
    free(v);
    vm_driver_close(x->d);
    x->d = NULL;

    /* credentials that the key does not open: the driver is not offered */
    set(x, "hybrid.clouds.moto.credentials_file", "%s/hybrid.key", x->dir);
    char sd[PATH_MAX + 8];
    snprintf(sd, sizeof sd, "%s/ec2", x->dir);
    vm_driver_cfg_t c = {.state_dir = sd, .host_id = "moto", .prefix = "vtest-", .cfg = x->cfg};
    assert_null(vm_driver_open("ec2", &c, &e));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adopt_and_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    if (moto_why[0])
        fprintf(stderr, "test_ec2_driver: skipped: %s\n", moto_why);
    return rc;
}
