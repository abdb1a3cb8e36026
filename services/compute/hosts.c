/* hosts.c - the host registry: compute.host_report, which each host's agent sends on a
 * timer (its heartbeat and inventory). Who reports is the sending principal, checked by
 * the bus from the message's signature; a report that names another host is refused, so
 * a host's credential cannot make it any other host (docs/security.md). The inventory's
 * capacity, drivers and zone become columns the scheduler filters on; a host not heard
 * from for compute.host_down_after_s is marked down by the reconcile pass, and one silent
 * for compute.host_lost_after_s has its stopping and terminating instances ended. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "instance_state.h"
#include "jsonutil.h"
#include "log.h"

/* The drivers as a PostgreSQL text[] literal: {"a","b"}; only plain names are kept. */
static void drivers_literal(const json_t *drivers, char *out, size_t size)
{
    size_t n = 0, i;
    json_t *d;
    n += (size_t)snprintf(out + n, size - n, "{");
    json_array_foreach(drivers, i, d) {
        const char *s = json_string_value(d);
        if (!s || !bus_name_valid(s, 31) || n + strlen(s) + 4 >= size)
            continue;
        n += (size_t)snprintf(out + n, size - n, "%s\"%s\"", n > 1 ? "," : "", s);
    }
    snprintf(out + n, size - n, "}");
}

/* {"host_id"?, "inventory": {...}} from agent-<host> -> {"host_id", "reports"} */
int compute_host_report(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *host = ctx->msg->from->host;
    const char *claimed = json_str(body, "host_id", host);
    if (!host)
        return verr_set(e, 403, "AccessDenied", "only a host's agent reports for it");
    if (strcmp(claimed, host))
        return verr_set(e, 403, "AccessDenied", "agent-%s may report only for host %s, not for '%.64s'", host, host,
                        claimed);
    json_t *inv = json_object_get(body, "inventory");
    if (inv && !json_is_object(inv))
        return verr_set(e, 400, "InvalidParameterValue", "inventory must be an object");
    JSON_AUTO json_t *empty = json_object();
    if (!inv)
        inv = empty;
    json_int_t vcpus = json_int(inv, "vcpus", 0), mem = json_int(inv, "memory_mib", 0), disk = json_int(inv, "disk_gib", 0);
    if (vcpus < 0 || vcpus > 1 << 20 || mem < 0 || mem > (1LL << 40) || disk < 0 || disk > (1LL << 40))
        return verr_set(e, 400, "InvalidParameterValue", "inventory vcpus, memory_mib or disk_gib out of range");
    const char *zone = json_str(inv, "zone", "");
    if (strlen(zone) > 64)
        return verr_set(e, 400, "InvalidParameterValue", "inventory zone is longer than 64 characters");
    /* a public cloud region (driver ec2) names its cloud; every other host is 'private' */
    const char *cloud = json_str(inv, "cloud", "private");
    json_int_t max_inst = json_int(inv, "max_instances", 0);
    if (!*cloud || !bus_name_valid(cloud, 60) || max_inst < 0 || max_inst > 1 << 20)
        return verr_set(e, 400, "InvalidParameterValue", "inventory cloud or max_instances out of range");
    json_t *labels = json_object_get(inv, "labels");
    char drivers[256], v[32], m[32], d[32], mi[32];
    snprintf(mi, sizeof mi, "%lld", (long long)max_inst);
    drivers_literal(json_object_get(inv, "drivers"), drivers, sizeof drivers);
    snprintf(v, sizeof v, "%lld", (long long)vcpus);
    snprintf(m, sizeof m, "%lld", (long long)mem);
    snprintf(d, sizeof d, "%lld", (long long)disk);
    AUTOFREE char *doc = json_dumps(inv, JSON_COMPACT);
    AUTOFREE char *lab = json_dumps(json_is_object(labels) ? labels : empty, JSON_COMPACT);
    const char *p[] = {host, doc, v, m, d, drivers, zone, lab, cloud, mi};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "host_report",
        "INSERT INTO hosts (host_id, inventory, vcpus, memory_mib, disk_gib, drivers, zone, labels, cloud, "
        "max_instances) VALUES ($1, $2::jsonb, $3::int, $4::bigint, $5::bigint, $6::text[], $7, $8::jsonb, $9, "
        "$10::int) ON CONFLICT (host_id) DO UPDATE SET inventory = EXCLUDED.inventory, reports = hosts.reports + 1, "
        "last_seen = now(), vcpus = EXCLUDED.vcpus, memory_mib = EXCLUDED.memory_mib, disk_gib = EXCLUDED.disk_gib, "
        "drivers = EXCLUDED.drivers, zone = EXCLUDED.zone, labels = EXCLUDED.labels, state = 'up', "
        "cloud = EXCLUDED.cloud, max_instances = EXCLUDED.max_instances "
        "RETURNING reports, generation", 10, p);
    if (!r)
        return -1;
    *reply = json_pack("{s:s, s:I, s:I}", "host_id", host, "reports", (json_int_t)atoll(PQgetvalue(r, 0, 0)),
                       "generation", (json_int_t)atoll(PQgetvalue(r, 0, 1)));
    return 0;
}

