/* metadata_server.c - one metadata HTTP server per VPC present on this host
 * (metadata_server.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datapath.h"
#include "jsonutil.h"
#include "log.h"
#include "metadata_http.h"
#include "metadata_server.h"

typedef struct md_entry {
    md_vpc_t vpc;
    ino_t ns_ino;           /* the namespace it listens in: one made anew needs a new socket */
    md_http_t *server;
} md_entry_t;

/* A document compute sent ahead with a launch's doorbell (md_servers_prime): what
 * compute.instance_metadata would answer for the primary address of an instance about
 * to boot, so that its guest's first questions need no round trip on the bus. */
typedef struct md_primed {
    char instance_id[32], vpc_id[64], ip[48], eni_id[64], public_ip[48];
    json_t *doc;
    time_t until;           /* as long as an answer is cached (agent.metadata_cache_s) */
} md_primed_t;

#define MD_PRIMED_MAX 256

static struct {
    service_t *svc;
    md_http_opts_t opts;
    int timeout_ms;
    md_entry_t *v;
    size_t n;
    char **addresses;       /* "<vpc> <ip> <public ip>" of the last document, sorted */
    size_t n_addresses;
    pthread_mutex_t primed_mu;   /* primed: the instance loop writes, the servers read */
    md_primed_t primed[MD_PRIMED_MAX];
} mds = {.primed_mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- a listening socket inside another network namespace ---- */

typedef struct listen_job {
    const char *netns, *ip;
    int port;
    int fd;
    char why[512];
} listen_job_t;

static void *listen_thread(void *arg)
{
    listen_job_t *j = arg;
    char path[256];
    snprintf(path, sizeof path, "/run/netns/%s", j->netns);
    int nsfd = open(path, O_RDONLY | O_CLOEXEC);
    /* setns changes this thread alone, which ends right after: the socket keeps the
     * namespace it was made in */
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
        snprintf(j->why, sizeof j->why, "%s: %s", path, strerror(errno));
        if (nsfd >= 0)
            close(nsfd);
        return NULL;
    }
    close(nsfd);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)j->port)};
    inet_pton(AF_INET, j->ip, &a.sin_addr);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 128) < 0) {
        snprintf(j->why, sizeof j->why, "%s:%d in %s: %s", j->ip, j->port, j->netns, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    j->fd = fd;
    return NULL;
}

int md_listen_in_netns(const char *netns, const char *ip, int port, verr_t *e)
{
    listen_job_t j = {.netns = netns, .ip = ip, .port = port, .fd = -1};
    pthread_t t;
    if (pthread_create(&t, NULL, listen_thread, &j) != 0)
        return verr_set(e, 500, "InternalError", "metadata: no thread to listen in %s", netns);
    pthread_join(t, NULL);
    if (j.fd < 0)
        return verr_set(e, 500, "InternalError", "metadata: cannot listen: %s", j.why);
    return j.fd;
}

static ino_t netns_ino(const char *netns)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "/run/netns/%s", netns);
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* ---- compute answers (compute.instance_metadata: refused unless the instance is
 * placed on this agent's host) ---- */

static int ask_compute(void *app, const char *vpc_id, const char *ip, bus_reply_fn cb, void *arg, verr_t *e)
{
    (void)app;
    return bus_call_async(mds.svc->bus, "compute", "compute.instance_metadata",
                          json_pack("{s:s, s:s}", "vpc_id", vpc_id, "ip", ip), NULL, mds.timeout_ms, cb, arg, e);
}

/* ---- documents sent ahead ---- */

static void primed_drop(md_primed_t *p)
{
    json_decref(p->doc);
    memset(p, 0, sizeof *p);
}

static json_t *primed_get(void *app, const char *vpc_id, const char *ip)
{
    (void)app;
    json_t *doc = NULL;
    time_t now = time(NULL);
    pthread_mutex_lock(&mds.primed_mu);
    for (size_t i = 0; i < MD_PRIMED_MAX && !doc; i++) {
        md_primed_t *p = &mds.primed[i];
        if (p->doc && p->until <= now)
            primed_drop(p);
        else if (p->doc && !strcmp(p->ip, ip) && !strcmp(p->vpc_id, vpc_id))
            doc = json_incref(p->doc);
    }
    pthread_mutex_unlock(&mds.primed_mu);
    return doc;
}

/* Whether the network's last document (primed_mu held) gives the address to another
 * interface, or another public address, than the document sent ahead says: the network's
 * line came first, and disagrees (no line yet: the one to come is checked,
 * primed_address_changed). */
static int network_disagrees(const char *vpc, const char *ip, const char *eni, const char *public_ip)
{
    char want[320], prefix[128];
    snprintf(want, sizeof want, "%s %s %s %s ", vpc, ip, public_ip, eni);
    int n = snprintf(prefix, sizeof prefix, "%s %s ", vpc, ip), seen = 0;
    for (size_t i = 0; i < mds.n_addresses; i++)
        if (!strncmp(mds.addresses[i], prefix, (size_t)n)) {
            if (!strcmp(mds.addresses[i], want))
                return 0;
            seen = 1;
        }
    return seen;
}

void md_servers_prime(const char *instance_id, const json_t *md)
{
    const char *vpc = json_str(md, "vpc_id", ""), *ip = json_str(md, "ip", "");
    json_t *doc = json_object_get(md, "document");
    int usable = md && json_is_object(doc) && *vpc && *ip && mds.opts.cache_s > 0 &&
                 !strcmp(json_str(doc, "instance_id", ""), instance_id);
    time_t now = time(NULL);
    pthread_mutex_lock(&mds.primed_mu);
    if (usable && network_disagrees(vpc, ip, json_str(md, "eni_id", ""), json_str(md, "public_ip", "")))
        usable = 0;
    size_t slot = MD_PRIMED_MAX;
    for (size_t i = 0; i < MD_PRIMED_MAX; i++) {
        md_primed_t *p = &mds.primed[i];
        /* this instance's older one, and whatever its address had: the newest change wins */
        if (p->doc && (p->until <= now || !strcmp(p->instance_id, instance_id) ||
                       (usable && !strcmp(p->ip, ip) && !strcmp(p->vpc_id, vpc))))
            primed_drop(p);
        if (!p->doc && slot == MD_PRIMED_MAX)
            slot = i;
    }
    if (usable && slot < MD_PRIMED_MAX && strlen(instance_id) < sizeof mds.primed[0].instance_id &&
        strlen(vpc) < sizeof mds.primed[0].vpc_id && strlen(ip) < sizeof mds.primed[0].ip) {
        md_primed_t *p = &mds.primed[slot];
        snprintf(p->instance_id, sizeof p->instance_id, "%s", instance_id);
        snprintf(p->vpc_id, sizeof p->vpc_id, "%s", vpc);
        snprintf(p->ip, sizeof p->ip, "%s", ip);
        snprintf(p->eni_id, sizeof p->eni_id, "%s", json_str(md, "eni_id", ""));
        snprintf(p->public_ip, sizeof p->public_ip, "%s", json_str(md, "public_ip", ""));
        p->doc = json_incref(doc);
        p->until = now + mds.opts.cache_s;
    }
    pthread_mutex_unlock(&mds.primed_mu);
}

void md_servers_primed_keep(const json_t *instances)
{
    pthread_mutex_lock(&mds.primed_mu);
    for (size_t i = 0; i < MD_PRIMED_MAX; i++) {
        md_primed_t *p = &mds.primed[i];
        if (!p->doc)
            continue;
        int kept = 0;
        size_t k;
        const json_t *it;
        json_array_foreach(instances, k, it)
            if (!strcmp(json_str(it, "instance_id", ""), p->instance_id)) {
                kept = 1;
                break;
            }
        if (!kept)
            primed_drop(p);
    }
    pthread_mutex_unlock(&mds.primed_mu);
}

/* The network's line for an address that changed (md_servers_addresses): a document sent
 * ahead for that address stays only when it names the same primary interface and public
 * address (the launch's own interface arriving after its doorbell). */
static void primed_address_changed(const dp_iface_t *f)
{
    pthread_mutex_lock(&mds.primed_mu);
    for (size_t i = 0; i < MD_PRIMED_MAX; i++) {
        md_primed_t *p = &mds.primed[i];
        if (p->doc && !strcmp(p->ip, f->ip) && !strcmp(p->vpc_id, f->vpc_id) &&
            (*f->parent || strcmp(p->eni_id, f->eni_id) || strcmp(p->public_ip, f->public_ip)))
            primed_drop(p);
    }
    pthread_mutex_unlock(&mds.primed_mu);
}

int md_servers_open(service_t *svc, verr_t *e)
{
    mds.svc = svc;
    mds.timeout_ms = (int)config_int(svc->cfg, "agent.metadata_timeout_ms", 3000);
    const char *tokens = config_str(svc->cfg, "agent.metadata_tokens", "optional");
    if (strcmp(tokens, "optional") && strcmp(tokens, "required"))
        return verr_set(e, 400, "InvalidConfig", "agent.metadata_tokens is optional or required");
    mds.opts = (md_http_opts_t){
        .lookup = ask_compute,
        .primed = primed_get,
        .cache_s = (int)config_int(svc->cfg, "agent.metadata_cache_s", 5),
        .hop_limit = (int)config_int(svc->cfg, "agent.metadata_hop_limit", 1),
        .tokens_required = !strcmp(tokens, "required"),
    };
    crypto_auth_hmacsha256_keygen(mds.opts.token_key);
    return 0;
}

static int wanted(const md_entry_t *x, const md_vpc_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(x->vpc.vpc_id, v[i].vpc_id) && !strcmp(x->vpc.netns, v[i].netns) &&
            x->ns_ino == netns_ino(v[i].netns))
            return 1;
    return 0;
}

