/* describe_instances.c - instances as EC2 shapes them: DescribeInstances (reservations
 * holding instances; filters, tags, MaxResults/NextToken over instances sorted by id),
 * DescribeInstanceStatus, and the reservation RunInstances answers. Terminated instances
 * stay visible for compute.terminated_visible_s. Scoped to the caller's account; the
 * operator's administrator sees every account's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caller.h"
#include "compute.h"
#include "describe.h"
#include "ids.h"
#include "instance_state.h"
#include "jsonutil.h"
#include "log.h"
#include "strbuf.h"
#include "tags.h"

int instances_scope(bus_ctx_t *ctx, const char **account, verr_t *e)
{
    const char *a = caller_account(ctx->msg->caller, e);
    if (!a)
        return -1;
    *account = caller_is_operator_admin(ctx->msg->caller) ? NULL : a;
    return 0;
}

/* The instances are narrowed, ordered and limited in a subquery before anything is
 * joined to them: joined first, the planner (whose row estimate of an account is easily
 * stale after a bulk launch) sometimes joined every instance of the account to its host
 * and interface and sorted them all for a page of 128.
 * The primary interface (device 0) is the network's row (network_enis: pushed by the
 * network, with SourceDestCheck, description and attachment) or, until that has come,
 * the one compute's launch task recorded (instance_interfaces); the interfaces attached
 * at a device index above 0 come as one JSON array, NULL for the usual instance that has
 * none (nothing to parse). The two interface tables are joined row by row through
 * their indexes (LATERAL ... OFFSET 0, which the planner cannot flatten): for a chunk of
 * 128 it hashed both tables whole, 20,000 rows each at issue 11's scale.
 * $1 is compute.terminated_visible_s, $2 compute.host_down_after_s; the narrowing
 * (item_query) numbers its own from $3. */
#define ITEM_SQL_HEAD                                                                                              \
    "SELECT i.id, i.reservation_id, i.account_id, i.image_id, i.state, i.transition, i.key_name, i.launch_index, "   \
    "i.instance_type, extract(epoch FROM i.launch_time)::bigint, i.zone, i.kernel_id, i.ramdisk_id, "                \
    "i.state_reason, i.client_token, i.vcpus, COALESCE(h.state = 'up' AND h.last_seen > now() - "                   \
    "make_interval(secs => $2::int), false), "                                                                       \
    "COALESCE(n.eni_id, f.eni_id), COALESCE(h.cloud, 'private'), i.remote_id, i.remote_public_ip, "                 \
    "i.remote_private_ip, COALESCE(n.subnet_id, f.subnet_id), COALESCE(n.vpc_id, f.vpc_id), COALESCE(n.mac, f.mac), " \
    "COALESCE(n.ip, f.ip), COALESCE(n.groups, f.groups)::text, COALESCE(n.source_dest_check, true), "                \
    "COALESCE(n.description, ''), COALESCE(n.attachment_id, ''), "                                                 \
    "(SELECT json_agg(json_build_object('eni', x.eni_id, 'index', x.device_index, 'attachment', x.attachment_id, "   \
    "'subnet', x.subnet_id, 'vpc', x.vpc_id, 'mac', x.mac, 'ip', x.ip, 'description', x.description, 'sdc', "       \
    "x.source_dest_check, 'groups', x.groups, 'attach_time', extract(epoch FROM x.attach_time)::bigint, "           \
    "'public_ip', x.public_ip, 'public_owner', x.public_ip_owner) ORDER BY "                                         \
    "x.device_index)::text FROM network_enis x WHERE x.instance_id = i.id AND x.device_index > 0) "                  \
    ", COALESCE(n.public_ip, ''), COALESCE(n.public_ip_owner, '') "                                                 \
    "FROM (SELECT * FROM instances i "                                                                               \
    "WHERE (i.state <> 'terminated' OR i.terminated_at > now() - make_interval(secs => $1::int))"
#define ITEM_SQL_JOINS                                                                                             \
    ") i LEFT JOIN hosts h ON h.host_id = i.host_id LEFT JOIN LATERAL (SELECT * FROM instance_interfaces f WHERE "   \
    "f.instance_id = i.id AND f.device_index = 0 AND NOT f.deleted OFFSET 0) f ON true LEFT JOIN LATERAL (SELECT * " \
    "FROM network_enis n WHERE n.instance_id = i.id AND n.device_index = 0 OFFSET 0) n ON true ORDER BY i.id"

