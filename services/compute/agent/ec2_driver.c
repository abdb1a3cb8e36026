/* ec2_driver.c - the `ec2` driver: instances run in a public EC2-compatible region
 * (docs/hybrid.md). The agent that offers it stands for the region (its host id is the
 * region's cloud name, agent.ec2.cloud, and its inventory is the region's limits).
 *
 * Level-triggered like every driver, with the remote cloud as the state that matters:
 * every instance this cloud launches carries the tags virga:owner (`<hybrid.owner>/<cloud>`:
 * which private cloud, which of its regions) and virga:instance-id (the local id), set atomically by RunInstances,
 * so list() is one DescribeInstances filtered by the owner tag, and a restarted or
 * killed agent finds exactly what runs. RunInstances carries a ClientToken derived from
 * the owner and the local id, so a retried request (an answer lost to a timeout) never
 * makes a second instance; should a remote cloud ignore tokens, list() terminates every
 * instance but one that claims the same local id. Instances listed and not desired (an
 * orphan of a crash, an instance terminated locally) are removed by the sync loop like
 * any other driver's: that is the reconciler.
 *
 * The state dir keeps, per instance, what was applied (reboot_seq, vm_state.c), the
 * remote id, and the console text last fetched. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ec2_api.h"
#include "log.h"
#include "vm_state.h"

#define MAX_PAGES 100

typedef struct ec2 {
    ec2_client_t *cl;
    char dir[PATH_MAX];
    char cloud[64], owner[128];
    const config_t *cfg;
    int boot_timeout_s, poll_ms, console_refresh_s;
    long max_instances, max_vcpus, max_memory_mib;
    const _Atomic int *cancel;
} ec2_t;

static long cloud_int(const ec2_t *d, const char *key, long def)
{
    char k[256];
    snprintf(k, sizeof k, "hybrid.clouds.%s.%s", d->cloud, key);
    return d->cfg ? config_int(d->cfg, k, def) : def;
}

static void *ec2_open(const vm_driver_cfg_t *c, verr_t *e)
{
    if (!c->cfg) {
        verr_set(e, 400, "InvalidParameterValue", "the ec2 driver needs the hybrid.* config");
        return NULL;
    }
    ec2_t *d = xcalloc(1, sizeof *d);
    d->cfg = c->cfg;
    d->cancel = c->cancel;
    snprintf(d->dir, sizeof d->dir, "%s", c->state_dir);
    snprintf(d->cloud, sizeof d->cloud, "%s", config_str(c->cfg, "agent.ec2.cloud", c->host_id));
    /* which private cloud and which of its regions: two regions on one account (or one
     * endpoint) never list, adopt or reap each other's instances */
    snprintf(d->owner, sizeof d->owner, "%.60s/%s", config_str(c->cfg, "hybrid.owner", "virga"), d->cloud);
    d->boot_timeout_s = (int)cloud_int(d, "boot_timeout_s", 120);
    d->poll_ms = (int)cloud_int(d, "poll_ms", 500);
    d->console_refresh_s = (int)cloud_int(d, "console_refresh_s", 30);
    d->max_instances = cloud_int(d, "max_instances", 0);
    d->max_vcpus = cloud_int(d, "max_vcpus", 64);
    d->max_memory_mib = cloud_int(d, "max_memory_mib", d->max_vcpus * 16384);
    if (d->poll_ms < 10 || d->max_vcpus < 1 || d->max_instances < 0 || d->max_memory_mib < 1) {
        verr_set(e, 400, "InvalidParameterValue", "hybrid.clouds.%s: poll_ms, max_vcpus, max_instances or "
                 "max_memory_mib out of range", d->cloud);
        free(d);
        return NULL;
    }
    if (!(d->cl = ec2_client_open(c->cfg, d->cloud, c->cancel, e))) {
        free(d);
        return NULL;
    }
    log_info("ec2: cloud %s at %s, owner tag %s, limits %ld instances / %ld vCPUs", d->cloud,
             ec2_client_endpoint(d->cl), d->owner, d->max_instances, d->max_vcpus);
    return d;
}

