/* public_addresses.c - the public address a launch gives an instance's interface (the
 * subnet's MapPublicIpOnLaunch, or RunInstances' AssociatePublicIpAddress): an
 * `addresses` row marked auto_assigned (sql/011_public_addresses.sql), so the datapath
 * NATs it exactly as an associated elastic IP, while the tenant's elastic IP actions,
 * DescribeAddresses and the elastic_ips quota never see it (they read the view
 * elastic_ips). It lives and dies with its interface: deleted with it (terminate) or
 * when an elastic IP is associated with the interface (AWS releases it then too). */
#include "enis.h"
#include "ids.h"
#include "ipam.h"

int eni_public_assign(db_t *db, const config_t *cfg, const char *account, const char *eni, verr_t *e)
{
    char id[IDS_MAX], ip[CIDR_STR_MAX];
    ids_new("eipalloc", id);
    if (ipam_public(db, cfg, ip, e) < 0)
        return -1;
    const char *p[] = {id, account, ip, eni};
    PG_AUTO PGresult *r = db_prepared(db, e, "pub_assign", "INSERT INTO addresses (id, account_id, public_ip, eni_id, "
                                      "auto_assigned) VALUES ($1, $2, $3, $4, true)", 4, p);
    return r ? 0 : -1;
}

int eni_public_release(db_t *db, const char *eni, verr_t *e)
{
    const char *p[] = {eni};
    PG_AUTO PGresult *r = db_prepared(db, e, "pub_release", "DELETE FROM addresses WHERE eni_id = $1 AND auto_assigned",
                                      1, p);
    return r ? 0 : -1;
}
