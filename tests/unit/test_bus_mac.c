/* test_bus_mac.c - pairwise MACs between principals (common/bus_mac.c): the one reader of a
 * topic checks who sent a message, and nobody else can make a tag it accepts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bus_fixture.h"
#include "bus_mac.h"

static bus_credential_t gw, cp, id;
static bus_keys_t *keys;
static bus_macs_t *m_gw, *m_cp, *m_id;
static const char payload[] = "{\"v\":1,\"type\":\"compute.DescribeKeyPairs\",\"body\":{}}";
#define RPC "virga.rpc.compute"

static int load(const char *name, bus_credential_t *c)
{
    char path[160];
    verr_t e;
    snprintf(path, sizeof path, "%s/%s.cred", fixture_dir, name);
    return bus_credential_load(path, c, &e);
}

static int setup(void **state)
{
    (void)state;
    static const char *const names[] = {"gateway", "compute", "identity", NULL};
    char pubs[160];
    verr_t e;
    if (sodium_init() < 0 || fixture_credentials(names) < 0 || load("gateway", &gw) < 0 || load("compute", &cp) < 0 ||
        load("identity", &id) < 0)
        return -1;
    snprintf(pubs, sizeof pubs, "%s/principals.json", fixture_dir);
    if (!(keys = bus_keys_open(pubs, &e)))
        return -1;
    m_gw = bus_macs_new(&gw, keys);
    m_cp = bus_macs_new(&cp, keys);
    m_id = bus_macs_new(&id, keys);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bus_macs_free(m_gw);
    bus_macs_free(m_cp);
    bus_macs_free(m_id);
    bus_keys_free(keys);
    fixture_cleanup();
    return 0;
}

static void test_topic_reader(void **state)
{
    (void)state;
    static const struct {
        const char *topic, *reader, *server;
    } rows[] = {
        {"virga.rpc.compute", "compute", "compute"},
        {"virga.rpc.identity", "identity", "identity"},
        {"virga.host.h-1", "agent-h-1", "agent-h-1"},
        {"virga.reply.gateway", "gateway", ""},
        {"virga.reply.agent-h-1", "agent-h-1", ""},
        {"virga.events", "", ""},                 /* broadcasts: many readers, signed */
        {"virga.usage", "", ""},
        {"virga.rpc.t", "", ""},                  /* no principal of that name */
        {"virga.rpc.test-srv", "", ""},           /* test principals serve under any topic */
        {"virga.reply.a.b", "", ""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char r[BUS_PRINCIPAL_MAX], s[BUS_PRINCIPAL_MAX];
        bus_topic_reader(rows[i].topic, r);
        bus_topic_server(rows[i].topic, s);
        assert_string_equal(r, rows[i].reader);
        assert_string_equal(s, rows[i].server);
    }
}

static void test_reader_checks_sender(void **state)
{
    (void)state;
    unsigned char mac[BUS_MAC_BYTES];
    assert_int_equal(bus_mac(m_gw, "compute", RPC, payload, strlen(payload), mac), 0);
    assert_int_equal(bus_mac_verify(m_cp, "gateway", RPC, payload, strlen(payload), mac, sizeof mac), 0);
    /* twice: the second from the cached key */
    assert_int_equal(bus_mac_verify(m_cp, "gateway", RPC, payload, strlen(payload), mac, sizeof mac), 0);
    /* and the other way, compute's reply to the gateway */
    assert_int_equal(bus_mac(m_cp, "gateway", "virga.reply.gateway", payload, strlen(payload), mac), 0);
    assert_int_equal(bus_mac_verify(m_gw, "compute", "virga.reply.gateway", payload, strlen(payload), mac, sizeof mac),
                     0);
}

static void test_nobody_else_can_forge(void **state)
{
    (void)state;
    unsigned char mac[BUS_MAC_BYTES];
    /* identity, which may write virga.rpc.compute too, cannot pass as the gateway */
    assert_int_equal(bus_mac(m_id, "compute", RPC, payload, strlen(payload), mac), 0);
    assert_int_equal(bus_mac_verify(m_cp, "gateway", RPC, payload, strlen(payload), mac, sizeof mac), -1);
    assert_int_equal(bus_mac_verify(m_cp, "identity", RPC, payload, strlen(payload), mac, sizeof mac), 0);
    /* a tag meant for another reader does not count here */
    assert_int_equal(bus_mac(m_gw, "identity", RPC, payload, strlen(payload), mac), 0);
    assert_int_equal(bus_mac_verify(m_cp, "gateway", RPC, payload, strlen(payload), mac, sizeof mac), -1);
    /* nor does a reader's own tag passed off as its peer's (the sender is in the tag) */
    assert_int_equal(bus_mac(m_cp, "gateway", RPC, payload, strlen(payload), mac), 0);
    assert_int_equal(bus_mac_verify(m_cp, "gateway", RPC, payload, strlen(payload), mac, sizeof mac), -1);
    /* unknown sender, unknown reader */
    assert_int_equal(bus_mac_verify(m_cp, "network", RPC, payload, strlen(payload), mac, sizeof mac), -1);
    assert_int_equal(bus_mac(m_gw, "network", "virga.rpc.network", payload, strlen(payload), mac), -1);
}

static void test_tampering_fails(void **state)
{
    (void)state;
    unsigned char mac[BUS_MAC_BYTES];
    char copy[sizeof payload];
    memcpy(copy, payload, sizeof payload);
    assert_int_equal(bus_mac(m_gw, "compute", RPC, payload, strlen(payload), mac), 0);
    copy[5] ^= 1;
    assert_int_equal(bus_mac_verify(m_cp, "gateway", RPC, copy, strlen(copy), mac, sizeof mac), -1);
    assert_int_equal(bus_mac_verify(m_cp, "gateway", "virga.rpc.compute2", payload, strlen(payload), mac, sizeof mac),
                     -1);
    assert_int_equal(bus_mac_verify(m_cp, "gateway", RPC, payload, strlen(payload) - 1, mac, sizeof mac), -1);
    assert_int_equal(bus_mac_verify(m_cp, "gateway", RPC, payload, strlen(payload), mac, sizeof mac - 1), -1);
    assert_int_equal(bus_mac_verify(m_cp, "gateway", RPC, payload, strlen(payload), NULL, 0), -1);
    mac[0] ^= 0x80;
    assert_int_equal(bus_mac_verify(m_cp, "gateway", RPC, payload, strlen(payload), mac, sizeof mac), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_reader),
        cmocka_unit_test(test_reader_checks_sender),
        cmocka_unit_test(test_nobody_else_can_forge),
        cmocka_unit_test(test_tampering_fails),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