static void ec2_close(void *p)
{
    ec2_t *d = p;
    if (!d)
        return;
    ec2_client_close(d->cl);
    free(d);
}

static void ec2_inventory(void *p, json_t *inv)
{
    ec2_t *d = p;
    json_object_set_new(inv, "cloud", json_string(d->cloud));
    json_object_set_new(inv, "max_instances", json_integer(d->max_instances));
    json_object_set_new(inv, "vcpus", json_integer(d->max_vcpus));
    json_object_set_new(inv, "memory_mib", json_integer(d->max_memory_mib));
    json_object_set_new(inv, "disk_gib", json_integer(0));   /* the region's disks: not limited here */
    char k[256];
    snprintf(k, sizeof k, "hybrid.clouds.%s.zone", d->cloud);
    const char *zone = config_str(d->cfg, k, NULL);   /* else agent.zone, like any host */
    if (zone && *zone)
        json_object_set_new(inv, "zone", json_string(zone));
}

static void owner_filter(const ec2_t *d, ec2_params_t *p)
{
    ec2_param(p, "Filter.1.Name", "tag:virga:owner");
    ec2_param(p, "Filter.1.Value.1", d->owner);
}

static int alive(const ec2_instance_t *x)
{
    return strcmp(x->state, "terminated") && strcmp(x->state, "shutting-down");
}

/* Every live remote instance of this owner (and of one local id when id is given). */
static int remote_all(ec2_t *d, const char *id, ec2_instance_t **out, size_t *n, verr_t *e)
{
    *out = NULL;
    *n = 0;
    char next[1024] = "";
    for (int page = 0; page < MAX_PAGES; page++) {
        ec2_params_t p = {0};
        owner_filter(d, &p);
        if (id) {
            ec2_param(&p, "Filter.2.Name", "tag:virga:instance-id");
            ec2_param(&p, "Filter.2.Value.1", id);
        }
        if (next[0])
            ec2_param(&p, "NextToken", next);
        ec2_instance_t *v = NULL;
        size_t k = 0;
        int rc = ec2_call_instances(d->cl, "DescribeInstances", &p, &v, &k, next, sizeof next, e);
        ec2_params_free(&p);
        if (rc < 0) {
            free(*out);
            *out = NULL;
            *n = 0;
            return -1;
        }
        for (size_t i = 0; i < k; i++) {
            /* filters are the remote's: check what came back */
            if (!alive(&v[i]) || strcmp(v[i].owner_tag, d->owner) || (id && strcmp(v[i].local_id, id)))
                continue;
            *out = xrealloc(*out, (*n + 1) * sizeof **out);
            (*out)[(*n)++] = v[i];
        }
        free(v);
        if (!next[0])
            break;
    }
    return 0;
}

static void inst_file(const ec2_t *d, const char *id, const char *name, char *out, size_t n)
{
    vm_pathf(out, n, "%s/%s/%s", d->dir, id, name);
}

/* The remote id this agent recorded for id ("" when none). */
static void recorded_remote(const ec2_t *d, const char *id, char *out, size_t n)
{
    char path[PATH_MAX + 64], *buf = NULL;
    size_t len = 0;
    uint64_t total = 0;
    verr_t e;
    out[0] = 0;
    inst_file(d, id, "remote", path, sizeof path);
    if (vm_file_tail(path, 64, &buf, &len, &total, &e) == 0 && len)
        snprintf(out, n, "%.*s", (int)strcspn(buf, "\n"), buf);
    free(buf);
}

/* Of several remote instances claiming one local id (a remote cloud that ignored the
 * ClientToken), the one recorded, else the lowest id, is kept. */
static size_t keeper(const ec2_t *d, const char *id, const ec2_instance_t *v, size_t n)
{
    char rec[32];
    recorded_remote(d, id, rec, sizeof rec);
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        if (rec[0] && !strcmp(v[i].id, rec))
            return i;
        if (strcmp(v[i].id, v[best].id) < 0)
            best = i;
    }
    return best;
}