int hosts_bump(db_t *db, const char *host, long long *gen, verr_t *e)
{
    const char *p[] = {host};
    PG_AUTO PGresult *r = db_prepared(db, e, "host_bump",
        "UPDATE hosts SET generation = generation + 1 WHERE host_id = $1 RETURNING generation", 1, p);
    if (!r)
        return -1;
    *gen = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
    return 0;
}

static void ring(service_t *svc, const char *host, long long gen, json_t *changes)
{
    char topic[128];
    verr_t e;
    snprintf(topic, sizeof topic, "virga.host.%s", host);
    json_t *body = json_pack("{s:I}", "generation", (json_int_t)gen);
    if (changes)
        json_object_set_new(body, "changes", changes);
    if (bus_publish(svc->bus, topic, "agent.instances_changed", body, &e) < 0)
        log_warn("telling host %s of generation %lld: %s (its agent pulls on its timer)", host, gen, e.message);
}

void hosts_notify(service_t *svc, const char *host, long long gen)
{
    if (host && *host)
        ring(svc, host, gen, NULL);
}

/* Read after the commit: an instance that changed again since is left to that later
 * generation's doorbell. */
void hosts_notify_changes(service_t *svc, db_t *db, const char *host, long long gen, const char *gone)
{
    if (!host || !*host)
        return;
    json_t *changes = NULL;
    if (gone && gen > 0)   /* shutting-down is final: nothing to read (a statement a terminate) */
        changes = json_pack("[{s:s, s:b, s:I}]", "instance_id", gone, "gone", 1, "changed_gen", (json_int_t)gen);
    else if (gen > 0)
        changes = host_specs_changed(svc->state, db, host, gen);
    ring(svc, host, gen, changes);
}

/* The hosts of running qemu guests that an interface beyond the primary was attached to
 * or detached from by these facts (compute.network_interfaces), asked before they are
 * stored: the old attachment is then still in network_enis. Such a guest plugs the
 * interface in or takes it out while it runs, so its agent must pull at once; a
 * container's interfaces come with the datapath, and a launch's facts (the primary
 * alone) ask nothing. */
int hosts_of_plugged_interfaces(db_t *db, const json_t *facts, json_t **hosts, verr_t *e)
{
    *hosts = NULL;
    size_t i;
    const json_t *f;
    int beyond_primary = 0;
    json_array_foreach(facts, i, f)
        beyond_primary |= json_int(f, "index", 0) > 0 || !json_is_string(json_object_get(f, "instance"));
    if (!beyond_primary)
        return 0;
    AUTOFREE char *doc = json_dumps(facts, JSON_COMPACT);
    const char *p[] = {doc};
    PG_AUTO PGresult *r = db_prepared(db, e, "hosts_plugged",
        "SELECT DISTINCT i.host_id FROM instances i WHERE i.driver = 'qemu' AND i.host_id IS NOT NULL AND i.state IN "
        "('pending', 'running') AND i.id IN (SELECT n.instance_id FROM network_enis n JOIN json_to_recordset($1::json) "
        "AS x(eni text) ON x.eni = n.eni_id WHERE n.device_index > 0 UNION SELECT x.instance FROM "
        "json_to_recordset($1::json) AS x(instance text, index int) WHERE x.index > 0)", 1, p);
    if (!r)
        return -1;
    *hosts = json_array();
    for (int k = 0; k < PQntuples(r); k++)
        json_array_append_new(*hosts, json_string(PQgetvalue(r, k, 0)));
    return 0;
}

