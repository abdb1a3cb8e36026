/* ports_many.c - a reservation's ports in one question (docs/compute.md, "One
 * network.port_create for a reservation's ports"):
 *   network.port_create_many {account, ports: [port_create's body, each with its
 *                        instance_id]} -> {ports: [the port as port_create answers it, or
 *                        {instance_id, error: {code, message, status}}]}, in the order asked
 * A MaxCount N launch asked N port_creates, each a transaction that queued on the
 * subnet's row lock behind the others (docs/performance.md, rate10); here one
 * transaction makes them: the tokens looked up in one statement (= ANY), every subnet
 * locked once and in id order (two batches, or a batch and a port_create, never
 * deadlock), the addresses picked in one statement a subnet, one INSERT of the rows,
 * one of their groups, one touch of the VPCs' hosts, each one's public address, one
 * COMMIT and one read of the answers. A port asked with an address (or in a subnet not
 * the account's) is made by port_create's own code (enis.c, eni_insert) in the same
 * transaction. Each port keeps its own token, instance:<instance_id>, so the batch is
 * idempotent per instance: a retried batch, or one instance's own port_create after it,
 * answers the same port. A port that cannot be made (an address asked that is taken, a
 * group gone, the subnet full) fails only its own instance: the transaction is made
 * again without it (at most once a port), and the answer says which and why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "ids.h"
#include "ipam.h"
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

/* Every subnet the ports are made in, locked in one statement in id order; *subnets:
 * those of the account, {id: [vpc, cidr, map_public]} (another's or an unknown one is
 * left to its port's own eni_insert, which says so). */
static int subnets_lock(db_t *db, const char *account, const many_t *m, json_t **subnets, verr_t *e)
{
    JSON_AUTO json_t *ids = json_array();
    *subnets = json_object();
    for (size_t i = 0; i < m->n; i++)
        if (!m->id[i][0] && !m->err[i].code[0])
            json_array_append_new(ids, json_string(m->q[i].subnet));
    if (!json_array_size(ids))
        return 0;
    AUTOFREE char *doc = json_dumps(ids, JSON_COMPACT);
    const char *p[] = {doc, account};
    PG_AUTO PGresult *r = db_prepared(db, e, "many_subnets", "SELECT id, vpc_id, cidr::text, map_public FROM subnets "
                                      "WHERE id IN (SELECT json_array_elements_text($1::json)) AND account_id = $2 "
                                      "ORDER BY id FOR UPDATE", 2, p);
    if (!r)
        return -1;
    for (int k = 0; k < PQntuples(r); k++)
        json_object_set_new(*subnets, PQgetvalue(r, k, 0), json_pack("[s, s, b]", PQgetvalue(r, k, 1),
                            PQgetvalue(r, k, 2), PQgetvalue(r, k, 3)[0] == 't'));
    return 0;
}

/* A port made with the others in one statement: no address asked (an asked one is
 * checked as port_create checks it), no tags, its subnet the account's. */
static int in_set(const many_t *m, size_t i, const json_t *subnets)
{
    const eni_spec_t *s = &m->q[i].s;
    return !m->id[i][0] && !m->err[i].code[0] && !s->private_ip && !s->tags && json_array_size(s->groups) <= 5 &&
           json_object_get(subnets, m->q[i].subnet);
}

/* The set's rows, as ENI_INSERT (enis.c) writes one, in one statement */
#define MANY_INSERT                                                                                                   \
    "INSERT INTO enis (id, account_id, vpc_id, subnet_id, ip, mac, description, instance_id, host, client_token, "   \
    "device_kind, request_hash, device_index, attachment_id, plugged, delete_on_termination) SELECT x.id, $1::text, x.vpc, " \
    "x.subnet, x.ip::inet, x.mac::macaddr, x.descr, x.instance, x.host, x.token, x.kind, x.hash, CASE WHEN "          \
    "x.instance IS NULL THEN NULL ELSE 0 END, CASE WHEN x.instance IS NULL THEN NULL ELSE 'eni-attach-' || "         \
    "substr(x.id, 5) END, x.plug, x.instance IS NOT NULL FROM json_to_recordset($2::json) AS x(id text, vpc text, "  \
    "subnet text, ip text, mac text, descr text, instance text, host text, token text, kind text, hash text, plug "   \
    "boolean)"

/* and their groups (each the account's and in the VPC; none named: the VPC's default) */
#define MANY_GROUPS                                                                                                   \
    "INSERT INTO eni_groups (eni_id, group_id) SELECT x.id, sg.id FROM json_to_recordset($2::json) AS x(id text, "   \
    "vpc text, groups json) JOIN security_groups sg ON sg.vpc_id = x.vpc AND sg.account_id = $1::text AND CASE WHEN "      \
    "x.groups IS NULL THEN sg.name = 'default' ELSE sg.id IN (SELECT json_array_elements_text(x.groups)) END "       \
    "RETURNING eni_id, group_id"

