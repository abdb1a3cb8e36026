/* scheduler.c - where a new instance runs. Filters (one table: host up, zone, driver fits
 * the image, capacity with compute.cpu_overcommit / compute.ram_overcommit) reject hosts;
 * the weight (compute.placement: spread = the host with the most room left, pack = the
 * least) picks among the rest. It runs inside the launch transaction with every host row
 * locked, and counts the capacity in use from the instances table in that same
 * transaction, so two launches can never both take the last room of a host. Stopped
 * instances keep their room (they start again on the same host).
 * A public cloud region is a host too (its agent runs the `ec2` driver; hosts.cloud names
 * it): its capacity is its configured limits (instances, vCPUs) without overcommit, it
 * takes any image (the region's image map decides), and the request's placement policy
 * says whether it may be used at all, and with `burst` only when no private host fits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"

typedef struct host {
    char id[64], zone[64], cloud[64];
    int public;                 /* a public cloud region (cloud <> 'private') */
    int max_instances, used_instances;   /* 0: no limit */
    char drivers[256];          /* the text[] literal, e.g. {container,qemu} */
    int up;
    double vcpus, mem, disk;    /* capacity, overcommit applied */
    double used_vcpus, used_mem, used_disk;
} host_t;

static int has_driver(const host_t *h, const char *d)
{
    const char *s = h->drivers;
    size_t n = strlen(d);
    while ((s = strstr(s, d))) {
        if ((s[-1] == '{' || s[-1] == ',' || s[-1] == '"') && (s[n] == '}' || s[n] == ',' || s[n] == '"'))
            return 1;
        s += n;
    }
    return 0;
}

/* The driver that runs an image of this kind on h, or NULL: a host offering only sim
 * simulates every image; otherwise a root file system runs as a container, a machine
 * image under qemu. */
static const char *driver_for(const host_t *h, const char *kind)
{
    if (h->public)
        return has_driver(h, "ec2") ? "ec2" : NULL;
    if (!strcmp(h->drivers, "{sim}"))
        return "sim";
    const char *want = !strcmp(kind, "container-rootfs") ? "container" : !strcmp(kind, "machine") ? "qemu" : NULL;
    return want && has_driver(h, want) ? want : NULL;
}

typedef int (*filter_fn)(const host_t *h, const sched_req_t *r);
static int f_up(const host_t *h, const sched_req_t *r) { (void)r; return h->up; }
static int f_zone(const host_t *h, const sched_req_t *r) { return !r->zone || !strcmp(r->zone, h->zone); }
static int f_driver(const host_t *h, const sched_req_t *r) { return driver_for(h, r->image_kind) != NULL; }
static int f_policy(const host_t *h, const sched_req_t *r)
{
    return h->public ? r->policy != SCHED_PRIVATE : r->policy != SCHED_PUBLIC;
}
static int f_capacity(const host_t *h, const sched_req_t *r)
{
    if (h->max_instances > 0 && h->used_instances >= h->max_instances)
        return 0;
    return h->used_vcpus + r->vcpus <= h->vcpus && h->used_mem + (double)r->memory_mib <= h->mem &&
           (h->disk <= 0 || h->used_disk + (double)r->disk_gib <= h->disk);
}

static const struct {
    const char *name;
    filter_fn fn;
} filters[] = {
    {"placement-policy", f_policy},
    {"host-up", f_up},
    {"availability-zone", f_zone},
    {"driver", f_driver},
    {"capacity", f_capacity},
};
#define NFILTERS (sizeof filters / sizeof filters[0])

/* Room left after placing r: the smaller of the CPU and memory fractions. */
static double room(const host_t *h, const sched_req_t *r)
{
    double c = (h->vcpus - h->used_vcpus - r->vcpus) / (h->vcpus > 0 ? h->vcpus : 1);
    double m = (h->mem - h->used_mem - (double)r->memory_mib) / (h->mem > 0 ? h->mem : 1);
    return c < m ? c : m;
}

