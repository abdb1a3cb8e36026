/* backend_rados.h - what the files of the RADOS backend share.
 *
 *   backend_rados.c       the backend's operations: buckets, writes and their commit,
 *                         reads, open
 *   backend_rados_io.c    librados helpers: omap compare-and-swap, reads and walks, index
 *                         values, aio rings, stripe removal
 *   backend_rados_index.c a key's versions in the index: noncurrent keys, one key's
 *                         records loaded in one read, a version plan as one atomic op
 *   backend_rados_list.c  ListObjects and ListObjectVersions
 *   backend_rados_mpu.c   multipart uploads
 *   backend_rados_gc.c    garbage collection
 *   backend_rados_conn.c  the cluster connection: counted references, health probe, and
 *                         its replacement when the cluster stops answering it
 *
 * Every operation takes a reference to the current connection (rados_conn_get) and
 * gives it back when done (rados_conn_put); an upload or a download keeps its reference
 * across all its HTTP callbacks. Functions that only talk to the cluster take the ioctx of
 * that connection; they never look at which connection is current. */
#ifndef VIRGA_OBJECTSTORE_BACKEND_RADOS_H
#define VIRGA_OBJECTSTORE_BACKEND_RADOS_H

#include <pthread.h>
#include <rados/librados.h>

#include "backend_internal.h"
#include "ticker.h"

#define RING 4                  /* aio reads / writes in flight per request */
#define PIECE (1024 * 1024)     /* I/O unit within a stripe: sending starts before it is full */
#define OMAP_PAGE 10000         /* omap entries per round trip (all parts of an upload fit) */
#define OID_MAX 256
#define REGISTRY "buckets"
#define ORPHANS "orphans"
#define PENDING_MAX 96          /* a pending key's value: {"w":"<writer id>"} */
#define INLINE_MARK '\x01'

/* One connection to the cluster. refs counts the operations using it, plus one while it
 * is the current connection; the last to let go of a replaced one shuts it down. */
typedef struct rconn {
    rados_t cluster;
    rados_ioctx_t io;
    int refs;                   /* guarded by rados_impl_t.mu */
    uint64_t serial;            /* 1 for the first connection, +1 per replacement */
} rconn_t;

typedef struct rados_impl {
    char *pool;
    size_t sb;
    size_t inline_max;          /* objects up to this size live in their index value */
    /* connection settings, kept to make a new connection */
    char name[128], *conf, *keyring;
    int timeout_s, probe_interval_ms, probe_timeout_ms;
    /* the connection and its health (backend_rados_conn.c) */
    pthread_mutex_t mu;
    rconn_t *cur;
    int stop;                   /* set before the monitor is stopped: cuts a probe short */
    ticker_t *monitor;          /* the probe, every probe_interval_ms */
    int healthy;
    int64_t unhealthy_since;
    char detail[200];
    uint64_t replaced;
    uint64_t seen;              /* rados_unavailable_seen() at the last probe */
    int64_t swapped_at;         /* monotonic ms of the last replacement */
} rados_impl_t;

/* A ring of in-flight aio reads or writes, each with its buffer. */
typedef struct ring {
    rados_completion_t c[RING];
    char *buf[RING];
    size_t len[RING];
    int head, n;
} ring_t;

/* ---- backend_rados_conn.c ---- */
int rados_conn_open(rados_impl_t *r, verr_t *e);   /* connect, start the health probe */
void rados_conn_close(rados_impl_t *r);            /* stop the probe, shut down */
rconn_t *rados_conn_get(rados_impl_t *r);
void rados_conn_put(rados_impl_t *r, rconn_t *c);
void rados_health(os_backend_t *b, os_health_t *out);
int rados_conn_healthy(rados_impl_t *r);           /* the last probe got an answer */
/* A librados result that says the cluster does not answer (not that the request is bad). */
int rados_unavailable(int rc);

