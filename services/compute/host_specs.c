/* host_specs.c - what a host's agent should run, one spec per instance (docs/compute.md,
 * "The agent contract"), for the two ways the agent learns it:
 *   the pull (compute.host_instances): every instance placed there and prepared, not
 *   shutting-down or terminated, with the host's generation read in the same statement,
 *   so the list is exactly the host's state at that generation;
 *   the doorbell (agent.instances_changed): the instances whose last desired change is
 *   the doorbell's generation, each its spec or a "gone" mark, so that the agent which
 *   has every generation before it needs no pull (issue 11's launch rate: the pull was a
 *   request and a reply on the broker for every launch and terminate). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compute.h"
#include "hybrid_launch.h"
#include "jsonutil.h"
#include "log.h"

/* A doorbell carries at most this many changes and bytes of them; more, and the agent
 * pulls (a terminate of many instances of one host bumps once per instance anyway). */
#define BELL_MAX_CHANGES 32
#define BELL_MAX_BYTES (256 * 1024)

void host_hostname_of(const char *ip, char *out, size_t n)
{
    snprintf(out, n, "ip-%s", ip);
    for (char *s = out; *s; s++)
        if (*s == '.')
            *s = '-';
}

/* One part of an image for the agent, refreshing its grant URL when it is (nearly) spent.
 * The image service is asked without holding this bus worker (bus_ask_as): the message
 * is parked (ctx->waiting, the caller unwinds) and handled again with the answer, which
 * the later instances of the same image and account share. A refusal keeps the old URL.
 * Without ctx (a doorbell, after a commit) nothing is asked: *stale says the agent must
 * pull, whose answer refreshes it. */
static json_t *image_part(bus_ctx_t *ctx, const char *account, json_t *cached, const char *kind, int *refreshed,
                          int *stale)
{
    if (!json_is_object(cached))
        return json_null();
    json_int_t expires = json_int(cached, "expires", 0);
    if (expires && expires < (json_int_t)time(NULL) + 300 && !ctx)
        *stale = 1;
    else if (expires && expires < (json_int_t)time(NULL) + 300 && !ctx->waiting) {
        json_t *fresh = NULL;
        verr_t e;
        JSON_AUTO json_t *caller = json_pack("{s:s}", "account_id", account);
        if (bus_ask_as(ctx, "image", "image.fetch_url", json_pack("{s:s}", "image_id", json_str(cached, "image_id", "")),
                       caller, compute_of(ctx)->call_timeout_ms, &fresh, &e) == 0) {
            json_object_update(cached, fresh);
            json_decref(fresh);
            *refreshed = 1;
        } else if (!ctx->waiting) {
            log_warn("refreshing the URL of %s: %s", json_str(cached, "image_id", ""), e.message);
        }
    }
    const char *fmt = json_str(cached, "disk_format", "");
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "image_id", json_str(cached, "image_id", ""), "type",
                     kind ? kind : json_str(cached, "image_type", "machine"), "url", json_str(cached, "url", ""),
                     "sha256", json_str(cached, "sha256", ""), "size", (json_int_t)json_int(cached, "size", 0),
                     "format", fmt);
}

/* An instance's interfaces for its host: the launch's (instance_interfaces: known before
 * the network's first push) unless the network says one beyond the primary is no longer
 * the instance's (detached), and those attached since (network_enis: a qemu guest plugs
 * them in while it runs; prefix and gateway are for the primary only). */
#define HOST_INSTANCE_INTERFACES                                                                                       \
    "SELECT f.eni_id, f.mac, f.ip, f.prefix_len, f.gateway, f.vpc_id, f.device_index FROM instance_interfaces f "      \
    "WHERE f.instance_id = i.id AND NOT f.deleted AND (f.device_index = 0 OR NOT EXISTS (SELECT 1 FROM network_enis n " \
    "WHERE n.eni_id = f.eni_id AND n.instance_id IS DISTINCT FROM f.instance_id)) UNION ALL "                          \
    "SELECT n.eni_id, n.mac, n.ip, 0, '', n.vpc_id, n.device_index FROM network_enis n WHERE n.instance_id = i.id "     \
    "AND n.device_index > 0 AND NOT EXISTS (SELECT 1 FROM instance_interfaces f WHERE f.instance_id = i.id AND "      \
    "f.eni_id = n.eni_id AND NOT f.deleted)"

