/* image_cache.c - the host's image cache: a directory of files named by their SHA-256,
 * filled over HTTP by common/transfer.c, bounded in size by least-recently-used eviction
 * (see image_cache.h for the guarantees). */
#include "image_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "transfer.h"

#define PARTIAL_PREFIX ".partial-"
#define LOCK_PREFIX ".lock-"

struct image_cache {
    char *dir;                  /* absolute */
    int dirfd;
    uint64_t limit;
    image_fetch_limits_t fetch;
    pthread_mutex_t evict_mu;   /* one eviction pass at a time */
    /* Closing waits for calls in flight (bus workers still run while the service stops)
     * and makes running downloads give up rather than wait for them. */
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int active;
    atomic_int closing;
};

const char *image_cache_dir(const image_cache_t *c) { return c->dir; }
uint64_t image_cache_limit(const image_cache_t *c) { return c->limit; }

/* ---- names ---- */

static int is_cache_name(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* 64 hex digits of either case into lower case; -1 if s is anything else. */
static int sha_normalize(const char *s, char out[65])
{
    if (!s || strlen(s) != 64 || strspn(s, "0123456789abcdefABCDEF") != 64)
        return -1;
    for (int i = 0; i < 64; i++)
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
    out[64] = '\0';
    return 0;
}

static int url_ok(const char *u)
{
    size_t n = u ? strlen(u) : 0;
    if (n > 8192 || !(strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= 0x20 || u[i] == 0x7f)
            return 0;
    const char *host = strstr(u, "://") + 3;
    return *host && *host != '/';
}

/* ---- per-image locks ---- */

/* flock on .lock-<sha256>, blocking or not; the fd, or -1 with errno. The holder unlinks
 * the file when done, so a directory of cached images is not also a directory of lock
 * files; a lock taken on a file that was meanwhile unlinked excludes nobody, hence the
 * check that the locked file is still the one under the name. */
static int lock_sha(image_cache_t *c, const char *sha, int wait)
{
    char name[96];
    snprintf(name, sizeof name, LOCK_PREFIX "%s", sha);
    for (;;) {
        int fd = openat(c->dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return -1;
        int r;
        while ((r = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB))) < 0 && errno == EINTR)
            ;
        if (r < 0) {
            int en = errno;
            close(fd);
            errno = en;
            return -1;
        }
        struct stat held, named;
        if (fstat(fd, &held) == 0 && fstatat(c->dirfd, name, &named, AT_SYMLINK_NOFOLLOW) == 0 &&
            held.st_ino == named.st_ino && held.st_dev == named.st_dev)
            return fd;
        close(fd);
    }
}

static void unlock_sha(image_cache_t *c, const char *sha, int fd)
{
    char name[96];
    snprintf(name, sizeof name, LOCK_PREFIX "%s", sha);
    unlinkat(c->dirfd, name, 0);   /* before closing: see lock_sha */
    close(fd);
}

/* ---- open ---- */

static int mkdir_p(const char *path, verr_t *e)
{
    AUTOFREE char *p = xstrdup(path);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
            return verr_set(e, 500, "InternalError", "creating the image cache %s: %s", p, strerror(errno));
        *s = saved;
        if (!saved)
            return 0;
    }
}

/* Remove what a crashed fetch left behind: partial downloads and lock files nobody
 * holds. Holding the image's lock proves no fetch of it is running, here or in another
 * process sharing the directory. */
static void sweep(image_cache_t *c)
{
    DIR *d = opendir(c->dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *sha = NULL;
        int partial = !strncmp(de->d_name, PARTIAL_PREFIX, strlen(PARTIAL_PREFIX));
        if (partial)
            sha = de->d_name + strlen(PARTIAL_PREFIX);
        else if (!strncmp(de->d_name, LOCK_PREFIX, strlen(LOCK_PREFIX)))
            sha = de->d_name + strlen(LOCK_PREFIX);
        char s[65];
        if (!sha || strlen(sha) < 64)
            continue;
        snprintf(s, sizeof s, "%.64s", sha);
        if (!is_cache_name(s))
            continue;
        int lk = lock_sha(c, s, 0);
        if (lk < 0)
            continue;
        if (partial) {
            log_info("image cache: removing %s left by an interrupted fetch", de->d_name);
            unlinkat(c->dirfd, de->d_name, 0);
        }
        unlock_sha(c, s, lk);
    }
    closedir(d);
}

