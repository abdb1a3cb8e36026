/* describe_instances.c - instances as EC2 shapes them: DescribeInstances (reservations
 * holding instances; filters, tags, MaxResults/NextToken over instances sorted by id),
 * DescribeInstanceStatus, and the reservation RunInstances answers. Terminated instances
 * stay visible for compute.terminated_visible_s. Scoped to the caller's account; the
 * operator's administrator sees every account's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bigbuf.h"
#include "caller.h"
#include "compute.h"
#include "describe.h"
#include "ids.h"
#include "instance_json.h"
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
 * The interfaces come from ONE read of the instance's rows in network_enis (pushed by
 * the network: SourceDestCheck, description, attachment) through its index on
 * (instance_id, device_index): the primary's (device 0) columns, and the interfaces
 * attached at a device index above 0 as one JSON array aggregated over the same rows (a
 * window over them), NULL for the usual instance that has none (nothing to parse). Only
 * when the network's row of the primary has not come yet (a launch in flight) does the
 * next branch of the UNION ALL run (LIMIT 1 stops at the first that gives a row): the
 * primary that compute's launch task recorded (instance_interfaces), then none at all.
 * Three lookups a row before (the primary in both tables, the attached interfaces in a
 * subquery), most of PostgreSQL's CPU for the page's joins: 12.9 against 9.6 ms of
 * PostgreSQL's CPU for a page of 1,000 (pgbench of the statement, docs/performance.md).
 * Each branch is a LATERAL the planner cannot flatten, so it is read row by row through
 * the indexes (hashing both tables whole, 20,000 rows each at issue 11's scale, was the
 * plan for a chunk of 128 once).
 * $1 is compute.terminated_visible_s, $2 compute.host_down_after_s; the narrowing
 * (item_query) numbers its own from $3. */
#define ITEM_SQL_ATTACHED_OBJECT                                                                                   \
    "json_build_object('eni', x.eni_id, 'index', x.device_index, 'attachment', x.attachment_id, 'subnet', "          \
    "x.subnet_id, 'vpc', x.vpc_id, 'mac', x.mac, 'ip', x.ip, 'description', x.description, 'sdc', "                 \
    "x.source_dest_check, 'groups', x.groups, 'attach_time', extract(epoch FROM x.attach_time)::bigint, "           \
    "'public_ip', x.public_ip, 'public_owner', x.public_ip_owner, 'dot', x.delete_on_termination)"
/* the attached interfaces of an instance whose network row of the primary has not come */
#define ITEM_SQL_ATTACHED_ALONE                                                                                    \
    "(SELECT json_agg(" ITEM_SQL_ATTACHED_OBJECT " ORDER BY x.device_index)::text FROM network_enis x "              \
    "WHERE x.instance_id = i.id AND x.device_index > 0)"
#define ITEM_SQL_HEAD                                                                                              \
    "SELECT i.id, i.reservation_id, i.account_id, i.image_id, i.state, i.transition, i.key_name, i.launch_index, "   \
    "i.instance_type, extract(epoch FROM i.launch_time)::bigint, i.zone, i.kernel_id, i.ramdisk_id, "                \
    "i.state_reason, i.client_token, i.vcpus, COALESCE(h.state = 'up' AND h.last_seen > now() - "                   \
    "make_interval(secs => $2::int), false), "                                                                       \
    "p.eni_id, COALESCE(h.cloud, 'private'), i.remote_id, i.remote_public_ip, i.remote_private_ip, p.subnet_id, "    \
    "p.vpc_id, p.mac, p.ip, p.groups, COALESCE(p.source_dest_check, true), COALESCE(p.description, ''), "      \
    "COALESCE(p.attachment_id, ''), p.attached, COALESCE(p.public_ip, ''), COALESCE(p.public_ip_owner, ''), "       \
    "i.metadata_tokens, i.metadata_hop_limit::text, i.metadata_endpoint_disabled, i.metadata_tags, "                \
    "COALESCE(p.dot, i.primary_eni IS NULL) "                                                                        \
    "FROM (SELECT * FROM instances i "                                                                               \
    "WHERE (i.state <> 'terminated' OR i.terminated_at > now() - make_interval(secs => $1::int))"