/* "ip-172-31-0-5.ec2.internal" */
static void private_dns(const char *ip, char *out, size_t n)
{
    char dashed[64];
    snprintf(dashed, sizeof dashed, "%s", ip);
    for (char *s = dashed; *s; s++)
        if (*s == '.')
            *s = '-';
    snprintf(out, n, "ip-%s.ec2.internal", dashed);
}

/* One interface's facts (the network's: compute's table network_enis). */
typedef struct iface {
    const char *eni, *subnet, *vpc, *mac, *ip, *description, *attachment;
    const char *public_ip, *public_owner;   /* "" without a public address */
    long long index, attach_time;   /* attach_time 0: the network does not know it */
    int sdc;
    json_t *groups;                 /* borrowed */
} iface_t;

/* One interface as DescribeInstances shows it. An attachment time the network does not
 * know is the launch's. */
static json_t *interface_item(const iface_t *f, const char *owner, const char *launched)
{
    char dns[96], att[96], when[32];
    if (f->attach_time > 0)
        describe_time(f->attach_time, when);
    private_dns(f->ip, dns, sizeof dns);
    /* the network's id of a primary's attachment (enis.c): eni-attach-<the eni's hex> */
    snprintf(att, sizeof att, "eni-attach-%s", strlen(f->eni) > 4 ? f->eni + 4 : f->eni);
    return public_address_interface(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:O, "
                     "s:{s:s, s:I, s:s, s:s, s:b, s:i}, s:[{s:s, s:s, s:b}]}",
                     "networkInterfaceId", f->eni, "subnetId", f->subnet, "vpcId", f->vpc, "description",
                     f->description, "ownerId", owner, "status", "in-use", "macAddress", f->mac, "privateIpAddress",
                     f->ip, "privateDnsName", dns, "sourceDestCheck", f->sdc, "groupSet", f->groups, "attachment",
                     "attachmentId", *f->attachment ? f->attachment : att, "deviceIndex", (json_int_t)f->index,
                     "status", "attached", "attachTime", f->attach_time > 0 ? when : launched, "deleteOnTermination",
                     f->index == 0, "networkCardIndex", 0, "privateIpAddressesSet", "privateIpAddress", f->ip,
                     "privateDnsName", dns, "primary", 1),
                                    f->public_ip, f->public_owner);
}

/* An interface attached later, from network_enis as the item query's JSON has it: {eni,
 * index, attachment?, subnet, vpc, mac, ip, description?, sdc?, groups, attach_time?}. */
static json_t *attached_item(const json_t *f, const char *owner, const char *launched)
{
    json_t *sdc = json_object_get(f, "sdc");
    const iface_t x = {.eni = json_str(f, "eni", ""), .subnet = json_str(f, "subnet", ""),
                       .vpc = json_str(f, "vpc", ""), .mac = json_str(f, "mac", ""), .ip = json_str(f, "ip", ""),
                       .description = json_str(f, "description", ""), .attachment = json_str(f, "attachment", ""),
                       .index = json_int(f, "index", 0), .attach_time = json_int(f, "attach_time", 0),
                       .sdc = !sdc || json_is_true(sdc), .groups = json_object_get(f, "groups"),
                       .public_ip = json_str(f, "public_ip", ""), .public_owner = json_str(f, "public_owner", "")};
    return interface_item(&x, owner, launched);
}

/* The security groups of a primary interface, parsed once for each different text: the
 * instances of a page mostly share one group set, and parsing it for each cost more than
 * the rest of its interface. The parsed set is shared by the items (never changed). */
typedef struct groups_cache {
    char *text;
    json_t *groups;
} groups_cache_t;

static json_t *groups_of(groups_cache_t *gc, const char *text)
{
    if (!gc->text || strcmp(gc->text, text)) {
        free(gc->text);
        json_decref(gc->groups);
        gc->text = xstrdup(text);
        gc->groups = json_loads(text, 0, NULL);
        if (!gc->groups)
            gc->groups = json_array();
    }
    return gc->groups;
}

