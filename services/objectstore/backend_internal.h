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
 *   index entry  {"size", "etag", "ct", "mtime", "um", "ex", "tags", "acl", "ck", "v", "sb",
 *                 "vid", "sk", "dm", "nullsk"}                             simple object
 *                {... , "parts": [{"v", "size", "sb"}, ...]}                 multipart
 *   upload       {"k": hex(key), "meta": {"ct", "um", "ex", "tags", "acl", "ck"}, "initiated"}
 *   part entry   {"v", "etag", "size", "mtime", "cks", "sb"}
 *   garbage      an index entry or part entry whose data is no longer referenced
 *
 * "v" names the data of one write (random hex, distinct from the S3 version id); "sb" is
 * the stripe size it was written with (RADOS only; absent or 0 for the directory
 * backend). An entry whose bytes are stored with it (RADOS small objects) has no "v";
 * loads hand its bytes over in the in-memory field OS_INLINE_FIELD (a string that may
 * hold any byte). "tags" is the object's tag set {"key": "value"}.
 *
 * "ck" is the object's checksum {"a": "CRC32", "t": "FULL_OBJECT"|"COMPOSITE", "v": b64}
 * (in an upload's meta only "a" and "t": what the client chose); "cks" holds every
 * checksum a part computed, {"CRC64NVME": b64, ...}. Entries written before checksums
 * were kept have neither and read back as having no checksum (backend_checksum.c). A
 * version's "ck" is part of its data's description: it moves with the entry when the
 * entry becomes noncurrent and os_set_attrs never changes it.
 *
 * Versions. Every version of a key is a whole index entry. The key's latest version is
 * its "head" (RADOS omap key o<key>, the directory's index file: where entries have
 * always been); older versions are "noncurrent" entries stored under their sort key
 * (RADOS v<key>\0<sk>, directory versions/<bucket>/<name>/<sk>.json), so that the
 * latest is one read, one version by id is one read, and a key's versions come out
 * newest first from one ordered scan. Version fields:
 *   "vid"     the S3 version id; absent for the null version (so every entry written
 *             before versioning existed is the null version)
 *   "sk"      sort key: 12 hex digits of (2^48-1 - milliseconds since 1970) then 20
 *             random hex, so that byte order is newest first. A real version's id is
 *             its sort key. A new version's time is max(now, latest's time + 1 ms): a
 *             key's versions are strictly ordered even across clocks that disagree.
 *             Absent in old entries: derived from "mtime" (os_entry_sk)
 *   "dm"      true for a delete marker (no size, etag or data)
 *   "nullsk"  in a head only: the sort key of the key's noncurrent null version, so a
 *             write that replaces the null version finds it with one read
 * Invariant: a key has noncurrent entries only while it has a head, and the head is its
 * newest version. Each change is planned here (os_vplan: which entry becomes the head,
 * which one is stored or removed as noncurrent, which data becomes garbage) from what a
 * backend read (os_kstate_t), then applied by the backend in one atomic step that
 * compares the records it changes with what was read (kapply); a lost race reloads and
 * plans again (os_vchange). */
#ifndef VIRGA_OBJECTSTORE_BACKEND_INTERNAL_H
#define VIRGA_OBJECTSTORE_BACKEND_INTERNAL_H

#include <openssl/evp.h>
#include <stdint.h>

#include "backend.h"
#include "checksum.h"

#define OS_VERSION_LEN 24          /* hex chars of a data version name (96 random bits) */
#define OS_SK_LEN 32               /* hex chars of a version sort key (= a real version id) */
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
    os_versioning_t vers;               /* the bucket's state, for the commit */
    char upload_id[OS_UPLOAD_ID_LEN + 1];
    int part;
    char version[OS_VERSION_LEN + 1];   /* names the bytes of this write */
    uint64_t size;
    EVP_MD_CTX *md5;
    ck_state_t ck;                      /* checksums over the bytes (backend_checksum.c) */
    ck_alg_t ck_store;                  /* the one stored with the object or part */
    int ck_chosen;                      /* a part: its upload chose ck_store */
    json_t *upload;                     /* a part: its upload record (put_begin sets it) */
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

