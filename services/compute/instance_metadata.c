/* instance_metadata.c - the metadata service's document of an instance (what its guest
 * reads at 169.254.169.254 through its host's agent: metadata_http.c), two ways:
 *   compute.instance_metadata  asked by the agent for the instance with an address in a
 *                              VPC, placed on the agent's host;
 *   a launch's doorbell        the document of each instance of the change that is about
 *                              to boot (pending, on a driver with a metadata server), so
 *                              that the agent answers the guest's first questions without
 *                              asking (issue 11's launch rate: the question and its answer
 *                              were two bus messages, four broker requests, a launch).
 * Both read the same columns in one statement (the interfaces beyond the primary
 * included) and build the same document. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "describe.h"
#include "jsonutil.h"
#include "log.h"
#include "metadata_options.h"
#include "public_dns.h"
#include "zones.h"

/* The document's columns, from the instance i and its primary interface f; $1 is
 * compute.public_address_wait_s. */
#define MD_COLUMNS                                                                                                     \
    "i.id, i.image_id, i.instance_type, f.mac, f.eni_id, f.subnet_id, f.groups::text, i.zone, "                      \
    "i.reservation_id, i.launch_index, i.user_data, i.account_id, extract(epoch FROM i.launch_time)::bigint, "       \
    "(SELECT k.public_key FROM key_pairs k WHERE k.account_id = i.account_id AND k.name = i.key_name), i.key_name, " \
    "(SELECT n.public_ip FROM network_enis n WHERE n.eni_id = f.eni_id AND n.instance_id = i.id), "                  \
    "i.metadata_tokens, i.metadata_hop_limit::text, i.metadata_endpoint_disabled, "                                 \
    "CASE WHEN i.metadata_tags THEN (SELECT coalesce(json_object_agg(t.key, t.value), '{}')::text FROM tags t "      \
    "WHERE t.resource_id = i.id) END, i.public_changing_since > now() - make_interval(secs => $1::int), f.ip, "      \
    "i.kernel_id, i.ramdisk_id, f.vpc_id, "                                                                          \
    "(SELECT coalesce(json_agg(json_build_array(n.mac, n.device_index::text, n.eni_id, n.ip, n.subnet_id, "          \
    "n.vpc_id, coalesce((SELECT string_agg(g->>'groupId', E'\\n') FROM jsonb_array_elements(n.groups) g), ''), "     \
    "coalesce(n.public_ip, '')) ORDER BY n.device_index), '[]') FROM network_enis n WHERE n.instance_id = i.id "   \
    "AND n.device_index > 0)::text"

enum { MD_PUBLIC_CHANGING = 20, MD_VPC = 24, MD_MORE_MACS = 25 };

/* network/interfaces/macs/<mac>/... of one interface (gids: its group ids, one a line). */
static void mac_put(json_t *md, const char *mac, const char *device, const char *eni, const char *ip,
                    const char *subnet, const char *vpc, const char *gids, const char *public_ip)
{
    char hn[64], fqdn[96], k[160];
    host_hostname_of(ip, hn, sizeof hn);
    snprintf(fqdn, sizeof fqdn, "%s.ec2.internal", hn);
    static const char *const mac_keys[] = {"device-number", "interface-id", "local-ipv4s", "mac", "subnet-id",
                                           "vpc-id", "security-group-ids", "local-hostname"};
    const char *mac_vals[] = {device, eni, ip, mac, subnet, vpc, gids, fqdn};
    for (size_t m = 0; m < sizeof mac_keys / sizeof mac_keys[0]; m++) {
        snprintf(k, sizeof k, "network/interfaces/macs/%s/%s", mac, mac_keys[m]);
        json_object_set_new(md, k, json_string(mac_vals[m]));
    }
    if (public_ip && *public_ip) {
        char name[320];
        public_dns_name(public_ip, name, sizeof name);
        snprintf(k, sizeof k, "network/interfaces/macs/%s/public-ipv4s", mac);
        json_object_set_new(md, k, json_string(public_ip));
        if (*name) {
            snprintf(k, sizeof k, "network/interfaces/macs/%s/public-hostname", mac);
            json_object_set_new(md, k, json_string(name));
        }
    }
}

/* The instance's interfaces beyond the primary (given at launch or attached since), as
 * the network last told compute (network_enis), under network/interfaces/macs/ too. */