#define ITEM_SQL_JOINS                                                                                             \
    ") i LEFT JOIN hosts h ON h.host_id = i.host_id LEFT JOIN LATERAL ("                                             \
    "SELECT * FROM (SELECT x.eni_id, x.subnet_id, x.vpc_id, x.mac, x.ip, x.groups_text AS groups, x.source_dest_check, "            \
    "x.description, x.attachment_id, x.public_ip, x.public_ip_owner, x.device_index, (json_agg("                    \
    ITEM_SQL_ATTACHED_OBJECT ") FILTER (WHERE x.device_index > 0) OVER (ORDER BY x.device_index ROWS BETWEEN "      \
    "UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING))::text AS attached, x.delete_on_termination AS dot FROM "        \
    "network_enis x WHERE x.instance_id = i.id" \
    ") n WHERE n.device_index = 0 "                                                                                  \
    "UNION ALL SELECT f.eni_id, f.subnet_id, f.vpc_id, f.mac, f.ip, f.groups::text, true, '', '', '', '', 0, "             \
    ITEM_SQL_ATTACHED_ALONE ", NULL::boolean FROM instance_interfaces f WHERE f.instance_id = i.id AND "           \
    "f.device_index = 0 AND "     \
    "NOT f.deleted "                                                                                                 \
    "UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "                      \
    ITEM_SQL_ATTACHED_ALONE ", NULL LIMIT 1) p ON true ORDER BY i.id"

/* Row i of r as instance_json_put reads it. */
static void row_of(PGresult *r, int i, instance_row_t *row)
{
    for (int k = 0; k < IR_COLS; k++)
        row->v[k] = PQgetisnull(r, i, k) ? NULL : PQgetvalue(r, i, k);
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
    int exact;                 /* DescribeInstances without InstanceId, every filter in SQL: the
                                * rows read are the answer, written as text (page_text) */
} narrow_t;

/* Whose in-memory pass follows SQL's narrowing: DescribeInstances (its filters are on
 * the instance, so some go to SQL), or DescribeInstanceStatus (its filters are on the
 * status item: none goes to SQL), which answers running instances; with
 * IncludeAllInstances all but the terminated; with InstanceIds every visible one, since
 * each one listed must be found (not InvalidInstanceID.NotFound), then answered as
 * without the list (running ones, or all but the terminated with IncludeAllInstances). */
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
             * do the virga: tags instance_json_put adds, which the tags table does not hold */
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
    n->exact = filters && all && !ids;
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

/* One read: up to limit rows (NULL: all) after the id `after` (NULL: from the start), and
 * their tags: in *tags ({id: tagSet}) or, when tags is NULL, in *text. NULL on error. */
static PGresult *read_rows(db_t *db, const compute_t *c, const char *account, const char *reservation,
                           const narrow_t *nw, const char *after, const char *limit, json_t **tags, tags_text_t *text,
                           verr_t *e)
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
    PGresult *r = db_prepared(db, e, name, q.sql.s, q.nparams, q.params);
    free(q.sql.s);
    if (!r)
        return NULL;
    /* the tags of the rows read, not of the whole account: a one-instance describe of an
     * account with 20,000 instances read 20,000 instances' tags */
    int n = PQntuples(r);
    const char **ids = xcalloc((size_t)n + 1, sizeof *ids);
    for (int i = 0; i < n; i++)
        ids[i] = PQgetvalue(r, i, IR_ID);
    int bad = tags ? !(*tags = tags_load_ids(db, ids, (size_t)n, e)) : tags_text_load_ids(db, ids, (size_t)n, text, e) < 0;
    free(ids);
    if (bad) {
        PQclear(r);
        return NULL;
    }
    return r;
}

/* One read of load_items: its rows' items (with the hidden fields) appended to items,
 * parsed from the text instance_json_put writes: one writer for both the text page and
 * the in-memory pass. The number of rows read (*bytes grown by their compact size), or -1. */
