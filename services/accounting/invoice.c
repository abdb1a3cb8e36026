/* invoice.c - accounting.invoice: an account's usage of one calendar month (UTC) rated
 * against the price list in force when each record started (prices.c), as lines per
 * usage type, item, cloud and price period, with a total. The operator asks for any
 * account; a tenant (through the gateway) only for its own. Rating is one SQL statement:
 * records are summed per day first (price periods begin on whole UTC days), then the
 * days are priced, so a month of 10,000 instances is one pass over its records. Amounts keep 6 decimals per line; the total is rounded to cents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounting.h"
#include "bus_auth.h"
#include "caller.h"
#include "jsonutil.h"

int accounting_scope(bus_ctx_t *ctx, const char *asked, const char **account, verr_t *e)
{
    if (ctx->msg->from->kind == BUS_P_OPERATOR || caller_is_operator_admin(ctx->msg->caller)) {
        *account = asked;
        return 0;
    }
    return (*account = caller_account(ctx->msg->caller, e)) ? 0 : -1;
}

static int month_ok(const char *m)
{
    int y, mo, n = 0;
    return m && strlen(m) == 7 && sscanf(m, "%4d-%2d%n", &y, &mo, &n) == 2 && n == 7 && y >= 1970 && y <= 9999 &&
           mo >= 1 && mo <= 12;
}

int accounting_invoice(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *account, *month = json_str(body, "month", NULL);
    if (accounting_scope(ctx, json_str(body, "account_id", ""), &account, e) < 0)
        return -1;
    if (!account || strlen(account) != 12 || strspn(account, "0123456789") != 12)
        return verr_set(e, 400, "InvalidParameterValue", "account_id must be a 12-digit account id");
    if (!month_ok(month))
        return verr_set(e, 400, "InvalidParameterValue", "month must be YYYY-MM");
    db_t *db = service_db(ctx);
    PG_AUTO PGresult *np = db_query(db, e, "SELECT count(*), max(currency) FROM prices", 0, NULL);
    if (!np)
        return -1;
    if (!atoi(PQgetvalue(np, 0, 0)))
        return verr_set(e, 409, "NoPriceList", "no price list is loaded (accounting.price_list)");
    const char *p[] = {account, month};
    PG_AUTO PGresult *r = db_prepared(db, e, "invoice",
        "WITH bounds AS (SELECT ($2 || '-01')::timestamp AT TIME ZONE 'UTC' AS s, "
        "                       (($2 || '-01')::timestamp + interval '1 month') AT TIME ZONE 'UTC' AS e), "
        /* first per day (price periods start on whole UTC days): one pass, few groups */
        "days AS (SELECT r.usage_type, r.item, r.cloud, r.unit, date_trunc('day', r.start_at, 'UTC') AS day, "
        "                sum(r.quantity) AS q, count(*) AS n "
        "         FROM usage_records r CROSS JOIN bounds b "
        "         WHERE r.account_id = $1 AND r.start_at >= b.s AND r.start_at < b.e GROUP BY 1, 2, 3, 4, 5), "
        "periods AS (SELECT effective, lead(effective) OVER (ORDER BY effective) AS until "
        "            FROM (SELECT DISTINCT effective FROM prices) x), "
        "g AS (SELECT d.usage_type, d.item, d.cloud, d.unit, pe.effective, sum(d.q) AS q, sum(d.n) AS n, "
        "             count(*) AS days "
        "      FROM days d LEFT JOIN periods pe ON d.day >= pe.effective AND (pe.until IS NULL OR d.day < pe.until) "
        "      GROUP BY 1, 2, 3, 4, 5) "
        "SELECT g.usage_type, g.item, g.cloud, g.unit, g.q, g.n, g.days, "
        "       to_char(g.effective AT TIME ZONE 'UTC', 'YYYY-MM-DD'), pr.list_unit, "
        "       round(g.q / pr.per_unit, 6), round(pr.list_price * (1 + pr.markup), 6), "
        "       round(g.q / pr.per_unit * pr.list_price * (1 + pr.markup), 6), pr.markup, "
        "       round(sum(round(g.q / pr.per_unit * pr.list_price * (1 + pr.markup), 6)) OVER (), 2) "
        "FROM g LEFT JOIN LATERAL (SELECT * FROM prices x WHERE x.effective = g.effective "
        "  AND x.usage_type = g.usage_type AND x.item IN (g.item, '*') AND x.public = (g.cloud <> 'private') "
        "  ORDER BY x.item = '*' LIMIT 1) pr ON true "
        "ORDER BY g.usage_type, g.item, g.cloud, g.effective", 2, p);
    if (!r)
        return -1;
    json_t *lines = json_array();
    JSON_AUTO json_t *unpriced = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        int priced = !PQgetisnull(r, i, 11);
        json_t *l = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "usage_type", PQgetvalue(r, i, 0),
                              "item", PQgetvalue(r, i, 1), "cloud", PQgetvalue(r, i, 2), "unit", PQgetvalue(r, i, 3),
                              "usage", PQgetvalue(r, i, 4), "records", (json_int_t)atoll(PQgetvalue(r, i, 5)),
                              "days", (json_int_t)atoll(PQgetvalue(r, i, 6)));
        if (priced) {
            json_object_set_new(l, "price_effective", json_string(PQgetvalue(r, i, 7)));
            json_object_set_new(l, "quantity", json_string(PQgetvalue(r, i, 9)));
            json_object_set_new(l, "quantity_unit", json_string(PQgetvalue(r, i, 8)));
            json_object_set_new(l, "unit_price", json_string(PQgetvalue(r, i, 10)));
            json_object_set_new(l, "markup", json_string(PQgetvalue(r, i, 12)));
            json_object_set_new(l, "amount", json_string(PQgetvalue(r, i, 11)));
            json_array_append_new(lines, l);
        } else {
            json_array_append_new(unpriced, l);
        }
    }
    /* the total in the database's decimal arithmetic (column 13), not in doubles */
    const char *total = PQntuples(r) && !PQgetisnull(r, 0, 13) ? PQgetvalue(r, 0, 13) : "0.00";
    *reply = json_pack("{s:s, s:s, s:s, s:o, s:s, s:O}", "account_id", account, "month", month, "currency",
                       PQgetvalue(np, 0, 1), "lines", lines, "total", total, "unpriced", unpriced);
    return 0;
}
