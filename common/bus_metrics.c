/* bus_metrics.c - what a bus server did per message type: requests handled and failed,
 * the time each waited in its lane for a worker (a service short of workers shows
 * here) and the time its handler took (a slow query shows here), as Prometheus
 * metrics (bus.h). Workers update them with atomics only. */
#include <stdio.h>

#include "bus_internal.h"
#include "strbuf.h"

void bus_metrics_observe(bus_t *b, size_t row, uint64_t wait_us, uint64_t handler_us, int failed)
{
    if (!b->types || row >= b->ntypes)
        return;
    struct bus_type_metrics *t = &b->types[row];
    metrics_inc(&t->handled);
    if (failed)
        metrics_inc(&t->failed);
    metrics_hist_observe(&t->queue_wait, wait_us);
    metrics_hist_observe(&t->handler, handler_us);
}

static const char *type_of(const bus_t *b, size_t row)
{
    return row + 1 < b->ntypes ? b->opts.routes[row].type : "unknown";
}

void bus_metrics_render(bus_t *b, strbuf_t *out)
{
    if (!b)
        return;
    char l[256];
    /* how many requests and replies left at once on the linger-0 producer, and how many
     * waited for a batch (bus.c, producer_for): under load nearly all should batch */
    metrics_family(out, "virga_bus_sent_total", "counter",
                   "Bus messages produced, by producer: at_once (linger 0, nothing else in flight) or batched.");
    snprintf(l, sizeof l, "service=\"%s\",producer=\"at_once\"", b->name);
    metrics_sample(out, "virga_bus_sent_total", l, metrics_read(&b->sent_at_once));
    snprintf(l, sizeof l, "service=\"%s\",producer=\"batched\"", b->name);
    metrics_sample(out, "virga_bus_sent_total", l, metrics_read(&b->sent_batched));
    if (!b->types)
        return;
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"virga_bus_handled_total", "Bus requests handled, by message type.",
         offsetof(struct bus_type_metrics, handled)},
        {"virga_bus_failed_total", "Bus requests answered with an error, by message type.",
         offsetof(struct bus_type_metrics, failed)},
    };
    for (size_t c = 0; c < ARRAY_LEN(counters); c++) {
        metrics_family(out, counters[c].name, "counter", counters[c].help);
        for (size_t i = 0; i < b->ntypes; i++) {
            uint64_t v = metrics_read((const uint64_t *)((const char *)&b->types[i] + counters[c].off));
            if (!v && c)
                continue;   /* failures: only types that failed */
            if (!metrics_read(&b->types[i].handled))
                continue;   /* types never received: no series */
            snprintf(l, sizeof l, "service=\"%s\",type=\"%s\"", b->name, type_of(b, i));
            metrics_sample(out, counters[c].name, l, v);
        }
    }
    metrics_family(out, "virga_bus_queue_wait_seconds", "histogram",
                   "Time a bus request waited in its lane for a worker, by message type.");
    for (size_t i = 0; i < b->ntypes; i++)
        if (metrics_read(&b->types[i].handled)) {
            snprintf(l, sizeof l, "service=\"%s\",type=\"%s\"", b->name, type_of(b, i));
            metrics_hist_render(out, "virga_bus_queue_wait_seconds", l, &b->types[i].queue_wait);
        }
    metrics_family(out, "virga_bus_handler_seconds", "histogram", "Time a bus handler took, by message type.");
    for (size_t i = 0; i < b->ntypes; i++)
        if (metrics_read(&b->types[i].handled)) {
            snprintf(l, sizeof l, "service=\"%s\",type=\"%s\"", b->name, type_of(b, i));
            metrics_hist_render(out, "virga_bus_handler_seconds", l, &b->types[i].handler);
        }
    /* bus_ask/bus_await: messages set aside, their worker serving others meanwhile */
    metrics_family(out, "virga_bus_waiting_messages", "gauge",
                   "Bus requests waiting for an answer they asked for (no worker held), now.");
    pthread_mutex_lock(&b->work.mu);
    int parked = b->work.parked;
    pthread_mutex_unlock(&b->work.mu);
    snprintf(l, sizeof l, "service=\"%s\"", b->name);
    metrics_sample(out, "virga_bus_waiting_messages", l, (uint64_t)parked);
}
