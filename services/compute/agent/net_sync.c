/* net_sync.c - this host's datapath, kept equal to the network service's document for it
 * (net_sync.h). One thread owns the datapath driver (the library is not thread-safe)
 * and the set of metadata servers; bus workers and the reconcile timer only wake it,
 * with the document the network pushed or with a reason to pull it. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datapath.h"
#include "jsonutil.h"
#include "linux.h"
#include "log.h"
#include "metadata_server.h"
#include "net_sync.h"

typedef struct net_sync {
    service_t *svc;
    dp_driver_t *dp;        /* opened by the thread (its lock may be held a while) */
    dp_config_t cfg;
    char driver[16];
    char host[64];
    int timeout_ms, resync_s;
    pthread_t thread;
    pthread_mutex_t mu;     /* guards what follows */
    pthread_cond_t cv;
    int kicked, stopping, running;
    int pull;               /* pull the document (a tick, a doorbell without one) */
    json_t *pushed;         /* the newest document pushed and not applied yet, or NULL */
    long long applied;      /* generation applied; -1 none yet */
    char error[512];        /* why the last pull or apply failed; "" when it did not */
    void (*applied_fn)(void *);   /* net_sync_on_applied (under hook_mu) */
    void *applied_arg;
    /* the sync thread's own (no lock): */
    int idle_s;             /* agent.datapath_vpc_idle_teardown_s; 0 = no grace */
    json_t *vpcs_seen;      /* {vpc id: {"vpc": its last part of a document, "gone": when
                             * first applied without it, 0 while the document names it}} */
    time_t idle_until;      /* when the first VPC kept idle in the last apply expires; 0 none */
    json_t *last_doc;       /* the last document applied (as received): applied again then */
} net_sync_t;

static net_sync_t ns = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .applied = -1};

/* Held while the hook runs, so that once net_sync_on_applied(NULL, ...) returns no call
 * into what it named is left (the agent's stop clears it before the instance loop goes). */
static pthread_mutex_t hook_mu = PTHREAD_MUTEX_INITIALIZER;

void net_sync_on_applied(void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&hook_mu);
    ns.applied_fn = fn;
    ns.applied_arg = arg;
    pthread_mutex_unlock(&hook_mu);
}

/* Tell the hook that the datapath changed (the sync thread, ns.mu not held). */
static void tell_applied(void)
{
    pthread_mutex_lock(&hook_mu);
    if (ns.applied_fn)
        ns.applied_fn(ns.applied_arg);
    pthread_mutex_unlock(&hook_mu);
}

void net_sync_kick(void)
{
    pthread_mutex_lock(&ns.mu);
    ns.kicked = ns.pull = 1;
    pthread_cond_signal(&ns.cv);
    pthread_mutex_unlock(&ns.mu);
}

/* Whether a document of generation gen is news (under ns.mu): generations only grow, so
 * an older one (a late message, another network replica's) is never applied over a newer
 * one; the same one only when applying it failed. */
static int news_locked(long long gen)
{
    return gen > ns.applied || (gen == ns.applied && ns.error[0]);
}

int net_sync_event(bus_ctx_t *ctx, const json_t *body, json_t **reply, verr_t *e)
{
    (void)ctx;
    (void)reply;
    (void)e;
    if (!ns.running)
        return 0;
    const json_t *doc = json_object_get(body, "document");
    if (doc && (!json_is_object(doc) || strcmp(json_str(doc, "host", ""), ns.host))) {
        log_warn("agent.network_changed: a document that is not this host's (%s) ignored", ns.host);
        return 0;
    }
    pthread_mutex_lock(&ns.mu);
    if (doc) {
        /* the route lets only the network send this: its document is applied as pulled */
        long long gen = json_int(doc, "generation", -1);
        if (news_locked(gen) && (!ns.pushed || gen > json_int(ns.pushed, "generation", -1))) {
            json_decref(ns.pushed);
            ns.pushed = json_deep_copy(doc);     /* the thread's own, not the message's */
            ns.kicked = 1;
            pthread_cond_signal(&ns.cv);
        }
    } else if (json_int(body, "generation", -1) != ns.applied) {
        /* the doorbell alone (a document too big to push, an older network): pull */
        ns.kicked = ns.pull = 1;
        pthread_cond_signal(&ns.cv);
    }
    pthread_mutex_unlock(&ns.mu);
    return 0;
}