/* ---- versions (backend_versions.c) ---- */

/* One version record as a backend read it: kept raw so that a change can be compared
 * against exactly what was read. */
typedef struct os_krec {
    char sk[OS_SK_LEN + 1];   /* a noncurrent entry's sort key ("" for the head) */
    char *raw;                /* the stored value; NULL when absent */
    size_t rawlen;
    json_t *ent;              /* parsed (inline bytes in OS_INLINE_FIELD); NULL when absent */
} os_krec_t;

#define OS_KREC_MAX 3

/* What to read of one key besides its head. */
typedef struct os_kwant {
    char sk[OS_KREC_MAX][OS_SK_LEN + 1];   /* noncurrent entries by sort key */
    size_t nsk;
    int next;                              /* the newest noncurrent entry */
} os_kwant_t;

/* The versions of one key as loaded (kload), for planning a change. */
typedef struct os_kstate {
    os_krec_t head;
    os_krec_t nc[OS_KREC_MAX];   /* what os_kwant_t.sk asked for, in that order */
    size_t nnc;
    int has_next;                /* next was asked for */
    os_krec_t next;              /* the newest noncurrent entry (raw NULL: there is none) */
} os_kstate_t;

void os_kstate_clear(os_kstate_t *st);
/* The loaded record of sort key sk (head excluded), or NULL when it was not asked for. */
const os_krec_t *os_kstate_find(const os_kstate_t *st, const char *sk);

/* A change to one key's versions. */
typedef enum os_vop_kind { OS_VOP_PUT, OS_VOP_DELETE, OS_VOP_SET_ATTRS } os_vop_kind_t;

typedef struct os_vop {
    os_vop_kind_t kind;
    os_versioning_t vers;     /* PUT, and DELETE without a version id */
    const char *vid;          /* DELETE: the version to remove for good (NULL: per vers);
                               * SET_ATTRS: the version (NULL: the latest) */
    const json_t *entry;      /* PUT: the new version's index entry (data fields) */
    const json_t *attrs;      /* SET_ATTRS */
} os_vop_t;

/* What a backend does, in one atomic step, to apply a change. */
typedef struct os_vplan {
    int head_op;                  /* 0 keep, 1 store head, 2 remove the head (no version left) */
    json_t *head;
    json_t *put;                  /* a noncurrent entry to store under put_sk (a demoted
                                   * head, or one whose attributes changed), or NULL */
    char put_sk[OS_SK_LEN + 1];
    char rm_sk[OS_SK_LEN + 1];    /* a noncurrent entry to remove ("" none) */
    json_t *garbage;              /* [entry, ...] whose data nothing refers to any more */
    char version_id[OS_VERSION_ID_MAX];   /* for the caller: the version made or named */
    int delete_marker;
} os_vplan_t;

enum { OS_HEAD_KEEP = 0, OS_HEAD_SET = 1, OS_HEAD_REMOVE = 2 };

void os_vplan_clear(os_vplan_t *pl);
/* What op needs loaded before the head is known (the head is always loaded). */
void os_vop_wants(const os_vop_t *op, os_kwant_t *w);
/* Plan op against st: 0 with *pl filled (an empty plan, head_op 0 and nothing else, is a
 * no-op: the version to delete does not exist), 1 when more must be loaded first (w is
 * extended: load again and plan again), -1 with e set. */
int os_vplan(const os_vop_t *op, const os_kstate_t *st, os_kwant_t *w, os_vplan_t *pl, verr_t *e);
/* Load, plan, apply; reload and plan again after a lost race. st may already hold a
 * load made with os_vop_wants(op) (loaded = 1), e.g. read while data was written; it is
 * cleared. p is the write being committed (PUT), handed to kapply. out (optional)
 * receives version_id and delete_marker of the change. */
int os_vchange(os_backend_t *b, const char *bucket, const char *key, const os_vop_t *op, os_put_t *p,
               os_kstate_t *st, int loaded, os_meta_t *out, verr_t *e);
