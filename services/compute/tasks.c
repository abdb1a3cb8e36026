/* tasks.c - compute's persistent work (common/task.h), on task threads, never on bus
 * workers:
 *   launch:<instance>   the image's grant URLs (image.fetch_url as the account: refused
 *                       now, the launch fails) asked while the network makes the
 *                       instance's port (network.port_create, device_kind by driver;
 *                       the default VPC's subnet and group when none was named; plugged
 *                       on its host in the same call unless the host only simulates;
 *                       network.port_adopt instead when RunInstances named an existing
 *                       interface as the primary: instances.primary_eni; a
 *                       MaxCount launch's first task asks network.port_create_many
 *                       for itself and its siblings, which then find their ports
 *                       recorded: launch_batch.c);
 *                       then the interfaces RunInstances gave beyond the primary
 *                       (network.launch_interfaces: launch_network.c); then, in one
 *                       transaction, the ports are recorded, the instance is marked prepared and the
 *                       host's generation bumped; then the agent is told.
 *   cleanup:<instance>  once its guest is gone (shutting-down): its primary port is deleted
 *                       (the network deletes with it the interfaces given at launch with
 *                       DeleteOnTermination and detaches the others: attachments.c; an
 *                       adopted primary is detached, available again: ports.c); then
 *                       the instance is terminated (EV_RELEASED).
 *   groups:<instance>:<n>  a new groupSet onto its port (instance_groups.c).
 *   public:<instance>:<n>  its auto-assigned public address released at a stop, a new
 *                       one at a start (public_address_lifecycle.c).
 * Every step repeats safely (port_create is idempotent per instance, port_delete of a
 * gone port is not an error), so a compute killed at any point converges when another
 * process (or the restarted one) takes the task over. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "instance_state.h"
#include "jsonutil.h"
#include "launch_batch.h"
#include "launch_grants.h"
#include "launch_network.h"
#include "log.h"
#include "metrics.h"

#define TABLE "tasks"

int compute_task_add(db_t *db, const char *kind, const char *instance_id, verr_t *e)
{
    return compute_task_add_with(db, kind, instance_id, NULL, e);
}

int compute_task_add_with(db_t *db, const char *kind, const char *instance_id, const json_t *more, verr_t *e)
{
    char id[96];
    snprintf(id, sizeof id, "%s:%s", kind, instance_id);
    JSON_AUTO json_t *payload = json_pack("{s:s}", "instance_id", instance_id);
    if (more)
        json_object_update(payload, (json_t *)more);
    return task_insert(db, TABLE, id, kind, payload, 0, e);
}

int compute_task_add_each(db_t *db, const char *kind, const char *instance_id, verr_t *e)
{
    char id[112];
    snprintf(id, sizeof id, "%s:%s:%08x", kind, instance_id, randombytes_random());
    JSON_AUTO json_t *payload = json_pack("{s:s}", "instance_id", instance_id);
    return task_insert(db, TABLE, id, kind, payload, 0, e);
}

/* A 4xx answer is the request's fault and will not change by retrying. */
static int permanent(const verr_t *e) { return e->http_status >= 400 && e->http_status < 500 && e->http_status != 429; }

typedef struct inst {
    char state[16], account[16], host[64], driver[16], zone[64];
    char *subnet, *private_ip, *groups, *image;
    char *primary_eni;   /* an existing interface to adopt as the primary, or NULL */
    int prepared;
    int public_ip;   /* AssociatePublicIpAddress as asked: 1, 0, -1 (not given) */
    int siblings;    /* its reservation has other instances (load only: launch_batch.c's case) */
} inst_t;

static void inst_free(inst_t *i)
{
    free(i->subnet);
    free(i->private_ip);
    free(i->groups);
    free(i->image);
    free(i->primary_eni);
}

