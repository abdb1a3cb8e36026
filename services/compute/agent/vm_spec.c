/* vm_spec.c - one instance of compute.host_instances (docs/compute.md) into a vm_spec_t.
 * The document comes from compute, but it names files, namespaces and cgroups on this
 * host, so every field is checked here, once, before a driver sees it. */
#include "vm_spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"

static int copy_str(const json_t *o, const char *key, char *out, size_t n, int required, const char *id, verr_t *e)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        out[0] = 0;
        return required ? verr_set(e, 400, "InvalidParameterValue", "%s: no %s", id, key) : 0;
    }
    if (!json_is_string(v) || json_string_length(v) >= n)
        return verr_set(e, 400, "InvalidParameterValue", "%s: %s must be a string shorter than %zu", id, key, n);
    snprintf(out, n, "%s", json_string_value(v));
    return 0;
}

/* Names that end up in paths and device names: letters, digits, '-', '_', '.', ':'. */
static int plain(const char *s)
{
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:", *s))
            return 0;
    return 1;
}

static int parse_file(const json_t *o, vm_file_t *f, const char *what, const char *id, verr_t *e)
{
    memset(f, 0, sizeof *f);
    if (!o || json_is_null(o))
        return 0;
    if (!json_is_object(o))
        return verr_set(e, 400, "InvalidParameterValue", "%s: %s must be an object", id, what);
    const char *url = json_str(o, "url", NULL);
    json_int_t size = json_int(o, "size", -1);
    if (copy_str(o, "sha256", f->sha256, sizeof f->sha256, 1, id, e) < 0 ||
        copy_str(o, "format", f->format, sizeof f->format, 0, id, e) < 0 ||
        copy_str(o, "type", f->type, sizeof f->type, 0, id, e) < 0)
        return -1;
    if (!url || size < 0 || strlen(f->sha256) != 64)
        return verr_set(e, 400, "InvalidParameterValue", "%s: %s needs url, sha256 and size", id, what);
    if (!plain(f->format) || !plain(f->type))
        return verr_set(e, 400, "InvalidParameterValue", "%s: %s has a bad format or type", id, what);
    f->url = xstrdup(url);
    f->size = (uint64_t)size;
    return 0;
}

/* The launch block (ec2 instances only). Its values go to the public cloud as request
 * parameters (form-encoded there), never into paths, so only their size is bounded. */
static int parse_launch(const json_t *o, vm_spec_t *s, verr_t *e)
{
    vm_launch_t *l = &s->launch;
    if (!o || json_is_null(o))
        return 0;
    if (!json_is_object(o))
        return verr_set(e, 400, "InvalidParameterValue", "%s: launch must be an object", s->id);
    if (copy_str(o, "account_id", l->account, sizeof l->account, 0, s->id, e) < 0 ||
        copy_str(o, "key_name", l->key_name, sizeof l->key_name, 0, s->id, e) < 0)
        return -1;
    const char *ud = json_str(o, "user_data", ""), *pk = json_str(o, "public_key", "");
    if (strlen(ud) > 64 * 1024 || strlen(pk) > 16 * 1024)
        return verr_set(e, 400, "InvalidParameterValue", "%s: user_data or public_key too long", s->id);
    l->user_data = *ud ? xstrdup(ud) : NULL;
    l->public_key = *pk ? xstrdup(pk) : NULL;
    size_t i;
    const json_t *g;
    json_array_foreach(json_object_get(o, "groups"), i, g) {
        if (l->n_groups == VM_MAX_GROUPS)
            break;
        if (copy_str(g, "groupId", l->group_ids[l->n_groups], sizeof l->group_ids[0], 0, s->id, e) < 0 ||
            copy_str(g, "groupName", l->group_names[l->n_groups], sizeof l->group_names[0], 0, s->id, e) < 0)
            return -1;
        l->n_groups++;
    }
    return 0;
}

