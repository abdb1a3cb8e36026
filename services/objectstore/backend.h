/* backend.h - where the object store keeps bytes and its per-bucket object index.
 *
 * Two implementations behind this one interface: RADOS (backend_rados.c, librados: data
 * striped over RADOS objects, the bucket index in the omap of one index object per
 * bucket) and a local directory (backend_dir.c, for the smallest setups). Bucket
 * ownership and ACLs live in PostgreSQL (the objectstore schema); the backend only knows
 * bucket ids.
 *
 * Guarantees both backends give:
 *  - A write is invisible until put_commit(): readers see the old object (or none) until
 *    the index entry is switched in one atomic step; an aborted or crashed upload leaves
 *    no visible object (only garbage that os_backend_gc() removes).
 *  - An overwrite never shows a torn object: a reader sees the old or the new object
 *    whole, and a read that started on the old one finishes on it (old data is removed
 *    only after a grace period, by gc).
 *  - Multipart parts are uploaded as invisible pieces; completing an upload writes an
 *    index entry whose manifest points at the parts, without copying their bytes.
 *
 * All functions return 0, or -1 with e set (S3 codes: NoSuchKey 404, NoSuchUpload 404,
 * InvalidPart 400, InternalError 500, ServiceUnavailable 503). Thread-safe: one backend is
 * shared by every HTTP thread. */
#ifndef VIRGA_OBJECTSTORE_BACKEND_H
#define VIRGA_OBJECTSTORE_BACKEND_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

typedef struct os_backend os_backend_t;
typedef struct os_put os_put_t;

/* What the index says of one object (also what HeadObject returns). */
typedef struct os_meta {
    uint64_t size;
    char etag[72];            /* S3 ETag without quotes: md5 hex, or md5-of-md5s "-N" */
    char content_type[256];
    int64_t mtime;            /* Unix seconds */
    json_t *user_meta;        /* {"x-amz-meta-foo": "bar", ...} or NULL; owned by the meta */
    json_t *extra;            /* other stored headers (Content-Encoding, Cache-Control,
                               * Content-Disposition, x-amz-acl ...) or NULL; owned */
} os_meta_t;

void os_meta_clear(os_meta_t *m);   /* frees user_meta/extra, zeroes the struct */

/* Open from config: objectstore.backend = "rados" | "dir";
 *   rados: objectstore.rados.conf (ceph.conf path), objectstore.rados.user ("virga" =
 *          client.virga), objectstore.rados.keyring, objectstore.rados.pool ("virga"),
 *          objectstore.rados.stripe_bytes (4 MiB), objectstore.rados.timeout_s (10)
 *   dir:   objectstore.dir.path */
os_backend_t *os_backend_open(const config_t *cfg, verr_t *e);
void os_backend_close(os_backend_t *b);
const char *os_backend_name(const os_backend_t *b);   /* "rados" / "dir" */

/* Who writes: every write this backend starts is marked with this id (hex, at most 32
 * characters) until it commits, so that garbage collection can tell the writes of a
 * process that died from those of one still running (os_gc_opts_t.writer_alive). Set once,
 * before the first write; unset, writes carry no id and only stale_s reclaims them. */
void os_backend_set_writer(os_backend_t *b, const char *writer_id);

/* The process is about to stop: writes aborted from now on leave their data to garbage
 * collection (reclaimed within a lease once this writer's liveness record is gone)
 * instead of deleting it, which would hold the stop up by a storage round trip per
 * write. Needs a writer id; without one aborts go on deleting. */
void os_backend_stopping(os_backend_t *b);

/* Does the storage answer? RADOS: the result of the last health probe (a read that an
 * OSD must answer, every objectstore.rados.probe_interval_ms), and how many times the
 * connection to the cluster was replaced because it stopped answering while a new one
 * did. Directory: whether the directory is writable. */
typedef struct os_health {
    int ok;
    char detail[200];         /* why not, when not ok */
    int64_t since;            /* unix seconds: not ok since */
    uint64_t reconnects;
} os_health_t;
void os_backend_health(os_backend_t *b, os_health_t *out);

/* Buckets are identified by an id chosen by the caller (stable across renames). */
int os_bucket_create(os_backend_t *b, const char *bucket_id, verr_t *e);
/* Fails with BucketNotEmpty 409 if any object or unfinished multipart upload exists. */
int os_bucket_delete(os_backend_t *b, const char *bucket_id, verr_t *e);

/* Streaming write of a whole object. */
int os_put_begin(os_backend_t *b, const char *bucket_id, const char *key, os_put_t **out, verr_t *e);
int os_put_write(os_put_t *p, const void *data, size_t len, verr_t *e);
/* meta->size and meta->etag are filled by the backend from what was written (MD5 of the
 * bytes); the rest is taken from meta. Makes the object visible, replacing any old one.
 * Consumes p (frees it) whether it succeeds or fails: never os_put_abort() it after. */
int os_put_commit(os_put_t *p, os_meta_t *meta, verr_t *e);
void os_put_abort(os_put_t *p);      /* also frees p; NULL is a no-op */

int os_head(os_backend_t *b, const char *bucket_id, const char *key, os_meta_t *out, verr_t *e);

/* One version of an object, as the index named it when it was opened: its metadata and
 * where its bytes are. Reads from it return exactly that version's bytes whatever
 * overwrites or deletes happen meanwhile, for as long as the replaced data is kept
 * (objectstore.gc_grace_s after the replacement); past that a read fails. This is how
 * a reader sends headers that match the bytes that follow. Not shared between threads. */
