/* pipeline.c - what a task does, step by step.
 *
 *   register: fetch the tenant's object → hash it, learn its format → image available
 *   import:   fetch the tenant's disk → check it is the format declared and references no
 *             other file → qemu-img convert to qcow2 → store it in the operator's bucket
 *             (image.bucket) → image available
 *   copy:     fetch the source image's bytes (checked against its SHA-256) → store them in
 *             the operator's bucket → image available
 *   create:   a PUT grant for the operator's bucket → compute.image_export until the
 *             instance's host has written the disk there → its size checked → available
 *
 * Every step can run again after a crash: scratch files are named by the task and rewritten
 * from the start, the stored object's key is the image id (a repeat overwrites it), and
 * the final writes are conditional updates in one transaction. A failure that is the
 * tenant's (not a disk of that format, no such object, access denied) ends the task and
 * says why; any other failure leaves the task active for a later attempt. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "image_task.h"
#include "jsonutil.h"
#include "log.h"
#include "transfer.h"
#include "utf8.h"

typedef struct stage {
    image_task_t *t;
    int lo, hi;
    const char *message;
    const char *location;         /* upload: where to ("bucket/key") */
    int shown;                    /* progress never goes back (a multipart upload reports per part) */
    verr_t err;                   /* why a tick stopped the step */
} stage_t;

/* Progress within [lo, hi], the lease renewed every couple of seconds. */
static int tick_at(stage_t *s, uint64_t done, uint64_t total)
{
    if (image_task_keepalive(s->t, &s->err) < 0)
        return 1;
    if (time(NULL) - s->t->renewed < 2)
        return 0;
    int pct = total ? s->lo + (int)((uint64_t)(s->hi - s->lo) * done / total) : s->lo;
    if (pct < s->shown)
        pct = s->shown;
    s->shown = pct;
    return image_task_progress(s->t, pct, s->message, &s->err) < 0;
}

static int xfer_tick(void *arg, uint64_t done, uint64_t total) { return tick_at(arg, done, total); }

/* A multipart upload exists from now on: recorded in the task before any part is sent,
 * so that if this process dies the reconcile pass aborts it (cleanup.c). Non-zero (the
 * task is no longer ours, or the record failed) makes the transfer abort it at once. */
static int note_upload(void *arg, const char *upload_id)
{
    stage_t *s = arg;
    const char *p[] = {s->t->id, s->t->lease_owner, s->location, upload_id};
    PG_AUTO PGresult *r = db_prepared(s->t->db, &s->err, "task_upload",
        "UPDATE image_tasks SET uploads = uploads || jsonb_build_array(jsonb_build_object('location', $3::text, "
        "'upload_id', $4::text)) WHERE id = $1 AND lease_owner = $2 AND status = 'active'", 4, p);
    if (r && strcmp(PQcmdTuples(r), "1"))
        verr_set(&s->err, 499, "Canceled", "task %s was canceled or taken over", s->t->id);
    return !r || strcmp(PQcmdTuples(r), "1");
}
static int exec_tick(void *arg) { return tick_at(arg, 0, 0); }

static void scratch(const image_task_t *t, const char *suffix, char path[600])
{
    snprintf(path, 600, "%s/%s.%s", t->work_dir, t->id, suffix);
}

/* Download location (as account; NULL = as the operator) into path. */
static int fetch(image_task_t *t, const char *account, const char *location, int lo, int hi, const char *path,
                 uint64_t *size, char sha[65], json_t **meta, verr_t *e)
{
    json_t *g = NULL;
    if (image_task_progress(t, lo, "downloading", e) < 0 || image_grant(t->svc, account, location, "GET", &g, e) < 0)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        json_decref(g);
        return verr_set(e, 500, "InternalError", "%s: %s", path, strerror(errno));
    }
    stage_t s = {.t = t, .lo = lo, .hi = hi, .message = "downloading"};
    transfer_opts_t o = {.timeout_s = config_int(t->svc->cfg, "image.transfer_timeout_s", 3600), .progress = xfer_tick, .arg = &s};
    int rc = transfer_get(json_str(g, "url", ""), fd, &o, size, sha, e);
    close(fd);
    if (rc < 0 && s.err.code[0])
        *e = s.err;
    if (rc == 0 && meta)
        *meta = json_incref(json_object_get(g, "metadata"));
    json_decref(g);
    return rc;
}