static int load_chunk(db_t *db, const compute_t *c, const char *account, const char *reservation,
                      const narrow_t *nw, const char *after, const char *limit, json_t *items, size_t *bytes,
                      verr_t *e)
{
    JSON_AUTO json_t *tags = NULL;
    PG_AUTO PGresult *r = read_rows(db, c, account, reservation, nw, after, limit, &tags, NULL, e);
    if (!r)
        return -1;
    int n = PQntuples(r);
    groups_text_t gc = {0};
    strbuf_t b = {0};
    for (int i = 0; i < n; i++) {
        instance_row_t row;
        row_of(r, i, &row);
        b.len = 0;
        instance_json_put(&b, &row, json_object_get(tags, row.v[IR_ID]), &gc, 1);
        json_t *it = json_loadb(b.s, b.len, 0, NULL);
        if (!it) {   /* the writer's bug: say so rather than answer a partial page */
            n = verr_set(e, 500, "InternalError", "instance %s could not be described", row.v[IR_ID]);
            break;
        }
        json_array_append_new(items, it);
        *bytes += b.len;
    }
    free(b.s);
    groups_text_free(&gc);
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
        size_t bytes = 0;
        if (load_chunk(db, c, account, reservation, nw, after, NULL, items, &bytes, e) < 0)
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
        int got = load_chunk(db, c, account, reservation, nw, after, lim, items, &bytes, e);
        if (got < 0) {
            json_decref(items);
            return NULL;
        }
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
    /* on the groups and interfaces, as EC2 documents them (paths go through arrays) */
    {"instance.group-id", "groupSet.groupId"},
    {"instance.group-name", "groupSet.groupName"},
    {"network-interface.network-interface-id", "networkInterfaceSet.networkInterfaceId"},
    {"network-interface.addresses.private-ip-address", "networkInterfaceSet.privateIpAddressesSet.privateIpAddress"},
    {"network-interface.addresses.primary", "networkInterfaceSet.privateIpAddressesSet.primary"},
    {"network-interface.addresses.association.public-ip",
     "networkInterfaceSet.privateIpAddressesSet.association.publicIp"},
    {"network-interface.association.public-ip", "networkInterfaceSet.association.publicIp"},
    {"network-interface.attachment.attachment-id", "networkInterfaceSet.attachment.attachmentId"},
    {"network-interface.attachment.device-index", "networkInterfaceSet.attachment.deviceIndex"},
    {"network-interface.attachment.status", "networkInterfaceSet.attachment.status"},
    {"network-interface.attachment.delete-on-termination", "networkInterfaceSet.attachment.deleteOnTermination"},
    {"network-interface.description", "networkInterfaceSet.description"},
    {"network-interface.group-id", "networkInterfaceSet.groupSet.groupId"},
    {"network-interface.group-name", "networkInterfaceSet.groupSet.groupName"},
    {"network-interface.mac-address", "networkInterfaceSet.macAddress"},
    {"network-interface.owner-id", "networkInterfaceSet.ownerId"},
    {"network-interface.private-dns-name", "networkInterfaceSet.privateDnsName"},
    {"network-interface.source-dest-check", "networkInterfaceSet.sourceDestCheck"},
    {"network-interface.status", "networkInterfaceSet.status"},
    {"network-interface.subnet-id", "networkInterfaceSet.subnetId"},
    {"network-interface.vpc-id", "networkInterfaceSet.vpcId"},
    {"source-dest-check", "sourceDestCheck"},
    {"dns-name", "dnsName"},
    {"launch-time", "launchTime"},
    {"root-device-name", "rootDeviceName"},
    {"root-device-type", "rootDeviceType"},
    {"virtualization-type", "virtualizationType"},
    {"hypervisor", "hypervisor"},
    {"tenancy", "placement.tenancy"},
    {"monitoring-state", "monitoring.state"},
    {"platform-details", "platformDetails"},
    {"reason", "reason"},
    {"state-reason-code", "stateReason.code"},
    {"state-reason-message", "stateReason.message"},
    {"metadata-options.http-tokens", "metadataOptions.httpTokens"},
    {"metadata-options.http-put-response-hop-limit", "metadataOptions.httpPutResponseHopLimit"},
    {"metadata-options.http-endpoint", "metadataOptions.httpEndpoint"},
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

/* Whether the loaded items hold instance id. */
static int item_has(const char *id, const void *items)
{
    size_t i;
    json_t *it;
    json_array_foreach((const json_t *)items, i, it)
        if (!strcmp(json_str(it, "instanceId", ""), id))
            return 1;
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
        instance_ids_not_found(e, ids, item_has, all);
        return NULL;
    }
    if (what != FOR_INSTANCES)   /* the status item's filters, which the caller applies */
        return json_incref(sel);
    return describe_filter(sel, json_object_get(body, "Filter"), instance_fields, e);
}