static void set_result(long long applied, const char *error)
{
    pthread_mutex_lock(&ns.mu);
    if (applied >= 0)
        ns.applied = applied;
    snprintf(ns.error, sizeof ns.error, "%s", error ? error : "");
    pthread_mutex_unlock(&ns.mu);
}

void net_sync_report(json_t *inventory)
{
    pthread_mutex_lock(&ns.mu);
    json_t *n = json_pack("{s:s, s:I}", "datapath", ns.driver[0] ? ns.driver : "none", "generation",
                          (json_int_t)ns.applied);
    if (ns.error[0])
        json_object_set_new(n, "error", json_string(ns.error));
    pthread_mutex_unlock(&ns.mu);
    json_object_set_new(inventory, "network", n);
}

/* An interface was plugged in the middle of an apply: the launch waiting for it may go. */
static void plugged(void *arg, const char *eni_id)
{
    (void)arg;
    (void)eni_id;
    tell_applied();
}

/* The metadata servers follow the applied document: one per VPC present here, listening
 * in that VPC's router namespace (only the linux datapath has namespaces). */
static int sync_metadata(const dp_desired_t *d, verr_t *e)
{
    if (strcmp(ns.driver, "linux"))
        return 0;
    md_vpc_t *v = xcalloc(d->n_vpcs + 1, sizeof *v);
    for (size_t i = 0; i < d->n_vpcs; i++) {
        snprintf(v[i].vpc_id, sizeof v[i].vpc_id, "%s", d->vpcs[i].vpc_id);
        lx_ns_router(ns.dp, d->host, d->vpcs[i].vni, v[i].netns, sizeof v[i].netns);
    }
    int rc = md_servers_sync(v, d->n_vpcs, e);
    free(v);
    return rc;
}

/* The datapath, opened on first use: not at start, since the state directory's lock may
 * be held by another applier (an operator's virga-datapath) and the agent must serve
 * meanwhile. */
static int datapath_open(void)
{
    verr_t e = {0};
    if (ns.dp)
        return 0;
    if (!(ns.dp = dp_open(ns.driver, &ns.cfg, &e))) {
        log_error("network datapath %s: %s (retried at the next tick)", ns.driver, e.message);
        set_result(-1, e.message);
        return -1;
    }
    log_info("network datapath %s, prefix %s, state %s", ns.driver, ns.dp->prefix, ns.dp->state_dir);
    return 0;
}

/* 1: the document names this VPC; 2: another VPC with its VNI (a freed VNI given again) */
static int vpc_named(const json_t *vpcs, const char *vpc_id, json_int_t vni)
{
    size_t i;
    const json_t *v;
    int named = 0;
    json_array_foreach(vpcs, i, v) {
        if (!strcmp(json_str(v, "vpc_id", ""), vpc_id))
            return 1;
        if (json_int(v, "vni", -1) == vni)
            named = 2;
    }
    return named;
}

/* The document with the VPCs whose last interface here went less than idle_s ago: their
 * bridge, VXLAN, router, DHCP and metadata server stay, so that the next launch into one
 * of them pays only for its interface (the bench launched into a VPC the previous round's
 * terminate had emptied, and paid a teardown and a rebuild of ~300 ms each). The network
 * names a VPC on a host only while an interface of it is plugged there; the agent
 * remembers the VPC's last part and adds it back until the grace ends, when the thread
 * applies the last document again without it (sync_thread). A restarted agent remembers
 * nothing and applies the document as it is. A VPC whose VNI the document gives another
 * VPC (a freed VNI given again) is not kept. */