/* An instance as LAUNCH_INST_COLUMNS read it (row of r, from column c). */
static void inst_of_row(const PGresult *r, int row, int c, inst_t *i)
{
    snprintf(i->state, sizeof i->state, "%s", PQgetvalue(r, row, c + 0));
    snprintf(i->account, sizeof i->account, "%s", PQgetvalue(r, row, c + 1));
    snprintf(i->host, sizeof i->host, "%s", PQgetvalue(r, row, c + 2));
    snprintf(i->driver, sizeof i->driver, "%s", PQgetvalue(r, row, c + 3));
    snprintf(i->zone, sizeof i->zone, "%s", PQgetvalue(r, row, c + 4));
    i->subnet = PQgetisnull(r, row, c + 5) ? NULL : xstrdup(PQgetvalue(r, row, c + 5));
    i->private_ip = PQgetisnull(r, row, c + 6) ? NULL : xstrdup(PQgetvalue(r, row, c + 6));
    i->groups = xstrdup(PQgetvalue(r, row, c + 7));
    i->prepared = PQgetvalue(r, row, c + 8)[0] == 't';
    i->image = xstrdup(PQgetvalue(r, row, c + 9));
    i->public_ip = PQgetisnull(r, row, c + 10) ? -1 : PQgetvalue(r, row, c + 10)[0] == 't';
    i->primary_eni = PQgetisnull(r, row, c + 11) ? NULL : xstrdup(PQgetvalue(r, row, c + 11));
}