int vm_spec_parse(const json_t *o, vm_spec_t *s, verr_t *e)
{
    memset(s, 0, sizeof *s);
    if (!json_is_object(o))
        return verr_set(e, 400, "InvalidParameterValue", "an instance must be an object");
    if (copy_str(o, "instance_id", s->id, sizeof s->id, 1, "instance", e) < 0)
        return -1;
    if (!vm_id_valid(s->id))
        return verr_set(e, 400, "InvalidParameterValue", "'%s' is not an instance id", s->id);
    const char *power = json_str(o, "power", "running");
    int p = vm_power_parse(power);
    if (p != VM_POWER_RUNNING && p != VM_POWER_STOPPED)
        return verr_set(e, 400, "InvalidParameterValue", "%s: power '%s'", s->id, power);
    s->power = (vm_power_t)p;
    json_int_t seq = json_int(o, "reboot_seq", 0);
    s->reboot_seq = seq > 0 ? (uint64_t)seq : 0;
    s->vcpus = (int)json_int(o, "vcpus", 1);
    s->memory_mib = (int)json_int(o, "memory_mib", 128);
    s->disk_gib = (int)json_int(o, "disk_gib", 0);
    if (s->vcpus < 1 || s->vcpus > 1024 || s->memory_mib < 1 || s->memory_mib > 16 * 1024 * 1024 ||
        s->disk_gib < 0 || s->disk_gib > 65536)
        return verr_set(e, 400, "InvalidParameterValue", "%s: vcpus, memory_mib or disk_gib out of range", s->id);
    if (copy_str(o, "driver", s->driver, sizeof s->driver, 1, s->id, e) < 0 ||
        copy_str(o, "hostname", s->hostname, sizeof s->hostname, 0, s->id, e) < 0)
        return -1;
    if (copy_str(json_object_get(o, "image"), "image_id", s->image_id, sizeof s->image_id, 0, s->id, e) < 0 ||
        copy_str(o, "instance_type", s->instance_type, sizeof s->instance_type, 0, s->id, e) < 0)
        return -1;
    if (!plain(s->image_id) || !plain(s->instance_type))
        return verr_set(e, 400, "InvalidParameterValue", "%s: bad image id or instance type", s->id);
    if (!plain(s->hostname))
        return verr_set(e, 400, "InvalidParameterValue", "%s: bad hostname", s->id);
    if (parse_file(json_object_get(o, "image"), &s->image, "image", s->id, e) < 0 ||
        parse_file(json_object_get(o, "kernel"), &s->kernel, "kernel", s->id, e) < 0 ||
        parse_file(json_object_get(o, "ramdisk"), &s->ramdisk, "ramdisk", s->id, e) < 0 ||
        parse_launch(json_object_get(o, "launch"), s, e) < 0) {
        vm_spec_clear(s);
        return -1;
    }
    const json_t *ifs = json_object_get(o, "interfaces");
    size_t i;
    const json_t *it;
    json_array_foreach(ifs, i, it) {
        if (i >= VM_MAX_IFACES) {
            vm_spec_clear(s);
            return verr_set(e, 400, "InvalidParameterValue", "%s: more than %d interfaces", s->id, VM_MAX_IFACES);
        }
        vm_iface_t *f = &s->ifaces[i];
        if (copy_str(it, "eni_id", f->eni_id, sizeof f->eni_id, 1, s->id, e) < 0 ||
            copy_str(it, "device", f->device, sizeof f->device, 0, s->id, e) < 0 ||
            copy_str(it, "mac", f->mac, sizeof f->mac, 0, s->id, e) < 0 ||
            copy_str(it, "ip", f->ip, sizeof f->ip, 0, s->id, e) < 0 ||
            copy_str(it, "gateway", f->gateway, sizeof f->gateway, 0, s->id, e) < 0 ||
            copy_str(it, "vpc_id", f->vpc_id, sizeof f->vpc_id, 0, s->id, e) < 0) {
            vm_spec_clear(s);
            return -1;
        }
        if (!plain(f->eni_id) || !plain(f->device) || !plain(f->mac) || !plain(f->ip)) {
            vm_spec_clear(s);
            return verr_set(e, 400, "InvalidParameterValue", "%s: bad interface names", s->id);
        }
        f->prefix_len = (int)json_int(it, "prefix_len", 0);
        s->n_ifaces = i + 1;
    }
    return 0;
}

static void clear_file(vm_file_t *f)
{
    free(f->url);
    f->url = NULL;
}

void vm_spec_clear(vm_spec_t *s)
{
    clear_file(&s->image);
    clear_file(&s->kernel);
    clear_file(&s->ramdisk);
    free(s->launch.user_data);
    free(s->launch.public_key);
    s->launch.user_data = s->launch.public_key = NULL;
}

static void copy_file(vm_file_t *d, const vm_file_t *s)
{
    *d = *s;
    d->url = s->url ? xstrdup(s->url) : NULL;
}

void vm_spec_copy(vm_spec_t *dst, const vm_spec_t *src)
{
    *dst = *src;
    copy_file(&dst->image, &src->image);
    copy_file(&dst->kernel, &src->kernel);
    copy_file(&dst->ramdisk, &src->ramdisk);
    dst->launch.user_data = src->launch.user_data ? xstrdup(src->launch.user_data) : NULL;
    dst->launch.public_key = src->launch.public_key ? xstrdup(src->launch.public_key) : NULL;
}
