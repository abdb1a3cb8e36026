/* backend_read.c - reading (backend.h): the metadata of a version (os_head_version),
 * and its bytes through an opened version (os_open_version): the index entry is read once
 * and every read of that os_object_t maps its range onto that entry's data pieces (simple
 * objects have one, multipart objects one per part, small RADOS objects keep their bytes
 * in the entry), pushed to a sink (os_object_read) or pulled (os_reader) through the
 * backend's seg_open/seg_next cursors, which read ahead a bounded amount. */
#include "backend_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "log.h"

/* ---- reads ---- */

int os_head_version(os_backend_t *b, const char *bucket_id, const char *key, const char *version_id,
                    os_meta_t *out, verr_t *e)
{
    if (!out || os_check_bucket(b, bucket_id, e) || os_check_key(key, e) || os_check_vid(version_id, e))
        return out ? -1 : verr_set(e, 500, "InternalError", "os_head: no out");
    json_t *ent;
    int latest;
    if (os_locate(b, bucket_id, key, version_id, &ent, &latest, e))
        return -1;
    os_meta_from_json(ent, out);
    out->is_latest = latest;
    json_decref(ent);
    return 0;
}

int os_head(os_backend_t *b, const char *bucket_id, const char *key, os_meta_t *out, verr_t *e)
{
    if (os_head_version(b, bucket_id, key, NULL, out, e))
        return -1;
    if (out->delete_marker) {
        os_meta_clear(out);
        return os_err_nosuchkey(e);
    }
    return 0;
}

/* An opened version: the index entry as read, and so the pieces of exactly that write. */
struct os_object {
    os_backend_t *b;
    char bucket[OS_BUCKET_MAX + 1];
    json_t *ent;
    uint64_t size;
    const char *inl;            /* bytes stored in the entry itself (RADOS small objects) */
    int dm;                     /* a delete marker: no bytes */
};

int os_open_version(os_backend_t *b, const char *bucket_id, const char *key, const char *version_id,
                    os_object_t **out, os_meta_t *meta, verr_t *e)
{
    if (!out || os_check_bucket(b, bucket_id, e) || os_check_key(key, e) || os_check_vid(version_id, e))
        return out ? -1 : verr_set(e, 500, "InternalError", "os_open: no out");
    json_t *ent;
    int latest;
    if (os_locate(b, bucket_id, key, version_id, &ent, &latest, e))
        return -1;
    int dm = os_entry_is_dm(ent);
    uint64_t size = dm ? 0 : (uint64_t)json_int(ent, "size", 0);
    const json_t *inl = json_object_get(ent, OS_INLINE_FIELD);
    if (inl && json_string_length(inl) != size) {
        log_error("objectstore: inline object %s: %zu bytes stored, %" PRIu64 " expected", key,
                  json_string_length(inl), size);
        json_decref(ent);
        return verr_set(e, 500, "InternalError", "We encountered an internal error. Please try again.");
    }
    os_object_t *o = xcalloc(1, sizeof *o);
    o->b = b;
    snprintf(o->bucket, sizeof o->bucket, "%s", bucket_id);
    o->ent = ent;
    o->size = size;
    o->inl = inl ? json_string_value(inl) : NULL;
    o->dm = dm;
    if (meta) {
        os_meta_from_json(ent, meta);
        meta->is_latest = latest;
    }
    *out = o;
    return 0;
}

int os_open(os_backend_t *b, const char *bucket_id, const char *key, os_object_t **out, os_meta_t *meta,
            verr_t *e)
{
    os_meta_t m = {0};
    if (os_open_version(b, bucket_id, key, NULL, out, &m, e))
        return -1;
    if (m.delete_marker) {
        os_object_close(*out);
        *out = NULL;
        os_meta_clear(&m);
        return os_err_nosuchkey(e);
    }
    if (meta)
        *meta = m;
    else
        os_meta_clear(&m);
    return 0;
}

uint64_t os_object_size(const os_object_t *o)
{
    return o ? o->size : 0;
}

void os_object_close(os_object_t *o)
{
    if (!o)
        return;
    json_decref(o->ent);
    free(o);
}

/* Piece i of the version (simple objects have one, multipart objects one per part). */
static int piece_at(const os_object_t *o, size_t i, os_seg_t *s)
{
    const json_t *parts = json_object_get(o->ent, "parts");
    const json_t *p = json_is_array(parts) ? json_array_get(parts, i) : i == 0 ? o->ent : NULL;
    if (!p)
        return -1;
    *s = (os_seg_t){json_str(p, "v", NULL), (uint64_t)json_int(p, "size", 0), (uint64_t)json_int(p, "sb", 0)};
    if (!s->v)
        s->size = 0;   /* nothing stored (never happens for entries we write) */
    return 0;
}

/* Where a read stands: [off, end) of the object still to hand out, within piece `piece`
 * which starts at object offset `start`, read through cursor `cur`. */
