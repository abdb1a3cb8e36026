/* routing.h - route tables and internet gateways (route_tables.c,
 * internet_gateways.c), and what VPC creation and deletion need of them. */
#ifndef VIRGA_NETWORK_ROUTING_H
#define VIRGA_NETWORK_ROUTING_H

#include "service.h"

/* A new VPC's main route table with its local route (inside the caller's transaction);
 * writes the table's id when rtb is not NULL. */
int routing_vpc_created(db_t *db, const char *account, const char *vpc_id, const char *cidr, char *rtb, verr_t *e);
/* DependencyViolation while the VPC has an internet gateway or a route table other than
 * its main one; else removes the main table (inside the caller's transaction). */
int routing_vpc_deleting(db_t *db, const char *vpc_id, verr_t *e);
/* The default VPC's internet gateway, attached, and its 0.0.0.0/0 route in rtb. */
int routing_default_internet(db_t *db, const char *account, const char *vpc_id, const char *rtb, verr_t *e);

/* Lock the account's route table `id` (NotFound otherwise); its VPC, and whether it is
 * the main one when is_main is not NULL. */
int routing_lock_table(db_t *db, const char *id, const char *account, char *vpc, int *is_main, verr_t *e);

#endif