static void more_macs(json_t *md, const char *rows)
{
    JSON_AUTO json_t *list = json_loads(rows, 0, NULL);
    size_t i;
    const json_t *x;
    json_array_foreach(list, i, x) {
#define C(n) json_string_value(json_array_get(x, n)) ? json_string_value(json_array_get(x, n)) : ""
        mac_put(md, C(0), C(1), C(2), C(3), C(4), C(5), C(6), C(7));
#undef C
    }
}

/* Row k's document: {"instance_id", "meta_data", "user_data", "identity_document",
 * "metadata_options"}, as compute.instance_metadata answers it. */
static json_t *document_of(const compute_t *c, PGresult *r, int k)
{
#define V(n) PQgetvalue(r, k, n)
    /* asked from any of its interfaces (given at launch): the answers are its primary's */
    const char *id = V(0), *mac = V(3), *zone = V(7), *ip = V(21), *vpc = V(MD_VPC);
    char hn[64], fqdn[96], when[32];
    host_hostname_of(ip, hn, sizeof hn);
    snprintf(fqdn, sizeof fqdn, "%s.ec2.internal", hn);
    describe_time(atoll(V(12)), when);
    JSON_AUTO json_t *groups = json_loads(V(6), 0, NULL);
    char names[1024] = "", gids[1024] = "";
    size_t i, nn = 0, ng = 0;
    json_t *g;
    json_array_foreach(groups, i, g) {
        nn += (size_t)snprintf(names + nn, sizeof names - nn, "%s%s", i ? "\n" : "", json_str(g, "groupName", ""));
        ng += (size_t)snprintf(gids + ng, sizeof gids - ng, "%s%s", i ? "\n" : "", json_str(g, "groupId", ""));
        if (nn >= sizeof names || ng >= sizeof gids)
            break;
    }
    json_t *md = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "instance-id", id, "ami-id",
                           V(1), "instance-type", V(2), "local-ipv4", ip, "mac", mac, "hostname", fqdn,
                           "local-hostname", fqdn, "placement/availability-zone", zone, "security-groups", names,
                           "reservation-id", V(8), "ami-launch-index", V(9));
    if (!PQgetisnull(r, k, 13)) {
        /* public-keys/ answers "0=<key name>", public-keys/0/ "openssh-key", as EC2 does */
        json_object_set_new(md, "public-keys/0/openssh-key", json_string(V(13)));
        char listing[320];
        snprintf(listing, sizeof listing, "0=%s", V(14));
        json_object_set_new(md, "public-keys", json_string(listing));
    }
    /* its public address (an elastic IP's, or the one its launch got), when it has one */
    const char *pub = PQgetisnull(r, k, 15) ? "" : V(15);
    mac_put(md, mac, "0", V(4), ip, V(5), vpc, gids, pub);
    if (*pub) {
        char name[320];
        json_object_set_new(md, "public-ipv4", json_string(pub));
        if (public_dns_name(pub, name, sizeof name))
            json_object_set_new(md, "public-hostname", json_string(name));
    }
    more_macs(md, V(MD_MORE_MACS));
    if (!PQgetisnull(r, k, 19))   /* its tags, when InstanceMetadataTags is on */
        md_options_put_tags(md, V(19));
    char zid[96];
    json_object_set_new(md, "placement/region", json_string(c->region));
    if (zone_id_of(c->region, c->zones, zone, zid, sizeof zid) == 0)
        json_object_set_new(md, "placement/availability-zone-id", json_string(zid));
    /* the identity document's members in EC2's order, null where EC2 has null (no
     * billing or marketplace products here; an instance without a kernel image) */
    const char *kernel = PQgetisnull(r, k, 22) ? NULL : V(22);
    const char *ramdisk = PQgetisnull(r, k, 23) ? NULL : V(23);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:n, s:n, s:n, s:s, s:s, s:s, s:s?, s:s, s:s, s:s?, s:s, s:s}",
                            "accountId", V(11), "architecture", "x86_64", "availabilityZone", zone,
                            "billingProducts", "devpayProductCodes", "marketplaceProductCodes", "imageId", V(1),
                            "instanceId", id, "instanceType", V(2), "kernelId", kernel, "pendingTime", when,
                            "privateIp", ip, "ramdiskId", ramdisk, "region", c->region, "version", "2017-09-30");
    json_t *out = json_pack("{s:s, s:o, s:o}", "instance_id", id, "meta_data", md, "identity_document", doc);
    json_object_set_new(out, "user_data", PQgetisnull(r, k, 10) ? json_null() : json_string(V(10)));
    json_object_set_new(out, "metadata_options", md_options_document(V(16), V(17), V(18)[0] == 't'));
    return out;
