/* lifecycle.c - StopInstances (Force), StartInstances, RebootInstances,
 * TerminateInstances and GetConsoleOutput. A state change is the state machine's
 * (instance_state.c), applied to every named instance in one transaction: the instance
 * rows locked in id order, then their hosts' rows in host order (the order every
 * multi-row change in compute takes, so none deadlocks), then each transition; after the
 * commit the hosts' agents are told. An instance no agent was told of yet (its launch
 * task has not finished) is terminated at once; its launch task then stops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "describe.h"
#include "ids.h"
#include "instance_state.h"
#include "jsonutil.h"
#include "log.h"
#include "strbuf.h"

#define MAX_IDS 1000

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The InstanceId list as a sorted, de-duplicated PostgreSQL text[] literal. */
static int id_array(const json_t *body, char **out, size_t *count, verr_t *e)
{
    json_t *ids = json_object_get(body, "InstanceId");
    size_t n = json_array_size(ids), k = 0;
    if (!n)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter InstanceId");
    if (n > MAX_IDS)
        return verr_set(e, 400, "InvalidParameterValue", "At most %d instance ids", MAX_IDS);
    const char **v = xcalloc(n, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        v[i] = json_string_value(json_array_get(ids, i));
        if (!v[i] || !ids_valid("i", v[i])) {
            verr_set(e, 400, "InvalidInstanceID.Malformed", "Invalid id: \"%.64s\"", v[i] ? v[i] : "");
            free(v);
            return -1;
        }
    }
    qsort(v, n, sizeof *v, cmp_str);
    strbuf_t b = {0};
    strbuf_putc(&b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i && !strcmp(v[i], v[i - 1]))
            continue;
        strbuf_printf(&b, "%s%s", k++ ? "," : "", v[i]);
    }
    strbuf_putc(&b, '}');
    free(v);
    *out = b.s;
    *count = k;
    return 0;
}

typedef struct locked {
    char id[IDS_MAX], state[16];
    int protected_;
} locked_t;

/* Whether the locked rows (instance id first) hold id. */
static int row_has(const char *id, const void *rows)
{
    const PGresult *r = rows;
    for (int k = 0; k < PQntuples(r); k++)
        if (!strcmp(PQgetvalue(r, k, 0), id))
            return 1;
    return 0;
}

/* Lock the instances (id order) and their hosts (host order); every id must be the
 * caller's (account NULL: any) and visible. */
static locked_t *lock_all(db_t *db, const compute_t *c, const char *account, const char *ids, size_t n,
                          const json_t *body, verr_t *e)
{
    char vis[16];
    snprintf(vis, sizeof vis, "%d", c->terminated_visible_s);
    const char *p[] = {ids, account, vis};
    PG_AUTO PGresult *r = db_prepared(db, e, "life_lock",
        "SELECT id, state, disable_api_termination FROM instances WHERE id = ANY($1::text[]) "
        "AND ($2::text IS NULL OR account_id = $2) "
        "AND (state <> 'terminated' OR terminated_at > now() - make_interval(secs => $3::int)) ORDER BY id FOR UPDATE",
        3, p);
    if (!r)
        return NULL;
    if ((size_t)PQntuples(r) != n && instance_ids_not_found(e, json_object_get(body, "InstanceId"), row_has, r) < 0)
        return NULL;
    PG_AUTO PGresult *h = db_prepared(db, e, "life_lock_hosts",
        "SELECT host_id FROM hosts WHERE host_id IN (SELECT host_id FROM instances WHERE id = ANY($1::text[])) "
        "ORDER BY host_id FOR UPDATE", 1, p);
    if (!h)
        return NULL;
    locked_t *out = xcalloc(n + 1, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        snprintf(out[i].id, sizeof out[i].id, "%s", PQgetvalue(r, (int)i, 0));
        snprintf(out[i].state, sizeof out[i].state, "%s", PQgetvalue(r, (int)i, 1));
        out[i].protected_ = PQgetvalue(r, (int)i, 2)[0] == 't';
    }
    return out;
}

static json_t *state_obj(const char *s) { return json_pack("{s:i, s:s}", "code", instance_state_code(s), "name", s); }

typedef struct notify {
    char host[64];
    long long gen;
    const char *gone;   /* the instance, when the change takes it off its host (a terminate) */
} notify_t;