/* Upload path to the operator's bucket as <key>; *location = "bucket/key". */
static int store(image_task_t *t, const char *path, const char *key, int lo, int hi, char location[256],
                 uint64_t *size, char sha[65], char etag[80], verr_t *e)
{
    const char *bucket = image_bucket(t->svc, e);
    if (!bucket || image_task_progress(t, lo, "uploading", e) < 0)
        return -1;
    snprintf(location, 256, "%s/%s", bucket, key);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return verr_set(e, 500, "InternalError", "%s: %s", path, strerror(errno));
    off_t end = lseek(fd, 0, SEEK_END);
    json_t *g = NULL;
    int rc = -1;
    /* large images go up in parts: no 5 GiB limit, and a failed part is retried alone */
    uint64_t multipart = (uint64_t)config_int(t->svc->cfg, "image.multipart_bytes", 64 << 20);
    if (end < 0) {
        verr_set(e, 500, "InternalError", "%s: %s", path, strerror(errno));
    } else if (image_grant(t->svc, NULL, location, "PUT", &g, e) == 0) {
        stage_t s = {.t = t, .lo = lo, .hi = hi, .message = "uploading", .location = location};
        transfer_opts_t o = {.timeout_s = config_int(t->svc->cfg, "image.transfer_timeout_s", 3600), .progress = xfer_tick,
                             .arg = &s, .upload_started = note_upload};
        const char *url = json_str(g, "url", "");
        rc = (uint64_t)end > multipart
            ? transfer_put_multipart(url, fd, (uint64_t)end, (uint64_t)config_int(t->svc->cfg, "image.part_bytes", 64 << 20),
                                     &o, sha, etag, e)
            : transfer_put(url, fd, (uint64_t)end, &o, sha, etag, e);
        if (rc < 0 && s.err.code[0])
            *e = s.err;
        *size = (uint64_t)end;
    }
    close(fd);
    json_decref(g);
    return rc;
}

/* The tenant's disk must be what they said, refer to no other file, and be of a size we take. */
static int check_disk(image_task_t *t, const char *path, const char *format, json_t **info_out, verr_t *e)
{
    json_t *probe = NULL, *info = NULL;
    if (qemu_img_info(path, NULL, &probe, e) < 0)
        return -1;
    char found[32];
    snprintf(found, sizeof found, "%s", json_str(probe, "format", "raw"));
    if (format && strcmp(found, format) && strcmp(found, "raw")) {
        verr_set(e, 400, "InvalidDiskFormat", "the disk image is %s, not %s", found, format);
        json_decref(probe);
        return -1;
    }
    /* what the probe found is what `info -f <found>` would print: ask again only when the
     * disk must be read as the other format its owner declared */
    if (!format || !strcmp(format, found))
        info = probe;
    else
        json_decref(probe);
    if (!info && qemu_img_info(path, format, &info, e) < 0) {
        char why[sizeof e->message];
        snprintf(why, sizeof why, "%s", e->message);
        return verr_set(e, 400, "InvalidDiskFormat", "not a valid %s disk image: %.400s", format, why);
    }
    int rc = 0;
    if (json_object_get(info, "backing-filename") || json_object_get(info, "full-backing-filename")) {
        rc = verr_set(e, 400, "InvalidDiskFormat", "disk images with a backing file are not accepted");
    } else {
        /* vmdk descriptors list extents by file name: only the image itself may be one */
        json_t *ext = json_object_get(json_object_get(json_object_get(info, "format-specific"), "data"), "extents");
        size_t i;
        json_t *x;
        json_array_foreach(ext, i, x)
            if (strcmp(json_str(x, "filename", ""), path))
                rc = verr_set(e, 400, "InvalidDiskFormat", "vmdk images that reference other extent files are not accepted");
    }
    long long vsize = (long long)json_int(info, "virtual-size", 0);
    long long max = config_int(t->svc->cfg, "image.max_virtual_gib", 256) << 30;
    if (rc == 0 && (vsize <= 0 || vsize > max))
        rc = verr_set(e, 400, "InvalidDiskFormat", "the disk's virtual size %lld is not within 1 byte..%lld GiB", vsize, max >> 30);
    if (rc == 0 && info_out)
        *info_out = json_incref(info);
    json_decref(info);
    return rc;
}

/* What a registered machine image's bytes are: a container root filesystem (tar, maybe
 * gzip-compressed) or a disk image in a format qemu-img knows. */
