/* host_events.c - ring a host agent's doorbell when its datapath document changed.
 *
 * Every change that touches a host bumps hosts.generation in its transaction (hosts.c);
 * a trigger (sql/004_host_events.sql) turns that into a NOTIFY, which PostgreSQL delivers
 * only on commit. One thread per network process LISTENs and publishes
 * `agent.network_changed {"generation": G}` on the host's topic (virga.host.<host>), so
 * the agent pulls network.host_desired at once instead of at its next reconcile tick.
 * The bus is a doorbell: a lost event (this process down at the commit, a broker
 * hiccup) costs the agent one reconcile interval, never a divergence; with several
 * network replicas every one publishes, and the agent's pull is idempotent. The thread
 * is common/pg_listen.c's. */
#include <stdio.h>

#include "log.h"
#include "network.h"
#include "pg_listen.h"

#define CHANNEL "network_host_changed"

static pg_listen_t *listener;

/* "<host> <generation>" -> the event on the host's topic. Hosts whose name cannot be a
 * topic (bus_name_valid: no '.') have no agent to tell. */
static void publish(bus_t *bus, const char *payload)
{
    char host[64];
    long long gen;
    if (sscanf(payload, "%63s %lld", host, &gen) != 2 || !bus_name_valid(host, 60))
        return;
    char topic[128];
    snprintf(topic, sizeof topic, "virga.host.%s", host);
    verr_t e;
    if (bus_publish(bus, topic, "agent.network_changed", json_pack("{s:I}", "generation", (json_int_t)gen), &e) < 0)
        log_warn("agent.network_changed to %s: %s %s", host, e.code, e.message);
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
    (void)channel;
    publish(((service_t *)arg)->bus, payload);
}

int host_events_start(service_t *svc, verr_t *e)
{
    static const char *const channels[] = {CHANNEL, NULL};
    /* a broken connection LISTENs again; what committed meanwhile reaches the agents at
     * their next reconcile */
    pg_listen_spec_t spec = {.name = "host events", .channels = channels, .on_notify = on_notify, .arg = svc};
    return (listener = pg_listen_start(svc, &spec, e)) ? 0 : -1;
}

void host_events_stop(void)
{
    pg_listen_stop(listener);
    listener = NULL;
}
