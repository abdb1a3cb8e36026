/* hosts.c - the hosts the datapath runs on, as the network service knows them: each has
 * an address on the project's underlay bridge (from network.underlay_cidr, default
 * 10.254.0.0/24, starting at .11) and a generation that grows in the same transaction as
 * every change touching the host, so an agent can tell whether its copy is current. */
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "jsonutil.h"
#include "network.h"

int hosts_valid_name(const char *host, verr_t *e)
{
    size_t n = host ? strlen(host) : 0;
    int ok = n >= 1 && n <= 63;
    for (size_t i = 0; ok && i < n; i++)
        ok = (host[i] >= 'a' && host[i] <= 'z') || (host[i] >= 'A' && host[i] <= 'Z') ||
             (host[i] >= '0' && host[i] <= '9') || host[i] == '-' || host[i] == '_' || host[i] == '.';
    if (!ok)
        return verr_set(e, 400, "InvalidParameterValue", "host is 1 to 63 letters, digits, '-', '_' or '.'");
    return 0;
}

int hosts_ensure(db_t *db, service_t *svc, const char *host, verr_t *e)
{
    const char *p[] = {host};
    PG_AUTO PGresult *r = db_prepared(db, e, "host_find", "SELECT 1 FROM hosts WHERE name = $1", 1, p);
    if (!r)
        return -1;
    if (PQntuples(r))
        return 0;
    const char *block = config_str(svc->cfg, "network.underlay_cidr", "10.254.0.0/24");
    cidr_t c;
    uint32_t first, last;
    if (cidr_parse(block, &c) < 0 || !cidr_usable(&c, &first, &last))
        return verr_set(e, 500, "InternalError", "network.underlay_cidr '%.32s' is not a usable CIDR block", block);
    char net[CIDR_STR_MAX], lo[16], hi[16];
    cidr_ip_format(c.addr, net);
    snprintf(lo, sizeof lo, "%u", 11 < cidr_size(&c) - 1 ? 11u : first - c.addr);
    snprintf(hi, sizeof hi, "%u", last - c.addr);
    const char *q[] = {host, net, lo, hi};
    if (db_lock_xact(db, "hosts", "underlay", e) < 0)
        return -1;
    PG_AUTO PGresult *i = db_prepared(db, e, "host_insert",
        "INSERT INTO hosts (name, underlay_ip) SELECT $1, $2::inet + s FROM generate_series($3::bigint, $4::bigint) s "
        "WHERE NOT EXISTS (SELECT 1 FROM hosts WHERE underlay_ip = $2::inet + s) ORDER BY s LIMIT 1 "
        "ON CONFLICT (name) DO NOTHING", 4, q);
    if (!i)
        return -1;
    PG_AUTO PGresult *again = db_prepared(db, e, "host_find", "SELECT 1 FROM hosts WHERE name = $1", 1, p);
    if (!again)
        return -1;
    if (!PQntuples(again))
        return verr_set(e, 503, "InsufficientCapacity", "No underlay address is left in %s for host %.64s", block, host);
    return 0;
}

int hosts_touch_vpc(db_t *db, const char *vpc_id, const char *extra_host, verr_t *e)
{
    const char *p[] = {vpc_id, extra_host};
    /* the VPC's own generation with its hosts': what desired_vpc.c shares between them */
    PG_AUTO PGresult *r = db_prepared(db, e, "host_touch",
        "WITH v AS (UPDATE vpcs SET generation = generation + 1 WHERE id = $1) "
        "UPDATE hosts SET generation = generation + 1 WHERE name = $2 OR name IN "
        "(SELECT host FROM enis WHERE vpc_id = $1 AND plugged AND host IS NOT NULL)", 2, p);
    return r ? 0 : -1;
}