/* What a reservation adds to the answer around its instances (and its id and owner):
 * {"reservationId":"","ownerId":"","groupSet":[],"instancesSet":[]}, */
#define RESERVATION_BYTES 66

/* A page's items as text (page_text): where each is in the buffer, and its reservation. */
typedef struct page_item {
    size_t off, len;
    size_t res;
} page_item_t;

/* The order of a page's items in its answer: the reservations in the order their first
 * instance comes, each holding its instances in id order (what group() makes of the
 * trees). res[i] is item i's reservation (< nres); *start gets each reservation's first
 * place in the order (nres + 1 entries). Both freed by the caller. */
static size_t *answer_order(const size_t *res, size_t n, size_t nres, size_t **start)
{
    size_t *st = xcalloc(nres + 1, sizeof *st), *order = xcalloc(n + 1, sizeof *order);
    size_t *fill = xcalloc(nres + 1, sizeof *fill);
    for (size_t i = 0; i < n; i++)
        st[res[i] + 1]++;
    for (size_t r = 0; r < nres; r++)
        st[r + 1] += st[r];
    for (size_t i = 0; i < n; i++)
        order[st[res[i]] + fill[res[i]]++] = i;
    free(fill);
    *start = st;
    return order;
}

/* A reservation's members before its instances: {"reservationId":"","ownerId":"",
 * "groupSet":[],"instancesSet":[ (after a comma unless it is the first) */
static void reservation_head(strbuf_t *out, int first, const char *rid, const char *owner)
{
    strbuf_puts(out, first ? "{\"reservationId\":" : ",{\"reservationId\":");
    json_put_string(out, rid, strlen(rid));
    strbuf_puts(out, ",\"ownerId\":");
    json_put_string(out, owner, strlen(owner));
    strbuf_puts(out, ",\"groupSet\":[],\"instancesSet\":[");
}

static void page_tail(strbuf_t *out, const char *next)
{
    strbuf_putc(out, ']');
    if (next) {
        strbuf_puts(out, ",\"nextToken\":");
        json_put_string(out, next, strlen(next));
    }
    strbuf_putc(out, '}');
}

/* The reservations of a page around the items' text, in the answer's order. */
static void reservations_put(strbuf_t *out, const strbuf_t *items, const page_item_t *it, size_t n,
                             const json_t *res, const char *next)
{
    size_t nres = json_array_size(res);
    size_t *ri = xcalloc(n + 1, sizeof *ri), *start;
    for (size_t i = 0; i < n; i++)
        ri[i] = it[i].res;
    size_t *order = answer_order(ri, n, nres, &start);
    strbuf_reserve(out, items->len + nres * 128 + 256);
    strbuf_puts(out, "{\"reservationSet\":[");
    for (size_t r = 0; r < nres; r++) {
        const json_t *rv = json_array_get(res, r);
        reservation_head(out, r == 0, json_string_value(json_array_get(rv, 0)),
                         json_string_value(json_array_get(rv, 1)));
        for (size_t k = start[r]; k < start[r + 1]; k++) {
            if (k > start[r])
                strbuf_putc(out, ',');
            strbuf_put(out, items->s + it[order[k]].off, it[order[k]].len);
        }
        strbuf_puts(out, "]}");
    }
    page_tail(out, next);
    free(ri);
    free(start);
    free(order);
}

