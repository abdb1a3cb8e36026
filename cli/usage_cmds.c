/* usage_cmds.c - virgadm's usage and invoice commands (docs/accounting.md), over
 * accounting.usage and accounting.invoice, printed as a table, CSV or JSON (as
 * OpenNebula's oneacct does), and the invoice also as a PDF (pdf.c).
 *
 *   virgadm usage [--account A] [--user U] [--resource R] [--type T] [--from TIME]
 *                 [--to TIME] [--limit N] [--format table|csv|json]
 *   virgadm invoice --account A --month YYYY-MM [--format table|csv|json] [--pdf FILE]
 *   virgadm usage-feed --group NAME [--max N] [--idle-ms MS]
 *       reads virga.usage in consumer group virgadm.NAME and prints one JSON line per
 *       record ({"key", "record"}), committing after each line is written: a reference
 *       billing consumer (at least once; dedupe by key). */
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "bus_feed.h"
#include "cli.h"
#include "jsonutil.h"
#include "strbuf.h"

typedef enum { FMT_TABLE, FMT_CSV, FMT_JSON } fmt_t;

/* The options each command takes: flag -> body member. */
static const struct opt {
    const char *flag, *member;
} usage_opts[] = {
    {"--account", "account_id"}, {"--user", "user_id"}, {"--resource", "resource_id"}, {"--type", "usage_type"},
    {"--from", "start"}, {"--to", "end"}, {"--month", "month"},
};

static int parse(int argc, char **argv, json_t *body, fmt_t *fmt, const char **pdf)
{
    for (int i = 0; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "virgadm: %s needs a value\n", argv[i]);
            return -1;
        }
        const char *v = argv[++i], *flag = argv[i - 1];
        size_t k = 0;
        while (k < ARRAY_LEN(usage_opts) && strcmp(flag, usage_opts[k].flag))
            k++;
        if (k < ARRAY_LEN(usage_opts))
            json_object_set_new(body, usage_opts[k].member, json_string(v));
        else if (!strcmp(flag, "--limit"))
            json_object_set_new(body, "limit", json_integer(atoll(v)));
        else if (!strcmp(flag, "--format") && (!strcmp(v, "table") || !strcmp(v, "csv") || !strcmp(v, "json")))
            *fmt = v[0] == 't' ? FMT_TABLE : v[0] == 'c' ? FMT_CSV : FMT_JSON;
        else if (!strcmp(flag, "--pdf") && pdf)
            *pdf = v;
        else {
            fprintf(stderr, "virgadm: unknown option %s %s\n", flag, v);
            return -1;
        }
    }
    return 0;
}