int md_servers_sync(const md_vpc_t *v, size_t n, verr_t *e)
{
    for (size_t i = mds.n; i-- > 0;)
        if (!wanted(&mds.v[i], v, n)) {
            log_info("metadata service for %s stopped", mds.v[i].vpc.vpc_id);
            md_http_stop(mds.v[i].server);
            mds.v[i] = mds.v[--mds.n];
        }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int have = 0;
        for (size_t k = 0; k < mds.n && !have; k++)
            have = !strcmp(mds.v[k].vpc.vpc_id, v[i].vpc_id);
        if (have)
            continue;
        ino_t ino = netns_ino(v[i].netns);
        int fd = md_listen_in_netns(v[i].netns, DP_METADATA_IP, 80, e);
        md_http_t *s = fd < 0 ? NULL : md_http_start(fd, v[i].vpc_id, &mds.opts, e);
        if (!s) {
            log_warn("metadata service for %s: %s", v[i].vpc_id, e->message);
            rc = -1;
            continue;
        }
        mds.v = xrealloc(mds.v, (mds.n + 1) * sizeof *mds.v);
        mds.v[mds.n++] = (md_entry_t){.vpc = v[i], .ns_ino = ino, .server = s};
        log_info("metadata service for %s on %s:80 in %s", v[i].vpc_id, DP_METADATA_IP, v[i].netns);
    }
    return rc;
}

