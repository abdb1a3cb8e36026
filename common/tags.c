/* tags.c - EC2 tags on a service's resources, kept in the `tags` table of the calling
 * connection's schema (each service that has taggable resources creates one) and
 * returned as EC2 tagSet lists. */
#include "tags.h"

#include "jsonutil.h"

int tags_put(db_t *db, const char *resource_id, const char *account, const json_t *tag_set, verr_t *e)
{
    size_t i;
    json_t *t;
    json_array_foreach(tag_set, i, t) {
        const char *p[] = {resource_id, account, json_str(t, "key", ""), json_str(t, "value", "")};
        PG_AUTO PGresult *r = db_prepared(db, e, "tag_put",
            "INSERT INTO tags (resource_id, account_id, key, value) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (resource_id, key) DO UPDATE SET value = EXCLUDED.value", 4, p);
        if (!r)
            return -1;
    }
    return 0;
}

json_t *tags_load(db_t *db, const char *account, verr_t *e)
{
    const char *p[] = {account};
    PG_AUTO PGresult *r = account
        ? db_prepared(db, e, "tag_load", "SELECT resource_id, key, value FROM tags WHERE account_id = $1 ORDER BY key", 1, p)
        : db_prepared(db, e, "tag_load_all", "SELECT resource_id, key, value FROM tags ORDER BY key", 0, NULL);
    if (!r)
        return NULL;
    json_t *by_id = json_object();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0);
        json_t *list = json_object_get(by_id, id);
        if (!list) {
            list = json_array();
            json_object_set_new(by_id, id, list);
        }
        json_array_append_new(list, json_pack("{s:s, s:s}", "key", PQgetvalue(r, i, 1), "value", PQgetvalue(r, i, 2)));
    }
    return by_id;
}
