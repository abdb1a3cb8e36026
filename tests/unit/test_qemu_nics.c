/* test_qemu_nics.c - a running QEMU guest's interfaces taken out and plugged in again
 * (services/compute/agent/qemu_nics.c), against a QMP stand-in: a unix socket that
 * answers as a QEMU whose guest lets go of a device taken out only when the test says
 * (a real busybox guest lets go at once: its kernel's acpiphp), and logs the commands.
 *
 * - taken out: its backend goes at once (netdev_del), its device is leaving (device_del
 *   asked) and stays in the record, and the signature keeps the sync loop coming back;
 * - the same tap wanted again while its device is leaving is not plugged (no device_add:
 *   its id is still taken);
 * - past QEMU_NIC_LEAVING_S it is said once, and the signature matches the spec's again
 *   (the loop stops asking) unless the tap is wanted;
 * - once QEMU no longer lists the device it is dropped, and the tap is plugged in anew;
 * - the record (with its leaving field) survives a read back. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "jsonutil.h"
#include "qemu.h"
#include "vm_driver.h"

#define TAP "vt-0123456789ab"

typedef struct stand_in {
    int fd;                     /* the listening socket */
    pthread_t thread;
    pthread_mutex_t mu;
    char log[4096];             /* the commands seen, one a line */
    int keeps;                  /* the guest still has the device nic-<TAP> */
} stand_in_t;

static stand_in_t qmp;
static char dir[64], sock[96];

static void serve(int c)
{
    const char *greet = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n";
    if (write(c, greet, strlen(greet)) < 0)
        return;
    char line[4096];
    size_t k = 0;
    char ch;
    while (read(c, &ch, 1) == 1) {
        if (ch != '\n') {
            if (k + 1 < sizeof line)
                line[k++] = ch;
            continue;
        }
        line[k] = 0;
        k = 0;
        JSON_AUTO json_t *o = json_loads(line, 0, NULL);
        const char *cmd = json_str(o, "execute", "");
        pthread_mutex_lock(&qmp.mu);
        if (strcmp(cmd, "qmp_capabilities")) {
            strncat(qmp.log, cmd, sizeof qmp.log - strlen(qmp.log) - 2);
            strcat(qmp.log, "\n");
        }
        int keeps = qmp.keeps;
        pthread_mutex_unlock(&qmp.mu);
        const char *ans = "{\"return\": {}}\n";
        if (!strcmp(cmd, "qom-list"))
            ans = keeps ? "{\"return\": [{\"name\": \"nic-" TAP "\", \"type\": \"child<virtio-net-pci>\"}]}\n"
                        : "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}]}\n";
        if (write(c, ans, strlen(ans)) < 0)
            return;
    }
}

static void *serve_all(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(qmp.fd, NULL, NULL);
        if (c < 0)
            return NULL;
        serve(c);
        close(c);
    }
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/virga-qemu-nics.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(sock, sizeof sock, "%s/qmp.sock", dir);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, sock, strlen(sock) + 1);
    qmp.fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(qmp.fd >= 0);
    assert_int_equal(bind(qmp.fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(qmp.fd, 4), 0);
    pthread_mutex_init(&qmp.mu, NULL);
    return pthread_create(&qmp.thread, NULL, serve_all, NULL);
}

