/* ports.c - the port API compute uses for its instances' interfaces, over the bus:
 *   network.port_create {account, subnet?, groups?, private_ip?, host?, instance_id,
 *                        client_token?, device_kind?, associate_public_ip?, plug?}  -> the port
 *                        (eni id, mac, ip, prefix, gateway, device_kind: "veth" (default)
 *                        or "tap"); with a public address from the pool when
 *                        associate_public_ip is true, or absent and the subnet maps
 *                        public addresses on launch (public_addresses.c); plug true
 *                        (with host): plugged there in the same transaction, what a
 *                        port_plug after it would do (a launch's one question, not two)
 *   network.port_plug   {eni, host}      -> the port, plugged on host
 *   network.port_unplug {eni, host}      -> the port, unplugged
 *   network.port_adopt  {account, eni, instance_id, host?, device_kind?, plug?} -> the
 *                        port: an existing interface of the account as the instance's
 *                        primary (RunInstances' NetworkInterfaces DeviceIndex 0 with a
 *                        NetworkInterfaceId), instead of port_create
 *   network.port_delete {eni, instance_id?} -> {"deleted": true|false, "detached"?: true}:
 *                        a primary whose DeleteOnTermination is false (an adopted one)
 *                        is detached, available again, instead
 * Every one is idempotent: a retried create returns the port made first (its client
 * token, by default "instance:<instance_id>", is unique per account), a retried adopt
 * the same port, a plug or unplug already done changes nothing, a delete of a gone port
 * answers deleted false, and so does a delete of an interface no longer the instance's. Only
 * compute's principal may call them (the route's sender mask, checked by the bus from the
 * message's signature). Each change bumps the
 * generation of the hosts it touches, in its transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caller.h"
#include "cidr.h"
#include "enis.h"
#include "ids.h"
#include "log.h"
#include "jsonutil.h"
#include "network.h"
#include "ports.h"

int ports_trusted(bus_ctx_t *ctx, verr_t *e)
{
    if (ctx->msg->from && ctx->msg->from->kind == BUS_P_COMPUTE)
        return 0;
    return verr_set(e, 403, "UnauthorizedOperation", "%s is for the compute service only", ctx->msg->type);
}

/* What compute needs of a port (and the datapath of its placement), its security groups
 * [{groupId, groupName}] (compute shows them as the instance's groupSet) and its facts
 * as a push would carry them (instance_enis.c: compute stores them with the port, and a
 * port_create sends no push), in one statement: PORT_READ with the condition on n. */
#define PORT_READ                                                                                                     \
    "SELECT n.id, n.account_id, n.vpc_id, n.subnet_id, n.mac::text, host(n.ip), s.cidr::text, n.host, n.plugged, "   \
    "n.instance_id, n.device_kind, (SELECT coalesce(json_agg(json_build_object('groupId', g.id, 'groupName', "       \
    "g.name) ORDER BY g.id), '[]')::text FROM eni_groups eg JOIN security_groups g ON g.id = eg.group_id WHERE "     \
    "eg.eni_id = n.id), eni_facts(n)::text FROM enis n JOIN subnets s ON s.id = n.subnet_id WHERE "

/* The port of row i of a PORT_READ. */
static json_t *port_of_row(const PGresult *r, int i)
{
    cidr_t c;
    char gw[CIDR_STR_MAX];
    cidr_parse(PQgetvalue(r, i, 6), &c);
    cidr_ip_format(cidr_gateway(&c), gw);
    json_t *port = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s?, s:b, s:s?}", "eni_id", PQgetvalue(r, i, 0),
                             "account", PQgetvalue(r, i, 1), "vpc_id", PQgetvalue(r, i, 2), "subnet_id",
                             PQgetvalue(r, i, 3), "mac", PQgetvalue(r, i, 4), "ip", PQgetvalue(r, i, 5), "prefix_len",
                             c.len, "gateway", gw, "host", PQgetisnull(r, i, 7) ? NULL : PQgetvalue(r, i, 7),
                             "plugged", PQgetvalue(r, i, 8)[0] == 't', "instance_id",
                             PQgetisnull(r, i, 9) ? NULL : PQgetvalue(r, i, 9));
    json_object_set_new(port, "device_kind", json_string(PQgetvalue(r, i, 10)));
    json_object_set_new(port, "groups", json_loads(PQgetvalue(r, i, 11), 0, NULL));
    json_t *facts = json_loads(PQgetvalue(r, i, 12), 0, NULL);
    if (facts)
        json_object_set_new(port, "facts", facts);
    return port;
}