static int load(db_t *db, const char *id, inst_t *i, verr_t *e)
{
    const char *p[] = {id};
    /* with whether it has siblings: a lone launch (MaxCount 1) then asks its port without
     * launch_batch.c's look at its recorded port, a statement less before the question
     * RunInstances' answer waits for */
    PG_AUTO PGresult *r = db_prepared(db, e, "task_inst",
        "SELECT " LAUNCH_INST_COLUMNS ", EXISTS (SELECT 1 FROM instances s WHERE s.reservation_id = "
        "instances.reservation_id AND s.id <> instances.id) FROM instances WHERE id = $1", 1, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return 0;
    inst_of_row(r, 0, 0, i);
    i->siblings = PQgetvalue(r, 0, 12)[0] == 't';
    return 1;
}

/* The launch could not be done (the request's fault, found late): the instance ends as
 * a failed EC2 launch does, with the reason in its state reason. */
static int launch_failed(task_t *t, const char *id, const verr_t *why, verr_t *e)
{
    char reason[512];
    snprintf(reason, sizeof reason, "Server.InternalError: %.60s: %.400s", why->code, why->message);
    char state[32];
    inst_change_t ch, gone;
    if (db_begin(t->db, e) < 0 || instance_lock(t->db, NULL, id, state, e) < 0 ||
        instance_transition(t->db, id, state, EV_LAUNCH_FAILED, reason, &ch, e) < 0 ||
        (ch.changed && instance_transition(t->db, id, ch.to, EV_GONE, NULL, &gone, e) < 0) || db_commit(t->db, e) < 0) {
        db_rollback(t->db);
        return TASK_FAILED;
    }
    log_warn("launch of %s failed: %s", id, reason);
    task_pool_wake(((compute_t *)t->svc->state)->tasks);
    return TASK_DONE;
}

/* A port's answer as the parameters $1..$10 of RECORD_PORT_SQL (instance, eni, subnet,
 * vpc, mac, ip, prefix length, gateway, groups, device index); the strings they point to
 * live in buf and port. */
typedef struct port_params {
    const char *p[10];
    char plen[16], idx[16];
    char *groups;
} port_params_t;

static void port_params(port_params_t *pp, const char *id, const json_t *port)
{
    snprintf(pp->plen, sizeof pp->plen, "%lld", (long long)json_int(port, "prefix_len", 0));
    snprintf(pp->idx, sizeof pp->idx, "%lld", (long long)json_int(port, "device_index", 0));
    json_t *g = json_object_get(port, "groups");
    pp->groups = g ? json_dumps(g, JSON_COMPACT) : xstrdup("[]");
    const char *p[] = {id, json_str(port, "eni_id", ""), json_str(port, "subnet_id", ""), json_str(port, "vpc_id", ""),
                       json_str(port, "mac", ""), json_str(port, "ip", ""), pp->plen, json_str(port, "gateway", ""),
                       pp->groups, pp->idx};
    memcpy(pp->p, p, sizeof p);
}

#define RECORD_PORT_SQL                                                                                               \
    "INSERT INTO instance_interfaces (instance_id, device_index, eni_id, subnet_id, vpc_id, mac, ip, prefix_len, "     \
    "gateway, groups) VALUES ($1, $10::int, $2, $3, $4, $5, $6, $7::int, $8, $9::jsonb) " LAUNCH_PORT_UPSERT

/* The port's answer into instance_interfaces (at its device_index: 0, the primary). */
static int record_port(db_t *db, const char *id, const json_t *port, verr_t *e)
{
    port_params_t pp;
    port_params(&pp, id, port);
    PG_AUTO PGresult *r = db_prepared(db, e, "task_port", RECORD_PORT_SQL, 10, pp.p);
    free(pp.groups);
    return r ? 0 : -1;
}

/* The launch's end, one statement (its own transaction): the primary's port recorded
 * whatever the state now (the cleanup task deletes what is recorded), the interfaces'
 * facts stored (facts: the primary's and the others', NETWORK_ENIS_UPSERT: a statement
 * of their own before, about 1.5 ms of RunInstances' answer) and, if the instance is
 * still pending (its row locked: a terminate meanwhile waits or wins), the host's
 * generation bumped and the instance marked prepared with its image's grants.
 * *gen: the host's new generation, 0 when the instance was not pending. */
static int record_prepared(db_t *db, const char *id, const char *host, const json_t *port, const json_t *facts,
                           const json_t *image, long long *gen, verr_t *e)
{
    port_params_t pp;
    port_params(&pp, id, port);
    AUTOFREE char *img = json_dumps(image, JSON_COMPACT);
    AUTOFREE char *fdoc = json_dumps(facts, JSON_COMPACT);
    const char *p[13];
    memcpy(p, pp.p, sizeof pp.p);
    p[10] = host;
    p[11] = img;
    p[12] = fdoc;
    PG_AUTO PGresult *r = db_prepared(db, e, "task_prepared",
        "WITH port AS (" RECORD_PORT_SQL " RETURNING 1), "
        "facts AS (" NETWORK_ENIS_UPSERT("$13") " RETURNING 1), "
        "i AS (SELECT id FROM instances WHERE id = $1 AND state = 'pending' FOR UPDATE), "
        "g AS (UPDATE hosts SET generation = generation + 1 WHERE host_id = $11 AND EXISTS (SELECT 1 FROM i) "
        "RETURNING generation), "
        "p AS (UPDATE instances SET prepared = true, changed_gen = coalesce((SELECT generation FROM g), 0), "
        "image = $12::jsonb, updated_at = now() WHERE id = $1 AND EXISTS (SELECT 1 FROM i) RETURNING changed_gen) "
        "SELECT (SELECT count(*) FROM port), (SELECT changed_gen FROM p), (SELECT count(*) FROM facts)", 13, p);
    free(pp.groups);
    if (!r)
        return -1;
    *gen = PQgetisnull(r, 0, 1) ? 0 : atoll(PQgetvalue(r, 0, 1));
    return 0;
}

/* The ports beyond the primary (launch_net_more_ports) into instance_interfaces (they
 * repeat safely: a launch killed after them records them again), and every port's facts
 * (the primary's first) into *facts for record_prepared: an older fact never overwrites
 * a newer. The others' facts stored by the launch, not only by the network's push, make
 * the RunInstances answer that waits for this task show them (run_answer.c). */
static int record_more(db_t *db, const char *id, const json_t *port, const json_t *more, json_t *facts, verr_t *e)
{
    size_t i;
    json_t *p;
    if (json_is_object(json_object_get(port, "facts")))
        json_array_append(facts, json_object_get(port, "facts"));
    json_array_foreach(more, i, p) {
        if (record_port(db, id, p, e) < 0)
            return -1;
        if (json_is_object(json_object_get(p, "facts")))
            json_array_append(facts, json_object_get(p, "facts"));
    }
    return 0;
}

/* The grant URLs the host will fetch the image (kernel, ramdisk) with, asked as the
 * account: RunInstances decided from compute's facts, the image service decides now (an
 * image deregistered meanwhile is refused here). The questions go out first and are
 * answered while the network makes the port (grants_finish): a launch waits for the
 * slower of the two, not for both in turn. */
typedef struct grants {
    json_t *img;                      /* the instance's image column, parsed */
    const char *account;
    bus_pending_t *ask[3];            /* image, kernel, ramdisk: NULL when not asked (or reused) */
    verr_t err;                       /* a question that could not be sent */
    int failed;
} grants_t;

static const char *const grant_parts[] = {"image", "kernel", "ramdisk"};

static void grants_start(task_t *t, const inst_t *in, grants_t *g)
{
    const compute_t *c = t->svc->state;
    memset(g, 0, sizeof *g);
    JSON_AUTO json_t *caller = json_pack("{s:s}", "account_id", in->account);
    g->img = json_loads(in->image, 0, NULL);
    g->account = in->account;
    for (size_t i = 0; g->img && !g->failed && i < 3; i++) {
        json_t *part = json_object_get(g->img, grant_parts[i]);
        if (!part)
            continue;
        /* the answer a launch of this image by this account had seconds ago (launch_grants.c) */
        json_t *kept = launch_grants_get(c->grants, in->account, json_str(part, "image_id", ""));
        if (kept) {
            json_object_set_new(g->img, grant_parts[i], kept);
            continue;
        }
        g->ask[i] = bus_call_start(t->svc->bus, "image", "image.fetch_url",
                                   json_pack("{s:s}", "image_id", json_str(part, "image_id", "")), caller,
                                   c->call_timeout_ms, &g->err);
        g->failed = !g->ask[i];
    }
}

/* Every question answered (each one started is finished, even after a failure);
 * *out = the instance's new image column. */
static int grants_finish(task_t *t, grants_t *g, json_t **out, verr_t *e)
{
    const compute_t *c = t->svc->state;
    int rc = g->failed ? -1 : 0;
    if (g->failed)
        *e = g->err;
    for (size_t i = 0; i < 3; i++) {
        if (!g->ask[i])
            continue;
        json_t *ans = NULL;
        verr_t pe;
        if (bus_call_finish(g->ask[i], &ans, &pe) < 0) {
            if (rc == 0)
                *e = pe;
            if (permanent(&pe))
                launch_facts_image_changed(c->facts, json_str(json_object_get(g->img, grant_parts[i]), "image_id", ""));
            rc = -1;
            continue;
        }
        launch_grants_put(c->grants, g->account, json_str(json_object_get(g->img, grant_parts[i]), "image_id", ""), ans);
        json_object_set_new(g->img, grant_parts[i], ans);
    }
    if (rc == 0 && !g->img)
        rc = verr_set(e, 500, "InternalError", "unreadable image of the instance");
    if (rc == 0)
        *out = g->img;
    else
        json_decref(g->img);
    g->img = NULL;
    return rc;
}

/* sim and ec2 hosts run no local datapath: the port only gives the instance its private
 * address here (an ec2 instance's network is the public cloud's) */
static int runs_datapath(const inst_t *in) { return strcmp(in->driver, "sim") && strcmp(in->driver, "ec2"); }

/* network.port_create's question for the instance (or port_adopt's, for an existing
 * interface as its primary: *method): plugged on its host in the same transaction when
 * the host runs a datapath. */
static json_t *port_request(const char *id, const inst_t *in, const char **method)
{
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "account", in->account, "instance_id", id, "host", in->host,
                             "device_kind", !strcmp(in->driver, "qemu") ? "tap" : "veth");
    *method = in->primary_eni ? "network.port_adopt" : "network.port_create";
    if (runs_datapath(in))
        json_object_set_new(body, "plug", json_true());
    if (in->primary_eni) {   /* its own subnet, address and groups; no public address */
        json_object_set_new(body, "eni", json_string(in->primary_eni));
        return body;
    }
    json_object_set_new(body, "az", json_string(in->zone));
    if (in->subnet)
        json_object_set_new(body, "subnet", json_string(in->subnet));
    if (in->private_ip)
        json_object_set_new(body, "private_ip", json_string(in->private_ip));
    /* an ec2 host's instance has the public cloud's public address (docs/hybrid.md): one
     * from this cloud's pool would reach nothing */
    if (!strcmp(in->driver, "ec2"))
        json_object_set_new(body, "associate_public_ip", json_false());
    else if (in->public_ip >= 0)
        json_object_set_new(body, "associate_public_ip", json_boolean(in->public_ip));
    json_t *groups = json_loads(in->groups, 0, NULL);
    if (json_array_size(groups))
        json_object_set_new(body, "groups", groups);
    else
        json_decref(groups);
    return body;
}

