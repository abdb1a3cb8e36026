/* backend_dir.h - what the directory backend's files share: backend_dir.c (files,
 * buckets, data, multipart uploads), backend_dir_index.c (index entries and their
 * versions: load, atomic change, listing) and backend_dir_gc.c (garbage collection). The
 * layout is described in backend_dir.c. */
#ifndef VIRGA_OBJECTSTORE_BACKEND_DIR_H
#define VIRGA_OBJECTSTORE_BACKEND_DIR_H

#include <pthread.h>

#include "backend_internal.h"

#define NAME_BUF 256

typedef struct dir_impl {
    char *root;
    const char *writer;     /* the backend's writer id ("" = none), marks files in progress */
    pthread_mutex_t lock;   /* read-modify-write of index entries and upload records */
} dir_impl_t;

static inline dir_impl_t *D(os_backend_t *b)
{
    return b->impl;
}

/* InternalError, logged with what failed where. */
int dir_io_error(verr_t *e, const char *what, const char *path, int err);
/* Whole file into *out (NUL-terminated). -errno on failure. */
int dir_read_file(const char *path, char **out, size_t *len);
/* A record as a new file under tmp/ (fsync'd when durable), ready to be renamed. */
int dir_tmp_record(dir_impl_t *d, const json_t *rec, int durable, char **tmp_path);
/* Write a record file atomically (tmp + rename). */
int dir_put_record(dir_impl_t *d, const char *path, const json_t *rec, int durable);
/* A record file parsed; -ENOENT when absent, -EIO (and e set) when unreadable. */
int dir_get_record(const char *path, json_t **out, verr_t *e);
int dir_exists(const char *path);
int dir_bucket_exists(dir_impl_t *d, const char *bucket);
int dir_mkdir_ok(const char *path);
/* Remove a directory and the plain files in it. */
void dir_remove_tree(const char *path);
/* The file name of key's index entry ("<hex>.json", long keys shortened) and its path. */
void dir_key_name(const char *key, char out[NAME_BUF]);
char *dir_index_path(dir_impl_t *d, const char *bucket, const char *key);
/* Queue the data of an entry nothing refers to any more for gc. */
void dir_add_garbage(dir_impl_t *d, const char *bucket, const json_t *rec);
/* os_entry_walk callback: unlink one piece's data file; arg is {dir_impl_t *, bucket}. */
int dir_unlink_seg(void *arg, const os_seg_t *s);
/* fn(arg, path, name) for each entry of dirp whose name does not start with '.', while
 * *budget > 0 when budget is given (fn may lower it). -errno when dirp cannot be opened. */
typedef void (*dir_entry_fn)(void *arg, const char *path, const char *name);
int dir_each_entry(const char *dirp, const int *budget, dir_entry_fn fn, void *arg);
/* Upload record and its parts ({"<n>": part entry}) from an upload directory (live or
 * being completed): NoSuchUpload when it has no record. */
int dir_load_upload(const char *dirp, json_t **upload, json_t **parts, verr_t *e);
/* Garbage-list every part of an upload directory and remove it (lock held). */
void dir_drop_upload(dir_impl_t *d, const char *bucket, const char *dirp, json_t *parts);

/* backend_dir_index.c */
int dir_kload(os_backend_t *b, const char *bucket, const char *key, const os_kwant_t *w, os_kstate_t *st,
              verr_t *e);
int dir_kapply(os_backend_t *b, const char *bucket, const char *key, const os_kstate_t *st, const os_vplan_t *pl,
               os_put_t *p, verr_t *e);
/* Apply pl with the lock held, without comparing: the caller loaded st under the lock. */
int dir_kapply_locked(dir_impl_t *d, const char *bucket, const char *key, const os_vplan_t *pl, verr_t *e);
int dir_list(os_backend_t *b, const char *bucket, const char *prefix, const char *start_after, size_t max,
             os_list_fn fn, void *arg, int *truncated, verr_t *e);
int dir_list_versions(os_backend_t *b, const char *bucket, const char *prefix, const char *after_key,
                      const char *after_sk, size_t max, os_list_fn fn, void *arg, int *truncated, verr_t *e);
/* Every entry of key, head and noncurrent (crash leftovers too), for fn. */
void dir_key_entries(dir_impl_t *d, const char *bucket, const char *key, void (*fn)(void *arg, const json_t *ent),
                     void *arg);
/* After a bucket's index is gone: remove what is left of its noncurrent entries. */
void dir_versions_drop(dir_impl_t *d, const char *bucket);

/* backend_dir_gc.c */
int dir_gc(os_backend_t *b, const os_gc_opts_t *o, verr_t *e);

#endif