static host_t *load_hosts(db_t *db, const compute_t *c, int *n, verr_t *e)
{
    char down[16];
    snprintf(down, sizeof down, "%d", c->host_down_after_s);
    const char *p[] = {down};
    PG_AUTO PGresult *r = db_prepared(db, e, "sched_hosts",
        "SELECT host_id, vcpus, memory_mib, disk_gib, drivers::text, zone, "
        "state = 'up' AND last_seen > now() - make_interval(secs => $1::int), cloud, max_instances "
        "FROM hosts ORDER BY host_id FOR UPDATE",
        1, p);
    if (!r)
        return NULL;
    PG_AUTO PGresult *u = db_prepared(db, e, "sched_usage",
        "SELECT host_id, sum(vcpus), sum(memory_mib), sum(disk_gib), count(*) FROM instances "
        "WHERE host_id IS NOT NULL AND state <> 'terminated' GROUP BY host_id ORDER BY host_id", 0, NULL);
    if (!u)
        return NULL;
    *n = PQntuples(r);
    host_t *hs = xcalloc((size_t)*n + 1, sizeof *hs);
    const char *first_zone = c->zones;
    size_t fz = strcspn(first_zone, ",");
    for (int i = 0, j = 0; i < *n; i++) {
        host_t *h = &hs[i];
        snprintf(h->id, sizeof h->id, "%s", PQgetvalue(r, i, 0));
        snprintf(h->cloud, sizeof h->cloud, "%s", PQgetvalue(r, i, 7));
        h->public = strcmp(h->cloud, "private") != 0;
        h->max_instances = atoi(PQgetvalue(r, i, 8));
        /* a public region's limits are what the operator bought: no overcommit */
        h->vcpus = atof(PQgetvalue(r, i, 1)) * (h->public ? 1 : c->cpu_overcommit);
        h->mem = atof(PQgetvalue(r, i, 2)) * (h->public ? 1 : c->ram_overcommit);
        h->disk = atof(PQgetvalue(r, i, 3));
        snprintf(h->drivers, sizeof h->drivers, "%s", PQgetvalue(r, i, 4));
        if (*PQgetvalue(r, i, 5))
            snprintf(h->zone, sizeof h->zone, "%s", PQgetvalue(r, i, 5));
        else
            snprintf(h->zone, sizeof h->zone, "%.*s", (int)fz, first_zone);
        h->up = PQgetvalue(r, i, 6)[0] == 't';
        /* both ordered by host id: merge */
        while (j < PQntuples(u) && strcmp(PQgetvalue(u, j, 0), h->id) < 0)
            j++;
        if (j < PQntuples(u) && !strcmp(PQgetvalue(u, j, 0), h->id)) {
            h->used_vcpus = atof(PQgetvalue(u, j, 1));
            h->used_mem = atof(PQgetvalue(u, j, 2));
            h->used_disk = atof(PQgetvalue(u, j, 3));
            h->used_instances = atoi(PQgetvalue(u, j, 4));
        }
    }
    return hs;
}

static const char *const policy_names[] = {
    [SCHED_PRIVATE] = "private",
    [SCHED_BURST] = "burst",
    [SCHED_PUBLIC] = "public",
};

int sched_policy_parse(const char *s, sched_policy_t *out)
{
    for (size_t i = 0; s && i < sizeof policy_names / sizeof policy_names[0]; i++)
        if (!strcmp(s, policy_names[i])) {
            *out = (sched_policy_t)i;
            return 0;
        }
    return -1;
}

const char *sched_policy_name(sched_policy_t p)
{
    return (unsigned)p < sizeof policy_names / sizeof policy_names[0] ? policy_names[p] : "?";
}

/* What the capacity error adds about public clouds: whether bursting was allowed, and if
 * so which public clouds were full too. */
static void burst_note(const host_t *hs, int n, const sched_req_t *r, char *out, size_t size)
{
    char names[384] = "";
    size_t k = 0;
    int npub = 0;
    for (int i = 0; i < n; i++)
        if (hs[i].public && k < sizeof names) {
            k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", npub ? ", " : "", hs[i].cloud);
            npub++;
        }
    if (r->policy == SCHED_PRIVATE)
        snprintf(out, size, " Bursting to a public cloud was not allowed (placement policy private).");
    else if (!npub)
        snprintf(out, size, " No public cloud is configured (placement policy %s).", sched_policy_name(r->policy));
    else
        snprintf(out, size, " The public cloud%s %s %s full too (placement policy %s).", npub > 1 ? "s" : "", names,
                 npub > 1 ? "were" : "was", sched_policy_name(r->policy));
}

int scheduler_place(db_t *db, const compute_t *c, const sched_req_t *r, sched_pick_t *picks, verr_t *e)
{
    int n = 0, placed = 0;
    host_t *hs = load_hosts(db, c, &n, e);
    if (!hs)
        return -1;
    int rejected[NFILTERS] = {0};
    for (; placed < r->max_count; placed++) {
        host_t *best = NULL;
        double best_room = 0;
        memset(rejected, 0, sizeof rejected);
        for (int i = 0; i < n; i++) {
            size_t f = 0;
            while (f < NFILTERS && filters[f].fn(&hs[i], r))
                f++;
            if (f < NFILTERS) {
                rejected[f]++;
                continue;
            }
            double w = room(&hs[i], r);
            /* burst: a private host always wins over a public one */
            int better = !best || (best->public && !hs[i].public) ||
                         (best->public == hs[i].public && (c->pack ? w < best_room : w > best_room));
            if (better) {
                best = &hs[i];
                best_room = w;
            }
        }
        if (!best)
            break;
        best->used_vcpus += r->vcpus;
        best->used_mem += (double)r->memory_mib;
        best->used_disk += (double)r->disk_gib;
        best->used_instances++;
        snprintf(picks[placed].host, sizeof picks[placed].host, "%s", best->id);
        snprintf(picks[placed].driver, sizeof picks[placed].driver, "%s", driver_for(best, r->image_kind));
        snprintf(picks[placed].zone, sizeof picks[placed].zone, "%s", best->zone);
    }
    if (placed >= r->min_count) {
        free(hs);
        return placed;
    }
    char why[512], pub[512];
    size_t w = 0;
    for (size_t f = 0; f < NFILTERS; f++)
        w += (size_t)snprintf(why + w, sizeof why - w, "%s%s rejected %d", f ? ", " : "", filters[f].name,
                              rejected[f]);
    burst_note(hs, n, r, pub, sizeof pub);
    free(hs);
    return verr_set(e, 400, "InsufficientInstanceCapacity",
                    "We currently do not have sufficient %s capacity for %d instance(s)%s%s: %d of %d placed; "
                    "of %d host(s): %s.%s", r->type_name, r->min_count, r->zone ? " in " : "", r->zone ? r->zone : "",
                    placed, r->min_count, n, why, pub);
}