static void groups_cache_free(groups_cache_t *gc)
{
    free(gc->text);
    json_decref(gc->groups);
}

/* An instance in a public cloud (docs/hybrid.md): the address it has there (public, else
 * the remote private one) as ipAddress, and the cloud and the remote id as tags
 * virga:cloud and virga:remote-instance-id, so a tenant can filter on them. */
static void burst_fields(json_t *it, PGresult *r, int i)
{
    const char *cloud = PQgetvalue(r, i, 18), *rid = PQgetvalue(r, i, 19), *pub = PQgetvalue(r, i, 20),
               *priv = PQgetvalue(r, i, 21);
    if (!strcmp(cloud, "private"))
        return;
    json_t *tags = json_copy(json_object_get(it, "tagSet"));
    json_array_append_new(tags, json_pack("{s:s, s:s}", "key", "virga:cloud", "value", cloud));
    if (*rid)
        json_array_append_new(tags, json_pack("{s:s, s:s}", "key", "virga:remote-instance-id", "value", rid));
    json_object_set_new(it, "tagSet", tags);
    const char *addr = *pub ? pub : priv;
    if (*addr)
        json_object_set_new(it, "ipAddress", json_string(addr));
}

/* One instance (row i of r) as DescribeInstances shows it, with the hidden fields
 * _reservationId, _ownerId and _hostUp the callers use and drop. */
static json_t *item(PGresult *r, int i, json_t *tags, groups_cache_t *gc)
{
    const char *id = PQgetvalue(r, i, 0), *state = PQgetvalue(r, i, 4), *owner = PQgetvalue(r, i, 2);
    char when[32];
    long long launched = atoll(PQgetvalue(r, i, 9));
    describe_time(launched, when);
    json_t *t = tags ? json_object_get(tags, id) : NULL;
    json_t *it = json_pack(
        "{s:s, s:s, s:{s:i, s:s}, s:s, s:s, s:i, s:[], s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s}, s:s, s:s, s:s, "
        "s:s, s:s, s:O, s:b, s:b, s:{s:i, s:i}, s:s, s:s, s:s, s:s, s:b}",
        "instanceId", id, "imageId", PQgetvalue(r, i, 3), "instanceState", "code", instance_state_code(state), "name",
        state, "privateDnsName", "", "dnsName", "", "amiLaunchIndex", atoi(PQgetvalue(r, i, 7)), "productCodes",
        "instanceType", PQgetvalue(r, i, 8), "launchTime", when, "placement", "availabilityZone",
        PQgetvalue(r, i, 10), "groupName", "", "tenancy", "default", "monitoring", "state", "disabled",
        "architecture", "x86_64", "rootDeviceType", "instance-store", "rootDeviceName", "/dev/vda",
        "virtualizationType", "hvm", "hypervisor", "xen", "tagSet", t ? t : json_array(), "ebsOptimized", 0,
        "enaSupport", 1, "cpuOptions", "coreCount", atoi(PQgetvalue(r, i, 15)), "threadsPerCore", 1, "reason",
        PQgetvalue(r, i, 5), "platformDetails", "Linux/UNIX", "_reservationId", PQgetvalue(r, i, 1), "_ownerId",
        owner, "_hostUp", PQgetvalue(r, i, 16)[0] == 't');
    if (!t)
        json_decref(json_object_get(it, "tagSet"));   /* the pack's new array: keep one reference */
    if (!PQgetisnull(r, i, 6))
        json_object_set_new(it, "keyName", json_string(PQgetvalue(r, i, 6)));
    if (!PQgetisnull(r, i, 11))
        json_object_set_new(it, "kernelId", json_string(PQgetvalue(r, i, 11)));
    if (!PQgetisnull(r, i, 12))
        json_object_set_new(it, "ramdiskId", json_string(PQgetvalue(r, i, 12)));
    if (*PQgetvalue(r, i, 14))
        json_object_set_new(it, "clientToken", json_string(PQgetvalue(r, i, 14)));
    const char *reason = PQgetvalue(r, i, 13);
    if (*reason) {
        const char *colon = strstr(reason, ": ");
        json_object_set_new(it, "stateReason",
                            json_pack("{s:s%, s:s}", "code", reason, colon ? (size_t)(colon - reason) : strlen(reason),
                                      "message", colon ? colon + 2 : reason));
    }
    /* the primary (device 0), then the interfaces attached later, in device order */
    json_t *set = json_array();
    if (!PQgetisnull(r, i, 17)) {
        const char *ip = PQgetvalue(r, i, 25);
        json_t *groups = groups_of(gc, PQgetvalue(r, i, 26));
        const iface_t f = {.eni = PQgetvalue(r, i, 17), .subnet = PQgetvalue(r, i, 22), .vpc = PQgetvalue(r, i, 23),
                           .mac = PQgetvalue(r, i, 24), .ip = ip, .description = PQgetvalue(r, i, 28),
                           .attachment = PQgetvalue(r, i, 29), .sdc = PQgetvalue(r, i, 27)[0] == 't',
                           .groups = groups, .public_ip = PQgetvalue(r, i, 31),
                           .public_owner = PQgetvalue(r, i, 32)};
        json_array_append_new(set, interface_item(&f, owner, when));
        char dns[96];
        private_dns(ip, dns, sizeof dns);
        json_object_set_new(it, "privateIpAddress", json_string(ip));
        json_object_set_new(it, "privateDnsName", json_string(dns));
        json_object_set_new(it, "subnetId", json_string(f.subnet));
        json_object_set_new(it, "vpcId", json_string(f.vpc));
        json_object_set(it, "groupSet", groups);
        json_object_set_new(it, "sourceDestCheck", json_boolean(f.sdc));
    }
    if (!PQgetisnull(r, i, 30)) {
        JSON_AUTO json_t *more = json_loads(PQgetvalue(r, i, 30), 0, NULL);
        size_t k;
        json_t *f;
        json_array_foreach(more, k, f)
            json_array_append_new(set, attached_item(f, owner, when));
    }
    json_object_set_new(it, "networkInterfaceSet", set);
    public_address_instance(it);   /* ipAddress: the primary's */
    burst_fields(it, r, i);
    if (!json_object_get(it, "groupSet"))
        json_object_set_new(it, "groupSet", json_array());
    return it;
}

