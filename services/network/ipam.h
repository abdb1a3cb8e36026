/* ipam.h - address allocation (ipam.c). Both run inside the caller's transaction. */
#ifndef VIRGA_NETWORK_IPAM_H
#define VIRGA_NETWORK_IPAM_H

#include "cidr.h"
#include "config.h"
#include "db.h"

/* 1 (the interface that holds it into holder), 0 when ip is free in the subnet, or -1. */
int ipam_holder(db_t *db, const char *subnet_id, const char *ip, char holder[64], verr_t *e);
/* A free address of the subnet (the caller holds the subnet's row lock): wanted if it
 * is given, usable and free (InvalidParameterValue, InvalidIPAddress.InUse), else the
 * lowest free one past the four reserved at the start (InsufficientFreeAddressesInSubnet
 * when none is left). */
int ipam_private(db_t *db, const char *subnet_id, const char *subnet_cidr, const char *wanted,
                 char out[CIDR_STR_MAX], verr_t *e);
/* The operator's public pool (network.public_pool, default 198.51.100.0/24). */
const char *ipam_public_pool(const config_t *cfg);
/* The lowest free public address other than avoid (may be NULL), which it is only when
 * no other is free (InsufficientAddressCapacity when none). */
int ipam_public(db_t *db, const config_t *cfg, const char *avoid, char out[CIDR_STR_MAX], verr_t *e);

#endif
