/* backend_dir.c - the object store on a local directory, for the smallest setups.
 *
 * Layout under objectstore.dir.path:
 *   data/<bucket>/<version>[.tmp]     object and part bytes (".tmp" while being written)
 *   index/<bucket>/<name>.json        the latest version of each key; name = hex(key), or
 *                                     for keys too long for a file name hex(first 80
 *                                     bytes) + "~" + BLAKE2b(key), the key itself then
 *                                     read from "k"
 *   versions/<bucket>/<name>/<sk>.json   the key's noncurrent versions, by sort key
 *   garbage/<bucket>/<time>.<version>.json   replaced entries, deleted by gc after grace
 *   uploads/<bucket>/<upload id>/upload.json + NNNNN.json (part entries)
 *   tmp/                              records being written (renamed into place)
 * Atomicity comes from rename(2): data is fsync'd and renamed to its final name, then the
 * index entry, written and fsync'd under tmp/, is renamed over the old one. The
 * read-modify-write steps (learn the old entry to garbage-list it, update an upload) run
 * under one mutex; reads take no lock. A bucket exists while index/<bucket> does, and
 * rmdir() of index/ and uploads/ is the atomic "is it empty" test of bucket deletion.
 * Index entries and their versions (load, change, listing) are in backend_dir_index.c. */
#include "backend_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jsonutil.h"
#include "log.h"

#define DIR_CHUNK (1024 * 1024)         /* write(2) unit for streamed data */
#define SHORT_KEY 120                   /* longest key stored as plain hex (240 + ".json") */
#define LONG_PREFIX 80                  /* key bytes kept readable in a long key's name */
#define RECORD_MAX (64u * 1024 * 1024)  /* largest record read back (10000-part entries fit) */
#define GC_BUDGET 10000                 /* files removed per gc call, to bound one call */

typedef struct dir_put {
    int fd;
    char *tmp, *final;      /* data file paths */
    int renamed;            /* final exists (commit got that far) */
} dir_put_t;

int dir_io_error(verr_t *e, const char *what, const char *path, int err)
{
    log_error("objectstore dir: %s %s: %s", what, path, strerror(err));
    return verr_set(e, 500, "InternalError", "We encountered an internal error. Please try again.");
}

/* ---- file helpers ---- */