typedef struct os_object os_object_t;
/* meta (optional) receives the version's metadata (the caller clears it). */
int os_open(os_backend_t *b, const char *bucket_id, const char *key, os_object_t **out, os_meta_t *meta,
            verr_t *e);
uint64_t os_object_size(const os_object_t *o);
void os_object_close(os_object_t *o);   /* NULL is a no-op */

/* Read [off, off+len) of an opened version (clamped to its size), calling sink for each
 * piece in order; a sink returning nonzero stops the read (-1, code "ClientGone"). */
typedef int (*os_sink_fn)(void *arg, const void *data, size_t len);
int os_object_read(os_object_t *o, uint64_t off, uint64_t len, os_sink_fn sink, void *arg, verr_t *e);

/* The same as a pull: the reader takes over o (closing the reader closes it) and hands out
 * [off, off+len) in order, keeping a bounded number of backend reads in flight ahead of
 * the caller (RADOS: 4 x 1 MiB), so a slow client holds no thread and little memory. */
typedef struct os_reader os_reader_t;
os_reader_t *os_reader_new(os_object_t *o, uint64_t off, uint64_t len);
/* Up to max bytes into buf: the count, 0 at the end, or -1 with e set. */
long os_reader_read(os_reader_t *r, char *buf, size_t max, verr_t *e);
void os_reader_free(os_reader_t *r);   /* NULL is a no-op */

/* open + read + close: [off, off+len) of the current version; meta as for os_open. */
int os_read(os_backend_t *b, const char *bucket_id, const char *key, uint64_t off, uint64_t len,
            os_sink_fn sink, void *arg, os_meta_t *meta, verr_t *e);
/* Deleting a key that does not exist succeeds (S3 semantics). */
int os_delete(os_backend_t *b, const char *bucket_id, const char *key, verr_t *e);

/* Keys in byte order after start_after ("" = from the start) that begin with prefix,
 * at most max; *truncated set when more follow. fn is called per key with its meta. */
typedef int (*os_list_fn)(void *arg, const char *key, const os_meta_t *meta);
int os_list(os_backend_t *b, const char *bucket_id, const char *prefix, const char *start_after, size_t max,
            os_list_fn fn, void *arg, int *truncated, verr_t *e);

/* Multipart: upload ids are chosen by the backend (URL-safe). Parts are numbered 1..10000;
 * re-uploading a part number replaces it. */
int os_mpu_create(os_backend_t *b, const char *bucket_id, const char *key, const os_meta_t *meta,
                  char upload_id[96], verr_t *e);
int os_mpu_part_begin(os_backend_t *b, const char *bucket_id, const char *upload_id, int part, os_put_t **out,
                      verr_t *e);
/* Finish a part: etag (md5 hex) and size are returned in meta. Consumes p, as above. */
int os_mpu_part_commit(os_put_t *p, os_meta_t *meta, verr_t *e);
/* Complete with the client's list (part numbers ascending, each with the etag it was
 * given): InvalidPart if a part is missing or its etag differs, InvalidPartOrder if not
 * ascending, EntityTooSmall if a part other than the last is under 5 MiB. The object
 * becomes visible atomically with ETag "<md5 of the concatenated binary part md5s>-N". */
typedef struct os_part_ref {
    int number;
    char etag[72];
} os_part_ref_t;
int os_mpu_complete(os_backend_t *b, const char *bucket_id, const char *key, const char *upload_id,
                    const os_part_ref_t *parts, size_t nparts, os_meta_t *out, verr_t *e);
int os_mpu_abort(os_backend_t *b, const char *bucket_id, const char *upload_id, verr_t *e);
/* Parts uploaded so far (ascending), for ListParts. */
typedef int (*os_part_fn)(void *arg, int number, const char *etag, uint64_t size, int64_t mtime);
int os_mpu_list_parts(os_backend_t *b, const char *bucket_id, const char *upload_id, os_part_fn fn, void *arg,
                      verr_t *e);
/* Unfinished uploads in the bucket, for ListMultipartUploads (key order). */
typedef int (*os_upload_fn)(void *arg, const char *key, const char *upload_id, int64_t initiated);
int os_mpu_list(os_backend_t *b, const char *bucket_id, const char *prefix, os_upload_fn fn, void *arg, verr_t *e);

/* Remove data no index entry refers to any more. Called on the reconcile timer.
 *  - replaced or deleted data once older than grace_s (a reader of that version may still
 *    be streaming it);
 *  - writes that never committed (a killed process, a client gone mid-body): those marked
 *    by a writer that writer_alive says is gone once older than lease_s, all others once
 *    older than stale_s;
 *  - multipart uploads not completed or aborted within stale_s of their creation: a
 *    tenant's upload may legitimately take days, so no writer owns it. */
typedef struct os_gc_opts {
    int grace_s, stale_s, lease_s;
    /* 1 if the process that marked writes with this id may still be writing; NULL: ask
     * nobody, every writer is alive */
    int (*writer_alive)(void *arg, const char *writer_id);
    void *arg;
    /* 1 when the pass should end now (the process is stopping): the next pass goes on */
    int (*interrupted)(void);
} os_gc_opts_t;
int os_backend_gc_run(os_backend_t *b, const os_gc_opts_t *o, verr_t *e);
/* The same with every writer alive. */
int os_backend_gc(os_backend_t *b, int grace_s, int stale_s, verr_t *e);

#endif
