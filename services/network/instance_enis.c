/* instance_enis.c - what compute shows of its instances' interfaces, which it keeps in a
 * table of its own (docs/compute.md, "What DescribeInstances shows of interfaces") so
 * that DescribeInstances never asks the network:
 *
 * - the push: every change of an attached interface's facts (attach, detach, delete,
 *   SourceDestCheck, description, groups) NOTIFYs at commit with the facts and their
 *   version (sql/010_instance_eni_events.sql: triggers, so every write path is covered);
 *   one LISTEN thread per network process sends each as compute.network_interfaces to
 *   compute's request topic. The bus is a doorbell: a push lost (this process down at
 *   the commit, a broker hiccup) is repaired by
 * - the pull: compute compares network.interface_digest with its own table's every
 *   compute.interface_sync_s and, when they differ, reads network.instance_interfaces
 *   page by page;
 * - ModifyInstanceAttribute SourceDestCheck, which compute asks of the network here and
 *   whose answer carries the primary's new facts (compute stores them at once, so the
 *   caller's next DescribeInstances shows the change). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "instance_enis.h"
#include "jsonutil.h"
#include "log.h"
#include "network.h"
#include "pg_listen.h"

#define CHANNEL "network_instance_enis"
#define PAGE_MAX 1000   /* interfaces a page of the pull: ~500 KiB, below the bus's 1 MB */

static int from_compute(bus_ctx_t *ctx, verr_t *e)
{
    if (ctx->msg->from && ctx->msg->from->kind == BUS_P_COMPUTE)
        return 0;
    return verr_set(e, 403, "UnauthorizedOperation", "%s is for the compute service only", ctx->msg->type);
}

/* network.instance_interfaces {after?: eni id, limit?: 1..1000} -> {"interfaces": [facts],
 * "more": bool}: the facts (eni_facts in the migration: eni, instance, account, index,
 * attachment, subnet, vpc, mac, ip, description, sdc, attach_time, groups, version) of
 * every interface attached to an instance, by interface id, after `after`. */
int net_instance_interfaces(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (from_compute(ctx, e) < 0)
        return -1;
    long limit = (long)json_int(body, "limit", PAGE_MAX);
    if (limit < 1 || limit > PAGE_MAX)
        return verr_set(e, 400, "InvalidParameterValue", "limit is 1 to %d", PAGE_MAX);
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit + 1);
    const char *p[] = {json_str(body, "after", NULL), lim};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "ienis_page",
        "SELECT eni_facts(n)::text FROM enis n WHERE n.instance_id IS NOT NULL AND ($1::text IS NULL OR n.id > $1) "
        "ORDER BY n.id LIMIT $2::bigint", 2, p);
    if (!r)
        return -1;
    int n = PQntuples(r), more = n > limit;
    json_t *out = json_array();
    for (int i = 0; i < n && i < limit; i++) {
        json_t *f = json_loads(PQgetvalue(r, i, 0), 0, NULL);
        if (f)
            json_array_append_new(out, f);
    }
    *reply = json_pack("{s:o, s:b}", "interfaces", out, "more", more);
    return 0;
}

/* network.interface_digest {} -> {"count": n, "digest": "<decimal>"}: the attached
 * interfaces and the XOR of a hash of each one's id and version, which compute computes
 * the same way over its table (network_enis.c): equal, it holds every current version. */
int net_interface_digest(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)body;
    if (from_compute(ctx, e) < 0)
        return -1;
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "ienis_digest",
        "SELECT count(*), coalesce(bit_xor(hashtextextended(id || ':' || facts_version, 0)), 0)::text FROM enis "
        "WHERE instance_id IS NOT NULL", 0, NULL);
    if (!r)
        return -1;
    *reply = json_pack("{s:I, s:s}", "count", (json_int_t)atoll(PQgetvalue(r, 0, 0)), "digest", PQgetvalue(r, 0, 1));
    return 0;
}

/* network.instance_source_dest_check {account, instance, value: "true"|"false"} ->
 * {eni, sourceDestCheck, facts}: ModifyInstanceAttribute SourceDestCheck, set on the
 * instance's primary interface as ModifyNetworkInterfaceAttribute would (the hosts of its
 * VPC get a new generation when it changes; setting it again changes nothing); facts
 * are the primary's as the push carries them. An instance without a primary interface
 * yet (its launch has not made the port) is InvalidInstanceID.NotFound here; compute,
 * which knows the instance, says so better. */
int net_instance_source_dest_check(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (from_compute(ctx, e) < 0)
        return -1;
    const char *account = json_str(body, "account", NULL), *inst = json_str(body, "instance", NULL);
    const char *val = json_str(body, "value", "");
    if (!account || !inst || (strcmp(val, "true") && strcmp(val, "false")))
        return verr_set(e, 400, "InvalidParameterValue", "account, instance and value (true or false) are required");
    db_t *db = service_db(ctx);
    const char *p[] = {account, inst};
    PG_AUTO PGresult *r = NULL;
    PG_AUTO PGresult *f = NULL;
    if (db_begin(db, e) < 0 ||
        !(r = db_prepared(db, e, "isdc_find", "SELECT id FROM enis WHERE account_id = $1 AND instance_id = $2 "
                          "AND device_index = 0 FOR UPDATE", 2, p)))
        goto fail;
    if (!PQntuples(r)) {
        verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance '%.64s' has no network interface", inst);
        goto fail;
    }
    const char *q[] = {PQgetvalue(r, 0, 0)};
    if (eni_set_source_dest_check(db, q[0], val, e) < 0 ||
        !(f = db_prepared(db, e, "isdc_facts", "SELECT eni_facts(n)::text FROM enis n WHERE id = $1", 1, q)) ||
        db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:s, s:b, s:o*}", "eni", q[0], "sourceDestCheck", !strcmp(val, "true"), "facts",
                       PQntuples(f) ? json_loads(PQgetvalue(f, 0, 0), 0, NULL) : NULL);
    return 0;
fail:
    db_rollback(db);
    return -1;
}

/* The push: each notification's facts to compute's request topic (compute's consumer
 * group: one compute process stores them; it believes them from the network only). */
static void on_notify(void *arg, const char *channel, const char *payload)
{
    (void)channel;
    service_t *svc = arg;
    json_t *facts = json_loads(payload, 0, NULL);
    if (!facts)
        return;
    verr_t e;
    if (bus_publish(svc->bus, "virga.rpc.compute", "compute.network_interfaces",
                    json_pack("{s:[o]}", "interfaces", facts), &e) < 0)
        log_warn("compute.network_interfaces for %s: %s %s", payload, e.code, e.message);
}

static pg_listen_t *listener;

int instance_eni_events_start(service_t *svc, verr_t *e)
{
    static const char *const channels[] = {CHANNEL, NULL};
    /* what committed while nobody listened reaches compute by its pull */
    pg_listen_spec_t spec = {.name = "instance interface events", .channels = channels, .on_notify = on_notify,
                             .arg = svc};
    return (listener = pg_listen_start(svc, &spec, e)) ? 0 : -1;
}

void instance_eni_events_stop(void)
{
    pg_listen_stop(listener);
    listener = NULL;
}