static int write_all(int fd, const void *data, size_t len)
{
    const char *s = data;
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Whole file into *out (NUL-terminated). -errno on failure. */
int dir_read_file(const char *path, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int err = fstat(fd, &st) < 0 ? errno : (size_t)st.st_size > RECORD_MAX ? EFBIG : 0;
    if (err) {
        close(fd);
        return -err;
    }
    char *buf = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

/* A record as a new file under tmp/ (fsync'd when durable), ready to be renamed. */
int dir_tmp_record(dir_impl_t *d, const json_t *rec, int durable, char **tmp_path)
{
    char id[OS_VERSION_LEN + 1];
    os_new_version(id);
    char *path = xasprintf("%s/tmp/%s.json", d->root, id);
    size_t len;
    char *text = os_json_text(rec, &len);
    int rc = 0, fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        rc = -errno;
    else {
        rc = write_all(fd, text, len);
        if (!rc && durable && fsync(fd) < 0)
            rc = -errno;
        if (close(fd) < 0 && !rc)
            rc = -errno;
        if (rc)
            unlink(path);
    }
    free(text);
    if (rc)
        free(path);
    else
        *tmp_path = path;
    return rc;
}

/* Write a record file atomically (tmp + rename). */
int dir_put_record(dir_impl_t *d, const char *path, const json_t *rec, int durable)
{
    char *tmp;
    int rc = dir_tmp_record(d, rec, durable, &tmp);
    if (rc)
        return rc;
    if (rename(tmp, path) < 0) {
        rc = -errno;
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* A record file parsed; -ENOENT when absent, -EIO (and e set) when unreadable. */
int dir_get_record(const char *path, json_t **out, verr_t *e)
{
    char *text = NULL;
    size_t len = 0;
    int rc = dir_read_file(path, &text, &len);
    if (rc) {
        if (rc != -ENOENT)
            dir_io_error(e, "read", path, -rc);
        return rc;
    }
    *out = os_json_parse(text, len, path, e);
    free(text);
    return *out ? 0 : -EIO;
}

int dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int dir_bucket_exists(dir_impl_t *d, const char *bucket)
{
    char *p = xasprintf("%s/index/%s", d->root, bucket);
    int r = dir_exists(p);
    free(p);
    return r;
}

/* fn(arg, "dirp/name", name) for each entry of dirp in readdir order, skipping names that
 * start with '.' ("." and ".."; the backend gives no file such a name), while *budget > 0
 * when budget is given (fn may lower it). -errno when dirp cannot be opened. */
typedef void (*entry_fn)(void *arg, const char *path, const char *name);

static int each_entry(const char *dirp, const int *budget, entry_fn fn, void *arg)
{
    DIR *dh = opendir(dirp);
    if (!dh)
        return -errno;
    struct dirent *de;
    while ((!budget || *budget > 0) && (de = readdir(dh)))
        if (de->d_name[0] != '.') {
            char *path = xasprintf("%s/%s", dirp, de->d_name);
            fn(arg, path, de->d_name);
            free(path);
        }
    closedir(dh);
    return 0;
}

static void unlink_entry(void *arg, const char *path, const char *name)
{
    (void)arg, (void)name;
    unlink(path);
}

/* Remove a directory and the plain files in it (upload dirs hold nothing else). */
void dir_remove_tree(const char *path)
{
    each_entry(path, NULL, unlink_entry, NULL);
    rmdir(path);
}

/* ---- key names ---- */

void dir_key_name(const char *key, char out[NAME_BUF])
{
    size_t n = strlen(key);
    if (n <= SHORT_KEY) {
        os_hex_encode(key, n, out);
        strcat(out, ".json");
        return;
    }
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)key, n, NULL, 0);
    os_hex_encode(key, LONG_PREFIX, out);
    out[2 * LONG_PREFIX] = '~';
    os_hex_encode(h, sizeof h, out + 2 * LONG_PREFIX + 1);
    strcat(out, ".json");
}

char *dir_index_path(dir_impl_t *d, const char *bucket, const char *key)
{
    char name[NAME_BUF];
    dir_key_name(key, name);
    return xasprintf("%s/index/%s/%s", d->root, bucket, name);
}

static char *data_path(dir_impl_t *d, const char *bucket, const char *version, const char *suffix)
{
    return xasprintf("%s/data/%s/%s%s", d->root, bucket, version, suffix);
}

static char *upload_path(dir_impl_t *d, const char *bucket, const char *id, const char *file)
{
    return xasprintf("%s/uploads/%s/%s%s%s", d->root, bucket, id, file ? "/" : "", file ? file : "");
}

/* ---- garbage ---- */

/* Queue the data of a replaced entry for gc (rc of the caller is kept: a lost garbage
 * record only leaks space). */
void dir_add_garbage(dir_impl_t *d, const char *bucket, const json_t *rec)
{
    char id[OS_VERSION_LEN + 1], name[64];
    os_new_version(id);   /* a fresh id: one data version may be listed by several records */
    os_stamp_name(name, sizeof name, (int64_t)time(NULL), id);
    char *path = xasprintf("%s/garbage/%s/%s.json", d->root, bucket, name);
    int rc = dir_put_record(d, path, rec, 0);
    if (rc)
        log_error("objectstore dir: garbage record %s: %s", path, strerror(-rc));
    free(path);
}

static int unlink_seg(void *arg, const os_seg_t *s)
{
    void **a = arg;
    char *p = data_path(a[0], a[1], s->v, "");
    if (unlink(p) < 0 && errno != ENOENT)
        log_warn("objectstore dir: unlink %s: %s", p, strerror(errno));
    free(p);
    return 0;
}

/* ---- buckets ---- */

int dir_mkdir_ok(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

static int dir_bucket_create(os_backend_t *b, const char *bucket, verr_t *e)
{
    static const char *const sub[] = {"data", "garbage", "uploads", "index"};  /* index last: it means "exists" */
    for (size_t i = 0; i < ARRAY_LEN(sub); i++) {
        char *p = xasprintf("%s/%s/%s", D(b)->root, sub[i], bucket);
        int rc = dir_mkdir_ok(p);
        if (rc) {
            dir_io_error(e, "mkdir", p, -rc);
            free(p);
            return -1;
        }
        free(p);
    }
    return 0;
}

static int dir_bucket_delete(os_backend_t *b, const char *bucket, verr_t *e)
{
    dir_impl_t *d = D(b);
    char *up = xasprintf("%s/uploads/%s", d->root, bucket), *ix = xasprintf("%s/index/%s", d->root, bucket);
    int rc = 0;
    pthread_mutex_lock(&d->lock);
    if (!dir_exists(ix))
        rc = os_err_nosuchbucket(e, bucket);
    else if (rmdir(up) < 0 && errno != ENOENT)
        rc = errno == ENOTEMPTY || errno == EEXIST ? os_err_notempty(e) : dir_io_error(e, "rmdir", up, errno);
    else if (rmdir(ix) < 0) {
        rc = errno == ENOTEMPTY || errno == EEXIST ? os_err_notempty(e) : dir_io_error(e, "rmdir", ix, errno);
        dir_mkdir_ok(up);
    } else
        dir_versions_drop(d, bucket);   /* no head, so nothing left there is a version */
    /* data/ and garbage/ are drained and removed by gc after the grace period. */
    pthread_mutex_unlock(&d->lock);
    free(up);
    free(ix);
    return rc;
}

/* ---- writes ---- */

static int dir_put_begin(os_put_t *p, verr_t *e)
{
    dir_impl_t *d = D(p->b);
    if (!dir_bucket_exists(d, p->bucket))
        return os_err_nosuchbucket(e, p->bucket);
    if (!p->key) {
        char *u = upload_path(d, p->bucket, p->upload_id, "upload.json");
        int rc = dir_get_record(u, &p->upload, e);
        free(u);
        if (rc)
            return rc == -ENOENT ? os_err_nosuchupload(e) : -1;
    }
    dir_put_t *w = xcalloc(1, sizeof *w);
    w->tmp = data_path(d, p->bucket, p->version, ".tmp");
    w->final = data_path(d, p->bucket, p->version, "");
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    p->impl = w;
    p->chunk = DIR_CHUNK;
    if (w->fd < 0)
        return errno == ENOENT ? os_err_nosuchbucket(e, p->bucket) : dir_io_error(e, "create", w->tmp, errno);
    return 0;
}

static int dir_put_flush(os_put_t *p, verr_t *e)
{
    dir_put_t *w = p->impl;
    int rc = write_all(w->fd, p->buf, p->fill);
    p->fill = 0;
    return rc ? dir_io_error(e, "write", w->tmp, -rc) : 0;
}

/* Tail written, bytes durable, file under its final name. */
static int finish_data(os_put_t *p, verr_t *e)
{
    dir_put_t *w = p->impl;
    if (dir_put_flush(p, e))
        return -1;
    if (fsync(w->fd) < 0)
        return dir_io_error(e, "fsync", w->tmp, errno);
    int rc = close(w->fd);
    w->fd = -1;
    if (rc < 0)
        return dir_io_error(e, "close", w->tmp, errno);
    if (rename(w->tmp, w->final) < 0) {
        if (errno == ENOENT)   /* gc reaped it as a dead write */
            return verr_set(e, 400, "RequestTimeout",
                            "Your socket connection to the server was not read from or written to within the "
                            "timeout period.");
        return dir_io_error(e, "rename", w->final, errno);
    }
    w->renamed = 1;
    return 0;
}

static int dir_put_commit(os_put_t *p, json_t *rec, os_meta_t *out, verr_t *e)
{
    if (finish_data(p, e))
        return -1;
    os_vop_t op = {.kind = OS_VOP_PUT, .vers = p->vers, .entry = rec};
    os_kstate_t st = {0};
    return os_vchange(p->b, p->bucket, p->key, &op, p, &st, 0, out, e);
}

static int dir_part_commit(os_put_t *p, json_t *rec, verr_t *e)
{
    dir_impl_t *d = D(p->b);
    if (finish_data(p, e))
        return -1;
    char name[32];
    snprintf(name, sizeof name, "%05d.json", p->part);
    char *head = upload_path(d, p->bucket, p->upload_id, "upload.json");
    char *path = upload_path(d, p->bucket, p->upload_id, name);
    json_t *old = NULL;
    int rc;
    pthread_mutex_lock(&d->lock);
    if (!dir_exists(head))
        rc = os_err_nosuchupload(e);   /* aborted or completed meanwhile */
    else if ((rc = dir_get_record(path, &old, e)) && rc != -ENOENT)
        rc = -1;
    else if ((rc = dir_put_record(d, path, rec, 1)))
        rc = dir_io_error(e, "write", path, -rc);
    else if (old)
        dir_add_garbage(d, p->bucket, old);
    pthread_mutex_unlock(&d->lock);
    json_decref(old);
    free(head);
    free(path);
    return rc ? -1 : 0;
}

static void dir_put_free(os_put_t *p, int committed)
{
    dir_put_t *w = p->impl;
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (!committed) {
        unlink(w->renamed ? w->final : w->tmp);
    }
    free(w->tmp);
    free(w->final);
    free(w);
    p->impl = NULL;
}

/* ---- reads ---- */

static int dir_read_seg(os_backend_t *b, const char *bucket, const os_seg_t *s, uint64_t off, uint64_t len,
                        os_sink_fn sink, void *arg, verr_t *e)
{
    char *path = data_path(D(b), bucket, s->v, "");
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    if (fd < 0) {
        rc = dir_io_error(e, "open", path, errno);
        free(path);
        return rc;
    }
    size_t bufsz = len < DIR_CHUNK ? (size_t)len : DIR_CHUNK;
    char *buf = xmalloc(bufsz ? bufsz : 1);
    while (len > 0 && !rc) {
        size_t want = len < bufsz ? (size_t)len : bufsz;
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = dir_io_error(e, "read", path, n < 0 ? errno : EIO);   /* EOF: data shorter than its entry */
        else
            rc = os_sink_call(sink, arg, buf, (size_t)n, e);
        off += (uint64_t)(n > 0 ? n : 0);
        len -= (uint64_t)(n > 0 ? n : 0);
    }
    free(buf);
    close(fd);
    free(path);
    return rc;
}

/* ---- multipart ---- */

static int dir_mpu_create(os_backend_t *b, const char *bucket, const char *id, json_t *upload, verr_t *e)
{
    dir_impl_t *d = D(b);
    char *dirp = upload_path(d, bucket, id, NULL), *head = upload_path(d, bucket, id, "upload.json");
    int rc = 0;
    pthread_mutex_lock(&d->lock);   /* against bucket deletion's rmdir of uploads/<bucket> */
    if (!dir_bucket_exists(d, bucket))
        rc = os_err_nosuchbucket(e, bucket);
    else if (mkdir(dirp, 0755) < 0)
        rc = errno == ENOENT ? os_err_nosuchbucket(e, bucket) : dir_io_error(e, "mkdir", dirp, errno);
    else if ((rc = dir_put_record(d, head, upload, 1))) {
        rc = dir_io_error(e, "write", head, -rc);
        rmdir(dirp);
    }
    pthread_mutex_unlock(&d->lock);
    free(dirp);
    free(head);
    return rc;
}

/* Upload record and its parts from a directory (live or being completed). */
static int load_upload_dir(const char *dirp, json_t **upload, json_t **parts, verr_t *e)
{
    char *head = xasprintf("%s/upload.json", dirp);
    int rc = dir_get_record(head, upload, e);
    free(head);
    if (rc)
        return rc == -ENOENT ? os_err_nosuchupload(e) : -1;
    *parts = json_object();
    DIR *dh = opendir(dirp);
    struct dirent *de;
    while (dh && (de = readdir(dh))) {
        int num = atoi(de->d_name);
        if (num < 1 || num > OS_MAX_PART || strlen(de->d_name) != 10)
            continue;
        char *path = xasprintf("%s/%s", dirp, de->d_name), key[16];
        json_t *p;
        if (dir_get_record(path, &p, NULL) == 0) {
            snprintf(key, sizeof key, "%d", num);
            json_object_set_new(*parts, key, p);
        }
        free(path);
    }
    if (dh)
        closedir(dh);
    return 0;
}

static int dir_mpu_load(os_backend_t *b, const char *bucket, const char *id, json_t **upload, json_t **parts,
                        verr_t *e)
{
    char *dirp = upload_path(D(b), bucket, id, NULL);
    int rc = load_upload_dir(dirp, upload, parts, e);
    free(dirp);
    return rc;
}

static int dir_mpu_uploads(os_backend_t *b, const char *bucket, json_t **out, verr_t *e)
{
    dir_impl_t *d = D(b);
    char *dirp = xasprintf("%s/uploads/%s", d->root, bucket);
    DIR *dh = opendir(dirp);
    if (!dh) {
        int rc = errno == ENOENT ? os_err_nosuchbucket(e, bucket) : dir_io_error(e, "opendir", dirp, errno);
        free(dirp);
        return rc;
    }
    *out = json_array();
    struct dirent *de;
    while ((de = readdir(dh))) {
        if (!os_upload_id_valid(de->d_name))
            continue;   /* also skips ".done" leftovers of a crashed completion */
        char *head = xasprintf("%s/%s/upload.json", dirp, de->d_name);
        json_t *u;
        if (dir_get_record(head, &u, NULL) == 0) {
            json_object_set_new(u, "id", json_string(de->d_name));
            json_array_append_new(*out, u);
        }
        free(head);
    }
    closedir(dh);
    free(dirp);
    return 0;
}

static void garbage_all(dir_impl_t *d, const char *bucket, json_t *list)
{
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p)
        dir_add_garbage(d, bucket, p);
}

/* The new version planned with the lock held (loading more as the plan needs). */
static int plan_locked(os_backend_t *b, const char *bucket, const char *key, const os_vop_t *op, os_kstate_t *st,
                       os_vplan_t *pl, verr_t *e)
{
    os_kwant_t w;
    os_vop_wants(op, &w);
    for (int i = 0; i <= OS_KREC_MAX; i++) {   /* each round asks for one record more */
        if (dir_kload(b, bucket, key, &w, st, e))
            return -1;
        int rc = os_vplan(op, st, &w, pl, e);
        if (rc != 1)
            return rc;
        os_vplan_clear(pl);
    }
    return verr_set(e, 500, "InternalError", "We encountered an internal error. Please try again.");
}

static int dir_mpu_complete(os_backend_t *b, const char *bucket, const char *key, const char *id,
                            os_versioning_t vers, const os_part_ref_t *refs, size_t nrefs, const os_checksum_t *want,
                            os_meta_t *out, verr_t *e)
{
    dir_impl_t *d = D(b);
    char *dirp = upload_path(d, bucket, id, NULL), *done = xasprintf("%s.done", dirp);
    json_t *upload = NULL, *parts = NULL, *entry = NULL, *unused = NULL;
    os_kstate_t st = {0};
    os_vplan_t pl = {0};
    os_vop_t op = {.kind = OS_VOP_PUT, .vers = vers};
    int renamed = 0;
    pthread_mutex_lock(&d->lock);
    int rc = load_upload_dir(dirp, &upload, &parts, e);
    if (!rc)
        rc = os_mpu_plan(key, upload, parts, refs, nrefs, want, &entry, &unused, out, e);
    if (!rc) {
        op.entry = entry;
        rc = plan_locked(b, bucket, key, &op, &st, &pl, e);
    }
    /* Rename first: from here the parts belong to the completion; a crash before the
     * index switch is repaired by gc (complete_leftover). */
    if (!rc && rename(dirp, done) < 0)
        rc = dir_io_error(e, "rename", dirp, errno);
    else if (!rc)
        renamed = 1;
    if (!rc)
        rc = dir_kapply_locked(d, bucket, key, &pl, e);
    if (!rc) {
        garbage_all(d, bucket, unused);
        dir_remove_tree(done);
        snprintf(out->version_id, sizeof out->version_id, "%s", pl.version_id);
        out->is_latest = 1;
    } else if (renamed)
        rename(done, dirp);
    pthread_mutex_unlock(&d->lock);
    os_vplan_clear(&pl);
    os_kstate_clear(&st);
    json_decref(upload);
    json_decref(parts);
    json_decref(entry);
    json_decref(unused);
    free(done);
    free(dirp);
    return rc ? -1 : 0;
}

/* Garbage-list every part of an upload dir and remove it (lock held). */
static void drop_upload(dir_impl_t *d, const char *bucket, const char *dirp, json_t *parts)
{
    const char *num;
    json_t *p;
    json_object_foreach(parts, num, p)
        dir_add_garbage(d, bucket, p);
    dir_remove_tree(dirp);
}

static int dir_mpu_abort(os_backend_t *b, const char *bucket, const char *id, verr_t *e)
{
    dir_impl_t *d = D(b);
    char *dirp = upload_path(d, bucket, id, NULL);
    json_t *upload = NULL, *parts = NULL;
    pthread_mutex_lock(&d->lock);
    int rc = load_upload_dir(dirp, &upload, &parts, e);
    if (!rc)
        drop_upload(d, bucket, dirp, parts);
    pthread_mutex_unlock(&d->lock);
    json_decref(upload);
    json_decref(parts);
    free(dirp);
    return rc;
}

/* ---- gc ---- */

typedef struct gc_run {
    dir_impl_t *d;
    int64_t now;
    int grace_s, stale_s;
    int budget;
    const char *bucket;   /* the bucket being collected */
} gc_run_t;

static int older_than(const char *path, int64_t now, int age_s)
{
    struct stat st;
    return stat(path, &st) == 0 && (int64_t)st.st_mtime <= now - age_s;
}

/* A garbage record past grace: delete its data, then the record. */
static void gc_garbage(void *arg, const char *path, const char *name)
{
    gc_run_t *g = arg;
    int64_t t;
    char v[OS_VERSION_LEN + 1], stamp[NAME_BUF];
    snprintf(stamp, sizeof stamp, "%s", name);
    char *dot = strstr(stamp, ".json");
    if (!dot)
        return;
    *dot = '\0';
    if (os_stamp_parse(stamp, &t, v) || t > g->now - g->grace_s)
        return;
    json_t *rec;
    if (dir_get_record(path, &rec, NULL) == 0) {
        void *a[2] = {g->d, (void *)g->bucket};
        os_entry_walk(rec, unlink_seg, a);
        json_decref(rec);
    }
    unlink(path);
    g->budget--;
}

/* A file not touched for stale_s: left by a write or a record that died. */
static void gc_stale(void *arg, const char *path, const char *name)
{
    gc_run_t *g = arg;
    (void)name;
    if (older_than(path, g->now, g->stale_s) && unlink(path) == 0)
        g->budget--;
}

/* Data files being written (".tmp"). */
static void gc_data(void *arg, const char *path, const char *name)
{
    size_t n = strlen(name);
    if (n >= 4 && strcmp(name + n - 4, ".tmp") == 0)
        gc_stale(arg, path, name);
}

/* Garbage past grace and dead writes of a bucket that has data (data/<bucket>); once the
 * bucket is gone and its garbage drained, its directories too. */
static void gc_data_bucket(void *arg, const char *dirp, const char *bucket)
{
    gc_run_t *g = arg;
    char *gp = xasprintf("%s/garbage/%s", g->d->root, bucket);
    g->bucket = bucket;
    each_entry(gp, &g->budget, gc_garbage, g);
    each_entry(dirp, &g->budget, gc_data, g);
    if (!dir_bucket_exists(g->d, bucket) && (rmdir(gp) == 0 || errno == ENOENT))
        rmdir(dirp);   /* fails while files remain: retried next time */
    free(gp);
}

static void mark_parts_used(void *arg, const json_t *ent)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(ent, "parts"), i, p)
        json_object_set_new(arg, json_str(p, "v", ""), json_true());
}

