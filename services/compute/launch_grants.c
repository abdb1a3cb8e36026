/* launch_grants.c - the image grant URLs a launch task was given (image.fetch_url, asked
 * as the account), reused by the next launches of the same image by the same account for
 * compute.grant_reuse_s (default 2 s; 0: never).
 *
 * Why: each launch asked the image service, which checked the account may launch the
 * image and asked the object store for a grant: four bus messages and three services'
 * work per instance, the same answer each time for `run-instances --count 10` or a burst
 * of launches of one image (docs/performance.md, issue 11's launch rate). What reuse does
 * not weaken: an answer is reused only while it is seconds old, and never once the image
 * changed (image.changed: a deregistration, a launch permission removed; it drops the
 * image's answers here, launch_facts.c), so a launch after a change still asks the image
 * service and fails if it refuses; nor while the grant has less than GRANT_LEFT_MIN_S
 * to live (compute.host_instances refreshes one with less than 5 minutes left, and a
 * host may fetch the image some time after the launch). Entries live in this process
 * only: a restarted compute asks again. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "jsonutil.h"
#include "launch_grants.h"

#define SLOTS 64
#define GRANT_LEFT_MIN_S 900

typedef struct slot {
    char account[16], image[72];
    time_t got;           /* CLOCK_MONOTONIC seconds */
    json_t *answer;       /* NULL: free */
} slot_t;

struct launch_grants {
    pthread_mutex_t mu;
    int reuse_s;
    slot_t s[SLOTS];
};

static time_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

launch_grants_t *launch_grants_new(int reuse_s)
{
    launch_grants_t *g = xcalloc(1, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    g->reuse_s = reuse_s < 0 ? 0 : reuse_s;
    return g;
}

void launch_grants_free(launch_grants_t *g)
{
    if (!g)
        return;
    for (int i = 0; i < SLOTS; i++)
        json_decref(g->s[i].answer);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static int same(const slot_t *s, const char *account, const char *image_id)
{
    return s->answer && !strcmp(s->account, account) && !strcmp(s->image, image_id);
}

json_t *launch_grants_get(launch_grants_t *g, const char *account, const char *image_id)
{
    if (!g || !g->reuse_s)
        return NULL;
    json_t *out = NULL;
    time_t now = mono_s();
    pthread_mutex_lock(&g->mu);
    for (int i = 0; i < SLOTS && !out; i++)
        if (same(&g->s[i], account, image_id) && now - g->s[i].got < g->reuse_s &&
            json_int(g->s[i].answer, "expires", 0) > (json_int_t)time(NULL) + GRANT_LEFT_MIN_S)
            out = json_deep_copy(g->s[i].answer);
    pthread_mutex_unlock(&g->mu);
    return out;
}

void launch_grants_put(launch_grants_t *g, const char *account, const char *image_id, const json_t *answer)
{
    if (!g || !g->reuse_s || !json_is_object(answer) || strlen(account) >= sizeof g->s[0].account ||
        strlen(image_id) >= sizeof g->s[0].image)
        return;
    time_t now = mono_s();
    pthread_mutex_lock(&g->mu);
    int at = -1;   /* the same key's slot, else a free one, else the oldest */
    for (int i = 0; i < SLOTS && at < 0; i++)
        if (same(&g->s[i], account, image_id))
            at = i;
    for (int i = 0; i < SLOTS && at < 0; i++)
        if (!g->s[i].answer)
            at = i;
    if (at < 0) {
        at = 0;
        for (int i = 1; i < SLOTS; i++)
            if (g->s[i].got < g->s[at].got)
                at = i;
    }
    json_decref(g->s[at].answer);
    snprintf(g->s[at].account, sizeof g->s[at].account, "%s", account);
    snprintf(g->s[at].image, sizeof g->s[at].image, "%s", image_id);
    g->s[at].got = now;
    g->s[at].answer = json_deep_copy(answer);
    pthread_mutex_unlock(&g->mu);
}

void launch_grants_forget(launch_grants_t *g, const char *image_id)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    for (int i = 0; i < SLOTS; i++)
        if (g->s[i].answer && !strcmp(g->s[i].image, image_id)) {
            json_decref(g->s[i].answer);
            g->s[i].answer = NULL;
        }
    pthread_mutex_unlock(&g->mu);
}
