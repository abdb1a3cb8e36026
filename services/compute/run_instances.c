/* run_instances.c - RunInstances: check the request, the image and the quotas as compute
 * holds them (launch_facts.c: no call to another service from this bus worker), then, in
 * one transaction under the account's lock, enforce the instance/vCPU/memory quotas, place every instance
 * (scheduler.c, host rows locked) and record the reservation, its instances (pending),
 * their tags and one launch task each. The tasks get the image's grant, make the ports
 * and tell the hosts (tasks.c); the answer, the reservation as DescribeInstances shows
 * it, waits for the ports (run_answer.c), so it has the addresses as EC2's does (with
 * compute.run_answer_wait_ms 0, at once with what is known of the network before the
 * ports exist: launch_net_answer). A ClientToken already used by the account answers
 * the reservation it made. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caller.h"
#include "describe.h"
#include "ids.h"
#include "jsonutil.h"
#include "launch_network.h"
#include "log.h"
#include "metadata_options.h"
#include "scheduler.h"
#include "tags.h"

#define MAX_USER_DATA (16 * 1024)
#define MAX_COUNT 100

typedef struct launch {
    const char *account, *user, *image_id, *key_name, *user_data, *zone, *token;
    int protect;                 /* DisableApiTermination */
    const instance_type_t *type;
    int min, max;
    launch_net_t net;            /* subnet, groups, address (launch_network.c) */
    md_options_t md;             /* MetadataOptions (metadata_options.c) */
    json_t *tags;                /* tagSet for the instances */
    json_t *eni_tags;            /* tagSet for the interfaces it makes (launch_port_tags.c) */
    json_t *image;               /* {"image": fetch_url answer, "kernel"?, "ramdisk"?} */
    const char *image_kind;
    long long disk_gib;
    sched_policy_t policy;       /* private | burst | public (docs/hybrid.md) */
    char hash[65];               /* of the parameters, for ClientToken reuse */
} launch_t;

/* The request's placement policy: its tag virga:placement, else the account's entry in
 * compute.placement_policy_accounts ("<account>=<policy>,..."), else
 * compute.placement_policy (private). A bad value is the tenant's (the tag) or the
 * operator's (config) error, said as such. */
static int placement_policy(const config_t *cfg, const char *account, const json_t *tags, sched_policy_t *out,
                            verr_t *e)
{
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
        if (strcmp(json_str(t, "key", ""), "virga:placement"))
            continue;
        if (sched_policy_parse(json_str(t, "value", ""), out) < 0)
            return verr_set(e, 400, "InvalidParameterValue",
                            "Tag virga:placement must be private, burst or public, not '%.64s'", json_str(t, "value", ""));
        return 0;
    }
    const char *list = config_str(cfg, "compute.placement_policy_accounts", "");
    size_t al = strlen(account);
    for (const char *s = list; *s;) {
        size_t n = strcspn(s, ",");
        if (n > al + 1 && !strncmp(s, account, al) && s[al] == '=') {
            char v[16];
            snprintf(v, sizeof v, "%.*s", (int)(n - al - 1), s + al + 1);
            if (sched_policy_parse(v, out) < 0)
                return verr_set(e, 500, "InternalError", "compute.placement_policy_accounts: bad policy '%s'", v);
            return 0;
        }
        s += n + (s[n] == ',');
        while (*s == ' ')
            s++;
    }
    const char *def = config_str(cfg, "compute.placement_policy", "private");
    if (sched_policy_parse(def, out) < 0)
        return verr_set(e, 500, "InternalError", "compute.placement_policy: bad policy '%s'", def);
    return 0;
}

static int count_param(const json_t *body, const char *name, int def, int *out, verr_t *e)
{
    const char *s = json_str(body, name, NULL);
    if (!s) {
        *out = def;
        return 0;
    }
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > MAX_COUNT)
        return verr_set(e, 400, "InvalidParameterValue", "Value (%.32s) for parameter %s is invalid: 1 to %d", s, name,
                        MAX_COUNT);
    *out = (int)v;
    return 0;
}

static int valid_token(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return 0;
    return n <= 64;
}