static int port_reply(db_t *db, const char *eni, json_t **reply, verr_t *e)
{
    const char *p[] = {eni};
    PG_AUTO PGresult *r = db_prepared(db, e, "port_get", PORT_READ "n.id = $1", 1, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 404, "InvalidNetworkInterfaceID.NotFound", "The port '%.64s' does not exist", eni);
    *reply = port_of_row(r, 0);
    return 0;
}

json_t *ports_read(db_t *db, const json_t *ids, verr_t *e)
{
    AUTOFREE char *doc = json_dumps(ids, JSON_COMPACT);
    const char *p[] = {doc};
    PG_AUTO PGresult *r = db_prepared(db, e, "ports_get", PORT_READ "n.id IN (SELECT json_array_elements_text($1::json))",
                                      1, p);
    if (!r)
        return NULL;
    json_t *out = json_object();
    for (int i = 0; i < PQntuples(r); i++)
        json_object_set_new(out, PQgetvalue(r, i, 0), port_of_row(r, i));
    return out;
}

/* The default subnet of the account's default VPC, in az (or the first zone). */
static int default_subnet(bus_ctx_t *ctx, const char *account, const char *az, char *out, verr_t *e)
{
    /* the default VPC's subnet in one statement; only an account without a default VPC
     * yet has it made first (default_vpc) */
    const char *q[] = {account, az};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "port_def_subnet_acct",
        "SELECT s.id FROM vpcs v JOIN subnets s ON s.vpc_id = v.id WHERE v.account_id = $1 AND v.is_default AND "
        "s.is_default AND ($2::text IS NULL OR s.az = $2) ORDER BY s.cidr LIMIT 1", 2, q);
    if (!r)
        return -1;
    if (!PQntuples(r)) {
        char vpc[IDS_MAX];
        if (default_vpc(ctx, account, vpc, e) < 0)
            return -1;
        const char *p[] = {vpc, az};
        PQclear(r);
        if (!(r = db_prepared(service_db(ctx), e, "port_def_subnet",
                              "SELECT id FROM subnets WHERE vpc_id = $1 AND is_default AND ($2::text IS NULL OR "
                              "az = $2) ORDER BY cidr LIMIT 1", 2, p)))
            return -1;
    }
    if (!PQntuples(r))
        return verr_set(e, 400, "InvalidSubnetID.NotFound", "No default subnet for zone %.64s", az ? az : "(any)");
    snprintf(out, IDS_MAX, "%s", PQgetvalue(r, 0, 0));
    return 0;
}

static int plug(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e, int on);

int ports_request_of(bus_ctx_t *ctx, const json_t *body, const char *account, port_request_t *q, verr_t *e)
{
    const char *inst = json_str(body, "instance_id", NULL);
    if (!account || strlen(account) != 12 || !inst || !*inst || strlen(inst) > 64)
        return verr_set(e, 400, "InvalidParameterValue", "account (12 digits) and instance_id are required");
    const char *host = json_str(body, "host", NULL);
    if (host && hosts_valid_name(host, e) < 0)
        return -1;
    const char *kind = json_str(body, "device_kind", "veth");
    if (strcmp(kind, "veth") && strcmp(kind, "tap"))
        return verr_set(e, 400, "InvalidParameterValue", "device_kind is veth or tap");
    const json_t *pub = json_object_get(body, "associate_public_ip"), *plug_it = json_object_get(body, "plug");
    if (pub && !json_is_boolean(pub))
        return verr_set(e, 400, "InvalidParameterValue", "associate_public_ip is true or false");
    if (plug_it && (!json_is_boolean(plug_it) || (json_is_true(plug_it) && !host)))
        return verr_set(e, 400, "InvalidParameterValue", "plug is true or false, and true needs host");
    const char *sn = json_str(body, "subnet", NULL), *az = json_str(body, "az", NULL);
    if (sn) {
        snprintf(q->subnet, sizeof q->subnet, "%.47s", sn);
        q->kept_default = 0;
    } else if (!(q->kept_default = q->kept_default && default_subnets_get(account, az, q->subnet))) {
        if (default_subnet(ctx, account, az, q->subnet, e) < 0)
            return -1;
        default_subnets_put(account, az, q->subnet);
    }
    if (json_str(body, "client_token", NULL))
        snprintf(q->token, sizeof q->token, "%s", json_str(body, "client_token", ""));
    else
        snprintf(q->token, sizeof q->token, "instance:%s", inst);
    q->s = (eni_spec_t){.account = account, .subnet_id = q->subnet, .private_ip = json_str(body, "private_ip", NULL),
                        .groups = json_object_get(body, "groups"), .description = "instance interface",
                        .instance_id = inst, .host = host, .client_token = q->token, .device_kind = kind,
                        .public_ip = pub ? json_is_true(pub) : -1, .plug = json_is_true(plug_it),
                        .facts_in_reply = 1};
    return 0;
}

