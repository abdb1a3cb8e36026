/* zones.c - availability zone ids (zones.h). */
#include "zones.h"

#include <stdio.h>
#include <string.h>

void zone_id(const char *region, int n, char *out, size_t size)
{
    snprintf(out, size, "%s-az%d", region, n);
}

int zone_id_of(const char *region, const char *zones, const char *zone, char *out, size_t size)
{
    size_t len = strlen(zone);
    int n = 1;
    for (const char *z = zones; z && *z; n++) {
        const char *end = strchr(z, ',');
        size_t zl = end ? (size_t)(end - z) : strlen(z);
        if (len && zl == len && !strncmp(z, zone, len)) {
            zone_id(region, n, out, size);
            return 0;
        }
        z = end ? end + 1 : NULL;
    }
    if (size)
        *out = 0;
    return -1;
}