static int detect_format(image_task_t *t, const char *path, char out[32], verr_t *e)
{
    unsigned char head[512] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return verr_set(e, 500, "InternalError", "%s: %s", path, strerror(errno));
    ssize_t n = pread(fd, head, sizeof head, 0);
    close(fd);
    if (n >= 2 && head[0] == 0x1f && head[1] == 0x8b) {
        snprintf(out, 32, "tar.gz");
        return 0;
    }
    if (n >= 262 && !memcmp(head + 257, "ustar", 5)) {
        snprintf(out, 32, "tar");
        return 0;
    }
    json_t *info = NULL;
    if (check_disk(t, path, NULL, &info, e) < 0)
        return -1;
    snprintf(out, 32, "%s", json_str(info, "format", "raw"));
    json_decref(info);
    return 0;
}

/* EC2's DiskContainer Format names → qemu-img's. */
const char *image_qemu_format(const char *f)
{
    static const char *map[][2] = {{"vmdk", "vmdk"}, {"vhd", "vpc"}, {"vhdx", "vhdx"}, {"vdi", "vdi"},
                                   {"qcow2", "qcow2"}, {"raw", "raw"}, {"img", "raw"}};
    for (size_t i = 0; f && i < sizeof map / sizeof *map; i++)
        if (!strcasecmp(f, map[i][0]))
            return map[i][1];
    return NULL;
}

/* ---- ends ------------------------------------------------------------------------- */

static int exec_sql(db_t *db, verr_t *e, const char *name, const char *sql, int n, const char *const *p)
{
    PG_AUTO PGresult *r = db_prepared(db, e, name, sql, n, p);
    return r ? 0 : -1;
}

/* The tenant's fault: end the task (and the image) with the reason. */
static void fail(image_task_t *t, const verr_t *why)
{
    char *text = utf8_sanitize(why->message);   /* it may quote a tool's output */
    char msg[600], reason[600];
    snprintf(msg, sizeof msg, "ClientError: %s", text);
    snprintf(reason, sizeof reason, "Client.%s: %s", why->code, text);
    free(text);
    const char *tp[] = {t->id, msg, t->lease_owner}, *ip[] = {t->image_id, reason};
    verr_t e;
    if (db_begin(t->db, &e) < 0)
        return;
    if (exec_sql(t->db, &e, "task_fail",
                 "UPDATE image_tasks SET status = 'deleted', status_message = $2, updated_at = now(), lease_until = NULL "
                 "WHERE id = $1 AND status = 'active' AND lease_owner = $3", 3, tp) < 0 ||
        exec_sql(t->db, &e, "image_fail",
                 "UPDATE images SET state = 'failed', state_reason = $2 WHERE id = $1 AND state = 'pending'", 2, ip) < 0 ||
        db_commit(t->db, &e) < 0) {
        db_rollback(t->db);
        return;
    }
    log_info("task %s failed: %s", t->id, msg);
}

static int complete(image_task_t *t, const char *image_sql_name, const char *image_sql, int n, const char *const *p,
                    json_t *result, verr_t *e)
{
    char *res = json_dumps(result, JSON_COMPACT);
    json_decref(result);
    const char *tp[] = {t->id, t->lease_owner, res};
    if (db_begin(t->db, e) < 0) {
        free(res);
        return -1;
    }
    PGresult *r = db_prepared(t->db, e, "task_done",
        "UPDATE image_tasks SET status = 'completed', status_message = '', progress = 100, result = $3::jsonb, "
        "updated_at = now(), lease_until = NULL WHERE id = $1 AND lease_owner = $2 AND status = 'active'", 3, tp);
    free(res);
    int ours = r && !strcmp(PQcmdTuples(r), "1");
    if (r)
        PQclear(r);
    if (!ours) {
        db_rollback(t->db);
        return r ? verr_set(e, 499, "Canceled", "task %s was canceled or taken over", t->id) : -1;
    }
    if (exec_sql(t->db, e, image_sql_name, image_sql, n, p) < 0 || db_commit(t->db, e) < 0) {
        db_rollback(t->db);
        return -1;
    }
    image_changed(t->svc->bus, t->image_id);
    return 0;
}

/* ---- the three kinds -------------------------------------------------------------- */

