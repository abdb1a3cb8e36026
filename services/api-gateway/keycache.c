/* keycache.c - the gateway's cache of SigV4 signing keys. A key is scoped to
 * access key / date / region / service, so it changes every day by itself; entries also
 * expire after gateway.key_cache_ttl_s, and identity.changed events (published by
 * identity when a key is deactivated or deleted, a policy changes, a user or account
 * is deleted) drop matching entries at once. The secret itself never reaches here. */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"
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
};

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % BUCKETS;
}

keycache_t *keycache_new(int ttl_s)
{
    keycache_t *c = xcalloc(1, sizeof *c);
    pthread_rwlock_init(&c->lock, NULL);
    c->ttl = ttl_s > 0 ? ttl_s : 60;
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

void keycache_put(keycache_t *c, const char *scope, const uint8_t key[SIGV4_KEY_LEN], json_t *who)
{
    struct entry *n = xcalloc(1, sizeof *n);
    n->scope = xstrdup(scope);
    memcpy(n->key, key, SIGV4_KEY_LEN);
    n->who = json_incref(who);
    n->expires = time(NULL) + c->ttl;
    unsigned h = hash(scope);
    pthread_rwlock_wrlock(&c->lock);
    for (struct entry **pp = &c->b[h]; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->scope, scope)) {
            struct entry *old = *pp;
            *pp = old->next;
            entry_free(old);
            break;
        }
    n->next = c->b[h];
    c->b[h] = n;
    pthread_rwlock_unlock(&c->lock);
}

void keycache_invalidate(keycache_t *c, const char *field, const char *value)
{
    pthread_rwlock_wrlock(&c->lock);
    for (int i = 0; i < BUCKETS; i++) {
        struct entry **pp = &c->b[i];
        while (*pp) {
            struct entry *e = *pp;
            if (!field || !strcmp(json_str(e->who, field, ""), value ? value : "")) {
                *pp = e->next;
                entry_free(e);
            } else {
                pp = &e->next;
            }
        }
    }
    pthread_rwlock_unlock(&c->lock);
}
