/* plan.c - the topics and ACLs of a Virga cloud (plan.h). Everything follows from two
 * tables: which principals serve a topic, and who calls whom. A caller may write to its
 * callee's request topic; the callee may write to the caller's reply topic; each
 * principal reads only its own request topic (in its own group) and its own reply topic.
 * Nothing else is granted: an agent reads only its own host's topic and writes only to
 * compute and network and to the reply topics of those who command it (network rings
 * its doorbell, agent.network_changed). The billing principal only reads virga.usage. */
#include <stdio.h>
#include <string.h>

#include "plan.h"

#define MINUTE_MS 60000LL
#define HOUR_MS (60 * MINUTE_MS)
#define DAY_MS (24 * HOUR_MS)

static const char *const services[] = {"identity", "compute", "image", "network", "objectstore", "gateway",
                                       "accounting", NULL};

/* Who calls whom ("*agents*" stands for every host's agent, "*services*" for all seven). */
static const struct {
    const char *caller, *callee;
} calls[] = {
    {"gateway", "identity"}, {"gateway", "compute"}, {"gateway", "image"}, {"gateway", "network"},
    {"gateway", "accounting"},
    {"gateway", "objectstore"}, {"gateway", "gateway"},   /* sys.health: DescribeServiceHealth */
    {"objectstore", "identity"},
    {"network", "identity"}, {"network", "*agents*"},
    {"network", "compute"},   /* compute.network_interfaces: the instances' interfaces, pushed */
    {"image", "objectstore"},
    {"image", "compute"},   /* CreateImage's task: compute.image_export */
    {"compute", "identity"}, {"compute", "image"}, {"compute", "network"}, {"compute", "*agents*"},
    {"*agents*", "compute"}, {"*agents*", "network"},
    {"virgadm", "*services*"}, {"virgadm", "*agents*"},
};

/* Broadcast topics: who writes, who reads (assign-only, every partition). */
static const struct {
    const char *topic, *writer, *reader;
} broadcasts[] = {
    {"virga.events", "identity", "gateway"},
    {"virga.events", "identity", "objectstore"},
    {"virga.events", "identity", "compute"},   /* quota changes (launch_facts.c) */
    {"virga.events", "image", "compute"},      /* image.changed */
    {"virga.usage", "accounting", "billing"},  /* a billing system, virgadm usage-feed */
};

static void topic(json_t *plan, const char *name, int partitions, long long retention_ms)
{
    json_array_append_new(json_object_get(plan, "topics"),
                          json_pack("{s:s, s:i, s:I}", "name", name, "partitions", partitions, "retention_ms",
                                    (json_int_t)retention_ms));
}

static void acl(json_t *plan, const char *principal, const char *resource, const char *pattern, const char *name,
                const char *op)
{
    json_array_append_new(json_object_get(plan, "acls"),
                          json_pack("{s:s, s:s, s:s, s:s, s:s}", "principal", principal, "resource", resource,
                                    "pattern", pattern, "name", name, "operation", op));
}

/* The principals a name in the calls table stands for. */
static int expand(const char *who, const char *const *agents, const char **out, char bufs[][80], int max)
{
    int n = 0;
    if (!strcmp(who, "*services*")) {
        for (int i = 0; services[i] && n < max; i++)
            out[n++] = services[i];
    } else if (!strcmp(who, "*agents*")) {
        for (int i = 0; agents && agents[i] && n < max; i++) {
            snprintf(bufs[n], 80, "agent-%s", agents[i]);
            out[n] = bufs[n];
            n++;
        }
    } else if (n < max) {
        out[n++] = who;
    }
    return n;
}

/* The topic a principal serves requests on. */
static void request_topic(const char *principal, char out[128])
{
    if (!strncmp(principal, "agent-", 6))
        snprintf(out, 128, "virga.host.%s", principal + 6);
    else
        snprintf(out, 128, "virga.rpc.%s", principal);
}

/* What every principal gets: its reply topic, its private assign-only groups, and, when
 * it serves, its request topic and consumer group. */
static void own(json_t *plan, const char *p, int serves)
{
    char name[160];
    snprintf(name, sizeof name, "virga.reply.%s", p);
    topic(plan, name, 1, 10 * MINUTE_MS);
    acl(plan, p, "topic", "literal", name, "read");
    acl(plan, p, "topic", "literal", name, "describe");
    snprintf(name, sizeof name, "%s.", p);
    acl(plan, p, "group", "prefixed", name, "read");
    /* the idempotent producer (no duplicates when it retries across a broker restart) */
    acl(plan, p, "cluster", "literal", "kafka-cluster", "idempotent_write");
    if (!serves)
        return;
    char t[128];
    request_topic(p, t);
    topic(plan, t, strncmp(p, "agent-", 6) ? 4 : 1, HOUR_MS);
    acl(plan, p, "topic", "literal", t, "read");
    acl(plan, p, "topic", "literal", t, "describe");
    /* a service's group is its name; an agent's is its principal, agent-<host> */
    acl(plan, p, "group", "literal", p, "read");
}

json_t *plan_build(const char *const *agents)
{
    json_t *plan = json_pack("{s:[], s:[]}", "topics", "acls");
    char bufs[64][80];
    for (int i = 0; services[i]; i++)
        own(plan, services[i], 1);
    own(plan, "virgadm", 0);
    for (int i = 0; agents && agents[i]; i++) {
        snprintf(bufs[0], sizeof bufs[0], "agent-%s", agents[i]);
        own(plan, bufs[0], 1);
    }
    for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
        const char *callers[64], *callees[64];
        char cb[64][80], eb[64][80];
        int nc = expand(calls[c].caller, agents, callers, cb, 64);
        int ne = expand(calls[c].callee, agents, callees, eb, 64);
        for (int i = 0; i < nc; i++)
            for (int j = 0; j < ne; j++) {
                char t[128], reply[160];
                request_topic(callees[j], t);
                snprintf(reply, sizeof reply, "virga.reply.%s", callers[i]);
                acl(plan, callers[i], "topic", "literal", t, "write");
                acl(plan, callers[i], "topic", "literal", t, "describe");
                acl(plan, callees[j], "topic", "literal", reply, "write");
                acl(plan, callees[j], "topic", "literal", reply, "describe");
            }
    }
    topic(plan, "virga.events", 4, 7 * DAY_MS);
    topic(plan, "virga.usage", 4, 30 * DAY_MS);
    for (size_t i = 0; i < sizeof broadcasts / sizeof broadcasts[0]; i++) {
        acl(plan, broadcasts[i].writer, "topic", "literal", broadcasts[i].topic, "write");
        acl(plan, broadcasts[i].writer, "topic", "literal", broadcasts[i].topic, "describe");
        if (broadcasts[i].reader) {
            acl(plan, broadcasts[i].reader, "topic", "literal", broadcasts[i].topic, "read");
            acl(plan, broadcasts[i].reader, "topic", "literal", broadcasts[i].topic, "describe");
        }
    }
    /* the billing principal reads virga.usage (above) in its groups "billing.*", and
     * nothing else: no reply topic (it calls no one), no write, no idempotent producer */
    acl(plan, "billing", "group", "prefixed", "billing.", "read");
    return plan;
}
