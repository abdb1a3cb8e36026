/* ports_many.c - a reservation's ports in one question (docs/compute.md, "One
 * network.port_create for a reservation's ports"):
 *   network.port_create_many {account, ports: [port_create's body, each with its
 *                        instance_id]} -> {ports: [the port as port_create answers it, or
 *                        {instance_id, error: {code, message}}]}, in the order asked
 * A MaxCount N launch asked N port_creates, each a transaction that queued on the
 * subnet's row lock behind the others (docs/performance.md, rate10); here one
 * transaction makes them: the tokens looked up in one statement (= ANY), each subnet
 * locked once and in id order (two batches, or a batch and a port_create, never
 * deadlock), then each port as port_create makes it (enis.c, eni_insert: the same
 * code), and one COMMIT. Each port keeps its own token, instance:<instance_id>, so the
 * batch is idempotent per instance: a retried batch, or one instance's own port_create
 * after it, answers the same port. A port that cannot be made (an address asked that is
 * taken, a group gone, the subnet full) fails only its own instance: the transaction is
 * made again without it (at most once per port), and the answer says which and why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "network.h"
#include "ports.h"

#define PORTS_MANY_MAX 256   /* RunInstances' MaxCount is capped lower (compute.max_count) */

typedef struct many {
    size_t n;
    port_request_t *q;
    char (*hash)[65];
    char (*id)[IDS_MAX];   /* the port made or found; "" while not */
    verr_t *err;           /* a port that could not be made: its error (code set) */
} many_t;

/* The tokens already used (one statement): their ports are answered, not made again; a
 * token of another request is that port's IdempotentParameterMismatch. */
static int tokens_found(db_t *db, const char *account, many_t *m, verr_t *e)
{
    JSON_AUTO json_t *tokens = json_array();
    for (size_t i = 0; i < m->n; i++)
        json_array_append_new(tokens, json_string(m->q[i].token));
    AUTOFREE char *doc = json_dumps(tokens, JSON_COMPACT);
    const char *p[] = {account, doc};
    PG_AUTO PGresult *r = db_prepared(db, e, "many_tokens", "SELECT client_token, id, request_hash FROM enis WHERE "
                                      "account_id = $1 AND client_token = ANY (SELECT json_array_elements_text($2::json))",
                                      2, p);
    if (!r)
        return -1;
    for (int k = 0; k < PQntuples(r); k++)
        for (size_t i = 0; i < m->n; i++) {
            if (strcmp(m->q[i].token, PQgetvalue(r, k, 0)) || m->err[i].code[0])
                continue;
            if (!PQgetisnull(r, k, 2) && strcmp(PQgetvalue(r, k, 2), m->hash[i]))
                net_token_mismatch(&m->err[i], m->q[i].token);
            else
                snprintf(m->id[i], IDS_MAX, "%s", PQgetvalue(r, k, 1));
        }
    return 0;
}

/* Every subnet the ports are made in, locked in one statement in id order. */
static int subnets_lock(db_t *db, const many_t *m, verr_t *e)
{
    JSON_AUTO json_t *ids = json_array();
    for (size_t i = 0; i < m->n; i++)
        if (!m->id[i][0] && !m->err[i].code[0])
            json_array_append_new(ids, json_string(m->q[i].subnet));
    if (!json_array_size(ids))
        return 0;
    AUTOFREE char *doc = json_dumps(ids, JSON_COMPACT);
    const char *p[] = {doc};
    PG_AUTO PGresult *r = db_prepared(db, e, "many_subnets", "SELECT id FROM subnets WHERE id IN (SELECT "
                                      "json_array_elements_text($1::json)) ORDER BY id FOR UPDATE", 1, p);
    return r ? 0 : -1;
}

/* One try of the transaction. 1: committed; 0: rolled back, a port could not be made
 * (its error now in m->err) or lost a race for its token (23505: the next try finds
 * it); -1: the database failed. */