/* A sibling's port_create body for the batch (launch_batch.c): the one its own task
 * would ask. */
static json_t *sibling_ask(const PGresult *r, int row)
{
    inst_t in = {0};
    const char *method;
    inst_of_row(r, row, 1, &in);
    json_t *body = port_request(PQgetvalue(r, row, 0), &in, &method);
    inst_free(&in);
    return body;
}

/* The image refused after the port was made: the port is recorded first, so the cleanup
 * task that the failure queues deletes it. */
static int launch_failed_with_port(task_t *t, const char *id, const json_t *port, const verr_t *why, verr_t *e)
{
    if (port && (record_port(t->db, id, port, e) < 0 || network_enis_store_answer(t->db, port, e) < 0))
        return TASK_FAILED;
    return launch_failed(t, id, why, e);
}

/* A launch that finds its instance terminated before it was prepared, on a second or
 * later attempt: an earlier one (its compute killed after the network's answer) may have
 * made the port and not recorded it, and the cleanup deletes only what is recorded. The
 * same question (its token answers the port made, or makes one) recorded, so the
 * cleanup, which waits for this task, deletes it. A first attempt made none; an adopted
 * primary the cleanup gives back by the instance's row. */
static int orphan_port(task_t *t, const char *id, const inst_t *in, verr_t *e)
{
    const compute_t *c = t->svc->state;
    if (in->prepared || in->primary_eni || (t->attempts < 2 && !in->siblings))   /* launch_batch.c */
        return TASK_DONE;
    const char *method;
    JSON_AUTO json_t *port = NULL;
    json_t *ask = port_request(id, in, &method);
    if (bus_call(t->svc->bus, "network", method, ask, NULL, c->call_timeout_ms, &port, e) < 0)
        return permanent(e) ? TASK_DONE : TASK_FAILED;
    if (record_port(t->db, id, port, e) < 0 || network_enis_store_answer(t->db, port, e) < 0)
        return TASK_FAILED;
    return TASK_DONE;
}

