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
#include "metrics.h"
#include "strbuf.h"
#include "jsonutil.h"
#include "negcache.h"

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
    negcache_t *unknown; /* access keys identity does not know, for a few seconds */
    keycache_stats_t stats;
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
    c->unknown = negcache_new(KEYCACHE_UNKNOWN_TTL_S, 4096);
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
    negcache_free(c->unknown);
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

void keycache_set_unknown_ttl(keycache_t *c, int ttl_s)
{
    negcache_free(c->unknown);
    c->unknown = negcache_new(ttl_s, 4096);
}

void keycache_get_stats(keycache_t *c, keycache_stats_t *out)
{
    out->hits = __atomic_load_n(&c->stats.hits, __ATOMIC_RELAXED);
    out->fetches = __atomic_load_n(&c->stats.fetches, __ATOMIC_RELAXED);
    out->unknown_hits = __atomic_load_n(&c->stats.unknown_hits, __ATOMIC_RELAXED);
}

void keycache_render_metrics(keycache_t *c, const char *family, strbuf_t *out)
{
    keycache_stats_t ks;
    keycache_get_stats(c, &ks);
    metrics_family(out, family, "counter",
                   "Signing key lookups by outcome: hit (cache), fetched (asked identity), unknown (refused: "
                   "identity called the access key unknown moments ago).");
    metrics_sample(out, family, "result=\"hit\"", ks.hits);
    metrics_sample(out, family, "result=\"fetched\"", ks.fetches);
    metrics_sample(out, family, "result=\"unknown\"", ks.unknown_hits);
}

void keycache_invalidate(keycache_t *c, const char *field, const char *value)
{
    /* a key that changed (made active, say) may exist now; any other change may too */
    if (!field || !strcmp(field, "access_key_id"))
        negcache_drop(c->unknown, field ? value : NULL);
    else
        negcache_drop(c->unknown, NULL);
    pthread_rwlock_wrlock(&c->lock);
    drop_where(c, &(drop_t){.field = field, .value = value});
    pthread_rwlock_unlock(&c->lock);
}

static void scope_of(const sigv4_auth_t *a, char scope[256])
{
    snprintf(scope, 256, "%s/%s/%s/%s", a->access_key, a->date, a->region, a->service);
}

int keycache_lookup(keycache_t *c, const sigv4_auth_t *a, uint8_t key[SIGV4_KEY_LEN], json_t **who, verr_t *e)
{
    char scope[256];
    scope_of(a, scope);
    if (keycache_get(c, scope, key, who)) {
        __atomic_add_fetch(&c->stats.hits, 1, __ATOMIC_RELAXED);
        return 1;
    }
    if (negcache_has(c->unknown, a->access_key)) {
        __atomic_add_fetch(&c->stats.unknown_hits, 1, __ATOMIC_RELAXED);
        return verr_set(e, 401, "AuthFailure", "AWS was not able to validate the provided access credentials");
    }
    return 0;
}

static json_t *signing_key_request(const sigv4_auth_t *a)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "access_key_id", a->access_key, "date", a->date, "region", a->region,
                     "service", a->service);
}

/* identity's answer (reply, taken) or error (e, rewritten as the tenant sees it): the key
 * and *who (a new reference) cached and returned, or -1. */
static int fetched(keycache_t *c, const sigv4_auth_t *a, json_t *reply, uint8_t key[SIGV4_KEY_LEN], json_t **who,
                   verr_t *e)
{
    if (!reply) {
        if (!strcmp(e->code, "RequestTimeout"))
            verr_set(e, 503, "Unavailable", "The identity service is not answering; try again.");
        else if (e->http_status == 401 && !strcmp(e->code, "AuthFailure"))
            negcache_add(c->unknown, a->access_key);
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
    char scope[256];
    scope_of(a, scope);
    keycache_put(c, scope, key, reply);
    *who = reply;
    return 0;
}

int keycache_fetch(keycache_t *c, bus_t *bus, const sigv4_auth_t *a, int timeout_ms,
                   uint8_t key[SIGV4_KEY_LEN], json_t **who, verr_t *e)
{
    int rc = keycache_lookup(c, a, key, who, e);
    if (rc)
        return rc > 0 ? 0 : -1;
    __atomic_add_fetch(&c->stats.fetches, 1, __ATOMIC_RELAXED);
    json_t *reply = NULL;
    if (bus_call(bus, "identity", "identity.signing_key", signing_key_request(a), NULL, timeout_ms, &reply, e) < 0)
        reply = NULL;
    return fetched(c, a, reply, key, who, e);
}

/* An asynchronous fetch in flight. */
struct pending_fetch {
    keycache_t *c;
    sigv4_auth_t a;
    keycache_fetch_fn cb;
    void *arg;
};

static void fetch_done(void *arg, json_t *reply, const verr_t *err)
{
    struct pending_fetch *p = arg;
    uint8_t key[SIGV4_KEY_LEN];
    json_t *who = NULL;
    verr_t e = {0};
    if (err)
        e = *err;
    if (fetched(p->c, &p->a, reply, key, &who, &e) < 0)
        p->cb(p->arg, NULL, NULL, &e);
    else
        p->cb(p->arg, key, who, NULL);
    sodium_memzero(key, sizeof key);
    free(p);
}

int keycache_fetch_async(keycache_t *c, bus_t *bus, const sigv4_auth_t *a, int timeout_ms, keycache_fetch_fn cb,
                         void *arg, verr_t *e)
{
    __atomic_add_fetch(&c->stats.fetches, 1, __ATOMIC_RELAXED);
    struct pending_fetch *p = xmalloc(sizeof *p);
    *p = (struct pending_fetch){c, *a, cb, arg};
    if (bus_call_async(bus, "identity", "identity.signing_key", signing_key_request(a), NULL, timeout_ms, fetch_done,
                       p, e) < 0) {
        free(p);
        return -1;
    }
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
