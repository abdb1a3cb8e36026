/* publish.c - the outbox of virga.usage: records not yet acknowledged by the broker
 * (published_at IS NULL) are sent in id order, keyed by record_key, and marked only after
 * the broker acknowledged every one of a batch. A crash or a broker outage in between
 * sends a batch again: consumers see every record at least once and dedupe by key. No
 * transaction is held while waiting for the broker (it would hold back the snapshot
 * xmin the pullers read below); a session advisory lock makes one replica the
 * publisher at a time, so replicas do not send every record twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounting.h"
#include "jsonutil.h"
#include "log.h"
#include "strbuf.h"

#define PUBLISH_LOCK "7420031"   /* pg_advisory_lock key of the publisher */

static json_t *record_json(PGresult *r, int i)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:s, s:s, s:s, s:s, s:s}",
                     "key", PQgetvalue(r, i, 1), "resource_type", PQgetvalue(r, i, 2),
                     "resource_id", PQgetvalue(r, i, 3), "account_id", PQgetvalue(r, i, 4),
                     "user_id", PQgetvalue(r, i, 5), "usage_type", PQgetvalue(r, i, 6),
                     "item", PQgetvalue(r, i, 7), "quantity", strtod(PQgetvalue(r, i, 8), NULL),
                     "unit", PQgetvalue(r, i, 9), "start", PQgetvalue(r, i, 10), "end", PQgetvalue(r, i, 11),
                     "cloud", PQgetvalue(r, i, 12), "zone", PQgetvalue(r, i, 13));
}

static long publish_batch(bus_t *bus, db_t *db, int batch, verr_t *e)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", batch);
    const char *p[] = {lim};
    PG_AUTO PGresult *r = db_prepared(db, e, "outbox_take",
        "SELECT id, record_key, resource_type, resource_id, account_id, user_id, usage_type, item, quantity, unit, "
        "to_char(start_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
        "to_char(end_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), cloud, zone "
        "FROM usage_records WHERE published_at IS NULL ORDER BY id LIMIT $1::int", 1, p);
    if (!r)
        return -1;
    int n = PQntuples(r);
    if (!n)
        return 0;
    const char **keys = xcalloc((size_t)n, sizeof *keys);
    json_t **bodies = xcalloc((size_t)n, sizeof *bodies);
    for (int i = 0; i < n; i++) {
        keys[i] = PQgetvalue(r, i, 1);
        bodies[i] = record_json(r, i);
    }
    size_t acked = 0;
    int rc = bus_publish_acked(bus, "virga.usage", "usage.record", (size_t)n, keys, bodies, &acked, e);
    for (int i = 0; i < n; i++)
        json_decref(bodies[i]);
    free(bodies);
    free((void *)keys);
    if (rc < 0)
        return -1;
    /* exactly the ids sent: a row with an id in between, committed late, is not one */
    strbuf_t ids = {0};
    for (int i = 0; i < n; i++)
        strbuf_printf(&ids, "%s%s", i ? "," : "{", PQgetvalue(r, i, 0));
    strbuf_putc(&ids, '}');
    const char *q[] = {ids.s};
    PG_AUTO PGresult *u = db_prepared(db, e, "outbox_done",
        "UPDATE usage_records SET published_at = now() WHERE id = ANY($1::bigint[]) AND published_at IS NULL", 1, q);
    free(ids.s);
    return u ? n : -1;
}

long publish_outbox(bus_t *bus, db_t *db, int batch, verr_t *e)
{
    PG_AUTO PGresult *l = db_query(db, e, "SELECT pg_try_advisory_lock(" PUBLISH_LOCK ")", 0, NULL);
    if (!l)
        return -1;
    if (PQgetvalue(l, 0, 0)[0] != 't')
        return 0;   /* another replica publishes */
    long total = 0, n;
    while ((n = publish_batch(bus, db, batch, e)) > 0)
        total += n;
    verr_t ignored;
    PQclear(db_query(db, &ignored, "SELECT pg_advisory_unlock(" PUBLISH_LOCK ")", 0, NULL));
    return n < 0 ? -1 : total;
}