int ports_answer(bus_ctx_t *ctx, const port_request_t *q, const char *id, json_t *read, json_t **reply, verr_t *e)
{
    if (read)
        *reply = read;
    else if (port_reply(service_db(ctx), id, reply, e) < 0)
        return -1;
    log_debug("port_create %s: %s made", q->s.instance_id, id);   /* a launch's timeline (docs/performance.md) */
    /* a port made before without the plug (a retry after an older compute's create, or
     * one unplugged since): plugged now, as port_plug would */
    const char *host = q->s.host;
    if (q->s.plug && (!json_is_true(json_object_get(*reply, "plugged")) || strcmp(json_str(*reply, "host", ""), host))) {
        json_decref(*reply);
        *reply = NULL;
        JSON_AUTO json_t *pb = json_pack("{s:s, s:s}", "eni", id, "host", host);
        return plug(ctx, pb, reply, e, 1);
    }
    return 0;
}

int net_port_create(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (ports_trusted(ctx, e) < 0)
        return -1;
    port_request_t q = {.kept_default = 1};
    char id[IDS_MAX];
    const char *account = json_str(body, "account", NULL);
    log_debug("port_create %s: in", json_str(body, "instance_id", ""));   /* a launch's timeline (docs/performance.md) */
    if (ports_request_of(ctx, body, account, &q, e) < 0)
        return -1;
    if (eni_create(ctx, &q.s, id, e) < 0) {
        /* the default subnet kept is gone (deleted since): looked up again, once */
        if (!q.kept_default || strcmp(e->code, NET_SUBNET.not_found))
            return -1;
        default_subnets_forget(account, json_str(body, "az", NULL));
        *e = (verr_t){0};
        q.kept_default = 0;
        if (ports_request_of(ctx, body, account, &q, e) < 0 || eni_create(ctx, &q.s, id, e) < 0)
            return -1;
    }
    return ports_answer(ctx, &q, id, NULL, reply, e);
}

/* network.port_adopt: the interface attached at device index 0 in one transaction, with
 * its own subnet, address, MAC, groups, tags and SourceDestCheck; DeleteOnTermination
 * false (EC2 takes true only for an interface the launch makes: compute refuses it); no
 * public address from the pool (EC2 gives an existing interface none; an elastic IP on
 * it stays); plugged on host with plug, as port_create's. The same instance's retry
 * answers the same port (plugged now if it was not); an interface attached to anything
 * else is InvalidNetworkInterface.InUse, so of two launches adopting one interface the
 * first to lock its row wins and the other ends as a failed launch. */
