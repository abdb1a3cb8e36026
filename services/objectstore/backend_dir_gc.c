/* backend_dir_gc.c - garbage collection of the directory backend (backend_dir.h), on the
 * reconcile timer: garbage records past the grace period have their data files removed,
 * then the record; files of writes in progress (data/<bucket>/<version>[.<writer>].tmp,
 * tmp/<id>[.<writer>].json) that are due (os_gc_pending_due: the writer is gone, or the
 * file was not touched for stale_s) are removed; uploads past stale_s are aborted and
 * completions that crashed are settled; a deleted bucket's directories go once drained.
 * A call handles at most GC_BUDGET files; the next pass goes on. */
#include "backend_dir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jsonutil.h"
#include "log.h"

#define GC_BUDGET 10000                 /* files removed per gc call, to bound one call */

typedef struct gc_run {
    dir_impl_t *d;
    const os_gc_opts_t *o;
    int64_t now;
    int grace_s, stale_s;
    int budget;
    const char *bucket;   /* the bucket being collected */
} gc_run_t;

/* The process is stopping: spend the budget so every walk ends (the next pass goes on). */
static int gc_interrupted(gc_run_t *g)
{
    if (g->o->interrupted && g->o->interrupted())
        g->budget = 0;
    return g->budget <= 0;
}

/* A garbage record past grace: delete its data, then the record. */
static void gc_garbage(void *arg, const char *path, const char *name)
{
    gc_run_t *g = arg;
    if (gc_interrupted(g))
        return;
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
        os_entry_walk(rec, dir_unlink_seg, a);
        json_decref(rec);
    }
    unlink(path);
    g->budget--;
}

/* A file of a write in progress ("<id>[.<writer>]<suffix>") that is due: its writer is
 * gone, or it was not touched for stale_s (os_gc_pending_due, with the file's mtime as the
 * time: a live writer keeps touching it). */
static void gc_pending(gc_run_t *g, const char *path, const char *name, const char *suffix)
{
    if (gc_interrupted(g))
        return;
    size_t n = strlen(name), sl = strlen(suffix);
    if (n < sl || strcmp(name + n - sl, suffix) != 0)
        return;
    char writer[OS_WRITER_MAX + 1] = "";
    const char *dot = memchr(name, '.', n - sl);
    if (dot && (size_t)(name + n - sl - dot - 1) <= OS_WRITER_MAX)
        snprintf(writer, sizeof writer, "%.*s", (int)(name + n - sl - dot - 1), dot + 1);
    struct stat st;
    if (stat(path, &st) == 0 && os_gc_pending_due(g->o, g->now, (int64_t)st.st_mtime, writer) && unlink(path) == 0) {
        log_info("objectstore dir: reclaimed %s (writer %s)", path, writer[0] ? writer : "unknown");
        g->budget--;
    }
}

/* Data files being written (".tmp"). */
static void gc_data(void *arg, const char *path, const char *name)
{
    gc_pending(arg, path, name, ".tmp");
}

/* Records being written (tmp/). */
static void gc_tmp(void *arg, const char *path, const char *name)
{
    gc_pending(arg, path, name, ".json");
}

/* Garbage past grace and dead writes of a bucket that has data (data/<bucket>); once the
 * bucket is gone and its garbage drained, its directories too. */
static void gc_data_bucket(void *arg, const char *dirp, const char *bucket)
{
    gc_run_t *g = arg;
    char *gp = xasprintf("%s/garbage/%s", g->d->root, bucket);
    g->bucket = bucket;
    dir_each_entry(gp, &g->budget, gc_garbage, g);
    dir_each_entry(dirp, &g->budget, gc_data, g);
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
    if (dir_load_upload(dirp, &upload, &parts, NULL)) {
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
    if (gc_interrupted(g))
        return;
    pthread_mutex_lock(&g->d->lock);
    if (strstr(name, ".done"))
        complete_leftover(g, g->bucket, up);
    else if (dir_load_upload(up, &upload, &parts, NULL) == 0 &&
             json_int(upload, "initiated", g->now) <= g->now - g->stale_s)
        dir_drop_upload(g->d, g->bucket, up, parts);
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
    dir_each_entry(dirp, &g->budget, gc_upload, g);
}

int dir_gc(os_backend_t *b, const os_gc_opts_t *o, verr_t *e)
{
    gc_run_t g = {D(b), o, (int64_t)time(NULL), o->grace_s, o->stale_s, GC_BUDGET, NULL};
    /* data/ lists every bucket that still has bytes, deleted or not; tmp/ holds the
     * records left by a crash. */
    static const struct {
        const char *sub;
        dir_entry_fn fn;
        int must_exist;
    } walks[] = {{"uploads", gc_uploads_bucket, 1}, {"data", gc_data_bucket, 1}, {"tmp", gc_tmp, 0}};
    for (size_t k = 0; k < ARRAY_LEN(walks); k++) {
        char *dirp = xasprintf("%s/%s", g.d->root, walks[k].sub);
        int rc = dir_each_entry(dirp, &g.budget, walks[k].fn, &g);
        if (rc && walks[k].must_exist) {
            rc = dir_io_error(e, "opendir", dirp, -rc);
            free(dirp);
            return rc;
        }
        free(dirp);
    }
    return 0;
}
