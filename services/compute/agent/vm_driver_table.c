/* vm_driver_table.c - the drivers this agent binary has, one row each, and the public
 * wrappers that check arguments once before a driver sees them. */
#include "vm_driver.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "vm_state.h"

extern const vm_driver_ops_t vm_sim_driver, vm_container_driver, vm_qemu_driver, vm_ec2_driver;

const vm_driver_ops_t *const vm_driver_table[] = {
    &vm_qemu_driver,
    &vm_container_driver,
    &vm_sim_driver,
    &vm_ec2_driver,
    NULL,
};

static const char *const power_names[] = {
    [VM_POWER_STOPPED] = "stopped",
    [VM_POWER_RUNNING] = "running",
    [VM_POWER_STARTING] = "starting",
    [VM_POWER_ERROR] = "error",
};

const char *vm_power_name(vm_power_t p)
{
    return (unsigned)p < ARRAY_LEN(power_names) ? power_names[p] : "error";
}

int vm_power_parse(const char *s)
{
    for (size_t i = 0; s && i < ARRAY_LEN(power_names); i++)
        if (!strcmp(s, power_names[i]))
            return (int)i;
    return -1;
}

uint64_t vm_nics_sig_add(uint64_t sig, const char *device)
{
    uint64_t h = 14695981039346656037ull;   /* FNV-1a */
    for (const unsigned char *c = (const unsigned char *)device; *c; c++)
        h = (h ^ *c) * 1099511628211ull;
    return sig ^ h;
}

uint64_t vm_spec_nics_sig(const vm_spec_t *s)
{
    uint64_t sig = 0;
    for (size_t i = 0; i < s->n_ifaces; i++)
        sig = vm_nics_sig_add(sig, s->ifaces[i].device);
    return sig;
}

int vm_spec_abandoned(const vm_spec_t *s) { return s->abandon && atomic_load(s->abandon); }

const vm_driver_ops_t *vm_driver_find(const char *name)
{
    for (size_t i = 0; name && vm_driver_table[i]; i++)
        if (!strcmp(vm_driver_table[i]->name, name))
            return vm_driver_table[i];
    return NULL;
}

int vm_id_valid(const char *s) { return s && strlen(s) < VM_ID_MAX && ids_valid("i", s); }

vm_driver_t *vm_driver_open(const char *name, const vm_driver_cfg_t *c, verr_t *e)
{
    const vm_driver_ops_t *ops = vm_driver_find(name);
    if (!ops) {
        verr_set(e, 400, "NotImplemented", "no instance driver '%s'", name ? name : "");
        return NULL;
    }
    if (!c->state_dir || !*c->state_dir) {
        verr_set(e, 400, "InvalidParameterValue", "driver %s needs a state dir", name);
        return NULL;
    }
    if (vm_mkdirs(c->state_dir, 0700, e) < 0)
        return NULL;
    void *priv = ops->open(c, e);
    if (!priv)
        return NULL;
    vm_driver_t *d = xcalloc(1, sizeof *d);
    d->ops = ops;
    d->priv = priv;
    return d;
}

int vm_driver_ensure(vm_driver_t *d, const vm_spec_t *spec, verr_t *e)
{
    if (!vm_id_valid(spec->id))
        return verr_set(e, 400, "InvalidParameterValue", "'%s' is not an instance id", spec->id);
    if (spec->power != VM_POWER_RUNNING && spec->power != VM_POWER_STOPPED)
        return verr_set(e, 400, "InvalidParameterValue", "%s: desired power must be running or stopped", spec->id);
    return d->ops->ensure(d->priv, spec, e);
}

int vm_driver_list(vm_driver_t *d, vm_status_t **out, size_t *n, verr_t *e)
{
    *out = NULL;
    *n = 0;
    return d->ops->list(d->priv, out, n, e);
}

int vm_driver_remove(vm_driver_t *d, const char *id, verr_t *e)
{
    if (!vm_id_valid(id))
        return verr_set(e, 400, "InvalidParameterValue", "'%s' is not an instance id", id ? id : "");
    return d->ops->remove(d->priv, id, e);
}

int vm_driver_console(vm_driver_t *d, const char *id, size_t max, char **buf, size_t *len, uint64_t *total,
                      verr_t *e)
{
    if (!vm_id_valid(id))
        return verr_set(e, 400, "InvalidParameterValue", "'%s' is not an instance id", id ? id : "");
    return d->ops->console(d->priv, id, max, buf, len, total, e);
}

int vm_driver_export(vm_driver_t *d, const char *id, const char *path, int pause, verr_t *e)
{
    if (!vm_id_valid(id))
        return verr_set(e, 400, "InvalidParameterValue", "'%s' is not an instance id", id ? id : "");
    if (!d->ops->export_disk)
        return verr_set(e, 400, "UnsupportedOperation", "the %s driver cannot export an instance", d->ops->name);
    return d->ops->export_disk(d->priv, id, path, pause, e);
}

void vm_driver_close(vm_driver_t *d)
{
    if (!d)
        return;
    d->ops->close(d->priv);
    free(d);
}
