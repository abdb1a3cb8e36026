/* network_enis.c - compute's copy of what the network knows of the interfaces attached to
 * its instances (sql/010_network_enis.sql): every interface with its device index,
 * attachment (and its DeleteOnTermination), addresses (private, and the public one: an
 * elastic IP's or the one the launch assigned), groups and SourceDestCheck. DescribeInstances and
 * DescribeInstanceAttribute sourceDestCheck read only this and compute's other tables,
 * so they answer in one query path with the network slow or away.
 *
 * Kept by two means, both believed from the network service only:
 *   - the push: compute.network_interfaces {interfaces: [facts]}, sent by the network
 *     after each commit that changed an attached interface (its instance_enis.c; the
 *     route admits the network principal only, whose messages are signed);
 *   - the pull, level-triggered: a thread of compute's own, at start and every
 *     compute.interface_sync_s (10), compares network.interface_digest with the same
 *     digest of this table and, when they differ (a push lost while compute or the broker
 *     was away), reads network.instance_interfaces page by page.
 * Each row carries the network's version of the interface and is only replaced by a
 * larger one, so pushes and pages may arrive late, twice or in any order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "ids.h"
#include "jsonutil.h"
#include "log.h"
#include "ticker.h"

#define GONE_KEPT "1 hour"   /* a detached interface's row, against late pushes */

struct network_enis {
    service_t *svc;
    ticker_t *ticker;   /* the sync pass: every interval, at once on a resync request */
    db_t *db;           /* the pass's own connection */
    int interval_s, timeout_ms;
};

/* facts (the network's eni_facts) into the table; a row only moves to a larger version.
 * DISTINCT ON: one row per interface, the newest, as one INSERT may not touch a row twice. */
int network_enis_store(db_t *db, const json_t *facts, verr_t *e)
{
    if (!json_array_size(facts))
        return 0;
    AUTOFREE char *doc = json_dumps(facts, JSON_COMPACT);
    const char *p[] = {doc};
    PG_AUTO PGresult *r = db_prepared(db, e, "nenis_store", NETWORK_ENIS_UPSERT("$1"), 1, p);
    return r ? 0 : -1;
}

int network_enis_store_answer(db_t *db, const json_t *answer, verr_t *e)
{
    const json_t *facts = json_object_get(answer, "facts");
    if (!json_is_object(facts))
        return 0;   /* a network older than the facts in its answers: its push comes */
    JSON_AUTO json_t *list = json_pack("[O]", facts);
    return network_enis_store(db, list, e);
}

/* The table, not the network's launch_check (whose acceptance compute may answer from
 * an older copy: launch_facts.c), says at once that an interface was attached since. */
int network_enis_refuse_in_use(bus_ctx_t *ctx, const char *eni, verr_t *e)
{
    const char *p[] = {eni};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "nenis_in_use", "SELECT instance_id FROM network_enis "
                                      "WHERE eni_id = $1 AND instance_id IS NOT NULL", 1, p);
    if (!r)
        return -1;
    if (PQntuples(r))
        return verr_set(e, 400, "InvalidNetworkInterface.InUse", "Interface %s is currently in use by %s.", eni,
                        PQgetvalue(r, 0, 0));
    return 0;
}

/* An instance-wide change of what is each interface's own (SourceDestCheck, groupSet)
 * names one interface only while the instance has one: with more, EC2 asks for the
 * interface's own call (ModifyNetworkInterfaceAttribute), in its words. */
int network_enis_refuse_several(db_t *db, const char *instance, verr_t *e)
{
    const char *p[] = {instance};
    PG_AUTO PGresult *r = db_prepared(db, e, "nenis_several", "SELECT count(*) FROM network_enis "
                                      "WHERE instance_id = $1", 1, p);
    if (!r)
        return -1;
    if (atoi(PQgetvalue(r, 0, 0)) > 1)
        return verr_set(e, 400, "InvalidInstanceID", "There are multiple interfaces attached to instance '%s'. "
                        "Please specify an interface ID for the operation instead.", instance);
    return 0;
}

/* Ask the sync thread for a pass now (a push too large for a notification). */
static void resync(network_enis_t *s)
{
    if (s)   /* NULL: a push before the sync started, whose first pass comes anyway */
        ticker_wake(s->ticker);
}

int compute_network_interfaces(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)reply;
    const json_t *list = json_object_get(body, "interfaces");
    if (!json_is_array(list))
        return verr_set(e, 400, "InvalidParameterValue", "interfaces is a list of interfaces' facts");
    JSON_AUTO json_t *plugged = NULL;
    if (hosts_of_plugged_interfaces(service_db(ctx), list, &plugged, e) < 0 ||
        network_enis_store(service_db(ctx), list, e) < 0)
        return -1;
    hosts_tell(service_of(ctx), service_db(ctx), plugged);
    size_t i;
    json_t *f;
    json_array_foreach(list, i, f)
        if (!json_object_get(f, "version"))
            resync(compute_of(ctx)->enis);
    return 0;
}

/* One page of the pull into the table, and the rows of its id range that it lacks
 * marked detached, if they were stored before the pull began (t0): such a row's version
 * had committed before the page was read, so an interface missing from the page is no
 * longer attached at that version (a row stored since came from a newer push). The
 * range is (after, last] and, on the last page, everything after `after`. */