static int run_register(image_task_t *t, const char *src, verr_t *e)
{
    uint64_t size;
    char sha[65], fmt[32];
    json_t *meta = NULL;
    if (fetch(t, t->account, json_str(t->source, "location", ""), 5, 80, src, &size, sha, &meta, e) < 0)
        return -1;
    json_decref(meta);
    const char *type = json_str(t->params, "image_type", "machine");
    if (strcmp(type, "machine"))
        snprintf(fmt, sizeof fmt, "%s", type);
    else if (image_task_progress(t, 85, "validating", e) < 0 || detect_format(t, src, fmt, e) < 0)
        return -1;
    char sz[32];
    snprintf(sz, sizeof sz, "%llu", (unsigned long long)size);
    const char *p[] = {t->image_id, sha, sz, fmt};
    return complete(t, "image_registered",
                    "UPDATE images SET state = 'available', sha256 = $2, size = $3::bigint, disk_format = $4 "
                    "WHERE id = $1 AND state = 'pending'", 4, p,
                    json_pack("{s:s, s:I}", "format", fmt, "size", (json_int_t)size), e);
}

static int run_import(image_task_t *t, const char *src, const char *out, verr_t *e)
{
    uint64_t src_size, size;
    char sha[65], etag[80], location[256];
    char srcloc[1200];
    snprintf(srcloc, sizeof srcloc, "%s/%s", json_str(t->source, "bucket", ""), json_str(t->source, "key", ""));
    if (fetch(t, t->account, srcloc, 2, 40, src, &src_size, sha, NULL, e) < 0)
        return -1;
    const char *declared = json_str(t->source, "format", "");
    const char *fmt = image_qemu_format(declared);
    if (!fmt)
        return verr_set(e, 400, "InvalidDiskFormat", "unsupported format %s", declared);
    stage_t s = {.t = t, .lo = 50, .hi = 80, .message = "converting"};
    if (image_task_progress(t, 45, "validating", e) < 0 || check_disk(t, src, fmt, NULL, e) < 0 ||
        image_task_progress(t, 50, "converting", e) < 0)
        return -1;
    if (qemu_img_convert(src, fmt, out, "qcow2", exec_tick, &s, e) < 0) {
        if (s.err.code[0])
            *e = s.err;
        else if (e->http_status < 500)
            verr_recode(e, 400, "InvalidDiskFormat");
        return -1;
    }
    unlink(src);   /* the converted copy is all that is needed now */
    char key[64];
    snprintf(key, sizeof key, "%s.qcow2", t->image_id);
    if (store(t, out, key, 85, 98, location, &size, sha, etag, e) < 0)
        return -1;
    char sz[32];
    snprintf(sz, sizeof sz, "%llu", (unsigned long long)size);
    const char *p[] = {t->image_id, t->account, t->id, json_str(t->params, "description", ""), location, sz, etag, sha,
                       json_str(t->params, "architecture", "x86_64"), json_str(t->params, "platform", "Linux")};
    return complete(t, "image_imported",
                    "INSERT INTO images (id, account_id, name, description, location, size, etag, sha256, disk_format, "
                    "architecture, platform, state) VALUES ($1, $2, $3, $4, $5, $6::bigint, $7, $8, 'qcow2', $9, $10, 'available') "
                    "ON CONFLICT (id) DO NOTHING", 10, p,
                    json_pack("{s:s, s:I}", "format", declared, "size", (json_int_t)src_size), e);
}

static int run_copy(image_task_t *t, const char *src, verr_t *e)
{
    uint64_t size;
    char sha[65], etag[80], location[256];
    if (fetch(t, NULL, json_str(t->source, "location", ""), 5, 50, src, &size, sha, NULL, e) < 0)
        return -1;
    const char *want = json_str(t->source, "sha256", "");
    if (*want && strcmp(want, sha))
        return verr_set(e, 400, "InvalidImage", "the source image's bytes changed since it was registered (SHA-256 %s, expected %s)", sha, want);
    if (store(t, src, t->image_id, 55, 98, location, &size, sha, etag, e) < 0)
        return -1;
    char sz[32];
    snprintf(sz, sizeof sz, "%llu", (unsigned long long)size);
    const char *p[] = {t->image_id, location, sz, etag, sha};
    return complete(t, "image_copied",
                    "UPDATE images SET state = 'available', location = $2, size = $3::bigint, etag = $4, sha256 = $5 "
                    "WHERE id = $1 AND state = 'pending'", 5, p, json_pack("{s:I}", "size", (json_int_t)size), e);
}

/* CreateImage: the host's agent writes the bytes; this task only asks compute how the
 * export stands (each call renews its grant) until it is done, failed, or too old. */
