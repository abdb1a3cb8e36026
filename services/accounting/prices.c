/* prices.c - the price list: a YAML file (accounting.price_list, docs/accounting.md)
 * loaded into accounting.prices at start and again whenever the file changes (checked on
 * the reconcile timer). The file is the operator's; the table is how invoices see it.
 *
 *   currency: USD
 *   periods:
 *     "2026-01-01":                    # applies to usage from this date (UTC) on
 *       instance_hour: {t3.nano: 0.0052, default: 0.02}
 *       public_instance_hour: {t3.nano: 0.0052}   # the public cloud's own price
 *       public_cloud_markup: 0.10      # added to it: 10 %
 *       eip_hour: 0.005                # an elastic IP, allocated
 *       public_ipv4_hour: 0.005        # a public address a launch assigned
 *       image_gb_month: 0.05
 *       storage_gb_month: 0.023
 *       transfer_gb_out: 0.09
 *
 * A GB is 2^30 bytes, a month 730 hours (as the big clouds price). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "accounting.h"
#include "config.h"
#include "log.h"

#define GIB "1073741824"
#define GIB_MONTH "783831531520"   /* 2^30 bytes x 730 hours, in byte-hours */

/* One row per field: what usage it prices and how its unit converts to the records'. */
static const struct field {
    const char *name;
    const char *usage_type;
    int per_item;          /* keyed by instance type (default = any) */
    int public_;
    const char *list_unit;
    const char *per_unit;  /* record units per list unit */
} fields[] = {
    {"instance_hour", "instance.running", 1, 0, "hour", "3600"},
    {"public_instance_hour", "instance.running", 1, 1, "hour", "3600"},
    {"eip_hour", "address.allocated", 0, 0, "hour", "3600"},
    {"public_ipv4_hour", "address.public-ipv4", 0, 0, "hour", "3600"},
    {"image_gb_month", "image.stored", 0, 0, "GB-month", GIB_MONTH},
    {"storage_gb_month", "storage.stored", 0, 0, "GB-month", GIB_MONTH},
    {"transfer_gb_out", "transfer.out", 0, 0, "GB", GIB},
};

typedef struct row {
    char date[11], item[64], price[32], markup[32];
    const struct field *f;
} row_t;

typedef struct parsed {
    row_t *rows;
    size_t n;
    char currency[8];
    char markups[64][2][32];   /* date, markup */
    int nmarkups;
    verr_t *e;
    int bad;
} parsed_t;

static int number_ok(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    return *s && !*end && v >= 0 && v < 1e12 && strlen(s) < 32;
}

static int date_ok(const char *s)
{
    int y, m, d, n = 0;
    return strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) == 3 && n == 10 && y >= 1970 && m >= 1 &&
           m <= 12 && d >= 1 && d <= 28 + (m != 2) * 3;
}

static void take(const char *key, const char *value, void *arg)
{
    parsed_t *p = arg;
    if (p->bad)
        return;
    if (!strcmp(key, "currency")) {
        if (strlen(value) != 3) {
            p->bad = 1;
            verr_set(p->e, 400, "InvalidConfig", "price list: currency must be a 3-letter code");
            return;
        }
        snprintf(p->currency, sizeof p->currency, "%s", value);
        return;
    }
    char date[16] = "", rest[256] = "";
    if (strncmp(key, "periods.", 8) || sscanf(key + 8, "%15[^.].%255s", date, rest) != 2 || !date_ok(date)) {
        p->bad = 1;
        verr_set(p->e, 400, "InvalidConfig", "price list: '%.100s' is not currency or periods.YYYY-MM-DD.<field>", key);
        return;
    }
    if (!number_ok(value)) {
        p->bad = 1;
        verr_set(p->e, 400, "InvalidConfig", "price list: %.100s: '%.32s' is not a price", key, value);
        return;
    }
    if (!strcmp(rest, "public_cloud_markup")) {
        if (p->nmarkups < 64) {
            snprintf(p->markups[p->nmarkups][0], 32, "%s", date);
            snprintf(p->markups[p->nmarkups++][1], 32, "%s", value);
        }
        return;
    }
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const struct field *f = &fields[i];
        size_t n = strlen(f->name);
        const char *item = NULL;
        if (!f->per_item && !strcmp(rest, f->name))
            item = "*";
        else if (f->per_item && !strncmp(rest, f->name, n) && rest[n] == '.' && rest[n + 1])
            item = !strcmp(rest + n + 1, "default") ? "*" : rest + n + 1;
        if (!item)
            continue;
        p->rows = xrealloc(p->rows, (p->n + 1) * sizeof *p->rows);
        row_t *r = &p->rows[p->n++];
        memset(r, 0, sizeof *r);
        snprintf(r->date, sizeof r->date, "%s", date);
        snprintf(r->item, sizeof r->item, "%s", item);
        snprintf(r->price, sizeof r->price, "%s", value);
        r->f = f;
        return;
    }
    p->bad = 1;
    verr_set(p->e, 400, "InvalidConfig", "price list: unknown field '%.100s' (docs/accounting.md)", rest);
}

int prices_load(db_t *db, const char *path, verr_t *e)
{
    config_t *c = config_new();
    parsed_t p = {.e = e, .currency = "USD"};
    int rc = -1;
    if (config_load_file(c, path, e) < 0)
        goto out;
    config_foreach(c, take, &p);
    if (p.bad)
        goto out;
    if (!p.n) {
        verr_set(e, 400, "InvalidConfig", "price list %s has no prices", path);
        goto out;
    }
    if (db_begin(db, e) < 0 || db_exec(db, e, "DELETE FROM prices") < 0)
        goto fail;
    for (size_t i = 0; i < p.n; i++) {
        const row_t *r = &p.rows[i];
        const char *markup = "0";
        for (int k = 0; k < p.nmarkups && r->f->public_; k++)
            if (!strcmp(p.markups[k][0], r->date))
                markup = p.markups[k][1];
        const char *q[] = {r->date, r->f->usage_type, r->item, r->f->public_ ? "t" : "f", p.currency, r->price,
                           r->f->list_unit, r->f->per_unit, markup};
        PG_AUTO PGresult *res = db_prepared(db, e, "price_put",
            "INSERT INTO prices (effective, usage_type, item, public, currency, list_price, list_unit, per_unit, "
            "markup) VALUES ($1::timestamp AT TIME ZONE 'UTC', $2, $3, $4::boolean, $5, $6::numeric, $7, "
            "$8::numeric, "
            "$9::numeric)", 9, q);
        if (!res)
            goto fail;
    }
    if (db_commit(db, e) < 0)
        goto fail;
    log_info("price list %s: %zu prices loaded (%s)", path, p.n, p.currency);
    rc = 0;
    goto out;
fail:
    db_rollback(db);
out:
    free(p.rows);
    config_free(c);
    return rc;
}

/* Load again when the file's modification time changed since the last load. */
void prices_refresh(service_t *svc)
{
    static struct timespec loaded;
    const char *path = config_str(svc->cfg, "accounting.price_list", NULL);
    struct stat st;
    if (!path || !*path || stat(path, &st) < 0)
        return;
    if (st.st_mtim.tv_sec == loaded.tv_sec && st.st_mtim.tv_nsec == loaded.tv_nsec)
        return;
    verr_t e;
    if (prices_load(svc->db, path, &e) < 0) {
        log_error("price list %s not loaded: %s", path, e.message);
        return;
    }
    loaded = st.st_mtim;
}