image_cache_t *image_cache_open(const image_cache_opts_t *o, verr_t *e)
{
    if (!o->dir || !*o->dir) {
        verr_set(e, 500, "InternalError", "agent.cache_dir is not set");
        return NULL;
    }
    if (mkdir_p(o->dir, e) < 0)
        return NULL;
    char *abs = realpath(o->dir, NULL);
    struct stat st;
    if (!abs || stat(abs, &st) < 0 || !S_ISDIR(st.st_mode)) {
        verr_set(e, 500, "InternalError", "image cache %s is not a usable directory", o->dir);
        free(abs);
        return NULL;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        verr_set(e, 500, "InternalError", "image cache %s is writable by other users: a file there could "
                 "carry an image's name without its content (chmod 700 it)", abs);
        free(abs);
        return NULL;
    }
    int fd = open(abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        verr_set(e, 500, "InternalError", "opening the image cache %s: %s", abs, strerror(errno));
        free(abs);
        return NULL;
    }
    image_cache_t *c = xcalloc(1, sizeof *c);
    c->dir = abs;
    c->dirfd = fd;
    c->limit = o->limit_bytes;
    c->fetch = o->fetch;
    pthread_mutex_init(&c->evict_mu, NULL);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->idle, NULL);
    sweep(c);
    return c;
}