/* The entry of one version of key for reading (version_id NULL: the latest), a new
 * reference, and whether it is the head: NoSuchKey / NoSuchVersion as os_head_version. */
int os_locate(os_backend_t *b, const char *bucket, const char *key, const char *version_id, json_t **out,
              int *is_latest, verr_t *e);

/* Version fields of an entry. */
int os_entry_is_null(const json_t *ent);           /* no "vid": the null version */
int os_entry_is_dm(const json_t *ent);
const char *os_entry_vid(const json_t *ent);       /* "vid" or "null" */
void os_entry_sk(const json_t *ent, char out[OS_SK_LEN + 1]);
/* Does version id vid name this entry? */
int os_entry_has_vid(const json_t *ent, const char *vid);
/* 1 for an entry with data pieces of its own (garbage-listed when dropped). */
int os_entry_has_data(const json_t *ent);

typedef struct os_backend_ops {
    const char *name;
    void (*close)(os_backend_t *b);
    int (*bucket_create)(os_backend_t *b, const char *bucket, verr_t *e);
    int (*bucket_delete)(os_backend_t *b, const char *bucket, verr_t *e);

    /* Writes. put_begin sets p->chunk (and may allocate p->impl); for a part it sets
     * p->upload to the upload record, or fails with NoSuchUpload when the upload is
     * unknown. put_flush writes p->buf[0, p->fill) as the next chunk; afterwards p->buf
     * may be another buffer of p->cap bytes and p->fill is 0.
     * put_commit / part_commit write the tail still in p->buf, then switch the record in
     * (record = index entry / part entry JSON, built by backend.c without "sb", which the
     * backend adds); put_commit plans the new version with os_vplan (p->vers) and fills
     * out's version fields. put_free releases p->impl and any data not committed. */
    int (*put_begin)(os_put_t *p, verr_t *e);
    int (*put_flush)(os_put_t *p, verr_t *e);
    int (*put_commit)(os_put_t *p, json_t *record, os_meta_t *out, verr_t *e);
    int (*part_commit)(os_put_t *p, json_t *record, verr_t *e);
    void (*put_free)(os_put_t *p, int committed);

    /* The head of key and what w asks for, as one snapshot where the storage allows
     * (records absent are left with raw NULL); NoSuchBucket. st is cleared first. */
    int (*kload)(os_backend_t *b, const char *bucket, const char *key, const os_kwant_t *w, os_kstate_t *st,
                 verr_t *e);
    /* Apply pl atomically if the head and the noncurrent records pl stores over or removes
     * are still what st read: 0 done, 1 they changed (reload and plan again), -1 error.
     * p: the write being committed (its data becomes the new head's), or NULL. */
    int (*kapply)(os_backend_t *b, const char *bucket, const char *key, const os_kstate_t *st,
                  const os_vplan_t *pl, os_put_t *p, verr_t *e);
    /* Feed [off, off+len) of one data piece to the sink (os_sink_call). */
    int (*read_seg)(os_backend_t *b, const char *bucket, const os_seg_t *s, uint64_t off, uint64_t len,
                    os_sink_fn sink, void *arg, verr_t *e);
    /* The fast delete of a never-versioned bucket's key (vers OFF, no version id), or
     * NULL: 0 done, 1 not possible this way (os_vchange does it), -1 error. */
    int (*delete_fast)(os_backend_t *b, const char *bucket, const char *key, verr_t *e);
    /* Latest versions that are not delete markers, as os_list. */
    int (*list)(os_backend_t *b, const char *bucket, const char *prefix, const char *start_after, size_t max,
                os_list_fn fn, void *arg, int *truncated, verr_t *e);
    /* Every version after position (after_key, after_sk): after_sk NULL = after all of
     * after_key's versions, "" = after its head, else after that noncurrent entry. */
    int (*list_versions)(os_backend_t *b, const char *bucket, const char *prefix, const char *after_key,
                         const char *after_sk, size_t max, os_list_fn fn, void *arg, int *truncated, verr_t *e);

    int (*mpu_create)(os_backend_t *b, const char *bucket, const char *upload_id, json_t *upload, verr_t *e);
    /* The upload record and its parts as {"<n>": part entry}; NoSuchUpload when absent. */
    int (*mpu_load)(os_backend_t *b, const char *bucket, const char *upload_id, json_t **upload, json_t **parts,
                    verr_t *e);
    /* Every unfinished upload as an array of {"id", "k", "initiated"} (any order). */
    int (*mpu_uploads)(os_backend_t *b, const char *bucket, json_t **out, verr_t *e);
    /* Load, os_mpu_plan(), os_vplan() the new version and apply it while removing the
     * upload, all or nothing. */
    int (*mpu_complete)(os_backend_t *b, const char *bucket, const char *key, const char *upload_id,
                        os_versioning_t vers, const os_part_ref_t *parts, size_t nparts,
                        const os_checksum_t *want, os_meta_t *out,
                        verr_t *e);
    int (*mpu_abort)(os_backend_t *b, const char *bucket, const char *upload_id, verr_t *e);

    int (*gc)(os_backend_t *b, int grace_s, int stale_s, verr_t *e);
} os_backend_ops_t;