/* Everything that needs no other service and no lock. */
static int parse(bus_ctx_t *ctx, const json_t *body, launch_t *l, verr_t *e)
{
    const compute_t *c = compute_of(ctx);
    if (!(l->account = caller_account(ctx->msg->caller, e)))
        return -1;
    l->user = json_str(ctx->msg->caller, "user_id", "");
    if (run_params_supported(body, e) < 0)
        return -1;
    l->image_id = json_str(body, "ImageId", NULL);
    if (!l->image_id || !*l->image_id)
        return verr_set(e, 400, "MissingParameter", "The request must contain the parameter ImageId");
    if (!ids_valid("ami", l->image_id))
        return verr_set(e, 400, "InvalidAMIID.Malformed", "Invalid id: \"%.64s\" (expecting \"ami-...\")", l->image_id);
    const char *tn = json_str(body, "InstanceType", config_str(service_of(ctx)->cfg, "compute.default_instance_type",
                                                               "t3.micro"));
    if (!(l->type = instance_type_find(c, tn)))
        return verr_set(e, 400, "InvalidParameterValue", "Invalid value '%.64s' for InstanceType.", tn);
    if (count_param(body, "MinCount", 1, &l->min, e) < 0 || count_param(body, "MaxCount", l->min, &l->max, e) < 0)
        return -1;
    if (l->min > l->max)
        return verr_set(e, 400, "InvalidParameterValue", "MinCount (%d) must not be greater than MaxCount (%d)",
                        l->min, l->max);
    l->key_name = json_str(body, "KeyName", NULL);
    l->protect = json_flag(body, "DisableApiTermination");
    l->user_data = json_str(body, "UserData", NULL);
    if (l->user_data) {
        size_t n = strlen(l->user_data), len = 0;
        AUTOFREE unsigned char *raw = xmalloc(n + 1);
        if (n > MAX_USER_DATA * 4 / 3 + 8 ||
            sodium_base642bin(raw, n + 1, l->user_data, n, " \r\n", &len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
            return verr_set(e, 400, "InvalidParameterValue", "User data must be base64 of at most %d bytes",
                            MAX_USER_DATA);
        if (len > MAX_USER_DATA)
            return verr_set(e, 400, "InvalidParameterValue", "User data is limited to %d bytes", MAX_USER_DATA);
    }
    if (launch_net_parse(body, l->max, &l->net, e) < 0 ||
        md_options_parse(json_object_get(body, "MetadataOptions"), &l->md, e) < 0)
        return -1;
    /* the type's interface limit (instance_types.c), in the words EC2 uses for it */
    if (1 + (int)l->net.n_more > l->type->max_enis)
        return verr_set(e, 400, "AttachmentLimitExceeded", "Interface count %d exceeds the limit for %s",
                        1 + (int)l->net.n_more, l->type->name);
    l->zone = json_str(json_object_get(body, "Placement"), "AvailabilityZone", NULL);
    if (l->zone && *l->zone) {
        size_t zl = strlen(l->zone);
        const char *z = c->zones;
        int found = 0;
        while (*z && !found) {
            size_t n = strcspn(z, ",");
            found = n == zl && !strncmp(z, l->zone, n);
            z += n + (z[n] == ',');
        }
        if (!found)
            return verr_set(e, 400, "InvalidParameterValue", "Invalid availability zone: [%.64s]", l->zone);
    } else {
        l->zone = NULL;
    }
    l->token = json_str(body, "ClientToken", "");
    if (!valid_token(l->token))
        return verr_set(e, 400, "InvalidParameterValue", "ClientToken must be at most 64 ASCII characters");
    if (!(l->tags = describe_tag_spec_beside(body, "instance", "network-interface", e)) ||
        !(l->eni_tags = describe_tag_spec_beside(body, "network-interface", "instance", e)) ||
        (l->md.tags > 0 && md_tag_keys_check(l->tags, e) < 0) ||
        placement_policy(service_of(ctx)->cfg, l->account, l->tags, &l->policy, e) < 0)
        return -1;
    /* the token's request, to tell a retry from a reuse with other parameters */
    JSON_AUTO json_t *copy = json_deep_copy(body);
    json_object_del(copy, "DryRun");
    AUTOFREE char *doc = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)doc, strlen(doc));
    sodium_bin2hex(l->hash, sizeof l->hash, h, sizeof h);
    return 0;
}