/* The page when one read holds it (page_text): each row's item written once, straight
 * into its place in the answer, instead of into a buffer of items that is then copied
 * into the answer. For a page of 1,000 that is 1.4 MB less to copy and about 2 MB less
 * fresh memory (the items' buffer, grown by doubling), whose page faults, the kernel
 * zeroing pages, were a third of compute's CPU per page (docs/performance.md, page9).
 * What the answer holds does not depend on the order its items are written in, nor does
 * its size, so when the whole page fits compute.describe_page_kib (as page_text counts:
 * an item and its comma, a reservation's members) it is the answer page_text's cut makes;
 * when it does not, 1 and out is left to the caller, which cuts it item by item. */
static int page_in_place(strbuf_t *out, PGresult *r, int rows, const tags_text_t *tags, const char *next,
                         size_t budget)
{
    JSON_AUTO json_t *byid = json_object();
    size_t *res = xcalloc((size_t)rows + 1, sizeof *res), nres = 0;
    const char **rid = xcalloc((size_t)rows + 1, sizeof *rid), **owner = xcalloc((size_t)rows + 1, sizeof *owner);
    size_t bytes = 0;
    for (int i = 0; i < rows; i++) {
        const char *id = PQgetisnull(r, i, IR_RESERVATION) ? "" : PQgetvalue(r, i, IR_RESERVATION);
        json_t *idx = json_object_get(byid, id);
        if (!idx) {
            json_object_set_new(byid, id, idx = json_integer((json_int_t)nres));
            rid[nres] = id;
            owner[nres++] = PQgetisnull(r, i, IR_ACCOUNT) ? "" : PQgetvalue(r, i, IR_ACCOUNT);
            bytes += RESERVATION_BYTES + strlen(id) + 12;
        }
        res[i] = (size_t)json_integer_value(idx);
    }
    size_t *start, *order = answer_order(res, (size_t)rows, nres, &start);
    size_t mark = out->len;
    /* an item is 1.8-2.3 KiB (1.3-1.5 before the members EC2 always has and the public DNS
     * names, sweep11): reserved too short, the buffer doubled in mid-page, a copy and
     * fresh pages (compute's faults a page went from 690 to 1,300, the page's p50 x3) */
    size_t room = (size_t)rows * 2400 + nres * 128 + 256;
    /* a page of 1,000 (2.1 MB) on huge pages (bigbuf.h): fresh memory at every page (the
     * trim after a burst), whose 4 KiB faults were a tenth of compute's CPU a page */
    if ((size_t)rows * 2200 >= BIGBUF_MIN_BYTES && !out->grow)
        bigbuf_start(out, out->len + room, out->len + (size_t)rows * 2200 + nres * 128);
    strbuf_reserve(out, room);
    strbuf_puts(out, "{\"reservationSet\":[");
    groups_text_t gc = {0};
    for (size_t k = 0, g = 0; k < (size_t)rows; k++) {
        while (k == start[g + 1])
            g++;
        if (k == start[g])
            reservation_head(out, g == 0, rid[g], owner[g]);
        else
            strbuf_putc(out, ',');
        size_t before = out->len;
        instance_row_t row;
        row_of(r, (int)order[k], &row);
        size_t tl;
        const char *tt = tags_text_of(tags, row.v[IR_ID], &tl);
        instance_json_put_tags_text(out, &row, tt, tl, &gc, 0);
        bytes += out->len - before + 1;
        if (k + 1 == start[g + 1])
            strbuf_puts(out, "]}");
    }
    groups_text_free(&gc);
    page_tail(out, next);
    free(res);
    free(rid);
    free(owner);
    free(start);
    free(order);
    if (bytes > budget) {
        out->len = mark;
        out->s[mark] = 0;
        return 1;
    }
    return 0;
}