struct os_backend {
    const os_backend_ops_t *ops;
    void *impl;
};

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

/* Validate the client's part list (and whole-object checksum, want, may be NULL) against
 * the stored parts ({"<n>": part entry}) and build the new index entry (*entry) plus the
 * part entries left unused (*unused, an array). Fills out (if not NULL). */
int os_mpu_plan(const char *key, const json_t *upload, const json_t *parts, const os_part_ref_t *refs,
                size_t nrefs, const os_checksum_t *want, json_t **entry, json_t **unused, os_meta_t *out,
                verr_t *e);

/* ---- checksums (backend_checksum.c) ---- */

/* "ck" of an index entry or upload meta <-> os_checksum_t (absent = CK_NONE). */
void os_checksum_to_json(json_t *rec, const os_checksum_t *ck);
void os_checksum_from_json(const json_t *rec, os_checksum_t *ck);
/* The upload's algorithm and type (S3's default, CRC64NVME full object, when it chose
 * none); *chosen set when the client chose them. */
void os_upload_checksum(const json_t *upload, os_checksum_t *ck, int *chosen);
/* The writer's side: set up after put_begin, release in put_free, finish into meta /
 * into a part entry's "cks". */
void os_put_ck_begin(os_put_t *p);
void os_put_ck_free(os_put_t *p);
void os_put_ck_final(os_put_t *p, os_meta_t *meta);
json_t *os_put_ck_part_json(os_put_t *p);
/* A multipart object's checksum from its parts (refs in order, checked against what the
 * client listed and stated, see os_mpu_complete). */
int os_mpu_checksum(const json_t *upload, const json_t *parts, const os_part_ref_t *refs, size_t nrefs,
                    const os_checksum_t *want, os_checksum_t *out, verr_t *e);

/* Emit a list entry (key + entry JSON) through the caller's callback (-1 ClientGone on
 * stop); is_latest: the entry is the key's head. */
int os_list_emit(os_list_fn fn, void *arg, const char *key, const json_t *entry, int is_latest, verr_t *e);

/* Garbage / pending names "<10-digit unix time>.<version>" and their parse (-1 if not). */
void os_stamp_name(char *out, size_t outsz, int64_t t, const char *version);
int os_stamp_parse(const char *name, int64_t *t, char version[OS_VERSION_LEN + 1]);

/* Errors shared by both backends. */
int os_err_nosuchkey(verr_t *e);
int os_err_nosuchupload(verr_t *e);
int os_err_nosuchbucket(verr_t *e, const char *bucket);
int os_err_notempty(verr_t *e);
int os_err_nosuchversion(verr_t *e);
int os_err_method(verr_t *e);

/* JSON text of a record (caller frees) / parse of one (NULL + InternalError if corrupt). */
char *os_json_text(const json_t *j, size_t *len);
json_t *os_json_parse(const char *text, size_t len, const char *what, verr_t *e);

#endif
