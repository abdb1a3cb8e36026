/* instance_json.c - one instance as DescribeInstances shows it, written as compact JSON
 * text straight from the item query's row. A page of 1,000 instances built as jansson
 * trees (about 60 objects and strings each), sized, then dumped spent most of compute's
 * CPU per page in malloc, free and the tree walks; written as text it is one growing
 * buffer. The members and their order are the former tree's (jansson keeps insertion
 * order, and a member set again kept its place), which the gateway renders to XML in that
 * order: tests/unit/test_instance_json.c compares the two. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "describe.h"
#include "ec2_hypervisor.h"
#include "instance_json.h"
#include "instance_state.h"
#include "jsonutil.h"
#include "metadata_options.h"
#include "public_dns.h"

/* The text of column k, "" for NULL (what PQgetvalue gives). */
static const char *col(const instance_row_t *r, int k) { return r->v[k] ? r->v[k] : ""; }

/* ,"key": of a literal key: its text and length are known where it is written, so
 * nothing is scanned for escapes or measured per item (a page is ~80,000 members). */
#define KEY_TEXT(k) ",\"" k "\":"
#define key(b, k) strbuf_put((b), KEY_TEXT(k), sizeof KEY_TEXT(k) - 1)
/* ,"key":"value" */
#define kstr(b, k, v) (key(b, k), str((b), (v)))
/* ,"key":123 */
#define kint(b, k, v) (key(b, k), put_int((b), (v)))
/* ,"key":true */
#define kbool(b, k, v) (key(b, k), strbuf_puts((b), (v) ? "true" : "false"))

static void str(strbuf_t *b, const char *s) { json_put_string(b, s, strlen(s)); }

/* An integer in decimal: what printf's %lld writes, without printf (two vsnprintf per
 * number through strbuf_printf). */
static void put_int(strbuf_t *b, long long v)
{
    char d[24], *p = d + sizeof d;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    strbuf_put(b, p, (size_t)(d + sizeof d - p));
}

/* "ip-172-31-0-5.ec2.internal" (cut to fit n, as snprintf would) */
static void private_dns(const char *ip, char *out, size_t n)
{
    static const char head[] = "ip-", tail[] = ".ec2.internal";
    size_t len = strlen(ip), k = 0;
    if (len > 63)
        len = 63;   /* the former copy through a char[64] */
    for (const char *s = head; *s && k + 1 < n; s++)
        out[k++] = *s;
    for (size_t i = 0; i < len && k + 1 < n; i++)
        out[k++] = ip[i] == '.' ? '-' : ip[i];
    for (const char *s = tail; *s && k + 1 < n; s++)
        out[k++] = *s;
    out[k] = 0;
}

/* One interface's facts (the network's: compute's table network_enis). */
typedef struct iface {
    const char *eni, *subnet, *vpc, *mac, *ip, *description, *attachment;
    const char *public_ip, *public_owner;   /* "" without a public address */
    long long index, attach_time;   /* attach_time 0: the network does not know it */
    int sdc;
    int dot;                        /* the attachment's DeleteOnTermination (an adopted primary's: false) */
    const char *groups;             /* compact JSON text */
} iface_t;

/* One interface as DescribeInstances shows it. An attachment time the network does not
 * know is the launch's. */
static void interface_put(strbuf_t *b, const iface_t *f, const char *owner, const char *launched)
{
    char dns[96], att[96], when[32];
    if (f->attach_time > 0)
        describe_time(f->attach_time, when);
    private_dns(f->ip, dns, sizeof dns);
    /* the network's id of a primary's attachment (enis.c): eni-attach-<the eni's hex>,
     * where the network has not said it */
    if (!*f->attachment)
        snprintf(att, sizeof att, "eni-attach-%s", strlen(f->eni) > 4 ? f->eni + 4 : f->eni);
    strbuf_puts(b, "{\"networkInterfaceId\":");
    str(b, f->eni);
    kstr(b, "subnetId", f->subnet);
    kstr(b, "vpcId", f->vpc);
    kstr(b, "description", f->description);
    kstr(b, "ownerId", owner);
    kstr(b, "status", "in-use");
    kstr(b, "macAddress", f->mac);
    kstr(b, "privateIpAddress", f->ip);
    kstr(b, "privateDnsName", dns);
    kbool(b, "sourceDestCheck", f->sdc);
    key(b, "groupSet");
    strbuf_puts(b, f->groups);
    strbuf_puts(b, ",\"attachment\":{\"attachmentId\":");
    str(b, *f->attachment ? f->attachment : att);
    kint(b, "deviceIndex", f->index);
    kstr(b, "status", "attached");
    kstr(b, "attachTime", f->attach_time > 0 ? when : launched);
    kbool(b, "deleteOnTermination", f->dot);
    strbuf_puts(b, ",\"networkCardIndex\":0},\"privateIpAddressesSet\":[{\"privateIpAddress\":");
    str(b, f->ip);
    kstr(b, "privateDnsName", dns);
    kbool(b, "primary", 1);
    if (*f->public_ip)
        public_address_put(b, f->public_ip, f->public_owner);
    strbuf_puts(b, "}]");
    if (*f->public_ip)
        public_address_put(b, f->public_ip, f->public_owner);
    strbuf_putc(b, '}');
}