static int terminate_ids(ec2_t *d, const char *const *ids, size_t n, verr_t *e)
{
    if (!n)
        return 0;
    ec2_params_t p = {0};
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "InstanceId.%zu", i + 1);
        ec2_param(&p, name, ids[i]);
    }
    int rc = ec2_call_instances(d->cl, "TerminateInstances", &p, NULL, NULL, NULL, 0, e);
    ec2_params_free(&p);
    return rc;
}

static int ec2_list(void *p, vm_status_t **out, size_t *n, verr_t *e)
{
    ec2_t *d = p;
    ec2_instance_t *v = NULL;
    size_t k = 0;
    if (remote_all(d, NULL, &v, &k, e) < 0)
        return -1;
    *out = xcalloc(k + 1, sizeof **out);
    *n = 0;
    for (size_t i = 0; i < k; i++) {
        if (!vm_id_valid(v[i].local_id) || !v[i].id[0])
            continue;   /* not one of ours to name: RunInstances always tags both */
        int dup = 0;
        for (size_t j = 0; j < *n && !dup; j++)
            dup = !strcmp((*out)[j].id, v[i].local_id);
        if (dup)
            continue;
        /* every instance claiming this local id: keep one, end the others */
        size_t m = 0;
        const char *extra[16];
        ec2_instance_t same[17];
        for (size_t j = i; j < k && m < 17; j++)
            if (!strcmp(v[j].local_id, v[i].local_id))
                same[m++] = v[j];
        size_t keep = keeper(d, v[i].local_id, same, m), ne = 0;
        for (size_t j = 0; j < m; j++)
            if (j != keep)
                extra[ne++] = same[j].id;
        verr_t te;
        if (ne) {
            log_warn("ec2 %s: %zu duplicate remote instance(s) of %s: terminating them", d->cloud, ne,
                     v[i].local_id);
            if (terminate_ids(d, extra, ne, &te) < 0)
                log_warn("ec2 %s: terminating duplicates of %s: %s %s", d->cloud, v[i].local_id, te.code, te.message);
        }
        const ec2_instance_t *x = &same[keep];
        vm_status_t *st = &(*out)[(*n)++];
        memset(st, 0, sizeof *st);
        snprintf(st->id, sizeof st->id, "%s", x->local_id);
        st->power = !strcmp(x->state, "running") ? VM_POWER_RUNNING
                    : !strcmp(x->state, "stopped") ? VM_POWER_STOPPED
                                                   : VM_POWER_STARTING;   /* pending, stopping */
        char dir[PATH_MAX];
        vm_state_t vs;
        vm_inst_dir(d->dir, st->id, dir, sizeof dir);
        if (vm_state_read(dir, &vs, NULL) == 0)
            st->reboot_seq = vs.reboot_seq;
        snprintf(st->remote.id, sizeof st->remote.id, "%s", x->id);
        snprintf(st->remote.public_ip, sizeof st->remote.public_ip, "%s", x->public_ip);
        snprintf(st->remote.private_ip, sizeof st->remote.private_ip, "%s", x->private_ip);
        snprintf(st->remote.state, sizeof st->remote.state, "%s", x->state);
    }
    free(v);
    return 0;
}

/* The remote image and type for the spec: hybrid.clouds.<cloud>.images.<ami> (else
 * .images.default), .instance_types.<type> (else the same name). */
static int map_spec(const ec2_t *d, const vm_spec_t *s, char *ami, size_t an, char *type, size_t tn, verr_t *e)
{
    char k[256];
    snprintf(k, sizeof k, "hybrid.clouds.%s.images.%s", d->cloud, s->image_id);
    const char *v = config_str(d->cfg, k, NULL);
    if (!v) {
        snprintf(k, sizeof k, "hybrid.clouds.%s.images.default", d->cloud);
        v = config_str(d->cfg, k, NULL);
    }
    if (!v || !*v)
        return verr_set(e, 400, "InvalidAMIID.NotFound", "no image of the public cloud %s for %s "
                        "(hybrid.clouds.%s.images)", d->cloud, s->image_id, d->cloud);
    snprintf(ami, an, "%s", v);
    snprintf(k, sizeof k, "hybrid.clouds.%s.instance_types.%s", d->cloud, s->instance_type);
    snprintf(type, tn, "%s", config_str(d->cfg, k, s->instance_type[0] ? s->instance_type : "t3.micro"));
    return 0;
}