static json_t *with_idle_vpcs(const json_t *doc)
{
    json_t *v, *seen;
    const json_t *vpcs = json_object_get(doc, "vpcs");
    time_t now = time(NULL);
    size_t i;
    const char *id;
    void *tmp;
    ns.idle_until = 0;
    if (ns.idle_s <= 0 || !json_is_array(vpcs))
        return json_incref((json_t *)doc);
    if (!ns.vpcs_seen)
        ns.vpcs_seen = json_object();
    json_array_foreach(vpcs, i, v)
        json_object_set_new(ns.vpcs_seen, json_str(v, "vpc_id", ""), json_pack("{s:O, s:I}", "vpc", v, "gone", 0));
    JSON_AUTO json_t *idle = json_array();
    json_object_foreach_safe(ns.vpcs_seen, tmp, id, seen) {
        json_t *part = json_object_get(seen, "vpc");
        int named = vpc_named(vpcs, id, json_int(part, "vni", -1));
        if (named == 1)
            continue;
        if (!json_int(seen, "gone", 0))
            json_object_set_new(seen, "gone", json_integer((json_int_t)now));
        time_t until = (time_t)json_int(seen, "gone", 0) + ns.idle_s;
        if (named == 2 || until <= now) {
            json_object_del(ns.vpcs_seen, id);
            continue;
        }
        json_array_append(idle, part);
        if (!ns.idle_until || until < ns.idle_until)
            ns.idle_until = until;
    }
    if (!json_array_size(idle))   /* nothing kept: the document as it is, not a copy */
        return json_incref((json_t *)doc);
    json_t *out = json_deep_copy(doc);
    json_array_extend(json_object_get(out, "vpcs"), idle);
    return out;
}

/* Apply a document (pulled or pushed) of generation gen: only what changed since the
 * last apply, or everything observed again when `full` (the start, the periodic resync).
 * A host with nothing on it is torn down rather than built: an empty document needs no
 * namespace at all. */
