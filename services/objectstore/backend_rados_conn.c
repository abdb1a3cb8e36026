/* backend_rados_conn.c - the RADOS backend's connection to the cluster, and keeping it
 * working (backend_rados.h).
 *
 * librados does not always recover by itself: after an OSD is killed and started again, a
 * client whose operations timed out (rados_osd_op_timeout) can go on timing out for good
 * while a new client of the same cluster works at once (seen with Ceph 16: every S3 call
 * answered 503 until the object store was restarted). So a monitor thread probes the
 * cluster every objectstore.rados.probe_interval_ms with one read an OSD must answer (the
 * stat of the bucket registry). When the probe gets no answer within probe_timeout_ms,
 * the backend reports itself unhealthy and makes a new connection; if that one answers,
 * it becomes the current connection. Operations that time out while the probe answers
 * (the probed object's OSD is not the one this connection lost) lead to a new connection
 * too, at most every 30 s. Operations hold a counted reference to the
 * connection they started on (an upload or a download keeps it across all its HTTP
 * callbacks, whose aio buffers belong to it), so a replaced connection is shut down by the
 * last operation to let go of it, while new operations already use the new one. */
#include "backend_rados.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

int rados_unavailable(int rc)
{
    static const int codes[] = {ETIMEDOUT, ENOTCONN, ESHUTDOWN, ECONNREFUSED, ECONNRESET, EHOSTUNREACH, ENETUNREACH};
    for (size_t i = 0; i < ARRAY_LEN(codes); i++)
        if (rc == -codes[i])
            return 1;
    return 0;
}

static int conf_set(rados_t c, const char *opt, const char *val, verr_t *e)
{
    int rc = rados_conf_set(c, opt, val);
    return rc < 0 ? verr_set(e, 500, "InternalError", "ceph option %s=%.200s: %s", opt, val, strerror(-rc)) : 0;
}

static void conn_free(rconn_t *c)
{
    if (!c)
        return;
    if (c->io)
        rados_ioctx_destroy(c->io);
    if (c->cluster)
        rados_shutdown(c->cluster);
    free(c);
}

/* A new connection with the backend's settings; connecting waits at most mount_s for a
 * monitor. The operation timeouts make a sick cluster fail requests instead of hanging
 * them. */
static rconn_t *conn_new(rados_impl_t *r, int mount_s, verr_t *e)
{
    rconn_t *c = xcalloc(1, sizeof *c);
    char timeout[24], mount[24];
    snprintf(timeout, sizeof timeout, "%d", r->timeout_s);
    snprintf(mount, sizeof mount, "%d", mount_s);
    int rc = rados_create2(&c->cluster, "ceph", r->name, 0);
    if (rc < 0) {
        c->cluster = NULL;
        verr_set(e, 500, "InternalError", "rados_create2(%s): %s", r->name, strerror(-rc));
        goto fail;
    }
    rc = rados_conf_read_file(c->cluster, r->conf);
    if (rc < 0) {
        verr_set(e, 500, "InternalError", "ceph config %.200s: %s", r->conf ? r->conf : "(default)", strerror(-rc));
        goto fail;
    }
    if ((r->keyring && conf_set(c->cluster, "keyring", r->keyring, e)) ||
        conf_set(c->cluster, "rados_osd_op_timeout", timeout, e) ||
        conf_set(c->cluster, "rados_mon_op_timeout", timeout, e) ||
        conf_set(c->cluster, "client_mount_timeout", mount, e))
        goto fail;
    rc = rados_connect(c->cluster);
    if (rc < 0) {
        verr_set(e, 503, "ServiceUnavailable", "cannot connect to Ceph as %s: %s", r->name, strerror(-rc));
        goto fail;
    }
    rc = rados_ioctx_create(c->cluster, r->pool, &c->io);
    if (rc < 0) {
        c->io = NULL;
        verr_set(e, 503, "ServiceUnavailable", "Ceph pool %.100s: %s", r->pool, strerror(-rc));
        goto fail;
    }
    return c;
fail:
    conn_free(c);
    return NULL;
}

rconn_t *rados_conn_get(rados_impl_t *r)
{
    pthread_mutex_lock(&r->mu);
    rconn_t *c = r->cur;
    c->refs++;
    pthread_mutex_unlock(&r->mu);
    return c;
}

void rados_conn_put(rados_impl_t *r, rconn_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&r->mu);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last)
        conn_free(c);   /* replaced, and nobody uses it any more */
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int stopping(rados_impl_t *r)
{
    return __atomic_load_n(&r->stop, __ATOMIC_ACQUIRE);
}

/* One read an OSD must answer, waited for at most probe_timeout_ms: 0 (an absent object
 * is an answer too), or a negative errno (-ETIMEDOUT: no answer in time). */
