/* ipam.h - address allocation (ipam.c). Both run inside the caller's transaction. */
#ifndef VIRGA_NETWORK_IPAM_H
#define VIRGA_NETWORK_IPAM_H

#include "cidr.h"
#include "config.h"
#include "db.h"
#include "jsonutil.h"

/* 1 (the interface that holds it into holder), 0 when ip is free in the subnet, or -1. */
int ipam_holder(db_t *db, const char *subnet_id, const char *ip, char holder[64], verr_t *e);
/* A free address of the subnet (the caller holds the subnet's row lock): wanted if it
 * is given, usable and free (InvalidParameterValue, InvalidIPAddress.InUse), else the
 * lowest free one past the four reserved at the start (InsufficientFreeAddressesInSubnet
 * when none is left). */
int ipam_private(db_t *db, const char *subnet_id, const char *subnet_cidr, const char *wanted,
                 char out[CIDR_STR_MAX], verr_t *e);
/* The n lowest free addresses of the subnet (the caller holds its row lock), as a JSON
 * array of strings: fewer when the subnet has fewer free; NULL with e. */
json_t *ipam_private_many(db_t *db, const char *subnet_id, const char *subnet_cidr, size_t n, verr_t *e);
/* The operator's public pool (network.public_pool, default 198.51.100.0/24). */
const char *ipam_public_pool(const config_t *cfg);
/* The lowest free public address other than avoid (may be NULL), which it is only when
 * no other is free (InsufficientAddressCapacity when none). */
int ipam_public(db_t *db, const config_t *cfg, const char *avoid, char out[CIDR_STR_MAX], verr_t *e);
/* The pool's transaction lock taken and its bounds as SQL parameters (base address,
 * first and last usable offsets), for a statement that picks the lowest free address
 * with IPAM_PUBLIC_LOWEST and uses it in the same statement (public_addresses.c: a
 * launch's address picked and given in one round trip). */
int ipam_public_lock(db_t *db, const config_t *cfg, char base[CIDR_STR_MAX], char lo[16], char hi[16], verr_t *e);
/* The same bounds, for a transaction that took the pool's lock in a statement of its own
 * (IPAM_PUBLIC_LOCK_SQL: a launch's port takes it with its subnet's, enis.c). */
int ipam_public_bounds(const config_t *cfg, char base[CIDR_STR_MAX], char lo[16], char hi[16], verr_t *e);
/* The pool's transaction lock as an SQL expression: what ipam_public_lock takes
 * (db_lock_xact("public_pool", "pool")). */
#define IPAM_PUBLIC_LOCK_SQL "pg_advisory_xact_lock(hashtext('public_pool'), hashtext('pool'))"
/* A query of one row (column ip), or none when the pool is full: the lowest free
 * address from base + lo to base + hi. Not every address tested in turn: the first one,
 * or the one after a taken address whose next is free, found through addresses' UNIQUE
 * (public_ip) index among the taken ones (as ipam_private's for a subnet). */
#define IPAM_PUBLIC_LOWEST(base, lo, hi)                                                                               \
    "SELECT " base "::inet + x AS ip FROM (SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM addresses WHERE public_ip = "  \
    base "::inet + " lo "::bigint) THEN " lo "::bigint ELSE (SELECT min(t.public_ip - " base "::inet) + 1 FROM "      \
    "addresses t WHERE t.public_ip >= " base "::inet + " lo "::bigint AND t.public_ip < " base "::inet + " hi         \
    "::bigint AND NOT EXISTS (SELECT 1 FROM addresses n WHERE n.public_ip = t.public_ip + 1)) END AS x) f WHERE x "  \
    "IS NOT NULL"

#endif