static int run_launch(task_t *t, verr_t *e)
{
    const compute_t *c = t->svc->state;
    const char *id = json_str(t->payload, "instance_id", "");
    uint64_t t0 = metrics_now_us();
    inst_t in = {0};
    int found = load(t->db, id, &in, e), rc = TASK_FAILED;
    if (found <= 0) {
        inst_free(&in);
        return found < 0 ? TASK_FAILED : TASK_DONE;
    }
    if (strcmp(in.state, "pending") || in.prepared) {   /* terminated meanwhile, or done */
        int rc_late = orphan_port(t, id, &in, e);
        run_answers_launched(c->answers, id);
        inst_free(&in);
        return rc_late;
    }
    grants_t gr;
    grants_start(t, &in, &gr);
    JSON_AUTO json_t *port = NULL, *image = NULL, *more = NULL, *facts = NULL;
    verr_t pe;
    const char *method;
    /* a MaxCount launch's ports in one question, or recorded by a sibling's (launch_batch.c) */
    int batched = in.primary_eni || !in.siblings ? LAUNCH_BATCH_ASK
                  : launch_batch_port(t, id, c->call_timeout_ms, sibling_ask, &port, &pe);
    int port_rc = batched == LAUNCH_BATCH_PORT ? 0 : -1;
    if (batched == LAUNCH_BATCH_ASK) {
        json_t *ask = port_request(id, &in, &method);
        port_rc = bus_call(t->svc->bus, "network", method, ask, NULL, c->call_timeout_ms, &port, &pe);
    }
    if (batched == LAUNCH_BATCH_LATER) {   /* a sibling's batch holds it: its grants are drained */
        json_decref(grants_finish(t, &gr, &image, e) == 0 ? image : NULL);
        image = NULL;
        t->again_ms = LAUNCH_BATCH_AGAIN_MS;
        rc = TASK_AGAIN;
        goto out;
    }
    uint64_t t_port = metrics_now_us();
    if (grants_finish(t, &gr, &image, e) < 0) {
        rc = permanent(e) ? launch_failed_with_port(t, id, port_rc == 0 ? port : NULL, e, e) : TASK_FAILED;
        goto out;
    }
    uint64_t t_grants = metrics_now_us();
    if (port_rc < 0) {
        *e = pe;
        rc = permanent(e) ? launch_failed(t, id, e, e) : TASK_FAILED;
        goto out;
    }
    /* the interfaces RunInstances asked for beyond the primary (launch_network.c) */
    if (launch_net_more_ports(t->svc, c->call_timeout_ms, id, in.account, port, t->payload, &more, e) < 0) {
        rc = permanent(e) ? launch_failed_with_port(t, id, port, e, e) : TASK_FAILED;
        goto out;
    }
    /* the lease renewed only when a third of it has gone (a slow network): within it no
     * other process can have taken the task, so a statement a launch is saved */
    if (task_keepalive(t, e) < 0)
        goto out;
    /* a network that did not plug it with the create (one older than "plug") */
    if (runs_datapath(&in) && !json_is_true(json_object_get(port, "plugged"))) {
        JSON_AUTO json_t *plugged = NULL;
        if (bus_call(t->svc->bus, "network", "network.port_plug",
                     json_pack("{s:s, s:s}", "eni", json_str(port, "eni_id", ""), "host", in.host), NULL,
                     c->call_timeout_ms, &plugged, e) < 0)
            goto out;
    }
    uint64_t t_plug = metrics_now_us();
    /* RunInstances' tags of its interfaces, on the ports just made (launch_port_tags.c) */
    if (launch_tag_ports(t->svc, c->call_timeout_ms, in.account, in.primary_eni, port, more, t->payload, e) < 0)
        goto out;
    long long gen = 0;
    facts = json_array();
    if (record_more(t->db, id, port, more, facts, e) < 0 ||
        record_prepared(t->db, id, in.host, port, facts, image, &gen, e) < 0)
        goto out;
    if (gen)
        hosts_notify_changes(t->svc, t->db, in.host, gen, NULL);
    /* the launch's own time, so a launch's figures (tests/bench/bench_instances.py) tell
     * compute's part from the agent's */
    uint64_t t_end = metrics_now_us();
    log_info("launch %s: prepared in %llu ms (port %llu ms, grants %llu ms more, lease and plug %llu ms, "
             "commit %llu ms)", id, (unsigned long long)((t_end - t0) / 1000),
             (unsigned long long)((t_port - t0) / 1000), (unsigned long long)((t_grants - t_port) / 1000),
             (unsigned long long)((t_plug - t_grants) / 1000), (unsigned long long)((t_end - t_plug) / 1000));
    rc = TASK_DONE;
out:
    if (rc == TASK_DONE)   /* prepared, or failed for good: RunInstances may answer */
        run_answers_launched(c->answers, id);
    inst_free(&in);
    return rc;
}