/* What SQL narrows before the in-memory pass (describe_select/filter/page, which still
 * apply everything, so narrowing only has to keep a superset): the InstanceId list, the
 * filters on a column with values without wildcards, one tag:<key> filter likewise, the
 * NextToken's id, and a LIMIT of
 * MaxResults + 1 when every filter went to SQL. So a page of 1,000 or one instance of
 * 20,000 reads what it answers, not the whole account. */
enum { N_IDS, N_STATE, N_TYPE, N_IMAGE, N_ZONE, N_RESERVATION, N_COLS };
typedef struct narrow {
    char *col[N_COLS];         /* text[] literals, or NULL */
    char *tag;                 /* NULL, or a text[] literal of one tag:<key> filter: {key, values...} */
    char after[64];            /* "" or the id to continue after */
    char limit[24];            /* "" (no LIMIT) or rows */
    const char *not_state;     /* NULL, or a state SQL leaves out ("terminated") */
    int sized;                 /* a page of instance items: cut at compute.describe_page_kib */
} narrow_t;

/* Whose in-memory pass follows SQL's narrowing: DescribeInstances (its filters are on
 * the instance, so some go to SQL), or DescribeInstanceStatus (its filters are on the
 * status item: none goes to SQL), which answers running instances; with
 * IncludeAllInstances all but the terminated; with InstanceIds all but the terminated
 * too, but a terminated one listed must still be found (not InvalidInstanceID.NotFound). */
typedef enum { FOR_INSTANCES, FOR_STATUS_RUNNING, FOR_STATUS_LIVE, FOR_STATUS_IDS } narrow_for_t;

static void narrow_free(narrow_t *n)
{
    for (int i = 0; i < N_COLS; i++)
        free(n->col[i]);
    free(n->tag);
}