/* The tenant's key pair at the public cloud, imported under a name of its own account,
 * key name and material (so a key deleted and made again with other material is a new
 * remote key): virga-<account>-<key name>-<8 hex of SHA-256(public key)>. Importing
 * again is fine: InvalidKeyPair.Duplicate is success. */
static int remote_key(ec2_t *d, const vm_launch_t *l, char *name, size_t n, verr_t *e)
{
    name[0] = 0;
    if (!l->key_name[0] || !l->public_key)
        return 0;
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[17];
    crypto_hash_sha256(h, (const unsigned char *)l->public_key, strlen(l->public_key));
    sodium_bin2hex(hex, sizeof hex, h, 4);
    snprintf(name, n, "virga-%s-%.200s-%s", l->account, l->key_name, hex);
    size_t pl = strlen(l->public_key), bl = sodium_base64_ENCODED_LEN(pl, sodium_base64_VARIANT_ORIGINAL);
    AUTOFREE char *b64 = xmalloc(bl);
    sodium_bin2base64(b64, bl, (const unsigned char *)l->public_key, pl, sodium_base64_VARIANT_ORIGINAL);
    ec2_params_t p = {0};
    ec2_param(&p, "KeyName", name);
    ec2_param(&p, "PublicKeyMaterial", b64);
    int rc = ec2_call_instances(d->cl, "ImportKeyPair", &p, NULL, NULL, NULL, 0, e);
    ec2_params_free(&p);
    if (rc < 0 && !strcmp(e->code, "InvalidKeyPair.Duplicate"))
        rc = 0;
    return rc;
}

/* The remote security groups of the local ones: hybrid.clouds.<cloud>.security_groups.
 * <local group id>, else .<local group name>, else .default; sg-... is a group id there,
 * anything else a group name. None mapped: the region's default group. */
static void remote_groups(const ec2_t *d, const vm_launch_t *l, ec2_params_t *p)
{
    const char *seen[VM_MAX_GROUPS];
    size_t n = 0;
    for (size_t i = 0; i < l->n_groups; i++) {
        const char *v = NULL, *keys[] = {l->group_ids[i], l->group_names[i], "default"};
        for (size_t k = 0; k < 3 && !v; k++) {
            char key[512];
            if (!keys[k][0])
                continue;
            snprintf(key, sizeof key, "hybrid.clouds.%s.security_groups.%s", d->cloud, keys[k]);
            v = config_str(d->cfg, key, NULL);
            v = v && *v ? v : NULL;
        }
        int dup = !v;
        for (size_t j = 0; j < n && !dup; j++)
            dup = !strcmp(seen[j], v);
        if (dup)
            continue;
        seen[n++] = v;
        char name[48];
        snprintf(name, sizeof name, "%s.%zu", strncmp(v, "sg-", 3) ? "SecurityGroup" : "SecurityGroupId", n);
        ec2_param(p, name, v);
    }
}

