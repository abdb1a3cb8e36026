/* bus_auth_cost.c - CPU time of authenticating one bus message, each way (docs/performance.md):
 * Ed25519ph sign and check (bus_sign, bus_verify) against the pairwise MAC (bus_mac,
 * bus_mac_verify), on a payload the size of a forwarded DescribeKeyPairs request, with
 * two principals made in a temporary directory. Thread CPU time, so a loaded machine
 * changes the figure little. Bounded: N messages each (default 2000). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus_auth.h"
#include "bus_mac.h"

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    if (n <= 0 || n > 1000000 || sodium_init() < 0)
        return 2;
    char dir[] = "/tmp/virga-bus-auth-cost.XXXXXX", pubs[96], path[96];
    if (!mkdtemp(dir))
        return 1;
    snprintf(pubs, sizeof pubs, "%s/principals.json", dir);
    bus_credential_t gw, cp;
    verr_t e;
    snprintf(path, sizeof path, "%s/gateway.cred", dir);
    if (bus_credential_create("gateway", path, pubs, &e) < 0 || bus_credential_load(path, &gw, &e) < 0)
        return 1;
    snprintf(path, sizeof path, "%s/compute.cred", dir);
    if (bus_credential_create("compute", path, pubs, &e) < 0 || bus_credential_load(path, &cp, &e) < 0)
        return 1;
    bus_keys_t *keys = bus_keys_open(pubs, &e);
    if (!keys)
        return 1;
    bus_macs_t *mg = bus_macs_new(&gw, keys), *mc = bus_macs_new(&cp, keys);
    char payload[600];
    memset(payload, 'x', sizeof payload);
    const char *topic = "virga.rpc.compute";
    unsigned char sig[BUS_SIG_BYTES], mac[BUS_MAC_BYTES];
    int bad = 0;

    double t0 = cpu_s();
    for (int i = 0; i < n; i++)
        bus_sign(&gw, topic, payload, sizeof payload, sig);
    double t1 = cpu_s();
    for (int i = 0; i < n; i++)
        bad += bus_verify(keys, "gateway", topic, payload, sizeof payload, sig, sizeof sig) != 0;
    double t2 = cpu_s();
    for (int i = 0; i < n; i++)
        bad += bus_mac(mg, "compute", topic, payload, sizeof payload, mac) != 0;
    double t3 = cpu_s();
    for (int i = 0; i < n; i++)
        bad += bus_mac_verify(mc, "gateway", topic, payload, sizeof payload, mac, sizeof mac) != 0;
    double t4 = cpu_s();
    printf("bus message authentication, %zu-byte payload, %d each, CPU us per message:\n", sizeof payload, n);
    printf("  Ed25519ph sign %.1f, verify %.1f (one round trip: 2 of each, %.0f us)\n", (t1 - t0) / n * 1e6,
           (t2 - t1) / n * 1e6, 2 * (t2 - t0) / n * 1e6);
    printf("  pairwise MAC make %.2f, check %.2f (one round trip: %.1f us)\n", (t3 - t2) / n * 1e6,
           (t4 - t3) / n * 1e6, 2 * (t4 - t2) / n * 1e6);
    bus_macs_free(mg);
    bus_macs_free(mc);
    bus_keys_free(keys);
    bus_credential_wipe(&gw);
    bus_credential_wipe(&cp);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return bad ? 1 : 0;
}