/* ---- backend_rados_io.c ---- */
rados_impl_t *R(os_backend_t *b);
void index_oid(char out[OID_MAX], const char *bucket);
void stripe_oid(char out[OID_MAX], const char *bucket, const char *v, uint64_t n);
/* librados failure -> S3 error (timeouts are the cluster's: 503); ierr for an operation
 * on a bucket's index object (missing = NoSuchBucket). */
int rerr(verr_t *e, int rc, const char *what, const char *oid);
/* How many operations so far (in this process) found the cluster not answering. */
uint64_t rados_unavailable_seen(void);
int ierr(verr_t *e, int rc, const char *bucket, const char *what);
void garbage_key(char out[64]);
char *keyed(char prefix, const char *s);
rados_completion_t completion(void);
int finish(rados_completion_t c);

typedef struct kv {
    const char *k, *v;
    size_t klen, vlen;
    int below;              /* as a comparison: value < v instead of value == v */
} kv_t;
kv_t KV(const char *k, const char *v, size_t vlen);
/* "k is absent or holds an inline object": no data of its own to garbage-list. */
kv_t NOT_STRIPED(const char *k);
/* One atomic write op on oid: the object must exist (ORPHANS is created), every cmp must
 * hold (value equal; an empty value means "absent"), then set and remove.
 * 0, -ECANCELED, -ENOENT, ... */
int omap_cas(rados_ioctx_t io, const char *oid, const kv_t *cmp, size_t ncmp, const kv_t *set, size_t nset,
             const kv_t *rm, size_t nrm);

/* An asynchronous read of some omap keys, so it can overlap a data write. */
typedef struct omap_req {
    rados_read_op_t op;
    rados_completion_t c;
    rados_omap_iter_t it;
    int prval, rc;
} omap_req_t;
void omap_get_start(rados_ioctx_t io, const char *oid, const char *const *keys, size_t n, omap_req_t *q);
/* Wait, then copy the values out (vals[i] = NULL when key i is absent). */
int omap_get_finish(omap_req_t *q, const char *const *keys, size_t n, char **vals, size_t *lens);
int omap_get(rados_ioctx_t io, const char *oid, const char *const *keys, size_t n, char **vals, size_t *lens);

/* Call fn for each entry; fn's first nonzero stops. */
typedef int (*omap_fn)(void *arg, const char *k, size_t klen, const char *v, size_t vlen);
int iter_each(rados_omap_iter_t it, omap_fn fn, void *arg);
/* Up to `limit` entries with prefix after `after`, paged; fn may stop the walk. */
int omap_walk(rados_ioctx_t io, const char *oid, const char *after, const char *prefix, uint64_t limit, omap_fn fn,
              void *arg);

/* Index values: absent ("") < inline ("\x01" JSON "\0" bytes) < "\x02" < JSON ("{..."). */
int is_inline(const char *v, size_t len);
char *inline_value(const json_t *rec, const char *data, size_t n, size_t *len);
/* An index value as an entry; an inline object's bytes go to OS_INLINE_FIELD if wanted. */
json_t *entry_parse(const char *v, size_t len, int with_data, verr_t *e);

void ring_push(ring_t *g, rados_completion_t c, char *buf, size_t len);
int ring_wait(ring_t *g, char **buf);        /* the oldest op; its buffer in *buf */
void ring_drain(ring_t *g, int *err);

/* Remove stripes [0, n) of a version (n = UINT64_MAX: count unknown, until a batch is all
 * missing); the data a garbage record refers to (0 when it is all gone). */
int remove_stripes(rados_ioctx_t io, const char *bucket, const char *v, uint64_t n);
int remove_record(rados_ioctx_t io, const char *bucket, const char *text, size_t len);

/* ---- backend_rados_index.c ---- */
/* Noncurrent entries are keyed v<E(key)>\x01\x01<sort key> (E escapes \x01 as \x01\x02):
 * vprefix is "v<E(key)>\x01\x01" (with room for a sort key), vkey adds one ("~" is past
 * all of them), vkey_parse gives back the object key and the sort key (NULL if k is not
 * a noncurrent key). */
