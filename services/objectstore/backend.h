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
 *  - Versions (S3 versioning): a key has a latest version and may have older
 *    ("noncurrent") ones, each a whole index entry with its own id; a delete marker is a
 *    version without data. Every change to a key's versions (a write, a delete, a marker,
 *    a removed version, changed attributes) is one atomic step guarded against
 *    concurrent writers. Entries written before versioning existed read as the version
 *    "null". What a write or delete does depends on the bucket's versioning state, which
 *    the caller keeps (os_versioning_t) and passes in.
 *
 * All functions return 0, or -1 with e set (S3 codes: NoSuchKey 404, NoSuchVersion 404,
 * NoSuchUpload 404, MethodNotAllowed 405 (a delete marker read by id), InvalidPart 400,
 * InternalError 500, ServiceUnavailable 503). Thread-safe: one backend is shared by every
 * HTTP thread. */
#ifndef VIRGA_OBJECTSTORE_BACKEND_H
#define VIRGA_OBJECTSTORE_BACKEND_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "checksum.h"
#include "config.h"
#include "err.h"

typedef struct os_backend os_backend_t;
typedef struct os_put os_put_t;

/* A bucket's versioning state as writes see it. OFF: never versioned (writes replace
 * the one "null" version, deletes remove it); ENABLED: every write and delete adds a
 * version (a delete adds a delete marker); SUSPENDED: writes and deletes replace the
 * null version (a delete with a null delete marker) and keep the other versions. */
typedef enum os_versioning {
    OS_VERSIONING_OFF = 0,
    OS_VERSIONING_ENABLED,
    OS_VERSIONING_SUSPENDED,
} os_versioning_t;

#define OS_VERSION_ID_MAX 33   /* "null" or 32 hex chars, NUL included */

/* An object's checksum as S3 reports it (x-amz-checksum-<alg>, x-amz-checksum-type). */
typedef struct os_checksum {
    ck_alg_t alg;             /* CK_NONE: none (objects stored before checksums were kept) */
    int composite;            /* COMPOSITE (multipart: the algorithm over the parts' digests,
                               * value "<b64>-<parts>"); 0 = FULL_OBJECT */
    char value[CK_B64_MAX];   /* base64 */
} os_checksum_t;

/* What the index says of one version of an object (also what HeadObject returns). */
typedef struct os_meta {
    uint64_t size;
    char etag[72];            /* S3 ETag without quotes: md5 hex, or md5-of-md5s "-N" */
    char content_type[256];
    int64_t mtime;            /* Unix seconds */
    json_t *user_meta;        /* {"x-amz-meta-foo": "bar", ...} or NULL; owned by the meta */
    json_t *extra;            /* other stored headers (Content-Encoding, Cache-Control,
                               * Content-Disposition, ...) or NULL; owned */
    json_t *tags;             /* object tags {"key": "value", ...} or NULL; owned */
    json_t *acl;              /* this version's owner and grants (s3_acl.c) or NULL (a delete
                               * marker has none); owned */
    os_checksum_t ck;         /* the stored checksum (a version keeps its own); for an upload
                               * (os_mpu_create) the algorithm and type the client chose
                               * (CK_NONE: the default) */
    /* Filled by the backend on every read, listing, commit and delete: */
    char version_id[OS_VERSION_ID_MAX];   /* "null" or the version's id */
    int delete_marker;        /* the version is a delete marker (no data) */
    int is_latest;            /* it is the key's latest version */
} os_meta_t;

void os_meta_clear(os_meta_t *m);   /* frees user_meta/extra/tags/acl, zeroes the struct */

/* 1 when s is a version id this backend could have made ("null" or 32 lowercase hex):
 * anything else is InvalidArgument to S3, checked before a backend call. */
int os_version_id_valid(const char *s);

/* Open from config: objectstore.backend = "rados" | "dir";
 *   rados: objectstore.rados.conf (ceph.conf path), objectstore.rados.user ("virga" =
 *          client.virga), objectstore.rados.keyring, objectstore.rados.pool ("virga"),
 *          objectstore.rados.stripe_bytes (4 MiB), objectstore.rados.timeout_s (10)
 *   dir:   objectstore.dir.path */
os_backend_t *os_backend_open(const config_t *cfg, verr_t *e);
void os_backend_close(os_backend_t *b);
const char *os_backend_name(const os_backend_t *b);   /* "rados" / "dir" */

/* Buckets are identified by an id chosen by the caller (stable across renames). */
int os_bucket_create(os_backend_t *b, const char *bucket_id, verr_t *e);
/* Fails with BucketNotEmpty 409 if any version (delete markers included) or unfinished
 * multipart upload exists. */
