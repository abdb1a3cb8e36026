/* metrics.c - the gateway's per-action Prometheus metrics: requests by action and HTTP
 * status, latency from arrival to answer (fixed buckets, common/metrics.h) and requests
 * in flight. One slot per row of the action table plus one for requests whose action
 * is not known (unsigned, refused before it was read, or not an action), so the hot path
 * is a few atomic additions at fixed addresses, no lock, no allocation. */
#include <stdio.h>
#include <stdlib.h>

#include "gateway.h"
#include "metrics.h"

/* The statuses the gateway answers; anything else counts as "other". */
static const int statuses[] = {200, 400, 401, 403, 404, 405, 409, 412, 413, 414, 429, 431, 500, 503, 504};
#define NSTATUS (ARRAY_LEN(statuses) + 1)

struct slot {
    uint64_t by_status[NSTATUS];
    int64_t inflight;
    metrics_hist_t latency;
};

struct gw_metrics {
    size_t n;                 /* rows + 1 */
    struct slot *s;
};

gw_metrics_t *gw_metrics_new(void)
{
    gw_metrics_t *m = xcalloc(1, sizeof *m);
    m->n = gw_action_count() + 1;
    m->s = xcalloc(m->n, sizeof *m->s);
    return m;
}

void gw_metrics_free(gw_metrics_t *m)
{
    if (!m)
        return;
    free(m->s);
    free(m);
}

void gw_metrics_start(gw_metrics_t *m, const gw_action_t *a)
{
    metrics_gauge_add(&m->s[gw_action_index(a)].inflight, 1);
}

void gw_metrics_done(gw_metrics_t *m, const gw_action_t *a, int status, uint64_t us)
{
    struct slot *s = &m->s[gw_action_index(a)];
    size_t i = 0;
    while (i < ARRAY_LEN(statuses) && statuses[i] != status)
        i++;
    metrics_inc(&s->by_status[i]);
    metrics_gauge_add(&s->inflight, -1);
    metrics_hist_observe(&s->latency, us);
}

static void labels(const gw_metrics_t *m, size_t i, char *out, size_t n)
{
    const gw_action_t *a = i + 1 < m->n ? gw_action_at(i) : NULL;
    snprintf(out, n, "api=\"%s\",action=\"%s\"", a ? (a->api == API_IAM ? "iam" : "ec2") : "",
             a ? a->name : "unknown");
}

void gw_metrics_render(gw_metrics_t *m, strbuf_t *out)
{
    char l[160], lc[192];
    metrics_family(out, "virga_gateway_requests_total", "counter",
                   "Query API requests answered, by action and HTTP status (action \"unknown\": refused before the "
                   "action was known).");
    for (size_t i = 0; i < m->n; i++) {
        labels(m, i, l, sizeof l);
        for (size_t k = 0; k < NSTATUS; k++) {
            uint64_t v = metrics_read(&m->s[i].by_status[k]);
            if (!v)
                continue;   /* a row per action and status ever answered, not a grid of zeros */
            if (k < ARRAY_LEN(statuses))
                snprintf(lc, sizeof lc, "%s,code=\"%d\"", l, statuses[k]);
            else
                snprintf(lc, sizeof lc, "%s,code=\"other\"", l);
            metrics_sample(out, "virga_gateway_requests_total", lc, v);
        }
    }
    metrics_family(out, "virga_gateway_requests_in_flight", "gauge", "Query API requests received and not yet answered.");
    for (size_t i = 0; i < m->n; i++) {
        labels(m, i, l, sizeof l);
        int64_t v = __atomic_load_n(&m->s[i].inflight, __ATOMIC_RELAXED);
        metrics_sample(out, "virga_gateway_requests_in_flight", l, v > 0 ? (uint64_t)v : 0);
    }
    metrics_family(out, "virga_gateway_request_duration_seconds", "histogram",
                   "Time from a request's arrival to its answer, by action.");
    for (size_t i = 0; i < m->n; i++) {
        uint64_t any = 0;
        for (size_t k = 0; k <= METRICS_NBUCKETS; k++)
            any += metrics_read(&m->s[i].latency.bucket[k]);
        if (!any)
            continue;   /* actions never called: no series */
        labels(m, i, l, sizeof l);
        metrics_hist_render(out, "virga_gateway_request_duration_seconds", l, &m->s[i].latency);
    }
}
