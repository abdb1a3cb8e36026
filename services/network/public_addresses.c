/* public_addresses.c - the public address a launch gives an instance's interface (the
 * subnet's MapPublicIpOnLaunch, or RunInstances' AssociatePublicIpAddress): an
 * `addresses` row marked auto_assigned (sql/011_public_addresses.sql), so the datapath
 * NATs it exactly as an associated elastic IP, while the tenant's elastic IP actions,
 * DescribeAddresses and the elastic_ips quota never see it (they read the view
 * elastic_ips). It lives and dies with its interface: deleted with it (terminate) or
 * when an elastic IP is associated with the interface (AWS releases it then too). The
 * interface remembers it had one at launch (enis.public_ip_on_launch, migration 012):
 * when the elastic IP leaves it, it gets a new one, as on AWS. */
#include <string.h>

#include "enis.h"
#include "ids.h"
#include "ipam.h"

/* A new auto-assigned address from the pool for the interface, other than `avoid` (the
 * one it had before) unless that is the only one free; the interface keeps it as its
 * last (and, for a launch, that it had one at launch). */
static int insert_public(db_t *db, const config_t *cfg, const char *account, const char *eni, const char *avoid,
                         int launch, verr_t *e)
{
    char id[IDS_MAX], ip[CIDR_STR_MAX];
    ids_new("eipalloc", id);
    if (ipam_public(db, cfg, avoid, ip, e) < 0)
        return -1;
    const char *p[] = {id, account, ip, eni}, *last[] = {eni, ip, launch ? "true" : "false"};
    PG_AUTO PGresult *r = db_prepared(db, e, "pub_assign", "INSERT INTO addresses (id, account_id, public_ip, eni_id, "
                                      "auto_assigned) VALUES ($1, $2, $3, $4, true)", 4, p);
    PG_AUTO PGresult *n = r ? db_prepared(db, e, "pub_last", "UPDATE enis SET last_public_ip = $2, public_ip_on_launch "
                                          "= public_ip_on_launch OR $3 WHERE id = $1", 3, last) : NULL;
    return n ? 0 : -1;
}

int eni_public_assign(db_t *db, const config_t *cfg, const char *account, const char *eni, verr_t *e)
{
    return insert_public(db, cfg, account, eni, NULL, 1, e);
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
    if (insert_public(db, cfg, PQgetvalue(r, 0, 0), eni, PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1), 0,
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