int os_bucket_delete(os_backend_t *b, const char *bucket_id, verr_t *e);

/* Streaming write of a whole object, as a new version of key in a bucket in state vers. */
int os_put_begin(os_backend_t *b, const char *bucket_id, const char *key, os_versioning_t vers, os_put_t **out,
                 verr_t *e);
int os_put_write(os_put_t *p, const void *data, size_t len, verr_t *e);
/* Checksums. Every write computes and stores one checksum with what it writes: an object
 * CRC64NVME (S3's default) unless told otherwise, a part the algorithm its upload chose
 * at os_mpu_create (CRC64NVME when it chose none). Both calls below only before the first
 * os_put_write (-1 after). os_put_checksum_store: an object write stores alg instead;
 * os_put_checksum_also: compute alg too (a part keeps every value it computed). */
int os_put_checksum_store(os_put_t *p, ck_alg_t alg);
int os_put_checksum_also(os_put_t *p, ck_alg_t alg);
/* The algorithm that will be stored; *chosen (optional): a part's upload chose it. */
ck_alg_t os_put_checksum_alg(const os_put_t *p, int *chosen);
/* After the last os_put_write: the base64 value of a computed algorithm (-1 if not). */
int os_put_checksum_value(os_put_t *p, ck_alg_t alg, char out[CK_B64_MAX]);
/* meta->size, meta->etag and meta->ck are filled by the backend from what was written
 * (MD5 of the bytes, the stored checksum), meta->version_id with the new version's id;
 * the rest (content type, metadata, tags) is taken from meta. Makes the version visible
 * as the key's latest: with versioning ENABLED the old latest becomes noncurrent,
 * otherwise it replaces the null version. Consumes p (frees it) whether it succeeds or
 * fails: never os_put_abort() it after. */
int os_put_commit(os_put_t *p, os_meta_t *meta, verr_t *e);
void os_put_abort(os_put_t *p);      /* also frees p; NULL is a no-op */

/* The latest version of key (NoSuchKey when there is none or it is a delete marker). */
int os_head(os_backend_t *b, const char *bucket_id, const char *key, os_meta_t *out, verr_t *e);
/* One version of key: version_id NULL for the latest, "null" or an id. A delete marker
 * is returned as such (out->delete_marker), not as an error. NoSuchKey when the key has
 * no version at all (and version_id was NULL or "null"), NoSuchVersion otherwise. */
int os_head_version(os_backend_t *b, const char *bucket_id, const char *key, const char *version_id,
                    os_meta_t *out, verr_t *e);
/* Read [off, off+len) of the object (the caller has checked the range against size),
 * calling sink for each piece in order; a sink returning nonzero stops the read (-1,
 * code "ClientGone"). meta (optional) receives the metadata of the version read, so
 * head + read are consistent even across a concurrent overwrite. */
typedef int (*os_sink_fn)(void *arg, const void *data, size_t len);
int os_read(os_backend_t *b, const char *bucket_id, const char *key, uint64_t off, uint64_t len,
            os_sink_fn sink, void *arg, os_meta_t *meta, verr_t *e);
/* The same for one version (NULL: the latest); a delete marker has no bytes: NoSuchKey
 * when it is the latest, MethodNotAllowed 405 when named by id. */
int os_read_version(os_backend_t *b, const char *bucket_id, const char *key, const char *version_id, uint64_t off,
                    uint64_t len, os_sink_fn sink, void *arg, os_meta_t *meta, verr_t *e);
/* Delete, with S3's semantics. version_id NULL: in a bucket that was never versioned
 * remove the null version; ENABLED adds a delete marker, SUSPENDED makes a delete marker
 * the null version (both also when the key does not exist). version_id given: remove
 * that version for good (a delete marker too; the next newest becomes the latest); a
 * version that does not exist is no error. out (optional) tells what happened:
 * version_id (the marker made or the version named) and delete_marker (a marker was
 * made, or the version removed was one). */
int os_delete(os_backend_t *b, const char *bucket_id, const char *key, const char *version_id,
              os_versioning_t vers, os_meta_t *out, verr_t *e);

/* Keys in byte order after start_after ("" = from the start) that begin with prefix,
 * at most max; *truncated set when more follow. fn is called per key with the meta of
 * its latest version; keys whose latest version is a delete marker are left out. */
typedef int (*os_list_fn)(void *arg, const char *key, const os_meta_t *meta);
int os_list(os_backend_t *b, const char *bucket_id, const char *prefix, const char *start_after, size_t max,
            os_list_fn fn, void *arg, int *truncated, verr_t *e);
