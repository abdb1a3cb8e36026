/* host_inventory.c - what this host offers, for compute.host_report: the config's
 * agent.vcpus / memory_mib / disk_gib / zone, else the machine's own figures, and the
 * drivers that opened. A host offering `sim` says so ("simulated": true): its capacity
 * is whatever the config claims, for scale tests only. */
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "instance_sync_int.h"

json_t *instance_sync_inventory(instance_sync_t *s)
{
    const config_t *c = s->cfg;
    long vcpus = sysconf(_SC_NPROCESSORS_ONLN);
    struct sysinfo si;
    long mem_mib = sysinfo(&si) == 0 ? (long)((unsigned long long)si.totalram * si.mem_unit >> 20) : 0;
    struct statvfs vf;
    long disk_gib = statvfs(s->state_dir, &vf) == 0 ? (long)(((unsigned long long)vf.f_blocks * vf.f_frsize) >> 30) : 0;
    char zone[80];
    snprintf(zone, sizeof zone, "%sa", c ? config_str(c, "region", "us-east-1") : "us-east-1");
    if (c) {
        vcpus = config_int(c, "agent.vcpus", vcpus);
        mem_mib = config_int(c, "agent.memory_mib", mem_mib);
        disk_gib = config_int(c, "agent.disk_gib", disk_gib);
        snprintf(zone, sizeof zone, "%s", config_str(c, "agent.zone", zone));
    }
    json_t *drivers = json_array();
    int simulated = 0;
    for (size_t d = 0; d < s->n_drv; d++) {
        json_array_append_new(drivers, json_string(s->drv_name[d]));
        simulated |= !!(s->drv[d]->ops->flags & VM_DRV_SIMULATED);
    }
    json_t *inv = json_pack("{s:I, s:I, s:I, s:o, s:s, s:{}, s:i}", "vcpus", (json_int_t)vcpus, "memory_mib",
                            (json_int_t)mem_mib, "disk_gib", (json_int_t)disk_gib, "drivers", drivers, "zone", zone,
                            "labels", "max_parallel_boots", s->max_boots);
    if (simulated)
        json_object_set_new(inv, "simulated", json_true());
    for (size_t d = 0; d < s->n_drv; d++)
        if (s->drv[d]->ops->inventory)
            s->drv[d]->ops->inventory(s->drv[d]->priv, inv);
    return inv;
}
