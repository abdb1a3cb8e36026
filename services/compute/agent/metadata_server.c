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
#include <unistd.h>

#include "datapath.h"
#include "log.h"
#include "metadata_http.h"
#include "metadata_server.h"

typedef struct md_entry {
    md_vpc_t vpc;
    ino_t ns_ino;           /* the namespace it listens in: one made anew needs a new socket */
    md_http_t *server;
} md_entry_t;

static struct {
    service_t *svc;
    md_http_opts_t opts;
    int timeout_ms;
    md_entry_t *v;
    size_t n;
    char **addresses;       /* "<vpc> <ip> <public ip>" of the last document, sorted */
    size_t n_addresses;
} mds;

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

int md_servers_open(service_t *svc, verr_t *e)
{
    mds.svc = svc;
    mds.timeout_ms = (int)config_int(svc->cfg, "agent.metadata_timeout_ms", 3000);
    const char *tokens = config_str(svc->cfg, "agent.metadata_tokens", "optional");
    if (strcmp(tokens, "optional") && strcmp(tokens, "required"))
        return verr_set(e, 400, "InvalidConfig", "agent.metadata_tokens is optional or required");
    mds.opts = (md_http_opts_t){
        .lookup = ask_compute,
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
    for (size_t i = 0; i < mds.n_addresses; i++)
        free(mds.addresses[i]);
    free(mds.addresses);
    mds.addresses = NULL;
    mds.n_addresses = 0;
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
        if (!mds.addresses || bsearch(&now[i], mds.addresses, mds.n_addresses, sizeof *now, by_text))
            continue;
        for (size_t k = 0; k < mds.n; k++)
            if (!strcmp(mds.v[k].vpc.vpc_id, f->vpc_id))
                md_http_forget(mds.v[k].server, f->ip);
    }
    qsort(now, d->n_ifaces, sizeof *now, by_text);
    for (size_t i = 0; i < mds.n_addresses; i++)
        free(mds.addresses[i]);
    free(mds.addresses);
    mds.addresses = now;
    mds.n_addresses = d->n_ifaces;
}