static void csv_field(FILE *f, const char *s, int last)
{
    if (strpbrk(s, ",\"\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputc(last ? '\n' : ',', f);
}

static void print_json(const json_t *r)
{
    char *s = json_dumps(r, JSON_INDENT(2));
    printf("%s\n", s);
    free(s);
}

static const char *const usage_cols[] = {"start", "end", "account_id", "user_id", "resource_id", "usage_type", "item",
                                         "quantity", "unit", "cloud"};

static int cmd_usage(bus_t *bus, int argc, char **argv)
{
    json_t *body = json_object();
    fmt_t fmt = FMT_TABLE;
    if (parse(argc, argv, body, &fmt, NULL) < 0) {
        json_decref(body);
        return 2;
    }
    json_t *r = NULL;
    verr_t e = {0};
    if (bus_call(bus, "accounting", "accounting.usage", body, NULL, 60000, &r, &e) < 0) {
        fprintf(stderr, "%s: %s\n", e.code, e.message);
        return 1;
    }
    json_t *recs = json_object_get(r, "records"), *rec;
    size_t i;
    if (fmt == FMT_JSON) {
        print_json(r);
    } else if (fmt == FMT_CSV) {
        for (size_t c = 0; c < ARRAY_LEN(usage_cols); c++)
            csv_field(stdout, usage_cols[c], c + 1 == ARRAY_LEN(usage_cols));
        json_array_foreach(recs, i, rec)
            for (size_t c = 0; c < ARRAY_LEN(usage_cols); c++)
                csv_field(stdout, json_str(rec, usage_cols[c], ""), c + 1 == ARRAY_LEN(usage_cols));
    } else {
        printf("%-27s %-27s %-12s %-10s %-21s %-17s %-10s %14s %-9s %s\n", "START", "END", "ACCOUNT", "USER",
               "RESOURCE", "TYPE", "ITEM", "QUANTITY", "UNIT", "CLOUD");
        json_array_foreach(recs, i, rec)
            printf("%-27s %-27s %-12s %-10s %-21s %-17s %-10s %14s %-9s %s\n", json_str(rec, "start", ""),
                   json_str(rec, "end", ""), json_str(rec, "account_id", ""), json_str(rec, "user_id", ""),
                   json_str(rec, "resource_id", ""), json_str(rec, "usage_type", ""), json_str(rec, "item", ""),
                   json_str(rec, "quantity", ""), json_str(rec, "unit", ""), json_str(rec, "cloud", ""));
        json_t *tot = json_object_get(r, "totals"), *t;
        printf("\nTOTALS\n");
        json_array_foreach(tot, i, t)
            printf("%-12s %-17s %-10s %-10s %14s %-9s (%lld records)\n", json_str(t, "account_id", ""),
                   json_str(t, "usage_type", ""), json_str(t, "item", ""), json_str(t, "cloud", ""),
                   json_str(t, "quantity", ""), json_str(t, "unit", ""), (long long)json_int(t, "records", 0));
        if (json_is_true(json_object_get(r, "truncated")))
            printf("(more records than --limit; the totals count them all)\n");
    }
    json_decref(r);
    return 0;
}

/* The invoice as lines of text: the table format, and the PDF's pages. */
static char **invoice_text(const json_t *r, size_t *n)
{
    json_t *lines = json_object_get(r, "lines"), *l;
    size_t i, cap = json_array_size(lines) + 16, k = 0;
    char **out = xcalloc(cap, sizeof *out);
    const char *cur = json_str(r, "currency", "");
    out[k++] = xasprintf("INVOICE  account %s  month %s  currency %s", json_str(r, "account_id", ""),
                         json_str(r, "month", ""), cur);
    out[k++] = xstrdup("");
    out[k++] = xasprintf("%-18s %-12s %-10s %-10s %16s %-9s %12s %14s", "USAGE", "ITEM", "CLOUD", "FROM", "QUANTITY",
                         "UNIT", "UNIT PRICE", "AMOUNT");
    json_array_foreach(lines, i, l)
        out[k++] = xasprintf("%-18s %-12s %-10s %-10s %16s %-9s %12s %14s", json_str(l, "usage_type", ""),
                             json_str(l, "item", ""), json_str(l, "cloud", ""), json_str(l, "price_effective", ""),
                             json_str(l, "quantity", ""), json_str(l, "quantity_unit", ""),
                             json_str(l, "unit_price", ""), json_str(l, "amount", ""));
    out[k++] = xstrdup("");
    out[k++] = xasprintf("%-92s %14s %s", "TOTAL", json_str(r, "total", ""), cur);
    if (json_array_size(json_object_get(r, "unpriced")))
        out[k++] = xasprintf("(%zu usage lines have no price in the list and are not charged)",
                             json_array_size(json_object_get(r, "unpriced")));
    *n = k;
    return out;
}

static const char *const invoice_cols[] = {"usage_type", "item", "cloud", "price_effective", "quantity",
                                           "quantity_unit", "unit_price", "amount"};

static int cmd_invoice(bus_t *bus, int argc, char **argv)
{
    json_t *body = json_object();
    fmt_t fmt = FMT_TABLE;
    const char *pdf = NULL;
    if (parse(argc, argv, body, &fmt, &pdf) < 0 || !json_object_get(body, "account_id") ||
        !json_object_get(body, "month")) {
        fprintf(stderr, "usage: virgadm invoice --account ACCOUNT_ID --month YYYY-MM [--format table|csv|json] "
                        "[--pdf FILE]\n");
        json_decref(body);
        return 2;
    }
    json_t *r = NULL;
    verr_t e = {0};
    if (bus_call(bus, "accounting", "accounting.invoice", body, NULL, 120000, &r, &e) < 0) {
        fprintf(stderr, "%s: %s\n", e.code, e.message);
        return 1;
    }
    size_t n = 0, i;
    char **text = invoice_text(r, &n);
    int rc = 0;
    if (pdf && pdf_write_text(pdf, (const char *const *)text, n) < 0) {
        fprintf(stderr, "virgadm: cannot write %s\n", pdf);
        rc = 1;
    }
    if (fmt == FMT_JSON) {
        print_json(r);
    } else if (fmt == FMT_CSV) {
        json_t *l;
        for (size_t c = 0; c < ARRAY_LEN(invoice_cols); c++)
            csv_field(stdout, invoice_cols[c], c + 1 == ARRAY_LEN(invoice_cols));
        json_array_foreach(json_object_get(r, "lines"), i, l)
            for (size_t c = 0; c < ARRAY_LEN(invoice_cols); c++)
                csv_field(stdout, json_str(l, invoice_cols[c], ""), c + 1 == ARRAY_LEN(invoice_cols));
        printf("total,,,,,,,%s\n", json_str(r, "total", ""));
    } else if (!pdf) {
        for (i = 0; i < n; i++)
            printf("%s\n", text[i]);
    }
    for (i = 0; i < n; i++)
        free(text[i]);
    free(text);
    json_decref(r);
    return rc;
}

static int cmd_feed(bus_t *bus, int argc, char **argv)
{
    const char *group = NULL;
    long max = -1, idle_ms = 10000;
    for (int i = 0; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--group"))
            group = argv[i + 1];
        else if (!strcmp(argv[i], "--max"))
            max = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--idle-ms"))
            idle_ms = atol(argv[i + 1]);
    }
    if (!group || !bus_name_valid(group, 40) || idle_ms < 1 || argc % 2) {
        fprintf(stderr, "usage: virgadm usage-feed --group NAME [--max N] [--idle-ms MS]\n");
        return 2;
    }
    AUTOFREE char *gid = xasprintf("%s.%s", bus_principal(bus), group);
    verr_t e = {0};
    bus_feed_t *f = bus_feed_open(bus, "virga.usage", gid, &e);
    if (!f) {
        fprintf(stderr, "%s: %s\n", e.code, e.message);
        return 1;
    }
    long n = 0;
    int rc = 0;
    while (max < 0 || n < max) {
        bus_feed_msg_t m;
        int got = bus_feed_next(f, (int)idle_ms, &m, &e);
        if (got <= 0) {
            rc = got < 0;
            if (got < 0)
                fprintf(stderr, "%s: %s\n", e.code, e.message);
            break;
        }
        if (!strcmp(m.sender, "accounting")) {   /* only accounting writes usage records */
            json_t *line = json_pack("{s:s, s:O}", "key", m.key, "record", json_object_get(m.envelope, "body"));
            char *s = json_dumps(line, JSON_COMPACT);
            printf("%s\n", s);
            free(s);
            json_decref(line);
            n++;
        }
        bus_feed_msg_clear(&m);
        /* written out before committed: a reader killed in between sees it again */
        if (fflush(stdout) != 0 || bus_feed_commit(f, &e) < 0) {
            rc = 1;
            break;
        }
    }
    bus_feed_close(f);
    return rc;
}

int usage_cmds_run(bus_t *bus, int argc, char **argv)
{
    if (!strcmp(argv[0], "usage-feed"))
        return cmd_feed(bus, argc - 1, argv + 1);
    if (!strcmp(argv[0], "usage"))
        return cmd_usage(bus, argc - 1, argv + 1);
    if (!strcmp(argv[0], "invoice"))
        return cmd_invoice(bus, argc - 1, argv + 1);
    return -1;
}

void usage_cmds_usage(FILE *f)
{
    fprintf(f, "  usage [--account A] [--user U] [--resource R] [--type T] [--from TIME] [--to TIME]\n"
               "        [--limit N] [--format table|csv|json]\n"
               "                                     usage records and totals (TIME: YYYY-MM-DD[THH:MM:SSZ], UTC)\n"
               "  invoice --account A --month YYYY-MM [--format table|csv|json] [--pdf FILE]\n"
               "                                     a month of the account's usage at the price list's prices\n"
               "  usage-feed --group NAME [--max N] [--idle-ms MS]\n"
               "                                     read virga.usage as principal billing, group billing.NAME,\n"
               "                                     one JSON line per record\n");
}
