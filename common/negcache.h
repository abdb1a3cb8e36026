/* negcache.h - a bounded set of strings remembered for a short time: what a cache of
 * answers needs to also remember "no such thing" (the access keys identity said it does
 * not know), so that a flood of made-up names costs a lookup each at most once a TTL
 * instead of a round trip each. Fixed memory: a direct-mapped table of `slots` entries,
 * a newcomer replacing whatever shared its slot (forgetting early is always safe: it
 * only costs one more lookup). Thread-safe; a lookup takes one of a few mutexes. */
#ifndef VIRGA_NEGCACHE_H
#define VIRGA_NEGCACHE_H

#include <stddef.h>

typedef struct negcache negcache_t;

/* Names up to NEGCACHE_KEY_MAX - 1 bytes are remembered; longer ones never are. */
#define NEGCACHE_KEY_MAX 128

/* ttl_s <= 0: a cache that remembers nothing (disabled). slots is rounded up to a power
 * of two (at least 64). */
negcache_t *negcache_new(int ttl_s, size_t slots);
void negcache_free(negcache_t *c);
/* 1 when key was added less than a TTL ago and not dropped since. */
int negcache_has(negcache_t *c, const char *key);
void negcache_add(negcache_t *c, const char *key);
/* Forget key (it exists now); NULL forgets everything. */
void negcache_drop(negcache_t *c, const char *key);

#endif