static int run_remote(ec2_t *d, const vm_spec_t *s, ec2_instance_t *out, verr_t *e)
{
    char ami[128], type[64], token[65], seed[256];
    if (map_spec(d, s, ami, sizeof ami, type, sizeof type, e) < 0)
        return -1;
    /* the same local instance always sends the same token: a retry never makes two */
    unsigned char h[crypto_hash_sha256_BYTES];
    int sl = snprintf(seed, sizeof seed, "%s/%s", d->owner, s->id);
    crypto_hash_sha256(h, (const unsigned char *)seed, (unsigned long long)sl);
    memcpy(token, "virga-", 6);
    sodium_bin2hex(token + 6, sizeof token - 6, h, 16);
    char key[320];
    if (remote_key(d, &s->launch, key, sizeof key, e) < 0)
        return -1;
    ec2_params_t p = {0};
    ec2_param(&p, "ImageId", ami);
    if (key[0])
        ec2_param(&p, "KeyName", key);
    if (s->launch.user_data)
        ec2_param(&p, "UserData", s->launch.user_data);
    remote_groups(d, &s->launch, &p);
    ec2_param(&p, "InstanceType", type);
    ec2_param(&p, "MinCount", "1");
    ec2_param(&p, "MaxCount", "1");
    ec2_param(&p, "ClientToken", token);
    ec2_param(&p, "TagSpecification.1.ResourceType", "instance");
    ec2_param(&p, "TagSpecification.1.Tag.1.Key", "virga:owner");
    ec2_param(&p, "TagSpecification.1.Tag.1.Value", d->owner);
    ec2_param(&p, "TagSpecification.1.Tag.2.Key", "virga:instance-id");
    ec2_param(&p, "TagSpecification.1.Tag.2.Value", s->id);
    ec2_param(&p, "TagSpecification.1.Tag.3.Key", "Name");
    ec2_param(&p, "TagSpecification.1.Tag.3.Value", s->id);
    ec2_instance_t *v = NULL;
    size_t n = 0;
    int rc = ec2_call_instances(d->cl, "RunInstances", &p, &v, &n, NULL, 0, e);
    ec2_params_free(&p);
    if (rc == 0 && !n)
        rc = verr_set(e, 502, "PublicCloudError", "%s RunInstances answered no instance", d->cloud);
    if (rc == 0) {
        *out = v[0];
        log_info("ec2 %s: %s launched as %s (%s, %s)", d->cloud, s->id, out->id, ami, type);
    }
    free(v);
    return rc;
}

static int one_action(ec2_t *d, const char *action, const char *remote_id, verr_t *e)
{
    ec2_params_t p = {0};
    ec2_param(&p, "InstanceId.1", remote_id);
    int rc = ec2_call_instances(d->cl, action, &p, NULL, NULL, NULL, 0, e);
    ec2_params_free(&p);
    return rc;
}

/* Poll the remote instance until it is in state want (or gone, or the boot timeout, or
 * the agent stopping): 0 when reached, 1 when not (the next pass looks again). */
static int wait_state(ec2_t *d, const char *id, const char *want, ec2_instance_t *x, verr_t *e)
{
    int64_t end = vm_now_ms() + (int64_t)d->boot_timeout_s * 1000;
    while (strcmp(x->state, want)) {
        if (vm_now_ms() >= end || (d->cancel && atomic_load(d->cancel)))
            return 1;
        vm_sleep_ms(d->poll_ms);
        ec2_instance_t *v = NULL;
        size_t n = 0;
        if (remote_all(d, id, &v, &n, e) < 0)
            return -1;
        size_t k = n ? keeper(d, id, v, n) : 0;
        int found = n && !strcmp(v[k].id, x->id);
        if (found)
            *x = v[k];
        free(v);
        if (!found)
            return verr_set(e, 500, "InternalError", "%s: the remote instance %s of %s is gone", d->cloud, x->id, id);
    }
    return 0;
}