#define DESIRED_STATES "('pending', 'running', 'stopping', 'stopped')"

/* A spec's columns (15, from the query's column c0 on): whether the host should run it
 * at all, and the console_seq of the console compute keeps of it. */
#define SPEC_COLUMNS                                                                                                   \
    "i.id, i.driver, i.vcpus, i.memory_mib, i.disk_gib, i.state, i.reboot_seq, i.image::text, i.image_kind, "          \
    "i.account_id, (SELECT coalesce(json_agg(json_build_object('eni_id', f.eni_id, 'mac', f.mac, 'ip', f.ip, "         \
    "'prefix_len', f.prefix_len, 'gateway', f.gateway, 'vpc_id', f.vpc_id, 'device_index', f.device_index) "          \
    "ORDER BY f.device_index), '[]') FROM (" HOST_INSTANCE_INTERFACES ") f)::text, "                                   \
    "i.instance_type, i.changed_gen, (i.prepared AND i.state IN " DESIRED_STATES "), "                             \
    "(SELECT c.seq FROM instance_console c WHERE c.instance_id = i.id)"

/* Row k's spec, or {"instance_id", "gone": true, "changed_gen"} when the host should not
 * run it. NULL with *stale: a grant to refresh and no ctx to ask with; NULL with
 * ctx->waiting: being refreshed. */
static json_t *spec_of(bus_ctx_t *ctx, db_t *db, PGresult *r, int k, int c0, int *stale)
{
#define V(n) PQgetvalue(r, k, c0 + (n))
    const char *id = V(0), *state = V(5);
    json_int_t changed = (json_int_t)atoll(V(12));
    if (V(13)[0] != 't')
        return json_pack("{s:s, s:b, s:I}", "instance_id", id, "gone", 1, "changed_gen", changed);
    JSON_AUTO json_t *img = json_loads(V(7), 0, NULL);
    int refreshed = 0;
    json_t *ifs = json_loads(V(10), 0, NULL), *f;
    size_t n;
    json_array_foreach(ifs, n, f) {
        /* the datapath's device name for this port (contract: vt-<12 hex>) */
        const char *eni = json_str(f, "eni_id", "");
        char dev[32];
        snprintf(dev, sizeof dev, "vt-%.12s", strlen(eni) > 4 ? eni + 4 : eni);
        json_object_set_new(f, "device", json_string(dev));
    }
    char hn[64];
    host_hostname_of(json_str(json_array_get(ifs, 0), "ip", "0.0.0.0"), hn, sizeof hn);
    int running = !strcmp(state, "pending") || !strcmp(state, "running");
    json_t *it = json_pack("{s:s, s:s, s:i, s:I, s:I, s:s, s:i, s:o, s:o, s:o, s:o, s:s}", "instance_id", id,
                           "driver", V(1), "vcpus", atoi(V(2)), "memory_mib", (json_int_t)atoll(V(3)), "disk_gib",
                           (json_int_t)atoll(V(4)), "power", running ? "running" : "stopped", "reboot_seq",
                           atoi(V(6)), "image",
                           image_part(ctx, V(9), json_object_get(img, "image"), V(8), &refreshed, stale), "kernel",
                           image_part(ctx, V(9), json_object_get(img, "kernel"), "kernel", &refreshed, stale),
                           "ramdisk",
                           image_part(ctx, V(9), json_object_get(img, "ramdisk"), "ramdisk", &refreshed, stale),
                           "interfaces", ifs, "hostname", hn);
    if (*stale || (ctx && ctx->waiting)) {
        json_decref(it);
        return NULL;
    }
    json_object_set_new(it, "instance_type", json_string(V(11)));   /* added: ec2 maps it */
    json_object_set_new(it, "changed_gen", json_integer(changed));   /* added: the agent keeps the newest */
    if (!PQgetisnull(r, k, c0 + 14))   /* added: the console compute has (the reports get no reply) */
        json_object_set_new(it, "console_seq", json_integer((json_int_t)atoll(V(14))));
    if (!strcmp(V(1), "ec2"))   /* added: what RunInstances there also takes */
        json_object_set_new(it, "launch", hybrid_launch_doc(db, id));
    if (refreshed) {
        AUTOFREE char *doc = json_dumps(img, JSON_COMPACT);
        const char *q[] = {id, doc};
        PGresult *u = db_prepared(db, NULL, "hi_img", "UPDATE instances SET image = $2::jsonb WHERE id = $1", 2, q);
        if (u)
            PQclear(u);
    }
    return it;
#undef V
}

