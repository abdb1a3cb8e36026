/* zones.c - availability zone ids (zones.h). */
#include "zones.h"

#include <stdio.h>

void zone_id(const char *region, int n, char *out, size_t size)
{
    snprintf(out, size, "%s-az%d", region, n);
}