#undef V
}

int compute_instance_metadata(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *host = sender_host(ctx, e);
    if (!host)
        return -1;
    const char *vpc = json_str(body, "vpc_id", NULL), *ip = json_str(body, "ip", NULL);
    if (!vpc || !ip)
        return verr_set(e, 400, "InvalidParameterValue", "vpc_id and ip are required");
    char wait[16];
    snprintf(wait, sizeof wait, "%d", compute_of(ctx)->public_address_wait_s);
    const char *p[] = {wait, vpc, ip, host};
    PG_AUTO PGresult *r = db_prepared(service_db(ctx), e, "md_get",
        "SELECT " MD_COLUMNS " FROM instance_interfaces x JOIN instances i ON i.id = x.instance_id JOIN "
        "instance_interfaces f ON f.instance_id = i.id AND f.device_index = 0 AND NOT f.deleted WHERE x.vpc_id = $2 "
        "AND x.ip = $3 AND NOT x.deleted AND i.host_id = $4 AND i.state NOT IN ('terminated', 'shutting-down')",
        4, p);
    if (!r)
        return -1;
    if (!PQntuples(r))
        return verr_set(e, 404, "NotFound", "no instance of this host has %.64s in %.64s", ip, vpc);
    /* its public address is being released or given (a stop, a start): not up yet */
    if (PQgetvalue(r, 0, MD_PUBLIC_CHANGING)[0] == 't')
        return verr_set(e, 503, "Unavailable", "the public address of %s is being assigned", PQgetvalue(r, 0, 0));
    *reply = document_of(compute_of(ctx), r, 0);
    return 0;
}

size_t instance_metadata_of_changes(const compute_t *c, db_t *db, const char *host, long long gen, json_t *changes,
                                    size_t budget)
{
    size_t i, booting = 0;
    json_t *ch;
    json_array_foreach(changes, i, ch) {
        const char *drv = json_str(ch, "driver", "");
        booting += !json_is_true(json_object_get(ch, "gone")) && !strcmp(json_str(ch, "power", ""), "running") &&
                   (!strcmp(drv, "container") || !strcmp(drv, "qemu"));
    }
    if (!booting)
        return 0;
    char g[32], wait[16];
    snprintf(g, sizeof g, "%lld", gen);
    snprintf(wait, sizeof wait, "%d", c->public_address_wait_s);
    const char *p[] = {wait, host, g};
    verr_t e;
    /* pending (to boot) and prepared; its public address not being given or taken (the
     * question then waits, as compute.instance_metadata answers 503) */
    PG_AUTO PGresult *r = db_prepared(db, &e, "md_bell",
        "SELECT " MD_COLUMNS " FROM instances i JOIN instance_interfaces f ON f.instance_id = i.id AND "
        "f.device_index = 0 AND NOT f.deleted WHERE i.host_id = $2 AND i.changed_gen = $3::bigint AND i.prepared "
        "AND i.state = 'pending' AND i.driver IN ('container', 'qemu') ORDER BY i.id", 3, p);
    if (!r) {
        log_warn("metadata of the doorbell of %s at %lld: %s (its guests ask)", host, gen, e.message);
        return 0;
    }
    size_t bytes = 0;
    for (int k = 0; k < PQntuples(r); k++) {
        if (PQgetvalue(r, k, MD_PUBLIC_CHANGING)[0] == 't')
            continue;
        size_t size = 2048 + strlen(PQgetvalue(r, k, 10)) + strlen(PQgetvalue(r, k, 13)) +
                      strlen(PQgetvalue(r, k, 19)) + strlen(PQgetvalue(r, k, MD_MORE_MACS));
        if (bytes + size > budget)
            break;   /* the rest ask (compute.instance_metadata) */
        json_array_foreach(changes, i, ch)
            if (!strcmp(json_str(ch, "instance_id", ""), PQgetvalue(r, k, 0)) &&
                !json_is_true(json_object_get(ch, "gone"))) {
                json_object_set_new(ch, "metadata",
                                    json_pack("{s:s, s:s, s:s, s:s, s:o}", "vpc_id", PQgetvalue(r, k, MD_VPC), "ip",
                                              PQgetvalue(r, k, 21), "eni_id", PQgetvalue(r, k, 4), "public_ip",
                                              PQgetisnull(r, k, 15) ? "" : PQgetvalue(r, k, 15), "document",
                                              document_of(c, r, k)));
                bytes += size;
                break;
            }
    }
    return bytes;
}