static int run_create(image_task_t *t, verr_t *e)
{
    const char *location = json_str(t->source, "location", "");
    if (!image_bucket(t->svc, e) || image_task_progress(t, 5, "exporting", e) < 0)
        return -1;
    time_t start = time(NULL), granted = 0;
    long limit = config_int(t->svc->cfg, "image.create_timeout_s", 3600);
    int poll_ms = (int)config_int(t->svc->cfg, "image.create_poll_ms", 1000);
    JSON_AUTO json_t *g = NULL, *st = NULL;
    for (;;) {
        if (!g || time(NULL) - granted > 1800) {   /* grants last image.grant_ttl_s (3600) */
            json_decref(g);
            g = NULL;
            if (image_grant(t->svc, NULL, location, "PUT", &g, e) < 0)
                return -1;
            granted = time(NULL);
        }
        json_decref(st);
        st = NULL;
        json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:b}", "image_id", t->image_id, "instance_id",
                                 json_str(t->source, "instance_id", ""), "account_id", t->account, "url",
                                 json_str(g, "url", ""), "no_reboot", json_flag(t->source, "no_reboot"));
        if (bus_call(t->svc->bus, "compute", "compute.image_export", body, NULL,
                     (int)config_int(t->svc->cfg, "image.call_timeout_ms", 10000), &st, e) < 0) {
            char why[sizeof e->message];   /* compute or the bus, never the tenant: try again */
            snprintf(why, sizeof why, "%s", e->message);
            return verr_set(e, 503, "Unavailable", "compute.image_export: %s %s", e->code, why);
        }
        const char *state = json_str(st, "state", "");
        if (!strcmp(state, "done"))
            break;
        if (!strcmp(state, "failed")) {   /* "Code: message" from compute or the agent */
            const char *why = json_str(st, "error", "ExportFailed: the export failed"), *colon = strchr(why, ':');
            char code[64];
            snprintf(code, sizeof code, "%.*s", colon ? (int)(colon - why) : 12, colon ? why : "ExportFailed");
            return verr_set(e, 400, code, "%s", colon ? colon + 2 : why);
        }
        if (time(NULL) - start > limit)
            return verr_set(e, 400, "ExportTimeout", "the instance's host did not export its disk within %ld s", limit);
        for (int waited = 0; waited < poll_ms; waited += 100) {
            if (image_task_keepalive(t, e) < 0)
                return -1;
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    /* what the object store holds must be what the agent says it wrote */
    JSON_AUTO json_t *obj = NULL;
    if (image_task_progress(t, 95, "validating", e) < 0 || image_grant(t->svc, NULL, location, "GET", &obj, e) < 0)
        return -1;
    long long size = (long long)json_int(obj, "size", -1);
    if (size != (long long)json_int(st, "size", -2))
        return verr_set(e, 500, "InternalError", "the exported object is %lld bytes, the host wrote %lld", size,
                        (long long)json_int(st, "size", 0));
    char sz[32];
    snprintf(sz, sizeof sz, "%lld", size);
    const char *p[] = {t->image_id, json_str(st, "sha256", ""), sz, json_str(obj, "etag", "")};
    return complete(t, "image_created",
                    "UPDATE images SET state = 'available', sha256 = $2, size = $3::bigint, etag = $4 "
                    "WHERE id = $1 AND state = 'pending'", 4, p, json_pack("{s:I}", "size", (json_int_t)size), e);
}

/* A failure is the tenant's when the object store or qemu-img refused their input. */
static int tenants_fault(const verr_t *e)
{
    if (!strcmp(e->code, "TransferFailed"))
        return e->http_status >= 400 && e->http_status < 500;
    return e->http_status >= 400 && e->http_status < 500 && strcmp(e->code, "Canceled") && strcmp(e->code, "Stopping");
}

int pipeline_run(image_task_t *t, verr_t *e)
{
    char src[600], out[600];
    scratch(t, "src", src);
    scratch(t, "out", out);
    int rc;
    if (!strcmp(t->kind, "register"))
        rc = run_register(t, src, e);
    else if (!strcmp(t->kind, "import"))
        rc = run_import(t, src, out, e);
    else if (!strcmp(t->kind, "copy"))
        rc = run_copy(t, src, e);
    else if (!strcmp(t->kind, "create"))
        rc = run_create(t, e);
    else
        rc = verr_set(e, 500, "InternalError", "unknown task kind %s", t->kind);
    unlink(src);
    unlink(out);
    if (rc == 0) {
        log_info("task %s: %s done", t->id, t->image_id);
        return 0;
    }
    if (tenants_fault(e))
        fail(t, e);   /* ended for good: the pool's retry finds it no longer active */
    return -1;
}