void hosts_tell(service_t *svc, db_t *db, const json_t *hosts)
{
    size_t i;
    const json_t *h;
    json_array_foreach(hosts, i, h) {
        long long gen = 0;
        verr_t e;
        if (hosts_bump(db, json_string_value(h), &gen, &e) < 0)
            log_warn("telling host %s of an interface: %s (its agent pulls on its timer)", json_string_value(h),
                     e.message);
        else
            hosts_notify(svc, json_string_value(h), gen);
    }
}

/* Hosts whose agent has not reported for compute.host_down_after_s are down: nothing is
 * placed there and their instances' status is impaired, until the next report. */
void hosts_mark_down(service_t *svc)
{
    const compute_t *c = svc->state;
    char s[16];
    verr_t e;
    snprintf(s, sizeof s, "%d", c->host_down_after_s);
    const char *p[] = {s};
    PG_AUTO PGresult *r = db_prepared(svc->db, &e, "hosts_down",
        "UPDATE hosts SET state = 'down' WHERE state = 'up' AND last_seen < now() - make_interval(secs => $1::int) "
        "RETURNING host_id", 1, p);
    for (int i = 0; r && i < PQntuples(r); i++)
        log_warn("host %s is down: no report for %s s", PQgetvalue(r, i, 0), s);
}

/* A host silent for compute.host_lost_after_s is lost: what its tenants asked of it ends
 * without it, so a TerminateInstances or StopInstances does not hang forever on a host
 * that never comes back. Its shutting-down instances become terminated (the cleanup task
 * frees their addresses and ports) and its stopping ones stopped. Should the host come
 * back, its agent is level-triggered: the desired document no longer has the terminated
 * ones and has the stopped ones stopped, so it removes or stops what still runs there.
 * Running instances stay as they are (impaired): nobody asked them to end. Instances are
 * locked in id order and no host row is, as every multi-row change in compute takes them. */
void hosts_release_lost(service_t *svc)
{
    const compute_t *c = svc->state;
    if (c->host_lost_after_s <= 0)
        return;
    char s[16];
    verr_t e = {0};
    snprintf(s, sizeof s, "%d", c->host_lost_after_s);
    const char *p[] = {s};
    db_t *db = svc->db;
    if (db_begin(db, &e) < 0) {
        log_warn("ending the instances of lost hosts: %s", e.message);
        return;
    }
    int ended = 0;
    PG_AUTO PGresult *r = db_prepared(db, &e, "hosts_lost_instances",
        "SELECT i.id, i.state, i.host_id FROM instances i JOIN hosts h ON h.host_id = i.host_id "
        "WHERE h.state = 'down' AND h.last_seen < now() - make_interval(secs => $1::int) "
        "AND i.state IN ('shutting-down', 'stopping') ORDER BY i.id LIMIT 500 FOR UPDATE OF i SKIP LOCKED", 1, p);
    if (!r)
        goto fail;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0), *state = PQgetvalue(r, i, 1);
        inst_change_t ch;
        if (instance_transition(db, id, state, !strcmp(state, "stopping") ? EV_SEEN_STOPPED : EV_GONE, NULL, &ch,
                                &e) < 0)
            goto fail;
        if (ch.changed) {
            log_warn("instance %s on lost host %s (no report for %s s): %s -> %s", id, PQgetvalue(r, i, 2), s,
                     ch.from, ch.to);
            ended += !strcmp(ch.from, "shutting-down");   /* its cleanup task terminates it */
        }
    }
    if (db_commit(db, &e) < 0)
        goto fail;
    if (ended)
        task_pool_wake(c->tasks);   /* their cleanup tasks */
    return;
fail:
    db_rollback(db);
    log_warn("ending the instances of lost hosts: %s", e.message);
}