char *vprefix(const char *key);
char *vkey(const char *key, const char *sk);
char *vkey_parse(const char *k, size_t klen, char sk[OS_SK_LEN + 1]);
/* An entry as its index value: inline when it carries its bytes. */
char *entry_value(const json_t *ent, size_t *len);

/* The read of one key's records: head, noncurrent entries by sort key, the newest
 * noncurrent one, all in one read op (one snapshot), started and finished apart so that
 * it can overlap a data write. */
typedef struct kread {
    rados_read_op_t op;
    rados_completion_t c;
    rados_omap_iter_t it[2];
    int prv[2], rc;
    unsigned char more;
    char *keys[1 + OS_KREC_MAX], *npfx;
    size_t klens[1 + OS_KREC_MAX], nkeys;
} kread_t;
void kload_start(rados_ioctx_t io, const char *bucket, const char *key, const os_kwant_t *w, kread_t *q);
int kload_finish(kread_t *q, const char *bucket, const os_kwant_t *w, os_kstate_t *st, verr_t *e);
int kload(rados_ioctx_t io, const char *bucket, const char *key, const os_kwant_t *w, os_kstate_t *st, verr_t *e);
int krec_parse(os_krec_t *rec, verr_t *e);
int rados_kload(os_backend_t *b, const char *bucket, const char *key, const os_kwant_t *w, os_kstate_t *st,
                verr_t *e);

/* The compares, sets and removals of one atomic index op, with the strings they use. */
typedef struct batch {
    kv_t *cmp, *set, *rm;
    size_t ncmp, nset, nrm, ccmp, cset, crm;
    char **owned;
    size_t nowned, cowned;
} batch_t;
char *batch_own(batch_t *bt, char *s);   /* freed with the batch */
void batch_cmp(batch_t *bt, kv_t kv);
void batch_set(batch_t *bt, kv_t kv);
void batch_rm(batch_t *bt, kv_t kv);
/* A record listed as garbage in the op: gc deletes its data after the grace period. */
void batch_garbage(batch_t *bt, const char *text, size_t len);
int batch_run(rados_ioctx_t io, const char *bucket, const batch_t *bt);
void batch_free(batch_t *bt);
/* A plan as index changes, each record it changes compared with what was loaded. */
void plan_batch(batch_t *bt, const char *key, const os_kstate_t *st, const os_vplan_t *pl);
int rados_delete_fast(os_backend_t *b, const char *bucket, const char *key, verr_t *e);

/* ---- backend_rados_list.c ---- */
int rados_list(os_backend_t *b, const char *bucket, const char *prefix, const char *start_after, size_t max,
               os_list_fn fn, void *arg, int *truncated, verr_t *e);
int rados_list_versions(os_backend_t *b, const char *bucket, const char *prefix, const char *after_key,
                        const char *after_sk, size_t max, os_list_fn fn, void *arg, int *truncated, verr_t *e);

/* ---- backend_rados_mpu.c ---- */
int rados_mpu_create(os_backend_t *b, const char *bucket, const char *id, json_t *upload, verr_t *e);
int rados_mpu_load(os_backend_t *b, const char *bucket, const char *id, json_t **upload, json_t **parts,
                   verr_t *e);
int rados_mpu_uploads(os_backend_t *b, const char *bucket, json_t **out, verr_t *e);
int rados_mpu_complete(os_backend_t *b, const char *bucket, const char *key, const char *id, os_versioning_t vers,
                       const os_part_ref_t *parts, size_t nparts, const os_checksum_t *want, os_meta_t *out,
                       verr_t *e);
int rados_mpu_abort(os_backend_t *b, const char *bucket, const char *id, verr_t *e);
int rados_abort_upload(rados_ioctx_t io, const char *bucket, const char *id, verr_t *e);

/* ---- backend_rados_gc.c ---- */
int rados_gc(os_backend_t *b, const os_gc_opts_t *o, verr_t *e);

#endif