/* the VPCs of the ports plugged and their hosts (with the ones they are plugged on) a
 * new generation each, once */
#define MANY_TOUCH                                                                                                    \
    "WITH " HOSTS_TOUCH_VPC_CTES("ANY (SELECT json_array_elements_text($1::json))",                                   \
                                 "ANY (SELECT json_array_elements_text($2::json))") " SELECT 1"

/* The ports of the set made together: an address pick a subnet, one INSERT of the rows,
 * one of their groups, one touch of the hosts, then each one's public address (the
 * pool's lock taken once: a transaction lock). 1: made; 0: one could not be (its error
 * in m->err: the caller makes the transaction again without it); -1: the database. */
static int make_set(bus_ctx_t *ctx, const char *account, many_t *m, const json_t *subnets, int *made, verr_t *e)
{
    db_t *db = service_db(ctx);
    service_t *svc = service_of(ctx);
    JSON_AUTO json_t *rows = json_array(), *ids = json_array(), *vpcs = json_array(), *hosts = json_array();
    const char *sid;
    json_t *sub;
    json_object_foreach((json_t *)subnets, sid, sub) {
        size_t want = 0, k = 0;
        for (size_t i = 0; i < m->n; i++)
            want += in_set(m, i, subnets) && !strcmp(m->q[i].subnet, sid);
        if (!want)
            continue;
        JSON_AUTO json_t *ips = ipam_private_many(db, sid, json_string_value(json_array_get(sub, 1)), want, e);
        if (!ips)
            return -1;
        for (size_t i = 0; i < m->n; i++) {
            if (!in_set(m, i, subnets) || strcmp(m->q[i].subnet, sid))
                continue;
            const eni_spec_t *s = &m->q[i].s;
            if (k >= json_array_size(ips)) {
                verr_set(&m->err[i], 400, "InsufficientFreeAddressesInSubnet", "There are not enough free addresses "
                         "in subnet '%s' to satisfy the requested number of instances.", sid);
                continue;
            }
            if (s->host && hosts_ensure(db, svc, s->host, e) < 0)
                return -1;
            char mac[18];
            ids_new("eni", m->id[i]);
            cidr_mac_for(m->id[i], mac);
            made[i] = 1;
            int plug = s->plug && s->host;
            json_t *row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s, s:s, s:b}", "id", m->id[i],
                                    "vpc", json_string_value(json_array_get(sub, 0)), "subnet", sid, "ip",
                                    json_string_value(json_array_get(ips, k++)), "mac", mac, "descr",
                                    s->description ? s->description : "", "instance", s->instance_id, "host",
                                    s->host, "token", s->client_token, "kind", s->device_kind ? s->device_kind : "veth",
                                    "hash", m->hash[i], "plug", plug);
            if (json_array_size(s->groups))
                json_object_set(row, "groups", (json_t *)s->groups);
            json_array_append_new(rows, row);
            json_array_append_new(ids, json_string(m->id[i]));
            if (plug) {
                json_array_append_new(vpcs, json_string(json_string_value(json_array_get(sub, 0))));
                json_array_append_new(hosts, json_string(s->host));
            }
        }
    }
    if (!json_array_size(rows))
        return 1;
    /* their facts go back in the answer: no push for them (network 019), and no bump of
     * their version by their groups' and addresses' triggers (017) */
    AUTOFREE char *rows_doc = json_dumps(rows, JSON_COMPACT);
    AUTOFREE char *list = NULL;
    {
        size_t len = 1;
        for (size_t i = 0; i < json_array_size(ids); i++)
            len += strlen(json_string_value(json_array_get(ids, i))) + 1;
        list = xcalloc(len, 1);
        for (size_t i = 0; i < json_array_size(ids); i++) {
            if (i)
                strcat(list, ",");
            strcat(list, json_string_value(json_array_get(ids, i)));
        }
    }
    const char *lp[] = {list};
    const char *ip[] = {account, rows_doc};
    PG_AUTO PGresult *set = db_prepared(db, e, "many_replied", "SELECT set_config('virga.facts_replied', concat_ws("
                                        "',', nullif(current_setting('virga.facts_replied', true), ''), $1::text), true)",
                                        1, lp);
    PG_AUTO PGresult *ins = set ? db_prepared(db, e, "many_insert", MANY_INSERT, 2, ip) : NULL;
    PG_AUTO PGresult *grp = ins ? db_prepared(db, e, "many_groups", MANY_GROUPS, 2, ip) : NULL;
    if (!grp)
        return -1;
    /* each port's groups against what it asked, as port_create checks its own */
    JSON_AUTO json_t *added = json_object();
    for (int r = 0; r < PQntuples(grp); r++) {
        json_t *l = json_object_get(added, PQgetvalue(grp, r, 0));
        if (!l)
            json_object_set_new(added, PQgetvalue(grp, r, 0), l = json_array());
        json_array_append_new(l, json_string(PQgetvalue(grp, r, 1)));
    }
    for (size_t i = 0; i < m->n; i++) {
        if (!made[i])
            continue;
        json_t *got = json_object_get(added, m->id[i]);
        AUTOFREE char *doc = got ? json_dumps(got, JSON_COMPACT) : xstrdup("[]");
        verr_t ge = {0};
        if (eni_groups_added(doc, json_string_value(json_array_get(json_object_get(subnets, m->q[i].subnet), 0)),
                             m->q[i].s.groups, &ge) < 0) {
            m->err[i] = ge;
            return 0;
        }
    }
    if (json_array_size(vpcs)) {
        AUTOFREE char *vd = json_dumps(vpcs, JSON_COMPACT);
        AUTOFREE char *hd = json_dumps(hosts, JSON_COMPACT);
        const char *tp[] = {vd, hd};
        PG_AUTO PGresult *t = db_prepared(db, e, "many_touch", MANY_TOUCH, 2, tp);
        if (!t)
            return -1;
    }
    /* a public address at launch: asked for, or the subnet's MapPublicIpOnLaunch */
    for (size_t i = 0; i < m->n; i++) {
        const eni_spec_t *s = &m->q[i].s;
        int pub = s->public_ip < 0 ? json_is_true(json_array_get(json_object_get(subnets, m->q[i].subnet), 2))
                                   : s->public_ip;
        verr_t pe = {0};
        if (made[i] && pub && eni_public_assign(db, svc->cfg, account, m->id[i], &pe) < 0) {
            if (pe.http_status >= 500 || !pe.http_status) {
                *e = pe;
                return -1;
            }
            m->err[i] = pe;
            return 0;
        }
    }
    return 1;
}