static int apply(bus_ctx_t *ctx, const json_t *body, inst_event_t ev, json_t **reply, verr_t *e)
{
    const compute_t *c = compute_of(ctx);
    const char *account;
    AUTOFREE char *ids = NULL;
    size_t n = 0;
    if (instances_scope(ctx, &account, e) < 0 || id_array(body, &ids, &n, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    if (db_begin(db, e) < 0)
        return -1;
    AUTOFREE locked_t *rows = lock_all(db, c, account, ids, n, body, e);
    AUTOFREE notify_t *told = xcalloc(n + 1, sizeof *told);
    size_t ntold = 0;
    int wake = 0;   /* tasks to run: an unknown instance's end, a public address's change */
    json_t *set = json_array();
    if (!rows)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        if (ev == EV_TERMINATE && rows[i].protected_) {
            verr_set(e, 400, "OperationNotPermitted",
                     "The instance '%s' may not be terminated. Modify its 'disableApiTermination' instance attribute "
                     "and try again.", rows[i].id);
            goto fail;
        }
    }
    if (json_flag(body, "DryRun")) {
        /* every check passed: say so, change nothing */
        for (size_t i = 0; i < n; i++) {
            inst_change_t ch;
            if (instance_transition(db, rows[i].id, rows[i].state, ev, NULL, &ch, e) < 0)
                goto fail;
        }
        verr_set(e, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        inst_change_t ch, gone;
        if (instance_transition(db, rows[i].id, rows[i].state, ev, NULL, &ch, e) < 0)
            goto fail;
        /* no agent knows it: nothing to wait for */
        if (ch.changed && !strcmp(ch.to, "shutting-down") && !ch.host[0]) {
            if (instance_transition(db, rows[i].id, ch.to, EV_GONE, NULL, &gone, e) < 0)
                goto fail;
            snprintf(ch.to, sizeof ch.to, "%s", gone.to);
            wake = 1;
        }
        wake |= ch.changed && public_address_follows(ch.from, ch.to);
        if (ch.host[0]) {
            told[ntold] = (notify_t){.gen = ch.gen, .gone = !strcmp(ch.to, "shutting-down") ? rows[i].id : NULL};
            snprintf(told[ntold++].host, sizeof told[0].host, "%s", ch.host);
        }
        json_array_append_new(set, json_pack("{s:s, s:o, s:o}", "instanceId", rows[i].id, "previousState",
                                             state_obj(ch.from), "currentState", state_obj(ch.to)));
    }
    if (db_commit(db, e) < 0)
        goto fail;
    for (size_t i = 0; i < ntold; i++)
        hosts_notify_changes(service_of(ctx), db, told[i].host, told[i].gen, told[i].gone);
    if (wake)
        task_pool_wake(c->tasks);
    if (ev == EV_REBOOT) {
        json_decref(set);
        *reply = json_pack("{s:b}", "return", 1);
    } else {
        *reply = json_pack("{s:o}", "instancesSet", set);
    }
    return 0;
fail:
    db_rollback(db);
    json_decref(set);
    return -1;
}

int compute_stop_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return apply(ctx, body, EV_STOP, reply, e);
}

int compute_start_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return apply(ctx, body, EV_START, reply, e);
}

int compute_reboot_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return apply(ctx, body, EV_REBOOT, reply, e);
}

int compute_terminate_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return apply(ctx, body, EV_TERMINATE, reply, e);
}

/* The console text the host's agent last reported (compute.instances_observed): never
 * a call to the agent. */
int compute_get_console_output(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account, *id = json_str(body, "InstanceId", NULL);
    if (instances_scope(ctx, &account, e) < 0)
        return -1;
    if (!id || !*id)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter InstanceId");
    if (!ids_valid("i", id))
        return verr_set(e, 400, "InvalidInstanceID.Malformed", "Invalid id: \"%.64s\"", id);
    const char *p[] = {id, account};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "console_get",
        "SELECT c.output, extract(epoch FROM COALESCE(c.updated_at, now()))::bigint, c.output IS NOT NULL "
        "FROM instances i LEFT JOIN instance_console c ON c.instance_id = i.id "
        "WHERE i.id = $1 AND ($2::text IS NULL OR i.account_id = $2)", 2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id);
    char when[32];
    describe_time(atoll(PQgetvalue(r, 0, 1)), when);
    *reply = json_pack("{s:s, s:s}", "instanceId", id, "timestamp", when);
    if (PQgetvalue(r, 0, 2)[0] == 't')
        json_object_set_new(*reply, "output", json_string(PQgetvalue(r, 0, 0)));
    return 0;
}

/* Terminated instances are forgotten a day after they stopped being visible, once their
 * cleanup is done (their rows, interfaces, console, tags, and emptied reservations). */
void instances_purge(service_t *svc)
{
    const compute_t *c = svc->state;
    char vis[16];
    verr_t e;
    snprintf(vis, sizeof vis, "%d", c->terminated_visible_s + 86400);
    const char *p[] = {vis};
    PG_AUTO PGresult *r = db_prepared(svc->db, &e, "inst_purge",
        "WITH gone AS (DELETE FROM instances i WHERE state = 'terminated' "
        "AND terminated_at < now() - make_interval(secs => $1::int) "
        "AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = 'cleanup:' || i.id AND t.status = 'active') "
        "RETURNING id, reservation_id), "
        "t AS (DELETE FROM tags WHERE resource_id IN (SELECT id FROM gone)) "
        "DELETE FROM reservations r WHERE r.id IN (SELECT reservation_id FROM gone) "
        "AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.reservation_id = r.id AND i.id NOT IN (SELECT id FROM gone))",
        1, p);
    if (!r)
        log_warn("forgetting old terminated instances: %s", e.message);
}