static int try_once(bus_ctx_t *ctx, const char *account, many_t *m, verr_t *e)
{
    db_t *db = service_db(ctx);
    for (size_t i = 0; i < m->n; i++)
        m->id[i][0] = 0;
    if (db_begin(db, e) < 0 || tokens_found(db, account, m, e) < 0 || subnets_lock(db, m, e) < 0)
        goto fail;
    for (size_t i = 0; i < m->n; i++) {
        if (m->id[i][0] || m->err[i].code[0])
            continue;
        verr_t pe = {0};
        if (eni_insert(db, service_of(ctx), &m->q[i].s, m->hash[i], m->id[i], &pe) < 0) {
            int raced = !strcmp(db_last_sqlstate(db), "23505");   /* its token's port made meanwhile */
            db_rollback(db);
            if (raced)
                return 0;
            if (pe.http_status >= 500 || !pe.http_status) {   /* the database's: the whole question fails */
                *e = pe;
                return -1;
            }
            m->err[i] = pe;   /* this port's own fault: the others are made without it */
            return 0;
        }
    }
    if (db_commit(db, e) < 0)
        goto fail;
    return 1;
fail:
    db_rollback(db);
    return -1;
}

int net_port_create_many(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (ports_trusted(ctx, e) < 0)
        return -1;
    const char *account = json_str(body, "account", NULL);
    const json_t *ports = json_object_get(body, "ports");
    size_t n = json_array_size(ports);
    if (!json_is_array(ports) || !n || n > PORTS_MANY_MAX)
        return verr_set(e, 400, "InvalidParameterValue", "ports is a list of 1 to %d ports", PORTS_MANY_MAX);
    many_t m = {.n = n, .q = xcalloc(n, sizeof *m.q), .hash = xcalloc(n, sizeof *m.hash),
                .id = xcalloc(n, sizeof *m.id), .err = xcalloc(n, sizeof *m.err)};
    int rc = -1;
    /* each port's question checked first: one malformed fails only its instance */
    /* a copy, as the requests point into it and the zones' default subnets go into it */
    JSON_AUTO json_t *asked = json_deep_copy(ports);
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(asked, i);
        if (!json_is_object(x)) {
            verr_set(&m.err[i], 400, "InvalidParameterValue", "a port is an object");
            continue;
        }
        /* the default subnet of a zone looked up once, not once a port */
        for (size_t j = 0; j < i && !json_str(x, "subnet", NULL); j++) {
            const json_t *y = json_array_get(asked, j);
            if (!m.err[j].code[0] && json_is_true(json_object_get(y, "default_subnet")) &&
                !strcmp(json_str(y, "az", ""), json_str(x, "az", "")))
                json_object_set_new(x, "subnet", json_string(m.q[j].subnet));
        }
        int by_default = !json_str(x, "subnet", NULL);
        if (ports_request_of(ctx, x, account, &m.q[i], &m.err[i]) < 0)
            continue;
        if (by_default)
            json_object_set_new(x, "default_subnet", json_true());
        eni_request_hash(&m.q[i].s, m.hash[i]);
    }
    /* each failed port costs one more try, each token raced one: bounded */
    int done = 0;
    for (size_t tries = 0; !done && tries <= 2 * n + 1; tries++) {
        if ((done = try_once(ctx, account, &m, e)) < 0)
            goto out;
    }
    if (!done) {
        verr_set(e, 503, "ServiceUnavailable", "the ports could not be made: retry");
        goto out;
    }
    json_t *list = json_array();
    *reply = json_pack("{s:o}", "ports", list);
    for (size_t i = 0; i < n; i++) {
        json_t *port = NULL;
        if (!m.err[i].code[0] && ports_answer(ctx, &m.q[i], m.id[i], &port, &m.err[i]) == 0) {
            json_array_append_new(list, port);
            continue;
        }
        const json_t *x = json_array_get(ports, i);
        json_array_append_new(list, json_pack("{s:s?, s:{s:s, s:s, s:i}}", "instance_id",
                                              json_str(x, "instance_id", NULL), "error", "code", m.err[i].code,
                                              "message", m.err[i].message, "status", m.err[i].http_status));
    }
    rc = 0;
out:
    free(m.q);
    free(m.hash);
    free(m.id);
    free(m.err);
    return rc;
}