/* The cleanup's end: its interfaces are gone, the instance is terminated (one row gone
 * since, purged, is done too). */
static int released(db_t *db, const char *id, verr_t *e)
{
    char state[32];
    inst_change_t ch;
    if (db_begin(db, e) < 0)
        return TASK_FAILED;
    if (instance_lock(db, NULL, id, state, e) < 0) {
        db_rollback(db);
        return !strcmp(e->code, "InvalidInstanceID.NotFound") ? TASK_DONE : TASK_FAILED;
    }
    if (instance_transition(db, id, state, EV_RELEASED, NULL, &ch, e) < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        return TASK_FAILED;
    }
    return TASK_DONE;
}

static int run_cleanup(task_t *t, verr_t *e)
{
    const compute_t *c = t->svc->state;
    const char *id = json_str(t->payload, "instance_id", "");
    char launch[96];
    snprintf(launch, sizeof launch, "launch:%s", id);
    const char *p[] = {launch, id};
    /* a launch still running may yet record a port: let it end first (first column; the
     * ports, one statement). An existing interface the launch adopted is given back even
     * when no port was recorded (a launch that gave up after its adopt): the network
     * detaches it only while it is still this instance's */
    PG_AUTO PGresult *r = db_prepared(t->db, e, "task_launch_ports",
        "SELECT EXISTS (SELECT 1 FROM " TABLE " WHERE id = $1 AND status = 'active'), coalesce(f.eni_id, "
        "i.primary_eni) FROM (SELECT 1) one "
        "LEFT JOIN instance_interfaces f ON f.instance_id = $2 AND f.device_index = 0 AND NOT f.deleted "
        "LEFT JOIN instances i ON i.id = $2 AND NOT EXISTS (SELECT 1 FROM instance_interfaces g WHERE "
        "g.instance_id = $2 AND g.device_index = 0 AND g.deleted)", 2, p);
    if (!r)
        return TASK_FAILED;
    if (PQgetvalue(r, 0, 0)[0] == 't') {
        t->again_ms = 200;
        return TASK_AGAIN;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        if (PQgetisnull(r, i, 1))
            continue;
        const char *eni = PQgetvalue(r, i, 1);
        JSON_AUTO json_t *reply = NULL;
        if (bus_call(t->svc->bus, "network", "network.port_delete", json_pack("{s:s, s:s}", "eni", eni,
                     "instance_id", id), NULL, c->call_timeout_ms, &reply, e) < 0)
            return TASK_FAILED;
        /* the answer's facts (the port gone, at a new version) first: a cleanup killed
         * between the two statements deletes again and stores a newer version */
        if (network_enis_store_answer(t->db, reply, e) < 0)
            return TASK_FAILED;
        const char *q[] = {id, eni};
        PG_AUTO PGresult *u = db_prepared(t->db, e, "task_port_gone",
            "UPDATE instance_interfaces SET deleted = true WHERE instance_id = $1 AND (eni_id = $2 OR device_index > 0)",
            2, q);
        if (!u)
            return TASK_FAILED;
    }
    return released(t->db, id, e);
}