void image_cache_stop(image_cache_t *c)
{
    if (!c)
        return;
    atomic_store(&c->closing, 1);
    pthread_mutex_lock(&c->mu);
    while (c->active > 0)
        pthread_cond_wait(&c->idle, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

void image_cache_close(image_cache_t *c)
{
    if (!c)
        return;
    image_cache_stop(c);
    close(c->dirfd);
    pthread_mutex_destroy(&c->evict_mu);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->idle);
    free(c->dir);
    free(c);
}

/* ---- use ---- */

static int enter(image_cache_t *c, verr_t *e)
{
    pthread_mutex_lock(&c->mu);
    int closing = atomic_load(&c->closing);
    if (!closing)
        c->active++;
    pthread_mutex_unlock(&c->mu);
    return closing ? verr_set(e, 503, "ServiceUnavailable", "the agent is stopping") : 0;
}

static void leave(image_cache_t *c)
{
    pthread_mutex_lock(&c->mu);
    if (--c->active == 0)
        pthread_cond_broadcast(&c->idle);
    pthread_mutex_unlock(&c->mu);
}

/* Mark an image used now. The time is read from CLOCK_REALTIME rather than left to the
 * kernel (UTIME_NOW), whose coarse clock gives images used milliseconds apart the same
 * time and would blur the LRU order. atime alone is useless: noatime/relatime mounts. */
static void touch(image_cache_t *c, const char *name, int fd)
{
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[1] = ts[0];
    if ((fd >= 0 ? futimens(fd, ts) : utimensat(c->dirfd, name, ts, AT_SYMLINK_NOFOLLOW)) < 0)
        log_warn("image cache: cannot mark %s used: %s", name, strerror(errno));
}

/* 1 and the image marked used if it is cached, 0 if not, -1 on error. */
static int lookup(image_cache_t *c, const char *sha, uint64_t size, verr_t *e)
{
    struct stat st;
    if (fstatat(c->dirfd, sha, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return verr_set(e, 500, "InternalError", "image cache %s/%s: %s", c->dir, sha, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return verr_set(e, 500, "InternalError", "image cache %s/%s is not a regular file", c->dir, sha);
    /* the content was checked when it got its name: a different size is the caller's */
    if ((uint64_t)st.st_size != size)
        return verr_set(e, 400, "ImageChecksumMismatch", "the image with SHA-256 %s has %llu bytes, not %llu",
                        sha, (unsigned long long)st.st_size, (unsigned long long)size);
    touch(c, sha, -1);
    return 1;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The transfer's progress callback: libcurl calls it at least once a second, even while
 * nothing arrives, so a stopping cache abandons its downloads within a second. */
static int stop_requested(void *arg, uint64_t done, uint64_t total)
{
    (void)done, (void)total;
    return atomic_load((atomic_int *)arg) != 0;
}

/* GET url into fd, with transfer.h's errors given the codes of image_cache_get. */
static int download(image_cache_t *c, const char *url, const char *shown, int fd, uint64_t size, uint64_t *got,
                    char hex[65], verr_t *e)
{
    AUTOFREE char *what = xasprintf("GET %s", shown);
    transfer_opts_t o = {
        .timeout_s = c->fetch.timeout_s,
        .low_speed_s = c->fetch.low_speed_s,
        .low_speed_bytes = c->fetch.low_speed_bytes,
        .connect_timeout_s = c->fetch.timeout_s < 30 ? c->fetch.timeout_s : 30,
        .max_bytes = size ? size : 1,   /* 0 would mean no bound: an empty image takes no byte */
        .progress = stop_requested,
        .arg = &c->closing,
        .what = what,
    };
    verr_t te = {0};
    if (transfer_get(url, fd, &o, got, hex, &te) == 0)
        return 0;
    *e = te;
    if (!strcmp(te.code, "TransferFailed"))   /* a 4xx is the caller's URL, the rest the server's */
        return verr_recode(e, te.http_status >= 400 && te.http_status < 500 ? 400 : 502, "ImageFetchFailed");
    if (!strcmp(te.code, "TooLarge"))
        return verr_recode(e, 400, "ImageChecksumMismatch");
    if (!strcmp(te.code, "Canceled"))
        return verr_set(e, 503, "ServiceUnavailable", "GET %s stopped: the agent is stopping", shown);
    return verr_recode(e, 500, "InternalError");
}

/* Download into a partial file, check it, and give it its name; the caller holds the
 * image's lock. On any failure the partial file is removed. */
static int fetch_locked(image_cache_t *c, const char *url, const char *sha, uint64_t size, verr_t *e)
{
    AUTOFREE char *tmp = xasprintf("%s/" PARTIAL_PREFIX "%s-XXXXXX", c->dir, sha);
    AUTOFREE char *final = xasprintf("%s/%s", c->dir, sha);
    AUTOFREE char *shown = transfer_url_for_log(url);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return verr_set(e, 500, "InternalError", "creating %s: %s", tmp, strerror(errno));
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char hex[65];
    uint64_t got = 0;
    int rc = download(c, url, shown, fd, size, &got, hex, e);
    if (rc == 0 && got != size)
        rc = verr_set(e, 400, "ImageChecksumMismatch", "GET %s gave %llu bytes, expected %llu", shown,
                      (unsigned long long)got, (unsigned long long)size);
    if (rc == 0) {
        if (strcmp(hex, sha))
            rc = verr_set(e, 400, "ImageChecksumMismatch", "the bytes from %s have SHA-256 %s, expected %s",
                          shown, hex, sha);
    }
    /* on disk before named: after a crash the name must still mean these bytes */
    if (rc == 0 && fsync(fd) < 0)
        rc = verr_set(e, 500, "InternalError", "writing %s: %s", tmp, strerror(errno));
    if (rc == 0)
        touch(c, tmp, fd);
    close(fd);
    if (rc == 0 && rename(tmp, final) < 0)
        rc = verr_set(e, 500, "InternalError", "renaming %s: %s", tmp, strerror(errno));
    if (rc < 0) {
        unlink(tmp);
        return -1;
    }
    fsync(c->dirfd);
    log_info("image cache: stored %s (%llu bytes) from %s in %.2f s", sha, (unsigned long long)size, shown,
             seconds_since(&t0));
    return 0;
}

static void evict(image_cache_t *c, const char *keep);

static int get(image_cache_t *c, const char *url, const char *sha256, uint64_t size,
               image_cache_result_t *out, verr_t *e)
{
    memset(out, 0, sizeof *out);
    if (sha_normalize(sha256, out->sha256) < 0)
        return verr_set(e, 400, "InvalidParameterValue", "sha256 must be 64 hexadecimal digits");
    if (!url_ok(url))
        return verr_set(e, 400, "InvalidParameterValue", "url must be an http:// or https:// URL");
    if (size > c->limit)
        return verr_set(e, 400, "InvalidParameterValue",
                        "an image of %llu bytes cannot fit in this host's image cache (agent.image_cache_bytes %llu)",
                        (unsigned long long)size, (unsigned long long)c->limit);
    const char *sha = out->sha256;
    snprintf(out->path, sizeof out->path, "%s/%s", c->dir, sha);
    out->size = size;

    /* a cached image needs no lock: it only ever appears complete, by rename */
    int hit = lookup(c, sha, size, e);
    if (hit != 0) {
        out->cached = hit > 0;
        return hit < 0 ? -1 : 0;
    }
    int lk = lock_sha(c, sha, 1);
    if (lk < 0)
        return verr_set(e, 500, "InternalError", "locking image %s in %s: %s", sha, c->dir, strerror(errno));
    /* whoever held the lock before us may just have stored it */
    hit = lookup(c, sha, size, e);
    int rc = hit;
    if (hit == 0 && atomic_load(&c->closing))
        rc = verr_set(e, 503, "ServiceUnavailable", "the agent is stopping");
    else if (hit == 0)
        rc = fetch_locked(c, url, sha, size, e);
    unlock_sha(c, sha, lk);
    if (rc < 0)
        return -1;
    out->cached = hit > 0;
    if (!out->cached)
        evict(c, sha);
    return 0;
}

int image_cache_get(image_cache_t *c, const char *url, const char *sha256, uint64_t size,
                    image_cache_result_t *out, verr_t *e)
{
    if (enter(c, e) < 0)
        return -1;
    int rc = get(c, url, sha256, size, out, e);
    leave(c);
    return rc;
}

/* ---- listing and eviction ---- */

static int by_recent_first(const void *a, const void *b)
{
    const image_cache_entry_t *x = a, *y = b;
    if (x->used_ns != y->used_ns)
        return x->used_ns > y->used_ns ? -1 : 1;
    return strcmp(x->sha256, y->sha256);
}

static int by_oldest_first(const void *a, const void *b)
{
    const image_cache_entry_t *x = a, *y = b;
    if (x->used_ns != y->used_ns)
        return x->used_ns < y->used_ns ? -1 : 1;
    return strcmp(x->sha256, y->sha256);
}

static int list(image_cache_t *c, image_cache_entry_t **out, size_t *n, uint64_t *total, verr_t *e)
{
    *out = NULL;
    *n = 0;
    *total = 0;
    DIR *d = opendir(c->dir);
    if (!d)
        return verr_set(e, 500, "InternalError", "reading the image cache %s: %s", c->dir, strerror(errno));
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        if (!is_cache_name(de->d_name) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        image_cache_entry_t *en = &(*out)[(*n)++];
        memset(en, 0, sizeof *en);
        snprintf(en->sha256, sizeof en->sha256, "%s", de->d_name);
        en->size = (uint64_t)st.st_size;
        en->used_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        *total += en->size;
    }
    closedir(d);
    if (*n > 1)
        qsort(*out, *n, sizeof **out, by_recent_first);
    return 0;
}

int image_cache_list(image_cache_t *c, image_cache_entry_t **out, size_t *n, uint64_t *total, verr_t *e)
{
    if (enter(c, e) < 0)
        return -1;
    int rc = list(c, out, n, total, e);
    leave(c);
    return rc;
}

uint64_t image_cache_plan_eviction(image_cache_entry_t *v, size_t n, uint64_t limit_bytes, const char *keep)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        v[i].evict = 0;
        total += v[i].size;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, by_oldest_first);
    for (size_t i = 0; i < n && total > limit_bytes; i++) {
        if (keep && !strcmp(v[i].sha256, keep))
            continue;
        v[i].evict = 1;
        total -= v[i].size;
    }
    return total;
}

/* Bring the cache under its limit, keeping the image just stored. An image whose lock
 * is held is being fetched again or checked right now: it is skipped, not waited for. */
static void evict(image_cache_t *c, const char *keep)
{
    pthread_mutex_lock(&c->evict_mu);
    image_cache_entry_t *v = NULL;
    size_t n = 0;
    uint64_t total = 0;
    verr_t e;
    if (list(c, &v, &n, &total, &e) < 0) {
        log_warn("image cache eviction: %s", e.message);
        pthread_mutex_unlock(&c->evict_mu);
        return;
    }
    if (total > c->limit) {
        image_cache_plan_eviction(v, n, c->limit, keep);
        for (size_t i = 0; i < n; i++) {
            if (!v[i].evict)
                continue;
            int lk = lock_sha(c, v[i].sha256, 0);
            if (lk < 0)
                continue;
            if (unlinkat(c->dirfd, v[i].sha256, 0) == 0) {
                total -= v[i].size;
                log_info("image cache: evicted %s (%llu bytes)", v[i].sha256, (unsigned long long)v[i].size);
            }
            unlock_sha(c, v[i].sha256, lk);
        }
        if (total > c->limit)
            log_warn("image cache: %llu bytes kept, above the limit of %llu (images in use)",
                     (unsigned long long)total, (unsigned long long)c->limit);
    }
    free(v);
    pthread_mutex_unlock(&c->evict_mu);
}
