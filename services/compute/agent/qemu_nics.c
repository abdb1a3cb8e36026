/* qemu_nics.c - the interfaces of a running QEMU guest, plugged in and taken out while it
 * runs (AttachNetworkInterface / DetachNetworkInterface of a running instance).
 *
 * A tap is the guest's interface once QEMU has a tap backend on it (netdev "nd-<tap>")
 * and a virtio-net-pci device on that backend (device "nic-<tap>"): at the start both are
 * on QEMU's command line, while it runs they come and go over QMP (netdev_add and
 * device_add; device_del and netdev_del). The guest sees a PCI device arrive or leave
 * (ACPI hot-plug of the default i440fx machine); configuring it is the guest's business,
 * as on EC2.
 *
 * <inst>/nics records what the running QEMU has: its start time on the first line, then
 * one "tap netdev-id device-id" line per interface. A record of another QEMU (none, or a
 * start time that is not this one's) is rebuilt from the command line, which is what a
 * QEMU had before anything was plugged; should a plug or unplug since have been lost with
 * the record, doing it again is harmless (an id QEMU already has or no longer knows is
 * taken as done), so the record needs no fsync.
 *
 * Taken out, the backend goes at once with the device's removal only asked of the guest:
 * the tap is closed, so the datapath may delete it without the guest counting as cut off
 * from it (qemu_driver.c's tap_lost). The device stays in the record as leaving (a fourth
 * field: when it was asked out, "w" once said) until QEMU no longer lists it (QMP
 * qom-list of /machine/peripheral: QEMU emits DEVICE_DELETED when the guest lets go, but
 * these connections carry one command each and see no events). A guest that ignores the
 * ACPI eject keeps it, a NIC with no backend: past QEMU_NIC_LEAVING_S the agent logs it
 * once; its next stop ends it (a start builds the command line from the spec). Until it
 * is gone, the same tap is not plugged in again (device_add of its id would answer
 * Duplicate, which counted as done: the guest kept the dead NIC and the record said
 * plugged). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"
#include "log.h"
#include "qemu.h"

#define QMP_TIMEOUT_MS 5000

void qemu_nic_ids(const char *tap, qemu_nic_t *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->tap, sizeof out->tap, "%s", tap);
    snprintf(out->netdev, sizeof out->netdev, "nd-%s", tap);
    snprintf(out->device, sizeof out->device, "nic-%s", tap);
}

/* The value of key in a QEMU option string ("tap,id=n0,ifname=vt-1"), or "". */
static void opt_of(const char *opts, const char *key, char *out, size_t n)
{
    out[0] = 0;
    size_t k = strlen(key);
    for (const char *p = opts; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        if (!strncmp(p, key, k) && p[k] == '=') {
            const char *v = p + k + 1;
            snprintf(out, n, "%.*s", (int)strcspn(v, ","), v);
            return;
        }
    }
}

/* From the command line of the QEMU with pid: its -netdev tap and their -device. */
static void from_cmdline(pid_t pid, qemu_nics_t *out)
{
    char p[64], cmd[16384];
    snprintf(p, sizeof p, "/proc/%d/cmdline", (int)pid);
    ssize_t r = vm_read_small(p, cmd, sizeof cmd);
    if (r <= 0)
        return;
    const char *argv[512];
    size_t argc = 0;
    for (ssize_t i = 0; i < r && argc < ARRAY_LEN(argv); i += (ssize_t)strlen(cmd + i) + 1)
        argv[argc++] = cmd + i;
    for (size_t i = 0; i + 1 < argc && out->n < ARRAY_LEN(out->v); i++) {
        if (strcmp(argv[i], "-netdev") || strncmp(argv[i + 1], "tap,", 4))
            continue;
        qemu_nic_t *x = &out->v[out->n];
        memset(x, 0, sizeof *x);
        opt_of(argv[i + 1], "ifname", x->tap, sizeof x->tap);
        opt_of(argv[i + 1], "id", x->netdev, sizeof x->netdev);
        if (!x->tap[0] || !x->netdev[0])
            continue;
        for (size_t j = 0; j + 1 < argc; j++) {
            char nd[32];
            if (strcmp(argv[j], "-device"))
                continue;
            opt_of(argv[j + 1], "netdev", nd, sizeof nd);
            if (!strcmp(nd, x->netdev))
                opt_of(argv[j + 1], "id", x->device, sizeof x->device);   /* "": an older start's, no id */
        }
        out->n++;
    }
}