/* A text[] literal of string values; NULL when one has a wildcard (left to memory). */
static char *text_array(const json_t *vals)
{
    size_t n = json_array_size(vals);
    const char **v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        v[i] = json_string_value(json_array_get(vals, i));
        if (!v[i] || strpbrk(v[i], "*?")) {
            free(v);
            return NULL;
        }
    }
    char *out = db_text_array(v, n);
    free(v);
    return out;
}

static int narrow_of(const json_t *body, narrow_for_t what, narrow_t *n, verr_t *e)
{
    static const struct {
        const char *filter;
        int col;
    } cols[] = {{"instance-id", N_IDS}, {"instance-state-name", N_STATE}, {"instance-type", N_TYPE},
                {"image-id", N_IMAGE}, {"availability-zone", N_ZONE}, {"reservation-id", N_RESERVATION}};
    memset(n, 0, sizeof *n);
    const json_t *ids = json_object_get(body, "InstanceId");
    if (json_array_size(ids))
        n->col[N_IDS] = text_array(ids);
    int filters = what == FOR_INSTANCES;
    /* the status pass drops what SQL leaves out here, so a LIMIT still fills a page */
    int all = filters || !json_array_size(json_object_get(body, "Filter"));
    if (what == FOR_STATUS_RUNNING)
        n->col[N_STATE] = xstrdup("{running}");
    if (what == FOR_STATUS_LIVE)
        n->not_state = "terminated";
    n->sized = filters;
    size_t i;
    json_t *f;
    json_array_foreach(filters ? json_object_get(body, "Filter") : NULL, i, f) {
        const char *name = json_str(f, "Name", "");
        size_t k = 0;
        while (k < ARRAY_LEN(cols) && strcmp(cols[k].filter, name))
            k++;
        const json_t *vals = json_object_get(f, "Value");
        if (!strncmp(name, "tag:", 4) && strncmp(name + 4, "virga:", 6) && !n->tag && json_array_size(vals)) {
            /* one tag filter: {key, values...}; a wildcard in either stays in memory, and so
             * do the virga: tags burst_fields adds, which the tags table does not hold */
            JSON_AUTO json_t *kv = json_pack("[s]", name + 4);
            if (kv && json_array_extend(kv, (json_t *)vals) == 0 && (n->tag = text_array(kv)))
                continue;
        }
        if (k == ARRAY_LEN(cols) || n->col[cols[k].col] || !json_array_size(vals) ||
            !(n->col[cols[k].col] = text_array(vals)))
            all = 0;   /* a tag, a wildcard, a second filter on one column: in memory only */
    }
    const char *tok = json_str(body, "NextToken", NULL), *mr = json_str(body, "MaxResults", NULL);
    if (tok && *tok && describe_token_id(tok, n->after, sizeof n->after) < 0)
        n->after[0] = 0;   /* describe_page answers InvalidPaginationToken */
    long max = mr ? strtol(mr, NULL, 10) : 0;
    if (all && mr && max >= 5 && max <= 1000 && !ids)
        snprintf(n->limit, sizeof n->limit, "%ld", max + 1);
    (void)e;
    return 0;
}

/* The statement of one read: the narrowing's conditions, each only when it has a value,
 * so each is one the planner can use an index for and each prepared statement's plan is
 * made for its own shape (instances_account for an account's page, in id order with its
 * LIMIT; the primary key for InstanceIds). A condition `($n IS NULL OR col = $n)` kept
 * one statement for every shape, but its plan could use no index: every page and every
 * one-instance filter read the whole table (20,000 rows at issue 11's scale), and the
 * account's char(12) compared as text (`$1::text`) ruled out its index as well. */
typedef struct item_query {
    strbuf_t sql;
    const char *params[16];
    int nparams;
    unsigned shape;            /* a bit for each condition present: the statement's name */
} item_query_t;

static void item_cond(item_query_t *q, const char *cond, const char *value)
{
    q->shape <<= 1;
    if (!value)
        return;
    q->shape |= 1;
    q->params[q->nparams++] = value;
    strbuf_puts(&q->sql, " AND ");
    strbuf_printf(&q->sql, cond, q->nparams);
}

/* One read of load_items: up to limit rows (NULL: all) after the id `after` (NULL: from
 * the start), their items appended to items. The number of rows read, or -1. */