static int probe(rados_impl_t *r, rconn_t *c)
{
    uint64_t size;
    time_t mtime;
    rados_completion_t cp = completion();
    int rc = rados_aio_stat(c->io, REGISTRY, cp, &size, &mtime);
    if (rc < 0) {
        rados_aio_release(cp);
        return rc;
    }
    int64_t deadline = now_ms() + r->probe_timeout_ms;
    useconds_t nap = 500;
    while (!rados_aio_is_complete(cp) && now_ms() < deadline && !stopping(r)) {
        usleep(nap);
        nap = nap < 20000 ? nap * 2 : nap;
    }
    if (rados_aio_is_complete(cp))
        rc = rados_aio_get_return_value(cp);
    else {
        rados_aio_cancel(c->io, cp);   /* size and mtime must not be written after we return */
        rados_aio_wait_for_complete(cp);
        rc = -ETIMEDOUT;
    }
    rados_aio_release(cp);
    return rc == -ENOENT ? 0 : rc;
}

static void set_health(rados_impl_t *r, int ok, const char *why)
{
    pthread_mutex_lock(&r->mu);
    int was = r->healthy;
    r->healthy = ok;
    if (!ok) {
        if (was)
            r->unhealthy_since = (int64_t)time(NULL);
        snprintf(r->detail, sizeof r->detail, "%s", why);
    }
    pthread_mutex_unlock(&r->mu);
    if (was && !ok)
        log_error("objectstore rados: the storage cluster does not answer: %s", why);
    else if (!was && ok)
        log_info("objectstore rados: the storage cluster answers again");
}

/* Replace the current connection by a new one if that one answers (the old one goes when
 * its last user lets go). */
static void replace(rados_impl_t *r, const char *why)
{
    verr_t e;
    int mount_s = r->probe_timeout_ms < 1000 ? 1 : r->probe_timeout_ms / 1000;
    rconn_t *n = conn_new(r, mount_s, &e);
    if (!n) {
        log_warn("objectstore rados: a new connection to the cluster failed too: %s", e.message);
        return;
    }
    if (probe(r, n) != 0) {
        conn_free(n);
        return;
    }
    pthread_mutex_lock(&r->mu);
    rconn_t *old = r->cur;
    n->refs = 1;
    n->serial = old->serial + 1;
    r->cur = n;
    r->replaced++;
    r->swapped_at = now_ms();
    pthread_mutex_unlock(&r->mu);
    rados_conn_put(r, old);   /* the reference it held as the current connection */
    log_warn("objectstore rados: replaced the connection to the cluster (%s): connection #%" PRIu64, why, n->serial);
    set_health(r, 1, NULL);
}

/* Probe the current connection: no answer is unhealthy, and a new connection is tried.
 * Operations timing out while the probe answers (another OSD than the probed object's
 * may be the one this connection lost) also get a new connection, at most every 30 s. */
static void check(rados_impl_t *r)
{
    uint64_t seen = rados_unavailable_seen();
    rconn_t *c = rados_conn_get(r);
    int rc = probe(r, c);
    rados_conn_put(r, c);
    if (stopping(r))
        return;
    if (rc == 0) {
        set_health(r, 1, NULL);
        if (seen != r->seen && now_ms() - r->swapped_at >= 30000)
            replace(r, "operations timed out");
        r->seen = seen;
        return;
    }
    r->seen = seen;
    char why[160];
    if (rc == -ETIMEDOUT)
        snprintf(why, sizeof why, "pool %.60s: no answer to a read within %d ms", r->pool, r->probe_timeout_ms);
    else
        snprintf(why, sizeof why, "pool %.60s: %s", r->pool, strerror(-rc));
    set_health(r, 0, why);
    replace(r, "it does not answer");
}

static void monitor_tick(void *arg)
{
    check(arg);
}

int rados_conn_open(rados_impl_t *r, verr_t *e)
{
    pthread_mutex_init(&r->mu, NULL);
    r->healthy = 1;
    if (!(r->cur = conn_new(r, r->timeout_s, e)))
        return -1;
    r->cur->refs = 1;
    r->cur->serial = 1;
    r->seen = rados_unavailable_seen();
    if (r->probe_interval_ms <= 0)
        return 0;   /* no probe: health is never known to be bad */
    r->monitor = ticker_start("rados-probe", r->probe_interval_ms, 0, monitor_tick, r, e);
    return r->monitor ? 0 : -1;
}

void rados_conn_close(rados_impl_t *r)
{
    __atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);   /* a probe under way ends early */
    ticker_stop(r->monitor);
    r->monitor = NULL;
    /* every operation has ended: the current connection's reference is the last */
    rados_conn_put(r, r->cur);
    r->cur = NULL;
    pthread_mutex_destroy(&r->mu);
}

void rados_health(os_backend_t *b, os_health_t *out)
{
    rados_impl_t *r = R(b);
    pthread_mutex_lock(&r->mu);
    out->ok = r->healthy;
    out->since = r->healthy ? 0 : r->unhealthy_since;
    snprintf(out->detail, sizeof out->detail, "%s", r->healthy ? "" : r->detail);
    out->reconnects = r->replaced;
    pthread_mutex_unlock(&r->mu);
}

int rados_conn_healthy(rados_impl_t *r)
{
    pthread_mutex_lock(&r->mu);
    int ok = r->healthy;
    pthread_mutex_unlock(&r->mu);
    return ok;
}
