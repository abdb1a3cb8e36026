/* negcache.c - a short-lived, bounded memory of names known not to exist (negcache.h). */
#include "negcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"

#define LOCKS 16

struct slot {
    char key[NEGCACHE_KEY_MAX];
    time_t expires;
};

struct negcache {
    int ttl;
    size_t mask;
    struct slot *slots;
    pthread_mutex_t mu[LOCKS];   /* slot i is guarded by mu[i % LOCKS] */
};

static size_t slot_of(const negcache_t *c, const char *key)
{
    unsigned h = 2166136261u;
    for (const char *s = key; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h & c->mask;
}

negcache_t *negcache_new(int ttl_s, size_t slots)
{
    negcache_t *c = xcalloc(1, sizeof *c);
    size_t n = 64;
    while (n < slots)
        n <<= 1;
    c->ttl = ttl_s;
    c->mask = n - 1;
    c->slots = ttl_s > 0 ? xcalloc(n, sizeof *c->slots) : NULL;
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_init(&c->mu[i], NULL);
    return c;
}

void negcache_free(negcache_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_destroy(&c->mu[i]);
    free(c->slots);
    free(c);
}

int negcache_has(negcache_t *c, const char *key)
{
    if (!c || !c->slots || !key || strlen(key) >= NEGCACHE_KEY_MAX)
        return 0;
    size_t i = slot_of(c, key);
    pthread_mutex_lock(&c->mu[i % LOCKS]);
    int has = c->slots[i].expires > time(NULL) && !strcmp(c->slots[i].key, key);
    pthread_mutex_unlock(&c->mu[i % LOCKS]);
    return has;
}

void negcache_add(negcache_t *c, const char *key)
{
    if (!c || !c->slots || !key || strlen(key) >= NEGCACHE_KEY_MAX)
        return;
    size_t i = slot_of(c, key);
    pthread_mutex_lock(&c->mu[i % LOCKS]);
    strcpy(c->slots[i].key, key);   /* length checked above */
    c->slots[i].expires = time(NULL) + c->ttl;
    pthread_mutex_unlock(&c->mu[i % LOCKS]);
}

void negcache_drop(negcache_t *c, const char *key)
{
    if (!c || !c->slots)
        return;
    if (key) {
        if (strlen(key) >= NEGCACHE_KEY_MAX)
            return;
        size_t i = slot_of(c, key);
        pthread_mutex_lock(&c->mu[i % LOCKS]);
        if (!strcmp(c->slots[i].key, key))
            c->slots[i].expires = 0;
        pthread_mutex_unlock(&c->mu[i % LOCKS]);
        return;
    }
    for (size_t i = 0; i <= c->mask; i++) {
        pthread_mutex_lock(&c->mu[i % LOCKS]);
        c->slots[i].expires = 0;
        pthread_mutex_unlock(&c->mu[i % LOCKS]);
    }
}
