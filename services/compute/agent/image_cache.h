/* image_cache.h - the host's cache of image bytes: one file per image, named by the
 * SHA-256 of its content (<dir>/<64 hex digits>).
 *
 * A file gets that name only by an atomic rename, after its size and digest were checked,
 * so a name always means its content and a reader never sees a partial image. Bytes
 * arrive in <dir>/.partial-<sha256>-XXXXXX, which is removed on any failure. Fetches of
 * one image are serialised by flock on <dir>/.lock-<sha256> (works between the agent's
 * worker threads and between processes sharing the directory): a second caller waits
 * and then finds the image cached. Total size is bounded: after each fetch the least
 * recently used images (by mtime, set on every use) are removed until the rest fit. */
#ifndef VIRGA_AGENT_IMAGE_CACHE_H
#define VIRGA_AGENT_IMAGE_CACHE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct image_cache image_cache_t;

/* Bounds on one download, so that a slow or stalled server cannot hold a bus worker
 * thread forever (config agent.fetch_timeout_s, agent.fetch_low_speed_bytes,
 * agent.fetch_low_speed_s). */
typedef struct image_fetch_limits {
    long timeout_s;                 /* the whole transfer, connecting included */
    long low_speed_bytes;           /* give up when fewer than this many bytes/s arrive ... */
    long low_speed_s;               /* ... for this many seconds in a row */
} image_fetch_limits_t;

typedef struct image_cache_opts {
    const char *dir;                /* created 0700 (with missing parents) if absent */
    uint64_t limit_bytes;           /* total size the cache may keep */
    image_fetch_limits_t fetch;
} image_cache_opts_t;

/* Create or open the cache, removing what a crashed fetch left behind. Refuses a
 * directory that other users can write to: its names could not be trusted. */
image_cache_t *image_cache_open(const image_cache_opts_t *o, verr_t *e);
/* Make downloads in flight give up (within a second), wait for every call to return,
 * and refuse later ones with ServiceUnavailable. For a stopping service, whose bus
 * workers may still call in; close (which stops first) once they are gone. */
void image_cache_stop(image_cache_t *c);
void image_cache_close(image_cache_t *c);   /* NULL is a no-op for both */

typedef struct image_cache_result {
    char path[PATH_MAX];
    char sha256[65];                /* lower-case hex */
    uint64_t size;
    int cached;                     /* 1: was already there, nothing downloaded */
} image_cache_result_t;

/* The image with this SHA-256 (64 hex digits, either case) and size: from the cache, or
 * fetched from url (http or https only, no redirects: common/transfer.h), verified,
 * stored, and older images evicted. A body longer than size is refused as soon as that
 * is known. Errors:
 *   InvalidParameterValue  malformed sha256 or url, or larger than the whole cache;
 *   ImageChecksumMismatch  size or digest differ, the body is too long (nothing is kept);
 *   ImageFetchFailed       the server answered another status than 200 (named in the
 *                          message with the S3 error it sent; http_status 400 for a 4xx,
 *                          else 502), or the transfer failed, timed out or was too slow;
 *   ServiceUnavailable     the cache is stopping (a download in flight gives up within
 *                          a second);
 *   InternalError          local I/O (e.g. the disk is full).
 * Messages show the URL without its query string (a presigned URL's credentials). */
int image_cache_get(image_cache_t *c, const char *url, const char *sha256, uint64_t size,
                    image_cache_result_t *out, verr_t *e);

typedef struct image_cache_entry {
    char sha256[65];
    uint64_t size;
    int64_t used_ns;                /* last use (mtime), ns since the epoch */
    int evict;                      /* set by image_cache_plan_eviction */
} image_cache_entry_t;

/* Every cached image, most recently used first; *out is the caller's to free. */
int image_cache_list(image_cache_t *c, image_cache_entry_t **out, size_t *n, uint64_t *total, verr_t *e);

/* Which images to remove so the rest fit in limit_bytes: least recently used first
 * (ties by name, so the choice is stable), never the one named keep (may be NULL).
 * Sorts v oldest first and sets ->evict; returns the bytes that would remain, which
 * is above the limit only if keep alone is. No I/O: the policy, testable on its own. */
uint64_t image_cache_plan_eviction(image_cache_entry_t *v, size_t n, uint64_t limit_bytes, const char *keep);

const char *image_cache_dir(const image_cache_t *c);
uint64_t image_cache_limit(const image_cache_t *c);

#endif