static int ec2_ensure(void *p, const vm_spec_t *spec, verr_t *e)
{
    ec2_t *d = p;
    char dir[PATH_MAX], path[PATH_MAX + 64];
    vm_inst_dir(d->dir, spec->id, dir, sizeof dir);
    vm_state_t st = {0};
    int have_state = vm_state_read(dir, &st, NULL) == 0;
    ec2_instance_t *v = NULL, x;
    size_t n = 0;
    if (remote_all(d, spec->id, &v, &n, e) < 0)
        return -1;
    if (n)
        x = v[keeper(d, spec->id, v, n)];
    free(v);
    if (vm_mkdirs(dir, 0700, e) < 0)
        return -1;
    if (!n && run_remote(d, spec, &x, e) < 0)
        return -1;
    if (!have_state)
        st.reboot_seq = spec->reboot_seq;   /* a new instance starts with the reboots it was asked */
    inst_file(d, spec->id, "remote", path, sizeof path);
    st.power = spec->power;
    if (vm_write_file(path, x.id, strlen(x.id), VM_WRITE_DURABLE, e) < 0 || vm_state_write(dir, &st, VM_WRITE_DURABLE, e) < 0)
        return -1;
    int rc;
    if (spec->power == VM_POWER_RUNNING) {
        if (!strcmp(x.state, "stopping") && (rc = wait_state(d, spec->id, "stopped", &x, e)) != 0)
            return rc < 0 ? -1 : 0;
        if (!strcmp(x.state, "stopped")) {
            if (one_action(d, "StartInstances", x.id, e) < 0)
                return -1;
            snprintf(x.state, sizeof x.state, "pending");
        } else if (spec->reboot_seq > st.reboot_seq && !strcmp(x.state, "running")) {
            if (one_action(d, "RebootInstances", x.id, e) < 0)
                return -1;
        }
        if (spec->reboot_seq > st.reboot_seq) {
            st.reboot_seq = spec->reboot_seq;
            if (vm_state_write(dir, &st, VM_WRITE_DURABLE, e) < 0)
                return -1;
        }
        return wait_state(d, spec->id, "running", &x, e) < 0 ? -1 : 0;
    }
    if (spec->reboot_seq > st.reboot_seq) {   /* only recorded while stopped */
        st.reboot_seq = spec->reboot_seq;
        if (vm_state_write(dir, &st, VM_WRITE_DURABLE, e) < 0)
            return -1;
    }
    if (!strcmp(x.state, "pending") && (rc = wait_state(d, spec->id, "running", &x, e)) != 0)
        return rc < 0 ? -1 : 0;
    if (!strcmp(x.state, "running") && one_action(d, "StopInstances", x.id, e) < 0)
        return -1;
    if (strcmp(x.state, "stopped"))
        snprintf(x.state, sizeof x.state, "stopping");
    return wait_state(d, spec->id, "stopped", &x, e) < 0 ? -1 : 0;
}

static int ec2_remove(void *p, const char *id, verr_t *e)
{
    ec2_t *d = p;
    ec2_instance_t *v = NULL;
    size_t n = 0;
    if (remote_all(d, id, &v, &n, e) < 0)
        return -1;
    const char *ids[64];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 64; i++)
        ids[k++] = v[i].id;
    int rc = terminate_ids(d, ids, k, e);
    if (rc == 0 && k)
        log_info("ec2 %s: %s terminated (%s%s)", d->cloud, id, ids[0], k > 1 ? " and duplicates" : "");
    free(v);
    if (rc < 0)
        return -1;
    char dir[PATH_MAX];
    vm_inst_dir(d->dir, id, dir, sizeof dir);
    return vm_rmtree(dir, e);
}

/* The remote console, fetched at most every console_refresh_s into <id>/console.log
 * (GetConsoleOutput is an API call, and the loop asks for the console every pass). */
static int ec2_console(void *p, const char *id, size_t max, char **buf, size_t *len, uint64_t *total, verr_t *e)
{
    ec2_t *d = p;
    char path[PATH_MAX + 64], rid[32];
    inst_file(d, id, "console.log", path, sizeof path);
    struct stat sb;
    int stale = stat(path, &sb) != 0 || time(NULL) - sb.st_mtime >= d->console_refresh_s;
    recorded_remote(d, id, rid, sizeof rid);
    if (stale && rid[0]) {
        char *text = NULL;
        size_t tl = 0;
        verr_t ce;
        if (ec2_console_output(d->cl, rid, &text, &tl, &ce) == 0) {
            verr_t we;
            if (vm_write_file(path, text, tl, VM_WRITE_DURABLE, &we) < 0)
                log_warn("ec2 %s: console of %s: %s", d->cloud, id, we.message);
        }
        free(text);
    }
    return vm_file_tail(path, max, buf, len, total, e);
}

static int ec2_permanent(void *p, const verr_t *e)
{
    (void)p;
    return ec2_error_permanent(e);
}

const vm_driver_ops_t vm_ec2_driver = {
    .name = "ec2",
    .about = "instances in a public EC2-compatible cloud region (bursting), over the EC2 Query API",
    .flags = 0,
    .open = ec2_open,
    .ensure = ec2_ensure,
    .list = ec2_list,
    .remove = ec2_remove,
    .console = ec2_console,
    .close = ec2_close,
    .inventory = ec2_inventory,
    .permanent = ec2_permanent,
};
