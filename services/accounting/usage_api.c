/* usage_api.c - accounting.usage: usage records and their totals, filtered by account,
 * user, resource, usage type and time. The operator (virgadm) sees every account; a
 * tenant's request (from the gateway, with the caller it authenticated) sees only the
 * caller's own account, whatever account it names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounting.h"
#include "jsonutil.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/* The filters, as the query's parameters $1..$6 ('' = any). */
static int filters(bus_ctx_t *ctx, const json_t *body, const char *p[7], verr_t *e)
{
    static const char *const names[] = {"account_id", "user_id", "resource_id", "usage_type", "start", "end"};
    for (int i = 0; i < 6; i++) {
        json_t *v = json_object_get(body, names[i]);
        if (v && !json_is_string(v))
            return verr_set(e, 400, "InvalidParameterValue", "%s must be a string", names[i]);
        p[i] = v ? json_string_value(v) : "";
        if (strlen(p[i]) > 128)
            return verr_set(e, 400, "InvalidParameterValue", "%s is longer than 128 characters", names[i]);
    }
    if (accounting_scope(ctx, p[0], &p[0], e) < 0)   /* a tenant's own account only */
        return -1;
    json_int_t limit = json_int(body, "limit", 1000);
    if (limit < 1 || limit > 100000)
        return verr_set(e, 400, "InvalidParameterValue", "limit must be 1..100000");
    static __thread char lim[24];
    snprintf(lim, sizeof lim, "%lld", (long long)limit);
    p[6] = lim;
    return 0;
}

/* YYYY-MM-DD, or YYYY-MM-DDTHH:MM:SS with an optional Z: UTC either way. */
static int time_valid(const char *s)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    size_t len = strlen(s);
    if (len == 10 && sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) == 3 && n == 10)
        ;
    else if ((len == 19 || (len == 20 && s[19] == 'Z')) && s[10] == 'T' &&
             sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6 && n == 19)
        ;
    else
        return 0;
    for (size_t i = 0; i < 19 && i < len; i++)
        if (!strchr("0123456789-:T", s[i]))
            return 0;
    return y >= 1970 && y <= 9999 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && sec <= 59;
}

#define WHERE                                                                                                  \
    "WHERE ($1 = '' OR account_id = $1) AND ($2 = '' OR user_id = $2) AND ($3 = '' OR resource_id = $3) "    \
    "AND ($4 = '' OR usage_type = $4) AND ($5 = '' OR start_at >= ($5::timestamp AT TIME ZONE 'UTC')) "                         \
    "AND ($6 = '' OR start_at < ($6::timestamp AT TIME ZONE 'UTC')) "

int accounting_usage(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    const char *p[7];
    if (filters(ctx, body, p, e) < 0)
        return -1;
    for (int i = 4; i < 6; i++)
        if (*p[i] && !time_valid(p[i]))   /* a clear error rather than SQL's */
            return verr_set(e, 400, "InvalidParameterValue",
                            "'%.64s' is not a time (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC)", p[i]);
    db_t *db = service_db(ctx);
    PG_AUTO PGresult *r = db_prepared(db, e, "usage_records",
        "SELECT record_key, resource_type, resource_id, account_id, user_id, usage_type, item, quantity, unit, "
        TS("start_at") ", " TS("end_at") ", cloud, zone, published_at IS NOT NULL FROM usage_records " WHERE
        "ORDER BY start_at, record_key LIMIT $7::int", 7, p);
    if (!r)
        return -1;
    PG_AUTO PGresult *t = db_prepared(db, e, "usage_totals",
        "SELECT account_id, usage_type, item, cloud, unit, sum(quantity), count(*) FROM usage_records " WHERE
        "GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4", 6, p);
    if (!t)
        return -1;
    json_t *recs = json_array(), *tot = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(recs, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}",
            "key", PQgetvalue(r, i, 0), "resource_type", PQgetvalue(r, i, 1), "resource_id", PQgetvalue(r, i, 2),
            "account_id", PQgetvalue(r, i, 3), "user_id", PQgetvalue(r, i, 4), "usage_type", PQgetvalue(r, i, 5),
            "item", PQgetvalue(r, i, 6), "quantity", PQgetvalue(r, i, 7), "unit", PQgetvalue(r, i, 8),
            "start", PQgetvalue(r, i, 9), "end", PQgetvalue(r, i, 10), "cloud", PQgetvalue(r, i, 11),
            "zone", PQgetvalue(r, i, 12), "published", PQgetvalue(r, i, 13)[0] == 't'));
    for (int i = 0; i < PQntuples(t); i++)
        json_array_append_new(tot, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}",
            "account_id", PQgetvalue(t, i, 0), "usage_type", PQgetvalue(t, i, 1), "item", PQgetvalue(t, i, 2),
            "cloud", PQgetvalue(t, i, 3), "unit", PQgetvalue(t, i, 4), "quantity", PQgetvalue(t, i, 5),
            "records", (json_int_t)atoll(PQgetvalue(t, i, 6))));
    *reply = json_pack("{s:o, s:o, s:b}", "records", recs, "totals", tot,
                       "truncated", PQntuples(r) >= atoi(p[6]));
    return 0;
}
