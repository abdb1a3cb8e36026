/* driver_table.c - the datapath drivers, one row each: a new driver is one line here. */
#include <stdio.h>
#include <string.h>

#include "datapath.h"

extern const dp_ops_t dp_linux_ops, dp_fake_ops;

static const dp_ops_t *const drivers[] = {&dp_linux_ops, &dp_fake_ops};

const dp_ops_t *dp_driver_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(drivers); i++)
        if (!strcmp(drivers[i]->name, name)) return drivers[i];
    return NULL;
}

dp_driver_t *dp_open(const char *driver_name, const dp_config_t *cfg, verr_t *e)
{
    const dp_ops_t *ops = dp_driver_find(driver_name);
    if (!ops) {
        verr_set(e, 400, "InvalidParameterValue", "unknown datapath driver %s", driver_name);
        return NULL;
    }
    const char *prefix = cfg && cfg->prefix ? cfg->prefix : "virga-";
    if (strncmp(prefix, "virga-", 6) || strlen(prefix) > 16) {
        verr_set(e, 400, "InvalidParameterValue", "namespace prefix must start with virga- (at most 16)");
        return NULL;
    }
    dp_driver_t *d = ops->open(cfg, e);
    if (!d) return NULL;
    d->ops = ops;
    snprintf(d->prefix, sizeof d->prefix, "%s", prefix);
    return d;
}

void dp_close(dp_driver_t *d)
{
    if (!d) return;
    dp_units_clear(&d->known);
    d->ops->close(d);
}
