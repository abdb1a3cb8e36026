/* authfail.c - a limit on unauthenticated failures per source address. Every request
 * that fails before its caller is known (no or a bad signature, an unknown access key,
 * a malformed request) takes a token from its address's bucket (gateway.auth_fail_rate
 * per second, gateway.auth_fail_burst at most); an address with no token left is
 * refused before its request is even parsed, so a client spraying made-up keys or
 * garbage costs the gateway almost nothing and identity nothing. Requests that
 * authenticate take nothing: a busy tenant is never refused here (its own limit is
 * ratelimit.c's, per key). The table is fixed (SLOTS addresses): a newcomer replaces
 * the address in its slot, which at worst forgets an address's failures early. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"

#define SLOTS 4096
#define LOCKS 16

struct slot {
    char addr[64];
    double tokens, last;
};

struct authfail {
    double rate, burst;
    struct slot s[SLOTS];
    pthread_mutex_t mu[LOCKS];
    uint64_t refused;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t slot_of(const char *addr)
{
    unsigned h = 2166136261u;
    for (const char *p = addr; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % SLOTS;
}

authfail_t *authfail_new(double rate, double burst)
{
    authfail_t *a = xcalloc(1, sizeof *a);
    a->rate = rate;
    a->burst = burst >= 1 ? burst : (rate * 10 >= 1 ? rate * 10 : 1);
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_init(&a->mu[i], NULL);
    return a;
}

void authfail_free(authfail_t *a)
{
    if (!a)
        return;
    for (int i = 0; i < LOCKS; i++)
        pthread_mutex_destroy(&a->mu[i]);
    free(a);
}

/* The slot of addr with its tokens refilled to now; NULL when addr has none. Caller
 * holds the slot's lock. */
static struct slot *refilled(authfail_t *a, size_t i, const char *addr, double t)
{
    struct slot *s = &a->s[i];
    if (strcmp(s->addr, addr))
        return NULL;
    s->tokens += (t - s->last) * a->rate;
    if (s->tokens > a->burst)
        s->tokens = a->burst;
    s->last = t;
    return s;
}

int authfail_blocked(authfail_t *a, const char *addr)
{
    if (!a || a->rate <= 0 || !addr || !*addr)
        return 0;
    size_t i = slot_of(addr);
    pthread_mutex_lock(&a->mu[i % LOCKS]);
    struct slot *s = refilled(a, i, addr, now_s());
    int blocked = s && s->tokens < 1.0;
    pthread_mutex_unlock(&a->mu[i % LOCKS]);
    if (blocked)
        __atomic_add_fetch(&a->refused, 1, __ATOMIC_RELAXED);
    return blocked;
}

void authfail_record(authfail_t *a, const char *addr)
{
    if (!a || a->rate <= 0 || !addr || !*addr || strlen(addr) >= sizeof a->s[0].addr)
        return;
    size_t i = slot_of(addr);
    double t = now_s();
    pthread_mutex_lock(&a->mu[i % LOCKS]);
    struct slot *s = refilled(a, i, addr, t);
    if (!s) {
        s = &a->s[i];
        strcpy(s->addr, addr);   /* length checked above */
        s->tokens = a->burst;
        s->last = t;
    }
    s->tokens = s->tokens >= 1.0 ? s->tokens - 1.0 : 0;
    pthread_mutex_unlock(&a->mu[i % LOCKS]);
}

uint64_t authfail_refused(authfail_t *a)
{
    return a ? __atomic_load_n(&a->refused, __ATOMIC_RELAXED) : 0;
}