/* The key must be the account's. */
static int check_key(db_t *db, launch_t *l, verr_t *e)
{
    if (!l->key_name)
        return 0;
    const char *p[] = {l->account, l->key_name};
    PG_AUTO PGresult *r = db_prepared(db, e, "run_key", "SELECT 1 FROM key_pairs WHERE account_id = $1 AND name = $2",
                                      2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 400, "InvalidKeyPair.NotFound", "The key pair '%.255s' does not exist", l->key_name);
    return 0;
}

/* The image, as compute knows it (launch_facts.c): it must exist, be available and be
 * launchable by the account; its kernel and ramdisk too. */
static int resolve_image(bus_ctx_t *ctx, launch_t *l, verr_t *e)
{
    json_t *img = NULL;
    if (launch_facts_image(ctx, l->account, l->image_id, &img, e) < 0)
        return -1;
    l->image = json_pack("{s:o}", "image", img);
    const char *type = json_str(img, "image_type", "machine"), *fmt = json_str(img, "disk_format", "");
    if (strcmp(type, "machine"))
        return verr_set(e, 400, "InvalidParameterValue", "The image '%s' is a %s image and cannot be launched",
                        l->image_id, type);
    l->image_kind = !strcmp(fmt, "tar.gz") ? "container-rootfs" : "machine";
    long long size = json_int(img, "size", 0);
    l->disk_gib = size > 0 ? (size + (1LL << 30) - 1) >> 30 : 1;
    static const char *const parts[][2] = {{"kernel_id", "kernel"}, {"ramdisk_id", "ramdisk"}};
    for (size_t i = 0; i < 2; i++) {
        const char *pid = json_str(img, parts[i][0], NULL);
        json_t *part = NULL;
        if (!pid || !*pid)
            continue;
        if (launch_facts_image(ctx, l->account, pid, &part, e) < 0)
            return -1;
        json_object_set_new(l->image, parts[i][1], part);
    }
    return 0;
}

