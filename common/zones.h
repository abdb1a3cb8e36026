/* zones.h - an availability zone's id (us-east-1-az1) from its name and the configured
 * zone list (gateway.availability_zones, "us-east-1a,us-east-1b"): the region and the
 * zone's place in the list, so the gateway's DescribeAvailabilityZones and compute's
 * DescribeInstanceTypeOfferings (LocationType availability-zone-id) name zones alike. */
#ifndef VIRGA_ZONES_H
#define VIRGA_ZONES_H

#include <stddef.h>

/* The id of the zone at 1-based place n of the region's list, in out. */
void zone_id(const char *region, int n, char *out, size_t size);
/* The id of zone by its place in zones (the comma-separated list); 0, or -1 with out ""
 * when zone is not in the list. */
int zone_id_of(const char *region, const char *zones, const char *zone, char *out, size_t size);

#endif