/* One try of the transaction. 1: committed; 0: rolled back, a port could not be made
 * (its error now in m->err) or lost a race for its token (23505: the next try finds
 * it); -1: the database failed. */
static int try_once(bus_ctx_t *ctx, const char *account, many_t *m, verr_t *e)
{
    db_t *db = service_db(ctx);
    JSON_AUTO json_t *subnets = NULL;
    AUTOFREE int *made = xcalloc(m->n, sizeof *made);
    for (size_t i = 0; i < m->n; i++)
        m->id[i][0] = 0;
    int set = 0;
    if (db_begin(db, e) < 0 || tokens_found(db, account, m, e) < 0 || subnets_lock(db, account, m, &subnets, e) < 0 ||
        (set = make_set(ctx, account, m, subnets, made, e)) < 0)
        goto fail;
    if (set == 0) {
        db_rollback(db);
        return 0;
    }
    /* the others (an address asked, another's subnet...) each as port_create makes it */
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
    {
        int raced = !strcmp(db_last_sqlstate(db), "23505");   /* a token's port made meanwhile: again */
        db_rollback(db);
        return raced ? 0 : -1;
    }
}

/* The answer: every port made or found read in one statement, in the order asked, or
 * its instance's error. */
static int answer(bus_ctx_t *ctx, many_t *m, const json_t *ports, json_t **reply, verr_t *e)
{
    JSON_AUTO json_t *made = json_array();
    for (size_t i = 0; i < m->n; i++)
        if (!m->err[i].code[0])
            json_array_append_new(made, json_string(m->id[i]));
    JSON_AUTO json_t *read = ports_read(service_db(ctx), made, e);
    if (!read)
        return -1;
    json_t *list = json_array();
    *reply = json_pack("{s:o}", "ports", list);
    for (size_t i = 0; i < m->n; i++) {
        json_t *port = NULL, *one = m->err[i].code[0] ? NULL : json_object_get(read, m->id[i]);
        if (!m->err[i].code[0] && ports_answer(ctx, &m->q[i], m->id[i], json_incref(one), &port, &m->err[i]) == 0) {
            json_array_append_new(list, port);
            continue;
        }
        json_array_append_new(list, json_pack("{s:s?, s:{s:s, s:s, s:i}}", "instance_id",
                                              json_str(json_array_get(ports, i), "instance_id", NULL), "error", "code",
                                              m->err[i].code, "message", m->err[i].message, "status",
                                              m->err[i].http_status));
    }
    return 0;
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
    rc = answer(ctx, &m, ports, reply, e);
out:
    free(m.q);
    free(m.hash);
    free(m.id);
    free(m.err);
    return rc;
}