/* The reservation a ClientToken made: 1 (reply set), 0 (none), -1. */
static int by_token(db_t *db, const compute_t *c, const launch_t *l, json_t **reply, verr_t *e)
{
    if (!*l->token)
        return 0;
    const char *p[] = {l->account, l->token};
    PG_AUTO PGresult *r = db_prepared(db, e, "run_token",
        "SELECT id, request_hash FROM reservations WHERE account_id = $1 AND client_token = $2", 2, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return 0;
    if (strcmp(PQgetvalue(r, 0, 1), l->hash))
        return verr_set(e, 400, "IdempotentParameterMismatch",
                        "The client token '%s' was already used with other parameters", l->token);
    json_t *set = NULL;
    if (instances_reservations(db, c, l->account, PQgetvalue(r, 0, 0), &set, e) < 0)
        return -1;
    *reply = json_incref(json_array_get(set, 0));
    json_decref(set);
    return *reply ? 1 : verr_set(e, 500, "InternalError", "reservation without instances");
}

typedef struct quotas {
    long long instances, vcpus, memory_mib;
} quotas_t;

static int get_quotas(bus_ctx_t *ctx, const char *account, quotas_t *q, verr_t *e)
{
    JSON_AUTO json_t *qs = NULL;
    if (launch_facts_quotas(ctx, account, &qs, e) < 0)
        return -1;
    q->instances = json_int(qs, "instances", 20);
    q->vcpus = json_int(qs, "vcpus", 64);
    q->memory_mib = json_int(qs, "memory_mib", 262144);
    return 0;
}

/* How many of the request the account's quotas allow (under the account's lock). */
static int quota_room(db_t *db, const launch_t *l, const quotas_t *q, int *room, verr_t *e)
{
    const char *p[] = {l->account};
    PG_AUTO PGresult *r = db_prepared(db, e, "run_usage",
        "SELECT count(*), COALESCE(sum(vcpus), 0), COALESCE(sum(memory_mib), 0) FROM instances "
        "WHERE account_id = $1 AND state <> 'terminated'", 1, p);
    if (!r)
        return -1;
    long long n = atoll(PQgetvalue(r, 0, 0)), v = atoll(PQgetvalue(r, 0, 1)), m = atoll(PQgetvalue(r, 0, 2));
    long long by_n = q->instances - n, by_v = (q->vcpus - v) / l->type->vcpus,
              by_m = (q->memory_mib - m) / l->type->memory_mib;
    if (by_n < l->min)
        return verr_set(e, 400, "InstanceLimitExceeded",
                        "You have requested more instances (%lld) than your current instance limit of %lld allows.",
                        n + l->min, q->instances);
    if (by_v < l->min)
        return verr_set(e, 400, "VcpuLimitExceeded",
                        "You have requested more vCPU capacity (%lld) than your current vCPU limit of %lld allows.",
                        v + (long long)l->min * l->type->vcpus, q->vcpus);
    if (by_m < l->min)
        return verr_set(e, 400, "InstanceLimitExceeded",
                        "You have requested more memory (%lld MiB) than your current limit of %lld MiB allows.",
                        m + (long long)l->min * l->type->memory_mib, q->memory_mib);
    long long k = l->max;
    k = by_n < k ? by_n : k;
    k = by_v < k ? by_v : k;
    k = by_m < k ? by_m : k;
    *room = (int)k;
    return 0;
}

static int insert_instance(db_t *db, const launch_t *l, const char *rid, const char *iid, int index,
                           const sched_pick_t *pk, verr_t *e)
{
    char idx[16], vc[16], mem[32], disk[32];
    snprintf(idx, sizeof idx, "%d", index);
    snprintf(vc, sizeof vc, "%d", l->type->vcpus);
    snprintf(mem, sizeof mem, "%lld", l->type->memory_mib);
    snprintf(disk, sizeof disk, "%lld", l->disk_gib);
    AUTOFREE char *img = json_dumps(l->image, JSON_COMPACT);
    AUTOFREE char *groups = json_dumps(l->net.group_ids, JSON_COMPACT);
    JSON_AUTO json_t *nics = launch_net_more_doc(&l->net);   /* for the launch task (launch_network.c) */
    JSON_AUTO json_t *more = nics ? json_pack("{s:O}", "interfaces", nics) : NULL;
    if (json_array_size(l->eni_tags)) {   /* TagSpecification network-interface: the task tags them */
        if (!more)
            more = json_object();
        json_object_set(more, "eni_tags", l->eni_tags);
    }
    json_t *im = json_object_get(l->image, "image");
    const char *p[] = {iid, rid, l->account, l->user, idx, l->image_id, json_str(im, "kernel_id", NULL),
                       json_str(im, "ramdisk_id", NULL), img, l->image_kind, l->type->name, vc, mem, disk,
                       pk->host, pk->zone, pk->driver, l->key_name, l->user_data, l->net.subnet, l->net.private_ip, groups,
                       l->token, l->protect ? "t" : "f", l->net.public_ip < 0 ? NULL : l->net.public_ip ? "t" : "f"};
    PG_AUTO PGresult *r = db_prepared(db, e, "run_insert",
        "INSERT INTO instances (id, reservation_id, account_id, owner_user, launch_index, image_id, kernel_id, "
        "ramdisk_id, image, image_kind, instance_type, vcpus, memory_mib, disk_gib, state, host_id, zone, driver, "
        "key_name, user_data, subnet_id, private_ip, group_ids, client_token, disable_api_termination, "
        "associate_public_ip) VALUES ($1, $2, $3, $4, $5::int, $6, $7, $8, $9::jsonb, $10, $11, $12::int, $13::bigint, "
        "$14::bigint, 'pending', $15, $16, $17, $18, $19, $20, $21, $22::jsonb, $23, $24::boolean, $25::boolean)", 25,
        p);
    if (!r || launch_net_claim(db, iid, &l->net, e) < 0 || md_options_record(db, iid, &l->md, e) < 0 ||
        tags_put(db, iid, l->account, l->tags, e) < 0 ||
        compute_task_add_with(db, "launch", iid, more, e) < 0)
        return -1;
    return 0;
}

/* The transaction: quotas, placement, rows. *rid = the reservation made. */
static int record(bus_ctx_t *ctx, launch_t *l, const quotas_t *q, char rid[IDS_MAX], json_t **reply, verr_t *e)
{
    const compute_t *c = compute_of(ctx);
    db_t *db = service_db(ctx);
    int room = 0, placed;
    sched_pick_t picks[MAX_COUNT];
    sched_req_t sr = {.vcpus = l->type->vcpus, .memory_mib = l->type->memory_mib, .disk_gib = l->disk_gib,
                      .image_kind = l->image_kind, .zone = l->zone, .type_name = l->type->name, .min_count = l->min,
                      .policy = l->policy};
    PG_AUTO PGresult *r = NULL;
    if (db_begin(db, e) < 0)
        return -1;
    int again;
    if (db_lock_xact(db, "instances", l->account, e) < 0 || (again = by_token(db, c, l, reply, e)) < 0)
        goto fail;
    if (again) {   /* a concurrent request with the same token made it first */
        db_rollback(db);
        return 1;
    }
    if (quota_room(db, l, q, &room, e) < 0)
        goto fail;
    sr.max_count = room;
    if ((placed = scheduler_place(db, c, &sr, picks, e)) < 0)
        goto fail;
    ids_new("r", rid);
    const char *p[] = {rid, l->account, l->user, l->token, l->hash};
    r = db_prepared(db, e, "run_reservation",
        "INSERT INTO reservations (id, account_id, owner_user, client_token, request_hash) VALUES ($1, $2, $3, $4, $5)",
        5, p);
    if (!r)
        goto fail;
    for (int i = 0; i < placed; i++) {
        char iid[IDS_MAX];
        if (insert_instance(db, l, rid, ids_new("i", iid), i, &picks[i], e) < 0)
            goto fail;
    }
    if (db_commit(db, e) < 0)
        goto fail;
    return 0;
fail:
    db_rollback(db);
    return -1;
}

/* Each PrivateIpAddress asked is free now: the network's answer, uncached (an address
 * is taken and freed at any time), asked without holding this bus worker (bus_ask: -1
 * with ctx->waiting, the handler runs again from its start), so before anything is
 * written. EC2 refuses the call itself (InvalidIPAddress.InUse); a launch that takes the
 * address after this answer is still refused by the network at its task. */
static int addresses_free(bus_ctx_t *ctx, const launch_t *l, verr_t *e)
{
    json_t *list = launch_net_addresses(&l->net);
    if (!list)
        return 0;
    JSON_AUTO json_t *ans = NULL;
    return bus_ask(ctx, "network", "network.addresses_free", json_pack("{s:s, s:o}", "account", l->account,
                   "addresses", list), compute_of(ctx)->call_timeout_ms, &ans, e);
}

/* Whether an instance of the answer has no interface yet (its launch task has not made
 * its port: DescribeInstances shows no subnet then). */
static int some_without_port(const json_t *reservation)
{
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(reservation, "instancesSet"), i, it)
        if (!json_object_get(it, "subnetId"))
            return 1;
    return 0;
}