int net_port_adopt(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (ports_trusted(ctx, e) < 0)
        return -1;
    const char *account = json_str(body, "account", NULL), *inst = json_str(body, "instance_id", NULL);
    const char *eni = json_str(body, "eni", NULL), *host = json_str(body, "host", NULL);
    const char *kind = json_str(body, "device_kind", "veth");
    const json_t *plug_it = json_object_get(body, "plug");
    if (!account || strlen(account) != 12 || !inst || !*inst || strlen(inst) > 64 || !ids_valid("eni", eni))
        return verr_set(e, 400, "InvalidParameterValue", "account (12 digits), eni and instance_id are required");
    if (host && hosts_valid_name(host, e) < 0)
        return -1;
    if (strcmp(kind, "veth") && strcmp(kind, "tap"))
        return verr_set(e, 400, "InvalidParameterValue", "device_kind is veth or tap");
    if (plug_it && (!json_is_boolean(plug_it) || (json_is_true(plug_it) && !host)))
        return verr_set(e, 400, "InvalidParameterValue", "plug is true or false, and true needs host");
    int plugged = json_is_true(plug_it);
    db_t *db = service_db(ctx);
    char att[IDS_MAX];
    ids_new("eni-attach", att);
    /* locked and read in one statement; the answer carries the facts: no push for it */
    const char *p[] = {eni, account};
    PG_AUTO PGresult *r = NULL;
    PG_AUTO PGresult *u = NULL;
    if (db_begin(db, e) < 0 || (host && hosts_ensure(db, service_of(ctx), host, e) < 0) ||
        !(r = db_prepared(db, e, "adopt_lock", "SELECT instance_id, device_index, vpc_id, coalesce(host, ''), plugged, "
                          "set_config('virga.facts_replied', $1, true) FROM enis WHERE id = $1 AND account_id = $2 "
                          "FOR UPDATE", 2, p)))
        goto fail;
    if (!PQntuples(r)) {
        verr_set(e, 400, "InvalidNetworkInterfaceID.NotFound", "The network interface '%.64s' does not exist", eni);
        goto fail;
    }
    int ours = !PQgetisnull(r, 0, 0) && !strcmp(PQgetvalue(r, 0, 0), inst) && !strcmp(PQgetvalue(r, 0, 1), "0");
    if (!PQgetisnull(r, 0, 0) && !ours) {
        verr_set(e, 400, "InvalidNetworkInterface.InUse", "Interface %s is currently in use by %s.", eni,
                 PQgetvalue(r, 0, 0));
        goto fail;
    }
    /* a retry with the port as asked already: nothing changes, the generations stay */
    if (!(ours && (PQgetvalue(r, 0, 4)[0] == 't') == plugged && !strcmp(PQgetvalue(r, 0, 3), host ? host : ""))) {
        const char *q[] = {eni, inst, att, host, plugged ? "t" : "f", kind};
        if (!(u = db_prepared(db, e, "adopt_set", "UPDATE enis SET attachment_id = CASE WHEN instance_id IS NULL THEN "
                              "$3 ELSE attachment_id END, instance_id = $2, device_index = 0, parent_eni = NULL, "
                              "host = $4, plugged = $5::boolean, device_kind = $6, delete_on_termination = false "
                              "WHERE id = $1", 6, q))) {
            if (!strcmp(db_last_sqlstate(db), "23505")) {   /* enis_one_per_index: a primary already */
                *e = (verr_t){0};
                verr_set(e, 400, "InvalidParameterValue", "Instance '%.64s' already has a primary interface", inst);
            }
            goto fail;
        }
        /* the VPC's hosts (now with the one it is plugged on) learn where it is; a host it
         * was plugged on before (a retry placed elsewhere) loses it */
        const char *was = PQgetvalue(r, 0, 3);
        if (hosts_touch_vpc(db, PQgetvalue(r, 0, 2), plugged ? host : NULL, e) < 0 ||
            (*was && strcmp(was, host ? host : "") && hosts_touch_vpc(db, "", was, e) < 0))
            goto fail;
    }
    if (db_commit(db, e) < 0)
        goto fail;
    return port_reply(db, eni, reply, e);
fail:
    db_rollback(db);
    return -1;
}

/* port_delete of a primary that is to outlive its instance (DeleteOnTermination false:
 * an adopted interface): detached, available again with its address, groups and tags;
 * the interfaces attached to it go as eni_detach_children says, an auto-assigned public
 * address is released (an elastic IP stays). With instance: only while the interface is
 * still that instance's, so a retried cleanup never takes it from a later launch that
 * adopted it (nor deletes it): then it is answered as it is. Inside port_delete's
 * transaction, its row locked (lk: PORT_DEL_LOCK's row); commits. */
static int port_keep(db_t *db, const char *eni, const PGresult *lk, int keep, json_t **reply, verr_t *e)
{
    const char *p[] = {eni};
    PG_AUTO PGresult *u = NULL;
    PG_AUTO PGresult *f = NULL;
    if (keep && (eni_detach_children(db, eni, e) < 0 || eni_public_release(db, eni, e) < 0 ||
                 !(u = db_prepared(db, e, "keep_detach", "UPDATE enis SET " ENI_DETACHED " WHERE id = $1", 1, p)) ||
                 hosts_touch_vpc(db, PQgetvalue(lk, 0, 3), PQgetisnull(lk, 0, 4) ? NULL : PQgetvalue(lk, 0, 4), e) < 0))
        return -1;
    if (!(f = db_prepared(db, e, "keep_facts", "SELECT eni_facts(n)::text FROM enis n WHERE id = $1", 1, p)) ||
        db_commit(db, e) < 0)
        return -1;
    *reply = json_pack("{s:s, s:b, s:b, s:o*}", "eni_id", eni, "deleted", 0, "detached", keep, "facts",
                       PQntuples(f) ? json_loads(PQgetvalue(f, 0, 0), 0, NULL) : NULL);
    return 0;
}