static int load_chunk(db_t *db, const compute_t *c, const char *account, const char *reservation,
                      const narrow_t *nw, const char *after, const char *limit, json_t *items, verr_t *e)
{
    char vis[16], down[16], name[32];
    snprintf(vis, sizeof vis, "%d", c->terminated_visible_s);
    snprintf(down, sizeof down, "%d", c->host_down_after_s);
    item_query_t q = {.params = {vis, down}, .nparams = 2};
    strbuf_puts(&q.sql, ITEM_SQL_HEAD);
    item_cond(&q, "i.account_id = $%d::bpchar", account);   /* char(12): as text, no index */
    item_cond(&q, "i.reservation_id = $%d", reservation);
    item_cond(&q, "i.id = ANY($%d::text[])", nw->col[N_IDS]);
    item_cond(&q, "i.state = ANY($%d::text[])", nw->col[N_STATE]);
    item_cond(&q, "i.state <> $%d", nw->not_state);
    item_cond(&q, "i.instance_type = ANY($%d::text[])", nw->col[N_TYPE]);
    item_cond(&q, "i.image_id = ANY($%d::text[])", nw->col[N_IMAGE]);
    item_cond(&q, "i.zone = ANY($%d::text[])", nw->col[N_ZONE]);
    item_cond(&q, "i.reservation_id = ANY($%d::text[])", nw->col[N_RESERVATION]);
    /* the tags' primary key starts with the resource: PostgreSQL reads the matching tags
     * (a one-instance tag filter read and built the whole account's items before) */
    item_cond(&q, "i.id IN (SELECT t.resource_id FROM tags t WHERE t.key = ($%1$d::text[])[1] AND t.value = "
              "ANY(($%1$d::text[])[2:]))", nw->tag);
    item_cond(&q, "i.id > $%d", after);
    strbuf_puts(&q.sql, " ORDER BY i.id");
    q.shape <<= 1;
    if (limit) {
        q.shape |= 1;
        q.params[q.nparams++] = limit;
        strbuf_printf(&q.sql, " LIMIT $%d::bigint", q.nparams);
    }
    strbuf_puts(&q.sql, ITEM_SQL_JOINS);
    snprintf(name, sizeof name, "inst_items_%x", q.shape);
    PG_AUTO PGresult *r = db_prepared(db, e, name, q.sql.s, q.nparams, q.params);
    free(q.sql.s);
    if (!r)
        return -1;
    /* the tags of the rows read, not of the whole account: a one-instance describe of an
     * account with 20,000 instances read 20,000 instances' tags */
    int n = PQntuples(r);
    const char **ids = xcalloc((size_t)n + 1, sizeof *ids);
    for (int i = 0; i < n; i++)
        ids[i] = PQgetvalue(r, i, 0);
    JSON_AUTO json_t *tags = tags_load_ids(db, ids, (size_t)n, e);
    free(ids);
    if (!tags)
        return -1;
    groups_cache_t gc = {0};
    for (int i = 0; i < n; i++)
        json_array_append_new(items, item(r, i, tags, &gc));
    groups_cache_free(&gc);
    return n;
}

#define CHUNK_ROWS 128   /* rows a read of a page takes at a time: ~200 KiB of items */

/* The items (sorted by id) of account (NULL: all), of one reservation or all, narrowed.
 * With a LIMIT (every filter in SQL: each row read is answered), a page of instance
 * items (nw->sized) is read in chunks until it has its rows or compute.describe_page_kib
 * of items and one more (which tells describe_page_bytes there is a next page): a
 * MaxResults of 1,000 answers ~390 instances, and reading, tagging and building the 610
 * it would drop cost more than the page itself. A page of status items (small) is read
 * at once. */
