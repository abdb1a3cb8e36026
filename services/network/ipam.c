/* ipam.c - private addresses from subnets and public ones from the operator's pool.
 *
 * No address is handed out twice: that is the database's guarantee (UNIQUE (subnet_id,
 * ip) on enis, UNIQUE (public_ip) on addresses), not the handlers'. The allocator also
 * holds the subnet's row lock (or the pool's transaction lock) while it picks the lowest
 * free address, so concurrent allocations queue instead of colliding and retrying, and
 * a full subnet is a clear error, not a storm of conflicts. */
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "ipam.h"
#include "jsonutil.h"

/* The lowest free offset in [lo, hi] from base, as the statement finds it. */
static int pick(db_t *db, const char *stmt, const char *sql, const char *base, uint32_t lo, uint32_t hi,
                const char *scope, char out[CIDR_STR_MAX], verr_t *e)
{
    char l[16], h[16];
    snprintf(l, sizeof l, "%u", lo);
    snprintf(h, sizeof h, "%u", hi);
    const char *p[] = {base, l, h, scope};
    PG_AUTO PGresult *r = db_prepared(db, e, stmt, sql, scope ? 4 : 3, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return 0;
    snprintf(out, CIDR_STR_MAX, "%s", PQgetvalue(r, 0, 0));
    return 1;
}

int ipam_holder(db_t *db, const char *subnet_id, const char *ip, char holder[64], verr_t *e)
{
    const char *p[] = {subnet_id, ip};
    PG_AUTO PGresult *r = db_prepared(db, e, "ipam_taken", "SELECT id FROM enis WHERE subnet_id = $1 AND ip = $2::inet",
                                      2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return 0;
    snprintf(holder, 64, "%s", PQgetvalue(r, 0, 0));
    return 1;
}

int ipam_private(db_t *db, const char *subnet_id, const char *subnet_cidr, const char *wanted,
                 char out[CIDR_STR_MAX], verr_t *e)
{
    cidr_t c;
    uint32_t first, last;
    if (cidr_parse(subnet_cidr, &c) < 0 || !cidr_usable(&c, &first, &last))
        return verr_set(e, 500, "InternalError", "subnet %s has no usable addresses", subnet_id);
    if (wanted) {
        uint32_t ip;
        if (cidr_ip_parse(wanted, &ip) < 0 || ip < first || ip > last)
            return verr_set(e, 400, "InvalidParameterValue", "Address %.32s does not fall within the subnet's usable "
                            "address range (%s, less the five reserved addresses)", wanted, subnet_cidr);
        char holder[64];
        int taken = ipam_holder(db, subnet_id, wanted, holder, e);
        if (taken)
            return taken < 0 ? -1 : verr_set(e, 400, "InvalidIPAddress.InUse", "Address %s is in use by %s", wanted,
                                             holder);
        cidr_ip_format(ip, out);
        return 0;
    }
    char base[CIDR_STR_MAX];
    cidr_ip_format(c.addr, base);
    /* The lowest free address is the first one, or the one after a taken address whose
     * next is free: found through the (subnet_id, ip) index among the subnet's taken
     * addresses. Not by testing every address of the subnet in turn (generate_series
     * ... ORDER BY s LIMIT 1, as before): PostgreSQL cannot know the series comes sorted,
     * so it anti-joined and sorted all of them, 4,091 for a default /20 subnet, about
     * 10 ms of PostgreSQL's CPU a launch (issue 11's launch rate); now 0.1 ms. */
    int found = pick(db, "ipam_private",
                     "SELECT host($1::inet + x) FROM (SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM enis WHERE "
                     "subnet_id = $4 AND ip = $1::inet + $2::bigint) THEN $2::bigint ELSE (SELECT min(t.ip - $1::inet) "
                     "+ 1 FROM enis t WHERE t.subnet_id = $4 AND t.ip >= $1::inet + $2::bigint AND t.ip < $1::inet + "
                     "$3::bigint AND NOT EXISTS (SELECT 1 FROM enis n WHERE n.subnet_id = $4 AND n.ip = t.ip + 1)) END "
                     "AS x) f WHERE x IS NOT NULL",
                     base, first - c.addr, last - c.addr, subnet_id, out, e);
    if (found < 0)
        return -1;
    if (!found)
        return verr_set(e, 400, "InsufficientFreeAddressesInSubnet",
                        "There are not enough free addresses in subnet '%s' to satisfy the requested number of "
                        "instances.", subnet_id);
    return 0;
}

json_t *ipam_private_many(db_t *db, const char *subnet_id, const char *subnet_cidr, size_t n, verr_t *e)
{
    cidr_t c;
    uint32_t first, last;
    if (cidr_parse(subnet_cidr, &c) < 0 || !cidr_usable(&c, &first, &last)) {
        verr_set(e, 500, "InternalError", "subnet %s has no usable addresses", subnet_id);
        return NULL;
    }
    char base[CIDR_STR_MAX], lo[16], hi[16], count[16];
    cidr_ip_format(c.addr, base);
    snprintf(lo, sizeof lo, "%u", first - c.addr);
    snprintf(hi, sizeof hi, "%u", last - c.addr);
    snprintf(count, sizeof count, "%zu", n);
    /* every address of the subnet tested (an anti-join and a sort: about 10 ms for a /20,
     * ipam_private's comment), once for the N of a batch rather than N gap searches */
    const char *p[] = {base, lo, hi, subnet_id, count};
    PG_AUTO PGresult *r = db_prepared(db, e, "ipam_private_many",
        "SELECT host($1::inet + s) FROM generate_series($2::bigint, $3::bigint) s WHERE NOT EXISTS (SELECT 1 FROM "
        "enis WHERE subnet_id = $4 AND ip = $1::inet + s) ORDER BY s LIMIT $5::int", 5, p);
    if (!r)
        return NULL;
    json_t *out = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(out, json_string(PQgetvalue(r, i, 0)));
    return out;
}

const char *ipam_public_pool(const config_t *cfg)
{
    return config_str(cfg, "network.public_pool", "198.51.100.0/24");
}

int ipam_public_bounds(const config_t *cfg, char base[CIDR_STR_MAX], char lo[16], char hi[16], verr_t *e)
{
    const char *pool = ipam_public_pool(cfg);
    cidr_t c;
    if (cidr_parse(pool, &c) < 0 || c.len > 30)
        return verr_set(e, 500, "InternalError", "network.public_pool '%.32s' is not a CIDR block of 4+ addresses", pool);
    cidr_ip_format(c.addr, base);
    snprintf(lo, 16, "%u", 1u);
    snprintf(hi, 16, "%u", (uint32_t)cidr_size(&c) - 2);
    return 0;
}

int ipam_public_lock(db_t *db, const config_t *cfg, char base[CIDR_STR_MAX], char lo[16], char hi[16], verr_t *e)
{
    /* the bounds first: a pool the config gets wrong takes no lock */
    if (ipam_public_bounds(cfg, base, lo, hi, e) < 0 || db_lock_xact(db, "public_pool", "pool", e) < 0)
        return -1;
    return 0;
}

int ipam_public(db_t *db, const config_t *cfg, const char *avoid, char out[CIDR_STR_MAX], verr_t *e)
{
    const char *pool = ipam_public_pool(cfg);
    cidr_t c;
    char base[CIDR_STR_MAX], lo[16], hi[16];
    if (ipam_public_lock(db, cfg, base, lo, hi, e) < 0)
        return -1;
    cidr_parse(pool, &c);
    /* every address but the network and broadcast ones; `avoid` only when no other is
     * free (two statements, so the usual one still stops at the first free address) */
    int found = avoid ? pick(db, "ipam_public_avoid",
                             "SELECT host($1::inet + s) FROM generate_series($2::bigint, $3::bigint) s WHERE NOT EXISTS "
                             "(SELECT 1 FROM addresses WHERE public_ip = $1::inet + s) AND $1::inet + s <> $4::inet "
                             "ORDER BY s LIMIT 1",
                             base, 1, (uint32_t)cidr_size(&c) - 2, avoid, out, e)
                      : 0;
    if (!found)
        found = pick(db, "ipam_public_lowest", "SELECT host(ip) FROM (" IPAM_PUBLIC_LOWEST("$1", "$2", "$3") ") l",
                     base, 1, (uint32_t)cidr_size(&c) - 2, NULL, out, e);
    if (found < 0)
        return -1;
    if (!found)
        return verr_set(e, 400, "InsufficientAddressCapacity", "The public address pool %s has no free address.", pool);
    return 0;
}