void qemu_nics_read(const char *inst, const vm_state_t *st, qemu_nics_t *out)
{
    memset(out, 0, sizeof *out);
    out->start_time = st->start_time;
    char p[PATH_MAX + 16], buf[4096];
    vm_pathf(p, sizeof p, "%s/nics", inst);
    ssize_t r = vm_read_small(p, buf, sizeof buf);
    char *save = NULL, *line = r > 0 ? strtok_r(buf, "\n", &save) : NULL;
    if (!line || strtoull(line, NULL, 10) != st->start_time) {
        from_cmdline(st->pid, out);
        verr_t ig;
        qemu_nics_write(inst, out, &ig);
        return;
    }
    while ((line = strtok_r(NULL, "\n", &save)) && out->n < ARRAY_LEN(out->v)) {
        qemu_nic_t *x = &out->v[out->n];
        char dev[40] = "", leaving[32] = "";
        memset(x, 0, sizeof *x);
        int got = sscanf(line, "%15s %31s %39s %31s", x->tap, x->netdev, dev, leaving);
        if (got >= 3) {
            snprintf(x->device, sizeof x->device, "%s", strcmp(dev, "-") ? dev : "");
            if (got == 4) {
                x->leaving = strtoull(leaving, NULL, 10);
                x->warned = strchr(leaving, 'w') != NULL;
            }
            out->n++;
        }
    }
}

int qemu_nics_write(const char *inst, const qemu_nics_t *n, verr_t *e)
{
    char p[PATH_MAX + 16], buf[4096];
    size_t k = (size_t)snprintf(buf, sizeof buf, "%llu\n", (unsigned long long)n->start_time);
    for (size_t i = 0; i < n->n && k < sizeof buf; i++) {
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s %s %s", n->v[i].tap, n->v[i].netdev,
                              n->v[i].device[0] ? n->v[i].device : "-");
        if (n->v[i].leaving && k < sizeof buf)
            k += (size_t)snprintf(buf + k, sizeof buf - k, " %llu%s", (unsigned long long)n->v[i].leaving,
                                  n->v[i].warned ? "w" : "");
        if (k < sizeof buf)
            buf[k++] = '\n';
    }
    if (k >= sizeof buf)
        return verr_set(e, 500, "InternalError", "too many interfaces to record");
    vm_pathf(p, sizeof p, "%s/nics", inst);
    return vm_write_file(p, buf, k, VM_WRITE_RUNTIME, e);
}

uint64_t qemu_nics_sig(const qemu_nics_t *n)
{
    uint64_t sig = 0;
    for (size_t i = 0; i < n->n; i++) {
        if (!n->v[i].leaving)
            sig = vm_nics_sig_add(sig, n->v[i].tap);
        else if (!n->v[i].warned)   /* not what any spec has: the loop comes back to look */
            sig = vm_nics_sig_add(sig, n->v[i].device);
    }
    return sig;
}

/* The entry of tap, in use (leaving 0) or leaving (1), or NULL. */
static qemu_nic_t *entry_of(qemu_nics_t *n, const char *tap, int leaving)
{
    for (size_t i = 0; i < n->n; i++)
        if (!strcmp(n->v[i].tap, tap) && !n->v[i].leaving == !leaving)
            return &n->v[i];
    return NULL;
}

static int has_tap(const qemu_nics_t *n, const char *tap)
{
    return entry_of((qemu_nics_t *)n, tap, 0) != NULL;
}

static int in_spec(const vm_spec_t *s, const char *tap)
{
    for (size_t i = 0; i < s->n_ifaces; i++)
        if (!strcmp(s->ifaces[i].device, tap))
            return 1;
    return 0;
}

int qemu_nics_missing(const qemu_nics_t *n, const vm_spec_t *s)
{
    for (size_t i = 0; i < s->n_ifaces; i++)
        if (!has_tap(n, s->ifaces[i].device))
            return 1;
    return 0;
}

/* One QMP command with one id argument; an answer that says QEMU has no such object (or
 * already one: what) counts as done. */
static int qmp_idempotent(const char *qmp, const char *cmd, json_t *args, const char *done_when, verr_t *e)
{
    verr_t err = {0};
    int rc = qemu_qmp_args(qmp, cmd, args, QMP_TIMEOUT_MS, &err);
    json_decref(args);
    if (rc == 0 || strstr(err.message, done_when))
        return 0;
    *e = err;
    return -1;
}

