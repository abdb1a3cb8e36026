/* launch_batch.c - a reservation's primary ports in one question (docs/compute.md, "One
 * network.port_create for a reservation's ports"). A MaxCount N launch has N launch
 * tasks, and each asked the network for its own port: N questions and answers on the
 * broker, N network transactions queueing on the subnet's row lock. Now the first of
 * them to run asks network.port_create_many for itself and every sibling still pending
 * and without a port, and records each answer against its instance; a sibling's task
 * then finds its port recorded and asks nothing. The tasks stay one per instance (their
 * lease, retries, give_up, and the cleanup's wait for them are unchanged).
 *
 * The siblings' rows are locked (FOR UPDATE SKIP LOCKED: one held by anything else is
 * left to its own task) from the read to the record, one transaction around the
 * question, so:
 *   - a terminate of a sibling waits for the record, and its cleanup deletes the
 *     recorded port (it waits for the sibling's launch task, which finds the port);
 *   - a sibling's task meanwhile finds its row locked (LAUNCH_BATCH_LATER) rather
 *     than asking a port the batch is making, and is woken by the batch's commit, not
 *     by looking again every 100 ms: the batch also locks the siblings' task rows
 *     (BATCH_TASKS), so an idle worker's claim skips them while the batch is in flight
 *     (FOR UPDATE SKIP LOCKED, common/task.c), and a sibling already claimed that found
 *     its row locked has its release wait for the commit, after which it is due at
 *     once (tasks.c: again_ms LAUNCH_BATCH_AGAIN_MS); the batch then wakes the pool;
 *   - compute killed after the answer rolls the record back: each sibling's task asks
 *     its own port_create with the same token (instance:<id>) and gets the same port;
 *     a sibling terminated before its task runs has the port asked and recorded by its
 *     task all the same (tasks.c, orphan_port), which the cleanup deletes;
 *   - the network killed mid-batch makes nothing (its transaction): the question times
 *     out, the locks go, each task asks again.
 * A port the network could not make fails only its instance: that instance's task asks
 * its own port_create, whose error is its state reason as before. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "jsonutil.h"
#include "launch_batch.h"
#include "log.h"
#include "metrics.h"

/* At most this many ports a question (the network's limit, ports_many.c). */
#define BATCH_MAX "256"

/* The instance's recorded primary as its port_create answer would give it (plugged:
 * the batch asked the plug where the host runs a datapath), and whether it has siblings
 * left to launch; no row when a batch or a terminate holds the instance's row. */
#define BATCH_PEEK                                                                                                    \
    "SELECT (SELECT json_build_object('eni_id', f.eni_id, 'subnet_id', f.subnet_id, 'vpc_id', f.vpc_id, 'mac', "      \
    "f.mac, 'ip', f.ip, 'prefix_len', f.prefix_len, 'gateway', f.gateway, 'groups', f.groups, 'device_index', 0, "    \
    "'plugged', true)::text FROM instance_interfaces f WHERE f.instance_id = i.id AND f.device_index = 0 AND NOT "    \
    "f.deleted), EXISTS (SELECT 1 FROM instances s WHERE s.reservation_id = i.reservation_id AND s.id <> i.id AND "   \
    "s.state = 'pending' AND NOT s.prepared AND s.primary_eni IS NULL) FROM instances i WHERE i.id = $1 "             \
    "FOR SHARE OF i SKIP LOCKED"

/* The reservation's instances to ask for, this one first, locked until the record. */
#define BATCH_LOCK                                                                                                    \
    "SELECT s.id, " LAUNCH_INST_COLUMNS " FROM instances s WHERE s.reservation_id = (SELECT reservation_id FROM "     \
    "instances WHERE id = $1) AND s.state = 'pending' AND NOT s.prepared AND s.primary_eni IS NULL AND "             \
    "s.host_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM instance_interfaces f WHERE f.instance_id = s.id AND "      \
    "f.device_index = 0 AND NOT f.deleted) ORDER BY s.id = $1 DESC, s.id LIMIT " BATCH_MAX " FOR UPDATE SKIP LOCKED"

/* The siblings' launch tasks, locked until the record (the batch's own row is its
 * worker's, not locked here: its claim committed). Waits for a claim or a release in
 * progress (one statement each, holding nothing else): nothing that holds a task row
 * waits for an instance's. */
#define BATCH_TASKS                                                                                                   \
    "SELECT 1 FROM tasks WHERE id IN (SELECT 'launch:' || x FROM unnest($1::text[]) x) AND status = 'active' "        \
    "ORDER BY id FOR UPDATE"

/* Every port answered, recorded against its instance at device index 0 while it is
 * still pending (its row is locked: it is), and their facts ($2) stored; answers the
 * instances recorded. */
#define BATCH_RECORD                                                                                                  \
    "WITH facts AS (" NETWORK_ENIS_UPSERT("$2") " RETURNING 1) "                                                   \
    "INSERT INTO instance_interfaces (instance_id, device_index, eni_id, subnet_id, vpc_id, mac, ip, prefix_len, "    \
    "gateway, groups) SELECT x.instance_id, 0, x.eni_id, x.subnet_id, x.vpc_id, x.mac, x.ip, x.prefix_len, "          \
    "x.gateway, coalesce(x.groups, '[]') FROM json_to_recordset($1::json) AS x(instance_id text, eni_id text, "       \
    "subnet_id text, vpc_id text, mac text, ip text, prefix_len int, gateway text, groups jsonb) JOIN instances i "   \
    "ON i.id = x.instance_id AND i.state = 'pending' AND NOT i.prepared " LAUNCH_PORT_UPSERT " RETURNING instance_id"

