/* public_addresses.c - the public address a launch gives an instance's interface (the
 * subnet's MapPublicIpOnLaunch, or RunInstances' AssociatePublicIpAddress): an
 * `addresses` row marked auto_assigned (sql/011_public_addresses.sql), so the datapath
 * NATs it exactly as an associated elastic IP, while the tenant's elastic IP actions,
 * DescribeAddresses and the elastic_ips quota never see it (they read the view
 * elastic_ips). It lives and dies with its interface: deleted with it (terminate) or
 * when an elastic IP is associated with the interface (AWS releases it then too). The
 * interface remembers it had one at launch (enis.public_ip_on_launch, migration 012):
 * when the elastic IP leaves it, it gets a new one, as on AWS. Stopping its instance
 * releases it and starting it gives a new one (network.instance_public_ip, asked by
 * compute's public:<instance> task), as on AWS; an elastic IP stays through both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enis.h"
#include "ids.h"
#include "ipam.h"
#include "jsonutil.h"
#include "log.h"
#include "network.h"

/* A new auto-assigned address from the pool for the interface, other than `avoid` (the
 * one it had before) unless that is the only one free; the interface keeps it as its
 * last (and, for a launch, that it had one at launch). */
static int insert_public(db_t *db, const config_t *cfg, const char *account, const char *eni, const char *avoid,
                         int launch, int locked, verr_t *e)
{
    char id[IDS_MAX], ip[CIDR_STR_MAX];
    ids_new("eipalloc", id);
    if (!avoid) {   /* the lowest free one, picked and given in one statement (a launch's) */
        char base[CIDR_STR_MAX], lo[16], hi[16];
        if ((locked ? ipam_public_bounds(cfg, base, lo, hi, e) : ipam_public_lock(db, cfg, base, lo, hi, e)) < 0)
            return -1;
        const char *q[] = {base, lo, hi, id, account, eni, launch ? "true" : "false"};
        PG_AUTO PGresult *t = db_prepared(db, e, "pub_take",
            "WITH pick AS (" IPAM_PUBLIC_LOWEST("$1", "$2", "$3") "), a AS (INSERT INTO addresses (id, account_id, "
            "public_ip, eni_id, auto_assigned) SELECT $4, $5, ip, $6, true FROM pick RETURNING public_ip) UPDATE enis "
            "SET last_public_ip = a.public_ip, public_ip_on_launch = public_ip_on_launch OR $7::boolean FROM a WHERE "
            "enis.id = $6 RETURNING 1", 7, q);
        if (!t)
            return -1;
        if (!PQntuples(t))
            return verr_set(e, 400, "InsufficientAddressCapacity", "The public address pool %s has no free address.",
                            ipam_public_pool(cfg));
        return 0;
    }
    if (ipam_public(db, cfg, avoid, ip, e) < 0)
        return -1;
    /* the address and the interface's memory of it in one statement (addresses'
     * trigger, which gives the interface a new facts version, fires at its end) */
    const char *p[] = {id, account, ip, eni, launch ? "true" : "false"};
    PG_AUTO PGresult *r = db_prepared(db, e, "pub_assign_last",
        "WITH a AS (INSERT INTO addresses (id, account_id, public_ip, eni_id, auto_assigned) VALUES ($1, $2, $3, $4, "
        "true)) UPDATE enis SET last_public_ip = $3, public_ip_on_launch = public_ip_on_launch OR $5::boolean "
        "WHERE id = $4", 5, p);
    return r ? 0 : -1;
}

int eni_public_assign(db_t *db, const config_t *cfg, const char *account, const char *eni, verr_t *e)
{
    return insert_public(db, cfg, account, eni, NULL, 1, 0, e);
}

int eni_public_assign_locked(db_t *db, const config_t *cfg, const char *account, const char *eni, verr_t *e)
{
    return insert_public(db, cfg, account, eni, NULL, 1, 1, e);
}

int eni_public_reassign(db_t *db, const config_t *cfg, const char *eni, verr_t *e)
{
    /* the interface's row lock first (as an association to it takes it), then, in a
     * statement that sees what committed meanwhile, whether it holds an address: it gets
     * one only if it had one at launch, is still attached and holds none now */
    const char *p[] = {eni};
    PG_AUTO PGresult *r = db_prepared(db, e, "pub_reassign_of", "SELECT account_id, host(last_public_ip) FROM enis "
                                      "WHERE id = $1 AND public_ip_on_launch AND instance_id IS NOT NULL FOR UPDATE", 1,
                                      p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return 0;
    PG_AUTO PGresult *held = db_prepared(db, e, "pub_reassign_held", "SELECT 1 FROM addresses WHERE eni_id = $1", 1, p);
    if (!held)
        return -1;
    if (PQntuples(held))
        return 0;
    verr_t e2 = {0};
    if (insert_public(db, cfg, PQgetvalue(r, 0, 0), eni, PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1), 0, 0,
                      &e2) == 0)
        return 0;
    /* the pool empty: the instance stays without a public address, as on AWS; the
     * disassociation itself is not failed for it (ipam_public wrote nothing) */
    if (!strcmp(e2.code, "InsufficientAddressCapacity"))
        return 0;
    if (e)
        *e = e2;
    return -1;
}