/* The leaving devices QEMU no longer has are gone; one kept past QEMU_NIC_LEAVING_S is
 * said once. QEMU not answering changes nothing (the next pass asks again). */
static void leaving_check(const char *id, const char *qmp, qemu_nics_t *have)
{
    size_t n = 0;
    for (size_t i = 0; i < have->n; i++)
        n += have->v[i].leaving != 0;
    if (!n)
        return;
    JSON_AUTO json_t *list = NULL;
    verr_t e;
    if (qemu_qmp_value(qmp, "qom-list", json_pack("{s:s}", "path", "/machine/peripheral"), QMP_TIMEOUT_MS, &list,
                       &e) < 0 || !json_is_array(list))
        return;
    uint64_t now = (uint64_t)time(NULL);
    for (size_t i = 0; i < have->n;) {
        qemu_nic_t *x = &have->v[i];
        int still = 0;
        size_t k;
        json_t *o;
        json_array_foreach(list, k, o)
            still |= !strcmp(json_str(o, "name", ""), x->device);
        if (x->leaving && !still) {
            have->v[i] = have->v[--have->n];
            continue;
        }
        if (x->leaving && !x->warned && now >= x->leaving + QEMU_NIC_LEAVING_S) {
            log_warn("%s: the guest has kept device %s (interface %s, taken out) for %llu s: it has no backend, and "
                     "goes at the instance's next stop; the interface is not plugged in again before", id, x->device,
                     x->tap, (unsigned long long)(now - x->leaving));
            x->warned = 1;
        }
        i++;
    }
}

static int unplug(const char *qmp, const qemu_nic_t *x, verr_t *e)
{
    /* the device's removal is asked of the guest (it answers in its own time); the
     * backend goes now */
    if (x->device[0] &&
        qmp_idempotent(qmp, "device_del", json_pack("{s:s}", "id", x->device), "not found", e) < 0)
        return -1;
    return qmp_idempotent(qmp, "netdev_del", json_pack("{s:s}", "id", x->netdev), "not found", e);
}

static int plug(const char *qmp, const vm_iface_t *f, qemu_nic_t *x, verr_t *e)
{
    qemu_nic_ids(f->device, x);
    if (qmp_idempotent(qmp, "netdev_add", json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "tap", "id", x->netdev,
                                                    "ifname", f->device, "script", "no", "downscript", "no"),
                       "Duplicate", e) < 0)
        return -1;
    json_t *dev = json_pack("{s:s, s:s, s:s}", "driver", "virtio-net-pci", "netdev", x->netdev, "id", x->device);
    if (f->mac[0])
        json_object_set_new(dev, "mac", json_string(f->mac));
    return qmp_idempotent(qmp, "device_add", dev, "Duplicate", e);
}

int qemu_nics_converge(const char *inst, const char *qmp, const vm_spec_t *s, qemu_nics_t *have, verr_t *e)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < have->n;) {
        qemu_nic_t *x = &have->v[i];
        if (x->leaving || in_spec(s, x->tap)) {
            i++;
            continue;
        }
        log_info("%s: taking interface %s out of the running guest", s->id, x->tap);
        rc = unplug(qmp, x, e);
        if (rc == 0 && x->device[0]) {   /* its device is the guest's to let go of */
            x->leaving = (uint64_t)time(NULL);
            i++;
        } else if (rc == 0) {            /* an older start's, with no id to follow */
            have->v[i] = have->v[--have->n];
        }
    }
    leaving_check(s->id, qmp, have);
    for (size_t i = 0; rc == 0 && i < s->n_ifaces; i++) {
        if (has_tap(have, s->ifaces[i].device) || entry_of(have, s->ifaces[i].device, 1))
            continue;
        if (have->n >= ARRAY_LEN(have->v)) {
            rc = verr_set(e, 500, "InternalError", "%s: too many interfaces", s->id);
            break;
        }
        log_info("%s: plugging interface %s into the running guest", s->id, s->ifaces[i].device);
        rc = plug(qmp, &s->ifaces[i], &have->v[have->n], e);
        if (rc == 0)
            have->n++;
    }
    verr_t ig;
    if (qemu_nics_write(inst, have, rc < 0 ? &ig : e) < 0 && rc == 0)
        return -1;
    return rc;
}
