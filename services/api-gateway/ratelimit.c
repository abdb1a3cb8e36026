/* ratelimit.c - a token bucket per access key (gateway.rate_limit requests/s refill,
 * gateway.rate_burst capacity). Over the limit the gateway answers
 * RequestLimitExceeded (EC2) / Throttling (IAM), as AWS does, and the clients back off. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"

#define BUCKETS 1024

struct bucket {
    char *key;
    double tokens;
    double last;
    struct bucket *next;
};

struct ratelimit {
    pthread_mutex_t mu;
    double rate, burst;
    struct bucket *b[BUCKETS];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

ratelimit_t *ratelimit_new(double rate, double burst)
{
    ratelimit_t *r = xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    r->rate = rate;
    r->burst = burst > 0 ? burst : rate * 2;
    return r;
}

void ratelimit_free(ratelimit_t *r)
{
    if (!r)
        return;
    for (int i = 0; i < BUCKETS; i++)
        while (r->b[i]) {
            struct bucket *n = r->b[i]->next;
            free(r->b[i]->key);
            free(r->b[i]);
            r->b[i] = n;
        }
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int ratelimit_take(ratelimit_t *r, const char *key)
{
    if (!r || r->rate <= 0)
        return 1;
    unsigned h = 5381;
    for (const char *s = key; *s; s++)
        h = h * 33 + (unsigned char)*s;
    h %= BUCKETS;
    double t = now_s();
    pthread_mutex_lock(&r->mu);
    struct bucket *b = r->b[h];
    while (b && strcmp(b->key, key))
        b = b->next;
    if (!b) {
        b = xcalloc(1, sizeof *b);
        b->key = xstrdup(key);
        b->tokens = r->burst;
        b->last = t;
        b->next = r->b[h];
        r->b[h] = b;
    }
    b->tokens += (t - b->last) * r->rate;
    if (b->tokens > r->burst)
        b->tokens = r->burst;
    b->last = t;
    int ok = b->tokens >= 1.0;
    if (ok)
        b->tokens -= 1.0;
    pthread_mutex_unlock(&r->mu);
    return ok;
}