static json_t *load_items(db_t *db, const compute_t *c, const char *account, const char *reservation,
                          const narrow_t *nw, verr_t *e)
{
    static const narrow_t none;
    if (!nw)
        nw = &none;
    json_t *items = json_array();
    const char *after = nw->after[0] ? nw->after : NULL;
    long want = nw->limit[0] ? atol(nw->limit) : 0;
    if (!want) {
        if (load_chunk(db, c, account, reservation, nw, after, NULL, items, e) < 0)
            json_decref(items), items = NULL;
        return items;
    }
    size_t bytes = 0;
    char last[64];
    for (;;) {
        long have = (long)json_array_size(items), step = nw->sized ? CHUNK_ROWS : want;
        long ask = want - have < step ? want - have : step;
        char lim[24];
        snprintf(lim, sizeof lim, "%ld", ask);
        int got = load_chunk(db, c, account, reservation, nw, after, lim, items, e);
        if (got < 0) {
            json_decref(items);
            return NULL;
        }
        for (size_t i = (size_t)have; nw->sized && i < json_array_size(items); i++)
            bytes += json_compact_size(json_array_get(items, i));
        if (got < ask || (long)json_array_size(items) >= want || (nw->sized && bytes > c->describe_page_bytes))
            return items;
        snprintf(last, sizeof last, "%s", json_str(json_array_get(items, json_array_size(items) - 1), "instanceId", ""));
        after = last;
    }
}

static void strip(json_t *it)
{
    json_object_del(it, "_reservationId");
    json_object_del(it, "_ownerId");
    json_object_del(it, "_hostUp");
}

/* Group items (in order) into reservations: consecutive runs of one reservation id are
 * not enough (items are sorted by instance id), so the set is built by id. The items
 * themselves go into the answer, their hidden fields dropped in place once all are
 * grouped (an id listed twice in InstanceId is one item twice): a copy of each cost as
 * much as the grouping. items is the caller's to drop, unchanged otherwise. */
static json_t *group(json_t *items)
{
    json_t *out = json_array(), *byid = json_object(), *it;
    size_t i;
    json_array_foreach(items, i, it) {
        const char *rid = json_str(it, "_reservationId", "");
        json_t *res = json_object_get(byid, rid);
        if (!res) {
            res = json_pack("{s:s, s:s, s:[], s:[]}", "reservationId", rid, "ownerId", json_str(it, "_ownerId", ""),
                            "groupSet", "instancesSet");
            json_object_set_new(byid, rid, res);
            json_array_append(out, res);
        }
        json_array_append(json_object_get(res, "instancesSet"), it);
    }
    json_array_foreach(items, i, it)
        strip(it);
    json_decref(byid);
    return out;
}

int instances_reservations(db_t *db, const compute_t *c, const char *account, const char *reservation_id, json_t **out,
                           verr_t *e)
{
    JSON_AUTO json_t *items = load_items(db, c, account, reservation_id, NULL, e);
    if (!items)
        return -1;
    *out = group(items);
    return 0;
}

static const describe_field_t instance_fields[] = {
    {"instance-id", "instanceId"},
    {"instance-state-name", "instanceState.name"},
    {"instance-state-code", "instanceState.code"},
    {"image-id", "imageId"},
    {"instance-type", "instanceType"},
    {"private-ip-address", "privateIpAddress"},
    {"ip-address", "ipAddress"},
    {"private-dns-name", "privateDnsName"},
    {"subnet-id", "subnetId"},
    {"vpc-id", "vpcId"},
    {"availability-zone", "placement.availabilityZone"},
    {"key-name", "keyName"},
    {"reservation-id", "_reservationId"},
    {"owner-id", "_ownerId"},
    {"client-token", "clientToken"},
    {"launch-index", "amiLaunchIndex"},
    {"architecture", "architecture"},
    {"kernel-id", "kernelId"},
    {"ramdisk-id", "ramdiskId"},
    {NULL, NULL},
};

/* Instance ids of a list parameter: each well-formed (InvalidInstanceID.Malformed). */
static int check_ids(const json_t *list, verr_t *e)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        const char *s = json_string_value(v);
        if (!s || !ids_valid("i", s))
            return verr_set(e, 400, "InvalidInstanceID.Malformed", "Invalid id: \"%.64s\"", s ? s : "");
    }
    return 0;
}

/* The caller's visible instances, narrowed to the InstanceId list (all must exist) and
 * the filters (DescribeInstances'; DescribeInstanceStatus applies its own afterwards). */