/* A completion that crashed between its rename and its index switch: keep the parts if
 * a version of the key refers to them (it may have become noncurrent since), else give
 * the upload up. */
static void complete_leftover(gc_run_t *g, const char *bucket, const char *dirp)
{
    json_t *upload = NULL, *parts = NULL;
    if (load_upload_dir(dirp, &upload, &parts, NULL)) {
        dir_remove_tree(dirp);
        return;
    }
    const char *hex = json_str(upload, "k", "");
    char key[OS_KEY_MAX + 1];
    size_t klen;
    json_t *used = json_object();
    if (os_hex_decode(hex, strlen(hex), key, sizeof key, &klen) == 0)
        dir_key_entries(g->d, bucket, key, mark_parts_used, used);
    const char *num;
    json_t *p;
    json_object_foreach(parts, num, p)
        if (!json_object_get(used, json_str(p, "v", "")))
            dir_add_garbage(g->d, bucket, p);
    dir_remove_tree(dirp);
    json_decref(used);
    json_decref(upload);
    json_decref(parts);
}

/* An upload not finished within stale_s is aborted; a crashed completion is settled. */
static void gc_upload(void *arg, const char *up, const char *name)
{
    gc_run_t *g = arg;
    json_t *upload = NULL, *parts = NULL;
    pthread_mutex_lock(&g->d->lock);
    if (strstr(name, ".done"))
        complete_leftover(g, g->bucket, up);
    else if (load_upload_dir(up, &upload, &parts, NULL) == 0 &&
             json_int(upload, "initiated", g->now) <= g->now - g->stale_s)
        drop_upload(g->d, g->bucket, up, parts);
    pthread_mutex_unlock(&g->d->lock);
    json_decref(upload);
    json_decref(parts);
    g->budget--;
}