/* An interface attached later, from network_enis as the item query's JSON has it: {eni,
 * index, attachment?, subnet, vpc, mac, ip, description?, sdc?, groups, attach_time?, dot?}.
 * Without groups (never: the query always writes the member) it is left out, as the
 * tree builder's pack failed then. */
static int attached_put(strbuf_t *b, const json_t *f, const char *owner, const char *launched)
{
    const json_t *sdc = json_object_get(f, "sdc"), *groups = json_object_get(f, "groups");
    if (!groups)
        return 0;
    strbuf_t g = {0};
    json_compact_put(&g, groups);
    const iface_t x = {.eni = json_str(f, "eni", ""), .subnet = json_str(f, "subnet", ""),
                       .vpc = json_str(f, "vpc", ""), .mac = json_str(f, "mac", ""), .ip = json_str(f, "ip", ""),
                       .description = json_str(f, "description", ""), .attachment = json_str(f, "attachment", ""),
                       .index = json_int(f, "index", 0), .attach_time = json_int(f, "attach_time", 0),
                       .sdc = !sdc || json_is_true(sdc), .groups = g.s ? g.s : "null",
                       .dot = json_is_true(json_object_get(f, "dot")),
                       .public_ip = json_str(f, "public_ip", ""), .public_owner = json_str(f, "public_owner", "")};
    interface_put(b, &x, owner, launched);
    free(g.s);
    return 1;
}

static const char *groups_of(groups_text_t *gc, const char *text)
{
    if (!gc->text || strcmp(gc->text, text)) {
        free(gc->text);
        free(gc->compact);
        gc->text = xstrdup(text);
        JSON_AUTO json_t *g = json_loads(text, 0, NULL);
        gc->compact = json_compact_len(g, NULL);
        if (!gc->compact)
            gc->compact = xstrdup("[]");
    }
    return gc->compact;
}

void groups_text_free(groups_text_t *gc)
{
    free(gc->text);
    free(gc->compact);
}

/* The tags, and for an instance in a public cloud (docs/hybrid.md) the cloud and its
 * remote id as tags virga:cloud and virga:remote-instance-id, so a tenant can filter on
 * them. */
static void tags_put(strbuf_t *b, const instance_row_t *r, const json_t *tags, const char *text, size_t text_len)
{
    size_t i, n = 0;
    const json_t *t;
    strbuf_putc(b, '[');
    if (text_len) {   /* the items as tags_text_of gives them */
        strbuf_put(b, text, text_len);
        n++;
    }
    json_array_foreach(tags, i, t) {
        if (n++)
            strbuf_putc(b, ',');
        json_compact_put(b, t);
    }
    const char *cloud = col(r, IR_CLOUD), *rid = col(r, IR_REMOTE_ID);
    if (strcmp(cloud, "private")) {
        strbuf_puts(b, n++ ? ",{\"key\":\"virga:cloud\",\"value\":" : "{\"key\":\"virga:cloud\",\"value\":");
        str(b, cloud);
        strbuf_putc(b, '}');
        if (*rid) {
            strbuf_puts(b, ",{\"key\":\"virga:remote-instance-id\",\"value\":");
            str(b, rid);
            strbuf_putc(b, '}');
        }
    }
    strbuf_putc(b, ']');
}