static int teardown(void **state)
{
    (void)state;
    shutdown(qmp.fd, SHUT_RDWR);
    close(qmp.fd);
    pthread_join(qmp.thread, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The commands seen since the last call, one a line. */
static void seen(char *out, size_t n)
{
    pthread_mutex_lock(&qmp.mu);
    snprintf(out, n, "%s", qmp.log);
    qmp.log[0] = 0;
    pthread_mutex_unlock(&qmp.mu);
}

static void keeps(int v)
{
    pthread_mutex_lock(&qmp.mu);
    qmp.keeps = v;
    pthread_mutex_unlock(&qmp.mu);
}

static void spec_with(vm_spec_t *s, int with_tap)
{
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "i-00000000000000a01");
    if (with_tap) {
        snprintf(s->ifaces[0].device, sizeof s->ifaces[0].device, "%s", TAP);
        snprintf(s->ifaces[0].mac, sizeof s->ifaces[0].mac, "0a:00:00:00:00:01");
        s->n_ifaces = 1;
    }
}

static void test_a_device_the_guest_keeps(void **state)
{
    (void)state;
    vm_state_t st = {.start_time = 4242, .pid = 1};
    qemu_nics_t have = {.start_time = 4242, .n = 1};
    qemu_nic_ids(TAP, &have.v[0]);
    verr_t e = {0};
    assert_int_equal(qemu_nics_write(dir, &have, &e), 0);
    char log[4096];
    vm_spec_t without, with;
    spec_with(&without, 0);
    spec_with(&with, 1);
    assert_true(qemu_nics_sig(&have) == vm_spec_nics_sig(&with));

    /* taken out: backend gone, device asked of the guest, which keeps it */
    keeps(1);
    assert_int_equal(qemu_nics_converge(dir, sock, &without, &have, &e), 0);
    seen(log, sizeof log);
    assert_string_equal(log, "device_del\nnetdev_del\nqom-list\n");
    assert_int_equal(have.n, 1);
    assert_true(have.v[0].leaving > 0 && !have.v[0].warned);
    assert_true(qemu_nics_sig(&have) != vm_spec_nics_sig(&without));   /* the loop comes back */

    /* read back from the record: the same */
    qemu_nics_t back;
    qemu_nics_read(dir, &st, &back);
    assert_int_equal(back.n, 1);
    assert_int_equal(back.v[0].leaving, have.v[0].leaving);
    assert_string_equal(back.v[0].device, "nic-" TAP);

    /* wanted again while leaving: not plugged (its device id is still taken) */
    assert_int_equal(qemu_nics_converge(dir, sock, &with, &back, &e), 0);
    seen(log, sizeof log);
    assert_string_equal(log, "qom-list\n");
    assert_true(qemu_nics_missing(&back, &with));

    /* past the bound: said once, then the loop may rest (the spec without it) */
    back.v[0].leaving -= QEMU_NIC_LEAVING_S + 1;
    assert_int_equal(qemu_nics_converge(dir, sock, &without, &back, &e), 0);
    assert_true(back.v[0].warned);
    assert_true(qemu_nics_sig(&back) == vm_spec_nics_sig(&without));
    qemu_nics_read(dir, &st, &have);
    assert_true(have.n == 1 && have.v[0].warned);
    seen(log, sizeof log);

    /* the guest lets go: dropped, and the tap plugged in anew */
    keeps(0);
    assert_int_equal(qemu_nics_converge(dir, sock, &with, &have, &e), 0);
    seen(log, sizeof log);
    assert_string_equal(log, "qom-list\nnetdev_add\ndevice_add\n");
    assert_int_equal(have.n, 1);
    assert_true(!have.v[0].leaving && !strcmp(have.v[0].tap, TAP));
    assert_true(qemu_nics_sig(&have) == vm_spec_nics_sig(&with));
}

static void test_a_device_the_guest_lets_go_of(void **state)
{
    (void)state;
    qemu_nics_t have = {.start_time = 4243, .n = 1};
    qemu_nic_ids(TAP, &have.v[0]);
    verr_t e = {0};
    vm_spec_t without;
    spec_with(&without, 0);
    char log[4096];
    keeps(0);
    seen(log, sizeof log);
    assert_int_equal(qemu_nics_converge(dir, sock, &without, &have, &e), 0);
    seen(log, sizeof log);
    assert_string_equal(log, "device_del\nnetdev_del\nqom-list\n");
    assert_int_equal(have.n, 0);
    assert_true(qemu_nics_sig(&have) == vm_spec_nics_sig(&without));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_device_the_guest_keeps),
        cmocka_unit_test(test_a_device_the_guest_lets_go_of),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