/* A run after the wait for the interfaces ended before every port was made (the wait's
 * compute.run_answer_wait_ms passed, or the tasks run in another compute process): what
 * the launch knew of its network, checked again from compute's copy of the network's
 * facts (the rows the first run warmed: no call to the network; a cold one parks the
 * message again, -1 with ctx->waiting). An existing interface named at launch is in use
 * now, by this launch's own instance: the network's check refuses it, and the answer
 * then says what DescribeInstances says (0 with *net NULL). */
static int kept_net(bus_ctx_t *ctx, launch_t *l, const launch_net_t **net, verr_t *e)
{
    verr_t ne = {0};
    *net = NULL;
    if (launch_net_check(ctx, l->account, l->zone, &l->net, &ne) < 0) {
        if (ctx->waiting) {
            *e = ne;
            return -1;
        }
        log_info("RunInstances %s: the answer without the launch's network facts: %s", l->account, ne.message);
        return 0;
    }
    *net = &l->net;
    return 0;
}

/* The answer: the reservation as DescribeInstances shows it, with what the launch knew
 * of its network for an instance whose interfaces are not made yet (net NULL: known
 * only on the first run, kept_net finds it again for a run after the wait). */
static int answer(bus_ctx_t *ctx, launch_t *l, const launch_net_t *net, const char *rid, json_t **reply,
                  verr_t *e)
{
    json_t *set = NULL;
    if (instances_reservations(service_db(ctx), compute_of(ctx), l->account, rid, &set, e) < 0)
        return -1;
    *reply = json_incref(json_array_get(set, 0));
    json_decref(set);
    if (!net && some_without_port(*reply) && kept_net(ctx, l, &net, e) < 0) {
        json_decref(*reply);
        *reply = NULL;
        return -1;
    }
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(*reply, "instancesSet"), i, it) {
        if (net)
            launch_net_answer(net, it, l->account);
        /* EC2's answer describes the launch: pending, also for an instance whose guest
         * started while the answer waited for the others' interfaces (a launch that
         * failed meanwhile shows it) */
        if (!strcmp(json_str(json_object_get(it, "instanceState"), "name", ""), "running"))
            json_object_set_new(it, "instanceState", json_pack("{s:i, s:s}", "code", 0, "name", "pending"));
    }
    log_info("RunInstances %s: reservation %s, %zu instance(s) of %s", l->account, rid,
             json_array_size(json_object_get(*reply, "instancesSet")), l->type->name);
    return 0;
}

