/* sg_cache.c - the account's whole DescribeSecurityGroups listing, kept while nothing in
 * it changed. Building it is three queries and the JSON of every group and rule (1,005
 * groups: most of the network's CPU per call, and the database's); a client that lists
 * again finds the same content, so the listing is kept per account under a fingerprint
 * of its rows (sql/009_sg_stamps.sql: per table the count and the XOR of the rows'
 * stamp hashes, new on every insert and update), which one cheap query reads.
 *
 * Consistency: a listing is built in one REPEATABLE READ transaction together with the
 * fingerprint it is stored under, so (account, fingerprint) names exactly that content;
 * a fingerprint can come back (a rule added then revoked), and then so has the content.
 * A call reads the current fingerprint first: a change committed before the call began
 * is always seen. Stored listings are shared between the bus workers and never changed
 * (callers select, filter and page into new arrays; jansson's reference counts are
 * atomic). Nothing is kept when the build fails. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "jsonutil.h"
#include "network.h"

#define SLOTS 16
#define KEY_MAX 160
/* a bigger listing is built for each call and not kept, so that the kept ones stay within
 * tens of megabytes (a group with its rules is one to a few kilobytes of JSON) */
#define KEEP_MAX_GROUPS 5000

typedef struct {
    char account[16];
    char key[KEY_MAX];
    unsigned long long used;
    json_t *items;
} slot_t;

static slot_t slots[SLOTS];
static unsigned long long clock_;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static int fingerprint(db_t *db, const char *account, char key[KEY_MAX], verr_t *e)
{
    const char *p[] = {account};
    PG_AUTO PGresult *r = db_prepared(db, e, "sg_fingerprint",
        "SELECT (SELECT count(*) || ':' || coalesce(bit_xor(hashint8extended(stamp, 0)), 0) FROM security_groups "
        "WHERE account_id = $1) || '/' || (SELECT count(*) || ':' || coalesce(bit_xor(hashint8extended(r.stamp, 0)), 0) "
        "FROM sg_rules r JOIN security_groups g ON g.id = r.group_id WHERE g.account_id = $1) || '/' || "
        "(SELECT count(*) || ':' || coalesce(bit_xor(hashint8extended(stamp, 0)), 0) FROM tags "
        "WHERE account_id = $1 AND resource_id LIKE 'sg-%')", 1, p);
    if (!r)
        return -1;
    snprintf(key, KEY_MAX, "%s", PQgetvalue(r, 0, 0));
    return 0;
}

static json_t *lookup(const char *account, const char *key)
{
    json_t *j = NULL;
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < SLOTS && !j; i++)
        if (slots[i].items && !strcmp(slots[i].account, account) && !strcmp(slots[i].key, key)) {
            slots[i].used = ++clock_;
            j = json_incref(slots[i].items);
        }
    pthread_mutex_unlock(&mu);
    return j;
}

/* The account's slot, else a free one, else the least recently used. */
static void keep(const char *account, const char *key, json_t *items)
{
    pthread_mutex_lock(&mu);
    size_t at = 0;
    for (size_t i = 0; i < SLOTS; i++) {
        if (slots[i].items && !strcmp(slots[i].account, account)) {
            at = i;
            break;
        }
        if (!slots[i].items || (slots[at].items && slots[i].used < slots[at].used))
            at = i;
    }
    json_decref(slots[at].items);
    snprintf(slots[at].account, sizeof slots[at].account, "%s", account);
    snprintf(slots[at].key, sizeof slots[at].key, "%s", key);
    slots[at].used = ++clock_;
    slots[at].items = json_incref(items);
    pthread_mutex_unlock(&mu);
}

json_t *sg_listing(db_t *db, const char *account, sg_build_fn build, verr_t *e)
{
    char key[KEY_MAX];
    if (fingerprint(db, account, key, e) < 0)
        return NULL;
    json_t *items = lookup(account, key);
    if (items)
        return items;
    if (db_begin(db, e) < 0 || db_exec(db, e, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ") < 0 ||
        fingerprint(db, account, key, e) < 0 || !(items = build(db, account, e)) || db_commit(db, e) < 0) {
        db_rollback(db);
        json_decref(items);
        return NULL;
    }
    if (json_array_size(items) <= KEEP_MAX_GROUPS)
        keep(account, key, items);
    return items;
}
