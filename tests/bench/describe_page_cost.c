/* describe_page_cost.c - CPU time of the two text passes of a DescribeInstances page
 * (issue 11: a page of 1,000 of an account's instances), each alone, on rows shaped as
 * bench_scale.py's: every instance pending with its primary interface (no public address),
 * one security group and a Name tag, 100 instances a reservation.
 *
 *   compute: instance_json_put of each row (services/compute/instance_json.c), the
 *            items grouped into reservations as the page's reply text
 *   gateway: the reply's envelope read in place (json_scan_members_last, as the bus reader
 *            does) and its body written as EC2 XML (json_xml_members, render.c)
 *
 * Thread CPU time, the best of ROUNDS (default 30), so a loaded machine changes the
 * figures little. Prints the sizes too (the page's JSON and XML).
 *
 *   build/bench/describe_page_cost [INSTANCES] [ROUNDS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "instance_json.h"
#include "json_scan.h"
#include "json_xml.h"
#include "jsonutil.h"
#include "strbuf.h"

/* instance_state.c's, whose objects pull in the lifecycle: the page's states only */
int instance_state_code(const char *state)
{
    return !strcmp(state, "running") ? 16 : 0;
}

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct page_rows {
    instance_row_t *rows;
    char (*text)[8][64];   /* each row's own strings */
    json_t **tags;
    int n;
} page_rows_t;

static void rows_make(page_rows_t *p, int n)
{
    p->n = n;
    p->rows = calloc((size_t)n, sizeof *p->rows);
    p->text = calloc((size_t)n, sizeof *p->text);
    p->tags = calloc((size_t)n, sizeof *p->tags);
    for (int i = 0; i < n; i++) {
        instance_row_t *r = &p->rows[i];
        char(*t)[64] = p->text[i];
        snprintf(t[0], 64, "i-%017x", 0x1234567u * (unsigned)(i + 1));
        snprintf(t[1], 64, "r-%017x", 0x7654321u * (unsigned)(i / 100 + 1));
        snprintf(t[2], 64, "eni-%017x", 0x2345678u * (unsigned)(i + 1));
        snprintf(t[3], 64, "02:00:0a:00:%02x:%02x", (i >> 8) & 255, i & 255);
        snprintf(t[4], 64, "172.31.%d.%d", (i >> 8) & 255, i & 255);
        snprintf(t[5], 64, "%d", i % 100);
        snprintf(t[6], 64, "eni-attach-%017x", 0x3456789u * (unsigned)(i + 1));
        snprintf(t[7], 64, "ab-%d", i);
        r->v[IR_ID] = t[0];
        r->v[IR_RESERVATION] = t[1];
        r->v[IR_ACCOUNT] = "123456789012";
        r->v[IR_IMAGE] = "ami-0123456789abcdef0";
        r->v[IR_STATE] = "pending";
        r->v[IR_TRANSITION] = "";
        r->v[IR_LAUNCH_INDEX] = t[5];
        r->v[IR_TYPE] = "t3.nano";
        r->v[IR_LAUNCH_TIME] = "1796000000";
        r->v[IR_ZONE] = "virga-1a";
        r->v[IR_STATE_REASON] = "";
        r->v[IR_CLIENT_TOKEN] = "";
        r->v[IR_VCPUS] = "2";
        r->v[IR_HOST_UP] = "t";
        r->v[IR_CLOUD] = "private";
        r->v[IR_REMOTE_ID] = "";
        r->v[IR_REMOTE_PUBLIC_IP] = "";
        r->v[IR_REMOTE_PRIVATE_IP] = "";
        r->v[IR_ENI] = t[2];
        r->v[IR_SUBNET] = "subnet-0123456789abcdef0";
        r->v[IR_VPC] = "vpc-0123456789abcdef0";
        r->v[IR_MAC] = t[3];
        r->v[IR_IP] = t[4];
        r->v[IR_GROUPS] = "[{\"groupId\": \"sg-0123456789abcdef0\", \"groupName\": \"default\"}]";
        r->v[IR_SDC] = "t";
        r->v[IR_DESCRIPTION] = "";
        r->v[IR_ATTACHMENT] = t[6];
        r->v[IR_PUBLIC_IP] = "";
        r->v[IR_PUBLIC_OWNER] = "";
        r->v[IR_MD_OFF] = "f";
        p->tags[i] = json_pack("[{s:s, s:s}]", "key", "Name", "value", t[7]);
    }
}