static void apply(const json_t *pulled, long long gen, int full)
{
    verr_t e = {0};
    if (ns.last_doc != pulled) {
        json_decref(ns.last_doc);
        ns.last_doc = json_incref((json_t *)pulled);
    }
    JSON_AUTO json_t *doc = with_idle_vpcs(pulled);
    AUTOFREE char *text = json_dumps(doc, JSON_COMPACT);
    dp_desired_t *d = dp_desired_parse(text, &e);
    if (!d) {
        log_error("network document of generation %lld: %s", gen, e.message);
        set_result(-1, e.message);
        return;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long execs = dp_exec_count(), procs = dp_proc_count();
    dp_stats_t st = {.plugged = plugged};
    /* an address whose interface or public address changed loses what its metadata
     * cache holds before the apply: the apply lets a launch waiting for its interface go
     * (plugged), and that guest's first question must not get the answer cached for the
     * instance that had its address before */
    md_servers_addresses(d);
    int rc;
    if (!d->n_vpcs && !d->n_ifaces) {
        rc = dp_teardown(ns.dp, d->host, &e);
        if (rc == 0)
            rc = ns.dp->ops->teardown_shared(ns.dp, &e);
    } else {
        rc = full ? dp_apply(ns.dp, d, &st, &e) : dp_apply_changes(ns.dp, d, &st, &e);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (rc < 0) {
        log_error("datapath generation %lld not applied (%ld ms): %s %s; retried at the next tick", gen, ms, e.code,
                  e.message);
        set_result(-1, e.message);
    } else {
        int changed = st.ensured || st.removed || gen != ns.applied;
        if (changed)
            log_info("datapath generation %lld applied: %d ensured, %d removed, %ld commands (%ld processes), %ld ms",
                     gen, st.ensured, st.removed, dp_exec_count() - execs, dp_proc_count() - procs, ms);
        set_result(gen, NULL);
        if (changed)
            tell_applied();
    }
    /* the metadata servers follow what is there, also after a partial apply; one that
     * could not listen makes the next tick try again */
    if (sync_metadata(d, &e) < 0)
        set_result(-1, e.message);
    dp_desired_free(d);
}

/* The VPCs kept idle here that the network no longer has (deleted since their last
 * interface here went): their grace ends now, so their bridge, router, DHCP and metadata
 * server go at this tick rather than agent.datapath_vpc_idle_teardown_s after (the grace
 * is for a VPC that may get a launch again). Asked only while one is kept. 1 when any
 * was dropped. A network that cannot answer leaves the grace as it was. */
static int idle_vpcs_deleted(void)
{
    const char *id;
    json_t *seen, *r = NULL;
    verr_t e = {0};
    JSON_AUTO json_t *idle = json_array();
    json_object_foreach(ns.vpcs_seen, id, seen)
        if (json_int(seen, "gone", 0))
            json_array_append_new(idle, json_string(id));
    if (!json_array_size(idle))
        return 0;
    if (bus_call(ns.svc->bus, "network", "network.vpcs_exist", json_pack("{s:O}", "vpc_ids", idle), NULL,
                 ns.timeout_ms, &r, &e) < 0) {
        log_warn("network.vpcs_exist: %s %s (idle VPCs kept until their grace ends)", e.code, e.message);
        return 0;
    }
    const json_t *live = json_object_get(r, "vpc_ids"), *v;
    size_t i, k;
    int dropped = 0;
    json_array_foreach(idle, i, v) {
        int exists = 0;
        for (k = 0; !exists && k < json_array_size(live); k++)
            exists = !strcmp(json_string_value(json_array_get(live, k)) ?: "", json_string_value(v));
        if (!exists) {
            log_info("VPC %s was deleted: its datapath on this host goes now", json_string_value(v));
            json_object_del(ns.vpcs_seen, json_string_value(v));
            dropped = 1;
        }
    }
    json_decref(r);
    return dropped;
}

/* Pull the document; apply it when it is news (or the last apply failed, or a resync is
 * due: what is there is then observed and repaired even at the same generation, or a VPC
 * kept idle was deleted). */
static void pull_and_apply(int force)
{
    json_t *doc = NULL;
    verr_t e = {0};
    if (datapath_open() < 0)
        return;
    int dropped = idle_vpcs_deleted();
    if (bus_call(ns.svc->bus, "network", "network.host_desired", json_pack("{s:s}", "host", ns.host), NULL,
                 ns.timeout_ms, &doc, &e) < 0) {
        log_warn("network.host_desired: %s %s", e.code, e.message);
        set_result(-1, e.message);
        return;
    }
    long long gen = json_int(doc, "generation", -1);
    pthread_mutex_lock(&ns.mu);
    int same = gen == ns.applied && !ns.error[0];
    pthread_mutex_unlock(&ns.mu);
    if (!same || force || dropped)
        apply(doc, gen, force);
    json_decref(doc);
}

/* Apply the document the network pushed, unless one as new was applied meanwhile. */
static void apply_pushed(const json_t *doc)
{
    long long gen = json_int(doc, "generation", -1);
    pthread_mutex_lock(&ns.mu);
    int news = news_locked(gen);
    pthread_mutex_unlock(&ns.mu);
    if (news && datapath_open() == 0)
        apply(doc, gen, 0);
}

static void *sync_thread(void *arg)
{
    (void)arg;
    time_t last_full = 0;
    for (;;) {
        pthread_mutex_lock(&ns.mu);
        int idle_due = 0;
        while (!ns.kicked && !ns.stopping && !idle_due) {
            /* idle_until is this thread's: it wakes itself when a kept VPC's grace ends */
            struct timespec until = {.tv_sec = ns.idle_until};
            if (!ns.idle_until)
                pthread_cond_wait(&ns.cv, &ns.mu);
            else if (pthread_cond_timedwait(&ns.cv, &ns.mu, &until) == ETIMEDOUT)
                idle_due = time(NULL) >= ns.idle_until;
        }
        int stop = ns.stopping, pull = ns.pull;
        json_t *pushed = ns.pushed;
        ns.kicked = ns.pull = 0;
        ns.pushed = NULL;
        pthread_mutex_unlock(&ns.mu);
        if (stop) {
            json_decref(pushed);
            break;
        }
        if (pull || (!pushed && !idle_due)) {
            /* a pull reads a state at least as new as any document pushed before it; the
             * tick's pull is also the periodic repair */
            time_t now = time(NULL);
            int force = now - last_full >= ns.resync_s;
            if (force)
                last_full = now;
            pull_and_apply(force);
        } else if (pushed) {
            apply_pushed(pushed);
        } else if (idle_due && ns.last_doc && datapath_open() == 0) {
            /* the last document again: the VPCs whose grace ended go */
            apply(ns.last_doc, json_int(ns.last_doc, "generation", -1), 0);
        }
        json_decref(pushed);
    }
    return NULL;
}

int net_sync_start(service_t *svc, const char *host_id, verr_t *e)
{
    const char *driver = config_str(svc->cfg, "agent.datapath", "linux");
    snprintf(ns.driver, sizeof ns.driver, "%s", driver);
    if (!strcmp(driver, "none")) {
        log_info("network datapath: none (agent.datapath)");
        return 0;
    }
    ns.svc = svc;
    snprintf(ns.host, sizeof ns.host, "%s", host_id);
    ns.timeout_ms = (int)config_int(svc->cfg, "agent.datapath_call_timeout_ms", 10000);
    ns.resync_s = (int)config_int(svc->cfg, "agent.datapath_resync_s", 60);
    ns.idle_s = (int)config_int(svc->cfg, "agent.datapath_vpc_idle_teardown_s", 60);
    ns.cfg = (dp_config_t){
        .prefix = config_str(svc->cfg, "agent.datapath_prefix", "virga-"),
        .state_dir = config_str(svc->cfg, "agent.datapath_state_dir", "/run/virga/datapath"),
    };
    if (!dp_driver_find(driver))
        return verr_set(e, 400, "InvalidConfig", "agent.datapath '%s' is not linux, fake or none", driver);
    if (strncmp(ns.cfg.prefix, "virga-", 6) || strlen(ns.cfg.prefix) > 16)
        return verr_set(e, 400, "InvalidConfig", "agent.datapath_prefix must start with virga- (at most 16)");
    if (strlen(host_id) > 24)   /* the datapath's limit (namespace and device names) */
        return verr_set(e, 400, "InvalidConfig", "agent.host_id '%s' is longer than the datapath's 24 characters",
                        host_id);
    int rc = md_servers_open(svc, e);
    if (rc == 0 && pthread_create(&ns.thread, NULL, sync_thread, NULL) != 0)
        rc = verr_set(e, 500, "InternalError", "network sync: no thread");
    if (rc < 0) {
        md_servers_close();
        return -1;
    }
    ns.running = 1;
    net_sync_kick();   /* adopt or repair what is there now, before the first tick */
    return 0;
}

void net_sync_stop(void)
{
    if (ns.running) {
        pthread_mutex_lock(&ns.mu);
        ns.stopping = 1;
        pthread_cond_signal(&ns.cv);
        pthread_mutex_unlock(&ns.mu);
        pthread_join(ns.thread, NULL);
        ns.running = 0;
        json_decref(ns.pushed);
        ns.pushed = NULL;
        json_decref(ns.vpcs_seen);
        ns.vpcs_seen = NULL;
        ns.idle_until = 0;
        json_decref(ns.last_doc);
        ns.last_doc = NULL;
    }
    md_servers_close();
    dp_close(ns.dp);
    ns.dp = NULL;
}