int eni_public_release(db_t *db, const char *eni, verr_t *e)
{
    const char *p[] = {eni};
    PG_AUTO PGresult *r = db_prepared(db, e, "pub_release", "DELETE FROM addresses WHERE eni_id = $1 AND auto_assigned",
                                      1, p);
    return r ? 0 : -1;
}

int eni_eip_unlink(db_t *db, const char *eni, verr_t *e)
{
    const char *p[] = {eni};
    PG_AUTO PGresult *r = db_prepared(db, e, "eni_drop_eip", "UPDATE addresses SET eni_id = NULL, association_id = NULL "
                                      "WHERE eni_id = $1", 1, p);
    return r ? 0 : -1;
}

/* network.instance_public_ip {account, instance, want: bool} -> {"facts": [the facts of
 * every interface of the instance, as the push carries them], "without": [interfaces that
 * should have one and got none: the pool empty]}: compute's public:<instance> task after
 * a stop (want false: every auto-assigned address of the instance's interfaces is
 * released, an elastic IP stays) or a start (want true: each interface whose launch gave
 * it one and that holds none gets a new one, not the one it had unless that is the
 * pool's only free address). Idempotent: asked again, nothing changes; the hosts of the
 * instance's VPCs get a new generation (their 1:1 NAT) only when something changed. Only
 * compute may ask (the route's sender mask). */
int net_instance_public_ip(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account = json_str(body, "account", NULL), *inst = json_str(body, "instance", NULL);
    const json_t *want = json_object_get(body, "want");
    if (!account || !inst || !json_is_boolean(want))
        return verr_set(e, 400, "InvalidParameterValue", "account, instance and want (a boolean) are required");
    db_t *db = service_db(ctx);
    const config_t *cfg = service_of(ctx)->cfg;
    const char *p[] = {account, inst};
    PG_AUTO PGresult *n = NULL;
    PG_AUTO PGresult *f = NULL;
    json_t *without = json_array();
    /* the interfaces' rows first, in id order (as an association to one takes it) */
    if (db_begin(db, e) < 0 ||
        !(n = db_prepared(db, e, "ipub_enis", "SELECT id, vpc_id, (SELECT count(*) FROM addresses a WHERE a.eni_id = "
                          "n.id), public_ip_on_launch FROM enis n WHERE account_id = $1 AND instance_id = $2 ORDER BY "
                          "id FOR UPDATE", 2, p)))
        goto fail;
    int changed = 0;
    for (int i = 0; i < PQntuples(n); i++) {
        const char *eni = PQgetvalue(n, i, 0);
        int held = atoi(PQgetvalue(n, i, 2)), on_launch = PQgetvalue(n, i, 3)[0] == 't';
        if (!json_is_true(want)) {
            const char *q[] = {eni};
            PG_AUTO PGresult *d = db_prepared(db, e, "ipub_release", "DELETE FROM addresses WHERE eni_id = $1 AND "
                                              "auto_assigned", 1, q);
            if (!d)
                goto fail;
            changed |= strcmp(PQcmdTuples(d), "0") != 0;
            continue;
        }
        if (held || !on_launch)
            continue;
        if (eni_public_reassign(db, cfg, eni, e) < 0)
            goto fail;
        const char *q[] = {eni};
        PG_AUTO PGresult *got = db_prepared(db, e, "ipub_held", "SELECT 1 FROM addresses WHERE eni_id = $1", 1, q);
        if (!got)
            goto fail;
        if (PQntuples(got))
            changed = 1;
        else
            json_array_append_new(without, json_string(eni));
    }
    for (int i = 0; changed && i < PQntuples(n); i++) {
        int seen = 0;   /* each VPC once */
        for (int k = 0; k < i && !seen; k++)
            seen = !strcmp(PQgetvalue(n, k, 1), PQgetvalue(n, i, 1));
        if (!seen && hosts_touch_vpc(db, PQgetvalue(n, i, 1), NULL, e) < 0)
            goto fail;
    }
    if (!(f = db_prepared(db, e, "ipub_facts", "SELECT coalesce(json_agg(eni_facts(n) ORDER BY n.id), '[]')::text "
                          "FROM enis n WHERE account_id = $1 AND instance_id = $2", 2, p)) ||
        db_commit(db, e) < 0)
        goto fail;
    if (json_array_size(without))
        log_warn("instance %s started without a public address: the pool %s has no free address", inst,
                 ipam_public_pool(cfg));
    *reply = json_pack("{s:o, s:o}", "facts", json_loads(PQgetvalue(f, 0, 0), 0, NULL), "without", without);
    return 0;
fail:
    db_rollback(db);
    json_decref(without);
    return -1;
}