static int apply_page(db_t *db, const json_t *page, const char *t0, const char *after, int last, verr_t *e)
{
    const json_t *list = json_object_get(page, "interfaces");
    size_t n = json_array_size(list);
    if (network_enis_store(db, list, e) < 0)
        return -1;
    AUTOFREE const char **ids = xcalloc(n + 1, sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = json_str(json_array_get(list, i), "eni", "");
    AUTOFREE char *arr = db_text_array(ids, n);
    const char *upto = last || !n ? NULL : ids[n - 1];
    const char *p[] = {t0, *after ? after : NULL, upto, arr};
    PG_AUTO PGresult *r = db_prepared(db, e, "nenis_gone",
        "UPDATE network_enis SET instance_id = NULL, stored_at = clock_timestamp() WHERE instance_id IS NOT NULL "
        "AND stored_at < $1::timestamptz AND ($2::text IS NULL OR eni_id > $2) AND ($3::text IS NULL OR eni_id <= $3) "
        "AND eni_id <> ALL($4::text[])", 4, p);
    if (!r)
        return -1;
    if (PQcmdTuples(r)[0] != '0')
        log_info("interfaces: %s detached ones learnt from the network's list", PQcmdTuples(r));
    return 0;
}

/* 1 when this table holds what the network holds (count and digest of id:version). */
static int in_step(network_enis_t *s, db_t *db, verr_t *e)
{
    JSON_AUTO json_t *theirs = NULL;
    if (bus_call(s->svc->bus, "network", "network.interface_digest", NULL, NULL, s->timeout_ms, &theirs, e) < 0)
        return -1;
    PG_AUTO PGresult *r = db_prepared(db, e, "nenis_digest",
        "SELECT count(*), coalesce(bit_xor(hashtextextended(eni_id || ':' || version, 0)), 0)::text FROM "
        "network_enis WHERE instance_id IS NOT NULL", 0, NULL);
    if (!r)
        return -1;
    return json_int(theirs, "count", -1) == atoll(PQgetvalue(r, 0, 0)) &&
           !strcmp(json_str(theirs, "digest", ""), PQgetvalue(r, 0, 1));
}

/* One pass of the pull: nothing when the digests agree, else every page. */
static int sync_pass(network_enis_t *s, db_t *db, verr_t *e)
{
    int same = in_step(s, db, e);
    if (same)
        return same < 0 ? -1 : 0;
    PG_AUTO PGresult *now = db_prepared(db, e, "nenis_now", "SELECT clock_timestamp()::text", 0, NULL);
    if (!now)
        return -1;
    char after[IDS_MAX * 2] = "";
    while (!service_stopping()) {
        json_t *q = json_pack("{s:i}", "limit", 1000);
        if (*after)
            json_object_set_new(q, "after", json_string(after));
        JSON_AUTO json_t *page = NULL;
        if (bus_call(s->svc->bus, "network", "network.instance_interfaces", q, NULL, s->timeout_ms, &page, e) < 0)
            return -1;
        int more = json_is_true(json_object_get(page, "more"));
        const json_t *list = json_object_get(page, "interfaces");
        if (apply_page(db, page, PQgetvalue(now, 0, 0), after, !more, e) < 0)
            return -1;
        if (!more || !json_array_size(list))
            break;
        snprintf(after, sizeof after, "%s", json_str(json_array_get(list, json_array_size(list) - 1), "eni", ""));
    }
    return 0;
}

static void sync_tick(void *arg)
{
    network_enis_t *s = arg;
    verr_t e = {0};
    if (!s->db && !(s->db = service_db_connect(s->svc, &e))) {
        log_warn("interfaces: %s", e.message);
        return;
    }
    if (sync_pass(s, s->db, &e) < 0)
        log_warn("interfaces: the network's list not compared: %s %s", e.code, e.message);
    PG_AUTO PGresult *r = db_prepared(s->db, &e, "nenis_purge", "DELETE FROM network_enis WHERE instance_id IS NULL "
                                      "AND stored_at < now() - interval '" GONE_KEPT "'", 0, NULL);
    if (!r)
        log_warn("interfaces: purging detached ones: %s", e.message);
}

network_enis_t *network_enis_start(service_t *svc, verr_t *e)
{
    network_enis_t *s = xcalloc(1, sizeof *s);
    s->svc = svc;
    s->interval_s = (int)config_int(svc->cfg, "compute.interface_sync_s", 10);
    int call_ms = (int)config_int(svc->cfg, "compute.call_timeout_ms", 10000);
    s->timeout_ms = call_ms < 5000 ? call_ms : 5000;   /* a stop waits for a call in flight */
    if (s->interval_s < 1)
        s->interval_s = 1;
    /* the first pass at once: what changed while compute was down */
    if (!(s->ticker = ticker_start("enis-sync", (int64_t)s->interval_s * 1000, 1, sync_tick, s, e))) {
        free(s);
        return NULL;
    }
    return s;
}

void network_enis_stop(network_enis_t *s)
{
    if (!s)
        return;
    ticker_stop(s->ticker);
    db_close(s->db);
    free(s);
}