static json_t *selected(bus_ctx_t *ctx, const json_t *body, narrow_for_t what, verr_t *e)
{
    const char *account;
    if (instances_scope(ctx, &account, e) < 0)
        return NULL;
    json_t *ids = json_object_get(body, "InstanceId");
    if (check_ids(ids, e) < 0)
        return NULL;
    narrow_t nw;
    narrow_of(body, what, &nw, e);
    JSON_AUTO json_t *all = load_items(service_db(ctx), compute_of(ctx), account, NULL, &nw, e);
    narrow_free(&nw);
    if (!all)
        return NULL;
    const char *missing = NULL;
    JSON_AUTO json_t *sel = describe_select(all, body, "InstanceId", "instanceId", &missing);
    if (!sel) {
        verr_set(e, 400, "InvalidInstanceID.NotFound", "The instance ID '%.64s' does not exist", missing);
        return NULL;
    }
    return describe_filter(sel, json_object_get(body, "Filter"), instance_fields, e);
}

int compute_describe_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (json_object_get(body, "InstanceId") && json_object_get(body, "MaxResults"))
        return verr_set(e, 400, "InvalidParameterCombination",
                        "The parameter instancesSet cannot be used with the parameter maxResults");
    JSON_AUTO json_t *items = selected(ctx, body, FOR_INSTANCES, e);
    if (!items)
        return -1;
    JSON_AUTO json_t *page = NULL;
    json_t *next = NULL;
    if (describe_page(items, body, "instanceId", 5, 1000, &page, &next, e) < 0)
        return -1;
    /* a page of 1,000 instances can pass the bus's message size (librdkafka's 1 MB):
     * fewer, with a NextToken, as EC2 itself may answer */
    describe_page_bytes(page, "instanceId", compute_of(ctx)->describe_page_bytes, &next);
    *reply = json_pack("{s:o, s:o*}", "reservationSet", group(page), "nextToken", next);
    return 0;
}

static const describe_field_t status_fields[] = {
    {"availability-zone", "availabilityZone"},
    {"instance-state-name", "instanceState.name"},
    {"instance-state-code", "instanceState.code"},
    {"instance-status.status", "instanceStatus.status"},
    {"system-status.status", "systemStatus.status"},
    {NULL, NULL},
};

/* EC2's status checks: a host that stopped reporting makes its instances impaired. */
static json_t *status_item(const json_t *it)
{
    const char *state = json_str(json_object_get(it, "instanceState"), "name", "");
    int running = !strcmp(state, "running"), up = json_is_true(json_object_get(it, "_hostUp"));
    const char *st = !running ? "not-applicable" : up ? "ok" : "impaired";
    const char *det = !running ? "initializing" : up ? "passed" : "failed";
    return json_pack("{s:s, s:s, s:O, s:{s:s, s:[{s:s, s:s}]}, s:{s:s, s:[{s:s, s:s}]}, s:[]}", "instanceId",
                     json_str(it, "instanceId", ""), "availabilityZone",
                     json_str(json_object_get(it, "placement"), "availabilityZone", ""), "instanceState",
                     json_object_get(it, "instanceState"), "systemStatus", "status", st, "details", "name",
                     "reachability", "status", det, "instanceStatus", "status", st, "details", "name", "reachability",
                     "status", det, "eventsSet");
}

int compute_describe_instance_status(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    int ids = json_object_get(body, "InstanceId") != NULL, all = json_flag(body, "IncludeAllInstances") || ids;
    JSON_AUTO json_t *items = selected(ctx, body, ids ? FOR_STATUS_IDS : all ? FOR_STATUS_LIVE : FOR_STATUS_RUNNING, e);
    if (!items)
        return -1;
    JSON_AUTO json_t *st = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        const char *state = json_str(json_object_get(it, "instanceState"), "name", "");
        if (all ? strcmp(state, "terminated") != 0 : !strcmp(state, "running"))
            json_array_append_new(st, status_item(it));
    }
    JSON_AUTO json_t *filtered = describe_filter(st, json_object_get(body, "Filter"), status_fields, e);
    if (!filtered)
        return -1;
    json_t *page, *next;
    if (describe_page(filtered, body, "instanceId", 5, 1000, &page, &next, e) < 0)
        return -1;
    *reply = json_pack("{s:o, s:o*}", "instanceStatusSet", page, "nextToken", next);
    return 0;
}