/* DescribeInstances when SQL's narrowing is the whole answer (nw->exact): the page is
 * read in one statement (in chunks only when the budget holds fewer rows) and each row
 * written as JSON text (instance_json_put), up to MaxResults (a NextToken when SQL has one
 * more) or compute.describe_page_kib of answer (items and reservations: fewer, with a
 * NextToken, as EC2 may answer, never none; the in-memory pass counts the items with
 * their hidden fields instead, about as much), grouped into reservations and sent as the
 * reply's text (bus_reply_text): no tree is built, sized or dumped. A page one read holds
 * that fits the budget is written in place (page_in_place); otherwise the items are
 * written one by one into a buffer, cut where the budget ends, then grouped. The same
 * answer as the in-memory pass, member for member (tests/unit/test_instance_json.c
 * compares the items with the former builder's, bench_describe_ab.py whole answers). */
static int page_text(bus_ctx_t *ctx, const json_t *body, const char *account, const narrow_t *nw, verr_t *e)
{
    long max;
    char after[256], last[256] = "";
    if (describe_page_params(body, 5, 1000, &max, after, sizeof after, e) < 0)
        return -1;
    const compute_t *c = compute_of(ctx);
    strbuf_t items = {0}, out = {0};
    page_item_t *it = NULL;
    size_t n = 0;
    JSON_AUTO json_t *res = json_array(), *byid = json_object();
    groups_text_t gc = {0};
    char *next = NULL;
    size_t bytes = 0;
    int rc = 0, done = 0, first = 1;
    const char *from = after[0] ? after : NULL;
    /* rows a read takes: what the budget holds at 1 KiB an item (an item is 1.3 KiB and
     * more), so a page of 1,000 is one statement at the default budget (2.5 MiB) */
    long chunk = (long)(c->describe_page_bytes / 1024);
    if (chunk < CHUNK_ROWS)
        chunk = CHUNK_ROWS;
    bus_reply_text_start(&out);   /* the envelope is written around the page, not copied */
    while (!done) {
        long ask = max >= 0 && max + 1 - (long)n < chunk ? max + 1 - (long)n : chunk;
        char lim[24];
        snprintf(lim, sizeof lim, "%ld", ask);
        tags_text_t tags;
        PG_AUTO PGresult *r = read_rows(service_db(ctx), c, account, NULL, nw, from, lim, NULL, &tags, e);
        if (!r) {
            rc = -1;
            break;
        }
        int got = PQntuples(r);
        if (first && (got < ask || (max >= 0 && got == max + 1))) {   /* the whole page in one read */
            int rows = max >= 0 && got > max ? (int)max : got;
            char *tok = rows < got ? describe_token(PQgetvalue(r, rows - 1, IR_ID)) : NULL;
            int over = page_in_place(&out, r, rows, &tags, tok, c->describe_page_bytes);
            free(tok);
            if (!over) {
                tags_text_free(&tags);
                goto send;
            }
        }
        first = 0;
        it = xrealloc(it, (n + (size_t)got + 1) * sizeof *it);
        for (int i = 0; i < got && !done; i++) {
            instance_row_t row;
            row_of(r, i, &row);
            if (max >= 0 && (long)n == max) {   /* the row past MaxResults: there is a next page */
                next = describe_token(last);
                done = 1;
                break;
            }
            size_t mark = items.len, tl;
            const char *tt = tags_text_of(&tags, row.v[IR_ID], &tl);
            instance_json_put_tags_text(&items, &row, tt, tl, &gc, 0);
            const char *rid = row.v[IR_RESERVATION] ? row.v[IR_RESERVATION] : "";
            json_t *idx = json_object_get(byid, rid);
            /* the answer's size so far: the items, a comma each, and a new reservation's
             * members around them */
            size_t grown = items.len - mark + 1 + (idx ? 0 : RESERVATION_BYTES + strlen(rid) + 12);
            if (bytes + grown > c->describe_page_bytes && n > 0) {   /* a bus message holds the page */
                items.len = mark;
                next = describe_token(last);
                done = 1;
                break;
            }
            bytes += grown;
            if (!idx) {
                idx = json_integer((json_int_t)json_array_size(res));
                json_object_set_new(byid, rid, idx);
                json_array_append_new(res, json_pack("[s, s]", rid, row.v[IR_ACCOUNT] ? row.v[IR_ACCOUNT] : ""));
            }
            it[n++] = (page_item_t){.off = mark, .len = items.len - mark, .res = (size_t)json_integer_value(idx)};
            snprintf(last, sizeof last, "%s", row.v[IR_ID]);
        }
        tags_text_free(&tags);
        if (got < ask)
            done = 1;
        from = last;
    }
    if (rc == 0)
        reservations_put(&out, &items, it, n, res, next);
send:
    if (rc == 0)
        bus_reply_text(ctx, &out);
    bigbuf_free_of(&out)(out.s);
    groups_text_free(&gc);
    free(next);
    free(it);
    free(items.s);
    return rc;
}

