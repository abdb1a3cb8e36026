/* backend_internal.h - what backend.c shares with the two storage implementations.
 *
 * backend.c owns everything both backends need: argument checks, the streaming write
 * (buffering into chunks the backend sizes, MD5, size), the JSON form of an index entry and
 * of multipart records, the multipart completion rules and ETag, the mapping of a read
 * range onto the data pieces of an object, and the listing emitters. An implementation
 * (backend_rados.c, backend_dir.c) fills one os_backend_ops_t with the storage-specific
 * steps: where bytes go, how an index entry is switched atomically, and how records are
 * read back. Both keep the same JSON documents, described here once:
 *
 *   index entry  {"size", "etag", "ct", "mtime", "um", "ex", "v", "sb"}      simple object
 *                {... , "parts": [{"v", "size", "sb"}, ...]}                 multipart
 *   upload       {"k": hex(key), "meta": {"ct", "um", "ex"}, "initiated"}
 *   part entry   {"v", "etag", "size", "mtime", "sb"}
 *   garbage      an index entry or part entry whose data is no longer referenced
 *
 * "v" is a version id (random hex) naming the data of one write; "sb" is the stripe size
 * it was written with (RADOS only; absent or 0 for the directory backend). An entry whose
 * bytes are stored with it (RADOS small objects) has no "v"; get_entry hands its bytes
 * over in the in-memory field OS_INLINE_FIELD (a string that may hold any byte). */
#ifndef VIRGA_OBJECTSTORE_BACKEND_INTERNAL_H
#define VIRGA_OBJECTSTORE_BACKEND_INTERNAL_H

#include <openssl/evp.h>
#include <stdint.h>

#include "backend.h"

#define OS_VERSION_LEN 24          /* hex chars of a version id (96 random bits) */
#define OS_UPLOAD_ID_LEN 32        /* hex chars of a multipart upload id */
#define OS_BUCKET_MAX 128          /* longest bucket id accepted */
#define OS_KEY_MAX 1024            /* S3's limit on key bytes */
#define OS_MAX_PART 10000
#define OS_MIN_PART_SIZE (5u * 1024 * 1024)
#define OS_RETRIES 64              /* optimistic-concurrency attempts before giving up */
#define OS_INLINE_FIELD "_inline"  /* never stored as JSON: see above */

/* A streaming write, of a whole object (key set) or of one multipart part (upload_id,
 * part set). backend.c fills buf up to chunk bytes and hands full chunks to the backend. */
struct os_put {
    os_backend_t *b;
    char bucket[OS_BUCKET_MAX + 1];
    char *key;                          /* NULL for a part */
    char upload_id[OS_UPLOAD_ID_LEN + 1];
    int part;
    char version[OS_VERSION_LEN + 1];   /* names the bytes of this write */
    uint64_t size;
    EVP_MD_CTX *md5;
    char *buf;                          /* pending bytes, not yet given to the backend */
    size_t fill, cap;
    size_t chunk;                       /* bytes to gather before the next put_flush; set by
                                         * put_begin, may change after each flush */
    void *impl;                         /* the backend's writer state */
};

/* One contiguous piece of an object's data: the bytes written under one version. */
typedef struct os_seg {
    const char *v;
    uint64_t size;
    uint64_t sb;
} os_seg_t;

typedef struct os_backend_ops {
    const char *name;
    void (*close)(os_backend_t *b);
    int (*bucket_create)(os_backend_t *b, const char *bucket, verr_t *e);
    int (*bucket_delete)(os_backend_t *b, const char *bucket, verr_t *e);

    /* Writes. put_begin sets p->chunk (and may allocate p->impl); for a part it fails with
     * NoSuchUpload when the upload is unknown. put_flush writes p->buf[0, p->fill) as the
     * next chunk; afterwards p->buf may be another buffer of p->cap bytes and p->fill is 0.
     * put_commit / part_commit write the tail still in p->buf, then switch the record in
     * (record = index entry / part entry JSON, built by backend.c without "sb", which the
     * backend adds). put_free releases p->impl and any data not committed. */
    int (*put_begin)(os_put_t *p, verr_t *e);
    int (*put_flush)(os_put_t *p, verr_t *e);
    int (*put_commit)(os_put_t *p, json_t *record, verr_t *e);
    int (*part_commit)(os_put_t *p, json_t *record, verr_t *e);
    void (*put_free)(os_put_t *p, int committed);

    /* The index entry of key (NoSuchKey / NoSuchBucket), a new reference. */
    int (*get_entry)(os_backend_t *b, const char *bucket, const char *key, json_t **out, verr_t *e);
    /* Read [off, off+len) of one data piece, in order: seg_open starts (and may read
     * ahead), seg_next hands out the next bytes (*data stays valid until the next call or
     * seg_close; 0 at the end, -1 with e set on failure: missing or short data included),
     * seg_close releases what the cursor holds (also when it was not read to the end). */
    int (*seg_open)(os_backend_t *b, const char *bucket, const os_seg_t *s, uint64_t off, uint64_t len,
                    void **cursor, verr_t *e);
    long (*seg_next)(void *cursor, const char **data, verr_t *e);
    void (*seg_close)(void *cursor);
    int (*delete_key)(os_backend_t *b, const char *bucket, const char *key, verr_t *e);
    int (*list)(os_backend_t *b, const char *bucket, const char *prefix, const char *start_after, size_t max,
                os_list_fn fn, void *arg, int *truncated, verr_t *e);

    int (*mpu_create)(os_backend_t *b, const char *bucket, const char *upload_id, json_t *upload, verr_t *e);
    /* The upload record and its parts as {"<n>": part entry}; NoSuchUpload when absent. */
    int (*mpu_load)(os_backend_t *b, const char *bucket, const char *upload_id, json_t **upload, json_t **parts,
                    verr_t *e);
    /* Every unfinished upload as an array of {"id", "k", "initiated"} (any order). */
    int (*mpu_uploads)(os_backend_t *b, const char *bucket, json_t **out, verr_t *e);
    /* Load, os_mpu_plan(), and switch the index entry in while removing the upload, all
     * or nothing. */
    int (*mpu_complete)(os_backend_t *b, const char *bucket, const char *key, const char *upload_id,
                        const os_part_ref_t *parts, size_t nparts, os_meta_t *out, verr_t *e);
    int (*mpu_abort)(os_backend_t *b, const char *bucket, const char *upload_id, verr_t *e);

    int (*gc)(os_backend_t *b, const os_gc_opts_t *o, verr_t *e);
    void (*health)(os_backend_t *b, os_health_t *out);
} os_backend_ops_t;