/* instance_json_put, its tags either a tree (tags) or the text of their items (text) */
static void item_put(strbuf_t *b, const instance_row_t *r, const json_t *tags, const char *text, size_t text_len,
                     groups_text_t *gc, int hidden)
{
    const char *owner = col(r, IR_ACCOUNT), *state = col(r, IR_STATE);
    int primary = r->v[IR_ENI] != NULL;
    char when[32], dns[96] = "";
    describe_time(atoll(col(r, IR_LAUNCH_TIME)), when);
    if (primary)
        private_dns(col(r, IR_IP), dns, sizeof dns);
    strbuf_reserve(b, 2048);
    strbuf_puts(b, "{\"instanceId\":");
    str(b, col(r, IR_ID));
    kstr(b, "imageId", col(r, IR_IMAGE));
    strbuf_puts(b, ",\"instanceState\":{\"code\":");
    put_int(b, instance_state_code(state));
    strbuf_puts(b, ",\"name\":");
    str(b, state);
    strbuf_putc(b, '}');
    kstr(b, "privateDnsName", dns);
    /* dnsName: the public DNS name of the instance's public address (ipAddress below), the
     * first interface's; a burst instance's public cloud name is not known here */
    JSON_AUTO json_t *more = r->v[IR_ATTACHED] ? json_loads(r->v[IR_ATTACHED], 0, NULL) : NULL;
    const char *public_ip = primary ? col(r, IR_PUBLIC_IP) : json_str(json_array_get(more, 0), "public_ip", "");
    char public_dns[320];
    size_t public_dns_len = strcmp(col(r, IR_CLOUD), "private") ? 0 : public_dns_name(public_ip, public_dns, sizeof public_dns);
    key(b, "dnsName");
    json_put_string(b, public_dns_len ? public_dns : "", public_dns_len);
    kint(b, "amiLaunchIndex", atoi(col(r, IR_LAUNCH_INDEX)));
    strbuf_puts(b, ",\"productCodes\":[]");
    kstr(b, "instanceType", col(r, IR_TYPE));
    kstr(b, "launchTime", when);
    strbuf_puts(b, ",\"placement\":{\"availabilityZone\":");
    str(b, col(r, IR_ZONE));
    strbuf_puts(b, ",\"groupName\":\"\",\"tenancy\":\"default\"},\"monitoring\":{\"state\":\"disabled\"},"
                   "\"architecture\":\"x86_64\",\"rootDeviceType\":\"instance-store\",\"rootDeviceName\":"
                   "\"/dev/vda\",\"virtualizationType\":\"hvm\",\"hypervisor\":");
    str(b, ec2_hypervisor(EC2_HV_INSTANCE));
    strbuf_puts(b, ",\"tagSet\":");
    tags_put(b, r, tags, text, text_len);
    strbuf_puts(b, ",\"ebsOptimized\":false,\"enaSupport\":true,\"cpuOptions\":{\"coreCount\":");
    put_int(b, atoi(col(r, IR_VCPUS)));
    strbuf_puts(b, ",\"threadsPerCore\":1}");
    kstr(b, "reason", col(r, IR_TRANSITION));
    kstr(b, "platformDetails", "Linux/UNIX");
    if (hidden) {
        kstr(b, "_reservationId", col(r, IR_RESERVATION));
        kstr(b, "_ownerId", owner);
        kbool(b, "_hostUp", col(r, IR_HOST_UP)[0] == 't');
    }
    if (r->v[IR_KEY_NAME])
        kstr(b, "keyName", r->v[IR_KEY_NAME]);
    if (r->v[IR_KERNEL])
        kstr(b, "kernelId", r->v[IR_KERNEL]);
    if (r->v[IR_RAMDISK])
        kstr(b, "ramdiskId", r->v[IR_RAMDISK]);
    if (*col(r, IR_CLIENT_TOKEN))
        kstr(b, "clientToken", col(r, IR_CLIENT_TOKEN));
    const char *reason = col(r, IR_STATE_REASON);
    if (*reason) {
        const char *colon = strstr(reason, ": ");
        strbuf_puts(b, ",\"stateReason\":{\"code\":");
        json_put_string(b, reason, colon ? (size_t)(colon - reason) : strlen(reason));
        kstr(b, "message", colon ? colon + 2 : reason);
        strbuf_putc(b, '}');
    }
    const char *groups = primary ? groups_of(gc, col(r, IR_GROUPS)) : NULL;
    const iface_t f = {.eni = col(r, IR_ENI), .subnet = col(r, IR_SUBNET), .vpc = col(r, IR_VPC),
                       .mac = col(r, IR_MAC), .ip = col(r, IR_IP), .description = col(r, IR_DESCRIPTION),
                       .attachment = col(r, IR_ATTACHMENT), .sdc = col(r, IR_SDC)[0] == 't', .groups = groups,
                       .public_ip = col(r, IR_PUBLIC_IP), .public_owner = col(r, IR_PUBLIC_OWNER),
                       .dot = col(r, IR_PRIMARY_DOT)[0] != 'f'};
    if (primary) {
        kstr(b, "privateIpAddress", f.ip);
        kstr(b, "subnetId", f.subnet);
        kstr(b, "vpcId", f.vpc);
        key(b, "groupSet");
        strbuf_puts(b, groups);
        kbool(b, "sourceDestCheck", f.sdc);
    }
    /* the primary (device 0), then the interfaces attached later, in device order */
    strbuf_puts(b, ",\"networkInterfaceSet\":[");
    int n = 0;
    char first_public[64];   /* the first interface's public address: the instance's */
    snprintf(first_public, sizeof first_public, "%s", primary ? f.public_ip : "");
    if (primary) {
        interface_put(b, &f, owner, when);
        n++;
    }
    if (more) {
        size_t k;
        const json_t *x;
        json_array_foreach(more, k, x) {
            if (n)
                strbuf_putc(b, ',');
            size_t mark = b->len;
            if (attached_put(b, x, owner, when)) {
                if (!n++)
                    snprintf(first_public, sizeof first_public, "%s", json_str(x, "public_ip", ""));
            } else if (n) {
                b->len = mark - 1;   /* its comma */
                b->s[b->len] = 0;
            }
        }
    }
    strbuf_putc(b, ']');
    /* ipAddress: a public cloud's address of a burst instance (public, else its remote
     * private one), else the first interface's public address */
    const char *remote = *col(r, IR_REMOTE_PUBLIC_IP) ? col(r, IR_REMOTE_PUBLIC_IP) : col(r, IR_REMOTE_PRIVATE_IP);
    const char *addr = strcmp(col(r, IR_CLOUD), "private") && *remote ? remote : *first_public ? first_public : NULL;
    if (addr)
        kstr(b, "ipAddress", addr);
    if (!primary)
        strbuf_puts(b, ",\"groupSet\":[]");
    /* the instance's own metadata options, else the cloud's (metadata_options.c) */
    const char *tokens = r->v[IR_MD_TOKENS] ? r->v[IR_MD_TOKENS] : md_options_default_tokens();
    strbuf_puts(b, ",\"metadataOptions\":{\"state\":\"applied\",\"httpTokens\":");
    str(b, tokens);
    kint(b, "httpPutResponseHopLimit",
         r->v[IR_MD_HOP_LIMIT] ? atoll(r->v[IR_MD_HOP_LIMIT]) : md_options_default_hop_limit());
    kstr(b, "httpEndpoint", col(r, IR_MD_OFF)[0] == 't' ? "disabled" : "enabled");
    strbuf_puts(b, ",\"httpProtocolIpv6\":\"disabled\"");
    kstr(b, "instanceMetadataTags", col(r, IR_MD_TAGS)[0] == 't' ? "enabled" : "disabled");
    strbuf_putc(b, '}');
    /* What is the same for every instance here, as EC2 shapes it: the root disk is
     * instance store (rootDeviceType), and EC2 lists only EBS volumes in
     * blockDeviceMapping; Linux/UNIX's usage operation, set at launch; ip-name hostnames
     * without resource-name records (RunInstances refuses the others); no auto recovery,
     * hibernation, enclaves or capacity reservations (DescribeInstanceTypes says so too;
     * RunInstances' "none" preference is not kept: no reservation exists either way).
     * No bootMode: EC2 shows the one the image says, and images here say none. */
    strbuf_puts(b, ",\"blockDeviceMapping\":[],\"usageOperation\":\"RunInstances\"");
    kstr(b, "usageOperationUpdateTime", when);
    strbuf_puts(b, ",\"privateDnsNameOptions\":{\"hostnameType\":\"ip-name\",\"enableResourceNameDnsARecord\":false,"
                   "\"enableResourceNameDnsAAAARecord\":false},\"maintenanceOptions\":{\"autoRecovery\":\"disabled\"},"
                   "\"hibernationOptions\":{\"configured\":false},\"enclaveOptions\":{\"enabled\":false},"
                   "\"capacityReservationSpecification\":{\"capacityReservationPreference\":\"open\"}}");
}

void instance_json_put(strbuf_t *b, const instance_row_t *r, const json_t *tags, groups_text_t *gc, int hidden)
{
    item_put(b, r, tags, NULL, 0, gc, hidden);
}

void instance_json_put_tags_text(strbuf_t *b, const instance_row_t *r, const char *tags, size_t tags_len,
                                 groups_text_t *gc, int hidden)
{
    item_put(b, r, NULL, tags, tags_len, gc, hidden);
}