/* The uploads of a bucket (uploads/<bucket>). */
static void gc_uploads_bucket(void *arg, const char *dirp, const char *bucket)
{
    gc_run_t *g = arg;
    g->bucket = bucket;
    each_entry(dirp, &g->budget, gc_upload, g);
}

static int dir_gc(os_backend_t *b, int grace_s, int stale_s, verr_t *e)
{
    gc_run_t g = {D(b), (int64_t)time(NULL), grace_s, stale_s, GC_BUDGET, NULL};
    /* data/ lists every bucket that still has bytes, deleted or not; tmp/ holds the
     * records left by a crash. */
    static const struct {
        const char *sub;
        entry_fn fn;
        int must_exist;
    } walks[] = {{"uploads", gc_uploads_bucket, 1}, {"data", gc_data_bucket, 1}, {"tmp", gc_stale, 0}};
    for (size_t k = 0; k < ARRAY_LEN(walks); k++) {
        char *dirp = xasprintf("%s/%s", g.d->root, walks[k].sub);
        int rc = each_entry(dirp, &g.budget, walks[k].fn, &g);
        if (rc && walks[k].must_exist) {
            rc = dir_io_error(e, "opendir", dirp, -rc);
            free(dirp);
            return rc;
        }
        free(dirp);
    }
    return 0;
}