#define OS_WRITER_MAX 32

struct os_backend {
    const os_backend_ops_t *ops;
    void *impl;
    char writer[OS_WRITER_MAX + 1];     /* os_backend_set_writer; "" = none */
    int stopping;                       /* os_backend_stopping: aborts leave data to gc */
};

/* An aborted write should leave its data to gc (os_backend_stopping). */
int os_abort_leaves_data(const os_backend_t *b);

/* Should gc reap a write that never committed, started at time t (unix seconds) by
 * writer ("" = unknown)? */
int os_gc_pending_due(const os_gc_opts_t *o, int64_t now, int64_t t, const char *writer);

/* Implementations' constructors (NULL + e on failure). */
os_backend_t *os_rados_open(const config_t *cfg, verr_t *e);
os_backend_t *os_dir_open(const config_t *cfg, verr_t *e);

/* ---- helpers in backend.c ---- */

/* Fresh random version / upload id (lowercase hex, NUL-terminated). */
void os_new_version(char out[OS_VERSION_LEN + 1]);
void os_new_upload_id(char out[OS_UPLOAD_ID_LEN + 1]);
int os_upload_id_valid(const char *id);

/* Hex of n bytes into out (2n+1 chars); hex back to bytes (-1 if not even-length hex). */
void os_hex_encode(const void *in, size_t n, char *out);
int os_hex_decode(const char *hex, size_t hexlen, char *out, size_t outsz, size_t *outlen);

/* MD5 of a whole buffer / of an EVP context as hex (33) or binary (16). */
EVP_MD_CTX *os_md5_new(void);
void os_md5_final(EVP_MD_CTX *c, unsigned char bin[16], char hex[33]);
void os_md5_hex(const void *data, size_t len, char hex[33]);

/* Index entry <-> os_meta. os_meta_from_json keeps references to um/ex. */
json_t *os_meta_to_json(const os_meta_t *m);
void os_meta_from_json(const json_t *j, os_meta_t *m);

/* Each data piece of an entry (index entry, part entry or garbage record), in order. */
typedef int (*os_seg_fn)(void *arg, const os_seg_t *s);
int os_entry_walk(const json_t *entry, os_seg_fn fn, void *arg);
/* Stripe count of a piece (sb 0 = one piece). */
uint64_t os_seg_stripes(const os_seg_t *s);

/* Call the sink; nonzero from it becomes -1 with code "ClientGone". */
int os_sink_call(os_sink_fn sink, void *arg, const void *data, size_t len, verr_t *e);

/* Validate the client's part list against the stored parts ({"<n>": part entry}) and
 * build the new index entry (*entry) plus the part entries left unused (*unused, an
 * array). Fills out (if not NULL). */
int os_mpu_plan(const char *key, const json_t *upload, const json_t *parts, const os_part_ref_t *refs,
                size_t nrefs, json_t **entry, json_t **unused, os_meta_t *out, verr_t *e);

/* Emit a list entry (key + entry JSON) through the caller's callback (-1 ClientGone on stop). */
int os_list_emit(os_list_fn fn, void *arg, const char *key, const json_t *entry, verr_t *e);

/* Garbage / pending names "<10-digit unix time>.<version>" and their parse (-1 if not). */
void os_stamp_name(char *out, size_t outsz, int64_t t, const char *version);
int os_stamp_parse(const char *name, int64_t *t, char version[OS_VERSION_LEN + 1]);

/* Errors shared by both backends. */
int os_err_nosuchkey(verr_t *e);
int os_err_nosuchupload(verr_t *e);
int os_err_nosuchbucket(verr_t *e, const char *bucket);
int os_err_notempty(verr_t *e);

/* JSON text of a record (caller frees) / parse of one (NULL + InternalError if corrupt). */
char *os_json_text(const json_t *j, size_t *len);
json_t *os_json_parse(const char *text, size_t len, const char *what, verr_t *e);

#endif
