/* image_export.c - CreateImage on the host (docs/compute.md, "CreateImage"): one thread of
 * the agent pulls its host's pending exports from compute (compute.host_exports), has the
 * instance's driver write the disk or root file system to a scratch file (vm_driver_export,
 * the instance paused meanwhile unless NoReboot), PUTs it to the grant URL the image
 * service made and reports the SHA-256 and size (compute.export_done).
 *
 * Level-triggered like the instance loop: woken by agent.instances_changed (compute rings
 * it when an export is asked for) and every agent.sync_interval_s; an export that a killed
 * agent left half done is still pending in compute and is done again from the start (the
 * PUT overwrites). Exports run one at a time, never on a bus worker. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image_export.h"
#include "jsonutil.h"
#include "log.h"
#include "ticker.h"
#include "transfer.h"
#include "vm_state.h"

struct image_export {
    service_t *svc;
    instance_sync_t *sync;
    char dir[PATH_MAX];
    ticker_t *ticker;   /* a pass every agent.sync_interval_s, at once when woken */
    int stopping;       /* atomic: cuts an export under way short */
};

static int cancelled(void *arg, uint64_t done, uint64_t total)
{
    (void)done;
    (void)total;
    image_export_t *x = arg;
    int s = __atomic_load_n(&x->stopping, __ATOMIC_ACQUIRE);
    return s;
}

/* Export and upload one: 0 with sha and size, or -1 with e. */
static int export_one(image_export_t *x, const json_t *job, char sha[65], uint64_t *size, verr_t *e)
{
    const char *image = json_str(job, "image_id", ""), *inst = json_str(job, "instance_id", "");
    const char *driver = json_str(job, "driver", "");
    vm_driver_t *d = instance_sync_driver(x->sync, driver);
    if (!d)
        return verr_set(e, 400, "UnsupportedOperation", "this host offers no %s driver", driver);
    char path[PATH_MAX + 64];
    /* named by this process too: a tar that a killed agent left running goes on writing
     * its own (unlinked) file, never the one this attempt uploads */
    vm_pathf(path, sizeof path, "%s/%s.%d.%s", x->dir, image, (int)getpid(), json_str(job, "format", "img"));
    int64_t t0 = vm_now_ms();
    if (vm_driver_export(d, inst, path, !json_flag(job, "no_reboot"), e) < 0) {
        unlink(path);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        unlink(path);
        return verr_set(e, 500, "InternalError", "%s: %s", path, strerror(errno));
    }
    off_t end = lseek(fd, 0, SEEK_END);
    *size = end > 0 ? (uint64_t)end : 0;
    char etag[80];
    transfer_opts_t o = {.timeout_s = config_int(x->svc->cfg, "agent.export_timeout_s", 3600), .progress = cancelled,
                         .arg = x, .what = "export upload"};
    uint64_t part = (uint64_t)config_int(x->svc->cfg, "agent.export_part_bytes", 64 << 20);
    int rc = *size > part ? transfer_put_multipart(json_str(job, "url", ""), fd, *size, part, &o, sha, etag, e)
                          : transfer_put(json_str(job, "url", ""), fd, *size, &o, sha, etag, e);
    close(fd);
    unlink(path);
    if (rc == 0)
        log_info("exported %s as %s: %llu bytes in %lld ms", inst, image, (unsigned long long)*size,
                 (long long)(vm_now_ms() - t0));
    return rc;
}

static void pass(void *arg)
{
    image_export_t *x = arg;
    if (__atomic_load_n(&x->stopping, __ATOMIC_ACQUIRE))
        return;   /* cancelled: the agent is going */
    int timeout = (int)config_int(x->svc->cfg, "agent.compute_timeout_ms", 10000);
    json_t *r = NULL;
    verr_t e;
    if (bus_call(x->svc->bus, "compute", "compute.host_exports", json_object(), NULL, timeout, &r, &e) < 0) {
        log_warn("asking compute for exports: %s %s", e.code, e.message);
        return;
    }
    size_t i;
    json_t *job;
    json_array_foreach(json_object_get(r, "exports"), i, job) {
        if (cancelled(x, 0, 0))
            break;
        char sha[65] = "";
        uint64_t size = 0;
        verr_t why = {0};
        json_t *body;
        if (export_one(x, job, sha, &size, &why) == 0) {
            body = json_pack("{s:s, s:s, s:I}", "image_id", json_str(job, "image_id", ""), "sha256", sha, "size",
                             (json_int_t)size);
        } else if (why.http_status >= 500 || cancelled(x, 0, 0)) {
            /* not the instance's fault (the object store, a stopping agent): the next pass tries again */
            log_warn("export %s: %s %s (tried again)", json_str(job, "image_id", ""), why.code, why.message);
            continue;
        } else {
            body = json_pack("{s:s, s:s++}", "image_id", json_str(job, "image_id", ""), "error", why.code, ": ",
                             why.message);
        }
        json_t *ans = NULL;
        if (bus_call(x->svc->bus, "compute", "compute.export_done", body, NULL, timeout, &ans, &e) < 0)
            log_warn("reporting export %s: %s %s", json_str(job, "image_id", ""), e.code, e.message);
        json_decref(ans);
    }
    json_decref(r);
}

image_export_t *image_export_start(service_t *svc, instance_sync_t *sync, const char *host_id, verr_t *e)
{
    image_export_t *x = xcalloc(1, sizeof *x);
    x->svc = svc;
    x->sync = sync;
    vm_pathf(x->dir, sizeof x->dir, "%s/%s/exports", config_str(svc->cfg, "agent.state_dir", "/var/lib/virga/agent"),
             host_id);
    if (vm_mkdirs(x->dir, 0700, e) < 0) {
        free(x);
        return NULL;
    }
    verr_t ig;   /* what a killed agent's exports left: no export of this process runs yet */
    if (vm_rmtree(x->dir, &ig) < 0 || vm_mkdirs(x->dir, 0700, e) < 0) {
        free(x);
        return NULL;
    }
    long every = config_int(svc->cfg, "agent.sync_interval_s", 10);
    /* the first pass at once: what a killed agent left pending */
    if (!(x->ticker = ticker_start("exports", (every > 0 ? every : 10) * 1000, 1, pass, x, e))) {
        free(x);
        return NULL;
    }
    return x;
}

void image_export_wake(image_export_t *x)
{
    if (x)
        ticker_wake(x->ticker);
}

void image_export_cancel(image_export_t *x)
{
    if (x)
        __atomic_store_n(&x->stopping, 1, __ATOMIC_RELEASE);
}

void image_export_stop(image_export_t *x)
{
    if (!x)
        return;
    image_export_cancel(x);
    ticker_stop(x->ticker);
    free(x);
}