/* compute's pass: the items, then one reservation each 100 around them (the page's
 * grouping copies the items once more, as reservations_put does) */
static void compute_pass(const page_rows_t *p, strbuf_t *reply)
{
    strbuf_t items = {0};
    groups_text_t gc = {0};
    size_t *off = malloc(((size_t)p->n + 1) * sizeof *off);
    for (int i = 0; i < p->n; i++) {
        off[i] = items.len;
        instance_json_put(&items, &p->rows[i], p->tags[i], &gc, 0);
    }
    off[p->n] = items.len;
    reply->len = 0;
    strbuf_reserve(reply, items.len + 256 * ((size_t)p->n / 100 + 1));
    strbuf_puts(reply, "{\"reservationSet\":[");
    for (int i = 0; i < p->n; i++) {
        if (i % 100 == 0) {
            strbuf_puts(reply, i ? "]},{\"reservationId\":\"" : "{\"reservationId\":\"");
            strbuf_puts(reply, p->rows[i].v[IR_RESERVATION]);
            strbuf_puts(reply, "\",\"ownerId\":\"123456789012\",\"groupSet\":[],\"instancesSet\":[");
        } else {
            strbuf_putc(reply, ',');
        }
        strbuf_put(reply, items.s + off[i], off[i + 1] - off[i]);
    }
    strbuf_puts(reply, "]}]}");
    free(off);
    free(items.s);
    groups_text_free(&gc);
}

struct body_of {
    json_span_t body;
};

static int body_member(void *arg, const char *key, json_span_t value)
{
    if (!strcmp(key, "body"))
        ((struct body_of *)arg)->body = value;
    return 0;
}

/* the gateway's pass: the envelope read, the body written as XML */
static int gateway_pass(const strbuf_t *env, strbuf_t *xml)
{
    struct body_of b = {{NULL, 0}};
    if (json_scan_members_last(env->s, env->len, "body", body_member, &b) < 0 || !b.body.p)
        return -1;
    xml->len = 0;
    return json_xml_members(xml, b.body.p, b.body.n, "item");
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000, rounds = argc > 2 ? atoi(argv[2]) : 30;
    if (n < 1 || n > 100000 || rounds < 1 || rounds > 1000) {
        fprintf(stderr, "usage: %s [INSTANCES 1..100000] [ROUNDS 1..1000]\n", argv[0]);
        return 2;
    }
    page_rows_t p;
    rows_make(&p, n);
    strbuf_t reply = {0}, env = {0}, xml = {0};
    double best_c = 1e9, best_g = 1e9;
    for (int r = 0; r < rounds; r++) {
        double t0 = cpu_s();
        compute_pass(&p, &reply);
        double t1 = cpu_s();
        env.len = 0;
        strbuf_puts(&env, "{\"v\":1,\"id\":\"0123456789abcdef0123456789abcdef\",\"type\":\"reply\",\"corr\":\"x\","
                          "\"ok\":true,\"body\":");
        strbuf_put(&env, reply.s, reply.len);
        strbuf_putc(&env, '}');
        double t2 = cpu_s();
        if (gateway_pass(&env, &xml) < 0) {
            fprintf(stderr, "the page's JSON could not be rendered\n");
            return 1;
        }
        double t3 = cpu_s();
        if (t1 - t0 < best_c)
            best_c = t1 - t0;
        if (t3 - t2 < best_g)
            best_g = t3 - t2;
    }
    printf("DescribeInstances page of %d: JSON %zu bytes, XML %zu bytes\n", n, reply.len, xml.len);
    printf("  compute: items written and grouped  %.2f ms CPU (best of %d)\n", best_c * 1000, rounds);
    printf("  gateway: envelope read, XML written %.2f ms CPU (best of %d)\n", best_g * 1000, rounds);
    if (getenv("DESCRIBE_PAGE_DUMP")) {   /* the XML, to compare two builds' output */
        FILE *f = fopen(getenv("DESCRIBE_PAGE_DUMP"), "w");
        if (f) {
            fwrite(xml.s, 1, xml.len, f);
            fclose(f);
        }
    }
    for (int i = 0; i < n; i++)
        json_decref(p.tags[i]);
    free(p.rows);
    free(p.text);
    free(p.tags);
    free(reply.s);
    free(env.s);
    free(xml.s);
    return 0;
}