void md_servers_close(void)
{
    for (size_t i = 0; i < mds.n; i++)
        md_http_stop(mds.v[i].server);
    free(mds.v);
    mds.v = NULL;
    mds.n = 0;
    pthread_mutex_lock(&mds.primed_mu);
    for (size_t i = 0; i < mds.n_addresses; i++)
        free(mds.addresses[i]);
    free(mds.addresses);
    mds.addresses = NULL;
    mds.n_addresses = 0;
    for (size_t i = 0; i < MD_PRIMED_MAX; i++)
        primed_drop(&mds.primed[i]);
    pthread_mutex_unlock(&mds.primed_mu);
}

static int by_text(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void md_servers_addresses(const struct dp_desired *d)
{
    char **now = xcalloc(d->n_ifaces + 1, sizeof *now);
    for (size_t i = 0; i < d->n_ifaces; i++) {
        const dp_iface_t *f = &d->ifaces[i];
        now[i] = xasprintf("%s %s %s %s %s", f->vpc_id, f->ip, f->public_ip, f->eni_id, f->parent);
        /* a line the last document did not have (its public address changed; or it is
         * new here: another interface has the address, or the same interface another
         * instance, of which it is not the primary): whatever its address had cached goes,
         * the answers of the instance that had it before (after the agent's start,
         * nothing is cached yet) */
        if (!mds.addresses || !bsearch(&now[i], mds.addresses, mds.n_addresses, sizeof *now, by_text))
            primed_address_changed(f);
        if (!mds.addresses || bsearch(&now[i], mds.addresses, mds.n_addresses, sizeof *now, by_text))
            continue;
        for (size_t k = 0; k < mds.n; k++)
            if (!strcmp(mds.v[k].vpc.vpc_id, f->vpc_id))
                md_http_forget(mds.v[k].server, f->ip);
    }
    qsort(now, d->n_ifaces, sizeof *now, by_text);
    pthread_mutex_lock(&mds.primed_mu);   /* md_servers_prime reads them */
    for (size_t i = 0; i < mds.n_addresses; i++)
        free(mds.addresses[i]);
    free(mds.addresses);
    mds.addresses = now;
    mds.n_addresses = d->n_ifaces;
    pthread_mutex_unlock(&mds.primed_mu);
}