int compute_run_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    launch_t l = {0};
    int rc = -1;
    db_t *db = service_db(ctx);
    quotas_t q = {0};   /* set by get_quotas; zeroed for the compiler, which cannot see that */
    char rid[IDS_MAX];
    JSON_AUTO json_t *kept = NULL;   /* before the first goto: out frees it */
    if (parse(ctx, body, &l, e) < 0)
        goto out;
    /* a launch's timeline, with the task's and the agent's lines (docs/performance.md) */
    log_debug("RunInstances %s: run", l.account);
    /* A run after the wait for the interfaces (below): the reservation is recorded and
     * nothing is checked again (its interfaces are in use now: by its own instances). */
    if (bus_kept(ctx, RUN_ANSWER_KEY, &kept, e)) {
        rc = kept ? answer(ctx, &l, NULL, json_str(kept, "reservation", ""), reply, e) : -1;
        goto out;
    }
    int done = by_token(db, compute_of(ctx), &l, reply, e);
    if (done != 0) {
        rc = done < 0 ? -1 : 0;
        goto out;
    }
    if (check_key(db, &l, e) < 0)
        goto out;
    /* both asked before either answers, so a first launch waits for one retry, not two */
    verr_t qe;
    int qrc = get_quotas(ctx, l.account, &q, &qe);
    if (resolve_image(ctx, &l, e) < 0 || launch_net_check(ctx, l.account, l.zone, &l.net, e) < 0)
        goto out;
    if (l.net.zone[0])   /* a given subnet decides the zone */
        l.zone = l.net.zone;
    if (addresses_free(ctx, &l, e) < 0)
        goto out;
    if (json_flag(body, "DryRun")) {
        verr_set(e, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.");
        goto out;
    }
    if (qrc < 0) {
        *e = qe;
        goto out;
    }
    done = record(ctx, &l, &q, rid, reply, e);
    if (done != 0) {
        rc = done < 0 ? -1 : 0;
        goto out;
    }
    log_debug("RunInstances %s: reservation %s recorded", l.account, rid);
    task_pool_wake(compute_of(ctx)->tasks);
    /* Answered once the launch tasks made the interfaces (run_answer.c), as EC2's answer
     * has the addresses: this run ends here, the next finds the reservation recorded. */
    if (run_answers_wait_ms(compute_of(ctx)->answers) > 0)
        run_answers_await(ctx, compute_of(ctx)->answers, rid, e);
    else
        rc = answer(ctx, &l, &l.net, rid, reply, e);
out:
    launch_net_free(&l.net);
    json_decref(l.tags);
    json_decref(l.eni_tags);
    json_decref(l.image);
    return rc;
}