/* The ports answered for instances the record did not take (none while their rows are
 * locked; said for safety): deleted, as nothing of compute's would delete them. */
static void delete_unrecorded(task_t *t, int timeout_ms, const json_t *ports, const PGresult *rec)
{
    size_t i;
    json_t *p;
    json_array_foreach(ports, i, p) {
        const char *inst = json_str(p, "instance_id", ""), *eni = json_str(p, "eni_id", NULL);
        int recorded = 0;
        for (int k = 0; rec && k < PQntuples(rec) && !recorded; k++)
            recorded = !strcmp(PQgetvalue(rec, k, 0), inst);
        if (!eni || recorded)
            continue;
        JSON_AUTO json_t *reply = NULL;
        verr_t e;
        if (bus_call(t->svc->bus, "network", "network.port_delete", json_pack("{s:s, s:s}", "eni", eni, "instance_id",
                     inst), NULL, timeout_ms, &reply, &e) < 0)
            log_warn("the batch's port %s of %s was not recorded and could not be deleted: %s", eni, inst, e.message);
    }
}

/* The batch: the siblings locked, the question, the record, one transaction. */
static int batch(task_t *t, const char *id, int timeout_ms, launch_port_ask_t ask, json_t **port, verr_t *e)
{
    db_t *db = t->db;
    const char *p[] = {id};
    PG_AUTO PGresult *r = NULL;
    PG_AUTO PGresult *rec = NULL;
    if (db_begin(db, e) < 0 || !(r = db_prepared(db, e, "batch_lock", BATCH_LOCK, 1, p))) {
        db_rollback(db);
        return -1;
    }
    /* its own row held by another (a terminate), or no sibling left to ask for */
    if (PQntuples(r) < 2 || strcmp(PQgetvalue(r, 0, 0), id)) {
        db_rollback(db);
        return LAUNCH_BATCH_ASK;
    }
    /* the siblings' tasks held too: they run once the ports are recorded (see the top) */
    const char **sib = xcalloc((size_t)PQntuples(r), sizeof *sib);
    for (int k = 1; k < PQntuples(r); k++)
        sib[k - 1] = PQgetvalue(r, k, 0);
    AUTOFREE char *sibs = db_text_array(sib, (size_t)PQntuples(r) - 1);
    free(sib);
    const char *tp[] = {sibs};
    PG_AUTO PGresult *held = db_prepared(db, e, "batch_tasks", BATCH_TASKS, 1, tp);
    if (!held) {
        db_rollback(db);
        return -1;
    }
    JSON_AUTO json_t *asks = json_array();
    for (int k = 0; k < PQntuples(r); k++)
        json_array_append_new(asks, ask(r, k));
    JSON_AUTO json_t *reply = NULL;
    uint64_t t0 = metrics_now_us();
    if (bus_call(t->svc->bus, "network", "network.port_create_many",
                 json_pack("{s:s, s:O}", "account", PQgetvalue(r, 0, 2), "ports", asks), NULL, timeout_ms, &reply,
                 e) < 0) {
        db_rollback(db);
        /* a network that does not know the question (older) or refuses it: one by one */
        return e->http_status >= 400 && e->http_status < 500 && e->http_status != 429 ? LAUNCH_BATCH_ASK : -1;
    }
    json_t *ports = json_object_get(reply, "ports");
    JSON_AUTO json_t *made = json_array(), *facts = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(ports, i, x) {
        if (json_object_get(x, "error") || !json_str(x, "eni_id", NULL))
            continue;   /* its task asks its own port_create: its error, its state reason */
        json_array_append(made, x);
        if (json_is_object(json_object_get(x, "facts")))
            json_array_append(facts, json_object_get(x, "facts"));
    }
    AUTOFREE char *doc = json_dumps(made, JSON_COMPACT);
    AUTOFREE char *fdoc = json_dumps(facts, JSON_COMPACT);
    const char *q[] = {doc, fdoc};
    if (!(rec = db_prepared(db, e, "batch_record", BATCH_RECORD, 2, q)) || db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;   /* not recorded: each task asks its own, the tokens answer these ports */
    }
    /* the siblings' tasks, free now, run at once (a sibling's own question for a port
     * the batch could not make, its error, included) */
    task_pool_wake(t->pool);
    delete_unrecorded(t, timeout_ms, made, rec);
    log_info("launch %s: %zu ports of its reservation in one question (%d asked) in %llu ms", id,
             json_array_size(made), PQntuples(r), (unsigned long long)((metrics_now_us() - t0) / 1000));
    json_t *own = json_array_get(ports, 0);
    if (json_object_get(own, "error") || strcmp(json_str(own, "instance_id", ""), id))
        return LAUNCH_BATCH_ASK;
    *port = json_incref(own);
    return LAUNCH_BATCH_PORT;
}

int launch_batch_port(task_t *t, const char *id, int timeout_ms, launch_port_ask_t ask, json_t **port, verr_t *e)
{
    const char *p[] = {id};
    PG_AUTO PGresult *r = db_prepared(t->db, e, "batch_peek", BATCH_PEEK, 1, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return LAUNCH_BATCH_LATER;
    if (!PQgetisnull(r, 0, 0)) {   /* a sibling's batch recorded it: no question */
        *port = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
        return *port ? LAUNCH_BATCH_PORT : verr_set(e, 500, "InternalError", "unreadable port of %s", id);
    }
    if (PQgetvalue(r, 0, 1)[0] != 't')   /* one instance, or its siblings launched: today's question */
        return LAUNCH_BATCH_ASK;
    return batch(t, id, timeout_ms, ask, port, e);
}