/* Lock the port's row; its VPC, host and plugged state. 0 if it does not exist. */
static int lock_port(db_t *db, const char *eni, char *vpc, char *host, int *plugged, verr_t *e)
{
    const char *p[] = {eni};
    PG_AUTO PGresult *r = db_prepared(db, e, "port_lock", "SELECT vpc_id, host, plugged FROM enis WHERE id = $1 "
                                      "FOR UPDATE", 1, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return 0;
    snprintf(vpc, IDS_MAX, "%s", PQgetvalue(r, 0, 0));
    snprintf(host, 64, "%s", PQgetisnull(r, 0, 1) ? "" : PQgetvalue(r, 0, 1));
    *plugged = PQgetvalue(r, 0, 2)[0] == 't';
    return 1;
}

static int plug(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e, int on)
{
    if (ports_trusted(ctx, e) < 0)
        return -1;
    const char *eni = json_str(body, "eni", NULL), *host = json_str(body, "host", NULL);
    if (!eni)
        return verr_set(e, 400, "InvalidParameterValue", "eni is required");
    if (hosts_valid_name(host, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    char vpc[IDS_MAX], cur[64];
    int plugged = 0, found;
    if (on && (db_begin(db, e) < 0 || hosts_ensure(db, service_of(ctx), host, e) < 0 || db_commit(db, e) < 0)) {
        db_rollback(db);
        return -1;
    }
    if (db_begin(db, e) < 0 || (found = lock_port(db, eni, vpc, cur, &plugged, e)) < 0)
        goto fail;
    if (!found) {
        verr_set(e, 404, "InvalidNetworkInterfaceID.NotFound", "The port '%.64s' does not exist", eni);
        goto fail;
    }
    /* already so: nothing changes, the generation stays */
    int same = on ? plugged && !strcmp(cur, host) : !plugged || strcmp(cur, host);
    if (!same) {
        const char *p[] = {eni, host, on ? "t" : "f"};
        PG_AUTO PGresult *u = NULL;
        if (hosts_touch_vpc(db, vpc, *cur ? cur : NULL, e) < 0 ||
            !(u = db_prepared(db, e, "port_plug", "UPDATE enis SET host = $2, plugged = $3 WHERE id = $1 OR "
                                "parent_eni = $1", 3, p)) ||
            hosts_touch_vpc(db, "", host, e) < 0)
            goto fail;
    }
    if (db_commit(db, e) < 0)
        goto fail;
    return port_reply(db, eni, reply, e);
fail:
    db_rollback(db);
    return -1;
}

int net_port_plug(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return plug(ctx, body, reply, e, 1);
}

int net_port_unplug(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    return plug(ctx, body, reply, e, 0);
}

/* port_delete's row: the port locked and read in one statement, with what else its
 * delete has to change (interfaces attached to it; an elastic IP), so the statements for
 * what is not there are not run: a launch's port has neither. An association takes the
 * port's row lock first, so what is read of it holds until the commit; an interface
 * attached meanwhile makes the delete fail on its parent_eni key, and the cleanup's
 * retry reads it. The transaction is marked for the push of this port not to be sent
 * (network 015): the answer carries its facts. */
#define PORT_DEL_LOCK                                                                                                 \
    "SELECT n.instance_id, n.device_index, n.delete_on_termination, n.vpc_id, n.host, "                              \
    "set_config('virga.facts_replied', $1, true), EXISTS (SELECT 1 FROM enis c WHERE c.parent_eni = n.id), "          \
    "EXISTS (SELECT 1 FROM addresses a WHERE a.eni_id = n.id AND NOT a.auto_assigned) FROM enis n WHERE n.id = $1 " \
    "FOR UPDATE OF n"

/* The port's delete once locked: its auto-assigned public address released, the hosts'
 * generations, the row and its tags in one statement (its groups go by their foreign
 * key; the address's, checked at the statement's end, finds it gone), which answers the
 * version of the facts that say it is gone. The address's trigger leaves the row alone
 * (it is the transaction's replied interface: network 017). */
#define PORT_DEL                                                                                                      \
    "WITH released AS (DELETE FROM addresses WHERE eni_id = $1 AND auto_assigned), "                                \
    HOSTS_TOUCH_VPC_CTES("$2", "$3") ", gone AS (DELETE FROM enis WHERE id = $1), untag AS (DELETE FROM tags WHERE "  \
    "resource_id = $1) SELECT nextval('eni_facts_seq')"

/* network.port_delete: one transaction, BEGIN, PORT_DEL_LOCK, PORT_DEL and COMMIT for a
 * launch's port (was 13 statements in two transactions: issue 11's launch rate). */
int net_port_delete(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (ports_trusted(ctx, e) < 0)
        return -1;
    const char *eni = json_str(body, "eni", NULL), *inst = json_str(body, "instance_id", NULL);
    if (!eni)
        return verr_set(e, 400, "InvalidParameterValue", "eni is required");
    db_t *db = service_db(ctx);
    const char *p[] = {eni};
    PG_AUTO PGresult *r = NULL;
    PG_AUTO PGresult *d = NULL;
    if (db_begin(db, e) < 0 || !(r = db_prepared(db, e, "port_del_lock", PORT_DEL_LOCK, 1, p)))
        goto fail;
    if (!PQntuples(r)) {
        /* deleted before, or meanwhile by a retry of this same call: gone at a new version */
        db_rollback(db);
        PG_AUTO PGresult *v = db_prepared(db, e, "port_gone_version", "SELECT nextval('eni_facts_seq')", 0, NULL);
        if (!v)
            return -1;
        *reply = json_pack("{s:s, s:b, s:{s:s, s:n, s:I}}", "eni_id", eni, "deleted", 0, "facts", "eni", eni,
                           "instance", "version", (json_int_t)atoll(PQgetvalue(v, 0, 0)));
        return 0;
    }
    int theirs = inst && (PQgetisnull(r, 0, 0) || strcmp(PQgetvalue(r, 0, 0), inst));
    int keep = !theirs && !strcmp(PQgetvalue(r, 0, 1), "0") && PQgetvalue(r, 0, 2)[0] == 'f';
    if (theirs || keep)
        return port_keep(db, eni, r, keep, reply, e) < 0 ? (db_rollback(db), -1) : 0;
    const char *q[] = {eni, PQgetvalue(r, 0, 3), PQgetisnull(r, 0, 4) ? NULL : PQgetvalue(r, 0, 4)};
    /* an elastic IP on the interface stays the account's, unassociated (an auto-assigned
     * address goes with it: PORT_DEL) */
    if ((PQgetvalue(r, 0, 6)[0] == 't' && eni_detach_children(db, eni, e) < 0) ||
        (PQgetvalue(r, 0, 7)[0] == 't' && eni_eip_unlink(db, eni, e) < 0) ||
        !(d = db_prepared(db, e, "port_del", PORT_DEL, 3, q)) || db_commit(db, e) < 0)
        goto fail;
    *reply = json_pack("{s:s, s:b, s:{s:s, s:n, s:I}}", "eni_id", eni, "deleted", 1, "facts", "eni", eni,
                       "instance", "version", (json_int_t)atoll(PQgetvalue(d, 0, 0)));
    return 0;
fail:
    db_rollback(db);
    return -1;
}

/* network.launch_check {account, az?, subnet?, groups? [ids], group_names? [names],
 * private_ip?} -> {subnet_id, vpc_id, az, group_ids, groups [{groupId, groupName}],
 * default_subnets? {az: id}}: what
 * port_create would use for a launch's interface, without making it (with eni instead:
 * that existing interface's, if a launch may attach it: attachments.c), so RunInstances
 * can answer the EC2 error itself (compute keeps the answer: services/compute/
 * launch_facts.c). Names are resolved in the subnet's VPC, a default one only (EC2's
 * rule); no group: the VPC's default group. Whether an address is free now is asked
 * uncached (network.addresses_free, enis.c), and port_create has the last word. */
int net_launch_check(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (ports_trusted(ctx, e) < 0)
        return -1;
    db_t *db = service_db(ctx);
    const char *account = json_str(body, "account", NULL), *az = json_str(body, "az", NULL);
    if (!account || strlen(account) != 12)
        return verr_set(e, 400, "InvalidParameterValue", "account (12 digits) is required");
    if (json_str(body, "eni", NULL))   /* an existing interface the launch names (attachments.c) */
        return eni_launch_check(db, account, json_str(body, "eni", NULL), az, reply, e);
    char subnet[IDS_MAX];
    const char *sn = json_str(body, "subnet", NULL);
    if (sn)
        snprintf(subnet, sizeof subnet, "%.47s", sn);
    else if (default_subnet(ctx, account, az, subnet, e) < 0)
        return -1;
    if (net_owned(db, &NET_SUBNET, subnet, account, 0, e) < 0)
        return -1;
    const char *sp[] = {subnet};
    PG_AUTO PGresult *s = db_prepared(db, e, "lc_subnet",
        "SELECT s.vpc_id, s.cidr, s.az, v.is_default FROM subnets s JOIN vpcs v ON v.id = s.vpc_id WHERE s.id = $1",
        1, sp);
    if (!s)
        return -1;
    if (!PQntuples(s))
        return verr_set(e, 400, "InvalidSubnetID.NotFound", "The subnet ID '%.64s' does not exist", subnet);
    const char *vpc = PQgetvalue(s, 0, 0), *saz = PQgetvalue(s, 0, 2);
    if (az && *az && strcmp(az, saz))
        return verr_set(e, 400, "InvalidParameterValue", "The subnet '%s' is in %s, not in %.64s", subnet, saz, az);
    const char *ip = json_str(body, "private_ip", NULL);
    if (ip) {
        cidr_t c;
        uint32_t a, first = 1, last = 0;
        cidr_parse(PQgetvalue(s, 0, 1), &c);
        if (cidr_ip_parse(ip, &a) < 0 || !cidr_contains_ip(&c, a))
            return verr_set(e, 400, "InvalidParameterValue", "Address %.32s does not fall within the subnet's address "
                            "range", ip);
        /* the five reserved ones too, as the port's IPAM refuses them (ipam_private): this
         * answer is RunInstances', where a refusal from the launch task came too late */
        if (!cidr_usable(&c, &first, &last) || a < first || a > last)
            return verr_set(e, 400, "InvalidParameterValue", "Address %.32s is one of the five reserved addresses "
                            "of the subnet (%s)", ip, PQgetvalue(s, 0, 1));
    }
    json_t *ids = json_array();
    JSON_AUTO json_t *out = json_pack("{s:s, s:s, s:s, s:o}", "subnet_id", subnet, "vpc_id", vpc, "az", saz,
                                      "group_ids", ids);
    const json_t *names = json_object_get(body, "group_names"), *gids = json_object_get(body, "groups");
    if (json_array_size(names) && PQgetvalue(s, 0, 3)[0] != 't')
        return verr_set(e, 400, "InvalidParameterCombination",
                        "Security group names can be used only in a default VPC; %s is not one: use group ids", vpc);
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v) {
        const char *p[] = {vpc, account, json_is_string(v) ? json_string_value(v) : ""};
        PG_AUTO PGresult *r = db_prepared(db, e, "lc_sg_name",
            "SELECT id FROM security_groups WHERE vpc_id = $1 AND account_id = $2 AND name = $3", 3, p);
        if (!r)
            return -1;
        if (!PQntuples(r))
            return verr_set(e, 400, "InvalidGroup.NotFound", "The security group '%.255s' does not exist in default "
                            "VPC '%s'", p[2], vpc);
        json_array_append_new(ids, json_string(PQgetvalue(r, 0, 0)));
    }
    json_array_foreach(gids, i, v) {
        const char *p[] = {json_is_string(v) ? json_string_value(v) : "", account};
        PG_AUTO PGresult *r = db_prepared(db, e, "lc_sg_id",
            "SELECT vpc_id FROM security_groups WHERE id = $1 AND account_id = $2", 2, p);
        if (!r)
            return -1;
        if (!PQntuples(r))
            return verr_set(e, 400, "InvalidGroup.NotFound", "The security group '%.64s' does not exist", p[0]);
        if (strcmp(PQgetvalue(r, 0, 0), vpc))
            return verr_set(e, 400, "InvalidParameter", "Security group %s and subnet %s belong to different networks.",
                            p[0], subnet);
        json_array_append_new(ids, json_string(p[0]));
    }
    if (!json_array_size(ids)) {
        const char *p[] = {vpc};
        PG_AUTO PGresult *d = db_prepared(db, e, "lc_default_sg", "SELECT id FROM security_groups WHERE vpc_id = $1 "
                                          "AND name = 'default'", 1, p);
        if (!d)
            return -1;
        if (PQntuples(d))
            json_array_append_new(ids, json_string(PQgetvalue(d, 0, 0)));
    }
    if (json_array_size(ids) > 5)
        return verr_set(e, 400, "SecurityGroupsPerInterfaceLimitExceeded", "At most 5 security groups per interface");
    /* the groups with their names, as port_create's answer lists them: RunInstances'
     * answer shows them before the port exists */
    AUTOFREE char *ids_doc = json_dumps(ids, JSON_COMPACT);
    const char *gp[] = {ids_doc};
    PG_AUTO PGresult *gs = db_prepared(db, e, "lc_groups", "SELECT coalesce(json_agg(json_build_object('groupId', "
                                       "id, 'groupName', name) ORDER BY id), '[]')::text FROM security_groups WHERE id "
                                       "IN (SELECT json_array_elements_text($1::json))", 1, gp);
    if (!gs)
        return -1;
    json_object_set_new(out, "groups", json_loads(PQgetvalue(gs, 0, 0), 0, NULL));
    /* no subnet named: the default one of each zone, the instance's once it is placed */
    if (!sn && subnets_defaults_of(db, vpc, out, e) < 0)
        return -1;
    *reply = json_incref(out);
    return 0;
}

/* network.port_set_groups {eni, account, groups: [ids]} -> the port with its groups: an
 * instance's new groupSet (ModifyInstanceAttribute). Each group the account's and in the
 * port's VPC (else nothing changes); the hosts of the VPC get a new generation, so their
 * datapaths apply the new rules. Setting the same groups again changes nothing. */
int net_port_set_groups(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (ports_trusted(ctx, e) < 0)
        return -1;
    const char *eni = json_str(body, "eni", NULL), *account = json_str(body, "account", NULL);
    const json_t *groups = json_object_get(body, "groups");
    if (!eni || !account || !json_array_size(groups) || json_array_size(groups) > 5)
        return verr_set(e, 400, "InvalidParameterValue", "eni, account and 1 to 5 groups are required");
    db_t *db = service_db(ctx);
    char vpc[IDS_MAX], host[64];
    int plugged = 0, found;
    const char *pe[] = {eni, account};
    PG_AUTO PGresult *own = NULL;
    PG_AUTO PGresult *del = NULL;
    if (db_begin(db, e) < 0 || (found = lock_port(db, eni, vpc, host, &plugged, e)) < 0)
        goto fail;
    if (found && !(own = db_prepared(db, e, "psg_owner", "SELECT 1 FROM enis WHERE id = $1 AND account_id = $2", 2,
                                     pe)))
        goto fail;
    if (!found || !PQntuples(own)) {
        verr_set(e, 404, "InvalidNetworkInterfaceID.NotFound", "The port '%.64s' does not exist", eni);
        goto fail;
    }
    if (!(del = db_prepared(db, e, "psg_clear", "DELETE FROM eni_groups WHERE eni_id = $1", 1, pe)))
        goto fail;
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g) {
        const char *p[] = {eni, json_is_string(g) ? json_string_value(g) : "", account, vpc};
        PG_AUTO PGresult *r = db_prepared(db, e, "psg_add",
            "INSERT INTO eni_groups (eni_id, group_id) SELECT $1, id FROM security_groups WHERE id = $2 AND "
            "account_id = $3 AND vpc_id = $4 ON CONFLICT DO NOTHING", 4, p);
        if (!r)
            goto fail;
        if (strcmp(PQcmdTuples(r), "1")) {
            verr_set(e, 400, "InvalidGroup.NotFound", "The security group '%.64s' does not exist in VPC '%s'", p[1],
                     vpc);
            goto fail;
        }
    }
    if (hosts_touch_vpc(db, vpc, NULL, e) < 0 || db_commit(db, e) < 0)
        goto fail;
    return port_reply(db, eni, reply, e);
fail:
    db_rollback(db);
    return -1;
}