int compute_host_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)body;
    const char *host = sender_host(ctx, e);
    if (!host)
        return -1;
    db_t *db = service_db(ctx);
    const char *p[] = {host};
    /* one statement, one snapshot: the list is the host's state at that generation
     * exactly, so every later change is in a doorbell of a later generation */
    PG_AUTO PGresult *r = db_prepared(db, e, "hi_list",
        "SELECT h.generation, h.observed_seq, " SPEC_COLUMNS " FROM hosts h LEFT JOIN instances i ON i.host_id = h.host_id "
        "AND i.prepared AND i.state IN " DESIRED_STATES " WHERE h.host_id = $1 ORDER BY i.id", 1, p);
    if (!r)
        return -1;
    long long gen = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
    long long seq = PQntuples(r) ? atoll(PQgetvalue(r, 0, 1)) : 0;
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        if (PQgetisnull(r, i, 2))   /* a host with no instance: its one row */
            continue;
        int stale = 0;
        json_t *it = spec_of(ctx, db, r, i, 2, &stale);
        if (!it) {   /* a grant is being refreshed: answered when this runs again */
            json_decref(list);
            return verr_set(e, 503, "ServiceUnavailable", "waiting for a fresh image URL");
        }
        json_array_append_new(list, it);
    }
    /* observed_seq (added): the last report applied, so that a restarted agent numbers
     * its reports after it */
    *reply = json_pack("{s:s, s:I, s:I, s:o}", "host", host, "generation", (json_int_t)gen, "observed_seq",
                       (json_int_t)seq, "instances", list);
    return 0;
}

json_t *host_specs_changed(const compute_t *c, db_t *db, const char *host, long long gen)
{
    char g[32];
    snprintf(g, sizeof g, "%lld", gen);
    const char *p[] = {host, g};
    verr_t e;
    PG_AUTO PGresult *r = db_prepared(db, &e, "bell_specs",
        "SELECT " SPEC_COLUMNS " FROM instances i WHERE i.host_id = $1 AND i.changed_gen = $2::bigint ORDER BY i.id",
        2, p);
    if (!r || PQntuples(r) > BELL_MAX_CHANGES)
        return NULL;
    json_t *list = json_array();
    size_t bytes = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        int stale = 0;
        json_t *it = spec_of(NULL, db, r, i, 0, &stale);
        bytes += 512 + strlen(PQgetvalue(r, i, 10)) + strlen(PQgetvalue(r, i, 7));
        if (!it || bytes > BELL_MAX_BYTES) {
            json_decref(it);
            json_decref(list);
            return NULL;
        }
        json_array_append_new(list, it);
    }
    /* the guests about to boot: their metadata documents, in what room is left (without
     * one, a guest's first question asks compute) */
    instance_metadata_of_changes(c, db, host, gen, list, bytes < BELL_MAX_BYTES ? BELL_MAX_BYTES - bytes : 0);
    return list;
}
