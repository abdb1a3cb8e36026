/* keycache.c - the cache of SigV4 signing keys (see keycache.h). A key is scoped to
 * access key / date / region / service, so it changes every day by itself; entries also
 * expire after a TTL, and identity.changed events (published by identity when a key is
 * deactivated or deleted, a policy changes, a user or account is deleted) drop matching
 * entries at once. The secret itself never reaches here. */
#include <pthread.h>
#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keycache.h"
#include "jsonutil.h"

#define BUCKETS 1024

struct entry {
    char *scope;
    uint8_t key[SIGV4_KEY_LEN];
    json_t *who;
    time_t expires;
    struct entry *next;
};

struct keycache {
    pthread_rwlock_t lock;
    struct entry *b[BUCKETS];
    int ttl;
    size_t count, max;
    time_t next_sweep;   /* expired entries are freed at most a TTL after they expire */
};

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % BUCKETS;
}

keycache_t *keycache_new(int ttl_s) { return keycache_new_max(ttl_s, KEYCACHE_MAX_ENTRIES); }

keycache_t *keycache_new_max(int ttl_s, size_t max_entries)
{
    keycache_t *c = xcalloc(1, sizeof *c);
    pthread_rwlock_init(&c->lock, NULL);
    c->ttl = ttl_s > 0 ? ttl_s : 60;
    c->max = max_entries > 0 ? max_entries : KEYCACHE_MAX_ENTRIES;
    c->next_sweep = time(NULL) + c->ttl;
    return c;
}

static void entry_free(struct entry *e)
{
    sodium_memzero(e->key, sizeof e->key);
    free(e->scope);
    json_decref(e->who);
    free(e);
}

void keycache_free(keycache_t *c)
{
    if (!c)
        return;
    keycache_invalidate(c, NULL, NULL);
    pthread_rwlock_destroy(&c->lock);
    free(c);
}

int keycache_get(keycache_t *c, const char *scope, uint8_t key[SIGV4_KEY_LEN], json_t **who)
{
    int hit = 0;
    time_t now = time(NULL);
    pthread_rwlock_rdlock(&c->lock);
    for (struct entry *e = c->b[hash(scope)]; e; e = e->next)
        if (!strcmp(e->scope, scope) && e->expires > now) {
            memcpy(key, e->key, SIGV4_KEY_LEN);
            *who = json_incref(e->who);
            hit = 1;
            break;
        }
    pthread_rwlock_unlock(&c->lock);
    return hit;
}

/* What drop_where drops: expired entries, one given entry, or those whose who[field]
 * is value (every entry when field is NULL). */
typedef struct {
    time_t now;            /* drop entries expired at now (0: not this rule) */
    const struct entry *only;
    int by_field;
    const char *field, *value;
} drop_t;

static int drops(const drop_t *d, const struct entry *e)
{
    if (d->now)
        return e->expires <= d->now;
    if (d->only)
        return e == d->only;
    return !d->field || !strcmp(json_str(e->who, d->field, ""), d->value ? d->value : "");
}

/* Free every entry d selects. Caller holds the write lock. */
static void drop_where(keycache_t *c, const drop_t *d)
{
    for (int i = 0; i < BUCKETS; i++) {
        struct entry **pp = &c->b[i];
        while (*pp) {
            struct entry *e = *pp;
            if (drops(d, e)) {
                *pp = e->next;
                entry_free(e);
                c->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

/* Room for one more: expired entries go (at least once a TTL, and whenever the cache is
 * full), and if it is still full, the entry nearest its expiry (the oldest). Keys are
 * scoped to a day, so without this every day's keys would stay forever. Caller holds
 * the write lock. */
static void make_room(keycache_t *c, time_t now)
{
    if (now >= c->next_sweep || c->count >= c->max) {
        drop_where(c, &(drop_t){.now = now});
        c->next_sweep = now + c->ttl;
    }
    if (c->count < c->max)
        return;
    const struct entry *oldest = NULL;
    for (int i = 0; i < BUCKETS; i++)
        for (const struct entry *e = c->b[i]; e; e = e->next)
            if (!oldest || e->expires < oldest->expires)
                oldest = e;
    if (oldest)
        drop_where(c, &(drop_t){.only = oldest});
}

void keycache_put(keycache_t *c, const char *scope, const uint8_t key[SIGV4_KEY_LEN], json_t *who)
{
    struct entry *n = xcalloc(1, sizeof *n);
    n->scope = xstrdup(scope);
    memcpy(n->key, key, SIGV4_KEY_LEN);
    n->who = json_incref(who);
    time_t now = time(NULL);
    n->expires = now + c->ttl;
    unsigned h = hash(scope);
    pthread_rwlock_wrlock(&c->lock);
    for (struct entry **pp = &c->b[h]; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->scope, scope)) {
            struct entry *old = *pp;
            *pp = old->next;
            entry_free(old);
            c->count--;
            break;
        }
    make_room(c, now);
    n->next = c->b[h];
    c->b[h] = n;
    c->count++;
    pthread_rwlock_unlock(&c->lock);
}

size_t keycache_size(keycache_t *c)
{
    pthread_rwlock_rdlock(&c->lock);
    size_t n = c->count;
    pthread_rwlock_unlock(&c->lock);
    return n;
}

void keycache_invalidate(keycache_t *c, const char *field, const char *value)
{
    pthread_rwlock_wrlock(&c->lock);
    drop_where(c, &(drop_t){.field = field, .value = value});
    pthread_rwlock_unlock(&c->lock);
}

int keycache_fetch(keycache_t *c, bus_t *bus, const sigv4_auth_t *a, int timeout_ms,
                   uint8_t key[SIGV4_KEY_LEN], json_t **who, verr_t *e)
{
    char scope[256];
    snprintf(scope, sizeof scope, "%s/%s/%s/%s", a->access_key, a->date, a->region, a->service);
    if (keycache_get(c, scope, key, who))
        return 0;
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "access_key_id", a->access_key, "date", a->date,
                             "region", a->region, "service", a->service);
    json_t *reply = NULL;
    if (bus_call(bus, "identity", "identity.signing_key", body, NULL, timeout_ms, &reply, e) < 0) {
        if (!strcmp(e->code, "RequestTimeout"))
            verr_set(e, 503, "Unavailable", "The identity service is not answering; try again.");
        return -1;
    }
    const char *hex = json_str(reply, "key", "");
    size_t len = 0;
    if (sodium_hex2bin(key, SIGV4_KEY_LEN, hex, strlen(hex), NULL, &len, NULL) != 0 || len != SIGV4_KEY_LEN) {
        json_decref(reply);
        return verr_set(e, 500, "InternalError", "bad signing key from identity");
    }
    json_object_del(reply, "key");
    json_object_set_new(reply, "access_key_id", json_string(a->access_key));
    keycache_put(c, scope, key, reply);
    *who = reply;
    return 0;
}

void keycache_apply_event(keycache_t *c, const json_t *body)
{
    const char *what = json_str(body, "what", ""), *id = json_str(body, "id", "");
    if (!strcmp(what, "access_key"))
        keycache_invalidate(c, "access_key_id", id);
    else if (!strcmp(what, "user"))
        keycache_invalidate(c, "user_id", id);
    else
        keycache_invalidate(c, "account_id", id);
}