static const task_kind_t kinds[] = {
    {"launch", run_launch},
    {"cleanup", run_cleanup},
    {"groups", compute_run_groups},
    {"public", compute_run_public},   /* public_address_lifecycle.c */
    {NULL, NULL},
};

/* A launch that failed every attempt (the network unreachable for long): the instance
 * ends as a failed launch. A cleanup that did: its ports are left to the operator (logged)
 * and the instance is terminated. */
static void give_up(service_t *svc, db_t *db, const char *id, const char *kind, const json_t *payload)
{
    (void)id;
    const char *iid = json_str(payload, "instance_id", "");
    if (strcmp(kind, "launch")) {
        log_warn("the %s task of instance %s gave up (%s)", kind, iid,
                 !strcmp(kind, "cleanup") ? "its ports are left, it is terminated" : "its next change will set it");
        verr_t e;
        if (!strcmp(kind, "cleanup") && released(db, iid, &e) != TASK_DONE)
            log_warn("terminating %s: %s", iid, e.message);
        return;
    }
    task_t t = {.svc = svc, .db = db};
    verr_t why, e;
    verr_set(&why, 500, "InternalError", "the launch failed repeatedly");
    if (launch_failed(&t, iid, &why, &e) != TASK_DONE)
        log_warn("ending the failed launch of %s: %s", iid, e.message);
}

task_pool_t *compute_tasks_start(service_t *svc, verr_t *e)
{
    task_opts_t o = {
        .table = TABLE,
        .payload_column = "payload",
        .kinds = kinds,
        .give_up = give_up,
        .workers = (int)config_int(svc->cfg, "compute.task_workers", 4),
        .workers_key = "compute.task_workers",
        .lease_s = (int)config_int(svc->cfg, "compute.task_lease_s", 30),
        .poll_ms = (int)config_int(svc->cfg, "compute.task_poll_ms", 1000),
        .idle_ms = (int)config_int(svc->cfg, "compute.task_idle_ms", 30000),
        .max_attempts = (int)config_int(svc->cfg, "compute.task_max_attempts", 8),
        .backoff_ms = 500,
        .backoff_max_ms = 30000,
    };
    return task_pool_start(svc, &o, e);
}