typedef struct read_pos {
    os_object_t *o;
    uint64_t off, end;
    size_t piece;
    uint64_t start, piece_size;
    void *cur;
} read_pos_t;

static void read_pos_init(read_pos_t *rp, os_object_t *o, uint64_t off, uint64_t len)
{
    /* a range checked against the size the caller saw is clamped to the version read */
    off = off > o->size ? o->size : off;
    len = len > o->size - off ? o->size - off : len;
    *rp = (read_pos_t){.o = o, .off = off, .end = off + len};
}

/* The next bytes of the range (*data valid until the next call): count, 0 at the end. */
static long read_next(read_pos_t *rp, const char **data, verr_t *e)
{
    os_object_t *o = rp->o;
    if (o->inl) {
        long n = (long)(rp->end - rp->off);
        *data = o->inl + rp->off;
        rp->off = rp->end;
        return n;
    }
    while (rp->off < rp->end) {
        if (!rp->cur) {
            os_seg_t s;
            for (;;) {
                if (piece_at(o, rp->piece, &s)) {
                    log_error("objectstore: an index entry of bucket %s has fewer bytes than its size", o->bucket);
                    return verr_set(e, 500, "InternalError", "We encountered an internal error. Please try again.");
                }
                if (rp->off < rp->start + s.size)
                    break;
                rp->start += s.size;
                rp->piece++;
            }
            uint64_t stop = rp->end < rp->start + s.size ? rp->end : rp->start + s.size;
            rp->piece_size = s.size;
            if (o->b->ops->seg_open(o->b, o->bucket, &s, rp->off - rp->start, stop - rp->off, &rp->cur, e))
                return -1;
        }
        long n = o->b->ops->seg_next(rp->cur, data, e);
        if (n < 0)
            return -1;
        if (n > 0) {
            rp->off += (uint64_t)n;
            return n;
        }
        o->b->ops->seg_close(rp->cur);   /* this piece's part of the range is done */
        rp->cur = NULL;
        rp->start += rp->piece_size;
        rp->piece++;
    }
    return 0;
}

static void read_pos_fini(read_pos_t *rp)
{
    if (rp->cur)
        rp->o->b->ops->seg_close(rp->cur);
    rp->cur = NULL;
}

int os_object_read(os_object_t *o, uint64_t off, uint64_t len, os_sink_fn sink, void *arg, verr_t *e)
{
    if (!o || !sink)
        return verr_set(e, 500, "InternalError", "os_object_read: no object or sink");
    if (o->dm)
        return os_err_method(e);
    read_pos_t rp;
    read_pos_init(&rp, o, off, len);
    long n;
    const char *d;
    int rc = 0;
    while (!rc && (n = read_next(&rp, &d, e)) != 0)
        rc = n < 0 ? -1 : os_sink_call(sink, arg, d, (size_t)n, e);
    read_pos_fini(&rp);
    return rc;
}

struct os_reader {
    read_pos_t rp;
    const char *data;           /* handed out by the backend, not yet copied out */
    size_t avail;
};

os_reader_t *os_reader_new(os_object_t *o, uint64_t off, uint64_t len)
{
    os_reader_t *r = xcalloc(1, sizeof *r);
    read_pos_init(&r->rp, o, off, len);
    return r;
}

long os_reader_read(os_reader_t *r, char *buf, size_t max, verr_t *e)
{
    if (!r->avail) {
        long n = read_next(&r->rp, &r->data, e);
        if (n <= 0)
            return n;
        r->avail = (size_t)n;
    }
    size_t k = r->avail < max ? r->avail : max;
    memcpy(buf, r->data, k);
    r->data += k;
    r->avail -= k;
    return (long)k;
}

void os_reader_free(os_reader_t *r)
{
    if (!r)
        return;
    read_pos_fini(&r->rp);
    os_object_close(r->rp.o);
    free(r);
}

int os_read_version(os_backend_t *b, const char *bucket_id, const char *key, const char *version_id, uint64_t off,
                    uint64_t len, os_sink_fn sink, void *arg, os_meta_t *meta, verr_t *e)
{
    if (!sink)
        return verr_set(e, 500, "InternalError", "os_read: no sink");
    os_object_t *o;
    if (os_open_version(b, bucket_id, key, version_id, &o, meta, e))
        return -1;
    int rc = 0;
    if (o->dm)   /* a delete marker has no bytes */
        rc = version_id ? os_err_method(e) : os_err_nosuchkey(e);
    else if (len)
        rc = os_object_read(o, off, len, sink, arg, e);
    os_object_close(o);
    if (rc && meta)
        os_meta_clear(meta);
    return rc;
}

int os_read(os_backend_t *b, const char *bucket_id, const char *key, uint64_t off, uint64_t len, os_sink_fn sink,
            void *arg, os_meta_t *meta, verr_t *e)
{
    return os_read_version(b, bucket_id, key, NULL, off, len, sink, arg, meta, e);
}