int compute_describe_instances(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (json_object_get(body, "InstanceId") && json_object_get(body, "MaxResults"))
        return verr_set(e, 400, "InvalidParameterCombination",
                        "The parameter instancesSet cannot be used with the parameter maxResults");
    const char *account;
    if (instances_scope(ctx, &account, e) < 0)
        return -1;
    narrow_t nw;
    narrow_of(body, FOR_INSTANCES, &nw, e);
    if (nw.exact) {
        int rc = page_text(ctx, body, account, &nw, e);
        narrow_free(&nw);
        return rc;
    }
    narrow_free(&nw);
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
    {"instance-status.reachability", "instanceStatus.details.status"},
    {"system-status.reachability", "systemStatus.details.status"},
    {"event.code", "eventsSet.code"},
    {"event.description", "eventsSet.description"},
    {"event.instance-event-id", "eventsSet.instanceEventId"},
    {"event.not-after", "eventsSet.notAfter"},
    {"event.not-before", "eventsSet.notBefore"},
    {"event.not-before-deadline", "eventsSet.notBeforeDeadline"},
    {NULL, NULL},
};

/* EC2's status checks: a host that stopped reporting makes its instances impaired. The
 * instance's tagSet rides along for the tag filters (tag:KEY, tag-key, tag-value) and is
 * dropped before the answer, which has none. */
static json_t *status_item(const json_t *it)
{
    const char *state = json_str(json_object_get(it, "instanceState"), "name", "");
    int running = !strcmp(state, "running"), up = json_is_true(json_object_get(it, "_hostUp"));
    const char *st = !running ? "not-applicable" : up ? "ok" : "impaired";
    const char *det = !running ? "initializing" : up ? "passed" : "failed";
    return json_pack("{s:s, s:s, s:O, s:{s:s, s:[{s:s, s:s}]}, s:{s:s, s:[{s:s, s:s}]}, s:[], s:O*}", "instanceId",
                     json_str(it, "instanceId", ""), "availabilityZone",
                     json_str(json_object_get(it, "placement"), "availabilityZone", ""), "instanceState",
                     json_object_get(it, "instanceState"), "systemStatus", "status", st, "details", "name",
                     "reachability", "status", det, "instanceStatus", "status", st, "details", "name", "reachability",
                     "status", det, "eventsSet", "tagSet", json_object_get(it, "tagSet"));
}

int compute_describe_instance_status(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    if (json_object_get(body, "InstanceId") && json_object_get(body, "MaxResults"))
        return verr_set(e, 400, "InvalidParameterCombination",
                        "The parameter instancesSet cannot be used with the parameter maxResults");
    /* Listed ids are looked up among all but the terminated (a terminated one listed is
     * no InvalidInstanceID.NotFound), but answered, as EC2 answers them, only when
     * running unless IncludeAllInstances: `describe-instance-status --instance-ids` of a
     * stopped instance is an empty list on EC2, and scripts rely on that. */
    int ids = json_object_get(body, "InstanceId") != NULL, all = json_flag(body, "IncludeAllInstances");
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
    json_array_foreach(filtered, i, it)
        json_object_del(it, "tagSet");
    json_t *page, *next;
    if (describe_page(filtered, body, "instanceId", 5, 1000, &page, &next, e) < 0)
        return -1;
    *reply = json_pack("{s:o, s:o*}", "instanceStatusSet", page, "nextToken", next);
    return 0;
}