/* Every version (delete markers included) of the keys that begin with prefix, in key
 * order and newest first within a key, as S3's ListObjectVersions: after key_marker's
 * versions ("" = from the start), or, when version_id_marker is given, after that
 * version of key_marker. At most max; *truncated set when more follow. meta tells
 * version_id, delete_marker and is_latest. */
int os_list_versions(os_backend_t *b, const char *bucket_id, const char *prefix, const char *key_marker,
                     const char *version_id_marker, size_t max, os_list_fn fn, void *arg, int *truncated,
                     verr_t *e);

/* Replace, in one atomic step, named attribute fields of one version's index entry
 * without touching its data: attrs is {"field": value, ...} (a JSON null value removes
 * the field), e.g. {"tags": {"k": "v"}} or {"acl": ...}. version_id NULL is the latest
 * version, else "null" or an id. Compare-and-swap against concurrent writers of the key
 * (retried). NoSuchKey (no such key, or its latest is a delete marker), NoSuchVersion,
 * MethodNotAllowed 405 (a delete marker named by id); the fields that describe the data
 * or the version itself (size, etag, mtime, parts, checksum, version fields) are
 * InvalidArgument. */
int os_set_attrs(os_backend_t *b, const char *bucket_id, const char *key, const char *version_id,
                 const json_t *attrs, verr_t *e);

/* Multipart: upload ids are chosen by the backend (URL-safe). Parts are numbered 1..10000;
 * re-uploading a part number replaces it. meta->ck at create is the checksum the client
 * chose (x-amz-checksum-algorithm / -type), kept with the upload. */
int os_mpu_create(os_backend_t *b, const char *bucket_id, const char *key, const os_meta_t *meta,
                  char upload_id[96], verr_t *e);
int os_mpu_part_begin(os_backend_t *b, const char *bucket_id, const char *upload_id, int part, os_put_t **out,
                      verr_t *e);
/* Finish a part: etag (md5 hex), size and the stored checksum are returned in meta.
 * Consumes p, as above. */
int os_mpu_part_commit(os_put_t *p, os_meta_t *meta, verr_t *e);
/* Complete with the client's list (part numbers ascending, each with the etag it was
 * given and, optionally, a checksum): InvalidPart if a part is missing or its etag or
 * checksum differs, InvalidPartOrder if not ascending, EntityTooSmall if a part other than
 * the last is under 5 MiB. want (optional, alg CK_NONE when not given) is the whole-object
 * checksum the client stated: InvalidRequest if its algorithm or type is not the upload's,
 * BadDigest if its value differs. The object becomes visible atomically, as a new version
 * as for os_put_commit (vers), with ETag "<md5 of the concatenated binary part md5s>-N"
 * and the upload's checksum: COMPOSITE "<b64 of alg(part digests)>-N" or FULL_OBJECT (the
 * parts' CRCs combined); out->version_id is its id. The metadata and tags given to
 * os_mpu_create are the object's. */
typedef struct os_part_ref {
    int number;
    char etag[72];
    os_checksum_t ck;         /* the part's checksum as the client listed it, or CK_NONE */
} os_part_ref_t;
int os_mpu_complete(os_backend_t *b, const char *bucket_id, const char *key, const char *upload_id,
                    os_versioning_t vers, const os_part_ref_t *parts, size_t nparts, const os_checksum_t *want,
                    os_meta_t *out, verr_t *e);
int os_mpu_abort(os_backend_t *b, const char *bucket_id, const char *upload_id, verr_t *e);
/* Parts uploaded so far (ascending), for ListParts, each with its value of the upload's
 * checksum algorithm (NULL if it has none); *ck (optional) receives the upload's
 * algorithm and type (the default when it chose none). */
typedef int (*os_part_fn)(void *arg, int number, const char *etag, uint64_t size, int64_t mtime,
                          const char *checksum);
int os_mpu_list_parts(os_backend_t *b, const char *bucket_id, const char *upload_id, os_checksum_t *ck,
                      os_part_fn fn, void *arg, verr_t *e);
/* Unfinished uploads in the bucket, for ListMultipartUploads (key order). */
typedef int (*os_upload_fn)(void *arg, const char *key, const char *upload_id, int64_t initiated);
int os_mpu_list(os_backend_t *b, const char *bucket_id, const char *prefix, os_upload_fn fn, void *arg, verr_t *e);

/* Remove data no index entry refers to any more (replaced objects and deleted versions
 * older than grace_s, aborted or crashed uploads older than stale_s). Called on the
 * reconcile timer. */
int os_backend_gc(os_backend_t *b, int grace_s, int stale_s, verr_t *e);

#endif
