/* bus_fixture.h - what the bus unit tests share: credentials for test principals in a
 * temporary directory, and a config that points a bus at librdkafka's mock cluster
 * (plaintext: the mock has no SASL; messages are signed all the same). */
#ifndef VIRGA_TEST_BUS_FIXTURE_H
#define VIRGA_TEST_BUS_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_auth.h"
#include "config.h"

static char fixture_dir[64];

/* Make a credential for each name (NULL-terminated) in a new temporary directory. */
static inline int fixture_credentials(const char *const *names)
{
    snprintf(fixture_dir, sizeof fixture_dir, "/tmp/virga-bus-test.XXXXXX");
    if (!mkdtemp(fixture_dir))
        return -1;
    char pubs[128];
    snprintf(pubs, sizeof pubs, "%s/principals.json", fixture_dir);
    for (int i = 0; names[i]; i++) {
        char path[160];
        verr_t e;
        snprintf(path, sizeof path, "%s/%s.cred", fixture_dir, names[i]);
        if (bus_credential_create(names[i], path, pubs, &e) < 0) {
            fprintf(stderr, "credential %s: %s\n", names[i], e.message);
            return -1;
        }
    }
    return 0;
}

/* A config for a bus on the mock cluster at brokers, as principal. */
static inline config_t *fixture_config(const char *brokers, const char *principal)
{
    config_t *c = config_new();
    config_set(c, "bus.brokers", brokers);
    config_set(c, "bus.security_protocol", "plaintext");
    config_set(c, "bus.credentials_dir", fixture_dir);
    config_set(c, "bus.principal", principal);
    config_set(c, "bus.fetch_wait_ms", "2");   /* the mock does not long-poll */
    config_set(c, "bus.session_timeout_ms", "6000");
    config_set(c, "bus.heartbeat_ms", "500");   /* the mock's groups want it short */
    return c;
}

static inline void fixture_cleanup(void)
{
    if (fixture_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", fixture_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", fixture_dir);
    }
}

#endif