/* ---- open / close ---- */

static void dir_close(os_backend_t *b)
{
    dir_impl_t *d = D(b);
    pthread_mutex_destroy(&d->lock);
    free(d->root);
    free(d);
    free(b);
}

static const os_backend_ops_t dir_ops = {
    .name = "dir",
    .close = dir_close,
    .bucket_create = dir_bucket_create,
    .bucket_delete = dir_bucket_delete,
    .put_begin = dir_put_begin,
    .put_flush = dir_put_flush,
    .put_commit = dir_put_commit,
    .part_commit = dir_part_commit,
    .put_free = dir_put_free,
    .kload = dir_kload,
    .kapply = dir_kapply,
    .read_seg = dir_read_seg,
    .list = dir_list,
    .list_versions = dir_list_versions,
    .mpu_create = dir_mpu_create,
    .mpu_load = dir_mpu_load,
    .mpu_uploads = dir_mpu_uploads,
    .mpu_complete = dir_mpu_complete,
    .mpu_abort = dir_mpu_abort,
    .gc = dir_gc,
};

os_backend_t *os_dir_open(const config_t *cfg, verr_t *e)
{
    const char *root = config_str(cfg, "objectstore.dir.path", NULL);
    if (!root || !*root) {
        verr_set(e, 500, "InternalError", "objectstore.dir.path is not set");
        return NULL;
    }
    if (sodium_init() < 0) {
        verr_set(e, 500, "InternalError", "libsodium failed to initialise");
        return NULL;
    }
    static const char *const sub[] = {"", "/data", "/index", "/versions", "/garbage", "/uploads", "/tmp"};
    for (size_t i = 0; i < ARRAY_LEN(sub); i++) {
        char *p = xasprintf("%s%s", root, sub[i]);
        int rc = dir_mkdir_ok(p);
        if (rc) {
            verr_set(e, 500, "InternalError", "objectstore.dir.path: mkdir %.200s: %s", p, strerror(-rc));
            free(p);
            return NULL;
        }
        free(p);
    }
    dir_impl_t *d = xcalloc(1, sizeof *d);
    d->root = xstrdup(root);
    pthread_mutex_init(&d->lock, NULL);
    os_backend_t *b = xcalloc(1, sizeof *b);
    b->ops = &dir_ops;
    b->impl = d;
    return b;
}
